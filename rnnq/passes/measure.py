"""Choices made by measured error: an integer graph's outputs against the float graph's on
(part of) the calibration data, as SQNR in dB. The compiler quantises a graph in each way it
may and keeps the one this measures best (rnnq.steps.quantize_c).
"""

from __future__ import annotations

import copy

import numpy as np

from rnnq.data import Dataset, valid_mask
from rnnq.ir import Graph
from rnnq.ir.states import state_values
from rnnq.passes import bias_correction
from rnnq.passes.quantize import quantize
from rnnq.passes.reach import reachable
from rnnq.report import sqnr_db
from rnnq.sim.float_ref import run_float
from rnnq.sim.integer import (
    dequantize_output,
    quantize_input,
    quantize_states,
    run_integer,
    state_outputs,
)

#: Timesteps of calibration data a measured choice runs on (the first sequences up to this
#: many steps, at least one sequence): enough for a stable SQNR, cheap beside calibration.
MEASURE_STEPS = 4000


def subset(g: Graph, data: Dataset, steps: int = MEASURE_STEPS) -> Dataset:
    """The first sequences of `data` whose real steps add up to at most `steps` (at least one),
    with every state input of `g` present (an absent one is zeros, as in validate)."""
    n = max(1, int(np.searchsorted(np.cumsum(data.lengths), steps, side="right")))
    states = {k: v[:n] for k, v in (data.states or {}).items()}
    for name, info in g.meta.get("state_inputs", {}).items():
        states.setdefault(name, np.zeros((n, *info["shape"])))
    return Dataset(data.x[:n], data.lengths[:n], None if data.y is None else data.y[:n],
                   states)


def requantize(g: Graph) -> Graph:
    """The calibrated graph g quantised (on a copy) as its meta says, bias corrections
    included: one alternative to measure."""
    h = copy.deepcopy(g)
    return quantize(bias_correction.apply(h, h.meta.get("bias_correction", {})))


def float_outputs(fg: Graph, data: Dataset) -> dict[str, np.ndarray]:
    """The float graph's outputs on `data` (every tensor it computes, by name)."""
    return run_float(fg, data.x, lengths=data.lengths, states=data.states)


def output_sqnr(fg: Graph, fenv: dict[str, np.ndarray], ig: Graph, data: Dataset) -> float:
    """The mean SQNR (dB) over the graph's outputs of the integer graph `ig` against the float
    values `fenv` (float_outputs of the same data): every real step of a per-step output, the
    last real step of a final one; a graph run once per step also its state outputs, every
    call (as validate compares them)."""
    return compare(fg, fenv, ig, data)[0]


#: Sequences whose output power is below this share of the mean are left out of the worst
#: sequence's SQNR (a quiet sequence's own SQNR says little: a forecast near zero).
QUIET_SHARE = 0.1


def worst_sequence_db(f: np.ndarray, i: np.ndarray, seq: np.ndarray, n: int) -> float:
    """The lowest SQNR (dB) of one sequence's values against its own power, over the
    sequences (seq: the sequence of each row of f / i) that are not quiet (QUIET_SHARE)."""
    axes = tuple(range(1, f.ndim))
    power = np.bincount(seq, (f.astype(np.float64) ** 2).sum(axis=axes), minlength=n)
    err = np.bincount(seq, ((f.astype(np.float64) - i) ** 2).sum(axis=axes), minlength=n)
    loud = power >= QUIET_SHARE * power.mean()
    if not loud.any() or power.mean() == 0:
        return float("inf")
    return float(np.min(10 * np.log10(power[loud] / np.maximum(err[loud], 1e-300))))


def compare(fg: Graph, fenv: dict[str, np.ndarray], ig: Graph, data: Dataset
            ) -> tuple[float, float | None, float]:
    """(output_sqnr, flips, worst): flips is the percentage of decisions where the integer
    graph and the float one differ, at the positions output_sqnr compares, the largest over the
    outputs that make decisions: argmax over the last axis of an output with two or more
    classes, or value > 0.5 of a single probability (an output that can only reach [0, 1]: a
    sigmoid's, a VAD's); None without one. It bounds how many accuracy points the integer model
    can lose against the float one. worst: the lowest SQNR of one sequence of an output against
    its own power (worst_sequence_db): a model that amplifies small errors on some inputs
    shows it here before the pooled SQNR does."""
    reach: dict | None = None  # what each float tensor can reach, for one-column outputs
    env = run_integer(ig, quantize_input(ig, data.x), data.lengths,
                      quantize_states(ig, data.states or {}))
    mask = valid_mask(data.lengths, data.x.shape[1])
    last = data.lengths - 1
    seq_of_step = np.broadcast_to(np.arange(data.n)[:, None], mask.shape)[mask]
    dbs, flips, worst = [], [], []
    for fname, iname in zip(fg.outputs, ig.outputs, strict=True):
        f = fenv[fname]
        i = dequantize_output(ig, iname, env[iname]).reshape(f.shape)
        if ig.tensors[iname].kind == "seq" or fg.meta.get("step_graph"):
            f, i, seq = f[mask], i[mask], seq_of_step
        else:
            f, i, seq = f[np.arange(data.n), last], i[np.arange(data.n), last], np.arange(data.n)
        dbs.append(sqnr_db(f, i))
        worst.append(worst_sequence_db(f, i, seq, data.n))
        if f.ndim >= 2 and f.shape[-1] >= 2:
            flips.append(100.0 * float(np.mean(f.argmax(-1) != i.argmax(-1))))
        elif f.shape[-1] == 1:
            reach = reachable(fg) if reach is None else reach
            if 0.0 <= reach[fname][0] and reach[fname][1] <= 1.0:
                flips.append(100.0 * float(np.mean((f > 0.5) != (i > 0.5))))
    ints = state_outputs(ig, env)
    for name, info in fg.meta.get("state_inputs", {}).items():
        if "output" in info:
            f = state_values(fg, fenv, name)
            dbs.append(sqnr_db(f[mask], ints[info["output"]].reshape(f.shape)[mask]))
    return float(np.mean(dbs)), (max(flips) if flips else None), min(worst, default=float("inf"))

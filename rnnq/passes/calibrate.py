"""Calibration of the float IR: observed ranges (passes/observer.py) of every activation, of
each LSTM's gate pre-activations and cell state over whole sequences, and per-feature ranges of
the model input; with seq_len, also over calibration data played back as streams of that many
steps (data.playback).

Requires stage FLOAT, produces stage CALIBRATED: ``Tensor.range`` on every activation,
``node.attrs['cell_absmax']`` and ``['gate_range']`` on LSTMs, and
``graph.meta['input_channel_range']``. Method "auto": the ranges are minmax's, and
``graph.meta['range_candidates']`` holds, per tensor whose range calibration sets (not the
model input, not one its bounds pin), the other methods' ranges that differ (range_choice.py
chooses among them by measured error).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rnnq.data import Dataset, playback, valid_mask
from rnnq.ir import Graph, RnnqError, Stage
from rnnq.ir.ops import INITIAL_STATES, RECURRENT
from rnnq.passes import bias_correction
from rnnq.passes.observer import METHODS, Observer
from rnnq.passes.qparams import widen
from rnnq.passes.reach import FREE, reachable
from rnnq.sim.float_ref import run_float


def _observe(graph: Graph, obs: Observer, acts, recurrent, xb, lb, sb=None) -> None:
    mask = valid_mask(lb, xb.shape[1])
    env = run_float(graph, xb, taps=True, lengths=lb, states=sb)
    for t in acts:
        v = env[t.name][mask] if t.kind == "seq" else _at_end(env[t.name], lb, graph)
        obs.add(t.name, v.reshape(-1, t.shape[-1]) if t.name == graph.inputs[0]
                else v.reshape(-1, 1).astype(np.float64))
    for n in recurrent:
        obs.add(n.outputs[0] + ":gates", env[n.outputs[0] + ":gates"][mask].reshape(-1, 1))
        if n.op == "lstm":
            obs.add(n.outputs[1] + ":absc", np.abs(env[n.outputs[1]][mask]).reshape(-1, 1))


def _at_end(v: np.ndarray, lengths: np.ndarray, graph: Graph) -> np.ndarray:
    """Final tensors: every step of a streamable model (each is a possible end), else the end."""
    if graph.meta.get("streaming", True):
        return v[valid_mask(lengths, v.shape[1])]
    return v[np.arange(v.shape[0]), lengths - 1]


def _initial_h(graph: Graph, recurrent) -> dict[str, tuple[float, float]]:
    """A constant initial h is a value of h: the range of h must hold it (whatever the
    calibration method), or the integer model would start from a clipped state."""
    out = {}
    for n in recurrent:
        h0 = graph.tensors[n.inputs[INITIAL_STATES[n.op][0]]].data
        if h0 is not None and np.any(h0 != 0):
            out[n.outputs[0]] = (float(np.min(h0)), float(np.max(h0)))
    return out


#: hard_edges: the values within the EDGE_RANK-th of an end of the range must be at least
#: EDGE_DENSITY times as dense as over the whole range, and the test needs EDGE_MIN_VALUES.
EDGE_RANK, EDGE_DENSITY, EDGE_MIN_VALUES = 10, 0.25, 1000


def hard_edges(v: np.ndarray) -> tuple[bool, bool]:
    """Whether the lowest and the highest of the values v are hard bounds of their data: the
    values crowd against that end (a uniform or clipped signal, a sine, a one-hot or normalised
    feature) instead of thinning out in a tail (a Gaussian, a Laplacian). A tail's extreme is a
    sample of where the data can go, so headroom widens it; a hard bound is where the data
    stops. Over the distinct values (overlapping windows of one recording repeat each value,
    its extremes too), the k-th from an end (k = EDGE_RANK, or one per thousand) lies within
    k / (n · EDGE_DENSITY) of the range from it exactly when the density at that end is at
    least EDGE_DENSITY of the mean density: for uniform data the gap is about k / n of the
    range, for 1,000 Gaussian values about 14 % where the limit is 4 %."""
    v = np.unique(v)  # distinct values: windows cut from one series repeat its extremes
    n = v.size
    if n < EDGE_MIN_VALUES:
        return False, False
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return True, True
    k = max(EDGE_RANK, n // 1000)
    limit = k * (hi - lo) / (n * EDGE_DENSITY)
    return float(v[k]) - lo <= limit, hi - float(v[n - 1 - k]) <= limit


def _input_bounds(v: np.ndarray) -> tuple[float, float]:
    """The model input's reach as its data shows it: its calibrated end where that is a hard
    bound (hard_edges), else unbounded."""
    at_lo, at_hi = hard_edges(v)
    return (float(v.min()) if at_lo else -np.inf, float(v.max()) if at_hi else np.inf)


def _pinned(r: tuple[float, float], bound: tuple[float, float]) -> bool:
    """A range that headroom widened to what the tensor can reach at both ends (a bounded h, a
    sigmoid output): its bounds, not calibration, set it."""
    return r[0] <= bound[0] and r[1] >= bound[1]


def _distinct(minmax: tuple[float, float], alts: dict[str, tuple[float, float]]
              ) -> dict[str, tuple[float, float]]:
    """The methods' ranges that differ from minmax's and from each other (the first method of
    each range)."""
    out: dict[str, tuple[float, float]] = {}
    for m, r in alts.items():
        if r != minmax and r not in out.values():
            out[m] = r
    return out


def calibrate(graph: Graph, data: Dataset, method: str = "minmax", percentile: float = 99.99,
              batch: int = 64, progress: Callable[[int, int], None] | None = None,
              seq_len: int | None = None, headroom: float = 1.25) -> Graph:
    """Run the float model over the calibration set (and, with seq_len, over streams of that
    many steps) and record ranges."""
    obs = Observer(method, percentile)
    recurrent = [n for n in graph.nodes if n.op in RECURRENT]
    acts = [t for t in graph.tensors.values() if t.kind != "const"]
    sets = [data]
    if seq_len and seq_len > int(data.lengths.max()):
        sets.append(playback(data, seq_len))
    total = sum(d.n for d in sets)
    done = 0
    for ds in sets:
        step = batch if ds is data else max(1, batch * 64 // ds.x.shape[1])
        for start in range(0, ds.n, step):
            xb, lb = ds.x[start : start + step], ds.lengths[start : start + step]
            sb = {k: v[start : start + step] for k, v in (ds.states or {}).items()}
            _observe(graph, obs, acts, recurrent, xb, lb, sb)
            done += len(xb)
            if progress:
                progress(done, total)
    held = _initial_h(graph, recurrent)
    xs = data.x[valid_mask(data.lengths, data.x.shape[1])]  # [M, F] real steps
    bounds = _input_bounds(xs)
    reach = reachable(graph, {graph.inputs[0]: bounds})

    closed = bool(np.all(np.isfinite(bounds)))  # the input cannot drift at either end

    def settled(name: str, m: str | None = None) -> tuple[float, float]:
        lo, hi = obs.range(name, method=m)
        # headroom where values can drift: never past what the tensor can reach (nor inside
        # what calibration saw); with an input bounded at both ends, only where values can
        # grow without a bound (an LSTM cell over a longer stream)
        r = reach.get(name, FREE)
        grow = 1.0 if closed and np.all(np.isfinite(r)) else headroom
        lo, hi = widen(lo, hi, grow, (min(r[0], float(lo[0])), max(r[1], float(hi[0]))))
        h0lo, h0hi = held.get(name, (0.0, 0.0))
        return (min(float(lo[0]), h0lo), max(float(hi[0]), h0hi))

    for t in acts:
        t.range = settled(t.name)
    if method == "auto":  # every method's range as a candidate (range_choice chooses)
        graph.meta["range_candidates"] = {
            t.name: alts for t in acts if t.name != graph.inputs[0]
            and not _pinned(t.range, reach.get(t.name, FREE))
            and (alts := _distinct(t.range, {m: settled(t.name, m) for m in METHODS[1:]}))}
    lo, hi = obs.range(graph.inputs[0], per_channel=True)
    per = xs.reshape(-1, lo.shape[0])  # the channels as the observer saw them (last axis)
    edges = [_input_bounds(per[:, c]) for c in range(per.shape[1])]
    lo, hi = widen(lo, hi, headroom, (np.minimum([e[0] for e in edges], lo),
                                      np.maximum([e[1] for e in edges], hi)))
    graph.meta["input_channel_range"] = (lo.astype(np.float64), hi.astype(np.float64))
    for n in recurrent:  # (auto: minmax, as for the input)
        glo, ghi = obs.range(n.outputs[0] + ":gates")
        n.attrs["gate_range"] = (float(glo[0]), float(ghi[0]))
        if n.op == "lstm":
            n.attrs["cell_absmax"] = float(obs.range(n.outputs[1] + ":absc")[1][0])
    graph.meta["calibration"] = {**obs.meta(), "sequences": data.n,
                                 "seq_len": seq_len or int(data.lengths.max()),
                                 "headroom": headroom,
                                 "input_hard_bounds": [bool(np.isfinite(b)) for b in bounds]}
    graph.stage = Stage.CALIBRATED
    return graph


def ranges_record(g: Graph) -> dict:
    """What calibration found (calibration.json of a C build): with it, `apply_ranges`
    rebuilds the same calibrated graph without the data."""
    lo, hi = g.meta["input_channel_range"]
    per = {k: int(v) for k, v in g.meta.get("layer_state_bits", {}).items()}
    rw = {k: int(v) for k, v in g.meta.get("layer_rw_bits", {}).items()}
    auto = g.meta["calibration"]["method"] == "auto"
    return ({"layer_state_bits": per} if per else {}) | (
        {"layer_rw_bits": rw} if rw else {}) | (
        {"range_methods": dict(g.meta.get("range_methods", {}))} if auto else {}) | {
        "meta": g.meta["calibration"],
        "tensors": {t.name: list(t.range) for t in g.tensors.values() if t.range is not None},
        "input_channel_range": [lo.tolist(), hi.tolist()],
        "input_bits": int(g.meta.get("input_bits", 8)),
        "output_bits": int(g.meta.get("output_bits", 8)),
        "gru_state_bits": int(g.meta.get("gru_state_bits", 8)),
        "lstm_state_bits": int(g.meta.get("lstm_state_bits", 8)),
        "rnn_state_bits": int(g.meta.get("rnn_state_bits", 8)),
        "input_scales": g.meta.get("input_scales", "feature"),
        "bias_correction": g.meta.get("bias_correction", {}),
        "recurrent": {n.outputs[0]: {k: n.attrs[k] for k in ("cell_absmax", "gate_range")
                                     if k in n.attrs}
                      for n in g.nodes if n.op in RECURRENT},
    }


def apply_ranges(g: Graph, record: dict) -> Graph:
    """Float graph + a `ranges_record` -> the calibrated graph it was recorded from."""
    unknown = sorted(set(record["tensors"]) - set(g.tensors))
    if unknown:
        raise RnnqError(f"calibration.json does not match this rnnq's import of the model "
                        f"({len(unknown)} tensors it does not make, e.g. {unknown[0]!r}): the "
                        "build was made by another rnnq version; compile it again")
    for name, r in record["tensors"].items():
        g.tensors[name].range = (float(r[0]), float(r[1]))
    lo, hi = record["input_channel_range"]
    g.meta["input_channel_range"] = (np.array(lo, np.float64), np.array(hi, np.float64))
    for n in g.nodes:
        if n.op in RECURRENT:
            n.attrs.update(record["recurrent"][n.outputs[0]])
    g.meta["calibration"] = record["meta"]
    chosen = record.get("range_methods", {})  # auto: the method each range came from
    if (not isinstance(chosen, dict) or not set(chosen) <= set(record["tensors"])
            or not set(chosen.values()) <= set(METHODS)):
        raise RnnqError("calibration.json: 'range_methods' names tensors without a range or "
                        f"methods other than {', '.join(METHODS)}")
    if chosen:
        g.meta["range_methods"] = dict(chosen)
    # builds from before 16-bit inputs and states: 8
    g.meta["input_bits"] = int(record.get("input_bits", 8))
    g.meta["output_bits"] = int(record.get("output_bits", 8))  # older builds: int8 outputs
    g.meta["gru_state_bits"] = int(record.get("gru_state_bits", 8))
    g.meta["lstm_state_bits"] = int(record.get("lstm_state_bits", 8))
    g.meta["rnn_state_bits"] = int(record.get("rnn_state_bits", 8))
    if record.get("input_scales", "feature") not in ("feature", "tensor"):
        raise RnnqError("calibration.json: 'input_scales' is neither 'feature' nor 'tensor'")
    g.meta["input_scales"] = record.get("input_scales", "feature")  # older builds: per feature
    per = record.get("layer_state_bits", {})
    if (not isinstance(per, dict) or not set(per) <= {n.outputs[0] for n in g.nodes}
            or not set(per.values()) <= {8, 16}):
        raise RnnqError("calibration.json: 'layer_state_bits' names nodes this model does not "
                        "have or widths other than 8 and 16")
    g.meta["layer_state_bits"] = {k: int(v) for k, v in per.items()}
    rw = record.get("layer_rw_bits", {})  # 16-bit recurrent weights (absent in older builds)
    if (not isinstance(rw, dict) or not set(rw) <= {n.outputs[0] for n in g.nodes}
            or not set(rw.values()) <= {8, 16}):
        raise RnnqError("calibration.json: 'layer_rw_bits' names nodes this model does not "
                        "have or widths other than 8 and 16")
    g.meta["layer_rw_bits"] = {k: int(v) for k, v in rw.items()}
    corr = record.get("bias_correction", {})
    if not isinstance(corr, dict) or not set(corr) <= {n.outputs[0] for n in g.nodes}:
        raise RnnqError("calibration.json: 'bias_correction' names nodes this model does not "
                        "have")
    bias_correction.apply(g, corr)
    g.meta["bias_correction"] = corr
    g.stage = Stage.CALIBRATED
    return g

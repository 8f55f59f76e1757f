"""The three differential checks of one fuzz model (tests/fuzz/models.py), each returning an
Outcome instead of raising, so that the driver (tools/fuzz.py) can run hundreds and report.

- float: rnnq's float reference (float64) against onnxruntime (float32) on every output at
  every real step: |rnnq - onnxruntime| <= FLOAT_ATOL + COND_K * A per sequence and output,
  where A is how far the float64 reference moves when its recurrent states are rounded to
  float32 at every step (float_ref's `fake` hook): the model's own amplification of float32
  rounding on that input. Well-conditioned models have A ~ 1e-7 (the bound is the plain
  1e-5); chaotic ones (large weights) and exploding Relu RNNs have A up to their output
  range, and there float32 onnxruntime disagrees with itself as much (see COND_K).
- c: the generated C for the host target (ASan + UBSan) against the integer simulator, exactly,
  at every step through `_step` and `_run` (`rnnq.api.validate`).
- tflite: the `--format tflite` build in LiteRT against the simulator's LiteRT profile, exactly
  (`validate`); a model that --format tflite refuses at compile time with one line naming the
  op (what it cannot express, or what LiteRT could not run quantised) is "unsupported".

A missing tool (cc with working sanitisers, LiteRT) makes a check "skip", or "fail" when CI=true.
"""

from __future__ import annotations

import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from rnnq.api import compile_model, float_graph, validate
from rnnq.backends.tflite import support
from rnnq.ir import RnnqError
from rnnq.ir.ops import RECURRENT
from rnnq.sim.float_ref import run_float
from tests.cbuild import in_ci, sanitizers_work
from tests.fuzz.models import (
    FuzzSpec,
    build_model,
    calibration,
    extreme_inputs,
    lengths_for,
    spec_for,
    states_for,
)

CHECKS = ("float", "c", "tflite")
#: rnnq float reference vs onnxruntime, absolute.
FLOAT_ATOL = 1e-5
#: How many times the float32-state amplification A (float_check) onnxruntime may differ by.
#: Measured on seeds 0-1199: (|rnnq - onnxruntime| - 1e-5) / A at most 310 at a single step,
#: at most 170 per sequence and output. A semantic error gives far more: GRU read with the other
#: linear_before_reset fails 74 of seeds 0-119, every one with a ratio above 2.8e4.
COND_K = 1000.0
N_CALIB = 32


@dataclass
class Outcome:
    check: str
    status: str  # ok, fail, skip (tool missing), unsupported (rnnq refuses, documented)
    detail: str = ""
    value: float = 0.0  # float: max |rnnq - onnxruntime|; c / tflite: values compared
    ratio: float = 0.0  # float: max over sequences of (|rnnq - onnxruntime| - FLOAT_ATOL) / A
    conditioned: int = 0  # float: sequences beyond FLOAT_ATOL that the condition term covers


@dataclass
class Case:
    """A fuzz model written to disk with its data."""

    spec: FuzzSpec
    model: Path
    calib: dict
    test: dict


def missing(check: str, what: str) -> Outcome:
    return Outcome(check, "fail" if in_ci() else "skip", f"{what} (CI=true: required)"
                   if in_ci() else what)


def make_case(seed: int, work: Path) -> Case:
    s = spec_for(seed)
    work.mkdir(parents=True, exist_ok=True)
    model = work / "model.onnx"
    onnx.save(build_model(s), str(model))
    x_cal = calibration(s, N_CALIB)
    x = extreme_inputs(s, x_cal)
    n = x.shape[0]
    lengths = lengths_for(s, n)
    x[np.arange(s.t)[None, :] >= lengths[:, None]] = 0.0  # padding: must not matter
    calib = {"x": x_cal, **states_for(s, N_CALIB)}
    test = {"x": x, "lengths": lengths, **{k: v[::-1].copy() for k, v in states_for(s, n).items()}}
    if s.seq_lens:
        calib["lengths"] = lengths_for(s, N_CALIB)
    return Case(s, model, calib, test)


def _guard(check: str, fn) -> Outcome:
    try:
        return fn()
    except RnnqError as e:
        return Outcome(check, "fail", f"rnnq refused: {e}")
    except Exception as e:  # noqa: BLE001 - a fuzz finding: report it, carry on
        tb = traceback.format_exc(limit=-3).strip().splitlines()
        return Outcome(check, "fail", f"{type(e).__name__}: {e} [{' / '.join(tb[-4:-1])}]")


def _f32(v: np.ndarray) -> np.ndarray:
    return v.astype(np.float32).astype(np.float64)


def float_check(case: Case) -> Outcome:
    """rnnq's float reference against onnxruntime on every output at every real step, bounded
    by the model's float32 amplification (module docstring)."""
    import onnxruntime as ort

    def run() -> Outcome:
        s, test = case.spec, case.test
        g = float_graph(case.model)
        states = {k: test[k].astype(np.float64) for k in s.state_inputs()}
        env = run_float(g, test["x"], lengths=test["lengths"], states=states)
        fake = {o: _f32 for n in g.nodes if n.op in RECURRENT for o in n.outputs}
        env32 = run_float(g, test["x"], lengths=test["lengths"], states=states, fake=fake)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(case.model), opts, providers=["CPUExecutionProvider"])
        out = Outcome("float", "ok")
        bad = []
        for i, n_real in enumerate(test["lengths"]):
            feed = {"x": test["x"][i][:, None, :], **{k: test[k][i] for k in s.state_inputs()}}
            if s.seq_lens:
                feed["seq_lens"] = np.array([n_real], np.int32)
            for name, got in zip(g.outputs, sess.run(g.outputs, feed)):
                t = g.tensors[name]
                if t.kind == "seq":
                    got = np.moveaxis(got, t.time_axis, 0)[:n_real].reshape(n_real, *t.shape)
                    ref, ref32 = env[name][i, :n_real], env32[name][i, :n_real]
                else:
                    got = got.reshape(t.shape)
                    ref, ref32 = env[name][i, n_real - 1], env32[name][i, n_real - 1]
                err = float(np.max(np.abs(ref - got)))
                amp = float(np.max(np.abs(ref - ref32)))
                out.value = max(out.value, err)
                if err > FLOAT_ATOL:
                    ratio = (err - FLOAT_ATOL) / amp if amp > 0 else np.inf
                    out.ratio = max(out.ratio, ratio)
                    if ratio > COND_K:
                        bad.append(f"{name}, sequence {i}: {err:.3g} (float32 amplification "
                                   f"{amp:.2g})")
                    else:
                        out.conditioned += 1
        if bad:
            out.status, out.detail = "fail", f"|rnnq - onnxruntime| beyond bound: {bad[0]}"
        elif out.conditioned:
            out.detail = (f"{out.conditioned} output(s) beyond {FLOAT_ATOL:g}, within "
                          f"{out.ratio:.3g} x their float32 amplification")
        return out

    return _guard("float", run)


def c_check(case: Case, work: Path) -> Outcome:
    """Generated C (host target: ASan + UBSan) against the simulator, bit for bit."""
    if shutil.which("cc") is None or shutil.which("make") is None:
        return missing("c", "cc or make not installed")
    if not sanitizers_work("cc"):
        return missing("c", "cc cannot build and run ASan/UBSan programs")

    def run() -> Outcome:
        build = work / "c"
        compile_model(case.model, case.calib, build, "host", f"f{case.spec.seed}")
        c = validate(build, case.test)["c"]
        if c["compared_values"] > 0 and c["mismatches"] == 0 and c["bit_exact"] is True:
            return Outcome("c", "ok", value=c["compared_values"])
        return Outcome("c", "fail", f"C vs simulator: {c['mismatches']} of "
                       f"{c['compared_values']} values differ", c["compared_values"])

    return _guard("c", run)


def tflite_check(case: Case, work: Path) -> Outcome:
    """model.tflite in LiteRT against the simulator's LiteRT profile, bit for bit."""
    try:
        support.require("ai_edge_litert", "tflite", "flatbuffers")
    except RnnqError as e:
        return missing("tflite", str(e))
    s = case.spec
    if s.seq_lens or s.state_inputs():
        return Outcome("tflite", "unsupported", "sequence_lens / state inputs (documented)")

    def run() -> Outcome:
        build = work / "tflite"
        try:
            compile_model(case.model, {"x": case.calib["x"]}, build, fmt="tflite")
        except RnnqError as e:  # refused with one line naming the op: the documented contract
            return Outcome("tflite", "unsupported", str(e))
        rep = validate(build, {"x": case.test["x"]})
        tf, micro = rep["tflite"], rep["tflite_micro"]
        # reported, not checked: TFLite Micro against LiteRT
        note = (f"TFLite Micro: {micro['mismatches_vs_litert']} of {micro['compared_values']} "
                "differ from LiteRT" if micro.get("ran") else f"TFLite Micro: {micro['reason']}")
        if tf["compared_values"] > 0 and tf["mismatches"] == 0 and tf["bit_exact"] is True:
            return Outcome("tflite", "ok", note, tf["compared_values"])
        return Outcome("tflite", "fail", f"LiteRT vs simulator: {tf['mismatches']} of "
                       f"{tf['compared_values']} values differ; {note}", tf["compared_values"])

    return _guard("tflite", run)


def run_checks(seed: int, work: Path, checks: tuple[str, ...] = CHECKS) -> list[Outcome]:
    """The chosen checks of one seed, in CHECKS order."""
    case = make_case(seed, work)
    out = []
    for check in checks:
        if check == "float":
            out.append(float_check(case))
        elif check == "c":
            out.append(c_check(case, work))
        else:
            out.append(tflite_check(case, work))
    return out


def repro(seed: int, check: str) -> str:
    """The command that reruns one check of one seed."""
    return f".venv/bin/python tools/fuzz.py --seed {seed} --case {check}"

"""A fixed-seed slice of the differential fuzzing that `make fuzz` runs at scale (tools/fuzz.py,
tests/fuzz/checks.py): the float check on many seeds (cheap), the C and LiteRT checks on a
few chosen to cover state inputs, sequence_lens, stacked and bidirectional layers; why the
float check has a condition term, and proof that it still catches a change of ONNX semantics.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnq.sim import float_ref
from tests.backends.tflite.tflite_common import require_litert
from tests.e2e.test_random_lstm import require_c_toolchain
from tests.fuzz.checks import COND_K, c_check, float_check, make_case, repro, tflite_check
from tests.fuzz.models import (
    DIRECTIONS,
    INPUT_KINDS,
    KINDS,
    STATES,
    calibration,
    describe,
    extreme_inputs,
    spec_for,
)

ROOT = Path(__file__).resolve().parents[2]
FLOAT_SEEDS = range(60)
#: seq_lens + state inputs + GRU (both resets) + LSTM, reverse, clip; bidirectional stack
C_SEEDS = (1, 13)
#: Relu RNN reverse with clip + GRU linear_before_reset=1; LSTM reverse with constant states
TFLITE_SEEDS = (9, 5)


def test_slice_covers_the_generator() -> None:
    specs = [spec_for(sd) for sd in FLOAT_SEEDS]
    layers = [ly for s in specs for ly in s.layers]
    assert {ly.kind for ly in layers} == set(KINDS)
    assert {ly.direction for ly in layers} == set(DIRECTIONS)
    assert {ly.state for ly in layers} == set(STATES)
    assert {len(s.layers) for s in specs} == {1, 2, 3}
    assert any(ly.clip for ly in layers) and any(ly.peepholes for ly in layers)
    assert {s.seq_lens for s in specs} == {True, False} and {s.y_h for s in specs} == {True, False}
    gains = [ly.gain for ly in layers]
    assert min(gains) < 2e-3 and max(gains) > 3.5
    s = spec_for(0)
    x_cal = calibration(s, 32)
    x = extreme_inputs(s, x_cal)
    assert x.shape == (2 * len(INPUT_KINDS), s.t, s.f)
    width = x_cal.max(axis=(0, 1)) - x_cal.min(axis=(0, 1))
    assert np.all(x.max(axis=(0, 1)) - x.min(axis=(0, 1)) > 9 * width)  # 10x the range


@pytest.mark.parametrize("seed", FLOAT_SEEDS)
def test_float_reference_matches_onnxruntime(seed: int, tmp_path: Path) -> None:
    out = float_check(make_case(seed, tmp_path))
    assert out.status == "ok", f"{describe(spec_for(seed))}: {out.detail}\n{repro(seed, 'float')}"


def test_chaotic_model_is_bounded_by_its_condition(tmp_path: Path) -> None:
    """Seed 2 (a GRU with weights U(+-3.35)) is why the float check has a condition term: rnnq
    and onnxruntime differ by more than 1e-5, and so does onnxruntime from itself when the
    input moves by one float32 ulp."""
    import onnxruntime as ort

    case = make_case(2, tmp_path)
    out = float_check(case)
    assert out.status == "ok" and out.value > 1e-5 and out.conditioned > 0, out
    sess = ort.InferenceSession(str(case.model), providers=["CPUExecutionProvider"])
    feed = {k: case.test[k][2] for k in case.spec.state_inputs()}
    x = case.test["x"][2][:, None, :]
    (y,) = sess.run(["Y"], {"x": x, **feed})
    (y_ulp,) = sess.run(["Y"], {"x": np.nextafter(x, np.float32(np.inf)), **feed})
    assert np.max(np.abs(y - y_ulp)) > 1e-3


def test_float_check_catches_a_semantic_change(tmp_path: Path, monkeypatch) -> None:
    """The condition bound must not hide real differences: GRU with linear_before_reset read
    the other way fails on a well-conditioned seed (17: one GRU, gain 0.58)."""
    gru = float_ref._RECURRENT["gru"]

    def swapped(x, w, r, wb, rb, h0, attrs, **kw):
        return gru(x, w, r, wb, rb, h0, {**attrs, "linear_before_reset":
                                         1 - attrs["linear_before_reset"]}, **kw)

    case = make_case(17, tmp_path)
    assert float_check(case).status == "ok"
    monkeypatch.setitem(float_ref._RECURRENT, "gru", swapped)
    out = float_check(case)
    assert out.status == "fail" and out.ratio > COND_K, out


@pytest.mark.parametrize("seed", C_SEEDS)
def test_c_matches_simulator(seed: int, tmp_path: Path) -> None:
    require_c_toolchain("host")
    out = c_check(make_case(seed, tmp_path), tmp_path)
    assert out.status == "ok", f"{describe(spec_for(seed))}: {out.detail}\n{repro(seed, 'c')}"


@pytest.mark.parametrize("seed", TFLITE_SEEDS)
def test_tflite_matches_simulator(seed: int, tmp_path: Path) -> None:
    require_litert()
    out = tflite_check(make_case(seed, tmp_path), tmp_path)
    assert out.status == "ok", f"{describe(spec_for(seed))}: {out.detail}\n{repro(seed, 'tflite')}"


def test_driver_prints_one_line_per_model_and_a_summary() -> None:
    proc = subprocess.run([sys.executable, "tools/fuzz.py", "--seed", "3", "--case", "float"],
                          cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("float=ok") and "seed 3:" in lines[0], proc.stdout
    assert lines[-1].startswith("1 models, 0 with a failing check"), proc.stdout

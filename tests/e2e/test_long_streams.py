"""Long streams (issue 10 item 5): a GRU whose update gate is near 1 moves its state by less than
an int8 step per call; an 8-bit state rounds those updates away and freezes where the float
state does not. With the 16-bit GRU state (--state-bits auto) the error per decade of steps
stays where it starts. 10^5 steps of constant maximal input (each feature at its largest
calibration value), float reference against the integer simulator; the C is checked against the
simulator on the same stream, every step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnq.api import compile_model, open_graphs, validate
from rnnq.report import sqnr_db
from rnnq.sim.float_ref import run_float
from rnnq.sim.integer import dequantize_output, quantize_input, run_integer

ROOT = Path(__file__).resolve().parents[2]
GRU = ROOT / "examples" / "basic_motions_gru"
STEPS = 100_000


def _stream(example: Path, steps: int) -> np.ndarray:
    cal = np.load(example / "calib.npz")["x"]
    top = cal.reshape(-1, cal.shape[-1]).max(axis=0)
    return np.broadcast_to(top, (1, steps, cal.shape[-1])).astype(np.float32).copy()


def _decades(build: Path, x: np.ndarray) -> list[float]:
    """SQNR (dB) of the first output against float over steps [1, 10], [10, 100], ..."""
    _, fg, ig = open_graphs(build)
    out = ig.outputs[0]
    yf = run_float(fg, x)[out].reshape(x.shape[1], -1)
    yi = dequantize_output(ig, out, run_integer(ig, quantize_input(ig, x))[out])
    yi = yi.reshape(x.shape[1], -1)
    res, d = [], 1
    while d < x.shape[1]:
        sl = slice(d - 1, min(10 * d, x.shape[1]))
        res.append(sqnr_db(yf[sl], yi[sl]))
        d *= 10
    return res


@pytest.fixture(scope="module")
def stream() -> np.ndarray:
    return _stream(GRU, STEPS)


def test_gru_error_per_decade_stays_within_3db(stream, tmp_path: Path) -> None:
    build = tmp_path / "b"
    m = compile_model(GRU / "model.onnx", GRU / "calib.npz", build)
    assert [r["state_bits"] for r in m["recurrent"] if r["kind"] == "gru"] == [16]
    dec = _decades(build, stream)
    print("16-bit GRU state, SQNR per decade:", " ".join(f"{v:.1f}" for v in dec))
    assert len(dec) == 5
    assert min(dec) >= dec[0] - 3.0
    # the C follows the simulator over the whole stream (every _step, and _run)
    data = tmp_path / "stream.npz"
    np.savez(data, x=stream)
    rep = validate(build, data)
    assert rep["c"]["bit_exact"] and rep["c"]["compared_values"] >= STEPS


def test_gru_with_an_8bit_state_freezes(stream, tmp_path: Path) -> None:
    """What the 16-bit state fixes (the state before it): the same GRU with --state-bits 8."""
    build = tmp_path / "b8"
    compile_model(GRU / "model.onnx", GRU / "calib.npz", build, state_bits=8)
    dec = _decades(build, stream)
    print("8-bit GRU state, SQNR per decade:", " ".join(f"{v:.1f}" for v in dec))
    assert min(dec) < dec[0] - 10.0

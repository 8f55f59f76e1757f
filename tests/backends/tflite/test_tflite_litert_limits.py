"""Files rnnq writes load and run in LiteRT as users run it, or are refused at compile time:

- scales so large that LiteRT's float32 rescale overflows (an exploding ReLU recurrence): LiteRT
  aborted the process while preparing the op (SIGABRT at validate); now one line naming the
  node, exit 2, nothing written;
- a FULLY_CONNECTED whose rescale s_in*s_w/s_out is 256 or more: LiteRT's builtin kernels run it
  but its default XNNPACK delegate fails to prepare ("internal error" at validate); now the
  output range is widened below the limit and the default interpreter loads the file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from tflite_common import require_litert

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cli"))
from cli_helpers import run_rnnq
from onnx_cases import F, H, Net

from rnnq.api import compile_model, validate
from rnnq.ir import RnnqError
from rnnq.ir.tgraph import TGraph, TTensor
from rnnq.sim.litert.constraints import XNNPACK_FC_MAX_RESCALE, problem, xnnpack_fc_rescale
from rnnq.sim.litert.interpreter import run

T_RELU = 40


def _relu_rnn(path: Path, gain: float) -> Path:
    """x -> RNN (Relu, weights ~ N(0, gain/2)) -> h_T: activations grow like gain^t."""
    n = Net(seed=4)
    w, r = n.w(1, H, F, scale=0.5 * gain), n.w(1, H, H, scale=0.5 * gain)
    b = n.w(1, 2 * H, scale=0.3)
    _, y_h = n.op("RNN", "x", w, r, b, hidden_size=H, activations=["Relu"], n_out=2,
                  out="relu_y")
    return n.save(path, ["T", 1, F], [n.squeeze(y_h, 0)])


def _data(path: Path, n: int, seed: int, t_len: int = T_RELU, same01: bool = False) -> Path:
    x = np.random.default_rng(seed).normal(size=(n, t_len, F)).astype(np.float32)
    if same01:
        x[..., 1] = x[..., 0]
    np.savez(path, x=x)
    return path


def test_exploding_relu_rnn_is_refused_in_one_line(tmp_path: Path) -> None:
    """Weights x8: h grows to ~1e36 over 40 steps, int8 scales to 2.7e34. LiteRT's int8 ADD
    forms 2^20 * s_out in float32 (overflow: multiplier 0) and aborts the process in Prepare.
    rnnq refuses at compile time naming the ONNX node and the op; nothing is written. The C
    backend (its own ADD, double-precision multipliers) compiles the same model, and so does
    the default .tflite, whose int16 layer has 128x finer scales and forms 2^15 * s_out: it
    loads and runs bit-exact (in a child process: an abort would be exit 134)."""
    require_litert()
    model = _relu_rnn(tmp_path / "relu8.onnx", 8.0)
    calib = _data(tmp_path / "c.npz", 16, 0)
    r = run_rnnq("compile", model, "--calib", calib, "--format", "tflite", "-o",
                 tmp_path / "w", "-q")
    assert r.code == 0, r.err
    r = run_rnnq("validate", tmp_path / "w", "--data", _data(tmp_path / "t.npz", 4, 1))
    assert r.code == 0 and "LiteRT bit-exact" in r.out and "yes (0 of" in r.out, r.err + r.out
    r = run_rnnq("compile", model, "--calib", calib, "--format", "tflite", "--precision", "int8",
                 "-o", tmp_path / "b", "-q")
    assert r.code == 2, r.err
    assert len(r.err_lines) == 1 and "Traceback" not in r.err, r.err
    msg = r.err_lines[0]
    assert "node RNN_" in msg and "(rnn)" in msg and "(ADD -> " in msg, msg
    assert "overflows float32" in msg and "LiteRT" in msg, msg
    assert not (tmp_path / "b").exists()
    assert run_rnnq("compile", model, "--calib", calib, "-o", tmp_path / "c", "-q").code == 0


def test_large_but_representable_relu_rnn_still_compiles_and_validates(tmp_path: Path) -> None:
    """Weights x4: scales up to ~1e22 are within what LiteRT's float32 rescales take. It is
    compiled and validated (in a child process: an abort would be exit 134), bit-exact."""
    require_litert()
    model = _relu_rnn(tmp_path / "relu4.onnx", 4.0)
    out = tmp_path / "b"
    r = run_rnnq("compile", model, "--calib", _data(tmp_path / "c.npz", 16, 0), "--format",
                 "tflite", "-o", out, "-q")
    assert r.code == 0, r.err
    r = run_rnnq("validate", out, "--data", _data(tmp_path / "t.npz", 4, 1))
    assert r.code == 0, r.err + r.out
    assert "LiteRT bit-exact" in r.out and "yes" in r.out, r.out


def _add_graph(s_a: float, s_b: float, s_y: float) -> TGraph:
    g = TGraph()
    a, b, y = (g.add(TTensor(k, "int8", (1, 4), scale=np.float32(s), zero_point=0))
               for k, s in (("a", s_a), ("b", s_b), ("y", s_y)))
    g.op("ADD", [a, b], [y], FusedActivationFunction=0)
    g.inputs, g.outputs = [a, b], [y]
    return g


def test_add_whose_float32_rescale_overflows_is_a_problem() -> None:
    """2^20 * 1e33 overflows float32; 2^20 * 1e31 does not (both multipliers below 1)."""
    ok = _add_graph(1.0, 1e31, 1e31)
    assert problem(ok, ok.ops[0]) is None
    bad = _add_graph(1.0, 1e33, 1e33)
    assert "overflows float32" in problem(bad, bad.ops[0])
    x = np.zeros((1, 4), np.int8)
    with pytest.raises(ValueError, match="overflows float32"):  # the profile refuses it too
        run(bad, [x, x])


# --- FULLY_CONNECTED and XNNPACK -----------------------------------------------------------
def _cancelling_dense(path: Path) -> Path:
    """x -> MatMul (features 0 and 1 weighted +10 and -10, feature 2 by 5e-5) -> LSTM -> Gemm.
    On data whose features 0 and 1 are equal the MatMul's output range is ~1e-4 wide while its
    input and weights are large: a rescale s_in*s_w/s_out of ~2200."""
    n = Net(seed=6)
    w = n.c(np.array([[10.0, -10.0, 5e-5]] * 4, np.float32).T)
    h = n.squeeze(n.lstm(n.op("MatMul", "x", w), 4, outputs=("", "Y_h"))[1], 0)
    return n.save(path, ["T", 1, F], [n.gemm(h, H)])


def _fc_rescales(blob: bytes) -> list[float]:
    from rnnq.backends.tflite.reader import read_tflite

    q = read_tflite(blob)
    return [float(xnnpack_fc_rescale(q.tensors[op.inputs[0]].scales()[0],
                                     q.tensors[op.inputs[1]].scales(),
                                     q.tensors[op.outputs[0]].scales()[0]).max())
            for op in q.ops if op.kind == "FULLY_CONNECTED"]


def test_dense_rescale_stays_below_xnnpack_limit(tmp_path: Path) -> None:
    """The file loads and runs in LiteRT's default interpreter (XNNPACK on; it raised "failed
    to create XNNPACK runtime" before), every FULLY_CONNECTED rescale is below 256, and the file
    stays bit-exact against the LiteRT profile."""
    require_litert()
    from rnnq.backends.tflite import runtime

    model = _cancelling_dense(tmp_path / "fc.onnx")
    out = tmp_path / "b"
    compile_model(model, _data(tmp_path / "c.npz", 16, 0, 7, same01=True), out, fmt="tflite")
    blob = (out / "model.tflite").read_bytes()
    rescales = _fc_rescales(blob)
    print(f"FULLY_CONNECTED rescales: {[f'{r:.4g}' for r in rescales]}")
    assert max(rescales) < XNNPACK_FC_MAX_RESCALE
    assert max(rescales) > 200  # the widened layer sits just below the limit
    it = runtime.interpreter(blob, "auto")  # LiteRT's default: XNNPACK delegate applied
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()
    test = _data(tmp_path / "t.npz", 4, 1, 7, same01=True)
    rep = validate(out, test)
    tf = rep["tflite"]
    print(f"LiteRT {tf['mismatches']}/{tf['compared_values']} differ, SQNR "
          f"{rep['int']['sqnr_db']:.1f} dB")
    assert tf["bit_exact"] and tf["compared_values"] > 0, tf


def _fc_graph(rescale: float) -> TGraph:
    g = TGraph()
    s_x, s_w = 0.01, 0.02
    x = g.add(TTensor("x", "int8", (1, 4), scale=np.float32(s_x), zero_point=0))
    w = g.const("w", np.full((2, 4), 50, np.int8), scale=np.full(2, s_w, np.float32),
                zero_point=np.zeros(2, np.int64), qdim=0)
    sb = np.full(2, np.float32(s_x) * np.float32(s_w), np.float32)
    b = g.const("b", np.zeros(2, np.int32), scale=sb, zero_point=np.zeros(2, np.int64), qdim=0)
    y = g.add(TTensor("y", "int8", (1, 2), scale=np.float32(s_x * s_w / rescale), zero_point=0))
    g.op("FULLY_CONNECTED", [x, w, b], [y], FusedActivationFunction=0, KeepNumDims=True)
    g.inputs, g.outputs = [x], [y]
    return g


@pytest.mark.parametrize(("rescale", "loads"), [(255.9, True), (256.0, False), (1514.0, False)])
def test_xnnpack_fc_limit_matches_litert(rescale: float, loads: bool) -> None:
    """The limit as rnnq states it (constraints.XNNPACK_FC_MAX_RESCALE) is where LiteRT's
    default interpreter stops loading a one-layer file; the builtin kernels (what the profile
    models) run both, so the simulator does not refuse it, a file rnnq writes does."""
    require_litert()
    from rnnq.backends.tflite import runtime
    from rnnq.backends.tflite.emit import check
    from rnnq.backends.tflite.writer import to_flatbuffer

    g = _fc_graph(rescale)
    blob = to_flatbuffer(g)
    try:
        runtime.interpreter(blob, "auto")
        loaded = True
    except RuntimeError as e:
        assert "XNNPACK" in str(e), e
        loaded = False
    assert loaded == loads
    runtime.interpreter(blob, "builtin")
    assert problem(g, g.ops[0], strict=False) is None
    if loads:
        check(g, float_io=False)
    else:
        with pytest.raises(RnnqError, match=r"FULLY_CONNECTED -> y\).*XNNPACK .*below 256"):
            check(g, float_io=False)


def test_always_zero_dense_output_is_widened_too(tmp_path: Path) -> None:
    """Fuzz seed 328 (bidirectional GRU over T = 1 from a zero initial state): the h-side
    FULLY_CONNECTED of the first step reads h0 = 0, so its output range is one point (scale
    2^-24, rescale ~430). Scaling that range about zero leaves it one point; it is given
    [-128, 127] steps of the scale the limit needs instead, and the file loads with XNNPACK."""
    require_litert()
    from rnnq.backends.tflite import runtime
    from tests.fuzz.checks import make_case

    case = make_case(328, tmp_path)
    out = tmp_path / "b"
    compile_model(case.model, {"x": case.calib["x"]}, out, fmt="tflite")
    blob = (out / "model.tflite").read_bytes()
    assert max(_fc_rescales(blob)) < XNNPACK_FC_MAX_RESCALE
    runtime.interpreter(blob, "auto").invoke()
    tf = validate(out, {"x": case.test["x"]})["tflite"]
    assert tf["bit_exact"] and tf["compared_values"] > 0, tf

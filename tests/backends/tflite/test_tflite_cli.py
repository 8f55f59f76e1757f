"""`rnnq compile --format tflite` / `rnnq validate` as a user runs them: the bundled
JapaneseVowels LSTM, int8 and float I/O, and the one-line errors (exit 2, nothing written)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from tflite_common import require_litert

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cli"))
from cli_helpers import run_rnnq

ROOT = Path(__file__).resolve().parents[3]
JV = ROOT / "examples" / "japanese_vowels"
#: The issue's bar: integer accuracy within 1.5 points of float.
MAX_ACCURACY_DROP = 0.015


def _floats(path: Path, edges: bool) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    io = {d["index"] for d in it.get_input_details() + it.get_output_details()}
    return [d["name"] for d in it.get_tensor_details()
            if d["dtype"] == np.float32 and (edges or d["index"] not in io)]


@pytest.mark.parametrize("float_io", [False, True])
def test_example_compiles_and_validates(float_io: bool, tmp_path: Path) -> None:
    require_litert()
    out = tmp_path / "b"
    flag = ["--float-io"] if float_io else []
    r = run_rnnq("compile", JV / "model.onnx", "--calib", JV / "calib.npz", "--format",
                 "tflite", "-o", out, *flag)
    assert r.code == 0, r.err
    assert f"{out}/model.tflite" in r.out
    r = run_rnnq("inspect", out)
    assert r.code == 0 and "UNIDIRECTIONAL_SEQUENCE_LSTM" in r.out, r.err
    r = run_rnnq("validate", out, "--data", JV / "test.npz", "--json", tmp_path / "rep.json")
    assert r.code == 0, r.err + r.out
    rep = json.loads((tmp_path / "rep.json").read_text())
    tf = rep["tflite"]
    assert set(tf) >= {"bit_exact", "mismatches", "compared_values", "runtime"}
    assert tf["bit_exact"] is True and tf["mismatches"] == 0 and tf["compared_values"] > 0
    drop = rep["float"]["accuracy"] - rep["int"]["accuracy"]
    print(f"float_io={float_io}: float {rep['float']['accuracy']:.4f}, int "
          f"{rep['int']['accuracy']:.4f}, SQNR {rep['int']['sqnr_db']:.1f} dB, "
          f"TFLM {rep['tflite_micro']}")
    assert drop <= MAX_ACCURACY_DROP, rep
    assert rep["tflite_micro"]["ran"] is True
    model = out / "model.tflite"
    assert _floats(model, edges=False) == []
    edge_floats = _floats(model, edges=True)
    assert bool(edge_floats) == float_io, edge_floats


def test_unsupported_model_one_line_exit_2(tmp_path: Path) -> None:
    """Batch 2 inside the model: TFLite's graph here runs batch 1; refused before
    calibration, one line naming the node, nothing written."""
    require_litert()
    sys.path.insert(0, str(ROOT / "tests" / "frontend"))
    from onnx_cases import F, Net

    n = Net(seed=1)
    h = n.squeeze(n.lstm("x", F, outputs=("", "Y_h"))[1], 0)
    model = n.save(tmp_path / "b2.onnx", ["T", 2, F], [h])
    x = np.random.default_rng(0).normal(size=(8, 10, 2 * F)).astype(np.float32)
    np.savez(tmp_path / "c.npz", x=x)
    r = run_rnnq("compile", model, "--calib", tmp_path / "c.npz", "--format", "tflite",
                 "-o", tmp_path / "b", "-q")
    assert r.code == 2, r.err
    assert len(r.err_lines) == 1 and "batch 2" in r.err and "tflite" in r.err, r.err
    assert "Traceback" not in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b2.onnx", "c.npz"]


def test_validate_other_length_one_line_exit_2(tmp_path: Path) -> None:
    require_litert()
    out = tmp_path / "b"
    assert run_rnnq("compile", JV / "model.onnx", "--calib", JV / "calib.npz", "--format",
                    "tflite", "-o", out).code == 0
    with np.load(JV / "test.npz") as z:
        np.savez(tmp_path / "short.npz", x=z["x"][:4, :10])
    r = run_rnnq("validate", out, "--data", tmp_path / "short.npz")
    assert r.code == 2 and len(r.err_lines) == 1 and "--seq-len 10" in r.err, r.err


def test_seq_len_longer_than_calibration(tmp_path: Path) -> None:
    """Test sequences longer than the calibration ones: --seq-len T plays the calibration
    sequences back to back; the file runs T steps and stays bit-exact."""
    require_litert()
    with np.load(JV / "test.npz") as z:
        x, y = z["x"], z["y"]
    long_x = np.concatenate([x[:40], x[40:80]], axis=1)  # 2 x 29 steps
    np.savez(tmp_path / "long.npz", x=long_x, y=y[40:80])
    out = tmp_path / "b"
    r = run_rnnq("compile", JV / "model.onnx", "--calib", JV / "calib.npz", "--format",
                 "tflite", "--seq-len", str(long_x.shape[1]), "-o", out)
    assert r.code == 0, r.err
    assert "streams of 58 steps" in r.err
    r = run_rnnq("validate", out, "--data", tmp_path / "long.npz", "--json", tmp_path / "r.json")
    assert r.code == 0, r.err + r.out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["tflite"]["bit_exact"] and rep["tflite"]["compared_values"] == 40 * 9


def test_missing_extra_is_one_clear_error() -> None:
    from rnnq.backends.tflite.support import require
    from rnnq.ir import RnnqError

    with pytest.raises(RnnqError, match=r"no_such_module_xyz: pip install 'rnnq\[tflite\]'"):
        require("flatbuffers", "no_such_module_xyz")
    require("numpy")  # present: no error


@pytest.mark.parametrize(("args", "msg"), [
    (["--format", "tflite", "--target", "cortex-m4"],
     "--target only applies to --format c (this is --format tflite)"),
    (["--format", "tflite", "--flash", "1000"],
     "--flash only applies to --format c (this is --format tflite)"),
    (["--tflite-loop", "while"], "--tflite-loop only applies to --format tflite (this is --format c)"),
    (["--float-io"], "--float-io only applies to --format tflite (this is --format c)"),
])
def test_other_format_option_is_an_error(args: list[str], msg: str, tmp_path: Path) -> None:
    r = run_rnnq("compile", JV / "model.onnx", "--calib", JV / "calib.npz", *args,
                 "-o", tmp_path / "b")
    assert r.code == 2 and r.err_lines == [f"rnnq: error: {msg}"], r.err
    assert not (tmp_path / "b").exists()


def test_litert_constraint_is_a_compile_error(tmp_path: Path) -> None:
    """An ADD whose inputs are ~10^5 times wider than its output (two large terms that almost
    cancel): LiteRT's int8 ADD needs an output multiplier below 1 and would refuse the file when
    it is loaded. rnnq says so at compile time, one line naming the op; nothing is written.
    The C backend (its own ADD) compiles the same model."""
    require_litert()
    sys.path.insert(0, str(ROOT / "tests" / "frontend"))
    from onnx_cases import F, Net

    n = Net(seed=2)
    h = n.squeeze(n.lstm("x", F, outputs=("", "Y_h"))[1], 0)
    big = n.op("Mul", h, n.c(np.float32(1000.0)))
    almost = n.op("Mul", h, n.c(np.float32(-999.999)))
    model = n.save(tmp_path / "cancel.onnx", ["T", 1, F], [n.op("Add", big, almost)])
    x = np.random.default_rng(0).normal(size=(16, 10, F)).astype(np.float32)
    np.savez(tmp_path / "c.npz", x=x)
    r = run_rnnq("compile", model, "--calib", tmp_path / "c.npz", "--format", "tflite",
                 "-o", tmp_path / "b", "-q")
    assert r.code == 2, r.err
    assert len(r.err_lines) == 1 and "(ADD ->" in r.err and "multiplier below 1" in r.err, r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz", "cancel.onnx"]
    assert run_rnnq("compile", model, "--calib", tmp_path / "c.npz", "-o", tmp_path / "c",
                    "-q").code == 0


@pytest.mark.parametrize("shape", [(1, 8), (-1,), (1, 1, 1, 8)])
def test_last_step_by_negative_gather_then_reshape(shape: tuple[int, ...],
                                                   tmp_path: Path) -> None:
    """Gather(Y, indices=[-1], axis=0) keeps a unit time axis ([1, D, B, H]) and a Reshape
    follows: this was "internal error (AssertionError)", exit 3, while the C path compiled it.
    Now it compiles (GATHER of the last step + RESHAPE) and LiteRT runs it bit-exactly."""
    require_litert()
    sys.path.insert(0, str(ROOT / "tests" / "frontend"))
    from onnx_cases import F, H, Net

    n = Net(seed=3)
    y = n.lstm("x", F, outputs=("Y",))[0]  # [T, 1, 1, H]
    last = n.reshape(n.gather(y, [-1], axis=0), *shape)
    model = n.save(tmp_path / "m.onnx", ["T", 1, F], [n.gemm(last, H) if shape == (1, H)
                                                      else last])
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "c.npz", x=rng.normal(size=(16, 7, F)).astype(np.float32))
    np.savez(tmp_path / "t.npz", x=rng.normal(size=(4, 7, F)).astype(np.float32))
    r = run_rnnq("compile", model, "--calib", tmp_path / "c.npz", "--format", "tflite",
                 "-o", tmp_path / "b", "-q")
    assert r.code == 0, r.err
    r = run_rnnq("validate", tmp_path / "b", "--data", tmp_path / "t.npz", "--json",
                 tmp_path / "r.json")
    assert r.code == 0, r.err + r.out
    tf = json.loads((tmp_path / "r.json").read_text())["tflite"]
    assert tf["bit_exact"] is True and tf["compared_values"] > 0, tf


def test_bias_refusal_names_its_own_node(tmp_path: Path) -> None:
    """Two vanilla RNN layers named as an exporter numbers them (rnn0, rnn1). On near-zero
    calibration input rnn0's input-side bias (5.0) does not fit int32 at s_x * s_w. The error
    named "rnn1/xw/b" (the unrolled layer's TFLite tensor: rnn0 is the first unrolled layer,
    tagged rnn1), which reads as the next node; it names rnn0 now, as the C backend does."""
    require_litert()
    import onnx
    from onnx import TensorProto
    from onnx import helper as oh
    from onnx import numpy_helper as nh

    rng = np.random.default_rng(0)
    f, h = 3, 5
    inits = [nh.from_array(np.array([1], np.int64), "axis")]
    nodes = []
    for k, size in enumerate((f, h)):
        b = rng.uniform(-1, 1, (1, 2 * h)).astype(np.float32)
        b[0, :h] = 5.0
        for name, v in ((f"W{k}", rng.uniform(-1, 1, (1, h, size))),
                        (f"R{k}", rng.uniform(-1, 1, (1, h, h))), (f"B{k}", b)):
            inits.append(nh.from_array(np.asarray(v, np.float32), name))
        nodes.append(oh.make_node("RNN", ["x" if k == 0 else "x1", f"W{k}", f"R{k}", f"B{k}"],
                                  [f"Y{k}"], name=f"rnn{k}", hidden_size=h))
        if k == 0:
            nodes.append(oh.make_node("Squeeze", ["Y0", "axis"], ["x1"], name="squeeze0"))
    graph = oh.make_graph(nodes, "two", [oh.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                   ["T", 1, f])],
                          [oh.make_tensor_value_info("Y1", TensorProto.FLOAT, ["T", 1, 1, h])],
                          inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "two.onnx"))
    x = 1e-9 * rng.normal(size=(16, 7, f))
    np.savez(tmp_path / "c.npz", x=x.astype(np.float32))
    for fmt in ("tflite", "c"):  # (the tflite's int16 layers store int64 biases, within int32)
        r = run_rnnq("compile", tmp_path / "two.onnx", "--calib", tmp_path / "c.npz",
                     "--format", fmt, "-o", tmp_path / fmt, "-q")
        assert r.code == 2 and len(r.err_lines) == 1, r.err
        msg = r.err_lines[0]
        assert "rnn0" in msg and "rnn1" not in msg and "does not fit int32" in msg, msg
        assert not (tmp_path / fmt).exists()

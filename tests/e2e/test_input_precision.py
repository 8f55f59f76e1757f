"""A 16-bit model input (--input-bits, default auto): the fix of issue 10's bidirectional-LSTM
collapse, where one test sequence sat at a bifurcation of a cell state and the 8-bit input's
quantisation noise (not any range or headroom) pushed it to the other attractor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rnnq.api import compile_model, validate
from rnnq.ir import RnnqError

ROOT = Path(__file__).resolve().parents[2]
BILSTM = ROOT / "tests" / "fixtures" / "accuracy" / "bilstm_basicmotions_s10.onnx"
BM = ROOT / "examples" / "basic_motions_gru"
SUNSPOTS = ROOT / "examples" / "sunspots_rnn"


def _compile_validate(model: Path, data: Path, out: Path, **kw) -> tuple[dict, dict]:
    m = compile_model(model, data.parent / "calib.npz", out, **kw)
    return m, validate(out, data)


def test_bilstm_keeps_every_sequence_with_the_default_input(tmp_path: Path) -> None:
    m, rep = _compile_validate(BILSTM, BM / "test.npz", tmp_path / "auto")
    print(f"default: accuracy {rep['int']['accuracy']:.3f} (float {rep['float']['accuracy']:.3f}), "
          f"SQNR {rep['int']['sqnr_db']:.1f} dB")
    assert m["input"]["dtype"] == "int16"
    assert rep["c"]["bit_exact"] and rep["c"]["compared_values"] > 0
    assert rep["int"]["accuracy"] == rep["float"]["accuracy"]
    assert rep["int"]["sqnr_db"] >= 35.0
    assert json.loads((tmp_path / "auto" / "calibration.json").read_text())["input_bits"] == 16


def test_bilstm_with_an_8bit_input_loses_a_sequence(tmp_path: Path) -> None:
    """What the default fixes (the state before it): the same model with an int8 input."""
    m, rep = _compile_validate(BILSTM, BM / "test.npz", tmp_path / "i8", input_bits=8)
    print(f"8-bit input: accuracy {rep['int']['accuracy']:.3f}, SQNR {rep['int']['sqnr_db']:.1f} dB")
    assert m["input"]["dtype"] == "int8"
    assert rep["c"]["bit_exact"]
    assert rep["int"]["accuracy"] < rep["float"]["accuracy"]
    assert rep["int"]["sqnr_db"] < 35.0


@pytest.mark.parametrize("example", [BM, SUNSPOTS])
def test_16bit_input_is_never_worse_on_the_examples(example: Path, tmp_path: Path) -> None:
    """The int16 input lowers (or keeps) the error of the bundled examples, bit-exact in C."""
    model = example / "model.onnx"
    _, r8 = _compile_validate(model, example / "test.npz", tmp_path / "8", input_bits=8)
    _, r16 = _compile_validate(model, example / "test.npz", tmp_path / "16", input_bits=16)
    print(f"{example.name}: SQNR {r8['int']['sqnr_db']:.2f} dB (int8 input) -> "
          f"{r16['int']['sqnr_db']:.2f} dB (int16)")
    assert r16["c"]["bit_exact"] and r16["c"]["compared_values"] > 0
    assert r16["int"]["sqnr_db"] >= r8["int"]["sqnr_db"] - 0.1


def test_16bit_input_auto_only_without_per_feature_int8(tmp_path: Path) -> None:
    """An input read by a dense layer stays 8-bit under auto (its per-feature int8 scales fold
    into the weights); 16 asked for makes the dense layer int16 -> int16, bit-exact in C."""
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 2], np.ones(6, np.float32) * 0.1)
    b = helper.make_tensor("b", TensorProto.FLOAT, [2], np.zeros(2, np.float32))
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])],
        "dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 2])], [w, b])
    model = tmp_path / "dense.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), model)
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32))
    m = compile_model(model, calib, tmp_path / "auto")
    assert m["input"]["dtype"] == "int8"
    m16 = compile_model(model, calib, tmp_path / "16", input_bits=16)
    assert m16["input"]["dtype"] == "int16"
    rep = validate(tmp_path / "16", calib)
    assert rep["c"]["bit_exact"] and rep["c"]["compared_values"] >= 4 * 5 * 2
    assert rep["int"]["sqnr_db"] > 40.0  # one int16 dense: far above an int8 grid
    with pytest.raises(RnnqError, match="--input-bits 16: in a .tflite the input can be int16 "
                                        "only where everything that reads it is a 16-bit layer"):
        compile_model(model, calib, tmp_path / "t", fmt="tflite", input_bits=16)
    assert not (tmp_path / "t").exists()

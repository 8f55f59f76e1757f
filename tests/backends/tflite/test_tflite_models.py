"""`--format tflite` end to end on the exporter fixtures (PyTorch LSTM/GRU/RNN, 1-2 layers,
uni- and bidirectional, heads on the last step, h_n or the mean over time; Keras LSTM
classifiers written the tf2onnx way).

For each: the lowered float graph == rnnq's float reference (the lowering is right before any
quantisation); the compiled model.tflite runs in LiteRT and equals the LiteRT profile of the
simulator exactly (`validate`'s "tflite" report); no float tensor lies between input and
output (LiteRT's own tensor details); the integer-vs-float SQNR is printed and bounded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tflite_common import require_litert

from rnnq.api import compile_model, float_graph, validate
from rnnq.ir import static_time

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.onnx"))
assert NAMES, f"no fixtures in {FIXTURES}"
#: Keras' HardSigmoid LSTMs cannot use the fused op: they are unrolled into int8 builtins.
UNROLLED_LSTM = {"keras_lstm_hardsigmoid", "keras_lstm_hardsigmoid_op13"}
T = 20
SQNR_MIN_DB = 20.0


def _data(path: Path, name: str, n: int, seed: int, t: int, feat: int) -> Path:
    x = np.random.default_rng(seed).standard_normal((n, t, feat)).astype(np.float32)
    np.savez(path / f"{name}.npz", x=x)
    return path / f"{name}.npz"


def _shape(model: Path) -> tuple[int, int]:
    """(T, features): the model's static T or T, and its input features per step."""
    g = float_graph(model)
    return static_time(g) or T, g.tensors[g.inputs[0]].size


@pytest.mark.parametrize("name", NAMES)
def test_fixture_tflite_bit_exact(name: str, tmp_path: Path) -> None:
    require_litert()
    model = FIXTURES / f"{name}.onnx"
    t, feat = _shape(model)
    calib = _data(tmp_path, "calib", 32, 1, t, feat)
    test = _data(tmp_path, "test", 8, 2, t, feat)
    m = compile_model(model, calib, tmp_path / "b", fmt="tflite")
    fused = "UNIDIRECTIONAL_SEQUENCE_LSTM" in m["tflite"]["ops"]
    # --precision auto may unroll a fused LSTM: in 16 bits, or for 16-bit recurrent weights
    chosen = m.get("choices", {}).get("precision", {})
    unrolled = (chosen.get("lstm", {}).get("chosen") == "unrolled"
                or chosen.get("r16", {}).get("chosen") == "r16")
    assert fused == (name.startswith(("torch_lstm", "keras")) and name not in UNROLLED_LSTM
                     and not unrolled)
    rep = validate(tmp_path / "b", test)
    tf = rep["tflite"]
    print(f"{name}: {m['tflite']['bytes']} B, ops {m['tflite']['ops']}; LiteRT "
          f"{tf['mismatches']}/{tf['compared_values']} differ; SQNR "
          f"{rep['int']['sqnr_db']:.1f} dB; TFLM {rep['tflite_micro']}")
    assert tf["compared_values"] > 0 and tf["mismatches"] == 0 and tf["bit_exact"], tf
    assert rep["int"]["sqnr_db"] >= SQNR_MIN_DB, rep["int"]
    _assert_integer_only(tmp_path / "b" / "model.tflite")
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["format"] == "tflite"


def _assert_integer_only(path: Path, float_io: bool = False) -> None:
    """LiteRT's tensor details: nothing float between input and output."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    edges = ({d["index"] for d in it.get_input_details() + it.get_output_details()}
             if float_io else set())
    floats = [d["name"] for d in it.get_tensor_details()
              if d["dtype"] == np.float32 and d["index"] not in edges]
    assert not floats, floats

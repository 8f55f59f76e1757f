"""ONNX recurrent variants the exporter fixtures do not cover, through --format tflite:
GRU with linear_before_reset 0 and 1, reverse and bidirectional; vanilla RNN with a Sigmoid;
LSTM with peepholes; whole-sequence Y outputs ([T, dirs, 1, H]) as well as Y_h; and what the
fused LSTM cannot express, unrolled into int8 builtins: clip, HardSigmoid gates,
input_forget, non-zero initial states, the cell state Y_c (also clip/HardSigmoid/initial
states for GRU and RNN). Each is held to exact equality with LiteRT (every output value of
every step) and a float-vs-int bound."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import helper as oh
from tflite_common import require_litert

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "frontend"))
from onnx_cases import Net

from rnnq.api import compile_model, validate

F, H, T = 4, 6, 9
SQNR_MIN_DB = 20.0
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _model(path: Path, kind: str, direction: str, out: str, **attrs) -> Path:
    n = Net(seed=len(path.name))
    dirs = 2 if direction == "bidirectional" else 1
    g = GATES[kind]
    s = 1.5 / np.sqrt(H)
    ins = ["x", n.w(dirs, g * H, F, scale=s), n.w(dirs, g * H, H, scale=s),
           n.w(dirs, 2 * g * H, scale=0.3)]
    init = attrs.pop("initial", False)
    if init:
        ins += ["", n.w(dirs, 1, H, scale=0.5)] + ([n.w(dirs, 1, H)] if kind == "LSTM" else [])
    if kind == "LSTM" and attrs.pop("peepholes", False):
        ins += [""] * (7 - len(ins)) + [n.w(dirs, 3 * H, scale=0.3)]
    outs = ["Y", "Y_h"] + (["Y_c"] if kind == "LSTM" else [])
    n.nodes.append(oh.make_node(kind, ins, outs, name="rec", hidden_size=H,
                                direction=direction, **attrs))
    return n.save(path, ["T", 1, F], [out])


CASES = {
    "gru_lbr0_fwd_yh": ("GRU", "forward", "Y_h", {"linear_before_reset": 0}),
    "gru_lbr1_bi_y": ("GRU", "bidirectional", "Y", {"linear_before_reset": 1}),
    "gru_lbr0_rev_y": ("GRU", "reverse", "Y", {}),
    "rnn_sigmoid_rev_yh": ("RNN", "reverse", "Y_h", {"activations": ["Sigmoid"]}),
    "rnn_relu_bi_y": ("RNN", "bidirectional", "Y", {"activations": ["Relu", "Relu"]}),
    "lstm_peep_bi_y": ("LSTM", "bidirectional", "Y", {"peepholes": True}),
    "lstm_rev_yh": ("LSTM", "reverse", "Y_h", {}),
    # unrolled LSTMs (what the fused op cannot express)
    "lstm_clip_yc": ("LSTM", "forward", "Y_c", {"clip": 0.8}),
    "lstm_hard_if_y": ("LSTM", "forward", "Y", {
        "input_forget": 1, "activations": ["HardSigmoid", "Tanh", "Tanh"],
        "activation_alpha": [0.2], "activation_beta": [0.5]}),
    "lstm_init_bi_yh": ("LSTM", "bidirectional", "Y_h", {"initial": True}),
    "gru_hard_clip_yh": ("GRU", "forward", "Y_h", {
        "clip": 1.5, "activations": ["HardSigmoid", "Tanh"], "activation_alpha": [0.25],
        "activation_beta": [0.5]}),
    "gru_init_rev_y": ("GRU", "reverse", "Y", {"initial": True, "linear_before_reset": 1}),
    "rnn_tanh_clip_y": ("RNN", "forward", "Y", {"clip": 0.7}),
    "rnn_relu_clip_yh": ("RNN", "forward", "Y_h", {"clip": 0.9, "activations": ["Relu"]}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_variant_bit_exact_with_litert(name: str, tmp_path: Path) -> None:
    require_litert()
    kind, direction, out, attrs = CASES[name]
    model = _model(tmp_path / f"{name}.onnx", kind, direction, out, **dict(attrs))
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "c.npz", x=rng.normal(size=(24, T, F)).astype(np.float32))
    np.savez(tmp_path / "t.npz", x=rng.normal(size=(6, T, F)).astype(np.float32))
    m = compile_model(model, tmp_path / "c.npz", tmp_path / "b", fmt="tflite")
    rep = validate(tmp_path / "b", tmp_path / "t.npz")
    tf = rep["tflite"]
    print(f"{name}: {m['tflite']['bytes']} B {m['tflite']['ops']}; LiteRT {tf['mismatches']}/"
          f"{tf['compared_values']}; SQNR {rep['int']['sqnr_db']:.1f} dB")
    per_seq = 6 * (T if out == "Y" else 1) * H * (2 if direction == "bidirectional" else 1)
    assert tf["compared_values"] == per_seq and tf["mismatches"] == 0 and tf["bit_exact"]
    assert rep["int"]["sqnr_db"] >= SQNR_MIN_DB, rep["int"]


def test_standalone_relu_after_lstm(tmp_path: Path) -> None:
    """Relu on the LSTM's Y (not fused into a dense layer): RELU at the input's scale."""
    require_litert()
    n = Net(seed=3)
    y = n.lstm("x", F, hidden=H, outputs=("Y",))[0]
    model = n.save(tmp_path / "relu.onnx", ["T", 1, F], [n.squeeze(n.op("Relu", y), 1)])
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "c.npz", x=rng.normal(size=(20, T, F)).astype(np.float32))
    np.savez(tmp_path / "t.npz", x=rng.normal(size=(6, T, F)).astype(np.float32))
    m = compile_model(model, tmp_path / "c.npz", tmp_path / "b", fmt="tflite")
    assert m["tflite"]["ops"].get("RELU") == 1
    rep = validate(tmp_path / "b", tmp_path / "t.npz")
    assert rep["tflite"]["bit_exact"] and rep["tflite"]["compared_values"] == 6 * T * H
    assert rep["int"]["sqnr_db"] >= SQNR_MIN_DB, rep["int"]

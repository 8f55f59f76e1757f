"""Build the small ONNX models in tests/fixtures/ (described in tests/fixtures/README.md).

- `torch_*.onnx`: PyTorch nn.LSTM / nn.GRU / nn.RNN (tanh, relu) classifiers exported with
  `torch.onnx.export(..., dynamo=False, opset_version=17)`: 1-2 layers, uni- and bidirectional,
  batch_first True and False, heads reading the last step of Y, h_n, or the mean over time.
  Weights come from `torch.manual_seed(spec.seed)`, so `torch_module(spec)` rebuilds the exact
  module a fixture was exported from (tests compare the fixture with it).
- `keras_*.onnx`: what tf2onnx writes for a Keras `LSTM -> Dense(softmax)` model, written with
  onnx.helper: input [N?, T, F] with a symbolic batch, Transpose to time-major, zero initial
  states built from the input's Shape (Gather -> Concat -> ConstantOfShape, or Expand), LSTM
  with explicit activations, Y_h -> Squeeze -> MatMul + Add -> Softmax. One uses Sigmoid gates
  (tf.keras 2), two HardSigmoid(alpha=0.2, beta=0.5) gates (older Keras): at opset 11, as
  tf2onnx wrote them then (Squeeze / Unsqueeze with an `axes` attribute), and the same model
  at opset 13.

Usage: python tools/make_fixtures.py [--out DIR] [NAME ...]  (default: all, into tests/fixtures)
torch is needed only for the torch_* files.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx import helper as oh

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures"
FEAT, HIDDEN, CLASSES = 4, 8, 3  # input features, hidden size, classifier outputs
T_EXPORT = 7  # example length used for export (and the static T of static-T fixtures)
TORCH_OPSET = 17
#: the torch version the committed torch_* fixtures were made with (byte-for-byte reproducible)
TORCH_VERSION = "2.13.0"


@dataclass(frozen=True)
class TorchSpec:
    name: str
    cell: str  # "LSTM", "GRU", "RNN_TANH", "RNN_RELU"
    layers: int
    bidirectional: bool
    batch_first: bool
    head: str  # "last": Y at the last step; "h_n": final hidden state(s); "mean": mean over time
    dynamic_batch: bool  # batch dimension exported as symbolic "batch" (else 1)
    dynamic_t: bool  # time dimension exported as symbolic "T" (else T_EXPORT)
    seed: int


TORCH_SPECS = [
    TorchSpec("torch_lstm_1l_bf_last", "LSTM", 1, False, True, "last", True, True, 1),
    TorchSpec("torch_lstm_2l_tm_hn", "LSTM", 2, False, False, "h_n", False, True, 2),
    TorchSpec("torch_lstm_bi_bf_mean", "LSTM", 1, True, True, "mean", True, True, 3),
    TorchSpec("torch_lstm_bi2l_tm_hn", "LSTM", 2, True, False, "h_n", False, True, 4),
    TorchSpec("torch_lstm_1l_bf_mean_t7", "LSTM", 1, False, True, "mean", False, False, 5),
    TorchSpec("torch_gru_1l_tm_last", "GRU", 1, False, False, "last", False, True, 6),
    TorchSpec("torch_gru_2l_bf_mean", "GRU", 2, False, True, "mean", True, True, 7),
    TorchSpec("torch_gru_bi_bf_hn", "GRU", 1, True, True, "h_n", False, True, 8),
    TorchSpec("torch_rnn_tanh_1l_bf_hn", "RNN_TANH", 1, False, True, "h_n", True, True, 9),
    TorchSpec("torch_rnn_tanh_bi_tm_last", "RNN_TANH", 1, True, False, "last", False, True, 10),
    TorchSpec("torch_rnn_relu_2l_tm_last", "RNN_RELU", 2, False, False, "last", False, True, 11),
    TorchSpec("torch_rnn_relu_1l_bf_mean", "RNN_RELU", 1, False, True, "mean", True, True, 12),
]


@dataclass(frozen=True)
class KerasSpec:
    name: str
    gate: str  # "Sigmoid" or "HardSigmoid" (alpha 0.2, beta 0.5)
    opset: int
    t: int | None  # static sequence length, or None for a symbolic one
    zeros: str  # how the initial state is built: "ConstantOfShape" or "Expand"
    seed: int


KERAS_SPECS = [
    KerasSpec("keras_lstm_softmax", "Sigmoid", 13, None, "ConstantOfShape", 21),
    KerasSpec("keras_lstm_hardsigmoid", "HardSigmoid", 11, 16, "Expand", 22),
    KerasSpec("keras_lstm_hardsigmoid_op13", "HardSigmoid", 13, 16, "Expand", 22),
]

ALL_NAMES = [s.name for s in TORCH_SPECS] + [s.name for s in KERAS_SPECS]


# --- PyTorch --------------------------------------------------------------------------------
def torch_module(spec: TorchSpec):
    """The PyTorch classifier of a spec, with its seeded weights, in eval mode."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(spec.seed)
            kw = {"num_layers": spec.layers, "bidirectional": spec.bidirectional,
                  "batch_first": spec.batch_first}
            if spec.cell == "LSTM":
                self.rnn = torch.nn.LSTM(FEAT, HIDDEN, **kw)
            elif spec.cell == "GRU":
                self.rnn = torch.nn.GRU(FEAT, HIDDEN, **kw)
            else:
                act = "tanh" if spec.cell == "RNN_TANH" else "relu"
                self.rnn = torch.nn.RNN(FEAT, HIDDEN, nonlinearity=act, **kw)
            dirs = 2 if spec.bidirectional else 1
            self.head = torch.nn.Linear(dirs * HIDDEN, CLASSES)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y, state = self.rnn(x)
            h_n = state[0] if spec.cell == "LSTM" else state
            t_axis = 1 if spec.batch_first else 0
            if spec.head == "last":
                z = y[:, -1] if spec.batch_first else y[-1]
            elif spec.head == "mean":
                z = y.mean(dim=t_axis)
            elif spec.bidirectional:
                z = torch.cat([h_n[-2], h_n[-1]], dim=-1)
            else:
                z = h_n[-1]
            return self.head(z)

    return Net().eval()


def torch_forward(spec: TorchSpec, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """PyTorch's outputs [N, CLASSES] for sequences x [N, T, F], each cut to its length."""
    import torch

    model = torch_module(spec)
    outs = []
    with torch.no_grad():
        for xi, n in zip(x, lengths):
            t = torch.from_numpy(np.ascontiguousarray(xi[:n], dtype=np.float32))[None]
            outs.append(model(t if spec.batch_first else t.transpose(0, 1)).numpy().ravel())
    return np.stack(outs).astype(np.float64)


def torch_onnx(spec: TorchSpec, path: Path) -> None:
    import torch

    model = torch_module(spec)
    t_axis, b_axis = (1, 0) if spec.batch_first else (0, 1)
    shape = [1, T_EXPORT, FEAT] if spec.batch_first else [T_EXPORT, 1, FEAT]
    axes: dict = {"x": {}, "y": {}}
    if spec.dynamic_t:
        axes["x"][t_axis] = "T"
    if spec.dynamic_batch:
        axes["x"][b_axis] = "batch"
        axes["y"][0] = "batch"
    gen = torch.Generator().manual_seed(spec.seed)
    example = torch.randn(*shape, generator=gen)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=TORCH_OPSET,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={k: v for k, v in axes.items() if v} or None)


# --- Keras, the way tf2onnx writes it ---------------------------------------------------------
def keras_weights(spec: KerasSpec) -> dict[str, np.ndarray]:
    """LSTM weights in ONNX gate order (i, o, f, c), Keras' unit forget bias, dense layer."""
    rng = np.random.default_rng(spec.seed)
    k = 1.0 / np.sqrt(HIDDEN)
    w = rng.uniform(-k * 2, k * 2, (1, 4 * HIDDEN, FEAT)).astype(np.float32)
    r = rng.uniform(-k * 2, k * 2, (1, 4 * HIDDEN, HIDDEN)).astype(np.float32)
    wb = rng.uniform(-0.1, 0.1, (4 * HIDDEN,)).astype(np.float32)
    wb[2 * HIDDEN : 3 * HIDDEN] += 1.0  # Keras unit_forget_bias
    b = np.concatenate([wb, np.zeros(4 * HIDDEN, np.float32)])[None]
    wd = rng.uniform(-0.6, 0.6, (HIDDEN, CLASSES)).astype(np.float32)
    bd = rng.uniform(-0.1, 0.1, (CLASSES,)).astype(np.float32)
    return {"W": w, "R": r, "B": b, "Wd": wd, "bd": bd}


def keras_onnx(spec: KerasSpec) -> onnx.ModelProto:
    w = keras_weights(spec)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def init(name: str, v) -> str:
        inits.append(numpy_helper.from_array(np.asarray(v), name))
        return name

    def node(op: str, ins: list[str], out: str, **attrs) -> str:
        nodes.append(oh.make_node(op, ins, [out], name=out, **attrs))
        return out

    def unsqueeze0(x: str, out: str) -> str:
        if spec.opset >= 13:
            return node("Unsqueeze", [x, init(out + "/axes", np.array([0], np.int64))], out)
        return node("Unsqueeze", [x], out, axes=[0])

    x = "input_1"
    xt = node("Transpose", [x], "lstm/transpose", perm=[1, 0, 2])
    shape = node("Shape", [x], "lstm/Shape")
    batch = node("Gather", [shape, init("lstm/Const", np.array(0, np.int64))], "lstm/strided_slice",
                 axis=0)
    batch1 = unsqueeze0(batch, "lstm/strided_slice__unsqueeze")
    dims = node("Concat", [init("lstm/one", np.array([1], np.int64)), batch1,
                           init("lstm/units", np.array([HIDDEN], np.int64))],
                "lstm/zeros/packed", axis=0)
    if spec.zeros == "ConstantOfShape":
        zeros = node("ConstantOfShape", [dims], "lstm/zeros",
                     value=numpy_helper.from_array(np.zeros(1, np.float32)))
    else:
        zeros = node("Expand", [init("lstm/zeros/Const", np.zeros((1, 1, 1), np.float32)), dims],
                     "lstm/zeros")
    acts = [spec.gate, "Tanh", "Tanh"]
    extra = {"activation_alpha": [0.2], "activation_beta": [0.5]} if spec.gate == "HardSigmoid" \
        else {}
    nodes.append(oh.make_node(
        "LSTM", [xt, init("W", w["W"]), init("R", w["R"]), init("B", w["B"]), "", zeros, zeros],
        ["lstm/Y", "lstm/Y_h", "lstm/Y_c"], name="lstm/LSTM", hidden_size=HIDDEN,
        direction="forward", activations=acts, **extra))
    if spec.opset >= 13:
        last = node("Squeeze", ["lstm/Y_h", init("lstm/squeeze_axes", np.array([0], np.int64))],
                    "lstm/Squeeze")
    else:
        last = node("Squeeze", ["lstm/Y_h"], "lstm/Squeeze", axes=[0])
    mm = node("MatMul", [last, init("dense/kernel", w["Wd"])], "dense/MatMul")
    logits = node("Add", [mm, init("dense/bias", w["bd"])], "dense/BiasAdd")
    node("Softmax", [logits], "dense", axis=-1 if spec.opset >= 13 else 1)
    t_dim: int | str = spec.t if spec.t else "unk__7"
    graph = oh.make_graph(
        nodes, "keras_lstm",
        [oh.make_tensor_value_info(x, TensorProto.FLOAT, ["unk__6", t_dim, FEAT])],
        [oh.make_tensor_value_info("dense", TensorProto.FLOAT, ["unk__6", CLASSES])], inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", spec.opset)],
                          producer_name="tf2onnx", producer_version="1.9.3")
    model.ir_version = 7
    onnx.checker.check_model(model, full_check=True)
    return model


def keras_forward(spec: KerasSpec, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A Keras-semantics numpy reference of the model: [N, CLASSES] per sequence."""
    w = keras_weights(spec)
    if spec.gate == "HardSigmoid":
        def gate(v):
            return np.clip(0.2 * v + 0.5, 0.0, 1.0)
    else:
        def gate(v):
            return 1.0 / (1.0 + np.exp(-v))
    wm, rm = w["W"][0].astype(np.float64), w["R"][0].astype(np.float64)
    b = w["B"][0, : 4 * HIDDEN] + w["B"][0, 4 * HIDDEN :]
    outs = []
    for xi, n in zip(x, lengths):
        h = c = np.zeros(HIDDEN)
        for t in range(n):
            g = wm @ xi[t] + rm @ h + b
            i, o, f, cc = np.split(g, 4)
            c = gate(f) * c + gate(i) * np.tanh(cc)
            h = gate(o) * np.tanh(c)
        z = h @ w["Wd"] + w["bd"]
        e = np.exp(z - z.max())
        outs.append(e / e.sum())
    return np.stack(outs)


def spec_by_name(name: str) -> TorchSpec | KerasSpec:
    for s in [*TORCH_SPECS, *KERAS_SPECS]:
        if s.name == name:
            return s
    raise KeyError(name)


def write(name: str, out_dir: Path = OUT) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.onnx"
    spec = spec_by_name(name)
    if isinstance(spec, TorchSpec):
        torch_onnx(spec, path)
    else:
        onnx.save(keras_onnx(spec), str(path))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("names", nargs="*", help=f"default: all of {', '.join(ALL_NAMES)}")
    args = ap.parse_args(argv)
    for name in args.names or ALL_NAMES:
        path = write(name, args.out)
        print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

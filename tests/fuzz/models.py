"""Random stacked recurrent models for differential fuzzing, built with onnx.helper from a seed.

A FuzzSpec is 1-3 layers, each an LSTM (optionally with peepholes), a GRU with
linear_before_reset 0 or 1, or an RNN with Tanh or Relu; forward, reverse or bidirectional;
with or without the clip attribute; initial states absent, constant, or graph inputs; weights
U(-gain, gain) with gain log-uniform from 1e-3 to 4. Layers are joined the way PyTorch exports
them (Squeeze of the direction axis, or Transpose + Reshape of both directions). The graph takes
x [T, 1, F] (T symbolic), optionally a `seq_lens` int32 [1] input shared by every layer, and
outputs the last layer's Y and, optionally, its Y_h.

make_data (tests/e2e/lstm_models.py) draws calibration data; extreme_inputs adds the extremes:
inputs 10x beyond the calibrated range, constant sequences and alternating extremes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto
from onnx import helper as oh

from tests.e2e.lstm_models import _init, make_data

#: Layer kinds: ONNX op and its distinguishing attribute.
KINDS = ("lstm", "gru_lbr0", "gru_lbr1", "rnn_tanh", "rnn_relu")
DIRECTIONS = ("forward", "reverse", "bidirectional")
STATES = ("none", "const", "input")
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
#: Weight gains: log-uniform between these.
GAIN_MIN, GAIN_MAX = 1e-3, 4.0
#: Test input families (extreme_inputs): rows of each, in this order.
INPUT_KINDS = ("calib_like", "x10", "constant", "alternating")


@dataclass(frozen=True)
class Layer:
    kind: str  # KINDS
    direction: str  # DIRECTIONS
    h: int
    clip: float | None
    peepholes: bool  # LSTM only
    state: str  # STATES: initial_h (and initial_c) absent, constant, or graph inputs
    gain: float

    @property
    def op(self) -> str:
        return self.kind.split("_")[0]

    @property
    def dirs(self) -> int:
        return 2 if self.direction == "bidirectional" else 1


@dataclass(frozen=True)
class FuzzSpec:
    seed: int
    f: int  # input features
    t: int  # sequence length of the data
    layers: tuple[Layer, ...]
    seq_lens: bool  # a sequence_lens graph input
    y_h: bool  # also output the last layer's Y_h

    def state_inputs(self) -> dict[str, tuple[int, ...]]:
        """Graph inputs holding initial states: name -> ONNX shape [D, 1, H]."""
        out = {}
        for k, ly in enumerate(self.layers):
            if ly.state == "input":
                out[f"h0_{k}"] = (ly.dirs, 1, ly.h)
                if ly.op == "lstm":
                    out[f"c0_{k}"] = (ly.dirs, 1, ly.h)
        return out


def spec_for(seed: int) -> FuzzSpec:
    """The model of one seed; layer kind and direction cycle with the seed so that few seeds
    cover every combination, the rest is drawn."""
    r = np.random.default_rng([0xF022, seed])
    n_layers = int(r.integers(1, 4))
    layers = []
    for k in range(n_layers):
        kind = KINDS[(seed + k) % len(KINDS)] if k == 0 else KINDS[int(r.integers(len(KINDS)))]
        direction = (DIRECTIONS[(seed // len(KINDS)) % len(DIRECTIONS)] if k == 0
                     else DIRECTIONS[int(r.integers(len(DIRECTIONS)))])
        gain = float(np.exp(r.uniform(np.log(GAIN_MIN), np.log(GAIN_MAX))))
        layers.append(Layer(
            kind=kind, direction=direction, h=int(r.integers(1, 25)),
            clip=float(r.uniform(0.5, 6.0)) if r.random() < 0.35 else None,
            peepholes=kind == "lstm" and bool(r.random() < 0.5),
            state=STATES[int(r.integers(len(STATES)))], gain=gain))
    return FuzzSpec(seed=seed, f=int(r.integers(1, 17)), t=int(r.integers(1, 41)),
                    layers=tuple(layers), seq_lens=bool(r.random() < 0.3),
                    y_h=bool(r.random() < 0.5))


def describe(s: FuzzSpec) -> str:
    """One line: what the model is."""
    parts = []
    for ly in s.layers:
        extra = (f" clip={ly.clip:.2f}" if ly.clip else "") + (" peep" if ly.peepholes else "")
        parts.append(f"{ly.kind}/{ly.direction[:3]}/h{ly.h}/state={ly.state}/"
                     f"gain={ly.gain:.3g}{extra}")
    return (f"seed {s.seed}: F={s.f} T={s.t}{' seq_lens' if s.seq_lens else ''}"
            f"{' +Y_h' if s.y_h else ''}: " + " | ".join(parts))


def weights(s: FuzzSpec) -> list[dict[str, np.ndarray]]:
    """Per layer: W, R, B (and P, h0, c0) as ONNX shapes them, float32."""
    r = np.random.default_rng([0xF023, s.seed])
    out, isz = [], s.f
    for ly in s.layers:
        g, d, h = GATES[ly.op], ly.dirs, ly.h

        def u(*shape: int, lim: float = ly.gain) -> np.ndarray:
            return r.uniform(-lim, lim, shape).astype(np.float32)

        w = {"W": u(d, g * h, isz), "R": u(d, g * h, h), "B": u(d, 2 * g * h),
             "h0": u(d, 1, h, lim=1.0), "c0": u(d, 1, h, lim=2.0)}
        if ly.peepholes:
            w["P"] = u(d, 3 * h)
        out.append(w)
        isz = d * h
    return out


def build_model(s: FuzzSpec) -> onnx.ModelProto:
    """The ONNX model of spec s (opset 17, runs in onnxruntime as it is)."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    inputs = [oh.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, s.f])]
    if s.seq_lens:
        inputs.append(oh.make_tensor_value_info("seq_lens", TensorProto.INT32, [1]))
    for name, shape in s.state_inputs().items():
        inputs.append(oh.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))

    def const(name: str, a) -> str:
        inits.append(_init(name, np.asarray(a)))
        return name

    x = "x"
    for k, (ly, w) in enumerate(zip(s.layers, weights(s))):
        ins = [x, const(f"W{k}", w["W"]), const(f"R{k}", w["R"]), const(f"B{k}", w["B"]),
               "seq_lens" if s.seq_lens else ""]
        if ly.state == "const":
            ins.append(const(f"h0c_{k}", w["h0"]))
            if ly.op == "lstm":
                ins.append(const(f"c0c_{k}", w["c0"]))
        elif ly.state == "input":
            ins.append(f"h0_{k}")
            if ly.op == "lstm":
                ins.append(f"c0_{k}")
        if ly.peepholes:
            ins += [""] * (7 - len(ins)) + [const(f"P{k}", w["P"])]
        attrs: dict = {"hidden_size": ly.h, "direction": ly.direction}
        if ly.clip is not None:
            attrs["clip"] = ly.clip
        if ly.op == "gru":
            attrs["linear_before_reset"] = int(ly.kind == "gru_lbr1")
        if ly.kind == "rnn_relu":
            attrs["activations"] = ["Relu"] * ly.dirs
        last = k == len(s.layers) - 1
        y, yh = ("Y", "Y_h") if last else (f"Y{k}", "")
        outs = [y, yh] if last and s.y_h else [y]
        nodes.append(oh.make_node(ly.op.upper(), ins, outs, name=f"{ly.op}{k}", **attrs))
        if not last:  # [T, D, 1, H] -> [T, 1, D * H], as PyTorch exports it
            if ly.dirs == 1:
                nodes.append(oh.make_node("Squeeze", [y, const(f"ax{k}", np.array([1]))],
                                          [f"x{k + 1}"], name=f"squeeze{k}"))
            else:
                nodes.append(oh.make_node("Transpose", [y], [f"yt{k}"], name=f"transpose{k}",
                                          perm=[0, 2, 1, 3]))
                nodes.append(oh.make_node("Reshape", [f"yt{k}",
                                                      const(f"shp{k}", np.array([0, 0, -1]))],
                                          [f"x{k + 1}"], name=f"reshape{k}"))
            x = f"x{k + 1}"
    ly = s.layers[-1]
    outputs = [oh.make_tensor_value_info("Y", TensorProto.FLOAT, ["T", ly.dirs, 1, ly.h])]
    if s.y_h:
        outputs.append(oh.make_tensor_value_info("Y_h", TensorProto.FLOAT, [ly.dirs, 1, ly.h]))
    graph = oh.make_graph(nodes, f"fuzz_{s.seed}", inputs, outputs, inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)],
                          producer_name="rnnq-fuzz")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def calibration(s: FuzzSpec, n: int) -> np.ndarray:
    """x [n, t, f] for calibration: features of different scales and offsets."""
    return make_data(s, n, 2000 + s.seed)


def extreme_inputs(s: FuzzSpec, x_cal: np.ndarray) -> np.ndarray:
    """x [4 * 2, t, f]: two sequences of each INPUT_KINDS family: like calibration; the same
    scaled 10x about the calibrated centre; constant (the range's ends beyond 10x, zeros); steps
    alternating between 10x the range's two ends (in phase and out of phase per feature)."""
    r = np.random.default_rng([0xF024, s.seed])
    lo, hi = x_cal.min(axis=(0, 1)), x_cal.max(axis=(0, 1))
    mid, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, 1e-3)
    like = make_data(s, 2, 3000 + s.seed)
    x10 = mid + 10.0 * (make_data(s, 2, 3100 + s.seed) - mid)
    const = np.stack([np.broadcast_to(mid + 10.0 * half * r.choice([-1.0, 1.0], s.f),
                                      (s.t, s.f)), np.zeros((s.t, s.f))])
    sign = np.where(np.arange(s.t) % 2 == 0, 1.0, -1.0)[:, None]
    flip = r.choice([-1.0, 1.0], s.f)
    alt = np.stack([mid + 10.0 * half * sign, mid + 10.0 * half * sign * flip])
    return np.concatenate([like, x10, const, alt]).astype(np.float32)


def lengths_for(s: FuzzSpec, n: int) -> np.ndarray:
    """Sequence lengths for the test rows: with a seq_lens input, random 1..t (first one t)."""
    if not s.seq_lens:
        return np.full(n, s.t, np.int64)
    lg = np.random.default_rng([0xF025, s.seed]).integers(1, s.t + 1, n)
    lg[0] = s.t
    return lg.astype(np.int64)


def states_for(s: FuzzSpec, n: int) -> dict[str, np.ndarray]:
    """Values of the initial-state graph inputs for the test rows: [n, D, 1, H]."""
    r = np.random.default_rng([0xF026, s.seed])
    return {name: r.uniform(-1.0, 1.0, (n, *shape)).astype(np.float32)
            for name, shape in s.state_inputs().items()}

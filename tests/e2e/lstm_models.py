"""Random LSTM models for the end-to-end tests, built with onnx.helper from a seed.

A Spec says everything about one model; build_model turns it into ONNX ("x -> (Transpose) ->
LSTM -> last step (Y_h, or Slice/Gather/Squeeze of Y) -> Gemm or MatMul+Add -> logits", or Y
itself), and, for onnxruntime, into an equivalent layout-0 model. make_data draws inputs whose
features differ in scale and offset, the same statistics for every file of a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx import helper as oh

HEADS = ("yh_squeeze", "yh_reshape", "slice", "gather", "squeeze_gather", "y")
DENSES = ("gemm", "gemm_nt", "matmul")
INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Spec:
    """One random model: LSTM(f -> h) over t steps with a head, in ONNX opset `opset`."""

    seed: int
    opset: int
    f: int  # input features
    h: int  # hidden size
    t: int  # sequence length of the data (and the static time dimension)
    layout: int  # LSTM layout attribute
    batch_first: bool  # model input [1, T, F] (else [T, 1, F])
    symbolic_t: bool  # time dimension is a dim_param "T"
    init_state: bool  # constant initial_h / initial_c
    bias: bool  # LSTM input B present
    gain: float  # weight scale: U(+-gain/sqrt(h))
    head: str  # how the last step is taken (HEADS); "y" outputs the sequence Y itself
    dense: str  # DENSES
    classes: int
    target: str  # "host" (ASan/UBSan) or "generic-c99"
    extra_y: bool = False  # also output the sequence Y (second graph output)


def spec_for(seed: int) -> Spec:
    """The model of one seed: sizes drawn at random, options cycled so that few seeds cover all."""
    r = np.random.default_rng(seed)
    opset = {3: 14, 5: 20}.get(seed % 7, 17)
    return Spec(
        seed=seed, opset=opset,
        f=int(r.integers(1, 65)), h=int(r.integers(1, 129)), t=int(r.integers(1, 101)),
        layout=seed % 2, batch_first=bool(r.random() < 0.5), symbolic_t=bool(r.random() < 0.6),
        init_state=bool(r.random() < 0.5), bias=bool(r.random() < 0.75),
        gain=3.0 if r.random() < 0.25 else 1.0, head=HEADS[(seed // 2) % len(HEADS)],
        dense=DENSES[int(r.integers(len(DENSES)))], classes=int(r.integers(2, 13)),
        target="host" if seed % 3 == 0 else "generic-c99",
    )


def _init(name: str, a: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(a), name)


def _weights(s: Spec) -> dict[str, np.ndarray]:
    r = np.random.default_rng(1000 + s.seed)
    k = s.gain / np.sqrt(s.h)

    def u(*shape: int, lim: float = k) -> np.ndarray:
        return r.uniform(-lim, lim, shape).astype(np.float32)

    return {
        "W": u(1, 4 * s.h, s.f), "R": u(1, 4 * s.h, s.h), "B": u(1, 8 * s.h),
        "h0": u(1, 1, s.h, lim=0.5), "c0": u(1, 1, s.h, lim=1.0),
        "Wd": u(s.classes, s.h, lim=1.0 / np.sqrt(s.h)), "bd": u(s.classes, lim=1.0 / np.sqrt(s.h)),
    }


def build_model(s: Spec, ort_compatible: bool = False) -> onnx.ModelProto:
    """The ONNX model of spec s. ort_compatible: a layout-1 LSTM becomes Transpose -> layout-0
    LSTM -> Transpose (what onnxruntime can run), with identical outputs."""
    w = _weights(s)
    t_dim: int | str = "T" if s.symbolic_t else s.t
    in_shape = [1, t_dim, s.f] if s.batch_first else [t_dim, 1, s.f]
    nodes: list[onnx.NodeProto] = []
    inits = [_init("W", w["W"]), _init("R", w["R"])]

    def node(op: str, ins: list[str], outs: list[str], **attrs) -> None:
        nodes.append(oh.make_node(op, ins, outs, name=f"{op.lower()}{len(nodes)}", **attrs))

    def const(name: str, a) -> str:
        inits.append(_init(name, np.asarray(a)))
        return name

    lstm_bf = s.layout == 1 and not ort_compatible  # LSTM input batch-first?
    x = "x"
    if s.batch_first != lstm_bf:
        node("Transpose", [x], ["x_t"], perm=[1, 0, 2])
        x = "x_t"
    ins = [x, "W", "R", "", "", "", ""]
    if s.bias:
        ins[3] = const("B", w["B"])
    if s.init_state:
        ins[5], ins[6] = const("h0", w["h0"]), const("c0", w["c0"])
    while not ins[-1]:
        ins.pop()
    uses_y = s.extra_y or s.head in ("slice", "gather", "squeeze_gather", "y")
    uses_yh = s.head.startswith("yh_")
    pre = "raw_" if s.layout == 1 and ort_compatible else ""
    outs = [pre + "Y" if uses_y else "", pre + "Y_h" if uses_yh else ""]
    while not outs[-1]:
        outs.pop()
    node("LSTM", ins, outs, hidden_size=s.h, **({"layout": 1} if lstm_bf else {}))
    if pre and uses_y:  # back to the layout-1 shapes: Y [1, T, 1, H], Y_h [1, 1, H]
        node("Transpose", ["raw_Y"], ["Y"], perm=[1, 0, 2, 3])
    if pre and uses_yh:
        node("Transpose", ["raw_Y_h"], ["Y_h"], perm=[1, 0, 2])
    ta = s.layout  # time axis of Y in the ONNX graph
    y_shape = [t_dim, 1, 1, s.h] if s.layout == 0 else [1, t_dim, 1, s.h]
    y_out = oh.make_tensor_value_info("Y", TensorProto.FLOAT, y_shape)
    if s.head == "y":
        graph_outs = [y_out]
    else:
        if s.head == "yh_squeeze":
            node("Squeeze", ["Y_h", const("ax0", np.array([0]))], ["last"])
        elif s.head == "yh_reshape":
            node("Reshape", ["Y_h", const("shp", np.array([1, -1]))], ["last"])
        elif s.head == "slice":
            node("Slice", ["Y", const("st", np.array([-1])), const("en", np.array([INT64_MAX])),
                           const("ax", np.array([ta]))], ["y_last"])
            node("Reshape", ["y_last", const("shp", np.array([1, s.h]))], ["last"])
        elif s.head == "gather":
            node("Gather", ["Y", const("idx", np.array(-1))], ["y_last"], axis=ta)
            node("Squeeze", ["y_last", const("ax", np.array([ta]))], ["last"])
        else:  # squeeze_gather: PyTorch batch_first style, Y -> [1, T, H] -> [:, -1]
            node("Squeeze", ["Y", const("ax", np.array([ta + 1]))], ["y3"])
            seq = "y3"
            if s.layout == 0:
                node("Transpose", ["y3"], ["y_bf"], perm=[1, 0, 2])
                seq = "y_bf"
            node("Gather", [seq, const("idx", np.array(-1))], ["last"], axis=1)
        if s.dense == "gemm":
            node("Gemm", ["last", const("Wd", w["Wd"]), const("bd", w["bd"])], ["logits"],
                 transB=1)
        elif s.dense == "gemm_nt":
            node("Gemm", ["last", const("Wd", w["Wd"].T.copy()), const("bd", w["bd"])],
                 ["logits"])
        else:
            node("MatMul", ["last", const("Wd", w["Wd"].T.copy())], ["mm"])
            node("Add", ["mm", const("bd", w["bd"])], ["logits"])
        graph_outs = [oh.make_tensor_value_info("logits", TensorProto.FLOAT, [1, s.classes])]
        if s.extra_y:
            graph_outs.append(y_out)
    graph = oh.make_graph(nodes, f"random_lstm_{s.seed}",
                          [oh.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          graph_outs, inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", s.opset)],
                          producer_name="rnnq-tests")
    model.ir_version = oh.find_min_ir_version_for(list(model.opset_import))
    onnx.checker.check_model(model, full_check=True)
    return model


def make_data(s: Spec, n: int, seed: int) -> np.ndarray:
    """x [n, t, f]: features with different scales and offsets (exercises per-feature input
    quantisation)."""
    feat = np.random.default_rng(4000 + s.seed)  # the same feature statistics for every file
    scale = np.exp(feat.uniform(np.log(0.3), np.log(3.0), s.f))
    offset = feat.uniform(-1.0, 1.0, s.f)
    noise = np.random.default_rng(seed).standard_normal((n, s.t, s.f))
    return (noise * scale + offset).astype(np.float32)


def model_input(s: Spec, xi: np.ndarray) -> np.ndarray:
    """One sequence [t, f] -> the model's input layout."""
    return xi[None] if s.batch_first else xi[:, None]

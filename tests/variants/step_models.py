"""Streaming exports run once per timestep, built the ways exporters build them: the state goes
in and out of the graph as tensors, packed or not, through Gather/Slice/Split/Squeeze/Unsqueeze/
Transpose/Concat. Each builder writes an ONNX file and returns it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx import numpy_helper as nh


def _c(name: str, a, dt=np.float32) -> onnx.TensorProto:
    return nh.from_array(np.asarray(a, dt), name)


def _save(path: Path, nodes, inputs, outputs, inits, opset: int = 16) -> Path:
    g = oh.make_graph(nodes, path.stem, inputs, outputs, inits)
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


def _io(name: str, shape) -> onnx.ValueInfoProto:
    return oh.make_tensor_value_info(name, TP.FLOAT, list(shape))


def vad_like(path: Path, feat: int = 24, hsz: int = 16, seed: int = 0) -> Path:
    """silero VAD's structure without its convolutions: input [1, F] -> dense/ReLU -> an LSTM
    over one step whose state [2, 1, H] packs h and c (Gather + Unsqueeze in, Squeeze +
    Unsqueeze + Concat out, as silero's export does) -> ReLU/dense/Sigmoid probability [1, 1]."""
    r = np.random.default_rng(seed)
    isz = 12
    inits = [_c("W1", r.normal(0, 0.4, (feat, isz))), _c("b1", r.normal(0, 0.1, isz)),
             _c("W", r.normal(0, 0.4, (1, 4 * hsz, isz))),
             _c("R", r.normal(0, 0.3, (1, 4 * hsz, hsz))), _c("B", r.normal(0, 0.2, (1, 8 * hsz))),
             _c("Wo", r.normal(0, 0.5, (hsz, 1))), _c("i0", 0, np.int64), _c("i1", 1, np.int64),
             _c("ax0", [0], np.int64)]
    mk = oh.make_node
    nodes = [mk("MatMul", ["input", "W1"], ["m"]), mk("Add", ["m", "b1"], ["a"]),
             mk("Relu", ["a"], ["f"]), mk("Unsqueeze", ["f", "ax0"], ["x3"]),
             mk("Gather", ["state", "i0"], ["h0"], axis=0),
             mk("Gather", ["state", "i1"], ["c0"], axis=0),
             mk("Unsqueeze", ["h0", "ax0"], ["h0u"]), mk("Unsqueeze", ["c0", "ax0"], ["c0u"]),
             mk("LSTM", ["x3", "W", "R", "B", "", "h0u", "c0u"], ["Y", "Yh", "Yc"],
                hidden_size=hsz),
             mk("Squeeze", ["Yh", "ax0"], ["hs"]), mk("Squeeze", ["Yc", "ax0"], ["cs"]),
             mk("Unsqueeze", ["hs", "ax0"], ["hu"]), mk("Unsqueeze", ["cs", "ax0"], ["cu"]),
             mk("Concat", ["hu", "cu"], ["stateN"], axis=0),
             mk("Relu", ["hs"], ["hr"]), mk("MatMul", ["hr", "Wo"], ["lo"]),
             mk("Sigmoid", ["lo"], ["output"])]
    return _save(path, nodes, [_io("input", [1, feat]), _io("state", [2, 1, hsz])],
                 [_io("output", [1, 1]), _io("stateN", [2, 1, hsz])], inits)


def gru_direct(path: Path, feat: int = 5, hsz: int = 8, seed: int = 1) -> Path:
    """A GRU with a fixed T = 1 input [1, 1, F] (time-major) and its state [1, 1, H] wired
    straight to initial_h and from Y_h; the output is Y of the step through a dense layer."""
    r = np.random.default_rng(seed)
    inits = [_c("W", r.normal(0, 0.5, (1, 3 * hsz, feat))),
             _c("R", r.normal(0, 0.4, (1, 3 * hsz, hsz))),
             _c("B", r.normal(0, 0.2, (1, 6 * hsz))), _c("Wo", r.normal(0, 0.5, (hsz, 3))),
             _c("shape", [1, hsz], np.int64)]
    mk = oh.make_node
    nodes = [mk("GRU", ["x", "W", "R", "B", "", "h"], ["Y", "h_out"], hidden_size=hsz,
                linear_before_reset=1),
             mk("Reshape", ["Y", "shape"], ["y2"]), mk("MatMul", ["y2", "Wo"], ["logits"])]
    return _save(path, nodes, [_io("x", [1, 1, feat]), _io("h", [1, 1, hsz])],
                 [_io("logits", [1, 3]), _io("h_out", [1, 1, hsz])], inits)


def two_layer_packed(path: Path, feat: int = 6, hsz: int = 10, seed: int = 2) -> Path:
    """Two stacked LSTMs whose states travel in one tensor [L, 2, 1, H] (layer, h/c): split with
    Split + Squeeze and Slice + Squeeze on the way in, rebuilt with Unsqueeze + Concat on the
    way out in the same layout; input [1, F] without a time axis."""
    r = np.random.default_rng(seed)
    inits = [_c("ax0", [0], np.int64), _c("ax01", [0, 1], np.int64), _c("two", [1, 1], np.int64),
             _c("s0", [0], np.int64), _c("s1", [1], np.int64), _c("s2", [2], np.int64),
             _c("ax1", [1], np.int64), _c("Wo", r.normal(0, 0.5, (hsz, 2)))]
    mk = oh.make_node
    nodes = [mk("Unsqueeze", ["x", "ax0"], ["x3"]),
             mk("Split", ["state", "two"], ["l0", "l1"], axis=0)]  # [1, 2, 1, H] each
    prev, outs = "x3", []
    for k, size in enumerate((feat, hsz)):
        inits += [_c(f"W{k}", r.normal(0, 0.5, (1, 4 * hsz, size))),
                  _c(f"R{k}", r.normal(0, 0.3, (1, 4 * hsz, hsz))),
                  _c(f"B{k}", r.normal(0, 0.2, (1, 8 * hsz)))]
        nodes += [mk("Squeeze", [f"l{k}", "ax0"], [f"l{k}s"]),  # [2, 1, H]
                  mk("Slice", [f"l{k}s", "s0", "s1", "ax0"], [f"h{k}"]),  # [1, 1, H]
                  mk("Slice", [f"l{k}s", "s1", "s2", "ax0"], [f"c{k}"]),
                  mk("LSTM", [prev, f"W{k}", f"R{k}", f"B{k}", "", f"h{k}", f"c{k}"],
                     [f"Y{k}", f"Yh{k}", f"Yc{k}"], hidden_size=hsz),
                  mk("Squeeze", [f"Y{k}", "ax1"], [f"y{k}"]),  # [1, 1, H]: T, B, H
                  mk("Concat", [f"Yh{k}", f"Yc{k}"], [f"hc{k}"], axis=0),  # [2, 1, H]
                  mk("Unsqueeze", [f"hc{k}", "ax0"], [f"hcu{k}"])]  # [1, 2, 1, H]
        prev = f"y{k}"
        outs.append(f"hcu{k}")
    nodes += [mk("Concat", outs, ["state_out"], axis=0),
              mk("Squeeze", [prev, "ax0"], ["last"]), mk("MatMul", ["last", "Wo"], ["out"])]
    return _save(path, nodes, [_io("x", [1, feat]), _io("state", [2, 2, 1, hsz])],
                 [_io("out", [1, 2]), _io("state_out", [2, 2, 1, hsz])], inits)


def bidirectional_interleaved(path: Path, feat: int = 4, hsz: int = 6, seed: int = 3,
                              layout: int = 1) -> Path:
    """A bidirectional GRU over one step, batch-first (layout=1), with its state in a
    [1, H, 2] tensor (direction last): Transpose in, Transpose out. layout=0 builds the same
    function time-major (onnxruntime runs only that one)."""
    r = np.random.default_rng(seed)
    inits = [_c("W", r.normal(0, 0.5, (2, 3 * hsz, feat))),
             _c("R", r.normal(0, 0.4, (2, 3 * hsz, hsz))),
             _c("B", r.normal(0, 0.2, (2, 6 * hsz))), _c("shape", [1, 2 * hsz], np.int64)]
    mk = oh.make_node
    nodes = [mk("Transpose", ["s"], ["s_in"], perm=[0, 2, 1] if layout else [2, 0, 1]),
             mk("GRU", ["x", "W", "R", "B", "", "s_in"], ["Y", "Yh"], hidden_size=hsz,
                direction="bidirectional", layout=layout),
             mk("Transpose", ["Yh"], ["s_out"], perm=[0, 2, 1] if layout else [1, 2, 0]),
             mk("Reshape", ["Y", "shape"], ["y"])]
    return _save(path, nodes, [_io("x", [1, 1, feat]), _io("s", [1, hsz, 2])],
                 [_io("y", [1, 2 * hsz]), _io("s_out", [1, hsz, 2])], inits)


def batch_first_t1(path: Path, feat: int = 5, hsz: int = 7, seed: int = 4,
                   squeeze_all: bool = False) -> Path:
    """A fixed T = 1, batch-first export: x [B=1, T=1, F] -> Transpose to time-major -> LSTM
    with states h [1, 1, H] and c [1, 1, H] as separate inputs -> Y [T, D, B, H] squeezed on D,
    transposed back to [B, T, H] and flattened: every size-1 axis is a candidate time axis.
    squeeze_all: Y squeezed without axes (to [H], the time axis gone) and unsqueezed to [1, H]."""
    r = np.random.default_rng(seed)
    inits = [_c("W", r.normal(0, 0.5, (1, 4 * hsz, feat))),
             _c("R", r.normal(0, 0.4, (1, 4 * hsz, hsz))),
             _c("B", r.normal(0, 0.2, (1, 8 * hsz))), _c("ax1", [1], np.int64),
             _c("ax0", [0], np.int64), _c("Wo", r.normal(0, 0.5, (hsz, 2)))]
    mk = oh.make_node
    nodes = [mk("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             mk("LSTM", ["xt", "W", "R", "B", "", "h", "c"], ["Y", "h_n", "c_n"],
                hidden_size=hsz)]
    if squeeze_all:
        nodes += [mk("Squeeze", ["Y"], ["ys"]), mk("Unsqueeze", ["ys", "ax0"], ["yf"])]
    else:
        nodes += [mk("Squeeze", ["Y", "ax1"], ["ys"]),
                  mk("Transpose", ["ys"], ["yb"], perm=[1, 0, 2]),
                  mk("Flatten", ["yb"], ["yf"], axis=1)]
    nodes.append(mk("MatMul", ["yf", "Wo"], ["out"]))
    return _save(path, nodes, [_io("x", [1, 1, feat]), _io("h", [1, 1, hsz]),
                               _io("c", [1, 1, hsz])],
                 [_io("out", [1, 2]), _io("h_n", [1, 1, hsz]), _io("c_n", [1, 1, hsz])], inits)


def t1_squeeze_all(path: Path) -> Path:
    """Issue 11 bug 3: a fixed T = 1 graph whose Squeeze without axes drops the time axis."""
    return batch_first_t1(path, squeeze_all=True)


#: name -> builder
def keras_cells(path: Path, feat: int = 9, hsz: int = 7, seed: int = 5) -> Path:
    """DTLN's second stage as tf2onnx wrote it (opset 11, axes as attributes): two stacked Keras
    LSTM cells written as their arithmetic (MatMul x.W + MatMul h.R + bias, Split into gates in
    Keras order i, f, c, o, Sigmoid/Tanh, c = f*c + i*g, h = o*tanh(c)), the state packed as
    [1, 2 layers, H, 2 (h, c)]: Slice + Squeeze in, Unsqueeze + Concat out; a Sigmoid mask."""
    r = np.random.default_rng(seed)
    inits = [_c("Wd", r.normal(0, 0.5, (hsz, feat))), _c("bd", r.normal(0, 0.1, feat))]
    mk = oh.make_node
    nodes = [mk("Squeeze", ["x"], ["x2"], axes=[1])]  # [1, F]
    prev, layers = "x2", []
    for k, size in enumerate((feat, hsz)):
        inits += [_c(f"W{k}", r.normal(0, 0.5, (size, 4 * hsz))),
                  _c(f"R{k}", r.normal(0, 0.3, (hsz, 4 * hsz))),
                  _c(f"b{k}", r.normal(0, 0.2, 4 * hsz))]
        for j, w in enumerate("hc"):
            inits += [_c(f"st{k}{w}", [0, k, 0, j], np.int64),
                      _c(f"en{k}{w}", [1, k + 1, hsz, j + 1], np.int64)]
            nodes += [mk("Slice", ["state", f"st{k}{w}", f"en{k}{w}"], [f"{w}{k}_4d"]),
                      mk("Squeeze", [f"{w}{k}_4d"], [f"{w}{k}"], axes=[1, 3])]  # [1, H]
        nodes += [mk("MatMul", [prev, f"W{k}"], [f"xw{k}"]),
                  mk("MatMul", [f"h{k}", f"R{k}"], [f"hr{k}"]),
                  mk("Add", [f"xw{k}", f"hr{k}"], [f"s{k}"]),
                  mk("Add", [f"s{k}", f"b{k}"], [f"p{k}"]),
                  mk("Split", [f"p{k}"], [f"gi{k}", f"gf{k}", f"gc{k}", f"go{k}"], axis=1),
                  mk("Sigmoid", [f"gi{k}"], [f"i{k}"]), mk("Sigmoid", [f"gf{k}"], [f"f{k}"]),
                  mk("Tanh", [f"gc{k}"], [f"g{k}"]), mk("Sigmoid", [f"go{k}"], [f"o{k}"]),
                  mk("Mul", [f"f{k}", f"c{k}"], [f"fc{k}"]),
                  mk("Mul", [f"i{k}", f"g{k}"], [f"ig{k}"]),
                  mk("Add", [f"fc{k}", f"ig{k}"], [f"cn{k}"]),
                  mk("Tanh", [f"cn{k}"], [f"tc{k}"]),
                  mk("Mul", [f"o{k}", f"tc{k}"], [f"hn{k}"])]
        for w in "hc":  # [1, H] -> [1, H, 1]
            nodes.append(mk("Unsqueeze", [f"{w}n{k}"], [f"{w}n{k}_u"], axes=[2]))
        nodes += [mk("Concat", [f"hn{k}_u", f"cn{k}_u"], [f"hc{k}"], axis=2),  # [1, H, 2]
                  mk("Unsqueeze", [f"hc{k}"], [f"hc{k}_u"], axes=[1])]  # [1, 1, H, 2]
        prev = f"hn{k}"
        layers.append(f"hc{k}_u")
    nodes += [mk("Concat", layers, ["state_out"], axis=1),
              mk("MatMul", [prev, "Wd"], ["m"]), mk("Add", ["m", "bd"], ["mb"]),
              mk("Sigmoid", ["mb"], ["mask2"]), mk("Unsqueeze", ["mask2"], ["mask"], axes=[1])]
    return _save(path, nodes, [_io("x", [1, 1, feat]), _io("state", [1, 2, hsz, 2])],
                 [_io("mask", [1, 1, feat]), _io("state_out", [1, 2, hsz, 2])], inits,
                 opset=11)


BUILDERS = {"vad_like": vad_like, "gru_direct": gru_direct, "two_layer_packed": two_layer_packed,
            "bidirectional_interleaved": bidirectional_interleaved,
            "batch_first_t1": batch_first_t1, "t1_squeeze_all": t1_squeeze_all,
            "keras_cells": keras_cells}

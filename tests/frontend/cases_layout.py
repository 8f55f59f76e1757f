"""Test models for the layout ops (Transpose, Squeeze, Unsqueeze, Reshape, Flatten, Slice,
Gather, Identity, Dropout), constants, folded nodes and shape sub-graphs, after and before the
LSTM. Registered in onnx_cases.CASES; run by test_ops.py."""

from __future__ import annotations

import numpy as np
import onnx
from onnx_cases import BIG, N_OUT, X0, X1, F, H, Net, case, last_h


# --- layout ---------------------------------------------------------------------------------
@case()
def transpose_batch_first_then_last_step(n):
    y = n.op("Transpose", n.squeeze(n.lstm("x", F, outputs=("Y",))[0], 1), perm=[1, 0, 2])
    return X0, [n.gemm(n.gather(y, -1, axis=1), H)]  # y[:, -1] of [1, T, H]


@case()
def transpose_non_time_axes(n):
    z = n.op("Transpose", n.reshape(n.gemm(last_h(n), H, 6), 1, 2, 3), perm=[0, 2, 1])
    return X0, [n.gemm(n.op("Flatten", z, axis=1), 6)]


@case()
def transpose_seq_non_time_axes(n):
    y = n.reshape(n.lstm("x", F, outputs=("Y",))[0], 0, 1, 2, H // 2)
    z = n.reshape(n.op("Transpose", y, perm=[0, 1, 3, 2]), 0, 1, 1, H)
    return X0, [n.matmul(z, H)]


@case()
def transpose_input_batch_first(n):
    return X1, [n.lstm(n.op("Transpose", "x", perm=[1, 0, 2]), F, outputs=("", "Y_h"))[1]]


@case()
def transpose_input_channels_first(n):
    z = n.op("Transpose", "x", perm=[2, 0, 1])  # [1, F, T] -> [T, 1, F]
    return [1, F, "T"], [n.lstm(z, F, outputs=("", "Y_h"))[1]]


@case()
def squeeze_unsqueeze_head(n):
    h = n.squeeze(n.lstm("x", F, outputs=("", "Y_h"))[1], 0, 1)  # [H]
    return X0, [n.gemm(n.unsqueeze(h, 0), H)]


@case()
def squeeze_all_unit_axes(n):
    h = n.squeeze(n.lstm("x", F, outputs=("", "Y_h"))[1])  # [H]
    return X0, [n.op("Add", n.unsqueeze(h, 0, 1), n.w(1, 1, H))]


@case(opset=11)
def squeeze_unsqueeze_opset11_attrs(n):
    z = n.unsqueeze(n.squeeze("x", 0), 1)  # [1, T, F] -> [T, F] -> [T, 1, F]
    h = n.squeeze(n.lstm(z, F, outputs=("", "Y_h"))[1], 0)
    return X1, [n.gemm(h, H)]


@case()
def unsqueeze_input(n):
    z = n.unsqueeze(n.squeeze("x", 0), 1)
    return X1, [n.lstm(z, F, outputs=("Y",))[0]]


@case()
def reshape_seq_copy_dim(n):
    return X0, [n.matmul(n.reshape(n.lstm("x", F, outputs=("Y",))[0], 0, -1), H)]


@case()
def reshape_final(n):
    return X0, [n.gemm(n.reshape(n.lstm("x", F, outputs=("", "Y_h"))[1], 1, H), H)]


@case()
def reshape_input(n):
    return X1, [n.lstm(n.reshape("x", -1, 1, F), F, outputs=("", "Y_h"))[1]]


@case()
def flatten_final(n):
    return X0, [n.gemm(n.op("Flatten", n.lstm("x", F, outputs=("", "Y_h"))[1], axis=1), H)]


@case()
def flatten_seq_batch_first(n):
    y = n.op("Flatten", n.lstm("x", F, layout=1, outputs=("Y",))[0], axis=2)  # [T, H]
    return X1, [n.gemm(y, H)]


@case()
def flatten_seq(n):
    y = n.op("Flatten", n.lstm("x", F, outputs=("Y",))[0], axis=1)  # [T, H]
    return X0, [n.op("Relu", n.gemm(y, H))]


@case()
def flatten_input(n):
    z = n.unsqueeze(n.op("Flatten", "x", axis=1), 1)  # [T, 1, F] -> [T, F] -> [T, 1, F]
    return X0, [n.lstm(z, F, outputs=("", "Y_h"))[1]]


@case()
def slice_last_step(n):
    y = n.slice(n.lstm("x", F, outputs=("Y",))[0], [-1], [BIG], [0])  # Y[-1:]
    return X0, [n.gemm(n.reshape(y, 1, H), H)]


@case()
def slice_last_step_and_features(n):
    return X0, [n.slice(n.lstm("x", F, outputs=("Y",))[0], [-1, 2], [BIG, 6], [0, 3])]


@case()
def slice_features(n):
    h = n.slice(n.lstm("x", F, outputs=("", "Y_h"))[1], [0], [H // 2], [2])
    return X0, [n.gemm(n.squeeze(h, 0), H // 2)]


@case()
def slice_features_reversed_by_two(n):
    return X0, [n.slice(n.lstm("x", F, outputs=("", "Y_h"))[1], [6], [0], [2], [-2])]


@case()
def slice_features_reversed_to_start(n):
    return X0, [n.slice(n.lstm("x", F, outputs=("", "Y_h"))[1], [-1], [-BIG], [2], [-1])]


@case()
def slice_seq_all_steps_odd_features(n):
    y = n.lstm("x", F, outputs=("Y",))[0]
    return X0, [n.slice(y, [0, 1], [BIG, BIG], [0, 3], [1, 2])]


@case()
def slice_seq_features(n):
    return X0, [n.slice(n.lstm("x", F, outputs=("Y",))[0], [1], [5], [3])]


@case()
def slice_input_features(n):
    return X1, [n.lstm(n.slice("x", [1], [F], [2]), F - 1, outputs=("", "Y_h"))[1]]


@case()
def gather_last_step_keepdim(n):
    y = n.gather(n.lstm("x", F, outputs=("Y",))[0], [-1], axis=0)  # [1, 1, 1, H]
    return X0, [n.gemm(n.reshape(y, 1, H), H)]


@case()
def gather_hn_last_layer(n):
    h = n.gather(n.lstm("x", F, outputs=("", "Y_h"))[1], -1, axis=0)  # h_n[-1]: [1, H]
    return X0, [n.op("Softmax", n.gemm(h, H), axis=1)]


@case()
def gather_features(n):
    h = n.gather(n.lstm("x", F, outputs=("", "Y_h"))[1], [0, 3, 5, 1], axis=2)
    return X0, [n.op("Sigmoid", h)]


@case()
def gather_2d_indices_seq(n):
    return X0, [n.gather(n.lstm("x", F, outputs=("Y",))[0], [[0, 7], [2, 2]], axis=3)]


@case()
def gather_input_features(n):
    z = n.gather("x", [2, 0], axis=2)
    return X0, [n.lstm(z, 2, outputs=("", "Y_h"))[1]]


# --- identity, constants, folding, shape sub-graphs -----------------------------------------
@case()
def identity_dropout(n):
    z = n.op("Identity", "x")
    h = n.op("Dropout", n.op("Identity", last_h(n)))
    return X0, [n.gemm(h, H), n.lstm(z, F, outputs=("", "Y_h"))[1]]


@case()
def constant_nodes(n):
    w = n.op("Constant", value=onnx.numpy_helper.from_array(
        n.rng.normal(0, 0.5, (H, N_OUT)).astype(np.float32), "cw"))
    s = n.op("Constant", value_float=0.5)
    return X0, [n.op("Mul", n.op("MatMul", last_h(n), w), s)]


@case()
def folded_weight_transforms(n):
    w = n.op("Transpose", n.w(N_OUT, H), perm=[1, 0])  # W^T computed in the graph
    b = n.op("Cast", n.op("Mul", n.c([1, 2, 3, 4], np.int64), n.ints(1)), to=1)
    h0 = n.op("ConstantOfShape", n.ints(1, 1, H),
              value=onnx.numpy_helper.from_array(np.array([0.0], np.float32)))
    ins = ["x", n.w(1, 4 * H, F), n.w(1, 4 * H, H, scale=0.3), "", "", h0, h0]
    y = n.op("LSTM", *ins, n_out=2, hidden_size=H)[1]
    return X0, [n.op("Add", n.op("MatMul", n.squeeze(y, 0), w), b)]


def _size_of(n: Net, x: str, axis: int) -> str:
    return n.unsqueeze(n.op("Gather", n.op("Shape", x), n.c(axis, np.int64)), 0)


@case()
def shape_subgraph_view_batch(n):
    h = last_h(n)  # h.view(h.size(0), -1)
    return X0, [n.gemm(n.op("Reshape", h, n.op("Concat", _size_of(n, h, 0), n.ints(-1),
                                               axis=0)), H)]


@case()
def shape_subgraph_time(n):
    y = n.lstm("x", F, outputs=("Y",))[0]  # reshape to [T, H] with T read from the shape
    shape = n.op("Concat", _size_of(n, y, 0), n.ints(H), axis=0)
    return X0, [n.gemm(n.op("Reshape", y, shape), H)]


@case()
def shape_subgraph_input(n):
    shape = n.op("Concat", _size_of(n, "x", 1), n.ints(1), n.ints(F), axis=0)
    return X1, [n.lstm(n.op("Reshape", "x", shape), F, outputs=("", "Y_h"))[1]]


@case()
def split_final_features_and_concat(n):
    a, b = n.op("Split", last_h(n), n.ints(H // 2, H - H // 2), n_out=2, axis=1)  # sizes input
    return X0, [n.gemm(n.op("Concat", b, a, axis=1), H)]


@case(opset=11)
def split_seq_features_attr(n):
    y = n.squeeze(n.lstm("x", F, outputs=("Y",))[0], 1)  # [T, 1, H]
    a, b = n.op("Split", y, n_out=2, axis=2, split=[2, H - 2])  # sizes attribute (opset < 13)
    return X0, [n.matmul(a, 2), n.matmul(b, H - 2)]


@case()
def split_equal_parts(n):
    a, b = n.op("Split", n.gemm(last_h(n), H), n_out=2, axis=1)  # no sizes: equal halves
    return X0, [n.op("Add", a, b)]


@case()
def reduce_mean_over_time(n):
    y = n.squeeze(n.lstm("x", F, outputs=("Y",))[0], 1)  # [T, 1, H]
    return X0, [n.gemm(n.op("ReduceMean", y, axes=[0], keepdims=0), H)]  # mean over time

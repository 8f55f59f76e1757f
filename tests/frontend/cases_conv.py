"""Test models for convolutional front ends: per-step Conv 1-D/2-D (strides, dilations, pads,
auto_pad, groups, depthwise), Pad (constant, reflect, edge), BatchNormalization, LeakyRelu,
PRelu, Pow/Sqrt magnitudes, Cast, ReduceMean/ReduceSum over feature axes and binary ops of two
activations with broadcasting, each in front of an LSTM. The input is [T, C, L] (or
[T, C, H, W]): time on the batch axis, so each step is one [C, L] frame. Registered in
onnx_cases.CASES; run by test_ops.py."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto
from onnx_cases import Net, case

C, L = 3, 12
XC = ["T", C, L]
X2 = ["T", 2, 6, 5]


def _head(n: Net, y: str, size: int) -> list[str]:
    """[T, ...] -> Flatten -> [T, 1, size] -> LSTM -> h_T [1, H]."""
    f = n.unsqueeze(n.op("Flatten", y, axis=1), 1)
    return [n.squeeze(n.lstm(f, size, outputs=("", "Y_h"))[1], 0)]


def _conv(n: Net, x: str, cin: int, cout: int, k, group: int = 1, bias: bool = True,
          **attrs) -> str:
    k = [k] if isinstance(k, int) else list(k)
    w = n.w(cout, cin // group, *k, scale=0.6)
    ins = [x, w] + ([n.w(cout, scale=0.2)] if bias else [])
    return n.op("Conv", *ins, group=group, **attrs)


@case()
def conv1d_same_relu(n):
    y = n.op("Relu", _conv(n, "x", C, 4, 3, pads=[1, 1]))
    return XC, _head(n, y, 4 * L)


@case()
def conv1d_strided_dilated_asymmetric(n):
    y = _conv(n, "x", C, 5, 3, strides=[2], dilations=[2], pads=[1, 2], bias=False)
    return XC, _head(n, y, 5 * 6)


@case()
def conv1d_groups(n):
    x = _conv(n, "x", C, 6, 1)  # 6 channels, then 2 groups of 3
    y = _conv(n, x, 6, 4, 3, group=2, pads=[1, 1])
    return XC, _head(n, y, 4 * L)


@case()
def conv1d_depthwise_auto_pad(n):
    y = _conv(n, "x", C, C, 5, group=C, auto_pad="SAME_UPPER", strides=[2])
    return XC, _head(n, y, C * 6)


@case()
def conv2d_strided_bn_leaky(n):
    y = _conv(n, "x", 2, 3, (3, 3), strides=[2, 1], pads=[1, 1, 1, 1])
    bn = n.op("BatchNormalization", y, n.c(np.array([1.5, 0.7, 1.1])), n.c([0.1, -0.2, 0.0]),
              n.c([0.3, -0.1, 0.2]), n.c([0.5, 2.0, 1.0]), epsilon=1e-3)
    y = n.op("LeakyRelu", bn, alpha=0.1)
    return X2, _head(n, y, 3 * 3 * 5)


@case()
def pad_reflect_edge_constant(n):
    r = n.op("Pad", "x", n.ints(0, 0, 3, 0, 0, 2), mode="reflect")  # [T, C, L + 5]
    e = n.op("Pad", r, n.ints(0, 0, 1, 0, 0, 1), mode="edge")
    z = n.op("Pad", e, n.ints(0, 1, 0, 0, 0, 2), n.c(0.0))  # a zero channel, two zero samples
    return XC, _head(n, z, (C + 1) * (L + 9))


@case()
def prelu_per_channel_and_scalar(n):
    y = _conv(n, "x", C, 4, 3, pads=[1, 1])
    y = n.op("PRelu", y, n.c(np.array([0.25, -0.5, 0.1, 1.5]).reshape(4, 1)))
    y = n.op("PRelu", y, n.c([0.2]))
    return XC, _head(n, y, 4 * L)


@case()
def magnitude_pow_sqrt_cast(n):
    """silero VAD's spectrum: a Conv to 2K channels (real, imaginary), Slice both halves,
    Cast, Pow 2, Add, Sqrt."""
    y = _conv(n, "x", C, 8, 4, strides=[2], bias=False)  # [T, 8, 5]
    re = n.op("Cast", n.slice(y, [0], [4], [1]), to=TensorProto.FLOAT)
    im = n.slice(y, [4], [8], [1])
    two = n.c(2.0)
    mag = n.op("Sqrt", n.op("Add", n.op("Pow", re, two), n.op("Pow", im, two)))
    return XC, _head(n, mag, 4 * 5)


@case()
def reduce_mean_sum_features(n):
    m = n.op("ReduceMean", "x", axes=[2], keepdims=1)  # [T, C, 1]
    s = n.op("ReduceSum", "x", n.ints(1), keepdims=0)  # [T, L]
    f = n.op("Concat", n.op("Flatten", m, axis=1), s, axis=1)  # [T, C + L]
    return XC, [n.squeeze(n.lstm(n.unsqueeze(f, 1), C + L, outputs=("", "Y_h"))[1], 0)]


@case()
def binary_activations_broadcast(n):
    y = _conv(n, "x", C, 4, 3, pads=[1, 1])  # [T, 4, L]
    g = n.op("Sigmoid", n.op("ReduceMean", y, axes=[2], keepdims=1))  # [T, 4, 1] gate
    z = n.op("Add", n.op("Mul", y, g), n.op("Relu", y))
    return XC, _head(n, z, 4 * L)

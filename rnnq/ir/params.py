"""Frozen parameter objects of the integer kernels.

Each maps field for field onto the C struct ``rnnq_<op>_params`` in
templates/c/runtime/rnnq_kernels.h, so that templates only print fields. The arithmetic they
drive is defined in rnnq/sim/kernels.py (from rnnq/numerics) and mirrored by the C kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class LstmParams:
    """Integer LSTM step. Gate rows are ONNX-ordered blocks of H: i, o, f, c.

    g[r] = sat16(requant(bias_x[r] + w[r]·x, mult_x[r], shift_x[r])
               + requant(bias_h[r] + rw[r]·h, mult_h[r], shift_h[r]))        Q3.12
    i, o, f = sigmoid_q15(g, 12); cc = tanh_q15(g, 12)                        Q0.15
    c = sat16(rshift_round(f*c, 15) + rshift_round(i*cc, 30 - cell_frac))     Q(15-cell_frac).cell_frac
    h = sat8(out_zp + requant(o * tanh_q15(c, cell_frac), out_mult, out_shift))
    """

    input_size: int
    hidden_size: int
    w: np.ndarray  # int8 [4H, I]
    rw: np.ndarray  # int8 [4H, H]
    bias_x: np.ndarray  # int32 [4H]: float biases and -sum_j w[r, j] * zx[j]
    bias_h: np.ndarray  # int32 [4H]: -zh * sum_j rw[r, j]
    mult_x: np.ndarray  # int32 [4H]
    shift_x: np.ndarray  # int32 [4H]
    mult_h: np.ndarray  # int32 [4H]
    shift_h: np.ndarray  # int32 [4H]
    cell_frac: int  # fractional bits of the int16 cell state, 7..15
    out_mult: int
    out_shift: int
    out_zp: int
    h0: np.ndarray  # int8 [H]
    c0: np.ndarray  # int16 [H]


@dataclass(frozen=True, eq=False)
class DenseParams:
    """y[n] = clamp(out_zp + requant(bias[n] + w[n]·x, mult[n], shift[n]), act_min, act_max)."""

    in_features: int
    out_features: int
    w: np.ndarray  # int8 [N, K]
    bias: np.ndarray  # int32 [N] (zero point of x folded in)
    mult: np.ndarray  # int32 [N]
    shift: np.ndarray  # int32 [N]
    out_zp: int
    act_min: int
    act_max: int


@dataclass(frozen=True, eq=False)
class BinaryParams:
    """Elementwise int8 op on equal-sized operands.

    add: y = clamp(out_zp + rshift_round((a-a_zp)*a_mult + (b-b_zp)*b_mult, shift))  (int64 sum)
    mul: y = clamp(out_zp + requant((a-a_zp)*(b-b_zp), mult, shift))
    """

    op: str  # "add" | "mul"
    a_zp: int
    b_zp: int
    out_zp: int
    a_mult: int  # add only, signed, |a_mult| < 2^31
    b_mult: int  # add only, signed
    mult: int  # mul only
    shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True, eq=False)
class SoftmaxParams:
    """Softmax over rows of `depth` int8 values; output scale 1/256, zero point -128.

    d = max(row) - x (0..255); e = exp_table[d] (<= 65536); s = sum(e);
    y = clamp((e * 256 + s // 2) // s - 128, -128, 127)
    """

    depth: int
    exp_table: np.ndarray  # int32 [256]

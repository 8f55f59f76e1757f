"""Frozen parameter objects of the integer kernels.

Each maps field for field onto the C struct ``rnnq_<op>_params`` in
templates/c/runtime/rnnq_kernels.h, so that templates only print fields (the LSTM's and GRU's
C structs end with ``rowk``, which the C backend derives: rnnq.backends.c.layouts). The
arithmetic they drive is defined in rnnq/sim/kernels.py (from rnnq/numerics) and mirrored by
the C kernels.

16-bit recurrent weights: a recurrent layer's rw_lo, when not empty, is a second int8
matrix of rw's shape holding the weights' next 8 bits, rw + rw_lo / 2^8 on rw's scales. Every
product written rw·v below (v the old h, or r * h) is then
    rw·v + rshift_round(rw_lo·v, 8)
(two int8 products, each an exact int32 sum as rw·v alone is, so every matvec kernel variant
serves both), which the biases' zero-point terms account for. The unit-major (_fused) C steps
do not take rw_lo; such a layer runs on the vector steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: A requantisation whose shift is at least this is the high word of the 32 x 32-bit product
#: plus a rounding shift (rnnq_requant in rnnq_fixedpoint.h).
HI_SHIFT_MIN = 33


def _no_fine() -> np.ndarray:
    """The rw_lo of a layer with 8-bit recurrent weights: none."""
    return np.zeros(0, np.int8)


class _RequantHi:
    """Sets the derived field requant_hi of a recurrent layer's params: 1 when every row shift
    and out_shift (where used) reach HI_SHIFT_MIN. The C kernels then take their branch-free
    path (which compilers vectorise); the integers are the same either way."""

    def __post_init__(self) -> None:
        shifts = [np.asarray(self.shift_x), np.asarray(self.shift_h)]
        if getattr(self, "act", 0) != 1:  # a Relu RNN has no output requantisation
            shifts.append(np.asarray([self.out_shift]))
        hi = all(s.size == 0 or int(s.min()) >= HI_SHIFT_MIN for s in shifts)
        object.__setattr__(self, "requant_hi", int(hi))


@dataclass(frozen=True, eq=False)
class LstmParams(_RequantHi):
    """Integer LSTM step. Gate rows are ONNX-ordered blocks of H: i, o, f, c.

    g[r] = sat16(requant(bias_x[r] + w[r]·x, mult_x[r], shift_x[r])
               + requant(bias_h[r] + rw[r]·h, mult_h[r], shift_h[r]))        Q3.12
    peepholes (p non-empty; p = [p_i, p_o, p_f], each H int16), on the cell's top 16 bits
    c16 = rshift_round(c, 16):
        g_i = sat16(g_i + requant(p_i * c16_prev, p_mult[0], p_shift[0]))
        g_f = sat16(g_f + requant(p_f * c16_prev, p_mult[2], p_shift[2]))
    clip (> 0): every gate pre-activation is clamped to [-clip, clip] just before its activation
    act(v) = sigmoid_q15(v, 12)                                        (gate_act 0)
           = clamp(rshift_round(v * hs_mult, hs_shift) + hs_offset, 0, 32767)   (gate_act 1,
             ONNX HardSigmoid: alpha -> hs_mult * 2^-hs_shift per Q3.12 unit, beta -> hs_offset)
    i = act(g_i); f = min(32768 - i, 32767) if input_forget else act(g_f); z = tanh_q15(g_c, 12)
    c = sat32(rshift_round(f*c, 15) + rshift_round(i*z, 30 - cell_frac))      Q(31-cf).cf
    peepholes: g_o = sat16(g_o + requant(p_o * c16, p_mult[1], p_shift[1]))   (the new c)
    o = act(g_o)
    h = sat8(out_zp + requant(o * tanh_q15(c, cell_frac), out_mult, out_shift))

    state_bits = 16: h is int16, symmetric (out_zp = 0), h0 int16, and the new h is sat16
    (the recurrent product reads the int16 h).
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
    cell_frac: int  # fractional bits of the int32 cell state, 7..CELL_FRAC_MAX (27)
    out_mult: int
    out_shift: int
    out_zp: int
    h0: np.ndarray  # int8 [H] (int16 with state_bits 16)
    c0: np.ndarray  # int32 [H]
    gate_act: int = 0  # 0 sigmoid, 1 hard sigmoid
    hs_mult: int = 0
    hs_shift: int = 1
    hs_offset: int = 0
    clip: int = 0  # Q3.12 bound of the gate pre-activations, 0 = none
    input_forget: int = 0
    p: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))  # int16 [3H] or empty
    p_mult: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # int32 [3]
    p_shift: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # int32 [3]
    state_bits: int = 8  # 8 or 16: the width of h (16: symmetric, out_zp 0, sat16, h0 int16)
    rw_lo: np.ndarray = field(default_factory=_no_fine)  # int8 like rw, or empty (module docstring)
    requant_hi: int = field(init=False)  # derived (_RequantHi): a C fast path, same bits


@dataclass(frozen=True, eq=False)
class GruParams(_RequantHi):
    """Integer GRU step. Rows are ONNX-ordered blocks of H: z, r, h (candidate).

    z, r rows (0..2H-1), with h the int8 state (its zero point folded into bias_h):
        g = sat16(requant(bias_x + w·x, mult_x, shift_x) + requant(bias_h + rw·h, mult_h, shift_h))
        (clip), z = act(g_z), r = act(g_r)         act as in LstmParams (gate_act, hs_*)
    candidate rows j = 2H + k:
        ax = requant(bias_x[j] + w[j]·x, mult_x[j], shift_x[j])
        linear_before_reset = 1:
            ah = sat16(requant(bias_h[j] + rw[j]·h, mult_h[j], shift_h[j]))
            pre = sat16(ax + rshift_round(r[k] * ah, 15))
        linear_before_reset = 0:
            rh[m] = rshift_round(r[m] * (h[m] - out_zp), 8)       int16, m = 0..H-1
            pre = sat16(ax + requant(bias_h[j] + rw[j]·rh, mult_h[j], shift_h[j]))
        (clip), n[k] = tanh_q15(pre, 12)
    h[k] = sat8(out_zp + requant((32768 - z[k]) * n[k], out_mult, out_shift)
                + rshift_round(z[k] * (h[k] - out_zp), 15))

    state_bits = 16 (a state that integrates updates smaller than an int8 step): h is int16,
    symmetric (out_zp = 0), h0 int16; the same formulas with rh = rshift_round(r * h, 15) and
    sat16 for the new h.
    """

    input_size: int
    hidden_size: int
    linear_before_reset: int
    w: np.ndarray  # int8 [3H, I]
    rw: np.ndarray  # int8 [3H, H]
    bias_x: np.ndarray  # int32 [3H]
    bias_h: np.ndarray  # int32 [3H]
    mult_x: np.ndarray  # int32 [3H]
    shift_x: np.ndarray  # int32 [3H]
    mult_h: np.ndarray  # int32 [3H]
    shift_h: np.ndarray  # int32 [3H]
    out_mult: int
    out_shift: int
    out_zp: int
    h0: np.ndarray  # int8 [H] (int16 with state_bits 16)
    gate_act: int = 0
    hs_mult: int = 0
    hs_shift: int = 1
    hs_offset: int = 0
    clip: int = 0
    state_bits: int = 8  # 8 or 16: the width of h
    rw_lo: np.ndarray = field(default_factory=_no_fine)  # int8 like rw, or empty (module docstring)
    requant_hi: int = field(init=False)  # derived (_RequantHi): a C fast path, same bits


@dataclass(frozen=True, eq=False)
class RnnParams(_RequantHi):
    """Integer vanilla RNN step (ONNX RNN), rows of H.

    act 0 (Tanh) / 2 (Sigmoid):
        g = sat16(requant(bias_x + w·x, mult_x, shift_x) + requant(bias_h + rw·h, mult_h, shift_h))
        (clip: clamp to [-clip, clip]); t = tanh_q15(g, 12) or sigmoid_q15(g, 12)
        h = sat8(out_zp + requant(t, out_mult, out_shift))
    act 1 (Relu): the multipliers map straight to h's scale:
        v = requant(bias_x + w·x, mult_x, shift_x) + requant(bias_h + rw·h, mult_h, shift_h)
        h = clamp(out_zp + v, out_zp, min(127, out_zp + clip) if clip else 127)   (exact sum)

    state_bits = 16: h is int16, symmetric (out_zp = 0), h0 int16; the recurrent product reads
    the int16 h; act 0/2: h = sat16(requant(t * 2^15, out_mult, out_shift)) (t in Q0.30, so
    the requantisation keeps a large shift), act 1: h = clamp(v, 0, min(32767, clip) if clip
    else 32767).
    """

    input_size: int
    hidden_size: int
    act: int
    w: np.ndarray  # int8 [H, I]
    rw: np.ndarray  # int8 [H, H]
    bias_x: np.ndarray  # int32 [H]
    bias_h: np.ndarray  # int32 [H]
    mult_x: np.ndarray  # int32 [H]
    shift_x: np.ndarray  # int32 [H]
    mult_h: np.ndarray  # int32 [H]
    shift_h: np.ndarray  # int32 [H]
    out_mult: int
    out_shift: int
    out_zp: int
    h0: np.ndarray  # int8 [H] (int16 with state_bits 16)
    clip: int = 0  # Q3.12 (act 0/2) or h units (act 1), 0 = none
    state_bits: int = 8  # 8 or 16: the width of h
    rw_lo: np.ndarray = field(default_factory=_no_fine)  # int8 like rw, or empty (module docstring)
    requant_hi: int = field(init=False)  # derived (_RequantHi): a C fast path, same bits


@dataclass(frozen=True, eq=False)
class RequantParams:
    """int16 (or int8) -> int8: y = sat8(out_zp + requant(x - in_zp, mult, shift))."""

    in_zp: int
    out_zp: int
    mult: int
    shift: int


@dataclass(frozen=True, eq=False)
class MagnitudeParams:
    """sqrt of a sum of squares, operands (1-3, int8 or int16) of one scale and zero point:
    y = clamp(out_zp + requant(isqrt_round(sum_i (x_i - in_zp)^2), mult, shift), act_min,
    act_max); the sum is below 2^32 (uint32 in C) for up to three int16 operands."""

    in_zp: int
    out_zp: int
    mult: int
    shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True, eq=False)
class MeanTimeParams:
    """Running mean over time of an int8 stream (ReduceMean over the time axis).

    State: acc[k] (int32) += x[k] - in_zp each step; with n steps so far:
    y[k] = sat8(out_zp + div_round(requant(acc[k], mult, shift), n))
    div_round rounds half away from zero.
    """

    size: int
    in_zp: int
    out_zp: int
    mult: int
    shift: int


@dataclass(frozen=True, eq=False)
class EmbedParams:
    """Embedding lookup: y = table[clamp(id < 0 ? id + vocab : id, 0, vocab - 1)] (int8 rows)."""

    vocab: int
    dim: int
    table: np.ndarray  # int8 [vocab, dim]


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


def hi_path(p: LstmParams | GruParams | RnnParams) -> bool:
    """Whether the C step of p is its branch-free `_hi` entry point (rnnq_kernels.h): the C
    backend calls those where this holds, so that a build links only the path it takes."""
    if not p.requant_hi:
        return False
    if isinstance(p, LstmParams):
        return p.gate_act == 0 and np.asarray(p.p).size == 0 and not p.input_forget
    if isinstance(p, GruParams):
        return p.gate_act == 0
    return True

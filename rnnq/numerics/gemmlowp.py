"""LiteRT's integer semantics ("litert" profile): gemmlowp's double rounding.

rnnq's own C rounds once (see `rnnq.numerics`); a `.tflite` is executed by LiteRT, whose
kernels use gemmlowp's primitives. These are their definitions, vectorised over numpy int64 so
that the LiteRT profile of the simulator (`rnnq.sim.litert.interpreter`) predicts LiteRT bit for bit.
Offline helpers (`quantize_multiplier`) mirror LiteRT's double-precision derivation, because a
one-ulp difference in a multiplier changes outputs.

- ``srdhm(a, b)``   SaturatingRoundingDoublingHighMul: (a·b + nudge) / 2^31 truncated, nudge
                    2^30 for a·b >= 0 else 1 − 2^30; INT32_MIN·INT32_MIN saturates.
- ``rdbpot(x, e)``  RoundingDivideByPOT: x / 2^e rounded half away from zero.
- ``mbqm(x, M, s)`` MultiplyByQuantizedMultiplier (double rounding):
                    rdbpot(srdhm(x·2^max(s,0), M), max(−s,0)); x·2^s wraps as int32 does.
- ``fp_logistic`` / ``fp_tanh``: gemmlowp's fixed-point logistic and tanh on int16
  (FixedPoint<int16_t, n> in, Q0.15 out), which LiteRT's integer LSTM uses for its gates;
  ``sigmoid_q3_12`` / ``tanh_q`` look them up in tables of all 65,536 inputs.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from rnnq.numerics import round_half_away

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def wrap32(x):
    """Two's-complement wrap to int32 (C's behaviour in the kernels LiteRT builds with
    -fno-sanitize=integer overflow)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + 2**31) & 0xFFFFFFFF) - 2**31


def srdhm(a, b):
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudged = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    q = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def rdbpot(x, exponent):
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def mbqm(x, mult, shift):
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rdbpot(srdhm(wrap32(np.asarray(x, dtype=np.int64) << left), mult), right)


def mbqm_small(x, mult, shift):
    """MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0)."""
    return rdbpot(srdhm(x, mult), -np.asarray(shift, dtype=np.int64))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """LiteRT's QuantizeMultiplier: real = M·2^(shift−31), M in [2^30, 2^31); tiny → (0, 0)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * (1 << 31)))  # std::round: halves away from zero
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def round_half_even(v) -> np.ndarray:
    """Round to nearest, ties to even: NEON's vcvtnq (LiteRT's vector QUANTIZE loop)."""
    return np.rint(np.asarray(v, dtype=np.float64))


def f32(v) -> float:
    """A value as LiteRT holds it in a float: rounded to float32, returned as a Python float."""
    return float(np.float32(v))


def wrap16(x):
    """Two's-complement wrap to int16 (NEON's non-saturating narrowing and 16-bit adds)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + 2**15) & 0xFFFF) - 2**15


def rshl(x, exponent):
    """NEON vrshl by −exponent: x / 2^exponent rounded half up (towards +inf), exponent >= 0.
    Unlike `rdbpot`, negative ties round up: rshl(−3, 1) == −1."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    return (x + ((np.int64(1) << e) >> 1)) >> e


def mbqm_neon(x, mult, shift):
    """The NEON-vector MultiplyByQuantizedMultiplier of LiteRT's optimized kernels (and of ruy
    on x86): vqrdmulh after the left shift, then `rshl` instead of `rdbpot`."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rshl(srdhm(wrap32(np.asarray(x, dtype=np.int64) << left), mult), right)


# --- gemmlowp fixed point on int16 (FixedPoint<int16_t, n>), in numpy int64 ----------------


def _tdiv(x, e: int):
    """C's truncating division by 2^e."""
    return np.where(x >= 0, x >> e, -((-x) >> e))


def _mul(a, b):
    """SaturatingRoundingDoublingHighMul<int16_t>."""
    ab = a * b
    q = _tdiv(ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14)), 15)
    return np.where((a == -32768) & (b == -32768), 32767, wrap16(q))


def _shl_sat(x, e: int):
    """SaturatingRoundingMultiplyByPOT<e> for e > 0 on int16."""
    thr = (1 << (15 - e)) - 1
    return np.where(x > thr, 32767, np.where(x < -thr, -32768, wrap16(x << e)))


def _rescale(x, src: int, dst: int):
    k = src - dst
    return _shl_sat(x, k) if k > 0 else (rdbpot(x, -k) if k < 0 else x)


def _c16(raw32: int) -> int:
    """A gemmlowp constant given as a Q0.31-style int32, rounded to the 16-bit format."""
    return int(rdbpot(raw32, 16))


def _exp_quarter(a):
    """exp(x) for x in [-1/4, 0), Q0.15 in and out (Taylor series around -1/8)."""
    c_exp, c_third = _c16(1895147668), _c16(715827883)
    x = wrap16(a + (1 << 12))
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    inner = wrap16(_mul(wrap16(rdbpot(x4, 2) + x3), c_third) + x2)
    s = _mul(c_exp, wrap16(x + rdbpot(inner, 1)))
    return np.clip(c_exp + s, -32768, 32767)


_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
           (2, 39332535), (3, 720401), (4, 242))


def _exp_neg(a, ib: int):
    """exp(a) for a <= 0 in Q(ib), result Q0.15: exp of the remainder times a barrel shifter."""
    fb = 15 - ib
    quarter = 1 << (fb - 2)
    amq = wrap16((a & (quarter - 1)) - quarter)
    res = _exp_quarter(_rescale(amq, ib, 0))
    rem = wrap16(amq - a)
    for e, m in _BARREL:
        if ib > e:
            hit = (rem & (1 << (fb + e))) != 0
            res = np.where(hit, _mul(res, _c16(m)), res)
    if ib > 5:
        res = np.where(a < _c16(-(1 << (36 - ib))), 0, res)
    return np.where(a == 0, 32767, res)


def _newton(a):
    """Newton-Raphson for 1 / (1 + a), a in Q0.15; returns x ≈ 2/(1+a) in Q2.13."""
    s = a + 32767
    hd = _tdiv(s + np.where(s >= 0, 1, -1), 1)  # RoundingHalfSum(a, One)
    x = wrap16(_c16(1515870810) + _mul(hd, _c16(-1010580540)))
    for _ in range(3):
        om = wrap16((1 << 13) - _mul(hd, x))
        x = wrap16(x + _shl_sat(_mul(x, om), 2))
    return x


def fp_logistic(raw, integer_bits: int = 3) -> np.ndarray:
    """gemmlowp::logistic on FixedPoint<int16_t, integer_bits> raw values -> Q0.15 raw."""
    a = wrap16(raw)
    pos = a > 0
    absx = np.where(pos, a, wrap16(-a))
    rp = _shl_sat(_newton(_exp_neg(wrap16(-absx), integer_bits)), 1)
    return np.where(a == 0, 16384, np.where(pos, rp, wrap16(32767 - rp)))


def fp_tanh(raw, integer_bits: int = 3) -> np.ndarray:
    """gemmlowp::tanh on FixedPoint<int16_t, integer_bits> raw values -> Q0.15 raw."""
    a = wrap16(raw)
    neg = a < 0
    n = np.where(neg, a, wrap16(-a))
    t = _shl_sat(wrap16(_newton(_exp_neg(n, integer_bits + 1)) - (1 << 13)), 2)
    return np.where(a == 0, 0, np.where(neg, wrap16(-t), t))


@cache
def _table(kind: str, integer_bits: int) -> np.ndarray:
    fn = fp_logistic if kind == "logistic" else fp_tanh
    return fn(np.arange(-32768, 32768, dtype=np.int64), integer_bits)


def sigmoid_q3_12(x) -> np.ndarray:
    return _table("logistic", 3)[np.asarray(x, dtype=np.int64) + 32768]


def tanh_q(x, integer_bits: int) -> np.ndarray:
    return _table("tanh", integer_bits)[np.asarray(x, dtype=np.int64) + 32768]

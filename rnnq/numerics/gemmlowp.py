"""LiteRT's integer semantics ("litert" profile): gemmlowp's double rounding.

rnnq's own C rounds once (see `rnnq.numerics`); a `.tflite` is executed by LiteRT, whose
kernels use gemmlowp's primitives. These are their definitions, vectorised over numpy int64 so
that the LiteRT profile of the simulator (`rnnq.tflite.sim`) predicts LiteRT bit for bit.
Offline helpers (`quantize_multiplier`) mirror LiteRT's double-precision derivation, because a
one-ulp difference in a multiplier changes outputs.

- ``srdhm(a, b)``   SaturatingRoundingDoublingHighMul: (a·b + nudge) / 2^31 truncated, nudge
                    2^30 for a·b >= 0 else 1 − 2^30; INT32_MIN·INT32_MIN saturates.
- ``rdbpot(x, e)``  RoundingDivideByPOT: x / 2^e rounded half away from zero.
- ``mbqm(x, M, s)`` MultiplyByQuantizedMultiplier (double rounding):
                    rdbpot(srdhm(x·2^max(s,0), M), max(−s,0)); x·2^s wraps as int32 does.
"""

from __future__ import annotations

import math

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

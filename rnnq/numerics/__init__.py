"""THE integer semantics of rnnq.

Every integer operation that the simulator performs and that the generated C performs is
defined here, once. `templates/c/runtime/rnnq_fixedpoint.h` mirrors these functions name for
name (``rnnq_<name>`` in C); tests compare both against exact Python-integer arithmetic.

All evaluation-time functions accept numpy integer arrays (or Python ints) and use only integer
operations. Floats appear only in the offline helpers (``quantize_multiplier``, table builders),
which run at compile time and whose results are stored as integers.

Definitions (x, M, s integers):

- ``sat(x, bits)``            clamp to the signed ``bits``-bit range.
- ``rshift_round(x, n)``      (x + 2^(n-1)) >> n for n >= 1, x for n == 0: round half up,
                              arithmetic (floor) shift.
- ``requant(x, M, s)``        sat32((x * M + 2^(s-1)) >> s) with x int32, M in [0, 2^31),
                              1 <= s <= 62, product in int64: one rounding, half up.
- ``tanh_q15(x, f)``          tanh of x / 2^f as Q0.15 in [-32767, 32767]: linear interpolation
                              in a 1025-entry table of tanh over [0, 8] (step 1/128), odd
                              symmetry; |x| >= 8 gives the last entry (32767).
- ``sigmoid_q15(x, f)``       sigmoid of x / 2^f as Q0.15 in [0, 32767], through the identity
                              sigmoid(v) = (1 + tanh(v/2)) / 2:
                              min((32768 + tanh_q15(x, f+1) + 1) >> 1, 32767).
                              One table serves both functions.
- ``div_round(a, b)``         a / b rounded to the nearest integer, halves away from zero, for
                              b >= 1: sign(a) * ((|a| + b // 2) // b).
- ``isqrt_round(x)``          the integer nearest to sqrt(x) for 0 <= x < 2^32: r = floor(sqrt(x)),
                              plus 1 when x > r^2 + r (sqrt(x) >= r + 1/2 exactly then; no tie
                              is possible).
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
INT16_MIN, INT16_MAX = -32768, 32767
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

#: Q format of LSTM gate pre-activations (Q3.12) and gate outputs (Q0.15).
GATE_FRAC_BITS = 12
ACT_FRAC_BITS = 15
#: The LSTM cell is int32 with at most CELL_FRAC_MAX fractional bits: tanh_q15 of it then
#: interpolates in int32 (2^(27-7) steps between table entries times a table difference <= 256
#: < 2^31), and i * z (Q0.30) is shifted right by >= 3 into it.
CELL_FRAC_MAX = 27
#: LSTM peepholes read the cell's top 16 bits, rshift_round(c, PEEP_SHIFT): p * c16 fits int32.
PEEP_SHIFT = 16

#: The activation table: tanh at k / 2^TABLE_STEP_BITS (step 1/128), k = 0..1024, over [0, 8].
TABLE_STEP_BITS = 7
TABLE_SIZE = 8 * (1 << TABLE_STEP_BITS) + 1  # 1025


def _as_i64(x):
    return np.asarray(x, dtype=np.int64)


def sat(x, bits: int):
    """Clamp to the signed `bits`-bit range."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if isinstance(x, int):
        return min(max(x, lo), hi)
    return np.clip(_as_i64(x), lo, hi)


def rshift_round(x, n):
    """Round-half-up right shift: (x + 2^(n-1)) >> n, x unchanged when n == 0."""
    if isinstance(n, (int, np.integer)):
        n = int(n)
        if isinstance(x, int):
            return x if n == 0 else (x + (1 << (n - 1))) >> n
        x = _as_i64(x)
        return x if n == 0 else (x + (1 << (n - 1))) >> n
    x = _as_i64(x)
    n = _as_i64(n)
    half = np.where(n > 0, np.left_shift(np.int64(1), np.maximum(n - 1, 0)), 0)
    return np.right_shift(x + half, n)


def isqrt_round(x):
    """The integer nearest to sqrt(x), 0 <= x < 2^32 (bit by bit, as the C does)."""
    scalar = isinstance(x, int)
    v = _as_i64(x)
    r = np.zeros_like(v)
    rem = v.copy()
    bit = np.int64(1) << 30
    while bit:
        take = rem >= r + bit
        rem = np.where(take, rem - r - bit, rem)
        r = np.where(take, (r >> 1) + bit, r >> 1)
        bit >>= 2
    r = r + (rem > r)  # x - floor^2 > floor: round up
    return int(r) if scalar else r


def requant(x, mult, shift):
    """Scale an int32 accumulator by the real factor mult * 2^-shift, rounding half up.

    x is int32, mult in [0, 2^31), shift in [1, 62]: x * mult fits int64 with the rounding
    term. The result saturates to int32.
    """
    if isinstance(x, int) and isinstance(mult, int) and isinstance(shift, int):
        return sat((x * mult + (1 << (shift - 1))) >> shift, 32)
    x, m, s = _as_i64(x), _as_i64(mult), _as_i64(shift)
    y = np.right_shift(x * m + np.left_shift(np.int64(1), s - 1), s)
    # |x * m| < 2^62, so shifts >= 32 leave |y| <= 2^30: nothing to saturate
    return y if s.min(initial=62) >= 32 else sat(y, 32)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Offline: real factor -> (mult, shift) with real ~= mult * 2^-shift.

    mult in [2^30, 2^31) (Jacob et al. 2018) and shift in [1, 62]. Tiny factors lose
    mantissa bits (shift capped at 62); factors >= 2^30 are rejected.
    """
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"requantisation factor {real!r} is not a finite non-negative number")
    if real == 0.0:
        return 0, 1
    frac, exp = math.frexp(real)  # real = frac * 2^exp, frac in [0.5, 1)
    mult = int(round_half_away(frac * (1 << 31)))
    if mult == 1 << 31:
        mult //= 2
        exp += 1
    shift = 31 - exp
    if shift < 1:
        raise ValueError(f"requantisation factor {real:g} is too large (>= 2^30)")
    if shift > 62:
        mult >>= shift - 62
        shift = 62
    return mult, shift


def _build_tanh_table() -> tuple[int, ...]:
    step = 1.0 / (1 << TABLE_STEP_BITS)
    return tuple(
        min(math.floor(math.tanh(k * step) * 32768.0 + 0.5), INT16_MAX)
        for k in range(TABLE_SIZE)
    )


#: round(32768 * tanh(k/128)), k = 0..1024, capped at 32767. Mirrored literally in
#: templates/c/runtime/rnnq_tables.h (a test checks equality).
TANH_TABLE: tuple[int, ...] = _build_tanh_table()
_TANH = np.array(TANH_TABLE, dtype=np.int64)


_TANH_INT16: dict[int, np.ndarray] = {}  # frac_bits -> tanh_q15 of every int16 input


def tanh_q15(x, frac_bits: int):
    """tanh(x / 2^frac_bits) in Q0.15 (-32767..32767); x int32, frac_bits >= 7.

    Inputs within int16 (gate pre-activations) are looked up in a table of this same function
    over all 65,536 int16 values, made once per frac_bits: the same numbers, one gather."""
    if frac_bits < TABLE_STEP_BITS:
        raise ValueError(f"tanh input needs >= {TABLE_STEP_BITS} fractional bits")
    return _by_int16_table(_TANH_INT16, _tanh_q15, _as_i64(x), frac_bits)


def _by_int16_table(cache: dict, fn, x: np.ndarray, frac_bits: int) -> np.ndarray:
    """fn(x, frac_bits); for many inputs all within int16, by one gather from a table of fn
    over every int16 value (made once per frac_bits in cache)."""
    if x.size > 4096 and x.min(initial=0) >= -32768 and x.max(initial=0) <= 32767:
        table = cache.get(frac_bits)
        if table is None:
            table = cache[frac_bits] = fn(np.arange(-32768, 32768), frac_bits)
        return table[x + 32768]
    return fn(x, frac_bits)


def _tanh_q15(x: np.ndarray, frac_bits: int) -> np.ndarray:
    """tanh_q15 computed: the table of TANH_TABLE with linear interpolation."""
    a = np.abs(x)
    sh = frac_bits - TABLE_STEP_BITS
    limit = (TABLE_SIZE - 1) << sh  # 8.0 in the input format
    ac = np.minimum(a, limit - 1)
    idx = np.right_shift(ac, sh)
    lo = _TANH[idx]
    hi = _TANH[idx + 1]
    y = lo + rshift_round((hi - lo) * (ac & ((1 << sh) - 1)), sh)
    y = np.where(a >= limit, _TANH[TABLE_SIZE - 1], y)
    return np.where(x < 0, -y, y)


_SIGMOID_INT16: dict[int, np.ndarray] = {}  # frac_bits -> sigmoid_q15 of every int16 input


def sigmoid_q15(x, frac_bits: int):
    """sigmoid(x / 2^frac_bits) in Q0.15 (0..32767), from tanh at half the argument.

    Inputs within int16 are looked up in a table of this same function over all int16 values,
    as tanh_q15 does."""
    if frac_bits + 1 < TABLE_STEP_BITS:
        raise ValueError(f"sigmoid input needs >= {TABLE_STEP_BITS - 1} fractional bits")
    return _by_int16_table(_SIGMOID_INT16, _sigmoid_q15, _as_i64(x), frac_bits)


def _sigmoid_q15(x: np.ndarray, frac_bits: int) -> np.ndarray:
    return np.minimum(np.right_shift(32768 + _tanh_q15(x, frac_bits + 1) + 1, 1), INT16_MAX)


def div_round(a, b):
    """a / b rounded half away from zero: sign(a) * ((|a| + b // 2) // b), for b >= 1.

    a int32 (any int64 whose |a| + b // 2 fits), b int32 >= 1; the result satisfies
    |result| <= |a|, so it fits the type of a.
    """
    if isinstance(a, int) and isinstance(b, int):
        if b < 1:
            raise ValueError(f"div_round: divisor must be >= 1, got {b}")
        q = (abs(a) + b // 2) // b
        return -q if a < 0 else q
    a, b = _as_i64(a), _as_i64(b)
    if np.any(b < 1):
        raise ValueError("div_round: divisors must be >= 1")
    q = (np.abs(a) + b // 2) // b
    return np.where(a < 0, -q, q)


def round_half_away(v: np.ndarray) -> np.ndarray:
    """THE rounding of real values to integers, everywhere rnnq rounds offline or on the host
    (scales to zero points, weights, biases, data, states): half away from zero, as C's
    round() and TensorFlow's converter do."""
    v = np.asarray(v, dtype=np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def quantize(v, scale, zero_point, bits: int = 8) -> np.ndarray:
    """Host-side real -> integer: clamp(round_half_away(v / scale) + zero_point) to the signed
    `bits`-bit range, as int64 (scale and zero point broadcast over v's last axis)."""
    q = round_half_away(np.asarray(v, np.float64) / scale) + zero_point
    return np.clip(q, -(1 << (bits - 1)), (1 << (bits - 1)) - 1).astype(np.int64)


def dequantize(q, scale, zero_point) -> np.ndarray:
    """integer -> real: (q - zero_point) * scale, in float64."""
    return (np.asarray(q).astype(np.float64) - zero_point) * scale

"""Exact Python-integer (and Fraction) definitions of the numerics primitives, written
independently of rnnq.numerics so that tests compare two separate spellings of the spec."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction


def sat(x: int, bits: int) -> int:
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return max(lo, min(x, hi))


def round_half_up(q: Fraction) -> int:
    return math.floor(q + Fraction(1, 2))


def rshift_round(x: int, n: int) -> int:
    return round_half_up(Fraction(x, 2**n))


def requant(x: int, mult: int, shift: int) -> int:
    return sat(round_half_up(Fraction(x * mult, 2**shift)), 32)


def _tanh_decimal(k: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        e = (Decimal(2 * k) / Decimal(128)).exp()
        return (e - 1) / (e + 1)


#: round(32768 * tanh(k/128)) capped at 32767, from 60-digit decimal arithmetic.
TABLE = [min(round_half_up(Fraction(_tanh_decimal(k) * 32768)), 32767) for k in range(1025)]


def tanh_q15(x: int, frac_bits: int) -> int:
    """Table lookup at |x| / 2^frac_bits with linear interpolation between k/128 and (k+1)/128,
    the interpolation rounded half up; |x| >= 8.0 gives TABLE[1024]; odd."""
    step = 2 ** (frac_bits - 7)  # input units per table step
    a = abs(x)
    k, r = divmod(a, step)
    if k >= 1024:
        y = TABLE[1024]
    else:
        y = TABLE[k] + round_half_up(Fraction((TABLE[k + 1] - TABLE[k]) * r, step))
    return -y if x < 0 else y


def sigmoid_q15(x: int, frac_bits: int) -> int:
    """(1 + tanh(v / 2)) / 2 in Q0.15, rounded half up, capped at 32767."""
    t = tanh_q15(x, frac_bits + 1)
    return min(round_half_up(Fraction(32768 + t, 2)), 32767)


def div_round(a: int, b: int) -> int:
    """a / b to the nearest integer, exact halves away from zero (b >= 1)."""
    q = Fraction(a, b)
    if q.denominator == 2:
        return math.ceil(q) if q > 0 else math.floor(q)
    return round(q)  # not a tie: the nearest integer


def isqrt_round(x: int) -> int:
    """The integer nearest to sqrt(x) (x >= 0): exact, from math.isqrt; (r + 1/2)^2 is never
    an integer, so there is no tie."""
    r = math.isqrt(x)
    return r + 1 if Fraction(x) > Fraction(2 * r + 1, 2) ** 2 else r

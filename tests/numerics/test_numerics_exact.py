"""rnnq.numerics against exact Python-integer arithmetic (tests/numerics/int_reference.py)."""

from __future__ import annotations

import int_reference as ref
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rnnq import numerics as nq

I32 = st.integers(nq.INT32_MIN, nq.INT32_MAX)
I64_SAFE = st.integers(-(2**62), 2**62 - 1)


def _arrays(dtype, elements, max_size=64):
    return hnp.arrays(dtype, st.integers(1, max_size), elements=elements)


def test_table_is_correctly_rounded_tanh():
    assert list(nq.TANH_TABLE) == ref.TABLE
    assert len(nq.TANH_TABLE) == nq.TABLE_SIZE == 1025


@given(_arrays(np.int64, I64_SAFE), st.sampled_from([8, 16, 32]))
def test_sat(x, bits):
    got = nq.sat(x, bits)
    assert got.tolist() == [ref.sat(int(v), bits) for v in x]
    assert all(nq.sat(int(v), bits) == ref.sat(int(v), bits) for v in x[:4])


@given(_arrays(np.int64, I64_SAFE), st.integers(0, 62))
def test_rshift_round(x, n):
    got = nq.rshift_round(x, n)
    assert got.tolist() == [ref.rshift_round(int(v), n) for v in x]
    assert all(nq.rshift_round(int(v), n) == ref.rshift_round(int(v), n) for v in x[:4])


@given(
    _arrays(np.int32, I32),
    st.integers(0, 2**31 - 1),
    st.integers(1, 62),
)
def test_requant(x, mult, shift):
    got = nq.requant(x, mult, shift)
    assert got.tolist() == [ref.requant(int(v), mult, shift) for v in x]
    assert all(nq.requant(int(v), mult, shift) == ref.requant(int(v), mult, shift) for v in x[:4])


@given(st.data(), st.integers(1, 64))
def test_requant_per_row(data, n):
    """Per-row multipliers and shifts broadcast elementwise."""
    x = data.draw(hnp.arrays(np.int32, n, elements=I32))
    m = data.draw(hnp.arrays(np.int32, n, elements=st.integers(0, 2**31 - 1)))
    s = data.draw(hnp.arrays(np.int32, n, elements=st.integers(1, 62)))
    got = nq.requant(x, m, s)
    assert got.tolist() == [ref.requant(int(a), int(b), int(c)) for a, b, c in zip(x, m, s)]


@given(_arrays(np.int32, I32), _arrays(np.int32, st.integers(1, 2**31 - 1)))
def test_div_round(a, b):
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    got = nq.div_round(a, b)
    assert got.tolist() == [ref.div_round(int(x), int(y)) for x, y in zip(a, b)]
    assert all(nq.div_round(int(x), int(y)) == ref.div_round(int(x), int(y)) for x, y in zip(a, b))


@given(st.integers(-(2**20), 2**20), st.integers(1, 64))
def test_div_round_small(a, b):
    """Dense in exact halves: a / b for small b."""
    assert nq.div_round(a, b) == ref.div_round(a, b)
    assert int(nq.div_round(np.array([a]), np.array([b]))[0]) == ref.div_round(a, b)


def test_div_round_halves_and_errors():
    assert [nq.div_round(v, 2) for v in (-5, -3, -1, 1, 3, 5)] == [-3, -2, -1, 1, 2, 3]
    assert [nq.div_round(v, 4) for v in (-6, -2, 2, 6, 7)] == [-2, -1, 1, 2, 2]
    assert nq.div_round(nq.INT32_MIN, 1) == nq.INT32_MIN
    with pytest.raises(ValueError):
        nq.div_round(3, 0)
    with pytest.raises(ValueError):
        nq.div_round(np.array([3, 4]), np.array([1, -1]))


@given(_arrays(np.int32, I32), st.integers(7, 40))
def test_tanh_q15(x, frac_bits):
    got = nq.tanh_q15(x, frac_bits)
    assert got.tolist() == [ref.tanh_q15(int(v), frac_bits) for v in x]


@given(_arrays(np.int32, I32), st.integers(6, 39))
def test_sigmoid_q15(x, frac_bits):
    got = nq.sigmoid_q15(x, frac_bits)
    assert got.tolist() == [ref.sigmoid_q15(int(v), frac_bits) for v in x]


@settings(max_examples=30)
@given(st.integers(7, 16))
def test_tanh_sigmoid_near_the_table_end(frac_bits):
    """Around 8.0 (the last table entry) and the int32 extremes."""
    limit = 1024 << (frac_bits - 7)
    xs = [limit - 2, limit - 1, limit, limit + 1, nq.INT32_MAX, nq.INT32_MIN, 0, 1, -1]
    xs = [v for v in xs if nq.INT32_MIN <= v <= nq.INT32_MAX]
    xs += [-v for v in xs if -v <= nq.INT32_MAX]
    x = np.array(xs, dtype=np.int64)
    assert nq.tanh_q15(x, frac_bits).tolist() == [ref.tanh_q15(v, frac_bits) for v in xs]
    assert nq.sigmoid_q15(x, frac_bits).tolist() == [ref.sigmoid_q15(v, frac_bits) for v in xs]


def test_ranges_and_symmetry_all_int16():
    x = np.arange(nq.INT16_MIN, nq.INT16_MAX + 1, dtype=np.int64)
    for f in (7, 12, 15):
        t = nq.tanh_q15(x, f)
        s = nq.sigmoid_q15(x, f)
        assert t.min() >= -32767 and t.max() <= 32767
        assert s.min() >= 0 and s.max() <= 32767
        assert np.all(np.diff(t) >= 0) and np.all(np.diff(s) >= 0)  # monotone
        assert np.array_equal(nq.tanh_q15(-x[1:], f), -t[1:])  # odd
    assert int(nq.sigmoid_q15(0, 12)) == 16384


@given(st.floats(1e-12, 2.0**30 * 0.999, allow_nan=False))
def test_quantize_multiplier(real):
    mult, shift = nq.quantize_multiplier(real)
    assert 1 <= shift <= 62
    assert 0 <= mult < 2**31
    if shift < 62:
        assert 2**30 <= mult
        # relative error of the Q31 mantissa: at most half a unit in 2^30
        assert abs(mult * 2.0**-shift - real) <= real * 2.0**-30


def test_tanh_int16_lookup_is_the_computed_function():
    """Large int16 inputs go through a table made of the function itself: every int16 input,
    at every format the kernels use, equals the computed path (which the tests above compare
    with Python integers)."""
    x = np.arange(-32768, 32768, dtype=np.int64)
    for f in range(7, 28):
        assert np.array_equal(nq.tanh_q15(x, f), nq._tanh_q15(x, f)), f
        assert np.array_equal(nq.sigmoid_q15(x, f), np.minimum(
            np.right_shift(32768 + nq._tanh_q15(x, f + 1) + 1, 1), nq.INT16_MAX)), f

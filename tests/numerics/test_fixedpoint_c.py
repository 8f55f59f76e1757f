"""templates/c/runtime/rnnq_fixedpoint.h against rnnq.numerics and exact integers, bit for bit.

The header is compiled (gcc, house flags) behind tests/numerics/fixedpoint_shim.c; each call
passes a whole array to one C loop.
"""

from __future__ import annotations

import int_reference as ref
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rnnq import numerics as nq

I32 = st.integers(nq.INT32_MIN, nq.INT32_MAX)
SIZES = st.integers(1, 256)


def _arr(dtype, elements):
    return hnp.arrays(dtype, SIZES, elements=elements)


@given(_arr(np.int64, st.integers(-(2**63), 2**63 - 1)), st.sampled_from([8, 16, 32]))
def test_sat(fixedpoint_c, x, bits):
    assert np.array_equal(fixedpoint_c.sat(x, bits), nq.sat(x, bits))


@given(st.data(), SIZES)
def test_rshift_round(fixedpoint_c, data, n):
    x = data.draw(hnp.arrays(np.int32, n, elements=I32))
    s = data.draw(hnp.arrays(np.int32, n, elements=st.integers(0, 40)))
    got = fixedpoint_c.rshift_round(x, s)
    assert got.tolist() == [ref.rshift_round(int(a), int(b)) for a, b in zip(x, s)]
    small = s <= 31  # numerics' int64 path is exact there for int32 x
    assert np.array_equal(got[small], nq.rshift_round(x[small], s[small]))


@given(st.data(), SIZES)
def test_rshift_round64(fixedpoint_c, data, n):
    x = data.draw(hnp.arrays(np.int64, n, elements=st.integers(-(2**63), 2**63 - 1)))
    s = data.draw(hnp.arrays(np.int32, n, elements=st.integers(0, 70)))
    got = fixedpoint_c.rshift_round64(x, s)
    assert got.tolist() == [ref.rshift_round(int(a), int(b)) for a, b in zip(x, s)]


@given(st.data(), SIZES)
def test_requant(fixedpoint_c, data, n):
    x = data.draw(hnp.arrays(np.int32, n, elements=I32))
    m = data.draw(hnp.arrays(np.int32, n, elements=st.integers(0, 2**31 - 1)))
    s = data.draw(hnp.arrays(np.int32, n, elements=st.integers(1, 62)))
    got = fixedpoint_c.requant(x, m, s)
    assert np.array_equal(got, nq.requant(x, m, s))
    assert got.tolist() == [ref.requant(int(a), int(b), int(c)) for a, b, c in zip(x, m, s)]


@given(_arr(np.int32, I32), st.integers(7, 63))
def test_tanh_q15(fixedpoint_c, x, frac_bits):
    got = fixedpoint_c.tanh_q15(x, frac_bits)
    assert got.tolist() == [ref.tanh_q15(int(v), frac_bits) for v in x]
    if frac_bits <= 40:
        assert np.array_equal(got, nq.tanh_q15(x, frac_bits))


@given(_arr(np.int32, I32), st.integers(6, 62))
def test_sigmoid_q15(fixedpoint_c, x, frac_bits):
    got = fixedpoint_c.sigmoid_q15(x, frac_bits)
    assert got.tolist() == [ref.sigmoid_q15(int(v), frac_bits) for v in x]
    if frac_bits <= 39:
        assert np.array_equal(got, nq.sigmoid_q15(x, frac_bits))


def test_tanh_sigmoid_exhaustive_int16(fixedpoint_c):
    """Every int16 input, at every format the LSTM uses (gates 12/13, cell 7..16)."""
    x = np.arange(nq.INT16_MIN, nq.INT16_MAX + 1, dtype=np.int32)
    for f in range(7, 17):
        assert np.array_equal(fixedpoint_c.tanh_q15(x, f), nq.tanh_q15(x, f)), f
        assert np.array_equal(fixedpoint_c.sigmoid_q15(x, f), nq.sigmoid_q15(x, f)), f


def test_tanh_int32_extremes(fixedpoint_c):
    x = np.array([nq.INT32_MIN, nq.INT32_MIN + 1, -1, 0, 1, nq.INT32_MAX], dtype=np.int32)
    for f in range(7, 41):
        assert np.array_equal(fixedpoint_c.tanh_q15(x, f), nq.tanh_q15(x, f)), f
        assert np.array_equal(fixedpoint_c.sigmoid_q15(x, f - 1), nq.sigmoid_q15(x, f - 1)), f


def test_compiled_table_equals_python(fixedpoint_c):
    assert fixedpoint_c.tanh_table().tolist() == list(nq.TANH_TABLE)


@given(st.data(), SIZES)
def test_div_round(fixedpoint_c, data, n):
    a = data.draw(hnp.arrays(np.int32, n, elements=I32))
    b = data.draw(hnp.arrays(np.int32, n, elements=st.integers(1, 2**31 - 1)))
    got = fixedpoint_c.div_round(a, b)
    assert np.array_equal(got, nq.div_round(a, b))
    assert got.tolist() == [ref.div_round(int(x), int(y)) for x, y in zip(a, b)]


def test_div_round_edges(fixedpoint_c):
    a = [nq.INT32_MIN, nq.INT32_MIN, nq.INT32_MIN, nq.INT32_MAX, nq.INT32_MAX, -1, 1, 0, -3, 3]
    b = [1, 2, nq.INT32_MAX, 1, nq.INT32_MAX, 2, 2, 7, 2, 2]
    want = [ref.div_round(x, y) for x, y in zip(a, b)]
    assert fixedpoint_c.div_round(np.array(a), np.array(b)).tolist() == want
    assert want[:3] == [nq.INT32_MIN, -(2**30), -1]
    for x in range(-40, 41):
        for y in range(1, 12):
            assert int(fixedpoint_c.div_round(np.array([x]), np.array([y]))[0]) == ref.div_round(
                x, y
            )


def test_isqrt_round(fixedpoint_c):
    """C and numpy against exact rationals: small values, squares and midpoints and their
    neighbours, random values, and the top of the uint32 range."""
    r = np.random.default_rng(3)
    k = np.arange(0, 65537, dtype=np.int64)
    x = np.concatenate([np.arange(0, 5000), k * k, k * k + k, k * k + k + 1,
                        r.integers(0, 2**32, 20000), [2**32 - 1, 3 * 2**30]])
    x = x[(x >= 0) & (x < 2**32)]
    want = [ref.isqrt_round(int(v)) for v in x]
    assert nq.isqrt_round(x).tolist() == want
    assert fixedpoint_c.isqrt_round(x).tolist() == want

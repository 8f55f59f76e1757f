"""The offline weight layouts of rnnq/backends/layouts.py (the arm_dsp interleaving)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnq import numerics as nq
from rnnq.backends.c.layouts import (
    ROWK_FIELDS,
    ROWK_WORDS,
    dsp_deinterleave,
    dsp_interleave,
    fused,
    fused_emitted,
    interleave_blocks,
    matvec_blocks,
    matvec_layout,
    row_constants,
    unit_major,
)
from tests.sim.kernel_cases import random_gru, random_lstm

SHAPES = [(r, c) for r in (0, 1, 2, 3, 4, 5, 7, 8, 9, 13) for c in (0, 1, 2, 3, 4, 5, 6, 7, 9, 17)]


@pytest.mark.parametrize("rows, cols", SHAPES + [(67, 130), (512, 128), (48, 33)])
def test_dsp_interleave_round_trips(rows, cols):
    rng = np.random.default_rng(rows * 1000 + cols)
    w = rng.integers(-128, 128, (rows, cols)).astype(np.int8)
    flat = dsp_interleave(w)
    assert flat.shape == (rows * cols,) and flat.dtype == np.int8
    assert np.array_equal(dsp_deinterleave(flat, rows, cols), w)
    # a permutation of the values, and every block of four rows where its first row starts
    assert np.array_equal(np.sort(flat), np.sort(w.ravel()))
    for r in range(0, rows - rows % 4, 4):
        assert np.array_equal(np.sort(flat[r * cols:(r + 4) * cols]),
                              np.sort(w[r:r + 4].ravel()))
    assert np.array_equal(flat[(rows - rows % 4) * cols:], w[rows - rows % 4:].ravel())


def test_dsp_interleave_order():
    w = np.arange(5 * 6).reshape(5, 6)
    want = [0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15, 18, 19, 20, 21,  # group 0, rows 0..3
            4, 5, 10, 11, 16, 17, 22, 23,                            # the rows' tails
            24, 25, 26, 27, 28, 29]                                  # row 4, row-major
    assert dsp_interleave(w).tolist() == want


@pytest.mark.parametrize("H", [1, 3, 5, 8])
def test_gru_blocks_interleaved_on_their_own(H):
    """linear_before_reset 0: the candidate rows [2H, 3H) of rw are a separate matvec call."""
    rng = np.random.default_rng(H)
    rw = rng.integers(-128, 128, (3 * H, H)).astype(np.int8)

    class P:
        hidden_size = H
        linear_before_reset = 0

    flat = matvec_layout("arm_dsp", "gru", P, "rw", rw)
    assert np.array_equal(flat[: 2 * H * H], dsp_interleave(rw[: 2 * H]))
    assert np.array_equal(flat[2 * H * H:], dsp_interleave(rw[2 * H:]))
    P.linear_before_reset = 1
    assert np.array_equal(matvec_layout("arm_dsp", "gru", P, "rw", rw), dsp_interleave(rw))
    assert matvec_blocks("gru", P) == {"w": [], "rw": [], "rw_lo": []}
    # other variants, and arrays that are not matvec weights, stay as they are
    assert matvec_layout("ref", "gru", P, "rw", rw) is rw
    assert matvec_layout("neon", "lstm", P, "w", rw) is rw
    assert matvec_layout("arm_dsp", "lstm", P, "bias_x", rw) is rw


def test_interleave_blocks_without_splits_is_dsp_interleave():
    w = np.arange(-60, 60).reshape(10, 12).astype(np.int8)
    assert np.array_equal(interleave_blocks(w), dsp_interleave(w))
    assert np.array_equal(interleave_blocks(w, [4, 8]), dsp_interleave(w))  # multiples of 4


def test_rows8_is_eight_rows_by_column_pairs():
    """x86's layout: per block of eight rows, per column pair, (row, column) pairs row by row;
    an odd last column of the eight rows after them; the remaining rows (rows % 8) the same way
    as a block of fewer rows; same size."""
    from rnnq.backends.c.layouts import rows8

    w = np.arange(11 * 5).reshape(11, 5).astype(np.int8)
    flat = rows8(w)
    assert flat.size == w.size
    assert flat[:4].tolist() == [w[0, 0], w[0, 1], w[1, 0], w[1, 1]]
    assert flat[14:18].tolist() == [w[7, 0], w[7, 1], w[0, 2], w[0, 3]]
    assert flat[32:40].tolist() == w[:8, 4].tolist()  # the odd column
    assert flat[40:44].tolist() == [w[8, 0], w[8, 1], w[9, 0], w[9, 1]]  # a block of 3 rows
    assert flat[44:50].tolist() == [w[10, 0], w[10, 1], w[8, 2], w[8, 3], w[9, 2], w[9, 3]]
    assert flat[52:].tolist() == w[8:, 4].tolist()  # its odd column
    assert np.array_equal(np.sort(flat), np.sort(w.ravel()))
    assert matvec_layout("x86", "lstm", None, "w", w).tolist() == flat.tolist()


# ---- arm_dsp_w16: int16 weight pairs in int32 words --------------------------------------------


def _pair(lo: int, hi: int) -> int:
    """The int32 word of two int16 lanes, computed from the bytes (independently of numpy's
    shifts): low half first, as a little-endian SMLAD operand."""
    return int.from_bytes(int(lo).to_bytes(2, "little", signed=True)
                          + int(hi).to_bytes(2, "little", signed=True), "little", signed=True)


def test_wide_pairs_order():
    from rnnq.backends.c.layouts import wide_pairs

    w = np.arange(-14, 16).reshape(5, 6)  # P = 3 pairs: one group of two, one pair left
    r = [[_pair(w[i, 2 * k], w[i, 2 * k + 1]) for k in range(3)] for i in range(5)]
    want = [r[0][0], r[0][1], r[1][0], r[1][1], r[2][0], r[2][1], r[3][0], r[3][1],  # group 0
            r[0][2], r[1][2], r[2][2], r[3][2],                                      # last pair
            *r[4]]                                                                   # row 4
    got = wide_pairs(w)
    assert got.dtype == np.int32 and got.tolist() == want
    odd = wide_pairs(np.array([[-128, 127, -1]]))  # an odd row: padded with a zero weight
    assert odd.tolist() == [_pair(-128, 127), _pair(-1, 0)]


@pytest.mark.parametrize("rows, cols", SHAPES + [(67, 130), (48, 33)])
def test_wide_pairs_round_trip(rows, cols):
    from rnnq.backends.c.layouts import wide_pairs, wide_unpairs

    rng = np.random.default_rng(rows * 1000 + cols + 7)
    w = rng.integers(-128, 128, (rows, cols)).astype(np.int8)
    flat = wide_pairs(w)
    pairs = (cols + 1) // 2
    assert flat.shape == (rows * pairs,) and flat.dtype == np.int32
    assert np.array_equal(wide_unpairs(flat, rows, cols), w)
    # rows past the last block of four start at word r * P, row-major
    full = rows - rows % 4
    for r in range(full, rows):
        assert flat[r * pairs:(r + 1) * pairs].tolist() == [
            _pair(w[r, 2 * k], w[r, 2 * k + 1] if 2 * k + 1 < cols else 0) for k in range(pairs)]


def test_wide_blocks_laid_out_on_their_own():
    """The unit-major LSTM's blocks of 32 rows: each one wide_pairs on its own, at word r * P
    (rnnq_matvec_rows in rnnq_matvec_arm_dsp_w16.c)."""
    from rnnq.backends.c.layouts import wide_pairs

    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, (4 * 20, 7)).astype(np.int8)

    class P:
        hidden_size = 20

    flat = matvec_layout("arm_dsp_w16", "lstm_fused", P, "w", w)
    assert flat.dtype == np.int32 and flat.size == 80 * 4
    for a, b in ((0, 32), (32, 64), (64, 80)):
        assert np.array_equal(flat[a * 4:b * 4], wide_pairs(w[a:b]))


def _rowk_requant(words: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The C step's rnnq_rowk_requant on one product's rowk words (bias, mult, shift - 33), as
    rnnq_requant_hi1 computes it (arithmetic shifts)."""
    b, m, s1 = (np.int64(v) for v in words)
    t = (((b + a) * m) >> 32) >> s1
    return t - (t >> 1)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_row_constants_are_the_row_arrays_unit_major(kind):
    """rowk (layouts.row_constants of the unit-major params): a row's six words, in the
    emitted row order; with them the step's arithmetic gives nq.requant's integers, for
    accumulators up to the int32 ends; fused_emitted leaves the separate arrays empty."""
    H = 11
    make = (lambda s: random_lstm(np.random.default_rng(s), 5, H, 12)) if kind == "lstm" else (
        lambda s: random_gru(np.random.default_rng(s), 5, H, 1))
    p = next(q for q in map(make, range(300)) if fused(q))
    um = unit_major(p)
    rowk = row_constants(um)
    assert rowk.dtype == np.int32 and rowk.shape == (np.asarray(p.bias_x).size, ROWK_WORDS)
    emitted, again = fused_emitted(p)
    assert np.array_equal(again, rowk)
    assert all(np.asarray(getattr(emitted, f)).size == 0 for f in ROWK_FIELDS)
    assert np.array_equal(emitted.w, um.w) and emitted.requant_hi == 1
    rng = np.random.default_rng(0)
    for r in range(rowk.shape[0]):
        for side, words in (("x", rowk[r, :3]), ("h", rowk[r, 3:])):
            bias = int(np.asarray(getattr(um, f"bias_{side}"))[r])
            mult = int(np.asarray(getattr(um, f"mult_{side}"))[r])
            shift = int(np.asarray(getattr(um, f"shift_{side}"))[r])
            lo, hi = -(2**31) - min(bias, 0), 2**31 - 1 - max(bias, 0)  # bias + a in int32
            a = np.concatenate([[lo, hi, 0, -1, 1], rng.integers(lo, hi + 1, 200)])
            want = nq.requant(bias + a, mult, shift)
            assert np.array_equal(_rowk_requant(words, a.astype(np.int64)), want)

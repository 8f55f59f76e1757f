"""rnnq/sim/kernels.py: vectorised kernels against element-by-element Python-integer loops
built from the numerics primitives (checks the composition, broadcasting and gate order)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_cases import random_binary, random_dense, random_lstm, random_softmax

from rnnq import numerics as nq
from rnnq.sim import kernels as sim

SEEDS = st.integers(0, 2**32 - 1)


def _i(v) -> int:
    return int(np.asarray(v))


def lstm_step_scalar(p, x, h, c):
    """The LstmParams docstring, one row and one element at a time, Python ints only."""
    H, I = p.hidden_size, p.input_size
    g = []
    for r in range(4 * H):
        ax = int(p.bias_x[r]) + sum(int(p.w[r, j]) * int(x[j]) for j in range(I))
        ah = int(p.bias_h[r]) + sum(int(p.rw[r, j]) * int(h[j]) for j in range(H))
        gx = nq.requant(ax, int(p.mult_x[r]), int(p.shift_x[r]))
        gh = nq.requant(ah, int(p.mult_h[r]), int(p.shift_h[r]))
        g.append(nq.sat(gx + gh, 16))
    h_new, c_new = [], []
    for j in range(H):
        i = _i(nq.sigmoid_q15(g[j], 12))
        o = _i(nq.sigmoid_q15(g[H + j], 12))
        f = _i(nq.sigmoid_q15(g[2 * H + j], 12))
        cc = _i(nq.tanh_q15(g[3 * H + j], 12))
        cn = nq.sat(
            nq.rshift_round(f * int(c[j]), 15) + nq.rshift_round(i * cc, 30 - p.cell_frac), 16
        )
        t = _i(nq.tanh_q15(cn, p.cell_frac))
        h_new.append(nq.sat(p.out_zp + nq.requant(o * t, p.out_mult, p.out_shift), 8))
        c_new.append(cn)
    return h_new, c_new


@settings(max_examples=25, deadline=None)
@given(
    seed=SEEDS,
    I=st.integers(1, 12),
    H=st.integers(1, 12),
    T=st.integers(1, 5),
    cell_frac=st.integers(7, 15),
)
def test_lstm_sequence_matches_scalar_loop(seed, I, H, T, cell_frac):
    rng = np.random.default_rng(seed)
    p = random_lstm(rng, I, H, cell_frac)
    x = rng.integers(-128, 128, size=(T, I)).astype(np.int8)
    y, c = sim.lstm_sequence(p, x)
    h_s, c_s = list(p.h0), list(p.c0)
    for t in range(T):
        h_s, c_s = lstm_step_scalar(p, x[t], h_s, c_s)
        assert y[t].tolist() == h_s
        assert c[t].tolist() == c_s


def test_lstm_sequence_leading_dims():
    rng = np.random.default_rng(1)
    p = random_lstm(rng, 5, 7, 11)
    x = rng.integers(-128, 128, size=(2, 3, 6, 5)).astype(np.int8)
    y, c = sim.lstm_sequence(p, x)
    assert y.shape == c.shape == (2, 3, 6, 7)
    for a in range(2):
        for b in range(3):
            y1, c1 = sim.lstm_sequence(p, x[a, b])
            assert np.array_equal(y[a, b], y1) and np.array_equal(c[a, b], c1)


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, K=st.integers(1, 20), N=st.integers(1, 10))
def test_dense_matches_scalar_loop(seed, K, N):
    rng = np.random.default_rng(seed)
    p = random_dense(rng, K, N)
    x = rng.integers(-128, 128, size=(2, 3, K)).astype(np.int8)
    y = sim.dense(p, x)
    assert y.shape == (2, 3, N) and y.dtype == np.int8
    for idx in np.ndindex(2, 3):
        for n in range(N):
            acc = int(p.bias[n]) + sum(int(p.w[n, k]) * int(x[idx][k]) for k in range(K))
            v = p.out_zp + nq.requant(acc, int(p.mult[n]), int(p.shift[n]))
            assert y[idx][n] == min(max(v, p.act_min), p.act_max)


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, op=st.sampled_from(["add", "mul"]))
def test_binary_matches_scalar_loop(seed, op):
    rng = np.random.default_rng(seed)
    p = random_binary(rng, op)
    a = rng.integers(-128, 128, size=(4, 8)).astype(np.int8)
    b = rng.integers(-128, 128, size=(4, 8)).astype(np.int8)
    y = sim.binary(p, a, b)
    for u, v, w in zip(a.ravel().tolist(), b.ravel().tolist(), y.ravel().tolist()):
        if op == "add":
            s = nq.rshift_round((u - p.a_zp) * p.a_mult + (v - p.b_zp) * p.b_mult, p.shift)
        else:
            s = nq.requant((u - p.a_zp) * (v - p.b_zp), p.mult, p.shift)
        assert w == min(max(p.out_zp + s, p.act_min), p.act_max)


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, depth=st.integers(1, 30))
def test_softmax_matches_scalar_loop(seed, depth):
    rng = np.random.default_rng(seed)
    p = random_softmax(rng, depth)
    x = rng.integers(-128, 128, size=(3, depth)).astype(np.int8)
    y = sim.softmax(p, x)
    for row, out in zip(x.tolist(), y.tolist()):
        e = [int(p.exp_table[max(row) - v]) for v in row]
        s = sum(e)
        assert out == [min(max((ei * 256 + s // 2) // s - 128, -128), 127) for ei in e]


def test_lut_and_take():
    table = np.arange(-128, 128, dtype=np.int8)[::-1].copy()
    x = np.array([[-128, 0], [127, 5]], dtype=np.int8)
    assert sim.lut(table, x).tolist() == [[127, -1], [-128, -6]]
    index = np.array([1, 1, 0], dtype=np.int32)
    assert sim.take(index, x).tolist() == [[0, 0, -128], [5, 5, 127]]


def test_shape_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        sim.dense(random_dense(rng, 4, 2), np.zeros((3, 5), np.int8))
    with pytest.raises(ValueError):
        sim.lstm_sequence(random_lstm(rng, 4, 2, 10), np.zeros((3, 5), np.int8))
    with pytest.raises(ValueError):
        sim.binary(random_binary(rng, "add"), np.zeros(3, np.int8), np.zeros(4, np.int8))

"""rnnq/sim/kernels.py: vectorised kernels against element-by-element Python-integer loops
built from the numerics primitives (checks the composition, broadcasting and gate order)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnq import numerics as nq
from rnnq.ir.params import MeanTimeParams
from rnnq.sim import kernels as sim
from tests.sim.kernel_cases import (
    LSTM_OPTIONS,
    random_binary,
    random_dense,
    random_embed,
    random_gru,
    random_lstm,
    random_mean_time,
    random_requant,
    random_rnn,
    random_softmax,
)

SEEDS = st.integers(0, 2**32 - 1)


def _i(v) -> int:
    return int(np.asarray(v))


def _dot(bias, w_row, v) -> int:
    return int(bias) + sum(int(a) * int(b) for a, b in zip(w_row, v))


def _clip(v: int, clip: int) -> int:
    return min(max(v, -clip), clip) if clip > 0 else v


def _act(p, v: int) -> int:
    """LstmParams' act(v) for one Python int."""
    if p.gate_act == 0:
        return _i(nq.sigmoid_q15(v, 12))
    return min(max(nq.rshift_round(v * int(p.hs_mult), int(p.hs_shift)) + p.hs_offset, 0), 32767)


def _gates(p, x, h, rows):
    """sat16(requant(bias_x + w.x) + requant(bias_h + rw.h)) for the given rows."""
    out = []
    for r in rows:
        gx = nq.requant(_dot(p.bias_x[r], p.w[r], x), int(p.mult_x[r]), int(p.shift_x[r]))
        gh = nq.requant(_dot(p.bias_h[r], p.rw[r], h), int(p.mult_h[r]), int(p.shift_h[r]))
        out.append(nq.sat(gx + gh, 16))
    return out


def lstm_step_scalar(p, x, h, c):
    """The LstmParams docstring, one row and one element at a time, Python ints only."""
    H = p.hidden_size
    g = _gates(p, x, h, range(4 * H))
    peep = len(p.p) > 0
    pm = [int(v) for v in p.p_mult]
    ps = [int(v) for v in p.p_shift]
    h_new, c_new = [], []
    for j in range(H):
        gi, go, gf, gc = g[j], g[H + j], g[2 * H + j], g[3 * H + j]
        cj = int(c[j])
        if peep:
            c16 = nq.rshift_round(cj, 16)
            gi = nq.sat(gi + nq.requant(int(p.p[j]) * c16, pm[0], ps[0]), 16)
            gf = nq.sat(gf + nq.requant(int(p.p[2 * H + j]) * c16, pm[2], ps[2]), 16)
        i = _act(p, _clip(gi, p.clip))
        f = min(32768 - i, 32767) if p.input_forget else _act(p, _clip(gf, p.clip))
        z = _i(nq.tanh_q15(_clip(gc, p.clip), 12))
        cn = nq.sat(nq.rshift_round(f * cj, 15) + nq.rshift_round(i * z, 30 - p.cell_frac), 32)
        if peep:
            go = nq.sat(go + nq.requant(int(p.p[H + j]) * nq.rshift_round(cn, 16), pm[1], ps[1]),
                        16)
        o = _act(p, _clip(go, p.clip))
        t = _i(nq.tanh_q15(cn, p.cell_frac))
        h_new.append(nq.sat(p.out_zp + nq.requant(o * t, p.out_mult, p.out_shift),
                            p.state_bits))
        c_new.append(cn)
    return h_new, c_new


@pytest.mark.parametrize("option", sorted(LSTM_OPTIONS))
@settings(max_examples=15, deadline=None)
@given(
    seed=SEEDS,
    I=st.integers(1, 12),
    H=st.integers(1, 12),
    T=st.integers(1, 5),
    cell_frac=st.integers(7, 27),
    state_bits=st.sampled_from([8, 16]),
)
def test_lstm_sequence_matches_scalar_loop(option, seed, I, H, T, cell_frac, state_bits):
    rng = np.random.default_rng(seed)
    p = random_lstm(rng, I, H, cell_frac, state_bits=state_bits, **LSTM_OPTIONS[option])
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


def test_lstm_sequence_initial_state_override():
    """h0 / c0 per batch row equal running each row from that state by hand."""
    rng = np.random.default_rng(2)
    p = random_lstm(rng, 4, 6, 10, peepholes=True)
    x = rng.integers(-128, 128, size=(3, 5, 4)).astype(np.int8)
    h0 = rng.integers(-128, 128, size=(3, 6)).astype(np.int8)
    c0 = rng.integers(-32768, 32768, size=(3, 6)).astype(np.int16)
    y, c = sim.lstm_sequence(p, x, h0, c0)
    for b in range(3):
        h_s, c_s = list(h0[b]), list(c0[b])
        for t in range(5):
            h_s, c_s = lstm_step_scalar(p, x[b, t], h_s, c_s)
            assert y[b, t].tolist() == h_s and c[b, t].tolist() == c_s
    y1, _ = sim.lstm_sequence(p, x, h0=None, c0=c0)  # h from params, c overridden
    assert np.array_equal(y1[0], sim.lstm_sequence(p, x[0], p.h0, c0[0])[0])


def gru_step_scalar(p, x, h):
    """The GruParams docstring, Python ints only."""
    H, zp = p.hidden_size, p.out_zp
    g = _gates(p, x, h, range(2 * H))
    a = [_act(p, _clip(v, p.clip)) for v in g]
    z, r = a[:H], a[H:]
    n = []
    for k in range(H):
        j = 2 * H + k
        ax = nq.requant(_dot(p.bias_x[j], p.w[j], x), int(p.mult_x[j]), int(p.shift_x[j]))
        if p.linear_before_reset:
            acc = _dot(p.bias_h[j], p.rw[j], h)
            ah = nq.sat(nq.requant(acc, int(p.mult_h[j]), int(p.shift_h[j])), 16)
            pre = nq.sat(ax + nq.rshift_round(r[k] * ah, 15), 16)
        else:
            rh = [nq.rshift_round(r[m] * (int(h[m]) - zp), 8) for m in range(H)]
            assert all(-32768 <= v <= 32767 for v in rh)
            acc = _dot(p.bias_h[j], p.rw[j], rh)
            pre = nq.sat(ax + nq.requant(acc, int(p.mult_h[j]), int(p.shift_h[j])), 16)
        n.append(_i(nq.tanh_q15(_clip(pre, p.clip), 12)))
    return [
        nq.sat(
            zp
            + nq.requant((32768 - z[k]) * n[k], p.out_mult, p.out_shift)
            + nq.rshift_round(z[k] * (int(h[k]) - zp), 15),
            8,
        )
        for k in range(H)
    ]


@pytest.mark.parametrize("lbr", [0, 1])
@pytest.mark.parametrize("hard_sigmoid", [False, True])
@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, I=st.integers(1, 10), H=st.integers(1, 10), T=st.integers(1, 5))
def test_gru_sequence_matches_scalar_loop(lbr, hard_sigmoid, seed, I, H, T):
    rng = np.random.default_rng(seed)
    p = random_gru(rng, I, H, lbr, hard_sigmoid=hard_sigmoid, clip=bool(rng.integers(2)))
    x = rng.integers(-128, 128, size=(2, T, I)).astype(np.int8)
    h0 = rng.integers(-128, 128, size=(2, H)).astype(np.int8)
    for b, (y, h_s) in enumerate(
        [(sim.gru_sequence(p, x)[0], list(p.h0)), (sim.gru_sequence(p, x, h0)[1], list(h0[1]))]
    ):
        for t in range(T):
            h_s = gru_step_scalar(p, x[b, t], h_s)
            assert y[t].tolist() == h_s


def rnn_step_scalar(p, x, h):
    """The RnnParams docstring, Python ints only."""
    out = []
    for r in range(p.hidden_size):
        v = nq.requant(_dot(p.bias_x[r], p.w[r], x), int(p.mult_x[r]), int(p.shift_x[r]))
        v += nq.requant(_dot(p.bias_h[r], p.rw[r], h), int(p.mult_h[r]), int(p.shift_h[r]))
        if p.act == 1:
            hi = min(127, p.out_zp + p.clip) if p.clip else 127
            out.append(min(max(p.out_zp + v, p.out_zp), hi))
        else:
            g = _clip(nq.sat(v, 16), p.clip)
            t = _i(nq.tanh_q15(g, 12) if p.act == 0 else nq.sigmoid_q15(g, 12))
            out.append(nq.sat(p.out_zp + nq.requant(t, p.out_mult, p.out_shift), 8))
    return out


@pytest.mark.parametrize("act", [0, 1, 2])
@pytest.mark.parametrize("clip", [False, True])
@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, I=st.integers(1, 10), H=st.integers(1, 10), T=st.integers(1, 5))
def test_rnn_sequence_matches_scalar_loop(act, clip, seed, I, H, T):
    rng = np.random.default_rng(seed)
    p = random_rnn(rng, I, H, act, clip=clip)
    x = rng.integers(-128, 128, size=(T, I)).astype(np.int8)
    y = sim.rnn_sequence(p, x)
    h_s = list(p.h0)
    for t in range(T):
        h_s = rnn_step_scalar(p, x[t], h_s)
        assert y[t].tolist() == h_s


def _div_round_half_away(a: int, b: int) -> int:
    q = Fraction(a, b)
    m = math.floor(abs(q) + Fraction(1, 2))
    return m if q >= 0 else -m


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, wide=st.booleans())
def test_requant_matches_scalar(seed, wide):
    rng = np.random.default_rng(seed)
    p = random_requant(rng, wide)
    lo, hi = (-32768, 32767) if wide else (-128, 127)
    x = rng.integers(lo, hi + 1, size=(3, 7)).astype(np.int16 if wide else np.int8)
    y = sim.requant_s8(p, x)
    assert y.dtype == np.int8 and y.shape == x.shape
    for v, w in zip(x.ravel().tolist(), y.ravel().tolist()):
        s = Fraction((v - p.in_zp) * p.mult, 2**p.shift)
        assert w == min(max(p.out_zp + math.floor(s + Fraction(1, 2)), -128), 127)


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, size=st.integers(1, 6), T=st.integers(1, 12))
def test_mean_time_matches_scalar(seed, size, T):
    rng = np.random.default_rng(seed)
    p = random_mean_time(rng, size)
    x = rng.integers(-128, 128, size=(2, T, size)).astype(np.int8)
    y = sim.mean_time(p, x)
    assert y.dtype == np.int8 and y.shape == x.shape
    for b in range(2):
        acc = [0] * size
        for t in range(T):
            for k in range(size):
                acc[k] += int(x[b, t, k]) - p.in_zp
                q = nq.requant(acc[k], p.mult, p.shift)
                want = min(max(p.out_zp + _div_round_half_away(q, t + 1), -128), 127)
                assert y[b, t, k] == want


def test_mean_time_rounds_half_away_from_zero():
    p = MeanTimeParams(size=1, in_zp=0, out_zp=0, mult=2**30, shift=30)  # requant = identity
    x = np.array([[1], [0], [0], [0]], np.int8)  # means 1, 1/2, 1/3, 1/4
    assert sim.mean_time(p, x).ravel().tolist() == [1, 1, 0, 0]
    assert sim.mean_time(p, -x).ravel().tolist() == [-1, -1, 0, 0]
    x = np.array([[3], [0]], np.int8)  # 3, 3/2
    assert sim.mean_time(p, x).ravel().tolist() == [3, 2]
    assert sim.mean_time(p, -x).ravel().tolist() == [-3, -2]


def test_embed_matches_scalar():
    rng = np.random.default_rng(5)
    p = random_embed(rng, 7, 4)
    ids = np.array([[-5, 0, 3], [6, 7, 100]])
    y = sim.embed(p, ids)
    assert y.dtype == np.int8 and y.shape == (2, 3, 4)
    for idx in np.ndindex(2, 3):
        i = int(ids[idx])
        row = min(max(i + p.vocab if i < 0 else i, 0), p.vocab - 1)
        assert y[idx].tolist() == p.table[row].tolist()


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
    with pytest.raises(ValueError):
        sim.gru_sequence(random_gru(rng, 4, 2, 0), np.zeros((3, 5), np.int8))
    with pytest.raises(ValueError):
        sim.rnn_sequence(random_rnn(rng, 4, 2, 0), np.zeros(4, np.int8))
    with pytest.raises(ValueError):
        sim.gru_sequence(random_gru(rng, 4, 2, 1), np.zeros((3, 4), np.int8), h0=np.zeros(3))
    with pytest.raises(ValueError):
        sim.mean_time(random_mean_time(rng, 3), np.zeros((5, 4), np.int8))


@pytest.mark.parametrize("kind", ["lstm", "gru0", "gru1", "rnn"])
def test_batched_sequence_matches_scalar_loop(kind, monkeypatch):
    """A batch large enough for the int16-table activations (> 4096 values per call), the input
    products computed for blocks of 2 steps (T = 5: blocks 2, 2, 1): rows equal the scalar
    loop."""
    rng = np.random.default_rng(11)
    n, T, I, H = 800, 5, 5, 6
    p, step = {
        "lstm": (random_lstm(rng, I, H, 13, peepholes=True), None),
        "gru0": (random_gru(rng, I, H, 0), gru_step_scalar),
        "gru1": (random_gru(rng, I, H, 1, clip=True), gru_step_scalar),
        "rnn": (random_rnn(rng, I, H, 0), rnn_step_scalar),
    }[kind]
    rows = np.asarray(p.bias_x).shape[-1]
    monkeypatch.setattr(sim, "_BLOCK_ELEMENTS", 2 * n * rows)
    x = rng.integers(-128, 128, size=(n, T, I)).astype(np.int8)
    if kind == "lstm":
        y, c = sim.lstm_sequence(p, x)
    else:
        y = (sim.gru_sequence if kind.startswith("gru") else sim.rnn_sequence)(p, x)
    for b in (0, 417, n - 1):
        h_s, c_s = list(p.h0), list(getattr(p, "c0", []))
        for t in range(T):
            if kind == "lstm":
                h_s, c_s = lstm_step_scalar(p, x[b, t], h_s, c_s)
                assert c[b, t].tolist() == c_s
            else:
                h_s = step(p, x[b, t], h_s)
            assert y[b, t].tolist() == h_s


@pytest.mark.parametrize("x_dtype, x_max, w_max, k", [
    (np.int8, 128, 127, 1000),       # K * 128 * 127 < 2^24: float32
    (np.int8, 128, 128, 1024),       # = 2^24: float64
    (np.int16, 32768, 127, 600),     # float64
    (np.int64, 2**40, 127, 300),     # beyond 2^53: int64
    (np.int64, 100, 127, 50),        # int64 values, small: scanned, float32
])
def test_matvec_exact_on_every_path(x_dtype, x_max, w_max, k):
    """sim._matvec against Python integers at the edges of its float32 / float64 / int64
    choice (extreme values, so a rounded sum would show)."""
    rng = np.random.default_rng(k)
    w = rng.choice([-w_max, w_max - 1, w_max], size=(7, k)).astype(np.int64)
    w[:, 0] = -w_max
    x = rng.choice([-x_max, x_max - 1, 1 - x_max], size=(3, k))
    x[0] = np.where(w[0] > 0, x_max - 1, 1 - x_max)  # row 0's sum is as large as it gets
    x = x.astype(x_dtype)
    got = sim._matvec(w, x)
    want = np.array([[sum(int(a) * int(b) for a, b in zip(wr, xr)) for wr in w] for xr in x],
                    dtype=object)
    assert got.dtype == np.int64 and (got.astype(object) == want).all()
    assert np.array_equal(sim._matvec(w, x, slice(2, 5)), got[:, 2:5])

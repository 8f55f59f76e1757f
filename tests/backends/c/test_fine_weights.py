"""16-bit recurrent weights (rw + rw_lo / 2^8, rnnq.ir.params): the simulator's definition
against Python integers, the C kernels on both paths against the simulator, and the quantiser's
split of float weights."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from rnnq.backends.c.layouts import fused
from rnnq.ir.params import hi_path
from rnnq.passes.qcommon import bias, fine_weights, row_weights
from rnnq.sim import kernels as sim
from tests.sim.kernel_cases import RNN_ACTS, random_gru, random_lstm, random_rnn

KINDS = ["lstm", "lstm_h16", "gru0", "gru1", "gru0_h16", "gru1_h16", "rnn_tanh", "rnn_relu",
         "rnn_sigmoid_h16", "rnn_relu_h16"]


def _fine(kind: str, rng: np.random.Generator):
    bits = 16 if kind.endswith("h16") else 8
    if kind.startswith("lstm"):
        return random_lstm(rng, 9, 13, int(rng.integers(7, 28)), state_bits=bits, fine=True)
    if kind.startswith("gru"):
        return random_gru(rng, 9, 13, int(kind[3]), clip=bool(rng.integers(2)), state_bits=bits,
                          fine=True)
    return random_rnn(rng, 9, 13, RNN_ACTS[kind.split("_")[1]], clip=bool(rng.integers(2)),
                      state_bits=bits, fine=True)


def _round(v: float) -> int:
    """Round half away from zero."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def _sequence(lib, p, x, **kw):
    name = type(p).__name__[:-6].lower()  # LstmParams -> lstm
    out = getattr(lib, f"{name}_sequence")(p, x, **kw)
    return out if isinstance(out, tuple) else (out,)


def test_recurrent_product_definition():
    """rw.v + rshift_round(rw_lo.v, 8) per row, against Python integers (int16 v, sums well
    beyond float32's exact range)."""
    rng = np.random.default_rng(5)
    p = random_gru(rng, 3, 40, 1, state_bits=16, fine=True)
    v = rng.integers(-32768, 32768, (4, 40)).astype(np.int16)
    got = sim._recurrent(p, v)
    for b in range(4):
        for r in range(p.rw.shape[0]):
            hi = sum(int(p.rw[r, k]) * int(v[b, k]) for k in range(40))
            lo = sum(int(p.rw_lo[r, k]) * int(v[b, k]) for k in range(40))
            assert got[b, r] == hi + ((lo + 128) >> 8)


@pytest.mark.parametrize("hi", [0, 1])
@pytest.mark.parametrize("kind", KINDS)
def test_fine_weights_c_matches_simulator(kernels_c, kind, hi):
    """Both C paths (requant_hi's branch-free one and the general one), int8 and int16 x, the
    same bits as the simulator, on params where rw_lo matters (without it the simulator gives
    other bits), so a kernel that ignored it would fail."""
    for seed in range(200):  # params on the path asked for, where rw_lo changes the output
        rng = np.random.default_rng(seed)
        p = _fine(kind, rng)
        x8 = rng.integers(-128, 128, (2, 12, 9)).astype(np.int8)
        x16 = rng.integers(-32768, 32768, (2, 5, 9)).astype(np.int16)
        # random next bits, and the largest ones (whose effect reaches the output sooner)
        strong = dataclasses.replace(p, rw_lo=np.full_like(p.rw, 127))
        coarse = dataclasses.replace(p, rw_lo=np.zeros(0, np.int8))
        if p.requant_hi == hi and not np.array_equal(_sequence(sim, coarse, x8)[0],
                                                     _sequence(sim, strong, x8)[0]):
            break
    else:
        pytest.fail("no params found")
    assert not fused(p)  # the unit-major steps take no rw_lo
    for q in (p, strong):
        for x in (x8, x16):
            want = _sequence(sim, q, x)
            for kw in ({}, {"hi": True}) if hi else ({},):
                assert hi_path(q) or not kw
                got = _sequence(kernels_c, q, x, **kw)
                assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))



def test_fine_weights_split():
    """wq + rw_lo / 2^8 is W (per-row scaled) within 2^-8 of a step, far finer than wq
    alone, and the bias's zero-point term uses the 16-bit weights."""
    rng = np.random.default_rng(2)
    w = rng.normal(size=(24, 10)) * np.exp(rng.normal(size=(24, 1)))
    cols = np.full(10, 0.013)
    wq, s = row_weights(w, cols)
    lo = fine_weights(w, cols, s, wq)
    exact = w * cols[None, :] / s[:, None]
    err16 = np.abs(exact - (wq + lo / 256.0))
    assert err16.max() <= 1 / 256 + 1e-12  # half a step of 2^-8; a clipped next 128 one step
    assert np.abs(exact - wq).max() > 100 * err16.max()
    zp = np.full(10, -37)
    b = rng.normal(size=24)
    got = bias(None, b, s, wq, zp, fine=lo)
    want = [_round(b[r] / s[r]) - int(wq[r] @ zp) - _round(int(lo[r].astype(int) @ zp) / 256)
            for r in range(24)]
    assert np.array_equal(got, want)

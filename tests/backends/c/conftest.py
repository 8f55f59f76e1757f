"""Fixtures for the kernel tests: rnnq_kernels.c (+ rnnq_matvec_ref.c) as a ctypes library."""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnq.backends.c.layouts import fused_emitted
from rnnq.backends.c.scratch import scratch_bytes

_TESTS = str(Path(__file__).resolve().parents[2])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

import cbuild
from cprogram import matvec_source

from tests.sim.kernel_cases import (
    CBinaryParams,
    CDenseParams,
    CEmbedParams,
    CGruParams,
    CLstmParams,
    CMagnitudeParams,
    CMeanTimeParams,
    CRequantParams,
    CRnnParams,
    CSoftmaxParams,
    to_c,
)

SHIM = Path(__file__).with_name("kernels_shim.c")
KERNELS = cbuild.RUNTIME_DIR / "rnnq_kernels.c"


def _scratch(nbytes: int) -> np.ndarray:
    """nbytes of zeroed scratch, 4-byte aligned (numpy data is at least 16-byte aligned)."""
    buf = np.zeros(-(-nbytes // 4), dtype=np.int32)
    assert buf.ctypes.data % 4 == 0
    return buf


def _emitted(p, fused: bool, ctype) -> tuple:
    """to_c's arguments for p as the C backend emits it: p itself or, for the unit-major
    steps, reordered with the separate row arrays NULL and the row constants in rowk
    (layouts.fused_emitted)."""
    if not fused:
        return p, ctype
    emitted, rowk = fused_emitted(p)
    return emitted, ctype, {"rowk": rowk}


_P = ctypes.c_void_p
_I32 = ctypes.c_int32


def _x(x: np.ndarray) -> np.ndarray:
    """A recurrent kernel's input as the C reads it: int16 stays int16, anything else int8."""
    return np.ascontiguousarray(x, dtype=np.int16 if x.dtype == np.int16 else np.int8)


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


class KernelsLib:
    """numpy front end of the C kernels: same signatures as rnnq/sim/kernels.py."""

    def __init__(self, path: Path):
        lib = ctypes.CDLL(str(path))
        sigs = {
            "rnnq_lstm_scratch_size": ([_P], _I32),
            "rnnq_lstm_fused_scratch_size": ([_P], _I32),
            "rnnq_gru_fused_scratch_size": ([_P], _I32),
            "rnnq_lstm_step_s8": ([_P] * 5, None),
            "rnnq_dense_s8": ([_P] * 3 + [_I32, _P], None),
            "rnnq_binary_s8": ([_P] * 4 + [_I32], None),
            "rnnq_lut_s8": ([_P] * 3 + [_I32], None),
            "rnnq_softmax_s8": ([_P] * 3 + [_I32], None),
            "rnnq_take_s8": ([_P, _I32, _P, _P], None),
            "rnnq_take_s16": ([_P, _I32, _P, _P], None),
            "rnnq_take_fill_s8": ([_P, _I32, _P, _P, _I32], None),
            "rnnq_take_fill_s16": ([_P, _I32, _P, _P, _I32], None),
            "rnnq_dense_s16": ([_P] * 3 + [_I32, _P], None),
            "rnnq_magnitude_s8": ([_P] * 5 + [_I32], None),
            "rnnq_magnitude_s16": ([_P] * 5 + [_I32], None),
            "shim_lstm_sequence": ([_P, _P, _I32, _I32, _I32, _P, _P, _P, _P, _P], None),
            "rnnq_gru_scratch_size": ([_P], _I32),
            "rnnq_rnn_scratch_size": ([_P], _I32),
            "rnnq_gru_step_s8": ([_P] * 4, None),
            "rnnq_rnn_step_s8": ([_P] * 4, None),
            "shim_gru_sequence": ([_P, _P, _I32, _I32, _I32, _P, _P, _P, _P], None),
            "shim_rnn_sequence": ([_P, _P, _I32, _I32, _I32, _P, _P, _P, _P], None),
            "rnnq_requant_s16_s8": ([_P] * 3 + [_I32], None),
            "rnnq_requant_s8_s8": ([_P] * 3 + [_I32], None),
            "rnnq_requant_s32_s8": ([_P] * 3 + [_I32], None),
            "shim_mean_time_sequence": ([_P, _P, _I32, _I32, _P, _P], None),
            "shim_mean_time_from": ([_P, _P, _I32, _I32, _P, _P], None),
            "rnnq_embed_s8": ([_P, _I32, _P], None),
            "shim_embed": ([_P, _P, _I32, _P], None),
        }
        for name, (args, res) in sigs.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, res
        self.lib = lib

    def lstm_sequence(self, p, x: np.ndarray, hi: bool = False, fused: bool = False):
        """int8 x through rnnq_lstm_step_s8, int16 x through rnnq_lstm_step_x16; hi: their
        _hi entry points, fused: their _fused ones with p in unit-major order (params on the
        branch-free path only)."""
        cp = to_c(*_emitted(p, fused, CLstmParams))
        x = _x(x)
        *lead, T, _ = x.shape
        B = int(np.prod(lead, dtype=np.int64))
        H = p.hidden_size
        size = self.lib.rnnq_lstm_fused_scratch_size if fused else self.lib.rnnq_lstm_scratch_size
        nbytes = size(ctypes.byref(cp))
        assert nbytes == scratch_bytes("qlstm", p, fused)
        scratch = _scratch(nbytes)
        ht = np.int16 if p.state_bits == 16 else np.int8
        y = np.zeros((B, T, H), dtype=ht)
        c = np.zeros((B, T, H), dtype=np.int32)
        h_state, c_state = np.zeros(H, ht), np.zeros(H, np.int32)
        self.lib.shim_lstm_sequence(
            ctypes.byref(cp),
            _ptr(x),
            int(x.dtype == np.int16) | (2 if hi else 0) | (8 if fused else 0),
            B,
            T,
            _ptr(y),
            _ptr(c),
            _ptr(scratch),
            _ptr(h_state),
            _ptr(c_state),
        )
        return y.reshape(*lead, T, H), c.reshape(*lead, T, H)

    def lstm_step(self, p, x: np.ndarray, h: np.ndarray, c: np.ndarray):
        """One step on a single vector, state updated in place on copies."""
        cp = to_c(p, CLstmParams)
        x = np.ascontiguousarray(x, dtype=np.int8)
        h = np.array(h, dtype=np.int8)
        c = np.array(c, dtype=np.int32)
        scratch = _scratch(scratch_bytes("qlstm", p))
        self.lib.rnnq_lstm_step_s8(ctypes.byref(cp), _ptr(x), _ptr(h), _ptr(c), _ptr(scratch))
        return h, c

    def _h_sequence(self, kind, p, x, h0, ctype, hi=False, fused=False):
        """GRU / RNN sequence through shim_<kind>_sequence; h0: None (p.h0) or [..., H];
        int16 x through the _x16 step; hi: the _hi entry points; fused: the GRU's _fused ones,
        p in unit-major order."""
        cp = to_c(*_emitted(p, fused, ctype))
        x = _x(x)
        *lead, T, _ = x.shape
        B = int(np.prod(lead, dtype=np.int64))
        H = p.hidden_size
        size = f"rnnq_{kind}_fused_scratch_size" if fused else f"rnnq_{kind}_scratch_size"
        nbytes = getattr(self.lib, size)(ctypes.byref(cp))
        assert nbytes == scratch_bytes(f"q{kind}", p, fused)
        scratch = _scratch(nbytes)
        ht = np.int16 if getattr(p, "state_bits", 8) == 16 else np.int8  # a GRU's h width
        h_init = None
        if h0 is not None:
            h_init = np.ascontiguousarray(np.broadcast_to(h0, (*lead, H)), dtype=ht)
        y = np.zeros((B, T, H), dtype=ht)
        h_state = np.zeros(H, ht)
        getattr(self.lib, f"shim_{kind}_sequence")(
            ctypes.byref(cp),
            _ptr(x),
            int(x.dtype == np.int16) | (2 if hi else 0) | (8 if fused else 0),
            B,
            T,
            None if h_init is None else _ptr(h_init),
            _ptr(y),
            _ptr(scratch),
            _ptr(h_state),
        )
        return y.reshape(*lead, T, H)

    def gru_sequence(self, p, x: np.ndarray, h0=None, hi: bool = False,
                     fused: bool = False) -> np.ndarray:
        return self._h_sequence("gru", p, x, h0, CGruParams, hi, fused)

    def rnn_sequence(self, p, x: np.ndarray, h0=None, hi: bool = False) -> np.ndarray:
        return self._h_sequence("rnn", p, x, h0, CRnnParams, hi)

    def _h_step(self, kind, ctype, p, x, h):
        cp = to_c(p, ctype)
        x = np.ascontiguousarray(x, dtype=np.int8)
        h = np.array(h, dtype=np.int8)
        scratch = _scratch(getattr(self.lib, f"rnnq_{kind}_scratch_size")(ctypes.byref(cp)))
        getattr(self.lib, f"rnnq_{kind}_step_s8")(ctypes.byref(cp), _ptr(x), _ptr(h), _ptr(scratch))
        return h

    def gru_step(self, p, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        """One step on a single vector (state updated in place on a copy)."""
        return self._h_step("gru", CGruParams, p, x, h)

    def rnn_step(self, p, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        return self._h_step("rnn", CRnnParams, p, x, h)

    def requant_s8(self, p, x: np.ndarray) -> np.ndarray:
        """int16 input -> rnnq_requant_s16_s8, int8 -> rnnq_requant_s8_s8, int32 (an LSTM
        cell, zero point 0) -> rnnq_requant_s32_s8."""
        cp = to_c(p, CRequantParams)
        x = np.ascontiguousarray(x)
        assert x.dtype in (np.int8, np.int16, np.int32)
        y = np.zeros(x.shape, dtype=np.int8)
        fn = {np.dtype(np.int16): self.lib.rnnq_requant_s16_s8,
              np.dtype(np.int8): self.lib.rnnq_requant_s8_s8,
              np.dtype(np.int32): self.lib.rnnq_requant_s32_s8}[x.dtype]
        fn(ctypes.byref(cp), _ptr(x), _ptr(y), x.size)
        return y

    def mean_time(self, p, x: np.ndarray, acc0: np.ndarray | None = None,
                  n0: int = 0) -> np.ndarray:
        cp = to_c(p, CMeanTimeParams)
        x = np.ascontiguousarray(x, dtype=np.int8)
        *lead, T, _ = x.shape
        B = int(np.prod(lead, dtype=np.int64))
        y = np.zeros(x.shape, dtype=np.int8)
        if acc0 is None and n0 == 0:
            acc = np.zeros(2 * p.size, dtype=np.int32)  # int64 sums as int32 halves
            self.lib.shim_mean_time_sequence(ctypes.byref(cp), _ptr(x), B, T, _ptr(y),
                                             _ptr(acc))
            return y
        sums = np.broadcast_to(np.zeros(p.size, np.int64) if acc0 is None
                               else np.asarray(acc0, np.int64), (*lead, p.size))
        xs, ys, sums = x.reshape(B, T, -1), y.reshape(B, T, -1), sums.reshape(B, -1)
        for b in range(B):  # the sums as the C keeps them: [lo, hi] per element
            acc = np.stack([sums[b] & (2**31 - 1), sums[b] >> 31], axis=1).astype(np.int32)
            out = np.zeros((T, p.size), np.int8)
            self.lib.shim_mean_time_from(ctypes.byref(cp), _ptr(np.ascontiguousarray(xs[b])),
                                         T, n0, _ptr(acc), _ptr(out))
            ys[b] = out
        return y

    def embed(self, p, ids: np.ndarray) -> np.ndarray:
        cp = to_c(p, CEmbedParams)
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        y = np.zeros(ids.shape + (p.dim,), dtype=np.int8)
        self.lib.shim_embed(ctypes.byref(cp), _ptr(ids), ids.size, _ptr(y))
        return y

    def dense(self, p, x: np.ndarray) -> np.ndarray:
        """int8 x -> rnnq_dense_s8, int16 x -> rnnq_dense_s16 (the output of the same width)."""
        cp = to_c(p, CDenseParams)
        x = np.ascontiguousarray(x)
        assert x.dtype in (np.int8, np.int16)
        rows = x.size // p.in_features
        y = np.zeros(x.shape[:-1] + (p.out_features,), dtype=x.dtype)
        scratch = _scratch(scratch_bytes("qdense", p))
        fn = self.lib.rnnq_dense_s16 if x.dtype == np.int16 else self.lib.rnnq_dense_s8
        fn(ctypes.byref(cp), _ptr(x), _ptr(y), rows, _ptr(scratch))
        return y

    def magnitude(self, p, *xs: np.ndarray) -> np.ndarray:
        """rnnq_magnitude_s8 / _s16 on 1-3 operands of one shape and width."""
        cp = to_c(p, CMagnitudeParams)
        xs = [np.ascontiguousarray(x) for x in xs]
        y = np.zeros_like(xs[0])
        fn = (self.lib.rnnq_magnitude_s16 if xs[0].dtype == np.int16
              else self.lib.rnnq_magnitude_s8)
        ops = [_ptr(x) for x in xs] + [None] * (3 - len(xs))
        fn(ctypes.byref(cp), *ops, _ptr(y), y.size)
        return y

    def binary(self, p, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        cp = to_c(p, CBinaryParams)
        a = np.ascontiguousarray(a, dtype=np.int8)
        b = np.ascontiguousarray(b, dtype=np.int8)
        y = np.zeros_like(a)
        self.lib.rnnq_binary_s8(ctypes.byref(cp), _ptr(a), _ptr(b), _ptr(y), a.size)
        return y

    def lut(self, table: np.ndarray, x: np.ndarray) -> np.ndarray:
        table = np.ascontiguousarray(table, dtype=np.int8)
        x = np.ascontiguousarray(x, dtype=np.int8)
        y = np.zeros_like(x)
        self.lib.rnnq_lut_s8(_ptr(table), _ptr(x), _ptr(y), x.size)
        return y

    def softmax(self, p, x: np.ndarray) -> np.ndarray:
        cp = to_c(p, CSoftmaxParams)
        x = np.ascontiguousarray(x, dtype=np.int8)
        y = np.zeros_like(x)
        self.lib.rnnq_softmax_s8(ctypes.byref(cp), _ptr(x), _ptr(y), x.size // p.depth)
        return y

    def take(self, index: np.ndarray, x: np.ndarray, fill: int | None = None) -> np.ndarray:
        """One row: x [m] -> x[index] (int8 or int16; with fill, index -1 gives fill)."""
        index = np.ascontiguousarray(index, dtype=np.int32)
        x = np.ascontiguousarray(x)
        y = np.zeros(index.size, dtype=x.dtype)
        kind = "s16" if x.dtype == np.int16 else "s8"
        if fill is None:
            getattr(self.lib, f"rnnq_take_{kind}")(_ptr(index), index.size, _ptr(x), _ptr(y))
        else:
            getattr(self.lib, f"rnnq_take_fill_{kind}")(_ptr(index), index.size, _ptr(x),
                                                        _ptr(y), fill)
        return y


@pytest.fixture(scope="session")
def kernels_c() -> KernelsLib:
    """rnnq_kernels.c with rnnq_matvec_ref.c (+ the sequence shim) compiled once with gcc,
    house flags, -O2. (The other matvec variants: test_matvec_variants.py.)"""
    sources = [KERNELS, matvec_source("ref"), SHIM]
    path = cbuild.compile_shared(sources, (*cbuild.STRICT_FLAGS, "-O2"))
    return KernelsLib(path)

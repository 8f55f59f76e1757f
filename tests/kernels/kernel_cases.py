"""Random kernel parameters of plausible magnitude, and their ctypes mirrors.

Magnitudes follow what the quantiser produces (int8 weights, biases of a few thousand
accumulator units, multipliers from numerics.quantize_multiplier of log-uniform factors), with
ranges wide enough that saturation paths (sat16 gates, sat8 outputs, clamps) are exercised.
"""

from __future__ import annotations

import ctypes

import numpy as np

from rnnq import numerics as nq
from rnnq.ir.params import BinaryParams, DenseParams, LstmParams, SoftmaxParams

_I32 = ctypes.c_int32
_P = ctypes.c_void_p


def _i8(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def _qm(rng: np.random.Generator, n: int, lo_exp: float, hi_exp: float):
    """n (mult, shift) pairs of factors 2^u, u uniform in [lo_exp, hi_exp]."""
    pairs = [nq.quantize_multiplier(2.0 ** rng.uniform(lo_exp, hi_exp)) for _ in range(n)]
    m = np.array([p[0] for p in pairs], dtype=np.int32)
    s = np.array([p[1] for p in pairs], dtype=np.int32)
    return m, s


def random_lstm(rng: np.random.Generator, I: int, H: int, cell_frac: int) -> LstmParams:
    G = 4 * H
    # Q3.12 gates: accumulators of up to ~2^14 * K units scaled by 2^-12 .. 2^-2.
    mx, sx = _qm(rng, G, -12, -2)
    mh, sh = _qm(rng, G, -12, -2)
    om, osh = nq.quantize_multiplier(2.0 ** rng.uniform(-27, -19))  # Q0.30 -> int8
    return LstmParams(
        input_size=I,
        hidden_size=H,
        w=_i8(rng, (G, I)),
        rw=_i8(rng, (G, H)),
        bias_x=rng.integers(-(2**17), 2**17, size=G).astype(np.int32),
        bias_h=rng.integers(-(2**16), 2**16, size=G).astype(np.int32),
        mult_x=mx,
        shift_x=sx,
        mult_h=mh,
        shift_h=sh,
        cell_frac=cell_frac,
        out_mult=om,
        out_shift=osh,
        out_zp=int(rng.integers(-128, 128)),
        h0=_i8(rng, H),
        c0=rng.integers(-32768, 32768, size=H).astype(np.int16),
    )


def random_dense(rng: np.random.Generator, K: int, N: int) -> DenseParams:
    m, s = _qm(rng, N, -16, 0)
    lo = int(rng.integers(-128, 0))
    return DenseParams(
        in_features=K,
        out_features=N,
        w=_i8(rng, (N, K)),
        bias=rng.integers(-(2**18), 2**18, size=N).astype(np.int32),
        mult=m,
        shift=s,
        out_zp=int(rng.integers(-128, 128)),
        act_min=lo,
        act_max=int(rng.integers(lo, 128)),
    )


def random_binary(rng: np.random.Generator, op: str) -> BinaryParams:
    lo = int(rng.integers(-128, 0))
    if op == "add":
        shift = int(rng.integers(0, 40))
        a_mult = int(rng.integers(-(2**31) + 1, 2**31)) >> int(rng.integers(0, 31))
        b_mult = int(rng.integers(-(2**31) + 1, 2**31)) >> int(rng.integers(0, 31))
        mult = 0
    else:
        mult, shift = nq.quantize_multiplier(2.0 ** rng.uniform(-16, 2))
        a_mult = b_mult = 0
    return BinaryParams(
        op=op,
        a_zp=int(rng.integers(-128, 128)),
        b_zp=int(rng.integers(-128, 128)),
        out_zp=int(rng.integers(-128, 128)),
        a_mult=a_mult,
        b_mult=b_mult,
        mult=mult,
        shift=shift,
        act_min=lo,
        act_max=int(rng.integers(lo, 128)),
    )


def random_softmax(rng: np.random.Generator, depth: int) -> SoftmaxParams:
    """exp_table[d] = round(65536 * exp(-d * scale)) for an input scale of 2^-8 .. 2^0."""
    scale = 2.0 ** rng.uniform(-8, 0)
    d = np.arange(256)
    table = nq.round_half_away(65536.0 * np.exp(-d * scale)).astype(np.int32)
    return SoftmaxParams(depth=depth, exp_table=table)


# ---- ctypes mirrors of templates/c/runtime/rnnq_kernels.h -------------------------------


class CLstmParams(ctypes.Structure):
    _fields_ = [
        ("input_size", _I32),
        ("hidden_size", _I32),
        ("w", _P),
        ("rw", _P),
        ("bias_x", _P),
        ("bias_h", _P),
        ("mult_x", _P),
        ("shift_x", _P),
        ("mult_h", _P),
        ("shift_h", _P),
        ("cell_frac", _I32),
        ("out_mult", _I32),
        ("out_shift", _I32),
        ("out_zp", _I32),
        ("h0", _P),
        ("c0", _P),
    ]


class CDenseParams(ctypes.Structure):
    _fields_ = [
        ("in_features", _I32),
        ("out_features", _I32),
        ("w", _P),
        ("bias", _P),
        ("mult", _P),
        ("shift", _P),
        ("out_zp", _I32),
        ("act_min", _I32),
        ("act_max", _I32),
    ]


class CBinaryParams(ctypes.Structure):
    _fields_ = [
        (name, _I32)
        for name in (
            "op",
            "a_zp",
            "b_zp",
            "out_zp",
            "a_mult",
            "b_mult",
            "mult",
            "shift",
            "act_min",
            "act_max",
        )
    ]


class CSoftmaxParams(ctypes.Structure):
    _fields_ = [("depth", _I32), ("exp_table", _P)]


#: C element type of every array field (the dataclasses' documented dtypes).
_ARRAY_DTYPES = {
    "w": np.int8,
    "rw": np.int8,
    "h0": np.int8,
    "c0": np.int16,
    "exp_table": np.int32,
}
BINARY_OPS = {"add": 0, "mul": 1}  # RNNQ_BINARY_ADD, RNNQ_BINARY_MUL


def to_c(p, struct_type: type[ctypes.Structure]) -> ctypes.Structure:
    """Fill a ctypes struct from a params dataclass, field by field (names must match).

    The numpy buffers are attached to the struct (`_keep`) so they outlive it.
    """
    values, keep = {}, []
    for name, ctype in struct_type._fields_:
        v = getattr(p, name)
        if ctype is _P:
            arr = np.ascontiguousarray(v, dtype=_ARRAY_DTYPES.get(name, np.int32))
            keep.append(arr)
            values[name] = arr.ctypes.data
        elif name == "op":
            values[name] = BINARY_OPS[v]
        else:
            values[name] = int(v)
    s = struct_type(**values)
    s._keep = keep
    return s

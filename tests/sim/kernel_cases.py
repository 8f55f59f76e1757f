"""Random kernel parameters of plausible magnitude, and their ctypes mirrors.

Magnitudes follow what the quantiser produces (int8 weights, biases of a few thousand
accumulator units, multipliers from numerics.quantize_multiplier of log-uniform factors), with
ranges wide enough that saturation paths (sat16 gates, sat8 outputs, clamps) are exercised.
"""

from __future__ import annotations

import ctypes

import numpy as np

from rnnq import numerics as nq
from rnnq.ir.params import (
    BinaryParams,
    DenseParams,
    EmbedParams,
    GruParams,
    LstmParams,
    MagnitudeParams,
    MeanTimeParams,
    RequantParams,
    RnnParams,
    SoftmaxParams,
)

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


def _gate_top(rng: np.random.Generator) -> float:
    """The largest log2 factor of gate-row requantisations: -2 (every shift >= 33, the C
    kernels' requant_hi path) or, half the time, 1 (some shifts <= 32: the general path)."""
    return -2.0 if rng.integers(2) else 1.0


def random_hard_sigmoid(rng: np.random.Generator) -> dict:
    """gate_act 1 fields: ONNX HardSigmoid alpha in [0.05, 1], beta in [0, 1] on Q3.12 -> Q0.15
    (slope alpha * 8 per Q3.12 unit); sometimes an integer slope with hs_shift 0."""
    if rng.integers(4) == 0:
        hs_mult, hs_shift = int(rng.integers(0, 9)), 0
    else:
        hs_mult, hs_shift = nq.quantize_multiplier(8.0 * rng.uniform(0.05, 1.0))
    return {
        "gate_act": 1,
        "hs_mult": hs_mult,
        "hs_shift": hs_shift,
        "hs_offset": int(rng.integers(-2000, 34000)),
    }


def random_clip(rng: np.random.Generator) -> int:
    """A Q3.12 clip bound: mostly inside the int16 range, sometimes beyond it (no effect)."""
    return int(rng.integers(1, 40000))


def random_lstm(
    rng: np.random.Generator,
    I: int,
    H: int,
    cell_frac: int,
    *,
    hard_sigmoid: bool = False,
    clip: bool = False,
    input_forget: bool = False,
    peepholes: bool = False,
    state_bits: int = 8,
    fine: bool = False,
) -> LstmParams:
    """state_bits 16: an int16 h (zero point 0), its products and the output multiplier scaled
    as the quantiser scales them (2^8 smaller, 2^8 larger). fine: 16-bit recurrent weights
    (a random rw_lo)."""
    G = 4 * H
    wide = 8 if state_bits == 16 else 0
    # Q3.12 gates: accumulators of up to ~2^14 * K units scaled by 2^-12 .. 2^-2.
    top = _gate_top(rng)
    mx, sx = _qm(rng, G, -12, top)
    mh, sh = _qm(rng, G, -12 - wide, top - wide)
    om, osh = nq.quantize_multiplier(2.0 ** (rng.uniform(-27, -19) + wide))  # Q0.30 -> h
    extra: dict = {}
    if hard_sigmoid:
        extra.update(random_hard_sigmoid(rng))
    if clip:
        extra["clip"] = random_clip(rng)
    if input_forget:
        extra["input_forget"] = 1
    if peepholes:
        # p * c16 (the cell's top 16 bits): int16 x int16 -> Q3.12, factors 2^-20 .. 2^-8.
        pm, ps = _qm(rng, 3, -20, -8)
        extra.update(
            p=rng.integers(-32768, 32768, size=3 * H).astype(np.int16), p_mult=pm, p_shift=ps
        )
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
        out_zp=0 if state_bits == 16 else int(rng.integers(-128, 128)),
        h0=(rng.integers(-32768, 32768, H).astype(np.int16) if state_bits == 16
            else _i8(rng, H)),
        state_bits=state_bits,
        # any int32 cell, large ones too (f * c needs 64 bits; saturation at 2^31)
        c0=(rng.integers(-(2**31), 2**31, size=H) >> int(rng.integers(0, 24))).astype(np.int32),
        rw_lo=_i8(rng, (G, H)) if fine else np.zeros(0, np.int8),
        **extra,
    )


#: Every LSTM option alone, and all together (keyword arguments of random_lstm).
LSTM_OPTIONS = {
    "plain": {},
    "clip": {"clip": True},
    "hard_sigmoid": {"hard_sigmoid": True},
    "input_forget": {"input_forget": True},
    "peepholes": {"peepholes": True},
    "all": {"clip": True, "hard_sigmoid": True, "input_forget": True, "peepholes": True},
    "peep_hs_clip": {"clip": True, "hard_sigmoid": True, "peepholes": True},
}


def random_gru(
    rng: np.random.Generator,
    I: int,
    H: int,
    linear_before_reset: int,
    *,
    hard_sigmoid: bool = False,
    clip: bool = False,
    state_bits: int = 8,
    fine: bool = False,
) -> GruParams:
    """state_bits 16: an int16 state (zero point 0); its products and the output multiplier
    scaled as the quantiser scales them (2^8 smaller, 2^8 larger). fine: 16-bit recurrent
    weights (a random rw_lo)."""
    G = 3 * H
    wide = 8 if state_bits == 16 else 0
    top = _gate_top(rng)
    mx, sx = _qm(rng, G, -12, top)
    mh, sh = _qm(rng, G, -12 - wide, top - wide)
    if not linear_before_reset:
        # Candidate rows see rw . (r * (h - zp) / 2^8): accumulators up to ~H * 2^22.
        mh[2 * H :], sh[2 * H :] = _qm(rng, H, -20, -10)
    om, osh = nq.quantize_multiplier(2.0 ** (rng.uniform(-26, -20) + wide))  # Q0.30 -> h
    extra: dict = {}
    if hard_sigmoid:
        extra.update(random_hard_sigmoid(rng))
    if clip:
        extra["clip"] = random_clip(rng)
    return GruParams(
        input_size=I,
        hidden_size=H,
        linear_before_reset=linear_before_reset,
        w=_i8(rng, (G, I)),
        rw=_i8(rng, (G, H)),
        bias_x=rng.integers(-(2**17), 2**17, size=G).astype(np.int32),
        bias_h=rng.integers(-(2**16), 2**16, size=G).astype(np.int32),
        mult_x=mx,
        shift_x=sx,
        mult_h=mh,
        shift_h=sh,
        out_mult=om,
        out_shift=osh,
        out_zp=0 if state_bits == 16 else int(rng.integers(-128, 128)),
        h0=(rng.integers(-32768, 32768, H).astype(np.int16) if state_bits == 16
            else _i8(rng, H)),
        state_bits=state_bits,
        rw_lo=_i8(rng, (G, H)) if fine else np.zeros(0, np.int8),
        **extra,
    )


RNN_ACTS = {"tanh": 0, "relu": 1, "sigmoid": 2}


def random_rnn(rng: np.random.Generator, I: int, H: int, act: int, *, clip: bool = False,
               state_bits: int = 8, fine: bool = False):
    """state_bits 16: an int16 state (zero point 0); its products and the output multiplier
    scaled as the quantiser scales them (2^8 smaller; Q0.30 -> h, 2^8 larger than Q0.15 ->
    int8 over the 2^15 of t * 2^15)."""
    wide = 8 if state_bits == 16 else 0
    if act == 1:
        # Relu: accumulators straight to h units.
        top = -6.0 if rng.integers(2) else 1.0
        # an int16 h's input factors are 2^8 larger; half the time still below 2^-2 (hi path)
        mx, sx = _qm(rng, H, -16 + wide, top + wide) if top > 0 else _qm(rng, H, -16, -2.0)
        mh, sh = _qm(rng, H, -16, top)
        om, osh = 0, 1
        c = int(rng.integers(1, 300 << wide)) if clip else 0
    else:
        top = _gate_top(rng)
        mx, sx = _qm(rng, H, -12, top)
        mh, sh = _qm(rng, H, -12 - wide, top - wide)
        # Q0.15 -> int8 h: 2^-11 .. 2^-5; int16 h reads t * 2^15 (Q0.30): 2^8 larger, 2^15 less
        om, osh = nq.quantize_multiplier(2.0 ** (rng.uniform(-11, -5) + (wide - 15 if wide else 0)))
        c = random_clip(rng) if clip else 0
    return RnnParams(
        input_size=I,
        hidden_size=H,
        act=act,
        w=_i8(rng, (H, I)),
        rw=_i8(rng, (H, H)),
        bias_x=rng.integers(-(2**17), 2**17, size=H).astype(np.int32),
        bias_h=rng.integers(-(2**16), 2**16, size=H).astype(np.int32),
        mult_x=mx,
        shift_x=sx,
        mult_h=mh,
        shift_h=sh,
        out_mult=om,
        out_shift=osh,
        out_zp=0 if state_bits == 16 else int(rng.integers(-128, 128)),
        h0=(rng.integers(-32768, 32768, H).astype(np.int16) if state_bits == 16
            else _i8(rng, H)),
        clip=c,
        state_bits=state_bits,
        rw_lo=_i8(rng, (H, H)) if fine else np.zeros(0, np.int8),
    )


def random_requant(rng: np.random.Generator, wide: bool) -> RequantParams:
    """wide: an int16 source (zero point over the int16 range), else int8."""
    lo_exp, hi_exp = (-12, 2) if wide else (-4, 4)
    mult, shift = nq.quantize_multiplier(2.0 ** rng.uniform(lo_exp, hi_exp))
    zp_bound = 2**15 if wide else 2**7
    return RequantParams(
        in_zp=int(rng.integers(-zp_bound, zp_bound)),
        out_zp=int(rng.integers(-128, 128)),
        mult=mult,
        shift=shift,
    )


def random_mean_time(rng: np.random.Generator, size: int) -> MeanTimeParams:
    mult, shift = nq.quantize_multiplier(2.0 ** rng.uniform(-3, 3))
    return MeanTimeParams(
        size=size,
        in_zp=int(rng.integers(-128, 128)),
        out_zp=int(rng.integers(-128, 128)),
        mult=mult,
        shift=shift,
    )


def random_embed(rng: np.random.Generator, vocab: int, dim: int) -> EmbedParams:
    return EmbedParams(vocab=vocab, dim=dim, table=_i8(rng, (vocab, dim)))


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


def random_dense16(rng: np.random.Generator, K: int, N: int) -> DenseParams:
    """int16 -> int16 (a 16-bit front end): |bias| + K * 127 * 32768 < 2^31 for K <= 500."""
    m, s = _qm(rng, N, -16, 0)
    lo = int(rng.integers(-32767, 1))
    return DenseParams(
        in_features=K, out_features=N, w=_i8(rng, (N, K)),
        bias=rng.integers(-(2**24), 2**24, size=N).astype(np.int32), mult=m, shift=s,
        out_zp=0, act_min=lo, act_max=int(rng.integers(max(lo, 128), 32768)))


def random_magnitude(rng: np.random.Generator, wide: bool) -> MagnitudeParams:
    """int16 operands (zero point 0) or int8 ones (any zero point), output of the same width."""
    m, s = _qm(rng, 1, -3, 1)
    if wide:
        return MagnitudeParams(in_zp=0, out_zp=0, mult=int(m[0]), shift=int(s[0]),
                               act_min=-32767, act_max=32767)
    return MagnitudeParams(in_zp=int(rng.integers(-128, 128)),
                           out_zp=int(rng.integers(-128, 128)), mult=int(m[0]),
                           shift=int(s[0]), act_min=-128, act_max=127)


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
        ("gate_act", _I32),
        ("hs_mult", _I32),
        ("hs_shift", _I32),
        ("hs_offset", _I32),
        ("clip", _I32),
        ("input_forget", _I32),
        ("p", _P),
        ("p_mult", _P),
        ("p_shift", _P),
        ("state_bits", _I32),
        ("rw_lo", _P),
        ("requant_hi", _I32),
        ("rowk", _P),  # not in the dataclass: the backend's (to_c's extra)
    ]


class CGruParams(ctypes.Structure):
    _fields_ = [
        ("input_size", _I32),
        ("hidden_size", _I32),
        ("linear_before_reset", _I32),
        ("w", _P),
        ("rw", _P),
        ("bias_x", _P),
        ("bias_h", _P),
        ("mult_x", _P),
        ("shift_x", _P),
        ("mult_h", _P),
        ("shift_h", _P),
        ("out_mult", _I32),
        ("out_shift", _I32),
        ("out_zp", _I32),
        ("h0", _P),
        ("gate_act", _I32),
        ("hs_mult", _I32),
        ("hs_shift", _I32),
        ("hs_offset", _I32),
        ("clip", _I32),
        ("state_bits", _I32),
        ("rw_lo", _P),
        ("requant_hi", _I32),
        ("rowk", _P),  # not in the dataclass: the backend's (to_c's extra)
    ]


class CRnnParams(ctypes.Structure):
    _fields_ = [
        ("input_size", _I32),
        ("hidden_size", _I32),
        ("act", _I32),
        ("w", _P),
        ("rw", _P),
        ("bias_x", _P),
        ("bias_h", _P),
        ("mult_x", _P),
        ("shift_x", _P),
        ("mult_h", _P),
        ("shift_h", _P),
        ("out_mult", _I32),
        ("out_shift", _I32),
        ("out_zp", _I32),
        ("h0", _P),
        ("clip", _I32),
        ("state_bits", _I32),
        ("rw_lo", _P),
        ("requant_hi", _I32),
    ]


class CRequantParams(ctypes.Structure):
    _fields_ = [(name, _I32) for name in ("in_zp", "out_zp", "mult", "shift")]


class CMagnitudeParams(ctypes.Structure):
    _fields_ = [(name, _I32) for name in ("in_zp", "out_zp", "mult", "shift", "act_min",
                                          "act_max")]


class CMeanTimeParams(ctypes.Structure):
    _fields_ = [(name, _I32) for name in ("size", "in_zp", "out_zp", "mult", "shift")]


class CEmbedParams(ctypes.Structure):
    _fields_ = [("vocab", _I32), ("dim", _I32), ("table", _P)]


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
    "rw_lo": np.int8,
    "h0": np.int8,
    "c0": np.int32,
    "p": np.int16,
    "table": np.int8,
    "exp_table": np.int32,
}
BINARY_OPS = {"add": 0, "mul": 1}  # RNNQ_BINARY_ADD, RNNQ_BINARY_MUL


#: C struct fields that no params dataclass has (the backend emits them; to_c's extra)
EMITTED_ONLY = {"CLstmParams": ("rowk",), "CGruParams": ("rowk",)}


def to_c(p, struct_type: type[ctypes.Structure], extra: dict | None = None) -> ctypes.Structure:
    """Fill a ctypes struct from a params dataclass, field by field (names must match), and the
    fields of EMITTED_ONLY from extra (name -> int32 array; absent: NULL).

    The numpy buffers are attached to the struct (`_keep`) so they outlive it. Empty arrays
    (e.g. LSTM peepholes when there are none) become NULL pointers, as in the generated C.
    """
    values, keep = {}, []
    extra = extra or {}
    for name, ctype in struct_type._fields_:
        if name in EMITTED_ONLY.get(struct_type.__name__, ()):
            v = extra.get(name, np.zeros(0, np.int32))
        else:
            v = getattr(p, name)
        if ctype is _P:
            dt = _ARRAY_DTYPES.get(name, np.int32)
            if name == "h0" and getattr(p, "state_bits", 8) == 16:
                dt = np.int16  # a 16-bit state
            arr = np.ascontiguousarray(v, dtype=dt)
            keep.append(arr)
            values[name] = arr.ctypes.data if arr.size else None
        elif name == "op":
            values[name] = BINARY_OPS[v]
        else:
            values[name] = int(v)
    s = struct_type(**values)
    s._keep = keep
    return s

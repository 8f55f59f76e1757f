"""UNIDIRECTIONAL_SEQUENCE_LSTM as LiteRT computes it: the 8x8->16 integer kernel, bit for bit,
and the float32 kernel (for calibration and lowering checks).

The integer semantics follow LiteRT's `lstm_eval` integer path with its portable tensor
utilities (which x86 builds use for every integer LSTM primitive):

- gate = act(sat16(sat16(mbqm(W·x + b') + 0) + mbqm(R·h + r')) [+ mbqm(p ⊙ c)] ), each
  partial sum saturated to int16 as the accumulating kernel does; b' = b − zx·ΣW and
  r' = −zh·ΣR are folded offline (int32, wrapping). Pre-activations are Q3.12.
- act: gemmlowp's fixed-point logistic / tanh on int16 (Q3.12 -> Q0.15), below.
- c = sat16(wrap16(rdbpot(f·c, 15)) + wrap16(rdbpot(i·g, 30 + k))), cell scale 2^k; optional
  clip to ±trunc(clip / 2^k).
- h = sat8(mbqm(o · tanh_{15+k}(c)) + hidden_zp), the output gate seeing the new c.

Multipliers are derived with LiteRT's float32 arithmetic (`effective_scales`), because a one-ulp
difference in a scale changes outputs.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from rnnq.numerics.gemmlowp import f32, mbqm, quantize_multiplier, rdbpot, wrap32
from rnnq.tflite.lstm_quant import (  # noqa: F401  (the builders are this module's API too)
    GATES,
    PEEP,
    add_float_lstm,
    add_lstm,
    cell_exponent,
    float_lstm_params,
)
from rnnq.tflite.sim import Ctx, kernel

# Input slots of the 24-input op (TFLite's lstm::full indices).
X, W0, R0, P0, B0, PROJ_W, PROJ_B, H_STATE, C_STATE, LN0 = 0, 1, 5, 9, 12, 16, 17, 18, 19, 20

# --- gemmlowp fixed point on int16 (FixedPoint<int16_t, n>), in numpy int64 ----------------


def _w16(x):
    """Wrap to int16, as C's int -> int16_t conversion does (gemmlowp's non-saturating ops)."""
    return ((np.asarray(x, dtype=np.int64) + 32768) & 0xFFFF) - 32768


def _tdiv(x, e: int):
    """C's truncating division by 2^e."""
    return np.where(x >= 0, x >> e, -((-x) >> e))


def _mul(a, b):
    """SaturatingRoundingDoublingHighMul<int16_t>."""
    ab = a * b
    q = _tdiv(ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14)), 15)
    return np.where((a == -32768) & (b == -32768), 32767, _w16(q))


def _shl_sat(x, e: int):
    """SaturatingRoundingMultiplyByPOT<e> for e > 0 on int16."""
    thr = (1 << (15 - e)) - 1
    return np.where(x > thr, 32767, np.where(x < -thr, -32768, _w16(x << e)))


def _rescale(x, src: int, dst: int):
    k = src - dst
    return _shl_sat(x, k) if k > 0 else (rdbpot(x, -k) if k < 0 else x)


def _c16(raw32: int) -> int:
    """A gemmlowp constant given as a Q0.31-style int32, rounded to the 16-bit format."""
    return int(rdbpot(raw32, 16))


def _exp_quarter(a):
    """exp(x) for x in [-1/4, 0), Q0.15 in and out (Taylor series around -1/8)."""
    c_exp, c_third = _c16(1895147668), _c16(715827883)
    x = _w16(a + (1 << 12))
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    inner = _w16(_mul(_w16(rdbpot(x4, 2) + x3), c_third) + x2)
    s = _mul(c_exp, _w16(x + rdbpot(inner, 1)))
    return np.clip(c_exp + s, -32768, 32767)


_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
           (2, 39332535), (3, 720401), (4, 242))


def _exp_neg(a, ib: int):
    """exp(a) for a <= 0 in Q(ib), result Q0.15: exp of the remainder times a barrel shifter."""
    fb = 15 - ib
    quarter = 1 << (fb - 2)
    amq = _w16((a & (quarter - 1)) - quarter)
    res = _exp_quarter(_rescale(amq, ib, 0))
    rem = _w16(amq - a)
    for e, m in _BARREL:
        if ib > e:
            hit = (rem & (1 << (fb + e))) != 0
            res = np.where(hit, _mul(res, _c16(m)), res)
    if ib > 5:
        res = np.where(a < _c16(-(1 << (36 - ib))), 0, res)
    return np.where(a == 0, 32767, res)


def _newton(a):
    """Newton-Raphson for 1 / (1 + a), a in Q0.15; returns x ≈ 2/(1+a) in Q2.13."""
    s = a + 32767
    hd = _tdiv(s + np.where(s >= 0, 1, -1), 1)  # RoundingHalfSum(a, One)
    x = _w16(_c16(1515870810) + _mul(hd, _c16(-1010580540)))
    for _ in range(3):
        om = _w16((1 << 13) - _mul(hd, x))
        x = _w16(x + _shl_sat(_mul(x, om), 2))
    return x


def fp_logistic(raw, integer_bits: int = 3) -> np.ndarray:
    """gemmlowp::logistic on FixedPoint<int16_t, integer_bits> raw values -> Q0.15 raw."""
    a = _w16(raw)
    pos = a > 0
    absx = np.where(pos, a, _w16(-a))
    rp = _shl_sat(_newton(_exp_neg(_w16(-absx), integer_bits)), 1)
    return np.where(a == 0, 16384, np.where(pos, rp, _w16(32767 - rp)))


def fp_tanh(raw, integer_bits: int = 3) -> np.ndarray:
    """gemmlowp::tanh on FixedPoint<int16_t, integer_bits> raw values -> Q0.15 raw."""
    a = _w16(raw)
    neg = a < 0
    n = np.where(neg, a, _w16(-a))
    t = _shl_sat(_w16(_newton(_exp_neg(n, integer_bits + 1)) - (1 << 13)), 2)
    return np.where(a == 0, 0, np.where(neg, _w16(-t), t))


@cache
def _table(kind: str, integer_bits: int) -> np.ndarray:
    fn = fp_logistic if kind == "logistic" else fp_tanh
    return fn(np.arange(-32768, 32768, dtype=np.int64), integer_bits)


def sigmoid_q3_12(x) -> np.ndarray:
    return _table("logistic", 3)[np.asarray(x, dtype=np.int64) + 32768]


def tanh_q(x, integer_bits: int) -> np.ndarray:
    return _table("tanh", integer_bits)[np.asarray(x, dtype=np.int64) + 32768]


# --- parameters as LiteRT derives them ------------------------------------------------------


def checked_log2(x: float) -> int | None:
    """LiteRT's CheckedLog2 in float32: the exponent of a power-of-two scale, else None."""
    lg = np.float32(np.log(np.float32(x))) * np.float32(1.0 / np.float32(np.log(np.float32(2))))
    r = math.copysign(math.floor(abs(float(lg)) + 0.5), float(lg))
    return int(r) if abs(float(np.float32(lg - np.float32(r)))) < 1e-3 else None


def effective_scales(s_x: float, s_h: float, s_hidden: float, cell_exp: int,
                     w: dict, r: dict, p: dict) -> dict[str, tuple[int, int]]:
    """(multiplier, shift) per rescale, from float32 scales with LiteRT's float/double steps."""
    q12 = np.float32(2.0 ** -12)
    out: dict[str, tuple[int, int]] = {}
    for k in GATES:
        out["x" + k] = quantize_multiplier(float(np.float32(np.float32(w[k]) * np.float32(s_x))
                                                 / q12))
        out["h" + k] = quantize_multiplier(float(np.float32(np.float32(r[k]) * np.float32(s_h))
                                                 / q12))
        if k in p:
            out["p" + k] = quantize_multiplier(f32(2.0 ** cell_exp * f32(p[k]) / float(q12)))
    out["hidden"] = quantize_multiplier(f32(2.0 ** -15 / f32(s_hidden) * 2.0 ** -15))
    return out


def _sat(x, bits: int):
    return np.clip(x, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def _rows(x: np.ndarray, n: int, time_major: bool) -> np.ndarray:
    """[rows, T, F] view of a batch-folded input (time-major folds as [n*T, B, F])."""
    if not time_major:
        return x
    t = x.shape[0] // n
    return x.reshape(n, t, *x.shape[1:]).transpose(0, 2, 1, 3).reshape(-1, t, x.shape[-1])


def _unrows(y: np.ndarray, n: int, time_major: bool) -> np.ndarray:
    if not time_major:
        return y
    rows, t, h = y.shape
    return y.reshape(n, rows // n, t, h).transpose(0, 2, 1, 3).reshape(n * t, rows // n, h)


def _check_supported(op, args: list) -> None:
    if args[W0] is None:
        raise NotImplementedError("UNIDIRECTIONAL_SEQUENCE_LSTM: CIFG (no input gate) is not "
                                  "supported by rnnq's simulator")
    if args[PROJ_W] is not None:
        raise NotImplementedError("UNIDIRECTIONAL_SEQUENCE_LSTM: projection is not supported")
    if len(args) > LN0 and any(a is not None for a in args[LN0:LN0 + 4]):
        raise NotImplementedError("UNIDIRECTIONAL_SEQUENCE_LSTM: layer normalisation is not "
                                  "supported")


@kernel("UNIDIRECTIONAL_SEQUENCE_LSTM")
def lstm_int8x8_16(ctx: Ctx, op, args: list) -> list[np.ndarray]:
    """The integer 8x8->16 kernel over all steps and rows; writes h and c back to ctx.state."""
    _check_supported(op, args)
    t_of = ctx.tensor
    xt, hst, cst = t_of(op.inputs[X]), t_of(op.inputs[H_STATE]), t_of(op.inputs[C_STATE])
    hid = t_of(op.intermediates[4])
    cell_exp = checked_log2(float(cst.scales()[0]))
    if cell_exp is None:
        raise ValueError(f"{cst.name}: LiteRT needs a power-of-two cell-state scale")
    s_x, z_x = float(xt.scales()[0]), int(xt.zero_points()[0])
    s_h, z_h = float(hst.scales()[0]), int(hst.zero_points()[0])
    z_hid = int(hid.zero_points()[0])
    w = {k: args[W0 + j].astype(np.int64) for j, k in enumerate(GATES)}
    r = {k: args[R0 + j].astype(np.int64) for j, k in enumerate(GATES)}
    p = {k: args[P0 + j].astype(np.int64) for k, j in PEEP.items() if args[P0 + j] is not None}
    scale = {"w": {k: float(t_of(op.inputs[W0 + j]).scales()[0]) for j, k in enumerate(GATES)},
             "r": {k: float(t_of(op.inputs[R0 + j]).scales()[0]) for j, k in enumerate(GATES)},
             "p": {k: float(t_of(op.inputs[P0 + j]).scales()[0]) for k, j in PEEP.items()
                   if k in p}}
    m = effective_scales(s_x, s_h, float(hid.scales()[0]), cell_exp, scale["w"], scale["r"],
                         scale["p"])
    bx = {k: wrap32((0 if args[B0 + j] is None else args[B0 + j].astype(np.int64))
                    + w[k].sum(axis=1) * -z_x) for j, k in enumerate(GATES)}
    bh = {k: wrap32(r[k].sum(axis=1) * -z_h) for k in GATES}
    clip = float(op.options.get("CellClip", 0.0) or 0.0)
    qclip = (int(np.float32(min(max(np.float32(clip) / np.float32(cst.scales()[0]), -32768.0),
                                32767.0))) if clip > 0 else 0)
    time_major = bool(op.options.get("TimeMajor", False))
    x = _rows(args[X], ctx.n, time_major).astype(np.int64)
    rows, steps = x.shape[0], x.shape[1]
    hsz = w["f"].shape[0]
    h = ctx.state[op.inputs[H_STATE]].reshape(rows, -1).astype(np.int64)
    c = ctx.state[op.inputs[C_STATE]].reshape(rows, -1).astype(np.int64)
    tanh_bits = 15 + cell_exp
    out = np.empty((rows, steps, hsz), dtype=np.int8)

    def gate(k: str, xs, cell):
        g = _sat(mbqm(wrap32(xs @ w[k].T + bx[k]), *m["x" + k]), 16)
        g = _sat(mbqm(wrap32(h @ r[k].T + bh[k]), *m["h" + k]) + g, 16)
        if k in p:
            g = _sat(mbqm(p[k] * cell, *m["p" + k]) + g, 16)
        return tanh_q(g, 3) if k == "c" else sigmoid_q3_12(g)

    for s in range(steps):
        xs = x[:, s, :]
        ig, fg, gg = gate("i", xs, c), gate("f", xs, c), gate("c", xs, None)
        c = _sat(_w16(rdbpot(fg * c, 15)) + _w16(rdbpot(ig * gg, 30 + cell_exp)), 16)
        if qclip > 0:
            c = np.clip(c, -qclip, qclip)
        og = gate("o", xs, c)
        # LiteRT's ApplyTanh handles 0..6 integer bits and otherwise leaves its scratch
        # buffer alone, which at that point holds the input gate.
        th = tanh_q(c, tanh_bits) if 0 <= tanh_bits <= 6 else ig
        h = _sat(mbqm(og * th, *m["hidden"]) + z_hid, 8)
        out[:, s, :] = h
    ctx.state[op.inputs[H_STATE]] = h.astype(np.int8).reshape(ctx.state[op.inputs[H_STATE]].shape)
    ctx.state[op.inputs[C_STATE]] = c.astype(np.int16).reshape(ctx.state[op.inputs[C_STATE]].shape)
    if ctx.taps is not None:
        ctx.taps[op.inputs[H_STATE]] = out
    return [_unrows(out, ctx.n, time_major)]


_FLOAT_ACT = {0: lambda v: v, 1: lambda v: np.maximum(v, 0), 2: lambda v: np.clip(v, -1, 1),
              3: lambda v: np.clip(v, 0, 6), 4: np.tanh,
              6: lambda v: np.float32(1) / (np.float32(1) + np.exp(-v))}


@kernel("UNIDIRECTIONAL_SEQUENCE_LSTM", float_version=True)
def lstm_float(ctx: Ctx, op, args: list) -> list[np.ndarray]:
    """The float32 LSTM (gates i, f, c, o; the fused activation on the cell gate and output).

    With ctx.taps, records every step's cell state under the cell-state tensor (calibration
    reads its range there) and the hidden states under the output-state tensor."""
    _check_supported(op, args)
    act_code = int(op.options.get("FusedActivationFunction", 4))
    if act_code not in _FLOAT_ACT:
        raise NotImplementedError(f"UNIDIRECTIONAL_SEQUENCE_LSTM activation {act_code}")
    act = _FLOAT_ACT[act_code]
    sig = _FLOAT_ACT[6]
    f = np.float32
    w = {k: args[W0 + j].astype(f) for j, k in enumerate(GATES)}
    r = {k: args[R0 + j].astype(f) for j, k in enumerate(GATES)}
    b = {k: (np.zeros(w[k].shape[0], f) if args[B0 + j] is None else args[B0 + j].astype(f))
         for j, k in enumerate(GATES)}
    p = {k: args[P0 + j].astype(f) for k, j in PEEP.items() if args[P0 + j] is not None}
    clip = f(op.options.get("CellClip", 0.0) or 0.0)
    time_major = bool(op.options.get("TimeMajor", False))
    x = _rows(args[X], ctx.n, time_major).astype(f)
    rows, steps = x.shape[0], x.shape[1]
    h = ctx.state[op.inputs[H_STATE]].reshape(rows, -1).astype(f)
    c = ctx.state[op.inputs[C_STATE]].reshape(rows, -1).astype(f)
    out = np.empty((rows, steps, w["f"].shape[0]), f)
    cells = np.empty_like(out)

    def pre(k: str, xs, cell):
        v = b[k] + xs @ w[k].T + h @ r[k].T
        return v + p[k] * cell if k in p else v

    for s in range(steps):
        xs = x[:, s, :]
        ig, fg = sig(pre("i", xs, c)), sig(pre("f", xs, c))
        gg = act(pre("c", xs, None))
        c = fg * c + ig * gg
        if clip > 0:
            c = np.clip(c, -clip, clip)
        og = sig(pre("o", xs, c))
        h = (og * act(c)).astype(f)
        out[:, s, :], cells[:, s, :] = h, c
    ctx.state[op.inputs[H_STATE]] = h.reshape(ctx.state[op.inputs[H_STATE]].shape)
    ctx.state[op.inputs[C_STATE]] = c.reshape(ctx.state[op.inputs[C_STATE]].shape)
    if ctx.taps is not None:
        ctx.taps[op.inputs[C_STATE]] = cells
        ctx.taps[op.inputs[H_STATE]] = out
    return [_unrows(out, ctx.n, time_major)]

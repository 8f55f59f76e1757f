"""UNIDIRECTIONAL_SEQUENCE_LSTM as LiteRT computes it: the 8x8->16 integer kernel, bit for bit,
and the float32 kernel (for calibration and lowering checks).

The integer semantics follow LiteRT's `lstm_eval` integer path with its portable tensor
utilities (which x86 builds use for every integer LSTM primitive):

- gate = act(sat16(sat16(mbqm(W·x + b') + 0) + mbqm(R·h + r')) [+ mbqm(p ⊙ c)] ), each
  partial sum saturated to int16 as the accumulating kernel does; b' = b − zx·ΣW and
  r' = −zh·ΣR are folded offline (int32, wrapping). Pre-activations are Q3.12.
- act: gemmlowp's fixed-point logistic / tanh on int16 (Q3.12 -> Q0.15), rnnq.numerics.gemmlowp.
- c = sat16(wrap16(rdbpot(f·c, 15)) + wrap16(rdbpot(i·g, 30 + k))), cell scale 2^k; optional
  clip to ±trunc(clip / 2^k).
- h = sat8(mbqm(o · tanh_{15+k}(c)) + hidden_zp), the output gate seeing the new c.

Multipliers are derived with LiteRT's float32 arithmetic (`effective_scales`), because a one-ulp
difference in a scale changes outputs.
"""

from __future__ import annotations

import numpy as np

from rnnq.ir.tgraph import LSTM_B0 as B0
from rnnq.ir.tgraph import LSTM_C_STATE as C_STATE
from rnnq.ir.tgraph import LSTM_GATES as GATES
from rnnq.ir.tgraph import LSTM_H_STATE as H_STATE
from rnnq.ir.tgraph import LSTM_P0 as P0
from rnnq.ir.tgraph import LSTM_PEEPHOLES as PEEP
from rnnq.ir.tgraph import LSTM_R0 as R0
from rnnq.ir.tgraph import LSTM_W0 as W0
from rnnq.ir.tgraph import LSTM_X as X
from rnnq.ir.tgraph import TOp
from rnnq.numerics import round_half_away
from rnnq.numerics.gemmlowp import (
    f32,
    mbqm,
    quantize_multiplier,
    rdbpot,
    sigmoid_q3_12,
    tanh_q,
    wrap16,
    wrap32,
)
from rnnq.sim.litert.arith import matmul64
from rnnq.sim.litert.context import Ctx

# --- parameters as LiteRT derives them ------------------------------------------------------


def checked_log2(x: float) -> int | None:
    """LiteRT's CheckedLog2 in float32: the exponent of a power-of-two scale, else None."""
    lg = np.float32(np.log(np.float32(x))) * np.float32(1.0 / np.float32(np.log(np.float32(2))))
    r = float(round_half_away(float(lg)))
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


def lstm_int8x8_16(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    """The integer 8x8->16 kernel over all steps and rows; writes h and c back to ctx.state."""
    t_of = ctx.tensor
    xt, hst, cst = t_of(op.inputs[X]), t_of(op.inputs[H_STATE]), t_of(op.inputs[C_STATE])
    hid = t_of(op.intermediates[4])
    cell_exp = checked_log2(float(cst.scales()[0]))  # a power of two (constraints)
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
        c = _sat(wrap16(rdbpot(fg * c, 15)) + wrap16(rdbpot(ig * gg, 30 + cell_exp)), 16)
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


#: float32 in and out; tanh and exp in float64 (numpy's float32 ones differ by CPU)
_FLOAT_ACT = {0: lambda v: v, 1: lambda v: np.maximum(v, 0), 2: lambda v: np.clip(v, -1, 1),
              3: lambda v: np.clip(v, 0, 6),
              4: lambda v: np.tanh(v.astype(np.float64)).astype(np.float32),
              6: lambda v: (1.0 / (1.0 + np.exp(-v.astype(np.float64)))).astype(np.float32)}


def lstm_float(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    """The float32 LSTM (gates i, f, c, o; the fused activation on the cell gate and output).

    With ctx.taps, records every step's cell state under the cell-state tensor (calibration
    reads its range there) and the hidden states under the output-state tensor."""
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
        v = (b[k] + matmul64(xs, w[k]) + matmul64(h, r[k])).astype(f)
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

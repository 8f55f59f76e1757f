"""Layout operators (they move int8 codes or floats without arithmetic, so one evaluator serves
both the integer and the float table) and the QUANTIZE/DEQUANTIZE conversions.

Axes are positions in the declared (per-sequence) shape. Arrays are batch-folded (dim 0 is N
times the declared dim 0), so each evaluator views them as (N, *declared shape), works on
axis + 1 and folds the result back.

What LiteRT's Prepare requires of these ops (int8 CONCATENATION, PACK and UNPACK do not
requantise; CONCATENATION takes no fused activation) is checked in `constraints`, before any
kernel runs.
"""

from __future__ import annotations

import numpy as np

from rnnq.ir.tgraph import TOp
from rnnq.numerics import round_half_away
from rnnq.numerics.gemmlowp import mbqm, mbqm_neon, quantize_multiplier, round_half_even
from rnnq.sim.litert.context import Ctx, qparams, to_int8


def _unfold(ctx: Ctx, index: int, arr: np.ndarray) -> np.ndarray:
    t = ctx.tensor(index)
    if t.data is not None:
        return np.broadcast_to(np.asarray(arr).reshape((1, *t.shape)), (ctx.n, *t.shape))
    return np.asarray(arr).reshape((ctx.n, *t.shape))


def _fold(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y.reshape((-1, *y.shape[2:])))


def _axis(op: TOp, key: str, rank: int) -> int:
    return int(op.options.get(key, 0)) % max(rank, 1)


def concatenation(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    rank = len(ctx.tensor(op.inputs[0]).shape)
    axis = _axis(op, "Axis", rank)
    parts = [_unfold(ctx, i, a) for i, a in zip(op.inputs, args, strict=True)]
    return [_fold(np.concatenate(parts, axis=axis + 1))]


def split(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    x = _unfold(ctx, op.inputs[1], args[1])
    axis = int(np.asarray(args[0]).reshape(-1)[0]) % (x.ndim - 1)
    count = int(op.options.get("NumSplits", len(op.outputs)))
    return [_fold(p) for p in np.split(x, count, axis=axis + 1)]


def unpack(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    x = _unfold(ctx, op.inputs[0], args[0])
    axis = _axis(op, "Axis", x.ndim - 1)
    parts = np.moveaxis(x, axis + 1, 1)
    return [_fold(parts[:, k]) if parts.ndim > 2 else parts[:, k].copy()
            for k in range(parts.shape[1])]


def pack(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    parts = [_unfold(ctx, i, a) for i, a in zip(op.inputs, args, strict=True)]
    axis = _axis(op, "Axis", parts[0].ndim)
    return [_fold(np.stack(parts, axis=axis + 1))]


def pad(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    """PAD without constant_values: LiteRT pads int8 with the output's zero point (its Prepare
    requires the input's quantisation), float with 0. Padding dim 0 is not modelled."""
    x = _unfold(ctx, op.inputs[0], args[0])
    pads = np.asarray(args[1], np.int64).reshape(-1, 2)
    fill = qparams(ctx, op.outputs[0])[1] if x.dtype == np.int8 else 0
    width = [(0, 0), *[(int(a), int(b)) for a, b in pads[1:]]]
    return [_fold(np.pad(x, [(0, 0), *width], constant_values=fill))]


def reshape(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    out = tuple(ctx.tensor(op.outputs[0]).shape)
    return [np.ascontiguousarray(args[0]).reshape((-1, *out[1:]) if out else ())]


def reverse_v2(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    x = _unfold(ctx, op.inputs[0], args[0])
    axes = tuple(int(a) % (x.ndim - 1) + 1 for a in np.asarray(args[1]).reshape(-1))
    return [_fold(np.flip(x, axis=axes))]


def strided_slice(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    """Begin/end masks, negative indices and strides, shrink_axis_mask; no ellipsis or
    new-axis masks (the lowering does not emit them)."""
    if op.options.get("EllipsisMask", 0) or op.options.get("NewAxisMask", 0):
        raise NotImplementedError("STRIDED_SLICE with ellipsis/new-axis masks")
    x = _unfold(ctx, op.inputs[0], args[0])
    begin, end, strides = (np.asarray(a).reshape(-1) for a in args[1:4])
    bmask = int(op.options.get("BeginMask", 0))
    emask = int(op.options.get("EndMask", 0))
    smask = int(op.options.get("ShrinkAxisMask", 0))
    index: list = [slice(None)]
    for d in range(x.ndim - 1):
        if d >= len(begin):
            index.append(slice(None))
            continue
        b, e, s = int(begin[d]), int(end[d]), int(strides[d])
        if smask >> d & 1:
            index.append(b)
            continue
        index.append(slice(None if bmask >> d & 1 else b, None if emask >> d & 1 else e, s))
    y = x[tuple(index)]
    out = tuple(ctx.tensor(op.outputs[0]).shape)
    return [np.ascontiguousarray(y).reshape((-1, *out[1:]) if out else ())]


def _per_sequence_mask(ctx: Ctx, x: np.ndarray, block: int) -> np.ndarray:
    """Elements of each invoke's flat array that a SIMD loop of `block` lanes handles."""
    per = x.size // ctx.n
    return np.tile(np.arange(per) < per - per % block, ctx.n).reshape(x.shape)


# --------------------------------------------------------------------------- (DE)QUANTIZE

def quantize(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    """float32 -> int8 (NEON loop: multiply by a float32 reciprocal, round half to even; tail:
    divide in double, round half away) or int8 -> int8 requantisation (NEON loop: `mbqm_neon`;
    tail: `mbqm`)."""
    x = args[0]
    s_out, z_out = qparams(ctx, op.outputs[0])
    if x.dtype == np.float32:
        vec = _per_sequence_mask(ctx, x, 8)
        recip = np.float32(1.0 / float(s_out))
        v = round_half_even((x * recip).astype(np.float32).astype(np.float64))
        t = x.astype(np.float64) / float(s_out)
        t = round_half_away(t)
        v, t = (np.clip(a, -2**31, 2**31 - 1).astype(np.int64) for a in (v, t))
        return [to_int8(np.where(vec, v, t) + z_out)]
    s_in, z_in = qparams(ctx, op.inputs[0])
    m, e = quantize_multiplier(float(s_in) / float(s_out))
    d = x.astype(np.int64) - z_in
    vec = _per_sequence_mask(ctx, x, 16)
    return [to_int8(np.where(vec, mbqm_neon(d, m, e), mbqm(d, m, e)) + z_out)]


def dequantize(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    """int8 -> float32. NEON loop (groups of 8): float32(q)*s + float32(-zp*s), each step
    rounded to float32 (no FMA on x86); tail: (q - zp) * s in double, then rounded once."""
    s, z = qparams(ctx, op.inputs[0])
    x = args[0]
    vec = _per_sequence_mask(ctx, x, 8)
    zs = np.float32(-z * np.float64(s))
    v = (x.astype(np.float32) * s).astype(np.float32) + zs
    t = ((x.astype(np.float64) - z) * np.float64(s)).astype(np.float32)
    return [np.where(vec, v.astype(np.float32), t)]


def passthrough_float(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    """QUANTIZE / DEQUANTIZE in a float graph: float tensors pass through unchanged."""
    return [args[0].astype(np.float32)]

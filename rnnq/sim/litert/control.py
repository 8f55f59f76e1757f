"""Indexing and control flow: GATHER, DYNAMIC_UPDATE_SLICE, WHILE (with LESS and the int32
ADD/MUL of its counter), and RELU at one quantisation. None of them requantises: inputs and
outputs share one quantisation, so the integer and float evaluators are mostly the same
function. int32 and bool tensors (indices, counters, conditions) are never batch-folded."""

from __future__ import annotations

import numpy as np

from rnnq.ir.tgraph import TOp
from rnnq.numerics.gemmlowp import wrap32
from rnnq.sim.litert.context import Ctx, Kernel, folded


def gather(ctx: Ctx, op: TOp, args: list) -> list:
    x, idx = args
    axis = int(op.options.get("Axis", 0))
    if axis <= 0 or int(op.options.get("BatchDims", 0)) != 0:
        raise NotImplementedError("GATHER along dim 0 or with batch_dims")
    idx = np.asarray(idx, dtype=np.int64)
    if np.any(idx < 0) or np.any(idx >= x.shape[axis]):
        raise ValueError(f"GATHER index out of range for axis size {x.shape[axis]}")
    return [np.take(x, idx, axis=axis)]


def dynamic_update_slice(ctx: Ctx, op: TOp, args: list) -> list:
    """x with `update` written at `start` (clamped so that it fits, as LiteRT does); the
    start along dim 0 is ignored (the update spans the folded sequences)."""
    x, upd, start = args
    y = x.copy()
    idx = [slice(None)]
    for d in range(1, x.ndim):
        s = int(np.clip(int(start[d]), 0, x.shape[d] - upd.shape[d]))
        idx.append(slice(s, s + upd.shape[d]))
    y[tuple(idx)] = upd
    return [y]


def relu(ctx: Ctx, op: TOp, args: list) -> list:
    """int8 RELU with equal input and output quantisation (the quantiser ties them): LiteRT
    requantises by the identity multiplier (exact) and clamps below at the zero point."""
    t_out = ctx.tensor(op.outputs[0])
    return [np.maximum(args[0], np.int8(int(t_out.zero_point)))]


def relu_float(ctx: Ctx, op: TOp, args: list) -> list:
    return [np.maximum(args[0], 0.0)]


def less(ctx: Ctx, op: TOp, args: list) -> list:
    return [np.less(args[0], args[1])]


def int32_or(quantised: Kernel, fn) -> Kernel:
    """ADD / MUL: plain int32 arithmetic (wrapping) on int32 operands (a loop counter), else
    the quantised (or float) kernel."""
    def dispatch(ctx: Ctx, op: TOp, args: list) -> list:
        if args[0].dtype == np.int32:
            return [wrap32(fn(args[0].astype(np.int64), args[1])).astype(np.int32)]
        return quantised(ctx, op, args)
    return dispatch


def while_loop(ctx: Ctx, op: TOp, args: list) -> list:
    """Run the body subgraph while the cond subgraph returns true (subgraph k of the file is
    graph.subgraphs[k - 1])."""
    cond = ctx.graph.subgraphs[int(op.options["CondSubgraphIndex"]) - 1]
    body = ctx.graph.subgraphs[int(op.options["BodySubgraphIndex"]) - 1]
    vals = list(args)
    for k, i in enumerate(body.inputs):  # constant initial values (h0, Y0) are not yet folded
        t = body.tensors[i]
        if folded(t) and ctx.n > 1 and vals[k].shape[0] == t.shape[0]:
            vals[k] = np.repeat(vals[k], ctx.n, axis=0)
    while bool(np.asarray(ctx.run(cond, vals, n=ctx.n, float_mode=ctx.float_mode)[0]).ravel()[0]):
        vals = ctx.run(body, vals, n=ctx.n, float_mode=ctx.float_mode)
    return vals

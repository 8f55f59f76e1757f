"""Indexing and control flow: GATHER, DYNAMIC_UPDATE_SLICE, WHILE (with LESS and the int32
ADD/MUL of its counter). None of them requantises: inputs and outputs share one
quantisation, so the integer and float evaluators are the same copy. int32 and bool tensors
(indices, counters, conditions) are never batch-folded (sim.run)."""

from __future__ import annotations

import numpy as np

from rnnq.numerics.gemmlowp import wrap32
from rnnq.tflite import kernels  # noqa: F401  (registers the ADD/MUL wrapped below)
from rnnq.tflite.sim import FLOAT_KERNELS, KERNELS, folded, kernel, kernel_both, run


@kernel_both("GATHER")
def gather(ctx, op, args) -> list:
    x, idx = args
    axis = int(op.options.get("Axis", 0))
    if axis <= 0 or int(op.options.get("BatchDims", 0)) != 0:
        raise NotImplementedError("GATHER along dim 0 or with batch_dims")
    idx = np.asarray(idx, dtype=np.int64)
    if np.any(idx < 0) or np.any(idx >= x.shape[axis]):
        raise ValueError(f"GATHER index out of range for axis size {x.shape[axis]}")
    return [np.take(x, idx, axis=axis)]


@kernel_both("DYNAMIC_UPDATE_SLICE")
def dynamic_update_slice(ctx, op, args) -> list:
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


@kernel("RELU")
def relu(ctx, op, args) -> list:
    """int8 RELU with equal input and output quantisation (the quantiser ties them): LiteRT
    requantises by the identity multiplier (exact) and clamps below at the zero point."""
    t_in, t_out = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    if (np.float32(t_in.scale) != np.float32(t_out.scale)
            or int(t_in.zero_point) != int(t_out.zero_point)):
        raise NotImplementedError("RELU between different quantisations")
    return [np.maximum(args[0], np.int8(int(t_out.zero_point)))]


kernel("RELU", float_version=True)(lambda ctx, op, args: [np.maximum(args[0], 0.0)])


@kernel_both("LESS")
def less(ctx, op, args) -> list:
    return [np.less(args[0], args[1])]


def _int32_or(kind: str, fn):
    """ADD / MUL: plain int32 arithmetic (wrapping) for counters, else the quantised kernel."""
    for table in (KERNELS, FLOAT_KERNELS):
        other = table[kind]

        def dispatch(ctx, op, args, other=other):
            if args[0].dtype == np.int32:
                return [wrap32(fn(args[0].astype(np.int64), args[1])).astype(np.int32)]
            return other(ctx, op, args)
        table[kind] = dispatch


_int32_or("ADD", np.add)
_int32_or("MUL", np.multiply)


@kernel_both("WHILE")
def while_loop(ctx, op, args) -> list:
    """Run the body subgraph while the cond subgraph returns true (subgraph k of the file is
    graph.subgraphs[k - 1])."""
    cond = ctx.graph.subgraphs[int(op.options["CondSubgraphIndex"]) - 1]
    body = ctx.graph.subgraphs[int(op.options["BodySubgraphIndex"]) - 1]
    vals = list(args)
    for k, i in enumerate(body.inputs):  # constant initial values (h0, Y0) are not yet folded
        t = body.tensors[i]
        if folded(t) and ctx.n > 1 and vals[k].shape[0] == t.shape[0]:
            vals[k] = np.repeat(vals[k], ctx.n, axis=0)
    while bool(np.asarray(run(cond, vals, n=ctx.n, float_mode=ctx.float_mode)[0]).ravel()[0]):
        vals = run(body, vals, n=ctx.n, float_mode=ctx.float_mode)
    return vals

"""One handler per supported ONNX op: each lowers one node into the float IR."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx

from rnnq.frontend.onnx.context import (
    Ctx,
    attrs_of,
    emit_take,
    node_error,
    norm_axis,
    opset_of,
    reshape_to,
    step_axis,
    timed,
)
from rnnq.frontend.onnx.conv import batch_norm, conv, pad, reduce_features
from rnnq.frontend.onnx.recurrent import ONNX_RECURRENT, recurrent
from rnnq.ir import Tensor


def _identity(ctx: Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    reshape_to(ctx, node, x, ctx.full_shape(x), node.output[0])


def _reshape(ctx: Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    full = ctx.full_shape(x)
    target = [int(v) for v in ctx.const(node, node.input[1], "the shape input")]
    allowzero = attrs_of(node).get("allowzero", 0)
    out = []
    for i, d in enumerate(target):
        out.append(full[i] if d == 0 and not allowzero else d)
    if out.count(-1) > 1:
        raise node_error(node, "more than one -1 in the target shape")
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        out[out.index(-1)] = int(np.prod(full, dtype=np.int64)) // max(known, 1)
    if int(np.prod(out, dtype=np.int64)) != int(np.prod(full, dtype=np.int64)):
        raise node_error(node, f"cannot reshape {full} to {target}")
    reshape_to(ctx, node, x, out, node.output[0])


def _flatten(ctx: Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    full = ctx.full_shape(x)
    axis = norm_axis(node, attrs_of(node).get("axis", 1), len(full) + 1)
    out = [int(np.prod(full[:axis], dtype=np.int64)), int(np.prod(full[axis:], dtype=np.int64))]
    reshape_to(ctx, node, x, out, node.output[0])


def _axes(ctx: Ctx, node) -> list[int] | None:
    if len(node.input) > 1 and node.input[1]:
        return [int(a) for a in ctx.const(node, node.input[1], "axes")]
    a = attrs_of(node).get("axes")
    return None if a is None else [int(v) for v in a]


def _squeeze(ctx: Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    full = ctx.full_shape(x)
    axes = _axes(ctx, node)
    if axes is None:
        axes = [i for i, d in enumerate(full) if d == 1]
    axes = [norm_axis(node, a, len(full)) for a in axes]
    for a in axes:
        if full[a] != 1:
            raise node_error(node, f"cannot squeeze axis {a} of size {full[a]}")
    reshape_to(ctx, node, x, [d for i, d in enumerate(full) if i not in axes], node.output[0])


def _unsqueeze(ctx: Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    full = ctx.full_shape(x)
    axes = _axes(ctx, node) or []
    rank = len(full) + len(axes)
    axes = sorted(norm_axis(node, a, rank) for a in axes)
    out = list(full)
    for a in axes:
        out.insert(a, 1)
    reshape_to(ctx, node, x, out, node.output[0])


def _transpose(ctx: Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    rank = len(ctx.full_shape(x))
    perm = [int(p) for p in attrs_of(node).get("perm", list(range(rank))[::-1])]
    if timed(x):
        ta = perm.index(x.time_axis)
        step = [p - (p > x.time_axis) for p in perm if p != x.time_axis]
        emit_take(ctx, node, x, lambda a: a.transpose(step), node.output[0], ta)
    else:
        emit_take(ctx, node, x, lambda a: a.transpose(perm), node.output[0], None)


def _last(ctx: Ctx, node, x: Tensor, keep_dim: bool, out: str, first: bool = False) -> None:
    shape = list(x.shape)
    if keep_dim:
        shape.insert(x.time_axis, 1)
    ctx.add_act(out, shape, "final")
    ctx.emit("first" if first else "last", [x.name], [out], node)


def _embedding(ctx: Ctx, node) -> None:
    """Gather rows of a constant table by activation indices: an embedding."""
    table = ctx.consts[node.input[0]].astype(np.float64)
    ids = ctx.act(node, node.input[1])
    if attrs_of(node).get("axis", 0) != 0 or table.ndim != 2:
        raise node_error(node, "only embeddings (axis 0 of a 2-D constant table) are supported")
    if ids.dtype not in ("int64", "int32"):
        raise node_error(node, "embedding indices must come from an integer model input")
    tname = ctx.add_const(table, node.output[0] + "_table")
    ctx.add_act(node.output[0], (*ids.shape, table.shape[1]), ids.kind, ids.time_axis)
    ctx.emit("embed", [ids.name, tname], [node.output[0]], node)


def _gather(ctx: Ctx, node) -> None:
    if ctx.is_const(node.input[0]):
        _embedding(ctx, node)
        return
    x = ctx.act(node, node.input[0])
    idx = ctx.const(node, node.input[1], "the indices").astype(np.int64)
    full = ctx.full_shape(x)
    axis = norm_axis(node, attrs_of(node).get("axis", 0), len(full))
    if timed(x) and axis == x.time_axis:
        step = int(idx.ravel()[0]) % ctx.T if idx.size == 1 else -1
        if step not in (0, ctx.T - 1):
            raise node_error(node, "gathers timesteps other than the first or last one")
        _last(ctx, node, x, idx.ndim == 1, node.output[0], first=step == 0 and ctx.T > 1)
        return
    sa = step_axis(x, axis)
    idx = np.where(idx < 0, idx + full[axis], idx)
    emit_take(ctx, node, x, lambda a: np.take(a, idx, axis=sa), node.output[0], _gather_ta(x, axis, idx))


def _gather_ta(x: Tensor, axis: int, idx: np.ndarray) -> int | None:
    if not timed(x):
        return None
    return x.time_axis if axis > x.time_axis else x.time_axis + idx.ndim - 1


def _unrolled_hint(ctx: Ctx) -> str:
    """A graph that reads single timesteps and has no recurrent op: most likely an exporter
    unrolled the recurrence (torch.onnx.export's default, dynamo, writes nn.RNN as per-step
    Slice/MatMul/Tanh)."""
    if any(n.op_type in ("LSTM", "GRU", "RNN", "Scan", "Loop") for n in ctx.model.graph.node):
        return ""
    return ("; the graph has no LSTM/GRU/RNN node, so its exporter unrolled the recurrence "
            "into per-step ops (torch.onnx.export's default does so for nn.RNN): export with "
            "torch.onnx.export(..., dynamo=False)")


def _slice(ctx: Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    full = ctx.full_shape(x)
    starts = ctx.const(node, node.input[1], "starts").astype(np.int64)
    ends = ctx.const(node, node.input[2], "ends").astype(np.int64)
    n_in = len(node.input)
    axes = (ctx.const(node, node.input[3], "axes").astype(np.int64)
            if n_in > 3 and node.input[3] else np.arange(len(starts)))
    steps = (ctx.const(node, node.input[4], "steps").astype(np.int64)
             if n_in > 4 and node.input[4] else np.ones(len(starts), np.int64))
    # explicit index lists per axis (a negative step running to the start has no slice form)
    sel = [np.arange(d) for d in full]
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = norm_axis(node, int(a), len(full))
        if st == 0:
            raise node_error(node, "step 0")
        sel[a] = np.arange(*slice(int(s), int(e), int(st)).indices(full[a]))
    cur = x
    if timed(x):
        ts = sel[x.time_axis].tolist()
        if ts != list(range(ctx.T)):
            if ts not in ([ctx.T - 1], [0]):
                raise node_error(node, "slices timesteps other than the first or last one"
                                 + _unrolled_hint(ctx))
            tmp = ctx.tmp(node.output[0])
            _last(ctx, node, x, True, tmp, first=ts == [0] and ctx.T > 1)
            cur = ctx.graph.tensors[tmp]
            sel[x.time_axis] = np.arange(1)  # the kept size-1 axis
        else:
            del sel[x.time_axis]
    ta = x.time_axis if cur.kind == "seq" else None

    def pick(a: np.ndarray) -> np.ndarray:
        for axis, idx in enumerate(sel):
            a = np.take(a, idx, axis=axis)
        return a

    emit_take(ctx, node, cur, pick, node.output[0], ta)


def _unary(op: str, **attrs):
    def handler(ctx: Ctx, node) -> None:
        x = ctx.act(node, node.input[0])
        ctx.add_act(node.output[0], x.shape, x.kind, x.time_axis)
        ctx.emit(op, [x.name], [node.output[0]], node, **attrs)

    return handler


def _leaky_relu(ctx: Ctx, node) -> None:
    _unary("leaky_relu", alpha=float(attrs_of(node).get("alpha", 0.01)))(ctx, node)


def _prelu(ctx: Ctx, node) -> None:
    """PRelu with one slope: a leaky ReLU; with a slope per element (channel): relu(x) minus
    slope * relu(-x), from ops rnnq has."""
    slope = ctx.const(node, node.input[1], "the slope").astype(np.float64)
    if np.all(slope == slope.ravel()[0]):
        _unary("leaky_relu", alpha=float(slope.ravel()[0]))(ctx, node)
        return
    x = ctx.act(node, node.input[0])
    full = ctx.full_shape(x)
    try:
        s = np.broadcast_to(slope, full) if slope.ndim <= len(full) else None
    except ValueError:
        s = None
    if s is None:
        raise node_error(node, f"slope {list(slope.shape)} does not broadcast to {full}")
    if timed(x):
        if not np.all(s == np.take(s, [0], axis=x.time_axis)):
            raise node_error(node, "slope varies along the time axis")
        s = np.take(s, 0, axis=x.time_axis)
    out = node.output[0]
    pos, neg, nrelu, scaled = (ctx.tmp(out + k) for k in ("_pos", "_neg", "_nrelu", "_scaled"))
    for name in (pos, neg, nrelu, scaled):
        ctx.add_act(name, x.shape, x.kind, x.time_axis)
    ctx.emit("relu", [x.name], [pos], node)
    ctx.emit("mul", [x.name, ctx.add_const(np.full(x.shape, -1.0), neg + "_c")], [neg], node)
    ctx.emit("relu", [neg], [nrelu], node)
    ctx.emit("mul", [nrelu, ctx.add_const(np.ascontiguousarray(-s), scaled + "_c")], [scaled], node)
    ctx.add_act(out, x.shape, x.kind, x.time_axis)
    ctx.emit("add", [pos, scaled], [out], node)


def _elu(ctx: Ctx, node) -> None:
    _unary("elu", alpha=float(attrs_of(node).get("alpha", 1.0)))(ctx, node)


def _hard_sigmoid(ctx: Ctx, node) -> None:
    at = attrs_of(node)
    _unary("hard_sigmoid", alpha=float(at.get("alpha", 0.2)),
           beta=float(at.get("beta", 0.5)))(ctx, node)


def _clip(ctx: Ctx, node) -> None:
    """Clip: bounds as attributes (opset < 11) or constant inputs (absent = unbounded)."""
    at = attrs_of(node)
    bounds = [float(at.get("min", -np.inf)), float(at.get("max", np.inf))]
    for k in (1, 2):
        if len(node.input) > k and node.input[k]:
            v = ctx.const(node, node.input[k], ("min", "max")[k - 1]).astype(np.float64)
            if v.size != 1:
                raise node_error(node, f"{('min', 'max')[k - 1]} must be one value")
            bounds[k - 1] = float(v.ravel()[0])
    _unary("clip", lo=bounds[0], hi=bounds[1])(ctx, node)


def _neg(ctx: Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    ctx.add_act(node.output[0], x.shape, x.kind, x.time_axis)
    ctx.emit("mul", [x.name, ctx.add_const(np.full(x.shape, -1.0), node.output[0] + "_c")],
             [node.output[0]], node)


def _pow(ctx: Ctx, node) -> None:
    e = ctx.const(node, node.input[1], "the exponent").astype(np.float64)
    if e.size != 1 or float(e.ravel()[0]) not in (0.5, 1.0, 2.0):
        raise node_error(node, f"exponent {e.ravel().tolist()}; rnnq supports 2 (a square), "
                         "0.5 (a square root) and 1")
    k = float(e.ravel()[0])
    if k == 1.0:
        _identity(ctx, node)
    else:
        _unary("square" if k == 2.0 else "sqrt")(ctx, node)


_FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}


def _cast(ctx: Ctx, node) -> None:
    """A Cast between float types changes nothing rnnq models (it computes in its own
    precision); any other cast of an activation would change the values."""
    to = int(attrs_of(node).get("to", 0))
    x = ctx.act(node, node.input[0])
    if to in _FLOATS and x.dtype != "int64":
        _identity(ctx, node)
        return
    if to == onnx.TensorProto.INT64 and x.dtype == "int64":
        _identity(ctx, node)
        return
    name = onnx.TensorProto.DataType.Name(to) if to in onnx.TensorProto.DataType.values() \
        else str(to)
    raise node_error(node, f"cast of an activation to {name} changes its values; rnnq supports "
                     "casts between float types")


def _softmax(ctx: Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    full = ctx.full_shape(x)
    opset = opset_of(ctx.model)
    axis = norm_axis(node, attrs_of(node).get("axis", -1 if opset >= 13 else 1), len(full))
    last = len(full) - 1
    if opset < 13 and axis != last and all(d == 1 for d in full[axis:-1]):
        axis = last
    if axis != last or (x.kind == "seq" and x.time_axis == last):
        raise node_error(node, f"softmax over axis {axis} of {full}; rnnq supports the last, non-time axis")
    _unary("softmax")(ctx, node)


def _binary(op: str):
    def handler(ctx: Ctx, node) -> None:
        a_name, b_name = node.input[0], node.input[1]
        out = node.output[0]
        if ctx.is_const(a_name) and op in ("sub", "div"):
            _constant_minus_or_over(ctx, node, op)
            return
        if ctx.is_const(a_name):
            a_name, b_name = b_name, a_name
        a = ctx.act(node, a_name)
        if ctx.is_const(b_name):
            c = ctx.consts[b_name].astype(np.float64)
            if op == "div":
                if np.any(c == 0):
                    raise node_error(node, "division by a constant containing zero")
                c = 1.0 / c
            full = ctx.full_shape(a)
            try:
                bshape = np.broadcast_shapes(tuple(full), c.shape)
            except ValueError:
                raise node_error(node, f"cannot broadcast {list(c.shape)} to {full}") from None
            if list(bshape) != full:
                raise node_error(node, f"constant {list(c.shape)} enlarges the activation {full}")
            c = c.reshape((1,) * (len(full) - c.ndim) + c.shape)
            if timed(a):
                if c.shape[a.time_axis] != 1:
                    raise node_error(node, "constant varies along the time axis")
                c = np.take(c, 0, axis=a.time_axis)
            c = np.broadcast_to(c, a.shape)
            b_const = ctx.add_const(c, out)
            ctx.add_act(out, a.shape, a.kind, a.time_axis)
            ctx.emit("mul" if op == "div" else op, [a.name, b_const], [out], node)
            return
        b = ctx.act(node, b_name)
        kind = op
        if op == "div":  # a * (1 / b)
            b = _unary_to(ctx, node, "reciprocal", b, out + "_reciprocal")
            kind = "mul"
        if a.kind != b.kind or a.time_axis != b.time_axis:
            raise node_error(node, f"operands {ctx.full_shape(a)} and {ctx.full_shape(b)} differ "
                             "in timing (per step vs final, or time on another axis)")
        if ctx.full_shape(a) != ctx.full_shape(b):
            a, b = (_broadcast(ctx, node, v, a, b) for v in (a, b))
        ctx.add_act(out, a.shape, a.kind, a.time_axis)
        ctx.emit(kind, [a.name, b.name], [out], node)

    return handler


def _unary_to(ctx: Ctx, node, op: str, x: Tensor, name: str) -> Tensor:
    """op(x) into a new activation `name` (a step of a decomposed node)."""
    name = ctx.tmp(name)
    ctx.add_act(name, x.shape, x.kind, x.time_axis)
    ctx.emit(op, [x.name], [name], node)
    return ctx.act(node, name)


def _constant_minus_or_over(ctx: Ctx, node, op: str) -> None:
    """c - x as (-1 * x) + c, c / x as (1 / x) * c: the second step through the constant path
    of Add/Mul (a node whose inputs are the new activation and the constant)."""
    x = ctx.act(node, node.input[1])
    if op == "sub":
        mid = ctx.tmp(node.output[0] + "_neg")
        ctx.add_act(mid, x.shape, x.kind, x.time_axis)
        ctx.emit("mul", [x.name, ctx.add_const(np.full(x.shape, -1.0), mid + "_c")], [mid], node)
    else:
        mid = _unary_to(ctx, node, "reciprocal", x, node.output[0] + "_reciprocal").name
    step = onnx.helper.make_node("Add" if op == "sub" else "Mul", [mid, node.input[0]],
                                 list(node.output), name=node.name)
    _binary("add" if op == "sub" else "mul")(ctx, step)


def _broadcast(ctx: Ctx, node, v: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """v (a or b) broadcast to the shape of a op b, by an index map when it must grow."""
    fa, fb = ctx.full_shape(a), ctx.full_shape(b)
    try:
        full = list(np.broadcast_shapes(tuple(fa), tuple(fb)))
    except ValueError:
        raise node_error(node, f"operands {fa} and {fb} do not broadcast") from None
    if timed(a) and (len(fa) != len(full) or len(fb) != len(full)):
        raise node_error(node, f"operands {fa} and {fb} of different ranks around the time axis")
    if ctx.full_shape(v) == full:
        return v
    step = [d for i, d in enumerate(full) if not (timed(v) and i == v.time_axis)]
    name = ctx.tmp(f"{node.output[0]}_{v.name}_b")
    emit_take(ctx, node, v, lambda i: np.broadcast_to(
        i.reshape((1,) * (len(step) - i.ndim) + i.shape), step), name, v.time_axis)
    return ctx.graph.tensors[name]


def _dense(ctx: Ctx, node, x: Tensor, w_nk: np.ndarray, b_n: np.ndarray, out: str) -> None:
    full = ctx.full_shape(x)
    if x.kind == "seq" and x.time_axis == len(full) - 1:
        raise node_error(node, "contracts over the time axis")
    if x.shape[-1] != w_nk.shape[1]:
        raise node_error(node, f"inner dimensions differ: {x.shape[-1]} vs {w_nk.shape[1]}")
    wn, bn = ctx.add_const(w_nk, out + "_W"), ctx.add_const(b_n, out + "_b")
    ctx.add_act(out, x.shape[:-1] + (w_nk.shape[0],), x.kind, x.time_axis)
    ctx.emit("dense", [x.name, wn, bn], [out], node)


def _gemm(ctx: Ctx, node) -> None:
    at = attrs_of(node)
    x = ctx.act(node, node.input[0])
    if at.get("transA", 0):
        raise node_error(node, "transA=1 is not supported")
    if len(ctx.full_shape(x)) != 2:
        raise node_error(node, "input A must be 2-D")
    bm = ctx.const(node, node.input[1], "input B (weights)").astype(np.float64)
    w = (bm if at.get("transB", 0) else bm.T) * at.get("alpha", 1.0)
    n = w.shape[0]
    b = np.zeros(n)
    if len(node.input) > 2 and node.input[2]:
        c = ctx.const(node, node.input[2], "input C (bias)").astype(np.float64)
        if c.ndim == 2 and c.shape[0] != 1:
            raise node_error(node, "bias C with more than one row is not supported")
        b = np.broadcast_to(c.reshape(-1) if c.ndim else c, (n,)) * at.get("beta", 1.0)
    _dense(ctx, node, x, w, b, node.output[0])


def _matmul(ctx: Ctx, node) -> None:
    if ctx.is_const(node.input[0]):
        raise node_error(node, "constant @ activation is not supported (expected activation @ weights)")
    x = ctx.act(node, node.input[0])
    w = ctx.const(node, node.input[1], "the second input (weights)")
    if w.ndim != 2:
        raise node_error(node, f"weights of rank {w.ndim}; rnnq supports 2-D weights")
    _dense(ctx, node, x, w.T.astype(np.float64), np.zeros(w.shape[1]), node.output[0])


def _concat(ctx: Ctx, node) -> None:
    xs = [ctx.act(node, i) for i in node.input if i]
    if any(ctx.is_const(i) for i in node.input if i):
        raise node_error(node, "concatenating constants with activations is not supported")
    full = ctx.full_shape(xs[0])
    axis = norm_axis(node, attrs_of(node).get("axis", 0), len(full))
    k0 = (xs[0].kind, xs[0].time_axis)
    if any((x.kind, x.time_axis) != k0 for x in xs):
        raise node_error(node, "inputs differ in timing (per-step vs final)")
    if xs[0].kind == "seq" and axis == xs[0].time_axis:
        raise node_error(node, "concatenation along the time axis is not supported")
    sa = step_axis(xs[0], axis)
    shapes = [list(x.shape) for x in xs]
    for s_ in shapes:
        if s_[:sa] + s_[sa + 1 :] != shapes[0][:sa] + shapes[0][sa + 1 :]:
            raise node_error(node, f"shapes {shapes} differ off the concatenation axis")
    out = list(shapes[0])
    out[sa] = sum(s_[sa] for s_ in shapes)
    ctx.add_act(node.output[0], out, xs[0].kind, xs[0].time_axis)
    ctx.emit("concat", [x.name for x in xs], [node.output[0]], node, axis=sa)


def _split(ctx: Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    at = attrs_of(node)
    full = ctx.full_shape(x)
    axis = norm_axis(node, at.get("axis", 0), len(full))
    if x.kind == "seq" and axis == x.time_axis:
        raise node_error(node, "splitting the time axis is not supported")
    n_out = len(node.output)
    if len(node.input) > 1 and node.input[1]:
        sizes = [int(v) for v in ctx.const(node, node.input[1], "split")]
    elif "split" in at:
        sizes = [int(v) for v in at["split"]]
    else:
        k = -(-full[axis] // n_out)
        sizes = [min(k, full[axis] - i * k) for i in range(n_out)]
    if sum(sizes) != full[axis] or len(sizes) != n_out:
        raise node_error(node, f"split sizes {sizes} do not cover axis {axis} of {full}")
    sa = step_axis(x, axis)
    start = 0
    for name, size in zip(node.output, sizes):
        sel = np.arange(start, start + size)
        start += size
        if name:
            emit_take(ctx, node, x, lambda a, sel=sel: np.take(a, sel, axis=sa), name, x.time_axis)


def _reduce(mean: bool):
    return lambda ctx, node: _reduce_mean(ctx, node, mean)


def _reduce_mean(ctx: Ctx, node, mean: bool) -> None:
    """Mean over the time axis (a running mean, streamable), or mean/sum over per-step axes."""
    x = ctx.act(node, node.input[0])
    at = attrs_of(node)
    full = ctx.full_shape(x)
    axes = (ctx.const(node, node.input[1], "axes").tolist()
            if len(node.input) > 1 and node.input[1] else at.get("axes"))
    if axes is None or len(axes) == 0:
        if at.get("noop_with_empty_axes", 0):
            _identity(ctx, node)
            return
        axes = list(range(len(full)))
    axes = sorted({norm_axis(node, int(a), len(full)) for a in axes})
    if not timed(x) or x.time_axis not in axes:
        reduce_features(ctx, node, x, axes, mean)
        return
    if not mean:
        raise node_error(node, "a sum over the time axis is not supported (a mean is)")
    if axes != [x.time_axis]:
        raise node_error(node, f"mean over axes {axes}; only the time axis {x.time_axis} is supported")
    shape = list(x.shape)
    if at.get("keepdims", 1):
        shape.insert(x.time_axis, 1)
    ctx.add_act(node.output[0], shape, "final")
    ctx.emit("mean_time", [x.name], [node.output[0]], node)


HANDLERS: dict[str, Callable[[Ctx, onnx.NodeProto], None]] = {
    **dict.fromkeys(ONNX_RECURRENT, recurrent), "Gemm": _gemm, "MatMul": _matmul,
    "Add": _binary("add"), "Sub": _binary("sub"), "Mul": _binary("mul"), "Div": _binary("div"),
    "Relu": _unary("relu"), "Sigmoid": _unary("sigmoid"), "Tanh": _unary("tanh"),
    "Softmax": _softmax, "Transpose": _transpose, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Reshape": _reshape, "Flatten": _flatten, "Slice": _slice, "Gather": _gather,
    "Identity": _identity, "Dropout": _identity, "Concat": _concat, "Split": _split,
    "ReduceMean": _reduce(True), "ReduceSum": _reduce(False), "Conv": conv, "Pad": pad,
    "BatchNormalization": batch_norm, "Cast": _cast, "Pow": _pow, "Sqrt": _unary("sqrt"),
    "LeakyRelu": _leaky_relu, "PRelu": _prelu, "Log": _unary("log"), "Exp": _unary("exp"),
    "Abs": _unary("abs"), "Neg": _neg, "Softplus": _unary("softplus"), "Elu": _elu,
    "HardSigmoid": _hard_sigmoid, "HardSwish": _unary("hard_swish"), "Clip": _clip,
    "Reciprocal": _unary("reciprocal"),
}
#: Every ONNX op rnnq imports: those with a handler, and those that only ever fold into
#: constants (a Shape of an activation folds too: its shape is known).
SUPPORTED_OPS: list[str] = sorted([*HANDLERS, "Constant", "Shape"])

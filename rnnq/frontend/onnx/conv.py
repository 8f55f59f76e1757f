"""Convolutional front ends: Conv, Pad, BatchNormalization and reductions over feature axes,
lowered onto ops rnnq already has, so that the integer simulator and the C (and their
exactness proofs) need nothing new but a zero-filling index map.

- `Pad` (constant 0, reflect, edge) and the im2col of a `Conv` are offline index maps (`take`;
  index -1 reads the real value 0, i.e. the tensor's zero point once quantised);
- a `Conv` is then one `dense` per group over every output position (int8 weights, one scale
  per output channel as any dense layer), its outputs concatenated and put back into ONNX's
  [N, C, *spatial] order by another index map;
- `BatchNormalization` (inference) is a per-channel `mul` and `add` by constants;
- `ReduceMean`/`ReduceSum` over feature axes are a `dense` with constant weights 1/n (or 1).

Convolutions and reductions run within one step: over a per-step tensor's feature axes, never
across time (a convolution over the time axis needs a history buffer rnnq does not keep yet).
"""

from __future__ import annotations

import itertools

import numpy as np

from rnnq.frontend.onnx.context import (
    Ctx,
    attrs_of,
    emit_take,
    node_error,
    reshape_to,
    timed,
)
from rnnq.ir import Tensor


def _step_layout(ctx: Ctx, node, x: Tensor) -> tuple[list[int], bool]:
    """x's per-step shape as ONNX's [N, C, *spatial] (a time axis on N counts as N = 1)."""
    full = ctx.full_shape(x)
    if not timed(x):
        return list(x.shape), False
    if x.time_axis != 0:
        raise node_error(node, f"input {full} carries time on axis {x.time_axis}; a "
                         "convolution over time (or channels) is not supported, only within "
                         "one step over the feature axes")
    return [1, *x.shape], True


def _padded_index(idx: np.ndarray, pads: list[int], mode: str) -> np.ndarray:
    """idx (any leading axes) padded on its trailing len(pads)//2 axes; constant pads are -1."""
    k = len(pads) // 2
    width = [(0, 0)] * (idx.ndim - k) + [(pads[i], pads[i + k]) for i in range(k)]
    if mode == "constant":
        return np.pad(idx, width, mode="constant", constant_values=-1)
    return np.pad(idx, width, mode={"reflect": "reflect", "edge": "edge"}[mode])


def pad(ctx: Ctx, node) -> None:
    """Pad with zeros, a reflection or the edge value, over per-step axes."""
    at = attrs_of(node)
    x = ctx.act(node, node.input[0])
    full = ctx.full_shape(x)
    mode = at.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in ("constant", "reflect", "edge"):
        raise node_error(node, f"mode {mode!r}; rnnq supports constant, reflect and edge")
    if len(node.input) > 1 and node.input[1]:
        pads = [int(v) for v in ctx.const(node, node.input[1], "pads")]
    else:
        pads = [int(v) for v in at.get("pads", [])]
    rank = len(full)
    axes = list(range(rank))
    if len(node.input) > 3 and node.input[3]:
        axes = [int(a) % rank for a in ctx.const(node, node.input[3], "axes")]
    if len(pads) != 2 * len(axes):
        raise node_error(node, f"{len(pads)} pads for {len(axes)} axes")
    if len(node.input) > 2 and node.input[2]:
        value = np.asarray(ctx.const(node, node.input[2], "constant_value"), np.float64)
        if mode == "constant" and np.any(value != 0):
            raise node_error(node, "constant padding with a value other than 0 is not supported")
    if any(p < 0 for p in pads):
        raise node_error(node, "negative pads (cropping) are not supported; use Slice")
    full_pads = [0] * (2 * rank)
    for i, a in enumerate(axes):
        full_pads[a], full_pads[a + rank] = pads[i], pads[i + len(axes)]
    if timed(x) and (full_pads[x.time_axis] or full_pads[x.time_axis + rank]):
        raise node_error(node, "padding the time axis is not supported")
    for a in range(rank):
        if mode == "reflect" and max(full_pads[a], full_pads[a + rank]) >= full[a]:
            raise node_error(node, f"reflect pad {full_pads[a]}/{full_pads[a + rank]} on axis "
                             f"{a} of size {full[a]}; it must be smaller than the axis")
    if timed(x):
        t = x.time_axis
        step_pads = ([p for i, p in enumerate(full_pads[:rank]) if i != t]
                     + [p for i, p in enumerate(full_pads[rank:]) if i != t])
    else:
        step_pads = full_pads
    emit_take(ctx, node, x, lambda a: _padded_index(a, step_pads, mode), node.output[0],
              x.time_axis)


def _conv_params(node, at: dict, w: np.ndarray, spatial: list[int]) -> tuple:
    nsp = w.ndim - 2
    kernel = [int(k) for k in at.get("kernel_shape", w.shape[2:])]
    if kernel != list(w.shape[2:]):
        raise node_error(node, f"kernel_shape {kernel} differs from the weights' {list(w.shape[2:])}")
    strides = [int(s) for s in at.get("strides", [1] * nsp)]
    dil = [int(d) for d in at.get("dilations", [1] * nsp)]
    auto = at.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", "VALID"):
        pads = [int(p) for p in at.get("pads", [0] * 2 * nsp)] if auto == "NOTSET" else [0] * 2 * nsp
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * 2 * nsp
        for i in range(nsp):
            out = -(-spatial[i] // strides[i])
            total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - spatial[i])
            lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
            pads[i], pads[i + nsp] = lo, total - lo
    else:
        raise node_error(node, f"auto_pad {auto!r} is not supported")
    return kernel, strides, dil, pads


def _im2col(a: np.ndarray, group: int, kernel, strides, dil, pads) -> np.ndarray:
    """a [N, C, *S] (indices) -> [N, G, P, C/G * prod(kernel)]: every output position's window
    of each group, -1 where the window reads padding; window order (channel, *kernel) as the
    ONNX weights [M, C/G, *kernel] flatten."""
    nsp = len(kernel)
    p = _padded_index(a, pads, "constant")
    outs = [(p.shape[2 + i] - (kernel[i] - 1) * dil[i] - 1) // strides[i] + 1 for i in range(nsp)]
    n, c = a.shape[:2]
    cols = []
    for pos in itertools.product(*(range(o) for o in outs)):
        sl = tuple(slice(pos[i] * strides[i], pos[i] * strides[i] + (kernel[i] - 1) * dil[i] + 1,
                         dil[i]) for i in range(nsp))
        cols.append(p[(slice(None), slice(None), *sl)].reshape(n, group, c // group, -1))
    stacked = np.stack(cols, axis=2)  # [N, G, P, C/G, prod(k)]
    return stacked.reshape(n, group, len(cols), -1), outs


def conv(ctx: Ctx, node) -> None:
    """Conv 1-D/2-D (strides, dilations, pads/auto_pad, groups incl. depthwise) within a step."""
    at = attrs_of(node)
    x = ctx.act(node, node.input[0])
    w = ctx.const(node, node.input[1], "the weights").astype(np.float64)
    if w.ndim not in (3, 4):
        raise node_error(node, f"weights of rank {w.ndim}; rnnq supports 1-D and 2-D convolutions")
    shape, was_timed = _step_layout(ctx, node, x)
    if len(shape) != w.ndim:
        raise node_error(node, f"input of rank {len(shape)} for {w.ndim - 2}-D weights")
    group = int(at.get("group", 1))
    cin, cout = shape[1], w.shape[0]
    if cin % group or cout % group or w.shape[1] != cin // group:
        raise node_error(node, f"weights {list(w.shape)} do not fit {cin} input channels in "
                         f"{group} groups")
    b = (ctx.const(node, node.input[2], "the bias").astype(np.float64)
         if len(node.input) > 2 and node.input[2] else np.zeros(cout))
    kernel, strides, dil, pads = _conv_params(node, at, w, shape[2:])
    if any(s < 1 for s in strides + dil):
        raise node_error(node, "strides and dilations must be positive")
    # every group's windows at once, as flat element indices of x (-1: padding)
    windows, outs = _im2col(np.arange(x.size).reshape(shape), group, kernel, strides, dil, pads)
    if min(outs) < 1:
        raise node_error(node, f"the kernel {kernel} does not fit the padded input {shape[2:]}")
    out = node.output[0]
    ta = x.time_axis
    n = shape[0]

    def cols(g: int):
        sel = windows[0, g] if was_timed else windows[:, g]  # [(N,) P, K]
        return lambda a: np.where(sel < 0, -1, a.ravel()[sel])

    mg = cout // group
    parts = []
    for g in range(group):
        name = ctx.tmp(f"{out}_cols{g}")
        emit_take(ctx, node, x, cols(g), name, ta)
        col = ctx.graph.tensors[name]
        dense_out = ctx.tmp(f"{out}_g{g}")
        wn = ctx.add_const(w[g * mg:(g + 1) * mg].reshape(mg, -1), dense_out + "_W")
        bn = ctx.add_const(b[g * mg:(g + 1) * mg], dense_out + "_b")
        ctx.add_act(dense_out, col.shape[:-1] + (mg,), col.kind, ta)
        ctx.emit("dense", [name, wn, bn], [dense_out], node)
        parts.append(dense_out)
    joined = parts[0]
    if group > 1:
        joined = ctx.tmp(f"{out}_joined")
        first = ctx.graph.tensors[parts[0]]
        ctx.add_act(joined, first.shape[:-1] + (cout,), first.kind, ta)
        ctx.emit("concat", parts, [joined], node, axis=len(first.shape) - 1)
    src = ctx.graph.tensors[joined]

    def to_onnx(a: np.ndarray) -> np.ndarray:  # [N, P, M] -> [N, M, *outs]
        a3 = a[None] if was_timed else a
        r = np.moveaxis(a3, -1, 1).reshape(n, cout, *outs)
        return r[0] if was_timed else r

    emit_take(ctx, node, src, to_onnx, out, ta)


def batch_norm(ctx: Ctx, node) -> None:
    """Inference BatchNormalization: y = x * s + t per channel (axis 1), two constant ops."""
    x = ctx.act(node, node.input[0])
    scale, bias, mean, var = (ctx.const(node, node.input[i], n).astype(np.float64)
                              for i, n in enumerate(("scale", "bias", "mean", "var"), 1))
    if attrs_of(node).get("training_mode", 0):
        raise node_error(node, "training_mode=1 is not supported (inference graphs only)")
    eps = float(attrs_of(node).get("epsilon", 1e-5))
    s = scale / np.sqrt(var + eps)
    t = bias - mean * s
    shape, was_timed = _step_layout(ctx, node, x)
    bshape = [1, -1] + [1] * (len(shape) - 2)
    sb = np.broadcast_to(s.reshape(bshape), shape)
    tb = np.broadcast_to(t.reshape(bshape), shape)
    if was_timed:
        sb, tb = sb[0], tb[0]
    out = node.output[0]
    mid = ctx.tmp(out + "_scaled")
    ctx.add_act(mid, x.shape, x.kind, x.time_axis)
    ctx.emit("mul", [x.name, ctx.add_const(np.ascontiguousarray(sb), mid + "_s")], [mid], node)
    ctx.add_act(out, x.shape, x.kind, x.time_axis)
    ctx.emit("add", [mid, ctx.add_const(np.ascontiguousarray(tb), out + "_t")], [out], node)


def reduce_features(ctx: Ctx, node, x: Tensor, axes: list[int], mean: bool) -> None:
    """Mean or sum over per-step axes: move them last, then a dense with weights 1/n (or 1)."""
    full = ctx.full_shape(x)
    keep = attrs_of(node).get("keepdims", 1)
    step = [a - 1 if timed(x) and a > x.time_axis else a for a in axes]
    rest = [a for a in range(len(x.shape)) if a not in step]
    n = int(np.prod([x.shape[a] for a in step], dtype=np.int64))
    out = node.output[0]
    out_full = ([1 if a in axes else d for a, d in enumerate(full)] if keep
                else [d for a, d in enumerate(full) if a not in axes])
    if n == 1 and mean:
        reshape_to(ctx, node, x, out_full, out)
        return
    # the moved tensor's ONNX layout: the kept axes in order, time among them, then the n
    ta = sum(1 for r in rest if r < x.time_axis) if timed(x) else None
    moved = ctx.tmp(out + "_moved")
    emit_take(ctx, node, x,
              lambda a: np.transpose(a, rest + step).reshape(*[x.shape[r] for r in rest], n),
              moved, ta)
    reduced = ctx.tmp(out + "_reduced")
    mt = ctx.graph.tensors[moved]
    wn = ctx.add_const(np.full((1, n), 1.0 / n if mean else 1.0), reduced + "_W")
    bn = ctx.add_const(np.zeros(1), reduced + "_b")
    ctx.add_act(reduced, mt.shape[:-1] + (1,), mt.kind, ta)
    ctx.emit("dense", [moved, wn, bn], [reduced], node)
    reshape_to(ctx, node, ctx.graph.tensors[reduced], out_full, out)

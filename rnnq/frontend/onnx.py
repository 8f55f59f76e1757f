"""ONNX -> float IR.

One handler per ONNX op, registered in HANDLERS. The importer tracks, for every activation, the
ONNX axis that carries time, so that exporters' layout plumbing (Transpose, Reshape, Squeeze,
Slice/Gather of the last step, shape sub-graphs) lowers to rnnq's per-timestep IR:
data-movement becomes an alias (`reshape`) or an offline index map (`take`), and selecting the
last timestep becomes `last`. Nodes whose inputs are all constant are folded with onnx's
reference evaluator, so shape arithmetic of any kind folds away.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from rnnq.ir import Graph, Node, RnnqError, Tensor

#: Stand-in for a symbolic time dimension while tracing shapes (a prime, unlikely to collide).
TRACE_T = 97
SUPPORTED_OPS = ["LSTM", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Tanh", "Softmax", "Transpose", "Squeeze", "Unsqueeze", "Reshape", "Flatten", "Slice", "Gather", "Identity", "Dropout", "Constant", "Shape"]


class _Ctx:
    """Import state: the graph being built plus the ONNX-level view of each value."""

    def __init__(self, model: onnx.ModelProto, trace_t: int):
        self.model = model
        self.T = trace_t
        self.consts: dict[str, np.ndarray] = {}
        self.graph = Graph(tensors={}, nodes=[], inputs=[], outputs=[])
        self._n = 0

    # --- values -------------------------------------------------------------------------
    def is_const(self, name: str) -> bool:
        return name == "" or name in self.consts

    def const(self, node: onnx.NodeProto, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise RnnqError(f"node {node.name!r} ({node.op_type}): {what} must be a constant")
        return self.consts[name]

    def act(self, node: onnx.NodeProto, name: str) -> Tensor:
        if name not in self.graph.tensors:
            raise RnnqError(f"node {node.name!r} ({node.op_type}): input {name!r} is undefined")
        return self.graph.tensors[name]

    def full_shape(self, t: Tensor) -> list[int]:
        """The ONNX shape of an activation (time axis included, at trace length)."""
        s = list(t.shape)
        if t.kind == "seq":
            s.insert(t.time_axis, self.T)
        return s

    def add_act(self, name: str, shape, kind: str, time_axis: int | None = None) -> Tensor:
        t = Tensor(name, tuple(int(d) for d in shape), kind, time_axis=time_axis)
        self.graph.tensors[name] = t
        return t

    def add_const(self, data: np.ndarray, hint: str) -> str:
        self._n += 1
        name = f"{hint}__c{self._n}"
        arr = np.asarray(data, dtype=np.float32)
        self.graph.tensors[name] = Tensor(name, arr.shape, "const", data=arr)
        return name

    def tmp(self, hint: str) -> str:
        self._n += 1
        return f"{hint}__t{self._n}"

    def emit(self, op: str, inputs: list[str], outputs: list[str], node, **attrs) -> None:
        self.graph.nodes.append(Node(op, list(inputs), list(outputs), attrs, node.name))


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _err(node: onnx.NodeProto, msg: str) -> RnnqError:
    return RnnqError(f"node {node.name!r} ({node.op_type}): {msg}")


# --- layout helpers -------------------------------------------------------------------------
def _alias_time_axis(ctx: _Ctx, node, x: Tensor, out_full: list[int]) -> int:
    """Where time lands when x's elements are reinterpreted (same order) with shape out_full."""
    full = ctx.full_shape(x)
    a = x.time_axis
    prefix = int(np.prod(full[:a], dtype=np.int64))
    for b, d in enumerate(out_full):
        if d == ctx.T and int(np.prod(out_full[:b], dtype=np.int64)) == prefix:
            return b
    raise _err(node, f"reshapes the time axis ({full} -> {out_full}); rnnq needs it kept whole")


def _reshape_to(ctx: _Ctx, node, x: Tensor, out_full: list[int], out: str) -> None:
    """Emit a same-order reinterpretation of x with ONNX shape out_full."""
    if x.kind == "seq":
        ta = _alias_time_axis(ctx, node, x, out_full)
        shape = out_full[:ta] + out_full[ta + 1 :]
        ctx.add_act(out, shape, "seq", ta)
    else:
        ctx.add_act(out, out_full, x.kind)
    ctx.emit("reshape", [x.name], [out], node)


def _take(ctx: _Ctx, node, x: Tensor, fn: Callable[[np.ndarray], np.ndarray], out: str,
          time_axis: int | None) -> None:
    """Emit data movement as an offline index map computed by applying fn to indices."""
    idx = fn(np.arange(x.size, dtype=np.int64).reshape(x.shape))
    kind = x.kind
    ctx.add_act(out, idx.shape, kind, time_axis)
    if np.array_equal(idx.ravel(), np.arange(x.size)):
        ctx.emit("reshape", [x.name], [out], node)
    else:
        ctx.emit("take", [x.name], [out], node, index=idx.ravel().astype(np.int32))


def _step_axis(x: Tensor, axis: int) -> int:
    """ONNX axis of a seq tensor -> axis in its per-step shape."""
    return axis - 1 if x.kind == "seq" and axis > x.time_axis else axis


def _norm_axis(node, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise _err(node, f"axis {axis} out of range for rank {rank}")
    return axis % rank


# --- handlers -------------------------------------------------------------------------------
def _identity(ctx: _Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    _reshape_to(ctx, node, x, ctx.full_shape(x), node.output[0])


def _reshape(ctx: _Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    full = ctx.full_shape(x)
    target = [int(v) for v in ctx.const(node, node.input[1], "the shape input")]
    allowzero = _attrs(node).get("allowzero", 0)
    out = []
    for i, d in enumerate(target):
        out.append(full[i] if d == 0 and not allowzero else d)
    if out.count(-1) > 1:
        raise _err(node, "more than one -1 in the target shape")
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        out[out.index(-1)] = int(np.prod(full, dtype=np.int64)) // max(known, 1)
    if int(np.prod(out, dtype=np.int64)) != int(np.prod(full, dtype=np.int64)):
        raise _err(node, f"cannot reshape {full} to {target}")
    _reshape_to(ctx, node, x, out, node.output[0])


def _flatten(ctx: _Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    full = ctx.full_shape(x)
    axis = _norm_axis(node, _attrs(node).get("axis", 1), len(full) + 1)
    out = [int(np.prod(full[:axis], dtype=np.int64)), int(np.prod(full[axis:], dtype=np.int64))]
    _reshape_to(ctx, node, x, out, node.output[0])


def _axes(ctx: _Ctx, node) -> list[int] | None:
    if len(node.input) > 1 and node.input[1]:
        return [int(a) for a in ctx.const(node, node.input[1], "axes")]
    a = _attrs(node).get("axes")
    return None if a is None else [int(v) for v in a]


def _squeeze(ctx: _Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    full = ctx.full_shape(x)
    axes = _axes(ctx, node)
    if axes is None:
        axes = [i for i, d in enumerate(full) if d == 1]
    axes = [_norm_axis(node, a, len(full)) for a in axes]
    for a in axes:
        if full[a] != 1:
            raise _err(node, f"cannot squeeze axis {a} of size {full[a]}")
    _reshape_to(ctx, node, x, [d for i, d in enumerate(full) if i not in axes], node.output[0])


def _unsqueeze(ctx: _Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    full = ctx.full_shape(x)
    axes = _axes(ctx, node) or []
    rank = len(full) + len(axes)
    axes = sorted(_norm_axis(node, a, rank) for a in axes)
    out = list(full)
    for a in axes:
        out.insert(a, 1)
    _reshape_to(ctx, node, x, out, node.output[0])


def _transpose(ctx: _Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    rank = len(ctx.full_shape(x))
    perm = [int(p) for p in _attrs(node).get("perm", list(range(rank))[::-1])]
    if x.kind == "seq":
        ta = perm.index(x.time_axis)
        step = [p - (p > x.time_axis) for p in perm if p != x.time_axis]
        _take(ctx, node, x, lambda a: a.transpose(step), node.output[0], ta)
    else:
        _take(ctx, node, x, lambda a: a.transpose(perm), node.output[0], None)


def _last(ctx: _Ctx, node, x: Tensor, keep_dim: bool, out: str) -> None:
    shape = list(x.shape)
    if keep_dim:
        shape.insert(x.time_axis, 1)
    ctx.add_act(out, shape, "final")
    ctx.emit("last", [x.name], [out], node)


def _gather(ctx: _Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    idx = ctx.const(node, node.input[1], "the indices").astype(np.int64)
    full = ctx.full_shape(x)
    axis = _norm_axis(node, _attrs(node).get("axis", 0), len(full))
    if x.kind == "seq" and axis == x.time_axis:
        if idx.size != 1 or int(idx.ravel()[0]) % ctx.T != ctx.T - 1:
            raise _err(node, "gathers timesteps other than the last one; rnnq streams in time")
        _last(ctx, node, x, idx.ndim == 1, node.output[0])
        return
    sa = _step_axis(x, axis)
    idx = np.where(idx < 0, idx + full[axis], idx)
    _take(ctx, node, x, lambda a: np.take(a, idx, axis=sa), node.output[0], _gather_ta(x, axis, idx))


def _gather_ta(x: Tensor, axis: int, idx: np.ndarray) -> int | None:
    if x.kind != "seq":
        return None
    return x.time_axis if axis > x.time_axis else x.time_axis + idx.ndim - 1


def _slice(ctx: _Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    full = ctx.full_shape(x)
    starts = ctx.const(node, node.input[1], "starts").astype(np.int64)
    ends = ctx.const(node, node.input[2], "ends").astype(np.int64)
    n_in = len(node.input)
    axes = (ctx.const(node, node.input[3], "axes").astype(np.int64)
            if n_in > 3 and node.input[3] else np.arange(len(starts)))
    steps = (ctx.const(node, node.input[4], "steps").astype(np.int64)
             if n_in > 4 and node.input[4] else np.ones(len(starts), np.int64))
    slices = [slice(None)] * len(full)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = _norm_axis(node, int(a), len(full))
        slices[a] = slice(*slice(int(s), int(e), int(st)).indices(full[a]))
    cur = x
    if x.kind == "seq":
        ts = slices[x.time_axis]
        sel = range(ts.start, ts.stop, ts.step)
        if list(sel) != list(range(ctx.T)):
            if list(sel) != [ctx.T - 1]:
                raise _err(node, "slices timesteps other than the last one; rnnq streams in time")
            tmp = ctx.tmp(node.output[0])
            _last(ctx, node, x, True, tmp)
            cur = ctx.graph.tensors[tmp]
        else:
            del slices[x.time_axis]
    sl = tuple(slices)
    ta = x.time_axis if cur.kind == "seq" else None
    _take(ctx, node, cur, lambda a: a[sl], node.output[0], ta)


def _unary(op: str):
    def handler(ctx: _Ctx, node) -> None:
        x = ctx.act(node, node.input[0])
        ctx.add_act(node.output[0], x.shape, x.kind, x.time_axis)
        ctx.emit(op, [x.name], [node.output[0]], node)

    return handler


def _softmax(ctx: _Ctx, node) -> None:
    x = ctx.act(node, node.input[0])
    full = ctx.full_shape(x)
    opset = _opset(ctx.model)
    axis = _norm_axis(node, _attrs(node).get("axis", -1 if opset >= 13 else 1), len(full))
    last = len(full) - 1
    if opset < 13 and axis != last and all(d == 1 for d in full[axis:-1]):
        axis = last
    if axis != last or (x.kind == "seq" and x.time_axis == last):
        raise _err(node, f"softmax over axis {axis} of {full}; rnnq supports the last, non-time axis")
    _unary("softmax")(ctx, node)


def _binary(op: str):
    def handler(ctx: _Ctx, node) -> None:
        a_name, b_name = node.input[0], node.input[1]
        out = node.output[0]
        if ctx.is_const(a_name) and op in ("sub", "div"):
            raise _err(node, "constant minus/over activation is not supported")
        if ctx.is_const(a_name):
            a_name, b_name = b_name, a_name
        a = ctx.act(node, a_name)
        if ctx.is_const(b_name):
            c = ctx.consts[b_name].astype(np.float64)
            if op == "div":
                if np.any(c == 0):
                    raise _err(node, "division by a constant containing zero")
                c = 1.0 / c
            full = ctx.full_shape(a)
            try:
                bshape = np.broadcast_shapes(tuple(full), c.shape)
            except ValueError:
                raise _err(node, f"cannot broadcast {list(c.shape)} to {full}") from None
            if list(bshape) != full:
                raise _err(node, f"constant {list(c.shape)} enlarges the activation {full}")
            c = c.reshape((1,) * (len(full) - c.ndim) + c.shape)
            if a.kind == "seq":
                if c.shape[a.time_axis] != 1:
                    raise _err(node, "constant varies along the time axis")
                c = np.take(c, 0, axis=a.time_axis)
            c = np.broadcast_to(c, a.shape)
            b_const = ctx.add_const(c, out)
            ctx.add_act(out, a.shape, a.kind, a.time_axis)
            ctx.emit("mul" if op == "div" else op, [a.name, b_const], [out], node)
            return
        if op == "div":
            raise _err(node, "division by an activation is not supported")
        b = ctx.act(node, b_name)
        if ctx.full_shape(a) != ctx.full_shape(b) or a.kind != b.kind or a.time_axis != b.time_axis:
            raise _err(node, f"operands {ctx.full_shape(a)} and {ctx.full_shape(b)} differ in shape "
                             "or timing; rnnq supports equal shapes for two activations")
        ctx.add_act(out, a.shape, a.kind, a.time_axis)
        ctx.emit(op, [a.name, b.name], [out], node)

    return handler


def _dense(ctx: _Ctx, node, x: Tensor, w_nk: np.ndarray, b_n: np.ndarray, out: str) -> None:
    full = ctx.full_shape(x)
    if x.kind == "seq" and x.time_axis == len(full) - 1:
        raise _err(node, "contracts over the time axis")
    if x.shape[-1] != w_nk.shape[1]:
        raise _err(node, f"inner dimensions differ: {x.shape[-1]} vs {w_nk.shape[1]}")
    wn, bn = ctx.add_const(w_nk, out + "_W"), ctx.add_const(b_n, out + "_b")
    ctx.add_act(out, x.shape[:-1] + (w_nk.shape[0],), x.kind, x.time_axis)
    ctx.emit("dense", [x.name, wn, bn], [out], node)


def _gemm(ctx: _Ctx, node) -> None:
    at = _attrs(node)
    x = ctx.act(node, node.input[0])
    if at.get("transA", 0):
        raise _err(node, "transA=1 is not supported")
    if len(ctx.full_shape(x)) != 2:
        raise _err(node, "input A must be 2-D")
    bm = ctx.const(node, node.input[1], "input B (weights)").astype(np.float64)
    w = (bm if at.get("transB", 0) else bm.T) * at.get("alpha", 1.0)
    n = w.shape[0]
    b = np.zeros(n)
    if len(node.input) > 2 and node.input[2]:
        c = ctx.const(node, node.input[2], "input C (bias)").astype(np.float64)
        if c.ndim == 2 and c.shape[0] != 1:
            raise _err(node, "bias C with more than one row is not supported")
        b = np.broadcast_to(c.reshape(-1) if c.ndim else c, (n,)) * at.get("beta", 1.0)
    _dense(ctx, node, x, w, b, node.output[0])


def _matmul(ctx: _Ctx, node) -> None:
    if ctx.is_const(node.input[0]):
        raise _err(node, "constant @ activation is not supported (expected activation @ weights)")
    x = ctx.act(node, node.input[0])
    w = ctx.const(node, node.input[1], "the second input (weights)")
    if w.ndim != 2:
        raise _err(node, f"weights of rank {w.ndim}; rnnq supports 2-D weights")
    _dense(ctx, node, x, w.T.astype(np.float64), np.zeros(w.shape[1]), node.output[0])


def _lstm(ctx: _Ctx, node) -> None:
    at = _attrs(node)
    ins = list(node.input) + [""] * (8 - len(node.input))
    x = ctx.act(node, ins[0])
    layout = int(at.get("layout", 0))
    hidden = int(at.get("hidden_size", 0))
    direction = at.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction != "forward":
        raise _err(node, f"direction={direction!r} is not supported yet (forward only)")
    acts = [a.decode() if isinstance(a, bytes) else a for a in at.get("activations", [])]
    if acts and [a.lower() for a in acts] != ["sigmoid", "tanh", "tanh"]:
        raise _err(node, f"activations={acts} is not supported (Sigmoid, Tanh, Tanh only)")
    if "clip" in at:
        raise _err(node, "attribute clip is not supported yet")
    if at.get("input_forget", 0):
        raise _err(node, "attribute input_forget=1 is not supported yet")
    if x.kind != "seq" or x.time_axis != (1 if layout else 0):
        raise _err(node, f"input X does not carry time on axis {1 if layout else 0} (layout={layout})")
    if x.size != x.shape[-1] or len(x.shape) != 2:
        raise _err(node, f"input X per step is {list(x.shape)}; rnnq needs batch 1")
    w = ctx.const(node, ins[1], "W").astype(np.float64)
    r = ctx.const(node, ins[2], "R").astype(np.float64)
    if w.ndim != 3 or w.shape[0] != 1 or r.shape[0] != 1:
        raise _err(node, "W/R must have one direction")
    h = hidden or r.shape[-1]
    in_size = x.shape[-1]
    if w.shape[1:] != (4 * h, in_size) or r.shape[1:] != (4 * h, h):
        raise _err(node, f"W {list(w.shape)} / R {list(r.shape)} do not match hidden_size={h}, "
                         f"input size {in_size}")
    b = np.zeros(4 * h)
    if ins[3]:
        bb = ctx.const(node, ins[3], "B").astype(np.float64).reshape(-1)
        if bb.size != 8 * h:
            raise _err(node, f"B has {bb.size} values, expected {8 * h}")
        b = bb[: 4 * h] + bb[4 * h :]
    if ins[4]:
        sl = ctx.const(node, ins[4], "sequence_lens")
        if np.any(sl.astype(np.int64) < ctx.T):
            raise _err(node, "sequence_lens shorter than the sequence is not supported yet")
    h0 = (ctx.const(node, ins[5], "initial_h").astype(np.float64).reshape(-1) if ins[5]
          else np.zeros(h))
    c0 = (ctx.const(node, ins[6], "initial_c").astype(np.float64).reshape(-1) if ins[6]
          else np.zeros(h))
    if h0.size != h or c0.size != h:
        raise _err(node, "initial_h/initial_c must hold one batch of hidden_size values")
    if ins[7]:
        p = ctx.const(node, ins[7], "P")
        if np.any(p != 0):
            raise _err(node, "peepholes (input P) are not supported yet")
    outs = list(node.output) + [""] * (3 - len(node.output))
    base = outs[0] or ctx.tmp(node.name or "lstm")
    y_seq, c_seq = ctx.tmp(base + "_h"), ctx.tmp(base + "_c")
    consts = [ctx.add_const(a, base) for a in (w[0], r[0], b, h0, c0)]
    ctx.add_act(y_seq, (h,), "seq", 0)
    ctx.add_act(c_seq, (h,), "seq", 0)
    ctx.emit("lstm", [x.name] + consts, [y_seq, c_seq], node, hidden=h)
    yt = ctx.graph.tensors[y_seq]
    # Y: [T, 1, 1, H] (layout 0) or [1, T, 1, H] (layout 1); Y_h/Y_c: [1, 1, H].
    if outs[0]:
        ctx.add_act(outs[0], (1, 1, h), "seq", 1 if layout else 0)
        ctx.emit("reshape", [y_seq], [outs[0]], node)
    for name, src in ((outs[1], yt), (outs[2], ctx.graph.tensors[c_seq])):
        if name:
            ctx.add_act(name, (1, 1, h), "final")
            ctx.emit("last", [src.name], [name], node)


def _opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return 0


HANDLERS: dict[str, Callable[[_Ctx, onnx.NodeProto], None]] = {
    "LSTM": _lstm, "Gemm": _gemm, "MatMul": _matmul,
    "Add": _binary("add"), "Sub": _binary("sub"), "Mul": _binary("mul"), "Div": _binary("div"),
    "Relu": _unary("relu"), "Sigmoid": _unary("sigmoid"), "Tanh": _unary("tanh"),
    "Softmax": _softmax, "Transpose": _transpose, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Reshape": _reshape, "Flatten": _flatten, "Slice": _slice, "Gather": _gather,
    "Identity": _identity, "Dropout": _identity,
}


def _fold(ctx: _Ctx, node: onnx.NodeProto) -> None:
    """Evaluate a node whose inputs are all constant (shape arithmetic, weight transforms)."""
    feeds = {i: ctx.consts[i] for i in node.input if i}
    try:
        outs = ReferenceEvaluator(node).run(None, feeds)
    except Exception as e:  # noqa: BLE001 - any evaluator failure is the model's problem
        raise _err(node, f"cannot fold constant node: {str(e).splitlines()[0]}") from None
    for name, val in zip(node.output, outs):
        if name:
            ctx.consts[name] = np.asarray(val)


def _shape_of(ctx: _Ctx, node: onnx.NodeProto) -> None:
    full = ctx.full_shape(ctx.act(node, node.input[0]))
    at = _attrs(node)
    start, end = at.get("start", 0), at.get("end", len(full))
    ctx.consts[node.output[0]] = np.array(full[slice(start, end)], dtype=np.int64)


def _input_candidates(vi: onnx.ValueInfoProto) -> tuple[list[int], list[int | None]]:
    dims = []
    for d in vi.type.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else None)
    rank = len(dims)
    order = [1, 0] + list(range(2, rank))
    cands = [a for a in order if a < rank and dims[a] != 1]
    return cands, dims


def _convert(model: onnx.ModelProto, time_axis: int, trace_t: int) -> Graph:
    g = model.graph
    ctx = _Ctx(model, trace_t)
    for init in g.initializer:
        ctx.consts[init.name] = numpy_helper.to_array(init)
    real_inputs = [vi for vi in g.input if vi.name not in ctx.consts]
    vi = real_inputs[0]
    _, dims = _input_candidates(vi)
    elem = vi.type.tensor_type.elem_type
    if elem != onnx.TensorProto.FLOAT:
        raise RnnqError(f"graph input {vi.name!r}: element type "
                        f"{onnx.TensorProto.DataType.Name(elem)}, rnnq expects float")
    full = [d if d else 1 for d in dims]
    full[time_axis] = trace_t
    step = [d for i, d in enumerate(full) if i != time_axis]
    ctx.add_act(vi.name, step, "seq", time_axis)
    ctx.graph.inputs = [vi.name]
    for node in g.node:
        if node.domain not in ("", "ai.onnx"):
            raise _err(node, f"operator domain {node.domain!r} is not supported")
        if node.op_type == "Constant":
            _fold(ctx, node)
        elif node.op_type == "Shape" and not ctx.is_const(node.input[0]):
            _shape_of(ctx, node)
        elif all(ctx.is_const(i) for i in node.input):
            _fold(ctx, node)
        elif node.op_type in HANDLERS:
            HANDLERS[node.op_type](ctx, node)
        else:
            raise _err(node, f"operator {node.op_type} is not supported "
                             f"(supported: {', '.join(SUPPORTED_OPS)})")
    for out in g.output:
        if out.name not in ctx.graph.tensors:
            raise RnnqError(f"graph output {out.name!r} is a constant or undefined")
        ctx.graph.outputs.append(out.name)
    ctx.graph.meta.update(input_time_axis=time_axis, input_full_shape=dims)
    return ctx.graph.prune().verify()


def load_model(path: str | Path) -> onnx.ModelProto:
    """Read and check an ONNX file; errors name the file."""
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise RnnqError(f"{path}: no such file") from None
    except Exception as e:  # noqa: BLE001 - protobuf raises many kinds of errors
        raise RnnqError(f"{path}: not an ONNX model ({type(e).__name__})") from None
    if not model.graph.node:
        raise RnnqError(f"{path}: not an ONNX model (no graph nodes)")
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001
        raise RnnqError(f"{path}: invalid ONNX model: {str(e).splitlines()[0]}") from None
    return model


def import_onnx(path: str | Path) -> Graph:
    """ONNX file -> float IR graph (stage FLOAT)."""
    path = Path(path)
    model = load_model(path)
    inits = {i.name for i in model.graph.initializer}
    real_inputs = [vi for vi in model.graph.input if vi.name not in inits]
    if len(real_inputs) != 1:
        names = [vi.name for vi in real_inputs]
        raise RnnqError(f"{path}: rnnq takes models with one sequence input, this one has {names}")
    cands, dims = _input_candidates(real_inputs[0])
    if not cands:
        raise RnnqError(f"{path}: input {real_inputs[0].name!r} {dims} has no time axis")
    first_err: RnnqError | None = None
    for axis in cands:
        trace_t = dims[axis] or TRACE_T
        try:
            graph = _convert(model, axis, trace_t)
            break
        except RnnqError as e:
            first_err = first_err or e
    else:
        assert first_err is not None
        raise first_err
    graph.meta.update(
        model_path=str(path),
        model_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        opset=_opset(model),
        trace_t=trace_t,
    )
    return graph

"""Import state and layout helpers shared by the ONNX op handlers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx

from rnnq.ir import Graph, Node, RnnqError, Tensor

#: Stand-in for a symbolic time dimension while tracing shapes (a prime, unlikely to collide).
TRACE_T = 97

class Ctx:
    """Import state: the graph being built plus the ONNX-level view of each value."""

    def __init__(self, model: onnx.ModelProto, trace_t: int):
        self.model = model
        self.T = trace_t
        self.consts: dict[str, np.ndarray] = {}
        self.graph = Graph(tensors={}, nodes=[], inputs=[], outputs=[])
        #: state inputs (graph inputs that set initial recurrent states): name -> (first id,
        #: size, ONNX shape); their values while importing are element ids
        self.state_ids: dict[str, tuple[int, int, list[int]]] = {}
        #: values that are state inputs or layout views of them (their ids)
        self.state_derived: set[str] = set()
        #: one call of the graph is one timestep (no time axis; states carried between calls)
        self.step_mode = False
        self._n = 0

    # --- values -------------------------------------------------------------------------
    def state_element(self, node, ids: np.ndarray) -> tuple[str, np.ndarray]:
        """State ids -> (the state input they come from, its flat element indices)."""
        ids = np.asarray(ids, np.float64).ravel()
        for sname, (first, size, _) in self.state_ids.items():
            if ids.size and np.all((ids >= first) & (ids < first + size) & (ids == np.round(ids))):
                return sname, (ids - first).astype(np.int64)
        raise node_error(node, "an initial state mixes state inputs with constants or "
                         "several state inputs; rnnq needs each state vector from one input")

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
        if timed(t):
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


def timed(t: Tensor) -> bool:
    """A per-step tensor with an ONNX time axis (in a one-step-per-call graph, a per-call
    tensor has none: its ONNX shape is its per-step shape)."""
    return t.kind == "seq" and t.time_axis is not None


def attrs_of(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def node_error(node: onnx.NodeProto, msg: str) -> RnnqError:
    return RnnqError(f"node {node.name!r} ({node.op_type}): {msg}")


# --- layout helpers -------------------------------------------------------------------------
def _alias_time_axis(ctx: Ctx, node, x: Tensor, out_full: list[int]) -> int:
    """Where time lands when x's elements are reinterpreted (same order) with shape out_full."""
    full = ctx.full_shape(x)
    a = x.time_axis
    prefix = int(np.prod(full[:a], dtype=np.int64))
    for b, d in enumerate(out_full):
        if d == ctx.T and int(np.prod(out_full[:b], dtype=np.int64)) == prefix:
            return b
    raise node_error(node, f"reshapes the time axis ({full} -> {out_full}); rnnq needs it kept whole")


def reshape_to(ctx: Ctx, node, x: Tensor, out_full: list[int], out: str) -> None:
    """Emit a same-order reinterpretation of x with ONNX shape out_full."""
    if timed(x):
        ta = _alias_time_axis(ctx, node, x, out_full)
        shape = out_full[:ta] + out_full[ta + 1 :]
        ctx.add_act(out, shape, "seq", ta)
    else:
        ctx.add_act(out, out_full, x.kind)
    ctx.emit("reshape", [x.name], [out], node)


def emit_take(ctx: Ctx, node, x: Tensor, fn: Callable[[np.ndarray], np.ndarray], out: str,
          time_axis: int | None) -> None:
    """Emit data movement as an offline index map computed by applying fn to indices (an index
    of -1 reads a real 0: zero padding)."""
    idx = fn(np.arange(x.size, dtype=np.int64).reshape(x.shape))
    kind = x.kind
    ctx.add_act(out, idx.shape, kind, time_axis)
    if np.array_equal(idx.ravel(), np.arange(x.size)):
        ctx.emit("reshape", [x.name], [out], node)
    elif idx.min(initial=0) < 0:  # -1: padding, a real 0
        ctx.emit("take", [x.name], [out], node, index=idx.ravel().astype(np.int32), fill=True)
    else:
        ctx.emit("take", [x.name], [out], node, index=idx.ravel().astype(np.int32))


def step_axis(x: Tensor, axis: int) -> int:
    """ONNX axis of a seq tensor -> axis in its per-step shape."""
    return axis - 1 if timed(x) and axis > x.time_axis else axis


def norm_axis(node, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise node_error(node, f"axis {axis} out of range for rank {rank}")
    return axis % rank


def opset_of(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return 0

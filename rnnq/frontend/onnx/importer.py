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
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from rnnq.files import MODEL_MAX_BYTES, regular_file
from rnnq.frontend.onnx.cells import LAYOUT_OPS, fuse_lstm_cells
from rnnq.frontend.onnx.context import TRACE_T, Ctx, attrs_of, node_error, opset_of
from rnnq.frontend.onnx.handlers import HANDLERS, SUPPORTED_OPS
from rnnq.frontend.onnx.recurrent import ONNX_RECURRENT
from rnnq.ir import Graph, RnnqError
from rnnq.ir.states import StateError, pair_states

#: Iterations of a constant Loop and elements of a constant made from a shape that folding
#: runs or allocates: beyond these a model is refused rather than folded for hours or
#: allocated until the machine runs out of memory.
MAX_FOLD_ITERATIONS = 100_000
MAX_FOLD_ELEMENTS = 2**26


def _fold_cost(node: onnx.NodeProto, feeds: dict) -> str | None:
    """Why folding `node` would loop or allocate beyond the limits (None: it would not)."""
    def ins(k: int):
        return np.asarray(feeds[node.input[k]]) if len(node.input) > k and node.input[k] else None

    op = node.op_type
    if op == "Loop":
        if ins(0) is None:
            return (f"a constant Loop without a trip count (rnnq folds loops of at most "
                    f"{MAX_FOLD_ITERATIONS} iterations)")
        n = int(ins(0))
        return (f"folding this constant Loop runs {n} iterations, more than rnnq evaluates "
                f"({MAX_FOLD_ITERATIONS})" if n > MAX_FOLD_ITERATIONS else None)
    if op == "ConstantOfShape":
        n = int(np.prod(ins(0).astype(object))) if ins(0) is not None else 1
    elif op == "Range":
        start, limit, delta = (float(ins(k)) for k in range(3))
        n = int(max(np.ceil((limit - start) / delta), 0)) if delta else MAX_FOLD_ELEMENTS + 1
    elif op == "Tile":
        n = int(np.prod(np.asarray(ins(0).shape, dtype=object) * ins(1).astype(object)))
    elif op == "Expand":
        a, shape = ins(0), [int(d) for d in ins(1)]
        full = [max(x, y) for x, y in zip([1] * (len(shape) - a.ndim) + list(a.shape),
                                          [1] * (a.ndim - len(shape)) + shape)]
        n = int(np.prod(np.asarray(full, dtype=object)))
    else:
        return None
    return (f"folding this constant node makes {n} elements, more than rnnq evaluates "
            f"({MAX_FOLD_ELEMENTS})" if n > MAX_FOLD_ELEMENTS else None)


def _fold(ctx: Ctx, node: onnx.NodeProto) -> None:
    """Evaluate a node whose inputs are all constant (shape arithmetic, weight transforms)."""
    feeds = {i: ctx.consts[i] for i in node.input if i}
    try:
        cost = _fold_cost(node, feeds)
    except (TypeError, ValueError, OverflowError):
        cost = None  # malformed operands: the evaluator says what is wrong
    if cost is not None:
        raise node_error(node, cost)
    try:
        outs = ReferenceEvaluator(_single_node_model(ctx.model, node, feeds)).run(None, feeds)
    except Exception as e:  # noqa: BLE001 - any evaluator failure is the model's problem
        raise node_error(node, f"cannot fold constant node: {str(e).splitlines()[0]}") from None
    for name, val in zip(node.output, outs):
        if name:
            ctx.consts[name] = np.asarray(val)


def _single_node_model(model: onnx.ModelProto, node: onnx.NodeProto,
                       feeds: dict) -> onnx.ModelProto:
    """The node alone in a model that carries the original opsets (ops changed over time)."""
    ins = [onnx.helper.make_tensor_value_info(
        k, onnx.helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), None)
        for k, v in feeds.items()]
    outs = [onnx.helper.make_empty_tensor_value_info(o) for o in node.output if o]
    graph = onnx.helper.make_graph([node], "fold", ins, outs)
    return onnx.helper.make_model(graph, opset_imports=list(model.opset_import),
                                  ir_version=model.ir_version)


def _shape_of(ctx: Ctx, node: onnx.NodeProto) -> None:
    full = ctx.full_shape(ctx.act(node, node.input[0]))
    at = attrs_of(node)
    start, end = at.get("start", 0), at.get("end", len(full))
    ctx.consts[node.output[0]] = np.array(full[slice(start, end)], dtype=np.int64)


def _input_candidates(vi: onnx.ValueInfoProto) -> tuple[list[int], list[int | None]]:
    dims = []
    for d in vi.type.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else None)
    rank = len(dims)
    order = [a for a in [1, 0] + list(range(2, rank)) if a < rank]
    # Axes of static size 1 come last: a model exported with a fixed T of 1 still has one.
    cands = [a for a in order if dims[a] != 1] + [a for a in order if dims[a] == 1]
    return cands, dims


#: Elements of one call's input: more is an absurd shape, refused before anything is allocated.
MAX_INPUT_ELEMENTS = 2**26


def _check_dims(path: Path, name: str, dims: list[int | None]) -> None:
    """Static input dimensions are positive and their product is a size rnnq can trace."""
    shown = [d if d is not None else "?" for d in dims]
    for d in dims:
        if d is not None and d <= 0:
            raise RnnqError(f"{path}: input {name!r} {shown} has a dimension of size {d}")
    n = int(np.prod([d for d in dims if d is not None], dtype=object))
    if n > MAX_INPUT_ELEMENTS:
        raise RnnqError(f"{path}: input {name!r} {shown} holds {n} elements, more than rnnq "
                        f"handles ({MAX_INPUT_ELEMENTS})")


_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)
_ID_TYPES = (onnx.TensorProto.INT64, onnx.TensorProto.INT32)


def _length_inputs(inputs: list[onnx.ValueInfoProto]) -> dict[str, tuple[str, int]]:
    """Integer inputs of rank <= 1 beside the sequence: its length (e.g. what PyTorch's
    pack_padded_sequence export takes). name -> (numpy dtype name, element count)."""
    out = {}
    for vi in inputs:
        tt = vi.type.tensor_type
        dims = [d.dim_value or 1 for d in tt.shape.dim]
        if tt.elem_type in _ID_TYPES and len(dims) <= 1 and len(inputs) > 1:
            dt = "int64" if tt.elem_type == onnx.TensorProto.INT64 else "int32"
            out[vi.name] = (dt, int(np.prod(dims)))
    return out


def _convert(model: onnx.ModelProto, vi: onnx.ValueInfoProto, time_axis: int | None,
             trace_t: int, length_inputs: dict | None = None) -> Graph:
    """One import attempt with the model input's time on ONNX axis `time_axis`, or, with
    None, as a graph run once per timestep (each call one step, state carried between calls)."""
    g = model.graph
    ctx = Ctx(model, trace_t)
    ctx.step_mode = time_axis is None
    for init in g.initializer:
        ctx.consts[init.name] = numpy_helper.to_array(init)
        v = ctx.consts[init.name]
        if np.issubdtype(v.dtype, np.floating) and np.any(np.isnan(v)):
            raise RnnqError(f"initializer {init.name!r}: holds NaN")
    _, dims = _input_candidates(vi)
    elem = vi.type.tensor_type.elem_type
    if elem not in _FLOAT_TYPES + _ID_TYPES:
        raise RnnqError(f"graph input {vi.name!r}: element type "
                        f"{onnx.TensorProto.DataType.Name(elem)}, rnnq expects float or int ids")
    full = [d if d else 1 for d in dims]
    if time_axis is None:
        ctx.add_act(vi.name, full, "seq", None)
    else:
        full[time_axis] = trace_t
        step = [d for i, d in enumerate(full) if i != time_axis]
        ctx.add_act(vi.name, step, "seq", time_axis)
    if elem in _ID_TYPES:
        ctx.graph.tensors[vi.name].dtype = "int64"
    ctx.graph.inputs = [vi.name]
    _seed_state_ids(ctx, _state_input_names(model))
    # A length input holds the number of steps the caller runs: it folds with the traced
    # length, so sorting-by-length plumbing (batch 1) becomes constants.
    for name, (dt, count) in (length_inputs or {}).items():
        ctx.consts[name] = np.full(count, trace_t, dtype=dt) if count > 1 or \
            _rank(model, name) else np.array(trace_t, dtype=dt)
    for node in g.node:
        if node.domain not in ("", "ai.onnx"):
            raise node_error(node, f"operator domain {node.domain!r} is not supported")
        if node.op_type not in ONNX_RECURRENT and any(i in ctx.state_derived for i in node.input):
            _state_layout(ctx, node)
        elif node.op_type == "Constant":
            _fold(ctx, node)
        elif node.op_type == "Shape" and not ctx.is_const(node.input[0]):
            _shape_of(ctx, node)
        elif all(ctx.is_const(i) for i in node.input):
            _fold(ctx, node)
        elif node.op_type in HANDLERS:
            HANDLERS[node.op_type](ctx, node)
        else:
            raise node_error(node, f"operator {node.op_type} is not supported "
                             f"(supported: {', '.join(SUPPORTED_OPS)})")
    for out in g.output:
        if out.name not in ctx.graph.tensors:
            raise RnnqError(f"graph output {out.name!r} is a constant or undefined")
        ctx.graph.outputs.append(out.name)
    used = {name for n in ctx.graph.nodes for name, _ in n.attrs.get("state_inputs", {}).values()}
    ctx.graph.meta["state_inputs"] = {k: {"shape": list(v[2])} for k, v in ctx.state_ids.items()
                                      if k in used}
    if ctx.step_mode:
        pair_states(ctx.graph)
    g = ctx.graph.prune().verify()
    g.meta["length_inputs"] = {k: [v[0], v[1], _rank(model, k)]
                               for k, v in (length_inputs or {}).items()}
    g.meta.update(input_time_axis=time_axis, input_full_shape=dims, streaming=is_streaming(g),
                  step_graph=ctx.step_mode)
    return g


#: ONNX ops that only move values: a state input may reach a recurrent node's initial_h /
#: initial_c through them (exporters split packed states with these); the cell fusion uses
#: the same set.
STATE_LAYOUT_OPS = LAYOUT_OPS


def _seed_state_ids(ctx: Ctx, names: set[str]) -> None:
    """Give every element of every state input a distinct id (exact in float32) and fold the
    layout ops on the ids: where each id lands says which element sets which state."""
    next_id = 1
    for vi in ctx.model.graph.input:
        if vi.name not in names:
            continue
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                for d in vi.type.tensor_type.shape.dim]
        size = int(np.prod(dims, dtype=np.int64))
        if next_id + size >= 2**24:
            raise RnnqError(f"state input {vi.name!r} {dims}: state inputs of more than "
                            f"{2**24 - 1} values are not supported")
        ctx.consts[vi.name] = (next_id + np.arange(size, dtype=np.float64)).reshape(dims) \
            .astype(np.float32)
        ctx.state_ids[vi.name] = (next_id, size, dims)
        ctx.state_derived.add(vi.name)
        next_id += size


def _state_layout(ctx: Ctx, node: onnx.NodeProto) -> None:
    """A node reading a state input (or a part of one): only data movement is allowed."""
    if node.op_type == "Shape":
        _fold(ctx, node)
        return
    src = next(i for i in node.input if i in ctx.state_derived)
    if node.op_type not in STATE_LAYOUT_OPS or not all(ctx.is_const(i) for i in node.input):
        owner = next((k for k in ctx.state_ids if k == src), None)
        what = f"state input {owner!r}" if owner else f"a part of a state input ({src!r})"
        raise node_error(node, f"reads {what}; rnnq takes state inputs that reach a recurrent "
                         f"node's initial_h/initial_c through "
                         f"{'/'.join(sorted(STATE_LAYOUT_OPS))} only")
    _fold(ctx, node)
    ctx.state_derived.update(o for o in node.output if o)


def _state_input_names(model: onnx.ModelProto) -> set[str]:
    """Graph inputs that reach a recurrent node's initial_h / initial_c, directly or through
    layout ops (packed states: Gather/Slice/Split/Squeeze/... of one tensor)."""
    inits = {i.name for i in model.graph.initializer}
    reach = {vi.name: {vi.name} for vi in model.graph.input if vi.name not in inits}
    used: set[str] = set()
    for n in model.graph.node:
        if n.op_type in ONNX_RECURRENT:
            for k in (5, 6):
                if k < len(n.input) and n.input[k] in reach:
                    used |= reach[n.input[k]]
        elif n.op_type in STATE_LAYOUT_OPS and any(i in reach for i in n.input):
            src = set().union(*(reach[i] for i in n.input if i in reach))
            for o in n.output:
                reach[o] = src
    return used


def _first_compute(model: onnx.ModelProto, name: str) -> str:
    """The first node that computes with graph input `name` (past layout ops), as
    "<op> '<node>'", or "" when none does."""
    reach = {name}
    for n in model.graph.node:
        if any(i in reach for i in n.input):
            if n.op_type not in STATE_LAYOUT_OPS:
                return f"{n.op_type} {n.name!r}"
            reach.update(n.output)
    return ""


def _rank(model: onnx.ModelProto, name: str) -> int:
    for vi in model.graph.input:
        if vi.name == name:
            return len(vi.type.tensor_type.shape.dim)
    return 0


def is_streaming(g: Graph) -> bool:
    """True when every output at step t depends only on inputs up to t (no reverse pass)."""
    return not any(n.attrs.get("reverse") or n.op == "first" for n in g.nodes)


def load_model(path: str | Path) -> onnx.ModelProto:
    """Read and check an ONNX file; errors name the file."""
    path = regular_file(path, "an ONNX model", MODEL_MAX_BYTES)
    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise RnnqError(f"{path}: no such file") from None
    except Exception as e:  # noqa: BLE001 - protobuf raises many kinds of errors
        raise RnnqError(f"{path}: not an ONNX model ({type(e).__name__})") from None
    if not model.graph.node:
        raise RnnqError(f"{path}: not an ONNX model (no graph nodes)")
    known = onnx.defs.onnx_opset_version()
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and o.version > known:
            raise RnnqError(f"{path}: opset {o.version} is newer than this rnnq's onnx knows "
                            f"({known}); export with opset {known} or lower")
    try:
        onnx.checker.check_model(model)
        # types too (an int32 or float16 weight where the op's type T is the input's float):
        # onnxruntime refuses such a file, so rnnq does not guess what it means
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as e:  # noqa: BLE001
        raise RnnqError(f"{path}: invalid ONNX model: {str(e).strip().splitlines()[0]}") from None
    return model


def model_bytes(path: str | Path) -> bytes:
    """The ONNX file as one self-contained protobuf: weights kept as external data beside it
    are read in (a build folder's model.onnx must not depend on files outside the folder)."""
    path = Path(path)
    head = onnx.load(str(path), load_external_data=False)
    external = any(t.data_location == onnx.TensorProto.EXTERNAL
                   for t in head.graph.initializer)
    if not external:
        return path.read_bytes()
    try:
        return load_model(path).SerializeToString()
    except ValueError as e:  # protobuf's 2 GiB limit
        raise RnnqError(f"{path}: with its external data it is too big for one ONNX file "
                        f"({e})") from None


def _name_nodes(model: onnx.ModelProto) -> None:
    """Give unnamed nodes the name onnxruntime's messages use ("<op>_<index>") so that errors,
    the manifest and the header's state descriptions can point at them."""
    taken = {n.name for n in model.graph.node if n.name}
    for i, n in enumerate(model.graph.node):
        if not n.name:
            name, k = f"{n.op_type}_{i}", 0
            while name in taken:
                k += 1
                name = f"{n.op_type}_{i}_{k}"
            n.name = name
            taken.add(name)


def import_onnx(path: str | Path) -> Graph:
    """ONNX file -> float IR graph (stage FLOAT)."""
    path = Path(path)
    model = load_model(path)
    _name_nodes(model)
    fuse_lstm_cells(model)  # LSTM cells written as elementwise ops -> LSTM nodes
    inits = {i.name for i in model.graph.initializer}
    lens = {n.input[4] for n in model.graph.node
            if n.op_type in ONNX_RECURRENT and len(n.input) > 4 and n.input[4]}
    real_inputs = [vi for vi in model.graph.input
                   if vi.name not in inits | lens | _state_input_names(model)]
    length_inputs = _length_inputs(real_inputs)
    real_inputs = [vi for vi in real_inputs if vi.name not in length_inputs]
    if len(real_inputs) != 1:
        names = [vi.name for vi in real_inputs]
        why = "".join(f"; {vi.name!r} reaches {_first_compute(model, vi.name)}"
                      for vi in real_inputs[1:] if _first_compute(model, vi.name))
        raise RnnqError(f"{path}: rnnq takes models with one sequence input (plus sequence_lens "
                        f"and initial states: inputs that reach a recurrent node's initial_h/"
                        f"initial_c through layout ops), this one has {names}{why}")
    vi = real_inputs[0]
    cands, dims = _input_candidates(vi)
    _check_dims(path, vi.name, dims)
    # A graph with state inputs and a fully static input is run once per timestep (streaming
    # exports); with a symbolic axis, that axis is time first and one step per call is the
    # fallback.
    static = all(d is not None for d in dims)
    step: list[int | None] = [None] if _state_input_names(model) else []
    order = step + cands if static else cands + step
    if not order:
        raise RnnqError(f"{path}: input {vi.name!r} {dims} has no time axis")
    errors: list[RnnqError] = []
    for axis in order:
        trace_t = 1 if axis is None else dims[axis] or TRACE_T
        if axis is not None and dims[axis] == 1 and errors and isinstance(errors[0], StateError):
            # a fixed T = 1 is one step per call, and the state error says why it is not one
            raise errors[0]
        try:
            graph = _convert(model, vi, axis, trace_t, length_inputs)
            break
        except RnnqError as e:
            errors.append(e)
    else:
        # An axis that got past the time-axis checks failed for the real reason.
        real = [e for e in errors if "carry time" not in str(e) and "time axis" not in str(e)
                and "one timestep per call" not in str(e)]
        raise (real or errors)[0]
    for n in graph.nodes:  # weights and constant operands (constants folded in, too)
        for name in n.inputs:
            t = graph.tensors[name]
            if t.kind == "const" and np.issubdtype(t.data.dtype, np.floating) and \
                    not np.all(np.isfinite(t.data)):
                raise RnnqError(f"node {n.name!r}: its constant operand {name!r} holds NaN or "
                                "Inf")
    graph.meta.update(
        model_path=str(path),
        model_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        opset=opset_of(model),
        trace_t=trace_t,
    )
    return graph

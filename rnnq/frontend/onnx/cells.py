"""LSTM cells written as elementwise ops become ONNX LSTM nodes (one step each).

Exporters do not always emit the LSTM op: a Keras LSTMCell run once per call (tf2onnx, when its
LSTM rewriter does not fire) or a PyTorch nn.LSTMCell arrives as its arithmetic:

    P = x·W + h_prev·R + b          (MatMul or Gemm, Adds; b one or more constants)
    chunks of P along its last axis (Split, or four Slices): three Sigmoid gates, one Tanh
    c = f * c_prev + i * g          (Mul, Mul, Add)
    h = o * tanh(c)                 (Tanh, Mul)

`fuse_lstm_cells` finds each such cell and puts in its place one LSTM node with T = 1 (X, h_prev
and c_prev unsqueezed to [1, B, ·], its Y_h and Y_c squeezed back), so the rest of rnnq (state
inputs and outputs, calibration, kernels) sees an ordinary recurrent layer. The gates are told
apart by what they do, not by their order in P (Keras i, f, c, o; PyTorch i, f, g, o): i
multiplies the candidate, f the previous cell, o the new cell's tanh. The previous h and c must
not depend on the model's data input (they come from state inputs or constants); x must.
Anything that does not match the pattern exactly is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper


@dataclass
class _G:
    """The graph's producers, consumers and constants."""

    model: onnx.ModelProto

    def __post_init__(self) -> None:
        g = self.model.graph
        self.const = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.prod: dict[str, onnx.NodeProto] = {}
        self.cons: dict[str, list[onnx.NodeProto]] = {}
        for n in g.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                self.const[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
            for o in n.output:
                self.prod[o] = n
            for i in n.input:
                self.cons.setdefault(i, []).append(n)

    def op(self, name: str, *types: str) -> onnx.NodeProto | None:
        n = self.prod.get(name)
        return n if n is not None and n.op_type in types else None

    def attr(self, n: onnx.NodeProto, name: str, default=None):
        for a in n.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default


#: ONNX ops that only move values: a state reaches its cell through them (packed states); the
#: importer follows state inputs through the same set.
LAYOUT_OPS = frozenset({"Gather", "Slice", "Split", "Squeeze", "Unsqueeze", "Reshape",
                        "Transpose", "Concat", "Identity", "Cast", "Flatten"})


def _layout_sources(g: _G) -> dict[str, str]:
    """Tensors that are a graph input or a constant moved by layout ops only -> that input's
    name ("" for constants)."""
    src = {vi.name: vi.name for vi in g.model.graph.input if vi.name not in g.const}
    src.update({name: "" for name in g.const})
    for n in g.model.graph.node:  # topological order
        ins = [i for i in n.input if i]
        if n.op_type in LAYOUT_OPS and ins and ins[0] in src and \
                all(i in src for i in ins):
            firsts = {src[i] for i in ins} - {""}
            if len(firsts) <= 1:
                for o in n.output:
                    src[o] = firsts.pop() if firsts else ""
    return src


def _pair(g: _G, mul: onnx.NodeProto, first: str) -> tuple[str, str] | None:
    """The two inputs of a Mul as (the one produced by op `first`, the other)."""
    if mul is None or len(mul.input) != 2:
        return None
    a, b = mul.input
    if g.op(a, first):
        return a, b
    if g.op(b, first):
        return b, a
    return None


def _chunks(g: _G, tensors: list[str]) -> tuple[str, list[int]] | None:
    """The tensor P the four activations' inputs are equal chunks of (its last axis), and the
    chunk index of each; None unless exactly that."""
    srcs = [g.prod.get(t) for t in tensors]
    if any(s is None for s in srcs):
        return None
    if all(s.op_type == "Split" for s in srcs) and len({id(s) for s in srcs}) == 1:
        s = srcs[0]
        if len(s.output) != 4 or g.attr(s, "axis", 0) not in (-1, 1):
            return None
        if len(s.input) > 1 and s.input[1]:
            sizes = g.const.get(s.input[1])
            if sizes is None or len(set(np.ravel(sizes).tolist())) != 1:
                return None
        elif g.attr(s, "split") is not None and len(set(g.attr(s, "split"))) != 1:
            return None
        return s.input[0], [list(s.output).index(t) for t in tensors]
    if all(s.op_type == "Slice" for s in srcs) and len({s.input[0] for s in srcs}) == 1:
        starts = []
        for s in srcs:
            parts = [g.const.get(s.input[k]) if k < len(s.input) and s.input[k] else None
                     for k in (1, 2, 3, 4)]
            st, en, ax, step = parts
            if st is None or en is None or np.size(st) != 1 or np.size(en) != 1:
                return None
            if ax is not None and int(np.ravel(ax)[0]) not in (-1, 1):
                return None
            if step is not None and int(np.ravel(step)[0]) != 1:
                return None
            starts.append((int(np.ravel(st)[0]), int(np.ravel(en)[0])))
        widths = {e - s for s, e in starts}
        if len(widths) != 1:
            return None
        w = widths.pop()
        if sorted(s for s, _ in starts) != [0, w, 2 * w, 3 * w]:
            return None
        return srcs[0].input[0], [s // w for s, _ in starts]
    return None


def _affine(g: _G, p: str) -> list[tuple[str, np.ndarray]] | None:
    """P as a sum of terms: (operand, W [K, 4H]) for x·W, and ("", b [4H]) for constants."""
    terms: list[tuple[str, np.ndarray]] = []
    todo = [p]
    while todo:
        t = todo.pop()
        if t in g.const:
            terms.append(("", np.asarray(g.const[t], np.float64)))
            continue
        n = g.prod.get(t)
        if n is None:
            return None
        if n.op_type == "Add" and (t == p or len(g.cons.get(t, [])) == 1):
            todo.extend(n.input)
        elif n.op_type == "MatMul" and n.input[1] in g.const and n.input[0] not in g.const:
            terms.append((n.input[0], np.asarray(g.const[n.input[1]], np.float64)))
        elif n.op_type == "Gemm" and n.input[1] in g.const and n.input[0] not in g.const:
            if g.attr(n, "transA", 0) or g.attr(n, "alpha", 1.0) != 1.0 or \
                    g.attr(n, "beta", 1.0) != 1.0:
                return None
            w = np.asarray(g.const[n.input[1]], np.float64)
            terms.append((n.input[0], w.T if g.attr(n, "transB", 0) else w))
            if len(n.input) > 2 and n.input[2]:
                if n.input[2] not in g.const:
                    return None
                terms.append(("", np.asarray(g.const[n.input[2]], np.float64)))
        else:
            return None
    return terms


@dataclass
class _Cell:
    x: str
    h_prev: str
    c_prev: str
    h_new: str
    c_new: str
    w: np.ndarray  # [4H, I] ONNX gate order i, o, f, c
    r: np.ndarray  # [4H, H]
    b: np.ndarray  # [8H]
    name: str


def _match(g: _G, add: onnx.NodeProto, src: dict[str, str]) -> _Cell | None:
    """The cell whose update c = f * c_prev + i * g is the Add node `add`."""
    if len(add.input) != 2:
        return None
    m1, m2 = (g.op(i, "Mul") for i in add.input)
    if m1 is None or m2 is None:
        return None
    # i * g: a Sigmoid times a Tanh; f * c_prev: a Sigmoid times the previous cell
    ig = _pair(g, m1, "Tanh") or _pair(g, m2, "Tanh")
    mfc = m2 if _pair(g, m1, "Tanh") else m1
    if ig is None:
        return None
    g_act, i_act = ig
    fc = _pair(g, mfc, "Sigmoid")
    if fc is None or not g.op(i_act, "Sigmoid"):
        return None
    f_act, c_prev = fc
    c_new = add.output[0]
    # h = o * tanh(c)
    tanh_c = [n for n in g.cons.get(c_new, []) if n.op_type == "Tanh"]
    if len(tanh_c) != 1:
        return None
    outs = [n for n in g.cons.get(tanh_c[0].output[0], []) if n.op_type == "Mul"]
    if len(outs) != 1 or len(g.cons.get(tanh_c[0].output[0], [])) != 1:
        return None
    o_pair = _pair(g, outs[0], "Sigmoid")
    if o_pair is None or o_pair[1] != tanh_c[0].output[0]:
        return None
    o_act = o_pair[0]
    acts = [g.prod[t] for t in (i_act, f_act, g_act, o_act)]
    if len({id(a) for a in acts}) != 4:
        return None
    found = _chunks(g, [a.input[0] for a in acts])
    if found is None:
        return None
    p, idx = found
    terms = _affine(g, p)
    if terms is None:
        return None
    ops = [(t, w) for t, w in terms if t]
    bias = sum((w for t, w in terms if not t), np.zeros(1))
    if len(ops) != 2 or len({t for t, _ in ops}) != 2:
        return None
    if c_prev not in src or any(w.ndim != 2 for _, w in ops) or \
            ops[0][1].shape[1] != ops[1][1].shape[1] or ops[0][1].shape[1] % 4:
        return None
    # the previous h: a state (input or constant, moved only), its matrix [H, 4H]; when both
    # operands could be, the one that comes from where the previous cell comes from
    cands = [k for k, (t, w) in enumerate(ops) if t in src and w.shape[0] * 4 == w.shape[1]]
    if len(cands) == 2:
        cands = [k for k in cands if src[ops[k][0]] == src[c_prev]]
    if len(cands) != 1:
        return None
    (h_prev, wh), (x, wx) = ops[cands[0]], ops[1 - cands[0]]
    hsz = wh.shape[0]
    bias = np.broadcast_to(np.ravel(bias) if np.size(bias) > 1 else bias, (4 * hsz,))

    def onnx_order(m: np.ndarray) -> np.ndarray:
        """[..., 4H] in chunk order -> [4H, ...] in ONNX order i, o, f, c."""
        blocks = [m[..., k * hsz:(k + 1) * hsz] for k in range(4)]
        i, f, c, o = (blocks[k] for k in idx)  # idx: chunk of i, f, g, o
        return np.concatenate([i, o, f, c], axis=-1).T

    return _Cell(x=x, h_prev=h_prev, c_prev=c_prev, h_new=outs[0].output[0], c_new=c_new,
                 w=onnx_order(wx), r=onnx_order(wh),
                 b=np.concatenate([onnx_order(bias[None, :])[:, 0], np.zeros(4 * hsz)]),
                 name=add.name or c_new)


def fuse_lstm_cells(model: onnx.ModelProto) -> int:
    """Replace every LSTM cell written as elementwise ops by an LSTM node; how many."""
    g = _G(model)
    src = _layout_sources(g)
    cells = [c for n in model.graph.node if n.op_type == "Add"
             for c in [_match(g, n, src)] if c is not None]
    if not cells:
        return 0
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    for c in cells:
        base = f"{c.name}/fused_lstm"
        zero = f"{base}/axis0"
        graph.initializer.extend([
            numpy_helper.from_array(c.w[None].astype(np.float32), f"{base}/W"),
            numpy_helper.from_array(c.r[None].astype(np.float32), f"{base}/R"),
            numpy_helper.from_array(c.b[None].astype(np.float32), f"{base}/B"),
            numpy_helper.from_array(np.array([0], np.int64), zero)])
        new = [_axis0("Unsqueeze", t, f"{base}/{w}", zero, opset)
               for t, w in ((c.x, "X"), (c.h_prev, "h0"), (c.c_prev, "c0"))]
        new.append(helper.make_node(
            "LSTM", [f"{base}/X", f"{base}/W", f"{base}/R", f"{base}/B", "", f"{base}/h0",
                     f"{base}/c0"], [f"{base}/Y", f"{base}/Y_h", f"{base}/Y_c"],
            name=base, hidden_size=int(c.r.shape[1])))
        # Y_h, Y_c [1, B, H] -> the cell's h and c [B, H], under their old names
        for t, w in ((c.h_new, "Y_h"), (c.c_new, "Y_c")):
            new.append(_axis0("Squeeze", f"{base}/{w}", t, zero, opset))
        old = {c.h_new, c.c_new}
        keep = [n for n in graph.node if not (set(n.output) & old)]
        # the new nodes go where the old cell's first output was made (its inputs exist then)
        at = next(i for i, n in enumerate(graph.node) if set(n.output) & old)
        del graph.node[:]
        graph.node.extend(keep[:at] + new + keep[at:])
    _drop_dead(model)
    return len(cells)


def _axis0(op: str, t: str, out: str, zero: str, opset: int) -> onnx.NodeProto:
    """(Un)squeeze axis 0 of t into out: axes an input since opset 13, an attribute before."""
    if opset >= 13:
        return helper.make_node(op, [t, zero], [out], name=out + "/" + op)
    return helper.make_node(op, [t], [out], name=out + "/" + op, axes=[0])


def _drop_dead(model: onnx.ModelProto) -> None:
    """Remove nodes whose outputs nothing reads (the cells' old arithmetic)."""
    graph = model.graph
    live = {o.name for o in graph.output}
    keep = []
    for n in reversed(graph.node):
        if any(o in live for o in n.output):
            keep.append(n)
            live.update(i for i in n.input if i)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    used = {i for n in graph.node for i in n.input}
    inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)

"""Float-IR clean-ups that make quantisation simpler and more accurate.

Each pass is a plain function ``f(graph) -> graph``; requires and produces stage FLOAT.
"""

from __future__ import annotations

import numpy as np

from rnnq.ir import Graph, Node


def _sole_consumer(graph: Graph, name: str) -> Node | None:
    users = graph.consumers(name)
    if len(users) != 1 or name in graph.outputs:
        return None
    return users[0]


def collapse_reshapes(graph: Graph) -> Graph:
    """A reshape of a reshape reads the first one's input (the same values in the same order),
    in one pass: a chain of thousands of Identity nodes leaves one view, and no later pass
    walks (or recurses along) the chain."""
    root: dict[str, str] = {}
    for node in graph.nodes:
        if node.op == "reshape":
            node.inputs = [root.get(node.inputs[0], node.inputs[0])]
            root[node.outputs[0]] = node.inputs[0]
    return graph.prune().verify()


def fold_dense_affine(graph: Graph) -> Graph:
    """dense -> (index maps, reshapes) -> mul or add by a constant becomes one dense with the
    constant folded into its weights and bias, when the constant is one value per dense output
    feature wherever that feature lands: a Linear's bias (MatMul + Add), a BatchNormalization
    after a Conv (its scale and shift, through the Conv's output reordering). Padding (a take
    with fill) passes only a mul: zeros stay zeros."""
    changed = True
    while changed:
        changed = False
        for node in list(graph.nodes):
            if node.op == "dense" and _fold_affine_after(graph, node):
                changed = True
    return graph.prune().verify()


def _fold_affine_after(graph: Graph, dense: Node) -> bool:
    w, b = (graph.tensors[i] for i in dense.inputs[1:])
    if any(len(graph.consumers(t.name)) > 1 for t in (w, b)):
        return False  # weights shared with another layer
    n_out = w.shape[0]
    y = graph.tensors[dense.outputs[0]]
    origin = np.arange(y.size) % n_out  # the dense feature of every per-step element
    chain, nxt = _after_moves(graph, dense.outputs[0])
    fill = False
    for m in chain:
        if m.op == "take":
            idx = np.asarray(m.attrs["index"])
            fill = fill or bool(m.attrs.get("fill"))
            origin = np.where(idx < 0, -1, origin[np.maximum(idx, 0)])
    if nxt is None or nxt.op not in ("mul", "add") or (fill and nxt.op == "add"):
        return False
    consts = [i for i in nxt.inputs if graph.tensors[i].kind == "const"]
    if len(consts) != 1:
        return False
    out = graph.tensors[nxt.outputs[0]]
    c = np.broadcast_to(graph.tensors[consts[0]].data, out.shape).ravel().astype(np.float64)
    per = np.full(n_out, 1.0 if nxt.op == "mul" else 0.0)
    for f in range(n_out):
        vals = c[origin == f]
        if vals.size and not np.all(vals == vals[0]):
            return False
        if vals.size:
            per[f] = vals[0]
    wd, bd = w.data.astype(np.float64), b.data.astype(np.float64)
    if nxt.op == "mul":
        wd, bd = wd * per[:, None], bd * per
    else:
        bd = bd + per
    w.data, b.data = wd.astype(np.float32), bd.astype(np.float32)
    _absorb(graph, dense, chain, nxt, nxt.inputs[0] if nxt.inputs[1] == consts[0]
            else nxt.inputs[1])
    return True


def _after_moves(graph: Graph, name: str) -> tuple[list[Node], Node | None]:
    """The index maps and reshapes that alone read `name` one after another (a Conv's output
    reordering), and the one node that alone reads the last of them (None if there is not
    one)."""
    chain, nxt = [], _sole_consumer(graph, name)
    while nxt is not None and nxt.op in ("take", "reshape"):
        chain.append(nxt)
        nxt = _sole_consumer(graph, nxt.outputs[0])
    return chain, nxt


def _absorb(graph: Graph, dense: Node, chain: list[Node], node: Node, source: str) -> None:
    """`node`, whose work the dense now does: directly after the dense, the dense writes its
    output instead; after index maps, it becomes a reshape of `source` (its activation)."""
    if not chain:
        dense.outputs = [node.outputs[0]]
        graph.nodes.remove(node)
    else:
        node.op, node.inputs, node.attrs = "reshape", [source], {}


def fuse_dense_relu(graph: Graph) -> Graph:
    """dense -> relu becomes dense(relu=True): the int8 output then spends no codes below 0.

    Also through index maps and reshapes between them (a Conv's output reordering): ReLU
    commutes with moving values (and with zero padding); the ReLU becomes a reshape."""
    for node in list(graph.nodes):
        if node.op != "dense":
            continue
        chain, nxt = _after_moves(graph, node.outputs[0])
        if nxt is None or nxt.op != "relu":
            continue
        node.attrs["relu"] = True
        _absorb(graph, node, chain, nxt, nxt.inputs[0])
    return graph.prune().verify()


def fuse_magnitude(graph: Graph) -> Graph:
    """sqrt(a^2 + b^2) (or sqrt(a^2), or three squares) becomes one magnitude(a, b): its integer
    kernel sums exact squares and takes an integer square root, where a chain of int8 tables
    would lose the small components (an STFT's magnitude spectrum)."""
    for node in list(graph.nodes):
        if node.op != "sqrt":
            continue
        parts = _sum_of_squares(graph, node.inputs[0])
        if parts is None or not 1 <= len(parts[0]) <= 3:
            continue
        node.op, node.inputs = "magnitude", parts[0]
        for n in parts[1]:
            graph.nodes.remove(n)
    return graph.prune().verify()


def _sum_of_squares(graph: Graph, name: str) -> tuple[list[str], list[Node]] | None:
    """The operands whose squares add up to `name`, and the nodes that compute it (each read
    only on the way), or None."""
    p = graph.producer(name)
    if p is None or (name in graph.outputs or len(graph.consumers(name)) != 1):
        return None
    if p.op == "square":
        return [p.inputs[0]], [p]
    if p.op != "add":
        return None
    a, b = (_sum_of_squares(graph, i) for i in p.inputs)
    if a is None or b is None:
        return None
    return a[0] + b[0], a[1] + b[1] + [p]

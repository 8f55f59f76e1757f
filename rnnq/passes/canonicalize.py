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


def fold_dense_bias(graph: Graph) -> Graph:
    """dense -> add(const equal on every row) becomes one dense with the constant in its bias.

    Exporters write Linear layers as MatMul + Add; one bias keeps one rounding.
    """
    for node in list(graph.nodes):
        if node.op != "dense":
            continue
        nxt = _sole_consumer(graph, node.outputs[0])
        if nxt is None or nxt.op != "add":
            continue
        other = nxt.inputs[1] if nxt.inputs[0] == node.outputs[0] else nxt.inputs[0]
        t = graph.tensors[other]
        if t.kind != "const":
            continue
        rows = t.data.reshape(-1, t.shape[-1])
        if not np.all(rows == rows[0]):
            continue
        b = graph.tensors[node.inputs[2]]
        b.data = (b.data.astype(np.float64) + rows[0]).astype(np.float32)
        node.outputs = [nxt.outputs[0]]
        graph.nodes.remove(nxt)
    return graph.prune().verify()


def fuse_dense_relu(graph: Graph) -> Graph:
    """dense -> relu becomes dense(relu=True): the int8 output then spends no codes below 0.

    Also through index maps and reshapes between them (a Conv's output reordering): ReLU
    commutes with moving values (and with zero padding); the ReLU becomes a reshape."""
    for node in list(graph.nodes):
        if node.op != "dense":
            continue
        nxt, chain = _sole_consumer(graph, node.outputs[0]), []
        while nxt is not None and nxt.op in ("take", "reshape"):
            chain.append(nxt)
            nxt = _sole_consumer(graph, nxt.outputs[0])
        if nxt is None or nxt.op != "relu":
            continue
        node.attrs["relu"] = True
        if chain:
            nxt.op = "reshape"
            continue
        node.outputs = [nxt.outputs[0]]
        graph.nodes.remove(nxt)
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

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
    """dense -> relu becomes dense(relu=True): the int8 output then spends no codes below 0."""
    for node in list(graph.nodes):
        if node.op != "dense":
            continue
        nxt = _sole_consumer(graph, node.outputs[0])
        if nxt is None or nxt.op != "relu":
            continue
        node.attrs["relu"] = True
        node.outputs = [nxt.outputs[0]]
        graph.nodes.remove(nxt)
    return graph.prune().verify()

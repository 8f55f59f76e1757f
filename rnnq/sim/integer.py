"""Bit-exact integer simulator: THE specification of what the generated code computes.

Evaluates an INTEGER-stage graph on int8 inputs [N, T, *shape], vectorised over the N
sequences, with the kernels of rnnq.sim.kernels (built from rnnq.numerics only). Like the float
reference, a `final` tensor holds at step t its value as if the sequence ended at t.
"""

from __future__ import annotations

import numpy as np

from rnnq.ir import Graph
from rnnq.passes.quantize import dequantize_values, quantize_values
from rnnq.sim import kernels as K


def run_integer(graph: Graph, xq: np.ndarray) -> dict[str, np.ndarray]:
    """Evaluate on already-quantised input xq int8 [N, T, *input_shape]; every tensor by name."""
    n, t_len = xq.shape[:2]
    t_in = graph.tensors[graph.inputs[0]]
    env: dict[str, np.ndarray] = {graph.inputs[0]: xq.astype(np.int8).reshape(n, t_len, *t_in.shape)}

    def val(name: str) -> np.ndarray:
        t = graph.tensors[name]
        return t.data if t.kind == "const" else env[name]

    for node in graph.nodes:
        out = graph.tensors[node.outputs[0]]
        x = val(node.inputs[0])
        flat = x.reshape(n, t_len, -1)
        if node.op == "qlstm":
            y, _ = K.lstm_sequence(node.attrs["params"], flat)
        elif node.op == "qdense":
            p = node.attrs["params"]
            y = K.dense(p, x.reshape(n, t_len, -1, p.in_features))
        elif node.op == "qbinary":
            b = val(node.inputs[1])
            y = K.binary(node.attrs["params"], flat, np.broadcast_to(b.reshape(1, 1, -1), flat.shape))
        elif node.op == "qlut":
            y = K.lut(node.attrs["table"], x)
        elif node.op == "qsoftmax":
            p = node.attrs["params"]
            y = K.softmax(p, x.reshape(n, t_len, -1, p.depth))
        elif node.op == "take":
            y = K.take(node.attrs["index"], flat)
        elif node.op in ("reshape", "last"):
            y = x
        else:
            raise AssertionError(f"integer simulator has no op {node.op}")
        env[node.outputs[0]] = np.asarray(y).reshape(n, t_len, *out.shape)
    return env


def quantize_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Host-side quantisation of the float model input [N, T, F] -> int8."""
    t = graph.tensors[graph.inputs[0]]
    return quantize_values(x.reshape(*x.shape[:2], *t.shape).astype(np.float64), t.q)


def dequantize_output(graph: Graph, name: str, q: np.ndarray) -> np.ndarray:
    return dequantize_values(q, graph.tensors[name].q)

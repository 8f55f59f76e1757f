"""Float reference evaluator of the float IR (numpy, float64).

Activations are arrays [N, T, *shape]: N sequences, T steps. A `final` tensor at step t holds
the value it would have if the sequence ended at t, so the model's answer is at t = len - 1.
With ``taps`` it also returns each LSTM's gate pre-activations and cell state, which calibration
needs.
"""

from __future__ import annotations

import numpy as np

from rnnq.ir import Graph, Node


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def lstm_float(x: np.ndarray, w, r, b, h0, c0):
    """ONNX LSTM (gates i, o, f, c) over x [N, T, I] -> (y, c, gate pre-activations)."""
    n, t_len, _ = x.shape
    hsz = r.shape[1]
    h = np.broadcast_to(h0, (n, hsz)).astype(np.float64)
    c = np.broadcast_to(c0, (n, hsz)).astype(np.float64)
    xw = x @ w.T + b  # the input projection for all steps at once
    ys = np.empty((n, t_len, hsz))
    cs = np.empty((n, t_len, hsz))
    gs = np.empty((n, t_len, 4 * hsz))
    for t in range(t_len):
        g = xw[:, t] + h @ r.T
        gs[:, t] = g
        i, o, f = _sigmoid(g[:, :hsz]), _sigmoid(g[:, hsz : 2 * hsz]), _sigmoid(g[:, 2 * hsz : 3 * hsz])
        c = f * c + i * np.tanh(g[:, 3 * hsz :])
        h = o * np.tanh(c)
        ys[:, t], cs[:, t] = h, c
    return ys, cs, gs


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


_UNARY = {
    "relu": lambda v: np.maximum(v, 0.0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softmax": _softmax,
}
_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply}


def run_float(graph: Graph, x: np.ndarray, taps: bool = False) -> dict[str, np.ndarray]:
    """Evaluate the float graph on x [N, T, *input_shape]; returns every activation by name.

    With taps, LSTM gate pre-activations and cell states appear as '<node output>:gates' and
    '<node output>:cell'.
    """
    t_in = graph.tensors[graph.inputs[0]]
    n, t_len = x.shape[:2]
    env: dict[str, np.ndarray] = {graph.inputs[0]: x.astype(np.float64).reshape(n, t_len, *t_in.shape)}

    def val(name: str) -> np.ndarray:
        t = graph.tensors[name]
        return t.data.astype(np.float64) if t.kind == "const" else env[name]

    for node in graph.nodes:
        out = graph.tensors[node.outputs[0]]
        res = _eval(node, val, n, t_len)
        if node.op == "lstm":
            y, c, g = res
            env[node.outputs[0]], env[node.outputs[1]] = y, c
            if taps:
                env[node.outputs[0] + ":gates"] = g
            continue
        env[node.outputs[0]] = res.reshape(n, t_len, *out.shape)
    return env


def _eval(node: Node, val, n: int, t_len: int):
    op = node.op
    if op == "lstm":
        x, w, r, b, h0, c0 = (val(i) for i in node.inputs)
        return lstm_float(x.reshape(n, t_len, -1), w, r, b, h0, c0)
    if op == "dense":
        x, w, b = (val(i) for i in node.inputs)
        y = x @ w.T + b
        return np.maximum(y, 0.0) if node.attrs.get("relu") else y
    if op in _BINARY:
        return _BINARY[op](val(node.inputs[0]), val(node.inputs[1]))
    if op in _UNARY:
        return _UNARY[op](val(node.inputs[0]))
    if op in ("reshape", "last"):
        return val(node.inputs[0])
    if op == "take":
        x = val(node.inputs[0])
        return x.reshape(n, t_len, -1)[:, :, node.attrs["index"]]
    raise AssertionError(f"float reference has no op {op}")

"""Bit-exact integer simulator: THE specification of what the generated code computes.

Evaluates an INTEGER-stage graph on int8 inputs [N, T, *shape], vectorised over the N
sequences, with the kernels of rnnq.sim.kernels (built from rnnq.numerics only). Like the float
reference, a `final` tensor holds at step t its value as if the sequence ended at t; in
whole-sequence models (a reverse recurrence) only its value at the last real step counts.
"""

from __future__ import annotations

import numpy as np

from rnnq.ir import Graph
from rnnq.passes.quantize import dequantize_values, quantize_values
from rnnq.sim import kernels as K
from rnnq.sim.float_ref import per_direction, state_rows

_SEQUENCES = {"qlstm": K.lstm_sequence, "qgru": K.gru_sequence, "qrnn": K.rnn_sequence}


def _recurrent(graph: Graph, node, x: np.ndarray, lengths: np.ndarray, states: dict):
    """x [N, T, B, I] -> outputs [N, T, B, H] (y, and c for the LSTM)."""
    p = node.attrs["params"]
    hsz = p.hidden_size
    n, batch = x.shape[0], x.shape[2]
    init = {}
    for key, which, default in (("h0", "h", p.h0), ("c0", "c", getattr(p, "c0", None))):
        if default is None:
            continue
        given = state_rows(graph, node, states, which, n)
        init[key] = given if given is not None else np.tile(default.reshape(batch, hsz), (n, 1))

    def run(xm: np.ndarray):
        out = _SEQUENCES[node.op](p, xm, **init)
        return out if isinstance(out, tuple) else (out,)

    return per_direction(x, lengths, node.attrs.get("reverse", False), run)


def run_integer(graph: Graph, xq: np.ndarray, lengths: np.ndarray | None = None,
                states: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Evaluate on already-quantised input xq [N, T, *input_shape]; every tensor by name.

    states: quantised initial-state model inputs (quantize_states)."""
    n, t_len = xq.shape[:2]
    lengths = np.full(n, t_len) if lengths is None else np.asarray(lengths)
    t_in = graph.tensors[graph.inputs[0]]
    dt = np.int64 if t_in.dtype == "int64" else np.int8
    env: dict[str, np.ndarray] = {graph.inputs[0]: xq.astype(dt).reshape(n, t_len, *t_in.shape)}

    def val(name: str) -> np.ndarray:
        t = graph.tensors[name]
        return t.data if t.kind == "const" else env[name]

    for node in graph.nodes:
        x = val(node.inputs[0])
        flat = x.reshape(n, t_len, -1)
        p = node.attrs.get("params")
        if node.op in _SEQUENCES:
            ys = _recurrent(graph, node, x, lengths, states or {})
        elif node.op == "qdense":
            ys = K.dense(p, x.reshape(n, t_len, -1, p.in_features))
        elif node.op == "qbinary":
            b = val(node.inputs[1])
            b = (b.reshape(1, 1, -1) if graph.tensors[node.inputs[1]].kind == "const"
                 else b.reshape(n, t_len, -1))
            ys = K.binary(p, flat, np.broadcast_to(b, flat.shape))
        elif node.op == "qlut":
            ys = K.lut(node.attrs["table"], x)
        elif node.op == "qsoftmax":
            ys = K.softmax(p, x.reshape(n, t_len, -1, p.depth))
        elif node.op == "qrequant":
            ys = K.requant_s8(p, x)
        elif node.op == "qmean_time":
            ys = K.mean_time(p, flat)
        elif node.op == "qembed":
            ys = K.embed(p, x)
        elif node.op == "take":
            ys = K.take(node.attrs["index"], flat)
        elif node.op == "concat":
            ys = np.concatenate([val(i) for i in node.inputs], axis=2 + node.attrs["axis"])
        elif node.op == "first":
            ys = np.broadcast_to(x[:, :1], x.shape)
        elif node.op in ("reshape", "last"):
            ys = x
        else:
            raise AssertionError(f"integer simulator has no op {node.op}")
        for name, v in zip(node.outputs, ys if isinstance(ys, (tuple, list)) else (ys,)):
            env[name] = np.asarray(v).reshape(n, t_len, *graph.tensors[name].shape)
    return env


def quantize_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Host-side quantisation of the model input [N, T, F] (float -> int8; ids stay ints)."""
    t = graph.tensors[graph.inputs[0]]
    if t.dtype == "int64":
        return x.astype(np.int64).reshape(*x.shape[:2], *t.shape)
    return quantize_values(x.reshape(*x.shape[:2], *t.shape).astype(np.float64), t.q)


def state_formats(graph: Graph) -> dict[str, list]:
    """Per initial-state input and direction: (ctype, scale, zero point) of its values."""
    out: dict[str, list] = {}
    for node in graph.nodes:
        for which, (name, d) in node.attrs.get("state_inputs", {}).items():
            p = node.attrs["params"]
            if which == "h":
                y = graph.tensors[node.outputs[0]]
                fmt = ("int8_t", float(y.q.scale), int(y.q.zero_point))
            else:
                fmt = ("int16_t", 2.0 ** -p.cell_frac, 0)
            lst = out.setdefault(name, [])
            lst += [None] * (d + 1 - len(lst))
            lst[d] = fmt
    return out


def quantize_states(graph: Graph, states: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Host-side quantisation of initial-state inputs, each direction with its own format."""
    res = {}
    for name, fmts in state_formats(graph).items():
        if name not in states:
            continue
        info = graph.meta["state_inputs"][name]
        v = states[name]
        q = np.empty(v.shape, np.int64)
        for d, (ctype, scale, zp) in enumerate(fmts):
            sl = (slice(None), slice(None), d) if info["layout"] else (slice(None), d)
            bits = 16 if ctype == "int16_t" else 8
            q[sl] = np.clip(np.floor(np.abs(v[sl]) / scale + 0.5) * np.sign(v[sl]) + zp,
                            -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
        res[name] = q
    return res


def dequantize_output(graph: Graph, name: str, q: np.ndarray) -> np.ndarray:
    return dequantize_values(q, graph.tensors[name].q)

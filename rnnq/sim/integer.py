"""Bit-exact integer simulator: THE specification of what the generated C computes.

Evaluates an INTEGER-stage graph on int8 (or int16) inputs [N, T, *shape], vectorised over the N
sequences, with the kernels of rnnq.sim.kernels (built from rnnq.numerics only). Like the float
reference, a `final` tensor holds at step t its value as if the sequence ended at t; in
whole-sequence models (a reverse recurrence) only its value at the last real step counts.

`NODES` is the kernel table: one evaluator per integer IR op, written here once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rnnq import numerics as nx
from rnnq.ir import Graph, Node
from rnnq.ir.states import state_targets, state_values
from rnnq.sim import kernels as K
from rnnq.sim.float_ref import per_direction, state_rows


@dataclass
class _Run:
    """What a node evaluator sees: the graph, the values so far, the sequences' shape."""

    graph: Graph
    env: dict[str, np.ndarray]
    n: int
    t_len: int
    lengths: np.ndarray
    states: dict[str, np.ndarray]

    def val(self, name: str) -> np.ndarray:
        t = self.graph.tensors[name]
        return t.data if t.kind == "const" else self.env[name]

    def flat(self, name: str) -> np.ndarray:
        return self.val(name).reshape(self.n, self.t_len, -1)


_SEQUENCES = {"qlstm": K.lstm_sequence, "qgru": K.gru_sequence, "qrnn": K.rnn_sequence}


def _recurrent(r: _Run, node: Node):
    """x [N, T, B, I] -> outputs [N, T, B, H] (y, and c for the LSTM)."""
    x = r.val(node.inputs[0])
    p = node.attrs["params"]
    hsz = p.hidden_size
    batch = x.shape[2]
    init = {}
    for key, which, default in (("h0", "h", p.h0), ("c0", "c", getattr(p, "c0", None))):
        if default is None:
            continue
        given = state_rows(node, r.states, which, r.n, hsz)
        init[key] = given if given is not None else np.tile(default.reshape(batch, hsz), (r.n, 1))

    def run(xm: np.ndarray):
        out = _SEQUENCES[node.op](p, xm, **init)
        return out if isinstance(out, tuple) else (out,)

    return per_direction(x, r.lengths, node.attrs.get("reverse", False), run)


def _binary(r: _Run, node: Node):
    a = r.flat(node.inputs[0])
    b = r.val(node.inputs[1])
    b = (b.reshape(1, 1, -1) if r.graph.tensors[node.inputs[1]].kind == "const"
         else b.reshape(r.n, r.t_len, -1))
    return K.binary(node.attrs["params"], a, np.broadcast_to(b, a.shape))


def _per_row(kernel: Callable, width: str):
    """A kernel over rows of `width` (a params field) of the node's input."""
    def ev(r: _Run, node: Node):
        p = node.attrs["params"]
        return kernel(p, r.val(node.inputs[0]).reshape(r.n, r.t_len, -1, getattr(p, width)))
    return ev


def _first(r: _Run, node: Node):
    x = r.val(node.inputs[0])
    return np.broadcast_to(x[:, :1], x.shape)


#: integer IR op -> evaluator(run, node) -> output value(s)
NODES: dict[str, Callable[[_Run, Node], object]] = {
    **dict.fromkeys(_SEQUENCES, _recurrent),
    "qdense": _per_row(K.dense, "in_features"),
    "qsoftmax": _per_row(K.softmax, "depth"),
    "qbinary": _binary,
    "qmagnitude": lambda r, n: K.magnitude(n.attrs["params"], *(r.val(i) for i in n.inputs)),
    "qlut": lambda r, n: K.lut(n.attrs["table"], r.val(n.inputs[0])),
    "qrequant": lambda r, n: (K.requant_s16 if r.graph.tensors[n.outputs[0]].dtype == "int16"
                              else K.requant_s8)(n.attrs["params"], r.val(n.inputs[0])),
    "qmean_time": lambda r, n: K.mean_time(n.attrs["params"], r.flat(n.inputs[0])),
    "qembed": lambda r, n: K.embed(n.attrs["params"], r.val(n.inputs[0])),
    "take": lambda r, n: K.take(n.attrs["index"], r.flat(n.inputs[0]),
                                int(r.graph.tensors[n.inputs[0]].q.zero_point)
                                if n.attrs.get("fill") else None),
    "concat": lambda r, n: np.concatenate([r.val(i) for i in n.inputs],
                                          axis=2 + n.attrs["axis"]),
    "first": _first,
    "reshape": lambda r, n: r.val(n.inputs[0]),
    "last": lambda r, n: r.val(n.inputs[0]),  # "last" at step t is the value at t
}


def run_integer(graph: Graph, xq: np.ndarray, lengths: np.ndarray | None = None,
                states: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Evaluate on already-quantised input xq [N, T, *input_shape]; every tensor by name.

    states: quantised initial-state model inputs (quantize_states)."""
    n, t_len = xq.shape[:2]
    lengths = np.full(n, t_len) if lengths is None else np.asarray(lengths)
    t_in = graph.tensors[graph.inputs[0]]
    dt = {"int64": np.int64, "int16": np.int16}.get(t_in.dtype, np.int8)
    env: dict[str, np.ndarray] = {graph.inputs[0]: xq.astype(dt).reshape(n, t_len, *t_in.shape)}
    r = _Run(graph, env, n, t_len, lengths, states or {})
    for node in graph.nodes:
        ev = NODES.get(node.op)
        if ev is None:
            raise AssertionError(f"integer simulator has no op {node.op}")
        ys = ev(r, node)
        for name, v in zip(node.outputs, ys if isinstance(ys, (tuple, list)) else (ys,)):
            env[name] = np.asarray(v).reshape(n, t_len, *graph.tensors[name].shape)
    return env


def quantize_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Host-side quantisation of the model input [N, T, F] (float -> int8 or int16; ids stay
    ints)."""
    t = graph.tensors[graph.inputs[0]]
    if t.dtype == "int64":
        return x.astype(np.int64).reshape(*x.shape[:2], *t.shape)
    v = x.reshape(*x.shape[:2], *t.shape).astype(np.float64)
    bits, dt = (16, np.int16) if t.dtype == "int16" else (8, np.int8)
    return nx.quantize(v, t.q.scale, t.q.zero_point, bits=bits).astype(dt)


def state_formats(graph: Graph) -> dict[str, dict]:
    """Per state input: the C type its values take (int32 when any element is an LSTM cell
    state, else int16 when any is a 16-bit h, else int8) and per element the scale, zero point
    and bits of the state it sets;
    `parts` describes each recurrent state it sets (elements of no state: scale 1, zero 0)."""
    out: dict[str, dict] = {}
    for name, entries in state_targets(graph).items():
        size = int(np.prod(graph.meta["state_inputs"][name]["shape"], dtype=np.int64))
        scale, zp, bits = np.ones(size), np.zeros(size, np.int64), np.full(size, 8)
        parts = []
        for n, which, index in entries:
            if which == "h":
                y = graph.tensors[n.outputs[0]]
                fmt = (float(y.q.scale), int(y.q.zero_point), 16 if y.dtype == "int16" else 8)
            else:
                fmt = (2.0 ** -n.attrs["params"].cell_frac, 0, 32)
            scale[index], zp[index], bits[index] = fmt
            parts.append({"node": n.name, "which": which, "index": index, "scale": fmt[0],
                          "zero_point": fmt[1], "bits": fmt[2]})
        out[name] = {"ctype": f"int{bits.max()}_t", "scale": scale,
                     "zero_point": zp, "bits": bits, "parts": parts}
    return out


def quantize_states(graph: Graph, states: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Host-side quantisation of state inputs [N, *shape], each element in the format of the
    state it sets; a state input missing from `states` is zeros (as the float model sees it)."""
    res = {}
    for name, f in state_formats(graph).items():
        shape = graph.meta["state_inputs"][name]["shape"]
        v = states.get(name)
        if v is None:
            continue
        flat = np.asarray(v, np.float64).reshape(len(v), -1)
        q = np.select([f["bits"] == b for b in (8, 16)],
                      [nx.quantize(flat, f["scale"], f["zero_point"], bits=b) for b in (8, 16)],
                      nx.quantize(flat, f["scale"], f["zero_point"], bits=32))
        res[name] = q.reshape(len(v), *shape)
    return res


def state_outputs(graph: Graph, env: dict[str, np.ndarray], dequantize: bool = True
                  ) -> dict[str, np.ndarray]:
    """The state outputs of a graph run once per timestep, [N, T, *shape] at every step: the
    carried states in the layout of their state inputs (integers, or real values)."""
    out = {}
    fmts = state_formats(graph)
    for name, info in graph.meta.get("state_inputs", {}).items():
        if "output" not in info:
            continue
        f = fmts[name]
        q = state_values(graph, env, name).astype(np.int64)
        if dequantize:
            flat = q.reshape(*q.shape[:2], -1)
            q = nx.dequantize(flat, f["scale"], f["zero_point"]).reshape(q.shape)
        out[info["output"]] = q
    return out


def dequantize_output(graph: Graph, name: str, q: np.ndarray) -> np.ndarray:
    t = graph.tensors[name]
    return nx.dequantize(q, t.q.scale, t.q.zero_point)

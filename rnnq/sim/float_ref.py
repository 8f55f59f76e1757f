"""Float reference evaluator of the float IR (numpy, float64).

Activations are arrays [N, T, *shape]: N sequences, T steps, sequence n real for its first
lengths[n] steps. A `final` tensor at step t holds the value it would have if the sequence ended
at t (streamable models); in whole-sequence models (a reverse recurrence) only its value at
t = lengths[n] - 1 is meaningful. With ``taps`` it also returns recurrent gate pre-activations
('<y>:gates'), which calibration needs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rnnq.ir import Graph, Node
from rnnq.ir.ops import INITIAL_STATES, RECURRENT, hard_sigmoid


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def _gate_fn(attrs: dict):
    hard = hard_sigmoid(attrs)
    if hard is not None:
        a, b = hard
        return lambda v: np.clip(a * v + b, 0.0, 1.0)
    return sigmoid


def _clip(attrs: dict):
    c = attrs.get("clip")
    return (lambda v: v) if c is None else (lambda v: np.clip(v, -c, c))


def _keep(v):
    return v


def _steps(x: np.ndarray) -> np.ndarray:
    """x [M, T, I] as [T, M, I], each step contiguous: one BLAS product per step is several
    times faster than one stacked product over [M, T, I] (and needs no [M, T, 4H] buffer)."""
    return np.ascontiguousarray(np.moveaxis(x, 1, 0), dtype=np.float64)


def _batch_first(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """[T, M, K] per-step buffers -> [M, T, K]."""
    return tuple(np.moveaxis(a, 0, 1) for a in arrays)


def lstm_float(x, w, r, b, h0, c0, p, attrs, qh=_keep, qc=_keep):
    """ONNX LSTM one direction (gates i, o, f, c) over x [M, T, I] -> (y, c, gate pre-acts).
    qh, qc: applied to the states at every step (fake quantisation; identity by default)."""
    m, t_len, _ = x.shape
    hsz = r.shape[1]
    act, clip = _gate_fn(attrs), _clip(attrs)
    h = np.broadcast_to(h0, (m, hsz)).astype(np.float64)
    c = np.broadcast_to(c0, (m, hsz)).astype(np.float64)
    pi, po, pf = p[:hsz], p[hsz : 2 * hsz], p[2 * hsz :]
    xs, wt, rt = _steps(x), np.ascontiguousarray(w.T), np.ascontiguousarray(r.T)
    ys, cs, gs = (np.empty((t_len, m, k)) for k in (hsz, hsz, 4 * hsz))
    for t in range(t_len):
        g = xs[t] @ wt + b + h @ rt
        gs[t] = g
        gi, go, gf, gc = (g[:, k * hsz : (k + 1) * hsz] for k in range(4))
        i = act(clip(gi + pi * c))
        f = 1.0 - i if attrs.get("input_forget") else act(clip(gf + pf * c))
        c = qc(f * c + i * np.tanh(clip(gc)))
        o = act(clip(go + po * c))
        h = qh(o * np.tanh(c))
        ys[t], cs[t] = h, c
    return _batch_first(ys, cs, gs)


def gru_float(x, w, r, wb, rb, h0, attrs, qh=_keep):
    """ONNX GRU one direction (gates z, r, h) -> (y, gate pre-activations)."""
    m, t_len, _ = x.shape
    hsz = r.shape[1]
    act, clip = _gate_fn(attrs), _clip(attrs)
    h = np.broadcast_to(h0, (m, hsz)).astype(np.float64)
    xs, wt = _steps(x), np.ascontiguousarray(w.T)
    rzr, rht = np.ascontiguousarray(r[: 2 * hsz].T), np.ascontiguousarray(r[2 * hsz :].T)
    ys, gs = np.empty((t_len, m, hsz)), np.empty((t_len, m, 3 * hsz))
    for t in range(t_len):
        xw = xs[t] @ wt + wb
        gzr = xw[:, : 2 * hsz] + h @ rzr + rb[: 2 * hsz]
        gz, gr = gzr[:, :hsz], gzr[:, hsz:]
        z, rg = act(clip(gz)), act(clip(gr))
        if attrs.get("linear_before_reset"):
            gh = xw[:, 2 * hsz :] + rg * (h @ rht + rb[2 * hsz :])
        else:
            gh = xw[:, 2 * hsz :] + (rg * h) @ rht + rb[2 * hsz :]
        n = np.tanh(clip(gh))
        h = qh((1.0 - z) * n + z * h)
        ys[t] = h
        gs[t, :, : 2 * hsz], gs[t, :, 2 * hsz :] = gzr, gh
    return _batch_first(ys, gs)


_RNN_ACTS = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0), "sigmoid": sigmoid}


def rnn_float(x, w, r, b, h0, attrs, qh=_keep):
    m, t_len, _ = x.shape
    hsz = r.shape[1]
    f, clip = _RNN_ACTS[attrs.get("act", "tanh")], _clip(attrs)
    h = np.broadcast_to(h0, (m, hsz)).astype(np.float64)
    xs, wt, rt = _steps(x), np.ascontiguousarray(w.T), np.ascontiguousarray(r.T)
    ys, gs = np.empty((t_len, m, hsz)), np.empty((t_len, m, hsz))
    for t in range(t_len):
        g = xs[t] @ wt + b + h @ rt
        gs[t] = g
        h = qh(f(clip(g)))
        ys[t] = h
    return _batch_first(ys, gs)


def reverse_within(a: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Reverse each sequence's first lengths[n] steps in place of order; padding stays put.

    The permutation is its own inverse."""
    n, t_len = a.shape[:2]
    t = np.arange(t_len)[None, :]
    idx = np.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return a[np.arange(n)[:, None], idx]


def per_direction(x: np.ndarray, lengths: np.ndarray, reverse: bool, fn):
    """Run fn (over [M, T, I] -> tuple of [M, T, K]) on x [N, T, B, I] per batch row,
    reversing time within each sequence's length for a reverse direction."""
    n, t_len, batch, isz = x.shape
    if reverse:
        x = reverse_within(x, lengths)
    res = fn(np.moveaxis(x, 2, 1).reshape(n * batch, t_len, isz))
    outs = []
    for r in res:
        r = np.moveaxis(r.reshape(n, batch, t_len, r.shape[-1]), 1, 2)
        outs.append(reverse_within(r, lengths) if reverse else r)
    return outs


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


_TINY32 = float(np.finfo(np.float32).tiny)  # log/reciprocal at 0: finite, as large as float32

#: elementwise functions of one operand, f(v, node attrs); the integer model's tables are
#: built from the same functions (passes/quantize.py)
UNARY_FNS: dict[str, Callable[[np.ndarray, dict], np.ndarray]] = {
    "relu": lambda v, a: np.maximum(v, 0.0),
    "sigmoid": lambda v, a: sigmoid(v),
    "tanh": lambda v, a: np.tanh(v),
    "square": lambda v, a: np.square(v),
    "sqrt": lambda v, a: np.sqrt(np.maximum(v, 0.0)),
    "leaky_relu": lambda v, a: np.where(v < 0, a["alpha"] * v, v),
    "log": lambda v, a: np.log(np.maximum(v, _TINY32)),
    "exp": lambda v, a: np.exp(v),
    "abs": lambda v, a: np.abs(v),
    "softplus": lambda v, a: np.logaddexp(v, 0.0),
    "elu": lambda v, a: np.where(v < 0, a["alpha"] * np.expm1(np.minimum(v, 0.0)), v),
    "hard_sigmoid": lambda v, a: np.clip(a["alpha"] * v + a["beta"], 0.0, 1.0),
    "hard_swish": lambda v, a: v * np.clip(v / 6.0 + 0.5, 0.0, 1.0),
    "clip": lambda v, a: np.clip(v, a["lo"], a["hi"]),
    "reciprocal": lambda v, a: 1.0 / np.where(v == 0, _TINY32, v),
}
_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply}
_RECURRENT = {"lstm": lstm_float, "gru": gru_float, "rnn": rnn_float}


def run_float(graph: Graph, x: np.ndarray, taps: bool = False,
              lengths: np.ndarray | None = None,
              states: dict[str, np.ndarray] | None = None,
              fake: dict[str, Callable] | None = None) -> dict[str, np.ndarray]:
    """Evaluate the float graph on x [N, T, *input_shape]; returns every activation by name.

    states: values of initial-state model inputs, [N, *ONNX shape] (zeros when absent).
    fake: tensor name -> function applied to that tensor's values where they are produced
    (a recurrent state at every step, the model input on entry) or, for a constant (weights),
    where it is read: what quantising only those tensors costs."""
    fake = fake or {}
    t_in = graph.tensors[graph.inputs[0]]
    n, t_len = x.shape[:2]
    lengths = np.full(n, t_len) if lengths is None else np.asarray(lengths)
    dt = np.int64 if t_in.dtype == "int64" else np.float64
    env: dict[str, np.ndarray] = {graph.inputs[0]: x.astype(dt).reshape(n, t_len, *t_in.shape)}
    if graph.inputs[0] in fake:
        env[graph.inputs[0]] = fake[graph.inputs[0]](env[graph.inputs[0]])

    def val(name: str) -> np.ndarray:
        t = graph.tensors[name]
        if t.kind != "const":
            return env[name]
        v = t.data.astype(np.float64)
        return fake[name](v) if name in fake else v

    for node in graph.nodes:
        if node.op in RECURRENT and any(o in fake for o in node.outputs):
            res = _recurrent(graph, node, val, lengths, states or {},
                             {k: fake[o] for k, o in zip(("qh", "qc"), node.outputs) if o in fake})
        else:
            res = _eval(graph, node, val, lengths, states or {})
        if not isinstance(res, tuple):
            res = (res,)
        for name, v in zip(node.outputs, res):
            v = v.reshape(n, t_len, *graph.tensors[name].shape)
            env[name] = fake[name](v) if name in fake else v
        if taps and node.op in RECURRENT:
            env[node.outputs[0] + ":gates"] = res[-1]
    return env




def state_rows(node: Node, states: dict, which: str, n: int, hsz: int):
    """The values a state input gives this node's initial state `which`: [N * B, H], or None
    when the input is not in `states`."""
    name, index = node.attrs.get("state_inputs", {}).get(which, (None, None))
    if name is None or name not in states:
        return None
    v = np.asarray(states[name]).reshape(n, -1)[:, index]  # [N, B * H]
    return v.reshape(-1, hsz)


def _recurrent(graph: Graph, node: Node, val, lengths: np.ndarray, states: dict,
               quant: dict | None = None):
    # float64 throughout: a float32 operand would take numpy's matmul off BLAS (a 30x slower
    # loop) and the result is float64 either way
    x, *consts = (np.asarray(val(i), np.float64) for i in node.inputs)
    fn = _RECURRENT[node.op]
    for k, which in zip((i - 1 for i in INITIAL_STATES[node.op]), "hc"):  # [B, H] -> a row per (sequence, batch)
        given = state_rows(node, states, which, x.shape[0], consts[k].shape[-1])
        consts[k] = given if given is not None else np.tile(consts[k], (x.shape[0], 1))
    outs = per_direction(x, lengths, node.attrs.get("reverse", False),
                         lambda xm: fn(xm, *consts, node.attrs, **(quant or {})))
    return tuple(outs)


def _dense(graph, node: Node, val, lengths, states):
    x, w, b = (val(i) for i in node.inputs)
    y = x @ w.T + b
    return np.maximum(y, 0.0) if node.attrs.get("relu") else y


def _first(graph, node: Node, val, lengths, states):
    v = val(node.inputs[0])
    return np.broadcast_to(v[:, :1], v.shape)


def _take(graph, node: Node, val, lengths, states):
    v = val(node.inputs[0])
    idx = node.attrs["index"]
    out = v.reshape(*v.shape[:2], -1)[:, :, idx]
    return np.where(idx < 0, 0.0, out) if node.attrs.get("fill") else out


def _mean_time(graph, node: Node, val, lengths, states):
    v = val(node.inputs[0])
    steps = np.arange(1, v.shape[1] + 1).reshape(1, -1, *([1] * (v.ndim - 2)))
    return np.cumsum(v, axis=1) / steps


def _embed(graph, node: Node, val, lengths, states):
    ids, table = val(node.inputs[0]), val(node.inputs[1])
    ids = ids.astype(np.int64)
    ids = np.where(ids < 0, ids + table.shape[0], ids)
    return table[np.clip(ids, 0, table.shape[0] - 1)]


def _elementwise(fn):
    """An evaluator applying fn to the node's inputs (one or two)."""
    def ev(graph, node: Node, val, lengths, states):
        return fn(*(val(i) for i in node.inputs))
    return ev


def _unary(fn):
    def ev(graph, node: Node, val, lengths, states):
        return fn(val(node.inputs[0]), node.attrs)
    return ev


def _concat(graph, node: Node, val, lengths, states):
    return np.concatenate([val(i) for i in node.inputs], axis=2 + node.attrs["axis"])


def _same(graph, node: Node, val, lengths, states):
    """reshape, and "last" (at step t, the value at t)."""
    return val(node.inputs[0])


#: float IR op -> evaluator(graph, node, val, lengths, states) -> output value(s)
NODES = {
    **dict.fromkeys(_RECURRENT, _recurrent),
    **{op: _elementwise(f) for op, f in _BINARY.items()}, "softmax": _elementwise(_softmax),
    **{op: _unary(f) for op, f in UNARY_FNS.items()},
    "dense": _dense, "reshape": _same, "last": _same, "first": _first, "take": _take,
    "concat": _concat, "mean_time": _mean_time, "embed": _embed,
    "magnitude": _elementwise(lambda *v: np.sqrt(sum(np.square(a) for a in v))),
}


def _eval(graph: Graph, node: Node, val, lengths: np.ndarray, states: dict):
    ev = NODES.get(node.op)
    if ev is None:
        raise AssertionError(f"float reference has no op {node.op}")
    return ev(graph, node, val, lengths, states)

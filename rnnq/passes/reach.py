"""What values each tensor of a float graph can reach whatever the input: interval arithmetic
from the model input (unbounded: data may drift anywhere) through the graph. Calibration's
headroom widens a range only up to this (README "Numerics", headroom): a tanh or sigmoid
output, a recurrent h, a dense layer or a sum of bounded values cannot drift past what its
operands allow, so widening it would only coarsen its grid; the model input and what follows
from it without a bound (an LSTM cell, a linear layer of the input) keep the full headroom.
"""

from __future__ import annotations

import numpy as np

from rnnq.ir import Graph, Node
from rnnq.ir.ops import BINARY, REARRANGE, RECURRENT
from rnnq.sim.float_ref import UNARY_FNS

Interval = tuple[float, float]
FREE: Interval = (-np.inf, np.inf)

#: The hidden state's bounds by recurrent kind (and vanilla RNN activation); an LSTM's cell
#: (its second output) is unbounded.
_STATE = {"lstm": (-1.0, 1.0), "gru": (-1.0, 1.0), ("rnn", "tanh"): (-1.0, 1.0),
          ("rnn", "sigmoid"): (0.0, 1.0), ("rnn", "relu"): (0.0, np.inf)}
#: Unary functions that are monotone on the whole line: the image of [lo, hi] is spanned by
#: the images of its ends (log and sqrt as float_ref defines them at and below 0).
_MONOTONE = {"relu", "sigmoid", "tanh", "sqrt", "log", "exp", "softplus", "clip",
             "hard_sigmoid"}


def _prod(a: np.ndarray, b: float) -> np.ndarray:
    """a * b with 0 * inf = 0 (a zero weight ignores an unbounded operand)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(a == 0, 0.0, a * b)


def _span(*vals) -> Interval:
    v = np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in vals])
    v = v[~np.isnan(v)]
    return (float(v.min()), float(v.max())) if v.size else FREE


def _unary(n: Node, x: Interval) -> Interval:
    fn = UNARY_FNS[n.op]
    with np.errstate(all="ignore"):
        ends = fn(np.array(x, np.float64), n.attrs)
    if n.op in _MONOTONE or (n.op in ("leaky_relu", "elu") and n.attrs["alpha"] >= 0):
        return _span(ends)
    if n.op in ("abs", "square"):
        return (0.0 if x[0] <= 0 <= x[1] else float(min(ends)), float(max(ends)))
    return FREE


def _dense(g: Graph, n: Node, x: Interval) -> Interval:
    w = g.tensors[n.inputs[1]].data.astype(np.float64)
    b = g.tensors[n.inputs[2]].data.astype(np.float64) if len(n.inputs) > 2 else 0.0
    pos, neg = np.maximum(w, 0.0), np.minimum(w, 0.0)
    with np.errstate(invalid="ignore"):
        lo = b + (_prod(pos, x[0]) + _prod(neg, x[1])).sum(axis=-1)
        hi = b + (_prod(pos, x[1]) + _prod(neg, x[0])).sum(axis=-1)
    out = _span(lo, hi)
    return (max(out[0], 0.0), max(out[1], 0.0)) if n.attrs.get("relu") else out


def _binary(op: str, a: Interval, b: Interval) -> Interval:
    with np.errstate(invalid="ignore"):
        if op == "add":
            return _span(a[0] + b[0], a[1] + b[1])
        if op == "sub":
            return _span(a[0] - b[1], a[1] - b[0])
        return _span([_prod(np.array(p), q) for p in a for q in b])


def reachable(g: Graph, inputs: dict[str, Interval] | None = None) -> dict[str, Interval]:
    """{tensor name: the interval its values can reach for any model input} (FREE where
    nothing bounds them); constants reach their own extremes. `inputs`: bounds of model
    inputs known from their data (calibrate.hard_edges), FREE by default."""
    out: dict[str, Interval] = dict(inputs or {})
    for t in g.tensors.values():
        if t.kind == "const" and t.data is not None and t.data.size:
            out[t.name] = _span(t.data)

    def r(name: str) -> Interval:
        return out.get(name, FREE)

    for n in g.nodes:
        ins = [r(i) for i in n.inputs]
        if n.op in RECURRENT:
            key = (n.op, n.attrs.get("act", "tanh")) if n.op == "rnn" else n.op
            res = [_STATE.get(key, FREE)] + [FREE] * (len(n.outputs) - 1)
        elif n.op in REARRANGE or n.op == "mean_time":
            res = [_span(*ins[0], 0.0) if n.attrs.get("fill") else ins[0]]
        elif n.op == "concat":
            res = [_span(*ins)]
        elif n.op in UNARY_FNS:
            res = [_unary(n, ins[0])]
        elif n.op == "dense":
            res = [_dense(g, n, ins[0])]
        elif n.op in BINARY:
            res = [_binary(n.op, ins[0], ins[1])]
        elif n.op == "softmax":
            res = [(0.0, 1.0)]
        elif n.op == "magnitude":
            top = float(np.sqrt(sum(max(abs(a), abs(b)) ** 2 for a, b in ins)))
            res = [(0.0, top)]
        elif n.op == "embed":
            res = [ins[1]]
        else:
            res = [FREE] * len(n.outputs)
        out.update(zip(n.outputs, res, strict=False))
    return out

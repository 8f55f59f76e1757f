"""State inputs and state outputs of a graph run once per timestep (streaming exports).

A *state input* is a model input whose elements set recurrent nodes' initial states: each
recurrent node (one direction) carries ``attrs["state_inputs"] = {which: (input, index)}``,
``index[k]`` the flat element of the input that sets element k of its [B, H] state ``which``
("h" or "c"). A *state output* is a model output that returns, element for element, the states
its paired state input sets, as they are after the call; rnnq then carries the state itself
(the recurrent node's state) and the output becomes a view of it: ``graph.meta["state_inputs"]
[input]["output"]``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rnnq.ir import Graph, Node, RnnqError
from rnnq.ir.ops import recurrent_kind

_SHIFT = 32  # a state element's code: (tensor number << _SHIFT) | flat index


def state_tensor(node: Node, which: str) -> str:
    """The recurrent node's output that holds its state `which` ("h" or "c") at each step."""
    return node.outputs[0 if which == "h" else 1]


def state_targets(g: Graph) -> dict[str, list[tuple[Node, str, np.ndarray]]]:
    """State input -> [(recurrent node, which, index into the input per [B, H] element)]."""
    out: dict[str, list] = {}
    for n in g.nodes:
        for which, (name, index) in n.attrs.get("state_inputs", {}).items():
            out.setdefault(name, []).append((n, which, np.asarray(index)))
    return out


def _codes(g: Graph) -> dict[str, int]:
    names = [state_tensor(n, w) for n in g.nodes if recurrent_kind(n.op)
             for w in ("hc" if recurrent_kind(n.op) == "lstm" else "h")]
    return {name: k for k, name in enumerate(names)}


def _sources(g: Graph, name: str, codes: dict[str, int]) -> np.ndarray | None:
    """Per element of `name`, the code of the recurrent state element it is (or None)."""
    t = g.tensors[name]
    if name in codes:
        return (codes[name] << _SHIFT) + np.arange(t.size, dtype=np.int64)
    p = g.producer(name)
    if p is None:
        return None
    if p.op in ("reshape", "last", "take"):
        s = _sources(g, p.inputs[0], codes)
        if s is None or p.op != "take":
            return s
        return np.where(p.attrs["index"] < 0, -1, s[p.attrs["index"]])
    if p.op == "concat":
        parts = [_sources(g, i, codes) for i in p.inputs]
        if any(s is None for s in parts):
            return None
        shaped = [s.reshape(g.tensors[i].shape) for s, i in zip(parts, p.inputs)]
        return np.concatenate(shaped, axis=p.attrs["axis"]).ravel()
    return None


class StateError(RnnqError):
    """A graph run once per call whose state cannot be carried between calls."""


def pair_states(g: Graph) -> None:
    """One step per call: match each state input with the output that returns its state, make
    that output a view of the carried state, and refuse states rnnq could not carry."""
    codes = _codes(g)
    targets = state_targets(g)
    for n in g.nodes:
        kind = recurrent_kind(n.op)
        if kind is None:
            continue
        need = "hc" if kind == "lstm" else "h"
        if set(n.attrs.get("state_inputs", {})) != set(need):
            raise StateError(f"node {n.name!r} ({n.op.upper()}): in a graph run once per "
                            f"timestep, every initial state ({', '.join(need)}) must come from "
                            "a state input that an output returns; otherwise each call would "
                            "restart the recurrence")
    for name, info in g.meta["state_inputs"].items():
        size = int(np.prod(info["shape"], dtype=np.int64))
        want = np.full(size, -1, np.int64)
        for n, which, index in targets.get(name, []):
            want[index] = (codes[state_tensor(n, which)] << _SHIFT) + np.arange(index.size)
        match = [o for o in g.outputs
                 if list(g.tensors[o].shape) == list(info["shape"])
                 and np.array_equal(_sources(g, o, codes), want)]
        if not match:
            raise StateError(f"state input {name!r}: no model output returns the state it sets "
                            "(same shape, same elements); rnnq carries the state between calls "
                            "and needs that output")
        info["output"] = match[0]
        g.outputs.remove(match[0])


def state_values(g: Graph, env: dict[str, np.ndarray], name: str,
                 convert: Callable[[np.ndarray, Node, str], np.ndarray] | None = None
                 ) -> np.ndarray:
    """The value of state input `name`'s layout at every step [N, T, *shape] from the states
    in env ([N, T, B, H] per recurrent output); convert(v, node, which) maps each node's
    values (e.g. integer -> real); elements no state comes from are 0."""
    info = g.meta["state_inputs"][name]
    first = next(iter(env.values()))
    out = None
    for n, which, index in state_targets(g).get(name, []):
        v = env[state_tensor(n, which)]
        v = v.reshape(*v.shape[:2], -1)
        if convert is not None:
            v = convert(v, n, which)
        if out is None:  # integers stay exact (int8 h and int16 c share it)
            dt = np.int64 if np.issubdtype(v.dtype, np.integer) else np.float64
            out = np.zeros((*v.shape[:2], int(np.prod(info["shape"]))), dtype=dt)
        out[:, :, index] = v
    if out is None:
        out = np.zeros((*first.shape[:2], int(np.prod(info["shape"]))))
    return out.reshape(*out.shape[:2], *info["shape"])


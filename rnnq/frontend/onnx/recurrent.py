"""ONNX LSTM, GRU and RNN -> per-direction recurrent IR nodes.

A bidirectional node becomes a forward and a reverse node whose outputs are concatenated on the
direction axis, exactly where ONNX puts them: Y [T, D, B, H] (layout 0) or [B, T, D, H]
(layout 1), Y_h / Y_c [D, B, H] or [B, D, H]. The reverse direction's Y_h is its output at the
first timestep (`first`), which makes the model whole-sequence (not streamable).
"""

from __future__ import annotations

import numpy as np

from rnnq.frontend.onnx.context import Ctx, attrs_of, node_error
from rnnq.ir.ops import GATE_BLOCKS

#: ONNX recurrent op -> IR op (gate blocks per IR op: rnnq.ir.ops.GATE_BLOCKS)
ONNX_RECURRENT = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}
#: ONNX's default activations (f, g, h) per IR op
_DEFAULT_ACTS = {"lstm": ["sigmoid", "tanh", "tanh"], "gru": ["sigmoid", "tanh"], "rnn": ["tanh"]}


def _str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _activations(node, at: dict, n_dirs: int, defaults: list[str]) -> list[tuple]:
    """Per direction: list of (name, alpha, beta) in ONNX's f, g, h order."""
    names = [_str(a).lower() for a in at.get("activations", [])]
    alphas = list(at.get("activation_alpha", []))
    betas = list(at.get("activation_beta", []))
    k = len(defaults)
    if not names:
        names = defaults * n_dirs
    if len(names) != k * n_dirs:
        raise node_error(node, f"activations={names}: expected {k * n_dirs} names")
    out, ai, bi = [], 0, 0
    for name in names:
        a = b = None
        if name in ("hardsigmoid", "leakyrelu", "thresholdedrelu", "scaledtanh", "affine", "elu"):
            a = alphas[ai] if ai < len(alphas) else (0.2 if name == "hardsigmoid" else None)
            ai += 1
        if name in ("hardsigmoid", "scaledtanh", "affine"):
            b = betas[bi] if bi < len(betas) else (0.5 if name == "hardsigmoid" else None)
            bi += 1
        out.append((name, a, b))
    return [out[d * k : (d + 1) * k] for d in range(n_dirs)]


def _check_acts(node, op: str, acts: list[tuple]) -> dict:
    """Validate one direction's activations; returns IR attrs."""
    names = [a[0] for a in acts]
    if op == "rnn":
        if names[0] not in ("tanh", "relu", "sigmoid"):
            raise node_error(node, f"activation {acts[0][0]} is not supported (Tanh, Relu, Sigmoid)")
        return {"act": names[0]}
    gate = acts[0]
    if gate[0] not in ("sigmoid", "hardsigmoid"):
        raise node_error(node, f"gate activation {gate[0]} is not supported (Sigmoid, HardSigmoid)")
    if any(n != "tanh" for n in names[1:]):
        raise node_error(node, f"activations {names[1:]} are not supported (Tanh only after the gate)")
    return {"gate_act": ("sigmoid",) if gate[0] == "sigmoid" else ("hardsigmoid", gate[1], gate[2])}


def recurrent(ctx: Ctx, node) -> None:
    """Handler for LSTM, GRU and RNN."""
    op = ONNX_RECURRENT[node.op_type]
    gates, defaults = GATE_BLOCKS[op], _DEFAULT_ACTS[op]
    at = attrs_of(node)
    n_in = 8 if op == "lstm" else 6
    ins = list(node.input) + [""] * (n_in - len(node.input))
    x = ctx.act(node, ins[0])
    layout = int(at.get("layout", 0))
    direction = _str(at.get("direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise node_error(node, f"direction={direction!r} is not valid")
    n_dirs = 2 if direction == "bidirectional" else 1
    if ctx.step_mode:
        x = _one_step(ctx, node, x, layout)
    elif x.kind != "seq" or x.time_axis != (1 if layout else 0):
        raise node_error(node, f"input X does not carry time on axis {1 if layout else 0} "
                         f"(layout={layout})")
    if len(x.shape) != 2:
        raise node_error(node, f"input X per step is {list(x.shape)}, expected [batch, input]")
    batch, in_size = x.shape
    w = ctx.const(node, ins[1], "W").astype(np.float64)
    r = ctx.const(node, ins[2], "R").astype(np.float64)
    hsz = int(at.get("hidden_size", r.shape[-1]))
    if w.shape != (n_dirs, gates * hsz, in_size) or r.shape != (n_dirs, gates * hsz, hsz):
        raise node_error(node, f"W {list(w.shape)} / R {list(r.shape)} do not match "
                         f"{n_dirs} direction(s), hidden_size={hsz}, input size {in_size}")
    b = (ctx.const(node, ins[3], "B").astype(np.float64) if ins[3]
         else np.zeros((n_dirs, 2 * gates * hsz)))
    if b.shape != (n_dirs, 2 * gates * hsz):
        raise node_error(node, f"B has shape {list(b.shape)}, expected {[n_dirs, 2 * gates * hsz]}")
    if ins[4]:
        if ctx.is_const(ins[4]):
            sl = ctx.consts[ins[4]].astype(np.int64)
            if np.any(sl < ctx.T):
                raise node_error(node, "constant sequence_lens shorter than the sequence; feed "
                                 "lengths through the data instead")
        else:
            ctx.graph.meta.setdefault("sequence_lens_inputs", []).append(ins[4])
    init, state_inputs = [], {}
    for k in (5, 6) if op == "lstm" else (5,):
        if not ins[k]:
            init.append(np.zeros((n_dirs, batch, hsz)))
            continue
        if ins[k] in ctx.state_derived:  # (a part of) a model input: set after _reset
            ids = np.asarray(ctx.consts[ins[k]])
            ids = np.swapaxes(ids, 0, 1) if layout and ids.ndim == 3 else ids
            if ids.shape != (n_dirs, batch, hsz):
                raise node_error(node, f"initial state {ins[k]!r} has shape {list(ids.shape)}, "
                                 f"expected {[n_dirs, batch, hsz]}")
            state_inputs["h" if k == 5 else "c"] = ids
            init.append(np.zeros((n_dirs, batch, hsz)))
            continue
        v = ctx.const(node, ins[k], "initial_h" if k == 5 else "initial_c").astype(np.float64)
        if layout:
            v = np.swapaxes(v, 0, 1) if v.ndim == 3 else v
        if v.shape != (n_dirs, batch, hsz):
            raise node_error(node, f"initial state has shape {list(v.shape)}")
        init.append(v)
    p = None
    if op == "lstm":
        p = (ctx.const(node, ins[7], "P").astype(np.float64) if ins[7]
             else np.zeros((n_dirs, 3 * hsz)))
        if int(at.get("input_forget", 0)) not in (0, 1):
            raise node_error(node, "input_forget must be 0 or 1")
    if op == "gru" and int(at.get("linear_before_reset", 0)) not in (0, 1):
        raise node_error(node, "linear_before_reset must be 0 or 1")
    clip = at.get("clip")
    if clip is not None and not clip > 0:
        raise node_error(node, f"clip={clip} must be positive")
    acts = _activations(node, at, n_dirs, defaults)
    base = (node.output[0] if node.output and node.output[0] else None) or ctx.tmp(op)
    ys, cs = [], []
    for d in range(n_dirs):
        # one step per call: the direction of a one-step recurrence does not matter
        reverse = (direction == "reverse" or d == 1) and not ctx.step_mode
        attrs = {"hidden": hsz, "reverse": reverse, "clip": clip, **_check_acts(node, op, acts[d])}
        if state_inputs:  # which -> (state input, flat element per [B, H] value)
            attrs["state_inputs"] = {
                w: ctx.state_element(node, ids[d])
                for w, ids in state_inputs.items()}
        if op == "lstm":
            attrs["input_forget"] = int(at.get("input_forget", 0))
            bias = b[d, : 4 * hsz] + b[d, 4 * hsz :]
            consts = [w[d], r[d], bias, init[0][d], init[1][d], p[d]]
        elif op == "gru":
            attrs["linear_before_reset"] = int(at.get("linear_before_reset", 0))
            consts = [w[d], r[d], b[d, : 3 * hsz], b[d, 3 * hsz :], init[0][d]]
        else:
            consts = [w[d], r[d], b[d, :hsz] + b[d, hsz:], init[0][d]]
        names = [ctx.add_const(v, f"{base}_d{d}") for v in consts]
        y = ctx.tmp(f"{base}_d{d}_h")
        outs = [y]
        ta = None if ctx.step_mode else 0
        ctx.add_act(y, (batch, hsz), "seq", ta)
        if op == "lstm":
            c = ctx.tmp(f"{base}_d{d}_c")
            ctx.add_act(c, (batch, hsz), "seq", ta)
            outs.append(c)
            cs.append(c)
        ctx.emit(op, [x.name, *names], outs, node, **attrs)
        ys.append((y, reverse))
    outs = list(node.output) + [""] * 3
    _join(ctx, node, [y for y, _ in ys], outs[0], layout, seq=True)
    _join(ctx, node, [_pick(ctx, node, y, rev) for y, rev in ys], outs[1], layout, seq=False)
    if op == "lstm":
        revs = [rev for _, rev in ys]
        _join(ctx, node, [_pick(ctx, node, c, rev) for c, rev in zip(cs, revs)], outs[2], layout,
              seq=False)


def _one_step(ctx: Ctx, node, x, layout: int):
    """One step per call: X [1, B, I] (layout 0) or [B, 1, I] holds this call's timestep."""
    ta = 1 if layout else 0
    if len(x.shape) != 3 or x.shape[ta] != 1:
        raise node_error(node, f"input X is {list(x.shape)}: in a graph run once per call, "
                         f"rnnq needs one timestep per call (size 1 on axis {ta})")
    out = ctx.tmp(node.input[0] + "_step")
    ctx.add_act(out, [d for i, d in enumerate(x.shape) if i != ta], "seq", None)
    ctx.emit("reshape", [x.name], [out], node)
    return ctx.graph.tensors[out]


def _pick(ctx: Ctx, node, name: str, reverse: bool) -> str:
    """The state at the end of the sequence: last step forward, first step in reverse (one
    step per call: the state after this call)."""
    t = ctx.graph.tensors[name]
    if ctx.step_mode:
        return name
    out = ctx.tmp(name + ("_first" if reverse else "_last"))
    ctx.add_act(out, t.shape, "final")
    ctx.emit("first" if reverse else "last", [name], [out], node)
    return out


def _join(ctx: Ctx, node, parts: list[str], out: str, layout: int, seq: bool) -> None:
    """[B, H] per direction -> ONNX's [D, B, H] (layout 0) or [B, D, H] (layout 1)."""
    if not out:
        return
    t0 = ctx.graph.tensors[parts[0]]
    batch, hsz = t0.shape
    axis = 1 if layout else 0
    kind = "seq" if seq or ctx.step_mode else "final"
    ta = (1 if layout else 0) if seq else None
    if ctx.step_mode and seq:  # Y keeps its size-1 time axis: [1, D, B, H] or [B, 1, D, H]
        joined = ctx.tmp(out + "_steps")
        _join(ctx, node, parts, joined, layout, seq=False)
        j = ctx.graph.tensors[joined]
        full = list(j.shape)
        full.insert(1 if layout else 0, 1)
        ctx.add_act(out, full, "seq", None)
        ctx.emit("reshape", [joined], [out], node)
        return
    one = (batch, 1, hsz) if layout else (1, batch, hsz)
    if len(parts) == 1:
        ctx.add_act(out, one, kind, ta)
        ctx.emit("reshape", parts, [out], node)
        return
    pieces = []
    for p in parts:
        v = ctx.tmp(p + "_1")
        ctx.add_act(v, one, kind, ta)
        ctx.emit("reshape", [p], [v], node)
        pieces.append(v)
    shape = (batch, len(parts), hsz) if layout else (len(parts), batch, hsz)
    ctx.add_act(out, shape, kind, ta)
    ctx.emit("concat", pieces, [out], node, axis=axis)

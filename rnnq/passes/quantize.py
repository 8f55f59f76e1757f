"""Quantisation: calibrated float IR -> integer IR.

Requires stage CALIBRATED, produces stage INTEGER. Choices (see README "Numerics"):

- activations between layers: int8 asymmetric from the calibrated range (0 always included);
- the model input: int8 with one (scale, zero point) per feature when every consumer is a
  linear layer (LSTM, dense), whose weights then absorb the per-feature scales; else per-tensor;
- weights: int8 symmetric, one scale per output row (per gate row for the LSTM);
- LSTM internals: gate pre-activations Q3.12, gate outputs Q0.15, cell int16 with a power-of-two
  scale from the calibrated max |c|;
- every rescale: integer multiplier + shift (numerics.quantize_multiplier), computed here.
"""

from __future__ import annotations

import math

import numpy as np

from rnnq import numerics as nx
from rnnq.ir import Graph, Node, QParams, RnnqError, Stage, Tensor
from rnnq.ir.params import BinaryParams, DenseParams, LstmParams, SoftmaxParams

_TINY = 2.0**-24


def act_qparams(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """int8 asymmetric scale/zero point covering [lo, hi] and 0 (vectorised)."""
    lo = np.minimum(np.asarray(lo, np.float64), 0.0)
    hi = np.maximum(np.asarray(hi, np.float64), 0.0)
    scale = np.maximum((hi - lo) / 255.0, _TINY)
    zp = np.clip(nx.round_half_away(-128.0 - lo / scale), -128, 127).astype(np.int64)
    return scale, zp


def quantize_values(v: np.ndarray, q: QParams) -> np.ndarray:
    """Offline/host-side float -> int8 with the tensor's parameters (last axis = channels)."""
    return np.clip(nx.round_half_away(v / q.scale) + q.zero_point, -128, 127).astype(np.int8)


def dequantize_values(v: np.ndarray, q: QParams) -> np.ndarray:
    return (v.astype(np.float64) - q.zero_point) * q.scale


def _row_weights(w: np.ndarray, in_scale: np.ndarray):
    """Fold per-input scales into W [R, K] and quantise per row -> (int8 W, row scales)."""
    wf = w * in_scale[None, :]
    s = np.abs(wf).max(axis=1) / 127.0
    s = np.where(s > 0, s, _TINY)
    wq = np.clip(nx.round_half_away(wf / s[:, None]), -127, 127).astype(np.int8)
    return wq, s


def _bias(node: Node, b: np.ndarray, s: np.ndarray, wq: np.ndarray, zp: np.ndarray) -> np.ndarray:
    v = nx.round_half_away(b / s) - wq.astype(np.int64) @ zp
    # The kernels accumulate bias + w·x in int32: |w·x| <= 127 * 128 * K must leave room.
    if np.any(np.abs(v) + 127 * 128 * wq.shape[1] > nx.INT32_MAX):
        raise RnnqError(f"node {node.name!r}: bias or accumulator does not fit int32 "
                        "at the weight scale")
    return v.astype(np.int32)


def _mults(node: Node, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        pairs = [nx.quantize_multiplier(float(r)) for r in np.ravel(real)]
    except ValueError as e:
        raise RnnqError(f"node {node.name!r}: {e}") from None
    return (np.array([p[0] for p in pairs], np.int32), np.array([p[1] for p in pairs], np.int32))


def _in_scale_zp(t: Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column (scale, zero point) of a linear layer's input of width k."""
    return (np.broadcast_to(t.q.scale, (k,)).astype(np.float64),
            np.broadcast_to(t.q.zero_point, (k,)).astype(np.int64))


def _set_q(t: Tensor, scale, zp) -> None:
    t.dtype = "int8"
    t.q = QParams(np.float64(scale), np.int64(zp))


def _from_range(t: Tensor) -> None:
    s, z = act_qparams(*t.range)
    _set_q(t, s, z)


def _quant_lstm(g: Graph, n: Node) -> Node:
    x = g.tensors[n.inputs[0]]
    w, r, b, h0, c0 = (g.tensors[i].data.astype(np.float64) for i in n.inputs[1:])
    hsz, isz = r.shape[1], w.shape[1]
    y = g.tensors[n.outputs[0]]
    cseq = g.tensors[n.outputs[1]]
    if g.consumers(cseq.name):
        user = g.consumers(cseq.name)[0]
        raise RnnqError(f"node {user.name!r}: uses the LSTM cell state (Y_c); not supported yet")
    _from_range(y)
    sx, zx = _in_scale_zp(x, isz)
    sh, zh = float(y.q.scale), int(y.q.zero_point)
    wq, s_w = _row_weights(w, sx)
    rq, s_r = _row_weights(r, np.full(hsz, sh))
    gate = float(1 << nx.GATE_FRAC_BITS)
    mult_x, shift_x = _mults(n, s_w * gate)
    mult_h, shift_h = _mults(n, s_r * gate)
    absmax = max(n.attrs.get("cell_absmax", 1.0), float(np.abs(c0).max(initial=0.0)), 1e-6)
    k = max(0, math.ceil(math.log2(absmax)))
    cell_frac = 15 - min(k, 15 - nx.TABLE_STEP_BITS)
    out_mult, out_shift = nx.quantize_multiplier(2.0**-30 / sh)
    params = LstmParams(
        input_size=isz, hidden_size=hsz, w=wq, rw=rq,
        bias_x=_bias(n, b, s_w, wq, zx),
        bias_h=_bias(n, np.zeros(4 * hsz), s_r, rq, np.full(hsz, zh)),
        mult_x=mult_x, shift_x=shift_x, mult_h=mult_h, shift_h=shift_h,
        cell_frac=cell_frac, out_mult=out_mult, out_shift=out_shift, out_zp=zh,
        h0=quantize_values(h0, y.q),
        c0=np.clip(nx.round_half_away(c0 * 2.0**cell_frac), -32768, 32767).astype(np.int16),
    )
    cseq.dtype = "int16"
    return Node("qlstm", [x.name], [y.name], {"params": params, "cell_absmax": absmax,
                                               "gate_range": n.attrs.get("gate_range")}, n.name)


def _quant_dense(g: Graph, n: Node) -> Node:
    x = g.tensors[n.inputs[0]]
    w, b = (g.tensors[i].data.astype(np.float64) for i in n.inputs[1:])
    y = g.tensors[n.outputs[0]]
    _from_range(y)
    sx, zx = _in_scale_zp(x, w.shape[1])
    wq, s_w = _row_weights(w, sx)
    mult, shift = _mults(n, s_w / float(y.q.scale))
    zy = int(y.q.zero_point)
    params = DenseParams(
        in_features=w.shape[1], out_features=w.shape[0], w=wq, bias=_bias(n, b, s_w, wq, zx),
        mult=mult, shift=shift, out_zp=zy, act_min=zy if n.attrs.get("relu") else -128,
        act_max=127)
    return Node("qdense", [x.name], [y.name], {"params": params}, n.name)


def _quant_const(g: Graph, name: str) -> str:
    t = g.tensors[name]
    s, z = act_qparams(t.data.min(), t.data.max())
    q = QParams(np.float64(s), np.int64(z))
    qname = name + "_q"
    g.tensors[qname] = Tensor(qname, t.shape, "const", "int8",
                              quantize_values(t.data.astype(np.float64), q), q=q)
    return qname


def _quant_binary(g: Graph, n: Node) -> Node:
    ins = [i if g.tensors[i].kind != "const" else _quant_const(g, i) for i in n.inputs]
    a, b = (g.tensors[i] for i in ins)
    y = g.tensors[n.outputs[0]]
    _from_range(y)
    sa, sb, sy = float(a.q.scale), float(b.q.scale), float(y.q.scale)
    za, zb, zy = int(a.q.zero_point), int(b.q.zero_point), int(y.q.zero_point)
    if n.op == "mul":
        mult, shift = _mults(n, np.array([sa * sb / sy]))
        p = BinaryParams("mul", za, zb, zy, 0, 0, int(mult[0]), int(shift[0]), -128, 127)
    else:
        ra, rb = sa / sy, sb / sy * (-1.0 if n.op == "sub" else 1.0)
        _, shift = nx.quantize_multiplier(max(abs(ra), abs(rb)))
        am, bm = (int(np.clip(nx.round_half_away(r * 2.0**shift), -nx.INT32_MAX, nx.INT32_MAX))
                  for r in (ra, rb))
        p = BinaryParams("add", za, zb, zy, am, bm, 0, shift, -128, 127)
    return Node("qbinary", ins, [y.name], {"params": p}, n.name)


_LUT_FNS = {
    "sigmoid": (lambda v: 0.5 * (1.0 + np.tanh(0.5 * v)), (1.0 / 256.0, -128)),
    "tanh": (np.tanh, (1.0 / 128.0, 0)),
    "relu": (lambda v: np.maximum(v, 0.0), None),
}


def _quant_lut(g: Graph, n: Node) -> Node:
    x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
    fn, fixed = _LUT_FNS[n.op]
    if fixed is None:
        _set_q(y, x.q.scale, x.q.zero_point)
    else:
        _set_q(y, *fixed)
    codes = np.arange(-128, 128)
    table = quantize_values(fn(dequantize_values(codes, x.q)), y.q)
    return Node("qlut", [x.name], [y.name], {"table": table, "fn": n.op}, n.name)


def _quant_softmax(g: Graph, n: Node) -> Node:
    x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
    _set_q(y, 1.0 / 256.0, -128)
    d = np.arange(256, dtype=np.float64)
    table = np.floor(np.exp(-d * float(x.q.scale)) * 65536.0 + 0.5).astype(np.int32)
    return Node("qsoftmax", [x.name], [y.name],
                {"params": SoftmaxParams(depth=x.shape[-1], exp_table=table)}, n.name)


def _input_per_channel(g: Graph) -> bool:
    """True when the input reaches only linear layers (through same-width aliases)."""
    name, feat = g.inputs[0], g.tensors[g.inputs[0]].shape[-1]
    frontier = [name]
    while frontier:
        cur = frontier.pop()
        for c in g.consumers(cur):
            if c.op in ("lstm", "dense") and c.inputs[0] == cur:
                continue
            if c.op == "reshape" and g.tensors[c.outputs[0]].shape[-1] == feat:
                frontier.append(c.outputs[0])
                continue
            return False
    return True


def quantize(graph: Graph) -> Graph:
    """Calibrated float graph -> integer graph (int8 activations, kernels' params objects)."""
    g = graph
    if g.stage != Stage.CALIBRATED:
        raise AssertionError("quantize requires a calibrated graph")
    xin = g.tensors[g.inputs[0]]
    if _input_per_channel(g):
        lo, hi = g.meta["input_channel_range"]
        s, z = act_qparams(lo, hi)
        xin.dtype, xin.q = "int8", QParams(s, z, axis=len(xin.shape) - 1)
    else:
        _from_range(xin)
    nodes: list[Node] = []
    for n in g.nodes:
        if n.op == "lstm":
            nodes.append(_quant_lstm(g, n))
        elif n.op == "dense":
            nodes.append(_quant_dense(g, n))
        elif n.op in ("add", "sub", "mul"):
            nodes.append(_quant_binary(g, n))
        elif n.op in _LUT_FNS:
            nodes.append(_quant_lut(g, n))
        elif n.op == "softmax":
            nodes.append(_quant_softmax(g, n))
        elif n.op in ("reshape", "last", "take"):
            x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
            y.dtype, y.q = x.dtype, x.q
            if x.q is not None and x.q.axis is not None:
                if n.op != "reshape":
                    raise AssertionError(f"per-feature quantisation reached {n.op} {n.name}")
                y.q = QParams(x.q.scale, x.q.zero_point, axis=len(y.shape) - 1)
            nodes.append(n)
        else:
            raise AssertionError(f"quantize: unhandled op {n.op}")
    g.nodes = nodes
    g.stage = Stage.INTEGER
    return g.prune().verify()

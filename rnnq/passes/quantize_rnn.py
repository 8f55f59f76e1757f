"""Quantisation of the recurrent nodes (LSTM, GRU, vanilla RNN) into kernel params objects.

Shared scheme (README "Numerics"): int8 weights with one scale per gate row, input scales
folded into the weights; gate pre-activations Q3.12, gate outputs Q0.15; the hidden state h
int8 with the output's scale and zero point (its zero point folded into recurrent biases);
the LSTM cell int32 with a power-of-two scale: CELL_HEADROOM times the calibrated |c| (a cell
integrates over a stream and may go further than calibration saw it go) at up to
CELL_FRAC_MAX fractional bits, far finer than any step of the model's int8/int16 tensors (an
int16 cell had to choose between range and resolution: a denoiser's cell reaching 300 was
clipped at 256 with 7 fractional bits).
"""

from __future__ import annotations

import math

import numpy as np

from rnnq import numerics as nx
from rnnq.ir import Graph, Node, QParams, RnnqError
from rnnq.ir.ops import hard_sigmoid
from rnnq.ir.params import GruParams, LstmParams, RnnParams
from rnnq.passes.qcommon import bias, fine_weights, from_range, in_scale_zp, mults, row_weights
from rnnq.passes.qparams import act16_qparams

_GATE = float(1 << nx.GATE_FRAC_BITS)
#: The int32 cell's range is at least this many times the largest |c| calibration saw.
CELL_HEADROOM = 4


def _consts(g: Graph, n: Node) -> list[np.ndarray]:
    return [g.tensors[i].data.astype(np.float64) for i in n.inputs[1:]]


def _gate_act(n: Node) -> dict:
    hard = hard_sigmoid(n.attrs)
    if hard is None:
        return {}
    alpha, beta = hard
    if alpha < 0:
        raise RnnqError(f"node {n.name!r}: HardSigmoid alpha={alpha} < 0 is not supported")
    m, s = mults(n, np.array([alpha * 8.0]))  # Q3.12 -> Q0.15 is x8
    return {"gate_act": 1, "hs_mult": int(m[0]), "hs_shift": int(s[0]),
            "hs_offset": int(nx.round_half_away(beta * 32768.0))}


def _clip_q(n: Node, unit: float) -> int:
    c = n.attrs.get("clip")
    return 0 if c is None else int(min(nx.round_half_away(c / unit), nx.INT16_MAX))


def x_max(x) -> int:
    """The largest |x - zero point| the kernels' input product sees (int8 or int16 input)."""
    return 32768 if x.dtype == "int16" else 128


def _state_q(y, bits: int) -> None:
    """The hidden state's quantisation: int8 asymmetric, or int16 symmetric with bits 16."""
    if bits == 16:
        s16, z16 = act16_qparams(*y.range)
        y.dtype, y.q = "int16", QParams(np.float64(s16), np.int64(z16))
    else:
        from_range(y)


#: Recurrent kinds whose hidden state may be int16.
STATE16 = ("lstm", "gru", "rnn")


def state_bits(g: Graph, n: Node) -> int:
    """The width of recurrent node n's hidden state: graph.meta["layer_state_bits"] (by output
    name: --precision per layer, or what --precision auto chose), else the graph's default for
    its kind (meta "lstm_state_bits" / "gru_state_bits" / "rnn_state_bits"; 8 when absent)."""
    if n.op not in STATE16:
        return 8
    per = g.meta.get("layer_state_bits", {})
    if n.outputs[0] in per:
        return int(per[n.outputs[0]])
    return int(g.meta.get(f"{n.op}_state_bits", 8))


def recurrent_weight_bits(g: Graph, n: Node) -> int:
    """8, or 16 for recurrent node n's recurrent weights in 16 bits (rw and rw_lo,
    rnnq.ir.params): graph.meta["layer_rw_bits"] by output name (--precision LAYER=...+r16,
    or what --precision auto chose), else graph.meta["rw_bits"] (8 when absent)."""
    per = g.meta.get("layer_rw_bits", {})
    if n.outputs[0] in per:
        return int(per[n.outputs[0]])
    return int(g.meta.get("rw_bits", 8))


def _fine(g: Graph, n: Node, r: np.ndarray, unit: float, s: np.ndarray, rq: np.ndarray
          ) -> np.ndarray:
    """rw_lo of the recurrent weights r (rows quantised to rq, scales s, input unit `unit`)
    with 16-bit recurrent weights, else empty."""
    if recurrent_weight_bits(g, n) != 16:
        return np.zeros(0, np.int8)
    return fine_weights(r, np.full(r.shape[1], unit), s, rq)


def _common(g: Graph, n: Node, w: np.ndarray, r: np.ndarray, bits: int = 8):
    """Input/hidden quantisation and per-row weights shared by every recurrent kind (h int8,
    or int16 symmetric with bits 16; rw_lo empty unless 16-bit recurrent weights)."""
    x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
    _state_q(y, bits)
    sx, zx = in_scale_zp(x, w.shape[1])
    sh, zh = float(y.q.scale), int(y.q.zero_point)
    wq, s_w = row_weights(w, sx)
    rq, s_r = row_weights(r, np.full(r.shape[1], sh))
    return x, y, zx, sh, zh, wq, s_w, rq, s_r, _fine(g, n, r, sh, s_r, rq)


def _states(h0: np.ndarray, q: QParams, bits: int = 8) -> np.ndarray:
    """[B, H] flattened, one row per batch entry."""
    dt = np.int16 if bits == 16 else np.int8
    return nx.quantize(h0, q.scale, q.zero_point, bits=bits).astype(dt).reshape(-1)


def quant_lstm(g: Graph, n: Node) -> Node:
    """A 16-bit h (graph.meta["lstm_state_bits"] = 16): int16 symmetric, consumers of the
    output get it requantised to int8 (quantize.py), as the GRU's."""
    w, r, b, h0, c0, p = _consts(g, n)
    bits = state_bits(g, n)
    x, y, zx, sh, zh, wq, s_w, rq, s_r, lo = _common(g, n, w, r, bits)
    hsz = r.shape[1]
    mult_x, shift_x = mults(n, s_w * _GATE)
    mult_h, shift_h = mults(n, s_r * _GATE)
    absmax = max(n.attrs.get("cell_absmax", 1.0), float(np.abs(c0).max(initial=0.0)), 1e-6)
    k = max(0, math.ceil(math.log2(absmax * CELL_HEADROOM)))
    cell_frac = max(nx.TABLE_STEP_BITS, min(31 - k, nx.CELL_FRAC_MAX))
    out_mult, out_shift = nx.quantize_multiplier(2.0**-30 / sh)
    extra = _gate_act(n)
    if np.any(p != 0):
        blocks = p.reshape(3, hsz)
        s_p = np.maximum(np.abs(blocks).max(axis=1) / 32767.0, 2.0**-30)
        pq = np.clip(nx.round_half_away(blocks / s_p[:, None]), -32767, 32767).astype(np.int16)
        pm, ps = mults(n, s_p * 2.0 ** (nx.GATE_FRAC_BITS - cell_frac + nx.PEEP_SHIFT))
        extra.update(p=pq.reshape(-1), p_mult=pm, p_shift=ps)
    params = LstmParams(
        input_size=w.shape[1], hidden_size=hsz, w=wq, rw=rq,
        bias_x=bias(n, b, s_w, wq, zx, xmax=x_max(x)),
        bias_h=bias(n, np.zeros(4 * hsz), s_r, rq, np.full(hsz, zh), xmax=x_max(y), fine=lo),
        mult_x=mult_x, shift_x=shift_x, mult_h=mult_h, shift_h=shift_h,
        cell_frac=cell_frac, out_mult=out_mult, out_shift=out_shift, out_zp=zh,
        h0=_states(h0, y.q, bits),
        c0=np.clip(nx.round_half_away(c0 * 2.0**cell_frac), -(2**31), 2**31 - 1)
        .astype(np.int32).reshape(-1),
        clip=_clip_q(n, 1.0 / _GATE), input_forget=int(n.attrs.get("input_forget", 0)),
        state_bits=bits, rw_lo=lo, **extra,
    )
    c = g.tensors[n.outputs[1]]
    c.dtype, c.q = "int32", QParams(np.float64(2.0**-cell_frac), np.int64(0))
    return _node(n, "qlstm", x.name, [y.name, c.name], params, cell_absmax=absmax)


def quant_gru(g: Graph, n: Node) -> Node:
    """A 16-bit state (graph.meta["gru_state_bits"] = 16): h int16 symmetric; consumers of
    the output get it requantised to int8 on its calibrated range (quantize.py)."""
    w, r, wb, rb, h0 = _consts(g, n)
    x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
    hsz = r.shape[1]
    lbr = int(n.attrs.get("linear_before_reset", 0))
    bits = state_bits(g, n)
    _state_q(y, bits)
    hmax = x_max(y)  # the largest |h - zh| the recurrent product sees
    sx, zx = in_scale_zp(x, w.shape[1])
    sh, zh = float(y.q.scale), int(y.q.zero_point)
    wq, s_w = row_weights(w, sx)
    # z, r rows and (lbr=1) candidate rows see h - zh; lbr=0 candidate rows see
    # r*(h-zh)/2^8 (int8 h: unit sh * 2^-7) or r*h/2^15 (int16 h: unit sh), zero point 0.
    rq_zr, s_zr = row_weights(r[: 2 * hsz], np.full(hsz, sh))
    rh_unit = sh if lbr or bits == 16 else sh * 2.0**-7
    rq_h, s_h = row_weights(r[2 * hsz :], np.full(hsz, rh_unit))
    rq, s_r = np.concatenate([rq_zr, rq_h]), np.concatenate([s_zr, s_h])
    lo_zr = _fine(g, n, r[: 2 * hsz], sh, s_zr, rq_zr)
    lo_h = _fine(g, n, r[2 * hsz :], rh_unit, s_h, rq_h)
    bx = np.concatenate([wb[: 2 * hsz] + rb[: 2 * hsz], wb[2 * hsz :]])
    bh_zr = bias(n, np.zeros(2 * hsz), s_zr, rq_zr, np.full(hsz, zh), xmax=hmax, fine=lo_zr)
    if lbr:
        bh_h = bias(n, rb[2 * hsz :], s_h, rq_h, np.full(hsz, zh), xmax=hmax, fine=lo_h)
    else:
        bh_h = bias(n, rb[2 * hsz :], s_h, rq_h, np.zeros(hsz, np.int64), xmax=32768,
                    fine=lo_h)
    mult_x, shift_x = mults(n, s_w * _GATE)
    mult_h, shift_h = mults(n, s_r * _GATE)
    out_mult, out_shift = nx.quantize_multiplier(2.0**-30 / sh)
    params = GruParams(
        input_size=w.shape[1], hidden_size=hsz, linear_before_reset=lbr, w=wq, rw=rq,
        bias_x=bias(n, bx, s_w, wq, zx, xmax=x_max(x)), bias_h=np.concatenate([bh_zr, bh_h]),
        mult_x=mult_x, shift_x=shift_x, mult_h=mult_h, shift_h=shift_h,
        out_mult=out_mult, out_shift=out_shift, out_zp=zh, h0=_states(h0, y.q, bits),
        clip=_clip_q(n, 1.0 / _GATE), state_bits=bits, rw_lo=np.concatenate([lo_zr, lo_h]),
        **_gate_act(n),
    )
    return _node(n, "qgru", x.name, [y.name], params)


def quant_rnn(g: Graph, n: Node) -> Node:
    """A 16-bit state (state_bits): h int16 symmetric, as the GRU's; a tanh/sigmoid output
    is requantised from Q0.30 (t * 2^15, RnnParams) so its shift stays large."""
    w, r, b, h0 = _consts(g, n)
    bits = state_bits(g, n)
    x, y, zx, sh, zh, wq, s_w, rq, s_r, lo = _common(g, n, w, r, bits)
    act = {"tanh": 0, "relu": 1, "sigmoid": 2}[n.attrs.get("act", "tanh")]
    unit = sh if act == 1 else 1.0 / _GATE  # relu: straight to h's scale; else Q3.12
    mult_x, shift_x = mults(n, s_w / unit)
    mult_h, shift_h = mults(n, s_r / unit)
    t_unit = 2.0**-30 if bits == 16 else 2.0**-15
    out_mult, out_shift = nx.quantize_multiplier(t_unit / sh) if act != 1 else (0, 1)
    params = RnnParams(
        input_size=w.shape[1], hidden_size=r.shape[1], act=act, w=wq, rw=rq,
        bias_x=bias(n, b, s_w, wq, zx, xmax=x_max(x)),
        bias_h=bias(n, np.zeros(r.shape[1]), s_r, rq, np.full(r.shape[1], zh), xmax=x_max(y),
                    fine=lo),
        mult_x=mult_x, shift_x=shift_x, mult_h=mult_h, shift_h=shift_h,
        out_mult=out_mult, out_shift=out_shift, out_zp=zh, h0=_states(h0, y.q, bits),
        clip=_clip_q(n, unit), state_bits=bits, rw_lo=lo,
    )
    return _node(n, "qrnn", x.name, [y.name], params)


def _node(n: Node, op: str, x: str, outs: list[str], params, **extra) -> Node:
    attrs = {"params": params, "reverse": bool(n.attrs.get("reverse")),
             "gate_range": n.attrs.get("gate_range"), **extra}
    if n.attrs.get("state_inputs"):
        attrs["state_inputs"] = n.attrs["state_inputs"]
    return Node(op, [x], outs, attrs, n.name)


RECURRENT_QUANTIZERS = {"lstm": quant_lstm, "gru": quant_gru, "rnn": quant_rnn}

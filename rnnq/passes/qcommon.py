"""Helpers of the IR quantisation passes (rnnq's own numerics, for the C backend), built on the
parameter rules both backends share (passes/qparams.py). All offline, float allowed."""

from __future__ import annotations

import numpy as np

from rnnq import numerics as nx
from rnnq.ir import Graph, Node, QParams, RnnqError, Tensor
from rnnq.ir.ops import REARRANGE
from rnnq.passes.qparams import act_qparams, quantize_symmetric, symmetric_scale


def quantize_values(v: np.ndarray, q: QParams) -> np.ndarray:
    """Offline float -> int8 with a tensor's parameters (last axis = channels)."""
    return nx.quantize(v, q.scale, q.zero_point).astype(np.int8)


def dequantize_values(v: np.ndarray, q: QParams) -> np.ndarray:
    return nx.dequantize(v, q.scale, q.zero_point)


def row_weights(w: np.ndarray, in_scale: np.ndarray):
    """Fold per-input scales into W [R, K] and quantise per row -> (int8 W, row scales)."""
    wf = w * in_scale[None, :]
    s = symmetric_scale(wf)
    return quantize_symmetric(wf, s[:, None]), s


def fine_weights(w: np.ndarray, in_scale: np.ndarray, s: np.ndarray, wq: np.ndarray
                 ) -> np.ndarray:
    """The next 8 bits of row_weights' (wq, s) of W: round((W * in_scale / s - wq) * 2^8) within
    int8, so that wq + fine / 2^8 is W on a 16-bit grid of the same row scales (a recurrent
    layer's rw_lo, rnnq.ir.params)."""
    rest = w * in_scale[None, :] / s[:, None] - wq
    return np.clip(nx.round_half_away(rest * 256.0), -128, 127).astype(np.int8)


def bias(node: Node, b: np.ndarray, s: np.ndarray, wq: np.ndarray, zp: np.ndarray,
         xmax: int = 128, fine: np.ndarray | None = None) -> np.ndarray:
    """round(b / s) - (wq + fine / 2^8)·zp per row (fine: 16-bit recurrent weights' rw_lo), as
    int32 when the accumulator bound leaves room for it."""
    v = nx.round_half_away(b / s) - wq.astype(np.int64) @ zp
    wmax = 127
    if fine is not None and fine.size:
        v = v - nx.round_half_away((fine.astype(np.int64) @ zp) / 256.0).astype(np.int64)
        wmax = 128  # |wq + fine / 2^8| <= 127.5, and fine's own product <= 128 * xmax * K
    # The kernels accumulate bias + w·x in int32: |w·x| <= wmax * xmax * K must leave room.
    if np.any(np.abs(v) + wmax * xmax * wq.shape[1] > nx.INT32_MAX):
        raise RnnqError(f"node {node.name!r}: bias or accumulator does not fit int32 "
                        "at the weight scale")
    return v.astype(np.int32)


def mults(node: Node, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        pairs = [nx.quantize_multiplier(float(r)) for r in np.ravel(real)]
    except ValueError as e:
        hint = ("; scales this far apart usually come from an activation range that explodes "
                "upstream (a ReLU RNN whose state grows without bound): look at the float model's "
                "values on the calibration data") if "too large" in str(e) else ""
        raise RnnqError(f"node {node.name!r}: {e}{hint}") from None
    return (np.array([p[0] for p in pairs], np.int32), np.array([p[1] for p in pairs], np.int32))


def in_scale_zp(t: Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column (scale, zero point) of a linear layer's input of width k."""
    return (np.broadcast_to(t.q.scale, (k,)).astype(np.float64),
            np.broadcast_to(t.q.zero_point, (k,)).astype(np.int64))


def set_q(t: Tensor, scale, zp) -> None:
    t.dtype = "int8"
    t.q = QParams(np.float64(scale), np.int64(zp))


def from_range(t: Tensor) -> None:
    s, z = act_qparams(*t.range)
    set_q(t, s, z)


def unify_operand_ranges(g: Graph) -> None:
    """Give every concatenated tensor (and what it aliases) one range, the union of the
    concat's and theirs, so that the producers choose one scale and the concatenation is a
    plain copy (a bidirectional layer's two int16 directions included); the same for the
    operands of a magnitude (its integer kernel adds their squares)."""
    for n in g.nodes:
        if n.op not in ("concat", "magnitude"):
            continue
        chains = []
        for name in n.inputs:
            chain = [name]
            p = g.producer(name)
            while p is not None and p.op in REARRANGE:
                chain.append(p.inputs[0])
                p = g.producer(p.inputs[0])
            chains.append(chain)
        ranges = [g.tensors[t].range for c in chains for t in c]
        if n.op == "concat":
            ranges.append(g.tensors[n.outputs[0]].range)
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
        for name in (t for c in chains for t in c):
            g.tensors[name].range = (lo, hi)

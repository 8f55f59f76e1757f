"""Bias correction (issue 10 item 6): the rounding of a layer's int8 weights shifts the mean of
each output row by sum_k (W - W_q)[r, k] * E[x_k]; that shift, measured on calibration data,
is folded into the layer's float bias before quantisation (as in the data-free quantisation
literature, here with the data's own means). The compiler measures the model with and without
it and keeps it only where it helps (rnnq.steps).

Per linear node (recurrent, dense) of the calibrated float graph:
- the input product: W_q is W quantised as the integer graph quantises it (per row, after the
  input's per-feature scales are folded in), E[x] the mean of the layer's input;
- the recurrent product (LSTM, RNN, the GRU's z and r rows, and its candidate rows with
  linear_before_reset = 1, where R.h + Rb is what the reset gate multiplies): R_q per row,
  E[h] the mean of the layer's output. It is measured on both grids R can have: "h" for int8
  R, "h16" for 16-bit R (rw + rw_lo / 2^8, --precision ...+r16); `apply` folds the one of the
  grid the layer has (quantize_rnn.recurrent_weight_bits), so that a layer widened to 16-bit R after the
  correction was measured is not corrected for a rounding it no longer has.
"""

from __future__ import annotations

import numpy as np

from rnnq.data import valid_mask
from rnnq.ir import Graph
from rnnq.ir.ops import LINEAR, RECURRENT
from rnnq.passes.qcommon import fine_weights, in_scale_zp, row_weights
from rnnq.passes.quantize_rnn import recurrent_weight_bits

#: op -> (index of the bias the input product's correction goes to, of the recurrent one's)
_BIAS = {"lstm": (3, 3), "rnn": (3, 3), "gru": (3, 4), "dense": (2, None)}


def _rounding_error(w: np.ndarray, scales: np.ndarray, fine: bool = False) -> np.ndarray:
    """W - W_q for W quantised per row after folding per-column input scales (fine: on the
    16-bit grid wq + fine_weights / 2^8 of the same row scales)."""
    wq, s = row_weights(w, scales)
    grid = wq + fine_weights(w, scales, s, wq) / 256.0 if fine else wq
    return w - grid * s[:, None] / scales[None, :]


def _mean(v: np.ndarray, mask: np.ndarray, width: int) -> np.ndarray:
    return v[mask].reshape(-1, width).mean(axis=0)


def corrections(fg: Graph, ig: Graph, fenv: dict[str, np.ndarray], lengths: np.ndarray
                ) -> dict[str, dict[str, list[float]]]:
    """node (its first output's name) -> {"x": shift of the input product per row, "h": of
    the recurrent one},
    from the float values `fenv` of the calibrated float graph `fg` (rnnq.sim.float_ref) on
    sequences of `lengths`, and the integer graph `ig` made from fg."""
    qnodes = {n.outputs[0]: n for n in ig.nodes}
    out: dict[str, dict[str, list[float]]] = {}
    for n in fg.nodes:
        qn = qnodes.get(n.outputs[0])
        if n.op not in LINEAR or qn is None or n.inputs[0] not in fenv:
            continue
        xq = ig.tensors[qn.inputs[0]]
        if xq.q is None:  # token ids
            continue
        w = fg.tensors[n.inputs[1]].data.astype(np.float64)
        mask = valid_mask(lengths, fenv[n.inputs[0]].shape[1])
        ex = _mean(fenv[n.inputs[0]], mask, w.shape[1])
        entry = {"x": (_rounding_error(w, in_scale_zp(xq, w.shape[1])[0]) @ ex).tolist()}
        if n.op in RECURRENT:
            r = fg.tensors[n.inputs[2]].data.astype(np.float64)
            hsz = r.shape[1]
            eh = _mean(fenv[n.outputs[0]], mask, hsz)
            for key, fine in (("h", False), ("h16", True)):
                dh = _rounding_error(r, np.ones(hsz), fine) @ eh
                if n.op == "gru" and not n.attrs.get("linear_before_reset", 0):
                    dh[2 * hsz:] = 0.0  # R.(r*h): the mean of r*h is not the mean of h
                entry[key] = dh.tolist()
        out[n.outputs[0]] = entry
    return out


def apply(g: Graph, corr: dict[str, dict[str, list[float]]]) -> Graph:
    """Fold `corrections` into the float graph's biases (in place; returns g): the recurrent
    product's of the grid each layer's R has (recurrent_weight_bits; a record without "h16",
    from before 16-bit R, corrects a 16-bit R's layer for its input product only)."""
    for n in g.nodes:
        c = corr.get(n.outputs[0]) if n.op in _BIAS else None
        if c is None:
            continue
        bx, bh = _BIAS[n.op]
        hkey = "h16" if n.op in RECURRENT and recurrent_weight_bits(g, n) == 16 else "h"
        for key, idx in (("x", bx), (hkey, bh)):
            if idx is None or key not in c:
                continue
            t = g.tensors[n.inputs[idx]]
            if len(g.consumers(t.name)) > 1:  # a bias shared by several nodes stays as it is
                continue
            t.data = (t.data.astype(np.float64) + np.asarray(c[key])
                      ).astype(t.data.dtype)
    return g

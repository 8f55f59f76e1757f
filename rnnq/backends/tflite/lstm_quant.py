"""Build a UNIDIRECTIONAL_SEQUENCE_LSTM in a `TGraph`: float32, or quantised the way LiteRT's
8x8->16 integer kernel reads it.

What the integer kernel requires (LiteRT `unidirectional_sequence_lstm.cc`, `lstm_eval.cc`):

- x, h (output_state variable) and output: int8 asymmetric; h and the output share one scale
  and zero point. The kernel writes h with the *hidden intermediate's* (#4) scale and zero
  point and reads it back with output_state's, so all three must agree.
- Weights: int8, one scale per tensor, zero point 0 (only `params.scale` is read).
- Gate biases: int32 with no scale check; they are added to W·x before the x-side rescale
  (s_x·s_W / 2^-12), so they must be at scale s_x·s_W of that gate. x's zero point is folded
  into them by the kernel at Prepare.
- Cell state variable: int16, zero point 0, scale an exact power of two 2^k (CheckedLog2, else
  Prepare fails). tanh(c) is computed with 15 + k integer bits and LiteRT's ApplyTanh only
  handles 0..6 (k in [-15, -9]; outside it silently returns a stale buffer), so |c| < 64.
- Five intermediate tensors must be present. Without layer norm #0..#3 are ignored (Q3.12 is
  hard-wired); we write them as empty int16 Q3.12 tensors (the converter writes empty float32
  ones, which would put a float tensor in an integer-only file). #4
  carries the hidden scale and zero point (int8).
- Peepholes: int16 symmetric, one scale each (s_p·2^k / 2^-12 rescale). Cell clip: float in
  the options, quantised by the kernel to trunc(clip / 2^k).

Not supported here: CIFG, projection, layer norm, proj clip.
"""

from __future__ import annotations

import math

import numpy as np

from rnnq.ir.tgraph import LSTM_GATES as GATES
from rnnq.ir.tgraph import LSTM_PEEPHOLES as PEEP
from rnnq.ir.tgraph import TGraph, TOp, TTensor
from rnnq.passes.qparams import bias_int32, quantize_symmetric, symmetric_scale
from rnnq.sim.litert.constraints import CELL_EXP_MAX, CELL_EXP_MIN

TANH = 4  # TfLiteFusedActivation kTfLiteActTanh


def cell_exponent(cell_absmax: float) -> int:
    """k for the cell scale 2^k: the smallest with |c| <= 2^(k+15), clamped to what LiteRT's
    tanh handles (k = -9: cells beyond ±64 saturate)."""
    if not cell_absmax > 0:
        return CELL_EXP_MIN
    k = math.ceil(math.log2(cell_absmax)) - 15
    return min(max(k, CELL_EXP_MIN), CELL_EXP_MAX)


def _sym(data: np.ndarray, bits: int) -> tuple[np.ndarray, np.float32]:
    """One symmetric scale for the tensor (as the file stores it) and the values at it."""
    scale = np.float32(symmetric_scale(data, bits, per_row=False)[0])
    return quantize_symmetric(data, np.float64(scale), bits), scale


def _check_shapes(graph: TGraph, x: int, y: int, w: dict, r: dict, b: dict,
                  time_major: bool) -> tuple[int, int, int]:
    xs, ys = graph.tensors[x].shape, graph.tensors[y].shape
    if len(xs) != 3:
        raise ValueError(f"LSTM input must be 3-D, got {xs}")
    batch = xs[1] if time_major else xs[0]
    hsz, isz = np.shape(w["f"])
    for k in GATES:
        if np.shape(w[k]) != (hsz, isz) or np.shape(r[k]) != (hsz, hsz) or \
                np.shape(b[k]) != (hsz,):
            raise ValueError(f"LSTM gate {k}: W {np.shape(w[k])}, R {np.shape(r[k])}, "
                             f"b {np.shape(b[k])}; expected ({hsz}, {isz}), ({hsz}, {hsz}), "
                             f"({hsz},)")
    if xs[-1] != isz or tuple(ys) != (*xs[:-1], hsz):
        raise ValueError(f"LSTM x {xs} / y {ys} do not match I={isz}, H={hsz}")
    return batch, isz, hsz


def _inputs(x: int, w: list[int], r: list[int], p: list[int], b: list[int], hs: int,
            cs: int) -> list[int]:
    return [x, *w, *r, *p, *b, -1, -1, hs, cs, -1, -1, -1, -1]


def _options(cell_clip: float, time_major: bool) -> dict:
    return {"FusedActivationFunction": TANH, "CellClip": float(cell_clip), "ProjClip": 0.0,
            "TimeMajor": bool(time_major), "AsymmetricQuantizeInputs": False}


def add_lstm(graph: TGraph, x_index: int, y_index: int, W: dict, R: dict, b: dict,
             cell_absmax: float, name: str, peephole: dict | None = None,
             cell_clip: float = 0.0, time_major: bool = False, where: str | None = None) -> TOp:
    """Add an int8x8->16 UNIDIRECTIONAL_SEQUENCE_LSTM reading x (int8) and writing y (int8,
    whose quantisation h takes). W/R/b: float arrays by gate "i", "f", "c", "o" in TFLite's
    layout (W [H, I], R [H, H], b [H]); peephole: optional {"i", "f", "o"} -> [H];
    cell_absmax: the calibrated max |c| (sets the power-of-two cell scale); where: what an
    error names (the IR node; default the tensor names, prefixed `name`)."""
    batch, _, hsz = _check_shapes(graph, x_index, y_index, W, R, b, time_major)
    xt, yt = graph.tensors[x_index], graph.tensors[y_index]
    for t in (xt, yt):
        if t.dtype != "int8" or not t.quantized:
            raise ValueError(f"{t.name}: the integer LSTM needs an int8 quantised tensor")
    if cell_absmax is None:
        raise ValueError(f"{name}: the integer LSTM needs the calibrated cell-state range")
    s_x = np.float32(xt.scales()[0])
    if cell_clip > 0:
        cell_absmax = min(cell_absmax, cell_clip)
    k = cell_exponent(cell_absmax)
    wi, ri, bi = [], [], []
    for g in GATES:
        q, s = _sym(np.asarray(W[g], np.float64), 8)
        wi.append(graph.const(f"{name}/W_{g}", q, scale=s, zero_point=0))
        bs = np.float32(s_x * s)  # the scale LiteRT's x-side rescale implies
        qb = bias_int32(np.asarray(b[g], np.float64), np.float64(bs),
                        f"{where}, gate {g}" if where else f"{name}/b_{g}")
        bi.append(graph.const(f"{name}/b_{g}", qb, scale=bs, zero_point=0))
        q, s = _sym(np.asarray(R[g], np.float64), 8)
        ri.append(graph.const(f"{name}/R_{g}", q, scale=s, zero_point=0))
    pi = [-1, -1, -1]
    if peephole is not None:
        for g, j in PEEP.items():
            q, s = _sym(np.asarray(peephole[g], np.float64), 16)
            pi[j] = graph.const(f"{name}/P_{g}", q, scale=s, zero_point=0)
    hq = {"scale": np.float32(yt.scales()[0]), "zero_point": int(yt.zero_points()[0])}
    hs = graph.add(TTensor(f"{name}/h_state", "int8", (batch, hsz), variable=True, **hq))
    cs = graph.add(TTensor(f"{name}/c_state", "int16", (batch, hsz), variable=True,
                           scale=np.float32(2.0 ** k), zero_point=0))
    op = graph.op("UNIDIRECTIONAL_SEQUENCE_LSTM", _inputs(x_index, wi, ri, pi, bi, hs, cs),
                  [y_index], **_options(cell_clip, time_major))
    # int16 at Q3.12 (what the gates are without layer norm), so that no float tensor appears
    # in the file; TensorFlow's converter writes them as empty float32 tensors.
    inter = [graph.add(TTensor(f"{name}/intermediate_{g}", "int16", (0,),
                               scale=np.float32(2.0**-12), zero_point=0)) for g in GATES]
    inter.append(graph.add(TTensor(f"{name}/hidden", "int8", (0,), **hq)))
    op.intermediates = inter
    return op


def add_float_lstm(graph: TGraph, x_index: int, y_index: int, W: dict, R: dict, b: dict,
                   name: str, peephole: dict | None = None, cell_clip: float = 0.0,
                   time_major: bool = False) -> TOp:
    """The same op with float32 tensors (LiteRT's float kernel; the lowering's form)."""
    batch, _, hsz = _check_shapes(graph, x_index, y_index, W, R, b, time_major)
    f = np.float32
    wi = [graph.const(f"{name}/W_{g}", np.asarray(W[g], f)) for g in GATES]
    ri = [graph.const(f"{name}/R_{g}", np.asarray(R[g], f)) for g in GATES]
    bi = [graph.const(f"{name}/b_{g}", np.asarray(b[g], f)) for g in GATES]
    pi = [-1, -1, -1]
    if peephole is not None:
        for g, j in PEEP.items():
            pi[j] = graph.const(f"{name}/P_{g}", np.asarray(peephole[g], f))
    hs = graph.add(TTensor(f"{name}/h_state", "float32", (batch, hsz), variable=True))
    cs = graph.add(TTensor(f"{name}/c_state", "float32", (batch, hsz), variable=True))
    return graph.op("UNIDIRECTIONAL_SEQUENCE_LSTM", _inputs(x_index, wi, ri, pi, bi, hs, cs),
                    [y_index], **_options(cell_clip, time_major))


def float_lstm_params(graph: TGraph, op: TOp) -> dict:
    """A float op's weights as add_lstm's keyword arguments (W, R, b, peephole, cell_clip,
    time_major), so a quantiser can rebuild it as the integer op."""
    data = [None if i < 0 else graph.tensors[i].data for i in op.inputs]
    if data[1] is None or data[16] is not None or any(d is not None for d in data[20:24]):
        raise NotImplementedError("LSTM with CIFG, projection or layer norm")
    peep = None if data[9 + PEEP["f"]] is None else {g: data[9 + j] for g, j in PEEP.items()}
    return {"W": {g: data[1 + j] for j, g in enumerate(GATES)},
            "R": {g: data[5 + j] for j, g in enumerate(GATES)},
            "b": {g: data[12 + j] for j, g in enumerate(GATES)},
            "peephole": peep, "cell_clip": float(op.options.get("CellClip", 0.0) or 0.0),
            "time_major": bool(op.options.get("TimeMajor", False))}

"""Where error enters (`rnnq validate --per-layer`): every quantised tensor of the integer
graph that has a float counterpart, against it, on the test data.

For each tensor, in graph order:
- `sqnr_db`, `max_abs_error`, `max_error_lsb`: the integer model's tensor (dequantised)
  against the float model's, over the values that mean something (every real step; a
  whole-sequence model's `final` tensors at the last real step only) — the error that has
  accumulated up to that tensor;
- `alone_sqnr_db`: the float model's first output when *only this tensor* is quantised (to
  its grid: scale, zero point, integer range; a recurrent state at every step, where it is fed
  back), against the unquantised float output — what this tensor's quantisation costs by
  itself.

Each weight matrix (`weights`): its grid (int8, or 16-bit with rw_lo) against the float weights (`sqnr_db`) and the
float model's first output with only that matrix on its grid (`alone_sqnr_db`).

The first tensor whose accumulated SQNR falls below `threshold_db` is where the signal is
lost (when an output is below it too); the tensor or matrix with the lowest `alone_sqnr_db`
is the one whose grid costs the most.
"""

from __future__ import annotations

import re

import numpy as np

from rnnq import numerics as nx
from rnnq.backends.tflite import runtime
from rnnq.build_folder import BuildFolder
from rnnq.data import Dataset, valid_mask
from rnnq.ir import Graph, QParams, RnnqError
from rnnq.ir.ops import RECURRENT
from rnnq.passes.qcommon import fine_weights, row_weights
from rnnq.report import sqnr_db, summarise
from rnnq.sim.float_ref import run_float
from rnnq.sim.integer import quantize_input, quantize_states, run_integer
from rnnq.sim.litert.interpreter import run as run_litert

#: the accumulated SQNR below which a tensor is said to have lost the signal (the default
#: accuracy goal, README "Numerics")
THRESHOLD_DB = 35.0
_BITS = {"int8": 8, "int16": 16, "int32": 32}


def fake_quant(q: QParams, bits: int):
    """float values -> the nearest values of the grid (scale, zero point, `bits`-bit range)."""
    return lambda v: nx.dequantize(nx.quantize(v, q.scale, q.zero_point, bits), q.scale,
                                   q.zero_point)


def _meaningful(v: np.ndarray, mask: np.ndarray, last: np.ndarray | None) -> np.ndarray:
    """[N, T, ...] -> the values at real steps (or, with `last`, each sequence's last step)."""
    if last is not None:
        return v[np.arange(v.shape[0]), last]
    return v[mask]


def _tensors(ig: Graph, fg: Graph) -> list[tuple[str, str, str]]:
    """(tensor, producing node, op) of the integer graph's quantised activations that the
    float graph also has, in graph order."""
    out = [(name, "(input)", "input") for name in ig.inputs]
    out += [(o, n.name, n.op) for n in ig.nodes for o in n.outputs]
    return [(t, node, op) for t, node, op in out
            if t in fg.tensors and ig.tensors[t].q is not None
            and ig.tensors[t].dtype in _BITS and fg.tensors[t].kind != "const"]


def saturation_c(fg: Graph, ig: Graph, data: Dataset, streaming: bool,
                 fenv: dict | None = None) -> dict:
    """Which quantised tensors saturate on the data, and how often: the fraction of the float
    model's values (at every real step) that lie more than half a step beyond what the
    tensor's integer range can hold, above and below. Only tensors that saturate are listed,
    most first. fenv: the float IR's values on the data, when the caller has them."""
    if fenv is None:
        fenv = run_float(fg, data.x, lengths=data.lengths, states=data.states)
    mask = valid_mask(data.lengths, data.x.shape[1])
    last = data.lengths - 1
    rows = []
    for name, node, op in _tensors(ig, fg):
        t = ig.tensors[name]
        bits = _BITS[t.dtype]
        whole = not streaming and fg.tensors[name].kind == "final"
        f = _meaningful(fenv[name], mask, last if whole else None)
        f = f.reshape(-1, t.shape[-1] if t.shape else 1)  # per-feature scales: the last axis
        s, z = np.asarray(t.q.scale, np.float64), np.asarray(t.q.zero_point, np.float64)
        lo = (-(1 << (bits - 1)) - z - 0.5) * s
        hi = ((1 << (bits - 1)) - 1 - z + 0.5) * s
        up, down = f > hi, f < lo
        out = up | down
        above, below = float(np.mean(up)), float(np.mean(down))
        if above + below > 0:
            row = {"tensor": name, "node": node, "op": op, "dtype": t.dtype,
                   "fraction": above + below, "above": above, "below": below,
                   "values": int(out.sum()), "of": int(out.size)}
            if np.size(s) > 1:  # one scale per feature: the ranges of the one most beyond
                k = int(np.argmax(out.sum(axis=0)))
                row["feature"] = k
                f, lo, hi = f[:, k], np.broadcast_to(lo, (f.shape[1],))[k], \
                    np.broadcast_to(hi, (f.shape[1],))[k]
            row.update(float_range=[float(f.min()), float(f.max())],
                       int_range=[float(np.min(lo)), float(np.max(hi))])
            rows.append(row)
    rows.sort(key=lambda r: -r["fraction"])
    return {"tensors": rows, "checked": len(_tensors(ig, fg))}


def _weight_grid(w: np.ndarray, col_scale: np.ndarray, fine: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The values an int8 weight matrix w [R, K] stands for in the integer model, and its
    step per element: one scale per row of w with the input's per-column scales folded in, as
    the quantiser makes them (passes/qcommon.row_weights); fine: 16-bit recurrent weights,
    wq + rw_lo / 2^8 (qcommon.fine_weights)."""
    cols = np.broadcast_to(np.asarray(col_scale, np.float64), (w.shape[1],))
    wq, s = row_weights(w, cols)
    step = s[:, None] / cols[None, :]
    if fine:
        return (wq + fine_weights(w, cols, s, wq) / 256.0) * step, step / 256.0
    return wq * step, step


def _weight_rows(fg: Graph, ig: Graph, data: Dataset, ref0: np.ndarray, pick) -> list[dict]:
    """Each weight matrix of a dense or recurrent layer (the input and, recurrent, the state
    weights): its int8 grid against the float weights, and what quantising only it costs at the
    first output (the float model with this matrix on its grid)."""
    inodes = {n.outputs[0]: n for n in ig.nodes if "params" in n.attrs}
    out0 = fg.outputs[0]
    rows = []
    for n in fg.nodes:
        q = inodes.get(n.outputs[0])
        if (n.op not in RECURRENT and n.op != "dense") or q is None:
            continue
        xin = ig.tensors[q.inputs[0]]
        if xin.q is None:
            continue
        layer = n.name + (":reverse" if n.attrs.get("reverse") else "")
        mats = [(n.inputs[1], xin.q.scale, "W", False)]
        if n.op in RECURRENT:  # the state's one scale: a per-row grid (16-bit with rw_lo)
            mats.append((n.inputs[2], 1.0, "R", bool(np.asarray(q.attrs["params"].rw_lo).size)))
        for name, cols, role, fine in mats:
            w = fg.tensors[name].data.astype(np.float64)
            if w.ndim != 2:
                continue
            deq, step = _weight_grid(w, cols, fine)
            err = np.abs(w - deq)
            alone = run_float(fg, data.x, lengths=data.lengths, states=data.states,
                              fake={name: lambda _v, d=deq: d})
            rows.append({"tensor": f"{layer} {role}", "node": n.name, "const": name,
                         "op": "weights", "dtype": "int16 (r16)" if fine else "int8",
                         "sqnr_db": sqnr_db(w, deq), "max_abs_error": float(err.max()),
                         "max_error_lsb": float((err / step).max()),
                         "alone_sqnr_db": sqnr_db(ref0, pick(out0, alone[out0]))})
    return rows


def per_layer_c(fg: Graph, ig: Graph, data: Dataset, threshold_db: float = THRESHOLD_DB
                ) -> dict:
    """The per-layer report of a C build (rnnq's integer simulator against the float IR). A
    `final` tensor (a last-step pick, a whole-sequence output) is compared at each sequence's
    last real step, as validate's headline compares the outputs; weight matrices have rows
    of their own (`weights`)."""
    t_len = data.x.shape[1]
    fenv = run_float(fg, data.x, lengths=data.lengths, states=data.states)
    ienv = run_integer(ig, quantize_input(ig, data.x), data.lengths,
                       quantize_states(ig, data.states or {}))
    mask = valid_mask(data.lengths, t_len)
    last = data.lengths - 1

    def pick(name: str, v: np.ndarray) -> np.ndarray:
        whole = fg.tensors[name].kind == "final"
        return _meaningful(v, mask, last if whole else None)

    out0 = fg.outputs[0]
    ref0 = pick(out0, fenv[out0])
    rows = []
    for name, node, op in _tensors(ig, fg):
        t = ig.tensors[name]
        f = pick(name, fenv[name])
        i = pick(name, nx.dequantize(ienv[name], t.q.scale, t.q.zero_point))
        err = float(np.max(np.abs(f - i), initial=0.0))
        alone = run_float(fg, data.x, lengths=data.lengths, states=data.states,
                          fake={name: fake_quant(t.q, _BITS[t.dtype])})
        rows.append({
            "tensor": name, "node": node, "op": op, "dtype": t.dtype,
            "scale": float(np.max(t.q.scale)),
            "sqnr_db": sqnr_db(f, i), "max_abs_error": err,
            "max_error_lsb": err / float(np.max(t.q.scale)),
            "alone_sqnr_db": sqnr_db(ref0, pick(out0, alone[out0])),
        })
    return summarise(rows, threshold_db, _weight_rows(fg, ig, data, ref0, pick),
                     outputs=set(fg.outputs))


_STEP = re.compile(r"^(.*/[a-z_]+)(\d+)$")  # lowering's per-step names: <layer>/<role><t>


def per_layer_tflite(b: BuildFolder, fg: Graph, data: Dataset,
                     threshold_db: float = THRESHOLD_DB) -> dict:
    """The per-layer report of a tflite build: the file's tensors (read back, run in the LiteRT
    profile) against the float TGraph that lowering makes of the float IR. An unrolled
    recurrence's per-step tensors of one role are one row (`<layer>/<role>*`); in a fused LSTM
    the state is internal, so its "alone" figure quantises the output only, not the feedback."""
    from rnnq.backends.tflite.emit import TFLITE
    from rnnq.backends.tflite.lower import lower
    from rnnq.backends.tflite.reader import read_tflite  # needs the rnnq[tflite] extra

    t_len = b.manifest["tflite"]["seq_len"]
    if data.x.shape[1] != t_len:
        raise RnnqError(f"{b.path}/{TFLITE} runs sequences of exactly {t_len} steps and the "
                        f"data has {data.x.shape[1]}")
    q = read_tflite((b.path / TFLITE).read_bytes())
    fgraph = lower(fg, t_len).graph
    x = data.x.astype(np.float32)
    fenv = run_litert(fgraph, [x], float_mode=True, keep=True)
    ienv = run_litert(q, [runtime.feeds(q, data.x)], keep=True)
    kinds = {o: op.kind for op in q.ops for o in op.outputs}
    by_name = {t.name: i for i, t in enumerate(fgraph.tensors)
               if t.data is None and t.dtype == "float32"}
    groups: dict[str, list[tuple[int, int]]] = {}
    for qi, t in enumerate(q.tensors):
        fi = by_name.get(t.name)
        if (fi is None or t.data is not None or not t.quantized or t.dtype not in _BITS
                or len(t.scales()) != 1 or qi not in ienv or fi not in fenv
                or ienv[qi].shape != fenv[fi].shape):
            continue
        m = _STEP.match(t.name)
        groups.setdefault(f"{m.group(1)}*" if m else t.name, []).append((fi, qi))
    out0 = fgraph.outputs[0]
    ref0 = fenv[out0].astype(np.float64)
    rows = []
    for name, pairs in groups.items():
        f = np.concatenate([fenv[fi].astype(np.float64).ravel() for fi, _ in pairs])
        i = np.concatenate([runtime.dequantize(q.tensors[qi], ienv[qi]).ravel()
                            for _, qi in pairs])
        t = q.tensors[pairs[0][1]]
        scale = float(t.scales()[0])
        grid = fake_quant(QParams(np.float64(scale), np.int64(t.zero_points()[0])),
                          _BITS[t.dtype])
        fake = {fi: grid for fi, _ in pairs}
        feed = fake[fgraph.inputs[0]](x) if fgraph.inputs[0] in fake else x
        alone = run_litert(fgraph, [feed.astype(np.float32)], float_mode=True,
                           fake=fake)[0].astype(np.float64)
        err = float(np.max(np.abs(f - i), initial=0.0))
        rows.append({"tensor": name, "node": name,
                     "op": kinds.get(pairs[0][1], "input").lower(), "dtype": t.dtype,
                     "scale": scale, "sqnr_db": sqnr_db(f, i), "max_abs_error": err,
                     "max_error_lsb": err / scale,
                     "alone_sqnr_db": sqnr_db(ref0, alone.reshape(ref0.shape))})
    return summarise(rows, threshold_db, _tflite_weight_rows(q, fgraph, x, ref0),
                     outputs={q.tensors[i].name for i in q.outputs})


def _tflite_weight_rows(q, fgraph, x: np.ndarray, ref0: np.ndarray) -> list[dict]:
    """Each FULLY_CONNECTED weight matrix of the file once (an unrolled recurrence's steps
    share theirs): its int8 values against the float TGraph's weights, and the float TGraph's
    first output with only that matrix replaced by them. A recurrent matrix with 16-bit
    weights (lowering's `<name>/lo/W` residual beside `<name>/W`) is one row, the two summed:
    R on its 16-bit grid, as the C report has it."""
    rows = []
    fconst = {t.name: i for i, t in enumerate(fgraph.tensors) if t.data is not None}
    named = {t.name: i for i, t in enumerate(q.tensors)}
    for wi in dict.fromkeys(op.inputs[1] for op in q.ops if op.kind == "FULLY_CONNECTED"):
        wt = q.tensors[wi]
        fi = fconst.get(wt.name)
        if fi is None or wt.dtype != "int8" or wt.data is None:
            continue
        w = fgraph.tensors[fi].data.astype(np.float64)
        deq, step = _tflite_dequantized(wt, w.ndim)
        lo = named.get(wt.name.removesuffix("/W") + "/lo/W") if wt.name.endswith("/W") else None
        if lo is not None:
            rest, step = _tflite_dequantized(q.tensors[lo], w.ndim)
            deq = deq + rest
        held = deq.astype(np.float32)
        alone = run_litert(fgraph, [x], float_mode=True, fake={fi: lambda _v, d=held: d})[0]
        err = np.abs(w - deq)
        rows.append({"tensor": wt.name, "node": wt.name, "op": "weights",
                     "dtype": "int8" if lo is None else "int16 (r16)",
                     "sqnr_db": sqnr_db(w, deq), "max_abs_error": float(err.max()),
                     "max_error_lsb": float((err / step).max()),
                     "alone_sqnr_db": sqnr_db(ref0, alone.astype(np.float64).reshape(ref0.shape))})
    return rows


def _tflite_dequantized(wt, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """A constant int8 tensor of the file as reals, and its step (per channel or one)."""
    axis = [1] * ndim
    if wt.scales().size > 1:  # per channel
        axis[wt.qdim] = -1
    step = np.asarray(wt.scales(), np.float64).reshape(axis)
    return (wt.data.astype(np.float64) - np.asarray(wt.zero_points()).reshape(axis)) * step, step

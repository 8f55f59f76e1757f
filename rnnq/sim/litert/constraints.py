"""What LiteRT's kernels require of an integer graph before they run (their Prepare checks),
and what rnnq's LiteRT profile models. `problem(graph, op)` says what is wrong with one op, or
None; the tflite backend runs it on every op when it builds a file (a one-line error at compile
time) and the simulator before it evaluates one (kernels then only compute).

Where LiteRT runs an op but computes garbage (a cell scale outside what its integer tanh
handles), or where only LiteRT's default XNNPACK delegate refuses a file that the builtin kernels
run (a FULLY_CONNECTED rescale of 256 or more), that is a problem for a file rnnq writes
(`strict`), but not for the simulator, which models the builtin kernels.

Scales are float32 in the file and LiteRT forms some rescales in float32 too: very large scales
(an exploding ReLU recurrence) overflow there, and LiteRT then aborts the process while it
prepares the op (a CHECK on a multiplier of 0 or infinity); those are problems as well.
"""

from __future__ import annotations

import numpy as np

from rnnq.ir.tgraph import (
    LSTM_C_STATE,
    LSTM_H_STATE,
    LSTM_LN0,
    LSTM_PROJ_W,
    LSTM_W0,
    TGraph,
    TOp,
    TTensor,
)
from rnnq.numerics.gemmlowp import quantize_multiplier
from rnnq.sim.litert.lstm import checked_log2
from rnnq.sim.litert.wide import GATE_IN_SCALE, GATE_OUT_SCALE

#: Ops whose int8 inputs and outputs must share one scale and zero point (no requantisation).
SAME_QUANT = {"CONCATENATION": None, "PACK": None, "UNPACK": (0,), "RELU": (0,), "PAD": (0,),
              "STRIDED_SLICE": (0,)}
#: Fixed int8 output quantisations (scale, zero point) LiteRT insists on.
FIXED_OUTPUT = {"LOGISTIC": (1.0 / 256, -128), "SOFTMAX": (1.0 / 256, -128),
                "TANH": (1.0 / 128, 0)}
#: Exponents k of the LSTM cell scale 2^k that LiteRT's integer tanh handles (|c| < 64).
CELL_EXP_MIN, CELL_EXP_MAX = -15, -9
#: XNNPACK creates an int8 fully-connected operator only when its requantisation scale
#: s_in * s_w / s_out (in float32, every output channel) is below this; otherwise LiteRT's
#: default delegate fails to prepare and the file does not load.
XNNPACK_FC_MAX_RESCALE = 256.0


def _int8(t: TTensor) -> bool:
    return t.dtype == "int8" and t.quantized


def _int16(t: TTensor) -> bool:
    return t.dtype == "int16" and t.quantized


def _zero_points(op: TOp, tensors: list[TTensor]) -> str | None:
    """LiteRT's int16 kernels take symmetric tensors only; a fused activation is NONE or RELU
    (what the profile's int16 kernels model)."""
    if op.options.get("FusedActivationFunction", 0) not in (0, 1):
        return f"int16 {op.kind}: only no fused activation or RELU is modelled"
    for t in tensors:
        if _int16(t) and np.any(t.zero_points() != 0):
            return f"int16 {op.kind}: {t.name} needs zero point 0"
    return None


def _same(a: TTensor, b: TTensor) -> bool:
    return (np.float32(a.scales()[0]) == np.float32(b.scales()[0])
            and int(a.zero_points()[0]) == int(b.zero_points()[0]))


def _scales(g: TGraph, op: TOp) -> str | None:
    for i in (*op.inputs, *op.outputs):
        if i < 0:
            continue
        t = g.tensors[i]
        if t.quantized and not np.all(np.isfinite(t.scales()) & (t.scales() > 0)):
            return f"tensor {t.name} has scale {t.scales()[:4].tolist()} (finite and > 0 needed)"
    return None


def _same_quant(g: TGraph, op: TOp) -> str | None:
    which = SAME_QUANT[op.kind]
    ins = op.inputs if which is None else [op.inputs[k] for k in which]
    out = g.tensors[op.outputs[0]]
    if not (_int8(out) or _int16(out)):
        return None
    for i in (*ins, *op.outputs):
        if not _same(g.tensors[i], out):
            return (f"{out.dtype} {op.kind} needs one scale and zero point on every input and output "
                    f"({g.tensors[i].name} differs from {out.name}); LiteRT does not requantise")
    return None


def xnnpack_fc_rescale(s_in, w_scales, s_out) -> np.ndarray:
    """XNNPACK's requantisation scale of an int8 fully-connected layer, per output channel:
    s_in * s_w / s_out, each step in float32 (inf where the product overflows)."""
    with np.errstate(over="ignore"):
        prod = np.float32(s_in) * np.asarray(w_scales, np.float32)
        return (prod / np.float32(s_out)).astype(np.float32)


def _fully_connected(g: TGraph, op: TOp) -> str | None:
    x, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    if _int16(x):
        return _fully_connected16(g, op)
    if not _int8(x):
        return None
    if np.any(w.zero_points() != 0):
        return f"weights {w.name} need zero point 0"
    with np.errstate(over="ignore"):  # per-tensor weights: LiteRT's product is float32
        product = np.float32(x.scales()[0]) * w.scales()
    if w.scales().size == 1 and not np.isfinite(product[0]):
        return (f"the input scale {float(x.scales()[0]):.3g} times the weight scale of "
                f"{w.name} overflows float32, where LiteRT forms its rescale")
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = g.tensors[op.inputs[2]]
        if b.dtype != "int32":
            return f"bias {b.name} must be int32"
        want = float(x.scales()[0]) * w.scales().astype(np.float64)
        got = b.scales().astype(np.float64)
        if got.size != want.size or np.any(np.abs(got - want) > 1e-6 * want):
            return f"bias {b.name} must have scale s_in * s_w"
    return None


def _fully_connected16(g: TGraph, op: TOp) -> str | None:
    """16x8: int16 input and output (zero point 0), int8 weights, an int64 bias."""
    x, w, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    b = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    if not _int16(y) or w.dtype != "int8" or np.any(w.zero_points() != 0):
        return "int16 FULLY_CONNECTED needs an int16 output and int8 weights with zero point 0"
    if b is None or b.dtype != "int64":  # without one LiteRT takes another rounding path
        return "an int16 FULLY_CONNECTED needs an int64 bias (zeros where the layer has none)"
    return _zero_points(op, [x, y])


def _add_sub(g: TGraph, op: TOp) -> str | None:
    a, b, y = (g.tensors[i] for i in (*op.inputs, op.outputs[0]))
    if _int16(y):
        return _add_sub16(op, a, b, y)
    if not _int8(y):
        return None
    with np.errstate(over="ignore"):  # LiteRT's Prepare forms both in float32
        twice = float(np.float32(2 * max(np.float32(a.scales()[0]), np.float32(b.scales()[0]))))
        shifted = float(np.float32((1 << 20) * np.float32(y.scales()[0])))
    if not (np.isfinite(twice) and np.isfinite(shifted)):
        return (f"int8 {op.kind}: the scales ({float(a.scales()[0]):.3g}, "
                f"{float(b.scales()[0]):.3g} -> {float(y.scales()[0]):.3g}) are too large: "
                "LiteRT's rescale (2^20 times the output scale) overflows float32, its output "
                "multiplier becomes 0 and LiteRT aborts while preparing the op")
    real = twice / shifted
    if quantize_multiplier(real)[1] > 0:
        return (f"int8 {op.kind}: the inputs' scales ({float(a.scales()[0]):.3g}, "
                f"{float(b.scales()[0]):.3g}) are too large for the output's "
                f"({float(y.scales()[0]):.3g}); LiteRT needs an output multiplier below 1")
    return None


def _add_sub16(op: TOp, a: TTensor, b: TTensor, y: TTensor) -> str | None:
    """The general int16 ADD / SUB (pot_scale_int16 false; else LiteRT wants power-of-two
    scales), whose output multiplier must stay below 1."""
    if not (_int16(a) and _int16(b)):
        return f"int16 {op.kind} needs int16 inputs"
    if op.options.get("PotScaleInt16", True):
        return f"int16 {op.kind} must be written with pot_scale_int16 false"
    twice = float(np.float32(2 * max(np.float32(a.scales()[0]), np.float32(b.scales()[0]))))
    shifted = float(np.float32((1 << 15) * np.float32(y.scales()[0])))
    if not (np.isfinite(shifted) and quantize_multiplier(twice / shifted)[1] <= 0):
        return (f"int16 {op.kind}: the inputs' scales ({float(a.scales()[0]):.3g}, "
                f"{float(b.scales()[0]):.3g}) are too large for the output's "
                f"({float(y.scales()[0]):.3g}); LiteRT needs an output multiplier below 1")
    return _zero_points(op, [a, b, y])


def _gate16(g: TGraph, op: TOp) -> str | None:
    """int16 LOGISTIC / TANH as modelled: Q3.12 in, Q0.15 out (LiteRT's fixed-point path;
    other input scales take its lookup table, which the profile does not model)."""
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if float(x.scales()[0]) != GATE_IN_SCALE or float(y.scales()[0]) != GATE_OUT_SCALE:
        return f"int16 {op.kind} needs input scale 2^-12 and output scale 2^-15"
    return _zero_points(op, [x, y])


def _fixed_output(g: TGraph, op: TOp) -> str | None:
    y = g.tensors[op.outputs[0]]
    if _int16(y) and op.kind in ("LOGISTIC", "TANH"):
        return _gate16(g, op)
    if not _int8(y):
        return None
    s, z = FIXED_OUTPUT[op.kind]
    if abs(float(y.scales()[0]) - s) > 1e-3 * s or int(y.zero_points()[0]) != z:
        return f"int8 {op.kind} output must have scale {s:g} and zero point {z}"
    return None


def _lstm(g: TGraph, op: TOp, strict: bool) -> str | None:
    y = g.tensors[op.outputs[0]]
    if not _int8(y):
        return None
    if op.inputs[LSTM_W0] < 0:
        return "CIFG (no input gate) is not supported"
    if op.inputs[LSTM_PROJ_W] >= 0:
        return "projection is not supported"
    if any(i >= 0 for i in op.inputs[LSTM_LN0:LSTM_LN0 + 4]):
        return "layer normalisation is not supported"
    if len(op.intermediates) != 5:
        return "the integer LSTM needs its 5 intermediate tensors"
    cell = g.tensors[op.inputs[LSTM_C_STATE]]
    k = checked_log2(float(cell.scales()[0])) if cell.quantized else None
    if cell.dtype != "int16" or k is None:
        return f"cell state {cell.name} must be int16 with a power-of-two scale"
    if strict and not CELL_EXP_MIN <= k <= CELL_EXP_MAX:
        return (f"cell state scale 2^{k} is outside 2^{CELL_EXP_MIN}..2^{CELL_EXP_MAX}, where "
                "LiteRT's integer tanh works")
    h = g.tensors[op.inputs[LSTM_H_STATE]]
    hidden = g.tensors[op.intermediates[4]]
    if not (_same(h, y) and _same(hidden, y)):
        return "the output state, the hidden intermediate and the output need one quantisation"
    return None


def _mul(g: TGraph, op: TOp) -> str | None:
    a, b, y = (g.tensors[i] for i in (*op.inputs, op.outputs[0]))
    if _int16(y):
        if not (_int16(a) and _int16(b)):
            return "int16 MUL needs int16 inputs"
        return _zero_points(op, [a, b, y])
    if not _int8(y):
        return None
    with np.errstate(over="ignore"):  # as LiteRT's Prepare: float32 product and quotient
        real = np.float32(np.float32(a.scales()[0]) * np.float32(b.scales()[0])) / np.float32(
            y.scales()[0])
    if not np.isfinite(real):
        return (f"int8 MUL: the rescale s_a * s_b / s_y of ({float(a.scales()[0]):.3g}, "
                f"{float(b.scales()[0]):.3g} -> {float(y.scales()[0]):.3g}) overflows float32, "
                "where LiteRT forms it")
    return None


def _quantize(g: TGraph, op: TOp) -> str | None:
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if _int16(x) or _int16(y):
        if not {x.dtype, y.dtype} <= {"int8", "int16"}:
            return "QUANTIZE with int16 is modelled between int8 and int16 only"
        return _zero_points(op, [x, y])
    return None


def _xnnpack_fully_connected(g: TGraph, op: TOp) -> str | None:
    x, w, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if not _int8(x):
        return None
    r = float(xnnpack_fc_rescale(x.scales()[0], w.scales(), y.scales()[0]).max())
    if r >= XNNPACK_FC_MAX_RESCALE:
        return (f"int8 FULLY_CONNECTED: its rescale s_in * s_w / s_out reaches {r:.4g}; LiteRT's "
                f"default XNNPACK delegate needs it below {XNNPACK_FC_MAX_RESCALE:g} and would "
                "fail to load the file")
    return None


def _gather(g: TGraph, op: TOp) -> str | None:
    x, idx = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    axis = int(op.options.get("Axis", 0))
    if axis <= 0 or int(op.options.get("BatchDims", 0)) != 0:
        return "GATHER along dim 0 or with batch_dims is not modelled"
    if idx.data is not None and (np.any(idx.data < 0) or np.any(idx.data >= x.shape[axis])):
        return f"GATHER index out of range for axis {axis} of {list(x.shape)}"
    if _int8(x) and not _same(x, g.tensors[op.outputs[0]]):
        return "int8 GATHER needs one quantisation on input and output"
    return None


def _pad(g: TGraph, op: TOp) -> str | None:
    pads = g.tensors[op.inputs[1]].data
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        return "PAD with constant_values is not modelled (PADV2)"
    if pads is None or np.any(np.asarray(pads).reshape(-1, 2)[0] != 0):
        return "PAD needs constant paddings, none along dim 0"
    return _same_quant(g, op)


def _concatenation(g: TGraph, op: TOp) -> str | None:
    if op.options.get("FusedActivationFunction", 0) != 0:
        return "CONCATENATION takes no fused activation"
    return _same_quant(g, op)


CHECKS = {"FULLY_CONNECTED": _fully_connected, "ADD": _add_sub, "SUB": _add_sub, "MUL": _mul,
          "LOGISTIC": _fixed_output, "TANH": _fixed_output, "SOFTMAX": _fixed_output,
          "GATHER": _gather, "STRIDED_SLICE": _same_quant, "PAD": _pad,
          "CONCATENATION": _concatenation, "PACK": _same_quant, "UNPACK": _same_quant,
          "RELU": _same_quant, "QUANTIZE": _quantize}
#: What LiteRT's builtin kernels run but its default delegate refuses (files rnnq writes only).
STRICT_CHECKS = {"FULLY_CONNECTED": _xnnpack_fully_connected}


def problem(g: TGraph, op: TOp, strict: bool = True) -> str | None:
    """What keeps LiteRT (or rnnq's model of it) from running `op` of the integer graph `g`;
    with `strict`, also what LiteRT would run but compute wrongly."""
    found = _scales(g, op)
    if found is None and op.kind == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        found = _lstm(g, op, strict)
    elif found is None and op.kind in CHECKS:
        found = CHECKS[op.kind](g, op)
    if found is None and strict and op.kind in STRICT_CHECKS:
        found = STRICT_CHECKS[op.kind](g, op)
    return found


def first_problem(g: TGraph) -> tuple[TGraph, int, TOp, str] | None:
    """The first op of g (or of its subgraphs) with a problem: (the graph holding it, its
    index there, the op, what is wrong), else None."""
    for sub in (g, *g.subgraphs):
        for k, op in enumerate(sub.ops):
            found = problem(sub, op)
            if found is not None:
                return sub, k, op, found
    return None


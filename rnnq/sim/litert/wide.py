"""Integer kernels of LiteRT's int16 ("16x8") builtins, bit for bit: int16 activations with
zero point 0, int8 weights, what the `.tflite` path's 16-bit recurrent layers run.

Each formula was pinned against LiteRT (ai-edge-litert 2.3.0, builtin resolver, x86) over
random operands and, for the activations, every int16 input
(tests/backends/tflite/test_wide_kernels.py keeps that comparison):

- FULLY_CONNECTED, int16 input with an int64 bias: an int64 accumulator rescaled by the
  reference kernel in double, round(acc · (s_in · s_w / s_out)) — floating point inside
  LiteRT, which the profile repeats in float64 (an integer multiplier with one rounding agrees
  except within ~2^-31 of a half); without a bias LiteRT takes another path, so rnnq always
  writes one;
- ADD / SUB with pot_scale_int16 false: the int8 kernels' scheme with a left shift of 15
  instead of 20 (each input rescaled to twice the larger input scale, summed, rescaled to the
  output); ADD's vector loop (blocks of 16) folds the input's right shift into the left
  shift before the rounding multiply, as the int8 ADD's does; SUB and the tail are scalar;
- MUL: the int32 product, then gemmlowp's MultiplyByQuantizedMultiplier;
- LOGISTIC / TANH: input scale 2^-12 (Q3.12), output 2^-15: gemmlowp's fixed-point logistic
  and tanh (the functions LiteRT's integer LSTM gates use);
- QUANTIZE between int8 and int16 (or int16 to int16): gemmlowp's MultiplyByQuantizedMultiplier of (q − zp_in).
"""

from __future__ import annotations

import numpy as np

from rnnq.ir.tgraph import TOp
from rnnq.numerics.gemmlowp import (
    mbqm,
    mbqm_small,
    quantize_multiplier,
    sigmoid_q3_12,
    srdhm,
    tanh_q,
)
from rnnq.sim.litert.arith import operands, shl32
from rnnq.sim.litert.context import Ctx, qparams

Q16_MIN, Q16_MAX = -(2**15), 2**15 - 1
#: The input and output scales LiteRT's int16 LOGISTIC / TANH take without a lookup table.
GATE_IN_SCALE, GATE_OUT_SCALE = 2.0**-12, 2.0**-15
#: ... as (scale, zero point) pairs for the quantiser.
GATE_IN, GATE_OUT = (np.float32(GATE_IN_SCALE), 0), (np.float32(GATE_OUT_SCALE), 0)
#: ADD / SUB: the inputs' left shift before rescaling (the int8 kernels use 20).
ADD_LEFT_SHIFT = 15


def is_wide(ctx: Ctx, index: int) -> bool:
    return ctx.tensor(index).dtype == "int16"


def _act16(op: TOp, s_out: np.float32) -> tuple[int, int]:
    """The int16 output range of a fused activation (NONE or RELU; zero point 0)."""
    act = op.options.get("FusedActivationFunction", 0)
    if act == 0:
        return Q16_MIN, Q16_MAX
    if act == 1:
        return 0, Q16_MAX
    raise NotImplementedError(f"int16 fused activation {act}")


def _to16(y: np.ndarray) -> np.ndarray:
    return np.clip(y, Q16_MIN, Q16_MAX).astype(np.int16)


def c_round(v: np.ndarray) -> np.ndarray:
    """C's round() on doubles, exactly: half away from zero (v − trunc(v) is exact)."""
    t = np.trunc(v)
    return np.where(np.abs(v - t) >= 0.5, t + np.sign(v), t).astype(np.int64)


def fully_connected(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    s_in = qparams(ctx, op.inputs[0])[0]
    s_out = qparams(ctx, op.outputs[0])[0]
    scales = ctx.tensor(op.inputs[1]).scales()
    k = w.shape[1]
    acc = x.reshape(-1, k).astype(np.int64) @ w.astype(np.int64).T
    if b is not None:
        acc = acc + b.astype(np.int64)
    # the reference kernel (per channel or per tensor) rescales in double, then C's round()
    eff = np.float64(s_in) * scales.astype(np.float64) / np.float64(s_out)
    y = c_round(acc.astype(np.float64) * eff)
    lo, hi = _act16(op, s_out)
    y = np.clip(y, lo, hi).astype(np.int16)
    if op.options.get("KeepNumDims", False):
        y = y.reshape(*x.shape[:-1], y.shape[-1])
    return [y]


def _finish(ctx: Ctx, op: TOp, y: np.ndarray, out: tuple) -> list[np.ndarray]:
    lo, hi = _act16(op, qparams(ctx, op.outputs[0])[0])
    y = np.broadcast_to(np.clip(y, lo, hi), (ctx.n, *out))
    return [y.reshape((-1, *out[1:]) if out else ()).astype(np.int16)]


def _add_sub(sign: int, vector: bool):
    def run(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
        (a, b), out = operands(ctx, op, args)
        s1, s2 = qparams(ctx, op.inputs[0])[0], qparams(ctx, op.inputs[1])[0]
        s_out = qparams(ctx, op.outputs[0])[0]
        twice = float(np.float32(2 * max(s1, s2)))
        m1, e1 = quantize_multiplier(float(s1) / twice)
        m2, e2 = quantize_multiplier(float(s2) / twice)
        mo, eo = quantize_multiplier(twice / float(np.float32((1 << ADD_LEFT_SHIFT) * s_out)))
        r = (mbqm_small(a << ADD_LEFT_SHIFT, m1, e1)
             + sign * mbqm_small(b << ADD_LEFT_SHIFT, m2, e2))
        y = mbqm_small(r, mo, eo)
        same = tuple(ctx.tensor(op.inputs[0]).shape) == tuple(ctx.tensor(op.inputs[1]).shape)
        if vector and same:  # AddElementwiseInt16's NEON loop: the input shift folded in
            v = (srdhm(shl32(a, ADD_LEFT_SHIFT + e1), m1)
                 + sign * srdhm(shl32(b, ADD_LEFT_SHIFT + e2), m2))
            size = int(np.prod(out))
            lanes = (np.arange(size) < size - size % 16).reshape(out)
            y = np.where(lanes, mbqm_small(v, mo, eo), y)
        return _finish(ctx, op, y, out)
    return run


#: ADD runs the optimized int16 kernel (blocks of 16 elements vectorised, the rest scalar),
#: SUB the reference one (scalar); a broadcasting ADD is scalar too.
add = _add_sub(1, vector=True)
sub = _add_sub(-1, vector=False)


def mul(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    (a, b), out = operands(ctx, op, args)
    (s1, _), (s2, _) = qparams(ctx, op.inputs[0]), qparams(ctx, op.inputs[1])
    s_out = qparams(ctx, op.outputs[0])[0]
    m, e = quantize_multiplier(float(np.float32(np.float32(s1 * s2) / s_out)))
    return _finish(ctx, op, mbqm(a * b, m, e), out)


def logistic(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    return [sigmoid_q3_12(args[0]).astype(np.int16)]


def tanh(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    return [tanh_q(args[0], 3).astype(np.int16)]


def requantize(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    """QUANTIZE int8 -> int16, int16 -> int8 or int16 -> int16."""
    s_in, z_in = qparams(ctx, op.inputs[0])
    s_out, z_out = qparams(ctx, op.outputs[0])
    m, e = quantize_multiplier(float(s_in) / float(s_out))
    y = mbqm(args[0].astype(np.int64) - z_in, m, e) + z_out
    if ctx.tensor(op.outputs[0]).dtype == "int16":
        return [_to16(y)]
    return [np.clip(y, -128, 127).astype(np.int8)]

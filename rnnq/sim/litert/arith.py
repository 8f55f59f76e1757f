"""Integer kernels mirroring LiteRT's builtin int8 kernels bit for bit, and float32 twins.

The integer kernels follow what `BUILTIN_WITHOUT_DEFAULT_DELEGATES` runs on x86, which is not
the reference code: the optimized kernels are built with NEON intrinsics emulated on SSE, and
their vector loops round differently from their scalar tails (vqrdmulh + a round-half-up shift
instead of gemmlowp's half-away-from-zero RoundingDivideByPOT; 16-bit wrapping narrows). So
ADD, MUL, MEAN and QUANTIZE pick, per element, the formula of the loop that handles that
element in one `invoke()`; which loop that is depends only on the declared (per-sequence)
shapes.

Multipliers are derived offline exactly as each kernel's Prepare derives them: from the
float32 scales in the file, with the products taken in float32 where LiteRT multiplies floats
and in double where it converts first. Layout operators and QUANTIZE/DEQUANTIZE live in
`layout`; indexing and control flow in `control`; the LSTM in `lstm`. The kernel tables are
built in `interpreter`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

from rnnq.ir.tgraph import TOp
from rnnq.numerics.gemmlowp import (
    mbqm,
    mbqm_neon,
    mbqm_small,
    quantize_multiplier,
    round_half_away,
    srdhm,
    wrap16,
    wrap32,
)
from rnnq.sim.litert.context import Ctx, qparams, to_int8

Q8_MIN, Q8_MAX = -128, 127
# Fused activations (schema ActivationFunctionType): NONE, RELU, RELU_N1_TO_1, RELU6.
_ACT_BOUNDS = {1: (0.0, None), 2: (-1.0, 1.0), 3: (0.0, 6.0)}


def _quantize_f32(value: float, scale: np.float32, zp: int) -> int:
    """kernel_util's Quantize(): TfLiteRound(f / scale) in float32, plus the zero point."""
    return zp + round_half_away(float(np.float32(np.float32(value) / scale)))


def act_range(act: int, scale: np.float32, zp: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for an int8 output."""
    if act not in _ACT_BOUNDS:
        if act != 0:
            raise NotImplementedError(f"fused activation {act}")
        return Q8_MIN, Q8_MAX
    lo, hi = _ACT_BOUNDS[act]
    qlo = max(Q8_MIN, _quantize_f32(lo, scale, zp))
    qhi = Q8_MAX if hi is None else min(Q8_MAX, _quantize_f32(hi, scale, zp))
    return qlo, qhi


def _act_float(y: np.ndarray, act: int) -> np.ndarray:
    if act == 0:
        return y
    lo, hi = _ACT_BOUNDS[act]
    return np.clip(y, lo, np.inf if hi is None else hi).astype(np.float32)


def _vec_mask(size: int, block: int) -> np.ndarray:
    """Elements a SIMD loop `for (; i <= size - block; i += block)` handles (the rest: tail)."""
    return np.arange(size) < size - size % block


# ---------------------------------------------------------------------------- FULLY_CONNECTED

def fc_multipliers(s_in: np.float32, w_scales: np.ndarray, s_out: np.float32):
    """Per-tensor: GetQuantizedConvolutionMultipler (s_in*s_w in float32, / s_out in double).
    Per-channel: every product in double."""
    if w_scales.size == 1:
        real = float(np.float32(s_in * np.float32(w_scales[0]))) / float(s_out)
        m, e = quantize_multiplier(real)
        return np.int64(m), np.int64(e)
    pairs = [quantize_multiplier(float(s_in) * float(s) / float(s_out)) for s in w_scales]
    return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)


def fully_connected(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    """ruy (and the custom GEMV) requantise with vqrdmulh + round-half-up shift (`mbqm_neon`)."""
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    s_in, z_in = qparams(ctx, op.inputs[0])
    s_out, z_out = qparams(ctx, op.outputs[0])
    tw = ctx.tensor(op.inputs[1])
    k = w.shape[1]
    rows = x.reshape(-1, k).astype(np.int64) - z_in
    wz = 0 if tw.scales().size > 1 else int(tw.zero_points()[0])
    acc = rows @ (w.astype(np.int64) - wz).T
    if b is not None:
        acc = acc + b.astype(np.int64)
    m, e = fc_multipliers(s_in, tw.scales(), s_out)
    lo, hi = act_range(op.options.get("FusedActivationFunction", 0), s_out, z_out)
    y = np.clip(mbqm_neon(wrap32(acc), m, e) + z_out, lo, hi).astype(np.int8)
    return [_fc_shape(op, x, y)]


def _fc_shape(op: TOp, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if op.options.get("KeepNumDims", False):
        return y.reshape(*x.shape[:-1], y.shape[-1])
    return y


def matmul64(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w.T of float32 operands in float64. Calibration's float graph: a float32 BLAS
    product depends on the CPU's kernel (OpenBLAS picks one per CPU, each sums in its own
    order), and its ranges, hence the file's bytes, would differ between an Intel and an AMD
    machine; float64 sums rounded once to float32 agree (their differences are far below
    float32's step)."""
    return x.astype(np.float64) @ w.astype(np.float64).T


def fully_connected_float(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    y = matmul64(x.reshape(-1, w.shape[1]), w)
    if b is not None:
        y = y + b.astype(np.float32)
    y = _act_float(y.astype(np.float32), op.options.get("FusedActivationFunction", 0))
    return [_fc_shape(op, x, y)]


# ---------------------------------------------------------------------------- ADD / SUB / MUL

def operands(ctx: Ctx, op: TOp, args: list) -> tuple[list[np.ndarray], tuple[int, ...]]:
    """Both inputs as int64 arrays shaped (sequences or 1, *per-sequence shape padded to the
    output rank), so numpy broadcasting reproduces each invoke's broadcasting."""
    out = tuple(ctx.tensor(op.outputs[0]).shape)
    arrays = []
    for a, i in zip(args, op.inputs, strict=True):
        t = ctx.tensor(i)
        shape = (1,) * (len(out) - len(t.shape)) + tuple(t.shape)
        lead = 1 if t.data is not None else ctx.n
        arrays.append(np.asarray(a).astype(np.int64).reshape((lead, *shape)))
    return arrays, out


def broadcast_layout(s0: tuple, s1: tuple, block: int, scalar_block: int) -> np.ndarray:
    """Which loop computes each output element of a binary op in one invoke:
    0 scalar code, 1 the elementwise SIMD loop, 2 the scalar-broadcast SIMD loop.
    Mirrors ProcessBroadcastShapes + BinaryBroadcastFiveFold (generic broadcasts: reference)."""
    rank = max(len(s0), len(s1))
    a = (1,) * (rank - len(s0)) + tuple(s0)
    b = (1,) * (rank - len(s1)) + tuple(s1)
    out = tuple(max(x, y) for x, y in zip(a, b, strict=True))
    size = int(np.prod(out, dtype=np.int64))
    if a == b:
        return _vec_mask(size, block).astype(np.int8).reshape(out)
    first = None
    for i in range(rank - 1, -1, -1):
        if a[i] != b[i]:
            first = a[i] == 1 if (a[i] == 1 or b[i] == 1) else None
            break
    if first is None:
        return np.zeros(out, np.int8)
    sa, sb = (a, b) if first else (b, a)
    y = [1] * 5
    i = rank - 1
    for slot, cond in ((4, "eq"), (3, "a1"), (2, "eq"), (1, "b1"), (0, "eq")):
        while i >= 0 and (sa[i] == sb[i] if cond == "eq" else
                          (sa[i] == 1 if cond == "a1" else sb[i] == 1)):
            y[slot] *= sb[i] if slot in (4, 3, 0) else sa[i]
            i -= 1
    if i >= 0:
        return np.zeros(out, np.int8)
    pos = np.arange(size)
    if y[4] > 1:
        lay = np.where(_vec_mask(y[4], block)[pos % y[4]], 1, 0)
    else:
        lay = np.where(_vec_mask(y[3], scalar_block)[pos % y[3]], 2, 0)
    return lay.astype(np.int8).reshape(out)


def shl32(x: np.ndarray, s: int) -> np.ndarray:
    """vshlq_s32: left shift, or an arithmetic (flooring) right shift for negative amounts."""
    return wrap32(x << s) if s >= 0 else x >> -s


def _narrow_out(r: np.ndarray, z_out: int, saturate: bool) -> np.ndarray:
    """NEON's int32 -> int16 narrow (wrapping vmovn or saturating vqmovn), a wrapping int16 add
    of the zero point, then the saturating narrow to int8."""
    r16 = np.clip(r, -2**15, 2**15 - 1) if saturate else wrap16(r)
    return np.clip(wrap16(r16 + z_out), Q8_MIN, Q8_MAX)


def _finish(ctx: Ctx, op: TOp, y: np.ndarray, out: tuple) -> list[np.ndarray]:
    s_out, z_out = qparams(ctx, op.outputs[0])
    lo, hi = act_range(op.options.get("FusedActivationFunction", 0), s_out, z_out)
    y = np.broadcast_to(np.clip(y, lo, hi), (ctx.n, *out))
    return [y.reshape((-1, *out[1:]) if out else ()).astype(np.int8)]


def _add_sub_params(ctx: Ctx, op: TOp):
    (s1, z1), (s2, z2) = qparams(ctx, op.inputs[0]), qparams(ctx, op.inputs[1])
    s_out, z_out = qparams(ctx, op.outputs[0])
    twice = float(np.float32(2 * max(s1, s2)))
    m1 = quantize_multiplier(float(s1) / twice)
    m2 = quantize_multiplier(float(s2) / twice)
    mo = quantize_multiplier(twice / float(np.float32((1 << 20) * s_out)))
    return z1, z2, z_out, m1, m2, mo


def add(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    (a, b), out = operands(ctx, op, args)
    z1, z2, z_out, (m1, e1), (m2, e2), (mo, eo) = _add_sub_params(ctx, op)
    a, b = a - z1, b - z2
    scalar = mbqm_small(a << 20, m1, e1) + mbqm_small(b << 20, m2, e2)
    y_s = mbqm_small(wrap32(scalar), mo, eo) + z_out
    # AddElementwiseInt8's NEON loop folds the input shift into the left shift.
    v16 = srdhm(shl32(a, 20 + e1), m1) + srdhm(shl32(b, 20 + e2), m2)
    y_16 = _narrow_out(mbqm_small(wrap32(v16), mo, eo), z_out, saturate=False)
    # AddScalarBroadcast's NEON loop shifts right without rounding after vqrdmulh.
    v8 = (srdhm(a << 20, m1) >> -e1) + (srdhm(b << 20, m2) >> -e2)
    y_8 = _narrow_out(mbqm_small(wrap32(v8), mo, eo), z_out, saturate=False)
    lay = broadcast_layout(ctx.tensor(op.inputs[0]).shape, ctx.tensor(op.inputs[1]).shape, 16, 8)
    return _finish(ctx, op, np.select([lay == 1, lay == 2], [y_16, y_8], y_s), out)


def sub(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    """LiteRT runs the reference int8 SUB (scalar code only)."""
    (a, b), out = operands(ctx, op, args)
    z1, z2, z_out, (m1, e1), (m2, e2), (mo, eo) = _add_sub_params(ctx, op)
    d = mbqm_small((a - z1) << 20, m1, e1) - mbqm_small((b - z2) << 20, m2, e2)
    return _finish(ctx, op, mbqm_small(wrap32(d), mo, eo) + z_out, out)


def mul(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    (a, b), out = operands(ctx, op, args)
    (s1, z1), (s2, z2) = qparams(ctx, op.inputs[0]), qparams(ctx, op.inputs[1])
    s_out, z_out = qparams(ctx, op.outputs[0])
    m, e = quantize_multiplier(float(np.float32(np.float32(s1 * s2) / s_out)))
    r = mbqm((a - z1) * (b - z2), m, e)
    y_v = _narrow_out(r, z_out, saturate=True)
    lay = broadcast_layout(ctx.tensor(op.inputs[0]).shape, ctx.tensor(op.inputs[1]).shape, 16, 16)
    return _finish(ctx, op, np.where(lay > 0, y_v, r + z_out), out)


def _binary_float(fn):
    def run(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
        out = tuple(ctx.tensor(op.outputs[0]).shape)
        ops = []
        for a, i in zip(args, op.inputs, strict=True):
            t = ctx.tensor(i)
            shape = (1,) * (len(out) - len(t.shape)) + tuple(t.shape)
            ops.append(np.asarray(a, np.float32).reshape((1 if t.data is not None else ctx.n,
                                                          *shape)))
        y = _act_float(fn(*ops).astype(np.float32), op.options.get("FusedActivationFunction", 0))
        return [np.broadcast_to(y, (ctx.n, *out)).reshape((-1, *out[1:]) if out else ())]
    return run


add_float = _binary_float(np.add)
sub_float = _binary_float(np.subtract)
mul_float = _binary_float(np.multiply)


# ---------------------------------------------------------------------------- LOGISTIC / TANH

@functools.lru_cache(maxsize=1)
def _libm() -> ctypes.CDLL | None:
    """The C library's expf/tanhf: LiteRT fills its lookup tables with them, and numpy's own
    float32 exp/tanh may differ in the last ulp."""
    name = ctypes.util.find_library("m")
    if name is None:  # pragma: no cover - non-glibc platforms
        return None
    lib = ctypes.CDLL(name)
    for fn in ("expf", "tanhf"):
        getattr(lib, fn).restype = ctypes.c_float
        getattr(lib, fn).argtypes = [ctypes.c_float]
    return lib


def _expf(x: np.float32) -> np.float32:
    lib = _libm()
    return np.float32(lib.expf(float(x)) if lib else np.exp(np.float32(x)))


def _tanhf(x: np.float32) -> np.float32:
    lib = _libm()
    return np.float32(lib.tanhf(float(x)) if lib else np.tanh(np.float32(x)))


def _sigmoidf(x: np.float32) -> np.float32:
    one = np.float32(1.0)
    return np.float32(one / np.float32(one + _expf(np.float32(-x))))


@functools.lru_cache(maxsize=4096)
def lut_int8(fn: str, s_in: float, z_in: int, s_out: float, z_out: int) -> np.ndarray:
    """LUTPopulate<int8_t>: a 256-entry table indexed by input + 128, built in float32."""
    transform = {"LOGISTIC": _sigmoidf, "TANH": _tanhf}[fn]
    inv = np.float32(np.float32(1.0) / np.float32(s_out))
    table = np.empty(256, np.int8)
    for v in range(-128, 128):
        deq = np.float32(np.float32(s_in) * np.float32(v - z_in))
        r = round_half_away(float(np.float32(transform(deq) * inv)))
        table[v + 128] = min(max(r + z_out, Q8_MIN), Q8_MAX)
    return table


def _lut_kernel(kind: str):
    def run(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
        s_in, z_in = qparams(ctx, op.inputs[0])
        s_out, z_out = qparams(ctx, op.outputs[0])
        table = lut_int8(kind, float(s_in), z_in, float(s_out), z_out)
        return [table[args[0].astype(np.int64) + 128]]
    return run


logistic = _lut_kernel("LOGISTIC")
tanh = _lut_kernel("TANH")


def leaky_relu(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    """reference_ops::QuantizeLeakyRelu: x - z_in >= 0 scaled by s_in / s_out, else by
    alpha * s_in / s_out (each a QuantizeMultiplier of a float32 quotient, as LeakyReluPrepare
    computes it in float), plus z_out, saturated."""
    s_in, z_in = qparams(ctx, op.inputs[0])
    s_out, z_out = qparams(ctx, op.outputs[0])
    alpha = np.float32(op.options["Alpha"])
    m_id, e_id = quantize_multiplier(float(np.float32(s_in / s_out)))
    m_a, e_a = quantize_multiplier(float(np.float32(np.float32(s_in * alpha) / s_out)))
    d = args[0].astype(np.int64) - z_in
    y = np.where(d >= 0, mbqm(d, m_id, e_id), mbqm(d, m_a, e_a)) + z_out
    return [to_int8(y)]


def leaky_relu_float(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    x = args[0]
    return [np.where(x >= 0, x, x * np.float32(op.options["Alpha"])).astype(np.float32)]


def logistic_float(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    return [(1.0 / (1.0 + np.exp(-args[0].astype(np.float64)))).astype(np.float32)]


def tanh_float(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    return [np.tanh(args[0].astype(np.float64)).astype(np.float32)]  # float32 tanh: by CPU


# ---------------------------------------------------------------------------- SOFTMAX

def softmax(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    """optimized_ops::Softmax: an expf table over max - x, a float32 sum in index order, one
    float reciprocal, std::round."""
    s_in, _ = qparams(ctx, op.inputs[0])
    s_out, z_out = qparams(ctx, op.outputs[0])
    scale = np.float32(-s_in * np.float32(op.options.get("Beta", 1.0)))
    table = np.array([_expf(np.float32(scale * np.float32(v))) for v in range(256)], np.float32)
    x = args[0].astype(np.int64)
    e = table[x.max(axis=-1, keepdims=True) - x]
    total = np.zeros(x.shape[:-1], np.float32)
    for j in range(x.shape[-1]):
        total = (total + e[..., j]).astype(np.float32)
    inv = (np.float32(1.0) / (total * s_out).astype(np.float32)).astype(np.float32)
    prob = (e * inv[..., None]).astype(np.float32).astype(np.float64)
    q = round_half_away(prob)  # std::round
    return [to_int8(q.astype(np.int64) + z_out)]


def softmax_float(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    x = args[0].astype(np.float64) * float(op.options.get("Beta", 1.0))
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return [(e / e.sum(axis=-1, keepdims=True)).astype(np.float32)]


# ---------------------------------------------------------------------------- MEAN

def _mean_axes(ctx: Ctx, op: TOp, args: list) -> tuple[tuple[int, ...], tuple[int, ...]]:
    decl = tuple(ctx.tensor(op.inputs[0]).shape)
    axes = sorted({int(a) % len(decl) for a in np.atleast_1d(args[1])})
    return decl, tuple(axes)


def _reshape_out(ctx: Ctx, op: TOp, y: np.ndarray) -> np.ndarray:
    out = tuple(ctx.tensor(op.outputs[0]).shape)
    return y.reshape((-1, *out[1:])) if out else y.reshape(())


def mean(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    """reference_ops::QuantizedMeanOrSum: the 1/count folded into the multiplier by an
    integer division, then double-rounding MultiplyByQuantizedMultiplier."""
    decl, axes = _mean_axes(ctx, op, args)
    s_in, z_in = qparams(ctx, op.inputs[0])
    s_out, z_out = qparams(ctx, op.outputs[0])
    x = args[0].astype(np.int64).reshape((ctx.n, *decl))
    if len(decl) == 4 and axes == (1, 2) and op.options.get("KeepDims", False):
        return [_reshape_out(ctx, op, _mean_hw(x, s_in, z_in, s_out, z_out))]
    count = int(np.prod([decl[a] for a in axes], dtype=np.int64))
    total = x.sum(axis=tuple(a + 1 for a in axes)) - z_in * count
    m, e = quantize_multiplier(float(s_in) / float(s_out))
    shift = min(count.bit_length() - 1, 32, 31 + e)
    m = (m << shift) // count
    y = to_int8(mbqm(wrap32(total), m, e - shift) + z_out)
    return [_reshape_out(ctx, op, y)]


def _mean_hw(x: np.ndarray, s_in: np.float32, z_in: int, s_out: np.float32,
             z_out: int) -> np.ndarray:
    """optimized_integer_ops::Mean (4-D, keep_dims, axes {1, 2}): raw sums, the zero points
    folded into a float-rounded bias, 1/count into the multiplier; NEON loop over 16 channels
    (`mbqm_neon`), scalar tail (`mbqm`). Assumes LiteRT's default single thread."""
    temp = np.float32(np.float32(np.float32(z_in) * s_in) / s_out)
    temp = np.float32(temp + np.float32(0.5)) if temp > 0 else np.float32(temp - np.float32(0.5))
    bias = z_out - int(temp)
    count = np.float32(x.shape[2] * x.shape[3])
    m, e = quantize_multiplier(float(np.float32(s_in / np.float32(count * s_out))))
    total = x.sum(axis=(2, 3), keepdims=True)
    vec = _vec_mask(x.shape[-1], 16)
    return to_int8(np.where(vec, mbqm_neon(total, m, e), mbqm(total, m, e)) + bias)


def mean_float(ctx: Ctx, op: TOp, args: list) -> list[np.ndarray]:
    decl, axes = _mean_axes(ctx, op, args)
    x = args[0].astype(np.float32).reshape((ctx.n, *decl))
    y = x.mean(axis=tuple(a + 1 for a in axes), dtype=np.float64).astype(np.float32)
    return [_reshape_out(ctx, op, y)]

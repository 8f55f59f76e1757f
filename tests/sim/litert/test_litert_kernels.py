"""The TFLite simulator's kernels against LiteRT itself: single-operator models with random
shapes, scales and zero points, run in LiteRT one sequence per invoke and in the simulator
batch-folded; integer outputs must be equal, float outputs close."""

from __future__ import annotations

import numpy as np
import pytest

from rnnq.backends.tflite.writer import to_flatbuffer
from rnnq.ir.tgraph import TGraph, TTensor
from rnnq.sim.litert import interpreter as sim
from tests.cbuild import skip_or_fail

try:
    import ai_edge_litert  # noqa: F401

    from rnnq.backends.tflite import runtime as litert
except ImportError:  # pragma: no cover - depends on the environment
    litert = None

N = 3  # sequences per case


@pytest.fixture(autouse=True)
def _need_litert() -> None:
    if litert is None:
        skip_or_fail("ai-edge-litert is not installed")


def _scale(rng: np.random.Generator, lo: float = -3.0, hi: float = 0.0) -> np.float32:
    return np.float32(10 ** rng.uniform(lo, hi))


def _zp(rng: np.random.Generator) -> int:
    return int(rng.integers(-128, 128))


def _i8(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.integers(-128, 128, shape).astype(np.int8)


def _q(name: str, shape: tuple, scale, zp, dtype: str = "int8") -> TTensor:
    return TTensor(name, dtype, tuple(shape), scale=np.float32(scale), zero_point=int(zp))


def _f(name: str, shape: tuple) -> TTensor:
    return TTensor(name, "float32", tuple(shape))


def single(kind: str, inputs: list, outputs: list, **options) -> TGraph:
    """A one-operator graph; graph inputs are the inputs without data, in order."""
    g = TGraph()
    ins = [g.add(t) if isinstance(t, TTensor) else -1 for t in inputs]
    outs = [g.add(t) for t in outputs]
    g.op(kind, ins, outs, **options)
    g.inputs = [i for i in ins if i >= 0 and g.tensors[i].data is None]
    g.outputs = outs
    return g


def run_both(g: TGraph, feeds: list[np.ndarray], resolver: str = "builtin"):
    """feeds: [N, *declared] per graph input. Returns (litert, sim) outputs as [N, *declared]."""
    want = litert.invoke(to_flatbuffer(g), feeds, resolver)
    folded = [f.reshape((-1, *f.shape[2:])) for f in feeds]
    float_mode = g.tensors[g.inputs[0]].dtype == "float32" and not any(
        t.quantized for t in g.tensors)
    got = sim.run(g, folded, float_mode=float_mode)
    got = [y.reshape(w.shape) for y, w in zip(got, want, strict=True)]
    return want, got


def check(g: TGraph, feeds: list[np.ndarray], exact: bool = False) -> None:
    """LiteRT vs the simulator: integer results exactly; float results (float graphs) to
    1e-5, or exactly with `exact` (a float output of an integer graph, e.g. DEQUANTIZE)."""
    want, got = run_both(g, feeds)
    for w, y in zip(want, got, strict=True):
        if w.dtype == np.float32 and not exact:
            np.testing.assert_allclose(y, w, rtol=1e-5, atol=1e-6)
        else:
            bad = np.flatnonzero(w != y)
            assert bad.size == 0, (f"{bad.size}/{w.size} differ, first at {bad[:5]}: "
                                   f"litert {w.ravel()[bad[:5]]} sim {y.ravel()[bad[:5]]}")


# --------------------------------------------------------------------------- FULLY_CONNECTED

def fc_graph(rng, rows, k, units, *, per_channel, bias, act, keep, float_graph=False,
             three_d=False):
    in_shape = (rows, 2, k) if three_d else (rows, k)
    out_shape = ((rows, 2, units) if keep else (rows * 2, units)) if three_d else (rows, units)
    if float_graph:
        w = rng.normal(size=(units, k)).astype(np.float32)
        g = TGraph()
        wi = g.const("w", w)
        bi = g.const("b", rng.normal(size=units).astype(np.float32)) if bias else -1
        x, y = g.add(_f("x", in_shape)), g.add(_f("y", out_shape))
    else:
        s_in, s_w = _scale(rng, -2.5, -0.5), _scale(rng, -3, -1)
        s_wv = (s_w * rng.uniform(0.5, 2, units)).astype(np.float32) if per_channel else s_w
        s_out = np.float32(s_in * s_w * np.sqrt(k) * rng.uniform(20, 120))
        g = TGraph()
        wi = g.const("w", rng.integers(-127, 128, (units, k)).astype(np.int8), scale=s_wv,
                     zero_point=np.zeros(units, np.int64) if per_channel else 0)
        bscale = (np.float32(s_in) * s_wv).astype(np.float32)
        bi = g.const("b", rng.integers(-5000, 5000, units).astype(np.int32), scale=bscale,
                     zero_point=np.zeros(units, np.int64) if per_channel else 0) if bias else -1
        x = g.add(_q("x", in_shape, s_in, _zp(rng)))
        y = g.add(_q("y", out_shape, s_out, _zp(rng)))
    g.op("FULLY_CONNECTED", [x, wi, bi], [y], FusedActivationFunction=act, KeepNumDims=keep)
    g.inputs, g.outputs = [x], [y]
    return g, in_shape


def test_fully_connected() -> None:
    rng = np.random.default_rng(10)
    for case in range(150):
        rows = [1, 1, 2, 3, 4, 7][case % 6]
        big = case % 3 == 2   # larger GEMMs: ruy's blocked kernels, many GEMV rows
        k = int(rng.integers(40, 300) if big else rng.integers(1, 40))
        units = int(rng.integers(20, 80) if big else rng.integers(1, 24))
        g, in_shape = fc_graph(rng, rows, k, units, per_channel=case % 2 == 1,
                               bias=case % 5 != 0, act=[0, 1, 3][case % 3],
                               keep=case % 4 == 0, three_d=case % 7 == 3)
        check(g, [_i8(rng, (N, *in_shape))])


def test_fully_connected_float() -> None:
    rng = np.random.default_rng(11)
    for case in range(12):
        g, in_shape = fc_graph(rng, 1 + case % 3, int(rng.integers(1, 30)),
                               int(rng.integers(1, 20)), per_channel=False, bias=case % 2 == 0,
                               act=[0, 1, 3][case % 3], keep=case % 4 == 0,
                               float_graph=True, three_d=case % 5 == 2)
        check(g, [rng.normal(size=(N, *in_shape)).astype(np.float32)])


# --------------------------------------------------------------------------- ADD / SUB / MUL

SHAPE_PAIRS = [((2, 20), (2, 20)), ((1, 37), (1, 37)), ((3, 5, 16), (3, 5, 16)),
               ((2, 24), (1, 24)), ((1, 24), (2, 24)), ((2, 5, 9), (1, 1, 9)),
               ((4, 19), ()), ((), (4, 19)), ((3, 7), (3, 1)), ((2, 3, 17), (2, 1, 17)),
               ((2, 40), (1, 1)), ((2, 3, 4), (3, 1))]


@pytest.mark.parametrize("kind", ["ADD", "SUB", "MUL"])
def test_binary(kind: str) -> None:
    rng = np.random.default_rng(["ADD", "SUB", "MUL"].index(kind))
    for case in range(8 * len(SHAPE_PAIRS)):
        s0, s1 = SHAPE_PAIRS[case % len(SHAPE_PAIRS)]
        out = tuple(np.broadcast_shapes(s0, s1))
        sc0, sc1 = _scale(rng), _scale(rng)
        if case % 3 == 2:   # far-apart input scales
            sc1 = np.float32(sc0 * 10 ** rng.uniform(-4, -2))
        ref = sc0 * sc1 * 128 if kind == "MUL" else max(sc0, sc1) * 2
        s_out = np.float32(ref * 10 ** rng.uniform(-0.7, 0.3))
        ins = [_q("a", s0, sc0, _zp(rng)), _q("b", s1, sc1, _zp(rng))]
        const = None
        if not s0 or not s1 or (s1[0] == 1 and case % 2):
            const = 0 if not s0 else 1   # the scalar or broadcast operand as a constant
            ins[const].data = _i8(rng, ins[const].shape)
        g = single(kind, ins, [_q("y", out, s_out, _zp(rng))],
                   FusedActivationFunction=[0, 1][case % 2])
        feeds = [_i8(rng, (N, *t.shape)) for t in ins if t.data is None]
        check(g, feeds)


def test_add_exhaustive_pairs() -> None:
    """All 65536 input pairs (plus a scalar tail) at extreme scale ratios, where the SIMD loop
    and the scalar tail round differently and 16-bit narrowing wraps."""
    rng = np.random.default_rng(5)
    a, b = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128))
    a, b = np.append(a.ravel(), a.ravel()[:7]), np.append(b.ravel(), b.ravel()[:7])
    for _ in range(4):
        s2 = _scale(rng, -2, -1)
        s1 = np.float32(s2 * 2.0 ** -rng.uniform(8, 19))
        s_out = np.float32(s1 * rng.uniform(5, 60))
        n = a.size
        g = single("ADD", [_q("a", (1, n), s1, _zp(rng)), _q("b", (1, n), s2, _zp(rng))],
                   [_q("y", (1, n), s_out, _zp(rng))], FusedActivationFunction=0)
        check(g, [a.reshape(1, 1, n).astype(np.int8), b.reshape(1, 1, n).astype(np.int8)])


@pytest.mark.parametrize("kind", ["ADD", "SUB", "MUL"])
def test_binary_float(kind: str) -> None:
    rng = np.random.default_rng(20)
    for s0, s1 in SHAPE_PAIRS[:8]:
        out = tuple(np.broadcast_shapes(s0, s1))
        ins = [_f("a", s0), _f("b", s1)]
        if not s0 or not s1:
            t = ins[0] if not s0 else ins[1]
            t.data = rng.normal(size=t.shape).astype(np.float32)
        g = single(kind, ins, [_f("y", out)], FusedActivationFunction=1)
        check(g, [rng.normal(size=(N, *t.shape)).astype(np.float32) for t in ins
                  if t.data is None])


# --------------------------------------------------------------------------- LOGISTIC / TANH

@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
def test_lut_activation_exhaustive(kind: str) -> None:
    rng = np.random.default_rng(30)
    s_out, z_out = (1 / 256, -128) if kind == "LOGISTIC" else (1 / 128, 0)
    codes = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256)
    for _ in range(200):
        g = single(kind, [_q("x", (1, 256), _scale(rng, -3, 0.3), _zp(rng))],
                   [_q("y", (1, 256), s_out, z_out)])
        check(g, [codes])


def test_leaky_relu_exhaustive() -> None:
    """Every int8 code through LEAKY_RELU at random scales, zero points and slopes (both
    signs, above 1 too)."""
    rng = np.random.default_rng(32)
    codes = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256)
    for _ in range(200):
        alpha = float(rng.choice([-1, 1]) * 10 ** rng.uniform(-3, 0.5))
        s_in = _scale(rng, -3, 0.3)
        s_out = np.float32(s_in * 10 ** rng.uniform(-0.5, 0.5))
        g = single("LEAKY_RELU", [_q("x", (1, 256), s_in, _zp(rng))],
                   [_q("y", (1, 256), s_out, _zp(rng))], Alpha=alpha)
        check(g, [codes])


def test_leaky_relu_float() -> None:
    rng = np.random.default_rng(33)
    g = single("LEAKY_RELU", [_f("x", (2, 33))], [_f("y", (2, 33))], Alpha=0.15)
    check(g, [rng.normal(scale=4, size=(N, 2, 33)).astype(np.float32)])


@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
def test_lut_activation_float(kind: str) -> None:
    rng = np.random.default_rng(31)
    g = single(kind, [_f("x", (2, 33))], [_f("y", (2, 33))])
    check(g, [rng.normal(scale=4, size=(N, 2, 33)).astype(np.float32)])


# --------------------------------------------------------------------------- SOFTMAX / MEAN

def test_softmax() -> None:
    rng = np.random.default_rng(40)
    for case in range(80):
        shape = [(1, 5), (2, 10), (3, 2, 33), (1, 1)][case % 4]
        beta = float(np.float32([1.0, rng.uniform(0.1, 3)][case % 2]))
        g = single("SOFTMAX", [_q("x", shape, _scale(rng, -3, 0), _zp(rng))],
                   [_q("y", shape, 1 / 256, -128)], Beta=beta)
        check(g, [_i8(rng, (N, *shape))])
    g = single("SOFTMAX", [_f("x", (2, 7))], [_f("y", (2, 7))], Beta=0.7)
    check(g, [rng.normal(size=(N, 2, 7)).astype(np.float32)])


MEAN_CASES = [((2, 10), [1], True), ((2, 10), [1], False), ((1, 6, 4), [1], False),
              ((2, 5, 3), [1, 2], True), ((3, 4, 9), [-1], False), ((1, 3, 3, 4), [1, 2], True),
              ((2, 7, 5), [1], True), ((1, 300), [1], False), ((2, 2, 3, 37), [2, 1], True),
              ((1, 5, 1, 16), [1, 2], True), ((1, 2, 2, 3), [1, 2], False)]


def test_mean() -> None:
    rng = np.random.default_rng(50)
    for case in range(8 * len(MEAN_CASES)):
        shape, axes, keep = MEAN_CASES[case % len(MEAN_CASES)]
        out = tuple(1 if (d in [a % len(shape) for a in axes]) else s
                    for d, s in enumerate(shape))
        if not keep:
            out = tuple(s for d, s in enumerate(shape) if d not in [a % len(shape) for a in axes])
        s_in, z_in = _scale(rng), _zp(rng)
        same = case % 4 == 0
        s_out = s_in if same else np.float32(s_in * 10 ** rng.uniform(-0.5, 0.5))
        g = TGraph()
        x = g.add(_q("x", shape, s_in, z_in))
        ax = g.const("axes", np.array(axes, np.int32))
        y = g.add(_q("y", out, s_out, z_in if same else _zp(rng)))
        g.op("MEAN", [x, ax], [y], KeepDims=keep)
        g.inputs, g.outputs = [x], [y]
        check(g, [_i8(rng, (N, *shape))])
        if case < len(MEAN_CASES):
            fg = TGraph()
            x = fg.add(_f("x", shape))
            ax = fg.const("axes", np.array(axes, np.int32))
            y = fg.add(_f("y", out))
            fg.op("MEAN", [x, ax], [y], KeepDims=keep)
            fg.inputs, fg.outputs = [x], [y]
            check(fg, [rng.normal(size=(N, *shape)).astype(np.float32)])


# --------------------------------------------------------------------------- (DE)QUANTIZE

def test_quantize_dequantize() -> None:
    rng = np.random.default_rng(60)
    for case in range(60):
        shape = [(1, 21), (2, 8), (3, 4, 5), (1, 300)][case % 4]
        s, z = _scale(rng), _zp(rng)
        x = (rng.normal(size=(N, *shape)) * s * 60).astype(np.float32)
        x.ravel()[::3] = (np.round(x.ravel()[::3] / s) + 0.5) * s   # near-ties
        check(single("QUANTIZE", [_f("x", shape)], [_q("y", shape, s, z)]), [x])
        s2 = np.float32(s * 10 ** rng.uniform(-1, 1))
        check(single("QUANTIZE", [_q("x", shape, s, z)], [_q("y", shape, s2, _zp(rng))]),
              [_i8(rng, (N, *shape))])
        check(single("DEQUANTIZE", [_q("x", shape, s, z)], [_f("y", shape)]),
              [_i8(rng, (N, *shape))], exact=True)


# --------------------------------------------------------------------------- layout operators

def _layout_graph(kind, in_shapes, out_shapes, consts=(), quant=True, **options) -> TGraph:
    """consts: (position, array) operands inserted among the inputs."""
    mk = (lambda n, s: _q(n, s, 0.05, 3)) if quant else _f
    ins = [mk(f"x{i}", s) for i, s in enumerate(in_shapes)]
    for pos, arr in consts:
        ins.insert(pos, TTensor(f"c{pos}", "int32", tuple(arr.shape), data=arr))
    return single(kind, ins, [mk(f"y{i}", s) for i, s in enumerate(out_shapes)], **options)


def _feeds(g: TGraph, rng) -> list[np.ndarray]:
    out = []
    for i in g.inputs:
        t = g.tensors[i]
        out.append(_i8(rng, (N, *t.shape)) if t.dtype == "int8"
                   else rng.normal(size=(N, *t.shape)).astype(np.float32))
    return out


LAYOUT_CASES = [
    ("CONCATENATION", [(2, 3, 4), (2, 5, 4)], [(2, 8, 4)], [], {"Axis": 1}),
    ("CONCATENATION", [(1, 3), (1, 2), (1, 6)], [(1, 11)], [], {"Axis": -1}),
    ("SPLIT", [(2, 6, 3)], [(2, 2, 3)] * 3, [(0, np.array(1, np.int32))], {"NumSplits": 3}),
    ("SPLIT", [(1, 8)], [(1, 4)] * 2, [(0, np.array([-1], np.int32))], {"NumSplits": 2}),
    ("UNPACK", [(2, 3, 4)], [(2, 4)] * 3, [], {"Num": 3, "Axis": 1}),
    ("UNPACK", [(1, 2, 5)], [(1, 2)] * 5, [], {"Num": 5, "Axis": 2}),
    ("PACK", [(2, 4)] * 3, [(2, 3, 4)], [], {"ValuesCount": 3, "Axis": 1}),
    ("PACK", [(1, 4)] * 2, [(1, 4, 2)], [], {"ValuesCount": 2, "Axis": 2}),
    ("RESHAPE", [(2, 3, 4)], [(2, 12)], [(1, np.array([2, 12], np.int32))], {}),
    ("RESHAPE", [(1, 12)], [(1, 3, 4)], [(1, np.array([1, 3, 4], np.int32))], {}),
    ("REVERSE_V2", [(2, 5, 3)], [(2, 5, 3)], [(1, np.array([1], np.int32))], {}),
    ("REVERSE_V2", [(1, 4, 3)], [(1, 4, 3)], [(1, np.array([2], np.int32))], {}),
    ("PAD", [(2, 5)], [(2, 6)], [(1, np.array([[0, 0], [0, 1]], np.int32))], {}),
    ("PAD", [(1, 3, 4)], [(1, 6, 5)], [(1, np.array([[0, 0], [2, 1], [0, 1]], np.int32))], {}),
    ("STRIDED_SLICE", [(2, 6, 4)], [(2, 2, 4)],
     [(1, np.array([0, 1, 0], np.int32)), (2, np.array([2, 5, 4], np.int32)),
      (3, np.array([1, 2, 1], np.int32))], {"BeginMask": 5, "EndMask": 5}),
    ("STRIDED_SLICE", [(1, 6, 4)], [(1, 4)],
     [(1, np.array([0, -1, 0], np.int32)), (2, np.array([1, 0, 4], np.int32)),
      (3, np.array([1, 1, 1], np.int32))], {"BeginMask": 1, "EndMask": 5, "ShrinkAxisMask": 2}),
]


@pytest.mark.parametrize("quant", [True, False])
@pytest.mark.parametrize("case", range(len(LAYOUT_CASES)))
def test_layout(case: int, quant: bool) -> None:
    kind, ins, outs, consts, options = LAYOUT_CASES[case]
    g = _layout_graph(kind, ins, outs, consts, quant=quant, **options)
    check(g, _feeds(g, np.random.default_rng(case)))


def test_concat_needs_equal_scales() -> None:
    """LiteRT refuses an int8 CONCATENATION that would have to requantise; so does the sim."""
    g = _layout_graph("CONCATENATION", [(1, 3), (1, 2)], [(1, 5)], Axis=1)
    g.tensors[1].scale = np.float32(0.07)
    feeds = _feeds(g, np.random.default_rng(0))
    with pytest.raises(Exception):  # noqa: B017 - LiteRT raises RuntimeError/ValueError
        litert.invoke(to_flatbuffer(g), feeds)
    with pytest.raises(ValueError, match="one scale and zero point"):
        sim.run(g, [f.reshape((-1, *f.shape[2:])) for f in feeds])

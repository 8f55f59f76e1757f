"""The LiteRT profile's int16 ("16x8") kernels against LiteRT itself, one op per file, bit for
bit (rnnq.sim.litert.wide). Operands are random int16 values; scales are drawn both at random
and as powers-of-two ratios, which put many results exactly halfway between two integers —
where the rounding rules of LiteRT's vector loops and scalar tails differ. Widths are chosen
so that each op has elements in a 16-wide vector loop and in its scalar tail."""

from __future__ import annotations

import numpy as np
import pytest
from tflite_common import require_litert

from rnnq.ir.tgraph import TGraph, TTensor
from rnnq.sim.litert.constraints import problem
from rnnq.sim.litert.interpreter import run

N = 64  # sequences (one invoke each in LiteRT, folded into one call of the profile)


def _both(kind: str, inputs: list[tuple[TTensor, np.ndarray | None]], out: TTensor,
          feeds: list[np.ndarray], **options) -> tuple[np.ndarray, np.ndarray]:
    """(LiteRT, profile) outputs of one op; constants are inputs with data."""
    from rnnq.backends.tflite.runtime import invoke
    from rnnq.backends.tflite.writer import to_flatbuffer

    g = TGraph()
    ids = [g.add(t) if d is None else
           g.const(t.name, d, scale=t.scale, zero_point=t.zero_point, qdim=t.qdim)
           for t, d in inputs]
    o = g.add(out)
    op = g.op(kind, ids, [o], **options)
    g.inputs = [i for i, (_, d) in zip(ids, inputs, strict=True) if d is None]
    g.outputs = [o]
    assert problem(g, op) is None, problem(g, op)
    lite = invoke(to_flatbuffer(g), feeds)[0]
    folded = [f.reshape(-1, *f.shape[2:]) for f in feeds]
    sim = run(g, folded, n=N)[0]
    return lite.reshape(-1), np.asarray(sim).reshape(-1)


def _scales(rng: np.random.Generator, tie: bool, n: int) -> list[np.float32]:
    if tie:
        return [np.float32(2.0 ** -int(rng.integers(8, 16))) for _ in range(n)]
    return [np.float32(10 ** rng.uniform(-5, -2)) for _ in range(n)]


def _i16(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-32768, 32768, (N, *shape)).astype(np.int16)


@pytest.mark.parametrize("kind", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("width", [7, 37, 4103])
def test_elementwise(kind: str, width: int) -> None:
    require_litert()
    rng = np.random.default_rng(width + len(kind))
    for trial in range(12):
        sa, sb, so = _scales(rng, trial % 2 == 0, 3)
        if kind != "MUL":  # an output multiplier below 1, as LiteRT requires
            so = np.float32(max(sa, sb) * 2.0 ** int(rng.integers(-1, 3)))
        shape = (1, 1, width)
        a = TTensor("a", "int16", shape, scale=sa, zero_point=0)
        b = TTensor("b", "int16", shape, scale=sb, zero_point=0)
        y = TTensor("y", "int16", shape, scale=so, zero_point=0)
        opts = {"PotScaleInt16": False} if kind != "MUL" else {}
        lite, sim = _both(kind, [(a, None), (b, None)], y,
                          [_i16(rng, shape), _i16(rng, shape)], **opts)
        assert np.array_equal(lite, sim), (kind, trial, int((lite != sim).sum()))


@pytest.mark.parametrize("relu", [False, True])
def test_fully_connected_16x8(relu: bool) -> None:
    """Many rows per invoke, so that the rare products that fall within a rounding error of a
    half are met: per-channel weights are rescaled in double by LiteRT (the integer
    multiplier's single rounding differs there); one output row (one weight scale) takes the
    per-tensor path."""
    require_litert()
    rng = np.random.default_rng(3 + relu)
    for trial in range(10):
        k, h = int(rng.integers(1, 70)), 1 if trial < 2 else int(rng.integers(2, 40))
        rows = 2000 if h == 1 else 40
        (sx,) = _scales(rng, trial % 2 == 0, 1)
        sw = (10 ** rng.uniform(-3, -1, h)).astype(np.float32)
        so = np.float32(sx * sw.max() * np.sqrt(k) * 10 ** rng.uniform(0, 1.5))
        w = rng.integers(-127, 128, (h, k)).astype(np.int8)
        bias = rng.integers(-2**24, 2**24, h).astype(np.int64)
        zeros = np.zeros(h, np.int64)
        x = TTensor("x", "int16", (1, rows, k), scale=sx, zero_point=0)
        wt = TTensor("w", "int8", (h, k), scale=sw, zero_point=zeros, qdim=0)
        bt = TTensor("b", "int64", (h,), scale=(sx * sw).astype(np.float32), zero_point=zeros,
                     qdim=0)
        y = TTensor("y", "int16", (1, rows, h), scale=so, zero_point=0)
        lite, sim = _both("FULLY_CONNECTED", [(x, None), (wt, w), (bt, bias)], y,
                          [_i16(rng, (1, rows, k))], FusedActivationFunction=int(relu),
                          KeepNumDims=True)
        assert np.array_equal(lite, sim), (trial, int((lite != sim).sum()))


@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
def test_gates_every_input(kind: str) -> None:
    """Q3.12 in, Q0.15 out: all 65,536 inputs."""
    require_litert()
    x = TTensor("x", "int16", (1, 65536), scale=np.float32(2.0**-12), zero_point=0)
    y = TTensor("y", "int16", (1, 65536), scale=np.float32(2.0**-15), zero_point=0)
    every = np.arange(-32768, 32768, dtype=np.int16).reshape(1, 1, -1)
    global N
    n, N = N, 1
    try:
        lite, sim = _both(kind, [(x, None)], y, [every])
    finally:
        N = n
    assert np.array_equal(lite, sim), int((lite != sim).sum())


@pytest.mark.parametrize("direction", ["8to16", "16to8"])
def test_requantize(direction: str) -> None:
    require_litert()
    rng = np.random.default_rng(len(direction) + (direction == "8to16"))
    for trial in range(10):
        tie = trial % 2 == 0
        if direction == "8to16":
            s8 = np.float32(2.0 ** -int(rng.integers(4, 9))) if tie else np.float32(
                10 ** rng.uniform(-3, -1))
            s16 = np.float32(s8 * 2.0 ** -int(rng.integers(1, 9))) if tie else np.float32(
                s8 * 256 / 32767 * 10 ** rng.uniform(0, 0.6))
            x = TTensor("x", "int8", (1, 37), scale=s8, zero_point=int(rng.integers(-128, 128)))
            y = TTensor("y", "int16", (1, 37), scale=s16, zero_point=0)
            feed = rng.integers(-128, 128, (N, 1, 37)).astype(np.int8)
        else:
            s16 = np.float32(2.0 ** -int(rng.integers(10, 15))) if tie else np.float32(
                10 ** rng.uniform(-5, -3))
            s8 = np.float32(s16 * 2.0 ** int(rng.integers(6, 10))) if tie else np.float32(
                s16 * 32767 / 128 * 10 ** rng.uniform(-0.5, 0.2))
            x = TTensor("x", "int16", (1, 37), scale=s16, zero_point=0)
            y = TTensor("y", "int8", (1, 37), scale=s8, zero_point=int(rng.integers(-100, 100)))
            feed = _i16(rng, (1, 37))
        lite, sim = _both("QUANTIZE", [(x, None)], y, [feed])
        assert np.array_equal(lite, sim), (direction, trial, int((lite != sim).sum()))

"""UNIDIRECTIONAL_SEQUENCE_LSTM: rnnq's simulator against LiteRT itself, bit for bit.

Random LSTMs (sizes, weights, quantisation, cell scales, peepholes, cell clip, time-major) are
built with `rnnq.sim.litert.lstm`, written as `.tflite`, run in LiteRT and in `rnnq.sim.litert.interpreter`,
and the whole int8 output sequences must be equal. The gemmlowp fixed-point sigmoid/tanh are
checked exhaustively against LiteRT's int16 LOGISTIC/TANH (same gemmlowp functions on Q3.12);
the other tanh formats (cell scales 2^-15..2^-9) are covered through the LSTM cases.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnq.backends.tflite.lstm_quant import add_float_lstm, add_lstm, cell_exponent
from rnnq.backends.tflite.writer import to_flatbuffer
from rnnq.ir.tgraph import TGraph, TTensor
from rnnq.numerics.gemmlowp import fp_logistic, fp_tanh, tanh_q
from rnnq.sim.litert import context
from rnnq.sim.litert import interpreter as sim
from rnnq.sim.litert.constraints import problem
from tests.cbuild import skip_or_fail

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "tflite"
N_SEQ = 5


@pytest.fixture(scope="module")
def litert():
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        skip_or_fail("ai_edge_litert not installed")
    from rnnq.backends.tflite import runtime as mod
    return mod


def _weights(rng, isz: int, hsz: int, gain: float, peephole: bool):
    w = {g: rng.normal(0, gain / np.sqrt(isz), (hsz, isz)) for g in "ifco"}
    r = {g: rng.normal(0, gain / np.sqrt(hsz), (hsz, hsz)) for g in "ifco"}
    b = {g: rng.normal(0, 0.5, hsz) for g in "ifco"}
    b["f"] += 1.0
    p = {g: rng.normal(0, 0.5, hsz) for g in "ifo"} if peephole else None
    return w, r, b, p


def _graph(rng, isz, hsz, t, batch, *, cell_absmax, peephole=False, clip=0.0,
           time_major=False, gain=None):
    g = TGraph()
    shape = (t, batch, isz) if time_major else (batch, t, isz)
    oshape = (*shape[:2], hsz)
    sx = np.float32(rng.uniform(0.005, 0.05))
    x = g.add(TTensor("x", "int8", shape, scale=sx, zero_point=int(rng.integers(-30, 31))))
    y = g.add(TTensor("y", "int8", oshape, scale=np.float32(rng.uniform(0.006, 0.012)),
                      zero_point=int(rng.integers(-20, 21))))
    gain = rng.uniform(0.5, 3.0) if gain is None else gain
    w, r, b, p = _weights(rng, isz, hsz, gain, peephole)
    add_lstm(g, x, y, w, r, b, cell_absmax, "lstm", peephole=p, cell_clip=clip,
             time_major=time_major)
    g.inputs, g.outputs = [x], [y]
    return g


def _compare(litert, g, rng, resolver="builtin"):
    xt = g.tensors[g.inputs[0]]
    x = rng.integers(-128, 128, (N_SEQ, *xt.shape), dtype=np.int8)
    got = litert.invoke(to_flatbuffer(g), [x], resolver)[0]
    ours = sim.run(g, [x.reshape(-1, *xt.shape[1:])])[0]
    ours = ours.reshape(got.shape)
    assert got.dtype == ours.dtype == np.int8
    diff = np.count_nonzero(got != ours)
    assert diff == 0, f"{diff} of {got.size} outputs differ from LiteRT ({resolver})"
    return got


@pytest.mark.parametrize("seed", range(24))
def test_random_lstm_bit_exact(litert, seed):
    rng = np.random.default_rng(1000 + seed)
    isz, hsz = int(rng.integers(1, 41)), int(rng.integers(1, 41))
    t, batch = int(rng.integers(1, 31)), int(rng.integers(1, 4))
    cell = float(rng.choice([0.3, 0.9, 2.0, 5.0, 12.0, 30.0, 63.0]))
    got = _compare(litert, _graph(rng, isz, hsz, t, batch, cell_absmax=cell), rng)
    assert len(np.unique(got)) > 1 or got.size < 8  # not a degenerate constant output


@pytest.mark.parametrize("isz,hsz,t,batch", [(1, 1, 1, 1), (1, 40, 30, 3), (40, 1, 30, 1),
                                              (40, 40, 2, 2)])
def test_edge_sizes(litert, isz, hsz, t, batch):
    rng = np.random.default_rng(isz * 1000 + hsz * 10 + t)
    _compare(litert, _graph(rng, isz, hsz, t, batch, cell_absmax=8.0), rng)


@pytest.mark.parametrize("cell_exp", range(-15, -8))
def test_every_cell_scale(litert, cell_exp):
    """Each tanh input format LiteRT supports (15 + k integer bits, k = -15..-9)."""
    rng = np.random.default_rng(50 + cell_exp)
    g = _graph(rng, 7, 12, 25, 2, cell_absmax=2.0 ** (cell_exp + 15), gain=2.5)
    assert g.tensors[next(i for i, t in enumerate(g.tensors) if t.name == "lstm/c_state")
                     ].scale == np.float32(2.0 ** cell_exp)
    _compare(litert, g, rng)


@pytest.mark.parametrize("seed", range(4))
def test_peephole_clip_time_major(litert, seed):
    rng = np.random.default_rng(77 + seed)
    g = _graph(rng, int(rng.integers(1, 20)), int(rng.integers(1, 20)),
               int(rng.integers(1, 20)), int(rng.integers(1, 4)), cell_absmax=4.0,
               peephole=seed % 2 == 0, clip=[0.0, 1.5, 3.0, 0.7][seed],
               time_major=seed >= 2)
    _compare(litert, g, rng)


def test_out_of_range_cell_scale(litert):
    """A cell scale of 2^-8 (7 tanh integer bits) is outside what LiteRT's ApplyTanh handles;
    the simulator reproduces what LiteRT then outputs (the stale input-gate buffer)."""
    rng = np.random.default_rng(5)
    g = _graph(rng, 6, 9, 10, 1, cell_absmax=4.0)
    cs = next(t for t in g.tensors if t.name == "lstm/c_state")
    cs.scale = np.float32(2.0 ** -8)
    _compare(litert, g, rng)
    op = g.ops[0]
    assert "outside 2^-15..2^-9" in problem(g, op)  # a file rnnq writes is refused instead
    assert problem(g, op, strict=False) is None  # what the simulator models


@pytest.mark.parametrize("resolver", ["reference", "auto"])
def test_resolvers_agree(litert, resolver):
    rng = np.random.default_rng(9)
    g = _graph(rng, 13, 17, 12, 2, cell_absmax=3.0, peephole=True)
    _compare(litert, g, rng, resolver)


def test_state_written_back():
    """The kernel leaves the last h and the final c in ctx.state (LiteRT's variables)."""
    rng = np.random.default_rng(3)
    g = _graph(rng, 4, 6, 5, 2, cell_absmax=2.0)
    op = g.ops[0]
    ctx = context.Ctx(g, 3)
    for i in (op.inputs[18], op.inputs[19]):
        ctx.state[i] = context.initial_variable(g, i, 3)
    assert np.all(ctx.state[op.inputs[18]] == g.tensors[g.outputs[0]].zero_point)
    x = rng.integers(-128, 128, (6, 5, 4), dtype=np.int8)
    args = [None if i < 0 else (ctx.state.get(i) if i in ctx.state else
                                (x if i == g.inputs[0] else g.tensors[i].data))
            for i in op.inputs]
    y = sim.KERNELS["UNIDIRECTIONAL_SEQUENCE_LSTM"](ctx, op, args)[0]
    np.testing.assert_array_equal(ctx.state[op.inputs[18]], y[:, -1])
    assert ctx.state[op.inputs[19]].dtype == np.int16
    assert np.any(ctx.state[op.inputs[19]] != 0)


def test_reset_gives_initial_variable(litert):
    """LiteRT's ResetVariableTensor fills an int8 variable with its zero point and any other
    type with zero bytes (also at allocation); `sim.initial_variable` must say the same."""
    rng = np.random.default_rng(4)
    g = _graph(rng, 3, 4, 2, 2, cell_absmax=2.0)
    op = g.ops[0]
    it = litert.interpreter(to_flatbuffer(g))
    states = (op.inputs[18], op.inputs[19])
    for i in states:
        np.testing.assert_array_equal(it.get_tensor(i), context.initial_variable(g, i, 1))
    x = rng.integers(-128, 128, g.tensors[g.inputs[0]].shape, dtype=np.int8)
    it.set_tensor(g.inputs[0], x)
    it.invoke()
    assert np.any(it.get_tensor(states[1]) != 0)
    it.reset_all_variables()
    for i in states:
        np.testing.assert_array_equal(it.get_tensor(i), context.initial_variable(g, i, 1))


def test_fixed_point_sigmoid_tanh_exhaustive(litert):
    """gemmlowp logistic/tanh on all 65536 Q3.12 inputs vs LiteRT's int16 LOGISTIC/TANH."""
    xs = np.arange(-32768, 32768, dtype=np.int16)
    for kind, fn in (("LOGISTIC", fp_logistic), ("TANH", fp_tanh)):
        g = TGraph()
        x = g.add(TTensor("x", "int16", (xs.size,), scale=np.float32(2 ** -12), zero_point=0))
        y = g.add(TTensor("y", "int16", (xs.size,), scale=np.float32(2 ** -15), zero_point=0))
        g.op(kind, [x], [y])
        g.inputs, g.outputs = [x], [y]
        got = litert.invoke(to_flatbuffer(g), [xs[None]])[0][0]
        np.testing.assert_array_equal(got, fn(xs, 3), err_msg=kind)


def test_fixed_point_properties():
    """The other tanh formats: odd, within 12.1 LSB of tanh (the known gemmlowp error), and
    only slightly non-monotone (its Newton-Raphson steps dip by up to 16 LSB)."""
    xs = np.arange(-32768, 32768, dtype=np.int64)
    for bits in range(7):
        t = tanh_q(xs, bits)
        assert np.array_equal(t[1:], -t[1:][::-1])
        assert np.max(np.abs(t - np.tanh(xs / 2.0 ** (15 - bits)) * 32768)) < 12.1
        assert np.diff(t).min() >= -16


def test_cell_exponent():
    assert cell_exponent(0.0) == -15
    assert cell_exponent(1.0) == -15
    assert cell_exponent(1.01) == -14
    assert cell_exponent(64.0) == -9
    assert cell_exponent(1000.0) == -9


@pytest.mark.parametrize("seed", range(3))
def test_float_kernel_matches_litert(litert, seed):
    rng = np.random.default_rng(200 + seed)
    isz, hsz, t, batch = (int(v) for v in rng.integers(1, 25, 4))
    batch = batch % 3 + 1
    tm = seed == 2
    g = TGraph()
    shape = (t, batch, isz) if tm else (batch, t, isz)
    x = g.add(TTensor("x", "float32", shape))
    y = g.add(TTensor("y", "float32", (*shape[:2], hsz)))
    w, r, b, p = _weights(rng, isz, hsz, 2.0, peephole=seed == 1)
    add_float_lstm(g, x, y, w, r, b, "lstm", peephole=p, cell_clip=2.0 if seed else 0.0,
                   time_major=tm)
    g.inputs, g.outputs = [x], [y]
    xs = rng.normal(0, 1, (N_SEQ, *shape)).astype(np.float32)
    got = litert.invoke(to_flatbuffer(g), [xs])[0]
    ours = sim.run(g, [xs.reshape(-1, *shape[1:])], float_mode=True)[0].reshape(got.shape)
    np.testing.assert_allclose(ours, got, atol=1e-5, rtol=1e-5)


def test_converter_made_model(litert):
    """TensorFlow's converter's own int8 LSTM (tests/fixtures/tflite) through the simulator."""
    from rnnq.backends.tflite.reader import read_tflite

    model = FIXTURE / "keras_lstm_int8.tflite"
    io = np.load(FIXTURE / "keras_lstm_int8_io.npz")
    g = read_tflite(model)
    x = io["x"]
    ours = sim.run(g, [x.reshape(-1, *x.shape[2:])])[0].reshape(io["y"].shape)
    np.testing.assert_array_equal(ours, io["y"])
    np.testing.assert_array_equal(litert.invoke(model.read_bytes(), [x])[0], io["y"])
    # and rnnq's writer reproduces a model LiteRT runs identically from what the reader read
    np.testing.assert_array_equal(litert.invoke(to_flatbuffer(g), [x])[0], io["y"])

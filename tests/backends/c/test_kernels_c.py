"""Every C kernel (templates/c/runtime/rnnq_kernels.c) against rnnq/sim/kernels.py, exactly."""

from __future__ import annotations

import dataclasses
import re

import cbuild
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnq import numerics as nq
from rnnq.backends.c.layouts import fused
from rnnq.ir.params import (
    BinaryParams,
    DenseParams,
    EmbedParams,
    GruParams,
    LstmParams,
    MagnitudeParams,
    MeanTimeParams,
    RequantParams,
    RnnParams,
    SoftmaxParams,
    hi_path,
)
from rnnq.sim import kernels as sim
from tests.sim.kernel_cases import (
    EMITTED_ONLY,
    LSTM_OPTIONS,
    RNN_ACTS,
    CBinaryParams,
    CDenseParams,
    CEmbedParams,
    CGruParams,
    CLstmParams,
    CMagnitudeParams,
    CMeanTimeParams,
    CRequantParams,
    CRnnParams,
    CSoftmaxParams,
    random_binary,
    random_dense,
    random_dense16,
    random_embed,
    random_gru,
    random_lstm,
    random_magnitude,
    random_mean_time,
    random_requant,
    random_rnn,
    random_softmax,
)

SEEDS = st.integers(0, 2**32 - 1)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _i8(rng, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape).astype(np.int8)


@settings(max_examples=60, deadline=None)
@given(
    seed=SEEDS,
    I=st.integers(1, 40),
    H=st.integers(1, 40),
    T=st.integers(1, 20),
    B=st.integers(1, 3),
    cell_frac=st.integers(7, 27),
)
def test_lstm_sequence(kernels_c, seed, I, H, T, B, cell_frac):
    rng = _rng(seed)
    p = random_lstm(rng, I, H, cell_frac)
    x = _i8(rng, (B, T, I))
    y_sim, c_sim = sim.lstm_sequence(p, x)
    y_c, c_c = kernels_c.lstm_sequence(p, x)
    assert y_sim.dtype == np.int8 and c_sim.dtype == np.int32
    assert np.array_equal(y_c, y_sim)
    assert np.array_equal(c_c, c_sim)


#: int32 cell values at the edges: saturation, the peepholes' rounding of the top 16 bits
CELL_EXTREMES = [-(2**31), -(2**31) + 1, -32769, -32768, -1, 0, 1, 32767, 32768,
                 2**31 - 32769, 2**31 - 1]


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, I=st.integers(1, 40), H=st.integers(1, 40), cell_frac=st.integers(7, 27))
def test_lstm_step_extreme_state(kernels_c, seed, I, H, cell_frac):
    """One step from arbitrary (h, c), including the int32 cell extremes."""
    rng = _rng(seed)
    p = random_lstm(rng, I, H, cell_frac)
    x = _i8(rng, I)
    h = _i8(rng, H)
    c = rng.choice(np.array(CELL_EXTREMES, dtype=np.int32), H)
    c[::2] = rng.integers(-(2**31), 2**31, size=c[::2].size)
    h_sim, c_sim = sim.lstm_step(p, x[None], h[None], c[None])
    h_c, c_c = kernels_c.lstm_step(p, x, h, c)
    assert np.array_equal(h_c, h_sim[0])
    assert np.array_equal(c_c, c_sim[0])


@pytest.mark.parametrize("option", sorted(LSTM_OPTIONS))
@settings(max_examples=25, deadline=None)
@given(
    seed=SEEDS,
    I=st.integers(1, 24),
    H=st.integers(1, 24),
    T=st.integers(1, 12),
    B=st.integers(1, 3),
    cell_frac=st.integers(7, 27),
    state_bits=st.sampled_from([8, 16]),
    x16=st.booleans(),
)
def test_lstm_options_sequence(kernels_c, option, seed, I, H, T, B, cell_frac, state_bits, x16):
    """Each LSTM option alone and combined, state carried over several steps; int8 or int16
    h (the _h16 steps), int8 or int16 x."""
    rng = _rng(seed)
    p = random_lstm(rng, I, H, cell_frac, state_bits=state_bits, **LSTM_OPTIONS[option])
    x = (rng.integers(-32768, 32768, (B, T, I)).astype(np.int16) if x16
         else _i8(rng, (B, T, I)))
    y_sim, c_sim = sim.lstm_sequence(p, x)
    y_c, c_c = kernels_c.lstm_sequence(p, x)
    assert np.array_equal(y_c, y_sim)
    assert np.array_equal(c_c, c_sim)


@pytest.mark.parametrize("option", ["all", "peepholes", "hard_sigmoid"])
@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, I=st.integers(1, 24), H=st.integers(1, 24), cell_frac=st.integers(7, 27))
def test_lstm_options_step_extreme_state(kernels_c, option, seed, I, H, cell_frac):
    rng = _rng(seed)
    p = random_lstm(rng, I, H, cell_frac, **LSTM_OPTIONS[option])
    x, h = _i8(rng, I), _i8(rng, H)
    c = rng.choice(np.array(CELL_EXTREMES, dtype=np.int32), H)
    h_sim, c_sim = sim.lstm_step(p, x[None], h[None], c[None])
    h_c, c_c = kernels_c.lstm_step(p, x, h, c)
    assert np.array_equal(h_c, h_sim[0])
    assert np.array_equal(c_c, c_sim[0])


def test_lstm_default_options_are_todays_bits(kernels_c):
    """Explicit default option values give the same bits as a params object without them."""
    rng = _rng(3)
    p = random_lstm(rng, 6, 5, 11)
    q = dataclasses.replace(
        p, gate_act=0, hs_mult=12345, hs_shift=7, hs_offset=99, clip=0, input_forget=0
    )
    x = _i8(rng, (2, 9, 6))
    y, c = sim.lstm_sequence(p, x)
    for got in (sim.lstm_sequence(q, x), kernels_c.lstm_sequence(q, x)):
        assert np.array_equal(got[0], y) and np.array_equal(got[1], c)


@pytest.mark.parametrize("lbr", [0, 1])
@pytest.mark.parametrize("gates", ["sigmoid", "hard_sigmoid", "clip", "hard_sigmoid_clip"])
@settings(max_examples=25, deadline=None)
@given(
    seed=SEEDS,
    I=st.integers(1, 24),
    H=st.integers(1, 24),
    T=st.integers(1, 12),
    B=st.integers(1, 3),
)
def test_gru_sequence(kernels_c, lbr, gates, seed, I, H, T, B):
    rng = _rng(seed)
    p = random_gru(rng, I, H, lbr, hard_sigmoid="hard" in gates, clip="clip" in gates)
    x = _i8(rng, (B, T, I))
    y_sim = sim.gru_sequence(p, x)
    assert y_sim.dtype == np.int8 and y_sim.shape == (B, T, H)
    assert np.array_equal(kernels_c.gru_sequence(p, x), y_sim)
    h0 = _i8(rng, (B, H))  # per-row initial state
    assert np.array_equal(kernels_c.gru_sequence(p, x, h0), sim.gru_sequence(p, x, h0))


@pytest.mark.parametrize("lbr", [0, 1])
@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, I=st.integers(1, 24), H=st.integers(1, 24))
def test_gru_step_extreme_state(kernels_c, lbr, seed, I, H):
    rng = _rng(seed)
    p = random_gru(rng, I, H, lbr, hard_sigmoid=bool(rng.integers(2)), clip=bool(rng.integers(2)))
    x = _i8(rng, I)
    h = rng.choice(np.array([-128, -127, 0, 126, 127], dtype=np.int8), H)
    assert np.array_equal(kernels_c.gru_step(p, x, h), sim.gru_step(p, x[None], h[None])[0])


@pytest.mark.parametrize("act", sorted(RNN_ACTS))
@pytest.mark.parametrize("clip", [False, True])
@settings(max_examples=25, deadline=None)
@given(
    seed=SEEDS,
    I=st.integers(1, 24),
    H=st.integers(1, 24),
    T=st.integers(1, 12),
    B=st.integers(1, 3),
)
def test_rnn_sequence(kernels_c, act, clip, seed, I, H, T, B):
    rng = _rng(seed)
    p = random_rnn(rng, I, H, RNN_ACTS[act], clip=clip)
    x = _i8(rng, (B, T, I))
    y_sim = sim.rnn_sequence(p, x)
    assert y_sim.dtype == np.int8 and y_sim.shape == (B, T, H)
    assert np.array_equal(kernels_c.rnn_sequence(p, x), y_sim)
    h0 = _i8(rng, (B, H))
    assert np.array_equal(kernels_c.rnn_sequence(p, x, h0), sim.rnn_sequence(p, x, h0))
    step = kernels_c.rnn_step(p, x[0, 0], h0[0])
    assert np.array_equal(step, sim.rnn_step(p, x[0, 0][None], h0[0][None])[0])


def test_rnn_relu_clip_bound(kernels_c):
    """Relu output range [out_zp, min(127, out_zp + clip)], with out_zp + clip past 127 too."""
    rng = _rng(11)
    for out_zp, clip in [(-128, 5), (100, 50), (0, 127), (127, 1), (-20, 2**31 - 1)]:
        p = dataclasses.replace(random_rnn(rng, 8, 16, 1, clip=True), out_zp=out_zp, clip=clip)
        x = _i8(rng, (2, 6, 8))
        y = sim.rnn_sequence(p, x)
        assert y.min() >= out_zp and y.max() <= min(127, out_zp + clip)
        assert np.array_equal(kernels_c.rnn_sequence(p, x), y)


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, n=st.integers(1, 300), wide=st.booleans())
def test_requant(kernels_c, seed, n, wide):
    rng = _rng(seed)
    p = random_requant(rng, wide)
    if wide:
        x = rng.integers(-32768, 32768, size=n).astype(np.int16)
        x[0], x[-1] = -32768, 32767
    else:
        x = _i8(rng, n)
        x[0], x[-1] = -128, 127
    assert np.array_equal(kernels_c.requant_s8(p, x), sim.requant_s8(p, x))


@pytest.mark.parametrize("log2_factor", [-30.0, -20.5, -9.0, -1.0, 0.5, 3.0])
def test_requant_s32_both_forms(kernels_c, log2_factor):
    """An int32 tensor (an LSTM cell leaving the layer) to int8, across the factors that give
    shifts >= 33 (the high-word form) and below, with the int32 extremes."""
    mult, shift = nq.quantize_multiplier(2.0**log2_factor)
    p = RequantParams(in_zp=0, out_zp=-7, mult=mult, shift=shift)
    x = _rng(int(shift)).integers(-(2**31), 2**31, 500).astype(np.int32)
    x[:6] = [-(2**31), 2**31 - 1, -1, 0, 1, 2**20]
    assert np.array_equal(kernels_c.requant_s8(p, x), sim.requant_s8(p, x))


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, size=st.integers(1, 40), T=st.integers(1, 40), B=st.integers(1, 3))
def test_mean_time(kernels_c, seed, size, T, B):
    rng = _rng(seed)
    p = random_mean_time(rng, size)
    x = _i8(rng, (B, T, size))
    if rng.integers(2):
        x[..., : size // 2] = rng.choice(np.array([-128, 127], np.int8))  # extreme runs
    assert np.array_equal(kernels_c.mean_time(p, x), sim.mean_time(p, x))


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, vocab=st.integers(1, 50), dim=st.integers(1, 40), n=st.integers(1, 60))
def test_embed(kernels_c, seed, vocab, dim, n):
    rng = _rng(seed)
    p = random_embed(rng, vocab, dim)
    ids = rng.integers(-3, vocab + 3, size=n).astype(np.int32)
    ids[0] = -(2**31)
    ids[-1] = 2**31 - 1
    assert np.array_equal(kernels_c.embed(p, ids), sim.embed(p, ids))


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, K=st.integers(1, 64), N=st.integers(1, 40), rows=st.integers(1, 5))
def test_dense(kernels_c, seed, K, N, rows):
    rng = _rng(seed)
    p = random_dense(rng, K, N)
    x = _i8(rng, (rows, K))
    assert np.array_equal(kernels_c.dense(p, x), sim.dense(p, x))


def test_dense_exact_zero_point_sum(kernels_c):
    """out_zp + requant(...) must not wrap in int32 before the clamp."""
    p = DenseParams(
        in_features=1,
        out_features=2,
        w=np.array([[1], [-1]], np.int8),
        bias=np.array([2**31 - 200, -(2**31) + 200], np.int32),
        mult=np.array([2**31 - 1] * 2, np.int32),
        shift=np.array([31, 31], np.int32),
        out_zp=127,
        act_min=-128,
        act_max=127,
    )
    x = np.array([[100], [-100]], np.int8)
    want = sim.dense(p, x)
    assert want.tolist() == [[127, -128], [127, -128]]
    assert np.array_equal(kernels_c.dense(p, x), want)


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, op=st.sampled_from(["add", "mul"]), n=st.integers(1, 300))
def test_binary(kernels_c, seed, op, n):
    rng = _rng(seed)
    p = random_binary(rng, op)
    a, b = _i8(rng, n), _i8(rng, n)
    assert np.array_equal(kernels_c.binary(p, a, b), sim.binary(p, a, b))


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, n=st.integers(1, 600))
def test_lut(kernels_c, seed, n):
    rng = _rng(seed)
    table = _i8(rng, 256)
    x = _i8(rng, n)
    x[0], x[-1] = -128, 127
    assert np.array_equal(kernels_c.lut(table, x), sim.lut(table, x))


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, depth=st.integers(1, 300), rows=st.integers(1, 4))
def test_softmax(kernels_c, seed, depth, rows):
    rng = _rng(seed)
    p = random_softmax(rng, depth)
    x = _i8(rng, (rows, depth))
    if rng.integers(2):
        x = np.clip(x, int(rng.integers(-128, 128)), 127).astype(np.int8)  # ties at the max
    got = kernels_c.softmax(p, x)
    assert np.array_equal(got, sim.softmax(p, x))


def test_softmax_wide_row_uses_64_bit_path(kernels_c):
    rng = _rng(7)
    p = random_softmax(rng, 40000)
    x = _i8(rng, (1, 40000))
    x[0, :35000] = 5  # sum of exp_table above 2^31
    assert np.array_equal(kernels_c.softmax(p, x), sim.softmax(p, x))


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, m=st.integers(1, 100), n=st.integers(1, 200))
def test_take(kernels_c, seed, m, n):
    rng = _rng(seed)
    x = _i8(rng, m)
    index = rng.integers(0, m, size=n).astype(np.int32)
    assert np.array_equal(kernels_c.take(index, x), sim.take(index, x))


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, m=st.integers(1, 100), n=st.integers(1, 200), wide=st.booleans())
def test_take_fill(kernels_c, seed, m, n, wide):
    """Index maps with padding (-1 -> the fill value), int8 and int16."""
    rng = _rng(seed)
    x = _i16(rng, m) if wide else _i8(rng, m)
    index = rng.integers(-1, m, size=n).astype(np.int32)
    fill = int(rng.integers(-128, 128))
    assert np.array_equal(kernels_c.take(index, x, fill), sim.take(index, x, fill))
    assert np.array_equal(kernels_c.take(np.maximum(index, 0), x),
                          sim.take(np.maximum(index, 0), x))


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, K=st.integers(1, 500), N=st.integers(1, 24), rows=st.integers(1, 4))
def test_dense_s16(kernels_c, seed, K, N, rows):
    """int16 -> int16 dense of a 16-bit front end, extremes of x over-represented."""
    rng = _rng(seed)
    p = random_dense16(rng, K, N)
    x = _i16(rng, (rows, K))
    got = kernels_c.dense(p, x)
    assert got.dtype == np.int16
    assert np.array_equal(got, sim.dense(p, x))


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, n_ops=st.integers(1, 3), wide=st.booleans(), n=st.integers(1, 300))
def test_magnitude(kernels_c, seed, n_ops, wide, n):
    """sqrt of 1-3 squares, int8 and int16 (three int16 extremes: a sum near 3 * 2^30)."""
    rng = _rng(seed)
    p = random_magnitude(rng, wide)
    xs = [_i16(rng, n) if wide else _i8(rng, n) for _ in range(n_ops)]
    got = kernels_c.magnitude(p, *xs)
    assert got.dtype == xs[0].dtype
    assert np.array_equal(got, sim.magnitude(p, *xs))


def test_magnitude_extremes(kernels_c):
    """Every operand at -32768: the uint32 sum 3 * 2^30 and isqrt 55426 (= round(sqrt))."""
    p = MagnitudeParams(in_zp=0, out_zp=0, mult=2**30, shift=30, act_min=-32767, act_max=32767)
    x = np.full(4, -32768, np.int16)
    for k in (1, 2, 3):
        want = np.minimum(np.full(4, round((k * 2**30) ** 0.5)), 32767)
        assert np.array_equal(sim.magnitude(p, *[x] * k), want)
        assert np.array_equal(kernels_c.magnitude(p, *[x] * k), want)


def _c_struct_fields(struct: str) -> list[str]:
    text = (cbuild.RUNTIME_DIR / "rnnq_kernels.h").read_text()
    m = re.search(r"typedef struct \{([^{}]*)\}\s*" + struct + ";", text)
    assert m is not None, struct
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.DOTALL)
    return re.findall(r"(\w+);", body)


@pytest.mark.parametrize(
    "cls, struct, ctype",
    [
        (LstmParams, "rnnq_lstm_params", CLstmParams),
        (DenseParams, "rnnq_dense_params", CDenseParams),
        (BinaryParams, "rnnq_binary_params", CBinaryParams),
        (SoftmaxParams, "rnnq_softmax_params", CSoftmaxParams),
        (GruParams, "rnnq_gru_params", CGruParams),
        (RnnParams, "rnnq_rnn_params", CRnnParams),
        (RequantParams, "rnnq_requant_params", CRequantParams),
        (MeanTimeParams, "rnnq_mean_time_params", CMeanTimeParams),
        (EmbedParams, "rnnq_embed_params", CEmbedParams),
        (MagnitudeParams, "rnnq_magnitude_params", CMagnitudeParams),
    ],
)
def test_structs_mirror_params_field_for_field(cls, struct, ctype):
    """Then the fields the backend derives at emission (an LSTM's and GRU's rowk: plan.py,
    layouts.fused_emitted), last."""
    names = [f.name for f in dataclasses.fields(cls)] + list(EMITTED_ONLY.get(ctype.__name__, ()))
    assert _c_struct_fields(struct) == names
    assert [n for n, _ in ctype._fields_] == names


def _i16(rng, shape) -> np.ndarray:
    """int16 inputs with the extremes (-32768, 32767) over-represented."""
    x = rng.integers(-32768, 32768, size=shape).astype(np.int16)
    ends = rng.random(shape) < 0.2
    x[ends] = rng.choice(np.array([-32768, 32767], np.int16), size=int(ends.sum()))
    return x


def _for_x16(p):
    """Params whose input side expects an int16 input: the input requantisation 2^8 smaller
    (as the quantiser makes it), so that the gates are not all saturated."""
    return dataclasses.replace(p, shift_x=(np.asarray(p.shift_x) + 8).astype(np.int32))


@pytest.mark.parametrize("kind", ["lstm", "gru0", "gru1", "rnn_tanh", "rnn_relu"])
@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, I=st.integers(1, 40), H=st.integers(1, 24), T=st.integers(1, 10),
       B=st.integers(1, 2))
def test_x16_steps_sequence(kernels_c, kind, seed, I, H, T, B):
    """rnnq_<kind>_step_x16 (a 16-bit model input) against the simulator, which takes the
    int16 input as it takes an int8 one."""
    rng = _rng(seed)
    if kind == "lstm":
        p = _for_x16(random_lstm(rng, I, H, int(rng.integers(7, 16))))
    elif kind.startswith("gru"):
        p = _for_x16(random_gru(rng, I, H, int(kind[-1])))
    else:
        p = _for_x16(random_rnn(rng, I, H, 0 if kind == "rnn_tanh" else 1))
    x = _i16(rng, (B, T, I))
    if kind == "lstm":
        y_sim, c_sim = sim.lstm_sequence(p, x)
        y_c, c_c = kernels_c.lstm_sequence(p, x)
        assert np.array_equal(c_c, c_sim)
    else:
        fn = "gru_sequence" if kind.startswith("gru") else "rnn_sequence"
        y_sim, y_c = getattr(sim, fn)(p, x), getattr(kernels_c, fn)(p, x)
    assert np.array_equal(y_c, y_sim)


@pytest.mark.parametrize("x16", [False, True])
@pytest.mark.parametrize("lbr", [0, 1])
@pytest.mark.parametrize("gates", ["sigmoid", "hard_sigmoid_clip"])
@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, I=st.integers(1, 24), H=st.integers(1, 40), T=st.integers(1, 12),
       B=st.integers(1, 2))
def test_gru_h16_sequence(kernels_c, x16, lbr, gates, seed, I, H, T, B):
    """A GRU with a 16-bit state (rnnq_gru_step_s8_h16 / _x16_h16) against the simulator,
    from p.h0 and from int16 initial states at the extremes."""
    rng = _rng(seed)
    p = random_gru(rng, I, H, lbr, hard_sigmoid="hard" in gates, clip="clip" in gates,
                   state_bits=16)
    p = _for_x16(p) if x16 else p
    x = _i16(rng, (B, T, I)) if x16 else _i8(rng, (B, T, I))
    y_sim = sim.gru_sequence(p, x)
    assert y_sim.dtype == np.int16
    assert np.array_equal(kernels_c.gru_sequence(p, x), y_sim)
    h0 = _i16(rng, (B, H))
    assert np.array_equal(kernels_c.gru_sequence(p, x, h0), sim.gru_sequence(p, x, h0))


@pytest.mark.parametrize("x16", [False, True])
@pytest.mark.parametrize("act", sorted(RNN_ACTS))
@pytest.mark.parametrize("clip", [False, True])
@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, I=st.integers(1, 24), H=st.integers(1, 40), T=st.integers(1, 12),
       B=st.integers(1, 2))
def test_rnn_h16_sequence(kernels_c, x16, act, clip, seed, I, H, T, B):
    """A vanilla RNN with a 16-bit state (rnnq_rnn_step_s8_h16 / _x16_h16, both paths) against
    the simulator, from p.h0 and from int16 initial states at the extremes."""
    rng = _rng(seed)
    p = random_rnn(rng, I, H, RNN_ACTS[act], clip=clip, state_bits=16)
    p = _for_x16(p) if x16 else p
    x = _i16(rng, (B, T, I)) if x16 else _i8(rng, (B, T, I))
    y_sim = sim.rnn_sequence(p, x)
    assert y_sim.dtype == np.int16
    assert np.array_equal(kernels_c.rnn_sequence(p, x), y_sim)
    h0 = rng.choice(np.array([-32768, -32767, -1, 0, 1, 32767], np.int16), (B, H))
    assert np.array_equal(kernels_c.rnn_sequence(p, x, h0), sim.rnn_sequence(p, x, h0))
    if p.requant_hi:
        assert np.array_equal(kernels_c.rnn_sequence(p, x, h0, hi=True),
                              sim.rnn_sequence(p, x, h0))


def test_rnn_h16_relu_clip_bound(kernels_c):
    """Relu with an int16 state: [0, min(32767, clip)], clips below and past 32767."""
    rng = _rng(12)
    for clip in (5, 3000, 32767, 2**31 - 1):
        p = dataclasses.replace(random_rnn(rng, 8, 16, 1, clip=True, state_bits=16), clip=clip)
        x = _i8(rng, (2, 6, 8))
        y = sim.rnn_sequence(p, x)
        assert y.min() >= 0 and y.max() <= min(32767, clip)
        assert np.array_equal(kernels_c.rnn_sequence(p, x), y)


def _recurrent(kind: str, rng) -> object:
    if kind.startswith("lstm"):
        return random_lstm(rng, 9, 13, int(rng.integers(7, 28)),
                           state_bits=16 if kind.endswith("h16") else 8)
    if kind.startswith("gru"):
        return random_gru(rng, 9, 13, int(kind[3]), clip=bool(rng.integers(2)),
                          state_bits=16 if kind.endswith("h16") else 8)
    return random_rnn(rng, 9, 13, RNN_ACTS[kind.split("_")[1]], clip=bool(rng.integers(2)),
                      state_bits=16 if kind.endswith("h16") else 8)


@pytest.mark.parametrize("hi", [0, 1])
@pytest.mark.parametrize("kind", ["lstm", "lstm_h16", "gru0", "gru1", "gru1_h16", "rnn_tanh",
                                  "rnn_relu", "rnn_sigmoid", "rnn_tanh_h16", "rnn_relu_h16"])
def test_requant_hi_and_general_paths(kernels_c, kind, hi):
    """Both paths of each recurrent kernel: requant_hi (every shift >= 33: the branch-free loops
    compilers vectorise) and the general one, the same bits as the simulator, from extreme
    states. The random params give both (tests/sim/kernel_cases._gate_top)."""
    seeds = (s for s in range(100) if _recurrent(kind, _rng(s)).requant_hi == hi)
    rng = _rng(next(seeds))
    p = _recurrent(kind, rng)
    assert p.requant_hi == hi
    x = _i8(rng, (2, 12, 9))
    if hi:  # the _hi entry points too, which the C backend calls for these params
        assert hi_path(p)
        name = "lstm" if kind.startswith("lstm") else kind[:3]
        for xs in (x, rng.integers(-32768, 32768, (2, 5, 9)).astype(np.int16)):
            got = getattr(kernels_c, f"{name}_sequence")(p, xs, hi=True)
            want = getattr(sim, f"{name}_sequence")(p, xs)
            got, want = (got, want) if name == "lstm" else ((got,), (want,))
            assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    if kind.startswith("lstm"):
        got, want = kernels_c.lstm_sequence(p, x), sim.lstm_sequence(p, x)
        assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
        if p.state_bits == 16:
            return  # (the step helper takes an int8 h; the sequence above covers h16)
        c = rng.choice(np.array(CELL_EXTREMES, dtype=np.int32), 13)
        h = np.asarray(p.h0)
        h_sim, c_sim = sim.lstm_step(p, x[0, 0][None], h[None], c[None])
        h_c, c_c = kernels_c.lstm_step(p, x[0, 0], h, c)
        assert np.array_equal(h_c, h_sim[0]) and np.array_equal(c_c, c_sim[0])
    elif kind.startswith("gru"):
        assert np.array_equal(kernels_c.gru_sequence(p, x), sim.gru_sequence(p, x))
    else:
        assert np.array_equal(kernels_c.rnn_sequence(p, x), sim.rnn_sequence(p, x))


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("state_bits", [8, 16])
@pytest.mark.parametrize("H", [5, 8, 13, 24])
def test_lstm_fused_entry_points(kernels_c, state_bits, H, clip):
    """The unit-major steps (rnnq_lstm_step_*_fused, p reordered by layouts.unit_major): the
    simulator's bits with int8 and int16 x, for H below, at and past a block of 8 units (a
    partial last block), from the params' h0 and from extreme cell states; clip: a gate clip
    below 2.0 (the steps' clamp to [-clip, clip] instead of sat16)."""
    cases = (random_lstm(_rng(s), 9, H, 7 + s % 21, clip=clip, state_bits=state_bits)
             for s in range(300))
    p = next(q for q in cases if hi_path(q) and (not clip or 0 < q.clip < 8192))
    rng = _rng(H)
    for xs in (_i8(rng, (3, 12, 9)), rng.integers(-32768, 32768, (2, 6, 9)).astype(np.int16)):
        got = kernels_c.lstm_sequence(p, xs, fused=True)
        want = sim.lstm_sequence(p, xs)
        assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    q = dataclasses.replace(p, c0=rng.choice(np.array(CELL_EXTREMES, dtype=np.int32), H))
    assert fused(q)
    xs = _i8(rng, (1, 4, 9))
    got, want = kernels_c.lstm_sequence(q, xs, fused=True), sim.lstm_sequence(q, xs)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


def test_tanh_table_ends_flat():
    """The unit-major steps clamp tanh's table index to 1023 (rnnq_tanh_cut, rnnq_tanh_gate in
    rnnq_kernels.c), which is exact because the table's last two entries are equal."""
    assert nq.TANH_TABLE[-2] == nq.TANH_TABLE[-1] == nq.INT16_MAX


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("state_bits", [8, 16])
@pytest.mark.parametrize("H", [5, 8, 13, 24])
def test_gru_fused_entry_points(kernels_c, state_bits, H, clip):
    """The unit-major GRU steps (linear_before_reset 1): the simulator's bits with int8 and
    int16 x, below, at and past a block of 8 units, from p.h0 and from extreme states; clip: a
    gate clip below 2.0 (also the candidate's)."""
    cases = (random_gru(_rng(s), 9, H, 1, clip=clip, state_bits=state_bits)
             for s in range(300))
    p = next(q for q in cases if fused(q) and (not clip or 0 < q.clip < 8192))
    rng = _rng(H)
    lim = 32767 if state_bits == 16 else 127
    h0 = rng.choice(np.array([-lim - 1, lim, 0]), (3, H))
    for xs in (_i8(rng, (3, 12, 9)), rng.integers(-32768, 32768, (3, 6, 9)).astype(np.int16)):
        assert np.array_equal(kernels_c.gru_sequence(p, xs, fused=True), sim.gru_sequence(p, xs))
        assert np.array_equal(kernels_c.gru_sequence(p, xs, h0, fused=True),
                              sim.gru_sequence(p, xs, h0))

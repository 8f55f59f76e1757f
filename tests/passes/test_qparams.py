"""passes/qparams.py: one set of quantisation-parameter rules, one rounding rule
(rnnq.numerics.round_half_away), for both backends."""

from __future__ import annotations

import numpy as np
import pytest

from rnnq import numerics as nx
from rnnq.backends.tflite.quantize import int8_params, quantize_int8
from rnnq.ir import RnnqError
from rnnq.passes.qparams import (
    TINY,
    act_qparams,
    bias_int32,
    quantize_symmetric,
    symmetric_scale,
    widen,
)


def test_round_half_away_is_the_rule() -> None:
    v = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999999, -0.4999999])
    assert nx.round_half_away(v).tolist() == [-3, -2, -1, 1, 2, 3, 0, 0]


def test_activation_zero_point_ties_round_away_from_zero() -> None:
    # [-1, 1]: -128 - (-1) / (2 / 255) = -0.5 exactly, which rounds to -1 (not to even, 0)
    s, z = act_qparams(-1.0, 1.0)
    assert s == pytest.approx(2 / 255) and int(z) == -1
    s, z = act_qparams(0.0, 3.0)  # a range that does not reach below 0
    assert int(z) == -128 and s == pytest.approx(3 / 255)
    s, z = act_qparams(0.0, 0.0)  # a tensor that is always 0
    assert s == TINY and int(z) == -128


def test_both_backends_compute_activation_parameters_alike() -> None:
    """The tflite quantiser stores act_qparams' scale in float32 and takes its zero point."""
    rng = np.random.default_rng(1)
    los, his = -rng.exponential(2.0, 500), rng.exponential(2.0, 500)
    los[:50], his[:50] = -his[:50], his[:50]  # symmetric ranges: zero-point ties
    for lo, hi in zip(los, his):
        s, z = act_qparams(lo, hi)
        assert int8_params(lo, hi) == (np.float32(s), int(z))


def test_widen_within_bounds() -> None:
    lo, hi = widen(-0.5, 0.9, 1.25, (-1.0, 1.0))
    assert float(lo) == -0.625 and float(hi) == 1.0


def test_symmetric_weights() -> None:
    w = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [2.0, 1.0, -0.4921875]])
    s = symmetric_scale(w)
    assert s.tolist() == [1.0 / 127, TINY, 2.0 / 127]
    q = quantize_symmetric(w, s[:, None])
    assert q.dtype == np.int8 and q[0].tolist() == [64, -127, 32] and q[1].tolist() == [0, 0, 0]
    assert q[2].tolist() == [127, 64, -31]  # -0.4921875 * 63.5 = -31.25
    s16 = symmetric_scale(w, bits=16, per_row=False)
    assert s16.tolist() == [2.0 / 32767]
    assert quantize_symmetric(w, s16[0], bits=16).dtype == np.int16


def test_bias_that_does_not_fit_int32_is_an_error() -> None:
    assert bias_int32(np.array([1.5, -2.5]), 1.0, "b").tolist() == [2, -3]
    with pytest.raises(RnnqError, match="dense_b: bias does not fit int32"):
        bias_int32(np.array([1e6]), 1e-6, "dense_b")


def test_host_side_quantisation_is_one_function() -> None:
    x = np.array([-1.0, -0.5, 0.5, 1.0, 3.0]) * 0.1
    np.testing.assert_array_equal(quantize_int8(x, np.float32(0.1), 0),
                                  nx.quantize(x, np.float64(np.float32(0.1)), 0))
    assert nx.quantize(np.array([0.05, -0.05]), 0.1, 3).tolist() == [4, 2]


def test_a_multiplier_beyond_int32_is_one_line_with_a_hint() -> None:
    """A requantisation factor >= 2^30 (an exploding ReLU RNN upstream; fuzz seeds 92044,
    93054) is refused naming the node, the factor, and where such scales come from."""
    from rnnq.ir import Node
    from rnnq.passes.qcommon import mults

    with pytest.raises(RnnqError, match=r"^node 'rnn1': requantisation factor 1\.05e\+15 is too "
                       r"large \(>= 2\^30\); .*explodes upstream"):
        mults(Node("rnn", [], [], {}, "rnn1"), np.array([0.5, 1.05e15]))
    m, s = mults(Node("rnn", [], [], {}, "rnn1"), np.array([0.5]))
    assert m.tolist() == [1 << 30] and s.tolist() == [31]

"""Calibration of the float IR (passes/calibrate.py) and the --seq-len playback both backends
use (data.playback)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnq.api import float_graph
from rnnq.data import Dataset, load_npz, playback
from rnnq.passes.calibrate import apply_ranges, calibrate, ranges_record
from tests.conftest import EXAMPLE


def _data(lengths: list[int], t_max: int = 6) -> Dataset:
    x = np.zeros((len(lengths), t_max, 1), np.float32)
    for i, n in enumerate(lengths):
        x[i, :n, 0] = 100 * i + np.arange(1, n + 1)  # step k of sequence i holds 100 i + k
        x[i, n:, 0] = -1.0  # padding, never played
    return Dataset(x, np.array(lengths, np.int64), None)


def test_playback_uses_every_real_step_once() -> None:
    d = _data([3, 6, 2, 5])
    s = playback(d, 4)
    assert s.x.shape == (4, 4, 1) and np.all(s.lengths == 4)  # 16 real steps -> 4 streams
    vals = sorted(s.x.ravel().tolist())
    real = sorted(v for i, n in enumerate(d.lengths) for v in d.x[i, :n, 0])
    assert vals == real and -1.0 not in vals


def test_playback_keeps_each_sequence_in_order() -> None:
    s = playback(_data([3, 6, 2, 5]), 4).x.ravel()
    for i, n in enumerate([3, 6, 2, 5]):
        seq = [v for v in s if 100 * i < v <= 100 * i + 99]
        assert seq == [100 * i + k for k in range(1, n + 1)]


def test_playback_repeats_short_data_and_is_seeded() -> None:
    d = _data([3, 2])
    s = playback(d, 12)
    assert s.x.shape == (1, 12, 1)  # 5 steps, repeated 3 times, cut to one stream
    np.testing.assert_array_equal(s.x, playback(d, 12).x)


def test_calibration_record_rebuilds_the_same_ranges() -> None:
    g = float_graph(EXAMPLE / "model.onnx")
    data = load_npz(EXAMPLE / "calib.npz", g)
    calibrate(g, Dataset(data.x[:20], data.lengths[:20], None), method="percentile")
    rec = ranges_record(g)
    assert rec["meta"]["method"] == "percentile" and rec["meta"]["percentile"] == 99.99
    g2 = apply_ranges(float_graph(EXAMPLE / "model.onnx"), rec)
    assert {n: t.range for n, t in g2.tensors.items()} == {n: t.range
                                                            for n, t in g.tensors.items()}


def _gru_with_initial_h(tmp_path, h0: float):
    """A GRU whose outputs stay small (|h| < 0.1 after a few steps) but whose constant
    initial_h is h0."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    hsz, isz = 4, 2
    rng = np.random.default_rng(5)
    arrays = {"W": rng.normal(0, 0.05, (1, 3 * hsz, isz)), "R": rng.normal(0, 0.05, (1, 3 * hsz, hsz)),
              "B": np.zeros((1, 6 * hsz)), "h0": np.full((1, 1, hsz), h0)}
    inits = [numpy_helper.from_array(a.astype(np.float32), k) for k, a in arrays.items()]
    node = helper.make_node("GRU", ["x", "W", "R", "B", "", "h0"], ["y"], hidden_size=hsz)
    g = helper.make_graph([node], "m",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6, 1, isz])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, 1, 1, hsz])],
                          inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]),
              str(tmp_path / "m.onnx"))
    x = np.random.default_rng(6).normal(0, 0.1, (8, 6, isz)).astype(np.float32)
    return float_graph(tmp_path / "m.onnx"), Dataset(x, np.full(8, 6, np.int64), None)


@pytest.mark.parametrize("method", ["minmax", "percentile"])
def test_constant_initial_state_is_not_clipped(tmp_path, method: str) -> None:
    from rnnq.passes.quantize import quantize

    g, data = _gru_with_initial_h(tmp_path, -0.95)
    g = calibrate(g, data, method=method)
    gru = next(n for n in g.nodes if n.op == "gru")
    ig = quantize(g)
    p = next(n for n in ig.nodes if n.op == "qgru").attrs["params"]
    q = ig.tensors[gru.outputs[0]].q
    h0 = (p.h0.astype(np.float64) - float(q.zero_point)) * float(q.scale)
    assert np.all(np.abs(h0 + 0.95) <= float(q.scale) / 2 + 1e-12), (h0, float(q.scale))


def test_packed_state_output_takes_the_cell_range(tmp_path) -> None:
    """Concat([Y_h, Y_c]) (a packed state output) is bounded by both of its inputs: the cell
    half is unbounded, so headroom may not clip the range to the hidden state's +-1."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    hsz, isz = 4, 2
    rng = np.random.default_rng(7)
    arrays = {"W": rng.normal(0, 2.0, (1, 4 * hsz, isz)), "R": rng.normal(0, 0.5, (1, 4 * hsz, hsz)),
              "B": np.zeros((1, 8 * hsz))}
    arrays["B"][0, 2 * hsz : 3 * hsz] = 4.0  # forget gate open: the cell integrates
    inits = [numpy_helper.from_array(a.astype(np.float32), k) for k, a in arrays.items()]
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "B"], ["y", "hn", "cn"], hidden_size=hsz),
             helper.make_node("Concat", ["hn", "cn"], ["state"], axis=0)]
    g = helper.make_graph(nodes, "m",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, isz])],
                          [helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, 1, hsz])],
                          inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]),
              str(tmp_path / "m.onnx"))
    x = np.abs(np.random.default_rng(8).normal(0, 1.0, (8, 20, isz))).astype(np.float32)
    fg = float_graph(tmp_path / "m.onnx")
    cal = calibrate(fg, Dataset(x, np.full(8, 20, np.int64), None))
    cell = next(n for n in cal.nodes if n.op == "lstm").outputs[1]
    assert max(abs(v) for v in cal.tensors[cell].range) > 2.0  # the cell does leave +-1
    lo, hi = cal.tensors["state"].range
    assert max(-lo, hi) >= max(abs(v) for v in cal.tensors[cell].range)

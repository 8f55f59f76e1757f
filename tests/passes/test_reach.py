"""Headroom where data can drift (issue 10 item 3): calibration widens a range by --headroom
only up to what the tensor can reach whatever the input (rnnq/passes/reach.py, interval
arithmetic from the unbounded model input). The bounds are checked against their closed forms
and against the float model driven far beyond its calibration data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx import helper as oh

from rnnq.api import float_graph
from rnnq.data import load_npz
from rnnq.passes.calibrate import calibrate
from rnnq.passes.reach import reachable
from rnnq.sim.float_ref import run_float

F, H, T = 5, 12, 30


def _model(path: Path) -> dict[str, np.ndarray]:
    """x -> LSTM -> h; outputs: sigmoid(h W1 + b1), h W2 + b2, x W3 (+ relu of a sum)."""
    r = np.random.default_rng(3)
    c = {"W": r.normal(size=(1, 4 * H, F)) / 2, "R": r.normal(size=(1, 4 * H, H)) / 4,
         "W1": r.normal(size=(H, 3)), "b1": r.normal(size=3),
         "W2": r.normal(size=(H, 4)), "b2": r.normal(size=4), "W3": r.normal(size=(F, 2)),
         "axis": np.array([1])}
    c = {k: v.astype(np.float32) if v.dtype != np.int64 else v for k, v in c.items()}
    nodes = [oh.make_node("LSTM", ["x", "W", "R"], ["Y"], hidden_size=H),
             oh.make_node("Squeeze", ["Y", "axis"], ["h"]),
             oh.make_node("MatMul", ["h", "W1"], ["m1"]), oh.make_node("Add", ["m1", "b1"], ["a1"]),
             oh.make_node("Sigmoid", ["a1"], ["y1"]),
             oh.make_node("MatMul", ["h", "W2"], ["m2"]), oh.make_node("Add", ["m2", "b2"], ["y2"]),
             oh.make_node("MatMul", ["x", "W3"], ["y3"])]
    g = oh.make_graph(nodes, "reach", [oh.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                 ["T", 1, F])],
                      [oh.make_tensor_value_info(n, TensorProto.FLOAT, ["T", 1, k])
                       for n, k in (("y1", 3), ("y2", 4), ("y3", 2))],
                      [numpy_helper.from_array(v, k) for k, v in c.items()])
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)]), path)
    return c


def _data(path: Path, scale: float, seed: int) -> Path:
    x = np.random.default_rng(seed).normal(size=(8, T, F)) * scale
    np.savez(path, x=x.astype(np.float32))
    return path


def test_reach_closed_forms_and_far_inputs(tmp_path: Path) -> None:
    c = _model(tmp_path / "m.onnx")
    g = float_graph(tmp_path / "m.onnx")
    reach = reachable(g)
    y1, y2, y3 = (g.outputs[k] for k in range(3))
    # h in [-1, 1]: a dense of it reaches b +- sum |W| per output; a sigmoid [0, 1]; the input's
    # dense nothing bounds
    w2 = c["W2"].astype(np.float64)
    want = (float((c["b2"] - np.abs(w2).sum(axis=0)).min()),
            float((c["b2"] + np.abs(w2).sum(axis=0)).max()))
    assert np.allclose(reach[y2], want)
    assert reach[y1][0] >= 0.0 and reach[y1][1] <= 1.0
    assert reach[y3] == (-np.inf, np.inf)
    # inputs 1000x beyond calibration's: every value stays inside its tensor's reach
    x = load_npz(_data(tmp_path / "far.npz", 1000.0, 1), g).x
    env = run_float(g, x)
    for name, (lo, hi) in reach.items():
        if name in env and g.tensors[name].kind != "const":
            v = env[name]
            assert v.min() >= lo - 1e-9 and v.max() <= hi + 1e-9, name


def test_headroom_stops_at_the_reach(tmp_path: Path) -> None:
    _model(tmp_path / "m.onnx")
    g = float_graph(tmp_path / "m.onnx")
    data = load_npz(_data(tmp_path / "c.npz", 3.0, 2), g)
    exact = {t.name: t.range for t in calibrate(float_graph(tmp_path / "m.onnx"), data,
                                                headroom=1.0).tensors.values() if t.range}
    wide = {t.name: t.range for t in calibrate(g, data, headroom=1.25).tensors.values()
            if t.range}
    reach = reachable(g)
    y1, y3 = g.outputs[0], g.outputs[2]
    for name in wide:
        lo, hi = reach.get(name, (-np.inf, np.inf))
        # never inside what calibration saw, never beyond the reach unless calibration was
        assert wide[name][0] <= exact[name][0] and wide[name][1] >= exact[name][1]
        assert wide[name][0] >= min(lo, exact[name][0]) - 1e-12
        assert wide[name][1] <= max(hi, exact[name][1]) + 1e-12
    # the input's linear layer keeps the full headroom; the sigmoid stays within [0, 1]
    assert np.isclose(wide[y3][1], 1.25 * exact[y3][1])
    assert 0.0 <= wide[y1][0] and wide[y1][1] <= 1.0 < 1.25 * exact[y1][1]
    # the LSTM's h (every recurrent output) within +-1
    h = next(n.outputs[0] for n in g.nodes if n.op == "lstm")
    assert -1.0 <= wide[h][0] and wide[h][1] <= 1.0

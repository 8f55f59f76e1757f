"""Graph clean-ups on shapes users' exporters make: thousands of Identity nodes (a chain of
views) import as one view, with no pass walking or recursing along the chain."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto
from onnx import helper as oh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "frontend"))

from onnx_cases import X0, F, H, Net

from rnnq.api import compile_model, float_graph, simulate


def test_identity_chain_becomes_one_view(tmp_path: Path) -> None:
    """3,000 Identity nodes after an LSTM: the recursion along them overflowed Python's stack
    in calibration (exit 3) and the passes' searches were quadratic. The float IR keeps the
    LSTM and at most a view or two; the integer model equals the same LSTM without them."""
    n = Net(seed=4)
    y = n.lstm("x", F, outputs=("Y", ""))[0]
    plain = oh.make_graph(list(n.nodes), "g", [oh.make_tensor_value_info(
        "x", TensorProto.FLOAT, X0)], [oh.make_tensor_value_info(
            y, TensorProto.FLOAT, ["T", 1, 1, H])], list(n.inits))
    h = y
    for _ in range(3000):
        h = n.op("Identity", h)
    long = oh.make_graph(n.nodes, "g", [oh.make_tensor_value_info("x", TensorProto.FLOAT, X0)],
                         [oh.make_tensor_value_info(h, TensorProto.FLOAT, ["T", 1, 1, H])],
                         n.inits)
    paths = {}
    for name, g in (("plain", plain), ("long", long)):
        paths[name] = tmp_path / f"{name}.onnx"
        onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)]), str(paths[name]))
    ops = [x.op for x in float_graph(paths["long"]).nodes]
    assert ops.count("reshape") <= 2 and "lstm" in ops, ops
    x = np.random.default_rng(0).normal(size=(4, 7, F)).astype(np.float32)
    out = {}
    for name, p in paths.items():
        compile_model(p, x, tmp_path / name / "b")
        out[name] = next(iter(simulate(tmp_path / name / "b", x, integer=True).values()))
    assert np.array_equal(out["plain"], out["long"])

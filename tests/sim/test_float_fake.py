"""The float reference's fake-quantisation hook (what `--per-layer` measures "alone" with)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from rnnq.api import float_graph
from rnnq.sim.float_ref import run_float

I, H, T = 3, 4, 7


def _model(op: str, gates: int) -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.6, (1, gates * H, I)).astype(np.float32)
    r = rng.normal(0, 0.6, (1, gates * H, H)).astype(np.float32)
    b = rng.normal(0, 0.2, (1, 2 * gates * H)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w, "W"), (r, "R"), (b, "B"))]
    node = helper.make_node(op, ["x", "W", "R", "B"], ["y"], hidden_size=H)
    g = helper.make_graph([node], "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                      [T, 1, I])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                         [T, 1, 1, H])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]), w, b


def _state(graph) -> str:
    return next(n.outputs[0] for n in graph.nodes if n.op in ("rnn", "gru", "lstm"))


def _graph(m: onnx.ModelProto, tmp_path):
    onnx.save(m, str(tmp_path / "m.onnx"))
    return float_graph(tmp_path / "m.onnx")


def test_identity_fake_changes_nothing(tmp_path) -> None:
    m, _, _ = _model("GRU", 3)
    g = _graph(m, tmp_path)
    x = np.random.default_rng(0).normal(size=(2, T, I))
    a, b = run_float(g, x), run_float(g, x, fake={_state(g): lambda v: v})
    assert all(np.array_equal(a[k], b[k]) for k in g.outputs)


def test_a_rounded_state_is_rounded_inside_the_loop(tmp_path) -> None:
    """Rounding h to a coarse grid inside the loop equals an independent numpy RNN whose h is
    rounded at every step."""
    m, w, b = _model("RNN", 1)
    g = _graph(m, tmp_path)
    x = np.random.default_rng(2).normal(size=(1, T, I))
    rnd = lambda v: np.round(v * 4) / 4
    env = run_float(g, x, fake={_state(g): rnd})
    r = onnx.numpy_helper.to_array(m.graph.initializer[1])[0].astype(np.float64)
    h = np.zeros(H)
    for t in range(T):
        h = rnd(np.tanh(x[0, t] @ w[0].T.astype(np.float64) + h @ r.T + b[0, :H] + b[0, H:]))
        assert np.allclose(env[_state(g)].reshape(T, H)[t], h, rtol=0, atol=1e-12)
    assert not np.allclose(run_float(g, x)[_state(g)].reshape(T, H), env[_state(g)].reshape(T, H))

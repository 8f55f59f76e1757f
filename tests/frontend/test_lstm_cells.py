"""LSTM cells written as elementwise ops (rnnq.frontend.onnx.cells): PyTorch's nn.LSTMCell
(Gemm + Gemm + Add + Split, gates i, f, g, o) and Keras cells as tf2onnx writes them (MatMul,
Split, gates i, f, c, o; tests/variants/step_models.keras_cells, which the step-graph tests run
end to end) become LSTM nodes: the rewritten graph computes what the original does (onnxruntime
on both), the model compiles as a streaming step graph, and the C is bit-exact. What is not
exactly a cell stays as it is."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from rnnq.api import compile_model, validate
from rnnq.frontend.onnx.cells import LAYOUT_OPS, fuse_lstm_cells
from rnnq.frontend.onnx.importer import STATE_LAYOUT_OPS
from rnnq.ir import RnnqError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "variants"))
from step_models import keras_cells

try:
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    if os.environ.get("CI") == "true":
        pytest.fail("torch is required in CI but not importable", pytrace=False)
    pytest.skip("torch not installed", allow_module_level=True)

F, H = 5, 8


class Step(torch.nn.Module):
    """One call = one step: (x [1, F], h, c) -> (y = Linear(h'), h', c')."""

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.cell, self.out = torch.nn.LSTMCell(F, H), torch.nn.Linear(H, 3)

    def forward(self, x, h, c):
        h2, c2 = self.cell(x, (h, c))
        return self.out(h2), h2, c2


def _torch_cell(path: Path, seed: int = 0) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Step(seed).eval(), (torch.randn(1, F), torch.randn(1, H),
                                              torch.randn(1, H)), str(path), dynamo=False,
                          opset_version=17, input_names=["x", "h", "c"],
                          output_names=["y", "h_out", "c_out"])
    return path


def _same_outputs(original: Path, tmp_path: Path) -> onnx.ModelProto:
    """Fuse, check, and run both graphs on random inputs: equal within float32 rounding."""
    m = onnx.load(str(original))
    assert fuse_lstm_cells(m) > 0
    onnx.checker.check_model(m, full_check=True)
    fused = tmp_path / "fused.onnx"
    onnx.save(m, str(fused))
    r = np.random.default_rng(0)
    feeds = {i.name: r.normal(size=[d.dim_value for d in i.type.tensor_type.shape.dim])
             .astype(np.float32) for i in m.graph.input}
    a = ort.InferenceSession(str(original)).run(None, feeds)
    b = ort.InferenceSession(str(fused)).run(None, feeds)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    return m


def test_layout_ops_agree_with_the_importer() -> None:
    assert LAYOUT_OPS == STATE_LAYOUT_OPS


def test_torch_lstm_cell_is_fused(tmp_path: Path) -> None:
    m = _same_outputs(_torch_cell(tmp_path / "cell.onnx"), tmp_path)
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("LSTM") == 1 and "Sigmoid" not in ops and "Split" not in ops


def test_keras_cells_are_fused(tmp_path: Path) -> None:
    m = _same_outputs(keras_cells(tmp_path / "k.onnx"), tmp_path)
    assert [n.op_type for n in m.graph.node].count("LSTM") == 2


def test_torch_cell_step_graph_bit_exact(tmp_path: Path) -> None:
    """The exported cell is a streaming model whose state inputs are h and c."""
    model = _torch_cell(tmp_path / "cell.onnx", seed=1)
    r = np.random.default_rng(1)
    np.savez(tmp_path / "cal.npz", x=r.normal(size=(4, 40, 1, F)).astype(np.float32))
    np.savez(tmp_path / "test.npz", x=r.normal(size=(3, 30, 1, F)).astype(np.float32),
             h=r.uniform(-0.5, 0.5, (3, 1, H)).astype(np.float32),
             c=r.uniform(-1, 1, (3, 1, H)).astype(np.float32))
    m = compile_model(model, tmp_path / "cal.npz", tmp_path / "b")
    assert set(m["state_inputs"]) == {"h", "c"}
    rep = validate(tmp_path / "b", tmp_path / "test.npz")
    assert rep["c"]["bit_exact"] and rep["c"]["compared_values"] > 0
    print(f"torch LSTMCell step graph: {rep['int']['sqnr_db']:.1f} dB")
    assert rep["int"]["sqnr_db"] > 35.0


def test_not_a_cell_is_left_alone(tmp_path: Path) -> None:
    """The same arithmetic with the forget gate's product reading the new candidate instead of
    the previous cell is no LSTM: nothing is fused."""
    m = onnx.load(str(_torch_cell(tmp_path / "cell.onnx")))
    mul = next(n for n in m.graph.node if n.op_type == "Mul" and "c" in n.input)
    tanh = next(n for n in m.graph.node if n.op_type == "Tanh")
    mul.input[list(mul.input).index("c")] = tanh.output[0]
    assert fuse_lstm_cells(m) == 0
    # compiled, it is refused with one line naming where each extra input goes
    onnx.save(m, str(tmp_path / "not_a_cell.onnx"))
    np.savez(tmp_path / "cal.npz", x=np.zeros((1, 4, 1, F), np.float32))
    with pytest.raises(RnnqError) as e:
        compile_model(tmp_path / "not_a_cell.onnx", tmp_path / "cal.npz", tmp_path / "b")
    msg = str(e.value)
    assert "\n" not in msg and "'h' reaches Gemm" in msg and not (tmp_path / "b").exists()

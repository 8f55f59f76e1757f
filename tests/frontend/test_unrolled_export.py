"""A graph that reads a middle timestep and has no recurrent op is what an exporter that
unrolled the recurrence writes (torch.onnx.export's default, dynamo, does so for nn.RNN): the
refusal names the node and says how to export instead."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from onnx_cases import H, Net

from rnnq.api import float_graph
from rnnq.ir import RnnqError


def _middle_step(path: Path, with_lstm: bool) -> Path:
    """x [1, 24, 1] (batch first, one feature: a forecaster) made time-major, then step 1 of
    it read, as the unrolled export reads each step (Transpose, Slice, Squeeze)."""
    n = Net(seed=3)
    xt = n.op("Transpose", "x", perm=[1, 0, 2])  # [T, 1, 1]
    if with_lstm:
        xt = n.squeeze(n.lstm(xt, 1, hidden=H)[0], 1)  # Y [T, 1, 1, H] -> [T, 1, H]
    step = n.squeeze(n.slice(xt, [1], [2], [0]), 0)
    return n.save(path, [1, 24, 1], [n.op("Tanh", step)])


def test_unrolled_recurrence_gets_the_exporter_hint(tmp_path: Path) -> None:
    """The hint's condition on the graph (the refusal itself is the existing Slice one: on
    torch 2.13's default export of nn.RNN, checked by hand, it reads `node 'node_Slice_24'
    (Slice): slices timesteps other than the first or last one; the graph has no LSTM/GRU/RNN
    node, ...`)."""
    import onnx

    from rnnq.frontend.onnx.handlers import _unrolled_hint

    plain = onnx.load(str(_middle_step(tmp_path / "a.onnx", with_lstm=False)))
    assert "dynamo=False" in _unrolled_hint(SimpleNamespace(model=plain))
    rec = onnx.load(str(_middle_step(tmp_path / "b.onnx", with_lstm=True)))
    assert _unrolled_hint(SimpleNamespace(model=rec)) == ""


def test_a_graph_with_a_recurrent_op_gets_no_hint(tmp_path: Path) -> None:
    with pytest.raises(RnnqError, match="slices timesteps other than") as e:
        float_graph(_middle_step(tmp_path / "m.onnx", with_lstm=True))
    assert "dynamo" not in str(e.value)

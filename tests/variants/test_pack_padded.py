"""PyTorch models that take the sequence lengths as a second input (pack_padded_sequence):
the length input folds with the traced length, the data's `lengths` feeds it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from variants_common import require_host_toolchain, require_torch

from rnnq.api import compile_model, float_graph, validate


@pytest.mark.filterwarnings("ignore")  # the exporter's tracer and deprecation notes
@pytest.mark.parametrize("kind", ["gru2", "bilstm2"])
def test_pack_padded_export_bit_exact(kind: str, tmp_path: Path) -> None:
    torch = require_torch()
    nn = torch.nn
    from torch.nn.utils.rnn import pack_padded_sequence

    torch.manual_seed(0)
    bi = kind == "bilstm2"

    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            cell = nn.LSTM if bi else nn.GRU
            self.rnn = cell(12, 16, num_layers=2, batch_first=True, bidirectional=bi)
            self.fc = nn.Linear(32 if bi else 16, 5)

        def forward(self, x, lengths):
            _, h = self.rnn(pack_padded_sequence(x, lengths, batch_first=True,
                                                 enforce_sorted=False))
            h = h[0] if bi else h
            return self.fc(torch.cat([h[-2], h[-1]], -1) if bi else h[-1])

    model = tmp_path / "m.onnx"
    torch.onnx.export(M().eval(), (torch.randn(1, 20, 12), torch.tensor([20])), str(model),
                      dynamo=False, opset_version=17, input_names=["x", "lengths"],
                      output_names=["logits"], dynamic_axes={"x": {1: "T"}})
    g = float_graph(model)
    assert set(g.meta["length_inputs"]) == {"lengths"}
    rng = np.random.default_rng(1)
    for name in ("cal", "test"):
        np.savez(tmp_path / f"{name}.npz", x=rng.standard_normal((24, 20, 12)).astype(np.float32),
                 lengths=rng.integers(3, 21, 24))
    require_host_toolchain()
    compile_model(model, tmp_path / "cal.npz", tmp_path / "b", "host", "m")
    rep = validate(tmp_path / "b", tmp_path / "test.npz")
    assert rep["float"]["engine"] == "onnxruntime"  # fed with each sequence's length
    assert rep["c"]["bit_exact"] and rep["c"]["mismatches"] == 0, rep["c"]
    print(f"{kind}: SQNR {rep['int']['sqnr_db']:.1f} dB")
    assert rep["int"]["sqnr_db"] > 25.0

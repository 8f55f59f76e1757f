"""`--tflite-loop while`: GRU and vanilla-RNN layers rolled into WHILE loops compute exactly
the integers of the unrolled file (LiteRT runs both on the same inputs), validate bit-exact
against the simulator (which runs the loop from the file's subgraphs), and keep the file size
independent of T."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_tflite_variants import CASES, F, _model
from tflite_common import require_litert

from rnnq.api import compile_model, validate
from rnnq.backends.tflite import runtime as litert
from rnnq.backends.tflite.reader import read_tflite

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
TORCH = sorted(p.stem for p in FIXTURES.glob("torch_[gr]*.onnx"))
VARIANTS = sorted(k for k in CASES if not k.startswith("lstm"))


def _model_for(name: str, tmp_path: Path) -> tuple[Path, int]:
    if name in CASES:
        kind, direction, out, attrs = CASES[name]
        return _model(tmp_path / f"{name}.onnx", kind, direction, out, **dict(attrs)), F
    return FIXTURES / f"{name}.onnx", 4


@pytest.mark.parametrize("name", TORCH + VARIANTS)
def test_while_equals_unrolled(name: str, tmp_path: Path) -> None:
    require_litert()
    model, feat = _model_for(name, tmp_path)
    rng = np.random.default_rng(5)
    t_len = 11
    np.savez(tmp_path / "c.npz", x=rng.normal(size=(16, t_len, feat)).astype(np.float32))
    np.savez(tmp_path / "t.npz", x=rng.normal(size=(5, t_len, feat)).astype(np.float32))
    files = {}
    for loop in ("unrolled", "while"):
        m = compile_model(model, tmp_path / "c.npz", tmp_path / loop, fmt="tflite",
                          tflite_loop=loop)
        assert m["tflite"]["loop"] == loop
        files[loop] = (tmp_path / loop / "model.tflite").read_bytes()
        rep = validate(tmp_path / loop, tmp_path / "t.npz")
        assert rep["tflite"]["bit_exact"] and rep["tflite"]["compared_values"] > 0, rep
    g = read_tflite(files["while"])
    assert "WHILE" in g.op_counts() and "UNPACK" not in g.op_counts()
    assert len(g.subgraphs) == 2 * g.op_counts()["WHILE"]
    with np.load(tmp_path / "t.npz") as z:
        x = z["x"]
    t = g.tensors[g.inputs[0]]
    xq = np.clip(np.round(x / float(t.scale)) + int(t.zero_point), -128, 127).astype(np.int8)
    a, b = (litert.invoke(files[k], [xq[:, None]]) for k in ("unrolled", "while"))
    for u, w in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, w)
    print(f"{name}: unrolled {len(files['unrolled'])} B, while {len(files['while'])} B")
    assert len(files["while"]) < len(files["unrolled"])

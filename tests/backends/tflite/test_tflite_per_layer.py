"""`rnnq validate --per-layer` on a .tflite build: the file's tensors against the float graph."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from tflite_common import require_litert

from rnnq import numerics as nx
from rnnq.api import compile_model, validate
from rnnq.report import sqnr_db

ROOT = Path(__file__).resolve().parents[3]
GRU = ROOT / "examples" / "basic_motions_gru"


def test_unrolled_gru_per_layer(tmp_path: Path) -> None:
    require_litert()
    out = tmp_path / "b"
    m = compile_model(GRU / "model.onnx", GRU / "calib.npz", out, fmt="tflite")
    rep = validate(out, GRU / "test.npz", per_layer=True)["per_layer"]
    rows = {r["tensor"]: r for r in rep["tensors"]}
    # an unrolled recurrence: one row per role, not one per step
    assert any(re.fullmatch(r".*/h\*", k) for k in rows), list(rows)
    assert not any(re.fullmatch(r".*/[a-z_]+\d+", k) for k in rows), list(rows)
    assert {"logistic", "tanh", "fully_connected"} <= {r["op"] for r in rows.values()}
    # the input row is the file's input grid, measured here without rnnq.diagnose
    x = np.load(GRU / "test.npz")["x"].astype(np.float64)
    i = m["tflite"]["input"]
    q = {"int8": 127, "int16": 32767}[i["dtype"]]  # (int16: only the 16-bit GRU reads it)
    back = (np.clip(nx.round_half_away(x / i["scale"]) + i["zero_point"], -q - 1, q)
            - i["zero_point"]) * i["scale"]
    assert rows["x"]["sqnr_db"] == pytest.approx(sqnr_db(x, back), abs=1e-6)
    assert rep["costliest_alone"] in rows

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
    assert rep["costliest_alone"] in rows | {r["tensor"]: r for r in rep["weights"]}
    _check_weight_rows(out, m, rep)


def _check_weight_rows(out: Path, m: dict, rep: dict) -> None:
    """Each FULLY_CONNECTED weight matrix of the file once (the unrolled steps share them),
    its SQNR the file's int8 values (per-channel scales, read back here) against the float
    weights of the lowered graph, within half a step of them; a recurrent matrix with 16-bit
    weights (its residual `<name>/lo/W` beside it) is one row of the two summed, within half
    a step of the residual's grid."""
    from rnnq.api import float_graph
    from rnnq.backends.tflite.lower import lower
    from rnnq.backends.tflite.reader import read_tflite

    q = read_tflite((out / "model.tflite").read_bytes())
    fc = {q.tensors[op.inputs[1]].name for op in q.ops if op.kind == "FULLY_CONNECTED"}
    lo = {n for n in fc if n.endswith("/lo/W")}
    names = [r["tensor"] for r in rep["weights"]]
    assert sorted(names) == sorted(fc - lo) and len(set(names)) == len(names)
    fl = lower(float_graph(out / "model.onnx"), m["tflite"]["seq_len"]).graph
    fw = {t.name: t.data for t in fl.tensors if t.data is not None}

    def back(name: str, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        t = next(t for t in q.tensors if t.name == name)
        step = np.asarray(t.scales(), np.float64).reshape(-1, *[1] * (ndim - 1))
        return t.data.astype(np.float64) * step, step

    for r in rep["weights"]:
        w = fw[r["tensor"]].astype(np.float64)
        deq, step = back(r["tensor"], w.ndim)
        pair = r["tensor"].removesuffix("/W") + "/lo/W"
        assert r["dtype"] == ("int16 (r16)" if pair in lo else "int8")
        if pair in lo:
            rest, step = back(pair, w.ndim)
            deq = deq + rest
        assert r["sqnr_db"] == pytest.approx(sqnr_db(w, deq), abs=1e-9)
        assert np.all(np.abs(w - deq) <= step / 2 + 1e-12)
        assert np.isfinite(r["alone_sqnr_db"])

"""`rnnq validate` says which tensors saturate and how often, and warns below the accuracy
goal (issue 14 item 3): the bundled forecaster on its test data (nothing saturates) and on the
same data three times louder (its input saturates: the reported fraction equals the fraction
counted independently from the manifest's input scale)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnq.api import compile_model, validate
from rnnq.report import format_report

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sunspots_rnn"


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sat") / "b"
    return out, compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", out)


def test_no_saturation_no_warning_on_representative_data(build) -> None:
    rep = validate(build[0], EXAMPLE / "test.npz")
    assert rep["saturation"]["tensors"] == [] and rep["saturation"]["checked"] > 3
    assert rep["warnings"] == []
    assert "saturating" not in format_report(rep)


def test_louder_data_reports_the_input_saturating(build, tmp_path: Path) -> None:
    d = dict(np.load(EXAMPLE / "test.npz"))
    d["x"] = d["x"] * 3
    np.savez(tmp_path / "loud.npz", **d)
    rep = validate(build[0], tmp_path / "loud.npz")
    rows = {r["tensor"]: r for r in rep["saturation"]["tensors"]}
    inp = build[1]["input"]
    scale = float(np.max(inp["scale"]))
    limit = (32767 + 0.5) * scale if inp["dtype"] == "int16" else None
    assert limit is not None
    want = float(np.mean(np.abs(d["x"]) > limit))
    assert want > 0.1
    assert rows[inp["name"]]["fraction"] == pytest.approx(want, abs=1e-12)
    assert rep["int"]["sqnr_db"] < 35 and len(rep["warnings"]) == 2
    text = format_report(rep)
    assert "saturating tensors" in text and "warning: the integer model's SQNR" in text

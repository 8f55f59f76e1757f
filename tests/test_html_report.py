"""`rnnq validate --report`: the HTML page carries the report's numbers, stands alone, and the
confusion matrix agrees with the labels counted independently."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from rnnq.html_report import render_html
from rnnq.report import metrics

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "japanese_vowels"


def test_confusion_matrix_counts_label_and_prediction() -> None:
    pred = np.array([[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0, 0, 1.0]])
    y = np.array([0, 1, 2, 2])
    m = metrics(pred, y)
    assert m["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert m["accuracy"] == 0.75
    assert "confusion" not in metrics(pred, pred[:, 0].astype(np.float32))  # regression


def _rep() -> dict:
    rows = [{"tensor": f"t{k}", "op": "qgru", "dtype": "int8", "sqnr_db": 40.0 - k,
             "max_error_lsb": 1.0, "alone_sqnr_db": float("inf") if k == 2 else 50.0}
            for k in range(3)]
    return {"n": 2, "target": "generic-c99",
            "float": {"accuracy": 1.0, "rmse": None, "engine": "onnxruntime",
                      "confusion": [[1, 0], [0, 1]]},
            "int": {"accuracy": 0.5, "rmse": None, "sqnr_db": 12.5, "max_abs_error": 0.3,
                    "max_error_lsb": 4.0, "confusion": [[1, 0], [1, 0]]},
            "c": {"bit_exact": True, "mismatches": 0, "compared_values": 10},
            "error_by_step": {"sqnr_db": [10.0, 20.0, 999.0, 30.0], "rmse": [0, 0, 0, 0]},
            "per_layer": {"threshold_db": 35.0, "tensors": rows, "first_below_threshold": "t0",
                          "costliest_alone": "t0"}}


def test_page_holds_every_part_and_nothing_external() -> None:
    page = render_html(_rep(), "a <b> & c")
    assert page.startswith("<!DOCTYPE html>") and "a &lt;b&gt; &amp; c" in page
    assert "12.50 dB" in page  # the accuracy table's SQNR
    assert page.count("<rect") == 2 * 3  # accumulated and alone bar for each tensor
    (points,) = re.findall(r'<polyline points="([^"]+)"', page)
    assert len(points.split()) == 4  # one point per timestep
    assert page.count('<table class="conf">') == 2
    assert "<script" not in page and not re.search(r'(src|href)=', page)


def test_validate_writes_the_report(example_build: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    r = subprocess.run([sys.executable, "-m", "rnnq.cli", "validate", str(example_build), "--data",
                        str(EXAMPLE / "test.npz"), "--report", str(out), "--json",
                        str(tmp_path / "r.json")], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert "Where error enters" in page and "Confusion matrices" in page
    import json
    rep = json.loads((tmp_path / "r.json").read_text())
    conf = np.array(rep["int"]["confusion"])
    y = np.load(EXAMPLE / "test.npz")["y"]
    assert conf.sum() == len(y) and np.array_equal(conf.sum(axis=1), np.bincount(y))
    assert np.trace(conf) / len(y) == rep["int"]["accuracy"]
    assert not list(tmp_path.glob(".*.tmp"))

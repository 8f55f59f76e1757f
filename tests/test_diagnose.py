"""`rnnq validate --per-layer`: where error enters (rnnq.diagnose)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from rnnq import numerics as nx
from rnnq.api import float_graph, open_graphs, validate
from rnnq.data import load_npz
from rnnq.diagnose import per_layer_c
from rnnq.passes.calibrate import apply_ranges
from rnnq.passes.quantize import quantize
from rnnq.report import sqnr_db

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "japanese_vowels"
H = "/lstm/LSTM_output_0_d0_h__t7"  # the example's LSTM hidden state


@pytest.fixture(scope="module")
def graphs(example_build):
    b, fg, ig = open_graphs(example_build)
    return b, fg, ig, load_npz(EXAMPLE / "test.npz", fg)


def test_input_row_is_the_input_grid_measured_independently(graphs) -> None:
    _, fg, ig, data = graphs
    rep = per_layer_c(fg, ig, data, streaming=True)
    row = rep["tensors"][0]
    assert row["tensor"] == ig.inputs[0] and row["op"] == "input"
    t = ig.tensors[ig.inputs[0]]
    q, top = t.q, {"int8": 127, "int16": 32767}[t.dtype]
    x = data.x.astype(np.float64)
    back = (np.clip(nx.round_half_away(x / q.scale) + q.zero_point, -top - 1, top)
            - q.zero_point) * q.scale
    real = np.arange(x.shape[1])[None, :] < data.lengths[:, None]
    assert row["sqnr_db"] == pytest.approx(sqnr_db(x[real], back[real]), abs=1e-9)
    names = [r["tensor"] for r in rep["tensors"]]
    assert H in names and "logits" in names and len(set(names)) == len(names)


def test_a_starved_range_is_named_where_it_enters(graphs, example_build) -> None:
    """The LSTM's h given a range 20x too small: its row is the first below the threshold and
    the costliest grid on its own; the rows before it are untouched."""
    b, fg, ig, data = graphs
    good = per_layer_c(fg, ig, data, streaming=True)
    cal = copy.deepcopy(b.calibration)
    cal["tensors"][H] = [-0.05, 0.05]
    bad_ig = quantize(apply_ranges(float_graph(EXAMPLE / "model.onnx"), cal))
    bad = per_layer_c(fg, bad_ig, data, streaming=True)
    assert good["first_below_threshold"] != H
    assert bad["first_below_threshold"] == H
    assert bad["costliest_alone"] == H
    rows = {r["tensor"]: r for r in bad["tensors"]}
    assert rows[H]["sqnr_db"] < 20 and rows[H]["alone_sqnr_db"] < 20
    before = good["tensors"][: [r["tensor"] for r in good["tensors"]].index(H)]
    for r in before:
        assert rows[r["tensor"]]["sqnr_db"] == r["sqnr_db"]


def test_cli_prints_and_writes_per_layer(example_build, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rnnq.cli import main

    out = tmp_path / "rep.json"
    r = CliRunner().invoke(main, ["validate", str(example_build), "--data",
                                  str(EXAMPLE / "test.npz"), "--per-layer", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "per layer" in r.output and H in r.output and "costliest grid" in r.output
    rep = json.loads(out.read_text())["per_layer"]
    assert {"tensor", "op", "dtype", "sqnr_db", "max_error_lsb", "alone_sqnr_db"} <= set(
        rep["tensors"][0])
    assert "per_layer" not in validate(example_build, EXAMPLE / "test.npz")

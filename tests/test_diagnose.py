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
    rep = per_layer_c(fg, ig, data)
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
    good = per_layer_c(fg, ig, data)
    cal = copy.deepcopy(b.calibration)
    cal["tensors"][H] = [-0.05, 0.05]
    bad_ig = quantize(apply_ranges(float_graph(EXAMPLE / "model.onnx"), cal))
    bad = per_layer_c(fg, bad_ig, data)
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


def test_weight_rows_are_the_int8_grid_measured_independently(graphs) -> None:
    """A row per weight matrix (the LSTM's W and R, the head's W): its SQNR is the matrix
    against one int8 scale per row (max |row| / 127, ties away from zero; the input's scales
    folded in for W), computed here from the ONNX initialisers' values; its `alone` figure is
    the float model run with that matrix replaced in a copy of the graph."""
    _, fg, ig, data = graphs
    rep = per_layer_c(fg, ig, data)
    rows = {r["tensor"]: r for r in rep["weights"]}
    lstm = next(n for n in fg.nodes if n.op == "lstm")
    assert {f"{lstm.name} W", f"{lstm.name} R"} <= set(rows)
    r_row = rows[f"{lstm.name} R"]
    r = fg.tensors[lstm.inputs[2]].data.astype(np.float64)
    s = np.abs(r).max(axis=1, keepdims=True) / 127
    rq = np.sign(r / s) * np.floor(np.abs(r / s) + 0.5) * s
    assert r_row["sqnr_db"] == pytest.approx(sqnr_db(r, rq), abs=1e-9)
    assert r_row["max_error_lsb"] <= 0.5 + 1e-9
    g2 = copy.deepcopy(fg)
    g2.tensors[lstm.inputs[2]].data = rq
    from rnnq.sim.float_ref import run_float

    out = fg.outputs[0]
    last = data.lengths - 1
    ref = run_float(fg, data.x, lengths=data.lengths)[out]
    got = run_float(g2, data.x, lengths=data.lengths)[out]
    pick = np.arange(data.n)
    want = sqnr_db(ref[pick, last], got[pick, last])
    assert r_row["alone_sqnr_db"] == pytest.approx(want, abs=1e-6)


def test_output_row_is_the_headline(graphs, example_build) -> None:
    """The output's row compares what validate's headline compares (the last real step of a
    final output), not every step of a streaming build."""
    _, fg, ig, data = graphs
    rep = per_layer_c(fg, ig, data)
    row = next(r for r in rep["tensors"] if r["tensor"] == fg.outputs[0])
    head = validate(example_build, EXAMPLE / "test.npz")["int"]["sqnr_db"]
    assert row["sqnr_db"] == pytest.approx(head, abs=0.01)


def test_a_low_grid_that_later_layers_average_is_not_the_lost_signal() -> None:
    from rnnq.report import format_per_layer, summarise

    def row(name: str, db: float) -> dict:
        return {"tensor": name, "op": "x", "dtype": "int8", "sqnr_db": db, "max_error_lsb": 0.5,
                "alone_sqnr_db": db + 10}

    ok = summarise([row("x", 28.0), row("h", 40.0), row("y", 43.0)], 35.0, outputs={"y"})
    assert ok["first_below_threshold"] is None and ok["below_threshold"] == ["x"]
    assert "outputs at or above 35 dB" in format_per_layer(ok)
    bad = summarise([row("x", 28.0), row("h", 30.0), row("y", 31.0)], 35.0, outputs={"y"})
    assert bad["first_below_threshold"] == "x"
    assert "signal first below 35 dB at: x" in format_per_layer(bad)


def test_a_16_bit_r_row_is_its_16_bit_grid(tmp_path: Path) -> None:
    """With 16-bit recurrent weights (--precision ...+r16) the R row measures R against
    rw + rw_lo / 2^8 per row (the next 8 bits of each scaled weight, ties away from zero),
    computed here from the ONNX values: 256 times finer steps than the int8 grid."""
    from rnnq.api import compile_model

    out = tmp_path / "b"
    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", out, "generic-c99", "jv",
                  precision="int8+r16")
    _, fg, ig = open_graphs(out)
    rep = per_layer_c(fg, ig, load_npz(EXAMPLE / "test.npz", fg))
    lstm = next(n for n in fg.nodes if n.op == "lstm")
    row = next(r for r in rep["weights"] if r["tensor"] == f"{lstm.name} R")
    assert row["dtype"] == "int16 (r16)"
    r = fg.tensors[lstm.inputs[2]].data.astype(np.float64)
    s = np.abs(r).max(axis=1, keepdims=True) / 127
    hi = np.sign(r / s) * np.floor(np.abs(r / s) + 0.5)
    rest = (r / s - hi) * 256
    lo = np.clip(np.sign(rest) * np.floor(np.abs(rest) + 0.5), -128, 127)
    assert row["sqnr_db"] == pytest.approx(sqnr_db(r, (hi + lo / 256) * s), abs=1e-9)
    assert row["max_error_lsb"] <= 1.0 + 1e-6  # steps of s / 256 (a next 128 is clipped to 127)
    assert row["sqnr_db"] > sqnr_db(r, hi * s) + 40

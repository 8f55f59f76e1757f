"""The Python API (rnnq.compile / validate / simulate / inspect) with data as numpy arrays: the
same build and report as the .npz path, simulate's outputs independently checked against the
compiled C, and errors as one-line RnnqError."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rnnq
from rnnq.backends.c.harness import run_harness, split_outputs

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "basic_motions_gru"


@pytest.fixture(scope="module")
def arrays() -> tuple[np.ndarray, dict]:
    calib = np.load(EXAMPLE / "calib.npz")["x"]
    test = dict(np.load(EXAMPLE / "test.npz"))
    return calib, test


def test_arrays_and_files_give_the_same_build(arrays, tmp_path: Path) -> None:
    calib, test = arrays
    m_arr = rnnq.compile(EXAMPLE / "model.onnx", calib, tmp_path / "a", prefix="m")
    m_file = rnnq.compile(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", tmp_path / "f",
                          prefix="m")
    for name in ("model.c", "weights.c", "model.h", "calibration.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "f" / name).read_bytes()
    assert m_arr["memory"] == m_file["memory"]
    rep = rnnq.validate(tmp_path / "a", test)
    rep_file = rnnq.validate(tmp_path / "a", EXAMPLE / "test.npz")
    assert json.dumps(rep, sort_keys=True, default=str) == \
        json.dumps(rep_file, sort_keys=True, default=str)
    assert rep["c"]["bit_exact"] and rep["int"]["accuracy"] is not None


def test_simulate_returns_what_the_c_computes(arrays, tmp_path: Path) -> None:
    calib, test = arrays
    build = tmp_path / "b"
    manifest = rnnq.compile(EXAMPLE / "model.onnx", calib, build)
    x = test["x"][:5]
    ints = rnnq.simulate(build, x, integer=True)
    floats = rnnq.simulate(build, x)
    (name,) = ints  # the model's one output, under its ONNX name
    assert name == manifest["outputs"][0]["name"] and ints[name].shape == (5, 1, 4)  # [N, *ONNX output shape]
    # the C harness, run independently on the same quantised input: its _run output
    lengths = np.full(5, x.shape[1])
    from rnnq.api import open_graphs
    from rnnq.sim.integer import quantize_input

    ig = open_graphs(build)[2]
    raw, _ = run_harness(build, manifest, quantize_input(ig, x), lengths)
    runs = [r for _, r in split_outputs(raw, manifest, lengths, build)]  # each _run's output
    assert np.array_equal(np.stack(runs), ints[name].reshape(5, -1))
    o = manifest["outputs"][0]
    assert np.allclose(floats[name], (ints[name] - o["zero_point"]) * o["scale"])


def test_bad_arrays_are_one_line_errors(arrays, tmp_path: Path) -> None:
    calib, _ = arrays
    with pytest.raises(rnnq.RnnqError, match=r"^data: 'x' has shape \[40, 100, 5\]"):
        rnnq.compile(EXAMPLE / "model.onnx", calib[..., :5], tmp_path / "b")
    with pytest.raises(rnnq.RnnqError, match="^data: no array 'x'"):
        rnnq.compile(EXAMPLE / "model.onnx", {"y": calib}, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_inspect_names_the_model(tmp_path: Path) -> None:
    assert "GRU" in rnnq.inspect(EXAMPLE / "model.onnx")

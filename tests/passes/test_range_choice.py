"""passes/range_choice.py: --calib-method auto chooses each activation's range among the
calibration methods' by measured output error; calibration.json keeps the choice, so that the
build is made again the same, and the manifest says what each candidate measured."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper
from onnx import helper as oh

from rnnq.api import compile_model, float_graph, inspect, integer_graph, validate
from rnnq.data import load_npz
from rnnq.ir import RnnqError
from rnnq.passes import measure
from rnnq.passes.calibrate import apply_ranges
from rnnq.passes.observer import METHODS
from rnnq.passes.range_choice import MARGIN_DB

ROOT = Path(__file__).resolve().parents[2]
F, U, H, C, T = 4, 16, 16, 3, 50


def _model(path: Path) -> Path:
    """x [T, 1, F] -> u = x·W1 + b1 -> tanh -> LSTM(H) -> y = h·Wd + bd [T, 1, C]. u is the
    tensor with outliers: tanh saturates beyond |u| ~ 3, so clipping u costs nothing, while
    minmax spreads u's int8 grid over the spikes."""
    r = np.random.default_rng(0)

    def u(*shape: int, lim: float = 1.0) -> np.ndarray:
        return r.uniform(-lim, lim, shape).astype(np.float32)

    g = oh.make_graph(
        [oh.make_node("MatMul", ["x", "W1"], ["u0"]), oh.make_node("Add", ["u0", "b1"], ["u"]),
         oh.make_node("Tanh", ["u"], ["a"]),
         oh.make_node("LSTM", ["a", "W", "R", "B"], ["Y"], hidden_size=H),
         oh.make_node("Squeeze", ["Y", "axis"], ["h"]),
         oh.make_node("MatMul", ["h", "Wd"], ["y0"]), oh.make_node("Add", ["y0", "bd"], ["y"])],
        "outlier",
        [oh.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, F])],
        [oh.make_tensor_value_info("y", TensorProto.FLOAT, ["T", 1, C])],
        [numpy_helper.from_array(v, k) for k, v in {
            "W1": u(F, U), "b1": u(U, lim=0.2), "W": u(1, 4 * H, U, lim=2 / np.sqrt(U)),
            "R": u(1, 4 * H, H, lim=1 / np.sqrt(H)), "B": u(1, 8 * H, lim=0.2),
            "Wd": u(H, C, lim=1 / np.sqrt(H)), "bd": u(C, lim=0.1),
            "axis": np.array([1])}.items()])
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)]), path)
    return path


def _data(path: Path, seed: int, spikes: int) -> Path:
    """Features 0-2 N(0, 0.25); feature 3 zero but for `spikes` steps of +-40."""
    r = np.random.default_rng(seed)
    x = r.normal(size=(32, T, F)) * 0.5
    x[..., 3] = 0.0
    for _ in range(spikes):
        x[r.integers(32), r.integers(T), 3] = 40.0 * r.choice([-1, 1])
    np.savez(path, x=x.astype(np.float32))
    return path


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("range_choice")
    out = {"model": _model(d / "m.onnx"), "calib": _data(d / "calib.npz", 1, spikes=2),
           "test": _data(d / "test.npz", 2, spikes=0)}
    for method in ("minmax", "auto"):
        out[method] = d / method
        compile_model(out["model"], out["calib"], out[method], calib_method=method)
    return out


def _record(build: Path) -> dict:
    return json.loads((build / "calibration.json").read_text())


def _manifest(build: Path) -> dict:
    return json.loads((build / "manifest.json").read_text())


def test_auto_clips_the_outliers_minmax_wastes_range_on(builds: dict) -> None:
    c = _manifest(builds["auto"])["choices"]["ranges"]
    print(json.dumps({k: v for k, v in c.items() if k != "tried"}))
    assert c["chosen"].get("u") in METHODS[1:], "auto kept minmax for the outlier tensor"
    assert _record(builds["auto"])["range_methods"] == c["chosen"]
    assert "ranges" not in _manifest(builds["minmax"])["choices"]
    lo, hi = _record(builds["auto"])["tensors"]["u"]
    mlo, mhi = _record(builds["minmax"])["tensors"]["u"]
    assert mlo < lo < 0 < hi < mhi
    # every candidate of u was measured, and the manifest says what each gave
    tried = [t for t in c["tried"] if t["tensor"] == "u"]
    assert {t["method"] for t in tried} >= {c["chosen"]["u"]}
    assert all("output_sqnr_db" in t for t in tried)
    assert c["output_sqnr_db"]["chosen"] > c["output_sqnr_db"]["minmax"] + MARGIN_DB
    # held-out data (no spikes): the chosen ranges are better there too
    fg = float_graph(builds["model"])
    data = load_npz(builds["test"], fg)
    fenv = measure.float_outputs(fg, data)
    db = {m: measure.output_sqnr(fg, fenv, integer_graph(builds["model"], _record(builds[m])),
                                 data) for m in ("minmax", "auto")}
    print(f"held-out SQNR: minmax {db['minmax']:.1f} dB, auto {db['auto']:.1f} dB")
    assert db["auto"] > db["minmax"] + 3.0
    text = inspect(builds["auto"])
    assert f"calibration ranges (auto): {c['chosen']['u']} for 'u'" in text


def test_rebuild_from_calibration_json_is_bit_exact(builds: dict, tmp_path: Path) -> None:
    rep = validate(builds["auto"], builds["test"])
    assert rep["c"]["bit_exact"] and rep["c"]["compared_values"] > 0
    # the recorded ranges are what makes it exact: with minmax's range for u it is not
    b = tmp_path / "b"
    shutil.copytree(builds["auto"], b)
    rec = _record(b)
    rec["tensors"]["u"] = _record(builds["minmax"])["tensors"]["u"]
    (b / "calibration.json").write_text(json.dumps(rec))
    assert not validate(b, builds["test"])["c"]["bit_exact"]


@pytest.mark.parametrize("bad", [{"range_methods": "kl"}, {"range_methods": {"nope": "kl"}},
                                 {"range_methods": {"u": "magic"}}])
def test_bad_range_methods_in_calibration_json(bad: dict, builds: dict) -> None:
    rec = {**_record(builds["auto"]), **bad}
    with pytest.raises(RnnqError, match="calibration.json: 'range_methods'"):
        apply_ranges(float_graph(builds["model"]), rec)


def test_nothing_chosen_builds_what_minmax_builds(tmp_path: Path) -> None:
    """Where no candidate gains the margin (the bundled sunspots RNN), auto's C is minmax's."""
    ex = ROOT / "examples" / "sunspots_rnn"
    for method in ("minmax", "auto"):
        compile_model(ex / "model.onnx", ex / "calib.npz", tmp_path / method,
                      calib_method=method)
    c = _manifest(tmp_path / "auto")["choices"]["ranges"]
    assert c["chosen"] == {} and c["measured"] >= 1
    skip = {"manifest.json", "calibration.json"}
    files = {m: {p.name: p.read_bytes() for p in (tmp_path / m).iterdir() if p.name not in skip}
             for m in ("minmax", "auto")}
    assert files["auto"] == files["minmax"]


def test_tflite_auto_is_minmax(builds: dict, tmp_path: Path) -> None:
    """.tflite builds do not measure choices: auto (the default) writes minmax's file."""
    pytest.importorskip("flatbuffers")
    m = {}
    for method in ("minmax", "auto"):
        m[method] = compile_model(builds["model"], builds["calib"], tmp_path / method,
                                  fmt="tflite", calib_method=method)
    assert m["auto"]["calibration"]["method"] == "minmax"
    assert ((tmp_path / "auto" / "model.tflite").read_bytes()
            == (tmp_path / "minmax" / "model.tflite").read_bytes())


def test_unknown_method_is_refused(builds: dict, tmp_path: Path) -> None:
    with pytest.raises(RnnqError, match="--calib-method 'best'"):
        compile_model(builds["model"], builds["calib"], tmp_path / "b", calib_method="best")

"""Fixtures for the command-line tests: a good model, data and build folder."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from cli_helpers import classifier, run_rnnq, write_npz
from onnx_cases import N_OUT


@pytest.fixture(scope="session")
def cli_inputs(tmp_path_factory) -> dict[str, Path]:
    """A good model, calibration and test data (with class ids and with float targets)."""
    d = tmp_path_factory.mktemp("cli_inputs")
    rng = np.random.default_rng(5)
    return {
        "model": classifier(d / "model.onnx"),
        "calib": write_npz(d / "calib.npz", n=32, seed=1),
        "test": write_npz(d / "test.npz", n=20, seed=2, y=rng.integers(0, N_OUT, 20),
                          lengths=rng.integers(1, 7, 20)),
        "test_float_y": write_npz(d / "test_f.npz", n=12, seed=3,
                                  y=rng.uniform(0, 1, (12, N_OUT)).astype(np.float32)),
    }


@pytest.fixture(scope="session")
def good_build(cli_inputs, tmp_path_factory) -> Path:
    """The good model compiled once through the CLI (generic-c99)."""
    out = tmp_path_factory.mktemp("cli_build") / "BUILD"
    r = run_rnnq("compile", cli_inputs["model"], "--calib", cli_inputs["calib"], "--target",
                 "generic-c99", "-o", out, "--prefix", "kws")
    assert r.code == 0, r.err
    return out

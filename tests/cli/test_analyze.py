"""`rnnq inspect MODEL --target T`: what a compile costs, without calibration data, equal to
what the compile itself reports; `rnnq targets` lists every target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run_rnnq

from rnnq.api import analyze, compile_model
from rnnq.targets import available
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
JV = ROOT / "examples" / "japanese_vowels"
BILSTM = ROOT / "tests" / "fixtures" / "accuracy" / "bilstm_basicmotions_s10.onnx"
BM = ROOT / "examples" / "basic_motions_gru"


@pytest.mark.parametrize(("model", "calib", "target", "max_steps"), [
    (JV / "model.onnx", JV / "calib.npz", "cortex-m4", None),
    (BILSTM, BM / "calib.npz", "generic-c99", 100),  # whole-sequence: buffers for 100 steps
])
def test_analysis_equals_the_compile(model, calib, target, max_steps, tmp_path: Path) -> None:
    """The analysis is the compile at auto's starting widths, as the analysis runs it: with
    --min-sqnr 0 (at 35 dB the BiLSTM's calibration data makes auto widen one layer's R, which
    no analysis without data can know)."""
    if target == "cortex-m4":
        require_tool("arm-none-eabi-gcc")
    a = analyze(model, target, max_steps=max_steps)
    m = compile_model(model, calib, tmp_path / "b", target, max_steps=max_steps,
                      min_sqnr=0.0)
    assert m["choices"]["precision"]["widened"] == []
    assert a["memory"] == m["memory"]
    assert a["target_memory"] == m["target_memory"] and a["target_memory"]["measured"]
    assert a["macs_per_step"] == m["macs_per_step"]
    assert sum(r["macs_per_step"] for r in a["layers"]) == m["macs_per_step"]
    assert sum(r["const_bytes"] for r in a["layers"]) == m["memory"]["weight_bytes"]


def test_cli_analysis_and_its_errors(tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    r = run_rnnq("inspect", JV / "model.onnx", "--target", "generic-c99", "--json", out)
    assert r.code == 0, r.err
    assert "MACs/step" in r.out and json.loads(out.read_text())["target"] == "generic-c99"
    r = run_rnnq("inspect", JV / "model.onnx", "--json", out)
    want = "rnnq: error: --max-steps and --json apply with --target"
    assert r.code == 2 and r.err_lines == [want]
    r = run_rnnq("inspect", tmp_path, "--target", "generic-c99")
    assert r.code == 2 and len(r.err_lines) == 1 and "--target analyses a model" in r.err


def test_targets_lists_every_target() -> None:
    r = run_rnnq("targets")
    assert r.code == 0
    names = [line.split()[0] for line in r.out.splitlines()[1:]]
    assert names == available()

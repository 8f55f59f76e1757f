"""What validate and compile print, in the details users tripped over on held-out models: a
share that is not zero does not read 0.00 %, LiteRT's delegate chatter and TFLite Micro's
kernel errors do not leak onto the terminal (TFLM's reason goes into its report line), a
.tflite below the accuracy goal gets the same warning as a C build, and a whole-sequence
model's buffer length is said once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from cli_helpers import run_rnnq

from rnnq.backends.tflite import runtime
from rnnq.report import percent
from rnnq.validation import warnings_of

ROOT = Path(__file__).resolve().parents[2]
BILSTM = ROOT / "tests" / "fixtures" / "torch_lstm_bi_bf_mean.onnx"


def test_percent_keeps_small_shares_visible() -> None:
    assert percent(0.0) == "0.00 %"
    assert percent(0.5) == "50.00 %"
    assert percent(1e-4) == "0.01 %"
    assert percent(3.1e-5) == "0.0031 %"


def test_native_chatter_is_dropped_and_the_rest_passed_on(capfd) -> None:
    sys.stderr.flush()
    with runtime.native_stderr():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"something that matters\n")
    err = capfd.readouterr().err
    assert "XNNPACK" not in err and "something that matters" in err


def test_tflite_report_warns_below_the_goal() -> None:
    rep = {"int": {"sqnr_db": 22.3}, "tflite": {}}
    assert any("below the 35 dB goal" in w for w in warnings_of(rep))


def test_buffer_length_said_once(tmp_path: Path) -> None:
    """A bidirectional model (whole-sequence): the compiler asks for the buffer length in
    several steps (the precision's RAM estimate, emission) and says it once."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "c.npz", x=rng.normal(size=(8, 12, 4)).astype(np.float32))
    r = run_rnnq("compile", BILSTM, "--calib", tmp_path / "c.npz", "-o", tmp_path / "b",
                 "--precision", "auto", "--min-sqnr", "80")
    assert r.code == 0, r.err
    assert r.err.count("whole-sequence model: buffers sized for") == 1, r.err

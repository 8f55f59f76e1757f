"""Every frontend op case (tests/frontend: each supported ONNX op around an LSTM, in the
arrangements exporters write) through --format tflite: it is either refused with a one-line
error (what TFLite cannot express), or compiles to a file that LiteRT runs exactly as the
simulator does. Never an internal error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from tflite_common import require_litert

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "frontend"))
import cases_compute  # noqa: F401 - registers its cases
import cases_conv  # noqa: F401 - registers its cases
import cases_layout  # noqa: F401 - registers its cases
from onnx_cases import CASES, build_case, data_shape

from rnnq.api import compile_model, validate
from rnnq.ir import RnnqError


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_case_compiles_exactly_or_is_refused(name: str, tmp_path: Path) -> None:
    require_litert()
    model = build_case(name, tmp_path)
    t_len, feat = data_shape(model)
    rng = np.random.default_rng(5)
    np.savez(tmp_path / "c.npz", x=rng.normal(size=(16, t_len, feat)).astype(np.float32))
    np.savez(tmp_path / "t.npz", x=rng.normal(size=(4, t_len, feat)).astype(np.float32))
    try:
        compile_model(model, tmp_path / "c.npz", tmp_path / "b", fmt="tflite")
    except RnnqError as e:
        assert "\n" not in str(e) and "--format tflite" in str(e), e
        print(f"{name}: refused: {e}")
        return
    rep = validate(tmp_path / "b", tmp_path / "t.npz")
    tf = rep["tflite"]
    print(f"{name}: LiteRT {tf['mismatches']}/{tf['compared_values']} differ, "
          f"SQNR {rep['int']['sqnr_db']:.1f} dB")
    assert tf["bit_exact"] and tf["compared_values"] > 0, tf

"""The tflite backend calibrates with the same observer as the C backend: --calib-method
changes the activation ranges written into model.tflite (and the file stays exact in LiteRT)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tflite_common import require_litert

from rnnq.api import compile_model, validate
from tests.conftest import EXAMPLE


def _activation_scales(build: Path) -> dict[str, float]:
    from rnnq.backends.tflite.reader import read_tflite

    q = read_tflite(build / "model.tflite")
    return {t.name: float(t.scales()[0]) for t in q.tensors
            if t.data is None and t.dtype == "int8" and t.quantized}


@pytest.mark.parametrize("other", ["percentile", "mse", "kl"])
def test_calib_method_changes_tflite_activation_ranges(other: str, tmp_path: Path) -> None:
    require_litert()
    builds = {}
    for method in ("minmax", other):
        builds[method] = tmp_path / method
        m = compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", builds[method],
                          fmt="tflite", calib_method=method)
        assert m["calibration"]["method"] == method
    mm, pc = (_activation_scales(builds[k]) for k in ("minmax", other))
    assert mm.keys() == pc.keys()
    changed = [k for k in mm if not np.isclose(mm[k], pc[k], rtol=1e-6)]
    print(f"{len(changed)} of {len(mm)} activation scales differ: "
          + ", ".join(f"{k} {mm[k]:.4g} -> {pc[k]:.4g}" for k in changed[:6]))
    assert changed, f"{other} calibration wrote the same ranges as minmax"
    # every method's range lies inside the observed extremes: no scale grows
    assert all(pc[k] <= mm[k] * (1 + 1e-6) for k in changed)
    rep = validate(builds[other], EXAMPLE / "test.npz")
    assert rep["tflite"]["bit_exact"] and rep["tflite"]["compared_values"] > 0

"""The same model and calibration data give the same `.tflite` bytes on any x86-64 machine.

The lowered float graph that calibrates a `.tflite` once multiplied in float32 through BLAS;
OpenBLAS picks its kernel by CPU, each kernel sums in its own order, and the last bits of the
ranges — hence the scales, hence the file — differed between an Intel (AVX-512) and an AMD
machine (48 of the golden `.tflite` builds did). Forcing two of OpenBLAS's kernels that every
AVX2 machine runs reproduces that difference; the file must not see it."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LSTM = ROOT / "tests" / "fixtures" / "torch_lstm_bi2l_tm_hn.onnx"

_BUILD = """
import sys
from pathlib import Path
import numpy as np
from rnnq.api import compile_model
out = Path(sys.argv[1])
x = np.random.default_rng(0).normal(0, 1, (16, 20, 4)).astype(np.float32)
np.savez(out.with_suffix(".npz"), x=x)
compile_model(sys.argv[2], out.with_suffix(".npz"), out, fmt="tflite", seq_len=20)
"""


def _bytes(kernel: str, tmp: Path) -> str:
    env = {**os.environ, "OPENBLAS_CORETYPE": kernel}
    out = tmp / kernel
    subprocess.run([sys.executable, "-c", _BUILD, str(out), str(LSTM)], env=env, check=True,
                   cwd=ROOT, capture_output=True)
    return hashlib.sha256((out / "model.tflite").read_bytes()).hexdigest()


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                    reason="OpenBLAS kernel names are x86's")
def test_tflite_bytes_do_not_depend_on_the_blas_kernel(tmp_path: Path) -> None:
    assert _bytes("Sandybridge", tmp_path) == _bytes("Haswell", tmp_path)

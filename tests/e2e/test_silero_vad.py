"""A published streaming model end to end: silero VAD 6.2.3 (MIT; fetched from PyPI, never
committed) has its state [2, 1, 128] in and out of the graph and a convolutional front end
(reflect Pad, STFT Conv, Pow/Add/Sqrt magnitude, four Conv + ReLU) before its LSTM. It must
import, its float reference must match onnxruntime, and the C must be bit-exact on every call.
(Its int8 accuracy is not yet usable: see the README's "Supported models".)"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rnnq.api import compile_model, float_graph, validate
from rnnq.data import load_npz
from rnnq.sim.float_ref import run_float
from rnnq.sim.onnx_runtime import float_steps
from tests.cbuild import skip_or_fail
from tests.conftest import require_tool

WHEEL = "silero-vad==6.2.3"
MEMBER = "silero_vad/data/silero_vad_openvino_16k.onnx"


@pytest.fixture(scope="module")
def silero(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("silero")
    r = subprocess.run([sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-q",
                        "-d", str(d)], capture_output=True, text=True, check=False)
    wheels = list(d.glob("silero_vad-*.whl"))
    if r.returncode != 0 or not wheels:
        skip_or_fail(f"cannot download {WHEEL}: {r.stderr.strip()[-200:]}")
    with zipfile.ZipFile(wheels[0]) as z:
        (d / "vad.onnx").write_bytes(z.read(MEMBER))
    return d / "vad.onnx"


def _stream(path: Path, n: int, k: int, seed: int) -> Path:
    """n streams of k chunks [1, 576] (64 samples of context + 512 new): harmonic bursts with
    noise, as speech-like as a synthetic signal gets."""
    r = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        t = np.arange(512 * k + 64) / 16000
        ph = 2 * np.pi * np.cumsum(120 + 30 * np.sin(2 * np.pi * 0.5 * t)) / 16000
        v = sum(np.sin(h * ph) / h for h in range(1, 12))
        env = np.sin(2 * np.pi * 0.7 * t + r.uniform(0, 6)) > 0
        s = (0.3 * v * env + 0.01 * r.standard_normal(t.size)).astype(np.float32)
        out.append(np.stack([s[512 * i: 512 * i + 576] for i in range(k)])[:, None, :])
    np.savez(path, input=np.stack(out))
    return path


def test_silero_vad_imports_and_is_bit_exact(silero: Path, tmp_path: Path) -> None:
    require_tool("cc")
    g = float_graph(silero)
    assert g.meta["step_graph"] and g.meta["state_inputs"]["state"]["output"] == "stateN"
    test = _stream(tmp_path / "test.npz", 2, 20, 1)
    data = load_npz(test, g)
    env = run_float(g, data.x, lengths=data.lengths, states=data.states)
    ref, engine = float_steps(silero, g, data)
    assert engine == "onnxruntime"
    np.testing.assert_allclose(env["output"], ref["output"], atol=1e-5)
    compile_model(silero, _stream(tmp_path / "cal.npz", 3, 30, 0), tmp_path / "b",
                  "generic-c99", "vad")
    rep = validate(tmp_path / "b", test)
    assert rep["c"]["bit_exact"] and rep["c"]["mismatches"] == 0, rep["c"]
    assert rep["c"]["compared_values"] >= 2 * 20 * (1 + 256)  # every call: output and stateN

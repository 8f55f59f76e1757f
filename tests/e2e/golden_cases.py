"""A fixed set of builds whose bytes must not change when the compiler is restructured.

Each case is a model (a bundled example, an exporter fixture, a frontend op case, a recurrent
variant or a random LSTM), calibration data drawn from a fixed seed, and compile options for
the C or the tflite format. Its digest is the SHA-256 over the files generated for it (model.c,
model.h, weights.c, harness.c, Makefile, CMakeLists.txt; or model.tflite), so that a
refactoring that changes one bit of one build is caught. The verbatim C runtime copied into
every build (templates/c/runtime) is not part of the digest: it is held to the simulator by the
kernel tests. A refused model records its refusal.

tests/fixtures/golden_builds.json holds the digests; regenerate it with
`python tools/make_golden_builds.py` only for a deliberate change of the generated bits, and
say in the commit which builds changed and why. Its header records the commit it was made at.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "fixtures" / "golden_builds.json"
EXAMPLES = ROOT / "examples"
FIXTURES = ROOT / "tests" / "fixtures"
#: Files of a build folder that are bookkeeping or verbatim copies, not generated for the model.
NOT_HASHED = {"manifest.json", "calibration.json", "model.onnx",
              *(p.name for p in (ROOT / "templates" / "c" / "runtime").iterdir())}

for sub in ("frontend", "variants"):  # the test helpers that build models (not packages)
    p = str(ROOT / "tests" / sub)
    if p not in sys.path:
        sys.path.insert(0, p)


@dataclass(frozen=True)
class Case:
    name: str
    model: Callable[[Path], Path]  # writes the model into a folder, returns its path
    calib: Callable[[Path, Path], Path]  # (model, folder) -> calibration .npz
    options: dict = field(default_factory=dict)


def _example(name: str) -> Callable[[Path], Path]:
    return lambda _tmp: EXAMPLES / name / "model.onnx"


def _example_calib(name: str) -> Callable[[Path, Path], Path]:
    return lambda _model, _tmp: EXAMPLES / name / "calib.npz"


def _random_calib(n: int = 24, t_len: int | None = None, seed: int = 0):
    def make(model: Path, tmp: Path) -> Path:
        from onnx_cases import data_shape

        t_default, feat = data_shape(model)
        x = np.random.default_rng(seed).normal(0.0, 1.0, (n, t_len or t_default, feat))
        path = tmp / "calib.npz"
        np.savez(path, x=x.astype(np.float32))
        return path
    return make


def _fixture(name: str) -> Callable[[Path], Path]:
    return lambda _tmp: FIXTURES / f"{name}.onnx"


def _frontend_case(name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        import cases_compute  # noqa: F401 - registers its cases
        import cases_layout  # noqa: F401 - registers its cases
        from onnx_cases import build_case

        return build_case(name, tmp)
    return make


def _variant(name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        sys.path.insert(0, str(ROOT / "tests" / "backends" / "tflite"))
        import test_tflite_variants as tv

        kind, direction, out, attrs = tv.CASES[name]
        return tv._model(tmp / f"{name}.onnx", kind, direction, out, **dict(attrs))
    return make


def _random_lstm(seed: int) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        import onnx

        sys.path.insert(0, str(ROOT / "tests" / "e2e"))
        from lstm_models import build_model, spec_for

        path = tmp / f"lstm{seed}.onnx"
        onnx.save(build_model(spec_for(seed)), str(path))
        return path
    return make


def _random_lstm_calib(seed: int) -> Callable[[Path, Path], Path]:
    def make(_model: Path, tmp: Path) -> Path:
        from lstm_models import make_data, spec_for

        s = spec_for(seed)
        path = tmp / "calib.npz"
        np.savez(path, x=make_data(s, 16, seed=7).astype(np.float32))
        return path
    return make


def cases() -> list[Case]:
    out: list[Case] = []
    for ex, seq in (("japanese_vowels", 60), ("basic_motions_gru", 400), ("sunspots_rnn", 96)):
        m, c = _example(ex), _example_calib(ex)
        out += [
            Case(f"{ex}/c", m, c, {"target": "generic-c99", "prefix": "m"}),
            Case(f"{ex}/c-m4", m, c, {"target": "cortex-m4", "prefix": "m"}),
            Case(f"{ex}/c-percentile", m, c, {"calib_method": "percentile"}),
            Case(f"{ex}/c-seq", m, c, {"seq_len": seq}),
            Case(f"{ex}/c-headroom1", m, c, {"headroom": 1.0}),
            Case(f"{ex}/tflite", m, c, {"fmt": "tflite"}),
            Case(f"{ex}/tflite-floatio", m, c, {"fmt": "tflite", "float_io": True}),
            Case(f"{ex}/tflite-while", m, c, {"fmt": "tflite", "tflite_loop": "while"}),
            Case(f"{ex}/tflite-seq", m, c, {"fmt": "tflite", "seq_len": seq}),
        ]
    for p in sorted(FIXTURES.glob("*.onnx")):
        cal = _random_calib(32, 20)
        out += [Case(f"fixture/{p.stem}/c", _fixture(p.stem), cal),
                Case(f"fixture/{p.stem}/tflite", _fixture(p.stem), cal, {"fmt": "tflite"})]
    import cases_compute  # noqa: F401
    import cases_layout  # noqa: F401
    from onnx_cases import CASES

    for name in sorted(CASES):
        out += [Case(f"op/{name}/c", _frontend_case(name), _random_calib()),
                Case(f"op/{name}/tflite", _frontend_case(name), _random_calib(),
                     {"fmt": "tflite"})]
    sys.path.insert(0, str(ROOT / "tests" / "backends" / "tflite"))
    import test_tflite_variants as tv

    for name in sorted(tv.CASES):
        cal = _random_calib(24, tv.T, seed=3)
        out += [Case(f"variant/{name}/c", _variant(name), cal),
                Case(f"variant/{name}/tflite", _variant(name), cal, {"fmt": "tflite"})]
    for seed in range(24):
        m, c = _random_lstm(seed), _random_lstm_calib(seed)
        out += [Case(f"lstm{seed}/c", m, c), Case(f"lstm{seed}/tflite", m, c, {"fmt": "tflite"})]
    return out


def build_digest(case: Case, tmp: Path) -> str:
    """Compile the case in tmp; the digest of what it generated, or 'refused: <message>'."""
    from rnnq.api import compile_model
    from rnnq.ir import RnnqError

    tmp.mkdir(parents=True, exist_ok=True)
    model = case.model(tmp)
    calib = case.calib(model, tmp)
    build = tmp / "build"
    try:
        compile_model(model, calib, build, **case.options)
    except RnnqError as e:
        return f"refused: {e}"
    except Exception as e:  # noqa: BLE001 - a bug, but the set pins today's behaviour
        return f"internal error: {type(e).__name__}"
    h = hashlib.sha256()
    for f in sorted(build.iterdir()):
        if f.name in NOT_HASHED:
            continue
        h.update(f.name.encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()

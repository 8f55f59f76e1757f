"""Helpers shared by the tests in tests/variants: tool requirements, data files, compile and
validate, and the bit-exactness assertion.

A missing C toolchain or torch skips a test, except under CI=true where it fails it (a CI image
that lost a tool must not go green).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from rnnq.api import compile_model, validate
from tests.cbuild import sanitizers_work, skip_or_fail
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
MAKE_FIXTURES = ROOT / "tools" / "make_fixtures.py"


def require_host_toolchain() -> None:
    """What `rnnq validate` needs for target "host": gcc/cc, make, and working ASan/UBSan."""
    for tool in ("gcc", "cc", "make"):
        require_tool(tool)
    if not sanitizers_work("cc"):
        skip_or_fail("cc cannot build and run ASan/UBSan programs")


def require_torch() -> ModuleType:
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the machine
        skip_or_fail("torch is not importable")
    return torch


def load_make_fixtures() -> ModuleType:
    """tools/make_fixtures.py as a module (tools/ is not a package)."""
    name = "rnnq_make_fixtures"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, MAKE_FIXTURES)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def save_npz(path: Path, x: np.ndarray, lengths: np.ndarray | None = None) -> Path:
    arrays = {"x": x}
    if lengths is not None:
        arrays["lengths"] = np.asarray(lengths, np.int64)
    np.savez(path, **arrays)
    return path


def compile_and_validate(model: Path, calib: Path, test: Path, out: Path, prefix: str = "m",
                         **kw) -> dict:
    """Compile for the host target (ASan/UBSan) and validate on `test`; returns the report."""
    compile_model(model, calib, out, "host", prefix, **kw)
    return validate(out, test)


def assert_bit_exact(rep: dict) -> None:
    assert rep["c"]["compared_values"] > 0, rep["c"]
    assert rep["c"]["mismatches"] == 0, rep["c"]
    assert rep["c"]["bit_exact"] is True, rep["c"]

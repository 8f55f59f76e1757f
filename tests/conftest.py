"""Shared test fixtures and the rule that a missing tool fails in CI instead of skipping."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "japanese_vowels"


#: Test files that take minutes (10^6-step streams, a corpus of processes, emulated boards,
#: hundreds of pinned builds, a wheel installed), slowest first: collected first, and
#: handed out in that order (make test: --no-loadscope-reorder), so that parallel workers do
#: not end waiting on one. Ordered by the "slowest files" make test lists at the end.
SLOW_FIRST = ("e2e/test_long_streams.py", "hostile/test_hostile.py", "e2e/test_random_lstm.py",
              "backends/c/test_matvec_variants.py", "cli/test_bad_input.py",
              "e2e/test_golden_builds.py", "packaging/test_wheel.py", "frontend/test_ops.py",
              "backends/tflite/test_tflite_cli.py", "targets/test_targets.py",
              "e2e/test_silero_vad.py", "backends/c/test_kernels_build.py")


def _slow_rank(item) -> int:
    path = str(item.path).replace(os.sep, "/")
    return next((k for k, s in enumerate(SLOW_FIRST) if path.endswith(s)), len(SLOW_FIRST))


def pytest_collection_modifyitems(config, items) -> None:
    """The slowest files first (stable otherwise). Tests marked all_boards run only in `make
    test-all` (RNNQ_TEST_ALL=1): deselected, not skipped, so that a CI run shows no skip that
    is not a missing tool."""
    items.sort(key=_slow_rank)
    if os.environ.get("RNNQ_TEST_ALL") == "1":
        return
    keep = [i for i in items if i.get_closest_marker("all_boards") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


_FILE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report) -> None:
    """Each test file's time, module fixtures included (what SLOW_FIRST is ordered by)."""
    path = report.nodeid.split("::")[0]
    _FILE_SECONDS[path] = _FILE_SECONDS.get(path, 0.0) + report.duration


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter) -> None:
    """The slowest files after --durations' slowest tests (make test): SLOW_FIRST's data."""
    if terminalreporter.config.getoption("durations", None) is None or not _FILE_SECONDS:
        return
    terminalreporter.write_sep("=", "slowest files (tests/conftest.py SLOW_FIRST)")
    for path, secs in sorted(_FILE_SECONDS.items(), key=lambda kv: -kv[1])[:15]:
        terminalreporter.write_line(f"{secs:8.1f}s {path}")


def require_tool(name: str) -> str:
    """Path of a command-line tool; skip without it, but fail when CI=true."""
    from tests.cbuild import skip_or_fail

    path = shutil.which(name)
    if path is None:
        skip_or_fail(f"{name} not installed")
    return path


@pytest.fixture(scope="session")
def example_build(tmp_path_factory) -> Path:
    """The bundled example compiled once for generic-c99."""
    from rnnq.api import compile_model

    out = tmp_path_factory.mktemp("example") / "build"
    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", out, "generic-c99", "jv")
    return out

"""The flash/RAM/stack measurement of `rnnq compile` (memory.measure) takes the runtime's objects
and stack usage files from the object cache (objcache): the numbers must be those of compiling
everything, and a runtime that does not compile must still be said to."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rnnq.api import compile_model
from rnnq.backends.c.memory import measure
from rnnq.ir import RnnqError
from rnnq.targets import load_target
from tests.conftest import EXAMPLE, require_tool


def _build(target: str, example_build: Path, tmp_path: Path) -> Path:
    if target == "generic-c99":
        return example_build
    out = tmp_path / target
    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", out, target, "jv")
    return out


@pytest.mark.parametrize("target", ["generic-c99", "cortex-m4"])
def test_cached_runtime_measures_what_compiling_everything_does(
        target: str, example_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tgt = load_target(target)
    require_tool(tgt["toolchain"]["cc"])
    require_tool(tgt["toolchain"]["size"])
    build = _build(target, example_build, tmp_path)
    monkeypatch.setenv("RNNQ_CACHE", "off")
    uncached = measure(build, tgt, "jv")
    cache = tmp_path / "cache"
    monkeypatch.setenv("RNNQ_CACHE", str(cache))
    cold = measure(build, tgt, "jv")
    objects = {p.name: p.stat().st_mtime_ns for p in (cache / "objects").iterdir()}
    warm = measure(build, tgt, "jv")
    assert uncached is not None and uncached["stack_bytes"] > 0
    assert cold == uncached and warm == uncached
    runtime = list(build.glob("rnnq_*.c"))
    # an object and its stack usage per runtime source, reused by the second measurement
    assert sorted(Path(n).suffix for n in objects) == sorted([".o", ".su"] * len(runtime))
    assert {p.name: p.stat().st_mtime_ns for p in (cache / "objects").iterdir()} == objects


def test_a_runtime_that_does_not_compile_is_said_to(example_build: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("cc")
    monkeypatch.setenv("RNNQ_CACHE", str(tmp_path / "cache"))
    build = tmp_path / "b"
    shutil.copytree(example_build, build)
    (build / "rnnq_kernels.c").write_text("#error broken runtime\n")
    with pytest.raises(RnnqError, match="rnnq_kernels.c: does not compile for generic-c99"):
        measure(build, load_target("generic-c99"), "jv")
    assert not list((tmp_path / "cache" / "objects").glob("*.tmp.*"))

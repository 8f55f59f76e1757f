"""validate's object cache (issue 12 item 5): the runtime (rnnq_*.c, the same for every model)
is compiled once per compiler, flags and source text and kept in RNNQ_CACHE; the harness of the
next build links the cached objects. A changed source or header is a new object; RNNQ_CACHE=off
compiles everything each time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rnnq.api import validate
from tests.conftest import EXAMPLE, require_tool


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    require_tool("cc")
    require_tool("make")
    monkeypatch.setenv("RNNQ_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "objects"


def _objects(cache: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in cache.glob("*.o")}


def test_runtime_compiled_once_and_reused(example_build: Path, cache: Path) -> None:
    r1 = validate(example_build, EXAMPLE / "test.npz")
    first = _objects(cache)
    runtime = sorted(example_build.glob("rnnq_*.c"))
    assert len(first) == len(runtime) >= 1  # one object per runtime source
    r2 = validate(example_build, EXAMPLE / "test.npz")
    assert _objects(cache) == first  # reused, not compiled again
    assert r1["c"]["bit_exact"] and r2["c"]["bit_exact"] and r2["c"]["compared_values"] > 0
    assert not list(cache.glob("*.tmp.o"))


def test_a_changed_runtime_source_is_compiled_again(example_build: Path, cache: Path,
                                                   tmp_path: Path) -> None:
    validate(example_build, EXAMPLE / "test.npz")
    before = _objects(cache)
    b = tmp_path / "b"
    shutil.copytree(example_build, b)
    hdr = b / "rnnq_fixedpoint.h"  # a header the runtime includes
    hdr.write_text(hdr.read_text() + "\n/* changed */\n")
    assert validate(b, EXAMPLE / "test.npz")["c"]["bit_exact"]
    after = _objects(cache)
    assert set(before) < set(after)  # the kernels that include it: new objects
    # a runtime that no longer compiles fails the validate, whatever is cached
    (b / "rnnq_kernels.c").write_text("#error broken runtime\n")
    with pytest.raises(Exception, match="C build failed"):
        validate(b, EXAMPLE / "test.npz")


def test_cache_off(example_build: Path, monkeypatch: pytest.MonkeyPatch,
                   tmp_path: Path) -> None:
    monkeypatch.setenv("RNNQ_CACHE", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert validate(example_build, EXAMPLE / "test.npz")["c"]["bit_exact"]
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()

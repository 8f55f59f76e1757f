"""The generated bits of a fixed set of builds (tests/e2e/golden_cases.py) are those recorded in
tests/fixtures/golden_builds.json: restructuring the compiler must not change one byte of any
C build or .tflite file. The exactness tests check that builds are right; this one checks that
a change meant to move code did not also change what it computes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.golden_cases import GOLDEN, build_digest, cases

_CASES = {c.name: c for c in cases()}
_RECORDED = json.loads(GOLDEN.read_text())["builds"]


def test_every_recorded_case_still_exists() -> None:
    """Cases added later (a new op case) are not pinned; a recorded one must not vanish."""
    assert sorted(set(_RECORDED) - set(_CASES)) == []


@pytest.mark.parametrize("name", sorted(_RECORDED))
def test_build_is_unchanged(name: str, tmp_path: Path) -> None:
    got = build_digest(_CASES[name], tmp_path)
    assert got == _RECORDED[name], (
        f"{name}: the generated files changed ({_RECORDED[name][:80]} -> {got[:80]}); if that "
        "is deliberate, run tools/make_golden_builds.py and say why in the commit")

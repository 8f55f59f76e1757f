"""The hostile-input corpus (tests/hostile/corpus.py) through the command line, every case
checked by tests/hostile/run.py: the expected exit status with one "rnnq: error:" line naming the
file, node or option; no traceback, no hang, bounded memory; nothing read from the canary
folder, nothing written outside -o; failed compiles leave nothing; injected names never become
C. `python -m tests.hostile.run DEST -v` runs the same by hand and prints every outcome."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.hostile.corpus import build
from tests.hostile.run import run_corpus

#: The kinds the issue lists, each with at least this many cases.
KINDS = {"model": 30, "name": 10, "prefix": 8, "calib": 20, "data": 10, "output": 8,
         "option": 12, "build": 10}


def _kind(name: str) -> str:
    for prefix, kind in (("calib_", "calib"), ("data_", "data"), ("name_", "name"),
                         ("input_name", "name"), ("node_name", "name"), ("state_names", "name"),
                         ("prefix_", "prefix"), ("output_", "output"), ("json_", "output"),
                         ("report_", "output"), ("build_", "build"), ("inspect_", "build")):
        if name.startswith(prefix):
            return kind
    if any(name.startswith(p) for p in ("seq_len", "headroom", "target_", "format_", "flash",
                                        "input_bits", "precision", "min_sqnr", "unknown_option", "calib_method",
                                        "max_steps", "validate_on")):
        return "option"
    return "model"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    require_tool("cc")
    require_tool("make")
    root = tmp_path_factory.mktemp("hostile")
    build(root)
    return root


def test_corpus_covers_every_kind(corpus: Path) -> None:
    cases = json.loads((corpus / "cases.json").read_text())["cases"]
    kinds = Counter(_kind(c["name"]) for c in cases)
    assert len(cases) >= 60
    for kind, least in KINDS.items():
        assert kinds[kind] >= least, (kind, kinds)
    refusals = sum(c["expect"] == "error" for c in cases)
    assert refusals >= 0.7 * len(cases)


def test_every_hostile_case_behaves(corpus: Path) -> None:
    res = run_corpus(corpus, jobs=max(2, os.cpu_count() or 1))
    bad = {r.name: r.problems for r in res if r.problems}
    assert not bad, "\n".join(f"{k}: {'; '.join(v)}" for k, v in bad.items())


def test_the_checker_sees_what_it_must(corpus: Path, tmp_path: Path, monkeypatch) -> None:
    """The run's checks fail where they must: a command that reads the canary folder, one that
    writes where no option allowed it (--json, with the checker told to ignore that option) and
    one whose error line does not name what the case says are caught."""
    from tests.hostile import run

    real = run._option
    monkeypatch.setattr(run, "_option", lambda argv, *flags: None if "--json" in flags
                        else real(argv, *flags))
    secret = corpus / "secret" / "model.onnx"
    stray = tmp_path / "stray.txt"
    cases = [
        {"name": "reads_secret", "argv": ["inspect", str(secret)], "expect": "ok",
         "names": ""},
        {"name": "writes_outside", "argv": ["inspect", str(corpus / "good" / "model.onnx"),
                                            "--target", "generic-c99", "--json", str(stray)],
         "expect": "ok", "names": ""},
        {"name": "wrong_name", "argv": ["inspect", str(tmp_path / "absent.onnx")],
         "expect": "error", "names": "some-other-file"},
    ]
    out = {c["name"]: run.check_case(corpus, c).problems for c in cases}
    assert any("secret" in p for p in out["reads_secret"]), out
    assert any("stray.txt" in p and "outside -o" in p for p in out["writes_outside"]), out
    assert any("does not name" in p for p in out["wrong_name"]), out

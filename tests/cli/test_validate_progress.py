"""`validate` says what it is doing (issue 13 item 5): off a terminal one "rnnq: <stage> ..."
line per stage on stderr, nothing with -q or --json, and the report on stdout either way."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import run_rnnq

from tests.conftest import require_tool

#: the host harness builds and runs in the background from the start; its stage is where
#: validate waits for it, after the simulator and the float model
STAGES = ("integer simulator on", "float model", "error by step and saturation",
          "building and running the C harness (host)")


def _stage_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("rnnq: ") and ln.endswith(" ...")]


def test_validate_prints_one_line_per_stage(cli_inputs: dict, good_build: Path) -> None:
    require_tool("cc")
    r = run_rnnq("validate", good_build, "--data", cli_inputs["test"])
    assert r.code == 0, r.err
    lines = _stage_lines(r.err)
    for want in STAGES:  # each stage once, in the order the work runs
        assert sum(want in ln for ln in lines) == 1, (want, r.err)
    order = [next(i for i, ln in enumerate(lines) if want in ln) for want in STAGES]
    assert order == sorted(order), lines
    assert "\r" not in r.err and "\x1b" not in r.err  # no terminal control off a terminal
    assert "bit-exact" in r.out and not _stage_lines(r.out)


def test_validate_is_quiet_with_q_and_with_json(cli_inputs: dict, good_build: Path,
                                                tmp_path: Path) -> None:
    require_tool("cc")
    for extra in (["-q"], ["--json", str(tmp_path / "r.json")]):
        r = run_rnnq("validate", good_build, "--data", cli_inputs["test"], *extra)
        assert r.code == 0, r.err
        assert not _stage_lines(r.err), (extra, r.err)
    assert (tmp_path / "r.json").is_file()

"""`validate` on a cross build says that its host run used the portable kernels and that
`--on emulator` tests the target's own; on a build for this machine it does not."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import run_rnnq

from tests.conftest import require_tool

NOTE = "note: the host run built the C as portable code"


def test_cross_build_validated_on_the_host_says_so(cli_inputs: dict, good_build: Path,
                                                   tmp_path: Path) -> None:
    require_tool("arm-none-eabi-gcc")
    require_tool("cc")
    out = tmp_path / "m4"
    r = run_rnnq("compile", cli_inputs["model"], "--calib", cli_inputs["calib"], "--target",
                 "cortex-m4", "-o", out, "-q")
    assert r.code == 0, r.err
    r = run_rnnq("validate", out, "--data", cli_inputs["test"], "--json", tmp_path / "r.json")
    assert r.code == 0, r.err
    assert NOTE in r.out and "`--on emulator` tests cortex-m4's own kernels" in r.out, r.out
    assert json.loads((tmp_path / "r.json").read_text())["c"]["target_kernels"] is False

    r = run_rnnq("validate", good_build, "--data", cli_inputs["test"], "--json",
                 tmp_path / "g.json")
    assert r.code == 0 and NOTE not in r.out, r.out
    assert json.loads((tmp_path / "g.json").read_text())["c"]["target_kernels"] is True

"""The build folder builds as documented: plain `make` in it, from a shell with nothing set,
uses the target's toolchain (make's built-in CC = cc must not win)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rnnq.api import compile_model
from tests.conftest import EXAMPLE, require_tool

#: ELF e_machine of the objects each target's toolchain makes (x86-64 62, ARM 40)
CASES = [("generic-c99", "cc", None), ("cortex-m4", "arm-none-eabi-gcc", 40)]


def _machine(obj: Path) -> int:
    head = obj.read_bytes()[:20]
    assert head[:4] == b"\x7fELF", obj
    return int.from_bytes(head[18:20], "little")


@pytest.mark.parametrize(("target", "tool", "machine"), CASES)
def test_plain_make_uses_the_targets_toolchain(target: str, tool: str, machine: int | None,
                                               tmp_path: Path) -> None:
    require_tool(tool)
    require_tool("make")
    out = tmp_path / "build"
    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", out, target, "jv")
    env = {"PATH": os.environ["PATH"]}  # what a user's shell has at least; no CC, no AR
    r = subprocess.run(["make", "-s"], check=False, cwd=out, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "librnnq_jv.a").is_file()
    objs = sorted(out.glob("*.o"))
    assert objs
    if machine is not None:
        assert {_machine(o) for o in objs} == {machine}
    else:
        host = shutil.which("cc")
        assert host and _machine(objs[0]) == _machine(Path(host).resolve())


def test_cmake_with_the_shipped_toolchain_file_cross_compiles(tmp_path: Path) -> None:
    """A cross build ships toolchain.cmake: `cmake -DCMAKE_TOOLCHAIN_FILE=...` from a shell
    with nothing set builds the library with arm-none-eabi-gcc (ARM objects)."""
    require_tool("cmake")
    require_tool("arm-none-eabi-gcc")
    out = tmp_path / "build"
    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", out, "cortex-m4", "jv")
    tc = out / "toolchain.cmake"
    assert tc.is_file()
    env = {"PATH": os.environ["PATH"]}
    cb = tmp_path / "cmake"
    for cmd in (["cmake", "-S", str(out), "-B", str(cb), f"-DCMAKE_TOOLCHAIN_FILE={tc}"],
                ["cmake", "--build", str(cb)]):
        r = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    assert (cb / "librnnq_jv.a").is_file()
    objs = [o for o in cb.rglob("*.obj") if "CompilerId" not in str(o)]
    assert objs and {_machine(o) for o in objs} == {40}


def test_host_builds_ship_no_toolchain_file(tmp_path: Path) -> None:
    out = tmp_path / "build"
    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", out, "generic-c99", "jv")
    assert not (out / "toolchain.cmake").exists()

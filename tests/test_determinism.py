"""Issue 14 item 5, determinism: the same model, data and options give a byte-identical build
folder, whatever the working directory, the temporary directory and PYTHONHASHSEED.

Each case compiles twice through the CLI in separate processes (run side by side), from
different working directories (output paths relative to them) with different PYTHONHASHSEED
and TMPDIR values (the host target's flash size used to depend on the temporary folder's path
that sanitizer diagnostics embed in the measured objects), and compares every file's bytes.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cbuild import skip_or_fail
from tests.conftest import EXAMPLE, require_tool

CASES = {
    "generic-c99": ["--target", "generic-c99"],
    "host": ["--target", "host"],
    "cortex-m4": ["--target", "cortex-m4"],
    "tflite": ["--format", "tflite"],
}


def _requirements(case: str) -> None:
    if case == "host":
        require_tool("cc")
    elif case == "cortex-m4":  # flash measured with the cross toolchain, as users get it
        require_tool("arm-none-eabi-gcc")
    elif case == "tflite":
        for mod in ("tflite", "flatbuffers"):
            if importlib.util.find_spec(mod) is None:
                skip_or_fail(f"python module {mod} not installed (rnnq[tflite])")


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", list(CASES))
def test_build_folder_is_byte_identical(tmp_path: Path, case: str) -> None:
    _requirements(case)
    procs = []
    for k, (cwd, seed) in enumerate([("a", "1"), ("deeper/working/dir", "2")]):
        work = tmp_path / cwd
        tmpdir = tmp_path / ("t" * (k * 20 + 1))  # temporary folders of different lengths
        work.mkdir(parents=True)
        tmpdir.mkdir()
        env = {**os.environ, "PYTHONHASHSEED": seed, "TMPDIR": str(tmpdir)}
        cmd = [sys.executable, "-m", "rnnq.cli", "compile", str(EXAMPLE / "model.onnx"),
               "--calib", str(EXAMPLE / "calib.npz"), *CASES[case], "-o", "out"]
        procs.append((work / "out", subprocess.Popen(
            cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)))
    builds = []
    for out, p in procs:
        log, _ = p.communicate(timeout=300)
        assert p.returncode == 0, log
        builds.append(_files(out))
    first, second = builds
    assert sorted(first) == sorted(second)
    assert "manifest.json" in first
    differ = [name for name in first if first[name] != second[name]]
    assert not differ, f"{case}: files differ between the two compiles: {differ}"
    if case in ("host", "cortex-m4"):  # the measurement ran (the defect's field is there)
        assert b'"flash_bytes"' in first["manifest.json"]

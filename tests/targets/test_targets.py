"""Targets: every target file loads; the generated C builds with each cross toolchain and gives
the simulator's exact bits on the emulated board; memory is measured and budgets enforced."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnq import targets
from rnnq.api import compile_model, validate
from rnnq.cli import main
from rnnq.ir import RnnqError
from rnnq.targets import MATVEC_VARIANTS, available, host_cpu_lacks, load_target
from tests.conftest import EXAMPLE, ROOT, require_tool

#: Targets whose emulated validation runs in CI (the others: `make test-all`).
CI_TARGETS = ("cortex-m4", "cortex-m0plus", "arm64")
ALL_TARGETS = CI_TARGETS + ("cortex-m7", "cortex-m33", "cortex-m55", "riscv32")
#: the other boards run in `make test-all` (tests/conftest.py deselects them otherwise)
slow_all = pytest.mark.all_boards


def _tools(target: str) -> None:
    t = load_target(target)
    require_tool(t["toolchain"]["cc"])
    if t["run"]["command"][0] != "{firmware}":
        require_tool(t["run"]["command"][0])


def test_every_target_file_loads() -> None:
    names = available()
    assert set(ALL_TARGETS) | {"generic-c99", "host"} <= set(names)
    for name in names:
        t = load_target(name)
        assert t["kernels"]["matvec"] in MATVEC_VARIANTS
        assert set(MATVEC_VARIANTS[t["kernels"]["matvec"]]) <= set(t["isa"]["features"])
        assert t["budget"]["part"]


def _write_target(tmp_path: Path, monkeypatch, text: str) -> None:
    """A targets/ folder holding the real base files and one test target."""
    for p in (ROOT / "targets").glob("*.toml"):
        shutil.copy(p, tmp_path / p.name)
    (tmp_path / "t.toml").write_text(text)
    monkeypatch.setattr(targets, "targets_dir", lambda: tmp_path)


def test_matvec_variant_needs_its_isa_feature(tmp_path: Path, monkeypatch) -> None:
    _write_target(tmp_path, monkeypatch,
                  'inherits = "cortex-m0plus"\nname = "t"\n[kernels]\nmatvec = "arm_dsp"\n')
    with pytest.raises(RnnqError, match="kernels.matvec = 'arm_dsp' needs isa.features dsp"):
        load_target("t")


def test_recurrent_path_is_checked(tmp_path: Path, monkeypatch) -> None:
    _write_target(tmp_path, monkeypatch,
                  'inherits = "cortex-m4"\nname = "t"\n[kernels]\nrecurrent = "fast"\n')
    with pytest.raises(RnnqError, match="kernels.recurrent must be one of vector, fused"):
        load_target("t")


def test_mcu_targets_take_the_fused_lstm_step() -> None:
    """The RAM-bound targets call the unit-major LSTM step (small scratch); the others the
    vectorisable one."""
    for name in available():
        want = "fused" if name.startswith(("cortex-m", "riscv32")) else "vector"
        assert load_target(name)["kernels"].get("recurrent", "vector") == want, name


def test_matvec_wide_is_checked(tmp_path: Path, monkeypatch) -> None:
    _write_target(tmp_path, monkeypatch,
                  'inherits = "cortex-m4"\nname = "t"\n[kernels]\nmatvec_wide = "neon"\n')
    with pytest.raises(RnnqError, match='kernels.matvec_wide must be "" or one of arm_dsp_w16'):
        load_target("t")
    _write_target(tmp_path, monkeypatch, 'inherits = "cortex-m0plus"\nname = "t"\n[kernels]\n'
                                         'matvec_wide = "arm_dsp_w16"\n')
    with pytest.raises(RnnqError, match="kernels.matvec_wide = 'arm_dsp_w16' needs isa.features"):
        load_target("t")


def test_which_targets_have_int16_weight_kernels() -> None:
    """The Armv7E-M / Armv8-M Mainline DSP cores; the M55 keeps MVE (int8 weights widened by its
    loads)."""
    for name in available():
        want = "arm_dsp_w16" if name in ("cortex-m4", "cortex-m7", "cortex-m33") else ""
        assert load_target(name)["kernels"].get("matvec_wide", "") == want, name


def _weight_arrays(build: Path) -> set[str]:
    """The C types of the matvec weight arrays in weights.c (params fields w and rw)."""
    text = (build / "weights.c").read_text()
    return set(re.findall(r"^const (\w+) \w+_r?w\[", text, re.MULTILINE))


def test_weights_int16_where_they_fit(tmp_path: Path) -> None:
    """--weights auto on cortex-m4: int16 weights (arm_dsp_w16) while the constants take at
    most half the flash budget, else int8 (arm_dsp); int8 / int16 force it; the manifest says
    which and why. Both builds give the same bits on the board (emulated)."""
    _tools("cortex-m4")
    ex, args = EXAMPLE, (EXAMPLE / "model.onnx", EXAMPLE / "calib.npz")
    wide = compile_model(*args, tmp_path / "auto", "cortex-m4", "m")
    k = wide["kernels"]
    assert (k["matvec"], k["matvec_weight_bits"]) == ("arm_dsp_w16", 16), k
    assert "half the flash budget" in k["why"]
    assert _weight_arrays(tmp_path / "auto") == {"int32_t"}
    assert (tmp_path / "auto" / "rnnq_matvec_arm_dsp_w16.c").exists()
    assert not (tmp_path / "auto" / "rnnq_matvec_arm_dsp.c").exists()
    need = wide["memory"]["weight_bytes"]
    # a flash budget under twice those constants: int8 weights, and the build still fits
    small = compile_model(*args, tmp_path / "small", "cortex-m4", "m", flash=2 * need - 2)
    k = small["kernels"]
    assert (k["matvec"], k["matvec_weight_bits"]) == ("arm_dsp", 8), k
    assert str(need) in k["why"] and _weight_arrays(tmp_path / "small") == {"int8_t"}
    assert small["memory"]["weight_bytes"] < need
    forced = compile_model(*args, tmp_path / "int8", "cortex-m4", "m", weights="int8")
    assert forced["kernels"]["matvec"] == "arm_dsp" and forced["kernels"]["why"] == "--weights int8"
    assert forced["memory"] == small["memory"]
    for b in ("auto", "int8"):
        r = validate(tmp_path / b, ex / "test.npz", on="emulator")
        assert r["c"]["bit_exact"] and r["device"]["bit_exact"], (b, r["c"], r["device"])
    with pytest.raises(RnnqError, match="--weights int16: target generic-c99 has no int16-weight"):
        compile_model(*args, tmp_path / "g", "generic-c99", weights="int16")
    assert not (tmp_path / "g").exists()


def test_unknown_target_key_is_an_error(tmp_path: Path, monkeypatch) -> None:
    _write_target(tmp_path, monkeypatch, 'inherits = "generic-c99"\nname = "t"\n'
                                         '[isa]\nword_bits = 32\n')
    with pytest.raises(RnnqError, match="unknown key 'isa.word_bits'"):
        load_target("t")


def _emulated(target: str, model: Path, calib: Path, data: Path, tmp_path: Path) -> dict:
    _tools(target)
    build = tmp_path / target
    compile_model(model, calib, build, target, "m")
    rep = validate(build, data, on="emulator")
    assert rep["c"]["bit_exact"] and rep["c"]["mismatches"] == 0, rep["c"]
    assert rep["device"]["bit_exact"] and rep["device"]["mismatches"] == 0, rep["device"]
    assert rep["device"]["compared_values"] == rep["c"]["compared_values"] > 0
    return rep


@pytest.mark.parametrize("target", CI_TARGETS)
def test_lstm_on_emulated_board(target: str, small_test: Path, tmp_path: Path) -> None:
    _emulated(target, EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", small_test, tmp_path)


@pytest.mark.parametrize("target", CI_TARGETS)
def test_gru_on_emulated_board(target: str, tmp_path: Path) -> None:
    ex = ROOT / "examples" / "basic_motions_gru"
    _emulated(target, ex / "model.onnx", ex / "calib.npz", ex / "test.npz", tmp_path)


@slow_all
@pytest.mark.parametrize("target", ALL_TARGETS[3:])
def test_other_boards(target: str, small_test: Path, tmp_path: Path) -> None:
    _emulated(target, EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", small_test, tmp_path)


def test_m4_links_without_soft_float(tmp_path: Path) -> None:
    """Integer-only proof: the model linked for a soft-float M4 pulls in no float helper."""
    _tools("cortex-m4")
    require_tool("arm-none-eabi-nm")
    build = tmp_path / "b"
    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", build, "cortex-m4", "m")
    main = tmp_path / "main.c"
    main.write_text(
        '#include "model.h"\n'
        "static m_state st;\nstatic int32_t arena[(M_ARENA_BYTES + 3) / 4];\n"
        "static m_input_t x[3 * M_INPUT_SIZE];\nstatic m_output_t y[M_OUTPUT_SIZE];\n"
        "int main(void) { m_reset(&st); return m_run(&st, x, 3, y, arena) + y[0]; }\n")
    t = load_target("cortex-m4")
    srcs = [str(build / f) for f in os.listdir(build) if f.endswith(".c") and f != "harness.c"]
    elf = tmp_path / "m.elf"
    subprocess.run(["arm-none-eabi-gcc", *t["toolchain"]["cflags"], f"-I{build}",
                    "--specs=nosys.specs", "-nostartfiles", "-Wl,-e,main", "-Wl,--gc-sections",
                    str(main), *srcs, "-o", str(elf)], check=True)
    syms = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                          check=True).stdout
    assert "m_run" in syms  # the model really is in the image
    assert not re.findall(r"__aeabi_[fd]\w*", syms), re.findall(r"__aeabi_[fd]\w*", syms)
    attrs = subprocess.run(["arm-none-eabi-readelf", "-A", str(elf)], capture_output=True,
                           text=True, check=True).stdout
    assert "VFP" not in attrs


def test_memory_is_measured_and_budget_enforced(tmp_path: Path) -> None:
    _tools("cortex-m0plus")
    ok = tmp_path / "ok"
    m = compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", ok, "cortex-m0plus", "m")
    tm = m["target_memory"]
    assert tm["measured"] and tm["flash_bytes"] > m["memory"]["weight_bytes"]
    assert tm["ram_bytes"] >= m["memory"]["arena_bytes"] + m["memory"]["state_bytes"]
    assert tm["stack_bytes"] > 0
    # a budget smaller than the model: exit 2, both numbers named, nothing written
    out = tmp_path / "small"
    r = subprocess.run([sys.executable, "-m", "rnnq.cli", "compile", str(EXAMPLE / "model.onnx"),
                        "--calib", str(EXAMPLE / "calib.npz"), "--target", "cortex-m0plus",
                        "-o", str(out), "--flash", "4096"], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert str(tm["flash_bytes"]) in line and "4096" in line and str(tm["ram_bytes"]) in line
    assert not out.exists()


def test_cmake_project_builds(tmp_path: Path) -> None:
    require_tool("cmake")
    build = tmp_path / "b"
    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", build, "generic-c99", "m")
    cb = tmp_path / "cmake"
    subprocess.run(["cmake", "-S", str(build), "-B", str(cb)], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(cb)], check=True, capture_output=True)
    assert list(cb.glob("librnnq_m.a"))


def test_x86_64_target_is_vectorised_and_exact(small_test: Path, tmp_path: Path) -> None:
    """--target x86-64: the portable kernels at -O3 for x86-64-v3 (AVX2), run on this host by
    validate, bit-exact with the simulator."""
    cpu = Path("/proc/cpuinfo")
    if not cpu.exists() or " avx2" not in cpu.read_text():
        pytest.skip("this host has no AVX2 to run an x86-64-v3 build")
    build = tmp_path / "b"
    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", build, "x86-64", "m")
    assert "-march=x86-64-v3" in (build / "Makefile").read_text()
    rep = validate(build, small_test)
    assert rep["c"]["bit_exact"] and rep["c"]["mismatches"] == 0, rep["c"]
    assert rep["c"]["compared_values"] > 0


def _fake_cpu(tmp_path: Path, monkeypatch, flags: str) -> None:
    """An x86-64 machine whose cpuinfo lists `flags`."""
    cpu = tmp_path / "cpuinfo"
    cpu.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\n"
                   f"flags\t\t: fpu sse2 {flags}\n")
    monkeypatch.setattr(targets, "CPUINFO", cpu)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")


def test_host_cpu_lacks_names_the_missing_features(tmp_path: Path, monkeypatch) -> None:
    _fake_cpu(tmp_path, monkeypatch, "avx2 avx512f avx512bw avx512vl")
    assert host_cpu_lacks(load_target("x86-64-vnni")) == ["avx512_vnni"]
    assert host_cpu_lacks(load_target("x86-64")) == []
    # portable C runs anywhere; a cross target runs on its emulator
    assert host_cpu_lacks(load_target("generic-c99")) == []
    assert host_cpu_lacks(load_target("arm64")) == []
    _fake_cpu(tmp_path, monkeypatch, "sse4_2")
    assert host_cpu_lacks(load_target("x86-64")) == ["avx2"]
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert host_cpu_lacks(load_target("x86-64-vnni")) == ["x86-64-v4"]


def test_validate_refuses_on_a_cpu_without_the_targets_features(small_test: Path, tmp_path: Path,
                                                               monkeypatch) -> None:
    """A build for x86-64-vnni compiles anywhere; validating it where the CPU lacks AVX-512
    VNNI is one line and exit 2 (not a SIGILL from the harness)."""
    require_tool("gcc")
    build = tmp_path / "b"
    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", build, "x86-64-vnni", "m")
    _fake_cpu(tmp_path, monkeypatch, "avx2")
    r = CliRunner().invoke(main, ["validate", str(build), "--data", str(small_test)])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "x86-64-vnni" in lines[0] and "avx512f, avx512bw, avx512vl, avx512_vnni" in lines[0]


def test_x86_64_vnni_target_uses_vpdpwssd_and_is_exact(small_test: Path, tmp_path: Path) -> None:
    """--target x86-64-vnni: the library (plain make in the build folder) contains the x86
    matvec's VPDPWSSD path; where the CPU has AVX-512 VNNI (the CI machine does: Zen 4),
    validate runs it bit-exact with the simulator."""
    require_tool("gcc")
    require_tool("make")
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("not an x86-64 host")
    build = tmp_path / "b"
    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", build, "x86-64-vnni", "m")
    assert "-march=x86-64-v4 -mavx512vnni" in (build / "Makefile").read_text()
    subprocess.run(["make", "-s", "-C", str(build)], check=True, capture_output=True)
    if shutil.which("objdump"):
        text = subprocess.run(["objdump", "-d", str(build / "librnnq_m.a")], check=True,
                              capture_output=True, text=True).stdout
        assert "\tvpdpwssd" in text
    lacking = host_cpu_lacks(load_target("x86-64-vnni"))
    if lacking:
        pytest.skip(f"this CPU lacks {', '.join(lacking)} to run the build")
    rep = validate(build, small_test)
    assert rep["c"]["bit_exact"] and rep["c"]["mismatches"] == 0, rep["c"]
    assert rep["c"]["compared_values"] > 0 and rep["c"]["target_kernels"]

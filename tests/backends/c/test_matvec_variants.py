"""Every matvec variant on the core it is written for, against rnnq/sim/kernels.py exactly.

One self-checking C program (cprogram.py, pooled buffers with guard words) holds rnnq_matvec_*
cases (odd columns, rows not a multiple of the four-row unroll, misaligned weight and input
pointers, -128/127 extremes with accumulators at the int32 limit) and LSTM / GRU / RNN / dense
sequences, with the simulator's outputs. It is linked with rnnq_kernels.c and one
rnnq_matvec_<variant>.c and run:
- on the host (gcc and clang, -Werror -pedantic, ASan + UBSan) for all three variants (arm_dsp and
  neon are their portable fallbacks there);
- arm_dsp on Cortex-M4 (QEMU mps2-an386, semihosting): the SMLAD assembly at -O2 and -O0, and
  the ACLE C path (-mno-unaligned-access);
- arm_dsp on Cortex-M0 (QEMU microbit, 16 KiB RAM): the portable fallback;
- neon on AArch64 (qemu-aarch64): SDOT (armv8.2-a+dotprod, -cpu cortex-a76) and plain NEON
  (armv8-a, -cpu cortex-a53).
The exit status is the number of failed checks. A missing cross tool skips (fails under CI=true).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
from pathlib import Path

import cbuild
import numpy as np
import pytest
from cprogram import (
    INT32_MAX,
    MATVEC_VARIANTS,
    CProgram,
    add_dense,
    add_h_rnn,
    add_lstm,
    add_matvec,
    matvec_source,
)

from rnnq.backends.c.layouts import LAYOUTS
from tests.sim.kernel_cases import LSTM_OPTIONS, random_dense, random_gru, random_lstm, random_rnn

KERNELS = cbuild.RUNTIME_DIR / "rnnq_kernels.c"
HEADERS = ("rnnq_fixedpoint.h", "rnnq_kernels.h", "rnnq_matvec.h")
SEED = 20250101

_PICOLIBC = ["--specs=picolibc.specs", "--oslib=semihost", "--crt0=semihost"]
_M4_LINK = ["-Wl,--defsym=__flash=0x0", "-Wl,--defsym=__flash_size=0x400000",
            "-Wl,--defsym=__ram=0x20000000", "-Wl,--defsym=__ram_size=0x400000",
            "-Wl,--defsym=__stack_size=0x10000"]
_M0_LINK = ["-Wl,--defsym=__flash=0x0", "-Wl,--defsym=__flash_size=0x40000",
            "-Wl,--defsym=__ram=0x20000000", "-Wl,--defsym=__ram_size=0x4000",
            "-Wl,--defsym=__stack_size=0x800"]
# mps3-an547: 512 KiB ITCM at 0, DTCM at 0x20000000 (cortex-m55.toml's firmware map)
_M55_LINK = ["-Wl,--defsym=__flash=0x0", "-Wl,--defsym=__flash_size=0x80000",
             "-Wl,--defsym=__ram=0x20000000", "-Wl,--defsym=__ram_size=0x80000",
             "-Wl,--defsym=__stack_size=0x10000"]
_QEMU_SYS = ["-nographic", "-monitor", "none", "-serial", "none",
             "-semihosting-config", "enable=on,target=native", "-kernel"]


# ---- the program ----------------------------------------------------------------------------


def _extreme_matvec(rows: int, cols: int, wide: bool):
    """Rows alternating between the largest positive and negative sums: x all at its minimum,
    weights -128 (positive products) or 127 (negative products)."""
    xmin = -32768 if wide else -128
    x = np.full(cols, xmin, np.int16 if wide else np.int8)
    w = np.where(np.arange(rows)[:, None] % 2 == 0, -128, 127) * np.ones((rows, cols), np.int64)
    return w, x


def _add_matvecs(prog: CProgram, rng: np.random.Generator, large: bool) -> None:
    shapes = [(r, c) for r in (1, 2, 3, 4, 5, 7, 8, 9) for c in (0, 1, 2, 3, 4, 5, 7, 8, 9)]
    shapes += [(13, 15), (6, 16), (11, 17), (12, 31), (5, 33), (10, 64), (3, 65)]
    if large:
        shapes += [(67, 130), (41, 64), (20, 129)]
    for i, (rows, cols) in enumerate(shapes):
        for wide in (False, True):
            lim = 2**15 if wide else 2**7
            w = rng.integers(-128, 128, (rows, cols))
            x = rng.integers(-lim, lim, cols).astype(np.int16 if wide else np.int8)
            w_off, x_off = int(rng.integers(4)), int(rng.integers(2 if wide else 4))
            add_matvec(prog, w, x, w_off, x_off)
            if cols and (cols <= 9 or i % 2 or large):
                add_matvec(prog, *_extreme_matvec(rows, cols, wide), (i + 1) % 4, i % 2)
    if large:
        # int16 x at the precondition's limit: 511 products of 128 * 32768 sum to 2^31 - 2^22.
        add_matvec(prog, *_extreme_matvec(5, 511, True), 1, 1)
        add_matvec(prog, *_extreme_matvec(19, 511, True), 2, 1)  # two blocks of eight rows


def _extremes(p, rng: np.random.Generator, wide_h: int = 0):
    """p with -128/127 weights and biases at the int32 accumulator limit (wide_h: the last
    wide_h rows of bias_h see an int16 vector, as the GRU candidate with linear_before_reset 0)."""
    out = {}
    for name, cols in (("w", p.input_size), ("rw", p.hidden_size)):
        out[name] = rng.choice(np.array([-128, 127], np.int8), getattr(p, name).shape)
        bias = "bias_x" if name == "w" else "bias_h"
        room = np.full(getattr(p, bias).shape, INT32_MAX - cols * 128 * 128, np.int64)
        if name == "rw" and wide_h:
            room[-wide_h:] = INT32_MAX - cols * 128 * 32768
        out[bias] = (room * rng.choice([-1, 1], room.shape)).astype(np.int32)
    return dataclasses.replace(p, **out)


def _x(rng, T: int, n: int, extreme: bool) -> np.ndarray:
    if extreme:
        return rng.choice(np.array([-128, 127]), (T, n))
    return rng.integers(-128, 128, (T, n))


def _x16(p, rng, T: int, extreme: bool):
    """(params, x) for the _x16 step: an int16 input, the input requantisation 2^8 smaller;
    extreme: -32768/32767 inputs with -128/127 weights and bias_x at the accumulator limit."""
    I = p.input_size
    out = {"shift_x": (np.asarray(p.shift_x) + 8).astype(np.int32)}
    if extreme:
        out["w"] = rng.choice(np.array([-128, 127], np.int8), p.w.shape)
        room = np.full(p.bias_x.shape, INT32_MAX - I * 128 * 32768, np.int64)
        out["bias_x"] = (room * rng.choice([-1, 1], room.shape)).astype(np.int32)
        x = rng.choice(np.array([-32768, 32767]), (T, I))
    else:
        x = rng.integers(-32768, 32768, (T, I))
    return dataclasses.replace(p, **out), x.astype(np.int16)


def _add_kernels(prog: CProgram, rng: np.random.Generator, large: bool) -> None:
    sizes = [(1, 1), (3, 5), (5, 3), (7, 9), (12, 7)] + [(33, 17), (40, 24)] * large
    for k, (I, H) in enumerate(sizes):
        T = 3
        opts = list(LSTM_OPTIONS.values())[k % len(LSTM_OPTIONS)]
        for extreme in (False, True):
            p = random_lstm(rng, I, H, 7 + (3 * k) % 9, **opts)
            add_lstm(prog, _extremes(p, rng) if extreme else p, _x(rng, T, I, extreme))
            for lbr in (0, 1):
                p = random_gru(rng, I, H, lbr, hard_sigmoid=bool(k % 2), clip=extreme)
                p = _extremes(p, rng, 0 if lbr else H) if extreme else p
                add_h_rnn(prog, "gru", p, _x(rng, T, I, extreme))
            p = random_rnn(rng, I, H, k % 3, clip=extreme)
            add_h_rnn(prog, "rnn", _extremes(p, rng) if extreme else p, _x(rng, T, I, extreme))
            # the int16-input steps (a 16-bit model input)
            add_lstm(prog, *_x16(random_lstm(rng, I, H, 7 + (3 * k) % 9, **opts), rng, T,
                                 extreme))
            add_h_rnn(prog, "gru", *_x16(random_gru(rng, I, H, k % 2), rng, T, extreme))
            # a GRU with a 16-bit state, int8 and int16 inputs
            l16 = random_lstm(rng, I, H, 7 + (5 * k) % 21, state_bits=16,
                              **LSTM_OPTIONS[sorted(LSTM_OPTIONS)[k % len(LSTM_OPTIONS)]])
            add_lstm(prog, l16, _x(rng, T, I, extreme))
            add_lstm(prog, *_x16(l16, rng, T, extreme))
            g16 = random_gru(rng, I, H, (k + 1) % 2, clip=extreme, state_bits=16)
            add_h_rnn(prog, "gru", g16, _x(rng, T, I, extreme))
            add_h_rnn(prog, "gru", *_x16(g16, rng, T, extreme))
            add_h_rnn(prog, "rnn", *_x16(random_rnn(rng, I, H, k % 3), rng, T, extreme))
            if not extreme and k in (1, 4, 5):  # 16-bit recurrent weights (rw_lo in the
                bits = (8, 16)[k % 2]           # variant's layout too; M0 flash allowing)
                add_lstm(prog, random_lstm(rng, I, H, 9, state_bits=bits, fine=True),
                         _x(rng, T, I, False))
                for lbr in (0, 1):
                    add_h_rnn(prog, "gru", random_gru(rng, I, H, lbr, state_bits=bits, fine=True),
                              _x(rng, T, I, False))
                add_h_rnn(prog, "rnn", random_rnn(rng, I, H, k % 3, state_bits=bits, fine=True),
                          _x(rng, T, I, False))
    if large:  # the benchmark size, one step
        add_lstm(prog, random_lstm(rng, 64, 128, 11), rng.integers(-128, 128, (1, 64)))
    for K, N, rows in [(1, 1, 1), (3, 5, 2), (17, 7, 3), (33, 9, 1)] + [(128, 40, 2)] * large:
        p = random_dense(rng, K, N)
        add_dense(prog, p, rng.integers(-128, 128, (rows, K)))
        room = INT32_MAX - K * 128 * 128
        w = rng.choice(np.array([-128, 127], np.int8), (N, K))
        bias = (room * rng.choice([-1, 1], N)).astype(np.int32)
        q = dataclasses.replace(p, w=w, bias=bias)
        add_dense(prog, q, rng.choice(np.array([-128, 127]), (rows, K)))


def _layout(variant: str) -> str:
    """The weight layout a variant reads (rnnq/backends/layouts.py): arm_dsp and x86 their own."""
    return variant if variant in LAYOUTS else "ref"


@functools.cache
def _program(large: bool, layout: str = "ref", fused: bool = True) -> str:
    rng = np.random.default_rng(SEED + large)
    prog = CProgram(pooled=True, matvec=layout, fused=fused)
    _add_matvecs(prog, rng, large)
    _add_kernels(prog, rng, large)
    return prog.render(HEADERS)


_MAIN_OBJECTS: dict[tuple, Path] = {}


def _main_object(cc: str, arch: tuple[str, ...], large: bool, tmp_path: Path,
                 layout: str = "ref", fused: bool = True) -> Path:
    """The test program's main (cases and checks) compiled at -O0 once per compiler,
    architecture flags and weight layout: it is large straight-line code, and only the runtime
    is under test."""
    key = (cc, arch, large, layout, fused)
    if key not in _MAIN_OBJECTS or not _MAIN_OBJECTS[key].exists():
        size = "large" if large else "small"
        src = tmp_path / f"matvec_check_{size}_{layout}_{len(_MAIN_OBJECTS)}.c"
        src.write_text(_program(large, layout, fused))
        obj = src.with_suffix(".o")
        _compile([cc, *cbuild.STRICT_FLAGS, *arch, "-O0", f"-I{cbuild.RUNTIME_DIR}", "-c",
                  str(src), "-o", str(obj)])
        _MAIN_OBJECTS[key] = obj
    return _MAIN_OBJECTS[key]


def _compile(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, " ".join(cmd) + "\n" + proc.stderr[-4000:]


def _build(cc: str, arch: list[str], opts: list[str], link: list[str], variant: str,
           large: bool, tmp_path: Path, tmp_main: Path, matvec_obj: Path | None = None,
           fused: bool = True) -> Path:
    """main (-O0) + rnnq_kernels.c + rnnq_matvec_<variant>.c (opts) -> executable; matvec_obj:
    the variant compiled by another compiler instead; fused: with the unit-major LSTM cases."""
    main = _main_object(cc, tuple(arch), large, tmp_main, _layout(variant), fused)
    exe = tmp_path / f"check-{variant}"
    # the kernels (and a variant) compiled once per compiler and flags, for every test linking
    # them: most of a build, and the same for every variant on one core
    flags = [*cbuild.STRICT_FLAGS, *arch, *opts]
    kernels = cbuild.compile_object(KERNELS, flags, cc=cc)
    matvec = matvec_obj or cbuild.compile_object(matvec_source(variant), flags, cc=cc)
    _compile([cc, *flags, str(main), str(kernels), str(matvec), *link, "-o", str(exe)])
    return exe


def _picolibc_include(cc: str) -> str:
    """The C library headers arm-none-eabi-gcc uses with picolibc (for clang cross builds)."""
    text = subprocess.run([cc, *_PICOLIBC, "-E", "-v", "-x", "c", os.devnull, "-o", os.devnull],
                          capture_output=True, text=True, check=True).stderr
    dirs = text.split("search starts here:")[-1].split("End of search list.")[0].split()
    return next(d for d in dirs if "picolibc" in d)


def _disassembles_to(objdump: str, exe: Path, mnemonic: str) -> bool:
    """Whether the program's code contains `mnemonic` (the fast path was really compiled)."""
    if shutil.which(objdump) is None:
        return True  # nothing to check with; the results are still compared
    text = subprocess.run([objdump, "-d", str(exe)], capture_output=True, text=True,
                          check=True).stdout
    return f"\t{mnemonic}" in text


def _require(tool: str) -> str:
    cbuild.require_compiler(tool)  # skips, or fails under CI=true
    return tool


def _run(cmd: list[str], timeout: int = 120, env: dict | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)
    out = proc.stdout + proc.stderr
    # (semihosting prints to QEMU's stderr)
    assert proc.returncode == 0 and out.strip().endswith("OK"), (
        f"exit {proc.returncode} ({proc.returncode} failed checks if < 128)\n{out[-4000:]}"
    )
    assert "runtime error" not in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def tmp_main(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("matvec_main")


# ---- host -----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", MATVEC_VARIANTS)
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_host_sanitized(cc, variant, tmp_path, tmp_main):
    cbuild.require_compiler(cc)
    if not cbuild.sanitizers_work(cc):
        if cc == "gcc":
            cbuild.skip_or_fail("gcc cannot build/run -fsanitize=address,undefined here")
        pytest.skip(f"{cc} cannot build/run -fsanitize=address,undefined here")
    exe = _build(cc, list(cbuild.SANITIZE_FLAGS), ["-O1"], [], variant, True, tmp_path, tmp_main)
    _run([str(exe)], env={**os.environ, **cbuild.SANITIZE_ENV})


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {f for line in text.splitlines() if line.startswith("flags") for f in line.split()}


@pytest.mark.parametrize("variant", ["ref", "x86"])
@pytest.mark.parametrize("march", ["x86-64-v3", "native"])
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_host_vectorised(cc, march, variant, tmp_path, tmp_main):
    """The portable runtime as a release build compiles it for x86-64: -O3 with AVX2 and with
    every extension of this CPU (AVX-512 where it has it). The branch-free recurrent loops
    must have been vectorised (per-lane shifts of the row requantisations: VPSRAVD) and, with
    gcc, the matvec too (VPMADDWD, or VPDPWSSD with AVX-512 VNNI)."""
    if "avx2" not in _cpu_flags():
        pytest.skip("this CPU has no AVX2")
    cbuild.require_compiler(cc)
    exe = _build(cc, [f"-march={march}"], ["-O3"], [], variant, True, tmp_path, tmp_main)
    assert _disassembles_to("objdump", exe, "vpsravd")
    if cc == "gcc" or variant == "x86":  # (clang 14 multiplies ref's loop with VPMULLD)
        # (on a CPU with AVX-VNNI too, -march=native may give VPDPWSSD its VEX encoding)
        assert any(_disassembles_to("objdump", exe, m)
                   for m in ("vpmaddwd", "vpdpwssd", "{vex} vpdpwssd"))
    _run([str(exe)])


#: what the x86-64-vnni target compiles with (targets/x86-64-vnni.toml), and the CPU flags its
#: VPDPWSSD path needs
VNNI_ARCH = ["-march=x86-64-v4", "-mavx512vnni"]
VNNI_CPU = {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"}


@pytest.mark.parametrize(
    "cc, opts",
    [("gcc", ["-O3"]), ("clang", ["-O3"]), ("gcc", ["-O1", *cbuild.SANITIZE_FLAGS])],
    ids=["gcc-O3", "clang-O3", "gcc-sanitized"],
)
def test_host_vnni(cc, opts, tmp_path, tmp_main):
    """The x86 variant's AVX-512 VNNI path (VPDPWSSD, the x86-64-vnni target's flags), on the
    same cases as the others: rows not a multiple of eight, odd and even column counts, int8 and
    int16 x, -128/127 and -32768 extremes up to the int32 limit. It is compiled on any x86-64
    host (it must contain VPDPWSSD) and run where the CPU has AVX-512 VNNI (the CI machine
    does: its cores are Zen 4); elsewhere the run is skipped (a CPU feature is not a tool to
    install)."""
    if "avx2" not in _cpu_flags():
        pytest.skip("not an x86-64 host with AVX2")
    cbuild.require_compiler(cc)
    sanitized = "-fsanitize=address,undefined" in opts
    if sanitized and not cbuild.sanitizers_work(cc):
        cbuild.skip_or_fail(f"{cc} cannot build/run -fsanitize=address,undefined here")
    link = list(cbuild.SANITIZE_FLAGS) if sanitized else []
    exe = _build(cc, VNNI_ARCH, opts, link, "x86", True, tmp_path, tmp_main)
    assert _disassembles_to("objdump", exe, "vpdpwssd")
    missing = VNNI_CPU - _cpu_flags()
    if missing:
        pytest.skip(f"this CPU lacks {', '.join(sorted(missing))} to run the VNNI build")
    _run([str(exe)], env={**os.environ, **cbuild.SANITIZE_ENV} if sanitized else None)


# ---- Cortex-M -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant, opts",
    [
        ("arm_dsp", ["-O2"]),  # SMLAD assembly
        ("arm_dsp", ["-O0"]),  # the same assembly must also find its registers at -O0
        ("arm_dsp", ["-O2", "-mno-unaligned-access"]),  # the ACLE C path
        ("ref", ["-O2"]),
        ("arm_dsp", ["-O2", "clang"]),  # the assembly through clang's allocator and assembler
        ("arm_dsp_w16", ["-O2"]),  # int16 weights: LDM + SMLAD assembly
        ("arm_dsp_w16", ["-O0"]),
        ("arm_dsp_w16", ["-O2", "clang"]),
    ],
    ids=["dsp-O2", "dsp-O0", "dsp-acle-c", "ref", "dsp-clang", "w16-O2", "w16-O0", "w16-clang"],
)
def test_cortex_m4(variant, opts, tmp_path, tmp_main):
    """QEMU mps2-an386 (Cortex-M4 with the DSP extension)."""
    cc = _require("arm-none-eabi-gcc")
    qemu = _require("qemu-system-arm")
    arch = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", *_PICOLIBC]
    obj = None
    if "clang" in opts:
        clang = _require("clang")
        opts = [o for o in opts if o != "clang"]
        obj = tmp_path / "matvec_clang.o"
        # clang's bare-metal default is strict alignment; the assembly path needs unaligned LDR.
        _compile([clang, "--target=thumbv7em-none-eabi", "-mcpu=cortex-m4", "-mthumb",
                  "-mfloat-abi=soft", "-munaligned-access", *cbuild.STRICT_FLAGS, *opts,
                  "-isystem", _picolibc_include(cc), f"-I{cbuild.RUNTIME_DIR}", "-c",
                  str(matvec_source(variant)), "-o", str(obj)])
        if shutil.which("arm-none-eabi-objdump"):  # the assembly path (3 x 8 SMLADs) was built
            text = subprocess.run(["arm-none-eabi-objdump", "-d", str(obj)], capture_output=True,
                                  text=True, check=True).stdout
            # (arm_dsp_w16 has no assembly for clang: its ACLE loops, 8 SMLADs per group)
            assert text.count("\tsmlad") >= (8 if variant == "arm_dsp_w16" else 24)
    exe = _build(cc, arch, opts, _M4_LINK, variant, True, tmp_path, tmp_main, obj)
    assert _disassembles_to("arm-none-eabi-objdump", exe, "smlad") == (variant != "ref")
    _run(["timeout", "100", qemu, "-M", "mps2-an386", "-cpu", "cortex-m4", *_QEMU_SYS, str(exe)])


@pytest.mark.parametrize("variant", ["mve", "arm_dsp"])
def test_cortex_m55(variant, tmp_path, tmp_main):
    """QEMU mps3-an547 (Cortex-M55: MVE, and the DSP extension the M4's kernels use)."""
    cc = _require("arm-none-eabi-gcc")
    qemu = _require("qemu-system-arm")
    arch = ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=softfp", *_PICOLIBC]
    exe = _build(cc, arch, ["-O2"], _M55_LINK, variant, False, tmp_path, tmp_main)  # 512 KiB
    text = subprocess.run(["arm-none-eabi-objdump", "-d", "-m", "armv8.1-m.main", str(exe)],
                          capture_output=True, text=True, check=True).stdout
    assert ("\tvmlava.s8" in text and "\tvmlava.s16" in text) == (variant == "mve")
    assert ("\tsmlad" in text) == (variant == "arm_dsp")
    _run(["timeout", "100", qemu, "-M", "mps3-an547", "-cpu", "cortex-m55", *_QEMU_SYS,
          str(exe)])


@pytest.mark.parametrize("variant", ["arm_dsp", "ref"])
def test_cortex_m0(variant, tmp_path, tmp_main):
    """QEMU microbit (Cortex-M0, no DSP extension: the portable fallback), 16 KiB RAM."""
    cc = _require("arm-none-eabi-gcc")
    qemu = _require("qemu-system-arm")
    arch = ["-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft", *_PICOLIBC]
    # without the fused-step cases (CProgram.fused), which would overflow the 256 KiB of
    # flash (their portable code is what the host variants run)
    exe = _build(cc, arch, ["-O2"], _M0_LINK, variant, False, tmp_path, tmp_main, fused=False)
    assert not _disassembles_to("arm-none-eabi-objdump", exe, "smlad")
    _run(["timeout", "100", qemu, "-M", "microbit", "-cpu", "cortex-m0", *_QEMU_SYS, str(exe)])


# ---- AArch64 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "march, cpu",
    [("armv8.2-a+dotprod", "cortex-a76"), ("armv8-a", "cortex-a53")],
    ids=["dotprod", "neon"],
)
def test_aarch64_neon(march, cpu, tmp_path, tmp_main):
    cc = _require("aarch64-linux-gnu-gcc")
    qemu = _require("qemu-aarch64")
    exe = _build(cc, [f"-march={march}"], ["-O2"], ["-static"], "neon", True, tmp_path, tmp_main)
    objdump = "aarch64-linux-gnu-objdump"
    assert _disassembles_to(objdump, exe, "sdot") == ("dotprod" in march)
    assert _disassembles_to(objdump, exe, "sadalp")
    _run(["timeout", "100", qemu, "-cpu", cpu, str(exe)])


# ---- compile only: the other cores of the targets --------------------------------------------


@pytest.mark.parametrize("opt", ["-O0", "-O2"])
@pytest.mark.parametrize(
    "cc, arch, variant",
    [
        ("arm-none-eabi-gcc", ["-mcpu=cortex-m7", "-mthumb"], "arm_dsp"),
        ("arm-none-eabi-gcc", ["-mcpu=cortex-m33", "-mthumb"], "arm_dsp"),
        ("arm-none-eabi-gcc", ["-mcpu=cortex-m7", "-mthumb"], "arm_dsp_w16"),
        ("arm-none-eabi-gcc", ["-mcpu=cortex-m33", "-mthumb"], "arm_dsp_w16"),
        ("arm-none-eabi-gcc", ["-mcpu=cortex-m55", "-mthumb"], "arm_dsp"),
        ("arm-none-eabi-gcc", ["-mcpu=cortex-m0plus", "-mthumb"], "arm_dsp"),
        ("aarch64-linux-gnu-gcc", ["-march=armv8.2-a+dotprod"], "neon"),
        ("clang", ["--target=aarch64-linux-gnu", "-march=armv8.2-a+dotprod"], "neon"),
    ],
    ids=["m7", "m33", "m7-w16", "m33-w16", "m55", "m0plus", "a64-gcc", "a64-clang"],
)
def test_cross_compiles_strict(cc, arch, variant, opt):
    """The variant and the kernels under the house flags for the other target cores (each
    compiled once per process: the kernels are the same for both variants of a core)."""
    _require(cc)
    for src in (matvec_source(variant), KERNELS):
        assert cbuild.compile_object(src, [*arch, *cbuild.STRICT_FLAGS, opt], cc=cc).is_file()

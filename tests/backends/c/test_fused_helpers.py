"""The unit-major steps' own helpers (rnnq_kernels.c: rnnq_requant_hi1, rnnq_sigmoid_gate,
rnnq_tanh_gate, rnnq_tanh_cut, rnnq_mul_q15_fused, rnnq_add_sat32_fused, rnnq_fused_clamp)
equal the branch-free path's helpers on the whole range they are used on, including inputs
the kernel tests' random cases rarely reach (every clamped gate value, the cell's tanh at the
table's end and at INT32_MIN for every shift). fused_helpers_check.c runs on the host (the
portable forms, sanitised) and on a Cortex-M4 in QEMU (the SSAT / USAT / SMUAD / QADD forms).
A missing cross tool skips (fails under CI=true)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import cbuild
import pytest

CHECK = Path(__file__).with_name("fused_helpers_check.c")
MATVEC_REF = cbuild.RUNTIME_DIR / "rnnq_matvec_ref.c"
_M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "--specs=picolibc.specs",
       "--oslib=semihost", "--crt0=semihost", "-Wl,--defsym=__flash=0x0",
       "-Wl,--defsym=__flash_size=0x400000", "-Wl,--defsym=__ram=0x20000000",
       "-Wl,--defsym=__ram_size=0x400000", "-Wl,--defsym=__stack_size=0x10000"]
_QEMU_M4 = ["-M", "mps2-an386", "-cpu", "cortex-m4", "-nographic", "-monitor", "none",
            "-serial", "none", "-semihosting-config", "enable=on,target=native", "-kernel"]


def _build(cc: str, flags: list[str], exe: Path) -> None:
    cmd = [cc, *cbuild.STRICT_FLAGS, *flags, f"-I{cbuild.RUNTIME_DIR}", str(CHECK),
           str(MATVEC_REF), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, " ".join(cmd) + "\n" + proc.stderr[-4000:]


def _run(cmd: list[str], env: dict | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env,
                          check=False)
    out = proc.stdout + proc.stderr  # (semihosting prints to QEMU's stderr)
    assert proc.returncode == 0 and out.strip().endswith("OK"), f"exit {proc.returncode}\n{out}"
    assert "runtime error" not in out, out


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_host(cc, tmp_path):
    cbuild.require_compiler(cc)
    flags, env = ["-O2"], None
    if cbuild.sanitizers_work(cc):
        flags, env = ["-O1", *cbuild.SANITIZE_FLAGS], {**os.environ, **cbuild.SANITIZE_ENV}
    exe = tmp_path / "check"
    _build(cc, flags, exe)
    _run([str(exe)], env)


def test_cortex_m4(tmp_path):
    cc = cbuild.require_compiler("arm-none-eabi-gcc")
    qemu = cbuild.require_compiler("qemu-system-arm")
    exe = tmp_path / "check.elf"
    _build(cc, ["-O2", *_M4], exe)
    objdump = cc.replace("-gcc", "-objdump")
    if Path(objdump).exists():  # the instructions the M4 forms exist for were compiled
        text = subprocess.run([objdump, "-d", str(exe)], capture_output=True, text=True,
                              check=True).stdout
        for mnemonic in ("ssat", "usat", "smuad", "qadd"):
            assert f"\t{mnemonic}" in text, mnemonic
    _run(["timeout", "300", qemu, *_QEMU_M4, str(exe)])

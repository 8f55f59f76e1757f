"""Bare-metal Cortex-M4 benchmark firmware: a build folder's library + a small main.

The firmware is the one ELF that both counters run: unicorn calls `m_reset`/`m_step` directly
(the `bench_*` globals are their arguments) and QEMU runs `main`, which does the same T steps
and prints y. `bench_count_check` is a hand-countable function (an IT block inside a loop):
6n + 2 instructions for r0 = n >= 1.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from rnnq.backends.c.memory import lib_sources
from rnnq.targets import load_target

FIRMWARE_TARGET = "cortex-m4"

MAIN_C = r"""/* rnnq bench firmware: T steps of the model on fixed inputs (bench/firmware.py). */
#include <stdio.h>
#include "model.h"

#define BENCH_T {steps}

const m_input_t bench_x[BENCH_T][M_INPUT_SIZE] = {{
{rows}
}};
m_state bench_st;
int32_t bench_arena[(M_ARENA_BYTES + 3) / 4 + 1];
m_output_t bench_y[M_OUTPUT_SIZE];

int bench_count_check(int n);

/* r0 = n >= 1: movs + n * (adds, cmp, ite, movne, moveq, bne) + bx = 6n + 2 instructions. */
__asm__(
    "  .text\n"
    "  .thumb\n"
    "  .syntax unified\n"
    "  .global bench_count_check\n"
    "  .type bench_count_check, %function\n"
    "  .thumb_func\n"
    "bench_count_check:\n"
    "  movs r1, #0\n"
    "1:\n"
    "  adds r1, r1, #1\n"
    "  cmp r1, r0\n"
    "  ite ne\n"
    "  movne r2, #1\n"
    "  moveq r2, #2\n"
    "  bne 1b\n"
    "  bx lr\n"
    "  .size bench_count_check, . - bench_count_check\n");

int main(void)
{{
    int t;
    int k;
    m_reset(&bench_st);
    for (t = 0; t < BENCH_T; ++t) {{
        if (m_step(&bench_st, bench_x[t], bench_y, bench_arena) != M_OK) {{
            return 1;
        }}
    }}
    printf("y");
    for (k = 0; k < M_OUTPUT_SIZE; ++k) {{
        printf(" %d", bench_y[k]);
    }}
    printf("\n");
    return bench_count_check(1000) == 1000 ? 0 : 2;
}}
"""


def write_main(folder: Path, xq: np.ndarray) -> Path:
    """main.c with the quantised inputs xq [T, M_INPUT_SIZE] (m_input_t) as a const array."""
    rows = ",\n".join("    {" + ", ".join(str(int(v)) for v in row) + "}" for row in xq)
    path = folder / "bench_main.c"
    path.write_text(MAIN_C.format(steps=len(xq), rows=rows))
    return path


def build_elf(build: Path, xq: np.ndarray, out: Path, target: str = FIRMWARE_TARGET) -> Path:
    """Cross-compile build/'s library sources + the bench main into out (an ELF).

    Flags: the cortex-m4 target's compiler flags (-mcpu=cortex-m4 -mthumb -mfloat-abi=soft -O2
    ...) and its test-firmware flags (picolibc, semihosting, the mps2-an386 memory map), so
    a build for any target (e.g. generic-c99: the portable kernels) is measured on the M4;
    `target` another core's (bench/helium.py: cortex-m55)."""
    tgt = load_target(target)
    tc, fw = tgt["toolchain"], tgt["firmware"]
    main = write_main(build, xq)
    srcs = [str(main), *(str(build / s) for s in lib_sources(build))]
    cmd = [tc["cc"], *tc["cflags"], *fw["cflags"], f"-I{build}", *srcs, *tc["ldflags"],
           *fw["ldflags"], "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"firmware build failed for {build}:\n{r.stderr}")
    return out

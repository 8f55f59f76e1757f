"""rnnq on an emulated Cortex-M55: Helium (MVE) kernels against the M4's DSP kernels, same core.

    python bench/helium.py [--work DIR] [--no-readme]        # or: make bench-helium

Each benchmark model (bench/models.py) is compiled three times by rnnq: for the `cortex-m55`
target (its `mve` matvec variant) and for `cortex-m4` with int8 weights (`arm_dsp`, SXTB16 +
SMLAD) and with int16 weights (`arm_dsp_w16`, the M4's default here), whose DSP instructions the
M55 also executes. Both libraries are linked into the same bench firmware (bench/firmware.py)
with the cortex-m55 target's compiler flags and memory map, and run on QEMU's `mps3-an547`
(Cortex-M55 with MVE). unicorn has no M55, so the count is QEMU's own: one instruction per
translation block (`-singlestep`), every block execution logged (`-d exec,nochain`), the lines
from `m_step`'s entry back to `main` (bench/qemu_check.py). T = STEPS steps (traces of the
larger layers run to millions of lines); the figure is the mean over steps 2..T (step 1 is
the same within a few instructions). The y that main prints after the last step must equal
rnnq's integer simulator, or the run fails. Rewrites the generated section of
bench/README.md unless --no-readme.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import firmware
import measure
import qemu_check
import report
from models import all_models

from rnnq.api import open_graphs
from rnnq.sim.integer import quantize_input, run_integer

BEGIN = "<!-- helium:begin -->"
END = "<!-- helium:end -->"
CORE = "cortex-m55"
STEPS = 4
#: the variant -> the target built for and its --weights
VARIANTS = {"dsp": ("cortex-m4", "int8"), "dsp16": ("cortex-m4", "int16"),
            "mve": ("cortex-m55", "auto")}


def _count(m, work: Path, variant: str) -> tuple[float, bool]:
    """(m_step instructions, mean of steps 2..STEPS; whether the printed y is the simulator's)."""
    build = work / m.name / f"build_{variant}"
    onnx_path, calib = measure.write(m, work / m.name)
    target, weights = VARIANTS[variant]
    measure.api.compile_model(onnx_path, calib, build, target, measure.PREFIX, weights=weights,
                              output_bits=8)
    ig = open_graphs(build)[2]
    xq = quantize_input(ig, measure.bench_input(m))[:, :STEPS]
    want = run_integer(ig, xq)[ig.outputs[0]].reshape(STEPS, -1)[-1]
    elf = firmware.build_elf(build, xq.reshape(STEPS, m.inp), build / "bench.elf", CORE)
    counts, printed = qemu_check.trace_calls(elf, build, ("m_step",), CORE)
    steps = counts["m_step"]
    if len(steps) != STEPS:
        raise RuntimeError(f"{m.name}/{variant}: {len(steps)} m_step calls traced, not {STEPS}")
    ok = ("y " + " ".join(str(int(v)) for v in want)) in printed.splitlines()
    return statistics.mean(steps[1:]), ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, help="keep models, builds and ELFs here")
    ap.add_argument("--no-readme", action="store_true", help="print the table only")
    args = ap.parse_args()
    t0 = time.monotonic()
    rows, errors = [], []
    with tempfile.TemporaryDirectory(prefix="rnnq-helium-") as td:
        work = args.work or Path(td)
        for m in all_models():
            got = {}
            for variant in VARIANTS:
                got[variant], ok = _count(m, work, variant)
                if not ok:
                    errors.append(f"{m.name}/{variant}: y differs from rnnq's integer simulator")
                print(f"{m.name:11s} {variant}: {got[variant]:10.1f} instr/step"
                      f"{'' if ok else '  y DIFFERS from the simulator'}", flush=True)
            rows.append((m, got))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    lines = [BEGIN, "",
             (f"QEMU `mps3-an547` (Cortex-M55), instructions per `m_step` (mean of steps "
              f"2–{STEPS}), both builds compiled with the cortex-m55 flags; y after step "
              f"{STEPS} equals rnnq's integer simulator in every run:"), "",
             ("| model | I×H | M4 DSP kernels, int8 weights | M4 DSP kernels, int16 weights | "
              "MVE kernels | MVE / DSP int8 | MVE / DSP int16 | instr/MAC (MVE, whole step) |"),
             "|---|---|--:|--:|--:|--:|--:|--:|"]
    for m, got in rows:
        lines.append(f"| {m.kind.upper()} | {m.inp}×{m.hidden} | {got['dsp']:,.0f} | "
                     f"{got['dsp16']:,.0f} | {got['mve']:,.0f} | {got['mve'] / got['dsp']:.2f}× | "
                     f"{got['mve'] / got['dsp16']:.2f}× | "
                     f"{got['mve'] / (m.recurrent_macs + m.head_macs):.2f} |")
    lines += ["", END]
    report.publish("\n".join(lines), not args.no_readme, BEGIN, END)
    print(f"done in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

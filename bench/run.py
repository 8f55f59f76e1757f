"""rnnq on an emulated Cortex-M4: instructions per step, flash and RAM, against CMSIS-NN.

    python bench/run.py [--work DIR] [--no-readme]

Builds the benchmark models (bench/models.py), compiles each for the portable kernels ("ref")
and the cortex-m4 target ("dsp"), builds bare-metal M4 firmware, counts instructions per
m_step in unicorn, checks every step's output against rnnq's integer simulator and the
counter against QEMU's trace, and regenerates the table in bench/README.md. Deterministic:
fixed seeds, exact counts. Exit status 0 when every check passed (only then is the README
rewritten), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import emu
import measure
import qemu_check
import report
from models import all_models

HERE = Path(__file__).resolve().parent
QEMU_CHECKED = "lstm_8x16"  # the model whose firmware is also traced in QEMU (both variants)
COUNT_N = 1000  # bench_count_check(n) executes 6n + 2 instructions


def check_counter(r: measure.Result, work: Path) -> list[str]:
    """Unicorn's counts of one firmware against QEMU's trace and a hand-counted loop."""
    errors = []
    m4 = emu.M4(r.elf)
    for n in (1, COUNT_N):
        got = m4.call("bench_count_check", n).instructions
        if got != 6 * n + 2:
            errors.append(f"unicorn counts {got} for bench_count_check({n}), not {6 * n + 2}")
    q, printed = qemu_check.trace_calls(r.elf, work, ("m_reset", "m_step", "bench_count_check"))
    if q["m_step"] != r.step or q["m_reset"] != [r.reset]:
        errors.append(f"{r.model.name}/{r.variant}: QEMU counts m_reset {q['m_reset']}, m_step "
                      f"{q['m_step'][:5]}...; unicorn {r.reset}, {r.step[:5]}...")
    if q["bench_count_check"] != [6 * COUNT_N + 2]:
        errors.append(f"QEMU counts {q['bench_count_check']} for bench_count_check({COUNT_N})")
    y_unicorn = "y " + " ".join(str(v) for v in r.y_last)
    if y_unicorn not in printed.splitlines():
        errors.append(f"{r.model.name}/{r.variant}: QEMU printed {printed!r}, unicorn has "
                      f"{y_unicorn!r}")
    return errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, help="keep models, builds and ELFs here")
    ap.add_argument("--no-readme", action="store_true", help="print the table only")
    args = ap.parse_args()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rnnq-bench-") as td:
        work = args.work or Path(td)
        results: list[measure.Result] = []
        errors: list[str] = []
        qemu_variants: list[str] = []
        for m in all_models():
            for variant in measure.VARIANT_TARGET:
                build = measure.compile_variant(m, work, variant)
                if variant != "ref" and not measure.has_dsp_kernels(build):
                    print(f"{m.name}: the cortex-m4 build has no DSP matvec file: dsp skipped")
                    continue
                r = measure.run(m, build, variant)
                results.append(r)
                print(f"{m.name:11s} {variant:4s} step {r.step_mean:10.1f} (max {max(r.step)})"
                      f"  layer {r.layer_mean:10.1f}  {r.layer_mean / r.macs:5.2f}/MAC  flash "
                      f"{r.flash}  RAM {r.ram}  matvec {r.matvec_called or '-'}  outputs "
                      f"{'= simulator' if r.outputs_match else 'DIFFER from simulator'}",
                      flush=True)
                if not r.outputs_match:
                    errors.append(f"{m.name}/{variant}: y differs from rnnq's integer simulator")
                if m.name == QEMU_CHECKED:
                    errors += check_counter(r, work)
                    qemu_variants.append(variant)
        checks = [
            (f"every model and variant ({len(results)} firmwares): y after each of the "
            f"{measure.T} steps, read from the emulated RAM, equals rnnq's integer simulator "
            "(`rnnq.sim.integer.run_integer`) exactly;"),
            (f"the counter: for {QEMU_CHECKED} ({', '.join(qemu_variants)}), QEMU "
            "(mps2-an386, `-singlestep -d exec,nochain`, one trace line per executed "
            f"instruction) gives the same count for `m_reset` and for each of the {measure.T} "
            "`m_step` calls, and prints the same y; a hand-counted loop with an IT block "
            f"(`bench_count_check`, 6n + 2) counts {6 * COUNT_N + 2} in both."),
        ]
        if errors:
            print("\nFAILED:\n" + "\n".join(errors), file=sys.stderr)
            return 1
        text = report.section(results, checks)
        if args.no_readme:
            print(text)
        else:
            readme = HERE / "README.md"
            readme.write_text(report.splice(readme.read_text(), text))
            print(f"wrote {readme}")
    print(f"done in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""rnnq's C on this machine against onnxruntime (float) and LiteRT (int8), per sequence.

    python bench/host.py [--work DIR] [--no-readme] [--rounds N]     # or: make bench-host

What a user on a Linux board or a phone would compare: one sequence of T = 50 steps
(`_reset` + `_run` of rnnq's generated C; one `run()` of onnxruntime on the float ONNX model with
one thread; one `invoke()` of LiteRT on rnnq's own `.tflite` after `reset_all_variables()`, with
the builtin int8 kernels and with the default resolver, which adds XNNPACK). The `.tflite` is
built with `--precision int8`, so that it is the int8 file the goals name: by default rnnq makes
unrolled GRU and RNN layers int16 (TFLite's 16x8 scheme), which LiteRT runs several times
slower. Models: the Cortex-M
benchmark's LSTM and GRU (bench/models.py) and two sizes that are multiples of neither 4 nor 16.

rnnq's C, compiled with gcc: the generic-c99 build (the portable kernels) with that target's
flags (`-O3`, what plain `make` in its build folder gives), the x86-64 target's build (its x86
matvec variant) with its flags (`-O3 -march=x86-64-v3`: AVX2) and as a release build for this
CPU (`-O3 -march=native`), and, where this CPU has AVX-512 VNNI, the x86-64-vnni target's build
with its flags (`-O3 -march=x86-64-v4 -mavx512vnni`: the variant's VPDPWSSD path; else "—").
A small C driver times `_run` itself
(clock_gettime), so no Python call is inside rnnq's time; onnxruntime and LiteRT are timed
around their Python calls (which is how they are called). Each engine runs in turns of blocks,
ROUNDS rounds, every engine once per round; a figure is the median over rounds of the mean time
per sequence within the block. Every C build's outputs are checked against rnnq's integer
simulator (exactly) before it is timed.

Rewrites the generated section of bench/README.md unless --no-readme. Times depend on the
machine: the ratios are what the issue's goals are stated in.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import measure
import numpy as np
import onnxruntime as ort
import report
from models import BenchModel, all_models, build_onnx

from rnnq import api
from rnnq.api import open_graphs
from rnnq.backends.tflite import runtime as litert
from rnnq.sim.integer import quantize_input, run_integer
from rnnq.targets import host_cpu_lacks, load_target

HERE = Path(__file__).resolve().parent
RUNTIME = HERE.parent / "templates" / "c" / "runtime"
BEGIN = "<!-- host:begin -->"
END = "<!-- host:end -->"
T = measure.T
ROUNDS = 15
BLOCK_S = 0.02  # seconds of work per engine and round
EXTRA = (BenchModel("lstm", 13, 45), BenchModel("gru", 13, 45))
#: the C builds: label -> (target of the build, gcc flags): three targets with their own flags,
#: and the x86-64 build as a release build for this CPU
C_BUILDS = {"generic-c99": ("generic-c99", load_target("generic-c99")["toolchain"]["cflags"]),
            "x86-64": ("x86-64", load_target("x86-64")["toolchain"]["cflags"]),
            "x86-64 native": ("x86-64", ["-std=c99", "-O3", "-march=native"]),
            "x86-64-vnni": ("x86-64-vnni", load_target("x86-64-vnni")["toolchain"]["cflags"])}
#: the targets built for (generic-c99's build is measure.compile_variant's), when this CPU runs
#: them (x86-64-vnni needs AVX-512 VNNI)
X86_TARGETS = [t for t in ("x86-64", "x86-64-vnni") if not host_cpu_lacks(load_target(t))]
ENGINES = ["rnnq C generic-c99", "rnnq C x86-64", "rnnq C x86-64 native", "rnnq C x86-64-vnni",
           "onnxruntime float", "LiteRT builtin", "LiteRT auto"]
#: the builds the goals are stated for
GOAL_BUILDS = ("x86-64", "x86-64-vnni")

DRIVER = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "model.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
                          return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec; }
int main(int argc, char **argv) {
    static int32_t arena[(%(P)s_ARENA_BYTES + 3) / 4];
    static %(p)s_input_t x[%(T)d * %(P)s_INPUT_SIZE];
    static %(p)s_output_t y[%(P)s_OUTPUT_SIZE * %(T)d + 64];
    %(p)s_state st;
    int reps = argc > 2 ? atoi(argv[2]) : 1, k;
    FILE *f = fopen(argv[1], "rb");
    double t0;
    if (f == NULL || fread(x, sizeof x, 1, f) != 1) return 2;
    fclose(f);
    %(p)s_reset(&st); %(p)s_run(&st, x, %(T)d, y, arena); /* warm-up */
    t0 = now();
    for (k = 0; k < reps; ++k) { %(p)s_reset(&st); %(p)s_run(&st, x, %(T)d, y, arena); }
    printf("%%.9f\n", (now() - t0) / reps);
    for (k = 0; k < %(P)s_OUTPUT_SIZE; ++k) printf("%%d ", y[k]);
    printf("\n");
    return 0;
}
"""


@dataclass
class Row:
    model: BenchModel
    us: dict[str, float] = field(default_factory=dict)  # engine -> median µs per sequence
    arm64: dict[str, int] | None = None  # matvec variant -> instructions per sequence


@dataclass
class Engine:
    """One thing to time: run(reps) -> seconds per sequence."""

    name: str
    run: object
    reps: int = 1
    times: list[float] = field(default_factory=list)


def _printed(line: str) -> np.ndarray:
    """The driver's printed output values (int8 or int16: the build's <prefix>_output_t)."""
    return np.array([int(v) for v in line.split()], np.int64)


def c_engine(build: Path, flags: list[str], xq: np.ndarray, expected: np.ndarray,
             label: str) -> Engine:
    """The build's C (model.c, weights.c, rnnq_*.c) + DRIVER, compiled with gcc flags, checked
    against the simulator's final output."""
    exe = build / f"host_bench_{label.strip('-')}"
    (build / "host_bench.c").write_text(DRIVER % {"T": T, "p": measure.PREFIX,
                                                  "P": measure.PREFIX.upper()})
    srcs = [str(p) for p in sorted(build.glob("*.c")) if p.name not in ("harness.c",)]
    subprocess.run(["gcc", *flags, "-I", str(build), *srcs, "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    xfile = build / "host_bench_x.bin"
    xfile.write_bytes(np.ascontiguousarray(xq).tobytes())

    def run(reps: int) -> float:
        out = subprocess.run([str(exe), str(xfile), str(reps)], check=True,
                             capture_output=True, text=True).stdout.split("\n")
        got = _printed(out[1])
        if not np.array_equal(got, expected):
            raise SystemExit(f"{build.parent.name} ({label}): C output {got.tolist()} differs "
                             f"from the integer simulator's {expected.tolist()}")
        return float(out[0])

    return Engine(f"rnnq C {label}", run)


def ort_engine(m: BenchModel, x: np.ndarray) -> Engine:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(build_onnx(m).SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x.reshape(T, 1, m.inp)}

    def run(reps: int) -> float:
        t0 = time.perf_counter()
        for _ in range(reps):
            sess.run(None, feed)
        return (time.perf_counter() - t0) / reps

    return Engine("onnxruntime float", run)


def litert_engine(blob: bytes, resolver: str) -> Engine:
    it = litert.interpreter(blob, resolver)
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.random.default_rng(1).integers(-100, 100, d["shape"])
                  .astype(d["dtype"]))

    def run(reps: int) -> float:
        total = 0.0
        for _ in range(reps):
            it.reset_all_variables()
            t0 = time.perf_counter()
            it.invoke()
            total += time.perf_counter() - t0
        return total / reps

    return Engine(f"LiteRT {resolver}", run)


def arm64_counts(build: Path, xq: np.ndarray, expected: np.ndarray) -> dict[str, int] | None:
    """Instructions per sequence on qemu-aarch64 (-cpu cortex-a76, one instruction per
    translation block, every executed one traced): the arm64 target's build (NEON matvec,
    its flags) and the portable kernels with the same flags; a run of zero sequences is
    subtracted (start-up, reading the input). None without the cross tools."""
    cc, qemu = "aarch64-linux-gnu-gcc", "qemu-aarch64"
    if shutil.which(cc) is None or shutil.which(qemu) is None:
        return None
    flags = load_target("arm64")["toolchain"]["cflags"]
    xfile = build / "host_bench_x.bin"
    counts = {}
    for variant in ("neon", "ref"):
        src = build / f"host_bench_matvec_{variant}.c"
        src.write_text((RUNTIME / f"rnnq_matvec_{variant}.c").read_text())
        exe = build / f"host_bench_arm64_{variant}"
        srcs = [str(build / n) for n in ("host_bench.c", "model.c", "weights.c",
                                          "rnnq_kernels.c")]
        subprocess.run([cc, *flags, "-static", "-I", str(build), *srcs, str(src), "-o",
                        str(exe)], check=True, capture_output=True, text=True)
        n = []
        out = build / "host_bench_arm64_out.txt"
        for reps in (0, 1):
            # the trace (millions of lines) goes to fd 3 and is counted by grep as it comes
            cmd = (f"{qemu} -cpu cortex-a76 -singlestep -d exec,nochain -D /dev/fd/3 {exe} "
                   f"{xfile} {reps} 3>&1 1>{out} | grep -c '^Trace'")
            proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True,
                                  text=True, check=True)
            n.append(int(proc.stdout))
            got = _printed(out.read_text().split("\n")[1])
            if not np.array_equal(got, expected):
                raise SystemExit(f"{build.parent.name} (arm64 {variant}): output differs from "
                                 "the integer simulator's")
        counts[variant] = n[1] - n[0]
    return counts


def tflite_of(m: BenchModel, work: Path) -> bytes:
    folder = work / m.name
    out = folder / "build_tflite"
    api.compile_model(folder / "model.onnx", folder / "calib.npz", out, fmt="tflite",
                      seq_len=T, precision="int8")
    return (out / "model.tflite").read_bytes()


def measure_model(m: BenchModel, work: Path, rounds: int) -> Row:
    build = measure.compile_variant(m, work, "ref")  # generic-c99 (writes model.onnx, calib)
    ig = open_graphs(build)[2]
    x = measure.bench_input(m)  # [1, T, I]
    xq = quantize_input(ig, x)
    expected = run_integer(ig, xq)[ig.outputs[0]].reshape(-1)[-ig_out_size(ig):]
    builds = {"generic-c99": build}
    for t in X86_TARGETS:  # the x86 targets: their matvec variant and layout
        builds[t] = build.parent / f"build_{t}"
        api.compile_model(build.parent / "model.onnx", build.parent / "calib.npz", builds[t], t,
                          measure.PREFIX, output_bits=8)  # as measure.compile_variant's build
    engines = [c_engine(builds[t], f, xq, expected, k) for k, (t, f) in C_BUILDS.items()
               if t in builds]
    engines.append(ort_engine(m, x))
    blob = tflite_of(m, work)
    engines += [litert_engine(blob, r) for r in ("builtin", "auto")]
    for e in engines:  # block size: BLOCK_S of work
        one = e.run(1)
        e.reps = max(1, int(BLOCK_S / max(one, 1e-7)))
    for _ in range(rounds):
        for e in engines:
            e.times.append(e.run(e.reps))
    return Row(m, {e.name: statistics.median(e.times) * 1e6 for e in engines},
               arm64_counts(build, xq, expected))


def ig_out_size(ig) -> int:
    return int(np.prod(ig.tensors[ig.outputs[0]].shape[1:]))


def _n(v: float | None) -> str:
    return "—" if v is None else f"{v:,.1f}"


def section(rows: list[Row], rounds: int) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        name = next(line.split(":", 1)[1].strip() for line in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        name = cpu
    gcc = subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True,
                         check=False).stdout
    head = (f"Measured on {name} ({os.cpu_count()} CPUs), one thread, gcc {gcc.strip()}, "
            f"onnxruntime {version('onnxruntime')}, {litert.version()}; T = {T}, median of "
            f"{rounds} rounds. µs per sequence:")
    goal = [t for t in GOAL_BUILDS if any(f"rnnq C {t}" in r.us for r in rows)]
    lines = [BEGIN, "", head, "",
             "| model | I×H | " + " | ".join(ENGINES) + " | "
             + " | ".join(f"{t} / onnxruntime | LiteRT builtin / {t}" for t in goal) + " |",
             "|---|---|" + "--:|" * (len(ENGINES) + 2 * len(goal))]
    for r in rows:
        ratios = [f"{r.us[f'rnnq C {t}'] / r.us['onnxruntime float']:.2f}× | "
                  f"{r.us['LiteRT builtin'] / r.us[f'rnnq C {t}']:.1f}×" for t in goal]
        lines.append(f"| {r.model.kind.upper()} | {r.model.inp}×{r.model.hidden} | "
                     + " | ".join(_n(r.us.get(e)) for e in ENGINES)
                     + " | " + " | ".join(ratios) + " |")
    for t in goal:
        c = f"rnnq C {t}"
        met = [r for r in rows if r.us[c] <= r.us["onnxruntime float"]]
        ten = [r for r in rows if r.us["LiteRT builtin"] >= 10 * r.us[c]]
        lines += ["", (f"Goals (issue 12), the {t} target: ≤ onnxruntime float: {len(met)} "
                       f"of {len(rows)} models; ≥ 10× faster than LiteRT int8 (builtin): "
                       f"{len(ten)} of {len(rows)}.")]
    counted = [r for r in rows if r.arm64]
    if counted:
        lines += ["", ("arm64 (`--target arm64`: NEON matvec with SDOT, "
                  f"`{' '.join(load_target('arm64')['toolchain']['cflags'][:3])}`), "
                  "instructions per sequence executed on qemu-aarch64 (cortex-a76), against "
                  "the portable kernels built with the same flags:"), "",
                  "| model | I×H | arm64 (neon) | portable | neon / portable | per recurrent MAC (neon) |",
                  "|---|---|--:|--:|--:|--:|"]
        for r in counted:
            macs = T * r.model.recurrent_macs
            a = r.arm64
            lines.append(f"| {r.model.kind.upper()} | {r.model.inp}×{r.model.hidden} | "
                         f"{a['neon']:,} | {a['ref']:,} | {a['neon'] / a['ref']:.2f}× | "
                         f"{a['neon'] / macs:.2f} |")
    lines += ["", END]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, help="keep models and builds here")
    ap.add_argument("--no-readme", action="store_true", help="print the table only")
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    ap.add_argument("--models", help="comma-separated names, e.g. lstm_64x128")
    args = ap.parse_args()
    models = [*all_models(), *EXTRA]
    if args.models:
        models = [m for m in models if m.name in args.models.split(",")]
    with tempfile.TemporaryDirectory(prefix="rnnq-host-") as td:
        work = args.work or Path(td)
        rows = []
        for m in models:
            print(f"{m.name} ...", file=sys.stderr, flush=True)
            rows.append(measure_model(m, work, args.rounds))
    text = section(rows, args.rounds)
    report.publish(text, not args.no_readme, BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How long rnnq itself takes: `rnnq compile` and `rnnq validate` of a 100k-parameter LSTM.

    python bench/tooling.py [--no-readme] [--reps N]        # or: make bench-tooling

The model is the Cortex-M benchmark's LSTM at (input, hidden) = (40, 128) with its Linear head
(bench/models.py: 88,330 parameters, 100 KB of int8 weights); the data 1,000 sequences of 50
steps, standard normal, seeded. Both commands run as a user runs them (the console script, a
new process each time, generic-c99), REPS times each; the figure is the median wall time.
validate's runtime objects are cached across runs (~/.cache/rnnq, as for a user's second
validate); the first run of the batch warms that cache and is not counted. Issue 12's goals:
compile <= 5 s and validate <= 5 s.

It also times rnnq's integer simulator (rnnq.sim.integer.run_integer, in this process, on the
quantised data, batched: all 1,000 sequences at once, BLAS on one thread as rnnq's commands
run it: api.one_blas_thread) for the bench's LSTM and for smaller and
GRU layers: timesteps per second = 1,000 * 50 / median seconds. Issue 12's goal: >= 10^6.
Rewrites the generated section of bench/README.md unless
--no-readme.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import report
from models import BenchModel, build_onnx

BEGIN = "<!-- tooling:begin -->"
END = "<!-- tooling:end -->"
MODEL = BenchModel("lstm", 40, 128)
SIM_MODELS = (BenchModel("lstm", 8, 16), MODEL, BenchModel("lstm", 64, 128),
              BenchModel("gru", 64, 128))
N, T = 1000, 50
REPS = 3
RNNQ = Path(sys.executable).with_name("rnnq")


def _timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(RNNQ), *args], check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def _sim_rate(model: BenchModel, work: Path, reps: int) -> float:
    """Simulator timesteps per second (median of reps) on N x T standard-normal data."""
    from rnnq import api
    from rnnq.sim.integer import quantize_input, run_integer

    onnx.save(build_onnx(model), str(work / "s.onnx"))
    x = np.random.default_rng(model.seed).standard_normal((N, T, model.inp)).astype(np.float32)
    np.savez(work / "s.npz", x=x)
    api.compile_model(work / "s.onnx", work / "s.npz", work / "s")
    _, _, ig = api.open_graphs(work / "s")
    xq = quantize_input(ig, x)
    run = api.one_blas_thread(run_integer)  # as rnnq's commands run it
    run(ig, xq[:2])  # warm the per-weight caches
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run(ig, xq)
        times.append(time.perf_counter() - t0)
    return N * T / statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-readme", action="store_true", help="print the table only")
    ap.add_argument("--reps", type=int, default=REPS)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rnnq-tooling-") as td:
        work = Path(td)
        onnx.save(build_onnx(MODEL), str(work / "m.onnx"))
        x = np.random.default_rng(MODEL.seed).standard_normal((N, T, MODEL.inp))
        np.savez(work / "d.npz", x=x.astype(np.float32))
        params = sum(int(np.prod(t.dims)) for t in build_onnx(MODEL).graph.initializer
                     if t.data_type == onnx.TensorProto.FLOAT)
        compile_args = ["compile", str(work / "m.onnx"), "--calib", str(work / "d.npz"),
                        "-o", str(work / "b")]
        validate_args = ["validate", str(work / "b"), "--data", str(work / "d.npz")]
        _timed(compile_args)
        _timed(validate_args)  # warms the runtime object cache
        compile_s = statistics.median(_timed(compile_args) for _ in range(args.reps))
        validate_s = statistics.median(_timed(validate_args) for _ in range(args.reps))
        rates = [(m, _sim_rate(m, work, max(args.reps, 5))) for m in SIM_MODELS]
    cpus = os.cpu_count()
    text = "\n".join([
        BEGIN, "",
        (f"LSTM {MODEL.inp}×{MODEL.hidden} + Linear head ({params:,} parameters), {N:,} "
        f"sequences × {T} steps, generic-c99, {cpus} CPUs, median of {args.reps} runs:"), "",
        "| command | seconds | goal (issue 12) |", "|---|--:|--:|",
        f"| `rnnq compile` (calibration on all {N:,} sequences) | {compile_s:.1f} | ≤ 5 |",
        f"| `rnnq validate` (float, simulator, compiled C) | {validate_s:.1f} | ≤ 5 |",
        "", (f"Integer simulator, batched ({N:,} sequences × {T} steps at once, in process, "
             f"median of {max(args.reps, 5)}):"), "",
        "| layer | timesteps/s | goal (issue 12) |", "|---|--:|--:|",
        *(f"| {m.kind.upper()} {m.inp}×{m.hidden} + head | {r:,.0f} | ≥ 1,000,000 |"
          for m, r in rates),
        "", END])
    report.publish(text, not args.no_readme, BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())

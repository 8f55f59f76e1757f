"""Differential fuzzing: random recurrent models x extreme inputs (tests/fuzz/).

    python tools/fuzz.py --n 200 --jobs 4          # seeds 0..199, every check
    python tools/fuzz.py --start 1000 --n 50 --case float
    python tools/fuzz.py --seed 123 --case c       # rerun one seed (what a failure prints)

Per model: rnnq's float reference vs onnxruntime, the host C (ASan/UBSan) vs the integer
simulator, the .tflite in LiteRT vs the simulator's LiteRT profile (tests/fuzz/checks.py). One
line per model; a failure prints its reproduction command. Exit status 1 when any check failed
(under CI=true a missing tool is a failure).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz.checks import CHECKS, repro, run_checks
from tests.fuzz.models import describe, spec_for


def one(seed: int, checks: tuple[str, ...]) -> dict:
    """Run one seed in its own temporary folder; a JSON-able record."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"rnnq-fuzz-{seed}-") as td:
        outs = run_checks(seed, Path(td), checks)
    return {"seed": seed, "model": describe(spec_for(seed)), "seconds": time.monotonic() - t0,
            "checks": {o.check: dataclasses.asdict(o) for o in outs}}


def line(rec: dict) -> str:
    parts = []
    for check, o in rec["checks"].items():
        v = ""
        if check == "float" and o["status"] in ("ok", "fail"):
            v = f" {o['value']:.2g}" + (f" (x{o['ratio']:.3g} A)" if o["ratio"] else "")
        parts.append(f"{check}={o['status']}{v}")
    out = [f"{' '.join(parts)} ({rec['seconds']:.1f} s) {rec['model']}"]
    for check, o in rec["checks"].items():
        if o["status"] == "fail":
            out.append(f"  FAIL {check}: {o['detail']}\n  reproduce: {repro(rec['seed'], check)}")
        elif o["detail"]:
            out.append(f"  {o['status']} {check}: {o['detail'][:160]}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, help="run this one seed")
    ap.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    ap.add_argument("--n", type=int, default=20, help="number of seeds (default 20)")
    ap.add_argument("--case", default=",".join(CHECKS),
                    help=f"checks, comma-separated (default {','.join(CHECKS)})")
    ap.add_argument("--jobs", type=int, default=1, help="parallel processes")
    ap.add_argument("--json", type=Path, help="append one JSON record per model to this file")
    a = ap.parse_args(argv)
    checks = tuple(c for c in a.case.split(",") if c)
    if not checks or any(c not in CHECKS for c in checks):
        ap.error(f"--case: some of {', '.join(CHECKS)}")
    seeds = [a.seed] if a.seed is not None else list(range(a.start, a.start + a.n))
    failed, counts = 0, {}
    with ProcessPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        futures = [pool.submit(one, sd, checks) for sd in seeds]
        for fut in futures:
            rec = fut.result()
            print(line(rec), flush=True)
            if a.json:
                with a.json.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
            for check, o in rec["checks"].items():
                counts[(check, o["status"])] = counts.get((check, o["status"]), 0) + 1
            failed += any(o["status"] == "fail" for o in rec["checks"].values())
    summary = ", ".join(f"{c} {st}: {k}" for (c, st), k in sorted(counts.items()))
    print(f"{len(seeds)} models, {failed} with a failing check ({summary})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

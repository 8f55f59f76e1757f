"""The README's "Reliability" figures, measured and written in place.

    python tools/reliability.py [--fuzz-n 200] [--jobs 2] [--readme README.md]

runs the differential fuzzer (tools/fuzz.py: float reference vs onnxruntime, C under
ASan/UBSan vs the integer simulator, LiteRT vs the simulator's profile) on seeds 0..N-1 and the
hostile-input corpus (tests/hostile: every case through the command line, traced), then replaces
the text between the README's reliability markers with what they measured. `make reliability`
runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- reliability: begin (tools/reliability.py writes this part) -->"
END = "<!-- reliability: end -->"


def fuzz(n: int, jobs: int, work: Path) -> list[dict]:
    out = work / "fuzz.jsonl"
    subprocess.run([sys.executable, str(ROOT / "tools" / "fuzz.py"), "--n", str(n), "--jobs",
                    str(jobs), "--json", str(out)], cwd=ROOT, check=False)
    return [json.loads(ln) for ln in out.read_text().splitlines()] if out.exists() else []


def hostile(jobs: int, work: Path) -> dict:
    from tests.hostile.corpus import build
    from tests.hostile.run import run_corpus

    root = work / "hostile"
    cases = {c.name: c for c in build(root)}
    res = run_corpus(root, jobs=jobs)
    problems = [p for r in res for p in r.problems]
    return {"cases": len(res), "behave": sum(not r.problems for r in res),
            "refused": sum(cases[r.name].expect == "error" and not r.problems for r in res),
            "accepted": sum(cases[r.name].expect != "error" and not r.problems for r in res),
            "tracebacks": sum("traceback" in p for p in problems),
            "hangs": sum("hung" in p for p in problems),
            "outside": sum("outside" in p for p in problems),
            "failures": {r.name: r.problems for r in res if r.problems}}


def section(recs: list[dict], h: dict, n: int) -> str:
    st = Counter((c, o["status"]) for r in recs for c, o in r["checks"].items())
    checks = sorted({c for c, _ in st})
    names = {"float": "float reference vs onnxruntime (within 1e-5 plus what float32 amplifies)",
             "c": "generated C (host, ASan + UBSan) vs the integer simulator, bit for bit",
             "tflite": ".tflite in LiteRT vs the simulator's LiteRT profile, bit for bit"}
    lines = [BEGIN, "",
             (f"Measured by `make reliability` (fuzz seeds 0..{n - 1}; rerun with other seeds: "
             "`python tools/fuzz.py --start S --n N`)."), "",
             (f"**Differential fuzzing** — {len(recs)} random recurrent models (LSTM, GRU with "
             "either linear_before_reset, vanilla RNN tanh/relu; forward, reverse, "
             "bidirectional; 1–3 layers; clip, peepholes, sequence_lens, initial states as "
             "constants and inputs; weights 1e-3 to ±4) on extreme inputs (×10 beyond "
             "calibration, constants, alternating extremes):"), ""]
    for c in checks:
        parts = [f"{st[(c, s)]} {s}" for s in ("ok", "fail", "unsupported", "skip")
                 if st[(c, s)]]
        lines.append(f"- {names.get(c, c)}: {', '.join(parts)}")
    lines += ["", (f"**Hostile inputs** — {h['cases']} cases (`python -m tests.hostile.run "
              "DEST -v`: files that are not models, absurd shapes, cycles, Loop/If, external "
              "data outside the model's folder, NaN/Inf/huge/typed weights, names and prefixes "
              "that try to become C, bad data files, pickles, zip bombs, output paths, option "
              "values, tampered build folders), each in its own process under a 6 GiB memory "
              "limit and a timeout with every file it opens traced:"), "",
              (f"- {h['behave']} behave: {h['refused']} refused with one line (exit 2), "
              f"{h['accepted']} valid and accepted"),
              (f"- {h['tracebacks']} tracebacks, {h['hangs']} hangs, {h['outside']} reads or "
              "writes outside the model's folder, the data and `-o`")]
    for name, probs in sorted(h["failures"].items()):
        lines.append(f"- does not behave: `{name}`: {'; '.join(probs)}")
    wrapped = [textwrap.fill(ln, 96, subsequent_indent="  " if ln.startswith("- ") else "")
               if not ln.startswith("<!--") else ln for ln in lines]
    return "\n".join([*wrapped, "", END])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fuzz-n", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="rnnq-reliability-") as td:
        recs = fuzz(a.fuzz_n, a.jobs, Path(td))
        h = hostile(a.jobs, Path(td))
    text = a.readme.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"{a.readme}: no reliability markers")
    head, rest = text.split(BEGIN, 1)
    a.readme.write_text(head + section(recs, h, a.fuzz_n) + rest.split(END, 1)[1])
    print(f"{a.readme}: reliability figures written ({len(recs)} fuzz models, {h['cases']} "
          "hostile cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

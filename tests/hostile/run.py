"""Run the hostile-input corpus (tests/hostile/corpus.py) through the rnnq command line, each
case in a fresh interpreter under a memory limit and a timeout, with every file it opens and
writes traced (tests/hostile/traced.py), and check what it did.

    python -m tests.hostile.run DEST [--only NAME ...] [--json figures.json]

builds the corpus in DEST (if DEST/cases.json is not there yet), runs it and prints one line per
case that misbehaved and a summary; exit status 1 if any did.

A case behaves when: the exit status is the expected one (2 for refusals) with, for a refusal,
exactly one line on stderr, "rnnq: error: ..." naming the file/node/option; no traceback, no
control character on the terminal; it ends within the timeout and under the memory limit;
nothing under DEST/secret is opened; nothing is written outside the -o folder's parent, the
--json/--report file's folder and the case's temporary folder; no program other than the
target's toolchain and emulator is started; a failed compile leaves no -o folder (and an
existing one, or any folder the case marks, byte for byte as it was); the generated C of a
compiled case defines none of the injected macros.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rnnq.progress import is_stage_line

ROOT = Path(__file__).resolve().parents[2]
#: Per command. The slowest valid cases compile and build C in a few seconds.
TIMEOUT_S = 120
#: Address space per command: rnnq's own limits must refuse absurd sizes well below this.
MEMORY_BYTES = 6 * 2**30
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass
class Outcome:
    name: str
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    codes: list[int] = field(default_factory=list)
    error_line: str = ""


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def _tree(root: Path) -> dict[str, bytes]:
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"")
            for p in sorted(root.rglob("*"))}


def _under(path: str, roots: list[Path]) -> bool:
    p = Path(path)
    return any(p == r or r in p.parents for r in roots)


def _option(argv: list[str], *flags: str) -> str | None:
    for f in flags:
        if f in argv and argv.index(f) + 1 < len(argv):
            return argv[argv.index(f) + 1]
    return None


def _run(argv: list[str], cwd: Path, trace: Path, tmp: Path) -> tuple[int, str, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNNQ_")}
    env.update({"RNNQ_TRACE": str(trace), "TMPDIR": str(tmp), "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": str(ROOT), "COLUMNS": "100", "RNNQ_CACHE": str(_cache(cwd))})
    t0 = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-m", "tests.hostile.traced", *argv], cwd=cwd,
                           env=env, capture_output=True, timeout=TIMEOUT_S,
                           preexec_fn=_limit, check=False)
    except subprocess.TimeoutExpired:
        return -999, "", "", time.monotonic() - t0
    return (p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"),
            time.monotonic() - t0)


def _cache(cdir: Path) -> Path:
    """The case's object cache (validate's compiled runtime, RNNQ_CACHE): the one place
    besides -o and the temporary folder where rnnq may write."""
    return cdir / ".cache"


def _own_temporary(path: str, out: str | None) -> bool:
    """rnnq's temporary folder beside -o (".<name>.*"), made in the nearest existing ancestor
    of -o and removed again."""
    if out is None:
        return False
    p, o = Path(path), Path(out).resolve()
    return any(q.name.startswith(f".{o.name}.") and q.parent in o.parents
               for q in (p, *p.parents))


def _macros(folder: Path, names: list[str]) -> list[str]:
    """The injected macros the folder's C headers and sources define."""
    found = []
    cc = shutil.which("cc") or shutil.which("gcc")
    for src in sorted(folder.glob("*.[ch]")):
        p = subprocess.run([cc, "-E", "-dM", "-I", str(folder), "-x", "c", str(src)],
                           capture_output=True, text=True, check=False)
        found += [m for m in names if re.search(rf"#define {m}\b", p.stdout)]
    return sorted(set(found))


def check_case(root: Path, case: dict) -> Outcome:
    out = Outcome(case["name"])
    cdir = root / "cases" / case["name"]
    tmp = cdir / ".tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    trace = cdir / ".trace.jsonl"
    trace.unlink(missing_ok=True)
    secret = (root / "secret").resolve()
    untouched = Path(case["untouched"]) if case.get("untouched") else None
    before = _tree(untouched) if untouched else None
    secret_before = _tree(secret)
    commands = [case["argv"], *case.get("then", [])]
    expect = [case["expect"]] + ["ok"] * len(case.get("then", []))
    for k, (argv, want) in enumerate(zip(commands, expect, strict=True)):
        o = _option(argv, "-o", "--output")
        dests = [Path(p).resolve().parent for p in (o, _option(argv, "--json"),
                                                    _option(argv, "--report")) if p]
        existed = o is not None and Path(o).exists()
        code, so, se, dt = _run(argv, cdir, trace, tmp)
        out.seconds += dt
        out.codes.append(code)
        where = f"[{k}] " if k else ""
        if code == -999:
            out.problems.append(f"{where}hung (no exit within {TIMEOUT_S} s)")
            break
        if "Traceback" in so + se:
            out.problems.append(f"{where}traceback")
        if _CONTROL.search(se.replace("\n", "")):
            out.problems.append(f"{where}control characters on stderr")
        # progress stages ("rnnq: <stage> ...", rnnq/progress.py) may precede the error line
        lines = [ln for ln in se.splitlines() if ln.strip() and not is_stage_line(ln)]
        wanted = {"error": 2, "ok": 0, "mismatch": 1}[want]
        if code != wanted:
            last = lines[-1] if lines else ""
            out.problems.append(f"{where}exit {code}, expected {wanted}: {last[:300]}")
        elif want == "error":
            out.error_line = lines[-1] if lines else ""
            if len(lines) != 1 or not lines[0].startswith("rnnq: error: "):
                out.problems.append(f"{where}not one 'rnnq: error:' line: {lines[:3]}")
            elif case["names"] and case["names"] not in lines[0]:
                out.problems.append(f"{where}error line does not name {case['names']!r}: "
                                    f"{lines[0][:300]}")
            if o and not existed and Path(o).exists():
                out.problems.append(f"{where}failed compile left {o} behind")
        allowed = [tmp.resolve(), Path("/dev/null"), trace.resolve(), _cache(cdir).resolve(),
                   *dests]
        for ln in trace.read_text().splitlines() if trace.exists() else []:
            rec = json.loads(ln)
            if rec["event"] == "subprocess.Popen":
                continue
            for p, write in rec["paths"]:
                if _under(p, [secret]):
                    out.problems.append(f"{where}{rec['event']} of {p} (outside the model "
                                        "folder and the build)")
                elif write and not _under(p, allowed) and not _own_temporary(p, o):
                    out.problems.append(f"{where}{rec['event']} writes {p} (outside -o)")
        trace.unlink(missing_ok=True)
        if code != 0:
            break
    if case.get("no_macros") and out.codes and out.codes[0] == 0:
        o = Path(_option(case["argv"], "-o"))
        if bad := _macros(o, case["no_macros"]):
            out.problems.append(f"generated C defines {bad}")
    if untouched is not None and _tree(untouched) != before:
        out.problems.append(f"{untouched} changed")
    if _tree(secret) != secret_before:
        out.problems.append(f"{secret} changed")
    # onnxruntime writes a session id to $TMPDIR/.ses: not rnnq's to remove
    leftovers = [p.name for p in tmp.iterdir() if p.name != ".ses"]
    if leftovers:
        out.problems.append(f"temporary files left: {leftovers[:5]}")
    out.problems = list(dict.fromkeys(out.problems))[:6]
    return out



def run_corpus(root: Path, only: list[str] | None = None, jobs: int = 8) -> list[Outcome]:
    cases = json.loads((root / "cases.json").read_text())["cases"]
    if only:
        cases = [c for c in cases if c["name"] in only]
    with ThreadPoolExecutor(jobs) as ex:
        return list(ex.map(lambda c: check_case(root, c), cases))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", type=Path)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("-v", "--verbose", action="store_true", help="every case's outcome")
    ap.add_argument("-j", "--jobs", type=int, default=min(8, os.cpu_count() or 1))
    a = ap.parse_args()
    if not (a.dest / "cases.json").exists():
        from tests.hostile.corpus import build

        build(a.dest)
    res = run_corpus(a.dest.resolve(), a.only, a.jobs)
    bad = [r for r in res if r.problems]
    for r in bad:
        print(f"{r.name}: {'; '.join(r.problems)}")
    if a.verbose:
        for r in res:
            print(f"  {r.name:40s} {r.codes} {r.seconds:5.1f} s  {r.error_line[:150]}")
    n_err = sum(1 for r in res if r.codes and r.codes[0] == 2)
    print(f"{len(res)} hostile cases: {len(res) - len(bad)} behave, {len(bad)} do not "
          f"({n_err} refused with one line, {len(res) - n_err} accepted as valid); "
          f"slowest {max(r.seconds for r in res):.1f} s")
    if a.json:
        a.json.write_text(json.dumps({"cases": len(res), "behave": len(res) - len(bad),
                                      "refused": n_err,
                                      "failures": {r.name: r.problems for r in bad}}, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

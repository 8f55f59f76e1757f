"""Cross-check of the unicorn counter against QEMU's own execution trace.

QEMU runs the same ELF's `main` on mps2-an386 with one instruction per translation block
(`-singlestep`) and every block execution logged (`-d exec,nochain`): one trace line per
executed instruction, with its function's name. A call's count is the number of lines from
the callee's entry to the first line back in `main`.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from rnnq.targets import load_target

_LINE = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/[0-9a-f]+/[0-9a-f]+\] (\S*)")


def trace_calls(elf: Path, work: Path, callees: tuple[str, ...],
                target: str = "cortex-m4") -> tuple[dict, str]:
    """Instructions of every call from main to each callee, in order; and what main printed
    (semihosting output, which QEMU writes to its stderr). The ELF runs on `target`'s board."""
    cmd = [a.replace("{firmware}", str(elf)) for a in load_target(target)["run"]["command"]]
    log = work / "qemu_exec.log"
    r = subprocess.run([*cmd, "-singlestep", "-d", "exec,nochain", "-D", str(log)],
                       capture_output=True, text=True, timeout=300, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"QEMU run of {elf} failed ({r.returncode}): {r.stderr[-500:]}")
    counts: dict[str, list[int]] = {c: [] for c in callees}
    current, n = None, 0
    with log.open() as f:
        for line in f:
            m = _LINE.match(line)
            if m is None:
                continue
            func = m.group(2)
            if current is None:
                if func in counts:
                    current, n = func, 1
            elif func == "main":
                counts[current].append(n)
                current = None
            else:
                n += 1
    log.unlink()
    return counts, r.stdout + r.stderr

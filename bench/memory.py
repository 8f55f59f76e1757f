"""RAM of rnnq's Cortex-M4 build against TensorFlow Lite Micro's arena, for the same LSTM.

    python bench/memory.py [--no-readme]        # or: make bench-memory

For each benchmark LSTM (bench/models.py: 8×16, 40×64, 64×128, + Linear head), the same ONNX
file and calibration data are compiled twice by rnnq, both with `--precision int8` (TFLM runs
only int8 files, and what `auto` widens on the bench's random calibration data, a 16-bit state
or 16-bit recurrent weights, would make the two different models):

- `--target cortex-m4` (C): RAM is the build's `manifest.json` `target_memory.ram_bytes`, the
  library linked by arm-none-eabi-gcc: arena + state + static data + the stack bound of the
  call graph (`-fstack-usage`), for one stream;
- `--format tflite`: rnnq's own `.tflite` (the unrolled LSTM of T = 50 steps), run by
  TensorFlow Lite Micro's interpreter (PyPI `tflite-micro`): its arena is the smallest
  `arena_size` for which the interpreter allocates its tensors (found by bisection on whole
  multiples of 16 bytes) and runs one invoke; the input and output tensors live in that arena,
  so they are subtracted (a user's buffers for them are counted on rnnq's side neither).

TFLM runs here on the host (64-bit pointers), so its persistent structures are larger than on
an M4: the comparison is in TFLM's favour only where the arena holds tensors, not metadata.
Issue 12's goal: rnnq RAM <= 0.5 x (TFLM arena - its I/O). Rewrites the generated section of
bench/README.md unless --no-readme.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import report
from models import BenchModel, write

from rnnq import api

BEGIN = "<!-- memory:begin -->"
END = "<!-- memory:end -->"
MODELS = tuple(BenchModel("lstm", i, h) for i, h in ((8, 16), (40, 64), (64, 128)))
GOAL = 0.5
LOOPS = ("unrolled", "while")  # rnnq's two .tflite forms; TFLM is credited with the smaller


_PROBE = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
it = runtime.Interpreter.from_bytes(open(sys.argv[1], "rb").read(), arena_size=int(sys.argv[2]))
d = it.get_input_details(0)
it.set_input(np.zeros(d["shape"], d["dtype"]), 0)
it.invoke()
io = sum(int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize
         for t in (it.get_input_details(0), it.get_output_details(0)))
print(io)
"""


def _runs(tflite: Path, size: int) -> int | None:
    """Bytes of the I/O tensors if TFLM allocates and invokes the model in an arena of `size`
    bytes, else None. In a child process: with some short arenas TFLM aborts the process (a
    failed check in its LSTM kernel) instead of returning an error."""
    r = subprocess.run([sys.executable, "-c", _PROBE, str(tflite), str(size)],
                       capture_output=True, text=True, check=False)
    return int(r.stdout.split()[-1]) if r.returncode == 0 and r.stdout.strip() else None


def _tflm_arena(tflite: Path) -> tuple[int, int]:
    """(smallest arena TFLM runs the model in, to 16 bytes; bytes of its input and output)."""
    lo, hi = 16, 1 << 12
    while _runs(tflite, hi) is None:
        lo, hi = hi, hi * 2
        if hi > 1 << 26:
            raise RuntimeError(f"TFLite Micro does not run {tflite} in 64 MB")
    while hi - lo > 16:  # hi runs, lo does not (or is the floor)
        mid = (lo + hi) // 32 * 16
        if _runs(tflite, mid) is None:
            lo = mid
        else:
            hi = mid
    io = _runs(tflite, hi)
    assert io is not None
    return hi, io


def measure(m: BenchModel, work: Path) -> dict:
    onnx_path, calib = write(m, work)
    c = api.compile_model(onnx_path, calib, work / "c", target="cortex-m4", precision="int8")
    tflm = {}
    for loop in LOOPS:
        api.compile_model(onnx_path, calib, work / loop, fmt="tflite", tflite_loop=loop,
                          precision="int8")
        (tfl,) = (work / loop).glob("*.tflite")
        tflm[loop] = _tflm_arena(tfl)
    loop = min(tflm, key=lambda k: tflm[k][0] - tflm[k][1])
    arena, io = tflm[loop]
    mem = c["target_memory"]
    return {"model": m, "rnnq": int(mem["ram_bytes"]), "arena": c["memory"]["arena_bytes"],
            "state": c["memory"]["state_bytes"], "stack": int(mem["stack_bytes"]),
            "tflm_arena": arena, "tflm_io": io, "loop": loop,
            "tflm": {k: v[0] - v[1] for k, v in tflm.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-readme", action="store_true", help="print the table only")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rnnq-memory-") as td:
        for m in MODELS:
            folder = Path(td) / m.name
            folder.mkdir()
            rows.append(measure(m, folder))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "model"}),
                  file=sys.stderr)
    lines = [BEGIN, "",
             (f"tflite-micro {version('tflite-micro')}, arm-none-eabi-gcc builds for "
              "cortex-m4; bytes:"), "",
             ("| LSTM I×H | rnnq RAM (arena + state + stack) | TFLM arena | its I/O tensors | "
              "TFLM arena − I/O | rnnq / (TFLM − I/O) | goal |"),
             "|---|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        m, rest = r["model"], r["tflm_arena"] - r["tflm_io"]
        lines.append(f"| {m.inp}×{m.hidden} | {r['rnnq']:,} ({r['arena']:,} + {r['state']:,} + "
                     f"{r['stack']:,}) | {r['tflm_arena']:,} | {r['tflm_io']:,} | {rest:,} | "
                     f"{r['rnnq'] / rest:.2f}× | ≤ {GOAL}× |")
    lines += ["", END]
    report.publish("\n".join(lines), not args.no_readme, BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Running `rnnq` as a user does, and small inputs to feed it (shared by the CLI tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_FRONTEND = str(Path(__file__).resolve().parents[1] / "frontend")
if _FRONTEND not in sys.path:
    sys.path.insert(0, _FRONTEND)

from onnx_cases import X0, F, H, Net

import rnnq
from rnnq.progress import is_stage_line

#: Where the rnnq under test is imported from; the child process must run the same code.
_RNNQ_ROOT = str(Path(rnnq.__file__).resolve().parents[1])


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        """stderr's lines but the progress stages ("rnnq: <stage> ...", rnnq/progress.py)."""
        return [ln for ln in self.err.splitlines() if ln.strip() and not is_stage_line(ln)]


def run_rnnq(*args: str | Path, cwd: Path | None = None) -> Result:
    """`rnnq ARGS` in a fresh interpreter (python -m rnnq.cli: the console script's entry)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [_RNNQ_ROOT] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))}
    p = subprocess.run([sys.executable, "-m", "rnnq.cli", *map(str, args)], capture_output=True,
                       text=True, env=env, cwd=cwd, timeout=300, check=False)
    return Result(p.returncode, p.stdout, p.stderr)


def classifier(path: Path, seed: int = 0) -> Path:
    """x [T, 1, F] -> LSTM -> h_T -> Gemm -> Softmax: a small, valid, supported model."""
    n = Net(seed=seed)
    h = n.squeeze(n.lstm("x", F, outputs=("", "Y_h"))[1], 0)
    return n.save(path, X0, [n.op("Softmax", n.gemm(h, H), axis=-1)])


def write_npz(path: Path, n: int = 16, t_len: int = 6, feat: int = F, seed: int = 0,
              **extra: np.ndarray) -> Path:
    x = np.random.default_rng(seed).normal(0.0, 1.0, (n, t_len, feat)).astype(np.float32)
    np.savez(path, **{"x": x, **extra})
    return path

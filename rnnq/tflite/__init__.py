"""`--format tflite`: integer-only .tflite files for LiteRT, and the LiteRT profile of the
simulator that predicts them bit for bit (see README, "TFLite for phones")."""

from __future__ import annotations

import importlib.util

from rnnq.ir import RnnqError


def require(*modules: str) -> None:
    """One clear line when the optional rnnq[tflite] dependencies are missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise RnnqError(f"--format tflite needs {', '.join(missing)}: pip install 'rnnq[tflite]'")

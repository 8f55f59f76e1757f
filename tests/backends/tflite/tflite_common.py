"""Shared by the tflite tests: LiteRT presence (skip, or fail under CI=true)."""

from __future__ import annotations

import importlib.util

from tests.cbuild import skip_or_fail


def require_litert() -> None:
    """The tflite tests need the rnnq[tflite] extra (LiteRT, the schema, flatbuffers)."""
    for mod in ("ai_edge_litert", "tflite", "flatbuffers"):
        if importlib.util.find_spec(mod) is None:
            skip_or_fail(f"{mod} not installed (pip install 'rnnq[tflite]')")


def require_tflm() -> None:
    if importlib.util.find_spec("tflite_micro") is None:
        skip_or_fail("tflite-micro not installed (pip install 'rnnq[tflite]')")

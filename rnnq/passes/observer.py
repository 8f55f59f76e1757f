"""The one calibration observer: what a float run showed of each tensor, turned into a range by
the chosen method. Both calibrations use it: of the float IR (passes/calibrate.py, C) and of the
lowered float TGraph (backends/tflite/quantize.py).

Methods:
- ``minmax``: the smallest and largest value seen;
- ``percentile``: the `percentile`-th and (100 - `percentile`)-th percentiles of the values
  seen (a uniform subsample of at most 200,000 values per observation), so that rare outliers
  do not stretch the range.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

METHODS = ("minmax", "percentile")
#: Values kept per observation for the percentile method (a uniform subsample beyond this).
SAMPLE_CAP = 200_000


class Observer:
    def __init__(self, method: str = "minmax", percentile: float = 99.99, seed: int = 0):
        if method not in METHODS:
            raise ValueError(f"unknown calibration method {method!r}")
        self.method, self.pct = method, percentile
        self.rng = np.random.default_rng(seed)
        self.lo: dict[Hashable, np.ndarray] = {}
        self.hi: dict[Hashable, np.ndarray] = {}
        self.samples: dict[Hashable, list[np.ndarray]] = {}

    def add(self, key: Hashable, v: np.ndarray) -> None:
        """v: [M, C] values, tracked per channel C (C = 1: one range for the tensor)."""
        if v.size == 0:
            return
        lo, hi = v.min(axis=0), v.max(axis=0)
        self.lo[key] = np.minimum(self.lo.get(key, lo), lo)
        self.hi[key] = np.maximum(self.hi.get(key, hi), hi)
        if self.method == "percentile":
            if v.shape[0] > SAMPLE_CAP:
                v = v[self.rng.choice(v.shape[0], SAMPLE_CAP, replace=False)]
            self.samples.setdefault(key, []).append(v)

    def __contains__(self, key: Hashable) -> bool:
        return key in self.lo

    def range(self, key: Hashable, per_channel: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi), each [C] per channel or [1] for the whole tensor."""
        if self.method == "percentile":
            v = np.concatenate(self.samples[key])
            if not per_channel:
                v = v.reshape(-1, 1)
            lo = np.percentile(v, 100.0 - self.pct, axis=0)
            hi = np.percentile(v, self.pct, axis=0)
        else:
            lo, hi = self.lo[key], self.hi[key]
            if not per_channel:
                lo, hi = lo.min(keepdims=True), hi.max(keepdims=True)
        return lo, hi

    def meta(self) -> dict:
        """What the method was, for the manifest."""
        return {"method": self.method,
                **({"percentile": self.pct} if self.method == "percentile" else {})}

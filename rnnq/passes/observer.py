"""The one calibration observer: what a float run showed of each tensor, turned into a range by
the chosen method. Both calibrations use it: of the float IR (passes/calibrate.py, C) and of the
lowered float TGraph (backends/tflite/quantize.py).

Methods:
- ``minmax``: the smallest and largest value seen;
- ``percentile``: the `percentile`-th and (100 - `percentile`)-th percentiles of the values
  seen (a uniform subsample of at most 200,000 values per observation), so that rare outliers
  do not stretch the range;
- ``mse``: the range [a·min, a·max] (0 < a <= 1) whose int8 grid (qparams.act_qparams, the
  grid the tensor will get) gives the smallest mean squared quantisation error over the values
  seen — clipping outliers where that costs less than the coarser grid they would force;
- ``kl``: entropy calibration (Migacz 2017, as TensorRT and NNoM do): of |v|'s 2048-bin
  histogram, the threshold T whose 128-level quantised distribution is closest to the clipped
  one in Kullback-Leibler divergence; the range is [max(min, -T), min(max, T)].

The last three keep a subsample of the values (as percentile); all are per channel on request.
``auto`` keeps the subsample too, so that every method's range can be read from one run
(`range(..., method=...)`); rnnq.passes.range_choice chooses among them by measured error.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from rnnq.passes.qparams import act_qparams

METHODS = ("minmax", "percentile", "mse", "kl")
#: What the observer takes: a method, or "auto" (every method's range can be read).
CHOICES = (*METHODS, "auto")
#: Methods that need the values, not only their extremes.
_SAMPLED = frozenset({"percentile", "mse", "kl", "auto"})
#: Values kept per observation for the percentile method (a uniform subsample beyond this).
SAMPLE_CAP = 200_000
#: Values an "auto" observer keeps per tensor in all (it samples every tensor, whatever the
#: calibration set's size): beyond this it keeps each value with half the probability, the
#: values kept so far too, so that what it keeps stays a uniform sample.
AUTO_CAP = 8 * SAMPLE_CAP


class Observer:
    def __init__(self, method: str = "minmax", percentile: float = 99.99, seed: int = 0):
        if method not in CHOICES:
            raise ValueError(f"unknown calibration method {method!r}")
        self.method, self.pct = method, percentile
        self.rng = np.random.default_rng(seed)
        self.lo: dict[Hashable, np.ndarray] = {}
        self.hi: dict[Hashable, np.ndarray] = {}
        self.samples: dict[Hashable, list[np.ndarray]] = {}
        self.rate: dict[Hashable, float] = {}  # auto: the probability a new value is kept

    def add(self, key: Hashable, v: np.ndarray) -> None:
        """v: [M, C] values, tracked per channel C (C = 1: one range for the tensor)."""
        if v.size == 0:
            return
        lo, hi = v.min(axis=0), v.max(axis=0)
        self.lo[key] = np.minimum(self.lo.get(key, lo), lo)
        self.hi[key] = np.maximum(self.hi.get(key, hi), hi)
        if self.method in _SAMPLED:
            if v.shape[0] > SAMPLE_CAP:
                v = v[self.rng.choice(v.shape[0], SAMPLE_CAP, replace=False)]
            kept = self.samples.setdefault(key, [])
            if self.method != "auto":
                kept.append(v)
                return
            rate = self.rate.get(key, 1.0)
            kept.append(v if rate == 1.0 else v[self.rng.random(v.shape[0]) < rate])
            while sum(a.shape[0] for a in kept) > AUTO_CAP:
                rate /= 2
                kept[:] = [a[self.rng.random(a.shape[0]) < 0.5] for a in kept]
            self.rate[key] = rate

    def __contains__(self, key: Hashable) -> bool:
        return key in self.lo

    def range(self, key: Hashable, per_channel: bool = False, method: str | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi), each [C] per channel or [1] for the whole tensor, by the observer's method
        or `method` (any method of an "auto" observer; minmax of any; auto itself: minmax)."""
        method = method or self.method
        if method not in CHOICES or (method not in (self.method, "minmax")
                                     and self.method != "auto"):
            raise ValueError(f"a {self.method} observer has no {method!r} range")
        if method in _SAMPLED and method != "auto":
            v = np.concatenate(self.samples[key])
            if not per_channel:
                v = v.reshape(-1, 1)
            if method == "percentile":
                lo = np.percentile(v, 100.0 - self.pct, axis=0)
                hi = np.percentile(v, self.pct, axis=0)
            else:
                fn = mse_range if method == "mse" else kl_range
                lo, hi = (np.array(c) for c in zip(*(fn(v[:, k]) for k in range(v.shape[1]))))
        else:
            lo, hi = self.lo[key], self.hi[key]
            if not per_channel:
                lo, hi = lo.min(keepdims=True), hi.max(keepdims=True)
        return lo, hi

    def meta(self) -> dict:
        """What the method was, for the manifest."""
        return {"method": self.method,
                **({"percentile": self.pct} if self.method in ("percentile", "auto") else {})}


def _grid_mse(v: np.ndarray, counts: np.ndarray, lo: float, hi: float) -> float:
    """Mean squared error of putting the values v (histogram centres, weighted by counts) on
    the int8 grid of [lo, hi]."""
    scale, zp = act_qparams(lo, hi)
    q = np.clip(np.floor(v / scale + 0.5) + zp, -128, 127)  # rounding ties: immaterial here
    return float(np.sum(counts * (v - (q - zp) * scale) ** 2))


def mse_range(v: np.ndarray, bins: int = 2048, steps: int = 64) -> tuple[float, float]:
    """[a·min, a·max] minimising the int8 quantisation MSE of v over a in (0, 1]."""
    lo, hi = min(float(v.min()), 0.0), max(float(v.max()), 0.0)
    if hi - lo <= 0.0:
        return lo, hi
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    best = min(np.linspace(1.0, 1.0 / steps, steps),
               key=lambda a: _grid_mse(centres, counts, a * lo, a * hi))
    return float(best * lo), float(best * hi)


def kl_range(v: np.ndarray, bins: int = 2048, levels: int = 128) -> tuple[float, float]:
    """The entropy-calibrated threshold T of |v| (TensorRT's algorithm) as a range."""
    lo, hi = float(v.min()), float(v.max())
    amax = max(abs(lo), abs(hi))
    if amax == 0.0:
        return lo, hi
    hist, edges = np.histogram(np.abs(v), bins=bins, range=(0.0, amax))
    hist = hist.astype(np.float64)
    best_i, best_kl = bins, np.inf
    for i in range(levels, bins + 1, 16):
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()  # clipped outliers land in the last bin
        nz = hist[:i] > 0
        # quantise the first i bins into `levels` levels, spread back over their non-empty bins
        idx = (np.arange(i) * levels) // i
        sums = np.bincount(idx, weights=hist[:i], minlength=levels)
        used = np.bincount(idx, weights=nz.astype(np.float64), minlength=levels)
        q = np.where(nz, sums[idx] / np.maximum(used[idx], 1.0), 0.0)
        ps, qs = p.sum(), q.sum()
        if ps == 0 or qs == 0:
            continue
        p, q = p / ps, q / qs
        m = p > 0
        if np.any(q[m] == 0):
            continue
        kl = float(np.sum(p[m] * np.log(p[m] / q[m])))
        if kl < best_kl:
            best_i, best_kl = i, kl
    t = float(edges[best_i])
    return max(lo, -t), min(hi, t)

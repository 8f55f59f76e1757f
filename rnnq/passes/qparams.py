"""Quantisation parameters, computed one way for both backends (offline, float allowed).

- activations: int8 asymmetric, the range widened about zero by the headroom factor (within a
  tensor's natural bounds), then covering 0; scale = (hi - lo) / 255, zero point rounded by
  rnnq.numerics.round_half_away (the one rounding rule);
- int16 activations (a 16-bit model input, a GRU's 16-bit state): symmetric, zero point 0,
  scale = max(|lo|, |hi|) / 32767;
- weights: symmetric, one scale per row (or per tensor), q = round_half_away(w / scale) within
  ±(2^(bits-1) - 1);
- biases: int32 at a given scale, refused when they do not fit.

A backend may store a scale in its own precision (TFLite keeps float32): it then quantises
with the scale it stores.
"""

from __future__ import annotations

import numpy as np

from rnnq import numerics as nx
from rnnq.ir import RnnqError

#: The smallest scale (of a tensor or weight row that is all zeros).
TINY = 2.0**-24


def widen(lo, hi, headroom: float, bounds=(-np.inf, np.inf)):
    """Scale a range about zero by `headroom`, within the tensor's natural bounds."""
    return (np.maximum(np.asarray(lo) * headroom, bounds[0]),
            np.minimum(np.asarray(hi) * headroom, bounds[1]))


def act16_qparams(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """int16 symmetric scale (zero point 0) covering [lo, hi] (vectorised)."""
    amax = np.maximum(np.abs(np.asarray(lo, np.float64)), np.abs(np.asarray(hi, np.float64)))
    scale = np.maximum(amax / nx.INT16_MAX, TINY)
    return scale, np.zeros(np.shape(scale), np.int64)


def act_qparams(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """int8 asymmetric scale and zero point covering [lo, hi] and 0 (vectorised)."""
    lo = np.minimum(np.asarray(lo, np.float64), 0.0)
    hi = np.maximum(np.asarray(hi, np.float64), 0.0)
    scale = np.maximum((hi - lo) / 255.0, TINY)
    zp = np.clip(nx.round_half_away(-128.0 - lo / scale), -128, 127).astype(np.int64)
    return scale, zp


def symmetric_scale(w: np.ndarray, bits: int = 8, per_row: bool = True) -> np.ndarray:
    """Symmetric scale(s) of w: max |w| / (2^(bits-1) - 1) per row of w [R, K] (per_row) or of
    the whole tensor (a 1-element array); TINY where that is 0."""
    w = np.asarray(w, np.float64)
    amax = np.abs(w).max(axis=1) if per_row else np.atleast_1d(np.abs(w).max(initial=0.0))
    s = amax / ((1 << (bits - 1)) - 1)
    return np.where(s > 0, s, TINY)


def quantize_symmetric(w: np.ndarray, scale, bits: int = 8) -> np.ndarray:
    """round_half_away(w / scale) within ±(2^(bits-1) - 1); scale per row ([R, 1]) or one."""
    qmax = (1 << (bits - 1)) - 1
    q = np.clip(nx.round_half_away(np.asarray(w, np.float64) / scale), -qmax, qmax)
    return q.astype(np.int8 if bits == 8 else np.int16)


def bias_int32(b: np.ndarray, scale, where: str) -> np.ndarray:
    """round_half_away(b / scale) as int32; a bias that does not fit is an error naming `where`.
    """
    v = nx.round_half_away(np.asarray(b, np.float64) / scale)
    if np.any(np.abs(v) > nx.INT32_MAX):
        raise RnnqError(f"{where}: bias does not fit int32 at the weight scale "
                        f"(|b / scale| up to {float(np.max(np.abs(v))):.3g})")
    return v.astype(np.int32)

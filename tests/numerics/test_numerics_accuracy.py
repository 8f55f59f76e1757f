"""How far tanh_q15 / sigmoid_q15 are from the real functions (measured, printed, bounded).

Over every int16 input at 12 fractional bits (the LSTM gate format Q3.12), in LSB of Q0.15.
The bound, 1.1 LSB, is table rounding (0.5) + interpolation rounding (0.5) + the curvature
error of linear interpolation at step 1/128 (< 0.1 at these inputs).
"""

from __future__ import annotations

import math

import numpy as np

from rnnq import numerics as nq

FRAC = 12


def _max_err(q: np.ndarray, exact: list[float]) -> tuple[float, int]:
    err = np.abs(q.astype(np.float64) - np.array(exact) * 32768.0)
    k = int(np.argmax(err))
    return float(err[k]), k


def test_tanh_sigmoid_max_error_int16_frac12():
    x = np.arange(nq.INT16_MIN, nq.INT16_MAX + 1, dtype=np.int64)
    v = [int(k) / 2.0**FRAC for k in x]
    t_err, t_at = _max_err(nq.tanh_q15(x, FRAC), [math.tanh(a) for a in v])
    s_err, s_at = _max_err(nq.sigmoid_q15(x, FRAC), [1.0 / (1.0 + math.exp(-a)) for a in v])
    print(
        f"\nmax |error| over int16 inputs at frac {FRAC}: "
        f"tanh_q15 {t_err:.4f} LSB (x={int(x[t_at])}), "
        f"sigmoid_q15 {s_err:.4f} LSB (x={int(x[s_at])})"
    )
    assert t_err <= 1.1
    assert s_err <= 1.1

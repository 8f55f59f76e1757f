"""A `.tflite`'s output error on calibration data, for the choices the compiler measures:
the integer TGraph run by the LiteRT profile against the float TGraph it was quantised from,
on the same inputs (the first calibration windows, up to MEASURE_STEPS steps).

Used by `--precision auto` for LSTMs: LiteRT's fused LSTM (int8 h, small and fast) unless
its output misses `--min-sqnr`, then the same layers unrolled in 16 bits when that measures
better (rnnq.steps_tflite.quantize_tflite).
"""

from __future__ import annotations

import numpy as np

from rnnq.backends.tflite import runtime
from rnnq.backends.tflite.lower import Lowered
from rnnq.ir.tgraph import TGraph
from rnnq.passes.measure import MEASURE_STEPS, worst_sequence_db
from rnnq.report import sqnr_db
from rnnq.sim.litert.interpreter import run


def output_sqnr(low: Lowered, q: TGraph, x: np.ndarray) -> float:
    """Mean SQNR (dB) over the graph's outputs of q (LiteRT profile) against the float
    lowered graph, on the first windows of x [N, T, F] (a whole-sequence graph)."""
    return compare(low, q, x)[0]


def compare(low: Lowered, q: TGraph, x: np.ndarray, steps: int = MEASURE_STEPS
            ) -> tuple[float, float]:
    """(output_sqnr, worst): worst is the lowest SQNR of one window of an output against its
    own power, windows quieter than QUIET_SHARE of the mean aside (as rnnq.passes.measure's
    for C), on the first windows of x up to `steps` steps."""
    n = max(1, steps // max(1, low.t_len))
    xs = np.asarray(x[:n], np.float64)
    ref = run(low.graph, [xs.astype(np.float32)], float_mode=True)
    got = run(q, [runtime.feeds(q, xs)])
    dbs, worst = [], []
    for f, v, i in zip(ref, got, q.outputs, strict=True):
        f = np.asarray(f, np.float64).reshape(len(xs), -1)
        d = runtime.dequantize(q.tensors[i], np.asarray(v)).reshape(len(xs), -1)
        dbs.append(sqnr_db(f.ravel(), d.ravel()))
        worst.append(worst_sequence_db(f, d, np.arange(len(xs)), len(xs)))
    return float(np.mean(dbs)), min(worst)

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
from rnnq.passes.measure import MEASURE_STEPS
from rnnq.report import sqnr_db
from rnnq.sim.litert.interpreter import run


def output_sqnr(low: Lowered, q: TGraph, x: np.ndarray) -> float:
    """Mean SQNR (dB) over the graph's outputs of q (LiteRT profile) against the float
    lowered graph, on the first windows of x [N, T, F] (a whole-sequence graph)."""
    n = max(1, MEASURE_STEPS // max(1, low.t_len))
    xs = np.asarray(x[:n], np.float64)
    ref = run(low.graph, [xs.astype(np.float32)], float_mode=True)
    got = run(q, [runtime.feeds(q, xs)])
    dbs = [sqnr_db(np.asarray(f, np.float64).ravel(),
                   runtime.dequantize(q.tensors[i], np.asarray(v)).ravel())
           for f, v, i in zip(ref, got, q.outputs, strict=True)]
    return float(np.mean(dbs))

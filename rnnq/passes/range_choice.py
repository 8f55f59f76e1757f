"""--calib-method auto: each activation's range chosen among the calibration methods' by the
error it gives the model's outputs, not by a statistic of the tensor alone.

A method that is right for one tensor is wrong for another: clipping a rare outlier of a
layer's output gives the bulk of its values a finer grid, clipping the values that decide a
later gate or class loses what mattered. So the candidates are what every method gave
(calibrate.py: ``graph.meta['range_candidates']``, ranges that differ from minmax's), and the
judge is the output SQNR of the integer model against the float one on the first calibration
sequences (measure.py), as for the compiler's other measured choices (rnnq.steps).

Rule: start from minmax; in graph order, for each tensor quantise the model with each of its
candidates in turn (the other tensors as chosen so far) and keep the best one when it measures
better than the current model by more than `margin` dB (MARGIN_DB); else the tensor keeps minmax. A
candidate that does not change the integer graph (a range the quantiser does not read: a
concatenation's operand, a table's output) is not measured. At most `max_trials` candidates
are measured (in graph order); the rest keep minmax.

Requires a calibrated graph calibrated with method "auto" and `q`, its integer graph.
Produces the chosen ranges on the calibrated graph's tensors (so calibration.json keeps them),
``graph.meta['range_methods']`` {tensor: method} for those not minmax's, and
``meta['choices']['ranges']`` on the returned integer graph: what each candidate measured.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rnnq import progress
from rnnq.data import Dataset
from rnnq.ir import Graph, RnnqError
from rnnq.passes import measure

#: A candidate replaces minmax only when the model measures better by more than this. Larger
#: than the other measured choices' 0.5 dB (rnnq.steps.CHOICE_MARGIN_DB) because a clipped
#: range is measured on the data it was fitted to: the gains measured on calibration data
#: were 0.7-1.4 dB above the same builds' gains on held-out data (+0.64 -> -0.56, +0.58 ->
#: -0.14, +1.80 -> +0.43 dB; README "Calibration ranges").
MARGIN_DB = 1.5
#: Candidates measured at most (each one quantisation and one integer run on at most
#: measure.MEASURE_STEPS steps): bounds the cost on large graphs.
MAX_TRIALS = 64


def _signature(q: Graph) -> dict[str, tuple]:
    """What a range can change in an integer graph: every tensor's type and quantisation (the
    kernels' multipliers, clamps and tables follow from these)."""
    return {t.name: (t.dtype, np.asarray(t.q.scale).tobytes(),
                     np.asarray(t.q.zero_point).tobytes())
            for t in q.tensors.values() if t.q is not None}


def choose_ranges(g: Graph, q: Graph, data: Dataset, fenv: dict, base: float,
                  margin: float = MARGIN_DB, log: Callable[[str], None] = lambda s: None,
                  max_trials: int = MAX_TRIALS) -> tuple[Graph, float]:
    """The rule above on g (calibrated, method auto; its integer graph q measuring `base` dB
    on `data`, whose float values are `fenv`). Returns the integer graph and its SQNR."""
    cands = g.meta.get("range_candidates", {})
    pos = {o: k for k, n in enumerate(g.nodes) for o in n.outputs}
    order = sorted(cands, key=lambda name: pos.get(name, -1))
    total = sum(len(cands[name]) for name in order)
    cur, db, sig = q, base, _signature(q)
    chosen: dict[str, str] = {}
    tried: list[dict] = []
    done = measured = 0
    for name in order:
        t = g.tensors[name]
        minmax, best = t.range, None
        for method, r in cands[name].items():
            done += 1
            progress.advance(done, total)
            if measured >= max_trials:
                tried.append({"tensor": name, "method": method, "skipped": "trial limit"})
                continue
            t.range = tuple(r)
            try:
                q2 = measure.requantize(g)
            except RnnqError as e:  # an accumulator bound with this range
                tried.append({"tensor": name, "method": method, "refused": str(e)})
                continue
            finally:
                t.range = minmax
            if _signature(q2) == sig:
                continue  # the quantiser does not read this range: nothing to measure
            measured += 1
            m = measure.output_sqnr(g, fenv, q2, data)
            tried.append({"tensor": name, "method": method, "range": [float(r[0]), float(r[1])],
                          "output_sqnr_db": round(m, 2)})
            if best is None or m > best[2]:
                best = (method, q2, m, tuple(r))
        if best is not None and best[2] > db + margin:
            t.range = best[3]
            chosen[name] = best[0]
            log(f"calibration ranges: {name!r} {best[0]} [{best[3][0]:.4g}, {best[3][1]:.4g}] "
                f"-> {best[2]:.1f} dB (was {db:.1f} dB with minmax [{minmax[0]:.4g}, "
                f"{minmax[1]:.4g}])")
            cur, db, sig = best[1], best[2], _signature(best[1])
    g.meta["range_methods"] = chosen
    cur.meta["choices"] = {**q.meta.get("choices", {}), "ranges": {
        "chosen": chosen, "sequences": data.n, "margin_db": margin, "candidates": total,
        "measured": measured,
        "output_sqnr_db": {"minmax": round(base, 2), "chosen": round(db, 2)},
        "tried": tried}}
    log(f"calibration ranges (auto): {len(chosen)} of {len(order)} tensors not minmax, "
        f"{measured} of {total} candidates measured: {base:.1f} -> {db:.1f} dB")
    return cur, db

"""Calibration: observed ranges of every activation, of each LSTM's gate pre-activations and
cell state over whole sequences, and per-feature ranges of the model input.

Requires stage FLOAT, produces stage CALIBRATED: ``Tensor.range`` on every activation,
``node.attrs['cell_absmax']`` and ``['gate_range']`` on LSTMs, and
``graph.meta['input_channel_range']``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rnnq.data import Dataset, valid_mask
from rnnq.ir import Graph, Stage
from rnnq.sim.float_ref import run_float

#: Values kept per tensor for the percentile method (a uniform subsample beyond this).
_SAMPLE_CAP = 200_000


class _Observer:
    def __init__(self, method: str, percentile: float, rng: np.random.Generator):
        self.method, self.pct, self.rng = method, percentile, rng
        self.lo: dict[str, np.ndarray] = {}
        self.hi: dict[str, np.ndarray] = {}
        self.samples: dict[str, list[np.ndarray]] = {}

    def add(self, name: str, v: np.ndarray) -> None:
        """v: [M, C] valid rows; tracked per channel C."""
        if v.size == 0:
            return
        lo, hi = v.min(axis=0), v.max(axis=0)
        self.lo[name] = np.minimum(self.lo.get(name, lo), lo)
        self.hi[name] = np.maximum(self.hi.get(name, hi), hi)
        if self.method == "percentile":
            if v.shape[0] > _SAMPLE_CAP:
                v = v[self.rng.choice(v.shape[0], _SAMPLE_CAP, replace=False)]
            self.samples.setdefault(name, []).append(v)

    def range(self, name: str, per_channel: bool = False) -> tuple[np.ndarray, np.ndarray]:
        if self.method == "percentile":
            v = np.concatenate(self.samples[name])
            if not per_channel:
                v = v.reshape(-1, 1)
            lo = np.percentile(v, 100.0 - self.pct, axis=0)
            hi = np.percentile(v, self.pct, axis=0)
        else:
            lo, hi = self.lo[name], self.hi[name]
            if not per_channel:
                lo, hi = lo.min(keepdims=True), hi.max(keepdims=True)
        return lo, hi


def calibrate(graph: Graph, data: Dataset, method: str = "minmax", percentile: float = 99.99,
              batch: int = 64, progress: Callable[[int, int], None] | None = None) -> Graph:
    """Run the float model over the calibration set and record ranges."""
    if method not in ("minmax", "percentile"):
        raise ValueError(f"unknown calibration method {method!r}")
    obs = _Observer(method, percentile, np.random.default_rng(0))
    lstms = [n for n in graph.nodes if n.op == "lstm"]
    acts = [t for t in graph.tensors.values() if t.kind != "const"]
    for start in range(0, data.n, batch):
        xb = data.x[start : start + batch]
        mask = valid_mask(data.lengths[start : start + batch], xb.shape[1])
        env = run_float(graph, xb, taps=True)
        for t in acts:
            v = env[t.name][mask]  # [M, *shape]
            obs.add(t.name, v.reshape(v.shape[0], -1) if t.name == graph.inputs[0]
                    else v.reshape(-1, 1))
        for n in lstms:
            obs.add(n.outputs[0] + ":gates", env[n.outputs[0] + ":gates"][mask].reshape(-1, 1))
            obs.add(n.outputs[1] + ":absc", np.abs(env[n.outputs[1]][mask]).reshape(-1, 1))
        if progress:
            progress(min(start + batch, data.n), data.n)
    for t in acts:
        lo, hi = obs.range(t.name)
        t.range = (float(lo[0]), float(hi[0]))
    lo, hi = obs.range(graph.inputs[0], per_channel=True)
    graph.meta["input_channel_range"] = (lo.astype(np.float64), hi.astype(np.float64))
    for n in lstms:
        glo, ghi = obs.range(n.outputs[0] + ":gates")
        n.attrs["gate_range"] = (float(glo[0]), float(ghi[0]))
        n.attrs["cell_absmax"] = float(obs.range(n.outputs[1] + ":absc")[1][0])
    graph.meta["calibration"] = {"method": method, "sequences": data.n,
                                 **({"percentile": percentile} if method == "percentile" else {})}
    graph.stage = Stage.CALIBRATED
    return graph

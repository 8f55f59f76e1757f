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
from rnnq.ir.ops import LAYOUT, RECURRENT
from rnnq.sim.float_ref import run_float

#: Values kept per tensor for the percentile method (a uniform subsample beyond this).
_SAMPLE_CAP = 200_000


def _observe(graph: Graph, obs: _Observer, acts, recurrent, xb, lb, sb=None) -> None:
    mask = valid_mask(lb, xb.shape[1])
    env = run_float(graph, xb, taps=True, lengths=lb, states=sb)
    for t in acts:
        v = env[t.name][mask] if t.kind == "seq" else _at_end(env[t.name], lb, graph)
        obs.add(t.name, v.reshape(-1, t.shape[-1]) if t.name == graph.inputs[0]
                else v.reshape(-1, 1).astype(np.float64))
    for n in recurrent:
        obs.add(n.outputs[0] + ":gates", env[n.outputs[0] + ":gates"][mask].reshape(-1, 1))
        if n.op == "lstm":
            obs.add(n.outputs[1] + ":absc", np.abs(env[n.outputs[1]][mask]).reshape(-1, 1))


def _at_end(v: np.ndarray, lengths: np.ndarray, graph: Graph) -> np.ndarray:
    """Final tensors: every step of a streamable model (each is a possible end), else the end."""
    if graph.meta.get("streaming", True):
        return v[valid_mask(lengths, v.shape[1])]
    return v[np.arange(v.shape[0]), lengths - 1]


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


def long_streams(data: Dataset, seq_len: int, count: int = 16, seed: int = 0) -> Dataset:
    """Streams of seq_len steps made of calibration sequences played back to back.

    They show the float model the states it reaches on deployment-length inputs (cell states
    grow with time), so that state ranges hold at step seq_len, not just at the calibration
    sequences' length."""
    rng = np.random.default_rng(seed)
    parts = [data.x[i, : data.lengths[i]] for i in range(data.n)]
    streams = np.empty((count, seq_len, *data.x.shape[2:]), dtype=data.x.dtype)
    for s in range(count):
        pos = 0
        while pos < seq_len:
            p = parts[rng.integers(len(parts))]
            k = min(len(p), seq_len - pos)
            streams[s, pos : pos + k] = p[:k]
            pos += k
    return Dataset(streams, np.full(count, seq_len, dtype=np.int64), None)


#: Natural bounds of recurrent outputs: headroom never widens a range past them.
_BOUNDS = {"lstm": (-1.0, 1.0), "gru": (-1.0, 1.0), ("rnn", "tanh"): (-1.0, 1.0),
           ("rnn", "sigmoid"): (0.0, 1.0)}


def _bounds(graph: Graph, name: str) -> tuple[float, float]:
    """Natural bounds of a tensor: those of the recurrent output it is a view of, if any."""
    p = graph.producer(name)
    while p is not None and p.op in LAYOUT:
        name = p.inputs[0]
        p = graph.producer(name)
    if p is None or (p.op == "lstm" and name != p.outputs[0]):  # not recurrent, or the cell
        return (-np.inf, np.inf)
    key = (p.op, p.attrs.get("act", "tanh")) if p.op == "rnn" else p.op
    return _BOUNDS.get(key, (-np.inf, np.inf))


def widen(lo, hi, headroom: float, bounds=(-np.inf, np.inf)):
    """Scale a range about zero by `headroom`, within the tensor's natural bounds."""
    return (np.maximum(np.asarray(lo) * headroom, bounds[0]),
            np.minimum(np.asarray(hi) * headroom, bounds[1]))


def calibrate(graph: Graph, data: Dataset, method: str = "minmax", percentile: float = 99.99,
              batch: int = 64, progress: Callable[[int, int], None] | None = None,
              seq_len: int | None = None, headroom: float = 1.25) -> Graph:
    """Run the float model over the calibration set (and, with seq_len, over streams of that
    many steps) and record ranges."""
    if method not in ("minmax", "percentile"):
        raise ValueError(f"unknown calibration method {method!r}")
    obs = _Observer(method, percentile, np.random.default_rng(0))
    recurrent = [n for n in graph.nodes if n.op in RECURRENT]
    acts = [t for t in graph.tensors.values() if t.kind != "const"]
    sets = [data]
    if seq_len and seq_len > int(data.lengths.max()):
        sets.append(long_streams(data, seq_len))
    total = sum(d.n for d in sets)
    done = 0
    for ds in sets:
        step = batch if ds is data else max(1, batch * 64 // ds.x.shape[1])
        for start in range(0, ds.n, step):
            xb, lb = ds.x[start : start + step], ds.lengths[start : start + step]
            sb = {k: v[start : start + step] for k, v in (ds.states or {}).items()}
            _observe(graph, obs, acts, recurrent, xb, lb, sb)
            done += len(xb)
            if progress:
                progress(done, total)
    for t in acts:
        lo, hi = widen(*obs.range(t.name), headroom, _bounds(graph, t.name))
        t.range = (float(lo[0]), float(hi[0]))
    lo, hi = widen(*obs.range(graph.inputs[0], per_channel=True), headroom)
    graph.meta["input_channel_range"] = (lo.astype(np.float64), hi.astype(np.float64))
    for n in recurrent:
        glo, ghi = obs.range(n.outputs[0] + ":gates")
        n.attrs["gate_range"] = (float(glo[0]), float(ghi[0]))
        if n.op == "lstm":
            n.attrs["cell_absmax"] = float(obs.range(n.outputs[1] + ":absc")[1][0])
    graph.meta["calibration"] = {"method": method, "sequences": data.n,
                                 "seq_len": seq_len or int(data.lengths.max()),
                                 "headroom": headroom,
                                 **({"percentile": percentile} if method == "percentile" else {})}
    graph.stage = Stage.CALIBRATED
    return graph


def ranges_record(g: Graph) -> dict:
    """What calibration found (calibration.json of a C build): with it, `apply_ranges`
    rebuilds the same calibrated graph without the data."""
    lo, hi = g.meta["input_channel_range"]
    return {
        "meta": g.meta["calibration"],
        "tensors": {t.name: list(t.range) for t in g.tensors.values() if t.range is not None},
        "input_channel_range": [lo.tolist(), hi.tolist()],
        "recurrent": {n.outputs[0]: {k: n.attrs[k] for k in ("cell_absmax", "gate_range")
                                     if k in n.attrs}
                      for n in g.nodes if n.op in RECURRENT},
    }


def apply_ranges(g: Graph, record: dict) -> Graph:
    """Float graph + a `ranges_record` -> the calibrated graph it was recorded from."""
    for name, r in record["tensors"].items():
        g.tensors[name].range = (float(r[0]), float(r[1]))
    lo, hi = record["input_channel_range"]
    g.meta["input_channel_range"] = (np.array(lo, np.float64), np.array(hi, np.float64))
    for n in g.nodes:
        if n.op in RECURRENT:
            n.attrs.update(record["recurrent"][n.outputs[0]])
    g.meta["calibration"] = record["meta"]
    g.stage = Stage.CALIBRATED
    return g

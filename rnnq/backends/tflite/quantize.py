"""Calibration and int8 quantisation of a lowered float `TGraph`, the way LiteRT's kernels
need it.

Requires a `Lowered` float graph (rnnq.backends.tflite.lower) and float inputs [N, T, F]; produces the
integer TGraph that is written to `model.tflite` and run by the LiteRT profile of the
simulator. Scheme (TFLite's full-integer convention):

- activations int8 asymmetric per tensor, range = what the calibration observer saw (the
  method the user chose, passes/observer.py), widened about zero by `headroom`, parameters by
  passes/qparams.py — as for the C backend;
- tensors that LiteRT passes through without requantising (RESHAPE, GATHER, PACK, UNPACK,
  SPLIT, REVERSE_V2, CONCATENATION) and tensors the lowering ties (a state across steps, one
  role at every step) form one class with one scale: the union of their ranges;
- LOGISTIC / SOFTMAX outputs are fixed at scale 1/256, zero point -128; TANH at 1/128, 0;
- FULLY_CONNECTED weights int8 symmetric per output channel, biases int32 at s_in*s_w; an
  output range narrower than XNNPACK takes (rescale s_in*s_w/s_out of 256 or more: the whole
  int8 output spans less than one accumulator step, so the finer grid carries nothing) is
  widened to a rescale of FC_RESCALE_MAX, so that LiteRT's default delegate loads the file;
- the LSTM is quantised by `lstm_quant` (8x8_16: int16 cell, Q3.12 gates).

The result is checked as LiteRT prepares it (emit.check); errors name the IR node a tensor was
made for (`Lowered.origin`).
"""

from __future__ import annotations

import numpy as np

from rnnq import numerics as nx
from rnnq.backends.tflite.emit import check
from rnnq.backends.tflite.lower import Lowered
from rnnq.backends.tflite.lstm_quant import add_lstm, float_lstm_params
from rnnq.backends.tflite.roll import roll
from rnnq.data import Dataset, playback
from rnnq.ir import Graph
from rnnq.ir.states import state_values
from rnnq.ir.tgraph import TGraph, TOp, TTensor
from rnnq.passes.observer import Observer
from rnnq.passes.qparams import (
    act16_qparams,
    act_qparams,
    bias_int32,
    quantize_symmetric,
    symmetric_scale,
    widen,
)
from rnnq.sim.float_ref import run_float
from rnnq.sim.litert.constraints import FIXED_OUTPUT, XNNPACK_FC_MAX_RESCALE, xnnpack_fc_rescale
from rnnq.sim.litert.interpreter import run
from rnnq.sim.litert.wide import GATE_IN, GATE_OUT

LAYOUT = {"RESHAPE": (0,), "GATHER": (0,), "STRIDED_SLICE": (0,), "PAD": (0,), "PACK": None,
          "UNPACK": (0,), "SPLIT": (1,), "REVERSE_V2": (0,), "CONCATENATION": None,
          "RELU": (0,)}  # RELU at one scale: LiteRT's identity multiplier, then max(q, zp)
FIXED = FIXED_OUTPUT  # LOGISTIC / SOFTMAX / TANH outputs


def moved_inputs(op: TOp) -> list[int]:
    """The inputs a LAYOUT op moves to its outputs unchanged (not its shape or index operands).
    """
    which = LAYOUT[op.kind]
    return list(op.inputs) if which is None else [op.inputs[k] for k in which]
#: The largest FULLY_CONNECTED rescale s_in*s_w/s_out written (XNNPACK's limit, 256 excluded,
#: less a margin for the float32 rounding of the widened scale).
FC_RESCALE_MAX = XNNPACK_FC_MAX_RESCALE - 1.0


class _Classes:
    """Union-find over tensor indices."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, i: int) -> int:
        while self.parent.get(i, i) != i:
            i = self.parent[i]
        return i

    def union(self, ids) -> None:
        ids = [i for i in ids if i >= 0]
        for i in ids[1:]:
            a, b = self.find(ids[0]), self.find(i)
            if a != b:
                self.parent[b] = a


def calibration_inputs(data: Dataset, t_len: int) -> np.ndarray:
    """[N, T, F] calibration sequences of exactly t_len steps: cropped, or (calibration
    sequences shorter than the deployed T) played back to back (data.playback, as `--seq-len`
    does for C)."""
    if data.x.shape[1] >= t_len:
        return data.x[:, :t_len]
    return playback(data, t_len).x


def step_feeds(g: Graph, data: Dataset) -> list[np.ndarray]:
    """A graph run once per step, lowered with its state as inputs: every call of the
    calibration streams as one sample [N * K, 1, F], with the state the float model had
    before that call (the initial state, then its state outputs) [N * K, size]."""
    env = run_float(g, data.x, lengths=data.lengths, states=data.states)
    n, k = data.x.shape[:2]
    feeds = [data.x.reshape(n * k, 1, -1)]
    for name, info in g.meta.get("state_inputs", {}).items():
        size = int(np.prod(info["shape"]))
        first = np.asarray((data.states or {}).get(name, np.zeros((n, size)))).reshape(n, 1, size)
        after = state_values(g, env, name).reshape(n, k, size)
        feeds.append(np.concatenate([first, after[:, :-1]], axis=1).reshape(n * k, size))
    return feeds


def observe_ranges(low: Lowered, feeds: list[np.ndarray], method: str = "minmax",
                   percentile: float = 99.99) -> dict[int, tuple[float, float]]:
    """Run the float graph on its inputs (x [N, T, F], then any state inputs [N, size]) and
    record every float tensor's range by `method` (passes/observer.py, as for the IR)."""
    g = low.graph
    obs = Observer(method, percentile)

    def see(i: int, v: np.ndarray) -> None:
        obs.add(i, np.asarray(v, np.float64).reshape(-1, 1))

    for i, v in zip(g.inputs, feeds, strict=True):
        see(i, v)
    run(g, [v.astype(np.float32) for v in feeds], float_mode=True, observe=see)
    for i, t in enumerate(g.tensors):
        if t.data is not None and t.data.dtype == np.float32:
            see(i, t.data)
    ranges = {}
    for i in range(len(g.tensors)):
        if i in obs:
            lo, hi = obs.range(i)
            ranges[i] = (float(lo[0]), float(hi[0]))
    return ranges


def int8_params(lo: float, hi: float) -> tuple[np.float32, int]:
    """act_qparams (the rule both backends share) with the scale as the file stores it."""
    s, z = act_qparams(lo, hi)
    return np.float32(s), int(z)


def quantize_int8(v: np.ndarray, scale, zp: int) -> np.ndarray:
    return nx.quantize(v, np.float64(scale), zp).astype(np.int8)


def fc_weight_scales(w: np.ndarray) -> np.ndarray:
    """A FULLY_CONNECTED's weight scales as the file stores them: symmetric, per output row,
    float32."""
    return symmetric_scale(np.asarray(w, np.float64)).astype(np.float32)


def classes(low: Lowered) -> _Classes:
    """The quantisation classes of the lowered graph: tensors one op only moves (LAYOUT) and
    tensors tied across steps (low.ties) share their parameters."""
    cls = _Classes()
    for op in low.graph.ops:
        if op.kind in LAYOUT:
            cls.union([*moved_inputs(op), *op.outputs])
    for tie in low.ties:
        cls.union(tie)
    return cls


def assign(low: Lowered, ranges: dict[int, tuple[float, float]], headroom: float,
           settled: dict[int, tuple[float, float]] | None = None
           ) -> dict[int, tuple[np.float32, int]]:
    """Quantisation parameters of every float activation (and tied constant) tensor. `ranges`
    are what this graph's calibration observed (widened here by `headroom`); `settled` are
    ranges already final (the IR's calibration, its drift rule applied), for the tensors that
    stand for IR tensors."""
    settled = settled or {}
    g = low.graph
    cls = classes(low)
    fixed: dict[int, tuple[float, int]] = {}
    for op in g.ops:
        if op.kind in FIXED and op.outputs[0] in low.wide:  # int16 LOGISTIC / TANH
            fixed[op.inputs[0]], fixed[op.outputs[0]] = GATE_IN, GATE_OUT
        elif op.kind in FIXED:
            fixed[op.outputs[0]] = FIXED[op.kind]
    members: dict[int, list[int]] = {}
    tied = set(cls.parent) | set(cls.parent.values())
    for i, t in enumerate(g.tensors):
        if t.dtype == "float32" and (t.data is None or i in tied):
            members.setdefault(cls.find(i), []).append(i)
    params: dict[int, tuple[np.float32, int]] = {}
    spans: dict[int, tuple[float, float]] = {}  # free classes: the range their params cover
    for root, ids in members.items():
        if len({i in low.wide for i in ids}) > 1:
            raise AssertionError(f"tensors {ids} tied across int8 and int16")
        fix = {fixed[i] for i in ids if i in fixed}
        if len(fix) > 1:
            raise AssertionError(f"tensors {ids} need two fixed quantisations {fix}")
        if fix:
            s, z = fix.pop()
            p = (np.float32(s), z)
        else:
            rs = [ranges[i] for i in ids if i in ranges and i not in settled]
            done = [settled[i] for i in ids if i in settled]
            bounds = [-np.inf, np.inf]
            for i in ids:  # clip / HardSigmoid bounds: int8 saturation is the clamp
                if g.tensors[i].clamp is not None:
                    bounds = [max(bounds[0], g.tensors[i].clamp[0]),
                              min(bounds[1], g.tensors[i].clamp[1])]
            # a class holding IR tensors takes their drift rule (settled): its other members
            # (moves of the same values) add what they saw, without headroom of their own
            spans_of = [widen(r[0], r[1], 1.0 if done else headroom, bounds) for r in rs] + [
                (max(r[0], bounds[0]), min(r[1], bounds[1])) for r in done]
            span = ((min(float(r[0]) for r in spans_of), max(float(r[1]) for r in spans_of))
                    if spans_of else widen(-1.0, 1.0, headroom, bounds))
            if ids[0] in low.wide:  # int16: symmetric, zero point 0
                p = (np.float32(act16_qparams(*span)[0]), 0)
                params.update(dict.fromkeys(ids, p))
                continue
            p = int8_params(*span)
            if np.all(np.isinf(bounds)):
                spans[root] = (float(span[0]), float(span[1]))
        for i in ids:
            params[i] = p
    _fit_fully_connected(g, cls, members, spans, params, low.wide)
    return params


def _fit_fully_connected(g: TGraph, cls: _Classes, members: dict[int, list[int]],
                         spans: dict[int, tuple[float, float]],
                         params: dict[int, tuple[np.float32, int]], wide: set[int]) -> None:
    """Widen (about zero) the output class of every FULLY_CONNECTED whose rescale would reach
    XNNPACK's limit, to a rescale of FC_RESCALE_MAX. In op order, so that a widened output is
    the input its consumers see. A class with a fixed quantisation or a clamp, or one that is
    also the layer's input, is left as it is (emit.check then refuses the file)."""
    for op in g.ops:
        if op.kind != "FULLY_CONNECTED":
            continue
        x, w, y = op.inputs[0], g.tensors[op.inputs[1]].data, op.outputs[0]
        if x in wide:  # XNNPACK does not run int16; its limit is not LiteRT's
            continue
        r = float(xnnpack_fc_rescale(params[x][0], fc_weight_scales(w), params[y][0]).max())
        root = cls.find(y)
        if r < FC_RESCALE_MAX or root not in spans or root == cls.find(x) or not np.isfinite(r):
            continue
        spans[root] = _span_at(spans[root], float(params[y][0]) * r / FC_RESCALE_MAX)
        p = int8_params(*spans[root])
        for i in members[root]:
            params[i] = p


def _span_at(span: tuple[float, float], scale: float) -> tuple[float, float]:
    """The range `span` (covering 0) scaled about zero to an int8 scale of `scale`; a range
    of one point (a tensor that was always 0) becomes [-128, 127] steps of `scale`."""
    lo, hi = min(span[0], 0.0), max(span[1], 0.0)
    if hi - lo <= 0:
        return -128.0 * scale, 127.0 * scale
    k = 255.0 * scale / (hi - lo)
    return lo * k, hi * k


class _Builder:
    def __init__(self, low: Lowered, params: dict, ranges: dict, cells: dict[int, float]):
        self.f, self.params, self.ranges, self.cells = low.graph, params, ranges, cells
        self.wide = low.wide
        self.origin = low.origin
        self.q = TGraph(description=low.graph.description)
        self.map: dict[int, int] = {}

    def where(self, op: TOp) -> str:
        """The IR node an op was lowered from, for errors (else its output tensor)."""
        name = self.f.tensors[op.outputs[0]].name
        return self.origin.get(name, name)

    def tensor(self, i: int) -> int:
        """The integer copy of float tensor i (activations and tied or int constants)."""
        if i < 0:
            return -1
        if i in self.map:
            return self.map[i]
        t = self.f.tensors[i]
        if t.data is not None and t.data.dtype != np.float32:
            j = self.q.const(t.name, t.data)
        elif t.data is not None and i in self.wide:  # (a constant operand: its own scale)
            s, z = self.params.get(i) or (np.float32(act16_qparams(*self.ranges[i])[0]), 0)
            j = self.q.const(t.name, quantize_symmetric(t.data, np.float64(s), 16), scale=s,
                             zero_point=0)
        elif t.data is not None:
            s, z = self.params[i] if i in self.params else int8_params(*self.ranges[i])
            j = self.q.const(t.name, quantize_int8(t.data, s, z), scale=s, zero_point=z)
        else:
            s, z = self.params[i]
            j = self.q.add(TTensor(t.name, "int16" if i in self.wide else "int8", t.shape,
                                   scale=s, zero_point=z, variable=t.variable))
        self.map[i] = j
        return j

    def fully_connected(self, op) -> None:
        x, w_i, b_i = op.inputs
        w = self.f.tensors[w_i].data.astype(np.float64)
        key = ("fc", w_i, b_i, self.params[x], x in self.wide)
        if key not in self.map:
            sw = fc_weight_scales(w)
            wq = quantize_symmetric(w, sw[:, None].astype(np.float64))
            wt = self.q.const(self.f.tensors[w_i].name, wq, scale=sw,
                              zero_point=np.zeros(len(sw), np.int64), qdim=0)
            sb = (np.float32(self.params[x][0]) * sw).astype(np.float32)
            if b_i >= 0:
                b = self.f.tensors[b_i].data.astype(np.float64)
                name, bq = self.f.tensors[b_i].name, bias_int32(b, sb.astype(np.float64),
                                                                self.where(op))
            elif x in self.wide:  # LiteRT rounds differently without a bias: zeros
                name, bq = self.f.tensors[w_i].name + "/zero_bias", np.zeros(len(sw), np.int32)
            bt = -1
            if b_i >= 0 or x in self.wide:  # 16x8 takes an int64 bias (its values within int32)
                bt = self.q.const(name, bq.astype(np.int64) if x in self.wide else bq, scale=sb,
                                  zero_point=np.zeros(len(sb), np.int64), qdim=0)
            self.map[key] = (wt, bt)
        wt, bt = self.map[key]
        self.q.op(op.kind, [self.tensor(x), wt, bt], [self.tensor(o) for o in op.outputs],
                  **op.options)

    def lstm(self, k: int, op) -> None:
        add_lstm(self.q, self.tensor(op.inputs[0]), self.tensor(op.outputs[0]),
                 cell_absmax=self.cells[k], name=self.f.tensors[op.outputs[0]].name,
                 where=self.where(op), **float_lstm_params(self.f, op))

    def build(self) -> TGraph:
        for k, op in enumerate(self.f.ops):
            if op.kind == "FULLY_CONNECTED":
                self.fully_connected(op)
            elif op.kind == "UNIDIRECTIONAL_SEQUENCE_LSTM":
                self.lstm(k, op)
            else:
                self.q.op(op.kind, [self.tensor(i) for i in op.inputs],
                          [self.tensor(o) for o in op.outputs], **op.options)
        self.q.inputs = [self.tensor(i) for i in self.f.inputs]
        self.q.outputs = [self.tensor(i) for i in self.f.outputs]
        return self.q


def quantize(low: Lowered, x: np.ndarray | list[np.ndarray], headroom: float = 1.0,
             float_io: bool = False, loop: str = "unrolled", method: str = "minmax",
             ir_ranges: dict[str, tuple[float, float]] | None = None) -> TGraph:
    """Float TGraph + calibration inputs [N, T, F] (a list: one per graph input, states
    after x) -> integer TGraph.

    LSTM cell ranges come from rnnq's own calibration (`low.cells`). With float_io the graph
    takes and returns float32 through QUANTIZE and DEQUANTIZE. loop "while" rolls each
    unrolled GRU / RNN layer into a WHILE op (same integers; rnnq.backends.tflite.roll) at the edges; everything between stays integer.
    """
    ranges = observe_ranges(low, x if isinstance(x, list) else [x], method)
    settled = {i: ir_ranges[n] for i, n in low.ir_names.items() if ir_ranges and n in ir_ranges}
    params = assign(low, ranges, headroom, settled)
    builder = _Builder(low, params, ranges, low.cells)
    q = builder.build()
    if loop == "while" and low.loops:
        roll(q, low.loops, builder.map, low.t_len)
    if float_io:
        _float_edges(q)
    check(q, float_io, low.origin)
    return q


def _float_edges(q: TGraph) -> None:
    new_in = []
    for i in q.inputs:
        t = q.tensors[i]
        f = q.add(TTensor(t.name + "/float", "float32", t.shape))
        q.ops.insert(0, TOp("QUANTIZE", [f], [i]))
        new_in.append(f)
    new_out = []
    for i in q.outputs:
        t = q.tensors[i]
        f = q.add(TTensor(t.name + "/float", "float32", t.shape))
        q.op("DEQUANTIZE", [i], [f])
        new_out.append(f)
    q.inputs, q.outputs = new_in, new_out

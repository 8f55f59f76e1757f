"""Lowering: rnnq's float IR -> a float `TGraph` of TFLite builtin operators.

Requires a FLOAT (or CALIBRATED) graph whose recurrent layers run over batch 1; produces a
float32 TGraph with the same inputs and outputs, to be calibrated and quantised by
`rnnq.backends.tflite.quantize`. Every IR tensor becomes one TFLite tensor with a leading dim of 1 (the
sequence; the simulator folds N sequences into it): `seq` tensors are [1, T, *step_shape],
`final` tensors [1, *step_shape]. T is fixed when the file is written.

- LSTM -> the fused UNIDIRECTIONAL_SEQUENCE_LSTM (REVERSE_V2 around it for a reverse
  direction); GRU and vanilla RNN -> primitive ops unrolled over T (the input-side product for
  all steps is one FULLY_CONNECTED before the loop; a reverse direction is unrolled backwards).
- Tensors that must share one quantisation are recorded in `ties` (the same role at every
  step, a state and its initial value); layout operators tie themselves (see quantize).
"""

from __future__ import annotations

import numpy as np

from rnnq.backends.tflite.lower_rnn import Loop, Recurrent
from rnnq.backends.tflite.support import check, label
from rnnq.ir import Graph, Node
from rnnq.ir.states import state_targets, state_tensor
from rnnq.ir.tgraph import TGraph, TTensor


class Lowered:
    """The float TGraph, its quantisation ties, T, each LSTM op's calibrated max |c| (by op
    position; None when the IR was not calibrated), and the IR node each tensor was made for
    (`origin`, by tensor name: support.label, so that errors about a tensor name the node a
    user knows, not the TFLite-level names such as an unrolled layer's `rnn1/...`)."""

    def __init__(self, graph: TGraph, ties: list[list[int]], t_len: int,
                 cells: dict[int, float | None], loops: list[Loop],
                 origin: dict[str, str] | None = None,
                 layers: dict[str, tuple[Node, range]] | None = None,
                 ir_names: dict[int, str] | None = None,
                 states: list[tuple[int, int, range]] | None = None):
        self.graph, self.ties, self.t_len, self.cells = graph, ties, t_len, cells
        self.loops = loops
        self.origin = origin or {}
        #: recurrent layer (IR output name) -> its node and the tensors its lowering made
        self.layers = layers or {}
        #: the tensors that stand for IR tensors (a layer's outputs among them): their IR name
        self.ir_names = ir_names or {}
        #: a graph run once per step: each state input, its output and the tensors between
        #: the layers' final states and that output
        self.states = states or []
        #: float tensors quantised to int16 (rnnq.backends.tflite.widen)
        self.wide: set[int] = set()


class _Lower(Recurrent):
    def __init__(self, g: Graph, t_len: int, unroll: frozenset[str] = frozenset(),
                 r16: frozenset[str] = frozenset()):
        self.g, self.t = g, t_len
        self.unroll = unroll  # LSTM layers (output names) unrolled though the fused op fits
        self.r16 = r16  # unrolled layers whose recurrent products add their weights' residual
        self.tg = TGraph(description="rnnq")
        self.idx: dict[str, int] = {}
        self.ties: list[list[int]] = []
        self.roles: dict[str, list[int]] = {}
        self.cells: dict[int, float | None] = {}
        self.loops: list[Loop] = []
        self.layers = 0  # unrolled layers named so far (tag)
        self.state_in: dict[str, int] = {}  # state input -> its flat [1, size] graph input
        self.finals: dict[str, int] = {}  # recurrent output -> its tensor after the last step
        self.origin: dict[str, str] = {}  # tensor name -> the IR node it was made for
        self.spans: dict[str, tuple[Node, range]] = {}  # recurrent layer -> its tensors

    # -- tensors ---------------------------------------------------------------------------
    def shape_of(self, name: str) -> tuple[int, ...]:
        t = self.g.tensors[name]
        return (1, self.t, *t.shape) if t.kind == "seq" else (1, *t.shape)

    def act(self, name: str, shape: tuple[int, ...], role: str | None = None) -> int:
        i = self.tg.add(TTensor(name, "float32", tuple(int(d) for d in shape)))
        if role is not None:
            self.roles.setdefault(role, []).append(i)
        return i

    def const(self, name: str, data: np.ndarray, role: str | None = None) -> int:
        data = np.asarray(data)
        data = data.astype(np.int32 if np.issubdtype(data.dtype, np.integer) else np.float32)
        i = self.tg.const(name, data)
        if role is not None:
            self.roles.setdefault(role, []).append(i)
        return i

    def ir(self, name: str) -> int:
        """The TFLite tensor of an IR tensor (constants are created on first use)."""
        if name not in self.idx:
            t = self.g.tensors[name]
            if t.kind != "const":
                raise AssertionError(f"{name} used before it is produced")
            self.idx[name] = self.const(name, t.data)
        return self.idx[name]

    def out(self, node: Node, k: int = 0) -> int:
        name = node.outputs[k]
        i = self.act(name, self.shape_of(name))
        self.idx[name] = i
        return i

    def op(self, kind: str, ins: list[int], outs: list[int], **opts) -> None:
        self.tg.op(kind, ins, outs, **opts)

    def reshape(self, x: int, shape: tuple[int, ...], name: str, out: int | None = None) -> int:
        if out is None:
            out = self.act(name, shape)
        self.op("RESHAPE", [x, self.const(name + "/shape", np.array(shape))], [out])
        return out

    def take(self, x: int, axis: int, idx: np.ndarray, out: int, name: str) -> None:
        """out = x's entries idx along `axis` (> 0). An evenly spaced ascending run is a
        STRIDED_SLICE, anything else a GATHER: TFLite Micro has no int16 GATHER, and a slice is
        a copy in every runtime."""
        idx = np.asarray(idx, np.int64).ravel()
        shape = self.tg.tensors[x].shape
        step = int(idx[1] - idx[0]) if idx.size > 1 else 1
        if idx.size == 0 or step <= 0 or np.any(np.diff(idx) != step):
            self.op("GATHER", [x, self.const(name + "/index", idx.astype(np.int32))], [out],
                    Axis=axis, BatchDims=0)
            return
        begin = np.zeros(len(shape), np.int32)
        end, strides = np.array(shape, np.int32), np.ones(len(shape), np.int32)
        begin[axis], end[axis], strides[axis] = idx[0], idx[-1] + 1, step
        self.op("STRIDED_SLICE", [x, self.const(name + "/begin", begin),
                                  self.const(name + "/end", end),
                                  self.const(name + "/strides", strides)], [out],
                BeginMask=0, EndMask=0, EllipsisMask=0, NewAxisMask=0, ShrinkAxisMask=0)

    def weights(self, name: str, w: np.ndarray, b: np.ndarray | None) -> tuple[int, int]:
        """Constant W and b of a FULLY_CONNECTED, made once and shared by every step."""
        return self.const(name + "/W", w), -1 if b is None else self.const(name + "/b", b)

    def fc(self, x: int, wb: tuple[int, int], name: str, role: str, relu: bool = False) -> int:
        shp = (*self.tg.tensors[x].shape[:-1], self.tg.tensors[wb[0]].shape[0])
        y = self.act(name, shp, role)
        self.op("FULLY_CONNECTED", [x, *wb], [y], FusedActivationFunction=1 if relu else 0,
                KeepNumDims=True)
        return y

    def elementwise(self, kind: str, a: int, b: int, name: str, role: str,
                    relu: bool = False) -> int:
        shp = np.broadcast_shapes(self.tg.tensors[a].shape, self.tg.tensors[b].shape)
        y = self.act(name, shp, role)
        self.op(kind, [a, b], [y], FusedActivationFunction=1 if relu else 0)
        return y

    def unary(self, kind: str, a: int, name: str, role: str) -> int:
        y = self.act(name, self.tg.tensors[a].shape, role)
        self.op(kind, [a], [y])
        return y

    def tag(self, kind: str) -> str:
        """A short name for an unrolled layer's per-step tensors (names are stored per
        tensor, and an unrolled layer has a dozen tensors per step)."""
        self.layers += 1
        return f"{kind}{self.layers}"

    # -- nodes -----------------------------------------------------------------------------
    def node(self, n: Node) -> None:
        first = len(self.tg.tensors)
        getattr(self, "_" + n.op)(n)  # every op support.check lets through has a rule
        if n.op in ("lstm", "gru", "rnn"):
            self.spans[n.outputs[0]] = (n, range(first, len(self.tg.tensors)))
        for t in self.tg.tensors[first:]:
            self.origin.setdefault(t.name, label(n))

    def _reshape(self, n: Node) -> None:
        self.reshape(self.ir(n.inputs[0]), self.shape_of(n.outputs[0]), n.outputs[0],
                     self.out(n))

    def _take(self, n: Node) -> None:
        src = self.g.tensors[n.inputs[0]]
        lead = (1, self.t) if src.kind == "seq" else (1,)
        flat = self.reshape(self.ir(n.inputs[0]), (*lead, src.size), n.outputs[0] + "/flat")
        idx = np.asarray(n.attrs["index"], dtype=np.int32).ravel()
        if n.attrs.get("fill"):  # one zero (the zero point once int8) after the last value
            padded = self.act(n.outputs[0] + "/padded", (*lead, src.size + 1))
            pads = np.zeros((len(lead) + 1, 2), np.int32)
            pads[-1, 1] = 1
            self.op("PAD", [flat, self.const(n.outputs[0] + "/pads", pads)], [padded])
            flat, idx = padded, np.where(idx < 0, src.size, idx).astype(np.int32)
        gathered = self.act(n.outputs[0] + "/taken", (*lead, idx.size))
        self.take(flat, len(lead), idx, gathered, n.outputs[0])
        self.reshape(gathered, self.shape_of(n.outputs[0]), n.outputs[0], self.out(n))

    def _pick(self, n: Node, step: int) -> None:
        """One step of a [1, T, ...] tensor. An IR `last` that keeps the time axis as a unit
        dimension (Gather with indices [-1], Slice of the last step) is reshaped to it."""
        name = n.outputs[0]
        src = self.ir(n.inputs[0])
        picked = self.act(name + "/picked", (1, 1, *self.tg.tensors[src].shape[2:]))
        self.take(src, 1, np.array([step]), picked, name)
        self.reshape(picked, self.shape_of(name), name, self.out(n))

    def _last(self, n: Node) -> None:
        self._pick(n, self.t - 1)

    def _first(self, n: Node) -> None:
        self._pick(n, 0)

    def _concat(self, n: Node) -> None:
        lead = 2 if self.g.tensors[n.inputs[0]].kind == "seq" else 1
        self.op("CONCATENATION", [self.ir(i) for i in n.inputs], [self.out(n)],
                Axis=lead + n.attrs["axis"], FusedActivationFunction=0)

    def _mean_time(self, n: Node) -> None:
        self.op("MEAN", [self.ir(n.inputs[0]), self.const(n.outputs[0] + "/axis",
                                                          np.array([1], dtype=np.int32))],
                [self.out(n)], KeepDims=False)

    def _dense(self, n: Node) -> None:
        _, w, b = (self.g.tensors[i].data for i in n.inputs)
        x = self.ir(n.inputs[0])
        y = self.out(n)
        ins = [x, self.const(n.outputs[0] + "/W", w), self.const(n.outputs[0] + "/b", b)]
        self.op("FULLY_CONNECTED", ins, [y], FusedActivationFunction=1 if n.attrs.get("relu")
                else 0, KeepNumDims=True)

    def _binary(self, n: Node, kind: str) -> None:
        self.op(kind, [self.ir(n.inputs[0]), self.ir(n.inputs[1])], [self.out(n)],
                FusedActivationFunction=0)

    def _add(self, n: Node) -> None:
        self._binary(n, "ADD")

    def _sub(self, n: Node) -> None:
        self._binary(n, "SUB")

    def _mul(self, n: Node) -> None:
        self._binary(n, "MUL")

    def _relu(self, n: Node) -> None:
        self.op("RELU", [self.ir(n.inputs[0])], [self.out(n)])

    def _leaky_relu(self, n: Node) -> None:
        self.op("LEAKY_RELU", [self.ir(n.inputs[0])], [self.out(n)],
                Alpha=float(n.attrs["alpha"]))

    def _sigmoid(self, n: Node) -> None:
        self.op("LOGISTIC", [self.ir(n.inputs[0])], [self.out(n)])

    def _tanh(self, n: Node) -> None:
        self.op("TANH", [self.ir(n.inputs[0])], [self.out(n)])

    def _softmax(self, n: Node) -> None:
        self.op("SOFTMAX", [self.ir(n.inputs[0])], [self.out(n)], Beta=1.0)


def _state_output(low: _Lower, state: str, name: str, size: int) -> int:
    """A state output [1, size]: the layers' final h and c concatenated, then gathered into
    the state input's layout (an element no state comes from: a PAD zero)."""
    parts, where = [], np.full(size, -1, np.int64)
    offset = 0
    for n, which, index in state_targets(low.g).get(state, []):
        v = low.finals[state_tensor(n, which)]
        hsz = low.tg.tensors[v].shape[-1]
        parts.append(low.reshape(v, (1, hsz), f"{name}/{n.name}_{which}"))
        where[np.asarray(index).ravel()[:hsz]] = offset + np.arange(hsz)
        offset += hsz
    cat = low.act(name + "/parts", (1, offset))
    low.op("CONCATENATION", parts, [cat], Axis=1, FusedActivationFunction=0)
    if np.any(where < 0):
        padded = low.act(name + "/padded", (1, offset + 1))
        low.op("PAD", [cat, low.const(name + "/pads", np.array([[0, 0], [0, 1]], np.int32))],
               [padded])
        cat, where = padded, np.where(where < 0, offset, where)
    out = low.act(name, (1, size))
    low.take(cat, 1, where, out, name)
    return out


def lower(g: Graph, t_len: int, unroll: frozenset[str] = frozenset(),
          r16: frozenset[str] = frozenset()) -> Lowered:
    """Float IR -> float TGraph over sequences of exactly `t_len` steps; the LSTM layers named
    in `unroll` (output names) are unrolled even where the fused op could express them; the
    layers in `r16` (unrolled) compute each recurrent product as two FULLY_CONNECTED, the
    weights and what their int8 grid loses (lower_rnn: 16-bit recurrent weights)."""
    check(g)
    low = _Lower(g, t_len, unroll | r16, r16)
    name = g.inputs[0]
    t = g.tensors[name]
    flat = low.act(name, (1, t_len, t.size))
    low.tg.inputs = [flat]
    low.idx[name] = low.reshape(flat, low.shape_of(name), name + "/steps")
    states = g.meta.get("state_inputs", {}) if g.meta.get("step_graph") else {}
    for s, info in states.items():
        low.state_in[s] = low.act(s, (1, int(np.prod(info["shape"]))))
        low.tg.inputs.append(low.state_in[s])
    for n in g.nodes:
        low.node(n)
    low.tg.outputs = [low.idx[o] for o in g.outputs]
    chains = []
    for s, info in states.items():
        if "output" in info:
            first = len(low.tg.tensors)
            out = _state_output(low, s, info["output"], int(np.prod(info["shape"])))
            low.tg.outputs.append(out)
            low.ties.append([low.state_in[s], out])  # its codes go back in as they are
            chains.append((low.state_in[s], out, range(first, len(low.tg.tensors))))
    ties = low.ties + [v for v in low.roles.values() if len(v) > 1]
    return Lowered(low.tg, ties, t_len, low.cells, low.loops, low.origin, low.spans,
                   {i: name for name, i in low.idx.items()}, chains)

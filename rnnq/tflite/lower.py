"""Lowering: rnnq's float IR -> a float `TGraph` of TFLite builtin operators.

Requires a FLOAT (or CALIBRATED) graph whose recurrent layers run over batch 1; produces a
float32 TGraph with the same inputs and outputs, to be calibrated and quantised by
`rnnq.tflite.quantize`. Every IR tensor becomes one TFLite tensor with a leading dim of 1 (the
sequence; the simulator folds N sequences into it): `seq` tensors are [1, T, *step_shape],
`final` tensors [1, *step_shape]. T is fixed when the file is written.

- LSTM -> the fused UNIDIRECTIONAL_SEQUENCE_LSTM (REVERSE_V2 around it for a reverse
  direction); GRU and vanilla RNN -> primitive ops unrolled over T (the input-side product for
  all steps is one FULLY_CONNECTED before the loop; a reverse direction is unrolled backwards).
- Tensors that must share one quantisation are recorded in `ties` (the same role at every
  step, a state and its initial value); layout operators tie themselves (see quantize).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnq.ir import Graph, Node, RnnqError
from rnnq.tflite.graph import TGraph, TTensor

# ONNX LSTM gate blocks i, o, f, c -> TFLite's inputs i, f, c, o.
_ONNX_LSTM = {"i": 0, "o": 1, "f": 2, "c": 3}


@dataclass
class Loop:
    """Where an unrolled recurrence sits in the op list (for rolling it into a WHILE loop):
    the UNPACK ops splitting its input streams, the op range of every step (first executed
    step first), its initial and per-step states, and the PACK collecting them."""

    streams: list[int]            # the [1, T, 1, W] input-side tensors (one per UNPACK)
    unpack_ops: list[int]
    xs: list[list[int]]           # per stream, per timestep t: the UNPACK outputs
    h0: int
    steps: list[tuple[int, int]]  # op [start, end) of each step, in execution order
    hs: list[int]                 # the state each step produces, in execution order
    pack_op: int
    reverse: bool


class Lowered:
    """The float TGraph, its quantisation ties, T, and each LSTM op's calibrated max |c|
    (by op position; None when the IR was not calibrated)."""

    def __init__(self, graph: TGraph, ties: list[list[int]], t_len: int,
                 cells: dict[int, float | None], loops: list[Loop]):
        self.graph, self.ties, self.t_len, self.cells = graph, ties, t_len, cells
        self.loops = loops


def _err(node: Node, what: str) -> RnnqError:
    return RnnqError(f"node {node.name or node.op} ({node.op}): {what} is not supported by "
                     "--format tflite")


class _Lower:
    def __init__(self, g: Graph, t_len: int):
        self.g, self.t = g, t_len
        self.tg = TGraph(description="rnnq")
        self.idx: dict[str, int] = {}
        self.ties: list[list[int]] = []
        self.roles: dict[str, list[int]] = {}
        self.cells: dict[int, float | None] = {}
        self.loops: list[Loop] = []

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
        self.layers = getattr(self, "layers", 0) + 1
        return f"{kind}{self.layers}"

    # -- nodes -----------------------------------------------------------------------------
    def node(self, n: Node) -> None:
        fn = getattr(self, "_" + n.op, None)
        if fn is None:
            raise _err(n, f"IR op {n.op}")
        fn(n)

    def _reshape(self, n: Node) -> None:
        self.reshape(self.ir(n.inputs[0]), self.shape_of(n.outputs[0]), n.outputs[0],
                     self.out(n))

    def _take(self, n: Node) -> None:
        src = self.g.tensors[n.inputs[0]]
        lead = (1, self.t) if src.kind == "seq" else (1,)
        flat = self.reshape(self.ir(n.inputs[0]), (*lead, src.size), n.outputs[0] + "/flat")
        idx = np.asarray(n.attrs["index"], dtype=np.int32).ravel()
        gathered = self.act(n.outputs[0] + "/taken", (*lead, idx.size))
        self.op("GATHER", [flat, self.const(n.outputs[0] + "/index", idx)], [gathered],
                Axis=len(lead), BatchDims=0)
        self.reshape(gathered, self.shape_of(n.outputs[0]), n.outputs[0], self.out(n))

    def _pick(self, n: Node, step: int) -> None:
        y = self.out(n)
        self.op("GATHER", [self.ir(n.inputs[0]), self.const(n.outputs[0] + "/step",
                                                           np.array(step, dtype=np.int32))],
                [y], Axis=1, BatchDims=0)

    def _last(self, n: Node) -> None:
        self._pick(n, self.t - 1)

    def _first(self, n: Node) -> None:
        self._pick(n, 0)

    def _concat(self, n: Node) -> None:
        kinds = {self.g.tensors[i].kind for i in n.inputs}
        if len(kinds) != 1:
            raise _err(n, "concatenating per-step and final tensors")
        lead = 2 if kinds == {"seq"} else 1
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
        a, b = (self.g.tensors[i] for i in n.inputs)
        if "final" in (a.kind, b.kind) and "seq" in (a.kind, b.kind):
            raise _err(n, "mixing per-step and final operands")
        self.op(kind, [self.ir(n.inputs[0]), self.ir(n.inputs[1])], [self.out(n)],
                FusedActivationFunction=0)

    def _add(self, n: Node) -> None:
        self._binary(n, "ADD")

    def _sub(self, n: Node) -> None:
        self._binary(n, "SUB")

    def _mul(self, n: Node) -> None:
        self._binary(n, "MUL")

    def _sigmoid(self, n: Node) -> None:
        self.op("LOGISTIC", [self.ir(n.inputs[0])], [self.out(n)])

    def _tanh(self, n: Node) -> None:
        self.op("TANH", [self.ir(n.inputs[0])], [self.out(n)])

    def _softmax(self, n: Node) -> None:
        self.op("SOFTMAX", [self.ir(n.inputs[0])], [self.out(n)], Beta=1.0)

    # -- recurrent layers ------------------------------------------------------------------
    def _check_recurrent(self, n: Node, zero_states: tuple[int, ...]) -> tuple[int, int]:
        x = self.g.tensors[n.inputs[0]]
        if x.shape[0] != 1:
            raise _err(n, f"batch {x.shape[0]} inside the model (batch 1 only)")
        if n.attrs.get("clip") is not None:
            raise _err(n, "clip")
        if n.attrs.get("state_inputs"):
            raise _err(n, "an initial-state model input")
        if n.attrs.get("gate_act", ("sigmoid",))[0] != "sigmoid":
            raise _err(n, f"gate activation {n.attrs['gate_act'][0]}")
        for k in zero_states:
            if np.any(self.g.tensors[n.inputs[k]].data != 0):
                raise _err(n, "a non-zero initial state")
        return x.shape[1], self.g.tensors[n.inputs[2]].shape[1]

    def _lstm(self, n: Node) -> None:
        isz, hsz = self._check_recurrent(n, (4, 5))
        if n.attrs.get("input_forget"):
            raise _err(n, "input_forget")
        if len(self.g.consumers(n.outputs[1])) or n.outputs[1] in self.g.outputs:
            raise _err(n, "reading the cell state (Y_c)")
        w, r, b, _, _, p = (self.g.tensors[i].data for i in n.inputs[1:])
        name = n.outputs[0]
        x = self.reshape(self.ir(n.inputs[0]), (1, self.t, isz), name + "/x")
        if n.attrs.get("reverse"):
            x = self._reverse(x, name + "/x_rev")
        gate = {k: slice(v * hsz, (v + 1) * hsz) for k, v in _ONNX_LSTM.items()}
        peep = {"i": p[:hsz], "o": p[hsz:2 * hsz], "f": p[2 * hsz:]}  # ONNX P: i, o, f
        ins = [x]
        ins += [self.const(f"{name}/W_{k}", w[gate[k]]) for k in "ifco"]
        ins += [self.const(f"{name}/R_{k}", r[gate[k]]) for k in "ifco"]
        ins += ([self.const(f"{name}/P_{k}", peep[k]) for k in "ifo"] if np.any(p != 0)
                else [-1, -1, -1])
        ins += [self.const(f"{name}/b_{k}", b[gate[k]]) for k in "ifco"]
        ins += [-1, -1]
        h_state = self.tg.add(TTensor(name + "/h_state", "float32", (1, hsz), variable=True))
        c_state = self.tg.add(TTensor(name + "/c_state", "float32", (1, hsz), variable=True))
        ins += [h_state, c_state, -1, -1, -1, -1]
        y = self.act(name + "/y", (1, self.t, hsz))
        self.ties.append([y, h_state])
        self.cells[len(self.tg.ops)] = n.attrs.get("cell_absmax")
        self.op("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [y], FusedActivationFunction=4,
                CellClip=0.0, ProjClip=0.0, TimeMajor=False)
        if n.attrs.get("reverse"):
            y = self._reverse(y, name + "/y_rev")
        self.reshape(y, self.shape_of(name), name, self.out(n, 0))
        self.idx[n.outputs[1]] = -1  # cell state: checked unused above

    def _reverse(self, x: int, name: str) -> int:
        y = self.act(name, self.tg.tensors[x].shape)
        self.op("REVERSE_V2", [x, self.const(name + "/axis", np.array([1], dtype=np.int32))],
                [y])
        return y

    def _steps(self, x: int, name: str, width: int) -> list[int]:
        """[1, T, 1, width] -> T tensors [1, 1, width] (UNPACK along time)."""
        outs = [self.act(f"{name}/t{t}", (1, 1, width)) for t in range(self.t)]
        self.op("UNPACK", [x], outs, Num=self.t, Axis=1)
        return outs

    def _pack(self, hs: list[int], n: Node, hsz: int, role: str, loop: Loop) -> None:
        y = self.out(n)
        packed = self.act(n.outputs[0] + "/packed", (1, self.t, 1, hsz), role)
        loop.pack_op = len(self.tg.ops)
        self.op("PACK", hs, [packed], ValuesCount=len(hs), Axis=1)
        self.loops.append(loop)
        self.reshape(packed, self.shape_of(n.outputs[0]), n.outputs[0], y)

    def _loop(self, n: Node, streams: list[int], xs: list[list[int]], h0: int) -> Loop:
        ops = len(self.tg.ops)
        return Loop(streams, list(range(ops - len(streams), ops)), xs, h0, [], [], -1,
                    bool(n.attrs.get("reverse")))

    def _step_done(self, loop: Loop, start: int, h: int) -> None:
        loop.steps.append((start, len(self.tg.ops)))
        loop.hs.append(h)

    def _order(self, n: Node) -> list[int]:
        return list(range(self.t))[::-1] if n.attrs.get("reverse") else list(range(self.t))

    def _rnn(self, n: Node) -> None:
        _, hsz = self._check_recurrent(n, (4,))
        w, r, b, h0 = (self.g.tensors[i].data for i in n.inputs[1:])
        name, act = self.tag("rnn"), n.attrs.get("act", "tanh")
        xw = self.fc(self.ir(n.inputs[0]), self.weights(name + "/xw", w, b), name + "/xw",
                     name + ":xw")
        xs = self._steps(xw, name + "/xw", hsz)
        rw = self.weights(name + "/R", r, None)
        hrole = "h:" + name
        h = self.const(name + "/h0", h0.reshape(1, 1, hsz), hrole)
        loop = self._loop(n, [xw], [xs], h)
        hs: list[int] = [0] * self.t
        for t in self._order(n):
            start = len(self.tg.ops)
            rh = self.fc(h, rw, f"{name}/rh{t}", name + ":rh")
            if act == "relu":
                h = self.elementwise("ADD", xs[t], rh, f"{name}/h{t}", hrole, relu=True)
            else:
                pre = self.elementwise("ADD", xs[t], rh, f"{name}/pre{t}", name + ":pre")
                h = self.unary("TANH" if act == "tanh" else "LOGISTIC", pre, f"{name}/h{t}",
                               hrole)
            hs[t] = h
            self._step_done(loop, start, h)
        self._pack(hs, n, hsz, hrole, loop)

    def _gru(self, n: Node) -> None:
        _, hsz = self._check_recurrent(n, (5,))
        w, r, wb, rb, h0 = (self.g.tensors[i].data for i in n.inputs[1:])
        name, lbr = self.tag("gru"), bool(n.attrs.get("linear_before_reset"))
        zr, hn = slice(0, 2 * hsz), slice(2 * hsz, 3 * hsz)
        x = self.ir(n.inputs[0])
        xw_zr = self.fc(x, self.weights(name + "/xzr", w[zr], wb[zr] + rb[zr]), name + "/xzr",
                        name + ":xzr")
        xb = wb[hn] if lbr else wb[hn] + rb[hn]
        xw_n = self.fc(x, self.weights(name + "/xn", w[hn], xb), name + "/xn", name + ":xn")
        xzr = self._steps(xw_zr, name + "/xzr", 2 * hsz)
        xn = self._steps(xw_n, name + "/xn", hsz)
        r_zr = self.weights(name + "/Rzr", r[zr], None)
        r_n = self.weights(name + "/Rn", r[hn], rb[hn] if lbr else None)
        hrole = "h:" + name
        h = self.const(name + "/h0", h0.reshape(1, 1, hsz), hrole)
        axis = self.const(name + "/split_axis", np.array(2, dtype=np.int32))
        loop = self._loop(n, [xw_zr, xw_n], [xzr, xn], h)
        hs: list[int] = [0] * self.t
        for t in self._order(n):
            start = len(self.tg.ops)
            s = f"{name}/{{}}{t}"
            a = self.elementwise("ADD", xzr[t], self.fc(h, r_zr, s.format("hzr"), name + ":hzr"),
                                 s.format("zr_pre"), name + ":zr_pre")
            gates = self.unary("LOGISTIC", a, s.format("zr"), name + ":zr")
            z, rg = (self.act(s.format(k), (1, 1, hsz), name + ":zr") for k in "zr")
            self.op("SPLIT", [axis, gates], [z, rg], NumSplits=2)
            if lbr:
                hh = self.fc(h, r_n, s.format("hn"), name + ":hn")
                inner = self.elementwise("MUL", rg, hh, s.format("rhn"), name + ":rhn")
            else:
                rh = self.elementwise("MUL", rg, h, s.format("rh"), name + ":rh")
                inner = self.fc(rh, r_n, s.format("hn"), name + ":hn")
            pre = self.elementwise("ADD", xn[t], inner, s.format("n_pre"), name + ":n_pre")
            cand = self.unary("TANH", pre, s.format("n"), name + ":n")
            d = self.elementwise("SUB", h, cand, s.format("d"), name + ":d")
            zd = self.elementwise("MUL", z, d, s.format("zd"), name + ":zd")
            h = self.elementwise("ADD", cand, zd, s.format("h"), hrole)
            hs[t] = h
            self._step_done(loop, start, h)
        self._pack(hs, n, hsz, hrole, loop)


def lower(g: Graph, t_len: int) -> Lowered:
    """Float IR -> float TGraph over sequences of exactly `t_len` steps."""
    if g.meta.get("sequence_lens_inputs") or g.meta.get("length_inputs"):
        raise RnnqError("sequence lengths as a model input are not supported by --format "
                        "tflite (TFLite has no per-sequence length); export without them")
    low = _Lower(g, t_len)
    name = g.inputs[0]
    t = g.tensors[name]
    if t.dtype != "float32":
        raise RnnqError(f"input {name}: {t.dtype} token ids are not supported by --format "
                        "tflite")
    flat = low.act(name, (1, t_len, t.size))
    low.tg.inputs = [flat]
    low.idx[name] = low.reshape(flat, low.shape_of(name), name + "/steps")
    for n in g.nodes:
        low.node(n)
    low.tg.outputs = [low.idx[o] for o in g.outputs]
    ties = low.ties + [v for v in low.roles.values() if len(v) > 1]
    return Lowered(low.tg, ties, t_len, low.cells, low.loops)

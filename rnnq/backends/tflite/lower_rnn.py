"""Lowering of LSTM / GRU / RNN layers to TFLite builtins (the recurrent half of
`rnnq.backends.tflite.lower._Lower`, which provides the tensor and op helpers used here).

- LSTM -> the fused integer UNIDIRECTIONAL_SEQUENCE_LSTM when it can express the layer
  (sigmoid gates, no clip, no input_forget, zero initial states, cell state not read);
  otherwise the LSTM is unrolled into int8 builtins like the GRU (int8 cell state).
- GRU / RNN -> int8 builtins, one set of ops per step (rnnq.backends.tflite.roll can make a WHILE loop).
- HardSigmoid gates: the affine a·z + b is folded into the gate weights and biases and the
  gate tensor's quantisation range is [0, 1], so int8 saturation is the clamp (no op at all).
- `clip` bounds the pre-activation tensor's range the same way. Bounds are kept on the
  tensor (`TTensor.clamp`): the float graph applies them, the quantiser honours them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnq.backends.tflite.support import fused_lstm_blocker
from rnnq.ir import Node
from rnnq.ir.ops import hard_sigmoid
from rnnq.ir.tgraph import TTensor
from rnnq.passes.qparams import quantize_symmetric, symmetric_scale

# ONNX LSTM gate blocks i, o, f, c (TFLite's fused op takes i, f, c, o).
ONNX_LSTM = {"i": 0, "o": 1, "f": 2, "c": 3}


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


class Recurrent:
    # -- shared checks and helpers ---------------------------------------------------------
    def _sizes(self, n: Node) -> tuple[int, int]:
        """(input size, hidden size) of a recurrent node (batch 1: support.check)."""
        return self.g.tensors[n.inputs[0]].shape[1], self.g.tensors[n.inputs[2]].shape[1]

    def _bound(self, t: int, lo: float, hi: float) -> None:
        old = self.tg.tensors[t].clamp or (-np.inf, np.inf)
        self.tg.tensors[t].clamp = (max(old[0], lo), min(old[1], hi))

    def _rweights(self, n: Node, name: str, r: np.ndarray, b: np.ndarray | None):
        """A recurrent product's FULLY_CONNECTED constants; for a layer in r16 also those of
        the residual the int8 grid loses (r minus r quantised per row as the file stores it),
        so that the two products together carry about 16 bits of each weight."""
        if n.outputs[0] not in self.r16:
            return self.weights(name, r, b), None
        # the scales quantize.fc_weight_scales gives the file (float32, per row)
        sw = symmetric_scale(np.asarray(r, np.float64)).astype(np.float32).astype(np.float64)
        sw = sw[:, None]
        grid = quantize_symmetric(r, sw).astype(np.float64) * sw
        rest = r.astype(np.float64) - grid
        # the main product holds r on its int8 grid, so that in the float graph (calibration,
        # the reference a measured choice is compared with) the two products add up to r, as
        # they do in the file; quantised again with the same row scales it gives the same
        # int8 weights
        return (self.weights(name, grid.astype(np.float32), b),
                self.weights(name + "/lo", rest.astype(np.float32), None))

    def _rfc(self, h: int, pair, name: str, role: str) -> int:
        """h times a recurrent weight pair (_rweights): one FULLY_CONNECTED, or with the
        residual two of them added (each with its own calibrated range)."""
        main, rest = pair
        if rest is None:
            return self.fc(h, main, name, role)
        hi = self.fc(h, main, name + "_hi", role + "_hi")
        lo = self.fc(h, rest, name + "_lo", role + "_lo")
        return self.elementwise("ADD", hi, lo, name, role)

    def _affine(self, n: Node, w: np.ndarray, b: np.ndarray | None):
        """Gate rows with HardSigmoid's a·z + b folded in (b only once: into the bias)."""
        hard = hard_sigmoid(n.attrs)
        if hard is None:
            return w, b
        a, beta = hard
        return a * w, (None if b is None else a * b + beta)

    def _gate(self, n: Node, pre: int, name: str, role: str) -> int:
        """sigmoid: LOGISTIC; HardSigmoid: pre already is a·z + b, clamped to [0, 1]."""
        clip = n.attrs.get("clip")
        hard = hard_sigmoid(n.attrs)
        if hard is None:
            if clip is not None:
                self._bound(pre, -clip, clip)
            return self.unary("LOGISTIC", pre, name, role)
        if clip is not None:
            a, beta = hard
            lo, hi = sorted((beta - a * clip, beta + a * clip))
            self._bound(pre, lo, hi)
        self._bound(pre, 0.0, 1.0)
        return pre

    def _clip(self, n: Node, pre: int) -> int:
        if n.attrs.get("clip") is not None:
            self._bound(pre, -n.attrs["clip"], n.attrs["clip"])
        return pre

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

    def _pack(self, hs: list[int], n: Node, k: int, role: str, loop: Loop | None) -> None:
        y = self.out(n, k)
        hsz = self.tg.tensors[hs[0]].shape[-1]
        packed = self.act(n.outputs[k] + "/packed", (1, self.t, 1, hsz), role)
        if loop is not None:
            loop.pack_op = len(self.tg.ops)
            self.loops.append(loop)
        self.op("PACK", hs, [packed], ValuesCount=len(hs), Axis=1)
        self.reshape(packed, self.shape_of(n.outputs[k]), n.outputs[k], y)

    def _loop(self, n: Node, streams: list[int], xs: list[list[int]], h0: int) -> Loop:
        ops = len(self.tg.ops)
        return Loop(streams, list(range(ops - len(streams), ops)), xs, h0, [], [], -1,
                    bool(n.attrs.get("reverse")))

    def _step_done(self, loop: Loop, start: int, h: int) -> None:
        loop.steps.append((start, len(self.tg.ops)))
        loop.hs.append(h)

    def _initial(self, n: Node, which: str, value: np.ndarray, name: str, role: str) -> int:
        """A layer's initial h or c [1, 1, H]: its constant, or (a graph run once per step)
        its elements of a state input, gathered."""
        hsz = value.shape[-1]
        src = n.attrs.get("state_inputs", {}).get(which)
        if src is None:
            return self.const(f"{name}/{which}0", value.reshape(1, 1, hsz), role)
        state, index = src
        row = np.asarray(index, np.int32).ravel()[:hsz]  # batch 1 (support.check)
        taken = self.act(f"{name}/{which}0_taken", (1, hsz))
        self.take(self.state_in[state], 1, row, taken, f"{name}/{which}0")
        return self.reshape(taken, (1, 1, hsz), f"{name}/{which}0",
                            self.act(f"{name}/{which}0", (1, 1, hsz), role))

    def _order(self, n: Node) -> list[int]:
        return list(range(self.t))[::-1] if n.attrs.get("reverse") else list(range(self.t))

    # -- LSTM ------------------------------------------------------------------------------
    def _lstm(self, n: Node) -> None:
        isz, hsz = self._sizes(n)
        if n.outputs[0] in self.unroll or fused_lstm_blocker(self.g, n) is not None:
            self._lstm_unrolled(n, hsz)
            return
        w, r, b, _, _, p = (self.g.tensors[i].data for i in n.inputs[1:])
        name = n.outputs[0]
        x = self.reshape(self.ir(n.inputs[0]), (1, self.t, isz), name + "/x")
        if n.attrs.get("reverse"):
            x = self._reverse(x, name + "/x_rev")
        gate = {k: slice(v * hsz, (v + 1) * hsz) for k, v in ONNX_LSTM.items()}
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
        self.idx[n.outputs[1]] = -1  # cell state: not read (checked above)

    def _lstm_unrolled(self, n: Node, hsz: int) -> None:
        """The LSTM as int8 builtins per step (what the fused op cannot express)."""
        w, r, b, h0, c0, _ = (self.g.tensors[i].data for i in n.inputs[1:])
        name = self.tag("lstm")
        keys = "io" if n.attrs.get("input_forget") else "iof"
        rows = np.concatenate([np.arange(ONNX_LSTM[k] * hsz, (ONNX_LSTM[k] + 1) * hsz)
                               for k in keys])
        cell = slice(3 * hsz, 4 * hsz)
        x = self.ir(n.inputs[0])
        wg, bg = self._affine(n, w[rows], b[rows])
        xg = self.fc(x, self.weights(name + "/xg", wg, bg), name + "/xg", name + ":xg")
        xc = self.fc(x, self.weights(name + "/xc", w[cell], b[cell]), name + "/xc",
                     name + ":xc")
        xgs = self._steps(xg, name + "/xg", len(keys) * hsz)
        xcs = self._steps(xc, name + "/xc", hsz)
        r_g = self._rweights(n, name + "/Rg", self._affine(n, r[rows], None)[0], None)
        r_c = self._rweights(n, name + "/Rc", r[cell], None)
        hrole, crole = "h:" + name, "c:" + name
        h = self._initial(n, "h", h0, name, hrole)
        c = self._initial(n, "c", c0, name, crole)
        one = self.const(name + "/one", np.ones((1, 1, 1), np.float32)) if len(keys) == 2 else -1
        axis = self.const(name + "/split_axis", np.array(2, dtype=np.int32))
        hs: list[int] = [0] * self.t
        cs: list[int] = [0] * self.t
        for t in self._order(n):
            s = f"{name}/{{}}{t}"
            pre = self.elementwise("ADD", xgs[t], self._rfc(h, r_g, s.format("hg"), name + ":hg"),
                                   s.format("g_pre"), name + ":g_pre")
            gates = self._gate(n, pre, s.format("g"), name + ":g")
            parts = [self.act(s.format(k), (1, 1, hsz), name + ":g") for k in keys]
            self.op("SPLIT", [axis, gates], parts, NumSplits=len(keys))
            gi, go = parts[0], parts[1]
            gf = (parts[2] if len(keys) == 3 else
                  self.elementwise("SUB", one, gi, s.format("f"), name + ":f"))
            cpre = self._clip(n, self.elementwise(
                "ADD", xcs[t], self._rfc(h, r_c, s.format("hc"), name + ":hc"),
                s.format("c_pre"), name + ":c_pre"))
            cand = self.unary("TANH", cpre, s.format("cand"), name + ":cand")
            keep = self.elementwise("MUL", gf, c, s.format("fc"), name + ":fc")
            new = self.elementwise("MUL", gi, cand, s.format("ig"), name + ":ig")
            c = self.elementwise("ADD", keep, new, s.format("c"), crole)
            tc = self.unary("TANH", c, s.format("tc"), name + ":tc")
            h = self.elementwise("MUL", go, tc, s.format("h"), hrole)
            hs[t], cs[t] = h, c
        self.finals[n.outputs[0]], self.finals[n.outputs[1]] = hs[-1], cs[-1]
        self._pack(hs, n, 0, hrole, None)
        if self.g.consumers(n.outputs[1]) or n.outputs[1] in self.g.outputs:
            self._pack(cs, n, 1, crole, None)
        else:
            self.idx[n.outputs[1]] = -1

    # -- vanilla RNN and GRU ---------------------------------------------------------------
    def _rnn(self, n: Node) -> None:
        _, hsz = self._sizes(n)
        w, r, b, h0 = (self.g.tensors[i].data for i in n.inputs[1:])
        name, act = self.tag("rnn"), n.attrs.get("act", "tanh")
        clip = n.attrs.get("clip")
        xw = self.fc(self.ir(n.inputs[0]), self.weights(name + "/xw", w, b), name + "/xw",
                     name + ":xw")
        xs = self._steps(xw, name + "/xw", hsz)
        rw = self._rweights(n, name + "/R", r, None)
        hrole = "h:" + name
        h = self._initial(n, "h", h0, name, hrole)
        loop = self._loop(n, [xw], [xs], h)
        hs: list[int] = [0] * self.t
        for t in self._order(n):
            start = len(self.tg.ops)
            rh = self._rfc(h, rw, f"{name}/rh{t}", name + ":rh")
            if act == "relu":
                h = self.elementwise("ADD", xs[t], rh, f"{name}/h{t}", hrole, relu=True)
                if clip is not None:  # relu(clamp(z)) = clamp(relu(z), 0, clip)
                    self._bound(h, 0.0, clip)
            else:
                pre = self._clip(n, self.elementwise("ADD", xs[t], rh, f"{name}/pre{t}",
                                                     name + ":pre"))
                h = self.unary("TANH" if act == "tanh" else "LOGISTIC", pre, f"{name}/h{t}",
                               hrole)
            hs[t] = h
            self._step_done(loop, start, h)
        self.finals[n.outputs[0]] = h
        self._pack(hs, n, 0, hrole, loop)

    def _gru(self, n: Node) -> None:
        _, hsz = self._sizes(n)
        w, r, wb, rb, h0 = (self.g.tensors[i].data for i in n.inputs[1:])
        name, lbr = self.tag("gru"), bool(n.attrs.get("linear_before_reset"))
        zr, hn = slice(0, 2 * hsz), slice(2 * hsz, 3 * hsz)
        x = self.ir(n.inputs[0])
        wzr, bzr = self._affine(n, w[zr], wb[zr] + rb[zr])
        xw_zr = self.fc(x, self.weights(name + "/xzr", wzr, bzr), name + "/xzr", name + ":xzr")
        xb = wb[hn] if lbr else wb[hn] + rb[hn]
        xw_n = self.fc(x, self.weights(name + "/xn", w[hn], xb), name + "/xn", name + ":xn")
        xzr = self._steps(xw_zr, name + "/xzr", 2 * hsz)
        xn = self._steps(xw_n, name + "/xn", hsz)
        r_zr = self._rweights(n, name + "/Rzr", self._affine(n, r[zr], None)[0], None)
        r_n = self._rweights(n, name + "/Rn", r[hn], rb[hn] if lbr else None)
        hrole = "h:" + name
        h = self._initial(n, "h", h0, name, hrole)
        axis = self.const(name + "/split_axis", np.array(2, dtype=np.int32))
        loop = self._loop(n, [xw_zr, xw_n], [xzr, xn], h)
        hs: list[int] = [0] * self.t
        for t in self._order(n):
            start = len(self.tg.ops)
            s = f"{name}/{{}}{t}"
            a = self.elementwise("ADD", xzr[t], self._rfc(h, r_zr, s.format("hzr"), name + ":hzr"),
                                 s.format("zr_pre"), name + ":zr_pre")
            gates = self._gate(n, a, s.format("zr"), name + ":zr")
            z, rg = (self.act(s.format(k), (1, 1, hsz), name + ":zr") for k in "zr")
            self.op("SPLIT", [axis, gates], [z, rg], NumSplits=2)
            if lbr:
                hh = self._rfc(h, r_n, s.format("hn"), name + ":hn")
                inner = self.elementwise("MUL", rg, hh, s.format("rhn"), name + ":rhn")
            else:
                rh = self.elementwise("MUL", rg, h, s.format("rh"), name + ":rh")
                inner = self._rfc(rh, r_n, s.format("hn"), name + ":hn")
            pre = self._clip(n, self.elementwise("ADD", xn[t], inner, s.format("n_pre"),
                                                 name + ":n_pre"))
            cand = self.unary("TANH", pre, s.format("n"), name + ":n")
            d = self.elementwise("SUB", h, cand, s.format("d"), name + ":d")
            zd = self.elementwise("MUL", z, d, s.format("zd"), name + ":zd")
            h = self.elementwise("ADD", cand, zd, s.format("h"), hrole)
            hs[t] = h
            self._step_done(loop, start, h)
        self.finals[n.outputs[0]] = h
        self._pack(hs, n, 0, hrole, loop)

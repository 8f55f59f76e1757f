"""C backend, planning: integer IR -> a `Plan` (arrays, params structs, state, buffer places,
one step's statements) that the templates print.

Python decides everything here (buffer placement, array contents, call sequence); the Jinja2
templates in templates/c only print. Two schedules:

- streaming models (every output at step t depends on inputs up to t): `_step` runs one
  timestep of every node; `_run` loops the per-step part and evaluates the head once. Buffers
  hold one step; the model input and recurrent states are used in place.
- whole-sequence models (a reverse recurrence): `_run` evaluates node after node over all
  steps, with buffers of MAX_STEPS steps; `_step` returns an error.

Buffers get arena slots by a linear scan over the node order (`arena.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

import numpy as np

from rnnq.backends.c.arena import ALIGN, Arena
from rnnq.backends.c.layouts import fused as has_fused
from rnnq.backends.c.layouts import fused_emitted, matvec_layout
from rnnq.backends.c.scratch import scratch_bytes
from rnnq.ir import Graph, Node
from rnnq.ir.ops import INT_RECURRENT, STATEFUL, VIEWS
from rnnq.ir.params import hi_path
from rnnq.sim.integer import state_formats

_WIDTH = {"int8": 1, "int16": 2, "int32": 4}  # bytes per value of an integer tensor
_CTYPE = {np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t",
          np.dtype(np.int32): "int32_t"}


@dataclass
class Array:
    ctype: str
    name: str
    values: np.ndarray

    @property
    def size(self) -> int:
        return int(self.values.size)

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)

    @property
    def body(self) -> str:
        flat = [str(int(v)) for v in np.asarray(self.values).ravel()]
        lines = [", ".join(flat[i : i + 16]) for i in range(0, len(flat), 16)]
        return ",\n    ".join(lines)


@dataclass
class Struct:
    ctype: str
    name: str
    fields: list[tuple[str, str]]


@dataclass
class Plan:
    prefix: str
    streaming: bool = True
    max_steps: int = 0
    arrays: list[Array] = field(default_factory=list)
    structs: list[Struct] = field(default_factory=list)
    state: list[tuple[str, str, int]] = field(default_factory=list)  # ctype, name, count
    resets: list[str] = field(default_factory=list)
    core: list[str] = field(default_factory=list)  # streaming: every step
    head: list[str] = field(default_factory=list)  # streaming: outputs "as if it ended now"
    whole: list[str] = field(default_factory=list)  # whole-sequence: the whole of _run
    loc: dict[str, tuple[str, bool]] = field(default_factory=dict)  # base, per-step buffer
    #: state inputs: C name -> {"input", "output", "ctype", "count", "lines" (set), "getter",
    #: "covered" (elements some state comes from)}
    setters: dict[str, dict] = field(default_factory=dict)
    arena_bytes: int = 0


def c_identifier(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s if re.match(r"[A-Za-z_]", s) else "m_" + s


def state_c_names(names: list[str]) -> dict[str, str]:
    """State input -> the C name of its _set_/_get_ functions: a C identifier, distinct from the
    others and from the whole-state functions' "state" (an input named "state" -> "state_in")."""
    out: dict[str, str] = {}
    for name in names:
        base = c_identifier(name)
        base = "state_in" if base == "state" else base
        c, k = base, 2
        while c in out.values():
            c, k = f"{base}_{k}", k + 1
        out[name] = c
    return out


def _params_struct(plan: Plan, kind: str, cname: str, params, matvec: str = "ref",
                   blocks: str | None = None, extra: dict | None = None) -> str:
    """Emit one kernel params struct (and its arrays) field for field from the dataclass; the
    matvec weight arrays in the layout the target's matvec variant reads (layouts.py), in the
    row blocks the kernel multiplies (matvec_blocks(blocks), by default those of `kind`);
    then the C struct's fields that no dataclass has (extra: name -> array, or None: NULL)."""
    items = []
    for f in fields(params):
        v = getattr(params, f.name)
        if isinstance(v, np.ndarray) and v.size == 0:
            items.append((f.name, "NULL"))
        elif isinstance(v, np.ndarray):
            laid = matvec_layout(matvec, blocks or kind, params, f.name, v)
            arr = Array(_CTYPE[laid.dtype], f"{cname}_{f.name}", laid)
            plan.arrays.append(arr)
            # int16 weight pairs (arm_dsp_w16) are int32 words, word-aligned, behind the
            # params' const int8_t * (char access; the variant reads them as int32)
            items.append((f.name, arr.name if laid.dtype == v.dtype else
                          f"(const {_CTYPE[v.dtype]} *)(const void *){arr.name}"))
        elif isinstance(v, str):
            items.append((f.name, f"RNNQ_BINARY_{v.upper()}"))
        else:
            items.append((f.name, str(int(v))))
    for name, v in (extra or {}).items():
        if v is None or v.size == 0:
            items.append((name, "NULL"))
        else:
            arr = Array(_CTYPE[v.dtype], f"{cname}_{name}", v)
            plan.arrays.append(arr)
            items.append((name, arr.name))
    plan.structs.append(Struct(f"rnnq_{kind}_params", cname, items))
    return cname


class _Emitter:
    """Builds the plan: state, constants, buffer locations and one step's statements."""

    def __init__(self, graph: Graph, prefix: str, max_steps: int, matvec: str = "ref",
                 recurrent: str = "vector"):
        self.g, self.prefix, self.matvec, self.recurrent = graph, prefix, matvec, recurrent
        self.streaming = bool(graph.meta.get("streaming", True))
        self.steps = 1 if self.streaming else max_steps
        self.p = Plan(prefix, streaming=self.streaming, max_steps=max_steps)
        self.arena = Arena()
        self.state_fmts = state_formats(graph)
        self.state_names = state_c_names(list(graph.meta.get("state_inputs", {})))

    # -- locations: a C pointer expression of a tensor's step-t value ------------------------
    def at(self, name: str, t: str = "t") -> str:
        base, per_step = self.p.loc[name]
        if not per_step or self.streaming:
            return base
        return f"({base} + (int32_t)({t}) * {self.g.tensors[name].size})"

    def new_buffer(self, name: str) -> str:
        t = self.g.tensors[name]
        per_step = t.kind == "seq" and not self.streaming
        nbytes = t.size * _WIDTH.get(t.dtype, 1) * (self.steps if per_step else 1)
        off = self.arena.alloc(nbytes, owner=name)
        base = (f"(({t.dtype}_t *)(void *)(a + {off}))" if t.dtype in ("int16", "int32")
                else f"(a + {off})")
        self.p.loc[name] = (base, per_step)
        return base

    def scratch(self, n: Node, fused: bool = False) -> str:
        """Scratch for one kernel call: an arena range free again after the node."""
        nbytes = scratch_bytes(n.op, n.attrs["params"], fused)
        if nbytes == 0:
            return "NULL"
        off = self.arena.alloc(nbytes)
        self.arena.release_scratch()
        return f"(int16_t *)(void *)(a + {off})"

    def state(self, ctype: str, name: str, count: int) -> str:
        self.p.state.append((ctype, name, count))
        return f"st->{name}"

    # -- nodes ---------------------------------------------------------------------------------
    def node(self, i: int, n: Node) -> None:
        cid = c_identifier(f"{self.prefix}_{n.op}{i}")
        out = self.g.tensors[n.outputs[0]]
        per_t = out.kind == "seq" or n.op in STATEFUL
        if n.op in VIEWS:
            base, per_step = self.p.loc[n.inputs[0]]
            if n.op == "reshape" or self.streaming:
                self.p.loc[n.outputs[0]] = (base, per_step)
            else:  # a whole-sequence buffer: the step it picks
                t = "0" if n.op == "first" else "n_steps - 1"
                self.p.loc[n.outputs[0]] = (self.at(n.inputs[0], t), False)
            return
        if n.op in INT_RECURRENT:
            self._recurrent(cid, n)
            return
        body: list[str] = []
        if n.op == "qmean_time":
            prm = n.attrs["params"]
            _params_struct(self.p, "mean_time", cid, prm)
            acc = self.state("int32_t", f"{cid}_acc", 2 * prm.size)  # int64 sums, halves
            self.p.resets.append(f"rnnq_mean_time_reset(&{cid}, {acc});")
            dst = self.new_buffer(n.outputs[0])
            body.append(f"rnnq_mean_time_step_s8(&{cid}, {self.at(n.inputs[0])}, {acc}, "
                        f"st->t, {dst});")
        else:
            self.new_buffer(n.outputs[0])
            body += self._stateless(cid, n)
        self._place(per_t, body, reverse=False)

    def _place(self, per_t: bool, body: list[str], reverse: bool) -> None:
        if self.streaming:
            (self.p.core if per_t else self.p.head).extend(body)
        elif per_t:
            head = ("for (t = n_steps - 1; t >= 0; --t) {" if reverse
                    else "for (t = 0; t < n_steps; ++t) {")
            counter = [] if reverse else ["st->t = t + 1;"]
            self.p.whole.extend([head, *["    " + s for s in counter + body], "}"])
        else:
            self.p.whole.extend(body)

    def _recurrent(self, cid: str, n: Node) -> None:
        prm = n.attrs["params"]
        kind = INT_RECURRENT[n.op]
        hsz = prm.hidden_size
        x = self.g.tensors[n.inputs[0]]
        batch = x.size // prm.input_size
        # the unit-major step where the target asks for it (kernels.recurrent) and one exists
        fused = self.recurrent == "fused" and has_fused(prm)
        if fused:  # the row constants interleaved in rowk, the separate arrays NULL
            emitted, rowk = fused_emitted(prm)
            _params_struct(self.p, kind, cid, emitted, self.matvec, f"{kind}_fused",
                           {"rowk": rowk})
        else:
            _params_struct(self.p, kind, cid, prm, self.matvec,
                           extra={"rowk": None} if kind in ("lstm", "gru") else None)
        h16 = getattr(prm, "state_bits", 8) == 16
        hw = 2 if h16 else 1  # bytes per h value
        h = self.state("int16_t" if h16 else "int8_t", f"{cid}_h", batch * hsz)
        c = self.state("int32_t", f"{cid}_c", batch * hsz) if n.op == "qlstm" else None
        self.p.resets.append(f"memcpy({h}, {cid}_h0, {hw * batch * hsz});")
        if c:
            self.p.resets.append(f"memcpy({c}, {cid}_c0, {4 * batch * hsz});")
        outs = [(n.outputs[0], h, hw * batch * hsz)]
        if c:
            outs.append((n.outputs[1], c, 4 * batch * hsz))
        copies = []
        if self.streaming:
            for name, ptr, _ in outs:
                self.p.loc[name] = (ptr, False)
        else:
            for name, ptr, nbytes in outs:
                if self.g.consumers(name) or name in self.g.outputs:
                    self.new_buffer(name)
                    copies.append(f"memcpy({self.at(name)}, {ptr}, {nbytes});")
        self._setters(n, batch, hsz, {"h": h, "c": c})
        scr = self.scratch(n, fused)
        state_args = f"{h} + b * {hsz}" + (f", {c} + b * {hsz}" if c else "")
        step = (("x16" if x.dtype == "int16" else "s8") + ("_h16" if h16 else "")
                + ("_fused" if fused else "_hi" if hi_path(prm) else ""))
        call = (f"rnnq_{kind}_step_{step}(&{cid}, {self.at(n.inputs[0])} + b * {prm.input_size}, "
                f"{state_args}, {scr});")
        body = [f"for (b = 0; b < {batch}; ++b) {{", "    " + call, "}", *copies]
        self._place(True, body, reverse=bool(n.attrs.get("reverse")))

    def _setters(self, n: Node, batch: int, hsz: int, ptrs: dict) -> None:
        """Code that loads (set) and reads back (get) the parts of state inputs that are this
        node's initial states: a memcpy per contiguous row, else a loop over an index map."""
        for which, (name, index) in n.attrs.get("state_inputs", {}).items():
            ctype = ("int32_t" if which == "c" else
                     "int16_t" if getattr(n.attrs["params"], "state_bits", 8) == 16 else "int8_t")
            fmt, info = self.state_fmts[name], self.g.meta["state_inputs"][name]
            count = int(np.prod(info["shape"]))
            entry = self.p.setters.setdefault(self.state_names[name], {
                "input": name, "output": info.get("output"), "ctype": fmt["ctype"],
                "lines": [], "getter": [], "count": count, "covered": np.zeros(count, bool)})
            entry["covered"][index] = True
            same = fmt["ctype"] == ctype
            width = _WIDTH[ctype[:-2]]
            dst = ptrs[which]
            for b in range(batch):
                row = np.asarray(index[b * hsz : (b + 1) * hsz])
                at = f"{dst} + {b * hsz}" if b else dst
                if same and np.array_equal(row, row[0] + np.arange(hsz)):
                    entry["lines"].append(f"memcpy({dst} + {b * hsz}, v + {row[0]}, "
                                          f"{hsz * width});")
                    entry["getter"].append(f"memcpy(v + {row[0]}, {at}, {hsz * width});")
                    continue
                arr = f"{self.prefix}_{self.state_names[name]}_{len(self.p.arrays)}_index"
                self.p.arrays.append(Array("int32_t", arr, row.astype(np.int32)))
                put = f"v[{arr}[k]]"
                lim = 1 << (8 * width - 1)  # the state's range; the input's may be wider
                narrow = (f"({ctype})({put} < -{lim} ? -{lim} : {put} > {lim - 1} ? {lim - 1} "
                          f": {put})" if not same else put)
                entry["lines"].append(f"for (k = 0; k < {hsz}; ++k) {{ ({dst})[{b * hsz} + k] = "
                                      f"{narrow}; }}")
                entry["getter"].append(f"for (k = 0; k < {hsz}; ++k) {{ {put} = "
                                    f"({dst})[{b * hsz} + k]; }}")

    def _stateless(self, cid: str, n: Node) -> list[str]:
        out = self.g.tensors[n.outputs[0]]
        dst = self.at(n.outputs[0])
        src = self.at(n.inputs[0])
        prm = n.attrs.get("params")
        kind = {"int16": "s16", "int32": "s32"}.get(self.g.tensors[n.inputs[0]].dtype, "s8")
        if n.op == "qdense":
            _params_struct(self.p, "dense", cid, prm, self.matvec)
            return [(f"rnnq_dense_{kind}(&{cid}, {src}, {dst}, {out.size // prm.out_features}, "
                    f"{self.scratch(n)});")]
        if n.op == "qmagnitude":
            _params_struct(self.p, "magnitude", cid, prm)
            ops = [self.at(i) for i in n.inputs] + ["NULL"] * (3 - len(n.inputs))
            return [f"rnnq_magnitude_{kind}(&{cid}, {', '.join(ops)}, {dst}, {out.size});"]
        if n.op == "qbinary":
            b = self.g.tensors[n.inputs[1]]
            other = self.at(n.inputs[1]) if b.kind != "const" else f"{cid}_b"
            if b.kind == "const":
                self.p.arrays.append(Array("int8_t", f"{cid}_b",
                                           np.broadcast_to(b.data, out.shape).ravel()))
            _params_struct(self.p, "binary", cid, prm)
            return [f"rnnq_binary_s8(&{cid}, {src}, {other}, {dst}, {out.size});"]
        if n.op == "qlut":
            self.p.arrays.append(Array("int8_t", f"{cid}_table", n.attrs["table"]))
            return [f"rnnq_lut_s8({cid}_table, {src}, {dst}, {out.size});"]
        if n.op == "qsoftmax":
            _params_struct(self.p, "softmax", cid, prm)
            return [f"rnnq_softmax_s8(&{cid}, {src}, {dst}, {out.size // prm.depth});"]
        if n.op == "qrequant":
            _params_struct(self.p, "requant", cid, prm)
            to = "s16" if out.dtype == "int16" else "s8"
            return [f"rnnq_requant_{kind}_{to}(&{cid}, {src}, {dst}, {out.size});"]
        if n.op == "qembed":
            _params_struct(self.p, "embed", cid, prm)
            rows = out.size // prm.dim
            return [f"for (b = 0; b < {rows}; ++b) {{",
                    f"    rnnq_embed_s8(&{cid}, {src}[b], {dst} + b * {prm.dim});", "}"]
        if n.op == "take":
            idx = n.attrs["index"].astype(np.int32)
            self.p.arrays.append(Array("int32_t", f"{cid}_index", idx))
            if n.attrs.get("fill"):
                zp = int(self.g.tensors[n.inputs[0]].q.zero_point)
                return [f"rnnq_take_fill_{kind}({cid}_index, {idx.size}, {src}, {dst}, {zp});"]
            return [f"rnnq_take_{kind}({cid}_index, {idx.size}, {src}, {dst});"]
        if n.op == "concat":
            return self._concat(n, dst)
        raise AssertionError(f"C backend has no op {n.op}")

    def _concat(self, n: Node, dst: str) -> list[str]:
        axis = n.attrs["axis"]
        out = self.g.tensors[n.outputs[0]]
        outer = int(np.prod(out.shape[:axis], dtype=np.int64))
        width = _WIDTH.get(out.dtype, 1)  # bytes per value (offsets count values)
        total = out.size // outer
        lines, off = [], 0
        for name in n.inputs:
            piece = self.g.tensors[name].size // outer
            src = self.at(name)
            if outer == 1:
                lines.append(f"memcpy({dst} + {off}, {src}, {piece * width});")
            else:
                lines.append(f"for (b = 0; b < {outer}; ++b) {{")
                lines.append(f"    memcpy({dst} + b * {total} + {off}, {src} + b * {piece}, "
                             f"{piece * width});")
                lines.append("}")
            off += piece
        return lines


def plan(graph: Graph, prefix: str, max_steps: int, matvec: str = "ref",
         recurrent: str = "vector") -> Plan:
    """Place buffers and build the call sequence (matvec, recurrent: the target's
    kernels.matvec and kernels.recurrent)."""
    em = _Emitter(graph, prefix, max_steps, matvec, recurrent)
    x = graph.tensors[graph.inputs[0]]
    em.p.loc[x.name] = ("x_t" if em.streaming else "x", not em.streaming)
    order = _order(graph) if em.streaming else graph.nodes
    last_use = {name: i for i, n in enumerate(order) for name in n.inputs}
    for o in graph.outputs:
        last_use[o] = len(order)
    for i, n in enumerate(order):
        em.node(i, n)
        em.arena.release_dead(lambda name, i=i: _dead(order, last_use, name, i))
    em.p.arena_bytes = em.arena.top
    # state inputs in the model's order (the harness and manifest.json use that order)
    em.p.setters = {c: em.p.setters[c] for c in em.state_names.values() if c in em.p.setters}
    return em.p


def state_bytes(p: Plan) -> int:
    """Bytes of the <prefix>_state struct: the step counter and the state arrays (int32 first,
    so no inner padding), rounded up to 4."""
    size = {"int32_t": 4, "int16_t": 2, "int8_t": 1}
    n = 4 + sum(k * size[ct] for ct, _, k in p.state)
    return n + -n % 4


def ram_bytes(graph: Graph, prefix: str, max_steps: int, matvec: str = "ref",
              recurrent: str = "vector") -> int:
    """Arena and state bytes of a C build of graph: its RAM before stack and static data, known
    without building (what --precision auto weighs against a RAM budget)."""
    p = plan(graph, prefix, max_steps, matvec, recurrent)
    return max(p.arena_bytes, ALIGN) + state_bytes(p)


def _dead(order: list[Node], last_use: dict, name: str, i: int) -> bool:
    """A buffer is free once every alias of it has had its last use."""
    names = {name}
    grew = True
    while grew:
        grew = False
        for n in order:
            if n.op in VIEWS and n.inputs[0] in names and \
                    n.outputs[0] not in names:
                names.add(n.outputs[0])
                grew = True
    return max(last_use.get(a, -1) for a in names) <= i


def _order(graph: Graph) -> list[Node]:
    """Streaming: per-step nodes (seq outputs, state updates) first, then the head."""
    core = [n for n in graph.nodes
            if graph.tensors[n.outputs[0]].kind == "seq" or n.op in STATEFUL]
    return core + [n for n in graph.nodes if n not in core]

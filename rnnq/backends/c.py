"""C backend: integer IR + target -> template contexts -> files.

Python decides everything here (buffer placement, array contents, call sequence); the Jinja2
templates in templates/c only print. Buffer plan: the model input and LSTM hidden states are
used in place (no copies); `reshape`/`last` alias their input; every other per-step tensor and
kernel scratch gets an arena slot by a linear scan over one step's node order.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path

import jinja2
import numpy as np

from rnnq import __version__
from rnnq.ir import Graph, Node, RnnqError
from rnnq.resources import templates_dir
from rnnq.targets import Target

_CTYPE = {np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t",
          np.dtype(np.int32): "int32_t"}
RUNTIME_FILES = ("rnnq_fixedpoint.h", "rnnq_tables.h", "rnnq_kernels.h", "rnnq_kernels.c")
_ALIGN = 4


@dataclass
class _Array:
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
        flat = [str(int(v)) for v in self.values.ravel()]
        lines = [", ".join(flat[i : i + 16]) for i in range(0, len(flat), 16)]
        return ",\n    ".join(lines)


@dataclass
class _Struct:
    ctype: str
    name: str
    fields: list[tuple[str, str]]


@dataclass
class _Plan:
    prefix: str
    arrays: list[_Array] = field(default_factory=list)
    structs: list[_Struct] = field(default_factory=list)
    state: list[tuple[str, str, int]] = field(default_factory=list)  # ctype, name, count
    resets: list[str] = field(default_factory=list)
    core: list[str] = field(default_factory=list)
    head: list[str] = field(default_factory=list)
    loc: dict[str, str] = field(default_factory=dict)
    arena_bytes: int = 0


def c_identifier(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s if re.match(r"[A-Za-z_]", s) else "m_" + s


def _params_struct(plan: _Plan, kind: str, cname: str, params) -> str:
    """Emit one kernel params struct (and its arrays) field for field from the dataclass."""
    items = []
    for f in fields(params):
        v = getattr(params, f.name)
        if isinstance(v, np.ndarray) and v.size == 0:
            items.append((f.name, "NULL"))
        elif isinstance(v, np.ndarray):
            arr = _Array(_CTYPE[v.dtype], f"{cname}_{f.name}", v)
            plan.arrays.append(arr)
            items.append((f.name, arr.name))
        elif isinstance(v, str):
            items.append((f.name, f"RNNQ_BINARY_{v.upper()}"))
        else:
            items.append((f.name, str(int(v))))
    plan.structs.append(_Struct(f"rnnq_{kind}_params", cname, items))
    return cname


class _Arena:
    """Linear-scan allocator over one step's node order."""

    def __init__(self) -> None:
        self.free: list[tuple[int, int]] = []  # (offset, size)
        self.top = 0

    def alloc(self, size: int) -> int:
        size = -(-size // _ALIGN) * _ALIGN
        for i, (off, sz) in enumerate(self.free):
            if sz >= size:
                self.free[i] = (off + size, sz - size)
                return off
        off, self.top = self.top, self.top + size
        return off

    def release(self, off: int, size: int) -> None:
        self.free.append((off, -(-size // _ALIGN) * _ALIGN))
        self.free.sort()
        merged: list[tuple[int, int]] = []
        for o, s in self.free:
            if merged and merged[-1][0] + merged[-1][1] == o:
                merged[-1] = (merged[-1][0], merged[-1][1] + s)
            else:
                merged.append((o, s))
        self.free = merged


def _order(graph: Graph) -> tuple[list[Node], list[Node]]:
    core = [n for n in graph.nodes if graph.tensors[n.outputs[0]].kind == "seq"]
    head = [n for n in graph.nodes if graph.tensors[n.outputs[0]].kind == "final"]
    return core, head


def plan(graph: Graph, prefix: str) -> _Plan:
    """Place buffers and build the call sequence of one step."""
    p = _Plan(prefix)
    core, head = _order(graph)
    p.loc[graph.inputs[0]] = "x_t"
    arena = _Arena()
    slot: dict[str, tuple[int, int]] = {}
    last_use: dict[str, int] = {}
    order = core + head
    for i, n in enumerate(order):
        for name in n.inputs:
            last_use[name] = i
    for o in graph.outputs:
        last_use[o] = len(order)
    root: dict[str, str] = {}  # alias -> tensor that owns the buffer

    def owner(name: str) -> str:
        while name in root:
            name = root[name]
        return name

    for i, n in enumerate(order):
        out = graph.tensors[n.outputs[0]]
        ins = [p.loc.get(x) for x in n.inputs]
        body = p.core if out.kind == "seq" else p.head
        cid = c_identifier(f"{prefix}_{n.op}{i}")
        if n.op in ("reshape", "last"):
            p.loc[out.name] = ins[0]
            root[out.name] = n.inputs[0]
        elif n.op == "qlstm":
            prm = n.attrs["params"]
            h, c = f"st->{cid}_h", f"st->{cid}_c"
            p.state += [("int16_t", f"{cid}_c", prm.hidden_size),
                        ("int8_t", f"{cid}_h", prm.hidden_size)]
            _params_struct(p, "lstm", cid, prm)
            p.resets.append(f"rnnq_lstm_reset_s8(&{cid}, {h}, {c});")
            scr = arena.alloc(8 * prm.hidden_size)
            body.append(f"rnnq_lstm_step_s8(&{cid}, {ins[0]}, {h}, {c}, "
                        f"(int16_t *)(void *)(a + {scr}));")
            arena.release(scr, 8 * prm.hidden_size)
            p.loc[out.name] = h
        else:
            off = arena.alloc(out.size)
            slot[out.name] = (off, out.size)
            dst = f"(a + {off})"
            p.loc[out.name] = dst
            if n.op == "qdense":
                prm = n.attrs["params"]
                _params_struct(p, "dense", cid, prm)
                body.append(f"rnnq_dense_s8(&{cid}, {ins[0]}, {dst}, "
                            f"{out.size // prm.out_features});")
            elif n.op == "qbinary":
                b = graph.tensors[n.inputs[1]]
                if b.kind == "const":
                    arr = _Array("int8_t", f"{cid}_b", np.broadcast_to(b.data, out.shape).ravel())
                    p.arrays.append(arr)
                    ins[1] = arr.name
                _params_struct(p, "binary", cid, n.attrs["params"])
                body.append(f"rnnq_binary_s8(&{cid}, {ins[0]}, {ins[1]}, {dst}, {out.size});")
            elif n.op == "qlut":
                p.arrays.append(_Array("int8_t", f"{cid}_table", n.attrs["table"]))
                body.append(f"rnnq_lut_s8({cid}_table, {ins[0]}, {dst}, {out.size});")
            elif n.op == "qsoftmax":
                prm = n.attrs["params"]
                _params_struct(p, "softmax", cid, prm)
                body.append(f"rnnq_softmax_s8(&{cid}, {ins[0]}, {dst}, {out.size // prm.depth});")
            elif n.op == "take":
                idx = n.attrs["index"].astype(np.int32)
                p.arrays.append(_Array("int32_t", f"{cid}_index", idx))
                body.append(f"rnnq_take_s8({cid}_index, {idx.size}, {ins[0]}, {dst});")
            else:
                raise AssertionError(f"C backend has no op {n.op}")
        for name in set(n.inputs):
            own = owner(name)
            if own in slot and max(last_use.get(a, -1) for a in _aliases(root, own)) <= i:
                arena.release(*slot.pop(own))
    p.arena_bytes = arena.top
    return p


def _aliases(root: dict[str, str], own: str) -> list[str]:
    out = [own]
    changed = True
    while changed:
        changed = False
        for a, r in root.items():
            if r in out and a not in out:
                out.append(a)
                changed = True
    return out


def _context(graph: Graph, target: Target, prefix: str, p: _Plan, io: dict) -> dict:
    outs = []
    off = 0
    run_off = "0"  # C expression: where this output starts in _run's y
    for name in graph.outputs:
        t = graph.tensors[name]
        outs.append({"name": name, "loc": p.loc[name], "size": t.size, "seq": t.kind == "seq",
                     "offset": off, "run_offset": run_off, "q": io["outputs"][len(outs)]})
        off += t.size
        run_off += f" + (int32_t)n_steps * {t.size}" if t.kind == "seq" else f" + {t.size}"
    p.state.sort(key=lambda e: e[0] != "int16_t")  # int16 arrays first: no inner padding
    state_bytes = sum(n * (2 if ct == "int16_t" else 1) for ct, _, n in p.state)
    if any(ct == "int16_t" for ct, _, _ in p.state):
        state_bytes += state_bytes % 2  # the struct's size is a multiple of its alignment
    meta = graph.meta
    return {
        "version": __version__, "target": target.name, "prefix": prefix, "PREFIX": prefix.upper(),
        "model_hash": meta.get("model_sha256", "")[:16], "model_name": meta.get("model_path", ""),
        "input_size": graph.tensors[graph.inputs[0]].size, "output_size": off, "outputs": outs,
        "arena_bytes": max(p.arena_bytes, _ALIGN), "state_bytes": max(state_bytes, 1),
        "state": p.state, "resets": p.resets, "core": p.core, "head": p.head,
        "arrays": p.arrays, "structs": p.structs, "input_q": io["input"],
        "has_seq_output": any(o["seq"] for o in outs),
        "cc": target["toolchain"]["cc"], "ar": target["toolchain"]["ar"],
        "cflags": " ".join(target["toolchain"]["cflags"]),
        "ldflags": " ".join(target["toolchain"]["ldflags"]),
        "runtime": RUNTIME_FILES,
    }


def emit_c(graph: Graph, target: Target, out_dir: Path, prefix: str, io: dict) -> dict:
    """Write the C sources for `graph` into out_dir; returns facts for manifest.json."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
        raise RnnqError(f"--prefix {prefix!r} is not a C identifier")
    p = plan(graph, prefix)
    ctx = _context(graph, target, prefix, p, io)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir() / "c")),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    files = {"model.h": "model.h.j2", "model.c": "model.c.j2", "weights.c": "weights.c.j2",
             "harness.c": "harness.c.j2", "Makefile": "Makefile.j2"}
    for out, tpl in files.items():
        (out_dir / out).write_text(env.get_template(tpl).render(**ctx))
    for f in RUNTIME_FILES:
        shutil.copyfile(templates_dir() / "c" / "runtime" / f, out_dir / f)
    return {"files": sorted(list(files) + list(RUNTIME_FILES)),
            "weight_bytes": sum(a.nbytes for a in p.arrays),
            "arena_bytes": ctx["arena_bytes"], "state_bytes": ctx["state_bytes"],
            "input_size": ctx["input_size"], "output_size": ctx["output_size"]}

"""rnnq's intermediate representation: a topologically sorted graph of per-timestep tensors.

Every activation tensor is described *per timestep*: ``shape`` omits the time axis (and keeps the
ONNX batch dimension of 1). ``kind`` says how it lives in time:

- ``seq``:   one value per timestep (e.g. an LSTM's Y);
- ``final``: a value meaningful at the end of the sequence (e.g. Y_h, Y[-1]). rnnq evaluates it
  "as if the sequence ended now", so it too has one value per step; ``_run`` returns only the
  last, ``_step`` returns the current one;
- ``const``: a constant (weights, tables).

Evaluators (sim/) hold activations as arrays [N, T, *shape].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from rnnq.ir.ops import GATE_BLOCKS, OPS, recurrent_kind


class Stage(str, Enum):
    FLOAT = "float"
    CALIBRATED = "calibrated"
    INTEGER = "integer"


class RnnqError(Exception):
    """A user-facing error: one line, names the node/file and what is wrong (exit status 2)."""


@dataclass
class QParams:
    """Affine quantisation real = scale * (q - zero_point); per-tensor or per-channel on `axis`."""

    scale: np.ndarray  # float64, shape () or [C]
    zero_point: np.ndarray  # int64, same shape
    axis: int | None = None  # per-step axis of the channels, None = per-tensor


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    kind: str  # "seq" | "final" | "const"
    dtype: str = "float32"
    data: np.ndarray | None = None
    time_axis: int | None = None  # ONNX axis that carries time (seq tensors, import only)
    q: QParams | None = None
    range: tuple[float, float] | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class Node:
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # the ONNX node this came from, for messages


@dataclass
class Graph:
    tensors: dict[str, Tensor]
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    stage: Stage = Stage.FLOAT
    meta: dict[str, Any] = field(default_factory=dict)

    def producer(self, name: str) -> Node | None:
        for n in self.nodes:
            if name in n.outputs:
                return n
        return None

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    def verify(self) -> Graph:
        """Check the invariants every pass must keep: known ops, sorted, every name defined."""
        defined = set(self.inputs) | {t.name for t in self.tensors.values() if t.kind == "const"}
        for name in self.inputs:
            if name not in self.tensors:
                raise AssertionError(f"graph input {name} has no tensor")
        for n in self.nodes:
            if n.op not in OPS:
                raise AssertionError(f"unknown IR op {n.op}")
            nin, nout = OPS[n.op]
            if (nin >= 0 and len(n.inputs) != nin) or (nout >= 0 and len(n.outputs) != nout):
                raise AssertionError(f"{n.op} {n.name}: wrong arity")
            for i in n.inputs:
                if i not in defined:
                    raise AssertionError(f"{n.op} {n.name}: input {i} used before definition")
            for o in n.outputs:
                if o not in self.tensors:
                    raise AssertionError(f"{n.op} {n.name}: output {o} has no tensor")
                defined.add(o)
        for o in self.outputs:
            if o not in defined:
                raise AssertionError(f"graph output {o} is never produced")
        return self

    def prune(self) -> Graph:
        """Drop nodes and tensors that no graph output depends on."""
        live = set(self.outputs)
        keep: list[Node] = []
        for n in reversed(self.nodes):
            if any(o in live for o in n.outputs):
                keep.append(n)
                live.update(n.inputs)
                live.update(n.outputs)
        self.nodes = keep[::-1]
        live.update(self.inputs)
        self.tensors = {k: v for k, v in self.tensors.items() if k in live}
        return self

    def text(self) -> str:
        """Human-readable listing (rnnq inspect)."""
        lines = [f"graph ({self.stage.value}): inputs {self.inputs} -> outputs {self.outputs}"]
        for name in self.inputs:
            t = self.tensors[name]
            lines.append(f"  input  {name}: {t.kind}{list(t.shape)} {t.dtype}{_q(t)}")
        for n in self.nodes:
            ins = ", ".join(_short(self.tensors[i]) for i in n.inputs)
            outs = ", ".join(_short(self.tensors[o]) for o in n.outputs)
            lines.append(f"  {n.op:<9} {outs} <- {ins}   [{n.name}]")
        return "\n".join(lines)


def _q(t: Tensor) -> str:
    if t.q is None:
        return ""
    if np.ndim(t.q.scale) == 0:
        return f" (scale {float(t.q.scale):.4g}, zp {int(t.q.zero_point)})"
    return f" (per-channel scale on axis {t.q.axis})"


def _short(t: Tensor) -> str:
    if t.kind == "const":
        return f"{t.name}:const{list(t.shape)}"
    return f"{t.name}:{t.kind}{list(t.shape)}{t.dtype.replace('float32', 'f32')}{_q(t)}"


def static_time(g: Graph) -> int | None:
    """The model input's fixed number of timesteps, or None when the time axis is symbolic."""
    dims = g.meta.get("input_full_shape") or []
    axis = g.meta.get("input_time_axis")
    t = dims[axis] if dims and axis is not None else None  # one step per call: any number
    return t if t else None


def node_macs(g: Graph, n: Node) -> int:
    """Multiply-accumulates of node n in one timestep (recurrent and dense layers; 0 else)."""
    p = n.attrs.get("params")
    kind = recurrent_kind(n.op)
    if kind is not None:
        h = p.hidden_size if p else g.tensors[n.inputs[2]].shape[1]
        i = p.input_size if p else g.tensors[n.inputs[1]].shape[1]
        batch = g.tensors[n.inputs[0]].size // i
        return batch * GATE_BLOCKS[kind] * h * (i + h)
    if n.op in ("dense", "qdense"):
        out = g.tensors[n.outputs[0]]
        k = p.in_features if p else g.tensors[n.inputs[1]].shape[1]
        return out.size * k
    return 0


def macs_per_step(g: Graph) -> int:
    """Multiply-accumulates of one timestep (recurrent and dense layers), float or integer IR."""
    return sum(node_macs(g, n) for n in g.nodes)

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


#: op -> (number of inputs, number of outputs); -1 = variadic. Float ops first, integer ops after.
OPS: dict[str, tuple[int, int]] = {
    # float IR
    # recurrent: x [B, I] per step; attrs hidden, reverse, clip, gate_act / act
    "lstm": (7, 2),  # x, W[4H,I], R[4H,H], B[4H], h0[B,H], c0[B,H], P[3H] -> y, c; gates i,o,f,c
    "gru": (6, 1),  # x, W[3H,I], R[3H,H], Wb[3H], Rb[3H], h0[B,H] -> y; gates z,r,h
    "rnn": (5, 1),  # x, W[H,I], R[H,H], B[H], h0[B,H] -> y
    "dense": (3, 1),  # x[..., K], W[N, K], b[N] -> [..., N]
    "add": (2, 1),
    "sub": (2, 1),
    "mul": (2, 1),
    "relu": (1, 1),
    "sigmoid": (1, 1),
    "tanh": (1, 1),
    "softmax": (1, 1),  # over the last per-step axis
    # layout (float and integer alike)
    "reshape": (1, 1),  # same elements, same order: an alias
    "take": (1, 1),  # out.flat = in.flat[attrs["index"]]
    "last": (1, 1),  # seq -> final: the value at the current (last) step
    "first": (1, 1),  # seq -> final: the value at step 0 (whole-sequence models only)
    "concat": (-1, 1),  # attrs["axis"] (per-step axis)
    "mean_time": (1, 1),  # seq -> final: running mean over the steps so far
    "embed": (2, 1),  # ids (int, seq) , table const [V, E] -> rows
    # integer IR
    "qlstm": (1, 2),  # x int8 -> y int8, c int16 (params in attrs["params"])
    "qdense": (1, 1),
    "qbinary": (2, 1),  # add / mul of two int8 tensors with requantisation
    "qlut": (1, 1),  # int8 -> int8 through a 256-entry table
    "qsoftmax": (1, 1),
    "qgru": (1, 1),
    "qrnn": (1, 1),
    "qrequant": (1, 1),  # int16/int8 -> int8 (RequantParams)
    "qmean_time": (1, 1),
    "qembed": (1, 1),
}


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

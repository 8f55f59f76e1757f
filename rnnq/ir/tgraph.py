"""The TFLite-level graph: what `--format tflite` lowers to, writes and reads back, and what
the LiteRT profile of the simulator runs (float for calibration, integer as the specification).

One op list serves every reader — the lowering and quantisation (backends/tflite), the
flatbuffer writer and reader, the bit-exact simulator of LiteRT's kernels (sim/litert) — so the
file and its specification cannot drift.
Tensors carry TFLite's quantisation (float32 scale, int zero point, optional per-axis scales);
scales are kept as float32 because that is what the file stores and what LiteRT derives its
multipliers from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: UNIDIRECTIONAL_SEQUENCE_LSTM's inputs (TFLite's lstm::full indices): x, then W for gates
#: i, f, c, o (TFLite's gate order), R for the same gates, peepholes cell-to-i/f/o, gate biases,
#: projection weights and bias, the h and c variables, layer-norm coefficients.
LSTM_GATES = "ifco"
LSTM_PEEPHOLES = {"i": 0, "f": 1, "o": 2}
LSTM_X, LSTM_W0, LSTM_R0, LSTM_P0, LSTM_B0 = 0, 1, 5, 9, 12
LSTM_PROJ_W, LSTM_PROJ_B, LSTM_H_STATE, LSTM_C_STATE, LSTM_LN0 = 16, 17, 18, 19, 20

DTYPES = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
          "float32": np.float32, "uint8": np.uint8, "bool": np.bool_}


@dataclass
class TTensor:
    """One tensor; `data` set means a constant (weights, biases, shape/axis operands)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: Any = None          # float32 scalar, or float32 array with `qdim` for per-axis
    zero_point: Any = None     # int, or int array for per-axis
    qdim: int = 0
    data: np.ndarray | None = None
    variable: bool = False     # LiteRT state tensors (the LSTM's h and c)
    clamp: tuple[float, float] | None = None  # float bounds the quantisation range implements

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def scales(self) -> np.ndarray:
        return np.atleast_1d(np.asarray(self.scale, dtype=np.float32))

    def zero_points(self) -> np.ndarray:
        return np.atleast_1d(np.asarray(0 if self.zero_point is None else self.zero_point,
                                        dtype=np.int64))


@dataclass
class TOp:
    """One builtin operator; `options` are the builtin options' fields by schema name."""

    kind: str                  # BuiltinOperator name, e.g. "FULLY_CONNECTED"
    inputs: list[int]          # tensor indices; -1 marks an absent optional input
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)
    intermediates: list[int] = field(default_factory=list)


@dataclass
class TGraph:
    tensors: list[TTensor] = field(default_factory=list)
    ops: list[TOp] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    description: str = "rnnq"
    subgraphs: list[TGraph] = field(default_factory=list)  # file subgraph k = subgraphs[k - 1]

    def add(self, tensor: TTensor) -> int:
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def const(self, name: str, data: np.ndarray, **quant: Any) -> int:
        data = np.array(data, order="C")  # (ascontiguousarray would make a scalar 1-D)
        dtype = {np.dtype(v): k for k, v in DTYPES.items()}[data.dtype]
        return self.add(TTensor(name, dtype, tuple(data.shape), data=data, **quant))

    def op(self, kind: str, inputs: list[int], outputs: list[int], **options: Any) -> TOp:
        node = TOp(kind, list(inputs), list(outputs), options)
        self.ops.append(node)
        return node

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.ops:
            counts[node.kind] = counts.get(node.kind, 0) + 1
        return counts


def compact(g: TGraph) -> TGraph:
    """Drop tensors no operator, input or output refers to; renumber the rest in order."""
    used = set(g.inputs) | set(g.outputs)
    for node in g.ops:
        used.update(i for i in (*node.inputs, *node.outputs, *node.intermediates) if i >= 0)
    keep = sorted(used)
    new = {old: k for k, old in enumerate(keep)}
    g.tensors = [g.tensors[i] for i in keep]
    for node in g.ops:
        node.inputs = [new[i] if i >= 0 else -1 for i in node.inputs]
        node.outputs = [new[i] for i in node.outputs]
        node.intermediates = [new[i] for i in node.intermediates]
    g.inputs = [new[i] for i in g.inputs]
    g.outputs = [new[i] for i in g.outputs]
    return g

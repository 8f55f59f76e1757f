"""What a LiteRT-profile kernel sees: the graph, the number of batch-folded sequences, the
variable tensors, optional taps, and a way to run a subgraph (WHILE).

Batch folding: every array's dim 0 is N times the declared dim 0, so N independent sequences
run in one call (LiteRT runs them one `invoke()` each, with variables reset in between). Kernels
therefore take shapes from their arrays, never from the declared dim 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnq.ir.tgraph import DTYPES, TGraph, TOp, TTensor


@dataclass
class Ctx:
    graph: TGraph
    n: int                                   # sequences folded into dim 0
    float_mode: bool = False
    state: dict[int, np.ndarray] = field(default_factory=dict)   # variable tensors
    taps: dict[int, np.ndarray] | None = None  # kernels may record internals here (by tensor)
    #: run(graph, feeds, n=..., float_mode=...) -> outputs: how WHILE runs its subgraphs
    run: Callable[..., Any] | None = None

    def tensor(self, index: int) -> TTensor:
        return self.graph.tensors[index]


#: A kernel: (context, op, input arrays with None for absent inputs) -> output arrays.
Kernel = Callable[[Ctx, TOp, list], list]


def folded(t: TTensor) -> bool:
    """Whether a tensor carries per-sequence data (batch-folded); int32 and bool tensors are
    indices, counters and conditions shared by all sequences."""
    return bool(t.shape) and t.dtype not in ("int32", "bool")


def initial_variable(graph: TGraph, index: int, n: int) -> np.ndarray:
    """What LiteRT's reset_all_variables() leaves in a variable tensor: its zero point."""
    t = graph.tensors[index]
    shape = (t.shape[0] * n, *t.shape[1:])
    zp = int(t.zero_points()[0]) if t.quantized and t.dtype == "int8" else 0
    return np.full(shape, zp, dtype=DTYPES[t.dtype])


def qparams(ctx: Ctx, index: int) -> tuple[np.float32, int]:
    """A per-tensor quantised tensor's (scale as float32, zero point)."""
    t = ctx.tensor(index)
    return np.float32(t.scales()[0]), int(t.zero_points()[0])


def to_int8(x: np.ndarray) -> np.ndarray:
    """Saturate to int8."""
    return np.clip(x, -128, 127).astype(np.int8)

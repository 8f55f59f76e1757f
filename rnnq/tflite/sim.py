"""Evaluate a `TGraph`: in float (for calibration and lowering checks) or with the integer
semantics of LiteRT's builtin kernels (the "litert" profile, the specification `.tflite` files
are held to with exact equality).

Batch folding: every array's dim 0 is N times the declared dim 0, so N independent sequences
run in one call (LiteRT runs them one `invoke()` each, with variables reset in between). Kernels
therefore take shapes from their arrays, never from the declared dim 0; the runner checks every
result against the declared shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rnnq.tflite.graph import DTYPES, TGraph, TOp

Kernel = Callable[["Ctx", TOp, list], list]
KERNELS: dict[str, Kernel] = {}        # integer kernels (LiteRT semantics)
FLOAT_KERNELS: dict[str, Kernel] = {}  # float32 reference kernels (same graph, float tensors)


def kernel(kind: str, *, float_version: bool = False) -> Callable[[Kernel], Kernel]:
    """Register an evaluator for one builtin operator."""
    def deco(fn: Kernel) -> Kernel:
        (FLOAT_KERNELS if float_version else KERNELS)[kind] = fn
        return fn
    return deco


def kernel_both(kind: str) -> Callable[[Kernel], Kernel]:
    """Register one evaluator as the integer and the float kernel (ops that only move data)."""
    def deco(fn: Kernel) -> Kernel:
        KERNELS[kind] = FLOAT_KERNELS[kind] = fn
        return fn
    return deco


@dataclass
class Ctx:
    graph: TGraph
    n: int                                   # sequences folded into dim 0
    float_mode: bool = False
    state: dict[int, np.ndarray] = field(default_factory=dict)   # variable tensors
    taps: dict[int, np.ndarray] | None = None  # kernels may record internals here (by tensor)

    def tensor(self, index: int):
        return self.graph.tensors[index]


def _ensure_kernels() -> None:
    # Kernel modules register themselves on import.
    from rnnq.tflite import (  # noqa: F401
        kernels,
        kernels_control,
        lstm,
    )


def initial_variable(graph: TGraph, index: int, n: int) -> np.ndarray:
    """What LiteRT's reset_all_variables() leaves in a variable tensor: its zero point."""
    t = graph.tensors[index]
    shape = (t.shape[0] * n, *t.shape[1:])
    zp = int(t.zero_points()[0]) if t.quantized and t.dtype == "int8" else 0
    return np.full(shape, zp, dtype=DTYPES[t.dtype])


def folded(t) -> bool:
    """Whether a tensor carries per-sequence data (batch-folded); int32 and bool tensors are
    indices, counters and conditions shared by all sequences."""
    return bool(t.shape) and t.dtype not in ("int32", "bool")


def run(graph: TGraph, feeds: list[np.ndarray], *, float_mode: bool = False,
        keep: bool = False, observe: Callable[[int, np.ndarray], None] | None = None,
        n: int | None = None) -> list[np.ndarray] | dict[int, np.ndarray]:
    """Run the graph on batch-folded `feeds` (one array per graph input).

    Returns the graph outputs, or with `keep` every tensor's value by index. `observe(index,
    value)` sees every op result (calibration uses it instead of keeping every tensor).
    """
    _ensure_kernels()
    table = FLOAT_KERNELS if float_mode else KERNELS
    if n is None:
        first = next(k for k, i in enumerate(graph.inputs) if folded(graph.tensors[i]))
        n = feeds[first].shape[0] // graph.tensors[graph.inputs[first]].shape[0]
    ctx = Ctx(graph, n, float_mode)
    values: dict[int, np.ndarray] = {}
    for i, t in enumerate(graph.tensors):
        if t.data is not None:
            values[i] = t.data
        elif t.variable:
            ctx.state[i] = (np.zeros((t.shape[0] * n, *t.shape[1:]), np.float32) if float_mode
                            else initial_variable(graph, i, n))
    for i, x in zip(graph.inputs, feeds, strict=True):
        values[i] = x
    for op in graph.ops:
        fn = table.get(op.kind)
        if fn is None:
            raise NotImplementedError(f"no {'float' if float_mode else 'integer'} kernel for "
                                      f"{op.kind}")
        args = [None if i < 0 else (ctx.state[i] if i in ctx.state else values[i])
                for i in op.inputs]
        outs = fn(ctx, op, args)
        unfolded = all(i < 0 or graph.tensors[i].data is not None for i in op.inputs)
        for i, v in zip(op.outputs, outs, strict=True):
            t = graph.tensors[i]
            want = (t.shape[0] * n, *t.shape[1:]) if folded(t) else tuple(t.shape)
            if unfolded and folded(t) and n > 1:  # from constants only: alike for every sequence
                v = np.repeat(v, n, axis=0)
            if float_mode and t.clamp is not None:  # integer graphs clamp by saturation
                v = np.clip(v, *t.clamp).astype(v.dtype)
            if tuple(v.shape) != want:
                raise AssertionError(f"{op.kind} -> {t.name}: shape {v.shape}, declared {want}")
            values[i] = v
            if observe is not None:
                observe(i, v)
    if keep:
        return values
    return [values[i] for i in graph.outputs]

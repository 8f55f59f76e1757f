"""Evaluate a `TGraph`: in float32 (calibration, lowering checks) or with the integer semantics
of LiteRT's builtin kernels (the "litert" profile, the specification `.tflite` files are held
to with exact equality).

The kernel tables are written here, once: one evaluator per builtin operator and mode, from
the kernel modules. Before an integer op runs, `constraints` checks it as LiteRT's Prepare
would; the kernels only compute.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rnnq.ir.tgraph import TGraph
from rnnq.sim.litert import arith, control, layout, lstm, wide
from rnnq.sim.litert.constraints import problem
from rnnq.sim.litert.context import Ctx, Kernel, folded, initial_variable

#: Ops that only move values: one evaluator serves the integer and the float graph.
_MOVES: dict[str, Kernel] = {
    "CONCATENATION": layout.concatenation, "SPLIT": layout.split, "UNPACK": layout.unpack,
    "PACK": layout.pack, "RESHAPE": layout.reshape, "PAD": layout.pad, "REVERSE_V2": layout.reverse_v2,
    "STRIDED_SLICE": layout.strided_slice, "GATHER": control.gather,
    "DYNAMIC_UPDATE_SLICE": control.dynamic_update_slice, "LESS": control.less,
    "WHILE": control.while_loop,
}


def _by_width(narrow: Kernel, wide_kernel: Kernel, operand: str = "output") -> Kernel:
    """The int16 kernel where the op's output (or, with operand "any", any of its quantised
    tensors) is int16, else the int8 one."""
    def dispatch(ctx: Ctx, op, args: list) -> list:
        ids = op.outputs if operand == "output" else [*op.inputs[:1], *op.outputs]
        return (wide_kernel if any(wide.is_wide(ctx, i) for i in ids) else narrow)(ctx, op, args)
    return dispatch


#: The integer kernels (LiteRT's semantics).
KERNELS: dict[str, Kernel] = {
    **_MOVES,
    "FULLY_CONNECTED": _by_width(arith.fully_connected, wide.fully_connected),
    "ADD": control.int32_or(_by_width(arith.add, wide.add), np.add),
    "SUB": _by_width(arith.sub, wide.sub),
    "MUL": control.int32_or(_by_width(arith.mul, wide.mul), np.multiply),
    "LOGISTIC": _by_width(arith.logistic, wide.logistic),
    "TANH": _by_width(arith.tanh, wide.tanh), "SOFTMAX": arith.softmax,
    "MEAN": arith.mean, "RELU": control.relu, "LEAKY_RELU": arith.leaky_relu,
    "QUANTIZE": _by_width(layout.quantize, wide.requantize, "any"),
    "DEQUANTIZE": layout.dequantize,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": lstm.lstm_int8x8_16,
}
#: The float32 kernels (the same graph with float tensors).
FLOAT_KERNELS: dict[str, Kernel] = {
    **_MOVES,
    "FULLY_CONNECTED": arith.fully_connected_float,
    "ADD": control.int32_or(arith.add_float, np.add), "SUB": arith.sub_float,
    "MUL": control.int32_or(arith.mul_float, np.multiply),
    "LOGISTIC": arith.logistic_float, "TANH": arith.tanh_float,
    "SOFTMAX": arith.softmax_float, "MEAN": arith.mean_float, "RELU": control.relu_float,
    "LEAKY_RELU": arith.leaky_relu_float,
    "QUANTIZE": layout.passthrough_float, "DEQUANTIZE": layout.passthrough_float,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": lstm.lstm_float,
}


def run(graph: TGraph, feeds: list[np.ndarray], *, float_mode: bool = False,
        keep: bool = False, observe: Callable[[int, np.ndarray], None] | None = None,
        n: int | None = None, fake: dict[int, Callable] | None = None
        ) -> list[np.ndarray] | dict[int, np.ndarray]:
    """Run the graph on batch-folded `feeds` (one array per graph input).

    Returns the graph outputs, or with `keep` every tensor's value by index. `observe(index,
    value)` sees every op result (calibration uses it instead of keeping every tensor);
    `fake[index]` replaces an op result (or a constant: weights) by a function of it (fake
    quantisation of a float graph).
    """
    table = FLOAT_KERNELS if float_mode else KERNELS
    if n is None:
        first = next(k for k, i in enumerate(graph.inputs) if folded(graph.tensors[i]))
        n = feeds[first].shape[0] // graph.tensors[graph.inputs[first]].shape[0]
    ctx = Ctx(graph, n, float_mode, run=run)
    values: dict[int, np.ndarray] = {}
    for i, t in enumerate(graph.tensors):
        if t.data is not None:
            values[i] = fake[i](t.data) if fake and i in fake else t.data
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
        found = None if float_mode else problem(graph, op, strict=False)
        if found is not None:
            raise ValueError(f"{op.kind}: {found}")
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
            if fake and i in fake:
                v = fake[i](v).astype(v.dtype)
            if tuple(v.shape) != want:
                raise AssertionError(f"{op.kind} -> {t.name}: shape {v.shape}, declared {want}")
            values[i] = v
            if observe is not None:
                observe(i, v)
    if keep:
        return values
    return [values[i] for i in graph.outputs]

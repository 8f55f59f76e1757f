"""The op kinds and groups of rnnq/ir/ops.py are the one registry every stage follows: each IR
op has its arity, its groups are consistent, and every stage that must handle an op has a
handler for it (float reference, quantiser, integer simulator, C planner, tflite lowering)."""

from __future__ import annotations

import inspect

from rnnq.backends.c import plan
from rnnq.backends.tflite.support import LOWERED_OPS
from rnnq.frontend.onnx.recurrent import ONNX_RECURRENT
from rnnq.ir import ops
from rnnq.passes.quantize import QUANTIZERS
from rnnq.sim import float_ref
from rnnq.sim.integer import NODES

FLOAT_OPS = {op for op in ops.OPS if not op.startswith("q")}
INT_OPS = {op for op in ops.OPS if op.startswith("q")} | ops.LAYOUT


def test_groups_name_known_ops() -> None:
    for group in (ops.RECURRENT, ops.INT_RECURRENT, ops.GATE_BLOCKS, ops.VIEWS, ops.REARRANGE,
                  ops.LAYOUT, ops.STATEFUL, ops.BINARY, ops.UNARY, ops.ELEMENTWISE, ops.LINEAR):
        assert set(group) <= set(ops.OPS), set(group) - set(ops.OPS)


def test_recurrent_groups_agree() -> None:
    assert set(ops.GATE_BLOCKS) == set(ops.RECURRENT) == set(ONNX_RECURRENT.values())
    for kind, int_op in ops.RECURRENT.items():
        assert ops.INT_RECURRENT[int_op] == kind
        assert ops.recurrent_kind(kind) == ops.recurrent_kind(int_op) == kind
    assert ops.recurrent_kind("dense") is None
    assert ops.VIEWS < ops.REARRANGE < ops.LAYOUT
    assert set(ops.RECURRENT) | set(ops.INT_RECURRENT) <= ops.STATEFUL


def test_every_float_op_is_quantised_or_passes_through() -> None:
    assert set(QUANTIZERS) | ops.LAYOUT == FLOAT_OPS


def test_every_integer_op_has_a_simulator_kernel() -> None:
    assert set(NODES) == INT_OPS


def test_every_float_op_has_a_float_reference() -> None:
    assert set(float_ref.NODES) == FLOAT_OPS


def test_every_integer_op_is_planned_for_c() -> None:
    src = inspect.getsource(plan)
    assert [op for op in INT_OPS - set(ops.INT_RECURRENT) - ops.VIEWS
            if f'"{op}"' not in src] == []


def test_tflite_lowers_every_float_op_it_claims() -> None:
    from rnnq.backends.tflite.lower import _Lower

    assert LOWERED_OPS <= FLOAT_OPS
    assert [op for op in LOWERED_OPS if not hasattr(_Lower, "_" + op)] == []


def test_hard_sigmoid_is_read_in_one_place() -> None:
    assert ops.hard_sigmoid({}) is None
    assert ops.hard_sigmoid({"gate_act": ("sigmoid",)}) is None
    assert ops.hard_sigmoid({"gate_act": ("hardsigmoid", 0.2, 0.5)}) == (0.2, 0.5)

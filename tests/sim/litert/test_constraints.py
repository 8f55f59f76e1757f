"""sim/litert/constraints.py: what LiteRT's Prepare refuses is found before anything runs — a
one-line error when rnnq writes the file (backends/tflite/emit.check), a ValueError naming the op
in the simulator — never an internal error inside LiteRT at validate time."""

from __future__ import annotations

import numpy as np
import pytest

from rnnq.backends.tflite.emit import check
from rnnq.ir import RnnqError
from rnnq.ir.tgraph import TGraph, TTensor
from rnnq.sim.litert.constraints import first_problem, problem
from rnnq.sim.litert.interpreter import run


def _t(g: TGraph, name: str, scale: float, zp: int = 0, shape=(1, 4), dtype="int8") -> int:
    return g.add(TTensor(name, dtype, shape, scale=np.float32(scale), zero_point=zp))


def _binary(kind: str, s_a: float, s_b: float, s_y: float) -> TGraph:
    g = TGraph()
    a, b, y = _t(g, "a", s_a), _t(g, "b", s_b), _t(g, "y", s_y)
    g.op(kind, [a, b], [y], FusedActivationFunction=0)
    g.inputs, g.outputs = [a, b], [y]
    return g


def test_add_output_multiplier_must_be_below_one() -> None:
    assert problem(*_two(_binary("ADD", 0.1, 0.1, 0.05))) is None
    g = _binary("ADD", 1.0, 1.0, 1e-7)  # 2 * 1 / (2^20 * 1e-7) > 1
    assert "multiplier below 1" in problem(*_two(g))
    with pytest.raises(RnnqError, match=r"^op 0 \(ADD -> y\): int8 ADD: .* LiteRT cannot run"):
        check(g, float_io=False)
    x = np.zeros((1, 4), np.int8)
    with pytest.raises(ValueError, match="ADD"):
        run(g, [x, x])


def _two(g: TGraph):
    return g, g.ops[0]


def test_concatenation_needs_one_quantisation() -> None:
    g = TGraph()
    a, b = _t(g, "a", 0.1), _t(g, "b", 0.2)
    y = _t(g, "y", 0.1, shape=(1, 8))
    g.op("CONCATENATION", [a, b], [y], Axis=1, FusedActivationFunction=0)
    assert "b differs from y" in problem(*_two(g))
    g.tensors[b].scale = np.float32(0.1)
    assert problem(*_two(g)) is None
    g.ops[0].options["FusedActivationFunction"] = 1
    assert "no fused activation" in problem(*_two(g))


def test_fixed_output_quantisation_of_logistic() -> None:
    g = TGraph()
    x, y = _t(g, "x", 0.1), _t(g, "y", 1 / 256, -128)
    g.op("LOGISTIC", [x], [y])
    assert problem(*_two(g)) is None
    g.tensors[y].zero_point = 0
    assert "zero point -128" in problem(*_two(g))


def test_fully_connected_bias_scale() -> None:
    g = TGraph()
    x, y = _t(g, "x", 0.1), _t(g, "y", 0.2, shape=(1, 2))
    w = g.const("w", np.ones((2, 4), np.int8), scale=np.float32([0.5, 0.25]),
                zero_point=np.zeros(2, np.int64), qdim=0)
    b = g.const("b", np.zeros(2, np.int32), scale=np.float32([0.05, 0.025]),
                zero_point=np.zeros(2, np.int64), qdim=0)
    g.op("FULLY_CONNECTED", [x, w, b], [y], FusedActivationFunction=0, KeepNumDims=True)
    assert problem(*_two(g)) is None
    g.tensors[b].scale = np.float32([0.05, 0.03])
    assert "s_in * s_w" in problem(*_two(g))


def test_scales_must_be_finite_and_positive() -> None:
    g = _binary("MUL", 0.1, 0.1, 0.1)
    g.tensors[2].scale = np.float32(np.inf)
    assert "finite and > 0" in problem(*_two(g))


def test_problems_in_a_while_body_name_the_body_tensor() -> None:
    g = TGraph()
    g.subgraphs = [_binary("ADD", 1.0, 1.0, 1e-7)]
    sub, k, op, what = first_problem(g)
    assert sub is g.subgraphs[0] and k == 0 and op.kind == "ADD" and "multiplier" in what

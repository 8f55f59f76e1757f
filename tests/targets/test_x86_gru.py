"""GRUs through the x86 targets' AVX2 element-wise code (rnnq_kernels.c: eight rows per
iteration of requantisation in intrinsics, one table load per lookup from rnnq_tanh_pairs)
against the integer simulator, exactly: sizes that are multiples of neither 8 nor 16 (I = 13,
H = 45: vector loops with scalar tails), both linear_before_reset forms, an int8 and an int16
state, one sequence of one step and sequences of lengths 1 .. T through `_run`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx import numpy_helper as nh

from rnnq.api import compile_model, validate
from rnnq.targets import host_cpu_lacks, load_target
from tests.conftest import require_tool

I, H, T = 13, 45, 11


def _gru(path: Path, lbr: int, seed: int) -> Path:
    """x [T, 1, I] -> GRU -> Y_h -> Reshape -> Gemm (4): a streaming model (symbolic T)."""
    r = np.random.default_rng(seed)
    k = 1.0 / np.sqrt(H)

    def c(name: str, a) -> onnx.TensorProto:
        return nh.from_array(np.asarray(a, np.float32), name)

    inits = [c("W", r.uniform(-k, k, (1, 3 * H, I))), c("R", r.uniform(-k, k, (1, 3 * H, H))),
             c("B", r.uniform(-k, k, (1, 6 * H))), c("Wd", r.uniform(-k, k, (4, H))),
             c("bd", r.uniform(-k, k, 4)), nh.from_array(np.array([1, H], np.int64), "shape")]
    nodes = [oh.make_node("GRU", ["x", "W", "R", "B"], ["Y", "Y_h"], hidden_size=H,
                          linear_before_reset=lbr),
             oh.make_node("Reshape", ["Y_h", "shape"], ["h"]),
             oh.make_node("Gemm", ["h", "Wd", "bd"], ["y"], transB=1)]
    g = oh.make_graph(nodes, "gru", [oh.make_tensor_value_info("x", TP.FLOAT, ["T", 1, I])],
                      [oh.make_tensor_value_info("y", TP.FLOAT, [1, 4])], inits)
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


@pytest.mark.parametrize("target", ["x86-64", "x86-64-vnni"])
@pytest.mark.parametrize("precision", ["int8", "int16"])
@pytest.mark.parametrize("lbr", [0, 1])
def test_x86_gru_13x45_is_exact(target: str, precision: str, lbr: int, tmp_path: Path) -> None:
    require_tool("gcc")
    lacking = host_cpu_lacks(load_target(target))
    if lacking:
        pytest.skip(f"this CPU lacks {', '.join(lacking)} to run the build")
    r = np.random.default_rng(7 + lbr)
    model = _gru(tmp_path / "gru.onnx", lbr, 3 + lbr)
    np.savez(tmp_path / "calib.npz", x=r.standard_normal((8, 30, I)).astype(np.float32))
    build = tmp_path / "b"
    compile_model(model, tmp_path / "calib.npz", build, target, "m", precision=precision)
    # lengths 1 .. T (1 and T included), and one sequence of a single step
    lengths = np.concatenate([[1, T], r.integers(1, T + 1, 10)])
    x = (2 * r.standard_normal((len(lengths), T, I))).astype(np.float32)
    np.savez(tmp_path / "test.npz", x=x, lengths=lengths)
    np.savez(tmp_path / "one.npz", x=x[:1, :1])
    for data in ("test.npz", "one.npz"):
        rep = validate(build, tmp_path / data)
        assert rep["c"]["bit_exact"] and rep["c"]["mismatches"] == 0, (data, rep["c"])
        assert rep["c"]["compared_values"] > 0

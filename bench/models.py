"""The benchmark models: one recurrent layer and a Linear head on its last step, built with
onnx.helper from a fixed seed, and their random calibration data.

Graph (what PyTorch's exporter writes for `nn.LSTM`/`nn.GRU` + `nn.Linear` on `y[-1]`):
x [T, 1, I] -> LSTM|GRU -> Y_h [1, 1, H] -> Reshape [1, H] -> Gemm -> logits [1, CLASSES].
The time dimension is symbolic, so rnnq compiles it as a streaming model (`_step`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx import helper as oh

#: (input, hidden) sizes of the CMSIS-NN comparison
SIZES = ((8, 16), (40, 64), (64, 128))
CLASSES = 10
GATES = {"lstm": 4, "gru": 3}
CALIB_N = 16  # calibration sequences
CALIB_T = 50  # their length (= the benchmark's T)


@dataclass(frozen=True)
class BenchModel:
    kind: str  # "lstm" or "gru"
    inp: int
    hidden: int

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.inp}x{self.hidden}"

    @property
    def seed(self) -> int:
        return {"lstm": 0, "gru": 1}[self.kind] * 1000 + self.inp * 7 + self.hidden

    @property
    def recurrent_macs(self) -> int:
        """MACs of one step of the recurrent layer alone (no head)."""
        return GATES[self.kind] * self.hidden * (self.inp + self.hidden)

    @property
    def head_macs(self) -> int:
        return CLASSES * self.hidden


def all_models() -> list[BenchModel]:
    return [BenchModel(k, i, h) for k in ("lstm", "gru") for i, h in SIZES]


def _init(name: str, a: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


def build_onnx(m: BenchModel) -> onnx.ModelProto:
    """Random weights U(+-1/sqrt(H)) (PyTorch's default init), seed from the model."""
    r = np.random.default_rng(m.seed)
    g, h, i = GATES[m.kind], m.hidden, m.inp
    k = 1.0 / np.sqrt(h)

    def u(*shape: int) -> np.ndarray:
        return r.uniform(-k, k, shape)

    inits = [_init("W", u(1, g * h, i)), _init("R", u(1, g * h, h)), _init("B", u(1, 2 * g * h)),
             _init("Wd", u(CLASSES, h)), _init("bd", u(CLASSES)),
             numpy_helper.from_array(np.array([1, h], np.int64), "shape")]
    attrs = {"hidden_size": h}
    if m.kind == "gru":
        attrs["linear_before_reset"] = 1  # as PyTorch exports nn.GRU
    nodes = [
        oh.make_node(m.kind.upper(), ["x", "W", "R", "B"], ["Y", "Y_h"], name="rnn", **attrs),
        oh.make_node("Reshape", ["Y_h", "shape"], ["h_last"], name="reshape"),
        oh.make_node("Gemm", ["h_last", "Wd", "bd"], ["logits"], name="head", transB=1),
    ]
    graph = oh.make_graph(
        nodes, m.name, [oh.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, i])],
        [oh.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES])], inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)],
                          producer_name="rnnq-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def calib_data(m: BenchModel) -> np.ndarray:
    """Calibration x [N, T, I]: standard normal, seeded."""
    r = np.random.default_rng(m.seed + 1)
    return r.standard_normal((CALIB_N, CALIB_T, m.inp)).astype(np.float32)


def write(m: BenchModel, folder: Path) -> tuple[Path, Path]:
    """model.onnx and calib.npz of m in folder."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path, calib_path = folder / "model.onnx", folder / "calib.npz"
    onnx.save(build_onnx(m), str(onnx_path))
    np.savez(calib_path, x=calib_data(m))
    return onnx_path, calib_path

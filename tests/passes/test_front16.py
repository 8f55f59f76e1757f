"""The 16-bit front end and the graph rewrites it relies on (passes/quantize.py,
passes/canonicalize.py): where int16 stops, the magnitude fusion, ReLU and constant affines
(BatchNormalization) folded into a Conv through its output reordering, and the int8 forms of
the same ops (--input-bits 8), each bit-exact in C."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "frontend"))

from onnx_cases import Net, check_float, random_sequence, write_data

from rnnq.api import compile_model, float_graph, open_graphs, validate
from tests.conftest import require_tool

T, L = 6, 40


def _lstm_head(n: Net, y: str, size: int) -> list[str]:
    f = n.unsqueeze(n.op("Flatten", y, axis=1), 1)
    return [n.squeeze(n.lstm(f, size, outputs=("", "Y_h"))[1], 0)]


def _conv(n: Net, x: str, cin: int, cout: int, k: int, **attrs) -> str:
    return n.op("Conv", x, n.w(cout, cin, k, scale=0.3), n.w(cout, scale=0.1), **attrs)


def _magnitude_model(n: Net, squares: int) -> list[str]:
    """[T, 1, L] -> Conv to 2*4 channels -> sqrt of `squares` squared slices -> LSTM."""
    y = _conv(n, "x", 1, 8, 4, strides=[2])  # [T, 8, 19]
    parts = [n.slice(y, [2 * i], [2 * i + 2], [1]) for i in range(squares)]
    two = n.c(2.0)
    acc = n.op("Pow", parts[0], two)
    for p in parts[1:]:
        acc = n.op("Add", acc, n.op("Pow", p, two))
    return _lstm_head(n, n.op("Sqrt", acc), 2 * 19)


def _build(tmp: Path, outputs_fn, **kw) -> tuple[Path, dict, Path]:
    require_tool("cc")
    n = Net(seed=3)
    model = n.save(tmp / "m.onnx", ["T", 1, L], outputs_fn(n))
    calib = write_data(tmp / "calib.npz", 8, T, L, 0)
    test = write_data(tmp / "test.npz", 4, T, L, 1)
    m = compile_model(model, calib, tmp / "b", "host", "m", **kw)
    rep = validate(tmp / "b", test)
    assert rep["c"]["bit_exact"] and rep["c"]["compared_values"] > 0, rep["c"]
    return model, m, tmp / "b"


@pytest.mark.parametrize("squares, fused", [(1, True), (2, True), (3, True), (4, False)])
def test_sqrt_of_squares_becomes_one_magnitude(tmp_path: Path, squares: int, fused: bool):
    """1-3 squares: one magnitude op (uint32 sum in C); 4 could overflow it: tables remain."""
    n = Net(seed=3)
    model = n.save(tmp_path / "m.onnx", ["T", 1, L], _magnitude_model(n, squares))
    ops = [x.op for x in float_graph(model).nodes]
    assert ("magnitude" in ops) == fused
    assert ("sqrt" in ops) == (not fused) and ("square" in ops) == (not fused)


@pytest.mark.parametrize("bits, dtype, kernel", [("auto", "int16", "rnnq_magnitude_s16"),
                                                 ("8", "int8", "rnnq_magnitude_s8")])
def test_magnitude_front_end_bit_exact_in_both_widths(tmp_path: Path, bits, dtype, kernel):
    _, m, build = _build(tmp_path, lambda n: _magnitude_model(n, 2), input_bits=bits)
    assert m["input"]["dtype"] == dtype
    assert kernel in (build / "model.c").read_text()


def test_relu_after_conv_reordering_fuses_into_the_conv(tmp_path: Path) -> None:
    n = Net(seed=3)
    y = n.op("Relu", _conv(n, "x", 1, 4, 3, pads=[1, 1]))
    model = n.save(tmp_path / "m.onnx", ["T", 1, L], _lstm_head(n, y, 4 * L))
    g = float_graph(model)
    assert "relu" not in [x.op for x in g.nodes]
    assert [x.attrs.get("relu") for x in g.nodes if x.op == "dense"] == [True]


def test_front_end_stays_int16_until_a_layer_too_wide_for_the_accumulator(tmp_path) -> None:
    """K = 8 * 80 = 640 > 516: that Conv reads int8 (a requantisation before it) while the
    Conv in front of it stays int16; both bit-exact, the input int16."""
    def model(n: Net) -> list[str]:
        a = n.op("Relu", _conv(n, "x", 1, 8, 3, pads=[1, 1]))  # [T, 8, 40], K = 3
        b = _conv(n, a, 8, 4, 80, pads=[20, 20])  # K = 640
        return _lstm_head(n, b, 4 * 1)

    _, m, build = _build(tmp_path, model)
    assert m["input"]["dtype"] == "int16"
    ig = open_graphs(build)[2]
    dense = [x for x in ig.nodes if x.op == "qdense"]
    widths = [ig.tensors[x.inputs[0]].dtype for x in dense]
    assert widths == ["int16", "int8"]
    assert ig.tensors[dense[0].outputs[0]].dtype == "int16"
    assert any(x.op == "qrequant" for x in ig.nodes)


def test_16bit_conv_output_is_more_accurate(tmp_path: Path) -> None:
    """A Conv front end's output against the float model: 16 bits well above 8 bits (the
    per-layer SQNR of the Conv's output tensor)."""
    def model(n: Net) -> list[str]:
        return _lstm_head(n, n.op("Relu", _conv(n, "x", 1, 6, 5, strides=[2])), 6 * 18)

    r = {}
    for bits in ("8", "16"):
        tmp = tmp_path / bits
        tmp.mkdir()
        _, _, build = _build(tmp, model, input_bits=bits)
        rows = validate(build, tmp / "test.npz", per_layer=True)["per_layer"]["tensors"]
        r[bits] = next(x["sqnr_db"] for x in rows if x["op"] == "qdense")
    print(f"conv output: {r['8']:.1f} dB (8-bit) -> {r['16']:.1f} dB (16-bit)")
    assert r["16"] > r["8"] + 6.0  # int8 weights bound both


def _ops_after(tmp: Path, build) -> list[str]:
    n = Net(seed=5)
    model = n.save(tmp / "m.onnx", ["T", 2, 12], build(n))
    check_float(model, random_sequence(model))  # the folds keep the float model's values
    return [x.op for x in float_graph(model).nodes]


def test_batch_norm_folds_into_the_conv(tmp_path: Path) -> None:
    def build(n: Net) -> list[str]:
        y = _conv(n, "x", 2, 3, 3, pads=[1, 1])
        bn = n.op("BatchNormalization", y, n.c([1.5, 0.7, -1.1]), n.c([0.1, -0.2, 0.3]),
                  n.c([0.3, -0.1, 0.2]), n.c([0.5, 2.0, 1.0]), epsilon=1e-3)
        return _lstm_head(n, n.op("Relu", bn), 3 * 12)

    ops = _ops_after(tmp_path, build)
    assert "mul" not in ops and "add" not in ops and "relu" not in ops
    assert ops.count("dense") == 1


def test_constant_add_is_not_folded_across_zero_padding(tmp_path: Path) -> None:
    """Conv -> Pad 0 -> + c: folding c into the bias would put c where the padding is 0; a
    Mul by a constant folds (0 * c = 0), the Add stays."""
    def build(n: Net) -> list[str]:
        y = n.op("Pad", _conv(n, "x", 2, 3, 3), n.ints(0, 0, 2, 0, 0, 1), n.c(0.0))
        scaled = n.op("Mul", y, n.c(np.array([[2.0], [0.5], [-1.0]], np.float32)))
        return _lstm_head(n, n.op("Add", scaled, n.c(np.array([[1.0], [-1.0], [0.5]],
                                                               np.float32))), 3 * 13)

    ops = _ops_after(tmp_path, build)
    assert "mul" not in ops and ops.count("add") == 1


def test_constant_that_varies_within_a_channel_is_not_folded(tmp_path: Path) -> None:
    def build(n: Net) -> list[str]:
        y = _conv(n, "x", 2, 3, 3, pads=[1, 1])
        return _lstm_head(n, n.op("Add", y, n.w(3, 12)), 3 * 12)  # one value per position

    assert _ops_after(tmp_path, build).count("add") == 1

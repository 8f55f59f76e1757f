"""Models as exporters write them: the ONNX files in tests/fixtures/ (tools/make_fixtures.py).

PyTorch (torch.onnx.export, dynamo=False, opset 17) nn.LSTM / nn.GRU / nn.RNN (tanh, relu),
1-2 layers, uni- and bidirectional, batch_first True and False, heads on the last step of Y,
on h_n, or on the mean over time; and Keras LSTM classifiers written the way tf2onnx writes them
(symbolic batch, Transpose to time-major, zero initial states from Shape/Gather/ConstantOfShape
or Expand, explicit activations incl. HardSigmoid(0.2, 0.5), Y_h -> Squeeze -> MatMul + Add ->
Softmax).

For every fixture:
- rnnq's float reference == onnxruntime (<= 1e-5) on random sequences, each run at its own
  length. onnxruntime does not run recurrences with layout=1; no fixture has one (both exporters
  write layout 0 plus Transposes), so onnxruntime checks every fixture here. Fixtures with a
  static time dimension are compared at that length only.
- the fixture, run by onnxruntime, == its source: PyTorch's own module (rebuilt from its seed;
  needs torch), or a numpy implementation of Keras' LSTM for the Keras ones; and
  tools/make_fixtures.py rebuilds the committed files byte for byte.
- compiled for target "host" (ASan/UBSan) and validated on random variable-length data
  (`lengths`; padding filled with 50.0, which must not matter): the C is bit-exact against the
  integer simulator, and the integer-vs-float SQNR is printed and bounded (at the end of each
  sequence, and per timestep for streaming models).

The opset-11 Keras file and its opset-13 twin both cover the HardSigmoid numerics (the
opset-11 one also constant folding with the model's own opset).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper
from onnx import helper as oh
from variants_common import (
    FIXTURES,
    assert_bit_exact,
    compile_and_validate,
    load_make_fixtures,
    require_host_toolchain,
    require_torch,
    save_npz,
)

from rnnq.api import float_graph
from rnnq.data import at_last_step
from rnnq.sim.float_ref import run_float

MF = load_make_fixtures()
NAMES = MF.ALL_NAMES
ORT_ATOL = 1e-5
#: float reference vs the source framework (float32 there)
SOURCE_ATOL = 1e-5
N_CALIB, N_TEST, T_DATA = 32, 12, 20
MAX_FIXTURE_BYTES = 100_000
#: Integer vs float SQNR of the classifier output at each sequence's end (what validate reports,
#: 12 sequences x 3 classes), calibrated on 32 random sequences. Measured over the 14 fixtures
#: that compile: 34.1 dB (torch_lstm_bi2l_tm_hn) to 49.7 dB, median 41 dB; over each timestep
#: (streaming fixtures, error_by_step): min 35.1 dB (torch_rnn_relu_2l_tm_last).
SQNR_MIN_DB = 25.0

def _params() -> list:
    return [pytest.param(n) for n in NAMES]


def _path(name: str) -> Path:
    return FIXTURES / f"{name}.onnx"


def _time_axis(name: str) -> int:
    spec = MF.spec_by_name(name)
    return 0 if isinstance(spec, MF.TorchSpec) and not spec.batch_first else 1


def _static_t(name: str) -> int | None:
    """The model input's static time dimension, or None when it is symbolic."""
    vi = onnx.load(str(_path(name))).graph.input[0]
    dim = vi.type.tensor_type.shape.dim[_time_axis(name)]
    return dim.dim_value if dim.HasField("dim_value") else None


def make_data(name: str, n: int, seed: int, variable: bool) -> tuple[np.ndarray, np.ndarray]:
    """x [n, T, F] standard normal (T = the model's static T, else T_DATA); lengths random in
    1..T (first sequence full length) when variable, else all T."""
    t = _static_t(name) or T_DATA
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, t, MF.FEAT)).astype(np.float32)
    lengths = np.full(n, t, np.int64)
    if variable:
        lengths = rng.integers(1, t + 1, n)
        lengths[0] = t
    return x, lengths


def _model_input(name: str, xi: np.ndarray) -> np.ndarray:
    """One sequence [T, F] -> the fixture's input layout ([1, T, F] or [T, 1, F])."""
    return np.moveaxis(xi[:, None, :], 0, _time_axis(name))


def _ort(name: str, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """onnxruntime on each sequence at its own length -> [N, CLASSES]."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(_path(name)), opts, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    return np.stack([sess.run(None, {in_name: _model_input(name, xi[:n])})[0].ravel()
                     for xi, n in zip(x, lengths)]).astype(np.float64)


def _float_ref(name: str, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    g = float_graph(_path(name))
    (out,) = g.outputs
    env = run_float(g, x, lengths=lengths)
    return at_last_step(env[out], lengths).reshape(len(x), -1)


def test_fixtures_present_small_and_documented() -> None:
    readme = (FIXTURES / "README.md").read_text()
    on_disk = sorted(p.stem for p in FIXTURES.glob("*.onnx"))
    assert on_disk == sorted(NAMES), "tests/fixtures and tools/make_fixtures.py disagree"
    for name in NAMES:
        size = _path(name).stat().st_size
        assert size < MAX_FIXTURE_BYTES, (name, size)
        assert name in readme, f"{name} is not described in tests/fixtures/README.md"
    specs = MF.TORCH_SPECS
    assert {s.cell for s in specs} == {"LSTM", "GRU", "RNN_TANH", "RNN_RELU"}
    assert {s.layers for s in specs} == {1, 2}
    assert {s.bidirectional for s in specs} == {s.batch_first for s in specs} == {True, False}
    assert {s.head for s in specs} == {"last", "h_n", "mean"}
    assert {s.gate for s in MF.KERAS_SPECS} == {"Sigmoid", "HardSigmoid"}


def test_keras_fixtures_reproducible(tmp_path: Path) -> None:
    """tools/make_fixtures.py rebuilds the committed keras_* files byte for byte."""
    for spec in MF.KERAS_SPECS:
        fresh = MF.write(spec.name, tmp_path)
        assert fresh.read_bytes() == _path(spec.name).read_bytes(), f"{spec.name} is stale"


def test_torch_fixtures_reproducible(tmp_path: Path) -> None:
    """... and the torch_* files, with the torch version they were made with (other versions
    may name nodes differently: test_fixture_matches_its_source still checks the numbers)."""
    torch = require_torch()
    if torch.__version__.split("+")[0] != MF.TORCH_VERSION:
        pytest.skip(f"fixtures made with torch {MF.TORCH_VERSION}, this is {torch.__version__}")
    for spec in MF.TORCH_SPECS:
        fresh = MF.write(spec.name, tmp_path)
        assert fresh.read_bytes() == _path(spec.name).read_bytes(), f"{spec.name} is stale"


@pytest.mark.parametrize("name", _params())
def test_float_reference_vs_onnxruntime(name: str) -> None:
    static = _static_t(name) is not None
    x, lengths = make_data(name, 6, 10, variable=not static)
    got = _ort(name, x, lengths)
    want = _float_ref(name, x, lengths)
    err = float(np.max(np.abs(got - want)))
    print(f"{name}: |float ref - onnxruntime| <= {err:.1e} (lengths {lengths.tolist()})")
    assert err <= ORT_ATOL


@pytest.mark.parametrize("name", NAMES)
def test_fixture_matches_its_source(name: str) -> None:
    """The fixture, run by onnxruntime, computes what its source model computes (so the
    fixture files are what tools/make_fixtures.py says they are; no rnnq involved)."""
    spec = MF.spec_by_name(name)
    static = _static_t(name) is not None
    x, lengths = make_data(name, 4, 11, variable=not static)
    if isinstance(spec, MF.TorchSpec):
        require_torch()
        want = MF.torch_forward(spec, x, lengths)
    else:
        want = MF.keras_forward(spec, x.astype(np.float64), lengths)
    err = float(np.max(np.abs(_ort(name, x, lengths) - want)))
    print(f"{name}: |onnxruntime - source| <= {err:.1e}")
    assert err <= SOURCE_ATOL


@pytest.mark.parametrize("name", _params())
def test_compiled_bit_exact_variable_lengths(name: str, tmp_path: Path) -> None:
    require_host_toolchain()
    x_cal, _ = make_data(name, N_CALIB, 1, variable=False)
    x_test, lengths = make_data(name, N_TEST, 2, variable=True)
    x_test[np.arange(x_test.shape[1])[None, :] >= lengths[:, None]] = 50.0  # padding: ignored
    rep = compile_and_validate(_path(name), save_npz(tmp_path / "calib.npz", x_cal),
                               save_npz(tmp_path / "test.npz", x_test, lengths),
                               tmp_path / "build", prefix="fx")
    assert_bit_exact(rep)
    by_step = list(rep["error_by_step"]["sqnr_db"])
    steps = f", per step min {min(by_step):.1f} dB" if by_step else " (whole-sequence model)"
    print(f"{name}: C bit-exact on {rep['c']['compared_values']} values, lengths "
          f"{lengths.tolist()}; SQNR {rep['int']['sqnr_db']:.1f} dB at the end{steps}; "
          f"float by {rep['float']['engine']}")
    assert rep["int"]["sqnr_db"] >= SQNR_MIN_DB, rep["int"]
    if by_step:
        assert min(by_step) >= SQNR_MIN_DB, by_step


def test_minimal_opset11_unsqueeze_folds(tmp_path: Path) -> None:
    """Opset 11: x [T, 1, 2] + Unsqueeze(constant [1, 2], axes=[0]) -> LSTM. onnxruntime and
    onnx's checker accept it; rnnq's import fails folding the Unsqueeze."""
    nodes = [oh.make_node("Unsqueeze", ["c"], ["u"], axes=[0]),
             oh.make_node("Add", ["x", "u"], ["xu"]),
             oh.make_node("LSTM", ["xu", "W", "R"], ["", "Y_h"], hidden_size=1)]
    inits = [numpy_helper.from_array(np.ones((1, 2), np.float32), "c"),
             numpy_helper.from_array(np.full((1, 4, 2), 0.5, np.float32), "W"),
             numpy_helper.from_array(np.full((1, 4, 1), 0.5, np.float32), "R")]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                ["T", 1, 2])],
                          [oh.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, 1, 1])], inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 11)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(tmp_path / "m.onnx"))
    float_graph(tmp_path / "m.onnx")

"""The ONNX project's LSTM / GRU / RNN node tests, regenerated from the installed onnx wheel.

The cases come from the generators in onnx/backend/test/case/node/{lstm,gru,rnn}.py: every
`export*` method of their LSTM, GRU and RNN classes is run with `expect` patched to collect
(node, inputs, expected outputs, name) instead of writing a test directory, after
`np.random.seed(0)` exactly as onnx's own exporter metaclass does, so the random weights of the
`*_seq_length` cases are the ones in onnx's published test data. Nothing is filtered: every
collected case appears in the test ids (three times: `-static`, `-dynT`, `-batch1`, below), and
`test_every_generator_collected` checks that each `export*` function produced its case.

rnnq needs constant weights, so every graph input but X becomes an initializer holding the case's
data. Each case is run in three forms:

- `static`: X keeps the case's static shape, e.g. [1, 3, 2] (T = 1, batch 3).
- `dynT`: X's time dimension is symbolic ("T"). The peephole case's constant sequence_lens
  ([1, 1], the case's T) contradicts a symbolic T, so in that form it stays a graph input and
  rnnq feeds it from the data's `lengths` (the other supported way).
- `batch1`: as dynT, cut to the first batch row (X, sequence_lens, initial states and expected
  outputs alike; ONNX computes batch rows independently). Most cases have batch 3 inside the
  model, which rnnq cannot compile today (below); this form still takes their weights and
  options (peepholes, initial states, layout 1, ...) through the C.

Checks: (a) rnnq's float reference on the case's X (one sequence; X moved to [T, batch, F] for
layout 1) equals the case's expected outputs within 1e-5; (b) compiled for target "host"
(ASan/UBSan), calibrated on X plus a few random sequences shaped like X, the C is bit-exact
against the integer simulator under `rnnq validate` on that data, and the integer model is
close to the float one on every output (validate reports the first output only).
onnxruntime cannot run the layout-1 (`*_batchwise`) cases; validate falls back to rnnq's float
reference for them, which (a) checks against the case's expected values.

`test_minimal_*` are small regression cases for bugs found while writing these tests (a batch
> 1 inside the model, a final cell state Y_c, which error an import reports).
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper
from onnx import helper as oh
from variants_common import assert_bit_exact, require_host_toolchain, save_npz

from rnnq.api import compile_model, float_graph, open_graphs, validate
from rnnq.data import at_last_step, load_npz
from rnnq.ir import RnnqError
from rnnq.report import sqnr_db
from rnnq.sim.float_ref import run_float
from rnnq.sim.integer import dequantize_output, quantize_input, run_integer

#: rnnq's float reference (float64) vs the expected outputs (float32, from onnx's numpy helpers)
FLOAT_ATOL = 1e-5
#: Integer vs float SQNR of every output (all steps of Y, the end for Y_h / Y_c), on the
#: calibration data itself (X plus 5 random sequences). Measured over the cases that compile:
#: 31.1 dB (test_gru_seq_length-batch1: randn weights, inputs up to 18) to 75.8 dB, typically
#: 45-60 dB.
SQNR_MIN_DB = 25.0



class OutputAccuracyError(AssertionError):
    """An output of the integer model is far from the float one (while the C is bit-exact):
    its own type, so that it is told apart from a bit-exactness failure."""


_GENERATORS = (("lstm", "LSTM"), ("gru", "GRU"), ("rnn", "RNN"))


@dataclass(frozen=True)
class Case:
    name: str
    export: str  # the generator function, e.g. "LSTM.export_defaults"
    node: onnx.NodeProto
    inputs: tuple[np.ndarray, ...]  # by the node's present inputs
    outputs: tuple[np.ndarray, ...]  # by the node's present outputs

    @property
    def attrs(self) -> dict:
        return {a.name: oh.get_attribute_value(a) for a in self.node.attribute}

    @property
    def layout(self) -> int:
        return int(self.attrs.get("layout", 0))

    @property
    def x(self) -> np.ndarray:
        return self.inputs[0]

    @property
    def t(self) -> int:
        return int(self.x.shape[self.layout])

    @property
    def batch(self) -> int:
        return int(self.x.shape[1 - self.layout])

    def named_inputs(self) -> dict[str, np.ndarray]:
        return dict(zip([i for i in self.node.input if i], self.inputs))

    def named_outputs(self) -> dict[str, np.ndarray]:
        return dict(zip([o for o in self.node.output if o], self.outputs))

    def batch_row0(self) -> Case:
        """The same case cut to its first batch row: X, sequence_lens, initial states and the
        expected outputs (ONNX computes batch rows independently)."""
        lay = self.layout
        in_axis = {0: 1 - lay, 4: 0, 5: 1 - lay, 6: 1 - lay}  # by input position
        out_axis = {0: 0 if lay else 2, 1: 1 - lay, 2: 1 - lay}
        present_in = [k for k, i in enumerate(self.node.input) if i]
        present_out = [k for k, o in enumerate(self.node.output) if o]
        ins = tuple(np.take(v, [0], axis=in_axis[k]) if k in in_axis else v
                    for k, v in zip(present_in, self.inputs))
        outs = tuple(np.take(v, [0], axis=out_axis[k]) for k, v in zip(present_out, self.outputs))
        return Case(self.name, self.export, self.node, ins, outs)


def _collect() -> tuple[list[Case], dict[str, list[str]]]:
    """Run every export* generator; returns the cases and, per generator, the names it made."""
    cases: list[Case] = []
    made: dict[str, list[str]] = {}
    for module, cls_name in _GENERATORS:
        mod = importlib.import_module(f"onnx.backend.test.case.node.{module}")
        cls = getattr(mod, cls_name)
        for attr in vars(cls):  # definition order
            if not attr.startswith("export"):
                continue
            got: list[tuple] = []

            def fake_expect(node, inputs, outputs, name, got=got, **kwargs):
                got.append((node, inputs, outputs, name))

            with mock.patch.object(mod, "expect", fake_expect):
                np.random.seed(0)  # what onnx.backend.test.case.base._Exporter does
                getattr(cls, attr)()
            key = f"{cls_name}.{attr}"
            made[key] = [g[3] for g in got]
            for node, inputs, outputs, name in got:
                cases.append(Case(name, key, copy.deepcopy(node),
                                  tuple(np.asarray(a) for a in inputs),
                                  tuple(np.asarray(a) for a in outputs)))
    return cases, made


CASES, MADE = _collect()
FORMS = ("static", "dynT", "batch1")


def form_case(case: Case, form: str) -> Case:
    return case.batch_row0() if form == "batch1" else case


def build_model(case: Case, form: str) -> onnx.ModelProto:
    """The case as a one-node model: X the only graph input (plus, for the peephole case in
    the dynT form, sequence_lens), everything else an initializer with the case's data."""
    ins = case.named_inputs()
    x_name = case.node.input[0]
    lens_name = case.node.input[4] if len(case.node.input) > 4 else ""
    keep_lens = form != "static" and bool(lens_name)
    shape: list[int | str] = list(case.x.shape)
    if form != "static":
        shape[case.layout] = "T"
    graph_inputs = [oh.make_tensor_value_info(x_name, TensorProto.FLOAT, shape)]
    if keep_lens:
        graph_inputs.append(oh.make_tensor_value_info(
            lens_name, TensorProto.INT32, list(ins[lens_name].shape)))
    inits = [numpy_helper.from_array(v, k) for k, v in ins.items()
             if k != x_name and not (keep_lens and k == lens_name)]
    outs = []
    for name, v in case.named_outputs().items():
        oshape: list[int | str] = list(v.shape)
        if v.ndim == 4 and form != "static":  # Y: time on axis 0 (layout 0) or 1 (layout 1)
            oshape[case.layout] = "T"
        outs.append(oh.make_tensor_value_info(name, TensorProto.FLOAT, oshape))
    graph = oh.make_graph([copy.deepcopy(case.node)], case.name, graph_inputs, outs, inits)
    opset = onnx.defs.get_schema(case.node.op_type).since_version  # as onnx's expect does
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)],
                          producer_name="rnnq-conformance")
    onnx.checker.check_model(model, full_check=True)
    return model


def case_data(case: Case) -> np.ndarray:
    """The case's X as rnnq data: one sequence [1, T, batch * F] (the step is [batch, F])."""
    return np.moveaxis(case.x, case.layout, 0).reshape(1, case.t, -1).astype(np.float32)


def random_like(case: Case, n: int, seed: int) -> np.ndarray:
    """n random sequences shaped like X, over X's value range (with some margin)."""
    x = case_data(case)
    lo, hi = float(x.min()), float(x.max())
    pad = 0.1 * max(hi - lo, 1.0)
    rng = np.random.default_rng(seed)
    return rng.uniform(lo - pad, hi + pad, (n, *x.shape[1:])).astype(np.float32)


def _marks(case: Case, form: str, compiled: bool) -> list:
    if not compiled:
        return []
    return []


def _params(compiled: bool) -> list:
    return [pytest.param(c, f, id=f"{c.name}-{f}", marks=_marks(c, f, compiled))
            for c in CASES for f in FORMS]


def _save(case: Case, form: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{case.name}.onnx"
    onnx.save(build_model(form_case(case, form), form), str(path))
    return path


# --- tests -----------------------------------------------------------------------------------
def test_every_generator_collected() -> None:
    """Each export* function of the three generator classes produced exactly one case, with a
    unique name; all three ops and their options are present."""
    assert all(len(names) == 1 for names in MADE.values()), MADE
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)) == len(MADE)
    ops = {c.node.op_type for c in CASES}
    assert ops == {"LSTM", "GRU", "RNN"}
    for op in ops:  # defaults, bias, batchwise (layout 1), reverse, bidirectional at least
        mine = [c for c in CASES if c.node.op_type == op]
        assert len(mine) >= 6, [c.name for c in mine]
        assert {c.layout for c in mine} == {0, 1}
        assert {c.attrs.get("direction", b"forward") for c in mine} == {
            b"forward", b"reverse", b"bidirectional"}
    print(f"{len(CASES)} cases: {', '.join(names)}")


@pytest.mark.parametrize(("case", "form"), _params(compiled=False))
def test_float_reference_matches_expected(case: Case, form: str, tmp_path: Path) -> None:
    g = float_graph(_save(case, form, tmp_path))
    case = form_case(case, form)
    expected = case.named_outputs()
    assert g.outputs == list(expected)
    x = case_data(case)
    env = run_float(g, x, lengths=np.array([case.t]))
    worst = 0.0
    for name, want in expected.items():
        t = g.tensors[name]
        if t.kind == "seq":
            got, want = env[name][0], np.moveaxis(want, t.time_axis, 0)
        else:
            got = env[name][0, case.t - 1]
        np.testing.assert_allclose(got, want, rtol=0, atol=FLOAT_ATOL, err_msg=name)
        worst = max(worst, float(np.max(np.abs(got - want))))
    print(f"{case.name}-{form}: max |float ref - expected| = {worst:.1e}")


@pytest.mark.parametrize(("case", "form"), _params(compiled=True))
def test_compiled_c_bit_exact(case: Case, form: str, tmp_path: Path) -> None:
    _compile_and_check(case, form, tmp_path)


def _compile_and_check(case: Case, form: str, tmp_path: Path) -> None:
    path = _save(case, form, tmp_path)
    float_graph(path)  # import errors first
    require_host_toolchain()
    case = form_case(case, form)
    x = case_data(case)
    calib = save_npz(tmp_path / "calib.npz", np.concatenate([x, random_like(case, 5, 1)]))
    compile_model(path, calib, tmp_path / "build", "host", "conf")
    rep = validate(tmp_path / "build", calib)  # in-distribution: SQNR measures rounding only
    per_output = output_sqnrs(tmp_path / "build", calib)
    print(f"{case.name}-{form}: {rep['c']['compared_values']} C values bit-exact="
          f"{rep['c']['bit_exact']}; SQNR per output "
          + ", ".join(f"{k} {v:.1f} dB" for k, v in per_output.items())
          + f"; float by {rep['float']['engine']}")
    assert_bit_exact(rep)
    assert rep["int"]["sqnr_db"] >= SQNR_MIN_DB, rep["int"]
    for name, v in per_output.items():
        if v < SQNR_MIN_DB:
            raise OutputAccuracyError(f"output {name}: SQNR {v:.1f} dB < {SQNR_MIN_DB} dB "
                                      f"({per_output})")


def output_sqnrs(build: Path, data_path: Path) -> dict[str, float]:
    """Integer simulator vs float reference for every output (validate reports the first
    only): all steps of a sequence output, the end of the sequence for a final one."""
    _, fg, g = open_graphs(build)
    data = load_npz(data_path, fg)
    env = run_integer(g, quantize_input(g, data.x), data.lengths)
    fenv = run_float(fg, data.x, lengths=data.lengths)
    out = {}
    for fname, iname in zip(fg.outputs, g.outputs):  # int names may gain "_q8"
        got = dequantize_output(g, iname, env[iname]).reshape(fenv[fname].shape)
        want = fenv[fname]
        if g.tensors[iname].kind != "seq":
            got, want = at_last_step(got, data.lengths), at_last_step(want, data.lengths)
        out[fname] = sqnr_db(want, got)
    return out


# --- minimal reproductions of the bugs above ---------------------------------------------------
def _tiny_lstm(tmp_path: Path, x_shape: list, lens: str | None = None) -> Path:
    """LSTM, hidden 1, input size 1, weights 0.5; X of shape x_shape (layout 0)."""
    w = numpy_helper.from_array(np.full((1, 4, 1), 0.5, np.float32), "W")
    r = numpy_helper.from_array(np.full((1, 4, 1), 0.5, np.float32), "R")
    inits = [w, r]
    ins = ["X", "W", "R"]
    if lens is not None:
        inits.append(numpy_helper.from_array(np.ones(x_shape[1], np.int32), "L"))
        ins += ["", "L"]
    node = oh.make_node("LSTM", ins, ["", "Y_h"], hidden_size=1)
    graph = oh.make_graph([node], "tiny", [oh.make_tensor_value_info("X", TensorProto.FLOAT,
                                                                   x_shape)],
                          [oh.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, None, 1])],
                          inits)
    path = tmp_path / "tiny.onnx"
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 14)]), str(path))
    return path


def test_minimal_batch_input_compiles(tmp_path: Path) -> None:
    """X ["T", 2, 1]: float import works, compile crashes in quantize."""
    path = _tiny_lstm(tmp_path, ["T", 2, 1])
    calib = save_npz(tmp_path / "c.npz", np.random.default_rng(0).normal(size=(4, 5, 2)))
    compile_model(path, calib, tmp_path / "build", "host", "tiny")


def test_minimal_error_names_sequence_lens(tmp_path: Path) -> None:
    """X ["T", 2, 1] with constant sequence_lens [1]: refused (rightly), but the message is
    about the time axis, not about sequence_lens."""
    path = _tiny_lstm(tmp_path, ["T", 2, 1], lens="L")
    with pytest.raises(RnnqError) as e:
        float_graph(path)
    assert "sequence_lens" in str(e.value), str(e.value)

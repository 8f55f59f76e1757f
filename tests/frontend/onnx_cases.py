"""Small ONNX models built with onnx.helper, and the checks every frontend test runs on them.

`Net` writes models the way exporters do (initializers, opset-dependent Squeeze/Unsqueeze
forms, an LSTM with random but well-scaled weights). `check_float` compares rnnq's float
reference with an ONNX runtime at the last step and, for models with a dynamic time axis, at
every shorter prefix too (a `final` tensor at step t must equal the model run on x[:, :t+1]).
`check_compiled` compiles for the host target and validates: the C must be bit-exact.

onnxruntime refuses LSTM layout=1 ("batchwise recurrent operations are not supported"), so
models containing one are run with onnx's reference evaluator instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx import helper as oh

from rnnq.api import compile_model, float_graph, validate
from rnnq.ir import Graph
from rnnq.sim.float_ref import run_float

F, H, N_OUT = 3, 8, 4  # input features, LSTM hidden size, classifier outputs
T_DATA = 7  # sequence length of test data for models with a dynamic time axis
X0 = ["T", 1, F]  # ONNX input for LSTM layout 0 (time first)
X1 = [1, "T", F]  # ONNX input for LSTM layout 1 (batch first)
BIG = 2**62  # "to the end" in Slice
FLOAT_TOL = 1e-5
#: (x [N, T, F], lengths [N]) -> class ids [N]
Labeller = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Net:
    """Accumulates nodes and initializers; `save` writes a checked, shape-inferred model."""

    def __init__(self, opset: int = 17, seed: int = 0):
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def _name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}{self._n}"

    def c(self, value, dtype=np.float32, hint: str = "c") -> str:
        """An initializer."""
        name = self._name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def ints(self, *values: int) -> str:
        return self.c(list(values), np.int64, "i")

    def w(self, *shape: int, scale: float = 0.5) -> str:
        """A random float initializer."""
        return self.c(self.rng.normal(0.0, scale, shape), hint="w")

    def op(self, op_type: str, *inputs: str, n_out: int = 1, out: str | None = None, **attrs):
        outs = [out or self._name(op_type.lower())] + [self._name(op_type.lower())
                                                       for _ in range(n_out - 1)]
        self.nodes.append(oh.make_node(op_type, list(inputs), outs,
                                       name=self._name(op_type + "_"), **attrs))
        return outs[0] if n_out == 1 else outs

    # opset-dependent forms, as exporters write them
    def squeeze(self, x: str, *axes: int) -> str:
        if not axes:
            return self.op("Squeeze", x)
        if self.opset >= 13:
            return self.op("Squeeze", x, self.ints(*axes))
        return self.op("Squeeze", x, axes=list(axes))

    def unsqueeze(self, x: str, *axes: int) -> str:
        if self.opset >= 13:
            return self.op("Unsqueeze", x, self.ints(*axes))
        return self.op("Unsqueeze", x, axes=list(axes))

    def slice(self, x: str, starts, ends, axes, steps=None) -> str:
        ins = [x, self.ints(*starts), self.ints(*ends), self.ints(*axes)]
        if steps is not None:
            ins.append(self.ints(*steps))
        return self.op("Slice", *ins)

    def gather(self, x: str, idx, axis: int) -> str:
        return self.op("Gather", x, self.c(idx, np.int64, "idx"), axis=axis)

    def reshape(self, x: str, *shape: int) -> str:
        return self.op("Reshape", x, self.ints(*shape))

    def gemm(self, x: str, k: int, n: int = N_OUT, trans_b: int = 1, bias: bool = True,
             **attrs) -> str:
        w = self.w(n, k) if trans_b else self.w(k, n)
        ins = [x, w] + ([self.w(n, scale=0.3)] if bias else [])
        return self.op("Gemm", *ins, transB=trans_b, **attrs)

    def matmul(self, x: str, k: int, n: int = N_OUT) -> str:
        return self.op("MatMul", x, self.w(k, n))

    def lstm(self, x: str, in_size: int, hidden: int = H, layout: int = 0,
             outputs: tuple[str, ...] = ("Y", "Y_h"), bias: bool = True,
             initial: bool = False, seq_lens: int | None = None, **attrs) -> list[str]:
        """An ONNX LSTM; returns its output names ('' for unused positions)."""
        s_in, s_h = 1.0 / np.sqrt(in_size), 1.0 / np.sqrt(hidden)
        state = [1, 1, hidden]
        ins = [x, self.w(1, 4 * hidden, in_size, scale=1.5 * s_in),
               self.w(1, 4 * hidden, hidden, scale=1.5 * s_h),
               self.w(1, 8 * hidden, scale=0.3) if bias else "",
               self.c([seq_lens], np.int32) if seq_lens else "",
               self.w(*state, scale=0.3) if initial else "",
               self.w(*state, scale=0.5) if initial else ""]
        while ins[-1] == "":
            ins.pop()
        tag = self._name("lstm")
        outs = [f"{tag}_{o}" if o else "" for o in outputs]
        self.nodes.append(oh.make_node("LSTM", ins, outs, name=tag, hidden_size=hidden,
                                       **({"layout": layout} if layout else {}), **attrs))
        return outs

    def model(self, x_shape: list, outputs: list[str]) -> onnx.ModelProto:
        g = oh.make_graph(self.nodes, "g", [oh.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                      x_shape)],
                          [oh.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
                          self.inits)
        m = oh.make_model(g, opset_imports=[oh.make_opsetid("", self.opset)],
                          producer_name="rnnq-tests")
        m.ir_version = 8  # what onnx 1.12 wrote: readable by any onnxruntime >= 1.18
        m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        onnx.checker.check_model(m, full_check=True)
        return m

    def save(self, path: Path, x_shape: list, outputs: list[str]) -> Path:
        onnx.save(self.model(x_shape, outputs), str(path))
        return path


# --- the case registry ----------------------------------------------------------------------
Case = Callable[[Net], tuple[list, list[str]]]  # builds into a Net, returns (x shape, outputs)
CASES: dict[str, tuple[Case, int]] = {}  # name -> (builder, opset)


def case(opset: int = 17) -> Callable[[Case], Case]:
    """Register a model builder under its function name."""

    def deco(fn: Case) -> Case:
        CASES[fn.__name__] = (fn, opset)
        return fn

    return deco


def build_case(name: str, tmp: Path) -> Path:
    """Write case `name` to tmp/<name>.onnx (deterministic: seeded by the name)."""
    fn, opset = CASES[name]
    n = Net(opset=opset, seed=sum(map(ord, name)))
    x_shape, outputs = fn(n)
    return n.save(tmp / f"{name}.onnx", x_shape, outputs)


def last_h(n: Net, layout: int = 0, **kw) -> str:
    """x -> LSTM -> h_T as [1, H] (Y_h squeezed on its direction axis)."""
    return n.squeeze(n.lstm("x", F, layout=layout, outputs=("", "Y_h"), **kw)[1], 0)


# --- running ONNX models --------------------------------------------------------------------
class OnnxRunner:
    """Runs a model file with onnxruntime, or onnx's reference evaluator when it has an
    LSTM with layout=1 (which onnxruntime refuses)."""

    def __init__(self, path: Path):
        model = onnx.load(str(path))
        batch_first = any(n.op_type == "LSTM" and any(a.name == "layout" and a.i == 1
                                                      for a in n.attribute)
                          for n in model.graph.node)
        self.input = model.graph.input[0].name
        if batch_first:
            from onnx.reference import ReferenceEvaluator

            ev = ReferenceEvaluator(model)
            self.engine = "onnx-reference"
            self._run = lambda x: ev.run(None, {self.input: x})
        else:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            self.engine = "onnxruntime"
            self._run = lambda x: sess.run(None, {self.input: x})

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(r, np.float64) for r in self._run(x.astype(np.float32))]


def to_onnx_input(g: Graph, x: np.ndarray) -> np.ndarray:
    """One sequence x [1, T, F] (rnnq's data layout) -> the ONNX input tensor."""
    step = g.tensors[g.inputs[0]].shape
    xi = x[0].reshape(x.shape[1], *step)
    return np.moveaxis(xi, 0, g.meta["input_time_axis"])


def time_dim(path: Path, g: Graph) -> int | None:
    """The ONNX input's time dimension: its fixed length, or None when it is dynamic."""
    dim = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    d = dim[g.meta["input_time_axis"]]
    return d.dim_value if d.HasField("dim_value") else None


def data_shape(path: Path) -> tuple[int, int]:
    """(T, F) of data for the model: T_DATA, or the model's own T when it is fixed."""
    g = float_graph(path)
    return time_dim(path, g) or T_DATA, g.tensors[g.inputs[0]].size


def random_sequence(path: Path, seed: int = 1) -> np.ndarray:
    """One sequence [1, T, F] for the model."""
    t_len, feat = data_shape(path)
    return np.random.default_rng(seed).normal(0.0, 1.0, (1, t_len, feat)).astype(np.float32)


def check_float(path: Path, x: np.ndarray, tol: float = FLOAT_TOL) -> float:
    """rnnq float reference vs ONNX on one sequence x [1, T, F]; returns the max |error|.

    `seq` outputs are compared at every step, `final` outputs at the last step and, when the
    time axis is dynamic, at the end of every prefix of length >= 2.
    """
    g = float_graph(path)
    env = run_float(g, x)
    run = OnnxRunner(path)
    t_len = x.shape[1]
    ends = [t_len] if time_dim(path, g) else range(2, t_len + 1)
    worst = 0.0
    for end in ends:
        refs = run(to_onnx_input(g, x[:, :end]))
        assert len(refs) == len(g.outputs)
        for name, r in zip(g.outputs, refs):
            t = g.tensors[name]
            if t.kind == "seq":
                want = np.moveaxis(r, t.time_axis, 0)
                got = env[name][0, :end]
            else:
                want, got = r, env[name][0, end - 1]
            assert want.size == got.size, (
                f"{name}: {run.engine} gives {list(r.shape)}, rnnq {t.kind}{list(t.shape)}")
            err = float(np.max(np.abs(want.reshape(got.shape) - got), initial=0.0))
            assert err <= tol, f"{name} ({t.kind}), {end} steps: max |error| {err:.3g}"
            worst = max(worst, err)
    return worst


def write_data(path: Path, n: int, t_len: int, feat: int, seed: int, lengths: bool = False,
               labels: Labeller | None = None) -> Path:
    """Random sequences; `lengths` pads them to random lengths, `labels` adds y = labels(x, len)."""
    rng = np.random.default_rng(seed)
    arrays = {"x": rng.normal(0.0, 1.0, (n, t_len, feat)).astype(np.float32)}
    lg = rng.integers(2, t_len + 1, n) if lengths else np.full(n, t_len)
    if lengths:
        arrays["lengths"] = lg.astype(np.int64)
    if labels is not None:
        arrays["y"] = np.asarray(labels(arrays["x"], lg), np.int64)
    np.savez(path, **arrays)
    return path


def check_compiled(path: Path, tmp: Path, prefix: str = "m", seed: int = 0, n_test: int = 10,
                   labels: Labeller | None = None) -> dict:
    """Compile for the host target (ASan/UBSan) and validate; the C must be bit-exact."""
    t_len, feat = data_shape(path)
    dynamic = time_dim(path, float_graph(path)) is None
    calib = write_data(tmp / "calib.npz", 24, t_len, feat, seed)
    test = write_data(tmp / "test.npz", n_test, t_len, feat, seed + 1, dynamic, labels)
    build = tmp / "build"
    compile_model(path, calib, build, "host", prefix)
    rep = validate(build, test)
    assert rep["c"]["bit_exact"], f"C differs from the simulator: {rep['c']}"
    assert rep["c"]["compared_values"] > 0
    return rep


def run_parallel(jobs: dict[str, Callable[[], dict]]) -> dict[str, dict | BaseException]:
    """Run compile/validate jobs a few at a time: their time goes to gcc subprocesses (with
    ASan), so threads keep every core busy. Each job's result, or the exception it raised."""

    def run(job: Callable[[], dict]) -> dict | BaseException:
        try:
            return job()
        except Exception as e:  # noqa: BLE001 - handed to the test that owns the job
            return e

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as ex:
        return dict(zip(jobs, ex.map(run, jobs.values())))


def selected_params(request, test_name: str, param: str) -> list:
    """Values of `param` of the selected (not deselected) items of test_name in this module."""
    return [it.callspec.params[param] for it in request.session.items
            if getattr(it, "originalname", "") == test_name and it.module is request.module]


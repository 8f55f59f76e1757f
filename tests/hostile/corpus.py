"""The hostile-input corpus: files, names, data, output paths, options and tampered build folders
that a user (or an attacker handing a user a model) may give rnnq, each with what rnnq must do.

    python -m tests.hostile.corpus DEST      # writes DEST/cases.json and every case's files

Each case is a folder DEST/cases/<name>/ holding its inputs and an argv in cases.json (paths
absolute). Shared inputs live in DEST/good/ (a small valid model, data, a compiled build); a
canary folder DEST/secret/ holds files that no case may make rnnq read or write (external data
pointing there, a manifest naming it, a pickle that would write there if unpickled).
`tests/hostile/run.py` runs the cases and checks them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx import helper as oh

from tests.frontend.onnx_cases import F, H, Net

N_OUT = 4
#: The bidirectional fixture (--max-steps sizes a whole-sequence buffer for it).
BIDIRECTIONAL = Path(__file__).resolve().parents[1] / "fixtures" / "torch_lstm_bi_bf_mean.onnx"


@dataclass
class Case:
    name: str
    argv: list[str]
    #: "error": exit 2 and one line naming `names`; "ok": exit 0; "mismatch": exit 1 (validate
    #: found the C differs from the simulator, as it must for a tampered weight)
    expect: str = "error"
    names: str = ""
    #: commands run after a successful first one (each must exit 0)
    then: list[list[str]] = field(default_factory=list)
    #: the generated C of this folder must not define these macros
    no_macros: list[str] = field(default_factory=list)
    #: a folder that existed before the command and must be unchanged after it
    untouched: str | None = None


# --- models ---------------------------------------------------------------------------------
def _classifier(seed: int = 0) -> onnx.ModelProto:
    """x [T, 1, F] -> LSTM -> h_T -> Gemm -> y: small, valid, supported."""
    n = Net(seed=seed)
    h = n.squeeze(n.lstm("x", F, outputs=("", "Y_h"))[1], 0)
    m = n.model(["T", 1, F], [n.gemm(h, H)])
    _rename(m, m.graph.output[0].name, "y")
    return m


def _rename(m: onnx.ModelProto, old: str, new: str) -> onnx.ModelProto:
    g = m.graph
    for n in g.node:
        n.input[:] = [new if i == old else i for i in n.input]
        n.output[:] = [new if o == old else o for o in n.output]
    for vi in [*g.input, *g.output, *g.value_info]:
        if vi.name == old:
            vi.name = new
    for t in g.initializer:
        if t.name == old:
            t.name = new
    return m


def _stateful(h_name: str, c_name: str) -> onnx.ModelProto:
    """An LSTM whose initial h and c are graph inputs named h_name and c_name."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(0, s, shape).astype(np.float32), n)
             for n, shape, s in [("W", (1, 4 * H, F), 0.5), ("R", (1, 4 * H, H), 0.3),
                                 ("Wy", (N_OUT, H), 0.5)]]
    nodes = [oh.make_node("LSTM", ["x", "W", "R", "", "", h_name, c_name], ["", "hT", "cT"],
                          hidden_size=H, name="lstm"),
             oh.make_node("Squeeze", ["hT", "ax0"], ["h"], name="sq"),
             oh.make_node("Gemm", ["h", "Wy"], ["y"], transB=1, name="head")]
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "ax0"))
    st = [1, 1, H]
    g = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, F]),
                                   oh.make_tensor_value_info(h_name, TensorProto.FLOAT, st),
                                   oh.make_tensor_value_info(c_name, TensorProto.FLOAT, st)],
                      [oh.make_tensor_value_info("y", TensorProto.FLOAT, [1, N_OUT])], inits)
    return _model(g)


def _model(g: onnx.GraphProto, opset: int = 17) -> onnx.ModelProto:
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)], producer_name="hostile")
    m.ir_version = 8
    return m


def _with_tail(m: onnx.ModelProto, *nodes: onnx.NodeProto, inits=(), out: str = "y2") -> onnx.ModelProto:
    """m with nodes appended after its output y; the graph's output becomes `out`."""
    m.graph.node.extend(nodes)
    m.graph.initializer.extend(inits)
    del m.graph.output[:]
    m.graph.output.append(oh.make_tensor_value_info(out, TensorProto.FLOAT, [1, N_OUT]))
    return m


def _weight(m: onnx.ModelProto, fn: Callable[[np.ndarray], np.ndarray], k: int = 0) -> onnx.ModelProto:
    """The k-th initializer replaced by fn(its value)."""
    t = m.graph.initializer[k]
    t.CopyFrom(numpy_helper.from_array(fn(numpy_helper.to_array(t).copy()), t.name))
    return m


def _set(a: np.ndarray, v) -> np.ndarray:
    a.flat[3] = v
    return a


def _input_dims(m: onnx.ModelProto, dims: list) -> onnx.ModelProto:
    m.graph.input[0].CopyFrom(oh.make_tensor_value_info("x", TensorProto.FLOAT, dims))
    return m


def _loop(trips: int | None) -> onnx.ModelProto:
    """y2 = y + (a constant Loop that adds 1, `trips` times; None: until its condition, which
    stays true, turns false)."""
    body = oh.make_graph(
        [oh.make_node("Identity", ["cond"], ["cond_out"]),
         oh.make_node("Add", ["v", "one"], ["v_out"])], "body",
        [oh.make_tensor_value_info("i", TensorProto.INT64, []),
         oh.make_tensor_value_info("cond", TensorProto.BOOL, []),
         oh.make_tensor_value_info("v", TensorProto.FLOAT, [])],
        [oh.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         oh.make_tensor_value_info("v_out", TensorProto.FLOAT, [])],
        [numpy_helper.from_array(np.array(1.0, np.float32), "one")])
    return _with_tail(
        _classifier(), oh.make_node("Loop", ["" if trips is None else "trips", "true", "v0"],
                                    ["count"], body=body, name="counting_loop"),
        oh.make_node("Add", ["y", "count"], ["y2"], name="plus_count"),
        inits=[numpy_helper.from_array(np.array(True), "true"),
               numpy_helper.from_array(np.array(0.0, np.float32), "v0")]
        + ([] if trips is None else [numpy_helper.from_array(np.array(trips, np.int64), "trips")]))


def _if() -> onnx.ModelProto:
    def branch(v: float) -> onnx.GraphProto:
        return oh.make_graph([oh.make_node("Constant", [], ["b"], value=numpy_helper.from_array(
            np.array(v, np.float32)))], f"b{v}", [],
            [oh.make_tensor_value_info("b", TensorProto.FLOAT, [])])
    return _with_tail(_classifier(), oh.make_node("If", ["flag"], ["bias"], name="branchy_if",
                                                  then_branch=branch(1.0),
                                                  else_branch=branch(2.0)),
                      oh.make_node("Add", ["y", "bias"], ["y2"]),
                      inits=[numpy_helper.from_array(np.array(True), "flag")])


def _identities(k: int) -> onnx.ModelProto:
    nodes = [oh.make_node("Identity", ["y" if i == 0 else f"id{i - 1}"], [f"id{i}"],
                          name=f"identity{i}") for i in range(k)]
    return _with_tail(_classifier(), *nodes, out=f"id{k - 1}")


def _cycle() -> onnx.ModelProto:
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    return _with_tail(_classifier(), oh.make_node("Add", ["b", "one"], ["a"], name="loop_a"),
                      oh.make_node("Add", ["a", "one"], ["b"], name="loop_b"),
                      oh.make_node("Add", ["y", "a"], ["y2"], name="uses_a"), inits=[one])


def _duplicate_output() -> onnx.ModelProto:
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    return _with_tail(_classifier(), oh.make_node("Add", ["y", "one"], ["dup"], name="first_dup"),
                      oh.make_node("Mul", ["y", "one"], ["dup"], name="second_dup"),
                      oh.make_node("Add", ["dup", "one"], ["y2"]), inits=[one])


def _lstm_attr(**attrs) -> onnx.ModelProto:
    m = _classifier()
    for n in m.graph.node:
        if n.op_type == "LSTM":
            for k, v in attrs.items():
                for a in n.attribute:
                    if a.name == k:
                        n.attribute.remove(a)
                        break
                n.attribute.append(oh.make_attribute(k, v))
    return m


def _lstm_input(k: int, name: str) -> onnx.ModelProto:
    m = _classifier()
    for n in m.graph.node:
        if n.op_type == "LSTM":
            n.input[k] = name
    return m


def _external(m: onnx.ModelProto, folder: Path, location: str) -> None:
    """Save m into folder/model.onnx with every initializer as external data in `location`."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(folder / "model.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    if location != "weights.bin":
        m2 = onnx.load(str(folder / "model.onnx"), load_external_data=False)
        for t in m2.graph.initializer:
            for e in t.external_data:
                if e.key == "location":
                    e.value = location
        onnx.save(m2, str(folder / "model.onnx"))


def _retyped(dtype, onnx_type) -> onnx.ModelProto:
    """Every float initializer and the input as dtype."""
    m = _classifier()
    for t in m.graph.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(dtype), t.name))
    m.graph.input[0].type.tensor_type.elem_type = onnx_type
    del m.graph.value_info[:]
    del m.graph.output[:]
    m.graph.output.append(oh.make_tensor_value_info("y", onnx_type, [1, N_OUT]))
    return m


# --- data -----------------------------------------------------------------------------------
def _x(n: int = 16, t: int = 6, f: int = F, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, t, f)).astype(np.float32)


class _Canary:
    """Unpickling this writes a file: a data file carrying it must never be unpickled."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _zip_bomb_header(path: Path) -> Path:
    """An .npz whose two entries declare ~4 GiB each: refused from the headers, never
    inflated."""
    np.savez(path, x=_x(), y=np.zeros(16, np.int64))
    data = bytearray(path.read_bytes())
    # the uncompressed-size fields of the local and the central headers, set to ~4 GiB
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(sig)
        while at >= 0:
            data[at + off:at + off + 4] = (0xFFFFFFFE).to_bytes(4, "little")
            at = data.find(sig, at + 4)
    path.write_bytes(bytes(data))
    return path


# --- the corpus -----------------------------------------------------------------------------
class Corpus:
    def __init__(self, root: Path):
        self.root = root.resolve()
        self.good = self.root / "good"
        self.secret = self.root / "secret"
        self.cases: list[Case] = []

    def dir(self, name: str) -> Path:
        d = self.root / "cases" / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def out(self, name: str) -> str:
        return str(self.dir(name) / "out" / "BUILD")

    def add(self, name: str, argv: list, expect: str = "error", names: str = "", **kw) -> None:
        self.cases.append(Case(name, [str(a) for a in argv], expect, names, **kw))

    # shared inputs
    def prepare(self) -> None:
        from rnnq.api import compile_model

        self.good.mkdir(parents=True)
        self.secret.mkdir()
        onnx.save(_classifier(), str(self.good / "model.onnx"))
        np.savez(self.good / "calib.npz", x=_x(32, seed=1))
        rng = np.random.default_rng(2)
        np.savez(self.good / "test.npz", x=_x(12, seed=2), y=rng.integers(0, N_OUT, 12),
                 lengths=rng.integers(1, 7, 12))
        compile_model(self.good / "model.onnx", self.good / "calib.npz", self.good / "build",
                      "generic-c99", "m", "minmax", None, lambda s: None)
        onnx.save(_classifier(seed=9), str(self.secret / "model.onnx"))
        _external(_classifier(), self.secret / "ext", "weights.bin")
        shutil.copy(self.secret / "ext" / "weights.bin", self.secret / "weights.bin")

    def compile(self, name: str, model, *extra, calib=None, quiet=True, **kw) -> None:
        calib = calib or self.good / "calib.npz"
        argv = ["compile", model, "--calib", calib, "-o", self.out(name), *extra]
        self.add(name, argv + (["-q"] if quiet else []), **kw)

    def model(self, name: str, m: onnx.ModelProto | bytes | str, names: str | None = None,
              expect: str = "error", **kw) -> None:
        p = self.dir(name) / "model.onnx"
        if isinstance(m, onnx.ModelProto):
            p.write_bytes(m.SerializeToString())
        else:
            p.write_bytes(m if isinstance(m, bytes) else m.encode())
        self.compile(name, p, names=str(p) if names is None else names, expect=expect, **kw)

    def named(self, name: str, m: onnx.ModelProto, validate: bool = False, **kw) -> None:
        """A valid model with something unusual (a hostile name): it compiles (compile builds
        its C with the target's flags, -Werror included) and, with `validate`, its C matches
        the simulator."""
        test = kw.pop("test", self.good / "test.npz")
        then = [["validate", self.out(name), "--data", str(test)]] if validate else []
        self.model(name, m, expect="ok", names="", then=then, **kw)

    def calib(self, name: str, write: Callable[[Path], Path], names: str | None = None,
              expect: str = "error") -> None:
        p = write(self.dir(name) / "calib.npz")
        self.compile(name, self.good / "model.onnx", calib=p,
                     names=str(p) if names is None else names, expect=expect)

    def data(self, name: str, write: Callable[[Path], Path], names: str | None = None,
             expect: str = "error") -> None:
        p = write(self.dir(name) / "test.npz")
        build = self.dir(name) / "build"
        shutil.copytree(self.good / "build", build)
        self.add(name, ["validate", build, "--data", p], expect,
                 str(p) if names is None else names, untouched=str(build))

    def write(self) -> list[Case]:
        (self.root / "cases.json").write_text(json.dumps(
            {"root": str(self.root), "cases": [asdict(c) for c in self.cases]}, indent=1))
        return self.cases


def _npz(**arrays) -> Callable[[Path], Path]:
    def write(p: Path) -> Path:
        np.savez(p, **arrays)
        return p
    return write


def _text(text: str | bytes) -> Callable[[Path], Path]:
    def write(p: Path) -> Path:
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return p
    return write


def build(root: Path) -> list[Case]:
    c = Corpus(root)
    c.prepare()
    good_model, good_calib, good_test = (c.good / "model.onnx", c.good / "calib.npz",
                                         c.good / "test.npz")
    good_bytes = good_model.read_bytes()

    # -- files that are not models
    c.model("not_onnx", "this is not a model\n")
    c.model("empty_model", b"")
    c.model("truncated_protobuf", good_bytes[: len(good_bytes) // 2])
    c.model("random_bytes", np.random.default_rng(0).bytes(4096))
    d = c.dir("model_is_directory") / "folder.onnx"
    d.mkdir()
    c.compile("model_is_directory", d, names=str(d))
    missing = c.dir("model_missing") / "absent.onnx"
    c.compile("model_missing", missing, names=str(missing))
    fifo = c.dir("model_fifo") / "pipe.onnx"
    os.mkfifo(fifo)
    c.compile("model_fifo", fifo, names=str(fifo))
    c.compile("model_dev_zero", "/dev/zero", names="/dev/zero")
    unreadable = c.dir("model_unreadable") / "model.onnx"
    unreadable.write_bytes(good_bytes)
    unreadable.chmod(0)
    root_user = os.geteuid() == 0  # root reads a mode-0 file: then it is a valid model
    c.compile("model_unreadable", unreadable, names=str(unreadable),
              expect="ok" if root_user else "error")

    # -- graphs that are not valid or not supported
    c.model("opset_1", _set_opset(_classifier(), 1))
    c.model("opset_99", _set_opset(_classifier(), 99), names="opset 99")
    m = _classifier()
    m.ir_version = 99
    c.model("ir_version_99", m)
    c.model("dims_zero_batch", _input_dims(_classifier(), ["T", 0, F]))
    c.model("dims_zero_features", _input_dims(_classifier(), ["T", 1, 0]))
    c.model("dims_negative", _input_dims(_classifier(), ["T", -4, F]))
    c.model("dims_huge_batch", _input_dims(_classifier(), ["T", 10**9, F]))
    c.model("dims_huge_fixed_time", _input_dims(_classifier(), [10**12, 1, F]))
    c.model("features_mismatch", _input_dims(_classifier(), ["T", 1, F + 2]), names="'lstm4'")
    c.model("hidden_size_zero", _lstm_attr(hidden_size=0), names="'lstm4'")
    c.model("hidden_size_mismatch", _lstm_attr(hidden_size=H + 3))
    c.model("missing_initializer", _lstm_input(1, "nowhere_W"), names="nowhere_W")
    c.model("cycle", _cycle())
    c.model("duplicate_output_name", _duplicate_output(), names="dup")
    c.named("if_node_constant", _if(), validate=True)  # a constant condition folds
    c.named("loop_3", _loop(3))
    c.model("loop_10e12", _loop(10**12), names="counting_loop")
    c.model("loop_no_trip_count", _loop(None), names="counting_loop")
    c.model("constant_of_shape_huge", _with_tail(
        _classifier(), oh.make_node("ConstantOfShape", ["big"], ["zeros"], name="huge_zeros"),
        oh.make_node("ReduceSum", ["zeros"], ["total"], keepdims=0, name="sum_zeros"),
        oh.make_node("Add", ["y", "total"], ["y2"]),
        inits=[numpy_helper.from_array(np.array([10**6, 10**6], np.int64), "big")]),
        names="huge_zeros")
    c.model("range_huge", _with_tail(
        _classifier(), oh.make_node("Range", ["r0", "r1", "r2"], ["ramp"], name="huge_range"),
        oh.make_node("Cast", ["ramp"], ["rampf"], to=TensorProto.FLOAT),
        oh.make_node("ReduceSum", ["rampf"], ["total"], keepdims=0),
        oh.make_node("Add", ["y", "total"], ["y2"]),
        inits=[numpy_helper.from_array(np.array(v, np.int64), k)
               for k, v in (("r0", 0), ("r1", 10**12), ("r2", 1))]), names="huge_range")
    m = _classifier()
    w = m.graph.initializer[0]
    w.dims[:] = [1, 4 * H, 10**9]
    c.model("initializer_dims_lie", m)
    c.named("identity_chain_3000", _identities(3000))  # linear, not cubic, in the node count

    # -- weights
    c.model("weights_nan", _weight(_classifier(), lambda a: _set(a, np.nan)), names="'w1'")
    c.model("weights_inf", _weight(_classifier(), lambda a: _set(a, -np.inf)), names="'lstm4'")
    c.model("weights_1e38", _weight(_classifier(), lambda a: a * np.float32(1e38)),
            names="'lstm4'")
    c.model("weights_int32", _weight(_classifier(), lambda a: a.astype(np.int32)))
    c.model("weights_float16", _weight(_classifier(), lambda a: a.astype(np.float16)))
    c.named("model_float64", _retyped(np.float64, TensorProto.DOUBLE))
    c.named("model_float16", _retyped(np.float16, TensorProto.FLOAT16))

    # -- external data
    ext = c.dir("external_data_ok") / "m"
    _external(_classifier(), ext, "weights.bin")
    c.compile("external_data_ok", ext / "model.onnx", expect="ok",
              then=[["validate", c.out("external_data_ok"), "--data", str(good_test)]])
    ext = c.dir("external_data_outside") / "m"
    _external(_classifier(), ext, "../../../secret/weights.bin")
    c.compile("external_data_outside", ext / "model.onnx", names=str(ext / "model.onnx"))
    ext = c.dir("external_data_absolute") / "m"
    _external(_classifier(), ext, str(c.secret / "weights.bin"))
    c.compile("external_data_absolute", ext / "model.onnx", names=str(ext / "model.onnx"))
    ext = c.dir("external_data_symlink") / "m"
    _external(_classifier(), ext, "weights.bin")
    (ext / "weights.bin").unlink()
    (ext / "weights.bin").symlink_to(c.secret / "weights.bin")
    c.compile("external_data_symlink", ext / "model.onnx", names=str(ext / "model.onnx"))
    ext = c.dir("external_data_missing") / "m"
    _external(_classifier(), ext, "weights.bin")
    (ext / "weights.bin").unlink()
    c.compile("external_data_missing", ext / "model.onnx", names=str(ext / "model.onnx"))
    ext = c.dir("external_data_short") / "m"
    _external(_classifier(), ext, "weights.bin")
    (ext / "weights.bin").write_bytes((ext / "weights.bin").read_bytes()[:100])
    c.compile("external_data_short", ext / "model.onnx", names=str(ext / "model.onnx"))

    # -- names that reach C (valid ONNX: they must compile, sanitised)
    hostile_names = {
        "name_comment_injection": "y */ #define PWNED 1 /*",
        "name_newline_injection": "y\n#define PWNED 1\n",
        "name_include": "#include <stdio.h>",
        "name_quotes_backslash": 'y"\\\nz\'',
        "name_unicode": "ŷ_输出_é",
        "name_path": "../../etc/passwd",
        "name_c_keyword": "int",
        "name_10kB": "y" * 10_000,
        "name_bidi": "y\u202eevil\u202c",
        "name_empty_looking": " ",
    }
    for case, name in hostile_names.items():
        c.named(case, _rename(_classifier(), "y", name), no_macros=["PWNED"],
                validate=case == "name_comment_injection")
    c.named("input_name_injection", _rename(_classifier(), "x", "x */ #define PWNED 1 /*"),
            no_macros=["PWNED"])
    m = _classifier()
    m.graph.node[0].name = "lstm */ #define PWNED 1 /*"
    c.named("node_name_injection", m, no_macros=["PWNED"])
    st = c.dir("state_names_collide") / "test.npz"
    np.savez(st, x=_x(8, seed=3), **{"s.0": np.zeros((8, 1, 1, H), np.float32),
                                     "s_0": np.full((8, 1, 1, H), 0.1, np.float32)})
    c.named("state_names_collide", _stateful("s.0", "s_0"), test=st, validate=True)
    st = c.dir("state_names_injection") / "test.npz"
    inj = "h */ #define PWNED 1 /*"
    np.savez(st, x=_x(8, seed=3), **{inj: np.zeros((8, 1, 1, H), np.float32),
                                     "c": np.full((8, 1, 1, H), 0.1, np.float32)})
    c.named("state_names_injection", _stateful(inj, "c"), test=st, no_macros=["PWNED"],
            validate=True)

    # -- prefixes
    for case, prefix, expect in [
            ("prefix_comment", "*/", "error"), ("prefix_include", "#include", "error"),
            ("prefix_quote", 'a"b', "error"), ("prefix_newline", "a\\\nb", "error"),
            ("prefix_unicode", "modèle", "error"), ("prefix_path", "../x", "error"),
            ("prefix_empty", "", "error"), ("prefix_10kB", "p" * 10_000, "error"),
            ("prefix_digit", "9lives", "error"), ("prefix_c_keyword", "int", "ok"),
            ("prefix_stdint", "uint8", "ok"), ("prefix_libc", "m", "ok")]:
        out = c.out(case)
        c.compile(case, good_model, "--prefix", prefix, expect=expect, names="--prefix",
                  then=[["validate", out, "--data", str(good_test)]] if case == "prefix_stdint"
                  else [])

    # -- calibration files
    c.calib("calib_not_npz", _text("x,y\n1,2\n"))
    c.calib("calib_empty", _text(b""))
    c.calib("calib_zip_not_npy", lambda p: _zip_of(p, {"x.npy": b"not an array"}))
    canary = str(c.secret / "UNPICKLED")
    c.calib("calib_pickled_object", _npz(x=np.array([_Canary(canary)], dtype=object)))
    c.calib("calib_no_arrays", _npz())
    c.calib("calib_missing_x", _npz(inputs=_x()))
    c.calib("calib_strings", _npz(x=np.array([["a", "b"]])))
    c.calib("calib_rank2", _npz(x=_x()[:, :, 0]))
    c.calib("calib_rank4", _npz(x=_x()[:, :, :, None]))
    c.calib("calib_wrong_features", _npz(x=_x(f=F + 1)))
    c.calib("calib_n0", _npz(x=_x(n=0)))
    c.calib("calib_t0", _npz(x=_x(t=0)))
    c.calib("calib_nan", _npz(x=_set(_x(), np.nan)))
    c.calib("calib_inf", _npz(x=_set(_x(), np.inf)))
    c.calib("calib_complex", _npz(x=_x().astype(np.complex64)))
    c.calib("calib_float64", _npz(x=_x().astype(np.float64)), expect="ok", names="")
    c.calib("calib_int8", _npz(x=(_x() * 10).astype(np.int8)), expect="ok", names="")
    c.calib("calib_lengths_negative", _npz(x=_x(), lengths=np.full(16, -1)))
    c.calib("calib_lengths_too_long", _npz(x=_x(), lengths=np.full(16, 99)))
    c.calib("calib_lengths_count", _npz(x=_x(), lengths=np.full(3, 2)))
    c.calib("calib_lengths_float", _npz(x=_x(), lengths=np.full(16, 2.5)))
    c.calib("calib_y_count", _npz(x=_x(), y=np.zeros(5, np.int64)))
    c.calib("calib_y_strings", _npz(x=_x(), y=np.array(["a"] * 16)))
    c.calib("calib_zip_bomb_header", _zip_bomb_header)

    # -- test data for validate
    c.data("data_not_npz", _text("nope"))
    c.data("data_pickled_object", _npz(x=np.array([_Canary(canary)], dtype=object)))
    c.data("data_wrong_features", _npz(x=_x(f=F - 1)))
    c.data("data_rank2", _npz(x=_x()[:, :, 0]))
    c.data("data_n0", _npz(x=_x(n=0)))
    c.data("data_t0", _npz(x=_x(t=0)))
    c.data("data_nan", _npz(x=_set(_x(), np.nan)))
    c.data("data_inf", _npz(x=_set(_x(), -np.inf)))
    c.data("data_lengths_zero", _npz(x=_x(), lengths=np.zeros(16, np.int64)))
    c.data("data_lengths_too_long", _npz(x=_x(), lengths=np.full(16, 7)))
    c.data("data_y_wrong_count", _npz(x=_x(), y=np.zeros(3, np.int64)))
    c.data("data_y_class_out_of_range", _npz(x=_x(), y=np.full(16, 99)))
    c.data("data_y_wrong_shape", _npz(x=_x(), y=np.zeros((16, 7), np.float32)))
    c.data("data_extra_keys", _npz(x=_x(), notes=np.arange(3)), expect="ok", names="")

    # -- output paths
    f = c.dir("output_is_file") / "BUILD"
    f.write_text("a file")
    c.add("output_is_file", ["compile", good_model, "--calib", good_calib, "-o", f, "-q"],
          names=str(f))
    d = c.dir("output_nonempty_folder") / "photos"
    d.mkdir()
    (d / "holiday.jpg").write_bytes(b"\xff\xd8")
    c.add("output_nonempty_folder", ["compile", good_model, "--calib", good_calib, "-o", d, "-q"],
          names=str(d), untouched=str(d))
    c.add("output_unwritable", ["compile", good_model, "--calib", good_calib, "-o",
                                "/proc/rnnq_build", "-q"], names="/proc/rnnq_build")
    f = c.dir("output_under_a_file") / "file.txt"
    f.write_text("x")
    c.add("output_under_a_file", ["compile", good_model, "--calib", good_calib, "-o",
                                  f / "BUILD", "-q"], names=str(f / "BUILD"))
    mdir = c.dir("output_model_folder") / "m"
    mdir.mkdir()
    shutil.copy(good_model, mdir / "model.onnx")
    c.add("output_model_folder", ["compile", mdir / "model.onnx", "--calib", good_calib, "-o",
                                  mdir, "-q"], names=str(mdir), untouched=str(mdir))
    c.add("output_is_the_model", ["compile", mdir / "model.onnx", "--calib", good_calib, "-o",
                                  mdir / "model.onnx", "-q"], names=str(mdir / "model.onnx"))
    link = c.dir("output_symlink_to_elsewhere") / "BUILD"
    link.symlink_to(c.secret)
    c.add("output_symlink_to_elsewhere", ["compile", good_model, "--calib", good_calib, "-o",
                                          link, "-q"], names=str(link))
    c.add("output_system_folder", ["compile", good_model, "--calib", good_calib, "-o", "/usr",
                                   "-q"], names="/usr")
    sub = c.dir("output_inside_model_folder") / "m"
    sub.mkdir()
    shutil.copy(good_model, sub / "model.onnx")
    c.add("output_inside_model_folder", ["compile", sub / "model.onnx", "--calib", good_calib,
                                         "-o", sub / "build", "-q"], expect="ok")
    bdir = c.dir("output_existing_build") / "out" / "BUILD"
    shutil.copytree(c.good / "build", bdir)
    c.model("output_existing_build_failed_compile", _lstm_input(1, "nowhere_W"),
            names="nowhere_W", untouched=None)
    c.cases[-1].argv[c.cases[-1].argv.index("-o") + 1] = str(bdir)
    c.cases[-1].untouched = str(bdir)
    jdir = c.dir("json_missing_folder")
    shutil.copytree(c.good / "build", jdir / "build")
    c.add("json_missing_folder", ["validate", jdir / "build", "--data", good_test, "--json",
                                  jdir / "nowhere" / "r.json"], names=str(jdir / "nowhere"))
    c.add("json_is_folder", ["validate", jdir / "build", "--data", good_test, "--json", jdir],
          names=str(jdir))
    c.add("report_missing_folder", ["validate", jdir / "build", "--data", good_test,
                                    "--report", jdir / "nowhere" / "r.html"],
          names=str(jdir / "nowhere"))

    # -- option values
    for case, opts, names in [
            ("seq_len_zero", ["--seq-len", "0"], "--seq-len"),
            ("seq_len_negative", ["--seq-len", "-3"], "--seq-len"),
            ("seq_len_text", ["--seq-len", "ten"], "--seq-len"),
            ("seq_len_1e9", ["--seq-len", "1000000000"], "--seq-len"),
            ("headroom_nan", ["--headroom", "nan"], "--headroom"),
            ("headroom_inf", ["--headroom", "inf"], "--headroom"),
            ("headroom_half", ["--headroom", "0.5"], "--headroom"),
            ("headroom_1e9", ["--headroom", "1e9"], "--headroom"),
            ("target_unknown", ["--target", "cortex-m99"], "cortex-m99"),
            ("target_path_traversal", ["--target", "../../../etc/passwd"], "--target"),
            ("target_empty", ["--target", ""], "--target"),
            ("calib_method_unknown", ["--calib-method", "magic"], "--calib-method"),
            ("format_unknown", ["--format", "exe"], "--format"),
            ("format_option_mismatch", ["--tflite-loop", "while"], "--tflite-loop"),
            ("flash_negative", ["--flash", "-1"], "--flash"),
            ("input_bits_12", ["--input-bits", "12"], "--input-bits"),
            ("precision_unknown_layer", ["--precision", "lstm9=int16"], "--precision"),
            ("precision_width", ["--precision", "int4"], "--precision"),
            ("precision_injection", ["--precision", "a\";system(\"x\");//=int16"],
             "--precision"),
            ("min_sqnr_negative", ["--min-sqnr", "-3"], "--min-sqnr"),
            ("unknown_option", ["--turbo"], "--turbo")]:
        c.compile(case, good_model, *opts, names=names)
    toml = c.dir("target_outside_targets") / "evil.toml"
    toml.write_text(f'name = "evil"\ninherits = "generic-c99"\n[toolchain]\ncc = "'
                    f'{c.secret / "cc"}"\n')
    c.compile("target_outside_targets", good_model, "--target", toml, names="--target")
    c.compile("max_steps_1e9_bidirectional", BIDIRECTIONAL, "--max-steps", "1000000000",
              calib=_bi_calib(c.dir("max_steps_1e9_bidirectional")), names="--max-steps")
    c.add("validate_on_unknown", ["validate", c.good / "build", "--data", good_test, "--on",
                                  "moon"], names="--on")

    # -- tampered build folders
    def tampered(case: str, change: Callable[[Path], None], expect: str = "error",
                 names: str | None = None, cmd: str = "validate") -> None:
        b = c.dir(case) / "build"
        shutil.copytree(c.good / "build", b)
        change(b)
        argv = ["validate", b, "--data", good_test] if cmd == "validate" else ["inspect", b]
        c.add(case, argv, expect, str(b) if names is None else names)

    tampered("build_no_manifest", lambda b: (b / "manifest.json").unlink())
    tampered("build_manifest_not_json", lambda b: (b / "manifest.json").write_text("{oops"))
    tampered("build_manifest_list", lambda b: (b / "manifest.json").write_text("[]"))
    tampered("build_manifest_model_outside", lambda b: _edit_manifest(
        b, model={"file": str(c.secret / "model.onnx")}), expect="ok")
    tampered("build_manifest_outputs_string", lambda b: _edit_manifest(b, outputs="y"))
    tampered("build_manifest_format", lambda b: _edit_manifest(b, format="exe"))
    tampered("build_manifest_max_steps_huge", lambda b: _edit_manifest(b, max_steps=10**12),
             expect="ok")  # validate runs the C as built: the manifest's figure is not used
    tampered("build_no_calibration", lambda b: (b / "calibration.json").unlink())
    tampered("build_calibration_not_json", lambda b: (b / "calibration.json").write_text("nan"))
    tampered("build_no_model_copy", lambda b: (b / "model.onnx").unlink())
    tampered("build_model_copy_garbage", lambda b: (b / "model.onnx").write_text("junk"))
    tampered("build_no_model_c", lambda b: (b / "model.c").unlink())
    tampered("build_weights_changed", _flip_weight, expect="mismatch", names="")
    tampered("inspect_manifest_not_json", lambda b: (b / "manifest.json").write_text("{"),
             cmd="inspect")
    nb = c.dir("inspect_not_a_model") / "notes.onnx"
    nb.write_text("hello")
    c.add("inspect_not_a_model", ["inspect", nb], names=str(nb))
    c.add("inspect_target_unknown", ["inspect", good_model, "--target", "z80"], names="z80")
    return c.write()


def _set_opset(m: onnx.ModelProto, v: int) -> onnx.ModelProto:
    m.opset_import[0].version = v
    return m


def _zip_of(p: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(p, "w") as z:
        for k, v in entries.items():
            z.writestr(k, v)
    return p


def _bi_calib(d: Path) -> Path:
    p = d / "calib.npz"
    np.savez(p, x=np.random.default_rng(0).normal(size=(4, 6, 4)).astype(np.float32))
    return p


def _edit_manifest(b: Path, **fields) -> None:
    m = json.loads((b / "manifest.json").read_text())
    m.update(fields)
    (b / "manifest.json").write_text(json.dumps(m))


def _flip_weight(b: Path) -> None:
    """One weight constant of weights.c changed: validate must say the C is not bit-exact."""
    text = (b / "weights.c").read_text()
    i = text.index("{", text.index("int8_t")) + 1
    j = text.index(",", i)
    v = int(text[i:j])
    (b / "weights.c").write_text(text[:i] + str(-v if v else 1) + text[j:])


if __name__ == "__main__":
    dest = Path(sys.argv[1])
    if dest.exists() and any(dest.iterdir()):
        sys.exit(f"{dest}: exists and is not empty")
    cases = build(dest)
    print(f"{len(cases)} cases in {dest}/cases.json")

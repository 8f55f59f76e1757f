"""`rnnq` on bad input, as a user runs it: exit status 2, one line on stderr naming the file or
node, no traceback, no build folder left behind (and an existing one untouched). Plus the happy
path: compile, validate --json (the report's keys and types), inspect."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from cli_helpers import Result, run_rnnq, write_npz
from onnx_cases import X0, F, H, Net

from tests.conftest import require_tool

_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# --- bad models ---------------------------------------------------------------------------------


def _conv_model(path: Path) -> tuple[Path, str]:
    n = Net()
    z = n.op("Conv", "x", n.w(F, F, 3), pads=[1, 1])  # x [1, F, T]
    n.nodes[-1].name = "frontend_conv"
    z = n.op("Transpose", z, perm=[2, 0, 1])
    return n.save(path, [1, F, "T"], [n.lstm(z, F, outputs=("", "Y_h"))[1]]), "frontend_conv"


def _lstm_model(path: Path, name: str, **attrs) -> tuple[Path, str]:
    n = Net()
    h = n.lstm("x", F, outputs=("", "Y_h"), **attrs)[1]
    n.nodes[-1].name = name
    return n.save(path, X0, [h]), name


def _gemm_trans_a_model(path: Path) -> tuple[Path, str]:
    n = Net()
    h = n.squeeze(n.lstm("x", F, outputs=("", "Y_h"))[1], 0)  # [1, H]
    y = n.op("Gemm", h, n.w(1, 2), transA=1)  # [H, 2]
    n.nodes[-1].name = "head_gemm"
    return n.save(path, X0, [y]), "head_gemm"


def _middle_step_model(path: Path) -> tuple[Path, str]:
    n = Net()
    y = n.gather(n.lstm("x", F, outputs=("Y",))[0], 2, axis=0)  # Y[2]: not streamable
    n.nodes[-1].name = "third_step"
    return n.save(path, X0, [y]), "third_step"


# --- cases: (tmp, good inputs) -> (argv, text the error line must contain) ------------------------
Make = Callable[[Path, dict], tuple[list, str]]


def _compile(model, calib, tmp: Path, *extra) -> list:
    return ["compile", model, "--calib", calib, "-o", tmp / "out" / "BUILD", *extra]


def _bad_model(builder: Callable[[Path], tuple[Path, str]]) -> Make:
    def make(tmp: Path, good: dict):
        path, node = builder(tmp / "bad.onnx")
        return _compile(path, good["calib"], tmp), node

    return make


def _bad_calib(write: Callable[[Path], Path]) -> Make:
    def make(tmp: Path, good: dict):
        p = write(tmp / "calib_bad.npz")
        return _compile(good["model"], p, tmp), str(p)

    return make


def _bad_data(write: Callable[[Path], Path]) -> Make:
    def make(tmp: Path, good: dict):
        p = write(tmp / "test_bad.npz")
        return ["validate", good["build"], "--data", p], str(p)

    return make


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _nan(path: Path) -> Path:
    x = np.random.default_rng(0).normal(size=(8, 6, F)).astype(np.float32)
    x[3, 4, 1] = np.nan
    return _npz(path, x=x)


def _fifo(path: Path) -> Path:
    os.mkfifo(path)  # reading it would block forever
    return path


def _control_chars_model(path: Path) -> tuple[Path, str]:
    """An op type that would recolour the terminal and forge a second error line."""
    n = Net()
    h = n.squeeze(n.lstm("x", F, outputs=("", "Y_h"))[1], 0)
    n.nodes.append(onnx.helper.make_node("Evil\x1b[31m\nrnnq: error: forged", [h], ["y"],
                                         name="evil_node"))
    g = onnx.helper.make_graph(n.nodes, "g", [onnx.helper.make_tensor_value_info(
        "x", onnx.TensorProto.FLOAT, X0)], [onnx.helper.make_tensor_value_info(
            "y", onnx.TensorProto.FLOAT, [1, H])], n.inits)
    onnx.save(onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 17)]),
              str(path))
    return path, "Evil\\x1b[31m"


def _nan_weights_model(path: Path) -> tuple[Path, str]:
    n = Net()
    m = n.model(X0, [n.lstm("x", F, outputs=("", "Y_h"))[1]])
    w = onnx.numpy_helper.to_array(m.graph.initializer[0]).copy()
    w.flat[3] = np.nan
    m.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(w, m.graph.initializer[0].name))
    onnx.save(m, str(path))
    return path, repr(m.graph.initializer[0].name)


def _opset99_model(path: Path) -> tuple[Path, str]:
    n = Net()
    m = n.model(X0, [n.lstm("x", F, outputs=("", "Y_h"))[1]])
    m.opset_import[0].version = 99
    onnx.save(m, str(path))
    return path, "opset 99"


def _xy(path: Path, **arrays) -> Path:
    x = np.random.default_rng(0).normal(size=(4, 6, F)).astype(np.float32)
    return _npz(path, **{"x": x, **arrays})


COMPILE_CASES: dict[str, Make] = {
    "not_onnx": lambda tmp, good: (
        _compile(_text(tmp / "notes.onnx", "not a model\n"), good["calib"], tmp),
        str(tmp / "notes.onnx")),
    "missing_model": lambda tmp, good: (
        _compile(tmp / "nowhere" / "model.onnx", good["calib"], tmp),
        str(tmp / "nowhere" / "model.onnx")),
    "op_conv": _bad_model(_conv_model),
    "lstm_clip_negative": _bad_model(lambda p: _lstm_model(p, "clipped_lstm", clip=-3.0)),
    "lstm_relu_gates": _bad_model(lambda p: _lstm_model(
        p, "relu_lstm", activations=["Relu", "Tanh", "Tanh"])),
    "gemm_trans_a": _bad_model(_gemm_trans_a_model),
    "gather_middle_step": _bad_model(_middle_step_model),
    "calib_wrong_features": _bad_calib(lambda p: write_npz(p, feat=F + 2)),
    "calib_missing_x": _bad_calib(lambda p: _npz(p, data=np.zeros((4, 6, F)))),
    "calib_nan": _bad_calib(_nan),
    "calib_missing_file": lambda tmp, good: (
        _compile(good["model"], tmp / "absent.npz", tmp), str(tmp / "absent.npz")),
    "calib_not_npz": _bad_calib(lambda p: _text(p, "x,y\n1,2\n")),
    "bad_target": lambda tmp, good: (
        _compile(good["model"], good["calib"], tmp, "--target", "cortex-m99"), "cortex-m99"),
    "model_fifo": lambda tmp, good: (
        _compile(_fifo(tmp / "pipe.onnx"), good["calib"], tmp), str(tmp / "pipe.onnx")),
    "model_device": lambda tmp, good: (
        _compile(Path("/dev/zero"), good["calib"], tmp), "/dev/zero"),
    "model_control_characters": _bad_model(_control_chars_model),
    "calib_fifo": lambda tmp, good: (
        _compile(good["model"], _fifo(tmp / "pipe.npz"), tmp), str(tmp / "pipe.npz")),
    "headroom_nan": lambda tmp, good: (
        _compile(good["model"], good["calib"], tmp, "--headroom", "nan"), "--headroom nan"),
    "headroom_inf": lambda tmp, good: (
        _compile(good["model"], good["calib"], tmp, "--headroom", "inf"), "--headroom inf"),
    "headroom_below_one": lambda tmp, good: (
        _compile(good["model"], good["calib"], tmp, "--headroom", "0.5"), "--headroom"),
    "unknown_calib_method": lambda tmp, good: (
        _compile(good["model"], good["calib"], tmp, "--calib-method", "nope"),
        "--calib-method"),
    "missing_calib_option": lambda tmp, good: (
        ["compile", good["model"], "-o", tmp / "out" / "BUILD"], "--calib"),
    "model_nan_weights": _bad_model(_nan_weights_model),
    "model_opset_99": _bad_model(_opset99_model),
    "calib_y_scalar": _bad_calib(lambda p: _xy(p, y=np.array(3))),
    "calib_y_strings": _bad_calib(lambda p: _xy(p, y=np.array(["a", "b", "c", "d"]))),
    "calib_complex": _bad_calib(lambda p: _npz(p, x=np.ones((4, 6, F), np.complex64))),
    "output_unwritable": lambda tmp, good: (
        ["compile", good["model"], "--calib", good["calib"], "-o", "/proc/rnnq_build"],
        "/proc/rnnq_build"),
}
#: Cases that fail after the model is imported, when `compile` has already logged a line.
AFTER_IMPORT = {"calib_wrong_features", "calib_missing_x", "calib_nan", "calib_missing_file",
                "calib_not_npz", "calib_fifo", "calib_y_scalar", "calib_y_strings",
                "calib_complex"}
VALIDATE_CASES: dict[str, Make] = {
    "data_wrong_features": _bad_data(lambda p: write_npz(p, feat=F - 1)),
    "data_missing_x": _bad_data(lambda p: _npz(p, inputs=np.zeros((4, 6, F)))),
    "data_nan": _bad_data(_nan),
    "data_missing_file": lambda tmp, good: (
        ["validate", good["build"], "--data", tmp / "gone.npz"], str(tmp / "gone.npz")),
    "not_a_build": lambda tmp, good: (
        ["validate", (tmp / "just_a_folder").mkdir() or tmp / "just_a_folder", "--data",
         good["test"]], str(tmp / "just_a_folder")),
}


def _assert_clean_failure(r: Result, names: str) -> None:
    assert "Traceback" not in r.out + r.err, r.err
    assert "\x1b" not in r.err and "Warning" not in r.err, r.err
    assert r.code == 2, (r.code, r.err)
    line = r.err_lines[-1] if r.err_lines else ""
    assert line.startswith("rnnq: error: ") and names in line, r.err
    assert len(r.err_lines) == 1, r.err_lines


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _compile_params():
    """Every case as users run it; with -q too where `compile` logs before failing."""
    for name in COMPILE_CASES:
        for quiet in (False, True) if name in AFTER_IMPORT else (False,):
            yield pytest.param(name, quiet, id=f"{name}{'-q' if quiet else ''}")


@pytest.fixture
def good(cli_inputs, good_build) -> dict:
    return {**cli_inputs, "build": good_build}


@pytest.mark.parametrize(("name", "quiet"), list(_compile_params()))
def test_compile_refuses(name: str, quiet: bool, cli_inputs: dict, tmp_path: Path) -> None:
    argv, names = COMPILE_CASES[name](tmp_path, cli_inputs)
    r = run_rnnq(*argv, *(["-q"] if quiet else []))
    _assert_clean_failure(r, names)
    assert not (tmp_path / "out").exists(), "compile left its output folder behind"


@pytest.mark.parametrize("name", ["op_conv", "calib_nan", "bad_target", "lstm_relu_gates"])
def test_failed_compile_leaves_existing_build_untouched(name: str, good: dict,
                                                        tmp_path: Path) -> None:
    argv, names = COMPILE_CASES[name](tmp_path, good)
    out = Path(argv[argv.index("-o") + 1])
    shutil.copytree(good["build"], out)
    before = _tree(out)
    _assert_clean_failure(run_rnnq(*argv, "-q"), names)
    assert _tree(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["BUILD"], "temporary folder left"


@pytest.mark.parametrize(("model", "option", "value"), [
    ("classifier", "--seq-len", "1000000000"),
    ("bidirectional", "--max-steps", "1000000000")])
def test_absurd_lengths_refused_before_allocating(model: str, option: str, value: str,
                                                  cli_inputs: dict, tmp_path: Path) -> None:
    """A length that would need hundreds of GiB (calibration) or a > 2 GiB arena: one line
    naming the option, instead of being killed for memory or a harness that crashes."""
    path = cli_inputs["model"] if model == "classifier" else _FIXTURES / "torch_lstm_bi_bf_mean.onnx"
    calib = cli_inputs["calib"]
    if model != "classifier":
        calib = _npz(tmp_path / "bi.npz",
                     x=np.random.default_rng(0).normal(size=(4, 6, 4)).astype(np.float32))
    r = run_rnnq(*_compile(path, calib, tmp_path, option, value), "-q")
    _assert_clean_failure(r, f"{option} {value}")
    assert not (tmp_path / "out").exists()


def test_build_folder_mode_follows_the_umask(good: dict) -> None:
    """Not the 0700 of a temporary folder: a build folder is shared like any other."""
    mask = os.umask(0)
    os.umask(mask)
    assert good["build"].stat().st_mode & 0o777 == 0o777 & ~mask


def test_validate_reads_the_builds_own_model_whatever_the_manifest_says(
        good: dict, tmp_path: Path) -> None:
    b = tmp_path / "b"
    shutil.copytree(good["build"], b)
    m = json.loads((b / "manifest.json").read_text())
    m["model"] = {"file": "../../../../etc/passwd"}
    (b / "manifest.json").write_text(json.dumps(m))
    r = run_rnnq("validate", b, "--data", good["test"])
    assert r.code == 0, r.err


@pytest.mark.parametrize("field, value", [("outputs", "y"), ("streaming", "yes"),
                                          ("state_inputs", {"s": {"shape": "x"}}),
                                          ("format", "exe")])
def test_tampered_manifest_is_refused_with_one_line(field: str, value, good: dict,
                                                    tmp_path: Path) -> None:
    b = tmp_path / "b"
    shutil.copytree(good["build"], b)
    m = json.loads((b / "manifest.json").read_text())
    m[field] = value
    (b / "manifest.json").write_text(json.dumps(m))
    for argv in (["validate", b, "--data", good["test"]], ["inspect", b]):
        _assert_clean_failure(run_rnnq(*argv), "manifest.json")


@pytest.mark.parametrize("value", ["kl", {"no_such_tensor": "kl"}, {"": "magic"}])
def test_tampered_range_methods_are_refused_with_one_line(value, good: dict,
                                                          tmp_path: Path) -> None:
    """calibration.json's per-tensor methods (--calib-method auto) name tensors with a range
    and the methods there are."""
    b = tmp_path / "b"
    shutil.copytree(good["build"], b)
    rec = json.loads((b / "calibration.json").read_text())
    if value == {"": "magic"}:
        value = {next(iter(rec["tensors"])): "magic"}
    rec["range_methods"] = value
    (b / "calibration.json").write_text(json.dumps(rec))
    for argv in (["validate", b, "--data", good["test"]], ["inspect", b]):
        _assert_clean_failure(run_rnnq(*argv), "calibration.json: 'range_methods'")


@pytest.mark.parametrize("name", list(VALIDATE_CASES))
def test_validate_refuses(name: str, good: dict, tmp_path: Path) -> None:
    argv, names = VALIDATE_CASES[name](tmp_path, good)
    before = _tree(good["build"])
    _assert_clean_failure(run_rnnq(*argv), names)
    assert _tree(good["build"]) == before


# --- happy path ---------------------------------------------------------------------------------
#: The report keys a --json consumer may rely on, with their types (None: no y of that kind).
REPORT_KEYS = {
    "n": int, "target": str,
    "float": {"accuracy": (float, type(None)), "rmse": (float, type(None))},
    "int": {"accuracy": (float, type(None)), "rmse": (float, type(None)), "sqnr_db": float},
    "c": {"bit_exact": bool, "mismatches": int, "compared_values": int},
}


def _check_keys(rep: dict, want: dict, where: str = "report") -> None:
    for k, t in want.items():
        assert k in rep, f"{where} lacks {k!r}"
        v = rep[k]
        if isinstance(t, dict):
            _check_keys(v, t, f"{where}.{k}")
        elif t is bool:
            assert isinstance(v, bool), f"{where}.{k} = {v!r}"
        else:  # bool is an int in Python; a flag where a count belongs is wrong
            assert isinstance(v, t) and not isinstance(v, bool), f"{where}.{k} = {v!r}"


@pytest.mark.parametrize("data", ["test", "test_float_y"])
def test_compile_validate_json(data: str, good: dict, tmp_path: Path) -> None:
    require_tool("cc")
    require_tool("make")
    out = tmp_path / "nested" / "BUILD"
    r = run_rnnq("compile", good["model"], "--calib", good["calib"], "--target", "generic-c99",
                 "-o", out, "--prefix", "kws", "--calib-method", "percentile")
    assert r.code == 0 and "error" not in r.err and "Traceback" not in r.err, r.err
    assert f"wrote {out}/" in r.out and "MACs/step" in r.out
    assert {"model.h", "model.c", "weights.c", "manifest.json", "model.onnx"} <= {
        p.name for p in out.iterdir()}
    assert "KWS_" in (out / "model.h").read_text()

    report = tmp_path / "report.json"
    r = run_rnnq("validate", out, "--data", good[data], "--json", report)
    assert r.code == 0, r.out + r.err
    assert "Traceback" not in r.out + r.err and "bit-exact" in r.out
    rep = json.loads(report.read_text())
    _check_keys(rep, REPORT_KEYS)
    assert rep["c"]["bit_exact"] is True and rep["c"]["mismatches"] == 0
    assert rep["c"]["compared_values"] > 0
    assert rep["target"] == "generic-c99"
    classes = data == "test"
    assert rep["n"] == (20 if classes else 12)
    assert (rep["int"]["accuracy"] is not None) == classes
    assert (rep["int"]["rmse"] is not None) == (not classes)
    assert rep["float"]["accuracy" if classes else "rmse"] is not None
    assert rep["int"]["sqnr_db"] > 10.0


def test_validate_batch_first_lstm_is_quiet(good: dict, tmp_path: Path) -> None:
    require_tool("cc")
    require_tool("make")
    n = Net()
    h = n.squeeze(n.lstm("x", F, layout=1, outputs=("", "Y_h"))[1], 0)
    model = n.save(tmp_path / "bf.onnx", [1, "T", F], [n.gemm(h, H)])
    r = run_rnnq("compile", model, "--calib", good["calib"], "-o", tmp_path / "B", "-q")
    assert r.code == 0, r.err
    r = run_rnnq("validate", tmp_path / "B", "--data", good["test"])
    assert r.code == 0 and "bit-exact" in r.out, r.out + r.err
    assert r.err_lines == []


def test_inspect_model_and_build(good: dict) -> None:
    r = run_rnnq("inspect", good["model"])
    assert r.code == 0 and "Traceback" not in r.out + r.err, r.err
    assert "lstm" in r.out and "MACs/step" in r.out and "parameters" in r.out
    assert f"[{H}]" in r.out or f"{H}]" in r.out  # the hidden size shows in the shapes
    r = run_rnnq("inspect", good["build"])
    assert r.code == 0 and "Traceback" not in r.out + r.err, r.err
    assert "target generic-c99, prefix kws" in r.out
    assert "isa any, matvec kernels ref" in r.out  # the target's ISA, from the manifest
    assert "memory:" in r.out and "MACs/step" in r.out
    assert "int8" in r.out  # the integer graph


def test_inspect_missing_path(tmp_path: Path) -> None:
    _assert_clean_failure(run_rnnq("inspect", tmp_path / "nothing.onnx"),
                          str(tmp_path / "nothing.onnx"))


def test_console_script_runs(tmp_path: Path) -> None:
    """The installed `rnnq` entry point (beside this interpreter) starts and answers --help."""
    script = Path(sys.executable).with_name("rnnq")
    if not script.exists():
        script = shutil.which("rnnq")
        if script is None:
            pytest.skip("rnnq console script not installed")
    import subprocess

    p = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert p.returncode == 0 and "compile" in p.stdout and "validate" in p.stdout


def test_bad_model_is_refused_before_data_is_read(tmp_path: Path, cli_inputs) -> None:
    """The model's problem is reported even when the data is also bad (the model comes first)."""
    path, node = _conv_model(tmp_path / "conv.onnx")
    r = run_rnnq("compile", path, "--calib", _nan(tmp_path / "nan.npz"), "-o", tmp_path / "B")
    _assert_clean_failure(r, node)

"""rnnq validate: float model vs integer simulator vs the generated C, on every sequence.

The C harness is built with the target's toolchain in a temporary copy of BUILD/ (BUILD/ is
never modified) and run on the host. Its outputs of every timestep (from `_step`) and of the
whole sequence (from `_run`) are compared with the simulator by exact equality.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnq import api
from rnnq.data import Dataset, at_last_step, load_npz
from rnnq.ir import Graph, RnnqError
from rnnq.sim.float_ref import run_float
from rnnq.sim.integer import dequantize_output, quantize_input, run_integer
from rnnq.targets import load_target


@dataclass
class Build:
    path: Path
    manifest: dict
    float_graph: Graph
    int_graph: Graph


def open_build(path: str | Path) -> Build:
    path = Path(path)
    mf = path / api.MANIFEST
    if not mf.is_file():
        raise RnnqError(f"{path}: not an rnnq build folder (no {api.MANIFEST})")
    try:
        manifest = json.loads(mf.read_text())
        calib = json.loads((path / api.CALIBRATION).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RnnqError(f"{path}: unreadable build metadata ({e})") from None
    model = path / manifest["model"]["file"]
    return Build(path, manifest, api.float_graph(model), api.integer_graph(model, calib))


def float_outputs(b: Build, data: Dataset) -> tuple[list[np.ndarray], str]:
    """Per output [N, ...] at each sequence's end: onnxruntime on the original ONNX, one
    sequence at a time; rnnq's float reference where onnxruntime cannot take the shape."""
    import onnxruntime as ort

    g = b.float_graph
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(b.path / b.manifest["model"]["file"]), opts,
                                providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    ta = g.meta["input_time_axis"]
    step_shape = list(g.tensors[g.inputs[0]].shape)
    outs: list[list[np.ndarray]] = [[] for _ in g.outputs]
    try:
        for i in range(data.n):
            xi = data.x[i, : data.lengths[i]].reshape(data.lengths[i], *step_shape)
            xi = np.moveaxis(xi, 0, ta).astype(np.float32)
            res = sess.run(g.outputs, {in_name: xi})
            for k, name in enumerate(g.outputs):
                r = res[k]
                if g.tensors[name].kind == "seq":
                    r = np.moveaxis(r, g.tensors[name].time_axis, 0)[-1]
                outs[k].append(np.asarray(r, np.float64).reshape(g.tensors[name].shape))
        return [np.stack(o) for o in outs], "onnxruntime"
    except Exception:  # noqa: BLE001 - e.g. a model exported with a fixed sequence length
        env = run_float(g, data.x)
        return [at_last_step(env[name], data.lengths) for name in g.outputs], "rnnq-float-ref"


def _write_inputs(path: Path, xq: np.ndarray, lengths: np.ndarray) -> None:
    with path.open("wb") as f:
        f.write(struct.pack("<i", len(lengths)))
        for i, t_len in enumerate(lengths):
            f.write(struct.pack("<i", int(t_len)))
            f.write(xq[i, :t_len].astype(np.int8).tobytes())


def run_c_harness(b: Build, xq: np.ndarray, lengths: np.ndarray, target: str | None = None):
    """Build and run the harness; returns per sequence (step outputs [T, OUT], run outputs)."""
    tgt = load_target(target or b.manifest["target"])
    tc = tgt["toolchain"]
    with tempfile.TemporaryDirectory(prefix="rnnq-validate-") as td:
        work = Path(td) / "c"
        shutil.copytree(b.path, work)
        make = ["make", "-s", "-C", str(work), "harness", f"CC={tc['cc']}",
                f"CFLAGS={' '.join(tc['cflags'])}", f"LDFLAGS={' '.join(tc['ldflags'])}"]
        r = subprocess.run(make, check=False, capture_output=True, text=True)
        if r.returncode != 0:
            first = (r.stderr or r.stdout).strip().splitlines()
            raise RnnqError(f"{b.path}: C build failed: {first[0] if first else 'make error'}")
        _write_inputs(Path(td) / "in.bin", xq, lengths)
        r = subprocess.run([str(work / "harness"), str(Path(td) / "in.bin"),
                            str(Path(td) / "out.bin")], check=False, capture_output=True,
                           text=True)
        if r.returncode != 0:
            msg = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[0]
            raise RnnqError(f"{b.path}: C harness failed: {msg}")
        raw = np.frombuffer((Path(td) / "out.bin").read_bytes(), dtype=np.int8)
    return raw


def _split_c(raw: np.ndarray, b: Build, lengths: np.ndarray):
    outs = b.manifest["outputs"]
    total = sum(o["size"] for o in outs)
    pos = 0
    res = []
    for t_len in lengths:
        step = raw[pos : pos + t_len * total].reshape(t_len, total)
        pos += t_len * total
        n_run = sum(o["size"] * (t_len if o["kind"] == "seq" else 1) for o in outs)
        res.append((step, raw[pos : pos + n_run]))
        pos += n_run
    if pos != raw.size:
        raise RnnqError(f"{b.path}: C harness wrote {raw.size} bytes, expected {pos}")
    return res


def _sim_expected(b: Build, env: dict, lengths: np.ndarray):
    """What the C must print: per sequence, step outputs [T, OUT] and run outputs (flat)."""
    g = b.int_graph
    per = []
    for i, t_len in enumerate(lengths):
        step = np.concatenate([env[o][i, :t_len].reshape(t_len, -1) for o in g.outputs], axis=1)
        run = []
        for o in g.outputs:
            v = env[o][i, :t_len].reshape(t_len, -1)
            run.append(v.ravel() if g.tensors[o].kind == "seq" else v[-1])
        per.append((step, np.concatenate(run)))
    return per


def _metrics(pred: np.ndarray, y: np.ndarray | None) -> dict:
    out: dict = {"accuracy": None, "rmse": None}
    if y is None:
        return out
    if np.issubdtype(y.dtype, np.integer):
        out["accuracy"] = float(np.mean(pred.reshape(len(y), -1).argmax(axis=1) == y.ravel()))
    else:
        diff = pred.reshape(len(y), -1) - y.reshape(len(y), -1).astype(np.float64)
        out["rmse"] = float(np.sqrt(np.mean(diff**2)))
    return out


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    noise = float(np.sum((ref - test) ** 2))
    sig = float(np.sum(ref**2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(sig / noise) if sig > 0 else -math.inf


def validate(build_dir: str | Path, data_path: str | Path) -> dict:
    b = open_build(build_dir)
    g = b.int_graph
    data = load_npz(data_path, b.float_graph)
    fl, engine = float_outputs(b, data)
    xq = quantize_input(g, data.x)
    env = run_integer(g, xq)
    ints = [dequantize_output(g, o, at_last_step(env[o], data.lengths)) for o in g.outputs]
    raw = run_c_harness(b, xq.reshape(data.n, data.x.shape[1], -1), data.lengths)
    got = _split_c(raw, b, data.lengths)
    want = _sim_expected(b, env, data.lengths)
    mism = compared = 0
    for (cs, cr), (ss, sr) in zip(got, want):
        mism += int(np.sum(cs != ss)) + int(np.sum(cr != sr))
        compared += cs.size + cr.size
    f0, i0 = fl[0], ints[0]
    rep = {
        "n": data.n,
        "target": b.manifest["target"],
        "float": {**_metrics(f0, data.y), "engine": engine},
        "int": {**_metrics(i0, data.y), "sqnr_db": sqnr_db(f0, i0),
                "max_abs_error": float(np.max(np.abs(f0 - i0))),
                "max_error_lsb": float(np.max(np.abs(f0 - i0)) / b.manifest["outputs"][0]["scale"])},
        "c": {"bit_exact": mism == 0, "mismatches": mism, "compared_values": compared},
    }
    return rep


def format_report(rep: dict) -> str:
    def f(v, pct=False):
        if v is None:
            return "-"
        return f"{100 * v:.2f} %" if pct else f"{v:.6g}"

    rows = [
        ("", "float", "integer (simulator)", "C vs simulator"),
        ("accuracy", f(rep["float"]["accuracy"], True), f(rep["int"]["accuracy"], True), ""),
        ("rmse", f(rep["float"]["rmse"]), f(rep["int"]["rmse"]), ""),
        ("SQNR vs float", "", f"{rep['int']['sqnr_db']:.2f} dB", ""),
        ("max |error|", "", (f"{f(rep['int']['max_abs_error'])} "
                             f"({rep['int']['max_error_lsb']:.1f} LSB)"), ""),
        ("bit-exact", "", "", (f"{'yes' if rep['c']['bit_exact'] else 'NO'} "
                              f"({rep['c']['mismatches']} of {rep['c']['compared_values']} differ)")),
    ]
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [(f"rnnq validate: {rep['n']} sequences, target {rep['target']}, "
             f"float by {rep['float']['engine']}")]
    for r in rows:
        lines.append("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
    return "\n".join(lines)

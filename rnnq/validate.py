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
from rnnq.data import Dataset, at_last_step, load_npz, valid_mask
from rnnq.ir import Graph, RnnqError
from rnnq.sim.float_ref import run_float
from rnnq.sim.integer import dequantize_output, quantize_input, quantize_states, run_integer
from rnnq.targets import load_target


@dataclass
class Build:
    path: Path
    manifest: dict
    float_graph: Graph
    int_graph: Graph | None  # None for a tflite build (validate reads model.tflite)


def open_build(path: str | Path) -> Build:
    path = Path(path)
    mf = path / api.MANIFEST
    if not mf.is_file():
        raise RnnqError(f"{path}: not an rnnq build folder (no {api.MANIFEST})")
    try:
        manifest = json.loads(mf.read_text())
        calib = (None if manifest.get("format") == "tflite"
                 else json.loads((path / api.CALIBRATION).read_text()))
    except (OSError, json.JSONDecodeError) as e:
        raise RnnqError(f"{path}: unreadable build metadata ({e})") from None
    model = path / manifest["model"]["file"]
    if manifest.get("format") == "tflite":
        return Build(path, manifest, api.float_graph(model), None)
    return Build(path, manifest, api.float_graph(model), api.integer_graph(model, calib))


def float_outputs(b: Build, data: Dataset) -> tuple[list[np.ndarray], str]:
    """Per output [N, ...] at each sequence's end: onnxruntime on the original ONNX, one
    sequence at a time; rnnq's float reference where onnxruntime cannot take the shape."""
    import onnxruntime as ort

    g = b.float_graph
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # its refusals (e.g. layout=1) are handled: keep stderr clean
    ort.set_default_logger_severity(4)
    in_name = g.inputs[0]
    ta = g.meta["input_time_axis"]
    step_shape = list(g.tensors[g.inputs[0]].shape)
    outs: list[list[np.ndarray]] = [[] for _ in g.outputs]
    try:
        sess = ort.InferenceSession(str(b.path / b.manifest["model"]["file"]), opts,
                                    providers=["CPUExecutionProvider"])
        types = {i.name: i.type for i in sess.get_inputs()}
        for i in range(data.n):
            xi = data.x[i, : data.lengths[i]].reshape(data.lengths[i], *step_shape)
            xi = np.moveaxis(xi, 0, ta)
            feed = {in_name: xi.astype(np.int64 if "int64" in types[in_name] else
                                       np.int32 if "int32" in types[in_name] else np.float32)}
            for name in g.meta.get("sequence_lens_inputs", []):
                feed[name] = np.full(_batch(g), data.lengths[i], np.int32)
            for name, (dt, count, rank) in g.meta.get("length_inputs", {}).items():
                v = np.full(count, data.lengths[i], dtype=dt)
                feed[name] = v if rank else v.reshape(())
            for name, info in g.meta.get("state_inputs", {}).items():
                v = (data.states or {}).get(name)
                feed[name] = (np.zeros(info["shape"]) if v is None else v[i]).astype(np.float32)
            res = sess.run(g.outputs, feed)
            for k, name in enumerate(g.outputs):
                r = res[k]
                if g.tensors[name].kind == "seq":
                    r = np.moveaxis(r, g.tensors[name].time_axis, 0)[-1]
                outs[k].append(np.asarray(r, np.float64).reshape(g.tensors[name].shape))
        return [np.stack(o) for o in outs], "onnxruntime"
    except Exception:  # noqa: BLE001 - e.g. a model exported with a fixed sequence length
        env = run_float(g, data.x, lengths=data.lengths, states=data.states)
        return [at_last_step(env[name], data.lengths) for name in g.outputs], "rnnq-float-ref"


def _batch(g: Graph) -> int:
    for n in g.nodes:
        if n.op in ("lstm", "gru", "rnn"):
            return g.tensors[n.inputs[0]].shape[0]
    return 1


def _write_inputs(path: Path, xq: np.ndarray, lengths: np.ndarray, states: list) -> None:
    """states: [(values [N, ...], little-endian dtype)] in the harness's order."""
    dt = "<i4" if xq.dtype == np.int64 else np.int8  # token ids travel as int32
    with path.open("wb") as f:
        f.write(struct.pack("<i", len(lengths)))
        for i, t_len in enumerate(lengths):
            f.write(struct.pack("<i", int(t_len)))
            f.write(xq[i, :t_len].astype(dt).tobytes())
            for v, sdt in states:
                f.write(v[i].astype(sdt).tobytes())


def _harness_target(b: Build, on: str):
    """The toolchain and runner that build and run the harness.

    on="host": the build's own target if it runs on this machine, else portable C on the host
    (the target's kernel variants fall back to portable code there). on="emulator": the
    target's cross toolchain, test-firmware flags and runner (emulated board)."""
    tgt = load_target(b.manifest["target"])
    if on == "emulator" or tgt["run"]["runner"] == "host":
        return tgt, True
    return load_target("generic-c99"), False


def run_c_harness(b: Build, xq: np.ndarray, lengths: np.ndarray, on: str = "host",
                  states: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, str]:
    """Build and run the harness; returns the raw bytes it wrote (see harness.c) and a
    description of where it ran."""
    tgt, firmware = _harness_target(b, on)
    tc = tgt["toolchain"]
    for tool in (tc["cc"], tgt["run"]["command"][0]):
        if not tool.startswith("{") and shutil.which(tool) is None:
            raise RnnqError(f"{tool} not found: it is needed to build and run {b.path}'s test "
                            f"program for {tgt.name} (see README, 'Targets')")
    with tempfile.TemporaryDirectory(prefix="rnnq-validate-") as td:
        work = Path(td) / "c"
        shutil.copytree(b.path, work)
        fw = tgt["firmware"] if firmware else {"cflags": [], "ldflags": []}
        make = ["make", "-s", "-C", str(work), "harness", f"CC={tc['cc']}",
                f"CFLAGS={' '.join(tc['cflags'])}", f"LDFLAGS={' '.join(tc['ldflags'])}",
                f"FW_CFLAGS={' '.join(fw['cflags'])}", f"FW_LDFLAGS={' '.join(fw['ldflags'])}"]
        r = subprocess.run(make, check=False, capture_output=True, text=True)
        if r.returncode != 0:
            first = (r.stderr or r.stdout).strip().splitlines()
            raise RnnqError(f"{b.path}: C build failed: {first[0] if first else 'make error'}")
        order = []
        for name, info in b.manifest.get("state_inputs", {}).items():
            v = (states or {}).get(name)
            if v is None:
                v = np.zeros((len(lengths), *info["shape"]), np.int64)
            order.append((v, "<i2" if info["which"] == "c" else np.int8))
        _write_inputs(work / "in.bin", xq, lengths, order)
        cmd = [a.replace("{firmware}", str(work / "harness")) for a in tgt["run"]["command"]]
        try:
            r = subprocess.run(cmd, cwd=work, check=False, capture_output=True, text=True,
                               timeout=tgt["run"]["timeout_s"])
        except subprocess.TimeoutExpired:
            raise RnnqError(f"{b.path}: the test program did not finish within "
                            f"{tgt['run']['timeout_s']} s on {tgt['run']['board']}") from None
        if r.returncode != 0:
            msg = ((r.stderr + r.stdout).strip().splitlines() or [f"exit status {r.returncode}"])
            raise RnnqError(f"{b.path}: C harness failed on {tgt['run']['board']}: {msg[0]}")
        raw = np.frombuffer((work / "out.bin").read_bytes(), dtype=np.int8)
    return raw, f"{tgt['run']['board']} ({tc['cc']})"


def _split_c(raw: np.ndarray, b: Build, lengths: np.ndarray):
    outs = b.manifest["outputs"]
    total = sum(o["size"] for o in outs)
    streaming = b.manifest.get("streaming", True)
    pos = 0
    res = []
    for t_len in lengths:
        n_step = t_len * total if streaming else 0
        step = raw[pos : pos + n_step].reshape(-1, total)
        pos += n_step
        n_run = sum(o["size"] * (t_len if o["kind"] == "seq" else 1) for o in outs)
        res.append((step, raw[pos : pos + n_run]))
        pos += n_run
    if pos != raw.size:
        raise RnnqError(f"{b.path}: C harness wrote {raw.size} bytes, expected {pos}")
    return res


def _sim_expected(b: Build, env: dict, lengths: np.ndarray):
    """What the C must print: per sequence, step outputs [T, OUT] and run outputs (flat)."""
    g = b.int_graph
    streaming = b.manifest.get("streaming", True)
    per = []
    for i, t_len in enumerate(lengths):
        step = np.concatenate([env[o][i, :t_len].reshape(t_len, -1) for o in g.outputs], axis=1)
        if not streaming:
            step = step[:0]
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


def _compare(b: Build, raw: np.ndarray, env: dict, lengths: np.ndarray) -> dict:
    got = _split_c(raw, b, lengths)
    want = _sim_expected(b, env, lengths)
    mism = compared = 0
    for (cs, cr), (ss, sr) in zip(got, want):
        mism += int(np.sum(cs != ss)) + int(np.sum(cr != sr))
        compared += cs.size + cr.size
    return {"bit_exact": mism == 0, "mismatches": mism, "compared_values": compared}


def validate(build_dir: str | Path, data_path: str | Path, on: str = "host") -> dict:
    b = open_build(build_dir)
    data = load_npz(data_path, b.float_graph)
    if b.manifest.get("format") == "tflite":
        if on != "host":
            raise RnnqError(f"{build_dir}: a tflite build runs in LiteRT; --on {on} applies to "
                            "C builds")
        from rnnq.tflite.build import validate_tflite

        return validate_tflite(b, data)
    g = b.int_graph
    fl, engine = float_outputs(b, data)
    xq = quantize_input(g, data.x)
    sq = quantize_states(g, data.states or {})
    env = run_integer(g, xq, data.lengths, sq)
    ints = [dequantize_output(g, o, at_last_step(env[o], data.lengths)) for o in g.outputs]
    xs = xq.reshape(data.n, data.x.shape[1], -1)
    raw, _ = run_c_harness(b, xs, data.lengths, "host", states=sq)
    c_rep = _compare(b, raw, env, data.lengths)
    device = None
    if on == "emulator":
        raw, runner = run_c_harness(b, xs, data.lengths, "emulator", states=sq)
        device = {**_compare(b, raw, env, data.lengths), "runner": runner}
    f0, i0 = fl[0], ints[0]
    clipped = _clipped_inputs(g, data)
    rep = {
        "n": data.n,
        "target": b.manifest["target"],
        "float": {**_metrics(f0, data.y), "engine": engine},
        "int": {**_metrics(i0, data.y), "sqnr_db": sqnr_db(f0, i0),
                "max_abs_error": float(np.max(np.abs(f0 - i0))),
                "max_error_lsb": float(np.max(np.abs(f0 - i0)) / b.manifest["outputs"][0]["scale"]),
                "input_clipped": clipped},
        "c": c_rep,
        "error_by_step": error_by_step(b, data, env),
    }
    if device is not None:
        rep["device"] = device
    return rep


def _clipped_inputs(g: Graph, data: Dataset) -> float:
    """Fraction of real input values beyond the int8 input's range (they saturate)."""
    t = g.tensors[g.inputs[0]]
    if t.q is None:
        return 0.0
    x = data.x.reshape(*data.x.shape[:2], *t.shape).astype(np.float64)
    q = np.round(x / t.q.scale) + t.q.zero_point
    out = (q < -128) | (q > 127)
    mask = valid_mask(data.lengths, data.x.shape[1]).reshape(
        data.n, data.x.shape[1], *([1] * len(t.shape)))
    return float(np.sum(out & mask) / max(1, np.sum(np.broadcast_to(mask, out.shape))))


def error_by_step(b: Build, data: Dataset, env: dict) -> dict:
    """Integer-vs-float error of the first output at each timestep t (over the sequences that
    reach t): SQNR in dB and RMSE. A 'final' output at t is the answer "if the sequence ended
    at t" (streamable models); whole-sequence models only have an answer at the end."""
    g = b.int_graph
    name = g.outputs[0]
    if not b.manifest.get("streaming", True) and g.tensors[name].kind != "seq":
        return {"sqnr_db": [], "rmse": []}
    fenv = run_float(b.float_graph, data.x, lengths=data.lengths, states=data.states)
    # the integer graph may rename an output (an int16 state requantised to int8)
    fl = fenv[b.float_graph.outputs[0]].reshape(data.n, data.x.shape[1], -1)
    iq = dequantize_output(g, name, env[name]).reshape(fl.shape)
    sq, rm = [], []
    for t in range(int(data.lengths.max())):
        live = data.lengths > t
        f, i = fl[live, t], iq[live, t]
        sq.append(round(sqnr_db(f, i), 3) if np.isfinite(sqnr_db(f, i)) else 999.0)
        rm.append(float(np.sqrt(np.mean((f - i) ** 2))))
    return {"sqnr_db": sq, "rmse": rm}


def format_report(rep: dict) -> str:
    def f(v, pct=False):
        if v is None:
            return "-"
        return f"{100 * v:.2f} %" if pct else f"{v:.6g}"

    rows = [
        ("", "float", "integer (simulator)",
         "LiteRT vs simulator" if "tflite" in rep else "C vs simulator"),
        ("accuracy", f(rep["float"]["accuracy"], True), f(rep["int"]["accuracy"], True), ""),
        ("rmse", f(rep["float"]["rmse"]), f(rep["int"]["rmse"]), ""),
        ("SQNR vs float", "", f"{rep['int']['sqnr_db']:.2f} dB", ""),
        ("max |error|", "", (f"{f(rep['int']['max_abs_error'])} "
                             f"({rep['int']['max_error_lsb']:.1f} LSB)"), ""),
    ]
    for key, label in (("c", "bit-exact"), ("tflite", "LiteRT bit-exact")):
        if key in rep:
            e = rep[key]
            rows.append((label, "", "", (f"{'yes' if e['bit_exact'] else 'NO'} ({e['mismatches']}"
                                         f" of {e['compared_values']} differ)")))
    if "tflite" in rep:
        d = rep["tflite"]["default_delegates"]
        rows.append(("LiteRT + XNNPACK", "", "", (f"{d['mismatches']} differ from LiteRT builtin "
                     f"(max {d['max_diff_lsb']} LSB)")))
    tm = rep.get("tflite_micro")
    if tm is not None:
        rows.append(("TFLite Micro", "", "", (
            f"{tm['mismatches_vs_litert']} of {tm['compared_values']} differ from LiteRT "
            f"(max {tm['max_diff_lsb']} LSB)" if tm["ran"] else tm["reason"])))
    if "device" in rep:
        d = rep["device"]
        rows.append(("on the device", "", "", (f"{'yes' if d['bit_exact'] else 'NO'} "
                     f"({d['mismatches']} of {d['compared_values']} differ; {d['runner']})")))
    clipped = rep["int"].get("input_clipped")
    if clipped:
        rows.append(("inputs clipped", "", f"{100 * clipped:.2f} %", ""))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [(f"rnnq validate: {rep['n']} sequences, target {rep['target']}, "
             f"float by {rep['float']['engine']}")]
    for r in rows:
        lines.append("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
    if clipped and clipped > 0.01:
        lines.append("note: some test inputs lie beyond the calibrated input range and saturate; "
                     "compile with more --headroom or more representative calibration data")
    return "\n".join(lines)

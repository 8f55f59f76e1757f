"""compile / validate / inspect: the one place where the pass order is written."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnnq import __version__
from rnnq import numerics as nx
from rnnq.backends.c import emit_c
from rnnq.data import load_npz
from rnnq.frontend.onnx import import_onnx
from rnnq.ir import Graph, RnnqError
from rnnq.passes.calibrate import calibrate
from rnnq.passes.canonicalize import fold_dense_bias, fuse_dense_relu
from rnnq.passes.quantize import quantize
from rnnq.targets import load_target

#: Float-IR passes, in order (each f(graph) -> graph).
CANONICALIZE = (fold_dense_bias, fuse_dense_relu)
MANIFEST = "manifest.json"
CALIBRATION = "calibration.json"
MODEL_COPY = "model.onnx"
_RECURRENT = ("lstm", "gru", "rnn")
_GATES = {"lstm": 4, "gru": 3, "rnn": 1, "qlstm": 4, "qgru": 3, "qrnn": 1}

Progress = Callable[[int, int], None]  # (sequences done, total)


def float_graph(model_path: str | Path) -> Graph:
    """ONNX -> canonical float IR."""
    g = import_onnx(model_path)
    for p in CANONICALIZE:
        g = p(g)
    return g


def _ranges_to_json(g: Graph) -> dict:
    lo, hi = g.meta["input_channel_range"]
    return {
        "meta": g.meta["calibration"],
        "tensors": {t.name: list(t.range) for t in g.tensors.values() if t.range is not None},
        "input_channel_range": [lo.tolist(), hi.tolist()],
        "recurrent": {n.outputs[0]: {k: n.attrs[k] for k in ("cell_absmax", "gate_range")
                                     if k in n.attrs}
                      for n in g.nodes if n.op in _RECURRENT},
    }


def _ranges_from_json(g: Graph, d: dict) -> Graph:
    """Re-apply recorded calibration: rebuilds the identical integer IR without the data."""
    from rnnq.ir import Stage

    for name, r in d["tensors"].items():
        g.tensors[name].range = (float(r[0]), float(r[1]))
    lo, hi = d["input_channel_range"]
    g.meta["input_channel_range"] = (np.array(lo, np.float64), np.array(hi, np.float64))
    for n in g.nodes:
        if n.op in _RECURRENT:
            n.attrs.update(d["recurrent"][n.outputs[0]])
    g.meta["calibration"] = d["meta"]
    g.stage = Stage.CALIBRATED
    return g


def _scale_fixed(s: float) -> tuple[int, int]:
    """scale = q31 * 2^-(31 + exp), q31 in [2^30, 2^31): integer form for C headers."""
    m, sh = nx.quantize_multiplier(s) if s < 2**29 else (0, 1)
    return m, sh - 31


def _io_info(g: Graph) -> dict:
    t = g.tensors[g.inputs[0]]
    if t.q is None:  # token ids
        inp = {"name": t.name, "per_channel": False, "step_shape": list(t.shape), "ids": True,
               "time_axis": g.meta["input_time_axis"], "scale": None, "zero_point": None}
        return {"input": inp, "outputs": _out_info(g), "states": _state_info(g)}
    scales = np.atleast_1d(t.q.scale).astype(float)
    zps = np.atleast_1d(t.q.zero_point).astype(int)
    fixed = [_scale_fixed(float(s)) for s in scales]
    inp = {
        "name": t.name, "per_channel": t.q.axis is not None, "step_shape": list(t.shape),
        "time_axis": g.meta["input_time_axis"], "scale": scales.tolist(),
        "zero_point": zps.tolist(),
        "scale_text": f"{scales[0]:.9g}", "scale_q31": fixed[0][0], "scale_exp": fixed[0][1],
        "zero_points": ", ".join(str(z) for z in zps),
        "scales_q31": ", ".join(str(f[0]) for f in fixed),
        "scales_exp": ", ".join(str(f[1]) for f in fixed),
    }
    return {"input": inp, "outputs": _out_info(g), "states": _state_info(g)}


def _state_info(g: Graph) -> dict:
    """How each initial-state model input is quantised, per direction (header, manifest)."""
    from rnnq.sim.integer import state_formats

    out = {}
    for name, fmts in state_formats(g).items():
        out[name] = [{"ctype": ct, "scale": s, "zero_point": z,
                      "text": (f"int16, q = round(v * 2^{round(-np.log2(s))})" if ct == "int16_t"
                               else f"int8, q = round(v / {s:.9g}) + {z}")}
                     for ct, s, z in fmts]
    return out


def _out_info(g: Graph) -> list[dict]:
    outs = []
    for name in g.outputs:
        o = g.tensors[name]
        s = float(o.q.scale)
        q31, e = _scale_fixed(s)
        outs.append({"name": name, "kind": o.kind, "step_shape": list(o.shape), "size": o.size,
                     "scale": s, "zero_point": int(o.q.zero_point), "scale_text": f"{s:.9g}",
                     "scale_q31": q31, "scale_exp": e})
    return outs


def integer_graph(model_path: str | Path, calib: dict) -> Graph:
    return quantize(_ranges_from_json(float_graph(model_path), calib))


def compile_model(model: str | Path, calib: str | Path, out_dir: str | Path,
                  target: str = "generic-c99", prefix: str | None = None,
                  calib_method: str = "minmax", progress: Progress | None = None,
                  log: Callable[[str], None] = lambda s: None, seq_len: int | None = None,
                  max_steps: int | None = None, headroom: float = 1.25,
                  flash: int | None = None, ram: int | None = None, fmt: str = "c",
                  float_io: bool = False, tflite_loop: str = "unrolled") -> dict:
    """ONNX + calibration data -> BUILD/ (C sources, manifest.json, what validate needs);
    with fmt "tflite", BUILD/model.tflite instead of C (rnnq.tflite.build).

    The folder is written in a temporary sibling and moved into place only when complete.
    """
    model, out_dir = Path(model), Path(out_dir)
    _check_out_dir(out_dir)
    tgt = load_target(target)
    prefix = prefix or "model"
    g = float_graph(model)
    data = load_npz(calib, g)  # bad input is reported before any progress line
    if fmt == "tflite":  # what TFLite cannot express is reported before calibrating
        from rnnq.tflite import require
        from rnnq.tflite.lower import lower

        require("tflite", "flatbuffers")
        lower(g, 1)
    log(f"imported {model}: {len(g.nodes)} IR nodes")
    log(f"calibrating on {data.n} sequences ({calib_method})")
    calibrate(g, data, method=calib_method, progress=progress, seq_len=seq_len,
              headroom=headroom)
    if fmt == "tflite":
        from rnnq.tflite.build import compile_tflite

        return compile_tflite(g, data, model, out_dir, seq_len=seq_len, headroom=headroom,
                              float_io=float_io, log=log, loop=tflite_loop)
    cal = _ranges_to_json(g)
    ig = quantize(g)
    io = _io_info(ig)

    def fill(tmp: Path) -> dict:
        facts = emit_c(ig, tgt, tmp, prefix, io, _max_steps(g, data, seq_len, max_steps, log))
        facts["target_memory"] = _target_memory(tmp, tgt, prefix, facts, flash, ram, log)
        (tmp / CALIBRATION).write_text(json.dumps(cal, indent=1, sort_keys=True) + "\n")
        return _manifest(ig, tgt.name, prefix, io, facts)

    return write_build(out_dir, model, fill)


def write_build(out_dir: Path, model: Path, fill: Callable[[Path], dict]) -> dict:
    """Write a build folder atomically: `fill(tmp)` writes the files into a temporary sibling
    and returns the manifest; the folder replaces `out_dir` only when all of it is written."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        shutil.copyfile(model, tmp / MODEL_COPY)
        manifest = fill(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _target_memory(build: Path, tgt, prefix: str, facts: dict, flash: int | None,
                   ram: int | None, log) -> dict:
    """Flash and RAM on the target, measured with its toolchain, checked against the budget."""
    from rnnq.backends.memory import measure

    m = measure(build, tgt, prefix)
    budget = tgt["budget"]
    flash_budget = budget["flash_bytes"] if flash is None else flash
    ram_budget = budget["ram_bytes"] if ram is None else ram
    if m is None:
        log(f"note: {tgt['toolchain']['cc']} not found: flash/RAM on {tgt.name} not measured")
        return {"measured": False, "toolchain": tgt["toolchain"]["cc"]}
    ram_total = (facts["arena_bytes"] + facts["state_bytes"] + m["stack_bytes"]
                 + m["static_ram_bytes"])
    res = {"measured": True, **m, "ram_bytes": ram_total, "part": budget["part"],
           "flash_budget_bytes": flash_budget, "ram_budget_bytes": ram_budget}
    over = ((flash_budget and m["flash_bytes"] > flash_budget)
            or (ram_budget and ram_total > ram_budget))
    if over:
        raise RnnqError(
            f"model does not fit {tgt.name}: it needs {m['flash_bytes']} B flash and "
            f"{ram_total} B RAM (arena {facts['arena_bytes']} + state {facts['state_bytes']} + "
            f"stack {m['stack_bytes']} + static {m['static_ram_bytes']}); the budget is "
            f"{flash_budget} B flash and {ram_budget} B RAM ({budget['part']}); "
            "use --flash/--ram to change it")
    return res


def _check_out_dir(out_dir: Path) -> None:
    """The build folder is replaced as a whole: never a folder holding anything else."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise RnnqError(f"{out_dir}: exists and is not a folder")
    here = Path.cwd().resolve()
    if out_dir.resolve() in (here, *here.parents):
        raise RnnqError(f"{out_dir}: is the current folder or one of its parents; "
                        "choose a separate build folder")
    if any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
        raise RnnqError(f"{out_dir}: exists and is not an rnnq build folder (no {MANIFEST}); "
                        "refusing to replace it")


def _max_steps(g: Graph, data, seq_len: int | None, max_steps: int | None, log) -> int:
    """Whole-sequence models size their buffers for this many steps."""
    if max_steps:
        return int(max_steps)
    n = int(seq_len or static_time(g) or data.x.shape[1])
    if not g.meta.get("streaming", True):
        log(f"whole-sequence model: buffers sized for {n} steps (set --max-steps to change)")
    return n


def static_time(g: Graph) -> int | None:
    """The model input's fixed number of timesteps, or None when the time axis is symbolic."""
    dims = g.meta.get("input_full_shape") or []
    t = dims[g.meta["input_time_axis"]] if dims else None
    return t if t else None


def _manifest(g: Graph, target: str, prefix: str, io: dict, facts: dict) -> dict:
    tensors = {}
    for t in g.tensors.values():
        if t.q is not None and t.kind != "const":
            tensors[t.name] = {"dtype": t.dtype, "kind": t.kind, "shape": list(t.shape),
                               "scale": np.atleast_1d(t.q.scale).tolist(),
                               "zero_point": np.atleast_1d(t.q.zero_point).tolist()}
    rec = []
    for n in g.nodes:
        if n.op in ("qlstm", "qgru", "qrnn"):
            p = n.attrs["params"]
            info = {"node": n.name, "kind": n.op[1:], "reverse": n.attrs["reverse"],
                    "input_size": p.input_size, "hidden_size": p.hidden_size,
                    "gate_preact_range_calibrated": n.attrs["gate_range"]}
            if n.op == "qlstm":
                info.update(cell_frac_bits=p.cell_frac,
                            cell_absmax_calibrated=n.attrs["cell_absmax"])
            rec.append(info)
    strip = ("scale_text", "scale_q31", "scale_exp", "zero_points", "scales_q31", "scales_exp")
    return {
        "rnnq_version": __version__, "target": target, "prefix": prefix,
        "model": {"file": MODEL_COPY,
                  "sha256": g.meta.get("model_sha256", ""), "source": g.meta.get("model_path")},
        "files": facts["files"] + [MODEL_COPY, CALIBRATION, MANIFEST],
        "memory": {"weight_bytes": facts["weight_bytes"], "arena_bytes": facts["arena_bytes"],
                   "state_bytes": facts["state_bytes"]},
        "target_memory": facts["target_memory"],
        "streaming": facts["streaming"], "max_steps": facts["max_steps"],
        "macs_per_step": macs_per_step(g),
        "input": {k: v for k, v in io["input"].items() if k not in strip},
        "outputs": [{k: v for k, v in o.items() if k not in strip} for o in io["outputs"]],
        "state_inputs": {k: {**g.meta["state_inputs"][k], "formats": v}
                         for k, v in io["states"].items()},
        "calibration": g.meta.get("calibration"),
        "recurrent": rec,
        "tensors": tensors,
    }


def macs_per_step(g: Graph) -> int:
    total = 0
    for n in g.nodes:
        p = n.attrs.get("params")
        if n.op in _GATES:
            h = (p.hidden_size if p else g.tensors[n.inputs[2]].shape[1])
            i = (p.input_size if p else g.tensors[n.inputs[1]].shape[1])
            batch = g.tensors[n.inputs[0]].size // i
            total += batch * _GATES[n.op] * h * (i + h)
        elif n.op in ("dense", "qdense"):
            out = g.tensors[n.outputs[0]]
            k = p.in_features if p else g.tensors[n.inputs[1]].shape[1]
            total += out.size * k
    return total


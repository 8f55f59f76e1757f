"""rnnq's public API — compile, validate, and the graphs of a model or build folder — and the
one place where each output format's pipeline is written.

    ONNX ─import─▶ float IR ─canonicalize─▶ ─calibrate─▶ calibrated IR
      c:      ─quantize─▶ integer IR ─emit─▶ C files ─measure on target─▶ build/
      tflite: ─lower─▶ float TGraph ─calibrate, quantize─▶ integer TGraph ─emit─▶ model.tflite

A step is a plain function of the compilation's `Job` (rnnq.steps); its docstring says what it
needs and what it makes.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Callable
from functools import partial, wraps
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from rnnq import progress, steps, steps_tflite
from rnnq.backends.c.layouts import fused, fused_emitted, matvec_layout
from rnnq.build_folder import BuildFolder, open_build
from rnnq.data import DataSource, load_npz
from rnnq.diagnose import per_layer_c, per_layer_tflite
from rnnq.ir import Graph, RnnqError, macs_per_step, node_macs, static_time
from rnnq.ir.ops import INT_RECURRENT
from rnnq.passes.calibrate import apply_ranges
from rnnq.passes.observer import CHOICES
from rnnq.passes.quantize import quantize
from rnnq.validation import simulate as simulate_build
from rnnq.validation import validate_c, validate_tflite

#: The widest --headroom: 16x the calibrated range costs 4 bits of every int8 tensor already.
MAX_HEADROOM = 16.0

#: ONNX -> canonical float IR (what validate and inspect rebuild from a build's model.onnx).
FLOAT_STEPS: tuple[steps.Step, ...] = (steps.import_model, steps.collapse_reshapes,
                                       steps.fold_dense_affine,
                                       steps.fuse_dense_relu, steps.fuse_magnitude)

#: The steps of each output format, in order.
PIPELINES: dict[str, tuple[steps.Step, ...]] = {
    "c": (steps.check_out_dir, steps.resolve_target, *FLOAT_STEPS, steps.check_precision,
          steps.load_data, steps.calibrate,
          steps.quantize_c, steps.emit_c, steps.measure_on_target, steps.describe_c,
          steps.write_folder),
    "tflite": (steps.check_out_dir, *FLOAT_STEPS, steps.check_precision, steps.load_data,
               steps.check_tflite, steps.calibrate, steps_tflite.lower_tflite,
               steps_tflite.widen_tflite, steps_tflite.quantize_tflite, steps_tflite.emit_tflite,
               steps.write_folder),
}

Progress = steps.Progress


def one_blas_thread(fn: Callable) -> Callable:
    """Run fn with BLAS (numpy's matmul) on one thread. rnnq multiplies many small matrices —
    a batch of sequences by a layer's weights, one timestep at a time — and a BLAS that splits
    each product over threads spends more waking them than it saves, and on a busy machine
    waits for them: the batched simulator of an 8x16 LSTM ran 3.4x faster on one OpenBLAS
    thread than on two (2-CPU machine, another job running), compile and validate steadier."""
    @wraps(fn)
    def limited(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)
    return limited


def run_pipeline(job: steps.Job, pipeline: tuple[steps.Step, ...]) -> steps.Job:
    for step in pipeline:
        step(job)
    return job


def float_graph(model_path: str | Path) -> Graph:
    """ONNX -> canonical float IR."""
    job = steps.Job(Path(model_path), Path(), Path())
    return run_pipeline(job, FLOAT_STEPS).graph


def integer_graph(model_path: str | Path, calibration: dict) -> Graph:
    """ONNX + a C build's calibration record -> the build's integer IR, exactly."""
    return quantize(apply_ranges(float_graph(model_path), calibration))


def _source(data: DataSource) -> DataSource:
    return Path(data) if isinstance(data, str) else data


@one_blas_thread
def compile_model(model: str | Path, calib: DataSource, out_dir: str | Path,
                  target: str = "generic-c99", prefix: str | None = None,
                  calib_method: str = "auto", progress: Progress | None = None,
                  log: Callable[[str], None] = lambda s: None, seq_len: int | None = None,
                  max_steps: int | None = None, headroom: float = 1.25,
                  flash: int | None = None, ram: int | None = None, fmt: str = "c",
                  float_io: bool = False, tflite_loop: str = "unrolled",
                  input_bits: str | int = "auto", state_bits: str | int = "auto",
                  output_bits: str | int = "auto",
                  precision: str = "auto", min_sqnr: float = 35.0,
                  max_drop: float | None = None, weights: str = "auto",
                  packages: tuple[str, ...] | list[str] = ()) -> dict:
    """ONNX + calibration data -> BUILD/ (C sources or model.tflite, manifest.json, the ONNX
    copy); returns the manifest. The folder is written whole or not at all."""
    if fmt not in PIPELINES:
        raise RnnqError(f"unknown format {fmt!r} (one of {', '.join(PIPELINES)})")
    if calib_method not in CHOICES:
        raise RnnqError(f"--calib-method {calib_method!r}: one of {', '.join(CHOICES)}")
    if fmt == "tflite" and calib_method == "auto":
        calib_method = "minmax"  # .tflite builds do not measure choices (yet): minmax
    if not (math.isfinite(headroom) and 1.0 <= headroom <= MAX_HEADROOM):
        raise RnnqError(f"--headroom {headroom}: a factor from 1 to {MAX_HEADROOM:g} (how far "
                        "beyond the calibrated ranges values may go)")
    for name, v in (("input_bits", input_bits), ("state_bits", state_bits),
                    ("output_bits", output_bits)):
        if str(v) not in ("auto", "8", "16"):
            raise RnnqError(f"{name} {v!r}: one of auto, 8, 16")
        if fmt == "tflite" and name == "state_bits" and str(v) == "16":
            raise RnnqError(f"{name} 16 is a C build option (use --precision)")
    if str(state_bits) != "auto":  # the older spelling of --precision int8 / int16
        if precision != "auto":
            raise RnnqError("--state-bits and --precision both given: use --precision")
        precision = f"int{state_bits}"
    steps.parse_precision(precision)  # a malformed spec fails before any work
    if weights not in ("auto", "int8", "int16"):
        raise RnnqError(f"--weights {weights!r}: one of auto, int8, int16")
    if fmt == "tflite" and weights != "auto":
        raise RnnqError("--weights is a C build option (.tflite keeps LiteRT's int8 weights)")
    if not (math.isfinite(min_sqnr) and 0 <= min_sqnr <= 200):
        raise RnnqError(f"--min-sqnr {min_sqnr}: an SQNR in dB from 0 to 200")
    if max_drop is not None and not (math.isfinite(max_drop) and 0 <= max_drop <= 100):
        raise RnnqError(f"--max-drop {max_drop}: accuracy points from 0 to 100")
    job = steps.Job(Path(model), _source(calib), Path(out_dir), fmt=fmt, target=target,
                    prefix="model" if prefix is None else prefix, calib_method=calib_method, seq_len=seq_len,
                    max_steps=max_steps, headroom=headroom, flash=flash, ram=ram,
                    float_io=float_io, tflite_loop=tflite_loop, input_bits=str(input_bits),
                    output_bits=str(output_bits),
                    precision=precision, min_sqnr=float(min_sqnr),
                    max_drop=None if max_drop is None else float(max_drop), weights=weights,
                    packages=tuple(dict.fromkeys(packages)),
                    log=log, progress=progress)
    return run_pipeline(job, PIPELINES[fmt]).manifest


def open_graphs(path: str | Path) -> tuple[BuildFolder, Graph, Graph | None]:
    """A build folder, its float IR and (C builds) its integer IR."""
    b = open_build(path)
    fg = float_graph(b.model)
    try:
        ig = integer_graph(b.model, b.calibration) if b.format == "c" else None
    except RnnqError as e:
        raise RnnqError(f"{b.path}: {e}") from None
    return b, fg, ig


@one_blas_thread
def validate(build_dir: str | Path, data_path: DataSource, on: str = "host",
             per_layer: bool = False) -> dict:
    """Float vs integer simulator vs the build (C harness, emulated board or LiteRT) on the
    data; the report (rnnq.report.format_report prints it). With `per_layer`, the report's
    "per_layer" entry says where error enters (rnnq.diagnose)."""
    b, fg, ig = open_graphs(build_dir)
    data = load_npz(data_path, fg)
    if b.format == "tflite":
        if per_layer and "state_inputs" in b.manifest["tflite"]:
            raise RnnqError(f"{b.path}: --per-layer does not yet cover a .tflite run once per "
                            "call (state inputs); the C build of the model has it")
        rep = validate_tflite(b, fg, data, on)
        layers = partial(per_layer_tflite, b, fg, data)
    else:
        rep = validate_c(b, fg, ig, data, on)
        layers = partial(per_layer_c, fg, ig, data)
    if per_layer:
        with progress.stage("per-layer error (float model with one tensor quantised at a time)"):
            rep["per_layer"] = layers()
    return rep


def uart_firmware(build_dir: str | Path, board: str, out: str | Path) -> Path:
    """Write and build the UART test firmware of a C build for a board (targets/boards) in
    `out`; returns its firmware.elf (firmware.bin beside it). `validate(..., on="serial:PORT")`
    talks to it."""
    from rnnq.backends.c.uart_firmware import build_firmware

    b = open_build(build_dir)
    return build_firmware(b.path, b.manifest, board, Path(out))


@one_blas_thread
def simulate(build_dir: str | Path, data: DataSource,
             integer: bool = False) -> dict:
    """The build's outputs on data (x [N, T, F], a mapping of .npz arrays, or a path) as its
    integer model computes them, keyed by output name (rnnq.validation.simulate)."""
    b, fg, ig = open_graphs(build_dir)
    return simulate_build(b, fg, ig, load_npz(_source(data), fg), integer)


def _node_bytes(g: Graph, n, matvec: str = "ref", recurrent: str = "vector") -> int:
    """Bytes of constants node n of an integer graph puts in flash (params arrays in the
    layout of the build's matvec variant and, on the unit-major steps (recurrent "fused"), as
    they are emitted there; tables, quantised constant operands)."""
    total = 0
    p = n.attrs.get("params")
    kind = INT_RECURRENT.get(n.op, "dense" if n.op == "qdense" else "")
    if p is not None and recurrent == "fused" and fused(p):
        p, rowk = fused_emitted(p)
        kind = f"{kind}_fused"
        total += rowk.nbytes
    if p is not None:
        total += sum(matvec_layout(matvec, kind, p, f.name, v).nbytes
                     for f in dataclasses.fields(p)
                     if isinstance(v := getattr(p, f.name), np.ndarray))
    for key in ("table", "index"):
        if isinstance(n.attrs.get(key), np.ndarray):
            total += n.attrs[key].nbytes
    total += sum(g.tensors[i].data.nbytes for i in n.inputs
                 if g.tensors[i].kind == "const" and g.tensors[i].data is not None)
    return total


@one_blas_thread
def analyze(model: str | Path, target: str = "generic-c99", max_steps: int | None = None,
            **options) -> dict:
    """What compiling `model` for `target` costs, without calibration data: the build is made
    from placeholder data (4 sequences of the model's fixed T, else 16 steps; zeros for token
    ids), whose values change no size, and measured as `compile` measures it. Per layer:
    MACs per step and constant bytes; memory as the manifest has it."""
    fg = float_graph(model)
    t_in = fg.tensors[fg.inputs[0]]
    t_len = static_time(fg) or 16
    # placeholder data says nothing of accuracy: --precision auto keeps its default widths
    # (compile widens a layer only where its calibration data misses --min-sqnr)
    options.setdefault("min_sqnr", 0.0)
    shape = (4, t_len, *t_in.shape)
    x = (np.zeros(shape, np.int64) if t_in.dtype == "int64"
         else np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    with tempfile.TemporaryDirectory(prefix="rnnq-analyze-") as td:
        build = Path(td) / "build"
        m = compile_model(model, {"x": x.reshape(4, t_len, -1)}, build, target,
                          max_steps=max_steps, **options)
        _, _, ig = open_graphs(build)
    kernels = m["kernels"]
    layers = [{"node": n.name, "op": n.op, "macs_per_step": node_macs(ig, n),
               "const_bytes": _node_bytes(ig, n, kernels["matvec"],
                                          kernels.get("recurrent", "vector"))}
              for n in ig.nodes]
    return {"model": str(model), "target": target, "macs_per_step": m["macs_per_step"],
            "memory": m["memory"], "target_memory": m["target_memory"],
            "streaming": m["streaming"], "max_steps": m["max_steps"],
            "input": m["input"], "layers": [r for r in layers if r["macs_per_step"] or
                                             r["const_bytes"]]}


def format_analysis(a: dict) -> str:
    """The text `rnnq inspect MODEL --target T` prints."""
    lines = [(f"{a['model']} for {a['target']}: {a['macs_per_step']} MACs/step, input "
              f"{a['input']['dtype']}")]
    w = max([len(r["node"] or r["op"]) for r in a["layers"]] + [5])
    lines.append(f"  {'layer'.ljust(w)}  {'op':<12} {'MACs/step':>10} {'const B':>9}")
    for r in a["layers"]:
        lines.append(f"  {(r['node'] or r['op']).ljust(w)}  {r['op']:<12} "
                     f"{r['macs_per_step']:>10} {r['const_bytes']:>9}")
    lines.append("memory: " + ", ".join(f"{k} {v} B" for k, v in a["memory"].items()))
    tm = a["target_memory"]
    if tm.get("measured"):
        lines.append(f"on {a['target']}: flash {tm['flash_bytes']} B, RAM {tm['ram_bytes']} B "
                     f"(stack {tm['stack_bytes']} B); budget {tm['flash_budget_bytes']} / "
                     f"{tm['ram_budget_bytes']} B ({tm['part']})")
    if not a["streaming"]:
        lines.append(f"whole-sequence model: memory for up to {a['max_steps']} steps "
                     "(--max-steps)")
    return "\n".join(lines)


def inspect(path: str | Path) -> str:
    """What `rnnq inspect` shows of an ONNX model or a build folder."""
    p = Path(path)
    if not p.is_dir():
        g = float_graph(p)
        params = sum(t.size for t in g.tensors.values() if t.kind == "const")
        return (f"{g.text()}\n{params} parameters, {macs_per_step(g)} MACs/step, "
                f"~{params} B of int8 weights once compiled")
    b, _, ig = open_graphs(p)
    m = b.manifest
    if b.format == "tflite":
        return _inspect_tflite(p, m)
    isa = m.get("isa")  # builds of rnnq before 0.1.0's restructuring lack it
    lines = [ig.text(),
             f"target {m['target']}, prefix {m['prefix']}, {m['macs_per_step']} MACs/step"]
    if isa:
        lines.append(f"isa {isa['arch']}{''.join(' +' + f for f in isa['features'])}, "
                     f"matvec kernels {m['kernels']['matvec']}, recurrent steps "
                     f"{m['kernels'].get('recurrent', 'vector')}")
        if "matvec_weight_bits" in m["kernels"]:
            lines.append(f"matvec weights int{m['kernels']['matvec_weight_bits']}: "
                         f"{m['kernels']['why']}")
    lines.append("memory: " + ", ".join(f"{k} {v} B" for k, v in m["memory"].items()))
    if "dtype" in m.get("input", {}):
        lines.append(f"input {m['input']['name']}: {m['input']['dtype']}")
    for o in m.get("outputs", []):
        if "dtype" in o:  # C builds with --output-bits (older builds: int8)
            lines.append(f"output {o['name']}: {o['dtype']} (scale {o['scale']:.4g}, zero point "
                         f"{o['zero_point']})")
    tm = m.get("target_memory", {})
    if tm.get("measured"):
        lines.append(f"on {m['target']}: flash {tm['flash_bytes']} B, RAM {tm['ram_bytes']} B "
                     f"(stack {tm['stack_bytes']} B); budget {tm['flash_budget_bytes']} / "
                     f"{tm['ram_budget_bytes']} B ({tm['part']})")
    labels = steps.layer_labels(ig)  # the names --precision takes
    rec_nodes = [n for n in ig.nodes if n.op in INT_RECURRENT]
    for r, n in zip(m["recurrent"], rec_nodes, strict=True):
        cell = (f", cell Q{31 - r['cell_frac_bits']}.{r['cell_frac_bits']} (calibrated "
                f"max |c| {r['cell_absmax_calibrated']:.3g})" if "cell_frac_bits" in r else "")
        cell += f", state int{r['state_bits']}" if "state_bits" in r else ""
        cell += ", recurrent weights 16-bit" if r.get("recurrent_weight_bits") == 16 else ""
        label = labels[n.outputs[0]]
        lines.append(f"{r['kind'].upper()} {label}{' (reverse)' if r['reverse'] else ''}: "
                     f"I={r['input_size']} H={r['hidden_size']}{cell}")
    if not m.get("streaming", True):
        lines.append(f"whole-sequence model (no streaming): up to {m['max_steps']} steps")
    lines += [f"chosen by measured error: {c}" for c in _choices_text(m.get("choices", {}))]
    return "\n".join(lines)


def _choices_text(choices: dict) -> list[str]:
    """One line per measured choice of the manifest (what was chosen, what each measured)."""
    out = []
    for what, c in choices.items():
        if what == "precision":
            db = c["output_sqnr_db"]
            how = c.get("widened_as", ["int16"] * len(c["widened"]))  # older builds: int16
            path = "".join(f" -> {w} {h}" for w, h in zip(c["widened"], how, strict=True))
            path += f" -> {db['chosen']} dB" if c["widened"] else ""
            worst = c.get("worst_sequence_db")
            worst = f" (worst sequence {worst['default']} -> {worst['chosen']} dB)" if worst else ""
            out.append(f"precision for {c['target']}: default {db['default']} dB{path}{worst} "
                       f"({'met' if c['met'] else 'NOT met'}; int16 states: "
                       f"{', '.join(c['int16']) or 'none'}; 16-bit recurrent weights: "
                       f"{', '.join(c.get('r16', [])) or 'none'}; {c['sequences']} calibration "
                       "sequences)")
        elif what == "ranges":
            db = c["output_sqnr_db"]
            which = ", ".join(f"{m} for {name!r}" for name, m in c["chosen"].items())
            out.append(f"calibration ranges (auto): {which or 'minmax for every tensor'}; "
                       f"minmax {db['minmax']} dB, chosen {db['chosen']} dB ({c['measured']} "
                       f"of {c['candidates']} candidate ranges measured; {c['sequences']} "
                       "calibration sequences)")
        else:
            alts = ", ".join(f"{k} {v} dB" for k, v in c["output_sqnr_db"].items())
            out.append(f"{what} {c['chosen']} ({alts}; {c['sequences']} calibration sequences)")
    return out


def _inspect_tflite(path: Path, manifest: dict) -> str:
    from rnnq.backends.tflite.reader import read_tflite  # needs the rnnq[tflite] extra

    t = manifest["tflite"]
    g = read_tflite(path / t["file"])
    lines = [f"{t['file']}: {t['bytes']} B, T = {t['seq_len']}, {len(g.ops)} ops"]
    chosen = manifest.get("choices", {}).get("precision", {})
    if chosen:
        lines.append("precision: " + ", ".join(f"{k} {v}" for k, v in chosen["layers"].items())
                     + f"; input {chosen['input']}")
    for k, op in enumerate(g.ops):
        outs = ", ".join(f"{g.tensors[i].name} {g.tensors[i].dtype}{list(g.tensors[i].shape)}"
                         for i in op.outputs)
        lines.append(f"  {k:4d} {op.kind:<28} -> {outs}")
    for d in (t["input"], *t["outputs"]):
        q = f" scale {d['scale']:.6g} zp {d['zero_point']}" if "scale" in d else ""
        lines.append(f"  io {d['name']}: {d['dtype']}{d['shape']}{q}")
    return "\n".join(lines)

"""The steps of a compilation. Each is a plain function of the `Job`; its docstring says what it
reads and what it sets. Which steps run, in which order, for each output format is written
once, in rnnq.api.PIPELINES.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rnnq import build_folder, progress
from rnnq.backends.c.emit import check_prefix
from rnnq.backends.c.emit import emit_c as _emit_c
from rnnq.backends.c.io import io_info
from rnnq.backends.c.manifest import c_entries
from rnnq.backends.c.memory import measure
from rnnq.backends.c.packages import check_packages
from rnnq.backends.tflite import support
from rnnq.backends.tflite.emit import TFLITE, encode, time_steps
from rnnq.backends.tflite.lower import Lowered, lower
from rnnq.backends.tflite.quantize import calibration_inputs, step_feeds
from rnnq.backends.tflite.quantize import quantize as quantize_tgraph
from rnnq.data import Dataset, DataSource, load_npz
from rnnq.frontend.onnx import import_onnx, model_bytes
from rnnq.ir import Graph, RnnqError, static_time
from rnnq.ir.tgraph import TGraph
from rnnq.passes import bias_correction, canonicalize
from rnnq.passes import measure as measured
from rnnq.passes.calibrate import calibrate as calibrate_graph
from rnnq.passes.calibrate import ranges_record
from rnnq.passes.quantize import input16_possible, input_scales_choosable
from rnnq.passes.quantize import quantize as quantize_graph
from rnnq.sim.integer import quantize_input
from rnnq.targets import Target, load_target

Progress = Callable[[int, int], None]  # (sequences done, total)


@dataclass
class Job:
    """One compilation: what the user asked for, and what the steps make of it."""

    model: Path
    calib: DataSource  # a .npz path or arrays
    out_dir: Path
    fmt: str = "c"
    target: str = "generic-c99"
    prefix: str = "model"
    calib_method: str = "minmax"
    seq_len: int | None = None
    max_steps: int | None = None
    headroom: float = 1.25
    input_bits: str = "auto"  # C: "auto" (16 where the input reaches only recurrent layers), "8", "16"
    state_bits: str = "auto"  # C: width of GRU states, "auto" (16 where it fits), "8", "16"
    flash: int | None = None
    ram: int | None = None
    float_io: bool = False
    tflite_loop: str = "unrolled"
    packages: tuple[str, ...] = ()  # C: drop-in package layouts (rnnq.backends.c.packages)
    log: Callable[[str], None] = lambda s: None
    progress: Progress | None = None
    # what the steps make
    graph: Graph | None = None  # float, then calibrated, then (C) integer IR
    data: Dataset | None = None
    tgt: Target | None = None
    lowered: Lowered | None = None  # tflite: the float TGraph
    tgraph: TGraph | None = None  # tflite: the integer TGraph
    io: dict = field(default_factory=dict)  # C: I/O formats
    facts: dict = field(default_factory=dict)  # C: memory and schedule
    files: dict[str, bytes] = field(default_factory=dict)  # the build folder's files
    manifest: dict = field(default_factory=dict)


Step = Callable[[Job], None]


def graph_pass(fn: Callable[[Graph], Graph]) -> Step:
    """A float-IR pass f(graph) -> graph as a step."""
    def step(job: Job) -> None:
        job.graph = fn(job.graph)
    step.__name__ = step.__qualname__ = fn.__name__
    step.__doc__ = fn.__doc__
    return step


# --- shared by both formats -------------------------------------------------------------
def check_out_dir(job: Job) -> None:
    """Refuse an output folder that is not an rnnq build folder (before any work)."""
    build_folder.check_out_dir(job.out_dir)


def resolve_target(job: Job) -> None:
    """The target file (an unknown target is refused before any work) -> job.tgt; the prefix
    checked too (C builds)."""
    job.tgt = load_target(job.target)
    if job.fmt == "c":
        check_prefix(job.prefix)
        check_packages(job.packages)


def import_model(job: Job) -> None:
    """ONNX file -> job.graph (float IR)."""
    job.graph = import_onnx(job.model)


collapse_reshapes = graph_pass(canonicalize.collapse_reshapes)
fold_dense_affine = graph_pass(canonicalize.fold_dense_affine)
fuse_dense_relu = graph_pass(canonicalize.fuse_dense_relu)
fuse_magnitude = graph_pass(canonicalize.fuse_magnitude)


def load_data(job: Job) -> None:
    """Calibration .npz, checked against the model's input -> job.data."""
    job.data = load_npz(job.calib, job.graph)


def check_tflite(job: Job) -> None:
    """What --format tflite cannot express is refused now, before calibrating."""
    support.require("tflite", "flatbuffers")
    support.check(job.graph)


def calibrate(job: Job) -> None:
    """Float IR + data -> calibrated IR (ranges of every tensor, LSTM cells and gates)."""
    job.log(f"imported {job.model}: {len(job.graph.nodes)} IR nodes")
    job.log(f"calibrating on {job.data.n} sequences ({job.calib_method})")
    if job.seq_len:
        _check_calibration_size(job)
    calibrate_graph(job.graph, job.data, method=job.calib_method, progress=job.progress,
                    seq_len=job.seq_len, headroom=job.headroom)


#: The float values calibration may hold at once (8 bytes each): 4 GiB.
CALIBRATION_MAX_VALUES = 2**29


def _check_calibration_size(job: Job) -> None:
    """--seq-len plays the calibration steps back into streams of that length, and the float
    model keeps every tensor of every step: refuse what would not fit rnnq's limit, before
    allocating it."""
    per_step = sum(t.size for t in job.graph.tensors.values() if t.kind != "const")
    steps = max(int(job.seq_len), int(job.data.lengths.sum()))
    values = steps * per_step
    if values > CALIBRATION_MAX_VALUES:
        raise RnnqError(f"--seq-len {job.seq_len}: calibrating on streams that long holds about "
                        f"{values * 8 / 2**30:.0f} GiB of float values (rnnq's limit is "
                        f"{CALIBRATION_MAX_VALUES * 8 / 2**30:.0f} GiB); use a shorter --seq-len "
                        "(ranges and states settle within a few thousand steps)")


def write_folder(job: Job) -> None:
    """job.files + job.manifest -> the build folder, atomically (the model copied in)."""
    build_folder.write(job.out_dir, model_bytes(job.model), job.files, job.manifest)


# --- C ----------------------------------------------------------------------------------
def quantize_c(job: Job) -> None:
    """Calibrated IR -> integer IR (rnnq's numerics); the ranges and the chosen widths go to
    calibration.json. --input-bits / --state-bits auto: 16 (the input where it reaches only
    recurrent layers; GRU states) unless an accumulator does not fit int32 with it, then 8."""
    g = job.graph
    if job.input_bits != "auto":
        inputs = [int(job.input_bits)]
    else:
        inputs = [16, 8] if input16_possible(g) else [8]
    states = [16, 8] if job.state_bits == "auto" else [int(job.state_bits)]
    tries = [(i, s) for s in states for i in inputs]  # widest first
    for k, (ib, sb) in enumerate(tries):
        g.meta["input_bits"], g.meta["gru_state_bits"] = ib, sb
        # the LSTM's h: int16 when forced (--state-bits 16), else int8: measured on the models
        # tried, it was not what limits an LSTM (+0.1-0.2 dB; the cell is int32)
        g.meta["lstm_state_bits"] = 16 if job.state_bits == "16" else 8
        try:
            q = quantize_graph(copy.deepcopy(g))  # g stays calibrated: the record is made from it
            break
        except RnnqError as e:
            if k == len(tries) - 1:
                raise
            job.log(f"input {ib}-bit / GRU state {sb}-bit refused ({e}); trying narrower")
    with progress.stage("measuring quantisation choices on calibration data"):
        data = measured.subset(g, job.data)
        fenv = measured.float_outputs(g, data)
        base = None
        if input_scales_choosable(g):
            q, base = _choose_input_scales(job, q, data, fenv)
        q = _choose_bias_correction(job, q, data, fenv, base)
    record = ranges_record(g)
    job.files[build_folder.CALIBRATION] = (json.dumps(record, indent=1, sort_keys=True)
                                           + "\n").encode()
    job.graph = q


#: A measured alternative replaces the default only when it is better by more than this: a
#: smaller difference is within what another choice of calibration sequences moves.
CHOICE_MARGIN_DB = 0.5


def _choose_input_scales(job: Job, per_feature: Graph, data: Dataset, fenv: dict
                         ) -> tuple[Graph, float]:
    """The model input with one scale per feature (`per_feature`, already quantised) or one
    scale: quantised both ways, each measured against the float model (its values `fenv` on
    `data`, the first calibration sequences); one scale is kept when it measures better by
    CHOICE_MARGIN_DB, and the integer graph's meta["choices"] records what each measured.
    Returns the integer graph and its SQNR."""
    g = job.graph
    g.meta["input_scales"] = "tensor"
    try:
        per_tensor = quantize_graph(copy.deepcopy(g))
    except RnnqError as e:  # an accumulator bound: per feature stays
        g.meta["input_scales"] = "feature"
        job.log(f"input scales: one scale refused ({e}); per feature")
        return per_feature, measured.output_sqnr(g, fenv, per_feature, data)
    db = {"feature": measured.output_sqnr(g, fenv, per_feature, data),
          "tensor": measured.output_sqnr(g, fenv, per_tensor, data)}
    best = "tensor" if db["tensor"] > db["feature"] + CHOICE_MARGIN_DB else "feature"
    g.meta["input_scales"] = best
    chosen = per_feature if best == "feature" else per_tensor
    chosen.meta.setdefault("choices", {})["input_scales"] = {
        "chosen": best, "sequences": data.n,
        "output_sqnr_db": {k: round(v, 2) for k, v in db.items()}}
    words = {"feature": "per feature", "tensor": "one scale"}
    job.log(f"input scales: per feature {db['feature']:.1f} dB, one scale {db['tensor']:.1f} dB "
            f"on {data.n} calibration sequences -> {words[best]}")
    return chosen, db[best]


def _choose_bias_correction(job: Job, q: Graph, data: Dataset, fenv: dict,
                            base: float | None) -> Graph:
    """Bias correction (passes/bias_correction.py) measured like the input's scales (`base`:
    q's SQNR when already measured): kept when the corrected model is better by
    CHOICE_MARGIN_DB; calibration.json keeps the corrections (meta["bias_correction"]) so that
    the build can be made again."""
    g = job.graph
    corr = bias_correction.corrections(g, q, fenv, data.lengths)
    if not corr:
        return q
    try:
        q2 = quantize_graph(bias_correction.apply(copy.deepcopy(g), corr))
    except RnnqError as e:  # a corrected bias beyond what int32 holds: no correction
        job.log(f"bias correction refused ({e}); off")
        return q
    db = {"off": measured.output_sqnr(g, fenv, q, data) if base is None else base,
          "on": measured.output_sqnr(g, fenv, q2, data)}
    on = db["on"] > db["off"] + CHOICE_MARGIN_DB
    chosen = q2 if on else q
    chosen.meta["choices"] = {**q.meta.get("choices", {}), "bias_correction": {
        "chosen": "on" if on else "off", "sequences": data.n,
        "output_sqnr_db": {k: round(v, 2) for k, v in db.items()}}}
    if on:
        g.meta["bias_correction"] = corr
    job.log(f"bias correction: off {db['off']:.1f} dB, on {db['on']:.1f} dB -> "
            f"{'on' if on else 'off'}")
    return chosen


def _max_steps(job: Job) -> int:
    """Whole-sequence models size their buffers for this many steps."""
    if job.max_steps:
        return int(job.max_steps)
    n = int(job.seq_len or static_time(job.graph) or job.data.x.shape[1])
    if not job.graph.meta.get("streaming", True):
        job.log(f"whole-sequence model: buffers sized for {n} steps (set --max-steps to change)")
    return n


def emit_c(job: Job) -> None:
    """Integer IR -> the C files for job.tgt (job.files, job.facts, job.io)."""
    job.io = io_info(job.graph)
    example = None
    if job.packages:  # the Arduino sketch streams the first calibration sequence
        n = int(job.data.lengths[0])
        example = quantize_input(job.graph, job.data.x[:1, :n]).reshape(n, -1)
    files, job.facts = _emit_c(job.graph, job.tgt, job.prefix, job.io, _max_steps(job),
                               job.packages, example)
    if job.facts["arena_bytes"] > 2**31 - 1:  # the C addresses the arena with int32 offsets
        raise RnnqError(f"--max-steps {_max_steps(job)}: the whole-sequence buffers need "
                        f"{job.facts['arena_bytes']} B of arena, more than 2 GiB; use a smaller "
                        "--max-steps")
    job.files.update(files)


def measure_on_target(job: Job) -> None:
    """Flash and RAM on the target, measured with its toolchain, checked against the budget
    (job.facts["target_memory"])."""
    tgt, facts = job.tgt, job.facts
    job.log(f"building with {tgt['toolchain']['cc']} to measure flash and RAM on {tgt.name}")
    with tempfile.TemporaryDirectory(prefix="rnnq-stage-") as td:
        m = measure(build_folder.stage(job.files, Path(td)), tgt, job.prefix)
    budget = tgt["budget"]
    flash_budget = budget["flash_bytes"] if job.flash is None else job.flash
    ram_budget = budget["ram_bytes"] if job.ram is None else job.ram
    if m is None:
        job.log(f"note: {tgt['toolchain']['cc']} not found: flash/RAM on {tgt.name} not measured")
        facts["target_memory"] = {"measured": False, "toolchain": tgt["toolchain"]["cc"]}
        return
    ram_total = (facts["arena_bytes"] + facts["state_bytes"] + m["stack_bytes"]
                 + m["static_ram_bytes"])
    if ((flash_budget and m["flash_bytes"] > flash_budget)
            or (ram_budget and ram_total > ram_budget)):
        raise RnnqError(
            f"model does not fit {tgt.name}: it needs {m['flash_bytes']} B flash and "
            f"{ram_total} B RAM (arena {facts['arena_bytes']} + state {facts['state_bytes']} + "
            f"stack {m['stack_bytes']} + static {m['static_ram_bytes']}); the budget is "
            f"{flash_budget} B flash and {ram_budget} B RAM ({budget['part']}); "
            "use --flash/--ram to change it")
    facts["target_memory"] = {"measured": True, **m, "ram_bytes": ram_total,
                              "part": budget["part"], "flash_budget_bytes": flash_budget,
                              "ram_budget_bytes": ram_budget}


def describe_c(job: Job) -> None:
    """job.manifest of a C build."""
    g = job.graph
    job.manifest = {**build_folder.manifest_header("c", job.tgt.name, g,
                                                   [f for f in job.files
                                                    if f != build_folder.CALIBRATION],
                                                   g.meta.get("calibration")),
                    **c_entries(g, job.tgt, job.prefix, job.io, job.facts)}
    if job.packages:
        job.manifest["packages"] = list(job.packages)


# --- tflite -----------------------------------------------------------------------------
def lower_tflite(job: Job) -> None:
    """Calibrated float IR -> a float TGraph of TFLite builtins over T steps (job.lowered)."""
    t_len = time_steps(job.graph, job.data.x.shape[1], job.seq_len)
    job.lowered = lower(job.graph, t_len)
    job.log(f"lowered to {len(job.lowered.graph.ops)} TFLite ops over T = {t_len} steps")


def quantize_tflite(job: Job) -> None:
    """Float TGraph, calibrated on data of exactly T steps -> the integer TGraph (job.tgraph).
    """
    low, data = job.lowered, job.data
    if job.graph.meta.get("step_graph"):
        xc = step_feeds(job.graph, data)
        job.log(f"calibrating the TFLite graph on {len(xc[0])} calls, each with the float "
                "model's state before it")
    else:
        xc = calibration_inputs(data, low.t_len)
        if xc.shape[1] != data.x.shape[1]:
            job.log(f"calibrating the TFLite graph on {xc.shape[0]} streams of {low.t_len} "
                    "steps")
    job.tgraph = quantize_tgraph(low, xc, headroom=job.headroom, float_io=job.float_io,
                                 loop=job.tflite_loop, method=job.calib_method)


def emit_tflite(job: Job) -> None:
    """The integer TGraph, checked for LiteRT -> model.tflite (job.files, job.manifest)."""
    low, q = job.lowered, job.tgraph
    blob, entry = encode(q, job.graph, job.model.name, low.t_len, job.float_io,
                         job.tflite_loop if low.loops else None)
    job.files[TFLITE] = blob
    job.manifest = {**build_folder.manifest_header("tflite", "tflite", job.graph, [TFLITE],
                                                   job.graph.meta.get("calibration")),
                    "tflite": entry}
    job.log(f"{TFLITE}: {len(blob)} bytes, {len(q.ops)} ops "
            f"({', '.join(f'{k} {v}' for k, v in sorted(q.op_counts().items()))})")

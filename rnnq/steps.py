"""The steps of a compilation. Each is a plain function of the `Job`; its docstring says what it
reads and what it sets. Which steps run, in which order, for each output format is written
once, in rnnq.api.PIPELINES.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnq import build_folder, progress
from rnnq.backends.c.emit import check_prefix
from rnnq.backends.c.emit import emit_c as _emit_c
from rnnq.backends.c.io import io_info
from rnnq.backends.c.manifest import c_entries
from rnnq.backends.c.memory import measure
from rnnq.backends.c.packages import check_packages
from rnnq.backends.c.plan import ram_bytes
from rnnq.backends.tflite import support
from rnnq.backends.tflite.lower import Lowered
from rnnq.data import Dataset, DataSource, load_npz
from rnnq.frontend.onnx import import_onnx, model_bytes
from rnnq.ir import Graph, Node, RnnqError, static_time
from rnnq.ir.ops import RECURRENT, recurrent_kind
from rnnq.ir.tgraph import TGraph
from rnnq.passes import bias_correction, canonicalize
from rnnq.passes import measure as measured
from rnnq.passes.calibrate import calibrate as calibrate_graph
from rnnq.passes.calibrate import ranges_record
from rnnq.passes.quantize import input16_possible, input_scales_choosable
from rnnq.passes.quantize import quantize as quantize_graph
from rnnq.passes.quantize_rnn import STATE16, recurrent_weight_bits, state_bits
from rnnq.passes.range_choice import choose_ranges
from rnnq.sim.integer import quantize_input
from rnnq.targets import Target, load_target, with_matvec

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
    calib_method: str = "auto"  # C: auto chooses per tensor (passes/range_choice.py)
    seq_len: int | None = None
    max_steps: int | None = None
    headroom: float = 1.25
    input_bits: str = "auto"  # C: "auto" (16 where the input reaches only recurrent layers), "8", "16"
    output_bits: str = "auto"  # C: "auto"/"16" (16 where computed in 16 bits), "8"
    precision: str = "auto"  # C: recurrent states' widths: auto | int8 | int16 | layer=int16,...
    min_sqnr: float = 35.0  # C, precision auto: the output SQNR (dB) to reach
    max_drop: float | None = None  # C, precision auto: instead, at most this % of decisions flip
    flash: int | None = None
    ram: int | None = None
    weights: str = "auto"  # C: matvec weights int8 | int16 (the target's matvec_wide) | auto
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
    tflite_precision: dict = field(default_factory=dict)  # tflite: layers' and input's widths
    tflite_unroll: set[str] = field(default_factory=set)  # tflite: LSTMs lowered unrolled
    tflite_r16: set[str] = field(default_factory=set)  # tflite: auto's 16-bit R layers
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
        if job.weights == "int16" and not job.tgt["kernels"].get("matvec_wide"):
            raise RnnqError(f"--weights int16: target {job.tgt.name} has no int16-weight "
                            "kernels (kernels.matvec_wide); use int8 or auto")


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


def check_precision(job: Job) -> None:
    """--precision's layer names against the imported graph, before calibration's work."""
    resolve_precision(job.graph, job.precision)
    resolve_r16(job.graph, job.precision)


def write_folder(job: Job) -> None:
    """job.files + job.manifest -> the build folder, atomically (the model copied in)."""
    build_folder.write(job.out_dir, model_bytes(job.model), job.files, job.manifest)


# --- C ----------------------------------------------------------------------------------
def quantize_c(job: Job) -> None:
    """Calibrated IR -> integer IR (rnnq's numerics); the ranges and the chosen widths go to
    calibration.json. --input-bits auto: 16 where the input reaches only recurrent layers;
    --precision auto: GRU states 16-bit, LSTM 8-bit, each unless an accumulator does not fit
    int32 with it (then 8), then measured choices: the input's scales, the activation ranges
    (--calib-method auto: passes/range_choice.py), bias correction, the precision."""
    g = job.graph
    default, forced = resolve_precision(g, job.precision)
    g.meta["layer_state_bits"] = dict(forced)
    g.meta["output_bits"] = 8 if job.output_bits == "8" else 16
    g.meta["layer_rw_bits"] = dict.fromkeys(sorted(resolve_r16(g, job.precision)), 16)
    if job.input_bits != "auto":
        inputs = [int(job.input_bits)]
    else:
        inputs = [16, 8] if input16_possible(g) else [8]
    states = {"auto": [16, 8], "int8": [8], "int16": [16]}[default]
    tries = [(i, s) for s in states for i in inputs]  # widest first
    for k, (ib, sb) in enumerate(tries):
        g.meta["input_bits"], g.meta["gru_state_bits"] = ib, sb
        # the LSTM's h: int16 when asked for, else int8 (auto widens it where measured error
        # asks: on the models tried it added 0.1-0.2 dB, the cell being int32)
        g.meta["lstm_state_bits"] = 16 if default == "int16" else 8
        g.meta["rnn_state_bits"] = 16 if default == "int16" else 8
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
        if job.calib_method == "auto" and base is None:
            base = measured.output_sqnr(g, fenv, q, data)
    if job.calib_method == "auto":  # the ranges before what is measured with them
        n = sum(len(c) for c in g.meta["range_candidates"].values())
        with progress.stage(f"choosing calibration ranges by measured error ({n} candidates)"):
            q, base = choose_ranges(g, q, data, fenv, base, log=job.log)
    with progress.stage("measuring bias correction and precision on calibration data"):
        q, base = _choose_bias_correction(job, q, data, fenv, base)
        if default == "auto":  # after what costs nothing at run time
            q = _choose_precision(job, q, data, fenv)
    if job.output_bits == "16":
        narrow = [o for o, k in zip(g.outputs, q.outputs, strict=True)
                  if q.tensors[k].dtype != "int16"]
        if narrow:
            job.log(f"--output-bits 16: {len(narrow)} output(s) stay int8, not computed in 16 "
                    f"bits: {', '.join(repr(o) for o in narrow)}")
    record = ranges_record(g)
    job.files[build_folder.CALIBRATION] = (json.dumps(record, indent=1, sort_keys=True)
                                           + "\n").encode()
    job.graph = q


#: A measured alternative replaces the default only when it is better by more than this: a
#: smaller difference is within what another choice of calibration sequences moves.
CHOICE_MARGIN_DB = 0.5
#: --precision auto: besides the pooled SQNR reaching --min-sqnr, every calibration sequence's
#: own SQNR (measure.compare's worst; quiet sequences aside) must reach --min-sqnr minus this
#: (minus a negative margin: 3 dB more than --min-sqnr).
#: A model that amplifies small errors on some inputs shows it on its worst calibration
#: sequence while its pooled SQNR looks fine: on 15 held-out models (README, "Precision"), two
#: measured 43.5 / 41.9 dB pooled on calibration, 23.5 / 21.8 dB on their test sets (one
#: diverging sequence of 400 / 300), with worst calibration sequences of 33.2 / 27.7 dB. With
#: this goal auto widened 7 of the 15; all 15 then measured >= 40.7 dB on their test sets.
#: Why 3 dB more: the worst of a few dozen calibration sequences is a sample minimum, and a
#: test set's is lower. tools/heldout.py's GRU on one noisy channel (seed 1, int16 output)
#: measured a worst calibration sequence of 35.3 dB and 31.4 dB on its 300 test sequences;
#: held to 38 dB, auto gives it 16-bit R: 54.4 dB.
WORST_MARGIN_DB = -3.0
#: Calibration timesteps --precision auto measures on (the first sequences up to this many):
#: more than the other measured choices (measure.MEASURE_STEPS), the worst sequence being a
#: tail of the distribution.
PRECISION_STEPS = 4 * measured.MEASURE_STEPS

PRECISIONS = ("auto", "int8", "int16")
#: the --precision suffix of 16-bit recurrent weights (rw + rw_lo, rnnq.ir.params; C only)
R16 = "r16"
_SPEC_HELP = ("auto, int8 or int16 (each may end in +r16), or LAYER=int8|int16|r16|int8+r16|"
              "int16+r16 entries separated by commas")


def _width(spec: str, value: str) -> tuple[str | None, bool]:
    """'int8' / 'int16' / 'r16' / 'int8+r16' / 'int16+r16' -> (state width or None, r16)."""
    head, plus, tail = value.partition("+")
    if value == R16:
        return None, True
    if head in ("int8", "int16") and (not plus or tail == R16):
        return head, bool(plus)
    raise RnnqError(f"--precision {spec!r}: {_SPEC_HELP} (not {value!r})")


def parse_precision(spec: str) -> tuple[str, dict[str, int], set[str]]:
    """--precision: auto | int8 | int16, or LAYER=int8|int16 entries separated by commas (the
    layers named are forced; the others are chosen as with auto); a width may end in +r16
    (16-bit recurrent weights; LAYER=r16 alone leaves the state's width to auto).
    -> (default, {layer: state bits}, layers with 16-bit recurrent weights: "*" for all)."""
    spec = spec.strip()
    head, plus, tail = spec.partition("+")
    if head in PRECISIONS and "=" not in spec:
        if plus and (tail != R16 or head == "auto"):
            raise RnnqError(f"--precision {spec!r}: {_SPEC_HELP}")
        return head, {}, {"*"} if plus else set()
    per, r16 = {}, set()
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, value = item.rpartition("=")
        if not name:
            raise RnnqError(f"--precision {spec!r}: {_SPEC_HELP} (not {item!r})")
        width, wide_r = _width(spec, value.strip())
        if width is not None:
            per[name.strip()] = int(width[3:])
        if wide_r:
            r16.add(name.strip())
    if not per and not r16:
        raise RnnqError(f"--precision {spec!r}: {_SPEC_HELP}")
    return "auto", per, r16


def layer_labels(g: Graph) -> dict[str, str]:
    """{output name: label} of the recurrent nodes (float or integer graph): the node's name,
    with ':forward' / ':reverse' (or ':d<k>') where one ONNX node became several (a
    bidirectional layer). --precision takes these; `rnnq inspect` prints them."""
    rec = [n for n in g.nodes if recurrent_kind(n.op)]
    out = {}
    for n in rec:
        same = [m for m in rec if m.name == n.name]
        if len(same) == 1:
            out[n.outputs[0]] = n.name
        elif len(same) == 2 and same[0].attrs.get("reverse") != same[1].attrs.get("reverse"):
            out[n.outputs[0]] = f"{n.name}:{'reverse' if n.attrs.get('reverse') else 'forward'}"
        else:
            out[n.outputs[0]] = f"{n.name}:d{same.index(n)}"
    return out


def resolve_precision(g: Graph, spec: str) -> tuple[str, dict[str, int]]:
    """parse_precision with the layers named by label (layer_labels), node name (every node
    of that name: both directions of a bidirectional layer) or output name -> {output: bits};
    an unknown name is an error. Every recurrent kind (STATE16) has a 16-bit state."""
    default, per, _ = parse_precision(spec)
    out = {}
    for name, bits in per.items():
        for o in _layer_outputs(g, name):
            out[o] = bits
    return default, out


def resolve_r16(g: Graph, spec: str) -> set[str]:
    """The outputs of the recurrent layers --precision gives 16-bit recurrent weights (+r16)."""
    _, _, r16 = parse_precision(spec)
    if "*" in r16:
        return set(layer_labels(g))
    return {o for name in r16 for o in _layer_outputs(g, name)}


def _layer_outputs(g: Graph, name: str) -> list[str]:
    """The first outputs of the recurrent layers `name` names: a label (layer_labels), a node
    name (every node of that name: both directions of a bidirectional layer) or an output."""
    labels = layer_labels(g)
    hit = [n.outputs[0] for n in g.nodes
           if n.outputs and n.outputs[0] in labels and name in (labels[n.outputs[0]], n.name,
                                                                  n.outputs[0])]
    if not hit:
        known = ", ".join(repr(v) for v in labels.values()) or "none"
        raise RnnqError(f"--precision: no recurrent layer {name!r} (layers: {known})")
    return hit


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


def _const_bytes(q: Graph) -> int:
    """Bytes of the integer graph's kernel constants (params arrays, as emitted before any
    matvec layout widens them): what a 16-bit recurrent-weight candidate weighs against the
    flash budget."""
    total = 0
    for n in q.nodes:
        p = n.attrs.get("params")
        if p is not None and dataclasses.is_dataclass(p):
            total += sum(getattr(p, f.name).nbytes for f in dataclasses.fields(p)
                         if isinstance(getattr(p, f.name), np.ndarray))
    return total


#: what --precision auto may widen per recurrent layer (the graph.meta entries it sets to 16):
#: its state to int16, its recurrent weights to 16 bits (rw + rw_lo), or both at once (a model
#: sensitive to its state's error gains from neither alone: 23.5 dB with either on a held-out
#: LSTM, 44.7 dB with both)
_WIDENINGS = {"int16": ("layer_state_bits",), "r16": ("layer_rw_bits",),
              "int16+r16": ("layer_state_bits", "layer_rw_bits")}
_OPEN = {"layer_state_bits": state_bits, "layer_rw_bits": recurrent_weight_bits}


def _choose_precision(job: Job, q: Graph, data: Dataset, fenv: dict) -> Graph:
    """--precision auto: while the integer graph misses the target (--min-sqnr, or --max-drop:
    the share of flipped decisions), widen the one thing that measures best, as long as that
    gains more than CHOICE_MARGIN_DB (or flips fewer decisions): an 8-bit LSTM/GRU/RNN state to
    int16, or a layer's recurrent weights to 16 bits (r16: what a model whose error is its int8
    recurrent weights needs). Layers the user named keep what was named; a widening whose
    arena and state alone exceed the RAM budget (--ram, else the target's), or 16-bit weights
    whose constants would take more than half the flash budget (--flash), is not tried.
    meta["layer_state_bits"] / meta["layer_rw_bits"] keep the choice (calibration.json),
    meta["choices"]["precision"] what each step measured. It measures q itself, on more
    calibration sequences than the choices before it (PRECISION_STEPS)."""
    g = job.graph
    drop = job.max_drop
    earlier = dict(q.meta.get("choices", {}))  # the measured choices made before this one
    wider = measured.subset(g, job.data, PRECISION_STEPS)
    if wider.n > data.n:  # the worst sequence is a tail: more sequences than the pooled SQNR
        data, fenv = wider, measured.float_outputs(g, wider)
    start = measured.compare(g, fenv, q, data)
    db, flips = start[0], start[1]
    if drop is not None and flips is None:
        raise RnnqError("--max-drop: the model has no classifier output (an output whose last "
                        "dimension has two or more classes, or one probability in [0, 1]); "
                        "use --min-sqnr")

    goal = (f"max_drop {drop} %" if drop is not None else
            f"min_sqnr {job.min_sqnr} dB (every sequence {job.min_sqnr - WORST_MARGIN_DB} dB)")

    def said(m: tuple) -> str:
        if drop is not None:
            return f"{m[1]:.2f} % of decisions flip"
        return f"{m[0]:.1f} dB (worst sequence {m[2]:.1f} dB)"

    def eff(m: tuple) -> float:  # the SQNR goal's shortfall, pooled or worst sequence
        return min(m[0], m[2] + WORST_MARGIN_DB)

    def met(m: tuple) -> bool:
        return m[1] <= drop if drop is not None else eff(m) >= job.min_sqnr

    def gain(m: tuple, ref: tuple) -> bool:
        fewer = drop is not None and m[1] < ref[1]
        return fewer or eff(m) > eff(ref) + CHOICE_MARGIN_DB

    names = layer_labels(g)
    named = set(g.meta["layer_state_bits"]) | set(g.meta.get("layer_rw_bits", {}))
    g.meta.setdefault("layer_rw_bits", {})

    def key(m: tuple) -> tuple:
        return (m[1], -m[0]) if drop is not None else (-eff(m), -m[0])

    def open_(n: Node, what: str) -> bool:
        return (n.op in STATE16 and n.outputs[0] not in named
                and all(_OPEN[k](g, n) != 16 for k in _WIDENINGS[what]))

    budget = job.tgt["budget"]["ram_bytes"] if job.ram is None else job.ram
    flash = job.tgt["budget"]["flash_bytes"] if job.flash is None else job.flash
    steps = _max_steps(job)
    cur, widened, widened_as, tried = start, [], [], []
    while not met(cur):
        found = []
        for n, what in ((n, w) for w in _WIDENINGS for n in g.nodes if open_(n, w)):
            label = names[n.outputs[0]]
            for k in _WIDENINGS[what]:
                g.meta[k][n.outputs[0]] = 16
            try:
                q2 = measured.requantize(g)
                # arena + state only when there is a budget (a plan per candidate otherwise)
                kernels = job.tgt["kernels"]
                ram = (ram_bytes(q2, job.prefix, steps, kernels["matvec"],
                                 kernels.get("recurrent", "vector")) if budget else 0)
                if ram > budget:  # before stack and static data, so a lower bound
                    job.log(f"precision: {label!r} {what} refused: its arena and state alone "
                            f"need {ram} B, over the RAM budget of {budget} B")
                    tried.append({what: [*widened, label],
                                  "refused": f"arena + state {ram} B > RAM budget {budget} B"})
                    continue
                consts = _const_bytes(q2) if "r16" in what and flash else 0
                if consts > flash // 2:
                    job.log(f"precision: {label!r} r16 refused: constants of about {consts} B, "
                            f"over half the flash budget ({flash // 2} B)")
                    tried.append({what: [*widened, label],
                                  "refused": f"constants {consts} B > half the flash budget"})
                    continue
                m = measured.compare(g, fenv, q2, data)
                tried.append({what: [*widened, label], "output_sqnr_db": round(m[0], 2),
                              "worst_sequence_db": round(m[2], 2),
                              **({} if m[1] is None else {"flips_percent": round(m[1], 2)})})
                found.append((n, what, q2, m))
            except RnnqError as e:  # an accumulator bound
                job.log(f"precision: {label!r} {what} refused ({e})")
            finally:
                for k in _WIDENINGS[what]:
                    del g.meta[k][n.outputs[0]]
        # the best measured (on held-out LSTMs the cheaper widening within 0.5 dB of it on
        # calibration data, an int16 state alone, lost a test sequence the pair kept)
        best = min(found, key=lambda f: key(f[3])) if found else None
        if best is None or not gain(best[3], cur):
            break
        n, what, q, m = best
        for k in _WIDENINGS[what]:
            g.meta[k][n.outputs[0]] = 16
        widened.append(names[n.outputs[0]])
        widened_as.append(what)
        job.log(f"precision: {said(cur)}, short of {goal}; {n.op.upper()} "
                f"{names[n.outputs[0]]!r} {_WIDENED[what]} -> {said(m)}")
        cur = m
    q.meta["choices"] = {**earlier, **q.meta.get("choices", {}), "precision": {
        "target": goal, "met": bool(met(cur)), "sequences": data.n,
        "int16": [names[n.outputs[0]] for n in g.nodes
                  if n.op in RECURRENT and state_bits(g, n) == 16],
        "r16": [names[n.outputs[0]] for n in g.nodes
                if n.op in RECURRENT and recurrent_weight_bits(g, n) == 16],
        "widened": widened, "widened_as": widened_as,
        "output_sqnr_db": {"default": round(db, 2), "chosen": round(cur[0], 2)},
        "worst_sequence_db": {"default": round(start[2], 2), "chosen": round(cur[2], 2)},
        **({} if flips is None else {"flips_percent": {"default": round(flips, 2),
                                                       "chosen": round(cur[1], 2)}}),
        "tried": tried}}
    if not met(cur):
        why = (f"no further widening gains {CHOICE_MARGIN_DB} dB" if tried
               else "nothing to widen")
        job.log(f"warning: precision auto: {said(cur)} on calibration data, short of {goal} "
                f"({why}); `rnnq validate --per-layer` shows where the error enters")
    return q


_WIDENED = {"int16": "state int16", "r16": "recurrent weights 16-bit",
            "int16+r16": "state int16 and recurrent weights 16-bit"}


def _choose_bias_correction(job: Job, q: Graph, data: Dataset, fenv: dict,
                            base: float | None) -> tuple[Graph, float]:
    """Bias correction (passes/bias_correction.py) measured like the input's scales (`base`:
    q's SQNR when already measured): kept when the corrected model is better by
    CHOICE_MARGIN_DB; calibration.json keeps the corrections (meta["bias_correction"]) so that
    the build can be made again. Returns the integer graph and its SQNR."""
    g = job.graph
    off = measured.output_sqnr(g, fenv, q, data) if base is None else base
    corr = bias_correction.corrections(g, q, fenv, data.lengths)
    if not corr:
        return q, off
    try:
        q2 = quantize_graph(bias_correction.apply(copy.deepcopy(g), corr))
    except RnnqError as e:  # a corrected bias beyond what int32 holds: no correction
        job.log(f"bias correction refused ({e}); off")
        return q, off
    db = {"off": off, "on": measured.output_sqnr(g, fenv, q2, data)}
    on = db["on"] > db["off"] + CHOICE_MARGIN_DB
    chosen = q2 if on else q
    chosen.meta["choices"] = {**q.meta.get("choices", {}), "bias_correction": {
        "chosen": "on" if on else "off", "sequences": data.n,
        "output_sqnr_db": {k: round(v, 2) for k, v in db.items()}}}
    if on:
        g.meta["bias_correction"] = corr
    job.log(f"bias correction: off {db['off']:.1f} dB, on {db['on']:.1f} dB -> "
            f"{'on' if on else 'off'}")
    return chosen, db["on" if on else "off"]


def _max_steps(job: Job) -> int:
    """Whole-sequence models size their buffers for this many steps."""
    if job.max_steps:
        return int(job.max_steps)
    return int(job.seq_len or static_time(job.graph) or job.data.x.shape[1])


def emit_c(job: Job) -> None:
    """Integer IR -> the C files for job.tgt (job.files, job.facts, job.io)."""
    job.io = io_info(job.graph)
    if not job.graph.meta.get("streaming", True) and not job.max_steps:
        job.log(f"whole-sequence model: buffers sized for {_max_steps(job)} steps (set "
                "--max-steps to change)")
    example = None
    if job.packages:  # the Arduino sketch streams the first calibration sequence
        n = int(job.data.lengths[0])
        example = quantize_input(job.graph, job.data.x[:1, :n]).reshape(n, -1)
    files, job.facts = _emit_weights(job, example)
    if job.facts["arena_bytes"] > 2**31 - 1:  # the C addresses the arena with int32 offsets
        raise RnnqError(f"--max-steps {_max_steps(job)}: the whole-sequence buffers need "
                        f"{job.facts['arena_bytes']} B of arena, more than 2 GiB; use a smaller "
                        "--max-steps")
    job.files.update(files)


def _emit_weights(job: Job, example) -> tuple[dict[str, bytes], dict]:
    """_emit_c with the target's matvec variant, or its wide variant (int16 weights, twice the
    weight flash) under --weights int16, or auto when the build's constants with int16 weights
    take at most half the flash budget (the rest is the application's); job.tgt becomes the
    target as built, job.facts["weights"] says what was chosen and why."""
    tgt, wide = job.tgt, job.tgt["kernels"].get("matvec_wide", "")
    emit = lambda t: _emit_c(job.graph, t, job.prefix, job.io, _max_steps(job),
                             job.packages, example)
    if not wide or job.weights == "int8":
        files, facts = emit(tgt)
        why = "--weights int8" if wide else f"{tgt.name} has no int16-weight kernels"
        facts["weights"] = {"matvec_weight_bits": 8, "why": why}
        return files, facts
    budget = tgt["budget"]["flash_bytes"] if job.flash is None else job.flash
    wide_tgt = with_matvec(tgt, wide)
    files, facts = emit(wide_tgt)
    need = facts["weight_bytes"]
    if job.weights == "int16":
        why = "--weights int16"
    elif not budget:
        why = "no flash budget (--flash 0)"
    elif need <= budget // 2:
        why = f"constants with int16 weights {need} B <= half the flash budget ({budget // 2} B)"
    else:
        files, facts = emit(tgt)
        facts["weights"] = {"matvec_weight_bits": 8,
                            "why": f"constants with int16 weights would take {need} B > half "
                                   f"the flash budget ({budget // 2} B)"}
        job.log(f"int8 weights: {facts['weights']['why']}")
        return files, facts
    job.tgt = wide_tgt
    facts["weights"] = {"matvec_weight_bits": 16, "why": why}
    job.log(f"int16 weights ({wide} kernels): {why}")
    return files, facts


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

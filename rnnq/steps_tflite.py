"""The `--format tflite` steps of a compilation (rnnq.api.PIPELINES["tflite"]): lowering the
calibrated IR to TFLite builtins, choosing which recurrent layers run in 16 bits
(--precision, rnnq.backends.tflite.widen), quantising, and writing model.tflite. The steps
shared with the C pipeline live in rnnq.steps."""

from __future__ import annotations

import numpy as np

from rnnq import build_folder
from rnnq.backends.tflite import measure as tflite_measure
from rnnq.backends.tflite import support
from rnnq.backends.tflite import widen as tflite_widen
from rnnq.backends.tflite.emit import TFLITE, encode, time_steps
from rnnq.backends.tflite.lower import lower
from rnnq.backends.tflite.quantize import calibration_inputs, step_feeds
from rnnq.backends.tflite.quantize import quantize as quantize_tgraph
from rnnq.ir import RnnqError
from rnnq.steps import (
    CHOICE_MARGIN_DB,
    PRECISION_STEPS,
    Job,
    layer_labels,
    resolve_precision,
    resolve_r16,
)

TFLITE_PRECISION_RULE = ("int16 (16x8) for every unrolled GRU, RNN and LSTM layer LiteRT's int16 "
                         "kernels express, unless --precision says int8; an LSTM the fused op "
                         "expresses stays LiteRT's fused LSTM (int16 cell, int8 h) unless "
                         "--precision says int16 or, auto, the output misses --min-sqnr on "
                         "calibration data and the LSTMs unrolled in 16 bits measure better; "
                         "the input int16 where only 16-bit layers read it (--input-bits auto); "
                         "16-bit recurrent weights (a residual FULLY_CONNECTED beside each "
                         "recurrent one) where --precision says +r16, and for every GRU, RNN "
                         "and unrolled LSTM layer --precision auto does not name (a fused "
                         "LSTM: where, auto, the output or its worst calibration window "
                         "misses --min-sqnr and they measure better, unrolling it)")

#: --precision auto gives every GRU and vanilla-RNN layer of a .tflite 16-bit recurrent weights
#: without measuring: calibration data does not predict when int8 R loses a held-out sequence.
#: tools/heldout.py, test sets, default (measured) -> 16-bit R: GRU on one noisy channel T=64,
#: seeds 1 and 2: 31.4 -> 54.1 and 45.5 -> 54.6 dB (seed 1's calibration measured 49.2 dB,
#: worst window 36.8 dB, so nothing was widened); GRU T=200: 50.9 -> 52.8 dB; GRU and RNN
#: forecasters: 53.7 -> 58.1 and 51.1 -> 59.1 dB; an earlier held-out GRU at T=200: 22.3 ->
#: 53.6 dB. None measured worse. Cost: R's bytes twice and one more FULLY_CONNECTED per
#: recurrent product and step. A fused LSTM is left to the measured choice (unrolling it costs
#: more).
RULE_R16_OPS = ("gru", "rnn")
#: The worst calibration window's margin of the measured 16-bit R choice that is left (unrolled
#: LSTMs): none, where C asks 3 dB more (steps.WORST_MARGIN_DB). For a fused LSTM the choice
#: means unrolling it (README: a bidirectional fixture 20 -> 176 KB), and on heldout.py's LSTMs on
#: one noisy channel (seeds 2 and 3) 16-bit R measured 24.2 -> 24.2 and 30.7 -> 30.1 dB on the
#: test sets: a margin would grow files for nothing measured.
TFLITE_WORST_MARGIN_DB = 0.0


def lower_tflite(job: Job) -> None:
    """Calibrated float IR -> a float TGraph of TFLite builtins over T steps (job.lowered).
    An LSTM that --precision makes int16 is unrolled (LiteRT's fused LSTM has an int8 h)."""
    t_len = time_steps(job.graph, job.data.x.shape[1], job.seq_len)
    default, per = resolve_precision(job.graph, job.precision)
    for n in job.graph.nodes:
        if n.op != "lstm" or per.get(n.outputs[0], 16 if default == "int16" else 8) != 16:
            continue
        if support.has_peepholes(job.graph, n):
            if n.outputs[0] in per or default == "int16":
                raise RnnqError(f"--precision: {layer_labels(job.graph)[n.outputs[0]]!r} cannot "
                                "be int16 in a .tflite: peepholes (only LiteRT's fused LSTM, "
                                "int8 h, has them)")
            continue
        job.tflite_unroll.add(n.outputs[0])
    r16 = _r16_layers(job)
    for n in job.graph.nodes:
        if (n.op == "lstm" and n.outputs[0] in r16
                and support.has_peepholes(job.graph, n)):
            raise RnnqError(f"--precision: {layer_labels(job.graph)[n.outputs[0]]!r} cannot "
                            "have 16-bit recurrent weights in a .tflite: peepholes (only "
                            "LiteRT's fused LSTM, int8 weights, has them)")
    job.lowered = lower(job.graph, t_len, frozenset(job.tflite_unroll), frozenset(r16))
    job.log(f"lowered to {len(job.lowered.graph.ops)} TFLite ops over T = {t_len} steps")


def _r16_layers(job: Job) -> set[str]:
    """The recurrent layers (outputs) lowered with 16-bit recurrent weights: those --precision
    names with +r16, those auto chose by measuring (job.tflite_r16), and under auto every layer
    it does not name that runs as unrolled steps: every GRU and RNN (RULE_R16_OPS) and every
    LSTM that is not LiteRT's fused op (auto unrolled it, or the fused op cannot express it).
    Held-out LSTMs unrolled in 16 bits, test sets, int8 R -> 16-bit R: 42.6 -> 46.7, 41.7 ->
    49.6 dB (one noisy channel), 54.9 -> 58.2, 57.0 -> 57.2 dB (2-layer bidirectional)."""
    g = job.graph
    default, per = resolve_precision(g, job.precision)
    rule = {n.outputs[0] for n in g.nodes
            if default == "auto" and n.outputs[0] not in per and (
                n.op in RULE_R16_OPS or (n.op == "lstm" and not support.has_peepholes(g, n) and (
                    n.outputs[0] in job.tflite_unroll
                    or support.fused_lstm_blocker(g, n) is not None)))}
    return resolve_r16(g, job.precision) | job.tflite_r16 | rule


def widen_tflite(job: Job) -> None:
    """--precision for a .tflite: which unrolled recurrent layers keep int16 tensors
    (rnnq.backends.tflite.widen). auto and int16: every layer whose lowering LiteRT's int16
    kernels express (a fused LSTM keeps its own int16 cell and int8 h); int8: none; LAYER=...
    as named, the others as auto. A layer named int16 that cannot be is an error."""
    low, g = job.lowered, job.graph
    default, per = resolve_precision(g, job.precision)
    labels = layer_labels(g)
    chosen: dict[str, str] = {}
    names = []
    for name in low.layers:
        why = tflite_widen.blocker(low, name)
        want = per.get(name, 8 if default == "int8" else 16)
        if want == 16 and why is not None and (name in per or default == "int16"):
            raise RnnqError(f"--precision: {labels[name]!r} cannot be int16 in a .tflite: {why}")
        if want == 16 and why is None:
            names.append(name)
            chosen[labels[name]] = "int16"
        else:
            chosen[labels[name]] = "int8" + (f" ({why})" if why and want == 16 else "")
    if job.float_io and job.input_bits == "16":
        raise RnnqError("--input-bits 16 and --float-io: a float input is quantised to int8")
    if job.float_io and job.output_bits == "16":
        raise RnnqError("--output-bits 16 and --float-io: a float output is dequantised from int8")
    bits = "8" if job.float_io else job.input_bits
    wide_input = tflite_widen.widen(low, names, io16=not job.float_io, input_bits=bits,
                                    output_bits=job.output_bits)
    if job.output_bits == "16" and not job.float_io:
        narrow = [low.graph.tensors[i].name for i in low.graph.outputs if i not in low.wide]
        if narrow:
            job.log(f"--output-bits 16: {len(narrow)} output(s) stay int8, not computed in 16 "
                    f"bits: {', '.join(repr(o) for o in narrow)}")
    job.tflite_precision = {"layers": chosen, "input": "int16" if wide_input else "int8",
                            "r16_layers": sorted(labels[o] for o in _r16_layers(job))}
    job.log("precision: " + ", ".join(f"{k} {v}" for k, v in chosen.items())
            + f"; input {job.tflite_precision['input']}")


def quantize_tflite(job: Job) -> None:
    """Float TGraph, calibrated on data of exactly T steps -> the integer TGraph (job.tgraph).
    --precision auto, a whole-sequence graph: when the output misses --min-sqnr on calibration
    data with LiteRT's fused LSTMs (int8 h), the same LSTMs unrolled in 16 bits are built and
    measured, and kept when better by CHOICE_MARGIN_DB (choices.precision.lstm says what each
    measured)."""
    x = _quantize_tflite(job)
    g = job.graph
    default, per = resolve_precision(g, job.precision)
    fused = {o for o, (n, _) in job.lowered.layers.items() if n.op == "lstm"
             and o not in per and not support.has_peepholes(g, n)
             and tflite_widen.fused(job.lowered, o)}
    if default != "auto" or g.meta.get("step_graph"):
        return
    if not fused:
        _choose_r16(job, x)
        return
    kept = (job.lowered, job.tgraph, dict(job.tflite_precision), set(job.tflite_unroll))
    db = {"fused": tflite_measure.output_sqnr(job.lowered, job.tgraph, x)}
    if db["fused"] >= job.min_sqnr:
        job.tflite_precision["lstm"] = {"chosen": "fused", "output_sqnr_db": {
            k: round(v, 2) for k, v in db.items()}, "target_db": job.min_sqnr}
        _choose_r16(job, x)
        return
    job.tflite_unroll |= fused
    lower_tflite(job)
    widen_tflite(job)
    _quantize_tflite(job)
    db["unrolled"] = tflite_measure.output_sqnr(job.lowered, job.tgraph, x)
    best = "unrolled" if db["unrolled"] > db["fused"] + CHOICE_MARGIN_DB else "fused"
    if best == "fused":
        job.lowered, job.tgraph, job.tflite_precision, job.tflite_unroll = kept
    job.tflite_precision["lstm"] = {"chosen": best, "output_sqnr_db": {
        k: round(v, 2) for k, v in db.items()}, "target_db": job.min_sqnr}
    job.log(f"precision: LiteRT's fused LSTM {db['fused']:.1f} dB, short of {job.min_sqnr} dB; "
            f"unrolled in 16 bits {db['unrolled']:.1f} dB -> {best}")
    _choose_r16(job, x)


def _choose_r16(job: Job, x) -> None:
    """--precision auto, a whole-sequence graph: when the output or its worst calibration
    sequence misses --min-sqnr (TFLITE_WORST_MARGIN_DB), every unrolled recurrent
    layer the user did not name is built with 16-bit recurrent weights (two FULLY_CONNECTED
    per product: the int8 weights and what their grid loses; a fused LSTM is unrolled for it)
    and measured; kept when better by CHOICE_MARGIN_DB (choices.precision.r16 says what each
    measured)."""
    g, low = job.graph, job.lowered
    _, per = resolve_precision(g, job.precision)
    named = set(per) | resolve_r16(g, job.precision)
    done = _r16_layers(job)
    layers = {o for o, (n, _) in low.layers.items() if o not in named and o not in done
              and not (n.op == "lstm" and support.has_peepholes(g, n))}  # fused: unrolled
    if not layers:
        return

    def eff(m: tuple[float, float]) -> float:
        return min(m[0], m[1] + TFLITE_WORST_MARGIN_DB)

    base = tflite_measure.compare(low, job.tgraph, x, PRECISION_STEPS)
    record = {"target_db": job.min_sqnr, "output_sqnr_db": {"r8": round(base[0], 2)},
              "worst_sequence_db": {"r8": round(base[1], 2)}}
    if eff(base) >= job.min_sqnr:
        job.tflite_precision["r16"] = {"chosen": "r8", **record}
        return
    kept = (job.lowered, job.tgraph, dict(job.tflite_precision), set(job.tflite_r16))
    job.tflite_r16 |= layers
    lower_tflite(job)
    widen_tflite(job)
    _quantize_tflite(job)
    m = tflite_measure.compare(job.lowered, job.tgraph, x, PRECISION_STEPS)
    record["output_sqnr_db"]["r16"] = round(m[0], 2)
    record["worst_sequence_db"]["r16"] = round(m[1], 2)
    # kept when it measures better, as the C choices. (Kept unless worse, it also saved a
    # held-out GRU at T = 200 whose calibration could not tell: worst window 30.3 dB either
    # way, test set 22.3 -> 53.6 dB; but it then also doubled the recurrent weights of 61 of
    # the repo's random test models, whose few calibration windows miss 35 dB anyway.)
    best = "r16" if eff(m) > eff(base) + CHOICE_MARGIN_DB else "r8"
    if best == "r8":
        job.lowered, job.tgraph, job.tflite_precision, job.tflite_r16 = kept
    labels = layer_labels(g)
    job.tflite_precision["r16"] = {"chosen": best, "layers": sorted(labels[o] for o in layers),
                                   **record}
    job.log(f"precision: {base[0]:.1f} dB (worst sequence {base[1]:.1f} dB), short of "
            f"{job.min_sqnr} dB; 16-bit recurrent weights {m[0]:.1f} dB (worst sequence "
            f"{m[1]:.1f} dB) -> {best}")


def _quantize_tflite(job: Job) -> np.ndarray | list[np.ndarray]:
    """job.lowered -> job.tgraph; returns the calibration inputs it used."""
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
    # the IR's ranges (the drift rule applied, as the C build's) for the tensors that stand
    # for IR tensors; the unrolled steps' own tensors from this graph's calibration
    ir = {n: tuple(map(float, t.range)) for n, t in job.graph.tensors.items()
          if t.kind != "const" and t.range is not None}
    job.tgraph = quantize_tgraph(low, xc, headroom=job.headroom, float_io=job.float_io,
                                 loop=job.tflite_loop, method=job.calib_method, ir_ranges=ir)
    return xc


def emit_tflite(job: Job) -> None:
    """The integer TGraph, checked for LiteRT -> model.tflite (job.files, job.manifest)."""
    low, q = job.lowered, job.tgraph
    blob, entry = encode(q, job.graph, job.model.name, low.t_len, job.float_io,
                         job.tflite_loop if low.loops else None)
    job.files[TFLITE] = blob
    job.manifest = {**build_folder.manifest_header("tflite", "tflite", job.graph, [TFLITE],
                                                   job.graph.meta.get("calibration")),
                    "tflite": entry}
    if job.tflite_precision:
        job.manifest["choices"] = {"precision": {"rule": TFLITE_PRECISION_RULE,
                                                 **job.tflite_precision}}
    job.log(f"{TFLITE}: {len(blob)} bytes, {len(q.ops)} ops "
            f"({', '.join(f'{k} {v}' for k, v in sorted(q.op_counts().items()))})")

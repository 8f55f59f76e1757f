"""16-bit recurrent layers in a `.tflite` (TFLite's "16x8" scheme: int16 activations, int8
weights), on the lowered float TGraph before calibration's ranges become parameters.

An unrolled layer (GRU, vanilla RNN, an unrolled LSTM) keeps its state, gates and every
per-step tensor in int16: LiteRT has int16 FULLY_CONNECTED (int64 bias), ADD, SUB, MUL,
LOGISTIC and TANH (Q3.12 in, Q0.15 out), and its layout ops move int16. Values stay int16
through the moves after such a layer and into the next 16-bit layer or a dense head
(`_onward`); the model input is int16 when only 16-bit ops read it (`_input`), a streaming
state crosses calls as int16 (`_states`). Wherever an int16 tensor meets an int8 op, one
QUANTIZE requantises it.

Why: an int8 state that integrates small updates rounds them away (a GRU whose update gate is
near 1 freezes), and an unrolled LSTM's int8 cell loses most of its resolution; both are where
the int8 `.tflite` fell short of the C build (README, "Against other quantisers").

A layer is widened only when its lowering is fully expressed in LiteRT's int16 kernels as
rnnq models them (`blocker` says why not): no HardSigmoid gates (int8 saturation is their
clamp; int16 tensors are symmetric) and no `clip` (the gates' input is Q3.12, fixed at ±8).
"""

from __future__ import annotations

import dataclasses

from rnnq.backends.tflite.lower import Lowered
from rnnq.backends.tflite.quantize import LAYOUT, classes, moved_inputs
from rnnq.ir import RnnqError
from rnnq.ir.ops import hard_sigmoid
from rnnq.ir.tgraph import TOp, TTensor

GATE_OPS = ("LOGISTIC", "TANH")


def fused(low: Lowered, name: str) -> bool:
    """Whether the LSTM layer `name` (IR output) became LiteRT's fused LSTM op."""
    span = low.layers[name][1]
    return any(op.kind == "UNIDIRECTIONAL_SEQUENCE_LSTM" and op.outputs[0] in span
               for op in low.graph.ops)


def blocker(low: Lowered, name: str) -> str | None:
    """Why the recurrent layer `name` (IR output) cannot be 16-bit in the `.tflite`, or None."""
    n = low.layers[name][0]
    if fused(low, name):
        return "LiteRT's fused LSTM keeps an int8 h, its cell int16"
    if hard_sigmoid(n.attrs) is not None:
        return "HardSigmoid gates clamp by int8 saturation"
    if n.attrs.get("clip") is not None:
        return "clip bounds the pre-activations below Q3.12's range"
    return None


def widen(low: Lowered, names: list[str], io16: bool = True, input_bits: str = "8",
          output_bits: str = "auto") -> bool:
    """Make the layers `names` 16-bit: mark their tensors (low.wide) and put QUANTIZE ops
    where a 16-bit tensor meets an 8-bit one; op positions held by low.loops and low.cells
    follow the insertions. io16: an output a 16-bit op writes stays int16, and a graph run
    once per step takes and returns a 16-bit layer's state as int16 (`_states`); not with
    float I/O, whose edges are int8. input_bits "auto": the model input is int16 when
    everything reads it as int16 (`_input`); "16": that, or an error; "8": int8. Returns
    whether the input is int16. output_bits "auto" / "16" (with io16): a graph output that
    is a 16-bit value moved (a 16-bit state, the layer's sequence, a 16x8 head) stays int16,
    as --output-bits does for C; "8": every output is requantised to int8."""
    g = low.graph
    wide: set[int] = set()
    for name in names:
        _, span = low.layers[name]
        wide |= {i for i in span if g.tensors[i].dtype == "float32" and i not in low.ir_names}
    for op in g.ops:  # weights and biases are quantised by the FULLY_CONNECTED that reads them
        if op.kind == "FULLY_CONNECTED":
            wide -= set(op.inputs[1:])
    if io16:
        wide |= _states(low, wide)
    if wide:
        _onward(low, wide, io16 and output_bits != "8")
    wide_input = input_bits != "8" and _input(low, wide)
    if input_bits == "16" and not wide_input:
        raise RnnqError("--input-bits 16: in a .tflite the input can be int16 only where "
                        "everything that reads it is a 16-bit layer (--precision), through "
                        "moves only, and without --float-io")
    if not wide:
        return False
    ops: list[TOp] = []
    moved: dict[int, int] = {}
    copies: dict[int, int] = {}
    shared = _shared(low)
    gate_ins: dict[int, int] = {}

    def copy(i: int, to_wide: bool) -> int:
        if i not in copies:
            t = g.tensors[i]
            j = g.add(TTensor(f"{t.name}/{'16' if to_wide else '8'}", "float32", t.shape))
            if to_wide:
                wide.add(j)
            ops.append(TOp("QUANTIZE", [i], [j]))
            copies[i] = j
        return copies[i]

    def gate_in(i: int) -> int:
        """An int16 LOGISTIC / TANH reads Q3.12 (±8): a tensor that is more than that op's
        input (an LSTM's cell state, which the next step and the outputs read too) keeps its
        own range and is requantised int16 -> int16 for the op, instead of being clamped."""
        if i not in gate_ins:
            t = g.tensors[i]
            j = g.add(TTensor(f"{t.name}/q3_12", "float32", t.shape))
            wide.add(j)
            ops.append(TOp("QUANTIZE", [i], [j]))
            gate_ins[i] = j
        return gate_ins[i]

    for k, op in enumerate(g.ops):
        inside = op.outputs[0] in wide
        ins = list(op.inputs)
        for pos, i in enumerate(ins):
            if i < 0 or g.tensors[i].dtype != "float32":
                continue
            if op.kind == "FULLY_CONNECTED" and pos > 0:
                continue
            if inside != (i in wide):
                ins[pos] = copy(i, inside)
            elif inside and op.kind in GATE_OPS and i in shared:
                ins[pos] = gate_in(i)
        options = dict(op.options)
        if inside and op.kind in ("ADD", "SUB"):
            options["PotScaleInt16"] = False  # the general int16 kernel (any scales)
        moved[k] = len(ops)
        ops.append(dataclasses.replace(op, inputs=ins, options=options))
    outs = []
    for i in g.outputs:
        if i in wide and (not io16 or output_bits == "8"):  # int8 under the output's name
            j = copy(i, False)
            g.tensors[i].name, g.tensors[j].name = g.tensors[i].name + "/16", g.tensors[i].name
            if i in low.ir_names:  # the same IR tensor, now at 8 bits
                low.ir_names[j] = low.ir_names[i]
            i = j
        outs.append(i)
    g.outputs = outs
    g.ops = ops
    _renumber(low, moved)
    low.wide |= wide
    return wide_input


def _shared(low: Lowered) -> set[int]:
    """Gate inputs whose quantisation class (tied steps, moves) an arithmetic op reads too, or
    that holds a graph output: an LSTM's cell state, not a gate's pre-activation (which only
    moves, split into gates, reach)."""
    g = low.graph
    cls = classes(low)
    roots = {cls.find(i) for i in g.outputs}
    roots |= {cls.find(i) for op in g.ops if op.kind not in GATE_OPS and op.kind not in LAYOUT
              for i in op.inputs}
    return {i for op in g.ops if op.kind in GATE_OPS for i in op.inputs[:1]
            if cls.find(i) in roots}


def _onward(low: Lowered, wide: set[int], to_outputs: bool) -> None:
    """Past a 16-bit layer's output: the ops that only move its values (the exporters'
    reshapes, transposes as gathers, a bidirectional layer's concatenation, the next layer's
    input) stay int16 while every value they move is int16, and a FULLY_CONNECTED that reads
    int16 (a head, the next layer's input product) runs 16x8 — so stacked layers and a head
    read 16-bit values, and the requantisation to int8 comes as late as it can. to_outputs:
    so do the moves into graph outputs; else only a head's output is int16 here (`widen`
    requantises it where outputs are int8)."""
    g = low.graph
    heads = {i for op in g.ops if op.kind == "FULLY_CONNECTED" for i in op.outputs}
    outputs = set() if to_outputs else set(g.outputs) - heads
    grew = True
    while grew:
        grew = False
        for op in g.ops:
            if any(o in wide or o in outputs for o in op.outputs):
                continue
            if op.kind in LAYOUT and op.kind != "RELU":
                reads = [i for i in moved_inputs(op) if g.tensors[i].dtype == "float32"]
            elif op.kind == "FULLY_CONNECTED" and op.options.get(
                    "FusedActivationFunction", 0) in (0, 1):
                reads = op.inputs[:1]
            else:
                continue
            if reads and all(i in wide for i in reads):
                wide.update(op.outputs)
                grew = True


def _input(low: Lowered, wide: set[int]) -> bool:
    """Mark the model input (and the moves from it) int16 when every path from it, through
    ops that only move values, ends in an op that reads int16 — so its values reach the
    16-bit layers without an int8 step (as the C build's 16-bit input does)."""
    g = low.graph
    x = g.inputs[0]
    chain, stack = {x}, [x]
    while stack:
        t = stack.pop()
        for op in g.ops:
            if t not in op.inputs:
                continue
            if op.outputs[0] in wide and not (op.kind == "FULLY_CONNECTED"
                                              and op.inputs.index(t) > 0):
                continue
            if op.kind not in LAYOUT or op.kind == "RELU" or set(op.outputs) & set(g.outputs):
                return False
            if any(i not in chain and i not in wide for i in moved_inputs(op)
                   if g.tensors[i].dtype == "float32"):
                return False
            new = [o for o in op.outputs if o not in chain]
            chain.update(new)
            stack.extend(new)
    wide |= chain
    return True


def _states(low: Lowered, wide: set[int]) -> set[int]:
    """A graph run once per step whose every layer reading and writing a state is 16-bit:
    that state's input and output tensors (and the moves between) are int16 too, so the state
    crosses calls at 16 bits instead of being requantised to int8 at every call."""
    g, out = low.graph, set()
    for state_in, state_out, chain in low.states:
        readers = [op for op in g.ops if state_in in op.inputs]
        sources = [i for op in g.ops if op.outputs[0] in chain for i in op.inputs
                   if i >= 0 and g.tensors[i].dtype == "float32" and i not in chain]
        if readers and all(op.outputs[0] in wide for op in readers) and sources and all(
                i in wide for i in sources):
            out |= {state_in, state_out, *(i for i in chain if g.tensors[i].dtype == "float32")}
    return out


def _renumber(low: Lowered, moved: dict[int, int]) -> None:
    for loop in low.loops:
        loop.unpack_ops = [moved[k] for k in loop.unpack_ops]
        loop.steps = [(moved[a], moved[b - 1] + 1) for a, b in loop.steps]
        loop.pack_op = moved[loop.pack_op]
    low.cells = {moved[k]: v for k, v in low.cells.items()}

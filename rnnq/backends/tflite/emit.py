"""tflite backend, emission: the quantised `TGraph` -> model.tflite, checked before it is
written: integer-only between input and output, and every op as LiteRT's Prepare wants it."""

from __future__ import annotations

from rnnq.ir import Graph, RnnqError, static_time
from rnnq.ir.tgraph import TGraph, TTensor
from rnnq.sim.litert.constraints import first_problem
from rnnq.version import __version__

TFLITE = "model.tflite"


def time_steps(g: Graph, calib_steps: int, seq_len: int | None) -> int:
    """The T a .tflite file is fixed to: --seq-len, the model's static T, or the calibration
    data's T."""
    if g.meta.get("step_graph"):  # one call per invoke, its state in and out as tensors
        if seq_len not in (None, 1):
            raise RnnqError(f"--seq-len {seq_len}: a model run once per step takes one call "
                            "per invoke (its state is an input and an output)")
        return 1
    static_t = static_time(g)
    if seq_len and static_t and seq_len != static_t:
        raise RnnqError(f"--seq-len {seq_len}: the model's time dimension is fixed at {static_t}")
    return int(seq_len or static_t or calib_steps)


def _io(t: TTensor, kind: str | None = None) -> dict:
    d = {"name": t.name, "dtype": t.dtype, "shape": list(t.shape)}
    if t.quantized:
        d.update(scale=float(t.scale), zero_point=int(t.zero_point))
    if kind:
        d["kind"] = kind
    return d


def check(q: TGraph, float_io: bool, origin: dict[str, str] | None = None) -> None:
    """No float tensor between input and output; every op runnable as LiteRT prepares it (and
    loadable with its default delegate). origin: tensor name -> the IR node it was lowered
    from (Lowered.origin), named first in the error."""
    edges = set(q.inputs + q.outputs) if float_io else set()
    floats = [t.name for i, t in enumerate(q.tensors)
              if t.dtype == "float32" and i not in edges and t.shape != (0,)]
    floats += [t.name for sub in q.subgraphs for t in sub.tensors if t.dtype == "float32"]
    if floats:
        raise AssertionError(f"float tensors between input and output: {floats[:5]}")
    found = first_problem(q)
    if found is not None:
        sub, k, op, what = found
        names = [sub.tensors[i].name for i in op.outputs]
        node = next((origin[n] for n in names if n in (origin or {})), None)
        raise RnnqError(f"{node + ': ' if node else ''}op {k} ({op.kind} -> {', '.join(names)}): "
                        f"{what}; LiteRT cannot run this model as quantised")


def encode(q: TGraph, g: Graph, model_name: str, t_len: int, float_io: bool,
           loop: str | None) -> tuple[bytes, dict]:
    """model.tflite's bytes, and the build's "tflite" manifest entry (q: the integer TGraph of
    float IR g)."""
    from rnnq.backends.tflite.writer import to_flatbuffer  # needs the rnnq[tflite] extra

    check(q, float_io)
    q.description = f"rnnq {__version__} from {model_name}"
    blob = to_flatbuffer(q)
    kinds = {o: g.tensors[o].kind for o in g.outputs}
    states = g.meta.get("state_inputs", {}) if g.meta.get("step_graph") else {}
    kinds.update({v["output"]: "state" for v in states.values() if "output" in v})
    entry = {"file": TFLITE, "bytes": len(blob), "seq_len": t_len, "float_io": float_io,
             "loop": loop, "ops": q.op_counts(), "input": _io(q.tensors[q.inputs[0]]),
             "outputs": [_io(q.tensors[i], kinds[o])
                         for i, o in zip(q.outputs, kinds, strict=True)]}
    if states:  # one call per invoke: each state output is fed back to its state input
        entry["state_inputs"] = [{**_io(q.tensors[i]), "output": states[s].get("output")}
                                 for i, s in zip(q.inputs[1:], states, strict=True)]
    return blob, entry

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


def check(q: TGraph, float_io: bool) -> None:
    """No float tensor between input and output; every op runnable as LiteRT prepares it."""
    edges = set(q.inputs + q.outputs) if float_io else set()
    floats = [t.name for i, t in enumerate(q.tensors)
              if t.dtype == "float32" and i not in edges and t.shape != (0,)]
    floats += [t.name for sub in q.subgraphs for t in sub.tensors if t.dtype == "float32"]
    if floats:
        raise AssertionError(f"float tensors between input and output: {floats[:5]}")
    found = first_problem(q)
    if found is not None:
        sub, k, op, what = found
        outs = ", ".join(sub.tensors[i].name for i in op.outputs)
        raise RnnqError(f"op {k} ({op.kind} -> {outs}): {what}; LiteRT cannot run this model "
                        "as quantised")


def encode(q: TGraph, g: Graph, model_name: str, t_len: int, float_io: bool,
           loop: str | None) -> tuple[bytes, dict]:
    """model.tflite's bytes, and the build's "tflite" manifest entry (q: the integer TGraph of
    float IR g)."""
    from rnnq.backends.tflite.writer import to_flatbuffer  # needs the rnnq[tflite] extra

    check(q, float_io)
    q.description = f"rnnq {__version__} from {model_name}"
    blob = to_flatbuffer(q)
    kinds = {o: g.tensors[o].kind for o in g.outputs}
    entry = {"file": TFLITE, "bytes": len(blob), "seq_len": t_len, "float_io": float_io,
             "loop": loop, "ops": q.op_counts(), "input": _io(q.tensors[q.inputs[0]]),
             "outputs": [_io(q.tensors[i], kinds[o])
                         for i, o in zip(q.outputs, g.outputs, strict=True)]}
    return blob, entry

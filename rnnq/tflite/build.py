"""`rnnq compile --format tflite` and the `.tflite` half of `rnnq validate`.

A tflite build folder holds model.tflite (integer-only between input and output), the ONNX
copy (float reference for validate) and manifest.json (format, T, I/O quantisation, op counts,
file size). validate reads model.tflite back and runs the simulator on what the file holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnnq import __version__
from rnnq.data import Dataset
from rnnq.ir import Graph, RnnqError

TFLITE = "model.tflite"


def _t_len(g: Graph, data: Dataset, seq_len: int | None) -> int:
    from rnnq.api import static_time

    static_t = static_time(g)
    if seq_len and static_t and seq_len != static_t:
        raise RnnqError(f"--seq-len {seq_len}: the model's time dimension is fixed at {static_t}")
    return int(seq_len or static_t or data.x.shape[1])


def _calibration_inputs(x: np.ndarray, lengths: np.ndarray, t_len: int) -> np.ndarray:
    """[N, T, F] sequences of exactly t_len steps: cropped, or (calibration sequences shorter
    than the deployed T) the real steps of all of them played back to back and cut into
    t_len-step streams, as `--seq-len` does for C."""
    if x.shape[1] >= t_len:
        return x[:, :t_len]
    steps = np.concatenate([xi[:n] for xi, n in zip(x, lengths, strict=True)])
    reps = -(-t_len // len(steps))  # at least one whole stream
    steps = np.concatenate([steps] * reps)
    k = len(steps) // t_len
    return steps[: k * t_len].reshape(k, t_len, x.shape[2])


def _io(t, kind: str | None = None) -> dict:
    d = {"name": t.name, "dtype": t.dtype, "shape": list(t.shape)}
    if t.quantized:
        d.update(scale=float(t.scale), zero_point=int(t.zero_point))
    if kind:
        d["kind"] = kind
    return d


def compile_tflite(g: Graph, data: Dataset, model: Path, out_dir: Path, *,
                   seq_len: int | None, headroom: float, float_io: bool,
                   log: Callable[[str], None], loop: str = "unrolled") -> dict:
    """Calibrated float IR -> BUILD/model.tflite (+ manifest)."""
    from rnnq.api import write_build
    from rnnq.tflite.lower import lower
    from rnnq.tflite.quantize import quantize
    from rnnq.tflite.writer import to_flatbuffer

    t_len = _t_len(g, data, seq_len)
    low = lower(g, t_len)
    log(f"lowered to {len(low.graph.ops)} TFLite ops over T = {t_len} steps")
    xc = _calibration_inputs(data.x, data.lengths, t_len)
    if xc.shape[1] != data.x.shape[1]:
        log(f"calibrating the TFLite graph on {xc.shape[0]} streams of {t_len} steps")
    q = quantize(low, xc, headroom=headroom, float_io=float_io, loop=loop)
    q.description = f"rnnq {__version__} from {model.name}"
    blob = to_flatbuffer(q)
    edges = set(q.inputs + q.outputs) if float_io else set()
    floats = [t.name for i, t in enumerate(q.tensors)
              if t.dtype == "float32" and i not in edges and t.shape != (0,)]
    floats += [t.name for sub in q.subgraphs for t in sub.tensors if t.dtype == "float32"]
    if floats:
        raise AssertionError(f"float tensors between input and output: {floats[:5]}")
    kinds = {o: g.tensors[o].kind for o in g.outputs}

    def fill(tmp: Path) -> dict:
        (tmp / TFLITE).write_bytes(blob)
        return {
            "rnnq_version": __version__, "format": "tflite", "target": "tflite",
            "model": {"file": "model.onnx", "sha256": g.meta.get("model_sha256", ""),
                      "source": g.meta.get("model_path")},
            "files": [TFLITE, "model.onnx", "manifest.json"],
            "tflite": {"file": TFLITE, "bytes": len(blob), "seq_len": t_len,
                       "float_io": float_io, "loop": loop if low.loops else None,
                       "ops": q.op_counts(),
                       "input": _io(q.tensors[q.inputs[0]]),
                       "outputs": [_io(q.tensors[i], kinds[o])
                                   for i, o in zip(q.outputs, g.outputs, strict=True)]},
            "calibration": g.meta.get("calibration"),
        }

    m = write_build(out_dir, model, fill)
    log(f"wrote {out_dir}/{TFLITE}: {len(blob)} bytes, {len(q.ops)} ops "
        f"({', '.join(f'{k} {v}' for k, v in sorted(q.op_counts().items()))})")
    return m


def _feeds(q, x: np.ndarray) -> np.ndarray:
    """Test inputs [N, T, F] as the file's input tensor takes them."""
    from rnnq.tflite.quantize import quantize_int8

    t = q.tensors[q.inputs[0]]
    if t.dtype == "float32":
        return x.astype(np.float32)
    return quantize_int8(x, t.scale, int(t.zero_point))


def _dequant(t, v: np.ndarray) -> np.ndarray:
    if not t.quantized:
        return v.astype(np.float64)
    return (v.astype(np.float64) - int(t.zero_point)) * float(t.scale)


def tflm_compare(blob: bytes, feeds: np.ndarray, litert_outs: list[np.ndarray]) -> dict:
    """TFLite Micro's interpreter (PyPI tflite-micro) on the same inputs, against LiteRT."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        return {"ran": False, "reason": "tflite-micro is not installed (pip install tflite-micro)"}
    try:
        it = runtime.Interpreter.from_bytes(blob)
        got: list[list[np.ndarray]] = [[] for _ in litert_outs]
        for k in range(feeds.shape[0]):
            it.reset()
            it.set_input(feeds[k][None], 0)
            it.invoke()
            for j, r in enumerate(got):
                r.append(np.asarray(it.get_output(j)).copy())
    except Exception as e:  # noqa: BLE001 - TFLM refuses ops it lacks with assorted errors
        return {"ran": False, "reason": f"TFLite Micro cannot run this file ({str(e)[:120]})"}
    diff = np.concatenate([np.abs(np.stack(r).astype(np.int64).reshape(-1)
                                  - o.astype(np.int64).reshape(-1))
                           for r, o in zip(got, litert_outs, strict=True)])
    return {"ran": True, "mismatches_vs_litert": int(np.sum(diff != 0)),
            "compared_values": int(diff.size), "max_diff_lsb": int(diff.max(initial=0))}


def validate_tflite(b, data: Dataset) -> dict:
    """The tflite half of validate: LiteRT vs the simulator (exact), TFLM vs LiteRT, and float
    vs integer. `b` is validate's Build (float graph, manifest, path)."""
    from rnnq.tflite import litert, require

    require("tflite", "flatbuffers", "ai_edge_litert")
    from rnnq.tflite.reader import read_tflite
    from rnnq.tflite.sim import run
    from rnnq.validate import _metrics, float_outputs, sqnr_db

    info = b.manifest["tflite"]
    t_len = info["seq_len"]
    if data.x.shape[1] != t_len:
        raise RnnqError(f"{b.path}/{TFLITE} runs sequences of exactly {t_len} steps and the "
                        f"data has {data.x.shape[1]}; compile with --seq-len {data.x.shape[1]} "
                        "(and calibration sequences at least that long) to validate on it")
    padded = bool(np.any(data.lengths != t_len))
    if padded:  # TFLite has no sequence lengths: the file sees the padding, and so does float
        data = Dataset(data.x, np.full(data.n, t_len, np.int64), data.y, data.states)
    blob = (b.path / TFLITE).read_bytes()
    q = read_tflite(blob)
    x = _feeds(q, data.x)
    sim = run(q, [x])
    rt = litert.invoke(blob, [x[:, None]])
    mism = sum(int(np.sum(s.reshape(r.shape) != r)) for s, r in zip(sim, rt, strict=True))
    compared = sum(int(r.size) for r in rt)
    auto = litert.invoke(blob, [x[:, None]], resolver="auto")
    xnn = np.concatenate([np.abs(a.astype(np.int64) - r.astype(np.int64)).ravel()
                          for a, r in zip(auto, rt, strict=True)])
    fl, engine = float_outputs(b, data)
    ints = []
    for k, (i, v) in enumerate(zip(q.outputs, sim, strict=True)):
        v = _dequant(q.tensors[i], v)
        if info["outputs"][k].get("kind") == "seq":
            v = v[:, -1]
        ints.append(v.reshape(fl[k].shape))
    f0, i0 = fl[0], ints[0]
    out0 = info["outputs"][0]
    return {
        "n": data.n, "target": "tflite", "format": "tflite",
        "float": {**_metrics(f0, data.y), "engine": engine},
        "int": {**_metrics(i0, data.y), "sqnr_db": sqnr_db(f0, i0),
                "max_abs_error": float(np.max(np.abs(f0 - i0))),
                "max_error_lsb": float(np.max(np.abs(f0 - i0)) / out0.get("scale", 1.0))},
        "tflite": {"bit_exact": mism == 0, "mismatches": mism, "compared_values": compared,
                   "runtime": f"{litert.version()} (builtin kernels, XNNPACK off)",
                   "file_bytes": len(blob), "ops": info["ops"],
                   "padded_sequences_run_in_full": padded,
                   # LiteRT's default (XNNPACK takes the ops it supports; not what rnnq models)
                   "default_delegates": {"mismatches": int(np.sum(xnn != 0)),
                                         "max_diff_lsb": int(xnn.max(initial=0))}},
        "tflite_micro": tflm_compare(blob, x, rt),
    }

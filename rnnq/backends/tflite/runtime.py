"""Running a `.tflite`: in LiteRT (`ai-edge-litert`, optional: `pip install rnnq[tflite]`) and
in TFLite Micro's Python interpreter (`tflite-micro`), and the host-side conversion of data to
and from the file's input and output tensors.

`resolver` picks LiteRT's kernels: "builtin" (the optimised builtin kernels, XNNPACK off — what
the LiteRT profile of the simulator specifies), "reference" (BUILTIN_REF) or "auto" (LiteRT's
default, which hands the ops XNNPACK supports to XNNPACK).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

import numpy as np

from rnnq.backends.tflite.quantize import quantize_int8
from rnnq.ir import RnnqError
from rnnq.ir.tgraph import TGraph, TTensor
from rnnq.passes.qparams import quantize_symmetric

RESOLVERS = {"builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "reference": "BUILTIN_REF",
             "auto": "AUTO"}


def _module():
    try:
        from ai_edge_litert import interpreter
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise RnnqError("the tflite format needs LiteRT: pip install 'rnnq[tflite]' "
                        f"(ai-edge-litert): {e}") from None
    return interpreter


def version() -> str:
    from importlib.metadata import version as v
    return f"ai-edge-litert {v('ai-edge-litert')}"


#: What the runtimes' native code writes to stderr that is no news to an rnnq user.
_CHATTER = ("INFO: Created TensorFlow Lite XNNPACK delegate",)


@contextlib.contextmanager
def _fd2_captured() -> Iterator[list[str]]:
    """What native code writes to file descriptor 2 while the block runs (LiteRT's "INFO:
    Created ... delegate", TFLite Micro's kernel errors), as the non-empty lines of the list
    given to the block, filled when it ends (also when it raises)."""
    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real descriptor 2 (an embedding host): nothing to do
        yield lines
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode(errors="replace")
            lines += [x.strip() for x in text.splitlines() if x.strip()]


@contextlib.contextmanager
def native_stderr() -> Iterator[None]:
    """_fd2_captured, with what is not known chatter passed on to stderr."""
    caught: list[str] = []
    try:
        with _fd2_captured() as caught:
            yield
    finally:
        rest = [x for x in caught if not x.startswith(_CHATTER)]
        if rest:
            print("\n".join(rest), file=sys.stderr)


def interpreter(model: bytes, resolver: str = "builtin"):
    m = _module()
    kind = getattr(m.OpResolverType, RESOLVERS[resolver])
    with native_stderr():
        it = m.Interpreter(model_content=model, experimental_op_resolver_type=kind)
        it.allocate_tensors()
    return it


def invoke(model: bytes, feeds: list[np.ndarray], resolver: str = "builtin") -> list[np.ndarray]:
    """Run each sequence on its own (variables reset before each, as an app would between
    independent sequences). feeds: one array per model input, with a leading sequence axis N.
    Returns one array per model output with the same leading axis."""
    it = interpreter(model, resolver)
    ins, outs = it.get_input_details(), it.get_output_details()
    results: list[list[np.ndarray]] = [[] for _ in outs]
    for k in range(feeds[0].shape[0]):
        it.reset_all_variables()
        for d, f in zip(ins, feeds, strict=True):
            it.set_tensor(d["index"], np.ascontiguousarray(f[k]).astype(d["dtype"]))
        it.invoke()
        for r, d in zip(results, outs, strict=True):
            r.append(it.get_tensor(d["index"]).copy())
    return [np.stack(r) for r in results]


def feeds(q: TGraph, x: np.ndarray, index: int | None = None) -> np.ndarray:
    """Test inputs [N, T, F] as the file's input tensor takes them (another input tensor by
    its index: a state input [N, size])."""
    t = q.tensors[q.inputs[0] if index is None else index]
    if t.dtype == "float32":
        return x.astype(np.float32)
    if t.dtype == "int16":  # a 16-bit layer's state (rnnq.backends.tflite.widen)
        return quantize_symmetric(x, np.float64(t.scale), 16)
    return quantize_int8(x, t.scale, int(t.zero_point))


def dequantize(t: TTensor, v: np.ndarray) -> np.ndarray:
    if not t.quantized:
        return v.astype(np.float64)
    return (v.astype(np.float64) - int(t.zero_point)) * float(t.scale)


def tflm_compare(blob: bytes, x: np.ndarray, litert_outs: list[np.ndarray]) -> dict:
    """TFLite Micro's interpreter (PyPI tflite-micro) on the same inputs, against LiteRT."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        return {"ran": False, "reason": "tflite-micro is not installed (pip install tflite-micro)"}
    said: list[str] = []
    try:
        got: list[list[np.ndarray]] = [[] for _ in litert_outs]
        with _fd2_captured() as said:
            it = runtime.Interpreter.from_bytes(blob)
        for k in range(x.shape[0]):
            it.reset()
            it.set_input(x[k][None], 0)
            it.invoke()
            for j, r in enumerate(got):
                r.append(np.asarray(it.get_output(j)).copy())
    except Exception as e:  # noqa: BLE001 - TFLM refuses ops it lacks with assorted errors
        why = "; ".join([*said[:2], str(e)])  # its kernel's own words first
        return {"ran": False, "reason": f"TFLite Micro cannot run this file ({why[:200]})"}
    diff = np.concatenate([np.abs(np.stack(r).astype(np.int64).reshape(-1)
                                  - o.astype(np.int64).reshape(-1))
                           for r, o in zip(got, litert_outs, strict=True)])
    return {"ran": True, "mismatches_vs_litert": int(np.sum(diff != 0)),
            "compared_values": int(diff.size), "max_diff_lsb": int(diff.max(initial=0))}

"""Running a `.tflite` in LiteRT (`ai-edge-litert`, optional: `pip install rnnq[tflite]`).

`resolver` picks LiteRT's kernels: "builtin" (the optimised builtin kernels, XNNPACK off — what
the LiteRT profile of the simulator specifies), "reference" (BUILTIN_REF) or "auto" (LiteRT's
default, which hands the ops XNNPACK supports to XNNPACK).
"""

from __future__ import annotations

import numpy as np

from rnnq.ir import RnnqError

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


def interpreter(model: bytes, resolver: str = "builtin"):
    m = _module()
    kind = getattr(m.OpResolverType, RESOLVERS[resolver])
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

"""The float model's outputs from onnxruntime, run on the original ONNX file: the reference an
integer build is measured against (rnnq's own float reference where onnxruntime cannot run it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnq.data import Dataset, at_last_step
from rnnq.ir import Graph
from rnnq.ir.ops import RECURRENT
from rnnq.ir.states import state_values
from rnnq.sim.float_ref import run_float


def _batch(g: Graph) -> int:
    for n in g.nodes:
        if n.op in RECURRENT:
            return g.tensors[n.inputs[0]].shape[0]
    return 1


def float_outputs(model: Path, g: Graph, data: Dataset) -> tuple[list[np.ndarray], str]:
    """Per output [N, ...] at each sequence's end, and the engine that computed them:
    onnxruntime one sequence at a time, or rnnq's float reference where onnxruntime cannot take
    the model (e.g. an LSTM with layout=1, or a fixed sequence length)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # its refusals (e.g. layout=1) are handled: keep stderr clean
    ort.set_default_logger_severity(4)
    in_name = g.inputs[0]
    ta = g.meta["input_time_axis"]
    step_shape = list(g.tensors[g.inputs[0]].shape)
    outs: list[list[np.ndarray]] = [[] for _ in g.outputs]
    try:
        sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        types = {i.name: i.type for i in sess.get_inputs()}
        for i in range(data.n):
            xi = data.x[i, : data.lengths[i]].reshape(data.lengths[i], *step_shape)
            xi = np.moveaxis(xi, 0, ta)
            feed = {in_name: xi.astype(np.int64 if "int64" in types[in_name] else
                                       np.int32 if "int32" in types[in_name] else np.float32)}
            for name in g.meta.get("sequence_lens_inputs", []):
                feed[name] = np.full(_batch(g), data.lengths[i], np.int32)
            for name, (dt, count, rank) in g.meta.get("length_inputs", {}).items():
                v = np.full(count, data.lengths[i], dtype=dt)
                feed[name] = v if rank else v.reshape(())
            for name, info in g.meta.get("state_inputs", {}).items():
                v = (data.states or {}).get(name)
                feed[name] = (np.zeros(info["shape"]) if v is None else v[i]).astype(np.float32)
            res = sess.run(g.outputs, feed)
            for k, name in enumerate(g.outputs):
                r = res[k]
                if g.tensors[name].kind == "seq":
                    r = np.moveaxis(r, g.tensors[name].time_axis, 0)[-1]
                outs[k].append(np.asarray(r, np.float64).reshape(g.tensors[name].shape))
        return [np.stack(o) for o in outs], "onnxruntime"
    except Exception:  # noqa: BLE001 - e.g. a model exported with a fixed sequence length
        env = run_float(g, data.x, lengths=data.lengths, states=data.states)
        return [at_last_step(env[name], data.lengths) for name in g.outputs], "rnnq-float-ref"


def float_steps(model: Path, g: Graph, data: Dataset) -> tuple[dict[str, np.ndarray], str]:
    """A graph run once per timestep: every output, state outputs included, after every call
    [N, T, *shape], the state carried from each call's state outputs into the next call's
    state inputs; by onnxruntime, or rnnq's float reference where onnxruntime cannot run it."""
    import onnxruntime as ort

    states = {k: v for k, v in g.meta.get("state_inputs", {}).items() if "output" in v}
    names = list(g.outputs) + [v["output"] for v in states.values()]
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    out = {k: np.zeros((data.n, data.x.shape[1], *_shape(g, k, states)), np.float64)
           for k in names}
    try:
        sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        step_shape = list(g.tensors[g.inputs[0]].shape)
        given = data.states or {}
        for i in range(data.n):
            carry = {k: (given[k][i] if k in given else np.zeros(v["shape"])).astype(np.float32)
                     for k, v in states.items()}
            for t in range(int(data.lengths[i])):
                feed = {g.inputs[0]: data.x[i, t].reshape(step_shape).astype(np.float32), **carry}
                res = dict(zip(names, sess.run(names, feed)))
                for k in names:
                    out[k][i, t] = np.asarray(res[k], np.float64).reshape(out[k].shape[2:])
                carry = {k: res[v["output"]].astype(np.float32) for k, v in states.items()}
        return out, "onnxruntime"
    except Exception:  # noqa: BLE001 - onnxruntime refused the model: rnnq's float reference
        env = run_float(g, data.x, lengths=data.lengths, states=data.states)
        res = {k: env[k] for k in g.outputs}
        res.update({v["output"]: state_values(g, env, k) for k, v in states.items()})
        return res, "rnnq-float-ref"


def _shape(g: Graph, name: str, states: dict) -> list[int]:
    for v in states.values():
        if v["output"] == name:
            return list(v["shape"])
    return list(g.tensors[name].shape)

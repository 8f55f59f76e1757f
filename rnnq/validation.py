"""rnnq validate: float model vs integer simulator vs what the build runs on, on every sequence.

- C builds: the harness (backends/c/harness.py) runs `_step` at every timestep and `_run` over
  each whole sequence, on the host or on the target's emulated board; every output value is
  compared with the rnnq profile of the simulator by exact equality.
- tflite builds: model.tflite, read back from the file, runs in LiteRT (builtin kernels) and in
  the LiteRT profile of the simulator, compared exactly; LiteRT's default delegates and TFLite
  Micro are compared with LiteRT and their differences reported.

Both report the integer model against the float one (rnnq.report). The float and integer IR
come from the caller (rnnq.api), rebuilt from the build folder.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from rnnq import numerics as nx
from rnnq import progress
from rnnq.backends.c import harness, serial_run
from rnnq.backends.tflite import runtime, support
from rnnq.backends.tflite.emit import TFLITE
from rnnq.build_folder import BuildFolder
from rnnq.data import Dataset, at_last_step, valid_mask
from rnnq.diagnose import THRESHOLD_DB, saturation_c
from rnnq.ir import Graph, RnnqError
from rnnq.report import error_by_step, float_vs_int, percent, sqnr_db
from rnnq.sim.float_ref import run_float
from rnnq.sim.integer import (
    dequantize_output,
    quantize_input,
    quantize_states,
    run_integer,
    state_outputs,
)
from rnnq.sim.litert.interpreter import run as run_litert_profile
from rnnq.sim.onnx_runtime import float_outputs, float_steps


def with_states(g: Graph, data: Dataset) -> Dataset:
    """The data with every state input present: an absent one is zeros, as documented, and
    reaches the C quantised like any other value (not as raw 0s)."""
    states = dict(data.states or {})
    for name, info in g.meta.get("state_inputs", {}).items():
        if name not in states:
            states[name] = np.zeros((data.n, *info["shape"]))
    return Dataset(data.x, data.lengths, data.y, states)


def validate_c(b: BuildFolder, fg: Graph, ig: Graph, data: Dataset, on: str = "host") -> dict:
    """The C build against the simulator (exact) and the float model (SQNR, metrics)."""
    _check_max_steps(b, data)
    # where the C runs (a host CPU without the target's features refuses before any work)
    target_kernels = harness.harness_target(b.manifest, "host")[1]
    data = with_states(fg, data)
    xq = quantize_input(ig, data.x)
    sq = quantize_states(ig, data.states)
    xs = xq.reshape(data.n, data.x.shape[1], -1)
    with ThreadPoolExecutor(1) as pool:
        # the host harness (compiler, then the C program: other processes) runs while this
        # one simulates and runs the float model
        host_run = pool.submit(harness.run_harness, b.path, b.manifest, xs, data.lengths,
                               "host", sq)
        rep, want = _c_versus_float(b, fg, ig, data, xq, sq, host_run)
    # a cross build runs on the host as portable C: its own kernel variants are not tested
    rep["c"]["target_kernels"] = target_kernels
    rep["warnings"] = warnings_of(rep)
    return _on_device(b, rep, want, xs, data, sq, on)


def _c_versus_float(b: BuildFolder, fg: Graph, ig: Graph, data: Dataset, xq: np.ndarray,
                    sq, host_run: Future) -> tuple[dict, list]:
    """validate_c's report: the simulator, the float model and the host harness's outputs
    (host_run: run_harness's result, awaited last); and the outputs the simulator expects of
    the C."""
    with progress.stage(f"integer simulator on {data.n} sequences"):
        env = run_integer(ig, xq, data.lengths, sq)
    streaming = b.manifest.get("streaming", True)
    want = harness.expected_outputs(ig, env, data.lengths, streaming)
    with progress.stage("float model"):
        if fg.meta.get("step_graph"):
            fl, ints, engine = _every_call(b, fg, ig, data, env)
        else:
            fls, engine = float_outputs(b.model, fg, data)
            fl = dict(zip(fg.outputs, fls))
            ints = {name: dequantize_output(ig, o, at_last_step(env[o], data.lengths))
                    for name, o in zip(fg.outputs, ig.outputs)}
    first = fg.outputs[0]
    with progress.stage("error by step and saturation"):
        fenv = run_float(fg, data.x, lengths=data.lengths, states=data.states)
        by_step = _error_by_step(fg, ig, data, env, streaming, fenv)
        saturation = saturation_c(fg, ig, data, streaming, fenv)
    with progress.stage("building and running the C harness (host)"):
        raw, _ = host_run.result()
    c_rep = harness.compare(harness.split_outputs(raw, b.manifest, data.lengths, b.path), want)
    rep = {"n": data.n, "target": b.manifest["target"],
           **float_vs_int(fl[first], ints[first], _labels(data, fg),
                          b.manifest["outputs"][0]["scale"], engine),
           "outputs": _per_output(list(fl), list(fl.values()), list(ints.values())),
           "c": c_rep, "error_by_step": by_step, "saturation": saturation}
    rep["int"]["input_clipped"] = _clipped_inputs(ig, data)
    return rep, want


def _on_device(b: BuildFolder, rep: dict, want: list, xs: np.ndarray, data: Dataset, sq, on: str
               ) -> dict:
    """validate_c on the emulated board or a real one (`on`), after the host: its outputs
    against `want`, the simulator's."""
    if on == "emulator":
        with progress.stage("building and running the C harness (emulator)"):
            raw, runner = harness.run_harness(b.path, b.manifest, xs, data.lengths,
                                              "emulator", sq)
        got = harness.split_outputs(raw, b.manifest, data.lengths, b.path)
        rep["device"] = {**harness.compare(got, want), "runner": runner}
    elif on.startswith("serial:"):  # the UART test firmware on a board (serial_run.py)
        with progress.stage(f"running on the board at {on.removeprefix('serial:')}"):
            raw, facts = serial_run.run_serial(on, b.manifest, xs, data.lengths, sq)
        got = harness.split_outputs(raw, b.manifest, data.lengths, b.path)
        rep["device"] = {**harness.compare(got, want), "runner": on, **facts}
    return rep


def _check_max_steps(b: BuildFolder, data: Dataset) -> None:
    """A whole-sequence build's _run takes at most its max_steps (its arena holds that many);
    a streaming build has no limit of its own (the harness takes what memory holds)."""
    limit = b.manifest.get("max_steps")
    longest = int(np.max(data.lengths, initial=0))
    if not b.manifest.get("streaming", True) and limit is not None and longest > limit:
        raise RnnqError(f"{b.path}: the data has a sequence of {longest} steps and this "
                        f"whole-sequence build runs up to {limit} (its --max-steps); compile it "
                        f"with --max-steps {longest} to validate on it")


def warnings_of(rep: dict) -> list[str]:
    """What a user should look at: an SQNR below the accuracy goal, tensors that saturate."""
    out = []
    sq = rep["int"].get("sqnr_db")
    if sq is not None and sq < THRESHOLD_DB:
        out.append(f"the integer model's SQNR against float is {sq:.1f} dB, below the "
                   f"{THRESHOLD_DB:g} dB goal: `--per-layer` shows where the error enters")
    sat = rep.get("saturation", {}).get("tensors", [])
    if sat:
        worst = sat[0]
        out.append(f"{len(sat)} tensor(s) saturate on this data, most {worst['tensor']!r} "
                   f"({percent(worst['fraction'])} of its values beyond its "
                   f"{worst['dtype']} range): the calibration data did not reach what this data "
                   "does (more representative calibration data, or --headroom)")
    return out


def _every_call(b: BuildFolder, fg: Graph, ig: Graph, data: Dataset, env: dict
                ) -> tuple[dict, dict, str]:
    """A graph run once per timestep: every output (state outputs included) at every real
    call, float and integer, as [calls, *shape]."""
    fsteps, engine = float_steps(b.model, fg, data)
    mask = valid_mask(data.lengths, data.x.shape[1])
    isteps = {name: dequantize_output(ig, o, env[o]) for name, o in zip(fg.outputs, ig.outputs)}
    isteps.update(state_outputs(ig, env))
    return ({k: v[mask] for k, v in fsteps.items()},
            {k: isteps[k].reshape(fsteps[k].shape)[mask] for k in fsteps}, engine)


def _labels(data: Dataset, fg: Graph) -> np.ndarray | None:
    """Labels per compared value: per call ([N, T]) in a graph run once per timestep."""
    y = data.y
    if y is None or not fg.meta.get("step_graph"):
        return y
    if y.shape[:2] != data.x.shape[:2]:
        raise RnnqError(f"'y' has shape {list(y.shape)}; for a model run once per timestep it "
                        f"holds a label per call: [N, T{', ...' if y.ndim > 2 else ''}] = "
                        f"{list(data.x.shape[:2])}")
    return y[valid_mask(data.lengths, data.x.shape[1])]


def _clipped_inputs(g: Graph, data: Dataset) -> float:
    """Fraction of real input values beyond the integer input's range (they saturate)."""
    t = g.tensors[g.inputs[0]]
    if t.q is None:
        return 0.0
    x = data.x.reshape(*data.x.shape[:2], *t.shape).astype(np.float64)
    q = nx.round_half_away(x / t.q.scale) + t.q.zero_point
    top = nx.INT16_MAX if t.dtype == "int16" else nx.INT8_MAX
    out = (q < -top - 1) | (q > top)
    mask = valid_mask(data.lengths, data.x.shape[1]).reshape(
        data.n, data.x.shape[1], *([1] * len(t.shape)))
    return float(np.sum(out & mask) / max(1, np.sum(np.broadcast_to(mask, out.shape))))


def _error_by_step(fg: Graph, ig: Graph, data: Dataset, env: dict, streaming: bool,
                   fenv: dict) -> dict:
    """Integer-vs-float error of the first output at each timestep t (over the sequences that
    reach t). A 'final' output at t is the answer "if the sequence ended at t" (streamable
    models); whole-sequence models only have an answer at the end. fenv: the float IR's values
    on the data (run_float)."""
    name = ig.outputs[0]
    if not streaming and ig.tensors[name].kind != "seq":
        return {"sqnr_db": [], "rmse": []}
    # the integer graph may rename an output (an int16 state requantised to int8)
    fl = fenv[fg.outputs[0]].reshape(data.n, data.x.shape[1], -1)
    iq = dequantize_output(ig, name, env[name]).reshape(fl.shape)
    return error_by_step(fl, iq, data.lengths)


def validate_tflite(b: BuildFolder, fg: Graph, data: Dataset, on: str = "host") -> dict:
    """model.tflite in LiteRT against the simulator (exact), TFLite Micro against LiteRT, and
    the integer model against the float one."""
    if on != "host":
        raise RnnqError(f"{b.path}: a tflite build runs in LiteRT; --on {on} applies to "
                        "C builds")
    support.require("tflite", "flatbuffers", "ai_edge_litert")
    from rnnq.backends.tflite.reader import read_tflite  # needs the rnnq[tflite] extra

    info = b.manifest["tflite"]
    if "state_inputs" in info:
        return _validate_tflite_calls(b, fg, data)
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
    x = runtime.feeds(q, data.x)
    with progress.stage("LiteRT profile (the simulator)"):
        sim = run_litert_profile(q, [x])
    with progress.stage("LiteRT (builtin kernels, then default delegates)"):
        rt = runtime.invoke(blob, [x[:, None]])
        auto = runtime.invoke(blob, [x[:, None]], resolver="auto")
    mism = sum(int(np.sum(s.reshape(r.shape) != r)) for s, r in zip(sim, rt, strict=True))
    compared = sum(int(r.size) for r in rt)
    xnn = np.concatenate([np.abs(a.astype(np.int64) - r.astype(np.int64)).ravel()
                          for a, r in zip(auto, rt, strict=True)])
    with progress.stage("float model"):
        fl, engine = float_outputs(b.model, fg, data)
    with progress.stage("TFLite Micro"):
        tflm = runtime.tflm_compare(blob, x, rt)
    ints = []
    for k, (i, v) in enumerate(zip(q.outputs, sim, strict=True)):
        v = runtime.dequantize(q.tensors[i], v)
        if info["outputs"][k].get("kind") == "seq":
            v = v[:, -1]
        ints.append(v.reshape(fl[k].shape))
    rep = {
        "n": data.n, "target": "tflite", "format": "tflite",
        **float_vs_int(fl[0], ints[0], data.y, info["outputs"][0].get("scale", 1.0), engine),
        "outputs": _per_output([o["name"] for o in info["outputs"]], fl, ints),
        "tflite": {"bit_exact": mism == 0, "mismatches": mism, "compared_values": compared,
                   "runtime": f"{runtime.version()} (builtin kernels, XNNPACK off)",
                   "file_bytes": len(blob), "ops": info["ops"],
                   "padded_sequences_run_in_full": padded,
                   # LiteRT's default (XNNPACK takes the ops it supports; not what rnnq models)
                   "default_delegates": {"mismatches": int(np.sum(xnn != 0)),
                                         "max_diff_lsb": int(xnn.max(initial=0))}},
        "tflite_micro": tflm,
    }
    rep["warnings"] = warnings_of(rep)
    return rep


def tflite_calls(q, fg: Graph, data: Dataset, run) -> list[np.ndarray]:
    """A .tflite run once per call (a graph run once per step): every call's outputs
    [N, K, size] (graph outputs, then state outputs), each state output's codes fed back to
    its state input (they share one quantisation). run(feeds) -> outputs runs one call of all
    N streams (feeds: x [N, 1, F], then each state [N, size])."""
    n, k = data.x.shape[:2]
    xs = runtime.feeds(q, data.x)
    names = list(fg.meta["state_inputs"])  # the file's state inputs, in this order
    outs = [_base(q.tensors[i].name) for i in q.outputs]
    back = [outs.index(fg.meta["state_inputs"][s]["output"])
            if "output" in fg.meta["state_inputs"][s] else None for s in names]
    states = [runtime.feeds(q, np.asarray(data.states[s], np.float64).reshape(n, -1), index=i)
              for s, i in zip(names, q.inputs[1:], strict=True)]
    calls: list[list[np.ndarray]] = [[] for _ in q.outputs]
    for c in range(k):
        for r, o in zip(calls, run([xs[:, c:c + 1], *states]), strict=True):
            r.append(np.asarray(o).reshape(n, -1))
        states = [st if j is None else calls[j][-1] for st, j in zip(states, back, strict=True)]
    return [np.stack(r, axis=1) for r in calls]


def _base(name: str) -> str:
    """A file tensor's IR name (a float-I/O edge tensor is named <name>/float)."""
    return name.removesuffix("/float")


def _validate_tflite_calls(b: BuildFolder, fg: Graph, data: Dataset) -> dict:
    """A one-call-per-invoke .tflite: LiteRT and the LiteRT profile carried over every call of
    every stream (exact), and every output of every call against the float model."""
    from rnnq.backends.tflite.reader import read_tflite  # needs the rnnq[tflite] extra

    info = b.manifest["tflite"]
    data = with_states(fg, data)
    blob = (b.path / TFLITE).read_bytes()
    q = read_tflite(blob)
    with progress.stage(f"LiteRT profile (the simulator), {data.x.shape[1]} calls per stream"):
        sim = tflite_calls(q, fg, data, lambda f: run_litert_profile(q, f))

    def litert(resolver: str) -> list[np.ndarray]:
        return tflite_calls(q, fg, data, lambda f: [
            o.reshape(o.shape[0], -1)
            for o in runtime.invoke(blob, [a[:, None] for a in f], resolver=resolver)])

    with progress.stage("LiteRT (builtin kernels, then default delegates)"):
        rt, auto = litert("builtin"), litert("auto")
    mism = sum(int(np.sum(s != r)) for s, r in zip(sim, rt, strict=True))
    xnn = np.concatenate([np.abs(a.astype(np.int64) - r.astype(np.int64)).ravel()
                          for a, r in zip(auto, rt, strict=True)])
    with progress.stage("float model, call by call"):
        fsteps, engine = float_steps(b.model, fg, data)
    mask = valid_mask(data.lengths, data.x.shape[1])
    fl, ints = {}, {}
    for (name, f), i, v in zip(fsteps.items(), q.outputs, sim, strict=True):
        fl[name] = f[mask]
        ints[name] = runtime.dequantize(q.tensors[i], v).reshape(f.shape)[mask]
    first = fg.outputs[0]
    return {
        "n": data.n, "target": "tflite", "format": "tflite",
        **float_vs_int(fl[first], ints[first], _labels(data, fg),
                       info["outputs"][0].get("scale", 1.0), engine),
        "outputs": _per_output(list(fl), list(fl.values()), list(ints.values())),
        "tflite": {"bit_exact": mism == 0, "mismatches": mism,
                   "compared_values": sum(int(r.size) for r in rt),
                   "runtime": f"{runtime.version()} (builtin kernels, XNNPACK off)",
                   "file_bytes": len(blob), "ops": info["ops"],
                   "calls_per_stream": int(data.x.shape[1]),
                   # each chain carries its own state: a difference can grow over the calls
                   "default_delegates": {"mismatches": int(np.sum(xnn != 0)),
                                         "max_diff_lsb": int(xnn.max(initial=0))}},
        "tflite_micro": {"ran": False, "reason": "not run for a file invoked once per call"},
    }


def _per_output(names: list[str], fl: list[np.ndarray], ints: list[np.ndarray]) -> list[dict]:
    """Each model output's SQNR and largest error against float."""
    return [{"name": k, "sqnr_db": sqnr_db(f, i), "max_abs_error": float(np.max(np.abs(f - i)))}
            for k, f, i in zip(names, fl, ints, strict=True)]


def simulate(b: BuildFolder, fg: Graph, ig: Graph | None, data: Dataset,
             integer: bool = False) -> dict[str, np.ndarray]:
    """The build's outputs on data as its integer model computes them (a C build: rnnq's
    simulator, which the C reproduces bit for bit; a .tflite: rnnq's LiteRT profile, which LiteRT
    reproduces), keyed by the ONNX output names: [N, T, *shape] for a per-timestep output,
    [N, *shape] for a final one (each sequence's last real step); dequantised unless `integer`."""
    out: dict[str, np.ndarray] = {}
    if b.format == "tflite":
        support.require("tflite", "flatbuffers")
        from rnnq.backends.tflite.reader import read_tflite  # needs the rnnq[tflite] extra

        info = b.manifest["tflite"]
        q = read_tflite((b.path / TFLITE).read_bytes())
        if "state_inputs" in info:  # one call per invoke: every call, state outputs too
            data = with_states(fg, data)
            vals = tflite_calls(q, fg, data, lambda f: run_litert_profile(q, f))
            shapes = {o: fg.tensors[o].shape for o in fg.outputs}
            shapes.update({m["output"]: m["shape"] for m in fg.meta["state_inputs"].values()
                           if "output" in m})
            for (name, shape), i, v in zip(shapes.items(), q.outputs, vals, strict=True):
                v = v if integer else runtime.dequantize(q.tensors[i], v)
                out[name] = v.reshape(data.n, data.x.shape[1], *shape)
            return out
        if data.x.shape[1] != info["seq_len"]:
            raise RnnqError(f"{b.path}/{TFLITE} runs sequences of exactly {info['seq_len']} "
                            f"steps and the data has {data.x.shape[1]}")
        vals = run_litert_profile(q, [runtime.feeds(q, data.x)])
        for name, i, v in zip(fg.outputs, q.outputs, vals, strict=True):
            v = v if integer else runtime.dequantize(q.tensors[i], v)
            out[name] = v.reshape(data.n, *([data.x.shape[1]] if fg.tensors[name].kind == "seq"
                                             else []), *fg.tensors[name].shape)
        return out
    data = with_states(fg, data)
    env = run_integer(ig, quantize_input(ig, data.x), data.lengths,
                      quantize_states(ig, data.states))
    for name, iname in zip(fg.outputs, ig.outputs, strict=True):
        v = env[iname]
        if ig.tensors[iname].kind != "seq":
            v = at_last_step(v, data.lengths)
        out[name] = v if integer else dequantize_output(ig, iname, v)
    out.update(state_outputs(ig, env, dequantize=not integer))
    return out

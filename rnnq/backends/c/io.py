"""How a C build's inputs, outputs and state inputs are quantised: what model.h documents (and
its integer quantise/dequantise helpers use) and what manifest.json records."""

from __future__ import annotations

import numpy as np

from rnnq import numerics as nx
from rnnq.ir import Graph
from rnnq.sim.integer import state_formats

#: entries of the I/O descriptions that only the header templates print
HEADER_ONLY = ("scale_text", "scale_q31", "scale_exp", "zero_points", "scales_q31", "scales_exp")


def scale_fixed(s: float) -> tuple[int, int]:
    """scale = q31 * 2^-(31 + exp), q31 in [2^30, 2^31): the integer form for C headers."""
    m, sh = nx.quantize_multiplier(s) if s < 2**29 else (0, 1)
    return m, sh - 31


def io_info(g: Graph) -> dict:
    """The input's, outputs' and state inputs' formats (integer graph g)."""
    t = g.tensors[g.inputs[0]]
    if t.q is None:  # token ids
        inp = {"name": t.name, "per_channel": False, "step_shape": list(t.shape), "ids": True,
               "time_axis": g.meta["input_time_axis"], "scale": None, "zero_point": None}
        return {"input": inp, "outputs": _outputs(g), "states": _states(g)}
    scales = np.atleast_1d(t.q.scale).astype(float)
    zps = np.atleast_1d(t.q.zero_point).astype(int)
    fixed = [scale_fixed(float(s)) for s in scales]
    inp = {
        "name": t.name, "dtype": t.dtype, "per_channel": t.q.axis is not None,
        "step_shape": list(t.shape),
        "time_axis": g.meta["input_time_axis"], "scale": scales.tolist(),
        "zero_point": zps.tolist(),
        "scale_text": f"{scales[0]:.9g}", "scale_q31": fixed[0][0], "scale_exp": fixed[0][1],
        "zero_points": ", ".join(str(z) for z in zps),
        "scales_q31": ", ".join(str(f[0]) for f in fixed),
        "scales_exp": ", ".join(str(f[1]) for f in fixed),
    }
    return {"input": inp, "outputs": _outputs(g), "states": _states(g)}


#: How a value of each C type travels between the host and a harness: little endian.
WIRE = {"int8_t": "i1", "int16_t": "<i2", "int32_t": "<i4"}


def output_wire(manifest: dict) -> str:
    """How the values of y travel (WIRE): int16 when any output is int16 (older builds: int8)."""
    wide = any(o.get("dtype") == "int16" for o in manifest["outputs"])
    return WIRE["int16_t" if wide else "int8_t"]


def _states(g: Graph) -> dict:
    """How each state input is quantised: per recurrent state it sets (node, h or c), the
    elements of the input and their format."""
    out = {}
    for name, f in state_formats(g).items():
        parts = []
        for part in f["parts"]:
            idx = np.asarray(part["index"])
            run = np.array_equal(idx, idx[0] + np.arange(idx.size))
            ctype = f"int{part['bits']}_t"
            parts.append({
                "node": part["node"], "which": part["which"], "ctype": ctype,
                "scale": part["scale"], "zero_point": part["zero_point"],
                "elements": [int(idx[0]), int(idx[-1])] if run else idx.tolist(),
                "text": (f"{'cell state c' if part['which'] == 'c' else 'hidden state h'} of "
                         f"node '{part['node']}', elements "
                         + (f"{idx[0]}..{idx[-1]}" if run else f"{idx.tolist()}") + ": "
                         + _state_text(ctype, part["scale"], part["zero_point"]))})
        out[name] = {"ctype": f["ctype"], "parts": parts}
    return out


def _state_text(ctype: str, s: float, z: int) -> str:
    """How firmware quantises a state value v: the LSTM cell has a power-of-two scale."""
    if ctype != "int8_t" and float(np.log2(s)).is_integer():
        return f"{ctype[:-2]}, q = round(v * 2^{round(-np.log2(s))})"
    if ctype != "int8_t":
        return f"{ctype[:-2]}, q = round(v / {s:.9g})"
    return f"int8, q = round(v / {s:.9g}) + {z}"


def _outputs(g: Graph) -> list[dict]:
    outs = []
    for name in g.outputs:
        o = g.tensors[name]
        s = float(o.q.scale)
        q31, e = scale_fixed(s)
        outs.append({"name": name, "kind": o.kind, "step_shape": list(o.shape), "size": o.size,
                     "dtype": o.dtype, "ctype": f"{o.dtype}_t", "bits": 16 if o.dtype == "int16" else 8,
                     "scale": s, "zero_point": int(o.q.zero_point), "scale_text": f"{s:.9g}",
                     "scale_q31": q31, "scale_exp": e})
    return outs


def without_header_text(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in HEADER_ONLY}

"""The C build's entries in manifest.json (after build_folder.manifest_header's)."""

from __future__ import annotations

import numpy as np

from rnnq.backends.c.io import without_header_text
from rnnq.ir import Graph, macs_per_step
from rnnq.ir.ops import INT_RECURRENT
from rnnq.targets import Target


def c_entries(g: Graph, tgt: Target, prefix: str, io: dict, facts: dict) -> dict:
    """What a C build is: memory, schedule, I/O formats, recurrent layers, every tensor's
    quantisation (integer graph g; `facts` from emit_c and the target measurement)."""
    tensors = {}
    for t in g.tensors.values():
        if t.q is not None and t.kind != "const":
            tensors[t.name] = {"dtype": t.dtype, "kind": t.kind, "shape": list(t.shape),
                               "scale": np.atleast_1d(t.q.scale).tolist(),
                               "zero_point": np.atleast_1d(t.q.zero_point).tolist()}
    rec = []
    for n in g.nodes:
        if n.op in INT_RECURRENT:
            p = n.attrs["params"]
            info = {"node": n.name, "kind": INT_RECURRENT[n.op], "reverse": n.attrs["reverse"],
                    "input_size": p.input_size, "hidden_size": p.hidden_size,
                    "gate_preact_range_calibrated": n.attrs["gate_range"]}
            info["state_bits"] = p.state_bits
            # 16: rw and rw_lo (rnnq.ir.params), 8: rw alone
            info["recurrent_weight_bits"] = 16 if np.asarray(p.rw_lo).size else 8
            if n.op == "qlstm":
                info.update(cell_frac_bits=p.cell_frac,
                            cell_absmax_calibrated=n.attrs["cell_absmax"])
            rec.append(info)
    return {
        "prefix": prefix,
        "isa": tgt["isa"], "kernels": {**tgt["kernels"], **facts.get("weights", {})},
        "memory": {"weight_bytes": facts["weight_bytes"], "arena_bytes": facts["arena_bytes"],
                   "state_bytes": facts["state_bytes"]},
        "target_memory": facts["target_memory"],
        "streaming": facts["streaming"], "max_steps": facts["max_steps"],
        "macs_per_step": macs_per_step(g),
        "input": without_header_text(io["input"]),
        "outputs": [without_header_text(o) for o in io["outputs"]],
        "state_inputs": {k: {**g.meta["state_inputs"][k], "formats": v}
                         for k, v in io["states"].items()},
        "recurrent": rec,
        # what the compiler chose by measured error, with what each alternative measured
        "choices": g.meta.get("choices", {}),
        "tensors": tensors,
    }

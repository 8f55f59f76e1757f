"""Bias correction's recurrent term on the grid the layer's R has: int8 R is corrected for int8
rounding ("h"), 16-bit R (rw + rw_lo / 2^8) for the much smaller rounding of its own grid
("h16"); a layer that --precision auto widens to 16-bit R after the correction was measured
must not keep the int8 term. The terms are checked against numpy written here from the
definition (per-row symmetric scale, half-away rounding, the next 8 bits of the residual)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from rnnq.api import compile_model, float_graph
from rnnq.data import load_npz, valid_mask
from rnnq.ir.ops import RECURRENT
from rnnq.passes import bias_correction
from rnnq.passes.calibrate import apply_ranges
from rnnq.passes.quantize import quantize
from rnnq.sim.float_ref import run_float

ROOT = Path(__file__).resolve().parents[2]
BILSTM7 = ROOT / "tests" / "fixtures" / "accuracy" / "bilstm_basicmotions_s7.onnx"
CALIB = ROOT / "examples" / "basic_motions_gru" / "calib.npz"


def _half_away(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def _grid_error(r: np.ndarray, fine: bool) -> np.ndarray:
    """R minus R on its int8 (or 16-bit) grid of per-row scales max|row| / 127."""
    s = np.abs(r).max(axis=1, keepdims=True) / 127.0
    q = _half_away(r / s)
    if fine:
        q = q + np.clip(_half_away((r / s - q) * 256.0), -128, 127) / 256.0
    return r - q * s


def test_recurrent_terms_follow_the_grid(tmp_path: Path) -> None:
    compile_model(BILSTM7, CALIB, tmp_path / "b", precision="int8")
    record = json.loads((tmp_path / "b" / "calibration.json").read_text())
    fg = apply_ranges(float_graph(BILSTM7), {**record, "bias_correction": {}})
    data = load_npz(CALIB, fg)
    fenv = run_float(fg, data.x, lengths=data.lengths)
    corr = bias_correction.corrections(fg, quantize(copy.deepcopy(fg)), fenv, data.lengths)
    layers = [n for n in fg.nodes if n.op in RECURRENT]
    assert len(layers) == 4 and all(n.outputs[0] in corr for n in layers)
    for n in layers:
        r = fg.tensors[n.inputs[2]].data.astype(np.float64)
        h = fenv[n.outputs[0]]
        eh = h[valid_mask(data.lengths, h.shape[1])].reshape(-1, r.shape[1]).mean(axis=0)
        c = corr[n.outputs[0]]
        for key, fine in (("h", False), ("h16", True)):
            want = _grid_error(r, fine) @ eh
            assert np.allclose(c[key], want, rtol=1e-9, atol=1e-12), (n.name, key)
        # the 16-bit grid's residual is about 2^8 times smaller than the int8 grid's
        assert np.abs(c["h16"]).max() < np.abs(c["h"]).max() / 32

    # apply folds the term of each layer's grid: one layer 16-bit, the others int8
    wide = layers[0].outputs[0]
    g = copy.deepcopy(fg)
    g.meta["layer_rw_bits"] = {wide: 16}
    bias_correction.apply(g, corr)
    for n in layers:
        key = "h16" if n.outputs[0] == wide else "h"
        c = corr[n.outputs[0]]
        b0, b1 = fg.tensors[n.inputs[3]].data, g.tensors[n.inputs[3]].data
        want = ((b0 + np.asarray(c["x"])).astype(b1.dtype) + np.asarray(c[key])).astype(b1.dtype)
        assert np.array_equal(b1, want), (n.name, key)

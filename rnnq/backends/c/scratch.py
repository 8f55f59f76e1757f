"""Scratch bytes each integer kernel needs: the Python twin of rnnq_<op>_scratch_size() in
templates/c/runtime (tests/kernels/test_scratch_sizes.py compiles the C and compares).

The recurrent and dense kernels compute their dot products with rnnq_matvec_* into int32
accumulators in scratch, so scratch must be 4-byte aligned. The sizes do not depend on the
matvec variant (ref, arm_dsp, neon) a target links."""

from __future__ import annotations

import numpy as np

from rnnq.backends.c.layouts import FUSED_UNITS

#: Every kernel's scratch must start at a multiple of this many bytes (int32 accumulators).
SCRATCH_ALIGN = 4


def matvec_xbuf_bytes(cols: int) -> int:
    """rnnq_matvec_xbuf_size(cols): int16 copy of a cols-vector, rounded up to 4 bytes."""
    return (cols + 1) // 2 * 4


def scratch_bytes(op: str, params, fused: bool = False) -> int:
    """Bytes of 4-byte aligned scratch for one call of the kernel of IR op `op` (fused: the
    unit-major step, rnnq_lstm_fused_scratch_size / rnnq_gru_fused_scratch_size)."""
    if op == "qdense":
        return 4 * params.out_features + matvec_xbuf_bytes(params.in_features)
    if op not in ("qlstm", "qgru", "qrnn"):
        return 0
    hid = params.hidden_size
    xbuf = matvec_xbuf_bytes(max(params.input_size, hid))
    if fused:  # int32 [G U] from x and from h, x and h packed
        gates = 4 if op == "qlstm" else 3
        return (2 * gates * FUSED_UNITS * 4 + matvec_xbuf_bytes(params.input_size)
                + matvec_xbuf_bytes(hid))
    # with 16-bit recurrent weights (rw_lo), int32 [rows] more for rw_lo's product
    gates = {"qlstm": 4, "qgru": 3, "qrnn": 1}[op]
    lo = 4 * gates * hid if np.asarray(getattr(params, "rw_lo", ())).size else 0
    if op == "qlstm":
        return 32 * hid + xbuf + lo  # int32 [4H] from x and from h
    if op == "qgru":  # int32 [3H] from x and from h, int16 [H] r*h (rounded up to 4 with lo)
        base = 24 * hid + xbuf + 2 * hid
        return (base + 3) // 4 * 4 + lo if lo else base
    return 8 * hid + xbuf + lo  # qrnn: int32 [H] from x and from h

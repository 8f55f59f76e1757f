"""Scratch bytes each integer kernel needs: the Python twin of rnnq_<op>_scratch_size() in
templates/c/runtime (a test compares the two)."""

from __future__ import annotations


def scratch_bytes(op: str, params) -> int:
    """Bytes of int16-aligned scratch for one call of the kernel of IR op `op`."""
    if op == "qlstm":
        return 8 * params.hidden_size
    if op == "qgru":
        return 6 * params.hidden_size
    if op == "qrnn":
        return 2 * params.hidden_size
    return 0

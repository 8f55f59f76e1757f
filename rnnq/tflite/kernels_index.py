"""GATHER: indexing with constant indices along one axis (never the folded dim 0). Input and
output share their quantisation (the quantiser ties them), so integer and float are the same
copy."""

from __future__ import annotations

import numpy as np

from rnnq.tflite.sim import kernel


def _gather(ctx, op, args) -> list:
    x, idx = args
    axis = int(op.options.get("Axis", 0))
    if axis <= 0 or int(op.options.get("BatchDims", 0)) != 0:
        raise NotImplementedError("GATHER along dim 0 or with batch_dims")
    idx = np.asarray(idx, dtype=np.int64)
    if np.any(idx < 0) or np.any(idx >= x.shape[axis]):
        raise ValueError(f"GATHER index out of range for axis size {x.shape[axis]}")
    return [np.take(x, idx, axis=axis)]


kernel("GATHER")(_gather)
kernel("GATHER", float_version=True)(_gather)

"""Bit-exact integer kernels of the simulator, built only from rnnq.numerics.

These are the reference the C kernels in templates/c/runtime/rnnq_kernels.c are tested against
(np.array_equal). All arithmetic is int64 numpy on integer inputs: no float at evaluation time.
Every kernel is vectorised over arbitrary leading batch dimensions.

Sums are exact here (int64). The C kernels keep dot-product accumulators (bias + w·x) in int32,
so the compiler must guarantee |bias| + K * 128 * 128 < 2^31 for each row; everything after the
accumulator (the sum of two requants, out_zp + requant, ...) is exact in C as well.
"""

from __future__ import annotations

import numpy as np

from rnnq.ir.params import BinaryParams, DenseParams, LstmParams, SoftmaxParams
from rnnq.numerics import (
    ACT_FRAC_BITS,
    GATE_FRAC_BITS,
    requant,
    rshift_round,
    sat,
    sigmoid_q15,
    tanh_q15,
)


def _i64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.int64)


def _check_last(name: str, a: np.ndarray, n: int) -> None:
    if a.ndim == 0 or a.shape[-1] != n:
        raise ValueError(f"{name}: expected last dimension {n}, got shape {a.shape}")


def _matvec(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """sum_k w[r, k] * x[..., k] in int64 (exact): x[..., K] -> [..., R]."""
    return x @ _i64(w).T


def lstm_step(
    p: LstmParams, x: np.ndarray, h: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step as defined in LstmParams' docstring: (x[..., I], h[..., H], c[..., H]) ->
    (h int8, c int16). All four gates use the old h; ONNX gate order i, o, f, c."""
    H = p.hidden_size
    x, h, c = _i64(x), _i64(h), _i64(c)
    _check_last("lstm x", x, p.input_size)
    _check_last("lstm h", h, H)
    _check_last("lstm c", c, H)
    gx = requant(_i64(p.bias_x) + _matvec(p.w, x), p.mult_x, p.shift_x)
    gh = requant(_i64(p.bias_h) + _matvec(p.rw, h), p.mult_h, p.shift_h)
    g = sat(gx + gh, 16)  # exact int64 sum of two int32 values, then sat16: Q3.12
    gi, go, gf, gc = (g[..., k * H : (k + 1) * H] for k in range(4))
    i = sigmoid_q15(gi, GATE_FRAC_BITS)
    o = sigmoid_q15(go, GATE_FRAC_BITS)
    f = sigmoid_q15(gf, GATE_FRAC_BITS)
    cc = tanh_q15(gc, GATE_FRAC_BITS)
    c_new = sat(
        rshift_round(f * c, ACT_FRAC_BITS) + rshift_round(i * cc, 2 * ACT_FRAC_BITS - p.cell_frac),
        16,
    )
    t = tanh_q15(c_new, p.cell_frac)
    h_new = sat(p.out_zp + requant(o * t, p.out_mult, p.out_shift), 8)
    return h_new.astype(np.int8), c_new.astype(np.int16)


def lstm_sequence(p: LstmParams, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run T steps from (h0, c0): x[..., T, I] -> (y int8 [..., T, H], c int16 [..., T, H]).

    y[..., t, :] is h after step t and c[..., t, :] the cell state after step t.
    """
    x = _i64(x)
    if x.ndim < 2:
        raise ValueError(f"lstm x: expected [..., T, I], got shape {x.shape}")
    _check_last("lstm x", x, p.input_size)
    lead, T, H = x.shape[:-2], x.shape[-2], p.hidden_size
    h = np.broadcast_to(_i64(p.h0), lead + (H,))
    c = np.broadcast_to(_i64(p.c0), lead + (H,))
    ys = np.empty(lead + (T, H), dtype=np.int8)
    cs = np.empty(lead + (T, H), dtype=np.int16)
    for t in range(T):
        h, c = lstm_step(p, x[..., t, :], h, c)
        ys[..., t, :] = h
        cs[..., t, :] = c
    return ys, cs


def dense(p: DenseParams, x: np.ndarray) -> np.ndarray:
    """y[..., n] = clamp(out_zp + requant(bias[n] + w[n]·x, mult[n], shift[n]), act_min, act_max).

    out_zp + requant(...) is exact (no int32 wraparound) before the clamp.
    """
    x = _i64(x)
    _check_last("dense x", x, p.in_features)
    acc = _i64(p.bias) + _matvec(p.w, x)
    y = p.out_zp + requant(acc, p.mult, p.shift)
    return np.clip(y, p.act_min, p.act_max).astype(np.int8)


def binary(p: BinaryParams, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise add or mul of two equal-shaped int8 tensors (BinaryParams' docstring)."""
    a, b = _i64(a), _i64(b)
    if a.shape != b.shape:
        raise ValueError(f"binary: operand shapes differ: {a.shape} vs {b.shape}")
    da, db = a - p.a_zp, b - p.b_zp
    if p.op == "add":
        y = p.out_zp + rshift_round(da * p.a_mult + db * p.b_mult, p.shift)
    elif p.op == "mul":
        y = p.out_zp + requant(da * db, p.mult, p.shift)
    else:
        raise ValueError(f"binary: unknown op {p.op!r}")
    return np.clip(y, p.act_min, p.act_max).astype(np.int8)


def lut(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y = table[x + 128] for int8 x and an int8 table of 256 entries."""
    table = np.asarray(table)
    if table.shape != (256,):
        raise ValueError(f"lut: table must have 256 entries, got shape {table.shape}")
    return table.astype(np.int8)[_i64(x) + 128]


def softmax(p: SoftmaxParams, x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (SoftmaxParams' docstring); output scale 1/256, zp -128."""
    x = _i64(x)
    _check_last("softmax x", x, p.depth)
    d = x.max(axis=-1, keepdims=True) - x
    e = _i64(p.exp_table)[d]
    s = e.sum(axis=-1, keepdims=True)
    y = (e * 256 + s // 2) // s - 128
    return np.clip(y, -128, 127).astype(np.int8)


def take(index: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gather along the last axis: x[..., index]."""
    return np.asarray(x)[..., np.asarray(index, dtype=np.int64)]

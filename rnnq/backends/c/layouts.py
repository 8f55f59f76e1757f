"""Offline weight layouts of the matvec variants (an emission detail: params stay row-major).

The arm_dsp variant (templates/c/runtime/rnnq_matvec_arm_dsp.c) reads its int8 weight matrix
[rows][cols] in the "DSP interleaved" layout, of the same size as the row-major one:

- for each block of four rows r .. r + 3 (r = 0, 4, ...; rows // 4 blocks), 4 * cols bytes:
  - for each group of four columns c .. c + 3 (cols // 4 groups), 16 bytes:
    row r columns c .. c + 3, row r + 1 columns c .. c + 3, row r + 2 ..., row r + 3 ...;
  - then the column tail (cols % 4 columns) of row r, of row r + 1, of row r + 2, of row r + 3;
- then the rows past the last full block (rows % 4), row-major.

Every block starts where its first row starts in the row-major layout (r * cols), so a kernel
that passes w + row_start * cols for a block of rows works unchanged, provided that block was
interleaved on its own (`interleave_blocks`).

The x86 variant (rnnq_matvec_x86.c) reads the "rows8" layout, also of the row-major size: for
each block of eight rows, for each pair of columns k, k + 1, the 16 bytes w[r][k], w[r][k + 1],
w[r + 1][k], ..., w[r + 7][k + 1]; then, when cols is odd, the last column of the eight rows;
the rows past the last full block (rows % 8) the same way as a block of fewer rows. Blocks
start at r * cols too.

The arm_dsp_w16 variant (rnnq_matvec_arm_dsp_w16.c) reads int16 weights, pre-widened offline,
in int32 words (`wide_pairs`): twice the flash, ceil(cols / 2) words per row, so its blocks start
at word r * ceil(cols / 2) (rnnq_matvec_rows in C).

The ref and neon variants read row-major weights (`matvec_layout` returns the identity).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from rnnq.ir.params import HI_SHIFT_MIN, GruParams, LstmParams, hi_path


def dsp_interleave(w: np.ndarray) -> np.ndarray:
    """int8 [rows, cols] row-major -> flat int8 [rows * cols] in the DSP interleaved layout."""
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"dsp_interleave expects a 2-D matrix, got shape {w.shape}")
    rows, cols = w.shape
    nb, groups, tail = rows // 4, cols // 4, cols % 4
    full = 4 * nb
    blocks = w[:full].reshape(nb, 4, cols)
    main = blocks[:, :, : 4 * groups].reshape(nb, 4, groups, 4).transpose(0, 2, 1, 3)
    tails = blocks[:, :, 4 * groups :]
    head = np.concatenate([main.reshape(nb, 16 * groups), tails.reshape(nb, 4 * tail)], axis=1)
    return np.concatenate([head.ravel(), w[full:].ravel()]).astype(w.dtype, copy=False)


def dsp_deinterleave(flat: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The inverse of dsp_interleave: flat [rows * cols] -> [rows, cols] row-major."""
    flat = np.asarray(flat).ravel()
    if flat.size != rows * cols:
        raise ValueError(f"{flat.size} values are not a [{rows}, {cols}] matrix")
    nb, groups, tail = rows // 4, cols // 4, cols % 4
    full = 4 * nb
    head = flat[: full * cols].reshape(nb, 4 * cols)
    main = head[:, : 16 * groups].reshape(nb, groups, 4, 4).transpose(0, 2, 1, 3)
    tails = head[:, 16 * groups :].reshape(nb, 4, tail)
    blocks = np.concatenate([main.reshape(nb, 4, 4 * groups), tails], axis=2)
    return np.concatenate([blocks.reshape(full, cols), flat[full * cols :].reshape(rows - full, cols)])


def rows8(w: np.ndarray) -> np.ndarray:
    """int8 [rows, cols] row-major -> flat int8 [rows * cols] in the x86 rows8 layout."""
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"rows8 expects a 2-D matrix, got shape {w.shape}")
    return np.concatenate([_rows8_block(w[r:r + 8]) for r in range(0, w.shape[0], 8)]
                          or [w.ravel()]).astype(w.dtype, copy=False)


def _rows8_block(b: np.ndarray) -> np.ndarray:
    """One block of rows8 (n <= 8 rows): per column pair the n rows' two weights row by row,
    then an odd last column of the n rows."""
    n, cols = b.shape
    pairs = cols // 2
    main = b[:, : 2 * pairs].reshape(n, pairs, 2).transpose(1, 0, 2)
    return np.concatenate([main.ravel(), b[:, 2 * pairs :].T.ravel()])


def wide_pairs(w: np.ndarray) -> np.ndarray:
    """int8 [rows, cols] row-major -> flat int32 [rows * ceil(cols / 2)] in the "wide" layout of
    the arm_dsp_w16 variant: int16 weights of consecutive columns paired in a word (the first
    in the low half, an odd row padded with a zero); per block of four rows, for each group of
    two pairs the four rows' two words, then (an odd number of pairs) the four rows' last pair;
    the rows past the last full block P words each, row-major."""
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"wide_pairs expects a 2-D matrix, got shape {w.shape}")
    rows, cols = w.shape
    pairs = (cols + 1) // 2
    padded = np.zeros((rows, 2 * pairs), np.int64)
    padded[:, :cols] = w
    words = ((padded[:, 0::2] & 0xFFFF) | (padded[:, 1::2] << 16)).astype(np.int32)  # [rows, P]
    nb, groups = rows // 4, pairs // 2
    full = 4 * nb
    blocks = words[:full].reshape(nb, 4, pairs)
    main = blocks[:, :, : 2 * groups].reshape(nb, 4, groups, 2).transpose(0, 2, 1, 3)
    last = blocks[:, :, 2 * groups :].transpose(0, 2, 1)  # [nb, pairs % 2, 4]
    head = np.concatenate([main.reshape(nb, 8 * groups), last.reshape(nb, 4 * (pairs % 2))],
                          axis=1)
    return np.concatenate([head.ravel(), words[full:].ravel()]).astype(np.int32)


def wide_unpairs(flat: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The inverse of wide_pairs: flat int32 words -> int8 [rows, cols] row-major."""
    pairs = (cols + 1) // 2
    flat = np.asarray(flat, np.int64).ravel()
    if flat.size != rows * pairs:
        raise ValueError(f"{flat.size} words are not a [{rows}, {cols}] wide matrix")
    nb, groups = rows // 4, pairs // 2
    full = 4 * nb
    head = flat[: full * pairs].reshape(nb, 4 * pairs)
    main = head[:, : 8 * groups].reshape(nb, groups, 4, 2).transpose(0, 2, 1, 3)
    last = head[:, 8 * groups :].reshape(nb, pairs % 2, 4).transpose(0, 2, 1)
    words = np.concatenate([np.concatenate([main.reshape(nb, 4, 2 * groups), last], axis=2)
                            .reshape(full, pairs), flat[full * pairs :].reshape(rows - full,
                                                                               pairs)])
    lo = ((words & 0xFFFF) ^ 0x8000) - 0x8000
    hi = words >> 16
    out = np.stack([lo, hi], axis=2).reshape(rows, 2 * pairs)[:, :cols]
    return out.astype(np.int8)


#: variant -> its layout of one block of rows (the others read row-major weights); arm_dsp_w16's
#: is int32 words of int16 pairs, the others keep one byte per weight
LAYOUTS = {"arm_dsp": dsp_interleave, "x86": rows8, "arm_dsp_w16": wide_pairs}


def interleave_blocks(w: np.ndarray, splits: Sequence[int] = (), layout=dsp_interleave
                      ) -> np.ndarray:
    """layout (dsp_interleave, rows8) of each row block of w on its own; splits: the rows where a
    block starts (besides 0), i.e. every row_start a kernel passes to rnnq_matvec_* as
    w + row_start * cols."""
    w = np.asarray(w)
    bounds = [0, *sorted({int(s) for s in splits if 0 < s < w.shape[0]}), w.shape[0]]
    parts = [layout(w[a:b]) for a, b in pairwise(bounds)]
    return np.concatenate(parts) if parts else w.ravel()


#: hidden units per block of the unit-major steps (RNNQ_FUSED_UNITS in rnnq_kernels.c)
FUSED_UNITS = 8
#: params fields of a recurrent kernel with one row per gate row (the others are per unit)
_ROW_FIELDS = ("w", "rw", "rw_lo", "bias_x", "bias_h", "mult_x", "shift_x", "mult_h", "shift_h")


def fused(params) -> bool:
    """Whether a recurrent layer has a unit-major step (rnnq_<kind>_step_*_fused): an LSTM or a
    GRU with linear_before_reset 1 on the branch-free path (hi_path), with 8-bit recurrent
    weights (the unit-major steps take no rw_lo)."""
    if np.asarray(getattr(params, "rw_lo", ())).size:
        return False
    if isinstance(params, LstmParams):
        return hi_path(params)
    return isinstance(params, GruParams) and params.linear_before_reset == 1 and hi_path(params)


def unit_major(params):
    """LstmParams / GruParams with the rows of every per-row field in the order the _fused
    steps read, unit by unit (LSTM i_0, o_0, f_0, c_0, i_1, ...; GRU z_0, r_0, n_0, z_1, ...),
    instead of gate by gate."""
    h = int(params.hidden_size)
    gates = np.asarray(params.bias_x).shape[0] // h
    order = np.arange(gates * h).reshape(gates, h).T.ravel()  # new G j + g = old g H + j
    return dataclasses.replace(params, **{f: np.asarray(getattr(params, f))[order]
                                          for f in _ROW_FIELDS
                                          if np.asarray(getattr(params, f)).size})


#: the per-row requantisation fields whose values the unit-major steps read from `rowk` instead
ROWK_FIELDS = ("bias_x", "mult_x", "shift_x", "bias_h", "mult_h", "shift_h")
#: int32 words of `rowk` per gate row (RNNQ_ROWK_WORDS in rnnq_kernels.c)
ROWK_WORDS = 6


def row_constants(params) -> np.ndarray:
    """The `rowk` array of the unit-major steps (rnnq_kernels.h), int32 [rows, ROWK_WORDS], from
    params in the row order they are emitted in (unit_major): per row bias_x, mult_x,
    shift_x - 33, bias_h, mult_h, shift_h - 33 (the steps' rnnq_requant_hi1 takes the shift
    minus HI_SHIFT_MIN). Requires the branch-free path's shifts (HI_SHIFT_MIN .. 62) and
    multipliers in [0, 2^31)."""
    words = []
    for side in ("x", "h"):
        b, m, s = (np.asarray(getattr(params, f"{f}_{side}"), np.int64)
                   for f in ("bias", "mult", "shift"))
        if s.size and (s.min() < HI_SHIFT_MIN or s.max() > 62):
            raise ValueError(f"rowk: shift_{side} outside [{HI_SHIFT_MIN}, 62]")
        if m.size and (m.min() < 0 or m.max() >= 2**31):
            raise ValueError(f"rowk: mult_{side} outside [0, 2^31)")
        words += [b.astype(np.int32), m.astype(np.int32), (s - HI_SHIFT_MIN).astype(np.int32)]
    return np.stack(words, axis=1)


def fused_emitted(params):
    """(params, rowk) as a layer on the unit-major step is emitted: unit_major(params) with the
    ROWK_FIELDS arrays empty (NULL in C: the _fused steps do not read them) and its rowk
    (row_constants). The params are for emission only (the simulator takes the original)."""
    um = unit_major(params)
    empty = np.zeros(0, np.int32)
    return dataclasses.replace(um, **dict.fromkeys(ROWK_FIELDS, empty)), row_constants(um)


def matvec_blocks(kind: str, params) -> dict[str, list[int]]:
    """The matvec weight fields of a kernel's params and the row_starts rnnq_kernels.c passes for
    each (rnnq_*_step_s8 / rnnq_dense_s8): field -> splits for interleave_blocks. kind
    "lstm_fused" / "gru_fused": the unit-major steps, a block of FUSED_UNITS units at a time."""
    if kind in ("lstm_fused", "gru_fused"):
        gates = 4 if kind == "lstm_fused" else 3
        rows = gates * FUSED_UNITS
        splits = list(range(rows, gates * int(params.hidden_size), rows))
        return {"w": splits, "rw": splits}
    if kind in ("lstm", "rnn"):
        return {"w": [], "rw": [], "rw_lo": []}
    if kind == "gru":
        # linear_before_reset 0: rw rows [0, 2H) with the old h, rows [2H, 3H) with r * h.
        h = int(params.hidden_size)
        split = [] if params.linear_before_reset else [2 * h]
        return {"w": [], "rw": split, "rw_lo": split}
    if kind in ("dense", "matvec"):  # matvec: one rnnq_matvec_* call on the whole of w
        return {"w": []}
    return {}


def matvec_layout(matvec: str, kind: str, params, name: str, value: np.ndarray) -> np.ndarray:
    """The array to emit for params field `name` of a `kind` kernel under the matvec variant."""
    if matvec not in LAYOUTS or value.ndim != 2 or value.dtype != np.int8:
        return value
    splits = matvec_blocks(kind, params).get(name)
    if splits is None:
        return value
    return interleave_blocks(value, splits, LAYOUTS[matvec])

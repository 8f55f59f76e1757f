"""Bit-exact integer kernels of the simulator, built only from rnnq.numerics.

These are the reference the C kernels in templates/c/runtime/rnnq_kernels.c are tested against
(np.array_equal). All arithmetic is int64 numpy on integer inputs; the only floats are the dot
products _matvec hands to float32/float64 BLAS where a bound proves every partial sum exact.
Every kernel is vectorised over arbitrary leading batch dimensions; a recurrent sequence
computes its input products (the part of each step that depends on x alone) for blocks of
steps at once and runs the rest step by step.

Sums are exact here (int64). The C kernels keep dot-product accumulators (bias + w·x) in int32,
so the compiler must guarantee |bias| + K * 128 * 128 < 2^31 for each row; everything after the
accumulator (the sum of two requants, out_zp + requant, ...) is exact in C as well.
"""

from __future__ import annotations

import numpy as np

from rnnq.ir.params import (
    BinaryParams,
    DenseParams,
    EmbedParams,
    GruParams,
    LstmParams,
    MagnitudeParams,
    MeanTimeParams,
    RequantParams,
    RnnParams,
    SoftmaxParams,
)
from rnnq.numerics import (
    ACT_FRAC_BITS,
    GATE_FRAC_BITS,
    INT8_MAX,
    INT16_MAX,
    INT32_MAX,
    PEEP_SHIFT,
    div_round,
    isqrt_round,
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


#: Integers of magnitude below 2^53 are exact in float64 (below 2^24 in float32), and so is every
#: sum of them that stays below that bound: a dot product of K terms, each |w * x| <= max|w| *
#: max|x|, has every partial sum (in any order of summation: BLAS's blocking, FMA) an integer
#: of magnitude <= K * max|w| * max|x|, so it is exact when that is below the bound.
FLOAT64_EXACT = 2**53
FLOAT32_EXACT = 2**24
_WEIGHTS_F: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, int]] = {}
#: |x| bound of an integer operand known from its dtype alone (no scan of the values)
_DTYPE_BOUND = {np.dtype(np.int8): 128, np.dtype(np.int16): 32768}


def _as_float(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(w transposed as float32 and as float64, max |w|), made once per weight array (the
    cache holds the array, so its id is not reused while the entry lives)."""
    hit = _WEIGHTS_F.get(id(w))
    if hit is None or hit[0] is not w:
        if len(_WEIGHTS_F) > 4096:
            _WEIGHTS_F.clear()
        wf = np.ascontiguousarray(np.asarray(w, np.float64).T)
        hit = (w, wf.astype(np.float32), wf, int(np.max(np.abs(wf), initial=0)))
        _WEIGHTS_F[id(w)] = hit
    return hit[1], hit[2], hit[3]


def _matvec(w: np.ndarray, x: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
    """sum_k w[r, k] * x[..., k] for the rows r of w, exact: x[..., K] -> [..., R] int64.
    Through float32 or float64 BLAS where FLOAT32_EXACT / FLOAT64_EXACT proves it exact
    (float32: int8 weights and int8 x up to K = 1040; float64: always for int8 weights and
    int16 operands, K would have to exceed 2^31), else in int64. max |x| comes from x's dtype
    when it is int8/int16, else from its values."""
    w32, w64, wmax = _as_float(w)
    xmax = _DTYPE_BOUND.get(x.dtype)
    if xmax is None:
        xmax = int(np.max(np.abs(x), initial=0))
    bound = x.shape[-1] * wmax * xmax
    if bound < FLOAT32_EXACT:
        return (x.astype(np.float32) @ w32[:, rows]).astype(np.int64)
    if bound < FLOAT64_EXACT:
        return (x.astype(np.float64) @ w64[:, rows]).astype(np.int64)
    return _i64(x) @ _i64(w)[rows].T


def _recurrent(p: LstmParams | GruParams | RnnParams, v: np.ndarray,
               rows: slice = slice(None)) -> np.ndarray:
    """rw·v for the rows of a recurrent layer's rw, and with 16-bit recurrent weights (rw_lo
    not empty) + rshift_round(rw_lo·v, 8): [..., H] -> [..., R] int64 (rnnq.ir.params)."""
    a = _matvec(p.rw, v, rows)
    if p.rw_lo.size:
        a = a + rshift_round(_matvec(p.rw_lo, v, rows), 8)
    return a


def _clip_gate(g: np.ndarray, clip: int) -> np.ndarray:
    """Clamp gate pre-activations to [-clip, clip] when clip > 0 (0 = no clip)."""
    return np.clip(g, -clip, clip) if clip > 0 else g


def _gate_act(p, v: np.ndarray) -> np.ndarray:
    """The gate activation of LstmParams / GruParams (Q3.12 -> Q0.15): sigmoid_q15 (gate_act 0)
    or the hard sigmoid clamp(rshift_round(v * hs_mult, hs_shift) + hs_offset, 0, 32767)."""
    if p.gate_act == 0:
        return sigmoid_q15(v, GATE_FRAC_BITS)
    if p.gate_act == 1:
        y = rshift_round(_i64(v) * int(p.hs_mult), int(p.hs_shift)) + int(p.hs_offset)
        return np.clip(y, 0, INT16_MAX)
    raise ValueError(f"unknown gate_act {p.gate_act!r}")


def _initial_state(name: str, default, override, lead: tuple, n: int) -> np.ndarray:
    """Initial state broadcast to lead + (n,): the params' default or a per-row override."""
    s = _i64(default if override is None else override)
    _check_last(name, s, n)
    return np.broadcast_to(s, lead + (n,))


def _seq_shape(name: str, x: np.ndarray, n_in: int) -> tuple[tuple, int]:
    if x.ndim < 2:
        raise ValueError(f"{name} x: expected [..., T, I], got shape {x.shape}")
    _check_last(f"{name} x", x, n_in)
    return x.shape[:-2], x.shape[-2]


def lstm_step(
    p: LstmParams, x: np.ndarray, h: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step as defined in LstmParams' docstring: (x[..., I], h[..., H], c[..., H]) ->
    (h int8 (int16 with state_bits 16), c int32). All four gates use the old h; ONNX gate order
    i, o, f, c.

    Options: hard-sigmoid gates (gate_act 1), clip, input_forget (coupled f = 1 - i) and
    peepholes (p non-empty: i and f see the old c, o sees the new c)."""
    x, h, c = np.asarray(x), np.asarray(h), np.asarray(c)
    _check_last("lstm x", x, p.input_size)
    _check_last("lstm h", h, p.hidden_size)
    _check_last("lstm c", c, p.hidden_size)
    return _lstm_cell(p, _input_part(p, x), h, c)


def _input_part(p: LstmParams | GruParams | RnnParams, x: np.ndarray) -> np.ndarray:
    """requant(bias_x + W·x, mult_x, shift_x): the part of a recurrent step's gates that
    depends on x alone (so a sequence computes it for many steps in one product)."""
    return requant(_i64(p.bias_x) + _matvec(p.w, x), p.mult_x, p.shift_x)


def _lstm_cell(p: LstmParams, gx: np.ndarray, h: np.ndarray, c: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """lstm_step after its input part gx = _input_part(p, x)."""
    H = p.hidden_size
    gh = requant(_i64(p.bias_h) + _recurrent(p, h), p.mult_h, p.shift_h)
    c = _i64(c)
    g = sat(gx + gh, 16)  # exact int64 sum of two int32 values, then sat16: Q3.12
    gi, go, gf, gc = (g[..., k * H : (k + 1) * H] for k in range(4))
    peep = np.asarray(p.p).size > 0
    if peep:
        pw = _i64(p.p)
        pm, ps = [int(v) for v in p.p_mult], [int(v) for v in p.p_shift]
        c16 = rshift_round(c, PEEP_SHIFT)
        gi = sat(gi + requant(pw[:H] * c16, pm[0], ps[0]), 16)
        gf = sat(gf + requant(pw[2 * H :] * c16, pm[2], ps[2]), 16)
    i = _gate_act(p, _clip_gate(gi, p.clip))
    if p.input_forget:
        f = np.minimum(32768 - i, INT16_MAX)
    else:
        f = _gate_act(p, _clip_gate(gf, p.clip))
    cc = tanh_q15(_clip_gate(gc, p.clip), GATE_FRAC_BITS)
    c_new = sat(
        rshift_round(f * c, ACT_FRAC_BITS) + rshift_round(i * cc, 2 * ACT_FRAC_BITS - p.cell_frac),
        32,
    )
    if peep:
        go = sat(go + requant(pw[H : 2 * H] * rshift_round(c_new, PEEP_SHIFT), pm[1], ps[1]), 16)
    o = _gate_act(p, _clip_gate(go, p.clip))
    t = tanh_q15(c_new, p.cell_frac)
    h_new = sat(p.out_zp + requant(o * t, p.out_mult, p.out_shift), p.state_bits)
    return h_new.astype(np.int16 if p.state_bits == 16 else np.int8), c_new.astype(np.int32)


def lstm_sequence(
    p: LstmParams,
    x: np.ndarray,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run T steps from (h0, c0): x[..., T, I] -> (y int8 [..., T, H], c int32 [..., T, H]).

    y[..., t, :] is h after step t and c[..., t, :] the cell state after step t. The initial
    state is p.h0 / p.c0 unless h0 / c0 ([H] or one row per batch element, [..., H]) are given.
    """
    x = np.asarray(x)
    lead, T = _seq_shape("lstm", x, p.input_size)
    H = p.hidden_size
    h = _initial_state("lstm h0", p.h0, h0, lead, H)
    c = _initial_state("lstm c0", p.c0, c0, lead, H)
    ys = np.empty(lead + (T, H), dtype=np.int16 if p.state_bits == 16 else np.int8)
    cs = np.empty(lead + (T, H), dtype=np.int32)
    for t, gx in _input_parts(p, x):
        h, c = _lstm_cell(p, gx, h, c)
        ys[..., t, :] = h
        cs[..., t, :] = c
    return ys, cs


#: elements of the input parts a sequence computes at once (int64: 8 MB; larger blocks measured
#: no faster: the elementwise work is memory-bound)
_BLOCK_ELEMENTS = 1 << 20


def _input_parts(p: LstmParams | GruParams | RnnParams, x: np.ndarray):
    """(t, _input_part(p, x[..., t, :])) for t = 0..T-1, computed for blocks of steps."""
    T = x.shape[-2]
    rows = np.asarray(p.bias_x).shape[-1]
    per_step = max(1, int(np.prod(x.shape[:-2], dtype=np.int64)) * rows)
    block = max(1, min(T, _BLOCK_ELEMENTS // per_step))
    for t0 in range(0, T, block):
        gx = _input_part(p, x[..., t0 : t0 + block, :])
        for k in range(gx.shape[-2]):
            yield t0 + k, gx[..., k, :]


def gru_step(p: GruParams, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One GRU step as defined in GruParams' docstring: (x[..., I], h[..., H]) -> h int8
    (int16 with state_bits 16).

    Rows are ONNX-ordered blocks z, r, h; every row uses the old h."""
    x, h = np.asarray(x), np.asarray(h)
    _check_last("gru x", x, p.input_size)
    _check_last("gru h", h, p.hidden_size)
    return _gru_cell(p, _input_part(p, x), h)  # ax: [..., 3H] int32


def _gru_cell(p: GruParams, ax: np.ndarray, h: np.ndarray) -> np.ndarray:
    """gru_step after its input part ax = _input_part(p, x)."""
    H = p.hidden_size
    bh, mh, sh = _i64(p.bias_h), _i64(p.mult_h), _i64(p.shift_h)
    zr = 2 * H
    ah = requant(bh[:zr] + _recurrent(p, h, slice(0, zr)), mh[:zr], sh[:zr])
    g = _clip_gate(sat(ax[..., :zr] + ah, 16), p.clip)
    a = _gate_act(p, g)
    z, r = a[..., :H], a[..., H:]
    hc = _i64(h) - p.out_zp  # the state without its zero point
    if p.linear_before_reset == 1:
        ahc = sat(requant(bh[zr:] + _recurrent(p, h, slice(zr, None)), mh[zr:], sh[zr:]), 16)
        pre = sat(ax[..., zr:] + rshift_round(r * ahc, ACT_FRAC_BITS), 16)
    elif p.linear_before_reset == 0:
        # int8 h: |rh| <= 32640; int16 h (zero point 0): |rh| <= 32767
        rh = rshift_round(r * hc, 15 if p.state_bits == 16 else 8)
        pre = sat(ax[..., zr:] + requant(bh[zr:] + _recurrent(p, rh, slice(zr, None)),
                                         mh[zr:], sh[zr:]), 16)
    else:
        raise ValueError(f"gru: linear_before_reset must be 0 or 1, got {p.linear_before_reset}")
    n = tanh_q15(_clip_gate(pre, p.clip), GATE_FRAC_BITS)
    h_new = sat(
        p.out_zp
        + requant((32768 - z) * n, p.out_mult, p.out_shift)
        + rshift_round(z * hc, ACT_FRAC_BITS),
        p.state_bits,
    )
    return h_new.astype(np.int16 if p.state_bits == 16 else np.int8)


def gru_sequence(p: GruParams, x: np.ndarray, h0: np.ndarray | None = None) -> np.ndarray:
    """Run T GRU steps from h0 (p.h0 unless given, [H] or [..., H]): x[..., T, I] ->
    y int8 (state_bits 16: int16) [..., T, H], y[..., t, :] the state after step t."""
    x = np.asarray(x)
    lead, T = _seq_shape("gru", x, p.input_size)
    H = p.hidden_size
    h = _initial_state("gru h0", p.h0, h0, lead, H)
    ys = np.empty(lead + (T, H), dtype=np.int16 if p.state_bits == 16 else np.int8)
    for t, ax in _input_parts(p, x):
        h = _gru_cell(p, ax, h)
        ys[..., t, :] = h
    return ys


def rnn_step(p: RnnParams, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One vanilla RNN step as defined in RnnParams' docstring: (x[..., I], h[..., H]) -> h int8
    (int16 with state_bits 16).

    act 0 tanh, 1 relu, 2 sigmoid."""
    x, h = np.asarray(x), np.asarray(h)
    _check_last("rnn x", x, p.input_size)
    _check_last("rnn h", h, p.hidden_size)
    return _rnn_cell(p, _input_part(p, x), h)


def _rnn_cell(p: RnnParams, vx: np.ndarray, h: np.ndarray) -> np.ndarray:
    """rnn_step after its input part vx = _input_part(p, x)."""
    v = vx + requant(_i64(p.bias_h) + _recurrent(p, h), p.mult_h, p.shift_h)  # exact int64 sum
    wide = p.state_bits == 16
    top = INT16_MAX if wide else INT8_MAX
    if p.act == 1:
        hi = min(top, p.out_zp + p.clip) if p.clip > 0 else top
        h_new = np.clip(p.out_zp + v, p.out_zp, hi)
    elif p.act in (0, 2):
        g = _clip_gate(sat(v, 16), p.clip)
        fn = tanh_q15 if p.act == 0 else sigmoid_q15
        t = fn(g, GATE_FRAC_BITS)
        h_new = sat(p.out_zp + requant(t << ACT_FRAC_BITS if wide else t, p.out_mult,
                                       p.out_shift), p.state_bits)
    else:
        raise ValueError(f"rnn: unknown act {p.act!r}")
    return h_new.astype(np.int16 if wide else np.int8)


def rnn_sequence(p: RnnParams, x: np.ndarray, h0: np.ndarray | None = None) -> np.ndarray:
    """Run T RNN steps from h0 (p.h0 unless given, [H] or [..., H]): x[..., T, I] ->
    y int8 (state_bits 16: int16) [..., T, H], y[..., t, :] the state after step t."""
    x = np.asarray(x)
    lead, T = _seq_shape("rnn", x, p.input_size)
    H = p.hidden_size
    h = _initial_state("rnn h0", p.h0, h0, lead, H)
    ys = np.empty(lead + (T, H), dtype=np.int16 if p.state_bits == 16 else np.int8)
    for t, vx in _input_parts(p, x):
        h = _rnn_cell(p, vx, h)
        ys[..., t, :] = h
    return ys


def requant_s8(p: RequantParams, x: np.ndarray) -> np.ndarray:
    """int16 (or int8) -> int8: y = sat8(out_zp + requant(x - in_zp, mult, shift))."""
    y = p.out_zp + requant(_i64(x) - p.in_zp, p.mult, p.shift)
    return sat(y, 8).astype(np.int8)


def requant_s16(p: RequantParams, x: np.ndarray) -> np.ndarray:
    """int32 (the LSTM cell) -> int16, zero points 0: y = sat16(requant(x, mult, shift))."""
    return sat(requant(_i64(x), p.mult, p.shift), 16).astype(np.int16)


def _requant_wide(a: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """floor((a * mult + 2^(shift-1)) / 2^shift) for int64 |a| <= 2^62, exact, without the
    int64 overflow of a * mult: a = hi * 2^31 + lo with 0 <= lo < 2^31 (the C's split).
    Exact whenever the exact result is below 2^60 in magnitude; beyond, +-2^62 may stand for
    it (shift < 31 only): divided by a count below 2^31 either is far beyond the int8 range,
    so the mean's output is the exact one."""
    hi, lo = a >> 31, a & INT32_MAX
    b = lo * mult + (1 << (shift - 1))  # < 2^62 + 2^61
    t = hi * mult
    if shift >= 31:
        return (t + (b >> 31)) >> (shift - 31)
    k = 31 - shift
    lim = 1 << (62 - k)
    big = np.abs(t) >= lim
    return np.where(big, np.sign(t) << 62, (np.clip(t, -lim, lim) << k) + (b >> shift))


def mean_time(p: MeanTimeParams, x: np.ndarray, acc0: np.ndarray | None = None,
              n0: int = 0) -> np.ndarray:
    """Running mean over time: x int8 [..., T, size] -> y int8 [..., T, size], y at step t the
    mean of the steps so far, from a stream already n0 steps long whose sums are acc0 ([size]
    or [..., size]; default 0, as after reset).

    Per step, with n = min(steps so far, INT32_MAX) (the C's saturating step count):
      sum[k] += x[k] - in_zp, exactly (int64; |sum| <= 255 n < 2^40);
      y[k] = sat8(out_zp + div_round(round_half_up(sum[k] * mult / 2^shift), n)), exactly
    (no int32 wrap nor saturation in between: the C splits the products, _requant_wide).
    Once the count is saturated (a stream of 2^31 - 1 steps and more), each step first takes
    one mean out, sum -= div_round(sum, n): the sum keeps n values' worth and y stays a mean
    (over a window of about 2^31 steps) instead of drifting."""
    x = _i64(x)
    lead, T = _seq_shape("mean_time", x, p.size)
    acc = np.zeros(lead + (p.size,), np.int64) if acc0 is None else _i64(acc0)
    acc = np.broadcast_to(acc, lead + (p.size,))
    n = np.minimum(n0 + np.arange(1, T + 1, dtype=np.int64), INT32_MAX)
    free = int(np.sum(n < INT32_MAX))  # steps before the count saturates: one cumsum
    sums = np.empty(lead + (T, p.size), np.int64)
    sums[..., :free, :] = acc[..., None, :] + np.cumsum(x[..., :free, :] - p.in_zp, axis=-2)
    a = sums[..., free - 1, :] if free else acc
    for t in range(free, T):
        a = a - div_round(a, INT32_MAX) + (x[..., t, :] - p.in_zp)
        sums[..., t, :] = a
    v = _requant_wide(sums, int(p.mult), int(p.shift))
    y = p.out_zp + div_round(v, n[:, None])
    return sat(y, 8).astype(np.int8)


def embed(p: EmbedParams, ids: np.ndarray) -> np.ndarray:
    """Embedding lookup: ids[...] -> int8 [..., dim]; negative ids count from the end (as ONNX
    Gather), then ids are clamped to the table."""
    table = np.asarray(p.table).astype(np.int8)
    if table.shape != (p.vocab, p.dim):
        raise ValueError(f"embed: table shape {table.shape} != ({p.vocab}, {p.dim})")
    ids = _i64(ids)
    return table[np.clip(np.where(ids < 0, ids + p.vocab, ids), 0, p.vocab - 1)]


def dense(p: DenseParams, x: np.ndarray) -> np.ndarray:
    """y[..., n] = clamp(out_zp + requant(bias[n] + w[n]·x, mult[n], shift[n]), act_min, act_max).

    out_zp + requant(...) is exact (no int32 wraparound) before the clamp.
    """
    x = _i64(x)
    _check_last("dense x", x, p.in_features)
    acc = _i64(p.bias) + _matvec(p.w, x)
    y = p.out_zp + requant(acc, p.mult, p.shift)
    return np.clip(y, p.act_min, p.act_max).astype(_out_type(p))


def _out_type(p) -> type:
    """int16 when the output's clamp range is wider than int8 (a 16-bit front end)."""
    return np.int16 if p.act_max > INT8_MAX or p.act_min < -INT8_MAX - 1 else np.int8


def magnitude(p: MagnitudeParams, *xs: np.ndarray) -> np.ndarray:
    """sqrt of the sum of the operands' squares (MagnitudeParams' docstring)."""
    if not 1 <= len(xs) <= 3:
        raise ValueError(f"magnitude: 1-3 operands, got {len(xs)}")
    ssq = sum(np.square(_i64(x) - p.in_zp) for x in xs)
    y = p.out_zp + requant(isqrt_round(ssq), p.mult, p.shift)
    return np.clip(y, p.act_min, p.act_max).astype(_out_type(p))


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


def take(index: np.ndarray, x: np.ndarray, fill: int | None = None) -> np.ndarray:
    """Gather along the last axis: x[..., index]; with `fill`, index -1 gives fill (padding)."""
    index = np.asarray(index, dtype=np.int64)
    y = np.asarray(x)[..., index]
    return y if fill is None else np.where(index < 0, np.asarray(fill, y.dtype), y)

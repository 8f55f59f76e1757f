"""Float sanity of the integer recurrent kernels: quantise a random float GRU / RNN / LSTM with a
tiny test-local quantiser, run the integer kernel (rnnq/sim/kernels.py, and C for one case) and
the float recurrence (ONNX semantics, float64) on the same dequantised inputs, and require the
dequantised integer state to track the float state within a loose bound.

Exact C-vs-Python tests cannot notice a formula that is consistently wrong on both sides (a
missing zero point, a swapped gate, a wrong shift); this test does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from rnnq import numerics as nq
from rnnq.ir.params import GruParams, LstmParams, RnnParams
from rnnq.sim import kernels as sim

Q12 = 4096.0  # Q3.12 gate pre-activations


@dataclass
class QTensor:
    """Affine int8 quantisation of a real range [lo, hi]."""

    scale: float
    zp: int

    @classmethod
    def of_range(cls, lo: float, hi: float) -> QTensor:
        scale = (hi - lo) / 255.0
        return cls(scale, int(np.clip(round(-128 - lo / scale), -128, 127)))

    def q(self, v: np.ndarray) -> np.ndarray:
        return np.clip(np.round(v / self.scale) + self.zp, -128, 127).astype(np.int8)

    def dq(self, v: np.ndarray) -> np.ndarray:
        return (v.astype(np.float64) - self.zp) * self.scale


def _qm(factors) -> tuple[np.ndarray, np.ndarray]:
    pairs = [nq.quantize_multiplier(float(f)) for f in np.ravel(factors)]
    return np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32)


def _qw(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8 weights: (w_q, scale per row)."""
    s = np.abs(w).max(axis=1) / 127.0
    s = np.where(s > 0, s, 1.0)
    return np.round(w / s[:, None]).astype(np.int8), s


def _rows(w, b, s_in: float, zp_in: int, out_unit: float):
    """(w_q, bias, mult, shift) so that requant(bias + w_q . (x_q)) = (b + w . x) / out_unit for
    x = (x_q - zp_in) * s_in: the zero point is folded into the bias."""
    w_q, s_w = _qw(w)
    acc_scale = s_w * s_in
    bias = np.round(b / acc_scale) - zp_in * w_q.astype(np.int64).sum(axis=1)
    m, s = _qm(acc_scale / out_unit)
    return w_q, bias.astype(np.int32), m, s


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _hard_sigmoid(v, alpha, beta):
    return np.clip(alpha * v + beta, 0.0, 1.0)


def _float_weights(rng, rows: int, I: int, H: int):
    W = rng.uniform(-1, 1, (rows, I)) * 1.5 / np.sqrt(I)
    R = rng.uniform(-1, 1, (rows, H)) * 1.2 / np.sqrt(H)
    return W, R, rng.uniform(-0.5, 0.5, rows), rng.uniform(-0.5, 0.5, rows)


def _gate_fields(gate: str, alpha: float, beta: float, clip: float) -> dict:
    f = {}
    if gate == "hard":
        m, s = nq.quantize_multiplier(alpha * 8.0)  # alpha per real unit = alpha * 8 per Q3.12
        f.update(gate_act=1, hs_mult=m, hs_shift=s, hs_offset=round(beta * 32768))
    if clip:
        f["clip"] = round(clip * Q12)
    return f


X_RANGE = (-1.0, 1.5)
ALPHA, BETA = 0.3, 0.45  # ONNX HardSigmoid (defaults 0.2, 0.5 sit too close to sigmoid)


def _inputs(rng, B: int, T: int, I: int):
    qx = QTensor.of_range(*X_RANGE)
    x_q = qx.q(rng.uniform(*X_RANGE, (B, T, I)))
    return qx, x_q, qx.dq(x_q)


# ---- GRU ---------------------------------------------------------------------------------


def _quantise_gru(rng, I, H, lbr, gate, clip, qx, qh):
    W, R, Wb, Rb = _float_weights(rng, 3 * H, I, H)
    w, bx, mx, sx = _rows(W, Wb, qx.scale, qx.zp, 1 / Q12)
    rw, bh, mh, sh = _rows(R, Rb, qh.scale, qh.zp, 1 / Q12)
    if not lbr:
        # Candidate rows see rh = r * (h - zp) / 2^8, real value rh * s_h / 128 (no zero point).
        _, bh[2 * H :], mh[2 * H :], sh[2 * H :] = _rows(
            R[2 * H :], Rb[2 * H :], qh.scale / 128, 0, 1 / Q12
        )
    om, osh = nq.quantize_multiplier(2.0**-30 / qh.scale)
    h0 = rng.uniform(-0.5, 0.5, H)
    p = GruParams(
        input_size=I,
        hidden_size=H,
        linear_before_reset=lbr,
        w=w,
        rw=rw,
        bias_x=bx,
        bias_h=bh,
        mult_x=mx,
        shift_x=sx,
        mult_h=mh,
        shift_h=sh,
        out_mult=om,
        out_shift=osh,
        out_zp=qh.zp,
        h0=qh.q(h0),
        **_gate_fields(gate, ALPHA, BETA, clip),
    )
    return p, (W, R, Wb, Rb)


def _float_gru(W, R, Wb, Rb, x, h, lbr, gate, clip):
    H = R.shape[1]

    def pre(v):
        return np.clip(v, -clip, clip) if clip else v

    def act(v):
        return _hard_sigmoid(v, ALPHA, BETA) if gate == "hard" else _sigmoid(v)

    ys = []
    for t in range(x.shape[-2]):
        gx = x[..., t, :] @ W.T + Wb
        zr = act(pre(gx[..., : 2 * H] + h @ R[: 2 * H].T + Rb[: 2 * H]))
        z, r = zr[..., :H], zr[..., H:]
        if lbr:
            n = np.tanh(pre(gx[..., 2 * H :] + r * (h @ R[2 * H :].T + Rb[2 * H :])))
        else:
            n = np.tanh(pre(gx[..., 2 * H :] + (r * h) @ R[2 * H :].T + Rb[2 * H :]))
        h = (1 - z) * n + z * h
        ys.append(h)
    return np.stack(ys, axis=-2)


#: Allowed max |integer - float| of h, in LSB of h, over 25 steps (measured: about 2).
BOUND_LSB = 5.0


def _check_tracks(label, y_int, y_float, scale, alternatives=()):
    """y_int (dequantised) within BOUND_LSB of y_float, and farther than that from the float
    model with any one option flipped (so the option demonstrably matters)."""
    err = np.abs(y_int - y_float).max() / scale
    print(f"\n{label}: max |h error| {err:.2f} LSB", end="")
    assert err < BOUND_LSB, (label, err)
    assert np.abs(y_float - y_float.mean()).max() > 0.1  # the state moves: not vacuous
    for name, y_alt in alternatives:
        alt = np.abs(y_int - y_alt).max() / scale
        print(f", vs without {name} {alt:.1f} LSB", end="")
        assert alt > BOUND_LSB, (label, name, alt)


@pytest.mark.parametrize("lbr", [0, 1])
@pytest.mark.parametrize("gate, clip", [("sigmoid", 0.0), ("hard", 0.0), ("sigmoid", 0.8)])
def test_gru_tracks_float(kernels_c, lbr, gate, clip):
    rng = np.random.default_rng(100 + lbr)
    I, H, T, B = 6, 10, 25, 4
    qx, x_q, x = _inputs(rng, B, T, I)
    qh = QTensor.of_range(-1.0, 1.2)  # |h| <= 1; a non-zero zero point on purpose
    p, fw = _quantise_gru(rng, I, H, lbr, gate, clip, qx, qh)
    y_q = sim.gru_sequence(p, x_q)
    h0 = qh.dq(p.h0)
    alts = [("linear_before_reset", _float_gru(*fw, x, h0, 1 - lbr, gate, clip))]
    if gate == "hard":
        alts.append(("hard sigmoid", _float_gru(*fw, x, h0, lbr, "sigmoid", clip)))
    if clip:
        alts.append(("clip", _float_gru(*fw, x, h0, lbr, gate, 0.0)))
    y = _float_gru(*fw, x, h0, lbr, gate, clip)
    _check_tracks(f"gru lbr={lbr} {gate} clip={clip}", qh.dq(y_q), y, qh.scale, alts)
    assert np.array_equal(kernels_c.gru_sequence(p, x_q), y_q)


# ---- vanilla RNN -------------------------------------------------------------------------


def _float_rnn(W, R, Wb, Rb, x, h, act, clip):
    fn = [np.tanh, lambda u: np.maximum(u, 0.0), _sigmoid][act]
    ys = []
    for t in range(x.shape[-2]):
        v = x[..., t, :] @ W.T + Wb + h @ R.T + Rb
        h = fn(np.clip(v, -clip, clip) if clip else v)
        ys.append(h)
    return np.stack(ys, axis=-2)


@pytest.mark.parametrize("act, clip", [(0, 0.0), (0, 0.5), (1, 0.0), (1, 0.6), (2, 0.0), (2, 0.5)])
def test_rnn_tracks_float(kernels_c, act, clip):
    rng = np.random.default_rng(200 + act)
    I, H, T, B = 6, 10, 25, 4
    qx, x_q, x = _inputs(rng, B, T, I)
    W, R, Wb, Rb = _float_weights(rng, H, I, H)
    R *= 0.6 if act == 1 else 1.0  # a contracting relu recurrence
    qh = {0: QTensor.of_range(-1.0, 1.2), 1: QTensor.of_range(0.0, 3.0)}.get(act)
    qh = qh or QTensor.of_range(0.0, 1.0)
    unit = qh.scale if act == 1 else 1 / Q12  # relu: straight to h units
    w, bx, mx, sx = _rows(W, Wb, qx.scale, qx.zp, unit)
    rw, bh, mh, sh = _rows(R, Rb, qh.scale, qh.zp, unit)
    om, osh = nq.quantize_multiplier(2.0**-15 / qh.scale) if act != 1 else (0, 1)
    h0 = qh.q(rng.uniform(0.0, 0.5, H))
    p = RnnParams(
        input_size=I,
        hidden_size=H,
        act=act,
        w=w,
        rw=rw,
        bias_x=bx,
        bias_h=bh,
        mult_x=mx,
        shift_x=sx,
        mult_h=mh,
        shift_h=sh,
        out_mult=om,
        out_shift=osh,
        out_zp=qh.zp,
        h0=h0,
        clip=(round(clip / qh.scale) if act == 1 else round(clip * Q12)) if clip else 0,
    )
    y_q = sim.rnn_sequence(p, x_q)
    fw = (W, R, Wb, Rb, x, qh.dq(h0))
    alts = [("clip", _float_rnn(*fw, act, 0.0))] if clip else []
    y = _float_rnn(*fw, act, clip)
    _check_tracks(f"rnn act={act} clip={clip}", qh.dq(y_q), y, qh.scale, alts)
    assert np.array_equal(kernels_c.rnn_sequence(p, x_q), y_q)


# ---- LSTM with the new options -----------------------------------------------------------


def _float_lstm(W, R, Wb, Rb, P, x, h, c, gate, clip, input_forget, peep):
    H = R.shape[1]

    def pre(v):
        return np.clip(v, -clip, clip) if clip else v

    def act(v):
        return _hard_sigmoid(v, ALPHA, BETA) if gate == "hard" else _sigmoid(v)

    Pi, Po, Pf = (P[k * H : (k + 1) * H] if peep else 0.0 for k in range(3))
    ys, cs = [], []
    for t in range(x.shape[-2]):
        g = x[..., t, :] @ W.T + Wb + h @ R.T + Rb
        gi, go, gf, gc = (g[..., k * H : (k + 1) * H] for k in range(4))
        i = act(pre(gi + Pi * c))
        f = 1.0 - i if input_forget else act(pre(gf + Pf * c))
        c = f * c + i * np.tanh(pre(gc))
        o = act(pre(go + Po * c))
        h = o * np.tanh(c)
        ys.append(h)
        cs.append(c)
    return np.stack(ys, axis=-2), np.stack(cs, axis=-2)


@pytest.mark.parametrize(
    "gate, clip, input_forget, peep",
    [
        ("sigmoid", 0.0, False, True),
        ("hard", 0.0, False, False),
        ("sigmoid", 0.5, False, False),
        ("sigmoid", 0.0, True, False),
        ("hard", 1.0, True, True),
    ],
)
def test_lstm_options_track_float(kernels_c, gate, clip, input_forget, peep):
    rng = np.random.default_rng(300)
    I, H, T, B, cf = 6, 10, 25, 4, 27  # the int32 cell: range +-16
    qx, x_q, x = _inputs(rng, B, T, I)
    qh = QTensor.of_range(-1.0, 1.2)
    W, R, Wb, Rb = _float_weights(rng, 4 * H, I, H)
    w, bx, mx, sx = _rows(W, Wb, qx.scale, qx.zp, 1 / Q12)
    rw, bh, mh, sh = _rows(R, Rb, qh.scale, qh.zp, 1 / Q12)
    om, osh = nq.quantize_multiplier(2.0**-30 / qh.scale)
    P = rng.uniform(-1.0, 1.0, 3 * H)
    extra = _gate_fields(gate, ALPHA, BETA, clip)
    if input_forget:
        extra["input_forget"] = 1
    if peep:
        # p_k * c16: int16 peephole (one scale for all three) times the cell's top 16 bits
        # (Q.(cf - 16)).
        s_p = np.abs(P).max() / 32767
        pm, ps = _qm([s_p * 2.0 ** (16 - cf) * Q12] * 3)
        extra.update(p=np.round(P / s_p).astype(np.int16), p_mult=pm, p_shift=ps)
    p = LstmParams(
        input_size=I,
        hidden_size=H,
        w=w,
        rw=rw,
        bias_x=bx,
        bias_h=bh,
        mult_x=mx,
        shift_x=sx,
        mult_h=mh,
        shift_h=sh,
        cell_frac=cf,
        out_mult=om,
        out_shift=osh,
        out_zp=qh.zp,
        h0=qh.q(rng.uniform(-0.5, 0.5, H)),
        c0=np.round(rng.uniform(-1.0, 1.0, H) * 2**cf).astype(np.int32),
        **extra,
    )
    y_q, c_q = sim.lstm_sequence(p, x_q)
    fw = (W, R, Wb, Rb, P, x, qh.dq(p.h0), p.c0 / 2.0**cf)
    opts = {"gate": gate, "clip": clip, "input_forget": input_forget, "peep": peep}
    off = {"gate": "sigmoid", "clip": 0.0, "input_forget": False, "peep": False}
    alts = [(k, _float_lstm(*fw, **{**opts, k: off[k]})[0]) for k in opts if opts[k] != off[k]]
    y, cc = _float_lstm(*fw, **opts)
    label = f"lstm {gate} clip={clip} cifg={input_forget} peep={peep}"
    _check_tracks(label, qh.dq(y_q), y, qh.scale, alts)
    assert np.abs(c_q / 2.0**cf - cc).max() < 0.03  # the cell: ~120 LSB of Q3.12
    y_c, c_c = kernels_c.lstm_sequence(p, x_q)
    assert np.array_equal(y_c, y_q) and np.array_equal(c_c, c_q)

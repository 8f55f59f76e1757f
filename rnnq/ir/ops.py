"""The IR's op kinds and their groups, on one screen.

Every pass, simulator and backend asks these groups instead of spelling op names out again, so
that a new op is added in one place: its arity here, then one handler per stage.
"""

from __future__ import annotations

from typing import Any

#: op -> (number of inputs, number of outputs); -1 = variadic. Float ops first, integer after.
OPS: dict[str, tuple[int, int]] = {
    # float IR
    # recurrent: x [B, I] per step; attrs hidden, reverse, clip, gate_act / act
    "lstm": (7, 2),  # x, W[4H,I], R[4H,H], B[4H], h0[B,H], c0[B,H], P[3H] -> y, c; gates i,o,f,c
    "gru": (6, 1),  # x, W[3H,I], R[3H,H], Wb[3H], Rb[3H], h0[B,H] -> y; gates z,r,h
    "rnn": (5, 1),  # x, W[H,I], R[H,H], B[H], h0[B,H] -> y
    "dense": (3, 1),  # x[..., K], W[N, K], b[N] -> [..., N]
    "add": (2, 1),
    "sub": (2, 1),
    "mul": (2, 1),
    "relu": (1, 1),
    "sigmoid": (1, 1),
    "tanh": (1, 1),
    "square": (1, 1),  # Pow(x, 2)
    "sqrt": (1, 1),  # of a magnitude (negative values read as 0)
    "leaky_relu": (1, 1),  # attrs alpha: x < 0 -> alpha * x
    # more elementwise functions of one operand (int8 tables once quantised; UNARY_FNS)
    "log": (1, 1),  # of x, non-positive x read as the smallest float32 (ONNX gives -inf)
    "exp": (1, 1),
    "abs": (1, 1),
    "softplus": (1, 1),
    "elu": (1, 1),  # attrs alpha
    "hard_sigmoid": (1, 1),  # attrs alpha, beta: clamp(alpha * x + beta, 0, 1)
    "hard_swish": (1, 1),
    "clip": (1, 1),  # attrs lo, hi
    "reciprocal": (1, 1),  # 1 / x (a division by an activation multiplies by it)
    "magnitude": (-1, 1),  # sqrt of the sum of its 1-3 inputs' squares (canonicalize)
    "softmax": (1, 1),  # over the last per-step axis
    # layout (float and integer alike)
    "reshape": (1, 1),  # same elements, same order: an alias
    "take": (1, 1),  # out.flat = in.flat[attrs["index"]]; index -1 reads a real 0 (padding)
    "last": (1, 1),  # seq -> final: the value at the current (last) step
    "first": (1, 1),  # seq -> final: the value at step 0 (whole-sequence models only)
    "concat": (-1, 1),  # attrs["axis"] (per-step axis)
    "mean_time": (1, 1),  # seq -> final: running mean over the steps so far
    "embed": (2, 1),  # ids (int, seq) , table const [V, E] -> rows
    # integer IR
    "qlstm": (1, 2),  # x int8 -> y int8, c int16 (params in attrs["params"])
    "qdense": (1, 1),
    "qbinary": (2, 1),  # add / mul of two int8 tensors with requantisation
    "qlut": (1, 1),  # int8 -> int8 through a 256-entry table
    "qsoftmax": (1, 1),
    "qgru": (1, 1),
    "qrnn": (1, 1),
    "qrequant": (1, 1),  # int16/int8 -> int8, int32 (LSTM cell) -> int16 (RequantParams)
    "qmean_time": (1, 1),
    "qembed": (1, 1),
    "qmagnitude": (-1, 1),  # int8 or int16 operands (one scale) -> isqrt of the sum of squares
}

#: Float recurrent nodes (one direction each) and the integer node each becomes.
RECURRENT: dict[str, str] = {"lstm": "qlstm", "gru": "qgru", "rnn": "qrnn"}
#: Integer recurrent node -> its kind (the C kernel family rnnq_<kind>_*).
INT_RECURRENT: dict[str, str] = {v: k for k, v in RECURRENT.items()}
#: Gate blocks of H rows per recurrent kind (ONNX order: LSTM i,o,f,c; GRU z,r,h; RNN one).
GATE_BLOCKS: dict[str, int] = {"lstm": 4, "gru": 3, "rnn": 1}
#: Positions of a float recurrent node's constant initial states among its inputs (h, then c).
INITIAL_STATES: dict[str, tuple[int, ...]] = {"lstm": (4, 5), "gru": (5,), "rnn": (4,)}
#: The output is the input's value, or the value of one of its steps: nothing is computed and,
#: in streaming C, nothing is copied.
VIEWS = frozenset({"reshape", "last", "first"})
#: One input; the output's values are some of the input's, unchanged (views and index maps).
REARRANGE = VIEWS | {"take"}
#: Ops that move values without arithmetic: a quantisation passes through them unchanged.
LAYOUT = REARRANGE | {"concat"}
#: Ops that keep state from one step to the next.
STATEFUL = frozenset({*RECURRENT, *INT_RECURRENT, "mean_time", "qmean_time"})
#: Elementwise float ops with two operands, and with one (int8 lookup tables once quantised).
BINARY = frozenset({"add", "sub", "mul"})
UNARY = frozenset({"relu", "sigmoid", "tanh", "square", "sqrt", "leaky_relu", "log", "exp",
                   "abs", "softplus", "elu", "hard_sigmoid", "hard_swish", "clip", "reciprocal"})
ELEMENTWISE = BINARY | UNARY
#: Ops whose first input feeds a matrix product (so per-feature input scales fold into it).
LINEAR = frozenset({*RECURRENT, "dense"})


def recurrent_kind(op: str) -> str | None:
    """"lstm", "gru" or "rnn" for a float or integer recurrent op, else None."""
    return op if op in RECURRENT else INT_RECURRENT.get(op)


def hard_sigmoid(attrs: dict[str, Any]) -> tuple[float, float] | None:
    """(alpha, beta) of a recurrent node's HardSigmoid gates, None for sigmoid gates.

    The importer stores ``gate_act`` as ("sigmoid",) or ("hardsigmoid", alpha, beta): gate =
    clamp(alpha * z + beta, 0, 1)."""
    ga = attrs.get("gate_act", ("sigmoid",))
    return (float(ga[1]), float(ga[2])) if ga[0] == "hardsigmoid" else None

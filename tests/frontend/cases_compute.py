"""Test models for the computing ops: the LSTM itself, dense layers, activations, binary ops
(with constants and of two activations). Registered in onnx_cases.CASES; run by test_ops.py."""

from __future__ import annotations

import numpy as np
from onnx_cases import N_OUT, X0, X1, Case, F, H, Net, case, last_h


# --- the LSTM itself ---------------------------------------------------------------------------
@case()
def lstm_y_layout0(n):
    return X0, [n.lstm("x", F)[0]]


@case()
def lstm_y_layout1(n):
    return X1, [n.lstm("x", F, layout=1)[0]]


@case()
def lstm_y_and_yh(n):
    return X0, n.lstm("x", F)


@case()
def lstm_yh_initial_state_layout1(n):
    return X1, [n.lstm("x", F, layout=1, outputs=("", "Y_h"), initial=True)[1]]


@case()
def lstm_yc_output(n):
    outs = n.lstm("x", F, outputs=("", "Y_h", "Y_c"))
    return X0, [outs[1], outs[2]]


@case()
def lstm_no_bias_explicit_defaults(n):
    y = n.lstm("x", F, bias=False, activations=["Sigmoid", "Tanh", "Tanh"])[0]
    return X0, [y]


@case()
def lstm_static_t_sequence_lens(n):
    return [5, 1, F], [n.lstm("x", F, seq_lens=5, outputs=("", "Y_h"))[1]]


@case()
def lstm_stacked(n):
    y = n.squeeze(n.lstm("x", F, outputs=("Y",))[0], 1)  # [T, 1, H]
    return X0, [n.lstm(y, H, hidden=5, outputs=("", "Y_h"))[1]]


@case()
def lstm_parallel_add(n):
    a = n.lstm("x", F, outputs=("", "Y_h"))[1]
    b = n.lstm("x", F, outputs=("", "Y_h"))[1]
    return X0, [n.op("Add", a, b)]


# --- dense layers ---------------------------------------------------------------------------
@case()
def gemm_softmax_head(n):
    return X0, [n.op("Softmax", n.gemm(last_h(n), H), axis=-1)]


@case()
def gemm_alpha_beta_row_bias(n):
    w, c = n.w(H, N_OUT), n.w(1, N_OUT)
    return X0, [n.op("Gemm", last_h(n), w, c, alpha=0.5, beta=2.0)]


@case()
def gemm_no_bias(n):
    return X0, [n.gemm(last_h(n), H, bias=False)]


@case()
def gemm_per_step(n):
    y = n.reshape(n.lstm("x", F, outputs=("Y",))[0], -1, H)  # [T, H]
    return X0, [n.gemm(y, H)]


@case()
def gemm_relu_gemm_mlp_head(n):
    return X0, [n.gemm(n.op("Relu", n.gemm(last_h(n), H, 6)), 6)]


@case()
def gemm_before_lstm(n):
    z = n.op("Tanh", n.gemm(n.reshape("x", -1, F), F, 5))  # [T, 5]
    return [1, "T", F], [n.lstm(n.unsqueeze(z, 1), 5, outputs=("", "Y_h"))[1]]


@case()
def matmul_seq(n):
    return X0, [n.matmul(n.lstm("x", F, outputs=("Y",))[0], H)]


@case()
def matmul_add_bias_head(n):
    return X0, [n.op("Add", n.matmul(last_h(n), H), n.w(N_OUT))]


@case()
def matmul_before_lstm(n):
    z = n.op("Add", n.matmul("x", F, 6), n.w(6))  # [T, 1, 6]
    return X0, [n.lstm(z, 6, outputs=("", "Y_h"))[1]]


# --- pointwise activations ------------------------------------------------------------------
@case()
def sigmoid_head(n):
    return X0, [n.op("Sigmoid", n.gemm(last_h(n), H, 1))]


@case()
def tanh_head(n):
    return X0, [n.op("Tanh", n.gemm(last_h(n), H))]


@case()
def relu_sigmoid_tanh_on_seq(n):
    y = n.lstm("x", F, outputs=("Y",))[0]
    return X0, [n.op("Relu", y), n.op("Sigmoid", y), n.op("Tanh", n.matmul(y, H))]


def _pointwise_before(op: str) -> Case:
    def build(n: Net):
        return X0, [n.lstm(n.op(op, "x"), F, outputs=("", "Y_h"))[1]]

    build.__name__ = f"{op.lower()}_before_lstm"
    return build


for _op in ("Relu", "Sigmoid", "Tanh"):
    case()(_pointwise_before(_op))


@case()
def softmax_before_lstm(n):
    return X0, [n.lstm(n.op("Softmax", "x", axis=-1), F, outputs=("", "Y_h"))[1]]


@case(opset=11)
def softmax_opset11_default_axis(n):
    h = n.op("Flatten", n.lstm("x", F, outputs=("", "Y_h"))[1], axis=1)
    return X0, [n.op("Softmax", n.gemm(h, H))]


@case()
def softmax_per_step(n):
    return X0, [n.op("Softmax", n.matmul(n.lstm("x", F, outputs=("Y",))[0], H))]


@case()
def softmax_grouped_via_reshape(n):
    g = n.op("Softmax", n.reshape(n.gemm(last_h(n), H, 6), 1, 2, 3), axis=-1)
    return X0, [n.reshape(g, 1, 6)]


# --- binary ops with constants of several broadcast shapes ---------------------------------
@case()
def add_constants(n):
    h = n.lstm("x", F, outputs=("", "Y_h"))[1]  # [1, 1, H]
    a = n.op("Add", n.op("Add", h, n.c(0.25)), n.w(H))
    return X0, [n.op("Add", n.w(1, 1, H), a)]  # constant first


@case()
def sub_constants(n):
    y = n.lstm("x", F, outputs=("Y",))[0]  # [T, 1, 1, H]
    s = n.op("Sub", n.op("Sub", y, n.w(1, H)), n.w(1, 1, 1, H))
    return X0, [n.op("Sub", s, n.c([0.5]))]


@case()
def mul_constants(n):
    y = n.lstm("x", F, outputs=("Y",))[0]
    m = n.op("Mul", n.c(np.linspace(-2.0, 3.0, H)), n.op("Mul", y, n.c(1.5)))
    return X0, [n.op("Mul", m, n.c(np.full((1, 1, 1, 1), -0.75)))]


@case()
def div_constants(n):
    h = n.lstm("x", F, outputs=("", "Y_h"))[1]
    d = n.op("Div", n.op("Div", h, n.c(4.0)), n.c(np.linspace(0.5, 2.0, H)))
    return X0, [n.op("Div", d, n.c(np.full((1, 1, H), -0.8)))]


@case()
def mul_add_denormalise_head(n):
    return X0, [n.op("Add", n.op("Mul", n.gemm(last_h(n), H), n.c([2.0, 1.0, 0.5, 4.0])),
                     n.c([[10.0, -1.0, 0.0, 3.0]]))]


@case()
def sub_div_normalise_input(n):
    z = n.op("Div", n.op("Sub", "x", n.c([0.5, -1.0, 0.0])), n.c([[[2.0, 0.5, 1.0]]]))
    return X0, [n.lstm(z, F, outputs=("", "Y_h"))[1]]


@case()
def mul_add_scale_input(n):
    z = n.op("Add", n.op("Mul", "x", n.c([0.5, 2.0, -1.0])), n.c(0.1))
    return X0, [n.lstm(z, F, outputs=("", "Y_h"))[1]]


# --- binary ops of two activations ------------------------------------------------------------
@case()
def add_same_activation_twice(n):
    h = n.lstm("x", F, outputs=("", "Y_h"))[1]
    return X0, [n.op("Add", h, h)]


@case()
def add_yh_and_last_y(n):
    y, h = n.lstm("x", F)
    return X0, [n.op("Add", h, n.gather(y, -1, axis=0))]


@case()
def mul_gated_head(n):
    h = last_h(n)
    g = n.op("Mul", n.op("Sigmoid", n.gemm(h, H, 6)), n.op("Tanh", n.gemm(h, H, 6)))
    return X0, [n.gemm(g, 6)]


@case()
def sub_two_heads(n):
    h = last_h(n)
    return X0, [n.op("Sub", n.gemm(h, H), n.gemm(h, H))]


@case()
def add_residual_seq(n):
    y = n.lstm("x", F, outputs=("Y",))[0]
    return X0, [n.op("Add", y, n.op("Relu", n.matmul(y, H, H)))]


@case()
def mul_gated_input(n):
    z = n.op("Mul", n.op("Sigmoid", "x"), n.op("Tanh", "x"))
    return X0, [n.lstm(z, F, outputs=("", "Y_h"))[1]]


# --- more elementwise functions, divisions ----------------------------------------------------
@case()
def unary_functions(n):
    """Log, Exp, Abs, Neg, Softplus, Elu, HardSigmoid, HardSwish, Clip (attributes at opset 6
    and inputs at 11+: here inputs), Reciprocal: each a table once quantised."""
    h = n.lstm("x", F, outputs=("Y", ""))[0]  # [T, 1, 1, H] in (-1, 1)
    pos = n.op("Add", n.op("Abs", h), n.c(0.25))
    outs = [n.op("Log", pos), n.op("Exp", h), n.op("Neg", h), n.op("Softplus", h),
            n.op("Elu", h, alpha=0.7), n.op("HardSigmoid", h, alpha=0.3, beta=0.4),
            n.op("HardSwish", n.op("Mul", h, n.c(4.0))), n.op("Clip", h, n.c(-0.3), n.c(0.5)),
            n.op("Clip", h, "", n.c(0.2)), n.op("Reciprocal", pos)]
    return X0, [n.op("Concat", *outs, axis=-1)]


@case()
def divisions_and_constant_minus(n):
    """x / y of two activations (x * (1 / y)), c / x, c - x (the GRU-style 1 - z)."""
    h = n.lstm("x", F, outputs=("Y", ""))[0]
    z = n.op("Sigmoid", h)
    d = n.op("Add", n.op("Abs", h), n.c(0.5))
    outs = [n.op("Div", h, d), n.op("Div", n.c(0.5), d), n.op("Sub", n.c(1.0), z)]
    return X0, [n.op("Concat", *outs, axis=-1)]

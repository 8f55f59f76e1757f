/* SPDX-License-Identifier: MIT-0 */
/* rnnq_kernels.h - integer kernels of rnnq (portable C99).
 *
 * Each params struct maps field for field onto the Python dataclass of the same name in
 * rnnq/ir/params.py (rnnq_lstm_params <-> LstmParams, ...), whose docstring defines the
 * arithmetic, then has the fields the compiler derives at emission (rowk of the LSTM and GRU);
 * rnnq/sim/kernels.py is the bit-exact reference these functions are tested against. Arrays
 * are row-major; no heap, no globals, integer only.
 *
 * The dot products of the LSTM, GRU, RNN and dense kernels are rnnq_matvec_* calls
 * (rnnq_matvec.h); a build links exactly one of rnnq_matvec_ref.c, rnnq_matvec_arm_dsp.c,
 * rnnq_matvec_neon.c, rnnq_matvec_x86.c next to rnnq_kernels.c. All give the same bits.
 *
 * Scratch: the kernels that take `scratch` need rnnq_<op>_scratch_size(p) bytes (the same in
 * every matvec variant; rnnq/backends/scratch.py is the Python twin), aligned to 4 bytes: the
 * dot products land there as int32. X(n) below is rnnq_matvec_xbuf_size(n) =
 * RNNQ_MATVEC_XBUF_BYTES(n), 2n rounded up to a multiple of 4. The contents are undefined
 * between calls; a scratch buffer must not overlap any other argument.
 *
 * Preconditions (established offline by the compiler):
 * - dot-product accumulators bias[r] + w[r].x fit in int32 (|bias| + K * 128 * 128 < 2^31;
 *   |bias_x| + I * 128 * 32768 < 2^31 for the _x16 steps, whose input is int16);
 * - multipliers in [0, 2^31), requant shifts in [1, 62]; zero points and act_min/act_max in
 *   the int8 range; LSTM cell_frac in [7, 15];
 * - softmax: 0 <= exp_table[d] <= 65536 and exp_table[0] > 0;
 * - gate_act 1 (hard sigmoid): hs_shift in [0, 62]; clip >= 0;
 * - GRU with linear_before_reset 0: |bias_h[r]| + H * 128 * 32640 < 2^31 on the candidate rows
 *   (their recurrent operand is the int16 r * (h - out_zp) / 2^8); a GRU with state_bits 16:
 *   |bias_h[r]| + H * 128 * 32768 < 2^31 on every row (its recurrent operand is int16);
 * - requant: in_zp may span the int16 range;
 * - mean over time: 1 <= n_steps <= INT32_MAX, and acc holds what _reset and _step made of it
 *   (its sums stay within 255 * n_steps, below 2^40, by themselves).
 * Array pointers documented "or NULL" may be NULL (empty arrays); all others must be valid.
 */
#ifndef RNNQ_KERNELS_H
#define RNNQ_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Integer LSTM step; gate rows are ONNX-ordered blocks of H: i, o, f, c. */
typedef struct {
    int32_t input_size;    /* I */
    int32_t hidden_size;   /* H */
    const int8_t *w;       /* [4H][I] */
    const int8_t *rw;      /* [4H][H] */
    const int32_t *bias_x; /* [4H] */
    const int32_t *bias_h; /* [4H] */
    const int32_t *mult_x; /* [4H] */
    const int32_t *shift_x; /* [4H] */
    const int32_t *mult_h; /* [4H] */
    const int32_t *shift_h; /* [4H] */
    int32_t cell_frac;     /* fractional bits of the int32 cell state, 7..27 */
    int32_t out_mult;
    int32_t out_shift;
    int32_t out_zp;
    const void *h0;        /* [B * H] initial hidden state, a row per batch entry: int8_t, or
                            * int16_t with state_bits 16 */
    const int32_t *c0;     /* [B * H] initial cell state, a row per batch entry */
    int32_t gate_act;      /* rnnq_gate_act: 0 sigmoid, 1 hard sigmoid (i, o, f gates) */
    int32_t hs_mult;       /* hard sigmoid: clamp(rshift_round(v * hs_mult, hs_shift) */
    int32_t hs_shift;      /*   + hs_offset, 0, 32767), v in Q3.12 */
    int32_t hs_offset;
    int32_t clip;          /* Q3.12 bound of every gate pre-activation, 0 = none */
    int32_t input_forget;  /* nonzero: f = min(32768 - i, 32767) */
    const int16_t *p;      /* [3H] peepholes p_i, p_o, p_f, or NULL (none) */
    const int32_t *p_mult; /* [3] multipliers of p_i * c16, p_o * c16, p_f * c16 (NULL with p;
                            * c16 = the cell's top 16 bits, rshift_round(c, RNNQ_PEEP_SHIFT)) */
    const int32_t *p_shift; /* [3] */
    int32_t state_bits;    /* 8: h int8 (rnnq_lstm_step_s8 / _x16); 16: h int16, out_zp 0,
                            * h0 int16 (rnnq_lstm_step_s8_h16 / _x16_h16) */
    const int8_t *rw_lo;   /* [4H][H] the next 8 bits of 16-bit recurrent weights, or NULL:
                            * every rw.h is then rw.h + rshift_round(rw_lo.h, 8) */
    int32_t requant_hi;    /* 1: every shift_x, shift_h and out_shift >= 33 (derived offline;
                            * the kernel's branch-free path, same integers) */
    const int32_t *rowk;   /* [4H][6] the gate rows' constants of the _fused entry points
                            * (derived offline, see there); NULL for the others */
} rnnq_lstm_params;

/* Values of the gate_act fields. */
typedef enum { RNNQ_GATE_SIGMOID = 0, RNNQ_GATE_HARD_SIGMOID = 1 } rnnq_gate_act;

/* Integer GRU step; rows are ONNX-ordered blocks of H: z, r, h (candidate). */
typedef struct {
    int32_t input_size;          /* I */
    int32_t hidden_size;         /* H */
    int32_t linear_before_reset; /* 0 or 1 (ONNX attribute) */
    const int8_t *w;             /* [3H][I] */
    const int8_t *rw;            /* [3H][H] */
    const int32_t *bias_x;       /* [3H] */
    const int32_t *bias_h;       /* [3H] */
    const int32_t *mult_x;       /* [3H] */
    const int32_t *shift_x;      /* [3H] */
    const int32_t *mult_h;       /* [3H] */
    const int32_t *shift_h;      /* [3H] */
    int32_t out_mult;            /* Q0.30 -> h */
    int32_t out_shift;
    int32_t out_zp;              /* zero point of h */
    const void *h0;              /* [B * H] initial hidden state, a row per batch entry:
                                    int8_t, or int16_t with state_bits 16 */
    int32_t gate_act;            /* rnnq_gate_act of z and r */
    int32_t hs_mult;
    int32_t hs_shift;
    int32_t hs_offset;
    int32_t clip;                /* Q3.12, 0 = none */
    int32_t state_bits;          /* 8: h int8 (rnnq_gru_step_s8 / _x16); 16: h int16, out_zp 0
                                    (rnnq_gru_step_s8_h16 / _x16_h16) */
    const int8_t *rw_lo;         /* [3H][H] or NULL, as in rnnq_lstm_params */
    int32_t requant_hi;          /* as in rnnq_lstm_params */
    const int32_t *rowk;         /* [3H][6] as in rnnq_lstm_params */
} rnnq_gru_params;

/* Values of rnnq_rnn_params.act. */
typedef enum { RNNQ_RNN_TANH = 0, RNNQ_RNN_RELU = 1, RNNQ_RNN_SIGMOID = 2 } rnnq_rnn_act;

/* Integer vanilla RNN step (ONNX RNN), rows of H. */
typedef struct {
    int32_t input_size;    /* I */
    int32_t hidden_size;   /* H */
    int32_t act;           /* rnnq_rnn_act */
    const int8_t *w;       /* [H][I] */
    const int8_t *rw;      /* [H][H] */
    const int32_t *bias_x; /* [H] */
    const int32_t *bias_h; /* [H] */
    const int32_t *mult_x; /* [H] */
    const int32_t *shift_x; /* [H] */
    const int32_t *mult_h; /* [H] */
    const int32_t *shift_h; /* [H] */
    int32_t out_mult;      /* tanh / sigmoid: Q0.15 -> h (state_bits 16: Q0.30 -> h) */
    int32_t out_shift;
    int32_t out_zp;        /* zero point of h */
    const void *h0;        /* [B * H] initial hidden state, a row per batch entry: int8_t, or
                              int16_t with state_bits 16 */
    int32_t clip;          /* Q3.12 (tanh, sigmoid) or h units (relu), 0 = none */
    int32_t state_bits;    /* 8: h int8 (rnnq_rnn_step_s8 / _x16); 16: h int16, out_zp 0
                              (rnnq_rnn_step_s8_h16 / _x16_h16) */
    const int8_t *rw_lo;   /* [H][H] or NULL, as in rnnq_lstm_params */
    int32_t requant_hi;    /* as in rnnq_lstm_params */
} rnnq_rnn_params;

/* y = sat8(out_zp + requant(x - in_zp, mult, shift)). */
typedef struct {
    int32_t in_zp;
    int32_t out_zp;
    int32_t mult;
    int32_t shift;
} rnnq_requant_params;

/* Running mean over time (rnnq/sim/kernels.py mean_time): sum[k] += x[k] - in_zp (int64);
 * y[k] = sat8(out_zp + div_round(round(sum[k] * mult / 2^shift), n_steps)), exact (no int32
 * wrap or saturation in between). With n_steps at INT32_MAX (the saturated step count) each
 * step first takes one mean out of the sum, sum -= div_round(sum, n_steps): a mean still. */
typedef struct {
    int32_t size;
    int32_t in_zp;
    int32_t out_zp;
    int32_t mult;
    int32_t shift;
} rnnq_mean_time_params;

/* Embedding lookup: y = table[clamp(id, 0, vocab - 1)]. */
typedef struct {
    int32_t vocab;
    int32_t dim;
    const int8_t *table; /* [vocab][dim] */
} rnnq_embed_params;

/* y[n] = clamp(out_zp + requant(bias[n] + w[n].x, mult[n], shift[n]), act_min, act_max). */
typedef struct {
    int32_t in_features;  /* K */
    int32_t out_features; /* N */
    const int8_t *w;      /* [N][K] */
    const int32_t *bias;  /* [N] */
    const int32_t *mult;  /* [N] */
    const int32_t *shift; /* [N] */
    int32_t out_zp;
    int32_t act_min;
    int32_t act_max;
} rnnq_dense_params;

/* y = clamp(out_zp + requant(isqrt_round(sum_i (x_i - in_zp)^2), mult, shift), act_min,
 * act_max) over 1-3 operands of one scale; the sum is a uint32 (< 3 * 2^30). */
typedef struct {
    int32_t in_zp;
    int32_t out_zp;
    int32_t mult;
    int32_t shift;
    int32_t act_min;
    int32_t act_max;
} rnnq_magnitude_params;

/* Values of rnnq_binary_params.op. */
typedef enum { RNNQ_BINARY_ADD = 0, RNNQ_BINARY_MUL = 1 } rnnq_binary_op;

/* add: y = clamp(out_zp + rshift_round64((a-a_zp)*a_mult + (b-b_zp)*b_mult, shift))
 * mul: y = clamp(out_zp + requant((a-a_zp)*(b-b_zp), mult, shift)) */
typedef struct {
    int32_t op; /* rnnq_binary_op */
    int32_t a_zp;
    int32_t b_zp;
    int32_t out_zp;
    int32_t a_mult; /* add only, signed */
    int32_t b_mult; /* add only, signed */
    int32_t mult;   /* mul only */
    int32_t shift;
    int32_t act_min;
    int32_t act_max;
} rnnq_binary_params;

/* Softmax over rows of depth int8 values; output scale 1/256, zero point -128. */
typedef struct {
    int32_t depth;
    const int32_t *exp_table; /* [256], indexed by max(row) - x */
} rnnq_softmax_params;

/* Bytes of scratch rnnq_lstm_step_s8 needs: 32 H + X(max(I, H)) (two int32 [4H] accumulators,
 * the matvec xbuf). */
int32_t rnnq_lstm_scratch_size(const rnnq_lstm_params *p);

/* One step: x [I]; h [H] and c [H] updated in place (every gate uses the old h);
 * scratch: rnnq_lstm_scratch_size(p) bytes, 4-byte aligned. */
void rnnq_lstm_step_s8(const rnnq_lstm_params *p, const int8_t *x, int8_t *h, int32_t *c,
                       int16_t *scratch);

/* The same step with an int16 input x [I] (a model input quantised to 16 bits; the rest of
 * the layer is unchanged: w, bias_x, mult_x and shift_x are computed for that input). */
void rnnq_lstm_step_x16(const rnnq_lstm_params *p, const int16_t *x, int8_t *h, int32_t *c,
                        int16_t *scratch);

/* The steps of an LSTM with state_bits 16: h [H] int16 (zero point 0; LstmParams). */
void rnnq_lstm_step_s8_h16(const rnnq_lstm_params *p, const int8_t *x, int16_t *h, int32_t *c,
                           int16_t *scratch);
void rnnq_lstm_step_x16_h16(const rnnq_lstm_params *p, const int16_t *x, int16_t *h,
                            int32_t *c, int16_t *scratch);

/* The branch-free entry points: the same steps as the functions without _hi, for params on
 * that path only (the compiler calls them where rnnq.ir.params.hi_path holds; the functions
 * without _hi choose the path themselves, so a build that calls only _hi ones links only that
 * path). Requires requant_hi, gate_act 0 (sigmoid), no peepholes (p NULL), input_forget 0. */
void rnnq_lstm_step_s8_hi(const rnnq_lstm_params *p, const int8_t *x, int8_t *h, int32_t *c,
                          int16_t *scratch);
void rnnq_lstm_step_x16_hi(const rnnq_lstm_params *p, const int16_t *x, int8_t *h, int32_t *c,
                           int16_t *scratch);
void rnnq_lstm_step_s8_h16_hi(const rnnq_lstm_params *p, const int8_t *x, int16_t *h,
                              int32_t *c, int16_t *scratch);
void rnnq_lstm_step_x16_h16_hi(const rnnq_lstm_params *p, const int16_t *x, int16_t *h,
                               int32_t *c, int16_t *scratch);

/* The unit-major entry points: the same steps as the _hi ones (the same preconditions), with
 * the rows of w and rw ordered unit by unit, (i_0, o_0, f_0, c_0, i_1, ...), instead of gate by
 * gate (rnnq.backends.c.layouts.unit_major; a matvec variant's weight layout applies to each
 * block of 4 * 8 rows on its own), and the gate rows' constants in rowk (required), in that
 * row order: per row r six words, bias_x[r], mult_x[r], shift_x[r] - 33, bias_h[r], mult_h[r],
 * shift_h[r] - 33 (rnnq.backends.c.layouts.row_constants). bias_x, mult_x, shift_x, bias_h,
 * mult_h and shift_h are not read (the compiler emits them NULL). Their scratch,
 * rnnq_lstm_fused_scratch_size(p) bytes, does not grow with 4H int32: 256 bytes and the packed
 * x and h (RNNQ_MATVEC_XBUF_BYTES(I) + RNNQ_MATVEC_XBUF_BYTES(H)). The compiler calls them on
 * targets with kernels.recurrent = "fused" (the Cortex-M ones), where RAM counts more than
 * vector width. They require rw_lo NULL (a layer with 16-bit recurrent weights runs on the
 * other entry points). */
int32_t rnnq_lstm_fused_scratch_size(const rnnq_lstm_params *p);
void rnnq_lstm_step_s8_fused(const rnnq_lstm_params *p, const int8_t *x, int8_t *h, int32_t *c,
                             int16_t *scratch);
void rnnq_lstm_step_x16_fused(const rnnq_lstm_params *p, const int16_t *x, int8_t *h,
                              int32_t *c, int16_t *scratch);
void rnnq_lstm_step_s8_h16_fused(const rnnq_lstm_params *p, const int8_t *x, int16_t *h,
                                 int32_t *c, int16_t *scratch);
void rnnq_lstm_step_x16_h16_fused(const rnnq_lstm_params *p, const int16_t *x, int16_t *h,
                                  int32_t *c, int16_t *scratch);

/* Bytes of scratch rnnq_gru_step_s8 needs: 26 H + X(max(I, H)) (two int32 [3H] accumulators,
 * the matvec xbuf, int16 [H] r * (h - out_zp) / 2^8). */
int32_t rnnq_gru_scratch_size(const rnnq_gru_params *p);

/* One step: x [I]; h [H] updated in place (every row uses the old h);
 * scratch: rnnq_gru_scratch_size(p) bytes, 4-byte aligned. */
void rnnq_gru_step_s8(const rnnq_gru_params *p, const int8_t *x, int8_t *h, int16_t *scratch);

/* The same step with an int16 input x [I] (as rnnq_lstm_step_x16). */
void rnnq_gru_step_x16(const rnnq_gru_params *p, const int16_t *x, int8_t *h, int16_t *scratch);

/* The steps of a GRU with state_bits 16: h [H] int16 (zero point 0; GruParams). */
void rnnq_gru_step_s8_h16(const rnnq_gru_params *p, const int8_t *x, int16_t *h,
                          int16_t *scratch);
void rnnq_gru_step_x16_h16(const rnnq_gru_params *p, const int16_t *x, int16_t *h,
                           int16_t *scratch);

/* The branch-free entry points (as the LSTM's): requant_hi and gate_act 0 (sigmoid). */
void rnnq_gru_step_s8_hi(const rnnq_gru_params *p, const int8_t *x, int8_t *h, int16_t *scratch);
void rnnq_gru_step_x16_hi(const rnnq_gru_params *p, const int16_t *x, int8_t *h,
                          int16_t *scratch);
void rnnq_gru_step_s8_h16_hi(const rnnq_gru_params *p, const int8_t *x, int16_t *h,
                             int16_t *scratch);
void rnnq_gru_step_x16_h16_hi(const rnnq_gru_params *p, const int16_t *x, int16_t *h,
                              int16_t *scratch);

/* The unit-major GRU entry points, as the LSTM's (rnnq_lstm_step_*_fused): the _hi steps'
 * preconditions and linear_before_reset 1, rows of w, rw and rowk ordered (z_0, r_0, n_0,
 * z_1, ...), rowk required (bias_x .. shift_h not read); scratch
 * rnnq_gru_fused_scratch_size(p) bytes: 192 and the packed x and h. */
int32_t rnnq_gru_fused_scratch_size(const rnnq_gru_params *p);
void rnnq_gru_step_s8_fused(const rnnq_gru_params *p, const int8_t *x, int8_t *h,
                            int16_t *scratch);
void rnnq_gru_step_x16_fused(const rnnq_gru_params *p, const int16_t *x, int8_t *h,
                             int16_t *scratch);
void rnnq_gru_step_s8_h16_fused(const rnnq_gru_params *p, const int8_t *x, int16_t *h,
                                int16_t *scratch);
void rnnq_gru_step_x16_h16_fused(const rnnq_gru_params *p, const int16_t *x, int16_t *h,
                                 int16_t *scratch);

/* Bytes of scratch rnnq_rnn_step_s8 needs: 8 H + X(max(I, H)) (two int32 [H] accumulators, the
 * matvec xbuf). */
int32_t rnnq_rnn_scratch_size(const rnnq_rnn_params *p);

/* One step: x [I]; h [H] updated in place; scratch: rnnq_rnn_scratch_size(p) bytes,
 * 4-byte aligned. */
void rnnq_rnn_step_s8(const rnnq_rnn_params *p, const int8_t *x, int8_t *h, int16_t *scratch);

/* The same step with an int16 input x [I] (as rnnq_lstm_step_x16). */
void rnnq_rnn_step_x16(const rnnq_rnn_params *p, const int16_t *x, int8_t *h, int16_t *scratch);

/* The branch-free entry points (as the LSTM's): requant_hi. */
void rnnq_rnn_step_s8_hi(const rnnq_rnn_params *p, const int8_t *x, int8_t *h, int16_t *scratch);
void rnnq_rnn_step_x16_hi(const rnnq_rnn_params *p, const int16_t *x, int8_t *h,
                          int16_t *scratch);

/* The steps of an RNN with state_bits 16: h [H] int16 (zero point 0; RnnParams). */
void rnnq_rnn_step_s8_h16(const rnnq_rnn_params *p, const int8_t *x, int16_t *h,
                          int16_t *scratch);
void rnnq_rnn_step_x16_h16(const rnnq_rnn_params *p, const int16_t *x, int16_t *h,
                           int16_t *scratch);
void rnnq_rnn_step_s8_h16_hi(const rnnq_rnn_params *p, const int8_t *x, int16_t *h,
                             int16_t *scratch);
void rnnq_rnn_step_x16_h16_hi(const rnnq_rnn_params *p, const int16_t *x, int16_t *h,
                              int16_t *scratch);

/* Elementwise over n int16 values; x and y must not overlap. */
void rnnq_requant_s16_s8(const rnnq_requant_params *p, const int16_t *x, int8_t *y, int32_t n);

/* Elementwise over n int32 values with zero point 0 (the LSTM cell); x and y must not overlap. */
void rnnq_requant_s32_s8(const rnnq_requant_params *p, const int32_t *x, int8_t *y, int32_t n);

/* Elementwise over n int8 values; y may alias x. */
void rnnq_requant_s8_s8(const rnnq_requant_params *p, const int8_t *x, int8_t *y, int32_t n);
void rnnq_requant_s32_s16(const rnnq_requant_params *p, const int32_t *x, int16_t *y,
                          int32_t n);

/* Zero the sums acc [2 * size]: sum[k] = acc[2k + 1] * 2^31 + acc[2k], 0 <= acc[2k] < 2^31. */
void rnnq_mean_time_reset(const rnnq_mean_time_params *p, int32_t *acc);

/* Add x [size] to the sums acc [2 * size], then write the mean over n_steps (>= 1) steps into
 * y [size] (y may alias x). */
void rnnq_mean_time_step_s8(const rnnq_mean_time_params *p, const int8_t *x, int32_t *acc,
                            int32_t n_steps, int8_t *y);

/* y [dim] = table row clamp(id, 0, vocab - 1). */
void rnnq_embed_s8(const rnnq_embed_params *p, int32_t id, int8_t *y);

/* Bytes of scratch rnnq_dense_s8 needs: 4 N + X(K) (int32 [N] accumulators, the matvec xbuf). */
int32_t rnnq_dense_scratch_size(const rnnq_dense_params *p);

/* x [rows][K] -> y [rows][N]; x and y must not overlap; scratch: rnnq_dense_scratch_size(p)
 * bytes, 4-byte aligned. */
void rnnq_dense_s8(const rnnq_dense_params *p, const int8_t *x, int8_t *y, int32_t rows,
                   int16_t *scratch);

/* The same with int16 x and y (a 16-bit front end): K < 2^9 keeps |bias + w.x| < 2^31 (the
 * compiler checks each row's bound). */
void rnnq_dense_s16(const rnnq_dense_params *p, const int16_t *x, int16_t *y, int32_t rows,
                    int16_t *scratch);

/* Elementwise magnitude of n values of the operands a, b, c (b, c NULL when absent); y may
 * alias none of them. int8 operands -> int8 y, int16 -> int16. */
void rnnq_magnitude_s8(const rnnq_magnitude_params *p, const int8_t *a, const int8_t *b,
                       const int8_t *c, int8_t *y, int32_t n);
void rnnq_magnitude_s16(const rnnq_magnitude_params *p, const int16_t *a, const int16_t *b,
                        const int16_t *c, int16_t *y, int32_t n);

/* Elementwise over n values; y may alias a or b. */
void rnnq_binary_s8(const rnnq_binary_params *p, const int8_t *a, const int8_t *b, int8_t *y,
                    int32_t n);

/* y[k] = table[x[k] + 128] over n values; table has 256 entries; y may alias x. */
void rnnq_lut_s8(const int8_t *table, const int8_t *x, int8_t *y, int32_t n);

/* x [rows][depth] -> y [rows][depth]; y may alias x. */
void rnnq_softmax_s8(const rnnq_softmax_params *p, const int8_t *x, int8_t *y, int32_t rows);

/* y[k] = x[index[k]] for k < n; x and y must not overlap. */
void rnnq_take_s8(const int32_t *index, int32_t n, const int8_t *x, int8_t *y);
/* As rnnq_take_s8, and index -1 writes fill (the zero point: padding). */
void rnnq_take_fill_s8(const int32_t *index, int32_t n, const int8_t *x, int8_t *y, int32_t fill);
/* The same over int16 values. */
void rnnq_take_s16(const int32_t *index, int32_t n, const int16_t *x, int16_t *y);
void rnnq_take_fill_s16(const int32_t *index, int32_t n, const int16_t *x, int16_t *y,
                        int32_t fill);

#ifdef __cplusplus
}
#endif

#endif /* RNNQ_KERNELS_H */

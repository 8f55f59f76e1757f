/* rnnq_kernels.h - integer kernels of rnnq (portable C99 reference variant).
 *
 * Each params struct maps field for field onto the Python dataclass of the same name in
 * rnnq/ir/params.py (rnnq_lstm_params <-> LstmParams, ...), whose docstring defines the
 * arithmetic; rnnq/sim/kernels.py is the bit-exact reference these functions are tested
 * against. Arrays are row-major; no heap, no globals, integer only.
 *
 * Preconditions (established offline by the compiler):
 * - dot-product accumulators bias[r] + w[r].x fit in int32 (|bias| + K * 128 * 128 < 2^31);
 * - multipliers in [0, 2^31), requant shifts in [1, 62]; zero points and act_min/act_max in
 *   the int8 range; LSTM cell_frac in [7, 15];
 * - softmax: 0 <= exp_table[d] <= 65536 and exp_table[0] > 0.
 */
#ifndef RNNQ_KERNELS_H
#define RNNQ_KERNELS_H

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
    int32_t cell_frac;     /* fractional bits of the int16 cell state, 7..15 */
    int32_t out_mult;
    int32_t out_shift;
    int32_t out_zp;
    const int8_t *h0;      /* [H] initial hidden state */
    const int16_t *c0;     /* [H] initial cell state */
} rnnq_lstm_params;

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

/* Bytes of scratch rnnq_lstm_step_s8 needs: 4H int16 gate pre-activations. */
int32_t rnnq_lstm_scratch_size(const rnnq_lstm_params *p);

/* Copy h0 and c0 into the state buffers h [H] and c [H]. */
void rnnq_lstm_reset_s8(const rnnq_lstm_params *p, int8_t *h, int16_t *c);

/* One step: x [I]; h [H] and c [H] updated in place (every gate uses the old h);
 * scratch: rnnq_lstm_scratch_size(p) bytes, int16-aligned. */
void rnnq_lstm_step_s8(const rnnq_lstm_params *p, const int8_t *x, int8_t *h, int16_t *c,
                       int16_t *scratch);

/* x [rows][K] -> y [rows][N]; x and y must not overlap. */
void rnnq_dense_s8(const rnnq_dense_params *p, const int8_t *x, int8_t *y, int32_t rows);

/* Elementwise over n values; y may alias a or b. */
void rnnq_binary_s8(const rnnq_binary_params *p, const int8_t *a, const int8_t *b, int8_t *y,
                    int32_t n);

/* y[k] = table[x[k] + 128] over n values; table has 256 entries; y may alias x. */
void rnnq_lut_s8(const int8_t *table, const int8_t *x, int8_t *y, int32_t n);

/* x [rows][depth] -> y [rows][depth]; y may alias x. */
void rnnq_softmax_s8(const rnnq_softmax_params *p, const int8_t *x, int8_t *y, int32_t rows);

/* y[k] = x[index[k]] for k < n; x and y must not overlap. */
void rnnq_take_s8(const int32_t *index, int32_t n, const int8_t *x, int8_t *y);

#ifdef __cplusplus
}
#endif

#endif /* RNNQ_KERNELS_H */

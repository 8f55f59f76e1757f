/* rnnq_kernels.c - integer kernels of rnnq (portable C99 reference variant).
 *
 * Mirrors rnnq/sim/kernels.py bit for bit (tests compare with np.array_equal). Written for
 * small cores: int32 accumulators in dot products, 64-bit arithmetic only where a value can
 * exceed 32 bits, pointers walked rather than re-indexed.
 */
#include "rnnq_kernels.h"

#include "rnnq_fixedpoint.h"

/* Sum of w[k] * x[k] for k < n: int32 accumulator, four products per iteration. */
static inline int32_t rnnq_dot_s8(const int8_t *w, const int8_t *x, int32_t n)
{
    int32_t acc0 = 0;
    int32_t acc1 = 0;
    int32_t k = 0;
    for (; k + 4 <= n; k += 4) {
        acc0 += (int32_t)w[0] * x[0] + (int32_t)w[1] * x[1];
        acc1 += (int32_t)w[2] * x[2] + (int32_t)w[3] * x[3];
        w += 4;
        x += 4;
    }
    for (; k < n; ++k) {
        acc0 += (int32_t)(*w++) * (*x++);
    }
    return acc0 + acc1;
}

static inline int8_t rnnq_clamp8(int64_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

int32_t rnnq_lstm_scratch_size(const rnnq_lstm_params *p)
{
    return 4 * p->hidden_size * (int32_t)sizeof(int16_t);
}

void rnnq_lstm_reset_s8(const rnnq_lstm_params *p, int8_t *h, int16_t *c)
{
    int32_t j;
    for (j = 0; j < p->hidden_size; ++j) {
        h[j] = p->h0[j];
        c[j] = p->c0[j];
    }
}

void rnnq_lstm_step_s8(const rnnq_lstm_params *p, const int8_t *x, int8_t *h, int16_t *c,
                       int16_t *scratch)
{
    const int32_t n_in = p->input_size;
    const int32_t n_hid = p->hidden_size;
    const int32_t rows = 4 * n_hid;
    const int32_t cell_frac = p->cell_frac;
    const int32_t ic_shift = 2 * RNNQ_ACT_FRAC_BITS - cell_frac;
    const int8_t *w = p->w;
    const int8_t *rw = p->rw;
    int32_t r;
    int32_t j;

    /* 1. Gate pre-activations (Q3.12) from x and the old h:
     *    g = sat16(requant(bias_x + w.x) + requant(bias_h + rw.h)), the sum exact in 64 bits. */
    for (r = 0; r < rows; ++r) {
        const int32_t ax = p->bias_x[r] + rnnq_dot_s8(w, x, n_in);
        const int32_t ah = p->bias_h[r] + rnnq_dot_s8(rw, h, n_hid);
        const int64_t g = (int64_t)rnnq_requant(ax, p->mult_x[r], p->shift_x[r]) +
                          (int64_t)rnnq_requant(ah, p->mult_h[r], p->shift_h[r]);
        scratch[r] = rnnq_sat16(g);
        w += n_in;
        rw += n_hid;
    }

    /* 2. Gates (Q0.15), cell and hidden state, element by element (blocks i, o, f, c). */
    {
        const int16_t *gi = scratch;
        const int16_t *go = scratch + n_hid;
        const int16_t *gf = scratch + 2 * n_hid;
        const int16_t *gc = scratch + 3 * n_hid;
        for (j = 0; j < n_hid; ++j) {
            const int32_t i_t = rnnq_sigmoid_q15(gi[j], RNNQ_GATE_FRAC_BITS);
            const int32_t o_t = rnnq_sigmoid_q15(go[j], RNNQ_GATE_FRAC_BITS);
            const int32_t f_t = rnnq_sigmoid_q15(gf[j], RNNQ_GATE_FRAC_BITS);
            const int32_t cc = rnnq_tanh_q15(gc[j], RNNQ_GATE_FRAC_BITS);
            /* |f * c| <= 2^30 and |i * cc| < 2^30: both products fit in int32. */
            const int32_t c_new = rnnq_sat16(
                (int64_t)rnnq_rshift_round(f_t * (int32_t)c[j], RNNQ_ACT_FRAC_BITS) +
                rnnq_rshift_round(i_t * cc, ic_shift));
            const int32_t t = rnnq_tanh_q15(c_new, cell_frac);
            c[j] = (int16_t)c_new;
            h[j] = rnnq_sat8((int64_t)p->out_zp + rnnq_requant(o_t * t, p->out_mult, p->out_shift));
        }
    }
}

void rnnq_dense_s8(const rnnq_dense_params *p, const int8_t *x, int8_t *y, int32_t rows)
{
    const int32_t n_in = p->in_features;
    const int32_t n_out = p->out_features;
    const int32_t zp = p->out_zp;
    const int32_t lo = p->act_min;
    const int32_t hi = p->act_max;
    int32_t b;
    int32_t n;
    for (b = 0; b < rows; ++b) {
        const int8_t *w = p->w;
        for (n = 0; n < n_out; ++n) {
            const int32_t acc = p->bias[n] + rnnq_dot_s8(w, x, n_in);
            /* out_zp + requant(...) exactly, then the clamp. */
            const int64_t v = (int64_t)zp + rnnq_requant(acc, p->mult[n], p->shift[n]);
            *y++ = rnnq_clamp8(v, lo, hi);
            w += n_in;
        }
        x += n_in;
    }
}

void rnnq_binary_s8(const rnnq_binary_params *p, const int8_t *a, const int8_t *b, int8_t *y,
                    int32_t n)
{
    const int32_t a_zp = p->a_zp;
    const int32_t b_zp = p->b_zp;
    const int32_t zp = p->out_zp;
    const int32_t shift = p->shift;
    const int32_t lo = p->act_min;
    const int32_t hi = p->act_max;
    int32_t k;
    if (p->op == RNNQ_BINARY_MUL) {
        const int32_t mult = p->mult;
        for (k = 0; k < n; ++k) {
            /* |a - a_zp|, |b - b_zp| <= 255: the product fits in int32. */
            const int32_t prod = ((int32_t)a[k] - a_zp) * ((int32_t)b[k] - b_zp);
            y[k] = rnnq_clamp8((int64_t)zp + rnnq_requant(prod, mult, shift), lo, hi);
        }
    } else {
        const int64_t a_mult = p->a_mult;
        const int64_t b_mult = p->b_mult;
        for (k = 0; k < n; ++k) {
            const int64_t s = ((int64_t)a[k] - a_zp) * a_mult + ((int64_t)b[k] - b_zp) * b_mult;
            y[k] = rnnq_clamp8(zp + rnnq_rshift_round64(s, shift), lo, hi);
        }
    }
}

void rnnq_lut_s8(const int8_t *table, const int8_t *x, int8_t *y, int32_t n)
{
    const int8_t *t = table + 128;
    int32_t k;
    for (k = 0; k < n; ++k) {
        y[k] = t[x[k]];
    }
}

void rnnq_softmax_s8(const rnnq_softmax_params *p, const int8_t *x, int8_t *y, int32_t rows)
{
    const int32_t depth = p->depth;
    const int32_t *table = p->exp_table;
    int32_t b;
    int32_t k;
    for (b = 0; b < rows; ++b) {
        int32_t mx = RNNQ_INT8_MIN;
        for (k = 0; k < depth; ++k) {
            mx = x[k] > mx ? x[k] : mx;
        }
        if (depth <= 32767) {
            /* s <= depth * 2^16 < 2^31 and e * 256 + s / 2 < 2^31: 32-bit division. */
            int32_t s = 0;
            int32_t half;
            for (k = 0; k < depth; ++k) {
                s += table[mx - x[k]];
            }
            half = s / 2;
            for (k = 0; k < depth; ++k) {
                const int32_t q = (table[mx - x[k]] * 256 + half) / s - 128;
                y[k] = rnnq_sat8(q);
            }
        } else {
            int64_t s = 0;
            int64_t half;
            for (k = 0; k < depth; ++k) {
                s += table[mx - x[k]];
            }
            half = s / 2;
            for (k = 0; k < depth; ++k) {
                const int64_t q = ((int64_t)table[mx - x[k]] * 256 + half) / s - 128;
                y[k] = rnnq_sat8(q);
            }
        }
        x += depth;
        y += depth;
    }
}

void rnnq_take_s8(const int32_t *index, int32_t n, const int8_t *x, int8_t *y)
{
    int32_t k;
    for (k = 0; k < n; ++k) {
        y[k] = x[index[k]];
    }
}

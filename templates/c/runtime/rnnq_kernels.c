/* SPDX-License-Identifier: MIT-0 */
/* rnnq_kernels.c - integer kernels of rnnq (portable C99).
 *
 * Mirrors rnnq/sim/kernels.py bit for bit (tests compare with np.array_equal). Written for
 * small cores: int32 accumulators in dot products, 64-bit arithmetic only where a value can
 * exceed 32 bits. Every dot product is one rnnq_matvec_* call (rnnq_matvec.h: ref, arm_dsp or
 * neon, linked in by the build) into int32 scratch; the bias, per-row requantisation and
 * activations follow here, the same in every build. bias + w.x is exact in int32 under the
 * accumulator precondition, whichever of the two is added first.
 */
#include "rnnq_kernels.h"

#include "rnnq_fixedpoint.h"
#include "rnnq_matvec.h"

/* SSAT / USAT (saturation to a bit width) and QADD (saturating add) where the core has them
 * (ACLE); portable clamps elsewhere. The unit-major steps use them. */
#if (defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT) || \
    (defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
#define RNNQ_SSAT(v, bits) __ssat((v), (bits))
#define RNNQ_USAT(v, bits) ((int32_t)__usat((v), (bits)))
#else
#define RNNQ_SSAT(v, bits) \
    rnnq_clamp32((v), -((int32_t)1 << ((bits) - 1)), ((int32_t)1 << ((bits) - 1)) - 1)
#define RNNQ_USAT(v, bits) rnnq_clamp32((v), 0, ((int32_t)1 << (bits)) - 1)
#endif
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define RNNQ_HAVE_QADD 1
#else
#define RNNQ_HAVE_QADD 0
#endif
/* SMUAD on a table pair loaded as one (unaligned) word: little-endian lanes. */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__ARM_FEATURE_UNALIGNED) && \
    !defined(__ARM_BIG_ENDIAN)
#include <string.h>
#define RNNQ_HAVE_SMUAD 1
typedef char rnnq_int16_table_check[sizeof rnnq_tanh_table[0] == 2 ? 1 : -1];
#else
#define RNNQ_HAVE_SMUAD 0
#endif

/* Inlining hints (GNU C); nothing elsewhere. */
#if defined(__GNUC__)
#define RNNQ_NOINLINE __attribute__((noinline))
#define RNNQ_ALWAYS_INLINE __attribute__((always_inline))
#else
#define RNNQ_NOINLINE
#define RNNQ_ALWAYS_INLINE
#endif

static inline int8_t rnnq_clamp8(int64_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

static inline int16_t rnnq_clamp16(int64_t v, int32_t lo, int32_t hi)
{
    return (int16_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* Clamp a gate pre-activation to [-clip, clip] when clip > 0. */
static inline int32_t rnnq_clip_gate(int32_t v, int32_t clip)
{
    if (clip > 0) {
        v = v < -clip ? -clip : (v > clip ? clip : v);
    }
    return v;
}

/* Gate activation, Q3.12 -> Q0.15 in [0, 32767]: sigmoid_q15 (gate_act 0) or the hard sigmoid
 * clamp(rshift_round(v * hs_mult, hs_shift) + hs_offset, 0, 32767) (gate_act 1). */
static inline int32_t rnnq_gate_q15(int32_t gate_act, int32_t hs_mult, int32_t hs_shift,
                                    int32_t hs_offset, int32_t v)
{
    if (gate_act == RNNQ_GATE_HARD_SIGMOID) {
        /* |v * hs_mult| < 2^47: no overflow in 64 bits. */
        const int64_t y = rnnq_rshift_round64((int64_t)v * hs_mult, hs_shift) + hs_offset;
        return y < 0 ? 0 : (y > RNNQ_INT16_MAX ? RNNQ_INT16_MAX : (int32_t)y);
    }
    return rnnq_sigmoid_q15(v, RNNQ_GATE_FRAC_BITS);
}

/* Bytes of the matvec xbuf shared by the input (I columns) and recurrent (H columns) products. */
static inline int32_t rnnq_xbuf_bytes(int32_t n_in, int32_t n_hid)
{
    return rnnq_matvec_xbuf_size(n_in > n_hid ? n_in : n_hid);
}

#define RNNQ_HI_SHIFT_MIN 33 /* rnnq.ir.params.HI_SHIFT_MIN */

/* rnnq_requant(a, m, s) for s >= RNNQ_HI_SHIFT_MIN: the high word of a * m (|hi| < 2^30),
 * rounded, shifted by s - 32 >= 1: |result| <= 2^29, so sums of two and small terms fit int32. */
static inline int32_t rnnq_requant_hi(int32_t a, int32_t m, int32_t s)
{
    const int32_t hi = (int32_t)(((int64_t)a * m) >> 32);
    return (hi + ((int32_t)1 << (s - 33))) >> (s - 32);
}

/* Two requantised accumulators, summed exactly: requant(ax, mx, sx) + requant(ah, mh, sh). */
static inline int64_t rnnq_requant_pair(int32_t ax, int32_t mx, int32_t sx, int32_t ah,
                                        int32_t mh, int32_t sh)
{
    if (sx >= RNNQ_HI_SHIFT_MIN && sh >= RNNQ_HI_SHIFT_MIN) {
        /* The usual case: two high words, an int32 sum. */
        return rnnq_requant_hi(ax, mx, sx) + rnnq_requant_hi(ah, mh, sh);
    }
    return (int64_t)rnnq_requant(ax, mx, sx) + (int64_t)rnnq_requant(ah, mh, sh);
}

/* The branch-free forms of the recurrent kernels' fast path (params' requant_hi set: every
 * row shift and out_shift >= 33). Loops built from them only use 32-bit lanes (and 64-bit
 * products), so C compilers vectorise them; each returns the same integers as the general
 * form named beside it (tests compare both with rnnq/sim). */

static inline int32_t rnnq_clamp32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* The sum of two rnnq_requant_hi results (exact in int32) clamped to [g_lo, g_hi], the gate
 * range of rnnq_gate_range: sat16 and the clip in one clamp. */
static inline int32_t rnnq_requant_hi_gate(int32_t ax, int32_t mx, int32_t sx, int32_t ah,
                                           int32_t mh, int32_t sh, int32_t g_lo, int32_t g_hi)
{
    return rnnq_clamp32(rnnq_requant_hi(ax, mx, sx) + rnnq_requant_hi(ah, mh, sh), g_lo, g_hi);
}

/* Rows of requantisations, the loops the recurrent kernels' fast path starts with. With AVX2
 * (x86-64) eight rows per iteration in intrinsics: gcc vectorises rnnq_requant_hi's 64-bit
 * product by widening both operands into 64-bit lanes and packing the high words back (about
 * 20 shuffles per eight rows); VPMULDQ on the even and the odd lanes and one blend give the
 * same high words (the signed 64-bit product's bits 32..63), then the same rounding shift.
 * For the rows % 8 last rows the scalar forms; out may be a (or ax). Only AVX2 builds have
 * these: the others keep the plain loops of rnnq_requant_hi_gate. */
#if defined(__AVX2__)
#include <immintrin.h>
#define RNNQ_HAVE_AVX2_ROWS 1

#define RNNQ_LOAD8(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))

/* rnnq_requant_hi(a, m, s) in eight int32 lanes. */
static inline __m256i rnnq_requant_hi8(__m256i a, __m256i m, __m256i s)
{
    const __m256i even = _mm256_mul_epi32(a, m);
    const __m256i odd = _mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(m, 32));
    const __m256i hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    const __m256i s32 = _mm256_sub_epi32(s, _mm256_set1_epi32(32));
    const __m256i half = _mm256_sllv_epi32(_mm256_set1_epi32(1),
                                           _mm256_sub_epi32(s, _mm256_set1_epi32(33)));
    return _mm256_srav_epi32(_mm256_add_epi32(hi, half), s32);
}

/* out[r] = rnnq_requant_hi(b[r] + a[r], m[r], s[r]) for r < n. */
static void rnnq_requant_hi_rows(const int32_t *b, const int32_t *a, const int32_t *m,
                                 const int32_t *s, int32_t *out, int32_t n)
{
    int32_t r = 0;
    for (; r + 8 <= n; r += 8) {
        _mm256_storeu_si256((__m256i *)(void *)(out + r),
                            rnnq_requant_hi8(_mm256_add_epi32(RNNQ_LOAD8(b + r),
                                                              RNNQ_LOAD8(a + r)),
                                             RNNQ_LOAD8(m + r), RNNQ_LOAD8(s + r)));
    }
    for (; r < n; ++r) {
        out[r] = rnnq_requant_hi(b[r] + a[r], m[r], s[r]);
    }
}

/* out[r] = rnnq_requant_hi_gate(bx[r] + ax[r], mx[r], sx[r], bh[r] + ah[r], mh[r], sh[r],
 * g_lo, g_hi) for r < n. */
static void rnnq_requant_hi_gate_rows(const int32_t *bx, const int32_t *ax, const int32_t *mx,
                                      const int32_t *sx, const int32_t *bh, const int32_t *ah,
                                      const int32_t *mh, const int32_t *sh, int32_t *out,
                                      int32_t n, int32_t g_lo, int32_t g_hi)
{
    int32_t r = 0;
    const __m256i lo = _mm256_set1_epi32(g_lo);
    const __m256i hi = _mm256_set1_epi32(g_hi);
    for (; r + 8 <= n; r += 8) {
        const __m256i v = _mm256_add_epi32(
            rnnq_requant_hi8(_mm256_add_epi32(RNNQ_LOAD8(bx + r), RNNQ_LOAD8(ax + r)),
                             RNNQ_LOAD8(mx + r), RNNQ_LOAD8(sx + r)),
            rnnq_requant_hi8(_mm256_add_epi32(RNNQ_LOAD8(bh + r), RNNQ_LOAD8(ah + r)),
                             RNNQ_LOAD8(mh + r), RNNQ_LOAD8(sh + r)));
        _mm256_storeu_si256((__m256i *)(void *)(out + r),
                            _mm256_min_epi32(_mm256_max_epi32(v, lo), hi));
    }
    for (; r < n; ++r) {
        out[r] = rnnq_requant_hi_gate(bx[r] + ax[r], mx[r], sx[r], bh[r] + ah[r], mh[r], sh[r],
                                      g_lo, g_hi);
    }
}
#else
#define RNNQ_HAVE_AVX2_ROWS 0
#endif

/* rnnq_tanh_q15(x, sh + 7) for 0 <= sh <= 20, branch-free: |x| by xor with the sign mask
 * (exact for INT32_MIN too); the interval index clamped to the last one, whose fraction is
 * clamped to 2^sh, which gives the last entry exactly once |x| reaches 8.0. Both entries from
 * rnnq_tanh_pairs where rnnq_tables.h has it (AVX2: one load per lane of a vectorised loop).
 * d * frac <= 256 * 2^20: int32. */
static inline int32_t rnnq_tanh_lut(int32_t x, int32_t sh)
{
    const uint32_t m = (uint32_t)(x >> 31);
    const uint32_t a = ((uint32_t)x ^ m) - m;
    const uint32_t idx = a >> sh;
    const uint32_t k = idx < RNNQ_TABLE_LAST - 1u ? idx : RNNQ_TABLE_LAST - 1u;
    const uint32_t rest = a - (k << sh);
    const int32_t frac = (int32_t)(rest < (1u << sh) ? rest : (1u << sh));
#if RNNQ_HAVE_TANH_PAIRS
    const int32_t pair = rnnq_tanh_pairs[k];
    const int32_t lo = pair & 0xFFFF;
    const int32_t hi = pair >> 16;
#else
    const int32_t lo = rnnq_tanh_table[k];
    const int32_t hi = rnnq_tanh_table[k + 1u];
#endif
    const int32_t y = lo + (((hi - lo) * frac + (((int32_t)1 << sh) >> 1)) >> sh);
    return x < 0 ? -y : y;
}

/* rnnq_sigmoid_q15(x, RNNQ_GATE_FRAC_BITS). */
static inline int32_t rnnq_sigmoid_lut(int32_t x)
{
    const int32_t sh = RNNQ_GATE_FRAC_BITS + 1 - RNNQ_TANH_TABLE_STEP_BITS;
    const int32_t y = (32768 + rnnq_tanh_lut(x, sh) + 1) >> 1;
    return y > RNNQ_INT16_MAX ? RNNQ_INT16_MAX : y;
}

/* rnnq_rshift_round64((int64_t)f * c, 15) for 0 <= f <= 32767 in 32-bit lanes: with
 * c = c_hi * 2^16 + c_lo (c_lo in [0, 65535]), f * c_hi * 2^16 is a multiple of 2^15, so the
 * result is 2 * f * c_hi + rshift_round(f * c_lo, 15); |2 * f * c_hi| <= 2^31 - 2^17 and
 * f * c_lo + 2^14 < 2^31. */
static inline int32_t rnnq_mul_q15_round(int32_t f, int32_t c)
{
    const int32_t c_hi = c >> 16;
    const int32_t c_lo = (int32_t)((uint32_t)c & 0xFFFFu);
    return 2 * f * c_hi + ((f * c_lo + ((int32_t)1 << (RNNQ_ACT_FRAC_BITS - 1))) >>
                           RNNQ_ACT_FRAC_BITS);
}

/* rnnq_sat32((int64_t)a + b) without 64-bit lanes. */
static inline int32_t rnnq_add_sat32(int32_t a, int32_t b)
{
    if (b >= 0) {
        return a > INT32_MAX - b ? INT32_MAX : a + b;
    }
    return a < INT32_MIN - b ? INT32_MIN : a + b;
}

/* rnnq_clip_gate(rnnq_sat16(v), clip) is one clamp of v to [*lo, *hi]: the int16 range, cut
 * to [-clip, clip] by a clip (> 0) inside it (nested clamps to intervals holding 0). */
static inline void rnnq_gate_range(int32_t clip, int32_t *lo, int32_t *hi)
{
    const int32_t b = clip > 0 && clip < 32768 ? clip : 32768;
    *lo = -b;
    *hi = b < RNNQ_INT16_MAX ? b : RNNQ_INT16_MAX;
}

/* A new state computed in int32 lanes (already in its type's range) into h8, or h16 when h8
 * is NULL. */
static void rnnq_store_h(const int32_t *v, int32_t n, int8_t *h8, int16_t *h16)
{
    int32_t k;
    if (h8 != NULL) {
        for (k = 0; k < n; ++k) {
            h8[k] = (int8_t)v[k];
        }
    } else {
        for (k = 0; k < n; ++k) {
            h16[k] = (int16_t)v[k];
        }
    }
}

/* Scratch bytes of a recurrent step: `base` (a multiple of 4 bytes), and with 16-bit
 * recurrent weights (rw_lo not NULL) `rows` int32 more for rw_lo's product (rnnq_lo_buf). */
static inline int32_t rnnq_with_lo(int32_t base, const int8_t *rw_lo, int32_t rows)
{
    return base + (rw_lo != NULL ? rows * (int32_t)sizeof(int32_t) : 0);
}

/* Where rw_lo's product goes in a step's scratch: after its first `base` bytes. */
static inline int32_t *rnnq_lo_buf(int16_t *scratch, int32_t base)
{
    return (int32_t *)(void *)((int8_t *)scratch + base);
}

static inline int32_t rnnq_lstm_scratch_base(const rnnq_lstm_params *p)
{
    return 8 * p->hidden_size * (int32_t)sizeof(int32_t) +
           rnnq_xbuf_bytes(p->input_size, p->hidden_size);
}

int32_t rnnq_lstm_scratch_size(const rnnq_lstm_params *p)
{
    return rnnq_with_lo(rnnq_lstm_scratch_base(p), p->rw_lo, 4 * p->hidden_size);
}

/* The product of rows of rw [rows][n_hid] (from the row rw starts at) with the old h, h8 (int8)
 * or, when h8 is NULL, h16 (int16). */
static void rnnq_h_matvec(const int8_t *rw, const int8_t *h8, const int16_t *h16, int32_t rows,
                          int32_t n_hid, int32_t *out, int16_t *xbuf)
{
    if (h8 != NULL) {
        rnnq_matvec_s8(rw, h8, rows, n_hid, out, xbuf);
    } else {
        rnnq_matvec_s8_s16(rw, h16, rows, n_hid, out, xbuf);
    }
}

/* The recurrent product of a step's first `rows` rows: rw.h, and with 16-bit recurrent weights
 * (rw_lo not NULL) + rshift_round(rw_lo.h, 8), rw_lo's product in lo [rows] first. Each product
 * is an exact int32 sum, and so is their sum (the compiler bounds |rw| + |rw_lo| / 2^8 as it
 * bounds |rw|). */
static void rnnq_recurrent_matvec(const int8_t *rw, const int8_t *rw_lo, int32_t *lo,
                                  const int8_t *h8, const int16_t *h16, int32_t rows,
                                  int32_t n_hid, int32_t *out, int16_t *xbuf)
{
    int32_t r;
    rnnq_h_matvec(rw, h8, h16, rows, n_hid, out, xbuf);
    if (rw_lo != NULL) {
        rnnq_h_matvec(rw_lo, h8, h16, rows, n_hid, lo, xbuf);
        for (r = 0; r < rows; ++r) {
            out[r] += rnnq_rshift_round(lo[r], 8);
        }
    }
}

/* The constants of the branch-free LSTM cell update (rnnq_lstm_unit_hi), taken from the params
 * once per step. */
typedef struct {
    int32_t gate_sh;  /* the gates' fractional bits above the table step */
    int32_t cell_sh;  /* the same for c (0 .. 20) */
    int32_t ic_shift; /* i * tanh(c~) -> c's format (3 .. 23) */
    int32_t ic_half;
    int32_t out_mult;
    int32_t out_shift;
    int32_t out_zp;
    int32_t h_min;
    int32_t h_max;
} rnnq_lstm_cell_k;

static inline rnnq_lstm_cell_k rnnq_lstm_cell_consts(const rnnq_lstm_params *p, int h16)
{
    rnnq_lstm_cell_k k;
    k.gate_sh = RNNQ_GATE_FRAC_BITS - RNNQ_TANH_TABLE_STEP_BITS;
    k.cell_sh = p->cell_frac - RNNQ_TANH_TABLE_STEP_BITS;
    k.ic_shift = 2 * RNNQ_ACT_FRAC_BITS - p->cell_frac;
    k.ic_half = (int32_t)1 << (k.ic_shift - 1);
    k.out_mult = p->out_mult;
    k.out_shift = p->out_shift;
    k.out_zp = p->out_zp;
    k.h_min = h16 ? RNNQ_INT16_MIN : RNNQ_INT8_MIN;
    k.h_max = h16 ? RNNQ_INT16_MAX : RNNQ_INT8_MAX;
    return k;
}

/* One hidden unit of the branch-free LSTM step from its gate pre-activations (sat16 and
 * clipped): *c updated, the new h (in its type's range) returned. */
static inline int32_t rnnq_lstm_unit_hi(const rnnq_lstm_cell_k *k, int32_t gi, int32_t go,
                                        int32_t gf, int32_t gc, int32_t *c)
{
    const int32_t i_t = rnnq_sigmoid_lut(gi);
    const int32_t f_t = rnnq_sigmoid_lut(gf);
    const int32_t o_t = rnnq_sigmoid_lut(go);
    const int32_t cc = rnnq_tanh_lut(gc, k->gate_sh);
    const int32_t c_new =
        rnnq_add_sat32(rnnq_mul_q15_round(f_t, *c), (i_t * cc + k->ic_half) >> k->ic_shift);
    const int32_t v =
        k->out_zp + rnnq_requant_hi(o_t * rnnq_tanh_lut(c_new, k->cell_sh), k->out_mult,
                                    k->out_shift);
    *c = c_new;
    return rnnq_clamp32(v, k->h_min, k->h_max);
}

/* Step 2 of rnnq_lstm_rest_hi, branch-free, from the gate pre-activations g [4H] (sat16 and
 * clipped): the new h lands in hv [H] (int32 scratch), then in h8 or h16. */
static void rnnq_lstm_cells_hi(const rnnq_lstm_params *p, const int32_t *restrict g,
                               int32_t *restrict c, int32_t *restrict hv, int8_t *h8,
                               int16_t *h16)
{
    const int32_t n_hid = p->hidden_size;
    const rnnq_lstm_cell_k k = rnnq_lstm_cell_consts(p, h8 == NULL);
    int32_t j;
    for (j = 0; j < n_hid; ++j) {
        int32_t cj = c[j];
        hv[j] = rnnq_lstm_unit_hi(&k, g[j], g[n_hid + j], g[2 * n_hid + j], g[3 * n_hid + j],
                                  &cj);
        c[j] = cj;
    }
    rnnq_store_h(hv, n_hid, h8, h16);
}

/* The step after the input product on the branch-free path (rnnq_lstm_step_*_hi): scratch
 * holds w.x in its first 4H int32; h8 or h16 as in rnnq_lstm_rest_general. */
static void rnnq_lstm_rest_hi(const rnnq_lstm_params *p, int8_t *h8, int16_t *h16, int32_t *c,
                              int16_t *scratch)
{
    const int32_t n_hid = p->hidden_size;
    const int32_t rows = 4 * n_hid;
    int32_t *gx = (int32_t *)(void *)scratch; /* [4H] w.x, then the gates */
    int32_t *gh = gx + rows;                  /* [4H] rw.h, then the new h */
    int32_t g_lo;
    int32_t g_hi;
#if !RNNQ_HAVE_AVX2_ROWS
    int32_t r;
#endif

    rnnq_gate_range(p->clip, &g_lo, &g_hi);
    rnnq_recurrent_matvec(p->rw, p->rw_lo, rnnq_lo_buf(scratch, rnnq_lstm_scratch_base(p)), h8,
                          h16, rows, n_hid, gh, (int16_t *)(void *)(gh + rows));
#if RNNQ_HAVE_AVX2_ROWS
    rnnq_requant_hi_gate_rows(p->bias_x, gx, p->mult_x, p->shift_x, p->bias_h, gh, p->mult_h,
                              p->shift_h, gx, rows, g_lo, g_hi);
#else
    for (r = 0; r < rows; ++r) {
        gx[r] = rnnq_requant_hi_gate(p->bias_x[r] + gx[r], p->mult_x[r], p->shift_x[r],
                                     p->bias_h[r] + gh[r], p->mult_h[r], p->shift_h[r], g_lo,
                                     g_hi);
    }
#endif
    rnnq_lstm_cells_hi(p, gx, c, gh, h8, h16);
}

/* The step after the input product, general path: scratch holds w.x in its first 4H int32. The
 * hidden state is h8 (int8) or, when h8 is NULL, h16 (int16, zero point 0; state_bits 16). */
static void rnnq_lstm_rest_general(const rnnq_lstm_params *p, int8_t *h8, int16_t *h16,
                                   int32_t *c, int16_t *scratch)
{
    const int32_t n_hid = p->hidden_size;
    const int32_t rows = 4 * n_hid;
    const int32_t cell_frac = p->cell_frac;
    const int32_t ic_shift = 2 * RNNQ_ACT_FRAC_BITS - cell_frac;
    const int32_t ga = p->gate_act;
    const int32_t hs_mult = p->hs_mult;
    const int32_t hs_shift = p->hs_shift;
    const int32_t hs_offset = p->hs_offset;
    const int32_t clip = p->clip;
    const int16_t *peep = p->p;
    int32_t *gx = (int32_t *)(void *)scratch; /* [4H] w.x, then the gates */
    int32_t *gh = gx + rows;                  /* [4H] rw.h */
    int16_t *xbuf = (int16_t *)(void *)(gh + rows);
    int32_t r;
    int32_t j;

    /* 1. Gate pre-activations (Q3.12) from x and the old h:
     *    g = sat16(requant(bias_x + w.x) + requant(bias_h + rw.h)), the sum exact in 64 bits. */
    rnnq_recurrent_matvec(p->rw, p->rw_lo, rnnq_lo_buf(scratch, rnnq_lstm_scratch_base(p)), h8,
                          h16, rows, n_hid, gh, xbuf);
    for (r = 0; r < rows; ++r) {
        gx[r] = rnnq_sat16(rnnq_requant_pair(p->bias_x[r] + gx[r], p->mult_x[r], p->shift_x[r],
                                             p->bias_h[r] + gh[r], p->mult_h[r], p->shift_h[r]));
    }

    /* 2. Gates (Q0.15), cell and hidden state, element by element (blocks i, o, f, c). */
    {
        const int32_t *gi = gx;
        const int32_t *go = gx + n_hid;
        const int32_t *gf = gx + 2 * n_hid;
        const int32_t *gc = gx + 3 * n_hid;
        for (j = 0; j < n_hid; ++j) {
            const int32_t c_prev = c[j];
            int32_t gi_v = gi[j];
            int32_t gf_v = gf[j];
            int32_t go_v = go[j];
            int32_t i_t;
            int32_t f_t;
            int32_t o_t;
            int32_t cc;
            int32_t c_new;
            int32_t t;
            if (peep != NULL) {
                /* Peepholes on the old cell's top 16 bits: |p * c16| <= 2^30 fits int32. */
                const int32_t c16 = (int32_t)rnnq_rshift_round64(c_prev, RNNQ_PEEP_SHIFT);
                gi_v = rnnq_sat16((int64_t)gi_v + rnnq_requant((int32_t)peep[j] * c16,
                                                               p->p_mult[0], p->p_shift[0]));
                gf_v = rnnq_sat16((int64_t)gf_v +
                                  rnnq_requant((int32_t)peep[2 * n_hid + j] * c16,
                                               p->p_mult[2], p->p_shift[2]));
            }
            i_t = rnnq_gate_q15(ga, hs_mult, hs_shift, hs_offset, rnnq_clip_gate(gi_v, clip));
            if (p->input_forget) {
                f_t = 32768 - i_t > RNNQ_INT16_MAX ? RNNQ_INT16_MAX : 32768 - i_t;
            } else {
                f_t = rnnq_gate_q15(ga, hs_mult, hs_shift, hs_offset, rnnq_clip_gate(gf_v, clip));
            }
            cc = rnnq_tanh_q15(rnnq_clip_gate(gc[j], clip), RNNQ_GATE_FRAC_BITS);
            /* |f * c| < 2^46 in 64 bits; |i * cc| < 2^30 fits int32; the sum in 64 bits. */
            c_new = rnnq_sat32(rnnq_rshift_round64((int64_t)f_t * c_prev, RNNQ_ACT_FRAC_BITS) +
                               rnnq_rshift_round(i_t * cc, ic_shift));
            if (peep != NULL) {
                /* The output peephole sees the new cell. */
                const int32_t c16 = (int32_t)rnnq_rshift_round64(c_new, RNNQ_PEEP_SHIFT);
                go_v = rnnq_sat16((int64_t)go_v + rnnq_requant((int32_t)peep[n_hid + j] * c16,
                                                               p->p_mult[1], p->p_shift[1]));
            }
            o_t = rnnq_gate_q15(ga, hs_mult, hs_shift, hs_offset, rnnq_clip_gate(go_v, clip));
            t = rnnq_tanh_q15(c_new, cell_frac);
            c[j] = c_new;
            if (h8 != NULL) {
                h8[j] = rnnq_sat8((int64_t)p->out_zp +
                                  rnnq_requant(o_t * t, p->out_mult, p->out_shift));
            } else {
                h16[j] = (int16_t)rnnq_sat16(rnnq_requant(o_t * t, p->out_mult, p->out_shift));
            }
        }
    }
}

/* The path of an LSTM step: the _hi entry points' condition (rnnq_kernels.h). */
static void rnnq_lstm_rest(const rnnq_lstm_params *p, int8_t *h8, int16_t *h16, int32_t *c,
                           int16_t *scratch)
{
    if (p->requant_hi && p->gate_act == RNNQ_GATE_SIGMOID && p->p == NULL && !p->input_forget) {
        rnnq_lstm_rest_hi(p, h8, h16, c, scratch);
    } else {
        rnnq_lstm_rest_general(p, h8, h16, c, scratch);
    }
}

typedef void rnnq_lstm_rest_fn(const rnnq_lstm_params *p, int8_t *h8, int16_t *h16, int32_t *c,
                               int16_t *scratch);

/* One LSTM step: the input product of x8 (int8) or, when x8 is NULL, x16, then rest. */
static inline void rnnq_lstm_step(const rnnq_lstm_params *p, const int8_t *x8,
                                  const int16_t *x16, int8_t *h8, int16_t *h16, int32_t *c,
                                  int16_t *scratch, rnnq_lstm_rest_fn *rest)
{
    int32_t *gx = (int32_t *)(void *)scratch;
    int16_t *xbuf = (int16_t *)(void *)(gx + 8 * p->hidden_size);
    if (x8 != NULL) {
        rnnq_matvec_s8(p->w, x8, 4 * p->hidden_size, p->input_size, gx, xbuf);
    } else {
        rnnq_matvec_s8_s16(p->w, x16, 4 * p->hidden_size, p->input_size, gx, xbuf);
    }
    rest(p, h8, h16, c, scratch);
}

void rnnq_lstm_step_s8(const rnnq_lstm_params *p, const int8_t *x, int8_t *h, int32_t *c,
                       int16_t *scratch)
{
    rnnq_lstm_step(p, x, NULL, h, NULL, c, scratch, rnnq_lstm_rest);
}

void rnnq_lstm_step_x16(const rnnq_lstm_params *p, const int16_t *x, int8_t *h, int32_t *c,
                        int16_t *scratch)
{
    rnnq_lstm_step(p, NULL, x, h, NULL, c, scratch, rnnq_lstm_rest);
}

void rnnq_lstm_step_s8_h16(const rnnq_lstm_params *p, const int8_t *x, int16_t *h, int32_t *c,
                           int16_t *scratch)
{
    rnnq_lstm_step(p, x, NULL, NULL, h, c, scratch, rnnq_lstm_rest);
}

void rnnq_lstm_step_x16_h16(const rnnq_lstm_params *p, const int16_t *x, int16_t *h,
                            int32_t *c, int16_t *scratch)
{
    rnnq_lstm_step(p, NULL, x, NULL, h, c, scratch, rnnq_lstm_rest);
}

void rnnq_lstm_step_s8_hi(const rnnq_lstm_params *p, const int8_t *x, int8_t *h, int32_t *c,
                          int16_t *scratch)
{
    rnnq_lstm_step(p, x, NULL, h, NULL, c, scratch, rnnq_lstm_rest_hi);
}

void rnnq_lstm_step_x16_hi(const rnnq_lstm_params *p, const int16_t *x, int8_t *h, int32_t *c,
                           int16_t *scratch)
{
    rnnq_lstm_step(p, NULL, x, h, NULL, c, scratch, rnnq_lstm_rest_hi);
}

void rnnq_lstm_step_s8_h16_hi(const rnnq_lstm_params *p, const int8_t *x, int16_t *h,
                              int32_t *c, int16_t *scratch)
{
    rnnq_lstm_step(p, x, NULL, NULL, h, c, scratch, rnnq_lstm_rest_hi);
}

void rnnq_lstm_step_x16_h16_hi(const rnnq_lstm_params *p, const int16_t *x, int16_t *h,
                               int32_t *c, int16_t *scratch)
{
    rnnq_lstm_step(p, NULL, x, NULL, h, c, scratch, rnnq_lstm_rest_hi);
}

/* Hidden units per block of the unit-major steps (FUSED_UNITS in rnnq/backends/c/layouts.py). */
#define RNNQ_FUSED_UNITS 8

/* rnnq_matvec_packed_s8 (s8) or _s16 for an x packed by rnnq_matvec_pack_s8 or _s16. */
static inline void rnnq_matvec_packed(const int8_t *w, const int16_t *xp, int s8, int32_t rows,
                                      int32_t cols, int32_t *out)
{
    if (s8) {
        rnnq_matvec_packed_s8(w, xp, rows, cols, out);
    } else {
        rnnq_matvec_packed_s16(w, xp, rows, cols, out);
    }
}

/* The start of a unit-major step: x (x8, or x16 when x8 is NULL) packed into xp, the old h
 * (h8 or h16) into hp. */
static inline void rnnq_fused_pack(const int8_t *x8, const int16_t *x16, int32_t n_in,
                                   const int8_t *h8, const int16_t *h16, int32_t n_hid,
                                   int16_t *xp, int16_t *hp)
{
    if (x8 != NULL) {
        rnnq_matvec_pack_s8(x8, n_in, xp);
    } else {
        rnnq_matvec_pack_s16(x16, n_in, xp);
    }
    if (h8 != NULL) {
        rnnq_matvec_pack_s8(h8, n_hid, hp);
    } else {
        rnnq_matvec_pack_s16(h16, n_hid, hp);
    }
}

/* The products of the block of units from j0 (gates rows per unit, unit-major w and rw) with
 * the packed x and h into ax and ah; returns the block's units. */
static inline int32_t rnnq_fused_block(const int8_t *w, const int8_t *rw, int32_t gates,
                                       int32_t j0, int32_t n_in, int32_t n_hid,
                                       const int16_t *xp, int x_s8, const int16_t *hp, int h_s8,
                                       int32_t *ax, int32_t *ah)
{
    const int32_t units = n_hid - j0 < RNNQ_FUSED_UNITS ? n_hid - j0 : RNNQ_FUSED_UNITS;
    const int32_t r0 = gates * j0;
    rnnq_matvec_packed(rnnq_matvec_rows(w, r0, n_in), xp, x_s8, gates * units, n_in, ax);
    rnnq_matvec_packed(rnnq_matvec_rows(rw, r0, n_hid), hp, h_s8, gates * units, n_hid, ah);
    return units;
}

/* The unit-major steps' own forms of the branch-free helpers, for small cores (the Cortex-M4
 * bench counts them): the same integers as rnnq_requant_hi_gate, rnnq_sigmoid_lut,
 * rnnq_tanh_lut, rnnq_mul_q15_round and rnnq_add_sat32 on the ranges they are used on here
 * (the vector path keeps the forms written for the host's vectorisers). */

/* rnnq_requant_hi(a, m, s) with s1 = s - 33 >= 0 and no rounding constant: with k = s - 32 and
 * t = hi >> (k - 1) = floor(hi / 2^(k-1)),
 *   floor((hi + 2^(k-1)) / 2^k) = floor((hi / 2^(k-1) + 1) / 2) = floor((t + 1) / 2)
 * (floor(floor(z) / 2) = floor(z / 2) for real z), and floor((t + 1) / 2) = t - floor(t / 2)
 * (t = 2q: q; t = 2q + 1: q + 1): a shift and one subtraction with a shifted operand. */
static inline int32_t rnnq_requant_hi1(int32_t a, int32_t m, int32_t s1)
{
    const int32_t t = (int32_t)(((int64_t)a * m) >> 32) >> s1;
    return t - (t >> 1);
}

/* The unit-major steps' constants of a gate row (rowk, rnnq_kernels.h): per product (w.x, then
 * rw.h) RNNQ_ROWK_WORDS / 2 words, bias, mult and shift - 33, so that a row's six constants are
 * read through one pointer. rnnq_rowk_requant(q, a) is rnnq_requant_hi1(bias + a, mult,
 * shift - 33) (rnnq_requant_hi(bias + a, mult, shift)) for the constants at *q, and advances *q
 * past them. On Thumb-2 (GCC, clang): one LDM of the three words, ADD, SMULL, ASR and SUB
 * (LDM fills its list in ascending register order: the words go to r8-r10, fixed, as in
 * rnnq_matvec_arm_dsp.c); ASR takes the shift from its register's low byte, shift - 33 < 32. */
#define RNNQ_ROWK_WORDS 6
#if defined(__GNUC__) && defined(__thumb2__)
static inline RNNQ_ALWAYS_INLINE int32_t rnnq_rowk_requant(const int32_t **q, int32_t a)
{
    const int32_t *at = *q;
    register int32_t b __asm__("r8");
    register int32_t m __asm__("r9");
    register int32_t k __asm__("r10");
    int32_t t;
    int32_t v;
    __asm__("ldm %[at]!, {%[b], %[m], %[k]}\n\t"
            "add %[t], %[a], %[b]\n\t"
            "smull %[b], %[t], %[t], %[m]\n\t"
            "asr %[t], %[t], %[k]\n\t"
            "sub %[v], %[t], %[t], asr #1"
            : [at] "+r"(at), [b] "=&r"(b), [m] "=&r"(m), [k] "=&r"(k), [t] "=&r"(t),
              [v] "=r"(v)
            : [a] "r"(a), "m"(*(const int32_t(*)[RNNQ_ROWK_WORDS / 2])(const void *)*q));
    *q = at;
    return v;
}
#else
static inline int32_t rnnq_rowk_requant(const int32_t **q, int32_t a)
{
    const int32_t *at = *q;
    *q = at + RNNQ_ROWK_WORDS / 2;
    return rnnq_requant_hi1(at[0] + a, at[1], at[2]);
}
#endif

/* A gate pre-activation clamped as rnnq_gate_range's range does: to the int16 range (SSAT,
 * where the core has it) when clipped is 0, else to [-clip, clip] (0 < clip < 32768). */
static inline int32_t rnnq_fused_clamp(int32_t v, int clipped, int32_t clip)
{
    return clipped ? rnnq_clamp32(v, -clip, clip) : RNNQ_SSAT(v, 16);
}

/* A gate row's pre-activation, clamped, from its products ax (w.x) and ah (rw.h) and its
 * constants at *q (advanced past them): rnnq_requant_hi_gate's integers. */
static inline RNNQ_ALWAYS_INLINE int32_t rnnq_fused_gate(const int32_t **q, int32_t ax,
                                                         int32_t ah, int clipped, int32_t clip)
{
    const int32_t gx = rnnq_rowk_requant(q, ax);
    return rnnq_fused_clamp(gx + rnnq_rowk_requant(q, ah), clipped, clip);
}

/* one * table[k] + f * (table[k + 1] - table[k]) = table[k] (one - f) + table[k + 1] f for
 * 0 <= f < one <= 64: one SMUAD of the two entries, loaded as the int16 lanes of one word, and
 * (f, one - f), where the core has it. */
static inline int32_t rnnq_table_interp(uint32_t k, int32_t f, int32_t one)
{
#if RNNQ_HAVE_SMUAD
    int32_t pair;
    memcpy(&pair, &rnnq_tanh_table[k], sizeof pair);
    return __smuad(pair, (int32_t)(((uint32_t)f << 16) | (uint32_t)(one - f)));
#else
    const int32_t lo = rnnq_tanh_table[k];
    return lo * one + (rnnq_tanh_table[k + 1u] - lo) * f;
#endif
}

/* rnnq_sigmoid_lut(x) for |x| <= 32768 (a clamped gate): the index a >> 6 <= 512 needs no
 * clamp, nor its fraction. With t = lo + floor((d f + 32) / 64) the tanh and
 * v = 64 lo + d f (0 <= v < 2^21), the sigmoid min((32769 + sign(x) t) >> 1, 32767) is one
 * shift of one sum (nested floors of divisions by integers merge):
 *   x >= 0: floor((64 (32769 + lo) + d f + 32) / 128) = (v + C) >> 7,
 *   x < 0:  32769 - lo - floor((d f + 32) / 64) = floor((64 (32769 - lo) - d f - 32 + 63) / 64),
 *           halved: floor((C - 1 - v) / 128) = (~v + C) >> 7,
 * with C = 64 * 32769 + 32; v ^ (x >> 31) is v or ~v. Both sums are positive, so the clamp
 * to [0, 32767] is one USAT with the shift folded in. */
static inline int32_t rnnq_sigmoid_gate(int32_t x)
{
    const int32_t m = x >> 31;
    const uint32_t a = (uint32_t)((x ^ m) - m);
    const int32_t v = rnnq_table_interp(a >> 6, (int32_t)(a & 63u), 64);
    return RNNQ_USAT(((v ^ m) + (64 * 32769 + 32)) >> 7, 15);
}

/* rnnq_tanh_lut(x, sh) for 0 <= sh <= 20, its index clamped by one USAT (where the core has it)
 * instead of both clamps: the table's entries 1023 and 1024 are both 32767 (rnnq_tables.h), so
 * every |x| >= 1023 * 2^sh gives 32767, which index 1023 gives with any fraction (the
 * difference is 0); below that the index a >> sh < 1023 and fraction a & mask are the same.
 * |INT32_MIN| = 2^31 is taken as 2^31 - 1 first (the same result), so a >> sh fits int32.
 * mask = 2^sh - 1, half = 2^sh / 2. */
static inline int32_t rnnq_tanh_cut(int32_t x, int32_t sh, uint32_t mask, int32_t half)
{
    const int32_t m = x >> 31;
    const uint32_t a0 = ((uint32_t)x ^ (uint32_t)m) - (uint32_t)m;
    const uint32_t a = a0 - (a0 >> 31);
    const int32_t k = RNNQ_USAT((int32_t)(a >> sh), 10);
    const int32_t lo = rnnq_tanh_table[k];
    const int32_t y = lo + (((rnnq_tanh_table[k + 1] - lo) * (int32_t)(a & mask) + half) >> sh);
    return (y ^ m) - m;
}

/* rnnq_tanh_lut(x, gate_sh) of a clamped gate (|x| <= 32768): |x| cut to 32767 (one USAT), which
 * rnnq_tanh_cut allows (32767 < 1024 * 2^5). */
static inline int32_t rnnq_tanh_gate(int32_t x)
{
    const int32_t m = x >> 31;
    const int32_t a = RNNQ_USAT((x ^ m) - m, 15);
    const int32_t y = (rnnq_table_interp((uint32_t)a >> 5, a & 31, 32) + 16) >> 5;
    return (y ^ m) - m;
}

/* rnnq_mul_q15_round(f, c): where a 32 x 32 -> 64-bit multiply is one instruction, the
 * product rounded in 64 bits (|f * c| < 2^46: the result fits int32). */
static inline int32_t rnnq_mul_q15_fused(int32_t f, int32_t c)
{
#if defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB == 1 && !defined(__ARM_ARCH_ISA_ARM)
    return rnnq_mul_q15_round(f, c);
#else
    return (int32_t)(((int64_t)f * c + (1 << (RNNQ_ACT_FRAC_BITS - 1))) >> RNNQ_ACT_FRAC_BITS);
#endif
}

/* rnnq_add_sat32: QADD where the core has it. */
static inline int32_t rnnq_add_sat32_fused(int32_t a, int32_t b)
{
#if RNNQ_HAVE_QADD
    return __qadd(a, b);
#else
    return rnnq_add_sat32(a, b);
#endif
}

/* The unit-major step (rnnq_lstm_step_*_fused): the rows of w, rw and rowk in the order
 * (i_0, o_0, f_0, c_0, i_1, ...), so that RNNQ_FUSED_UNITS units are 4 U contiguous rows, whose
 * products are computed and used at once; the row constants come from rowk alone (bias_x ..
 * shift_h are not read). x and the old h are packed once (rnnq_matvec_pack_*), so the new h
 * goes straight into h. Scratch: two int32 [4U] sums and the two packed vectors. */

int32_t rnnq_lstm_fused_scratch_size(const rnnq_lstm_params *p)
{
    return 2 * 4 * RNNQ_FUSED_UNITS * (int32_t)sizeof(int32_t) +
           rnnq_matvec_xbuf_size(p->input_size) + rnnq_matvec_xbuf_size(p->hidden_size);
}

/* The constants of the unit-major LSTM step's cell update, in locals. */
typedef struct {
    int32_t cell_sh;    /* c's fractional bits above the table step (0 .. 20) */
    uint32_t cell_mask; /* 2^cell_sh - 1 */
    int32_t cell_half;  /* 2^cell_sh / 2 */
    int32_t ic_shift;   /* i * tanh(c~) -> c's format (3 .. 23) */
    int32_t ic_half;
    int32_t out_mult;
    int32_t out_s1;     /* out_shift - 33 */
    int32_t out_zp;
} rnnq_lstm_fused_k;

/* The blocks of a step after the packing: per block the products (acc: w.x in [0, 4U), rw.h in
 * [4U, 8U)), then its units, each from its four gate rows' products and constants (rowk, read
 * once in order: q, c and h advance block after block). h16_state (0 or 1) and clipped are
 * constants where this is inlined, so that each clamp is one SSAT on cores with it. The same
 * integers as rnnq_requant_hi_gate and rnnq_lstm_unit_hi. */
static inline RNNQ_ALWAYS_INLINE void rnnq_lstm_fused_blocks(
    const rnnq_lstm_params *p, const rnnq_lstm_fused_k *k, int x_s8, const int16_t *xp,
    const int16_t *hp, int32_t *c, int8_t *h8, int16_t *h16, int h16_state, int32_t *acc,
    int clipped, int32_t clip)
{
    const int32_t n_hid = p->hidden_size;
    const int32_t *q = p->rowk;
    int32_t j0;
    for (j0 = 0; j0 < n_hid; j0 += RNNQ_FUSED_UNITS) {
        const int32_t units = rnnq_fused_block(p->w, p->rw, 4, j0, p->input_size, n_hid, xp,
                                               x_s8, hp, !h16_state, acc,
                                               acc + 4 * RNNQ_FUSED_UNITS);
        const int32_t *const g_end = acc + 4 * units;
        const int32_t *g;
        for (g = acc; g != g_end; g += 4) {
            const int32_t *gh = g + 4 * RNNQ_FUSED_UNITS;
            const int32_t i_t = rnnq_sigmoid_gate(rnnq_fused_gate(&q, g[0], gh[0], clipped, clip));
            const int32_t o_t = rnnq_sigmoid_gate(rnnq_fused_gate(&q, g[1], gh[1], clipped, clip));
            const int32_t f_t = rnnq_sigmoid_gate(rnnq_fused_gate(&q, g[2], gh[2], clipped, clip));
            const int32_t cc = rnnq_tanh_gate(rnnq_fused_gate(&q, g[3], gh[3], clipped, clip));
            const int32_t c_new = rnnq_add_sat32_fused(rnnq_mul_q15_fused(f_t, *c),
                                                       (i_t * cc + k->ic_half) >> k->ic_shift);
            const int32_t v = rnnq_requant_hi1(
                o_t * rnnq_tanh_cut(c_new, k->cell_sh, k->cell_mask, k->cell_half),
                k->out_mult, k->out_s1);
            *c++ = c_new;
            if (h16_state) { /* out_zp is 0 with an int16 state (rnnq.ir.params) */
                *h16++ = (int16_t)RNNQ_SSAT(v, 16);
            } else {
                *h8++ = (int8_t)RNNQ_SSAT(k->out_zp + v, 8);
            }
        }
    }
}

/* The unit-major step for an int8 (h16_state 0: h8) or int16 (h16) state; x8 or x16 as in
 * rnnq_lstm_step. */
static inline RNNQ_ALWAYS_INLINE void rnnq_lstm_step_fused(const rnnq_lstm_params *p,
                                                           const int8_t *x8, const int16_t *x16,
                                                           int8_t *h8, int16_t *h16,
                                                           int h16_state, int32_t *c,
                                                           int16_t *scratch)
{
    const int32_t n_in = p->input_size;
    const int32_t clip = p->clip;
    int32_t *acc = (int32_t *)(void *)scratch; /* [4U] w.x, [4U] rw.h of a block */
    int16_t *xp = (int16_t *)(void *)(acc + 8 * RNNQ_FUSED_UNITS); /* x, packed */
    int16_t *hp = xp + rnnq_matvec_xbuf_size(n_in) / 2;           /* the old h, packed */
    rnnq_lstm_fused_k k;

    k.cell_sh = p->cell_frac - RNNQ_TANH_TABLE_STEP_BITS;
    k.cell_mask = ((uint32_t)1 << k.cell_sh) - 1u;
    k.cell_half = ((int32_t)1 << k.cell_sh) >> 1;
    k.ic_shift = 2 * RNNQ_ACT_FRAC_BITS - p->cell_frac;
    k.ic_half = (int32_t)1 << (k.ic_shift - 1);
    k.out_mult = p->out_mult;
    k.out_s1 = p->out_shift - RNNQ_HI_SHIFT_MIN;
    k.out_zp = p->out_zp;
    rnnq_fused_pack(x8, x16, n_in, h8, h16, p->hidden_size, xp, hp);
    if (clip > 0 && clip < 32768) {
        rnnq_lstm_fused_blocks(p, &k, x8 != NULL, xp, hp, c, h8, h16, h16_state, acc, 1, clip);
    } else {
        rnnq_lstm_fused_blocks(p, &k, x8 != NULL, xp, hp, c, h8, h16, h16_state, acc, 0, 0);
    }
}

/* One function per state type (each entry point links one), the clamps specialised in it. */
static RNNQ_NOINLINE void rnnq_lstm_fused_h8(const rnnq_lstm_params *p, const int8_t *x8,
                                             const int16_t *x16, int8_t *h, int32_t *c,
                                             int16_t *scratch)
{
    rnnq_lstm_step_fused(p, x8, x16, h, NULL, 0, c, scratch);
}

static RNNQ_NOINLINE void rnnq_lstm_fused_h16(const rnnq_lstm_params *p, const int8_t *x8,
                                              const int16_t *x16, int16_t *h, int32_t *c,
                                              int16_t *scratch)
{
    rnnq_lstm_step_fused(p, x8, x16, NULL, h, 1, c, scratch);
}

void rnnq_lstm_step_s8_fused(const rnnq_lstm_params *p, const int8_t *x, int8_t *h, int32_t *c,
                             int16_t *scratch)
{
    rnnq_lstm_fused_h8(p, x, NULL, h, c, scratch);
}

void rnnq_lstm_step_x16_fused(const rnnq_lstm_params *p, const int16_t *x, int8_t *h,
                              int32_t *c, int16_t *scratch)
{
    rnnq_lstm_fused_h8(p, NULL, x, h, c, scratch);
}

void rnnq_lstm_step_s8_h16_fused(const rnnq_lstm_params *p, const int8_t *x, int16_t *h,
                                 int32_t *c, int16_t *scratch)
{
    rnnq_lstm_fused_h16(p, x, NULL, h, c, scratch);
}

void rnnq_lstm_step_x16_h16_fused(const rnnq_lstm_params *p, const int16_t *x, int16_t *h,
                                  int32_t *c, int16_t *scratch)
{
    rnnq_lstm_fused_h16(p, NULL, x, h, c, scratch);
}

/* The GRU step's scratch before rw_lo's product: int32 [3H] from x and from h, xbuf, int16 [H]
 * r * h, rounded up to 4 bytes (the size without rw_lo is not rounded). */
static inline int32_t rnnq_gru_scratch_base(const rnnq_gru_params *p)
{
    return (6 * p->hidden_size * (int32_t)sizeof(int32_t) +
            rnnq_xbuf_bytes(p->input_size, p->hidden_size) +
            p->hidden_size * (int32_t)sizeof(int16_t) + 3) & ~3;
}

int32_t rnnq_gru_scratch_size(const rnnq_gru_params *p)
{
    if (p->rw_lo == NULL) {
        return 6 * p->hidden_size * (int32_t)sizeof(int32_t) +
               rnnq_xbuf_bytes(p->input_size, p->hidden_size) +
               p->hidden_size * (int32_t)sizeof(int16_t);
    }
    return rnnq_with_lo(rnnq_gru_scratch_base(p), p->rw_lo, 3 * p->hidden_size);
}

/* The candidate rows' recurrent product with linear_before_reset 0: the reset gate r scales the
 * centred old state, rh = r * (h - zp) / 2^8, |rh| <= 32640 (int16 h: rh = r * h / 2^15,
 * |r * h| < 2^30 fits int32, |rh| <= 32767), and rw's candidate rows multiply it into ah's. */
static void rnnq_gru_reset_product(const rnnq_gru_params *p, const int32_t *rg, const int8_t *h8,
                                   const int16_t *h16, int16_t *rh, int32_t *ah, int16_t *xbuf,
                                   int32_t *lo)
{
    const int32_t n_hid = p->hidden_size;
    const int32_t zp = p->out_zp;
    const int32_t cand = 2 * n_hid;
    int32_t k;
    for (k = 0; k < n_hid; ++k) {
        rh[k] = (int16_t)(h8 != NULL ? rnnq_rshift_round(rg[k] * ((int32_t)h8[k] - zp), 8)
                                     : rnnq_rshift_round(rg[k] * (int32_t)h16[k], 15));
    }
    rnnq_recurrent_matvec(rnnq_matvec_rows(p->rw, cand, n_hid),
                          p->rw_lo != NULL ? rnnq_matvec_rows(p->rw_lo, cand, n_hid) : NULL, lo,
                          NULL, rh, n_hid, n_hid, ah + cand, xbuf);
}

/* The candidate of one unit with linear_before_reset 1 on the branch-free path, from its row's
 * two products already requantised (q_x, and q_h not yet clamped): tanh of
 * sat16-and-clip(q_x + r * sat16(q_h) / 2^15). |q_x| <= 2^29 and |r * a_h| < 2^30: an int32
 * sum. */
static inline int32_t rnnq_gru_cand_lbr_q(int32_t q_x, int32_t q_h, int32_t r_t, int32_t g_lo,
                                          int32_t g_hi)
{
    const int32_t a_h = rnnq_clamp32(q_h, RNNQ_INT16_MIN, RNNQ_INT16_MAX);
    const int32_t pre =
        q_x + ((r_t * a_h + (1 << (RNNQ_ACT_FRAC_BITS - 1))) >> RNNQ_ACT_FRAC_BITS);
    return rnnq_tanh_lut(rnnq_clamp32(pre, g_lo, g_hi),
                         RNNQ_GATE_FRAC_BITS - RNNQ_TANH_TABLE_STEP_BITS);
}

#if !RNNQ_HAVE_AVX2_ROWS
/* rnnq_gru_cand_lbr_q of unit row j's products w.x and rw.h (without bias), requantised here
 * (with AVX2, rnnq_gru_rest_hi requantises the rows first). */
static inline int32_t rnnq_gru_cand_lbr_hi(const rnnq_gru_params *p, int32_t j, int32_t wx,
                                           int32_t rwh, int32_t r_t, int32_t g_lo, int32_t g_hi)
{
    return rnnq_gru_cand_lbr_q(rnnq_requant_hi(p->bias_x[j] + wx, p->mult_x[j], p->shift_x[j]),
                               rnnq_requant_hi(p->bias_h[j] + rwh, p->mult_h[j], p->shift_h[j]),
                               r_t, g_lo, g_hi);
}
#endif

/* The output constants of the branch-free GRU update (rnnq_gru_unit_hi), taken from the params
 * once per step (in locals, so that stores to the state cannot alias them). */
typedef struct {
    int32_t out_zp;
    int32_t out_mult;
    int32_t out_shift;
    int32_t h_min;
    int32_t h_max;
} rnnq_gru_out_k;

static inline rnnq_gru_out_k rnnq_gru_out_consts(const rnnq_gru_params *p, int h16)
{
    rnnq_gru_out_k k;
    k.out_zp = p->out_zp;
    k.out_mult = p->out_mult;
    k.out_shift = p->out_shift;
    k.h_min = h16 ? RNNQ_INT16_MIN : RNNQ_INT8_MIN;
    k.h_max = h16 ? RNNQ_INT16_MAX : RNNQ_INT8_MAX;
    return k;
}

/* The new state of one unit on the branch-free path from z, the candidate n and the centred
 * old state hc, in its type's range. (32768 - z) * n <= 2^15 * 32767 and |z * hc| < 2^30:
 * int32; the sum is below 2^31. */
static inline int32_t rnnq_gru_unit_hi(const rnnq_gru_out_k *k, int32_t z, int32_t n,
                                       int32_t hc)
{
    const int32_t v = k->out_zp + rnnq_requant_hi((32768 - z) * n, k->out_mult, k->out_shift) +
                      ((z * hc + (1 << (RNNQ_ACT_FRAC_BITS - 1))) >> RNNQ_ACT_FRAC_BITS);
    return rnnq_clamp32(v, k->h_min, k->h_max);
}

/* Step 3 of rnnq_gru_rest_hi, branch-free in int32 lanes: the centred old h
 * into hc [H] (int32 scratch), the new h into z's place, then into h8 or h16.
 * (32768 - z) * n <= 2^15 * 32767 and |z * hc| < 2^30: int32; the sum is below 2^31. */
static void rnnq_gru_update_hi(const rnnq_gru_params *p, int32_t *restrict z,
                               const int32_t *restrict n, int32_t *restrict hc, int8_t *h8,
                               int16_t *h16)
{
    const int32_t n_hid = p->hidden_size;
    const int32_t zp = p->out_zp;
    const rnnq_gru_out_k ok = rnnq_gru_out_consts(p, h8 == NULL);
    int32_t k;
    if (h8 != NULL) {
        for (k = 0; k < n_hid; ++k) {
            hc[k] = (int32_t)h8[k] - zp;
        }
    } else {
        for (k = 0; k < n_hid; ++k) {
            hc[k] = h16[k];
        }
    }
    k = 0;
#if RNNQ_HAVE_AVX2_ROWS
    {
        /* rnnq_gru_unit_hi in eight lanes (its requantisation by rnnq_requant_hi8). */
        const __m256i mult = _mm256_set1_epi32(ok.out_mult);
        const __m256i shift = _mm256_set1_epi32(ok.out_shift);
        const __m256i zpv = _mm256_set1_epi32(ok.out_zp);
        const __m256i one = _mm256_set1_epi32(32768);
        const __m256i half = _mm256_set1_epi32(1 << (RNNQ_ACT_FRAC_BITS - 1));
        const __m256i h_min = _mm256_set1_epi32(ok.h_min);
        const __m256i h_max = _mm256_set1_epi32(ok.h_max);
        for (; k + 8 <= n_hid; k += 8) {
            const __m256i zv = RNNQ_LOAD8(z + k);
            const __m256i t = rnnq_requant_hi8(
                _mm256_mullo_epi32(_mm256_sub_epi32(one, zv), RNNQ_LOAD8(n + k)), mult, shift);
            const __m256i u = _mm256_srai_epi32(
                _mm256_add_epi32(_mm256_mullo_epi32(zv, RNNQ_LOAD8(hc + k)), half),
                RNNQ_ACT_FRAC_BITS);
            const __m256i v = _mm256_add_epi32(_mm256_add_epi32(zpv, t), u);
            _mm256_storeu_si256((__m256i *)(void *)(z + k),
                                _mm256_min_epi32(_mm256_max_epi32(v, h_min), h_max));
        }
    }
#endif
    for (; k < n_hid; ++k) {
        z[k] = rnnq_gru_unit_hi(&ok, z[k], n[k], hc[k]);
    }
    rnnq_store_h(z, n_hid, h8, h16);
}

/* The step after the input product on the branch-free path (rnnq_gru_step_*_hi): the scratch
 * and state as in rnnq_gru_rest_general. */
static void rnnq_gru_rest_hi(const rnnq_gru_params *p, int8_t *h8, int16_t *h16, int16_t *scratch)
{
    const int32_t n_in = p->input_size;
    const int32_t n_hid = p->hidden_size;
    const int32_t gate_sh = RNNQ_GATE_FRAC_BITS - RNNQ_TANH_TABLE_STEP_BITS;
    int32_t *ax = (int32_t *)(void *)scratch; /* [3H] w.x, then z, r, candidate n */
    int32_t *ah = ax + 3 * n_hid;             /* [3H] rw.h; its first H: the centred old h */
    int16_t *xbuf = (int16_t *)(void *)(ah + 3 * n_hid);
    int16_t *rh = (int16_t *)(void *)((int8_t *)xbuf + rnnq_xbuf_bytes(n_in, n_hid)); /* [H] */
    int32_t *lo = rnnq_lo_buf(scratch, rnnq_gru_scratch_base(p)); /* [3H] rw_lo's product */
    int32_t *rg = ax + n_hid;
    int32_t *ng = ax + 2 * n_hid;
    int32_t g_lo;
    int32_t g_hi;
    int32_t r;
    int32_t k;

    rnnq_gate_range(p->clip, &g_lo, &g_hi);
    rnnq_recurrent_matvec(p->rw, p->rw_lo, lo, h8, h16, (p->linear_before_reset ? 3 : 2) * n_hid,
                          n_hid, ah, xbuf);
#if RNNQ_HAVE_AVX2_ROWS
    /* The rows' requantisations first (in place; with lbr 1 the candidate rows' two products
     * too, without their sum), then the tables. */
    rnnq_requant_hi_gate_rows(p->bias_x, ax, p->mult_x, p->shift_x, p->bias_h, ah, p->mult_h,
                              p->shift_h, ax, 2 * n_hid, g_lo, g_hi);
    for (r = 0; r < 2 * n_hid; ++r) {
        ax[r] = rnnq_sigmoid_lut(ax[r]);
    }
    if (p->linear_before_reset) {
        const int32_t cand = 2 * n_hid;
        rnnq_requant_hi_rows(p->bias_x + cand, ax + cand, p->mult_x + cand, p->shift_x + cand,
                             ax + cand, n_hid);
        rnnq_requant_hi_rows(p->bias_h + cand, ah + cand, p->mult_h + cand, p->shift_h + cand,
                             ah + cand, n_hid);
        for (k = 0; k < n_hid; ++k) {
            ng[k] = rnnq_gru_cand_lbr_q(ng[k], ah[cand + k], rg[k], g_lo, g_hi);
        }
    } else {
        const int32_t cand = 2 * n_hid;
        rnnq_gru_reset_product(p, rg, h8, h16, rh, ah, xbuf, lo);
        rnnq_requant_hi_gate_rows(p->bias_x + cand, ng, p->mult_x + cand, p->shift_x + cand,
                                  p->bias_h + cand, ah + cand, p->mult_h + cand,
                                  p->shift_h + cand, ng, n_hid, g_lo, g_hi);
        for (k = 0; k < n_hid; ++k) {
            ng[k] = rnnq_tanh_lut(ng[k], gate_sh);
        }
    }
#else
    for (r = 0; r < 2 * n_hid; ++r) {
        ax[r] = rnnq_sigmoid_lut(rnnq_requant_hi_gate(p->bias_x[r] + ax[r], p->mult_x[r],
                                                      p->shift_x[r], p->bias_h[r] + ah[r],
                                                      p->mult_h[r], p->shift_h[r], g_lo, g_hi));
    }
    if (p->linear_before_reset) {
        for (k = 0; k < n_hid; ++k) {
            const int32_t j = 2 * n_hid + k;
            ng[k] = rnnq_gru_cand_lbr_hi(p, j, ax[j], ah[j], rg[k], g_lo, g_hi);
        }
    } else {
        rnnq_gru_reset_product(p, rg, h8, h16, rh, ah, xbuf, lo);
        for (k = 0; k < n_hid; ++k) {
            const int32_t j = 2 * n_hid + k;
            ng[k] = rnnq_tanh_lut(rnnq_requant_hi_gate(p->bias_x[j] + ax[j], p->mult_x[j],
                                                       p->shift_x[j], p->bias_h[j] + ah[j],
                                                       p->mult_h[j], p->shift_h[j], g_lo, g_hi),
                                  gate_sh);
        }
    }
#endif
    rnnq_gru_update_hi(p, ax, ng, ah, h8, h16);
}

/* The step after the input product, general path: scratch holds w.x in its first 3H int32. The
 * state is h8 (int8) or, when h8 is NULL, h16 (int16, zero point 0; state_bits 16). */
static void rnnq_gru_rest_general(const rnnq_gru_params *p, int8_t *h8, int16_t *h16,
                                  int16_t *scratch)
{
    const int32_t n_in = p->input_size;
    const int32_t n_hid = p->hidden_size;
    const int32_t zp = p->out_zp;
    const int32_t clip = p->clip;
    int32_t *ax = (int32_t *)(void *)scratch; /* [3H] w.x, then z, r, candidate n */
    int32_t *ah = ax + 3 * n_hid;             /* [3H] rw.h (candidate with lbr 0: rw.(r * h)) */
    int16_t *xbuf = (int16_t *)(void *)(ah + 3 * n_hid);
    int16_t *rh = (int16_t *)(void *)((int8_t *)xbuf + rnnq_xbuf_bytes(n_in, n_hid)); /* [H] */
    int32_t *lo = rnnq_lo_buf(scratch, rnnq_gru_scratch_base(p)); /* [3H] rw_lo's product */
    int32_t *zg = ax;                         /* [H] z (Q0.15) */
    int32_t *rg = ax + n_hid;                 /* [H] r (Q0.15) */
    int32_t *ng = ax + 2 * n_hid;             /* [H] candidate n (Q0.15) */
    int32_t r;
    int32_t k;

    /* 1. Update and reset gates from x and the old h (rows 0 .. 2H-1); the input side of the
     *    candidate rows too, and their recurrent side when it does not depend on r. */
    rnnq_recurrent_matvec(p->rw, p->rw_lo, lo, h8, h16, (p->linear_before_reset ? 3 : 2) * n_hid,
                          n_hid, ah, xbuf);
    for (r = 0; r < 2 * n_hid; ++r) {
        const int32_t g = rnnq_sat16(rnnq_requant_pair(p->bias_x[r] + ax[r], p->mult_x[r],
                                                       p->shift_x[r], p->bias_h[r] + ah[r],
                                                       p->mult_h[r], p->shift_h[r]));
        ax[r] = rnnq_gate_q15(p->gate_act, p->hs_mult, p->hs_shift, p->hs_offset,
                              rnnq_clip_gate(g, clip));
    }

    /* 2. Candidate rows j = 2H + k. */
    if (p->linear_before_reset) {
        for (k = 0; k < n_hid; ++k) {
            const int32_t j = 2 * n_hid + k;
            const int32_t a_x = rnnq_requant(p->bias_x[j] + ax[j], p->mult_x[j], p->shift_x[j]);
            const int32_t a_h = rnnq_sat16(rnnq_requant(p->bias_h[j] + ah[j], p->mult_h[j],
                                                        p->shift_h[j]));
            /* |r * a_h| <= 32767 * 32768 < 2^30 fits int32. */
            const int32_t pre = rnnq_sat16((int64_t)a_x +
                                           rnnq_rshift_round(rg[k] * a_h, RNNQ_ACT_FRAC_BITS));
            ng[k] = rnnq_tanh_q15(rnnq_clip_gate(pre, clip), RNNQ_GATE_FRAC_BITS);
        }
    } else {
        rnnq_gru_reset_product(p, rg, h8, h16, rh, ah, xbuf, lo);
        for (k = 0; k < n_hid; ++k) {
            const int32_t j = 2 * n_hid + k;
            const int32_t pre = rnnq_sat16(rnnq_requant_pair(
                p->bias_x[j] + ax[j], p->mult_x[j], p->shift_x[j], p->bias_h[j] + ah[j],
                p->mult_h[j], p->shift_h[j]));
            ng[k] = rnnq_tanh_q15(rnnq_clip_gate(pre, clip), RNNQ_GATE_FRAC_BITS);
        }
    }

    /* 3. h = zp + (1 - z) * n + z * (h - zp), each term in h units. */
    for (k = 0; k < n_hid; ++k) {
        const int32_t z = zg[k];
        const int32_t hc = (h8 != NULL ? (int32_t)h8[k] : (int32_t)h16[k]) - zp;
        /* (32768 - z) * n <= 2^15 * 32767 and |z * hc| < 2^30 (int16 h): both fit int32. */
        const int64_t v = (int64_t)zp + rnnq_requant((32768 - z) * ng[k], p->out_mult,
                                                     p->out_shift) +
                          rnnq_rshift_round(z * hc, RNNQ_ACT_FRAC_BITS);
        if (h8 != NULL) {
            h8[k] = rnnq_sat8(v);
        } else {
            h16[k] = (int16_t)rnnq_sat16(v);
        }
    }
}

/* The path of a GRU step: the _hi entry points' condition (rnnq_kernels.h). */
static void rnnq_gru_rest(const rnnq_gru_params *p, int8_t *h8, int16_t *h16, int16_t *scratch)
{
    if (p->requant_hi && p->gate_act == RNNQ_GATE_SIGMOID) {
        rnnq_gru_rest_hi(p, h8, h16, scratch);
    } else {
        rnnq_gru_rest_general(p, h8, h16, scratch);
    }
}

typedef void rnnq_gru_rest_fn(const rnnq_gru_params *p, int8_t *h8, int16_t *h16,
                              int16_t *scratch);

/* One GRU step: the input product of x8 (int8) or, when x8 is NULL, x16, then rest. */
static inline void rnnq_gru_step(const rnnq_gru_params *p, const int8_t *x8, const int16_t *x16,
                                 int8_t *h8, int16_t *h16, int16_t *scratch,
                                 rnnq_gru_rest_fn *rest)
{
    int32_t *ax = (int32_t *)(void *)scratch;
    int16_t *xbuf = (int16_t *)(void *)(ax + 6 * p->hidden_size);
    if (x8 != NULL) {
        rnnq_matvec_s8(p->w, x8, 3 * p->hidden_size, p->input_size, ax, xbuf);
    } else {
        rnnq_matvec_s8_s16(p->w, x16, 3 * p->hidden_size, p->input_size, ax, xbuf);
    }
    rest(p, h8, h16, scratch);
}

void rnnq_gru_step_s8(const rnnq_gru_params *p, const int8_t *x, int8_t *h, int16_t *scratch)
{
    rnnq_gru_step(p, x, NULL, h, NULL, scratch, rnnq_gru_rest);
}

void rnnq_gru_step_x16(const rnnq_gru_params *p, const int16_t *x, int8_t *h, int16_t *scratch)
{
    rnnq_gru_step(p, NULL, x, h, NULL, scratch, rnnq_gru_rest);
}

void rnnq_gru_step_s8_h16(const rnnq_gru_params *p, const int8_t *x, int16_t *h,
                          int16_t *scratch)
{
    rnnq_gru_step(p, x, NULL, NULL, h, scratch, rnnq_gru_rest);
}

void rnnq_gru_step_x16_h16(const rnnq_gru_params *p, const int16_t *x, int16_t *h,
                           int16_t *scratch)
{
    rnnq_gru_step(p, NULL, x, NULL, h, scratch, rnnq_gru_rest);
}

void rnnq_gru_step_s8_hi(const rnnq_gru_params *p, const int8_t *x, int8_t *h, int16_t *scratch)
{
    rnnq_gru_step(p, x, NULL, h, NULL, scratch, rnnq_gru_rest_hi);
}

void rnnq_gru_step_x16_hi(const rnnq_gru_params *p, const int16_t *x, int8_t *h,
                          int16_t *scratch)
{
    rnnq_gru_step(p, NULL, x, h, NULL, scratch, rnnq_gru_rest_hi);
}

void rnnq_gru_step_s8_h16_hi(const rnnq_gru_params *p, const int8_t *x, int16_t *h,
                             int16_t *scratch)
{
    rnnq_gru_step(p, x, NULL, NULL, h, scratch, rnnq_gru_rest_hi);
}

void rnnq_gru_step_x16_h16_hi(const rnnq_gru_params *p, const int16_t *x, int16_t *h,
                              int16_t *scratch)
{
    rnnq_gru_step(p, NULL, x, NULL, h, scratch, rnnq_gru_rest_hi);
}

/* The unit-major GRU step (rnnq_gru_step_*_fused, linear_before_reset 1): rows of w, rw and rowk
 * in the order (z_0, r_0, n_0, z_1, ...), RNNQ_FUSED_UNITS units (3 U rows) at a time, as the
 * LSTM's.
 * Unit j reads its old h[j] before it writes the new one; the products read the packed copy. */

int32_t rnnq_gru_fused_scratch_size(const rnnq_gru_params *p)
{
    return 2 * 3 * RNNQ_FUSED_UNITS * (int32_t)sizeof(int32_t) +
           rnnq_matvec_xbuf_size(p->input_size) + rnnq_matvec_xbuf_size(p->hidden_size);
}

/* The output constants of the unit-major GRU step, in locals. */
typedef struct {
    int32_t out_zp;
    int32_t out_mult;
    int32_t out_s1; /* out_shift - 33 */
} rnnq_gru_fused_k;

/* The blocks of a step after the packing (as rnnq_lstm_fused_blocks; acc: w.x in [0, 3U),
 * rw.h in [3U, 6U)): per block the products, then its units, each from its three rows'
 * products and constants. The same integers as rnnq_gru_rest_hi's gates, rnnq_gru_cand_lbr_hi
 * and rnnq_gru_unit_hi. */
static inline RNNQ_ALWAYS_INLINE void rnnq_gru_fused_blocks(
    const rnnq_gru_params *p, const rnnq_gru_fused_k *k, int x_s8, const int16_t *xp,
    const int16_t *hp, int8_t *h8, int16_t *h16, int h16_state, int32_t *acc, int clipped,
    int32_t clip)
{
    const int32_t n_hid = p->hidden_size;
    const int32_t *q = p->rowk;
    int32_t j0;
    for (j0 = 0; j0 < n_hid; j0 += RNNQ_FUSED_UNITS) {
        const int32_t units = rnnq_fused_block(p->w, p->rw, 3, j0, p->input_size, n_hid, xp,
                                               x_s8, hp, !h16_state, acc,
                                               acc + 3 * RNNQ_FUSED_UNITS);
        const int32_t *const g_end = acc + 3 * units;
        const int32_t *g;
        for (g = acc; g != g_end; g += 3) {
            const int32_t *gh = g + 3 * RNNQ_FUSED_UNITS;
            const int32_t z_t = rnnq_sigmoid_gate(rnnq_fused_gate(&q, g[0], gh[0], clipped, clip));
            const int32_t r_t = rnnq_sigmoid_gate(rnnq_fused_gate(&q, g[1], gh[1], clipped, clip));
            /* The candidate: tanh of clamp(a_x + r * sat16(a_h) / 2^15). */
            const int32_t nx = rnnq_rowk_requant(&q, g[2]);
            const int32_t nh = rnnq_rowk_requant(&q, gh[2]);
            const int32_t n_t = rnnq_tanh_gate(rnnq_fused_clamp(
                nx + ((r_t * RNNQ_SSAT(nh, 16) + (1 << (RNNQ_ACT_FRAC_BITS - 1))) >>
                      RNNQ_ACT_FRAC_BITS),
                clipped, clip));
            /* The new state from the centred old one (out_zp is 0 with an int16 state). */
            const int32_t zn = rnnq_requant_hi1((32768 - z_t) * n_t, k->out_mult, k->out_s1);
            if (h16_state) {
                const int32_t v = zn + ((z_t * *h16 + (1 << (RNNQ_ACT_FRAC_BITS - 1))) >>
                                        RNNQ_ACT_FRAC_BITS);
                *h16++ = (int16_t)RNNQ_SSAT(v, 16);
            } else {
                const int32_t v =
                    k->out_zp + zn +
                    ((z_t * (*h8 - k->out_zp) + (1 << (RNNQ_ACT_FRAC_BITS - 1))) >>
                     RNNQ_ACT_FRAC_BITS);
                *h8++ = (int8_t)RNNQ_SSAT(v, 8);
            }
        }
    }
}

/* The unit-major GRU step for an int8 (h16_state 0: h8) or int16 (h16) state. */
static inline RNNQ_ALWAYS_INLINE void rnnq_gru_step_fused(const rnnq_gru_params *p,
                                                          const int8_t *x8, const int16_t *x16,
                                                          int8_t *h8, int16_t *h16,
                                                          int h16_state, int16_t *scratch)
{
    const int32_t n_in = p->input_size;
    const int32_t clip = p->clip;
    int32_t *acc = (int32_t *)(void *)scratch; /* [3U] w.x, [3U] rw.h of a block */
    int16_t *xp = (int16_t *)(void *)(acc + 6 * RNNQ_FUSED_UNITS); /* x, packed */
    int16_t *hp = xp + rnnq_matvec_xbuf_size(n_in) / 2;           /* the old h, packed */
    rnnq_gru_fused_k k;

    k.out_zp = p->out_zp;
    k.out_mult = p->out_mult;
    k.out_s1 = p->out_shift - RNNQ_HI_SHIFT_MIN;
    rnnq_fused_pack(x8, x16, n_in, h8, h16, p->hidden_size, xp, hp);
    if (clip > 0 && clip < 32768) {
        rnnq_gru_fused_blocks(p, &k, x8 != NULL, xp, hp, h8, h16, h16_state, acc, 1, clip);
    } else {
        rnnq_gru_fused_blocks(p, &k, x8 != NULL, xp, hp, h8, h16, h16_state, acc, 0, 0);
    }
}

static RNNQ_NOINLINE void rnnq_gru_fused_h8(const rnnq_gru_params *p, const int8_t *x8,
                                            const int16_t *x16, int8_t *h, int16_t *scratch)
{
    rnnq_gru_step_fused(p, x8, x16, h, NULL, 0, scratch);
}

static RNNQ_NOINLINE void rnnq_gru_fused_h16(const rnnq_gru_params *p, const int8_t *x8,
                                             const int16_t *x16, int16_t *h, int16_t *scratch)
{
    rnnq_gru_step_fused(p, x8, x16, NULL, h, 1, scratch);
}

void rnnq_gru_step_s8_fused(const rnnq_gru_params *p, const int8_t *x, int8_t *h,
                            int16_t *scratch)
{
    rnnq_gru_fused_h8(p, x, NULL, h, scratch);
}

void rnnq_gru_step_x16_fused(const rnnq_gru_params *p, const int16_t *x, int8_t *h,
                             int16_t *scratch)
{
    rnnq_gru_fused_h8(p, NULL, x, h, scratch);
}

void rnnq_gru_step_s8_h16_fused(const rnnq_gru_params *p, const int8_t *x, int16_t *h,
                                int16_t *scratch)
{
    rnnq_gru_fused_h16(p, x, NULL, h, scratch);
}

void rnnq_gru_step_x16_h16_fused(const rnnq_gru_params *p, const int16_t *x, int16_t *h,
                                 int16_t *scratch)
{
    rnnq_gru_fused_h16(p, NULL, x, h, scratch);
}

static inline int32_t rnnq_rnn_scratch_base(const rnnq_rnn_params *p)
{
    return 2 * p->hidden_size * (int32_t)sizeof(int32_t) +
           rnnq_xbuf_bytes(p->input_size, p->hidden_size);
}

int32_t rnnq_rnn_scratch_size(const rnnq_rnn_params *p)
{
    return rnnq_with_lo(rnnq_rnn_scratch_base(p), p->rw_lo, p->hidden_size);
}

/* The upper bound of a Relu RNN's h: out_zp + clip when a clip keeps it below the type's
 * largest value (127, or 32767 with state_bits 16). */
static int32_t rnnq_relu_max(const rnnq_rnn_params *p)
{
    const int32_t zp = p->out_zp;
    const int32_t clip = p->clip;
    const int32_t top = p->state_bits == 16 ? RNNQ_INT16_MAX : RNNQ_INT8_MAX;
    if (p->act == RNNQ_RNN_RELU && clip > 0 && (int64_t)zp + clip < top) {
        return zp + clip;
    }
    return top;
}

/* Step 2 of rnnq_rnn_rest_hi, branch-free in int32 lanes: the new h (relu
 * bounded by relu_hi) into ax, then into h8, or h16 when h8 is NULL. */
static void rnnq_rnn_update_hi(const rnnq_rnn_params *p, int32_t *restrict ax,
                               const int32_t *restrict ah, int32_t relu_hi, int8_t *h8,
                               int16_t *h16)
{
    const int32_t n_hid = p->hidden_size;
    const int32_t zp = p->out_zp;
    int32_t g_lo;
    int32_t g_hi;
    const int32_t act = p->act;
    const int32_t sh = RNNQ_GATE_FRAC_BITS - RNNQ_TANH_TABLE_STEP_BITS + (act == RNNQ_RNN_SIGMOID);
    const int32_t relu = -(int32_t)(act == RNNQ_RNN_RELU); /* all ones or 0: the selections */
    const int32_t sigm = -(int32_t)(act == RNNQ_RNN_SIGMOID);
    const int32_t out_mult = p->out_mult;
    const int32_t out_shift = act == RNNQ_RNN_RELU ? RNNQ_HI_SHIFT_MIN : p->out_shift; /* unused */
    /* state_bits 16: t in Q0.30 (|t| * 2^15 < 2^30), the new h within int16 */
    const int32_t t_up = h8 == NULL ? (int32_t)1 << RNNQ_ACT_FRAC_BITS : 1;
    const int32_t h_lo = h8 == NULL ? RNNQ_INT16_MIN : RNNQ_INT8_MIN;
    const int32_t h_hi = h8 == NULL ? RNNQ_INT16_MAX : RNNQ_INT8_MAX;
    int32_t r;

    rnnq_gate_range(p->clip, &g_lo, &g_hi);
    for (r = 0; r < n_hid; ++r) {
        ax[r] = rnnq_requant_hi(p->bias_x[r] + ax[r], p->mult_x[r], p->shift_x[r]) +
                rnnq_requant_hi(p->bias_h[r] + ah[r], p->mult_h[r], p->shift_h[r]);
    }
    for (r = 0; r < n_hid; ++r) {
        /* Both forms computed, one kept by mask: no branch in the loop. */
        const int32_t v = ax[r];
        const int32_t y_relu = v < 0 ? zp : (zp + v > relu_hi ? relu_hi : zp + v);
        const int32_t g = rnnq_clamp32(v, g_lo, g_hi);
        /* sigmoid(g) = (1 + tanh(g / 2)) / 2: one lookup either way (rnnq_sigmoid_lut). */
        const int32_t u = rnnq_tanh_lut(g, sh);
        const int32_t s = (32768 + u + 1) >> 1;
        const int32_t t = ((s > RNNQ_INT16_MAX ? RNNQ_INT16_MAX : s) & sigm) | (u & ~sigm);
        const int32_t y = zp + rnnq_requant_hi(t * t_up, out_mult, out_shift);
        ax[r] = (y_relu & relu) | (rnnq_clamp32(y, h_lo, h_hi) & ~relu);
    }
    rnnq_store_h(ax, n_hid, h8, h16);
}

/* The step after the input product on the branch-free path (rnnq_rnn_step_*_hi). */
static void rnnq_rnn_rest_hi(const rnnq_rnn_params *p, int8_t *h8, int16_t *h16,
                             int16_t *scratch)
{
    int32_t *ax = (int32_t *)(void *)scratch; /* [H] w.x */
    int32_t *ah = ax + p->hidden_size;        /* [H] rw.h */
    rnnq_recurrent_matvec(p->rw, p->rw_lo, rnnq_lo_buf(scratch, rnnq_rnn_scratch_base(p)), h8,
                          h16, p->hidden_size, p->hidden_size, ah,
                          (int16_t *)(void *)(ah + p->hidden_size));
    rnnq_rnn_update_hi(p, ax, ah, rnnq_relu_max(p), h8, h16);
}

/* The step after the input product, general path: scratch holds w.x in its first H int32;
 * the state h8, or h16 when h8 is NULL. */
static void rnnq_rnn_rest_general(const rnnq_rnn_params *p, int8_t *h8, int16_t *h16,
                                  int16_t *scratch)
{
    const int32_t n_hid = p->hidden_size;
    const int32_t zp = p->out_zp;
    const int32_t act = p->act;
    const int32_t clip = p->clip;
    int32_t *ax = (int32_t *)(void *)scratch; /* [H] w.x */
    int32_t *ah = ax + n_hid;                 /* [H] rw.h */
    int16_t *xbuf = (int16_t *)(void *)(ah + n_hid);
    const int32_t hi = rnnq_relu_max(p);
    const int32_t t_up = h8 == NULL ? (int32_t)1 << RNNQ_ACT_FRAC_BITS : 1; /* t -> Q0.30 */
    int32_t r;

    /* 1. The recurrent product from the old h. */
    rnnq_recurrent_matvec(p->rw, p->rw_lo, rnnq_lo_buf(scratch, rnnq_rnn_scratch_base(p)), h8,
                          h16, n_hid, n_hid, ah, xbuf);
    /* 2. The new state (h is no longer read), into ax. */
    for (r = 0; r < n_hid; ++r) {
        const int64_t v = rnnq_requant_pair(p->bias_x[r] + ax[r], p->mult_x[r], p->shift_x[r],
                                            p->bias_h[r] + ah[r], p->mult_h[r], p->shift_h[r]);
        if (act == RNNQ_RNN_RELU) {
            const int64_t y = zp + v;
            ax[r] = (int32_t)(y < zp ? zp : (y > hi ? hi : y));
        } else {
            const int32_t g = rnnq_clip_gate(rnnq_sat16(v), clip);
            const int32_t t = act == RNNQ_RNN_SIGMOID ? rnnq_sigmoid_q15(g, RNNQ_GATE_FRAC_BITS)
                                                      : rnnq_tanh_q15(g, RNNQ_GATE_FRAC_BITS);
            const int64_t y = (int64_t)zp + rnnq_requant(t * t_up, p->out_mult,
                                                         p->out_shift);
            ax[r] = h8 != NULL ? rnnq_sat8(y) : rnnq_sat16(y);
        }
    }
    rnnq_store_h(ax, n_hid, h8, h16);
}

/* The path of an RNN step: the _hi entry points' condition (rnnq_kernels.h). */
static void rnnq_rnn_rest(const rnnq_rnn_params *p, int8_t *h8, int16_t *h16, int16_t *scratch)
{
    if (p->requant_hi) {
        rnnq_rnn_rest_hi(p, h8, h16, scratch);
    } else {
        rnnq_rnn_rest_general(p, h8, h16, scratch);
    }
}

typedef void rnnq_rnn_rest_fn(const rnnq_rnn_params *p, int8_t *h8, int16_t *h16,
                              int16_t *scratch);

/* One RNN step: the input product of x8 (int8) or, when x8 is NULL, x16, then rest on the
 * state h8 (int8) or, when h8 is NULL, h16. */
static inline void rnnq_rnn_step(const rnnq_rnn_params *p, const int8_t *x8, const int16_t *x16,
                                 int8_t *h8, int16_t *h16, int16_t *scratch,
                                 rnnq_rnn_rest_fn *rest)
{
    int32_t *ax = (int32_t *)(void *)scratch;
    int16_t *xbuf = (int16_t *)(void *)(ax + 2 * p->hidden_size);
    if (x8 != NULL) {
        rnnq_matvec_s8(p->w, x8, p->hidden_size, p->input_size, ax, xbuf);
    } else {
        rnnq_matvec_s8_s16(p->w, x16, p->hidden_size, p->input_size, ax, xbuf);
    }
    rest(p, h8, h16, scratch);
}

void rnnq_rnn_step_s8(const rnnq_rnn_params *p, const int8_t *x, int8_t *h, int16_t *scratch)
{
    rnnq_rnn_step(p, x, NULL, h, NULL, scratch, rnnq_rnn_rest);
}

void rnnq_rnn_step_x16(const rnnq_rnn_params *p, const int16_t *x, int8_t *h, int16_t *scratch)
{
    rnnq_rnn_step(p, NULL, x, h, NULL, scratch, rnnq_rnn_rest);
}

void rnnq_rnn_step_s8_hi(const rnnq_rnn_params *p, const int8_t *x, int8_t *h, int16_t *scratch)
{
    rnnq_rnn_step(p, x, NULL, h, NULL, scratch, rnnq_rnn_rest_hi);
}

void rnnq_rnn_step_x16_hi(const rnnq_rnn_params *p, const int16_t *x, int8_t *h,
                          int16_t *scratch)
{
    rnnq_rnn_step(p, NULL, x, h, NULL, scratch, rnnq_rnn_rest_hi);
}

void rnnq_rnn_step_s8_h16(const rnnq_rnn_params *p, const int8_t *x, int16_t *h,
                          int16_t *scratch)
{
    rnnq_rnn_step(p, x, NULL, NULL, h, scratch, rnnq_rnn_rest);
}

void rnnq_rnn_step_x16_h16(const rnnq_rnn_params *p, const int16_t *x, int16_t *h,
                           int16_t *scratch)
{
    rnnq_rnn_step(p, NULL, x, NULL, h, scratch, rnnq_rnn_rest);
}

void rnnq_rnn_step_s8_h16_hi(const rnnq_rnn_params *p, const int8_t *x, int16_t *h,
                             int16_t *scratch)
{
    rnnq_rnn_step(p, x, NULL, NULL, h, scratch, rnnq_rnn_rest_hi);
}

void rnnq_rnn_step_x16_h16_hi(const rnnq_rnn_params *p, const int16_t *x, int16_t *h,
                              int16_t *scratch)
{
    rnnq_rnn_step(p, NULL, x, NULL, h, scratch, rnnq_rnn_rest_hi);
}

/* sat8(zp + rnnq_requant_hi(v, mult, shift)) in int32 (|requant_hi| <= 2^29): the element of
 * the requantisations below when shift >= RNNQ_HI_SHIFT_MIN, the usual case. */
static inline int8_t rnnq_requant8_hi(int32_t v, int32_t zp, int32_t mult, int32_t shift)
{
    return (int8_t)rnnq_clamp32(zp + rnnq_requant_hi(v, mult, shift), RNNQ_INT8_MIN,
                                RNNQ_INT8_MAX);
}

void rnnq_requant_s16_s8(const rnnq_requant_params *p, const int16_t *x, int8_t *y, int32_t n)
{
    const int32_t in_zp = p->in_zp;
    int32_t k;
    if (p->shift >= RNNQ_HI_SHIFT_MIN) {
        for (k = 0; k < n; ++k) {
            y[k] = rnnq_requant8_hi((int32_t)x[k] - in_zp, p->out_zp, p->mult, p->shift);
        }
        return;
    }
    for (k = 0; k < n; ++k) {
        y[k] = rnnq_sat8((int64_t)p->out_zp +
                         rnnq_requant((int32_t)x[k] - in_zp, p->mult, p->shift));
    }
}

void rnnq_requant_s32_s8(const rnnq_requant_params *p, const int32_t *x, int8_t *y, int32_t n)
{
    /* An int32 tensor (the LSTM cell) has zero point 0 (p->in_zp is 0). */
    int32_t k;
    if (p->shift >= RNNQ_HI_SHIFT_MIN) {
        for (k = 0; k < n; ++k) {
            y[k] = rnnq_requant8_hi(x[k], p->out_zp, p->mult, p->shift);
        }
        return;
    }
    for (k = 0; k < n; ++k) {
        y[k] = rnnq_sat8((int64_t)p->out_zp + rnnq_requant(x[k], p->mult, p->shift));
    }
}

void rnnq_requant_s32_s16(const rnnq_requant_params *p, const int32_t *x, int16_t *y,
                          int32_t n)
{
    /* The LSTM cell to a 16-bit model output: both zero points are 0. */
    int32_t k;
    for (k = 0; k < n; ++k) {
        y[k] = rnnq_sat16(rnnq_requant(x[k], p->mult, p->shift));
    }
}

void rnnq_requant_s8_s8(const rnnq_requant_params *p, const int8_t *x, int8_t *y, int32_t n)
{
    const int32_t in_zp = p->in_zp;
    int32_t k;
    if (p->shift >= RNNQ_HI_SHIFT_MIN) {
        for (k = 0; k < n; ++k) {
            y[k] = rnnq_requant8_hi((int32_t)x[k] - in_zp, p->out_zp, p->mult, p->shift);
        }
        return;
    }
    for (k = 0; k < n; ++k) {
        y[k] = rnnq_sat8((int64_t)p->out_zp +
                         rnnq_requant((int32_t)x[k] - in_zp, p->mult, p->shift));
    }
}

void rnnq_mean_time_reset(const rnnq_mean_time_params *p, int32_t *acc)
{
    int32_t k;
    for (k = 0; k < 2 * p->size; ++k) {
        acc[k] = 0;
    }
}

/* a / b rounded half away from zero (rnnq_div_round) for int64 a, |a| < 2^63 - 2^31, b >= 1.
 * The 64-bit division runs only when a does not fit int32. */
static int64_t rnnq_div_round64(int64_t a, int32_t b)
{
    uint64_t ua;
    uint64_t q;
    if (a >= INT32_MIN && a <= INT32_MAX) {
        return rnnq_div_round((int32_t)a, b);
    }
    ua = a < 0 ? 0u - (uint64_t)a : (uint64_t)a;
    q = (ua + (uint64_t)b / 2u) / (uint64_t)b;
    return a < 0 ? -(int64_t)q : (int64_t)q; /* q <= |a| < 2^63 */
}

/* floor((a * mult + 2^(shift-1)) / 2^shift) for |a| <= 2^62 without overflowing the int64
 * product: a = hi * 2^31 + lo, 0 <= lo < 2^31, |hi * mult| < 2^62. Exact when the exact
 * result is below 2^60 in magnitude; beyond, +-2^62 may stand for it (shift < 31 only), which
 * changes no mean: divided by n < 2^31 both are far beyond the int8 range. The simulator's
 * _requant_wide is the same. */
static int64_t rnnq_requant_wide(int64_t a, int32_t mult, int32_t shift)
{
    const int64_t hi = a >> 31;
    const int64_t lo = a - hi * ((int64_t)1 << 31);
    const int64_t b = lo * mult + ((int64_t)1 << (shift - 1));
    const int64_t t = hi * mult;
    int64_t lim;
    if (a >= INT32_MIN && a <= INT32_MAX) { /* the usual case: the product fits */
        return rnnq_rshift_round64(a * mult, shift);
    }
    if (shift >= 31) {
        return (t + (b >> 31)) >> (shift - 31);
    }
    lim = (int64_t)1 << (62 - (31 - shift));
    if (t >= lim || t <= -lim) {
        return t > 0 ? ((int64_t)1 << 62) : -((int64_t)1 << 62);
    }
    return t * ((int64_t)1 << (31 - shift)) + (b >> shift);
}

void rnnq_mean_time_step_s8(const rnnq_mean_time_params *p, const int8_t *x, int32_t *acc,
                            int32_t n_steps, int8_t *y)
{
    const int32_t in_zp = p->in_zp;
    const int64_t out_zp = p->out_zp;
    int32_t k;
    for (k = 0; k < p->size; ++k) {
        int32_t *s = acc + 2 * k;
        int64_t a = (int64_t)s[1] * ((int64_t)1 << 31) + s[0];
        if (n_steps == INT32_MAX) { /* the count saturated: take one mean out first */
            a -= rnnq_div_round64(a, n_steps);
        }
        a += (int32_t)x[k] - in_zp;
        s[1] = (int32_t)(a >> 31);
        s[0] = (int32_t)(a - (int64_t)s[1] * ((int64_t)1 << 31));
        y[k] = rnnq_sat8(out_zp + rnnq_div_round64(rnnq_requant_wide(a, p->mult, p->shift),
                                                   n_steps));
    }
}

void rnnq_embed_s8(const rnnq_embed_params *p, int32_t id, int8_t *y)
{
    const int32_t dim = p->dim;
    const int32_t wrapped = id < 0 ? id + p->vocab : id; /* negative: from the end (ONNX) */
    const int32_t row = wrapped < 0 ? 0 : (wrapped >= p->vocab ? p->vocab - 1 : wrapped);
    const int8_t *t = p->table + (size_t)row * (size_t)dim;
    int32_t k;
    for (k = 0; k < dim; ++k) {
        y[k] = t[k];
    }
}

int32_t rnnq_dense_scratch_size(const rnnq_dense_params *p)
{
    return p->out_features * (int32_t)sizeof(int32_t) + rnnq_matvec_xbuf_size(p->in_features);
}

/* A dense output before its clamp: out_zp + requant(bias + w.x) exactly (int64). */
static inline int64_t rnnq_dense_out(const rnnq_dense_params *p, const int32_t *acc, int32_t n)
{
    return (int64_t)p->out_zp + rnnq_requant(p->bias[n] + acc[n], p->mult[n], p->shift[n]);
}

void rnnq_dense_s8(const rnnq_dense_params *p, const int8_t *x, int8_t *y, int32_t rows,
                   int16_t *scratch)
{
    const int32_t n_in = p->in_features;
    const int32_t n_out = p->out_features;
    int32_t *acc = (int32_t *)(void *)scratch; /* [N] w.x */
    int16_t *xbuf = (int16_t *)(void *)(acc + n_out);
    int32_t b;
    int32_t n;
    for (b = 0; b < rows; ++b) {
        rnnq_matvec_s8(p->w, x, n_out, n_in, acc, xbuf);
        for (n = 0; n < n_out; ++n) {
            *y++ = rnnq_clamp8(rnnq_dense_out(p, acc, n), p->act_min, p->act_max);
        }
        x += n_in;
    }
}

void rnnq_dense_s16(const rnnq_dense_params *p, const int16_t *x, int16_t *y, int32_t rows,
                    int16_t *scratch)
{
    const int32_t n_in = p->in_features;
    const int32_t n_out = p->out_features;
    int32_t *acc = (int32_t *)(void *)scratch; /* [N] w.x */
    int16_t *xbuf = (int16_t *)(void *)(acc + n_out);
    int32_t b;
    int32_t n;
    for (b = 0; b < rows; ++b) {
        rnnq_matvec_s8_s16(p->w, x, n_out, n_in, acc, xbuf);
        for (n = 0; n < n_out; ++n) {
            *y++ = rnnq_clamp16(rnnq_dense_out(p, acc, n), p->act_min, p->act_max);
        }
        x += n_in;
    }
}

/* The magnitude of one element before its clamp (sum of up to three squares: < 2^32). */
static inline int64_t rnnq_magnitude_out(const rnnq_magnitude_params *p, uint32_t ssq)
{
    return (int64_t)p->out_zp + rnnq_requant(rnnq_isqrt_round(ssq), p->mult, p->shift);
}

/* (v - zp)^2 as uint32: |v - zp| <= 65535 for int16 v and zp. */
static inline uint32_t rnnq_square_u32(int32_t v, int32_t zp)
{
    const uint32_t d = (uint32_t)(v >= zp ? v - zp : zp - v);
    return d * d;
}

void rnnq_magnitude_s8(const rnnq_magnitude_params *p, const int8_t *a, const int8_t *b,
                       const int8_t *c, int8_t *y, int32_t n)
{
    const int32_t zp = p->in_zp;
    int32_t k;
    for (k = 0; k < n; ++k) {
        uint32_t ssq = rnnq_square_u32(a[k], zp);
        ssq += b != NULL ? rnnq_square_u32(b[k], zp) : 0u;
        ssq += c != NULL ? rnnq_square_u32(c[k], zp) : 0u;
        y[k] = rnnq_clamp8(rnnq_magnitude_out(p, ssq), p->act_min, p->act_max);
    }
}

void rnnq_magnitude_s16(const rnnq_magnitude_params *p, const int16_t *a, const int16_t *b,
                        const int16_t *c, int16_t *y, int32_t n)
{
    const int32_t zp = p->in_zp;
    int32_t k;
    for (k = 0; k < n; ++k) {
        uint32_t ssq = rnnq_square_u32(a[k], zp);
        ssq += b != NULL ? rnnq_square_u32(b[k], zp) : 0u;
        ssq += c != NULL ? rnnq_square_u32(c[k], zp) : 0u;
        y[k] = rnnq_clamp16(rnnq_magnitude_out(p, ssq), p->act_min, p->act_max);
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

void rnnq_take_fill_s8(const int32_t *index, int32_t n, const int8_t *x, int8_t *y, int32_t fill)
{
    int32_t k;
    for (k = 0; k < n; ++k) {
        y[k] = index[k] < 0 ? (int8_t)fill : x[index[k]];
    }
}

void rnnq_take_s16(const int32_t *index, int32_t n, const int16_t *x, int16_t *y)
{
    int32_t k;
    for (k = 0; k < n; ++k) {
        y[k] = x[index[k]];
    }
}

void rnnq_take_fill_s16(const int32_t *index, int32_t n, const int16_t *x, int16_t *y,
                        int32_t fill)
{
    int32_t k;
    for (k = 0; k < n; ++k) {
        y[k] = index[k] < 0 ? (int16_t)fill : x[index[k]];
    }
}

/* SPDX-License-Identifier: MIT-0 */
/* rnnq_matvec_neon.c - rnnq_matvec.h with AArch64 Advanced SIMD (phone-class Armv8-A).
 *
 * Four rows per pass, sixteen columns per iteration, each x vector loaded once for the four
 * rows. With the dot-product extension (__ARM_FEATURE_DOTPROD, Armv8.2-A+dotprod: Cortex-A55,
 * A76 and later) one SDOT adds 16 int8 products into four int32 lanes; without it, SMULL /
 * SMULL2 form int16 products (exact: |w * x| <= 2^14) and SADALP adds their pairs into int32
 * lanes. Eight-column remainders use SMULL + SADALP in both cases, the last < 8 columns are
 * scalar. int16 x (rnnq_matvec_s8_s16): with SDOT, x is split once into two int8 vectors,
 * x = 256 * hi + lo + 128 (hi = x >> 8, lo = (x & 255) - 128), kept in xbuf, and each row's
 * sum is 256 * w.hi + w.lo + 128 * w.1, three SDOTs per 16 columns; without SDOT, weights
 * widened with SXTL, SMLAL / SMLAL2 into int32. All sums are exact (int32 lanes add modulo
 * 2^32 and the true sum fits int32), so the bits equal rnnq_matvec_ref.c.
 *
 * Elsewhere (the host, 32-bit Arm) this file compiles to the portable loops of rnnq_matvec.h.
 */
#define RNNQ_MATVEC_SOURCE
#if defined(__ARM_NEON) && defined(__aarch64__)

#if !defined(__ARM_FEATURE_DOTPROD)
#define RNNQ_MATVEC_PLAIN_PACK
#endif
#include "rnnq_matvec.h"

#include <arm_neon.h>

/* The four lane sums of a0 .. a3 as one vector (row r + i in lane i). */
static inline int32x4_t rnnq_sum4(int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3)
{
    return vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3));
}

/* a + the eight products of w[0..7] and x[0..7], pairwise added into four int32 lanes. */
static inline int32x4_t rnnq_mac8(int32x4_t a, const int8_t *w, int8x8_t x)
{
    return vpadalq_s16(a, vmull_s8(vld1_s8(w), x));
}

/* a + the sixteen products of w[0..15] and x[0..15], in four int32 lanes. */
static inline int32x4_t rnnq_mac16(int32x4_t a, const int8_t *w, int8x16_t x)
{
    const int8x16_t wv = vld1q_s8(w);
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(a, wv, x);
#else
    a = vpadalq_s16(a, vmull_s8(vget_low_s8(wv), vget_low_s8(x)));
    return vpadalq_s16(a, vmull_high_s8(wv, x));
#endif
}

void rnnq_matvec_s8(const int8_t *w, const int8_t *x, int32_t rows, int32_t cols, int32_t *out,
                    int16_t *xbuf)
{
    int32_t r = 0;
    (void)xbuf;
    for (; r + 4 <= rows; r += 4) {
        const int8_t *w0 = w;
        const int8_t *w1 = w0 + cols;
        const int8_t *w2 = w1 + cols;
        const int8_t *w3 = w2 + cols;
        int32x4_t a0 = vdupq_n_s32(0);
        int32x4_t a1 = a0;
        int32x4_t a2 = a0;
        int32x4_t a3 = a0;
        int32x4_t s;
        int32_t k = 0;
        for (; k + 16 <= cols; k += 16) {
            const int8x16_t xv = vld1q_s8(x + k);
            a0 = rnnq_mac16(a0, w0 + k, xv);
            a1 = rnnq_mac16(a1, w1 + k, xv);
            a2 = rnnq_mac16(a2, w2 + k, xv);
            a3 = rnnq_mac16(a3, w3 + k, xv);
        }
        if (k + 8 <= cols) {
            const int8x8_t xv = vld1_s8(x + k);
            a0 = rnnq_mac8(a0, w0 + k, xv);
            a1 = rnnq_mac8(a1, w1 + k, xv);
            a2 = rnnq_mac8(a2, w2 + k, xv);
            a3 = rnnq_mac8(a3, w3 + k, xv);
            k += 8;
        }
        s = rnnq_sum4(a0, a1, a2, a3);
        if (k < cols) {
            int32_t t0 = 0;
            int32_t t1 = 0;
            int32_t t2 = 0;
            int32_t t3 = 0;
            for (; k < cols; ++k) {
                const int32_t xk = x[k];
                t0 += w0[k] * xk;
                t1 += w1[k] * xk;
                t2 += w2[k] * xk;
                t3 += w3[k] * xk;
            }
            {
                const int32_t t[4] = {t0, t1, t2, t3};
                s = vaddq_s32(s, vld1q_s32(t));
            }
        }
        vst1q_s32(out + r, s);
        w += 4 * cols;
    }
    for (; r < rows; ++r) {
        int32x4_t a0 = vdupq_n_s32(0);
        int32_t sum;
        int32_t k = 0;
        for (; k + 16 <= cols; k += 16) {
            a0 = rnnq_mac16(a0, w + k, vld1q_s8(x + k));
        }
        if (k + 8 <= cols) {
            a0 = rnnq_mac8(a0, w + k, vld1_s8(x + k));
            k += 8;
        }
        sum = vaddvq_s32(a0);
        for (; k < cols; ++k) {
            sum += w[k] * (int32_t)x[k];
        }
        out[r] = sum;
        w += cols;
    }
}

/* out = w.x for an int16 x: weights widened with SXTL, SMLAL / SMLAL2 into int32 lanes. */
static void rnnq_matvec_smlal(const int8_t *w, const int16_t *x, int32_t rows, int32_t cols,
                              int32_t *out)
{
    int32_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const int8_t *w0 = w;
        const int8_t *w1 = w0 + cols;
        const int8_t *w2 = w1 + cols;
        const int8_t *w3 = w2 + cols;
        int32x4_t a0 = vdupq_n_s32(0);
        int32x4_t a1 = a0;
        int32x4_t a2 = a0;
        int32x4_t a3 = a0;
        int32x4_t s;
        int32_t k = 0;
        for (; k + 8 <= cols; k += 8) {
            const int16x8_t xv = vld1q_s16(x + k);
            const int16x4_t xl = vget_low_s16(xv);
            int16x8_t wv;
            wv = vmovl_s8(vld1_s8(w0 + k));
            a0 = vmlal_high_s16(vmlal_s16(a0, vget_low_s16(wv), xl), wv, xv);
            wv = vmovl_s8(vld1_s8(w1 + k));
            a1 = vmlal_high_s16(vmlal_s16(a1, vget_low_s16(wv), xl), wv, xv);
            wv = vmovl_s8(vld1_s8(w2 + k));
            a2 = vmlal_high_s16(vmlal_s16(a2, vget_low_s16(wv), xl), wv, xv);
            wv = vmovl_s8(vld1_s8(w3 + k));
            a3 = vmlal_high_s16(vmlal_s16(a3, vget_low_s16(wv), xl), wv, xv);
        }
        s = rnnq_sum4(a0, a1, a2, a3);
        if (k < cols) {
            int32_t t0 = 0;
            int32_t t1 = 0;
            int32_t t2 = 0;
            int32_t t3 = 0;
            for (; k < cols; ++k) {
                const int32_t xk = x[k];
                t0 += w0[k] * xk;
                t1 += w1[k] * xk;
                t2 += w2[k] * xk;
                t3 += w3[k] * xk;
            }
            {
                const int32_t t[4] = {t0, t1, t2, t3};
                s = vaddq_s32(s, vld1q_s32(t));
            }
        }
        vst1q_s32(out + r, s);
        w += 4 * cols;
    }
    for (; r < rows; ++r) {
        int32x4_t a0 = vdupq_n_s32(0);
        int32_t sum;
        int32_t k = 0;
        for (; k + 8 <= cols; k += 8) {
            const int16x8_t xv = vld1q_s16(x + k);
            const int16x8_t wv = vmovl_s8(vld1_s8(w + k));
            a0 = vmlal_high_s16(vmlal_s16(a0, vget_low_s16(wv), vget_low_s16(xv)), wv, xv);
        }
        sum = vaddvq_s32(a0);
        for (; k < cols; ++k) {
            sum += w[k] * (int32_t)x[k];
        }
        out[r] = sum;
        w += cols;
    }
}


#if !defined(__ARM_FEATURE_DOTPROD)
void rnnq_matvec_s8_s16(const int8_t *w, const int16_t *x, int32_t rows, int32_t cols,
                        int32_t *out, int16_t *xbuf)
{
    (void)xbuf;
    rnnq_matvec_smlal(w, x, rows, cols, out);
}

void rnnq_matvec_packed_s16(const int8_t *w, const int16_t *xbuf, int32_t rows, int32_t cols,
                            int32_t *out)
{
    rnnq_matvec_smlal(w, xbuf, rows, cols, out);
}

#else /* SDOT: int16 x as two int8 vectors */

/* Below this many columns an int16 x stays int16 (SMLAL): the split form's per-block cost (three
 * accumulators per row, their combination) outweighs its faster columns (qemu-aarch64 counts
 * of the bench layers: 16 and 40 columns lost, 64 and 128 gained). */
#define RNNQ_SPLIT_MIN 64

/* x [cols] -> hi [cols], lo [cols]: x = 256 * hi + lo + 128. */
static void rnnq_split16(const int16_t *x, int32_t cols, int8_t *hi, int8_t *lo)
{
    int32_t k;
    for (k = 0; k < cols; ++k) {
        hi[k] = (int8_t)(x[k] >> 8);
        lo[k] = (int8_t)((x[k] & 255) - 128);
    }
}

/* out = w.x for x split by rnnq_split16; 256 * w.hi + w.lo + 128 * w.1 per row. */
static void rnnq_matvec_split(const int8_t *w, const int8_t *hi, const int8_t *lo, int32_t rows,
                              int32_t cols, int32_t *out)
{
    const int8x16_t ones = vdupq_n_s8(1);
    const int32_t full = cols & ~(int32_t)15;
    int32_t r = 0;
    for (; r < rows; r += 4) {
        const int32_t n = rows - r < 4 ? rows - r : 4;
        const int8_t *w0 = w;
        const int8_t *w1 = n > 1 ? w0 + cols : w0;
        const int8_t *w2 = n > 2 ? w1 + cols : w0;
        const int8_t *w3 = n > 3 ? w2 + cols : w0;
        int32x4_t h0 = vdupq_n_s32(0);
        int32x4_t h1 = h0, h2 = h0, h3 = h0, l0 = h0, l1 = h0, l2 = h0, l3 = h0;
        int32x4_t c0 = h0, c1 = h0, c2 = h0, c3 = h0;
        int32_t t[4];
        int32_t i;
        int32_t k;
        for (k = 0; k < full; k += 16) {
            const int8x16_t xh = vld1q_s8(hi + k);
            const int8x16_t xl = vld1q_s8(lo + k);
            int8x16_t wv;
            wv = vld1q_s8(w0 + k);
            h0 = vdotq_s32(h0, wv, xh);
            l0 = vdotq_s32(l0, wv, xl);
            c0 = vdotq_s32(c0, wv, ones);
            wv = vld1q_s8(w1 + k);
            h1 = vdotq_s32(h1, wv, xh);
            l1 = vdotq_s32(l1, wv, xl);
            c1 = vdotq_s32(c1, wv, ones);
            wv = vld1q_s8(w2 + k);
            h2 = vdotq_s32(h2, wv, xh);
            l2 = vdotq_s32(l2, wv, xl);
            c2 = vdotq_s32(c2, wv, ones);
            wv = vld1q_s8(w3 + k);
            h3 = vdotq_s32(h3, wv, xh);
            l3 = vdotq_s32(l3, wv, xl);
            c3 = vdotq_s32(c3, wv, ones);
        }
        if (k + 8 <= cols) { /* the 64-bit SDOT's 8 columns in lanes 0 and 1 */
            const int8x8_t xh = vld1_s8(hi + k);
            const int8x8_t xl = vld1_s8(lo + k);
            const int8x8_t one = vdup_n_s8(1);
            const int32x2_t z = vdup_n_s32(0);
            int8x8_t wv;
            wv = vld1_s8(w0 + k);
            h0 = vaddq_s32(h0, vcombine_s32(vdot_s32(z, wv, xh), z));
            l0 = vaddq_s32(l0, vcombine_s32(vdot_s32(z, wv, xl), z));
            c0 = vaddq_s32(c0, vcombine_s32(vdot_s32(z, wv, one), z));
            wv = vld1_s8(w1 + k);
            h1 = vaddq_s32(h1, vcombine_s32(vdot_s32(z, wv, xh), z));
            l1 = vaddq_s32(l1, vcombine_s32(vdot_s32(z, wv, xl), z));
            c1 = vaddq_s32(c1, vcombine_s32(vdot_s32(z, wv, one), z));
            wv = vld1_s8(w2 + k);
            h2 = vaddq_s32(h2, vcombine_s32(vdot_s32(z, wv, xh), z));
            l2 = vaddq_s32(l2, vcombine_s32(vdot_s32(z, wv, xl), z));
            c2 = vaddq_s32(c2, vcombine_s32(vdot_s32(z, wv, one), z));
            wv = vld1_s8(w3 + k);
            h3 = vaddq_s32(h3, vcombine_s32(vdot_s32(z, wv, xh), z));
            l3 = vaddq_s32(l3, vcombine_s32(vdot_s32(z, wv, xl), z));
            c3 = vaddq_s32(c3, vcombine_s32(vdot_s32(z, wv, one), z));
            k += 8;
        }
        vst1q_s32(t, vaddq_s32(vaddq_s32(vshlq_n_s32(rnnq_sum4(h0, h1, h2, h3), 8),
                                         rnnq_sum4(l0, l1, l2, l3)),
                               vshlq_n_s32(rnnq_sum4(c0, c1, c2, c3), 7)));
        for (; k < cols; ++k) {
            const int32_t xk = 256 * hi[k] + lo[k] + 128;
            t[0] += w0[k] * xk;
            t[1] += w1[k] * xk;
            t[2] += w2[k] * xk;
            t[3] += w3[k] * xk;
        }
        for (i = 0; i < n; ++i) {
            out[r + i] = t[i];
        }
        w += n * cols;
    }
}

void rnnq_matvec_s8_s16(const int8_t *w, const int16_t *x, int32_t rows, int32_t cols,
                        int32_t *out, int16_t *xbuf)
{
    if (cols < RNNQ_SPLIT_MIN) {
        rnnq_matvec_smlal(w, x, rows, cols, out);
    } else {
        rnnq_matvec_pack_s16(x, cols, xbuf);
        rnnq_matvec_packed_s16(w, xbuf, rows, cols, out);
    }
}

void rnnq_matvec_pack_s8(const int8_t *x, int32_t cols, int16_t *xbuf)
{
    int8_t *xb = (int8_t *)(void *)xbuf;
    int32_t k;
    for (k = 0; k < cols; ++k) {
        xb[k] = x[k];
    }
}

/* Split from RNNQ_SPLIT_MIN columns on, int16 values below. */
void rnnq_matvec_pack_s16(const int16_t *x, int32_t cols, int16_t *xbuf)
{
    int8_t *hi = (int8_t *)(void *)xbuf;
    int32_t k;
    if (cols < RNNQ_SPLIT_MIN) {
        for (k = 0; k < cols; ++k) {
            xbuf[k] = x[k];
        }
    } else {
        rnnq_split16(x, cols, hi, hi + cols);
    }
}

void rnnq_matvec_packed_s8(const int8_t *w, const int16_t *xbuf, int32_t rows, int32_t cols,
                           int32_t *out)
{
    rnnq_matvec_s8(w, (const int8_t *)(const void *)xbuf, rows, cols, out, 0);
}

void rnnq_matvec_packed_s16(const int8_t *w, const int16_t *xbuf, int32_t rows, int32_t cols,
                            int32_t *out)
{
    const int8_t *hi = (const int8_t *)(const void *)xbuf;
    if (cols < RNNQ_SPLIT_MIN) {
        rnnq_matvec_smlal(w, xbuf, rows, cols, out);
    } else {
        rnnq_matvec_split(w, hi, hi + cols, rows, cols, out);
    }
}
#endif /* __ARM_FEATURE_DOTPROD */

#else /* no AArch64 NEON: the portable loops */

#define RNNQ_MATVEC_PORTABLE
#define RNNQ_MATVEC_PORTABLE_API
#define RNNQ_MATVEC_PLAIN_PACK
#include "rnnq_matvec.h"

#endif

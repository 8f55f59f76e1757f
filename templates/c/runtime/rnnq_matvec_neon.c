/* SPDX-License-Identifier: MIT-0 */
/* rnnq_matvec_neon.c - rnnq_matvec.h with AArch64 Advanced SIMD (phone-class Armv8-A).
 *
 * Four rows per pass, sixteen columns per iteration, each x vector loaded once for the four
 * rows. With the dot-product extension (__ARM_FEATURE_DOTPROD, Armv8.2-A+dotprod: Cortex-A55,
 * A76 and later) one SDOT adds 16 int8 products into four int32 lanes; without it, SMULL /
 * SMULL2 form int16 products (exact: |w * x| <= 2^14) and SADALP adds their pairs into int32
 * lanes. Eight-column remainders use SMULL + SADALP in both cases, the last < 8 columns are
 * scalar. int16 x (rnnq_matvec_s8_s16): weights widened with SXTL, SMLAL / SMLAL2 into int32.
 * All sums are exact, so the bits equal rnnq_matvec_ref.c. xbuf is not used.
 *
 * Elsewhere (the host, 32-bit Arm) this file compiles to the portable loops of rnnq_matvec.h.
 */
#if defined(__ARM_NEON) && defined(__aarch64__)

#define RNNQ_MATVEC_PLAIN_PACK
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

int32_t rnnq_matvec_xbuf_size(int32_t cols)
{
    return RNNQ_MATVEC_XBUF_BYTES(cols);
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

void rnnq_matvec_s8_s16(const int8_t *w, const int16_t *x, int32_t rows, int32_t cols,
                        int32_t *out, int16_t *xbuf)
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

void rnnq_matvec_packed_s16(const int8_t *w, const int16_t *xbuf, int32_t rows, int32_t cols,
                            int32_t *out)
{
    rnnq_matvec_s8_s16(w, xbuf, rows, cols, out, 0); /* it ignores its xbuf */
}

#else /* no AArch64 NEON: the portable loops */

#define RNNQ_MATVEC_PORTABLE
#define RNNQ_MATVEC_PORTABLE_API
#define RNNQ_MATVEC_PLAIN_PACK
#include "rnnq_matvec.h"

#endif

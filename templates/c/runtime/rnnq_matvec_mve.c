/* SPDX-License-Identifier: MIT-0 */
/* rnnq_matvec_mve.c - rnnq_matvec.h for Armv8.1-M with the M-profile Vector Extension (Helium,
 * e.g. Cortex-M55, -mfloat-abi=softfp or hard: MVE uses the FP register file), row-major
 * weights. Four rows per pass share each loaded vector of x:
 *   int8 x:  VMLADAVA.S8 adds the 16 products of 16 int8 weights and 16 int8 x to a row's
 *            int32 sum;
 *   int16 x: VLDRB.S16 loads 8 weights widened to int16 lanes, VMLADAVA.S16 adds their 8
 *            products with 8 int16 x.
 * The last, partial vector of a row is loaded under a tail predicate (VCTP): inactive lanes
 * read nothing and are zero. The sums are exact int32 sums (rnnq_matvec.h's preconditions), so
 * the bits equal every other variant's. Portable code when __ARM_FEATURE_MVE lacks integer
 * MVE. */
#define RNNQ_MATVEC_SOURCE
#include <stdint.h>

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)

#include "rnnq_matvec.h"

#include <arm_mve.h>

/* out = w.x, four rows per pass (a last pass of fewer rows repeats row 0 in the unused
 * accumulators, whose sums are discarded): whole vectors of N lanes unpredicated, then the
 * tail under its predicate. VT: the x vector type; LOADW / LOADX and their _Z forms: the
 * (predicated) loads of w and x; CTP: the tail predicate; MLA: the multiply-accumulate across
 * lanes into a row's int32 sum. */
#define RNNQ_MVE_MATVEC(N, VT, LOADW, LOADX, LOADW_Z, LOADX_Z, CTP, MLA)                     \
    do {                                                                                     \
        const int32_t full = cols & ~(int32_t)((N) - 1);                                     \
        int32_t r;                                                                           \
        for (r = 0; r < rows; r += 4) {                                                      \
            const int32_t n = rows - r < 4 ? rows - r : 4;                                   \
            const int8_t *w0 = w;                                                            \
            const int8_t *w1 = n > 1 ? w0 + cols : w0;                                       \
            const int8_t *w2 = n > 2 ? w1 + cols : w0;                                       \
            const int8_t *w3 = n > 3 ? w2 + cols : w0;                                       \
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                          \
            int32_t k;                                                                       \
            for (k = 0; k < full; k += (N)) {                                                \
                const VT xv = LOADX(x + k);                                                  \
                a0 = MLA(a0, LOADW(w0 + k), xv);                                         \
                a1 = MLA(a1, LOADW(w1 + k), xv);                                         \
                a2 = MLA(a2, LOADW(w2 + k), xv);                                         \
                a3 = MLA(a3, LOADW(w3 + k), xv);                                         \
            }                                                                                \
            if (full < cols) {                                                               \
                const mve_pred16_t p = CTP((uint32_t)(cols - full));                         \
                const VT xv = LOADX_Z(x + full, p);                                          \
                a0 = MLA(a0, LOADW_Z(w0 + full, p), xv);                                 \
                a1 = MLA(a1, LOADW_Z(w1 + full, p), xv);                                 \
                a2 = MLA(a2, LOADW_Z(w2 + full, p), xv);                                 \
                a3 = MLA(a3, LOADW_Z(w3 + full, p), xv);                                 \
            }                                                                                \
            out[r] = a0;                                                                     \
            if (n > 1) {                                                                     \
                out[r + 1] = a1;                                                             \
            }                                                                                \
            if (n > 2) {                                                                     \
                out[r + 2] = a2;                                                             \
            }                                                                                \
            if (n > 3) {                                                                     \
                out[r + 3] = a3;                                                             \
            }                                                                                \
            w += n * cols;                                                                   \
        }                                                                                    \
    } while (0)

void rnnq_matvec_s8(const int8_t *w, const int8_t *x, int32_t rows, int32_t cols, int32_t *out,
                    int16_t *xbuf)
{
    (void)xbuf;
    RNNQ_MVE_MATVEC(16, int8x16_t, vld1q_s8, vld1q_s8, vldrbq_z_s8, vldrbq_z_s8, vctp8q,
                    vmladavaq_s8);
}

void rnnq_matvec_s8_s16(const int8_t *w, const int16_t *x, int32_t rows, int32_t cols,
                        int32_t *out, int16_t *xbuf)
{
    (void)xbuf;
    RNNQ_MVE_MATVEC(8, int16x8_t, vldrbq_s16, vld1q_s16, vldrbq_z_s16, vldrhq_z_s16, vctp16q,
                    vmladavaq_s16);
}

/* The packed form: the values themselves, int8 as int8 (16 lanes per vector). */
void rnnq_matvec_pack_s8(const int8_t *x, int32_t cols, int16_t *xbuf)
{
    int8_t *xb = (int8_t *)(void *)xbuf;
    int32_t k;
    for (k = 0; k < cols; ++k) {
        xb[k] = x[k];
    }
}

void rnnq_matvec_pack_s16(const int16_t *x, int32_t cols, int16_t *xbuf)
{
    int32_t k;
    for (k = 0; k < cols; ++k) {
        xbuf[k] = x[k];
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
    rnnq_matvec_s8_s16(w, xbuf, rows, cols, out, 0); /* they ignore their xbuf */
}

#else /* no integer MVE: the portable loops */

#define RNNQ_MATVEC_PORTABLE
#define RNNQ_MATVEC_PORTABLE_API
#define RNNQ_MATVEC_PLAIN_PACK
#include "rnnq_matvec.h"

#endif

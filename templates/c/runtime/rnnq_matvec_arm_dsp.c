/* SPDX-License-Identifier: MIT-0 */
/* rnnq_matvec_arm_dsp.c - rnnq_matvec.h with the Arm DSP extension (Cortex-M4/M7/M33/M55,
 * ACLE <arm_acle.h>): SXTB16 widens two int8 weights to int16 lanes in one instruction, SMLAD
 * adds two 16 x 16 products to an int32 accumulator in one instruction.
 *
 * The weights are NOT row-major: they are in the interleaved layout described in
 * rnnq_matvec.h (rnnq/backends/layouts.py, emitted offline), four rows' weights of each group
 * of four columns in 16 consecutive bytes.
 *
 * Per call, x is widened once into xbuf in the lane order SXTB16 gives the weights: for every
 * group of four columns, one word (x0, x2) and one word (x1, x3) (low half first). Then four
 * rows are computed per pass, so that each pair of xbuf words loaded serves four rows; per
 * group: the 16 weights (one LDM when word-aligned), per row SXTB16 and SXTB16 ROR #8, two
 * SMLADs. Columns past the last full group (cols % 4) and rows past the last full block of four
 * are done one by one. w may start at any address: the cores with this extension load
 * unaligned words in hardware (memcpy below becomes one LDR); LDM is used only when w is
 * word-aligned. xbuf holds only int32 words (the tail columns as int16 pairs), so it is never
 * accessed as two different types.
 *
 * Without __ARM_FEATURE_DSP (the host, Cortex-M0/M0+/M3, Armv8-M Baseline), and on big-endian
 * Arm (the lane order of the int16 x pairs assumes little-endian words), this file compiles to
 * portable loops over the same interleaved layout (the results equal rnnq_matvec_ref.c's on
 * row-major weights).
 */
#define RNNQ_MATVEC_SOURCE
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(__ARM_BIG_ENDIAN)

#define RNNQ_MATVEC_PACKED_API
#include "rnnq_matvec.h"

#include <arm_acle.h>
#include <string.h>

/* A word from any address (one LDR on cores that load unaligned words). */
static inline int32_t rnnq_ld32(const void *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Bytes 1 and 3 of v sign-extended into the two int16 lanes: SXTB16 with ROR #8. ACLE has no
 * rotated form and GCC 12 does not fold a separate rotate into SXTB16, hence the asm. */
static inline int32_t rnnq_sxtb16_ror8(int32_t v)
{
#if defined(__GNUC__)
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
#else
    const uint32_t u = (uint32_t)v;
    return __sxtb16((int32_t)((u >> 8) | (u << 24)));
#endif
}

/* The tail columns (n = cols % 4 values t0.. t2, any of them absent) as int16 pairs:
 * xw[0] = (t0, t1), xw[1] = (t2, 0). */
static inline void rnnq_pack_tail(int32_t *xw, int32_t t0, int32_t t1, int32_t t2, int32_t n)
{
    if (n > 0) {
        xw[0] = (int32_t)(((uint32_t)t0 & 0xFFFFu) | ((uint32_t)t1 << 16));
    }
    if (n > 2) {
        xw[1] = (int32_t)((uint32_t)t2 & 0xFFFFu);
    }
}

/* Lane 0 and lane 1 of an int16 pair word (arithmetic shifts, as rnnq_fixedpoint.h requires). */
static inline int32_t rnnq_lo16(int32_t v)
{
    return (int32_t)((uint32_t)v << 16) >> 16;
}

static inline int32_t rnnq_hi16(int32_t v)
{
    return v >> 16;
}

/* The inner loops over one block of four rows in assembly (GCC and clang, Thumb-2 with
 * unaligned loads): GCC 12 spills accumulators or pointers in the same loops written with ACLE
 * (the C path below). Per group of four columns: LDRD of the two xbuf words, the block's 16
 * weights (four rows of four, consecutive in the interleaved layout), and per row SXTB16,
 * SXTB16 ROR #8 and two SMLADs.
 * - Word-aligned weights: one LDM of four words into r8-r11 (fixed registers, as LDM fills
 *   its list in ascending register order): 18 instructions per 16 MACs.
 * - Otherwise (a block may start at any address: the GRU's second recurrent block starts at
 *   2H * H): one LDR per row, 20 instructions per 16 MACs.
 * Thirteen registers for the LDM form: r0-r6, r12 and lr besides r8-r11 at -O0 (r7 is the
 * frame pointer there). clang's bare-metal default is strict alignment (no
 * __ARM_FEATURE_UNALIGNED): it takes the C path unless given -munaligned-access. */
#if defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FEATURE_UNALIGNED)
#define RNNQ_DSP_ASM 1
#define RNNQ_DSP_MAC(acc, v)                                                                     \
    "sxtb16 %[t], %[" v "]\n\t"                                                                 \
    "smlad %[" acc "], %[t], %[x02], %[" acc "]\n\t"                                            \
    "sxtb16 %[t], %[" v "], ror #8\n\t"                                                         \
    "smlad %[" acc "], %[t], %[x13], %[" acc "]\n\t"
#define RNNQ_DSP_GROUP_LDM                                                                       \
    "ldm %[w]!, {%[v0], %[v1], %[v2], %[v3]}\n\t"                                               \
    "ldrd %[x02], %[x13], [%[xp]], #8\n\t" RNNQ_DSP_MAC("a0", "v0") RNNQ_DSP_MAC("a1", "v1")    \
        RNNQ_DSP_MAC("a2", "v2") RNNQ_DSP_MAC("a3", "v3")
#define RNNQ_DSP_OPERANDS_LDM                                                                    \
    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(wp), [xp] "+r"(xp), \
      [x02] "=&r"(x02), [x13] "=&r"(x13), [t] "=&r"(t), [v0] "=&r"(v0), [v1] "=&r"(v1),      \
      [v2] "=&r"(v2), [v3] "=&r"(v3)                                                           \
    :                                                                                            \
    : "memory"
#define RNNQ_DSP_ROW_LDR(acc)                                                                    \
    "ldr %[v], [%[w]], #4\n\t"                                                                  \
    "sxtb16 %[t], %[v]\n\t"                                                                     \
    "sxtb16 %[v], %[v], ror #8\n\t"                                                             \
    "smlad %[" acc "], %[t], %[x02], %[" acc "]\n\t"                                            \
    "smlad %[" acc "], %[v], %[x13], %[" acc "]\n\t"
#define RNNQ_DSP_GROUP_LDR                                                                       \
    "ldrd %[x02], %[x13], [%[xp]], #8\n\t" RNNQ_DSP_ROW_LDR("a0") RNNQ_DSP_ROW_LDR("a1")        \
        RNNQ_DSP_ROW_LDR("a2") RNNQ_DSP_ROW_LDR("a3")
#define RNNQ_DSP_OPERANDS_LDR                                                                    \
    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(wp), [xp] "+r"(xp), \
      [x02] "=&r"(x02), [x13] "=&r"(x13), [v] "=&r"(v), [t] "=&r"(t)                          \
    :                                                                                            \
    : "memory"
#else
#define RNNQ_DSP_ASM 0
#endif

/* The shared row loops over a widened x: xw holds cols / 4 groups of two words, then the tail
 * words of rnnq_pack_tail. w is in the interleaved layout (rnnq_matvec.h). */
static void rnnq_matvec_dsp(const int8_t *w, const int32_t *xw, int32_t rows, int32_t cols,
                            int32_t *out)
{
    const int32_t groups = cols >> 2;
    const int32_t tail = cols & 3;
    const int32_t *xt = xw + 2 * groups;
    int32_t t0 = 0;
    int32_t t1 = 0;
    int32_t t2 = 0;
    int32_t r = 0;
#if RNNQ_DSP_ASM
    /* Every block starts 4 * cols bytes after the last: all are aligned or none. */
    const int aligned = ((uintptr_t)(const void *)w & 3u) == 0;
#endif
    if (tail > 0) {
        t0 = rnnq_lo16(xt[0]);
        t1 = rnnq_hi16(xt[0]);
    }
    if (tail > 2) {
        t2 = rnnq_lo16(xt[1]);
    }
    for (; r + 4 <= rows; r += 4) {
        /* The block's groups of 16 weights, then the four rows' tails. */
        const int8_t *wp = w;
        const int32_t *xp = xw;
        int32_t a0 = 0;
        int32_t a1 = 0;
        int32_t a2 = 0;
        int32_t a3 = 0;
        int32_t g = groups;
#if RNNQ_DSP_ASM
        {
            int32_t x02;
            int32_t x13;
            int32_t t;
            if (aligned) {
                register int32_t v0 __asm__("r8");
                register int32_t v1 __asm__("r9");
                register int32_t v2 __asm__("r10");
                register int32_t v3 __asm__("r11");
                for (; g >= 4; g -= 4) {
                    __asm__(RNNQ_DSP_GROUP_LDM RNNQ_DSP_GROUP_LDM RNNQ_DSP_GROUP_LDM
                                RNNQ_DSP_GROUP_LDM RNNQ_DSP_OPERANDS_LDM);
                }
                if (g >= 2) {
                    __asm__(RNNQ_DSP_GROUP_LDM RNNQ_DSP_GROUP_LDM RNNQ_DSP_OPERANDS_LDM);
                    g -= 2;
                }
                if (g > 0) {
                    __asm__(RNNQ_DSP_GROUP_LDM RNNQ_DSP_OPERANDS_LDM);
                }
            } else {
                int32_t v;
                for (; g >= 2; g -= 2) {
                    __asm__(RNNQ_DSP_GROUP_LDR RNNQ_DSP_GROUP_LDR RNNQ_DSP_OPERANDS_LDR);
                }
                if (g > 0) {
                    __asm__(RNNQ_DSP_GROUP_LDR RNNQ_DSP_OPERANDS_LDR);
                }
            }
        }
#else
        for (; g > 0; --g) {
            const int32_t x02 = xp[0];
            const int32_t x13 = xp[1];
            int32_t v;
            xp += 2;
            v = rnnq_ld32(wp);
            a0 = __smlad(__sxtb16(v), x02, a0);
            a0 = __smlad(rnnq_sxtb16_ror8(v), x13, a0);
            v = rnnq_ld32(wp + 4);
            a1 = __smlad(__sxtb16(v), x02, a1);
            a1 = __smlad(rnnq_sxtb16_ror8(v), x13, a1);
            v = rnnq_ld32(wp + 8);
            a2 = __smlad(__sxtb16(v), x02, a2);
            a2 = __smlad(rnnq_sxtb16_ror8(v), x13, a2);
            v = rnnq_ld32(wp + 12);
            a3 = __smlad(__sxtb16(v), x02, a3);
            a3 = __smlad(rnnq_sxtb16_ror8(v), x13, a3);
            wp += 16;
        }
#endif
        if (tail > 0) {
            const int8_t *w1 = wp + tail;
            const int8_t *w2 = w1 + tail;
            const int8_t *w3 = w2 + tail;
            a0 += wp[0] * t0;
            a1 += w1[0] * t0;
            a2 += w2[0] * t0;
            a3 += w3[0] * t0;
            if (tail > 1) {
                a0 += wp[1] * t1;
                a1 += w1[1] * t1;
                a2 += w2[1] * t1;
                a3 += w3[1] * t1;
                if (tail > 2) {
                    a0 += wp[2] * t2;
                    a1 += w1[2] * t2;
                    a2 += w2[2] * t2;
                    a3 += w3[2] * t2;
                }
            }
        }
        out[r] = a0;
        out[r + 1] = a1;
        out[r + 2] = a2;
        out[r + 3] = a3;
        w += 4 * cols;
    }
    /* The rows past the last block of four, row-major. */
    for (; r < rows; ++r) {
        const int8_t *w0 = w;
        const int32_t *xp = xw;
        int32_t a0 = 0;
        int32_t g;
        for (g = 0; g < groups; ++g) {
            const int32_t v = rnnq_ld32(w0);
            w0 += 4;
            a0 = __smlad(__sxtb16(v), xp[0], a0);
            a0 = __smlad(rnnq_sxtb16_ror8(v), xp[1], a0);
            xp += 2;
        }
        if (tail > 0) {
            a0 += w0[0] * t0;
            if (tail > 1) {
                a0 += w0[1] * t1;
                if (tail > 2) {
                    a0 += w0[2] * t2;
                }
            }
        }
        out[r] = a0;
        w += cols;
    }
}

void rnnq_matvec_pack_s8(const int8_t *x, int32_t cols, int16_t *xbuf)
{
    int32_t *xw = (int32_t *)(void *)xbuf;
    const int32_t groups = cols >> 2;
    const int32_t tail = cols & 3;
    int32_t g;
    for (g = 0; g < groups; ++g) {
        const int32_t v = rnnq_ld32(x + 4 * g);
        xw[2 * g] = __sxtb16(v);
        xw[2 * g + 1] = rnnq_sxtb16_ror8(v);
    }
    x += 4 * groups;
    rnnq_pack_tail(xw + 2 * groups, tail > 0 ? x[0] : 0, tail > 1 ? x[1] : 0,
                   tail > 2 ? x[2] : 0, tail);
}

void rnnq_matvec_pack_s16(const int16_t *x, int32_t cols, int16_t *xbuf)
{
    int32_t *xw = (int32_t *)(void *)xbuf;
    const int32_t groups = cols >> 2;
    const int32_t tail = cols & 3;
    int32_t g;
    for (g = 0; g < groups; ++g) {
        /* (x0, x1), (x2, x3) -> (x0, x2), (x1, x3): PKHBT, PKHTB. */
        const uint32_t lo = (uint32_t)rnnq_ld32(x + 4 * g);
        const uint32_t hi = (uint32_t)rnnq_ld32(x + 4 * g + 2);
        xw[2 * g] = (int32_t)((lo & 0xFFFFu) | (hi << 16));
        xw[2 * g + 1] = (int32_t)((lo >> 16) | (hi & 0xFFFF0000u));
    }
    x += 4 * groups;
    rnnq_pack_tail(xw + 2 * groups, tail > 0 ? x[0] : 0, tail > 1 ? x[1] : 0,
                   tail > 2 ? x[2] : 0, tail);
}

void rnnq_matvec_packed_s16(const int8_t *w, const int16_t *xbuf, int32_t rows, int32_t cols,
                            int32_t *out)
{
    rnnq_matvec_dsp(w, (const int32_t *)(const void *)xbuf, rows, cols, out);
}

#else /* no DSP extension (or big-endian): portable loops over the same interleaved layout */

#define RNNQ_MATVEC_PLAIN_PACK
#include "rnnq_matvec.h"

/* out = w.x for an int16 x, w interleaved (rnnq_matvec.h): four rows per block, four columns
 * per group, then the four rows' tails; the rows past the last block row-major. */
static void rnnq_matvec_il_portable(const int8_t *w, const int16_t *x, int32_t rows,
                                    int32_t cols, int32_t *out)
{
    const int32_t full = cols & ~(int32_t)3;
    const int32_t tail = cols & 3;
    int32_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        int32_t a[4] = {0, 0, 0, 0};
        int32_t i;
        int32_t k;
        for (k = 0; k < full; k += 4) {
            const int32_t x0 = x[k];
            const int32_t x1 = x[k + 1];
            const int32_t x2 = x[k + 2];
            const int32_t x3 = x[k + 3];
            for (i = 0; i < 4; ++i) {
                a[i] += w[0] * x0 + w[1] * x1 + w[2] * x2 + w[3] * x3;
                w += 4;
            }
        }
        for (i = 0; i < 4; ++i) {
            for (k = 0; k < tail; ++k) {
                a[i] += w[k] * (int32_t)x[full + k];
            }
            w += tail;
            out[r + i] = a[i];
        }
    }
    for (; r < rows; ++r) {
        int32_t a0 = 0;
        int32_t k;
        for (k = 0; k < cols; ++k) {
            a0 += w[k] * (int32_t)x[k];
        }
        out[r] = a0;
        w += cols;
    }
}

void rnnq_matvec_s8(const int8_t *w, const int8_t *x, int32_t rows, int32_t cols, int32_t *out,
                    int16_t *xbuf)
{
    rnnq_matvec_widen(x, xbuf, cols);
    rnnq_matvec_il_portable(w, xbuf, rows, cols, out);
}

void rnnq_matvec_s8_s16(const int8_t *w, const int16_t *x, int32_t rows, int32_t cols,
                        int32_t *out, int16_t *xbuf)
{
    (void)xbuf;
    rnnq_matvec_il_portable(w, x, rows, cols, out);
}

void rnnq_matvec_packed_s16(const int8_t *w, const int16_t *xbuf, int32_t rows, int32_t cols,
                            int32_t *out)
{
    rnnq_matvec_il_portable(w, xbuf, rows, cols, out);
}

#endif

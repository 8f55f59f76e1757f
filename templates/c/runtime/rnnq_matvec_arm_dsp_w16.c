/* SPDX-License-Identifier: MIT-0 */
/* rnnq_matvec_arm_dsp_w16.c - rnnq_matvec.h with the Arm DSP extension on weights the compiler
 * stored pre-widened to int16 (twice the weight flash of arm_dsp, no SXTB16 at run time): each
 * SMLAD takes a weight word as it is loaded. The compiler picks this variant instead of arm_dsp
 * when the target names it (kernels.matvec_wide) and the int16 weights fit the flash budget
 * (rnnq compile --weights).
 *
 * The weights are int32 words, each two int16 weights of consecutive columns (low half first),
 * in the "wide" layout of rnnq/backends/c/layouts.py: with P = ceil(cols / 2) pairs per row
 * (an odd row padded with a zero weight),
 * - for each block of four rows r .. r + 3: for each group of two pairs (four columns), the
 *   eight words row r pair 2g, row r pair 2g + 1, row r + 1 pair 2g, ..., row r + 3 pair 2g + 1;
 *   when P is odd, the last pair of rows r, r + 1, r + 2, r + 3;
 * - the rows past the last full block (rows % 4), P words each.
 * Row r starts at word r * P (rnnq_matvec_rows), so blocks of rows laid out on their own
 * follow each other. The arrays are int32_t (the params hold them as const int8_t *), so every
 * block is word-aligned and LDM may load it.
 *
 * x is packed as int16 pairs in column order (x0, x1), (x2, x3), ..., a zero after an odd last
 * column: P words. Four rows are computed per pass: per group of four columns one LDRD of x,
 * two LDMs of four weight words and eight SMLADs, 11 instructions per 16 MACs.
 *
 * Without __ARM_FEATURE_DSP (the host, other cores) the same layout runs in portable C, with
 * the same results as rnnq_matvec_ref.c on row-major int8 weights.
 */
#define RNNQ_MATVEC_SOURCE
#define RNNQ_MATVEC_WIDE
#define RNNQ_MATVEC_PACKED_API
#include "rnnq_matvec.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(__ARM_BIG_ENDIAN)
#include <arm_acle.h>
#define RNNQ_W16_DSP 1
#else
#define RNNQ_W16_DSP 0
#endif

/* a0 += lo(w) * lo(x) + hi(w) * hi(x): SMLAD, or its definition. */
static inline int32_t rnnq_w16_dot2(int32_t w, int32_t x, int32_t a)
{
#if RNNQ_W16_DSP
    return __smlad(w, x, a);
#else
    const int32_t wl = (int32_t)((uint32_t)w << 16) >> 16;
    const int32_t xl = (int32_t)((uint32_t)x << 16) >> 16;
    return a + wl * xl + (w >> 16) * (x >> 16);
#endif
}

/* clang materialises the address of every memory operand in a register, and this loop leaves
 * it none: clang compiles the C loops (ACLE). */
#if RNNQ_W16_DSP && defined(__GNUC__) && !defined(__clang__) && defined(__thumb2__)
#define RNNQ_W16_ASM 1
#else
#define RNNQ_W16_ASM 0
#endif

#if RNNQ_W16_ASM
/* The blocks of four rows of rnnq_matvec_w16 in one assembly loop (GCC, Thumb-2 with DSP), so that nothing is spilled around the inner loops: fixed registers r0-r3 (the four
 * sums, stored by one STM), r4 (w), r5 (x), r6 and r12 (an x pair), r8-r11 (weight words),
 * lr (counters); not r7, the frame pointer at -O0. The loop counts and pointers live in the
 * job struct on the stack (memory operands, sp- or r7-relative). Per block: the groups of
 * four columns by fours, then one by one, then the last pair when P is odd. */
typedef struct {
    const int32_t *w;
    int32_t *out;
    int32_t blocks; /* rows / 4 (> 0) */
    const int32_t *xw;
    int32_t fours;  /* groups / 4 */
    int32_t more;   /* ones | odd: whether either is not 0 */
    int32_t ones;   /* groups % 4 */
    int32_t odd;    /* P % 2 */
} rnnq_w16_job;

#define RNNQ_W16_GROUP_R                                                                         \
    "ldrd r6, r12, [r5], #8\n\t"                                                               \
    "ldm r4!, {r8, r9, r10, r11}\n\t"                                                           \
    "smlad r0, r8, r6, r0\n\t"                                                                  \
    "smlad r0, r9, r12, r0\n\t"                                                                 \
    "smlad r1, r10, r6, r1\n\t"                                                                 \
    "smlad r1, r11, r12, r1\n\t"                                                                \
    "ldm r4!, {r8, r9, r10, r11}\n\t"                                                           \
    "smlad r2, r8, r6, r2\n\t"                                                                  \
    "smlad r2, r9, r12, r2\n\t"                                                                 \
    "smlad r3, r10, r6, r3\n\t"                                                                 \
    "smlad r3, r11, r12, r3\n\t"

static void rnnq_w16_blocks(rnnq_w16_job *j)
{
    rnnq_w16_job k = *j; /* a local copy: its members are addressed off sp (or r7) */
    __asm__ volatile(
        "ldr r4, %[w]\n\t"
        "1:\n\t"
        "movs r0, #0\n\t"
        "movs r1, #0\n\t"
        "movs r2, #0\n\t"
        "movs r3, #0\n\t"
        "ldr r5, %[xw]\n\t"
        "ldr lr, %[fours]\n\t"
        "cmp lr, #0\n\t"
        "beq 3f\n\t"
        "2:\n\t" RNNQ_W16_GROUP_R RNNQ_W16_GROUP_R RNNQ_W16_GROUP_R RNNQ_W16_GROUP_R
        "subs lr, lr, #1\n\t"
        "bne 2b\n\t"
        "3:\n\t"
        "ldr lr, %[more]\n\t"
        "cmp lr, #0\n\t"
        "beq 6f\n\t"
        "ldr lr, %[ones]\n\t"
        "cmp lr, #0\n\t"
        "beq 5f\n\t"
        "4:\n\t" RNNQ_W16_GROUP_R
        "subs lr, lr, #1\n\t"
        "bne 4b\n\t"
        "5:\n\t"
        "ldr lr, %[odd]\n\t"
        "cmp lr, #0\n\t"
        "beq 6f\n\t"
        "ldr r6, [r5]\n\t"
        "ldm r4!, {r8, r9, r10, r11}\n\t"
        "smlad r0, r8, r6, r0\n\t"
        "smlad r1, r9, r6, r1\n\t"
        "smlad r2, r10, r6, r2\n\t"
        "smlad r3, r11, r6, r3\n\t"
        "6:\n\t"
        "ldr r5, %[out]\n\t"
        "stm r5!, {r0, r1, r2, r3}\n\t"
        "str r5, %[out]\n\t"
        "ldr lr, %[blocks]\n\t"
        "subs lr, lr, #1\n\t"
        "str lr, %[blocks]\n\t"
        "bne 1b\n\t"
        "str r4, %[w]\n\t"
        : [w] "+m"(k.w), [out] "+m"(k.out), [blocks] "+m"(k.blocks)
        : [xw] "m"(k.xw), [fours] "m"(k.fours), [more] "m"(k.more), [ones] "m"(k.ones),
          [odd] "m"(k.odd)
        : "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r8", "r9", "r10", "r11", "r12", "lr", "cc",
          "memory");
    j->w = k.w;
}
#endif

/* out = w.x: w in the wide layout, xw the P packed x words. */
static void rnnq_matvec_w16(const int32_t *w, const int32_t *xw, int32_t rows, int32_t cols,
                            int32_t *out)
{
    const int32_t pairs = (cols + 1) >> 1;
    const int32_t groups = pairs >> 1;
    int32_t r = 0;
#if RNNQ_W16_ASM
    if (rows >= 4) {
        rnnq_w16_job j;
        j.w = w;
        j.out = out;
        j.blocks = rows >> 2;
        j.xw = xw;
        j.fours = groups >> 2;
        j.ones = groups & 3;
        j.odd = pairs & 1;
        j.more = j.ones | j.odd;
        rnnq_w16_blocks(&j);
        w = j.w;
        r = rows & ~(int32_t)3;
    }
#endif
    for (; r + 4 <= rows; r += 4) {
        const int32_t *wp = w;
        const int32_t *xp = xw;
        int32_t a0 = 0;
        int32_t a1 = 0;
        int32_t a2 = 0;
        int32_t a3 = 0;
        int32_t g = groups;
        for (; g > 0; --g) {
            const int32_t x01 = xp[0];
            const int32_t x23 = xp[1];
            xp += 2;
            a0 = rnnq_w16_dot2(wp[1], x23, rnnq_w16_dot2(wp[0], x01, a0));
            a1 = rnnq_w16_dot2(wp[3], x23, rnnq_w16_dot2(wp[2], x01, a1));
            a2 = rnnq_w16_dot2(wp[5], x23, rnnq_w16_dot2(wp[4], x01, a2));
            a3 = rnnq_w16_dot2(wp[7], x23, rnnq_w16_dot2(wp[6], x01, a3));
            wp += 8;
        }
        if (pairs & 1) {
            const int32_t xl = xp[0];
            a0 = rnnq_w16_dot2(wp[0], xl, a0);
            a1 = rnnq_w16_dot2(wp[1], xl, a1);
            a2 = rnnq_w16_dot2(wp[2], xl, a2);
            a3 = rnnq_w16_dot2(wp[3], xl, a3);
        }
        out[r] = a0;
        out[r + 1] = a1;
        out[r + 2] = a2;
        out[r + 3] = a3;
        w += 4 * pairs;
    }
    /* The rows past the last block of four, P words each. */
    for (; r < rows; ++r) {
        int32_t a0 = 0;
        int32_t k;
        for (k = 0; k < pairs; ++k) {
            a0 = rnnq_w16_dot2(w[k], xw[k], a0);
        }
        out[r] = a0;
        w += pairs;
    }
}

/* Two int16 values as one word, the first in the low half. */
static inline int32_t rnnq_w16_pair(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}

const int8_t *rnnq_matvec_rows(const int8_t *w, int32_t row, int32_t cols)
{
    return w + (size_t)4 * (size_t)row * (size_t)((cols + 1) >> 1);
}

/* x (int8 or int16) as P words of int16 pairs in column order, a zero after an odd last one. */
#define RNNQ_W16_PACK(x, cols, xbuf)                                                             \
    do {                                                                                         \
        int32_t *xw_ = (int32_t *)(void *)(xbuf);                                                \
        int32_t k_;                                                                              \
        for (k_ = 0; k_ + 1 < (cols); k_ += 2) {                                                 \
            xw_[k_ >> 1] = rnnq_w16_pair((x)[k_], (x)[k_ + 1]);                                  \
        }                                                                                        \
        if ((cols) & 1) {                                                                        \
            xw_[(cols) >> 1] = rnnq_w16_pair((x)[(cols) - 1], 0);                                \
        }                                                                                        \
    } while (0)

void rnnq_matvec_pack_s8(const int8_t *x, int32_t cols, int16_t *xbuf)
{
    RNNQ_W16_PACK(x, cols, xbuf);
}

void rnnq_matvec_pack_s16(const int16_t *x, int32_t cols, int16_t *xbuf)
{
    RNNQ_W16_PACK(x, cols, xbuf);
}

void rnnq_matvec_packed_s16(const int8_t *w, const int16_t *xbuf, int32_t rows, int32_t cols,
                            int32_t *out)
{
    rnnq_matvec_w16((const int32_t *)(const void *)w, (const int32_t *)(const void *)xbuf, rows,
                    cols, out);
}

/* SPDX-License-Identifier: MIT-0 */
/* rnnq_matvec_x86.c - rnnq_matvec.h for x86-64 with AVX2 (the x86-64 target): the vector runs
 * across rows, so a row's products are never reduced across lanes and no column loop has a
 * scalar tail.
 *
 * The weights are NOT row-major: they are in the "rows8" layout (rnnq/backends/layouts.py,
 * emitted offline, the same size as row-major): for each block of eight rows r .. r + 7, for
 * each pair of columns k, k + 1, the 16 bytes w[r][k], w[r][k + 1], w[r + 1][k], w[r + 1][k + 1],
 * ..., w[r + 7][k + 1]; then, when cols is odd, the last column of the eight rows (8 bytes);
 * the rows past the last full block (rows % 8 = n) as one block of n rows (2 n bytes per column
 * pair, then n). Each block starts where its first row starts in the row-major layout
 * (r * cols).
 *
 * With AVX2: per block and column pair, the 16 weights widened to int16 (VPMOVSXBW), the x pair
 * broadcast as one int32 (VPBROADCASTD), one VPMADDWD gives the eight rows' two products
 * summed, one VPADDD accumulates; an int8 x is widened into xbuf first. |w * x| <= 2^22, so
 * VPMADDWD never reaches its one wrapping case (-32768 * -32768 twice). Two blocks (sixteen
 * rows) go per pass, four column pairs per iteration: eight independent accumulators (the
 * latency of the multiply-add, not its throughput, bounds one or two chains), and each
 * broadcast x pair serves both blocks. A last block of n < 8 rows runs the same multiply-adds
 * on 16-byte loads at 2 n bytes per pair (lanes n .. 7 hold other weights' products, never
 * stored); a load that would pass the block's end reads a zero-padded copy.
 *
 * With AVX-512 VNNI (and BW, VL: the x86-64-vnni target, or -march=native on Ice Lake,
 * Sapphire Rapids, Zen 4): VPDPWSSD (_mm256_dpwssd_epi32) does the VPMADDWD and the VPADDD in
 * one instruction, on the same layout, vectors and loops. VPDPWSSD wraps as VPADDD does (not
 * the saturating VPDPWSSDS); the sums are exact under rnnq_matvec.h's bound, so the results are
 * the AVX2 path's.
 * Without AVX2 this file compiles to portable loops over the same layout.
 */
#define RNNQ_MATVEC_SOURCE
#define RNNQ_MATVEC_PLAIN_PACK
#include "rnnq_matvec.h"

#include <stddef.h>
#include <string.h>

/* acc + the products of the int16 pairs of w and x, summed per int32 lane. */
#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define RNNQ_X86_DOT(acc, w, x) _mm256_dpwssd_epi32(acc, w, x)
#elif defined(__AVX2__)
#define RNNQ_X86_DOT(acc, w, x) _mm256_add_epi32(acc, _mm256_madd_epi16(w, x))
#endif

#if defined(RNNQ_X86_DOT)
#include <immintrin.h>

/* Keeps four accumulators in their registers across a loop iteration (an empty asm that reads
 * and writes them): without it gcc 12 copied the loop's accumulators between registers every
 * iteration (nine VMOVDQAs and a spill per four column pairs of rnnq_x86_blocks16 with AVX2,
 * eleven with VNNI), issue slots the multiply-adds need. */
#define RNNQ_X86_PIN(a, b, c, d) __asm__("" : "+v"(a), "+v"(b), "+v"(c), "+v"(d))

/* The 16 int8 weights of a block's column pair at p, widened to int16. */
#define RNNQ_X86_W16(p) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(p)))

/* The x pair x[0], x[1] in every int32 lane. */
static __m256i rnnq_x86_xpair(const int16_t *x)
{
    int32_t v;
    memcpy(&v, x, sizeof v);
    return _mm256_set1_epi32(v);
}

/* The 8 bytes at p in the low half of a vector. */
#define RNNQ_X86_W8(p) _mm_loadl_epi64((const __m128i *)(const void *)(p))

/* acc + the last column of a block (cols odd: its 8 weights, the low bytes of g8) times xl. */
static __m256i rnnq_x86_last(__m256i acc, __m128i g8, int16_t xl)
{
    const __m256i wv = _mm256_cvtepi8_epi32(g8);
    return _mm256_add_epi32(acc, _mm256_mullo_epi32(wv, _mm256_set1_epi32(xl)));
}

/* out[0 .. 15] for the two blocks at wa and wa + 8 * cols. */
static void rnnq_x86_blocks16(const int8_t *wa, const int16_t *x, int32_t cols, int32_t *out)
{
    const int8_t *wb = wa + (size_t)8 * (size_t)cols;
    const int32_t pairs = cols / 2;
    __m256i a0 = _mm256_setzero_si256();
    __m256i a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int32_t kp;
    for (kp = 0; kp + 4 <= pairs; kp += 4) {
        const size_t o = (size_t)16 * (size_t)kp;
        const __m256i x0 = rnnq_x86_xpair(x + 2 * kp);
        const __m256i x1 = rnnq_x86_xpair(x + 2 * kp + 2);
        const __m256i x2 = rnnq_x86_xpair(x + 2 * kp + 4);
        const __m256i x3 = rnnq_x86_xpair(x + 2 * kp + 6);
        a0 = RNNQ_X86_DOT(a0, RNNQ_X86_W16(wa + o), x0);
        b0 = RNNQ_X86_DOT(b0, RNNQ_X86_W16(wb + o), x0);
        a1 = RNNQ_X86_DOT(a1, RNNQ_X86_W16(wa + o + 16), x1);
        b1 = RNNQ_X86_DOT(b1, RNNQ_X86_W16(wb + o + 16), x1);
        a2 = RNNQ_X86_DOT(a2, RNNQ_X86_W16(wa + o + 32), x2);
        b2 = RNNQ_X86_DOT(b2, RNNQ_X86_W16(wb + o + 32), x2);
        a3 = RNNQ_X86_DOT(a3, RNNQ_X86_W16(wa + o + 48), x3);
        b3 = RNNQ_X86_DOT(b3, RNNQ_X86_W16(wb + o + 48), x3);
        RNNQ_X86_PIN(a0, a1, a2, a3);
        RNNQ_X86_PIN(b0, b1, b2, b3);
    }
    for (; kp < pairs; ++kp) {
        const size_t o = (size_t)16 * (size_t)kp;
        const __m256i x0 = rnnq_x86_xpair(x + 2 * kp);
        a0 = RNNQ_X86_DOT(a0, RNNQ_X86_W16(wa + o), x0);
        b0 = RNNQ_X86_DOT(b0, RNNQ_X86_W16(wb + o), x0);
    }
    a0 = _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3));
    b0 = _mm256_add_epi32(_mm256_add_epi32(b0, b1), _mm256_add_epi32(b2, b3));
    if (cols & 1) {
        a0 = rnnq_x86_last(a0, RNNQ_X86_W8(wa + 16 * pairs), x[cols - 1]);
        b0 = rnnq_x86_last(b0, RNNQ_X86_W8(wb + 16 * pairs), x[cols - 1]);
    }
    _mm256_storeu_si256((__m256i *)(void *)out, a0);
    _mm256_storeu_si256((__m256i *)(void *)(out + 8), b0);
}

/* out[0 .. 7] for the one block at wa (a layer's rows % 16 >= 8): four chains. */
static void rnnq_x86_block8(const int8_t *wa, const int16_t *x, int32_t cols, int32_t *out)
{
    const int32_t pairs = cols / 2;
    __m256i a0 = _mm256_setzero_si256();
    __m256i a1 = a0, a2 = a0, a3 = a0;
    int32_t kp;
    for (kp = 0; kp + 4 <= pairs; kp += 4) {
        const size_t o = (size_t)16 * (size_t)kp;
        a0 = RNNQ_X86_DOT(a0, RNNQ_X86_W16(wa + o), rnnq_x86_xpair(x + 2 * kp));
        a1 = RNNQ_X86_DOT(a1, RNNQ_X86_W16(wa + o + 16), rnnq_x86_xpair(x + 2 * kp + 2));
        a2 = RNNQ_X86_DOT(a2, RNNQ_X86_W16(wa + o + 32), rnnq_x86_xpair(x + 2 * kp + 4));
        a3 = RNNQ_X86_DOT(a3, RNNQ_X86_W16(wa + o + 48), rnnq_x86_xpair(x + 2 * kp + 6));
        RNNQ_X86_PIN(a0, a1, a2, a3);
    }
    for (; kp < pairs; ++kp) {
        a0 = RNNQ_X86_DOT(a0, RNNQ_X86_W16(wa + (size_t)16 * (size_t)kp),
                                 rnnq_x86_xpair(x + 2 * kp));
    }
    a0 = _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3));
    if (cols & 1) {
        a0 = rnnq_x86_last(a0, RNNQ_X86_W8(wa + 16 * pairs), x[cols - 1]);
    }
    _mm256_storeu_si256((__m256i *)(void *)out, a0);
}

/* out[0 .. n - 1] for the last block at wa, of n < 8 rows (2 n bytes per column pair): two
 * chains. The pairs whose 16-byte load would pass the block's end (the last few, when cols is
 * even or the block is short) read a zero-padded copy. */
static void rnnq_x86_block_n(const int8_t *wa, const int16_t *x, int32_t n, int32_t cols,
                             int32_t *out)
{
    const int32_t pairs = cols / 2;
    const int32_t bytes = n * cols;
    const int32_t step = 2 * n;
    const int32_t safe = bytes >= 16 ? (bytes - 16) / step + 1 : 0; /* loads inside the block */
    const int32_t direct = safe < pairs ? safe : pairs;
    __m256i a0 = _mm256_setzero_si256();
    __m256i a1 = a0;
    int32_t kp;
    for (kp = 0; kp + 2 <= direct; kp += 2) {
        const int8_t *g = wa + (size_t)step * (size_t)kp;
        a0 = RNNQ_X86_DOT(a0, RNNQ_X86_W16(g), rnnq_x86_xpair(x + 2 * kp));
        a1 = RNNQ_X86_DOT(a1, RNNQ_X86_W16(g + step), rnnq_x86_xpair(x + 2 * kp + 2));
    }
    for (; kp < pairs; ++kp) {
        const int8_t *g = wa + (size_t)step * (size_t)kp;
        int8_t tmp[16] = {0};
        if (kp >= direct) {
            memcpy(tmp, g, (size_t)(bytes - step * kp));
            g = tmp;
        }
        a0 = RNNQ_X86_DOT(a0, RNNQ_X86_W16(g), rnnq_x86_xpair(x + 2 * kp));
    }
    a0 = _mm256_add_epi32(a0, a1);
    if ((cols & 1) && bytes >= 8) {
        /* the last column's n bytes end the block: the 8 bytes before its end, shifted down */
        a0 = rnnq_x86_last(a0,
                           _mm_srl_epi64(RNNQ_X86_W8(wa + bytes - 8),
                                         _mm_cvtsi32_si128(8 * (8 - n))),
                           x[cols - 1]);
    }
    /* lanes 0 .. n - 1 only (VPMASKMOVD; a variable-length memcpy was a library call) */
    _mm256_maskstore_epi32((int *)(void *)out,
                           _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
                           a0);
    if ((cols & 1) && bytes < 8) {
        const int8_t *g = wa + (size_t)step * (size_t)pairs;
        int32_t j;
        for (j = 0; j < n; ++j) {
            out[j] += g[j] * (int32_t)x[cols - 1];
        }
    }
}
#endif

/* out = w.x for an int16 x, w in the rows8 layout. */
static void rnnq_matvec_rows8(const int8_t *w, const int16_t *x, int32_t rows, int32_t cols,
                              int32_t *out)
{
    int32_t r = 0;
#if defined(RNNQ_X86_DOT)
    for (; r + 16 <= rows; r += 16) {
        rnnq_x86_blocks16(w + (size_t)r * (size_t)cols, x, cols, out + r);
    }
    if (r + 8 <= rows) {
        rnnq_x86_block8(w + (size_t)r * (size_t)cols, x, cols, out + r);
        r += 8;
    }
    if (r < rows) {
        rnnq_x86_block_n(w + (size_t)r * (size_t)cols, x, rows - r, cols, out + r);
    }
#else
    const int32_t pairs = cols / 2;
    for (; r < rows; r += 8) {
        const int32_t n = rows - r < 8 ? rows - r : 8; /* the last block may have fewer rows */
        const int8_t *wb = w + (size_t)r * (size_t)cols;
        int32_t kp;
        int32_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int32_t j;
        for (kp = 0; kp < pairs; ++kp) {
            const int32_t x0 = x[2 * kp];
            const int32_t x1 = x[2 * kp + 1];
            const int8_t *g = wb + 2 * n * kp;
            for (j = 0; j < n; ++j) {
                a[j] += g[2 * j] * x0 + g[2 * j + 1] * x1;
            }
        }
        for (j = 0; j < n; ++j) {
            if (cols & 1) {
                a[j] += wb[2 * n * pairs + j] * (int32_t)x[cols - 1];
            }
            out[r + j] = a[j];
        }
    }
#endif
}

void rnnq_matvec_s8(const int8_t *w, const int8_t *x, int32_t rows, int32_t cols, int32_t *out,
                    int16_t *xbuf)
{
    rnnq_matvec_widen(x, xbuf, cols);
    rnnq_matvec_rows8(w, xbuf, rows, cols, out);
}

void rnnq_matvec_s8_s16(const int8_t *w, const int16_t *x, int32_t rows, int32_t cols,
                        int32_t *out, int16_t *xbuf)
{
    (void)xbuf;
    rnnq_matvec_rows8(w, x, rows, cols, out);
}

void rnnq_matvec_packed_s16(const int8_t *w, const int16_t *xbuf, int32_t rows, int32_t cols,
                            int32_t *out)
{
    rnnq_matvec_rows8(w, xbuf, rows, cols, out);
}

/* SPDX-License-Identifier: MIT-0 */
/* rnnq_matvec_x86.c - rnnq_matvec.h for x86-64 with AVX2 (the x86-64 target): the vector runs
 * across rows, so a row's products are never reduced across lanes and no column loop has a
 * scalar tail.
 *
 * The weights are NOT row-major: they are in the "rows8" layout (rnnq/backends/layouts.py,
 * emitted offline, the same size as row-major): for each block of eight rows r .. r + 7, for
 * each pair of columns k, k + 1, the 16 bytes w[r][k], w[r][k + 1], w[r + 1][k], w[r + 1][k + 1],
 * ..., w[r + 7][k + 1]; then, when cols is odd, the last column of the eight rows (8 bytes);
 * the rows past the last full block (rows % 8) follow row-major. Each block starts where its
 * first row starts in the row-major layout (r * cols).
 *
 * With AVX2: per block and column pair, the 16 weights widened to int16 (VPMOVSXBW), the x pair
 * broadcast as one int32 (VPBROADCASTD), one VPMADDWD gives the eight rows' two products
 * summed, one VPADDD accumulates; an int8 x is widened into xbuf first. |w * x| <= 2^22, so
 * VPMADDWD never reaches its one wrapping case (-32768 * -32768 twice).
 * Without AVX2 this file compiles to portable loops over the same layout.
 */
#define RNNQ_MATVEC_SOURCE
#define RNNQ_MATVEC_PLAIN_PACK
#include "rnnq_matvec.h"

#include <stddef.h>
#include <string.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

/* out = w.x for an int16 x, w in the rows8 layout. */
static void rnnq_matvec_rows8(const int8_t *w, const int16_t *x, int32_t rows, int32_t cols,
                              int32_t *out)
{
    const int32_t pairs = cols / 2;
    int32_t r = 0;
    for (; r + 8 <= rows; r += 8) {
        const int8_t *wb = w + (size_t)r * (size_t)cols;
        int32_t kp;
#if defined(__AVX2__)
        const int8_t *g = wb;
        const int16_t *xk = x;
        __m256i acc = _mm256_setzero_si256();
        __m256i acc2 = _mm256_setzero_si256(); /* odd pairs: two chains of additions */
        for (kp = 0; kp + 2 <= pairs; kp += 2, g += 32, xk += 4) {
            int32_t x01;
            int32_t x23;
            memcpy(&x01, xk, sizeof x01);
            memcpy(&x23, xk + 2, sizeof x23);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(
                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)g)),
                _mm256_set1_epi32(x01)));
            acc2 = _mm256_add_epi32(acc2, _mm256_madd_epi16(
                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(g + 16))),
                _mm256_set1_epi32(x23)));
        }
        if (kp < pairs) {
            int32_t x01;
            memcpy(&x01, xk, sizeof x01);
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(
                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)g)),
                _mm256_set1_epi32(x01)));
        }
        acc = _mm256_add_epi32(acc, acc2);
        if (cols & 1) {
            const __m256i wv =
                _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(wb + 16 * pairs)));
            acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(wv, _mm256_set1_epi32(x[cols - 1])));
        }
        _mm256_storeu_si256((__m256i *)(void *)(out + r), acc);
#else
        int32_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int32_t j;
        for (kp = 0; kp < pairs; ++kp) {
            const int32_t x0 = x[2 * kp];
            const int32_t x1 = x[2 * kp + 1];
            const int8_t *g = wb + 16 * kp;
            for (j = 0; j < 8; ++j) {
                a[j] += g[2 * j] * x0 + g[2 * j + 1] * x1;
            }
        }
        for (j = 0; j < 8; ++j) {
            if (cols & 1) {
                a[j] += wb[16 * pairs + j] * (int32_t)x[cols - 1];
            }
            out[r + j] = a[j];
        }
#endif
    }
    for (; r < rows; ++r) {
        const int8_t *wr = w + (size_t)r * (size_t)cols;
        int32_t a0 = 0;
        int32_t k;
        for (k = 0; k < cols; ++k) {
            a0 += wr[k] * (int32_t)x[k];
        }
        out[r] = a0;
    }
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

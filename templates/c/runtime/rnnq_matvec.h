/* SPDX-License-Identifier: MIT-0 */
/* rnnq_matvec.h - the int8 matrix-vector products every rnnq kernel computes its dot products
 * with. One interface, four implementations with the same symbols; a build compiles exactly
 * one of them (the target file's kernels.matvec picks it):
 *   rnnq_matvec_ref.c      portable C99 (the reference);
 *   rnnq_matvec_arm_dsp.c  Armv7E-M / Armv8-M DSP extension (SXTB16 + SMLAD, four rows per
 *                          pass); portable code when __ARM_FEATURE_DSP is not defined;
 *   rnnq_matvec_neon.c     AArch64 NEON (SDOT with __ARM_FEATURE_DOTPROD, else SMULL +
 *                          SADALP); portable code elsewhere;
 *   rnnq_matvec_x86.c      x86-64 AVX2 (VPMADDWD across blocks of eight rows, two blocks per
 *                          pass, weights in its rows8 layout: rnnq_matvec_x86.c; VPDPWSSD with
 *                          AVX-512 VNNI); portable code elsewhere.
 * Every variant returns the same integers: the sums are exact int32 sums, so the order in which
 * a variant adds the products does not change a bit (tests compare all four with
 * rnnq/sim/kernels.py).
 *
 * Preconditions (established offline by the compiler, as for rnnq_kernels.h):
 * - rows >= 0, cols >= 0 (cols == 0 gives zeros);
 * - every row's sum_k |w[r][k] * x[k]| < 2^31, e.g. cols < 2^17 for int8 x and cols < 2^9 for
 *   int16 x: no partial sum overflows, whatever the order. (The kernels add their bias to the
 *   result: |bias| + that sum < 2^31 gives the same int32 as starting from the bias.)
 * - w is row-major [rows][cols] int8, any alignment; x any alignment (int16 x: 2-byte aligned);
 * - out [rows] is int32_t-aligned and overlaps none of w, x, xbuf;
 * - xbuf is RNNQ_MATVEC_XBUF_BYTES(cols) bytes of scratch, 4-byte aligned, not overlapping x
 *   (its contents are undefined after the call). The size is the same in every variant, so
 *   scratch sizes do not depend on the variant; the portable loops widen an int8 x into it,
 *   the NEON variant does not use it.
 */
/* The weight layout of rnnq_matvec_arm_dsp.c (its DSP path and its portable fallback alike),
 * instead of row-major: the DSP interleaved layout of rnnq/backends/layouts.py, the same size.
 * For each block of four rows r .. r + 3 (4 * cols bytes, starting where row r starts in the
 * row-major layout): for each group of four columns c .. c + 3, the 16 bytes w[r][c .. c + 3],
 * w[r + 1][c .. c + 3], w[r + 2][c .. c + 3], w[r + 3][c .. c + 3]; then the cols % 4 tail
 * columns of row r, of row r + 1, of row r + 2, of row r + 3. The rows past the last full
 * block (rows % 4) follow row-major. A caller that computes a block of rows on its own
 * (w + row_start * cols) needs that block interleaved on its own. The compiler emits the
 * weights of targets with kernels.matvec = "arm_dsp" in this layout; ref and neon read
 * row-major weights. */

#ifndef RNNQ_MATVEC_H
#define RNNQ_MATVEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of xbuf for cols columns: 2 * cols rounded up to a multiple of 4 (cols int16 values). */
#define RNNQ_MATVEC_XBUF_BYTES(cols) ((((cols) + 1) / 2) * 4)

/* RNNQ_MATVEC_XBUF_BYTES(cols) as a function (the same value in every variant). */
int32_t rnnq_matvec_xbuf_size(int32_t cols);

/* out[r] = sum_k w[r][k] * x[k] for r < rows, k < cols.
 * (No bias argument: six arguments pass in registers on x86-64, AArch64 and RISC-V.) */
void rnnq_matvec_s8(const int8_t *w, const int8_t *x, int32_t rows, int32_t cols, int32_t *out,
                    int16_t *xbuf);

/* The same with an int16 vector x. */
void rnnq_matvec_s8_s16(const int8_t *w, const int16_t *x, int32_t rows, int32_t cols,
                        int32_t *out, int16_t *xbuf);

/* Where row `row` of a weight matrix w [rows][cols] starts in the variant's layout (blocks of
 * rows the compiler laid out on their own start there): w + row * cols in every variant but
 * arm_dsp_w16, whose int16 weights take 4 * ceil(cols / 2) bytes per row. */
const int8_t *rnnq_matvec_rows(const int8_t *w, int32_t row, int32_t cols);

/* One x for several products (blocks of rows of one or more matrices): an int8 (pack_s8) or
 * int16 (pack_s16) x of cols values prepared once into xbuf (RNNQ_MATVEC_XBUF_BYTES(cols)
 * bytes, 4-byte aligned) in the variant's own form, then out[r] = sum_k w[r][k] * x[k] by
 * rnnq_matvec_packed_s8 (x packed by pack_s8) or _s16 (by pack_s16), which leave xbuf as it
 * is. x may change after packing. */
void rnnq_matvec_pack_s8(const int8_t *x, int32_t cols, int16_t *xbuf);
void rnnq_matvec_pack_s16(const int16_t *x, int32_t cols, int16_t *xbuf);
void rnnq_matvec_packed_s8(const int8_t *w, const int16_t *xbuf, int32_t rows, int32_t cols,
                           int32_t *out);
void rnnq_matvec_packed_s16(const int8_t *w, const int16_t *xbuf, int32_t rows, int32_t cols,
                            int32_t *out);

#ifdef __cplusplus
}
#endif

/* An int8 x widened into the int16 xbuf (cols values fit RNNQ_MATVEC_XBUF_BYTES(cols)): what
 * the variants that multiply int16 operands do first in rnnq_matvec_s8. */
static inline void rnnq_matvec_widen(const int8_t *x, int16_t *xbuf, int32_t cols)
{
    int32_t k;
    for (k = 0; k < cols; ++k) {
        xbuf[k] = x[k];
    }
}

/* Definitions every variant shares: only variant sources define RNNQ_MATVEC_SOURCE (before
 * including this header); arm_dsp_w16 also RNNQ_MATVEC_WIDE, whose rnnq_matvec_rows is its
 * own. */
#ifdef RNNQ_MATVEC_SOURCE
int32_t rnnq_matvec_xbuf_size(int32_t cols)
{
    return RNNQ_MATVEC_XBUF_BYTES(cols);
}

#ifndef RNNQ_MATVEC_WIDE
const int8_t *rnnq_matvec_rows(const int8_t *w, int32_t row, int32_t cols)
{
    return w + (size_t)row * (size_t)cols;
}
#endif
#endif /* RNNQ_MATVEC_SOURCE */

/* The products of the variants whose x is packed into their own lanes, the same for an int8
 * and an int16 x (arm_dsp's DSP path, arm_dsp_w16): rnnq_matvec_s8 and _s8_s16 are the pack
 * and then rnnq_matvec_packed_s16, which _packed_s8 is too. Only those variant sources define
 * RNNQ_MATVEC_PACKED_API (they define the pack functions and rnnq_matvec_packed_s16). */
#ifdef RNNQ_MATVEC_PACKED_API
void rnnq_matvec_packed_s8(const int8_t *w, const int16_t *xbuf, int32_t rows, int32_t cols,
                           int32_t *out)
{
    rnnq_matvec_packed_s16(w, xbuf, rows, cols, out);
}

void rnnq_matvec_s8(const int8_t *w, const int8_t *x, int32_t rows, int32_t cols, int32_t *out,
                    int16_t *xbuf)
{
    rnnq_matvec_pack_s8(x, cols, xbuf);
    rnnq_matvec_packed_s16(w, xbuf, rows, cols, out);
}

void rnnq_matvec_s8_s16(const int8_t *w, const int16_t *x, int32_t rows, int32_t cols,
                        int32_t *out, int16_t *xbuf)
{
    rnnq_matvec_pack_s16(x, cols, xbuf);
    rnnq_matvec_packed_s16(w, xbuf, rows, cols, out);
}
#endif /* RNNQ_MATVEC_PACKED_API */

/* The packed form of the variants that multiply a plain int16 x (all but arm_dsp's DSP path
 * and mve): the int16 values themselves, an int8 x widened. Only variant sources define
 * RNNQ_MATVEC_PLAIN_PACK. */
#ifdef RNNQ_MATVEC_PLAIN_PACK
void rnnq_matvec_pack_s8(const int8_t *x, int32_t cols, int16_t *xbuf)
{
    rnnq_matvec_widen(x, xbuf, cols);
}

void rnnq_matvec_packed_s8(const int8_t *w, const int16_t *xbuf, int32_t rows, int32_t cols,
                           int32_t *out)
{
    rnnq_matvec_packed_s16(w, xbuf, rows, cols, out);
}

void rnnq_matvec_pack_s16(const int16_t *x, int32_t cols, int16_t *xbuf)
{
    int32_t k;
    for (k = 0; k < cols; ++k) {
        xbuf[k] = x[k];
    }
}
#endif /* RNNQ_MATVEC_PLAIN_PACK */

/* The portable loops: all of rnnq_matvec_ref.c and the fallback of the other variants, written
 * once. Only the variant sources define RNNQ_MATVEC_PORTABLE before including this header. */
#ifdef RNNQ_MATVEC_PORTABLE

/* Four rows per pass (each x[k] loaded once for four rows), one column per iteration: a loop
 * C compilers vectorise (int16 x int8 products summed in int32 lanes, e.g. VPMADDWD). */
static void rnnq_matvec_s8_s16_portable(const int8_t *w, const int16_t *x, int32_t rows,
                                        int32_t cols, int32_t *out)
{
    int32_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const int8_t *w0 = w;
        const int8_t *w1 = w + cols;
        const int8_t *w2 = w1 + cols;
        const int8_t *w3 = w2 + cols;
        int32_t a0 = 0;
        int32_t a1 = 0;
        int32_t a2 = 0;
        int32_t a3 = 0;
        int32_t k;
        for (k = 0; k < cols; ++k) {
            const int32_t xk = x[k];
            a0 += w0[k] * xk;
            a1 += w1[k] * xk;
            a2 += w2[k] * xk;
            a3 += w3[k] * xk;
        }
        out[r] = a0;
        out[r + 1] = a1;
        out[r + 2] = a2;
        out[r + 3] = a3;
        w += 4 * cols;
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

/* int8 x: widened once into xbuf (int16), then the loop above. */
static void rnnq_matvec_s8_portable(const int8_t *w, const int8_t *x, int32_t rows,
                                    int32_t cols, int32_t *out, int16_t *xbuf)
{
    rnnq_matvec_widen(x, xbuf, cols);
    rnnq_matvec_s8_s16_portable(w, xbuf, rows, cols, out);
}

#ifdef RNNQ_MATVEC_PORTABLE_API
/* The whole interface in portable C: the ref variant, and the others' fallback. */
void rnnq_matvec_s8(const int8_t *w, const int8_t *x, int32_t rows, int32_t cols, int32_t *out,
                    int16_t *xbuf)
{
    rnnq_matvec_s8_portable(w, x, rows, cols, out, xbuf);
}

void rnnq_matvec_s8_s16(const int8_t *w, const int16_t *x, int32_t rows, int32_t cols,
                        int32_t *out, int16_t *xbuf)
{
    (void)xbuf;
    rnnq_matvec_s8_s16_portable(w, x, rows, cols, out);
}

void rnnq_matvec_packed_s16(const int8_t *w, const int16_t *xbuf, int32_t rows, int32_t cols,
                            int32_t *out)
{
    rnnq_matvec_s8_s16_portable(w, xbuf, rows, cols, out);
}
#endif /* RNNQ_MATVEC_PORTABLE_API */

#endif /* RNNQ_MATVEC_PORTABLE */

#endif /* RNNQ_MATVEC_H */

/* rnnq_matvec_ref.c - rnnq_matvec.h in portable C99 (the reference variant). */
#define RNNQ_MATVEC_PORTABLE
#include "rnnq_matvec.h"

int32_t rnnq_matvec_xbuf_size(int32_t cols)
{
    return RNNQ_MATVEC_XBUF_BYTES(cols);
}

void rnnq_matvec_s8(const int8_t *w, const int8_t *x, int32_t rows, int32_t cols, int32_t *out,
                    int16_t *xbuf)
{
    (void)xbuf;
    rnnq_matvec_s8_portable(w, x, rows, cols, out);
}

void rnnq_matvec_s8_s16(const int8_t *w, const int16_t *x, int32_t rows, int32_t cols,
                        int32_t *out, int16_t *xbuf)
{
    (void)xbuf;
    rnnq_matvec_s8_s16_portable(w, x, rows, cols, out);
}

/* Test-only: exposes the static inline functions of rnnq_fixedpoint.h to ctypes, one loop
 * over whole arrays per call (tests/numerics/conftest.py is the Python side). */
#include <stdint.h>

#include "rnnq_fixedpoint.h"

void shim_sat(const int64_t *x, int64_t *y, int32_t n, int32_t bits);
void shim_rshift_round(const int32_t *x, const int32_t *s, int32_t *y, int32_t n);
void shim_rshift_round64(const int64_t *x, const int32_t *s, int64_t *y, int32_t n);
void shim_requant(const int32_t *x, const int32_t *m, const int32_t *s, int32_t *y, int32_t n);
void shim_tanh_q15(const int32_t *x, const int32_t *f, int32_t *y, int32_t n);
void shim_sigmoid_q15(const int32_t *x, const int32_t *f, int32_t *y, int32_t n);
int32_t shim_tanh_table(int16_t *out);
void shim_div_round(const int32_t *a, const int32_t *b, int32_t *y, int32_t n);
void shim_isqrt_round(const uint32_t *x, int32_t *y, int32_t n);

void shim_sat(const int64_t *x, int64_t *y, int32_t n, int32_t bits)
{
    int32_t k;
    for (k = 0; k < n; ++k) {
        y[k] = bits == 8 ? rnnq_sat8(x[k]) : (bits == 16 ? rnnq_sat16(x[k]) : rnnq_sat32(x[k]));
    }
}

void shim_rshift_round(const int32_t *x, const int32_t *s, int32_t *y, int32_t n)
{
    int32_t k;
    for (k = 0; k < n; ++k) {
        y[k] = rnnq_rshift_round(x[k], s[k]);
    }
}

void shim_rshift_round64(const int64_t *x, const int32_t *s, int64_t *y, int32_t n)
{
    int32_t k;
    for (k = 0; k < n; ++k) {
        y[k] = rnnq_rshift_round64(x[k], s[k]);
    }
}

void shim_requant(const int32_t *x, const int32_t *m, const int32_t *s, int32_t *y, int32_t n)
{
    int32_t k;
    for (k = 0; k < n; ++k) {
        y[k] = rnnq_requant(x[k], m[k], s[k]);
    }
}

void shim_tanh_q15(const int32_t *x, const int32_t *f, int32_t *y, int32_t n)
{
    int32_t k;
    for (k = 0; k < n; ++k) {
        y[k] = rnnq_tanh_q15(x[k], f[k]);
    }
}

void shim_sigmoid_q15(const int32_t *x, const int32_t *f, int32_t *y, int32_t n)
{
    int32_t k;
    for (k = 0; k < n; ++k) {
        y[k] = rnnq_sigmoid_q15(x[k], f[k]);
    }
}

int32_t shim_tanh_table(int16_t *out)
{
    int32_t k;
    for (k = 0; k < RNNQ_TANH_TABLE_SIZE; ++k) {
        out[k] = rnnq_tanh_table[k];
    }
    return RNNQ_TANH_TABLE_SIZE;
}

void shim_div_round(const int32_t *a, const int32_t *b, int32_t *y, int32_t n)
{
    int32_t k;
    for (k = 0; k < n; ++k) {
        y[k] = rnnq_div_round(a[k], b[k]);
    }
}

void shim_isqrt_round(const uint32_t *x, int32_t *y, int32_t n)
{
    int32_t k;
    for (k = 0; k < n; ++k) {
        y[k] = rnnq_isqrt_round(x[k]);
    }
}

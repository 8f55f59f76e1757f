/* SPDX-License-Identifier: MIT-0 */
/* rnnq_fixedpoint.h - integer primitives of rnnq, mirroring rnnq/numerics name for name.
 *
 * rnnq/numerics/__init__.py is the definition; tests compare every function here with it
 * (and with exact Python-integer arithmetic) bit for bit. C99, integer only, no heap.
 *
 * Conventions: right shifts of negative signed values must be arithmetic (floor); the
 * typedefs below refuse to compile otherwise. Nothing here left-shifts a negative value.
 */
#ifndef RNNQ_FIXEDPOINT_H
#define RNNQ_FIXEDPOINT_H

#include <stdint.h>

#include "rnnq_tables.h"

/* Compile-time checks: >> on negative signed values is an arithmetic shift. */
typedef char rnnq_asr_check[((-1) >> 1) == -1 ? 1 : -1];
typedef char rnnq_asr32_check[(((int32_t)-5) >> 1) == (int32_t)-3 ? 1 : -1];
typedef char rnnq_asr64_check[(((int64_t)-5) >> 1) == (int64_t)-3 ? 1 : -1];

#define RNNQ_INT8_MIN (-128)
#define RNNQ_INT8_MAX 127
#define RNNQ_INT16_MIN (-32768)
#define RNNQ_INT16_MAX 32767
#define RNNQ_GATE_FRAC_BITS 12 /* Q3.12 gate pre-activations */
#define RNNQ_ACT_FRAC_BITS 15  /* Q0.15 gate outputs */
#define RNNQ_PEEP_SHIFT 16     /* LSTM peepholes read the int32 cell's top 16 bits */
#define RNNQ_TABLE_LAST (RNNQ_TANH_TABLE_SIZE - 1) /* index of the table entry at 8.0 */

/* Clamp to the signed 8/16/32-bit range. */
static inline int8_t rnnq_sat8(int64_t x)
{
    return (int8_t)(x < INT8_MIN ? INT8_MIN : (x > INT8_MAX ? INT8_MAX : x));
}

static inline int16_t rnnq_sat16(int64_t x)
{
    return (int16_t)(x < INT16_MIN ? INT16_MIN : (x > INT16_MAX ? INT16_MAX : x));
}

static inline int32_t rnnq_sat32(int64_t x)
{
    return (int32_t)(x < INT32_MIN ? INT32_MIN : (x > INT32_MAX ? INT32_MAX : x));
}

/* (x + 2^(n-1)) >> n for n >= 1 (round half up, floor shift), x for n == 0; n >= 0.
 * Computed as (x >> n) + bit (n-1) of x, which is the same integer without the risk of
 * overflowing x + 2^(n-1). Shifts of 32 or more give the exact result, 0. */
static inline int32_t rnnq_rshift_round(int32_t x, int32_t n)
{
    if (n <= 0) {
        return x;
    }
    if (n >= 32) {
        return 0;
    }
    return (x >> n) + ((x >> (n - 1)) & 1);
}

/* The same for int64 x; shifts of 64 or more give 0. */
static inline int64_t rnnq_rshift_round64(int64_t x, int32_t n)
{
    if (n <= 0) {
        return x;
    }
    if (n >= 64) {
        return 0;
    }
    return (x >> n) + ((x >> (n - 1)) & 1);
}

/* sat32((x * mult + 2^(shift-1)) >> shift): mult in [0, 2^31), shift in [1, 62], one rounding
 * (half up) of the exact int64 product. |x * mult| <= 2^62, so adding 2^61 cannot overflow. */
static inline int32_t rnnq_requant(int32_t x, int32_t mult, int32_t shift)
{
    const int64_t prod = (int64_t)x * (int64_t)mult;
    if (shift >= 32) {
        /* The usual case (factors below 1/2): only the high word of the product matters.
         * With P = hi * 2^32 + lo, floor((P + 2^(s-1)) / 2^s) equals
         *   s == 32: hi + (lo >= 2^31)
         *   s >= 33: (hi + 2^(s-33)) >> (s-32)
         * |P| < 2^62 gives |hi| < 2^30: no overflow and no saturation needed. */
        const int32_t hi = (int32_t)(prod >> 32);
        if (shift == 32) {
            return hi + (int32_t)((uint32_t)prod >> 31);
        }
        return (hi + ((int32_t)1 << (shift - 33))) >> (shift - 32);
    }
    return rnnq_sat32((prod + ((int64_t)1 << (shift - 1))) >> shift);
}

/* tanh(x / 2^frac_bits) in Q0.15 (-32767..32767), 7 <= frac_bits <= 63: linear interpolation in
 * rnnq_tanh_table (step 1/128 over [0, 8]), odd symmetry, |x| >= 8.0 gives the last entry. */
static inline int32_t rnnq_tanh_q15(int32_t x, int32_t frac_bits)
{
    const int32_t sh = frac_bits - RNNQ_TANH_TABLE_STEP_BITS;
    /* |x| as unsigned: exact also for INT32_MIN (2^31), no signed overflow. */
    const uint32_t a = x < 0 ? 0u - (uint32_t)x : (uint32_t)x;
    int32_t y;
    if (sh <= 22) {
        /* Table differences are at most 256 and frac < 2^sh: the product fits in int32. */
        const uint32_t idx = a >> sh;
        if (idx >= RNNQ_TABLE_LAST) {
            y = rnnq_tanh_table[RNNQ_TABLE_LAST];
        } else {
            const int32_t lo = rnnq_tanh_table[idx];
            const int32_t d = rnnq_tanh_table[idx + 1] - lo;
            const int32_t frac = (int32_t)(a & ((1u << sh) - 1u));
            y = lo + rnnq_rshift_round(d * frac, sh);
        }
    } else {
        /* |x| < 2^31 <= 8.0 in this format: always interpolated, in 64 bits. */
        const uint64_t a64 = a;
        const uint64_t idx = a64 >> sh;
        const int64_t lo = rnnq_tanh_table[idx];
        const int64_t d = rnnq_tanh_table[idx + 1] - lo;
        const int64_t frac = (int64_t)(a64 & ((((uint64_t)1) << sh) - 1u));
        y = (int32_t)(lo + rnnq_rshift_round64(d * frac, sh));
    }
    return x < 0 ? -y : y;
}

/* sigmoid(x / 2^frac_bits) in Q0.15 (0..32767) as (1 + tanh(x / 2^(frac_bits+1))) / 2:
 * min((32768 + tanh_q15(x, frac_bits + 1) + 1) >> 1, 32767); 6 <= frac_bits <= 62. */
static inline int32_t rnnq_sigmoid_q15(int32_t x, int32_t frac_bits)
{
    const int32_t y = (32768 + rnnq_tanh_q15(x, frac_bits + 1) + 1) >> 1;
    return y > RNNQ_INT16_MAX ? RNNQ_INT16_MAX : y;
}

/* a / b rounded to the nearest integer, halves away from zero, for b >= 1:
 * sign(a) * ((|a| + b / 2) / b). |result| <= |a|, so it fits int32 (also for a = INT32_MIN);
 * |a| + b / 2 < 2^31 + 2^30 cannot overflow uint32. */
static inline int32_t rnnq_div_round(int32_t a, int32_t b)
{
    const uint32_t ub = (uint32_t)b;
    const uint32_t ua = a < 0 ? 0u - (uint32_t)a : (uint32_t)a;
    const uint32_t q = (ua + ub / 2u) / ub;
    if (a >= 0) {
        return (int32_t)q; /* q <= a < 2^31 */
    }
    if (q == 0u) {
        return 0;
    }
    return -(int32_t)(q - 1u) - 1; /* -q without converting 2^31 to int32 */
}

/* The integer nearest to sqrt(x): r = floor(sqrt(x)) bit by bit, plus 1 when x > r^2 + r
 * (no tie is possible). r <= 65536. */
static inline int32_t rnnq_isqrt_round(uint32_t x)
{
    uint32_t r = 0u;
    uint32_t bit = 1u << 30;
    while (bit != 0u) {
        if (x >= r + bit) {
            x -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (int32_t)(r + (x > r ? 1u : 0u));
}

#endif /* RNNQ_FIXEDPOINT_H */

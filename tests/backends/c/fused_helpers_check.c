/* The unit-major steps' helpers in rnnq_kernels.c against the branch-free path's (the vector
 * path's) helpers, on the whole range each is used on: every clamped gate value, every table
 * shift of the cell's tanh with edge and random int32 inputs, random requantisations. Built on
 * the host (the portable forms) and for the Cortex-M4 (SSAT, USAT, SMUAD, QADD) by
 * test_fused_helpers.py. Exit status: the number of failed checks (at most 100); prints OK
 * when there are none. */
#include "rnnq_kernels.c"

#include <stdio.h>

static uint32_t rnd_state = 20250101u;

/* xorshift32 */
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

static long failed;

static void check(int ok, const char *what, long a, long b, long c)
{
    if (!ok && failed++ < 10) {
        printf("%s differs at %ld %ld %ld\n", what, a, b, c);
    }
}

/* An int32 around a given value, or anywhere. */
static int32_t near(int32_t v, int32_t spread)
{
    return (int32_t)((uint32_t)v + (rnd() % (2u * (uint32_t)spread + 1u)) - (uint32_t)spread);
}

int main(void)
{
    int32_t x;
    int32_t sh;
    int32_t i;
    for (x = -32768; x <= 32767; ++x) {
        check(rnnq_sigmoid_gate(x) == rnnq_sigmoid_lut(x), "sigmoid", x, 0, 0);
        check(rnnq_tanh_gate(x) == rnnq_tanh_lut(x, RNNQ_GATE_FRAC_BITS - 7), "tanh", x, 0, 0);
        check(rnnq_fused_clamp(x * 3, 0, 0) == rnnq_clamp32(x * 3, -32768, 32767), "sat16", x,
              0, 0);
    }
    for (sh = 0; sh <= 20; ++sh) {
        const uint32_t mask = ((uint32_t)1 << sh) - 1u;
        const int32_t half = ((int32_t)1 << sh) >> 1;
        const int32_t edge = (int32_t)(1023u << sh);
        for (i = 0; i < 40000; ++i) {
            int32_t v;
            switch (i % 8) {
            case 0: v = (int32_t)rnd(); break;
            case 1: v = (int32_t)rnd() >> (rnd() % 31u); break;
            case 2: v = near(edge, 40); break;
            case 3: v = near(edge + ((int32_t)1 << sh), 40); break;
            case 4: v = -near(edge, 40); break;
            case 5: v = near(INT32_MIN + 20, 20); break;
            case 6: v = near(INT32_MAX - 20, 20); break;
            default: v = near(0, 4096); break;
            }
            check(rnnq_tanh_cut(v, sh, mask, half) == rnnq_tanh_lut(v, sh), "tanh_cut", sh, v,
                  0);
        }
    }
    for (i = 0; i < 400000; ++i) {
        const int32_t s = RNNQ_HI_SHIFT_MIN + (int32_t)(rnd() % 30u);
        const int32_t m = (int32_t)(rnd() >> 1);
        const int32_t f = (int32_t)(rnd() % 32768u);
        int32_t a = (int32_t)rnd() >> (rnd() % 32u);
        int32_t b = (int32_t)rnd() >> (rnd() % 32u);
        if (i % 16 == 0) {
            a = i & 16 ? INT32_MIN : INT32_MAX;
        }
        if (i % 16 == 1) {
            b = i & 16 ? INT32_MIN : INT32_MAX;
        }
        check(rnnq_requant_hi1(a, m, s - RNNQ_HI_SHIFT_MIN) == rnnq_requant_hi(a, m, s),
              "requant_hi", a, m, s);
        check(rnnq_mul_q15_fused(f, b) == rnnq_mul_q15_round(f, b), "mul_q15", f, b, 0);
        check(rnnq_add_sat32_fused(a, b) == rnnq_add_sat32(a, b), "add_sat32", a, b, 0);
    }
    if (failed == 0) {
        printf("OK\n");
    }
    return failed > 100 ? 100 : (int)failed;
}

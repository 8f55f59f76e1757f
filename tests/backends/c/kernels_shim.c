/* Test-only: runs whole sequences through rnnq_lstm_step_s8 (or, bit 0 of mode set, the
 * int16-input rnnq_lstm_step_x16 with x int16; bit 1 set: the _hi entry points; bit 3 set: the
 * _fused ones, p unit-major) so that Python
 * makes one ctypes call per case (tests/backends/c/conftest.py is the Python side); the same for
 * the GRU and RNN. */
#include <stdint.h>
#include <string.h>

#include "rnnq_kernels.h"

void shim_lstm_sequence(const rnnq_lstm_params *p, const void *x, int32_t mode, int32_t batch,
                        int32_t steps, void *y, int32_t *c_out, int16_t *scratch, void *h, int32_t *c);

/* x [batch][steps][I] -> y [batch][steps][H], c_out [batch][steps][H]; h, c: [H] state.
 * With p->state_bits 16, y and h are int16 and the steps are rnnq_lstm_step_*_h16. */
void shim_lstm_sequence(const rnnq_lstm_params *p, const void *x, int32_t mode, int32_t batch,
                        int32_t steps, void *y, int32_t *c_out, int16_t *scratch, void *h, int32_t *c)
{
    const int32_t n_in = p->input_size;
    const int32_t n_hid = p->hidden_size;
    const size_t hbytes = (size_t)n_hid * (p->state_bits == 16 ? 2u : 1u);
    int32_t b;
    int32_t t;
    for (b = 0; b < batch; ++b) {
        memcpy(h, p->h0, hbytes);
        memcpy(c, p->c0, (size_t)n_hid * sizeof(int32_t));
        for (t = 0; t < steps; ++t) {
            const size_t at = (size_t)(b * steps + t) * (size_t)n_in;
            const int16_t *x16 = (mode & 1) ? (const int16_t *)x + at : NULL;
            const int8_t *x8 = (const int8_t *)x + at;
            int16_t *h16 = (int16_t *)h;
            int8_t *h8 = (int8_t *)h;
            if (mode & 8) { /* the unit-major entry points (p in that row order) */
                switch ((p->state_bits == 16 ? 2 : 0) | (mode & 1)) {
                case 0: rnnq_lstm_step_s8_fused(p, x8, h8, c, scratch); break;
                case 1: rnnq_lstm_step_x16_fused(p, x16, h8, c, scratch); break;
                case 2: rnnq_lstm_step_s8_h16_fused(p, x8, h16, c, scratch); break;
                default: rnnq_lstm_step_x16_h16_fused(p, x16, h16, c, scratch); break;
                }
            } else switch ((p->state_bits == 16 ? 4 : 0) | mode) {
            case 0: rnnq_lstm_step_s8(p, x8, h8, c, scratch); break;
            case 1: rnnq_lstm_step_x16(p, x16, h8, c, scratch); break;
            case 2: rnnq_lstm_step_s8_hi(p, x8, h8, c, scratch); break;
            case 3: rnnq_lstm_step_x16_hi(p, x16, h8, c, scratch); break;
            case 4: rnnq_lstm_step_s8_h16(p, x8, h16, c, scratch); break;
            case 5: rnnq_lstm_step_x16_h16(p, x16, h16, c, scratch); break;
            case 6: rnnq_lstm_step_s8_h16_hi(p, x8, h16, c, scratch); break;
            default: rnnq_lstm_step_x16_h16_hi(p, x16, h16, c, scratch); break;
            }
            memcpy((char *)y + (size_t)(b * steps + t) * hbytes, h, hbytes);
            memcpy(c_out, c, (size_t)n_hid * sizeof(int32_t));
            c_out += n_hid;
        }
    }
}

void shim_gru_sequence(const rnnq_gru_params *p, const void *x, int32_t mode, int32_t batch,
                       int32_t steps, const void *h_init, void *y, int16_t *scratch, void *h);
void shim_rnn_sequence(const rnnq_rnn_params *p, const void *x, int32_t mode, int32_t batch,
                       int32_t steps, const void *h_init, void *y, int16_t *scratch, void *h);
void shim_mean_time_sequence(const rnnq_mean_time_params *p, const int8_t *x, int32_t batch,
                             int32_t steps, int8_t *y, int32_t *acc);
void shim_mean_time_from(const rnnq_mean_time_params *p, const int8_t *x, int32_t steps,
                         int32_t n0, int32_t *acc, int8_t *y);
void shim_embed(const rnnq_embed_params *p, const int32_t *ids, int32_t n, int8_t *y);

/* x [batch][steps][I] -> y [batch][steps][H]; h: [H] state, reset from p->h0, or copied from
 * h_init [batch][H] when h_init is not NULL. With p->state_bits 16, h_init, y and h are int16
 * and the steps are rnnq_gru_step_s8_h16 / _x16_h16. */
void shim_gru_sequence(const rnnq_gru_params *p, const void *x, int32_t mode, int32_t batch,
                       int32_t steps, const void *h_init, void *y, int16_t *scratch, void *h)
{
    const int32_t n_hid = p->hidden_size;
    const size_t hbytes = (size_t)n_hid * (p->state_bits == 16 ? 2u : 1u);
    int32_t b;
    int32_t t;
    for (b = 0; b < batch; ++b) {
        if (h_init != NULL) {
            memcpy(h, (const char *)h_init + (size_t)b * hbytes, hbytes);
        } else {
            memcpy(h, p->h0, hbytes);
        }
        for (t = 0; t < steps; ++t) {
            const size_t at = (size_t)(b * steps + t) * (size_t)p->input_size;
            const int16_t *x16 = (mode & 1) ? (const int16_t *)x + at : NULL;
            const int8_t *x8 = (const int8_t *)x + at;
            int16_t *h16 = (int16_t *)h;
            int8_t *h8 = (int8_t *)h;
            if (mode & 8) { /* the unit-major entry points (p in that row order) */
                switch ((p->state_bits == 16 ? 2 : 0) | (mode & 1)) {
                case 0: rnnq_gru_step_s8_fused(p, x8, h8, scratch); break;
                case 1: rnnq_gru_step_x16_fused(p, x16, h8, scratch); break;
                case 2: rnnq_gru_step_s8_h16_fused(p, x8, h16, scratch); break;
                default: rnnq_gru_step_x16_h16_fused(p, x16, h16, scratch); break;
                }
            } else switch ((p->state_bits == 16 ? 4 : 0) | mode) {
            case 0: rnnq_gru_step_s8(p, x8, h8, scratch); break;
            case 1: rnnq_gru_step_x16(p, x16, h8, scratch); break;
            case 2: rnnq_gru_step_s8_hi(p, x8, h8, scratch); break;
            case 3: rnnq_gru_step_x16_hi(p, x16, h8, scratch); break;
            case 4: rnnq_gru_step_s8_h16(p, x8, h16, scratch); break;
            case 5: rnnq_gru_step_x16_h16(p, x16, h16, scratch); break;
            case 6: rnnq_gru_step_s8_h16_hi(p, x8, h16, scratch); break;
            default: rnnq_gru_step_x16_h16_hi(p, x16, h16, scratch); break;
            }
            memcpy((char *)y + (size_t)(b * steps + t) * hbytes, h, hbytes);
        }
    }
}

/* The same for rnnq_rnn_step_s8 (state_bits 16: rnnq_rnn_step_*_h16, h int16). */
void shim_rnn_sequence(const rnnq_rnn_params *p, const void *x, int32_t mode, int32_t batch,
                       int32_t steps, const void *h_init, void *y, int16_t *scratch, void *h)
{
    const int32_t n_hid = p->hidden_size;
    const size_t hbytes = (size_t)n_hid * (p->state_bits == 16 ? 2u : 1u);
    int32_t b;
    int32_t t;
    for (b = 0; b < batch; ++b) {
        if (h_init != NULL) {
            memcpy(h, (const char *)h_init + (size_t)b * hbytes, hbytes);
        } else {
            memcpy(h, p->h0, hbytes);
        }
        for (t = 0; t < steps; ++t) {
            const size_t at = (size_t)(b * steps + t) * (size_t)p->input_size;
            const int16_t *x16 = (const int16_t *)x + at;
            const int8_t *x8 = (const int8_t *)x + at;
            int16_t *h16 = (int16_t *)h;
            int8_t *h8 = (int8_t *)h;
            switch ((p->state_bits == 16 ? 4 : 0) | mode) {
            case 0: rnnq_rnn_step_s8(p, x8, h8, scratch); break;
            case 1: rnnq_rnn_step_x16(p, x16, h8, scratch); break;
            case 2: rnnq_rnn_step_s8_hi(p, x8, h8, scratch); break;
            case 3: rnnq_rnn_step_x16_hi(p, x16, h8, scratch); break;
            case 4: rnnq_rnn_step_s8_h16(p, x8, h16, scratch); break;
            case 5: rnnq_rnn_step_x16_h16(p, x16, h16, scratch); break;
            case 6: rnnq_rnn_step_s8_h16_hi(p, x8, h16, scratch); break;
            default: rnnq_rnn_step_x16_h16_hi(p, x16, h16, scratch); break;
            }
            memcpy((char *)y + (size_t)(b * steps + t) * hbytes, h, hbytes);
        }
    }
}

/* x [batch][steps][size] -> y [batch][steps][size]; acc: [2 * size] state. */
void shim_mean_time_sequence(const rnnq_mean_time_params *p, const int8_t *x, int32_t batch,
                             int32_t steps, int8_t *y, int32_t *acc)
{
    int32_t b;
    int32_t t;
    for (b = 0; b < batch; ++b) {
        rnnq_mean_time_reset(p, acc);
        for (t = 0; t < steps; ++t) {
            rnnq_mean_time_step_s8(p, x, acc, t + 1, y);
            x += p->size;
            y += p->size;
        }
    }
}

/* ids [n] -> y [n][dim]. */
void shim_embed(const rnnq_embed_params *p, const int32_t *ids, int32_t n, int8_t *y)
{
    int32_t k;
    for (k = 0; k < n; ++k) {
        rnnq_embed_s8(p, ids[k], y + (size_t)k * (size_t)p->dim);
    }
}

/* One stream continued from a stream n0 steps long whose sums are acc [2 * size]: x [steps][size]
 * -> y [steps][size]; the step count saturates at INT32_MAX as the generated _step's does. */
void shim_mean_time_from(const rnnq_mean_time_params *p, const int8_t *x, int32_t steps,
                         int32_t n0, int32_t *acc, int8_t *y)
{
    int32_t t;
    for (t = 0; t < steps; ++t) {
        const int32_t n = n0 < INT32_MAX - t ? n0 + t + 1 : INT32_MAX;
        rnnq_mean_time_step_s8(p, x, acc, n, y);
        x += p->size;
        y += p->size;
    }
}

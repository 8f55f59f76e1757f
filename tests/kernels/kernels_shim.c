/* Test-only: runs whole sequences through rnnq_lstm_step_s8 so that Python makes one ctypes
 * call per case (tests/kernels/conftest.py is the Python side). */
#include <stdint.h>
#include <string.h>

#include "rnnq_kernels.h"

void shim_lstm_sequence(const rnnq_lstm_params *p, const int8_t *x, int32_t batch, int32_t steps,
                        int8_t *y, int16_t *c_out, int16_t *scratch, int8_t *h, int16_t *c);

/* x [batch][steps][I] -> y [batch][steps][H], c_out [batch][steps][H]; h, c: [H] state. */
void shim_lstm_sequence(const rnnq_lstm_params *p, const int8_t *x, int32_t batch, int32_t steps,
                        int8_t *y, int16_t *c_out, int16_t *scratch, int8_t *h, int16_t *c)
{
    const int32_t n_in = p->input_size;
    const int32_t n_hid = p->hidden_size;
    int32_t b;
    int32_t t;
    for (b = 0; b < batch; ++b) {
        rnnq_lstm_reset_s8(p, h, c);
        for (t = 0; t < steps; ++t) {
            rnnq_lstm_step_s8(p, x, h, c, scratch);
            memcpy(y, h, (size_t)n_hid * sizeof(int8_t));
            memcpy(c_out, c, (size_t)n_hid * sizeof(int16_t));
            x += n_in;
            y += n_hid;
            c_out += n_hid;
        }
    }
}

/* SPDX-License-Identifier: MIT-0 */
/* Framing of the UART test protocol: see rnnq_frame.h. */
#include "rnnq_frame.h"

#include "rnnq_uart.h"

/* CRC-32 four bits at a time: a 64-byte table instead of 1 KiB. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

uint32_t rnnq_crc32(uint32_t crc, const uint8_t *p, uint32_t n)
{
    uint32_t i;
    crc = ~crc;
    for (i = 0; i < n; ++i) {
        crc ^= p[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
    }
    return ~crc;
}

static void send_nak(uint8_t seq)
{
    uint8_t f[RNNQ_FRAME_OVERHEAD] = {0};
    rnnq_frame_send(f, rnnq_frame_build(f, RNNQ_FRAME_NAK, seq, f, 0));
}

uint32_t rnnq_frame_receive(uint8_t *buf, uint32_t *crc)
{
    for (;;) {
        uint8_t prev = 0, c;
        uint32_t i, len, got;
        /* hunt for the sync pair (a lone 0xA5 in noise restarts the hunt) */
        c = rnnq_uart_get();
        while (!(prev == RNNQ_FRAME_SYNC0 && c == RNNQ_FRAME_SYNC1)) {
            prev = c;
            c = rnnq_uart_get();
        }
        for (i = 0; i < RNNQ_FRAME_HEADER; ++i) {
            buf[i] = rnnq_uart_get();
        }
        len = (uint32_t)buf[2] | ((uint32_t)buf[3] << 8);
        if (len > RNNQ_FRAME_MAX_PAYLOAD) {
            send_nak(buf[1]);
            continue;
        }
        for (i = 0; i < len; ++i) {
            buf[RNNQ_FRAME_HEADER + i] = rnnq_uart_get();
        }
        got = 0;
        for (i = 0; i < 4; ++i) {
            got |= (uint32_t)rnnq_uart_get() << (8 * i);
        }
        *crc = rnnq_crc32(0, buf, RNNQ_FRAME_HEADER + len);
        if (got != *crc) {
            send_nak(buf[1]);
            continue;
        }
        return len;
    }
}

uint32_t rnnq_frame_build(uint8_t *out, uint8_t type, uint8_t seq, const uint8_t *payload,
                          uint32_t n)
{
    uint32_t i, crc;
    out[0] = RNNQ_FRAME_SYNC0;
    out[1] = RNNQ_FRAME_SYNC1;
    out[2] = type;
    out[3] = seq;
    out[4] = (uint8_t)(n & 0xFFu);
    out[5] = (uint8_t)(n >> 8);
    for (i = 0; i < n; ++i) { /* payload may already be in place (out + 6) */
        out[6 + i] = payload[i];
    }
    crc = rnnq_crc32(0, out + 2, RNNQ_FRAME_HEADER + n);
    for (i = 0; i < 4; ++i) {
        out[6 + n + i] = (uint8_t)(crc >> (8 * i));
    }
    return RNNQ_FRAME_OVERHEAD + n;
}

void rnnq_frame_send(const uint8_t *frame, uint32_t len)
{
    uint32_t i;
    for (i = 0; i < len; ++i) {
        rnnq_uart_put(frame[i]);
    }
}

/* SPDX-License-Identifier: MIT-0 */
/*
 * Framing of the UART test protocol (rnnq validate --on serial:PORT). A frame is
 *   0xA5 0x5A | type u8 | seq u8 | length u16 | payload (length bytes) | CRC-32 u32
 * little-endian; the CRC (IEEE 802.3, reflected, as zlib's crc32) covers type to the payload's
 * end. rnnq/backends/c/serial_link.py is the host's side.
 */
#ifndef RNNQ_FRAME_H
#define RNNQ_FRAME_H

#include <stdint.h>

#define RNNQ_FRAME_SYNC0 0xA5u
#define RNNQ_FRAME_SYNC1 0x5Au
#define RNNQ_FRAME_HEADER 4u   /* type, seq, length */
#define RNNQ_FRAME_OVERHEAD 10u /* sync, header, CRC */
#ifndef RNNQ_FRAME_MAX_PAYLOAD
#define RNNQ_FRAME_MAX_PAYLOAD 1024u
#endif
#define RNNQ_FRAME_NAK 0x7Fu   /* a frame arrived broken (bad CRC or length): send it again */
#define RNNQ_FRAME_ERROR 0xFFu /* the request was refused: payload = ASCII reason */

/* CRC-32 of n bytes continuing from crc (start with 0): crc32("123456789") = 0xCBF43926. */
uint32_t rnnq_crc32(uint32_t crc, const uint8_t *p, uint32_t n);

/* Wait for the next intact frame; its header and payload are left in buf (type = buf[0],
 * seq = buf[1], payload at buf + 4); returns the payload's length and its CRC in *crc.
 * A broken frame is answered with a NAK and skipped. buf holds RNNQ_FRAME_HEADER +
 * RNNQ_FRAME_MAX_PAYLOAD bytes. */
uint32_t rnnq_frame_receive(uint8_t *buf, uint32_t *crc);

/* Build a frame in out (RNNQ_FRAME_OVERHEAD + n bytes); returns its length. */
uint32_t rnnq_frame_build(uint8_t *out, uint8_t type, uint8_t seq, const uint8_t *payload,
                          uint32_t n);

/* Send len bytes. */
void rnnq_frame_send(const uint8_t *frame, uint32_t len);

#endif /* RNNQ_FRAME_H */

/* SPDX-License-Identifier: MIT-0 */
/*
 * UART test firmware, board support: an Arm CMSDK APB UART (the MPS2 boards, e.g. QEMU's
 * mps2-an386: UART0 at 0x40004000, 25 MHz). Registers (Cortex-M System Design Kit TRM):
 * DATA 0x00, STATE 0x04 (bit 0 TX full, bit 1 RX full), CTRL 0x08 (bit 0 TX enable, bit 1 RX
 * enable), BAUDDIV 0x10 (at least 16).
 */
#include "rnnq_uart.h"

#define REG(off) (*(volatile uint32_t *)(RNNQ_UART_BASE + (off)))

void rnnq_board_init(void)
{
    REG(0x08) = 0; /* disabled while the divider changes */
    REG(0x10) = (uint32_t)(RNNQ_UART_CLOCK_HZ / RNNQ_UART_BAUD);
    REG(0x08) = 0x3u;
}

void rnnq_uart_put(uint8_t c)
{
    while (REG(0x04) & 0x1u) {
    }
    REG(0x00) = c;
}

uint8_t rnnq_uart_get(void)
{
    while (!(REG(0x04) & 0x2u)) {
    }
    return (uint8_t)REG(0x00);
}

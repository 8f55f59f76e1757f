/* SPDX-License-Identifier: MIT-0 */
/*
 * UART test firmware, board support: the RP2040's PL011 UART0 on GP0 (TX) / GP1 (RX), as on
 * the Raspberry Pi Pico. Facts from the RP2040 datasheet: RESETS at 0x4000C000 (atomic clear
 * alias + 0x3000), CLOCKS at 0x40008000, XOSC at 0x40024000, IO_BANK0 at 0x40014000.
 * The clocks run from the 12 MHz crystal (clk_ref = clk_sys = clk_peri = XOSC; the PLLs are
 * not started), so RNNQ_BOARD_CLOCK_HZ and RNNQ_UART_CLOCK_HZ are 12000000.
 * Booting from flash needs the 256-byte second-stage loader (boot2) of the board's flash chip
 * at 0x10000000, before this firmware (linked at 0x10000100): it is not part of this file.
 */
#include "rnnq_uart.h"

#define R32(addr) (*(volatile uint32_t *)(addr))
#define RESETS_CLR(off) R32(0x4000C000u + 0x3000u + (off))
#define RESETS(off) R32(0x4000C000u + (off))
#define XOSC(off) R32(0x40024000u + (off))
#define CLOCKS(off) R32(0x40008000u + (off))
#define GPIO_CTRL(n) R32(0x40014000u + 0x04u + 8u * (n))
#define UART(off) R32(RNNQ_UART_BASE + (off))

#if RNNQ_BOARD_CLOCK_HZ != 12000000 || RNNQ_UART_CLOCK_HZ != 12000000
#error "bsp_rp2040.c runs everything from the 12 MHz crystal"
#endif

void rnnq_board_init(void)
{
    const uint32_t bits = (1u << 5) | (1u << 8) | (1u << 22); /* IO_BANK0, PADS_BANK0, UART0 */
    uint32_t div;
    XOSC(0x0C) = 47u;                      /* STARTUP: ~1 ms at 12 MHz */
    XOSC(0x00) = 0xAA0u | (0xFABu << 12);  /* 1-15 MHz range, enable */
    while (!(XOSC(0x04) & (1u << 31))) {   /* STABLE */
    }
    CLOCKS(0x30) = 2u;                     /* CLK_REF: XOSC */
    while (!(CLOCKS(0x38) & (1u << 2))) {  /* CLK_REF_SELECTED */
    }
    CLOCKS(0x3C) = 0u;                     /* CLK_SYS: clk_ref */
    CLOCKS(0x48) = (1u << 11) | (4u << 5); /* CLK_PERI: enabled, XOSC */
    RESETS_CLR(0x0) = bits;
    while ((RESETS(0x8) & bits) != bits) { /* RESET_DONE */
    }
    GPIO_CTRL(0) = 2u; /* FUNCSEL: UART */
    GPIO_CTRL(1) = 2u;
    div = (uint32_t)(8u * (uint32_t)RNNQ_UART_CLOCK_HZ / (uint32_t)RNNQ_UART_BAUD);
    UART(0x24) = div >> 7;                 /* UARTIBRD */
    UART(0x28) = ((div & 0x7Fu) + 1u) / 2u; /* UARTFBRD */
    UART(0x2C) = (3u << 5) | (1u << 4);    /* LCR_H: 8 bits, FIFOs (latches the divisor) */
    UART(0x30) = (1u << 0) | (1u << 8) | (1u << 9); /* UARTEN, TXE, RXE */
}

void rnnq_uart_put(uint8_t c)
{
    while (UART(0x18) & (1u << 5)) { /* TXFF */
    }
    UART(0x00) = c;
}

uint8_t rnnq_uart_get(void)
{
    while (UART(0x18) & (1u << 4)) { /* RXFE */
    }
    return (uint8_t)UART(0x00);
}

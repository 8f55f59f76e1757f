/* SPDX-License-Identifier: MIT-0 */
/*
 * Board support of the UART test firmware (harness_uart.c): one file per UART kind
 * (bsp_cmsdk.c, bsp_stm32.c, bsp_rp2040.c) implements these with the board file's values,
 * given as macros: RNNQ_UART_BASE (peripheral address), RNNQ_UART_CLOCK_HZ (the UART's clock),
 * RNNQ_UART_BAUD.
 */
#ifndef RNNQ_UART_H
#define RNNQ_UART_H

#include <stdint.h>

/* Clocks, pins and the UART itself: called once, first thing in main. */
void rnnq_board_init(void);
/* Send one byte (waits while the transmitter is full). */
void rnnq_uart_put(uint8_t c);
/* Receive one byte (waits until one arrives). */
uint8_t rnnq_uart_get(void);

#endif /* RNNQ_UART_H */

/* SPDX-License-Identifier: MIT-0 */
/*
 * UART test firmware, board support: an STM32F4 USART (e.g. USART2 on PA2/PA3, the ST-LINK
 * virtual COM port of the Nucleo-F401RE/F411RE). Facts from RM0368 (STM32F401): RCC at
 * 0x40023800, FLASH interface at 0x40023C00, GPIOA at 0x40020000, USART2 on APB1.
 * With RNNQ_BOARD_CLOCK_HZ = 84000000 the core runs from the PLL fed by the 16 MHz HSI
 * (M 16, N 336, P 4, Q 7; 2 flash wait states; APB1 = HCLK / 2 = RNNQ_UART_CLOCK_HZ);
 * otherwise it stays on the HSI (16 MHz, the reset clock).
 */
#include "rnnq_uart.h"

#define RCC(off) (*(volatile uint32_t *)(0x40023800u + (off)))
#define FLASH_ACR (*(volatile uint32_t *)0x40023C00u)
#define GPIOA(off) (*(volatile uint32_t *)(0x40020000u + (off)))
#define USART(off) (*(volatile uint32_t *)(RNNQ_UART_BASE + (off)))

static void clock_init(void)
{
#if RNNQ_BOARD_CLOCK_HZ == 84000000
    FLASH_ACR = (FLASH_ACR & ~0xFu) | 2u | (1u << 8) | (1u << 9) | (1u << 10);
    while ((FLASH_ACR & 0xFu) != 2u) {
    }
    RCC(0x04) = 16u | (336u << 6) | (1u << 16) | (7u << 24); /* PLLCFGR, source HSI */
    RCC(0x00) |= 1u << 24;                                      /* PLLON */
    while (!(RCC(0x00) & (1u << 25))) {                         /* PLLRDY */
    }
    RCC(0x08) = (RCC(0x08) & ~((0x7u << 10) | 0x3u)) | (0x4u << 10); /* APB1 = HCLK / 2 */
    RCC(0x08) = (RCC(0x08) & ~0x3u) | 0x2u;                          /* system clock = PLL */
    while (((RCC(0x08) >> 2) & 0x3u) != 0x2u) {
    }
#elif RNNQ_BOARD_CLOCK_HZ != 16000000
#error "bsp_stm32.c sets up 84 MHz (PLL) or 16 MHz (HSI) only"
#endif
}

void rnnq_board_init(void)
{
    clock_init();
    RCC(0x30) |= 1u << 0;  /* GPIOA clock */
    RCC(0x40) |= 1u << 17; /* USART2 clock */
    (void)RCC(0x40);
    /* PA2 (TX), PA3 (RX): alternate function 7 */
    GPIOA(0x00) = (GPIOA(0x00) & ~(0xFu << 4)) | (0xAu << 4);
    GPIOA(0x20) = (GPIOA(0x20) & ~(0xFFu << 8)) | (0x77u << 8);
    USART(0x0C) = 0;                                          /* CR1: off */
    USART(0x08) = (uint32_t)((RNNQ_UART_CLOCK_HZ + RNNQ_UART_BAUD / 2) / RNNQ_UART_BAUD); /* BRR */
    USART(0x0C) = (1u << 13) | (1u << 3) | (1u << 2);         /* UE, TE, RE; 8N1 */
}

void rnnq_uart_put(uint8_t c)
{
    while (!(USART(0x00) & (1u << 7))) { /* TXE */
    }
    USART(0x04) = c;
}

uint8_t rnnq_uart_get(void)
{
    while (!(USART(0x00) & ((1u << 5) | (1u << 3)))) { /* RXNE or overrun */
    }
    return (uint8_t)USART(0x04); /* reading SR then DR also clears an overrun */
}

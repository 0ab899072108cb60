/* Board support for Arm MPS2/MPS3 FPGA images (and QEMU's models of them): the CMSDK APB
 * UART0 and SysTick on the processor clock. BOARD_UART_BASE and BOARD_SYSCLK_HZ come from
 * board_config.h. Under QEMU -icount shift=0 the processor clock runs in virtual time, one
 * nanosecond per instruction, so these microseconds count thousands of instructions and a tick
 * 1e9 / BOARD_SYSCLK_HZ instructions (40 at the MPS2's 25 MHz). */
#include <errno.h>
#include <stddef.h>

#include "board.h"
#include "board_config.h"
#include CMSIS_DEVICE_ARM_CORTEX_M_XX_HEADER_FILE

typedef struct {
  volatile uint32_t DATA;
  volatile uint32_t STATE;      /* bit 0: TX buffer full, bit 1: RX buffer full */
  volatile uint32_t CTRL;       /* bit 0: TX enable, bit 1: RX enable */
  volatile uint32_t INTSTATUS;
  volatile uint32_t BAUDDIV;
} CmsdkUart;

#define UART ((CmsdkUart *)BOARD_UART_BASE)
#define RELOAD 0xFFFFFFu

static volatile uint32_t g_wraps;

void SysTick_Handler(void) { g_wraps++; }

void board_init(void) {
  UART->BAUDDIV = BOARD_SYSCLK_HZ / 115200u;
  UART->CTRL = 3u;
  SysTick->LOAD = RELOAD;
  SysTick->VAL = 0u;
  SysTick->CTRL = SysTick_CTRL_CLKSOURCE_Msk | SysTick_CTRL_TICKINT_Msk |
                  SysTick_CTRL_ENABLE_Msk;
}

void board_putc(char c) {
  while (UART->STATE & 1u) {
  }
  UART->DATA = (uint8_t)c;
}

char board_getc(void) {
  while (!(UART->STATE & 2u)) {
  }
  return (char)UART->DATA;
}

static uint64_t ticks(void) {
  uint32_t wraps, value, pending;
  do {
    wraps = g_wraps;
    value = SysTick->VAL;
    pending = SCB->ICSR & SCB_ICSR_PENDSTSET_Msk;
  } while (wraps != g_wraps);
  if (pending && value > RELOAD / 2u) {
    wraps++; /* the counter wrapped and its interrupt is not taken yet */
  }
  return (uint64_t)wraps * (RELOAD + 1u) + (RELOAD - value);
}

uint64_t board_time_us(void) { return ticks() * 1000000u / BOARD_SYSCLK_HZ; }

uint32_t board_ticks(void) { return (uint32_t)ticks(); }

uint32_t board_tick_hz(void) { return BOARD_SYSCLK_HZ; }

/* A heap bounded by the linker script's reservation (newlib's sbrk is not). */
void *_sbrk(ptrdiff_t increment) {
  extern char __end__[], __HeapLimit[];
  static char *top = __end__;
  if (top + increment > __HeapLimit || top + increment < __end__) {
    errno = ENOMEM;
    return (void *)-1;
  }
  char *previous = top;
  top += increment;
  return previous;
}

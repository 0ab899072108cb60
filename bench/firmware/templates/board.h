/* The board-specific part of the firmware: a UART for the MLPerf Tiny serial protocol and a
 * clock. Port these functions to run the same firmware on a real board. */
#ifndef EDGEBENCH_BOARD_H_
#define EDGEBENCH_BOARD_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void board_init(void);          /* UART (8N1) and timer */
void board_putc(char c);        /* blocking write of one character */
char board_getc(void);          /* blocking read of one character */
uint64_t board_time_us(void);   /* microseconds since board_init */
uint32_t board_ticks(void);     /* the clock's ticks since board_init (wrapping): per-op profiles */
uint32_t board_tick_hz(void);   /* its ticks per second */

#ifdef __cplusplus
}
#endif

#endif  /* EDGEBENCH_BOARD_H_ */

/* edgebench's port of the MLPerf Tiny benchmark API (api/submitter_implemented.h): the th_*
 * functions over board.h (UART, clock) and model_runner.h (TFLite Micro). Results are printed
 * as the reference ports print them (m-results-[…] with three decimals), followed by the raw
 * output values (m-results-raw-[…]); the extra command `arena%` answers m-arena-used-<bytes>,
 * and `layers%` profiles one invoke of the loaded input: m-layers-hz-<ticks per second>, then
 * m-layer-<index>-<op>-<ticks> per operator and m-layers-total-<ticks> for the whole invoke;
 * `tensor N` invokes the loaded input once more and prints operator N's output as it ends:
 * m-tensor-<N>-<tensor index>-<TfLiteType>-<bytes>, then m-tensor-data-<hex> lines. */
#include "api/submitter_implemented.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internally_implemented.h"
#include "board.h"
#include "model_runner.h"

namespace {

bool g_ready = false;

void put(const char *text) {
  while (*text) board_putc(*text++);
}

/* %0.3f without printf's float support (newlib-nano leaves it out) */
void put_fixed3(float value) {
  char text[32];
  double v = value;
  const char *sign = "";
  if (v < 0) {
    sign = "-";
    v = -v;
  }
  if (v > 4e9) v = 4e9; /* newlib-nano prints no 64-bit integers */
  unsigned long long milli = (unsigned long long)(v * 1000.0 + 0.5);
  snprintf(text, sizeof(text), "%s%lu.%03u", sign, (unsigned long)(milli / 1000u),
           (unsigned)(milli % 1000u));
  put(text);
}

void report_error(void) { th_printf("e-[TFLite Micro: %s]\r\n", model_error()); }

void report_layers(void) {
  if (!model_profile()) {
    report_error();
    return;
  }
  th_printf("m-layers-hz-%lu\r\n", (unsigned long)board_tick_hz());
  for (size_t i = 0; i < model_layer_count(); ++i) {
    th_printf("m-layer-%u-%s-%lu\r\n", (unsigned)i, model_layer_op(i),
              (unsigned long)model_layer_ticks(i));
  }
  if (model_layers_dropped()) {
    th_printf("m-layers-dropped-%u\r\n", (unsigned)model_layers_dropped());
  }
  th_printf("m-layers-total-%lu\r\n", (unsigned long)model_profile_ticks());
}

}  // namespace

void th_load_tensor() {
  size_t loaded = ee_get_buffer(model_input(), EB_INPUT_BYTES);
  if (loaded != EB_INPUT_BYTES) {
    th_printf("e-[the model takes %u input bytes; %u were loaded]\r\n",
              (unsigned)EB_INPUT_BYTES, (unsigned)loaded);
  }
}

void th_infer() {
  if (g_ready) g_ready = model_invoke();
}

void th_results() {
  if (!g_ready) {
    report_error();
    return;
  }
  size_t n = model_output_count();
  put("m-results-[");
  for (size_t i = 0; i < n; ++i) {
    if (i) board_putc(',');
    put_fixed3(model_output(i));
  }
  put("]\r\nm-results-raw-[");
  for (size_t i = 0; i < n; ++i) {
    char text[16];
    if (model_output_is_float()) {
      snprintf(text, sizeof(text), "%s0x%08lx", i ? "," : "", (unsigned long)model_output_raw(i));
    } else {
      snprintf(text, sizeof(text), "%s%ld", i ? "," : "", model_output_raw(i));
    }
    put(text);
  }
  put("]\r\n");
}

void th_timestamp(void) {
  th_printf(EE_MSG_TIMESTAMP, (unsigned long)board_time_us());
}

void th_printf(const char *format, ...) {
  char text[256];
  va_list args;
  va_start(args, format);
  vsnprintf(text, sizeof(text), format, args);
  va_end(args);
  put(text);
}

char th_getchar() { return board_getc(); }

void th_serialport_initialize(void) { board_init(); }

void th_timestamp_initialize(void) {
  th_printf(EE_MSG_TIMESTAMP_MODE);
  th_timestamp();
}

void th_final_initialize(void) {
  g_ready = model_init();
  if (!g_ready) report_error();
}

void th_pre() {}
void th_post() {}

void th_command_ready(char volatile *command) {
  if (strcmp((const char *)command, "arena") == 0) {
    if (g_ready) {
      th_printf("m-arena-used-%u\r\nm-arena-size-%u\r\n", (unsigned)model_arena_used(),
                (unsigned)model_arena_size());
    } else {
      report_error();
    }
    th_printf(EE_MSG_READY);
    return;
  }
  if (strcmp((const char *)command, "layers") == 0) {
    if (g_ready) {
      th_load_tensor();  /* the input of the last `db load` */
      report_layers();
    } else {
      report_error();
    }
    th_printf(EE_MSG_READY);
    return;
  }
  if (strncmp((const char *)command, "tensor ", 7) == 0) {
    char *end = nullptr;
    long op = strtol((const char *)command + 7, &end, 10);
    if (!g_ready) {
      report_error();
    } else if (end == (const char *)command + 7 || *end != '\0') {
      th_printf("e-[tensor takes an operator index: %s]\r\n", (const char *)command);
    } else {
      th_load_tensor();  /* the input of the last `db load` */
      if (!model_dump_output(op)) report_error();
    }
    th_printf(EE_MSG_READY);
    return;
  }
  ee_serial_command_parser_callback((char *)command);
}

int th_strncmp(const char *a, const char *b, size_t n) { return strncmp(a, b, n); }
char *th_strncpy(char *dest, const char *src, size_t n) { return strncpy(dest, src, n); }
size_t th_strnlen(const char *str, size_t maxlen) {
  size_t n = 0;
  while (n < maxlen && str[n]) ++n;
  return n;
}
char *th_strcat(char *dest, const char *src) { return strcat(dest, src); }
char *th_strtok(char *str, const char *sep) { return strtok(str, sep); }
int th_atoi(const char *str) { return atoi(str); }
void *th_memset(void *b, int c, size_t len) { return memset(b, c, len); }
void *th_memcpy(void *dst, const void *src, size_t n) { return memcpy(dst, src, n); }
int th_vprintf(const char *format, va_list ap) {
  char text[256];
  int n = vsnprintf(text, sizeof(text), format, ap);
  put(text);
  return n;
}

/* The MLPerf Tiny benchmark loop: initialise, then feed every received character to the
 * official command parser (api/internally_implemented.cpp). */
#include "api/internally_implemented.h"
#include "api/submitter_implemented.h"

int main(void) {
  ee_benchmark_initialize();
  for (;;) {
    ee_serial_callback(th_getchar());
  }
}

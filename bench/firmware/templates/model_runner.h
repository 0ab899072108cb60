/* The model under TFLite Micro: set up once, then input, invoke, outputs. */
#ifndef EDGEBENCH_MODEL_RUNNER_H_
#define EDGEBENCH_MODEL_RUNNER_H_

#include <stddef.h>
#include <stdint.h>

bool model_init(void);              /* false: model_error() says why */
const char *model_error(void);      /* the last failure, TFLite Micro's log included */
uint8_t *model_input(void);         /* EB_INPUT_BYTES restored before every invoke */
bool model_invoke(void);
size_t model_output_count(void);
float model_output(size_t i);       /* dequantized */
long model_output_raw(size_t i);    /* the tensor's value (float: its bits) */
bool model_output_is_float(void);
size_t model_arena_used(void);
size_t model_arena_size(void);

#endif  /* EDGEBENCH_MODEL_RUNNER_H_ */

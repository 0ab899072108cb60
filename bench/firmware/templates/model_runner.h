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

/* Per-operator profile (EB_PROFILE builds): one invoke of the loaded input with TFLite Micro's
 * profiler hook timing each operator of the main graph on board_ticks(). */
bool model_profile(void);               /* false: model_error() says why */
size_t model_layer_count(void);
const char *model_layer_op(size_t i);   /* TFLite Micro's operator name */
uint32_t model_layer_ticks(size_t i);
uint32_t model_profile_ticks(void);     /* the whole invoke, input copy included */
size_t model_layers_dropped(void);      /* operators beyond the EB_LAYERS recorded */

/* One profiled invoke of the loaded input that prints main-graph operator `op`'s first output
 * as the operator ends (m-tensor-<op>-<tensor>-<type>-<bytes>, then m-tensor-data-<hex>
 * lines): intermediate tensors for the per-layer agreement check. */
bool model_dump_output(long op);        /* false: model_error() says why */

#endif  /* EDGEBENCH_MODEL_RUNNER_H_ */

#include "model_runner.h"

#include <new>
#include <stdio.h>
#include <string.h>

#include "model_data.h"
#include "op_resolver.h"
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

extern uint8_t g_arena[];        /* arena.cc */
extern const size_t g_arena_size;

namespace {

uint8_t g_input[EB_INPUT_BYTES];
alignas(tflite::MicroInterpreter) uint8_t g_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter *g_interpreter = nullptr;
char g_error[240];

void remember_log(const char *text) {  /* keep the end of TFLite Micro's log */
  size_t have = strlen(g_error), add = strlen(text), room = sizeof(g_error) - 1;
  if (add >= room) {
    text += add - room;
    add = room;
    have = 0;
  } else if (have + add > room) {
    memmove(g_error, g_error + (have + add - room), room - add);
    have = room - add;
  }
  memcpy(g_error + have, text, add);
  g_error[have + add] = '\0';
  for (char *c = g_error; *c; ++c) {
    if (*c == '\r' || *c == '\n' || *c == '[' || *c == ']') *c = ' ';
  }
}

void fail(const char *what) {  /* g_error = "<what>: <the log so far>" */
  char log[sizeof(g_error)];
  strcpy(log, g_error);
  g_error[0] = '\0';
  strncat(g_error, what, sizeof(g_error) - 1);
  strncat(g_error, ": ", sizeof(g_error) - 1 - strlen(g_error));
  strncat(g_error, log, sizeof(g_error) - 1 - strlen(g_error));
}

}  // namespace

bool model_init(void) {
  RegisterDebugLogCallback(remember_log);
  static tflite::MicroMutableOpResolver<kOpCount> resolver;
  if (RegisterOps(resolver) != kTfLiteOk) {
    fail("registering ops failed");
    return false;
  }
  const tflite::Model *model = tflite::GetModel(EB_MODEL_ARRAY);
  g_interpreter = new (g_storage) tflite::MicroInterpreter(model, resolver, g_arena,
                                                           g_arena_size);
  if (g_interpreter->AllocateTensors() != kTfLiteOk) {
    fail("AllocateTensors failed");
    g_interpreter = nullptr;
    return false;
  }
  TfLiteTensor *input = g_interpreter->input(0);
  if (input->bytes != EB_INPUT_BYTES) {
    snprintf(g_error, sizeof(g_error), "input tensor has %u bytes, built for %u",
             (unsigned)input->bytes, (unsigned)EB_INPUT_BYTES);
    g_interpreter = nullptr;
    return false;
  }
  g_error[0] = '\0';
  return true;
}

const char *model_error(void) { return g_error; }

uint8_t *model_input(void) { return g_input; }

bool model_invoke(void) {
  if (g_interpreter == nullptr) return false;
  /* TFLite Micro reuses the input buffer during Invoke(): write it every time */
  memcpy(g_interpreter->input(0)->data.raw, g_input, EB_INPUT_BYTES);
  if (g_interpreter->Invoke() != kTfLiteOk) {
    fail("Invoke failed");
    return false;
  }
  return true;
}

size_t model_output_count(void) {
  if (g_interpreter == nullptr) return 0;
  const TfLiteTensor *out = g_interpreter->output(0);
  switch (out->type) {
    case kTfLiteInt8: case kTfLiteUInt8: return out->bytes;
    case kTfLiteInt16: return out->bytes / 2;
    default: return out->bytes / 4;
  }
}

bool model_output_is_float(void) {
  return g_interpreter != nullptr && g_interpreter->output(0)->type == kTfLiteFloat32;
}

long model_output_raw(size_t i) {
  const TfLiteTensor *out = g_interpreter->output(0);
  switch (out->type) {
    case kTfLiteInt8: return out->data.int8[i];
    case kTfLiteUInt8: return out->data.uint8[i];
    case kTfLiteInt16: return out->data.i16[i];
    default: return (long)out->data.i32[i];  /* int32 values, or a float's bits */
  }
}

float model_output(size_t i) {
  const TfLiteTensor *out = g_interpreter->output(0);
  if (out->type == kTfLiteFloat32) return out->data.f[i];
  float scale = out->params.scale;
  long zero_point = out->params.zero_point;
  long q = model_output_raw(i);
  return scale != 0.0f ? (float)(q - zero_point) * scale : (float)q;
}

size_t model_arena_size(void) { return g_arena_size; }

size_t model_arena_used(void) {
  return g_interpreter == nullptr ? 0 : g_interpreter->arena_used_bytes();
}

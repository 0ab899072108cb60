#include "model_runner.h"

#include <new>
#include <stdio.h>
#include <string.h>

#include "board.h"
#include "model_data.h"
#include "op_resolver.h"
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#include "tensorflow/lite/micro/memory_helpers.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_utils.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/schema/schema_generated.h"

extern uint8_t g_arena[];        /* arena.cc */
extern const size_t g_arena_size;

#ifndef EB_PROFILE
#define EB_PROFILE 1
#endif
#ifndef EB_LAYERS
#define EB_LAYERS 256
#endif
#ifndef EB_TENSOR_LINE
#define EB_TENSOR_LINE 64  /* bytes of a tensor per m-tensor-data line */
#endif

/* Markers for an instrumenting emulator (edgebench's QEMU plugin counts instructions by class
 * between them): empty functions it watches by address. Distinct bodies and `noipa` keep each
 * its own address. */
extern "C" {
__attribute__((noipa, used)) void eb_invoke_begin(void) { __asm__ volatile("@ invoke begin"); }
__attribute__((noipa, used)) void eb_invoke_end(void) { __asm__ volatile("@ invoke end"); }
__attribute__((noipa, used)) void eb_op_begin(void) { __asm__ volatile("@ op begin"); }
__attribute__((noipa, used)) void eb_op_end(void) { __asm__ volatile("@ op end"); }
}

namespace {

/* MicroInterpreter with its context in reach: an operator's output tensor, read between
 * operators (the arena planner may reuse its memory later in the invoke). */
class Interpreter : public tflite::MicroInterpreter {
 public:
  using tflite::MicroInterpreter::MicroInterpreter;
  TfLiteEvalTensor *eval_tensor(int index) {
    return context().GetEvalTensor(&context(), index);
  }
};

void dump_output(size_t op);  /* below: `tensor N%`'s lines */

/* TFLite Micro's profiler hook: the ticks of each operator of the main graph while `on`, nothing
 * else (an operator of a control-flow body counts in the operator that invoked it); marks each
 * operator of the main graph (eb_op_begin/eb_op_end) on every invoke. */
class LayerProfiler : public tflite::MicroProfilerInterface {
 public:
  static constexpr uint32_t kIgnored = 0xFFFFFFFFu;
  bool on = false;
  long dump = -1;  /* the operator whose output is printed as it ends (`tensor N%`) */
  size_t count = 0, dropped = 0;
  const char *ops[EB_LAYERS];
  uint32_t ticks[EB_LAYERS];

  void Start() {
    count = dropped = 0;
    depth_ = 0;
    on = true;
  }
  uint32_t BeginEvent(const char *tag) override {
    if (depth_++ > 0) return kIgnored;
    eb_op_begin();
    if (!on) return kIgnored;
    if (count >= EB_LAYERS) {
      ++dropped;
      return kIgnored;
    }
    ops[count] = tag;
    begin_ = board_ticks();
    return (uint32_t)count;
  }
  void EndEvent(uint32_t handle) override {
    if (on && handle != kIgnored) {
      ticks[handle] = board_ticks() - begin_;
      count = handle + 1;
    }
    if (depth_ > 0 && --depth_ == 0) eb_op_end();
    if (on && handle != kIgnored && (long)handle == dump) dump_output(handle);
  }

 private:
  size_t depth_ = 0;
  uint32_t begin_ = 0;
};

#if EB_PROFILE
LayerProfiler g_profiler;
tflite::MicroProfilerInterface *const g_hook = &g_profiler;
#else
tflite::MicroProfilerInterface *const g_hook = nullptr;
#endif
uint32_t g_profile_ticks = 0;

uint8_t g_input[EB_INPUT_BYTES];
alignas(Interpreter) uint8_t g_storage[sizeof(Interpreter)];
Interpreter *g_interpreter = nullptr;
bool g_dumped = false;
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

void put_text(const char *text) {
  while (*text) board_putc(*text++);
}

void hex_line(const uint8_t *data, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  put_text("m-tensor-data-");
  char text[3] = {0, 0, 0};
  for (size_t i = 0; i < n; ++i) {
    text[0] = kHex[data[i] >> 4];
    text[1] = kHex[data[i] & 15];
    put_text(text);
  }
  put_text("\r\n");
}

/* The first output of main-graph operator `op`, just computed: m-tensor-<op>-<tensor index>-
 * <TfLiteType>-<bytes>, then its bytes in hex, EB_TENSOR_LINE a line. */
void dump_output(size_t op) {
  const tflite::SubGraph *graph = tflite::GetModel(EB_MODEL_ARRAY)->subgraphs()->Get(0);
  const auto *outputs = graph->operators()->Get(op)->outputs();
  if (outputs == nullptr || outputs->size() == 0) return;
  int index = outputs->Get(0);
  TfLiteEvalTensor *tensor = g_interpreter->eval_tensor(index);
  size_t size = 0;
  if (tensor == nullptr || tensor->dims == nullptr || tensor->data.raw == nullptr ||
      tflite::TfLiteTypeSizeOf(tensor->type, &size) != kTfLiteOk) {
    return;
  }
  size_t bytes = (size_t)tflite::ElementCount(*tensor->dims) * size;
  char text[64];
  snprintf(text, sizeof(text), "m-tensor-%u-%d-%d-%u\r\n", (unsigned)op, index,
           (int)tensor->type, (unsigned)bytes);
  put_text(text);
  const uint8_t *data = (const uint8_t *)tensor->data.raw;
  for (size_t at = 0; at < bytes; at += EB_TENSOR_LINE) {
    hex_line(data + at, bytes - at < EB_TENSOR_LINE ? bytes - at : EB_TENSOR_LINE);
  }
  g_dumped = true;
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
  g_interpreter = new (g_storage) Interpreter(model, resolver, g_arena, g_arena_size, nullptr,
                                             g_hook);
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
  eb_invoke_begin();
  TfLiteStatus status = g_interpreter->Invoke();
  eb_invoke_end();
  if (status != kTfLiteOk) {
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

bool model_profile(void) {
#if EB_PROFILE
  if (g_interpreter == nullptr) return false;
  g_profiler.Start();
  uint32_t begin = board_ticks();
  bool ok = model_invoke();
  g_profile_ticks = board_ticks() - begin;
  g_profiler.on = false;
  return ok;
#else
  snprintf(g_error, sizeof(g_error), "this firmware was built without profiling (EB_PROFILE 0)");
  return false;
#endif
}

#if EB_PROFILE
size_t model_layer_count(void) { return g_profiler.count; }
const char *model_layer_op(size_t i) { return g_profiler.ops[i]; }
uint32_t model_layer_ticks(size_t i) { return g_profiler.ticks[i]; }
size_t model_layers_dropped(void) { return g_profiler.dropped; }
#else
size_t model_layer_count(void) { return 0; }
const char *model_layer_op(size_t) { return ""; }
uint32_t model_layer_ticks(size_t) { return 0; }
size_t model_layers_dropped(void) { return 0; }
#endif
uint32_t model_profile_ticks(void) { return g_profile_ticks; }

bool model_dump_output(long op) {
#if EB_PROFILE
  if (g_interpreter == nullptr) return false;
  long ops = (long)tflite::GetModel(EB_MODEL_ARRAY)->subgraphs()->Get(0)->operators()->size();
  if (op < 0 || op >= ops) {
    snprintf(g_error, sizeof(g_error), "no operator %ld: the main graph has %ld", op, ops);
    return false;
  }
  g_dumped = false;
  g_profiler.dump = op;
  bool ok = model_profile();
  g_profiler.dump = -1;
  if (ok && !g_dumped) {
    snprintf(g_error, sizeof(g_error), "operator %ld has no output tensor to print", op);
    return false;
  }
  return ok;
#else
  (void)op;
  snprintf(g_error, sizeof(g_error), "this firmware was built without profiling (EB_PROFILE 0)");
  return false;
#endif
}

/* edgebench's QEMU TCG plugin: executed Thumb-2 instructions of an Arm Cortex-M guest by class,
 * taken branches, and data memory accesses by region (flash or SRAM, from the access address).
 *
 * Built by edgebench with the host compiler; loaded with
 *   qemu-system-arm ... -plugin insn_classes.so,out=FILE,flash=START:SIZE,sram=START:SIZE,
 *                       invoke_begin=ADDR,invoke_end=ADDR,op_begin=ADDR,op_end=ADDR,mem=on
 * (all optional but `out`). Every instruction is in exactly one class, so the classes sum to the
 * instructions QEMU executed (what `-icount` counts). The firmware marks an inference and each
 * operator of it by calling empty functions; the plugin watches their first instruction and sums
 * the counters over marked inferences and per operator index. FILE is rewritten (atomically)
 * after each marked inference and when QEMU exits: one JSON object (see bench/firmware/classes.py).
 *
 * Written against QEMU's plugin API version 1 (QEMU 7.2, include/qemu/qemu-plugin.h); only the
 * declarations used are repeated here, since distributions ship no header. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU plugin API, version 1 (the subset used) ---- */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
typedef uint64_t qemu_plugin_id_t;
typedef uint32_t qemu_plugin_meminfo_t;
typedef struct qemu_info_t {
  const char *target_name;
  struct {
    int min;
    int cur;
  } version;
  bool system_emulation;
  union {
    struct {
      int smp_vcpus;
      int max_vcpus;
    } system;
  };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info,
                                          uint64_t vaddr, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw,
                                      void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);
void qemu_plugin_outs(const char *string);
QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* ---- counters ---- */
enum {
  C_LOAD_STORE,          /* LDR/STR (all sizes), LDRD/STRD, exclusives, VLDR/VSTR */
  C_LOAD_STORE_MULTIPLE, /* LDM/STM, PUSH/POP, VLDM/VSTM, VPUSH/VPOP */
  C_MULTIPLY,            /* MUL, MLA, MLS, SMULxy, SMLAxy, SMLAD, SMLAW, SMMLA, UMULL, SMLAL, UMLAL... */
  C_SIMD,                /* DSP extension: SADD16, UADD8, QADD, SEL, SXTB16, SXTAB, PKHBT... */
  C_FP,                  /* floating point data processing and moves (VFP, cp10/cp11) */
  C_MVE,                 /* the rest of the coprocessor space: Helium (MVE) on Armv8.1-M */
  C_DIVIDE,              /* SDIV, UDIV */
  C_BRANCH,              /* B, B<c>, BL, BX, BLX, CBZ, CBNZ, TBB, TBH, MOV/ADD pc, LE/WLS/DLS */
  C_OTHER,               /* data processing, moves, compares, IT, hints, system */
  N_CLASSES,
  K_TAKEN = N_CLASSES, /* branches whose next executed instruction is not the fall-through */
  K_FLASH_READ,
  K_FLASH_WRITE,
  K_SRAM_READ,
  K_SRAM_WRITE,
  K_OTHER_READ,
  K_OTHER_WRITE,
  N_COUNTERS
};
static const char *const NAMES[N_COUNTERS] = {
    "load_store", "load_store_multiple", "multiply", "simd", "fp", "mve", "divide", "branch",
    "other", "branch_taken", "flash_read", "flash_write", "sram_read", "sram_write",
    "other_read", "other_write"};

#define MAX_OPS 1024
enum { M_INVOKE_BEGIN = 1, M_INVOKE_END, M_OP_BEGIN, M_OP_END };

static uint64_t live[N_COUNTERS];
static uint64_t invoke_sum[N_COUNTERS], invoke_start[N_COUNTERS], op_start[N_COUNTERS];
static uint64_t (*op_sum)[N_COUNTERS];
static uint64_t op_runs[MAX_OPS];
static uint64_t invokes;
static int op_index = -1, op_count;
static bool in_invoke;
static uint64_t marks[5]; /* instruction addresses by marker kind (0: none) */
static uint64_t flash_lo, flash_hi, sram_lo, sram_hi;
static bool count_memory = true;
static char *out_path;

/* after a branch: where execution goes on when it is not taken (0: the last TB did not end in a
 * branch) */
static uint64_t fall_through;

/* ---- Thumb-2 decoding (Armv7-M / Armv8-M ARM, "Thumb instruction set encoding") ---- */
static int classify16(unsigned h) {
  if ((h >> 10) == 0x10) return ((h >> 6) & 0xF) == 0xD ? C_MULTIPLY : C_OTHER; /* MULS */
  if ((h >> 10) == 0x11) {                         /* special data processing, BX, BLX */
    unsigned op = (h >> 8) & 3, rd = ((h >> 4) & 8) | (h & 7);
    if (op == 3 || (op != 1 && rd == 15)) return C_BRANCH;
    return C_OTHER;
  }
  if ((h >> 11) == 0x09) return C_LOAD_STORE;                       /* LDR literal */
  if ((h >> 12) == 0x5 || (h >> 13) == 0x3 || (h >> 13) == 0x4) return C_LOAD_STORE;
  if ((h >> 12) == 0xB) {                                           /* miscellaneous */
    if ((h & 0x0500) == 0x0100) return C_BRANCH;                    /* CBZ, CBNZ */
    if ((h & 0x0600) == 0x0400) return C_LOAD_STORE_MULTIPLE;       /* PUSH, POP */
    return C_OTHER;
  }
  if ((h >> 12) == 0xC) return C_LOAD_STORE_MULTIPLE;               /* STM, LDM */
  if ((h >> 12) == 0xD) return ((h >> 9) & 7) == 7 ? C_OTHER : C_BRANCH; /* B<c>; UDF, SVC */
  if ((h >> 11) == 0x1C) return C_BRANCH;                           /* B */
  return C_OTHER;
}

static int coprocessor(unsigned h1, unsigned h2) {
  unsigned cp = (h2 >> 8) & 0xF;
  if ((h1 & 0x0300) == 0x0300 || (cp & 0xE) != 0xA) return C_MVE;
  if (h1 & 0x0200) return C_FP;                            /* data processing, VMOV, VMRS */
  if ((h1 & 0x01E0) == 0x0040) return C_FP;                /* VMOV two core registers */
  if ((h1 & 0x0120) == 0x0100) return C_LOAD_STORE;        /* VLDR, VSTR */
  return C_LOAD_STORE_MULTIPLE;                            /* VLDM, VSTM, VPUSH, VPOP */
}

static int data_processing_register(unsigned h1, unsigned h2) {
  unsigned a = (h1 >> 4) & 0xF, b = (h2 >> 4) & 0xF;
  if (!(a & 8)) {
    if (b & 8) { /* extend, extend and add */
      unsigned op = a & 7;
      return (op == 2 || op == 3 || (h1 & 0xF) != 0xF) ? C_SIMD : C_OTHER;
    }
    return C_OTHER; /* shift by register */
  }
  if ((b & 0x8) == 0) return C_SIMD;                      /* parallel add and subtract */
  if ((a & 0xC) == 8 && (b & 0xC) == 8)                   /* QADD.., REV.., SEL, CLZ */
    return ((a & 3) == 0 || (a & 3) == 2) ? C_SIMD : C_OTHER;
  return C_OTHER;
}

static int classify32(unsigned h1, unsigned h2) {
  if ((h1 & 0xEC00) == 0xEC00) return coprocessor(h1, h2);
  unsigned op1 = (h1 >> 11) & 3, op2 = (h1 >> 4) & 0x7F;
  if (op1 == 1) {
    if ((op2 & 0x64) == 0x00) return C_LOAD_STORE_MULTIPLE;          /* LDM, STM, PUSH, POP */
    if ((op2 & 0x64) == 0x04)                                        /* dual, exclusive, TBB */
      return (op2 == 0x0D && (h2 & 0xE0) == 0) ? C_BRANCH : C_LOAD_STORE;
    if ((h1 & 0xFFF0) == 0xEAC0) return C_SIMD;                     /* PKHBT, PKHTB */
    return C_OTHER;                                                  /* shifted register */
  }
  if (op1 == 2) {
    if (!(h2 & 0x8000)) return C_OTHER;                              /* immediate operands */
    if (h2 & 0x1000) return C_BRANCH;                                /* B.W, BL */
    if (!(h2 & 0x4000)) return ((h1 >> 7) & 7) == 7 ? C_OTHER : C_BRANCH; /* B<c>.W; MSR.. */
    if (h2 == 0xE801) return C_MVE;                                  /* VCTP */
    return C_BRANCH;                                   /* Armv8.1-M loops, branch future */
  }
  /* op1 == 3 */
  if ((op2 & 0x71) == 0x00) return C_LOAD_STORE;                     /* store single */
  if ((op2 & 0x67) == 0x01 || (op2 & 0x67) == 0x03)                  /* load byte, halfword */
    return (h2 >> 12) == 0xF ? C_OTHER : C_LOAD_STORE;               /* PLD, PLI: hints */
  if ((op2 & 0x67) == 0x05) return C_LOAD_STORE;                     /* load word */
  if ((op2 & 0x70) == 0x20) return data_processing_register(h1, h2);
  if ((op2 & 0x78) == 0x30)                                          /* multiply (accumulate) */
    return ((h1 >> 4) & 7) == 7 && ((h2 >> 4) & 3) == 0 ? C_SIMD : C_MULTIPLY; /* USAD8 */
  if ((op2 & 0x78) == 0x38) {                                        /* long multiply, divide */
    unsigned op = (h1 >> 4) & 7;
    return ((op == 1 || op == 3) && ((h2 >> 4) & 0xF) == 0xF) ? C_DIVIDE : C_MULTIPLY;
  }
  return C_OTHER;
}

static int classify(const struct qemu_plugin_insn *insn) {
  const uint8_t *b = qemu_plugin_insn_data(insn);
  size_t n = qemu_plugin_insn_size(insn);
  unsigned h1 = (unsigned)b[0] | (unsigned)b[1] << 8;
  if (n < 4) return classify16(h1);
  return classify32(h1, (unsigned)b[2] | (unsigned)b[3] << 8);
}

/* ---- output ---- */
static void put_counts(FILE *f, const uint64_t *c) {
  fputc('[', f);
  for (int i = 0; i < N_COUNTERS; ++i) fprintf(f, "%s%" PRIu64, i ? "," : "", c[i]);
  fputc(']', f);
}

static void write_out(void) {
  if (out_path == NULL) return;
  size_t len = strlen(out_path) + 8;
  char *tmp = malloc(len);
  snprintf(tmp, len, "%s.tmp", out_path);
  FILE *f = fopen(tmp, "w");
  if (f == NULL) {
    free(tmp);
    return;
  }
  fputs("{\"format\":1,\"counters\":[", f);
  for (int i = 0; i < N_COUNTERS; ++i) fprintf(f, "%s\"%s\"", i ? "," : "", NAMES[i]);
  fprintf(f, "],\"memory\":%s,\"total\":", count_memory ? "true" : "false");
  put_counts(f, live);
  fprintf(f, ",\"invokes\":%" PRIu64 ",\"invoke\":", invokes);
  put_counts(f, invoke_sum);
  fputs(",\"ops\":[", f);
  for (int i = 0; i < op_count; ++i) {
    fprintf(f, "%s{\"runs\":%" PRIu64 ",\"counts\":", i ? "," : "", op_runs[i]);
    put_counts(f, op_sum[i]);
    fputc('}', f);
  }
  fputs("]}\n", f);
  if (fclose(f) == 0) rename(tmp, out_path);
  free(tmp);
}

/* ---- execution callbacks ---- */
static void add_since(uint64_t *sum, const uint64_t *start) {
  for (int i = 0; i < N_COUNTERS; ++i) sum[i] += live[i] - start[i];
}

static void on_mark(unsigned int vcpu, void *udata) {
  (void)vcpu;
  switch ((int)(intptr_t)udata) {
    case M_INVOKE_BEGIN:
      memcpy(invoke_start, live, sizeof live);
      in_invoke = true;
      op_index = -1;
      break;
    case M_INVOKE_END:
      if (!in_invoke) break;
      add_since(invoke_sum, invoke_start);
      ++invokes;
      in_invoke = false;
      write_out();
      break;
    case M_OP_BEGIN:
      if (!in_invoke) break;
      ++op_index;
      memcpy(op_start, live, sizeof live);
      break;
    case M_OP_END:
      if (!in_invoke || op_index < 0 || op_index >= MAX_OPS) break;
      add_since(op_sum[op_index], op_start);
      ++op_runs[op_index];
      if (op_index + 1 > op_count) op_count = op_index + 1;
      break;
  }
}

static void on_tb(unsigned int vcpu, void *udata) {
  (void)vcpu;
  uint64_t *tb = udata; /* {start, fall-through after its last instruction or 0} */
  if (fall_through && tb[0] != fall_through) ++live[K_TAKEN];
  fall_through = tb[1];
}

static void on_memory(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *ud) {
  (void)vcpu;
  (void)ud;
  int store = qemu_plugin_mem_is_store(info) ? 1 : 0;
  if (vaddr >= flash_lo && vaddr < flash_hi) ++live[K_FLASH_READ + store];
  else if (vaddr >= sram_lo && vaddr < sram_hi) ++live[K_SRAM_READ + store];
  else ++live[K_OTHER_READ + store];
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  if (n == 0) return;
  uint64_t *info = malloc(2 * sizeof(uint64_t)); /* lives as long as the TB may run */
  int cls = C_OTHER;
  for (size_t i = 0; i < n; ++i) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    uint64_t at = qemu_plugin_insn_vaddr(insn);
    if (i == 0) info[0] = at;
    cls = classify(insn);
    qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &live[cls], 1);
    if (count_memory)
      qemu_plugin_register_vcpu_mem_cb(insn, on_memory, QEMU_PLUGIN_CB_NO_REGS,
                                       QEMU_PLUGIN_MEM_RW, NULL);
    for (int k = M_INVOKE_BEGIN; k <= M_OP_END; ++k)
      if (marks[k] && marks[k] == at)
        qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS,
                                               (void *)(intptr_t)k);
    if (i == n - 1)
      info[1] = cls == C_BRANCH ? at + qemu_plugin_insn_size(insn) : 0;
  }
  qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb, QEMU_PLUGIN_CB_NO_REGS, info);
}

static void on_qemu_exit(qemu_plugin_id_t id, void *udata) {
  (void)id;
  (void)udata;
  write_out();
}

/* ---- arguments ---- */
static bool parse_range(const char *text, uint64_t *lo, uint64_t *hi) {
  char *end;
  uint64_t start = strtoull(text, &end, 0);
  if (*end != ':') return false;
  uint64_t size = strtoull(end + 1, &end, 0);
  if (*end) return false;
  *lo = start;
  *hi = start + size;
  return true;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv) {
  static const char *const MARK_NAMES[] = {"", "invoke_begin=", "invoke_end=", "op_begin=",
                                           "op_end="};
  if (info->target_name == NULL || strcmp(info->target_name, "arm") != 0) {
    qemu_plugin_outs("insn_classes: an Arm (32-bit) guest is expected\n");
    return -1;
  }
  for (int i = 0; i < argc; ++i) {
    const char *a = argv[i];
    bool known = false;
    if (strncmp(a, "out=", 4) == 0) {
      out_path = strdup(a + 4);
      known = true;
    } else if (strncmp(a, "flash=", 6) == 0) {
      known = parse_range(a + 6, &flash_lo, &flash_hi);
    } else if (strncmp(a, "sram=", 5) == 0) {
      known = parse_range(a + 5, &sram_lo, &sram_hi);
    } else if (strncmp(a, "mem=", 4) == 0) {
      count_memory = strcmp(a + 4, "off") != 0;
      known = true;
    }
    for (int k = M_INVOKE_BEGIN; k <= M_OP_END && !known; ++k) {
      size_t len = strlen(MARK_NAMES[k]);
      if (strncmp(a, MARK_NAMES[k], len) == 0) {
        marks[k] = strtoull(a + len, NULL, 0) & ~(uint64_t)1; /* a Thumb symbol's bit 0 */
        known = true;
      }
    }
    if (!known) {
      qemu_plugin_outs("insn_classes: unknown or malformed argument: ");
      qemu_plugin_outs(a);
      qemu_plugin_outs("\n");
      return -1;
    }
  }
  if (out_path == NULL) {
    qemu_plugin_outs("insn_classes: out=FILE is required\n");
    return -1;
  }
  op_sum = calloc(MAX_OPS, sizeof *op_sum);
  if (op_sum == NULL) return -1;
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
  write_out();
  qemu_plugin_outs("edgebench-plugin-ready\n"); /* what edgebench waits for (-d plugin) */
  return 0;
}

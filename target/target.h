/* target.h: compilation targets. A target string in TVM's style ("llvm -mcpu=znver4
 * -mattr=+avx512f,+fma -num-cores=2 -fast-math") parses into a tgt_target; "llvm" alone is the
 * host, detected at run time. The canonical string (options sorted, defaults explicit) keys
 * the tuning database. Schedule rules read vector width, cores and caches from here. */
#ifndef KILN_TARGET_TARGET_H
#define KILN_TARGET_TARGET_H

#include "ir/base.h"

typedef struct tgt_target {
  char triple[64];      /* LLVM target triple, e.g. "x86_64-pc-linux-gnu", "aarch64-linux-gnu" */
  char cpu[64];         /* LLVM CPU name, e.g. "znver4", "neoverse-n1", "generic" */
  char features[1024];  /* LLVM feature string, e.g. "+avx512f,+fma" ("" for the CPU's defaults) */
  int num_cores;        /* threads the generated code may use */
  int vector_bits;      /* widest useful vector register: 512 (AVX-512), 256, 128 */
  bool fast_math;       /* allow reassociation and other fast-math flags */
  bool is_host;         /* code will run on this machine (JIT possible) */
  int64_t l1_bytes, l2_bytes, l3_bytes; /* data cache sizes per core (l3: shared), 0 if unknown */
  char canonical[1400]; /* the canonical target string */
} tgt_target;

/* Parses a target string. Unknown options, malformed values and unknown architectures are
 * KILN_ERR_PARSE with a message naming the option. */
kiln_status tgt_target_parse(kiln_context *ctx, const char *s, tgt_target *out);
/* The host: CPU name and features from LLVM, cores and cache sizes from the OS. */
kiln_status tgt_target_host(kiln_context *ctx, tgt_target *out);
/* tgt_target_parse with a given host description instead of the detected one (for tests of
 * hosts kiln is not running on). */
kiln_status tgt_target_parse_for_host(kiln_context *ctx, const char *s, const char *host_triple,
                                      const char *host_cpu, const char *host_features,
                                      int host_cores, tgt_target *out);

#endif

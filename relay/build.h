/* build.h: the build driver. A Relay module and its buckets become a compiled model: the
 * optimization passes once, then per bucket shape binding + FuseOps, every fused group lowered
 * to a PrimFunc (relay/lower.h), kernels shared across calls and buckets by the structural
 * hash of the unscheduled PrimFunc, a schedule per kernel (tuning database or default rules),
 * the TIR pipeline, one shared object (target/aot.h), weights stored once, and a memory plan
 * per bucket; the artifact's sections are described in runtime/FORMAT.md. kiln_compile
 * (include/kiln/kiln.h) is the public entry; the tuner (autotune/) uses the task extraction
 * below. */
#ifndef KILN_RELAY_BUILD_H
#define KILN_RELAY_BUILD_H

#include "relay/relay.h"
#include "target/target.h"

/* The relay module behind a public handle (NULL for NULL); relay/api.c. */
relay_module *relay_api_module(kiln_relay_module *m);

/* A task: one distinct kernel of a model over all its buckets, unscheduled. */
typedef struct relay_build_task {
  const char *name;   /* the kernel's name ("fused_nn_conv2d_add_nn_relu", unique) */
  ir_func *prim;      /* the unscheduled PrimFunc (in the task list's arena) */
  uint64_t hash;      /* workload hash (relay_workload_key) */
  const char *summary;
  double weight;      /* calls per inference, summed over buckets times their weights */
  int ncalls;         /* calls over all buckets */
} relay_build_task;

typedef struct relay_build_tasks {
  kiln_context *ctx;
  ir_arena *arena; /* owns the PrimFuncs and strings */
  int ntasks;
  relay_build_task *tasks;
} relay_build_tasks;

/* Runs the optimization passes and, per bucket, binding, fusion and lowering, and returns
 * the distinct kernels with their weights, in order of first use. m is left as it was.
 * Errors as kiln_compile's. */
kiln_status relay_build_extract_tasks(relay_module *m, int nbuckets, const kiln_bucket *buckets,
                                      relay_build_tasks **out);
void relay_build_tasks_free(relay_build_tasks *t);

/* Where a kernel's schedule came from. */
typedef enum relay_schedule_source {
  RELAY_SCHEDULE_DEFAULT,  /* the default rules */
  RELAY_SCHEDULE_DATABASE, /* the best ok record of the tuning database */
} relay_schedule_source;

/* Schedules the unscheduled PrimFunc `prim` for target t: the best ok record of db (may be
 * NULL) for (hash, t->canonical) replayed, else the default rules. When a record exists but
 * does not replay, *warning (if not NULL) receives a message in `arena` saying so and the
 * default rules are used. Then the TIR pipeline (ir_lower_func). *out is the lowered PrimFunc
 * in arena. */
struct tune_db;
kiln_status relay_build_schedule(kiln_context *ctx, ir_arena *arena, const ir_func *prim,
                                 uint64_t hash, const tgt_target *t, struct tune_db *db,
                                 ir_func **out, relay_schedule_source *source,
                                 const char **warning);

#endif

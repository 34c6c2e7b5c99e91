/* schedule.h: a schedule over one PrimFunc (TensorIR style). The schedule holds the current
 * version of the function and a table of random variables (RVs): handles to blocks, loops
 * and integers that stay valid across primitives. Every primitive and sampling instruction
 * checks its preconditions, rewrites the function (nodes are immutable: the function is
 * rebuilt) and appends itself to the trace, which serializes to JSON and replays on the
 * unscheduled function (trace.c). Default schedule rules live in rules.c. */
#ifndef KILN_SCHEDULE_H
#define KILN_SCHEDULE_H

#include "ir/arith.h"

/* ---- Random variables -------------------------------------------------------------- */

/* An index into the schedule's RV table. */
typedef int32_t sch_rv;
enum { SCH_RV_NONE = -1 };

typedef enum sch_rv_kind {
  SCH_RV_BLOCK, /* a block, by name (block names are unique within a PrimFunc) */
  SCH_RV_LOOP,  /* a loop, by its loop variable (a for keeps its variable when rebuilt);
                 * loop == NULL with special = SCH_LOC_ROOT / SCH_LOC_INLINE are the two
                 * non-loop compute locations sample_compute_location can return */
  SCH_RV_INT    /* an integer (a sampled tile factor, a categorical choice, a constant) */
} sch_rv_kind;

enum { SCH_LOC_NONE = 0, SCH_LOC_ROOT = 1, SCH_LOC_INLINE = 2 };

typedef struct sch_rv_info {
  int32_t kind;      /* sch_rv_kind */
  const char *block; /* BLOCK */
  ir_var *loop;      /* LOOP */
  int32_t special;   /* LOOP with loop == NULL: SCH_LOC_ROOT or SCH_LOC_INLINE */
  int64_t value;     /* INT */
  bool is_const;     /* INT made by sch_int: a trace records it as a literal */
} sch_rv_info;

/* ---- Traces -------------------------------------------------------------------------- */

/* Every instruction: enum, JSON name, replay entry (defined by the file implementing it). */
#define SCH_INSTRUCTIONS(X)                                                   \
  X(GET_BLOCK, "get_block", sch_apply_get_block)                              \
  X(GET_LOOPS, "get_loops", sch_apply_get_loops)                              \
  X(GET_CHILD_BLOCKS, "get_child_blocks", sch_apply_get_child_blocks)         \
  X(SPLIT, "split", sch_apply_split)                                          \
  X(FUSE, "fuse", sch_apply_fuse)                                             \
  X(REORDER, "reorder", sch_apply_reorder)                                    \
  X(PARALLEL, "parallel", sch_apply_parallel)                                 \
  X(VECTORIZE, "vectorize", sch_apply_vectorize)                              \
  X(UNROLL, "unroll", sch_apply_unroll)                                       \
  X(ANNOTATE, "annotate", sch_apply_annotate)                                 \
  X(COMPUTE_AT, "compute_at", sch_apply_compute_at)                           \
  X(REVERSE_COMPUTE_AT, "reverse_compute_at", sch_apply_reverse_compute_at)   \
  X(COMPUTE_INLINE, "compute_inline", sch_apply_compute_inline)               \
  X(REVERSE_COMPUTE_INLINE, "reverse_compute_inline", sch_apply_reverse_compute_inline) \
  X(CACHE_READ, "cache_read", sch_apply_cache_read)                           \
  X(CACHE_WRITE, "cache_write", sch_apply_cache_write)                        \
  X(DECOMPOSE_REDUCTION, "decompose_reduction", sch_apply_decompose_reduction) \
  X(STORAGE_ALIGN, "storage_align", sch_apply_storage_align)                  \
  X(SAMPLE_PERFECT_TILE, "sample_perfect_tile", sch_apply_sample_perfect_tile) \
  X(SAMPLE_CATEGORICAL, "sample_categorical", sch_apply_sample_categorical)   \
  X(SAMPLE_COMPUTE_LOCATION, "sample_compute_location", sch_apply_sample_compute_location)

typedef enum sch_inst_kind {
#define X(e, n, f) SCH_INST_##e,
  SCH_INSTRUCTIONS(X)
#undef X
  SCH_INST_COUNT
} sch_inst_kind;

/* An instruction argument: an RV (an index in the recording schedule) or a literal. */
typedef enum sch_arg_kind { SCH_ARG_RV, SCH_ARG_INT, SCH_ARG_FLOAT, SCH_ARG_STR } sch_arg_kind;
typedef struct sch_arg {
  int32_t kind; /* sch_arg_kind */
  int64_t i;    /* RV index or INT value */
  double f;
  const char *s;
} sch_arg;

enum { SCH_MAX_INST_ARGS = 64 };

/* One instruction. Inputs hold RVs and literal attributes in the order the instruction's
 * entry documents; outputs are the RVs it created; sampling instructions carry their
 * decision. Everything lives in the trace's arena. */
typedef struct sch_inst {
  int32_t kind; /* sch_inst_kind */
  int32_t ninputs;
  sch_arg *inputs;
  int32_t noutputs;
  sch_rv *outputs;
  int32_t ndecision; /* -1: no decision (not a sampling instruction) */
  int64_t *decision;
} sch_inst;

typedef struct sch_trace {
  ir_arena *arena; /* owns insts and their arrays (the schedule's arena) */
  int32_t ninsts, cap;
  sch_inst *insts;
} sch_trace;

/* Replays one instruction on s: inputs with RVs already mapped into s; decision NULL means
 * sample afresh (sampling instructions) and is ignored by the others. Fills outputs (room for
 * SCH_MAX_INST_ARGS) and *noutputs. Each primitive file defines the entries it implements. */
typedef struct sch_schedule sch_schedule;
typedef kiln_status (*sch_apply_fn)(sch_schedule *s, int ninputs, const sch_arg *inputs,
                                    int ndecision, const int64_t *decision, sch_rv *outputs,
                                    int *noutputs);
#define X(e, n, f)                                                                     \
  kiln_status f(sch_schedule *s, int ninputs, const sch_arg *inputs, int ndecision,    \
                const int64_t *decision, sch_rv *outputs, int *noutputs);
SCH_INSTRUCTIONS(X)
#undef X

const char *sch_inst_name(int kind);
int sch_inst_lookup(const char *name); /* -1 when unknown */

/* ---- The schedule -------------------------------------------------------------------- */

struct sch_schedule {
  kiln_context *ctx;
  ir_arena *arena;  /* owns every version of the function, the RV table's strings and the
                     * trace */
  ir_func *orig;    /* the unscheduled function (a deep copy made by sch_new) */
  ir_func *func;    /* the current function */
  int32_t nrvs, cap_rvs;
  sch_rv_info *rvs; /* malloc'ed through ctx */
  sch_trace trace;
  uint64_t rng;     /* sampling state (seeded by sch_new) */
  int32_t counter;  /* for fresh names */
};

/* A schedule over a deep copy of f (f's arena may go away). seed drives the sampling
 * instructions. NULL on failure (error on ctx). */
sch_schedule *sch_new(kiln_context *ctx, const ir_func *f, uint64_t seed);
void sch_free(sch_schedule *s);
/* The current function (owned by the schedule). */
static inline ir_func *sch_func(const sch_schedule *s) { return s->func; }

/* RVs. sch_int makes a constant INT RV (no instruction). */
sch_rv sch_int(sch_schedule *s, int64_t v);
const sch_rv_info *sch_rv_get(const sch_schedule *s, sch_rv rv);
/* The value of an INT RV; MISUSE for another kind. */
kiln_status sch_rv_int(sch_schedule *s, sch_rv rv, int64_t *out);

/* ---- Primitives (one line each here; the files document preconditions) ---------------- */

/* Block and loop queries. Arrays returned (loops, blocks) live in s->arena. */
kiln_status sch_get_block(sch_schedule *s, const char *name, sch_rv *out);
/* The loops around a block, outermost first, up to the nearest enclosing block. */
kiln_status sch_get_loops(sch_schedule *s, sch_rv block, int *n, sch_rv **loops);
/* The blocks directly under a block or a loop (not inside another block), in order. */
kiln_status sch_get_child_blocks(sch_schedule *s, sch_rv parent, int *n, sch_rv **blocks);

/* Loop transformations. split: factors are INT RVs (sch_int or sampled); one of them may be
 * the constant -1 (inferred); a product that does not divide the extent adds a predicate.
 * out gets n loops, outermost first. */
kiln_status sch_split(sch_schedule *s, sch_rv loop, int n, const sch_rv *factors, sch_rv *out);
kiln_status sch_fuse(sch_schedule *s, int n, const sch_rv *loops, sch_rv *out);
kiln_status sch_reorder(sch_schedule *s, int n, const sch_rv *loops);
kiln_status sch_parallel(sch_schedule *s, sch_rv loop);
kiln_status sch_vectorize(sch_schedule *s, sch_rv loop);
kiln_status sch_unroll(sch_schedule *s, sch_rv loop);
/* Adds (or replaces) an annotation on a block or a loop; value: an int, float or string
 * immediate (copied). */
kiln_status sch_annotate(sch_schedule *s, sch_rv target, const char *key, const ir_expr *value);

/* Compute location. A LOOP RV with special ROOT leaves the block where it is; INLINE
 * inlines it (as sample_compute_location produces them). */
kiln_status sch_compute_at(sch_schedule *s, sch_rv block, sch_rv loop, bool preserve_unit_loops);
kiln_status sch_reverse_compute_at(sch_schedule *s, sch_rv block, sch_rv loop,
                                   bool preserve_unit_loops);
kiln_status sch_compute_inline(sch_schedule *s, sch_rv block);
kiln_status sch_reverse_compute_inline(sch_schedule *s, sch_rv block);

/* Caching and reductions. read_index / write_index index the block's read / write regions. */
kiln_status sch_cache_read(sch_schedule *s, sch_rv block, int read_index, const char *scope,
                           sch_rv *out);
kiln_status sch_cache_write(sch_schedule *s, sch_rv block, int write_index, const char *scope,
                            sch_rv *out);
/* Moves the init of a reduction block into its own block placed before `loop`; out: the init
 * block. */
kiln_status sch_decompose_reduction(sch_schedule *s, sch_rv block, sch_rv loop, sch_rv *out);
/* Pads the stride of `axis` of the buffer written by write region buffer_index of block so
 * that stride % factor == offset. */
kiln_status sch_storage_align(sch_schedule *s, sch_rv block, int buffer_index, int axis,
                              int factor, int offset);

/* Sampling. decision NULL samples (from s->rng) and records the decision; a decision given
 * is validated and used. */
kiln_status sch_sample_perfect_tile(sch_schedule *s, sch_rv loop, int n, int max_innermost,
                                    const int64_t *decision, sch_rv *out);
kiln_status sch_sample_categorical(sch_schedule *s, int n, const int64_t *candidates,
                                   const double *probs, const int64_t *decision, sch_rv *out);
/* out: a LOOP RV (a loop the block may be computed at, or the ROOT / INLINE specials).
 * decision: -2 inline, -1 root, k >= 0 the k-th candidate loop. */
kiln_status sch_sample_compute_location(sch_schedule *s, sch_rv block, const int64_t *decision,
                                        sch_rv *out);

/* ---- Traces: record, JSON, replay (trace.c) ----------------------------------------- */

/* Appends an instruction to s->trace (arguments copied). Primitives call it on success. */
kiln_status sch_record(sch_schedule *s, int kind, int ninputs, const sch_arg *inputs,
                       int noutputs, const sch_rv *outputs, int ndecision,
                       const int64_t *decision);
/* An input argument for an RV: a constant INT RV becomes a literal. */
sch_arg sch_arg_rv(const sch_schedule *s, sch_rv rv);
static inline sch_arg sch_arg_int(int64_t v) { return (sch_arg){SCH_ARG_INT, v, 0, NULL}; }
static inline sch_arg sch_arg_float(double v) { return (sch_arg){SCH_ARG_FLOAT, 0, v, NULL}; }
static inline sch_arg sch_arg_str(const char *v) { return (sch_arg){SCH_ARG_STR, 0, 0, v}; }
/* Reads an input during replay: an RV of the given kind, or an INT RV from a literal. */
kiln_status sch_input_rv(sch_schedule *s, const sch_arg *a, int kind, sch_rv *out);

/* JSON text of a trace ({"version": 1, "insts": [...]}), malloc'ed through ctx. */
kiln_status sch_trace_to_json(kiln_context *ctx, const sch_trace *t, char **json, size_t *len);
/* Parses JSON into a trace whose arrays live in arena; malformed JSON, unknown instructions
 * and ill-formed arguments are KILN_ERR_PARSE naming the instruction. */
kiln_status sch_trace_from_json(kiln_context *ctx, ir_arena *arena, const char *json,
                                sch_trace *out);
/* Replays t on s (normally fresh from sch_new on the unscheduled function), recording into
 * s->trace. Instructions whose index is in drop[0..ndrop) re-sample their decisions. */
kiln_status sch_replay(sch_schedule *s, const sch_trace *t, int ndrop, const int *drop);

/* ---- The state underneath (state.c): for primitive implementations ------------------- */

/* Records a schedule error ("split: ...") and returns KILN_ERR_SCHEDULE. */
kiln_status sch_fail(sch_schedule *s, const char *prim, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* New RVs. */
sch_rv sch_new_block_rv(sch_schedule *s, const char *name);
sch_rv sch_new_loop_rv(sch_schedule *s, ir_var *loop);
sch_rv sch_new_int_rv(sch_schedule *s, int64_t v);
/* Resolves an RV in the current function: the block's realize / the loop. A block that no
 * longer exists (inlined) or a loop that was split or fused away is KILN_ERR_SCHEDULE. */
kiln_status sch_get_realize(sch_schedule *s, const char *prim, sch_rv rv,
                            ir_block_realize **out);
kiln_status sch_get_for(sch_schedule *s, const char *prim, sch_rv rv, ir_for **out);
/* The statements from the function body down to target (path[0] = body, path[n-1] =
 * target), in s->arena; NOT_FOUND is KILN_ERR_INTERNAL. */
kiln_status sch_path_to(sch_schedule *s, const ir_stmt *target, int *n, ir_stmt ***path);
/* The nearest block realize enclosing target (the root block for top-level stages). */
kiln_status sch_scope_of(sch_schedule *s, const ir_stmt *target, ir_block_realize **out);
/* The loops around a realize up to its scope, outermost first (in s->arena). */
kiln_status sch_loops_around(sch_schedule *s, const ir_stmt *target, int *n, ir_for ***loops);
/* Rebuilds the function with `old` replaced by repl (repl NULL removes old from the
 * sequence holding it). Loops keep their variables; nothing else is touched. */
kiln_status sch_replace(sch_schedule *s, const ir_stmt *old, ir_stmt *repl);
/* The block realizes directly under a statement (not inside nested blocks), in order. */
kiln_status sch_child_realizes(sch_schedule *s, const ir_stmt *parent, int *n,
                               ir_block_realize ***out);
/* The block realizes under `scope`'s body (direct children of the scope) that write / read
 * buffer b. */
kiln_status sch_writers_of(sch_schedule *s, const ir_block_realize *scope, const ir_buffer *b,
                           int *n, ir_block_realize ***out);
kiln_status sch_readers_of(sch_schedule *s, const ir_block_realize *scope, const ir_buffer *b,
                           int *n, ir_block_realize ***out);
/* A fresh name for a block or buffer based on base, unique in the current function. */
const char *sch_fresh_name(sch_schedule *s, const char *base);
/* Uniform random integers for sampling. */
uint64_t sch_rand(sch_schedule *s);

/* ---- Default schedules (rules.c) ----------------------------------------------------- */

/* What the default rules need to know about the target. */
typedef struct sch_target_info {
  int vector_bits; /* 512 with AVX-512, 256 with AVX2, 128 with NEON/SSE */
  int num_threads; /* threads the parallel outer loops are sized for */
  int num_fma_units; /* FMA pipes per core: accumulators needed to hide latency */
  int64_t l1_bytes, l2_bytes; /* data caches per core (0: unknown) */
} sch_target_info;

/* What the rules need, read from a compilation target (target/target.h). */
typedef struct tgt_target tgt_target;
void sch_target_info_from(const tgt_target *t, sch_target_info *out);

/* Gives every block of s->func a schedule without measurement: inline injective producers,
 * multi-level tiling of conv2d/dense/matmul blocks (vectorized innermost, accumulator tile in
 * registers, parallel outer loops, epilogues computed at the tile), schedules for pooling,
 * softmax, layer_norm and reductions. Records into s->trace like any primitive, using the same
 * sampling instructions with decisions fixed to the defaults. */
kiln_status sch_apply_default_rules(sch_schedule *s, const sch_target_info *t);

#endif

/* lower.h: Relay -> TIR. Each op's compute definition (the `lower` entry of its registry
 * record, in relay/op/) emits TensorIR blocks; relay_lower_func turns one fused "primitive"
 * function into one PrimFunc holding the blocks of all its ops, with intermediate buffers
 * between them, ready for the schedule (schedule/) and the lowering pipeline (ir/transform). */
#ifndef KILN_RELAY_LOWER_H
#define KILN_RELAY_LOWER_H

#include "ir/arith.h"
#include "relay/op.h"

/* What a compute definition works in. Ops see the arena, the analyzer (to simplify index
 * expressions and prove facts about dims) and the op name; the rest is relay_lower's. */
struct relay_lower_ctx {
  kiln_context *ctx;
  ir_arena *arena;  /* owns every node of the PrimFunc */
  ir_analyzer *an;  /* knows the ranges of symbolic dims (>= 1) */
  const char *op;   /* the op being lowered (messages, block names) */
  ir_span span;
  /* private to lower.c: the stages emitted so far (loop nests, in order), the intermediate
   * buffers of the root block and the names given out (block and buffer names are unique
   * within a PrimFunc) */
  int nstages, cap_stages;
  ir_stmt **stages;
  int nallocs, cap_allocs;
  ir_buffer **allocs;
  int nnames, cap_names;
  const char **names;
};

/* The reduction of a block made by relay_lower_compute. */
typedef enum relay_reducer {
  RELAY_REDUCE_NONE, /* out[s] = value */
  RELAY_REDUCE_SUM,  /* init out[s] = 0;        out[s] = out[s] + value */
  RELAY_REDUCE_PROD, /* init out[s] = 1;        out[s] = out[s] * value */
  RELAY_REDUCE_MAX,  /* init out[s] = lowest;   out[s] = max(out[s], value) */
  RELAY_REDUCE_MIN   /* init out[s] = highest;  out[s] = min(out[s], value) */
} relay_reducer;

/* Returns the value of one output element. iters are the block's iterator variables: one per
 * dimension of the output (spatial), then one per reduce axis. NULL on error (recorded). */
typedef ir_expr *(*relay_compute_fn)(relay_lower_ctx *c, ir_var *const *iters, void *ud);

/* Emits one stage: a loop nest over out's shape (spatial loops, outermost first) and then over
 * reduce_extents, around a block named after `name` (made unique) whose iterators are bound
 * one to one to the loops. The block's value is f(iters); its read and write regions are
 * detected from its body (ir_block_detect_regions). For a reducer other than NONE the block
 * gets the init of the table above and accumulates in out's dtype. out must be a parameter or
 * a buffer from relay_lower_buffer; a 0-d out makes a block with no spatial iterator. */
kiln_status relay_lower_compute(relay_lower_ctx *c, const char *name, ir_buffer *out,
                                int nreduce, ir_expr *const *reduce_extents, int reducer,
                                relay_compute_fn f, void *ud);

/* A new intermediate buffer (dense, global scope) allocated by the PrimFunc's root block;
 * the name is made unique. */
ir_buffer *relay_lower_buffer(relay_lower_ctx *c, const char *name, kiln_dtype t, int ndim,
                              ir_expr *const *shape);

/* A unique name within the PrimFunc built from base ("conv2d" -> "conv2d", "conv2d_1", ...),
 * owned by the arena. */
const char *relay_lower_name(relay_lower_ctx *c, const char *base);

/* buf[indices] for an input of rank `ndim` broadcast (numpy rules: ranks aligned at the
 * right, extent-1 dimensions read index 0) against an output whose iterators are
 * out_iters[0..out_ndim). */
ir_expr *relay_lower_load_bcast(relay_lower_ctx *c, ir_buffer *buf, int out_ndim,
                                ir_var *const *out_iters);
/* An int64 constant, and a constant of dtype t (ints, floats, bool). */
ir_expr *relay_lower_i64(relay_lower_ctx *c, int64_t v);
ir_expr *relay_lower_const(relay_lower_ctx *c, kiln_dtype t, double v);

/* A compute definition (relay_lower_fn, op.h). args: one buffer per call argument, shaped
 * by its type (a scalar argument is a 0-d buffer); outs: one buffer per output (the fields of
 * a tuple result). attrs are the call's, in schema order. Emits stages through
 * relay_lower_compute; may make intermediate buffers. Errors go through ir_fail on c->ctx
 * naming the op. */

/* ---- Fused functions -------------------------------------------------------------- */

/* Lowers f (a function whose body calls only ops, tuples and projections; normally a fused
 * group marked primitive, but any such function works) into a PrimFunc called `name`, built
 * in `arena`. Parameters: one int64 scalar per free symbolic dimension (sorted by name; the
 * buffers' shapes use them), then one buffer per parameter of f (a tuple-typed parameter is
 * an error), then one buffer per output (f's result, or each field of a tuple result). The body is a root block
 * ("root") that allocates the intermediates, holding each op's stages in order. An output
 * that is directly a parameter is copied. Attributes: "workload" (relay_workload_summary) and
 * "global_symbol" = name. */
kiln_status relay_lower_func(kiln_context *ctx, ir_arena *arena, const relay_func *f,
                             const char *name, ir_func **out);

/* "fused_" + the ops of f's body joined by "_", dots replaced ("fused_nn_conv2d_add_nn_relu"),
 * a new string in arena; NULL when memory runs out. */
const char *relay_fused_base_name(kiln_context *ctx, ir_arena *arena, const relay_func *f);

/* Lowers every primitive function of a fused module (relay_fuse_ops ran) into a TIR module,
 * one PrimFunc each, named after their fused ops ("fused_nn_conv2d_add_nn_relu", made
 * unique). Functions that are not primitive are not lowered. */
kiln_status relay_lower_module(relay_module *m, kiln_tir_module **out);

/* The workload key of a PrimFunc: its structural hash (what the tuning database keys on) and
 * a readable summary ("nn.conv2d+add+nn.relu (1,64,56,56)f32 (64,64,3,3)f32 ->
 * (1,64,56,56)f32"), the summary being the "workload" attribute when there is one. */
typedef struct relay_workload {
  uint64_t hash;
  const char *summary; /* owned by the arena passed in */
} relay_workload;
kiln_status relay_workload_key(kiln_context *ctx, ir_arena *arena, const ir_func *pf,
                               relay_workload *out);

#endif

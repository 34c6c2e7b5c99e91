/* transform.h: the TIR lowering pipeline, from a scheduled PrimFunc (blocks, loops with
 * kinds, predicates from non-divisible splits) to what target/codegen consumes. The pipeline
 * is one static pass list in transform.c, so its order is the documentation. */
#ifndef KILN_IR_TRANSFORM_H
#define KILN_IR_TRANSFORM_H

#include "node.h"

typedef struct ir_lower_options {
  int max_unroll_extent; /* unrolled loops longer than this stay serial (default 0: 64) */
  bool verify;           /* run ir_verify_func after every pass (tests turn it on) */
} ir_lower_options;

/* A pass: maps a function to a function in arena (f itself when nothing changed), or NULL
 * with the error on ctx. */
typedef ir_func *(*ir_tpass_fn)(kiln_context *ctx, ir_arena *arena, ir_func *f,
                                const ir_lower_options *o);
typedef struct ir_tpass {
  const char *name;
  ir_tpass_fn run;
} ir_tpass;

/* Compact buffer allocation (compact.c): moves each allocation to the innermost statement
 * holding all its accesses and shrinks it to the region they touch there. Runs after blocks
 * are lowered to loops and before buffers are flattened. */
ir_func *ir_compact_allocations(kiln_context *ctx, ir_arena *arena, ir_func *f,
                                const ir_lower_options *o);

/* The pipeline's passes, in order. */
int ir_lower_pass_count(void);
const ir_tpass *ir_lower_pass_at(int i);

/* Runs the whole pipeline on f (o NULL: defaults); the result lives in arena. */
kiln_status ir_lower_func(kiln_context *ctx, ir_arena *arena, ir_func *f,
                          const ir_lower_options *o, ir_func **out);

#endif

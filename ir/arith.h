/* arith.h: integer bound analysis and the arithmetic simplifier. Later passes (lowering,
 * schedules, codegen) ask the analyzer for bounds of index expressions and simplify them. */
#ifndef KILN_IR_ARITH_H
#define KILN_IR_ARITH_H

#include "node.h"

/* A closed integer interval [min, max]; INT64_MIN / INT64_MAX stand for unbounded. */
typedef struct ir_interval {
  int64_t min, max;
} ir_interval;

#define IR_INTERVAL_EVERYTHING ((ir_interval){INT64_MIN, INT64_MAX})

/* An analyzer holds what is known about variables (their ranges) while walking a program. */
typedef struct ir_analyzer ir_analyzer;

ir_analyzer *ir_analyzer_new(ir_arena *arena);
void ir_analyzer_free(ir_analyzer *an);
/* Declares v in [min, max] (replacing earlier knowledge about v). */
kiln_status ir_analyzer_bind(ir_analyzer *an, const ir_var *v, ir_interval range);
/* Bounds of an integer expression under what is known (unknown vars: their dtype's range).
 * Sound also where the program wraps around (uint8 arithmetic); comparisons and bool
 * expressions give [0, 1] or a decided [1, 1] / [0, 0]; floats give "everything". */
ir_interval ir_bound_of(ir_analyzer *an, const ir_expr *e);
/* The simplified expression (the same pointer when nothing changed), or NULL on error.
 * Exact, except that int32/int64 index arithmetic is assumed not to overflow (as in TVM):
 * rules that move multiples out of floordiv/floormod and rearrange orderings rely on it.
 * Canonical sums order their terms by content (names), never by address. */
ir_expr *ir_simplify_expr(ir_analyzer *an, ir_expr *e);
/* Simplifies every expression in a statement, learning loop and block-iterator ranges on the
 * way; removes branches whose conditions are decided and loops of extent 0 or 1. */
ir_stmt *ir_simplify_stmt(ir_analyzer *an, ir_stmt *s);
ir_func *ir_simplify_func(ir_arena *a, ir_func *f);
/* Proves e (a bool expression) true under what is known. */
bool ir_prove(ir_analyzer *an, const ir_expr *e);

#endif

/* arith_internal.h: what bound.c and simplify.c share: the analyzer's layout (ranges bound
 * for good, plus a stack of scoped facts pushed while a loop body, branch or let body is
 * being looked at), integer dtype ranges, exact floor division and the decisions that
 * intervals alone can make. Not for other passes: they use arith.h. */
#ifndef KILN_IR_ARITH_INTERNAL_H
#define KILN_IR_ARITH_INTERNAL_H

#include "arith.h"

/* A scoped fact "var lies in range". Entries live on the C stack of the function that
 * pushed them and are popped (by restoring an->scope) before it returns, so scoped facts
 * never allocate. The innermost fact about a variable wins. */
typedef struct ir_scope {
  const ir_var *var;
  ir_interval range;
  struct ir_scope *next;
} ir_scope;

struct ir_analyzer {
  ir_arena *arena;     /* rewritten nodes go here */
  kiln_context *ctx;
  ir_ptrmap index;     /* var -> (void *)(1 + position in ranges) */
  ir_interval *ranges; /* ranges given by ir_analyzer_bind */
  size_t nranges, cap;
  ir_scope *scope;     /* innermost first */
  int depth;           /* recursion depth of the simplifier and the bound analysis */
};

/* Deeper expressions are left as they are (simplifier) or get their dtype's range (bounds),
 * so that a pathological input cannot exhaust the C stack. */
enum { IR_ARITH_MAX_DEPTH = 1000 };

/* The values of an integer or bool dtype: int8 [-128, 127], uint8 [0, 255], bool [0, 1].
 * int64 and uint64 (whose values above INT64_MAX an interval cannot name), floats and
 * handles give IR_INTERVAL_EVERYTHING, i.e. unknown. */
ir_interval ir_arith_dtype_range(kiln_dtype t);

/* What is known about v: the innermost scoped fact, else its bound range, else its dtype's
 * range. */
ir_interval ir_arith_var_range(const ir_analyzer *an, const ir_var *v);

/* Pushes the fact "v in r" (s is caller storage that must outlive the fact). */
void ir_arith_push(ir_analyzer *an, ir_scope *s, const ir_var *v, ir_interval r);

/* Pushes what cond (or, with negate, !cond) says about single integer variables: comparisons
 * of a variable with anything whose bounds are known (v < e, e >= v, v == e, ...) and
 * conjunctions of them. Uses at most cap entries of buf; returns how many it used. The caller
 * pops them all by restoring an->scope. */
int ir_arith_learn(ir_analyzer *an, const ir_expr *cond, bool negate, ir_scope *buf, int cap);

/* Floor division and modulo (toward -infinity; the remainder has the sign of b). b != 0 and
 * not (a == INT64_MIN && b == -1). */
int64_t ir_arith_floordiv(int64_t a, int64_t b);
int64_t ir_arith_floormod(int64_t a, int64_t b);

/* The quotient a / b of kind IR_DIV (truncating) or IR_FLOORDIV; false when b == 0 or the
 * quotient overflows int64. */
bool ir_arith_quotient(int kind, int64_t a, int64_t b, int64_t *q);

/* Decides the comparison `x OP y` (OP one of IR_EQ .. IR_GE) for every x in a and y in b,
 * where a and b are bounds of operands of dtype t: 1 true, 0 false, -1 unknown. */
int ir_arith_decide(int op, ir_interval a, ir_interval b, kiln_dtype t);

/* True if bounds of dtype t say something: not the "unknown" of uint64. */
bool ir_arith_bound_usable(ir_interval r, kiln_dtype t);

/* Interval sum and product; false when int64 overflows (then nothing is known). */
bool ir_arith_iv_add(ir_interval a, ir_interval b, ir_interval *r);
bool ir_arith_iv_mul(ir_interval a, ir_interval b, ir_interval *r);

/* Where the values of an operation of type t lie when r holds its exact (unwrapped) results
 * and the operation wraps modulo 2^bits: r itself if it lies inside t; else r moved by a
 * multiple of 2^bits if that lands inside t; else t's whole range. */
ir_interval ir_arith_fit(ir_interval r, kiln_dtype t);

#endif

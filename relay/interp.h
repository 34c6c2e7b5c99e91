/* interp.h: the Relay reference interpreter. It evaluates a well-typed module on concrete
 * tensors with the ops' reference kernels (op->eval) and is the ground truth every later
 * numeric test (passes, lowering, code generation) is compared against. Slow and exact:
 * kernels compute in double and round to the output dtype once per element. */
#ifndef KILN_RELAY_INTERP_H
#define KILN_RELAY_INTERP_H

#include "op.h"

/* What a Relay expression evaluates to. Values are reference counted (relay_value_retain /
 * relay_value_release); their memory comes from the context. */
typedef enum relay_value_kind {
  RELAY_VALUE_TENSOR,
  RELAY_VALUE_TUPLE,
  RELAY_VALUE_CLOSURE
} relay_value_kind;

typedef struct relay_value relay_value;
struct relay_value {
  int32_t kind; /* relay_value_kind */
  int32_t refs;
  /* TENSOR: dense row-major data. tensor.owned is false while the data is borrowed (a
   * constant of the module, an argument of the caller); values handed to the caller of
   * relay_interp_run / relay_interp_eval always own their data. */
  relay_tensor tensor;
  /* TUPLE */
  int32_t nfields;
  relay_value **fields;
  /* CLOSURE: a function and the values of its free variables at its creation. */
  const relay_func *func;
  int32_t ncaptured;
  relay_var **captured_vars;
  relay_value **captured;
};

/* Runs the function `func` (normally "main") of m on nargs tensors, which are borrowed and
 * never written. Parameters whose types have symbolic dimensions are bound from the shapes of
 * the arguments (the same dimension must get one value; a mismatch with a constant dimension
 * is KILN_ERR_SHAPE naming the parameter). On success *out is a new value the caller
 * releases; on error *out is NULL, the message is on m->ctx and nothing is leaked.
 * Intermediate results are freed after their last use. */
kiln_status relay_interp_run(const relay_module *m, const char *func, int nargs,
                             const relay_tensor *args, relay_value **out);

/* Evaluates a closed expression (no free variables; globals resolve in m, which may be NULL
 * when e calls none). Used by FoldConstant. Same ownership rules as relay_interp_run. */
kiln_status relay_interp_eval(kiln_context *ctx, const relay_module *m, const relay_expr *e,
                              relay_value **out);

relay_value *relay_value_retain(relay_value *v);
/* Drops one reference; the last one frees the value and what it holds. NULL is ignored. */
void relay_value_release(kiln_context *ctx, relay_value *v);

#endif

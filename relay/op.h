/* op.h: the op registry. Each op is one table entry: its name, arity, attribute schema with
 * defaults, type relation (shape inference with broadcasting and symbolic dims), fusion
 * pattern, reference kernel and compute definition (TIR blocks, relay/lower.h). The entries
 * live in relay/op/, one file per family. */
#ifndef KILN_RELAY_OP_H
#define KILN_RELAY_OP_H

#include "ir/arith.h"
#include "relay.h"

/* How an op fuses (TVM's OpPatternKind, in increasing order of restriction). */
typedef enum relay_pattern {
  RELAY_ELEMWISE = 0,            /* out[i] = f(in[i]), same shapes */
  RELAY_BROADCAST = 1,           /* elementwise with broadcasting */
  RELAY_INJECTIVE = 2,           /* each output element reads one input element (reshape, ...) */
  RELAY_COMM_REDUCE = 3,         /* reductions (sum, max, ...) */
  RELAY_OUT_ELEMWISE_FUSABLE = 4, /* conv2d, dense: can take an elementwise epilogue */
  RELAY_PATTERN_TUPLE = 7,       /* tuple construction */
  RELAY_OPAQUE = 8               /* never fused */
} relay_pattern;

/* One attribute of an op's schema with its default value. */
typedef struct relay_attr_def {
  const char *key;
  int kind;  /* relay_attr_kind */
  int64_t i; /* default for INT */
  double f;  /* default for FLOAT */
  const char *s; /* default for STR */
  int nints;     /* default for INTS */
  int64_t ints[8];
} relay_attr_def;

/* The context of a type relation: where new types and shape expressions go, and the call
 * being typed (for messages). */
typedef struct relay_infer_ctx {
  ir_arena *arena;
  ir_analyzer *an; /* simplifies and compares dimensions */
  const char *op;
  ir_span span;
  bool failed; /* a dimension computation failed (out of memory): that error stands */
} relay_infer_ctx;

/* Computes the type of a call from its argument types (all known) and its attributes (in
 * schema order: attrs[i] is the op's attrs[i]). NULL with the error recorded (relay_type_error). */
typedef relay_type *(*relay_infer_fn)(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                      relay_attr *const *attrs);

/* A dense row-major tensor for reference kernels and the interpreter. */
enum { RELAY_MAX_DIMS = 8 };
typedef struct relay_tensor {
  kiln_dtype dtype;
  int32_t ndim;
  int64_t shape[RELAY_MAX_DIMS];
  void *data;
  size_t nbytes;
  bool owned; /* data was allocated through the context (relay_tensor_free releases it) */
} relay_tensor;

int64_t relay_tensor_numel(const relay_tensor *t);
/* Element i (row-major) of any dtype, as a double; and the reverse (rounding to the dtype:
 * float32/float16/bfloat16 round to nearest even, integers truncate and wrap, bool != 0). */
double relay_tensor_get(const relay_tensor *t, int64_t i);
void relay_tensor_set(relay_tensor *t, int64_t i, double v);
/* Allocates a zeroed tensor of a constant-shape tensor type through the context. */
kiln_status relay_tensor_alloc(kiln_context *ctx, const relay_type *type, relay_tensor *out);
void relay_tensor_free(kiln_context *ctx, relay_tensor *t);

/* The context of a reference kernel. */
typedef struct relay_eval_ctx {
  kiln_context *ctx;
  const char *op;
} relay_eval_ctx;

/* Runs the op on concrete inputs. The outputs are allocated by the caller from the call's
 * inferred type: one tensor, or one per field when the op returns a tuple. */
typedef kiln_status (*relay_eval_fn)(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                     relay_attr *const *attrs, int nouts, relay_tensor *outs);

/* A compute definition (relay/lower.h): builds the op's TIR blocks. */
typedef struct relay_lower_ctx relay_lower_ctx;
typedef kiln_status (*relay_lower_fn)(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                      relay_attr *const *attrs, int nouts,
                                      ir_buffer *const *outs);

typedef struct relay_op {
  const char *name;
  int min_args, max_args; /* max_args -1: any number */
  int pattern;            /* relay_pattern */
  int nattrs;
  const relay_attr_def *attrs;
  relay_infer_fn infer;
  relay_eval_fn eval;
  const char *doc; /* one line */
  relay_lower_fn lower; /* compute definition (relay/lower.h); NULL: the op does not lower */
} relay_op;

/* The op called name, or NULL. */
const relay_op *relay_op_lookup(const char *name);
/* All registered ops (for listings and tests). */
int relay_op_count(void);
const relay_op *relay_op_at(int i);

/* ---- Helpers for type relations ------------------------------------------------------ */

/* Records a type error for the op being typed ("nn.conv2d: ..."), returns NULL. */
relay_type *relay_type_error(relay_infer_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The argument as a tensor type, or NULL with an error naming the argument. */
const relay_tensor_type *relay_arg_tensor(relay_infer_ctx *c, relay_type *const *args, int i);
/* Dimension arithmetic on int64 shape expressions (simplified). */
ir_expr *relay_dim(relay_infer_ctx *c, int64_t v);
ir_expr *relay_dim_binop(relay_infer_ctx *c, int kind, ir_expr *x, ir_expr *y);
/* True when the dimension is provably equal to v / to y. */
bool relay_dim_is(relay_infer_ctx *c, const ir_expr *x, int64_t v);
bool relay_dim_equal(relay_infer_ctx *c, const ir_expr *x, const ir_expr *y);
/* The constant value of a dimension, if it is one. */
bool relay_dim_const(const ir_expr *x, int64_t *v);
/* A dimension ("n * 2") and a shape ("(2, n)", "(3,)") as text for messages, written into buf
 * without allocating. */
const char *relay_dim_str(const ir_expr *e, char *buf, size_t size);
const char *relay_shape_str(const relay_tensor_type *t, char *buf, size_t size);
/* The numpy-style broadcast of two shapes (ranks aligned at the right; a dimension 1
 * stretches; symbolic dimensions must be equal). */
relay_type *relay_broadcast_type(relay_infer_ctx *c, const relay_tensor_type *x,
                                 const relay_tensor_type *y, kiln_dtype out);
/* Attribute accessors (attrs in schema order, so by index). */
static inline int64_t relay_attr_i(relay_attr *const *attrs, int i) { return attrs[i]->i; }
static inline double relay_attr_f(relay_attr *const *attrs, int i) { return attrs[i]->f; }

/* Family tables, concatenated by relay/op/registry.c. */
extern const relay_op relay_ops_elemwise[];
extern const int relay_ops_elemwise_count;
extern const relay_op relay_ops_transform[];
extern const int relay_ops_transform_count;
extern const relay_op relay_ops_reduce[];
extern const int relay_ops_reduce_count;
extern const relay_op relay_ops_nn[];
extern const int relay_ops_nn_count;

#endif

/* elemwise.c: elementwise and broadcasting ops: unary math and activations, binary
 * arithmetic, comparisons and logic with numpy broadcasting, where (a broadcasting select),
 * zeros_like / ones_like. Each op is a table entry (schema, type relation, fusion pattern,
 * reference kernel, compute definition for relay/lower.c); the kernels compute in double and
 * round to the output dtype once per element (relay_tensor_set), so integer results truncate
 * and wrap like a C cast would. cast lives with the other dtype-changing op in transform.c. */
#include <math.h>
#include <string.h>

#include "relay/lower.h"
#include "relay/op.h"

/* ---- Type relations ------------------------------------------------------------------ */

static const char *dt_name(kiln_dtype t, char *buf, size_t size) {
  return kiln_dtype_str(t, buf, size);
}

/* Unary on anything (zeros_like, ones_like): the output has the input's type. */
static relay_type *infer_unary_any(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                   relay_attr *const *attrs) {
  (void)nargs;
  (void)attrs;
  return relay_arg_tensor(c, args, 0) ? args[0] : NULL;
}

/* Unary arithmetic (relu, abs, negative, clip): any number, not bool. */
static relay_type *infer_unary(relay_infer_ctx *c, int nargs, relay_type *const *args,
                               relay_attr *const *attrs) {
  (void)nargs;
  (void)attrs;
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  if (!x) return NULL;
  if (ir_dt_is_bool(x->h.dtype)) return relay_type_error(c, "needs a numeric tensor, not bool");
  return args[0];
}

/* Unary math (exp, sigmoid, gelu, ...): float tensors only (as in TVM: no implicit casts). */
static relay_type *infer_unary_float(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                     relay_attr *const *attrs) {
  (void)nargs;
  (void)attrs;
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  if (!x) return NULL;
  if (!ir_dt_is_float(x->h.dtype)) {
    char dt[32];
    return relay_type_error(c, "needs a float tensor, not %s", dt_name(x->h.dtype, dt, sizeof dt));
  }
  return args[0];
}

static relay_type *infer_unary_bool(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                    relay_attr *const *attrs) {
  (void)nargs;
  (void)attrs;
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  if (!x) return NULL;
  if (!ir_dt_is_bool(x->h.dtype)) {
    char dt[32];
    return relay_type_error(c, "needs a bool tensor, not %s", dt_name(x->h.dtype, dt, sizeof dt));
  }
  return args[0];
}

enum { A_ALPHA = 0 };            /* nn.leaky_relu */
enum { A_MIN = 0, A_MAX = 1 };   /* clip */

static relay_type *infer_clip(relay_infer_ctx *c, int nargs, relay_type *const *args,
                              relay_attr *const *attrs) {
  double lo = relay_attr_f(attrs, A_MIN), hi = relay_attr_f(attrs, A_MAX);
  if (lo != lo || hi != hi) return relay_type_error(c, "a_min and a_max must not be NaN");
  if (lo > hi) return relay_type_error(c, "a_min %g is greater than a_max %g", lo, hi);
  return infer_unary(c, nargs, args, attrs);
}

static relay_type *infer_leaky_relu(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                    relay_attr *const *attrs) {
  double alpha = relay_attr_f(attrs, A_ALPHA);
  if (alpha != alpha) return relay_type_error(c, "alpha must not be NaN");
  return infer_unary_float(c, nargs, args, attrs);
}

/* What the operands of a binary op may be and what it returns. */
typedef enum binary_kind {
  BIN_ARITH,   /* numbers (not bool) in, the same dtype out */
  BIN_COMPARE, /* anything in, bool out */
  BIN_LOGIC    /* bool in, bool out */
} binary_kind;

/* Binary with broadcasting; both operands must have the same dtype (no promotion). */
static relay_type *binary_type(relay_infer_ctx *c, relay_type *const *args, binary_kind kind) {
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  const relay_tensor_type *y = x ? relay_arg_tensor(c, args, 1) : NULL;
  if (!y) return NULL;
  char a[32], b[32];
  if (!ir_dt_eq(x->h.dtype, y->h.dtype))
    return relay_type_error(c, "operand dtypes differ (%s vs %s)", dt_name(x->h.dtype, a, sizeof a),
                            dt_name(y->h.dtype, b, sizeof b));
  if (kind == BIN_ARITH && ir_dt_is_bool(x->h.dtype))
    return relay_type_error(c, "needs numeric operands, not bool");
  if (kind == BIN_LOGIC && !ir_dt_is_bool(x->h.dtype))
    return relay_type_error(c, "needs bool operands, not %s", dt_name(x->h.dtype, a, sizeof a));
  return relay_broadcast_type(c, x, y, kind == BIN_ARITH ? x->h.dtype : KILN_BOOL);
}

static relay_type *infer_arith(relay_infer_ctx *c, int nargs, relay_type *const *args,
                               relay_attr *const *attrs) {
  (void)nargs;
  (void)attrs;
  return binary_type(c, args, BIN_ARITH);
}

static relay_type *infer_compare(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                 relay_attr *const *attrs) {
  (void)nargs;
  (void)attrs;
  return binary_type(c, args, BIN_COMPARE);
}

static relay_type *infer_logic(relay_infer_ctx *c, int nargs, relay_type *const *args,
                               relay_attr *const *attrs) {
  (void)nargs;
  (void)attrs;
  return binary_type(c, args, BIN_LOGIC);
}

/* where(cond, x, y): cond is bool; x and y have one dtype; all three broadcast together. */
static relay_type *infer_where(relay_infer_ctx *c, int nargs, relay_type *const *args,
                               relay_attr *const *attrs) {
  (void)nargs;
  (void)attrs;
  const relay_tensor_type *cond = relay_arg_tensor(c, args, 0);
  const relay_tensor_type *x = cond ? relay_arg_tensor(c, args, 1) : NULL;
  const relay_tensor_type *y = x ? relay_arg_tensor(c, args, 2) : NULL;
  if (!y) return NULL;
  char a[32], b[32];
  if (!ir_dt_is_bool(cond->h.dtype))
    return relay_type_error(c, "the condition must be a bool tensor, not %s",
                            dt_name(cond->h.dtype, a, sizeof a));
  if (!ir_dt_eq(x->h.dtype, y->h.dtype))
    return relay_type_error(c, "the two branches' dtypes differ (%s vs %s)",
                            dt_name(x->h.dtype, a, sizeof a), dt_name(y->h.dtype, b, sizeof b));
  const relay_tensor_type *xy = relay_as_tensor_type(relay_broadcast_type(c, x, y, x->h.dtype));
  return xy ? relay_broadcast_type(c, cond, xy, x->h.dtype) : NULL;
}

/* ---- Reference kernels ------------------------------------------------------------- */

/* The flat index into a broadcast operand for output element i (ranks aligned at the right;
 * a dimension of 1 in the operand repeats). */
static int64_t broadcast_index(const relay_tensor *out, const relay_tensor *in, int64_t i) {
  int64_t idx = 0, stride = 1;
  for (int d = out->ndim - 1, e = in->ndim - 1; d >= 0; d--, e--) {
    int64_t coord = i % out->shape[d];
    i /= out->shape[d];
    if (e < 0) continue;
    if (in->shape[e] != 1) idx += coord * stride;
    stride *= in->shape[e];
  }
  return idx;
}

typedef double (*unary_fn)(double x, relay_attr *const *attrs);
typedef double (*binary_fn)(double x, double y);

static kiln_status eval_unary(unary_fn f, const relay_tensor *args, relay_attr *const *attrs,
                              relay_tensor *out) {
  int64_t n = relay_tensor_numel(out);
  for (int64_t i = 0; i < n; i++) relay_tensor_set(out, i, f(relay_tensor_get(&args[0], i), attrs));
  return KILN_OK;
}

/* Runs f over the broadcast operands. For integer operands a NaN result marks a division
 * by zero (the only way integer arithmetic in double gives NaN), a clean runtime error. */
static kiln_status eval_binary(relay_eval_ctx *c, binary_fn f, const relay_tensor *args,
                               relay_tensor *out) {
  int64_t n = relay_tensor_numel(out);
  bool integer = ir_dt_is_int(args[0].dtype);
  for (int64_t i = 0; i < n; i++) {
    double x = relay_tensor_get(&args[0], broadcast_index(out, &args[0], i));
    double y = relay_tensor_get(&args[1], broadcast_index(out, &args[1], i));
    double r = f(x, y);
    if (integer && r != r)
      return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_RUNTIME, "%s: integer division by zero", c->op);
    relay_tensor_set(out, i, r);
  }
  return KILN_OK;
}

/* Unary functions. */
static double f_relu(double x, relay_attr *const *a) { (void)a; return x > 0 ? x : 0; }
static double f_leaky_relu(double x, relay_attr *const *a) {
  return x > 0 ? x : x * relay_attr_f(a, A_ALPHA);
}
static double f_clip(double x, relay_attr *const *a) {
  double lo = relay_attr_f(a, A_MIN), hi = relay_attr_f(a, A_MAX);
  return x < lo ? lo : x > hi ? hi : x; /* NaN stays NaN */
}
static double sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double hard_sigmoid(double x) {
  double r = (x + 3) / 6; /* relu6(x + 3) / 6 */
  return r < 0 ? 0 : r > 1 ? 1 : r;
}
static double f_sigmoid(double x, relay_attr *const *a) { (void)a; return sigmoid(x); }
static double f_tanh(double x, relay_attr *const *a) { (void)a; return tanh(x); }
static double f_gelu(double x, relay_attr *const *a) {
  (void)a;
  return 0.5 * x * (1 + erf(x / sqrt(2.0)));
}
static double f_silu(double x, relay_attr *const *a) { (void)a; return x * sigmoid(x); }
static double f_hard_sigmoid(double x, relay_attr *const *a) { (void)a; return hard_sigmoid(x); }
static double f_hard_swish(double x, relay_attr *const *a) { (void)a; return x * hard_sigmoid(x); }
static double f_exp(double x, relay_attr *const *a) { (void)a; return exp(x); }
static double f_log(double x, relay_attr *const *a) { (void)a; return log(x); }
static double f_sqrt(double x, relay_attr *const *a) { (void)a; return sqrt(x); }
static double f_rsqrt(double x, relay_attr *const *a) { (void)a; return 1 / sqrt(x); }
static double f_erf(double x, relay_attr *const *a) { (void)a; return erf(x); }
static double f_abs(double x, relay_attr *const *a) { (void)a; return fabs(x); }
static double f_neg(double x, relay_attr *const *a) { (void)a; return -x; }
static double f_floor(double x, relay_attr *const *a) { (void)a; return floor(x); }
static double f_ceil(double x, relay_attr *const *a) { (void)a; return ceil(x); }
/* Half to even, as TIR's round intrinsic, PyTorch and ONNX. */
static double f_round(double x, relay_attr *const *a) { (void)a; return nearbyint(x); }
static double f_not(double x, relay_attr *const *a) { (void)a; return x == 0; }
static double f_zero(double x, relay_attr *const *a) { (void)x; (void)a; return 0; }
static double f_one(double x, relay_attr *const *a) { (void)x; (void)a; return 1; }

/* Binary functions. maximum/minimum propagate NaN (as numpy and PyTorch do). */
static double f_add(double x, double y) { return x + y; }
static double f_sub(double x, double y) { return x - y; }
static double f_mul(double x, double y) { return x * y; }
static double f_div(double x, double y) { return x / y; }
static double f_max(double x, double y) { return x != x || x > y ? x : y; }
static double f_min(double x, double y) { return x != x || x < y ? x : y; }
static double f_pow(double x, double y) { return pow(x, y); }
static double f_eq(double x, double y) { return x == y; }
static double f_ne(double x, double y) { return x != y; }
static double f_less(double x, double y) { return x < y; }
static double f_less_equal(double x, double y) { return x <= y; }
static double f_greater(double x, double y) { return x > y; }
static double f_greater_equal(double x, double y) { return x >= y; }
static double f_and(double x, double y) { return x != 0 && y != 0; }
static double f_or(double x, double y) { return x != 0 || y != 0; }
/* Integer division: truncating (C semantics, TVM's divide); NaN flags a zero divisor. */
static double f_div_int(double x, double y) { return y == 0 ? NAN : trunc(x / y); }
/* floor_divide / floor_mod: rounding toward negative infinity; the remainder has the sign
 * of the divisor (Python, PyTorch's remainder). */
static double f_floor_div(double x, double y) { return floor(x / y); }
static double f_floor_div_int(double x, double y) { return y == 0 ? NAN : floor(x / y); }
static double f_floor_mod(double x, double y) {
  if (y == 0) return NAN;
  double r = fmod(x, y);
  return r != 0 && (r < 0) != (y < 0) ? r + y : r;
}

#define UNARY_EVAL(name, fn)                                                                \
  static kiln_status eval_##name(relay_eval_ctx *c, int nargs, const relay_tensor *args,    \
                                 relay_attr *const *attrs, int nouts, relay_tensor *outs) { \
    (void)c;                                                                                \
    (void)nargs;                                                                            \
    (void)nouts;                                                                            \
    return eval_unary(fn, args, attrs, outs);                                               \
  }
#define BINARY_EVAL(name, fn)                                                               \
  static kiln_status eval_##name(relay_eval_ctx *c, int nargs, const relay_tensor *args,    \
                                 relay_attr *const *attrs, int nouts, relay_tensor *outs) { \
    (void)nargs;                                                                            \
    (void)attrs;                                                                            \
    (void)nouts;                                                                            \
    return eval_binary(c, fn, args, outs);                                                  \
  }

UNARY_EVAL(relu, f_relu)
UNARY_EVAL(leaky_relu, f_leaky_relu)
UNARY_EVAL(clip, f_clip)
UNARY_EVAL(sigmoid, f_sigmoid)
UNARY_EVAL(tanh, f_tanh)
UNARY_EVAL(gelu, f_gelu)
UNARY_EVAL(silu, f_silu)
UNARY_EVAL(hard_sigmoid, f_hard_sigmoid)
UNARY_EVAL(hard_swish, f_hard_swish)
UNARY_EVAL(exp, f_exp)
UNARY_EVAL(log, f_log)
UNARY_EVAL(sqrt, f_sqrt)
UNARY_EVAL(rsqrt, f_rsqrt)
UNARY_EVAL(erf, f_erf)
UNARY_EVAL(abs, f_abs)
UNARY_EVAL(neg, f_neg)
UNARY_EVAL(floor, f_floor)
UNARY_EVAL(ceil, f_ceil)
UNARY_EVAL(round, f_round)
UNARY_EVAL(not, f_not)
UNARY_EVAL(zeros_like, f_zero)
UNARY_EVAL(ones_like, f_one)
BINARY_EVAL(add, f_add)
BINARY_EVAL(sub, f_sub)
BINARY_EVAL(mul, f_mul)
BINARY_EVAL(max, f_max)
BINARY_EVAL(min, f_min)
BINARY_EVAL(pow, f_pow)
BINARY_EVAL(eq, f_eq)
BINARY_EVAL(ne, f_ne)
BINARY_EVAL(less, f_less)
BINARY_EVAL(less_equal, f_less_equal)
BINARY_EVAL(greater, f_greater)
BINARY_EVAL(greater_equal, f_greater_equal)
BINARY_EVAL(and, f_and)
BINARY_EVAL(or, f_or)
BINARY_EVAL(floor_mod, f_floor_mod)

static kiln_status eval_div(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                            relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  (void)nargs;
  (void)attrs;
  (void)nouts;
  return eval_binary(c, ir_dt_is_int(args[0].dtype) ? f_div_int : f_div, args, outs);
}

static kiln_status eval_floor_div(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                  relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  (void)nargs;
  (void)attrs;
  (void)nouts;
  return eval_binary(c, ir_dt_is_int(args[0].dtype) ? f_floor_div_int : f_floor_div, args, outs);
}

static kiln_status eval_where(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                              relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  (void)c;
  (void)nargs;
  (void)attrs;
  (void)nouts;
  int64_t n = relay_tensor_numel(&outs[0]);
  for (int64_t i = 0; i < n; i++) {
    bool cond = relay_tensor_get(&args[0], broadcast_index(&outs[0], &args[0], i)) != 0;
    const relay_tensor *from = cond ? &args[1] : &args[2];
    relay_tensor_set(&outs[0], i, relay_tensor_get(from, broadcast_index(&outs[0], from, i)));
  }
  return KILN_OK;
}

/* ---- Compute definitions (relay/lower.h) ---------------------------------------------- */

/* Each op emits one stage named after it (without "nn.") whose block computes one output
 * element from the broadcast input elements. Values are computed in the dtype (float32 ops
 * in float32), which matches the double-then-round reference within float tolerance and
 * exactly for integers, bools and the select-based ops. NaN behaves as in the kernels:
 * maximum/minimum/clip/hard_sigmoid propagate it (selects, not the IEEE max/min that drop
 * it); relu maps it to 0 like `x > 0 ? x : 0`. */
typedef enum ew_kind {
  EW_RELU, EW_LEAKY_RELU, EW_CLIP, EW_SIGMOID, EW_TANH, EW_GELU, EW_SILU, EW_HARD_SIGMOID,
  EW_HARD_SWISH, EW_EXP, EW_LOG, EW_SQRT, EW_RSQRT, EW_ERF, EW_ABS, EW_NEG, EW_FLOOR, EW_CEIL,
  EW_ROUND, EW_NOT, EW_ZEROS, EW_ONES, EW_ADD, EW_SUB, EW_MUL, EW_DIV, EW_FLOOR_DIV,
  EW_FLOOR_MOD, EW_MAX, EW_MIN, EW_POW, EW_EQ, EW_NE, EW_LT, EW_LE, EW_GT, EW_GE, EW_AND, EW_OR,
  EW_WHERE
} ew_kind;

typedef struct ew_stage {
  ew_kind kind;
  int nargs;
  ir_buffer *const *args;
  ir_buffer *out;
  relay_attr *const *attrs;
} ew_stage;

static ir_expr *call1(ir_arena *a, int op, ir_expr *x) { return ir_call_new(a, op, 1, &x); }

/* select(r < 0, 0, select(r > 1, 1, r)) with r = (x + 3) / 6: relu6(x + 3) / 6. */
static ir_expr *hard_sigmoid_expr(relay_lower_ctx *c, kiln_dtype t, ir_expr *x) {
  ir_arena *a = c->arena;
  ir_expr *zero = relay_lower_const(c, t, 0), *one = relay_lower_const(c, t, 1);
  ir_expr *r = ir_binop(a, IR_DIV, ir_add(a, x, relay_lower_const(c, t, 3)),
                        relay_lower_const(c, t, 6));
  return ir_select_new(a, ir_binop(a, IR_LT, r, zero), zero,
                       ir_select_new(a, ir_binop(a, IR_GT, r, one), one, r));
}

/* v rounded like relay_tensor_set stores a double into an integer dtype: truncated, then
 * wrapped to the width (saturated far outside int64). */
static int64_t int_of(kiln_dtype t, double v) {
  v = trunc(v);
  if (v >= 9.2e18) v = 9.2e18;
  if (v <= -9.2e18) v = -9.2e18;
  uint64_t u = (uint64_t)(int64_t)v;
  if (t.bits >= 64) return (int64_t)u;
  u &= (1ull << t.bits) - 1;
  if (t.code == KILN_TYPE_INT && (u >> (t.bits - 1))) u |= ~((1ull << t.bits) - 1);
  return (int64_t)u;
}

/* clip on integers, with the kernel's double comparisons: x < lo holds for an integer x
 * exactly when x < ceil(lo), and the clipped value is lo truncated. */
static ir_expr *clip_int(relay_lower_ctx *c, kiln_dtype t, ir_expr *x, double lo, double hi) {
  ir_arena *a = c->arena;
  double tmin = t.code == KILN_TYPE_UINT ? 0 : -ldexp(1, t.bits - 1);
  double tmax = t.code == KILN_TYPE_UINT ? ldexp(1, t.bits) - 1 : ldexp(1, t.bits - 1) - 1;
  ir_expr *r = x;
  if (hi < INFINITY && floor(hi) < tmax) { /* else no value is above hi */
    ir_expr *v = ir_int(a, t, int_of(t, hi));
    if (floor(hi) < tmin) r = v; /* every value is above hi */
    else r = ir_select_new(a, ir_binop(a, IR_GT, x, ir_int(a, t, (int64_t)floor(hi))), v, r);
  }
  if (lo > -INFINITY && ceil(lo) > tmin) { /* else no value is below lo */
    ir_expr *v = ir_int(a, t, int_of(t, lo));
    if (ceil(lo) > tmax) r = v; /* every value is below lo */
    else r = ir_select_new(a, ir_binop(a, IR_LT, x, ir_int(a, t, (int64_t)ceil(lo))), v, r);
  }
  return r;
}

static ir_expr *clip_float(relay_lower_ctx *c, kiln_dtype t, ir_expr *x, double lo, double hi) {
  ir_arena *a = c->arena;
  ir_expr *r = x;
  if (hi < INFINITY) {
    ir_expr *h = relay_lower_const(c, t, hi);
    r = ir_select_new(a, ir_binop(a, IR_GT, x, h), h, r);
  }
  if (lo > -INFINITY) {
    ir_expr *l = relay_lower_const(c, t, lo);
    r = ir_select_new(a, ir_binop(a, IR_LT, x, l), l, r);
  }
  return r;
}

static ir_expr *ew_compute(relay_lower_ctx *c, ir_var *const *iters, void *ud) {
  const ew_stage *s = ud;
  ir_arena *a = c->arena;
  int nd = s->out->ndim;
  ir_expr *x = s->nargs > 0 ? relay_lower_load_bcast(c, s->args[0], nd, iters) : NULL;
  ir_expr *y = s->nargs > 1 ? relay_lower_load_bcast(c, s->args[1], nd, iters) : NULL;
  if (!x || (s->nargs > 1 && !y)) return NULL;
  kiln_dtype t = s->args[0]->h.dtype;
  bool fl = ir_dt_is_float(t);
  switch (s->kind) {
  case EW_RELU: return ir_binop(a, IR_MAX, x, relay_lower_const(c, t, 0));
  case EW_LEAKY_RELU:
    return ir_select_new(a, ir_binop(a, IR_GT, x, relay_lower_const(c, t, 0)), x,
                         ir_mul(a, x, relay_lower_const(c, t, relay_attr_f(s->attrs, A_ALPHA))));
  case EW_CLIP: {
    double lo = relay_attr_f(s->attrs, A_MIN), hi = relay_attr_f(s->attrs, A_MAX);
    return fl ? clip_float(c, t, x, lo, hi) : clip_int(c, t, x, lo, hi);
  }
  case EW_SIGMOID: return call1(a, IR_OP_SIGMOID, x);
  case EW_TANH: return call1(a, IR_OP_TANH, x);
  case EW_GELU: {
    ir_expr *e = call1(a, IR_OP_ERF, ir_mul(a, x, relay_lower_const(c, t, 0.70710678118654752440)));
    return ir_mul(a, ir_mul(a, relay_lower_const(c, t, 0.5), x),
                  ir_add(a, relay_lower_const(c, t, 1), e));
  }
  case EW_SILU: return ir_mul(a, x, call1(a, IR_OP_SIGMOID, x));
  case EW_HARD_SIGMOID: return hard_sigmoid_expr(c, t, x);
  case EW_HARD_SWISH: return ir_mul(a, x, hard_sigmoid_expr(c, t, x));
  case EW_EXP: return call1(a, IR_OP_EXP, x);
  case EW_LOG: return call1(a, IR_OP_LOG, x);
  case EW_SQRT: return call1(a, IR_OP_SQRT, x);
  case EW_RSQRT: return call1(a, IR_OP_RSQRT, x);
  case EW_ERF: return call1(a, IR_OP_ERF, x);
  case EW_ABS: return call1(a, IR_OP_FABS, x);
  case EW_NEG: /* x * -1 keeps the sign of zero; unsigned values wrap like the kernel's */
    return fl ? ir_mul(a, x, relay_lower_const(c, t, -1))
              : ir_sub(a, relay_lower_const(c, t, 0), x);
  case EW_FLOOR: return call1(a, IR_OP_FLOOR, x);
  case EW_CEIL: return call1(a, IR_OP_CEIL, x);
  case EW_ROUND: return call1(a, IR_OP_ROUND, x);
  case EW_NOT: return ir_not_new(a, x);
  case EW_ZEROS: return relay_lower_const(c, t, 0);
  case EW_ONES: return relay_lower_const(c, t, 1);
  case EW_ADD: return ir_add(a, x, y);
  case EW_SUB: return ir_sub(a, x, y);
  case EW_MUL: return ir_mul(a, x, y);
  case EW_DIV: return ir_binop(a, IR_DIV, x, y); /* truncating for integers, as the kernel */
  case EW_FLOOR_DIV: return ir_binop(a, IR_FLOORDIV, x, y);
  case EW_FLOOR_MOD: return ir_binop(a, IR_FLOORMOD, x, y);
  case EW_MAX:
  case EW_MIN: {
    int kind = s->kind == EW_MAX ? IR_MAX : IR_MIN;
    if (!fl) return ir_binop(a, kind, x, y);
    /* x != x || x > y ? x : y (NaN in either operand gives NaN) */
    ir_expr *pick = ir_binop(a, IR_OR, ir_binop(a, IR_NE, x, x),
                             ir_binop(a, s->kind == EW_MAX ? IR_GT : IR_LT, x, y));
    return ir_select_new(a, pick, x, y);
  }
  case EW_POW: {
    if (fl) {
      ir_expr *args[2] = {x, y};
      return ir_call_new(a, IR_OP_POW, 2, args);
    }
    /* integers: pow in double, truncated, as the kernel */
    ir_expr *args[2] = {ir_cast_new(a, KILN_FLOAT64, x), ir_cast_new(a, KILN_FLOAT64, y)};
    return ir_cast_new(a, t, ir_call_new(a, IR_OP_POW, 2, args));
  }
  case EW_EQ: return ir_binop(a, IR_EQ, x, y);
  case EW_NE: return ir_binop(a, IR_NE, x, y);
  case EW_LT: return ir_binop(a, IR_LT, x, y);
  case EW_LE: return ir_binop(a, IR_LE, x, y);
  case EW_GT: return ir_binop(a, IR_GT, x, y);
  case EW_GE: return ir_binop(a, IR_GE, x, y);
  case EW_AND: return ir_binop(a, IR_AND, x, y);
  case EW_OR: return ir_binop(a, IR_OR, x, y);
  case EW_WHERE: {
    ir_expr *z = relay_lower_load_bcast(c, s->args[2], nd, iters);
    return z ? ir_select_new(a, x, y, z) : NULL;
  }
  }
  ir_fail(c->ctx, c->span, KILN_ERR_INTERNAL, "%s: unknown elementwise kind %d", c->op,
          (int)s->kind);
  return NULL;
}

/* One stage named after the op ("nn.relu" -> "relu") over the output. */
static kiln_status ew_lower(relay_lower_ctx *c, ew_kind kind, int nargs, ir_buffer *const *args,
                            relay_attr *const *attrs, ir_buffer *out) {
  ew_stage s = {kind, nargs, args, out, attrs};
  const char *name = strncmp(c->op, "nn.", 3) == 0 ? c->op + 3 : c->op;
  return relay_lower_compute(c, name, out, 0, NULL, RELAY_REDUCE_NONE, ew_compute, &s);
}

#define EW_LOWER(name, kind)                                                                \
  static kiln_status lower_##name(relay_lower_ctx *c, int nargs, ir_buffer *const *args,    \
                                  relay_attr *const *attrs, int nouts,                      \
                                  ir_buffer *const *outs) {                                 \
    (void)nouts;                                                                            \
    return ew_lower(c, kind, nargs, args, attrs, outs[0]);                                  \
  }

EW_LOWER(relu, EW_RELU)
EW_LOWER(leaky_relu, EW_LEAKY_RELU)
EW_LOWER(clip, EW_CLIP)
EW_LOWER(sigmoid, EW_SIGMOID)
EW_LOWER(tanh, EW_TANH)
EW_LOWER(gelu, EW_GELU)
EW_LOWER(silu, EW_SILU)
EW_LOWER(hard_sigmoid, EW_HARD_SIGMOID)
EW_LOWER(hard_swish, EW_HARD_SWISH)
EW_LOWER(exp, EW_EXP)
EW_LOWER(log, EW_LOG)
EW_LOWER(sqrt, EW_SQRT)
EW_LOWER(rsqrt, EW_RSQRT)
EW_LOWER(erf, EW_ERF)
EW_LOWER(abs, EW_ABS)
EW_LOWER(neg, EW_NEG)
EW_LOWER(floor, EW_FLOOR)
EW_LOWER(ceil, EW_CEIL)
EW_LOWER(round, EW_ROUND)
EW_LOWER(not, EW_NOT)
EW_LOWER(zeros_like, EW_ZEROS)
EW_LOWER(ones_like, EW_ONES)
EW_LOWER(add, EW_ADD)
EW_LOWER(sub, EW_SUB)
EW_LOWER(mul, EW_MUL)
EW_LOWER(div, EW_DIV)
EW_LOWER(floor_div, EW_FLOOR_DIV)
EW_LOWER(floor_mod, EW_FLOOR_MOD)
EW_LOWER(max, EW_MAX)
EW_LOWER(min, EW_MIN)
EW_LOWER(pow, EW_POW)
EW_LOWER(eq, EW_EQ)
EW_LOWER(ne, EW_NE)
EW_LOWER(less, EW_LT)
EW_LOWER(less_equal, EW_LE)
EW_LOWER(greater, EW_GT)
EW_LOWER(greater_equal, EW_GE)
EW_LOWER(and, EW_AND)
EW_LOWER(or, EW_OR)
EW_LOWER(where, EW_WHERE)

/* ---- The table ------------------------------------------------------------------------ */

static const relay_attr_def leaky_relu_attrs[] = {
    {"alpha", RELAY_ATTR_FLOAT, 0, 0.01, NULL, 0, {0}},
};
/* The defaults clip nothing (infinite bounds are never printed: they are the defaults). */
static const relay_attr_def clip_attrs[] = {
    {"a_min", RELAY_ATTR_FLOAT, 0, -INFINITY, NULL, 0, {0}},
    {"a_max", RELAY_ATTR_FLOAT, 0, INFINITY, NULL, 0, {0}},
};

#define UNARY(name, infer, fn, doc) \
  {name, 1, 1, RELAY_ELEMWISE, 0, NULL, infer, eval_##fn, doc, lower_##fn}
#define BINARY(name, infer, fn, doc) \
  {name, 2, 2, RELAY_BROADCAST, 0, NULL, infer, eval_##fn, doc, lower_##fn}

const relay_op relay_ops_elemwise[] = {
    /* activations */
    UNARY("nn.relu", infer_unary, relu, "max(x, 0)"),
    {"nn.leaky_relu", 1, 1, RELAY_ELEMWISE, 1, leaky_relu_attrs, infer_leaky_relu,
     eval_leaky_relu, "x if x > 0 else alpha * x (float)", lower_leaky_relu},
    {"clip", 1, 1, RELAY_ELEMWISE, 2, clip_attrs, infer_clip, eval_clip,
     "x limited to [a_min, a_max]", lower_clip},
    UNARY("sigmoid", infer_unary_float, sigmoid, "1 / (1 + e^-x)"),
    UNARY("tanh", infer_unary_float, tanh, "hyperbolic tangent"),
    UNARY("gelu", infer_unary_float, gelu, "0.5 * x * (1 + erf(x / sqrt(2))) (the erf form)"),
    UNARY("silu", infer_unary_float, silu, "x * sigmoid(x)"),
    UNARY("hard_sigmoid", infer_unary_float, hard_sigmoid, "relu6(x + 3) / 6 (PyTorch)"),
    UNARY("hard_swish", infer_unary_float, hard_swish, "x * hard_sigmoid(x)"),
    /* math */
    UNARY("exp", infer_unary_float, exp, "e^x"),
    UNARY("log", infer_unary_float, log, "natural logarithm"),
    UNARY("sqrt", infer_unary_float, sqrt, "square root"),
    UNARY("rsqrt", infer_unary_float, rsqrt, "1 / sqrt(x)"),
    UNARY("erf", infer_unary_float, erf, "the error function"),
    UNARY("abs", infer_unary, abs, "|x|"),
    UNARY("negative", infer_unary, neg, "-x"),
    UNARY("floor", infer_unary_float, floor, "round toward negative infinity"),
    UNARY("ceil", infer_unary_float, ceil, "round toward positive infinity"),
    UNARY("round", infer_unary_float, round, "round to nearest, ties to even"),
    UNARY("logical_not", infer_unary_bool, not, "!x (bool)"),
    UNARY("zeros_like", infer_unary_any, zeros_like, "zeros of x's type"),
    UNARY("ones_like", infer_unary_any, ones_like, "ones of x's type"),
    /* binary arithmetic */
    BINARY("add", infer_arith, add, "x + y with broadcasting"),
    BINARY("subtract", infer_arith, sub, "x - y with broadcasting"),
    BINARY("multiply", infer_arith, mul, "x * y with broadcasting"),
    BINARY("divide", infer_arith, div, "x / y (truncating for integers) with broadcasting"),
    BINARY("floor_divide", infer_arith, floor_div, "floor(x / y) with broadcasting"),
    BINARY("floor_mod", infer_arith, floor_mod,
           "x - floor(x / y) * y (the divisor's sign) with broadcasting"),
    BINARY("maximum", infer_arith, max, "elementwise maximum with broadcasting"),
    BINARY("minimum", infer_arith, min, "elementwise minimum with broadcasting"),
    BINARY("power", infer_arith, pow, "x ^ y with broadcasting"),
    /* comparisons and logic */
    BINARY("equal", infer_compare, eq, "x == y (bool) with broadcasting"),
    BINARY("not_equal", infer_compare, ne, "x != y (bool) with broadcasting"),
    BINARY("less", infer_compare, less, "x < y (bool) with broadcasting"),
    BINARY("less_equal", infer_compare, less_equal, "x <= y (bool) with broadcasting"),
    BINARY("greater", infer_compare, greater, "x > y (bool) with broadcasting"),
    BINARY("greater_equal", infer_compare, greater_equal, "x >= y (bool) with broadcasting"),
    BINARY("logical_and", infer_logic, and, "x && y (bool) with broadcasting"),
    BINARY("logical_or", infer_logic, or, "x || y (bool) with broadcasting"),
    {"where", 3, 3, RELAY_BROADCAST, 0, NULL, infer_where, eval_where,
     "x where cond else y (cond bool; all three broadcast)", lower_where},
};
const int relay_ops_elemwise_count = sizeof relay_ops_elemwise / sizeof relay_ops_elemwise[0];

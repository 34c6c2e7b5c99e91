/* reduce.c: reductions over axes: sum, mean, prod, max, min. Attributes as in TVM: `axis` (a
 * list of axes, negative ones counting from the end; empty reduces every axis) and `keepdims`
 * (reduced axes stay as dimensions of 1); TVM's `exclude` is not supported. mean needs a float
 * tensor (as in TVM; cast integers first); sum and prod reject bool. The reference kernel
 * accumulates in double and rounds to the dtype once per output element; the compute
 * definitions (relay/lower.h) emit one TIR reduction block per op (two for mean). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "relay/lower.h"
#include "relay/op.h"

enum { A_AXIS, A_KEEPDIMS }; /* attribute indices, in schema order */

static const relay_attr_def reduce_attrs[] = {
    {"axis", RELAY_ATTR_INTS, 0, 0, NULL, 0, {0}}, /* empty: every axis */
    {"keepdims", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}},
};

/* The reductions; the kernel switches on it. */
typedef enum reduce_kind { R_SUM, R_MEAN, R_PROD, R_MAX, R_MIN } reduce_kind;

/* Marks the reduced axes of an ndim tensor in red[]. Negative axes count from the end; an
 * axis out of range or listed twice is an error (message through c when c is not NULL). */
static bool reduced_axes(relay_infer_ctx *c, int ndim, const relay_attr *axis, bool *red) {
  for (int i = 0; i < ndim; i++) red[i] = axis->nints == 0;
  bool seen[RELAY_MAX_DIMS] = {false};
  for (int i = 0; i < axis->nints; i++) {
    int64_t a = axis->ints[i] < 0 ? axis->ints[i] + ndim : axis->ints[i];
    if (a < 0 || a >= ndim) {
      if (c)
        relay_type_error(c, "axis %lld is out of range for a tensor of rank %d",
                         (long long)axis->ints[i], ndim);
      return false;
    }
    if (seen[a]) {
      if (c) relay_type_error(c, "axis %lld is listed twice", (long long)a);
      return false;
    }
    seen[a] = red[a] = true;
  }
  return true;
}

/* The type relation shared by all reductions; `kind` says which dtypes the op accepts. */
static relay_type *reduce_type(relay_infer_ctx *c, relay_type *const *args,
                               relay_attr *const *attrs, reduce_kind kind) {
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  bool red[RELAY_MAX_DIMS];
  if (!x || !reduced_axes(c, x->ndim, attrs[A_AXIS], red)) return NULL;
  int64_t keep = relay_attr_i(attrs, A_KEEPDIMS);
  if (keep != 0 && keep != 1)
    return relay_type_error(c, "keepdims must be 0 or 1, not %lld", (long long)keep);
  char dt[32];
  kiln_dtype_str(x->h.dtype, dt, sizeof dt);
  if (kind == R_MEAN && !ir_dt_is_float(x->h.dtype))
    return relay_type_error(c, "needs a float tensor, not %s (cast integers first)", dt);
  if ((kind == R_SUM || kind == R_PROD) && ir_dt_is_bool(x->h.dtype))
    return relay_type_error(c, "needs a numeric tensor, not bool");
  ir_expr *dims[RELAY_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < x->ndim; i++) {
    if (!red[i]) dims[nd++] = x->shape[i];
    else if (keep) dims[nd++] = relay_dim(c, 1);
  }
  return relay_tensor_type_new(c->arena, x->h.dtype, nd, dims);
}

#define REDUCE_INFER(name, kind)                                                             \
  static relay_type *infer_##name(relay_infer_ctx *c, int nargs, relay_type *const *args,    \
                                  relay_attr *const *attrs) {                                \
    (void)nargs;                                                                             \
    return reduce_type(c, args, attrs, kind);                                                \
  }
REDUCE_INFER(sum, R_SUM)
REDUCE_INFER(mean, R_MEAN)
REDUCE_INFER(prod, R_PROD)
REDUCE_INFER(max, R_MAX)
REDUCE_INFER(min, R_MIN)

/* The kernel: one accumulator (double) per output element. Input element i goes to the output
 * element whose coordinates are i's with the reduced axes dropped (keepdims does not change
 * the flat output index). max/min propagate NaN and need a non-empty reduction. */
static kiln_status reduce_eval(relay_eval_ctx *c, const relay_tensor *x, relay_attr *const *attrs,
                               relay_tensor *out, reduce_kind kind) {
  bool red[RELAY_MAX_DIMS];
  if (!reduced_axes(NULL, x->ndim, attrs[A_AXIS], red))
    return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_SHAPE, "%s: bad axis for a tensor of rank %d",
                   c->op, (int)x->ndim);
  int64_t n = relay_tensor_numel(x), nout = relay_tensor_numel(out);
  if (nout == 0) return KILN_OK;
  if (n == 0 && (kind == R_MAX || kind == R_MIN))
    return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_RUNTIME, "%s: reduction over no elements", c->op);
  size_t bytes = sizeof(double) * (size_t)nout;
  double *acc = ir_malloc(c->ctx, bytes);
  if (!acc) return KILN_ERR_NOMEM;
  double init = kind == R_PROD ? 1 : kind == R_MAX ? -INFINITY : kind == R_MIN ? INFINITY : 0;
  for (int64_t o = 0; o < nout; o++) acc[o] = init;
  for (int64_t i = 0; i < n; i++) {
    int64_t rem = i, o = 0, stride = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
      int64_t coord = rem % x->shape[d];
      rem /= x->shape[d];
      if (!red[d]) {
        o += coord * stride;
        stride *= x->shape[d];
      }
    }
    double v = relay_tensor_get(x, i);
    switch (kind) {
    case R_SUM:
    case R_MEAN: acc[o] += v; break;
    case R_PROD: acc[o] *= v; break;
    case R_MAX: if (v != v || v > acc[o]) acc[o] = v; break; /* a NaN sticks: NaN > v is false */
    case R_MIN: if (v != v || v < acc[o]) acc[o] = v; break;
    }
  }
  double count = (double)(n / nout); /* elements per output */
  for (int64_t o = 0; o < nout; o++) relay_tensor_set(out, o, kind == R_MEAN ? acc[o] / count : acc[o]);
  ir_free(c->ctx, acc, bytes);
  return KILN_OK;
}

#define REDUCE_EVAL(name, kind)                                                               \
  static kiln_status eval_##name(relay_eval_ctx *c, int nargs, const relay_tensor *args,      \
                                 relay_attr *const *attrs, int nouts, relay_tensor *outs) {   \
    (void)nargs;                                                                              \
    (void)nouts;                                                                              \
    return reduce_eval(c, &args[0], attrs, &outs[0], kind);                                   \
  }
REDUCE_EVAL(sum, R_SUM)
REDUCE_EVAL(mean, R_MEAN)
REDUCE_EVAL(prod, R_PROD)
REDUCE_EVAL(max, R_MAX)
REDUCE_EVAL(min, R_MIN)

/* ---- Compute definitions (relay/lower.h) ---------------------------------------------- */

/* The input, the reduced axes and keepdims, for the compute function. */
typedef struct reduce_io {
  ir_buffer *x, *out;
  bool red[RELAY_MAX_DIMS];
  bool keep;
  reduce_kind kind;
  ir_buffer *sum; /* mean: the sums; bool max / min: the uint8 results */
} reduce_io;

/* The input element a reduction block accumulates: the spatial iterators index the kept
 * axes (with keepdims, an output axis of 1 stands for each reduced one and is skipped), the
 * reduce iterators (after the output's) the reduced axes in order. */
static ir_expr *reduce_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  reduce_io *io = ud;
  ir_expr *idx[RELAY_MAX_DIMS];
  int s = 0, r = io->out->ndim;
  for (int d = 0; d < io->x->ndim; d++) {
    if (io->red[d]) {
      idx[d] = (ir_expr *)it[r++];
      if (io->keep) s++;
    } else {
      idx[d] = (ir_expr *)it[s++];
    }
  }
  return ir_load_new(c->arena, io->x, io->x->ndim, idx);
}

/* mean's last stage: the sum divided by the element count (the product of the reduced
 * dimensions, converted to the output's float type). */
static ir_expr *mean_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  reduce_io *io = ud;
  ir_expr *idx[RELAY_MAX_DIMS];
  for (int d = 0; d < io->out->ndim; d++) idx[d] = (ir_expr *)it[d];
  ir_expr *count = relay_lower_i64(c, 1);
  for (int d = 0; d < io->x->ndim && count; d++)
    if (io->red[d]) count = ir_binop(c->arena, IR_MUL, count, io->x->shape[d]);
  count = count ? ir_simplify_expr(c->an, count) : NULL;
  int64_t k;
  ir_expr *div = count && relay_dim_const(count, &k)
                     ? relay_lower_const(c, io->out->h.dtype, (double)k)
                     : ir_cast_new(c->arena, io->out->h.dtype, count);
  ir_expr *sum = ir_load_new(c->arena, io->sum, io->out->ndim, idx);
  return ir_binop(c->arena, IR_DIV, sum, div);
}

/* What a reduction over no elements gives (reduced axes of size 0): the loops around its
 * block would not run, so neither would its init. sum 0, prod 1, mean 0 / 0 (NaN) as in the
 * reference; max and min, an error there, give the lowest / highest value of the type. */
static ir_expr *empty_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  (void)it;
  reduce_io *io = ud;
  kiln_dtype t = io->out->h.dtype;
  switch (io->kind) {
  case R_SUM: return relay_lower_const(c, t, 0);
  case R_PROD: return relay_lower_const(c, t, 1);
  case R_MEAN: return relay_lower_const(c, t, NAN);
  case R_MAX:
  case R_MIN: break;
  }
  bool lowest = io->kind == R_MAX;
  if (ir_dt_is_float(t)) return relay_lower_const(c, t, lowest ? -INFINITY : INFINITY);
  if (ir_dt_is_bool(t)) return relay_lower_const(c, t, lowest ? 0 : 1);
  /* uint64 constants stop at INT64_MAX in TIR */
  int64_t hi = t.bits >= 64                ? INT64_MAX
               : t.code == KILN_TYPE_UINT ? (int64_t)((1ull << t.bits) - 1)
                                          : (int64_t)((1ull << (t.bits - 1)) - 1);
  int64_t lo = t.code == KILN_TYPE_UINT ? 0 : -hi - 1;
  return ir_int(c->arena, t, lowest ? lo : hi);
}

/* bool max / min: the block reduces the input as uint8 (TIR has no max of bools). */
static ir_expr *reduce_value_u8(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  ir_expr *v = reduce_value(c, it, ud);
  return v ? ir_cast_new(c->arena, KILN_UINT8, v) : NULL;
}

/* ... and a second block converts the result back. */
static ir_expr *from_u8_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  reduce_io *io = ud;
  ir_expr *idx[RELAY_MAX_DIMS];
  for (int d = 0; d < io->out->ndim; d++) idx[d] = (ir_expr *)it[d];
  return ir_cast_new(c->arena, KILN_BOOL, ir_load_new(c->arena, io->sum, io->out->ndim, idx));
}

/* One reduction block over the reduced axes accumulating into out's dtype (sum, prod, max,
 * min); mean sums into an intermediate ("mean_sum") and divides in a second block ("mean");
 * bool max / min reduce into a uint8 intermediate ("max_acc") and convert back. Without
 * reduced axes (a 0-d input) the block copies, and over 0 elements it writes empty_value.
 * Floats accumulate in their own type where the reference uses double, and max/min follow
 * TIR's max/min (IEEE maxNum/minNum: a NaN is dropped where the reference propagates it). */
static kiln_status reduce_lower(relay_lower_ctx *c, ir_buffer *x, relay_attr *const *attrs,
                                ir_buffer *out, reduce_kind kind) {
  reduce_io io = {.x = x, .out = out, .keep = relay_attr_i(attrs, A_KEEPDIMS) != 0, .kind = kind};
  if (!reduced_axes(NULL, x->ndim, attrs[A_AXIS], io.red))
    return ir_fail(c->ctx, c->span, KILN_ERR_SHAPE, "%s: bad axis for a tensor of rank %d", c->op,
                   (int)x->ndim);
  ir_expr *ext[RELAY_MAX_DIMS];
  int nred = 0;
  bool empty = false;
  for (int d = 0; d < x->ndim; d++) {
    if (!io.red[d]) continue;
    int64_t v;
    if (relay_dim_const(x->shape[d], &v) && v == 0) empty = true;
    ext[nred++] = x->shape[d];
  }
  if (empty)
    return relay_lower_compute(c, c->op, out, 0, NULL, RELAY_REDUCE_NONE, empty_value, &io);
  if (nred == 0) /* x / 1 for mean */
    return relay_lower_compute(c, c->op, out, 0, NULL, RELAY_REDUCE_NONE, reduce_value, &io);
  static const int reducer[] = {[R_SUM] = RELAY_REDUCE_SUM, [R_MEAN] = RELAY_REDUCE_SUM,
                                [R_PROD] = RELAY_REDUCE_PROD, [R_MAX] = RELAY_REDUCE_MAX,
                                [R_MIN] = RELAY_REDUCE_MIN};
  bool is_bool = ir_dt_is_bool(out->h.dtype);
  if (kind != R_MEAN && !is_bool)
    return relay_lower_compute(c, c->op, out, nred, ext, reducer[kind], reduce_value, &io);
  char stage[32];
  snprintf(stage, sizeof stage, "%s_%s", c->op, is_bool ? "acc" : "sum");
  io.sum = relay_lower_buffer(c, stage, is_bool ? KILN_UINT8 : out->h.dtype, out->ndim, out->shape);
  if (!io.sum) return c->ctx->code ? c->ctx->code : KILN_ERR_NOMEM;
  kiln_status st = relay_lower_compute(c, stage, io.sum, nred, ext, reducer[kind],
                                       is_bool ? reduce_value_u8 : reduce_value, &io);
  if (st) return st;
  return relay_lower_compute(c, c->op, out, 0, NULL, RELAY_REDUCE_NONE,
                             is_bool ? from_u8_value : mean_value, &io);
}

#define REDUCE_LOWER(name, kind)                                                             \
  static kiln_status lower_##name(relay_lower_ctx *c, int nargs, ir_buffer *const *args,     \
                                  relay_attr *const *attrs, int nouts,                       \
                                  ir_buffer *const *outs) {                                  \
    (void)nargs;                                                                             \
    (void)nouts;                                                                             \
    return reduce_lower(c, args[0], attrs, outs[0], kind);                                   \
  }
REDUCE_LOWER(sum, R_SUM)
REDUCE_LOWER(mean, R_MEAN)
REDUCE_LOWER(prod, R_PROD)
REDUCE_LOWER(max, R_MAX)
REDUCE_LOWER(min, R_MIN)

#define REDUCE(name, fn, doc)                                                                \
  {name, 1, 1, RELAY_COMM_REDUCE, 2, reduce_attrs, infer_##fn, eval_##fn, doc, lower_##fn}

const relay_op relay_ops_reduce[] = {
    REDUCE("sum", sum, "sum over axes (all when axis is empty)"),
    REDUCE("mean", mean, "arithmetic mean over axes (float tensors)"),
    REDUCE("prod", prod, "product over axes"),
    REDUCE("max", max, "maximum over axes (NaN propagates)"),
    REDUCE("min", min, "minimum over axes (NaN propagates)"),
};
const int relay_ops_reduce_count = sizeof relay_ops_reduce / sizeof relay_ops_reduce[0];

/* reduce.c: reductions over axes: sum, mean, prod, max, min. Attributes as in TVM: `axis` (a
 * list of axes, negative ones counting from the end; empty reduces every axis) and `keepdims`
 * (reduced axes stay as dimensions of 1); TVM's `exclude` is not supported. mean needs a float
 * tensor (as in TVM; cast integers first); sum and prod reject bool. The reference kernel
 * accumulates in double and rounds to the dtype once per output element. */
#include <math.h>
#include <string.h>

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

#define REDUCE(name, fn, doc) {name, 1, 1, RELAY_COMM_REDUCE, 2, reduce_attrs, infer_##fn, eval_##fn, doc}

const relay_op relay_ops_reduce[] = {
    REDUCE("sum", sum, "sum over axes (all when axis is empty)"),
    REDUCE("mean", mean, "arithmetic mean over axes (float tensors)"),
    REDUCE("prod", prod, "product over axes"),
    REDUCE("max", max, "maximum over axes (NaN propagates)"),
    REDUCE("min", min, "minimum over axes (NaN propagates)"),
};
const int relay_ops_reduce_count = sizeof relay_ops_reduce / sizeof relay_ops_reduce[0];

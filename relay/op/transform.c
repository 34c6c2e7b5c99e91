/* transform.c: ops that move data without computing on it (all injective): reshape,
 * transpose, squeeze, expand_dims, concatenate, stack, split, strided_slice, take,
 * broadcast_to, nn.batch_flatten, and cast (elementwise, it changes the dtype). Names and
 * attributes follow TVM's Relay, with these differences:
 *  - concatenate and stack take their tensors as N direct arguments, not as one tuple;
 *  - split takes `indices` (split points) or `sections` (equal parts) as two attributes;
 *  - reshape knows the special values 0 (copy the input's dimension) and -1 (infer), not
 *    TVM's -2/-3/-4;
 *  - take has no "flatten" form (axis is an integer, default 0) and no batch_dims.
 * Shapes may hold symbolic dimensions; type relations keep them symbolic where they can and
 * say clearly when they cannot. The kernels copy elements as raw bytes (same dtype in and
 * out), so they are exact for every dtype. The compute definitions (relay/lower.h, at the
 * end) emit one TIR block per output whose value is a load at remapped indices. */
#include <stdio.h>
#include <string.h>

#include "relay/lower.h"
#include "relay/op.h"

/* ---- Messages -------------------------------------------------------------------------- */

/* A constant shape as "(2, 3)" / "(2,)" (kernel messages). */
static const char *const_relay_shape_str(int ndim, const int64_t *shape, char *buf, size_t size) {
  snprintf(buf, size, "(");
  for (int i = 0; i < ndim; i++) {
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
  }
  size_t used = strlen(buf);
  snprintf(buf + used, size - used, ndim == 1 ? ",)" : ")");
  return buf;
}

/* An int list attribute as "[0, 0]" (open and close choose the brackets). */
static const char *ints_text(const relay_attr *a, const char *open, const char *close, char *buf,
                             size_t size) {
  snprintf(buf, size, "%s", open);
  for (int i = 0; i < a->nints; i++) {
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)a->ints[i]);
  }
  size_t used = strlen(buf);
  snprintf(buf + used, size - used, "%s", close);
  return buf;
}

/* ---- Shared helpers ------------------------------------------------------------------- */

/* Normalizes axis (negative counts from the end) for a tensor of rank ndim; out of range is
 * an error naming the attribute (recorded through c unless c is NULL, as in kernels). */
static bool norm_axis(relay_infer_ctx *c, const char *what, int64_t axis, int ndim, int *out) {
  int64_t a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) {
    if (c)
      relay_type_error(c, "%s %lld is out of range for a tensor of rank %d", what,
                       (long long)axis, ndim);
    return false;
  }
  *out = (int)a;
  return true;
}

/* The axis attribute of a kernel, normalized; a clean error if it is out of range (kernels
 * normally run on calls that passed their type relation). */
static kiln_status eval_axis(relay_eval_ctx *c, int64_t axis, int ndim, int *out) {
  if (norm_axis(NULL, "axis", axis, ndim, out)) return KILN_OK;
  return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_SHAPE, "%s: axis %lld is out of range for rank %d",
                 c->op, (long long)axis, ndim);
}

static bool check_rank(relay_infer_ctx *c, int ndim) {
  if (ndim <= RELAY_MAX_DIMS) return true;
  relay_type_error(c, "the result would have %d dimensions; at most %d are supported", ndim,
                   RELAY_MAX_DIMS);
  return false;
}

/* Product of dims [from, to) of a tensor type (simplified; 1 for an empty range). */
static ir_expr *dims_product(relay_infer_ctx *c, const relay_tensor_type *t, int from, int to) {
  ir_expr *p = relay_dim(c, 1);
  for (int i = from; i < to && p; i++) p = relay_dim_binop(c, IR_MUL, p, t->shape[i]);
  return p;
}

static int64_t prod_range(const int64_t *shape, int from, int to) {
  int64_t p = 1;
  for (int i = from; i < to; i++) p *= shape[i];
  return p;
}

/* Kernels: the output's shape must be what the kernel computes from the inputs (the caller
 * allocates outputs from the inferred type with symbolic dims bound; a symbolic relation
 * that assumed something the actual shapes violate shows up here). */
static kiln_status check_out_shape(relay_eval_ctx *c, const relay_tensor *out, int ndim,
                                   const int64_t *shape) {
  bool same = out->ndim == ndim;
  for (int i = 0; same && i < ndim; i++) same = out->shape[i] == shape[i];
  if (same) return KILN_OK;
  char want[160], got[160];
  return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_SHAPE, "%s: the output tensor has shape %s, the inputs give %s",
                 c->op, const_relay_shape_str(out->ndim, out->shape, got, sizeof got),
                 const_relay_shape_str(ndim, shape, want, sizeof want));
}

/* Copies n elements of size esize between raw buffers (element offsets). */
static void copy_elems(const relay_tensor *dst, int64_t di, const relay_tensor *src, int64_t si,
                       int64_t n) {
  size_t esize = kiln_dtype_bytes(src->dtype);
  if (n > 0)
    memcpy((unsigned char *)dst->data + (size_t)di * esize,
           (const unsigned char *)src->data + (size_t)si * esize, (size_t)n * esize);
}

/* The kernel of every op that keeps the row-major element order (reshape, squeeze,
 * expand_dims, nn.batch_flatten): a copy of the bytes. */
static kiln_status eval_copy(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                             relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  (void)nargs;
  (void)attrs;
  (void)nouts;
  int64_t n = relay_tensor_numel(&args[0]);
  if (n != relay_tensor_numel(&outs[0]) || !ir_dt_eq(args[0].dtype, outs[0].dtype))
    return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                   "%s: the result has %lld elements, the input %lld", c->op,
                   (long long)relay_tensor_numel(&outs[0]), (long long)n);
  copy_elems(&outs[0], 0, &args[0], 0, n);
  return KILN_OK;
}

/* ---- cast ------------------------------------------------------------------------------- */

static const relay_attr_def cast_attrs[] = {
    {"dtype", RELAY_ATTR_STR, 0, 0, "float32", 0, {0}},
};

static relay_type *infer_cast(relay_infer_ctx *c, int nargs, relay_type *const *args,
                              relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  if (!x) return NULL;
  kiln_dtype t;
  const char *name = attrs[0]->s;
  if (kiln_dtype_parse(name, strlen(name), &t) || t.lanes != 1 || t.code == KILN_TYPE_VOID ||
      t.code == KILN_TYPE_HANDLE)
    return relay_type_error(c, "'%s' is not a tensor element type", name);
  return relay_tensor_type_new(c->arena, t, x->ndim, x->shape);
}

/* Float to integer truncates toward zero and wraps (relay_tensor_set); NaN becomes 0 (a C
 * cast of NaN is undefined). */
static kiln_status eval_cast(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                             relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  (void)c;
  (void)nargs;
  (void)attrs;
  (void)nouts;
  bool to_int = ir_dt_is_int(outs[0].dtype);
  int64_t n = relay_tensor_numel(&outs[0]);
  for (int64_t i = 0; i < n; i++) {
    double v = relay_tensor_get(&args[0], i);
    relay_tensor_set(&outs[0], i, to_int && v != v ? 0 : v);
  }
  return KILN_OK;
}

/* ---- reshape ---------------------------------------------------------------------------- */

/* A dimension product as a constant times a list of symbolic factors ("atoms"): n * 12 is
 * {12, [n]}. Products of symbolic dims cancel factor by factor, which the simplifier cannot
 * do for floordiv(n * 12, n). */
enum { MAX_ATOMS = 32 };
typedef struct monomial {
  int64_t coeff;
  int natoms;
  ir_expr *atoms[MAX_ATOMS];
} monomial;

/* Multiplies m by e, splitting products into factors; false on overflow or too many atoms. */
static bool mono_mul(monomial *m, ir_expr *e) {
  int64_t v;
  if (relay_dim_const(e, &v)) {
    if (v < 0 || (v && m->coeff > INT64_MAX / v)) return false;
    m->coeff *= v;
    return true;
  }
  if (e->kind == IR_MUL) return mono_mul(m, ((ir_binary *)e)->a) && mono_mul(m, ((ir_binary *)e)->b);
  if (m->natoms == MAX_ATOMS) return false;
  m->atoms[m->natoms++] = e;
  return true;
}

/* q = num / den when den's factors all cancel against num's and the constants divide. */
static bool mono_div(relay_infer_ctx *c, const monomial *num, const monomial *den, monomial *q) {
  *q = *num;
  for (int i = 0; i < den->natoms; i++) {
    int j = 0;
    while (j < q->natoms && !relay_dim_equal(c, q->atoms[j], den->atoms[i])) j++;
    if (j == q->natoms) return false;
    q->atoms[j] = q->atoms[--q->natoms];
  }
  if (den->coeff == 0 || num->coeff % den->coeff) return false;
  q->coeff = num->coeff / den->coeff;
  return true;
}

static ir_expr *mono_expr(relay_infer_ctx *c, const monomial *m) {
  ir_expr *e = relay_dim(c, m->coeff);
  for (int i = 0; i < m->natoms && e; i++) e = relay_dim_binop(c, IR_MUL, e, m->atoms[i]);
  return e;
}

enum { A_NEWSHAPE = 0 };
static const relay_attr_def reshape_attrs[] = {
    {"newshape", RELAY_ATTR_INTS, 0, 0, NULL, 0, {0}},
};

/* reshape(x, newshape): a positive entry is a dimension, 0 copies x's dimension at the same
 * position, -1 (at most one) takes what is left. With symbolic dims the inferred dimension is
 * the element count divided by the others' product, cancelled factor by factor (n * 12 / 4 ->
 * n * 3); when it cannot be proven exact, the call is an error. */
static relay_type *infer_reshape(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                 relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  if (!x) return NULL;
  const relay_attr *ns = attrs[A_NEWSHAPE];
  char from[160], to[160], tmp[160], tmp2[160];
  relay_shape_str(x, from, sizeof from);
  ints_text(ns, "(", ns->nints == 1 ? ",)" : ")", to, sizeof to);
  if (!check_rank(c, ns->nints)) return NULL;
  ir_expr *dims[RELAY_MAX_DIMS];
  monomial total = {1, 0, {0}}, known = {1, 0, {0}};
  for (int i = 0; i < x->ndim; i++)
    if (!mono_mul(&total, x->shape[i]))
      return relay_type_error(c, "cannot reshape %s: too many elements or factors", from);
  int infer = -1;
  for (int i = 0; i < ns->nints; i++) {
    int64_t v = ns->ints[i];
    if (v == -1) {
      if (infer >= 0) return relay_type_error(c, "cannot reshape %s to %s: more than one -1", from, to);
      infer = i;
      continue;
    }
    if (v < -1)
      return relay_type_error(c, "cannot reshape %s to %s: %lld is not a size (use 0 to copy a "
                              "dimension, -1 to infer one)", from, to, (long long)v);
    if (v == 0 && i >= x->ndim)
      return relay_type_error(c, "cannot reshape %s to %s: entry %d is 0 (copy) but the input has "
                              "no dimension %d", from, to, i, i);
    dims[i] = v == 0 ? x->shape[i] : relay_dim(c, v);
    if (!dims[i]) return NULL;
    if (!mono_mul(&known, dims[i]))
      return relay_type_error(c, "cannot reshape %s to %s: too many elements", from, to);
  }
  ir_expr *total_e = mono_expr(c, &total), *known_e = mono_expr(c, &known);
  if (!total_e || !known_e) return NULL;
  monomial q;
  if (infer >= 0) {
    if (known.coeff == 0)
      return relay_type_error(c, "cannot reshape %s to %s: -1 is ambiguous when the other "
                              "dimensions hold 0 elements", from, to);
    if (mono_div(c, &total, &known, &q)) {
      dims[infer] = mono_expr(c, &q);
    } else {
      /* the simplifier may still prove it (e.g. with sums of symbolic dims) */
      ir_expr *rem = relay_dim_binop(c, IR_FLOORMOD, total_e, known_e);
      if (!rem) return NULL;
      if (!relay_dim_is(c, rem, 0))
        return relay_type_error(c, "cannot reshape %s to %s: %s elements do not divide by %s",
                                from, to, relay_dim_str(total_e, tmp, sizeof tmp),
                                relay_dim_str(known_e, tmp2, sizeof tmp2));
      dims[infer] = relay_dim_binop(c, IR_FLOORDIV, total_e, known_e);
    }
    if (!dims[infer]) return NULL;
  } else {
    bool same = mono_div(c, &total, &known, &q) && q.coeff == 1 && q.natoms == 0;
    if (!same && !relay_dim_equal(c, total_e, known_e))
      return relay_type_error(c, "cannot reshape %s to %s: %s elements do not match %s", from, to,
                              relay_dim_str(total_e, tmp, sizeof tmp), relay_dim_str(known_e, tmp2, sizeof tmp2));
  }
  return relay_tensor_type_new(c->arena, x->h.dtype, ns->nints, dims);
}

/* ---- transpose ---------------------------------------------------------------------------- */

enum { A_AXES = 0 };
static const relay_attr_def transpose_attrs[] = {
    {"axes", RELAY_ATTR_INTS, 0, 0, NULL, 0, {0}}, /* empty: reverse the axes */
};

/* The permutation of a transpose: output axis i is input axis perm[i]. */
static bool transpose_perm(relay_infer_ctx *c, int ndim, const relay_attr *axes, int *perm) {
  if (axes->nints == 0) {
    for (int i = 0; i < ndim; i++) perm[i] = ndim - 1 - i;
    return true;
  }
  bool seen[RELAY_MAX_DIMS] = {false}, ok = axes->nints == ndim;
  for (int i = 0; ok && i < ndim; i++) {
    int64_t a = axes->ints[i] < 0 ? axes->ints[i] + ndim : axes->ints[i];
    ok = a >= 0 && a < ndim && !seen[a];
    if (ok) {
      seen[a] = true;
      perm[i] = (int)a;
    }
  }
  if (!ok && c) {
    char buf[160];
    relay_type_error(c, "axes %s is not a permutation of %d axes",
                     ints_text(axes, "[", "]", buf, sizeof buf), ndim);
  }
  return ok;
}

static relay_type *infer_transpose(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                   relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  int perm[RELAY_MAX_DIMS];
  if (!x || !transpose_perm(c, x->ndim, attrs[A_AXES], perm)) return NULL;
  ir_expr *dims[RELAY_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) dims[i] = x->shape[perm[i]];
  return relay_tensor_type_new(c->arena, x->h.dtype, x->ndim, dims);
}

/* Row-major strides of a shape. */
static void strides_of(const relay_tensor *t, int64_t *strides) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    strides[i] = s;
    s *= t->shape[i];
  }
}

static kiln_status eval_transpose(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                  relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  (void)nargs;
  (void)nouts;
  const relay_tensor *x = &args[0], *out = &outs[0];
  int perm[RELAY_MAX_DIMS];
  int64_t want[RELAY_MAX_DIMS], xs[RELAY_MAX_DIMS];
  if (!transpose_perm(NULL, x->ndim, attrs[A_AXES], perm))
    return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_SHAPE, "%s: bad axes", c->op);
  for (int i = 0; i < x->ndim; i++) want[i] = x->shape[perm[i]];
  kiln_status st = check_out_shape(c, out, x->ndim, want);
  if (st) return st;
  strides_of(x, xs);
  int64_t n = relay_tensor_numel(out);
  for (int64_t i = 0; i < n; i++) {
    int64_t rem = i, src = 0;
    for (int d = out->ndim - 1; d >= 0; d--) {
      src += (rem % out->shape[d]) * xs[perm[d]];
      rem /= out->shape[d];
    }
    copy_elems(out, i, x, src, 1);
  }
  return KILN_OK;
}

/* ---- squeeze, expand_dims, nn.batch_flatten ------------------------------------------- */

enum { A_SQUEEZE_AXIS = 0 };
static const relay_attr_def squeeze_attrs[] = {
    {"axis", RELAY_ATTR_INTS, 0, 0, NULL, 0, {0}}, /* empty: every dimension that is 1 */
};

/* squeeze drops the listed axes, which must be 1; without a list it drops every dimension
 * that is the constant 1 (a symbolic dimension stays, even if it may be 1 at run time). */
static relay_type *infer_squeeze(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                 relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  if (!x) return NULL;
  const relay_attr *axis = attrs[A_SQUEEZE_AXIS];
  bool drop[RELAY_MAX_DIMS] = {false};
  for (int i = 0; i < x->ndim; i++) drop[i] = axis->nints == 0 && relay_dim_is(c, x->shape[i], 1);
  for (int i = 0; i < axis->nints; i++) {
    int a;
    if (!norm_axis(c, "axis", axis->ints[i], x->ndim, &a)) return NULL;
    if (drop[a]) return relay_type_error(c, "axis %d is listed twice", a);
    if (!relay_dim_is(c, x->shape[a], 1)) {
      char s[160], d[64];
      return relay_type_error(c, "dimension %d of %s is %s, not 1", a, relay_shape_str(x, s, sizeof s),
                              relay_dim_str(x->shape[a], d, sizeof d));
    }
    drop[a] = true;
  }
  ir_expr *dims[RELAY_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < x->ndim; i++)
    if (!drop[i]) dims[nd++] = x->shape[i];
  return relay_tensor_type_new(c->arena, x->h.dtype, nd, dims);
}

enum { A_EXPAND_AXIS = 0, A_NUM_NEWAXIS = 1 };
static const relay_attr_def expand_dims_attrs[] = {
    {"axis", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}},
    {"num_newaxis", RELAY_ATTR_INT, 1, 0, NULL, 0, {0}},
};

/* expand_dims inserts num_newaxis dimensions of 1 before position axis (in [-ndim-1, ndim];
 * negative counts from the end of the result, so -1 appends). */
static relay_type *infer_expand_dims(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                     relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  if (!x) return NULL;
  int64_t axis = relay_attr_i(attrs, A_EXPAND_AXIS), num = relay_attr_i(attrs, A_NUM_NEWAXIS);
  if (num < 0) return relay_type_error(c, "num_newaxis must be >= 0, not %lld", (long long)num);
  if (num > RELAY_MAX_DIMS - x->ndim)
    return relay_type_error(c, "%lld new axes on a tensor of rank %d make more than %d dimensions",
                            (long long)num, (int)x->ndim, RELAY_MAX_DIMS);
  int64_t a = axis < 0 ? axis + x->ndim + 1 : axis;
  if (a < 0 || a > x->ndim)
    return relay_type_error(c, "axis %lld is out of range for inserting into a tensor of rank %d",
                            (long long)axis, (int)x->ndim);
  ir_expr *dims[RELAY_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < a; i++) dims[nd++] = x->shape[i];
  for (int i = 0; i < num; i++) dims[nd++] = relay_dim(c, 1);
  for (int i = (int)a; i < x->ndim; i++) dims[nd++] = x->shape[i];
  return relay_tensor_type_new(c->arena, x->h.dtype, nd, dims);
}

/* nn.batch_flatten: (N, d1, d2, ...) -> (N, d1 * d2 * ...) (PyTorch's Flatten(start_dim=1)). */
static relay_type *infer_batch_flatten(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                       relay_attr *const *attrs) {
  (void)nargs;
  (void)attrs;
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  if (!x) return NULL;
  if (x->ndim < 1) return relay_type_error(c, "needs a tensor of rank >= 1, not a scalar");
  ir_expr *dims[2] = {x->shape[0], dims_product(c, x, 1, x->ndim)};
  return dims[1] ? relay_tensor_type_new(c->arena, x->h.dtype, 2, dims) : NULL;
}

/* ---- concatenate, stack ---------------------------------------------------------------- */

enum { A_CAT_AXIS = 0 };
static const relay_attr_def axis0_attrs[] = {
    {"axis", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}},
};

/* Every argument is a tensor of the first one's dtype and rank (rank >= min_rank). */
static bool same_kind_args(relay_infer_ctx *c, int nargs, relay_type *const *args, int min_rank,
                           const relay_tensor_type **ts) {
  for (int i = 0; i < nargs; i++) {
    if (!(ts[i] = relay_arg_tensor(c, args, i))) return false;
    char a[32], b[32];
    if (!ir_dt_eq(ts[i]->h.dtype, ts[0]->h.dtype)) {
      relay_type_error(c, "argument %d has dtype %s, argument 0 %s", i,
                       kiln_dtype_str(ts[i]->h.dtype, a, sizeof a),
                       kiln_dtype_str(ts[0]->h.dtype, b, sizeof b));
      return false;
    }
    if (ts[i]->ndim != ts[0]->ndim) {
      relay_type_error(c, "argument %d has rank %d, argument 0 rank %d", i, (int)ts[i]->ndim,
                       (int)ts[0]->ndim);
      return false;
    }
  }
  if (ts[0]->ndim < min_rank) {
    relay_type_error(c, "needs tensors of rank >= %d, not scalars", min_rank);
    return false;
  }
  return true;
}

/* A dimension of argument i that must equal argument 0's. */
static bool dims_match(relay_infer_ctx *c, const relay_tensor_type **ts, int i, int d) {
  if (relay_dim_equal(c, ts[i]->shape[d], ts[0]->shape[d])) return true;
  char si[160], s0[160];
  relay_type_error(c, "dimension %d of argument %d %s does not match argument 0 %s", d, i,
                   relay_shape_str(ts[i], si, sizeof si), relay_shape_str(ts[0], s0, sizeof s0));
  return false;
}

/* concatenate(x0, x1, ...; axis): the tensors come as arguments (not a tuple); they agree on
 * every dimension but axis, where the result has the sum. */
static relay_type *infer_concatenate(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                     relay_attr *const *attrs) {
  const relay_tensor_type *ts[64];
  int axis;
  if (!same_kind_args(c, nargs, args, 1, ts) ||
      !norm_axis(c, "axis", relay_attr_i(attrs, A_CAT_AXIS), ts[0]->ndim, &axis))
    return NULL;
  ir_expr *dims[RELAY_MAX_DIMS];
  for (int d = 0; d < ts[0]->ndim; d++) {
    dims[d] = ts[0]->shape[d];
    for (int i = 1; i < nargs; i++) {
      if (d == axis) dims[d] = relay_dim_binop(c, IR_ADD, dims[d], ts[i]->shape[d]);
      else if (!dims_match(c, ts, i, d)) return NULL;
    }
    if (!dims[d]) return NULL;
  }
  return relay_tensor_type_new(c->arena, ts[0]->h.dtype, ts[0]->ndim, dims);
}

static kiln_status eval_concatenate(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                    relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  (void)nouts;
  relay_tensor *out = &outs[0];
  int axis;
  kiln_status st = eval_axis(c, relay_attr_i(attrs, A_CAT_AXIS), args[0].ndim, &axis);
  if (st) return st;
  int64_t want[RELAY_MAX_DIMS];
  memcpy(want, args[0].shape, sizeof want);
  want[axis] = 0;
  for (int i = 0; i < nargs; i++) want[axis] += args[i].shape[axis];
  if ((st = check_out_shape(c, out, args[0].ndim, want))) return st;
  int64_t outer = prod_range(out->shape, 0, axis), inner = prod_range(out->shape, axis + 1, out->ndim);
  int64_t dst = 0;
  for (int64_t o = 0; o < outer; o++)
    for (int i = 0; i < nargs; i++) {
      int64_t chunk = args[i].shape[axis] * inner;
      copy_elems(out, dst, &args[i], o * chunk, chunk);
      dst += chunk;
    }
  return KILN_OK;
}

/* stack(x0, x1, ...; axis): tensors of one shape joined along a new axis (in [-ndim-1, ndim])
 * of size N. */
static relay_type *infer_stack(relay_infer_ctx *c, int nargs, relay_type *const *args,
                               relay_attr *const *attrs) {
  const relay_tensor_type *ts[64];
  if (!same_kind_args(c, nargs, args, 0, ts)) return NULL;
  int nd = ts[0]->ndim;
  int64_t axis = relay_attr_i(attrs, A_CAT_AXIS), a = axis < 0 ? axis + nd + 1 : axis;
  if (a < 0 || a > nd)
    return relay_type_error(c, "axis %lld is out of range for stacking tensors of rank %d",
                            (long long)axis, nd);
  if (!check_rank(c, nd + 1)) return NULL;
  for (int i = 1; i < nargs; i++)
    for (int d = 0; d < nd; d++)
      if (!dims_match(c, ts, i, d)) return NULL;
  ir_expr *dims[RELAY_MAX_DIMS];
  for (int d = 0, j = 0; d <= nd; d++) dims[d] = d == a ? relay_dim(c, nargs) : ts[0]->shape[j++];
  return relay_tensor_type_new(c->arena, ts[0]->h.dtype, nd + 1, dims);
}

static kiln_status eval_stack(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                              relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  (void)nouts;
  relay_tensor *out = &outs[0];
  int nd = args[0].ndim, axis;
  kiln_status st = eval_axis(c, relay_attr_i(attrs, A_CAT_AXIS), nd + 1, &axis);
  if (st) return st;
  int64_t want[RELAY_MAX_DIMS + 1];
  for (int d = 0, j = 0; d <= nd; d++) want[d] = d == axis ? nargs : args[0].shape[j++];
  if ((st = check_out_shape(c, out, nd + 1, want))) return st;
  int64_t outer = prod_range(args[0].shape, 0, axis), inner = prod_range(args[0].shape, axis, nd);
  for (int64_t o = 0; o < outer; o++)
    for (int i = 0; i < nargs; i++) copy_elems(out, (o * nargs + i) * inner, &args[i], o * inner, inner);
  return KILN_OK;
}

/* ---- split ----------------------------------------------------------------------------- */

enum { A_INDICES = 0, A_SECTIONS = 1, A_SPLIT_AXIS = 2 };
static const relay_attr_def split_attrs[] = {
    {"indices", RELAY_ATTR_INTS, 0, 0, NULL, 0, {0}}, /* split points, increasing */
    {"sections", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}}, /* > 0: that many equal parts */
    {"axis", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}},
};
enum { MAX_SECTIONS = 1024 };

/* split(x; indices | sections, axis) returns a tuple. With sections = k > 0 the axis is cut
 * into k equal parts (its size must be a multiple of k, also when symbolic: n * 4 splits in 2,
 * n does not); otherwise at the points of `indices` ([2, 5] on a dimension of 8 gives sizes 2,
 * 3 and 3; no indices: one part). */
static relay_type *infer_split(relay_infer_ctx *c, int nargs, relay_type *const *args,
                               relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  int axis;
  if (!x || !norm_axis(c, "axis", relay_attr_i(attrs, A_SPLIT_AXIS), x->ndim, &axis)) return NULL;
  const relay_attr *ind = attrs[A_INDICES];
  int64_t sections = relay_attr_i(attrs, A_SECTIONS);
  ir_expr *d = x->shape[axis];
  char s[160], ds[64], is[160];
  relay_shape_str(x, s, sizeof s);
  relay_dim_str(d, ds, sizeof ds);
  if (sections < 0) return relay_type_error(c, "sections must be > 0, not %lld", (long long)sections);
  if (sections > 0 && ind->nints > 0)
    return relay_type_error(c, "give either sections or indices, not both");
  if (sections > MAX_SECTIONS)
    return relay_type_error(c, "at most %d sections, not %lld", MAX_SECTIONS, (long long)sections);
  if (ind->nints >= MAX_SECTIONS)
    return relay_type_error(c, "at most %d split points, not %d", MAX_SECTIONS - 1, (int)ind->nints);
  int nout = sections > 0 ? (int)sections : ind->nints + 1;
  relay_type **fields = ir_arena_alloc(c->arena, sizeof(relay_type *) * (size_t)nout);
  if (!fields) return NULL;
  ir_expr *dims[RELAY_MAX_DIMS];
  memcpy(dims, x->shape, sizeof(ir_expr *) * (size_t)x->ndim);
  if (sections > 0) {
    ir_expr *rem = relay_dim_binop(c, IR_FLOORMOD, d, relay_dim(c, sections));
    if (!rem) return NULL;
    if (!relay_dim_is(c, rem, 0))
      return relay_type_error(c, "dimension %d of %s is %s, which does not split into %lld equal "
                              "sections", axis, s, ds, (long long)sections);
    if (!(dims[axis] = relay_dim_binop(c, IR_FLOORDIV, d, relay_dim(c, sections)))) return NULL;
    for (int k = 0; k < nout; k++)
      if (!(fields[k] = relay_tensor_type_new(c->arena, x->h.dtype, x->ndim, dims))) return NULL;
  } else {
    int64_t dv, prev = 0;
    bool dconst = relay_dim_const(d, &dv);
    for (int k = 0; k < ind->nints; k++) {
      int64_t p = ind->ints[k];
      if (p < prev || (dconst && p > dv))
        return relay_type_error(c, "indices %s must be non-decreasing and within [0, %s] (dimension "
                                "%d of %s)", ints_text(ind, "[", "]", is, sizeof is), ds, axis, s);
      dims[axis] = relay_dim(c, p - prev);
      if (!(fields[k] = relay_tensor_type_new(c->arena, x->h.dtype, x->ndim, dims))) return NULL;
      prev = p;
    }
    dims[axis] = relay_dim_binop(c, IR_SUB, d, relay_dim(c, prev));
    if (!(fields[nout - 1] = relay_tensor_type_new(c->arena, x->h.dtype, x->ndim, dims))) return NULL;
  }
  return relay_tuple_type_new(c->arena, nout, fields);
}

/* Fills the nouts parts in order along the axis; their sizes come from the outputs (which the
 * caller allocated from the inferred type) and must add up to the input's dimension. */
static kiln_status eval_split(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                              relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  (void)nargs;
  const relay_tensor *x = &args[0];
  int axis;
  kiln_status st = eval_axis(c, relay_attr_i(attrs, A_SPLIT_AXIS), x->ndim, &axis);
  if (st) return st;
  int64_t total = 0;
  for (int k = 0; k < nouts; k++) {
    int64_t want[RELAY_MAX_DIMS];
    memcpy(want, x->shape, sizeof want);
    want[axis] = outs[k].ndim == x->ndim ? outs[k].shape[axis] : 0;
    if ((st = check_out_shape(c, &outs[k], x->ndim, want))) return st;
    total += want[axis];
  }
  if (total != x->shape[axis])
    return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_SHAPE, "%s: the parts hold %lld of the %lld "
                   "elements along axis %d", c->op, (long long)total, (long long)x->shape[axis], axis);
  int64_t outer = prod_range(x->shape, 0, axis), inner = prod_range(x->shape, axis + 1, x->ndim);
  int64_t start = 0;
  for (int k = 0; k < nouts; k++) {
    int64_t e = outs[k].shape[axis];
    for (int64_t o = 0; o < outer; o++)
      copy_elems(&outs[k], o * e * inner, x, (o * x->shape[axis] + start) * inner, e * inner);
    start += e;
  }
  return KILN_OK;
}

/* ---- strided_slice ---------------------------------------------------------------------- */

enum { A_BEGIN = 0, A_END = 1, A_STRIDES = 2, A_SLICE_AXES = 3 };
static const relay_attr_def strided_slice_attrs[] = {
    {"begin", RELAY_ATTR_INTS, 0, 0, NULL, 0, {0}},
    {"end", RELAY_ATTR_INTS, 0, 0, NULL, 0, {0}},
    {"strides", RELAY_ATTR_INTS, 0, 0, NULL, 0, {0}}, /* missing entries are 1 */
    {"axes", RELAY_ATTR_INTS, 0, 0, NULL, 0, {0}},    /* empty: axes 0, 1, ... */
};

/* One axis of a slice as given (before clamping to the dimension). */
typedef struct slice_axis {
  bool sliced;
  int64_t begin, end, stride;
} slice_axis;

/* Reads begin/end/strides/axes into one entry per axis of an ndim tensor. An axis gets
 * begin[k], end[k], strides[k] where given; a missing begin is the start (the last element
 * for a negative stride), a missing end the end (before the first element for a negative
 * stride). Errors (stride 0, lists longer than the axes, repeated axes) go through c when c
 * is not NULL. */
static bool slice_spec(relay_infer_ctx *c, int ndim, relay_attr *const *attrs, slice_axis *sp) {
  const relay_attr *b = attrs[A_BEGIN], *e = attrs[A_END], *s = attrs[A_STRIDES], *ax = attrs[A_SLICE_AXES];
  int n = b->nints > e->nints ? b->nints : e->nints;
  if (s->nints > n) n = s->nints;
  memset(sp, 0, sizeof(slice_axis) * RELAY_MAX_DIMS);
  if (ax->nints ? n > ax->nints : n > ndim) {
    if (c)
      relay_type_error(c, "begin/end/strides have %d entries for %d %s", n,
                       ax->nints ? (int)ax->nints : ndim, ax->nints ? "axes" : "dimensions");
    return false;
  }
  if (ax->nints) n = ax->nints;
  for (int k = 0; k < n; k++) {
    int a = k;
    if (ax->nints) {
      if (!norm_axis(c, "axis", ax->ints[k], ndim, &a)) return false;
      if (sp[a].sliced) {
        if (c) relay_type_error(c, "axis %d is listed twice", a);
        return false;
      }
    }
    int64_t st = k < s->nints ? s->ints[k] : 1;
    if (st == 0 || st == INT64_MIN) {
      if (c) relay_type_error(c, "stride %lld of axis %d is not allowed", (long long)st, a);
      return false;
    }
    sp[a].sliced = true;
    sp[a].stride = st;
    sp[a].begin = k < b->nints ? b->ints[k] : st > 0 ? 0 : INT64_MAX;
    sp[a].end = k < e->nints ? e->ints[k] : st > 0 ? INT64_MAX : INT64_MIN;
  }
  return true;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* A slice of an axis of known size d (numpy/TVM semantics): negative begin/end count from the
 * end, both are clamped, and the result has ceil((end - begin) / stride) elements (0 when the
 * range is empty). Sets *first to the first index taken. */
static int64_t slice_count(int64_t d, const slice_axis *sa, int64_t *first) {
  int64_t b = sa->begin, e = sa->end, s = sa->stride;
  if (b < 0) b += d; /* b is negative and d >= 0: no overflow */
  if (e < 0) e += d;
  if (s > 0) {
    b = clamp64(b, 0, d);
    e = clamp64(e, 0, d);
    *first = b;
    return e > b ? (e - b - 1) / s + 1 : 0;
  }
  b = clamp64(b, -1, d - 1);
  e = clamp64(e, -1, d - 1);
  *first = b;
  return b > e ? (b - e - 1) / -s + 1 : 0;
}

/* An end at or beyond this means "to the end" on a symbolic dimension (frontends write
 * INT32_MAX or INT64_MAX). */
#define SLICE_TO_END ((int64_t)INT32_MAX)

/* A begin or end on a symbolic dimension d: "to the end" (>= SLICE_TO_END) is hi, "before
 * the start" (<= -SLICE_TO_END) is lo, a negative value counts from d's end. */
static ir_expr *slice_bound(relay_infer_ctx *c, ir_expr *d, int64_t v, ir_expr *lo, ir_expr *hi) {
  if (v >= SLICE_TO_END) return hi;
  if (v <= -SLICE_TO_END) return lo;
  return v < 0 ? relay_dim_binop(c, IR_ADD, d, relay_dim(c, v)) : relay_dim(c, v);
}

/* The size of a sliced symbolic dimension d. Begin and end are taken relative to d and are
 * assumed to lie within it: they cannot be clamped without knowing d (TVM makes such dims
 * dynamic); the kernel checks the actual shape. */
static ir_expr *slice_symbolic(relay_infer_ctx *c, ir_expr *d, const slice_axis *sa) {
  ir_expr *from, *to; /* counting from `from` up to `to` (exclusive) in steps of |stride| */
  int64_t step = sa->stride;
  if (step > 0) {
    from = slice_bound(c, d, sa->begin, relay_dim(c, 0), d);
    to = slice_bound(c, d, sa->end, relay_dim(c, 0), d);
  } else {
    ir_expr *last = relay_dim_binop(c, IR_SUB, d, relay_dim(c, 1));
    from = slice_bound(c, d, sa->end, relay_dim(c, -1), last);
    to = slice_bound(c, d, sa->begin, relay_dim(c, -1), last);
    step = -step;
  }
  /* ceil(len / step) = floordiv(len - 1, step) + 1 (0 for len 0); no constant overflow */
  ir_expr *len1 = relay_dim_binop(c, IR_SUB, relay_dim_binop(c, IR_SUB, to, from), relay_dim(c, 1));
  ir_expr *n = relay_dim_binop(c, IR_ADD, relay_dim_binop(c, IR_FLOORDIV, len1, relay_dim(c, step)),
                               relay_dim(c, 1));
  int64_t v;
  if (relay_dim_const(n, &v) && v < 0) return relay_dim(c, 0);
  return n;
}

/* strided_slice(x; begin, end, strides, axes) as in TVM ("end" slice mode only). */
static relay_type *infer_strided_slice(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                       relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  slice_axis sp[RELAY_MAX_DIMS];
  if (!x || !slice_spec(c, x->ndim, attrs, sp)) return NULL;
  ir_expr *dims[RELAY_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) {
    int64_t d, first;
    if (!sp[i].sliced) dims[i] = x->shape[i];
    else if (relay_dim_const(x->shape[i], &d)) dims[i] = relay_dim(c, slice_count(d, &sp[i], &first));
    else dims[i] = slice_symbolic(c, x->shape[i], &sp[i]);
    if (!dims[i]) return NULL;
  }
  return relay_tensor_type_new(c->arena, x->h.dtype, x->ndim, dims);
}

static kiln_status eval_strided_slice(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                      relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  (void)nargs;
  (void)nouts;
  const relay_tensor *x = &args[0], *out = &outs[0];
  slice_axis sp[RELAY_MAX_DIMS];
  if (!slice_spec(NULL, x->ndim, attrs, sp))
    return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_SHAPE, "%s: bad slice attributes", c->op);
  int64_t want[RELAY_MAX_DIMS], first[RELAY_MAX_DIMS], step[RELAY_MAX_DIMS], xs[RELAY_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) {
    first[i] = 0;
    step[i] = 1;
    want[i] = x->shape[i];
    if (sp[i].sliced) {
      want[i] = slice_count(x->shape[i], &sp[i], &first[i]);
      step[i] = sp[i].stride;
    }
  }
  kiln_status st = check_out_shape(c, out, x->ndim, want);
  if (st) return st;
  strides_of(x, xs);
  int64_t n = relay_tensor_numel(out);
  for (int64_t i = 0; i < n; i++) {
    int64_t rem = i, src = 0;
    for (int d = out->ndim - 1; d >= 0; d--) {
      src += (first[d] + (rem % out->shape[d]) * step[d]) * xs[d];
      rem /= out->shape[d];
    }
    copy_elems(out, i, x, src, 1);
  }
  return KILN_OK;
}

/* ---- take ------------------------------------------------------------------------------- */

enum { A_TAKE_AXIS = 0, A_MODE = 1 };
static const relay_attr_def take_attrs[] = {
    {"axis", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}},
    {"mode", RELAY_ATTR_STR, 0, 0, "clip", 0, {0}},
};

typedef enum take_mode { TAKE_CLIP, TAKE_WRAP, TAKE_RAISE, TAKE_BAD } take_mode;

static take_mode take_mode_of(const char *s) {
  return strcmp(s, "clip") == 0   ? TAKE_CLIP
         : strcmp(s, "wrap") == 0 ? TAKE_WRAP
         : strcmp(s, "raise") == 0 ? TAKE_RAISE
                                  : TAKE_BAD;
}

/* take(data, indices; axis, mode) picks slices of data along axis: the result's shape is
 * data.shape[:axis] + indices.shape + data.shape[axis+1:]. Out-of-range indices: "clip"
 * (TVM's default) clamps to [0, d-1]; "wrap" wraps around (Python modulo); "raise" accepts
 * [-d, d-1] (negative counting from the end, as PyTorch) and makes anything else a run-time
 * error (KILN_ERR_RUNTIME). */
static relay_type *infer_take(relay_infer_ctx *c, int nargs, relay_type *const *args,
                              relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  const relay_tensor_type *idx = x ? relay_arg_tensor(c, args, 1) : NULL;
  if (!idx) return NULL;
  char dt[32];
  if (!ir_dt_is_int(idx->h.dtype))
    return relay_type_error(c, "indices must be an integer tensor, not %s",
                            kiln_dtype_str(idx->h.dtype, dt, sizeof dt));
  if (take_mode_of(attrs[A_MODE]->s) == TAKE_BAD)
    return relay_type_error(c, "mode '%s' is not one of clip, wrap, raise", attrs[A_MODE]->s);
  int axis;
  if (!norm_axis(c, "axis", relay_attr_i(attrs, A_TAKE_AXIS), x->ndim, &axis)) return NULL;
  if (!check_rank(c, x->ndim - 1 + idx->ndim)) return NULL;
  ir_expr *dims[RELAY_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < axis; i++) dims[nd++] = x->shape[i];
  for (int i = 0; i < idx->ndim; i++) dims[nd++] = idx->shape[i];
  for (int i = axis + 1; i < x->ndim; i++) dims[nd++] = x->shape[i];
  return relay_tensor_type_new(c->arena, x->h.dtype, nd, dims);
}

static kiln_status eval_take(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                             relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  (void)nargs;
  (void)nouts;
  const relay_tensor *x = &args[0], *idx = &args[1], *out = &outs[0];
  int axis;
  kiln_status st = eval_axis(c, relay_attr_i(attrs, A_TAKE_AXIS), x->ndim, &axis);
  if (st) return st;
  if (x->ndim - 1 + idx->ndim > RELAY_MAX_DIMS)
    return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_SHAPE, "%s: the result has too many dimensions", c->op);
  take_mode mode = take_mode_of(attrs[A_MODE]->s);
  int64_t want[RELAY_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < axis; i++) want[nd++] = x->shape[i];
  for (int i = 0; i < idx->ndim; i++) want[nd++] = idx->shape[i];
  for (int i = axis + 1; i < x->ndim; i++) want[nd++] = x->shape[i];
  if ((st = check_out_shape(c, out, nd, want))) return st;
  int64_t d = x->shape[axis], nidx = relay_tensor_numel(idx);
  int64_t outer = prod_range(x->shape, 0, axis), inner = prod_range(x->shape, axis + 1, x->ndim);
  if (d == 0 && nidx > 0 && outer > 0)
    return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_RUNTIME, "%s: cannot take from axis %d of size 0",
                   c->op, axis);
  for (int64_t j = 0; j < nidx && outer > 0; j++) {
    double raw = relay_tensor_get(idx, j);
    /* indices come as doubles; keep them far from int64 overflow */
    int64_t v = raw >= 4e18 ? (int64_t)4e18 : raw <= -4e18 ? -(int64_t)4e18 : (int64_t)raw;
    switch (mode) {
    case TAKE_CLIP: v = clamp64(v, 0, d - 1); break;
    case TAKE_WRAP: v = ((v % d) + d) % d; break;
    case TAKE_RAISE:
    case TAKE_BAD:
      if (v < -d || v >= d)
        return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_RUNTIME,
                       "%s: index %lld is out of range for axis %d of size %lld", c->op,
                       (long long)v, axis, (long long)d);
      if (v < 0) v += d;
      break;
    }
    for (int64_t o = 0; o < outer; o++)
      copy_elems(out, (o * nidx + j) * inner, x, (o * d + v) * inner, inner);
  }
  return KILN_OK;
}

/* ---- broadcast_to ----------------------------------------------------------------------- */

enum { A_SHAPE = 0 };
static const relay_attr_def broadcast_to_attrs[] = {
    {"shape", RELAY_ATTR_INTS, 0, 0, NULL, 0, {0}},
};

/* broadcast_to(x; shape): x (ranks aligned at the right) stretched to the constant shape;
 * each of x's dimensions must be 1 or equal to the target's. */
static relay_type *infer_broadcast_to(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                      relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = relay_arg_tensor(c, args, 0);
  if (!x) return NULL;
  const relay_attr *shape = attrs[A_SHAPE];
  if (!check_rank(c, shape->nints)) return NULL;
  char s[160], t[160];
  relay_shape_str(x, s, sizeof s);
  ints_text(shape, "(", shape->nints == 1 ? ",)" : ")", t, sizeof t);
  ir_expr *dims[RELAY_MAX_DIMS];
  for (int i = 0; i < shape->nints; i++) {
    if (shape->ints[i] < 0)
      return relay_type_error(c, "cannot broadcast %s to %s: negative dimension", s, t);
    if (!(dims[i] = relay_dim(c, shape->ints[i]))) return NULL;
  }
  bool ok = x->ndim <= shape->nints;
  for (int i = 0; ok && i < x->ndim; i++) {
    ir_expr *xd = x->shape[x->ndim - 1 - i], *td = dims[shape->nints - 1 - i];
    ok = relay_dim_is(c, xd, 1) || relay_dim_equal(c, xd, td);
  }
  if (!ok) return relay_type_error(c, "cannot broadcast %s to %s", s, t);
  return relay_tensor_type_new(c->arena, x->h.dtype, shape->nints, dims);
}

static kiln_status eval_broadcast_to(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                     relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  (void)nargs;
  (void)nouts;
  const relay_tensor *x = &args[0], *out = &outs[0];
  const relay_attr *shape = attrs[A_SHAPE];
  kiln_status st = check_out_shape(c, out, shape->nints, shape->ints);
  if (st) return st;
  int64_t n = relay_tensor_numel(out);
  for (int64_t i = 0; i < n; i++) {
    /* the source index: output coordinates, right-aligned, with x's dims of 1 pinned to 0 */
    int64_t rem = i, src = 0, stride = 1;
    for (int d = out->ndim - 1, e = x->ndim - 1; d >= 0; d--, e--) {
      int64_t coord = rem % out->shape[d];
      rem /= out->shape[d];
      if (e < 0) continue;
      if (x->shape[e] != 1) src += coord * stride;
      stride *= x->shape[e];
    }
    copy_elems(out, i, x, src, 1);
  }
  return KILN_OK;
}

/* ---- Compute definitions (relay/lower.h) ---------------------------------------------- */
/* Each op becomes one stage per output (split: one per part) whose value is a load of the
 * input at indices computed from the output's iterators. Shapes come from the buffers (int64
 * expressions, possibly symbolic); index arithmetic is simplified with the lowering's
 * analyzer so that constant shapes give plain affine indices. */

/* The simplified form of an int64 index expression (NULL stays NULL). */
static ir_expr *simp(relay_lower_ctx *c, ir_expr *e) { return e ? ir_simplify_expr(c->an, e) : NULL; }

static ir_expr *ix_add(relay_lower_ctx *c, ir_expr *a, ir_expr *b) {
  return simp(c, ir_binop(c->arena, IR_ADD, a, b));
}
static ir_expr *ix_sub(relay_lower_ctx *c, ir_expr *a, ir_expr *b) {
  return simp(c, ir_binop(c->arena, IR_SUB, a, b));
}
static ir_expr *ix_mul(relay_lower_ctx *c, ir_expr *a, ir_expr *b) {
  return simp(c, ir_binop(c->arena, IR_MUL, a, b));
}

/* True when dimensions a and b are provably equal (both int64 shape expressions). */
static bool dim_equal(relay_lower_ctx *c, ir_expr *a, ir_expr *b) {
  if (a == b) return true;
  int64_t x, y;
  if (relay_dim_const(a, &x) && relay_dim_const(b, &y)) return x == y;
  ir_expr *d = ix_sub(c, a, b);
  return d && relay_dim_const(d, &x) && x == 0;
}

/* The status of a failed expression construction (the constructor recorded it). */
static kiln_status lower_status(relay_lower_ctx *c) {
  return c->ctx->code ? c->ctx->code : KILN_ERR_INTERNAL;
}

static bool dim_is(const ir_expr *d, int64_t v) {
  int64_t x;
  return relay_dim_const(d, &x) && x == v;
}

/* buf[idx[0], ..., idx[ndim-1]]. */
static ir_expr *load_at(relay_lower_ctx *c, ir_buffer *buf, ir_expr *const *idx) {
  return ir_load_new(c->arena, buf, buf->ndim, idx);
}

/* The iterators as index expressions. */
static void iters_as_exprs(ir_var *const *it, int n, ir_expr **out) {
  for (int i = 0; i < n; i++) out[i] = (ir_expr *)it[i];
}

/* What the compute functions need (each op uses some of the fields). */
typedef struct lower_io {
  ir_buffer *x, *out;
  int axis;                 /* concatenate, stack, split, take */
  int nargs;                /* concatenate, stack */
  ir_buffer *const *args;   /* concatenate, stack */
  ir_expr *const *offsets;  /* concatenate: where each argument starts along axis */
  ir_expr *start;           /* split: where this part starts along axis */
  ir_expr *first[RELAY_MAX_DIMS]; /* strided_slice: first index per axis */
  int64_t step[RELAY_MAX_DIMS];   /* strided_slice: stride per axis */
  take_mode mode;           /* take */
  ir_buffer *indices;       /* take */
  int perm[RELAY_MAX_DIMS]; /* transpose: output axis i reads input axis perm[i] */
} lower_io;

/* ---- cast ---- */

/* The reference's float-to-integer conversion, in TIR: through double, NaN gives 0, values
 * beyond +-9.2e18 saturate to the int64 limits, the rest truncate toward zero; the int64
 * is then wrapped to the target width (an integer cast keeps the low bits). The plain TIR
 * cast would instead be an error in the interpreter and saturate in compiled code. */
static ir_expr *float_to_int_like_reference(relay_lower_ctx *c, ir_expr *v, kiln_dtype to) {
  ir_arena *a = c->arena;
  if (!ir_dt_eq(v->dtype, KILN_FLOAT64)) v = ir_cast_new(a, KILN_FLOAT64, v);
  ir_expr *lim = ir_float(a, KILN_FLOAT64, 9.2e18);
  ir_expr *nlim = ir_float(a, KILN_FLOAT64, -9.2e18);
  ir_expr *i = ir_cast_new(a, KILN_INT64, v);
  i = ir_select_new(a, ir_binop(a, IR_LE, v, nlim), relay_lower_i64(c, INT64_MIN), i);
  i = ir_select_new(a, ir_binop(a, IR_GE, v, lim), relay_lower_i64(c, INT64_MAX), i);
  i = ir_select_new(a, ir_binop(a, IR_NE, v, v), relay_lower_i64(c, 0), i);
  return ir_dt_eq(to, KILN_INT64) ? i : ir_cast_new(a, to, i);
}

static ir_expr *cast_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  lower_io *io = ud;
  ir_expr *idx[RELAY_MAX_DIMS];
  iters_as_exprs(it, io->x->ndim, idx);
  ir_expr *v = load_at(c, io->x, idx);
  kiln_dtype from = io->x->h.dtype, to = io->out->h.dtype;
  if (!v || ir_dt_eq(from, to)) return v;
  if (ir_dt_is_float(from) && ir_dt_is_int(to)) return float_to_int_like_reference(c, v, to);
  return ir_cast_new(c->arena, to, v);
}

static kiln_status lower_cast(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                              relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  (void)nargs;
  (void)attrs;
  (void)nouts;
  lower_io io = {.x = args[0], .out = outs[0]};
  return relay_lower_compute(c, "cast", outs[0], 0, NULL, RELAY_REDUCE_NONE, cast_value, &io);
}

/* ---- reshape, squeeze, expand_dims, nn.batch_flatten ---- */

/* Every op that keeps the row-major element order reads input element "flat index of the
 * output coordinates". Leading and trailing dimensions that the two shapes share map one to
 * one; only the dimensions between them go through a flat index (sum of iterators times
 * strides, then floordiv/floormod by the input's strides), so that squeeze, expand_dims and
 * most reshapes give plain indices the schedule can work with. */
static ir_expr *reshape_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  lower_io *io = ud;
  ir_buffer *x = io->x, *out = io->out;
  int nin = x->ndim, nout = out->ndim;
  int pre = 0, post = 0;
  while (pre < nin && pre < nout && dim_equal(c, x->shape[pre], out->shape[pre])) pre++;
  while (post < nin - pre && post < nout - pre &&
         dim_equal(c, x->shape[nin - 1 - post], out->shape[nout - 1 - post]))
    post++;
  ir_expr *idx[RELAY_MAX_DIMS];
  for (int i = 0; i < pre; i++) idx[i] = (ir_expr *)it[i];
  for (int i = 0; i < post; i++) idx[nin - 1 - i] = (ir_expr *)it[nout - 1 - i];
  /* the flat index of the output's middle dimensions (row-major), skipping dims of 1 */
  ir_expr *flat = relay_lower_i64(c, 0), *stride = relay_lower_i64(c, 1);
  for (int d = nout - post - 1; d >= pre && flat; d--) {
    if (dim_is(out->shape[d], 1)) continue;
    flat = ix_add(c, flat, ix_mul(c, (ir_expr *)it[d], stride));
    stride = ix_mul(c, stride, out->shape[d]);
  }
  /* ... taken apart by the input's middle dimensions */
  stride = relay_lower_i64(c, 1);
  bool outermost = true; /* the first non-1 middle dim, counted from the outside */
  int first = pre;
  while (first < nin - post && dim_is(x->shape[first], 1)) first++;
  for (int d = nin - post - 1; d >= pre; d--) {
    if (!flat || !stride) return NULL;
    if (dim_is(x->shape[d], 1)) {
      idx[d] = relay_lower_i64(c, 0);
      continue;
    }
    outermost = d == first;
    ir_expr *q = dim_is(stride, 1) ? flat : ir_binop(c->arena, IR_FLOORDIV, flat, stride);
    idx[d] = simp(c, outermost ? q : ir_binop(c->arena, IR_FLOORMOD, q, x->shape[d]));
    stride = ix_mul(c, stride, x->shape[d]);
  }
  for (int i = 0; i < nin; i++)
    if (!idx[i]) return NULL;
  return load_at(c, x, idx);
}

/* The shared lowering of reshape, squeeze, expand_dims and nn.batch_flatten; the block is
 * named after the op. */
static kiln_status lower_reshape(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                 relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  (void)nargs;
  (void)attrs;
  (void)nouts;
  const char *name = c->op;
  if (strncmp(name, "nn.", 3) == 0) name += 3;
  lower_io io = {.x = args[0], .out = outs[0]};
  return relay_lower_compute(c, name, outs[0], 0, NULL, RELAY_REDUCE_NONE, reshape_value, &io);
}

/* ---- transpose ---- */

static ir_expr *transpose_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  lower_io *io = ud;
  ir_expr *idx[RELAY_MAX_DIMS];
  for (int i = 0; i < io->x->ndim; i++) idx[io->perm[i]] = (ir_expr *)it[i];
  return load_at(c, io->x, idx);
}

static kiln_status lower_transpose(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                   relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  (void)nargs;
  (void)nouts;
  lower_io io = {.x = args[0], .out = outs[0]};
  if (!transpose_perm(NULL, args[0]->ndim, attrs[A_AXES], io.perm))
    return ir_fail(c->ctx, c->span, KILN_ERR_SHAPE, "%s: axes are not a permutation of %d axes",
                   c->op, (int)args[0]->ndim);
  return relay_lower_compute(c, "transpose", outs[0], 0, NULL, RELAY_REDUCE_NONE,
                             transpose_value, &io);
}

/* ---- concatenate, stack ---- */

/* concatenate: along the axis, output index i belongs to the last argument whose offset is
 * <= i; a chain of selects picks it (SELECT evaluates only the chosen load). */
static ir_expr *concatenate_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  lower_io *io = ud;
  int nd = io->out->ndim, ax = io->axis;
  ir_expr *idx[RELAY_MAX_DIMS];
  iters_as_exprs(it, nd, idx);
  ir_expr *i = (ir_expr *)it[ax], *v = NULL;
  for (int k = io->nargs - 1; k >= 0; k--) {
    idx[ax] = ix_sub(c, i, io->offsets[k]);
    if (!idx[ax]) return NULL;
    ir_expr *load = load_at(c, io->args[k], idx);
    if (k == io->nargs - 1) v = load;
    else v = ir_select_new(c->arena, ir_binop(c->arena, IR_LT, i, io->offsets[k + 1]), load, v);
    if (!v) return NULL;
  }
  return v;
}

static kiln_status lower_concatenate(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                     relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  (void)nouts;
  lower_io io = {.out = outs[0], .nargs = nargs, .args = args};
  if (!norm_axis(NULL, "axis", relay_attr_i(attrs, A_CAT_AXIS), outs[0]->ndim, &io.axis))
    return ir_fail(c->ctx, c->span, KILN_ERR_SHAPE, "%s: axis %lld is out of range for rank %d",
                   c->op, (long long)relay_attr_i(attrs, A_CAT_AXIS), (int)outs[0]->ndim);
  ir_expr **offsets = ir_arena_alloc(c->arena, sizeof(ir_expr *) * (size_t)nargs);
  if (!offsets) return KILN_ERR_NOMEM;
  offsets[0] = relay_lower_i64(c, 0);
  for (int k = 1; k < nargs && offsets[k - 1]; k++)
    offsets[k] = ix_add(c, offsets[k - 1], args[k - 1]->shape[io.axis]);
  if (!offsets[nargs - 1]) return lower_status(c);
  io.offsets = offsets;
  return relay_lower_compute(c, "concatenate", outs[0], 0, NULL, RELAY_REDUCE_NONE,
                             concatenate_value, &io);
}

/* stack: the new axis's index says which argument; the other iterators index it. */
static ir_expr *stack_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  lower_io *io = ud;
  int nd = io->out->ndim, ax = io->axis;
  ir_expr *idx[RELAY_MAX_DIMS];
  for (int d = 0, j = 0; d < nd; d++)
    if (d != ax) idx[j++] = (ir_expr *)it[d];
  ir_expr *v = NULL;
  for (int k = io->nargs - 1; k >= 0; k--) {
    ir_expr *load = load_at(c, io->args[k], idx);
    if (k == io->nargs - 1) v = load;
    else
      v = ir_select_new(c->arena,
                        ir_binop(c->arena, IR_EQ, (ir_expr *)it[ax], relay_lower_i64(c, k)), load,
                        v);
    if (!v) return NULL;
  }
  return v;
}

static kiln_status lower_stack(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                               relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  (void)nouts;
  lower_io io = {.out = outs[0], .nargs = nargs, .args = args};
  if (!norm_axis(NULL, "axis", relay_attr_i(attrs, A_CAT_AXIS), outs[0]->ndim, &io.axis))
    return ir_fail(c->ctx, c->span, KILN_ERR_SHAPE, "%s: axis %lld is out of range for rank %d",
                   c->op, (long long)relay_attr_i(attrs, A_CAT_AXIS), (int)outs[0]->ndim);
  return relay_lower_compute(c, "stack", outs[0], 0, NULL, RELAY_REDUCE_NONE, stack_value, &io);
}

/* ---- split ---- */

/* One stage per part: part k reads the input shifted by where it starts along the axis (the
 * sum of the earlier parts' sizes, taken from the output buffers). */
static ir_expr *split_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  lower_io *io = ud;
  ir_expr *idx[RELAY_MAX_DIMS];
  iters_as_exprs(it, io->x->ndim, idx);
  idx[io->axis] = ix_add(c, idx[io->axis], io->start);
  return idx[io->axis] ? load_at(c, io->x, idx) : NULL;
}

static kiln_status lower_split(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                               relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  (void)nargs;
  lower_io io = {.x = args[0]};
  if (!norm_axis(NULL, "axis", relay_attr_i(attrs, A_SPLIT_AXIS), args[0]->ndim, &io.axis))
    return ir_fail(c->ctx, c->span, KILN_ERR_SHAPE, "%s: axis %lld is out of range for rank %d",
                   c->op, (long long)relay_attr_i(attrs, A_SPLIT_AXIS), (int)args[0]->ndim);
  io.start = relay_lower_i64(c, 0);
  for (int k = 0; k < nouts; k++) {
    if (!io.start) return lower_status(c);
    io.out = outs[k];
    kiln_status st = relay_lower_compute(c, "split", outs[k], 0, NULL, RELAY_REDUCE_NONE,
                                         split_value, &io);
    if (st) return st;
    io.start = ix_add(c, io.start, outs[k]->shape[io.axis]);
  }
  return KILN_OK;
}

/* ---- strided_slice ---- */

static ir_expr *strided_slice_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  lower_io *io = ud;
  ir_expr *idx[RELAY_MAX_DIMS];
  for (int d = 0; d < io->x->ndim; d++) {
    idx[d] = ix_add(c, io->first[d], ix_mul(c, (ir_expr *)it[d], relay_lower_i64(c, io->step[d])));
    if (!idx[d]) return NULL;
  }
  return load_at(c, io->x, idx);
}

/* The first index of a sliced axis of size d, as slice_count computes it but on an int64
 * expression (symbolic sizes are known only at run time): a negative begin counts from
 * the end, then it is clamped to [0, d] (to [-1, d - 1] for a negative stride). */
static ir_expr *slice_first(relay_lower_ctx *c, ir_expr *d, const slice_axis *sa) {
  ir_arena *a = c->arena;
  ir_expr *b = relay_lower_i64(c, sa->begin);
  if (sa->begin < 0) b = ir_binop(a, IR_ADD, b, d);
  ir_expr *lo = relay_lower_i64(c, sa->stride > 0 ? 0 : -1);
  ir_expr *hi = sa->stride > 0 ? d : ir_binop(a, IR_SUB, d, relay_lower_i64(c, 1));
  return simp(c, ir_binop(a, IR_MAX, ir_binop(a, IR_MIN, b, hi), lo));
}

static kiln_status lower_strided_slice(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                       relay_attr *const *attrs, int nouts,
                                       ir_buffer *const *outs) {
  (void)nargs;
  (void)nouts;
  lower_io io = {.x = args[0], .out = outs[0]};
  slice_axis sp[RELAY_MAX_DIMS];
  if (!slice_spec(NULL, args[0]->ndim, attrs, sp))
    return ir_fail(c->ctx, c->span, KILN_ERR_SHAPE, "%s: bad slice attributes for rank %d",
                   c->op, (int)args[0]->ndim);
  for (int d = 0; d < args[0]->ndim; d++) {
    io.step[d] = sp[d].sliced ? sp[d].stride : 1;
    io.first[d] = sp[d].sliced ? slice_first(c, args[0]->shape[d], &sp[d]) : relay_lower_i64(c, 0);
    if (!io.first[d]) return lower_status(c);
  }
  return relay_lower_compute(c, "strided_slice", outs[0], 0, NULL, RELAY_REDUCE_NONE,
                             strided_slice_value, &io);
}

/* ---- take ---- */

/* out[pre, j, post] = data[pre, fix(indices[j]), post], where fix applies the mode to the
 * index (read as int64): clip clamps to [0, d - 1], wrap takes it modulo d (floormod, as
 * Python), raise maps [-d, -1] to [0, d - 1]. The reference reports an index out of range
 * in raise mode; compiled code cannot, so it clamps such indices (never reading outside
 * data) and the result for them is unspecified. */
static ir_expr *take_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  lower_io *io = ud;
  ir_arena *a = c->arena;
  ir_buffer *x = io->x, *ind = io->indices;
  int ax = io->axis;
  ir_expr *jdx[RELAY_MAX_DIMS], *idx[RELAY_MAX_DIMS];
  iters_as_exprs(it + ax, ind->ndim, jdx);
  ir_expr *v = load_at(c, ind, jdx);
  if (v && !ir_dt_eq(v->dtype, KILN_INT64)) v = ir_cast_new(a, KILN_INT64, v);
  ir_expr *d = x->shape[ax], *zero = relay_lower_i64(c, 0);
  ir_expr *last = ix_sub(c, d, relay_lower_i64(c, 1));
  if (io->mode == TAKE_WRAP) {
    v = ir_binop(a, IR_FLOORMOD, v, d);
  } else {
    if (io->mode != TAKE_CLIP) /* raise: negative counts from the end */
      v = ir_select_new(a, ir_binop(a, IR_LT, v, zero), ir_binop(a, IR_ADD, v, d), v);
    v = ir_binop(a, IR_MIN, ir_binop(a, IR_MAX, v, zero), last);
  }
  for (int i = 0; i < ax; i++) idx[i] = (ir_expr *)it[i];
  idx[ax] = v;
  for (int i = ax + 1; i < x->ndim; i++) idx[i] = (ir_expr *)it[i - 1 + ind->ndim];
  return v ? load_at(c, x, idx) : NULL;
}

static kiln_status lower_take(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                              relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  (void)nargs;
  (void)nouts;
  lower_io io = {.x = args[0], .indices = args[1], .out = outs[0],
                 .mode = take_mode_of(attrs[A_MODE]->s)};
  if (!norm_axis(NULL, "axis", relay_attr_i(attrs, A_TAKE_AXIS), args[0]->ndim, &io.axis))
    return ir_fail(c->ctx, c->span, KILN_ERR_SHAPE, "%s: axis %lld is out of range for rank %d",
                   c->op, (long long)relay_attr_i(attrs, A_TAKE_AXIS), (int)args[0]->ndim);
  return relay_lower_compute(c, "take", outs[0], 0, NULL, RELAY_REDUCE_NONE, take_value, &io);
}

/* ---- broadcast_to ---- */

static ir_expr *broadcast_to_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  lower_io *io = ud;
  return relay_lower_load_bcast(c, io->x, io->out->ndim, it);
}

static kiln_status lower_broadcast_to(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                      relay_attr *const *attrs, int nouts,
                                      ir_buffer *const *outs) {
  (void)nargs;
  (void)attrs;
  (void)nouts;
  lower_io io = {.x = args[0], .out = outs[0]};
  return relay_lower_compute(c, "broadcast_to", outs[0], 0, NULL, RELAY_REDUCE_NONE,
                             broadcast_to_value, &io);
}

/* ---- The table ------------------------------------------------------------------------ */

const relay_op relay_ops_transform[] = {
    {"cast", 1, 1, RELAY_ELEMWISE, 1, cast_attrs, infer_cast, eval_cast,
     "converts elements to another dtype (floats to integers truncate)", lower_cast},
    {"reshape", 1, 1, RELAY_INJECTIVE, 1, reshape_attrs, infer_reshape, eval_copy,
     "new shape with the same elements (0 copies a dimension, -1 infers one)", lower_reshape},
    {"transpose", 1, 1, RELAY_INJECTIVE, 1, transpose_attrs, infer_transpose, eval_transpose,
     "permutes the axes (empty axes: reverses them)", lower_transpose},
    {"squeeze", 1, 1, RELAY_INJECTIVE, 1, squeeze_attrs, infer_squeeze, eval_copy,
     "drops dimensions of 1 (the listed ones, or all)", lower_reshape},
    {"expand_dims", 1, 1, RELAY_INJECTIVE, 2, expand_dims_attrs, infer_expand_dims, eval_copy,
     "inserts num_newaxis dimensions of 1 at axis", lower_reshape},
    {"nn.batch_flatten", 1, 1, RELAY_INJECTIVE, 0, NULL, infer_batch_flatten, eval_copy,
     "(N, d1, d2, ...) -> (N, d1 * d2 * ...)", lower_reshape},
    {"concatenate", 1, -1, RELAY_INJECTIVE, 1, axis0_attrs, infer_concatenate, eval_concatenate,
     "joins the argument tensors (not a tuple) along axis", lower_concatenate},
    {"stack", 1, -1, RELAY_INJECTIVE, 1, axis0_attrs, infer_stack, eval_stack,
     "joins the argument tensors (not a tuple) along a new axis", lower_stack},
    {"split", 1, 1, RELAY_INJECTIVE, 3, split_attrs, infer_split, eval_split,
     "a tuple of parts along axis: at the split points `indices`, or `sections` equal parts",
     lower_split},
    {"strided_slice", 1, 1, RELAY_INJECTIVE, 4, strided_slice_attrs, infer_strided_slice,
     eval_strided_slice, "x[begin:end:strides] on the given axes (numpy semantics)",
     lower_strided_slice},
    {"take", 2, 2, RELAY_INJECTIVE, 2, take_attrs, infer_take, eval_take,
     "slices of data along axis at integer indices (mode clip, wrap or raise)", lower_take},
    {"broadcast_to", 1, 1, RELAY_INJECTIVE, 1, broadcast_to_attrs, infer_broadcast_to,
     eval_broadcast_to, "x stretched to a constant shape", lower_broadcast_to},
};
const int relay_ops_transform_count = sizeof relay_ops_transform / sizeof relay_ops_transform[0];

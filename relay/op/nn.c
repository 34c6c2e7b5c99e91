/* nn.c: neural-network ops: dense and matmul, convolutions, pooling, normalization, softmax,
 * resize, padding, dropout. Each op is one table entry at the end of the file: attributes in
 * TVM Relay's names and order with their defaults, a type relation (symbolic dimensions flow
 * through as TIR expressions), a fusion pattern, a reference kernel computing in double and
 * a compute definition emitting TIR blocks (relay/lower.h; the section before the table).
 * relay_call_op types calls through the relations; relay/interp.c runs the kernels. Every
 * kernel first re-runs its op's type relation on the concrete input shapes (check_call), so
 * a kernel never indexes outside its tensors, whoever calls it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "relay/lower.h"
#include "relay/op.h"

/* ==== Helpers for type relations ====================================================== */

/* Argument i as a tensor of the given rank (-1: any), or NULL with an error naming it. */
static const relay_tensor_type *tensor_arg(relay_infer_ctx *c, relay_type *const *args, int i,
                                           int rank, const char *name) {
  const relay_tensor_type *t = relay_arg_tensor(c, args, i);
  if (t && rank >= 0 && t->ndim != rank) {
    char s[160];
    relay_type_error(c, "%s must have rank %d, got shape %s", name, rank,
                     relay_shape_str(t, s, sizeof s));
    return NULL;
  }
  return t;
}

static bool same_dtype(relay_infer_ctx *c, const relay_tensor_type *x,
                       const relay_tensor_type *y, const char *xname, const char *yname) {
  if (ir_dt_eq(x->h.dtype, y->h.dtype)) return true;
  char a[32], b[32];
  relay_type_error(c, "%s and %s dtypes differ (%s vs %s)", xname, yname,
                   kiln_dtype_str(x->h.dtype, a, sizeof a),
                   kiln_dtype_str(y->h.dtype, b, sizeof b));
  return false;
}

static bool float_data(relay_infer_ctx *c, const relay_tensor_type *x) {
  if (ir_dt_is_float(x->h.dtype)) return true;
  char dt[32];
  relay_type_error(c, "needs float data, not %s", kiln_dtype_str(x->h.dtype, dt, sizeof dt));
  return false;
}

/* An integer attribute must be >= min. */
static bool check_int(relay_infer_ctx *c, const relay_attr *a, int64_t min) {
  if (a->i >= min) return true;
  relay_type_error(c, "%s must be >= %lld, got %lld", a->key, (long long)min, (long long)a->i);
  return false;
}

/* An integer-list attribute must have n values, each >= min. */
static bool check_ints(relay_infer_ctx *c, const relay_attr *a, int n, int64_t min) {
  if (a->nints != n) {
    relay_type_error(c, "%s must have %d values, got %d", a->key, n, (int)a->nints);
    return false;
  }
  for (int i = 0; i < n; i++)
    if (a->ints[i] < min) {
      relay_type_error(c, "%s must be >= %lld, got %lld", a->key, (long long)min,
                       (long long)a->ints[i]);
      return false;
    }
  return true;
}

/* out_dtype: "" means `def` (the input's dtype). */
static bool parse_out_dtype(relay_infer_ctx *c, const relay_attr *a, kiln_dtype def,
                            kiln_dtype *out) {
  if (!a->s[0]) {
    *out = def;
    return true;
  }
  kiln_dtype t;
  if (kiln_dtype_parse(a->s, strlen(a->s), &t) != KILN_OK || t.lanes != 1 ||
      t.code == KILN_TYPE_VOID || t.code == KILN_TYPE_HANDLE) {
    relay_type_error(c, "%s '%s' is not a tensor element type", a->key, a->s);
    return false;
  }
  *out = t;
  return true;
}

/* A negative axis counts from the end. */
static bool norm_axis(relay_infer_ctx *c, int64_t axis, int ndim, int *out) {
  int64_t a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) {
    relay_type_error(c, "axis %lld is out of range for a tensor of rank %d", (long long)axis,
                     ndim);
    return false;
  }
  *out = (int)a;
  return true;
}

/* ---- Layouts ---- */

/* Where each of the four `letters` sits in layout s (which must be a permutation of them):
 * "NHWC" with letters "NCHW" gives pos = {0, 3, 1, 2}. */
static bool layout_perm(const char *s, const char *letters, int pos[4]) {
  if (strlen(s) != 4) return false;
  for (int k = 0; k < 4; k++) {
    const char *p = strchr(s, letters[k]);
    if (!p) return false;
    pos[k] = (int)(p - s);
  }
  return true; /* four distinct letters found in four characters: a permutation */
}

/* Data layouts are NCHW or NHWC; pos gives the axes of N, C, H, W. */
static bool data_layout(relay_infer_ctx *c, const relay_attr *a, int pos[4]) {
  if (strcmp(a->s, "NCHW") != 0 && strcmp(a->s, "NHWC") != 0) {
    relay_type_error(c, "%s '%s' is not supported (NCHW or NHWC)", a->key, a->s);
    return false;
  }
  return layout_perm(a->s, "NCHW", pos);
}

/* Kernel layouts are any order of O (output channels), I (input channels per group for
 * conv2d; all input channels for conv2d_transpose), H and W. */
static bool kernel_layout(relay_infer_ctx *c, const relay_attr *a, int pos[4]) {
  if (!layout_perm(a->s, "OIHW", pos)) {
    relay_type_error(c, "%s '%s' is not an order of O, I, H and W (e.g. OIHW, HWIO)", a->key,
                     a->s);
    return false;
  }
  return true;
}

/* out_layout is "" or the data layout (no layout conversion inside ops). */
static bool out_layout(relay_infer_ctx *c, const relay_attr *a, const relay_attr *data) {
  if (!a->s[0] || strcmp(a->s, data->s) == 0) return true;
  relay_type_error(c, "%s '%s' differs from the data layout '%s' (not supported)", a->key, a->s,
                   data->s);
  return false;
}

/* A 4-d tensor type whose N, C, H, W dimensions go where pos says. */
static relay_type *layout_type(relay_infer_ctx *c, kiln_dtype t, const int pos[4], ir_expr *n,
                               ir_expr *ch, ir_expr *h, ir_expr *w) {
  if (!n || !ch || !h || !w) return NULL;
  ir_expr *dims[4];
  dims[pos[0]] = n;
  dims[pos[1]] = ch;
  dims[pos[2]] = h;
  dims[pos[3]] = w;
  return relay_tensor_type_new(c->arena, t, 4, dims);
}

/* ---- Sliding windows ---- */

static ir_expr *dim_add(relay_infer_ctx *c, ir_expr *x, int64_t v) {
  return relay_dim_binop(c, IR_ADD, x, relay_dim(c, v));
}

/* The number of positions of a window of k taps dilated by dil, moved by stride s over `in`
 * padded with `before` and `after`: floor((in + before + after - dil*(k-1) - 1) / s) + 1.
 * In ceil mode a last, partial window counts too (ceil instead of floor), but only if it
 * starts inside the input or the padding before it (PyTorch's rule), which caps the count
 * at ceil((in + before) / s). Symbolic inputs give an expression. */
static ir_expr *window_out(relay_infer_ctx *c, ir_expr *in, int64_t before, int64_t after,
                           ir_expr *k, int64_t dil, int64_t s, bool ceil_mode) {
  ir_expr *span = dim_add(c, relay_dim_binop(c, IR_MUL, relay_dim(c, dil), dim_add(c, k, -1)), 1);
  ir_expr *num = relay_dim_binop(c, IR_SUB, dim_add(c, in, before + after), span);
  if (ceil_mode) num = dim_add(c, num, s - 1);
  ir_expr *out = dim_add(c, relay_dim_binop(c, IR_FLOORDIV, num, relay_dim(c, s)), 1);
  int64_t kv;
  /* the cap can only bite when the last window may start past the input: after + s - 1 >= span */
  bool may_overhang = !relay_dim_const(k, &kv) || after + s - 1 >= dil * (kv - 1) + 1;
  if (ceil_mode && may_overhang) {
    ir_expr *cap = relay_dim_binop(c, IR_FLOORDIV, dim_add(c, in, before + s - 1), relay_dim(c, s));
    out = relay_dim_binop(c, IR_MIN, out, cap);
  }
  return out;
}

/* An output dimension that is a known constant must be positive. */
static bool check_window(relay_infer_ctx *c, const ir_expr *out, const char *what,
                         const ir_expr *in, int64_t before, int64_t after, const ir_expr *k,
                         int64_t dil, int64_t s) {
  int64_t v;
  if (!out) return false;
  if (!relay_dim_const(out, &v) || v > 0) return true;
  char bi[48], bk[48];
  relay_type_error(c,
                   "output %s is %lld (not positive): input %s %s, padding %lld+%lld, "
                   "window %s, dilation %lld, stride %lld",
                   what, (long long)v, what, relay_dim_str(in, bi, sizeof bi), (long long)before,
                   (long long)after, relay_dim_str(k, bk, sizeof bk), (long long)dil, (long long)s);
  return false;
}

/* groups divides both channel counts (a symbolic output channel count only when groups is 1,
 * since divisibility cannot be proven). */
static bool check_groups(relay_infer_ctx *c, ir_expr *cin, ir_expr *cout, int64_t groups) {
  int64_t v;
  if (relay_dim_const(cin, &v) && v % groups != 0) {
    relay_type_error(c, "groups %lld does not divide the input channels %lld", (long long)groups,
                     (long long)v);
    return false;
  }
  if (relay_dim_const(cout, &v) ? v % groups != 0 : groups != 1) {
    char b[48];
    relay_type_error(c, "groups %lld does not divide the output channels %s", (long long)groups,
                     relay_dim_str(cout, b, sizeof b));
    return false;
  }
  return true;
}

/* ==== Helpers for reference kernels ===================================================== */

enum { MAX_EVAL_ARGS = 8 };

/* Re-derives the output type from the concrete input shapes through the op's type relation
 * and checks that the single output tensor has it. Kernels call this first: afterwards the
 * attributes are known to be valid and the shapes consistent, so every index a kernel
 * computes is inside its tensors. The scratch arena lives only for the check. */
static kiln_status check_call(relay_eval_ctx *c, const char *op, relay_infer_fn infer, int nargs,
                              const relay_tensor *args, relay_attr *const *attrs, int nouts,
                              const relay_tensor *outs) {
  if (nouts != 1 || nargs > MAX_EVAL_ARGS)
    return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL,
                   "%s: called with %d arguments and %d outputs", op, nargs, nouts);
  ir_arena *a = ir_arena_new(c->ctx);
  if (!a) return KILN_ERR_NOMEM;
  kiln_status st = KILN_OK;
  relay_type *types[MAX_EVAL_ARGS];
  for (int i = 0; i < nargs && st == KILN_OK; i++) {
    types[i] = relay_tensor_type_const(a, args[i].dtype, args[i].ndim, args[i].shape);
    if (!types[i]) st = c->ctx->code ? c->ctx->code : KILN_ERR_NOMEM;
    else if (!args[i].data && relay_tensor_numel(&args[i]) > 0)
      st = ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "%s: argument %d has no data", op, i);
  }
  if (st == KILN_OK && !outs[0].data && relay_tensor_numel(&outs[0]) > 0)
    st = ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "%s: the output has no data", op);
  if (st == KILN_OK) {
    relay_infer_ctx ic = {.arena = a, .op = op, .span = IR_NO_SPAN};
    relay_type *t = infer(&ic, nargs, types, attrs);
    if (ic.an) ir_analyzer_free(ic.an);
    const relay_tensor_type *tt = relay_as_tensor_type(t);
    if (!t) {
      st = c->ctx->code ? c->ctx->code : KILN_ERR_INTERNAL;
    } else {
      bool ok = tt && ir_dt_eq(tt->h.dtype, outs[0].dtype) && tt->ndim == outs[0].ndim;
      for (int i = 0; ok && i < tt->ndim; i++) {
        int64_t v;
        ok = relay_dim_const(tt->shape[i], &v) && v == outs[0].shape[i];
      }
      if (!ok) {
        char want[160] = "?";
        if (tt) relay_shape_str(tt, want, sizeof want);
        st = ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                     "%s: the output tensor does not have the inferred type (shape %s)", op, want);
      }
    }
  }
  ir_arena_free(a);
  return st;
}

/* A 4-d tensor seen in logical order (N, C, H, W or O, I, H, W) whatever its layout. */
typedef struct view4 {
  int64_t dim[4];
  int64_t stride[4];
} view4;

static view4 view_of(const relay_tensor *t, const int pos[4]) {
  int64_t st[4];
  st[3] = 1;
  for (int d = 2; d >= 0; d--) st[d] = st[d + 1] * t->shape[d + 1];
  view4 v;
  for (int k = 0; k < 4; k++) {
    v.dim[k] = t->shape[pos[k]];
    v.stride[k] = st[pos[k]];
  }
  return v;
}

static int64_t at4(const view4 *v, int64_t a, int64_t b, int64_t c, int64_t d) {
  return a * v->stride[0] + b * v->stride[1] + c * v->stride[2] + d * v->stride[3];
}

/* The tensor seen as [outer, len, inner] around `axis`. */
static void split_axis(const relay_tensor *t, int axis, int64_t *outer, int64_t *len,
                       int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < axis; d++) *outer *= t->shape[d];
  for (int d = axis + 1; d < t->ndim; d++) *inner *= t->shape[d];
  *len = t->shape[axis];
}

/* The smallest value of a dtype (the identity of max). */
static double dtype_lowest(kiln_dtype t) {
  switch (t.code) {
  case KILN_TYPE_INT: return -ldexp(1, t.bits - 1);
  case KILN_TYPE_UINT:
  case KILN_TYPE_BOOL: return 0;
  default: return -INFINITY;
  }
}

static int axis_of(int64_t axis, int ndim) { return (int)(axis < 0 ? axis + ndim : axis); }

/* ==== nn.dense, nn.matmul, nn.batch_matmul ============================================== */

enum { DN_UNITS, DN_OUT_DTYPE, DN_WEIGHT_LAYOUT };
static const relay_attr_def dense_attrs[] = {
    {"units", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}}, /* 0: taken from the weight */
    {"out_dtype", RELAY_ATTR_STR, 0, 0, "", 0, {0}},
    /* "NK": w is [N, K] (PyTorch's Linear, ONNX Gemm with transB); "KN": w is [K, N], the
     * output columns contiguous (AlterDenseLayout's choice for constant weights) */
    {"weight_layout", RELAY_ATTR_STR, 0, 0, "NK", 0, {0}},
};

/* Whether a dense's weight is [K, N] (weight_layout "KN"); false for "NK". Type inference
 * rejects any other value. */
static bool dense_kn(relay_attr *const *attrs) {
  return strcmp(attrs[DN_WEIGHT_LAYOUT]->s, "KN") == 0;
}

/* Checks the `units` attribute (0 or the number of output columns). */
static bool check_units(relay_infer_ctx *c, const relay_attr *units, ir_expr *n) {
  if (!check_int(c, units, 0)) return false;
  if (units->i == 0 || relay_dim_is(c, n, units->i)) return true;
  char b[48];
  relay_type_error(c, "units %lld does not match the weight's %s output units",
                   (long long)units->i, relay_dim_str(n, b, sizeof b));
  return false;
}

/* dense(x [..., K], w [N, K]) -> [..., N]: x times w transposed (w as [K, N] with
 * weight_layout "KN"). */
static relay_type *infer_dense(relay_infer_ctx *c, int nargs, relay_type *const *args,
                               relay_attr *const *attrs) {
  (void)nargs;
  const relay_attr *wl = attrs[DN_WEIGHT_LAYOUT];
  if (strcmp(wl->s, "NK") != 0 && strcmp(wl->s, "KN") != 0)
    return relay_type_error(c, "weight_layout '%s' is not supported (NK or KN)", wl->s);
  int kaxis = dense_kn(attrs) ? 0 : 1;
  const relay_tensor_type *x = tensor_arg(c, args, 0, -1, "data");
  const relay_tensor_type *w = x ? tensor_arg(c, args, 1, 2, "weight") : NULL;
  kiln_dtype odt;
  if (!w || !same_dtype(c, x, w, "data", "weight") ||
      !parse_out_dtype(c, attrs[DN_OUT_DTYPE], x->h.dtype, &odt))
    return NULL;
  char sx[160], sw[160];
  if (x->ndim < 1)
    return relay_type_error(c, "data must have rank >= 1, got shape %s",
                            relay_shape_str(x, sx, sizeof sx));
  if (!relay_dim_equal(c, x->shape[x->ndim - 1], w->shape[kaxis]))
    return relay_type_error(c,
                            "the data's last dimension does not match the weight's %s "
                            "dimension (data %s, weight %s%s)",
                            kaxis ? "second" : "first", relay_shape_str(x, sx, sizeof sx),
                            relay_shape_str(w, sw, sizeof sw), kaxis ? "" : ", weight_layout KN");
  if (!check_units(c, attrs[DN_UNITS], w->shape[1 - kaxis])) return NULL;
  ir_expr *dims[RELAY_MAX_DIMS];
  for (int i = 0; i < x->ndim - 1; i++) dims[i] = x->shape[i];
  dims[x->ndim - 1] = w->shape[1 - kaxis];
  return relay_tensor_type_new(c->arena, odt, x->ndim, dims);
}

static kiln_status eval_dense(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                              relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  kiln_status st = check_call(c, "nn.dense", infer_dense, nargs, args, attrs, nouts, outs);
  if (st) return st;
  const relay_tensor *x = &args[0], *w = &args[1];
  bool kn = dense_kn(attrs);
  int64_t k = w->shape[kn ? 0 : 1], n = w->shape[kn ? 1 : 0];
  int64_t m = relay_tensor_numel(&outs[0]) / (n ? n : 1);
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double acc = 0;
      for (int64_t l = 0; l < k; l++)
        acc += relay_tensor_get(x, i * k + l) * relay_tensor_get(w, kn ? l * n + j : j * k + l);
      relay_tensor_set(&outs[0], i * n + j, acc);
    }
  return KILN_OK;
}

enum { MM_UNITS, MM_OUT_DTYPE, MM_TRANSPOSE_A, MM_TRANSPOSE_B };
static const relay_attr_def matmul_attrs[] = {
    {"units", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}},
    {"out_dtype", RELAY_ATTR_STR, 0, 0, "", 0, {0}},
    {"transpose_a", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}},
    {"transpose_b", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}},
};

/* matmul(a [M, K], b [K, N]) -> [M, N]; transpose_a takes a as [K, M], transpose_b takes b as
 * [N, K]. */
static relay_type *infer_matmul(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = tensor_arg(c, args, 0, 2, "a");
  const relay_tensor_type *y = x ? tensor_arg(c, args, 1, 2, "b") : NULL;
  kiln_dtype odt;
  if (!y || !same_dtype(c, x, y, "a", "b") ||
      !parse_out_dtype(c, attrs[MM_OUT_DTYPE], x->h.dtype, &odt))
    return NULL;
  bool ta = attrs[MM_TRANSPOSE_A]->i != 0, tb = attrs[MM_TRANSPOSE_B]->i != 0;
  ir_expr *m = x->shape[ta ? 1 : 0], *ka = x->shape[ta ? 0 : 1];
  ir_expr *kb = y->shape[tb ? 1 : 0], *n = y->shape[tb ? 0 : 1];
  if (!relay_dim_equal(c, ka, kb)) {
    char sx[160], sy[160];
    return relay_type_error(c,
                            "the reduction dimensions differ (a %s, b %s, transpose_a %d, "
                            "transpose_b %d)",
                            relay_shape_str(x, sx, sizeof sx), relay_shape_str(y, sy, sizeof sy),
                            ta, tb);
  }
  if (!check_units(c, attrs[MM_UNITS], n)) return NULL;
  ir_expr *dims[2] = {m, n};
  return relay_tensor_type_new(c->arena, odt, 2, dims);
}

static kiln_status eval_matmul(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                               relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  kiln_status st = check_call(c, "nn.matmul", infer_matmul, nargs, args, attrs, nouts, outs);
  if (st) return st;
  bool ta = attrs[MM_TRANSPOSE_A]->i != 0, tb = attrs[MM_TRANSPOSE_B]->i != 0;
  int64_t m = outs[0].shape[0], n = outs[0].shape[1];
  int64_t k = args[0].shape[ta ? 0 : 1];
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double acc = 0;
      for (int64_t l = 0; l < k; l++) {
        double a = relay_tensor_get(&args[0], ta ? l * m + i : i * k + l);
        double b = relay_tensor_get(&args[1], tb ? j * k + l : l * n + j);
        acc += a * b;
      }
      relay_tensor_set(&outs[0], i * n + j, acc);
    }
  return KILN_OK;
}

enum { BM_OUT_DTYPE, BM_TRANSPOSE_A, BM_TRANSPOSE_B };
static const relay_attr_def batch_matmul_attrs[] = {
    {"out_dtype", RELAY_ATTR_STR, 0, 0, "", 0, {0}},
    {"transpose_a", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}},
    {"transpose_b", RELAY_ATTR_INT, 1, 0, NULL, 0, {0}},
};

/* batch_matmul(x [B, M, K], y [B, N, K]) -> [B, M, N] by default (TVM's transpose_b = 1);
 * transpose_a takes x as [B, K, M], transpose_b = 0 takes y as [B, K, N]. A batch of 1 is
 * broadcast against the other operand's batch. */
static relay_type *infer_batch_matmul(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                      relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = tensor_arg(c, args, 0, 3, "x");
  const relay_tensor_type *y = x ? tensor_arg(c, args, 1, 3, "y") : NULL;
  kiln_dtype odt;
  if (!y || !same_dtype(c, x, y, "x", "y") ||
      !parse_out_dtype(c, attrs[BM_OUT_DTYPE], x->h.dtype, &odt))
    return NULL;
  bool ta = attrs[BM_TRANSPOSE_A]->i != 0, tb = attrs[BM_TRANSPOSE_B]->i != 0;
  char sx[160], sy[160];
  ir_expr *batch;
  if (relay_dim_equal(c, x->shape[0], y->shape[0]) || relay_dim_is(c, y->shape[0], 1))
    batch = x->shape[0];
  else if (relay_dim_is(c, x->shape[0], 1))
    batch = y->shape[0];
  else
    return relay_type_error(c, "batch dimensions differ and neither is 1 (x %s, y %s)",
                            relay_shape_str(x, sx, sizeof sx), relay_shape_str(y, sy, sizeof sy));
  ir_expr *m = x->shape[ta ? 2 : 1], *kx = x->shape[ta ? 1 : 2];
  ir_expr *ky = y->shape[tb ? 2 : 1], *n = y->shape[tb ? 1 : 2];
  if (!relay_dim_equal(c, kx, ky))
    return relay_type_error(c,
                            "the reduction dimensions differ (x %s, y %s, transpose_a %d, "
                            "transpose_b %d)",
                            relay_shape_str(x, sx, sizeof sx), relay_shape_str(y, sy, sizeof sy),
                            ta, tb);
  ir_expr *dims[3] = {batch, m, n};
  return relay_tensor_type_new(c->arena, odt, 3, dims);
}

static kiln_status eval_batch_matmul(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                     relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  kiln_status st =
      check_call(c, "nn.batch_matmul", infer_batch_matmul, nargs, args, attrs, nouts, outs);
  if (st) return st;
  bool ta = attrs[BM_TRANSPOSE_A]->i != 0, tb = attrs[BM_TRANSPOSE_B]->i != 0;
  const relay_tensor *x = &args[0], *y = &args[1];
  int64_t nb = outs[0].shape[0], m = outs[0].shape[1], n = outs[0].shape[2];
  int64_t k = x->shape[ta ? 1 : 2];
  for (int64_t b = 0; b < nb; b++) {
    int64_t bx = x->shape[0] == 1 ? 0 : b, by = y->shape[0] == 1 ? 0 : b;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double acc = 0;
        for (int64_t l = 0; l < k; l++) {
          double a = relay_tensor_get(x, ta ? (bx * k + l) * m + i : (bx * m + i) * k + l);
          double v = relay_tensor_get(y, tb ? (by * n + j) * k + l : (by * k + l) * n + j);
          acc += a * v;
        }
        relay_tensor_set(&outs[0], (b * m + i) * n + j, acc);
      }
  }
  return KILN_OK;
}

/* ==== nn.conv2d ========================================================================= */

enum {
  CV_STRIDES,
  CV_PADDING,
  CV_DILATION,
  CV_GROUPS,
  CV_CHANNELS,
  CV_KERNEL_SIZE,
  CV_DATA_LAYOUT,
  CV_KERNEL_LAYOUT,
  CV_OUT_LAYOUT,
  CV_OUT_DTYPE
};
static const relay_attr_def conv2d_attrs[] = {
    {"strides", RELAY_ATTR_INTS, 0, 0, NULL, 2, {1, 1}},
    {"padding", RELAY_ATTR_INTS, 0, 0, NULL, 4, {0, 0, 0, 0}}, /* top, left, bottom, right */
    {"dilation", RELAY_ATTR_INTS, 0, 0, NULL, 2, {1, 1}},
    {"groups", RELAY_ATTR_INT, 1, 0, NULL, 0, {0}},
    {"channels", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}},       /* 0: from the weight */
    {"kernel_size", RELAY_ATTR_INTS, 0, 0, NULL, 0, {0}},   /* empty: from the weight */
    {"data_layout", RELAY_ATTR_STR, 0, 0, "NCHW", 0, {0}},
    {"kernel_layout", RELAY_ATTR_STR, 0, 0, "OIHW", 0, {0}},
    {"out_layout", RELAY_ATTR_STR, 0, 0, "", 0, {0}},       /* "": the data layout */
    {"out_dtype", RELAY_ATTR_STR, 0, 0, "", 0, {0}},        /* "": the data's dtype */
};

/* The attributes conv2d and conv2d_transpose share (indices differ, so they are passed). */
static bool check_conv_attrs(relay_infer_ctx *c, const relay_attr *strides,
                             const relay_attr *padding, const relay_attr *dilation,
                             const relay_attr *groups, const relay_attr *channels,
                             const relay_attr *kernel_size) {
  return check_ints(c, strides, 2, 1) && check_ints(c, padding, 4, 0) &&
         check_ints(c, dilation, 2, 1) && check_int(c, groups, 1) && check_int(c, channels, 0) &&
         (kernel_size->nints == 0 || check_ints(c, kernel_size, 2, 1));
}

/* `channels` and `kernel_size`, when given, must agree with the weight. */
static bool check_conv_weight(relay_infer_ctx *c, const relay_attr *channels,
                              const relay_attr *kernel_size, ir_expr *cout, ir_expr *kh,
                              ir_expr *kw) {
  char b1[48], b2[48];
  if (channels->i && !relay_dim_is(c, cout, channels->i)) {
    relay_type_error(c, "channels %lld does not match the weight's %s output channels",
                     (long long)channels->i, relay_dim_str(cout, b1, sizeof b1));
    return false;
  }
  if (kernel_size->nints &&
      (!relay_dim_is(c, kh, kernel_size->ints[0]) || !relay_dim_is(c, kw, kernel_size->ints[1]))) {
    relay_type_error(c, "kernel_size (%lld, %lld) does not match the weight's (%s, %s)",
                     (long long)kernel_size->ints[0], (long long)kernel_size->ints[1],
                     relay_dim_str(kh, b1, sizeof b1), relay_dim_str(kw, b2, sizeof b2));
    return false;
  }
  return true;
}

/* conv2d(data [N, C, H, W], weight [O, C/groups, KH, KW]) -> [N, O, OH, OW] (in the data
 * layout), OH = floor((H + pad_top + pad_bottom - dil*(KH-1) - 1) / stride) + 1. Depthwise
 * convolution is groups == C. */
static relay_type *infer_conv2d(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = tensor_arg(c, args, 0, 4, "data");
  const relay_tensor_type *w = x ? tensor_arg(c, args, 1, 4, "weight") : NULL;
  int dl[4], kl[4];
  kiln_dtype odt;
  if (!w || !same_dtype(c, x, w, "data", "weight") ||
      !check_conv_attrs(c, attrs[CV_STRIDES], attrs[CV_PADDING], attrs[CV_DILATION],
                        attrs[CV_GROUPS], attrs[CV_CHANNELS], attrs[CV_KERNEL_SIZE]) ||
      !data_layout(c, attrs[CV_DATA_LAYOUT], dl) ||
      !kernel_layout(c, attrs[CV_KERNEL_LAYOUT], kl) ||
      !out_layout(c, attrs[CV_OUT_LAYOUT], attrs[CV_DATA_LAYOUT]) ||
      !parse_out_dtype(c, attrs[CV_OUT_DTYPE], x->h.dtype, &odt))
    return NULL;
  int64_t groups = attrs[CV_GROUPS]->i;
  const int64_t *s = attrs[CV_STRIDES]->ints, *p = attrs[CV_PADDING]->ints,
                *d = attrs[CV_DILATION]->ints;
  ir_expr *cin = x->shape[dl[1]], *h = x->shape[dl[2]], *wd = x->shape[dl[3]];
  ir_expr *cout = w->shape[kl[0]], *wi = w->shape[kl[1]], *kh = w->shape[kl[2]],
          *kw = w->shape[kl[3]];
  if (!check_groups(c, cin, cout, groups)) return NULL;
  ir_expr *want = relay_dim_binop(c, IR_MUL, wi, relay_dim(c, groups));
  if (!relay_dim_equal(c, cin, want)) {
    char b1[48], b2[48];
    return relay_type_error(c, "input channels %s do not match weight's %s * groups %lld",
                            relay_dim_str(cin, b1, sizeof b1), relay_dim_str(wi, b2, sizeof b2),
                            (long long)groups);
  }
  if (!check_conv_weight(c, attrs[CV_CHANNELS], attrs[CV_KERNEL_SIZE], cout, kh, kw)) return NULL;
  ir_expr *oh = window_out(c, h, p[0], p[2], kh, d[0], s[0], false);
  if (!check_window(c, oh, "height", h, p[0], p[2], kh, d[0], s[0])) return NULL;
  ir_expr *ow = window_out(c, wd, p[1], p[3], kw, d[1], s[1], false);
  if (!check_window(c, ow, "width", wd, p[1], p[3], kw, d[1], s[1])) return NULL;
  return layout_type(c, odt, dl, x->shape[dl[0]], cout, oh, ow);
}

static kiln_status eval_conv2d(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                               relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  kiln_status st = check_call(c, "nn.conv2d", infer_conv2d, nargs, args, attrs, nouts, outs);
  if (st) return st;
  int dl[4], kl[4];
  layout_perm(attrs[CV_DATA_LAYOUT]->s, "NCHW", dl);
  layout_perm(attrs[CV_KERNEL_LAYOUT]->s, "OIHW", kl);
  view4 x = view_of(&args[0], dl), w = view_of(&args[1], kl), y = view_of(&outs[0], dl);
  const int64_t *s = attrs[CV_STRIDES]->ints, *p = attrs[CV_PADDING]->ints,
                *d = attrs[CV_DILATION]->ints;
  int64_t cpg = w.dim[1], opg = y.dim[1] / attrs[CV_GROUPS]->i; /* channels per group */
  for (int64_t n = 0; n < y.dim[0]; n++)
    for (int64_t oc = 0; oc < y.dim[1]; oc++) {
      int64_t c0 = oc / opg * cpg; /* the group's first input channel */
      for (int64_t oy = 0; oy < y.dim[2]; oy++)
        for (int64_t ox = 0; ox < y.dim[3]; ox++) {
          double acc = 0;
          for (int64_t ky = 0; ky < w.dim[2]; ky++) {
            int64_t iy = oy * s[0] - p[0] + ky * d[0];
            if (iy < 0 || iy >= x.dim[2]) continue;
            for (int64_t kx = 0; kx < w.dim[3]; kx++) {
              int64_t ix = ox * s[1] - p[1] + kx * d[1];
              if (ix < 0 || ix >= x.dim[3]) continue;
              for (int64_t ic = 0; ic < cpg; ic++)
                acc += relay_tensor_get(&args[0], at4(&x, n, c0 + ic, iy, ix)) *
                       relay_tensor_get(&args[1], at4(&w, oc, ic, ky, kx));
            }
          }
          relay_tensor_set(&outs[0], at4(&y, n, oc, oy, ox), acc);
        }
    }
  return KILN_OK;
}

/* ==== nn.conv2d_transpose =============================================================== */

enum {
  CT_CHANNELS,
  CT_KERNEL_SIZE,
  CT_STRIDES,
  CT_PADDING,
  CT_OUTPUT_PADDING,
  CT_DILATION,
  CT_GROUPS,
  CT_DATA_LAYOUT,
  CT_KERNEL_LAYOUT,
  CT_OUT_LAYOUT,
  CT_OUT_DTYPE
};
static const relay_attr_def conv2d_transpose_attrs[] = {
    {"channels", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}},
    {"kernel_size", RELAY_ATTR_INTS, 0, 0, NULL, 0, {0}},
    {"strides", RELAY_ATTR_INTS, 0, 0, NULL, 2, {1, 1}},
    {"padding", RELAY_ATTR_INTS, 0, 0, NULL, 4, {0, 0, 0, 0}},
    {"output_padding", RELAY_ATTR_INTS, 0, 0, NULL, 2, {0, 0}},
    {"dilation", RELAY_ATTR_INTS, 0, 0, NULL, 2, {1, 1}},
    {"groups", RELAY_ATTR_INT, 1, 0, NULL, 0, {0}},
    {"data_layout", RELAY_ATTR_STR, 0, 0, "NCHW", 0, {0}},
    {"kernel_layout", RELAY_ATTR_STR, 0, 0, "IOHW", 0, {0}},
    {"out_layout", RELAY_ATTR_STR, 0, 0, "", 0, {0}},
    {"out_dtype", RELAY_ATTR_STR, 0, 0, "", 0, {0}},
};

/* conv2d_transpose(data [N, C, H, W], weight [C, O/groups, KH, KW] (IOHW)) -> [N, O, OH, OW],
 * OH = (H - 1) * stride - pad_top - pad_bottom + dil * (KH - 1) + output_padding + 1: the
 * gradient of conv2d with respect to its input. output_padding (added at the bottom/right)
 * must be smaller than the stride or the dilation. */
static relay_type *infer_conv2d_transpose(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                          relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = tensor_arg(c, args, 0, 4, "data");
  const relay_tensor_type *w = x ? tensor_arg(c, args, 1, 4, "weight") : NULL;
  int dl[4], kl[4];
  kiln_dtype odt;
  if (!w || !same_dtype(c, x, w, "data", "weight") ||
      !check_conv_attrs(c, attrs[CT_STRIDES], attrs[CT_PADDING], attrs[CT_DILATION],
                        attrs[CT_GROUPS], attrs[CT_CHANNELS], attrs[CT_KERNEL_SIZE]) ||
      !check_ints(c, attrs[CT_OUTPUT_PADDING], 2, 0) ||
      !data_layout(c, attrs[CT_DATA_LAYOUT], dl) ||
      !kernel_layout(c, attrs[CT_KERNEL_LAYOUT], kl) ||
      !out_layout(c, attrs[CT_OUT_LAYOUT], attrs[CT_DATA_LAYOUT]) ||
      !parse_out_dtype(c, attrs[CT_OUT_DTYPE], x->h.dtype, &odt))
    return NULL;
  int64_t groups = attrs[CT_GROUPS]->i;
  const int64_t *s = attrs[CT_STRIDES]->ints, *p = attrs[CT_PADDING]->ints,
                *d = attrs[CT_DILATION]->ints, *op = attrs[CT_OUTPUT_PADDING]->ints;
  for (int i = 0; i < 2; i++)
    if (op[i] >= s[i] && op[i] >= d[i])
      return relay_type_error(c,
                              "output_padding %lld must be smaller than the stride %lld or the "
                              "dilation %lld",
                              (long long)op[i], (long long)s[i], (long long)d[i]);
  ir_expr *cin = x->shape[dl[1]], *h = x->shape[dl[2]], *wd = x->shape[dl[3]];
  ir_expr *wi = w->shape[kl[1]], *kh = w->shape[kl[2]], *kw = w->shape[kl[3]];
  ir_expr *cout = relay_dim_binop(c, IR_MUL, w->shape[kl[0]], relay_dim(c, groups));
  if (!cout) return NULL;
  char b1[48], b2[48];
  if (!relay_dim_equal(c, cin, wi))
    return relay_type_error(c, "input channels %s do not match the weight's %s input channels",
                            relay_dim_str(cin, b1, sizeof b1), relay_dim_str(wi, b2, sizeof b2));
  if (!check_groups(c, cin, cout, groups) ||
      !check_conv_weight(c, attrs[CT_CHANNELS], attrs[CT_KERNEL_SIZE], cout, kh, kw))
    return NULL;
  ir_expr *out[2];
  ir_expr *in[2] = {h, wd}, *k[2] = {kh, kw};
  for (int i = 0; i < 2; i++) {
    /* (in - 1) * s + dil * (k - 1) + 1 + output_padding - pads */
    ir_expr *e = relay_dim_binop(c, IR_MUL, dim_add(c, in[i], -1), relay_dim(c, s[i]));
    ir_expr *span = relay_dim_binop(c, IR_MUL, relay_dim(c, d[i]), dim_add(c, k[i], -1));
    e = relay_dim_binop(c, IR_ADD, e, span);
    out[i] = dim_add(c, e, 1 + op[i] - p[i] - p[i + 2]);
    int64_t v;
    if (!out[i]) return NULL;
    if (relay_dim_const(out[i], &v) && v <= 0)
      return relay_type_error(c,
                              "output %s is %lld (not positive): padding %lld+%lld removes "
                              "more than the transposed convolution of input %s %s produces",
                              i ? "width" : "height", (long long)v, (long long)p[i],
                              (long long)p[i + 2], i ? "width" : "height",
                              relay_dim_str(in[i], b1, sizeof b1));
  }
  return layout_type(c, odt, dl, x->shape[dl[0]], cout, out[0], out[1]);
}

/* Gathers, for each output element, the input elements that a conv2d would have scattered to
 * it: oy = iy * stride - pad_top + ky * dil. */
static kiln_status eval_conv2d_transpose(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                         relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  kiln_status st = check_call(c, "nn.conv2d_transpose", infer_conv2d_transpose, nargs, args,
                              attrs, nouts, outs);
  if (st) return st;
  int dl[4], kl[4];
  layout_perm(attrs[CT_DATA_LAYOUT]->s, "NCHW", dl);
  layout_perm(attrs[CT_KERNEL_LAYOUT]->s, "OIHW", kl);
  view4 x = view_of(&args[0], dl), w = view_of(&args[1], kl), y = view_of(&outs[0], dl);
  const int64_t *s = attrs[CT_STRIDES]->ints, *p = attrs[CT_PADDING]->ints,
                *d = attrs[CT_DILATION]->ints;
  int64_t groups = attrs[CT_GROUPS]->i;
  int64_t ipg = x.dim[1] / groups, opg = w.dim[0]; /* channels per group */
  for (int64_t n = 0; n < y.dim[0]; n++)
    for (int64_t oc = 0; oc < y.dim[1]; oc++) {
      int64_t g = oc / opg, ocg = oc % opg;
      for (int64_t oy = 0; oy < y.dim[2]; oy++)
        for (int64_t ox = 0; ox < y.dim[3]; ox++) {
          double acc = 0;
          for (int64_t ky = 0; ky < w.dim[2]; ky++) {
            int64_t ty = oy + p[0] - ky * d[0]; /* = iy * stride */
            if (ty < 0 || ty % s[0] != 0 || ty / s[0] >= x.dim[2]) continue;
            for (int64_t kx = 0; kx < w.dim[3]; kx++) {
              int64_t tx = ox + p[1] - kx * d[1];
              if (tx < 0 || tx % s[1] != 0 || tx / s[1] >= x.dim[3]) continue;
              for (int64_t icg = 0; icg < ipg; icg++) {
                int64_t ic = g * ipg + icg;
                acc += relay_tensor_get(&args[0], at4(&x, n, ic, ty / s[0], tx / s[1])) *
                       relay_tensor_get(&args[1], at4(&w, ocg, ic, ky, kx));
              }
            }
          }
          relay_tensor_set(&outs[0], at4(&y, n, oc, oy, ox), acc);
        }
    }
  return KILN_OK;
}

/* ==== nn.bias_add ====================================================================== */

enum { BA_AXIS };
static const relay_attr_def bias_add_attrs[] = {
    {"axis", RELAY_ATTR_INT, 1, 0, NULL, 0, {0}},
};

/* Checks that a parameter is a 1-d tensor of length `len` and of the data's dtype. */
static bool check_param(relay_infer_ctx *c, relay_type *const *args, int i, const char *name,
                        const relay_tensor_type *x, ir_expr *len) {
  const relay_tensor_type *t = tensor_arg(c, args, i, 1, name);
  if (!t || !same_dtype(c, x, t, "data", name)) return false;
  if (relay_dim_equal(c, t->shape[0], len)) return true;
  char b1[48], b2[48];
  relay_type_error(c, "%s has length %s, the data's axis has %s", name,
                   relay_dim_str(t->shape[0], b1, sizeof b1), relay_dim_str(len, b2, sizeof b2));
  return false;
}

/* bias_add(data, bias [C]): adds bias along `axis` (C = data.shape[axis]). */
static relay_type *infer_bias_add(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                  relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = tensor_arg(c, args, 0, -1, "data");
  int axis;
  if (!x || !norm_axis(c, attrs[BA_AXIS]->i, x->ndim, &axis) ||
      !check_param(c, args, 1, "bias", x, x->shape[axis]))
    return NULL;
  return args[0];
}

static kiln_status eval_bias_add(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                 relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  kiln_status st = check_call(c, "nn.bias_add", infer_bias_add, nargs, args, attrs, nouts, outs);
  if (st) return st;
  int64_t outer, len, inner;
  split_axis(&args[0], axis_of(attrs[BA_AXIS]->i, args[0].ndim), &outer, &len, &inner);
  int64_t total = relay_tensor_numel(&args[0]);
  for (int64_t i = 0; i < total; i++)
    relay_tensor_set(&outs[0], i,
                     relay_tensor_get(&args[0], i) + relay_tensor_get(&args[1], i / inner % len));
  return KILN_OK;
}

/* ==== nn.batch_norm, nn.layer_norm ===================================================== */

enum { NM_AXIS, NM_EPSILON, NM_CENTER, NM_SCALE };
static const relay_attr_def batch_norm_attrs[] = {
    {"axis", RELAY_ATTR_INT, 1, 0, NULL, 0, {0}},
    {"epsilon", RELAY_ATTR_FLOAT, 0, 1e-5, NULL, 0, {0}},
    {"center", RELAY_ATTR_INT, 1, 0, NULL, 0, {0}},
    {"scale", RELAY_ATTR_INT, 1, 0, NULL, 0, {0}},
};
static const relay_attr_def layer_norm_attrs[] = {
    {"axis", RELAY_ATTR_INT, -1, 0, NULL, 0, {0}},
    {"epsilon", RELAY_ATTR_FLOAT, 0, 1e-5, NULL, 0, {0}},
    {"center", RELAY_ATTR_INT, 1, 0, NULL, 0, {0}},
    {"scale", RELAY_ATTR_INT, 1, 0, NULL, 0, {0}},
};

/* Normalization: float data, an axis, epsilon >= 0, and parameters (args 1..) of the axis'
 * length. The result has the data's type. */
static relay_type *norm_type(relay_infer_ctx *c, int nargs, relay_type *const *args,
                             relay_attr *const *attrs, const char *const *names) {
  const relay_tensor_type *x = tensor_arg(c, args, 0, -1, "data");
  int axis;
  if (!x || !float_data(c, x) || !norm_axis(c, attrs[NM_AXIS]->i, x->ndim, &axis)) return NULL;
  if (!(attrs[NM_EPSILON]->f >= 0))
    return relay_type_error(c, "epsilon must be >= 0, got %g", attrs[NM_EPSILON]->f);
  for (int i = 1; i < nargs; i++)
    if (!check_param(c, args, i, names[i - 1], x, x->shape[axis])) return NULL;
  return args[0];
}

/* batch_norm(data, gamma, beta, moving_mean, moving_var) at INFERENCE:
 * (x - mean) / sqrt(var + epsilon) * gamma + beta along `axis`. Unlike TVM's 3-tuple (which
 * also returns the updated moving statistics for training) the result is one tensor. */
static relay_type *infer_batch_norm(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                    relay_attr *const *attrs) {
  static const char *const names[] = {"gamma", "beta", "moving_mean", "moving_var"};
  return norm_type(c, nargs, args, attrs, names);
}

static kiln_status eval_batch_norm(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                   relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  kiln_status st =
      check_call(c, "nn.batch_norm", infer_batch_norm, nargs, args, attrs, nouts, outs);
  if (st) return st;
  int64_t outer, len, inner;
  split_axis(&args[0], axis_of(attrs[NM_AXIS]->i, args[0].ndim), &outer, &len, &inner);
  bool center = attrs[NM_CENTER]->i != 0, scale = attrs[NM_SCALE]->i != 0;
  double eps = attrs[NM_EPSILON]->f;
  int64_t total = relay_tensor_numel(&args[0]);
  for (int64_t i = 0; i < total; i++) {
    int64_t ch = i / inner % len;
    double v = (relay_tensor_get(&args[0], i) - relay_tensor_get(&args[3], ch)) /
               sqrt(relay_tensor_get(&args[4], ch) + eps);
    if (scale) v *= relay_tensor_get(&args[1], ch);
    if (center) v += relay_tensor_get(&args[2], ch);
    relay_tensor_set(&outs[0], i, v);
  }
  return KILN_OK;
}

/* layer_norm(data, gamma, beta): normalizes each slice along `axis` to mean 0 and variance 1
 * (the biased variance), then scales by gamma and shifts by beta. */
static relay_type *infer_layer_norm(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                    relay_attr *const *attrs) {
  static const char *const names[] = {"gamma", "beta"};
  return norm_type(c, nargs, args, attrs, names);
}

static kiln_status eval_layer_norm(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                   relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  kiln_status st =
      check_call(c, "nn.layer_norm", infer_layer_norm, nargs, args, attrs, nouts, outs);
  if (st) return st;
  int64_t outer, len, inner;
  split_axis(&args[0], axis_of(attrs[NM_AXIS]->i, args[0].ndim), &outer, &len, &inner);
  bool center = attrs[NM_CENTER]->i != 0, scale = attrs[NM_SCALE]->i != 0;
  double eps = attrs[NM_EPSILON]->f;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      int64_t base = o * len * inner + in;
      double mean = 0, var = 0;
      for (int64_t k = 0; k < len; k++) mean += relay_tensor_get(&args[0], base + k * inner);
      mean /= (double)len;
      for (int64_t k = 0; k < len; k++) {
        double dv = relay_tensor_get(&args[0], base + k * inner) - mean;
        var += dv * dv;
      }
      var /= (double)len;
      double rstd = 1 / sqrt(var + eps);
      for (int64_t k = 0; k < len; k++) {
        double v = (relay_tensor_get(&args[0], base + k * inner) - mean) * rstd;
        if (scale) v *= relay_tensor_get(&args[1], k);
        if (center) v += relay_tensor_get(&args[2], k);
        relay_tensor_set(&outs[0], base + k * inner, v);
      }
    }
  return KILN_OK;
}

/* ==== nn.softmax, nn.log_softmax ========================================================== */

enum { SM_AXIS };
static const relay_attr_def softmax_attrs[] = {
    {"axis", RELAY_ATTR_INT, -1, 0, NULL, 0, {0}},
};

static relay_type *infer_softmax(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                 relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = tensor_arg(c, args, 0, -1, "data");
  int axis;
  if (!x || !float_data(c, x) || !norm_axis(c, attrs[SM_AXIS]->i, x->ndim, &axis)) return NULL;
  return args[0];
}

/* Numerically stable: subtracts each slice's maximum before exponentiating. */
static kiln_status softmax_kernel(relay_eval_ctx *c, const char *op, bool log_out, int nargs,
                                  const relay_tensor *args, relay_attr *const *attrs, int nouts,
                                  relay_tensor *outs) {
  kiln_status st = check_call(c, op, infer_softmax, nargs, args, attrs, nouts, outs);
  if (st) return st;
  int64_t outer, len, inner;
  split_axis(&args[0], axis_of(attrs[SM_AXIS]->i, args[0].ndim), &outer, &len, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      int64_t base = o * len * inner + in;
      double mx = -INFINITY, sum = 0;
      for (int64_t k = 0; k < len; k++) {
        double v = relay_tensor_get(&args[0], base + k * inner);
        if (v > mx || v != v) mx = v;
      }
      for (int64_t k = 0; k < len; k++)
        sum += exp(relay_tensor_get(&args[0], base + k * inner) - mx);
      for (int64_t k = 0; k < len; k++) {
        double v = relay_tensor_get(&args[0], base + k * inner) - mx;
        relay_tensor_set(&outs[0], base + k * inner, log_out ? v - log(sum) : exp(v) / sum);
      }
    }
  return KILN_OK;
}

static kiln_status eval_softmax(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  return softmax_kernel(c, "nn.softmax", false, nargs, args, attrs, nouts, outs);
}

static kiln_status eval_log_softmax(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                    relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  return softmax_kernel(c, "nn.log_softmax", true, nargs, args, attrs, nouts, outs);
}

/* ==== nn.max_pool2d, nn.avg_pool2d ======================================================= */

enum {
  PL_POOL_SIZE,
  PL_STRIDES,
  PL_DILATION,
  PL_PADDING,
  PL_LAYOUT,
  PL_OUT_LAYOUT,
  PL_CEIL_MODE,
  PL_COUNT_INCLUDE_PAD /* avg_pool2d only */
};
#define POOL_ATTRS                                                     \
  {"pool_size", RELAY_ATTR_INTS, 0, 0, NULL, 2, {1, 1}},               \
      {"strides", RELAY_ATTR_INTS, 0, 0, NULL, 2, {1, 1}},             \
      {"dilation", RELAY_ATTR_INTS, 0, 0, NULL, 2, {1, 1}},            \
      {"padding", RELAY_ATTR_INTS, 0, 0, NULL, 4, {0, 0, 0, 0}},       \
      {"layout", RELAY_ATTR_STR, 0, 0, "NCHW", 0, {0}},                \
      {"out_layout", RELAY_ATTR_STR, 0, 0, "", 0, {0}},                \
      {"ceil_mode", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}}
static const relay_attr_def max_pool2d_attrs[] = {POOL_ATTRS};
static const relay_attr_def avg_pool2d_attrs[] = {
    POOL_ATTRS, {"count_include_pad", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}}};

/* pool2d(data [N, C, H, W]) -> [N, C, OH, OW] with the window arithmetic of conv2d (and
 * ceil_mode as in PyTorch, see window_out). */
static relay_type *infer_pool2d(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = tensor_arg(c, args, 0, 4, "data");
  int dl[4];
  if (!x || !check_ints(c, attrs[PL_POOL_SIZE], 2, 1) || !check_ints(c, attrs[PL_STRIDES], 2, 1) ||
      !check_ints(c, attrs[PL_DILATION], 2, 1) || !check_ints(c, attrs[PL_PADDING], 4, 0) ||
      !data_layout(c, attrs[PL_LAYOUT], dl) ||
      !out_layout(c, attrs[PL_OUT_LAYOUT], attrs[PL_LAYOUT]))
    return NULL;
  const int64_t *k = attrs[PL_POOL_SIZE]->ints, *s = attrs[PL_STRIDES]->ints,
                *d = attrs[PL_DILATION]->ints, *p = attrs[PL_PADDING]->ints;
  bool ceil_mode = attrs[PL_CEIL_MODE]->i != 0;
  ir_expr *h = x->shape[dl[2]], *w = x->shape[dl[3]];
  ir_expr *kh = relay_dim(c, k[0]), *kw = relay_dim(c, k[1]);
  ir_expr *oh = window_out(c, h, p[0], p[2], kh, d[0], s[0], ceil_mode);
  if (!check_window(c, oh, "height", h, p[0], p[2], kh, d[0], s[0])) return NULL;
  ir_expr *ow = window_out(c, w, p[1], p[3], kw, d[1], s[1], ceil_mode);
  if (!check_window(c, ow, "width", w, p[1], p[3], kw, d[1], s[1])) return NULL;
  return layout_type(c, x->h.dtype, dl, x->shape[dl[0]], x->shape[dl[1]], oh, ow);
}

/* Max: the largest input element under the window (NaN propagates); a window over padding
 * only gives the dtype's lowest value. Average: the sum over the input elements under the
 * window divided by their number, or with count_include_pad by the number of window taps
 * inside the padded input (taps of a ceil-mode window past the padding never count); integer
 * averages round toward zero. */
static kiln_status pool2d_kernel(relay_eval_ctx *c, const char *op, bool is_max, int nargs,
                                 const relay_tensor *args, relay_attr *const *attrs, int nouts,
                                 relay_tensor *outs) {
  kiln_status st = check_call(c, op, infer_pool2d, nargs, args, attrs, nouts, outs);
  if (st) return st;
  int dl[4];
  layout_perm(attrs[PL_LAYOUT]->s, "NCHW", dl);
  view4 x = view_of(&args[0], dl), y = view_of(&outs[0], dl);
  const int64_t *k = attrs[PL_POOL_SIZE]->ints, *s = attrs[PL_STRIDES]->ints,
                *d = attrs[PL_DILATION]->ints, *p = attrs[PL_PADDING]->ints;
  bool include_pad = !is_max && attrs[PL_COUNT_INCLUDE_PAD]->i != 0;
  double lowest = dtype_lowest(args[0].dtype);
  for (int64_t n = 0; n < y.dim[0]; n++)
    for (int64_t ch = 0; ch < y.dim[1]; ch++)
      for (int64_t oy = 0; oy < y.dim[2]; oy++)
        for (int64_t ox = 0; ox < y.dim[3]; ox++) {
          double acc = is_max ? lowest : 0;
          int64_t count = 0, taps = 0;
          for (int64_t ky = 0; ky < k[0]; ky++) {
            int64_t iy = oy * s[0] - p[0] + ky * d[0];
            if (iy >= x.dim[2] + p[2]) break; /* past the padding (ceil mode) */
            for (int64_t kx = 0; kx < k[1]; kx++) {
              int64_t ix = ox * s[1] - p[1] + kx * d[1];
              if (ix >= x.dim[3] + p[3]) break;
              taps++;
              if (iy < 0 || iy >= x.dim[2] || ix < 0 || ix >= x.dim[3]) continue;
              double v = relay_tensor_get(&args[0], at4(&x, n, ch, iy, ix));
              count++;
              if (!is_max) acc += v;
              else if (v > acc || v != v) acc = v;
            }
          }
          int64_t div = include_pad ? taps : count;
          double r = is_max ? acc : div ? acc / (double)div : 0;
          relay_tensor_set(&outs[0], at4(&y, n, ch, oy, ox), r);
        }
  return KILN_OK;
}

static kiln_status eval_max_pool2d(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                   relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  return pool2d_kernel(c, "nn.max_pool2d", true, nargs, args, attrs, nouts, outs);
}

static kiln_status eval_avg_pool2d(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                   relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  return pool2d_kernel(c, "nn.avg_pool2d", false, nargs, args, attrs, nouts, outs);
}

/* ==== Global and adaptive pooling ========================================================= */

enum { GP_LAYOUT, GP_OUT_LAYOUT };
static const relay_attr_def global_pool_attrs[] = {
    {"layout", RELAY_ATTR_STR, 0, 0, "NCHW", 0, {0}},
    {"out_layout", RELAY_ATTR_STR, 0, 0, "", 0, {0}},
};

enum { AP_OUTPUT_SIZE, AP_LAYOUT, AP_OUT_LAYOUT };
static const relay_attr_def adaptive_pool_attrs[] = {
    {"output_size", RELAY_ATTR_INTS, 0, 0, NULL, 2, {1, 1}},
    {"layout", RELAY_ATTR_STR, 0, 0, "NCHW", 0, {0}},
    {"out_layout", RELAY_ATTR_STR, 0, 0, "", 0, {0}},
};

/* global pooling: [N, C, H, W] -> [N, C, 1, 1]. */
static relay_type *infer_global_pool(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                     relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = tensor_arg(c, args, 0, 4, "data");
  int dl[4];
  if (!x || !data_layout(c, attrs[GP_LAYOUT], dl) ||
      !out_layout(c, attrs[GP_OUT_LAYOUT], attrs[GP_LAYOUT]))
    return NULL;
  return layout_type(c, x->h.dtype, dl, x->shape[dl[0]], x->shape[dl[1]], relay_dim(c, 1),
                     relay_dim(c, 1));
}

/* adaptive pooling: [N, C, H, W] -> [N, C, OH, OW] (output_size); output row i pools input
 * rows [floor(i * H / OH), ceil((i + 1) * H / OH)), as PyTorch does. */
static relay_type *infer_adaptive_pool(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                       relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = tensor_arg(c, args, 0, 4, "data");
  int dl[4];
  if (!x || !check_ints(c, attrs[AP_OUTPUT_SIZE], 2, 1) || !data_layout(c, attrs[AP_LAYOUT], dl) ||
      !out_layout(c, attrs[AP_OUT_LAYOUT], attrs[AP_LAYOUT]))
    return NULL;
  const int64_t *os = attrs[AP_OUTPUT_SIZE]->ints;
  return layout_type(c, x->h.dtype, dl, x->shape[dl[0]], x->shape[dl[1]], relay_dim(c, os[0]),
                     relay_dim(c, os[1]));
}

/* Pools every output element over the input rectangle the adaptive formula gives; global
 * pooling is the case of a 1 x 1 output. Averages divide by the rectangle's size; an empty
 * input gives 0 (average) or the dtype's lowest value (max). */
static kiln_status adaptive_kernel(relay_eval_ctx *c, const char *op, relay_infer_fn infer,
                                   int layout_attr, bool is_max, int nargs,
                                   const relay_tensor *args, relay_attr *const *attrs, int nouts,
                                   relay_tensor *outs) {
  kiln_status st = check_call(c, op, infer, nargs, args, attrs, nouts, outs);
  if (st) return st;
  int dl[4];
  layout_perm(attrs[layout_attr]->s, "NCHW", dl);
  view4 x = view_of(&args[0], dl), y = view_of(&outs[0], dl);
  int64_t ih = x.dim[2], iw = x.dim[3], oh = y.dim[2], ow = y.dim[3];
  double lowest = dtype_lowest(args[0].dtype);
  for (int64_t n = 0; n < y.dim[0]; n++)
    for (int64_t ch = 0; ch < y.dim[1]; ch++)
      for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
          int64_t y0 = oy * ih / oh, y1 = ((oy + 1) * ih + oh - 1) / oh;
          int64_t x0 = ox * iw / ow, x1 = ((ox + 1) * iw + ow - 1) / ow;
          double acc = is_max ? lowest : 0;
          for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) {
              double v = relay_tensor_get(&args[0], at4(&x, n, ch, iy, ix));
              if (!is_max) acc += v;
              else if (v > acc || v != v) acc = v;
            }
          int64_t cnt = (y1 - y0) * (x1 - x0);
          if (!is_max) acc = cnt ? acc / (double)cnt : 0;
          relay_tensor_set(&outs[0], at4(&y, n, ch, oy, ox), acc);
        }
  return KILN_OK;
}

static kiln_status eval_global_avg_pool2d(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                          relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  return adaptive_kernel(c, "nn.global_avg_pool2d", infer_global_pool, GP_LAYOUT, false, nargs,
                         args, attrs, nouts, outs);
}

static kiln_status eval_global_max_pool2d(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                          relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  return adaptive_kernel(c, "nn.global_max_pool2d", infer_global_pool, GP_LAYOUT, true, nargs,
                         args, attrs, nouts, outs);
}

static kiln_status eval_adaptive_avg_pool2d(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                            relay_attr *const *attrs, int nouts,
                                            relay_tensor *outs) {
  return adaptive_kernel(c, "nn.adaptive_avg_pool2d", infer_adaptive_pool, AP_LAYOUT, false,
                         nargs, args, attrs, nouts, outs);
}

static kiln_status eval_adaptive_max_pool2d(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                            relay_attr *const *attrs, int nouts,
                                            relay_tensor *outs) {
  return adaptive_kernel(c, "nn.adaptive_max_pool2d", infer_adaptive_pool, AP_LAYOUT, true,
                         nargs, args, attrs, nouts, outs);
}

/* ==== nn.pad ============================================================================= */

enum { PD_PAD_WIDTH, PD_PAD_VALUE, PD_PAD_MODE };
static const relay_attr_def pad_attrs[] = {
    {"pad_width", RELAY_ATTR_INTS, 0, 0, NULL, 0, {0}}, /* (before, after) per axis, flat */
    {"pad_value", RELAY_ATTR_FLOAT, 0, 0, NULL, 0, {0}},
    {"pad_mode", RELAY_ATTR_STR, 0, 0, "constant", 0, {0}},
};

enum { PAD_CONSTANT, PAD_EDGE, PAD_REFLECT };

static int pad_mode_of(const char *s) {
  return strcmp(s, "constant") == 0 ? PAD_CONSTANT
         : strcmp(s, "edge") == 0   ? PAD_EDGE
         : strcmp(s, "reflect") == 0 ? PAD_REFLECT
                                     : -1;
}

/* pad(data) widens each axis d by pad_width[2d] before and pad_width[2d+1] after. "constant"
 * fills with pad_value, "edge" repeats the border element, "reflect" mirrors the elements
 * next to the border (numpy's reflect: the border itself is not repeated, so a pad must be
 * smaller than the axis). */
static relay_type *infer_pad(relay_infer_ctx *c, int nargs, relay_type *const *args,
                             relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = tensor_arg(c, args, 0, -1, "data");
  if (!x) return NULL;
  const relay_attr *pw = attrs[PD_PAD_WIDTH];
  int mode = pad_mode_of(attrs[PD_PAD_MODE]->s);
  if (mode < 0)
    return relay_type_error(c, "pad_mode '%s' is not constant, edge or reflect",
                            attrs[PD_PAD_MODE]->s);
  if (pw->nints != 2 * x->ndim) {
    char sx[160];
    return relay_type_error(c,
                            "pad_width has %d values, a tensor of shape %s needs %d (before, "
                            "after per axis)",
                            (int)pw->nints, relay_shape_str(x, sx, sizeof sx), 2 * (int)x->ndim);
  }
  if (!check_ints(c, pw, pw->nints, 0)) return NULL;
  ir_expr *dims[RELAY_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) {
    int64_t before = pw->ints[2 * i], after = pw->ints[2 * i + 1], v;
    int64_t widest = before > after ? before : after;
    bool known = relay_dim_const(x->shape[i], &v);
    if (mode == PAD_REFLECT && widest > 0 && (!known || widest >= v)) {
      char b[48];
      return relay_type_error(c,
                              "reflect padding %lld on axis %d needs a dimension larger than it, "
                              "not %s",
                              (long long)widest, i, relay_dim_str(x->shape[i], b, sizeof b));
    }
    if (mode == PAD_EDGE && widest > 0 && (!known || v == 0)) {
      char b[48];
      return relay_type_error(c, "edge padding of axis %d needs a non-empty dimension, not %s", i,
                              relay_dim_str(x->shape[i], b, sizeof b));
    }
    if (!(dims[i] = dim_add(c, x->shape[i], before + after))) return NULL;
  }
  return relay_tensor_type_new(c->arena, x->h.dtype, x->ndim, dims);
}

static kiln_status eval_pad(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                            relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  kiln_status st = check_call(c, "nn.pad", infer_pad, nargs, args, attrs, nouts, outs);
  if (st) return st;
  const relay_tensor *x = &args[0];
  const int64_t *pw = attrs[PD_PAD_WIDTH]->ints;
  int mode = pad_mode_of(attrs[PD_PAD_MODE]->s);
  int64_t total = relay_tensor_numel(&outs[0]);
  for (int64_t o = 0; o < total; o++) {
    int64_t rem = o, idx = 0, stride = 1;
    bool inside = true;
    for (int d = x->ndim - 1; d >= 0; d--) {
      int64_t n = x->shape[d], ci = rem % outs[0].shape[d] - pw[2 * d];
      rem /= outs[0].shape[d];
      if (ci < 0 || ci >= n) {
        if (mode == PAD_CONSTANT) inside = false;
        else if (mode == PAD_EDGE) ci = ci < 0 ? 0 : n - 1;
        else ci = ci < 0 ? -ci : 2 * (n - 1) - ci;
      }
      idx += ci * stride;
      stride *= n;
    }
    relay_tensor_set(&outs[0], o, inside ? relay_tensor_get(x, idx) : attrs[PD_PAD_VALUE]->f);
  }
  return KILN_OK;
}

/* ==== image.resize2d ===================================================================== */

enum {
  RS_SIZE,
  RS_LAYOUT,
  RS_METHOD,
  RS_COORD_MODE,
  RS_ROUNDING,
  RS_CUBIC_ALPHA,
  RS_CUBIC_EXCLUDE,
  RS_OUT_DTYPE
};
static const relay_attr_def resize2d_attrs[] = {
    {"size", RELAY_ATTR_INTS, 0, 0, NULL, 0, {0}}, /* [OH, OW], required */
    {"layout", RELAY_ATTR_STR, 0, 0, "NCHW", 0, {0}},
    {"method", RELAY_ATTR_STR, 0, 0, "linear", 0, {0}},
    {"coordinate_transformation_mode", RELAY_ATTR_STR, 0, 0, "half_pixel", 0, {0}},
    {"rounding_method", RELAY_ATTR_STR, 0, 0, "", 0, {0}},
    {"cubic_alpha", RELAY_ATTR_FLOAT, 0, -0.5, NULL, 0, {0}},
    {"cubic_exclude", RELAY_ATTR_INT, 0, 0, NULL, 0, {0}},
    {"out_dtype", RELAY_ATTR_STR, 0, 0, "", 0, {0}},
};

static const char *const resize_methods[] = {"nearest_neighbor", "linear", "cubic", NULL};
static const char *const coord_modes[] = {"half_pixel", "align_corners", "asymmetric",
                                          "pytorch_half_pixel", "tf_half_pixel_for_nn", NULL};
static const char *const rounding_methods[] = {"",     "round", "floor", "ceil",
                                               "round_prefer_floor", "round_prefer_ceil", NULL};
enum { RM_NEAREST, RM_LINEAR, RM_CUBIC };
enum { CM_HALF_PIXEL, CM_ALIGN_CORNERS, CM_ASYMMETRIC, CM_PYTORCH_HALF_PIXEL, CM_TF_HALF_PIXEL_NN };
enum { RD_DEFAULT, RD_ROUND, RD_FLOOR, RD_CEIL, RD_PREFER_FLOOR, RD_PREFER_CEIL };

static int find_name(const char *const *names, const char *s) {
  for (int i = 0; names[i]; i++)
    if (strcmp(names[i], s) == 0) return i;
  return -1;
}

/* A string attribute that must be one of `names`; writes the choices into the message. */
static bool check_choice(relay_infer_ctx *c, const relay_attr *a, const char *const *names) {
  if (find_name(names, a->s) >= 0) return true;
  char list[256];
  size_t used = 0;
  list[0] = 0;
  for (int i = 0; names[i] && used < sizeof list; i++)
    if (names[i][0])
      used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", names[i]);
  relay_type_error(c, "%s '%s' is not one of %s", a->key, a->s, list);
  return false;
}

/* resize2d(data [N, C, H, W]) -> [N, C, OH, OW] (size). */
static relay_type *infer_resize2d(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                  relay_attr *const *attrs) {
  (void)nargs;
  const relay_tensor_type *x = tensor_arg(c, args, 0, 4, "data");
  int dl[4];
  kiln_dtype odt;
  if (!x || !check_ints(c, attrs[RS_SIZE], 2, 1) || !data_layout(c, attrs[RS_LAYOUT], dl) ||
      !check_choice(c, attrs[RS_METHOD], resize_methods) ||
      !check_choice(c, attrs[RS_COORD_MODE], coord_modes) ||
      !check_choice(c, attrs[RS_ROUNDING], rounding_methods) ||
      !parse_out_dtype(c, attrs[RS_OUT_DTYPE], x->h.dtype, &odt))
    return NULL;
  for (int k = 2; k < 4; k++)
    if (relay_dim_is(c, x->shape[dl[k]], 0)) {
      char sx[160];
      return relay_type_error(c, "cannot resize data of shape %s: its %s is 0",
                              relay_shape_str(x, sx, sizeof sx), k == 2 ? "height" : "width");
    }
  const int64_t *size = attrs[RS_SIZE]->ints;
  return layout_type(c, odt, dl, x->shape[dl[0]], x->shape[dl[1]], relay_dim(c, size[0]),
                     relay_dim(c, size[1]));
}

/* The input coordinate that output index o maps to (in -> out elements along an axis). */
static double resize_coord(int mode, int64_t o, int64_t in, int64_t out) {
  double od = (double)o, id = (double)in, outd = (double)out;
  switch (mode) {
  case CM_HALF_PIXEL: return (od + 0.5) * id / outd - 0.5;
  case CM_PYTORCH_HALF_PIXEL: return out > 1 ? (od + 0.5) * id / outd - 0.5 : 0;
  case CM_ALIGN_CORNERS: return out > 1 ? od * (id - 1) / (outd - 1) : 0;
  case CM_ASYMMETRIC: return od * id / outd;
  case CM_TF_HALF_PIXEL_NN: return (od + 0.5) * id / outd;
  }
  return 0;
}

/* The nearest input index for a coordinate ("round" is half to even, like TVM's round). */
static int64_t nearest_index(int rounding, double x) {
  double r = x;
  switch (rounding) {
  case RD_ROUND: r = nearbyint(x); break;
  case RD_FLOOR: r = floor(x); break;
  case RD_CEIL: r = ceil(x); break;
  case RD_PREFER_FLOOR: r = ceil(x - 0.5); break;
  case RD_PREFER_CEIL: r = floor(x + 0.5); break;
  }
  return (int64_t)r;
}

static int64_t clamp_index(int64_t i, int64_t n) { return i < 0 ? 0 : i >= n ? n - 1 : i; }

/* The taps and weights along one axis for output index o: nearest (1 tap), linear (2) or
 * cubic (4, Keys' kernel with parameter alpha; with `exclude` the taps outside the input get
 * weight 0 and the rest are renormalized). Tap indices are clamped into the input. */
static int resize_taps(int method, int mode, int rounding, double alpha, bool exclude, int64_t o,
                       int64_t in, int64_t out, int64_t *idx, double *wt) {
  double x = resize_coord(mode, o, in, out);
  if (method == RM_NEAREST) {
    idx[0] = clamp_index(nearest_index(rounding, x), in);
    wt[0] = 1;
    return 1;
  }
  double x0 = floor(x), f = x - x0;
  int64_t i0 = (int64_t)x0;
  if (method == RM_LINEAR) {
    idx[0] = clamp_index(i0, in);
    idx[1] = clamp_index(i0 + 1, in);
    wt[0] = 1 - f;
    wt[1] = f;
    return 2;
  }
  double a = alpha, sum = 0;
  for (int t = 0; t < 4; t++) {
    double dist = fabs(f - (double)(t - 1)); /* distance from tap i0 - 1 + t */
    double w = dist <= 1   ? ((a + 2) * dist - (a + 3)) * dist * dist + 1
               : dist < 2 ? ((a * dist - 5 * a) * dist + 8 * a) * dist - 4 * a
                          : 0;
    int64_t i = i0 - 1 + t;
    if (exclude && (i < 0 || i >= in)) w = 0;
    idx[t] = clamp_index(i, in);
    wt[t] = w;
    sum += w;
  }
  if (exclude && sum != 0)
    for (int t = 0; t < 4; t++) wt[t] /= sum;
  return 4;
}

static kiln_status eval_resize2d(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                 relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  kiln_status st = check_call(c, "image.resize2d", infer_resize2d, nargs, args, attrs, nouts, outs);
  if (st) return st;
  int dl[4];
  layout_perm(attrs[RS_LAYOUT]->s, "NCHW", dl);
  view4 x = view_of(&args[0], dl), y = view_of(&outs[0], dl);
  int method = find_name(resize_methods, attrs[RS_METHOD]->s);
  int mode = find_name(coord_modes, attrs[RS_COORD_MODE]->s);
  int rounding = find_name(rounding_methods, attrs[RS_ROUNDING]->s);
  if (rounding == RD_DEFAULT) rounding = mode == CM_ALIGN_CORNERS ? RD_ROUND : RD_FLOOR;
  double alpha = attrs[RS_CUBIC_ALPHA]->f;
  bool exclude = attrs[RS_CUBIC_EXCLUDE]->i != 0;
  for (int64_t oy = 0; oy < y.dim[2]; oy++) {
    int64_t iy[4];
    double wy[4];
    int ny = resize_taps(method, mode, rounding, alpha, exclude, oy, x.dim[2], y.dim[2], iy, wy);
    for (int64_t ox = 0; ox < y.dim[3]; ox++) {
      int64_t ix[4];
      double wx[4];
      int nx = resize_taps(method, mode, rounding, alpha, exclude, ox, x.dim[3], y.dim[3], ix, wx);
      for (int64_t n = 0; n < y.dim[0]; n++)
        for (int64_t ch = 0; ch < y.dim[1]; ch++) {
          double acc = 0;
          for (int j = 0; j < ny; j++) {
            double row = 0;
            for (int i = 0; i < nx; i++)
              row += wx[i] * relay_tensor_get(&args[0], at4(&x, n, ch, iy[j], ix[i]));
            acc += wy[j] * row;
          }
          relay_tensor_set(&outs[0], at4(&y, n, ch, oy, ox), acc);
        }
    }
  }
  return KILN_OK;
}

/* ==== nn.dropout ========================================================================= */

enum { DO_RATE };
static const relay_attr_def dropout_attrs[] = {
    {"rate", RELAY_ATTR_FLOAT, 0, 0.5, NULL, 0, {0}},
};

/* dropout at inference is the identity (one tensor, not TVM's (output, mask) pair). */
static relay_type *infer_dropout(relay_infer_ctx *c, int nargs, relay_type *const *args,
                                 relay_attr *const *attrs) {
  (void)nargs;
  if (!tensor_arg(c, args, 0, -1, "data")) return NULL;
  double rate = attrs[DO_RATE]->f;
  if (!(rate >= 0 && rate < 1)) return relay_type_error(c, "rate must be in [0, 1), got %g", rate);
  return args[0];
}

static kiln_status eval_dropout(relay_eval_ctx *c, int nargs, const relay_tensor *args,
                                relay_attr *const *attrs, int nouts, relay_tensor *outs) {
  kiln_status st = check_call(c, "nn.dropout", infer_dropout, nargs, args, attrs, nouts, outs);
  if (st) return st;
  int64_t total = relay_tensor_numel(&outs[0]);
  for (int64_t i = 0; i < total; i++) relay_tensor_set(&outs[0], i, relay_tensor_get(&args[0], i));
  return KILN_OK;
}

/* ==== Compute definitions (Relay -> TIR blocks, relay/lower.h) ============================ */

/* Each lower_* function emits the TIR stages of one op through relay_lower_compute; the
 * blocks mirror the reference kernels above (same windows, padding rules, layouts, integer
 * rounding). Index arithmetic is int64 over the buffers' shapes, which are constants or
 * symbolic dims. Multiply-accumulate ops (dense, matmul, batch_matmul, conv2d and
 * conv2d_transpose) keep their main block a plain `out = out + a * b` reduction and move
 * padding into a separate "<op>_pad" stage, so the default schedule rules can tile them and
 * inline or compute_at the padding. */

/* ---- Index and value expressions ---- */

static ir_expr *k64(relay_lower_ctx *c, int64_t v) { return relay_lower_i64(c, v); }
static ir_expr *var_e(ir_var *v) { return (ir_expr *)v; }

static bool int_const(const ir_expr *e, int64_t *v) {
  const ir_int_imm *k = ir_as_int(e);
  if (k) *v = k->value;
  return k != NULL;
}

/* x OP y on int64 indices, folding constants and the identities 0 and 1 so that lowered
 * indices stay readable (no `oy * 1 + ky * 1 - 0`). NULL operands give NULL. */
static ir_expr *ix_bin(relay_lower_ctx *c, int kind, ir_expr *x, ir_expr *y) {
  int64_t a = 0, b = 0;
  if (!x || !y) return NULL;
  bool ka = int_const(x, &a), kb = int_const(y, &b);
  switch (kind) {
  case IR_ADD:
    if (ka && kb) return k64(c, a + b);
    if (ka && a == 0) return y;
    if (kb && b == 0) return x;
    if (kb && b < 0 && b != INT64_MIN) return ir_sub(c->arena, x, k64(c, -b)); /* x - 1 */
    break;
  case IR_SUB:
    if (ka && kb) return k64(c, a - b);
    if (kb && b == 0) return x;
    break;
  case IR_MUL:
    if (ka && kb) return k64(c, a * b);
    if ((ka && a == 0) || (kb && b == 1)) return x;
    if ((kb && b == 0) || (ka && a == 1)) return y;
    break;
  case IR_FLOORDIV:
    if (kb && b == 1) return x;
    break;
  case IR_MIN:
    if (ka && kb) return k64(c, a < b ? a : b);
    break;
  case IR_MAX:
    if (ka && kb) return k64(c, a > b ? a : b);
    break;
  }
  return ir_binop(c->arena, kind, x, y);
}

static ir_expr *ix_add(relay_lower_ctx *c, ir_expr *x, ir_expr *y) {
  return ix_bin(c, IR_ADD, x, y);
}
static ir_expr *ix_sub(relay_lower_ctx *c, ir_expr *x, ir_expr *y) {
  return ix_bin(c, IR_SUB, x, y);
}
static ir_expr *ix_mul(relay_lower_ctx *c, ir_expr *x, ir_expr *y) {
  return ix_bin(c, IR_MUL, x, y);
}
static ir_expr *ix_addk(relay_lower_ctx *c, ir_expr *x, int64_t k) {
  return ix_add(c, x, k64(c, k));
}
static ir_expr *ix_mulk(relay_lower_ctx *c, ir_expr *x, int64_t k) {
  return ix_mul(c, x, k64(c, k));
}
/* ceil(x / d) for d > 0, also for negative x. */
static ir_expr *ix_ceildiv(relay_lower_ctx *c, ir_expr *x, int64_t d) {
  return ix_bin(c, IR_FLOORDIV, ix_addk(c, x, d - 1), k64(c, d));
}
/* min(max(i, 0), n - 1): an index clamped into an axis of extent n. */
static ir_expr *ix_clamp(relay_lower_ctx *c, ir_expr *i, ir_expr *n) {
  return ix_bin(c, IR_MIN, ix_bin(c, IR_MAX, i, k64(c, 0)), ix_addk(c, n, -1));
}
/* A shape expression, simplified (for the extents of intermediate buffers). */
static ir_expr *simplified(relay_lower_ctx *c, ir_expr *e) {
  return e ? ir_simplify_expr(c->an, e) : NULL;
}

/* a && b where a may be NULL (no condition yet). */
static ir_expr *cond_and(relay_lower_ctx *c, ir_expr *a, ir_expr *b) {
  return a ? ir_binop(c->arena, IR_AND, a, b) : b;
}

static ir_expr *cast_to(relay_lower_ctx *c, kiln_dtype t, ir_expr *x) {
  if (!x) return NULL;
  return ir_dt_eq(x->dtype, t) ? x : ir_cast_new(c->arena, t, x);
}

static ir_expr *fconst(relay_lower_ctx *c, kiln_dtype t, double v) {
  return relay_lower_const(c, t, v);
}

static ir_expr *call1(relay_lower_ctx *c, int op, ir_expr *x) {
  return ir_call_new(c->arena, op, 1, &x);
}

/* v converted to dtype t as the reference kernels store it (relay_tensor_set: floats round,
 * integers truncate toward zero and wrap to the width, bool is v != 0). */
static ir_expr *stored_const(relay_lower_ctx *c, kiln_dtype t, double v) {
  if (ir_dt_is_bool(t)) return ir_int(c->arena, t, v != 0);
  if (!ir_dt_is_int(t)) return fconst(c, t, v);
  double tv = trunc(v);
  int64_t x = tv != tv ? 0 : tv >= 9.2e18 ? INT64_MAX : tv <= -9.2e18 ? INT64_MIN : (int64_t)tv;
  if (t.bits < 64) {
    uint64_t mask = ((uint64_t)1 << t.bits) - 1, u = (uint64_t)x & mask;
    bool neg = t.code == KILN_TYPE_INT && (u >> (t.bits - 1)) & 1;
    x = neg ? (int64_t)(u | ~mask) : (int64_t)u;
  } else if (t.code == KILN_TYPE_UINT && x < 0) {
    return ir_cast_new(c->arena, t, k64(c, x)); /* wraps like the reference's store */
  }
  return ir_int(c->arena, t, x);
}

static ir_expr *load_at(relay_lower_ctx *c, ir_buffer *b, ir_expr *const *idx) {
  return ir_load_new(c->arena, b, b->ndim, idx);
}

/* A 4-d load given logical (N, C, H, W) or (O, I, H, W) indices; pos says where each logical
 * axis sits in the buffer's layout. */
static ir_expr *load4(relay_lower_ctx *c, ir_buffer *b, const int pos[4], ir_expr *a0,
                      ir_expr *a1, ir_expr *a2, ir_expr *a3) {
  ir_expr *idx[4];
  idx[pos[0]] = a0;
  idx[pos[1]] = a1;
  idx[pos[2]] = a2;
  idx[pos[3]] = a3;
  return load_at(c, b, idx);
}

/* The status after a constructor or relay_lower_buffer returned NULL (the error is on ctx). */
static kiln_status lower_failed(relay_lower_ctx *c) {
  return c->ctx->code ? c->ctx->code : KILN_ERR_INTERNAL;
}

static kiln_status check_lower_arity(relay_lower_ctx *c, int nargs, int want, int nouts) {
  if (nargs == want && nouts == 1) return KILN_OK;
  return ir_fail(c->ctx, c->span, KILN_ERR_INTERNAL,
                 "%s: lowered with %d arguments and %d outputs (wants %d and 1)", c->op, nargs,
                 nouts, want);
}

/* Sums, products and maxima are not defined on bool in TIR; the type relations of the
 * multiply-accumulate ops, bias_add and max pooling accept bool tensors all the same (the
 * reference computes them in double), but nothing needs them, so they are not lowered. */
static kiln_status numeric_buffer(relay_lower_ctx *c, const ir_buffer *b, const char *what) {
  if (!ir_dt_is_bool(b->h.dtype)) return KILN_OK;
  return ir_fail(c->ctx, c->span, KILN_ERR_UNSUPPORTED,
                 "%s: bool %s cannot be lowered (the op computes on numbers)", c->op, what);
}

/* check_lower_arity, then numeric_buffer on the data and the result. */
static kiln_status check_numeric_op(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                    int want, int nouts, ir_buffer *const *outs) {
  kiln_status st = check_lower_arity(c, nargs, want, nouts);
  if (!st) st = numeric_buffer(c, args[0], "data");
  if (!st) st = numeric_buffer(c, outs[0], "results");
  return st;
}

/* Emits one stage of the op being lowered through relay_lower_compute, in a block named
 * "<short op name>_<stage>" ("nn.conv2d", "pad" -> "conv2d_pad"; stage NULL: the op's short
 * name), from which relay_lower_compute derives the "stage" annotation. */
static kiln_status emit(relay_lower_ctx *c, const char *stage, ir_buffer *out, int nreduce,
                        ir_expr *const *reduce_extents, int reducer, relay_compute_fn f,
                        void *ud) {
  const char *dot = strchr(c->op, '.');
  char name[128];
  snprintf(name, sizeof name, "%s%s%s", dot ? dot + 1 : c->op, stage ? "_" : "",
           stage ? stage : "");
  return relay_lower_compute(c, name, out, nreduce, reduce_extents, reducer, f, ud);
}

/* The type sums are accumulated in where the result is divided afterwards (averages): int64
 * for integers (so that the quotient matches the reference's exact sum), float32 for 16-bit
 * floats, the dtype itself otherwise. */
static kiln_dtype sum_dtype(kiln_dtype t) {
  if (ir_dt_is_int(t) || ir_dt_is_bool(t)) return KILN_INT64;
  if (ir_dt_is_float(t) && t.bits < 32) return KILN_FLOAT32;
  return t;
}

/* ---- Padding (nn.pad, and the pad stages of convolutions and pooling) ---- */

typedef struct pad_info {
  ir_buffer *in;
  int64_t before[RELAY_MAX_DIMS];
  bool past_end[RELAY_MAX_DIMS]; /* the output extends past the input's end on this axis */
  int mode;                      /* PAD_CONSTANT, PAD_EDGE, PAD_REFLECT */
  ir_expr *fill;                 /* PAD_CONSTANT: the fill value (in's dtype) */
} pad_info;

/* out[i] = in[i - before] where that is inside `in`; elsewhere the fill (constant), the
 * nearest border element (edge) or the mirror image without repeating the border (reflect).
 * The constant case is select(in bounds, load, fill): SELECT evaluates the load only when
 * the condition holds, so the guard is safe. */
static ir_expr *pad_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const pad_info *p = ud;
  ir_expr *idx[RELAY_MAX_DIMS] = {0}, *cond = NULL;
  for (int d = 0; d < p->in->ndim; d++) {
    ir_expr *o = var_e(it[d]), *n = p->in->shape[d];
    ir_expr *i = ix_addk(c, o, -p->before[d]);
    bool lo = p->before[d] > 0, hi = p->past_end[d];
    if (p->mode == PAD_CONSTANT) {
      if (lo) cond = cond_and(c, cond, ir_binop(c->arena, IR_GE, o, k64(c, p->before[d])));
      if (hi) cond = cond_and(c, cond, ir_binop(c->arena, IR_LT, i, n));
    } else if (p->mode == PAD_EDGE) {
      if (lo) i = ix_bin(c, IR_MAX, i, k64(c, 0));
      if (hi) i = ix_bin(c, IR_MIN, i, ix_addk(c, n, -1));
    } else {
      ir_expr *r = i;
      if (hi) {
        ir_expr *mirror = ix_sub(c, ix_mulk(c, ix_addk(c, n, -1), 2), i); /* 2 (n - 1) - i */
        r = ir_select_new(c->arena, ir_binop(c->arena, IR_GE, i, n), mirror, r);
      }
      if (lo) r = ir_select_new(c->arena, ir_binop(c->arena, IR_LT, i, k64(c, 0)),
                                ix_sub(c, k64(c, 0), i), r);
      i = r;
    }
    idx[d] = i;
  }
  ir_expr *v = load_at(c, p->in, idx);
  return cond ? ir_select_new(c->arena, cond, v, p->fill) : v;
}

/* Emits the "<op>_pad" stage copying 4-d data x (layout dl) into a new buffer whose H and W
 * extents are eh and ew, with top/left fill elements before the data and fill after it up
 * to the new extent (past_h/past_w: whether there is anything after it). */
static ir_buffer *pad_stage4(relay_lower_ctx *c, ir_buffer *x, const int dl[4], int64_t top,
                             int64_t left, ir_expr *eh, ir_expr *ew, bool past_h, bool past_w,
                             ir_expr *fill) {
  ir_expr *shape[4];
  for (int d = 0; d < 4; d++) shape[d] = x->shape[d];
  shape[dl[2]] = eh;
  shape[dl[3]] = ew;
  ir_buffer *out = relay_lower_buffer(c, "data_pad", x->h.dtype, 4, shape);
  if (!out) return NULL;
  pad_info p = {.in = x, .mode = PAD_CONSTANT, .fill = fill};
  p.before[dl[2]] = top;
  p.before[dl[3]] = left;
  p.past_end[dl[2]] = past_h;
  p.past_end[dl[3]] = past_w;
  if (emit(c, "pad", out, 0, NULL, RELAY_REDUCE_NONE, pad_value, &p)) return NULL;
  return out;
}

static kiln_status lower_pad(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                             relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  kiln_status st = check_lower_arity(c, nargs, 1, nouts);
  if (st) return st;
  const int64_t *pw = attrs[PD_PAD_WIDTH]->ints;
  pad_info p = {.in = args[0], .mode = pad_mode_of(attrs[PD_PAD_MODE]->s)};
  for (int d = 0; d < args[0]->ndim; d++) {
    p.before[d] = pw[2 * d];
    p.past_end[d] = pw[2 * d + 1] > 0;
  }
  p.fill = stored_const(c, args[0]->h.dtype, attrs[PD_PAD_VALUE]->f);
  if (!p.fill) return lower_failed(c);
  return emit(c, NULL, outs[0], 0, NULL, RELAY_REDUCE_NONE, pad_value, &p);
}

/* ---- nn.dense, nn.matmul, nn.batch_matmul ---- */

typedef struct mm_info {
  ir_buffer *a, *b;
  int rank;              /* of the output */
  bool ta, tb;           /* matmul / batch_matmul: transposed operands; dense: b is [K, N] */
  bool a_one, b_one;     /* batch_matmul: a batch of 1 (broadcast) */
  kiln_dtype odt;
} mm_info;

/* a * b in the output dtype: one multiply-accumulate term. */
static ir_expr *mac_term(relay_lower_ctx *c, kiln_dtype t, ir_expr *a, ir_expr *b) {
  return ir_mul(c->arena, cast_to(c, t, a), cast_to(c, t, b));
}

/* dense: out[..., j] += x[..., k] * w[j, k] (w[k, j] with weight_layout "KN"). */
static ir_expr *dense_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const mm_info *m = ud;
  int r = m->rank;
  ir_expr *xi[RELAY_MAX_DIMS] = {0};
  for (int d = 0; d < r - 1; d++) xi[d] = var_e(it[d]);
  xi[r - 1] = var_e(it[r]);
  ir_expr *j = var_e(it[r - 1]), *k = var_e(it[r]);
  ir_expr *wi[2] = {m->tb ? k : j, m->tb ? j : k};
  return mac_term(c, m->odt, load_at(c, m->a, xi), load_at(c, m->b, wi));
}

/* matmul: out[i, j] += a[i, k] * b[k, j] (a as [k, i] when ta, b as [j, k] when tb). */
static ir_expr *matmul_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const mm_info *m = ud;
  ir_expr *i = var_e(it[0]), *j = var_e(it[1]), *k = var_e(it[2]);
  ir_expr *ai[2] = {m->ta ? k : i, m->ta ? i : k};
  ir_expr *bi[2] = {m->tb ? j : k, m->tb ? k : j};
  return mac_term(c, m->odt, load_at(c, m->a, ai), load_at(c, m->b, bi));
}

/* batch_matmul: out[g, i, j] += x[g, i, k] * y[g, j, k] (the transposes as in matmul, with
 * y's default transposed); an operand with a batch of 1 reads batch 0. */
static ir_expr *batch_matmul_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const mm_info *m = ud;
  ir_expr *g = var_e(it[0]), *i = var_e(it[1]), *j = var_e(it[2]), *k = var_e(it[3]);
  ir_expr *ga = m->a_one ? k64(c, 0) : g, *gb = m->b_one ? k64(c, 0) : g;
  ir_expr *ai[3] = {ga, m->ta ? k : i, m->ta ? i : k};
  ir_expr *bi[3] = {gb, m->tb ? j : k, m->tb ? k : j};
  return mac_term(c, m->odt, load_at(c, m->a, ai), load_at(c, m->b, bi));
}

static kiln_status lower_dense(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                               relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  kiln_status st = check_numeric_op(c, nargs, args, 2, nouts, outs);
  if (st) return st;
  mm_info m = {.a = args[0], .b = args[1], .rank = outs[0]->ndim, .odt = outs[0]->h.dtype,
               .tb = dense_kn(attrs)};
  ir_expr *k = args[1]->shape[m.tb ? 0 : 1];
  return emit(c, NULL, outs[0], 1, &k, RELAY_REDUCE_SUM, dense_value, &m);
}

static kiln_status lower_matmul(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  kiln_status st = check_numeric_op(c, nargs, args, 2, nouts, outs);
  if (st) return st;
  mm_info m = {.a = args[0], .b = args[1], .odt = outs[0]->h.dtype,
               .ta = attrs[MM_TRANSPOSE_A]->i != 0, .tb = attrs[MM_TRANSPOSE_B]->i != 0};
  ir_expr *k = args[0]->shape[m.ta ? 0 : 1];
  return emit(c, NULL, outs[0], 1, &k, RELAY_REDUCE_SUM, matmul_value, &m);
}

static bool dim_is_one(const ir_expr *e) {
  int64_t v;
  return int_const(e, &v) && v == 1;
}

static kiln_status lower_batch_matmul(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                      relay_attr *const *attrs, int nouts,
                                      ir_buffer *const *outs) {
  kiln_status st = check_numeric_op(c, nargs, args, 2, nouts, outs);
  if (st) return st;
  mm_info m = {.a = args[0], .b = args[1], .odt = outs[0]->h.dtype,
               .ta = attrs[BM_TRANSPOSE_A]->i != 0, .tb = attrs[BM_TRANSPOSE_B]->i != 0,
               .a_one = dim_is_one(args[0]->shape[0]), .b_one = dim_is_one(args[1]->shape[0])};
  ir_expr *k = args[0]->shape[m.ta ? 1 : 2];
  return emit(c, NULL, outs[0], 1, &k, RELAY_REDUCE_SUM, batch_matmul_value, &m);
}

/* ---- nn.conv2d, nn.conv2d_transpose ---- */

typedef struct conv_info {
  ir_buffer *data; /* padded (or dilated) data, or the input itself */
  ir_buffer *weight;
  int dl[4], kl[4]; /* logical N, C, H, W / O, I, H, W -> physical axes */
  int ol[4];        /* conv2d: logical N, C, H, W -> iterator of the block's output */
  int64_t s[2], d[2];
  int64_t groups;
  ir_expr *opg, *ipg; /* output / input channels per group (groups > 1) */
  ir_expr *kh, *kw;   /* kernel extents (conv2d_transpose flips the kernel) */
  ir_expr *off[2];    /* conv2d_transpose: dilated position of input row/column 0 */
  ir_expr *in[2];     /* conv2d_transpose: input H, W */
  kiln_dtype odt;
} conv_info;

/* conv2d: out[n, oc, oy, ox] += pad[n, g * ipg + rc, oy * s + ry * d, ox * s + rx * d] *
 * w[oc, rc, ry, rx], g = oc / opg the group of the output channel. */
static ir_expr *conv2d_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const conv_info *v = ud;
  ir_expr *n = var_e(it[v->ol[0]]), *oc = var_e(it[v->ol[1]]), *oy = var_e(it[v->ol[2]]),
          *ox = var_e(it[v->ol[3]]), *rc = var_e(it[4]), *ry = var_e(it[5]), *rx = var_e(it[6]);
  ir_expr *ic = rc;
  if (v->groups != 1)
    ic = ix_add(c, ix_mul(c, ix_bin(c, IR_FLOORDIV, oc, v->opg), v->ipg), rc);
  ir_expr *iy = ix_add(c, ix_mulk(c, oy, v->s[0]), ix_mulk(c, ry, v->d[0]));
  ir_expr *ix = ix_add(c, ix_mulk(c, ox, v->s[1]), ix_mulk(c, rx, v->d[1]));
  return mac_term(c, v->odt, load4(c, v->data, v->dl, n, ic, iy, ix),
                  load4(c, v->weight, v->kl, oc, rc, ry, rx));
}

static bool any_nonzero(const int64_t *v, int n) {
  for (int i = 0; i < n; i++)
    if (v[i]) return true;
  return false;
}

/* The channel-last stage's copy: out[n, oc, oy, ox] = acc[n, oy, ox, oc]. */
static ir_expr *conv2d_nchw_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  ir_buffer *acc = ud;
  ir_expr *idx[4] = {var_e(it[0]), var_e(it[2]), var_e(it[3]), var_e(it[1])};
  return load_at(c, acc, idx);
}

/* The stages of conv2d: "conv2d_pad" when there is padding, then the reduction. Normally the
 * reduction writes the result directly ("conv2d", in the data layout). When the output
 * channels can be the innermost axis of the reduction (groups 1, NCHW data and a kernel
 * layout with O innermost, e.g. HWIO, as AlterConvLayout makes it), it is split in two: the
 * reduction "conv2d_nhwc" into an intermediate [N, OH, OW, O], then the copy "conv2d_nchw"
 * to the NCHW result. With the output channel the innermost spatial axis, the tile rule
 * vectorizes over output channels with contiguous weight loads and broadcast inputs (no
 * shuffles for strides or short rows), the intermediate is the accumulator the pipeline
 * compacts to the tile, and the copy (inlined into the fused epilogue, if any) is computed
 * at the tile (schedule/rules_conv.c). */
static kiln_status lower_conv2d(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  kiln_status st = check_numeric_op(c, nargs, args, 2, nouts, outs);
  if (st) return st;
  ir_buffer *x = args[0], *w = args[1], *y = outs[0];
  conv_info v = {.data = x, .weight = w, .groups = attrs[CV_GROUPS]->i, .odt = y->h.dtype};
  layout_perm(attrs[CV_DATA_LAYOUT]->s, "NCHW", v.dl);
  layout_perm(attrs[CV_KERNEL_LAYOUT]->s, "OIHW", v.kl);
  bool channel_last = v.groups == 1 && strcmp(attrs[CV_DATA_LAYOUT]->s, "NCHW") == 0 &&
                      v.kl[0] == 3;
  memcpy(v.ol, v.dl, sizeof v.ol);
  const int64_t *p = attrs[CV_PADDING]->ints;
  for (int i = 0; i < 2; i++) {
    v.s[i] = attrs[CV_STRIDES]->ints[i];
    v.d[i] = attrs[CV_DILATION]->ints[i];
  }
  if (any_nonzero(p, 4)) {
    ir_expr *eh = simplified(c, ix_addk(c, x->shape[v.dl[2]], p[0] + p[2]));
    ir_expr *ew = simplified(c, ix_addk(c, x->shape[v.dl[3]], p[1] + p[3]));
    ir_expr *zero = fconst(c, x->h.dtype, 0);
    if (!eh || !ew || !zero) return lower_failed(c);
    v.data = pad_stage4(c, x, v.dl, p[0], p[1], eh, ew, p[2] > 0, p[3] > 0, zero);
    if (!v.data) return lower_failed(c);
  }
  v.ipg = w->shape[v.kl[1]];
  if (v.groups != 1 &&
      !(v.opg = simplified(c, ix_bin(c, IR_FLOORDIV, y->shape[v.dl[1]], k64(c, v.groups)))))
    return lower_failed(c);
  ir_expr *red[3] = {w->shape[v.kl[1]], w->shape[v.kl[2]], w->shape[v.kl[3]]};
  if (!channel_last) return emit(c, NULL, y, 3, red, RELAY_REDUCE_SUM, conv2d_value, &v);
  ir_expr *shape[4] = {y->shape[0], y->shape[2], y->shape[3], y->shape[1]};
  ir_buffer *acc = relay_lower_buffer(c, "conv2d_nhwc", y->h.dtype, 4, shape);
  if (!acc) return lower_failed(c);
  v.ol[0] = 0, v.ol[1] = 3, v.ol[2] = 1, v.ol[3] = 2; /* N, OH, OW, O */
  if ((st = emit(c, "nhwc", acc, 3, red, RELAY_REDUCE_SUM, conv2d_value, &v))) return st;
  return emit(c, "nchw", y, 0, NULL, RELAY_REDUCE_NONE, conv2d_nchw_value, acc);
}

/* conv2d_transpose, stage 1 ("conv2d_transpose_pad"): the input spread out by the stride
 * (stride - 1 zeros between elements) and padded so that the transposed convolution becomes a
 * plain one with the flipped kernel: dil[n, c, y, x] = data[n, c, ty / s, tx / s] where
 * ty = y - off (off = dil * (KH - 1) - pad_top) is a non-negative multiple of s inside the
 * input, 0 elsewhere. */
static ir_expr *dilate_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const conv_info *v = ud;
  ir_expr *pos[2] = {var_e(it[v->dl[2]]), var_e(it[v->dl[3]])}, *src[2], *cond = NULL;
  for (int a = 0; a < 2; a++) {
    ir_expr *t = ix_sub(c, pos[a], v->off[a]);
    ir_expr *k = k64(c, v->s[a]);
    cond = cond_and(c, cond, ir_binop(c->arena, IR_GE, t, k64(c, 0)));
    if (v->s[a] != 1)
      cond = cond_and(c, cond, ir_binop(c->arena, IR_EQ, ir_binop(c->arena, IR_FLOORMOD, t, k),
                                        k64(c, 0)));
    src[a] = ix_bin(c, IR_FLOORDIV, t, k);
    cond = cond_and(c, cond, ir_binop(c->arena, IR_LT, src[a], v->in[a]));
  }
  ir_expr *val = load4(c, v->data, v->dl, var_e(it[v->dl[0]]), var_e(it[v->dl[1]]), src[0], src[1]);
  return ir_select_new(c->arena, cond, val, fconst(c, v->data->h.dtype, 0));
}

/* conv2d_transpose, stage 2: out[n, oc, oy, ox] += dil[n, ic, oy + ry * d, ox + rx * d] *
 * w[ic, ocg, KH - 1 - ry, KW - 1 - rx] with ic = g * ipg + rc, g = oc / opg, ocg = oc % opg
 * (the weight is [C, O / groups, KH, KW] in logical IOHW). */
static ir_expr *conv2d_transpose_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const conv_info *v = ud;
  ir_expr *n = var_e(it[v->dl[0]]), *oc = var_e(it[v->dl[1]]), *oy = var_e(it[v->dl[2]]),
          *ox = var_e(it[v->dl[3]]), *rc = var_e(it[4]), *ry = var_e(it[5]), *rx = var_e(it[6]);
  ir_expr *ic = rc, *ocg = oc;
  if (v->groups != 1) {
    ic = ix_add(c, ix_mul(c, ix_bin(c, IR_FLOORDIV, oc, v->opg), v->ipg), rc);
    ocg = ix_bin(c, IR_FLOORMOD, oc, v->opg);
  }
  ir_expr *iy = ix_add(c, oy, ix_mulk(c, ry, v->d[0]));
  ir_expr *ix = ix_add(c, ox, ix_mulk(c, rx, v->d[1]));
  ir_expr *ky = ix_sub(c, ix_addk(c, v->kh, -1), ry), *kx = ix_sub(c, ix_addk(c, v->kw, -1), rx);
  return mac_term(c, v->odt, load4(c, v->data, v->dl, n, ic, iy, ix),
                  load4(c, v->weight, v->kl, ocg, ic, ky, kx));
}

static kiln_status lower_conv2d_transpose(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                          relay_attr *const *attrs, int nouts,
                                          ir_buffer *const *outs) {
  kiln_status st = check_numeric_op(c, nargs, args, 2, nouts, outs);
  if (st) return st;
  ir_buffer *x = args[0], *w = args[1], *y = outs[0];
  conv_info v = {.data = x, .weight = w, .groups = attrs[CT_GROUPS]->i, .odt = y->h.dtype};
  layout_perm(attrs[CT_DATA_LAYOUT]->s, "NCHW", v.dl);
  layout_perm(attrs[CT_KERNEL_LAYOUT]->s, "OIHW", v.kl);
  const int64_t *p = attrs[CT_PADDING]->ints;
  v.kh = w->shape[v.kl[2]];
  v.kw = w->shape[v.kl[3]];
  ir_expr *k[2] = {v.kh, v.kw}, *shape[4];
  for (int i = 0; i < 2; i++) {
    v.s[i] = attrs[CT_STRIDES]->ints[i];
    v.d[i] = attrs[CT_DILATION]->ints[i];
    v.in[i] = x->shape[v.dl[2 + i]];
    ir_expr *span = ix_mulk(c, ix_addk(c, k[i], -1), v.d[i]); /* dil * (K - 1) */
    v.off[i] = simplified(c, ix_addk(c, span, -p[i]));
    /* every row the flipped kernel reaches: OH + dil * (KH - 1) */
    shape[v.dl[2 + i]] = simplified(c, ix_add(c, y->shape[v.dl[2 + i]], span));
    if (!v.off[i] || !shape[v.dl[2 + i]]) return lower_failed(c);
  }
  shape[v.dl[0]] = x->shape[v.dl[0]];
  shape[v.dl[1]] = x->shape[v.dl[1]];
  ir_buffer *dil = relay_lower_buffer(c, "data_dilate", x->h.dtype, 4, shape);
  if (!dil) return lower_failed(c);
  if ((st = emit(c, "pad", dil, 0, NULL, RELAY_REDUCE_NONE, dilate_value, &v)))
    return st;
  v.data = dil;
  ir_expr *cin = x->shape[v.dl[1]];
  v.ipg = cin;
  if (v.groups != 1) {
    v.opg = w->shape[v.kl[0]];
    if (!(v.ipg = simplified(c, ix_bin(c, IR_FLOORDIV, cin, k64(c, v.groups)))))
      return lower_failed(c);
  }
  ir_expr *red[3] = {v.ipg, v.kh, v.kw};
  return emit(c, NULL, y, 3, red, RELAY_REDUCE_SUM, conv2d_transpose_value, &v);
}

/* ---- nn.bias_add, nn.batch_norm, nn.dropout ---- */

typedef struct chan_info {
  int axis;
  ir_buffer *x;
  ir_buffer *const *params; /* per-channel parameters, each 1-d along `axis` */
  bool center, scale;
  double eps;
} chan_info;

static ir_expr *load_all(relay_lower_ctx *c, ir_buffer *b, ir_var *const *it) {
  ir_expr *idx[RELAY_MAX_DIMS] = {0};
  for (int d = 0; d < b->ndim; d++) idx[d] = var_e(it[d]);
  return load_at(c, b, idx);
}

static ir_expr *load_chan(relay_lower_ctx *c, ir_buffer *b, ir_var *ch) {
  ir_expr *i = var_e(ch);
  return load_at(c, b, &i);
}

/* bias_add: out[i] = x[i] + bias[i[axis]]. */
static ir_expr *bias_add_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const chan_info *b = ud;
  return ir_add(c->arena, load_all(c, b->x, it), load_chan(c, b->params[1], it[b->axis]));
}

/* batch_norm: (x - mean) / sqrt(var + eps) [* gamma] [+ beta], per channel of `axis`
 * (params: data, gamma, beta, moving_mean, moving_var). */
static ir_expr *batch_norm_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const chan_info *b = ud;
  ir_arena *a = c->arena;
  ir_var *ch = it[b->axis];
  kiln_dtype t = b->x->h.dtype;
  ir_expr *var = ir_add(a, load_chan(c, b->params[4], ch), fconst(c, t, b->eps));
  ir_expr *v = ir_binop(a, IR_DIV, ir_sub(a, load_all(c, b->x, it), load_chan(c, b->params[3], ch)),
                        call1(c, IR_OP_SQRT, var));
  if (b->scale) v = ir_mul(a, v, load_chan(c, b->params[1], ch));
  if (b->center) v = ir_add(a, v, load_chan(c, b->params[2], ch));
  return v;
}

static ir_expr *copy_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  return load_all(c, ud, it);
}

static kiln_status lower_bias_add(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                  relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  kiln_status st = check_numeric_op(c, nargs, args, 2, nouts, outs);
  if (st) return st;
  chan_info b = {.axis = axis_of(attrs[BA_AXIS]->i, args[0]->ndim), .x = args[0], .params = args};
  return emit(c, NULL, outs[0], 0, NULL, RELAY_REDUCE_NONE, bias_add_value, &b);
}

static kiln_status lower_batch_norm(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                    relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  kiln_status st = check_lower_arity(c, nargs, 5, nouts);
  if (st) return st;
  chan_info b = {.axis = axis_of(attrs[NM_AXIS]->i, args[0]->ndim), .x = args[0], .params = args,
                 .center = attrs[NM_CENTER]->i != 0, .scale = attrs[NM_SCALE]->i != 0,
                 .eps = attrs[NM_EPSILON]->f};
  return emit(c, NULL, outs[0], 0, NULL, RELAY_REDUCE_NONE, batch_norm_value, &b);
}

static kiln_status lower_dropout(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                 relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  (void)attrs;
  kiln_status st = check_lower_arity(c, nargs, 1, nouts);
  if (st) return st;
  return emit(c, NULL, outs[0], 0, NULL, RELAY_REDUCE_NONE, copy_value, args[0]);
}

/* ---- nn.layer_norm, nn.softmax, nn.log_softmax: reductions along one axis ---- */

/* The stages of these ops read full tensors (iterators i[0..ndim)) and per-slice statistics
 * (the same iterators without `axis`); a reduction stage has the slice's iterators and then
 * the reduce iterator k standing for `axis`. */
typedef struct axis_info {
  int axis, ndim;
  ir_buffer *x;
  ir_buffer *stat1, *stat2; /* per-slice statistics (max / sum, sum of squares) */
  ir_buffer *expv;          /* softmax: exp(x - max) */
  ir_buffer *gamma, *beta;  /* layer_norm (NULL when not applied) */
  double eps;
  ir_expr *len;             /* the axis' length in x's dtype */
} axis_info;

/* x at the slice iterators with k inserted at `axis` (reduction stages). */
static ir_expr *load_slice_k(relay_lower_ctx *c, const axis_info *s, ir_buffer *b,
                             ir_var *const *it) {
  ir_expr *idx[RELAY_MAX_DIMS] = {0};
  for (int d = 0, j = 0; d < s->ndim; d++) idx[d] = var_e(d == s->axis ? it[s->ndim - 1] : it[j++]);
  return load_at(c, b, idx);
}

/* A statistic at the full iterators without `axis` (elementwise stages). */
static ir_expr *load_stat(relay_lower_ctx *c, const axis_info *s, ir_buffer *b,
                          ir_var *const *it) {
  ir_expr *idx[RELAY_MAX_DIMS] = {0};
  for (int d = 0, j = 0; d < s->ndim; d++)
    if (d != s->axis) idx[j++] = var_e(it[d]);
  return load_at(c, b, idx);
}

static ir_expr *slice_x_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const axis_info *s = ud;
  return load_slice_k(c, s, s->x, it);
}

/* exp(x - max), at the full iterators (softmax_exp) or inside a reduction (log_softmax_sum). */
static ir_expr *exp_shifted(relay_lower_ctx *c, ir_expr *x, ir_expr *mx) {
  return call1(c, IR_OP_EXP, ir_sub(c->arena, x, mx));
}

static ir_expr *softmax_exp_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const axis_info *s = ud;
  return exp_shifted(c, load_all(c, s->x, it), load_stat(c, s, s->stat1, it));
}

static ir_expr *softmax_sum_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const axis_info *s = ud;
  return load_slice_k(c, s, s->expv, it);
}

static ir_expr *softmax_norm_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const axis_info *s = ud;
  return ir_binop(c->arena, IR_DIV, load_all(c, s->expv, it), load_stat(c, s, s->stat2, it));
}

/* log_softmax_sum: sum over the slice of exp(x - max) (the max at the slice iterators). */
static ir_expr *log_softmax_sum_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const axis_info *s = ud;
  ir_expr *idx[RELAY_MAX_DIMS] = {0};
  for (int d = 0; d < s->ndim - 1; d++) idx[d] = var_e(it[d]);
  return exp_shifted(c, load_slice_k(c, s, s->x, it), load_at(c, s->stat1, idx));
}

/* log_softmax: (x - max) - log(sum). */
static ir_expr *log_softmax_norm_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const axis_info *s = ud;
  ir_expr *v = ir_sub(c->arena, load_all(c, s->x, it), load_stat(c, s, s->stat1, it));
  return ir_sub(c->arena, v, call1(c, IR_OP_LOG, load_stat(c, s, s->stat2, it)));
}

/* layer_norm_var: sum over the slice of (x - sum / len)^2. */
static ir_expr *layer_norm_var_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const axis_info *s = ud;
  ir_expr *idx[RELAY_MAX_DIMS] = {0};
  for (int d = 0; d < s->ndim - 1; d++) idx[d] = var_e(it[d]);
  ir_expr *mean = ir_binop(c->arena, IR_DIV, load_at(c, s->stat1, idx), s->len);
  ir_expr *dv = ir_sub(c->arena, load_slice_k(c, s, s->x, it), mean);
  return ir_mul(c->arena, dv, dv);
}

/* layer_norm: (x - mean) * rsqrt(var + eps) [* gamma] [+ beta], mean = sum / len and
 * var = sum of squares / len. */
static ir_expr *layer_norm_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const axis_info *s = ud;
  ir_arena *a = c->arena;
  kiln_dtype t = s->x->h.dtype;
  ir_expr *mean = ir_binop(a, IR_DIV, load_stat(c, s, s->stat1, it), s->len);
  ir_expr *var = ir_binop(a, IR_DIV, load_stat(c, s, s->stat2, it), s->len);
  ir_expr *rstd = call1(c, IR_OP_RSQRT, ir_add(a, var, fconst(c, t, s->eps)));
  ir_expr *v = ir_mul(a, ir_sub(a, load_all(c, s->x, it), mean), rstd);
  if (s->gamma) v = ir_mul(a, v, load_chan(c, s->gamma, it[s->axis]));
  if (s->beta) v = ir_add(a, v, load_chan(c, s->beta, it[s->axis]));
  return v;
}

/* A per-slice statistic buffer: x's shape without `axis`, x's dtype. */
static ir_buffer *slice_buffer(relay_lower_ctx *c, const axis_info *s, const char *name) {
  ir_expr *shape[RELAY_MAX_DIMS] = {0};
  for (int d = 0, j = 0; d < s->ndim; d++)
    if (d != s->axis) shape[j++] = s->x->shape[d];
  return relay_lower_buffer(c, name, s->x->h.dtype, s->ndim - 1, shape);
}

/* Emits a reduction over `axis` of x into the statistic buffer out. */
static kiln_status slice_reduce(relay_lower_ctx *c, const axis_info *s, const char *stage,
                                ir_buffer *out, int reducer, relay_compute_fn f) {
  ir_expr *len = s->x->shape[s->axis];
  return emit(c, stage, out, 1, &len, reducer, f, (void *)s);
}

/* softmax: max over the slice, e = exp(x - max), sum of e, e / sum (four stages); log_softmax:
 * max, sum of exp(x - max), (x - max) - log(sum). Numerically stable like the reference. */
static kiln_status lower_softmax_common(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                        relay_attr *const *attrs, int nouts,
                                        ir_buffer *const *outs, bool log_out) {
  kiln_status st = check_lower_arity(c, nargs, 1, nouts);
  if (st) return st;
  axis_info s = {.axis = axis_of(attrs[SM_AXIS]->i, args[0]->ndim), .ndim = args[0]->ndim,
                 .x = args[0]};
  s.stat1 = slice_buffer(c, &s, "max_elem");
  s.stat2 = slice_buffer(c, &s, "exp_sum");
  if (!s.stat1 || !s.stat2) return lower_failed(c);
  if ((st = slice_reduce(c, &s, "max", s.stat1, RELAY_REDUCE_MAX, slice_x_value))) return st;
  if (log_out) {
    if ((st = slice_reduce(c, &s, "sum", s.stat2, RELAY_REDUCE_SUM, log_softmax_sum_value)))
      return st;
    return emit(c, "norm", outs[0], 0, NULL, RELAY_REDUCE_NONE, log_softmax_norm_value, &s);
  }
  if (!(s.expv = relay_lower_buffer(c, "exp_val", s.x->h.dtype, s.ndim, s.x->shape)))
    return lower_failed(c);
  if ((st = emit(c, "exp", s.expv, 0, NULL, RELAY_REDUCE_NONE, softmax_exp_value, &s)) ||
      (st = slice_reduce(c, &s, "sum", s.stat2, RELAY_REDUCE_SUM, softmax_sum_value)))
    return st;
  return emit(c, "norm", outs[0], 0, NULL, RELAY_REDUCE_NONE, softmax_norm_value, &s);
}

static kiln_status lower_softmax(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                 relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  return lower_softmax_common(c, nargs, args, attrs, nouts, outs, false);
}

static kiln_status lower_log_softmax(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                     relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  return lower_softmax_common(c, nargs, args, attrs, nouts, outs, true);
}

/* layer_norm: the slice sums, the sums of squared deviations from the mean (two passes, like
 * the reference), then the normalization. */
static kiln_status lower_layer_norm(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                    relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  kiln_status st = check_lower_arity(c, nargs, 3, nouts);
  if (st) return st;
  axis_info s = {.axis = axis_of(attrs[NM_AXIS]->i, args[0]->ndim), .ndim = args[0]->ndim,
                 .x = args[0], .eps = attrs[NM_EPSILON]->f,
                 .gamma = attrs[NM_SCALE]->i ? args[1] : NULL,
                 .beta = attrs[NM_CENTER]->i ? args[2] : NULL};
  s.len = cast_to(c, s.x->h.dtype, s.x->shape[s.axis]);
  s.stat1 = slice_buffer(c, &s, "x_sum");
  s.stat2 = slice_buffer(c, &s, "sq_dev_sum");
  if (!s.len || !s.stat1 || !s.stat2) return lower_failed(c);
  if ((st = slice_reduce(c, &s, "sum", s.stat1, RELAY_REDUCE_SUM, slice_x_value)) ||
      (st = slice_reduce(c, &s, "var", s.stat2, RELAY_REDUCE_SUM, layer_norm_var_value)))
    return st;
  return emit(c, "norm", outs[0], 0, NULL, RELAY_REDUCE_NONE, layer_norm_value, &s);
}

/* ---- Pooling ---- */

/* Windows along one spatial axis (a = 0: H, 1: W). Strided (pool2d): window o covers rows
 * o * s + k * d of the (padded) source. Adaptive: window o covers input rows
 * [floor(o * in / out), ceil((o + 1) * in / out)); when in % out == 0 every window has the
 * same size and starts at o * (in / out), otherwise the reduce extent is the largest window
 * and taps past the window's end are masked. */
typedef struct pool_axis {
  int64_t s, d;       /* strided windows */
  bool adaptive;
  bool uniform;       /* adaptive: every window has the same size */
  ir_expr *in;        /* adaptive: the input extent */
  int64_t out;        /* adaptive: the output extent */
  ir_expr *ext;       /* the reduce extent (the window size, or the largest one) */
  /* averages, when not every tap of a window counts (count_formula): the taps at input
   * positions o * s - pad + k * d below count_end count, and with count_input only those
   * at or above 0 */
  bool count_formula;
  ir_expr *count_end;
  int64_t pad;        /* the padding before */
  bool count_input;
} pool_axis;

typedef struct pool_info {
  ir_buffer *src;   /* padded data or the input */
  ir_buffer *sum;   /* averages: the window sums */
  int dl[4];
  pool_axis ax[2];
  kiln_dtype vdt;   /* the reduction's dtype */
  ir_expr *ident;   /* the reduction's identity (masked taps) */
  kiln_dtype odt;
} pool_info;

static ir_expr *adaptive_start(relay_lower_ctx *c, const pool_axis *p, ir_expr *o) {
  if (p->out == 1) return k64(c, 0);
  if (p->uniform) return ix_mul(c, o, p->ext); /* o * (in / out) */
  return ix_bin(c, IR_FLOORDIV, ix_mul(c, o, p->in), k64(c, p->out));
}

static ir_expr *adaptive_end(relay_lower_ctx *c, const pool_axis *p, ir_expr *o) {
  if (p->uniform) return ix_mul(c, ix_addk(c, o, 1), p->ext);
  return ix_ceildiv(c, ix_mul(c, ix_addk(c, o, 1), p->in), p->out);
}

/* One tap of a pooling reduction: src[n, ch, row, col] (masked to the identity where an
 * adaptive window is shorter than the reduce extent), in the reduction's dtype. */
static ir_expr *pool_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const pool_info *p = ud;
  ir_expr *o[2] = {var_e(it[p->dl[2]]), var_e(it[p->dl[3]])};
  ir_expr *k[2] = {var_e(it[4]), var_e(it[5])}, *pos[2], *mask = NULL;
  for (int a = 0; a < 2; a++) {
    const pool_axis *ax = &p->ax[a];
    if (!ax->adaptive) {
      pos[a] = ix_add(c, ix_mulk(c, o[a], ax->s), ix_mulk(c, k[a], ax->d));
      continue;
    }
    ir_expr *start = adaptive_start(c, ax, o[a]);
    pos[a] = ix_add(c, start, k[a]);
    if (!ax->uniform)
      mask = cond_and(c, mask, ir_binop(c->arena, IR_LT, k[a],
                                        ix_sub(c, adaptive_end(c, ax, o[a]), start)));
  }
  ir_expr *v = cast_to(c, p->vdt, load4(c, p->src, p->dl, var_e(it[p->dl[0]]),
                                        var_e(it[p->dl[1]]), pos[0], pos[1]));
  return mask ? ir_select_new(c->arena, mask, v, p->ident) : v;
}

/* The number of taps an average divides by along one axis, for output index o. */
static ir_expr *pool_count(relay_lower_ctx *c, const pool_axis *ax, ir_expr *o) {
  if (ax->adaptive)
    return ax->uniform ? ax->ext : ix_sub(c, adaptive_end(c, ax, o), adaptive_start(c, ax, o));
  if (!ax->count_formula) return ax->ext;
  /* the taps k in [begin, end) of [0, K): first + k * d < count_end (and >= 0) */
  ir_expr *first = ix_addk(c, ix_mulk(c, o, ax->s), -ax->pad); /* o * s - pad */
  ir_expr *end = ix_bin(c, IR_MIN, ax->ext,
                        ix_ceildiv(c, ix_sub(c, ax->count_end, first), ax->d));
  ir_expr *begin = k64(c, 0);
  if (ax->count_input)
    begin = ix_bin(c, IR_MAX, begin, ix_ceildiv(c, ix_sub(c, k64(c, 0), first), ax->d));
  return ix_bin(c, IR_MAX, ix_sub(c, end, begin), k64(c, 0));
}

/* The average: sum / count (count at least 1: an empty window's sum is 0, as in the
 * reference), in the sum's dtype (integers divide toward zero), cast to the output dtype. A
 * bool average is true when any element is (the reference stores avg != 0). */
static ir_expr *pool_avg_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const pool_info *p = ud;
  if (ir_dt_is_bool(p->odt))
    return ir_binop(c->arena, IR_NE, load_all(c, p->sum, it), k64(c, 0));
  ir_expr *cnt = ix_mul(c, pool_count(c, &p->ax[0], var_e(it[p->dl[2]])),
                        pool_count(c, &p->ax[1], var_e(it[p->dl[3]])));
  cnt = simplified(c, ix_bin(c, IR_MAX, cnt, k64(c, 1)));
  ir_expr *q = ir_binop(c->arena, IR_DIV, load_all(c, p->sum, it), cast_to(c, p->vdt, cnt));
  return cast_to(c, p->odt, q);
}

/* Emits the pooling reduction into out (max) or into a sum buffer followed by the division
 * (average). Block names: "<op>" for the result, "<op>_sum" for the sums. */
static kiln_status emit_pool(relay_lower_ctx *c, pool_info *p, ir_buffer *out, bool is_max) {
  ir_expr *red[2] = {p->ax[0].ext, p->ax[1].ext};
  kiln_dtype t = p->src->h.dtype;
  if (is_max) {
    p->vdt = t;
    p->ident = stored_const(c, t, dtype_lowest(t));
    if (!p->ident) return lower_failed(c);
    return emit(c, NULL, out, 2, red, RELAY_REDUCE_MAX, pool_value, p);
  }
  p->vdt = sum_dtype(t);
  p->odt = out->h.dtype;
  p->ident = stored_const(c, p->vdt, 0);
  p->sum = relay_lower_buffer(c, "pool_sum", p->vdt, 4, out->shape);
  if (!p->ident || !p->sum) return lower_failed(c);
  kiln_status st = emit(c, "sum", p->sum, 2, red, RELAY_REDUCE_SUM, pool_value, p);
  if (st) return st;
  return emit(c, NULL, out, 0, NULL, RELAY_REDUCE_NONE, pool_avg_value, p);
}

/* max_pool2d / avg_pool2d: a pad stage when there is padding or a ceil-mode window reaches
 * past the padded input (the padded buffer then covers every window; the fill is the dtype's
 * lowest value for max and 0 for the average, which the reference's skipped taps amount to),
 * then the window reduction. */
static kiln_status lower_pool2d(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                relay_attr *const *attrs, int nouts, ir_buffer *const *outs,
                                bool is_max) {
  kiln_status st = is_max ? check_numeric_op(c, nargs, args, 1, nouts, outs)
                          : check_lower_arity(c, nargs, 1, nouts);
  if (st) return st;
  ir_buffer *x = args[0], *y = outs[0];
  pool_info p = {.src = x};
  layout_perm(attrs[PL_LAYOUT]->s, "NCHW", p.dl);
  const int64_t *k = attrs[PL_POOL_SIZE]->ints, *pad = attrs[PL_PADDING]->ints;
  bool ceil_mode = attrs[PL_CEIL_MODE]->i != 0;
  bool include_pad = !is_max && attrs[PL_COUNT_INCLUDE_PAD]->i != 0;
  ir_expr *ext[2];
  bool past[2], need_pad = any_nonzero(pad, 4);
  for (int a = 0; a < 2; a++) {
    pool_axis *ax = &p.ax[a];
    ax->s = attrs[PL_STRIDES]->ints[a];
    ax->d = attrs[PL_DILATION]->ints[a];
    ax->ext = k64(c, k[a]);
    ax->pad = pad[a];
    ir_expr *in = x->shape[p.dl[2 + a]];
    ir_expr *full = simplified(c, ix_addk(c, in, pad[a] + pad[a + 2])); /* padded extent */
    if (!full || !ax->ext) return lower_failed(c);
    /* in ceil mode the last window may reach past the padding: (OH - 1) * s + dil * (k - 1) + 1 */
    bool over = false;
    ext[a] = full;
    if (ceil_mode) {
      ir_expr *reach = simplified(
          c, ix_addk(c, ix_mulk(c, ix_addk(c, y->shape[p.dl[2 + a]], -1), ax->s),
                     ax->d * (k[a] - 1) + 1));
      ir_expr *fits = reach ? ir_binop(c->arena, IR_LE, reach, full) : NULL;
      if (!fits) return lower_failed(c);
      over = !ir_prove(c->an, fits);
      if (over && !(ext[a] = simplified(c, ix_bin(c, IR_MAX, full, reach))))
        return lower_failed(c);
    }
    past[a] = pad[a + 2] > 0 || over;
    need_pad = need_pad || over;
    /* averages: taps in [-pad, in + pad_after) count with count_include_pad (only a
     * ceil-mode overhang cuts a window), taps in [0, in) without it */
    ax->count_input = !include_pad;
    ax->count_end = include_pad ? ix_addk(c, in, pad[a + 2]) : in;
    ax->count_formula = include_pad ? over : pad[a] > 0 || pad[a + 2] > 0 || over;
  }
  if (need_pad) {
    ir_expr *fill = stored_const(c, x->h.dtype, is_max ? dtype_lowest(x->h.dtype) : 0);
    if (!fill) return lower_failed(c);
    p.src = pad_stage4(c, x, p.dl, pad[0], pad[1], ext[0], ext[1], past[0], past[1], fill);
    if (!p.src) return lower_failed(c);
  }
  return emit_pool(c, &p, y, is_max);
}

static kiln_status lower_max_pool2d(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                    relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  return lower_pool2d(c, nargs, args, attrs, nouts, outs, true);
}

static kiln_status lower_avg_pool2d(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                    relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  return lower_pool2d(c, nargs, args, attrs, nouts, outs, false);
}

/* Adaptive (and global: output 1 x 1) pooling over PyTorch's windows. */
static kiln_status lower_adaptive(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                  const char *layout, int nouts, ir_buffer *const *outs,
                                  bool is_max) {
  kiln_status st = is_max ? check_numeric_op(c, nargs, args, 1, nouts, outs)
                          : check_lower_arity(c, nargs, 1, nouts);
  if (st) return st;
  ir_buffer *x = args[0], *y = outs[0];
  pool_info p = {.src = x};
  layout_perm(layout, "NCHW", p.dl);
  for (int a = 0; a < 2; a++) {
    pool_axis *ax = &p.ax[a];
    ax->adaptive = true;
    ax->in = x->shape[p.dl[2 + a]];
    int64_t in;
    if (!int_const(y->shape[p.dl[2 + a]], &ax->out) || ax->out < 1) /* output_size */
      return ir_fail(c->ctx, c->span, KILN_ERR_INTERNAL, "%s: the output size is not a constant",
                     c->op);
    if (ax->out == 1) {
      ax->uniform = true;
      ax->ext = ax->in;
    } else if (int_const(ax->in, &in)) {
      ax->uniform = in % ax->out == 0;
      int64_t widest = 0; /* the largest window */
      for (int64_t o = 0; o < ax->out; o++) {
        int64_t w = ((o + 1) * in + ax->out - 1) / ax->out - o * in / ax->out;
        if (w > widest) widest = w;
      }
      ax->ext = k64(c, widest);
    } else {
      /* ceil((o + 1) in / out) - floor(o in / out) <= ceil(in / out) + 1 */
      ax->ext = simplified(c, ix_addk(c, ix_ceildiv(c, ax->in, ax->out), 1));
    }
    if (!ax->ext) return lower_failed(c);
  }
  return emit_pool(c, &p, y, is_max);
}

static kiln_status lower_global_avg_pool2d(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                           relay_attr *const *attrs, int nouts,
                                           ir_buffer *const *outs) {
  return lower_adaptive(c, nargs, args, attrs[GP_LAYOUT]->s, nouts, outs, false);
}

static kiln_status lower_global_max_pool2d(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                           relay_attr *const *attrs, int nouts,
                                           ir_buffer *const *outs) {
  return lower_adaptive(c, nargs, args, attrs[GP_LAYOUT]->s, nouts, outs, true);
}

static kiln_status lower_adaptive_avg_pool2d(relay_lower_ctx *c, int nargs,
                                             ir_buffer *const *args, relay_attr *const *attrs,
                                             int nouts, ir_buffer *const *outs) {
  return lower_adaptive(c, nargs, args, attrs[AP_LAYOUT]->s, nouts, outs, false);
}

static kiln_status lower_adaptive_max_pool2d(relay_lower_ctx *c, int nargs,
                                             ir_buffer *const *args, relay_attr *const *attrs,
                                             int nouts, ir_buffer *const *outs) {
  return lower_adaptive(c, nargs, args, attrs[AP_LAYOUT]->s, nouts, outs, true);
}

/* ---- image.resize2d ---- */

/* The source coordinates and weights are computed in float64 with the reference's formulas
 * and operation order (so nearest-neighbour picks and integer results match it exactly); the
 * weighted sum is computed in the output dtype when that is float32 or float64, else in
 * float64, and cast to the output dtype. */
typedef struct resize_info {
  ir_buffer *x;
  int dl[4];
  int method, mode, rounding;
  double alpha;
  bool exclude;
  ir_expr *in[2];
  int64_t out[2];
  kiln_dtype vdt, odt;
} resize_info;

static ir_expr *f64(relay_lower_ctx *c, double v) { return fconst(c, KILN_FLOAT64, v); }
static ir_expr *fbin(relay_lower_ctx *c, int kind, ir_expr *x, ir_expr *y) {
  return ir_binop(c->arena, kind, x, y);
}

/* The input coordinate output index o maps to along axis a (resize_coord in float64). */
static ir_expr *resize_coord_expr(relay_lower_ctx *c, const resize_info *r, int a, ir_expr *o) {
  int64_t in;
  ir_expr *od = cast_to(c, KILN_FLOAT64, o);
  ir_expr *id = int_const(r->in[a], &in) ? f64(c, (double)in) : cast_to(c, KILN_FLOAT64, r->in[a]);
  ir_expr *outd = f64(c, (double)r->out[a]);
  switch (r->mode) {
  case CM_PYTORCH_HALF_PIXEL:
    if (r->out[a] <= 1) return f64(c, 0);
    /* fall through */
  case CM_HALF_PIXEL:
    return fbin(c, IR_SUB,
                fbin(c, IR_DIV, fbin(c, IR_MUL, fbin(c, IR_ADD, od, f64(c, 0.5)), id), outd),
                f64(c, 0.5));
  case CM_ALIGN_CORNERS:
    if (r->out[a] <= 1) return f64(c, 0);
    return fbin(c, IR_DIV, fbin(c, IR_MUL, od, fbin(c, IR_SUB, id, f64(c, 1))),
                f64(c, (double)r->out[a] - 1));
  case CM_ASYMMETRIC: return fbin(c, IR_DIV, fbin(c, IR_MUL, od, id), outd);
  case CM_TF_HALF_PIXEL_NN:
    return fbin(c, IR_DIV, fbin(c, IR_MUL, fbin(c, IR_ADD, od, f64(c, 0.5)), id), outd);
  }
  return NULL;
}

/* The taps (indices clamped into the input) and float64 weights along axis a for output
 * index o: resize_taps as expressions. Returns the number of taps. */
static int resize_taps_expr(relay_lower_ctx *c, const resize_info *r, int a, ir_expr *o,
                            ir_expr **idx, ir_expr **wt) {
  ir_expr *x = resize_coord_expr(c, r, a, o), *n = r->in[a];
  if (r->method == RM_NEAREST) {
    ir_expr *v = x;
    switch (r->rounding) {
    case RD_ROUND: v = call1(c, IR_OP_ROUND, x); break;
    case RD_FLOOR: v = call1(c, IR_OP_FLOOR, x); break;
    case RD_CEIL: v = call1(c, IR_OP_CEIL, x); break;
    case RD_PREFER_FLOOR: v = call1(c, IR_OP_CEIL, fbin(c, IR_SUB, x, f64(c, 0.5))); break;
    case RD_PREFER_CEIL: v = call1(c, IR_OP_FLOOR, fbin(c, IR_ADD, x, f64(c, 0.5))); break;
    }
    idx[0] = ix_clamp(c, cast_to(c, KILN_INT64, v), n);
    wt[0] = f64(c, 1);
    return 1;
  }
  ir_expr *x0 = call1(c, IR_OP_FLOOR, x), *f = fbin(c, IR_SUB, x, x0);
  ir_expr *i0 = cast_to(c, KILN_INT64, x0);
  if (r->method == RM_LINEAR) {
    idx[0] = ix_clamp(c, i0, n);
    idx[1] = ix_clamp(c, ix_addk(c, i0, 1), n);
    wt[0] = fbin(c, IR_SUB, f64(c, 1), f);
    wt[1] = f;
    return 2;
  }
  double al = r->alpha;
  ir_expr *sum = NULL;
  for (int t = 0; t < 4; t++) {
    ir_expr *dist = call1(c, IR_OP_FABS, fbin(c, IR_SUB, f, f64(c, (double)(t - 1))));
    /* Keys' kernel: ((a + 2) d - (a + 3)) d d + 1 for d <= 1, ((a d - 5a) d + 8a) d - 4a
     * for d < 2, else 0 */
    ir_expr *near = fbin(c, IR_SUB, fbin(c, IR_MUL, f64(c, al + 2), dist), f64(c, al + 3));
    near = fbin(c, IR_ADD, fbin(c, IR_MUL, fbin(c, IR_MUL, near, dist), dist), f64(c, 1));
    ir_expr *far = fbin(c, IR_SUB, fbin(c, IR_MUL, f64(c, al), dist), f64(c, 5 * al));
    far = fbin(c, IR_ADD, fbin(c, IR_MUL, far, dist), f64(c, 8 * al));
    far = fbin(c, IR_SUB, fbin(c, IR_MUL, far, dist), f64(c, 4 * al));
    ir_expr *w = ir_select_new(
        c->arena, fbin(c, IR_LE, dist, f64(c, 1)), near,
        ir_select_new(c->arena, fbin(c, IR_LT, dist, f64(c, 2)), far, f64(c, 0)));
    ir_expr *i = ix_addk(c, i0, t - 1);
    if (r->exclude) {
      ir_expr *inside = ir_binop(c->arena, IR_AND, ir_binop(c->arena, IR_GE, i, k64(c, 0)),
                                 ir_binop(c->arena, IR_LT, i, n));
      w = ir_select_new(c->arena, inside, w, f64(c, 0));
      sum = sum ? fbin(c, IR_ADD, sum, w) : w;
    }
    idx[t] = ix_clamp(c, i, n);
    wt[t] = w;
  }
  if (r->exclude) /* renormalize the weights of the taps inside the input */
    for (int t = 0; t < 4; t++)
      wt[t] = ir_select_new(c->arena, fbin(c, IR_NE, sum, f64(c, 0)), fbin(c, IR_DIV, wt[t], sum),
                            wt[t]);
  return 4;
}

/* out[n, ch, oy, ox] = sum_j wy[j] * (sum_i wx[i] * x[n, ch, iy[j], ix[i]]). */
static ir_expr *resize_value(relay_lower_ctx *c, ir_var *const *it, void *ud) {
  const resize_info *r = ud;
  ir_expr *n = var_e(it[r->dl[0]]), *ch = var_e(it[r->dl[1]]);
  ir_expr *iy[4], *wy[4], *ix[4], *wx[4];
  int ny = resize_taps_expr(c, r, 0, var_e(it[r->dl[2]]), iy, wy);
  int nx = resize_taps_expr(c, r, 1, var_e(it[r->dl[3]]), ix, wx);
  if (r->method == RM_NEAREST)
    return cast_to(c, r->odt, load4(c, r->x, r->dl, n, ch, iy[0], ix[0]));
  ir_expr *acc = NULL;
  for (int j = 0; j < ny; j++) {
    ir_expr *row = NULL;
    for (int i = 0; i < nx; i++) {
      ir_expr *v = cast_to(c, r->vdt, load4(c, r->x, r->dl, n, ch, iy[j], ix[i]));
      ir_expr *term = ir_mul(c->arena, cast_to(c, r->vdt, wx[i]), v);
      row = row ? ir_add(c->arena, row, term) : term;
    }
    ir_expr *term = ir_mul(c->arena, cast_to(c, r->vdt, wy[j]), row);
    acc = acc ? ir_add(c->arena, acc, term) : term;
  }
  return cast_to(c, r->odt, acc);
}

static kiln_status lower_resize2d(relay_lower_ctx *c, int nargs, ir_buffer *const *args,
                                  relay_attr *const *attrs, int nouts, ir_buffer *const *outs) {
  kiln_status st = check_lower_arity(c, nargs, 1, nouts);
  if (st) return st;
  resize_info r = {.x = args[0], .odt = outs[0]->h.dtype, .alpha = attrs[RS_CUBIC_ALPHA]->f,
                   .exclude = attrs[RS_CUBIC_EXCLUDE]->i != 0,
                   .method = find_name(resize_methods, attrs[RS_METHOD]->s),
                   .mode = find_name(coord_modes, attrs[RS_COORD_MODE]->s),
                   .rounding = find_name(rounding_methods, attrs[RS_ROUNDING]->s)};
  layout_perm(attrs[RS_LAYOUT]->s, "NCHW", r.dl);
  if (r.rounding == RD_DEFAULT) r.rounding = r.mode == CM_ALIGN_CORNERS ? RD_ROUND : RD_FLOOR;
  for (int a = 0; a < 2; a++) {
    r.in[a] = args[0]->shape[r.dl[2 + a]];
    r.out[a] = attrs[RS_SIZE]->ints[a];
  }
  bool wide = ir_dt_is_float(r.odt) && r.odt.code == KILN_TYPE_FLOAT && r.odt.bits >= 32;
  r.vdt = wide ? r.odt : KILN_FLOAT64;
  return emit(c, NULL, outs[0], 0, NULL, RELAY_REDUCE_NONE, resize_value, &r);
}

/* ==== The table ========================================================================== */

#define ATTRS(a) (int)(sizeof a / sizeof a[0]), a

const relay_op relay_ops_nn[] = {
    {"nn.dense", 2, 2, RELAY_OUT_ELEMWISE_FUSABLE, ATTRS(dense_attrs), infer_dense, eval_dense,
     "x [..., K] times w [N, K] transposed (w [K, N] with weight_layout KN)", lower_dense},
    {"nn.matmul", 2, 2, RELAY_OUT_ELEMWISE_FUSABLE, ATTRS(matmul_attrs), infer_matmul, eval_matmul,
     "a [M, K] times b [K, N] (either transposed on request)", lower_matmul},
    {"nn.batch_matmul", 2, 2, RELAY_OUT_ELEMWISE_FUSABLE, ATTRS(batch_matmul_attrs),
     infer_batch_matmul, eval_batch_matmul,
     "x [B, M, K] times y [B, N, K] transposed, per batch (a batch of 1 broadcasts)",
     lower_batch_matmul},
    {"nn.conv2d", 2, 2, RELAY_OUT_ELEMWISE_FUSABLE, ATTRS(conv2d_attrs), infer_conv2d, eval_conv2d,
     "2-d convolution (strides, padding, dilation, groups; NCHW/NHWC)", lower_conv2d},
    {"nn.conv2d_transpose", 2, 2, RELAY_OUT_ELEMWISE_FUSABLE, ATTRS(conv2d_transpose_attrs),
     infer_conv2d_transpose, eval_conv2d_transpose,
     "transposed 2-d convolution (the gradient of conv2d; weight IOHW)", lower_conv2d_transpose},
    {"nn.bias_add", 2, 2, RELAY_BROADCAST, ATTRS(bias_add_attrs), infer_bias_add, eval_bias_add,
     "adds a 1-d bias along an axis", lower_bias_add},
    {"nn.batch_norm", 5, 5, RELAY_OPAQUE, ATTRS(batch_norm_attrs), infer_batch_norm,
     eval_batch_norm,
     "inference batch normalization with moving statistics (one result, not TVM's tuple)",
     lower_batch_norm},
    {"nn.layer_norm", 3, 3, RELAY_OPAQUE, ATTRS(layer_norm_attrs), infer_layer_norm,
     eval_layer_norm, "normalizes along an axis, then scales and shifts", lower_layer_norm},
    {"nn.softmax", 1, 1, RELAY_OPAQUE, ATTRS(softmax_attrs), infer_softmax, eval_softmax,
     "exp(x) / sum(exp(x)) along an axis", lower_softmax},
    {"nn.log_softmax", 1, 1, RELAY_OPAQUE, ATTRS(softmax_attrs), infer_softmax, eval_log_softmax,
     "log of softmax along an axis", lower_log_softmax},
    {"nn.max_pool2d", 1, 1, RELAY_OUT_ELEMWISE_FUSABLE, ATTRS(max_pool2d_attrs), infer_pool2d,
     eval_max_pool2d, "maximum over sliding windows of H and W", lower_max_pool2d},
    {"nn.avg_pool2d", 1, 1, RELAY_OUT_ELEMWISE_FUSABLE, ATTRS(avg_pool2d_attrs), infer_pool2d,
     eval_avg_pool2d, "average over sliding windows of H and W", lower_avg_pool2d},
    {"nn.global_avg_pool2d", 1, 1, RELAY_OUT_ELEMWISE_FUSABLE, ATTRS(global_pool_attrs),
     infer_global_pool, eval_global_avg_pool2d, "average over all of H and W",
     lower_global_avg_pool2d},
    {"nn.global_max_pool2d", 1, 1, RELAY_OUT_ELEMWISE_FUSABLE, ATTRS(global_pool_attrs),
     infer_global_pool, eval_global_max_pool2d, "maximum over all of H and W",
     lower_global_max_pool2d},
    {"nn.adaptive_avg_pool2d", 1, 1, RELAY_OUT_ELEMWISE_FUSABLE, ATTRS(adaptive_pool_attrs),
     infer_adaptive_pool, eval_adaptive_avg_pool2d,
     "average pooling to a given output size (PyTorch's windows)", lower_adaptive_avg_pool2d},
    {"nn.adaptive_max_pool2d", 1, 1, RELAY_OUT_ELEMWISE_FUSABLE, ATTRS(adaptive_pool_attrs),
     infer_adaptive_pool, eval_adaptive_max_pool2d,
     "max pooling to a given output size (PyTorch's windows)", lower_adaptive_max_pool2d},
    {"nn.pad", 1, 1, RELAY_INJECTIVE, ATTRS(pad_attrs), infer_pad, eval_pad,
     "pads every axis (constant, edge or reflect)", lower_pad},
    {"image.resize2d", 1, 1, RELAY_INJECTIVE, ATTRS(resize2d_attrs), infer_resize2d, eval_resize2d,
     "resizes H and W (nearest, linear or cubic)", lower_resize2d},
    {"nn.dropout", 1, 1, RELAY_ELEMWISE, ATTRS(dropout_attrs), infer_dropout, eval_dropout,
     "the identity at inference", lower_dropout},
};
const int relay_ops_nn_count = sizeof relay_ops_nn / sizeof relay_ops_nn[0];

/* onnx_ops.c: the ONNX converter table. Each entry maps an ONNX op (default domain) and an
 * opset range to a function that builds relay calls through onnx_call, which folds calls on
 * constants, so shape arithmetic (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) becomes
 * constants as soon as the shapes are known. With symbolic dimensions the same chains compute
 * on symbolic shape values (onnx.h): Shape, Gather, Slice, Squeeze, Unsqueeze, Concat, Cast,
 * Add, Sub, Mul and Div keep them symbolic, Reshape maps them onto 0 (copy) / -1 (infer).
 * Attributes that relay needs as constants (Reshape's shape, Slice's starts, ...) must be
 * constants after folding; otherwise the converter fails with KILN_ERR_UNSUPPORTED naming the
 * input. */
#define KILN_ONNX_INTERNAL
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "relay/frontend/onnx.h"

#define ARGS(...) (relay_expr *[]){__VA_ARGS__}
#define ATTRS(...) (relay_attr *[]){__VA_ARGS__}
#define NARGS(...) (int)(sizeof((relay_expr *[]){__VA_ARGS__}) / sizeof(relay_expr *))

/* The common failure of a converter: the constructor's error is on the context. */
static kiln_status fail_of(onnx_importer *imp) {
  kiln_context *ctx = onnx_ctx(imp);
  return ctx->code ? ctx->code : KILN_ERR_NOMEM;
}

/* Sets out[0] = e (NULL: the constructor's error). */
static kiln_status put(onnx_importer *imp, relay_expr **out, relay_expr *e) {
  out[0] = e;
  return e ? KILN_OK : fail_of(imp);
}

static kiln_status fail(onnx_importer *imp, kiln_status code, const char *msg) {
  return ir_fail(onnx_ctx(imp), IR_NO_SPAN, code, "%s", msg);
}

/* Checks that the inputs up to `need` are present. */
static kiln_status need_inputs(onnx_importer *imp, int nin, relay_expr *const *in, int need) {
  for (int i = 0; i < need; i++)
    if (i >= nin || !in[i])
      return ir_fail(onnx_ctx(imp), IR_NO_SPAN, KILN_ERR_CORRUPT, "input %d is missing", i);
  return KILN_OK;
}

static relay_expr *call1(onnx_importer *imp, const char *op, relay_expr *x, int nattrs,
                         relay_attr *const *attrs) {
  return onnx_call(imp, op, 1, &x, nattrs, attrs);
}

static relay_expr *call2(onnx_importer *imp, const char *op, relay_expr *x, relay_expr *y) {
  return onnx_call(imp, op, 2, ARGS(x, y), 0, NULL);
}

static ir_arena *A(onnx_importer *imp) { return onnx_arena(imp); }

static int ndim_of(const relay_expr *e) {
  const relay_type *t = relay_type_of(e);
  return t && t->kind == RELAY_TENSOR_TYPE ? ((const relay_tensor_type *)t)->ndim : -1;
}

static kiln_dtype dtype_of(const relay_expr *e) {
  const relay_type *t = relay_type_of(e);
  return t ? t->dtype : KILN_FLOAT32;
}

/* A scalar constant of x's dtype. */
static relay_expr *scalar_like(onnx_importer *imp, const relay_expr *x, double v) {
  return onnx_make_const(imp, dtype_of(x), 0, NULL, &v);
}

/* A "dtype" attribute naming t. */
static relay_attr *dtype_attr(onnx_importer *imp, kiln_dtype t) {
  char buf[32];
  return relay_attr_str(A(imp), "dtype", kiln_dtype_str(t, buf, sizeof buf));
}

/* ---- Elementwise -------------------------------------------------------------------------- */

#define UNARY_CONV(fname, relay_op)                                                            \
  static kiln_status fname(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin, \
                           relay_expr *const *in, int nout, relay_expr **out) {                \
    (void)node;                                                                                \
    (void)opset;                                                                               \
    (void)nout;                                                                                \
    kiln_status st = need_inputs(imp, nin, in, 1);                                             \
    return st ? st : put(imp, out, call1(imp, relay_op, in[0], 0, NULL));                      \
  }
UNARY_CONV(conv_relu, "nn.relu")
UNARY_CONV(conv_sigmoid, "sigmoid")
UNARY_CONV(conv_tanh, "tanh")
UNARY_CONV(conv_erf, "erf")
UNARY_CONV(conv_sqrt, "sqrt")
UNARY_CONV(conv_exp, "exp")
UNARY_CONV(conv_log, "log")
UNARY_CONV(conv_neg, "negative")
UNARY_CONV(conv_abs, "abs")
UNARY_CONV(conv_floor, "floor")
UNARY_CONV(conv_ceil, "ceil")
UNARY_CONV(conv_not, "logical_not")
UNARY_CONV(conv_hardswish, "hard_swish")

#define BINARY_CONV(fname, relay_op)                                                           \
  static kiln_status fname(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin, \
                           relay_expr *const *in, int nout, relay_expr **out) {                \
    (void)node;                                                                                \
    (void)opset;                                                                               \
    (void)nout;                                                                                \
    kiln_status st = need_inputs(imp, nin, in, 2);                                             \
    return st ? st : put(imp, out, call2(imp, relay_op, in[0], in[1]));                        \
  }
BINARY_CONV(conv_equal, "equal")
BINARY_CONV(conv_less, "less")
BINARY_CONV(conv_greater, "greater")
BINARY_CONV(conv_and, "logical_and")
BINARY_CONV(conv_or, "logical_or")

/* ---- Symbolic shape values (see onnx.h) ------------------------------------------------------ */

static const onnx_shape_value *symbolic(onnx_importer *imp, const relay_expr *e) {
  return onnx_shape_value_of(imp, e);
}

/* An error about the shape value sv used by this node ("Reshape: ..."). */
static kiln_status shape_fail(onnx_importer *imp, kiln_status code, const onnx_shape_value *sv,
                              const char *fmt, const char *what) {
  char text[256], sym[96];
  return ir_fail(onnx_ctx(imp), IR_NO_SPAN, code, fmt, what, onnx_shape_value_str(sv, text, sizeof text),
                 onnx_shape_value_symbolic(sv, sym, sizeof sym));
}

/* Add / Sub / Mul / Div on shape values (numpy broadcasting of ranks <= 1). Integer division
 * of operands that are provably >= 0 is floordiv (it equals the truncation ONNX and relay's
 * divide do there), else truncating div. Only reached when an operand is symbolic. */
static kiln_status shape_arith(onnx_importer *imp, int kind, relay_expr *const *in, relay_expr **out) {
  onnx_shape_value x, y;
  const onnx_shape_value *sx = symbolic(imp, in[0]), *sy = symbolic(imp, in[1]);
  const onnx_shape_value *s = sx ? sx : sy;
  if (!onnx_as_shape_value(imp, in[0], &x) || !onnx_as_shape_value(imp, in[1], &y))
    return shape_fail(imp, KILN_ERR_UNSUPPORTED, s,
                      "%s: the shape value %s (symbolic element %s) can only be combined with "
                      "small integer constants", "shape arithmetic");
  if (!ir_dt_eq(x.dtype, y.dtype))
    return fail(imp, KILN_ERR_TYPE, "shape arithmetic on operands of different integer types");
  if (x.n != y.n && x.n != 1 && y.n != 1)
    return ir_fail(onnx_ctx(imp), IR_NO_SPAN, KILN_ERR_SHAPE,
                   "shape arithmetic on vectors of %d and %d elements", x.n, y.n);
  int n = x.n > y.n ? x.n : y.n, rank = x.rank > y.rank ? x.rank : y.rank;
  ir_expr *r[ONNX_MAX_SHAPE_ELEMS];
  for (int i = 0; i < n; i++) {
    ir_expr *a = x.elems[x.n == 1 ? 0 : i], *b = y.elems[y.n == 1 ? 0 : i];
    int k = kind;
    if (k == IR_DIV) {
      int64_t v;
      if (relay_dim_const(b, &v) && v == 0) return fail(imp, KILN_ERR_SHAPE, "shape arithmetic divides by 0");
      if (onnx_dim_nonneg(imp, a) && onnx_dim_nonneg(imp, b)) k = IR_FLOORDIV;
    }
    if (!(r[i] = onnx_dim_binop(imp, k, a, b))) return fail_of(imp);
  }
  return put(imp, out, onnx_shape_value_new(imp, x.dtype, rank, n, r));
}

#define ARITH_CONV(fname, relay_op, ir_kind)                                                    \
  static kiln_status fname(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin, \
                           relay_expr *const *in, int nout, relay_expr **out) {                \
    (void)node, (void)opset, (void)nout;                                                       \
    kiln_status st = need_inputs(imp, nin, in, 2);                                             \
    if (st) return st;                                                                         \
    if (symbolic(imp, in[0]) || symbolic(imp, in[1])) return shape_arith(imp, ir_kind, in, out); \
    return put(imp, out, call2(imp, relay_op, in[0], in[1]));                                  \
  }
ARITH_CONV(conv_add, "add", IR_ADD)
ARITH_CONV(conv_sub, "subtract", IR_SUB)
ARITH_CONV(conv_mul, "multiply", IR_MUL)
ARITH_CONV(conv_div, "divide", IR_DIV)

/* Max / Min take any number of inputs. */
static kiln_status fold_binary(onnx_importer *imp, const char *op, int nin, relay_expr *const *in,
                               relay_expr **out) {
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  relay_expr *acc = in[0];
  for (int i = 1; i < nin && acc; i++) acc = call2(imp, op, acc, in[i]);
  return put(imp, out, acc);
}

static kiln_status conv_max(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                            relay_expr *const *in, int nout, relay_expr **out) {
  (void)node, (void)opset, (void)nout;
  return fold_binary(imp, "maximum", nin, in, out);
}

static kiln_status conv_min(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                            relay_expr *const *in, int nout, relay_expr **out) {
  (void)node, (void)opset, (void)nout;
  return fold_binary(imp, "minimum", nin, in, out);
}

/* Pow: ONNX allows the exponent's type to differ; relay does not, so it is cast. */
static kiln_status conv_pow(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                            relay_expr *const *in, int nout, relay_expr **out) {
  (void)node, (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 2);
  if (st) return st;
  relay_expr *y = in[1];
  kiln_dtype xt = dtype_of(in[0]);
  if (!ir_dt_eq(xt, dtype_of(y)))
    y = call1(imp, "cast", y, 1, ATTRS(dtype_attr(imp, xt)));
  return put(imp, out, y ? call2(imp, "power", in[0], y) : NULL);
}

static kiln_status conv_identity(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                                 int nin, relay_expr *const *in, int nout, relay_expr **out) {
  (void)node, (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  out[0] = in[0];
  return KILN_OK;
}

/* Dropout at inference is the identity; the optional mask output is not produced. */
static kiln_status conv_dropout(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                                int nin, relay_expr *const *in, int nout, relay_expr **out) {
  (void)node, (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  out[0] = in[0];
  return KILN_OK;
}

/* Clip: bounds as attributes before opset 11, as optional inputs since. Constant bounds give
 * relay's clip; computed ones maximum/minimum. */
static kiln_status conv_clip(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                             relay_expr *const *in, int nout, relay_expr **out) {
  (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  double lo = -INFINITY, hi = INFINITY;
  relay_expr *x = in[0];
  if (opset < 11) {
    lo = onnx_attr_float(node, "min", lo);
    hi = onnx_attr_float(node, "max", hi);
  } else {
    for (int k = 1; k <= 2 && x; k++) {
      if (k >= nin || !in[k]) continue;
      int n;
      double *v;
      if (in[k]->kind == RELAY_CONST && !onnx_const_floats(imp, in[k], "the bound of Clip", &n, &v) && n == 1) {
        if (k == 1) lo = v[0];
        else hi = v[0];
      } else {
        x = call2(imp, k == 1 ? "maximum" : "minimum", x, in[k]);
      }
    }
  }
  if (x && (lo != -INFINITY || hi != INFINITY))
    x = call1(imp, "clip", x, 2,
              ATTRS(relay_attr_float(A(imp), "a_min", lo), relay_attr_float(A(imp), "a_max", hi)));
  return put(imp, out, x);
}

/* HardSigmoid: max(0, min(1, alpha * x + beta)); PyTorch's (alpha 1/6, beta 0.5) is relay's
 * hard_sigmoid. */
static kiln_status conv_hardsigmoid(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                                    int nin, relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  double alpha = onnx_attr_float(node, "alpha", 0.2), beta = onnx_attr_float(node, "beta", 0.5);
  if (fabs(alpha - 1.0 / 6) < 1e-6 && beta == 0.5)
    return put(imp, out, call1(imp, "hard_sigmoid", in[0], 0, NULL));
  relay_expr *a = scalar_like(imp, in[0], alpha), *b = scalar_like(imp, in[0], beta);
  relay_expr *y = a && b ? call2(imp, "multiply", in[0], a) : NULL;
  y = y ? call2(imp, "add", y, b) : NULL;
  y = y ? call1(imp, "clip", y, 2,
                ATTRS(relay_attr_float(A(imp), "a_min", 0), relay_attr_float(A(imp), "a_max", 1)))
        : NULL;
  return put(imp, out, y);
}

static kiln_status conv_leakyrelu(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                                  int nin, relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  double alpha = onnx_attr_float(node, "alpha", 0.01);
  return put(imp, out, call1(imp, "nn.leaky_relu", in[0], 1, ATTRS(relay_attr_float(A(imp), "alpha", alpha))));
}

static kiln_status conv_where(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                              relay_expr *const *in, int nout, relay_expr **out) {
  (void)node, (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 3);
  return st ? st : put(imp, out, onnx_call(imp, "where", 3, ARGS(in[0], in[1], in[2]), 0, NULL));
}

static kiln_status conv_cast(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                             relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  kiln_dtype t;
  int64_t to = onnx_attr_int(node, "to", 0);
  if (!onnx_elem_dtype((int32_t)to, &t))
    return ir_fail(onnx_ctx(imp), IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "Cast to ONNX type %lld is not supported",
                   (long long)to);
  const onnx_shape_value *sv = onnx_shape_value_of(imp, in[0]);
  if (sv) {
    /* a shape value stays one under an integer type (its elements are sizes) */
    if (t.code != KILN_TYPE_INT && t.code != KILN_TYPE_UINT) {
      char buf[32];
      char what[64];
      snprintf(what, sizeof what, "Cast to %s", kiln_dtype_str(t, buf, sizeof buf));
      return shape_fail(imp, KILN_ERR_UNSUPPORTED, sv,
                        "%s: the shape value %s has the symbolic element %s; only casts to integer "
                        "types keep it symbolic", what);
    }
    return put(imp, out, onnx_shape_value_new(imp, t, sv->rank, sv->n, sv->elems));
  }
  return put(imp, out, call1(imp, "cast", in[0], 1, ATTRS(dtype_attr(imp, t))));
}

/* ---- Convolution and pooling -------------------------------------------------------------- */

/* Reads the 2-d window attributes shared by Conv and the pools: kernel (from the attribute, or
 * `kernel` when given), strides, dilations and pads (top, left, bottom, right), resolving
 * auto_pad SAME_UPPER / SAME_LOWER / VALID from the input's constant spatial size. */
typedef struct window {
  int64_t kernel[2], strides[2], dilations[2], pads[4];
} window;

static kiln_status read_window(onnx_importer *imp, const Onnx__NodeProto *node, relay_expr *x,
                               const int64_t *kernel, window *w) {
  kiln_context *ctx = onnx_ctx(imp);
  int n;
  const int64_t *v;
  if (ndim_of(x) != 4)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "only 2-d windows (4-d NCHW inputs) are supported, the input has %d dimensions",
                   ndim_of(x));
  for (int i = 0; i < 2; i++) w->strides[i] = w->dilations[i] = 1;
  memset(w->pads, 0, sizeof w->pads);
  if (kernel) memcpy(w->kernel, kernel, sizeof w->kernel);
  else if (!onnx_attr_ints(node, "kernel_shape", &n, &v) || n != 2)
    return fail(imp, KILN_ERR_CORRUPT, "kernel_shape must have 2 entries");
  else memcpy(w->kernel, v, sizeof w->kernel);
  if (onnx_attr_ints(node, "strides", &n, &v)) {
    if (n != 2) return fail(imp, KILN_ERR_CORRUPT, "strides must have 2 entries");
    memcpy(w->strides, v, sizeof w->strides);
  }
  if (onnx_attr_ints(node, "dilations", &n, &v)) {
    if (n != 2) return fail(imp, KILN_ERR_CORRUPT, "dilations must have 2 entries");
    memcpy(w->dilations, v, sizeof w->dilations);
  }
  if (onnx_attr_ints(node, "pads", &n, &v)) {
    if (n != 4) return fail(imp, KILN_ERR_CORRUPT, "pads must have 4 entries");
    memcpy(w->pads, v, sizeof w->pads); /* ONNX: x1_begin, x2_begin, x1_end, x2_end */
  }
  for (int i = 0; i < 2; i++)
    if (w->strides[i] < 1 || w->dilations[i] < 1 || w->kernel[i] < 1)
      return fail(imp, KILN_ERR_CORRUPT, "kernel_shape, strides and dilations must be positive");
  const char *ap = onnx_attr_str(node, "auto_pad", "NOTSET");
  if (strcmp(ap, "NOTSET") == 0) return KILN_OK;
  memset(w->pads, 0, sizeof w->pads);
  if (strcmp(ap, "VALID") == 0) return KILN_OK;
  bool upper = strcmp(ap, "SAME_UPPER") == 0;
  if (!upper && strcmp(ap, "SAME_LOWER") != 0)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "auto_pad '%s' is not supported", ap);
  int nd;
  int64_t shape[RELAY_MAX_DIMS];
  kiln_status st = onnx_static_shape(imp, x, "the input of a SAME-padded window", &nd, shape);
  if (st) return st;
  for (int i = 0; i < 2; i++) {
    int64_t in = shape[2 + i], outd = (in + w->strides[i] - 1) / w->strides[i];
    int64_t total = (outd - 1) * w->strides[i] + (w->kernel[i] - 1) * w->dilations[i] + 1 - in;
    if (total < 0) total = 0;
    w->pads[i] = upper ? total / 2 : total - total / 2;
    w->pads[2 + i] = total - w->pads[i];
  }
  return KILN_OK;
}

static kiln_status conv_conv(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                             relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 2);
  if (st) return st;
  const relay_tensor_type *wt = onnx_tensor_type(imp, in[1], "the weight");
  if (!wt) return KILN_ERR_TYPE;
  int64_t kernel[2];
  if (wt->ndim != 4 || !relay_dim_const(wt->shape[2], &kernel[0]) || !relay_dim_const(wt->shape[3], &kernel[1]))
    return fail(imp, KILN_ERR_UNSUPPORTED, "only 2-d convolutions with a constant 4-d weight shape are supported");
  window w;
  int n;
  const int64_t *ks;
  if ((st = read_window(imp, node, in[0], onnx_attr_ints(node, "kernel_shape", &n, &ks) ? NULL : kernel, &w)))
    return st;
  ir_arena *a = A(imp);
  relay_expr *y = onnx_call(imp, "nn.conv2d", 2, ARGS(in[0], in[1]), 4,
                            ATTRS(relay_attr_ints(a, "strides", 2, w.strides),
                                  relay_attr_ints(a, "padding", 4, w.pads),
                                  relay_attr_ints(a, "dilation", 2, w.dilations),
                                  relay_attr_int(a, "groups", onnx_attr_int(node, "group", 1))));
  if (y && nin > 2 && in[2])
    y = onnx_call(imp, "nn.bias_add", 2, ARGS(y, in[2]), 1, ATTRS(relay_attr_int(a, "axis", 1)));
  return put(imp, out, y);
}

static kiln_status pool(onnx_importer *imp, const Onnx__NodeProto *node, int nin,
                        relay_expr *const *in, relay_expr **out, bool is_max) {
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  window w;
  if ((st = read_window(imp, node, in[0], NULL, &w))) return st;
  ir_arena *a = A(imp);
  relay_attr *attrs[6] = {relay_attr_ints(a, "pool_size", 2, w.kernel),
                          relay_attr_ints(a, "strides", 2, w.strides),
                          relay_attr_ints(a, "padding", 4, w.pads),
                          relay_attr_int(a, "ceil_mode", onnx_attr_int(node, "ceil_mode", 0)),
                          is_max ? relay_attr_ints(a, "dilation", 2, w.dilations)
                                 : relay_attr_int(a, "count_include_pad",
                                                  onnx_attr_int(node, "count_include_pad", 0))};
  return put(imp, out, call1(imp, is_max ? "nn.max_pool2d" : "nn.avg_pool2d", in[0], 5, attrs));
}

static kiln_status conv_maxpool(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                                relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset;
  if (nout > 1 && node->output[1] && *node->output[1])
    return fail(imp, KILN_ERR_UNSUPPORTED, "MaxPool's Indices output is not supported");
  return pool(imp, node, nin, in, out, true);
}

static kiln_status conv_avgpool(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                                relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  return pool(imp, node, nin, in, out, false);
}

static kiln_status conv_gap(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                            relay_expr *const *in, int nout, relay_expr **out) {
  (void)node, (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  return st ? st : put(imp, out, call1(imp, "nn.global_avg_pool2d", in[0], 0, NULL));
}

static kiln_status conv_gmp(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                            relay_expr *const *in, int nout, relay_expr **out) {
  (void)node, (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  return st ? st : put(imp, out, call1(imp, "nn.global_max_pool2d", in[0], 0, NULL));
}

static kiln_status conv_batchnorm(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                                  int nin, relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 5);
  if (st) return st;
  if (onnx_attr_int(node, "training_mode", 0))
    return fail(imp, KILN_ERR_UNSUPPORTED, "BatchNormalization in training mode is not supported");
  ir_arena *a = A(imp);
  return put(imp, out,
             onnx_call(imp, "nn.batch_norm", 5, ARGS(in[0], in[1], in[2], in[3], in[4]), 2,
                       ATTRS(relay_attr_int(a, "axis", 1),
                             relay_attr_float(a, "epsilon", onnx_attr_float(node, "epsilon", 1e-5)))));
}

/* LayerNormalization (opset 17) over the last axis. A missing bias is zeros (center = 0 with
 * the scale standing in as the unused beta). */
static kiln_status conv_layernorm(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                                  int nin, relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset;
  kiln_status st = need_inputs(imp, nin, in, 2);
  if (st) return st;
  if (nout > 1)
    for (int i = 1; i < nout; i++)
      if (node->output[i] && *node->output[i])
        return fail(imp, KILN_ERR_UNSUPPORTED, "LayerNormalization's Mean / InvStdDev outputs are not supported");
  int nd = ndim_of(in[0]);
  int64_t axis = onnx_attr_int(node, "axis", -1);
  if (axis < 0) axis += nd;
  if (axis != nd - 1)
    return fail(imp, KILN_ERR_UNSUPPORTED, "LayerNormalization is supported over the last axis only");
  ir_arena *a = A(imp);
  bool has_bias = nin > 2 && in[2];
  return put(imp, out,
             onnx_call(imp, "nn.layer_norm", 3, ARGS(in[0], in[1], has_bias ? in[2] : in[1]), 3,
                       ATTRS(relay_attr_int(a, "axis", -1),
                             relay_attr_float(a, "epsilon", onnx_attr_float(node, "epsilon", 1e-5)),
                             relay_attr_int(a, "center", has_bias))));
}

/* Softmax: since opset 13 along one axis (default -1); before, over the flattened axes from
 * `axis` (default 1) on, which is the same when axis is the last one. */
static kiln_status conv_softmax(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                                int nin, relay_expr *const *in, int nout, relay_expr **out) {
  (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  int nd = ndim_of(in[0]);
  int64_t axis = onnx_attr_int(node, "axis", opset >= 13 ? -1 : 1);
  if (axis < 0) axis += nd;
  if (opset < 13 && axis != nd - 1)
    return fail(imp, KILN_ERR_UNSUPPORTED,
                "Softmax before opset 13 is supported over the last axis only");
  return put(imp, out, call1(imp, "nn.softmax", in[0], 1, ATTRS(relay_attr_int(A(imp), "axis", axis))));
}

/* ---- Dense and matrix products -------------------------------------------------------------- */

static relay_expr *transpose2(onnx_importer *imp, relay_expr *x) {
  int64_t axes[2] = {1, 0};
  return call1(imp, "transpose", x, 1, ATTRS(relay_attr_ints(A(imp), "axes", 2, axes)));
}

/* Gemm: alpha * A' * B' + beta * C as nn.dense (B' taken as [N, K]) plus the bias. */
static kiln_status conv_gemm(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                             relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 2);
  if (st) return st;
  if (ndim_of(in[0]) != 2 || ndim_of(in[1]) != 2)
    return fail(imp, KILN_ERR_SHAPE, "Gemm needs 2-d A and B");
  double alpha = onnx_attr_float(node, "alpha", 1), beta = onnx_attr_float(node, "beta", 1);
  relay_expr *x = onnx_attr_int(node, "transA", 0) ? transpose2(imp, in[0]) : in[0];
  relay_expr *w = onnx_attr_int(node, "transB", 0) ? in[1] : transpose2(imp, in[1]);
  relay_expr *y = x && w ? call2(imp, "nn.dense", x, w) : NULL;
  if (y && alpha != 1) y = call2(imp, "multiply", y, scalar_like(imp, y, alpha));
  if (y && nin > 2 && in[2] && beta != 0) {
    relay_expr *c = beta == 1 ? in[2] : call2(imp, "multiply", in[2], scalar_like(imp, in[2], beta));
    y = c ? call2(imp, "add", y, c) : NULL;
  }
  return put(imp, out, y);
}

/* A reshape to a list of dimensions (0 copies, -1 infers). */
static relay_expr *reshape(onnx_importer *imp, relay_expr *x, int n, const int64_t *shape) {
  if (!x) return NULL;
  return call1(imp, "reshape", x, 1, ATTRS(relay_attr_ints(A(imp), "newshape", n, shape)));
}

/* MatMul with numpy semantics: 2-d x 2-d is nn.matmul; [..., M, K] x [K, N] is nn.dense with
 * the weight transposed; two batched operands with equal batch dimensions go through
 * nn.batch_matmul on [B, M, K] x [B, K, N] and are reshaped back. */
static kiln_status conv_matmul(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                               relay_expr *const *in, int nout, relay_expr **out) {
  (void)node, (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 2);
  if (st) return st;
  const relay_tensor_type *at = onnx_tensor_type(imp, in[0], "A"), *bt = at ? onnx_tensor_type(imp, in[1], "B") : NULL;
  if (!bt) return KILN_ERR_TYPE;
  if (at->ndim < 2 || bt->ndim < 2)
    return fail(imp, KILN_ERR_UNSUPPORTED, "MatMul with a 1-d operand is not supported");
  if (at->ndim == 2 && bt->ndim == 2) return put(imp, out, call2(imp, "nn.matmul", in[0], in[1]));
  if (bt->ndim == 2) {
    relay_expr *w = transpose2(imp, in[1]);
    return put(imp, out, w ? call2(imp, "nn.dense", in[0], w) : NULL);
  }
  if (at->ndim != bt->ndim)
    return fail(imp, KILN_ERR_UNSUPPORTED, "batched MatMul needs operands of the same rank");
  /* the result's shape: the batch dimensions (one symbolic at most), M, N */
  int r = at->ndim, nsym = 0;
  int64_t oshape[RELAY_MAX_DIMS];
  int64_t m, n;
  for (int i = 0; i < r - 2; i++)
    if (!relay_dim_const(at->shape[i], &oshape[i])) {
      oshape[i] = -1;
      nsym++;
    }
  if (nsym > 1 || !relay_dim_const(at->shape[r - 2], &m) || !relay_dim_const(bt->shape[r - 1], &n))
    return fail(imp, KILN_ERR_UNSUPPORTED, "batched MatMul needs constant M, N and at most one symbolic batch dimension");
  oshape[r - 2] = m;
  oshape[r - 1] = n;
  relay_expr *a3 = in[0], *b3 = in[1];
  if (r > 3) {
    int64_t sa[3] = {-1, 0, 0}, sb[3] = {-1, 0, 0};
    /* 0 copies the dimension at the same position: for rank > 3 give M, K / K, N explicitly */
    int64_t k;
    if (!relay_dim_const(at->shape[r - 1], &k))
      return fail(imp, KILN_ERR_UNSUPPORTED, "batched MatMul needs a constant K");
    sa[1] = m, sa[2] = k, sb[1] = k, sb[2] = n;
    a3 = reshape(imp, in[0], 3, sa);
    b3 = reshape(imp, in[1], 3, sb);
  }
  relay_expr *y = a3 && b3 ? onnx_call(imp, "nn.batch_matmul", 2, ARGS(a3, b3), 1,
                                       ATTRS(relay_attr_int(A(imp), "transpose_b", 0)))
                           : NULL;
  if (y && r > 3) y = reshape(imp, y, r, oshape);
  return put(imp, out, y);
}

/* ---- Shapes and data movement ---------------------------------------------------------------- */

/* Axes from the attribute (before `input_from`) or from the optional constant input idx. */
static kiln_status read_axes(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                             int input_from, int nin, relay_expr *const *in, int idx, int *n,
                             int64_t **axes) {
  *n = 0;
  *axes = NULL;
  if (opset < input_from) {
    const int64_t *v;
    if (!onnx_attr_ints(node, "axes", n, &v)) return KILN_OK;
    if (!(*axes = ir_arena_alloc(A(imp), sizeof(int64_t) * (size_t)(*n + 1)))) return KILN_ERR_NOMEM;
    memcpy(*axes, v, sizeof(int64_t) * (size_t)*n);
    return KILN_OK;
  }
  if (idx >= nin || !in[idx]) return KILN_OK;
  return onnx_const_ints(imp, in[idx], "the axes input", n, axes);
}

static kiln_status conv_flatten(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                                int nin, relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  int nd = ndim_of(in[0]);
  int64_t axis = onnx_attr_int(node, "axis", 1);
  if (axis < 0) axis += nd;
  if (axis < 0 || axis > nd) return fail(imp, KILN_ERR_SHAPE, "Flatten's axis is out of range");
  if (axis == 1 && nd >= 2) return put(imp, out, call1(imp, "nn.batch_flatten", in[0], 0, NULL));
  /* (prod(dims before axis), prod(dims from axis)); with symbolic dims on one side only,
   * that side becomes -1 (inferred) */
  const relay_tensor_type *tt = onnx_tensor_type(imp, in[0], "the input of Flatten");
  if (!tt) return KILN_ERR_TYPE;
  int64_t s[2] = {1, 1}, v;
  bool sym[2] = {false, false};
  for (int i = 0; i < nd; i++) {
    if (relay_dim_const(tt->shape[i], &v)) s[i >= axis] *= v;
    else sym[i >= axis] = true;
  }
  if (sym[0] && sym[1]) {
    char buf[160];
    return ir_fail(onnx_ctx(imp), IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "Flatten at axis %lld of the shape %s: both sides have symbolic dimensions",
                   (long long)axis, relay_shape_str(tt, buf, sizeof buf));
  }
  if (sym[0]) s[0] = -1;
  if (sym[1]) s[1] = -1;
  return put(imp, out, reshape(imp, in[0], 2, s));
}

/* Reshape to a symbolic shape value. relay's newshape holds integers only, so each element
 * is mapped: a constant stays (0 copies, -1 infers, as ONNX says without allowzero), an element
 * equal to the input's dimension at the same position becomes 0 (copy), and one remaining
 * symbolic element becomes -1 (infer), which must then equal the inferred dimension. */
static kiln_status reshape_symbolic(onnx_importer *imp, const Onnx__NodeProto *node, relay_expr *x,
                                    const onnx_shape_value *sv, relay_expr **out) {
  const relay_tensor_type *xt = onnx_tensor_type(imp, x, "Reshape's data");
  if (!xt) return KILN_ERR_TYPE;
  if (sv->rank != 1 || sv->n > RELAY_MAX_DIMS)
    return fail(imp, KILN_ERR_UNSUPPORTED, "Reshape's shape must be a 1-d vector of at most 8 elements");
  bool allowzero = onnx_attr_int(node, "allowzero", 0) != 0;
  int64_t ns[RELAY_MAX_DIMS];
  int ninfer = 0, sym_infer = -1;
  for (int i = 0; i < sv->n; i++) {
    ir_expr *e = sv->elems[i];
    if (relay_dim_const(e, &ns[i])) {
      if (ns[i] == 0 && allowzero)
        return fail(imp, KILN_ERR_UNSUPPORTED, "Reshape with allowzero = 1 and a 0 in the shape is not supported");
      ninfer += ns[i] == -1;
    } else if (i < xt->ndim && onnx_dim_equal(imp, e, xt->shape[i])) {
      ns[i] = 0;
    } else {
      ns[i] = -1;
      ninfer++;
      if (sym_infer < 0) sym_infer = i;
    }
  }
  if (ninfer > 1 && sym_infer >= 0) {
    char text[256], dim[96];
    return ir_fail(onnx_ctx(imp), IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "Reshape: the shape %s has more than one element to infer (the symbolic element "
                   "%s is not the input's dimension %d, and relay's reshape infers one -1 only)",
                   onnx_shape_value_str(sv, text, sizeof text),
                   relay_dim_str(sv->elems[sym_infer], dim, sizeof dim), sym_infer);
  }
  relay_expr *y = reshape(imp, x, sv->n, ns);
  if (!y) return fail_of(imp);
  /* the inferred dimension must be the symbolic element it stands for */
  const relay_tensor_type *yt = onnx_tensor_type(imp, y, "Reshape's result");
  if (!yt) return KILN_ERR_TYPE;
  for (int i = 0; i < sv->n; i++) {
    int64_t v;
    if (relay_dim_const(sv->elems[i], &v) || ns[i] != -1) continue;
    if (!onnx_dim_equal(imp, yt->shape[i], sv->elems[i])) {
      char text[256], dim[96], got[96];
      return ir_fail(onnx_ctx(imp), IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                     "Reshape: the shape %s has the symbolic element %s, which is neither the input's "
                     "dimension %d nor provably the remaining size %s",
                     onnx_shape_value_str(sv, text, sizeof text), relay_dim_str(sv->elems[i], dim, sizeof dim), i,
                     relay_dim_str(yt->shape[i], got, sizeof got));
    }
  }
  return put(imp, out, y);
}

static kiln_status conv_reshape(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                                int nin, relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 2);
  if (st) return st;
  const onnx_shape_value *sv = symbolic(imp, in[1]);
  if (sv) return reshape_symbolic(imp, node, in[0], sv, out);
  int n;
  int64_t *shape;
  if ((st = onnx_const_ints(imp, in[1], "Reshape's shape input", &n, &shape))) return st;
  if (onnx_attr_int(node, "allowzero", 0))
    for (int i = 0; i < n; i++)
      if (shape[i] == 0)
        return fail(imp, KILN_ERR_UNSUPPORTED, "Reshape with allowzero = 1 and a 0 in the shape is not supported");
  return put(imp, out, reshape(imp, in[0], n, shape));
}

static kiln_status conv_transpose(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                                  int nin, relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  int n;
  const int64_t *perm;
  onnx_attr_ints(node, "perm", &n, &perm);
  return put(imp, out, call1(imp, "transpose", in[0], 1, ATTRS(relay_attr_ints(A(imp), "axes", n, perm))));
}

static kiln_status conv_concat(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                               relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, nin > 0 ? nin : 1);
  if (st) return st;
  const onnx_shape_value *sym = NULL;
  for (int i = 0; i < nin && !sym; i++) sym = symbolic(imp, in[i]);
  if (sym) { /* shape values joined along axis 0 */
    int64_t axis = onnx_attr_int(node, "axis", 0);
    ir_expr *r[ONNX_MAX_SHAPE_ELEMS];
    int m = 0;
    onnx_shape_value v = {KILN_INT64, 1, 0, NULL};
    for (int i = 0; i < nin; i++) {
      if (!onnx_as_shape_value(imp, in[i], &v) || v.rank != 1 || (axis != 0 && axis != -1))
        return shape_fail(imp, KILN_ERR_UNSUPPORTED, sym,
                          "%s: the shape value %s (symbolic element %s) can only be joined with "
                          "1-d integer vectors along axis 0", "Concat");
      if (m + v.n > ONNX_MAX_SHAPE_ELEMS) return fail(imp, KILN_ERR_UNSUPPORTED, "Concat: the shape value is too long");
      for (int k = 0; k < v.n; k++) r[m++] = v.elems[k];
    }
    return put(imp, out, onnx_shape_value_new(imp, sym->dtype, 1, m, r));
  }
  return put(imp, out, onnx_call(imp, "concatenate", nin, in, 1,
                                 ATTRS(relay_attr_int(A(imp), "axis", onnx_attr_int(node, "axis", 0)))));
}

/* Split: sizes from the attribute (< 13) or the input (>= 13); none: equal parts, one per
 * output. */
static kiln_status conv_split(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                              relay_expr *const *in, int nout, relay_expr **out) {
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  int n = 0;
  int64_t *sizes = NULL;
  if (opset < 13) {
    const int64_t *v;
    if (onnx_attr_ints(node, "split", &n, &v)) {
      if (!(sizes = ir_arena_alloc(A(imp), sizeof(int64_t) * (size_t)(n + 1)))) return KILN_ERR_NOMEM;
      memcpy(sizes, v, sizeof(int64_t) * (size_t)n);
    }
  } else if (nin > 1 && in[1] && (st = onnx_const_ints(imp, in[1], "Split's split input", &n, &sizes))) {
    return st;
  }
  ir_arena *a = A(imp);
  relay_attr *how;
  if (n) {
    if (n != nout) return fail(imp, KILN_ERR_CORRUPT, "Split has a different number of sizes and outputs");
    int64_t *points = ir_arena_alloc(a, sizeof(int64_t) * (size_t)n);
    if (!points) return KILN_ERR_NOMEM;
    for (int i = 0; i + 1 < n; i++) points[i] = (i ? points[i - 1] : 0) + sizes[i];
    how = relay_attr_ints(a, "indices", n - 1, points);
  } else {
    how = relay_attr_int(a, "sections", nout);
  }
  relay_expr *t = call1(imp, "split", in[0], 2, ATTRS(how, relay_attr_int(a, "axis", onnx_attr_int(node, "axis", 0))));
  if (!t) return fail_of(imp);
  for (int i = 0; i < nout; i++)
    if (!(out[i] = onnx_proj(imp, t, i))) return fail_of(imp);
  return KILN_OK;
}

/* Slice of a symbolic shape value: one range along axis 0, clamped as ONNX says (for a
 * negative step, start within [0, n - 1] and end within [-1, n - 1]). */
static kiln_status slice_shape(onnx_importer *imp, const onnx_shape_value *sv, int k,
                               const int64_t *b, const int64_t *e, const int64_t *ax,
                               const int64_t *steps, relay_expr **out) {
  if (sv->rank != 1 || k != 1 || (ax && ax[0] != 0 && ax[0] != -1))
    return fail(imp, KILN_ERR_UNSUPPORTED, "Slice of a shape value needs one range along axis 0");
  int64_t n = sv->n, step = steps ? steps[0] : 1, start = b[0], end = e[0];
  if (step == 0) return fail(imp, KILN_ERR_CORRUPT, "Slice's step is 0");
  if (start < 0) start += n;
  if (end < 0) end += n;
  if (step > 0) {
    start = start < 0 ? 0 : start > n ? n : start;
    end = end < 0 ? 0 : end > n ? n : end;
  } else {
    start = start < 0 ? 0 : start > n - 1 ? n - 1 : start;
    end = end < -1 ? -1 : end > n - 1 ? n - 1 : end;
  }
  ir_expr *r[ONNX_MAX_SHAPE_ELEMS];
  int m = 0;
  for (int64_t i = start; step > 0 ? i < end : i > end; i += step) r[m++] = sv->elems[i];
  return put(imp, out, onnx_shape_value_new(imp, sv->dtype, 1, m, r));
}

/* Slice (opset >= 10): starts, ends and the optional axes and steps are constant inputs. */
static kiln_status conv_slice(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                              relay_expr *const *in, int nout, relay_expr **out) {
  (void)node, (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 3);
  if (st) return st;
  int nb, ne, na = 0, ns = 0;
  int64_t *b, *e, *ax = NULL, *steps = NULL;
  if ((st = onnx_const_ints(imp, in[1], "Slice's starts", &nb, &b)) ||
      (st = onnx_const_ints(imp, in[2], "Slice's ends", &ne, &e)) ||
      (nin > 3 && in[3] && (st = onnx_const_ints(imp, in[3], "Slice's axes", &na, &ax))) ||
      (nin > 4 && in[4] && (st = onnx_const_ints(imp, in[4], "Slice's steps", &ns, &steps))))
    return st;
  if (ne != nb || (na && na != nb) || (ns && ns != nb))
    return fail(imp, KILN_ERR_CORRUPT, "Slice's starts, ends, axes and steps differ in length");
  const onnx_shape_value *sv = symbolic(imp, in[0]);
  if (sv) return slice_shape(imp, sv, nb, b, e, ax, steps, out);
  ir_arena *a = A(imp);
  return put(imp, out, call1(imp, "strided_slice", in[0], 4,
                             ATTRS(relay_attr_ints(a, "begin", nb, b), relay_attr_ints(a, "end", ne, e),
                                   relay_attr_ints(a, "strides", ns, steps),
                                   relay_attr_ints(a, "axes", na, ax))));
}

/* Gather from a symbolic shape value: constant indices (a scalar or a vector) along axis 0. */
static kiln_status gather_shape(onnx_importer *imp, const Onnx__NodeProto *node,
                                const onnx_shape_value *sv, relay_expr *indices, relay_expr **out) {
  int64_t axis = onnx_attr_int(node, "axis", 0);
  if (sv->rank != 1 || (axis != 0 && axis != -1))
    return fail(imp, KILN_ERR_SHAPE, "Gather from a shape value needs axis 0");
  int n, nd = ndim_of(indices);
  int64_t *idx;
  kiln_status st = onnx_const_ints(imp, indices, "Gather's indices (into a symbolic shape)", &n, &idx);
  if (st) return st;
  if (nd > 1) return fail(imp, KILN_ERR_UNSUPPORTED, "Gather from a shape value needs scalar or 1-d indices");
  ir_expr *r[ONNX_MAX_SHAPE_ELEMS];
  if (n > ONNX_MAX_SHAPE_ELEMS) return fail(imp, KILN_ERR_UNSUPPORTED, "Gather from a shape value: too many indices");
  for (int i = 0; i < n; i++) {
    int64_t k = idx[i] < 0 ? idx[i] + sv->n : idx[i];
    if (k < 0 || k >= sv->n)
      return ir_fail(onnx_ctx(imp), IR_NO_SPAN, KILN_ERR_SHAPE,
                     "Gather: index %lld is out of range for a shape of %d elements",
                     (long long)idx[i], sv->n);
    r[i] = sv->elems[k];
  }
  return put(imp, out, onnx_shape_value_new(imp, sv->dtype, nd, n, r));
}

/* Gather: relay's take. Constant negative indices are made positive first (take clips). */
static kiln_status conv_gather(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                               relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 2);
  if (st) return st;
  const onnx_shape_value *sv = symbolic(imp, in[0]);
  if (sv) return gather_shape(imp, node, sv, in[1], out);
  int64_t axis = onnx_attr_int(node, "axis", 0);
  relay_expr *idx = in[1];
  const relay_tensor_type *xt = onnx_tensor_type(imp, in[0], "Gather's data");
  if (!xt) return KILN_ERR_TYPE;
  if (axis < 0) axis += xt->ndim;
  int64_t dim;
  if (idx->kind == RELAY_CONST && axis >= 0 && axis < xt->ndim && relay_dim_const(xt->shape[axis], &dim)) {
    int n;
    double *v;
    if ((st = onnx_const_floats(imp, idx, "Gather's indices", &n, &v))) return st;
    bool neg = false;
    for (int i = 0; i < n; i++)
      if (v[i] < 0) {
        v[i] += (double)dim;
        neg = true;
      }
    if (neg) {
      const relay_tensor_type *it = onnx_tensor_type(imp, idx, "Gather's indices");
      int64_t shape[RELAY_MAX_DIMS];
      int nd;
      if (!it || (st = onnx_static_shape(imp, idx, "Gather's indices", &nd, shape))) return st ? st : KILN_ERR_TYPE;
      if (!(idx = onnx_make_const(imp, it->h.dtype, nd, shape, v))) return fail_of(imp);
    }
  }
  return put(imp, out, onnx_call(imp, "take", 2, ARGS(in[0], idx), 1, ATTRS(relay_attr_int(A(imp), "axis", axis))));
}

static int cmp_i64(const void *x, const void *y) {
  int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
  return a < b ? -1 : a > b;
}

/* Unsqueeze: expand_dims at each axis (normalized against the output rank) in increasing order. */
static kiln_status conv_unsqueeze(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                                  int nin, relay_expr *const *in, int nout, relay_expr **out) {
  (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  int n;
  int64_t *axes;
  if ((st = read_axes(imp, node, opset, 13, nin, in, 1, &n, &axes))) return st;
  if (!n) return fail(imp, KILN_ERR_CORRUPT, "Unsqueeze needs axes");
  const onnx_shape_value *sv = symbolic(imp, in[0]);
  if (sv) { /* a scalar shape element becomes a 1-element vector */
    if (sv->rank != 0 || n != 1 || (axes[0] != 0 && axes[0] != -1))
      return shape_fail(imp, KILN_ERR_UNSUPPORTED, sv,
                        "%s: the shape value %s (symbolic element %s) can only be unsqueezed from "
                        "a scalar to a vector", "Unsqueeze");
    return put(imp, out, onnx_shape_value_new(imp, sv->dtype, 1, 1, sv->elems));
  }
  int rank = ndim_of(in[0]) + n;
  for (int i = 0; i < n; i++) {
    if (axes[i] < 0) axes[i] += rank;
    if (axes[i] < 0 || axes[i] >= rank) return fail(imp, KILN_ERR_SHAPE, "Unsqueeze's axis is out of range");
  }
  qsort(axes, (size_t)n, sizeof *axes, cmp_i64);
  relay_expr *x = in[0];
  for (int i = 0; i < n && x; i++)
    x = call1(imp, "expand_dims", x, 1, ATTRS(relay_attr_int(A(imp), "axis", axes[i])));
  return put(imp, out, x);
}

static kiln_status conv_squeeze(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                                int nin, relay_expr *const *in, int nout, relay_expr **out) {
  (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  int n;
  int64_t *axes;
  if ((st = read_axes(imp, node, opset, 13, nin, in, 1, &n, &axes))) return st;
  const onnx_shape_value *sv = symbolic(imp, in[0]);
  if (sv) { /* a 1-element shape vector becomes a scalar */
    if (sv->rank != 1 || sv->n != 1 || n > 1 || (n == 1 && axes[0] != 0 && axes[0] != -1))
      return shape_fail(imp, KILN_ERR_UNSUPPORTED, sv,
                        "%s: the shape value %s (symbolic element %s) can only be squeezed from "
                        "one element to a scalar", "Squeeze");
    return put(imp, out, onnx_shape_value_new(imp, sv->dtype, 0, 1, sv->elems));
  }
  return put(imp, out, call1(imp, "squeeze", in[0], 1, ATTRS(relay_attr_ints(A(imp), "axis", n, axes))));
}

/* Shape (start / end since opset 15): a constant when the input's shape is, else a symbolic
 * shape value. */
static kiln_status conv_shape(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                              relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  const relay_tensor_type *tt = onnx_tensor_type(imp, in[0], "the input of Shape");
  if (!tt) return KILN_ERR_TYPE;
  int nd = tt->ndim;
  int64_t shape[RELAY_MAX_DIMS];
  bool is_const = true;
  for (int i = 0; i < nd; i++) is_const = is_const && relay_dim_const(tt->shape[i], &shape[i]);
  int64_t start = onnx_attr_int(node, "start", 0), end = onnx_attr_int(node, "end", nd);
  if (start < 0) start += nd;
  if (end < 0) end += nd;
  start = start < 0 ? 0 : start > nd ? nd : start;
  end = end < start ? start : end > nd ? nd : end;
  int64_t len = end - start;
  if (!is_const) /* a symbolic shape value (constant if the slice is) */
    return put(imp, out, onnx_shape_value_new(imp, KILN_INT64, 1, (int)len, tt->shape + start));
  double v[RELAY_MAX_DIMS];
  for (int64_t i = start; i < end; i++) v[i - start] = (double)shape[i];
  return put(imp, out, onnx_make_const(imp, KILN_INT64, 1, &len, v));
}

/* ReduceMean / ReduceSum / ReduceMax / ReduceMin: axes as an attribute (ReduceSum takes them
 * as an input since opset 13), keepdims default 1. */
static kiln_status reduce(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                          relay_expr *const *in, relay_expr **out, const char *op, int input_from) {
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  int n;
  int64_t *axes;
  if ((st = read_axes(imp, node, opset, input_from, nin, in, 1, &n, &axes))) return st;
  if (!n && onnx_attr_int(node, "noop_with_empty_axes", 0)) {
    out[0] = in[0];
    return KILN_OK;
  }
  ir_arena *a = A(imp);
  return put(imp, out, call1(imp, op, in[0], 2,
                             ATTRS(relay_attr_ints(a, "axis", n, axes),
                                   relay_attr_int(a, "keepdims", onnx_attr_int(node, "keepdims", 1)))));
}

#define REDUCE_CONV(fname, op, from)                                                            \
  static kiln_status fname(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin, \
                           relay_expr *const *in, int nout, relay_expr **out) {                \
    (void)nout;                                                                                \
    return reduce(imp, node, opset, nin, in, out, op, from);                                   \
  }
REDUCE_CONV(conv_reduce_mean, "mean", 18)
REDUCE_CONV(conv_reduce_sum, "sum", 13)
REDUCE_CONV(conv_reduce_max, "max", 18)
REDUCE_CONV(conv_reduce_min, "min", 18)

/* Constant: value (a tensor) or value_float(s) / value_int(s). */
static kiln_status conv_constant(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                                 int nin, relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nin, (void)in, (void)nout;
  const Onnx__AttributeProto *at;
  if ((at = onnx_attr(node, "value")) && at->t) return put(imp, out, onnx_tensor_const(imp, at->t));
  if ((at = onnx_attr(node, "value_float")) && at->has_f) {
    double v = at->f;
    return put(imp, out, onnx_make_const(imp, KILN_FLOAT32, 0, NULL, &v));
  }
  if ((at = onnx_attr(node, "value_int")) && at->has_i) {
    double v = (double)at->i;
    return put(imp, out, onnx_make_const(imp, KILN_INT64, 0, NULL, &v));
  }
  bool floats = (at = onnx_attr(node, "value_floats")) != NULL;
  if (floats || (at = onnx_attr(node, "value_ints")) != NULL) {
    int64_t n = floats ? (int64_t)at->n_floats : (int64_t)at->n_ints;
    double *v = ir_arena_alloc(A(imp), sizeof(double) * (size_t)(n + 1));
    if (!v) return KILN_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) v[i] = floats ? at->floats[i] : (double)at->ints[i];
    return put(imp, out, onnx_make_const(imp, floats ? KILN_FLOAT32 : KILN_INT64, 1, &n, v));
  }
  return fail(imp, KILN_ERR_UNSUPPORTED, "Constant without a value / value_float(s) / value_int(s) attribute");
}

/* Pad (opset >= 11): nn.pad. pads (ONNX order: every axis's begin, then every axis's end) and
 * the optional constant_value are constant inputs. Modes constant, edge and reflect map one to
 * one; negative pads (cropping) are not supported. */
static kiln_status conv_pad(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                            relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 2);
  if (st) return st;
  int nd = ndim_of(in[0]), n = 0;
  int64_t *pads = NULL;
  double value = 0;
  if ((st = onnx_const_ints(imp, in[1], "Pad's pads input", &n, &pads))) return st;
  if (nin > 2 && in[2]) {
    int nv;
    double *v;
    if ((st = onnx_const_floats(imp, in[2], "Pad's constant_value input", &nv, &v))) return st;
    if (nv != 1) return fail(imp, KILN_ERR_CORRUPT, "Pad's constant_value must be a scalar");
    value = v[0];
  }
  if (nd < 0) return fail(imp, KILN_ERR_TYPE, "Pad's input has no tensor type");
  if (n != 2 * nd)
    return ir_fail(onnx_ctx(imp), IR_NO_SPAN, KILN_ERR_CORRUPT,
                   "Pad: pads has %d values, a %d-d input needs %d", n, nd, 2 * nd);
  int64_t width[2 * RELAY_MAX_DIMS];
  for (int i = 0; i < nd; i++) {
    if (pads[i] < 0 || pads[nd + i] < 0)
      return ir_fail(onnx_ctx(imp), IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                     "Pad: negative pads (cropping) on axis %d are not supported", i);
    width[2 * i] = pads[i];
    width[2 * i + 1] = pads[nd + i];
  }
  const char *mode = onnx_attr_str(node, "mode", "constant");
  if (strcmp(mode, "constant") != 0 && strcmp(mode, "edge") != 0 && strcmp(mode, "reflect") != 0)
    return ir_fail(onnx_ctx(imp), IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "Pad: mode '%s' is not supported",
                   mode);
  ir_arena *a = A(imp);
  return put(imp, out, call1(imp, "nn.pad", in[0], 3,
                             ATTRS(relay_attr_ints(a, "pad_width", 2 * nd, width),
                                   relay_attr_float(a, "pad_value", value),
                                   relay_attr_str(a, "pad_mode", mode))));
}

/* Expand to a symbolic shape value. relay's broadcast_to takes a constant shape, so the only
 * expressible case is a target whose every element leaves the input's dimension as it is
 * (1, or equal to it) at the same rank: the identity. Anything else fails naming the
 * element. */
static kiln_status expand_symbolic(onnx_importer *imp, relay_expr *x, const onnx_shape_value *sv,
                                   relay_expr **out) {
  const relay_tensor_type *xt = onnx_tensor_type(imp, x, "the input of Expand");
  if (!xt) return KILN_ERR_TYPE;
  char text[256], dim[96], xd[96];
  if (sv->rank != 1) return fail(imp, KILN_ERR_CORRUPT, "Expand's shape must be 1-d");
  for (int i = 0; i < sv->n; i++) {
    int xi = i - (sv->n - xt->ndim);
    ir_expr *e = sv->elems[i];
    int64_t v;
    bool keeps = xi >= 0 && ((relay_dim_const(e, &v) && v == 1) || onnx_dim_equal(imp, e, xt->shape[xi]));
    if (keeps) continue;
    if (xi < 0 && relay_dim_const(e, &v) && v == 1) continue; /* leading 1s only add rank */
    return ir_fail(onnx_ctx(imp), IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "Expand: the target shape %s (element %d, %s) would stretch the input's dimension "
                   "%s; relay's broadcast_to takes constant shapes only, so a broadcast to a shape "
                   "with symbolic elements is not supported",
                   onnx_shape_value_str(sv, text, sizeof text), i, relay_dim_str(e, dim, sizeof dim),
                   xi >= 0 ? relay_dim_str(xt->shape[xi], xd, sizeof xd) : "(a new leading axis)");
  }
  if (sv->n <= xt->ndim) {
    out[0] = x;
    return KILN_OK;
  }
  /* leading 1s: the same elements with a higher rank */
  if (sv->n > RELAY_MAX_DIMS) return fail(imp, KILN_ERR_UNSUPPORTED, "Expand to too many dimensions");
  relay_expr *y = x;
  for (int i = 0; i < sv->n - xt->ndim && y; i++)
    y = call1(imp, "expand_dims", y, 1, ATTRS(relay_attr_int(A(imp), "axis", 0)));
  return put(imp, out, y);
}

/* Expand: bidirectional broadcast to a constant shape (the input's shape must be constant). */
static kiln_status conv_expand(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                               relay_expr *const *in, int nout, relay_expr **out) {
  (void)node, (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 2);
  if (st) return st;
  const onnx_shape_value *sv = symbolic(imp, in[1]);
  if (sv) return expand_symbolic(imp, in[0], sv, out);
  int n, nd;
  int64_t *target, shape[RELAY_MAX_DIMS], res[RELAY_MAX_DIMS];
  if ((st = onnx_const_ints(imp, in[1], "Expand's shape input", &n, &target)) ||
      (st = onnx_static_shape(imp, in[0], "the input of Expand", &nd, shape)))
    return st;
  int r = n > nd ? n : nd;
  if (r > RELAY_MAX_DIMS) return fail(imp, KILN_ERR_UNSUPPORTED, "Expand to too many dimensions");
  for (int i = 0; i < r; i++) {
    int64_t a = i - (r - nd) >= 0 ? shape[i - (r - nd)] : 1, b = i - (r - n) >= 0 ? target[i - (r - n)] : 1;
    if (a != b && a != 1 && b != 1)
      return ir_fail(onnx_ctx(imp), IR_NO_SPAN, KILN_ERR_SHAPE,
                     "Expand: dimension %d of the input (%lld) does not broadcast to %lld", i, (long long)a,
                     (long long)b);
    res[i] = a == 1 ? b : a;
  }
  return put(imp, out, call1(imp, "broadcast_to", in[0], 1, ATTRS(relay_attr_ints(A(imp), "shape", r, res))));
}

/* ConstantOfShape: a constant filled with `value` (float 0 by default). */
static kiln_status conv_constant_of_shape(onnx_importer *imp, const Onnx__NodeProto *node, int opset,
                                          int nin, relay_expr *const *in, int nout, relay_expr **out) {
  (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 1);
  if (st) return st;
  int n;
  int64_t *shape, numel = 1;
  const onnx_shape_value *sv = symbolic(imp, in[0]);
  if (sv)
    return shape_fail(imp, KILN_ERR_UNSUPPORTED, sv,
                      "%s: the shape %s has the symbolic element %s; relay constants have constant "
                      "shapes", "ConstantOfShape");
  if ((st = onnx_const_ints(imp, in[0], "ConstantOfShape's shape input", &n, &shape))) return st;
  if (n > RELAY_MAX_DIMS) return fail(imp, KILN_ERR_UNSUPPORTED, "ConstantOfShape with too many dimensions");
  for (int i = 0; i < n; i++) {
    if (shape[i] < 0 || (shape[i] && numel > ((int64_t)1 << 28) / shape[i]))
      return fail(imp, KILN_ERR_UNSUPPORTED, "ConstantOfShape's shape is negative or too large");
    numel *= shape[i];
  }
  kiln_dtype t = KILN_FLOAT32;
  double fill = 0;
  const Onnx__AttributeProto *at = onnx_attr(node, "value");
  if (at && at->t) {
    relay_expr *v = onnx_tensor_const(imp, at->t);
    int nv;
    double *vals;
    if (!v) return fail_of(imp);
    if ((st = onnx_const_floats(imp, v, "ConstantOfShape's value", &nv, &vals))) return st;
    if (nv != 1) return fail(imp, KILN_ERR_CORRUPT, "ConstantOfShape's value must have one element");
    t = dtype_of(v);
    fill = vals[0];
  }
  double *vals = ir_malloc(onnx_ctx(imp), sizeof(double) * (size_t)(numel + 1));
  if (!vals) return KILN_ERR_NOMEM;
  for (int64_t i = 0; i < numel; i++) vals[i] = fill;
  st = put(imp, out, onnx_make_const(imp, t, n, shape, vals));
  ir_free(onnx_ctx(imp), vals, sizeof(double) * (size_t)(numel + 1));
  return st;
}

/* Range: folded to a constant (start, limit and delta must be constants). */
static kiln_status conv_range(onnx_importer *imp, const Onnx__NodeProto *node, int opset, int nin,
                              relay_expr *const *in, int nout, relay_expr **out) {
  (void)node, (void)opset, (void)nout;
  kiln_status st = need_inputs(imp, nin, in, 3);
  if (st) return st;
  double *v[3];
  int n[3];
  for (int i = 0; i < 3; i++) {
    if ((st = onnx_const_floats(imp, in[i], "Range's inputs", &n[i], &v[i]))) return st;
    if (n[i] != 1) return fail(imp, KILN_ERR_CORRUPT, "Range's inputs must be scalars");
  }
  double start = v[0][0], limit = v[1][0], delta = v[2][0];
  if (delta == 0) return fail(imp, KILN_ERR_CORRUPT, "Range's delta is 0");
  double count = ceil((limit - start) / delta);
  if (!(count >= 0)) count = 0;
  if (count > (1 << 24)) return fail(imp, KILN_ERR_UNSUPPORTED, "Range is too long");
  int64_t len = (int64_t)count;
  double *vals = ir_malloc(onnx_ctx(imp), sizeof(double) * (size_t)(len + 1));
  if (!vals) return KILN_ERR_NOMEM;
  for (int64_t i = 0; i < len; i++) vals[i] = start + (double)i * delta;
  st = put(imp, out, onnx_make_const(imp, dtype_of(in[0]), 1, &len, vals));
  ir_free(onnx_ctx(imp), vals, sizeof(double) * (size_t)(len + 1));
  return st;
}

/* ---- The table ---------------------------------------------------------------------------- */

const onnx_converter onnx_converters[] = {
    /* elementwise */
    {"Relu", 1, 17, conv_relu},
    {"Sigmoid", 1, 17, conv_sigmoid},
    {"Tanh", 1, 17, conv_tanh},
    {"Erf", 9, 17, conv_erf},
    {"Sqrt", 1, 17, conv_sqrt},
    {"Exp", 1, 17, conv_exp},
    {"Log", 1, 17, conv_log},
    {"Neg", 1, 17, conv_neg},
    {"Abs", 1, 17, conv_abs},
    {"Floor", 1, 17, conv_floor},
    {"Ceil", 1, 17, conv_ceil},
    {"Not", 1, 17, conv_not},
    {"HardSwish", 14, 17, conv_hardswish},
    {"HardSigmoid", 1, 17, conv_hardsigmoid},
    {"LeakyRelu", 1, 17, conv_leakyrelu},
    {"Add", 7, 17, conv_add},
    {"Sub", 7, 17, conv_sub},
    {"Mul", 7, 17, conv_mul},
    {"Div", 7, 17, conv_div},
    {"Pow", 7, 17, conv_pow},
    {"Max", 8, 17, conv_max},
    {"Min", 8, 17, conv_min},
    {"Equal", 7, 17, conv_equal},
    {"Less", 7, 17, conv_less},
    {"Greater", 7, 17, conv_greater},
    {"And", 7, 17, conv_and},
    {"Or", 7, 17, conv_or},
    {"Where", 9, 17, conv_where},
    {"Clip", 6, 17, conv_clip},
    {"Cast", 6, 17, conv_cast},
    {"Identity", 1, 17, conv_identity},
    {"Dropout", 1, 17, conv_dropout},
    /* neural network */
    {"Conv", 1, 17, conv_conv},
    {"MaxPool", 1, 17, conv_maxpool},
    {"AveragePool", 1, 17, conv_avgpool},
    {"GlobalAveragePool", 1, 17, conv_gap},
    {"GlobalMaxPool", 1, 17, conv_gmp},
    {"BatchNormalization", 9, 17, conv_batchnorm},
    {"LayerNormalization", 17, 17, conv_layernorm},
    {"Softmax", 1, 17, conv_softmax},
    {"Gemm", 7, 17, conv_gemm},
    {"MatMul", 1, 17, conv_matmul},
    /* shapes and data movement */
    {"Flatten", 1, 17, conv_flatten},
    {"Reshape", 5, 17, conv_reshape},
    {"Transpose", 1, 17, conv_transpose},
    {"Concat", 4, 17, conv_concat},
    {"Split", 2, 17, conv_split},
    {"Slice", 10, 17, conv_slice},
    {"Gather", 1, 17, conv_gather},
    {"Unsqueeze", 1, 17, conv_unsqueeze},
    {"Squeeze", 1, 17, conv_squeeze},
    {"Shape", 1, 17, conv_shape},
    {"ReduceMean", 1, 17, conv_reduce_mean},
    {"ReduceSum", 1, 17, conv_reduce_sum},
    {"ReduceMax", 1, 17, conv_reduce_max},
    {"ReduceMin", 1, 17, conv_reduce_min},
    {"Constant", 1, 17, conv_constant},
    {"Expand", 8, 17, conv_expand},
    {"Pad", 11, 17, conv_pad},
    {"ConstantOfShape", 9, 17, conv_constant_of_shape},
    {"Range", 11, 17, conv_range},
};
const int onnx_converter_count = sizeof onnx_converters / sizeof onnx_converters[0];

/* Which inputs of each shape-arithmetic and shape-consuming op may be symbolic shape values
 * (bit i: input i); every other input must be an ordinary value. */
static const struct {
  const char *op;
  uint32_t inputs;
} shape_inputs[] = {
    {"Shape", 1u},  {"Gather", 1u},    {"Slice", 1u},     {"Squeeze", 1u},  {"Unsqueeze", 1u},
    {"Cast", 1u},   {"Identity", 1u},  {"Add", 3u},       {"Sub", 3u},      {"Mul", 3u},
    {"Div", 3u},    {"Concat", ~0u},   {"Reshape", 2u},   {"Expand", 2u},   {"ConstantOfShape", 1u},
};

uint32_t onnx_shape_inputs(const char *op_type) {
  for (size_t i = 0; op_type && i < sizeof shape_inputs / sizeof shape_inputs[0]; i++)
    if (strcmp(shape_inputs[i].op, op_type) == 0) return shape_inputs[i].inputs;
  return 0;
}

const onnx_converter *onnx_find_converter(const char *op_type, int opset) {
  if (!op_type) return NULL;
  for (int i = 0; i < onnx_converter_count; i++) {
    const onnx_converter *c = &onnx_converters[i];
    if (strcmp(c->op_type, op_type) == 0 && opset >= c->min_opset && opset <= c->max_opset) return c;
  }
  return NULL;
}

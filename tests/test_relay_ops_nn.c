/* test_relay_ops_nn.c: the neural-network ops of relay/op/nn.c: type relations (constant and
 * symbolic shapes), their errors, and the reference kernels against naive loops written here
 * independently, hand-computed values, and formulas. */
#include <math.h>

#include "ir/arith.h"
#include "relay/op.h"
#include "test_util.h"

/* ---- Fixture: a context, a module (its arena and symbolic dims) and test tensors ---------- */

static kiln_context *ctx;
static relay_module *M;
static ir_arena *A;

enum { MAX_TENSORS = 64 };
static relay_tensor tensors[MAX_TENSORS]; /* freed by the teardown */
static int ntensors;

static void setup(void) {
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  M = relay_module_new(ctx);
  ck_assert_ptr_nonnull(M);
  A = M->arena;
  ntensors = 0;
}

static void teardown(void) {
  for (int i = 0; i < ntensors; i++) relay_tensor_free(ctx, &tensors[i]);
  relay_module_free(M);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}

/* ---- Building calls -------------------------------------------------------------------- */

#define NARGS(T, ...) (int)(sizeof((T[]){__VA_ARGS__}) / sizeof(T))
#define SHAPE(...)                                                                                 \
  NARGS(int64_t, __VA_ARGS__), (int64_t[]) {                                                       \
    __VA_ARGS__                                                                                    \
  }
#define INTS(key, ...) relay_attr_ints(A, key, SHAPE(__VA_ARGS__))
#define NOINTS(key) relay_attr_ints(A, key, 0, NULL)
#define INT(key, v) relay_attr_int(A, key, v)
#define FLT(key, v) relay_attr_float(A, key, v)
#define STR(key, v) relay_attr_str(A, key, v)
#define ATTRS(...)                                                                                 \
  NARGS(relay_attr *, __VA_ARGS__), (relay_attr *[]) {                                             \
    __VA_ARGS__                                                                                    \
  }
#define NOATTRS 0, NULL
#define TYPES(...)                                                                                 \
  NARGS(relay_type *, __VA_ARGS__), (relay_type *[]) {                                             \
    __VA_ARGS__                                                                                    \
  }

static relay_type *tt(kiln_dtype t, int nd, const int64_t *shape) {
  relay_type *r = relay_tensor_type_const(A, t, nd, shape);
  ck_assert_ptr_nonnull(r);
  return r;
}
#define F32(...) tt(KILN_FLOAT32, SHAPE(__VA_ARGS__))

/* A tensor type with symbolic dimensions: dims given as names ("n") or numbers ("3"). */
static relay_type *sym(kiln_dtype t, int nd, const char *const *dims) {
  ir_expr *e[RELAY_MAX_DIMS];
  for (int i = 0; i < nd; i++) {
    char *end;
    long long v = strtoll(dims[i], &end, 10);
    e[i] = *end == 0 ? ir_int(A, KILN_INT64, v) : &relay_module_dim(M, dims[i])->h;
  }
  relay_type *r = relay_tensor_type_new(A, t, nd, e);
  ck_assert_ptr_nonnull(r);
  return r;
}
#define SYM(...) sym(KILN_FLOAT32, NARGS(const char *, __VA_ARGS__), (const char *[]){__VA_ARGS__})

/* Types a call of op on variables of the given types; the result type as text (in a static
 * buffer), or NULL when typing failed. */
static const char *call_type(const char *op, int nargs, relay_type *const *types, int nattrs,
                             relay_attr *const *attrs) {
  static char buf[512];
  relay_expr *args[8];
  for (int i = 0; i < nargs; i++) args[i] = &relay_var_new(A, "x", types[i])->h;
  relay_expr *e = relay_call_op(A, op, nargs, args, nattrs, attrs);
  if (!e) return NULL;
  ck_assert_ptr_nonnull(relay_type_of(e));
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  relay_type_print(&sb, relay_type_of(e));
  ck_assert_ptr_nonnull(sb.data);
  snprintf(buf, sizeof buf, "%s", sb.data);
  ir_sb_free(&sb);
  return buf;
}

#define CK_TYPE(want, op, types, attrs)                                                            \
  do {                                                                                             \
    const char *got_ = call_type(op, types, attrs);                                                \
    ck_assert_msg(got_ != NULL, "%s failed: %s", op, kiln_context_errmsg(ctx));                    \
    ck_assert_str_eq(got_, want);                                                                  \
  } while (0)

/* Typing must fail with `code` and a message containing `needle`. */
#define CK_ERR(code, needle, op, types, attrs)                                                     \
  do {                                                                                             \
    const char *got_ = call_type(op, types, attrs);                                                \
    ck_assert_msg(got_ == NULL, "%s unexpectedly typed as %s", op, got_);                          \
    ck_assert_int_eq(kiln_context_errcode(ctx), code);                                             \
    ck_errmsg_has(ctx, needle);                                                                    \
  } while (0)

/* The result dimension `i` of a call's type. */
static ir_expr *out_dim(const char *op, int nargs, relay_type *const *types, int nattrs,
                        relay_attr *const *attrs, int i) {
  relay_expr *args[8];
  for (int k = 0; k < nargs; k++) args[k] = &relay_var_new(A, "x", types[k])->h;
  relay_expr *e = relay_call_op(A, op, nargs, args, nattrs, attrs);
  ck_assert_msg(e != NULL, "%s failed: %s", op, kiln_context_errmsg(ctx));
  const relay_tensor_type *t = relay_as_tensor_type(relay_type_of(e));
  ck_assert_ptr_nonnull(t);
  return t->shape[i];
}

/* The value of a dimension expression with the symbolic dimension `name` set to v. */
static int64_t dim_at(ir_expr *e, const char *name, int64_t v) {
  ir_var *var = relay_module_dim(M, name);
  ir_expr *val = ir_int(A, KILN_INT64, v);
  ir_expr *s = ir_substitute(A, e, 1, &var, &val);
  ir_analyzer *an = ir_analyzer_new(A);
  ir_expr *r = ir_simplify_expr(an, s);
  ir_analyzer_free(an);
  const ir_int_imm *c = ir_as_int(r);
  ck_assert_msg(c != NULL, "dimension did not fold to a constant");
  return c->value;
}

/* ---- Tensors and running kernels ------------------------------------------------------- */

static relay_tensor *new_tensor(kiln_dtype t, int nd, const int64_t *shape) {
  ck_assert_int_lt(ntensors, MAX_TENSORS);
  relay_tensor *r = &tensors[ntensors++];
  ck_ok(ctx, relay_tensor_alloc(ctx, tt(t, nd, shape), r));
  return r;
}

/* Deterministic values, multiples of 1/16 in [-2, 2): products and the sums of these tests
 * are exact in float32, so kernels and naive loops agree to the last bit. */
static relay_tensor *rnd_tensor(kiln_dtype t, int nd, const int64_t *shape, uint32_t seed) {
  relay_tensor *r = new_tensor(t, nd, shape);
  uint32_t s = seed * 2654435761u + 12345;
  for (int64_t i = 0; i < relay_tensor_numel(r); i++) {
    s = s * 1664525u + 1013904223u;
    relay_tensor_set(r, i, (double)((int)(s >> 26) - 32) / 16.0);
  }
  return r;
}
#define RND(seed, ...) rnd_tensor(KILN_FLOAT32, SHAPE(__VA_ARGS__), seed)

/* A float32 tensor with the given values. */
static relay_tensor *val_tensor(int nd, const int64_t *shape, const double *v) {
  relay_tensor *r = new_tensor(KILN_FLOAT32, nd, shape);
  for (int64_t i = 0; i < relay_tensor_numel(r); i++) relay_tensor_set(r, i, v[i]);
  return r;
}
/* A float32 tensor holding 0, 1, 2, ... */
static relay_tensor *iota_tensor(kiln_dtype t, int nd, const int64_t *shape) {
  relay_tensor *r = new_tensor(t, nd, shape);
  for (int64_t i = 0; i < relay_tensor_numel(r); i++) relay_tensor_set(r, i, (double)i);
  return r;
}
#define IOTA(...) iota_tensor(KILN_FLOAT32, SHAPE(__VA_ARGS__))

/* Types the call on the tensors' types, allocates the output from the inferred type and runs
 * the op's reference kernel (through the registry, as the interpreter does). */
static relay_tensor *run_op(const char *op, int nargs, relay_tensor *const *ins, int nattrs,
                            relay_attr *const *attrs) {
  relay_expr *args[8];
  for (int i = 0; i < nargs; i++)
    args[i] = &relay_var_new(A, "x", tt(ins[i]->dtype, ins[i]->ndim, ins[i]->shape))->h;
  relay_expr *e = relay_call_op(A, op, nargs, args, nattrs, attrs);
  ck_assert_msg(e && relay_type_of(e), "typing %s failed: %s", op, kiln_context_errmsg(ctx));
  ck_assert_int_lt(ntensors, MAX_TENSORS);
  relay_tensor *out = &tensors[ntensors++];
  ck_ok(ctx, relay_tensor_alloc(ctx, relay_type_of(e), out));
  relay_tensor in[8];
  for (int i = 0; i < nargs; i++) in[i] = *ins[i];
  const relay_call *call = relay_as_call(e);
  relay_eval_ctx ec = {ctx, op};
  ck_ok(ctx, call->opdef->eval(&ec, nargs, in, call->attrs, 1, out));
  return out;
}
#define INS(...)                                                                                   \
  NARGS(relay_tensor *, __VA_ARGS__), (relay_tensor *[]) {                                         \
    __VA_ARGS__                                                                                    \
  }

static double get(const relay_tensor *t, int64_t i) {
  return relay_tensor_get(t, i);
}
static double get4(const relay_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d) {
  return get(t, ((a * t->shape[1] + b) * t->shape[2] + c) * t->shape[3] + d);
}

static void ck_shape(const relay_tensor *t, int nd, const int64_t *shape) {
  ck_assert_int_eq(t->ndim, nd);
  for (int i = 0; i < nd; i++) ck_assert_int_eq(t->shape[i], shape[i]);
}
#define CK_SHAPE(t, ...) ck_shape(t, SHAPE(__VA_ARGS__))

/* Every element of t equals want[i] within tol. */
static void ck_values(const relay_tensor *t, const double *want, double tol) {
  for (int64_t i = 0; i < relay_tensor_numel(t); i++)
    ck_assert_msg(fabs(get(t, i) - want[i]) <= tol, "element %lld: got %.9g, want %.9g",
                  (long long)i, get(t, i), want[i]);
}
#define CK_VALUES(t, tol, ...) ck_values(t, (double[]){__VA_ARGS__}, tol)

/* A permuted copy of a 4-d tensor: new axis k is old axis perm[k]. */
static relay_tensor *permute4(const relay_tensor *t, const int perm[4]) {
  int64_t shape[4];
  for (int k = 0; k < 4; k++) shape[k] = t->shape[perm[k]];
  relay_tensor *r = new_tensor(t->dtype, 4, shape);
  int64_t idx[4];
  for (idx[0] = 0; idx[0] < shape[0]; idx[0]++)
    for (idx[1] = 0; idx[1] < shape[1]; idx[1]++)
      for (idx[2] = 0; idx[2] < shape[2]; idx[2]++)
        for (idx[3] = 0; idx[3] < shape[3]; idx[3]++) {
          int64_t old[4];
          for (int k = 0; k < 4; k++) old[perm[k]] = idx[k];
          relay_tensor_set(r,
                           ((idx[0] * shape[1] + idx[1]) * shape[2] + idx[2]) * shape[3] + idx[3],
                           get4(t, old[0], old[1], old[2], old[3]));
        }
  return r;
}
static const int TO_NHWC[4] = {0, 2, 3, 1}; /* NCHW -> NHWC, and OIHW -> OHWI */
static const int TO_HWIO[4] = {2, 3, 1, 0}; /* OIHW -> HWIO */
static const int TO_NCHW[4] = {0, 3, 1, 2}; /* NHWC -> NCHW */

/* ==== Dense and matmul ==================================================================== */

START_TEST(test_dense_types) {
  CK_TYPE("Tensor[(4, 10), float32]", "nn.dense", TYPES(F32(4, 16), F32(10, 16)), NOATTRS);
  CK_TYPE("Tensor[(2, 3, 10), float32]", "nn.dense", TYPES(F32(2, 3, 16), F32(10, 16)), NOATTRS);
  CK_TYPE("Tensor[(n, 10), float32]", "nn.dense", TYPES(SYM("n", "16"), F32(10, 16)),
          ATTRS(INT("units", 10)));
  CK_TYPE("Tensor[(4, 10), int32]", "nn.dense",
          TYPES(tt(KILN_INT8, SHAPE(4, 16)), tt(KILN_INT8, SHAPE(10, 16))),
          ATTRS(STR("out_dtype", "int32")));
  CK_ERR(KILN_ERR_TYPE,
         "does not match the weight's second dimension (data (4, 15), weight (10, 16))", "nn.dense",
         TYPES(F32(4, 15), F32(10, 16)), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "units 8 does not match the weight's 10 output units", "nn.dense",
         TYPES(F32(4, 16), F32(10, 16)), ATTRS(INT("units", 8)));
  CK_ERR(KILN_ERR_TYPE, "nn.dense: weight must have rank 2, got shape (10, 16, 1)", "nn.dense",
         TYPES(F32(4, 16), F32(10, 16, 1)), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "data and weight dtypes differ (float32 vs float16)", "nn.dense",
         TYPES(F32(4, 16), tt(KILN_FLOAT16, SHAPE(10, 16))), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "out_dtype 'float33' is not a tensor element type", "nn.dense",
         TYPES(F32(4, 16), F32(10, 16)), ATTRS(STR("out_dtype", "float33")));
  /* the symbolic reduction dimension must be provably equal */
  CK_ERR(KILN_ERR_TYPE, "(data (4, k), weight (10, 16))", "nn.dense",
         TYPES(SYM("4", "k"), F32(10, 16)), NOATTRS);
  /* weight_layout KN: the weight is [K, N] */
  CK_TYPE("Tensor[(2, 3, 10), float32]", "nn.dense", TYPES(F32(2, 3, 16), F32(16, 10)),
          ATTRS(STR("weight_layout", "KN")));
  CK_TYPE("Tensor[(4, 10), float32]", "nn.dense", TYPES(F32(4, 16), F32(16, 10)),
          ATTRS(STR("weight_layout", "KN"), INT("units", 10)));
  CK_ERR(KILN_ERR_TYPE,
         "does not match the weight's first dimension (data (4, 16), weight (10, 16), "
         "weight_layout KN)", "nn.dense", TYPES(F32(4, 16), F32(10, 16)),
         ATTRS(STR("weight_layout", "KN")));
  CK_ERR(KILN_ERR_TYPE, "weight_layout 'KX' is not supported (NK or KN)", "nn.dense",
         TYPES(F32(4, 16), F32(16, 10)), ATTRS(STR("weight_layout", "KX")));
}
END_TEST

START_TEST(test_dense_kernel) {
  relay_tensor *x = RND(1, 2, 3, 5), *w = RND(2, 4, 5);
  relay_tensor *y = run_op("nn.dense", INS(x, w), NOATTRS);
  CK_SHAPE(y, 2, 3, 4);
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 4; j++) {
      double acc = 0;
      for (int k = 0; k < 5; k++) acc += get(x, i * 5 + k) * get(w, j * 5 + k);
      ck_assert_double_eq(get(y, i * 4 + j), acc);
    }
  /* int8 x int8 accumulating into int32 does not wrap at 8 bits */
  relay_tensor *a = new_tensor(KILN_INT8, SHAPE(1, 4)), *b = new_tensor(KILN_INT8, SHAPE(1, 4));
  for (int i = 0; i < 4; i++) {
    relay_tensor_set(a, i, 100);
    relay_tensor_set(b, i, -100);
  }
  relay_tensor *r = run_op("nn.dense", INS(a, b), ATTRS(STR("out_dtype", "int32")));
  ck_assert(kiln_dtype_eq(r->dtype, KILN_INT32));
  ck_assert_double_eq(get(r, 0), -40000);
  /* weight_layout KN: the same products with the weight stored [K, N] */
  relay_tensor *wt = new_tensor(KILN_FLOAT32, SHAPE(5, 4));
  for (int k = 0; k < 5; k++)
    for (int j = 0; j < 4; j++) relay_tensor_set(wt, k * 4 + j, get(w, j * 5 + k));
  relay_tensor *yt = run_op("nn.dense", INS(x, wt), ATTRS(STR("weight_layout", "KN")));
  CK_SHAPE(yt, 2, 3, 4);
  for (int i = 0; i < 24; i++) ck_assert_double_eq(get(yt, i), get(y, i));
}
END_TEST

START_TEST(test_matmul) {
  CK_TYPE("Tensor[(3, 5), float32]", "nn.matmul", TYPES(F32(3, 4), F32(4, 5)), NOATTRS);
  CK_TYPE("Tensor[(3, 5), float32]", "nn.matmul", TYPES(F32(4, 3), F32(5, 4)),
          ATTRS(INT("transpose_a", 1), INT("transpose_b", 1)));
  CK_TYPE("Tensor[(m, 5), float32]", "nn.matmul", TYPES(SYM("m", "k"), SYM("k", "5")), NOATTRS);
  CK_ERR(KILN_ERR_TYPE,
         "nn.matmul: the reduction dimensions differ (a (3, 4), b (5, 4), transpose_a 0, "
         "transpose_b 0)",
         "nn.matmul", TYPES(F32(3, 4), F32(5, 4)), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "a must have rank 2", "nn.matmul", TYPES(F32(2, 3, 4), F32(4, 5)), NOATTRS);
  /* every transpose combination against a naive product of the logical matrices */
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      relay_tensor *a = ta ? RND(3, 4, 3) : RND(3, 3, 4);
      relay_tensor *b = tb ? RND(4, 5, 4) : RND(4, 4, 5);
      relay_tensor *y =
          run_op("nn.matmul", INS(a, b), ATTRS(INT("transpose_a", ta), INT("transpose_b", tb)));
      CK_SHAPE(y, 3, 5);
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++) {
          double acc = 0;
          for (int k = 0; k < 4; k++)
            acc += get(a, ta ? k * 3 + i : i * 4 + k) * get(b, tb ? j * 4 + k : k * 5 + j);
          ck_assert_double_eq(get(y, i * 5 + j), acc);
        }
    }
}
END_TEST

START_TEST(test_batch_matmul) {
  /* TVM's default: y is [B, N, K] */
  CK_TYPE("Tensor[(2, 3, 5), float32]", "nn.batch_matmul", TYPES(F32(2, 3, 4), F32(2, 5, 4)),
          NOATTRS);
  CK_TYPE("Tensor[(2, 3, 5), float32]", "nn.batch_matmul", TYPES(F32(2, 3, 4), F32(2, 4, 5)),
          ATTRS(INT("transpose_b", 0)));
  CK_TYPE("Tensor[(7, 3, 5), float32]", "nn.batch_matmul", TYPES(F32(1, 3, 4), F32(7, 5, 4)),
          NOATTRS);
  CK_TYPE("Tensor[(b, 3, 5), float32]", "nn.batch_matmul", TYPES(SYM("b", "3", "4"), F32(1, 5, 4)),
          NOATTRS);
  CK_TYPE("Tensor[(b, s, s), float32]", "nn.batch_matmul",
          TYPES(SYM("b", "s", "64"), SYM("b", "s", "64")), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "batch dimensions differ and neither is 1 (x (2, 3, 4), y (3, 5, 4))",
         "nn.batch_matmul", TYPES(F32(2, 3, 4), F32(3, 5, 4)), NOATTRS);
  CK_ERR(KILN_ERR_TYPE,
         "the reduction dimensions differ (x (2, 3, 4), y (2, 4, 5), transpose_a 0, transpose_b 1)",
         "nn.batch_matmul", TYPES(F32(2, 3, 4), F32(2, 4, 5)), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "y must have rank 3", "nn.batch_matmul", TYPES(F32(2, 3, 4), F32(5, 4)),
         NOATTRS);
  struct {
    int ta, tb;
    int64_t bx, by;
  } cases[] = {{0, 1, 2, 2}, {1, 0, 2, 2}, {0, 0, 1, 3}, {1, 1, 3, 1}};
  for (int ci = 0; ci < 4; ci++) {
    int ta = cases[ci].ta, tb = cases[ci].tb;
    int64_t bx = cases[ci].bx, by = cases[ci].by, nb = bx > by ? bx : by;
    relay_tensor *x = ta ? RND(5, bx, 4, 3) : RND(5, bx, 3, 4);
    relay_tensor *y = tb ? RND(6, by, 5, 4) : RND(6, by, 4, 5);
    relay_tensor *r =
        run_op("nn.batch_matmul", INS(x, y), ATTRS(INT("transpose_a", ta), INT("transpose_b", tb)));
    CK_SHAPE(r, nb, 3, 5);
    for (int64_t b = 0; b < nb; b++)
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++) {
          int64_t xb = bx == 1 ? 0 : b, yb = by == 1 ? 0 : b;
          double acc = 0;
          for (int k = 0; k < 4; k++)
            acc += get(x, xb * 12 + (ta ? k * 3 + i : i * 4 + k)) *
                   get(y, yb * 20 + (tb ? j * 4 + k : k * 5 + j));
          ck_assert_double_eq(get(r, (b * 3 + i) * 5 + j), acc);
        }
  }
}
END_TEST

/* ==== conv2d ============================================================================= */

/* Naive NCHW/OIHW convolution written independently of the kernel: pads the input into a
 * zeroed buffer first, then slides the dilated window over it. */
static void ref_conv2d(const relay_tensor *x, const relay_tensor *w, const int64_t s[2],
                       const int64_t p[4], const int64_t d[2], int64_t groups, double *out,
                       int64_t cap, int64_t oshape[4]) {
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t O = w->shape[0], I = w->shape[1], KH = w->shape[2], KW = w->shape[3];
  int64_t PH = H + p[0] + p[2], PW = W + p[1] + p[3];
  double *pad = calloc((size_t)(N * C * PH * PW), sizeof(double));
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t ww = 0; ww < W; ww++)
          pad[((n * C + c) * PH + h + p[0]) * PW + ww + p[1]] = get4(x, n, c, h, ww);
  int64_t OH = (PH - d[0] * (KH - 1) - 1) / s[0] + 1, OW = (PW - d[1] * (KW - 1) - 1) / s[1] + 1;
  oshape[0] = N, oshape[1] = O, oshape[2] = OH, oshape[3] = OW;
  ck_assert_int_le(N * O * OH * OW, cap);
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t i = 0; i < OH; i++)
        for (int64_t j = 0; j < OW; j++) {
          double acc = 0;
          int64_t g = o / (O / groups);
          for (int64_t c = 0; c < I; c++)
            for (int64_t u = 0; u < KH; u++)
              for (int64_t v = 0; v < KW; v++)
                acc += pad[((n * C + g * I + c) * PH + i * s[0] + u * d[0]) * PW + j * s[1] +
                           v * d[1]] *
                       get4(w, o, c, u, v);
          out[((n * O + o) * OH + i) * OW + j] = acc;
        }
  free(pad);
}

/* Runs nn.conv2d on random NCHW data and OIHW weights (also as NHWC/HWIO when nhwc) and
 * compares with ref_conv2d. */
static void check_conv2d(int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh,
                         int64_t kw, const int64_t s[2], const int64_t p[4], const int64_t d[2],
                         int64_t groups, bool nhwc) {
  relay_tensor *x = RND(7, n, c, h, w), *wt = RND(8, o, c / groups, kh, kw);
  double *want = malloc(sizeof(double) * 4096);
  int64_t os[4];
  ref_conv2d(x, wt, s, p, d, groups, want, 4096, os);
  relay_attr *attrs[] = {
      relay_attr_ints(A, "strides", 2, s),        relay_attr_ints(A, "padding", 4, p),
      relay_attr_ints(A, "dilation", 2, d),       INT("groups", groups),
      STR("data_layout", nhwc ? "NHWC" : "NCHW"), STR("kernel_layout", nhwc ? "HWIO" : "OIHW")};
  relay_tensor *y;
  if (nhwc) {
    relay_tensor *xh = permute4(x, TO_NHWC), *wh = permute4(wt, TO_HWIO);
    y = permute4(run_op("nn.conv2d", INS(xh, wh), 6, attrs), TO_NCHW);
  } else {
    y = run_op("nn.conv2d", INS(x, wt), 6, attrs);
  }
  ck_shape(y, 4, os);
  ck_values(y, want, 0);
  free(want);
}

START_TEST(test_conv2d_kernel) {
  const int64_t s1[2] = {1, 1}, s2[2] = {2, 2}, s21[2] = {2, 1}, d1[2] = {1, 1}, d2[2] = {2, 2};
  const int64_t p0[4] = {0, 0, 0, 0}, p1[4] = {1, 1, 1, 1}, pa[4] = {1, 0, 2, 1};
  check_conv2d(2, 3, 6, 5, 4, 3, 3, s1, p1, d1, 1, false);  /* 3x3 "same" */
  check_conv2d(1, 3, 7, 8, 2, 3, 2, s2, pa, d1, 1, false);  /* stride 2, asymmetric padding */
  check_conv2d(1, 2, 9, 9, 3, 3, 3, s1, p1, d2, 1, false);  /* dilation 2 */
  check_conv2d(1, 4, 6, 6, 6, 3, 3, s21, p1, d1, 2, false); /* groups 2 */
  check_conv2d(1, 3, 5, 5, 6, 3, 3, s1, p1, d1, 3, false);  /* depthwise, multiplier 2 */
  check_conv2d(1, 2, 4, 4, 3, 1, 1, s1, p0, d1, 1, false);  /* 1x1 */
  check_conv2d(2, 4, 7, 6, 4, 3, 3, s2, pa, d2, 2, true);   /* NHWC/HWIO, all of it */
}
END_TEST

START_TEST(test_conv2d_kernel_values) {
  /* 1x1x3x3 input 1..9, 2x2 kernel of ones, no padding: sums of 2x2 blocks */
  relay_tensor *x = val_tensor(SHAPE(1, 1, 3, 3), (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9});
  relay_tensor *w = val_tensor(SHAPE(1, 1, 2, 2), (double[]){1, 1, 1, 1});
  relay_tensor *y = run_op("nn.conv2d", INS(x, w), NOATTRS);
  CK_SHAPE(y, 1, 1, 2, 2);
  CK_VALUES(y, 0, 12, 16, 24, 28);
  /* kernel layout OHWI with NCHW data, and int8 data into int32 */
  relay_tensor *xi = new_tensor(KILN_INT8, SHAPE(1, 2, 1, 1)),
               *wi = new_tensor(KILN_INT8, SHAPE(1, 1, 1, 2));
  relay_tensor_set(xi, 0, 120), relay_tensor_set(xi, 1, 100);
  relay_tensor_set(wi, 0, 100), relay_tensor_set(wi, 1, -3);
  relay_tensor *yi = run_op("nn.conv2d", INS(xi, wi),
                            ATTRS(STR("kernel_layout", "OHWI"), STR("out_dtype", "int32")));
  ck_assert(kiln_dtype_eq(yi->dtype, KILN_INT32));
  ck_assert_double_eq(get(yi, 0), 120 * 100 - 300);
}
END_TEST

START_TEST(test_conv2d_types) {
  CK_TYPE("Tensor[(1, 8, 32, 32), float32]", "nn.conv2d", TYPES(F32(1, 3, 32, 32), F32(8, 3, 3, 3)),
          ATTRS(INTS("padding", 1, 1, 1, 1)));
  CK_TYPE("Tensor[(1, 8, 16, 16), float32]", "nn.conv2d", TYPES(F32(1, 3, 32, 32), F32(8, 3, 3, 3)),
          ATTRS(INTS("strides", 2, 2), INTS("padding", 1, 1, 1, 1)));
  /* floor((7 + 1 + 2 - 2*(3-1) - 1) / 2) + 1 = 3; floor((8 + 0 + 0 - 1 - 1) / 3) + 1 = 3 */
  CK_TYPE("Tensor[(1, 4, 3, 3), float32]", "nn.conv2d", TYPES(F32(1, 2, 7, 8), F32(4, 2, 3, 2)),
          ATTRS(INTS("strides", 2, 3), INTS("padding", 1, 0, 2, 0), INTS("dilation", 2, 1)));
  CK_TYPE("Tensor[(1, 32, 7, 7), float32]", "nn.conv2d", TYPES(F32(1, 32, 7, 7), F32(32, 1, 3, 3)),
          ATTRS(INT("groups", 32), INTS("padding", 1, 1, 1, 1), INT("channels", 32),
                INTS("kernel_size", 3, 3)));
  CK_TYPE("Tensor[(1, 16, 16, 8), float32]", "nn.conv2d", TYPES(F32(1, 32, 32, 3), F32(3, 3, 3, 8)),
          ATTRS(STR("data_layout", "NHWC"), STR("kernel_layout", "HWIO"), INTS("strides", 2, 2),
                INTS("padding", 0, 0, 1, 1), STR("out_layout", "NHWC")));
  CK_TYPE("Tensor[(1, 8, 30, 30), float16]", "nn.conv2d",
          TYPES(tt(KILN_FLOAT16, SHAPE(1, 3, 32, 32)), tt(KILN_FLOAT16, SHAPE(8, 3, 3, 3))),
          NOATTRS);
  CK_TYPE("Tensor[(1, 8, 30, 30), float32]", "nn.conv2d",
          TYPES(tt(KILN_FLOAT16, SHAPE(1, 3, 32, 32)), tt(KILN_FLOAT16, SHAPE(8, 3, 3, 3))),
          ATTRS(STR("out_dtype", "float32")));
  /* symbolic batch and spatial dimensions: a "same" 3x3 convolution keeps h and w */
  CK_TYPE("Tensor[(n, 16, h, w), float32]", "nn.conv2d",
          TYPES(SYM("n", "3", "h", "w"), F32(16, 3, 3, 3)), ATTRS(INTS("padding", 1, 1, 1, 1)));
  CK_TYPE(
      "Tensor[(n, h, w, 16), float32]", "nn.conv2d",
      TYPES(SYM("n", "h", "w", "3"), F32(3, 3, 3, 16)),
      ATTRS(INTS("padding", 1, 1, 1, 1), STR("data_layout", "NHWC"), STR("kernel_layout", "HWIO")));
}
END_TEST

/* Symbolic H and W: the output dimension is an expression that gives, for every input size,
 * what the constant formula gives. */
START_TEST(test_conv2d_symbolic_formula) {
  struct {
    int64_t k, s, pt, pb, d;
  } cases[] = {{3, 2, 1, 1, 1}, {7, 2, 3, 3, 1}, {3, 1, 0, 0, 2}, {2, 3, 0, 1, 1}, {5, 4, 2, 0, 2}};
  for (int ci = 0; ci < 5; ci++) {
    int64_t k = cases[ci].k, s = cases[ci].s, pt = cases[ci].pt, pb = cases[ci].pb, d = cases[ci].d;
    ir_expr *oh = out_dim(
        "nn.conv2d", TYPES(SYM("1", "3", "h", "8"), F32(4, 3, k, 1)),
        ATTRS(INTS("strides", s, 1), INTS("padding", pt, 0, pb, 0), INTS("dilation", d, 1)), 2);
    for (int64_t h = d * (k - 1) + 1; h < 40; h++) {
      int64_t want = (h + pt + pb - d * (k - 1) - 1) / s + 1;
      ck_assert_msg(dim_at(oh, "h", h) == want, "case %d, h = %lld: got %lld, want %lld", ci,
                    (long long)h, (long long)dim_at(oh, "h", h), (long long)want);
    }
  }
}
END_TEST

START_TEST(test_conv2d_errors) {
  CK_ERR(KILN_ERR_TYPE, "nn.conv2d: input channels 3 do not match weight's 4 * groups 1",
         "nn.conv2d", TYPES(F32(1, 3, 8, 8), F32(8, 4, 3, 3)), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "input channels 4 do not match weight's 1 * groups 2", "nn.conv2d",
         TYPES(F32(1, 4, 8, 8), F32(8, 1, 3, 3)), ATTRS(INT("groups", 2)));
  CK_ERR(KILN_ERR_TYPE, "groups 2 does not divide the input channels 3", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 1, 3, 3)), ATTRS(INT("groups", 2)));
  CK_ERR(KILN_ERR_TYPE, "groups 2 does not divide the output channels 5", "nn.conv2d",
         TYPES(F32(1, 4, 8, 8), F32(5, 2, 3, 3)), ATTRS(INT("groups", 2)));
  CK_ERR(KILN_ERR_TYPE,
         "output height is -2 (not positive): input height 2, padding 0+0, window 5, dilation 1, "
         "stride 1",
         "nn.conv2d", TYPES(F32(1, 3, 2, 8), F32(8, 3, 5, 3)), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "output width is 0 (not positive)", "nn.conv2d",
         TYPES(F32(1, 3, 8, 4), F32(8, 3, 3, 3)),
         ATTRS(INTS("dilation", 1, 2), INTS("strides", 1, 2)));
  CK_ERR(KILN_ERR_TYPE, "data_layout 'NCWH' is not supported (NCHW or NHWC)", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 3, 3, 3)), ATTRS(STR("data_layout", "NCWH")));
  CK_ERR(KILN_ERR_TYPE, "kernel_layout 'OIHX' is not an order of O, I, H and W", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 3, 3, 3)), ATTRS(STR("kernel_layout", "OIHX")));
  CK_ERR(KILN_ERR_TYPE, "out_layout 'NHWC' differs from the data layout 'NCHW'", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 3, 3, 3)), ATTRS(STR("out_layout", "NHWC")));
  CK_ERR(KILN_ERR_TYPE, "strides must have 2 values, got 1", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 3, 3, 3)), ATTRS(INTS("strides", 2)));
  CK_ERR(KILN_ERR_TYPE, "strides must be >= 1, got 0", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 3, 3, 3)), ATTRS(INTS("strides", 1, 0)));
  CK_ERR(KILN_ERR_TYPE, "padding must have 4 values, got 2", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 3, 3, 3)), ATTRS(INTS("padding", 1, 1)));
  CK_ERR(KILN_ERR_TYPE, "padding must be >= 0, got -1", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 3, 3, 3)), ATTRS(INTS("padding", 1, -1, 1, 1)));
  CK_ERR(KILN_ERR_TYPE, "dilation must be >= 1, got 0", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 3, 3, 3)), ATTRS(INTS("dilation", 0, 1)));
  CK_ERR(KILN_ERR_TYPE, "groups must be >= 1, got 0", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 3, 3, 3)), ATTRS(INT("groups", 0)));
  CK_ERR(KILN_ERR_TYPE, "channels 16 does not match the weight's 8 output channels", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 3, 3, 3)), ATTRS(INT("channels", 16)));
  CK_ERR(KILN_ERR_TYPE, "kernel_size (5, 5) does not match the weight's (3, 3)", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 3, 3, 3)), ATTRS(INTS("kernel_size", 5, 5)));
  CK_ERR(KILN_ERR_TYPE, "data must have rank 4, got shape (3, 8, 8)", "nn.conv2d",
         TYPES(F32(3, 8, 8), F32(8, 3, 3, 3)), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "data and weight dtypes differ (float32 vs int8)", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), tt(KILN_INT8, SHAPE(8, 3, 3, 3))), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "out_dtype 'int8x4' is not a tensor element type", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 3, 3, 3)), ATTRS(STR("out_dtype", "int8x4")));
  /* symbolic channels cannot be proven equal to the weight's */
  CK_ERR(KILN_ERR_TYPE, "input channels c do not match weight's 3 * groups 1", "nn.conv2d",
         TYPES(SYM("1", "c", "8", "8"), F32(8, 3, 3, 3)), NOATTRS);
  /* attribute names and kinds are checked by relay_call_op against the schema */
  CK_ERR(KILN_ERR_TYPE, "nn.conv2d has no attribute 'stride'", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 3, 3, 3)), ATTRS(INTS("stride", 2, 2)));
  CK_ERR(KILN_ERR_TYPE, "attribute 'strides' must be a list of integers", "nn.conv2d",
         TYPES(F32(1, 3, 8, 8), F32(8, 3, 3, 3)), ATTRS(INT("strides", 2)));
  CK_ERR(KILN_ERR_TYPE, "nn.conv2d takes 2 arguments, not 1", "nn.conv2d", TYPES(F32(1, 3, 8, 8)),
         NOATTRS);
}
END_TEST

/* ==== conv2d_transpose ==================================================================== */

/* The scatter form, independent of the kernel's gather: every input element adds its
 * products with the kernel to the output window it spreads over. */
static void ref_conv2d_transpose(const relay_tensor *x, const relay_tensor *w, const int64_t s[2],
                                 const int64_t p[4], const int64_t op[2], const int64_t d[2],
                                 int64_t groups, double *out, int64_t cap, int64_t os[4]) {
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t OPG = w->shape[1], KH = w->shape[2], KW = w->shape[3], IPG = C / groups;
  int64_t OH = (H - 1) * s[0] - p[0] - p[2] + d[0] * (KH - 1) + op[0] + 1;
  int64_t OW = (W - 1) * s[1] - p[1] - p[3] + d[1] * (KW - 1) + op[1] + 1;
  os[0] = N, os[1] = OPG * groups, os[2] = OH, os[3] = OW;
  ck_assert_int_le(os[0] * os[1] * OH * OW, cap);
  memset(out, 0, sizeof(double) * (size_t)(os[0] * os[1] * OH * OW));
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++)
          for (int64_t o = 0; o < OPG; o++)
            for (int64_t u = 0; u < KH; u++)
              for (int64_t v = 0; v < KW; v++) {
                int64_t y = i * s[0] - p[0] + u * d[0], z = j * s[1] - p[1] + v * d[1];
                if (y < 0 || y >= OH || z < 0 || z >= OW) continue;
                int64_t oc = c / IPG * OPG + o;
                out[((n * os[1] + oc) * OH + y) * OW + z] +=
                    get4(x, n, c, i, j) * get4(w, c, o, u, v);
              }
}

START_TEST(test_conv2d_transpose) {
  /* each input pixel becomes a 2x2 block: stride 2 with a 2x2 kernel of ones */
  relay_tensor *x = val_tensor(SHAPE(1, 1, 2, 2), (double[]){1, 2, 3, 4});
  relay_tensor *w = val_tensor(SHAPE(1, 1, 2, 2), (double[]){1, 1, 1, 1});
  relay_tensor *y = run_op("nn.conv2d_transpose", INS(x, w), ATTRS(INTS("strides", 2, 2)));
  CK_SHAPE(y, 1, 1, 4, 4);
  CK_VALUES(y, 0, 1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4);
  /* against the scatter form: stride, padding, output_padding, dilation, groups */
  struct {
    int64_t s[2], p[4], op[2], d[2], g, c, o;
  } cases[] = {
      {{2, 2}, {1, 1, 1, 1}, {1, 1}, {1, 1}, 1, 2, 3},
      {{3, 2}, {0, 1, 2, 0}, {2, 0}, {1, 2}, 1, 3, 2},
      {{2, 1}, {1, 0, 0, 0}, {0, 0}, {2, 1}, 2, 4, 6},
  };
  for (int ci = 0; ci < 3; ci++) {
    relay_tensor *xi = RND(11, 2, cases[ci].c, 4, 3),
                 *wi = RND(12, cases[ci].c, cases[ci].o / cases[ci].g, 3, 2);
    double want[2048];
    int64_t os[4];
    ref_conv2d_transpose(xi, wi, cases[ci].s, cases[ci].p, cases[ci].op, cases[ci].d, cases[ci].g,
                         want, 2048, os);
    relay_tensor *yi =
        run_op("nn.conv2d_transpose", INS(xi, wi),
               ATTRS(relay_attr_ints(A, "strides", 2, cases[ci].s),
                     relay_attr_ints(A, "padding", 4, cases[ci].p),
                     relay_attr_ints(A, "output_padding", 2, cases[ci].op),
                     relay_attr_ints(A, "dilation", 2, cases[ci].d), INT("groups", cases[ci].g)));
    ck_shape(yi, 4, os);
    ck_values(yi, want, 0);
  }
  /* NHWC data, the weight as HWOI (O: output channels per group, I: input channels) */
  relay_tensor *xn = RND(13, 1, 2, 3, 3), *wn = RND(14, 2, 3, 2, 2);
  double want[512];
  int64_t os[4];
  const int64_t s2[2] = {2, 2}, p0[4] = {0, 0, 0, 0}, op0[2] = {0, 0}, d1[2] = {1, 1};
  ref_conv2d_transpose(xn, wn, s2, p0, op0, d1, 1, want, 512, os);
  relay_tensor *yn = run_op(
      "nn.conv2d_transpose", INS(permute4(xn, TO_NHWC), permute4(wn, TO_HWIO)),
      ATTRS(INTS("strides", 2, 2), STR("data_layout", "NHWC"), STR("kernel_layout", "HWOI")));
  ck_shape(permute4(yn, TO_NCHW), 4, os);
  ck_values(permute4(yn, TO_NCHW), want, 0);
}
END_TEST

START_TEST(test_conv2d_transpose_types) {
  CK_TYPE("Tensor[(1, 8, 16, 16), float32]", "nn.conv2d_transpose",
          TYPES(F32(1, 4, 8, 8), F32(4, 8, 4, 4)),
          ATTRS(INTS("strides", 2, 2), INTS("padding", 1, 1, 1, 1)));
  CK_TYPE("Tensor[(1, 8, 17, 17), float32]", "nn.conv2d_transpose",
          TYPES(F32(1, 4, 8, 8), F32(4, 4, 3, 3)),
          ATTRS(INTS("strides", 2, 2), INTS("padding", 0, 0, 0, 0), INT("groups", 2)));
  /* symbolic: the classic x2 upsampling (kernel 4, stride 2, padding 1) gives 2h */
  ir_expr *up = out_dim("nn.conv2d_transpose", TYPES(SYM("n", "4", "h", "w"), F32(4, 8, 4, 4)),
                        ATTRS(INTS("strides", 2, 2), INTS("padding", 1, 1, 1, 1)), 3);
  for (int64_t w = 1; w < 20; w++) ck_assert_int_eq(dim_at(up, "w", w), 2 * w);
  ir_expr *oh = out_dim(
      "nn.conv2d_transpose", TYPES(SYM("n", "4", "h", "w"), F32(4, 8, 3, 3)),
      ATTRS(INTS("strides", 2, 2), INTS("padding", 1, 1, 1, 1), INTS("output_padding", 1, 1)), 2);
  for (int64_t h = 1; h < 20; h++)
    ck_assert_int_eq(dim_at(oh, "h", h), (h - 1) * 2 - 2 + 2 + 1 + 1);
  CK_ERR(KILN_ERR_TYPE, "output_padding 2 must be smaller than the stride 2 or the dilation 1",
         "nn.conv2d_transpose", TYPES(F32(1, 4, 8, 8), F32(4, 8, 3, 3)),
         ATTRS(INTS("strides", 2, 2), INTS("output_padding", 2, 0)));
  CK_ERR(KILN_ERR_TYPE, "input channels 4 do not match the weight's 3 input channels",
         "nn.conv2d_transpose", TYPES(F32(1, 4, 8, 8), F32(3, 8, 3, 3)), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "groups 3 does not divide the input channels 4", "nn.conv2d_transpose",
         TYPES(F32(1, 4, 8, 8), F32(4, 8, 3, 3)), ATTRS(INT("groups", 3)));
  CK_ERR(KILN_ERR_TYPE,
         "output height is 0 (not positive): padding 1+0 removes more than the transposed "
         "convolution of input height 1 produces",
         "nn.conv2d_transpose", TYPES(F32(1, 4, 1, 8), F32(4, 8, 1, 1)),
         ATTRS(INTS("padding", 1, 0, 0, 0)));
  CK_ERR(KILN_ERR_TYPE, "output_padding must have 2 values, got 4", "nn.conv2d_transpose",
         TYPES(F32(1, 4, 8, 8), F32(4, 8, 3, 3)), ATTRS(INTS("output_padding", 0, 0, 0, 0)));
}
END_TEST

/* ==== bias_add, batch_norm, layer_norm ==================================================== */

START_TEST(test_bias_add) {
  CK_TYPE("Tensor[(n, 4, h, w), float32]", "nn.bias_add", TYPES(SYM("n", "4", "h", "w"), F32(4)),
          NOATTRS);
  CK_TYPE("Tensor[(2, 5), float32]", "nn.bias_add", TYPES(F32(2, 5), F32(5)),
          ATTRS(INT("axis", -1)));
  CK_ERR(KILN_ERR_TYPE, "nn.bias_add: bias has length 5, the data's axis has 4", "nn.bias_add",
         TYPES(F32(2, 4, 3), F32(5)), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "axis 3 is out of range for a tensor of rank 3", "nn.bias_add",
         TYPES(F32(2, 4, 3), F32(4)), ATTRS(INT("axis", 3)));
  CK_ERR(KILN_ERR_TYPE, "bias must have rank 1, got shape (1, 4)", "nn.bias_add",
         TYPES(F32(2, 4, 3), F32(1, 4)), NOATTRS);
  relay_tensor *x = RND(20, 2, 3, 2, 2), *b = val_tensor(SHAPE(3), (double[]){10, 20, 30});
  relay_tensor *y = run_op("nn.bias_add", INS(x, b), NOATTRS);
  for (int64_t i = 0; i < 24; i++) ck_assert_double_eq(get(y, i), get(x, i) + 10 * (i / 4 % 3 + 1));
  relay_tensor *z =
      run_op("nn.bias_add", INS(x, val_tensor(SHAPE(2), (double[]){1, 2})), ATTRS(INT("axis", -1)));
  for (int64_t i = 0; i < 24; i++) ck_assert_double_eq(get(z, i), get(x, i) + (i % 2 + 1));
}
END_TEST

START_TEST(test_batch_norm) {
  CK_TYPE("Tensor[(n, 3, h, w), float32]", "nn.batch_norm",
          TYPES(SYM("n", "3", "h", "w"), F32(3), F32(3), F32(3), F32(3)), NOATTRS);
  CK_TYPE("Tensor[(2, 4, 4, 3), float32]", "nn.batch_norm",
          TYPES(F32(2, 4, 4, 3), F32(3), F32(3), F32(3), F32(3)), ATTRS(INT("axis", -1)));
  CK_ERR(KILN_ERR_TYPE, "nn.batch_norm: moving_var has length 4, the data's axis has 3",
         "nn.batch_norm", TYPES(F32(1, 3, 2, 2), F32(3), F32(3), F32(3), F32(4)), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "data and gamma dtypes differ (float32 vs float16)", "nn.batch_norm",
         TYPES(F32(1, 3, 2, 2), tt(KILN_FLOAT16, SHAPE(3)), F32(3), F32(3), F32(3)), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "nn.batch_norm: needs float data, not int32", "nn.batch_norm",
         TYPES(tt(KILN_INT32, SHAPE(1, 3)), F32(3), F32(3), F32(3), F32(3)), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "epsilon must be >= 0, got -1", "nn.batch_norm",
         TYPES(F32(1, 3), F32(3), F32(3), F32(3), F32(3)), ATTRS(FLT("epsilon", -1)));
  CK_ERR(KILN_ERR_TYPE, "nn.batch_norm takes 5 arguments, not 3", "nn.batch_norm",
         TYPES(F32(1, 3), F32(3), F32(3)), NOATTRS);
  relay_tensor *x = RND(21, 2, 3, 2, 2);
  relay_tensor *g = val_tensor(SHAPE(3), (double[]){0.5, 2, -1}),
               *b = val_tensor(SHAPE(3), (double[]){1, 0, -2});
  relay_tensor *m = val_tensor(SHAPE(3), (double[]){0.25, -0.5, 0}),
               *v = val_tensor(SHAPE(3), (double[]){1, 4, 0.25});
  for (int flags = 0; flags < 4; flags++) {
    int center = flags & 1, scale = flags >> 1;
    relay_tensor *y =
        run_op("nn.batch_norm", INS(x, g, b, m, v),
               ATTRS(FLT("epsilon", 1e-3), INT("center", center), INT("scale", scale)));
    for (int64_t i = 0; i < 24; i++) {
      int64_t c = i / 4 % 3;
      double want = (get(x, i) - get(m, c)) / sqrt(get(v, c) + 1e-3) * (scale ? get(g, c) : 1) +
                    (center ? get(b, c) : 0);
      ck_assert_double_eq_tol(get(y, i), want, 1e-6);
    }
  }
  /* the channel axis last */
  relay_tensor *xl = RND(22, 2, 2, 3),
               *yl = run_op("nn.batch_norm", INS(xl, g, b, m, v), ATTRS(INT("axis", 2)));
  for (int64_t i = 0; i < 12; i++) {
    int64_t c = i % 3;
    double want = (get(xl, i) - get(m, c)) / sqrt(get(v, c) + 1e-5) * get(g, c) + get(b, c);
    ck_assert_double_eq_tol(get(yl, i), want, 1e-6);
  }
}
END_TEST

START_TEST(test_layer_norm) {
  CK_TYPE("Tensor[(b, s, 8), float32]", "nn.layer_norm", TYPES(SYM("b", "s", "8"), F32(8), F32(8)),
          NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "nn.layer_norm: gamma has length 8, the data's axis has s", "nn.layer_norm",
         TYPES(SYM("b", "8", "s"), F32(8), F32(8)), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "axis -4 is out of range for a tensor of rank 3", "nn.layer_norm",
         TYPES(F32(2, 3, 8), F32(8), F32(8)), ATTRS(INT("axis", -4)));
  /* the last axis, against the formula with the biased variance */
  relay_tensor *x = RND(23, 3, 5), *g = RND(24, 5), *b = RND(25, 5);
  relay_tensor *y = run_op("nn.layer_norm", INS(x, g, b), ATTRS(FLT("epsilon", 1e-2)));
  for (int r = 0; r < 3; r++) {
    double mean = 0, var = 0, sum = 0;
    for (int k = 0; k < 5; k++) mean += get(x, r * 5 + k) / 5;
    for (int k = 0; k < 5; k++) var += (get(x, r * 5 + k) - mean) * (get(x, r * 5 + k) - mean) / 5;
    for (int k = 0; k < 5; k++) {
      double want = (get(x, r * 5 + k) - mean) / sqrt(var + 1e-2) * get(g, k) + get(b, k);
      ck_assert_double_eq_tol(get(y, r * 5 + k), want, 1e-6);
    }
    /* without scale and center each row has mean 0 */
    relay_tensor *z =
        run_op("nn.layer_norm", INS(x, g, b), ATTRS(INT("center", 0), INT("scale", 0)));
    for (int k = 0; k < 5; k++) sum += get(z, r * 5 + k);
    ck_assert_double_eq_tol(sum, 0, 1e-6);
  }
  /* a middle axis */
  relay_tensor *x3 = RND(26, 2, 3, 2), *g3 = val_tensor(SHAPE(3), (double[]){1, 2, 3});
  relay_tensor *b3 = val_tensor(SHAPE(3), (double[]){0, 0, 1});
  relay_tensor *y3 = run_op("nn.layer_norm", INS(x3, g3, b3), ATTRS(INT("axis", 1)));
  for (int o = 0; o < 2; o++)
    for (int i = 0; i < 2; i++) {
      double mean = 0, var = 0;
      for (int k = 0; k < 3; k++) mean += get(x3, o * 6 + k * 2 + i) / 3;
      for (int k = 0; k < 3; k++) var += pow(get(x3, o * 6 + k * 2 + i) - mean, 2) / 3;
      for (int k = 0; k < 3; k++)
        ck_assert_double_eq_tol(
            get(y3, o * 6 + k * 2 + i),
            (get(x3, o * 6 + k * 2 + i) - mean) / sqrt(var + 1e-5) * (k + 1) + (k == 2), 1e-5);
    }
}
END_TEST

/* ==== softmax ============================================================================ */

START_TEST(test_softmax) {
  CK_TYPE("Tensor[(n, 10), float32]", "nn.softmax", TYPES(SYM("n", "10")), NOATTRS);
  CK_TYPE("Tensor[(n, 10), float32]", "nn.log_softmax", TYPES(SYM("n", "10")),
          ATTRS(INT("axis", 0)));
  CK_ERR(KILN_ERR_TYPE, "nn.softmax: axis 2 is out of range for a tensor of rank 2", "nn.softmax",
         TYPES(F32(2, 3)), ATTRS(INT("axis", 2)));
  CK_ERR(KILN_ERR_TYPE, "nn.log_softmax: needs float data, not int32", "nn.log_softmax",
         TYPES(tt(KILN_INT32, SHAPE(2, 3))), NOATTRS);
  relay_tensor *x = RND(30, 4, 6);
  relay_tensor *y = run_op("nn.softmax", INS(x), NOATTRS);
  relay_tensor *ly = run_op("nn.log_softmax", INS(x), NOATTRS);
  for (int r = 0; r < 4; r++) {
    double sum = 0, den = 0;
    for (int k = 0; k < 6; k++) den += exp(get(x, r * 6 + k));
    for (int k = 0; k < 6; k++) {
      sum += get(y, r * 6 + k);
      ck_assert_double_eq_tol(get(y, r * 6 + k), exp(get(x, r * 6 + k)) / den, 1e-7);
      ck_assert_double_eq_tol(get(ly, r * 6 + k), get(x, r * 6 + k) - log(den), 1e-6);
    }
    ck_assert_double_eq_tol(sum, 1, 1e-6);
  }
  /* axis 0: columns sum to 1 */
  relay_tensor *c = run_op("nn.softmax", INS(x), ATTRS(INT("axis", 0)));
  for (int k = 0; k < 6; k++) {
    double sum = 0;
    for (int r = 0; r < 4; r++) sum += get(c, r * 6 + k);
    ck_assert_double_eq_tol(sum, 1, 1e-6);
  }
  /* numerically stable: huge logits neither overflow nor give NaN */
  relay_tensor *big = val_tensor(SHAPE(1, 3), (double[]){1000, 1001, 999});
  relay_tensor *s = run_op("nn.softmax", INS(big), NOATTRS),
               *ls = run_op("nn.log_softmax", INS(big), NOATTRS);
  double den = exp(-1) + 1 + exp(-2);
  CK_VALUES(s, 1e-7, exp(-1) / den, 1 / den, exp(-2) / den);
  CK_VALUES(ls, 1e-5, -1 - log(den), -log(den), -2 - log(den));
}
END_TEST

/* ==== Pooling ============================================================================ */

START_TEST(test_pool_types) {
  CK_TYPE("Tensor[(1, 3, 16, 16), float32]", "nn.max_pool2d", TYPES(F32(1, 3, 32, 32)),
          ATTRS(INTS("pool_size", 2, 2), INTS("strides", 2, 2)));
  CK_TYPE("Tensor[(1, 64, 56, 56), float32]", "nn.max_pool2d", TYPES(F32(1, 64, 112, 112)),
          ATTRS(INTS("pool_size", 3, 3), INTS("strides", 2, 2), INTS("padding", 1, 1, 1, 1)));
  CK_TYPE("Tensor[(1, 1, 2, 2), float32]", "nn.max_pool2d", TYPES(F32(1, 1, 5, 5)),
          ATTRS(INTS("pool_size", 2, 2), INTS("strides", 2, 2)));
  CK_TYPE("Tensor[(1, 1, 3, 3), float32]", "nn.max_pool2d", TYPES(F32(1, 1, 5, 5)),
          ATTRS(INTS("pool_size", 2, 2), INTS("strides", 2, 2), INT("ceil_mode", 1)));
  /* ceil mode drops a last window that would start in the padding after the input */
  CK_TYPE("Tensor[(1, 1, 3, 3), float32]", "nn.avg_pool2d", TYPES(F32(1, 1, 5, 5)),
          ATTRS(INTS("pool_size", 2, 2), INTS("strides", 2, 2), INTS("padding", 1, 1, 1, 1),
                INT("ceil_mode", 1)));
  CK_TYPE("Tensor[(2, 7, 7, 8), float32]", "nn.avg_pool2d", TYPES(F32(2, 14, 14, 8)),
          ATTRS(INTS("pool_size", 2, 2), INTS("strides", 2, 2), STR("layout", "NHWC")));
  CK_TYPE("Tensor[(n, c, 1, 1), float32]", "nn.global_avg_pool2d", TYPES(SYM("n", "c", "h", "w")),
          NOATTRS);
  CK_TYPE("Tensor[(n, 1, 1, c), float32]", "nn.global_max_pool2d", TYPES(SYM("n", "h", "w", "c")),
          ATTRS(STR("layout", "NHWC")));
  CK_TYPE("Tensor[(n, 8, 3, 4), float32]", "nn.adaptive_avg_pool2d", TYPES(SYM("n", "8", "h", "w")),
          ATTRS(INTS("output_size", 3, 4)));
  CK_TYPE("Tensor[(n, 3, 4, 8), int8]", "nn.adaptive_max_pool2d",
          TYPES(sym(KILN_INT8, 4, (const char *[]){"n", "h", "w", "8"})),
          ATTRS(INTS("output_size", 3, 4), STR("layout", "NHWC")));
  /* symbolic: a stride-1 "same" pool keeps h */
  CK_TYPE("Tensor[(n, 16, h, w), float32]", "nn.max_pool2d", TYPES(SYM("n", "16", "h", "w")),
          ATTRS(INTS("pool_size", 3, 3), INTS("padding", 1, 1, 1, 1)));
  CK_ERR(KILN_ERR_TYPE, "nn.max_pool2d: pool_size must be >= 1, got 0", "nn.max_pool2d",
         TYPES(F32(1, 1, 4, 4)), ATTRS(INTS("pool_size", 0, 2)));
  CK_ERR(KILN_ERR_TYPE,
         "nn.avg_pool2d: output width is 0 (not positive): input width 2, padding 0+0, window 3",
         "nn.avg_pool2d", TYPES(F32(1, 1, 4, 2)), ATTRS(INTS("pool_size", 1, 3)));
  CK_ERR(KILN_ERR_TYPE, "layout 'HWCN' is not supported", "nn.max_pool2d", TYPES(F32(1, 1, 4, 4)),
         ATTRS(STR("layout", "HWCN")));
  CK_ERR(KILN_ERR_TYPE, "nn.max_pool2d has no attribute 'count_include_pad'", "nn.max_pool2d",
         TYPES(F32(1, 1, 4, 4)), ATTRS(INT("count_include_pad", 1)));
  CK_ERR(KILN_ERR_TYPE, "output_size must have 2 values, got 1", "nn.adaptive_avg_pool2d",
         TYPES(F32(1, 1, 4, 4)), ATTRS(INTS("output_size", 2)));
  CK_ERR(KILN_ERR_TYPE, "data must have rank 4, got shape (4, 4)", "nn.global_avg_pool2d",
         TYPES(F32(4, 4)), NOATTRS);
}
END_TEST

/* PyTorch's output size for pooling, written from its definition (with the ceil-mode fix
 * that drops a window starting in the padding after the input). */
static int64_t torch_pool_out(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t d,
                              bool ceil_mode) {
  int64_t num = in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = num / s + 1;
  if (ceil_mode && (out - 1) * s >= in + pad) out--;
  return out;
}

START_TEST(test_pool_symbolic_formula) {
  struct {
    int64_t k, s, p, d;
  } cases[] = {{2, 2, 0, 1}, {3, 2, 1, 1}, {2, 2, 1, 1}, {3, 3, 1, 1}, {3, 2, 1, 2}, {5, 3, 2, 1}};
  for (int ci = 0; ci < 6; ci++)
    for (int ceil_mode = 0; ceil_mode < 2; ceil_mode++) {
      int64_t k = cases[ci].k, s = cases[ci].s, p = cases[ci].p, d = cases[ci].d;
      relay_attr *attrs[] = {INTS("pool_size", k, k), INTS("strides", s, s),
                             INTS("padding", p, p, p, p), INTS("dilation", d, d),
                             INT("ceil_mode", ceil_mode)};
      ir_expr *oh = out_dim("nn.max_pool2d", TYPES(SYM("n", "3", "h", "w")), 5, attrs, 2);
      for (int64_t h = d * (k - 1) + 1; h < 30; h++) {
        int64_t want = torch_pool_out(h, k, s, p, d, ceil_mode);
        ck_assert_msg(dim_at(oh, "h", h) == want, "case %d ceil %d h %lld: got %lld want %lld", ci,
                      ceil_mode, (long long)h, (long long)dim_at(oh, "h", h), (long long)want);
        /* and the constant path agrees */
        const relay_tensor_type *t = relay_as_tensor_type(relay_type_of(
            relay_call_op(A, "nn.max_pool2d", 1,
                          (relay_expr *[]){&relay_var_new(A, "x", F32(1, 1, h, 4))->h}, 5, attrs)));
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(ir_as_int(t->shape[2])->value, want);
      }
    }
}
END_TEST

START_TEST(test_max_pool_kernel) {
  relay_tensor *x = IOTA(1, 1, 4, 4);
  CK_VALUES(run_op("nn.max_pool2d", INS(x), ATTRS(INTS("pool_size", 2, 2), INTS("strides", 2, 2))),
            0, 5, 7, 13, 15);
  /* ceil mode: the partial last windows count */
  relay_tensor *x5 = IOTA(1, 1, 5, 5);
  relay_tensor *y =
      run_op("nn.max_pool2d", INS(x5),
             ATTRS(INTS("pool_size", 2, 2), INTS("strides", 2, 2), INT("ceil_mode", 1)));
  CK_SHAPE(y, 1, 1, 3, 3);
  CK_VALUES(y, 0, 6, 8, 9, 16, 18, 19, 21, 23, 24);
  /* padding 1 and ceil mode: windows start at -1, 1, 3 (not 5, which is in the padding) */
  y = run_op("nn.max_pool2d", INS(x5),
             ATTRS(INTS("pool_size", 2, 2), INTS("strides", 2, 2), INTS("padding", 1, 1, 1, 1),
                   INT("ceil_mode", 1)));
  CK_SHAPE(y, 1, 1, 3, 3);
  CK_VALUES(y, 0, 0, 2, 4, 10, 12, 14, 20, 22, 24);
  /* dilation 2: the window's last tap is at +2 */
  y = run_op("nn.max_pool2d", INS(x5), ATTRS(INTS("pool_size", 2, 2), INTS("dilation", 2, 2)));
  CK_VALUES(y, 0, 12, 13, 14, 17, 18, 19, 22, 23, 24);
  /* negative values with padding: the padding never wins */
  relay_tensor *neg = val_tensor(SHAPE(1, 1, 2, 2), (double[]){-5, -6, -7, -8});
  CK_VALUES(run_op("nn.max_pool2d", INS(neg),
                   ATTRS(INTS("pool_size", 3, 3), INTS("padding", 1, 1, 1, 1))),
            0, -5, -5, -5, -5);
  /* NaN propagates */
  relay_tensor *nan = val_tensor(SHAPE(1, 1, 1, 2), (double[]){NAN, 1});
  ck_assert(isnan(get(run_op("nn.max_pool2d", INS(nan), ATTRS(INTS("pool_size", 1, 2))), 0)));
  /* NHWC agrees with NCHW */
  relay_tensor *r = RND(40, 2, 3, 7, 6);
  relay_attr *attrs[] = {INTS("pool_size", 3, 2), INTS("strides", 2, 1),
                         INTS("padding", 1, 0, 1, 1), INT("ceil_mode", 1)};
  relay_tensor *a = run_op("nn.max_pool2d", INS(r), 4, attrs);
  relay_attr *attrs_nhwc[] = {attrs[0], attrs[1], attrs[2], attrs[3], STR("layout", "NHWC")};
  relay_tensor *b =
      permute4(run_op("nn.max_pool2d", INS(permute4(r, TO_NHWC)), 5, attrs_nhwc), TO_NCHW);
  ck_shape(b, 4, a->shape);
  for (int64_t i = 0; i < relay_tensor_numel(a); i++) ck_assert_double_eq(get(a, i), get(b, i));
  /* integer max pooling */
  relay_tensor *xi = iota_tensor(KILN_INT8, SHAPE(1, 1, 2, 2));
  relay_tensor *yi = run_op("nn.max_pool2d", INS(xi), ATTRS(INTS("pool_size", 2, 2)));
  ck_assert(kiln_dtype_eq(yi->dtype, KILN_INT8));
  ck_assert_double_eq(get(yi, 0), 3);
}
END_TEST

START_TEST(test_avg_pool_kernel) {
  relay_tensor *ones = val_tensor(SHAPE(1, 1, 3, 3), (double[]){1, 1, 1, 1, 1, 1, 1, 1, 1});
  /* count_include_pad = 0: only input elements count, so ones stay ones */
  relay_tensor *y = run_op("nn.avg_pool2d", INS(ones),
                           ATTRS(INTS("pool_size", 3, 3), INTS("padding", 1, 1, 1, 1)));
  CK_VALUES(y, 1e-7, 1, 1, 1, 1, 1, 1, 1, 1, 1);
  /* count_include_pad = 1: corners see 4 of 9, edges 6 of 9 */
  y = run_op(
      "nn.avg_pool2d", INS(ones),
      ATTRS(INTS("pool_size", 3, 3), INTS("padding", 1, 1, 1, 1), INT("count_include_pad", 1)));
  CK_VALUES(y, 1e-7, 4. / 9, 6. / 9, 4. / 9, 6. / 9, 1, 6. / 9, 4. / 9, 6. / 9, 4. / 9);
  /* ceil mode: taps past the input (there is no padding) never count, even with
   * count_include_pad */
  relay_tensor *x5 = IOTA(1, 1, 5, 5);
  for (int incl = 0; incl < 2; incl++) {
    y = run_op("nn.avg_pool2d", INS(x5),
               ATTRS(INTS("pool_size", 2, 2), INTS("strides", 2, 2), INT("ceil_mode", 1),
                     INT("count_include_pad", incl)));
    CK_VALUES(y, 1e-6, 3, 5, 6.5, 13, 15, 16.5, 20.5, 22.5, 24);
  }
  /* padding 1 with ceil mode: windows over rows and columns {-1, 0}, {1, 2}, {3, 4}; the
   * first holds x[0][0] and three padding taps, which count only with count_include_pad */
  y = run_op("nn.avg_pool2d", INS(x5),
             ATTRS(INTS("pool_size", 2, 2), INTS("strides", 2, 2), INTS("padding", 1, 1, 1, 1),
                   INT("ceil_mode", 1), INT("count_include_pad", 1)));
  CK_VALUES(y, 1e-6, 0, 3. / 4, 7. / 4, 15. / 4, 9, 11, 35. / 4, 19, 21);
  y = run_op("nn.avg_pool2d", INS(x5),
             ATTRS(INTS("pool_size", 2, 2), INTS("strides", 2, 2), INTS("padding", 1, 1, 1, 1),
                   INT("ceil_mode", 1)));
  CK_VALUES(y, 1e-6, 0, 3. / 2, 7. / 2, 15. / 2, 9, 11, 35. / 2, 19, 21);
  /* dilation: the average of the four taps of x[i][j] = 5i + j is 5i + j + 6 */
  y = run_op("nn.avg_pool2d", INS(x5), ATTRS(INTS("pool_size", 2, 2), INTS("dilation", 2, 2)));
  CK_VALUES(y, 1e-6, 6, 7, 8, 11, 12, 13, 16, 17, 18);
}
END_TEST

START_TEST(test_global_and_adaptive_pool) {
  relay_tensor *x = RND(41, 2, 3, 4, 5);
  relay_tensor *ga = run_op("nn.global_avg_pool2d", INS(x), NOATTRS);
  relay_tensor *gm = run_op("nn.global_max_pool2d", INS(x), NOATTRS);
  CK_SHAPE(ga, 2, 3, 1, 1);
  for (int nc = 0; nc < 6; nc++) {
    double sum = 0, mx = -INFINITY;
    for (int k = 0; k < 20; k++) sum += get(x, nc * 20 + k), mx = fmax(mx, get(x, nc * 20 + k));
    ck_assert_double_eq_tol(get(ga, nc), sum / 20, 1e-6);
    ck_assert_double_eq(get(gm, nc), mx);
  }
  /* NHWC global average */
  relay_tensor *gn =
      run_op("nn.global_avg_pool2d", INS(permute4(x, TO_NHWC)), ATTRS(STR("layout", "NHWC")));
  CK_SHAPE(gn, 2, 1, 1, 3);
  for (int nc = 0; nc < 6; nc++) ck_assert_double_eq_tol(get(gn, nc), get(ga, nc), 1e-6);
  /* adaptive 5x7 -> 3x4 with x[r][c] = 10r + c. Rows pooled: {0,1} {1,2,3} {3,4};
   * columns: {0,1} {1,2,3} {3,4,5} {5,6} (floor(i*H/O) .. ceil((i+1)*H/O)) */
  relay_tensor *in = new_tensor(KILN_FLOAT32, SHAPE(1, 1, 5, 7));
  for (int r = 0; r < 5; r++)
    for (int c = 0; c < 7; c++) relay_tensor_set(in, r * 7 + c, 10 * r + c);
  relay_tensor *aa = run_op("nn.adaptive_avg_pool2d", INS(in), ATTRS(INTS("output_size", 3, 4)));
  relay_tensor *am = run_op("nn.adaptive_max_pool2d", INS(in), ATTRS(INTS("output_size", 3, 4)));
  CK_SHAPE(aa, 1, 1, 3, 4);
  const double row_mean[3] = {0.5, 2, 3.5}, col_mean[4] = {0.5, 2, 4, 5.5};
  const double row_max[3] = {1, 3, 4}, col_max[4] = {1, 3, 5, 6};
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) {
      ck_assert_double_eq_tol(get(aa, i * 4 + j), 10 * row_mean[i] + col_mean[j], 1e-6);
      ck_assert_double_eq(get(am, i * 4 + j), 10 * row_max[i] + col_max[j]);
    }
  /* upsampling adaptive pool (output larger than input) repeats elements */
  relay_tensor *small = val_tensor(SHAPE(1, 1, 1, 2), (double[]){3, 7});
  CK_VALUES(run_op("nn.adaptive_avg_pool2d", INS(small), ATTRS(INTS("output_size", 2, 3))), 1e-7, 3,
            5, 7, 3, 5, 7);
}
END_TEST

/* ==== pad ================================================================================= */

START_TEST(test_pad) {
  CK_TYPE("Tensor[(3, 7), float32]", "nn.pad", TYPES(F32(2, 3)),
          ATTRS(INTS("pad_width", 0, 1, 2, 2)));
  CK_TYPE("Tensor[(n, 3, h, w), float32]", "nn.pad", TYPES(SYM("n", "3", "h", "w")),
          ATTRS(INTS("pad_width", 0, 0, 0, 0, 0, 0, 0, 0)));
  ir_expr *d = out_dim("nn.pad", TYPES(SYM("n", "h")), ATTRS(INTS("pad_width", 0, 0, 2, 3)), 1);
  ck_assert_int_eq(dim_at(d, "h", 10), 15);
  CK_ERR(KILN_ERR_TYPE, "nn.pad: pad_width has 2 values, a tensor of shape (2, 3) needs 4",
         "nn.pad", TYPES(F32(2, 3)), ATTRS(INTS("pad_width", 1, 1)));
  CK_ERR(KILN_ERR_TYPE, "pad_width must be >= 0, got -1", "nn.pad", TYPES(F32(2, 3)),
         ATTRS(INTS("pad_width", 0, 0, -1, 0)));
  CK_ERR(KILN_ERR_TYPE, "pad_mode 'wrap' is not constant, edge or reflect", "nn.pad",
         TYPES(F32(2, 3)), ATTRS(INTS("pad_width", 0, 0, 1, 0), STR("pad_mode", "wrap")));
  CK_ERR(KILN_ERR_TYPE, "reflect padding 3 on axis 1 needs a dimension larger than it, not 3",
         "nn.pad", TYPES(F32(2, 3)),
         ATTRS(INTS("pad_width", 0, 0, 0, 3), STR("pad_mode", "reflect")));
  CK_ERR(KILN_ERR_TYPE, "reflect padding 1 on axis 1 needs a dimension larger than it, not w",
         "nn.pad", TYPES(SYM("2", "w")),
         ATTRS(INTS("pad_width", 0, 0, 1, 0), STR("pad_mode", "reflect")));
  CK_ERR(KILN_ERR_TYPE, "edge padding of axis 0 needs a non-empty dimension, not 0", "nn.pad",
         TYPES(F32(0, 3)), ATTRS(INTS("pad_width", 1, 0, 0, 0), STR("pad_mode", "edge")));
  relay_tensor *x = val_tensor(SHAPE(2, 3), (double[]){1, 2, 3, 4, 5, 6});
  relay_tensor *y =
      run_op("nn.pad", INS(x), ATTRS(INTS("pad_width", 1, 0, 1, 2), FLT("pad_value", -1)));
  CK_SHAPE(y, 3, 6);
  CK_VALUES(y, 0, -1, -1, -1, -1, -1, -1, -1, 1, 2, 3, -1, -1, -1, 4, 5, 6, -1, -1);
  y = run_op("nn.pad", INS(x), ATTRS(INTS("pad_width", 1, 1, 2, 1), STR("pad_mode", "edge")));
  CK_SHAPE(y, 4, 6);
  CK_VALUES(y, 0, 1, 1, 1, 2, 3, 3, 1, 1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 6, 4, 4, 4, 5, 6, 6);
  y = run_op("nn.pad", INS(x), ATTRS(INTS("pad_width", 1, 1, 2, 2), STR("pad_mode", "reflect")));
  CK_SHAPE(y, 4, 7);
  CK_VALUES(y, 0, 6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2, 1, 6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2,
            1);
  /* integer data with a constant */
  relay_tensor *xi = iota_tensor(KILN_INT32, SHAPE(2));
  CK_VALUES(run_op("nn.pad", INS(xi), ATTRS(INTS("pad_width", 1, 1), FLT("pad_value", 7))), 0, 7, 0,
            1, 7);
}
END_TEST

/* ==== image.resize2d ===================================================================== */

/* Resizes a 1 x 1 x H x W tensor of the given values. */
static relay_tensor *resize(int64_t h, int64_t w, const double *v, int64_t oh, int64_t ow,
                            const char *method, const char *mode, const char *rounding) {
  relay_tensor *x = val_tensor(SHAPE(1, 1, h, w), v);
  return run_op("image.resize2d", INS(x),
                ATTRS(INTS("size", oh, ow), STR("method", method),
                      STR("coordinate_transformation_mode", mode),
                      STR("rounding_method", rounding)));
}

START_TEST(test_resize_nearest) {
  const double q[4] = {1, 2, 3, 4};
  /* PyTorch's nearest: asymmetric + floor */
  CK_VALUES(resize(2, 2, q, 4, 4, "nearest_neighbor", "asymmetric", "floor"), 0, 1, 1, 2, 2, 1, 1,
            2, 2, 3, 3, 4, 4, 3, 3, 4, 4);
  double x16[16];
  for (int i = 0; i < 16; i++) x16[i] = i;
  CK_VALUES(resize(4, 4, x16, 2, 2, "nearest_neighbor", "asymmetric", "floor"), 0, 0, 2, 8, 10);
  /* half_pixel: coordinates 0.5 and 2.5; TVM's default rounding for it is floor */
  CK_VALUES(resize(4, 4, x16, 2, 2, "nearest_neighbor", "half_pixel", ""), 0, 0, 2, 8, 10);
  CK_VALUES(resize(4, 4, x16, 2, 2, "nearest_neighbor", "half_pixel", "round_prefer_ceil"), 0, 5, 7,
            13, 15);
  CK_VALUES(resize(4, 4, x16, 2, 2, "nearest_neighbor", "half_pixel", "round_prefer_floor"), 0, 0,
            2, 8, 10);
  CK_VALUES(resize(4, 4, x16, 2, 2, "nearest_neighbor", "half_pixel", "ceil"), 0, 5, 7, 13, 15);
  /* align_corners 3 -> 5: coordinates 0, .5, 1, 1.5, 2; its default "round" is half to even */
  const double r3[3] = {10, 20, 30};
  CK_VALUES(resize(1, 3, r3, 1, 5, "nearest_neighbor", "align_corners", ""), 0, 10, 10, 20, 30, 30);
  CK_VALUES(resize(1, 3, r3, 1, 5, "nearest_neighbor", "align_corners", "round_prefer_ceil"), 0, 10,
            20, 20, 30, 30);
  /* tf_half_pixel_for_nn: (o + 0.5) * scale = 0.75, 2.25, 3.75 for 4 -> ... */
  const double r4[4] = {1, 2, 3, 4};
  CK_VALUES(resize(1, 4, r4, 1, 3, "nearest_neighbor", "tf_half_pixel_for_nn", "floor"), 0, 1, 3,
            4);
}
END_TEST

START_TEST(test_resize_linear) {
  const double r2[2] = {0, 4};
  CK_VALUES(resize(1, 2, r2, 1, 4, "linear", "half_pixel", ""), 1e-6, 0, 1, 3, 4);
  CK_VALUES(resize(1, 2, r2, 1, 4, "linear", "pytorch_half_pixel", ""), 1e-6, 0, 1, 3, 4);
  CK_VALUES(resize(1, 2, r2, 1, 3, "linear", "align_corners", ""), 1e-6, 0, 2, 4);
  CK_VALUES(resize(1, 2, r2, 1, 4, "linear", "asymmetric", ""), 1e-6, 0, 2, 4, 4);
  /* pytorch_half_pixel differs from half_pixel for an output of length 1 */
  const double r4[4] = {0, 4, 8, 12};
  CK_VALUES(resize(1, 4, r4, 1, 1, "linear", "half_pixel", ""), 1e-6, 6);
  CK_VALUES(resize(1, 4, r4, 1, 1, "linear", "pytorch_half_pixel", ""), 1e-6, 0);
  /* 2-d: bilinear of a linear function, clamped at the borders: out = ry[i] + cx[j] */
  const double q[4] = {0, 4, 8, 12};
  relay_tensor *y = resize(2, 2, q, 4, 4, "linear", "half_pixel", "");
  const double ry[4] = {0, 2, 6, 8}, cx[4] = {0, 1, 3, 4};
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) ck_assert_double_eq_tol(get(y, i * 4 + j), ry[i] + cx[j], 1e-6);
  /* NHWC with two channels agrees with NCHW per channel; out_dtype float64 */
  relay_tensor *x = RND(50, 1, 2, 3, 5);
  relay_tensor *a = run_op("image.resize2d", INS(x), ATTRS(INTS("size", 5, 4)));
  relay_tensor *b =
      run_op("image.resize2d", INS(permute4(x, TO_NHWC)),
             ATTRS(INTS("size", 5, 4), STR("layout", "NHWC"), STR("out_dtype", "float64")));
  ck_assert(kiln_dtype_eq(b->dtype, KILN_FLOAT64));
  relay_tensor *bc = permute4(b, TO_NCHW);
  for (int64_t i = 0; i < 40; i++) ck_assert_double_eq_tol(get(a, i), get(bc, i), 1e-6);
}
END_TEST

START_TEST(test_resize_cubic) {
  /* an impulse at 3 resized x2 with asymmetric coordinates (o / 2): Keys' weights are
   * w(0) = 1, w(0.5) = 0.5 - a/8, w(1) = 0, w(1.5) = a/8 */
  double imp[8] = {0, 0, 0, 1, 0, 0, 0, 0};
  for (int ai = 0; ai < 2; ai++) {
    double a = ai ? -0.75 : -0.5;
    relay_tensor *x = val_tensor(SHAPE(1, 1, 1, 8), imp);
    relay_tensor *y =
        run_op("image.resize2d", INS(x),
               ATTRS(INTS("size", 1, 16), STR("method", "cubic"),
                     STR("coordinate_transformation_mode", "asymmetric"), FLT("cubic_alpha", a)));
    ck_assert_double_eq_tol(get(y, 6), 1, 1e-6);
    ck_assert_double_eq_tol(get(y, 5), 0.5 - a / 8, 1e-6);
    ck_assert_double_eq_tol(get(y, 7), 0.5 - a / 8, 1e-6);
    ck_assert_double_eq_tol(get(y, 4), 0, 1e-6);
    ck_assert_double_eq_tol(get(y, 3), a / 8, 1e-6);
    ck_assert_double_eq_tol(get(y, 9), a / 8, 1e-6);
  }
  /* linear data is reproduced away from the borders (half_pixel: coordinate o/2 - 1/4) */
  double ramp[8];
  for (int i = 0; i < 8; i++) ramp[i] = i;
  relay_tensor *y = resize(1, 8, ramp, 1, 16, "cubic", "half_pixel", "");
  for (int o = 4; o < 12; o++) ck_assert_double_eq_tol(get(y, o), o / 2.0 - 0.25, 1e-6);
  /* constants stay constant everywhere (the weights sum to 1, clamped taps included) */
  double c[6] = {3, 3, 3, 3, 3, 3};
  y = resize(2, 3, c, 5, 7, "cubic", "align_corners", "");
  for (int i = 0; i < 35; i++) ck_assert_double_eq_tol(get(y, i), 3, 1e-6);
  /* cubic_exclude: at the border, the tap outside gets weight 0 and the rest renormalize */
  double e[4] = {1, 0, 0, 0};
  relay_tensor *x = val_tensor(SHAPE(1, 1, 1, 4), e);
  relay_tensor *inc = run_op("image.resize2d", INS(x),
                             ATTRS(INTS("size", 1, 8), STR("method", "cubic"),
                                   STR("coordinate_transformation_mode", "asymmetric")));
  relay_tensor *exc =
      run_op("image.resize2d", INS(x),
             ATTRS(INTS("size", 1, 8), STR("method", "cubic"),
                   STR("coordinate_transformation_mode", "asymmetric"), INT("cubic_exclude", 1)));
  ck_assert_double_eq_tol(get(inc, 1), 0.5, 1e-6); /* the clamped tap -1 reads x[0] too */
  ck_assert_double_eq_tol(get(exc, 1), 0.5625 / 1.0625, 1e-6);
}
END_TEST

START_TEST(test_resize_types) {
  CK_TYPE("Tensor[(n, 3, 64, 48), float32]", "image.resize2d", TYPES(SYM("n", "3", "h", "w")),
          ATTRS(INTS("size", 64, 48)));
  CK_TYPE("Tensor[(1, 64, 48, 3), uint8]", "image.resize2d",
          TYPES(tt(KILN_UINT8, SHAPE(1, 10, 10, 3))),
          ATTRS(INTS("size", 64, 48), STR("layout", "NHWC"), STR("method", "nearest_neighbor")));
  CK_ERR(KILN_ERR_TYPE,
         "image.resize2d: method 'bilinear' is not one of nearest_neighbor, linear, cubic",
         "image.resize2d", TYPES(F32(1, 1, 4, 4)),
         ATTRS(INTS("size", 8, 8), STR("method", "bilinear")));
  CK_ERR(KILN_ERR_TYPE,
         "coordinate_transformation_mode 'tf_crop_and_resize' is not one of half_pixel",
         "image.resize2d", TYPES(F32(1, 1, 4, 4)),
         ATTRS(INTS("size", 8, 8), STR("coordinate_transformation_mode", "tf_crop_and_resize")));
  CK_ERR(KILN_ERR_TYPE, "rounding_method 'nearest' is not one of round, floor", "image.resize2d",
         TYPES(F32(1, 1, 4, 4)), ATTRS(INTS("size", 8, 8), STR("rounding_method", "nearest")));
  CK_ERR(KILN_ERR_TYPE, "cannot resize data of shape (1, 1, 0, 4): its height is 0",
         "image.resize2d", TYPES(F32(1, 1, 0, 4)), ATTRS(INTS("size", 8, 8)));
  CK_ERR(KILN_ERR_TYPE, "cannot resize data of shape (1, 4, 0, 3): its width is 0",
         "image.resize2d", TYPES(F32(1, 4, 0, 3)),
         ATTRS(INTS("size", 8, 8), STR("layout", "NHWC")));
  CK_ERR(KILN_ERR_TYPE, "size must have 2 values, got 0", "image.resize2d", TYPES(F32(1, 1, 4, 4)),
         NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "size must be >= 1, got 0", "image.resize2d", TYPES(F32(1, 1, 4, 4)),
         ATTRS(INTS("size", 0, 8)));
}
END_TEST

/* ==== dropout, patterns, kernels' own checks, allocation failures ======================== */

START_TEST(test_dropout) {
  CK_TYPE("Tensor[(n, 16), float32]", "nn.dropout", TYPES(SYM("n", "16")), NOATTRS);
  CK_ERR(KILN_ERR_TYPE, "nn.dropout: rate must be in [0, 1), got 1", "nn.dropout", TYPES(F32(2)),
         ATTRS(FLT("rate", 1)));
  relay_tensor *x = RND(60, 3, 4);
  relay_tensor *y = run_op("nn.dropout", INS(x), ATTRS(FLT("rate", 0.25)));
  for (int i = 0; i < 12; i++) ck_assert_double_eq(get(y, i), get(x, i));
}
END_TEST

START_TEST(test_patterns_and_schema) {
  struct {
    const char *op;
    int pattern;
  } want[] = {
      {"nn.conv2d", RELAY_OUT_ELEMWISE_FUSABLE},
      {"nn.conv2d_transpose", RELAY_OUT_ELEMWISE_FUSABLE},
      {"nn.dense", RELAY_OUT_ELEMWISE_FUSABLE},
      {"nn.matmul", RELAY_OUT_ELEMWISE_FUSABLE},
      {"nn.batch_matmul", RELAY_OUT_ELEMWISE_FUSABLE},
      {"nn.bias_add", RELAY_BROADCAST},
      {"nn.max_pool2d", RELAY_OUT_ELEMWISE_FUSABLE},
      {"nn.avg_pool2d", RELAY_OUT_ELEMWISE_FUSABLE},
      {"nn.global_avg_pool2d", RELAY_OUT_ELEMWISE_FUSABLE},
      {"nn.adaptive_avg_pool2d", RELAY_OUT_ELEMWISE_FUSABLE},
      {"nn.softmax", RELAY_OPAQUE},
      {"nn.log_softmax", RELAY_OPAQUE},
      {"nn.layer_norm", RELAY_OPAQUE},
      {"nn.batch_norm", RELAY_OPAQUE},
      {"nn.pad", RELAY_INJECTIVE},
      {"image.resize2d", RELAY_INJECTIVE},
      {"nn.dropout", RELAY_ELEMWISE},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const relay_op *op = relay_op_lookup(want[i].op);
    ck_assert_msg(op != NULL, "%s is not registered", want[i].op);
    ck_assert_msg(op->pattern == want[i].pattern, "%s has pattern %d", want[i].op, op->pattern);
  }
  /* every nn op has a relation, a kernel, a doc line, and unique attribute keys */
  for (int i = 0; i < relay_ops_nn_count; i++) {
    const relay_op *op = &relay_ops_nn[i];
    ck_assert_ptr_nonnull(op->infer);
    ck_assert_ptr_nonnull(op->eval);
    ck_assert_ptr_nonnull(op->doc);
    ck_assert_ptr_eq(relay_op_lookup(op->name), op);
    for (int a = 0; a < op->nattrs; a++)
      for (int b = a + 1; b < op->nattrs; b++) ck_assert_str_ne(op->attrs[a].key, op->attrs[b].key);
  }
  /* defaults are filled in schema order (TVM's names) */
  relay_expr *e = relay_call_op(A, "nn.conv2d", 2,
                                (relay_expr *[]){&relay_var_new(A, "x", F32(1, 3, 8, 8))->h,
                                                 &relay_var_new(A, "w", F32(4, 3, 3, 3))->h},
                                0, NULL);
  const relay_call *call = relay_as_call(e);
  ck_assert_ptr_nonnull(call);
  const relay_attr *st = relay_attr_find(call->nattrs, call->attrs, "strides");
  ck_assert_int_eq(st->nints, 2);
  ck_assert_int_eq(st->ints[0], 1);
  ck_assert_str_eq(relay_attr_find(call->nattrs, call->attrs, "kernel_layout")->s, "OIHW");
  const relay_op *bm = relay_op_lookup("nn.batch_matmul");
  ck_assert_int_eq(bm->attrs[2].i, 1); /* transpose_b defaults to 1 */
}
END_TEST

/* A kernel given an output that does not have the inferred type refuses to run (it would
 * write out of bounds), and the same for attributes a relation would reject. */
START_TEST(test_kernel_checks_shapes) {
  relay_tensor *x = RND(70, 1, 2, 4, 4), *w = RND(71, 3, 2, 3, 3);
  relay_tensor *out = new_tensor(KILN_FLOAT32, SHAPE(1, 3, 4, 4)); /* 2x2 would be right */
  const relay_op *op = relay_op_lookup("nn.conv2d");
  relay_expr *e = relay_call_op(A, "nn.conv2d", 2,
                                (relay_expr *[]){&relay_var_new(A, "x", F32(1, 2, 4, 4))->h,
                                                 &relay_var_new(A, "w", F32(3, 2, 3, 3))->h},
                                0, NULL);
  const relay_call *call = relay_as_call(e);
  relay_eval_ctx ec = {ctx, "nn.conv2d"};
  relay_tensor in[2] = {*x, *w};
  ck_assert_int_eq(op->eval(&ec, 2, in, call->attrs, 1, out), KILN_ERR_SHAPE);
  ck_errmsg_has(
      ctx, "nn.conv2d: the output tensor does not have the inferred type (shape (1, 3, 2, 2))");
  /* mismatched inputs: the relation's error comes back */
  in[1] = *new_tensor(KILN_FLOAT32, SHAPE(3, 5, 3, 3));
  ck_assert_int_eq(op->eval(&ec, 2, in, call->attrs, 1, out), KILN_ERR_TYPE);
  ck_errmsg_has(ctx, "input channels 2 do not match weight's 5 * groups 1");
  /* a wrong output dtype */
  in[1] = *w;
  relay_tensor *o16 = new_tensor(KILN_FLOAT16, SHAPE(1, 3, 2, 2));
  ck_assert_int_eq(op->eval(&ec, 2, in, call->attrs, 1, o16), KILN_ERR_SHAPE);
  /* two outputs */
  ck_assert_int_eq(op->eval(&ec, 2, in, call->attrs, 2, out), KILN_ERR_INTERNAL);
}
END_TEST

/* Every allocation failure while typing or running an op is a clean NOMEM, with nothing
 * leaked. The typing cases use symbolic dimensions that need the simplifier (k + 1 against
 * 1 + k), so comparing dimensions allocates too. */
typedef struct alloc_case {
  const char *op;
  int nargs;
  const char *shapes[3][4]; /* per argument: dims, "k+1" / "1+k" for the sums, NULL ends */
  int nattrs;
} alloc_case;

static ir_expr *case_dim(ir_arena *a, ir_var *const *vars, const char *d) {
  ir_expr *one = ir_int(a, KILN_INT64, 1);
  if (strcmp(d, "k+1") == 0) return ir_add(a, &vars[1]->h, one);
  if (strcmp(d, "1+k") == 0) return ir_add(a, one, &vars[1]->h);
  if (strcmp(d, "h") == 0) return &vars[0]->h;
  if (strcmp(d, "k") == 0) return &vars[1]->h;
  return ir_int(a, KILN_INT64, strtoll(d, NULL, 10));
}

START_TEST(test_alloc_failures) {
  static const alloc_case cases[] = {
      {"nn.dense", 2, {{"h", "k+1"}, {"10", "1+k"}}, 0},
      {"nn.matmul", 2, {{"h", "k+1"}, {"1+k", "5"}}, 0},
      {"nn.batch_matmul", 2, {{"h", "3", "k+1"}, {"1", "5", "1+k"}}, 0},
      {"nn.layer_norm", 3, {{"h", "k+1"}, {"1+k"}, {"1+k"}}, 0},
      {"nn.bias_add", 2, {{"h", "k+1"}, {"1+k"}}, 0},
      {"nn.conv2d", 2, {{"1", "2", "h", "k"}, {"4", "2", "3", "3"}}, 2},
      {"nn.conv2d_transpose", 2, {{"1", "2", "h", "k"}, {"2", "4", "3", "3"}}, 2},
      {"nn.max_pool2d", 1, {{"1", "2", "h", "k"}}, 3},
      {"nn.pad", 1, {{"h", "k"}}, 1},
  };
  long base = kiln_context_live_blocks(ctx);
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    const alloc_case *cs = &cases[ci];
    long failures = 0;
    /* Arena memory reaches the allocator only when a chunk fills up, so the arena is first
     * filled to every 16-byte offset of a 16 KiB chunk: then some chunk boundary falls on
     * each allocation the relation makes. */
    for (size_t fill = 0; fill <= 16384; fill += 16)
      for (long n = 1;; n++) {
        ck_assert_int_lt(n, 100);
        ir_arena *a = ir_arena_new(ctx);
        ck_assert_ptr_nonnull(a);
        ir_var *vars[2] = {ir_var_new(a, "h", KILN_INT64), ir_var_new(a, "k", KILN_INT64)};
        relay_expr *args[3];
        for (int i = 0; i < cs->nargs; i++) {
          ir_expr *dims[4];
          int nd = 0;
          while (nd < 4 && cs->shapes[i][nd]) dims[nd] = case_dim(a, vars, cs->shapes[i][nd]), nd++;
          args[i] = &relay_var_new(a, "x", relay_tensor_type_new(a, KILN_FLOAT32, nd, dims))->h;
        }
        relay_attr *attrs[3] = {relay_attr_ints(a, "strides", 2, (int64_t[]){2, 2}),
                                relay_attr_ints(a, "padding", 4, (int64_t[]){1, 1, 1, 1}),
                                relay_attr_int(a, "ceil_mode", 1)};
        if (strcmp(cs->op, "nn.max_pool2d") == 0)
          attrs[0] = relay_attr_ints(a, "pool_size", 2, (int64_t[]){3, 3});
        if (strcmp(cs->op, "nn.pad") == 0)
          attrs[0] = relay_attr_ints(a, "pad_width", 4, (int64_t[]){1, 1, 2, 2});
        if (a->used + fill <= 16384 && fill > 0) ck_assert_ptr_nonnull(ir_arena_alloc(a, fill));
        kiln_context_fail_alloc(ctx, n);
        relay_expr *e = relay_call_op(a, cs->op, cs->nargs, args, cs->nattrs, attrs);
        kiln_context_fail_alloc(ctx, 0);
        if (!e) {
          ck_assert_msg(kiln_context_errcode(ctx) == KILN_ERR_NOMEM,
                        "%s, fill %zu, allocation %ld: %s", cs->op, fill, n,
                        kiln_context_errmsg(ctx));
          failures++;
        }
        ir_arena_free(a);
        ck_assert_int_eq(kiln_context_live_blocks(ctx), base);
        if (e) break;
      }
    ck_assert_msg(failures > 0, "%s allocated nothing", cs->op);
  }
  /* the kernels (their shape check allocates) */
  relay_tensor *x = RND(80, 1, 2, 5, 5), *w = RND(81, 4, 2, 3, 3);
  const char *ops[] = {"nn.conv2d", "nn.avg_pool2d"};
  for (int oi = 0; oi < 2; oi++) {
    relay_expr *c =
        oi == 0 ? relay_call_op(A, "nn.conv2d", 2,
                                (relay_expr *[]){&relay_var_new(A, "x", F32(1, 2, 5, 5))->h,
                                                 &relay_var_new(A, "w", F32(4, 2, 3, 3))->h},
                                ATTRS(INTS("strides", 2, 2)))
                : relay_call_op(A, "nn.avg_pool2d", 1,
                                (relay_expr *[]){&relay_var_new(A, "x", F32(1, 2, 5, 5))->h},
                                ATTRS(INTS("pool_size", 2, 2), INT("ceil_mode", 1)));
    ck_assert_ptr_nonnull(c);
    relay_tensor out;
    ck_ok(ctx, relay_tensor_alloc(ctx, relay_type_of(c), &out));
    long live = kiln_context_live_blocks(ctx);
    relay_tensor in[2] = {*x, *w};
    relay_eval_ctx ec = {ctx, ops[oi]};
    kiln_status st = KILN_ERR_NOMEM;
    long n = 1;
    for (; st != KILN_OK; n++) {
      ck_assert_int_lt(n, 2000);
      kiln_context_fail_alloc(ctx, n);
      st = relay_as_call(c)->opdef->eval(&ec, relay_as_call(c)->nargs, in, relay_as_call(c)->attrs,
                                         1, &out);
      kiln_context_fail_alloc(ctx, 0);
      ck_assert_msg(st == KILN_OK || st == KILN_ERR_NOMEM, "%s: %s", ops[oi],
                    kiln_context_errmsg(ctx));
      ck_assert_int_eq(kiln_context_live_blocks(ctx), live);
    }
    ck_assert_int_gt(n, 2);
    relay_tensor_free(ctx, &out);
  }
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("relay_ops_nn");
  struct {
    const char *name;
    const TTest *test;
  } tests[] = {
      {"dense_types", test_dense_types},
      {"dense_kernel", test_dense_kernel},
      {"matmul", test_matmul},
      {"batch_matmul", test_batch_matmul},
      {"conv2d_kernel", test_conv2d_kernel},
      {"conv2d_kernel_values", test_conv2d_kernel_values},
      {"conv2d_types", test_conv2d_types},
      {"conv2d_symbolic_formula", test_conv2d_symbolic_formula},
      {"conv2d_errors", test_conv2d_errors},
      {"conv2d_transpose", test_conv2d_transpose},
      {"conv2d_transpose_types", test_conv2d_transpose_types},
      {"bias_add", test_bias_add},
      {"batch_norm", test_batch_norm},
      {"layer_norm", test_layer_norm},
      {"softmax", test_softmax},
      {"pool_types", test_pool_types},
      {"pool_symbolic_formula", test_pool_symbolic_formula},
      {"max_pool_kernel", test_max_pool_kernel},
      {"avg_pool_kernel", test_avg_pool_kernel},
      {"global_and_adaptive_pool", test_global_and_adaptive_pool},
      {"pad", test_pad},
      {"resize_nearest", test_resize_nearest},
      {"resize_linear", test_resize_linear},
      {"resize_cubic", test_resize_cubic},
      {"resize_types", test_resize_types},
      {"dropout", test_dropout},
      {"patterns_and_schema", test_patterns_and_schema},
      {"kernel_checks_shapes", test_kernel_checks_shapes},
      {"alloc_failures", test_alloc_failures},
  };
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    TCase *tc = tcase_create(tests[i].name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, tests[i].test);
    suite_add_tcase(s, tc);
  }
  return s;
}

KILN_TEST_MAIN

/* test_relay_ops.c: the elementwise, broadcast, reduction and transform ops of relay/op/
 * (elemwise.c, reduce.c, transform.c): for every op its type relation on constant shapes and
 * on symbolic dimensions, its errors (arity, dtypes, shapes, attributes) with their messages,
 * and its reference kernel on small hand-computed inputs in float32, int32 and (for some)
 * float16. Kernels run directly (op->eval) with outputs allocated from the inferred type. */
#include <math.h>

#include "relay/op.h"
#include "test_util.h"

static kiln_context *ctx;
static relay_module *mod; /* owns the symbolic dims */
static ir_arena *A;       /* = mod->arena */

/* Tensors made by a test, freed by teardown. */
enum { POOL = 64 };
static relay_tensor pool[POOL];
static int npool;

static void setup(void) {
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  mod = relay_module_new(ctx);
  ck_assert_ptr_nonnull(mod);
  A = mod->arena;
  npool = 0;
}

static void teardown(void) {
  for (int i = 0; i < npool; i++) relay_tensor_free(ctx, &pool[i]);
  relay_module_free(mod);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}

/* ---- Building calls ------------------------------------------------------------------- */

#define F32 KILN_FLOAT32
#define F16 KILN_FLOAT16
#define I32 KILN_INT32
#define I64 KILN_INT64

/* SHAPE(2, 3) -> "2, (int64_t[]){2, 3}" (rank and dims); SCALAR for rank 0. */
#define SHAPE(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}
#define SCALAR 0, NULL
#define NOATTRS 0, NULL
#define ATTRS(...) \
  (int)(sizeof((relay_attr *[]){__VA_ARGS__}) / sizeof(relay_attr *)), (relay_attr *[]){__VA_ARGS__}
#define TYPES(...) \
  (int)(sizeof((relay_type *[]){__VA_ARGS__}) / sizeof(relay_type *)), (relay_type *[]){__VA_ARGS__}
#define INTS(key, ...) \
  relay_attr_ints(A, key, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define NO_INTS(key) relay_attr_ints(A, key, 0, NULL)
#define AI(key, v) relay_attr_int(A, key, v)
#define AF(key, v) relay_attr_float(A, key, v)
#define AS(key, v) relay_attr_str(A, key, v)

static relay_type *T(kiln_dtype t, int nd, const int64_t *shape) {
  return relay_tensor_type_const(A, t, nd, shape);
}

/* A tensor type with symbolic dimensions: TS(F32, 2, n, D(3)). */
static relay_type *TS(kiln_dtype t, int nd, ...) {
  ir_expr *dims[RELAY_MAX_DIMS];
  va_list ap;
  va_start(ap, nd);
  for (int i = 0; i < nd; i++) dims[i] = va_arg(ap, ir_expr *);
  va_end(ap);
  return relay_tensor_type_new(A, t, nd, dims);
}

static ir_expr *D(int64_t v) { return ir_int(A, KILN_INT64, v); }
static ir_expr *dim(const char *name) { return &relay_module_dim(mod, name)->h; }
static ir_expr *mul(ir_expr *x, ir_expr *y) { return ir_mul(A, x, y); }

/* op(vars of the given types; attrs): the call, or NULL with the error on ctx. */
static relay_expr *call(const char *op, int nargs, relay_type *const *types, int nattrs,
                        relay_attr *const *attrs) {
  relay_expr *args[16];
  ck_assert_int_le(nargs, 16);
  for (int i = 0; i < nargs; i++) {
    ck_assert_ptr_nonnull(types[i]);
    args[i] = &relay_var_new(A, "x", types[i])->h;
  }
  return relay_call_op(A, op, nargs, args, nattrs, attrs);
}

/* The printed type, in a static buffer. */
static const char *type_str(const relay_type *t) {
  static char buf[512];
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  relay_type_print(&sb, t);
  snprintf(buf, sizeof buf, "%s", sb.data ? sb.data : "");
  ir_sb_free(&sb);
  return buf;
}

/* The call e was built and has the type printed as want. */
#define ck_type(e, want)                                                                        \
  do {                                                                                          \
    relay_expr *e_ = (e);                                                                       \
    ck_assert_msg(e_ != NULL, "call failed: %s", kiln_context_errmsg(ctx));                     \
    ck_assert_str_eq(type_str(relay_type_of(e_)), want);                                        \
  } while (0)

/* The call failed with code and a message containing needle. */
#define ck_fails(e, code, needle)                                                               \
  do {                                                                                          \
    ck_assert_msg((e) == NULL, "the call should fail with '%s'", needle);                       \
    ck_assert_int_eq(kiln_context_errcode(ctx), code);                                          \
    ck_errmsg_has(ctx, needle);                                                                 \
  } while (0)

/* Two dimensions are equal: their difference simplifies to 0. */
static bool dim_eq(ir_expr *x, ir_expr *y) {
  ir_analyzer *an = ir_analyzer_new(A);
  ir_expr *d = ir_simplify_expr(an, ir_sub(A, x, y));
  ir_analyzer_free(an);
  ir_int_imm *c = ir_as_int(d);
  return c && c->value == 0;
}

/* e has a tensor type of dtype t whose dims equal the given expressions. */
static void ck_dims(relay_expr *e, kiln_dtype t, int nd, ...) {
  ck_assert_msg(e != NULL, "call failed: %s", kiln_context_errmsg(ctx));
  const relay_tensor_type *tt = relay_as_tensor_type(relay_type_of(e));
  ck_assert_ptr_nonnull(tt);
  ck_assert(ir_dt_eq(tt->h.dtype, t));
  ck_assert_int_eq(tt->ndim, nd);
  va_list ap;
  va_start(ap, nd);
  for (int i = 0; i < nd; i++) {
    ir_expr *want = va_arg(ap, ir_expr *);
    ck_assert_msg(dim_eq(tt->shape[i], want), "dimension %d of %s differs", i,
                  type_str(relay_type_of(e)));
  }
  va_end(ap);
}

/* ---- Running kernels ------------------------------------------------------------------ */

static relay_tensor *new_tensor(const relay_type *t) {
  ck_assert_int_lt(npool, POOL);
  relay_tensor *r = &pool[npool++];
  ck_ok(ctx, relay_tensor_alloc(ctx, t, r));
  return r;
}

/* A tensor of dtype t and the given shape holding vals (row-major). */
static relay_tensor *ten(kiln_dtype t, int nd, const int64_t *shape, const double *vals) {
  relay_tensor *r = new_tensor(T(t, nd, shape));
  for (int64_t i = 0; i < relay_tensor_numel(r); i++) relay_tensor_set(r, i, vals[i]);
  return r;
}
#define VALS(...) (double[]){__VA_ARGS__}

/* Types op(args; attrs), allocates its outputs from the inferred type (one per tuple field)
 * and runs the kernel. Returns the kernel's status; outs[0..*nouts) are the results. */
static kiln_status run_n(const char *op, int nargs, relay_tensor *const *args, int nattrs,
                         relay_attr *const *attrs, relay_tensor **outs, int *nouts) {
  relay_type *types[16];
  relay_tensor argv[16];
  for (int i = 0; i < nargs; i++) {
    types[i] = T(args[i]->dtype, args[i]->ndim, args[i]->shape);
    argv[i] = *args[i];
  }
  relay_call *c = relay_as_call(call(op, nargs, types, nattrs, attrs));
  ck_assert_msg(c != NULL, "%s failed to type: %s", op, kiln_context_errmsg(ctx));
  const relay_tuple_type *tup = relay_as_tuple_type(c->type);
  *nouts = tup ? tup->nfields : 1;
  relay_tensor results[16];
  ck_assert_int_le(*nouts, 16);
  for (int k = 0; k < *nouts; k++) {
    outs[k] = new_tensor(tup ? tup->fields[k] : c->type);
    results[k] = *outs[k];
  }
  relay_eval_ctx ec = {ctx, op};
  return c->opdef->eval(&ec, nargs, argv, c->attrs, *nouts, results);
}

/* One output; the kernel must succeed. */
static relay_tensor *run(const char *op, int nargs, relay_tensor *const *args, int nattrs,
                         relay_attr *const *attrs) {
  relay_tensor *outs[16];
  int nouts;
  ck_ok(ctx, run_n(op, nargs, args, nattrs, attrs, outs, &nouts));
  ck_assert_int_eq(nouts, 1);
  return outs[0];
}
#define ARGS(...) \
  (int)(sizeof((relay_tensor *[]){__VA_ARGS__}) / sizeof(relay_tensor *)), (relay_tensor *[]){__VA_ARGS__}

/* The tensor has this shape and these values (exact for integers and bool, relative 1e-6 for
 * float32/64, 1e-3 for float16; NaN matches NaN). */
static void ck_tensor(const relay_tensor *t, int nd, const int64_t *shape, const double *want,
                      int line) {
  ck_assert_msg(t->ndim == nd, "line %d: rank %d, expected %d", line, (int)t->ndim, nd);
  for (int i = 0; i < nd; i++)
    ck_assert_msg(t->shape[i] == shape[i], "line %d: dimension %d is %lld, expected %lld", line, i,
                  (long long)t->shape[i], (long long)shape[i]);
  double tol = t->dtype.code == KILN_TYPE_FLOAT && t->dtype.bits == 16 ? 1e-3
               : ir_dt_is_float(t->dtype)                              ? 1e-6
                                                                       : 0;
  for (int64_t i = 0; i < relay_tensor_numel(t); i++) {
    double got = relay_tensor_get(t, i), w = want[i];
    bool ok = isnan(w)   ? isnan(got)
              : isinf(w) ? got == w
                         : fabs(got - w) <= tol * fmax(1, fabs(w));
    ck_assert_msg(ok, "line %d: element %lld is %.9g, expected %.9g", line, (long long)i, got, w);
  }
}
#define CK_T(t, shape, vals) ck_tensor((t), shape, vals, __LINE__)

/* ---- Registry ------------------------------------------------------------------------- */

typedef struct op_expect {
  const char *name;
  int pattern;
} op_expect;

static const op_expect expected_ops[] = {
    {"nn.relu", RELAY_ELEMWISE}, {"nn.leaky_relu", RELAY_ELEMWISE}, {"clip", RELAY_ELEMWISE},
    {"sigmoid", RELAY_ELEMWISE}, {"tanh", RELAY_ELEMWISE}, {"gelu", RELAY_ELEMWISE},
    {"silu", RELAY_ELEMWISE}, {"hard_sigmoid", RELAY_ELEMWISE}, {"hard_swish", RELAY_ELEMWISE},
    {"exp", RELAY_ELEMWISE}, {"log", RELAY_ELEMWISE}, {"sqrt", RELAY_ELEMWISE},
    {"rsqrt", RELAY_ELEMWISE}, {"erf", RELAY_ELEMWISE}, {"abs", RELAY_ELEMWISE},
    {"negative", RELAY_ELEMWISE}, {"floor", RELAY_ELEMWISE}, {"ceil", RELAY_ELEMWISE},
    {"round", RELAY_ELEMWISE}, {"logical_not", RELAY_ELEMWISE}, {"zeros_like", RELAY_ELEMWISE},
    {"ones_like", RELAY_ELEMWISE}, {"cast", RELAY_ELEMWISE},
    {"add", RELAY_BROADCAST}, {"subtract", RELAY_BROADCAST}, {"multiply", RELAY_BROADCAST},
    {"divide", RELAY_BROADCAST}, {"floor_divide", RELAY_BROADCAST}, {"floor_mod", RELAY_BROADCAST},
    {"maximum", RELAY_BROADCAST}, {"minimum", RELAY_BROADCAST}, {"power", RELAY_BROADCAST},
    {"equal", RELAY_BROADCAST}, {"not_equal", RELAY_BROADCAST}, {"less", RELAY_BROADCAST},
    {"less_equal", RELAY_BROADCAST}, {"greater", RELAY_BROADCAST},
    {"greater_equal", RELAY_BROADCAST}, {"logical_and", RELAY_BROADCAST},
    {"logical_or", RELAY_BROADCAST}, {"where", RELAY_BROADCAST},
    {"sum", RELAY_COMM_REDUCE}, {"mean", RELAY_COMM_REDUCE}, {"prod", RELAY_COMM_REDUCE},
    {"max", RELAY_COMM_REDUCE}, {"min", RELAY_COMM_REDUCE},
    {"reshape", RELAY_INJECTIVE}, {"transpose", RELAY_INJECTIVE}, {"squeeze", RELAY_INJECTIVE},
    {"expand_dims", RELAY_INJECTIVE}, {"nn.batch_flatten", RELAY_INJECTIVE},
    {"concatenate", RELAY_INJECTIVE}, {"stack", RELAY_INJECTIVE}, {"split", RELAY_INJECTIVE},
    {"strided_slice", RELAY_INJECTIVE}, {"take", RELAY_INJECTIVE},
    {"broadcast_to", RELAY_INJECTIVE},
};

static bool in_table(const relay_op *op, const relay_op *table, int n) {
  return op >= table && op < table + n;
}

START_TEST(test_registry) {
  int n = (int)(sizeof expected_ops / sizeof expected_ops[0]);
  for (int i = 0; i < n; i++) {
    const relay_op *op = relay_op_lookup(expected_ops[i].name);
    ck_assert_msg(op != NULL, "op %s is missing", expected_ops[i].name);
    ck_assert_msg(in_table(op, relay_ops_elemwise, relay_ops_elemwise_count) ||
                      in_table(op, relay_ops_transform, relay_ops_transform_count) ||
                      in_table(op, relay_ops_reduce, relay_ops_reduce_count),
                  "%s is not from elemwise/transform/reduce", op->name);
    ck_assert_msg(op->pattern == expected_ops[i].pattern, "%s has pattern %d", op->name, op->pattern);
  }
  /* every entry of the three tables is complete, and the list above names them all */
  const relay_op *tables[] = {relay_ops_elemwise, relay_ops_transform, relay_ops_reduce};
  int counts[] = {relay_ops_elemwise_count, relay_ops_transform_count, relay_ops_reduce_count};
  int total = 0;
  for (int t = 0; t < 3; t++)
    for (int i = 0; i < counts[t]; i++, total++) {
      const relay_op *op = &tables[t][i];
      ck_assert_ptr_eq(relay_op_lookup(op->name), op);
      ck_assert(op->infer && op->eval && op->doc && op->doc[0]);
      ck_assert(op->nattrs == 0 || op->attrs != NULL);
      ck_assert(op->min_args >= 1 && (op->max_args == -1 || op->max_args >= op->min_args));
      for (int a = 0; a < op->nattrs; a++)
        for (int b = 0; b < a; b++) ck_assert_str_ne(op->attrs[a].key, op->attrs[b].key);
    }
  ck_assert_int_eq(total, n);
}
END_TEST

/* ---- Elementwise: unary ------------------------------------------------------------- */

static const char *const float_unary[] = {"sigmoid", "tanh", "gelu", "silu", "hard_sigmoid",
                                          "hard_swish", "exp", "log", "sqrt", "rsqrt", "erf",
                                          "floor", "ceil", "round", "nn.leaky_relu"};
static const char *const numeric_unary[] = {"nn.relu", "abs", "negative", "clip"};

START_TEST(test_unary_types) {
  for (size_t i = 0; i < sizeof float_unary / sizeof float_unary[0]; i++) {
    const char *op = float_unary[i];
    ck_type(call(op, TYPES(T(F32, SHAPE(2, 3))), NOATTRS), "Tensor[(2, 3), float32]");
    ck_type(call(op, TYPES(T(F16, SCALAR)), NOATTRS), "Tensor[(), float16]");
    ck_type(call(op, TYPES(TS(F32, 2, dim("n"), D(3))), NOATTRS), "Tensor[(n, 3), float32]");
    ck_fails(call(op, TYPES(T(I32, SHAPE(2))), NOATTRS), KILN_ERR_TYPE, "needs a float tensor, not int32");
    ck_errmsg_has(ctx, op);
  }
  for (size_t i = 0; i < sizeof numeric_unary / sizeof numeric_unary[0]; i++) {
    const char *op = numeric_unary[i];
    ck_type(call(op, TYPES(T(I32, SHAPE(4))), NOATTRS), "Tensor[(4,), int32]");
    ck_type(call(op, TYPES(TS(F32, 2, dim("n"), D(3))), NOATTRS), "Tensor[(n, 3), float32]");
    ck_fails(call(op, TYPES(T(KILN_BOOL, SHAPE(4))), NOATTRS), KILN_ERR_TYPE, "needs a numeric tensor, not bool");
  }
  ck_type(call("logical_not", TYPES(T(KILN_BOOL, SHAPE(4))), NOATTRS), "Tensor[(4,), bool]");
  ck_fails(call("logical_not", TYPES(T(F32, SHAPE(4))), NOATTRS), KILN_ERR_TYPE,
           "logical_not: needs a bool tensor, not float32");
  ck_type(call("zeros_like", TYPES(T(KILN_BOOL, SHAPE(4))), NOATTRS), "Tensor[(4,), bool]");
  ck_type(call("ones_like", TYPES(TS(I32, 1, dim("n"))), NOATTRS), "Tensor[(n,), int32]");
  /* arity and argument kinds */
  ck_fails(call("sigmoid", TYPES(T(F32, SHAPE(2)), T(F32, SHAPE(2))), NOATTRS), KILN_ERR_TYPE,
           "sigmoid takes 1 arguments, not 2");
  ck_fails(call("nn.relu", TYPES(relay_tuple_type_new(A, 1, (relay_type *[]){T(F32, SHAPE(2))})), NOATTRS),
           KILN_ERR_TYPE, "nn.relu: argument 0 must be a tensor");
  /* attributes */
  ck_fails(call("clip", TYPES(T(F32, SHAPE(2))), ATTRS(AF("a_min", 2), AF("a_max", 1))), KILN_ERR_TYPE,
           "clip: a_min 2 is greater than a_max 1");
  ck_fails(call("clip", TYPES(T(F32, SHAPE(2))), ATTRS(AF("a_min", NAN))), KILN_ERR_TYPE,
           "clip: a_min and a_max must not be NaN");
  ck_fails(call("nn.leaky_relu", TYPES(T(F32, SHAPE(2))), ATTRS(AF("alpha", NAN))), KILN_ERR_TYPE,
           "nn.leaky_relu: alpha must not be NaN");
  ck_fails(call("clip", TYPES(T(F32, SHAPE(2))), ATTRS(AS("a_min", "x"))), KILN_ERR_TYPE,
           "clip: attribute 'a_min' must be a float");
}
END_TEST

START_TEST(test_unary_kernels_float) {
  relay_tensor *x = ten(F32, SHAPE(6), VALS(-4, -1, 0, 0.5, 1, 3));
  CK_T(run("nn.relu", ARGS(x), NOATTRS), SHAPE(6), VALS(0, 0, 0, 0.5, 1, 3));
  CK_T(run("nn.leaky_relu", ARGS(x), NOATTRS), SHAPE(6), VALS(-0.04, -0.01, 0, 0.5, 1, 3));
  CK_T(run("nn.leaky_relu", ARGS(x), ATTRS(AF("alpha", 0.5))), SHAPE(6), VALS(-2, -0.5, 0, 0.5, 1, 3));
  CK_T(run("clip", ARGS(x), ATTRS(AF("a_min", -1.5), AF("a_max", 0.75))), SHAPE(6),
       VALS(-1.5, -1, 0, 0.5, 0.75, 0.75));
  CK_T(run("clip", ARGS(x), NOATTRS), SHAPE(6), VALS(-4, -1, 0, 0.5, 1, 3)); /* no bounds */
  CK_T(run("clip", ARGS(x), ATTRS(AI("a_min", 0))), SHAPE(6), VALS(0, 0, 0, 0.5, 1, 3)); /* int -> float attr */
  /* values from tables (e.g. sigmoid(1) = 0.7310585786, erf(0.5) = 0.5204998778) */
  CK_T(run("sigmoid", ARGS(x), NOATTRS), SHAPE(6),
       VALS(0.01798620996, 0.2689414214, 0.5, 0.6224593312, 0.7310585786, 0.9525741268));
  CK_T(run("tanh", ARGS(x), NOATTRS), SHAPE(6),
       VALS(-0.9993292997, -0.7615941560, 0, 0.4621171573, 0.7615941560, 0.9950547537));
  CK_T(run("gelu", ARGS(x), NOATTRS), SHAPE(6),
       VALS(-0.0001266849, -0.1586552539, 0, 0.3457312719, 0.8413447461, 2.9959502330));
  CK_T(run("silu", ARGS(x), NOATTRS), SHAPE(6),
       VALS(-0.0719448398, -0.2689414214, 0, 0.3112296656, 0.7310585786, 2.8577223804));
  CK_T(run("hard_sigmoid", ARGS(x), NOATTRS), SHAPE(6), VALS(0, 1.0 / 3, 0.5, 7.0 / 12, 2.0 / 3, 1));
  CK_T(run("hard_swish", ARGS(x), NOATTRS), SHAPE(6), VALS(0, -1.0 / 3, 0, 7.0 / 24, 2.0 / 3, 3));
  CK_T(run("erf", ARGS(x), NOATTRS), SHAPE(6),
       VALS(-0.9999999846, -0.8427007929, 0, 0.5204998778, 0.8427007929, 0.9999779095));
  CK_T(run("abs", ARGS(x), NOATTRS), SHAPE(6), VALS(4, 1, 0, 0.5, 1, 3));
  CK_T(run("negative", ARGS(x), NOATTRS), SHAPE(6), VALS(4, 1, 0, -0.5, -1, -3));
  CK_T(run("exp", ARGS(x), NOATTRS), SHAPE(6),
       VALS(0.01831563889, 0.3678794412, 1, 1.6487212707, 2.7182818285, 20.0855369232));
  relay_tensor *p = ten(F32, SHAPE(4), VALS(0.25, 1, 4, 0));
  CK_T(run("log", ARGS(p), NOATTRS), SHAPE(4), VALS(-1.3862943611, 0, 1.3862943611, -INFINITY));
  CK_T(run("sqrt", ARGS(p), NOATTRS), SHAPE(4), VALS(0.5, 1, 2, 0));
  CK_T(run("rsqrt", ARGS(p), NOATTRS), SHAPE(4), VALS(2, 1, 0.5, INFINITY));
  relay_tensor *r = ten(F32, SHAPE(7), VALS(-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.7));
  CK_T(run("round", ARGS(r), NOATTRS), SHAPE(7), VALS(-2, -2, 0, 0, 2, 2, 3)); /* ties to even */
  CK_T(run("floor", ARGS(r), NOATTRS), SHAPE(7), VALS(-3, -2, -1, 0, 1, 2, 2));
  CK_T(run("ceil", ARGS(r), NOATTRS), SHAPE(7), VALS(-2, -1, 0, 1, 2, 3, 3));
  /* NaN passes through relu's comparison and clip */
  relay_tensor *nan = ten(F32, SHAPE(1), VALS(NAN));
  CK_T(run("clip", ARGS(nan), ATTRS(AF("a_min", 0), AF("a_max", 1))), SHAPE(1), VALS(NAN));
  /* float64 keeps full precision */
  relay_tensor *d = ten(KILN_FLOAT64, SHAPE(1), VALS(1e-12));
  ck_assert_double_eq_tol(relay_tensor_get(run("exp", ARGS(d), NOATTRS), 0), 1.000000000001, 1e-15);
}
END_TEST

START_TEST(test_unary_kernels_other_dtypes) {
  relay_tensor *i = ten(I32, SHAPE(2, 2), VALS(-3, 0, 5, -7));
  CK_T(run("nn.relu", ARGS(i), NOATTRS), SHAPE(2, 2), VALS(0, 0, 5, 0));
  CK_T(run("abs", ARGS(i), NOATTRS), SHAPE(2, 2), VALS(3, 0, 5, 7));
  CK_T(run("negative", ARGS(i), NOATTRS), SHAPE(2, 2), VALS(3, 0, -5, 7));
  CK_T(run("clip", ARGS(i), ATTRS(AF("a_min", -1), AF("a_max", 4))), SHAPE(2, 2), VALS(-1, 0, 4, -1));
  CK_T(run("zeros_like", ARGS(i), NOATTRS), SHAPE(2, 2), VALS(0, 0, 0, 0));
  CK_T(run("ones_like", ARGS(i), NOATTRS), SHAPE(2, 2), VALS(1, 1, 1, 1));
  /* int32 negative of INT32_MIN wraps to itself */
  relay_tensor *m = ten(I32, SHAPE(1), VALS(-2147483648.0));
  CK_T(run("negative", ARGS(m), NOATTRS), SHAPE(1), VALS(-2147483648.0));
  /* uint8 negative wraps */
  relay_tensor *u = ten(KILN_UINT8, SHAPE(2), VALS(1, 0));
  CK_T(run("negative", ARGS(u), NOATTRS), SHAPE(2), VALS(255, 0));
  /* float16: results round to half precision */
  relay_tensor *h = ten(F16, SHAPE(3), VALS(-1, 1, 2));
  relay_tensor *hs = run("sigmoid", ARGS(h), NOATTRS);
  CK_T(hs, SHAPE(3), VALS(0.2689414214, 0.7310585786, 0.8807970780));
  ck_assert_double_eq(relay_tensor_get(hs, 1), 0.73095703125); /* the nearest half */
  CK_T(run("nn.relu", ARGS(h), NOATTRS), SHAPE(3), VALS(0, 1, 2));
  CK_T(run("gelu", ARGS(h), NOATTRS), SHAPE(3), VALS(-0.1586552539, 0.8413447461, 1.9544997361));
  relay_tensor *b = ten(KILN_BOOL, SHAPE(3), VALS(1, 0, 1));
  CK_T(run("logical_not", ARGS(b), NOATTRS), SHAPE(3), VALS(0, 1, 0));
  CK_T(run("ones_like", ARGS(b), NOATTRS), SHAPE(3), VALS(1, 1, 1));
}
END_TEST

/* ---- Elementwise: binary -------------------------------------------------------------- */

static const char *const arith_ops[] = {"add", "subtract", "multiply", "divide", "floor_divide",
                                        "floor_mod", "maximum", "minimum", "power"};
static const char *const compare_ops[] = {"equal", "not_equal", "less", "less_equal",
                                          "greater", "greater_equal"};

START_TEST(test_binary_types) {
  for (size_t i = 0; i < sizeof arith_ops / sizeof arith_ops[0]; i++) {
    const char *op = arith_ops[i];
    ck_type(call(op, TYPES(T(F32, SHAPE(2, 3)), T(F32, SHAPE(3))), NOATTRS), "Tensor[(2, 3), float32]");
    ck_type(call(op, TYPES(T(I32, SHAPE(4, 1, 3)), T(I32, SHAPE(2, 1))), NOATTRS), "Tensor[(4, 2, 3), int32]");
    ck_type(call(op, TYPES(T(F16, SCALAR), T(F16, SHAPE(5))), NOATTRS), "Tensor[(5,), float16]");
    ck_fails(call(op, TYPES(T(KILN_BOOL, SHAPE(2)), T(KILN_BOOL, SHAPE(2))), NOATTRS), KILN_ERR_TYPE,
             "needs numeric operands, not bool");
    ck_fails(call(op, TYPES(T(F32, SHAPE(2)), T(I32, SHAPE(2))), NOATTRS), KILN_ERR_TYPE,
             "operand dtypes differ (float32 vs int32)");
    ck_fails(call(op, TYPES(T(F32, SHAPE(2))), NOATTRS), KILN_ERR_TYPE, "takes 2 arguments, not 1");
  }
  for (size_t i = 0; i < sizeof compare_ops / sizeof compare_ops[0]; i++) {
    const char *op = compare_ops[i];
    ck_type(call(op, TYPES(T(F32, SHAPE(2, 1)), T(F32, SHAPE(1, 3))), NOATTRS), "Tensor[(2, 3), bool]");
    ck_type(call(op, TYPES(T(KILN_BOOL, SHAPE(2)), T(KILN_BOOL, SHAPE(2))), NOATTRS), "Tensor[(2,), bool]");
    ck_fails(call(op, TYPES(T(I32, SHAPE(2)), T(I64, SHAPE(2))), NOATTRS), KILN_ERR_TYPE,
             "operand dtypes differ (int32 vs int64)");
  }
  ck_type(call("logical_and", TYPES(T(KILN_BOOL, SHAPE(2, 1)), T(KILN_BOOL, SHAPE(3))), NOATTRS),
          "Tensor[(2, 3), bool]");
  ck_fails(call("logical_or", TYPES(T(I32, SHAPE(2)), T(I32, SHAPE(2))), NOATTRS), KILN_ERR_TYPE,
           "logical_or: needs bool operands, not int32");
  /* shapes */
  ck_fails(call("multiply", TYPES(T(F32, SHAPE(2, 3)), T(F32, SHAPE(4, 3))), NOATTRS), KILN_ERR_TYPE,
           "multiply: shapes (2, 3) and (4, 3) do not broadcast (dimension 0)");
  /* symbolic: a 1 stretches to n; n and m cannot be proven equal */
  ir_expr *n = dim("n"), *m = dim("m");
  ck_type(call("add", TYPES(TS(F32, 2, n, D(1)), T(F32, SHAPE(1, 5))), NOATTRS), "Tensor[(n, 5), float32]");
  ck_type(call("add", TYPES(TS(F32, 2, n, D(3)), TS(F32, 1, D(3))), NOATTRS), "Tensor[(n, 3), float32]");
  ck_type(call("less", TYPES(TS(F32, 2, n, m), TS(F32, 2, n, m)), NOATTRS), "Tensor[(n, m), bool]");
  ck_dims(call("add", TYPES(TS(F32, 1, mul(n, D(2))), TS(F32, 1, ir_add(A, n, n))), NOATTRS), F32, 1,
          mul(n, D(2)));
  ck_fails(call("add", TYPES(TS(F32, 2, n, D(3)), TS(F32, 2, m, D(3))), NOATTRS), KILN_ERR_TYPE,
           "add: shapes (n, 3) and (m, 3) do not broadcast (dimension 0)");
}
END_TEST

START_TEST(test_binary_kernels_float) {
  relay_tensor *x = ten(F32, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
  relay_tensor *y = ten(F32, SHAPE(3), VALS(10, 20, 30));
  relay_tensor *col = ten(F32, SHAPE(2, 1), VALS(2, -1));
  CK_T(run("add", ARGS(x, y), NOATTRS), SHAPE(2, 3), VALS(11, 22, 33, 14, 25, 36));
  CK_T(run("add", ARGS(y, x), NOATTRS), SHAPE(2, 3), VALS(11, 22, 33, 14, 25, 36));
  CK_T(run("subtract", ARGS(x, col), NOATTRS), SHAPE(2, 3), VALS(-1, 0, 1, 5, 6, 7));
  CK_T(run("multiply", ARGS(col, y), NOATTRS), SHAPE(2, 3), VALS(20, 40, 60, -10, -20, -30));
  CK_T(run("divide", ARGS(x, col), NOATTRS), SHAPE(2, 3), VALS(0.5, 1, 1.5, -4, -5, -6));
  CK_T(run("maximum", ARGS(x, ten(F32, SHAPE(1), VALS(3.5))), NOATTRS), SHAPE(2, 3), VALS(3.5, 3.5, 3.5, 4, 5, 6));
  CK_T(run("minimum", ARGS(x, ten(F32, SCALAR, VALS(3.5))), NOATTRS), SHAPE(2, 3), VALS(1, 2, 3, 3.5, 3.5, 3.5));
  CK_T(run("power", ARGS(ten(F32, SHAPE(3), VALS(2, 9, 4)), ten(F32, SHAPE(3), VALS(3, 0.5, -1))), NOATTRS),
       SHAPE(3), VALS(8, 3, 0.25));
  /* a 3-way broadcast: (2, 1, 2) with (3, 1) -> (2, 3, 2) */
  relay_tensor *a = ten(F32, SHAPE(2, 1, 2), VALS(1, 2, 3, 4));
  relay_tensor *b = ten(F32, SHAPE(3, 1), VALS(10, 20, 30));
  CK_T(run("add", ARGS(a, b), NOATTRS), SHAPE(2, 3, 2),
       VALS(11, 12, 21, 22, 31, 32, 13, 14, 23, 24, 33, 34));
  /* division by zero is IEEE for floats; floor division and modulo */
  relay_tensor *num = ten(F32, SHAPE(4), VALS(5.5, -5.5, 5.5, 1));
  relay_tensor *den = ten(F32, SHAPE(4), VALS(2, 2, -2, 0));
  CK_T(run("divide", ARGS(num, den), NOATTRS), SHAPE(4), VALS(2.75, -2.75, -2.75, INFINITY));
  CK_T(run("floor_divide", ARGS(num, den), NOATTRS), SHAPE(4), VALS(2, -3, -3, INFINITY));
  CK_T(run("floor_mod", ARGS(num, den), NOATTRS), SHAPE(4), VALS(1.5, 0.5, -0.5, NAN));
  /* NaN propagates through maximum/minimum whichever side it is on */
  relay_tensor *nn = ten(F32, SHAPE(2), VALS(NAN, 1));
  relay_tensor *mm = ten(F32, SHAPE(2), VALS(0, NAN));
  CK_T(run("maximum", ARGS(nn, mm), NOATTRS), SHAPE(2), VALS(NAN, NAN));
  CK_T(run("minimum", ARGS(nn, mm), NOATTRS), SHAPE(2), VALS(NAN, NAN));
  /* comparisons give bool */
  relay_tensor *p = ten(F32, SHAPE(3), VALS(1, 2, 3));
  relay_tensor *q = ten(F32, SHAPE(2, 1), VALS(2, NAN));
  CK_T(run("equal", ARGS(p, q), NOATTRS), SHAPE(2, 3), VALS(0, 1, 0, 0, 0, 0));
  CK_T(run("not_equal", ARGS(p, q), NOATTRS), SHAPE(2, 3), VALS(1, 0, 1, 1, 1, 1));
  CK_T(run("less", ARGS(p, q), NOATTRS), SHAPE(2, 3), VALS(1, 0, 0, 0, 0, 0));
  CK_T(run("less_equal", ARGS(p, q), NOATTRS), SHAPE(2, 3), VALS(1, 1, 0, 0, 0, 0));
  CK_T(run("greater", ARGS(p, q), NOATTRS), SHAPE(2, 3), VALS(0, 0, 1, 0, 0, 0));
  relay_tensor *ge = run("greater_equal", ARGS(p, q), NOATTRS);
  ck_assert(ir_dt_eq(ge->dtype, KILN_BOOL));
  CK_T(ge, SHAPE(2, 3), VALS(0, 1, 1, 0, 0, 0));
  /* float16 arithmetic rounds each result to half */
  relay_tensor *h1 = ten(F16, SHAPE(2), VALS(1, 2048));
  relay_tensor *h2 = ten(F16, SHAPE(2), VALS(0.0001, 1));
  relay_tensor *hs = run("add", ARGS(h1, h2), NOATTRS);
  ck_assert_double_eq(relay_tensor_get(hs, 0), 1.0);    /* 1.0001 is not a half */
  ck_assert_double_eq(relay_tensor_get(hs, 1), 2048.0); /* 2049 rounds to even */
}
END_TEST

START_TEST(test_binary_kernels_int) {
  relay_tensor *x = ten(I32, SHAPE(4), VALS(7, -7, 7, -7));
  relay_tensor *y = ten(I32, SHAPE(4), VALS(2, 2, -2, -2));
  CK_T(run("divide", ARGS(x, y), NOATTRS), SHAPE(4), VALS(3, -3, -3, 3)); /* truncates */
  CK_T(run("floor_divide", ARGS(x, y), NOATTRS), SHAPE(4), VALS(3, -4, -4, 3));
  relay_tensor *three = ten(I32, SHAPE(4), VALS(3, 3, -3, -3));
  CK_T(run("floor_mod", ARGS(x, three), NOATTRS), SHAPE(4), VALS(1, 2, -2, -1));
  CK_T(run("add", ARGS(x, y), NOATTRS), SHAPE(4), VALS(9, -5, 5, -9));
  CK_T(run("multiply", ARGS(x, y), NOATTRS), SHAPE(4), VALS(14, -14, -14, 14));
  CK_T(run("power", ARGS(ten(I32, SHAPE(3), VALS(2, -3, 5)), ten(I32, SHAPE(3), VALS(10, 3, 0))), NOATTRS),
       SHAPE(3), VALS(1024, -27, 1));
  CK_T(run("maximum", ARGS(x, y), NOATTRS), SHAPE(4), VALS(7, 2, 7, -2));
  CK_T(run("less", ARGS(x, y), NOATTRS), SHAPE(4), VALS(0, 1, 0, 1));
  /* integer overflow wraps; unsigned subtraction wraps */
  relay_tensor *big = ten(I32, SHAPE(2), VALS(2147483647.0, -2147483648.0));
  relay_tensor *one = ten(I32, SHAPE(1), VALS(1));
  CK_T(run("add", ARGS(big, one), NOATTRS), SHAPE(2), VALS(-2147483648.0, -2147483647.0));
  CK_T(run("subtract", ARGS(ten(KILN_UINT8, SHAPE(1), VALS(3)), ten(KILN_UINT8, SHAPE(1), VALS(5))), NOATTRS),
       SHAPE(1), VALS(254));
  /* integer division by zero is a run-time error (also for floor_divide and floor_mod) */
  relay_tensor *zero = ten(I32, SHAPE(1), VALS(0));
  const char *div_ops[] = {"divide", "floor_divide", "floor_mod"};
  for (int i = 0; i < 3; i++) {
    relay_tensor *outs[4];
    int nouts;
    ck_assert_int_eq(run_n(div_ops[i], ARGS(x, zero), NOATTRS, outs, &nouts), KILN_ERR_RUNTIME);
    ck_errmsg_has(ctx, div_ops[i]);
    ck_errmsg_has(ctx, "integer division by zero");
  }
  /* logic */
  relay_tensor *b1 = ten(KILN_BOOL, SHAPE(2, 1), VALS(1, 0));
  relay_tensor *b2 = ten(KILN_BOOL, SHAPE(2), VALS(1, 0));
  CK_T(run("logical_and", ARGS(b1, b2), NOATTRS), SHAPE(2, 2), VALS(1, 0, 0, 0));
  CK_T(run("logical_or", ARGS(b1, b2), NOATTRS), SHAPE(2, 2), VALS(1, 1, 1, 0));
  CK_T(run("equal", ARGS(b1, b2), NOATTRS), SHAPE(2, 2), VALS(1, 0, 0, 1));
}
END_TEST

START_TEST(test_where) {
  relay_type *cond = T(KILN_BOOL, SHAPE(2, 1));
  ck_type(call("where", TYPES(cond, T(F32, SHAPE(1, 3)), T(F32, SCALAR)), NOATTRS), "Tensor[(2, 3), float32]");
  ck_type(call("where", TYPES(T(KILN_BOOL, SCALAR), T(I32, SHAPE(4)), T(I32, SHAPE(4))), NOATTRS),
          "Tensor[(4,), int32]");
  ir_expr *n = dim("n");
  ck_type(call("where", TYPES(TS(KILN_BOOL, 2, n, D(1)), T(F32, SHAPE(1, 5)), T(F32, SHAPE(5))), NOATTRS),
          "Tensor[(n, 5), float32]");
  ck_fails(call("where", TYPES(T(F32, SHAPE(2)), T(F32, SHAPE(2)), T(F32, SHAPE(2))), NOATTRS), KILN_ERR_TYPE,
           "where: the condition must be a bool tensor, not float32");
  ck_fails(call("where", TYPES(cond, T(F32, SHAPE(2)), T(F16, SHAPE(2))), NOATTRS), KILN_ERR_TYPE,
           "where: the two branches' dtypes differ (float32 vs float16)");
  ck_fails(call("where", TYPES(T(KILN_BOOL, SHAPE(3)), T(F32, SHAPE(2)), T(F32, SHAPE(2))), NOATTRS),
           KILN_ERR_TYPE, "where: shapes (3,) and (2,) do not broadcast");
  ck_fails(call("where", TYPES(cond, T(F32, SHAPE(2))), NOATTRS), KILN_ERR_TYPE, "where takes 3 arguments, not 2");
  /* kernel: each output element picks from x or y by the broadcast condition */
  relay_tensor *c = ten(KILN_BOOL, SHAPE(2, 1), VALS(1, 0));
  relay_tensor *x = ten(F32, SHAPE(1, 3), VALS(1, 2, 3));
  relay_tensor *y = ten(F32, SCALAR, VALS(-1));
  CK_T(run("where", ARGS(c, x, y), NOATTRS), SHAPE(2, 3), VALS(1, 2, 3, -1, -1, -1));
  relay_tensor *c2 = ten(KILN_BOOL, SHAPE(3), VALS(0, 1, 0));
  relay_tensor *xi = ten(I32, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
  relay_tensor *yi = ten(I32, SHAPE(2, 1), VALS(-7, -8));
  CK_T(run("where", ARGS(c2, xi, yi), NOATTRS), SHAPE(2, 3), VALS(-7, 2, -7, -8, 5, -8));
}
END_TEST

/* ---- Reductions -------------------------------------------------------------------------- */

static const char *const reduce_ops[] = {"sum", "mean", "prod", "max", "min"};

START_TEST(test_reduce_types) {
  relay_type *x = T(F32, SHAPE(2, 3, 4));
  for (int i = 0; i < 5; i++) {
    const char *op = reduce_ops[i];
    ck_type(call(op, TYPES(x), ATTRS(INTS("axis", 1))), "Tensor[(2, 4), float32]");
    ck_type(call(op, TYPES(x), ATTRS(INTS("axis", -1), AI("keepdims", 1))), "Tensor[(2, 3, 1), float32]");
    ck_type(call(op, TYPES(x), NOATTRS), "Tensor[(), float32]");
    ck_type(call(op, TYPES(x), ATTRS(AI("keepdims", 1))), "Tensor[(1, 1, 1), float32]");
    ck_type(call(op, TYPES(x), ATTRS(INTS("axis", 2, 0))), "Tensor[(3,), float32]");
    ck_type(call(op, TYPES(T(F16, SCALAR)), NOATTRS), "Tensor[(), float16]");
    /* symbolic dims that are kept stay; reduced ones go */
    ck_type(call(op, TYPES(TS(F32, 3, dim("n"), D(3), dim("k"))), ATTRS(INTS("axis", 1))),
            "Tensor[(n, k), float32]");
    ck_type(call(op, TYPES(TS(F32, 2, dim("n"), D(3))), ATTRS(INTS("axis", 0), AI("keepdims", 1))),
            "Tensor[(1, 3), float32]");
    /* errors */
    ck_fails(call(op, TYPES(x), ATTRS(INTS("axis", 3))), KILN_ERR_TYPE, "axis 3 is out of range for a tensor of rank 3");
    ck_errmsg_has(ctx, op);
    ck_fails(call(op, TYPES(x), ATTRS(INTS("axis", -4))), KILN_ERR_TYPE, "axis -4 is out of range for a tensor of rank 3");
    ck_fails(call(op, TYPES(x), ATTRS(INTS("axis", 1, -2))), KILN_ERR_TYPE, "axis 1 is listed twice");
    ck_fails(call(op, TYPES(x), ATTRS(AI("keepdims", 2))), KILN_ERR_TYPE, "keepdims must be 0 or 1, not 2");
    ck_fails(call(op, TYPES(x, x), NOATTRS), KILN_ERR_TYPE, "takes 1 arguments, not 2");
  }
  /* dtypes: mean is for floats; sum and prod need numbers; max/min take anything */
  ck_type(call("sum", TYPES(T(I32, SHAPE(2, 3))), ATTRS(INTS("axis", 0))), "Tensor[(3,), int32]");
  ck_fails(call("mean", TYPES(T(I32, SHAPE(2, 3))), NOATTRS), KILN_ERR_TYPE,
           "mean: needs a float tensor, not int32");
  ck_fails(call("sum", TYPES(T(KILN_BOOL, SHAPE(2))), NOATTRS), KILN_ERR_TYPE, "sum: needs a numeric tensor, not bool");
  ck_fails(call("prod", TYPES(T(KILN_BOOL, SHAPE(2))), NOATTRS), KILN_ERR_TYPE, "prod: needs a numeric tensor, not bool");
  ck_type(call("max", TYPES(T(KILN_BOOL, SHAPE(2))), NOATTRS), "Tensor[(), bool]");
  ck_fails(call("sum", TYPES(x), ATTRS(AI("axis", 1))), KILN_ERR_TYPE, "attribute 'axis' must be a list of integers");
}
END_TEST

START_TEST(test_reduce_kernels) {
  relay_tensor *x = ten(F32, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
  CK_T(run("sum", ARGS(x), ATTRS(INTS("axis", 0))), SHAPE(3), VALS(5, 7, 9));
  CK_T(run("sum", ARGS(x), ATTRS(INTS("axis", 1))), SHAPE(2), VALS(6, 15));
  CK_T(run("sum", ARGS(x), NOATTRS), SCALAR, VALS(21));
  CK_T(run("sum", ARGS(x), ATTRS(INTS("axis", -1), AI("keepdims", 1))), SHAPE(2, 1), VALS(6, 15));
  CK_T(run("mean", ARGS(x), ATTRS(INTS("axis", 1))), SHAPE(2), VALS(2, 5));
  CK_T(run("mean", ARGS(x), NOATTRS), SCALAR, VALS(3.5));
  CK_T(run("prod", ARGS(x), ATTRS(INTS("axis", 1))), SHAPE(2), VALS(6, 120));
  CK_T(run("max", ARGS(x), ATTRS(INTS("axis", 0))), SHAPE(3), VALS(4, 5, 6));
  CK_T(run("min", ARGS(x), ATTRS(INTS("axis", 1), AI("keepdims", 1))), SHAPE(2, 1), VALS(1, 4));
  /* two of three axes: x[i][j][k] = 4i + 2j + k on (2, 2, 2) */
  relay_tensor *y = ten(F32, SHAPE(2, 2, 2), VALS(0, 1, 2, 3, 4, 5, 6, 7));
  CK_T(run("sum", ARGS(y), ATTRS(INTS("axis", 0, 2))), SHAPE(2), VALS(0 + 1 + 4 + 5, 2 + 3 + 6 + 7));
  CK_T(run("max", ARGS(y), ATTRS(INTS("axis", -3, -2), AI("keepdims", 1))), SHAPE(1, 1, 2), VALS(6, 7));
  CK_T(run("min", ARGS(y), ATTRS(INTS("axis", 1))), SHAPE(2, 2), VALS(0, 1, 4, 5));
  /* integers, float16 and a scalar input */
  relay_tensor *i = ten(I32, SHAPE(2, 2), VALS(-5, 3, 2147483647.0, 1));
  CK_T(run("sum", ARGS(i), ATTRS(INTS("axis", 1))), SHAPE(2), VALS(-2, -2147483648.0)); /* wraps */
  CK_T(run("max", ARGS(i), NOATTRS), SCALAR, VALS(2147483647.0));
  CK_T(run("prod", ARGS(ten(I32, SHAPE(2, 2), VALS(2, -3, 4, 5))), ATTRS(INTS("axis", 0))), SHAPE(2), VALS(8, -15));
  relay_tensor *h = ten(F16, SHAPE(4), VALS(0.5, 1.5, 2.5, 3.5));
  CK_T(run("mean", ARGS(h), NOATTRS), SCALAR, VALS(2));
  CK_T(run("sum", ARGS(ten(F32, SCALAR, VALS(4))), NOATTRS), SCALAR, VALS(4));
  /* NaN propagates through max and min */
  relay_tensor *nan = ten(F32, SHAPE(3), VALS(1, NAN, 3));
  CK_T(run("max", ARGS(nan), NOATTRS), SCALAR, VALS(NAN));
  CK_T(run("min", ARGS(nan), NOATTRS), SCALAR, VALS(NAN));
  /* empty reductions: sum 0, prod 1, max/min are a run-time error */
  relay_tensor *e = ten(F32, SHAPE(0, 2), VALS(0));
  CK_T(run("sum", ARGS(e), ATTRS(INTS("axis", 0))), SHAPE(2), VALS(0, 0));
  CK_T(run("prod", ARGS(e), ATTRS(INTS("axis", 0))), SHAPE(2), VALS(1, 1));
  CK_T(run("sum", ARGS(e), ATTRS(INTS("axis", 1))), SHAPE(0), VALS(0));
  relay_tensor *outs[2];
  int nouts;
  ck_assert_int_eq(run_n("max", ARGS(e), ATTRS(INTS("axis", 0)), outs, &nouts), KILN_ERR_RUNTIME);
  ck_errmsg_has(ctx, "max: reduction over no elements");
}
END_TEST

/* ---- reshape ------------------------------------------------------------------------------- */

START_TEST(test_reshape_types) {
  relay_type *x = T(F32, SHAPE(2, 3, 4));
  ck_type(call("reshape", TYPES(x), ATTRS(INTS("newshape", 6, 4))), "Tensor[(6, 4), float32]");
  ck_type(call("reshape", TYPES(x), ATTRS(INTS("newshape", 0, -1))), "Tensor[(2, 12), float32]");
  ck_type(call("reshape", TYPES(x), ATTRS(INTS("newshape", -1))), "Tensor[(24,), float32]");
  ck_type(call("reshape", TYPES(x), ATTRS(INTS("newshape", 0, 0, 2, -1))), "Tensor[(2, 3, 2, 2), float32]");
  ck_type(call("reshape", TYPES(x), ATTRS(INTS("newshape", -1, 1, 8))), "Tensor[(3, 1, 8), float32]");
  ck_type(call("reshape", TYPES(T(I32, SHAPE(1, 1))), ATTRS(NO_INTS("newshape"))), "Tensor[(), int32]");
  ck_type(call("reshape", TYPES(T(I32, SCALAR)), ATTRS(INTS("newshape", 1, -1))), "Tensor[(1, 1), int32]");
  ck_type(call("reshape", TYPES(T(F32, SHAPE(0, 3))), ATTRS(INTS("newshape", 0, 1, 3))), "Tensor[(0, 1, 3), float32]");
  /* 0 copies the input's dimension at the same position */
  ck_fails(call("reshape", TYPES(T(F32, SHAPE(0, 3))), ATTRS(INTS("newshape", 3, 0))), KILN_ERR_TYPE,
           "cannot reshape (0, 3) to (3, 0): 0 elements do not match 9");
  /* errors */
  relay_type *y = T(F32, SHAPE(2, 3));
  ck_fails(call("reshape", TYPES(y), ATTRS(INTS("newshape", 4, -1))), KILN_ERR_TYPE,
           "reshape: cannot reshape (2, 3) to (4, -1): 6 elements do not divide by 4");
  ck_fails(call("reshape", TYPES(y), ATTRS(INTS("newshape", 4, 2))), KILN_ERR_TYPE,
           "reshape: cannot reshape (2, 3) to (4, 2): 6 elements do not match 8");
  ck_fails(call("reshape", TYPES(y), ATTRS(INTS("newshape", 7))), KILN_ERR_TYPE,
           "cannot reshape (2, 3) to (7,): 6 elements do not match 7");
  ck_fails(call("reshape", TYPES(y), ATTRS(INTS("newshape", -1, -1))), KILN_ERR_TYPE, "more than one -1");
  ck_fails(call("reshape", TYPES(y), ATTRS(INTS("newshape", -2, 3))), KILN_ERR_TYPE, "-2 is not a size");
  ck_fails(call("reshape", TYPES(y), ATTRS(INTS("newshape", 1, 6, 0))), KILN_ERR_TYPE,
           "entry 2 is 0 (copy) but the input has no dimension 2");
  ck_fails(call("reshape", TYPES(y), ATTRS(INTS("newshape", 1, 1, 1, 1, 1, 1, 1, 2, 3))), KILN_ERR_TYPE,
           "the result would have 9 dimensions; at most 8 are supported");
  ck_fails(call("reshape", TYPES(T(F32, SHAPE(0, 3))), ATTRS(INTS("newshape", 0, -1))), KILN_ERR_TYPE,
           "-1 is ambiguous when the other dimensions hold 0 elements");
  ck_fails(call("reshape", TYPES(y), ATTRS(AI("newshape", 6))), KILN_ERR_TYPE,
           "reshape: attribute 'newshape' must be a list of integers");
}
END_TEST

START_TEST(test_reshape_symbolic) {
  ir_expr *n = dim("n"), *k = dim("k");
  relay_type *x = TS(F32, 3, n, D(3), D(4));
  ck_type(call("reshape", TYPES(x), ATTRS(INTS("newshape", 0, -1))), "Tensor[(n, 12), float32]");
  ck_type(call("reshape", TYPES(x), ATTRS(INTS("newshape", -1, 12))), "Tensor[(n, 12), float32]");
  ck_type(call("reshape", TYPES(x), ATTRS(INTS("newshape", -1, 3, 2, 2))), "Tensor[(n, 3, 2, 2), float32]");
  ck_type(call("reshape", TYPES(x), ATTRS(INTS("newshape", 0, 3, 4))), "Tensor[(n, 3, 4), float32]");
  ck_dims(call("reshape", TYPES(x), ATTRS(INTS("newshape", -1))), F32, 1, mul(n, D(12)));
  ck_dims(call("reshape", TYPES(x), ATTRS(INTS("newshape", -1, 2))), F32, 2, mul(n, D(6)), D(2));
  ck_dims(call("reshape", TYPES(x), ATTRS(INTS("newshape", 6, -1))), F32, 2, D(6), mul(n, D(2)));
  /* products of symbolic dims cancel factor by factor */
  relay_type *z = TS(I32, 3, n, k, D(2));
  ck_dims(call("reshape", TYPES(z), ATTRS(INTS("newshape", 0, -1))), I32, 2, n, mul(k, D(2)));
  ck_dims(call("reshape", TYPES(z), ATTRS(INTS("newshape", 2, -1))), I32, 2, D(2), mul(n, k));
  ck_dims(call("reshape", TYPES(TS(F32, 1, mul(n, k))), ATTRS(INTS("newshape", -1))), F32, 1, mul(k, n));
  ck_dims(call("reshape", TYPES(TS(F32, 2, mul(n, D(4)), D(3))), ATTRS(INTS("newshape", 6, -1))), F32, 2, D(6),
          mul(n, D(2)));
  /* a dimension that is a sum: only the simplifier can tell */
  ir_expr *n1 = ir_add(A, n, D(1));
  ck_dims(call("reshape", TYPES(TS(F32, 2, n1, D(2))), ATTRS(INTS("newshape", 0, -1))), F32, 2, n1, D(2));
  ck_dims(call("reshape", TYPES(TS(F32, 2, mul(D(2), n1), D(3))), ATTRS(INTS("newshape", -1, 2))), F32, 2,
          mul(n1, D(3)), D(2));
  /* what cannot be proven is an error */
  ck_fails(call("reshape", TYPES(TS(F32, 2, n, D(6))), ATTRS(INTS("newshape", -1, 4))), KILN_ERR_TYPE,
           "reshape: cannot reshape (n, 6) to (-1, 4): n * 6 elements do not divide by 4");
  ck_fails(call("reshape", TYPES(TS(F32, 2, n, D(3))), ATTRS(INTS("newshape", 6, 2))), KILN_ERR_TYPE,
           "cannot reshape (n, 3) to (6, 2): n * 3 elements do not match 12");
  ck_type(call("reshape", TYPES(TS(F32, 2, n, D(3))), ATTRS(INTS("newshape", 0, 0, -1))), "Tensor[(n, 3, 1), float32]");
  ck_fails(call("reshape", TYPES(TS(F32, 2, n, D(3))), ATTRS(INTS("newshape", 0, 0, 0))), KILN_ERR_TYPE,
           "entry 2 is 0 (copy)");
}
END_TEST

START_TEST(test_reshape_like_kernels) {
  relay_tensor *x = ten(F32, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
  CK_T(run("reshape", ARGS(x), ATTRS(INTS("newshape", 3, -1))), SHAPE(3, 2), VALS(1, 2, 3, 4, 5, 6));
  relay_tensor *i = ten(I32, SHAPE(2, 1, 3), VALS(-1, 2, -3, 4, -5, 6));
  CK_T(run("reshape", ARGS(i), ATTRS(INTS("newshape", 0, -1))), SHAPE(2, 3), VALS(-1, 2, -3, 4, -5, 6));
  CK_T(run("squeeze", ARGS(i), NOATTRS), SHAPE(2, 3), VALS(-1, 2, -3, 4, -5, 6));
  CK_T(run("expand_dims", ARGS(i), ATTRS(AI("axis", 0), AI("num_newaxis", 2))), SHAPE(1, 1, 2, 1, 3),
       VALS(-1, 2, -3, 4, -5, 6));
  CK_T(run("nn.batch_flatten", ARGS(i), NOATTRS), SHAPE(2, 3), VALS(-1, 2, -3, 4, -5, 6));
  relay_tensor *h = ten(F16, SHAPE(4), VALS(0.5, -1, 65504, 0.099975586));
  CK_T(run("reshape", ARGS(h), ATTRS(INTS("newshape", 2, 2))), SHAPE(2, 2), VALS(0.5, -1, 65504, 0.099975586));
  /* a mismatched output is a clean error, not an overrun */
  relay_tensor bad = *x;
  relay_tensor small = *ten(F32, SHAPE(5), VALS(0, 0, 0, 0, 0));
  const relay_op *op = relay_op_lookup("reshape");
  relay_eval_ctx ec = {ctx, "reshape"};
  relay_attr *attrs[] = {INTS("newshape", 5)};
  ck_assert_int_eq(op->eval(&ec, 1, &bad, attrs, 1, &small), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "reshape: the result has 5 elements, the input 6");
}
END_TEST

/* ---- transpose ------------------------------------------------------------------------------ */

START_TEST(test_transpose) {
  relay_type *x = T(F32, SHAPE(2, 3, 4));
  ck_type(call("transpose", TYPES(x), ATTRS(INTS("axes", 1, 0, 2))), "Tensor[(3, 2, 4), float32]");
  ck_type(call("transpose", TYPES(x), NOATTRS), "Tensor[(4, 3, 2), float32]");
  ck_type(call("transpose", TYPES(x), ATTRS(INTS("axes", -1, 0, 1))), "Tensor[(4, 2, 3), float32]");
  ck_type(call("transpose", TYPES(T(I32, SCALAR)), NOATTRS), "Tensor[(), int32]");
  ck_type(call("transpose", TYPES(TS(F32, 2, dim("n"), D(3))), NOATTRS), "Tensor[(3, n), float32]");
  ck_fails(call("transpose", TYPES(T(F32, SHAPE(2, 3))), ATTRS(INTS("axes", 0, 0))), KILN_ERR_TYPE,
           "transpose: axes [0, 0] is not a permutation of 2 axes");
  ck_fails(call("transpose", TYPES(x), ATTRS(INTS("axes", 1, 0))), KILN_ERR_TYPE,
           "axes [1, 0] is not a permutation of 3 axes");
  ck_fails(call("transpose", TYPES(x), ATTRS(INTS("axes", 0, 1, 3))), KILN_ERR_TYPE,
           "axes [0, 1, 3] is not a permutation of 3 axes");
  /* kernels */
  relay_tensor *m = ten(F32, SHAPE(2, 3), VALS(1, 2, 3, 4, 5, 6));
  CK_T(run("transpose", ARGS(m), NOATTRS), SHAPE(3, 2), VALS(1, 4, 2, 5, 3, 6));
  /* (2, 3, 4) with axes [2, 0, 1]: out[k][i][j] = x[i][j][k] = 100i + 10j + k */
  double v[24], want[24];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++) {
        v[(i * 3 + j) * 4 + k] = 100 * i + 10 * j + k;
        want[(k * 2 + i) * 3 + j] = 100 * i + 10 * j + k;
      }
  relay_tensor *t = ten(I32, SHAPE(2, 3, 4), v);
  CK_T(run("transpose", ARGS(t), ATTRS(INTS("axes", 2, 0, 1))), SHAPE(4, 2, 3), want);
  /* the transpose back gives the input */
  relay_tensor *back = run("transpose", ARGS(run("transpose", ARGS(t), ATTRS(INTS("axes", 2, 0, 1)))),
                           ATTRS(INTS("axes", 1, 2, 0)));
  CK_T(back, SHAPE(2, 3, 4), v);
}
END_TEST

/* ---- squeeze, expand_dims, nn.batch_flatten ------------------------------------------------ */

START_TEST(test_squeeze_expand_flatten_types) {
  relay_type *x = T(F32, SHAPE(1, 3, 1));
  ck_type(call("squeeze", TYPES(x), NOATTRS), "Tensor[(3,), float32]");
  ck_type(call("squeeze", TYPES(x), ATTRS(INTS("axis", 0))), "Tensor[(3, 1), float32]");
  ck_type(call("squeeze", TYPES(x), ATTRS(INTS("axis", -1))), "Tensor[(1, 3), float32]");
  ck_type(call("squeeze", TYPES(x), ATTRS(INTS("axis", 0, 2))), "Tensor[(3,), float32]");
  ck_type(call("squeeze", TYPES(T(I32, SHAPE(1, 1))), NOATTRS), "Tensor[(), int32]");
  ck_fails(call("squeeze", TYPES(x), ATTRS(INTS("axis", 1))), KILN_ERR_TYPE,
           "squeeze: dimension 1 of (1, 3, 1) is 3, not 1");
  ck_fails(call("squeeze", TYPES(x), ATTRS(INTS("axis", 0, -3))), KILN_ERR_TYPE, "axis 0 is listed twice");
  ck_fails(call("squeeze", TYPES(x), ATTRS(INTS("axis", 3))), KILN_ERR_TYPE,
           "squeeze: axis 3 is out of range for a tensor of rank 3");
  /* a symbolic dimension is never squeezed implicitly, and cannot be squeezed explicitly */
  ir_expr *n = dim("n");
  ck_type(call("squeeze", TYPES(TS(F32, 3, D(1), n, D(1))), NOATTRS), "Tensor[(n,), float32]");
  ck_type(call("squeeze", TYPES(TS(F32, 2, n, D(1))), NOATTRS), "Tensor[(n,), float32]");
  ck_fails(call("squeeze", TYPES(TS(F32, 2, n, D(1))), ATTRS(INTS("axis", 0))), KILN_ERR_TYPE,
           "dimension 0 of (n, 1) is n, not 1");

  relay_type *y = T(F32, SHAPE(2, 3));
  ck_type(call("expand_dims", TYPES(y), ATTRS(AI("axis", 1))), "Tensor[(2, 1, 3), float32]");
  ck_type(call("expand_dims", TYPES(y), ATTRS(AI("axis", -1))), "Tensor[(2, 3, 1), float32]");
  ck_type(call("expand_dims", TYPES(y), ATTRS(AI("axis", 2))), "Tensor[(2, 3, 1), float32]");
  ck_type(call("expand_dims", TYPES(y), ATTRS(AI("axis", -3))), "Tensor[(1, 2, 3), float32]");
  ck_type(call("expand_dims", TYPES(y), ATTRS(AI("axis", 0), AI("num_newaxis", 2))), "Tensor[(1, 1, 2, 3), float32]");
  ck_type(call("expand_dims", TYPES(y), ATTRS(AI("axis", 1), AI("num_newaxis", 0))), "Tensor[(2, 3), float32]");
  ck_type(call("expand_dims", TYPES(T(I32, SCALAR)), NOATTRS), "Tensor[(1,), int32]");
  ck_type(call("expand_dims", TYPES(TS(F32, 1, n)), ATTRS(AI("axis", 1))), "Tensor[(n, 1), float32]");
  ck_fails(call("expand_dims", TYPES(y), ATTRS(AI("axis", 3))), KILN_ERR_TYPE,
           "expand_dims: axis 3 is out of range for inserting into a tensor of rank 2");
  ck_fails(call("expand_dims", TYPES(y), ATTRS(AI("axis", -4))), KILN_ERR_TYPE, "axis -4 is out of range");
  ck_fails(call("expand_dims", TYPES(y), ATTRS(AI("num_newaxis", -1))), KILN_ERR_TYPE,
           "num_newaxis must be >= 0, not -1");
  ck_fails(call("expand_dims", TYPES(y), ATTRS(AI("num_newaxis", 7))), KILN_ERR_TYPE,
           "7 new axes on a tensor of rank 2 make more than 8 dimensions");

  ck_type(call("nn.batch_flatten", TYPES(T(F32, SHAPE(2, 3, 4))), NOATTRS), "Tensor[(2, 12), float32]");
  ck_type(call("nn.batch_flatten", TYPES(T(I32, SHAPE(5))), NOATTRS), "Tensor[(5, 1), int32]");
  ck_type(call("nn.batch_flatten", TYPES(TS(F32, 4, n, D(3), D(2), D(2))), NOATTRS), "Tensor[(n, 12), float32]");
  ck_dims(call("nn.batch_flatten", TYPES(TS(F32, 3, D(2), n, D(4))), NOATTRS), F32, 2, D(2), mul(n, D(4)));
  ck_fails(call("nn.batch_flatten", TYPES(T(F32, SCALAR)), NOATTRS), KILN_ERR_TYPE,
           "nn.batch_flatten: needs a tensor of rank >= 1, not a scalar");
}
END_TEST

/* ---- concatenate, stack -------------------------------------------------------------------- */

START_TEST(test_concatenate_stack_types) {
  relay_type *a = T(F32, SHAPE(2, 3)), *b = T(F32, SHAPE(2, 4)), *c = T(F32, SHAPE(5, 3));
  ck_type(call("concatenate", TYPES(a, b), ATTRS(AI("axis", 1))), "Tensor[(2, 7), float32]");
  ck_type(call("concatenate", TYPES(a, b, a), ATTRS(AI("axis", -1))), "Tensor[(2, 10), float32]");
  ck_type(call("concatenate", TYPES(a, c), NOATTRS), "Tensor[(7, 3), float32]");
  ck_type(call("concatenate", TYPES(a), NOATTRS), "Tensor[(2, 3), float32]");
  ir_expr *n = dim("n"), *m = dim("m");
  ck_type(call("concatenate", TYPES(TS(F32, 2, n, D(3)), TS(F32, 2, n, D(5))), ATTRS(AI("axis", 1))),
          "Tensor[(n, 8), float32]");
  ck_dims(call("concatenate", TYPES(TS(F32, 2, n, D(3)), TS(F32, 2, m, D(3)), TS(F32, 2, n, D(3))), NOATTRS), F32, 2,
          ir_add(A, mul(n, D(2)), m), D(3));
  ck_fails(call("concatenate", TYPES(a, b), NOATTRS), KILN_ERR_TYPE,
           "concatenate: dimension 1 of argument 1 (2, 4) does not match argument 0 (2, 3)");
  ck_fails(call("concatenate", TYPES(TS(F32, 2, n, D(3)), TS(F32, 2, m, D(3))), ATTRS(AI("axis", 1))),
           KILN_ERR_TYPE, "dimension 0 of argument 1 (m, 3) does not match argument 0 (n, 3)");
  ck_fails(call("concatenate", TYPES(a, T(I32, SHAPE(2, 3))), NOATTRS), KILN_ERR_TYPE,
           "concatenate: argument 1 has dtype int32, argument 0 float32");
  ck_fails(call("concatenate", TYPES(a, T(F32, SHAPE(2, 3, 1))), NOATTRS), KILN_ERR_TYPE,
           "argument 1 has rank 3, argument 0 rank 2");
  ck_fails(call("concatenate", TYPES(a, a), ATTRS(AI("axis", 2))), KILN_ERR_TYPE,
           "concatenate: axis 2 is out of range for a tensor of rank 2");
  ck_fails(call("concatenate", TYPES(T(F32, SCALAR), T(F32, SCALAR)), NOATTRS), KILN_ERR_TYPE,
           "needs tensors of rank >= 1, not scalars");
  ck_fails(relay_call_op(A, "concatenate", 0, NULL, 0, NULL), KILN_ERR_TYPE,
           "concatenate takes at least 1 arguments, not 0");

  ck_type(call("stack", TYPES(a, a, a), NOATTRS), "Tensor[(3, 2, 3), float32]");
  ck_type(call("stack", TYPES(a, a), ATTRS(AI("axis", 1))), "Tensor[(2, 2, 3), float32]");
  ck_type(call("stack", TYPES(a, a), ATTRS(AI("axis", -1))), "Tensor[(2, 3, 2), float32]");
  ck_type(call("stack", TYPES(T(I32, SCALAR), T(I32, SCALAR)), NOATTRS), "Tensor[(2,), int32]");
  ck_type(call("stack", TYPES(TS(F32, 1, n), TS(F32, 1, n)), ATTRS(AI("axis", 1))), "Tensor[(n, 2), float32]");
  ck_fails(call("stack", TYPES(a, c), NOATTRS), KILN_ERR_TYPE,
           "stack: dimension 0 of argument 1 (5, 3) does not match argument 0 (2, 3)");
  ck_fails(call("stack", TYPES(a, a), ATTRS(AI("axis", 3))), KILN_ERR_TYPE,
           "stack: axis 3 is out of range for stacking tensors of rank 2");
  ck_fails(call("stack", TYPES(T(F32, SHAPE(1, 1, 1, 1, 1, 1, 1, 1))), NOATTRS), KILN_ERR_TYPE,
           "the result would have 9 dimensions");
}
END_TEST

START_TEST(test_concatenate_stack_kernels) {
  relay_tensor *a = ten(F32, SHAPE(2, 2), VALS(1, 2, 3, 4));
  relay_tensor *b = ten(F32, SHAPE(2, 1), VALS(5, 6));
  relay_tensor *c = ten(F32, SHAPE(1, 2), VALS(7, 8));
  CK_T(run("concatenate", ARGS(a, b), ATTRS(AI("axis", 1))), SHAPE(2, 3), VALS(1, 2, 5, 3, 4, 6));
  CK_T(run("concatenate", ARGS(b, a, b), ATTRS(AI("axis", -1))), SHAPE(2, 4), VALS(5, 1, 2, 5, 6, 3, 4, 6));
  CK_T(run("concatenate", ARGS(a, c), ATTRS(AI("axis", 0))), SHAPE(3, 2), VALS(1, 2, 3, 4, 7, 8));
  relay_tensor *i1 = ten(I32, SHAPE(3), VALS(1, 2, 3)), *i2 = ten(I32, SHAPE(0), VALS(0)),
               *i3 = ten(I32, SHAPE(1), VALS(-4));
  CK_T(run("concatenate", ARGS(i1, i2, i3), NOATTRS), SHAPE(4), VALS(1, 2, 3, -4));
  CK_T(run("stack", ARGS(a, a), NOATTRS), SHAPE(2, 2, 2), VALS(1, 2, 3, 4, 1, 2, 3, 4));
  relay_tensor *d = ten(F32, SHAPE(2, 2), VALS(5, 6, 7, 8));
  CK_T(run("stack", ARGS(a, d), ATTRS(AI("axis", 1))), SHAPE(2, 2, 2), VALS(1, 2, 5, 6, 3, 4, 7, 8));
  CK_T(run("stack", ARGS(a, d), ATTRS(AI("axis", 2))), SHAPE(2, 2, 2), VALS(1, 5, 2, 6, 3, 7, 4, 8));
  CK_T(run("stack", ARGS(ten(F16, SCALAR, VALS(1.5)), ten(F16, SCALAR, VALS(-2))), NOATTRS), SHAPE(2), VALS(1.5, -2));
}
END_TEST

/* ---- split -------------------------------------------------------------------------------- */

START_TEST(test_split) {
  relay_type *x = T(F32, SHAPE(6, 2));
  ck_type(call("split", TYPES(x), ATTRS(AI("sections", 3))),
          "(Tensor[(2, 2), float32], Tensor[(2, 2), float32], Tensor[(2, 2), float32])");
  ck_type(call("split", TYPES(T(I32, SHAPE(2, 5))), ATTRS(INTS("indices", 1, 3), AI("axis", 1))),
          "(Tensor[(2, 1), int32], Tensor[(2, 2), int32], Tensor[(2, 2), int32])");
  ck_type(call("split", TYPES(T(I32, SHAPE(2, 5))), ATTRS(INTS("indices", 2, 2, 5), AI("axis", -1))),
          "(Tensor[(2, 2), int32], Tensor[(2, 0), int32], Tensor[(2, 3), int32], Tensor[(2, 0), int32])");
  ck_type(call("split", TYPES(x), NOATTRS), "(Tensor[(6, 2), float32],)");
  /* symbolic */
  ir_expr *n = dim("n");
  relay_expr *s = call("split", TYPES(TS(F32, 2, mul(n, D(4)), D(3))), ATTRS(AI("sections", 2)));
  ck_assert_msg(s != NULL, "%s", kiln_context_errmsg(ctx));
  const relay_tuple_type *tt = relay_as_tuple_type(relay_type_of(s));
  ck_assert_int_eq(tt->nfields, 2);
  ck_assert(dim_eq(((relay_tensor_type *)tt->fields[1])->shape[0], mul(n, D(2))));
  /* a projection of the split is typed */
  ck_dims(relay_proj_new(A, s, 1), F32, 2, mul(n, D(2)), D(3));
  relay_expr *s2 = call("split", TYPES(TS(F32, 2, D(3), n)), ATTRS(INTS("indices", 2), AI("axis", 1)));
  ck_dims(relay_proj_new(A, s2, 0), F32, 2, D(3), D(2));
  ck_dims(relay_proj_new(A, s2, 1), F32, 2, D(3), ir_sub(A, n, D(2)));
  /* errors */
  ck_fails(call("split", TYPES(T(F32, SHAPE(5, 2))), ATTRS(AI("sections", 2))), KILN_ERR_TYPE,
           "split: dimension 0 of (5, 2) is 5, which does not split into 2 equal sections");
  ck_fails(call("split", TYPES(TS(F32, 1, n)), ATTRS(AI("sections", 2))), KILN_ERR_TYPE,
           "dimension 0 of (n,) is n, which does not split into 2 equal sections");
  ck_fails(call("split", TYPES(x), ATTRS(AI("sections", 2), INTS("indices", 1))), KILN_ERR_TYPE,
           "give either sections or indices, not both");
  ck_fails(call("split", TYPES(x), ATTRS(AI("sections", -1))), KILN_ERR_TYPE, "sections must be > 0, not -1");
  ck_fails(call("split", TYPES(x), ATTRS(INTS("indices", 3, 1))), KILN_ERR_TYPE,
           "split: indices [3, 1] must be non-decreasing and within [0, 6] (dimension 0 of (6, 2))");
  ck_fails(call("split", TYPES(x), ATTRS(INTS("indices", 7))), KILN_ERR_TYPE, "within [0, 6]");
  ck_fails(call("split", TYPES(x), ATTRS(INTS("indices", -1))), KILN_ERR_TYPE, "must be non-decreasing");
  ck_fails(call("split", TYPES(x), ATTRS(AI("axis", 2))), KILN_ERR_TYPE,
           "split: axis 2 is out of range for a tensor of rank 2");
  ck_fails(call("split", TYPES(T(F32, SHAPE(4096))), ATTRS(AI("sections", 4096))), KILN_ERR_TYPE,
           "at most 1024 sections");
  /* kernels */
  relay_tensor *v = ten(F32, SHAPE(3, 4), VALS(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
  relay_tensor *outs[8];
  int nouts;
  ck_ok(ctx, run_n("split", ARGS(v), ATTRS(INTS("indices", 1, 3), AI("axis", 1)), outs, &nouts));
  ck_assert_int_eq(nouts, 3);
  CK_T(outs[0], SHAPE(3, 1), VALS(0, 4, 8));
  CK_T(outs[1], SHAPE(3, 2), VALS(1, 2, 5, 6, 9, 10));
  CK_T(outs[2], SHAPE(3, 1), VALS(3, 7, 11));
  ck_ok(ctx, run_n("split", ARGS(v), ATTRS(AI("sections", 3)), outs, &nouts));
  ck_assert_int_eq(nouts, 3);
  CK_T(outs[0], SHAPE(1, 4), VALS(0, 1, 2, 3));
  CK_T(outs[2], SHAPE(1, 4), VALS(8, 9, 10, 11));
  relay_tensor *iv = ten(I32, SHAPE(4), VALS(1, -2, 3, -4));
  ck_ok(ctx, run_n("split", ARGS(iv), ATTRS(AI("sections", 2)), outs, &nouts));
  CK_T(outs[0], SHAPE(2), VALS(1, -2));
  CK_T(outs[1], SHAPE(2), VALS(3, -4));
  /* outputs that do not add up to the input are a clean error */
  const relay_op *op = relay_op_lookup("split");
  relay_eval_ctx ec = {ctx, "split"};
  relay_attr *attrs[] = {NO_INTS("indices"), AI("sections", 2), AI("axis", 0)};
  relay_tensor two[2] = {*ten(I32, SHAPE(2), VALS(0, 0)), *ten(I32, SHAPE(1), VALS(0))};
  ck_assert_int_eq(op->eval(&ec, 1, iv, attrs, 2, two), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "split: the parts hold 3 of the 4 elements along axis 0");
}
END_TEST

/* ---- strided_slice ------------------------------------------------------------------------ */

#define END_ INT64_MAX

START_TEST(test_strided_slice_types) {
  relay_type *x = T(F32, SHAPE(10));
  ck_type(call("strided_slice", TYPES(x), ATTRS(INTS("begin", 2), INTS("end", 8), INTS("strides", 3))),
          "Tensor[(2,), float32]");
  ck_type(call("strided_slice", TYPES(x), ATTRS(INTS("begin", 2), INTS("end", 9), INTS("strides", 3))),
          "Tensor[(3,), float32]");
  ck_type(call("strided_slice", TYPES(x), ATTRS(INTS("begin", -3), INTS("end", END_))), "Tensor[(3,), float32]");
  ck_type(call("strided_slice", TYPES(x), ATTRS(INTS("begin", 0), INTS("end", 100))), "Tensor[(10,), float32]");
  ck_type(call("strided_slice", TYPES(x), ATTRS(INTS("begin", 7), INTS("end", 3))), "Tensor[(0,), float32]");
  ck_type(call("strided_slice", TYPES(x), ATTRS(INTS("begin", -100), INTS("end", -8))), "Tensor[(2,), float32]");
  ck_type(call("strided_slice", TYPES(x), ATTRS(INTS("strides", -1))), "Tensor[(10,), float32]");
  ck_type(call("strided_slice", TYPES(x), ATTRS(INTS("begin", 8), INTS("end", 2), INTS("strides", -2))),
          "Tensor[(3,), float32]");
  ck_type(call("strided_slice", TYPES(x), ATTRS(INTS("begin", -1), INTS("end", -11), INTS("strides", -4))),
          "Tensor[(3,), float32]");
  /* several axes; missing entries take the whole axis */
  relay_type *y = T(I32, SHAPE(4, 5, 6));
  ck_type(call("strided_slice", TYPES(y), ATTRS(INTS("begin", 1, 0), INTS("end", 3, 5), INTS("strides", 1, 2))),
          "Tensor[(2, 3, 6), int32]");
  ck_type(call("strided_slice", TYPES(y), ATTRS(INTS("begin", 1), INTS("end", 3, 2))), "Tensor[(2, 2, 6), int32]");
  ck_type(call("strided_slice", TYPES(y), ATTRS(INTS("begin", 1, 2), INTS("end", END_, 4), INTS("axes", 2, 0))),
          "Tensor[(2, 5, 5), int32]");
  ck_type(call("strided_slice", TYPES(y), ATTRS(INTS("begin", -2), INTS("axes", -1))), "Tensor[(4, 5, 2), int32]");
  /* symbolic dimensions: begin and end are taken relative to n (assumed in range) */
  ir_expr *n = dim("n");
  relay_type *s = TS(F32, 2, n, D(4));
  ck_type(call("strided_slice", TYPES(s), ATTRS(INTS("begin", 0, 1), INTS("end", END_, 3))), "Tensor[(n, 2), float32]");
  ck_type(call("strided_slice", TYPES(s), ATTRS(INTS("begin", 0, 1), INTS("end", 2147483647, 3))),
          "Tensor[(n, 2), float32]");
  ck_type(call("strided_slice", TYPES(s), ATTRS(INTS("begin", 0, 1), INTS("end", END_, 3), INTS("axes", 1, 0))),
          "Tensor[(2, 4), float32]"); /* axis 1: [0, end); axis 0: [1, 3) of n (assumed >= 3) */
  ck_dims(call("strided_slice", TYPES(s), ATTRS(INTS("begin", 1, 1), INTS("end", 3, 3), INTS("axes", 1, 0))), F32, 2,
          D(2), D(2));
  ck_dims(call("strided_slice", TYPES(s), ATTRS(INTS("begin", 1), INTS("end", END_))), F32, 2, ir_sub(A, n, D(1)), D(4));
  ck_dims(call("strided_slice", TYPES(s), ATTRS(INTS("begin", 0), INTS("end", -1))), F32, 2, ir_sub(A, n, D(1)), D(4));
  ck_dims(call("strided_slice", TYPES(s), ATTRS(INTS("begin", -3), INTS("end", END_))), F32, 2, D(3), D(4));
  ck_dims(call("strided_slice", TYPES(s), ATTRS(INTS("begin", 2), INTS("end", 5))), F32, 2, D(3), D(4));
  ck_dims(call("strided_slice", TYPES(s), ATTRS(INTS("begin", 1), INTS("end", END_), INTS("strides", 2))), F32, 2,
          ir_add(A, ir_binop(A, IR_FLOORDIV, ir_sub(A, n, D(2)), D(2)), D(1)), D(4));
  ck_dims(call("strided_slice", TYPES(s), ATTRS(INTS("strides", -1))), F32, 2, n, D(4));
  ck_dims(call("strided_slice", TYPES(s), ATTRS(INTS("begin", 5), INTS("end", 2))), F32, 2, D(0), D(4));
  /* errors */
  ck_fails(call("strided_slice", TYPES(x), ATTRS(INTS("begin", 0), INTS("end", 5), INTS("strides", 0))),
           KILN_ERR_TYPE, "strided_slice: stride 0 of axis 0 is not allowed");
  ck_fails(call("strided_slice", TYPES(x), ATTRS(INTS("begin", 0, 0), INTS("end", 5, 5))), KILN_ERR_TYPE,
           "strided_slice: begin/end/strides have 2 entries for 1 dimensions");
  ck_fails(call("strided_slice", TYPES(y), ATTRS(INTS("begin", 0, 0), INTS("axes", 1))), KILN_ERR_TYPE,
           "begin/end/strides have 2 entries for 1 axes");
  ck_fails(call("strided_slice", TYPES(y), ATTRS(INTS("begin", 0, 0), INTS("axes", 1, -2))), KILN_ERR_TYPE,
           "strided_slice: axis 1 is listed twice");
  ck_fails(call("strided_slice", TYPES(y), ATTRS(INTS("begin", 0), INTS("axes", 3))), KILN_ERR_TYPE,
           "strided_slice: axis 3 is out of range for a tensor of rank 3");
}
END_TEST

START_TEST(test_strided_slice_kernels) {
  relay_tensor *x = ten(F32, SHAPE(10), VALS(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
  CK_T(run("strided_slice", ARGS(x), ATTRS(INTS("begin", 2), INTS("end", 9), INTS("strides", 3))), SHAPE(3),
       VALS(2, 5, 8));
  CK_T(run("strided_slice", ARGS(x), ATTRS(INTS("begin", -3), INTS("end", END_))), SHAPE(3), VALS(7, 8, 9));
  CK_T(run("strided_slice", ARGS(x), ATTRS(INTS("strides", -3))), SHAPE(4), VALS(9, 6, 3, 0));
  CK_T(run("strided_slice", ARGS(x), ATTRS(INTS("begin", 8), INTS("end", 2), INTS("strides", -2))), SHAPE(3),
       VALS(8, 6, 4));
  CK_T(run("strided_slice", ARGS(x), ATTRS(INTS("begin", 7), INTS("end", 3))), SHAPE(0), VALS(0));
  /* 2-d: rows 1..3 step 1, columns from the end backwards in steps of 2 */
  double v[20];
  for (int i = 0; i < 20; i++) v[i] = i;
  relay_tensor *m = ten(I32, SHAPE(4, 5), v);
  CK_T(run("strided_slice", ARGS(m), ATTRS(INTS("begin", 1, -1), INTS("end", 3, -6), INTS("strides", 1, -2))),
       SHAPE(2, 3), VALS(9, 7, 5, 14, 12, 10));
  CK_T(run("strided_slice", ARGS(m), ATTRS(INTS("begin", 3), INTS("end", 5), INTS("axes", 1))), SHAPE(4, 2),
       VALS(3, 4, 8, 9, 13, 14, 18, 19));
  relay_tensor *h = ten(F16, SHAPE(2, 2), VALS(0.5, 1.5, 2.5, 3.5));
  CK_T(run("strided_slice", ARGS(h), ATTRS(INTS("begin", 1), INTS("end", 2))), SHAPE(1, 2), VALS(2.5, 3.5));
  /* an output of the wrong shape (as a symbolic relation's assumption broken at run time would
   * give) is a clean error */
  const relay_op *op = relay_op_lookup("strided_slice");
  relay_eval_ctx ec = {ctx, "strided_slice"};
  relay_attr *attrs[] = {INTS("begin", 2), INTS("end", 5), NO_INTS("strides"), NO_INTS("axes")};
  relay_tensor *small = ten(F32, SHAPE(4), VALS(0, 1, 2, 3));
  relay_tensor out = *ten(F32, SHAPE(3), VALS(0, 0, 0));
  ck_assert_int_eq(op->eval(&ec, 1, small, attrs, 1, &out), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "strided_slice: the output tensor has shape (3,), the inputs give (2,)");
}
END_TEST

/* ---- take ----------------------------------------------------------------------------------- */

START_TEST(test_take) {
  relay_type *data = T(F32, SHAPE(5, 3));
  ck_type(call("take", TYPES(data, T(I32, SHAPE(2))), NOATTRS), "Tensor[(2, 3), float32]");
  ck_type(call("take", TYPES(data, T(I64, SHAPE(2, 2))), ATTRS(AI("axis", 1))), "Tensor[(5, 2, 2), float32]");
  ck_type(call("take", TYPES(data, T(I32, SCALAR)), NOATTRS), "Tensor[(3,), float32]");
  ck_type(call("take", TYPES(data, T(I32, SCALAR)), ATTRS(AI("axis", -1))), "Tensor[(5,), float32]");
  ck_type(call("take", TYPES(TS(F32, 2, dim("vocab"), D(8)), TS(I64, 2, dim("n"), dim("len"))), NOATTRS),
          "Tensor[(n, len, 8), float32]");
  ck_fails(call("take", TYPES(data, T(F32, SHAPE(2))), NOATTRS), KILN_ERR_TYPE,
           "take: indices must be an integer tensor, not float32");
  ck_fails(call("take", TYPES(data, T(I32, SHAPE(2))), ATTRS(AS("mode", "fast"))), KILN_ERR_TYPE,
           "take: mode 'fast' is not one of clip, wrap, raise");
  ck_fails(call("take", TYPES(data, T(I32, SHAPE(2))), ATTRS(AI("axis", 2))), KILN_ERR_TYPE,
           "take: axis 2 is out of range for a tensor of rank 2");
  ck_fails(call("take", TYPES(T(F32, SCALAR), T(I32, SHAPE(2))), NOATTRS), KILN_ERR_TYPE,
           "axis 0 is out of range for a tensor of rank 0");
  ck_fails(call("take", TYPES(T(F32, SHAPE(1, 1, 1, 1, 1, 1)), T(I32, SHAPE(1, 1, 1, 1))), NOATTRS),
           KILN_ERR_TYPE, "the result would have 9 dimensions");
  ck_fails(call("take", TYPES(data), NOATTRS), KILN_ERR_TYPE, "take takes 2 arguments, not 1");
  /* kernels */
  relay_tensor *d = ten(F32, SHAPE(5, 2), VALS(0, 1, 10, 11, 20, 21, 30, 31, 40, 41));
  relay_tensor *idx = ten(I32, SHAPE(2, 2), VALS(3, 0, -1, 7));
  CK_T(run("take", ARGS(d, idx), NOATTRS), SHAPE(2, 2, 2), VALS(30, 31, 0, 1, 0, 1, 40, 41)); /* clip */
  CK_T(run("take", ARGS(d, idx), ATTRS(AS("mode", "wrap"))), SHAPE(2, 2, 2), VALS(30, 31, 0, 1, 40, 41, 20, 21));
  relay_tensor *ok = ten(I64, SHAPE(3), VALS(-1, 0, 4));
  CK_T(run("take", ARGS(d, ok), ATTRS(AS("mode", "raise"))), SHAPE(3, 2), VALS(40, 41, 0, 1, 40, 41));
  relay_tensor *outs[2];
  int nouts;
  ck_assert_int_eq(run_n("take", ARGS(d, idx), ATTRS(AS("mode", "raise")), outs, &nouts), KILN_ERR_RUNTIME);
  ck_errmsg_has(ctx, "take: index 7 is out of range for axis 0 of size 5");
  relay_tensor *neg = ten(I32, SHAPE(1), VALS(-6));
  ck_assert_int_eq(run_n("take", ARGS(d, neg), ATTRS(AS("mode", "raise")), outs, &nouts), KILN_ERR_RUNTIME);
  ck_errmsg_has(ctx, "index -6 is out of range");
  /* along the last axis, with a scalar index */
  relay_tensor *col = ten(I32, SCALAR, VALS(1));
  CK_T(run("take", ARGS(d, col), ATTRS(AI("axis", 1))), SHAPE(5), VALS(1, 11, 21, 31, 41));
  relay_tensor *cols = ten(KILN_UINT8, SHAPE(3), VALS(1, 1, 0));
  relay_tensor *di = ten(I32, SHAPE(2, 2), VALS(5, 6, 7, 8));
  CK_T(run("take", ARGS(di, cols), ATTRS(AI("axis", -1))), SHAPE(2, 3), VALS(6, 6, 5, 8, 8, 7));
  /* taking from an empty axis */
  relay_tensor *empty = ten(F32, SHAPE(0, 2), VALS(0));
  ck_assert_int_eq(run_n("take", ARGS(empty, ten(I32, SHAPE(1), VALS(0))), NOATTRS, outs, &nouts), KILN_ERR_RUNTIME);
  ck_errmsg_has(ctx, "take: cannot take from axis 0 of size 0");
}
END_TEST

/* ---- broadcast_to ----------------------------------------------------------------------------- */

START_TEST(test_broadcast_to) {
  ck_type(call("broadcast_to", TYPES(T(F32, SHAPE(3))), ATTRS(INTS("shape", 2, 3))), "Tensor[(2, 3), float32]");
  ck_type(call("broadcast_to", TYPES(T(F32, SHAPE(2, 1))), ATTRS(INTS("shape", 4, 2, 5))),
          "Tensor[(4, 2, 5), float32]");
  ck_type(call("broadcast_to", TYPES(T(I32, SCALAR)), ATTRS(INTS("shape", 2))), "Tensor[(2,), int32]");
  ck_type(call("broadcast_to", TYPES(T(I32, SHAPE(1))), ATTRS(INTS("shape", 0))), "Tensor[(0,), int32]");
  ck_type(call("broadcast_to", TYPES(T(I32, SHAPE(1, 1))), ATTRS(INTS("shape", 1, 1))), "Tensor[(1, 1), int32]");
  /* a symbolic dimension broadcasts only where it is stretched from 1 or provably equal */
  ir_expr *n = dim("n");
  ck_type(call("broadcast_to", TYPES(TS(F32, 2, D(1), D(4))), ATTRS(INTS("shape", 3, 4))), "Tensor[(3, 4), float32]");
  ck_fails(call("broadcast_to", TYPES(TS(F32, 2, D(1), n)), ATTRS(INTS("shape", 3, 4))), KILN_ERR_TYPE,
           "broadcast_to: cannot broadcast (1, n) to (3, 4)");
  ck_fails(call("broadcast_to", TYPES(T(F32, SHAPE(2, 3))), ATTRS(INTS("shape", 4, 3))), KILN_ERR_TYPE,
           "broadcast_to: cannot broadcast (2, 3) to (4, 3)");
  ck_fails(call("broadcast_to", TYPES(T(F32, SHAPE(1))), ATTRS(NO_INTS("shape"))), KILN_ERR_TYPE,
           "cannot broadcast (1,) to ()");
  ck_fails(call("broadcast_to", TYPES(T(F32, SHAPE(2))), ATTRS(INTS("shape", -2))), KILN_ERR_TYPE,
           "cannot broadcast (2,) to (-2,): negative dimension");
  ck_fails(call("broadcast_to", TYPES(T(F32, SHAPE(1))), ATTRS(INTS("shape", 1, 1, 1, 1, 1, 1, 1, 1, 1))),
           KILN_ERR_TYPE, "the result would have 9 dimensions");
  /* kernels */
  relay_tensor *row = ten(F32, SHAPE(3), VALS(1, 2, 3));
  CK_T(run("broadcast_to", ARGS(row), ATTRS(INTS("shape", 2, 3))), SHAPE(2, 3), VALS(1, 2, 3, 1, 2, 3));
  relay_tensor *col = ten(I32, SHAPE(2, 1), VALS(-1, 4));
  CK_T(run("broadcast_to", ARGS(col), ATTRS(INTS("shape", 2, 2, 3))), SHAPE(2, 2, 3),
       VALS(-1, -1, -1, 4, 4, 4, -1, -1, -1, 4, 4, 4));
  relay_tensor *sc = ten(F16, SCALAR, VALS(0.25));
  CK_T(run("broadcast_to", ARGS(sc), ATTRS(INTS("shape", 3))), SHAPE(3), VALS(0.25, 0.25, 0.25));
}
END_TEST

/* ---- cast ---------------------------------------------------------------------------------- */

START_TEST(test_cast) {
  ck_type(call("cast", TYPES(T(F32, SHAPE(2, 3))), ATTRS(AS("dtype", "int32"))), "Tensor[(2, 3), int32]");
  ck_type(call("cast", TYPES(T(I32, SHAPE(2))), ATTRS(AS("dtype", "float16"))), "Tensor[(2,), float16]");
  ck_type(call("cast", TYPES(T(I32, SHAPE(2))), NOATTRS), "Tensor[(2,), float32]"); /* the default */
  ck_type(call("cast", TYPES(TS(F32, 2, dim("n"), D(3))), ATTRS(AS("dtype", "bool"))), "Tensor[(n, 3), bool]");
  ck_fails(call("cast", TYPES(T(F32, SHAPE(2))), ATTRS(AS("dtype", "float33"))), KILN_ERR_TYPE,
           "cast: 'float33' is not a tensor element type");
  ck_fails(call("cast", TYPES(T(F32, SHAPE(2))), ATTRS(AS("dtype", "float32x4"))), KILN_ERR_TYPE,
           "'float32x4' is not a tensor element type");
  ck_fails(call("cast", TYPES(T(F32, SHAPE(2))), ATTRS(AS("dtype", "handle"))), KILN_ERR_TYPE,
           "'handle' is not a tensor element type");
  /* kernels: floats truncate toward zero into integers, NaN gives 0, integers wrap */
  relay_tensor *x = ten(F32, SHAPE(5), VALS(-1.7, 2.9, 0.5, NAN, 300));
  CK_T(run("cast", ARGS(x), ATTRS(AS("dtype", "int32"))), SHAPE(5), VALS(-1, 2, 0, 0, 300));
  CK_T(run("cast", ARGS(x), ATTRS(AS("dtype", "uint8"))), SHAPE(5), VALS(255, 2, 0, 0, 44));
  CK_T(run("cast", ARGS(x), ATTRS(AS("dtype", "bool"))), SHAPE(5), VALS(1, 1, 1, 1, 1));
  relay_tensor *i = ten(I32, SHAPE(3), VALS(1, 2049, -70000));
  CK_T(run("cast", ARGS(i), ATTRS(AS("dtype", "float16"))), SHAPE(3), VALS(1, 2048, -INFINITY));
  CK_T(run("cast", ARGS(i), ATTRS(AS("dtype", "int8"))), SHAPE(3), VALS(1, 1, -112));
  relay_tensor *h = ten(F16, SHAPE(2), VALS(0.1, -3));
  CK_T(run("cast", ARGS(h), ATTRS(AS("dtype", "float32"))), SHAPE(2), VALS(0.0999755859375, -3));
  relay_tensor *b = ten(KILN_BOOL, SHAPE(2), VALS(1, 0));
  CK_T(run("cast", ARGS(b), ATTRS(AS("dtype", "float32"))), SHAPE(2), VALS(1, 0));
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("relay_ops");
  struct {
    const char *name;
    const TTest *tests[16];
  } cases[] = {
      {"registry", {test_registry}},
      {"elemwise",
       {test_unary_types, test_unary_kernels_float, test_unary_kernels_other_dtypes, test_binary_types,
        test_binary_kernels_float, test_binary_kernels_int, test_where}},
      {"reduce", {test_reduce_types, test_reduce_kernels}},
      {"transform",
       {test_reshape_types, test_reshape_symbolic, test_reshape_like_kernels, test_transpose,
        test_squeeze_expand_flatten_types, test_concatenate_stack_types, test_concatenate_stack_kernels,
        test_split, test_strided_slice_types, test_strided_slice_kernels, test_take, test_broadcast_to,
        test_cast}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    TCase *tc = tcase_create(cases[c].name);
    tcase_add_checked_fixture(tc, setup, teardown);
    for (int t = 0; t < 16 && cases[c].tests[t]; t++) tcase_add_test(tc, cases[c].tests[t]);
    suite_add_tcase(s, tc);
  }
  return s;
}

KILN_TEST_MAIN

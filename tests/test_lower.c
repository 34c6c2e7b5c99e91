/* test_lower.c: Relay -> TIR lowering core. Every elementwise op's compute definition against
 * the reference kernels through lower_harness.h (random shapes of rank 0..4 with odd sizes
 * and broadcasting, the dtypes each op accepts); region detection on hand-written blocks
 * (identical indices, constant offsets, guarded loads, loops inside a block, nested blocks,
 * data-dependent indices); relay_lower_func on fused chains, tuple outputs, outputs that are
 * parameters, scalar constants and symbolic dimensions; relay_lower_module naming and
 * deduplication; workload keys; and the errors. */
#include "lower_harness.h"
#include "relay/pass.h"
#include "ir/region.h"

/* ---- Random shapes --------------------------------------------------------------------- */

/* "Tensor[(3, 1, 5), float32]" for a shape and dtype name. */
static void type_text(char *buf, size_t cap, int ndim, const int64_t *shape, const char *dt) {
  int n = snprintf(buf, cap, "Tensor[(");
  for (int i = 0; i < ndim; i++)
    n += snprintf(buf + n, cap - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
  snprintf(buf + n, cap - (size_t)n, "%s), %s]", ndim == 1 ? "," : "", dt);
}

/* A random output shape of rank 0..4 with sizes from {1, 2, 3, 5, 7, 13}, at most ~2000
 * elements (the TIR interpreter is slow). */
static int random_shape(uint64_t *rng, int64_t *shape) {
  static const int64_t sizes[] = {1, 2, 3, 5, 7, 13};
  int nd = (int)lh_rand_int(rng, 0, 4);
  int64_t numel = 1;
  for (int i = 0; i < nd; i++) {
    shape[i] = sizes[lh_rand_int(rng, 0, 5)];
    if (numel * shape[i] > 2000) shape[i] = 1;
    numel *= shape[i];
  }
  return nd;
}

/* An operand shape that broadcasts to out: a suffix of it with some dimensions set to 1. */
static int bcast_operand(uint64_t *rng, int nd, const int64_t *out, int64_t *shape) {
  int drop = (int)lh_rand_int(rng, 0, nd);
  if (lh_rand_int(rng, 0, 2) != 0) drop = 0; /* full rank most of the time */
  int n = nd - drop;
  for (int i = 0; i < n; i++) shape[i] = lh_rand_int(rng, 0, 3) == 0 ? 1 : out[drop + i];
  return n;
}

/* Checks a unary op on `count` random shapes of dtype dt. */
static void check_unary(kiln_context *ctx, const char *op, const char *attrs, const char *dt,
                        const lh_case *opts, int count, uint64_t seed) {
  uint64_t rng = seed;
  for (int k = 0; k < count; k++) {
    int64_t shape[4];
    int nd = random_shape(&rng, shape);
    char params[128], ty[96];
    type_text(ty, sizeof ty, nd, shape, dt);
    snprintf(params, sizeof params, "%%x: %s", ty);
    lh_case c = *opts;
    c.seed = seed * 31 + (uint64_t)k;
    lh_check_op_case(ctx, op, params, attrs, &c);
  }
}

/* Checks a binary (or, with three operands, where) op on random broadcasting shapes; the
 * first operand of where is bool (dt0). */
static void check_nary(kiln_context *ctx, const char *op, int nargs, const char *dt0,
                       const char *dt, const lh_case *opts, int count, uint64_t seed) {
  uint64_t rng = seed;
  static const char *const names[] = {"%x", "%y", "%z"};
  for (int k = 0; k < count; k++) {
    int64_t out[4], shape[4];
    int nd = random_shape(&rng, out);
    char params[400] = "", ty[96];
    for (int i = 0; i < nargs; i++) {
      int n = bcast_operand(&rng, nd, out, shape);
      type_text(ty, sizeof ty, n, shape, i == 0 && dt0 ? dt0 : dt);
      size_t len = strlen(params);
      snprintf(params + len, sizeof params - len, "%s%s: %s", i ? ", " : "", names[i], ty);
    }
    lh_case c = *opts;
    c.seed = seed * 131 + (uint64_t)k;
    lh_check_op_case(ctx, op, params, NULL, &c);
  }
}

static lh_case tol(double rtol, double atol) {
  lh_case c;
  memset(&c, 0, sizeof c);
  c.rtol = rtol;
  c.atol = atol;
  return c;
}

static lh_case range(double rtol, double atol, double lo, double hi) {
  lh_case c = tol(rtol, atol);
  c.lo = lo;
  c.hi = hi;
  return c;
}

/* The first block named `name` under n. */
typedef struct block_find {
  const char *name;
  ir_block *found;
} block_find;

static bool find_block_visit(ir_node *n, void *ud) {
  block_find *F = ud;
  if (n->kind == IR_BLOCK && strcmp(((ir_block *)n)->name, F->name) == 0 && !F->found)
    F->found = (ir_block *)n;
  return !F->found;
}

static ir_block *find_block(ir_func *f, const char *name) {
  block_find F = {name, NULL};
  ir_visit(f->body, false, find_block_visit, &F);
  ck_assert_msg(F.found != NULL, "no block %s", name);
  return F.found;
}

static const double F32_RTOL = 1e-5, F32_ATOL = 1e-6, F16_TOL = 1e-2;

/* ---- Elementwise ops --------------------------------------------------------------------- */

START_TEST(test_unary_float_ops) {
  kiln_context *ctx = kiln_test_new_ctx();
  static const char *const ops[] = {"sigmoid", "tanh", "gelu", "silu", "exp", "erf",
                                    "floor", "ceil", "round"};
  lh_case f32 = range(F32_RTOL, F32_ATOL, -3, 3), f16 = range(F16_TOL, F16_TOL, -3, 3);
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    check_unary(ctx, ops[i], NULL, "float32", &f32, 3, 100 + i);
    check_unary(ctx, ops[i], NULL, "float16", &f16, 1, 200 + i);
  }
  /* hard_sigmoid / hard_swish clamp at -3 and 3: inputs on both sides */
  lh_case wide = range(F32_RTOL, F32_ATOL, -5, 5);
  check_unary(ctx, "hard_sigmoid", NULL, "float32", &wide, 3, 300);
  check_unary(ctx, "hard_swish", NULL, "float32", &wide, 3, 301);
  lh_case wide16 = range(F16_TOL, F16_TOL, -5, 5);
  check_unary(ctx, "hard_swish", NULL, "float16", &wide16, 1, 302);
  /* log, sqrt, rsqrt on positive inputs */
  lh_case pos = range(F32_RTOL, F32_ATOL, 0.05, 4);
  check_unary(ctx, "log", NULL, "float32", &pos, 3, 310);
  check_unary(ctx, "sqrt", NULL, "float32", &pos, 3, 311);
  check_unary(ctx, "rsqrt", NULL, "float32", &pos, 3, 312);
  lh_case pos16 = range(F16_TOL, F16_TOL, 0.05, 4);
  check_unary(ctx, "rsqrt", NULL, "float16", &pos16, 1, 313);
  /* log of negative numbers is NaN on both sides, of 0 -inf */
  lh_case neg = range(0, 0, -1, 0);
  check_unary(ctx, "log", NULL, "float32", &neg, 1, 314);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_unary_numeric_ops) {
  kiln_context *ctx = kiln_test_new_ctx();
  lh_case f32 = tol(F32_RTOL, F32_ATOL), exact = tol(0, 0), f16 = tol(F16_TOL, F16_TOL);
  static const char *const ops[] = {"nn.relu", "abs", "negative"};
  for (size_t i = 0; i < 3; i++) {
    check_unary(ctx, ops[i], NULL, "float32", &f32, 2, 400 + i);
    check_unary(ctx, ops[i], NULL, "float16", &f16, 1, 410 + i);
    check_unary(ctx, ops[i], NULL, "int32", &exact, 2, 420 + i);
    check_unary(ctx, ops[i], NULL, "int8", &exact, 1, 430 + i);
  }
  /* negative of unsigned values wraps like the kernel's store */
  check_unary(ctx, "negative", NULL, "uint8", &exact, 1, 440);
  check_unary(ctx, "abs", NULL, "uint8", &exact, 1, 441);
  check_unary(ctx, "nn.leaky_relu", NULL, "float32", &f32, 2, 450);
  check_unary(ctx, "nn.leaky_relu", "alpha=0.25", "float32", &f32, 2, 451);
  check_unary(ctx, "nn.leaky_relu", "alpha=0.25", "float16", &f16, 1, 452);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_clip) {
  kiln_context *ctx = kiln_test_new_ctx();
  lh_case f32 = tol(0, 0), exact = tol(0, 0);
  check_unary(ctx, "clip", "a_min=-0.5, a_max=1.25", "float32", &f32, 3, 500);
  check_unary(ctx, "clip", NULL, "float32", &f32, 1, 501);            /* no bounds */
  check_unary(ctx, "clip", "a_min=0.0", "float32", &f32, 1, 502);     /* only a lower bound */
  check_unary(ctx, "clip", "a_max=0.0", "float16", &f32, 1, 503);
  /* integers: fractional bounds compare like the kernel's doubles and clip to the truncated
   * bound (-2.5 -> x < -2 gives -2; 3.5 -> x > 3 gives 3) */
  check_unary(ctx, "clip", "a_min=-2.5, a_max=3.5", "int32", &exact, 3, 504);
  check_unary(ctx, "clip", "a_min=-2, a_max=2", "int8", &exact, 2, 505);
  check_unary(ctx, "clip", "a_min=1.5, a_max=300.0", "uint8", &exact, 1, 506);
  check_unary(ctx, "clip", "a_min=-1000.0, a_max=-200.0", "int8", &exact, 1, 507);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_logical_and_like) {
  kiln_context *ctx = kiln_test_new_ctx();
  lh_case exact = tol(0, 0);
  check_unary(ctx, "logical_not", NULL, "bool", &exact, 3, 600);
  static const char *const dts[] = {"float32", "int32", "bool", "float16"};
  for (int i = 0; i < 4; i++) {
    check_unary(ctx, "zeros_like", NULL, dts[i], &exact, 1, 610 + (uint64_t)i);
    check_unary(ctx, "ones_like", NULL, dts[i], &exact, 1, 620 + (uint64_t)i);
  }
  check_nary(ctx, "logical_and", 2, NULL, "bool", &exact, 3, 630);
  check_nary(ctx, "logical_or", 2, NULL, "bool", &exact, 3, 631);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_binary_arith) {
  kiln_context *ctx = kiln_test_new_ctx();
  lh_case f32 = tol(F32_RTOL, F32_ATOL), exact = tol(0, 0), f16 = tol(F16_TOL, F16_TOL);
  static const char *const ops[] = {"add", "subtract", "multiply", "maximum", "minimum"};
  for (size_t i = 0; i < 5; i++) {
    check_nary(ctx, ops[i], 2, NULL, "float32", &f32, 3, 700 + i);
    check_nary(ctx, ops[i], 2, NULL, "int32", &exact, 2, 710 + i);
    check_nary(ctx, ops[i], 2, NULL, "float16", &f16, 1, 720 + i);
  }
  check_nary(ctx, "add", 2, NULL, "int8", &exact, 1, 730);
  check_nary(ctx, "subtract", 2, NULL, "uint8", &exact, 1, 731); /* wraps below 0 */
  check_nary(ctx, "multiply", 2, NULL, "int64", &exact, 1, 732);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_binary_division) {
  kiln_context *ctx = kiln_test_new_ctx();
  lh_case f32 = tol(F32_RTOL, F32_ATOL), exact = tol(0, 0);
  f32.nonzero = exact.nonzero = true;
  static const char *const ops[] = {"divide", "floor_divide", "floor_mod"};
  for (size_t i = 0; i < 3; i++) {
    check_nary(ctx, ops[i], 2, NULL, "float32", &f32, 3, 800 + i);
    /* negative operands: truncating vs flooring division and the divisor's sign */
    check_nary(ctx, ops[i], 2, NULL, "int32", &exact, 3, 810 + i);
  }
  lh_case u8 = range(0, 0, 1, 9);
  check_nary(ctx, "floor_mod", 2, NULL, "uint8", &u8, 1, 820);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_power) {
  kiln_context *ctx = kiln_test_new_ctx();
  lh_case pos = range(F32_RTOL, F32_ATOL, 0.1, 2.5), exact = range(0, 0, 0, 4);
  check_nary(ctx, "power", 2, NULL, "float32", &pos, 3, 900);
  check_nary(ctx, "power", 2, NULL, "int32", &exact, 2, 901);
  /* negative bases: NaN for fractional exponents on both sides */
  lh_case any = tol(F32_RTOL, F32_ATOL);
  check_nary(ctx, "power", 2, NULL, "float32", &any, 1, 902);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_compare) {
  kiln_context *ctx = kiln_test_new_ctx();
  static const char *const ops[] = {"equal", "not_equal", "less", "less_equal", "greater",
                                    "greater_equal"};
  /* few distinct values, so that equal pairs are common */
  lh_case small = range(0, 0, -2, 2);
  for (size_t i = 0; i < 6; i++) {
    check_nary(ctx, ops[i], 2, NULL, "int32", &small, 2, 1000 + i);
    check_nary(ctx, ops[i], 2, NULL, "float32", &small, 1, 1010 + i);
    check_nary(ctx, ops[i], 2, NULL, "bool", &small, 1, 1020 + i);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_where) {
  kiln_context *ctx = kiln_test_new_ctx();
  lh_case exact = tol(0, 0);
  check_nary(ctx, "where", 3, "bool", "float32", &exact, 4, 1100);
  check_nary(ctx, "where", 3, "bool", "int32", &exact, 2, 1101);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* NaN inputs: maximum/minimum/clip propagate NaN, relu maps it to 0, as the kernels do. */
static void fill_nans(int param, relay_tensor *t, uint64_t *rng, void *ud) {
  (void)ud;
  int64_t n = relay_tensor_numel(t);
  for (int64_t i = 0; i < n; i++)
    if (lh_rand_int(rng, 0, 2) == 0) relay_tensor_set(t, i, param == 0 ? NAN : -NAN);
}

START_TEST(test_nan_semantics) {
  kiln_context *ctx = kiln_test_new_ctx();
  lh_case c = tol(F32_RTOL, F32_ATOL);
  c.fill = fill_nans;
  static const char *const bin[] = {"maximum", "minimum", "add"};
  for (int i = 0; i < 3; i++)
    lh_check_op_case(ctx, bin[i], "%x: Tensor[(4, 6), float32], %y: Tensor[(6,), float32]",
                     NULL, &c);
  lh_check_op_case(ctx, "nn.relu", "%x: Tensor[(5, 5), float32]", NULL, &c);
  lh_check_op_case(ctx, "clip", "%x: Tensor[(5, 5), float32]", "a_min=-1.0, a_max=1.0", &c);
  lh_check_op_case(ctx, "hard_sigmoid", "%x: Tensor[(5, 5), float32]", NULL, &c);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Every elementwise op in the table has a compute definition. */
START_TEST(test_every_elemwise_op_lowers) {
  for (int i = 0; i < relay_ops_elemwise_count; i++)
    ck_assert_msg(relay_ops_elemwise[i].lower != NULL, "%s has no compute definition",
                  relay_ops_elemwise[i].name);
}
END_TEST

static const char *const chain_text =
    "def @main(%x: Tensor[(2, 3, 5), float32], %y: Tensor[(3, 1), float32],\n"
    "          %z: Tensor[(5,), float32]) {\n"
    "  %0 = add(%x, %y);\n"
    "  %1 = nn.relu(%0);\n"
    "  %2 = multiply(%1, %z);\n"
    "  %3 = exp(%2);\n"
    "  %4 = multiply(%3, 2f);\n"
    "  (%2, %4)\n"
    "}\n";

/* ---- relay_lower_compute directly ------------------------------------------------------ */

/* A lowering context outside relay_lower_func, as a compute definition sees it. */
static relay_lower_ctx *new_lower_ctx(kiln_context *ctx, ir_arena *a, const char *op) {
  relay_lower_ctx *c = calloc(1, sizeof *c);
  ck_assert_ptr_nonnull(c);
  c->ctx = ctx;
  c->arena = a;
  c->an = ir_analyzer_new(a);
  c->op = op;
  return c;
}

static void free_lower_ctx(relay_lower_ctx *c) {
  ir_free(c->ctx, c->stages, sizeof *c->stages * (size_t)c->cap_stages);
  ir_free(c->ctx, c->allocs, sizeof *c->allocs * (size_t)c->cap_allocs);
  ir_free(c->ctx, c->names, sizeof *c->names * (size_t)c->cap_names);
  ir_analyzer_free(c->an);
  free(c);
}

/* X[v0, vk0]: the row elements of a 2-d input. */
static ir_expr *row_elem(relay_lower_ctx *c, ir_var *const *iters, void *ud) {
  ir_buffer *x = ud;
  ir_expr *idx[2] = {&iters[0]->h, &iters[1]->h};
  return ir_load_new(c->arena, x, 2, idx);
}

/* X[vk0, vk1]: every element of a 2-d input, for a 0-d output. */
static ir_expr *all_elems(relay_lower_ctx *c, ir_var *const *iters, void *ud) {
  ir_buffer *x = ud;
  ir_expr *idx[2] = {&iters[0]->h, &iters[1]->h};
  return ir_load_new(c->arena, x, 2, idx);
}

static const char *annot_of(const ir_block *b, const char *key) {
  for (int i = 0; i < b->nannots; i++)
    if (strcmp(b->annots[i]->key, key) == 0) return ir_as_str(b->annots[i]->value)->value;
  return NULL;
}

/* Reducers: init and accumulation per the table in lower.h, checked by running the stage;
 * block names, iterators and the "stage" annotation. */
START_TEST(test_compute_reducers) {
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = ir_arena_new(ctx);
  int64_t rows = 3, cols = 5;
  ir_expr *shape[2] = {ir_int(a, KILN_INT64, rows), ir_int(a, KILN_INT64, cols)};
  ir_buffer *x = ir_buffer_new(a, "X", KILN_INT32, 2, shape, 0, NULL, NULL, 0, NULL);
  ir_buffer *y = ir_buffer_new(a, "Y", KILN_INT32, 1, shape, 0, NULL, NULL, 0, NULL);
  ir_buffer *z = ir_buffer_new(a, "Z", KILN_INT32, 0, NULL, 0, NULL, NULL, 0, NULL);
  int32_t xs[15] = {3, -1, 4, 1, -5, 9, 2, -6, 5, 3, -5, 8, 9, -7, 9};
  static const int reducers[] = {RELAY_REDUCE_SUM, RELAY_REDUCE_PROD, RELAY_REDUCE_MAX,
                                 RELAY_REDUCE_MIN};
  static const char *const names[] = {"softmax_sum", "softmax_prod", "softmax_max", "softmax_min"};
  static const char *const stages[] = {"sum", "prod", "max", "min"};
  for (int r = 0; r < 4; r++) {
    relay_lower_ctx *c = new_lower_ctx(ctx, a, "nn.softmax");
    ck_ok(ctx, relay_lower_compute(c, names[r], y, 1, &shape[1], reducers[r], row_elem, x));
    ir_expr *both[2] = {shape[0], shape[1]};
    ck_ok(ctx, relay_lower_compute(c, names[r], z, 2, both, reducers[r], all_elems, x));
    ck_assert_int_eq(c->nstages, 2);
    ir_node *params[3] = {&x->h, &y->h, &z->h};
    ir_block *root = ir_block_new(a, "root", 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0, NULL, NULL,
                                  ir_seq_new(a, 2, c->stages));
    ir_stmt *body = ir_block_realize_new(a, 0, NULL, NULL, root);
    ir_func *f = ir_func_new(a, "f", 3, params, 0, NULL, body);
    ck_assert_ptr_nonnull(f);
    ck_ok(ctx, ir_verify_func(ctx, f));
    block_find F = {names[r], NULL};
    ir_visit(f->body, false, find_block_visit, &F);
    ck_assert_ptr_nonnull(F.found);
    ck_assert_ptr_nonnull(F.found->init);
    ck_assert_int_eq(F.found->niters, 2);
    ck_assert_int_eq(F.found->iters[1]->iter_type, IR_ITER_REDUCE);
    ck_assert_str_eq(F.found->iters[1]->var->name, "vk0");
    ck_assert_str_eq(annot_of(F.found, "op"), "nn.softmax");
    ck_assert_str_eq(annot_of(F.found, "pattern"), "opaque");
    ck_assert_str_eq(annot_of(F.found, "stage"), stages[r]);
    int32_t ys[3], zs;
    void *args[3] = {xs, ys, &zs};
    ck_ok(ctx, ir_interpret(ctx, f, 3, args));
    int64_t all = r == 0 ? 0 : r == 1 ? 1 : r == 2 ? INT32_MIN : INT32_MAX;
    for (int i = 0; i < rows; i++) {
      int64_t acc = r == 0 ? 0 : r == 1 ? 1 : r == 2 ? INT32_MIN : INT32_MAX;
      for (int j = 0; j < cols; j++) {
        int64_t v = xs[i * cols + j];
        acc = r == 0 ? acc + v : r == 1 ? acc * v : r == 2 ? (v > acc ? v : acc)
                                                          : (v < acc ? v : acc);
        all = r == 0 ? all + v : r == 1 ? (int32_t)(all * v) : r == 2 ? (v > all ? v : all)
                                                                       : (v < all ? v : all);
      }
      ck_assert_int_eq(ys[i], acc);
    }
    ck_assert_int_eq(zs, (int32_t)all);
    free_lower_ctx(c);
  }
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Names: unique per kind (a block and a buffer may share one), numbered from _1. */
START_TEST(test_lower_names_and_bcast) {
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = ir_arena_new(ctx);
  relay_lower_ctx *c = new_lower_ctx(ctx, a, "nn.conv2d");
  ck_assert_str_eq(relay_lower_name(c, "conv2d"), "conv2d");
  ck_assert_str_eq(relay_lower_name(c, "conv2d"), "conv2d_1");
  ck_assert_str_eq(relay_lower_name(c, "conv2d"), "conv2d_2");
  ir_expr *shape[2] = {relay_lower_i64(c, 1), relay_lower_i64(c, 4)};
  ir_buffer *b = relay_lower_buffer(c, "pad", KILN_FLOAT32, 2, shape);
  ck_assert_str_eq(b->name, "pad");
  ck_assert_int_eq(c->nallocs, 1);
  /* broadcasting loads: extent-1 dims read index 0, ranks align at the right */
  ir_var *it[3] = {ir_var_new(a, "v0", KILN_INT64), ir_var_new(a, "v1", KILN_INT64),
                   ir_var_new(a, "v2", KILN_INT64)};
  ir_load *l = ir_as_load(relay_lower_load_bcast(c, b, 3, it));
  ck_assert_ptr_nonnull(l);
  ck_assert_int_eq(ir_as_int(l->indices[0])->value, 0);
  ck_assert_ptr_eq(l->indices[1], &it[2]->h);
  /* an input of higher rank than the output */
  ck_assert_ptr_null(relay_lower_load_bcast(c, b, 1, it));
  ck_errmsg_has(ctx, "nn.conv2d: input buffer 'pad' has rank 2, more than the output's 1");
  ck_assert(ir_dt_eq(relay_lower_const(c, KILN_BOOL, 3)->dtype, KILN_BOOL));
  ck_assert_int_eq(ir_as_int(relay_lower_const(c, KILN_INT8, -7))->value, -7);
  ck_assert(ir_as_float(relay_lower_const(c, KILN_FLOAT16, 0.5))->value == 0.5);
  /* a block is named after the stage, made unique among blocks only */
  ir_buffer *out = relay_lower_buffer(c, "conv2d", KILN_FLOAT32, 2, shape);
  ck_assert_str_eq(out->name, "conv2d_3");
  free_lower_ctx(c);
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The harness's extra step runs between lowering and the pipeline. */
static int extra_calls;
static ir_func *simplify_step(kiln_context *ctx, ir_arena *a, ir_func *f, void *ud) {
  (void)ctx;
  (void)ud;
  extra_calls++;
  return ir_simplify_func(a, f);
}

START_TEST(test_harness_extra_step) {
  kiln_context *ctx = kiln_test_new_ctx();
  lh_case c = tol(F32_RTOL, F32_ATOL);
  c.relay_text = chain_text;
  c.extra = simplify_step;
  extra_calls = 0;
  lh_check(ctx, &c);
  ck_assert_int_eq(extra_calls, 1);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Region detection ------------------------------------------------------------------- */

/* Regions as text: "A[vi - 1 +: 4], I[vi]" */
static char *regions_text(kiln_context *ctx, int n, ir_region **r) {
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  for (int i = 0; i < n; i++) {
    if (i) ir_sb_puts(&sb, ", ");
    ck_ok(ctx, ir_print_node(ctx, &r[i]->h, &sb));
  }
  if (n == 0) ir_sb_puts(&sb, "");
  size_t len;
  char *s = ir_sb_take(&sb, &len);
  ck_assert_ptr_nonnull(s);
  return s;
}

/* Parses `body` as the body of a function with buffers A[16] (float32), I[8] (int32) and
 * B[8, 8] (float32), detects the regions of block `name` and compares them. */
static void check_regions(const char *body, const char *name, const char *reads,
                          const char *writes) {
  kiln_context *ctx = kiln_test_new_ctx();
  char text[4096];
  snprintf(text, sizeof text,
           "func @f(A: buffer(float32, [16]), I: buffer(int32, [8]), B: buffer(float32, [8, 8])) "
           "{\n%s\n}\n",
           body);
  kiln_tir_module *mod = NULL;
  kiln_status st = ir_parse_module(ctx, text, strlen(text), "test", &mod);
  ck_assert_msg(st == KILN_OK, "parse: %s\n%s", kiln_context_errmsg(ctx), text);
  ir_block *blk = find_block(mod->funcs[0], name);
  int nr, nw;
  ir_region **r, **w;
  ck_ok(ctx, ir_block_detect_regions(mod->arena, blk, &nr, &r, &nw, &w));
  char *rs = regions_text(ctx, nr, r), *ws = regions_text(ctx, nw, w);
  ck_assert_msg(strcmp(rs, reads) == 0, "reads: got '%s', expected '%s'", rs, reads);
  ck_assert_msg(strcmp(ws, writes) == 0, "writes: got '%s', expected '%s'", ws, writes);
  kiln_string_free(ctx, rs);
  kiln_string_free(ctx, ws);
  kiln_tir_module_free(mod);
  kiln_test_done_ctx(ctx);
}

START_TEST(test_regions_identical_and_offsets) {
  /* identical indices: one point */
  check_regions("for i: int32 in range(0, 8) { block \"b\"(vi: int32 = spatial(0, 8) <- i) {\n"
                "  B[vi, vi] = A[vi] + A[vi];\n} }",
                "b", "A[vi]", "B[vi, vi]");
  /* constant offsets: [min, max - min + 1] */
  check_regions("for i: int32 in range(1, 6) { block \"b\"(vi: int32 = spatial(1, 6) <- i) {\n"
                "  B[vi, 0] = A[vi + 2] + A[vi - 1] + A[vi];\n} }",
                "b", "A[vi - 1 +: 4]", "B[vi, 0]");
  /* a guarded load under a select counts */
  check_regions("for i: int32 in range(0, 8) { block \"b\"(vi: int32 = spatial(0, 8) <- i) {\n"
                "  B[vi, 1] = select(vi > 0, A[vi - 1], 0f32) + A[vi];\n} }",
                "b", "A[vi - 1 +: 2]", "B[vi, 1]");
  /* unrelated indices: the whole dimension */
  check_regions("for i: int32 in range(0, 8) { block \"b\"(vi: int32 = spatial(0, 8) <- i) {\n"
                "  B[vi, 0] = A[vi] + A[vi * 2];\n} }",
                "b", "A[0 +: 16]", "B[vi, 0]");
}
END_TEST

START_TEST(test_regions_data_dependent) {
  /* A indexed by a load of I: A's whole extent; I itself is a point */
  check_regions("for i: int32 in range(0, 8) { block \"b\"(vi: int32 = spatial(0, 8) <- i) {\n"
                "  B[vi, 0] = A[I[vi]];\n} }",
                "b", "A[0 +: 16], I[vi]", "B[vi, 0]");
}
END_TEST

START_TEST(test_regions_loops_and_reductions) {
  /* a loop inside the block is relaxed over its range */
  check_regions("for i: int32 in range(0, 8) { block \"b\"(vi: int32 = spatial(0, 8) <- i) {\n"
                "  for j: int32 in range(0, 8) { B[vi, j] = A[vi + j * 2]; }\n} }",
                "b", "A[vi +: 15]", "B[vi, 0 +: 8]");
  /* a reduction reads and writes its accumulator; the init only writes; an allocated
   * buffer does not count */
  check_regions("for i: int32 in range(0, 8) { for k: int32 in range(0, 8) {\n"
                "block \"r\"(vi: int32 = spatial(0, 8) <- i, vk: int32 = reduce(0, 8) <- k) {\n"
                "  alloc T: buffer(float32, [1])\n"
                "  init { B[vi, 0] = 0f32; }\n"
                "  T[0] = A[vk];\n"
                "  B[vi, 0] = B[vi, 0] + T[0] * A[vk + 8];\n} } }",
                "r", "A[vk +: 9], B[vi, 0]", "B[vi, 0]");
}
END_TEST

START_TEST(test_regions_nested_blocks) {
  /* the outer block counts the inner block's regions, its iterators replaced by their
   * bindings and the loops between relaxed */
  check_regions("for o: int32 in range(0, 2) {\n"
                "block \"outer\"(vo: int32 = spatial(0, 2) <- o) {\n"
                "  for j: int32 in range(0, 4) {\n"
                "    block \"inner\"(vj: int32 = spatial(0, 8) <- vo * 4 + j) {\n"
                "      reads(A[vj * 2 +: 2])\n"
                "      writes(B[vj, vo])\n"
                "      B[vj, vo] = A[vj * 2] + A[vj * 2 + 1];\n"
                "    }\n"
                "  }\n"
                "} }",
                "outer", "A[vo * 8 +: 8]", "B[vo * 4 +: 4, vo]");
}
END_TEST

START_TEST(test_block_with_detected_regions) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *text =
      "func @f(A: buffer(float32, [16]), B: buffer(float32, [16])) {\n"
      "for i: int32 in range(0, 15) { block \"b\"(vi: int32 = spatial(0, 15) <- i) {\n"
      "  reads(A[vi +: 2])\n  writes(B[vi])\n  B[vi] = A[vi] + A[vi + 1];\n} } }\n"
      "func @g(A: buffer(float32, [16]), B: buffer(float32, [16])) {\n"
      "for i: int32 in range(0, 15) { block \"b\"(vi: int32 = spatial(0, 15) <- i) {\n"
      "  reads(A[0 +: 16])\n  writes(B[vi])\n  B[vi] = A[vi] + A[vi + 1];\n} } }\n";
  kiln_tir_module *mod = NULL;
  ck_ok(ctx, ir_parse_module(ctx, text, strlen(text), "test", &mod));
  /* already right: the same block */
  ir_block *b = find_block(mod->funcs[0], "b");
  ck_assert_ptr_eq(ir_block_with_detected_regions(mod->arena, b), b);
  /* a wider declared region is replaced */
  ir_block *g = find_block(mod->funcs[1], "b");
  ir_block *ng = ir_block_with_detected_regions(mod->arena, g);
  ck_assert_ptr_nonnull(ng);
  ck_assert_ptr_ne(ng, g);
  char *rs = regions_text(ctx, ng->nreads, ng->reads);
  ck_assert_str_eq(rs, "A[vi +: 2]");
  kiln_string_free(ctx, rs);
  ck_assert_ptr_eq(ng->body, g->body);
  kiln_tir_module_free(mod);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Fused functions -------------------------------------------------------------------- */


START_TEST(test_chain_with_tuple_output) {
  kiln_context *ctx = kiln_test_new_ctx();
  lh_case c = tol(F32_RTOL, F32_ATOL);
  c.relay_text = chain_text;
  lh_check(ctx, &c);

  /* the PrimFunc's shape: inputs, two outputs; blocks named and annotated after the ops */
  relay_module *m = lh_parse(ctx, chain_text);
  ir_arena *a = ir_arena_new(ctx);
  ir_func *pf = lh_lower(ctx, m, "main", a);
  ck_assert_int_eq(pf->nparams, 5);
  ck_assert_str_eq(ir_as_buffer(pf->params[0])->name, "p0");
  ck_assert_str_eq(ir_as_buffer(pf->params[3])->name, "out0");
  ck_assert_str_eq(ir_as_buffer(pf->params[4])->name, "out1");
  ir_block *mul = find_block(pf, "multiply"), *mul1 = find_block(pf, "multiply_1");
  ck_assert_ptr_eq(mul->writes[0]->buffer, ir_as_buffer(pf->params[3])); /* written directly */
  ck_assert_ptr_eq(mul1->writes[0]->buffer, ir_as_buffer(pf->params[4]));
  ir_block *relu = find_block(pf, "relu");
  ck_assert_int_eq(relu->nannots, 2);
  ck_assert_str_eq(relu->annots[0]->key, "op");
  ck_assert_str_eq(ir_as_str(relu->annots[0]->value)->value, "nn.relu");
  ck_assert_str_eq(ir_as_str(relu->annots[1]->value)->value, "elemwise");
  ck_assert_str_eq(ir_as_str(mul->annots[1]->value)->value, "broadcast");
  ck_assert_str_eq(relu->iters[0]->var->name, "v0");
  ir_block *root = find_block(pf, "root");
  ck_assert_int_eq(root->niters, 0);
  ck_assert_int_eq(root->nallocs, 4); /* add, relu, exp, the constant 2 */
  ck_assert_str_eq(root->allocs[0]->name, "add");
  ck_assert_str_eq(root->allocs[1]->name, "relu");
  ck_assert_int_eq(root->nreads, 4); /* p0, p1, p2 and out0, which exp reads */
  ck_assert_int_eq(root->nwrites, 2);
  ck_assert(ir_dt_eq(relu->iters[0]->var->h.dtype, KILN_INT64));
  /* the text round trips */
  char *ptext = ir_node_to_string(ctx, &pf->h);
  kiln_tir_module *back = NULL;
  ck_ok(ctx, ir_parse_module(ctx, ptext, strlen(ptext), "lowered", &back));
  ck_assert(ir_structural_equal(ctx, &pf->h, &back->funcs[0]->h));
  kiln_tir_module_free(back);
  kiln_string_free(ctx, ptext);
  ir_for *loop = ir_as_for(((ir_seq *)root->body)->stmts[0]);
  ck_assert_ptr_nonnull(loop);
  ck_assert_str_eq(loop->var->name, "i0");
  ck_assert(ir_dt_eq(loop->var->h.dtype, KILN_INT64));
  ir_arena_free(a);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Outputs that are parameters or the same value twice are copied. */
START_TEST(test_outputs_copied) {
  kiln_context *ctx = kiln_test_new_ctx();
  lh_case c = tol(0, 0);
  c.relay_text = "def @main(%x: Tensor[(3, 4), int32], %y: Tensor[(4,), int32]) {\n"
                 "  %0 = add(%x, %y);\n  (%0, %x, %0, %y)\n}\n";
  lh_check(ctx, &c);
  c.relay_text = "def @main(%x: Tensor[(3, 4), float32]) { %x }\n";
  lh_check(ctx, &c);
  /* tuples and projections route buffers; a projected output is written directly */
  const char *proj = "def @main(%x: Tensor[(3, 4), float32]) {\n"
                     "  %0 = (nn.relu(%x), exp(%x));\n  %1 = add(%0.0, %0.1);\n"
                     "  (%1, %0.1)\n}\n";
  lh_case pc = tol(F32_RTOL, F32_ATOL);
  pc.relay_text = proj;
  lh_check(ctx, &pc);
  relay_module *pm = lh_parse(ctx, proj);
  ir_arena *pa = ir_arena_new(ctx);
  ir_func *ppf = lh_lower(ctx, pm, "main", pa);
  ck_assert_ptr_eq(find_block(ppf, "exp")->writes[0]->buffer, ir_as_buffer(ppf->params[2]));
  ir_arena_free(pa);
  relay_module_free(pm);
  relay_module *m = lh_parse(ctx, c.relay_text);
  ir_arena *a = ir_arena_new(ctx);
  ir_func *pf = lh_lower(ctx, m, "main", a);
  ir_block *copy = find_block(pf, "copy");
  ck_assert_str_eq(ir_as_str(copy->annots[0]->value)->value, "copy");
  ck_assert_str_eq(ir_as_buffer(pf->params[1])->name, "out");
  ir_arena_free(a);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Scalar constants (which FuseOps leaves inside primitive functions) and scalar parameters. */
START_TEST(test_scalars) {
  kiln_context *ctx = kiln_test_new_ctx();
  lh_case c = tol(F32_RTOL, F32_ATOL);
  c.relay_text = "def @main(%x: Tensor[(3, 4), float32], %s: Tensor[(), float32]) {\n"
                 "  %0 = multiply(%x, 0.5f);\n  %1 = add(%0, %s);\n  %2 = maximum(%s, 1f);\n"
                 "  (%1, %2)\n}\n";
  lh_check(ctx, &c);
  lh_case e = tol(0, 0);
  e.relay_text = "def @main(%x: Tensor[(5,), int32]) { %0 = add(%x, 7); greater(%0, 8) }\n";
  lh_check(ctx, &e);
  /* a constant output: its stage, then a copy into the output */
  e.relay_text = "def @main(%x: Tensor[(2,), float32]) { (-3.5f, nn.relu(%x)) }\n";
  lh_check(ctx, &e);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_symbolic_dim) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *text = "def @main(%x: Tensor[(n, 3), float32], %y: Tensor[(3,), float32]) {\n"
                     "  %0 = subtract(%x, %y);\n  %1 = nn.relu(%0);\n  %1\n}\n";
  lh_case c = tol(F32_RTOL, F32_ATOL);
  c.relay_text = text;
  c.ndims = 1;
  c.dim_names[0] = "n";
  c.dim_values[0] = 5;
  lh_check(ctx, &c);
  c.dim_values[0] = 1;
  lh_check(ctx, &c);

  relay_module *m = lh_parse(ctx, text);
  ir_arena *a = ir_arena_new(ctx);
  ir_func *pf = lh_lower(ctx, m, "main", a);
  ck_assert_int_eq(pf->nparams, 4);
  ir_var *n = ir_as_var(pf->params[0]);
  ck_assert_ptr_nonnull(n);
  ck_assert_str_eq(n->name, "n");
  ck_assert(ir_dt_eq(n->h.dtype, KILN_INT64));
  /* the buffers' shapes use that variable */
  ck_assert_ptr_eq(ir_as_buffer(pf->params[1])->shape[0], &n->h);
  ck_assert_ptr_eq(ir_as_buffer(pf->params[3])->shape[0], &n->h);
  /* the dims come first, so the text format parses the function back */
  kiln_tir_module *tm = ir_module_new(ctx);
  ck_ok(ctx, ir_module_add(tm, (ir_func *)ir_deep_copy(tm->arena, &pf->h)));
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  ck_ok(ctx, ir_print_module(tm, &sb));
  kiln_tir_module *back = NULL;
  ck_ok(ctx, ir_parse_module(ctx, sb.data, sb.len, "printed", &back));
  ck_assert(ir_structural_equal(ctx, &tm->funcs[0]->h, &back->funcs[0]->h));
  ir_sb_free(&sb);
  kiln_tir_module_free(back);
  kiln_tir_module_free(tm);
  relay_workload w;
  ck_ok(ctx, relay_workload_key(ctx, a, pf, &w));
  ck_assert_str_eq(w.summary, "subtract+nn.relu (n,3)f32 (3)f32 -> (n,3)f32");
  ir_arena_free(a);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Two symbolic dims become two scalar parameters sorted by name. */
START_TEST(test_symbolic_dims_sorted) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *text = "def @main(%x: Tensor[(m, 1), float32], %y: Tensor[(b,), float32]) {\n"
                     "  add(%x, %y)\n}\n";
  lh_case c = tol(F32_RTOL, F32_ATOL);
  c.relay_text = text;
  c.ndims = 2;
  c.dim_names[0] = "m";
  c.dim_values[0] = 3;
  c.dim_names[1] = "b";
  c.dim_values[1] = 4;
  lh_check(ctx, &c);
  relay_module *m = lh_parse(ctx, text);
  ir_arena *a = ir_arena_new(ctx);
  ir_func *pf = lh_lower(ctx, m, "main", a);
  ck_assert_int_eq(pf->nparams, 5);
  ck_assert_str_eq(ir_as_var(pf->params[0])->name, "b");
  ck_assert_str_eq(ir_as_var(pf->params[1])->name, "m");
  ir_arena_free(a);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* FuseOps, then relay_lower_module: one PrimFunc per primitive function, named after its
 * ops, each matching the reference when run as a function of its own. */
START_TEST(test_lower_module_fused) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = lh_parse(ctx, chain_text);
  ck_ok(ctx, relay_fuse_ops(m, RELAY_FUSE_MAX_DEPTH));
  kiln_tir_module *tm = NULL;
  ck_ok(ctx, relay_lower_module(m, &tm));
  ck_assert_int_eq(tm->nfuncs, 2);
  ck_assert_str_eq(tm->funcs[0]->name, "fused_add_nn_relu_multiply");
  ck_assert_str_eq(tm->funcs[1]->name, "fused_exp_multiply");
  ck_ok(ctx, ir_verify_module(tm));
  relay_workload w;
  ck_ok(ctx, relay_workload_key(ctx, tm->arena, tm->funcs[0], &w));
  ck_assert_str_eq(w.summary, "add+nn.relu+multiply (2,3,5)f32 (3,1)f32 (5)f32 -> (2,3,5)f32");

  /* each primitive function as a top-level function of its own, checked numerically */
  relay_expr **order = NULL;
  int n = 0;
  ck_ok(ctx, relay_post_order(ctx, relay_module_get(m, "main")->body, false, &order, &n));
  int nprim = 0;
  for (int i = 0; i < n; i++) {
    relay_func *f = relay_as_func(order[i]);
    if (!f || !relay_func_is_primitive(f)) continue;
    char name[16];
    snprintf(name, sizeof name, "prim%d", nprim++);
    ck_ok(ctx, relay_module_set(m, name, f));
  }
  ir_free(ctx, order, sizeof *order * (size_t)n);
  ck_assert_int_eq(nprim, 2);
  char *text = relay_module_to_string(m);
  ck_assert_ptr_nonnull(text);
  lh_case c = tol(F32_RTOL, F32_ATOL);
  c.relay_text = text;
  c.func = "prim0";
  lh_check(ctx, &c);
  c.func = "prim1";
  lh_check(ctx, &c);
  kiln_string_free(ctx, text);
  kiln_tir_module_free(tm);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A primitive function called twice is lowered once; two with the same ops get unique
 * names; non-primitive functions are not lowered. */
START_TEST(test_lower_module_dedup) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *text =
      "def @helper(%a: Tensor[(4,), float32]) { nn.relu(%a) }\n"
      "def @main(%x: Tensor[(2, 3), float32]) {\n"
      "  %0 = fn [primitive=1] (%p0: Tensor[(2, 3), float32]) { nn.relu(%p0) };\n"
      "  %1 = fn [primitive=1] (%p1: Tensor[(2, 3), float32]) { nn.relu(%p1) };\n"
      "  %2 = %0(%x);\n  %3 = %0(%2);\n  %4 = %1(%3);\n  %4\n}\n";
  relay_module *m = lh_parse(ctx, text);
  kiln_tir_module *tm = NULL;
  ck_ok(ctx, relay_lower_module(m, &tm));
  ck_assert_int_eq(tm->nfuncs, 2);
  ck_assert_str_eq(tm->funcs[0]->name, "fused_nn_relu");
  ck_assert_str_eq(tm->funcs[1]->name, "fused_nn_relu_1");
  /* structurally equal functions share the workload hash, names aside */
  relay_workload w0, w1;
  ck_ok(ctx, relay_workload_key(ctx, tm->arena, tm->funcs[0], &w0));
  ck_ok(ctx, relay_workload_key(ctx, tm->arena, tm->funcs[1], &w1));
  ck_assert_uint_eq(w0.hash, w1.hash);
  kiln_tir_module_free(tm);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Workload keys ---------------------------------------------------------------------- */

static relay_workload key_of(kiln_context *ctx, ir_arena *a, const char *text, const char *name) {
  relay_module *m = lh_parse(ctx, text);
  ir_func *pf = NULL;
  ck_ok(ctx, relay_lower_func(ctx, a, relay_module_get(m, "main"), name, &pf));
  relay_workload w;
  ck_ok(ctx, relay_workload_key(ctx, a, pf, &w));
  relay_module_free(m);
  return w;
}

START_TEST(test_workload_key) {
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = ir_arena_new(ctx);
  const char *t1 = "def @main(%x: Tensor[(1, 3, 5, 5), float32],\n"
                   "          %b: Tensor[(3, 1, 1), float32]) {\n"
                   "  %0 = nn.relu(%x);\n  add(%0, %b)\n}\n";
  const char *t2 = "def @main(%x: Tensor[(1, 3, 7, 7), float32],\n"
                   "          %b: Tensor[(3, 1, 1), float32]) {\n"
                   "  %0 = nn.relu(%x);\n  add(%0, %b)\n}\n";
  const char *t3 = "def @main(%x: Tensor[(1, 3, 5, 5), float32],\n"
                   "          %b: Tensor[(3, 1, 1), float32]) {\n"
                   "  %0 = nn.relu(%x);\n  subtract(%0, %b)\n}\n";
  relay_workload w1 = key_of(ctx, a, t1, "f"), w1b = key_of(ctx, a, t1, "other_name");
  relay_workload w2 = key_of(ctx, a, t2, "f"), w3 = key_of(ctx, a, t3, "f");
  ck_assert_uint_eq(w1.hash, w1b.hash);
  ck_assert_uint_ne(w1.hash, w2.hash);
  ck_assert_uint_ne(w1.hash, w3.hash);
  ck_assert_str_eq(w1.summary, "nn.relu+add (1,3,5,5)f32 (3,1,1)f32 -> (1,3,5,5)f32");
  ck_assert_str_eq(w2.summary, "nn.relu+add (1,3,7,7)f32 (3,1,1)f32 -> (1,3,7,7)f32");
  ck_assert_str_eq(w3.summary, "nn.relu+subtract (1,3,5,5)f32 (3,1,1)f32 -> (1,3,5,5)f32");

  /* without the attribute, the summary comes from the blocks' annotations and the buffers */
  relay_module *m = lh_parse(ctx, t1);
  ir_func *pf = NULL;
  ck_ok(ctx, relay_lower_func(ctx, a, relay_module_get(m, "main"), "f", &pf));
  ir_func *bare = ir_func_new(a, "f", pf->nparams, pf->params, 0, NULL, pf->body);
  relay_workload wb;
  ck_ok(ctx, relay_workload_key(ctx, a, bare, &wb));
  ck_assert_str_eq(wb.summary, w1.summary);
  ck_assert_uint_eq(wb.hash, w1.hash);
  relay_module_free(m);
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Errors ----------------------------------------------------------------------------- */

START_TEST(test_error_op_without_compute) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = relay_module_new(ctx);
  ir_arena *a = m->arena;
  int64_t shape[2] = {2, 3};
  relay_var *x = relay_var_new(a, "x", relay_tensor_type_const(a, KILN_FLOAT32, 2, shape));
  relay_expr *arg = &x->h;
  relay_call *call = relay_as_call(relay_call_op(a, "nn.relu", 1, &arg, 0, NULL));
  ck_assert_ptr_nonnull(call);
  /* every registered op may have a compute definition by now: stand in an op record
   * without one (the call's cached registry entry) */
  relay_op fake = *relay_op_lookup("nn.relu");
  fake.lower = NULL;
  call->opdef = &fake;
  relay_func *f = relay_as_func(relay_func_new(a, 1, &x, NULL, &call->h, 0, NULL));
  ck_assert_ptr_nonnull(f);
  ir_arena *out = ir_arena_new(ctx);
  ir_func *pf = NULL;
  ck_assert_int_eq(relay_lower_func(ctx, out, f, "f", &pf), KILN_ERR_UNSUPPORTED);
  ck_assert_ptr_null(pf);
  ck_errmsg_has(ctx, "op 'nn.relu' has no compute definition");
  ir_arena_free(out);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_error_constant_inside) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = lh_parse(ctx, "def @main(%x: Tensor[(2,), float32]) {\n"
                                  "  add(%x, const(Tensor[(2,), float32], [1.0, 2.0]))\n}\n");
  ir_arena *a = ir_arena_new(ctx);
  ir_func *pf = NULL;
  ck_assert_int_eq(relay_lower_func(ctx, a, relay_module_get(m, "main"), "f", &pf),
                   KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "a constant of type Tensor[(2,), float32]");
  ir_arena_free(a);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_error_unsupported_nodes) {
  kiln_context *ctx = kiln_test_new_ctx();
  struct {
    const char *text, *msg;
  } cases[] = {
      {"def @main(%x: Tensor[(2,), float32]) {\n"
       "  %0 = fn (%a: Tensor[(2,), float32]) { nn.relu(%a) };\n  %0(%x)\n}\n",
       "a nested function cannot be lowered"},
      {"def @main(%x: Tensor[(2,), float32]) { let %y = nn.relu(%x); %y }\n", "relay_let"},
      {"def @main(%t: (Tensor[(2,), float32], Tensor[(2,), float32])) { add(%t.0, %t.1) }\n",
       "parameter '%t' is not a tensor"},
      {"def @main(%x: Tensor[(2,), float32]) { () }\n", "'f' has no outputs"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    relay_module *m = lh_parse(ctx, cases[i].text);
    ir_arena *a = ir_arena_new(ctx);
    ir_func *pf = NULL;
    ck_assert_int_eq(relay_lower_func(ctx, a, relay_module_get(m, "main"), "f", &pf),
                     KILN_ERR_UNSUPPORTED);
    ck_errmsg_has(ctx, cases[i].msg);
    ir_arena_free(a);
    relay_module_free(m);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Allocation failures anywhere in lowering give KILN_ERR_NOMEM and leak nothing. */
START_TEST(test_lower_nomem) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = lh_parse(ctx, chain_text);
  relay_func *f = relay_module_get(m, "main");
  long base = ctx->nalloc;
  ir_arena *a = ir_arena_new(ctx);
  ir_func *pf = NULL;
  ck_ok(ctx, relay_lower_func(ctx, a, f, "f", &pf));
  ir_arena_free(a);
  long needed = ctx->nalloc - base;
  int failures = 0;
  for (long k = 1; k <= needed + 1; k++) {
    long live = ctx->nlive;
    ir_arena *b = ir_arena_new(ctx);
    ck_assert_ptr_nonnull(b);
    ctx->fail_at = ctx->nalloc + k;
    kiln_status st = relay_lower_func(ctx, b, f, "f", &pf);
    ctx->fail_at = 0;
    if (st != KILN_OK) {
      ck_assert_int_eq(st, KILN_ERR_NOMEM);
      failures++;
    }
    ir_arena_free(b);
    ck_assert_int_eq(ctx->nlive, live);
  }
  ck_assert_int_gt(failures, 0);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Reductions over an axis of extent 0 write the reduction's identity (the init of a block
 * inside a loop that never runs would not), in every family. */
START_TEST(test_empty_reductions) {
  kiln_context *ctx = kiln_test_new_ctx();
  lh_check_op(ctx, "nn.dense", "%x: Tensor[(3, 0), float32], %w: Tensor[(4, 0), float32]", NULL,
              0, 0);
  lh_check_op(ctx, "nn.matmul", "%x: Tensor[(2, 0), float32], %w: Tensor[(0, 5), float32]", NULL,
              0, 0);
  lh_check_op(ctx, "sum", "%x: Tensor[(3, 0, 2), float32]", "axis=[1]", 0, 0);
  kiln_test_done_ctx(ctx);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("lower");
  TCase *ops = tcase_create("elemwise");
  tcase_set_timeout(ops, 120);
  tcase_add_test(ops, test_unary_float_ops);
  tcase_add_test(ops, test_unary_numeric_ops);
  tcase_add_test(ops, test_clip);
  tcase_add_test(ops, test_logical_and_like);
  tcase_add_test(ops, test_binary_arith);
  tcase_add_test(ops, test_binary_division);
  tcase_add_test(ops, test_power);
  tcase_add_test(ops, test_compare);
  tcase_add_test(ops, test_where);
  tcase_add_test(ops, test_nan_semantics);
  tcase_add_test(ops, test_every_elemwise_op_lowers);
  suite_add_tcase(s, ops);

  TCase *comp = tcase_create("compute");
  tcase_add_test(comp, test_compute_reducers);
  tcase_add_test(comp, test_empty_reductions);
  tcase_add_test(comp, test_lower_names_and_bcast);
  tcase_add_test(comp, test_harness_extra_step);
  suite_add_tcase(s, comp);

  TCase *reg = tcase_create("regions");
  tcase_add_test(reg, test_regions_identical_and_offsets);
  tcase_add_test(reg, test_regions_data_dependent);
  tcase_add_test(reg, test_regions_loops_and_reductions);
  tcase_add_test(reg, test_regions_nested_blocks);
  tcase_add_test(reg, test_block_with_detected_regions);
  suite_add_tcase(s, reg);

  TCase *fn = tcase_create("functions");
  tcase_add_test(fn, test_chain_with_tuple_output);
  tcase_add_test(fn, test_outputs_copied);
  tcase_add_test(fn, test_scalars);
  tcase_add_test(fn, test_symbolic_dim);
  tcase_add_test(fn, test_symbolic_dims_sorted);
  tcase_add_test(fn, test_lower_module_fused);
  tcase_add_test(fn, test_lower_module_dedup);
  tcase_add_test(fn, test_workload_key);
  suite_add_tcase(s, fn);

  TCase *err = tcase_create("errors");
  tcase_add_test(err, test_error_op_without_compute);
  tcase_add_test(err, test_error_constant_inside);
  tcase_add_test(err, test_error_unsupported_nodes);
  tcase_add_test(err, test_lower_nomem);
  suite_add_tcase(s, err);
  return s;
}

KILN_TEST_MAIN

/* test_tune_features.c: the autotuner's features and cost model (autotune/features.c).
 * Features of hand-written lowered TIR (parsed from text) are checked against counts worked
 * out by hand (ops, bytes, footprints, strides, lanes, parallel extents, allocations); a
 * Relay matmul lowered with and without the default schedule gives different vectors with
 * the same flop count; the XGBoost cost model learns a known function of two features well
 * enough to rank held-out samples, is deterministic, and survives save/load; misuse and
 * unsupported input give errors that name the problem. */
#include <math.h>

#include "autotune/features.h"
#include "lower_harness.h"

static const sch_target_info avx512 = {512, 2, 2, 48 << 10, 1 << 20};

/* Parses a one-function TIR module; free with kiln_tir_module_free. */
static kiln_tir_module *parse_tir(kiln_context *ctx, const char *text) {
  kiln_tir_module *m = NULL;
  ck_ok(ctx, ir_parse_module(ctx, text, strlen(text), "test", &m));
  ck_assert_int_eq(m->nfuncs, 1);
  return m;
}

/* The features of a TIR text (num_threads for the options). */
static float *features_of(kiln_context *ctx, const char *text, int num_threads) {
  kiln_tir_module *m = parse_tir(ctx, text);
  float *v = calloc((size_t)tune_feature_count(), sizeof *v);
  ck_assert_ptr_nonnull(v);
  tune_feature_options o = {num_threads};
  ck_ok(ctx, tune_extract_features_opt(ctx, m->funcs[0], &o, v));
  kiln_tir_module_free(m);
  return v;
}

/* Feature `name` of v (the test fails for an unknown name). */
static double feat(const float *v, const char *name) {
  int i = tune_feature_index(name);
  ck_assert_msg(i >= 0, "no feature named %s", name);
  return v[i];
}

#define ck_feat(v, name, want)                                                          \
  do {                                                                                  \
    double got_ = feat((v), (name)), want_ = (want);                                    \
    ck_assert_msg(fabs(got_ - want_) < 1e-4, "%s is %g, expected %g", (name), got_,    \
                  want_);                                                               \
  } while (0)

static double lg(double x) { return log2(1 + x); }

static const char *scalar_text =
    "func @ew(A: buffer(float32, [4i64, 8i64]), B: buffer(float32, [4i64, 8i64]), "
    "C: buffer(float32, [4i64, 8i64])) {\n"
    "  for i: int64 in range(0i64, 4i64) {\n"
    "    for j: int64 in range(0i64, 8i64) {\n"
    "      C[i, j] = A[i, j] * B[i, j] + 1f32;\n"
    "    }\n"
    "  }\n"
    "}\n";

/* Names are unique, found by index, and the count is stable. */
START_TEST(test_names) {
  int n = tune_feature_count();
  ck_assert_int_gt(n, 40);
  for (int i = 0; i < n; i++) {
    const char *a = tune_feature_name(i);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(tune_feature_index(a), i);
    for (int j = 0; j < i; j++) ck_assert_str_ne(a, tune_feature_name(j));
  }
  ck_assert_ptr_null(tune_feature_name(n));
  ck_assert_ptr_null(tune_feature_name(-1));
  ck_assert_int_eq(tune_feature_index("no.such"), -1);
  ck_assert_int_eq(tune_feature_index(NULL), -1);
}
END_TEST

/* C[i, j] = A[i, j] * B[i, j] + 1 over 4 x 8: every count worked out by hand. */
START_TEST(test_scalar_counts) {
  kiln_context *ctx = kiln_test_new_ctx();
  float *v = features_of(ctx, scalar_text, 0);
  ck_feat(v, "fn.stores", lg(1));
  ck_feat(v, "fn.loops", lg(2));
  ck_feat(v, "fn.parallel_loops", 0);
  ck_feat(v, "fn.local_allocs", 0);
  ck_feat(v, "st.exec_count", lg(32));
  ck_feat(v, "st.float_mul", lg(32));
  ck_feat(v, "st.float_addsub", lg(32));
  ck_feat(v, "st.float_div", 0);
  ck_feat(v, "st.float_transcendental", 0);
  ck_feat(v, "st.int_ops", 0);
  ck_feat(v, "st.loads", lg(64));
  ck_feat(v, "st.bytes_accessed", lg(32 * 12));
  ck_feat(v, "st.store_lanes", lg(1));
  ck_feat(v, "st.vectorized", 0);
  ck_feat(v, "st.nest_depth", lg(2));
  ck_feat(v, "st.inner_extent", lg(8));
  ck_feat(v, "st.inner2_extent", lg(4));
  ck_feat(v, "st.inner_body_stores", lg(1));
  ck_feat(v, "st.in_parallel", 0);
  ck_feat(v, "st.under_if", 0);
  /* 64 flops over 3 x 128 bytes */
  ck_feat(v, "st.arith_intensity", lg(64.0 / 384.0));
  /* b0 is the stored C: one row (32 bytes) per run of the j loop, 128 bytes in all */
  ck_feat(v, "b0.write", 1);
  ck_feat(v, "b0.read", 0);
  ck_feat(v, "b0.local", 0);
  ck_feat(v, "b0.access_bytes", lg(4));
  ck_feat(v, "b0.footprint_l1", lg(32));
  ck_feat(v, "b0.footprint_l2", lg(128));
  ck_feat(v, "b0.footprint_l3", lg(128));
  ck_feat(v, "b0.footprint_all", lg(128));
  ck_feat(v, "b0.reuse_l1", lg(1));
  ck_feat(v, "b0.reuse_all", lg(1));
  ck_feat(v, "b0.stride", lg(1));
  ck_feat(v, "b0.contiguous", 1);
  ck_feat(v, "b0.invariant", 0);
  ck_feat(v, "b1.read", 1);
  ck_feat(v, "b1.write", 0);
  ck_feat(v, "b1.footprint_all", lg(128));
  ck_feat(v, "b2.read", 1);
  ck_feat(v, "b2.contiguous", 1);
  free(v);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The same computation with 8-lane ramps: the same op counts, the vector features differ. */
START_TEST(test_vectorized_differs) {
  kiln_context *ctx = kiln_test_new_ctx();
  float *s = features_of(ctx, scalar_text, 0);
  float *v = features_of(ctx,
      "func @ew(A: buffer(float32, [4i64, 8i64]), B: buffer(float32, [4i64, 8i64]), "
      "C: buffer(float32, [4i64, 8i64])) {\n"
      "  for i: int64 in range(0i64, 4i64) {\n"
      "    C[i, ramp(0i64, 1i64, 8)] = A[i, ramp(0i64, 1i64, 8)] * B[i, ramp(0i64, 1i64, 8)]"
      " + broadcast(1f32, 8);\n"
      "  }\n"
      "}\n", 0);
  ck_feat(v, "st.exec_count", lg(4));
  ck_feat(v, "st.float_mul", lg(32));
  ck_feat(v, "st.float_addsub", lg(32));
  ck_feat(v, "st.bytes_accessed", lg(32 * 12));
  ck_feat(v, "st.store_lanes", lg(8));
  ck_feat(v, "st.load_lanes_max", lg(8));
  ck_feat(v, "st.vectorized", 1);
  ck_feat(s, "st.vectorized", 0);
  ck_feat(v, "b0.access_bytes", lg(32));
  ck_feat(v, "b0.contiguous", 1);
  ck_feat(v, "b0.footprint_l1", lg(128)); /* the i loop is the innermost loop now */
  ck_feat(v, "b1.footprint_all", lg(128));
  ck_assert(feat(v, "st.vectorized") != feat(s, "st.vectorized"));
  free(s);
  free(v);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A parallel outer loop is visible, per thread too; the scalar version has none. */
START_TEST(test_parallel_extent) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *text =
      "func @ew(A: buffer(float32, [4i64, 8i64]), C: buffer(float32, [4i64, 8i64])) {\n"
      "  for i: int64 in parallel(0i64, 4i64) {\n"
      "    for j: int64 in range(0i64, 8i64) {\n"
      "      C[i, j] = A[i, j] + 1f32;\n"
      "    }\n"
      "  }\n"
      "}\n";
  float *v = features_of(ctx, text, 2);
  ck_feat(v, "fn.parallel_loops", lg(1));
  ck_feat(v, "fn.max_parallel_extent", lg(4));
  ck_feat(v, "st.in_parallel", 1);
  ck_feat(v, "st.parallel_extent", lg(4));
  ck_feat(v, "st.parallel_per_thread", lg(2));
  float *u = features_of(ctx, text, 0);
  ck_feat(u, "st.parallel_per_thread", 0);
  float *s = features_of(ctx, scalar_text, 2);
  ck_feat(s, "st.in_parallel", 0);
  ck_feat(s, "st.parallel_extent", 0);
  ck_feat(s, "fn.parallel_loops", 0);
  free(v);
  free(u);
  free(s);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Op kinds: transcendental, fma, min/max, div, compare/select, cast, int index arithmetic. */
START_TEST(test_op_kinds) {
  kiln_context *ctx = kiln_test_new_ctx();
  float *v = features_of(ctx,
      "func @ops(A: buffer(float32, [16i64]), B: buffer(float32, [16i64]), "
      "I: buffer(int32, [16i64]), C: buffer(float32, [8i64])) {\n"
      "  for i: int64 in range(0i64, 8i64) {\n"
      "    C[i] = select(A[i * 2i64] > 0f32, exp(A[i * 2i64]) + tanh(B[i]), "
      "fma(A[i], B[i], 1f32)) / max(B[i + 1i64], cast(float32, I[i]));\n"
      "  }\n"
      "}\n", 0);
  ck_feat(v, "st.float_transcendental", lg(16));
  ck_feat(v, "st.float_fma", lg(8));
  ck_feat(v, "st.float_addsub", lg(8));
  ck_feat(v, "st.float_div", lg(8));
  ck_feat(v, "st.float_minmax", lg(8));
  ck_feat(v, "st.float_mul", 0);
  ck_feat(v, "st.compare_ops", lg(8));
  ck_feat(v, "st.selects", lg(8));
  ck_feat(v, "st.casts", lg(8));
  ck_feat(v, "st.int_ops", lg(3 * 8)); /* i * 2 twice, i + 1 */
  ck_feat(v, "st.loads", lg(7 * 8));
  /* b1 is A (64 bytes touched over i in [0, 8) at even and plain indices: [0, 14]) or B;
   * both have footprints; A's stride from A[i * 2] is 2 */
  ck_assert_float_gt(feat(v, "b1.footprint_all"), 0);
  free(v);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Strides: a transposed read is not contiguous; a loop-invariant read has stride 0. */
START_TEST(test_strides) {
  kiln_context *ctx = kiln_test_new_ctx();
  float *v = features_of(ctx,
      "func @tr(A: buffer(float32, [8i64, 4i64]), C: buffer(float32, [4i64, 8i64])) {\n"
      "  for i: int64 in range(0i64, 4i64) {\n"
      "    for j: int64 in range(0i64, 8i64) {\n"
      "      C[i, j] = A[j, i];\n"
      "    }\n"
      "  }\n"
      "}\n", 0);
  ck_feat(v, "b0.stride", lg(1));
  ck_feat(v, "b1.stride", lg(4));
  ck_feat(v, "b1.contiguous", 0);
  ck_feat(v, "b1.footprint_l1", lg(8 * 4)); /* a column: 8 elements */
  free(v);
  v = features_of(ctx,
      "func @bc(A: buffer(float32, [4i64]), C: buffer(float32, [4i64, 8i64])) {\n"
      "  for i: int64 in range(0i64, 4i64) {\n"
      "    for j: int64 in range(0i64, 8i64) {\n"
      "      C[i, j] = A[i] + A[i] * 2f32;\n"
      "    }\n"
      "  }\n"
      "}\n", 0);
  /* A[i] varies with i only (stride 1 there); 8 uses of each element in the j loop */
  ck_feat(v, "b1.stride", lg(1));
  ck_feat(v, "b1.reuse_l1", lg(16)); /* two accesses per iteration, one element */
  ck_feat(v, "b1.reuse_all", lg(16));
  free(v);
  v = features_of(ctx,
      "func @inv(A: buffer(float32, [4i64]), C: buffer(float32, [4i64, 8i64])) {\n"
      "  for i: int64 in range(0i64, 4i64) {\n"
      "    for j: int64 in range(0i64, 8i64) {\n"
      "      C[i, j] = A[2i64];\n"
      "    }\n"
      "  }\n"
      "}\n", 0);
  ck_feat(v, "b1.stride", 0);
  ck_feat(v, "b1.invariant", 1);
  ck_feat(v, "b1.contiguous", 0);
  ck_feat(v, "b1.reuse_all", lg(32));
  ck_feat(v, "b1.footprint_all", lg(4));
  free(v);
  kiln_test_done_ctx(ctx);
}
END_TEST


/* Local allocations and guarded stores. */
START_TEST(test_alloc_and_guard) {
  kiln_context *ctx = kiln_test_new_ctx();
  float *v = features_of(ctx,
      "func @loc(A: buffer(float32, [16i64]), C: buffer(float32, [16i64])) {\n"
      "  for i: int64 in range(0i64, 4i64) {\n"
      "    allocate T: buffer(float32, [4i64], scope=\"local\") {\n"
      "      for j: int64 in range(0i64, 4i64) {\n"
      "        T[j] = A[i * 4i64 + j];\n"
      "      }\n"
      "      for j_1: int64 in range(0i64, 4i64) {\n"
      "        if j_1 > 0i64 {\n"
      "          C[i * 4i64 + j_1] = T[j_1] + T[j_1 - 1i64];\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n", 0);
  ck_feat(v, "fn.local_allocs", lg(1));
  ck_feat(v, "fn.local_alloc_bytes", lg(16));
  ck_feat(v, "fn.local_alloc_max_bytes", lg(16));
  ck_feat(v, "fn.stores", lg(2));
  ck_feat(v, "fn.loops", lg(3));
  /* the two stores run 16 times each; one is guarded, one writes the local T */
  ck_feat(v, "st.exec_count", lg(32));
  ck_feat(v, "st.under_if", 0.5);
  ck_feat(v, "b0.local", 0.5);
  ck_feat(v, "st.int_ops", lg(16 * 2 + 16 * 3));
  free(v);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Features of a lowered Relay matmul (64 x 40 x 96) with and without the default schedule:
 * the flop count is the same, the vectors differ where the schedule acts. */
START_TEST(test_matmul_scheduled_differs) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = lh_parse(ctx,
      "def @main(%a: Tensor[(64, 40), float32], %b: Tensor[(40, 96), float32]) {\n"
      "  nn.matmul(%a, %b)\n}\n");
  ir_arena *a = ir_arena_new(ctx);
  ir_func *pf = lh_lower(ctx, m, "main", a);
  ir_func *plain = NULL, *tuned = NULL;
  ck_ok(ctx, ir_lower_func(ctx, a, pf, NULL, &plain));
  sch_schedule *s = sch_new(ctx, pf, 1);
  ck_assert_ptr_nonnull(s);
  ck_ok(ctx, sch_apply_default_rules(s, &avx512));
  ck_ok(ctx, ir_lower_func(ctx, a, s->func, NULL, &tuned));
  int n = tune_feature_count();
  float *u = calloc((size_t)n, sizeof *u), *v = calloc((size_t)n, sizeof *v);
  ck_ok(ctx, tune_extract_features(ctx, plain, u));
  ck_ok(ctx, tune_extract_features(ctx, tuned, v));
  ck_feat(u, "st.float_mul", lg(64.0 * 40 * 96));
  ck_feat(v, "st.float_mul", lg(64.0 * 40 * 96));
  ck_feat(u, "st.vectorized", 0);
  ck_assert_float_gt(feat(v, "st.vectorized"), 0.5);
  ck_feat(u, "fn.parallel_loops", 0);
  ck_feat(v, "fn.parallel_loops", lg(1));
  ck_feat(u, "fn.local_allocs", 0);
  ck_feat(v, "fn.local_allocs", lg(1));
  ck_feat(v, "fn.local_alloc_bytes", lg(256 * 4)); /* the 8 x 32 accumulator tile */
  /* the unrolled tile: 8 stores in the body of the k loop */
  ck_assert_float_gt(feat(v, "st.inner_body_stores"), feat(u, "st.inner_body_stores"));
  if (getenv("KILN_TUNE_DUMP"))
    for (int i = 0; i < n; i++)
      fprintf(stderr, "%-28s %9.4f %9.4f\n", tune_feature_name(i), u[i], v[i]);
  int ndiff = 0;
  for (int i = 0; i < n; i++) ndiff += fabsf(u[i] - v[i]) > 1e-3f;
  ck_assert_int_gt(ndiff, 10);
  for (int i = 0; i < n; i++) ck_assert(isfinite(u[i]) && isfinite(v[i]));
  free(u);
  free(v);
  sch_free(s);
  ir_arena_free(a);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST


/* Lets between loops (as lowered blocks leave them) are followed by the bound analysis; a
 * symbolic extent with no known bound counts as 1. */
START_TEST(test_lets_and_symbolic) {
  kiln_context *ctx = kiln_test_new_ctx();
  float *v = features_of(ctx,
      "func @lt(A: buffer(float32, [32i64]), C: buffer(float32, [32i64])) {\n"
      "  for i: int64 in range(0i64, 4i64) {\n"
      "    let t: int64 = i * 8i64 {\n"
      "      for j: int64 in range(0i64, 8i64) {\n"
      "        C[t + j] = A[t + j];\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n", 0);
  ck_feat(v, "b0.footprint_l1", lg(32)); /* 8 elements per run of j, not the whole C */
  ck_feat(v, "b0.footprint_all", lg(128));
  ck_feat(v, "b1.stride", lg(1));
  ck_feat(v, "b1.contiguous", 1);
  free(v);
  v = features_of(ctx,
      "func @sym(n: int64, A: buffer(float32, [n]), C: buffer(float32, [n])) {\n"
      "  for i: int64 in range(0i64, n) {\n"
      "    C[i] = A[i] + 1f32;\n"
      "  }\n"
      "}\n", 0);
  ck_feat(v, "st.exec_count", lg(1));
  ck_feat(v, "st.float_addsub", lg(1));
  for (int i = 0; i < tune_feature_count(); i++) ck_assert(isfinite(v[i]));
  free(v);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* An unlowered function (blocks) is refused naming the block; NULLs are misuse. */
START_TEST(test_extract_errors) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_tir(ctx,
      "func @blk(A: buffer(float32, [8])) {\n"
      "  for i: int32 in range(0, 8) {\n"
      "    block \"fill\"(vi: int32 = spatial(0, 8) <- i) {\n"
      "      reads()\n"
      "      writes(A[vi])\n"
      "      A[vi] = 0f32;\n"
      "    }\n"
      "  }\n"
      "}\n");
  float *v = calloc((size_t)tune_feature_count(), sizeof *v);
  ck_assert_int_eq(tune_extract_features(ctx, m->funcs[0], v), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "block 'fill'");
  ck_errmsg_has(ctx, "ir_lower_func");
  ck_assert_int_eq(tune_extract_features(ctx, NULL, v), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "function is NULL");
  ck_assert_int_eq(tune_extract_features(ctx, m->funcs[0], NULL), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "output is NULL");
  ck_assert_int_eq(tune_extract_features(NULL, m->funcs[0], v), KILN_ERR_MISUSE);
  free(v);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Allocation failures anywhere in the extraction give NOMEM with nothing leaked. */
START_TEST(test_extract_nomem) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_tir(ctx, scalar_text);
  float *v = calloc((size_t)tune_feature_count(), sizeof *v);
  long live = kiln_context_live_blocks(ctx);
  bool ok = false;
  int nfail = 0;
  for (long k = 1; k < 200 && !ok; k++) {
    ctx->fail_at = ctx->nalloc + k;
    kiln_status st = tune_extract_features(ctx, m->funcs[0], v);
    ctx->fail_at = 0;
    ck_assert_msg(st == KILN_OK || st == KILN_ERR_NOMEM, "failing allocation %ld gave %s", k,
                  kiln_status_str(st));
    ck_assert_int_eq(kiln_context_live_blocks(ctx), live);
    ok = st == KILN_OK;
    nfail += st == KILN_ERR_NOMEM;
  }
  ck_assert(ok);
  ck_assert_int_gt(nfail, 0);
  ck_feat(v, "st.float_mul", lg(32));
  free(v);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- The cost model ------------------------------------------------------------------- */

enum { NTRAIN = 100, NTEST = 60 };

/* Random feature vectors in [0, 1) and their throughput, a known function of two features. */
static void synthetic(uint64_t *rng, int n, float *x, double *y) {
  int F = tune_feature_count();
  int a = tune_feature_index("st.float_mul"), b = tune_feature_index("b0.footprint_l1");
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < F; j++) x[i * F + j] = (float)lh_rand_uniform(rng, 0, 1);
    double p = x[i * F + a], q = x[i * F + b];
    y[i] = 10.0 * p + 4.0 * q * q + 0.5;
  }
}

/* Fraction of the pairs (i, j) with different truths whose predictions order them right. */
static double pairwise_accuracy(int n, const double *truth, const double *pred) {
  long good = 0, all = 0;
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) {
      if (truth[i] == truth[j]) continue;
      all++;
      good += (truth[i] < truth[j]) == (pred[i] < pred[j]);
    }
  return all ? (double)good / (double)all : 0;
}

START_TEST(test_cost_model_ranks) {
  kiln_context *ctx = kiln_test_new_ctx();
  int F = tune_feature_count();
  float *xtr = malloc(sizeof *xtr * NTRAIN * F), *xte = malloc(sizeof *xte * NTEST * F);
  double ytr[NTRAIN], yte[NTEST], p1[NTEST], p2[NTEST], p3[NTEST];
  uint64_t rng = 42;
  synthetic(&rng, NTRAIN, xtr, ytr);
  synthetic(&rng, NTEST, xte, yte);

  tune_cost_model *m = NULL;
  ck_ok(ctx, tune_cost_model_new(ctx, &m));
  ck_assert(!tune_cost_model_trained(m));
  /* untrained: every score is 0 */
  for (int i = 0; i < NTEST; i++) p1[i] = 7;
  ck_ok(ctx, tune_cost_model_predict(m, NTEST, xte, p1));
  for (int i = 0; i < NTEST; i++) ck_assert(p1[i] == 0);

  ck_ok(ctx, tune_cost_model_train(m, NTRAIN, xtr, ytr));
  ck_assert(tune_cost_model_trained(m));
  ck_ok(ctx, tune_cost_model_predict(m, NTEST, xte, p1));
  double acc = pairwise_accuracy(NTEST, yte, p1);
  ck_assert_msg(acc > 0.8, "pairwise ranking accuracy %.3f on held-out samples", acc);

  /* deterministic: a second model trained on the same data predicts the same */
  tune_cost_model *m2 = NULL;
  ck_ok(ctx, tune_cost_model_new(ctx, &m2));
  ck_ok(ctx, tune_cost_model_train(m2, NTRAIN, xtr, ytr));
  ck_ok(ctx, tune_cost_model_predict(m2, NTEST, xte, p2));
  for (int i = 0; i < NTEST; i++) ck_assert(p1[i] == p2[i]);
  tune_cost_model_free(m2);

  /* save / load gives the same predictions */
  void *buf = NULL;
  size_t len = 0;
  ck_ok(ctx, tune_cost_model_save(m, &buf, &len));
  ck_assert_uint_gt(len, 16);
  tune_cost_model *m3 = NULL;
  ck_ok(ctx, tune_cost_model_new(ctx, &m3));
  ck_ok(ctx, tune_cost_model_load(m3, buf, len));
  ck_assert(tune_cost_model_trained(m3));
  ck_ok(ctx, tune_cost_model_predict(m3, NTEST, xte, p3));
  for (int i = 0; i < NTEST; i++) ck_assert(p1[i] == p3[i]);
  tune_cost_model_free(m3);
  ir_free(ctx, buf, len);

  /* retraining on other data replaces the model */
  for (int i = 0; i < NTRAIN; i++) ytr[i] = 1.0 / ytr[i];
  ck_ok(ctx, tune_cost_model_train(m, NTRAIN, xtr, ytr));
  ck_ok(ctx, tune_cost_model_predict(m, NTEST, xte, p2));
  ck_assert_msg(pairwise_accuracy(NTEST, yte, p2) < 0.2, "retraining kept the old model");

  tune_cost_model_free(m);
  free(xtr);
  free(xte);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Misuse: n = 0, NULL arrays, bad throughputs, saving an untrained model, corrupt bytes. */
START_TEST(test_cost_model_errors) {
  kiln_context *ctx = kiln_test_new_ctx();
  int F = tune_feature_count();
  float *x = calloc((size_t)F * 2, sizeof *x);
  double y[2] = {1, 2}, s[2];
  tune_cost_model *m = NULL;
  ck_assert_int_eq(tune_cost_model_new(ctx, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(tune_cost_model_new(NULL, &m), KILN_ERR_MISUSE);
  ck_ok(ctx, tune_cost_model_new(ctx, &m));
  ck_assert_int_eq(tune_cost_model_train(m, 0, x, y), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "n = 0");
  ck_assert_int_eq(tune_cost_model_train(m, 2, NULL, y), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "features array is NULL");
  ck_assert_int_eq(tune_cost_model_train(m, 2, x, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(tune_cost_model_train(NULL, 2, x, y), KILN_ERR_MISUSE);
  y[1] = -1;
  ck_assert_int_eq(tune_cost_model_train(m, 2, x, y), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "throughput 1 is -1");
  y[1] = NAN;
  ck_assert_int_eq(tune_cost_model_train(m, 2, x, y), KILN_ERR_MISUSE);
  y[1] = 2;
  ck_assert_int_eq(tune_cost_model_predict(m, 0, x, s), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "tune_cost_model_predict");
  ck_assert_int_eq(tune_cost_model_predict(m, 2, x, NULL), KILN_ERR_MISUSE);
  void *buf = NULL;
  size_t len = 0;
  ck_assert_int_eq(tune_cost_model_save(m, &buf, &len), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "not trained");
  ck_assert_int_eq(tune_cost_model_load(m, "garbage!", 8), KILN_ERR_CORRUPT);
  ck_errmsg_has(ctx, "XGBoost");
  ck_assert(!tune_cost_model_trained(m));
  ck_assert_int_eq(tune_cost_model_load(m, NULL, 8), KILN_ERR_MISUSE);
  /* an allocation failure in training is NOMEM and leaves the model untrained */
  ctx->fail_at = ctx->nalloc + 1;
  ck_assert_int_eq(tune_cost_model_train(m, 2, x, y), KILN_ERR_NOMEM);
  ctx->fail_at = 0;
  ck_assert(!tune_cost_model_trained(m));
  /* a model trained on all-zero throughputs still trains and predicts */
  y[0] = y[1] = 0;
  ck_ok(ctx, tune_cost_model_train(m, 2, x, y));
  ck_ok(ctx, tune_cost_model_predict(m, 2, x, s));
  tune_cost_model_free(m);
  tune_cost_model_free(NULL);
  free(x);
  kiln_test_done_ctx(ctx);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("tune_features");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_names);
  tcase_add_test(tc, test_scalar_counts);
  tcase_add_test(tc, test_vectorized_differs);
  tcase_add_test(tc, test_parallel_extent);
  tcase_add_test(tc, test_op_kinds);
  tcase_add_test(tc, test_strides);
  tcase_add_test(tc, test_alloc_and_guard);
  tcase_add_test(tc, test_matmul_scheduled_differs);
  tcase_add_test(tc, test_lets_and_symbolic);
  tcase_add_test(tc, test_extract_errors);
  tcase_add_test(tc, test_extract_nomem);
  tcase_add_test(tc, test_cost_model_ranks);
  tcase_add_test(tc, test_cost_model_errors);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

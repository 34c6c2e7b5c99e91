/* test_api_research.c: the researchers' flow through the public C API only (kiln/kiln.h):
 * a TIR matmul scheduled by hand and by the default rules, its trace read and replayed,
 * kernels built in memory, called against a C reference and timed; a Relay module fused and
 * lowered to TIR; a tiny model tuned into a temporary database, which is then listed and
 * merged. Every user-facing error of these entry points has a negative test here. */
#include <math.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "test_util.h"

/* D = relu(A @ B) with A: M x K, B: K x N; blocks "matmul" (loops i j k) and "relu". */
enum { M = 32, N = 48, K = 24 };
#define MATMUL_TIR                                                                           \
  "func @mm(A: buffer(float32, [32i64, 24i64]), B: buffer(float32, [24i64, 48i64]),"         \
  " D: buffer(float32, [32i64, 48i64])) {\n"                                                  \
  "  block \"root\"() {\n"                                                                    \
  "    alloc C: buffer(float32, [32i64, 48i64])\n"                                            \
  "    for i: int64 in range(0i64, 32i64) {\n"                                                \
  "      for j: int64 in range(0i64, 48i64) {\n"                                              \
  "        for k: int64 in range(0i64, 24i64) {\n"                                            \
  "          block \"matmul\"(vi: int64 = spatial(0i64, 32i64) <- i,"                         \
  " vj: int64 = spatial(0i64, 48i64) <- j, vk: int64 = reduce(0i64, 24i64) <- k) {\n"         \
  "            reads(A[vi, vk], B[vk, vj], C[vi, vj])\n"                                      \
  "            writes(C[vi, vj])\n"                                                           \
  "            init {\n"                                                                      \
  "              C[vi, vj] = 0f32;\n"                                                         \
  "            }\n"                                                                           \
  "            C[vi, vj] = C[vi, vj] + A[vi, vk] * B[vk, vj];\n"                              \
  "          }\n"                                                                             \
  "        }\n"                                                                               \
  "      }\n"                                                                                 \
  "    }\n"                                                                                   \
  "    for i2: int64 in range(0i64, 32i64) {\n"                                               \
  "      for j2: int64 in range(0i64, 48i64) {\n"                                             \
  "        block \"relu\"(vi: int64 = spatial(0i64, 32i64) <- i2,"                            \
  " vj: int64 = spatial(0i64, 48i64) <- j2) {\n"                                              \
  "          reads(C[vi, vj])\n"                                                              \
  "          writes(D[vi, vj])\n"                                                             \
  "          D[vi, vj] = max(C[vi, vj], 0f32);\n"                                             \
  "        }\n"                                                                               \
  "      }\n"                                                                                 \
  "    }\n"                                                                                   \
  "  }\n"                                                                                     \
  "}\n"

static kiln_tir_module *parse_matmul(kiln_context *ctx) {
  kiln_tir_module *m = NULL;
  ck_ok(ctx, kiln_tir_module_parse(ctx, MATMUL_TIR, strlen(MATMUL_TIR), "mm.tir", &m));
  return m;
}

/* ---- Arguments ----------------------------------------------------------------------- */

static kiln_sch_arg rv(int32_t h) { return (kiln_sch_arg){KILN_SCH_ARG_RV, h, 0, NULL}; }
static kiln_sch_arg lit(int64_t v) { return (kiln_sch_arg){KILN_SCH_ARG_INT, v, 0, NULL}; }
static kiln_sch_arg str(const char *s) { return (kiln_sch_arg){KILN_SCH_ARG_STR, 0, 0, s}; }

/* Applies an instruction that must succeed; returns the number of results. */
static int apply(kiln_context *ctx, kiln_schedule *s, const char *inst, int nargs,
                 const kiln_sch_arg *args, int32_t *outs) {
  int32_t scratch[KILN_SCH_MAX_ARGS];
  int n = -1;
  ck_ok(ctx, kiln_schedule_apply(s, inst, nargs, args, &n, outs ? outs : scratch));
  return n;
}

/* The hand schedule of the matmul block: i and j split by 4 and 16, reordered to
 * i0 j0 k i1 j1, the innermost vectorized, the outermost parallel, the init decomposed
 * before k. Checks the RVs it is given back on the way. */
static void hand_schedule(kiln_context *ctx, kiln_schedule *s) {
  int32_t b, loops[3], is[2], js[2], init;
  kiln_sch_arg a1[] = {str("matmul")};
  ck_assert_int_eq(apply(ctx, s, "get_block", 1, a1, &b), 1);
  ck_assert_int_eq(kiln_schedule_rv_kind(s, b), 0);
  ck_assert_str_eq(kiln_schedule_rv_name(s, b), "matmul");
  kiln_sch_arg a2[] = {rv(b)};
  ck_assert_int_eq(apply(ctx, s, "get_loops", 1, a2, loops), 3);
  ck_assert_int_eq(kiln_schedule_rv_kind(s, loops[0]), 1);
  ck_assert_str_eq(kiln_schedule_rv_name(s, loops[2]), "k");
  kiln_sch_arg a3[] = {rv(loops[0]), lit(-1), lit(4)};
  ck_assert_int_eq(apply(ctx, s, "split", 3, a3, is), 2);
  kiln_sch_arg a4[] = {rv(loops[1]), lit(-1), lit(16)};
  ck_assert_int_eq(apply(ctx, s, "split", 3, a4, js), 2);
  kiln_sch_arg a5[] = {rv(is[0]), rv(js[0]), rv(loops[2]), rv(is[1]), rv(js[1])};
  ck_assert_int_eq(apply(ctx, s, "reorder", 5, a5, NULL), 0);
  kiln_sch_arg a6[] = {rv(js[1])};
  apply(ctx, s, "vectorize", 1, a6, NULL);
  kiln_sch_arg a7[] = {rv(is[0])};
  apply(ctx, s, "parallel", 1, a7, NULL);
  kiln_sch_arg a8[] = {rv(b), rv(loops[2])};
  ck_assert_int_eq(apply(ctx, s, "decompose_reduction", 2, a8, &init), 1);
  ck_assert_int_eq(kiln_schedule_rv_kind(s, init), 0);
}

/* ---- Data and the C reference ---------------------------------------------------------- */

typedef struct mm_data {
  float a[M * K], b[K * N], d[M * N], ref[M * N];
  int64_t sa[2], sb[2], sd[2];
  kiln_tensor args[3];
} mm_data;

static kiln_tensor tensor(void *data, int64_t *shape, int64_t d0, int64_t d1) {
  shape[0] = d0;
  shape[1] = d1;
  return (kiln_tensor){.data = data, .device_type = 1, .ndim = 2, .dtype = KILN_FLOAT32,
                       .shape = shape};
}

/* Seeded inputs with both signs (relu matters), the reference result, NaN outputs. */
static void mm_init(mm_data *x) {
  unsigned seed = 7;
  for (int i = 0; i < M * K; i++) {
    seed = seed * 1103515245u + 12345u;
    x->a[i] = (float)((int)((seed >> 16) % 17) - 8) / 4;
  }
  for (int i = 0; i < K * N; i++) {
    seed = seed * 1103515245u + 12345u;
    x->b[i] = (float)((int)((seed >> 16) % 13) - 6) / 2;
  }
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      float acc = 0;
      for (int k = 0; k < K; k++) acc += x->a[i * K + k] * x->b[k * N + j];
      x->ref[i * N + j] = acc > 0 ? acc : 0;
    }
  for (int i = 0; i < M * N; i++) x->d[i] = NAN;
  x->args[0] = tensor(x->a, x->sa, M, K);
  x->args[1] = tensor(x->b, x->sb, K, N);
  x->args[2] = tensor(x->d, x->sd, M, N);
}

/* The values are small multiples of 1/8, so every summation order gives the same floats. */
static void mm_check(const mm_data *x) {
  for (int i = 0; i < M * N; i++)
    ck_assert_msg(x->d[i] == x->ref[i], "D[%d] = %g, expected %g", i, (double)x->d[i],
                  (double)x->ref[i]);
}

/* Builds func of m, calls it and compares with the reference. */
static void build_and_check(kiln_context *ctx, kiln_tir_module *m, const char *func) {
  kiln_kernel *k = NULL;
  ck_ok(ctx, kiln_kernel_build(m, func, NULL, &k));
  ck_assert_int_eq(kiln_kernel_num_params(k), 3);
  mm_data *x = malloc(sizeof *x);
  mm_init(x);
  ck_ok(ctx, kiln_kernel_call(k, x->args, 3));
  mm_check(x);
  free(x);
  kiln_kernel_free(k);
}

/* ---- Schedules and kernels ------------------------------------------------------------- */

/* Hand schedule -> trace -> replay on a fresh schedule gives an equal module; both the
 * unscheduled and the scheduled kernels compute the reference; the scheduled one is timed. */
START_TEST(test_hand_schedule_replay_build) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_matmul(ctx);
  kiln_schedule *s = NULL;
  ck_ok(ctx, kiln_schedule_new(m, NULL, 1, &s));
  hand_schedule(ctx, s);
  char *trace = NULL;
  ck_ok(ctx, kiln_schedule_trace(s, &trace));
  ck_assert_ptr_nonnull(strstr(trace, "\"decompose_reduction\""));
  ck_assert_ptr_nonnull(strstr(trace, "\"vectorize\""));

  kiln_schedule *s2 = NULL;
  ck_ok(ctx, kiln_schedule_new(m, "mm", 2, &s2));
  ck_ok(ctx, kiln_schedule_replay(s2, trace));
  kiln_tir_module *a = NULL, *b = NULL;
  ck_ok(ctx, kiln_schedule_module(s, &a));
  ck_ok(ctx, kiln_schedule_module(s2, &b));
  int eq = 0;
  ck_ok(ctx, kiln_tir_module_equal(a, b, &eq));
  ck_assert_int_eq(eq, 1);
  ck_ok(ctx, kiln_tir_module_equal(a, m, &eq));
  ck_assert_int_eq(eq, 0); /* the schedule changed the function */
  char *trace2 = NULL;     /* the replayed instructions joined the trace */
  ck_ok(ctx, kiln_schedule_trace(s2, &trace2));
  ck_assert_str_eq(trace, trace2);
  kiln_string_free(ctx, trace2);

  build_and_check(ctx, m, "mm");
  build_and_check(ctx, a, NULL);

  kiln_kernel *k = NULL;
  ck_ok(ctx, kiln_kernel_build(a, NULL, "", &k));
  char *low = NULL;
  ck_ok(ctx, kiln_kernel_lowered_text(k, &low));
  ck_assert_ptr_nonnull(strstr(low, "func @mm("));
  ck_assert_ptr_null(strstr(low, "block \"matmul\"")); /* blocks are lowered away */
  kiln_string_free(ctx, low);
  mm_data *x = malloc(sizeof *x);
  mm_init(x);
  kiln_timing t;
  ck_ok(ctx, kiln_kernel_time(k, x->args, 3, 1, 5, 0.01, &t));
  ck_assert_int_ge(t.repeats, 5);
  ck_assert(t.min_s > 0 && t.min_s <= t.median_s && t.median_s <= t.max_s);
  ck_assert(t.min_s <= t.mean_s && t.mean_s <= t.max_s && t.stddev_s >= 0);
  mm_check(x);
  free(x);
  kiln_kernel_free(k);

  kiln_string_free(ctx, trace);
  kiln_tir_module_free(a);
  kiln_tir_module_free(b);
  kiln_schedule_free(s2);
  kiln_schedule_free(s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The default rules schedule both blocks (the trace records them), the result replays and
 * computes the reference. Sampling instructions through apply sample afresh: an integer RV
 * with a value, reproducible from the seed. */
START_TEST(test_default_rules_and_sampling) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_matmul(ctx);
  kiln_schedule *s = NULL;
  ck_ok(ctx, kiln_schedule_new(m, NULL, 3, &s));
  ck_ok(ctx, kiln_schedule_apply_default_rules(s, NULL));
  char *trace = NULL;
  ck_ok(ctx, kiln_schedule_trace(s, &trace));
  ck_assert_ptr_nonnull(strstr(trace, "\"split\""));
  kiln_schedule *s2 = NULL;
  ck_ok(ctx, kiln_schedule_new(m, NULL, 9, &s2));
  ck_ok(ctx, kiln_schedule_replay(s2, trace));
  kiln_tir_module *a = NULL, *b = NULL;
  ck_ok(ctx, kiln_schedule_module(s, &a));
  ck_ok(ctx, kiln_schedule_module(s2, &b));
  int eq = 0;
  ck_ok(ctx, kiln_tir_module_equal(a, b, &eq));
  ck_assert_int_eq(eq, 1);
  build_and_check(ctx, a, NULL);
  kiln_string_free(ctx, trace);
  kiln_tir_module_free(a);
  kiln_tir_module_free(b);
  kiln_schedule_free(s2);
  kiln_schedule_free(s);

  /* sample_perfect_tile of loop j (48) into 2 factors: their product is 48. */
  int64_t prod[2];
  for (int round = 0; round < 2; round++) {
    ck_ok(ctx, kiln_schedule_new(m, NULL, 42, &s));
    int32_t blk, loops[3], f[2];
    kiln_sch_arg a1[] = {str("matmul")};
    apply(ctx, s, "get_block", 1, a1, &blk);
    kiln_sch_arg a2[] = {rv(blk)};
    apply(ctx, s, "get_loops", 1, a2, loops);
    kiln_sch_arg a3[] = {rv(loops[1]), lit(2), lit(16)};
    ck_assert_int_eq(apply(ctx, s, "sample_perfect_tile", 3, a3, f), 2);
    ck_assert_int_eq(kiln_schedule_rv_kind(s, f[0]), 2);
    int64_t v0, v1;
    ck_ok(ctx, kiln_schedule_rv_int(s, f[0], &v0));
    ck_ok(ctx, kiln_schedule_rv_int(s, f[1], &v1));
    ck_assert_int_eq(v0 * v1, 48);
    ck_assert_int_le(v1, 16);
    prod[round] = v0 * 1000 + v1;
    kiln_sch_arg a4[] = {rv(loops[1]), rv(f[0]), rv(f[1])}; /* INT RVs as split factors */
    ck_assert_int_eq(apply(ctx, s, "split", 3, a4, NULL), 2);
    ck_assert_int_eq(kiln_schedule_rv_int(s, blk, &v0), KILN_ERR_MISUSE);
    ck_assert_ptr_null(kiln_schedule_rv_name(s, f[0]));
    ck_assert_int_eq(kiln_schedule_rv_kind(s, 12345), -1);
    kiln_schedule_free(s);
  }
  ck_assert_int_eq(prod[0], prod[1]); /* the same seed samples the same */
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Applies an instruction that must fail with `code` and a message holding `needle`, and
 * checks that the schedule is unchanged (same trace, same function). */
static void apply_fails(kiln_context *ctx, kiln_schedule *s, const char *inst, int nargs,
                        const kiln_sch_arg *args, kiln_status code, const char *needle) {
  char *before = NULL, *after = NULL;
  kiln_tir_module *m0 = NULL, *m1 = NULL;
  ck_ok(ctx, kiln_schedule_trace(s, &before));
  ck_ok(ctx, kiln_schedule_module(s, &m0));
  int32_t outs[KILN_SCH_MAX_ARGS];
  int n = -1;
  kiln_status st = kiln_schedule_apply(s, inst, nargs, args, &n, outs);
  ck_assert_msg(st == code, "%s gave %s (%s), expected %s", inst, kiln_status_str(st),
                kiln_context_errmsg(ctx), kiln_status_str(code));
  ck_errmsg_has(ctx, needle);
  ck_assert_int_eq(n, 0);
  ck_ok(ctx, kiln_schedule_trace(s, &after));
  ck_assert_str_eq(before, after);
  ck_ok(ctx, kiln_schedule_module(s, &m1));
  int eq = 0;
  ck_ok(ctx, kiln_tir_module_equal(m0, m1, &eq));
  ck_assert_int_eq(eq, 1);
  kiln_string_free(ctx, before);
  kiln_string_free(ctx, after);
  kiln_tir_module_free(m0);
  kiln_tir_module_free(m1);
}

START_TEST(test_schedule_errors) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_matmul(ctx);
  kiln_schedule *s = NULL;
  ck_assert_int_eq(kiln_schedule_new(m, "nope", 1, &s), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "no function 'nope'");
  ck_assert_ptr_null(s);
  ck_ok(ctx, kiln_schedule_new(m, NULL, 1, &s));
  int32_t b, loops[3], js[2];
  kiln_sch_arg a1[] = {str("matmul")};
  apply(ctx, s, "get_block", 1, a1, &b);
  kiln_sch_arg a2[] = {rv(b)};
  apply(ctx, s, "get_loops", 1, a2, loops);

  apply_fails(ctx, s, "frobnicate", 1, a2, KILN_ERR_UNDEFINED, "unknown instruction 'frobnicate'");
  kiln_sch_arg bad_rv[] = {rv(9999)};
  apply_fails(ctx, s, "vectorize", 1, bad_rv, KILN_ERR_PARSE,
              "vectorize: argument 0: 9999 is not a random variable");
  kiln_sch_arg block_as_loop[] = {rv(b), lit(-1), lit(4)};
  apply_fails(ctx, s, "split", 3, block_as_loop, KILN_ERR_PARSE, "is not a loop");
  kiln_sch_arg int_as_block[] = {lit(3)};
  apply_fails(ctx, s, "get_loops", 1, int_as_block, KILN_ERR_PARSE, "get_loops");
  kiln_sch_arg too_few[] = {rv(loops[0])};
  apply_fails(ctx, s, "split", 1, too_few, KILN_ERR_PARSE, "split takes a loop and 2");
  kiln_sch_arg bad_kind[] = {{99, 0, 0, NULL}};
  apply_fails(ctx, s, "parallel", 1, bad_kind, KILN_ERR_PARSE, "unknown kind 99");
  kiln_sch_arg no_string[] = {str(NULL)};
  apply_fails(ctx, s, "get_block", 1, no_string, KILN_ERR_PARSE, "NULL string");
  kiln_sch_arg missing[] = {str("nope")};
  apply_fails(ctx, s, "get_block", 1, missing, KILN_ERR_SCHEDULE, "no block named 'nope'");
  /* a reduction block cannot be inlined into its consumer */
  apply_fails(ctx, s, "compute_inline", 1, a2, KILN_ERR_SCHEDULE, "compute_inline");
  /* a loop split away is gone from the function: the precondition fails */
  kiln_sch_arg sp[] = {rv(loops[1]), lit(-1), lit(8)};
  apply(ctx, s, "split", 3, sp, js);
  kiln_sch_arg stale[] = {rv(loops[1])};
  apply_fails(ctx, s, "vectorize", 1, stale, KILN_ERR_SCHEDULE, "vectorize");
  int n;
  int32_t outs[KILN_SCH_MAX_ARGS];
  /* misuse */
  ck_assert_int_eq(kiln_schedule_apply(s, NULL, 0, NULL, &n, outs), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_schedule_apply(NULL, "split", 0, NULL, &n, outs), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_schedule_apply(s, "split", -1, NULL, &n, outs), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_schedule_apply(s, "split", KILN_SCH_MAX_ARGS + 1, sp, &n, outs),
                   KILN_ERR_PARSE);
  ck_assert_int_eq(kiln_schedule_rv_int(s, 9999, &(int64_t){0}), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_schedule_apply_default_rules(s, "llvm -bogus-option=1"),
                   KILN_ERR_PARSE);

  /* bad traces: malformed JSON, an unknown instruction, one that does not apply */
  kiln_schedule *f = NULL;
  ck_ok(ctx, kiln_schedule_new(m, NULL, 1, &f));
  ck_assert_int_eq(kiln_schedule_replay(f, "{\"version\": 1, \"insts\": ["), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "malformed JSON");
  ck_assert_int_eq(kiln_schedule_replay(f, "{\"version\": 1, \"insts\": [{\"kind\": \"warp\", "
                                           "\"inputs\": [], \"outputs\": []}]}"),
                   KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "unknown instruction kind \"warp\"");
  ck_assert_int_eq(kiln_schedule_replay(f, "{\"version\": 1, \"insts\": [{\"kind\": "
                                           "\"get_block\", \"inputs\": [{\"s\": \"matmul\"}], "
                                           "\"outputs\": [0]},\n {\"kind\": "
                                           "\"get_block\", \"inputs\": [{\"s\": \"zzz\"}], "
                                           "\"outputs\": [1]}]}"),
                   KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "instruction 1");
  ck_errmsg_has(ctx, "get_block");
  char *t = NULL;
  ck_ok(ctx, kiln_schedule_trace(f, &t));
  ck_assert_str_eq(t, "{\"version\": 1, \"insts\": []}\n"); /* a failed replay leaves nothing */
  kiln_string_free(ctx, t);
  kiln_schedule_free(f);

  /* kernels: unknown function, a module with two functions and no name, wrong arguments */
  kiln_kernel *k = NULL;
  ck_assert_int_eq(kiln_kernel_build(m, "nope", NULL, &k), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "no function 'nope'");
  ck_assert_int_eq(kiln_kernel_build(m, NULL, "llvm -mtriple=aarch64-linux-gnu -mcpu=generic",
                                     &k) == KILN_OK, 0);
  ck_assert_ptr_null(k);
  static const char two[] = "func @f(A: buffer(float32, [4i64])) {\n  A[0i64] = 1f32;\n}\n"
                            "func @g(A: buffer(float32, [4i64])) {\n  A[1i64] = 2f32;\n}\n";
  kiln_tir_module *m2 = NULL;
  ck_ok(ctx, kiln_tir_module_parse(ctx, two, strlen(two), "two", &m2));
  ck_assert_int_eq(kiln_kernel_build(m2, NULL, NULL, &k), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "2 functions");
  ck_assert_int_eq(kiln_schedule_new(m2, NULL, 1, &f), KILN_ERR_MISUSE);
  ck_ok(ctx, kiln_kernel_build(m, NULL, NULL, &k));
  mm_data *x = malloc(sizeof *x);
  mm_init(x);
  ck_assert_int_eq(kiln_kernel_call(k, x->args, 2), KILN_ERR_RUNTIME);
  ck_errmsg_has(ctx, "kernel 'mm'");
  x->sb[1] = N + 1; /* wrong shape of B */
  ck_assert_int_eq(kiln_kernel_call(k, x->args, 3), KILN_ERR_RUNTIME);
  ck_errmsg_has(ctx, "B");
  kiln_timing tm;
  ck_assert_int_eq(kiln_kernel_time(k, x->args, 3, 0, 3, 0, &tm), KILN_ERR_RUNTIME);
  ck_assert_int_eq(kiln_kernel_time(k, x->args, 3, 0, 0, 0, &tm), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_kernel_call(k, NULL, 3), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_kernel_call(NULL, x->args, 3), KILN_ERR_MISUSE);
  free(x);
  kiln_kernel_free(k);
  kiln_tir_module_free(m2);
  kiln_schedule_free(s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The schedule entry points under allocation failures: every failing allocation makes the
 * flow (new, apply, trace, replay, module) stop with KILN_ERR_NOMEM, and once everything is
 * freed no block is left. The loop runs until the flow gets through. */
static kiln_status schedule_flow(kiln_context *ctx, kiln_tir_module *m) {
  kiln_schedule *s = NULL, *s2 = NULL;
  kiln_tir_module *out = NULL;
  char *trace = NULL;
  int32_t b, loops[3], outs[KILN_SCH_MAX_ARGS];
  int n;
  kiln_sch_arg a1[] = {str("matmul")};
  kiln_status st = kiln_schedule_new(m, NULL, 1, &s);
  if (!st) st = kiln_schedule_apply(s, "get_block", 1, a1, &n, &b);
  kiln_sch_arg a2[] = {rv(b)};
  if (!st) st = kiln_schedule_apply(s, "get_loops", 1, a2, &n, loops);
  kiln_sch_arg a3[] = {rv(loops[1]), lit(-1), lit(8)};
  if (!st) st = kiln_schedule_apply(s, "split", 3, a3, &n, outs);
  kiln_sch_arg a4[] = {rv(loops[0])};
  if (!st) st = kiln_schedule_apply(s, "parallel", 1, a4, &n, outs);
  if (!st) st = kiln_schedule_trace(s, &trace);
  if (!st) st = kiln_schedule_new(m, NULL, 1, &s2);
  if (!st) st = kiln_schedule_replay(s2, trace);
  if (!st) st = kiln_schedule_module(s2, &out);
  kiln_tir_module_free(out);
  kiln_string_free(ctx, trace);
  kiln_schedule_free(s2);
  kiln_schedule_free(s);
  return st;
}

START_TEST(test_schedule_alloc_failures) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_matmul(ctx);
  long live = kiln_context_live_blocks(ctx);
  int failures = 0;
  for (long n = 1;; n++) {
    kiln_context_fail_alloc(ctx, n);
    kiln_status st = schedule_flow(ctx, m);
    kiln_context_fail_alloc(ctx, 0);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), live);
    if (st == KILN_OK) break;
    ck_assert_msg(st == KILN_ERR_NOMEM, "allocation %ld: %s (%s)", n, kiln_status_str(st),
                  kiln_context_errmsg(ctx));
    failures++;
  }
  ck_assert_int_gt(failures, 10);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Relay -> TIR ------------------------------------------------------------------------ */

static const char dense_relay[] =
    "def @main(%x: Tensor[(16, 16), float32], %w: Tensor[(16, 16), float32], "
    "%b: Tensor[(16,), float32]) {\n"
    "  %0 = nn.dense(%x, %w);\n"
    "  %1 = add(%0, %b);\n"
    "  nn.relu(%1)\n"
    "}\n";

/* FuseOps makes one primitive function; lowering names it after its ops; the default
 * schedule of it builds and computes relu(x w^T + b). */
START_TEST(test_relay_lower) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_relay_module *r = NULL;
  ck_ok(ctx, kiln_relay_module_parse(ctx, dense_relay, strlen(dense_relay), &r));
  kiln_tir_module *t = NULL;
  ck_assert_int_eq(kiln_relay_module_lower(r, &t), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "FuseOps");
  ck_assert_ptr_null(t);
  ck_ok(ctx, kiln_relay_module_run_passes(r, "InferType,FuseOps", 3));
  ck_ok(ctx, kiln_relay_module_lower(r, &t));
  ck_assert_int_eq(kiln_tir_module_num_funcs(t), 1);
  ck_assert_str_eq(kiln_tir_module_func_name(t, 0), "fused_nn_dense_add_nn_relu");
  ck_ok(ctx, kiln_tir_module_verify(t));

  kiln_schedule *s = NULL;
  ck_ok(ctx, kiln_schedule_new(t, "fused_nn_dense_add_nn_relu", 1, &s));
  ck_ok(ctx, kiln_schedule_apply_default_rules(s, NULL));
  kiln_tir_module *sm = NULL;
  ck_ok(ctx, kiln_schedule_module(s, &sm));
  kiln_kernel *k = NULL;
  ck_ok(ctx, kiln_kernel_build(sm, NULL, NULL, &k));
  ck_assert_int_eq(kiln_kernel_num_params(k), 4); /* x, w, b, the output */
  float xv[256], wv[256], bv[16], out[256];
  for (int i = 0; i < 256; i++) {
    xv[i] = (float)(i % 7 - 3) / 2;
    wv[i] = (float)(i % 5 - 2) / 4;
  }
  for (int i = 0; i < 16; i++) bv[i] = (float)(i % 3 - 1);
  int64_t s2[2] = {16, 16}, s1[1] = {16};
  kiln_tensor args[4] = {
      {.data = xv, .device_type = 1, .ndim = 2, .dtype = KILN_FLOAT32, .shape = s2},
      {.data = wv, .device_type = 1, .ndim = 2, .dtype = KILN_FLOAT32, .shape = s2},
      {.data = bv, .device_type = 1, .ndim = 1, .dtype = KILN_FLOAT32, .shape = s1},
      {.data = out, .device_type = 1, .ndim = 2, .dtype = KILN_FLOAT32, .shape = s2}};
  ck_ok(ctx, kiln_kernel_call(k, args, 4));
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) {
      float acc = bv[j];
      for (int c = 0; c < 16; c++) acc += xv[i * 16 + c] * wv[j * 16 + c];
      ck_assert_float_eq(out[i * 16 + j], acc > 0 ? acc : 0);
    }
  kiln_kernel_free(k);
  kiln_tir_module_free(sm);
  kiln_schedule_free(s);
  kiln_tir_module_free(t);
  kiln_relay_module_free(r);

  /* a module without main */
  static const char nomain[] = "def @f(%x: Tensor[(4,), float32]) {\n  nn.relu(%x)\n}\n";
  ck_ok(ctx, kiln_relay_module_parse(ctx, nomain, strlen(nomain), &r));
  ck_assert_int_eq(kiln_relay_module_lower(r, &t), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "'main'");
  kiln_relay_module_free(r);
  ck_assert_int_eq(kiln_relay_module_lower(NULL, &t), KILN_ERR_MISUSE);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Tuning and the database ------------------------------------------------------------- */

static const char tiny_relay[] =
    "def @main(%x: Tensor[(16, 16), float32], %w: Tensor[(16, 16), float32]) {\n"
    "  %0 = nn.dense(%x, %w);\n"
    "  nn.relu(%0)\n"
    "}\n";

static int nprogress, budget = 4, stop_after; /* stop_after > 0: stop at that round */
static int on_progress(void *ud, const kiln_tune_progress *p) {
  ck_assert_ptr_eq(ud, &nprogress);
  ck_assert_int_ge(p->round, 1);
  ck_assert_int_eq(p->budget, budget);
  ck_assert_ptr_nonnull(p->task_name);
  nprogress++;
  return stop_after > 0 && p->round >= stop_after;
}

/* A parsed JSON document; the test fails when the text is not JSON. */
static cJSON *parse_json(const char *text) {
  cJSON *j = cJSON_Parse(text);
  ck_assert_msg(j != NULL, "not JSON: %s", text);
  return j;
}

static double num_field(const cJSON *o, const char *key) {
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, key);
  ck_assert_msg(cJSON_IsNumber(f), "field %s is not a number", key);
  return f->valuedouble;
}

static const char *str_field(const cJSON *o, const char *key) {
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, key);
  ck_assert_msg(cJSON_IsString(f), "field %s is not a string", key);
  return f->valuestring;
}

/* kiln_tune of a tiny model (4 trials) into a temporary database; the report and the
 * database listings agree; merging it into an empty database copies every record, a second
 * merge skips them all. */
START_TEST(test_tune_and_db) {
  kiln_context *ctx = kiln_test_new_ctx();
  char dir[] = "/tmp/kiln_api_research_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char db1[256], db2[256], bad[256];
  snprintf(db1, sizeof db1, "%s/t.db", dir);
  snprintf(db2, sizeof db2, "%s/empty.db", dir);
  snprintf(bad, sizeof bad, "%s/bad.db", dir);

  kiln_relay_module *r = NULL;
  ck_ok(ctx, kiln_relay_module_parse(ctx, tiny_relay, strlen(tiny_relay), &r));
  kiln_tune_options o = {.db_path = db1, .trials = 4, .seed = 5, .progress = on_progress,
                         .progress_ud = &nprogress};
  char *report = NULL;
  ck_ok(ctx, kiln_tune(r, 0, NULL, &o, &report));
  ck_assert_int_ge(nprogress, 1);
  cJSON *rep = parse_json(report);
  ck_assert_int_eq((int)num_field(rep, "trials"), 4);
  ck_assert_str_eq(str_field(rep, "db"), db1);
  const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(rep, "tasks");
  ck_assert_int_eq(cJSON_GetArraySize(tasks), 1);
  const cJSON *task = cJSON_GetArrayItem(tasks, 0);
  ck_assert_str_eq(str_field(task, "name"), "fused_nn_dense_nn_relu");
  char hash[32];
  snprintf(hash, sizeof hash, "%s", str_field(task, "hash"));
  ck_assert_int_eq(strlen(hash), 16);
  ck_assert_int_eq((int)num_field(task, "trials"), 4);
  ck_assert_int_ge((int)num_field(task, "ok"), 1);
  ck_assert_int_eq((int)num_field(task, "ok") + (int)num_field(task, "failed"), 4);
  ck_assert(num_field(task, "best_s") > 0);
  ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(task, "error")));
  ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(rep, "interrupted")));
  cJSON_Delete(rep);
  kiln_string_free(ctx, report);

  /* the progress callback stops the run by returning non-zero: after that round, with the
   * report of what was measured (into a database of its own, not to change the counts
   * below) */
  char db3[80];
  snprintf(db3, sizeof db3, "%s/stop.db", dir);
  o.db_path = db3;
  o.trials = budget = 200;
  stop_after = 1;
  nprogress = 0;
  ck_ok(ctx, kiln_tune(r, 0, NULL, &o, &report));
  ck_assert_int_eq(nprogress, 1);
  rep = parse_json(report);
  ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rep, "interrupted")));
  ck_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(rep, "time_limited")));
  int stopped_at = (int)num_field(rep, "trials");
  ck_assert_int_ge(stopped_at, 1);
  ck_assert_int_le(stopped_at, 8); /* one round */
  cJSON_Delete(rep);
  kiln_string_free(ctx, report);
  kiln_db *sdb = NULL;
  char *sj = NULL;
  ck_ok(ctx, kiln_db_open(ctx, db3, &sdb));
  ck_ok(ctx, kiln_db_records_json(sdb, NULL, &sj));
  cJSON *srecs = parse_json(sj);
  ck_assert_int_eq(cJSON_GetArraySize(srecs), stopped_at); /* every measurement recorded */
  cJSON_Delete(srecs);
  kiln_string_free(ctx, sj);
  kiln_db_close(sdb);
  o.db_path = db1;
  o.trials = budget = 4;
  stop_after = 0;

  /* options: the database is required */
  o.db_path = NULL;
  ck_assert_int_eq(kiln_tune(r, 0, NULL, &o, NULL), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "db_path");
  kiln_relay_module_free(r);

  kiln_db *db = NULL;
  ck_ok(ctx, kiln_db_open(ctx, db1, &db));
  char *js = NULL;
  ck_ok(ctx, kiln_db_workloads_json(db, &js));
  cJSON *w = parse_json(js);
  ck_assert_int_eq(cJSON_GetArraySize(w), 1);
  const cJSON *w0 = cJSON_GetArrayItem(w, 0);
  ck_assert_str_eq(str_field(w0, "hash"), hash);
  ck_assert_ptr_nonnull(strstr(str_field(w0, "summary"), "nn.dense"));
  int nrec = (int)num_field(w0, "nrecords");
  ck_assert_int_ge(nrec, 4);
  double best = num_field(w0, "best_s");
  cJSON_Delete(w);
  kiln_string_free(ctx, js);

  ck_ok(ctx, kiln_db_targets_json(db, &js));
  cJSON *tj = parse_json(js);
  ck_assert_int_eq(cJSON_GetArraySize(tj), 1);
  ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(tj, 0), "host")));
  cJSON_Delete(tj);
  kiln_string_free(ctx, js);

  ck_ok(ctx, kiln_db_records_json(db, hash, &js));
  cJSON *rj = parse_json(js);
  ck_assert_int_eq(cJSON_GetArraySize(rj), nrec);
  const cJSON *r0 = cJSON_GetArrayItem(rj, 0);
  ck_assert_str_eq(str_field(r0, "workload"), hash);
  ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(r0, "trace")));
  ck_assert_int_eq(strlen(str_field(r0, "seed")), 16);
  cJSON_Delete(rj);
  kiln_string_free(ctx, js);
  ck_ok(ctx, kiln_db_records_json(db, NULL, &js));
  rj = parse_json(js);
  ck_assert_int_eq(cJSON_GetArraySize(rj), nrec);
  cJSON_Delete(rj);
  kiln_string_free(ctx, js);

  ck_ok(ctx, kiln_db_best_json(db, hash, NULL, &js));
  cJSON *bj = parse_json(js);
  ck_assert_str_eq(str_field(bj, "status"), "ok");
  ck_assert(num_field(bj, "median_s") == best);
  const cJSON *insts = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(bj, "trace"), "insts");
  ck_assert(cJSON_IsArray(insts));
  cJSON_Delete(bj);
  kiln_string_free(ctx, js);
  ck_ok(ctx, kiln_db_best_json(db, "0123456789abcdef", NULL, &js));
  ck_assert_str_eq(js, "null");
  kiln_string_free(ctx, js);
  ck_ok(ctx, kiln_db_records_json(db, "0123456789abcdef", &js));
  ck_assert_str_eq(js, "[]");
  kiln_string_free(ctx, js);
  ck_assert_int_eq(kiln_db_best_json(db, "xyz", NULL, &js), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "'xyz' is not a workload hash");
  ck_assert_int_eq(kiln_db_records_json(db, "12345678901234567", &js), KILN_ERR_PARSE);
  kiln_db_close(db);

  /* merge into an empty database: all records are added; again: all are skipped */
  kiln_db *e = NULL;
  ck_ok(ctx, kiln_db_open(ctx, db2, &e));
  ck_ok(ctx, kiln_db_workloads_json(e, &js));
  ck_assert_str_eq(js, "[]");
  kiln_string_free(ctx, js);
  int64_t added = -1, skipped = -1;
  ck_ok(ctx, kiln_db_merge(e, db1, &added, &skipped));
  ck_assert_int_eq(added, nrec);
  ck_assert_int_eq(skipped, 0);
  ck_ok(ctx, kiln_db_merge(e, db1, &added, &skipped));
  ck_assert_int_eq(added, 0);
  ck_assert_int_eq(skipped, nrec);
  ck_ok(ctx, kiln_db_records_json(e, hash, &js));
  rj = parse_json(js);
  ck_assert_int_eq(cJSON_GetArraySize(rj), nrec);
  cJSON_Delete(rj);
  kiln_string_free(ctx, js);
  char missing[300];
  snprintf(missing, sizeof missing, "%s/none.db", dir);
  ck_assert_int_eq(kiln_db_merge(e, missing, &added, &skipped), KILN_ERR_IO);
  kiln_db_close(e);

  /* a file that is not a database */
  FILE *f = fopen(bad, "wb");
  ck_assert_ptr_nonnull(f);
  for (int i = 0; i < 512; i++) fputs("this is not a database. ", f);
  fclose(f);
  ck_assert_int_eq(kiln_db_open(ctx, bad, &db), KILN_ERR_CORRUPT);
  ck_assert_ptr_null(db);
  ck_errmsg_has(ctx, bad);

  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
  kiln_test_done_ctx(ctx);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("api_research");
  TCase *tc = tcase_create("all");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_hand_schedule_replay_build);
  tcase_add_test(tc, test_default_rules_and_sampling);
  tcase_add_test(tc, test_schedule_errors);
  tcase_add_test(tc, test_schedule_alloc_failures);
  tcase_add_test(tc, test_relay_lower);
  tcase_add_test(tc, test_tune_and_db);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

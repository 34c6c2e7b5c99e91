/* test_tune_measure.c: the autotuner's measurement layer (autotune/measure.c). A scheduled
 * matmul is built and timed in a worker process and checked against the interpreter; broken
 * candidates (a crash, an endless loop, a wrong result, an argument the kernel rejects, a
 * failed build) come back as the matching TUNE_ status while the test process lives on, and
 * no worker is left unreaped. */
#include <errno.h>
#include <sys/wait.h>
#include <time.h>

#include "lower_harness.h"
#include "autotune/measure.h"

/* Parses TIR text with one function and returns the module (the test fails on an error). */
static kiln_tir_module *parse_tir(kiln_context *ctx, const char *text) {
  kiln_tir_module *m = NULL;
  kiln_status st = ir_parse_module(ctx, text, strlen(text), "test", &m);
  ck_assert_msg(st == KILN_OK, "parse failed: %s", kiln_context_errmsg(ctx));
  return m;
}

/* The test process has no child left: every worker was reaped. */
static void check_no_children(void) {
  errno = 0;
  pid_t w = waitpid(-1, NULL, WNOHANG);
  ck_assert_msg(w == -1 && errno == ECHILD, "a worker process was left behind (waitpid: %d)",
                (int)w);
}

static double wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static tgt_target host_target(kiln_context *ctx) {
  tgt_target t;
  ck_ok(ctx, tgt_target_host(ctx, &t));
  return t;
}

/* Builds f for the host; the test fails if that fails. */
static tune_built *build(kiln_context *ctx, const ir_func *f) {
  tgt_target t = host_target(ctx);
  tune_built *k = NULL;
  ck_ok(ctx, tune_build(ctx, &t, f, &k));
  ck_assert_ptr_nonnull(k);
  return k;
}

static tune_measure_opts quick_opts(void) {
  tune_measure_opts o = tune_measure_opts_default();
  o.min_repeats = 5;
  o.min_seconds = 0.01;
  o.timeout_s = 20;
  return o;
}

static int32_t noop_task(int32_t i, int32_t n, void *closure) {
  (void)i;
  (void)n;
  (void)closure;
  return 0;
}

/* A matmul lowered from Relay, scheduled by the default rules (tiles, a parallel outer loop,
 * vectors), measured with the runtime's thread pool already running in the parent (the
 * worker must start its own): OK, enough repeats, sane timings, the outputs match the
 * interpreter's on the unscheduled function. */
START_TEST(test_matmul_ok) {
  kiln_context *ctx = kiln_test_new_ctx();
  ck_ok(NULL, kiln_rt_set_num_threads(4));
  ck_assert_int_eq(kiln_rt_parallel_launch(noop_task, NULL, 8), 0); /* starts the pool */
  relay_module *m = lh_parse(ctx,
                             "def @main(%a: Tensor[(32, 24), float32], %b: Tensor[(24, 48), "
                             "float32]) {\n  nn.matmul(%a, %b)\n}\n");
  ir_arena *a = ir_arena_new(ctx);
  ir_func *pf = lh_lower(ctx, m, "main", a);
  tgt_target host = host_target(ctx);
  sch_target_info ti;
  sch_target_info_from(&host, &ti);
  sch_schedule *s = sch_new(ctx, pf, 1);
  ck_assert_ptr_nonnull(s);
  ck_ok(ctx, sch_apply_default_rules(s, &ti));

  tune_reference *ref = NULL;
  tune_measure_opts o = quick_opts();
  ck_ok(ctx, tune_reference_outputs(ctx, pf, o.seed, &ref));
  ck_assert_int_eq(ref->nout, 1);
  ck_assert_uint_eq(ref->bytes[0], 32 * 48 * sizeof(float));

  tune_built *k = build(ctx, s->func);
  tune_result r;
  ck_ok(ctx, tune_measure(ctx, k, s->func, &o, (const void *const *)ref->data, &r));
  ck_assert_msg(r.status == TUNE_OK, "status %s: %s", tune_status_name(r.status), r.error);
  ck_assert_int_ge(r.repeats, 5);
  ck_assert(r.median_s > 0);
  ck_assert(r.min_s <= r.median_s && r.median_s <= r.max_s);
  ck_assert(r.stddev_s >= 0);
  ck_assert(r.median_s * r.repeats < 10); /* seconds, not nanoseconds or garbage */
  ck_assert_str_eq(r.error, "");

  /* the same again: the parent's pool still works after the fork */
  ck_assert_int_eq(kiln_rt_parallel_launch(noop_task, NULL, 8), 0);
  ck_ok(ctx, tune_measure(ctx, k, s->func, &o, (const void *const *)ref->data, &r));
  ck_assert_int_eq(r.status, TUNE_OK);
  check_no_children();

  tune_built_free(k);
  tune_reference_free(ctx, ref);
  sch_free(s);
  ir_arena_free(a);
  relay_module_free(m);
  ck_ok(NULL, kiln_rt_set_num_threads(0));
  kiln_test_done_ctx(ctx);
}
END_TEST

/* min_seconds keeps the worker timing past min_repeats. */
START_TEST(test_min_seconds) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_tir(ctx,
                                 "func @scale(A: buffer(float32, [64]), B: buffer(float32, [64])) {\n"
                                 "  for i: int64 in range(0i64, 64i64) { B[i] = A[i] * 2f32; }\n"
                                 "}\n");
  tune_built *k = build(ctx, m->funcs[0]);
  tune_measure_opts o = quick_opts();
  o.min_repeats = 2;
  o.min_seconds = 0.02;
  tune_result r;
  double t0 = wall_s();
  ck_ok(ctx, tune_measure(ctx, k, m->funcs[0], &o, NULL, &r));
  ck_assert_msg(r.status == TUNE_OK, "%s", r.error);
  ck_assert_int_gt(r.repeats, 2); /* a 64-element kernel takes far less than 10 ms */
  double took = wall_s() - t0;
  ck_assert_msg(took >= 0.02, "took %g s, %d repeats, median %g s", took, r.repeats, r.median_s);
  check_no_children();
  tune_built_free(k);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A store far outside its buffer (codegen does not check bounds): the worker dies from
 * SIGSEGV, reported as a run error; the test process carries on. */
START_TEST(test_crash_is_run_error) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_tir(ctx,
                                 "func @crash(A: buffer(float32, [8])) {\n"
                                 "  A[70368744177664i64] = 1f32;\n" /* 2^46 elements: 256 TiB */
                                 "}\n");
  tune_built *k = build(ctx, m->funcs[0]);
  tune_measure_opts o = quick_opts();
  tune_result r;
  ck_ok(ctx, tune_measure(ctx, k, m->funcs[0], &o, NULL, &r));
  ck_assert_int_eq(r.status, TUNE_RUN_ERROR);
  ck_assert_msg(strstr(r.error, "SIGSEGV") && strstr(r.error, "crash"), "error: %s", r.error);
  ck_assert_int_eq(r.repeats, 0);
  check_no_children();
  tune_built_free(k);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* An endless loop (2^62 iterations of a store LLVM cannot remove) is killed at the time
 * limit: TUNE_TIMEOUT within timeout + 1 s. */
START_TEST(test_endless_loop_times_out) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_tir(
      ctx,
      "func @spin(A: buffer(float32, [8])) {\n"
      "  for i: int64 in range(0i64, 4611686018427387904i64) {\n"
      "    A[i % 8i64] = A[(i + 3i64) % 8i64] * 0.5f32 + 1f32;\n"
      "  }\n"
      "}\n");
  tune_built *k = build(ctx, m->funcs[0]);
  tune_measure_opts o = quick_opts();
  o.timeout_s = 0.5;
  tune_result r;
  double t0 = wall_s();
  ck_ok(ctx, tune_measure(ctx, k, m->funcs[0], &o, NULL, &r));
  double took = wall_s() - t0;
  ck_assert_int_eq(r.status, TUNE_TIMEOUT);
  ck_assert_msg(strstr(r.error, "spin") && strstr(r.error, "time limit of 0.5 s"), "error: %s",
                r.error);
  ck_assert_msg(took >= 0.5 && took < 1.5, "took %g s", took);
  check_no_children();
  tune_built_free(k);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

static const char *twice_text =
    "func @f(A: buffer(float32, [4, 8]), B: buffer(float32, [4, 8])) {\n"
    "  for i: int64 in range(0i64, 4i64) {\n"
    "    for j: int64 in range(0i64, 8i64) { B[i, j] = A[i, j] * 2f32; }\n"
    "  }\n"
    "}\n";

/* Outputs compared with the reference: a correct kernel passes; one computing something else
 * and one that leaves an element unwritten (still NaN) are wrong results naming the element
 * and both values. */
START_TEST(test_wrong_result) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *good = parse_tir(ctx, twice_text);
  kiln_tir_module *bad = parse_tir(
      ctx,
      "func @f(A: buffer(float32, [4, 8]), B: buffer(float32, [4, 8])) {\n"
      "  for i: int64 in range(0i64, 4i64) {\n"
      "    for j: int64 in range(0i64, 8i64) { B[i, j] = A[i, j] * 3f32; }\n"
      "  }\n"
      "}\n");
  kiln_tir_module *partial = parse_tir(
      ctx,
      "func @f(A: buffer(float32, [4, 8]), B: buffer(float32, [4, 8])) {\n"
      "  for i: int64 in range(0i64, 4i64) {\n"
      "    for j: int64 in range(0i64, 7i64) { B[i, j] = A[i, j] * 2f32; }\n"
      "  }\n"
      "}\n");
  tune_measure_opts o = quick_opts();
  o.seed = 7;
  tune_reference *ref = NULL;
  ck_ok(ctx, tune_reference_outputs(ctx, good->funcs[0], o.seed, &ref));
  const void *const *refs = (const void *const *)ref->data;
  tune_result r;

  tune_built *k = build(ctx, good->funcs[0]);
  ck_ok(ctx, tune_measure(ctx, k, good->funcs[0], &o, refs, &r));
  ck_assert_msg(r.status == TUNE_OK, "%s", r.error);
  tune_built_free(k);

  k = build(ctx, bad->funcs[0]);
  ck_ok(ctx, tune_measure(ctx, k, bad->funcs[0], &o, refs, &r));
  ck_assert_int_eq(r.status, TUNE_WRONG_RESULT);
  ck_assert_msg(strstr(r.error, "output 'B': element [0, 0]") && strstr(r.error, "expected"),
                "error: %s", r.error);
  ck_assert_int_ge(r.repeats, 5); /* the timings are kept */
  /* without checking, the same kernel is fine */
  o.check = false;
  ck_ok(ctx, tune_measure(ctx, k, bad->funcs[0], &o, refs, &r));
  ck_assert_int_eq(r.status, TUNE_OK);
  o.check = true;
  tune_built_free(k);

  k = build(ctx, partial->funcs[0]);
  ck_ok(ctx, tune_measure(ctx, k, partial->funcs[0], &o, refs, &r));
  ck_assert_int_eq(r.status, TUNE_WRONG_RESULT);
  ck_assert_msg(strstr(r.error, "element [0, 7] (flat 7) is nan"), "error: %s", r.error);
  tune_built_free(k);
  check_no_children();

  tune_reference_free(ctx, ref);
  kiln_tir_module_free(partial);
  kiln_tir_module_free(bad);
  kiln_tir_module_free(good);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The kernel rejects its arguments (built for [4, 8], measured with a [4, 9] function of the
 * same name): a run error carrying the kernel's own message. */
/* tune_measure_capture: the outputs of a compiled kernel equal the interpreter's on the same
 * seeded inputs, then serve as the reference that catches a wrong kernel; a crashing kernel
 * captures nothing. */
START_TEST(test_capture_outputs_as_reference) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *good = parse_tir(ctx, twice_text);
  kiln_tir_module *bad = parse_tir(
      ctx,
      "func @f(A: buffer(float32, [4, 8]), B: buffer(float32, [4, 8])) {\n"
      "  for i: int64 in range(0i64, 4i64) {\n"
      "    for j: int64 in range(0i64, 8i64) { B[i, j] = A[i, j] * 3f32; }\n"
      "  }\n"
      "}\n");
  tune_measure_opts o = quick_opts();
  o.seed = 11;
  tune_reference *interp = NULL, *cap = NULL;
  ck_ok(ctx, tune_reference_outputs(ctx, good->funcs[0], o.seed, &interp));
  tune_built *k = build(ctx, good->funcs[0]);
  tune_result r;
  ck_ok(ctx, tune_measure_capture(ctx, k, good->funcs[0], &o, NULL, &r, &cap));
  ck_assert_int_eq(r.status, TUNE_OK);
  ck_assert_ptr_nonnull(cap);
  ck_assert_int_eq(cap->nout, 1);
  ck_assert_uint_eq(cap->bytes[0], interp->bytes[0]);
  ck_assert_int_eq(memcmp(cap->data[0], interp->data[0], cap->bytes[0]), 0);
  tune_built_free(k);

  k = build(ctx, bad->funcs[0]);
  ck_ok(ctx, tune_measure(ctx, k, bad->funcs[0], &o, (const void *const *)cap->data, &r));
  ck_assert_int_eq(r.status, TUNE_WRONG_RESULT);
  tune_built_free(k);

  kiln_tir_module *crash = parse_tir(ctx,
                                     "func @crash(A: buffer(float32, [8])) {\n"
                                     "  A[70368744177664i64] = 1f32;\n"
                                     "}\n");
  k = build(ctx, crash->funcs[0]);
  tune_reference *none = (tune_reference *)&r; /* must be reset to NULL */
  ck_ok(ctx, tune_measure_capture(ctx, k, crash->funcs[0], &o, NULL, &r, &none));
  ck_assert_int_eq(r.status, TUNE_RUN_ERROR);
  ck_assert_ptr_null(none);
  check_no_children();
  tune_built_free(k);
  tune_reference_free(ctx, cap);
  tune_reference_free(ctx, interp);
  kiln_tir_module_free(crash);
  kiln_tir_module_free(bad);
  kiln_tir_module_free(good);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The tolerance grows with the output's largest value (atol_of_max): an offset of 2e-5 on
 * outputs up to ~2 (float32 sums in another order differ like that) passes with the default
 * 1e-5 * max, and fails on the elements near 0 without it. */
START_TEST(test_tolerance_scales_with_max) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *good = parse_tir(ctx, twice_text);
  kiln_tir_module *near = parse_tir(
      ctx,
      "func @f(A: buffer(float32, [4, 8]), B: buffer(float32, [4, 8])) {\n"
      "  for i: int64 in range(0i64, 4i64) {\n"
      "    for j: int64 in range(0i64, 8i64) { B[i, j] = A[i, j] * 2f32 + 0.00002f32; }\n"
      "  }\n"
      "}\n");
  tune_measure_opts o = quick_opts();
  o.seed = 7;
  tune_reference *ref = NULL;
  ck_ok(ctx, tune_reference_outputs(ctx, good->funcs[0], o.seed, &ref));
  const void *const *refs = (const void *const *)ref->data;
  float max = 0;
  for (int e = 0; e < 32; e++) max = fmaxf(max, fabsf(((const float *)ref->data[0])[e]));
  ck_assert(max > 1.5f); /* 2 * uniform(-1, 1) */
  tune_built *k = build(ctx, near->funcs[0]);
  tune_result r;
  ck_ok(ctx, tune_measure(ctx, k, near->funcs[0], &o, refs, &r));
  ck_assert_msg(r.status == TUNE_OK, "%s", r.error);
  o.atol_of_max = 0;
  ck_ok(ctx, tune_measure(ctx, k, near->funcs[0], &o, refs, &r));
  ck_assert_int_eq(r.status, TUNE_WRONG_RESULT);
  tune_built_free(k);
  tune_reference_free(ctx, ref);
  kiln_tir_module_free(near);
  kiln_tir_module_free(good);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Cache flushing between samples: a kernel slow enough to be timed call by call (an
 * unscheduled 256 x 256 x 128 matmul, milliseconds) gets the flush buffer written once per
 * sample (every 64th byte incremented); a batched fast kernel would not. The slow cutoff
 * stops a kernel slower than it after its first call. */
START_TEST(test_flush_between_samples) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = lh_parse(ctx,
                             "def @main(%a: Tensor[(256, 128), float32], %b: Tensor[(128, 256), "
                             "float32]) {\n  nn.matmul(%a, %b)\n}\n");
  ir_arena *a = ir_arena_new(ctx);
  ir_func *pf = lh_lower(ctx, m, "main", a);
  tune_built *k = build(ctx, pf);
  static float A[256 * 128], B[128 * 256], C[256 * 256];
  int64_t sa[2] = {256, 128}, sb[2] = {128, 256}, sc[2] = {256, 256};
  kiln_tensor args[3] = {{A, 1, 0, 2, KILN_FLOAT32, sa, NULL, 0},
                         {B, 1, 0, 2, KILN_FLOAT32, sb, NULL, 0},
                         {C, 1, 0, 2, KILN_FLOAT32, sc, NULL, 0}};
  static unsigned char flush[64 * 1024];
  static double times[TUNE_MAX_REPEATS];
  int n = 0;
  ck_assert_int_eq(
      tune_time_calls_flushed(k, args, 1, 4, 0, flush, sizeof flush, 0, times, &n), 0);
  ck_assert_int_eq(n, 4);
  for (size_t i = 0; i < sizeof flush; i += 64) ck_assert_int_eq(flush[i], 4);
  ck_assert_int_eq(flush[1], 0); /* one write per cache line */
  for (int i = 0; i < n; i++) ck_assert(times[i] >= 1e-4);
  /* and through a forked worker: still ok */
  tune_measure_opts o = quick_opts();
  o.flush_bytes = 1 << 20;
  tune_result r;
  ck_ok(ctx, tune_measure(ctx, k, pf, &o, NULL, &r));
  ck_assert_msg(r.status == TUNE_OK, "%s", r.error);
  ck_assert_uint_eq(tune_measure_opts_default().flush_bytes, TUNE_FLUSH_BYTES);

  /* the slow cutoff: a first call longer than it is the only sample (no flush, no repeats),
   * with or without warmup calls; a cutoff the call stays below changes nothing */
  memset(flush, 0, sizeof flush);
  for (int warmup = 0; warmup <= 2; warmup++) {
    ck_assert_int_eq(
        tune_time_calls_flushed(k, args, warmup, 4, 0, flush, sizeof flush, 1e-7, times, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert(times[0] > 1e-7);
  }
  ck_assert_int_eq(flush[0], 0);
  ck_assert_int_eq(tune_time_calls_flushed(k, args, 1, 4, 0, NULL, 0, 100, times, &n), 0);
  ck_assert_int_eq(n, 4);
  o.slow_cutoff_s = 1e-7;
  ck_ok(ctx, tune_measure(ctx, k, pf, &o, NULL, &r));
  ck_assert_msg(r.status == TUNE_OK && r.repeats == 1 && r.median_s > 1e-7, "%s", r.error);
  ck_assert(tune_measure_opts_default().slow_cutoff_s == 0);
  tune_built_free(k);
  ir_arena_free(a);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_argument_error) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *built_from = parse_tir(ctx, twice_text);
  kiln_tir_module *other = parse_tir(
      ctx,
      "func @f(A: buffer(float32, [4, 9]), B: buffer(float32, [4, 9])) {\n"
      "  for i: int64 in range(0i64, 4i64) {\n"
      "    for j: int64 in range(0i64, 9i64) { B[i, j] = A[i, j]; }\n"
      "  }\n"
      "}\n");
  tune_built *k = build(ctx, built_from->funcs[0]);
  tune_measure_opts o = quick_opts();
  tune_result r;
  ck_ok(ctx, tune_measure(ctx, k, other->funcs[0], &o, NULL, &r));
  ck_assert_int_eq(r.status, TUNE_RUN_ERROR);
  ck_assert_msg(strstr(r.error, "argument 0 (A): expected float32 [4, 8]") &&
                    strstr(r.error, "shape error"),
                "error: %s", r.error);
  check_no_children();
  tune_built_free(k);
  kiln_tir_module_free(other);
  kiln_tir_module_free(built_from);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* What cannot be measured is an error status with a message naming the thing: a symbolic
 * dimension, a kernel measured with another function, bad options. */
START_TEST(test_unmeasurable) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *sym = parse_tir(ctx,
                                   "func @g(n: int64, A: buffer(float32, [n])) {\n"
                                   "  for i: int64 in range(0i64, n) { A[i] = 0f32; }\n"
                                   "}\n");
  kiln_tir_module *fixed = parse_tir(ctx, twice_text);
  tune_built *k = build(ctx, sym->funcs[0]);
  tune_result r;
  tune_measure_opts o = quick_opts();
  ck_assert_int_eq(tune_measure(ctx, k, sym->funcs[0], &o, NULL, &r), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "function 'g': scalar parameter 'n'");
  ck_assert_int_eq(r.status, TUNE_RUN_ERROR);
  ck_assert(strstr(r.error, "scalar parameter 'n'") != NULL);
  tune_reference *ref = NULL;
  ck_assert_int_eq(tune_reference_outputs(ctx, sym->funcs[0], 1, &ref), KILN_ERR_UNSUPPORTED);
  ck_assert_ptr_null(ref);

  ck_assert_int_eq(tune_measure(ctx, k, fixed->funcs[0], &o, NULL, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "kernel 'g' (2 parameters) was not built from function 'f'");
  tune_built_free(k);

  k = build(ctx, fixed->funcs[0]);
  o.timeout_s = 0;
  ck_assert_int_eq(tune_measure(ctx, k, fixed->funcs[0], &o, NULL, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "bad options (timeout 0 s");
  check_no_children();
  tune_built_free(k);
  kiln_tir_module_free(fixed);
  kiln_tir_module_free(sym);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A build that fails (codegen refuses a kernel named like a libm symbol) returns the error
 * with its message, leaves nothing allocated, and becomes a TUNE_BUILD_ERROR result. */
START_TEST(test_build_error) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_tir(ctx, "func @powf(A: buffer(float32, [4])) { A[0] = 1f32; }\n");
  tgt_target t = host_target(ctx);
  tune_built *k = (tune_built *)1;
  kiln_status st = tune_build(ctx, &t, m->funcs[0], &k);
  ck_assert_int_eq(st, KILN_ERR_UNSUPPORTED);
  ck_assert_ptr_null(k);
  ck_errmsg_has(ctx, "powf");
  tune_result r;
  tune_result_fail(&r, TUNE_BUILD_ERROR, kiln_context_errmsg(ctx));
  ck_assert_int_eq(r.status, TUNE_BUILD_ERROR);
  ck_assert_str_eq(tune_status_name(r.status), "build_error");
  ck_assert(strstr(r.error, "powf") != NULL);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Reference inputs depend on the seed alone: the same seed gives the same outputs, another
 * seed others; ints are exact. */
START_TEST(test_reference_seeded) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_tir(ctx,
                                 "func @h(A: buffer(int32, [16]), B: buffer(int32, [16])) {\n"
                                 "  for i: int64 in range(0i64, 16i64) { B[i] = A[i] * 3; }\n"
                                 "}\n");
  tune_reference *r1 = NULL, *r2 = NULL, *r3 = NULL;
  ck_ok(ctx, tune_reference_outputs(ctx, m->funcs[0], 5, &r1));
  ck_ok(ctx, tune_reference_outputs(ctx, m->funcs[0], 5, &r2));
  ck_ok(ctx, tune_reference_outputs(ctx, m->funcs[0], 6, &r3));
  ck_assert_int_eq(memcmp(r1->data[0], r2->data[0], 64), 0);
  ck_assert_int_ne(memcmp(r1->data[0], r3->data[0], 64), 0);
  const int32_t *v = r1->data[0];
  for (int i = 0; i < 16; i++) ck_assert(v[i] % 3 == 0 && v[i] >= -24 && v[i] < 24);

  /* the compiled kernel on tune_measure's inputs agrees; a wrong int is reported exactly */
  tune_built *k = build(ctx, m->funcs[0]);
  tune_measure_opts o = quick_opts();
  o.seed = 5;
  tune_result r;
  ck_ok(ctx, tune_measure(ctx, k, m->funcs[0], &o, (const void *const *)r1->data, &r));
  ck_assert_msg(r.status == TUNE_OK, "%s", r.error);
  int32_t *w = r1->data[0];
  w[3] += 1;
  ck_ok(ctx, tune_measure(ctx, k, m->funcs[0], &o, (const void *const *)r1->data, &r));
  ck_assert_int_eq(r.status, TUNE_WRONG_RESULT);
  char want[64];
  snprintf(want, sizeof want, "element [3] (flat 3) is %d, expected %d", w[3] - 1, w[3]);
  ck_assert_msg(strstr(r.error, want), "error: %s", r.error);
  check_no_children();
  tune_built_free(k);
  tune_reference_free(ctx, r3);
  tune_reference_free(ctx, r2);
  tune_reference_free(ctx, r1);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Allocation failures in tune_measure and tune_reference_outputs are KILN_ERR_NOMEM with
 * nothing leaked (every allocation failed in turn). */
START_TEST(test_nomem) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_tir(ctx, twice_text);
  tune_built *k = build(ctx, m->funcs[0]);
  tune_measure_opts o = quick_opts();
  o.min_repeats = 1;
  o.min_seconds = 0;
  for (long n = 1; n < 40; n++) {
    long base = ctx->nalloc;
    ctx->fail_at = base + n;
    tune_reference *ref = NULL;
    kiln_status st = tune_reference_outputs(ctx, m->funcs[0], 1, &ref);
    ctx->fail_at = 0;
    if (st == KILN_OK) {
      ctx->fail_at = ctx->nalloc + n;
      tune_result r;
      st = tune_measure(ctx, k, m->funcs[0], &o, (const void *const *)ref->data, &r);
      ctx->fail_at = 0;
      ck_assert(st == KILN_OK || st == KILN_ERR_NOMEM);
      if (st == KILN_OK) ck_assert_msg(r.status == TUNE_OK, "%s", r.error);
      else ck_assert_int_eq(r.status, TUNE_RUN_ERROR);
      tune_reference_free(ctx, ref);
    } else {
      ck_assert_int_eq(st, KILN_ERR_NOMEM);
      ck_assert_ptr_null(ref);
    }
  }
  check_no_children();
  tune_built_free(k);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("tune_measure");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_matmul_ok);
  tcase_add_test(tc, test_min_seconds);
  tcase_add_test(tc, test_crash_is_run_error);
  tcase_add_test(tc, test_endless_loop_times_out);
  tcase_add_test(tc, test_wrong_result);
  tcase_add_test(tc, test_capture_outputs_as_reference);
  tcase_add_test(tc, test_tolerance_scales_with_max);
  tcase_add_test(tc, test_flush_between_samples);
  tcase_add_test(tc, test_argument_error);
  tcase_add_test(tc, test_unmeasurable);
  tcase_add_test(tc, test_build_error);
  tcase_add_test(tc, test_reference_seeded);
  tcase_add_test(tc, test_nomem);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

/* test_sch_trace.c: the sampling instructions (sample_perfect_tile, sample_categorical) and
 * schedule traces: JSON round trips, malformed JSON (table of errors and a fuzzer), replay
 * on a fresh schedule (same function, same JSON), replay with re-sampled decisions, and the
 * golden trace in tests/golden/schedule that replays to a golden printed function. */
#include <math.h>

#include "ir/text.h"
#include "ir/verify.h"
#include "schedule/schedule.h"
#include "test_util.h"

/* ---- Helpers ----------------------------------------------------------------------------- */

/* Parses TIR text (comment lines allowed) into a module; the test fails on errors. */
static kiln_tir_module *parse_tir(kiln_context *ctx, const char *text) {
  char *src = kiln_test_strip_comment_lines(text);
  kiln_tir_module *m = NULL;
  ck_ok(ctx, kiln_tir_module_parse(ctx, src, strlen(src), "test", &m));
  free(src);
  ck_assert_int_ge(m->nfuncs, 1);
  return m;
}

static kiln_tir_module *parse_golden(kiln_context *ctx, const char *name) {
  char *text = kiln_test_read_golden("schedule", name, NULL);
  kiln_tir_module *m = parse_tir(ctx, text);
  free(text);
  return m;
}

/* The elements of a buffer with a constant shape. */
static size_t buffer_elems(const ir_buffer *b) {
  size_t n = 1;
  for (int d = 0; d < b->ndim; d++) {
    const ir_int_imm *e = ir_as_int(b->shape[d]);
    ck_assert_ptr_nonnull(e);
    n *= (size_t)e->value;
  }
  return n;
}

/* Runs f (float32 buffer parameters) on fixed small-integer inputs (so sums are exact in any
 * order) and returns the parameters' contents after the run, concatenated (malloc'd). */
static float *run_func(kiln_context *ctx, const ir_func *f, size_t *total) {
  size_t n = 0, off = 0;
  for (int p = 0; p < f->nparams; p++) n += buffer_elems(ir_as_buffer(f->params[p]));
  float *all = malloc(n * sizeof *all);
  void *args[8];
  ck_assert_int_le(f->nparams, 8);
  for (int p = 0; p < f->nparams; p++) {
    size_t m = buffer_elems(ir_as_buffer(f->params[p]));
    for (size_t i = 0; i < m; i++) all[off + i] = (float)((int)((i * 7 + (size_t)p * 3) % 5) - 2);
    args[p] = all + off;
    off += m;
  }
  ck_ok(ctx, ir_interpret(ctx, f, f->nparams, args));
  *total = n;
  return all;
}

/* f computes bit for bit what g computes, and f is well formed. */
static void check_same_results(kiln_context *ctx, const ir_func *f, const ir_func *g) {
  ck_ok(ctx, ir_verify_func(ctx, f));
  size_t nf, ng;
  float *a = run_func(ctx, f, &nf), *b = run_func(ctx, g, &ng);
  ck_assert_uint_eq(nf, ng);
  ck_assert_int_eq(memcmp(a, b, nf * sizeof *a), 0);
  free(a);
  free(b);
}

/* One loop of the given extent around a block, for sampling. */
static kiln_tir_module *loop_func(kiln_context *ctx, long long extent) {
  char text[1024];
  snprintf(text, sizeof text,
           "func @f(A: buffer(float32, [%lldi64])) {\n"
           "  block \"root\"() {\n"
           "    for i: int64 in range(0i64, %lldi64) {\n"
           "      block \"A\"(vi: int64 = spatial(0i64, %lldi64) <- i) {\n"
           "        writes(A[vi])\n"
           "        A[vi] = 1f32;\n"
           "      }\n"
           "    }\n"
           "  }\n"
           "}\n",
           extent, extent, extent);
  return parse_tir(ctx, text);
}

/* The loop RV of the only loop of loop_func. */
static sch_rv the_loop(kiln_context *ctx, sch_schedule *s) {
  sch_rv b, *loops;
  int n;
  ck_ok(ctx, sch_get_block(s, "A", &b));
  ck_ok(ctx, sch_get_loops(s, b, &n, &loops));
  ck_assert_int_eq(n, 1);
  return loops[0];
}

static int64_t rv_value(kiln_context *ctx, sch_schedule *s, sch_rv rv) {
  int64_t v;
  ck_ok(ctx, sch_rv_int(s, rv, &v));
  return v;
}

static char *trace_json(kiln_context *ctx, const sch_trace *t) {
  char *json = NULL;
  size_t len = 0;
  ck_ok(ctx, sch_trace_to_json(ctx, t, &json, &len));
  ck_assert_uint_eq(len, strlen(json));
  return json;
}

/* A trace over matmul_relu: queries and sampling instructions. */
static void record_matmul_trace(kiln_context *ctx, sch_schedule *s) {
  sch_rv c, root, *loops, *kids, tiles[3], jt[2], cat;
  int n;
  ck_ok(ctx, sch_get_block(s, "C", &c));
  ck_ok(ctx, sch_get_loops(s, c, &n, &loops));
  ck_assert_int_eq(n, 3);
  ck_ok(ctx, sch_get_block(s, "root", &root));
  ck_ok(ctx, sch_get_child_blocks(s, root, &n, &kids));
  ck_assert_int_eq(n, 2);
  ck_ok(ctx, sch_sample_perfect_tile(s, loops[0], 3, 8, NULL, tiles));
  ck_ok(ctx, sch_sample_perfect_tile(s, loops[1], 2, 16, NULL, jt));
  int64_t cands[3] = {0, 16, 64};
  double probs[3] = {0.1, 1.0 / 3.0, 0.5};
  ck_ok(ctx, sch_sample_categorical(s, 3, cands, probs, NULL, &cat));
  ck_ok(ctx, sch_get_child_blocks(s, loops[2], &n, &kids));
  ck_assert_int_eq(n, 1);
}

/* A tiling of matmul_relu with sampled factors (what matmul_relu_tile.json fixes): perfect
 * tiles of i and j, split, reorder, vectorize, parallel; the relu stage fused and split by a
 * sampled categorical factor (not always dividing). Instructions 2, 3 and 12 sample. */
static void record_tiling_trace(kiln_context *ctx, sch_schedule *s) {
  sch_rv c, d, *l, *dl, ti[2], tj[2], i2[2], j2[2], fused, cat, fs[2];
  int n;
  ck_ok(ctx, sch_get_block(s, "C", &c));
  ck_ok(ctx, sch_get_loops(s, c, &n, &l));
  ck_ok(ctx, sch_sample_perfect_tile(s, l[0], 2, 16, NULL, ti));
  ck_ok(ctx, sch_sample_perfect_tile(s, l[1], 2, 16, NULL, tj));
  ck_ok(ctx, sch_split(s, l[0], 2, ti, i2));
  ck_ok(ctx, sch_split(s, l[1], 2, tj, j2));
  sch_rv order[5] = {i2[0], j2[0], l[2], i2[1], j2[1]};
  ck_ok(ctx, sch_reorder(s, 5, order));
  ck_ok(ctx, sch_vectorize(s, j2[1]));
  ck_ok(ctx, sch_parallel(s, i2[0]));
  ck_ok(ctx, sch_get_block(s, "D", &d));
  ck_ok(ctx, sch_get_loops(s, d, &n, &dl));
  ck_ok(ctx, sch_fuse(s, 2, dl, &fused));
  int64_t cands[4] = {7, 10, 32, 64};
  double probs[4] = {1, 1, 1, 1};
  ck_ok(ctx, sch_sample_categorical(s, 4, cands, probs, NULL, &cat));
  sch_rv fac[2] = {sch_int(s, -1), cat};
  ck_ok(ctx, sch_split(s, fused, 2, fac, fs));
  ck_ok(ctx, sch_parallel(s, fs[0]));
}

/* ---- sample_perfect_tile ----------------------------------------------------------------- */

/* Every sampled tiling is perfect and respects the bound, the decision equals the output
 * values, and over many draws every allowed innermost factor shows up. */
START_TEST(test_perfect_tile_statistics) {
  kiln_context *ctx = kiln_test_new_ctx();
  static const long long extents[] = {1, 7, 64, 96, 1000, 65537LL * 65539LL};
  static const int bounds[] = {0, 1, 4, 16, 64};
  for (size_t e = 0; e < sizeof extents / sizeof *extents; e++) {
    kiln_tir_module *m = loop_func(ctx, extents[e]);
    sch_schedule *s = sch_new(ctx, m->funcs[0], 1234 + e);
    ck_assert_ptr_nonnull(s);
    sch_rv loop = the_loop(ctx, s);
    for (int n = 1; n <= 4; n++)
      for (size_t bi = 0; bi < sizeof bounds / sizeof *bounds; bi++) {
        int bound = bounds[bi];
        int64_t lim = bound > 0 ? bound : INT64_MAX;
        if (n == 1 && extents[e] > lim) continue; /* an error, tested below */
        bool seen[65] = {false};                  /* innermost factors <= 64 drawn */
        for (int draw = 0; draw < 150; draw++) {
          sch_rv out[4];
          ck_ok(ctx, sch_sample_perfect_tile(s, loop, n, bound, NULL, out));
          const sch_inst *in = &s->trace.insts[s->trace.ninsts - 1];
          ck_assert_int_eq(in->kind, SCH_INST_SAMPLE_PERFECT_TILE);
          ck_assert_int_eq(in->ndecision, n);
          ck_assert_int_eq(in->noutputs, n);
          long long prod = 1;
          for (int i = 0; i < n; i++) {
            int64_t v = rv_value(ctx, s, out[i]);
            ck_assert_int_ge(v, 1);
            ck_assert_int_eq(v, in->decision[i]);
            ck_assert_int_eq(in->outputs[i], out[i]);
            prod *= v;
          }
          ck_assert_int_eq(prod, extents[e]);
          int64_t inner = rv_value(ctx, s, out[n - 1]);
          ck_assert_int_le(inner, lim);
          if (inner <= 64) seen[inner] = true;
        }
        /* every divisor allowed as innermost (up to 64) appears for n >= 2 */
        if (n >= 2)
          for (long long d = 1; d <= 64 && d <= lim; d++)
            if (extents[e] % d == 0)
              ck_assert_msg(seen[d], "extent %lld n %d bound %d: innermost %lld never drawn",
                            extents[e], n, bound, d);
      }
    sch_free(s);
    kiln_tir_module_free(m);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* With n = 3 the outer factors vary too: for extent 64 many distinct tilings appear. */
START_TEST(test_perfect_tile_spreads_outer_factors) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = loop_func(ctx, 64);
  sch_schedule *s = sch_new(ctx, m->funcs[0], 99);
  sch_rv loop = the_loop(ctx, s);
  bool seen[7][7] = {{false}}; /* log2 of the outer two factors */
  int distinct = 0;
  for (int draw = 0; draw < 400; draw++) {
    sch_rv out[3];
    ck_ok(ctx, sch_sample_perfect_tile(s, loop, 3, 0, NULL, out));
    int a = __builtin_ctzll((unsigned long long)rv_value(ctx, s, out[0]));
    int b = __builtin_ctzll((unsigned long long)rv_value(ctx, s, out[1]));
    if (!seen[a][b]) distinct++;
    seen[a][b] = true;
  }
  ck_assert_int_ge(distinct, 20); /* 28 tilings of 2^6 into 3 factors exist */
  sch_free(s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_perfect_tile_decision) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = loop_func(ctx, 96);
  sch_schedule *s = sch_new(ctx, m->funcs[0], 5);
  sch_rv loop = the_loop(ctx, s);
  sch_rv out[3];
  int64_t good[3] = {3, 4, 8};
  ck_ok(ctx, sch_sample_perfect_tile(s, loop, 3, 8, good, out));
  for (int i = 0; i < 3; i++) ck_assert_int_eq(rv_value(ctx, s, out[i]), good[i]);
  ck_assert_int_eq(s->trace.insts[s->trace.ninsts - 1].decision[2], 8);

  /* invalid decisions: nothing recorded, nothing changed */
  struct {
    int n, bound;
    int64_t d[3];
    const char *msg;
  } cases[] = {
      {3, 8, {3, 4, 4}, "multiplies to 48, not its extent 96"},
      {3, 8, {96, 96, 1}, "multiplies to more than its extent 96"},
      {3, 4, {3, 4, 8}, "innermost factor 8 above max_innermost 4"},
      {2, 0, {0, 96}, "has a factor below 1"},
      {2, 0, {-2, -48}, "has a factor below 1"},
  };
  int before = s->trace.ninsts;
  ir_func *f = s->func;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ck_assert_int_eq(sch_sample_perfect_tile(s, loop, cases[i].n, cases[i].bound, cases[i].d, out),
                     KILN_ERR_SCHEDULE);
    ck_errmsg_has(ctx, "sample_perfect_tile: decision");
    ck_errmsg_has(ctx, "loop 'i'");
    ck_errmsg_has(ctx, cases[i].msg);
  }
  ck_assert_int_eq(s->trace.ninsts, before);
  ck_assert_ptr_eq(s->func, f);
  sch_free(s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_perfect_tile_errors) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = loop_func(ctx, 96);
  sch_schedule *s = sch_new(ctx, m->funcs[0], 5);
  sch_rv loop = the_loop(ctx, s), out[SCH_MAX_INST_ARGS + 1], blk;
  ck_ok(ctx, sch_get_block(s, "A", &blk));
  int before = s->trace.ninsts;

  ck_assert_int_eq(sch_sample_perfect_tile(s, loop, 0, 0, NULL, out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "number of factors for loop 'i' must be between 1 and 64, got 0");
  ck_assert_int_eq(sch_sample_perfect_tile(s, loop, 65, 0, NULL, out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "got 65");
  ck_assert_int_eq(sch_sample_perfect_tile(s, loop, 1, 16, NULL, out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "loop 'i' of extent 96 cannot be one tile of at most 16");
  /* misuse: a block where a loop is expected, an unknown RV, no output array */
  ck_assert_int_eq(sch_sample_perfect_tile(s, blk, 2, 0, NULL, out), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "expected a loop, got a block");
  ck_assert_int_eq(sch_sample_perfect_tile(s, 9999, 2, 0, NULL, out), KILN_ERR_MISUSE);
  ck_assert_int_eq(sch_sample_perfect_tile(s, loop, 2, 0, NULL, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(sch_sample_perfect_tile(NULL, loop, 2, 0, NULL, out), KILN_ERR_MISUSE);
  ck_assert_int_eq(s->trace.ninsts, before);

  /* the replay entry: decision count and argument checks */
  sch_arg in[3] = {{SCH_ARG_RV, loop, 0, NULL}, sch_arg_int(2), sch_arg_int(0)};
  int64_t d3[3] = {2, 4, 12};
  int nout;
  ck_assert_int_eq(sch_apply_sample_perfect_tile(s, 3, in, 3, d3, out, &nout), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "the decision has 3 factors, expected 2");
  in[1] = sch_arg_float(2);
  ck_assert_int_eq(sch_apply_sample_perfect_tile(s, 3, in, -1, NULL, out, &nout), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "sample_perfect_tile takes a loop, n and max_innermost");
  in[1] = sch_arg_int(2);
  in[2] = sch_arg_int(1LL << 40);
  ck_assert_int_eq(sch_apply_sample_perfect_tile(s, 3, in, -1, NULL, out, &nout), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "max_innermost = 1099511627776 is out of range");
  ck_assert_int_eq(s->trace.ninsts, before);
  sch_free(s);
  kiln_tir_module_free(m);

  /* a loop whose extent is not a constant */
  m = parse_tir(ctx,
                "func @g(n: int64, A: buffer(float32, [16i64])) {\n"
                "  block \"root\"() {\n"
                "    for i: int64 in range(0i64, n) {\n"
                "      block \"A\"(vi: int64 = spatial(0i64, 16i64) <- i) {\n"
                "        writes(A[vi])\n"
                "        A[vi] = 1f32;\n"
                "      }\n"
                "    }\n"
                "  }\n"
                "}\n");
  s = sch_new(ctx, m->funcs[0], 5);
  loop = the_loop(ctx, s);
  ck_assert_int_eq(sch_sample_perfect_tile(s, loop, 2, 0, NULL, out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "sample_perfect_tile: loop 'i' has no constant extent");
  sch_free(s);
  kiln_tir_module_free(m);

  /* extent 0 */
  m = loop_func(ctx, 0);
  s = sch_new(ctx, m->funcs[0], 5);
  loop = the_loop(ctx, s);
  ck_assert_int_eq(sch_sample_perfect_tile(s, loop, 2, 0, NULL, out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "loop 'i' has extent 0");
  sch_free(s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- sample_categorical ------------------------------------------------------------------ */

START_TEST(test_categorical_frequencies) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = loop_func(ctx, 8);
  sch_schedule *s = sch_new(ctx, m->funcs[0], 77);
  int64_t cands[4] = {10, 20, 30, 40};
  double probs[4] = {1, 2, 3, 0}; /* not normalized */
  int counts[4] = {0};
  enum { DRAWS = 6000 };
  for (int i = 0; i < DRAWS; i++) {
    sch_rv out;
    ck_ok(ctx, sch_sample_categorical(s, 4, cands, probs, NULL, &out));
    const sch_inst *in = &s->trace.insts[s->trace.ninsts - 1];
    ck_assert_int_eq(in->ndecision, 1);
    int64_t idx = in->decision[0];
    ck_assert(idx >= 0 && idx < 4);
    ck_assert_int_eq(rv_value(ctx, s, out), cands[idx]);
    counts[idx]++;
  }
  /* expected 1000 / 2000 / 3000 / 0 (standard deviations about 30-40) */
  ck_assert_int_lt(abs(counts[0] - 1000), 150);
  ck_assert_int_lt(abs(counts[1] - 2000), 150);
  ck_assert_int_lt(abs(counts[2] - 3000), 150);
  ck_assert_int_eq(counts[3], 0);

  /* the recorded inputs: [n, candidates..., probabilities...] */
  const sch_inst *in = &s->trace.insts[0];
  ck_assert_int_eq(in->ninputs, 9);
  ck_assert_int_eq(in->inputs[0].kind, SCH_ARG_INT);
  ck_assert_int_eq(in->inputs[0].i, 4);
  ck_assert_int_eq(in->inputs[3].i, 30);
  ck_assert_int_eq(in->inputs[7].kind, SCH_ARG_FLOAT);
  ck_assert(in->inputs[7].f == 3.0);

  /* a single candidate; a given decision */
  sch_rv out;
  double one[1] = {0.5};
  ck_ok(ctx, sch_sample_categorical(s, 1, cands, one, NULL, &out));
  ck_assert_int_eq(rv_value(ctx, s, out), 10);
  int64_t pick = 2;
  ck_ok(ctx, sch_sample_categorical(s, 4, cands, probs, &pick, &out));
  ck_assert_int_eq(rv_value(ctx, s, out), 30);
  sch_free(s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_categorical_errors) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = loop_func(ctx, 8);
  sch_schedule *s = sch_new(ctx, m->funcs[0], 77);
  int64_t cands[32] = {10, 20, 30};
  double probs[32] = {1, 1, 1};
  sch_rv out;
  int64_t d;
  ck_assert_int_eq(sch_sample_categorical(s, 0, cands, probs, NULL, &out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "sample_categorical: the number of candidates must be between 1 and 31, got 0");
  ck_assert_int_eq(sch_sample_categorical(s, 32, cands, probs, NULL, &out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "got 32");
  double neg[3] = {1, -0.5, 1};
  ck_assert_int_eq(sch_sample_categorical(s, 3, cands, neg, NULL, &out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "probability 1 of candidate 20 is -0.5");
  double nan3[3] = {1, 1, NAN};
  ck_assert_int_eq(sch_sample_categorical(s, 3, cands, nan3, NULL, &out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "probability 2 of candidate 30");
  double inf3[3] = {1, INFINITY, 1};
  ck_assert_int_eq(sch_sample_categorical(s, 3, cands, inf3, NULL, &out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "must be finite and >= 0");
  double zero[3] = {0, 0, 0};
  ck_assert_int_eq(sch_sample_categorical(s, 3, cands, zero, NULL, &out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "the probabilities sum to 0");
  double big[3] = {1e308, 1e308, 1};
  ck_assert_int_eq(sch_sample_categorical(s, 3, cands, big, NULL, &out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "the probabilities sum to inf");
  d = 3;
  ck_assert_int_eq(sch_sample_categorical(s, 3, cands, probs, &d, &out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "decision 3 is not a candidate index (there are 3)");
  d = -1;
  ck_assert_int_eq(sch_sample_categorical(s, 3, cands, probs, &d, &out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "decision -1 is not a candidate index");
  double p0[3] = {1, 0, 1};
  d = 1;
  ck_assert_int_eq(sch_sample_categorical(s, 3, cands, p0, &d, &out), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "decision 1 picks candidate 20, whose probability is 0");
  ck_assert_int_eq(sch_sample_categorical(s, 3, NULL, probs, NULL, &out), KILN_ERR_MISUSE);
  ck_assert_int_eq(sch_sample_categorical(s, 3, cands, probs, NULL, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(s->trace.ninsts, 0);

  /* the replay entry */
  sch_arg in[7] = {sch_arg_int(3), sch_arg_int(10), sch_arg_int(20), sch_arg_int(30),
                   sch_arg_float(1), sch_arg_int(2), sch_arg_float(0)};
  sch_rv outs[SCH_MAX_INST_ARGS];
  int nout;
  int64_t two[2] = {0, 1};
  ck_ok(ctx, sch_apply_sample_categorical(s, 7, in, 1, &two[1], outs, &nout));
  ck_assert_int_eq(nout, 1);
  ck_assert_int_eq(rv_value(ctx, s, outs[0]), 20);
  ck_assert_int_eq(sch_apply_sample_categorical(s, 7, in, 2, two, outs, &nout),
                   KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "the decision has 2 values, expected 1");
  ck_assert_int_eq(sch_apply_sample_categorical(s, 6, in, -1, NULL, outs, &nout), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "sample_categorical takes n (1 to 31)");
  in[2] = sch_arg_float(20);
  ck_assert_int_eq(sch_apply_sample_categorical(s, 7, in, -1, NULL, outs, &nout), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "candidate 1 is not an integer");
  in[2] = sch_arg_int(20);
  in[5] = sch_arg_str("x");
  ck_assert_int_eq(sch_apply_sample_categorical(s, 7, in, -1, NULL, outs, &nout), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "probability 1 is not a number");
  sch_free(s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- JSON ------------------------------------------------------------------------------- */

/* to_json -> from_json -> to_json gives the same text, and the text says what it should. */
START_TEST(test_json_round_trip) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_golden(ctx, "matmul_relu.tir");
  sch_schedule *s = sch_new(ctx, m->funcs[0], 42);
  sch_int(s, 7); /* a constant takes an RV index but never shows in the trace */
  record_matmul_trace(ctx, s);
  char *json = trace_json(ctx, &s->trace);
  ck_assert_msg(strncmp(json, "{\"version\": 1, \"insts\": [\n"
                              "  {\"kind\": \"get_block\", \"inputs\": [{\"s\": \"C\"}], "
                              "\"outputs\": [0]},\n"
                              "  {\"kind\": \"get_loops\", \"inputs\": [\"$0\"], "
                              "\"outputs\": [1, 2, 3]},\n", 150) == 0, "%s", json);
  ck_assert_ptr_nonnull(strstr(json, "{\"kind\": \"sample_perfect_tile\", \"inputs\": "
                                     "[\"$1\", 3, 8], \"outputs\": [7, 8, 9], \"decision\": ["));
  ck_assert_ptr_nonnull(strstr(json, "\"inputs\": [3, 0, 16, 64, {\"f\": 0.1}, "
                                     "{\"f\": 0.3333333333333333}, {\"f\": 0.5}]"));
  ck_assert_ptr_nonnull(strstr(json, "{\"kind\": \"get_child_blocks\", \"inputs\": [\"$3\"], "
                                     "\"outputs\": [13]}\n]}\n"));

  ir_arena *a = ir_arena_new(ctx);
  sch_trace t;
  ck_ok(ctx, sch_trace_from_json(ctx, a, json, &t));
  ck_assert_int_eq(t.ninsts, s->trace.ninsts);
  ck_assert_int_eq(t.insts[6].ninputs, 7);
  ck_assert(t.insts[6].inputs[5].kind == SCH_ARG_FLOAT && t.insts[6].inputs[5].f == 1.0 / 3.0);
  ck_assert_int_eq(t.insts[1].ndecision, -1);
  char *again = trace_json(ctx, &t);
  ck_assert_str_eq(again, json);
  kiln_string_free(ctx, again);
  kiln_string_free(ctx, json);

  /* literals of every kind, built by hand: awkward floats and strings, negative and large
   * integers, an empty decision, out-of-order RV numbering (renumbered on output) */
  sch_arg in0[] = {sch_arg_str("a \"q\" \\ \n\t\r\x01 \xc3\xa9"), sch_arg_float(-0.0),
                   sch_arg_float(1e300), sch_arg_float(5e-324), sch_arg_float(INFINITY),
                   sch_arg_float(-INFINITY), sch_arg_float(NAN), sch_arg_int(-9007199254740992LL),
                   sch_arg_int(9007199254740992LL), sch_arg_float(0.1 + 0.2)};
  sch_rv out0[2] = {40, 17};
  sch_arg in1[] = {{SCH_ARG_RV, 17, 0, NULL}, {SCH_ARG_RV, 40, 0, NULL}};
  int64_t dec[1];
  sch_inst insts[2] = {
      {SCH_INST_ANNOTATE, 10, in0, 2, out0, -1, NULL},
      {SCH_INST_SAMPLE_CATEGORICAL, 2, in1, 0, NULL, 0, dec},
  };
  sch_trace hand = {.arena = a, .ninsts = 2, .cap = 2, .insts = insts};
  json = trace_json(ctx, &hand);
  ck_assert_str_eq(json,
                   "{\"version\": 1, \"insts\": [\n"
                   "  {\"kind\": \"annotate\", \"inputs\": [{\"s\": \"a \\\"q\\\" \\\\ \\n\\t\\r"
                   "\\u0001 \xc3\xa9\"}, {\"f\": -0}, {\"f\": 1e+300}, {\"f\": 5e-324}, "
                   "{\"f\": \"inf\"}, {\"f\": \"-inf\"}, {\"f\": \"nan\"}, -9007199254740992, "
                   "9007199254740992, {\"f\": 0.30000000000000004}], \"outputs\": [0, 1]},\n"
                   "  {\"kind\": \"sample_categorical\", \"inputs\": [\"$1\", \"$0\"], "
                   "\"outputs\": [], \"decision\": []}\n"
                   "]}\n");
  ck_ok(ctx, sch_trace_from_json(ctx, a, json, &t));
  ck_assert_str_eq(t.insts[0].inputs[0].s, in0[0].s);
  ck_assert(signbit(t.insts[0].inputs[1].f) && t.insts[0].inputs[1].f == 0);
  ck_assert(t.insts[0].inputs[3].f == 5e-324);
  ck_assert(isnan(t.insts[0].inputs[6].f));
  ck_assert_int_eq(t.insts[0].inputs[8].i, 9007199254740992LL);
  ck_assert(t.insts[0].inputs[9].f == 0.1 + 0.2);
  ck_assert_int_eq(t.insts[1].ndecision, 0);
  again = trace_json(ctx, &t);
  ck_assert_str_eq(again, json);
  kiln_string_free(ctx, again);
  kiln_string_free(ctx, json);

  /* an empty trace */
  sch_trace empty = {.arena = a};
  json = trace_json(ctx, &empty);
  ck_assert_str_eq(json, "{\"version\": 1, \"insts\": []}\n");
  ck_ok(ctx, sch_trace_from_json(ctx, a, json, &t));
  ck_assert_int_eq(t.ninsts, 0);
  kiln_string_free(ctx, json);

  ir_arena_free(a);
  sch_free(s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Traces that cannot be written. */
START_TEST(test_json_write_errors) {
  kiln_context *ctx = kiln_test_new_ctx();
  sch_arg big[1] = {sch_arg_int(9007199254740993LL)};
  sch_rv o[1] = {0};
  sch_inst in1 = {SCH_INST_ANNOTATE, 1, big, 1, o, -1, NULL};
  sch_trace t = {.ninsts = 1, .cap = 1, .insts = &in1};
  char *json = NULL;
  ck_assert_int_eq(sch_trace_to_json(ctx, &t, &json, NULL), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "instruction 0: integer input 9007199254740993 is beyond 2^53");
  int64_t dec[1] = {-(1LL << 60)};
  sch_inst in2 = {SCH_INST_SAMPLE_CATEGORICAL, 0, NULL, 0, NULL, 1, dec};
  t.insts = &in2;
  ck_assert_int_eq(sch_trace_to_json(ctx, &t, &json, NULL), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "decision -1152921504606846976 is beyond 2^53");
  sch_arg rv[1] = {{SCH_ARG_RV, 3, 0, NULL}};
  sch_inst in3 = {SCH_INST_GET_LOOPS, 1, rv, 0, NULL, -1, NULL};
  t.insts = &in3;
  ck_assert_int_eq(sch_trace_to_json(ctx, &t, &json, NULL), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "instruction 0 (get_loops): input 0 is RV 3, which no earlier instruction");
  sch_inst in4 = {SCH_INST_GET_LOOPS, 1, NULL, 0, NULL, -1, NULL};
  t.insts = &in4;
  ck_assert_int_eq(sch_trace_to_json(ctx, &t, &json, NULL), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "instruction 0 (get_loops) lacks the arrays its counts announce");
  t.insts = &in3;
  in3.kind = SCH_INST_COUNT;
  ck_assert_int_eq(sch_trace_to_json(ctx, &t, &json, NULL), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "instruction 0 has no valid kind");
  ck_assert_int_eq(sch_trace_to_json(ctx, NULL, &json, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(sch_trace_to_json(ctx, &t, NULL, NULL), KILN_ERR_MISUSE);
  ck_assert_ptr_null(json);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Every malformation: KILN_ERR_PARSE with a message naming the instruction and the problem. */
START_TEST(test_json_read_errors) {
  static const struct {
    const char *json, *msg;
  } cases[] = {
      {"", "malformed JSON at byte 0"},
      {"{\"version\": 1, \"insts\": [}", "malformed JSON at byte 25"},
      {"{\"version\": 1, \"insts\": []} x", "malformed JSON"},
      {"[1]", "the JSON is not an object"},
      {"{\"insts\": []}", "no integer \"version\""},
      {"{\"version\": \"1\", \"insts\": []}", "no integer \"version\""},
      {"{\"version\": 2, \"insts\": []}", "unsupported version 2 (this kiln reads version 1)"},
      {"{\"version\": 1}", "no \"insts\" array"},
      {"{\"version\": 1, \"insts\": {}}", "no \"insts\" array"},
      {"{\"version\": 1, \"insts\": [], \"extra\": 0}", "unknown field \"extra\""},
      {"{\"version\": 1, \"version\": 1, \"insts\": []}", "field \"version\" appears twice"},
      {"{\"version\": 1, \"insts\": [3]}", "instruction 0: not an object"},
      {"{\"version\": 1, \"insts\": [{\"inputs\": [], \"outputs\": []}]}",
       "instruction 0: no \"kind\""},
      {"{\"version\": 1, \"insts\": [{\"kind\": 5, \"inputs\": [], \"outputs\": []}]}",
       "instruction 0: \"kind\" is not a string"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"tile\", \"inputs\": [], \"outputs\": []}]}",
       "instruction 0: unknown instruction kind \"tile\""},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"get_block\", \"outputs\": [0]}]}",
       "instruction 0 (get_block): no \"inputs\""},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"get_block\", \"inputs\": [{\"s\": \"C\"}]}]}",
       "instruction 0 (get_block): no \"outputs\""},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"get_block\", \"inputs\": [{\"s\": \"C\"}], "
       "\"outputs\": [0], \"decison\": [1]}]}",
       "instruction 0 (get_block): unknown field \"decison\""},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"get_block\", \"kind\": \"get_block\", "
       "\"inputs\": [], \"outputs\": []}]}",
       "field \"kind\" appears twice"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"get_block\", \"inputs\": [{\"s\": \"C\"}], "
       "\"outputs\": [0], \"decision\": [1]}]}",
       "instruction 0 (get_block): only sampling instructions have a decision"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"get_block\", \"inputs\": {}, "
       "\"outputs\": [0]}]}",
       "\"inputs\" is not an array"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"get_block\", \"inputs\": [{\"s\": \"C\"}], "
       "\"outputs\": [-1]}]}",
       "output 0 is not an RV index"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"get_block\", \"inputs\": [{\"s\": \"C\"}], "
       "\"outputs\": [2147483648]}]}",
       "output 0 is not an RV index"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"get_block\", \"inputs\": [{\"s\": \"C\"}], "
       "\"outputs\": [\"$0\"]}]}",
       "output 0 is not an RV index"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"get_loops\", \"inputs\": [\"$0\"], "
       "\"outputs\": []}]}",
       "instruction 0 (get_loops): input 0: $0 is not an output of an earlier instruction"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"get_block\", \"inputs\": [{\"s\": \"C\"}], "
       "\"outputs\": [0]}, {\"kind\": \"get_loops\", \"inputs\": [\"$1\"], \"outputs\": [1]}]}",
       "instruction 1 (get_loops): input 0: $1 is not an output"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"get_loops\", \"inputs\": [\"0\"], "
       "\"outputs\": []}]}",
       "input 0: the string \"0\" is not an RV reference"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"get_loops\", \"inputs\": [\"$-1\"], "
       "\"outputs\": []}]}",
       "is not an RV reference"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"get_loops\", \"inputs\": [\"$99999999999\"], "
       "\"outputs\": []}]}",
       "is not an RV reference"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"annotate\", \"inputs\": [1.5], "
       "\"outputs\": []}]}",
       "instruction 0 (annotate): input 0: 1.5 is not an integer within +-2^53"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"annotate\", \"inputs\": [1e17], "
       "\"outputs\": []}]}",
       "is not an integer within +-2^53"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"annotate\", \"inputs\": [null], "
       "\"outputs\": []}]}",
       "input 0 is neither an RV reference, an integer"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"annotate\", \"inputs\": [[1]], "
       "\"outputs\": []}]}",
       "input 0 is neither"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"annotate\", \"inputs\": [{}], "
       "\"outputs\": []}]}",
       "input 0: an object input must have exactly one field"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"annotate\", \"inputs\": [{\"f\": 1, \"s\": "
       "\"x\"}], \"outputs\": []}]}",
       "exactly one field"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"annotate\", \"inputs\": [{\"g\": 1}], "
       "\"outputs\": []}]}",
       "exactly one field"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"annotate\", \"inputs\": [{\"s\": 1}], "
       "\"outputs\": []}]}",
       "input 0: \"s\" must be a string"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"annotate\", \"inputs\": [{\"f\": \"big\"}], "
       "\"outputs\": []}]}",
       "input 0: \"f\" must be a number, \"inf\", \"-inf\" or \"nan\""},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"annotate\", \"inputs\": [{\"f\": true}], "
       "\"outputs\": []}]}",
       "\"f\" must be a number"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"annotate\", \"inputs\": [{\"f\": 1e999}], "
       "\"outputs\": []}]}",
       "the float is out of range"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"sample_categorical\", \"inputs\": [1, 2, "
       "{\"f\": 1}], \"outputs\": [0], \"decision\": [0.5]}]}",
       "instruction 0 (sample_categorical): decision 0 is not an integer"},
      {"{\"version\": 1, \"insts\": [{\"kind\": \"sample_categorical\", \"inputs\": [1, 2, "
       "{\"f\": 1}], \"outputs\": [0], \"decision\": 0}]}",
       "\"decision\" is not an array"},
  };
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = ir_arena_new(ctx);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    sch_trace t;
    kiln_status st = sch_trace_from_json(ctx, a, cases[i].json, &t);
    ck_assert_msg(st == KILN_ERR_PARSE, "case %zu: %s: %s", i, kiln_status_str(st),
                  kiln_context_errmsg(ctx));
    ck_assert_msg(strstr(kiln_context_errmsg(ctx), cases[i].msg) != NULL,
                  "case %zu: '%s' lacks '%s'", i, kiln_context_errmsg(ctx), cases[i].msg);
    ck_errmsg_has(ctx, "trace: ");
  }
  /* too many inputs */
  char big[2048] = "{\"version\": 1, \"insts\": [{\"kind\": \"reorder\", \"inputs\": [0";
  for (int i = 0; i < 64; i++) strcat(big, ", 0");
  strcat(big, "], \"outputs\": []}]}");
  sch_trace t;
  ck_assert_int_eq(sch_trace_from_json(ctx, a, big, &t), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "instruction 0 (reorder): \"inputs\" has more than 64 elements");
  ck_assert_int_eq(sch_trace_from_json(ctx, a, NULL, &t), KILN_ERR_MISUSE);
  ck_assert_int_eq(sch_trace_from_json(ctx, NULL, "{}", &t), KILN_ERR_MISUSE);
  ck_assert_int_eq(sch_trace_from_json(NULL, a, "{}", &t), KILN_ERR_MISUSE);
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Truncations and byte flips of a valid trace never crash the reader, and whatever parses
 * replays (or fails cleanly) to a well-formed function, and prints. Loop index _i picks the
 * trace: queries and sampling, or a tiling (which reaches the loop primitives' entries). */
START_TEST(test_json_fuzz) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_golden(ctx, "matmul_relu.tir");
  sch_schedule *s = sch_new(ctx, m->funcs[0], 3);
  if (_i == 0) record_matmul_trace(ctx, s);
  else record_tiling_trace(ctx, s);
  char *json = trace_json(ctx, &s->trace);
  size_t len = strlen(json);
  char *buf = malloc(len + 1);
  static const char flips[] = "{}[]\",:$-+.0123456789eEfsx \\\x80\xff\x01";
  uint64_t rng = 12345;
  int parsed = 0, replayed = 0;
  enum { FLIPS = 1500 };
  for (size_t iter = 0; iter < len + FLIPS; iter++) {
    memcpy(buf, json, len + 1);
    if (iter < len) {
      buf[iter] = 0; /* a truncation */
    } else if (iter % 2) {
      /* a digit changed into another digit: mostly still JSON, often a different trace */
      for (int tries = 0; tries < 50; tries++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t pos = (size_t)(rng >> 33) % len;
        if (buf[pos] >= '0' && buf[pos] <= '9') {
          buf[pos] = (char)('0' + (rng >> 20) % 10);
          break;
        }
      }
    } else {
      int nflip = 1 + (int)(iter % 3);
      for (int f = 0; f < nflip; f++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t pos = (size_t)(rng >> 33) % len;
        buf[pos] = flips[(rng >> 20) % (sizeof flips - 1)];
      }
    }
    ir_arena *a = ir_arena_new(ctx);
    sch_trace t;
    kiln_status st = sch_trace_from_json(ctx, a, buf, &t);
    ck_assert_msg(st == KILN_OK || st == KILN_ERR_PARSE, "iteration %zu: %s", iter,
                  kiln_status_str(st));
    if (st == KILN_OK) {
      parsed++;
      char *text = trace_json(ctx, &t);
      kiln_string_free(ctx, text);
      sch_schedule *r = sch_new(ctx, m->funcs[0], iter);
      st = sch_replay(r, &t, 0, NULL);
      ck_assert_msg(st == KILN_OK || st == KILN_ERR_PARSE || st == KILN_ERR_SCHEDULE ||
                        st == KILN_ERR_MISUSE || st == KILN_ERR_UNSUPPORTED,
                    "iteration %zu: %s: %s", iter, kiln_status_str(st), kiln_context_errmsg(ctx));
      if (st == KILN_OK) {
        replayed++;
        ck_ok(ctx, ir_verify_func(ctx, r->func));
      }
      sch_free(r);
    }
    ir_arena_free(a);
  }
  /* the mutations both break and keep the trace often enough to exercise both paths */
  ck_assert_int_gt(parsed, 50);
  ck_assert_int_gt(replayed, 10);
  free(buf);
  kiln_string_free(ctx, json);
  sch_free(s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Replay ------------------------------------------------------------------------------ */

/* A recorded trace replays on a fresh schedule (through JSON) to an equal function and an
 * identical trace, whatever the replaying schedule's seed. */
START_TEST(test_replay_same) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_golden(ctx, "matmul_relu.tir");
  sch_schedule *s = sch_new(ctx, m->funcs[0], 11);
  record_matmul_trace(ctx, s);
  char *json = trace_json(ctx, &s->trace);
  ir_arena *a = ir_arena_new(ctx);
  sch_trace t;
  ck_ok(ctx, sch_trace_from_json(ctx, a, json, &t));
  sch_schedule *r = sch_new(ctx, m->funcs[0], 999);
  ck_ok(ctx, sch_replay(r, &t, 0, NULL));
  ck_assert(ir_structural_equal(ctx, &r->func->h, &s->func->h));
  char *again = trace_json(ctx, &r->trace);
  ck_assert_str_eq(again, json);
  check_same_results(ctx, r->func, m->funcs[0]);
  /* replaying the schedule's own trace struct directly works too */
  sch_schedule *r2 = sch_new(ctx, m->funcs[0], 5);
  ck_ok(ctx, sch_replay(r2, &s->trace, 0, NULL));
  char *third = trace_json(ctx, &r2->trace);
  ck_assert_str_eq(third, json);
  /* but not into itself */
  ck_assert_int_eq(sch_replay(r2, &r2->trace, 0, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(sch_replay(r2, NULL, 0, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(sch_replay(r2, &t, 1, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(sch_replay(NULL, &t, 0, NULL), KILN_ERR_MISUSE);
  kiln_string_free(ctx, third);
  kiln_string_free(ctx, again);
  kiln_string_free(ctx, json);
  sch_free(r2);
  sch_free(r);
  sch_free(s);

  /* a trace that changes the function: several seeds, each replayed on a fresh schedule */
  for (uint64_t seed = 1; seed <= 4; seed++) {
    s = sch_new(ctx, m->funcs[0], seed);
    record_tiling_trace(ctx, s);
    ck_assert(!ir_structural_equal(ctx, &s->func->h, &m->funcs[0]->h));
    json = trace_json(ctx, &s->trace);
    ck_ok(ctx, sch_trace_from_json(ctx, a, json, &t));
    r = sch_new(ctx, m->funcs[0], seed + 100);
    ck_ok(ctx, sch_replay(r, &t, 0, NULL));
    ck_assert(ir_structural_equal(ctx, &r->func->h, &s->func->h));
    again = trace_json(ctx, &r->trace);
    ck_assert_str_eq(again, json);
    check_same_results(ctx, r->func, m->funcs[0]);
    kiln_string_free(ctx, again);
    kiln_string_free(ctx, json);
    sch_free(r);
    sch_free(s);
  }
  ir_arena_free(a);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Dropped sampling instructions draw new decisions from the replaying schedule's seed (so
 * the tiling changes) while the other instructions keep theirs, and the function still
 * computes the same thing. */
START_TEST(test_replay_drop_resamples) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_golden(ctx, "matmul_relu.tir");
  sch_schedule *s = sch_new(ctx, m->funcs[0], 1);
  record_tiling_trace(ctx, s);
  ck_assert_int_eq(s->trace.insts[2].kind, SCH_INST_SAMPLE_PERFECT_TILE);
  ck_assert_int_eq(s->trace.insts[3].kind, SCH_INST_SAMPLE_PERFECT_TILE);
  ck_assert_int_eq(s->trace.insts[12].kind, SCH_INST_SAMPLE_CATEGORICAL);
  int drop[2] = {2, 12};
  int differ2 = 0, differ12 = 0, differ_func = 0;
  for (uint64_t seed = 2; seed < 10; seed++) {
    sch_schedule *r = sch_new(ctx, m->funcs[0], seed);
    ck_ok(ctx, sch_replay(r, &s->trace, 2, drop));
    ck_assert_int_eq(r->trace.ninsts, s->trace.ninsts);
    const sch_inst *a2 = &s->trace.insts[2], *b2 = &r->trace.insts[2];
    ck_assert_int_eq(b2->decision[0] * b2->decision[1], 64);
    ck_assert_int_le(b2->decision[1], 16);
    differ2 += memcmp(a2->decision, b2->decision, 2 * sizeof(int64_t)) != 0;
    differ12 += s->trace.insts[12].decision[0] != r->trace.insts[12].decision[0];
    differ_func += !ir_structural_equal(ctx, &s->func->h, &r->func->h);
    /* the kept sampling instruction keeps its decision */
    ck_assert_int_eq(memcmp(s->trace.insts[3].decision, r->trace.insts[3].decision,
                            2 * sizeof(int64_t)), 0);
    check_same_results(ctx, r->func, m->funcs[0]);
    sch_free(r);
  }
  ck_assert_int_gt(differ2, 0);
  ck_assert_int_gt(differ12, 0);
  ck_assert_int_gt(differ_func, 0);
  /* the same seed re-samples the same way */
  sch_schedule *r1 = sch_new(ctx, m->funcs[0], 77), *r2 = sch_new(ctx, m->funcs[0], 77);
  ck_ok(ctx, sch_replay(r1, &s->trace, 2, drop));
  ck_ok(ctx, sch_replay(r2, &s->trace, 2, drop));
  ck_assert(ir_structural_equal(ctx, &r1->func->h, &r2->func->h));
  char *j1 = trace_json(ctx, &r1->trace), *j2 = trace_json(ctx, &r2->trace);
  ck_assert_str_eq(j1, j2);
  kiln_string_free(ctx, j1);
  kiln_string_free(ctx, j2);
  sch_free(r1);
  sch_free(r2);
  sch_free(s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A trace without decisions samples them; a trace with a bad decision fails. */
START_TEST(test_replay_decisions) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_golden(ctx, "matmul_relu.tir");
  ir_arena *a = ir_arena_new(ctx);
  static const char head[] =
      "{\"version\": 1, \"insts\": [\n"
      "  {\"kind\": \"get_block\", \"inputs\": [{\"s\": \"C\"}], \"outputs\": [0]},\n"
      "  {\"kind\": \"get_loops\", \"inputs\": [\"$0\"], \"outputs\": [1, 2, 3]},\n"
      "  {\"kind\": \"sample_perfect_tile\", \"inputs\": [\"$2\", 2, 16], \"outputs\": [4, 5]";
  char json[1024];
  sch_trace t;
  snprintf(json, sizeof json, "%s, \"decision\": [8, 12]}\n]}\n", head);
  ck_ok(ctx, sch_trace_from_json(ctx, a, json, &t));
  sch_schedule *r = sch_new(ctx, m->funcs[0], 3);
  ck_ok(ctx, sch_replay(r, &t, 0, NULL));
  ck_assert_int_eq(rv_value(ctx, r, r->trace.insts[2].outputs[1]), 12);
  sch_free(r);

  snprintf(json, sizeof json, "%s}\n]}\n", head); /* no decision: sampled */
  ck_ok(ctx, sch_trace_from_json(ctx, a, json, &t));
  r = sch_new(ctx, m->funcs[0], 3);
  ck_ok(ctx, sch_replay(r, &t, 0, NULL));
  ck_assert_int_eq(r->trace.insts[2].ndecision, 2);
  ck_assert_int_eq(r->trace.insts[2].decision[0] * r->trace.insts[2].decision[1], 96);
  sch_free(r);

  snprintf(json, sizeof json, "%s, \"decision\": [3, 32]}\n]}\n", head);
  ck_ok(ctx, sch_trace_from_json(ctx, a, json, &t));
  r = sch_new(ctx, m->funcs[0], 3);
  ck_assert_int_eq(sch_replay(r, &t, 0, NULL), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "replay: instruction 2 (sample_perfect_tile): sample_perfect_tile: "
                     "decision [3, 32] for loop 'j' has innermost factor 32 above max_innermost 16");
  sch_free(r);

  snprintf(json, sizeof json, "%s, \"decision\": []}\n]}\n", head);
  ck_ok(ctx, sch_trace_from_json(ctx, a, json, &t));
  r = sch_new(ctx, m->funcs[0], 3);
  ck_assert_int_eq(sch_replay(r, &t, 0, NULL), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "the decision has 0 factors, expected 2");
  /* ...unless it is dropped */
  sch_free(r);
  r = sch_new(ctx, m->funcs[0], 3);
  int drop = 2;
  ck_ok(ctx, sch_replay(r, &t, 1, &drop));
  sch_free(r);

  ir_arena_free(a);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_replay_errors) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_golden(ctx, "matmul_relu.tir");
  ir_arena *a = ir_arena_new(ctx);
  sch_trace t;
  /* the recorded output count disagrees with what the instruction gives now */
  ck_ok(ctx, sch_trace_from_json(ctx, a,
        "{\"version\": 1, \"insts\": [\n"
        "  {\"kind\": \"get_block\", \"inputs\": [{\"s\": \"C\"}], \"outputs\": [0]},\n"
        "  {\"kind\": \"get_loops\", \"inputs\": [\"$0\"], \"outputs\": [1, 2]}\n]}", &t));
  sch_schedule *r = sch_new(ctx, m->funcs[0], 3);
  ck_assert_int_eq(sch_replay(r, &t, 0, NULL), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "replay diverged at instruction 1 (get_loops): it gave 3 outputs, the "
                     "trace recorded 2");
  sch_free(r);

  /* the instruction itself fails: its message, with the instruction named */
  ck_ok(ctx, sch_trace_from_json(ctx, a,
        "{\"version\": 1, \"insts\": [\n"
        "  {\"kind\": \"get_block\", \"inputs\": [{\"s\": \"E\"}], \"outputs\": [0]}\n]}", &t));
  r = sch_new(ctx, m->funcs[0], 3);
  ck_assert_int_eq(sch_replay(r, &t, 0, NULL), KILN_ERR_SCHEDULE);
  ck_errmsg_has(ctx, "replay: instruction 0 (get_block): get_block: no block named 'E'");
  sch_free(r);

  /* arguments of the wrong kind */
  ck_ok(ctx, sch_trace_from_json(ctx, a,
        "{\"version\": 1, \"insts\": [\n"
        "  {\"kind\": \"get_block\", \"inputs\": [{\"s\": \"C\"}], \"outputs\": [0]},\n"
        "  {\"kind\": \"sample_perfect_tile\", \"inputs\": [\"$0\", 2, 0], \"outputs\": [1, 2]}"
        "\n]}", &t));
  r = sch_new(ctx, m->funcs[0], 3);
  ck_assert_int_eq(sch_replay(r, &t, 0, NULL), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "replay: instruction 1 (sample_perfect_tile): trace: argument $0 is not a "
                     "loop");
  sch_free(r);

  /* a hand-built trace using an RV nobody defined, or with a broken instruction */
  sch_arg in[1] = {{SCH_ARG_RV, 7, 0, NULL}};
  sch_inst bad = {SCH_INST_GET_LOOPS, 1, in, 0, NULL, -1, NULL};
  sch_trace hand = {.arena = a, .ninsts = 1, .cap = 1, .insts = &bad};
  r = sch_new(ctx, m->funcs[0], 3);
  ck_assert_int_eq(sch_replay(r, &hand, 0, NULL), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "replay: instruction 0 (get_loops): input 0 is $7, which no earlier "
                     "instruction outputs");
  bad.kind = -1;
  ck_assert_int_eq(sch_replay(r, &hand, 0, NULL), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "replay: instruction 0 has no valid kind (-1)");
  bad.kind = SCH_INST_GET_LOOPS;
  bad.ninputs = SCH_MAX_INST_ARGS + 1;
  ck_assert_int_eq(sch_replay(r, &hand, 0, NULL), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "has more than 64 inputs");
  bad.ninputs = 1;
  bad.kind = SCH_INST_SAMPLE_CATEGORICAL;
  bad.ndecision = 1; /* but no decision array */
  ck_assert_int_eq(sch_replay(r, &hand, 0, NULL), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "replay: instruction 0 (sample_categorical) lacks the arrays its counts");
  sch_free(r);

  ir_arena_free(a);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Golden ------------------------------------------------------------------------------- */

/* tests/golden/schedule/<name>.json replays on <input>.tir to <name>.expected.tir (printed
 * exactly), and the replayed trace prints back as the golden JSON. */
static void check_golden(const char *input, const char *name) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_golden(ctx, input);
  char path[256];
  snprintf(path, sizeof path, "%s.json", name);
  char *raw = kiln_test_read_golden("schedule", path, NULL);
  char *json = kiln_test_strip_comment_lines(raw);
  ir_arena *a = ir_arena_new(ctx);
  sch_trace t;
  ck_ok(ctx, sch_trace_from_json(ctx, a, json, &t));
  sch_schedule *s = sch_new(ctx, m->funcs[0], 0);
  ck_ok(ctx, sch_replay(s, &t, 0, NULL));
  ck_ok(ctx, ir_verify_func(ctx, s->func));
  check_same_results(ctx, s->func, m->funcs[0]);

  char *printed = ir_node_to_string(ctx, &s->func->h);
  ck_assert_ptr_nonnull(printed);
  snprintf(path, sizeof path, "%s.expected.tir", name);
  char *raw_want = kiln_test_read_golden("schedule", path, NULL);
  char *want = kiln_test_strip_comment_lines(raw_want);
  ck_assert_msg(strcmp(printed, want) == 0, "%s replays to\n%s\nexpected\n%s", name, printed,
                want);
  char *again = trace_json(ctx, &s->trace);
  ck_assert_str_eq(again, json);

  kiln_string_free(ctx, again);
  free(want);
  free(raw_want);
  kiln_string_free(ctx, printed);
  sch_free(s);
  ir_arena_free(a);
  free(json);
  free(raw);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}

START_TEST(test_golden_queries) { check_golden("matmul_relu.tir", "matmul_relu_queries"); }
END_TEST

START_TEST(test_golden_tile) { check_golden("matmul_relu.tir", "matmul_relu_tile"); }
END_TEST

/* ---- Allocation failures ----------------------------------------------------------------- */

/* Records a trace, prints it, reads it back and replays it; the first error. */
static kiln_status record_print_read_replay(kiln_context *ctx, const ir_func *f, char **out) {
  *out = NULL;
  sch_schedule *s = sch_new(ctx, f, 8), *r = NULL;
  if (!s) return kiln_context_errcode(ctx);
  ir_arena *a = NULL;
  char *json = NULL, *again = NULL;
  sch_rv c, *loops, tiles[2], cat;
  int n;
  int64_t cands[2] = {1, 2};
  double probs[2] = {1, 1};
  sch_trace t;
  kiln_status st;
  if ((st = sch_get_block(s, "C", &c)) || (st = sch_get_loops(s, c, &n, &loops)) ||
      (st = sch_sample_perfect_tile(s, loops[0], 2, 8, NULL, tiles)) ||
      (st = sch_sample_categorical(s, 2, cands, probs, NULL, &cat)) ||
      (st = sch_trace_to_json(ctx, &s->trace, &json, NULL)))
    goto done;
  if (!(a = ir_arena_new(ctx))) {
    st = KILN_ERR_NOMEM;
    goto done;
  }
  if ((st = sch_trace_from_json(ctx, a, json, &t))) goto done;
  if (!(r = sch_new(ctx, f, 9))) {
    st = kiln_context_errcode(ctx);
    goto done;
  }
  int drop = 2;
  if ((st = sch_replay(r, &t, 1, &drop)) || (st = sch_trace_to_json(ctx, &t, &again, NULL)))
    goto done;
  *out = again;
done:
  if (json) kiln_string_free(ctx, json);
  sch_free(r);
  ir_arena_free(a);
  sch_free(s);
  return st;
}

START_TEST(test_allocation_failures) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_golden(ctx, "matmul_relu.tir");
  char *want;
  ck_ok(ctx, record_print_read_replay(ctx, m->funcs[0], &want));
  long live = kiln_context_live_blocks(ctx);
  long n;
  for (n = 1;; n++) {
    long before = kiln_context_alloc_count(ctx);
    kiln_context_fail_alloc(ctx, n);
    char *text;
    kiln_status st = record_print_read_replay(ctx, m->funcs[0], &text);
    long made = kiln_context_alloc_count(ctx) - before;
    kiln_context_fail_alloc(ctx, 0);
    if (made < n) {
      ck_ok(ctx, st);
      ck_assert_str_eq(text, want);
      kiln_string_free(ctx, text);
      break;
    }
    ck_assert_msg(st == KILN_ERR_NOMEM, "allocation %ld: %s (%s)", n, kiln_status_str(st),
                  kiln_context_errmsg(ctx));
    ck_assert_ptr_null(text);
    ck_assert_msg(kiln_context_live_blocks(ctx) == live, "allocation %ld leaked %ld blocks", n,
                  kiln_context_live_blocks(ctx) - live);
  }
  ck_assert_int_gt(n, 20);
  kiln_string_free(ctx, want);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("sch_trace");
  TCase *tc = tcase_create("sample");
  tcase_add_test(tc, test_perfect_tile_statistics);
  tcase_add_test(tc, test_perfect_tile_spreads_outer_factors);
  tcase_add_test(tc, test_perfect_tile_decision);
  tcase_add_test(tc, test_perfect_tile_errors);
  tcase_add_test(tc, test_categorical_frequencies);
  tcase_add_test(tc, test_categorical_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("json");
  tcase_add_test(tc, test_json_round_trip);
  tcase_add_test(tc, test_json_write_errors);
  tcase_add_test(tc, test_json_read_errors);
  tcase_add_loop_test(tc, test_json_fuzz, 0, 2); /* queries, then a tiling */
  suite_add_tcase(s, tc);
  tc = tcase_create("replay");
  tcase_add_test(tc, test_replay_same);
  tcase_add_test(tc, test_replay_drop_resamples);
  tcase_add_test(tc, test_replay_decisions);
  tcase_add_test(tc, test_replay_errors);
  tcase_add_test(tc, test_golden_queries);
  tcase_add_test(tc, test_golden_tile);
  tcase_add_test(tc, test_allocation_failures);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

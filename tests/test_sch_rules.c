/* test_sch_rules.c: the default schedule rules (schedule/rules.c). Fused Relay groups (a
 * matmul, conv2d + bias + relu, dense, pooling, softmax, layer_norm, reductions, elementwise
 * chains) are lowered, scheduled by the rules, run through the lowering pipeline and checked
 * against the Relay reference (tests/lower_harness.h); the schedules are checked for what the
 * rules promise (register tile with a vectorized inner loop, parallel outer loop, init
 * decomposed, epilogue and padding at the tile, a compacted accumulator), their traces replay
 * to the same function, and the compiled kernels agree with the interpreter. */
#include "lower_harness.h"
#include "schedule/schedule.h"
#include "target/codegen.h"
#include "target/target.h"

static const sch_target_info avx512 = {512, 2, 2, 48 << 10, 1 << 20};

/* The extra step of the harness: default rules on a fresh schedule. */
static ir_func *default_schedule(kiln_context *ctx, ir_arena *arena, ir_func *f, void *ud) {
  const sch_target_info *t = ud ? ud : &avx512;
  sch_schedule *s = sch_new(ctx, f, 1);
  if (!s) return NULL;
  ir_func *out = NULL;
  if (sch_apply_default_rules(s, t) == KILN_OK) out = (ir_func *)ir_deep_copy(arena, &s->func->h);
  sch_free(s);
  return out;
}

static void check_scheduled(kiln_context *ctx, const char *text, double tol) {
  lh_case c = {.relay_text = text, .rtol = tol, .atol = tol, .extra = default_schedule};
  lh_check(ctx, &c);
}

/* Lowers `main` of a module and returns a schedule with the default rules applied. */
static sch_schedule *scheduled(kiln_context *ctx, relay_module *m, ir_arena *a,
                               const sch_target_info *t) {
  ir_func *pf = lh_lower(ctx, m, "main", a);
  sch_schedule *s = sch_new(ctx, pf, 1);
  ck_assert_ptr_nonnull(s);
  ck_ok(ctx, sch_apply_default_rules(s, t));
  ck_ok(ctx, ir_verify_func(ctx, s->func));
  return s;
}

static bool trace_has(const sch_schedule *s, int kind) {
  for (int i = 0; i < s->trace.ninsts; i++)
    if (s->trace.insts[i].kind == kind) return true;
  return false;
}

static char *text_of(kiln_context *ctx, const ir_func *f) {
  char *t = ir_node_to_string(ctx, &f->h);
  ck_assert_ptr_nonnull(t);
  return t;
}

static const char *matmul_text =
    "def @main(%a: Tensor[(64, 40), float32], %b: Tensor[(40, 96), float32]) {\n"
    "  nn.matmul(%a, %b)\n"
    "}\n";

/* The matmul's schedule: everything the tile rule promises is in the trace and the text. */
START_TEST(test_matmul_tile_structure) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = lh_parse(ctx, matmul_text);
  ir_arena *a = ir_arena_new(ctx);
  sch_schedule *s = scheduled(ctx, m, a, &avx512);
  static const int want[] = {SCH_INST_CACHE_WRITE, SCH_INST_SAMPLE_PERFECT_TILE, SCH_INST_SPLIT,
                             SCH_INST_REORDER, SCH_INST_FUSE, SCH_INST_PARALLEL,
                             SCH_INST_VECTORIZE, SCH_INST_UNROLL,
                             SCH_INST_DECOMPOSE_REDUCTION, SCH_INST_REVERSE_COMPUTE_AT};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    ck_assert_msg(trace_has(s, want[i]), "the trace lacks %s", sch_inst_name(want[i]));
  /* after the pipeline the accumulator is an 8 x 32 tile (two AVX-512 vectors wide) */
  ir_func *low = NULL;
  ir_lower_options o = {0, true};
  ck_ok(ctx, ir_lower_func(ctx, a, s->func, &o, &low));
  char *t = text_of(ctx, low);
  bool par = strstr(t, "parallel(") != NULL;
  bool tile = strstr(t, "[256]") != NULL || strstr(t, "[256i64]") != NULL;
  if (!par || !tile) fprintf(stderr, "%s\n", t);
  ck_assert_msg(par, "no parallel loop");
  ck_assert_msg(tile, "the accumulator is not an 8 x 32 tile");
  kiln_string_free(ctx, t);
  sch_free(s);
  ir_arena_free(a);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Dense on [seq, batch, d] data (a Transformer's layout) with a batch of 1 or 4: the tile's
 * rows are the sequence, not the batch (a 10 x 32 accumulator: 10 divides the 40 rows; not
 * 1 x 32 or 4 x 32), and the kernel still computes what the reference computes. */
START_TEST(test_dense_rows_skip_short_batch) {
  kiln_context *ctx = kiln_test_new_ctx();
  static const int batches[] = {1, 4};
  for (int b = 0; b < 2; b++) {
    char text[400];
    snprintf(text, sizeof text,
             "def @main(%%x: Tensor[(40, %d, 24), float32], %%w: Tensor[(24, 32), float32]) {\n"
             "  nn.dense(%%x, %%w, weight_layout=\"KN\")\n}\n", batches[b]);
    relay_module *m = lh_parse(ctx, text);
    ir_arena *a = ir_arena_new(ctx);
    sch_schedule *s = scheduled(ctx, m, a, &avx512);
    ir_func *low = NULL;
    ir_lower_options o = {0, true};
    ck_ok(ctx, ir_lower_func(ctx, a, s->func, &o, &low));
    char *t = text_of(ctx, low);
    bool tile = strstr(t, "[320i64], scope=\"local\"") != NULL;
    if (!tile) fprintf(stderr, "%s\n", t);
    ck_assert_msg(tile, "batch %d: the accumulator is not a 10 x 32 tile", batches[b]);
    kiln_string_free(ctx, t);
    sch_free(s);
    ir_arena_free(a);
    relay_module_free(m);
    check_scheduled(ctx, text, 1e-5);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The default schedule's trace is data: JSON round trip, then replay on the unscheduled
 * function gives a structurally equal function. */
START_TEST(test_default_trace_replays) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = lh_parse(ctx,
      "def @main(%x: Tensor[(1, 8, 12, 12), float32], %w: Tensor[(16, 8, 3, 3), float32], "
      "%b: Tensor[(16,), float32]) {\n"
      "  %0 = nn.conv2d(%x, %w, padding=[1, 1, 1, 1]);\n"
      "  %1 = nn.bias_add(%0, %b);\n"
      "  nn.relu(%1)\n"
      "}\n");
  ir_arena *a = ir_arena_new(ctx);
  sch_schedule *s = scheduled(ctx, m, a, &avx512);
  char *json;
  size_t len;
  ck_ok(ctx, sch_trace_to_json(ctx, &s->trace, &json, &len));
  sch_trace t;
  ck_ok(ctx, sch_trace_from_json(ctx, a, json, &t));
  sch_schedule *r = sch_new(ctx, s->orig, 1);
  ck_ok(ctx, sch_replay(r, &t, 0, NULL));
  ck_assert(ir_structural_equal(ctx, &s->func->h, &r->func->h));
  ir_free(ctx, json, len + 1);
  sch_free(r);
  sch_free(s);
  ir_arena_free(a);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The scheduled, lowered kernel compiles and computes what the interpreter computes. */
START_TEST(test_matmul_compiled) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = lh_parse(ctx, matmul_text);
  ir_arena *a = ir_arena_new(ctx);
  sch_schedule *s = scheduled(ctx, m, a, &avx512);
  ir_func *low = NULL;
  ck_ok(ctx, ir_lower_func(ctx, a, s->func, NULL, &low));
  kiln_tir_module *mod = ir_module_new(ctx);
  ck_assert_ptr_nonnull(mod);
  ir_func *copy = (ir_func *)ir_deep_copy(mod->arena, &low->h);
  ck_ok(ctx, ir_module_add(mod, copy));
  tgt_target host;
  ck_ok(ctx, tgt_target_host(ctx, &host));
  tgt_jit *j = NULL;
  ck_ok(ctx, tgt_jit_new(ctx, &host, &j));
  ck_ok(ctx, tgt_jit_add_tir(j, mod));
  kiln_kernel_fn fn;
  ck_ok(ctx, tgt_jit_lookup(j, "main", &fn));

  enum { M = 64, K = 40, N = 96 };
  static float A[M * K], B[K * N], C[M * N], R[M * N];
  for (int i = 0; i < M * K; i++) A[i] = (float)((i * 7) % 11) - 5;
  for (int i = 0; i < K * N; i++) B[i] = (float)((i * 5) % 13) - 6;
  void *args[3] = {A, B, R};
  ck_ok(ctx, ir_interpret(ctx, low, 3, args));
  int64_t sa[2] = {M, K}, sb[2] = {K, N}, sc[2] = {M, N};
  kiln_tensor t[3] = {
      {A, 1, 0, 2, {KILN_TYPE_FLOAT, 32, 1}, sa, NULL, 0},
      {B, 1, 0, 2, {KILN_TYPE_FLOAT, 32, 1}, sb, NULL, 0},
      {C, 1, 0, 2, {KILN_TYPE_FLOAT, 32, 1}, sc, NULL, 0},
  };
  ck_assert_int_eq(fn(t, 3), KILN_OK);
  for (int i = 0; i < M * N; i++) ck_assert_float_eq(C[i], R[i]);
  tgt_jit_free(j);
  kiln_tir_module_free(mod);
  sch_free(s);
  ir_arena_free(a);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Numerics of scheduled groups against the Relay reference, odd sizes included. */
START_TEST(test_groups_match_reference) {
  kiln_context *ctx = kiln_test_new_ctx();
  check_scheduled(ctx, matmul_text, 1e-4);
  check_scheduled(ctx,
                  "def @main(%a: Tensor[(13, 7), float32], %b: Tensor[(7, 29), float32]) {\n"
                  "  nn.matmul(%a, %b)\n}\n",
                  1e-4);
  check_scheduled(ctx,
                  "def @main(%x: Tensor[(3, 17), float32], %w: Tensor[(19, 17), float32], "
                  "%b: Tensor[(19,), float32]) {\n"
                  "  %0 = nn.dense(%x, %w);\n  %1 = nn.bias_add(%0, %b, axis=1);\n"
                  "  nn.relu(%1)\n}\n",
                  1e-4);
  check_scheduled(ctx,
                  "def @main(%x: Tensor[(1, 8, 12, 12), float32], %w: Tensor[(16, 8, 3, 3), float32], "
                  "%b: Tensor[(16,), float32]) {\n"
                  "  %0 = nn.conv2d(%x, %w, padding=[1, 1, 1, 1]);\n"
                  "  %1 = nn.bias_add(%0, %b);\n  nn.relu(%1)\n}\n",
                  1e-4);
  check_scheduled(ctx,
                  "def @main(%x: Tensor[(2, 3, 9, 11), float32], %w: Tensor[(5, 3, 3, 3), float32]) {\n"
                  "  nn.conv2d(%x, %w, strides=[2, 2], padding=[1, 1, 1, 1])\n}\n",
                  1e-4);
  check_scheduled(ctx,
                  "def @main(%x: Tensor[(2, 4, 3, 5), float32], %y: Tensor[(2, 4, 5, 6), float32]) {\n"
                  "  %0 = reshape(%x, newshape=[8, 3, 5]);\n  %1 = reshape(%y, newshape=[8, 5, 6]);\n"
                  "  %2 = nn.batch_matmul(%0, %1, transpose_b=0);\n  sigmoid(%2)\n}\n",
                  1e-4);
  check_scheduled(ctx,
                  "def @main(%x: Tensor[(2, 3, 13, 13), float32]) {\n"
                  "  nn.max_pool2d(%x, pool_size=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1])\n}\n",
                  1e-5);
  check_scheduled(ctx,
                  "def @main(%x: Tensor[(5, 37), float32]) {\n  nn.softmax(%x, axis=-1)\n}\n",
                  1e-5);
  check_scheduled(ctx,
                  "def @main(%x: Tensor[(6, 33), float32], %g: Tensor[(33,), float32], "
                  "%b: Tensor[(33,), float32]) {\n  nn.layer_norm(%x, %g, %b)\n}\n",
                  1e-4);
  check_scheduled(ctx,
                  "def @main(%x: Tensor[(7, 5, 3), float32]) {\n  sum(%x, axis=[1])\n}\n", 1e-5);
  check_scheduled(ctx,
                  "def @main(%x: Tensor[(3, 50), float32], %y: Tensor[(50,), float32]) {\n"
                  "  %0 = add(%x, %y);\n  %1 = exp(%0);\n  multiply(%1, %x)\n}\n",
                  1e-5);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Runs f on seeded data (every buffer parameter float32, outputs zeroed) and returns the
 * data of its last parameter (the output), malloc'ed. */
static float *run_on_data(kiln_context *ctx, const ir_func *f) {
  void *args[8];
  size_t sizes[8];
  ck_assert_int_le(f->nparams, 8);
  for (int i = 0; i < f->nparams; i++) {
    const ir_buffer *b = ir_as_buffer(f->params[i]);
    ck_assert_ptr_nonnull(b);
    size_t n = 1;
    for (int d = 0; d < b->ndim; d++) n *= (size_t)ir_as_int(b->shape[d])->value;
    sizes[i] = n;
    args[i] = calloc(n, sizeof(float));
    for (size_t k = 0; i < f->nparams - 1 && k < n; k++)
      ((float *)args[i])[k] = (float)((k * 7 + (size_t)i * 3) % 11) - 5;
  }
  ck_ok(ctx, ir_interpret(ctx, f, f->nparams, args));
  for (int i = 0; i < f->nparams - 1; i++) free(args[i]);
  (void)sizes;
  return args[f->nparams - 1];
}

/* Lowers a scheduled function, runs it on run_on_data's data and checks its n outputs against
 * want (the unscheduled function's). */
static void ck_lowered_matches(kiln_context *ctx, ir_arena *a, ir_func *scheduled,
                               const float *want, size_t n) {
  ir_func *low = NULL;
  ck_ok(ctx, ir_lower_func(ctx, a, scheduled, NULL, &low));
  float *got = run_on_data(ctx, low);
  for (size_t k = 0; k < n; k++) ck_assert_float_eq_tol(got[k], want[k], 1e-3);
  free(got);
}

/* An elementwise group whose rows are whole vectors (32 floats): the row is split by the
 * vector width and the rest fused, so the vector loads and stores are contiguous pieces of a
 * row with no per-lane division of a fused index; the kernel computes what the reference
 * does. A row of 12 keeps the fuse-everything schedule and is right too. */
START_TEST(test_elementwise_rows_of_vectors) {
  kiln_context *ctx = kiln_test_new_ctx();
  static const char *text =
      "def @main(%x: Tensor[(3, 5, 32), float32], %y: Tensor[(3, 5, 32), float32]) {\n"
      "  %0 = add(%x, %y);\n  exp(%0)\n}\n";
  relay_module *m = lh_parse(ctx, text);
  ir_arena *a = ir_arena_new(ctx);
  sch_schedule *s = scheduled(ctx, m, a, &avx512);
  ir_func *low = NULL;
  ck_ok(ctx, ir_lower_func(ctx, a, s->func, NULL, &low));
  char *t = text_of(ctx, low);
  bool vec = strstr(t, "ramp(") != NULL;
  bool lane_div = strstr(t, "// broadcast(") != NULL || strstr(t, "%% broadcast(") != NULL;
  if (!vec || lane_div) fprintf(stderr, "%s\n", t);
  ck_assert_msg(vec && !lane_div, "rows not vectorized as contiguous pieces");
  kiln_string_free(ctx, t);
  sch_free(s);
  ir_arena_free(a);
  relay_module_free(m);
  check_scheduled(ctx, text, 1e-5);
  check_scheduled(ctx,
                  "def @main(%x: Tensor[(2, 7, 12), float32]) {\n  exp(%x)\n}\n", 1e-5);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The decision of the nth instruction of a kind in a trace (which: its index). */
static int64_t trace_decision(const sch_schedule *s, int kind, int nth, int which) {
  for (int i = 0; i < s->trace.ninsts; i++)
    if (s->trace.insts[i].kind == kind && nth-- == 0) return s->trace.insts[i].decision[which];
  ck_abort_msg("no instruction %s", sch_inst_name(kind));
  return 0;
}

/* The panel variant (the tuner's third structure, a block annotation): B packed per parallel
 * chunk by default (compute location 0) and chunks of whole column panels sized to half the
 * L2 cache, at least 2 chunks per thread: 256 x 512 x 1024 with an 8 x 32 tile: panels of
 * 1024 x 32 floats (128 KiB), 4 per chunk (512 KiB), chunks of 4 x 32 row tiles; with K = 96
 * one panel per chunk, and the kernel computes what the unscheduled one does. */
START_TEST(test_panel_variant) {
  kiln_context *ctx = kiln_test_new_ctx();
  static const struct {
    const char *text;
    int64_t serial;
    bool run;
  } cases[] = {
      {"def @main(%a: Tensor[(256, 1024), float32], %b: Tensor[(1024, 512), float32]) {\n"
       "  nn.matmul(%a, %b)\n}\n", 128, false},
      {"def @main(%a: Tensor[(64, 96), float32], %b: Tensor[(96, 128), float32]) {\n"
       "  nn.matmul(%a, %b)\n}\n", 8, true}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    relay_module *m = lh_parse(ctx, cases[c].text);
    ir_arena *a = ir_arena_new(ctx);
    ir_func *pf = lh_lower(ctx, m, "main", a);
    sch_schedule *s = sch_new(ctx, pf, 1);
    sch_rv blk;
    ck_ok(ctx, sch_get_block(s, "matmul", &blk));
    ck_ok(ctx, sch_annotate(s, blk, "schedule.panel", ir_int(s->arena, KILN_INT64, 1)));
    ck_ok(ctx, sch_apply_default_rules(s, &avx512));
    ck_ok(ctx, ir_verify_func(ctx, s->func));
    ck_assert_int_eq(trace_decision(s, SCH_INST_SAMPLE_COMPUTE_LOCATION, 0, 0), 0);
    ck_assert_int_eq(trace_decision(s, SCH_INST_SAMPLE_PERFECT_TILE, 2, 1), cases[c].serial);
    if (cases[c].run) {
      float *want = run_on_data(ctx, s->orig);
      ck_lowered_matches(ctx, a, s->func, want, 64 * 128);
      free(want);
    }
    sch_free(s);
    ir_arena_free(a);
    relay_module_free(m);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The default schedule is one point of the design space the tuner samples: re-sampling every
 * decision of its trace (other tile sizes) must still replay, verify and compute the same
 * thing, for several seeds. */
START_TEST(test_design_space_replays) {
  kiln_context *ctx = kiln_test_new_ctx();
  static const char *const texts[] = {
      "def @main(%a: Tensor[(32, 24), float32], %b: Tensor[(24, 48), float32]) {\n"
      "  nn.matmul(%a, %b)\n}\n",
      "def @main(%x: Tensor[(1, 4, 12, 12), float32], %w: Tensor[(8, 4, 3, 3), float32], "
      "%b: Tensor[(8,), float32]) {\n"
      "  %0 = nn.conv2d(%x, %w, padding=[1, 1, 1, 1]);\n"
      "  %1 = nn.bias_add(%0, %b);\n  nn.relu(%1)\n}\n"};
  for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
    relay_module *m = lh_parse(ctx, texts[t]);
    ir_arena *a = ir_arena_new(ctx);
    sch_schedule *s = scheduled(ctx, m, a, &avx512);
    int drop[64], ndrop = 0;
    for (int i = 0; i < s->trace.ninsts && ndrop < 64; i++)
      if (s->trace.insts[i].ndecision >= 0) drop[ndrop++] = i;
    ck_assert_int_gt(ndrop, 0);
    float *want = run_on_data(ctx, s->orig);
    size_t nout = 1;
    const ir_buffer *ob = ir_as_buffer(s->orig->params[s->orig->nparams - 1]);
    for (int d = 0; d < ob->ndim; d++) nout *= (size_t)ir_as_int(ob->shape[d])->value;
    int distinct = 0;
    for (uint64_t seed = 1; seed <= 8; seed++) {
      sch_schedule *r = sch_new(ctx, s->orig, seed);
      ck_assert_ptr_nonnull(r);
      kiln_status st = sch_replay(r, &s->trace, ndrop, drop);
      ck_assert_msg(st == KILN_OK, "case %zu seed %llu: %s", t, (unsigned long long)seed,
                    kiln_context_errmsg(ctx));
      ck_ok(ctx, ir_verify_func(ctx, r->func));
      distinct += !ir_structural_equal(ctx, &r->func->h, &s->func->h);
      ck_lowered_matches(ctx, a, r->func, want, nout);
      sch_free(r);
    }
    ck_assert_int_gt(distinct, 0);
    free(want);
    sch_free(s);
    ir_arena_free(a);
    relay_module_free(m);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Index of the first instruction of a kind at or after `from` (-1 when none). */
static int find_inst(const sch_trace *t, int kind, int from) {
  for (int i = from; i < t->ninsts; i++)
    if (t->insts[i].kind == kind) return i;
  return -1;
}

/* Counts the occurrences of needle in text. */
static int count_of(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

/* The decisions the tile rule adds to the design space, each with the old default as its
 * default decision: the parallel split of the fused tile loop (default: all parallel), the
 * packing of the vector-axis operand (a cache_read whose sampled location is inline by
 * default) and the unroll knob (annotation "unroll_max_step" = 0). The default lowers to the
 * plain register tile (no packed copy, the reduce loop kept); with the split set to
 * (3, 8), the packing computed at the parallel loop and the knob at 512, the trace replays
 * into a kernel that packs a 40 x 32 panel of B per column tile, has its tile nest unrolled,
 * and computes the same result. */
START_TEST(test_tile_decisions) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = lh_parse(ctx, matmul_text); /* 64x40 times 40x96 */
  ir_arena *a = ir_arena_new(ctx);
  sch_schedule *s = scheduled(ctx, m, a, &avx512);
  sch_trace *t = &s->trace;
  int par = find_inst(t, SCH_INST_PARALLEL, 0);
  int loc = find_inst(t, SCH_INST_SAMPLE_COMPUTE_LOCATION, 0);
  int knob = find_inst(t, SCH_INST_ANNOTATE, 0);
  ck_assert_int_ge(par, 2);
  ck_assert_int_ge(loc, 0);
  ck_assert_int_ge(knob, 0);
  /* sample_perfect_tile, split, parallel: the parallel split, default (24, 1) */
  sch_inst *split = &t->insts[par - 2];
  ck_assert_int_eq(split->kind, SCH_INST_SAMPLE_PERFECT_TILE);
  ck_assert_int_eq(split->ndecision, 2);
  ck_assert_int_eq(split->decision[0], 24);
  ck_assert_int_eq(split->decision[1], 1);
  ck_assert_int_eq(t->insts[loc].decision[0], -2);
  ck_assert_str_eq(t->insts[knob].inputs[1].s, "unroll_max_step");
  ck_assert_int_eq(t->insts[knob].inputs[2].i, 0);
  ck_assert(find_inst(t, SCH_INST_CACHE_READ, 0) >= 0);

  float *want = run_on_data(ctx, s->orig);
  ir_lower_options o = {0, true};
  ir_func *low = NULL;
  ck_ok(ctx, ir_lower_func(ctx, a, s->func, &o, &low));
  char *text = text_of(ctx, low);
  ck_assert_msg(!strstr(text, "[1280"), "the default packs B:\n%s", text);
  ck_assert_int_eq(count_of(text, "for "), 2); /* the parallel loop and the reduce loop */
  kiln_string_free(ctx, text);

  split->decision[0] = 3;
  split->decision[1] = 8;
  t->insts[loc].decision[0] = 0; /* the outermost legal loop: the parallel one */
  t->insts[knob].inputs[2].i = 512;
  sch_schedule *r = sch_new(ctx, s->orig, 1);
  ck_ok(ctx, sch_replay(r, t, 0, NULL));
  ck_ok(ctx, ir_verify_func(ctx, r->func));
  ck_ok(ctx, ir_lower_func(ctx, a, r->func, &o, &low));
  text = text_of(ctx, low);
  ck_assert_msg(strstr(text, "[1280"), "no packed 40 x 32 panel:\n%s", text);
  /* the packing nest (40 x 32, too long to unroll) and the parallel loop remain; the tile
   * nest (8 tiles x 40 steps = 320 <= 512) is straight-line code */
  int loops = count_of(text, "for ");
  ck_assert_msg(loops <= 3, "%d loops left:\n%s", loops, text);
  kiln_string_free(ctx, text);
  float *got = run_on_data(ctx, low);
  for (size_t k = 0; k < 64 * 96; k++) ck_assert_float_eq_tol(got[k], want[k], 1e-3);
  free(got);
  free(want);
  sch_free(r);
  sch_free(s);
  ir_arena_free(a);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Narrower vectors (AVX2, NEON) give other tiles but the same results. */
START_TEST(test_other_targets) {
  kiln_context *ctx = kiln_test_new_ctx();
  static const sch_target_info avx2 = {256, 4, 2, 32 << 10, 256 << 10},
                               neon = {128, 1, 1, 64 << 10, 1 << 20};
  lh_case c = {.relay_text = matmul_text, .rtol = 1e-4, .atol = 1e-4,
               .extra = default_schedule, .extra_ud = (void *)&avx2};
  lh_check(ctx, &c);
  c.extra_ud = (void *)&neon;
  lh_check(ctx, &c);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The rules read the vector width and the core count from a target string. */
START_TEST(test_target_info) {
  kiln_context *ctx = kiln_test_new_ctx();
  tgt_target t;
  sch_target_info ti;
  ck_ok(ctx, tgt_target_parse(ctx, "llvm -mtriple=aarch64-linux-gnu -mcpu=neoverse-n1 -num-cores=4", &t));
  sch_target_info_from(&t, &ti);
  ck_assert_int_eq(ti.vector_bits, 128);
  ck_assert_int_eq(ti.num_threads, 4);
  ck_ok(ctx, tgt_target_parse(ctx, "llvm -mtriple=x86_64-linux-gnu -mcpu=znver4 -num-cores=2", &t));
  sch_target_info_from(&t, &ti);
  ck_assert_int_eq(ti.vector_bits, 512);
  ck_assert_int_eq(ti.num_threads, 2);
  kiln_test_done_ctx(ctx);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("sch_rules");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_matmul_tile_structure);
  tcase_add_test(tc, test_default_trace_replays);
  tcase_add_test(tc, test_dense_rows_skip_short_batch);
  tcase_add_test(tc, test_panel_variant);
  tcase_add_test(tc, test_elementwise_rows_of_vectors);
  tcase_add_test(tc, test_matmul_compiled);
  tcase_add_test(tc, test_groups_match_reference);
  tcase_add_test(tc, test_other_targets);
  tcase_add_test(tc, test_target_info);
  tcase_add_test(tc, test_design_space_replays);
  tcase_add_test(tc, test_tile_decisions);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

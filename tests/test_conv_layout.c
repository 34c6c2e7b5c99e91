/* test_conv_layout.c: channel-last conv2d. The HWIO lowering (a reduction into an [N, OH, OW,
 * O] accumulator, then a copy to NCHW) against the reference interpreter, through the TIR
 * interpreter and the JIT with the default rules; the default rules' shape of it (vectorized
 * over output channels, the copy or fused epilogue at the tile); the AlterConvLayout pass
 * (what it rewrites and what it leaves alone); a small model through kiln_compile with the
 * pass on against the interpreter. */
#include <math.h>

#include <cjson/cJSON.h>

#include "test_util.h"
#include "lower_harness.h"
#include "relay/pass.h"
#include "runtime/artifact.h"

static kiln_context *ctx;

static void setup(void) { ctx = kiln_test_new_ctx(); }
static void teardown(void) { kiln_test_done_ctx(ctx); }

/* ---- Lowering ----------------------------------------------------------------------------- */

/* A conv2d on NCHW data x [1|2, C, H, W] with an HWIO weight [KH, KW, C, O], then the
 * epilogue text `epi` applied to %0 (NULL: none). */
static void check_hwio(int n, int c, int h, int w, int o, int k, const char *attrs,
                       const char *epi_params, const char *epi) {
  char text[1024];
  snprintf(text, sizeof text,
           "def @main(%%x: Tensor[(%d, %d, %d, %d), float32], %%w: Tensor[(%d, %d, %d, %d), "
           "float32]%s) {\n  %%0 = nn.conv2d(%%x, %%w, %s%skernel_layout=\"HWIO\");\n  %s\n}\n",
           n, c, h, w, k, k, c, o, epi_params ? epi_params : "", attrs, attrs[0] ? ", " : "",
           epi ? epi : "%0");
  lh_case cs;
  memset(&cs, 0, sizeof cs);
  cs.relay_text = text;
  cs.rtol = 1e-4;
  cs.atol = 1e-4;
  cs.seed = 11;
  lh_check(ctx, &cs);
}

START_TEST(test_hwio_lowering_matches_reference) {
  check_hwio(1, 8, 10, 12, 32, 3, "padding=[1, 1, 1, 1]", NULL, NULL);
  check_hwio(1, 3, 11, 9, 20, 3, "strides=[2, 2], padding=[1, 0, 2, 1]", NULL, NULL);
  check_hwio(2, 5, 9, 13, 16, 3, "dilation=[2, 2], padding=[2, 2, 2, 2]", NULL, NULL);
  check_hwio(1, 4, 7, 7, 24, 1, "", NULL, NULL);
  check_hwio(1, 3, 17, 15, 16, 5, "strides=[2, 3], padding=[2, 2, 2, 2]", NULL, NULL);
}
END_TEST

/* The fused epilogues of ResNet: bias, relu, a residual add; the copy to NCHW is inlined into
 * them and computed at the tile. */
START_TEST(test_hwio_with_epilogue) {
  check_hwio(1, 8, 8, 16, 32, 3, "padding=[1, 1, 1, 1]", ", %b: Tensor[(32,), float32]",
             "nn.relu(nn.bias_add(%0, %b))");
  check_hwio(1, 8, 8, 16, 32, 3, "padding=[1, 1, 1, 1]",
             ", %b: Tensor[(32,), float32], %r: Tensor[(1, 32, 8, 16), float32]",
             "nn.relu(add(nn.bias_add(%0, %b), %r))");
}
END_TEST

/* The same data through OIHW and HWIO weights gives the same result (the weights transposed
 * by hand), both compiled with the default rules. */
START_TEST(test_hwio_equals_oihw) {
  enum { C = 6, H = 9, W = 10, O = 32, K = 3 };
  static float x[C * H * W], w[O * C * K * K], wh[K * K * C * O], y1[O * H * W], y2[O * H * W];
  uint64_t rng = 5;
  for (int i = 0; i < C * H * W; i++) x[i] = (float)lh_rand_uniform(&rng, -1, 1);
  for (int oc = 0; oc < O; oc++)
    for (int c = 0; c < C; c++)
      for (int r = 0; r < K; r++)
        for (int s = 0; s < K; s++) {
          float v = (float)lh_rand_uniform(&rng, -1, 1);
          w[((oc * C + c) * K + r) * K + s] = v;
          wh[((r * K + s) * C + c) * O + oc] = v;
        }
  float *outs[2] = {y1, y2};
  for (int hw = 0; hw < 2; hw++) {
    char text[512];
    snprintf(text, sizeof text,
             "def @main(%%x: Tensor[(1, %d, %d, %d), float32], %%w: Tensor[(%d, %d, %d, %d), "
             "float32]) { nn.conv2d(%%x, %%w, padding=[1, 1, 1, 1], kernel_layout=\"%s\") }\n",
             C, H, W, hw ? K : O, hw ? K : C, hw ? C : K, hw ? O : K, hw ? "HWIO" : "OIHW");
    relay_module *m = lh_parse(ctx, text);
    ir_arena *a = ir_arena_new(ctx);
    ir_func *pf = lh_lower(ctx, m, "main", a), *low = NULL;
    ir_func *sched = lh_default_schedule(ctx, a, pf);
    ck_ok(ctx, ir_lower_func(ctx, a, sched, NULL, &low));
    kiln_tir_module *mod = ir_module_new(ctx);
    ck_ok(ctx, ir_module_add(mod, (ir_func *)ir_deep_copy(mod->arena, &low->h)));
    tgt_target host;
    ck_ok(ctx, tgt_target_host(ctx, &host));
    tgt_jit *jit = NULL;
    ck_ok(ctx, tgt_jit_new(ctx, &host, &jit));
    ck_ok(ctx, tgt_jit_add_tir(jit, mod));
    kiln_kernel_fn fn = NULL;
    ck_ok(ctx, tgt_jit_lookup(jit, "main", &fn));
    int64_t sx[4] = {1, C, H, W}, sw[4] = {O, C, K, K}, swh[4] = {K, K, C, O}, sy[4] = {1, O, H, W};
    kiln_tensor args[3] = {{x, 1, 0, 4, KILN_FLOAT32, sx, NULL, 0},
                           {hw ? wh : w, 1, 0, 4, KILN_FLOAT32, hw ? swh : sw, NULL, 0},
                           {outs[hw], 1, 0, 4, KILN_FLOAT32, sy, NULL, 0}};
    ck_assert_int_eq(fn(args, 3), KILN_OK);
    tgt_jit_free(jit);
    kiln_tir_module_free(mod);
    ir_arena_free(a);
    relay_module_free(m);
  }
  for (int i = 0; i < O * H * W; i++)
    ck_assert_msg(fabsf(y1[i] - y2[i]) <= 1e-4f * (1 + fabsf(y1[i])), "element %d: %g vs %g", i,
                  (double)y1[i], (double)y2[i]);
}
END_TEST

/* Whether the PrimFunc has a block of this name. */
typedef struct find_block {
  const char *name;
  const ir_block *found;
} find_block;

static bool find_visit(ir_node *n, void *ud) {
  find_block *f = ud;
  if (n->kind == IR_BLOCK && strcmp(((ir_block *)n)->name, f->name) == 0)
    f->found = (const ir_block *)n;
  return !f->found;
}

static const ir_block *block_named(const ir_func *pf, const char *name) {
  find_block f = {name, NULL};
  ir_visit(pf->body, false, find_visit, &f);
  return f.found;
}

static ir_func *lower_text(const char *text, ir_arena *a, relay_module **m) {
  *m = lh_parse(ctx, text);
  return lh_lower(ctx, *m, "main", a);
}

/* Which layouts take the channel-last stages: groups 1, NCHW data, O innermost in the kernel. */
START_TEST(test_channel_last_stages) {
  static const struct {
    const char *params, *attrs;
    bool channel_last;
  } cases[] = {
      {"%x: Tensor[(1, 4, 6, 6), float32], %w: Tensor[(3, 3, 4, 16), float32]",
       "kernel_layout=\"HWIO\"", true},
      {"%x: Tensor[(1, 4, 6, 6), float32], %w: Tensor[(4, 3, 3, 16), float32]",
       "kernel_layout=\"IHWO\"", true},
      {"%x: Tensor[(1, 4, 6, 6), float32], %w: Tensor[(16, 4, 3, 3), float32]", "", false},
      {"%x: Tensor[(1, 6, 6, 4), float32], %w: Tensor[(3, 3, 4, 16), float32]",
       "data_layout=\"NHWC\", kernel_layout=\"HWIO\"", false},
      {"%x: Tensor[(1, 4, 6, 6), float32], %w: Tensor[(3, 3, 2, 16), float32]",
       "groups=2, kernel_layout=\"HWIO\"", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *text = lh_op_text("nn.conv2d", cases[i].params, cases[i].attrs);
    ir_arena *a = ir_arena_new(ctx);
    relay_module *m;
    ir_func *pf = lower_text(text, a, &m);
    const ir_block *red = block_named(pf, "conv2d_nhwc"), *copy = block_named(pf, "conv2d_nchw");
    ck_assert_msg((red != NULL) == cases[i].channel_last, "case %zu", i);
    ck_assert_msg((copy != NULL) == cases[i].channel_last, "case %zu", i);
    ck_assert_msg((block_named(pf, "conv2d") != NULL) == !cases[i].channel_last, "case %zu", i);
    if (red) {
      /* iterators N, OH, OW, O then the reduce axes; the accumulator is [N, OH, OW, O] */
      ck_assert_int_eq(red->niters, 7);
      ck_assert_int_eq(red->iters[3]->iter_type, IR_ITER_SPATIAL);
      ck_assert_int_eq(red->iters[4]->iter_type, IR_ITER_REDUCE);
      const ir_buffer *acc = red->writes[0]->buffer;
      int64_t want[4] = {1, 4, 4, 16};
      for (int d = 0; d < 4; d++) ck_assert_int_eq(ir_as_int(acc->shape[d])->value, want[d]);
      ck_assert_ptr_null(copy->init);
    }
    ir_arena_free(a);
    relay_module_free(m);
    free(text);
  }
}
END_TEST

/* ---- Default rules ------------------------------------------------------------------------ */

static bool uses_var_visit(ir_node *n, void *ud) {
  const ir_node **v = ud;
  if (n == v[0]) v[1] = n;
  return v[1] == NULL;
}

static bool expr_uses(ir_node *e, const ir_var *v) {
  const ir_node *st[2] = {&v->h, NULL};
  ir_visit(e, false, uses_var_visit, st);
  return st[1] != NULL;
}

/* The default rules for a 512-bit target on a 64-channel HWIO conv: the accumulator tile is
 * 8 columns x 32 output channels, the innermost loop vectorized over O (so the weights are
 * read as vectors), the rows unrolled, the reduce loops between the tile loops, the copy to
 * NCHW (or the fused epilogue) computed at the tile, the outer loops one parallel loop. */
static void check_rules(const char *epilogue, const char *epi_block) {
  char text[512];
  snprintf(text, sizeof text,
           "def @main(%%x: Tensor[(1, 16, 16, 16), float32], %%w: Tensor[(3, 3, 16, 64), "
           "float32]) {\n  %%0 = nn.conv2d(%%x, %%w, padding=[1, 1, 1, 1], "
           "kernel_layout=\"HWIO\");\n  %s\n}\n", epilogue);
  ir_arena *a = ir_arena_new(ctx);
  relay_module *m;
  ir_func *pf = lower_text(text, a, &m);
  sch_schedule *s = sch_new(ctx, pf, 1);
  ck_assert_ptr_nonnull(s);
  sch_target_info ti = {512, 2, 2, 32768, 1 << 20};
  ck_ok(ctx, sch_apply_default_rules(s, &ti));

  sch_rv blk, *loops;
  int n;
  ck_ok(ctx, sch_get_block(s, "conv2d_nhwc", &blk));
  ck_ok(ctx, sch_get_loops(s, blk, &n, &loops));
  ck_assert_int_ge(n, 6);
  ir_for *f[16];
  for (int i = 0; i < n && i < 16; i++) ck_ok(ctx, sch_get_for(s, "test", loops[i], &f[i]));
  ir_block_realize *r;
  ck_ok(ctx, sch_get_realize(s, "test", blk, &r));
  /* innermost: 32 output channels, vectorized */
  ck_assert_int_eq(f[n - 1]->for_kind, IR_FOR_VECTORIZED);
  ck_assert_int_eq(ir_as_int(f[n - 1]->extent)->value, 32);
  ck_assert(expr_uses(r->values[3], f[n - 1]->var));
  /* then 8 output columns, unrolled */
  ck_assert_int_eq(f[n - 2]->for_kind, IR_FOR_UNROLLED);
  ck_assert_int_eq(ir_as_int(f[n - 2]->extent)->value, 8);
  ck_assert(expr_uses(r->values[2], f[n - 2]->var));
  /* the reduce loops (C, KH, KW) right outside the tile */
  for (int k = 0; k < 3; k++) ck_assert(expr_uses(r->values[4 + k], f[n - 5 + k]->var));
  ck_assert_int_eq(f[0]->for_kind, IR_FOR_PARALLEL);
  /* the output-channel tile is the slowest part of the fused outer loop (one weight slice
   * for consecutive tiles): O = fused // (16 rows * 2 column tiles) * 32 + inner */
  char *ob = ir_node_to_string(ctx, r->values[3]);
  ck_assert_msg(strstr(ob, "// 32i64 * 32i64") && !strchr(ob, '%'), "O bound to %s", ob);
  kiln_string_free(ctx, ob);
  /* the weights are read with the vector axis last */
  ck_assert(r->block->reads[1]->buffer->ndim == 4);

  /* the epilogue at the tile: under the same outermost loop, vectorized inside */
  sch_rv e, *eloops;
  int ne;
  ck_ok(ctx, sch_get_block(s, epi_block, &e));
  ck_ok(ctx, sch_get_loops(s, e, &ne, &eloops));
  ck_assert_int_ge(ne, 2);
  ck_assert(sch_rv_get(s, eloops[0])->loop == f[0]->var);
  ir_for *last;
  ck_ok(ctx, sch_get_for(s, "test", eloops[ne - 1], &last));
  ck_assert_int_eq(last->for_kind, IR_FOR_VECTORIZED);
  if (strcmp(epi_block, "conv2d_nchw") != 0) {
    /* the copy was inlined into the fused epilogue */
    ck_assert_int_eq(sch_get_block(s, "conv2d_nchw", &e), KILN_ERR_SCHEDULE);
    ir_clear_error(ctx);
  }
  /* the tile size is a sampled decision the tuner can change */
  char *trace = NULL;
  size_t tlen = 0;
  ck_ok(ctx, sch_trace_to_json(ctx, &s->trace, &trace, &tlen));
  ck_assert_ptr_nonnull(strstr(trace, "sample_perfect_tile"));
  ir_free(ctx, trace, tlen + 1);
  sch_free(s);
  ir_arena_free(a);
  relay_module_free(m);
}

START_TEST(test_rules_vectorize_over_channels) {
  check_rules("%0", "conv2d_nchw");
  check_rules("nn.relu(%0)", "relu");
}
END_TEST

/* ---- AlterConvLayout ---------------------------------------------------------------------- */

static uint64_t rng = 3;

/* A float32 constant of the shape (text) with n values in [-0.5, 0.5), appended to buf. */
static void put_const(char *buf, size_t cap, const char *shape, int n) {
  size_t len = strlen(buf);
  len += (size_t)snprintf(buf + len, cap - len, "const(Tensor[%s, float32], [", shape);
  for (int i = 0; i < n && len < cap; i++)
    len += (size_t)snprintf(buf + len, cap - len, "%s%.4g", i ? ", " : "",
                            lh_rand_uniform(&rng, -0.5, 0.5));
  snprintf(buf + len, cap - len, "])");
}

/* A module whose main has one conv2d per case below, each on its own input, summed into a
 * tuple. */
static char *pass_module(void) {
  size_t cap = 1 << 20;
  char *t = calloc(1, cap);
  strcat(t, "def @main(%a: Tensor[(1, 4, 6, 6), float32], %b: Tensor[(1, 4, 6, 6), float32], "
            "%c: Tensor[(1, 4, 6, 6), float32], %d: Tensor[(1, 6, 6, 4), float32], "
            "%e: Tensor[(1, 4, 6, 6), float32], %wp: Tensor[(16, 4, 3, 3), float32]) {\n");
  /* 0: rewritten */
  strcat(t, "  %0 = nn.conv2d(%a, ");
  put_const(t, cap, "(16, 4, 3, 3)", 16 * 4 * 9);
  strcat(t, ", padding=[1, 1, 1, 1]);\n");
  /* 1: 8 output channels: left */
  strcat(t, "  %1 = nn.conv2d(%b, ");
  put_const(t, cap, "(8, 4, 3, 3)", 8 * 4 * 9);
  strcat(t, ");\n");
  /* 2: groups 2: left */
  strcat(t, "  %2 = nn.conv2d(%c, ");
  put_const(t, cap, "(16, 2, 3, 3)", 16 * 2 * 9);
  strcat(t, ", groups=2);\n");
  /* 3: NHWC data: left */
  strcat(t, "  %3 = nn.conv2d(%d, ");
  put_const(t, cap, "(16, 4, 3, 3)", 16 * 4 * 9);
  strcat(t, ", data_layout=\"NHWC\");\n");
  /* 4: a weight that is an input: left */
  strcat(t, "  %4 = nn.conv2d(%e, %wp);\n");
  strcat(t, "  (%0, %1, %2, %3, %4)\n}\n");
  return t;
}

/* The conv2d calls of main's result tuple, in order. */
static void conv_calls(relay_module *m, relay_call **calls) {
  relay_func *f = relay_module_get(m, "main");
  ck_assert_int_eq(f->body->kind, RELAY_TUPLE);
  relay_tuple *t = (relay_tuple *)f->body;
  ck_assert_int_eq(t->nfields, 5);
  for (int i = 0; i < 5; i++) {
    ck_assert_int_eq(t->fields[i]->kind, RELAY_CALL);
    calls[i] = (relay_call *)t->fields[i];
    ck_assert_str_eq(calls[i]->op, "nn.conv2d");
  }
}

static const char *kernel_layout(const relay_call *c) {
  const relay_attr *a = relay_attr_find(c->nattrs, c->attrs, "kernel_layout");
  return a ? a->s : "OIHW";
}

static void run_pass(relay_module *m, const relay_pass *p, int opt_level) {
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  pc.opt_level = opt_level;
  ck_ok(ctx, relay_run_passes(&pc, m, 1, &p));
}

START_TEST(test_pass_rewrites_eligible_convs_only) {
  char *text = pass_module();
  relay_module *m = lh_parse(ctx, text);
  const relay_pass *alter = relay_pass_lookup("AlterConvLayout");
  ck_assert_ptr_nonnull(alter);
  ck_assert_ptr_eq(alter, &relay_pass_alter_conv_layout);
  run_pass(m, &relay_pass_infer_type, 3);
  relay_call *before[5], *after[5];
  conv_calls(m, before);
  run_pass(m, alter, 3);
  conv_calls(m, after);
  /* case 0: HWIO, the constant weight transposed, the other attributes kept */
  ck_assert_str_eq(kernel_layout(after[0]), "HWIO");
  ck_assert_ptr_eq(after[0]->args[0], before[0]->args[0]);
  const relay_attr *pad = relay_attr_find(after[0]->nattrs, after[0]->attrs, "padding");
  ck_assert(pad && pad->nints == 4 && pad->ints[0] == 1);
  ck_assert_int_eq(after[0]->args[1]->kind, RELAY_CALL);
  relay_call *tr = (relay_call *)after[0]->args[1];
  ck_assert_str_eq(tr->op, "transpose");
  ck_assert_ptr_eq(tr->args[0], before[0]->args[1]);
  const relay_attr *axes = relay_attr_find(tr->nattrs, tr->attrs, "axes");
  ck_assert(axes && axes->nints == 4);
  int64_t want[4] = {2, 3, 1, 0};
  for (int i = 0; i < 4; i++) ck_assert_int_eq(axes->ints[i], want[i]);
  /* the result type is unchanged */
  ck_assert(relay_type_equal(m->arena, after[0]->type, before[0]->type));
  /* cases 1-4 untouched */
  for (int i = 1; i < 5; i++) ck_assert_ptr_eq(after[i], before[i]);

  /* FoldConstant stores the weight transposed: element (o, i, r, s) at (r, s, i, o) */
  run_pass(m, &relay_pass_fold_constant, 3);
  relay_call *folded[5];
  conv_calls(m, folded);
  ck_assert_int_eq(folded[0]->args[1]->kind, RELAY_CONST);
  const relay_const *w0 = (const relay_const *)before[0]->args[1];
  const relay_const *w1 = (const relay_const *)folded[0]->args[1];
  const relay_tensor_type *wt = relay_as_tensor_type(w1->type);
  int64_t shape[4] = {3, 3, 4, 16};
  for (int d = 0; d < 4; d++) ck_assert_int_eq(ir_as_int(wt->shape[d])->value, shape[d]);
  const float *p0 = w0->data, *p1 = w1->data;
  for (int o = 0; o < 16; o++)
    for (int i = 0; i < 4; i++)
      for (int r = 0; r < 3; r++)
        for (int s = 0; s < 3; s++)
          ck_assert(p0[((o * 4 + i) * 3 + r) * 3 + s] == p1[((r * 3 + s) * 4 + i) * 16 + o]);

  /* running it again changes nothing (HWIO is not OIHW) */
  relay_func *f = relay_module_get(m, "main");
  run_pass(m, alter, 3);
  ck_assert_ptr_eq(relay_module_get(m, "main"), f);
  relay_module_free(m);
  free(text);
}
END_TEST

START_TEST(test_pass_not_default_and_opt_level) {
  const relay_pass *const *def;
  int n = relay_default_pipeline(&def);
  for (int i = 0; i < n; i++) ck_assert_ptr_ne(def[i], &relay_pass_alter_conv_layout);
  /* below opt_level 2 the manager skips it */
  char *text = pass_module();
  relay_module *m = lh_parse(ctx, text);
  run_pass(m, &relay_pass_infer_type, 3);
  relay_func *f = relay_module_get(m, "main");
  run_pass(m, &relay_pass_alter_conv_layout, 1);
  ck_assert_ptr_eq(relay_module_get(m, "main"), f);
  run_pass(m, &relay_pass_alter_conv_layout, 2);
  ck_assert_ptr_ne(relay_module_get(m, "main"), f);
  relay_module_free(m);
  free(text);
}
END_TEST

/* ---- Through kiln_compile ----------------------------------------------------------------- */

/* Compiles text (the build driver runs the layout passes) and checks that the kernels'
 * workloads name every string of need (NULL-terminated) and no transpose is left, and that
 * the model's one output matches the interpreter on input x. */
static void compile_matches_interpreter(const char *t, int xdims, int64_t *xs, float *x,
                                        int ydims, int64_t *ys, size_t ny,
                                        const char *const *need) {
  kiln_relay_module *m = NULL;
  ck_ok(ctx, kiln_relay_module_parse(ctx, t, strlen(t), &m));
  kiln_compiled *c = NULL;
  ck_ok(ctx, kiln_compile(m, 0, NULL, NULL, &c));
  const void *data;
  size_t size;
  ck_ok(ctx, kiln_compiled_bytes(c, &data, &size));
  rt_artifact *art;
  ck_assert_int_eq(rt_artifact_open_memory(data, size, "test", &art), KILN_OK);
  uint64_t n;
  const char *plan_text = rt_artifact_section(art, RT_SECTION_PLAN, &n);
  for (int i = 0; need[i]; i++)
    ck_assert_msg(memmem(plan_text, n, need[i], strlen(need[i])), "no '%s' in %.*s", need[i],
                  (int)n, plan_text);
  ck_assert(memmem(plan_text, n, "transpose", 9) == NULL);
  rt_artifact_close(art);
  kiln_model *model;
  ck_ok(ctx, kiln_compiled_load(c, &model));
  kiln_session *s;
  ck_ok(NULL, kiln_session_new(model, &s));
  float *ref = calloc(ny, sizeof(float));
  kiln_tensor in = {x, 1, 0, xdims, KILN_FLOAT32, xs, NULL, 0};
  kiln_tensor want = {ref, 1, 0, ydims, KILN_FLOAT32, ys, NULL, 0};
  ck_ok(ctx, kiln_relay_module_interpret(m, "main", 1, &in, 1, &want));
  ck_ok(NULL, kiln_session_set_input(s, 0, &in));
  ck_ok(NULL, kiln_session_run(s));
  kiln_tensor got;
  ck_ok(NULL, kiln_session_get_output(s, 0, &got));
  const float *g = (const float *)((const char *)got.data + got.byte_offset);
  for (size_t i = 0; i < ny; i++)
    ck_assert_msg(fabsf(g[i] - ref[i]) <= 1e-4f * (1 + fabsf(ref[i])), "element %zu: %g vs %g",
                  i, (double)g[i], (double)ref[i]);
  free(ref);
  kiln_session_free(s);
  kiln_model_free(model);
  kiln_compiled_free(c);
  kiln_relay_module_free(m);
}


/* conv2d (16 -> 32 channels, constant weights) + bias + relu + a residual conv: the build
 * driver runs AlterConvLayout, so the kernels see HWIO weights and no transpose; the compiled
 * model matches the interpreter. */
START_TEST(test_compile_with_pass_matches_interpreter) {
  size_t cap = 1 << 20;
  char *t = calloc(1, cap);
  strcat(t, "def @main(%x: Tensor[(1, 16, 9, 10), float32]) {\n  %0 = nn.conv2d(%x, ");
  put_const(t, cap, "(32, 16, 3, 3)", 32 * 16 * 9);
  strcat(t, ", padding=[1, 1, 1, 1]);\n  %1 = nn.bias_add(%0, ");
  put_const(t, cap, "(32,)", 32);
  strcat(t, ");\n  %2 = nn.relu(%1);\n  %3 = nn.conv2d(%2, ");
  put_const(t, cap, "(32, 32, 3, 3)", 32 * 32 * 9);
  strcat(t, ", strides=[2, 2], padding=[1, 1, 1, 1]);\n  %3\n}\n");
  static float x[16 * 9 * 10];
  uint64_t r = 9;
  for (int i = 0; i < 16 * 9 * 10; i++) x[i] = (float)lh_rand_uniform(&r, -1, 1);
  int64_t xs[4] = {1, 16, 9, 10}, ys[4] = {1, 32, 5, 5};
  compile_matches_interpreter(t, 4, xs, x, 4, ys, 32 * 5 * 5,
                              (const char *const[]){"(3,3,16,32)f32", "(3,3,32,32)f32", NULL});
  free(t);
}
END_TEST

/* ---- AlterDenseLayout ----------------------------------------------------------------------- */

/* The dense calls of main's result tuple, in order. */
static void dense_calls(relay_module *m, int n, relay_call **calls) {
  relay_func *f = relay_module_get(m, "main");
  ck_assert_int_eq(f->body->kind, RELAY_TUPLE);
  relay_tuple *t = (relay_tuple *)f->body;
  ck_assert_int_eq(t->nfields, n);
  for (int i = 0; i < n; i++) {
    ck_assert_int_eq(t->fields[i]->kind, RELAY_CALL);
    calls[i] = (relay_call *)t->fields[i];
    ck_assert_str_eq(calls[i]->op, "nn.dense");
  }
}

static const char *weight_layout(const relay_call *c) {
  const relay_attr *a = relay_attr_find(c->nattrs, c->attrs, "weight_layout");
  return a ? a->s : "NK";
}

/* Constant [N, K] weights with N >= 16 become KN (the weight transposed, folded by
 * FoldConstant); 8 output columns, a weight that is an input and a weight already KN are
 * left; below opt_level 2 nothing changes. */
START_TEST(test_dense_pass_rewrites_eligible_only) {
  size_t cap = 1 << 20;
  char *t = calloc(1, cap);
  strcat(t, "def @main(%a: Tensor[(4, 8), float32], %b: Tensor[(2, 3, 8), float32], "
            "%w: Tensor[(32, 8), float32]) {\n  %0 = nn.dense(%a, ");
  put_const(t, cap, "(32, 8)", 32 * 8);
  strcat(t, ", units=32);\n  %1 = nn.dense(%b, ");
  put_const(t, cap, "(16, 8)", 16 * 8);
  strcat(t, ");\n  %2 = nn.dense(%a, ");
  put_const(t, cap, "(8, 8)", 8 * 8);
  strcat(t, ");\n  %3 = nn.dense(%a, %w);\n  %4 = nn.dense(%a, ");
  put_const(t, cap, "(8, 32)", 8 * 32);
  strcat(t, ", weight_layout=\"KN\");\n  (%0, %1, %2, %3, %4)\n}\n");
  relay_module *m = lh_parse(ctx, t);
  ck_assert_ptr_eq(relay_pass_lookup("AlterDenseLayout"), &relay_pass_alter_dense_layout);
  const relay_pass *const *def;
  int ndef = relay_default_pipeline(&def);
  for (int i = 0; i < ndef; i++) ck_assert_ptr_ne(def[i], &relay_pass_alter_dense_layout);
  run_pass(m, &relay_pass_infer_type, 3);
  relay_func *f = relay_module_get(m, "main");
  run_pass(m, &relay_pass_alter_dense_layout, 1);
  ck_assert_ptr_eq(relay_module_get(m, "main"), f);
  relay_call *before[5], *after[5];
  dense_calls(m, 5, before);
  run_pass(m, &relay_pass_alter_dense_layout, 2);
  dense_calls(m, 5, after);
  for (int i = 0; i < 2; i++) {
    ck_assert_str_eq(weight_layout(after[i]), "KN");
    ck_assert_ptr_eq(after[i]->args[0], before[i]->args[0]);
    ck_assert_int_eq(after[i]->args[1]->kind, RELAY_CALL);
    relay_call *tr = (relay_call *)after[i]->args[1];
    ck_assert_str_eq(tr->op, "transpose");
    ck_assert_ptr_eq(tr->args[0], before[i]->args[1]);
    ck_assert(relay_type_equal(m->arena, after[i]->type, before[i]->type));
  }
  const relay_attr *units = relay_attr_find(after[0]->nattrs, after[0]->attrs, "units");
  ck_assert(units && units->i == 32);
  for (int i = 2; i < 5; i++) ck_assert_ptr_eq(after[i], before[i]);

  /* folded: element (n, k) of the old weight at (k, n) */
  run_pass(m, &relay_pass_fold_constant, 3);
  relay_call *folded[5];
  dense_calls(m, 5, folded);
  ck_assert_int_eq(folded[0]->args[1]->kind, RELAY_CONST);
  const float *p0 = ((const relay_const *)before[0]->args[1])->data;
  const float *p1 = ((const relay_const *)folded[0]->args[1])->data;
  for (int n = 0; n < 32; n++)
    for (int k = 0; k < 8; k++) ck_assert(p0[n * 8 + k] == p1[k * 32 + n]);
  f = relay_module_get(m, "main");
  run_pass(m, &relay_pass_alter_dense_layout, 3); /* again: nothing left to do */
  ck_assert_ptr_eq(relay_module_get(m, "main"), f);
  relay_module_free(m);
  free(t);
}
END_TEST

/* A two-layer MLP on rank-3 data (odd sizes, a per-column scale that FoldScaleAxis folds
 * first): the build driver stores both weights [K, N], the kernels read no transpose and the
 * model matches the interpreter; a model written with weight_layout KN and a scale after the
 * dense (folded along the weight's second axis) too. */
START_TEST(test_compile_dense_with_pass_matches_interpreter) {
  size_t cap = 1 << 20;
  char *t = calloc(1, cap);
  strcat(t, "def @main(%x: Tensor[(3, 5, 24), float32]) {\n  %0 = nn.dense(%x, ");
  put_const(t, cap, "(40, 24)", 40 * 24);
  strcat(t, ");\n  %1 = multiply(%0, ");
  put_const(t, cap, "(40,)", 40);
  strcat(t, ");\n  %2 = nn.bias_add(%1, ");
  put_const(t, cap, "(40,)", 40);
  strcat(t, ", axis=2);\n  %3 = nn.relu(%2);\n  nn.dense(%3, ");
  put_const(t, cap, "(17, 40)", 17 * 40);
  strcat(t, ")\n}\n");
  static float x[3 * 5 * 24];
  uint64_t r = 5;
  for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)lh_rand_uniform(&r, -1, 1);
  int64_t xs[3] = {3, 5, 24}, ys[3] = {3, 5, 17};
  compile_matches_interpreter(t, 3, xs, x, 3, ys, 3 * 5 * 17,
                              (const char *const[]){"(24,40)f32", "(40,17)f32", NULL});

  t[0] = 0;
  strcat(t, "def @main(%x: Tensor[(6, 24), float32]) {\n  %0 = nn.dense(%x, ");
  put_const(t, cap, "(24, 40)", 24 * 40);
  strcat(t, ", weight_layout=\"KN\");\n  multiply(%0, ");
  put_const(t, cap, "(40,)", 40);
  strcat(t, ")\n}\n");
  int64_t xs2[2] = {6, 24}, ys2[2] = {6, 40};
  compile_matches_interpreter(t, 2, xs2, x, 2, ys2, 6 * 40,
                              (const char *const[]){"(24,40)f32", NULL});
  free(t);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("conv_layout");
  TCase *tc = tcase_create("all");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_hwio_lowering_matches_reference);
  tcase_add_test(tc, test_hwio_with_epilogue);
  tcase_add_test(tc, test_hwio_equals_oihw);
  tcase_add_test(tc, test_channel_last_stages);
  tcase_add_test(tc, test_rules_vectorize_over_channels);
  tcase_add_test(tc, test_pass_rewrites_eligible_convs_only);
  tcase_add_test(tc, test_pass_not_default_and_opt_level);
  tcase_add_test(tc, test_compile_with_pass_matches_interpreter);
  tcase_add_test(tc, test_dense_pass_rewrites_eligible_only);
  tcase_add_test(tc, test_compile_dense_with_pass_matches_interpreter);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

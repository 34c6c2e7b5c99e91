/* test_sch_cache.c: the cache and reduction primitives (schedule/cache.c): cache_read,
 * cache_write, decompose_reduction and storage_align on matmuls, reductions and elementwise
 * stages written in TIR text, with loops split by hand (divisible and not) and symbolic
 * shapes. After every primitive the function must verify and the interpreter must give
 * bit-identical results to the unscheduled function (integer-valued inputs keep sums exact);
 * the trace must replay (through JSON) to a structurally equal function. Every precondition
 * has a negative test checking the code, the message and that nothing changed. */
#include "ir/text.h"
#include "ir/verify.h"
#include "schedule/schedule.h"
#include "test_util.h"

static kiln_context *ctx;
static kiln_tir_module *mod;

static void setup(void) {
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  mod = NULL;
}

static void teardown(void) {
  if (mod) kiln_tir_module_free(mod);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}

/* The first function of a module parsed from text (the module lives until teardown). */
static ir_func *parse(const char *text) {
  if (mod) kiln_tir_module_free(mod);
  mod = NULL;
  ck_ok(ctx, ir_parse_module(ctx, text, strlen(text), "test", &mod));
  ck_ok(ctx, ir_verify_func(ctx, mod->funcs[0]));
  return mod->funcs[0];
}

static sch_schedule *new_sched(const char *text) {
  sch_schedule *s = sch_new(ctx, parse(text), 7);
  ck_assert_ptr_nonnull(s);
  return s;
}

static sch_rv block_rv(sch_schedule *s, const char *name) {
  sch_rv rv;
  ck_ok(ctx, sch_get_block(s, name, &rv));
  return rv;
}

/* The k-th loop around a block. */
static sch_rv loop_rv(sch_schedule *s, const char *block, int k) {
  int n;
  sch_rv *loops;
  ck_ok(ctx, sch_get_loops(s, block_rv(s, block), &n, &loops));
  ck_assert_int_lt(k, n);
  return loops[k];
}

/* The text of the current function (malloc'd through ctx: free with kiln_string_free). */
static char *text_of(sch_schedule *s) {
  char *t = ir_node_to_string(ctx, &sch_func(s)->h);
  ck_assert_ptr_nonnull(t);
  return t;
}

static void expect_text(sch_schedule *s, const char *needle) {
  char *t = text_of(s);
  ck_assert_msg(strstr(t, needle) != NULL, "'%s' not in:\n%s", needle, t);
  kiln_string_free(ctx, t);
}

static void expect_no_text(sch_schedule *s, const char *needle) {
  char *t = text_of(s);
  ck_assert_msg(strstr(t, needle) == NULL, "'%s' unexpectedly in:\n%s", needle, t);
  kiln_string_free(ctx, t);
}

/* ---- Running ----------------------------------------------------------------------------- */

enum { MAX_PARAMS = 8 };

/* The value of a shape expression: a constant or a scalar parameter (from scalars[]). */
static int64_t dim_value(const ir_func *f, const ir_expr *e, const int64_t *scalars) {
  const ir_int_imm *c = ir_as_int(e);
  if (c) return c->value;
  for (int i = 0; i < f->nparams; i++)
    if (f->params[i] == e) return scalars[i];
  ck_abort_msg("shape expression is neither a constant nor a parameter");
  return 0;
}

/* Runs f on float32 buffers filled with small integers (every buffer, outputs included, so
 * that elements a stage does not write are compared too); scalars[i] is the value of scalar
 * parameter i. data[i] receives the buffers (free with free_args). */
static void run(const ir_func *f, const int64_t *scalars, float **data, size_t *sizes) {
  void *args[MAX_PARAMS];
  ck_assert_int_le(f->nparams, MAX_PARAMS);
  for (int i = 0; i < f->nparams; i++) {
    data[i] = NULL;
    sizes[i] = 0;
    const ir_buffer *b = ir_as_buffer(f->params[i]);
    if (!b) {
      args[i] = (void *)&scalars[i];
      continue;
    }
    size_t n = 1;
    for (int d = 0; d < b->ndim; d++) n *= (size_t)dim_value(f, b->shape[d], scalars);
    data[i] = malloc(sizeof(float) * (n ? n : 1));
    ck_assert_ptr_nonnull(data[i]);
    for (size_t k = 0; k < n; k++) data[i][k] = (float)((int)((k * 7 + (size_t)i * 5) % 13) - 6);
    sizes[i] = n;
    args[i] = data[i];
  }
  ck_ok(ctx, ir_interpret(ctx, f, f->nparams, args));
}

static void free_args(int n, float **data) {
  for (int i = 0; i < n; i++) free(data[i]);
}

/* The current function verifies and computes exactly what the unscheduled one does. */
static void check_same(sch_schedule *s, const int64_t *scalars) {
  static const int64_t none[MAX_PARAMS];
  if (!scalars) scalars = none;
  ck_ok(ctx, ir_verify_func(ctx, sch_func(s)));
  float *want[MAX_PARAMS], *got[MAX_PARAMS];
  size_t nw[MAX_PARAMS], ng[MAX_PARAMS];
  run(s->orig, scalars, want, nw);
  run(sch_func(s), scalars, got, ng);
  for (int i = 0; i < s->orig->nparams; i++) {
    ck_assert_uint_eq(nw[i], ng[i]);
    for (size_t k = 0; k < nw[i]; k++)
      ck_assert_msg(memcmp(&want[i][k], &got[i][k], sizeof(float)) == 0,
                    "parameter %d element %zu: %g scheduled, %g unscheduled", i, k,
                    (double)got[i][k], (double)want[i][k]);
  }
  free_args(s->orig->nparams, want);
  free_args(s->orig->nparams, got);
}

/* The trace, through JSON, replays on the unscheduled function to an equal function. */
static void check_replay(sch_schedule *s) {
  char *json;
  size_t len;
  ck_ok(ctx, sch_trace_to_json(ctx, &s->trace, &json, &len));
  ir_arena *ta = ir_arena_new(ctx);
  ck_assert_ptr_nonnull(ta);
  sch_trace t;
  ck_ok(ctx, sch_trace_from_json(ctx, ta, json, &t));
  sch_schedule *r = sch_new(ctx, s->orig, 7);
  ck_assert_ptr_nonnull(r);
  ck_ok(ctx, sch_replay(r, &t, 0, NULL));
  ck_assert_msg(ir_structural_equal(ctx, &sch_func(r)->h, &sch_func(s)->h),
                "replaying %s does not give the same function", json);
  ck_assert_int_eq(r->trace.ninsts, s->trace.ninsts);
  sch_free(r);
  ir_arena_free(ta);
  kiln_string_free(ctx, json);
}

/* The last primitive failed with `code` and a message containing `needle`, leaving the
 * function and the trace as they were. */
static void expect_fail(sch_schedule *s, kiln_status st, kiln_status code, const char *needle,
                        const ir_func *before, int ninsts) {
  ck_assert_msg(st == code, "expected %s, got %s (%s)", kiln_status_str(code),
                kiln_status_str(st), kiln_context_errmsg(ctx));
  ck_errmsg_has(ctx, needle);
  ck_assert_ptr_eq(sch_func(s), before);
  ck_assert_int_eq(s->trace.ninsts, ninsts);
}

/* The names of the blocks directly under the root block, in order, joined by spaces. */
static void root_order(sch_schedule *s, char *buf, size_t cap) {
  int n;
  sch_rv *blocks;
  ck_ok(ctx, sch_get_child_blocks(s, block_rv(s, "root"), &n, &blocks));
  buf[0] = 0;
  for (int i = 0; i < n; i++) {
    const sch_rv_info *r = sch_rv_get(s, blocks[i]);
    snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", i ? " " : "", r->block);
  }
}

static void expect_order(sch_schedule *s, const char *want) {
  char buf[512];
  root_order(s, buf, sizeof buf);
  ck_assert_str_eq(buf, want);
}

/* ---- Programs ------------------------------------------------------------------------------ */

static char text_buf[8192];

/* C = A x B (a reduction with an init, allocated by the root block), then D = relu(C). Reads
 * of "C": A (0), B (1), C (2). */
static const char *matmul(int m, int n, int k) {
  snprintf(text_buf, sizeof text_buf,
           "func @mm(A: buffer(float32, [%di64, %di64]), B: buffer(float32, [%di64, %di64]), "
           "D: buffer(float32, [%di64, %di64])) {\n"
           "  block \"root\"() {\n"
           "    alloc C: buffer(float32, [%di64, %di64])\n"
           "    for i: int64 in range(0i64, %di64) {\n"
           "      for j: int64 in range(0i64, %di64) {\n"
           "        for k: int64 in range(0i64, %di64) {\n"
           "          block \"C\"(vi: int64 = spatial(0i64, %di64) <- i, vj: int64 = spatial(0i64, "
           "%di64) <- j, vk: int64 = reduce(0i64, %di64) <- k) {\n"
           "            reads(A[vi, vk], B[vk, vj], C[vi, vj])\n"
           "            writes(C[vi, vj])\n"
           "            init {\n"
           "              C[vi, vj] = 0f32;\n"
           "            }\n"
           "            C[vi, vj] = C[vi, vj] + A[vi, vk] * B[vk, vj];\n"
           "          }\n"
           "        }\n"
           "      }\n"
           "    }\n"
           "    for i: int64 in range(0i64, %di64) {\n"
           "      for j: int64 in range(0i64, %di64) {\n"
           "        block \"D\"(vi: int64 = spatial(0i64, %di64) <- i, vj: int64 = spatial(0i64, "
           "%di64) <- j) {\n"
           "          reads(C[vi, vj])\n"
           "          writes(D[vi, vj])\n"
           "          D[vi, vj] = max(C[vi, vj], 0f32);\n"
           "        }\n"
           "      }\n"
           "    }\n"
           "  }\n"
           "}\n",
           m, k, k, n, m, n, m, n, m, n, k, m, n, k, m, n, m, n);
  return text_buf;
}

/* The matmul with loop i split by 4 (i0, i1; a predicate when 4 does not divide m) and the
 * loops ordered i0, i1, j, k; the output is written straight into D. */
static const char *matmul_split(int m, int n, int k) {
  int outer = (m + 3) / 4;
  snprintf(text_buf, sizeof text_buf,
           "func @mm_split(A: buffer(float32, [%di64, %di64]), B: buffer(float32, [%di64, "
           "%di64]), D: buffer(float32, [%di64, %di64])) {\n"
           "  block \"root\"() {\n"
           "    for i0: int64 in range(0i64, %di64) {\n"
           "      for i1: int64 in range(0i64, 4i64) {\n"
           "        for j: int64 in range(0i64, %di64) {\n"
           "          for k: int64 in range(0i64, %di64) {\n"
           "            block \"C\"(vi: int64 = spatial(0i64, %di64) <- i0 * 4i64 + i1, vj: int64 "
           "= spatial(0i64, %di64) <- j, vk: int64 = reduce(0i64, %di64) <- k) where i0 * 4i64 "
           "+ i1 < %di64 {\n"
           "              reads(A[vi, vk], B[vk, vj], D[vi, vj])\n"
           "              writes(D[vi, vj])\n"
           "              init {\n"
           "                D[vi, vj] = 0f32;\n"
           "              }\n"
           "              D[vi, vj] = D[vi, vj] + A[vi, vk] * B[vk, vj];\n"
           "            }\n"
           "          }\n"
           "        }\n"
           "      }\n"
           "    }\n"
           "  }\n"
           "}\n",
           m, k, k, n, m, n, outer, n, k, m, n, k, m);
  return text_buf;
}

/* The matmul with the loops ordered i, k, j (reduction loop in the middle). */
static const char *matmul_ikj(int m, int n, int k) {
  snprintf(text_buf, sizeof text_buf,
           "func @mm_ikj(A: buffer(float32, [%di64, %di64]), B: buffer(float32, [%di64, "
           "%di64]), D: buffer(float32, [%di64, %di64])) {\n"
           "  block \"root\"() {\n"
           "    for i: int64 in range(0i64, %di64) {\n"
           "      for k: int64 in range(0i64, %di64) {\n"
           "        for j: int64 in range(0i64, %di64) {\n"
           "          block \"C\"(vi: int64 = spatial(0i64, %di64) <- i, vj: int64 = spatial(0i64, "
           "%di64) <- j, vk: int64 = reduce(0i64, %di64) <- k) {\n"
           "            reads(A[vi, vk], B[vk, vj], D[vi, vj])\n"
           "            writes(D[vi, vj])\n"
           "            init {\n"
           "              D[vi, vj] = 0f32;\n"
           "            }\n"
           "            D[vi, vj] = D[vi, vj] + A[vi, vk] * B[vk, vj];\n"
           "          }\n"
           "        }\n"
           "      }\n"
           "    }\n"
           "  }\n"
           "}\n",
           m, k, k, n, m, n, m, k, n, m, n, k);
  return text_buf;
}

/* Y[r] = sum_k X[r, k] (the reduction writes the output parameter). */
static const char *row_sum(int rows, int cols) {
  snprintf(text_buf, sizeof text_buf,
           "func @row_sum(X: buffer(float32, [%di64, %di64]), Y: buffer(float32, [%di64])) {\n"
           "  block \"root\"() {\n"
           "    for r: int64 in range(0i64, %di64) {\n"
           "      for k: int64 in range(0i64, %di64) {\n"
           "        block \"S\"(vr: int64 = spatial(0i64, %di64) <- r, vk: int64 = reduce(0i64, "
           "%di64) <- k) {\n"
           "          reads(X[vr, vk], Y[vr])\n"
           "          writes(Y[vr])\n"
           "          init {\n"
           "            Y[vr] = 0f32;\n"
           "          }\n"
           "          Y[vr] = Y[vr] + X[vr, vk];\n"
           "        }\n"
           "      }\n"
           "    }\n"
           "  }\n"
           "}\n",
           rows, cols, rows, rows, cols, rows, cols);
  return text_buf;
}

/* Z[] = sum over X (every iterator reduces; a 0-d output). */
static const char *total_sum(int rows, int cols) {
  snprintf(text_buf, sizeof text_buf,
           "func @total(X: buffer(float32, [%di64, %di64]), Z: buffer(float32, [])) {\n"
           "  block \"root\"() {\n"
           "    for r: int64 in range(0i64, %di64) {\n"
           "      for k: int64 in range(0i64, %di64) {\n"
           "        block \"T\"(vr: int64 = reduce(0i64, %di64) <- r, vk: int64 = reduce(0i64, "
           "%di64) <- k) {\n"
           "          reads(X[vr, vk], Z[])\n"
           "          writes(Z[])\n"
           "          init {\n"
           "            Z[] = 1f32;\n"
           "          }\n"
           "          Z[] = Z[] + X[vr, vk];\n"
           "        }\n"
           "      }\n"
           "    }\n"
           "  }\n"
           "}\n",
           rows, cols, rows, cols, rows, cols);
  return text_buf;
}

/* An elementwise stage T = 2X into an intermediate, then three consumers: E1 = T + 1,
 * E2 = T - 1 and a stage that reads X again. */
static const char *two_consumers =
    "func @two(X: buffer(float32, [3i64, 5i64]), E1: buffer(float32, [3i64, 5i64]), "
    "E2: buffer(float32, [3i64, 5i64])) {\n"
    "  block \"root\"() {\n"
    "    alloc T: buffer(float32, [3i64, 5i64])\n"
    "    for i: int64 in range(0i64, 3i64) {\n"
    "      for j: int64 in range(0i64, 5i64) {\n"
    "        block \"P\"(vi: int64 = spatial(0i64, 3i64) <- i, vj: int64 = spatial(0i64, 5i64) <- j) {\n"
    "          reads(X[vi, vj])\n"
    "          writes(T[vi, vj])\n"
    "          T[vi, vj] = X[vi, vj] * 2f32;\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 3i64) {\n"
    "      for j: int64 in range(0i64, 5i64) {\n"
    "        block \"Q1\"(vi: int64 = spatial(0i64, 3i64) <- i, vj: int64 = spatial(0i64, 5i64) <- j) {\n"
    "          reads(T[vi, vj])\n"
    "          writes(E1[vi, vj])\n"
    "          E1[vi, vj] = T[vi, vj] + 1f32;\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 3i64) {\n"
    "      for j: int64 in range(0i64, 5i64) {\n"
    "        block \"Q2\"(vi: int64 = spatial(0i64, 3i64) <- i, vj: int64 = spatial(0i64, 5i64) <- j) {\n"
    "          reads(T[vi, vj], X[vi, vj])\n"
    "          writes(E2[vi, vj])\n"
    "          E2[vi, vj] = T[vi, vj] - X[vi, vj];\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

/* A stage that writes only rows 2..4 of its output. */
static const char *partial_rows =
    "func @part(X: buffer(float32, [8i64, 4i64]), Y: buffer(float32, [8i64, 4i64])) {\n"
    "  block \"root\"() {\n"
    "    for i: int64 in range(2i64, 3i64) {\n"
    "      for j: int64 in range(0i64, 4i64) {\n"
    "        block \"P\"(vi: int64 = spatial(0i64, 8i64) <- i, vj: int64 = spatial(0i64, 4i64) <- j) {\n"
    "          reads(X[vi, vj])\n"
    "          writes(Y[vi, vj])\n"
    "          Y[vi, vj] = X[vi, vj] + 1f32;\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

/* Symbolic rows: X -> T = X + 1 -> Y = 3T; `binding` is what iterator vi of P is bound to. */
static const char *symbolic(const char *binding) {
  snprintf(text_buf, sizeof text_buf,
           "func @sym(n: int64, X: buffer(float32, [n, 4i64]), Y: buffer(float32, [n, 4i64])) {\n"
           "  block \"root\"() {\n"
           "    alloc T: buffer(float32, [n, 4i64])\n"
           "    for i: int64 in range(0i64, n) {\n"
           "      for j: int64 in range(0i64, 4i64) {\n"
           "        block \"P\"(vi: int64 = spatial(0i64, n) <- %s, vj: int64 = spatial(0i64, "
           "4i64) <- j) {\n"
           "          reads(X[vi, vj])\n"
           "          writes(T[vi, vj])\n"
           "          T[vi, vj] = X[vi, vj] + 1f32;\n"
           "        }\n"
           "      }\n"
           "    }\n"
           "    for i: int64 in range(0i64, n) {\n"
           "      for j: int64 in range(0i64, 4i64) {\n"
           "        block \"Q\"(vi: int64 = spatial(0i64, n) <- i, vj: int64 = spatial(0i64, "
           "4i64) <- j) {\n"
           "          reads(T[vi, vj])\n"
           "          writes(Y[vi, vj])\n"
           "          Y[vi, vj] = T[vi, vj] * 3f32;\n"
           "        }\n"
           "      }\n"
           "    }\n"
           "  }\n"
           "}\n",
           binding);
  return text_buf;
}

/* A 3-d intermediate T (dims a x b x c) between two elementwise stages. */
static const char *three_d(int a, int b, int c) {
  snprintf(text_buf, sizeof text_buf,
           "func @t3(X: buffer(float32, [%di64, %di64, %di64]), Y: buffer(float32, [%di64, "
           "%di64, %di64])) {\n"
           "  block \"root\"() {\n"
           "    alloc T: buffer(float32, [%di64, %di64, %di64])\n"
           "    for a: int64 in range(0i64, %di64) {\n"
           "      for b: int64 in range(0i64, %di64) {\n"
           "        for c: int64 in range(0i64, %di64) {\n"
           "          block \"P\"(va: int64 = spatial(0i64, %di64) <- a, vb: int64 = spatial(0i64, "
           "%di64) <- b, vc: int64 = spatial(0i64, %di64) <- c) {\n"
           "            reads(X[va, vb, vc])\n"
           "            writes(T[va, vb, vc])\n"
           "            T[va, vb, vc] = X[va, vb, vc] * 2f32;\n"
           "          }\n"
           "        }\n"
           "      }\n"
           "    }\n"
           "    for a: int64 in range(0i64, %di64) {\n"
           "      for b: int64 in range(0i64, %di64) {\n"
           "        for c: int64 in range(0i64, %di64) {\n"
           "          block \"Q\"(va: int64 = spatial(0i64, %di64) <- a, vb: int64 = spatial(0i64, "
           "%di64) <- b, vc: int64 = spatial(0i64, %di64) <- c) {\n"
           "            reads(T[va, vb, vc])\n"
           "            writes(Y[va, vb, vc])\n"
           "            Y[va, vb, vc] = T[va, vb, vc] - 1f32;\n"
           "          }\n"
           "        }\n"
           "      }\n"
           "    }\n"
           "  }\n"
           "}\n",
           a, b, c, a, b, c, a, b, c, a, b, c, a, b, c, a, b, c, a, b, c);
  return text_buf;
}

static const int shapes[][3] = {{4, 5, 3}, {7, 3, 6}, {1, 8, 2}, {6, 4, 4}};
enum { NSHAPES = sizeof shapes / sizeof shapes[0] };

/* ---- cache_read ---------------------------------------------------------------------------- */

START_TEST(test_cache_read_matmul_input) {
  static const char *const scopes[] = {"local", "global", "shared"};
  for (int sh = 0; sh < NSHAPES; sh++)
    for (int sc = 0; sc < 3; sc++)
      for (int idx = 0; idx < 2; idx++) {
        sch_schedule *s = new_sched(matmul(shapes[sh][0], shapes[sh][1], shapes[sh][2]));
        sch_rv c = block_rv(s, "C"), out;
        ck_ok(ctx, sch_cache_read(s, c, idx, scopes[sc], &out));
        char name[32];
        snprintf(name, sizeof name, "%s_%s", idx ? "B" : "A", scopes[sc]);
        ck_assert_str_eq(sch_rv_get(s, out)->block, name);
        /* The copy stage comes first (the input has no producer); C reads the cache. */
        char order[64];
        snprintf(order, sizeof order, "%s C D", name);
        expect_order(s, order);
        ir_block_realize *r;
        ck_ok(ctx, sch_get_realize(s, "test", c, &r));
        ck_assert_str_eq(r->block->reads[idx]->buffer->name, name);
        ck_assert_str_eq(r->block->reads[idx]->buffer->scope, scopes[sc]);
        char line[128];
        snprintf(line, sizeof line, "alloc %s: buffer(float32, [%di64, %di64], scope=\"%s\")",
                 name, idx ? shapes[sh][2] : shapes[sh][0], idx ? shapes[sh][1] : shapes[sh][2],
                 scopes[sc]);
        if (sc == 1) /* the printer leaves out the default scope */
          snprintf(line, sizeof line, "alloc %s: buffer(float32, [%di64, %di64])", name,
                   idx ? shapes[sh][2] : shapes[sh][0], idx ? shapes[sh][1] : shapes[sh][2]);
        expect_text(s, line);
        check_same(s, NULL);
        check_replay(s);
        sch_free(s);
      }
}
END_TEST

/* The copy of an intermediate goes after its producer, before the first stage reading it. */
START_TEST(test_cache_read_placement) {
  sch_schedule *s = new_sched(two_consumers);
  sch_rv out;
  ck_ok(ctx, sch_cache_read(s, block_rv(s, "Q2"), 0, "local", &out));
  expect_order(s, "P T_local Q1 Q2");
  /* Only Q2 is redirected. */
  ir_block_realize *r;
  ck_ok(ctx, sch_get_realize(s, "test", block_rv(s, "Q2"), &r));
  ck_assert_str_eq(r->block->reads[0]->buffer->name, "T_local");
  ck_assert_str_eq(r->block->reads[1]->buffer->name, "X");
  ck_ok(ctx, sch_get_realize(s, "test", block_rv(s, "Q1"), &r));
  ck_assert_str_eq(r->block->reads[0]->buffer->name, "T");
  check_same(s, NULL);
  /* A second cache of the same buffer and scope gets a fresh name; a parameter read by an
   * earlier stage is copied before that stage. */
  ck_ok(ctx, sch_cache_read(s, block_rv(s, "Q1"), 0, "local", &out));
  ck_assert_str_eq(sch_rv_get(s, out)->block, "T_local_1");
  expect_order(s, "P T_local_1 T_local Q1 Q2");
  ck_ok(ctx, sch_cache_read(s, block_rv(s, "Q2"), 1, "shared", &out));
  expect_order(s, "X_shared P T_local_1 T_local Q1 Q2");
  check_same(s, NULL);
  check_replay(s);
  sch_free(s);
}
END_TEST

/* Y is read (old contents), then overwritten, then read again: the copy for the last reader
 * must come after the writer. */
static const char *reread =
    "func @reread(X: buffer(float32, [6i64]), Y: buffer(float32, [6i64]), "
    "E0: buffer(float32, [6i64]), E1: buffer(float32, [6i64])) {\n"
    "  block \"root\"() {\n"
    "    for i: int64 in range(0i64, 6i64) {\n"
    "      block \"R0\"(vi: int64 = spatial(0i64, 6i64) <- i) {\n"
    "        reads(Y[vi])\n"
    "        writes(E0[vi])\n"
    "        E0[vi] = Y[vi] + 1f32;\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 6i64) {\n"
    "      block \"W\"(vi: int64 = spatial(0i64, 6i64) <- i) {\n"
    "        reads(X[vi])\n"
    "        writes(Y[vi])\n"
    "        Y[vi] = X[vi] * 3f32;\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 6i64) {\n"
    "      block \"R1\"(vi: int64 = spatial(0i64, 6i64) <- i) {\n"
    "        reads(Y[vi])\n"
    "        writes(E1[vi])\n"
    "        E1[vi] = Y[vi] - 1f32;\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

START_TEST(test_cache_read_after_writer) {
  sch_schedule *s = new_sched(reread);
  sch_rv out;
  ck_ok(ctx, sch_cache_read(s, block_rv(s, "R1"), 0, "local", &out));
  expect_order(s, "R0 W Y_local R1");
  check_same(s, NULL);
  ck_ok(ctx, sch_cache_read(s, block_rv(s, "R0"), 0, "local", &out));
  expect_order(s, "Y_local_1 R0 W Y_local R1");
  check_same(s, NULL);
  check_replay(s);
  sch_free(s);
}
END_TEST

/* cache_read of a symbolic-shape input: the copy loops over the whole buffer. */
START_TEST(test_cache_read_symbolic) {
  sch_schedule *s = new_sched(symbolic("i"));
  sch_rv out;
  ck_ok(ctx, sch_cache_read(s, block_rv(s, "P"), 0, "local", &out));
  ck_ok(ctx, sch_cache_read(s, block_rv(s, "Q"), 0, "global", &out));
  expect_order(s, "X_local P T_global Q");
  expect_text(s, "for ax0: int64 in range(0i64, n)");
  int64_t sc[3] = {5, 0, 0};
  check_same(s, sc);
  sc[0] = 1;
  check_same(s, sc);
  check_replay(s);
  sch_free(s);
}
END_TEST

/* ---- cache_write --------------------------------------------------------------------------- */

START_TEST(test_cache_write_matmul) {
  for (int sh = 0; sh < NSHAPES; sh++) {
    int m = shapes[sh][0], n = shapes[sh][1], k = shapes[sh][2];
    sch_schedule *s = new_sched(matmul(m, n, k));
    sch_rv c = block_rv(s, "C"), out;
    ck_ok(ctx, sch_cache_write(s, c, 0, "local", &out));
    ck_assert_str_eq(sch_rv_get(s, out)->block, "C_local");
    expect_order(s, "C C_local D");
    /* The reduction accumulates in the cache, init included. */
    expect_text(s, "C_local[vi, vj] = C_local[vi, vj] + A[vi, vk] * B[vk, vj];");
    expect_text(s, "C_local[vi, vj] = 0f32;");
    expect_text(s, "C[v0, v1] = C_local[v0, v1];");
    check_same(s, NULL);
    /* The output of D through a global cache too. */
    ck_ok(ctx, sch_cache_write(s, block_rv(s, "D"), 0, "global", &out));
    expect_order(s, "C C_local D D_global");
    char loop[64];
    snprintf(loop, sizeof loop, "for ax1: int64 in range(0i64, %di64)", n);
    expect_text(s, loop);
    check_same(s, NULL);
    check_replay(s);
    sch_free(s);
  }
}
END_TEST

/* Split loops with a predicate: the written box is clipped to the buffer. */
START_TEST(test_cache_write_split) {
  static const int ms[] = {8, 10, 3, 1};
  for (int t = 0; t < 4; t++) {
    sch_schedule *s = new_sched(matmul_split(ms[t], 3, 5));
    sch_rv out;
    ck_ok(ctx, sch_cache_write(s, block_rv(s, "C"), 0, "local", &out));
    char loop[64];
    snprintf(loop, sizeof loop, "for ax0: int64 in range(0i64, %di64)", ms[t]);
    expect_text(s, loop);
    check_same(s, NULL);
    check_replay(s);
    sch_free(s);
  }
}
END_TEST

/* Only the rows the block writes are copied back; the others keep their contents. */
START_TEST(test_cache_write_partial) {
  sch_schedule *s = new_sched(partial_rows);
  sch_rv out;
  ck_ok(ctx, sch_cache_write(s, block_rv(s, "P"), 0, "local", &out));
  expect_text(s, "for ax0: int64 in range(0i64, 3i64)");
  expect_text(s, "v0: int64 = spatial(2i64, 3i64) <- 2i64 + ax0");
  check_same(s, NULL); /* the output is prefilled: a whole-buffer copy would clobber it */
  check_replay(s);
  sch_free(s);
}
END_TEST

/* Symbolic rows: the unscheduled binding covers the whole dimension. */
START_TEST(test_cache_write_symbolic) {
  sch_schedule *s = new_sched(symbolic("i"));
  sch_rv out;
  ck_ok(ctx, sch_cache_write(s, block_rv(s, "P"), 0, "local", &out));
  ck_ok(ctx, sch_cache_write(s, block_rv(s, "Q"), 0, "global", &out));
  expect_order(s, "P T_local Q Y_global");
  int64_t sc[3] = {6, 0, 0};
  check_same(s, sc);
  check_replay(s);
  sch_free(s);
}
END_TEST

/* ---- decompose_reduction ------------------------------------------------------------------- */

/* At the outermost loop, at an inner spatial loop and at the reduction loop of a matmul. */
START_TEST(test_decompose_matmul) {
  for (int sh = 0; sh < NSHAPES; sh++)
    for (int at = 0; at < 3; at++) {
      int m = shapes[sh][0], n = shapes[sh][1], k = shapes[sh][2];
      sch_schedule *s = new_sched(matmul(m, n, k));
      sch_rv out;
      ck_ok(ctx, sch_decompose_reduction(s, block_rv(s, "C"), loop_rv(s, "C", at), &out));
      ck_assert_str_eq(sch_rv_get(s, out)->block, "C_init");
      expect_order(s, "C_init C D");
      ir_block_realize *r;
      ck_ok(ctx, sch_get_realize(s, "test", block_rv(s, "C"), &r));
      ck_assert_ptr_null(r->block->init);
      ck_ok(ctx, sch_get_realize(s, "test", out, &r));
      ck_assert_int_eq(r->block->niters, 2);
      ck_assert_int_eq(r->block->nwrites, 1);
      ck_assert_str_eq(r->block->writes[0]->buffer->name, "C");
      int nl;
      sch_rv *loops;
      ck_ok(ctx, sch_get_loops(s, out, &nl, &loops));
      ck_assert_int_eq(nl, 2); /* i, j: outer ones shared, the others fresh */
      if (at == 0) expect_text(s, "for i_init: int64 in range(0i64, ");
      if (at <= 1) expect_text(s, "for j_init: int64 in range(0i64, ");
      if (at == 2) expect_no_text(s, "_init: int64 in range");
      check_same(s, NULL);
      check_replay(s);
      sch_free(s);
    }
}
END_TEST

/* Split spatial loops with a predicate: the init keeps the predicate over its loops. */
START_TEST(test_decompose_split) {
  static const int ms[] = {8, 10, 3};
  for (int t = 0; t < 3; t++)
    for (int at = 0; at < 4; at++) {
      sch_schedule *s = new_sched(matmul_split(ms[t], 3, 2));
      sch_rv out;
      ck_ok(ctx, sch_decompose_reduction(s, block_rv(s, "C"), loop_rv(s, "C", at), &out));
      char pred[64];
      snprintf(pred, sizeof pred, "where i0%s * 4i64 + i1%s < %di64", at == 0 ? "_init" : "",
               at <= 1 ? "_init" : "", ms[t]);
      expect_text(s, pred);
      check_same(s, NULL);
      check_replay(s);
      sch_free(s);
    }
}
END_TEST

/* Loops i, k, j: at k the init iterates j (inside k) before k; at j it would run inside the
 * reduction (see the errors). */
START_TEST(test_decompose_reduction_loop_outside) {
  sch_schedule *s = new_sched(matmul_ikj(3, 4, 5));
  sch_rv out;
  ck_ok(ctx, sch_decompose_reduction(s, block_rv(s, "C"), loop_rv(s, "C", 1), &out));
  expect_text(s, "for j_init: int64 in range(0i64, 4i64)");
  int nl;
  sch_rv *loops;
  ck_ok(ctx, sch_get_loops(s, out, &nl, &loops));
  ck_assert_int_eq(nl, 2);
  check_same(s, NULL);
  check_replay(s);
  sch_free(s);
}
END_TEST

START_TEST(test_decompose_sums) {
  static const int sizes[][2] = {{4, 6}, {1, 3}, {5, 1}};
  for (int t = 0; t < 3; t++)
    for (int at = 0; at < 2; at++) {
      sch_schedule *s = new_sched(row_sum(sizes[t][0], sizes[t][1]));
      sch_rv out;
      ck_ok(ctx, sch_decompose_reduction(s, block_rv(s, "S"), loop_rv(s, "S", at), &out));
      ck_assert_str_eq(sch_rv_get(s, out)->block, "S_init");
      check_same(s, NULL);
      check_replay(s);
      sch_free(s);
      /* Every iterator reduces: an init without iterators before the loop (with init 1, a
       * wrong placement would show). */
      s = new_sched(total_sum(sizes[t][0], sizes[t][1]));
      ck_ok(ctx, sch_decompose_reduction(s, block_rv(s, "T"), loop_rv(s, "T", 0), &out));
      ck_assert_str_eq(sch_rv_get(s, out)->block, "T_init");
      expect_text(s, "block \"T_init\"() {");
      expect_order(s, "T_init T");
      check_same(s, NULL);
      check_replay(s);
      sch_free(s);
    }
}
END_TEST

/* An init that reads with a reduce iterator (seeded with the first element): the init block
 * reads at the iterator's domain start. */
START_TEST(test_decompose_init_uses_reduce_iter) {
  sch_schedule *s = new_sched(
      "func @rmax(X: buffer(float32, [3i64, 5i64]), Y: buffer(float32, [3i64])) {\n"
      "  block \"root\"() {\n"
      "    for r: int64 in range(0i64, 3i64) {\n"
      "      for k: int64 in range(0i64, 4i64) {\n"
      "        block \"M\"(vr: int64 = spatial(0i64, 3i64) <- r,\n"
      "                    vk: int64 = reduce(1i64, 4i64) <- k + 1i64) {\n"
      "          reads(X[vr, vk], Y[vr])\n"
      "          writes(Y[vr])\n"
      "          init {\n"
      "            Y[vr] = X[vr, vk - 1i64];\n"
      "          }\n"
      "          Y[vr] = max(Y[vr], X[vr, vk]);\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n");
  sch_rv out;
  ck_ok(ctx, sch_decompose_reduction(s, block_rv(s, "M"), loop_rv(s, "M", 0), &out));
  expect_text(s, "= X[vr, 1i64 - 1i64];");
  check_same(s, NULL);
  check_replay(s);
  sch_free(s);
}
END_TEST

/* The init goes into the loop's sequence when the loop shares one with other statements. */
START_TEST(test_decompose_in_sequence) {
  sch_schedule *s = new_sched(matmul(3, 4, 2));
  sch_rv out;
  /* Under the root block's sequence (loop i of C) */
  ck_ok(ctx, sch_decompose_reduction(s, block_rv(s, "C"), loop_rv(s, "C", 0), &out));
  ir_block *root = ir_as_realize(sch_func(s)->body)->block;
  ck_assert_int_eq(root->body->kind, IR_SEQ);
  ck_assert_int_eq(((ir_seq *)root->body)->nstmts, 3); /* flat: init nest, C nest, D nest */
  check_same(s, NULL);
  sch_free(s);
}
END_TEST

/* ---- storage_align ------------------------------------------------------------------------- */

START_TEST(test_storage_align_matmul) {
  static const int cases[][4] = {/* n, factor, offset, stride */
                                 {16, 8, 1, 17}, {16, 8, 0, 16}, {5, 4, 2, 6}, {3, 32, 31, 31},
                                 {6, 1, 0, 6}};
  for (int t = 0; t < 5; t++) {
    sch_schedule *s = new_sched(matmul(3, cases[t][0], 2));
    ck_ok(ctx, sch_storage_align(s, block_rv(s, "C"), 0, 0, cases[t][1], cases[t][2]));
    char line[128];
    snprintf(line, sizeof line, "alloc C: buffer(float32, [3i64, %di64], strides=[%di64, 1i64])",
             cases[t][0], cases[t][3]);
    expect_text(s, line);
    /* One buffer object everywhere: the consumer reads the strided buffer. */
    ir_block_realize *rc, *rd;
    ck_ok(ctx, sch_get_realize(s, "test", block_rv(s, "C"), &rc));
    ck_ok(ctx, sch_get_realize(s, "test", block_rv(s, "D"), &rd));
    ck_assert_ptr_eq(rc->block->writes[0]->buffer, rd->block->reads[0]->buffer);
    ck_assert_int_eq(rc->block->writes[0]->buffer->nstrides, 2);
    check_same(s, NULL);
    check_replay(s);
    sch_free(s);
  }
}
END_TEST

/* Several axes of a 3-d buffer: inner first composes; an earlier outer padding that still
 * clears the rows stays. */
START_TEST(test_storage_align_3d) {
  sch_schedule *s = new_sched(three_d(2, 3, 5));
  ck_ok(ctx, sch_storage_align(s, block_rv(s, "P"), 0, 1, 8, 0));
  expect_text(s, "strides=[24i64, 8i64, 1i64]");
  ck_ok(ctx, sch_storage_align(s, block_rv(s, "P"), 0, 0, 4, 1));
  expect_text(s, "strides=[25i64, 8i64, 1i64]");
  check_same(s, NULL);
  check_replay(s);
  sch_free(s);

  s = new_sched(three_d(2, 3, 4));
  ck_ok(ctx, sch_storage_align(s, block_rv(s, "P"), 0, 0, 32, 0));
  expect_text(s, "strides=[32i64, 4i64, 1i64]");
  ck_ok(ctx, sch_storage_align(s, block_rv(s, "P"), 0, 1, 8, 0));
  expect_text(s, "strides=[32i64, 8i64, 1i64]");
  check_same(s, NULL);
  check_replay(s);
  sch_free(s);
}
END_TEST

/* Symbolic inner dimension: the padded stride is an expression. */
START_TEST(test_storage_align_symbolic) {
  sch_schedule *s = new_sched(
      "func @symw(n: int64, X: buffer(float32, [4i64, n]), Y: buffer(float32, [4i64, n])) {\n"
      "  block \"root\"() {\n"
      "    alloc T: buffer(float32, [4i64, n])\n"
      "    for i: int64 in range(0i64, 4i64) {\n"
      "      for j: int64 in range(0i64, n) {\n"
      "        block \"P\"(vi: int64 = spatial(0i64, 4i64) <- i, vj: int64 = spatial(0i64, n) <- j) {\n"
      "          reads(X[vi, vj])\n"
      "          writes(T[vi, vj])\n"
      "          T[vi, vj] = X[vi, vj] + 2f32;\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "    for i: int64 in range(0i64, 4i64) {\n"
      "      for j: int64 in range(0i64, n) {\n"
      "        block \"Q\"(vi: int64 = spatial(0i64, 4i64) <- i, vj: int64 = spatial(0i64, n) <- j) {\n"
      "          reads(T[vi, vj])\n"
      "          writes(Y[vi, vj])\n"
      "          Y[vi, vj] = T[vi, vj] * T[vi, vj];\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n");
  ck_ok(ctx, sch_storage_align(s, block_rv(s, "P"), 0, 0, 8, 3));
  expect_text(s, "strides=[");
  int64_t sc[3] = {5, 0, 0};
  check_same(s, sc);
  sc[0] = 11;
  check_same(s, sc);
  check_replay(s);
  sch_free(s);
}
END_TEST

/* ---- Combinations -------------------------------------------------------------------------- */

START_TEST(test_cache_write_then_decompose) {
  for (int sh = 0; sh < NSHAPES; sh++)
    for (int at = 0; at < 3; at++) {
      sch_schedule *s = new_sched(matmul(shapes[sh][0], shapes[sh][1], shapes[sh][2]));
      sch_rv c = block_rv(s, "C"), wb, init, rd;
      ck_ok(ctx, sch_cache_write(s, c, 0, "local", &wb));
      ck_ok(ctx, sch_decompose_reduction(s, c, loop_rv(s, "C", at), &init));
      expect_order(s, "C_init C C_local D");
      ir_block_realize *r;
      ck_ok(ctx, sch_get_realize(s, "test", init, &r));
      ck_assert_str_eq(r->block->writes[0]->buffer->name, "C_local");
      /* Then the inputs through caches and the cache aligned. */
      ck_ok(ctx, sch_cache_read(s, c, 0, "shared", &rd));
      ck_ok(ctx, sch_storage_align(s, init, 0, 0, 4, 1));
      check_same(s, NULL);
      check_replay(s);
      sch_free(s);
    }
}
END_TEST

/* ---- Errors --------------------------------------------------------------------------------- */

/* Stage-local intermediate: P writes T and Q reads it in the same loop nest. */
static const char *same_nest =
    "func @nest(X: buffer(float32, [4i64]), Y: buffer(float32, [4i64])) {\n"
    "  block \"root\"() {\n"
    "    alloc T: buffer(float32, [4i64])\n"
    "    for i: int64 in range(0i64, 4i64) {\n"
    "      block \"P\"(vi: int64 = spatial(0i64, 4i64) <- i) {\n"
    "        reads(X[vi])\n"
    "        writes(T[vi])\n"
    "        T[vi] = X[vi] * 2f32;\n"
    "      }\n"
    "      block \"Q\"(vi: int64 = spatial(0i64, 4i64) <- i) {\n"
    "        reads(T[vi])\n"
    "        writes(Y[vi])\n"
    "        Y[vi] = T[vi] + 1f32;\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

/* T allocated by an allocate statement inside the stage. */
static const char *inner_alloc =
    "func @inner(X: buffer(float32, [4i64]), Y: buffer(float32, [4i64])) {\n"
    "  block \"root\"() {\n"
    "    for i: int64 in range(0i64, 4i64) {\n"
    "      allocate T: buffer(float32, [4i64]) {\n"
    "        block \"P\"(vi: int64 = spatial(0i64, 4i64) <- i) {\n"
    "          reads(X[vi])\n"
    "          writes(T[vi])\n"
    "          T[vi] = X[vi] * 2f32;\n"
    "        }\n"
    "        block \"Q\"(vi: int64 = spatial(0i64, 4i64) <- i) {\n"
    "          reads(T[vi])\n"
    "          writes(Y[vi])\n"
    "          Y[vi] = T[vi] + 1f32;\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

/* A block that lists its own buffer among its regions, and one that updates X in place. */
static const char *own_and_inplace =
    "func @own(X: buffer(float32, [4i64]), Y: buffer(float32, [4i64])) {\n"
    "  block \"root\"() {\n"
    "    for i: int64 in range(0i64, 4i64) {\n"
    "      block \"O\"(vi: int64 = spatial(0i64, 4i64) <- i) {\n"
    "        alloc W: buffer(float32, [1i64])\n"
    "        reads(W[0i64], X[vi])\n"
    "        writes(W[0i64], Y[vi])\n"
    "        W[0i64] = X[vi];\n"
    "        Y[vi] = W[0i64];\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 4i64) {\n"
    "      block \"U\"(vi: int64 = spatial(0i64, 4i64) <- i) {\n"
    "        reads(X[vi])\n"
    "        writes(X[vi])\n"
    "        X[vi] = X[vi] + 1f32;\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

START_TEST(test_cache_read_errors) {
  sch_schedule *s = new_sched(matmul(3, 4, 5));
  sch_rv c = block_rv(s, "C"), out;
  const ir_func *f = sch_func(s);
  int n = s->trace.ninsts;
  expect_fail(s, sch_cache_read(s, c, 3, "local", &out), KILN_ERR_SCHEDULE,
              "cache_read: read_index 3 is out of range: block 'C' has 3 read regions", f, n);
  expect_fail(s, sch_cache_read(s, c, -1, "local", &out), KILN_ERR_SCHEDULE,
              "read_index -1 is out of range", f, n);
  expect_fail(s, sch_cache_read(s, c, 0, "texture", &out), KILN_ERR_SCHEDULE,
              "unknown storage scope 'texture'", f, n);
  expect_fail(s, sch_cache_read(s, c, 2, "local", &out), KILN_ERR_SCHEDULE,
              "block 'C' also writes buffer 'C'", f, n);
  int nl;
  sch_rv *loops;
  ck_ok(ctx, sch_get_loops(s, c, &nl, &loops));
  n = s->trace.ninsts;
  expect_fail(s, sch_cache_read(s, loops[0], 0, "local", &out), KILN_ERR_MISUSE,
              "expected a block, got a loop", f, n);
  expect_fail(s, sch_cache_read(s, c, 0, NULL, &out), KILN_ERR_MISUSE, "no scope", f, n);
  sch_free(s);

  s = new_sched(same_nest);
  f = sch_func(s);
  sch_rv q = block_rv(s, "Q");
  n = s->trace.ninsts;
  expect_fail(s, sch_cache_read(s, q, 0, "local", &out), KILN_ERR_SCHEDULE,
              "block 'P' writes buffer 'T' in the same loop nest as block 'Q'", f, n);
  sch_free(s);

  s = new_sched(inner_alloc);
  f = sch_func(s);
  q = block_rv(s, "Q");
  n = s->trace.ninsts;
  expect_fail(s, sch_cache_read(s, q, 0, "local", &out), KILN_ERR_SCHEDULE,
              "buffer 'T' is allocated inside the scope of block 'Q'", f, n);
  sch_free(s);

  s = new_sched(own_and_inplace);
  f = sch_func(s);
  sch_rv o = block_rv(s, "O");
  n = s->trace.ninsts;
  expect_fail(s, sch_cache_read(s, o, 0, "local", &out), KILN_ERR_SCHEDULE,
              "buffer 'W' is allocated by block 'O' itself", f, n);
  sch_free(s);
}
END_TEST

/* Blocks without a stage to copy next to: no root block, or inside another block's init. */
START_TEST(test_cache_scope_errors) {
  sch_schedule *s = new_sched(
      "func @noroot(X: buffer(float32, [4i64]), Y: buffer(float32, [4i64])) {\n"
      "  for i: int64 in range(0i64, 4i64) {\n"
      "    block \"P\"(vi: int64 = spatial(0i64, 4i64) <- i) {\n"
      "      reads(X[vi])\n"
      "      writes(Y[vi])\n"
      "      Y[vi] = X[vi];\n"
      "    }\n"
      "  }\n"
      "}\n");
  const ir_func *f = sch_func(s);
  sch_rv p = block_rv(s, "P"), out;
  int n = s->trace.ninsts;
  expect_fail(s, sch_cache_read(s, p, 0, "local", &out), KILN_ERR_SCHEDULE,
              "cache_read: block 'P' is not inside a root block", f, n);
  expect_fail(s, sch_cache_write(s, p, 0, "local", &out), KILN_ERR_SCHEDULE,
              "cache_write: block 'P' is not inside a root block", f, n);
  sch_free(s);

  s = new_sched(
      "func @ininit(X: buffer(float32, [4i64]), Y: buffer(float32, [4i64])) {\n"
      "  block \"root\"() {\n"
      "    for k: int64 in range(0i64, 4i64) {\n"
      "      block \"O\"(vk: int64 = reduce(0i64, 4i64) <- k) {\n"
      "        reads(X[0i64 +: 4i64], Y[0i64])\n"
      "        writes(Y[0i64])\n"
      "        init {\n"
      "          block \"I\"() {\n"
      "            reads(X[0i64])\n"
      "            writes(Y[0i64])\n"
      "            Y[0i64] = X[0i64];\n"
      "          }\n"
      "        }\n"
      "        Y[0i64] = Y[0i64] + X[vk];\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n");
  f = sch_func(s);
  sch_rv in = block_rv(s, "I");
  n = s->trace.ninsts;
  expect_fail(s, sch_cache_read(s, in, 0, "local", &out), KILN_ERR_SCHEDULE,
              "block 'I' lies in the init of block 'O'", f, n);
  sch_free(s);
}
END_TEST

START_TEST(test_cache_write_errors) {
  sch_schedule *s = new_sched(matmul(3, 4, 5));
  sch_rv c = block_rv(s, "C"), out, init;
  const ir_func *f = sch_func(s);
  int n = s->trace.ninsts;
  expect_fail(s, sch_cache_write(s, c, 1, "local", &out), KILN_ERR_SCHEDULE,
              "cache_write: write_index 1 is out of range: block 'C' has 1 write regions", f, n);
  expect_fail(s, sch_cache_write(s, c, 0, "register", &out), KILN_ERR_SCHEDULE,
              "unknown storage scope 'register' (expected \"global\", \"shared\" or \"local\")",
              f, n);
  expect_fail(s, sch_cache_write(s, c, 0, "local", NULL), KILN_ERR_MISUSE, "no scope or output",
              f, n);
  /* After decompose_reduction the init block writes C too. */
  ck_ok(ctx, sch_decompose_reduction(s, c, loop_rv(s, "C", 0), &init));
  f = sch_func(s);
  n = s->trace.ninsts;
  expect_fail(s, sch_cache_write(s, c, 0, "local", &out), KILN_ERR_SCHEDULE,
              "block 'C_init' also writes buffer 'C' (cache_write needs block 'C' to be its only "
              "writer)", f, n);
  sch_free(s);

  s = new_sched(same_nest);
  f = sch_func(s);
  n = s->trace.ninsts;
  sch_rv p = block_rv(s, "P");
  n = s->trace.ninsts;
  expect_fail(s, sch_cache_write(s, p, 0, "local", &out), KILN_ERR_SCHEDULE,
              "block 'Q' reads buffer 'T' in the same loop nest as block 'P'", f, n);
  sch_free(s);

  s = new_sched(inner_alloc);
  f = sch_func(s);
  p = block_rv(s, "P");
  n = s->trace.ninsts;
  expect_fail(s, sch_cache_write(s, p, 0, "local", &out), KILN_ERR_SCHEDULE,
              "buffer 'T' is allocated inside the scope of block 'P'", f, n);
  sch_free(s);

  s = new_sched(own_and_inplace);
  f = sch_func(s);
  sch_rv o = block_rv(s, "O"), u = block_rv(s, "U");
  n = s->trace.ninsts;
  expect_fail(s, sch_cache_write(s, o, 0, "local", &out), KILN_ERR_SCHEDULE,
              "buffer 'W' is allocated by block 'O' itself", f, n);
  expect_fail(s, sch_cache_write(s, u, 0, "local", &out), KILN_ERR_SCHEDULE,
              "block 'U' reads buffer 'X' without an init writing it first", f, n);
  /* O's second write region (Y) is fine. */
  ck_ok(ctx, sch_cache_write(s, o, 1, "local", &out));
  check_same(s, NULL);
  sch_free(s);

  /* A reversed binding over a symbolic extent cannot be bounded. */
  s = new_sched(symbolic("n - 1i64 - i"));
  f = sch_func(s);
  p = block_rv(s, "P");
  n = s->trace.ninsts;
  expect_fail(s, sch_cache_write(s, p, 0, "local", &out), KILN_ERR_SCHEDULE,
              "cannot bound the part of buffer 'T' that block 'P' writes in dimension 0", f, n);
  /* Dimension 1 alone would be fine: cache_read of the same program works. */
  ck_ok(ctx, sch_cache_read(s, block_rv(s, "Q"), 0, "local", &out));
  int64_t sc[3] = {4, 0, 0};
  check_same(s, sc);
  sch_free(s);
}
END_TEST

START_TEST(test_decompose_errors) {
  sch_schedule *s = new_sched(matmul(3, 4, 5));
  sch_rv c = block_rv(s, "C"), d = block_rv(s, "D"), out;
  sch_rv dloop = loop_rv(s, "D", 0), cloop = loop_rv(s, "C", 0);
  const ir_func *f = sch_func(s);
  int n = s->trace.ninsts;
  expect_fail(s, sch_decompose_reduction(s, d, dloop, &out), KILN_ERR_SCHEDULE,
              "decompose_reduction: block 'D' is not a reduction block (it has no init)", f, n);
  expect_fail(s, sch_decompose_reduction(s, c, dloop, &out), KILN_ERR_SCHEDULE,
              "loop 'i' is not one of the loops around block 'C'", f, n);
  expect_fail(s, sch_decompose_reduction(s, c, c, &out), KILN_ERR_MISUSE,
              "expected a loop, got a block", f, n);
  expect_fail(s, sch_decompose_reduction(s, cloop, cloop, &out), KILN_ERR_MISUSE,
              "expected a block, got a loop", f, n);
  /* Decomposed once, the block is no reduction any more. */
  ck_ok(ctx, sch_decompose_reduction(s, c, cloop, &out));
  f = sch_func(s);
  n = s->trace.ninsts;
  expect_fail(s, sch_decompose_reduction(s, c, cloop, &out), KILN_ERR_SCHEDULE,
              "block 'C' is not a reduction block", f, n);
  sch_free(s);

  s = new_sched(matmul_ikj(3, 4, 5));
  c = block_rv(s, "C");
  sch_rv j = loop_rv(s, "C", 2);
  f = sch_func(s);
  n = s->trace.ninsts;
  expect_fail(s, sch_decompose_reduction(s, c, j, &out), KILN_ERR_SCHEDULE,
              "loop 'k' lies outside loop 'j' and is bound to reduce iterator 'vk' of block 'C'",
              f, n);
  sch_free(s);

  /* An if between the loop and the block; a predicate tying i to k; a kept loop whose
   * extent depends on the reduction loop; an init using the block's own buffer. */
  s = new_sched(
      "func @bad(A: buffer(float32, [4i64, 4i64]), Y: buffer(float32, [4i64]), "
      "Z: buffer(float32, [4i64]), W: buffer(float32, [4i64, 4i64]), V: buffer(float32, [4i64])) {\n"
      "  block \"root\"() {\n"
      "    for i: int64 in range(0i64, 4i64) {\n"
      "      if i < 3i64 {\n"
      "        for k: int64 in range(0i64, 4i64) {\n"
      "          block \"R1\"(vi: int64 = spatial(0i64, 4i64) <- i, vk: int64 = reduce(0i64, 4i64) <- k) {\n"
      "            reads(A[vi, vk], Y[vi])\n"
      "            writes(Y[vi])\n"
      "            init {\n"
      "              Y[vi] = 0f32;\n"
      "            }\n"
      "            Y[vi] = Y[vi] + A[vi, vk];\n"
      "          }\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "    for i: int64 in range(0i64, 4i64) {\n"
      "      for k: int64 in range(0i64, 4i64) {\n"
      "        block \"R2\"(vi: int64 = spatial(0i64, 4i64) <- i,\n"
      "                     vk: int64 = reduce(0i64, 4i64) <- k) where i + k < 6i64 {\n"
      "          reads(A[vi, vk], Z[vi])\n"
      "          writes(Z[vi])\n"
      "          init {\n"
      "            Z[vi] = 0f32;\n"
      "          }\n"
      "          Z[vi] = Z[vi] + A[vi, vk];\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "    for i: int64 in range(0i64, 4i64) {\n"
      "      for k: int64 in range(0i64, 4i64) {\n"
      "        for j: int64 in range(0i64, k + 1i64) {\n"
      "          block \"R3\"(vi: int64 = spatial(0i64, 4i64) <- i, vj: int64 = spatial(0i64, 4i64) <- j,\n"
      "                       vk: int64 = reduce(0i64, 4i64) <- k) {\n"
      "            reads(A[vi, vk], W[vi, vj])\n"
      "            writes(W[vi, vj])\n"
      "            init {\n"
      "              W[vi, vj] = 0f32;\n"
      "            }\n"
      "            W[vi, vj] = W[vi, vj] + A[vi, vk];\n"
      "          }\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "    for i: int64 in range(0i64, 4i64) {\n"
      "      for k: int64 in range(0i64, 4i64) {\n"
      "        block \"R4\"(vi: int64 = spatial(0i64, 4i64) <- i, vk: int64 = reduce(0i64, 4i64) <- k) {\n"
      "          alloc acc: buffer(float32, [1i64])\n"
      "          reads(A[vi, vk], acc[0i64])\n"
      "          writes(acc[0i64], V[vi])\n"
      "          init {\n"
      "            acc[0i64] = 0f32;\n"
      "          }\n"
      "          acc[0i64] = acc[0i64] + A[vi, vk];\n"
      "          V[vi] = acc[0i64];\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n");
  f = sch_func(s);
  sch_rv r1 = block_rv(s, "R1"), r2 = block_rv(s, "R2"), r3 = block_rv(s, "R3");
  sch_rv r4 = block_rv(s, "R4");
  sch_rv l1 = loop_rv(s, "R1", 0), l2 = loop_rv(s, "R2", 0), l3 = loop_rv(s, "R3", 1);
  sch_rv l4 = loop_rv(s, "R4", 0);
  n = s->trace.ninsts;
  expect_fail(s, sch_decompose_reduction(s, r1, l1, &out), KILN_ERR_SCHEDULE,
              "a if statement lies between loop 'i' and block 'R1'", f, n);
  expect_fail(s, sch_decompose_reduction(s, r2, l2, &out), KILN_ERR_SCHEDULE,
              "the predicate of block 'R2' ties loop 'i' of the init to loop 'k' of the "
              "reduction", f, n);
  expect_fail(s, sch_decompose_reduction(s, r3, l3, &out), KILN_ERR_SCHEDULE,
              "the range of loop 'j' depends on loop 'k', which the init of block 'R3' does not "
              "iterate over", f, n);
  expect_fail(s, sch_decompose_reduction(s, r4, l4, &out), KILN_ERR_SCHEDULE,
              "the init of block 'R4' uses buffer 'acc', which the block allocates", f, n);
  /* Below the if (at k) R1 decomposes, and R2 at k keeps its predicate (i is outside). */
  ck_ok(ctx, sch_decompose_reduction(s, r1, loop_rv(s, "R1", 1), &out));
  ck_ok(ctx, sch_decompose_reduction(s, r2, loop_rv(s, "R2", 1), &out));
  check_same(s, NULL);
  check_replay(s);
  sch_free(s);
}
END_TEST

START_TEST(test_storage_align_errors) {
  sch_schedule *s = new_sched(matmul(3, 4, 5));
  sch_rv c = block_rv(s, "C"), d = block_rv(s, "D");
  const ir_func *f = sch_func(s);
  int n = s->trace.ninsts;
  expect_fail(s, sch_storage_align(s, c, 1, 0, 4, 0), KILN_ERR_SCHEDULE,
              "storage_align: buffer_index 1 is out of range: block 'C' has 1 write regions", f, n);
  expect_fail(s, sch_storage_align(s, c, -1, 0, 4, 0), KILN_ERR_SCHEDULE,
              "buffer_index -1 is out of range", f, n);
  expect_fail(s, sch_storage_align(s, d, 0, 0, 4, 0), KILN_ERR_SCHEDULE,
              "buffer 'D' is a parameter of function 'mm' (only intermediate buffers can be "
              "aligned)", f, n);
  expect_fail(s, sch_storage_align(s, c, 0, 1, 4, 0), KILN_ERR_SCHEDULE,
              "axis 1 of buffer 'C' cannot be aligned: valid axes are 0 to 0 (the innermost "
              "axis 1 keeps stride 1)", f, n);
  expect_fail(s, sch_storage_align(s, c, 0, 2, 4, 0), KILN_ERR_SCHEDULE, "axis 2 of buffer 'C'",
              f, n);
  expect_fail(s, sch_storage_align(s, c, 0, -1, 4, 0), KILN_ERR_SCHEDULE,
              "axis -1 of buffer 'C'", f, n);
  expect_fail(s, sch_storage_align(s, c, 0, 0, 0, 0), KILN_ERR_SCHEDULE,
              "factor 0 must be positive", f, n);
  expect_fail(s, sch_storage_align(s, c, 0, 0, -3, 0), KILN_ERR_SCHEDULE,
              "factor -3 must be positive", f, n);
  expect_fail(s, sch_storage_align(s, c, 0, 0, 4, 4), KILN_ERR_SCHEDULE,
              "offset 4 must lie in [0, 4)", f, n);
  expect_fail(s, sch_storage_align(s, c, 0, 0, 4, -1), KILN_ERR_SCHEDULE,
              "offset -1 must lie in [0, 4)", f, n);
  expect_fail(s, sch_storage_align(s, -5, 0, 0, 4, 0), KILN_ERR_MISUSE,
              "-5 is not a random variable", f, n);
  sch_free(s);

  /* A 1-d intermediate has no alignable axis. */
  s = new_sched(same_nest);
  f = sch_func(s);
  sch_rv p = block_rv(s, "P");
  n = s->trace.ninsts;
  expect_fail(s, sch_storage_align(s, p, 0, 0, 4, 0), KILN_ERR_SCHEDULE,
              "buffer 'T' has 1 dimension: only an axis outside the innermost can be aligned", f,
              n);
  sch_free(s);

  /* Outer axis first, then an inner one that outgrows it. */
  s = new_sched(three_d(2, 3, 5));
  p = block_rv(s, "P");
  ck_ok(ctx, sch_storage_align(s, p, 0, 0, 4, 0));
  expect_text(s, "strides=[16i64, 5i64, 1i64]");
  f = sch_func(s);
  n = s->trace.ninsts;
  expect_fail(s, sch_storage_align(s, p, 0, 1, 8, 0), KILN_ERR_SCHEDULE,
              "axis 0 of buffer 'T' was aligned before and its stride would no longer clear axis "
              "1; align the inner axes first", f, n);
  sch_free(s);
}
END_TEST

/* ---- Replay entries ------------------------------------------------------------------------ */

START_TEST(test_apply_entries) {
  sch_schedule *s = new_sched(matmul(3, 4, 5));
  sch_rv c = block_rv(s, "C"), outs[SCH_MAX_INST_ARGS];
  int nout = -1;
  /* Well-formed inputs go through to the primitive. */
  sch_arg good[3] = {sch_arg_rv(s, c), sch_arg_int(0), sch_arg_str("local")};
  ck_ok(ctx, sch_apply_cache_read(s, 3, good, -1, NULL, outs, &nout));
  ck_assert_int_eq(nout, 1);
  ck_assert_str_eq(sch_rv_get(s, outs[0])->block, "A_local");
  /* Malformed ones are parse errors naming the instruction. */
  sch_arg bad[3] = {sch_arg_rv(s, c), sch_arg_str("0"), sch_arg_str("local")};
  ck_assert_int_eq(sch_apply_cache_read(s, 3, bad, -1, NULL, outs, &nout), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "cache_read takes a block, a region index and a scope");
  ck_assert_int_eq(sch_apply_cache_write(s, 2, good, -1, NULL, outs, &nout), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "cache_write takes");
  sch_arg notblock[3] = {sch_arg_int(4), sch_arg_int(0), sch_arg_str("local")};
  ck_assert_int_eq(sch_apply_cache_write(s, 3, notblock, -1, NULL, outs, &nout), KILN_ERR_PARSE);
  ck_assert_int_eq(sch_apply_decompose_reduction(s, 1, good, -1, NULL, outs, &nout),
                   KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "decompose_reduction takes a block and a loop");
  sch_arg two[2] = {sch_arg_rv(s, c), sch_arg_rv(s, c)};
  ck_assert_int_eq(sch_apply_decompose_reduction(s, 2, two, -1, NULL, outs, &nout),
                   KILN_ERR_PARSE);
  sch_arg al[5] = {sch_arg_rv(s, c), sch_arg_int(0), sch_arg_int(0), sch_arg_int(4),
                   sch_arg_int(1)};
  ck_ok(ctx, sch_apply_storage_align(s, 5, al, -1, NULL, outs, &nout));
  ck_assert_int_eq(nout, 0);
  al[3] = sch_arg_float(4.0);
  ck_assert_int_eq(sch_apply_storage_align(s, 5, al, -1, NULL, outs, &nout), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "storage_align takes a block and four integers");
  al[3] = sch_arg_int(1ll << 40);
  ck_assert_int_eq(sch_apply_storage_align(s, 5, al, -1, NULL, outs, &nout), KILN_ERR_PARSE);
  ck_assert_int_eq(sch_apply_storage_align(s, 4, al, -1, NULL, outs, &nout), KILN_ERR_PARSE);
  check_same(s, NULL);
  sch_free(s);
}
END_TEST

/* ---- Allocation failures ------------------------------------------------------------------- */

/* Each primitive under a failing N-th allocation: NOMEM with the function and trace unchanged,
 * until N is large enough; nothing leaks (teardown counts). */
START_TEST(test_alloc_failures) {
  for (int prim = 0; prim < 4; prim++) {
    bool done = false;
    for (long k = 1; k < 5000 && !done; k++) {
      sch_schedule *s = new_sched(prim == 3 ? partial_rows : matmul(3, 4, 5));
      sch_rv c = block_rv(s, prim == 3 ? "P" : "C"), loop = loop_rv(s, prim == 3 ? "P" : "C", 1);
      sch_rv out;
      const ir_func *f = sch_func(s);
      int n = s->trace.ninsts;
      kiln_context_fail_alloc(ctx, k);
      kiln_status st = prim == 0   ? sch_cache_read(s, c, 1, "local", &out)
                       : prim == 1 ? sch_decompose_reduction(s, c, loop, &out)
                       : prim == 2 ? sch_storage_align(s, c, 0, 0, 8, 3)
                                   : sch_cache_write(s, c, 0, "local", &out);
      kiln_context_fail_alloc(ctx, 0);
      if (st == KILN_OK) {
        done = true;
        check_same(s, NULL);
      } else {
        ck_assert_msg(st == KILN_ERR_NOMEM, "primitive %d, allocation %ld: %s (%s)", prim, k,
                      kiln_status_str(st), kiln_context_errmsg(ctx));
        ck_assert_ptr_eq(sch_func(s), f);
        ck_assert_int_eq(s->trace.ninsts, n);
      }
      sch_free(s);
    }
    ck_assert_msg(done, "primitive %d never succeeded", prim);
  }
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("sch_cache");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_cache_read_matmul_input);
  tcase_add_test(tc, test_cache_read_placement);
  tcase_add_test(tc, test_cache_read_after_writer);
  tcase_add_test(tc, test_cache_read_symbolic);
  tcase_add_test(tc, test_cache_write_matmul);
  tcase_add_test(tc, test_cache_write_split);
  tcase_add_test(tc, test_cache_write_partial);
  tcase_add_test(tc, test_cache_write_symbolic);
  tcase_add_test(tc, test_decompose_matmul);
  tcase_add_test(tc, test_decompose_split);
  tcase_add_test(tc, test_decompose_reduction_loop_outside);
  tcase_add_test(tc, test_decompose_sums);
  tcase_add_test(tc, test_decompose_init_uses_reduce_iter);
  tcase_add_test(tc, test_decompose_in_sequence);
  tcase_add_test(tc, test_storage_align_matmul);
  tcase_add_test(tc, test_storage_align_3d);
  tcase_add_test(tc, test_storage_align_symbolic);
  tcase_add_test(tc, test_cache_write_then_decompose);
  tcase_add_test(tc, test_cache_read_errors);
  tcase_add_test(tc, test_cache_scope_errors);
  tcase_add_test(tc, test_cache_write_errors);
  tcase_add_test(tc, test_decompose_errors);
  tcase_add_test(tc, test_storage_align_errors);
  tcase_add_test(tc, test_apply_entries);
  tcase_add_test(tc, test_alloc_failures);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

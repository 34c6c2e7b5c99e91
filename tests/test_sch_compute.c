/* test_sch_compute.c: the compute-location primitives (schedule/compute_at.c). Programs are
 * written in TIR text (tiled consumers are written already split); after every primitive the
 * function must verify and the interpreter must give bit-identical results to the
 * unscheduled function (inputs are small integers, so reordered float sums stay exact).
 * Covers compute_inline, reverse_compute_inline, compute_at (every loop level, non-divisible
 * tiles, stencils, reductions), reverse_compute_at, sample_compute_location, the replay
 * entries and every precondition error. */
#include <stdarg.h>

#include "ir/text.h"
#include "ir/verify.h"
#include "schedule/schedule.h"
#include "test_util.h"

static kiln_context *ctx;
static kiln_tir_module *mod;
static sch_schedule *S;

static void setup(void) {
  ctx = kiln_test_new_ctx();
  mod = NULL;
  S = NULL;
}

static void teardown(void) {
  sch_free(S);
  kiln_tir_module_free(mod);
  kiln_test_done_ctx(ctx);
}

/* ---- Helpers ----------------------------------------------------------------------------- */

/* Parses the program (printf format with positional arguments) and makes S over its only
 * function (replacing an earlier one). */
__attribute__((format(printf, 1, 2))) static void load(const char *fmt, ...) {
  static char text[16384];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  ck_assert_int_lt(n, (int)sizeof text);
  sch_free(S);
  kiln_tir_module_free(mod);
  S = NULL;
  mod = NULL;
  ck_ok(ctx, ir_parse_module(ctx, text, (size_t)n, "test", &mod));
  ck_ok(ctx, ir_verify_func(ctx, mod->funcs[0]));
  S = sch_new(ctx, mod->funcs[0], 42);
  ck_assert_ptr_nonnull(S);
}

/* Loads the program without verifying it (for preconditions that valid IR cannot break). */
static void load_unverified(const char *text) {
  ck_ok(ctx, ir_parse_module(ctx, text, strlen(text), "test", &mod));
  S = sch_new(ctx, mod->funcs[0], 42);
  ck_assert_ptr_nonnull(S);
}

static sch_rv block(const char *name) {
  sch_rv rv;
  ck_ok(ctx, sch_get_block(S, name, &rv));
  return rv;
}

/* The k-th loop around a block (outermost 0). */
static sch_rv loop_of(const char *name, int k) {
  int n;
  sch_rv *loops;
  ck_ok(ctx, sch_get_loops(S, block(name), &n, &loops));
  ck_assert_int_lt(k, n);
  return loops[k];
}

static int nloops(const char *name) {
  int n;
  sch_rv *loops;
  ck_ok(ctx, sch_get_loops(S, block(name), &n, &loops));
  return n;
}

/* The extent of the k-th loop around a block (a constant). */
static int64_t loop_extent(const char *name, int k) {
  ir_for *f;
  ck_ok(ctx, sch_get_for(S, "test", loop_of(name, k), &f));
  const ir_int_imm *c = ir_as_int(f->extent);
  ck_assert_ptr_nonnull(c);
  return c->value;
}

static ir_block_realize *realize(const char *name) {
  ir_block_realize *r;
  ck_ok(ctx, sch_get_realize(S, "test", block(name), &r));
  return r;
}

/* Whether the block's realize has a predicate other than true. */
static bool has_pred(const char *name) {
  const ir_int_imm *c = ir_as_int(realize(name)->predicate);
  return !(c && c->value == 1);
}

static void dump(void) {
  char *t = ir_node_to_string(ctx, &S->func->h);
  fprintf(stderr, "%s\n", t);
  kiln_string_free(ctx, t);
}

/* Bytes of one element of a buffer parameter. */
static size_t elem_bytes(const ir_buffer *b) { return (size_t)(b->h.dtype.bits / 8); }

static size_t buffer_bytes(const ir_buffer *b) {
  size_t n = elem_bytes(b);
  for (int d = 0; d < b->ndim; d++) {
    const ir_int_imm *c = ir_as_int(b->shape[d]);
    ck_assert_ptr_nonnull(c);
    n *= (size_t)c->value;
  }
  return n;
}

/* Fills buffer data with small integers (as float32 or int32), from a fixed seed. */
static void fill(const ir_buffer *b, void *data, uint32_t *seed) {
  size_t n = buffer_bytes(b) / elem_bytes(b);
  for (size_t i = 0; i < n; i++) {
    *seed = *seed * 1664525u + 1013904223u;
    int v = (int)(*seed >> 24) % 9 - 4;
    if (b->h.dtype.code == KILN_TYPE_FLOAT) ((float *)data)[i] = (float)v;
    else ((int32_t *)data)[i] = v;
  }
}

/* The current function verifies and computes exactly what the unscheduled one does (all
 * parameters compared after running both on the same inputs). */
static void check_same(void) {
  ck_ok(ctx, ir_verify_func(ctx, S->func));
  const ir_func *f = S->orig;
  void *a[16], *b[16];
  ck_assert_int_le(f->nparams, 16);
  uint32_t seed = 7;
  for (int i = 0; i < f->nparams; i++) {
    const ir_buffer *buf = ir_as_buffer(f->params[i]);
    ck_assert_ptr_nonnull(buf);
    size_t n = buffer_bytes(buf);
    a[i] = malloc(n);
    b[i] = malloc(n);
    fill(buf, a[i], &seed);
    memcpy(b[i], a[i], n);
  }
  ck_ok(ctx, ir_interpret(ctx, f, f->nparams, a));
  ck_ok(ctx, ir_interpret(ctx, S->func, f->nparams, b));
  for (int i = 0; i < f->nparams; i++) {
    const ir_buffer *buf = ir_as_buffer(f->params[i]);
    if (memcmp(a[i], b[i], buffer_bytes(buf)) != 0) {
      dump();
      ck_abort_msg("parameter '%s' differs from the unscheduled function", buf->name);
    }
    free(a[i]);
    free(b[i]);
  }
}

/* The primitive failed with code and a message containing needle, leaving the function as
 * it was and recording nothing (only the queries that computed the call's arguments). */
#define ck_fails(call, code, needle)                                                     \
  do {                                                                                   \
    ir_func *before_ = S->func;                                                          \
    int ninsts_ = S->trace.ninsts;                                                       \
    kiln_status st_ = (call);                                                            \
    ck_assert_msg(st_ == (code), "%s gave %s (%s), expected %s", #call,                   \
                  kiln_status_str(st_), kiln_context_errmsg(ctx), kiln_status_str(code)); \
    ck_errmsg_has(ctx, needle);                                                          \
    ck_assert_ptr_eq(S->func, before_);                                                  \
    for (int i_ = ninsts_; i_ < S->trace.ninsts; i_++)                                   \
      ck_assert_int_le(S->trace.insts[i_].kind, SCH_INST_GET_CHILD_BLOCKS);              \
  } while (0)

/* Whether the function still allocates a buffer called name somewhere. */
typedef struct alloc_probe {
  const char *name;
  bool found;
} alloc_probe;
static bool alloc_fn(ir_node *n, void *ud) {
  alloc_probe *p = ud;
  if (n->kind == IR_BLOCK)
    for (int i = 0; i < ((ir_block *)n)->nallocs; i++)
      if (strcmp(((ir_block *)n)->allocs[i]->name, p->name) == 0) p->found = true;
  return true;
}
static bool allocates(const char *name) {
  alloc_probe p = {name, false};
  ir_visit(S->func->body, false, alloc_fn, &p);
  return p.found;
}

static bool has_block(const char *name) {
  sch_rv rv;
  kiln_status st = sch_get_block(S, name, &rv);
  if (st) ir_clear_error(ctx);
  return st == KILN_OK;
}

static const sch_inst *last_inst(void) {
  ck_assert_int_gt(S->trace.ninsts, 0);
  return &S->trace.insts[S->trace.ninsts - 1];
}

/* ---- Programs ---------------------------------------------------------------------------- */

/* P = A + 1 over [M, N]; C = P * 2 computed in tiles TM x TN (loops i0, j0, i1, j1; args:
 * 1 M, 2 N, 3 TM, 4 TN, 5 ceil(M/TM), 6 ceil(N/TN)). */
static const char *tiled2d =
    "func @f(A: buffer(float32, [%1$di64, %2$di64]), C: buffer(float32, [%1$di64, %2$di64])) {\n"
    "  block \"root\"() {\n"
    "    alloc P: buffer(float32, [%1$di64, %2$di64])\n"
    "    for i: int64 in range(0i64, %1$di64) {\n"
    "      for j: int64 in range(0i64, %2$di64) {\n"
    "        block \"P\"(vi: int64 = spatial(0i64, %1$di64) <- i, vj: int64 = spatial(0i64, %2$di64) <- j) {\n"
    "          reads(A[vi, vj])\n"
    "          writes(P[vi, vj])\n"
    "          P[vi, vj] = A[vi, vj] + 1f32;\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "    for i0: int64 in range(0i64, %5$di64) {\n"
    "      for j0: int64 in range(0i64, %6$di64) {\n"
    "        for i1: int64 in range(0i64, %3$di64) {\n"
    "          for j1: int64 in range(0i64, %4$di64) {\n"
    "            block \"C\"(vi: int64 = spatial(0i64, %1$di64) <- i0 * %3$di64 + i1, vj: int64 = spatial(0i64, %2$di64) <- j0 * %4$di64 + j1)\n"
    "                where i0 * %3$di64 + i1 < %1$di64 && j0 * %4$di64 + j1 < %2$di64 {\n"
    "              reads(P[vi, vj])\n"
    "              writes(C[vi, vj])\n"
    "              C[vi, vj] = P[vi, vj] * 2f32;\n"
    "            }\n"
    "          }\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

static void load_tiled2d(int m, int n, int tm, int tn) {
  load(tiled2d, m, n, tm, tn, (m + tm - 1) / tm, (n + tn - 1) / tn);
}

/* The tile sizes the tiled tests run: divisible, not divisible, a tile wider than the
 * domain. */
static const int tiles[][4] = {{16, 8, 4, 4}, {10, 7, 4, 3}, {5, 6, 8, 2}};
enum { NTILES = sizeof tiles / sizeof tiles[0] };

/* ---- compute_at ---------------------------------------------------------------------- */

static const char *stencil;

/* compute_at of an elementwise producer at each of the four loops of a tiled consumer: the
 * producer's new loops cover one tile (or one row of it, or one element). */
START_TEST(test_compute_at_each_level) {
  for (int t = 0; t < NTILES; t++)
    for (int level = 0; level < 4; level++) {
      int m = tiles[t][0], n = tiles[t][1], tm = tiles[t][2], tn = tiles[t][3];
      load_tiled2d(m, n, tm, tn);
      ck_ok(ctx, sch_compute_at(S, block("P"), loop_of("C", level), false));
      const sch_inst *in = last_inst();
      ck_assert_int_eq(in->kind, SCH_INST_COMPUTE_AT);
      ck_assert_int_eq(in->ninputs, 3);
      ck_assert_int_eq(in->inputs[2].kind, SCH_ARG_INT);
      ck_assert_int_eq(in->inputs[2].i, 0);
      check_same();
      /* The producer now sits under the consumer's loops 0..level. */
      int64_t want[4][2] = {{tm < m ? tm : m, n}, {tm < m ? tm : m, tn < n ? tn : n},
                            {1, tn < n ? tn : n}, {1, 1}};
      int np = nloops("P");
      ck_assert_int_eq(np, level + 1 + (want[level][0] > 1) + (want[level][1] > 1));
      int k = level + 1;
      for (int d = 0; d < 2; d++)
        if (want[level][d] > 1) ck_assert_int_eq(loop_extent("P", k++), want[level][d]);
      /* A predicate exactly where a tile (or a point of a ragged tile) may stick out of the
       * domain; a tile wider than the domain is clipped to it instead. */
      bool rag_rows = level <= 1 ? tm < m && m % tm : m % tm != 0;
      bool rag_cols = level == 0 ? false : level <= 2 ? tn < n && n % tn : n % tn != 0;
      ck_assert_int_eq(has_pred("P"), rag_rows || rag_cols);
    }
}
END_TEST

/* preserve_unit_loops keeps the extent-1 loops of a one-element region. */
START_TEST(test_compute_at_unit_loops) {
  load_tiled2d(8, 6, 4, 3);
  ck_ok(ctx, sch_compute_at(S, block("P"), loop_of("C", 3), true));
  ck_assert_int_eq(last_inst()->inputs[2].i, 1);
  check_same();
  ck_assert_int_eq(nloops("P"), 6);
  ck_assert_int_eq(loop_extent("P", 4), 1);
  ck_assert_int_eq(loop_extent("P", 5), 1);
  ck_assert(!has_pred("P"));
}
END_TEST

/* A producer computed at an outer loop, then moved deeper; and the stale loop RVs of the
 * old producer nest. */
START_TEST(test_compute_at_twice) {
  load_tiled2d(10, 7, 4, 3);
  sch_rv old_loop = loop_of("P", 0);
  ck_ok(ctx, sch_compute_at(S, block("P"), loop_of("C", 0), false));
  check_same();
  ck_fails(sch_compute_at(S, block("P"), old_loop, false), KILN_ERR_SCHEDULE,
           "no longer exists");
  ck_ok(ctx, sch_compute_at(S, block("P"), loop_of("C", 1), false));
  check_same();
  ck_assert_int_eq(nloops("P"), 4);
  ck_assert_int_eq(loop_extent("P", 2), 4);
  ck_assert_int_eq(loop_extent("P", 3), 3);
}
END_TEST

/* Stencil: C[i] = sum_r P[i + r], r in [0, 3): the producer's tile is 2 wider than the
 * consumer's; the last tile is clipped by a predicate. Args: 1 N, 2 T, 3 ceil(N/T),
 * 4 N + 2. */
static const char *stencil =
    "func @f(A: buffer(float32, [%4$di64]), C: buffer(float32, [%1$di64])) {\n"
    "  block \"root\"() {\n"
    "    alloc P: buffer(float32, [%4$di64])\n"
    "    for i: int64 in range(0i64, %4$di64) {\n"
    "      block \"P\"(v: int64 = spatial(0i64, %4$di64) <- i) {\n"
    "        reads(A[v])\n"
    "        writes(P[v])\n"
    "        P[v] = A[v] * 3f32;\n"
    "      }\n"
    "    }\n"
    "    for i0: int64 in range(0i64, %3$di64) {\n"
    "      for i1: int64 in range(0i64, %2$di64) {\n"
    "        for r: int64 in range(0i64, 3i64) {\n"
    "          block \"C\"(v: int64 = spatial(0i64, %1$di64) <- i0 * %2$di64 + i1, vr: int64 = reduce(0i64, 3i64) <- r)\n"
    "              where i0 * %2$di64 + i1 < %1$di64 {\n"
    "            reads(C[v], P[v + vr])\n"
    "            writes(C[v])\n"
    "            init {\n"
    "              C[v] = 0f32;\n"
    "            }\n"
    "            C[v] = C[v] + P[v + vr];\n"
    "          }\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

START_TEST(test_compute_at_stencil) {
  static const int cases[][2] = {{12, 4}, {10, 4}, {9, 2}, {3, 8}};
  for (int c = 0; c < 4; c++) {
    int n = cases[c][0], t = cases[c][1];
    load(stencil, n, t, (n + t - 1) / t, n + 2);
    ck_ok(ctx, sch_compute_at(S, block("P"), loop_of("C", 0), false));
    check_same();
    ck_assert_int_eq(nloops("P"), 2);
    int64_t want = t + 2 < n + 2 ? t + 2 : n + 2;
    ck_assert_int_eq(loop_extent("P", 1), want);
    /* The last tile's region [n - n % t, + t + 2) passes the end unless the tiles divide. */
    ck_assert_int_eq(has_pred("P"), t < n && n % t != 0);
    /* At i1 the region is the 3 elements one output needs. */
    load(stencil, n, t, (n + t - 1) / t, n + 2);
    ck_ok(ctx, sch_compute_at(S, block("P"), loop_of("C", 1), false));
    check_same();
    ck_assert_int_eq(loop_extent("P", 2), 3);
  }
}
END_TEST

/* Matmul C = A x B followed by relu D (tiled loops i0, j0, i1, j1 over D); args: 1 M, 2 N,
 * 3 K, 4 TM, 5 TN, 6 ceil(M/TM), 7 ceil(N/TN). mm_relu has the matmul tiled and relu plain,
 * relu_tiled the other way round. */
static const char *mm_relu =
    "func @f(A: buffer(float32, [%1$di64, %3$di64]), B: buffer(float32, [%3$di64, %2$di64]), D: buffer(float32, [%1$di64, %2$di64])) {\n"
    "  block \"root\"() {\n"
    "    alloc C: buffer(float32, [%1$di64, %2$di64])\n"
    "    for i0: int64 in range(0i64, %6$di64) {\n"
    "      for j0: int64 in range(0i64, %7$di64) {\n"
    "        for i1: int64 in range(0i64, %4$di64) {\n"
    "          for j1: int64 in range(0i64, %5$di64) {\n"
    "            for k: int64 in range(0i64, %3$di64) {\n"
    "              block \"C\"(vi: int64 = spatial(0i64, %1$di64) <- i0 * %4$di64 + i1, vj: int64 = spatial(0i64, %2$di64) <- j0 * %5$di64 + j1, vk: int64 = reduce(0i64, %3$di64) <- k)\n"
    "                  where i0 * %4$di64 + i1 < %1$di64 && j0 * %5$di64 + j1 < %2$di64 {\n"
    "                reads(C[vi, vj], A[vi, vk], B[vk, vj])\n"
    "                writes(C[vi, vj])\n"
    "                init {\n"
    "                  C[vi, vj] = 0f32;\n"
    "                }\n"
    "                C[vi, vj] = C[vi, vj] + A[vi, vk] * B[vk, vj];\n"
    "              }\n"
    "            }\n"
    "          }\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, %1$di64) {\n"
    "      for j: int64 in range(0i64, %2$di64) {\n"
    "        block \"relu\"(vi: int64 = spatial(0i64, %1$di64) <- i, vj: int64 = spatial(0i64, %2$di64) <- j) {\n"
    "          reads(C[vi, vj])\n"
    "          writes(D[vi, vj])\n"
    "          D[vi, vj] = max(C[vi, vj], 0f32);\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

static const char *relu_tiled =
    "func @f(A: buffer(float32, [%1$di64, %3$di64]), B: buffer(float32, [%3$di64, %2$di64]), D: buffer(float32, [%1$di64, %2$di64])) {\n"
    "  block \"root\"() {\n"
    "    alloc C: buffer(float32, [%1$di64, %2$di64])\n"
    "    for i: int64 in range(0i64, %1$di64) {\n"
    "      for j: int64 in range(0i64, %2$di64) {\n"
    "        for k: int64 in range(0i64, %3$di64) {\n"
    "          block \"C\"(vi: int64 = spatial(0i64, %1$di64) <- i, vj: int64 = spatial(0i64, %2$di64) <- j, vk: int64 = reduce(0i64, %3$di64) <- k) {\n"
    "            reads(C[vi, vj], A[vi, vk], B[vk, vj])\n"
    "            writes(C[vi, vj])\n"
    "            init {\n"
    "              C[vi, vj] = 0f32;\n"
    "            }\n"
    "            C[vi, vj] = C[vi, vj] + A[vi, vk] * B[vk, vj];\n"
    "          }\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "    for i0: int64 in range(0i64, %6$di64) {\n"
    "      for j0: int64 in range(0i64, %7$di64) {\n"
    "        for i1: int64 in range(0i64, %4$di64) {\n"
    "          for j1: int64 in range(0i64, %5$di64) {\n"
    "            block \"relu\"(vi: int64 = spatial(0i64, %1$di64) <- i0 * %4$di64 + i1, vj: int64 = spatial(0i64, %2$di64) <- j0 * %5$di64 + j1)\n"
    "                where i0 * %4$di64 + i1 < %1$di64 && j0 * %5$di64 + j1 < %2$di64 {\n"
    "              reads(C[vi, vj])\n"
    "              writes(D[vi, vj])\n"
    "              D[vi, vj] = max(C[vi, vj] - 2f32, 0f32);\n"
    "            }\n"
    "          }\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

static void load_mm(const char *fmt, int m, int n, int k, int tm, int tn) {
  load(fmt, m, n, k, tm, tn, (m + tm - 1) / tm, (n + tn - 1) / tn);
}

/* A reduction producer computed at the tiles of its consumer keeps its reduce loop inside
 * the new nest (extent K), after the spatial ones. */
START_TEST(test_compute_at_reduction) {
  for (int t = 0; t < NTILES; t++)
    for (int level = 0; level < 4; level++) {
      int m = tiles[t][0], n = tiles[t][1], tm = tiles[t][2], tn = tiles[t][3];
      load_mm(relu_tiled, m, n, 5, tm, tn);
      ck_ok(ctx, sch_compute_at(S, block("C"), loop_of("relu", level), false));
      check_same();
      int np = nloops("C");
      ck_assert_int_eq(loop_extent("C", np - 1), 5);
    }
}
END_TEST

/* reverse_compute_at of a relu epilogue under each spatial tile loop of a matmul. */
START_TEST(test_reverse_compute_at_epilogue) {
  for (int t = 0; t < NTILES; t++)
    for (int level = 0; level < 4; level++) {
      int m = tiles[t][0], n = tiles[t][1], tm = tiles[t][2], tn = tiles[t][3];
      load_mm(mm_relu, m, n, 3, tm, tn);
      ck_ok(ctx, sch_reverse_compute_at(S, block("relu"), loop_of("C", level), false));
      check_same();
      /* relu runs after the matmul inside the loop: its loops start with the matmul's. */
      ck_assert_int_eq(last_inst()->kind, SCH_INST_REVERSE_COMPUTE_AT);
      ck_assert_int_ge(nloops("relu"), level + 1);
      ir_for *f;
      ck_ok(ctx, sch_get_for(S, "test", loop_of("relu", level), &f));
      ir_for *g;
      ck_ok(ctx, sch_get_for(S, "test", loop_of("C", level), &g));
      ck_assert_ptr_eq(f, g);
    }
  /* At j0 with 4 x 3 tiles: relu loops of 4 and 3 after the matmul's, a ragged predicate. */
  load_mm(mm_relu, 10, 7, 3, 4, 3);
  ck_ok(ctx, sch_reverse_compute_at(S, block("relu"), loop_of("C", 1), false));
  ck_assert_int_eq(nloops("relu"), 4);
  ck_assert_int_eq(loop_extent("relu", 2), 4);
  ck_assert_int_eq(loop_extent("relu", 3), 3);
  ck_assert(has_pred("relu"));
  check_same();
  /* Moved again, one level deeper. */
  ck_ok(ctx, sch_reverse_compute_at(S, block("relu"), loop_of("C", 2), false));
  check_same();
  ck_assert_int_eq(nloops("relu"), 4);
  ck_assert_int_eq(loop_extent("relu", 3), 3);
  /* And with preserve_unit_loops at the innermost spatial loop. */
  load_mm(mm_relu, 8, 6, 3, 4, 3);
  ck_ok(ctx, sch_reverse_compute_at(S, block("relu"), loop_of("C", 3), true));
  ck_assert_int_eq(nloops("relu"), 6);
  ck_assert(!has_pred("relu"));
  check_same();
}
END_TEST

/* Two producers feed one consumer: each computed at the consumer's tile. */
static const char *two_producers =
    "func @f(A: buffer(float32, [12i64]), C: buffer(float32, [12i64])) {\n"
    "  block \"root\"() {\n"
    "    alloc P: buffer(float32, [12i64])\n"
    "    alloc Q: buffer(float32, [12i64])\n"
    "    for i: int64 in range(0i64, 12i64) {\n"
    "      block \"P\"(v: int64 = spatial(0i64, 12i64) <- i) {\n"
    "        reads(A[v])\n"
    "        writes(P[v])\n"
    "        P[v] = A[v] + 1f32;\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 12i64) {\n"
    "      block \"Q\"(v: int64 = spatial(0i64, 12i64) <- i) {\n"
    "        reads(P[v])\n"
    "        writes(Q[v])\n"
    "        Q[v] = P[v] * 2f32;\n"
    "      }\n"
    "    }\n"
    "    for i0: int64 in range(0i64, 3i64) {\n"
    "      for i1: int64 in range(0i64, 4i64) {\n"
    "        block \"C\"(v: int64 = spatial(0i64, 12i64) <- i0 * 4i64 + i1) {\n"
    "          reads(Q[v], P[11i64 - v])\n"
    "          writes(C[v])\n"
    "          C[v] = Q[v] - P[11i64 - v];\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

/* Two consumers of P under one loop (Q and C): the region is the union of their needs, here
 * the whole of P for a reversed read. */
START_TEST(test_compute_at_two_consumers) {
  load("%s", two_producers);
  ck_ok(ctx, sch_compute_at(S, block("Q"), loop_of("C", 0), false));
  check_same();
  ck_assert_int_eq(loop_extent("Q", 1), 4);
  /* P feeds Q (now under i0) and C: P[i0*4 .. +4) and P[11 - i0*4 - 3 .. +4) */
  ck_ok(ctx, sch_compute_at(S, block("P"), loop_of("C", 0), false));
  check_same();
  ck_assert_int_eq(nloops("P"), 2);
  ck_assert_int_eq(loop_extent("P", 1), 12);
}
END_TEST

/* ---- compute_at errors --------------------------------------------------------------- */

START_TEST(test_compute_at_errors) {
  load_tiled2d(10, 7, 4, 3);
  /* misuse of RVs */
  ck_fails(sch_compute_at(S, block("P"), block("C"), false), KILN_ERR_MISUSE, "expected a loop");
  ck_fails(sch_compute_at(S, loop_of("C", 0), loop_of("C", 0), false), KILN_ERR_MISUSE,
           "expected a block");
  ck_fails(sch_compute_at(S, block("P"), 999, false), KILN_ERR_MISUSE,
           "not a random variable");
  /* a loop of the producer itself holds no consumer */
  ck_fails(sch_compute_at(S, block("P"), loop_of("P", 1), false), KILN_ERR_SCHEDULE,
           "compute_at: block 'P' has consumer 'C' that is not under loop 'j'");
  /* the consumer computed at the producer's loop: it writes an output nobody reads */
  ck_fails(sch_compute_at(S, block("C"), loop_of("P", 0), false), KILN_ERR_SCHEDULE,
           "no block under loop 'i' reads buffer 'C' that block 'C' writes");
}
END_TEST

/* A consumer of P outside the loop. */
static const char *two_consumers =
    "func @f(A: buffer(float32, [8i64]), C: buffer(float32, [8i64]), E: buffer(float32, [8i64])) {\n"
    "  block \"root\"() {\n"
    "    alloc P: buffer(float32, [8i64])\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"P\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(A[v])\n"
    "        writes(P[v])\n"
    "        P[v] = A[v] + 1f32;\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"C\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(P[v])\n"
    "        writes(C[v])\n"
    "        C[v] = P[v] * 2f32;\n"
    "      }\n"
    "    }\n"
    "    for j: int64 in range(0i64, 8i64) {\n"
    "      block \"E\"(v: int64 = spatial(0i64, 8i64) <- j) {\n"
    "        reads(P[v])\n"
    "        writes(E[v])\n"
    "        E[v] = P[v] * 3f32;\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

START_TEST(test_compute_at_consumer_outside) {
  load("%s", two_consumers);
  ck_fails(sch_compute_at(S, block("P"), loop_of("C", 0), false), KILN_ERR_SCHEDULE,
           "compute_at: block 'P' has consumer 'E' that is not under loop 'i'");
}
END_TEST

/* The producer's stage comes after its consumer's. */
START_TEST(test_compute_at_order) {
  load("func @f(A: buffer(float32, [8i64]), C: buffer(float32, [8i64])) {\n"
       "  block \"root\"() {\n"
       "    alloc P: buffer(float32, [8i64])\n"
       "    for i: int64 in range(0i64, 8i64) {\n"
       "      block \"C\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
       "        reads(P[v])\n"
       "        writes(C[v])\n"
       "        C[v] = P[v] * 2f32;\n"
       "      }\n"
       "    }\n"
       "    for i: int64 in range(0i64, 8i64) {\n"
       "      block \"P\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
       "        reads(A[v])\n"
       "        writes(P[v])\n"
       "        P[v] = A[v] + 1f32;\n"
       "      }\n"
       "    }\n"
       "  }\n"
       "}\n");
  ck_fails(sch_compute_at(S, block("P"), loop_of("C", 0), false), KILN_ERR_SCHEDULE,
           "compute_at: block 'P' comes after its consumer 'C'");
}
END_TEST

/* Blocks that break the producer preconditions: writes two buffers (W), at shifted indices
 * (S1), a buffer with a second writer (T, written by T and T2), reads a buffer overwritten
 * before the consumer (R reads X, which X2 writes after it); and a consumer in a nested
 * block scope. */
static const char *bad_producers =
    "func @f(A: buffer(float32, [8i64]), C: buffer(float32, [8i64])) {\n"
    "  block \"root\"() {\n"
    "    alloc W1: buffer(float32, [8i64])\n"
    "    alloc W2: buffer(float32, [8i64])\n"
    "    alloc S1: buffer(float32, [9i64])\n"
    "    alloc T: buffer(float32, [8i64])\n"
    "    alloc X: buffer(float32, [8i64])\n"
    "    alloc R: buffer(float32, [8i64])\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"W\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(A[v])\n"
    "        writes(W1[v], W2[v])\n"
    "        W1[v] = A[v];\n"
    "        W2[v] = A[v];\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"S1\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(A[v])\n"
    "        writes(S1[v + 1i64])\n"
    "        S1[v + 1i64] = A[v];\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"T\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(A[v])\n"
    "        writes(T[v])\n"
    "        T[v] = A[v];\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"X\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(A[v])\n"
    "        writes(X[v])\n"
    "        X[v] = A[v];\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"R\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(X[v])\n"
    "        writes(R[v])\n"
    "        R[v] = X[v];\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"T2\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(T[v])\n"
    "        writes(T[v])\n"
    "        T[v] = T[v] + 1f32;\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"X2\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(A[v])\n"
    "        writes(X[v])\n"
    "        X[v] = A[v] * 2f32;\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"C\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(W1[v], W2[v], S1[v + 1i64], T[v], R[v])\n"
    "        writes(C[v])\n"
    "        C[v] = W1[v] + W2[v] + S1[v + 1i64] + T[v] + R[v];\n"
    "      }\n"
    "    }\n"
    "    block \"wrap\"() {\n"
    "      reads(A[0i64 +: 8i64])\n"
    "      writes(C[0i64 +: 8i64])\n"
    "      for i: int64 in range(0i64, 8i64) {\n"
    "        block \"C2\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "          reads(A[v], C[v])\n"
    "          writes(C[v])\n"
    "          C[v] = C[v] + A[v];\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

START_TEST(test_compute_at_bad_producers) {
  load("%s", bad_producers);
  sch_rv l = loop_of("C", 0);
  ck_fails(sch_compute_at(S, block("W"), l, false), KILN_ERR_SCHEDULE,
           "compute_at: block 'W' writes 2 buffers (exactly one is needed)");
  ck_fails(sch_compute_at(S, block("S1"), l, false), KILN_ERR_SCHEDULE,
           "block 'S1' writes buffer 'S1' at indices that are not distinct iterators");
  ck_fails(sch_compute_at(S, block("T"), l, false), KILN_ERR_SCHEDULE,
           "buffer 'T' written by block 'T' is also written by block 'T2'");
  ck_fails(sch_compute_at(S, block("R"), l, false), KILN_ERR_SCHEDULE,
           "block 'X2' writes buffer 'X' that block 'R' reads");
  ck_fails(sch_compute_at(S, block("R"), loop_of("C2", 0), false), KILN_ERR_SCHEDULE,
           "block 'R' and loop 'i' are not in the same block scope");
}
END_TEST

/* A producer writing at a reduce iterator. */
START_TEST(test_compute_at_reduce_index) {
  load("func @f(A: buffer(float32, [8i64]), C: buffer(float32, [8i64])) {\n"
       "  block \"root\"() {\n"
       "    alloc P: buffer(float32, [8i64])\n"
       "    for i: int64 in range(0i64, 8i64) {\n"
       "      block \"P\"(v: int64 = reduce(0i64, 8i64) <- i) {\n"
       "        reads(A[v])\n"
       "        writes(P[v])\n"
       "        init {\n"
       "          P[v] = 0f32;\n"
       "        }\n"
       "        P[v] = A[v];\n"
       "      }\n"
       "    }\n"
       "    for i: int64 in range(0i64, 8i64) {\n"
       "      block \"C\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
       "        reads(P[v])\n"
       "        writes(C[v])\n"
       "        C[v] = P[v];\n"
       "      }\n"
       "    }\n"
       "  }\n"
       "}\n");
  ck_fails(sch_compute_at(S, block("P"), loop_of("C", 0), false), KILN_ERR_SCHEDULE,
           "block 'P' writes buffer 'P' at reduce iterator 'v'");
}
END_TEST

/* ---- reverse_compute_at errors ------------------------------------------------------- */

START_TEST(test_reverse_compute_at_errors) {
  load_mm(mm_relu, 8, 6, 3, 4, 3);
  /* the reduce loop: the matmul is not finished in one of its iterations */
  ck_fails(sch_reverse_compute_at(S, block("relu"), loop_of("C", 4), false), KILN_ERR_SCHEDULE,
           "reverse_compute_at: the reduction of block 'C' is not complete inside loop 'k'");
  /* relu's own loop holds no producer */
  ck_fails(sch_reverse_compute_at(S, block("relu"), loop_of("relu", 0), false),
           KILN_ERR_SCHEDULE, "block 'relu' reads no buffer that the blocks under loop 'i' write");
  /* moving the matmul under relu's loop: the matmul comes first */
  ck_fails(sch_reverse_compute_at(S, block("C"), loop_of("relu", 0), false), KILN_ERR_SCHEDULE,
           "block 'C' reads no buffer that the blocks under loop 'i' write");
  ck_fails(sch_reverse_compute_at(S, block("relu"), block("C"), false), KILN_ERR_MISUSE,
           "expected a loop");
  /* the matmul before a tiled relu: relu's loops hold no producer of what C reads */
  load_mm(relu_tiled, 8, 6, 3, 4, 3);
  ck_fails(sch_reverse_compute_at(S, block("C"), loop_of("relu", 0), false), KILN_ERR_SCHEDULE,
           "block 'C' reads no buffer that the blocks under loop 'i0' write");
}
END_TEST

/* Consumers that cannot follow their producer: reads two buffers produced under the loop
 * (C2), comes before its producer (E0), reads an input written between the loop and itself
 * (C3 reads Y, which Y2 writes), reads at shifted indices (C4), reads at a reduce iterator
 * (C5), writes what a block under the loop reads (C6 writes Z, read by Q). */
static const char *bad_consumers =
    "func @f(A: buffer(float32, [8i64]), O: buffer(float32, [8i64])) {\n"
    "  block \"root\"() {\n"
    "    alloc P: buffer(float32, [9i64])\n"
    "    alloc Q: buffer(float32, [8i64])\n"
    "    alloc Y: buffer(float32, [8i64])\n"
    "    alloc Z: buffer(float32, [8i64])\n"
    "    alloc E: buffer(float32, [8i64])\n"
    "    alloc O5: buffer(float32, [1i64])\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"E0\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(P[v])\n"
    "        writes(E[v])\n"
    "        E[v] = P[v];\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"P\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(A[v])\n"
    "        writes(P[v])\n"
    "        P[v] = A[v];\n"
    "      }\n"
    "      block \"Q\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(A[v], Z[v])\n"
    "        writes(Q[v])\n"
    "        Q[v] = A[v] + Z[v];\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"Y2\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(A[v])\n"
    "        writes(Y[v])\n"
    "        Y[v] = A[v];\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"C2\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(P[v], Q[v])\n"
    "        writes(O[v])\n"
    "        O[v] = P[v] + Q[v];\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"C3\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(P[v], Y[v])\n"
    "        writes(O[v])\n"
    "        O[v] = P[v] + Y[v];\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"C4\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(P[v + 1i64])\n"
    "        writes(O[v])\n"
    "        O[v] = P[v + 1i64];\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"C5\"(v: int64 = reduce(0i64, 8i64) <- i) {\n"
    "        reads(O5[0i64], P[v])\n"
    "        writes(O5[0i64])\n"
    "        init {\n"
    "          O5[0i64] = 0f32;\n"
    "        }\n"
    "        O5[0i64] = O5[0i64] + P[v];\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 8i64) {\n"
    "      block \"C6\"(v: int64 = spatial(0i64, 8i64) <- i) {\n"
    "        reads(P[v])\n"
    "        writes(Z[v])\n"
    "        Z[v] = P[v];\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

START_TEST(test_reverse_compute_at_bad_consumers) {
  load("%s", bad_consumers);
  sch_rv l = loop_of("P", 0);
  ck_fails(sch_reverse_compute_at(S, block("C2"), l, false), KILN_ERR_SCHEDULE,
           "block 'C2' reads two buffers written under loop 'i' ('P' and 'Q')");
  ck_fails(sch_reverse_compute_at(S, block("E0"), l, false), KILN_ERR_SCHEDULE,
           "block 'E0' comes before its producer 'P'");
  ck_fails(sch_reverse_compute_at(S, block("C3"), l, false), KILN_ERR_SCHEDULE,
           "block 'Y2' writes buffer 'Y' that block 'C3' reads, outside loop 'i'");
  ck_fails(sch_reverse_compute_at(S, block("C4"), l, false), KILN_ERR_SCHEDULE,
           "block 'C4' reads buffer 'P' at indices that are not distinct iterators");
  ck_fails(sch_reverse_compute_at(S, block("C5"), l, false), KILN_ERR_SCHEDULE,
           "block 'C5' reads buffer 'P' at reduce iterator 'v'");
  ck_fails(sch_reverse_compute_at(S, block("C6"), l, false), KILN_ERR_SCHEDULE,
           "block 'Q' under loop 'i' reads buffer 'Z' that block 'C6' writes");
  ck_fails(sch_reverse_compute_at(S, block("C2"), loop_of("C3", 0), false), KILN_ERR_SCHEDULE,
           "block 'C2' reads no buffer that the blocks under loop 'i' write");
}
END_TEST

/* ---- Programs of one-loop stages --------------------------------------------------------- */

static char prog[16384];

/* Starts a function with the given parameters and root allocations (text). */
static void prog_begin(const char *params, const char *allocs) {
  snprintf(prog, sizeof prog, "func @f(%s) {\n  block \"root\"() {\n%s", params, allocs);
}

/* Appends a stage: a loop i over [0, n) around block `name` with iterator v <- i. */
static void stage(const char *name, int n, const char *reads, const char *writes,
                  const char *body) {
  size_t len = strlen(prog);
  int k = snprintf(prog + len, sizeof prog - len,
                   "    for i: int64 in range(0i64, %di64) {\n"
                   "      block \"%s\"(v: int64 = spatial(0i64, %di64) <- i) {\n"
                   "        reads(%s)\n"
                   "        writes(%s)\n"
                   "        %s\n"
                   "      }\n"
                   "    }\n",
                   n, name, n, reads, writes, body);
  ck_assert_int_lt(k, (int)(sizeof prog - len));
}

static void prog_end(void) {
  size_t len = strlen(prog);
  snprintf(prog + len, sizeof prog - len, "  }\n}\n");
  load("%s", prog);
}

/* ---- compute_inline ------------------------------------------------------------------- */

/* A -> B (stored transposed) -> E -> D: inline B, then E, in both orders. Args: 1 M, 2 N. */
static const char *chain =
    "func @f(A: buffer(float32, [%1$di64, %2$di64]), D: buffer(float32, [%1$di64, %2$di64])) {\n"
    "  block \"root\"() {\n"
    "    alloc B: buffer(float32, [%2$di64, %1$di64])\n"
    "    alloc E: buffer(float32, [%1$di64, %2$di64])\n"
    "    for i: int64 in range(0i64, %1$di64) {\n"
    "      for j: int64 in range(0i64, %2$di64) {\n"
    "        block \"B\"(vi: int64 = spatial(0i64, %1$di64) <- i, vj: int64 = spatial(0i64, %2$di64) <- j) {\n"
    "          reads(A[vi, vj])\n"
    "          writes(B[vj, vi])\n"
    "          B[vj, vi] = A[vi, vj] * 2f32 - cast(float32, vj);\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, %1$di64) {\n"
    "      for j: int64 in range(0i64, %2$di64) {\n"
    "        block \"E\"(vi: int64 = spatial(0i64, %1$di64) <- i, vj: int64 = spatial(0i64, %2$di64) <- j) {\n"
    "          reads(B[vj, vi])\n"
    "          writes(E[vi, vj])\n"
    "          E[vi, vj] = B[vj, vi] + 1f32;\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, %1$di64) {\n"
    "      for j: int64 in range(0i64, %2$di64) {\n"
    "        block \"D\"(vi: int64 = spatial(0i64, %1$di64) <- i, vj: int64 = spatial(0i64, %2$di64) <- j) {\n"
    "          reads(E[vi, vj], E[%1$di64 - 1i64 - vi, vj])\n"
    "          writes(D[vi, vj])\n"
    "          D[vi, vj] = E[vi, vj] * E[%1$di64 - 1i64 - vi, vj];\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

START_TEST(test_compute_inline_chain) {
  static const int shapes[][2] = {{4, 6}, {7, 3}, {1, 5}};
  for (int c = 0; c < 3; c++)
    for (int first = 0; first < 2; first++) {
      load(chain, shapes[c][0], shapes[c][1]);
      const char *order[2] = {first ? "E" : "B", first ? "B" : "E"};
      ck_ok(ctx, sch_compute_inline(S, block(order[0])));
      ck_assert_int_eq(last_inst()->kind, SCH_INST_COMPUTE_INLINE);
      check_same();
      ck_assert(!has_block(order[0]));
      ck_assert(!allocates(order[0]));
      ck_assert(allocates(order[1]));
      ck_ok(ctx, sch_compute_inline(S, block(order[1])));
      check_same();
      ck_assert(!allocates("B") && !allocates("E"));
      /* D now reads A (its regions were re-detected) and nothing else. */
      const ir_block *d = realize("D")->block;
      ck_assert_int_eq(d->nreads, 1);
      ck_assert_str_eq(d->reads[0]->buffer->name, "A");
    }
}
END_TEST

/* pad -> conv-like reduction: the padded producer (a guarded select) inlined into the
 * reduction's update. Args: 1 N, 2 N + 2, 3 N + 1. */
static const char *pad_conv =
    "func @f(A: buffer(float32, [%1$di64]), W: buffer(float32, [3i64]), C: buffer(float32, [%1$di64])) {\n"
    "  block \"root\"() {\n"
    "    alloc P: buffer(float32, [%2$di64])\n"
    "    for i: int64 in range(0i64, %2$di64) {\n"
    "      block \"pad\"(v: int64 = spatial(0i64, %2$di64) <- i) {\n"
    "        reads(A[0i64 +: %1$di64])\n"
    "        writes(P[v])\n"
    "        P[v] = select(1i64 <= v && v < %3$di64, A[v - 1i64], 0f32);\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, %1$di64) {\n"
    "      for r: int64 in range(0i64, 3i64) {\n"
    "        block \"conv\"(v: int64 = spatial(0i64, %1$di64) <- i, vr: int64 = reduce(0i64, 3i64) <- r) {\n"
    "          reads(C[v], P[v + vr], W[vr])\n"
    "          writes(C[v])\n"
    "          init {\n"
    "            C[v] = 0f32;\n"
    "          }\n"
    "          C[v] = C[v] + P[v + vr] * W[vr];\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

START_TEST(test_compute_inline_into_reduction) {
  static const int sizes[] = {1, 5, 16};
  for (int c = 0; c < 3; c++) {
    int n = sizes[c];
    load(pad_conv, n, n + 2, n + 1);
    ck_ok(ctx, sch_compute_inline(S, block("pad")));
    check_same();
    ck_assert(!has_block("pad"));
    ck_assert(!allocates("P"));
    const ir_block *cv = realize("conv")->block;
    bool reads_a = false, reads_p = false;
    for (int i = 0; i < cv->nreads; i++) {
      reads_a |= strcmp(cv->reads[i]->buffer->name, "A") == 0;
      reads_p |= strcmp(cv->reads[i]->buffer->name, "P") == 0;
    }
    ck_assert(reads_a && !reads_p);
    /* the reduction itself cannot be inlined */
    ck_fails(sch_compute_inline(S, block("conv")), KILN_ERR_SCHEDULE,
             "compute_inline: block 'conv' is a reduction (iterator 'vr' is a reduce iterator)");
  }
}
END_TEST

/* A producer whose consumer was computed at a tile: its loads inside the moved nest are
 * replaced too. */
START_TEST(test_compute_inline_after_compute_at) {
  load_tiled2d(10, 7, 4, 3);
  ck_ok(ctx, sch_compute_at(S, block("P"), loop_of("C", 1), false));
  ck_ok(ctx, sch_compute_inline(S, block("P")));
  check_same();
  ck_assert(!allocates("P"));
}
END_TEST

/* A consumer inside a nested block scope: the inner block and the enclosing block (which
 * declares the buffer because of it) both get new regions, and the buffer goes. */
START_TEST(test_compute_inline_nested_scope) {
  load("func @f(A: buffer(float32, [6i64]), O: buffer(float32, [6i64])) {\n"
       "  block \"root\"() {\n"
       "    alloc B: buffer(float32, [6i64])\n"
       "    for i: int64 in range(0i64, 6i64) {\n"
       "      block \"B\"(v: int64 = spatial(0i64, 6i64) <- i) {\n"
       "        reads(A[v])\n"
       "        writes(B[v])\n"
       "        B[v] = A[v] * A[v];\n"
       "      }\n"
       "    }\n"
       "    block \"wrap\"() {\n"
       "      reads(B[0i64 +: 6i64])\n"
       "      writes(O[0i64 +: 6i64])\n"
       "      for i: int64 in range(0i64, 6i64) {\n"
       "        block \"O\"(v: int64 = spatial(0i64, 6i64) <- i) {\n"
       "          reads(B[v])\n"
       "          writes(O[v])\n"
       "          O[v] = B[v] + 1f32;\n"
       "        }\n"
       "      }\n"
       "    }\n"
       "  }\n"
       "}\n");
  ck_ok(ctx, sch_compute_inline(S, block("B")));
  check_same();
  ck_assert(!allocates("B"));
  const ir_block *w = realize("wrap")->block;
  ck_assert_int_eq(w->nreads, 1);
  ck_assert_str_eq(w->reads[0]->buffer->name, "A");
}
END_TEST

START_TEST(test_compute_inline_errors) {
  prog_begin("A: buffer(float32, [8i64]), O: buffer(float32, [8i64])",
             "    alloc W1: buffer(float32, [8i64])\n"
             "    alloc W2: buffer(float32, [8i64])\n"
             "    alloc S1: buffer(float32, [9i64])\n"
             "    alloc T: buffer(float32, [8i64])\n"
             "    alloc Q: buffer(float32, [8i64])\n"
             "    alloc L: buffer(float32, [8i64])\n");
  stage("W", 8, "A[v]", "W1[v], W2[v]", "W1[v] = A[v];\n        W2[v] = A[v];");
  stage("S1", 8, "A[v]", "S1[v + 1i64]", "S1[v + 1i64] = A[v];");
  stage("T", 8, "A[v]", "T[v]", "T[v] = A[v];");
  stage("T2", 8, "T[v]", "T[v]", "T[v] = T[v] + 1f32;");
  stage("Q", 8, "A[v]", "Q[v]", "for k: int64 in range(0i64, 1i64) {\n Q[v] = A[v];\n }");
  stage("L", 8, "A[v]", "L[v]", "L[v] = let(x: float32 = A[v], x * x);");
  stage("O", 8, "W1[v], W2[v], S1[v + 1i64], T[v], Q[v], L[v]", "O[v]",
        "O[v] = W1[v] + W2[v] + S1[v + 1i64] + T[v] + Q[v] + L[v];");
  prog_end();
  ck_fails(sch_compute_inline(S, block("W")), KILN_ERR_SCHEDULE,
           "compute_inline: block 'W' writes 2 buffers (exactly one is needed)");
  ck_fails(sch_compute_inline(S, block("S1")), KILN_ERR_SCHEDULE,
           "block 'S1' stores to buffer 'S1' at indices that are not exactly its iterators");
  ck_fails(sch_compute_inline(S, block("T")), KILN_ERR_SCHEDULE,
           "buffer 'T' written by block 'T' is also written by block 'T2'");
  ck_fails(sch_compute_inline(S, block("T2")), KILN_ERR_SCHEDULE,
           "block 'T2' reads buffer 'T' that it writes");
  ck_fails(sch_compute_inline(S, block("Q")), KILN_ERR_SCHEDULE,
           "the body of block 'Q' is not a single store to buffer 'Q'");
  ck_fails(sch_compute_inline(S, block("L")), KILN_ERR_SCHEDULE,
           "the value of block 'L' binds a let variable");
  ck_fails(sch_compute_inline(S, block("O")), KILN_ERR_SCHEDULE,
           "compute_inline: block 'O' writes output buffer 'O'");
  ck_fails(sch_compute_inline(S, loop_of("O", 0)), KILN_ERR_MISUSE, "expected a block");
}
END_TEST

/* An init without a reduce iterator (the verifier rejects it; the primitive checks anyway). */
START_TEST(test_compute_inline_init) {
  load_unverified("func @f(A: buffer(float32, [4i64]), O: buffer(float32, [4i64])) {\n"
                  "  block \"root\"() {\n"
                  "    alloc B: buffer(float32, [4i64])\n"
                  "    for i: int64 in range(0i64, 4i64) {\n"
                  "      block \"B\"(v: int64 = spatial(0i64, 4i64) <- i) {\n"
                  "        reads(A[v])\n"
                  "        writes(B[v])\n"
                  "        init {\n"
                  "          B[v] = 0f32;\n"
                  "        }\n"
                  "        B[v] = A[v];\n"
                  "      }\n"
                  "    }\n"
                  "    for i: int64 in range(0i64, 4i64) {\n"
                  "      block \"O\"(v: int64 = spatial(0i64, 4i64) <- i) {\n"
                  "        reads(B[v])\n"
                  "        writes(O[v])\n"
                  "        O[v] = B[v];\n"
                  "      }\n"
                  "    }\n"
                  "  }\n"
                  "}\n");
  ck_fails(sch_compute_inline(S, block("B")), KILN_ERR_SCHEDULE,
           "compute_inline: block 'B' has an init");
}
END_TEST

/* A block that was inlined is gone: primitives on its RV say so. */
START_TEST(test_compute_inline_stale) {
  load(chain, 4, 6);
  sch_rv b = block("B");
  ck_ok(ctx, sch_compute_inline(S, b));
  ck_fails(sch_compute_inline(S, b), KILN_ERR_SCHEDULE, "block 'B' no longer exists");
  ck_fails(sch_compute_at(S, b, loop_of("D", 0), false), KILN_ERR_SCHEDULE,
           "block 'B' no longer exists");
}
END_TEST

/* ---- reverse_compute_inline ---------------------------------------------------------- */

/* B = A + bias[j] over [M, N]; the consumer iterates (a over N, b over M), loads B[b, a] and
 * writes D[a, b] = max(B[b, a] * E[a], 0): the producer ends up storing the transposed
 * relu. Args: 1 M, 2 N. */
static const char *bias_relu =
    "func @f(A: buffer(float32, [%1$di64, %2$di64]), bias: buffer(float32, [%2$di64]), E: buffer(float32, [%2$di64]), D: buffer(float32, [%2$di64, %1$di64])) {\n"
    "  block \"root\"() {\n"
    "    alloc B: buffer(float32, [%1$di64, %2$di64])\n"
    "    for i: int64 in range(0i64, %1$di64) {\n"
    "      for j: int64 in range(0i64, %2$di64) {\n"
    "        block \"add\"(vi: int64 = spatial(0i64, %1$di64) <- i, vj: int64 = spatial(0i64, %2$di64) <- j) {\n"
    "          reads(A[vi, vj], bias[vj])\n"
    "          writes(B[vi, vj])\n"
    "          B[vi, vj] = A[vi, vj] + bias[vj];\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, %2$di64) {\n"
    "      for j: int64 in range(0i64, %1$di64) {\n"
    "        block \"relu\"(a: int64 = spatial(0i64, %2$di64) <- i, b: int64 = spatial(0i64, %1$di64) <- j) {\n"
    "          reads(B[b, a], E[a])\n"
    "          writes(D[a, b])\n"
    "          D[a, b] = max(B[b, a] * E[a], 0f32);\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

START_TEST(test_reverse_compute_inline) {
  static const int shapes[][2] = {{4, 6}, {5, 3}, {1, 1}};
  for (int c = 0; c < 3; c++) {
    load(bias_relu, shapes[c][0], shapes[c][1]);
    ck_ok(ctx, sch_reverse_compute_inline(S, block("relu")));
    ck_assert_int_eq(last_inst()->kind, SCH_INST_REVERSE_COMPUTE_INLINE);
    check_same();
    ck_assert(!has_block("relu"));
    ck_assert(!allocates("B"));
    const ir_block *add = realize("add")->block;
    ck_assert_int_eq(add->nwrites, 1);
    ck_assert_str_eq(add->writes[0]->buffer->name, "D");
    ck_assert_int_eq(add->nreads, 3); /* A, bias, E */
  }
}
END_TEST

/* The relu after a matmul: its producer is a reduction. */
START_TEST(test_reverse_compute_inline_matmul) {
  load_mm(mm_relu, 8, 6, 3, 4, 3);
  ck_fails(sch_reverse_compute_inline(S, block("relu")), KILN_ERR_SCHEDULE,
           "reverse_compute_inline: the producer 'C' of block 'relu' is a reduction (iterator "
           "'vk' is a reduce iterator)");
  ck_fails(sch_reverse_compute_inline(S, block("C")), KILN_ERR_SCHEDULE,
           "reverse_compute_inline: block 'C' is a reduction");
  /* computed at a tile of the matmul, relu is still reverse-computable at another level */
  ck_ok(ctx, sch_reverse_compute_at(S, block("relu"), loop_of("C", 0), false));
  check_same();
}
END_TEST

START_TEST(test_reverse_compute_inline_errors) {
  prog_begin("A: buffer(float32, [8i64]), O: buffer(float32, [8i64]), Bp: buffer(float32, [8i64])",
             "    alloc B1: buffer(float32, [8i64])\n"
             "    alloc B3: buffer(float32, [9i64])\n"
             "    alloc B4: buffer(float32, [8i64])\n"
             "    alloc B5: buffer(float32, [8i64])\n"
             "    alloc B6: buffer(float32, [8i64])\n"
             "    alloc B7: buffer(float32, [8i64])\n");
  stage("R7", 8, "B7[v]", "O[v]", "O[v] = B7[v];");
  stage("P7", 8, "A[v]", "B7[v]", "B7[v] = A[v];");
  stage("P1", 8, "A[v]", "B1[v]", "B1[v] = A[v] + 1f32;");
  stage("R1", 8, "B1[v]", "O[v]", "O[v] = B1[v] * B1[v];");
  stage("P3", 9, "A[0i64 +: 8i64]", "B3[v]", "B3[v] = 1f32;");
  stage("R3", 8, "B3[v + 1i64]", "O[v]", "O[v] = B3[v + 1i64];");
  stage("R3b", 8, "B3[v]", "O[v]", "O[v] = B3[v];");
  stage("P4", 8, "A[v]", "B4[v]", "B4[v] = A[v];");
  stage("P4b", 8, "B4[v]", "B4[v]", "B4[v] = B4[v] + 1f32;");
  stage("R4", 8, "B4[v]", "O[v]", "O[v] = B4[v];");
  stage("P5", 8, "A[v]", "B5[v]", "B5[v] = A[v];");
  stage("R5", 8, "B5[v]", "O[v]", "O[v] = B5[v];");
  stage("R5b", 8, "B5[v]", "O[v]", "O[v] = B5[v] + 1f32;");
  stage("P6", 8, "A[v]", "B6[v]", "for k: int64 in range(0i64, 1i64) {\n B6[v] = A[v];\n }");
  stage("R6", 8, "B6[v]", "O[v]", "O[v] = B6[v];");
  stage("P8", 8, "A[v]", "Bp[v]", "Bp[v] = A[v];");
  stage("R8", 8, "Bp[v]", "O[v]", "O[v] = Bp[v];");
  stage("R9", 8, "O[v], B1[v]", "O[v]", "O[v] = O[v] + B1[v];");
  stage("R10", 8, "B1[v], B5[v]", "O[v]", "O[v] = B1[v] + B5[v];");
  prog_end();
  ck_fails(sch_reverse_compute_inline(S, block("R7")), KILN_ERR_SCHEDULE,
           "block 'R7' comes before its producer 'P7'");
  ck_fails(sch_reverse_compute_inline(S, block("P1")), KILN_ERR_SCHEDULE,
           "block 'P1' reads no buffer written by another block");
  ck_fails(sch_reverse_compute_inline(S, block("R1")), KILN_ERR_SCHEDULE,
           "block 'R1' loads buffer 'B1' 2 times (exactly once is needed)");
  ck_fails(sch_reverse_compute_inline(S, block("R3")), KILN_ERR_SCHEDULE,
           "block 'R3' loads buffer 'B3' at indices that are not exactly its iterators");
  ck_fails(sch_reverse_compute_inline(S, block("R3b")), KILN_ERR_SCHEDULE,
           "block 'R3b' does not cover buffer 'B3': iterator 'v' does not run over all of "
           "dimension 0");
  ck_fails(sch_reverse_compute_inline(S, block("R4")), KILN_ERR_SCHEDULE,
           "buffer 'B4' that block 'R4' reads has 2 writers ('P4', 'P4b', ...)");
  ck_fails(sch_reverse_compute_inline(S, block("R5")), KILN_ERR_SCHEDULE,
           "buffer 'B5' is also read by block 'R5b'");
  ck_fails(sch_reverse_compute_inline(S, block("R6")), KILN_ERR_SCHEDULE,
           "the producer 'P6' of block 'R6' is not a single store to buffer 'B6'");
  ck_fails(sch_reverse_compute_inline(S, block("R8")), KILN_ERR_SCHEDULE,
           "block 'R8' reads buffer 'Bp', an output of the function");
  ck_fails(sch_reverse_compute_inline(S, block("R9")), KILN_ERR_SCHEDULE,
           "block 'R9' reads buffer 'O' that it writes");
  ck_fails(sch_reverse_compute_inline(S, block("R10")), KILN_ERR_SCHEDULE,
           "block 'R10' reads two buffers written by other blocks ('B1' and 'B5')");
}
END_TEST

/* Batch-1 tensors: lowered consumers load an extent-1 dimension at the constant 0 (numpy
 * broadcasting). All four primitives accept it. */
static const char *batch1 =
    "func @f(A: buffer(float32, [1i64, 8i64]), D: buffer(float32, [1i64, 8i64])) {\n"
    "  block \"root\"() {\n"
    "    alloc B: buffer(float32, [1i64, 8i64])\n"
    "    for i: int64 in range(0i64, 1i64) {\n"
    "      for j: int64 in range(0i64, 8i64) {\n"
    "        block \"B\"(v0: int64 = spatial(0i64, 1i64) <- i, v1: int64 = spatial(0i64, 8i64) <- j) {\n"
    "          reads(A[v0, v1])\n"
    "          writes(B[v0, v1])\n"
    "          B[v0, v1] = A[v0, v1] - 1f32;\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "    for i: int64 in range(0i64, 1i64) {\n"
    "      for j0: int64 in range(0i64, 2i64) {\n"
    "        for j1: int64 in range(0i64, 4i64) {\n"
    "          block \"relu\"(v0: int64 = spatial(0i64, 1i64) <- i, v1: int64 = spatial(0i64, 8i64) <- j0 * 4i64 + j1) {\n"
    "            reads(B[0i64, v1])\n"
    "            writes(D[v0, v1])\n"
    "            D[v0, v1] = max(B[0i64, v1], 0f32);\n"
    "          }\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

START_TEST(test_broadcast_dims) {
  load("%s", batch1);
  ck_ok(ctx, sch_reverse_compute_inline(S, block("relu")));
  check_same();
  load("%s", batch1);
  ck_ok(ctx, sch_reverse_compute_at(S, block("relu"), loop_of("B", 1), false));
  check_same();
  ck_assert_int_eq(nloops("relu"), 2); /* i, j: one element per iteration */
  load("%s", batch1);
  ck_ok(ctx, sch_compute_at(S, block("B"), loop_of("relu", 1), false));
  check_same();
  ck_assert_int_eq(nloops("B"), 3); /* i, j0, ax0 over 4 */
  ck_assert_int_eq(loop_extent("B", 2), 4);
  load("%s", batch1);
  ck_ok(ctx, sch_compute_inline(S, block("B")));
  check_same();
}
END_TEST

/* ---- sample_compute_location ------------------------------------------------------------ */

/* Given decisions: the k-th loop of the consumer, root and inline; compute_at on the result. */
START_TEST(test_sample_given) {
  for (int64_t d = -2; d < 4; d++) {
    load_tiled2d(10, 7, 4, 3);
    sch_rv loc;
    ck_ok(ctx, sch_sample_compute_location(S, block("P"), &d, &loc));
    const sch_inst *in = last_inst();
    ck_assert_int_eq(in->kind, SCH_INST_SAMPLE_COMPUTE_LOCATION);
    ck_assert_int_eq(in->ndecision, 1);
    ck_assert_int_eq(in->decision[0], d);
    ck_assert_int_eq(in->noutputs, 1);
    ck_assert_int_eq(in->outputs[0], loc);
    const sch_rv_info *ri = sch_rv_get(S, loc);
    ck_assert_int_eq(ri->kind, SCH_RV_LOOP);
    if (d >= 0) {
      ck_assert_ptr_eq(ri->loop, sch_rv_get(S, loop_of("C", (int)d))->loop);
    } else {
      ck_assert_ptr_null(ri->loop);
      ck_assert_int_eq(ri->special, d == -1 ? SCH_LOC_ROOT : SCH_LOC_INLINE);
    }
    ir_func *before = S->func;
    ck_ok(ctx, sch_compute_at(S, block("P"), loc, false));
    ck_assert_int_eq(last_inst()->kind, SCH_INST_COMPUTE_AT);
    check_same();
    if (d == -1) ck_assert_ptr_eq(S->func, before);
    if (d == -2) ck_assert(!has_block("P"));
    static const int want_loops[4] = {3, 4, 4, 4}; /* i0 ax0 ax1 | i0 j0 ax0 ax1 | ... */
    if (d >= 0) ck_assert_int_eq(nloops("P"), want_loops[d]);
  }
}
END_TEST

START_TEST(test_sample_errors) {
  load_tiled2d(10, 7, 4, 3);
  sch_rv loc;
  int64_t d = 4;
  ck_fails(sch_sample_compute_location(S, block("P"), &d, &loc), KILN_ERR_SCHEDULE,
           "sample_compute_location: decision 4 is out of range for block 'P'");
  d = -3;
  ck_fails(sch_sample_compute_location(S, block("P"), &d, &loc), KILN_ERR_SCHEDULE,
           "decision -3 is out of range");
  ck_fails(sch_sample_compute_location(S, loop_of("C", 0), NULL, &loc), KILN_ERR_MISUSE,
           "expected a block");
  /* a matmul cannot be inlined; its candidates are relu's four loops */
  load_mm(relu_tiled, 8, 6, 3, 4, 3);
  d = -2;
  ck_fails(sch_sample_compute_location(S, block("C"), &d, &loc), KILN_ERR_SCHEDULE,
           "decision -2 (inline) is not legal for block 'C'");
  d = 3;
  ck_ok(ctx, sch_sample_compute_location(S, block("C"), &d, &loc));
  /* a consumer in another nest leaves no candidate loop */
  load("%s", two_consumers);
  d = 0;
  ck_fails(sch_sample_compute_location(S, block("P"), &d, &loc), KILN_ERR_SCHEDULE,
           "decision 0 is out of range");
  d = -2;
  ck_ok(ctx, sch_sample_compute_location(S, block("P"), &d, &loc));
  ck_ok(ctx, sch_compute_at(S, block("P"), loc, false));
  check_same();
  ck_assert(!has_block("P"));
}
END_TEST

/* Sampling: deterministic per seed, every legal choice reached over seeds, each result
 * usable by compute_at. */
START_TEST(test_sample_random) {
  int seen[6] = {0};
  for (uint64_t seed = 1; seed <= 48; seed++) {
    int64_t got[2];
    for (int rep = 0; rep < 2; rep++) {
      load_tiled2d(10, 7, 4, 3);
      sch_free(S);
      S = sch_new(ctx, mod->funcs[0], seed);
      ck_assert_ptr_nonnull(S);
      sch_rv loc;
      ck_ok(ctx, sch_sample_compute_location(S, block("P"), NULL, &loc));
      got[rep] = last_inst()->decision[0];
      ck_assert_int_ge(got[rep], -2);
      ck_assert_int_le(got[rep], 3);
      if (rep == 0) {
        ck_ok(ctx, sch_compute_at(S, block("P"), loc, false));
        check_same();
      }
    }
    ck_assert_int_eq(got[0], got[1]);
    seen[got[0] + 2]++;
  }
  for (int i = 0; i < 6; i++) ck_assert_msg(seen[i] > 0, "decision %d never sampled", i - 2);
  /* with only root legal there is nothing to choose */
  load("%s", two_consumers);
  sch_rv loc;
  ck_ok(ctx, sch_sample_compute_location(S, block("C"), NULL, &loc));
  ck_assert_int_eq(last_inst()->decision[0], -1);
}
END_TEST

/* reverse_compute_at with the special locations: INLINE is reverse_compute_inline, ROOT
 * changes nothing; both are recorded. */
START_TEST(test_reverse_compute_at_specials) {
  load(bias_relu, 4, 6);
  sch_rv root, inl;
  int64_t d = -1;
  ck_ok(ctx, sch_sample_compute_location(S, block("add"), &d, &root));
  d = -2;
  ck_ok(ctx, sch_sample_compute_location(S, block("add"), &d, &inl));
  ir_func *before = S->func;
  ck_ok(ctx, sch_reverse_compute_at(S, block("relu"), root, false));
  ck_assert_int_eq(last_inst()->kind, SCH_INST_REVERSE_COMPUTE_AT);
  ck_assert_ptr_eq(S->func, before);
  ck_ok(ctx, sch_reverse_compute_at(S, block("relu"), inl, false));
  ck_assert_int_eq(last_inst()->kind, SCH_INST_REVERSE_COMPUTE_AT);
  check_same();
  ck_assert(!has_block("relu"));
  /* a special location is not a loop for other primitives */
  ck_fails(sch_get_for(S, "test", inl, &(ir_for *){NULL}), KILN_ERR_SCHEDULE,
           "expected a loop, got the inline location");
}
END_TEST

/* ---- Replay ----------------------------------------------------------------------------- */

/* Replays S's trace on a fresh schedule of the same function through the apply entries
 * (decisions kept, or dropped to re-sample with another seed) and returns it. */
static sch_schedule *replay(bool keep_decisions, uint64_t seed) {
  sch_schedule *r = sch_new(ctx, S->orig, seed);
  ck_assert_ptr_nonnull(r);
  sch_rv map[1024];
  for (int i = 0; i < S->nrvs && i < 1024; i++) map[i] = SCH_RV_NONE;
  static const sch_apply_fn fns[SCH_INST_COUNT] = {
#define X(e, n, f) f,
      SCH_INSTRUCTIONS(X)
#undef X
  };
  int ninsts = S->trace.ninsts;
  for (int i = 0; i < ninsts; i++) {
    const sch_inst *in = &S->trace.insts[i];
    sch_arg args[SCH_MAX_INST_ARGS];
    for (int k = 0; k < in->ninputs; k++) {
      args[k] = in->inputs[k];
      if (args[k].kind == SCH_ARG_RV) args[k].i = map[args[k].i];
    }
    sch_rv outs[SCH_MAX_INST_ARGS];
    int nout = 0;
    bool keep = keep_decisions && in->ndecision > 0;
    ck_ok(ctx, fns[in->kind](r, in->ninputs, args, keep ? in->ndecision : 0,
                             keep ? in->decision : NULL, outs, &nout));
    ck_assert_int_eq(nout, in->noutputs);
    for (int k = 0; k < nout; k++) map[in->outputs[k]] = outs[k];
  }
  ck_assert_int_eq(r->trace.ninsts, ninsts);
  return r;
}

START_TEST(test_replay) {
  load_mm(mm_relu, 10, 7, 3, 4, 3);
  sch_rv loc;
  int64_t d = 1;
  ck_ok(ctx, sch_sample_compute_location(S, block("C"), &d, &loc)); /* recorded, not used */
  ck_ok(ctx, sch_reverse_compute_at(S, block("relu"), loop_of("C", 1), true));
  check_same();
  sch_schedule *r = replay(true, 1);
  ck_assert(ir_structural_equal(ctx, &r->func->h, &S->func->h));
  sch_free(r);

  load_tiled2d(10, 7, 4, 3);
  d = 1;
  ck_ok(ctx, sch_sample_compute_location(S, block("P"), &d, &loc));
  ck_ok(ctx, sch_compute_at(S, block("P"), loc, false));
  ck_ok(ctx, sch_compute_inline(S, block("P")));
  check_same();
  r = replay(true, 99);
  ck_assert(ir_structural_equal(ctx, &r->func->h, &S->func->h));
  sch_free(r);

  load(bias_relu, 3, 5);
  ck_ok(ctx, sch_reverse_compute_inline(S, block("relu")));
  r = replay(true, 1);
  ck_assert(ir_structural_equal(ctx, &r->func->h, &S->func->h));
  sch_free(r);

  /* Re-sampled decisions still give a valid schedule. */
  load_tiled2d(10, 7, 4, 3);
  ck_ok(ctx, sch_sample_compute_location(S, block("P"), NULL, &loc));
  ck_ok(ctx, sch_compute_at(S, block("P"), loc, true));
  for (uint64_t seed = 1; seed < 12; seed++) {
    r = replay(false, seed);
    ck_ok(ctx, ir_verify_func(ctx, r->func));
    sch_free(r);
  }
}
END_TEST

START_TEST(test_apply_malformed) {
  load_tiled2d(8, 6, 4, 3);
  sch_rv b = block("P"), l = loop_of("C", 0);
  sch_rv outs[SCH_MAX_INST_ARGS];
  int nout;
  sch_arg two[2] = {{SCH_ARG_RV, b, 0, NULL}, {SCH_ARG_RV, l, 0, NULL}};
  ck_fails(sch_apply_compute_at(S, 2, two, 0, NULL, outs, &nout), KILN_ERR_PARSE,
           "trace: compute_at takes a block, a loop and preserve_unit_loops");
  ck_fails(sch_apply_reverse_compute_at(S, 2, two, 0, NULL, outs, &nout), KILN_ERR_PARSE,
           "trace: reverse_compute_at takes a block, a loop and preserve_unit_loops");
  sch_arg swapped[3] = {{SCH_ARG_RV, l, 0, NULL}, {SCH_ARG_RV, b, 0, NULL}, sch_arg_int(0)};
  ck_fails(sch_apply_compute_at(S, 3, swapped, 0, NULL, outs, &nout), KILN_ERR_PARSE,
           "is not a block");
  ck_fails(sch_apply_compute_inline(S, 2, two, 0, NULL, outs, &nout), KILN_ERR_PARSE,
           "trace: compute_inline takes one block");
  ck_fails(sch_apply_reverse_compute_inline(S, 0, NULL, 0, NULL, outs, &nout), KILN_ERR_PARSE,
           "trace: reverse_compute_inline takes one block");
  ck_fails(sch_apply_sample_compute_location(S, 2, two, 0, NULL, outs, &nout), KILN_ERR_PARSE,
           "trace: sample_compute_location takes one block");
  int64_t dd[2] = {0, 1};
  ck_fails(sch_apply_sample_compute_location(S, 1, two, 2, dd, outs, &nout), KILN_ERR_PARSE,
           "takes one decision, got 2");
  sch_arg name = sch_arg_str("P");
  ck_fails(sch_apply_compute_inline(S, 1, &name, 0, NULL, outs, &nout), KILN_ERR_PARSE,
           "expected a block argument");
}
END_TEST

/* ---- Allocation failures ----------------------------------------------------------------- */

/* Every allocation of each primitive fails in turn: the result is KILN_ERR_NOMEM (or success
 * once the failure lands after the work), and the teardown finds nothing leaked. */
static void fault_loop(int which) {
  for (long n = 1;; n++) {
    switch (which) {
    case 0: case 4: load_tiled2d(10, 7, 4, 3); break;
    case 1: load_mm(mm_relu, 10, 7, 3, 4, 3); break;
    case 2: load(pad_conv, 5, 7, 6); break;
    default: load(bias_relu, 4, 6); break;
    }
    sch_rv b = block(which == 1 ? "relu" : which == 2 ? "pad" : which == 3 ? "relu" : "P");
    sch_rv l = which == 0 ? loop_of("C", 1) : which == 1 ? loop_of("C", 1) : SCH_RV_NONE;
    kiln_context_fail_alloc(ctx, n);
    kiln_status st;
    sch_rv loc;
    switch (which) {
    case 0: st = sch_compute_at(S, b, l, false); break;
    case 1: st = sch_reverse_compute_at(S, b, l, false); break;
    case 2: st = sch_compute_inline(S, b); break;
    case 3: st = sch_reverse_compute_inline(S, b); break;
    default: st = sch_sample_compute_location(S, b, NULL, &loc); break;
    }
    kiln_context_fail_alloc(ctx, 0);
    ck_assert_msg(st == KILN_OK || st == KILN_ERR_NOMEM, "case %d, allocation %ld: %s (%s)",
                  which, n, kiln_status_str(st), kiln_context_errmsg(ctx));
    if (st == KILN_OK) {
      ck_assert_int_gt(n, 1); /* the first allocation's failure was seen */
      if (which != 4) check_same();
      break;
    }
  }
}

START_TEST(test_fault_injection) { fault_loop(_i); }
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("sch_compute");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_compute_at_each_level);
  tcase_add_test(tc, test_compute_at_unit_loops);
  tcase_add_test(tc, test_compute_at_twice);
  tcase_add_test(tc, test_compute_at_stencil);
  tcase_add_test(tc, test_compute_at_reduction);
  tcase_add_test(tc, test_reverse_compute_at_epilogue);
  tcase_add_test(tc, test_compute_at_two_consumers);
  tcase_add_test(tc, test_compute_at_errors);
  tcase_add_test(tc, test_compute_at_consumer_outside);
  tcase_add_test(tc, test_compute_at_order);
  tcase_add_test(tc, test_compute_at_bad_producers);
  tcase_add_test(tc, test_compute_at_reduce_index);
  tcase_add_test(tc, test_reverse_compute_at_errors);
  tcase_add_test(tc, test_reverse_compute_at_bad_consumers);
  tcase_add_test(tc, test_reverse_compute_at_specials);
  tcase_add_test(tc, test_compute_inline_chain);
  tcase_add_test(tc, test_compute_inline_into_reduction);
  tcase_add_test(tc, test_compute_inline_after_compute_at);
  tcase_add_test(tc, test_compute_inline_nested_scope);
  tcase_add_test(tc, test_compute_inline_errors);
  tcase_add_test(tc, test_compute_inline_init);
  tcase_add_test(tc, test_compute_inline_stale);
  tcase_add_test(tc, test_reverse_compute_inline);
  tcase_add_test(tc, test_reverse_compute_inline_matmul);
  tcase_add_test(tc, test_reverse_compute_inline_errors);
  tcase_add_test(tc, test_broadcast_dims);
  tcase_add_test(tc, test_sample_given);
  tcase_add_test(tc, test_sample_errors);
  tcase_add_test(tc, test_sample_random);
  tcase_add_test(tc, test_replay);
  tcase_add_test(tc, test_apply_malformed);
  tcase_add_loop_test(tc, test_fault_injection, 0, 5);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

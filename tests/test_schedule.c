/* test_schedule.c: the schedule state's queries (get_block, get_loops, get_child_blocks, RVs
 * that stop resolving, RV kind misuse) and the loop primitives of schedule/loops.c: split,
 * fuse, reorder, parallel, vectorize, unroll and annotate. Every transformation is checked
 * twice: the verifier accepts the new function, and the TIR interpreter gives bit-identical
 * results to the unscheduled function on small-integer data (so reordered float sums are
 * exact). Every precondition has a negative test that also checks that the function and the
 * trace stay unchanged; the recorded instructions are checked and replayed through the apply
 * entries; a 64x64x64 matmul gets a two-level tiling. */
#include <stdarg.h>

#include "ir/node.h"
#include "ir/text.h"
#include "ir/verify.h"
#include "schedule/schedule.h"
#include "test_util.h"

static kiln_context *ctx;
enum { MAX_LIVE = 8 };
static sch_schedule *live[MAX_LIVE];
static int nlive;

static void setup(void) {
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  nlive = 0;
}

static void teardown(void) {
  for (int i = 0; i < nlive; i++) sch_free(live[i]);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}

/* ---- Building schedules ---------------------------------------------------------------- */

/* A schedule over the one function of a TIR text given printf-style (freed at teardown). */
__attribute__((format(printf, 1, 2))) static sch_schedule *new_sched(const char *fmt, ...) {
  char text[8192];
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  ck_assert_int_lt(len, (int)sizeof text);
  kiln_tir_module *m;
  kiln_status st = kiln_tir_module_parse(ctx, text, strlen(text), "test", &m);
  ck_assert_msg(st == KILN_OK, "parse failed: %s\n%s", kiln_context_errmsg(ctx), text);
  ck_assert_int_eq(m->nfuncs, 1);
  ck_ok(ctx, ir_verify_func(ctx, m->funcs[0]));
  sch_schedule *s = sch_new(ctx, m->funcs[0], 42);
  kiln_tir_module_free(m);
  ck_assert_ptr_nonnull(s);
  ck_assert_int_lt(nlive, MAX_LIVE);
  live[nlive++] = s;
  return s;
}

/* C[i, j] = sum_k A[i, k] * B[k, j], then D = max(C, 0): two stages under a root block that
 * allocates C. Loops i j k and i2 j2; blocks "matmul" and "relu". */
#define MATMUL_TIR                                                                           \
  "func @mm(A: buffer(float32, [%1$di64, %3$di64]), B: buffer(float32, [%3$di64, %2$di64]),"  \
  " D: buffer(float32, [%1$di64, %2$di64])) {\n"                                              \
  "  block \"root\"() {\n"                                                                    \
  "    alloc C: buffer(float32, [%1$di64, %2$di64])\n"                                        \
  "    for i: int64 in range(0i64, %1$di64) {\n"                                              \
  "      for j: int64 in range(0i64, %2$di64) {\n"                                            \
  "        for k: int64 in range(0i64, %3$di64) {\n"                                          \
  "          block \"matmul\"(vi: int64 = spatial(0i64, %1$di64) <- i,"                       \
  " vj: int64 = spatial(0i64, %2$di64) <- j, vk: int64 = reduce(0i64, %3$di64) <- k) {\n"     \
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
  "    for i2: int64 in range(0i64, %1$di64) {\n"                                             \
  "      for j2: int64 in range(0i64, %2$di64) {\n"                                           \
  "        block \"relu\"(vi: int64 = spatial(0i64, %1$di64) <- i2,"                          \
  " vj: int64 = spatial(0i64, %2$di64) <- j2) {\n"                                            \
  "          reads(C[vi, vj])\n"                                                              \
  "          writes(D[vi, vj])\n"                                                             \
  "          D[vi, vj] = max(C[vi, vj], 0f32);\n"                                             \
  "        }\n"                                                                               \
  "      }\n"                                                                                 \
  "    }\n"                                                                                   \
  "  }\n"                                                                                     \
  "}\n"

static sch_schedule *matmul(int m, int n, int k) { return new_sched(MATMUL_TIR, m, n, k); }

/* ---- Checking results ------------------------------------------------------------------ */

static int64_t numel(const ir_buffer *b) {
  int64_t n = 1;
  for (int d = 0; d < b->ndim; d++) {
    const ir_int_imm *c = ir_as_int(b->shape[d]);
    ck_assert_msg(c != NULL, "buffer '%s' has a symbolic shape", b->name);
    n *= c->value;
  }
  return n;
}

/* Small integers (as the buffer's element type) from a fixed seed. */
static void fill(const ir_buffer *b, void *data, int64_t n, unsigned seed) {
  for (int64_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    int v = (int)((seed >> 16) % 9) - 4;
    if (b->h.dtype.code == KILN_TYPE_FLOAT) ((float *)data)[i] = (float)v;
    else ((int32_t *)data)[i] = v;
  }
}

/* Runs the unscheduled and the current function on the same data (every parameter is a
 * buffer of float32 or int32 with a constant shape) and requires identical bytes in every
 * buffer afterwards; the current function must also verify. */
static void check_same(sch_schedule *s) {
  ck_ok(ctx, ir_verify_func(ctx, s->func));
  const ir_func *f = s->orig;
  ck_assert_int_le(f->nparams, 8);
  void *a[8], *b[8];
  size_t bytes[8];
  for (int p = 0; p < f->nparams; p++) {
    const ir_buffer *buf = ir_as_buffer(f->params[p]);
    ck_assert_ptr_nonnull(buf);
    int64_t n = numel(buf);
    bytes[p] = (size_t)n * 4;
    a[p] = malloc(bytes[p] ? bytes[p] : 1);
    b[p] = malloc(bytes[p] ? bytes[p] : 1);
    fill(buf, a[p], n, 1000u + (unsigned)p);
    memcpy(b[p], a[p], bytes[p]);
  }
  ck_ok(ctx, ir_interpret(ctx, s->orig, f->nparams, a));
  ck_ok(ctx, ir_interpret(ctx, s->func, f->nparams, b));
  for (int p = 0; p < f->nparams; p++) {
    ck_assert_msg(memcmp(a[p], b[p], bytes[p]) == 0, "parameter %d differs after scheduling", p);
    free(a[p]);
    free(b[p]);
  }
}

/* The text of the current function (malloc'ed by the test). */
static char *func_text(sch_schedule *s) {
  char *t = ir_node_to_string(ctx, &s->func->h);
  ck_assert_ptr_nonnull(t);
  char *copy = strdup(t);
  kiln_string_free(ctx, t);
  return copy;
}

static void expect_text(sch_schedule *s, const char *needle, bool present) {
  char *t = func_text(s);
  ck_assert_msg((strstr(t, needle) != NULL) == present, "'%s' %s in:\n%s", needle,
                present ? "missing" : "unexpected", t);
  free(t);
}

/* A call that must fail with code and a message containing needle, leaving the function and
 * the trace as they were. */
#define EXPECT_FAIL(s, call, code, needle)                                                  \
  do {                                                                                      \
    ir_func *f0_ = (s)->func;                                                               \
    int n0_ = (s)->trace.ninsts;                                                            \
    kiln_status st_ = (call);                                                               \
    ck_assert_msg(st_ == (code), "%s: expected %s, got %s (%s)", #call,                     \
                  kiln_status_str(code), kiln_status_str(st_), kiln_context_errmsg(ctx));   \
    ck_errmsg_has(ctx, needle);                                                             \
    ck_assert_ptr_eq((s)->func, f0_);                                                       \
    ck_assert_int_eq((s)->trace.ninsts, n0_);                                               \
  } while (0)

static sch_rv block(sch_schedule *s, const char *name) {
  sch_rv b;
  ck_ok(ctx, sch_get_block(s, name, &b));
  return b;
}

/* The loops around a block (at most 16). */
static int loops_of(sch_schedule *s, const char *name, sch_rv *out) {
  int n;
  sch_rv *l;
  ck_ok(ctx, sch_get_loops(s, block(s, name), &n, &l));
  ck_assert_int_le(n, 16);
  if (n) memcpy(out, l, sizeof *l * (size_t)n);
  return n;
}

static const char *loop_name(sch_schedule *s, sch_rv rv) {
  const sch_rv_info *r = sch_rv_get(s, rv);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->kind, SCH_RV_LOOP);
  return r->loop->name;
}

/* The loop of a loop RV in the current function. */
static ir_for *loop_of(sch_schedule *s, sch_rv rv) {
  ir_for *f;
  ck_ok(ctx, sch_get_for(s, "test", rv, &f));
  return f;
}

static int64_t extent_of(sch_schedule *s, sch_rv rv) {
  const ir_int_imm *c = ir_as_int(loop_of(s, rv)->extent);
  ck_assert_ptr_nonnull(c);
  return c->value;
}

/* Splits with constant factors. */
static void split(sch_schedule *s, sch_rv loop, int n, const int64_t *factors, sch_rv *out) {
  sch_rv f[16];
  for (int i = 0; i < n; i++) f[i] = sch_int(s, factors[i]);
  ck_ok(ctx, sch_split(s, loop, n, f, out));
}

static kiln_status try_split(sch_schedule *s, sch_rv loop, int n, const int64_t *factors) {
  sch_rv f[80], out[80];
  for (int i = 0; i < n; i++) f[i] = sch_int(s, factors[i]);
  return sch_split(s, loop, n, f, out);
}

static sch_rv fuse2(sch_schedule *s, sch_rv a, sch_rv b) {
  sch_rv l[2] = {a, b}, out;
  ck_ok(ctx, sch_fuse(s, 2, l, &out));
  return out;
}

/* The names of the loops around a block, joined by spaces. */
static void expect_loop_order(sch_schedule *s, const char *blk, const char *want) {
  sch_rv l[16];
  int n = loops_of(s, blk, l);
  char got[256] = "";
  for (int i = 0; i < n; i++) {
    if (i) strcat(got, " ");
    strcat(got, loop_name(s, l[i]));
  }
  ck_assert_str_eq(got, want);
}

/* ---- Queries --------------------------------------------------------------------------- */

START_TEST(test_get_block) {
  sch_schedule *s = matmul(4, 5, 6);
  sch_rv b = block(s, "matmul");
  const sch_rv_info *r = sch_rv_get(s, b);
  ck_assert_int_eq(r->kind, SCH_RV_BLOCK);
  ck_assert_str_eq(r->block, "matmul");
  ir_block_realize *br;
  ck_ok(ctx, sch_get_realize(s, "test", b, &br));
  ck_assert_str_eq(br->block->name, "matmul");
  sch_rv out;
  EXPECT_FAIL(s, sch_get_block(s, "nope", &out), KILN_ERR_SCHEDULE,
              "get_block: no block named 'nope' in function 'mm'");
}
END_TEST

/* Two stages whose blocks share a name (the verifier would reject the function; the
 * schedule must not pick one of them silently). */
START_TEST(test_get_block_duplicate) {
  kiln_tir_module *m;
  const char *text =
      "func @dup(A: buffer(float32, [4i64])) {\n"
      "  for i: int64 in range(0i64, 4i64) {\n"
      "    block \"b\"(v: int64 = spatial(0i64, 4i64) <- i) {\n"
      "      writes(A[v])\n"
      "      A[v] = 1f32;\n"
      "    }\n"
      "  }\n"
      "  for i2: int64 in range(0i64, 4i64) {\n"
      "    block \"b\"(v: int64 = spatial(0i64, 4i64) <- i2) {\n"
      "      writes(A[v])\n"
      "      A[v] = 2f32;\n"
      "    }\n"
      "  }\n"
      "}\n";
  ck_ok(ctx, kiln_tir_module_parse(ctx, text, strlen(text), "dup", &m));
  sch_schedule *s = sch_new(ctx, m->funcs[0], 1);
  kiln_tir_module_free(m);
  ck_assert_ptr_nonnull(s);
  live[nlive++] = s;
  sch_rv out;
  EXPECT_FAIL(s, sch_get_block(s, "b", &out), KILN_ERR_SCHEDULE, "2 blocks are named 'b'");
}
END_TEST

START_TEST(test_get_loops) {
  sch_schedule *s = matmul(4, 5, 6);
  sch_rv l[16];
  ck_assert_int_eq(loops_of(s, "matmul", l), 3);
  ck_assert_str_eq(loop_name(s, l[0]), "i");
  ck_assert_str_eq(loop_name(s, l[1]), "j");
  ck_assert_str_eq(loop_name(s, l[2]), "k");
  ck_assert_int_eq(extent_of(s, l[2]), 6);
  ck_assert_int_eq(loops_of(s, "relu", l), 2);
  ck_assert_str_eq(loop_name(s, l[0]), "i2");
  /* The root block has no loops around it. */
  ck_assert_int_eq(loops_of(s, "root", l), 0);
}
END_TEST

START_TEST(test_get_child_blocks) {
  sch_schedule *s = matmul(4, 5, 6);
  int n;
  sch_rv *bs;
  ck_ok(ctx, sch_get_child_blocks(s, block(s, "root"), &n, &bs));
  ck_assert_int_eq(n, 2);
  ck_assert_str_eq(sch_rv_get(s, bs[0])->block, "matmul");
  ck_assert_str_eq(sch_rv_get(s, bs[1])->block, "relu");
  sch_rv l[16];
  loops_of(s, "relu", l);
  ck_ok(ctx, sch_get_child_blocks(s, l[1], &n, &bs));
  ck_assert_int_eq(n, 1);
  ck_assert_str_eq(sch_rv_get(s, bs[0])->block, "relu");
  /* A leaf block has no children. */
  ck_ok(ctx, sch_get_child_blocks(s, block(s, "matmul"), &n, &bs));
  ck_assert_int_eq(n, 0);
  EXPECT_FAIL(s, sch_get_child_blocks(s, sch_int(s, 3), &n, &bs), KILN_ERR_MISUSE,
              "expected a loop, got a integer");
  EXPECT_FAIL(s, sch_get_child_blocks(s, 999, &n, &bs), KILN_ERR_MISUSE,
              "999 is not a random variable");
}
END_TEST

/* Loop RVs of loops that split and fuse replaced no longer resolve; the new ones do. */
START_TEST(test_rv_invalidated) {
  sch_schedule *s = matmul(8, 6, 4);
  sch_rv l[16], parts[2];
  loops_of(s, "matmul", l);
  split(s, l[0], 2, (int64_t[]){2, 4}, parts);
  sch_rv out[2];
  EXPECT_FAIL(s, try_split(s, l[0], 2, (int64_t[]){2, 4}), KILN_ERR_SCHEDULE,
              "split: loop 'i' no longer exists (it was split, fused or removed)");
  sch_rv fused = fuse2(s, parts[1], l[1]);
  EXPECT_FAIL(s, sch_parallel(s, l[1]), KILN_ERR_SCHEDULE, "loop 'j' no longer exists");
  EXPECT_FAIL(s, sch_reorder(s, 2, (sch_rv[]){parts[1], l[2]}), KILN_ERR_SCHEDULE,
              "reorder: loop 'i_1' no longer exists");
  int n;
  sch_rv *bs;
  EXPECT_FAIL(s, sch_get_child_blocks(s, parts[1], &n, &bs), KILN_ERR_SCHEDULE,
              "no longer exists");
  ck_ok(ctx, sch_get_child_blocks(s, fused, &n, &bs));
  ck_assert_int_eq(n, 1);
  (void)out;
  check_same(s);
}
END_TEST

/* RVs of the wrong kind are MISUSE, with the kinds named. */
START_TEST(test_rv_misuse) {
  sch_schedule *s = matmul(4, 5, 6);
  sch_rv b = block(s, "matmul"), l[16], out[4];
  loops_of(s, "matmul", l);
  int n;
  sch_rv *r;
  EXPECT_FAIL(s, sch_get_loops(s, l[0], &n, &r), KILN_ERR_MISUSE,
              "get_loops: expected a block, got a loop");
  EXPECT_FAIL(s, sch_split(s, b, 2, (sch_rv[]){sch_int(s, 2), sch_int(s, 3)}, out),
              KILN_ERR_MISUSE, "split: expected a loop, got a block");
  EXPECT_FAIL(s, sch_split(s, l[0], 2, (sch_rv[]){sch_int(s, 2), b}, out), KILN_ERR_MISUSE,
              "split: factor 1 of loop 'i' is not an integer random variable");
  EXPECT_FAIL(s, sch_fuse(s, 2, (sch_rv[]){l[0], sch_int(s, 1)}, out), KILN_ERR_MISUSE,
              "fuse: expected a loop, got a integer");
  EXPECT_FAIL(s, sch_vectorize(s, b), KILN_ERR_MISUSE, "vectorize: expected a loop");
  EXPECT_FAIL(s, sch_unroll(s, -1), KILN_ERR_MISUSE, "-1 is not a random variable");
  EXPECT_FAIL(s, sch_get_loops(s, 12345, &n, &r), KILN_ERR_MISUSE, "12345 is not a random");
}
END_TEST

/* ---- split ----------------------------------------------------------------------------- */

START_TEST(test_split_divisible) {
  static const int sizes[][3] = {{16, 6, 4}, {12, 8, 5}};
  for (int t = 0; t < 2; t++) {
    sch_schedule *s = matmul(sizes[t][0], sizes[t][1], sizes[t][2]);
    sch_rv l[16], p[3];
    loops_of(s, "matmul", l);
    split(s, l[0], 2, (int64_t[]){4, sizes[t][0] / 4}, p);
    ck_assert_int_eq(extent_of(s, p[0]), 4);
    ck_assert_int_eq(extent_of(s, p[1]), sizes[t][0] / 4);
    ck_assert_str_eq(loop_name(s, p[0]), "i_0");
    ck_assert_str_eq(loop_name(s, p[1]), "i_1");
    expect_loop_order(s, "matmul", "i_0 i_1 j k");
    expect_text(s, "where", false); /* divisible: no predicate */
    check_same(s);
    /* Three ways on j: 2 * 3 * (n / 6) or 2 * 2 * 2. */
    int64_t f3[3] = {2, sizes[t][1] == 6 ? 3 : 2, 2};
    if (sizes[t][1] == 6) f3[2] = 1;
    split(s, l[1], 3, f3, p);
    expect_loop_order(s, "matmul", "i_0 i_1 j_0 j_1 j_2 k");
    ck_assert_int_eq(extent_of(s, p[2]), f3[2]);
    expect_text(s, "where", false);
    check_same(s);
  }
}
END_TEST

/* 13 by 4: the outer loop rounds up and the blocks get a predicate. */
START_TEST(test_split_non_divisible) {
  sch_schedule *s = matmul(13, 7, 3);
  sch_rv l[16], p[3];
  loops_of(s, "matmul", l);
  split(s, l[0], 2, (int64_t[]){4, 4}, p);
  expect_text(s, "where", true);
  check_same(s);
  /* 7 three ways as 2 * 2 * 2 (8 > 7). */
  split(s, l[1], 3, (int64_t[]){2, 2, 2}, p);
  expect_loop_order(s, "matmul", "i_0 i_1 j_0 j_1 j_2 k");
  check_same(s);
  /* A factor larger than the extent. */
  loops_of(s, "relu", l);
  split(s, l[1], 2, (int64_t[]){1, 32}, p);
  check_same(s);
  ir_block_realize *r;
  ck_ok(ctx, sch_get_realize(s, "test", block(s, "relu"), &r));
  ck_assert_ptr_nonnull(r->predicate);
}
END_TEST

/* -1 is inferred as ceildiv(extent, product of the others), in any position. */
START_TEST(test_split_inferred) {
  sch_schedule *s = matmul(13, 12, 5);
  sch_rv l[16], p[3];
  loops_of(s, "matmul", l);
  split(s, l[0], 2, (int64_t[]){-1, 4}, p);
  ck_assert_int_eq(extent_of(s, p[0]), 4);
  ck_assert_int_eq(extent_of(s, p[1]), 4);
  check_same(s);
  split(s, l[1], 3, (int64_t[]){2, -1, 2}, p);
  ck_assert_int_eq(extent_of(s, p[1]), 3);
  expect_loop_order(s, "matmul", "i_0 i_1 j_0 j_1 j_2 k");
  check_same(s);
  loops_of(s, "relu", l);
  split(s, l[0], 2, (int64_t[]){5, -1}, p);
  ck_assert_int_eq(extent_of(s, p[1]), 3); /* ceildiv(13, 5) */
  check_same(s);
  /* Splitting a split loop again: the bindings stay in mixed-radix form. */
  loops_of(s, "matmul", l);
  split(s, l[1], 2, (int64_t[]){-1, 2}, p);
  expect_loop_order(s, "matmul", "i_0 i_1_0 i_1_1 j_0 j_1 j_2 k");
  check_same(s);
}
END_TEST

/* The reduction loop, divisible and not. */
START_TEST(test_split_reduction) {
  for (int k = 12; k <= 13; k++) {
    sch_schedule *s = matmul(3, 4, k);
    sch_rv l[16], p[2];
    loops_of(s, "matmul", l);
    split(s, l[2], 2, (int64_t[]){-1, 4}, p);
    expect_loop_order(s, "matmul", "i j k_0 k_1");
    expect_text(s, "where", k == 13);
    check_same(s);
  }
}
END_TEST

/* A loop that starts at 3: the start moves into the binding; new loops start at 0. */
START_TEST(test_split_nonzero_min) {
  sch_schedule *s = new_sched(
      "func @shift(A: buffer(int32, [10i64]), B: buffer(int32, [10i64])) {\n"
      "  for i: int64 in range(3i64, 7i64) {\n"
      "    block \"copy\"(v: int64 = spatial(3i64, 7i64) <- i) {\n"
      "      reads(A[v - 3i64])\n"
      "      writes(B[v])\n"
      "      B[v] = A[v - 3i64] * 2;\n"
      "    }\n"
      "  }\n"
      "}\n");
  sch_rv l[16], p[2];
  loops_of(s, "copy", l);
  split(s, l[0], 2, (int64_t[]){-1, 3}, p);
  ck_assert(ir_as_int(loop_of(s, p[0])->min)->value == 0);
  check_same(s);
}
END_TEST

/* One stage over a symbolic length n. */
#define SYM_TIR                                                                              \
  "func @sym(n: int64, A: buffer(float32, [n]), B: buffer(float32, [n])) {\n"                \
  "  for i: int64 in range(0i64, n) {\n"                                                     \
  "    block \"scale\"(v: int64 = spatial(0i64, n) <- i) {\n"                                \
  "      reads(A[v])\n"                                                                      \
  "      writes(B[v])\n"                                                                     \
  "      B[v] = A[v] * 2f32 + 1f32;\n"                                                       \
  "    }\n"                                                                                  \
  "  }\n"                                                                                    \
  "}\n"

/* Runs the symbolic function before and after scheduling for length n. */
static void check_same_sym(sch_schedule *s, int64_t n) {
  ck_ok(ctx, ir_verify_func(ctx, s->func));
  float a[64], b1[64], b2[64];
  ck_assert_int_le(n, 64);
  for (int i = 0; i < 64; i++) a[i] = (float)(i % 7), b1[i] = b2[i] = -5;
  void *args1[] = {&n, a, b1}, *args2[] = {&n, a, b2};
  ck_ok(ctx, ir_interpret(ctx, s->orig, 3, args1));
  ck_ok(ctx, ir_interpret(ctx, s->func, 3, args2));
  ck_assert(memcmp(b1, b2, sizeof b1) == 0);
  ck_assert(b2[n - 1] == (float)((n - 1) % 7) * 2 + 1);
}

/* A symbolic extent: -1 gives a ceildiv extent and a predicate. */
START_TEST(test_split_symbolic) {
  sch_schedule *s = new_sched(SYM_TIR);
  sch_rv l[16], p[2];
  loops_of(s, "scale", l);
  split(s, l[0], 2, (int64_t[]){-1, 4}, p);
  ck_assert_ptr_null(ir_as_int(loop_of(s, p[0])->extent));
  ck_assert_int_eq(extent_of(s, p[1]), 4);
  expect_text(s, "where", true);
  for (int64_t n = 1; n <= 17; n += 4) check_same_sym(s, n);
  check_same_sym(s, 16);
  /* Then the inner loop again. */
  split(s, p[1], 2, (int64_t[]){2, 2}, p);
  check_same_sym(s, 13);
  /* All factors given on a symbolic extent: the product may not cover it. */
  loops_of(s, "scale", l);
  EXPECT_FAIL(s, try_split(s, l[0], 2, (int64_t[]){4, 8}), KILN_ERR_SCHEDULE,
              "split: loop 'i_0' has a symbolic extent that its factors (product 32) may not "
              "cover; give -1 for one factor");
}
END_TEST

/* A store outside any block: fine for a divisible split (the substitution covers it), but a
 * predicate could not guard it. */
#define BARE_TIR                                                                             \
  "func @bare(A: buffer(float32, [12i64]), B: buffer(float32, [12i64])) {\n"                 \
  "  for i: int64 in range(0i64, 12i64) {\n"                                                 \
  "    B[i] = 0f32;\n"                                                                       \
  "    block \"b\"(v: int64 = spatial(0i64, 12i64) <- i) {\n"                                \
  "      reads(A[v], B[v])\n"                                                                \
  "      writes(B[v])\n"                                                                     \
  "      B[v] = B[v] + A[v];\n"                                                              \
  "    }\n"                                                                                  \
  "  }\n"                                                                                    \
  "}\n"

START_TEST(test_split_errors) {
  sch_schedule *s = matmul(13, 8, 4);
  sch_rv l[16];
  loops_of(s, "matmul", l);
  EXPECT_FAIL(s, try_split(s, l[0], 1, (int64_t[]){13}), KILN_ERR_SCHEDULE,
              "split: loop 'i' needs at least 2 factors, got 1");
  EXPECT_FAIL(s, try_split(s, l[0], 3, (int64_t[]){-1, 2, -1}), KILN_ERR_SCHEDULE,
              "split: loop 'i': factors 0 and 2 are both -1 (only one factor can be inferred)");
  EXPECT_FAIL(s, try_split(s, l[0], 2, (int64_t[]){0, 4}), KILN_ERR_SCHEDULE,
              "split: loop 'i': factor 0 is 0 (factors must be >= 1");
  EXPECT_FAIL(s, try_split(s, l[0], 2, (int64_t[]){4, -3}), KILN_ERR_SCHEDULE,
              "factor 1 is -3");
  EXPECT_FAIL(s, try_split(s, l[0], 2, (int64_t[]){4, 3}), KILN_ERR_SCHEDULE,
              "split: loop 'i' has extent 13 but its factors multiply to 12");
  EXPECT_FAIL(s, try_split(s, l[0], 2, (int64_t[]){INT64_C(1) << 40, INT64_C(1) << 40}),
              KILN_ERR_SCHEDULE, "split: loop 'i': the product of the factors overflows");
  int64_t many[70];
  for (int i = 0; i < 70; i++) many[i] = 1;
  many[0] = 13;
  EXPECT_FAIL(s, try_split(s, l[0], 70, many), KILN_ERR_SCHEDULE,
              "split: loop 'i': 70 factors (at most 63)");
  EXPECT_FAIL(s, sch_split(s, l[0], 2, NULL, NULL), KILN_ERR_MISUSE, "split: no factors");

  sch_schedule *b = new_sched(BARE_TIR);
  loops_of(b, "b", l);
  EXPECT_FAIL(b, try_split(b, l[0], 2, (int64_t[]){-1, 5}), KILN_ERR_SCHEDULE,
              "split: loop 'i' does not divide evenly and holds a store outside any block");
  sch_rv p[2];
  split(b, l[0], 2, (int64_t[]){-1, 4}, p);
  check_same(b);
}
END_TEST

/* ---- fuse ------------------------------------------------------------------------------ */

START_TEST(test_fuse) {
  static const int sizes[][3] = {{4, 6, 3}, {5, 7, 2}};
  for (int t = 0; t < 2; t++) {
    int m = sizes[t][0], n = sizes[t][1], k = sizes[t][2];
    sch_schedule *s = matmul(m, n, k);
    sch_rv l[16];
    loops_of(s, "relu", l);
    sch_rv f = fuse2(s, l[0], l[1]);
    ck_assert_str_eq(loop_name(s, f), "i2_j2_fused");
    ck_assert_int_eq(extent_of(s, f), m * n);
    expect_loop_order(s, "relu", "i2_j2_fused");
    check_same(s);
    /* Three loops, the reduction's included (the fused loop stays serial). */
    loops_of(s, "matmul", l);
    sch_rv out;
    ck_ok(ctx, sch_fuse(s, 3, l, &out));
    ck_assert_str_eq(loop_name(s, out), "i_j_k_fused");
    ck_assert_int_eq(extent_of(s, out), m * n * k);
    check_same(s);
    /* A fused loop splits again, not evenly. */
    sch_rv p[2];
    split(s, out, 2, (int64_t[]){-1, 5}, p);
    check_same(s);
    split(s, f, 2, (int64_t[]){-1, 4}, p);
    check_same(s);
  }
}
END_TEST

/* Split then fuse back: the bindings simplify to the plain loop variable. */
START_TEST(test_fuse_after_split) {
  sch_schedule *s = matmul(12, 4, 2);
  sch_rv l[16], p[3];
  loops_of(s, "matmul", l);
  split(s, l[0], 3, (int64_t[]){2, 3, 2}, p);
  sch_rv f = fuse2(s, p[1], p[2]);
  ck_assert_int_eq(extent_of(s, f), 6);
  check_same(s);
  f = fuse2(s, p[0], f);
  ck_assert_str_eq(loop_name(s, f), "i_0_i_1_i_2_fused");
  ck_assert_int_eq(extent_of(s, f), 12);
  ir_block_realize *r;
  ck_ok(ctx, sch_get_realize(s, "test", block(s, "matmul"), &r));
  ck_assert_ptr_eq(r->values[0], &loop_of(s, f)->var->h);
  check_same(s);
}
END_TEST

/* int32 loops (as hand-written TIR has them): new loops take the loop's index type; loops of
 * different index types do not fuse. */
START_TEST(test_int32_loops) {
  sch_schedule *s = new_sched(
      "func @small(A: buffer(int32, [6, 10]), B: buffer(int32, [6, 10])) {\n"
      "  for i: int32 in range(0, 6) {\n"
      "    for j: int32 in range(0, 10) {\n"
      "      block \"b\"(vi: int32 = spatial(0, 6) <- i, vj: int32 = spatial(0, 10) <- j) {\n"
      "        reads(A[vi, vj])\n"
      "        writes(B[vi, vj])\n"
      "        B[vi, vj] = A[vi, vj] + vi * vj;\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n");
  sch_rv l[16], p[2];
  loops_of(s, "b", l);
  split(s, l[1], 2, (int64_t[]){-1, 3}, p);
  ck_assert(ir_dt_eq(loop_of(s, p[0])->var->h.dtype, KILN_INT32));
  sch_rv f = fuse2(s, l[0], p[0]);
  ck_assert(ir_dt_eq(loop_of(s, f)->var->h.dtype, KILN_INT32));
  ck_assert_int_eq(extent_of(s, f), 24);
  ck_ok(ctx, sch_vectorize(s, p[1]));
  check_same(s);

  sch_schedule *m = new_sched(
      "func @mixed(A: buffer(int32, [3i64, 4i64])) {\n"
      "  for i: int32 in range(0, 3) {\n"
      "    for j: int64 in range(0i64, 4i64) {\n"
      "      block \"b\"(vi: int32 = spatial(0, 3) <- i, vj: int64 = spatial(0i64, 4i64) <- j) {\n"
      "        writes(A[vi, vj])\n"
      "        A[vi, vj] = 1;\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n");
  loops_of(m, "b", l);
  sch_rv out;
  EXPECT_FAIL(m, sch_fuse(m, 2, l, &out), KILN_ERR_SCHEDULE,
              "fuse: loops 'i' and 'j' have different index types");
}
END_TEST

/* Loop i holds loop j and a block: not perfectly nested. */
#define TWO_TIR                                                                              \
  "func @two(A: buffer(float32, [4i64, 4i64]), B: buffer(float32, [4i64])) {\n"              \
  "  for i: int64 in range(0i64, 4i64) {\n"                                                  \
  "    for j: int64 in range(0i64, 4i64) {\n"                                                \
  "      block \"a\"(vi: int64 = spatial(0i64, 4i64) <- i,"                                  \
  " vj: int64 = spatial(0i64, 4i64) <- j) {\n"                                               \
  "        writes(A[vi, vj])\n"                                                              \
  "        A[vi, vj] = 1f32;\n"                                                              \
  "      }\n"                                                                                \
  "    }\n"                                                                                  \
  "    block \"b\"(vi: int64 = spatial(0i64, 4i64) <- i) {\n"                                \
  "      writes(B[vi])\n"                                                                    \
  "      B[vi] = 2f32;\n"                                                                    \
  "    }\n"                                                                                  \
  "  }\n"                                                                                    \
  "}\n"

/* A triangular nest: j's extent depends on i. */
#define TRI_TIR                                                                              \
  "func @tri(A: buffer(float32, [6i64, 6i64])) {\n"                                          \
  "  for i: int64 in range(0i64, 6i64) {\n"                                                  \
  "    for j: int64 in range(0i64, i + 1i64) {\n"                                            \
  "      block \"t\"(vi: int64 = spatial(0i64, 6i64) <- i,"                                  \
  " vj: int64 = spatial(0i64, 6i64) <- j) {\n"                                               \
  "        reads(A[vi, vj])\n"                                                               \
  "        writes(A[vi, vj])\n"                                                              \
  "        A[vi, vj] = A[vi, vj] * 3f32 + 1f32;\n"                                           \
  "      }\n"                                                                                \
  "    }\n"                                                                                  \
  "  }\n"                                                                                    \
  "}\n"

START_TEST(test_fuse_errors) {
  sch_schedule *s = matmul(4, 5, 6);
  sch_rv l[16], out;
  loops_of(s, "matmul", l);
  EXPECT_FAIL(s, sch_fuse(s, 1, l, &out), KILN_ERR_SCHEDULE, "fuse: needs at least 2 loops, got 1");
  EXPECT_FAIL(s, sch_fuse(s, 2, (sch_rv[]){l[0], l[2]}, &out), KILN_ERR_SCHEDULE,
              "fuse: loops 'i' and 'k' are not directly nested (fuse takes consecutive loops, "
              "outermost first)");
  EXPECT_FAIL(s, sch_fuse(s, 2, (sch_rv[]){l[1], l[0]}, &out), KILN_ERR_SCHEDULE,
              "loops 'j' and 'i' are not directly nested");
  EXPECT_FAIL(s, sch_fuse(s, 2, (sch_rv[]){l[0], l[0]}, &out), KILN_ERR_SCHEDULE,
              "loops 'i' and 'i' are not directly nested");
  sch_rv many[65];
  for (int i = 0; i < 65; i++) many[i] = l[0];
  EXPECT_FAIL(s, sch_fuse(s, 65, many, &out), KILN_ERR_SCHEDULE, "fuse: 65 loops (at most 64)");
  EXPECT_FAIL(s, sch_fuse(s, 2, NULL, &out), KILN_ERR_MISUSE, "fuse: no loops");

  sch_schedule *t = new_sched(TWO_TIR);
  loops_of(t, "a", l);
  EXPECT_FAIL(t, sch_fuse(t, 2, l, &out), KILN_ERR_SCHEDULE,
              "fuse: loop 'j' is not the only statement in the body of loop 'i' (it holds 2 "
              "statements)");

  sch_schedule *r = new_sched(TRI_TIR);
  loops_of(r, "t", l);
  EXPECT_FAIL(r, sch_fuse(r, 2, l, &out), KILN_ERR_SCHEDULE,
              "fuse: the bounds of loop 'j' depend on loop 'i'");
  /* Splitting the outer loop of a triangle rewrites the inner loop's extent. */
  sch_rv p[2];
  split(r, l[0], 2, (int64_t[]){-1, 4}, p);
  check_same(r);
}
END_TEST

/* ---- reorder --------------------------------------------------------------------------- */

START_TEST(test_reorder) {
  sch_schedule *s = matmul(5, 4, 7);
  sch_rv l[16];
  loops_of(s, "matmul", l);
  /* The reduce loop outermost: each C[i, j] accumulates across the outer iterations; the
   * init still runs once, at k == 0. */
  ck_ok(ctx, sch_reorder(s, 3, (sch_rv[]){l[2], l[0], l[1]}));
  expect_loop_order(s, "matmul", "k i j");
  check_same(s);
  /* Two of three listed: the middle one keeps its place. */
  ck_ok(ctx, sch_reorder(s, 2, (sch_rv[]){l[1], l[2]}));
  expect_loop_order(s, "matmul", "j i k");
  check_same(s);
  /* Kinds and annotations travel with their loops. */
  ck_ok(ctx, sch_parallel(s, l[1]));
  ck_ok(ctx, sch_annotate(s, l[0], "note", ir_str(s->arena, "x")));
  ck_ok(ctx, sch_reorder(s, 3, (sch_rv[]){l[0], l[2], l[1]}));
  expect_loop_order(s, "matmul", "i k j");
  ck_assert_int_eq(loop_of(s, l[1])->for_kind, IR_FOR_PARALLEL);
  ck_assert_int_eq(loop_of(s, l[0])->nannots, 1);
  check_same(s);
  /* One loop: nothing moves. */
  ck_ok(ctx, sch_reorder(s, 1, &l[2]));
  expect_loop_order(s, "matmul", "i k j");
  /* After a non-divisible split, the split loops move too. */
  sch_rv p[2];
  loops_of(s, "relu", l);
  split(s, l[0], 2, (int64_t[]){-1, 2}, p);
  ck_ok(ctx, sch_reorder(s, 3, (sch_rv[]){p[1], l[1], p[0]}));
  expect_loop_order(s, "relu", "i2_1 j2 i2_0");
  check_same(s);
}
END_TEST

/* A loop inside a block body, under a loop outside it. */
#define NEST_TIR                                                                             \
  "func @nest(A: buffer(float32, [4i64, 5i64])) {\n"                                         \
  "  for i: int64 in range(0i64, 4i64) {\n"                                                  \
  "    block \"outer\"(vi: int64 = spatial(0i64, 4i64) <- i) {\n"                            \
  "      writes(A[vi, 0i64 +: 5i64])\n"                                                      \
  "      for j: int64 in range(0i64, 5i64) {\n"                                              \
  "        block \"inner\"(wi: int64 = spatial(0i64, 4i64) <- vi,"                           \
  " wj: int64 = spatial(0i64, 5i64) <- j) {\n"                                               \
  "          writes(A[wi, wj])\n"                                                            \
  "          A[wi, wj] = 1f32;\n"                                                            \
  "        }\n"                                                                              \
  "      }\n"                                                                                \
  "    }\n"                                                                                  \
  "  }\n"                                                                                    \
  "}\n"

START_TEST(test_reorder_errors) {
  sch_schedule *s = matmul(4, 5, 6);
  sch_rv l[16], r[16];
  loops_of(s, "matmul", l);
  loops_of(s, "relu", r);
  EXPECT_FAIL(s, sch_reorder(s, 3, (sch_rv[]){l[0], l[1], l[0]}), KILN_ERR_SCHEDULE,
              "reorder: loop 'i' is listed twice");
  EXPECT_FAIL(s, sch_reorder(s, 2, (sch_rv[]){l[1], r[1]}), KILN_ERR_SCHEDULE,
              "reorder: loops 'j' and 'j2' are not in one nest (neither encloses the other)");
  EXPECT_FAIL(s, sch_reorder(s, 2, (sch_rv[]){l[2], r[0]}), KILN_ERR_SCHEDULE,
              "are not in one nest");
  EXPECT_FAIL(s, sch_reorder(s, 0, l), KILN_ERR_SCHEDULE, "reorder: needs at least one loop");
  EXPECT_FAIL(s, sch_reorder(s, 2, NULL), KILN_ERR_MISUSE, "reorder: no loops given");

  sch_schedule *t = new_sched(TWO_TIR);
  loops_of(t, "a", l);
  EXPECT_FAIL(t, sch_reorder(t, 2, (sch_rv[]){l[1], l[0]}), KILN_ERR_SCHEDULE,
              "reorder: loops 'i' and 'j' are not perfectly nested: loop 'i' holds 2 "
              "statements");

  sch_schedule *n = new_sched(NEST_TIR);
  loops_of(n, "outer", l);
  loops_of(n, "inner", r);
  EXPECT_FAIL(n, sch_reorder(n, 2, (sch_rv[]){r[0], l[0]}), KILN_ERR_SCHEDULE,
              "reorder: loops 'i' and 'j' are not perfectly nested: block 'outer' lies between "
              "them");

  sch_schedule *tri = new_sched(TRI_TIR);
  loops_of(tri, "t", l);
  EXPECT_FAIL(tri, sch_reorder(tri, 2, (sch_rv[]){l[1], l[0]}), KILN_ERR_SCHEDULE,
              "reorder: the bounds of loop 'j' depend on loop 'i', which would be inside it");
}
END_TEST

/* A let between two loops is not a loop. */
START_TEST(test_reorder_let_between) {
  sch_schedule *s = new_sched(
      "func @let(A: buffer(float32, [3i64, 3i64])) {\n"
      "  for i: int64 in range(0i64, 3i64) {\n"
      "    let t: int64 = i * 2i64 {\n"
      "      for j: int64 in range(0i64, 3i64) {\n"
      "        block \"b\"(vi: int64 = spatial(0i64, 3i64) <- i,"
      " vj: int64 = spatial(0i64, 3i64) <- j, vt: int64 = spatial(0i64, 6i64) <- t) {\n"
      "          writes(A[vi, vj])\n"
      "          A[vi, vj] = 1f32;\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n");
  sch_rv l[16];
  loops_of(s, "b", l);
  EXPECT_FAIL(s, sch_reorder(s, 2, (sch_rv[]){l[1], l[0]}), KILN_ERR_SCHEDULE,
              "reorder: loops 'i' and 'j' are not perfectly nested: a let_stmt statement lies "
              "between them");
}
END_TEST

/* ---- parallel / vectorize / unroll ----------------------------------------------------- */

START_TEST(test_loop_kinds) {
  sch_schedule *s = matmul(6, 8, 5);
  sch_rv l[16], r[16];
  loops_of(s, "matmul", l);
  loops_of(s, "relu", r);
  /* A spatial loop around a reduction may run in parallel; nested parallel is allowed. */
  ck_ok(ctx, sch_parallel(s, l[0]));
  ck_ok(ctx, sch_parallel(s, l[1]));
  ck_ok(ctx, sch_unroll(s, l[2])); /* any loop unrolls, a reduce loop too */
  ck_ok(ctx, sch_vectorize(s, r[1]));
  ck_ok(ctx, sch_parallel(s, r[0]));
  expect_text(s, "for i: int64 in parallel(0i64, 6i64)", true);
  expect_text(s, "for j: int64 in parallel(0i64, 8i64)", true);
  expect_text(s, "for k: int64 in unrolled(0i64, 5i64)", true);
  expect_text(s, "for j2: int64 in vectorized(0i64, 8i64)", true);
  expect_text(s, "for i2: int64 in parallel(0i64, 6i64)", true);
  check_same(s);
  /* Back to unrolled: the last kind wins. */
  ck_ok(ctx, sch_unroll(s, r[1]));
  expect_text(s, "for j2: int64 in unrolled(0i64, 8i64)", true);
  /* A spatial loop moved inside the reduce loop vectorizes. */
  ck_ok(ctx, sch_reorder(s, 2, (sch_rv[]){l[2], l[1]}));
  ck_ok(ctx, sch_vectorize(s, l[1]));
  ck_assert_int_eq(loop_of(s, l[1])->for_kind, IR_FOR_VECTORIZED);
  check_same(s);
}
END_TEST

START_TEST(test_loop_kind_errors) {
  sch_schedule *s = matmul(6, 8, 5);
  sch_rv l[16];
  loops_of(s, "matmul", l);
  EXPECT_FAIL(s, sch_parallel(s, l[2]), KILN_ERR_SCHEDULE,
              "parallel: cannot parallelize loop 'k': it is bound to reduce iterator 'vk' of "
              "block 'matmul'");
  EXPECT_FAIL(s, sch_vectorize(s, l[2]), KILN_ERR_SCHEDULE,
              "vectorize: cannot vectorize loop 'k': it is bound to reduce iterator 'vk' of "
              "block 'matmul'");
  EXPECT_FAIL(s, sch_vectorize(s, l[0]), KILN_ERR_SCHEDULE,
              "vectorize: cannot vectorize loop 'i': it contains loop 'j' (only innermost "
              "loops are vectorized)");
  /* A fused loop that feeds the reduce iterator carries the reduction too. */
  sch_rv f = fuse2(s, l[1], l[2]);
  EXPECT_FAIL(s, sch_parallel(s, f), KILN_ERR_SCHEDULE,
              "cannot parallelize loop 'j_k_fused': it is bound to reduce iterator 'vk'");
  /* A loop inside a block counts as an inner loop. */
  sch_schedule *n = new_sched(NEST_TIR);
  loops_of(n, "outer", l);
  EXPECT_FAIL(n, sch_vectorize(n, l[0]), KILN_ERR_SCHEDULE, "it contains loop 'j'");
  /* A symbolic extent cannot be vectorized (but can run in parallel). */
  sch_schedule *y = new_sched(SYM_TIR);
  loops_of(y, "scale", l);
  EXPECT_FAIL(y, sch_vectorize(y, l[0]), KILN_ERR_SCHEDULE,
              "vectorize: cannot vectorize loop 'i': its extent is not a constant");
  ck_ok(ctx, sch_parallel(y, l[0]));
  check_same_sym(y, 9);
}
END_TEST

/* ---- annotate -------------------------------------------------------------------------- */

START_TEST(test_annotate) {
  sch_schedule *s = matmul(3, 4, 5);
  sch_rv b = block(s, "matmul"), l[16];
  loops_of(s, "matmul", l);
  ck_ok(ctx, sch_annotate(s, l[1], "pragma_unroll", ir_i32(s->arena, 4)));
  expect_text(s, "annotate {\"pragma_unroll\" = 4i64}", true);
  ck_ok(ctx, sch_annotate(s, l[1], "cost", ir_float(s->arena, KILN_FLOAT32, 1.5)));
  expect_text(s, "annotate {\"pragma_unroll\" = 4i64, \"cost\" = 1.5f64}", true);
  /* The same key again replaces the value in place. */
  ck_ok(ctx, sch_annotate(s, l[1], "pragma_unroll", ir_int(s->arena, KILN_INT64, 8)));
  expect_text(s, "annotate {\"pragma_unroll\" = 8i64, \"cost\" = 1.5f64}", true);
  ck_ok(ctx, sch_annotate(s, b, "meta", ir_str(s->arena, "tile")));
  expect_text(s, "annotate {\"meta\" = \"tile\"}", true);
  ck_ok(ctx, sch_annotate(s, b, "meta", ir_str(s->arena, "x")));
  expect_text(s, "annotate {\"meta\" = \"x\"}", true);
  expect_text(s, "\"tile\"", false);
  /* The block RV still resolves (the block kept its name) and the loop its variable. */
  ir_block_realize *r;
  ck_ok(ctx, sch_get_realize(s, "test", b, &r));
  ck_assert_int_eq(r->block->nannots, 1);
  ck_assert_int_eq(loop_of(s, l[1])->nannots, 2);
  check_same(s);
}
END_TEST

START_TEST(test_annotate_errors) {
  sch_schedule *s = matmul(3, 4, 5);
  sch_rv b = block(s, "matmul"), l[16], p[2];
  loops_of(s, "matmul", l);
  ir_expr *one = ir_i32(s->arena, 1);
  EXPECT_FAIL(s, sch_annotate(s, b, "k", ir_add(s->arena, one, one)), KILN_ERR_MISUSE,
              "annotate: the value of 'k' must be an integer, float or string immediate, "
              "not add");
  EXPECT_FAIL(s, sch_annotate(s, b, "k", NULL), KILN_ERR_MISUSE, "not nothing");
  EXPECT_FAIL(s, sch_annotate(s, b, "", one), KILN_ERR_MISUSE, "annotate: the key is empty");
  EXPECT_FAIL(s, sch_annotate(s, sch_int(s, 2), "k", one), KILN_ERR_MISUSE,
              "annotate: the target must be a block or a loop");
  split(s, l[0], 2, (int64_t[]){-1, 2}, p);
  EXPECT_FAIL(s, sch_annotate(s, l[0], "k", one), KILN_ERR_SCHEDULE,
              "annotate: loop 'i' no longer exists");
}
END_TEST

/* ---- Traces ---------------------------------------------------------------------------- */

/* Every replay entry, indexed by instruction kind. */
static const sch_apply_fn apply_fns[SCH_INST_COUNT] = {
#define X(e, n, f) f,
    SCH_INSTRUCTIONS(X)
#undef X
};

/* Replays s's trace on a fresh schedule of its unscheduled function through the apply
 * entries (mapping RVs as they are created) and requires the same function. */
static void check_replay(sch_schedule *s) {
  sch_schedule *r = sch_new(ctx, s->orig, 7);
  ck_assert_ptr_nonnull(r);
  sch_rv *map = malloc(sizeof *map * (size_t)(s->nrvs + 1));
  for (int i = 0; i <= s->nrvs; i++) map[i] = SCH_RV_NONE;
  for (int k = 0; k < s->trace.ninsts; k++) {
    const sch_inst *in = &s->trace.insts[k];
    sch_arg args[SCH_MAX_INST_ARGS];
    for (int i = 0; i < in->ninputs; i++) {
      args[i] = in->inputs[i];
      if (args[i].kind != SCH_ARG_RV) continue;
      /* An integer RV no instruction made (the tests' stand-in for a sampled one). */
      const sch_rv_info *info = sch_rv_get(s, (sch_rv)args[i].i);
      if (map[args[i].i] == SCH_RV_NONE && info->kind == SCH_RV_INT)
        map[args[i].i] = sch_new_int_rv(r, info->value);
      args[i].i = map[args[i].i];
    }
    sch_rv outs[SCH_MAX_INST_ARGS];
    int nout = -1;
    ck_ok(ctx, apply_fns[in->kind](r, in->ninputs, args, in->ndecision, in->decision, outs,
                                   &nout));
    ck_assert_int_eq(nout, in->noutputs);
    for (int i = 0; i < nout; i++) map[in->outputs[i]] = outs[i];
  }
  ck_assert_int_eq(r->trace.ninsts, s->trace.ninsts);
  ck_assert(ir_structural_equal(ctx, &r->func->h, &s->func->h));
  free(map);
  sch_free(r);
}

START_TEST(test_trace) {
  sch_schedule *s = matmul(10, 8, 6);
  sch_rv b = block(s, "matmul"), l[16], p[3], f;
  loops_of(s, "matmul", l);
  sch_rv factor = sch_new_int_rv(s, 4); /* as a sampling instruction would make it */
  ck_ok(ctx, sch_split(s, l[0], 2, (sch_rv[]){sch_int(s, -1), factor}, p));
  f = fuse2(s, p[1], l[1]);
  ck_ok(ctx, sch_reorder(s, 2, (sch_rv[]){l[2], f}));
  ck_ok(ctx, sch_parallel(s, p[0]));
  ck_ok(ctx, sch_vectorize(s, f));
  ck_ok(ctx, sch_unroll(s, l[2]));
  ck_ok(ctx, sch_annotate(s, b, "meta", ir_float(s->arena, KILN_FLOAT64, 0.25)));
  ck_ok(ctx, sch_annotate(s, l[2], "n", ir_i32(s->arena, 3)));
  check_same(s);

  static const struct {
    int kind, ninputs, noutputs;
  } want[] = {
      {SCH_INST_GET_BLOCK, 1, 1}, {SCH_INST_GET_BLOCK, 1, 1}, {SCH_INST_GET_LOOPS, 1, 3},
      {SCH_INST_SPLIT, 3, 2},     {SCH_INST_FUSE, 2, 1},      {SCH_INST_REORDER, 2, 0},
      {SCH_INST_PARALLEL, 1, 0},  {SCH_INST_VECTORIZE, 1, 0}, {SCH_INST_UNROLL, 1, 0},
      {SCH_INST_ANNOTATE, 3, 0},  {SCH_INST_ANNOTATE, 3, 0},
  };
  int n = (int)(sizeof want / sizeof want[0]);
  ck_assert_int_eq(s->trace.ninsts, n);
  for (int i = 0; i < n; i++) {
    const sch_inst *in = &s->trace.insts[i];
    ck_assert_msg(in->kind == want[i].kind, "instruction %d is %s", i, sch_inst_name(in->kind));
    ck_assert_int_eq(in->ninputs, want[i].ninputs);
    ck_assert_int_eq(in->noutputs, want[i].noutputs);
    ck_assert_int_eq(in->ndecision, -1);
  }
  /* split: the loop RV, the constant -1 as a literal, the non-constant factor as an RV; the
   * outputs are the new loops. */
  const sch_inst *sp = &s->trace.insts[3];
  ck_assert_int_eq(sp->inputs[0].kind, SCH_ARG_RV);
  ck_assert_int_eq(sp->inputs[0].i, l[0]);
  ck_assert_int_eq(sp->inputs[1].kind, SCH_ARG_INT);
  ck_assert_int_eq(sp->inputs[1].i, -1);
  ck_assert_int_eq(sp->inputs[2].kind, SCH_ARG_RV);
  ck_assert_int_eq(sp->inputs[2].i, factor);
  ck_assert_int_eq(sp->outputs[0], p[0]);
  ck_assert_int_eq(sp->outputs[1], p[1]);
  ck_assert_int_eq(s->trace.insts[4].outputs[0], f);
  ck_assert_int_eq(s->trace.insts[5].inputs[0].i, l[2]);
  /* annotate: target, key, value literal. */
  const sch_inst *an = &s->trace.insts[9];
  ck_assert_int_eq(an->inputs[0].i, b);
  ck_assert_int_eq(an->inputs[1].kind, SCH_ARG_STR);
  ck_assert_str_eq(an->inputs[1].s, "meta");
  ck_assert_int_eq(an->inputs[2].kind, SCH_ARG_FLOAT);
  ck_assert(an->inputs[2].f == 0.25);
  ck_assert_int_eq(s->trace.insts[10].inputs[2].kind, SCH_ARG_INT);
  ck_assert_int_eq(s->trace.insts[10].inputs[2].i, 3);

  check_replay(s);
}
END_TEST

/* Replay entries reject argument lists they cannot decode. */
START_TEST(test_apply_errors) {
  sch_schedule *s = matmul(4, 4, 4);
  sch_rv b = block(s, "matmul"), l[16], out[SCH_MAX_INST_ARGS];
  loops_of(s, "matmul", l);
  int nout;
  sch_arg loop0 = {SCH_ARG_RV, l[0], 0, NULL}, blk = {SCH_ARG_RV, b, 0, NULL};
  sch_arg two = sch_arg_int(2), key = sch_arg_str("k");
  EXPECT_FAIL(s, sch_apply_split(s, 2, (sch_arg[]){loop0, two}, -1, NULL, out, &nout),
              KILN_ERR_PARSE, "trace: split takes a loop and 2 to 63 factors, got 2 inputs");
  EXPECT_FAIL(s, sch_apply_split(s, 3, (sch_arg[]){blk, two, two}, -1, NULL, out, &nout),
              KILN_ERR_PARSE, "is not a loop of the schedule");
  EXPECT_FAIL(s, sch_apply_split(s, 3, (sch_arg[]){loop0, two, key}, -1, NULL, out, &nout),
              KILN_ERR_PARSE, "trace: expected a integer argument");
  EXPECT_FAIL(s, sch_apply_fuse(s, 1, &loop0, -1, NULL, out, &nout), KILN_ERR_PARSE,
              "trace: fuse takes 2 to 64 loops, got 1 inputs");
  EXPECT_FAIL(s, sch_apply_reorder(s, 0, NULL, -1, NULL, out, &nout), KILN_ERR_PARSE,
              "trace: reorder takes 1 to 64 loops, got 0 inputs");
  EXPECT_FAIL(s, sch_apply_reorder(s, 2, (sch_arg[]){loop0, two}, -1, NULL, out, &nout),
              KILN_ERR_PARSE, "trace: expected a loop argument");
  EXPECT_FAIL(s, sch_apply_parallel(s, 2, (sch_arg[]){loop0, loop0}, -1, NULL, out, &nout),
              KILN_ERR_PARSE, "trace: parallel takes one loop, got 2 inputs");
  EXPECT_FAIL(s, sch_apply_vectorize(s, 1, &blk, -1, NULL, out, &nout), KILN_ERR_PARSE,
              "is not a loop of the schedule");
  EXPECT_FAIL(s, sch_apply_unroll(s, 0, NULL, -1, NULL, out, &nout), KILN_ERR_PARSE,
              "trace: unroll takes one loop, got 0 inputs");
  EXPECT_FAIL(s, sch_apply_annotate(s, 2, (sch_arg[]){blk, key}, -1, NULL, out, &nout),
              KILN_ERR_PARSE, "trace: annotate takes a block or loop, a key and a value");
  EXPECT_FAIL(s, sch_apply_annotate(s, 3, (sch_arg[]){blk, key, blk}, -1, NULL, out, &nout),
              KILN_ERR_PARSE, "trace: annotate: the value must be an int, float or string");
  EXPECT_FAIL(s, sch_apply_annotate(s, 3, (sch_arg[]){two, key, two}, -1, NULL, out, &nout),
              KILN_ERR_PARSE, "trace: annotate takes a block or loop");
  sch_arg intrv = {SCH_ARG_RV, sch_int(s, 5), 0, NULL};
  EXPECT_FAIL(s, sch_apply_annotate(s, 3, (sch_arg[]){intrv, key, two}, -1, NULL, out, &nout),
              KILN_ERR_PARSE, "is not a block or loop of the schedule");
  /* Decoded fine, refused by the primitive: its own error comes through. */
  sch_arg three = sch_arg_int(3), one = sch_arg_int(1);
  EXPECT_FAIL(s, sch_apply_split(s, 3, (sch_arg[]){loop0, three, one}, -1, NULL, out, &nout),
              KILN_ERR_SCHEDULE, "split: loop 'i' has extent 4 but its factors multiply to 3");
}
END_TEST

/* ---- A whole tiling ---------------------------------------------------------------------- */

/* Two-level tiling of a 64x64x64 matmul: i, j, k split in two, reordered i0 j0 k0 i1 k1 j1
 * (j1 innermost so it can be vectorized), vectorize j1, parallel i0; the epilogue fused and
 * parallel. Interpreted equal to the original, and replayed from the trace. */
START_TEST(test_matmul_tiling) {
  sch_schedule *s = matmul(64, 64, 64);
  sch_rv l[16], i[2], j[2], k[2];
  loops_of(s, "matmul", l);
  split(s, l[0], 2, (int64_t[]){8, 8}, i);
  split(s, l[1], 2, (int64_t[]){-1, 16}, j);
  split(s, l[2], 2, (int64_t[]){16, -1}, k);
  ck_ok(ctx, sch_reorder(s, 6, (sch_rv[]){i[0], j[0], k[0], i[1], k[1], j[1]}));
  expect_loop_order(s, "matmul", "i_0 j_0 k_0 i_1 k_1 j_1");
  ck_ok(ctx, sch_vectorize(s, j[1]));
  ck_ok(ctx, sch_parallel(s, i[0]));
  loops_of(s, "relu", l);
  sch_rv f = fuse2(s, l[0], l[1]);
  ck_ok(ctx, sch_parallel(s, f));
  expect_text(s, "for i_0: int64 in parallel(0i64, 8i64)", true);
  expect_text(s, "for j_1: int64 in vectorized(0i64, 16i64)", true);
  expect_text(s, "where", false);
  check_same(s);
  check_replay(s);
}
END_TEST

/* Fails the n-th allocation for n = 1, 2, ... inside a run of primitives until the run gets
 * through: each failure is KILN_ERR_NOMEM and leaves the function and the trace as they were;
 * the fixture checks that nothing leaked. */
START_TEST(test_out_of_memory) {
  bool done = false;
  for (long n = 1; !done && n < 5000; n++) {
    sch_schedule *s = matmul(5, 6, 7);
    sch_rv b = block(s, "matmul"), l[16], r[16], p[2], f;
    loops_of(s, "matmul", l);
    loops_of(s, "relu", r);
    sch_rv factors[2] = {sch_int(s, -1), sch_int(s, 2)};
    ir_expr *v = ir_str(s->arena, "x");
    kiln_context_fail_alloc(ctx, n);
    ir_func *f0 = s->func;
    int n0 = s->trace.ninsts;
    kiln_status st = sch_split(s, l[0], 2, factors, p);
#define NEXT(call) \
    if (!st) { f0 = s->func; n0 = s->trace.ninsts; st = (call); }
    NEXT(sch_fuse(s, 2, (sch_rv[]){l[1], l[2]}, &f));
    NEXT(sch_reorder(s, 2, (sch_rv[]){p[1], p[0]}));
    NEXT(sch_parallel(s, r[0]));
    NEXT(sch_vectorize(s, r[1]));
    NEXT(sch_annotate(s, b, "k", v));
#undef NEXT
    kiln_context_fail_alloc(ctx, 0);
    if (st) {
      ck_assert_msg(st == KILN_ERR_NOMEM, "allocation %ld: %s (%s)", n, kiln_status_str(st),
                    kiln_context_errmsg(ctx));
      ck_assert_ptr_eq(s->func, f0);
      ck_assert_int_eq(s->trace.ninsts, n0);
    } else {
      done = true;
      check_same(s);
    }
    sch_free(live[--nlive]);
  }
  ck_assert(done);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("schedule");
  TCase *q = tcase_create("queries");
  tcase_add_checked_fixture(q, setup, teardown);
  tcase_add_test(q, test_get_block);
  tcase_add_test(q, test_get_block_duplicate);
  tcase_add_test(q, test_get_loops);
  tcase_add_test(q, test_get_child_blocks);
  tcase_add_test(q, test_rv_invalidated);
  tcase_add_test(q, test_rv_misuse);
  suite_add_tcase(s, q);
  TCase *t = tcase_create("loops");
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_add_test(t, test_split_divisible);
  tcase_add_test(t, test_split_non_divisible);
  tcase_add_test(t, test_split_inferred);
  tcase_add_test(t, test_split_reduction);
  tcase_add_test(t, test_split_nonzero_min);
  tcase_add_test(t, test_split_symbolic);
  tcase_add_test(t, test_split_errors);
  tcase_add_test(t, test_fuse);
  tcase_add_test(t, test_fuse_after_split);
  tcase_add_test(t, test_fuse_errors);
  tcase_add_test(t, test_int32_loops);
  tcase_add_test(t, test_reorder);
  tcase_add_test(t, test_reorder_errors);
  tcase_add_test(t, test_reorder_let_between);
  tcase_add_test(t, test_loop_kinds);
  tcase_add_test(t, test_loop_kind_errors);
  tcase_add_test(t, test_annotate);
  tcase_add_test(t, test_annotate_errors);
  tcase_add_test(t, test_out_of_memory);
  suite_add_tcase(s, t);
  TCase *tr = tcase_create("traces");
  tcase_add_checked_fixture(tr, setup, teardown);
  tcase_add_test(tr, test_trace);
  tcase_add_test(tr, test_apply_errors);
  tcase_add_test(tr, test_matmul_tiling);
  suite_add_tcase(s, tr);
  return s;
}

KILN_TEST_MAIN

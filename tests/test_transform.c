/* test_transform.c: the TIR lowering pipeline (ir/transform.c). Each pass is checked on
 * scheduled programs written as TIR text: the printed result (expected pieces of text or
 * structural properties) and a differential run through the reference interpreter on random
 * data, before and after, which must agree bit for bit. Whole pipelines run with the verifier
 * after every pass; a few of them are also compiled (codegen + JIT) and compared with the
 * interpreter. Errors: malformed input to the passes, fault injection. */
#include <math.h>
#include <stdint.h>

#include <llvm-c/TargetMachine.h>

#include "ir/text.h"
#include "ir/transform.h"
#include "ir/verify.h"
#include "target/codegen.h"
#include "test_util.h"

static kiln_context *ctx;

static void setup(void) { ctx = kiln_test_new_ctx(); }
static void teardown(void) { kiln_test_done_ctx(ctx); }

/* ---- Helpers --------------------------------------------------------------------------- */

static kiln_tir_module *parse(const char *text) {
  kiln_tir_module *m = NULL;
  kiln_status st = ir_parse_module(ctx, text, strlen(text), "test", &m);
  ck_assert_msg(st == KILN_OK, "parse failed: %s", kiln_context_errmsg(ctx));
  return m;
}

/* The text of a function (malloc'd). */
static char *text_of(const ir_func *f) {
  char *s = ir_node_to_string(ctx, &f->h);
  ck_assert_ptr_nonnull(s);
  char *copy = strdup(s);
  kiln_string_free(ctx, s);
  return copy;
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

#define ck_has(text, needle) \
  ck_assert_msg(strstr((text), (needle)) != NULL, "expected '%s' in:\n%s", (needle), (text))
#define ck_lacks(text, needle) \
  ck_assert_msg(strstr((text), (needle)) == NULL, "did not expect '%s' in:\n%s", (needle), (text))

static const ir_tpass *pass_named(const char *name) {
  for (int i = 0; i < ir_lower_pass_count(); i++)
    if (strcmp(ir_lower_pass_at(i)->name, name) == 0) return ir_lower_pass_at(i);
  ck_abort_msg("no pass named %s", name);
  return NULL;
}

/* Runs the pipeline's passes up to and including `last` on f (into m's arena), verifying
 * after each. */
static ir_func *run_until(kiln_tir_module *m, ir_func *f, const char *last,
                          const ir_lower_options *o) {
  ir_lower_options defaults = {0, true};
  if (!o) o = &defaults;
  for (int i = 0; i < ir_lower_pass_count(); i++) {
    const ir_tpass *p = ir_lower_pass_at(i);
    ir_func *g = p->run(ctx, m->arena, f, o);
    ck_assert_msg(g != NULL, "pass %s failed: %s", p->name, kiln_context_errmsg(ctx));
    ck_assert_msg(ir_verify_func(ctx, g) == KILN_OK, "after %s: %s", p->name,
                  kiln_context_errmsg(ctx));
    f = g;
    if (strcmp(p->name, last) == 0) return f;
  }
  ck_abort_msg("no pass named %s", last);
  return NULL;
}

/* The whole pipeline (verifier on) into a new module holding only the result. */
static kiln_tir_module *lower_with(const ir_func *f, int max_unroll) {
  kiln_tir_module *lm = ir_module_new(ctx);
  ck_assert_ptr_nonnull(lm);
  ir_lower_options o = {max_unroll, true};
  ir_func *g = NULL;
  ck_ok(ctx, ir_lower_func(ctx, lm->arena, (ir_func *)f, &o, &g));
  ck_ok(ctx, ir_module_add(lm, g));
  return lm;
}

static kiln_tir_module *lower(const ir_func *f) { return lower_with(f, 0); }

/* Deterministic pseudo-random numbers (splitmix64). */
static uint64_t rng_state;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Arguments for f: a buffer of its constant shape filled with random values of its dtype
 * (floats in [-2, 2), integers in [-50, 50)), a scalar 5 for scalar parameters. */
enum { MAXP = 8 };
typedef struct args {
  int n;
  void *p[MAXP];
  size_t bytes[MAXP];
  int64_t shape[MAXP][4];
} args;

static void args_init(args *A, const ir_func *f, uint64_t seed) {
  memset(A, 0, sizeof *A);
  rng_state = seed;
  A->n = f->nparams;
  ck_assert_int_le(A->n, MAXP);
  for (int i = 0; i < A->n; i++) {
    const ir_node *p = f->params[i];
    size_t elems = 1;
    if (p->kind == IR_BUFFER) {
      const ir_buffer *b = (const ir_buffer *)p;
      for (int d = 0; d < b->ndim; d++) {
        const ir_int_imm *c = ir_as_int(b->shape[d]);
        ck_assert_msg(c != NULL, "test helper: parameter shapes must be constants");
        A->shape[i][d] = c->value;
        elems *= (size_t)c->value;
      }
    }
    kiln_dtype t = p->dtype;
    size_t eb = t.code == KILN_TYPE_BOOL ? 1 : t.bits / 8u;
    A->bytes[i] = elems * eb;
    A->p[i] = malloc(A->bytes[i] ? A->bytes[i] : 1);
    for (size_t k = 0; k < elems; k++) {
      unsigned char *e = (unsigned char *)A->p[i] + k * eb;
      double r = (double)(rnd() >> 11) * 0x1p-53;
      if (p->kind == IR_VAR) {
        int64_t v = 5;
        memcpy(e, &v, eb); /* little-endian: the low bytes */
      } else if (t.code == KILN_TYPE_FLOAT && t.bits == 32) {
        float v = (float)(r * 4 - 2);
        memcpy(e, &v, 4);
      } else if (t.code == KILN_TYPE_FLOAT && t.bits == 64) {
        double v = r * 4 - 2;
        memcpy(e, &v, 8);
      } else {
        int64_t v = (int64_t)(r * 100) - 50;
        memcpy(e, &v, eb);
      }
    }
  }
}

static void args_copy(args *dst, const args *src) {
  *dst = *src;
  for (int i = 0; i < src->n; i++) {
    dst->p[i] = malloc(src->bytes[i] ? src->bytes[i] : 1);
    memcpy(dst->p[i], src->p[i], src->bytes[i]);
  }
}

static void args_free(args *A) {
  for (int i = 0; i < A->n; i++) free(A->p[i]);
}

static void expect_same(const args *x, const args *y, const char *what) {
  for (int i = 0; i < x->n; i++)
    ck_assert_msg(memcmp(x->p[i], y->p[i], x->bytes[i]) == 0, "%s: argument %d differs", what, i);
}

/* f and g (g lowered from f) interpreted on the same random data end with identical
 * arguments. Also checks that the data changed at all (so the comparison means something). */
static void diff_interp(const ir_func *f, const ir_func *g, uint64_t seed) {
  args x, y, init;
  args_init(&init, f, seed);
  args_copy(&x, &init);
  args_copy(&y, &init);
  ck_ok(ctx, ir_interpret(ctx, f, x.n, x.p));
  ck_ok(ctx, ir_interpret(ctx, g, y.n, y.p));
  expect_same(&x, &y, "interpreter before/after lowering");
  bool changed = false;
  for (int i = 0; i < x.n; i++) changed |= memcmp(x.p[i], init.p[i], x.bytes[i]) != 0;
  ck_assert_msg(changed, "the program wrote nothing");
  args_free(&x);
  args_free(&y);
  args_free(&init);
}

/* The host as a codegen target. */
static tgt_target host_target(void) {
  tgt_target t;
  memset(&t, 0, sizeof t);
  char *tr = LLVMGetDefaultTargetTriple(), *cpu = LLVMGetHostCPUName(),
       *feat = LLVMGetHostCPUFeatures();
  snprintf(t.triple, sizeof t.triple, "%s", tr);
  snprintf(t.cpu, sizeof t.cpu, "%s", cpu);
  if (strlen(feat) < sizeof t.features) snprintf(t.features, sizeof t.features, "%s", feat);
  LLVMDisposeMessage(tr);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(feat);
  t.num_cores = 4;
  t.vector_bits = 512;
  t.is_host = true;
  return t;
}

/* The lowered module's function compiled for the host and run, against the interpreter
 * running the original f, on the same data: identical bytes. */
static void diff_jit(const ir_func *f, kiln_tir_module *lm, uint64_t seed) {
  const ir_func *g = lm->funcs[0];
  tgt_target host = host_target();
  tgt_jit *j = NULL;
  ck_ok(ctx, tgt_jit_new(ctx, &host, &j));
  ck_ok(ctx, tgt_jit_add_tir(j, lm));
  kiln_kernel_fn fn = NULL;
  ck_ok(ctx, tgt_jit_lookup(j, g->name, &fn));
  args x, y;
  args_init(&x, f, seed);
  args_copy(&y, &x);
  ck_ok(ctx, ir_interpret(ctx, f, x.n, x.p));
  kiln_tensor t[MAXP];
  memset(t, 0, sizeof t);
  for (int i = 0; i < y.n; i++) {
    const ir_node *p = g->params[i];
    t[i].data = y.p[i];
    t[i].device_type = 1;
    t[i].dtype = p->dtype;
    if (p->kind == IR_BUFFER) {
      t[i].ndim = ((const ir_buffer *)p)->ndim;
      t[i].shape = y.shape[i];
    }
  }
  int32_t st = fn(t, y.n);
  ck_assert_msg(st == 0, "kernel returned %d: %s", st, kiln_last_error());
  expect_same(&x, &y, "interpreter vs compiled kernel");
  args_free(&x);
  args_free(&y);
  tgt_jit_free(j);
}

/* ---- Programs -------------------------------------------------------------------------- */

/* A matmul as a schedule leaves it: a reduction block with init, the outer loop parallel,
 * the reduction loop moved outside the vectorized spatial loop (extent 12: a vector of 8 and
 * a scalar tail of 4), int64 indices. */
static const char *MATMUL =
    "func @mm(A: buffer(float32, [16i64, 8i64]), B: buffer(float32, [8i64, 12i64]), C: buffer(float32, [16i64, 12i64])) {\n"
    "  block \"root\"() {\n"
    "    for i: int64 in parallel(0i64, 16i64) {\n"
    "      for k: int64 in range(0i64, 8i64) {\n"
    "        for j: int64 in vectorized(0i64, 12i64) {\n"
    "          block \"C\"(vi: int64 = spatial(0i64, 16i64) <- i, vj: int64 = spatial(0i64, 12i64) <- j, vk: int64 = reduce(0i64, 8i64) <- k) {\n"
    "            reads(A[vi, vk], B[vk, vj], C[vi, vj])\n"
    "            writes(C[vi, vj])\n"
    "            annotate {\"schedule_rule\" = \"mm\"}\n"
    "            init {\n"
    "              C[vi, vj] = 0f32;\n"
    "            }\n"
    "            C[vi, vj] = C[vi, vj] + A[vi, vk] * B[vk, vj];\n"
    "          }\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

/* The reduction split in two (k = k0 * 4 + k1): the init runs when both parts are 0. */
static const char *MATMUL_SPLIT_K =
    "func @mmk(A: buffer(float32, [4, 8]), B: buffer(float32, [8, 4]), C: buffer(float32, [4, 4])) {\n"
    "  block \"root\"() {\n"
    "    for i: int32 in range(0, 4) {\n"
    "      for k0: int32 in range(0, 2) {\n"
    "        for j: int32 in range(0, 4) {\n"
    "          for k1: int32 in range(0, 4) {\n"
    "            block \"C\"(vi: int32 = spatial(0, 4) <- i, vj: int32 = spatial(0, 4) <- j, vk: int32 = reduce(0, 8) <- k0 * 4 + k1) {\n"
    "              reads(A[vi, vk], B[vk, vj], C[vi, vj])\n"
    "              writes(C[vi, vj])\n"
    "              init {\n"
    "                C[vi, vj] = 0f32;\n"
    "              }\n"
    "              C[vi, vj] = C[vi, vj] + A[vi, vk] * B[vk, vj];\n"
    "            }\n"
    "          }\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

/* split(i, 4) of an extent of 10: the predicate the schedule adds. */
static const char *SPLIT =
    "func @split(A: buffer(float32, [10]), B: buffer(float32, [10])) {\n"
    "  block \"root\"() {\n"
    "    for i0: int32 in range(0, 3) {\n"
    "      for i1: int32 in range(0, 4) {\n"
    "        block \"B\"(vi: int32 = spatial(0, 10) <- i0 * 4 + i1) where i0 * 4 + i1 < 10 {\n"
    "          reads(A[vi])\n"
    "          writes(B[vi])\n"
    "          B[vi] = A[vi] * 2f32;\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

/* The same split with a vectorized inner loop, in int64. */
static const char *SPLIT_VEC =
    "func @splitv(A: buffer(float32, [10i64]), B: buffer(float32, [10i64])) {\n"
    "  block \"root\"() {\n"
    "    for i0: int64 in range(0i64, 3i64) {\n"
    "      for i1: int64 in vectorized(0i64, 4i64) {\n"
    "        block \"B\"(vi: int64 = spatial(0i64, 10i64) <- i0 * 4i64 + i1) where i0 * 4i64 + i1 < 10i64 {\n"
    "          reads(A[vi])\n"
    "          writes(B[vi])\n"
    "          B[vi] = A[vi] + 1f32;\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

/* ---- Pipeline table -------------------------------------------------------------------- */

START_TEST(test_pass_table) {
  static const char *const names[] = {"lower_blocks",   "compact_allocations", "flatten_buffers",
                                      "simplify",       "loop_partition",      "vectorize",
                                      "unroll",         "storage_rewrite",     "outline_parallel",
                                      "final_simplify"};
  ck_assert_int_eq(ir_lower_pass_count(), 10);
  for (int i = 0; i < 10; i++) {
    ck_assert_ptr_nonnull(ir_lower_pass_at(i));
    ck_assert_str_eq(ir_lower_pass_at(i)->name, names[i]);
    ck_assert_ptr_nonnull(ir_lower_pass_at(i)->run);
  }
  ck_assert_ptr_null(ir_lower_pass_at(-1));
  ck_assert_ptr_null(ir_lower_pass_at(10));
}
END_TEST

/* Passes return their input itself when they have nothing to do. */
START_TEST(test_passes_unchanged) {
  kiln_tir_module *m = parse(
      "func @plain(A: buffer(float32, [8]), B: buffer(float32, [8])) {\n"
      "  for i: int32 in range(0, 8) {\n"
      "    B[i] = A[i] + 1f32;\n"
      "  }\n"
      "}\n");
  ir_func *f = m->funcs[0];
  ir_lower_options o = {0, true};
  for (int i = 0; i < ir_lower_pass_count(); i++) {
    const ir_tpass *p = ir_lower_pass_at(i);
    ck_assert_msg(p->run(ctx, m->arena, f, &o) == f, "pass %s changed a plain loop", p->name);
  }
  kiln_tir_module_free(m);
}
END_TEST

/* ---- lower_blocks ---------------------------------------------------------------------- */

START_TEST(test_lower_blocks_matmul) {
  kiln_tir_module *m = parse(MATMUL);
  ir_func *f = m->funcs[0];
  ir_func *g = run_until(m, f, "lower_blocks", NULL);
  char *s = text_of(g);
  ck_lacks(s, "block");
  ck_lacks(s, "schedule_rule"); /* block annotations go */
  ck_has(s, "for i: int64 in parallel(0i64, 16i64) {");
  ck_has(s, "if k == 0i64 {\n          C[i, j] = 0f32;\n        }\n"
            "        C[i, j] = C[i, j] + A[i, k] * B[k, j];");
  diff_interp(f, g, 1);
  free(s);
  kiln_tir_module_free(m);
}
END_TEST

/* The init runs when every reduce iterator is at its min: with k split in two, at
 * k0 * 4 + k1 == 0 (wrong if only one part were checked: the results would differ). */
START_TEST(test_lower_blocks_split_reduction) {
  kiln_tir_module *m = parse(MATMUL_SPLIT_K);
  ir_func *f = m->funcs[0];
  ir_func *g = run_until(m, f, "lower_blocks", NULL);
  char *s = text_of(g);
  ck_has(s, "if k0 * 4 + k1 == 0 {");
  diff_interp(f, g, 2);
  free(s);
  kiln_tir_module *lm = lower(f);
  diff_interp(f, lm->funcs[0], 3);
  diff_jit(f, lm, 4);
  kiln_tir_module_free(lm);
  kiln_tir_module_free(m);
}
END_TEST

/* Predicates become ifs around the block; block buffers allocates (a block buffer whose shape
 * uses an iterator keeps it as a let); nested blocks lower from the inside out. */
START_TEST(test_lower_blocks_predicate_allocs_nested) {
  kiln_tir_module *m = parse(
      "func @nest(A: buffer(float32, [6, 4]), B: buffer(float32, [6])) {\n"
      "  block \"root\"() {\n"
      "    alloc T: buffer(float32, [6])\n"
      "    for i: int32 in range(0, 8) {\n"
      "      block \"outer\"(vi: int32 = spatial(0, 6) <- i) where i < 6 {\n"
      "        reads(A[vi, 0 +: 4])\n"
      "        writes(T[vi])\n"
      "        alloc S: buffer(float32, [vi + 1])\n"
      "        for r: int32 in range(0, 4) {\n"
      "          block \"inner\"(vr: int32 = reduce(0, 4) <- r, vo: int32 = spatial(0, 6) <- vi) {\n"
      "            reads(A[vo, vr])\n"
      "            writes(T[vo])\n"
      "            init {\n"
      "              T[vo] = 1f32;\n"
      "            }\n"
      "            T[vo] = T[vo] * A[vo, vr];\n"
      "          }\n"
      "        }\n"
      "        S[vi] = T[vi];\n"
      "        T[vi] = S[vi] + 1f32;\n"
      "      }\n"
      "    }\n"
      "    for i2: int32 in range(0, 6) {\n"
      "      block \"copy\"(v: int32 = spatial(0, 6) <- i2) {\n"
      "        reads(T[v])\n"
      "        writes(B[v])\n"
      "        B[v] = T[v];\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n");
  ir_func *f = m->funcs[0];
  ir_func *g = run_until(m, f, "lower_blocks", NULL);
  char *s = text_of(g);
  ck_lacks(s, "block");
  ck_has(s, "allocate T: buffer(float32, [6]) {"); /* the root's buffer, around everything */
  ck_assert_ptr_eq(strstr(s, "allocate T"), strstr(s, "{\n") + 4);
  ck_has(s, "if i < 6 {\n        let vi: int32 = i {\n          allocate S: buffer(float32, [vi + 1]) {");
  ck_has(s, "if r == 0 {\n                T[vi] = 1f32;\n              }\n              T[vi] = T[vi] * A[vi, r];");
  diff_interp(f, g, 5);
  free(s);
  kiln_tir_module *lm = lower(f);
  diff_interp(f, lm->funcs[0], 6);
  kiln_tir_module_free(lm);
  kiln_tir_module_free(m);
}
END_TEST

/* ---- flatten_buffers ------------------------------------------------------------------- */

/* A cache buffer in "local" scope and a storage_align'ed buffer (strides [9, 1]: 35 elements
 * hold a 4x8 tile); parameters keep their dimensions. */
START_TEST(test_flatten_local_and_strides) {
  kiln_tir_module *m = parse(
      "func @flat(A: buffer(float32, [4, 8]), B: buffer(float32, [4, 8])) {\n"
      "  block \"root\"() {\n"
      "    alloc T: buffer(float32, [4, 8], strides=[9, 1])\n"
      "    for i: int32 in range(0, 4) {\n"
      "      for j: int32 in range(0, 8) {\n"
      "        block \"T\"(vi: int32 = spatial(0, 4) <- i, vj: int32 = spatial(0, 8) <- j) {\n"
      "          reads(A[vi, vj])\n"
      "          writes(T[vi, vj])\n"
      "          T[vi, vj] = A[vi, vj] * 2f32;\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "    for i2: int32 in range(0, 4) {\n"
      "      block \"B\"(vi2: int32 = spatial(0, 4) <- i2) {\n"
      "        reads(T[vi2, 0 +: 8])\n"
      "        writes(B[vi2, 0 +: 8])\n"
      "        alloc L: buffer(float32, [2, 8], scope=\"local\")\n"
      "        for j2: int32 in range(0, 8) {\n"
      "          L[1, j2] = T[vi2, j2] + 1f32;\n"
      "        }\n"
      "        for j3: int32 in range(0, 8) {\n"
      "          B[vi2, j3] = L[1, j3];\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n");
  ir_func *f = m->funcs[0];
  ir_func *g = run_until(m, f, "simplify", NULL);
  char *s = text_of(g);
  ck_has(s, "allocate T: buffer(float32, [35]) {");
  ck_has(s, "T[i * 9 + j] = A[i, j] * 2f32;");
  /* L compacted to the one row the block uses, then flattened */
  ck_has(s, "allocate L: buffer(float32, [8], scope=\"local\") {");
  ck_has(s, "L[j2] = T[i2 * 9 + j2] + 1f32;");
  ck_has(s, "B[i2, j3] = L[j3];");
  diff_interp(f, g, 7);
  free(s);
  /* whole pipeline: the local buffer rises out of the serial loop */
  kiln_tir_module *lm = lower(f);
  s = text_of(lm->funcs[0]);
  ck_assert_ptr_nonnull(strstr(s, "allocate L"));
  ck_assert(strstr(s, "allocate L") < strstr(s, "for i2"));
  diff_interp(f, lm->funcs[0], 8);
  diff_jit(f, lm, 9);
  free(s);
  kiln_tir_module_free(lm);
  kiln_tir_module_free(m);
}
END_TEST

/* An element offset and a 0-d buffer. */
START_TEST(test_flatten_offset_and_scalar) {
  kiln_tir_module *m = parse(
      "func @off(A: buffer(float32, [4]), B: buffer(float32, [4])) {\n"
      "  allocate T: buffer(float32, [2, 2], offset=3) {\n"
      "    allocate s: buffer(float32, []) {\n"
      "      s[] = 0f32;\n"
      "      for i: int32 in range(0, 4) {\n"
      "        T[i / 2, i % 2] = A[i] + s[];\n"
      "        s[] = s[] + A[i];\n"
      "      }\n"
      "      for i2: int32 in range(0, 4) {\n"
      "        B[i2] = T[i2 / 2, i2 % 2] * s[];\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n");
  ir_func *f = m->funcs[0];
  ir_func *g = run_until(m, f, "simplify", NULL);
  char *s = text_of(g);
  ck_has(s, "allocate T: buffer(float32, [7]) {"); /* 3 + 1 + 1*2 + 1*1 */
  ck_has(s, "T[i + 3] = A[i] + s[0i64];");        /* (i / 2) * 2 + i % 2 + 3 */
  ck_has(s, "allocate s: buffer(float32, [1i64]) {"); /* no shape: int64 */
  ck_has(s, "s[0i64] = 0f32;");
  diff_interp(f, g, 10);
  free(s);
  kiln_tir_module_free(m);
}
END_TEST

/* ---- loop_partition -------------------------------------------------------------------- */

/* split 10 by 4: the main loop covers [0, 8) without a check; the tail's check is decided
 * once the tail is a single outer iteration, so no if is left at all. */
START_TEST(test_partition_split) {
  kiln_tir_module *m = parse(SPLIT);
  ir_func *f = m->funcs[0];
  ir_func *g = run_until(m, f, "loop_partition", NULL);
  char *s = text_of(g);
  ck_lacks(s, "if ");
  ck_has(s, "for i0: int32 in range(0, 2) {\n    for i1: int32 in range(0, 4) {\n"
            "      B[i0 * 4 + i1] = A[i0 * 4 + i1] * 2f32;");
  ck_has(s, "in range(0, 2) {\n    B[i1_1 + 8] = A[i1_1 + 8] * 2f32;");
  diff_interp(f, g, 11);
  free(s);
  kiln_tir_module *lm = lower(f);
  diff_interp(f, lm->funcs[0], 12);
  kiln_tir_module_free(lm);
  kiln_tir_module_free(m);
}
END_TEST

/* Both ends guarded (padding): [0, 1) and [11, 12) keep the check (and lose their
 * iterations, which the check rejects), [1, 11) runs without it. */
START_TEST(test_partition_both_ends) {
  kiln_tir_module *m = parse(
      "func @pad(A: buffer(float32, [10]), B: buffer(float32, [12])) {\n"
      "  for i: int32 in range(0, 12) {\n"
      "    if i >= 1 && i < 11 {\n"
      "      B[i] = A[i - 1];\n"
      "    }\n"
      "  }\n"
      "}\n");
  ir_func *f = m->funcs[0];
  ir_func *g = run_until(m, f, "loop_partition", NULL);
  char *s = text_of(g);
  ck_lacks(s, "if ");
  ck_has(s, "for i: int32 in range(1, 10) {\n    B[i] = A[i - 1];");
  diff_interp(f, g, 13);
  free(s);
  kiln_tir_module_free(m);

  /* a guard of 40 conjuncts (more than the pass splits up: the rest stays one conjunct) */
  char src[4096];
  int n = snprintf(src, sizeof src,
                   "func @many(A: buffer(float32, [10]), B: buffer(float32, [12])) {\n"
                   "  for i: int32 in range(0, 12) {\n    if i >= 1");
  for (int k = 0; k < 39; k++) n += snprintf(src + n, sizeof src - (size_t)n, " && i < %d", 11 + k);
  snprintf(src + n, sizeof src - (size_t)n, " {\n      B[i] = A[i - 1];\n    }\n  }\n}\n");
  m = parse(src);
  f = m->funcs[0];
  g = run_until(m, f, "loop_partition", NULL);
  s = text_of(g);
  ck_has(s, "for i: int32 in range(1, 10) {");
  diff_interp(f, g, 14);
  free(s);
  kiln_tir_module_free(m);
}
END_TEST

/* Guards the analyzer cannot decide stay: a symbolic bound, a data-dependent condition, a
 * guard with an else branch; a conjunct that cannot be proven stays in the main loop. */
START_TEST(test_partition_left_alone) {
  kiln_tir_module *m = parse(
      "func @keep(n: int32, A: buffer(float32, [16]), B: buffer(float32, [16])) {\n"
      "  for i: int32 in range(0, 16) {\n"
      "    if i < n {\n"
      "      B[i] = A[i];\n"
      "    }\n"
      "  }\n"
      "  for i2: int32 in range(0, 16) {\n"
      "    if A[i2] < 0f32 {\n"
      "      B[i2] = 0f32;\n"
      "    }\n"
      "  }\n"
      "  for i3: int32 in range(0, 16) {\n"
      "    if i3 < 8 {\n"
      "      B[i3] = B[i3] + 1f32;\n"
      "    } else {\n"
      "      B[i3] = B[i3] - 1f32;\n"
      "    }\n"
      "  }\n"
      "  for i4: int32 in range(0, 16) {\n"
      "    if i4 < 12 && i4 < n {\n"
      "      B[i4] = B[i4] * 2f32;\n"
      "    }\n"
      "  }\n"
      "}\n");
  ir_func *f = m->funcs[0];
  ir_func *g = run_until(m, f, "loop_partition", NULL);
  char *s = text_of(g);
  ck_has(s, "if i < n {");
  ck_has(s, "if A[i2] < 0f32 {");
  ck_has(s, "if i3 < 8 {");
  ck_has(s, "for i4: int32 in range(0, 12) {\n    if i4 < n {"); /* i4 < 12 removed */
  ck_lacks(s, "i4_1"); /* the tail [12, 16), where i4 < 12 is false, is gone */
  diff_interp(f, g, 14);
  free(s);
  kiln_tir_module_free(m);
}
END_TEST

/* ---- vectorize ------------------------------------------------------------------------- */

static char *vectorized_text(const char *src, uint64_t seed, bool jit) {
  kiln_tir_module *m = parse(src);
  ir_func *f = m->funcs[0];
  ir_func *g = run_until(m, f, "vectorize", NULL);
  char *s = text_of(g);
  diff_interp(f, g, seed);
  kiln_tir_module *lm = lower(f);
  diff_interp(f, lm->funcs[0], seed + 1);
  if (jit) diff_jit(f, lm, seed + 2);
  kiln_tir_module_free(lm);
  kiln_tir_module_free(m);
  return s;
}

START_TEST(test_vectorize_contiguous) {
  char *s = vectorized_text(
      "func @vc(A: buffer(float32, [4, 8]), B: buffer(float32, [4, 8])) {\n"
      "  for i: int32 in range(0, 4) {\n"
      "    for j: int32 in vectorized(0, 8) {\n"
      "      B[i, j] = A[i, j] * 3f32 + 1f32;\n"
      "    }\n"
      "  }\n"
      "}\n",
      20, true);
  ck_lacks(s, "vectorized");
  ck_has(s, "B[i, ramp(0, 1, 8)] = A[i, ramp(0, 1, 8)] * broadcast(3f32, 8) + broadcast(1f32, 8);");
  free(s);
}
END_TEST

/* Flattened buffers: the affine 1-D index becomes a ramp with the loop's stride. */
START_TEST(test_vectorize_strided) {
  char *s = vectorized_text(
      "func @vs(A: buffer(float32, [32]), B: buffer(float32, [16])) {\n"
      "  allocate T: buffer(float32, [4, 4]) {\n"
      "    for i: int32 in vectorized(0, 4) {\n"
      "      for c: int32 in range(0, 4) {\n"
      "        T[c, i] = A[i * 8 + c * 2 + 1];\n"
      "      }\n"
      "    }\n"
      "    for c2: int32 in range(0, 4) {\n"
      "      for i2: int32 in vectorized(0, 4) {\n"
      "        B[i2 * 4 + c2] = T[c2, i2];\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n",
      23, true);
  ck_has(s, "for i: int32 in vectorized(0, 4) {"); /* has an inner loop: left to LLVM */
  ck_has(s, "B[ramp(c2, 4, 4)] = T[ramp(c2 * 4, 1, 4)];");
  free(s);
}
END_TEST

/* Loop-invariant values are broadcast; a load whose index does not depend on the loop var
 * stays a scalar load. */
START_TEST(test_vectorize_broadcast) {
  char *s = vectorized_text(
      "func @vb(A: buffer(float32, [4]), B: buffer(float32, [16]), C: buffer(float32, [4, 16])) {\n"
      "  for i: int32 in range(0, 4) {\n"
      "    for j: int32 in vectorized(0, 16) {\n"
      "      C[i, j] = A[i] * B[j] + cast(float32, i);\n"
      "    }\n"
      "  }\n"
      "}\n",
      26, true);
  ck_has(s, "C[i, ramp(0, 1, 16)] = broadcast(A[i], 16) * B[ramp(0, 1, 16)] + broadcast(cast(float32, i), 16);");
  free(s);
}
END_TEST

/* A reduction into an element that does not depend on the vector var, and a loop-carried
 * dependence: both keep their loop (vector execution would change the result). */
START_TEST(test_vectorize_left_alone) {
  const char *src =
      "func @vr(A: buffer(float32, [8]), acc: buffer(float32, [1]), B: buffer(float32, [9])) {\n"
      "  for i: int32 in vectorized(0, 8) {\n"
      "    acc[0] = acc[0] + A[i];\n"
      "  }\n"
      "  for j: int32 in vectorized(0, 8) {\n"
      "    B[j + 1] = B[j] * 2f32 + A[j];\n"
      "  }\n"
      "  for k: int32 in vectorized(0, 8) {\n"
      "    let t: float32 = A[k] {\n"
      "      B[k] = t;\n"
      "    }\n"
      "  }\n"
      "}\n";
  char *s = vectorized_text(src, 29, true);
  ck_lacks(s, "ramp");
  ck_assert_int_eq(count(s, "vectorized(0, 8)"), 3);
  free(s);
}
END_TEST

/* Extent 10: a vector of 8 and a scalar tail of 2; extent 128: a serial loop over two
 * vectors of 64 lanes. */
START_TEST(test_vectorize_chunks) {
  char *s = vectorized_text(
      "func @vt(A: buffer(float32, [128]), B: buffer(float32, [128])) {\n"
      "  for i: int32 in vectorized(0, 10) {\n"
      "    B[i] = A[i] + 1f32;\n"
      "  }\n"
      "  for j: int32 in vectorized(0, 128) {\n"
      "    B[j] = B[j] * A[j];\n"
      "  }\n"
      "}\n",
      32, true);
  ck_has(s, "{\n  B[ramp(0, 1, 8)] = A[ramp(0, 1, 8)] + broadcast(1f32, 8);\n"
            "  for i: int32 in range(8, 2) {\n    B[i] = A[i] + 1f32;");
  ck_has(s, "for j: int32 in range(0, 2) {\n    B[ramp(j * 64, 1, 64)] = B[ramp(j * 64, 1, 64)] * A[ramp(j * 64, 1, 64)];");
  ck_lacks(s, "vectorized");
  free(s);
}
END_TEST

/* Conditions: one that does not depend on the vector var stays an if around vector code; one
 * that does becomes a select (with an else branch storing to the same place, or an in-bounds
 * store whose old value is kept); a gather index. */
START_TEST(test_vectorize_conditions) {
  char *s = vectorized_text(
      "func @vif(A: buffer(float32, [8]), B: buffer(float32, [4, 8]), C: buffer(float32, [8])) {\n"
      "  for i: int32 in range(0, 4) {\n"
      "    for j: int32 in vectorized(0, 8) {\n"
      "      if i == 0 {\n"
      "        B[i, j] = 0f32;\n"
      "      }\n"
      "      if j < 5 {\n"
      "        B[i, j] = B[i, j] + A[j];\n"
      "      } else {\n"
      "        B[i, j] = A[j];\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "  for k: int32 in vectorized(0, 8) {\n"
      "    if A[k] > 0f32 {\n"
      "      C[k] = A[(k * 3) % 8];\n"
      "    }\n"
      "  }\n"
      "}\n",
      35, true);
  ck_lacks(s, "vectorized");
  ck_has(s, "if i == 0 {\n      B[0, ramp(0, 1, 8)] = broadcast(0f32, 8);");
  ck_has(s, "B[i, ramp(0, 1, 8)] = select(ramp(0, 1, 8) < broadcast(5, 8), B[i, ramp(0, 1, 8)] + A[ramp(0, 1, 8)], A[ramp(0, 1, 8)]);");
  ck_has(s, "C[ramp(0, 1, 8)] = select(A[ramp(0, 1, 8)] > broadcast(0f32, 8), A[ramp(0, 3, 8) % broadcast(8, 8)], C[ramp(0, 1, 8)]);");
  free(s);
}
END_TEST

/* The guarded store of a non-divisible split after partitioning: main vectors of 4, a tail
 * vector of 2, no check left. */
START_TEST(test_vectorize_after_partition) {
  kiln_tir_module *m = parse(SPLIT_VEC);
  ir_func *f = m->funcs[0];
  kiln_tir_module *lm = lower(f);
  char *s = text_of(lm->funcs[0]);
  ck_lacks(s, "if ");
  ck_lacks(s, "vectorized");
  ck_has(s, "B[ramp(i0 * 4i64, 1i64, 4)] = A[ramp(i0 * 4i64, 1i64, 4)] + broadcast(1f32, 4);");
  ck_has(s, "B[ramp(8i64, 1i64, 2)] = A[ramp(8i64, 1i64, 2)] + broadcast(1f32, 2);");
  diff_interp(f, lm->funcs[0], 38);
  diff_jit(f, lm, 39);
  free(s);
  kiln_tir_module_free(lm);
  kiln_tir_module_free(m);
}
END_TEST

/* ---- unroll ---------------------------------------------------------------------------- */

START_TEST(test_unroll) {
  const char *src =
      "func @un(A: buffer(float32, [6]), B: buffer(float32, [6]), C: buffer(float32, [100])) {\n"
      "  for i: int32 in unrolled(0, 2) {\n"
      "    for j: int32 in range(0, 3) {\n"
      "      let t: int32 = i * 3 + j {\n"
      "        B[t] = A[t] * 2f32;\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "  for k: int32 in unrolled(2, 4) {\n"
      "    B[k] = B[k] + 1f32;\n"
      "  }\n"
      "  for u: int32 in unrolled(0, 100) {\n"
      "    C[u] = 1f32;\n"
      "  }\n"
      "}\n";
  kiln_tir_module *m = parse(src);
  ir_func *f = m->funcs[0];
  ir_func *g = run_until(m, f, "unroll", NULL); /* verified: the copies define fresh vars */
  char *s = text_of(g);
  ck_lacks(s, "unrolled");
  ck_lacks(s, "seq");
  ck_assert_int_eq(count(s, "for j"), 2);
  ck_has(s, "B[2] = B[2] + 1f32;\n  B[3] = B[3] + 1f32;\n  B[4] = B[4] + 1f32;\n  B[5] = B[5] + 1f32;");
  ck_lacks(s, "B[6]");
  ck_has(s, "for u: int32 in range(0, 100) {"); /* above the default limit of 64 */
  diff_interp(f, g, 40);
  free(s);
  kiln_tir_module *full = lower(f);
  s = text_of(full->funcs[0]);
  ck_has(s, "for j_1: int32 in range(0, 3) {\n    let t: int32 = j_1 + 3 {");
  free(s);
  kiln_tir_module_free(full);
  /* a smaller limit keeps the 4-iteration loop too */
  kiln_tir_module *lm = lower_with(f, 3);
  s = text_of(lm->funcs[0]);
  ck_has(s, "for k: int32 in range(2, 4) {");
  ck_lacks(s, "unrolled");
  diff_interp(f, lm->funcs[0], 41);
  free(s);
  kiln_tir_module_free(lm);
  kiln_tir_module_free(m);
}
END_TEST

/* ---- storage_rewrite ------------------------------------------------------------------- */

/* Two stages' intermediates with disjoint live ranges share one allocation; a third one that
 * overlaps both, and one of another dtype, keep their own. */
static const char *REUSE =
    "func @reuse(A: buffer(float32, [16]), B: buffer(float32, [16]), C: buffer(float32, [16]), D: buffer(int32, [16])) {\n"
    "  block \"root\"() {\n"
    "    alloc T1: buffer(float32, [16])\n"
    "    alloc T2: buffer(float32, [8])\n"
    "    alloc K: buffer(float32, [16])\n"
    "    alloc N: buffer(int32, [16])\n"
    "    for i: int32 in range(0, 16) {\n"
    "      block \"t1\"(v: int32 = spatial(0, 16) <- i) {\n"
    "        reads(A[v]) writes(T1[v], K[v])\n"
    "        T1[v] = A[v] * 2f32;\n"
    "        K[v] = A[v];\n"
    "      }\n"
    "    }\n"
    "    for i2: int32 in range(0, 16) {\n"
    "      block \"b\"(v2: int32 = spatial(0, 16) <- i2) {\n"
    "        reads(T1[v2]) writes(B[v2])\n"
    "        B[v2] = T1[v2] + 1f32;\n"
    "      }\n"
    "    }\n"
    "    for i3: int32 in range(0, 8) {\n"
    "      block \"t2\"(v3: int32 = spatial(0, 8) <- i3) {\n"
    "        reads(A[v3]) writes(T2[v3], N[v3])\n"
    "        T2[v3] = A[v3] * 3f32;\n"
    "        N[v3] = v3;\n"
    "      }\n"
    "    }\n"
    "    for i4: int32 in range(0, 8) {\n"
    "      block \"c\"(v4: int32 = spatial(0, 8) <- i4) {\n"
    "        reads(T2[v4], K[v4], N[v4]) writes(C[v4], D[v4])\n"
    "        C[v4] = T2[v4] - K[v4];\n"
    "        D[v4] = N[v4];\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

START_TEST(test_storage_reuse) {
  kiln_tir_module *m = parse(REUSE);
  ir_func *f = m->funcs[0];
  ir_func *g = run_until(m, f, "storage_rewrite", NULL);
  char *s = text_of(g);
  ck_assert_int_eq(count(s, "allocate"), 3);
  ck_has(s, "allocate T1: buffer(float32, [16]) {");
  ck_lacks(s, "allocate T2");
  ck_has(s, "allocate K: buffer(float32, [16]) {");
  ck_has(s, "allocate N: buffer(int32, [8]) {"); /* compacted: only N[0..8) is used */
  ck_has(s, "T1[i3] = A[i3] * 3f32;"); /* T2's accesses go to the shared buffer */
  ck_has(s, "C[i4] = T1[i4] - K[i4];");
  diff_interp(f, g, 50);
  free(s);
  kiln_tir_module *lm = lower(f);
  diff_jit(f, lm, 51);
  kiln_tir_module_free(lm);
  kiln_tir_module_free(m);
}
END_TEST

/* Allocations that start statements of a sequence share too; a constant-size allocation
 * inside a serial loop nest rises out of it, not out of a parallel loop; a symbolic size
 * stays where it is. */
START_TEST(test_storage_hoist_and_elements) {
  kiln_tir_module *m = parse(
      "func @hoist(n: int32, A: buffer(float32, [4, 8]), B: buffer(float32, [4, 8])) {\n"
      "  for i: int32 in range(0, 4) {\n"
      "    for j: int32 in range(0, 2) {\n"
      "      allocate L: buffer(float32, [4], scope=\"local\") {\n"
      "        for k: int32 in range(0, 4) {\n"
      "          L[k] = A[i, j * 4 + k];\n"
      "        }\n"
      "        for k2: int32 in range(0, 4) {\n"
      "          B[i, j * 4 + k2] = L[k2] * 2f32;\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "  for p: int32 in parallel(0, 4) {\n"
      "    allocate P: buffer(float32, [8]) {\n"
      "      for q: int32 in range(0, 8) {\n"
      "        P[q] = B[p, q];\n"
      "      }\n"
      "      for q2: int32 in range(0, 8) {\n"
      "        B[p, q2] = P[7 - q2];\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "  allocate X: buffer(float32, [8]) {\n"
      "    for x: int32 in range(0, 8) {\n"
      "      X[x] = A[0, x];\n"
      "    }\n"
      "    B[0, 0] = X[3];\n"
      "  }\n"
      "  allocate Y: buffer(float32, [6]) {\n"
      "    for y: int32 in range(0, 6) {\n"
      "      Y[y] = A[1, y];\n"
      "    }\n"
      "    B[1, 0] = Y[5];\n"
      "  }\n"
      "  for r: int32 in range(0, 2) {\n"
      "    allocate S: buffer(float32, [n]) {\n"
      "      S[0] = A[r, 0];\n"
      "      B[r, 1] = S[0];\n"
      "    }\n"
      "  }\n"
      "}\n");
  ir_func *f = m->funcs[0];
  ir_func *g = run_until(m, f, "storage_rewrite", NULL);
  char *s = text_of(g);
  /* L above both serial loops */
  ck_has(s, "allocate L: buffer(float32, [4], scope=\"local\") {\n      for i: int32");
  /* P stays inside the parallel loop */
  ck_has(s, "for p: int32 in parallel(0, 4) {\n      allocate P");
  /* X and Y share X's allocation, sized for the larger, around the sequence */
  ck_has(s, "{\n  allocate X: buffer(float32, [8]) {\n    allocate L");
  ck_lacks(s, "allocate Y");
  ck_has(s, "B[0, 0] = X[3];\n    for y: int32 in range(0, 6) {\n      X[y] = A[1, y];");
  /* S uses one element: compacted to a constant size, it shares X too */
  ck_lacks(s, "allocate S");
  ck_has(s, "for r: int32 in range(0, 2) {\n      X[0] = A[r, 0];");
  diff_interp(f, g, 52);
  free(s);
  kiln_tir_module_free(m);
}
END_TEST

/* ---- outline_parallel ------------------------------------------------------------------ */

START_TEST(test_outline_parallel) {
  const char *src =
      "func @par(A: buffer(float32, [4, 8]), B: buffer(float32, [4, 8]), acc: buffer(float32, [1])) {\n"
      "  for i: int32 in parallel(0, 4) {\n"
      "    for j: int32 in parallel(0, 8) {\n"
      "      B[i, j] = A[i, j] + 1f32;\n"
      "    }\n"
      "  }\n"
      "  for o: int32 in parallel(0, 1) annotate {\"note\" = 1} {\n"
      "    for p: int32 in parallel(0, 8) {\n"
      "      B[o, p] = B[o, p] * 2f32;\n"
      "    }\n"
      "  }\n"
      "  for r: int32 in parallel(0, 8) {\n"
      "    acc[0] = acc[0] + A[0, r];\n"
      "  }\n"
      "  for t: int32 in parallel(0, 4) {\n"
      "    let row: int32 = t * 1 {\n"
      "      allocate tmp: buffer(float32, [1]) {\n"
      "        tmp[0] = A[row, 0];\n"
      "        B[row, 7] = tmp[0];\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "  for w: int32 in parallel(0, 4) {\n"
      "    for u: int32 in range(w * 2, 2) {\n"
      "      B[3, u] = A[3, u] * 0.5f32;\n"
      "    }\n"
      "  }\n"
      "}\n";
  kiln_tir_module *m = parse(src);
  ir_func *f = m->funcs[0];
  ir_lower_options o = {0, true};
  ir_func *g = pass_named("outline_parallel")->run(ctx, m->arena, f, &o);
  ck_assert_ptr_nonnull(g);
  ck_ok(ctx, ir_verify_func(ctx, g));
  char *s = text_of(g);
  ck_has(s, "for i: int32 in parallel(0, 4) {\n    for j: int32 in range(0, 8) {"); /* nested */
  ck_has(s, "for o: int32 in range(0, 1) annotate {\"note\" = 1} {\n    for p: int32 in parallel(0, 8) {");
  ck_has(s, "for r: int32 in range(0, 8) {"); /* a race on acc[0] */
  ck_has(s, "for t: int32 in parallel(0, 4) {"); /* through a let; tmp is private */
  ck_has(s, "for w: int32 in parallel(0, 4) {"); /* through the inner loop's bounds */
  free(s);
  diff_interp(f, g, 60);
  kiln_tir_module *lm = lower(f);
  diff_jit(f, lm, 61);
  kiln_tir_module_free(lm);
  kiln_tir_module_free(m);
}
END_TEST

/* ---- Whole pipeline, compiled ---------------------------------------------------------- */

START_TEST(test_pipeline_matmul) {
  kiln_tir_module *m = parse(MATMUL);
  ir_func *f = m->funcs[0];
  kiln_tir_module *lm = lower(f);
  char *s = text_of(lm->funcs[0]);
  ck_lacks(s, "block");
  ck_has(s, "for i: int64 in parallel(0i64, 16i64) {");
  ck_has(s, "if k == 0i64 {\n        C[i, ramp(0i64, 1i64, 8)] = broadcast(0f32, 8);");
  ck_has(s, "C[i, ramp(0i64, 1i64, 8)] = C[i, ramp(0i64, 1i64, 8)] + broadcast(A[i, k], 8) * B[k, ramp(0i64, 1i64, 8)];");
  ck_has(s, "for j: int64 in range(8i64, 4i64) {"); /* the scalar tail */
  diff_interp(f, lm->funcs[0], 70);
  diff_jit(f, lm, 71);
  free(s);
  kiln_tir_module_free(lm);
  kiln_tir_module_free(m);
}
END_TEST

/* The golden matmul of the text format (a predicate, a local block buffer, annotations, a
 * tail block) lowers and runs the same. (Its second function reads a block buffer before
 * writing it in every block instance but the first: uninitialized memory, which the
 * interpreter happens to zero; hoisting the buffer changes what it reads, legitimately.) */
START_TEST(test_pipeline_golden) {
  char *text = kiln_test_read_golden("tir", "matmul.tir", NULL);
  kiln_tir_module *m = parse(text);
  free(text);
  kiln_tir_module *lm = lower(m->funcs[0]);
  char *s = text_of(lm->funcs[0]);
  ck_lacks(s, "block");
  ck_has(s, "allocate T: buffer(float32, [1], scope=\"local\")"); /* compacted to T[0] */
  free(s);
  diff_interp(m->funcs[0], lm->funcs[0], 80);
  diff_jit(m->funcs[0], lm, 81);
  kiln_tir_module_free(lm);
  kiln_tir_module_free(m);
}
END_TEST

/* ---- Errors ---------------------------------------------------------------------------- */

/* A realize whose binding count does not match its block (the constructor refuses to build
 * one, so the test makes it by hand). */
START_TEST(test_error_binding_count) {
  kiln_tir_module *m = parse(
      "func @bad(B: buffer(float32, [4, 4])) {\n"
      "  block \"b\"(v: int32 = spatial(0, 4) <- 1, w: int32 = spatial(0, 4) <- 2) {\n"
      "    writes(B[v, w])\n"
      "    B[v, w] = 1f32;\n"
      "  }\n"
      "}\n");
  ir_func *f = m->funcs[0];
  ir_block_realize *r = ir_as_realize(f->body);
  ck_assert_ptr_nonnull(r);
  ir_block_realize *bad = ir_arena_alloc(m->arena, sizeof *bad);
  *bad = *r;
  bad->nvalues = 1;
  ir_func *bf = ir_func_new(m->arena, "bad", f->nparams, f->params, 0, NULL, &bad->h);
  ck_assert_ptr_nonnull(bf);
  ir_lower_options o = {0, false};
  ck_assert_ptr_null(pass_named("lower_blocks")->run(ctx, m->arena, bf, &o));
  ck_assert_int_eq(kiln_context_errcode(ctx), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "lower_blocks: block_realize of block 'b' binds 1 values but the block has 2 iterators");
  /* the whole pipeline with verification names the input */
  kiln_tir_module *lm = ir_module_new(ctx);
  ir_func *out = (ir_func *)1;
  o.verify = true;
  ck_assert_int_eq(ir_lower_func(ctx, lm->arena, bf, &o, &out), KILN_ERR_SHAPE);
  ck_assert_ptr_null(out);
  ck_errmsg_has(ctx, "lower: the input does not verify");
  ck_errmsg_has(ctx, "binds 1 values but the block has 2 iterators");
  kiln_tir_module_free(lm);
  kiln_tir_module_free(m);
}
END_TEST

START_TEST(test_error_unrealized_block) {
  kiln_tir_module *m = parse(
      "func @u(B: buffer(float32, [4])) {\n"
      "  unrealized block \"bare\"(v: int32 = spatial(0, 4)) {\n"
      "    writes(B[v])\n"
      "    B[v] = 0f32;\n"
      "  }\n"
      "}\n");
  ir_lower_options o = {0, false};
  ck_assert_ptr_null(pass_named("lower_blocks")->run(ctx, m->arena, m->funcs[0], &o));
  ck_assert_int_eq(kiln_context_errcode(ctx), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "block 'bare' is not realized");
  kiln_tir_module_free(m);
}
END_TEST

/* Passes after lower_blocks given blocks: a clear internal error, not a wrong program. */
START_TEST(test_error_blocks_after_lowering) {
  kiln_tir_module *m = parse(
      "func @p(A: buffer(float32, [4]), B: buffer(float32, [4])) {\n"
      "  block \"root\"() {\n"
      "    alloc T: buffer(float32, [4])\n"
      "    for i: int32 in parallel(0, 4) {\n"
      "      block \"b\"(v: int32 = spatial(0, 4) <- i) {\n"
      "        reads(A[v])\n"
      "        writes(T[v], B[v])\n"
      "        T[v] = A[v];\n"
      "        B[v] = T[v];\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n");
  ir_lower_options o = {0, false};
  ck_assert_ptr_null(pass_named("outline_parallel")->run(ctx, m->arena, m->funcs[0], &o));
  ck_assert_int_eq(kiln_context_errcode(ctx), KILN_ERR_INTERNAL);
  ck_errmsg_has(ctx, "parallel loop 'i' still holds block 'b'");
  ck_assert_ptr_null(pass_named("flatten_buffers")->run(ctx, m->arena, m->funcs[0], &o));
  ck_errmsg_has(ctx, "flatten_buffers: block 'root' is still there");
  kiln_tir_module_free(m);
}
END_TEST

START_TEST(test_error_misuse) {
  kiln_tir_module *m = parse(SPLIT);
  ir_func *out = NULL;
  ck_assert_int_eq(ir_lower_func(ctx, NULL, m->funcs[0], NULL, &out), KILN_ERR_MISUSE);
  ck_assert_int_eq(ir_lower_func(ctx, m->arena, NULL, NULL, &out), KILN_ERR_MISUSE);
  ck_assert_int_eq(ir_lower_func(ctx, m->arena, m->funcs[0], NULL, NULL), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "lower:");
  ck_assert_int_eq(ir_lower_func(NULL, m->arena, m->funcs[0], NULL, &out), KILN_ERR_MISUSE);
  kiln_tir_module_free(m);
}
END_TEST

/* Every allocation failure during lowering gives KILN_ERR_NOMEM and leaks nothing. */
START_TEST(test_fault_injection) {
  const char *const progs[] = {MATMUL, SPLIT_VEC, REUSE};
  for (int p = 0; p < 3; p++) {
    kiln_tir_module *m = parse(progs[p]);
    ir_lower_options o = {0, true};
    int failures = 0;
    for (long n = 1;; n++) {
      ir_arena *a = ir_arena_new(ctx);
      ck_assert_ptr_nonnull(a);
      kiln_context_fail_alloc(ctx, n);
      ir_func *out = NULL;
      kiln_status st = ir_lower_func(ctx, a, m->funcs[0], &o, &out);
      kiln_context_fail_alloc(ctx, 0);
      ir_arena_free(a);
      if (st == KILN_OK) break;
      ck_assert_msg(st == KILN_ERR_NOMEM, "allocation %ld: %s (%s)", n, kiln_status_str(st),
                    kiln_context_errmsg(ctx));
      ck_assert_ptr_null(out);
      failures++;
    }
    ck_assert_int_gt(failures, 3);
    kiln_tir_module_free(m);
  }
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("transform");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_pass_table);
  tcase_add_test(tc, test_passes_unchanged);
  tcase_add_test(tc, test_lower_blocks_matmul);
  tcase_add_test(tc, test_lower_blocks_split_reduction);
  tcase_add_test(tc, test_lower_blocks_predicate_allocs_nested);
  tcase_add_test(tc, test_flatten_local_and_strides);
  tcase_add_test(tc, test_flatten_offset_and_scalar);
  tcase_add_test(tc, test_partition_split);
  tcase_add_test(tc, test_partition_both_ends);
  tcase_add_test(tc, test_partition_left_alone);
  tcase_add_test(tc, test_vectorize_contiguous);
  tcase_add_test(tc, test_vectorize_strided);
  tcase_add_test(tc, test_vectorize_broadcast);
  tcase_add_test(tc, test_vectorize_left_alone);
  tcase_add_test(tc, test_vectorize_chunks);
  tcase_add_test(tc, test_vectorize_conditions);
  tcase_add_test(tc, test_vectorize_after_partition);
  tcase_add_test(tc, test_unroll);
  tcase_add_test(tc, test_storage_reuse);
  tcase_add_test(tc, test_storage_hoist_and_elements);
  tcase_add_test(tc, test_outline_parallel);
  tcase_add_test(tc, test_pipeline_matmul);
  tcase_add_test(tc, test_pipeline_golden);
  tcase_add_test(tc, test_error_binding_count);
  tcase_add_test(tc, test_error_unrealized_block);
  tcase_add_test(tc, test_error_blocks_after_lowering);
  tcase_add_test(tc, test_error_misuse);
  tcase_add_test(tc, test_fault_injection);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

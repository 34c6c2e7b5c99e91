/* test_compact.c: compact buffer allocation (ir/compact.c): allocations move to the innermost
 * statement holding all their accesses and shrink to the region touched there; programs give
 * the same results before and after (TIR interpreter); cases it cannot describe are left
 * alone. */
#include <math.h>

#include "ir/text.h"
#include "ir/transform.h"
#include "ir/verify.h"
#include "test_util.h"

static kiln_context *ctx;
static kiln_tir_module *mod;

static ir_func *parse(const char *text) {
  ck_ok(ctx, ir_parse_module(ctx, text, strlen(text), "test", &mod));
  return mod->funcs[0];
}

/* Runs f and g on the same random inputs (every buffer parameter, float32) and compares all
 * buffers after the run bit for bit. */
static void same_results(ir_func *f, ir_func *g) {
  void *a[8], *b[8];
  size_t sizes[8];
  uint32_t seed = 7;
  for (int i = 0; i < f->nparams; i++) {
    ir_buffer *buf = ir_as_buffer(f->params[i]);
    ck_assert_ptr_nonnull(buf);
    size_t n = 1;
    for (int d = 0; d < buf->ndim; d++) n *= (size_t)ir_as_int(buf->shape[d])->value;
    sizes[i] = n * sizeof(float);
    a[i] = malloc(sizes[i]);
    b[i] = malloc(sizes[i]);
    for (size_t k = 0; k < n; k++) {
      seed = seed * 1664525u + 1013904223u;
      ((float *)a[i])[k] = (float)((seed >> 16) % 9) - 4.0f;
    }
    memcpy(b[i], a[i], sizes[i]);
  }
  ck_ok(ctx, ir_interpret(ctx, f, f->nparams, a));
  ck_ok(ctx, ir_interpret(ctx, g, g->nparams, b));
  for (int i = 0; i < f->nparams; i++) {
    ck_assert_msg(memcmp(a[i], b[i], sizes[i]) == 0, "parameter %d differs", i);
    free(a[i]);
    free(b[i]);
  }
}

static char *text_of(const ir_node *n) {
  char *s = ir_node_to_string(ctx, n);
  ck_assert_ptr_nonnull(s);
  return s;
}

static void setup(void) { ctx = kiln_test_new_ctx(); mod = NULL; }
static void teardown(void) {
  kiln_tir_module_free(mod);
  kiln_test_done_ctx(ctx);
}

/* A register tile: acc is allocated at full size at the top but only used inside one
 * iteration of i0: it becomes [4, 16] inside that loop, indices relative to the tile. */
static const char *tile_src =
    "func @f(A: buffer(float32, [16, 8]), B: buffer(float32, [8, 32]), C: buffer(float32, [16, 32])) {\n"
    "  allocate acc: buffer(float32, [16, 32]) {\n"
    "    for i0: int64 in range(0i64, 4i64) {\n"
    "      for j0: int64 in range(0i64, 2i64) {\n"
    "        for i1: int64 in range(0i64, 4i64) {\n"
    "          for j1: int64 in range(0i64, 16i64) {\n"
    "            acc[i0 * 4i64 + i1, j0 * 16i64 + j1] = 0f32;\n"
    "          }\n"
    "        }\n"
    "        for k: int64 in range(0i64, 8i64) {\n"
    "          for i1: int64 in range(0i64, 4i64) {\n"
    "            for j1: int64 in range(0i64, 16i64) {\n"
    "              acc[i0 * 4i64 + i1, j0 * 16i64 + j1] = acc[i0 * 4i64 + i1, j0 * 16i64 + j1] + A[i0 * 4i64 + i1, k] * B[k, j0 * 16i64 + j1];\n"
    "            }\n"
    "          }\n"
    "        }\n"
    "        for i1: int64 in range(0i64, 4i64) {\n"
    "          for j1: int64 in range(0i64, 16i64) {\n"
    "            C[i0 * 4i64 + i1, j0 * 16i64 + j1] = acc[i0 * 4i64 + i1, j0 * 16i64 + j1];\n"
    "          }\n"
    "        }\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

START_TEST(test_tile_accumulator) {
  ir_func *f = parse(tile_src);
  ir_func *g = ir_compact_allocations(ctx, mod->arena, f, NULL);
  ck_assert_ptr_nonnull(g);
  ck_assert_ptr_ne(g, f);
  ck_ok(ctx, ir_verify_func(ctx, g));
  char *s = text_of(&g->h);
  ck_assert_msg(strstr(s, "buffer(float32, [4i64, 16i64])") || strstr(s, "buffer(float32, [4, 16])"),
                "acc not shrunk:\n%s", s);
  /* the allocation now sits inside j0 (after the loop header of j0) */
  ck_assert_msg(strstr(s, "allocate acc") > strstr(s, "for j0"), "acc not moved into j0:\n%s", s);
  ck_assert_msg(strstr(s, "acc[i1, j1]") != NULL, "indices not relative to the tile:\n%s", s);
  kiln_string_free(ctx, s);
  same_results(f, g);
}
END_TEST

/* A stencil: the consumer reads P[i0 * 8 + i1 + r] for r in 0..2, so the compacted
 * producer buffer holds 8 + 2 elements per tile, and the producer fills exactly them. */
START_TEST(test_halo) {
  ir_func *f = parse(
      "func @f(X: buffer(float32, [34]), Y: buffer(float32, [32])) {\n"
      "  allocate P: buffer(float32, [34]) {\n"
      "    for i0: int64 in range(0i64, 4i64) {\n"
      "      for p: int64 in range(0i64, 10i64) {\n"
      "        P[i0 * 8i64 + p] = X[i0 * 8i64 + p] * 2f32;\n"
      "      }\n"
      "      for i1: int64 in range(0i64, 8i64) {\n"
      "        Y[i0 * 8i64 + i1] = 0f32;\n"
      "        for r: int64 in range(0i64, 3i64) {\n"
      "          Y[i0 * 8i64 + i1] = Y[i0 * 8i64 + i1] + P[i0 * 8i64 + i1 + r];\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n");
  ir_func *g = ir_compact_allocations(ctx, mod->arena, f, NULL);
  ck_assert_ptr_nonnull(g);
  ck_ok(ctx, ir_verify_func(ctx, g));
  char *s = text_of(&g->h);
  ck_assert_msg(strstr(s, "[10i64]") || strstr(s, "[10]"), "P not shrunk to 10:\n%s", s);
  kiln_string_free(ctx, s);
  same_results(f, g);
}
END_TEST

/* Accesses in two top-level statements of the allocation: nothing to gain. A data-dependent
 * index: no region. Both leave the function as it is (the same pointer). */
START_TEST(test_left_alone) {
  ir_func *f = parse(
      "func @f(X: buffer(float32, [8]), Y: buffer(float32, [8])) {\n"
      "  allocate T: buffer(float32, [8]) {\n"
      "    for i: int64 in range(0i64, 8i64) {\n"
      "      T[i] = X[i] + 1f32;\n"
      "    }\n"
      "    for i: int64 in range(0i64, 8i64) {\n"
      "      Y[i] = T[7i64 - i];\n"
      "    }\n"
      "  }\n"
      "}\n");
  ck_assert_ptr_eq(ir_compact_allocations(ctx, mod->arena, f, NULL), f);
  kiln_tir_module_free(mod);
  mod = NULL;
  f = parse(
      "func @f(X: buffer(float32, [8]), I: buffer(int64, [8]), Y: buffer(float32, [8])) {\n"
      "  for i: int64 in range(0i64, 8i64) {\n"
      "    allocate T: buffer(float32, [8]) {\n"
      "      for j: int64 in range(0i64, 8i64) {\n"
      "        T[j] = X[j];\n"
      "      }\n"
      "      Y[i] = T[I[i]];\n"
      "    }\n"
      "  }\n"
      "}\n");
  ck_assert_ptr_eq(ir_compact_allocations(ctx, mod->arena, f, NULL), f);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("compact");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_tile_accumulator);
  tcase_add_test(tc, test_halo);
  tcase_add_test(tc, test_left_alone);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

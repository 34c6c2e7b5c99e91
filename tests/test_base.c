/* test_base.c: context, allocator hook and fault injection, arenas, status strings, dtypes,
 * string buffers and pointer maps. */
#include "ir/base.h"
#include "test_util.h"

START_TEST(test_status_names) {
  ck_assert_str_eq(kiln_status_str(KILN_OK), "ok");
  ck_assert_str_eq(kiln_status_str(KILN_ERR_PARSE), "parse error");
  ck_assert_str_eq(kiln_status_str((kiln_status)999), "unknown status");
  for (int s = 0; s < KILN_STATUS_COUNT; s++) ck_assert_ptr_nonnull(kiln_status_str(s));
}
END_TEST

START_TEST(test_dtype_names) {
  char buf[32];
  ck_assert_str_eq(kiln_dtype_str(KILN_FLOAT32, buf, sizeof buf), "float32");
  ck_assert_str_eq(kiln_dtype_str(KILN_BFLOAT16, buf, sizeof buf), "bfloat16");
  ck_assert_str_eq(kiln_dtype_str(KILN_BOOL, buf, sizeof buf), "bool");
  kiln_dtype v = KILN_FLOAT32;
  v.lanes = 16;
  ck_assert_str_eq(kiln_dtype_str(v, buf, sizeof buf), "float32x16");
  /* every name parses back to the same type */
  kiln_dtype all[] = {KILN_BOOL, KILN_INT8, KILN_INT16, KILN_INT32, KILN_INT64, KILN_UINT8,
                      KILN_FLOAT16, KILN_BFLOAT16, KILN_FLOAT32, KILN_FLOAT64, KILN_HANDLE, v};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    kiln_dtype t;
    kiln_dtype_str(all[i], buf, sizeof buf);
    ck_assert_int_eq(kiln_dtype_parse(buf, strlen(buf), &t), KILN_OK);
    ck_assert_msg(kiln_dtype_eq(t, all[i]), "round trip of %s", buf);
  }
  kiln_dtype t;
  ck_assert_int_eq(kiln_dtype_parse("f32", 3, &t), KILN_OK);
  ck_assert(kiln_dtype_eq(t, KILN_FLOAT32));
  ck_assert_int_eq(kiln_dtype_parse("i8x4", 4, &t), KILN_OK);
  ck_assert_int_eq(t.lanes, 4);
  ck_assert_int_eq(kiln_dtype_parse("float33", 7, &t), KILN_ERR_PARSE);
  ck_assert(strstr(kiln_last_error(), "float33") != NULL);
  ck_assert_int_eq(kiln_dtype_parse("float32x0", 9, &t), KILN_ERR_PARSE);
  ck_assert_int_eq(kiln_dtype_bytes(KILN_BFLOAT16), 2);
  ck_assert_int_eq(kiln_dtype_bytes(KILN_BOOL), 1);
  ck_assert_int_eq(kiln_dtype_bytes(v), 64);
}
END_TEST

START_TEST(test_context_errors) {
  kiln_context *ctx;
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  ck_assert_str_eq(kiln_context_errmsg(ctx), "");
  ir_span sp = {3, 7};
  ck_assert_int_eq(ir_fail(ctx, sp, KILN_ERR_SHAPE, "bad %s", "shape"), KILN_ERR_SHAPE);
  ck_assert_str_eq(kiln_context_errmsg(ctx), "3:7: bad shape");
  ck_assert_str_eq(kiln_last_error(), "3:7: bad shape");
  int line, col;
  kiln_context_errpos(ctx, &line, &col);
  ck_assert_int_eq(line, 3);
  ck_assert_int_eq(col, 7);
  ck_assert_int_eq(kiln_context_errcode(ctx), KILN_ERR_SHAPE);
  kiln_context_free(ctx);
  ck_assert_int_eq(kiln_context_new(NULL), KILN_ERR_MISUSE);
  ck_assert_str_eq(kiln_context_errmsg(NULL), "NULL context");
}
END_TEST

/* A counting allocator: proves every byte goes through the hook. */
typedef struct {
  long calls;
  long live;
} counting;

static void *counting_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  counting *c = ud;
  (void)osize;
  c->calls++;
  if (nsize == 0) {
    if (p) c->live--;
    free(p);
    return NULL;
  }
  if (!p) c->live++;
  return realloc(p, nsize);
}

START_TEST(test_allocator_hook_and_arena) {
  counting c = {0, 0};
  kiln_context *ctx;
  ck_assert_int_eq(kiln_context_new_with_allocator(counting_alloc, &c, &ctx), KILN_OK);
  ir_arena *a = ir_arena_new(ctx);
  ck_assert_ptr_nonnull(a);
  for (int i = 0; i < 10000; i++) {
    char *p = ir_arena_alloc(a, 40);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(((uintptr_t)p) % 16, 0);
    ck_assert_int_eq(p[0], 0);
    memset(p, 0xab, 40);
  }
  void *big = ir_arena_alloc(a, 1 << 20); /* larger than a chunk */
  ck_assert_ptr_nonnull(big);
  ck_assert_str_eq(ir_arena_strdup(a, "kiln"), "kiln");
  ir_arena_reset(a);
  ck_assert_ptr_nonnull(ir_arena_alloc(a, 100));
  ir_arena_free(a);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
  ck_assert_int_gt(c.calls, 2);
  ck_assert_int_eq(c.live, 0);
}
END_TEST

START_TEST(test_fault_injection) {
  kiln_context *ctx;
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  kiln_context_fail_alloc(ctx, 2);
  void *p = ir_malloc(ctx, 10);
  ck_assert_ptr_nonnull(p);
  void *q = ir_malloc(ctx, 10);
  ck_assert_ptr_null(q);
  ck_assert_int_eq(kiln_context_errcode(ctx), KILN_ERR_NOMEM);
  ck_errmsg_has(ctx, "injected");
  void *r = ir_malloc(ctx, 10); /* only the one allocation fails */
  ck_assert_ptr_nonnull(r);
  ir_free(ctx, p, 10);
  ir_free(ctx, r, 10);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}
END_TEST

START_TEST(test_strbuf) {
  kiln_context *ctx;
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  for (int i = 0; i < 1000; i++) ir_sb_printf(&sb, "%d,", i);
  ir_sb_puts(&sb, "end");
  size_t len;
  char *s = ir_sb_take(&sb, &len);
  ck_assert_ptr_nonnull(s);
  ck_assert_int_eq(strlen(s), len);
  ck_assert(strncmp(s, "0,1,2,", 6) == 0);
  ck_assert(strcmp(s + len - 8, "999,end") == 0 || strstr(s, "999,end"));
  kiln_string_free(ctx, s);
  /* an empty buffer gives an empty, terminated string */
  ir_sb_init(&sb, ctx);
  s = ir_sb_take(&sb, &len);
  ck_assert_ptr_nonnull(s);
  ck_assert_int_eq(len, 0);
  ck_assert_str_eq(s, "");
  kiln_string_free(ctx, s);
  /* a failed allocation poisons the buffer and take reports it */
  ir_sb_init(&sb, ctx);
  kiln_context_fail_alloc(ctx, 1);
  ir_sb_puts(&sb, "x");
  ck_assert_ptr_null(ir_sb_take(&sb, NULL));
  ck_assert_int_eq(kiln_context_errcode(ctx), KILN_ERR_NOMEM);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}
END_TEST

START_TEST(test_ptrmap) {
  kiln_context *ctx;
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  ir_ptrmap m;
  ir_ptrmap_init(&m, ctx);
  static int keys[5000];
  for (int i = 0; i < 5000; i++) ck_assert_int_eq(ir_ptrmap_put(&m, &keys[i], &keys[(i + 1) % 5000]), KILN_OK);
  for (int i = 0; i < 5000; i++) ck_assert_ptr_eq(ir_ptrmap_get(&m, &keys[i]), &keys[(i + 1) % 5000]);
  ck_assert_int_eq(m.len, 5000);
  ck_assert_int_eq(ir_ptrmap_put(&m, &keys[7], NULL), KILN_OK);
  ck_assert_ptr_null(ir_ptrmap_get(&m, &keys[7]));
  ck_assert_int_eq(m.len, 5000);
  int other;
  ck_assert_ptr_null(ir_ptrmap_get(&m, &other));
  ir_ptrmap_free(&m);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}
END_TEST

START_TEST(test_hash_helpers_are_stable) {
  /* Golden values: these feed the tuning database key, so they must never change. */
  ck_assert_uint_eq(ir_hash_mix(0, 0), 0xe220a8397b1dcdafull);
  ck_assert_uint_eq(ir_hash_str(0, "kiln"), ir_hash_str(0, "kiln"));
  ck_assert_uint_ne(ir_hash_str(0, "kiln"), ir_hash_str(0, "kilm"));
  ck_assert_uint_eq(ir_hash_f64(0, __builtin_nan("1")), ir_hash_f64(0, __builtin_nan("")));
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("base");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_status_names);
  tcase_add_test(tc, test_dtype_names);
  tcase_add_test(tc, test_context_errors);
  tcase_add_test(tc, test_allocator_hook_and_arena);
  tcase_add_test(tc, test_fault_injection);
  tcase_add_test(tc, test_strbuf);
  tcase_add_test(tc, test_ptrmap);
  tcase_add_test(tc, test_hash_helpers_are_stable);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

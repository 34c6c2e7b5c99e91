/* test_util.h: helpers shared by the Check suites: a context per test (checked for leaks),
 * golden files and text helpers for the text-format suites, and a runner main that every
 * suite uses. Everything is a macro or a static inline function: each suite is one file. */
#ifndef KILN_TEST_UTIL_H
#define KILN_TEST_UTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln.h"

/* Fails the test with the context's message unless st is KILN_OK. */
#define ck_ok(ctx, st)                                                                  \
  do {                                                                                  \
    kiln_status st_ = (st);                                                             \
    ck_assert_msg(st_ == KILN_OK, "%s failed: %s: %s", #st, kiln_status_str(st_),       \
                  (ctx) ? kiln_context_errmsg(ctx) : kiln_last_error());                \
  } while (0)

/* Asserts that the context's last message contains `needle`. */
#define ck_errmsg_has(ctx, needle)                                                      \
  ck_assert_msg(strstr(kiln_context_errmsg(ctx), (needle)) != NULL,                     \
                "error message '%s' lacks '%s'", kiln_context_errmsg(ctx), (needle))

/* A new context; the test fails if there is none. */
static inline kiln_context *kiln_test_new_ctx(void) {
  kiln_context *ctx;
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  return ctx;
}

/* Frees the context after checking that everything made through it was freed. */
static inline void kiln_test_done_ctx(kiln_context *ctx) {
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}

/* The contents of a file (malloc'd, NUL-terminated; its length in *len if len is not NULL);
 * the test fails if it cannot be read. */
static inline char *kiln_test_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open golden file %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)n + 1);
  ck_assert_ptr_nonnull(text);
  ck_assert_int_eq(fread(text, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  text[n] = 0;
  if (len) *len = (size_t)n;
  return text;
}

#ifdef KILN_TEST_DIR
/* The path of golden file `name` in tests/golden/<subdir> (KILN_TEST_DIR is the absolute
 * tests/ folder, set by meson for the suites that use golden files). */
static inline void kiln_test_golden_path(const char *subdir, const char *name, char *buf,
                                         size_t cap) {
  snprintf(buf, cap, "%s/golden/%s/%s", KILN_TEST_DIR, subdir, name);
}

/* The contents of a golden file (see kiln_test_read_file). */
static inline char *kiln_test_read_golden(const char *subdir, const char *name, size_t *len) {
  char path[1024];
  kiln_test_golden_path(subdir, name, path, sizeof path);
  return kiln_test_read_file(path, len);
}
#endif

/* The text without its lines that start with '#' (malloc'd): what a printer gives for a golden
 * file, whose comments say what it tests. */
static inline char *kiln_test_strip_comment_lines(const char *text) {
  char *out = malloc(strlen(text) + 1);
  ck_assert_ptr_nonnull(out);
  size_t n = 0;
  while (*text) {
    const char *eol = strchr(text, '\n');
    size_t len = eol ? (size_t)(eol - text) + 1 : strlen(text);
    if (text[0] != '#') {
      memcpy(out + n, text, len);
      n += len;
    }
    text += len;
  }
  out[n] = 0;
  return out;
}

/* Text with `n` copies of open, then middle, then n copies of close, then tail (malloc'd):
 * deeply nested input for the parsers' nesting limits. */
static inline char *kiln_test_nested(const char *head, const char *open, int n,
                                     const char *middle, const char *close, const char *tail) {
  size_t lo = strlen(open), lc = strlen(close);
  size_t len = strlen(head) + (size_t)n * (lo + lc) + strlen(middle) + strlen(tail) + 1;
  char *s = malloc(len), *q = s;
  q = stpcpy(q, head);
  for (int i = 0; i < n; i++, q += lo) memcpy(q, open, lo);
  q = stpcpy(q, middle);
  for (int i = 0; i < n; i++, q += lc) memcpy(q, close, lc);
  strcpy(q, tail);
  return s;
}

/* Each suite defines `Suite *make_suite(void)` and uses KILN_TEST_MAIN. */
#define KILN_TEST_MAIN                                                                  \
  int main(void) {                                                                      \
    SRunner *sr = srunner_create(make_suite());                                         \
    srunner_run_all(sr, CK_NORMAL);                                                     \
    int failed = srunner_ntests_failed(sr);                                             \
    srunner_free(sr);                                                                   \
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;                                        \
  }

#endif

/* test_util.h: helpers shared by the Check suites: a context per test, parsing TIR from a
 * string, and a runner main that every suite uses. */
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

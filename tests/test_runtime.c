/* test_runtime.c: the runtime's thread pool (every task exactly once, error propagation,
 * nesting, concurrent launches, resizing, many small launches), workspace memory and
 * kiln_rt_error. Check forks each test, so each starts without a pool. */
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "kiln/kiln_runtime.h"
#include "test_util.h"

/* ---- Helpers ------------------------------------------------------------------------------ */

/* Counts how often each task index ran and checks the n the tasks were given. */
typedef struct {
  _Atomic int *hits;
  int32_t expected_n;
  _Atomic int bad_n;
} count_closure;

static int32_t count_task(int32_t i, int32_t n, void *c) {
  count_closure *cc = c;
  if (n != cc->expected_n || i < 0 || i >= n) {
    atomic_fetch_add(&cc->bad_n, 1);
    return 0;
  }
  atomic_fetch_add(&cc->hits[i], 1);
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A rendezvous: each task waits (yielding) until `want` tasks have arrived, or 10 s passed.
 * Since a thread runs one task at a time, all `want` tasks arriving proves that `want`
 * different threads run at once. Each task records the thread that ran it. */
typedef struct {
  int want;
  _Atomic int arrived;
  _Atomic int timed_out;
  pthread_t who[64];
  int32_t seen_n;
} meet_closure;

static int32_t meet_task(int32_t i, int32_t n, void *c) {
  meet_closure *m = c;
  m->who[i] = pthread_self();
  if (i == 0) m->seen_n = n;
  atomic_fetch_add(&m->arrived, 1);
  double deadline = now_s() + 10;
  while (atomic_load(&m->arrived) < m->want) {
    if (now_s() > deadline) {
      atomic_store(&m->timed_out, 1);
      break;
    }
    sched_yield();
  }
  return 0;
}

static int count_distinct_threads(const pthread_t *who, int n) {
  int distinct = 0;
  for (int i = 0; i < n; i++) {
    int j = 0;
    while (j < i && !pthread_equal(who[i], who[j])) j++;
    if (j == i) distinct++;
  }
  return distinct;
}

/* ---- Tests -------------------------------------------------------------------------------- */

START_TEST(test_every_task_once) {
  static const int threads[] = {1, 2, 3, 4, 7, 8};
  static const int32_t ns[] = {-1, 0, 1, 2, 3, 5, 7, 8, 9, 16, 100, 1000};
  enum { MAXN = 1000 };
  _Atomic int hits[MAXN];
  for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
    ck_assert_int_eq(kiln_rt_set_num_threads(threads[t]), KILN_OK);
    ck_assert_int_eq(kiln_rt_num_threads(), threads[t]);
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
      int32_t n = ns[k] <= 0 ? threads[t] : ns[k];
      for (int rep = 0; rep < 3; rep++) {
        for (int i = 0; i < MAXN; i++) atomic_init(&hits[i], 0);
        count_closure cc = {hits, n, 0};
        ck_assert_int_eq(kiln_rt_parallel_launch(count_task, &cc, ns[k]), 0);
        ck_assert_int_eq(atomic_load(&cc.bad_n), 0);
        for (int i = 0; i < MAXN; i++)
          ck_assert_msg(atomic_load(&hits[i]) == (i < n ? 1 : 0),
                        "threads %d, n %d: task %d ran %d times", threads[t], (int)ns[k], i,
                        atomic_load(&hits[i]));
      }
    }
  }
}
END_TEST

/* Fails tasks 37 and 60 with different statuses; counts the tasks that ran. */
typedef struct {
  _Atomic int *hits;
  pthread_t caller;
} fail_closure;

static int32_t fail_task(int32_t i, int32_t n, void *c) {
  fail_closure *fc = c;
  (void)n;
  atomic_fetch_add(&fc->hits[i], 1);
  if (i == 37) {
    kiln_rt_error("task 37 failed");
    return KILN_ERR_RUNTIME;
  }
  if (i == 60) {
    kiln_rt_error("task 60 failed");
    return KILN_ERR_SHAPE;
  }
  return 0;
}

START_TEST(test_first_error_propagates) {
  _Atomic int hits[100];
  for (int threads = 1; threads <= 4; threads++) {
    kiln_rt_set_num_threads(threads);
    for (int rep = 0; rep < 20; rep++) {
      for (int i = 0; i < 100; i++) atomic_init(&hits[i], 0);
      fail_closure fc = {hits, pthread_self()};
      ck_assert_int_eq(kiln_rt_parallel_launch(fail_task, &fc, 100), KILN_ERR_RUNTIME);
      ck_assert_str_eq(kiln_last_error(), "task 37 failed");
      /* Tasks are claimed in order: every task below the failing one ran, once. */
      for (int i = 0; i <= 37; i++) ck_assert_int_eq(atomic_load(&hits[i]), 1);
      for (int i = 38; i < 100; i++) ck_assert_int_le(atomic_load(&hits[i]), 1);
    }
  }
  /* The pool still works after a failure. */
  for (int i = 0; i < 100; i++) atomic_init(&hits[i], 0);
  count_closure cc = {hits, 100, 0};
  ck_assert_int_eq(kiln_rt_parallel_launch(count_task, &cc, 100), 0);
  for (int i = 0; i < 100; i++) ck_assert_int_eq(atomic_load(&hits[i]), 1);
}
END_TEST

/* Fails only on worker threads, after all tasks met, so a worker's failure is what counts. */
typedef struct {
  meet_closure meet;
  pthread_t caller;
  int with_message;
} worker_fail_closure;

static int32_t worker_fail_task(int32_t i, int32_t n, void *c) {
  worker_fail_closure *wc = c;
  meet_task(i, n, &wc->meet);
  if (pthread_equal(pthread_self(), wc->caller)) return 0;
  if (wc->with_message) kiln_rt_error("failed on a worker");
  return KILN_ERR_RUNTIME;
}

START_TEST(test_worker_error_message_reaches_caller) {
  kiln_rt_set_num_threads(4);
  worker_fail_closure wc = {.meet = {.want = 4}, .caller = pthread_self(), .with_message = 1};
  ck_assert_int_eq(kiln_rt_parallel_launch(worker_fail_task, &wc, 4), KILN_ERR_RUNTIME);
  ck_assert_int_eq(atomic_load(&wc.meet.timed_out), 0);
  ck_assert_str_eq(kiln_last_error(), "failed on a worker");

  /* Without a message from the task, the launch names the task and the status; a message
   * from an earlier failure on the worker does not leak into it. */
  worker_fail_closure wc2 = {.meet = {.want = 4}, .caller = pthread_self(), .with_message = 0};
  ck_assert_int_eq(kiln_rt_parallel_launch(worker_fail_task, &wc2, 4), KILN_ERR_RUNTIME);
  ck_assert_msg(strstr(kiln_last_error(), "parallel task") != NULL &&
                    strstr(kiln_last_error(), "of 4 failed: runtime error") != NULL,
                "message '%s'", kiln_last_error());
}
END_TEST

START_TEST(test_serial_error_stops_at_first) {
  /* One thread runs tasks in order and stops at the first failure. */
  kiln_rt_set_num_threads(1);
  _Atomic int hits[100];
  for (int i = 0; i < 100; i++) atomic_init(&hits[i], 0);
  fail_closure fc = {hits, pthread_self()};
  ck_assert_int_eq(kiln_rt_parallel_launch(fail_task, &fc, 100), KILN_ERR_RUNTIME);
  ck_assert_str_eq(kiln_last_error(), "task 37 failed");
  for (int i = 0; i < 100; i++) ck_assert_int_eq(atomic_load(&hits[i]), i <= 37 ? 1 : 0);
}
END_TEST

/* The outer task launches an inner loop; the inner tasks must run on the outer task's thread,
 * all of them, and complete before the inner launch returns. */
typedef struct {
  _Atomic int inner_hits[8][50];
  _Atomic int wrong_thread;
  _Atomic int inner_status;
} nest_closure;

typedef struct {
  nest_closure *nc;
  int outer;
  pthread_t thread;
} inner_closure;

static int32_t inner_task(int32_t i, int32_t n, void *c) {
  inner_closure *ic = c;
  (void)n;
  if (!pthread_equal(pthread_self(), ic->thread)) atomic_fetch_add(&ic->nc->wrong_thread, 1);
  atomic_fetch_add(&ic->nc->inner_hits[ic->outer][i], 1);
  return i == 42 && ic->outer == 5 ? KILN_ERR_SHAPE : 0;
}

static int32_t outer_task(int32_t i, int32_t n, void *c) {
  (void)n;
  inner_closure ic = {c, i, pthread_self()};
  int32_t st = kiln_rt_parallel_launch(inner_task, &ic, 50);
  if (i == 5) atomic_store(&ic.nc->inner_status, st);
  for (int k = 0; k < 50; k++)
    if (atomic_load(&ic.nc->inner_hits[i][k]) != (i == 5 && k > 42 ? 0 : 1)) return KILN_ERR_INTERNAL;
  return 0;
}

START_TEST(test_nested_launch_runs_serially) {
  kiln_rt_set_num_threads(4);
  nest_closure *nc = calloc(1, sizeof *nc);
  ck_assert_int_eq(kiln_rt_parallel_launch(outer_task, nc, 8), 0);
  ck_assert_int_eq(atomic_load(&nc->wrong_thread), 0);
  ck_assert_int_eq(atomic_load(&nc->inner_status), KILN_ERR_SHAPE);
  for (int o = 0; o < 8; o++)
    for (int k = 0; k < 50; k++)
      ck_assert_int_eq(atomic_load(&nc->inner_hits[o][k]), o == 5 && k > 42 ? 0 : 1);
  free(nc);
}
END_TEST

/* Two user threads launch at the same time, each summing into its own counters. */
typedef struct {
  _Atomic long sum;
  int failures;
} user_closure;

static int32_t add_task(int32_t i, int32_t n, void *c) {
  (void)n;
  atomic_fetch_add(&((user_closure *)c)->sum, i + 1);
  return 0;
}

static void *user_thread(void *arg) {
  user_closure *uc = arg;
  for (int rep = 0; rep < 2000; rep++)
    if (kiln_rt_parallel_launch(add_task, uc, 16) != 0) uc->failures++;
  return NULL;
}

START_TEST(test_concurrent_user_threads) {
  kiln_rt_set_num_threads(3);
  user_closure a = {0, 0}, b = {0, 0};
  pthread_t ta, tb;
  ck_assert_int_eq(pthread_create(&ta, NULL, user_thread, &a), 0);
  ck_assert_int_eq(pthread_create(&tb, NULL, user_thread, &b), 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  ck_assert_int_eq(a.failures, 0);
  ck_assert_int_eq(b.failures, 0);
  ck_assert_int_eq(atomic_load(&a.sum), 2000L * (16 * 17 / 2));
  ck_assert_int_eq(atomic_load(&b.sum), 2000L * (16 * 17 / 2));
}
END_TEST

/* Resizing shows in who runs the tasks: n <= 0 gives one task per thread, and a rendezvous of
 * k tasks completes only with k threads at work. */
START_TEST(test_set_num_threads_resizes_pool) {
  static const int sizes[] = {3, 1, 5, 2, 5};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    int k = sizes[s];
    ck_assert_int_eq(kiln_rt_set_num_threads(k), KILN_OK);
    ck_assert_int_eq(kiln_rt_num_threads(), k);
    meet_closure m = {.want = k};
    ck_assert_int_eq(kiln_rt_parallel_launch(meet_task, &m, 0), 0);
    ck_assert_int_eq(m.seen_n, k);
    ck_assert_int_eq(atomic_load(&m.timed_out), 0);
    ck_assert_int_eq(count_distinct_threads(m.who, k), k);
    if (k == 1) ck_assert(pthread_equal(m.who[0], pthread_self()));
  }
  /* 0 (or less) restores the default: the online CPUs when KILN_NUM_THREADS is unset. */
  unsetenv("KILN_NUM_THREADS");
  ck_assert_int_eq(kiln_rt_set_num_threads(0), KILN_OK);
  ck_assert_int_eq(kiln_rt_num_threads(), (int)sysconf(_SC_NPROCESSORS_ONLN));
  ck_assert_int_eq(kiln_rt_set_num_threads(-5), KILN_OK);
  ck_assert_int_eq(kiln_rt_num_threads(), (int)sysconf(_SC_NPROCESSORS_ONLN));
}
END_TEST

START_TEST(test_num_threads_env_and_limits) {
  setenv("KILN_NUM_THREADS", "3", 1);
  ck_assert_int_eq(kiln_rt_set_num_threads(0), KILN_OK);
  ck_assert_int_eq(kiln_rt_num_threads(), 3);
  meet_closure m = {.want = 3};
  ck_assert_int_eq(kiln_rt_parallel_launch(meet_task, &m, 0), 0);
  ck_assert_int_eq(m.seen_n, 3);
  ck_assert_int_eq(count_distinct_threads(m.who, 3), 3);
  setenv("KILN_NUM_THREADS", "2", 1);
  ck_assert_int_eq(kiln_rt_set_num_threads(0), KILN_OK);
  ck_assert_int_eq(kiln_rt_num_threads(), 2);
  /* Malformed values are ignored. */
  static const char *bad[] = {"abc", "0", "-2", "4x", "", "100000"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    setenv("KILN_NUM_THREADS", bad[i], 1);
    ck_assert_int_eq(kiln_rt_set_num_threads(0), KILN_OK);
    ck_assert_int_eq(kiln_rt_num_threads(), (int)sysconf(_SC_NPROCESSORS_ONLN));
  }
  unsetenv("KILN_NUM_THREADS");
  /* Too many threads is a misuse and leaves the count alone. */
  ck_assert_int_eq(kiln_rt_set_num_threads(2), KILN_OK);
  ck_assert_int_eq(kiln_rt_set_num_threads(5000), KILN_ERR_MISUSE);
  ck_assert_ptr_nonnull(strstr(kiln_last_error(), "5000 threads"));
  ck_assert_int_eq(kiln_rt_num_threads(), 2);
}
END_TEST

START_TEST(test_fork_child_gets_fresh_pool) {
  /* The parent's workers do not exist in a child: its first launch must start new ones. */
  kiln_rt_set_num_threads(3);
  meet_closure m = {.want = 3};
  ck_assert_int_eq(kiln_rt_parallel_launch(meet_task, &m, 3), 0);
  ck_assert_int_eq(atomic_load(&m.timed_out), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    meet_closure mc = {.want = 3};
    int32_t st = kiln_rt_parallel_launch(meet_task, &mc, 3);
    _exit(st == 0 && !atomic_load(&mc.timed_out) && count_distinct_threads(mc.who, 3) == 3 ? 0 : 1);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  /* The parent's pool is untouched. */
  meet_closure m2 = {.want = 3};
  ck_assert_int_eq(kiln_rt_parallel_launch(meet_task, &m2, 3), 0);
  ck_assert_int_eq(atomic_load(&m2.timed_out), 0);
}
END_TEST

static int32_t empty_task(int32_t i, int32_t n, void *c) {
  (void)i;
  (void)n;
  (void)c;
  return 0;
}

static int32_t sum_task(int32_t i, int32_t n, void *c) {
  (void)n;
  atomic_fetch_add((_Atomic long *)c, i + 1);
  return 0;
}

START_TEST(test_many_small_launches) {
  kiln_rt_set_num_threads(2);
  for (int i = 0; i < 100000; i++) ck_assert_int_eq(kiln_rt_parallel_launch(empty_task, NULL, 0), 0);
  /* Launches with gaps, so the workers also fall asleep in between, still see every task. */
  _Atomic long sum = 0;
  for (int i = 0; i < 20; i++) {
    struct timespec nap = {0, 300000};
    nanosleep(&nap, NULL);
    ck_assert_int_eq(kiln_rt_parallel_launch(sum_task, &sum, 10), 0);
  }
  ck_assert_int_eq(atomic_load(&sum), 20 * 55);
}
END_TEST

START_TEST(test_more_threads_than_cpus) {
  /* Oversubscribed pools sleep instead of spinning; they must still be correct. */
  kiln_rt_set_num_threads(4 * (int)sysconf(_SC_NPROCESSORS_ONLN));
  _Atomic long sum = 0;
  for (int i = 0; i < 500; i++) ck_assert_int_eq(kiln_rt_parallel_launch(sum_task, &sum, 33), 0);
  ck_assert_int_eq(atomic_load(&sum), 500L * (33 * 34 / 2));
}
END_TEST

START_TEST(test_launch_misuse) {
  ck_assert_int_eq(kiln_rt_parallel_launch(NULL, NULL, 4), KILN_ERR_MISUSE);
  ck_assert_ptr_nonnull(strstr(kiln_last_error(), "NULL task"));
}
END_TEST

START_TEST(test_workspace_alignment) {
  static const uint64_t aligns[] = {16, 32, 64, 128, 256, 4096, 1 << 16};
  static const uint64_t sizes[] = {0, 1, 100, 4096, 1 << 20};
  for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      unsigned char *p = kiln_rt_workspace_alloc(sizes[s], aligns[a]);
      ck_assert_ptr_nonnull(p);
      uint64_t want = aligns[a] < 64 ? 64 : aligns[a];
      ck_assert_msg((uintptr_t)p % want == 0, "%p not aligned to %llu", (void *)p,
                    (unsigned long long)want);
      memset(p, 0xab, sizes[s]); /* the whole block is usable (ASan checks) */
      kiln_rt_workspace_free(p);
    }
  }
  kiln_rt_workspace_free(NULL);
  /* Not a power of two. */
  ck_assert_ptr_null(kiln_rt_workspace_alloc(64, 48));
  ck_assert_ptr_nonnull(strstr(kiln_last_error(), "alignment 48"));
  ck_assert_ptr_null(kiln_rt_workspace_alloc(64, 0));
  /* Impossible sizes fail cleanly. */
  ck_assert_ptr_null(kiln_rt_workspace_alloc(UINT64_MAX, 64));
  ck_assert_ptr_nonnull(strstr(kiln_last_error(), "too large"));
}
END_TEST

START_TEST(test_rt_error_sets_last_error) {
  kiln_rt_error("kernel f: argument 2 has shape (3, 4), expected (3, 5)");
  ck_assert_str_eq(kiln_last_error(), "kernel f: argument 2 has shape (3, 4), expected (3, 5)");
  kiln_rt_error(NULL);
  ck_assert_str_eq(kiln_last_error(), "");
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("runtime");
  TCase *tc = tcase_create("threadpool");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_every_task_once);
  tcase_add_test(tc, test_first_error_propagates);
  tcase_add_test(tc, test_worker_error_message_reaches_caller);
  tcase_add_test(tc, test_serial_error_stops_at_first);
  tcase_add_test(tc, test_nested_launch_runs_serially);
  tcase_add_test(tc, test_concurrent_user_threads);
  tcase_add_test(tc, test_set_num_threads_resizes_pool);
  tcase_add_test(tc, test_num_threads_env_and_limits);
  tcase_add_test(tc, test_many_small_launches);
  tcase_add_test(tc, test_more_threads_than_cpus);
  tcase_add_test(tc, test_fork_child_gets_fresh_pool);
  tcase_add_test(tc, test_launch_misuse);
  suite_add_tcase(s, tc);
  TCase *tk = tcase_create("kernel helpers");
  tcase_add_test(tk, test_workspace_alignment);
  tcase_add_test(tk, test_rt_error_sets_last_error);
  suite_add_tcase(s, tk);
  return s;
}

KILN_TEST_MAIN

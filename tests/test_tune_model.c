/* test_tune_model.c: model-level tuning (autotune/tuner.c) and the resumable search under it
 * (autotune/search.c). The search in steps measures the same candidates as in one go, however
 * the trials are split; FLOPs are counted; the task scheduler (with deterministic fake
 * measurements) starts round robin, then favours the task with more to gain, honours the
 * trial and time budgets and is reproducible for a seed; candidates that crash or loop are
 * recorded and the tuning goes on; a Relay model's tasks carry the right weights (calls times
 * bucket weights); a short real tuning run fills the database, and kiln_compile with it takes
 * the schedules from there and still computes what the reference interpreter computes; the
 * `kiln tune` command line works end to end. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lower_harness.h"
#include "autotune/features.h"
#include "autotune/tuner.h"
#include "relay/build.h"

static const char *MATMUL64 =
    "def @main(%a: Tensor[(64, 64), float32], %b: Tensor[(64, 64), float32]) {\n"
    "  nn.matmul(%a, %b)\n"
    "}\n";

static const char *MATMUL_BIG =
    "def @main(%a: Tensor[(60, 72), float32], %b: Tensor[(72, 120), float32]) {\n"
    "  nn.matmul(%a, %b)\n"
    "}\n";

static const char *MATMUL_SMALL =
    "def @main(%a: Tensor[(48, 96), float32], %b: Tensor[(96, 192), float32]) {\n"
    "  nn.matmul(%a, %b)\n"
    "}\n";

static const char *RELU =
    "def @main(%a: Tensor[(4, 256), float32]) {\n"
    "  nn.relu(%a)\n"
    "}\n";

/* ---- Fixtures ----------------------------------------------------------------------------- */

static double wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Hand-made tasks: each a Relay function lowered to a PrimFunc, with a weight. */
enum { MAX_TASKS = 8 };
typedef struct task_set {
  kiln_context *ctx;
  relay_module *mods[MAX_TASKS];
  relay_build_task items[MAX_TASKS];
  relay_build_tasks tasks;
  ir_arena *arena;
  tgt_target host;
} task_set;

static void task_set_init(kiln_context *ctx, task_set *ts) {
  memset(ts, 0, sizeof *ts);
  ts->ctx = ctx;
  ts->arena = ir_arena_new(ctx);
  ts->tasks = (relay_build_tasks){.ctx = ctx, .arena = ts->arena, .tasks = ts->items};
  ck_ok(ctx, tgt_target_host(ctx, &ts->host));
}

static void task_set_add(task_set *ts, const char *name, const char *relay_text, double weight) {
  int i = ts->tasks.ntasks++;
  ck_assert_int_lt(i, MAX_TASKS);
  ts->mods[i] = lh_parse(ts->ctx, relay_text);
  ir_func *f = lh_lower(ts->ctx, ts->mods[i], "main", ts->arena);
  relay_workload wk;
  ck_ok(ts->ctx, relay_workload_key(ts->ctx, ts->arena, f, &wk));
  ts->items[i] = (relay_build_task){.name = name, .prim = f, .hash = wk.hash,
                                    .summary = wk.summary, .weight = weight, .ncalls = 1};
}

static void task_set_free(task_set *ts) {
  for (int i = 0; i < ts->tasks.ntasks; i++) relay_module_free(ts->mods[i]);
  ir_arena_free(ts->arena);
}

/* A database in a fresh temporary folder; tmp_db_remove deletes it. */
typedef struct tmp_db {
  char dir[64];
  char path[96];
  tune_db *db;
} tmp_db;

static void tmp_db_open(kiln_context *ctx, tmp_db *d) {
  strcpy(d->dir, "/tmp/kiln-tune-model-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(d->dir));
  snprintf(d->path, sizeof d->path, "%s/tune.db", d->dir);
  ck_ok(ctx, tune_db_open(ctx, d->path, &d->db));
}

static void tmp_db_remove(tmp_db *d) {
  tune_db_close(d->db);
  d->db = NULL;
  char p[160];
  static const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
  for (int i = 0; i < 4; i++) {
    snprintf(p, sizeof p, "%s%s", d->path, suffixes[i]);
    unlink(p);
  }
  rmdir(d->dir);
}

/* Records by status for one workload and target. */
typedef struct record_count {
  int n;
  int by_status[5];
} record_count;

static int count_record(void *ud, const tune_record *r) {
  record_count *c = ud;
  c->n++;
  c->by_status[r->status]++;
  return 0;
}

static record_count count_records(kiln_context *ctx, tune_db *db, uint64_t hash,
                                  const char *target) {
  record_count c = {0};
  int64_t skipped = -1;
  ck_ok(ctx, tune_db_list_records(db, true, hash, target, count_record, &c, &skipped));
  ck_assert_int_eq(skipped, 0);
  return c;
}

/* The measured candidates in order: (task, hash of the trace), plain malloc. */
typedef struct trace_log {
  int n, cap;
  int *task;
  uint64_t *trace;
} trace_log;

static void log_add(trace_log *l, int task, const char *json) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 64;
    l->task = realloc(l->task, sizeof(int) * (size_t)l->cap);
    l->trace = realloc(l->trace, sizeof(uint64_t) * (size_t)l->cap);
    ck_assert(l->task && l->trace);
  }
  l->task[l->n] = task;
  l->trace[l->n++] = ir_hash_str(0, json);
}

static void log_free(trace_log *l) {
  free(l->task);
  free(l->trace);
  memset(l, 0, sizeof *l);
}

static bool logs_equal(const trace_log *a, const trace_log *b) {
  if (a->n != b->n) return false;
  for (int i = 0; i < a->n; i++)
    if (a->task[i] != b->task[i] || a->trace[i] != b->trace[i]) return false;
  return true;
}

/* A fake measurement: task t's median is scale[t] times a factor in [0.3, 1) that depends
 * only on the scheduled function; the default schedule of each task gets factor 1 (so
 * tuning has something to find). Optionally sleeps, to spend time. */
typedef struct fake {
  double scale[MAX_TASKS];
  bool flat[MAX_TASKS]; /* every candidate of the task as slow as its default */
  uint64_t default_hash[MAX_TASKS];
  double sleep_s;
  trace_log log;
} fake;

static kiln_status fake_measure(void *ud, int task, kiln_context *ctx, const ir_func *scheduled,
                                const char *trace_json, tune_result *out) {
  fake *fk = ud;
  uint64_t h;
  kiln_status st = ir_structural_hash(ctx, &scheduled->h, &h);
  if (st) return st;
  log_add(&fk->log, task, trace_json);
  if (fk->sleep_s > 0) {
    struct timespec ts = {0, (long)(fk->sleep_s * 1e9)};
    nanosleep(&ts, NULL);
  }
  memset(out, 0, sizeof *out);
  double f = h == fk->default_hash[task] || fk->flat[task]
                 ? 1.0
                 : 0.3 + 0.7 * (double)((h >> 11) % 1000) / 1000.0;
  out->status = TUNE_OK;
  out->median_s = out->min_s = out->max_s = fk->scale[task] * 1e-6 * f;
  out->repeats = 3;
  return KILN_OK;
}

/* The structural hash of the default schedule of f on t. */
static uint64_t default_hash(kiln_context *ctx, ir_func *f, const tgt_target *t) {
  sch_target_info ti;
  sch_target_info_from(t, &ti);
  sch_schedule *s = sch_new(ctx, f, 1);
  ck_assert_ptr_nonnull(s);
  ck_ok(ctx, sch_apply_default_rules(s, &ti));
  uint64_t h;
  ck_ok(ctx, ir_structural_hash(ctx, &s->func->h, &h));
  sch_free(s);
  return h;
}

static void fake_init(fake *fk, const task_set *ts, const double *scale) {
  memset(fk, 0, sizeof *fk);
  for (int i = 0; i < ts->tasks.ntasks; i++) {
    fk->scale[i] = scale[i];
    fk->default_hash[i] = default_hash(ts->ctx, ts->items[i].prim, &ts->host);
  }
}

/* Tuner options for fake measurements. */
static tune_model_opts fake_opts(fake *fk) {
  tune_model_opts o = tune_model_opts_default();
  o.measure_fn = fake_measure;
  o.measure_ud = fk;
  o.per_round = 4;
  o.search.measure_batch = 4;
  o.seed = 11;
  return o;
}

/* ---- The search in steps -------------------------------------------------------------------- */

/* The search's own fake measurement (for tune_search / steps): median from the hash. */
static kiln_status search_fake(void *ud, kiln_context *ctx, const ir_func *scheduled,
                               const char *trace_json, tune_result *out) {
  trace_log *l = ud;
  uint64_t h;
  kiln_status st = ir_structural_hash(ctx, &scheduled->h, &h);
  if (st) return st;
  log_add(l, 0, trace_json);
  memset(out, 0, sizeof *out);
  out->status = TUNE_OK;
  out->median_s = out->min_s = out->max_s = 1e-6 * (double)(1 + h % 997);
  out->repeats = 3;
  return KILN_OK;
}

/* A measurement that cannot run at all. */
static kiln_status failing_measure(void *ud, kiln_context *ctx, const ir_func *scheduled,
                                   const char *trace_json, tune_result *out) {
  (void)ud, (void)scheduled, (void)trace_json, (void)out;
  return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "no measuring today");
}

/* Runs a search of f in steps of the given sizes (sizes[i] trials each, cycling) until
 * `trials` are measured; returns the log and the result. */
static void run_in_steps(kiln_context *ctx, ir_func *f, const tgt_target *t, int trials,
                         int nsizes, const int *sizes, trace_log *log, tune_search_result *r) {
  tune_search_opts o = tune_search_opts_default();
  o.trials = trials;
  o.measure_batch = 5;
  o.seed = 3;
  o.measure_fn = search_fake;
  o.measure_ud = log;
  tune_search_state *s = NULL;
  ck_ok(ctx, tune_search_begin(ctx, f, t, NULL, &o, &s));
  ck_assert_int_eq(tune_search_current(s)->trials, 0); /* begin measures nothing */
  ck_assert_int_eq(log->n, 0);
  int done = 0;
  for (int i = 0; !tune_search_done(s); i++) {
    int want = sizes[i % nsizes], got = -1;
    ck_ok(ctx, tune_search_step(s, want, &got));
    ck_assert_int_eq(got, want < trials - done ? want : trials - done);
    done += got;
    ck_assert_int_eq(tune_search_current(s)->trials, done);
  }
  ck_assert_int_eq(done, trials);
  ck_ok(ctx, tune_search_end(s, r));
}

/* 12 trials in steps of 4, of 1, of 5, 3, 7 and in one go: the same candidates in the same
 * order, the same best, the same number of rounds (rounds of 5 cut across the steps). */
START_TEST(test_search_steps_same_candidates) {
  kiln_context *ctx = kiln_test_new_ctx();
  task_set ts;
  task_set_init(ctx, &ts);
  task_set_add(&ts, "mm", MATMUL_BIG, 1);
  ir_func *f = ts.items[0].prim;
  trace_log whole = {0};
  tune_search_result rw;
  int twelve = 12;
  run_in_steps(ctx, f, &ts.host, 12, 1, &twelve, &whole, &rw);
  ck_assert_int_eq(whole.n, 12);
  ck_assert_int_eq(rw.rounds, 3);

  static const int four[] = {4}, one[] = {1}, mixed[] = {5, 3, 7};
  const int *splits[] = {four, one, mixed};
  int nsplits[] = {1, 1, 3};
  for (int k = 0; k < 3; k++) {
    trace_log l = {0};
    tune_search_result r;
    run_in_steps(ctx, f, &ts.host, 12, nsplits[k], splits[k], &l, &r);
    ck_assert_msg(logs_equal(&l, &whole), "split %d measured other candidates", k);
    ck_assert_str_eq(r.best_trace_json, rw.best_trace_json);
    ck_assert(r.best_median_s == rw.best_median_s);
    ck_assert(r.default_median_s == rw.default_median_s);
    ck_assert_int_eq(r.rounds, rw.rounds);
    ck_assert_int_eq(r.failures[TUNE_STATUS_OK], 12);
    tune_search_result_clear(ctx, &r);
    log_free(&l);
  }

  /* tune_search itself is begin + one step + end */
  trace_log l = {0};
  tune_search_opts o = tune_search_opts_default();
  o.trials = 12;
  o.measure_batch = 5;
  o.seed = 3;
  o.measure_fn = search_fake;
  o.measure_ud = &l;
  tune_search_result r;
  ck_ok(ctx, tune_search(ctx, f, &ts.host, NULL, &o, &r));
  ck_assert(logs_equal(&l, &whole));
  ck_assert_str_eq(r.best_trace_json, rw.best_trace_json);
  tune_search_result_clear(ctx, &r);
  log_free(&l);

  tune_search_result_clear(ctx, &rw);
  log_free(&whole);
  task_set_free(&ts);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Steps stop at opts.trials and when the space runs out (a function whose default schedule
 * samples nothing is one point); bad step arguments are misuse errors; ending a state that
 * was never stepped gives an empty result; NULL is refused. */
START_TEST(test_search_steps_limits) {
  kiln_context *ctx = kiln_test_new_ctx();
  task_set ts;
  task_set_init(ctx, &ts);
  task_set_add(&ts, "neg", "def @main(%a: Tensor[(3), float32]) {\n  negative(%a)\n}\n", 1);
  task_set_add(&ts, "mm", MATMUL64, 1);
  trace_log l = {0};
  tune_search_opts o = tune_search_opts_default();
  o.trials = 50;
  o.measure_fn = search_fake;
  o.measure_ud = &l;
  tune_search_state *s;
  ck_ok(ctx, tune_search_begin(ctx, ts.items[0].prim, &ts.host, NULL, &o, &s));
  ck_assert(!tune_search_done(s));
  ck_assert_uint_eq(tune_search_workload_hash(s), ts.items[0].hash);
  int got;
  ck_ok(ctx, tune_search_step(s, 10, &got));
  ck_assert_int_eq(got, 1);
  ck_assert(tune_search_done(s));
  ck_ok(ctx, tune_search_step(s, 10, &got));
  ck_assert_int_eq(got, 0);
  ck_assert_int_eq(tune_search_step(s, 0, &got), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "max_trials must be >= 1 (got 0)");
  tune_search_result r;
  ck_ok(ctx, tune_search_end(s, &r));
  ck_assert_int_eq(r.trials, 1);
  ck_assert(r.best_median_s == r.default_median_s && r.best_median_s > 0);
  tune_search_result_clear(ctx, &r);

  /* a measurement that cannot run fails the step; the state then only ends, with the error */
  o.measure_fn = failing_measure;
  ck_ok(ctx, tune_search_begin(ctx, ts.items[1].prim, &ts.host, NULL, &o, &s));
  ck_assert_int_eq(tune_search_step(s, 3, &got), KILN_ERR_IO);
  ck_errmsg_has(ctx, "no measuring today");
  ck_assert(tune_search_done(s));
  ck_assert_int_eq(tune_search_step(s, 1, &got), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "failed in an earlier step");
  ck_assert_int_eq(tune_search_end(s, &r), KILN_ERR_IO);
  ck_assert_ptr_null(r.best_trace_json);
  o.measure_fn = search_fake;

  o.trials = 6;
  ck_ok(ctx, tune_search_begin(ctx, ts.items[1].prim, &ts.host, NULL, &o, &s));
  ck_ok(ctx, tune_search_step(s, 4, &got));
  ck_assert_int_eq(got, 4);
  ck_ok(ctx, tune_search_step(s, 4, &got));
  ck_assert_int_eq(got, 2); /* the cap */
  ck_assert(tune_search_done(s));
  ck_assert_int_eq(tune_search_current(s)->trials, 6);
  ck_ok(ctx, tune_search_end(s, &r));
  ck_assert_int_eq(r.trials, 6);
  ck_assert_ptr_nonnull(r.best_trace_json);
  tune_search_result_clear(ctx, &r);

  ck_ok(ctx, tune_search_begin(ctx, ts.items[1].prim, &ts.host, NULL, &o, &s));
  ck_ok(ctx, tune_search_end(s, &r));
  ck_assert_int_eq(r.trials, 0);
  ck_assert_ptr_null(r.best_trace_json);
  ck_assert_int_eq(tune_search_end(NULL, &r), KILN_ERR_MISUSE);
  ck_assert_int_eq(tune_search_step(NULL, 1, &got), KILN_ERR_MISUSE);
  ck_assert_ptr_null(tune_search_current(NULL));
  ck_assert(tune_search_done(NULL));

  /* a bad option at begin is reported and leaves nothing behind */
  o.population = 0;
  ck_assert_int_eq(tune_search_begin(ctx, ts.items[1].prim, &ts.host, NULL, &o, &s),
                   KILN_ERR_MISUSE);
  ck_assert_ptr_null(s);
  ck_errmsg_has(ctx, "population 0");
  log_free(&l);
  task_set_free(&ts);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- FLOPs ------------------------------------------------------------------------------- */

static double flops_of(kiln_context *ctx, const char *relay_text, bool schedule) {
  task_set ts;
  task_set_init(ctx, &ts);
  task_set_add(&ts, "f", relay_text, 1);
  ir_func *f = ts.items[0].prim;
  sch_schedule *s = NULL;
  if (schedule) {
    sch_target_info ti;
    sch_target_info_from(&ts.host, &ti);
    s = sch_new(ctx, f, 1);
    ck_ok(ctx, sch_apply_default_rules(s, &ti));
    f = s->func;
  }
  ir_func *low;
  ck_ok(ctx, ir_lower_func(ctx, ts.arena, f, NULL, &low));
  double n = -1;
  ck_ok(ctx, tune_count_flops(ctx, low, &n));
  sch_free(s);
  task_set_free(&ts);
  return n;
}

/* A matmul does 2 M N K float operations (scheduled or not: tiles, vectors and fmas count
 * the same); a relu one per element. Bad arguments are misuse. */
START_TEST(test_flops) {
  kiln_context *ctx = kiln_test_new_ctx();
  ck_assert_double_eq(flops_of(ctx, MATMUL64, false), 2.0 * 64 * 64 * 64);
  ck_assert_double_eq(flops_of(ctx, MATMUL64, true), 2.0 * 64 * 64 * 64);
  ck_assert_double_eq(flops_of(ctx, MATMUL_BIG, true), 2.0 * 60 * 72 * 120);
  ck_assert_double_eq(flops_of(ctx, RELU, false), 4.0 * 256);
  double n;
  ck_assert_int_eq(tune_count_flops(ctx, NULL, &n), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "tune_count_flops: the function is NULL");
  ck_assert_int_eq(tune_count_flops(NULL, NULL, &n), KILN_ERR_MISUSE);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- The task scheduler (fake measurements) ------------------------------------------------ */

static int rounds_of(const tune_model_report *r, int task) {
  int n = 0;
  for (int i = 0; i < r->rounds; i++) n += r->round_task[i] == task;
  return n;
}

/* Two tasks of equal weight, one 100x slower than the other: after the first round each,
 * most rounds go to the slow one (its share of the end-to-end latency is far larger); the
 * fast one is still visited (the 1/t term). The budget is honoured exactly, every
 * measurement is in the database, the report adds up. */
START_TEST(test_scheduler_favours_gain) {
  kiln_context *ctx = kiln_test_new_ctx();
  task_set ts;
  task_set_init(ctx, &ts);
  task_set_add(&ts, "big", MATMUL_BIG, 1);
  task_set_add(&ts, "small", MATMUL_SMALL, 1);
  fake fk;
  fake_init(&fk, &ts, (double[]){100, 1});
  tmp_db d;
  tmp_db_open(ctx, &d);
  tune_model_opts o = fake_opts(&fk);
  o.trials = 48;
  o.eps_random = 0;
  tune_model_report *r = NULL;
  ck_ok(ctx, tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, d.db, &o, &r));
  ck_assert_int_eq(r->trials, 48);
  ck_assert_int_eq(fk.log.n, 48);
  ck_assert_int_ge(r->rounds, 12); /* rounds of 4, fewer where a space ran out */
  ck_assert_int_eq(r->round_task[0], 0); /* round robin first */
  ck_assert_int_eq(r->round_task[1], 1);
  int big = r->tasks[0].trials, small = r->tasks[1].trials;
  ck_assert_int_eq(big + small, 48);
  ck_assert_msg(big >= 3 * small, "big %d trials, small %d", big, small);
  ck_assert_int_ge(small, 4);
  ck_assert_int_eq(rounds_of(r, 0) + rounds_of(r, 1), r->rounds);

  for (int i = 0; i < 2; i++) {
    const tune_model_task_report *k = &r->tasks[i];
    ck_assert_str_eq(k->name, i ? "small" : "big");
    ck_assert_uint_eq(k->hash, ts.items[i].hash);
    ck_assert_double_eq(k->default_s, fk.scale[i] * 1e-6);
    ck_assert(k->best_s > 0 && k->best_s < k->default_s);
    ck_assert_double_eq_tol(k->speedup, k->default_s / k->best_s, 1e-12);
    ck_assert_double_eq_tol(k->best_gflops, k->flops / k->best_s * 1e-9, 1e-9);
    ck_assert_int_eq(k->failures[TUNE_STATUS_OK], k->trials);
    record_count c = count_records(ctx, d.db, k->hash, ts.host.canonical);
    ck_assert_int_eq(c.n, k->trials);
    ck_assert_int_eq(c.by_status[TUNE_STATUS_OK], k->trials);
  }
  ck_assert_double_eq(r->tasks[0].flops, 2.0 * 60 * 72 * 120);
  ck_assert_double_eq_tol(r->default_latency_s, 101e-6, 1e-15);
  ck_assert_double_eq_tol(r->est_latency_s, r->tasks[0].best_s + r->tasks[1].best_s, 1e-15);
  ck_assert(r->complete);
  ck_assert(!r->time_limited);
  tune_model_report_free(r);
  log_free(&fk.log);
  tmp_db_remove(&d);
  task_set_free(&ts);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A kernel that never improves and runs far below the throughput of a sibling of its kind
 * (the same op) does not keep the rounds: the optimistic "reach the siblings" term fades with
 * its rounds without improvement, so the improving sibling gets most rounds. */
START_TEST(test_scheduler_stuck_task_fades) {
  kiln_context *ctx = kiln_test_new_ctx();
  task_set ts;
  task_set_init(ctx, &ts);
  /* 8 kflop in 50 us (0.16 GFLOP/s) vs 1.8 Mflop from 400 us down to ~120 us (~15 GFLOP/s):
   * the stuck kernel is faster in absolute terms but far below its sibling's throughput */
  task_set_add(&ts, "stuck",
               "def @main(%a: Tensor[(16, 16), float32], %b: Tensor[(16, 16), float32]) {\n"
               "  nn.matmul(%a, %b)\n}\n", 1);
  task_set_add(&ts, "sibling", MATMUL_SMALL, 1);
  fake fk;
  fake_init(&fk, &ts, (double[]){50, 400});
  fk.flat[0] = true;
  tune_model_opts o = fake_opts(&fk);
  o.trials = 80;
  o.eps_random = 0;
  tune_model_report *r = NULL;
  ck_ok(ctx, tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, NULL, &o, &r));
  ck_assert_double_eq(r->tasks[0].best_s, r->tasks[0].default_s); /* it never improved */
  int stuck = rounds_of(r, 0), sibling = rounds_of(r, 1);
  ck_assert_msg(stuck < sibling, "stuck %d rounds, sibling %d", stuck, sibling);
  tune_model_report_free(r);
  log_free(&fk.log);
  task_set_free(&ts);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Weights count: the same kernel twice, one weighing 10: it gets most rounds; the estimate
 * divides by the bucket weight. */
START_TEST(test_scheduler_weights) {
  kiln_context *ctx = kiln_test_new_ctx();
  task_set ts;
  task_set_init(ctx, &ts);
  task_set_add(&ts, "light", MATMUL_BIG, 1);
  task_set_add(&ts, "heavy", MATMUL_BIG, 10);
  fake fk;
  fake_init(&fk, &ts, (double[]){5, 5});
  tune_model_opts o = fake_opts(&fk);
  o.trials = 40;
  o.eps_random = 0;
  tune_model_report *r = NULL;
  ck_ok(ctx, tune_model_tasks(ctx, &ts.tasks, 2, &ts.host, NULL, &o, &r));
  ck_assert_int_eq(r->trials, 40);
  ck_assert_msg(r->tasks[1].trials >= 3 * r->tasks[0].trials, "heavy %d, light %d",
                r->tasks[1].trials, r->tasks[0].trials);
  ck_assert_double_eq_tol(r->default_latency_s, (1 * 5e-6 + 10 * 5e-6) / 2, 1e-15);
  ck_assert_double_eq(r->bucket_weight, 2);
  tune_model_report_free(r);
  log_free(&fk.log);
  task_set_free(&ts);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The first pass shares a small budget: 3 tasks, 5 trials, per_round 4: 1 + 2 + 2. A budget
 * smaller than the number of tasks leaves the last ones unmeasured (the estimate is then
 * incomplete). */
START_TEST(test_scheduler_small_budget) {
  kiln_context *ctx = kiln_test_new_ctx();
  task_set ts;
  task_set_init(ctx, &ts);
  task_set_add(&ts, "a", MATMUL_BIG, 1);
  task_set_add(&ts, "b", MATMUL_SMALL, 1);
  task_set_add(&ts, "c", MATMUL64, 1);
  fake fk;
  fake_init(&fk, &ts, (double[]){1, 1, 1});
  tune_model_opts o = fake_opts(&fk);
  o.trials = 5;
  tune_model_report *r = NULL;
  ck_ok(ctx, tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, NULL, &o, &r));
  ck_assert_int_eq(r->trials, 5);
  ck_assert_int_eq(r->tasks[0].trials, 1);
  ck_assert_int_eq(r->tasks[1].trials, 2);
  ck_assert_int_eq(r->tasks[2].trials, 2);
  ck_assert(r->complete);
  tune_model_report_free(r);
  o.trials = 2;
  ck_ok(ctx, tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, NULL, &o, &r));
  ck_assert_int_eq(r->trials, 2);
  ck_assert_int_eq(r->tasks[2].trials, 0);
  ck_assert(!r->complete);
  ck_assert_double_eq_tol(r->default_latency_s, 2e-6, 1e-15);
  tune_model_report_free(r);
  log_free(&fk.log);
  task_set_free(&ts);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Progress callback: once per round, in order, consistent with the report. */
typedef struct progress_log {
  int n;
  int last_trials;
  int tasks[256];
} progress_log;

static void on_progress(void *ud, const tune_model_progress *p) {
  progress_log *pl = ud;
  ck_assert_int_eq(p->round, pl->n + 1);
  ck_assert_int_gt(p->trials, pl->last_trials);
  ck_assert(p->est_latency_s > 0 && p->est_latency_s <= p->default_latency_s);
  ck_assert(p->task_best_s > 0 && p->task_gflops > 0);
  ck_assert_ptr_nonnull(p->name);
  pl->last_trials = p->trials;
  pl->tasks[pl->n++] = p->task;
}

/* Same seed and measurements: the same rounds and the same candidates (the trace sequence);
 * another seed: another sequence. Random picks (eps 0.3) are part of the reproducible
 * stream. */
START_TEST(test_scheduler_reproducible) {
  kiln_context *ctx = kiln_test_new_ctx();
  task_set ts;
  task_set_init(ctx, &ts);
  task_set_add(&ts, "a", MATMUL_BIG, 2);
  task_set_add(&ts, "b", MATMUL_SMALL, 1);
  task_set_add(&ts, "c", RELU, 1);
  double scale[] = {20, 10, 1};
  fake f1, f2, f3;
  fake_init(&f1, &ts, scale);
  fake_init(&f2, &ts, scale);
  fake_init(&f3, &ts, scale);
  tune_model_report *r1, *r2, *r3;
  progress_log pl = {0};
  tune_model_opts o = fake_opts(&f1);
  o.trials = 36;
  o.eps_random = 0.3;
  o.progress = on_progress;
  o.progress_ud = &pl;
  ck_ok(ctx, tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, NULL, &o, &r1));
  o.measure_ud = &f2;
  o.progress = NULL;
  ck_ok(ctx, tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, NULL, &o, &r2));
  o.measure_ud = &f3;
  o.seed = 12;
  ck_ok(ctx, tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, NULL, &o, &r3));

  ck_assert_int_eq(f1.log.n, 36);
  ck_assert(logs_equal(&f1.log, &f2.log));
  ck_assert(!logs_equal(&f1.log, &f3.log));
  ck_assert_int_eq(r1->rounds, r2->rounds);
  for (int i = 0; i < r1->rounds; i++) ck_assert_int_eq(r1->round_task[i], r2->round_task[i]);
  ck_assert(r1->est_latency_s == r2->est_latency_s);
  ck_assert_int_eq(pl.n, r1->rounds);
  for (int i = 0; i < pl.n; i++) ck_assert_int_eq(pl.tasks[i], r1->round_task[i]);
  tune_model_report_free(r1);
  tune_model_report_free(r2);
  tune_model_report_free(r3);
  log_free(&f1.log);
  log_free(&f2.log);
  log_free(&f3.log);
  task_set_free(&ts);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A time budget stops the tuning between rounds, long before the trial budget. */
START_TEST(test_time_budget) {
  kiln_context *ctx = kiln_test_new_ctx();
  task_set ts;
  task_set_init(ctx, &ts);
  task_set_add(&ts, "a", MATMUL_BIG, 1);
  task_set_add(&ts, "b", MATMUL_SMALL, 1);
  fake fk;
  fake_init(&fk, &ts, (double[]){2, 1});
  fk.sleep_s = 0.01;
  tune_model_opts o = fake_opts(&fk);
  o.trials = 100000;
  o.time_budget_s = 0.3;
  tune_model_report *r = NULL;
  double t0 = wall_s();
  ck_ok(ctx, tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, NULL, &o, &r));
  double took = wall_s() - t0;
  ck_assert(r->time_limited);
  ck_assert_int_ge(r->trials, 8);
  ck_assert_int_lt(r->trials, 200);
  ck_assert_msg(took < 5, "took %g s", took);
  ck_assert(r->elapsed_s >= 0.3);
  tune_model_report_free(r);
  log_free(&fk.log);
  task_set_free(&ts);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A space that runs out ends its task; when every task is done the tuning stops before the
 * budget. */
START_TEST(test_exhausted_tasks) {
  kiln_context *ctx = kiln_test_new_ctx();
  task_set ts;
  task_set_init(ctx, &ts);
  task_set_add(&ts, "neg", "def @main(%a: Tensor[(3), float32]) {\n  negative(%a)\n}\n", 1);
  /* A 1x1x1 matmul: its space (tiles, parallel split, packing, unroll, two structures) is
   * small enough to run out well within the budget. */
  task_set_add(&ts, "mm", "def @main(%a: Tensor[(1, 1), float32], %b: Tensor[(1, 1), float32]) {\n"
                          "  nn.matmul(%a, %b)\n}\n", 1);
  fake fk;
  fake_init(&fk, &ts, (double[]){1, 1});
  tune_model_opts o = fake_opts(&fk);
  o.trials = 400;
  tune_model_report *r = NULL;
  ck_ok(ctx, tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, NULL, &o, &r));
  ck_assert_int_eq(r->tasks[0].trials, 1);
  ck_assert(r->tasks[0].exhausted);
  ck_assert(r->tasks[1].exhausted);
  ck_assert_int_lt(r->trials, 400);
  ck_assert_int_eq(r->trials, r->tasks[0].trials + r->tasks[1].trials);
  tune_model_report_free(r);
  log_free(&fk.log);
  task_set_free(&ts);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Failing candidates, real measurements --------------------------------------------------- */

/* A measurement hook that measures for real, except that every third candidate of task 0 is
 * replaced by a kernel that crashes (a store 256 TiB past its buffer) and every third one of
 * task 1 by one that never ends: the worker's SIGSEGV and the time limit are recorded and
 * the tuning goes on. */
typedef struct crashy {
  tgt_target host;
  tune_measure_opts mo;
  int calls[2];
  kiln_tir_module *crash, *spin;
} crashy;

static kiln_status crashy_measure(void *ud, int task, kiln_context *ctx, const ir_func *scheduled,
                                  const char *trace_json, tune_result *out) {
  (void)trace_json;
  crashy *c = ud;
  int n = c->calls[task]++;
  const ir_func *f = scheduled;
  if (n % 3 == 1) f = (task == 0 ? c->crash : c->spin)->funcs[0];
  tune_built *k = NULL;
  ck_ok(ctx, tune_build(ctx, &c->host, f, &k));
  kiln_status st = tune_measure(ctx, k, f, &c->mo, NULL, out);
  tune_built_free(k);
  return st;
}

START_TEST(test_crash_and_loop_recorded) {
  kiln_context *ctx = kiln_test_new_ctx();
  task_set ts;
  task_set_init(ctx, &ts);
  task_set_add(&ts, "mm", MATMUL64, 1);
  task_set_add(&ts, "mm2", MATMUL_SMALL, 1);
  crashy c = {0};
  c.host = ts.host;
  c.mo = tune_measure_opts_default();
  c.mo.min_seconds = 0.001;
  c.mo.timeout_s = 0.3;
  c.mo.check = false;
  static const char *crash = "func @crash(A: buffer(float32, [8])) {\n"
                             "  A[70368744177664i64] = 1f32;\n"
                             "}\n";
  static const char *spin = "func @spin(A: buffer(float32, [8])) {\n"
                            "  for i: int64 in range(0i64, 4611686018427387904i64) {\n"
                            "    A[i % 8i64] = A[(i + 3i64) % 8i64] * 0.5f32 + 1f32;\n"
                            "  }\n"
                            "}\n";
  ck_ok(ctx, kiln_tir_module_parse(ctx, crash, strlen(crash), "crash", &c.crash));
  ck_ok(ctx, kiln_tir_module_parse(ctx, spin, strlen(spin), "spin", &c.spin));
  tmp_db d;
  tmp_db_open(ctx, &d);
  tune_model_opts o = tune_model_opts_default();
  o.measure_fn = crashy_measure;
  o.measure_ud = &c;
  o.trials = 12;
  o.per_round = 3;
  o.search.measure_batch = 3;
  tune_model_report *r = NULL;
  ck_ok(ctx, tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, d.db, &o, &r));
  ck_assert_int_eq(r->trials, 12);
  const tune_model_task_report *mm = &r->tasks[0], *mm2 = &r->tasks[1];
  ck_assert_int_ge(mm->failures[TUNE_STATUS_RUN_ERROR], 1);
  ck_assert_int_eq(mm->failures[TUNE_STATUS_RUN_ERROR], (c.calls[0] + 1) / 3);
  ck_assert_int_ge(mm2->failures[TUNE_STATUS_TIMEOUT], 1);
  ck_assert_int_eq(mm2->failures[TUNE_STATUS_TIMEOUT], (c.calls[1] + 1) / 3);
  ck_assert(mm->best_s > 0 && mm2->best_s > 0); /* the others were measured ok */
  record_count cm = count_records(ctx, d.db, mm->hash, ts.host.canonical);
  record_count cr = count_records(ctx, d.db, mm2->hash, ts.host.canonical);
  ck_assert_int_eq(cm.n, mm->trials);
  ck_assert_int_eq(cm.by_status[TUNE_STATUS_RUN_ERROR], mm->failures[TUNE_STATUS_RUN_ERROR]);
  ck_assert_int_eq(cr.by_status[TUNE_STATUS_TIMEOUT], mm2->failures[TUNE_STATUS_TIMEOUT]);
  tune_model_report_free(r);
  kiln_tir_module_free(c.crash);
  kiln_tir_module_free(c.spin);
  tmp_db_remove(&d);
  task_set_free(&ts);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A hook that fails for task 1 with an error of that kernel alone (UNSUPPORTED): the task
 * is left out with its message in the report and the others are tuned; an error that
 * concerns the whole run (IO) stops it, naming the task. */
typedef struct picky {
  fake fk;
  kiln_status fail_code;
} picky;

static kiln_status picky_measure(void *ud, int task, kiln_context *ctx, const ir_func *scheduled,
                                 const char *trace_json, tune_result *out) {
  picky *p = ud;
  if (task == 1)
    return ir_fail(ctx, IR_NO_SPAN, p->fail_code, "kernel %d cannot be measured here", task);
  return fake_measure(&p->fk, task, ctx, scheduled, trace_json, out);
}

START_TEST(test_task_left_out) {
  kiln_context *ctx = kiln_test_new_ctx();
  task_set ts;
  task_set_init(ctx, &ts);
  task_set_add(&ts, "a", MATMUL_BIG, 1);
  task_set_add(&ts, "b", MATMUL_SMALL, 1);
  picky p = {.fail_code = KILN_ERR_UNSUPPORTED};
  fake_init(&p.fk, &ts, (double[]){2, 1});
  tune_model_opts o = fake_opts(&p.fk);
  o.measure_fn = picky_measure;
  o.measure_ud = &p;
  o.trials = 20;
  tune_model_report *r = NULL;
  ck_ok(ctx, tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, NULL, &o, &r));
  ck_assert_int_eq(r->trials, 20);
  ck_assert_int_eq(r->tasks[0].trials, 20);
  ck_assert_int_eq(r->tasks[1].trials, 0);
  ck_assert_ptr_null(r->tasks[0].error);
  ck_assert_ptr_nonnull(r->tasks[1].error);
  ck_assert_ptr_nonnull(strstr(r->tasks[1].error, "kernel 1 cannot be measured here"));
  ck_assert(!r->complete);
  ck_assert_int_eq(kiln_context_errcode(ctx), KILN_OK); /* cleared */
  tune_model_report_free(r);
  p.fail_code = KILN_ERR_IO;
  ck_assert_int_eq(tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, NULL, &o, &r), KILN_ERR_IO);
  ck_assert_ptr_null(r);
  ck_errmsg_has(ctx, "tune_model: task 1 'b' (nn.matmul");
  ck_errmsg_has(ctx, "kernel 1 cannot be measured here");
  log_free(&p.fk.log);
  task_set_free(&ts);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- A Relay model: tasks, a real tuning run, compiling with the database -------------------- */

typedef struct text {
  char *s;
  size_t len;
  FILE *f;
} text;

static uint64_t const_rng = 5;

/* A float32 constant of `shape` with n values in [-0.5, 0.5). */
static void tconst(FILE *f, const char *shape, int n) {
  fprintf(f, "const(Tensor[%s, float32], [", shape);
  for (int i = 0; i < n; i++)
    fprintf(f, "%s%.4g", i ? ", " : "", (double)(ir_splitmix64(&const_rng) % 1000) / 1000.0 - 0.5);
  fprintf(f, "])");
}

/* conv2d + relu, batch_flatten, dense + relu (144 -> 16), then the same dense 16 -> 16 + relu
 * twice (other weights, the same kernel) over a symbolic batch n. Caller frees. */
static char *model_text(void) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(f);
  fprintf(f, "def @main(%%x: Tensor[(n, 2, 6, 6), float32]) {\n  %%0 = nn.conv2d(%%x, ");
  tconst(f, "(4, 2, 3, 3)", 72);
  fprintf(f, ", padding=[1, 1, 1, 1]);\n  %%1 = nn.relu(%%0);\n  %%2 = nn.batch_flatten(%%1);\n"
             "  %%3 = nn.dense(%%2, ");
  tconst(f, "(16, 144)", 16 * 144);
  fprintf(f, ");\n  %%4 = nn.relu(%%3);\n  %%5 = nn.dense(%%4, ");
  tconst(f, "(16, 16)", 256);
  fprintf(f, ");\n  %%6 = nn.relu(%%5);\n  %%7 = nn.dense(%%6, ");
  tconst(f, "(16, 16)", 256);
  fprintf(f, ");\n  nn.relu(%%7)\n}\n");
  ck_assert_int_eq(fclose(f), 0);
  return buf;
}

/* Two buckets: batch 1 (weight 1) and batch 3 (weight 3). */
typedef struct two_buckets {
  int64_t d[2][4];
  kiln_input_shape in[2];
  kiln_bucket b[2];
} two_buckets;

static void two_buckets_init(two_buckets *tb) {
  for (int i = 0; i < 2; i++) {
    int64_t d[4] = {i ? 3 : 1, 2, 6, 6};
    memcpy(tb->d[i], d, sizeof d);
    tb->in[i] = (kiln_input_shape){"x", 4, tb->d[i]};
    tb->b[i] = (kiln_bucket){1, &tb->in[i], i ? 3 : 1};
  }
}

/* The task of a model with this summary prefix, or -1. */
static int find_task(const tune_model_report *r, const char *summary_prefix) {
  for (int i = 0; i < r->ntasks; i++)
    if (strncmp(r->tasks[i].summary, summary_prefix, strlen(summary_prefix)) == 0) return i;
  return -1;
}

/* The model's kernels over both buckets become 8 tasks; the 16 -> 16 dense runs twice per
 * inference, so its weight is 2 per unit of bucket weight (2 and 6), the others 1 and 3;
 * the estimate divides by the bucket weights' sum (4). Fake measurements. */
START_TEST(test_model_tasks_weights) {
  kiln_context *ctx = kiln_test_new_ctx();
  char *text = model_text();
  relay_module *m = lh_parse(ctx, text);
  two_buckets tb;
  two_buckets_init(&tb);
  tgt_target host;
  ck_ok(ctx, tgt_target_host(ctx, &host));
  fake fk;
  memset(&fk, 0, sizeof fk);
  for (int i = 0; i < MAX_TASKS; i++) fk.scale[i] = 1;
  tune_model_opts o = fake_opts(&fk);
  o.trials = 8;
  o.per_round = 1;
  tune_model_report *r = NULL;
  ck_ok(ctx, tune_model(ctx, m, 2, tb.b, &host, NULL, &o, &r));
  ck_assert_int_eq(r->ntasks, 8);
  ck_assert_int_eq(r->trials, 8);
  ck_assert_double_eq(r->bucket_weight, 4);
  static const struct {
    const char *summary;
    double weight;
    int ncalls;
  } want[] = {
      {"nn.conv2d+nn.relu (1,2,6,6)f32", 1, 1},
      {"nn.conv2d+nn.relu (3,2,6,6)f32", 3, 1},
      {"nn.dense+nn.relu (1,144)f32", 1, 1},
      {"nn.dense+nn.relu (3,144)f32", 3, 1},
      {"nn.dense+nn.relu (1,16)f32", 2, 2},
      {"nn.dense+nn.relu (3,16)f32", 6, 2},
  };
  double wsum = 0;
  for (int i = 0; i < r->ntasks; i++) {
    wsum += r->tasks[i].weight;
    ck_assert_int_eq(r->tasks[i].trials, 1);
  }
  ck_assert_double_eq(wsum, 1 + 3 + 1 + 3 + 2 + 6 + 1 + 3); /* batch_flatten: 1 and 3 */
  double wdefault = 0;
  for (int i = 0; i < r->ntasks; i++) wdefault += r->tasks[i].weight * r->tasks[i].default_s;
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
    int i = find_task(r, want[k].summary);
    ck_assert_msg(i >= 0, "no task '%s'", want[k].summary);
    ck_assert_double_eq(r->tasks[i].weight, want[k].weight);
    ck_assert_int_eq(r->tasks[i].ncalls, want[k].ncalls);
  }
  int conv = find_task(r, "nn.conv2d+nn.relu (3,2,6,6)f32");
  ck_assert_double_eq(r->tasks[conv].flops, 2.0 * 3 * 4 * 6 * 6 * 2 * 3 * 3 + 3 * 4 * 6 * 6);
  ck_assert(r->complete);
  ck_assert_double_eq_tol(r->default_latency_s, wdefault / 4, 1e-15);
  tune_model_report_free(r);
  log_free(&fk.log);
  relay_module_free(m);
  free(text);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A short real tuning run of the model (2 trials per task) puts ok records of every task in
 * the database; kiln_compile with the database then takes every kernel's schedule from it
 * (measuring nothing) and the compiled model computes, in both buckets, what the reference
 * interpreter computes. */
START_TEST(test_real_tune_then_compile) {
  kiln_context *ctx = kiln_test_new_ctx();
  char *text = model_text();
  kiln_relay_module *pub = NULL;
  ck_ok(ctx, kiln_relay_module_parse(ctx, text, strlen(text), &pub));
  two_buckets tb;
  two_buckets_init(&tb);
  tgt_target host;
  ck_ok(ctx, tgt_target_host(ctx, &host));
  tmp_db d;
  tmp_db_open(ctx, &d);
  tune_model_opts o = tune_model_opts_default();
  o.trials = 16;
  o.per_round = 2;
  o.search.measure_batch = 2;
  o.search.measure.min_repeats = 2;
  o.search.measure.min_seconds = 0.001;
  o.search.measure.timeout_s = 30;
  tune_model_report *r = NULL;
  ck_ok(ctx, tune_model(ctx, relay_api_module(pub), 2, tb.b, &host, d.db, &o, &r));
  ck_assert_int_eq(r->ntasks, 8);
  ck_assert_int_eq(r->trials, 16);
  ck_assert(r->complete);
  ck_assert(r->est_latency_s > 0 && r->default_latency_s > 0);
  for (int i = 0; i < r->ntasks; i++) {
    const tune_model_task_report *k = &r->tasks[i];
    ck_assert_ptr_null(k->error);
    ck_assert_int_ge(k->trials, 1);
    ck_assert_msg(k->failures[TUNE_STATUS_OK] == k->trials, "task %s: %d of %d ok", k->name,
                  k->failures[TUNE_STATUS_OK], k->trials);
    record_count c = count_records(ctx, d.db, k->hash, host.canonical);
    ck_assert_int_eq(c.n, k->trials);
    ck_assert_int_eq(c.by_status[TUNE_STATUS_OK], k->trials);
    if (strncmp(k->summary, "nn.batch_flatten", 16) != 0) ck_assert(k->best_gflops > 0);
  }
  tune_model_report_free(r);
  tune_db_close(d.db);
  d.db = NULL;

  kiln_compile_options co = {.db_path = d.path};
  kiln_compiled *c = NULL;
  ck_ok(ctx, kiln_compile(pub, 2, tb.b, &co, &c));
  kiln_compile_stats st;
  ck_ok(ctx, kiln_compiled_stats(c, &st));
  ck_assert_int_eq(st.nwarnings, 0);
  ck_assert_int_gt(st.nfrom_db, 0);
  ck_assert_int_eq(st.nfrom_db, st.nkernels);

  kiln_model *model = NULL;
  ck_ok(ctx, kiln_compiled_load(c, &model));
  kiln_session *s = NULL;
  ck_ok(NULL, kiln_session_new(model, &s));
  uint64_t seed = 99;
  for (int b = 0; b < 2; b++) {
    int64_t n = tb.d[b][0];
    size_t nin = (size_t)n * 2 * 6 * 6, nout = (size_t)n * 16;
    float *x = malloc(sizeof(float) * nin), *ref = malloc(sizeof(float) * nout);
    for (size_t k = 0; k < nin; k++) x[k] = (float)lh_rand_uniform(&seed, -1, 1);
    int64_t oshape[2] = {n, 16};
    kiln_tensor in = {x, 1, 0, 4, KILN_FLOAT32, tb.d[b], NULL, 0};
    kiln_tensor out = {ref, 1, 0, 2, KILN_FLOAT32, oshape, NULL, 0};
    ck_ok(ctx, kiln_relay_module_interpret(pub, "main", 1, &in, 1, &out));
    ck_ok(NULL, kiln_session_set_input(s, 0, &in));
    ck_ok(NULL, kiln_session_run(s));
    ck_assert_int_eq(kiln_session_last_bucket(s), b);
    kiln_tensor got;
    ck_ok(NULL, kiln_session_get_output(s, 0, &got));
    ck_assert_int_eq(got.ndim, 2);
    ck_assert_int_eq(got.shape[0], n);
    ck_assert_int_eq(got.shape[1], 16);
    const float *g = (const float *)((const char *)got.data + got.byte_offset);
    for (size_t k = 0; k < nout; k++)
      ck_assert_msg(fabsf(g[k] - ref[k]) <= 1e-4f * fabsf(ref[k]) + 1e-5f,
                    "bucket %d element %zu: compiled %g, interpreter %g", b, k, g[k], ref[k]);
    free(x);
    free(ref);
  }
  kiln_session_free(s);
  kiln_model_free(model);
  kiln_compiled_free(c);
  tmp_db_remove(&d);
  kiln_relay_module_free(pub);
  free(text);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- kiln tune ------------------------------------------------------------------------------ */

/* The kiln executable next to this test's build folder (tests/../tools/kiln). */
static void kiln_exe(char *buf, size_t cap) {
  char self[1024];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ck_assert_int_gt(n, 0);
  self[n] = 0;
  char *slash = strrchr(self, '/');
  ck_assert_ptr_nonnull(slash);
  *slash = 0;
  snprintf(buf, cap, "%s/../tools/kiln", self);
  ck_assert_msg(access(buf, X_OK) == 0, "no kiln executable at %s", buf);
}

/* Runs `kiln ARGS` with stdout and stderr to files in dir; returns the exit status. */
static int run_kiln(const char *dir, const char *args) {
  char exe[1200], cmd[4096];
  kiln_exe(exe, sizeof exe);
  snprintf(cmd, sizeof cmd, "'%s' %s > '%s/out.txt' 2> '%s/err.txt'", exe, args, dir, dir);
  int st = system(cmd);
  ck_assert(st != -1 && WIFEXITED(st));
  return WEXITSTATUS(st);
}

static char *read_out(const char *dir, const char *name) {
  char p[600];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return kiln_test_read_file(p, NULL);
}

/* kiln tune on a Relay file with two buckets: exit 0, the table (every kernel, the totals),
 * a progress line per round on stderr (not a terminal), records in the database; --json
 * gives the report as JSON; --help, usage errors (exit 2) and failures (exit 1) are told
 * apart and name the problem. */
START_TEST(test_cli) {
  char dir[64];
  strcpy(dir, "/tmp/kiln-tune-cli-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char path[600], args[2048];
  char *text = model_text();
  snprintf(path, sizeof path, "%s/model.relay", dir);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  free(text);

  snprintf(args, sizeof args, "tune '%s/model.relay' --db '%s/t.db' --bucket x=1x2x6x6 "
           "--bucket x=3x2x6x6@3 --trials 8 --per-round 1 --seed 5", dir, dir);
  int rc = run_kiln(dir, args);
  char *out = read_out(dir, "out.txt"), *err = read_out(dir, "err.txt");
  ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
  ck_assert_msg(strstr(out, "tuned 8 kernels") && strstr(out, "8 trials"), "%s", out);
  ck_assert_ptr_nonnull(strstr(out, "fused_nn_dense_nn_relu_3"));
  ck_assert_ptr_nonnull(strstr(out, "nn.dense+nn.relu (3,16)f32"));
  ck_assert_ptr_nonnull(strstr(out, "estimated latency per inference: default"));
  ck_assert_msg(strstr(err, "task 8/8") && strstr(err, "trials 8/8") &&
                strstr(err, "est. latency"), "%s", err);
  int lines = 0;
  for (const char *p = err; (p = strchr(p, '\n')); p++) lines++;
  ck_assert_int_eq(lines, 8); /* one per round */
  free(out);
  free(err);

  /* the database now has records: the same tuning warm-starts from them; --json */
  snprintf(args, sizeof args, "tune '%s/model.relay' --db '%s/t.db' --bucket x=1x2x6x6 "
           "--trials 4 --quiet --json", dir, dir);
  rc = run_kiln(dir, args);
  out = read_out(dir, "out.txt");
  err = read_out(dir, "err.txt");
  ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
  ck_assert_str_eq(err, "");
  ck_assert_msg(out[0] == '{' && strstr(out, "\"tasks\": [") && strstr(out, "\"trials\": 4") &&
                strstr(out, "\"warm_started\": 1") && strstr(out, "\"round_tasks\": [0, 1, 2, 3]"),
                "%s", out);
  free(out);
  free(err);

  rc = run_kiln(dir, "tune --help");
  out = read_out(dir, "out.txt");
  ck_assert_int_eq(rc, 0);
  ck_assert_ptr_nonnull(strstr(out, "usage: kiln tune MODEL"));
  free(out);

  static const struct {
    const char *args, *msg;
    int rc;
  } bad[] = {
      {"tune", "no model given", 2},
      {"tune m.relay", "no tuning database given (--db DB)", 2},
      {"tune m.relay --db x.db --trials 0", "--trials takes a count >= 1, not '0'", 2},
      {"tune m.relay --db x.db --bucket x=1xa", "'x=1xa' is not NAME=DxD", 2},
      {"tune m.relay --db x.db --bucket x=1@-2", "must be a positive number, not '-2'", 2},
      {"tune m.relay --db x.db --time-budget", "--time-budget needs a value", 2},
      {"tune m.relay --db x.db --frobnicate", "unknown option '--frobnicate'", 2},
      {"tune /nonexistent/m.relay --db x.db", "kiln tune: /nonexistent/m.relay:", 1},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rc = run_kiln(dir, bad[i].args);
    err = read_out(dir, "err.txt");
    ck_assert_msg(rc == bad[i].rc && strstr(err, bad[i].msg), "'%s': exit %d, stderr: %s",
                  bad[i].args, rc, err);
    free(err);
  }
  /* a target that is not this machine cannot be measured here */
  snprintf(args, sizeof args, "tune '%s/model.relay' --db '%s/t.db' --bucket x=1x2x6x6 "
           "--target 'llvm -mtriple=aarch64-linux-gnu' --quiet", dir, dir);
  rc = run_kiln(dir, args);
  err = read_out(dir, "err.txt");
  ck_assert_msg(rc == 1 && strstr(err, "is not this machine"), "exit %d: %s", rc, err);
  free(err);

  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static int no_sigint_record(void *ud, const tune_record *r) {
  int *n = ud;
  ck_assert_msg(!r->error || !strstr(r->error, "SIGINT"), "a worker died of SIGINT: %s",
                r->error);
  ++*n;
  return 0;
}

/* Ctrl-C in a terminal: SIGINT to the whole process group of a running `kiln tune` (its
 * measurement workers included): it stops after the measurement in progress, prints the
 * table marked "(interrupted)" and exits 130; every trial it counted is in the database,
 * none recorded as a worker killed by SIGINT. */
START_TEST(test_cli_interrupt) {
  char dir[64];
  strcpy(dir, "/tmp/kiln-tune-int-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char model[600], db[600], outp[600], errp[600], exe[1200];
  snprintf(model, sizeof model, "%s/model.relay", dir);
  snprintf(db, sizeof db, "%s/t.db", dir);
  snprintf(outp, sizeof outp, "%s/out.txt", dir);
  snprintf(errp, sizeof errp, "%s/err.txt", dir);
  kiln_exe(exe, sizeof exe);
  char *text = model_text();
  FILE *f = fopen(model, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  free(text);

  int fo = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644); /* there before it writes */
  int fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ck_assert(fo >= 0 && fe >= 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    setpgid(0, 0);
    if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(126);
    for (int fd = 3; fd < 1024; fd++) close(fd); /* nothing of Check's own plumbing */
    execl(exe, exe, "tune", model, "--db", db, "--bucket", "x=1x2x6x6", "--bucket",
          "x=3x2x6x6", "--trials", "100000", "--per-round", "4", (char *)NULL);
    _exit(127);
  }
  setpgid(pid, pid);
  close(fo);
  close(fe);
  /* the first progress lines, then Ctrl-C */
  bool started = false;
  for (int i = 0; i < 2400 && !started; i++) {
    char *err = kiln_test_read_file(errp, NULL);
    started = err && strstr(err, "task 8/8"); /* every kernel had its first round */
    free(err);
    if (!started) nanosleep(&(struct timespec){0, 50000000}, NULL);
  }
  if (!started) kill(-pid, SIGKILL);
  ck_assert_msg(started, "kiln tune showed no progress in 120 s");
  ck_assert_int_eq(kill(-pid, SIGINT), 0);
  int ws;
  ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
  char *out = read_out(dir, "out.txt"), *err = read_out(dir, "err.txt");
  ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 130, "status %d: %s", ws, err);
  ck_assert_msg(strstr(err, "stopping after the current measurement"), "%s", err);
  const char *head = strstr(out, "tuned 8 kernels");
  ck_assert_msg(head && strstr(out, "(interrupted)") && strstr(out, "database:"), "%s", out);
  const char *colon = strstr(head, "cores): ");
  ck_assert_ptr_nonnull(colon);
  int trials = atoi(colon + strlen("cores): "));
  ck_assert_int_ge(trials, 8);
  ck_assert_int_lt(trials, 100000);
  free(out);
  free(err);

  kiln_context *ctx = kiln_test_new_ctx();
  tune_db *d = NULL;
  ck_ok(ctx, tune_db_open(ctx, db, &d));
  int n = 0;
  int64_t skipped = -1;
  ck_ok(ctx, tune_db_list_records(d, false, 0, NULL, no_sigint_record, &n, &skipped));
  ck_assert_int_eq(skipped, 0);
  ck_assert_int_eq(n, trials);
  tune_db_close(d);
  kiln_test_done_ctx(ctx);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* An allocation failing anywhere in a small fake-measured tuning run gives KILN_ERR_NOMEM
 * with nothing leaked, or a run that succeeds where a callee recovers from the failure (a
 * task may then be left out). Every allocation early on is tried, then every 7th. */
START_TEST(test_nomem) {
  kiln_context *ctx = kiln_test_new_ctx();
  task_set ts;
  task_set_init(ctx, &ts);
  task_set_add(&ts, "a", MATMUL64, 1);
  task_set_add(&ts, "b", RELU, 2);
  tmp_db d;
  tmp_db_open(ctx, &d);
  fake fk;
  fake_init(&fk, &ts, (double[]){2, 1});
  tune_model_opts o = fake_opts(&fk);
  o.trials = 6;
  o.per_round = 2;
  o.search.measure_batch = 2;
  o.search.candidates = 3;
  long live = kiln_context_live_blocks(ctx);
  tune_model_report *r = NULL;
  long before = ctx->nalloc;
  ck_ok(ctx, tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, d.db, &o, &r));
  long total = ctx->nalloc - before;
  tune_model_report_free(r);
  int nfail = 0;
  for (long k = 1; k <= total + 1; k += k < 300 ? 1 : 7) {
    ctx->fail_at = ctx->nalloc + k;
    kiln_status st = tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, d.db, &o, &r);
    ctx->fail_at = 0;
    ck_assert_msg(st == KILN_OK || st == KILN_ERR_NOMEM, "failing allocation %ld gave %s: %s",
                  k, kiln_status_str(st), kiln_context_errmsg(ctx));
    if (st) ck_assert_ptr_null(r);
    tune_model_report_free(r);
    r = NULL;
    ck_assert_int_eq(kiln_context_live_blocks(ctx), live);
    nfail += st == KILN_ERR_NOMEM;
  }
  ck_assert_int_gt(nfail, 100);
  log_free(&fk.log);
  tmp_db_remove(&d);
  task_set_free(&ts);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* NULL arguments, bad options and real measurements for a target that is not this machine
 * are refused with messages naming the problem. */
START_TEST(test_misuse) {
  kiln_context *ctx = kiln_test_new_ctx();
  task_set ts;
  task_set_init(ctx, &ts);
  task_set_add(&ts, "mm", MATMUL64, 1);
  tune_model_opts o = tune_model_opts_default();
  tune_model_report *r = (tune_model_report *)&o; /* must be reset to NULL */
  ck_assert_int_eq(tune_model_tasks(NULL, &ts.tasks, 1, &ts.host, NULL, &o, &r), KILN_ERR_MISUSE);
  ck_assert_int_eq(tune_model_tasks(ctx, NULL, 1, &ts.host, NULL, &o, &r), KILN_ERR_MISUSE);
  ck_assert_ptr_null(r);
  ck_errmsg_has(ctx, "tune_model: NULL");
  o.trials = 0;
  ck_assert_int_eq(tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, NULL, &o, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "bad options (trials 0");
  o = tune_model_opts_default();
  o.eps_random = 2;
  ck_assert_int_eq(tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, NULL, &o, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "eps_random 2");
  o = tune_model_opts_default();
  ck_assert_int_eq(tune_model_tasks(ctx, &ts.tasks, 0, &ts.host, NULL, &o, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "bucket weight 0");
  /* a bad search option is the search's error, naming the task */
  o.search.population = 0;
  ck_assert_int_eq(tune_model_tasks(ctx, &ts.tasks, 1, &ts.host, NULL, &o, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "task 0 'mm'");
  ck_errmsg_has(ctx, "population 0");
  o = tune_model_opts_default();
  tgt_target arm;
  ck_ok(ctx, tgt_target_parse(ctx, "llvm -mtriple=aarch64-linux-gnu -mcpu=neoverse-n1", &arm));
  ck_assert_int_eq(tune_model_tasks(ctx, &ts.tasks, 1, &arm, NULL, &o, &r), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "is not this machine");
  ck_assert_int_eq(tune_model(ctx, NULL, 0, NULL, &ts.host, NULL, &o, &r), KILN_ERR_MISUSE);
  ck_assert_ptr_null(r);
  tune_model_report_free(NULL);
  task_set_free(&ts);
  kiln_test_done_ctx(ctx);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("tune_model");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_search_steps_same_candidates);
  tcase_add_test(tc, test_search_steps_limits);
  tcase_add_test(tc, test_flops);
  tcase_add_test(tc, test_scheduler_favours_gain);
  tcase_add_test(tc, test_scheduler_weights);
  tcase_add_test(tc, test_scheduler_stuck_task_fades);
  tcase_add_test(tc, test_scheduler_small_budget);
  tcase_add_test(tc, test_scheduler_reproducible);
  tcase_add_test(tc, test_time_budget);
  tcase_add_test(tc, test_exhausted_tasks);
  tcase_add_test(tc, test_crash_and_loop_recorded);
  tcase_add_test(tc, test_task_left_out);
  tcase_add_test(tc, test_nomem);
  tcase_add_test(tc, test_misuse);
  tcase_add_test(tc, test_model_tasks_weights);
  tcase_add_test(tc, test_real_tune_then_compile);
  tcase_add_test(tc, test_cli);
  tcase_add_test(tc, test_cli_interrupt);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

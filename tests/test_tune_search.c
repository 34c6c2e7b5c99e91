/* test_tune_search.c: the autotuner's search for one task (autotune/search.c). A 64x64x64
 * matmul lowered from Relay is tuned for the host with real measurements (every record in the
 * database, the best no slower than the default, its trace replays), then again on the same
 * database (warm start from the best record); broken database records are skipped and
 * counted; failing candidates are recorded and the search goes on; with a deterministic fake
 * measurement the whole multi-round search (cost model included) is reproducible. */
#include <unistd.h>

#include "lower_harness.h"
#include "autotune/search.h"

static const char *MATMUL =
    "def @main(%a: Tensor[(64, 64), float32], %b: Tensor[(64, 64), float32]) {\n"
    "  nn.matmul(%a, %b)\n"
    "}\n";

static const char *MATMUL_SMALL =
    "def @main(%a: Tensor[(1, 1), float32], %b: Tensor[(1, 1), float32]) {\n"
    "  nn.matmul(%a, %b)\n"
    "}\n";

/* ---- Fixtures ----------------------------------------------------------------------------- */

/* A task: the lowered Relay function and the host target. */
typedef struct task {
  relay_module *m;
  ir_arena *arena;
  ir_func *f;
  tgt_target host;
} task;

static task task_new(kiln_context *ctx, const char *relay_text) {
  task t;
  t.m = lh_parse(ctx, relay_text);
  t.arena = ir_arena_new(ctx);
  t.f = lh_lower(ctx, t.m, "main", t.arena);
  ck_ok(ctx, tgt_target_host(ctx, &t.host));
  return t;
}

static void task_free(task *t) {
  ir_arena_free(t->arena);
  relay_module_free(t->m);
}

/* A database in a fresh temporary folder; tmp_db_remove deletes it. */
typedef struct tmp_db {
  char dir[64];
  char path[96];
  tune_db *db;
} tmp_db;

static void tmp_db_open(kiln_context *ctx, tmp_db *d) {
  strcpy(d->dir, "/tmp/kiln-search-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(d->dir));
  snprintf(d->path, sizeof d->path, "%s/tune.db", d->dir);
  ck_ok(ctx, tune_db_open(ctx, d->path, &d->db));
}

static void tmp_db_remove(tmp_db *d) {
  tune_db_close(d->db);
  char p[128];
  static const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
  for (int i = 0; i < 4; i++) {
    snprintf(p, sizeof p, "%s%s", d->path, suffixes[i]);
    unlink(p);
  }
  rmdir(d->dir);
}

/* The traces of the measured candidates, in order (on_measured callback; plain malloc). */
typedef struct trace_log {
  int n;
  char *json[256];
  int status[256];
} trace_log;

static void log_measured(void *ud, int index, const char *json, const tune_result *r) {
  trace_log *l = ud;
  ck_assert_int_eq(index, l->n);
  ck_assert_int_lt(l->n, 256);
  l->json[l->n] = strdup(json);
  l->status[l->n++] = r->status;
}

static void log_free(trace_log *l) {
  for (int i = 0; i < l->n; i++) free(l->json[i]);
  l->n = 0;
}

/* Records of a task in the database, with their statuses counted. */
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

static uint64_t workload_hash(kiln_context *ctx, const ir_func *f) {
  ir_arena *a = ir_arena_new(ctx);
  relay_workload wk;
  ck_ok(ctx, relay_workload_key(ctx, a, f, &wk));
  ir_arena_free(a);
  return wk.hash;
}

/* Quick real measurements. */
static tune_search_opts quick_opts(void) {
  tune_search_opts o = tune_search_opts_default();
  o.measure.min_repeats = 3;
  o.measure.min_seconds = 0.002;
  o.measure.timeout_s = 30;
  o.seed = 7;
  return o;
}

/* A fake measurement: a median that depends only on the scheduled function (so runs are
 * comparable), ok unless the function's hash is in the failing residue class. */
typedef struct fake {
  int fail_mod;   /* 0: never fail; else hash % fail_mod == 0 fails */
  int fail_status;
  int calls;
} fake;

static kiln_status fake_measure(void *ud, kiln_context *ctx, const ir_func *scheduled,
                                const char *trace_json, tune_result *out) {
  fake *fk = ud;
  ck_assert_ptr_nonnull(trace_json);
  fk->calls++;
  uint64_t h;
  kiln_status st = ir_structural_hash(ctx, &scheduled->h, &h);
  if (st) return st; /* an injected allocation failure (test_nomem) */
  memset(out, 0, sizeof *out);
  if (fk->fail_mod && h % (uint64_t)fk->fail_mod == 0) {
    tune_result_fail(out, fk->fail_status, "fake failure");
    return KILN_OK;
  }
  double t = 1e-6 * (double)(1 + h % 997);
  out->status = TUNE_OK;
  out->median_s = out->min_s = out->max_s = t;
  out->repeats = 3;
  return KILN_OK;
}

/* The trace replays on the unscheduled function, and the result verifies and lowers. */
static void check_replays(kiln_context *ctx, const ir_func *f, const char *json) {
  ir_arena *a = ir_arena_new(ctx);
  sch_trace t;
  ck_ok(ctx, sch_trace_from_json(ctx, a, json, &t));
  sch_schedule *s = sch_new(ctx, f, 99);
  ck_assert_ptr_nonnull(s);
  ck_ok(ctx, sch_replay(s, &t, 0, NULL));
  ck_ok(ctx, ir_verify_func(ctx, s->func));
  ir_func *low = NULL;
  ck_ok(ctx, ir_lower_func(ctx, a, s->func, NULL, &low));
  sch_free(s);
  ir_arena_free(a);
}

/* ---- Real measurements ------------------------------------------------------------------ */

/* 12 trials on the matmul: 12 records in the database, failures counted by status, the best
 * no slower than the default (with room for timing noise), its trace replays and is the one
 * tune_db_best returns. Then a second search on the same database measures the database's
 * best trace first (warm start). */
START_TEST(test_matmul_search_and_warm_start) {
  kiln_context *ctx = kiln_test_new_ctx();
  task tk = task_new(ctx, MATMUL);
  tmp_db d;
  tmp_db_open(ctx, &d);
  trace_log log = {0};
  tune_search_opts o = quick_opts();
  o.trials = 12;
  o.measure_batch = 4;
  o.population = 4;
  o.eps_random = 0.25;
  o.on_measured = log_measured;
  o.on_measured_ud = &log;
  tune_search_result r;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, d.db, &o, &r));

  ck_assert_int_eq(r.trials, 12);
  ck_assert_int_eq(log.n, 12);
  ck_assert_int_eq(r.rounds, 3);
  int sum = 0;
  for (int i = 0; i < 5; i++) sum += r.failures[i];
  ck_assert_int_eq(sum, 12);
  ck_assert_int_eq(r.failures[TUNE_STATUS_OK], 12); /* every schedule computes the matmul */
  ck_assert_int_eq(r.warm_started, 0);
  /* every candidate is a different function */
  for (int i = 0; i < log.n; i++)
    for (int j = 0; j < i; j++) ck_assert_str_ne(log.json[i], log.json[j]);

  uint64_t hash = workload_hash(ctx, tk.f);
  record_count c = count_records(ctx, d.db, hash, tk.host.canonical);
  ck_assert_int_eq(c.n, 12);
  ck_assert_int_eq(c.by_status[TUNE_STATUS_OK], 12);

  ck_assert(r.default_median_s > 0);
  ck_assert(r.best_median_s > 0);
  ck_assert_msg(r.best_median_s <= r.default_median_s * 1.2, "best %g s, default %g s",
                r.best_median_s, r.default_median_s);
  ck_assert_ptr_nonnull(r.best_trace_json);
  check_replays(ctx, tk.f, r.best_trace_json);

  tune_record best;
  bool found = false;
  ck_ok(ctx, tune_db_best(d.db, hash, tk.host.canonical, &best, &found, NULL));
  ck_assert(found);
  ck_assert_str_eq(best.trace_json, r.best_trace_json);
  ck_assert(best.median_s == r.best_median_s);

  /* warm start: the second search measures the database's best first */
  log_free(&log);
  tune_search_result r2;
  o.trials = 3;
  o.measure_batch = 3;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, d.db, &o, &r2));
  ck_assert_int_eq(r2.trials, 3);
  ck_assert_int_ge(r2.warm_started, 1);
  ck_assert_int_eq(r2.warm_skipped, 0);
  ck_assert_int_eq(log.n, 3);
  ck_assert_str_eq(log.json[0], best.trace_json);
  c = count_records(ctx, d.db, hash, tk.host.canonical);
  ck_assert_int_eq(c.n, 15);

  tune_record_clear(ctx, &best);
  tune_search_result_clear(ctx, &r);
  tune_search_result_clear(ctx, &r2);
  ck_assert_ptr_null(r.best_trace_json);
  log_free(&log);
  tmp_db_remove(&d);
  task_free(&tk);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Two searches with the same seed, one round each, measure the same traces in the same
 * order. The measurement is the deterministic fake: the round's mutants descend from the
 * faster of the two structures' defaults (measured first), so real timings would reach the
 * choices already in the first round. */
/* A kernel too large for the interpreter's reference (2 * 256^3 = 33.5 MFLOP > 1e7): its
 * candidates are checked against the default schedule's outputs; all of them compute the
 * matmul, so all are ok (a broken reference would make them wrong_result). */
START_TEST(test_large_kernel_compiled_reference) {
  kiln_context *ctx = kiln_test_new_ctx();
  task tk = task_new(ctx,
                     "def @main(%a: Tensor[(256, 256), float32], %b: Tensor[(256, 256), float32]) {\n"
                     "  nn.matmul(%a, %b)\n"
                     "}\n");
  tune_search_opts o = quick_opts();
  o.trials = 6;
  o.measure_batch = 3;
  o.population = 3;
  o.eps_random = 0.5;
  tune_search_result r;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, NULL, &o, &r));
  ck_assert_int_eq(r.trials, 6);
  ck_assert_msg(r.failures[TUNE_STATUS_OK] == 6, "ok %d, wrong %d, build %d, run %d",
                r.failures[TUNE_STATUS_OK], r.failures[TUNE_STATUS_WRONG_RESULT],
                r.failures[TUNE_STATUS_BUILD_ERROR], r.failures[TUNE_STATUS_RUN_ERROR]);
  tune_search_result_clear(ctx, &r);
  task_free(&tk);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_same_seed_same_candidates) {
  kiln_context *ctx = kiln_test_new_ctx();
  task tk = task_new(ctx, MATMUL);
  trace_log a = {0}, b = {0};
  fake fk = {0};
  tune_search_opts o = quick_opts();
  o.trials = 5;
  o.measure_batch = 5;
  o.measure_fn = fake_measure;
  o.measure_ud = &fk;
  o.on_measured = log_measured;
  tune_search_result r;
  o.on_measured_ud = &a;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, NULL, &o, &r));
  tune_search_result_clear(ctx, &r);
  o.on_measured_ud = &b;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, NULL, &o, &r));
  tune_search_result_clear(ctx, &r);
  ck_assert_int_eq(a.n, 5);
  ck_assert_int_eq(b.n, 5);
  for (int i = 0; i < a.n; i++) {
    /* traces are long: report where they differ (check's messages have a size limit) */
    size_t k = 0;
    while (a.json[i][k] && a.json[i][k] == b.json[i][k]) k++;
    ck_assert_msg(a.json[i][k] == b.json[i][k], "candidate %d differs at character %zu: "
                  "'%.80s' vs '%.80s'", i, k, a.json[i] + (k > 40 ? k - 40 : 0),
                  b.json[i] + (k > 40 ? k - 40 : 0));
  }
  log_free(&a);
  log_free(&b);
  task_free(&tk);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A time limit no candidate can meet: every measurement is a timeout, recorded as such, and
 * the search still runs all its trials; there is no best. */
START_TEST(test_timeouts_recorded_search_goes_on) {
  kiln_context *ctx = kiln_test_new_ctx();
  task tk = task_new(ctx, MATMUL);
  tmp_db d;
  tmp_db_open(ctx, &d);
  tune_search_opts o = quick_opts();
  o.trials = 3;
  o.measure_batch = 2;
  o.measure.timeout_s = 1e-6;
  tune_search_result r;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, d.db, &o, &r));
  ck_assert_int_eq(r.trials, 3);
  ck_assert_int_eq(r.rounds, 2);
  ck_assert_int_eq(r.failures[TUNE_STATUS_TIMEOUT], 3);
  ck_assert_ptr_null(r.best_trace_json);
  ck_assert(r.best_median_s == 0 && r.default_median_s == 0);
  record_count c = count_records(ctx, d.db, workload_hash(ctx, tk.f), tk.host.canonical);
  ck_assert_int_eq(c.n, 3);
  ck_assert_int_eq(c.by_status[TUNE_STATUS_TIMEOUT], 3);
  tune_record best;
  bool found = true;
  ck_ok(ctx, tune_db_best(d.db, workload_hash(ctx, tk.f), tk.host.canonical, &best, &found,
                          NULL));
  ck_assert(!found);
  tune_search_result_clear(ctx, &r);
  tmp_db_remove(&d);
  task_free(&tk);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Fake measurements -------------------------------------------------------------------- */

/* With measurements that depend only on the candidate, a multi-round search (parents chosen
 * by median, the cost model trained after each round) is reproducible; another seed tries
 * other candidates. The best is the fastest of those measured. */
START_TEST(test_reproducible_over_rounds) {
  kiln_context *ctx = kiln_test_new_ctx();
  task tk = task_new(ctx, MATMUL);
  fake fk = {0};
  trace_log a = {0}, b = {0}, c = {0};
  tune_search_opts o = quick_opts();
  o.trials = 12;
  o.measure_batch = 4;
  o.measure_fn = fake_measure;
  o.measure_ud = &fk;
  o.on_measured = log_measured;
  tune_search_result ra, rb, rc;
  o.on_measured_ud = &a;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, NULL, &o, &ra));
  o.on_measured_ud = &b;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, NULL, &o, &rb));
  o.seed = 8;
  o.on_measured_ud = &c;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, NULL, &o, &rc));
  ck_assert_int_eq(fk.calls, 36);
  ck_assert_int_eq(ra.trials, 12);
  ck_assert_int_eq(ra.rounds, 3);
  ck_assert_int_eq(a.n, 12);
  ck_assert_int_eq(b.n, 12);
  for (int i = 0; i < a.n; i++) ck_assert_str_eq(a.json[i], b.json[i]);
  ck_assert_str_eq(ra.best_trace_json, rb.best_trace_json);
  ck_assert(ra.best_median_s == rb.best_median_s);
  /* the first candidate is the default schedule whatever the seed; the rest differ */
  ck_assert_str_eq(a.json[0], c.json[0]);
  int same = 0;
  for (int i = 1; i < a.n; i++) same += strcmp(a.json[i], c.json[i]) == 0;
  ck_assert_int_lt(same, a.n - 1);
  ck_assert(ra.default_median_s > 0);
  ck_assert(ra.best_median_s <= ra.default_median_s);
  check_replays(ctx, tk.f, ra.best_trace_json);
  tune_search_result_clear(ctx, &ra);
  tune_search_result_clear(ctx, &rb);
  tune_search_result_clear(ctx, &rc);
  log_free(&a);
  log_free(&b);
  log_free(&c);
  task_free(&tk);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Candidates that fail (a third of them, as wrong results) are counted and recorded with
 * their status; the search measures all its trials and the best is an ok one. */
START_TEST(test_failures_counted) {
  kiln_context *ctx = kiln_test_new_ctx();
  task tk = task_new(ctx, MATMUL);
  tmp_db d;
  tmp_db_open(ctx, &d);
  fake fk = {.fail_mod = 2, .fail_status = TUNE_WRONG_RESULT};
  trace_log log = {0};
  tune_search_opts o = quick_opts();
  o.trials = 12;
  o.measure_batch = 4;
  o.measure_fn = fake_measure;
  o.measure_ud = &fk;
  o.on_measured = log_measured;
  o.on_measured_ud = &log;
  tune_search_result r;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, d.db, &o, &r));
  ck_assert_int_eq(r.trials, 12);
  int wrong = 0;
  for (int i = 0; i < log.n; i++) wrong += log.status[i] == TUNE_WRONG_RESULT;
  ck_assert_int_gt(wrong, 0); /* the test would not test anything otherwise */
  ck_assert_int_eq(r.failures[TUNE_STATUS_WRONG_RESULT], wrong);
  ck_assert_int_eq(r.failures[TUNE_STATUS_OK], 12 - wrong);
  record_count c = count_records(ctx, d.db, workload_hash(ctx, tk.f), tk.host.canonical);
  ck_assert_int_eq(c.n, 12);
  ck_assert_int_eq(c.by_status[TUNE_STATUS_WRONG_RESULT], wrong);
  ck_assert_ptr_nonnull(r.best_trace_json);
  bool best_is_ok = false;
  for (int i = 0; i < log.n; i++)
    if (strcmp(log.json[i], r.best_trace_json) == 0) best_is_ok = log.status[i] == TUNE_OK;
  ck_assert(best_is_ok);
  tune_search_result_clear(ctx, &r);
  log_free(&log);
  tmp_db_remove(&d);
  task_free(&tk);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Database records whose trace is not a trace, or names a block the function does not have,
 * rank best but are skipped and counted; the search warm-starts from the next good one. */
START_TEST(test_broken_records_skipped) {
  kiln_context *ctx = kiln_test_new_ctx();
  task tk = task_new(ctx, MATMUL);
  tmp_db d;
  tmp_db_open(ctx, &d);
  uint64_t hash = workload_hash(ctx, tk.f);
  ck_ok(ctx, tune_db_add_workload(d.db, hash, "matmul", "text", NULL));
  ck_ok(ctx, tune_db_add_target(d.db, tk.host.canonical, tk.host.cpu, tk.host.features, NULL));

  /* a good trace: the default schedule with its decisions re-sampled (all of them: a tile
   * re-sampled alone would leave the parallel split of the fused tile loop a decision for
   * the old extent) */
  sch_target_info ti;
  sch_target_info_from(&tk.host, &ti);
  sch_schedule *def = sch_new(ctx, tk.f, 1);
  ck_ok(ctx, sch_apply_default_rules(def, &ti));
  int drops[64], ndrops = 0;
  for (int i = 0; i < def->trace.ninsts && ndrops < 64; i++)
    if (def->trace.insts[i].ndecision >= 0) drops[ndrops++] = i;
  ck_assert_int_gt(ndrops, 0);
  sch_schedule *good = sch_new(ctx, tk.f, 5);
  ck_ok(ctx, sch_replay(good, &def->trace, ndrops, drops));
  char *good_json = NULL, *def_json = NULL;
  size_t good_len, def_len;
  ck_ok(ctx, sch_trace_to_json(ctx, &good->trace, &good_json, &good_len));
  ck_ok(ctx, sch_trace_to_json(ctx, &def->trace, &def_json, &def_len));
  /* a trace that parses but names a block that is not there */
  const char *blk = "\"get_block\"";
  ck_assert_ptr_nonnull(strstr(def_json, blk));
  char *renamed = malloc(def_len + 64);
  const char *name = strstr(def_json, "\"matmul");
  if (!name) name = strstr(def_json, "\"T_");
  ck_assert_msg(name != NULL, "no block name found in %s", def_json);
  size_t at = (size_t)(name - def_json) + 1;
  memcpy(renamed, def_json, at);
  strcpy(renamed + at, "no_such_block_");
  strcat(renamed, def_json + at);

  tune_record rec = {.workload_hash = hash, .target = tk.host.canonical, .status = TUNE_STATUS_OK,
                     .repeats = 3};
  rec.trace_json = "{\"version\": 1, \"insts\": [{\"no\": \"such\"}]}";
  rec.median_s = 1e-9;
  ck_ok(ctx, tune_db_add_record(d.db, &rec, NULL));
  rec.trace_json = renamed;
  rec.median_s = 2e-9;
  ck_ok(ctx, tune_db_add_record(d.db, &rec, NULL));
  rec.trace_json = good_json;
  rec.median_s = 1.0;
  ck_ok(ctx, tune_db_add_record(d.db, &rec, NULL));

  fake fk = {0};
  trace_log log = {0};
  tune_search_opts o = quick_opts();
  o.trials = 2;
  o.measure_batch = 2;
  o.measure_fn = fake_measure;
  o.measure_ud = &fk;
  o.on_measured = log_measured;
  o.on_measured_ud = &log;
  tune_search_result r;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, d.db, &o, &r));
  ck_assert_int_eq(r.warm_skipped, 2);
  ck_assert_int_eq(r.warm_started, 1);
  ck_assert_int_eq(log.n, 2);
  ck_assert_str_eq(log.json[0], good_json);
  ck_assert_str_eq(log.json[1], def_json); /* then the default */
  ck_assert(r.default_median_s > 0);

  tune_search_result_clear(ctx, &r);
  log_free(&log);
  free(renamed);
  ir_free(ctx, good_json, good_len + 1);
  ir_free(ctx, def_json, def_len + 1);
  sch_free(good);
  sch_free(def);
  tmp_db_remove(&d);
  task_free(&tk);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The decision of instruction `kind` number `nth` (0-based) in a trace's JSON, as parsed back;
 * for an annotate its integer literal. */
static int64_t decision_in(kiln_context *ctx, const char *json, int kind, int nth, int which) {
  ir_arena *a = ir_arena_new(ctx);
  sch_trace t;
  ck_ok(ctx, sch_trace_from_json(ctx, a, json, &t));
  int64_t v = INT64_MIN;
  for (int i = 0, k = 0; i < t.ninsts && v == INT64_MIN; i++) {
    if (t.insts[i].kind != kind || k++ != nth) continue;
    v = kind == SCH_INST_ANNOTATE ? t.insts[i].inputs[2].i : t.insts[i].decision[which];
  }
  ir_arena_free(a);
  ck_assert_msg(v != INT64_MIN, "no instruction %s #%d", sch_inst_name(kind), nth);
  return v;
}

/* The decisions the tile rule adds (parallel split, packing location, the unroll knob) are
 * explored: over 40 trials with a deterministic fake measurement, each takes other values
 * than its default in some measured candidates of the default structure, the variants'
 * defaults are measured right after the default and candidates of the cache-blocked variant
 * later too, and every measured trace replays. */
START_TEST(test_new_decisions_explored) {
  kiln_context *ctx = kiln_test_new_ctx();
  task tk = task_new(ctx, MATMUL);
  fake fk = {0};
  trace_log log = {0};
  tune_search_opts o = quick_opts();
  o.trials = 40;
  o.measure_batch = 8;
  o.measure_fn = fake_measure;
  o.measure_ud = &fk;
  o.on_measured = log_measured;
  o.on_measured_ud = &log;
  tune_search_result r;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, NULL, &o, &r));
  ck_assert_int_eq(log.n, 40);
  /* the default (first measured): all parallel, no packing, no unrolling */
  int64_t par0 = decision_in(ctx, log.json[0], SCH_INST_SAMPLE_PERFECT_TILE, 2, 1);
  ck_assert_int_eq(par0, 1);
  ck_assert_int_eq(decision_in(ctx, log.json[0], SCH_INST_SAMPLE_COMPUTE_LOCATION, 0, 0), -2);
  ck_assert_int_eq(decision_in(ctx, log.json[0], SCH_INST_ANNOTATE, 0, 0), 0);
  /* the variants' defaults next: the cache-blocked one (no local accumulator), then the
   * panel one (B packed per parallel chunk, a chunk being a column panel of 8 row tiles) */
  ck_assert_ptr_null(strstr(log.json[1], "\"cache_write\""));
  ck_assert_ptr_nonnull(strstr(log.json[2], "\"cache_write\""));
  ck_assert_int_eq(decision_in(ctx, log.json[2], SCH_INST_SAMPLE_COMPUTE_LOCATION, 0, 0), 0);
  ck_assert_int_eq(decision_in(ctx, log.json[2], SCH_INST_SAMPLE_PERFECT_TILE, 2, 1), 8);
  int par = 0, packed = 0, unrolled = 0, variant = 0;
  for (int i = 1; i < log.n; i++) {
    check_replays(ctx, tk.f, log.json[i]);
    /* the cache-blocked variant (no local accumulator) has other decision points */
    if (!strstr(log.json[i], "\"cache_write\"")) {
      variant++;
      continue;
    }
    par += decision_in(ctx, log.json[i], SCH_INST_SAMPLE_PERFECT_TILE, 2, 1) != 1;
    packed += decision_in(ctx, log.json[i], SCH_INST_SAMPLE_COMPUTE_LOCATION, 0, 0) != -2;
    unrolled += decision_in(ctx, log.json[i], SCH_INST_ANNOTATE, 0, 0) != 0;
  }
  ck_assert_int_gt(variant, 0);
  ck_assert_int_gt(par, 0);
  ck_assert_int_gt(packed, 0);
  ck_assert_int_gt(unrolled, 0);
  tune_search_result_clear(ctx, &r);
  log_free(&log);
  task_free(&tk);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A small space runs out: the search stops early when a round finds nothing new. A 1x1x1
 * matmul's space has few points (two structures, packing locations, the unroll knob: fewer
 * than 100 schedules), each measured once; a function whose default schedule samples nothing
 * is a space of one point. */
START_TEST(test_exhausted_space) {
  kiln_context *ctx = kiln_test_new_ctx();
  task tk = task_new(ctx, MATMUL_SMALL);
  fake fk = {0};
  trace_log log = {0};
  tune_search_opts o = quick_opts();
  o.trials = 100;
  o.measure_batch = 4;
  o.measure_fn = fake_measure;
  o.measure_ud = &fk;
  o.on_measured = log_measured;
  o.on_measured_ud = &log;
  tune_search_result r;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, NULL, &o, &r));
  ck_assert_int_gt(r.trials, 4);
  ck_assert_int_lt(r.trials, 100);
  ck_assert_int_eq(log.n, r.trials);
  ck_assert_int_gt(r.duplicates, 0);
  for (int i = 0; i < log.n; i++)
    for (int j = 0; j < i; j++) ck_assert_str_ne(log.json[i], log.json[j]);
  tune_search_result_clear(ctx, &r);
  log_free(&log);
  task_free(&tk);

  tk = task_new(ctx, "def @main(%a: Tensor[(3), float32]) {\n  negative(%a)\n}\n");
  o.on_measured = NULL;
  o.trials = 5;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, NULL, &o, &r));
  ck_assert_int_eq(r.trials, 1);
  ck_assert_int_eq(r.rounds, 1);
  ck_assert(r.default_median_s > 0);
  ck_assert(r.best_median_s == r.default_median_s);
  tune_search_result_clear(ctx, &r);
  task_free(&tk);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* An allocation failing anywhere in a (small, fake-measured) search gives KILN_ERR_NOMEM with
 * nothing leaked, or a search that succeeds where a callee recovers from the failure (the
 * default rules treat some failed queries as a rule not applying). The sweep tries every
 * allocation early on, then every 13th, up to one past the last. */
START_TEST(test_nomem) {
  kiln_context *ctx = kiln_test_new_ctx();
  task tk = task_new(ctx, MATMUL);
  tmp_db d;
  tmp_db_open(ctx, &d);
  fake fk = {0};
  tune_search_opts o = quick_opts();
  o.trials = 3;
  o.measure_batch = 2;
  o.candidates = 3;
  o.measure_fn = fake_measure;
  o.measure_ud = &fk;
  long live = kiln_context_live_blocks(ctx);
  tune_search_result r;
  long before = ctx->nalloc;
  ck_ok(ctx, tune_search(ctx, tk.f, &tk.host, d.db, &o, &r));
  long total = ctx->nalloc - before;
  tune_search_result_clear(ctx, &r);
  int nfail = 0;
  kiln_status st = KILN_OK;
  for (long k = 1; k <= total + 1; k += k < 400 ? 1 : 13) {
    ctx->fail_at = ctx->nalloc + k;
    st = tune_search(ctx, tk.f, &tk.host, d.db, &o, &r);
    ctx->fail_at = 0;
    ck_assert_msg(st == KILN_OK || st == KILN_ERR_NOMEM, "failing allocation %ld gave %s: %s",
                  k, kiln_status_str(st), kiln_context_errmsg(ctx));
    if (st) ck_assert_ptr_null(r.best_trace_json);
    tune_search_result_clear(ctx, &r);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), live);
    nfail += st == KILN_ERR_NOMEM;
  }
  ck_assert_int_gt(nfail, 300);
  tmp_db_remove(&d);
  task_free(&tk);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* NULL arguments and bad options are misuse errors naming the problem. */
START_TEST(test_misuse) {
  kiln_context *ctx = kiln_test_new_ctx();
  task tk = task_new(ctx, MATMUL);
  tune_search_opts o = quick_opts();
  tune_search_result r;
  ck_assert_int_eq(tune_search(NULL, tk.f, &tk.host, NULL, &o, &r), KILN_ERR_MISUSE);
  ck_assert_int_eq(tune_search(ctx, NULL, &tk.host, NULL, &o, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "tune_search: NULL");
  ck_assert_int_eq(tune_search(ctx, tk.f, &tk.host, NULL, NULL, &r), KILN_ERR_MISUSE);
  o.trials = 0;
  ck_assert_int_eq(tune_search(ctx, tk.f, &tk.host, NULL, &o, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "bad options for 'main' (trials 0");
  o = quick_opts();
  o.eps_random = 1.5;
  ck_assert_int_eq(tune_search(ctx, tk.f, &tk.host, NULL, &o, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "eps_random 1.5");
  o = quick_opts();
  o.measure_batch = 0;
  ck_assert_int_eq(tune_search(ctx, tk.f, &tk.host, NULL, &o, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "measure_batch 0");
  o = quick_opts();
  o.build_threads = -1;
  ck_assert_int_eq(tune_search(ctx, tk.f, &tk.host, NULL, &o, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "build_threads -1");
  o = quick_opts();
  o.slow_factor = -2;
  ck_assert_int_eq(tune_search(ctx, tk.f, &tk.host, NULL, &o, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "slow_factor -2");
  ck_assert_ptr_null(r.best_trace_json);
  task_free(&tk);
  kiln_test_done_ctx(ctx);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("tune_search");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_matmul_search_and_warm_start);
  tcase_add_test(tc, test_large_kernel_compiled_reference);
  tcase_add_test(tc, test_same_seed_same_candidates);
  tcase_add_test(tc, test_timeouts_recorded_search_goes_on);
  tcase_add_test(tc, test_reproducible_over_rounds);
  tcase_add_test(tc, test_failures_counted);
  tcase_add_test(tc, test_broken_records_skipped);
  tcase_add_test(tc, test_exhausted_space);
  tcase_add_test(tc, test_new_decisions_explored);
  tcase_add_test(tc, test_nomem);
  tcase_add_test(tc, test_misuse);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

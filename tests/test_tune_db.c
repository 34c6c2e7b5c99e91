/* test_tune_db.c: the tuning database (autotune/database.c): create/reopen, every query, best
 * among ok records, 64-bit hashes >= 2^63, migration from a hand-made version-0 file, refusal
 * of newer and corrupted files, two forked writers, export/import, merge, prune, and clean
 * NOMEM failures. Each test works in its own temporary directory. */
#include <dirent.h>
#include <math.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "autotune/database.h"
#include "test_util.h"

/* ---- Helpers ----------------------------------------------------------------------------- */

static char tmpdir[256];

/* A fresh temporary directory for the test (removed by rm_tmpdir). */
static void make_tmpdir(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln_tunedb_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_tmpdir(void) {
  DIR *d = opendir(tmpdir);
  if (!d) return;
  struct dirent *e;
  char p[512];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(tmpdir);
}

/* The path of file `name` in the test's directory (a static buffer per call site slot). */
static const char *tpath(const char *name) {
  static char bufs[8][512];
  static int next;
  char *b = bufs[next++ % 8];
  snprintf(b, 512, "%s/%s", tmpdir, name);
  return b;
}

/* Runs raw SQL on a file (for hand-made old, newer and damaged databases). */
static void raw_sql(const char *path, const char *sql) {
  sqlite3 *h;
  ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
  char *err = NULL;
  int rc = sqlite3_exec(h, sql, NULL, NULL, &err);
  ck_assert_msg(rc == SQLITE_OK, "raw SQL failed: %s", err ? err : "?");
  sqlite3_close(h);
}

/* The first column of the first row of a query on a file, as text (static buffer). */
static const char *raw_query(const char *path, const char *sql) {
  static char out[256];
  sqlite3 *h;
  sqlite3_stmt *st;
  ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
  ck_assert_int_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
  out[0] = 0;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
    snprintf(out, sizeof out, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

#define BIG_HASH 0xfedcba9876543210ull  /* >= 2^63: negative as int64 */
#define BIG_SEED 0x8000000000000001ull
#define TGT "llvm -mtriple=x86_64-linux-gnu -mcpu=skylake"

/* A record for the big-hash workload on TGT with the given median and status; fixed
 * provenance so that equal arguments give identical records. */
static tune_record rec(double median, tune_status status, const char *trace) {
  return (tune_record){
      .workload_hash = BIG_HASH,
      .target = TGT,
      .trace_json = trace,
      .median_s = median,
      .min_s = median * 0.9,
      .max_s = median * 1.1,
      .stddev_s = median * 0.01,
      .repeats = 7,
      .status = status,
      .error = status == TUNE_STATUS_OK ? "" : "it broke",
      .seed = BIG_SEED,
      .kiln_version = "0.5.0",
      .host = "hostA",
      .time = 1000,
  };
}

/* A database at `name` with the big-hash workload and TGT registered. */
static tune_db *open_fresh(kiln_context *ctx, const char *name) {
  tune_db *db;
  ck_ok(ctx, tune_db_open(ctx, tpath(name), &db));
  ck_ok(ctx, tune_db_add_workload(db, BIG_HASH, "dense 64x64x64 f32", "primfunc main() {}",
                                  NULL));
  ck_ok(ctx, tune_db_add_target(db, TGT, "skylake", "+avx2,+fma", NULL));
  return db;
}

static void add(kiln_context *ctx, tune_db *db, tune_record r) {
  ck_ok(ctx, tune_db_add_record(db, &r, NULL));
}

/* Collects listed records: count, sum of medians, last copy of some fields. */
typedef struct collected {
  int n;
  double median_sum;
  double medians[64];
  char status[64][16];
  int64_t times[64];
} collected;

static int collect(void *ud, const tune_record *r) {
  collected *c = ud;
  if (c->n < 64) {
    c->medians[c->n] = r->median_s;
    snprintf(c->status[c->n], 16, "%s", tune_status_name(r->status));
    c->times[c->n] = r->time;
  }
  c->n++;
  c->median_sum += r->median_s;
  return 0;
}

static int count_all(kiln_context *ctx, tune_db *db) {
  collected c = {0};
  ck_ok(ctx, tune_db_list_records(db, false, 0, NULL, collect, &c, NULL));
  return c.n;
}

/* ---- Basics ------------------------------------------------------------------------------ */

START_TEST(test_status_names) {
  tune_status s;
  for (int i = TUNE_STATUS_OK; i <= TUNE_STATUS_WRONG_RESULT; i++) {
    ck_assert(tune_status_parse(tune_status_name((tune_status)i), &s));
    ck_assert_int_eq(s, i);
  }
  ck_assert_str_eq(tune_status_name(TUNE_STATUS_TIMEOUT), "timeout");
  ck_assert(!tune_status_parse("exploded", &s));
  ck_assert(!tune_status_parse(NULL, &s));
  ck_assert_str_eq(tune_status_name((tune_status)99), "?");
}
END_TEST

static int count_workload(void *ud, const tune_workload *w) {
  ck_assert(w->hash == BIG_HASH);
  ck_assert_str_eq(w->summary, "dense 64x64x64 f32");
  ck_assert_str_eq(w->func_text, "primfunc main() {}");
  (*(int *)ud)++;
  return 0;
}

static int count_target(void *ud, const tune_target *t) {
  ck_assert_str_eq(t->canonical, TGT);
  ck_assert_str_eq(t->cpu, "skylake");
  ck_assert_str_eq(t->features, "+avx2,+fma");
  (*(int *)ud)++;
  return 0;
}

START_TEST(test_create_reopen) {
  make_tmpdir();
  kiln_context *ctx = kiln_test_new_ctx();
  tune_db *db = open_fresh(ctx, "a.db");
  ck_assert_int_eq(tune_db_schema_version(db), TUNE_DB_SCHEMA_VERSION);
  /* Adding the same workload / target again returns the same id and keeps the first text. */
  int64_t id1, id2;
  ck_ok(ctx, tune_db_add_workload(db, BIG_HASH, "other", "other", &id1));
  ck_ok(ctx, tune_db_add_workload(db, BIG_HASH, "again", "again", &id2));
  ck_assert_int_eq(id1, id2);
  ck_ok(ctx, tune_db_add_target(db, TGT, "x", "y", &id1));
  ck_ok(ctx, tune_db_add_target(db, TGT, "skylake", "+avx2,+fma", &id2));
  ck_assert_int_eq(id1, id2);
  add(ctx, db, rec(1.0, TUNE_STATUS_OK, "{\"insts\":[]}"));
  tune_db_close(db);

  ck_ok(ctx, tune_db_open(ctx, tpath("a.db"), &db));
  int nw = 0, nt = 0;
  ck_ok(ctx, tune_db_list_workloads(db, count_workload, &nw));
  ck_ok(ctx, tune_db_list_targets(db, count_target, &nt));
  ck_assert_int_eq(nw, 1);
  ck_assert_int_eq(nt, 1);
  ck_assert_int_eq(count_all(ctx, db), 1);
  tune_db_close(db);
  /* The file is in WAL mode, stores the hash as its int64 bit pattern, is at our version. */
  ck_assert_str_eq(raw_query(tpath("a.db"), "PRAGMA journal_mode"), "wal");
  ck_assert_str_eq(raw_query(tpath("a.db"), "SELECT hash FROM workloads"),
                   "-81985529216486896");
  ck_assert_int_eq(atoi(raw_query(tpath("a.db"),
                                  "SELECT value FROM meta WHERE key = 'schema_version'")),
                   TUNE_DB_SCHEMA_VERSION);
  kiln_test_done_ctx(ctx);
  rm_tmpdir();
}
END_TEST

START_TEST(test_add_record_errors) {
  make_tmpdir();
  kiln_context *ctx = kiln_test_new_ctx();
  tune_db *db = open_fresh(ctx, "a.db");
  tune_record r = rec(1.0, TUNE_STATUS_OK, "{}");
  r.workload_hash = 0x1234;
  ck_assert_int_eq(tune_db_add_record(db, &r, NULL), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "unknown workload 0000000000001234");
  r = rec(1.0, TUNE_STATUS_OK, "{}");
  r.target = "llvm -mcpu=nowhere";
  ck_assert_int_eq(tune_db_add_record(db, &r, NULL), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "unknown target 'llvm -mcpu=nowhere'");
  r = rec(1.0, TUNE_STATUS_OK, "{\"insts\": [");
  ck_assert_int_eq(tune_db_add_record(db, &r, NULL), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "trace is not valid JSON");
  r = rec(NAN, TUNE_STATUS_OK, "{}");
  ck_assert_int_eq(tune_db_add_record(db, &r, NULL), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "non-finite");
  r = rec(1.0, (tune_status)42, "{}");
  ck_assert_int_eq(tune_db_add_record(db, &r, NULL), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "unknown status 42");
  ck_assert_int_eq(tune_db_add_workload(db, 1, NULL, "x", NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(tune_db_add_target(db, "", "", "", NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(count_all(ctx, db), 0);
  /* A NULL handle is a misuse error, not a crash. */
  ck_assert_int_eq(tune_db_add_record(NULL, &r, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(tune_db_open(ctx, NULL, &db), KILN_ERR_MISUSE);
  tune_db_close(db);
  kiln_test_done_ctx(ctx);
  rm_tmpdir();
}
END_TEST

START_TEST(test_best) {
  make_tmpdir();
  kiln_context *ctx = kiln_test_new_ctx();
  tune_db *db = open_fresh(ctx, "a.db");
  ck_ok(ctx, tune_db_add_target(db, "llvm -mcpu=other", "", "", NULL));
  add(ctx, db, rec(3.0, TUNE_STATUS_OK, "{\"n\":3}"));
  add(ctx, db, rec(0.5, TUNE_STATUS_RUN_ERROR, "{\"n\":0}"));  /* faster but failed */
  add(ctx, db, rec(0.25, TUNE_STATUS_WRONG_RESULT, "{\"n\":-1}"));
  add(ctx, db, rec(1.0, TUNE_STATUS_OK, "{\"n\":1}"));
  add(ctx, db, rec(2.0, TUNE_STATUS_OK, "{\"n\":2}"));
  tune_record other = rec(0.1, TUNE_STATUS_OK, "{\"n\":9}");
  other.target = "llvm -mcpu=other";
  add(ctx, db, other);
  /* Provenance defaults: this kiln's version, this host, now. */
  tune_record d = rec(4.0, TUNE_STATUS_OK, "{}");
  d.kiln_version = NULL;
  d.host = NULL;
  d.time = 0;
  int64_t did;
  ck_ok(ctx, tune_db_add_record(db, &d, &did));

  tune_record best;
  bool found;
  int64_t skipped = -1;
  ck_ok(ctx, tune_db_best(db, BIG_HASH, TGT, &best, &found, &skipped));
  ck_assert(found);
  ck_assert_int_eq(skipped, 0);
  ck_assert_double_eq(best.median_s, 1.0);
  ck_assert_str_eq(best.trace_json, "{\"n\":1}");
  ck_assert_str_eq(best.target, TGT);
  ck_assert(best.workload_hash == BIG_HASH);
  ck_assert(best.seed == BIG_SEED);
  ck_assert_int_eq(best.status, TUNE_STATUS_OK);
  ck_assert_int_eq(best.repeats, 7);
  ck_assert_double_eq(best.min_s, 0.9);
  ck_assert_str_eq(best.host, "hostA");
  ck_assert_int_eq(best.time, 1000);
  tune_record_clear(ctx, &best);
  ck_assert_ptr_null(best.trace_json);

  ck_ok(ctx, tune_db_best(db, BIG_HASH, "llvm -mcpu=other", &best, &found, NULL));
  ck_assert(found);
  ck_assert_double_eq(best.median_s, 0.1);
  tune_record_clear(ctx, &best);
  /* Unknown target or workload: nothing found, no error. */
  ck_ok(ctx, tune_db_best(db, BIG_HASH, "llvm -mcpu=none", &best, &found, NULL));
  ck_assert(!found);
  ck_ok(ctx, tune_db_best(db, 7, TGT, &best, &found, NULL));
  ck_assert(!found);

  /* The defaulted record got kiln_version(), a host name and a current time. */
  collected c = {0};
  ck_ok(ctx, tune_db_list_records(db, true, BIG_HASH, TGT, collect, &c, NULL));
  ck_assert_int_eq(c.n, 6);
  ck_assert_int_gt(c.times[5], 1600000000);
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT kiln_version || '|' || host FROM records WHERE id = %lld",
           (long long)did);
  tune_db_close(db);
  char expect[64];
  snprintf(expect, sizeof expect, "%s|", kiln_version());
  const char *prov = raw_query(tpath("a.db"), sql);
  ck_assert_msg(strncmp(prov, expect, strlen(expect)) == 0 && strlen(prov) > strlen(expect),
                "provenance '%s'", prov);
  kiln_test_done_ctx(ctx);
  rm_tmpdir();
}
END_TEST

static int stop_after_two(void *ud, const tune_record *r) {
  collect(ud, r);
  return ((collected *)ud)->n == 2;
}

START_TEST(test_list_filters) {
  make_tmpdir();
  kiln_context *ctx = kiln_test_new_ctx();
  tune_db *db = open_fresh(ctx, "a.db");
  ck_ok(ctx, tune_db_add_workload(db, 5, "relu 8 f32", "primfunc relu() {}", NULL));
  ck_ok(ctx, tune_db_add_target(db, "llvm -mcpu=other", "", "", NULL));
  add(ctx, db, rec(1.0, TUNE_STATUS_OK, "{}"));
  add(ctx, db, rec(2.0, TUNE_STATUS_TIMEOUT, "{}"));
  tune_record r = rec(4.0, TUNE_STATUS_OK, "{}");
  r.workload_hash = 5;
  add(ctx, db, r);
  r.target = "llvm -mcpu=other";
  r.median_s = 8.0;
  add(ctx, db, r);
  collected c = {0};
  ck_ok(ctx, tune_db_list_records(db, false, 0, NULL, collect, &c, NULL));
  ck_assert_int_eq(c.n, 4);
  ck_assert_double_eq(c.median_sum, 15.0);
  ck_assert_str_eq(c.status[1], "timeout");
  c = (collected){0};
  ck_ok(ctx, tune_db_list_records(db, true, BIG_HASH, NULL, collect, &c, NULL));
  ck_assert_double_eq(c.median_sum, 3.0);
  c = (collected){0};
  ck_ok(ctx, tune_db_list_records(db, true, 5, NULL, collect, &c, NULL));
  ck_assert_double_eq(c.median_sum, 12.0);
  c = (collected){0};
  ck_ok(ctx, tune_db_list_records(db, false, 0, "llvm -mcpu=other", collect, &c, NULL));
  ck_assert_double_eq(c.median_sum, 8.0);
  c = (collected){0};
  ck_ok(ctx, tune_db_list_records(db, true, 5, TGT, collect, &c, NULL));
  ck_assert_double_eq(c.median_sum, 4.0);
  c = (collected){0};
  ck_ok(ctx, tune_db_list_records(db, false, 0, NULL, stop_after_two, &c, NULL));
  ck_assert_int_eq(c.n, 2);
  ck_assert_int_eq(tune_db_list_records(db, false, 0, NULL, NULL, NULL, NULL), KILN_ERR_MISUSE);
  tune_db_close(db);
  kiln_test_done_ctx(ctx);
  rm_tmpdir();
}
END_TEST

/* ---- Schema versions --------------------------------------------------------------------- */

/* The version-0 layout, written here by hand as an old kiln would have. */
static const char v0_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value);"
    "INSERT INTO meta VALUES('schema_version', 0);"
    "CREATE TABLE workloads(id INTEGER PRIMARY KEY, hash INTEGER NOT NULL UNIQUE,"
    "  summary TEXT NOT NULL, func_text TEXT NOT NULL);"
    "CREATE TABLE targets(id INTEGER PRIMARY KEY, canonical TEXT NOT NULL UNIQUE);"
    "CREATE TABLE records(id INTEGER PRIMARY KEY, workload_id INTEGER NOT NULL,"
    "  target_id INTEGER NOT NULL, trace_json TEXT NOT NULL, median_s REAL,"
    "  status TEXT NOT NULL, error TEXT, time INTEGER);"
    "INSERT INTO workloads VALUES(1, -81985529216486896, 'old', 'primfunc old() {}');"
    "INSERT INTO targets VALUES(1, 'llvm -mcpu=skylake -mtriple=x86_64-linux-gnu');"
    "INSERT INTO targets VALUES(2, '" TGT "');"
    "INSERT INTO records VALUES(1, 1, 2, '{\"old\":2}', 0.002, 'ok', '', 55);"
    "INSERT INTO records VALUES(2, 1, 2, '{\"old\":1}', 0.001, 'ok', NULL, NULL);"
    "INSERT INTO records VALUES(3, 1, 2, '{}', 0.0001, 'build_error', 'no', 56);";

START_TEST(test_migrate_v0) {
  make_tmpdir();
  kiln_context *ctx = kiln_test_new_ctx();
  raw_sql(tpath("old.db"), v0_sql);
  tune_db *db;
  ck_ok(ctx, tune_db_open(ctx, tpath("old.db"), &db));
  ck_assert_int_eq(tune_db_schema_version(db), TUNE_DB_SCHEMA_VERSION);
  tune_record best;
  bool found;
  int64_t skipped;
  ck_ok(ctx, tune_db_best(db, BIG_HASH, TGT, &best, &found, &skipped));
  ck_assert(found);
  ck_assert_int_eq(skipped, 0);
  ck_assert_double_eq(best.median_s, 0.001);
  ck_assert_double_eq(best.min_s, 0.001);  /* migrated: min = max = median, stddev 0 */
  ck_assert_double_eq(best.max_s, 0.001);
  ck_assert_double_eq(best.stddev_s, 0.0);
  ck_assert_int_eq(best.repeats, 1);
  ck_assert_str_eq(best.trace_json, "{\"old\":1}");
  tune_record_clear(ctx, &best);
  /* New columns work after migration. */
  add(ctx, db, rec(0.0005, TUNE_STATUS_OK, "{\"new\":1}"));
  ck_ok(ctx, tune_db_best(db, BIG_HASH, TGT, &best, &found, NULL));
  ck_assert_str_eq(best.trace_json, "{\"new\":1}");
  ck_assert(best.seed == BIG_SEED);
  tune_record_clear(ctx, &best);
  ck_ok(ctx, tune_db_add_target(db, "llvm -mcpu=znver3", "znver3", "+avx2", NULL));
  tune_db_close(db);
  ck_assert_int_eq(atoi(raw_query(tpath("old.db"),
                                  "SELECT value FROM meta WHERE key = 'schema_version'")),
                   TUNE_DB_SCHEMA_VERSION);
  ck_assert_str_eq(raw_query(tpath("old.db"),
                             "SELECT name FROM sqlite_master WHERE type = 'index' AND "
                             "name = 'records_lookup'"),
                   "records_lookup");
  /* Reopening a migrated file changes nothing. */
  ck_ok(ctx, tune_db_open(ctx, tpath("old.db"), &db));
  ck_assert_int_eq(count_all(ctx, db), 4);
  tune_db_close(db);
  kiln_test_done_ctx(ctx);
  rm_tmpdir();
}
END_TEST

START_TEST(test_newer_version_refused) {
  make_tmpdir();
  kiln_context *ctx = kiln_test_new_ctx();
  raw_sql(tpath("new.db"), v0_sql);
  raw_sql(tpath("new.db"), "UPDATE meta SET value = 99 WHERE key = 'schema_version'");
  tune_db *db = NULL;
  ck_assert_int_eq(tune_db_open(ctx, tpath("new.db"), &db), KILN_ERR_UNSUPPORTED);
  ck_assert_ptr_null(db);
  ck_errmsg_has(ctx, "schema version 99 is newer");
  ck_errmsg_has(ctx, "new.db");
  /* Nothing was migrated. */
  ck_assert_str_eq(raw_query(tpath("new.db"),
                             "SELECT value FROM meta WHERE key = 'schema_version'"), "99");
  ck_assert_str_eq(raw_query(tpath("new.db"), "SELECT count(*) FROM sqlite_master WHERE "
                                              "name = 'records_lookup'"), "0");
  ck_assert_str_eq(raw_query(tpath("new.db"), "PRAGMA journal_mode"), "delete");
  kiln_test_done_ctx(ctx);
  rm_tmpdir();
}
END_TEST

/* ---- Corrupted files --------------------------------------------------------------------- */

/* Expects open to fail with KILN_ERR_CORRUPT and a message naming the file and `what`. */
static void expect_corrupt(kiln_context *ctx, const char *path, const char *what) {
  tune_db *db = NULL;
  ck_assert_int_eq(tune_db_open(ctx, path, &db), KILN_ERR_CORRUPT);
  ck_assert_ptr_null(db);
  ck_errmsg_has(ctx, path);
  if (what) ck_errmsg_has(ctx, what);
}

START_TEST(test_corrupt_files) {
  make_tmpdir();
  kiln_context *ctx = kiln_test_new_ctx();
  /* Random bytes (fixed seed). */
  FILE *f = fopen(tpath("random.db"), "wb");
  srand(12345);
  for (int i = 0; i < 8192; i++) fputc(rand() & 0xff, f);
  fclose(f);
  expect_corrupt(ctx, tpath("random.db"), "not a database");

  /* A real database truncated to a third of its size. */
  tune_db *db = open_fresh(ctx, "trunc.db");
  char trace[600];
  memset(trace, ' ', sizeof trace - 3);
  trace[0] = '{';
  strcpy(trace + sizeof trace - 3, "}");
  for (int i = 0; i < 200; i++) add(ctx, db, rec(1.0 + i, TUNE_STATUS_OK, trace));
  tune_db_close(db);
  struct stat sb;
  ck_assert_int_eq(stat(tpath("trunc.db"), &sb), 0);
  ck_assert_int_gt(sb.st_size, 65536);
  ck_assert_int_eq(truncate(tpath("trunc.db"), sb.st_size / 3), 0);
  expect_corrupt(ctx, tpath("trunc.db"), NULL);

  /* A table dropped; the meta table dropped; a garbage schema version. */
  db = open_fresh(ctx, "drop.db");
  tune_db_close(db);
  raw_sql(tpath("drop.db"), "DROP TABLE records");
  expect_corrupt(ctx, tpath("drop.db"), "table 'records' is missing");
  db = open_fresh(ctx, "nometa.db");
  tune_db_close(db);
  raw_sql(tpath("nometa.db"), "DROP TABLE meta");
  expect_corrupt(ctx, tpath("nometa.db"), "table 'meta' is missing");
  db = open_fresh(ctx, "badver.db");
  tune_db_close(db);
  raw_sql(tpath("badver.db"), "UPDATE meta SET value = 'two' WHERE key = 'schema_version'");
  expect_corrupt(ctx, tpath("badver.db"), "not a valid version");
  /* A column dropped behind the version's back: refused when first used, not crashing. */
  db = open_fresh(ctx, "nocol.db");
  tune_db_close(db);
  raw_sql(tpath("nocol.db"), "ALTER TABLE records DROP COLUMN seed");
  ck_ok(ctx, tune_db_open(ctx, tpath("nocol.db"), &db));
  tune_record best;
  bool found;
  ck_assert_int_eq(tune_db_best(db, BIG_HASH, TGT, &best, &found, NULL), KILN_ERR_CORRUPT);
  ck_errmsg_has(ctx, "nocol.db");
  ck_errmsg_has(ctx, "seed");
  tune_db_close(db);
  /* A directory is not openable: an I/O error. */
  ck_assert_int_eq(tune_db_open(ctx, tmpdir, &db), KILN_ERR_IO);
  kiln_test_done_ctx(ctx);
  rm_tmpdir();
}
END_TEST

START_TEST(test_corrupt_records_skipped) {
  make_tmpdir();
  kiln_context *ctx = kiln_test_new_ctx();
  tune_db *db = open_fresh(ctx, "a.db");
  add(ctx, db, rec(1.0, TUNE_STATUS_OK, "{\"n\":1}"));  /* id 1: best, then broken */
  add(ctx, db, rec(2.0, TUNE_STATUS_OK, "{\"n\":2}"));  /* id 2: status garbage */
  add(ctx, db, rec(3.0, TUNE_STATUS_OK, "{\"n\":3}"));  /* id 3: median garbage */
  add(ctx, db, rec(4.0, TUNE_STATUS_OK, "{\"n\":4}"));  /* id 4: the sound best */
  add(ctx, db, rec(5.0, TUNE_STATUS_OK, "{\"n\":5}"));
  tune_db_close(db);
  raw_sql(tpath("a.db"), "UPDATE records SET trace_json = '{\"insts\": [1, ' WHERE id = 1;"
                         "UPDATE records SET status = 'exploded' WHERE id = 2;"
                         "UPDATE records SET median_s = 'fast' WHERE id = 3;");
  ck_ok(ctx, tune_db_open(ctx, tpath("a.db"), &db));
  tune_record best;
  bool found;
  int64_t skipped = -1;
  ck_ok(ctx, tune_db_best(db, BIG_HASH, TGT, &best, &found, &skipped));
  ck_assert(found);
  ck_assert_double_eq(best.median_s, 4.0);
  /* Skipped: the bad JSON ranked first. The unknown status is not 'ok'; the text median ranks
   * after every number, so the search stops before it. */
  ck_assert_int_eq(skipped, 1);
  tune_record_clear(ctx, &best);
  collected c = {0};
  ck_ok(ctx, tune_db_list_records(db, false, 0, NULL, collect, &c, &skipped));
  ck_assert_int_eq(c.n, 2);
  ck_assert_int_eq(skipped, 3);
  int64_t n;
  ck_ok(ctx, tune_db_export(db, tpath("out.jsonl"), &n, &skipped));
  ck_assert_int_eq(n, 2);
  ck_assert_int_eq(skipped, 3);
  tune_db_close(db);
  kiln_test_done_ctx(ctx);
  rm_tmpdir();
}
END_TEST

/* ---- Concurrency ------------------------------------------------------------------------- */

/* A child process: its own context and handle, 200 records, one transaction each. */
static int writer(const char *path, int who) {
  kiln_context *ctx;
  if (kiln_context_new(&ctx)) return 2;
  tune_db *db;
  if (tune_db_open(ctx, path, &db)) {
    fprintf(stderr, "writer %d: %s\n", who, kiln_context_errmsg(ctx));
    return 3;
  }
  int rc = 0;
  for (int i = 0; i < 200 && !rc; i++) {
    tune_record r = rec(1.0 + i, TUNE_STATUS_OK, "{\"w\":1}");
    r.seed = (uint64_t)who << 32 | (uint64_t)i;
    if (tune_db_add_record(db, &r, NULL)) {
      fprintf(stderr, "writer %d: %s\n", who, kiln_context_errmsg(ctx));
      rc = 4;
    }
  }
  tune_db_close(db);
  kiln_context_free(ctx);
  return rc;
}

START_TEST(test_concurrent_writers) {
  make_tmpdir();
  kiln_context *ctx = kiln_test_new_ctx();
  tune_db *db = open_fresh(ctx, "shared.db");
  tune_db_close(db);
  pid_t pids[2];
  for (int w = 0; w < 2; w++) {
    pids[w] = fork();
    ck_assert_int_ge(pids[w], 0);
    if (pids[w] == 0) _exit(writer(tpath("shared.db"), w + 1));
  }
  for (int w = 0; w < 2; w++) {
    int status;
    ck_assert_int_eq(waitpid(pids[w], &status, 0), pids[w]);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed (%d)", w,
                  status);
  }
  ck_ok(ctx, tune_db_open(ctx, tpath("shared.db"), &db));
  ck_assert_int_eq(count_all(ctx, db), 400);
  tune_db_close(db);
  ck_assert_str_eq(raw_query(tpath("shared.db"), "SELECT count(DISTINCT seed) FROM records"),
                   "400");
  kiln_test_done_ctx(ctx);
  rm_tmpdir();
}
END_TEST

/* ---- Export / import, merge, prune ------------------------------------------------------- */

/* Every column but the id, as one text line per record in id order (static buffer). */
static const char *dump(const char *path) {
  static char out[4096];
  sqlite3 *h;
  sqlite3_stmt *st;
  ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
  ck_assert_int_eq(sqlite3_prepare_v2(h,
      "SELECT printf('%d|%s|%s|%s|%!.17g|%!.17g|%!.17g|%!.17g|%d|%s|%s|%d|%s|%s|%d;', w.hash,"
      " w.summary, t.canonical || t.cpu || t.features, r.trace_json, r.median_s, r.min_s,"
      " r.max_s, r.stddev_s, r.repeats, r.status, r.error, r.seed, r.kiln_version, r.host,"
      " r.time) FROM records r JOIN workloads w ON w.id = r.workload_id"
      " JOIN targets t ON t.id = r.target_id ORDER BY r.id", -1, &st, NULL), SQLITE_OK);
  out[0] = 0;
  while (sqlite3_step(st) == SQLITE_ROW)
    strncat(out, (const char *)sqlite3_column_text(st, 0), sizeof out - strlen(out) - 1);
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

START_TEST(test_export_import) {
  make_tmpdir();
  kiln_context *ctx = kiln_test_new_ctx();
  tune_db *db = open_fresh(ctx, "a.db");
  ck_ok(ctx, tune_db_add_workload(db, 0x8000000000000000ull, "edge", "primfunc e() {}", NULL));
  add(ctx, db, rec(0.1234567890123, TUNE_STATUS_OK, "{\"insts\":[{\"kind\":\"split\"}]}"));
  tune_record r = rec(1e-7, TUNE_STATUS_BUILD_ERROR, "[]");
  r.error = "line 1: \"quoted\"\nand a newline";
  r.workload_hash = 0x8000000000000000ull;
  r.seed = UINT64_MAX;
  add(ctx, db, r);
  int64_t n, skipped;
  ck_ok(ctx, tune_db_export(db, tpath("out.jsonl"), &n, &skipped));
  ck_assert_int_eq(n, 2);
  ck_assert_int_eq(skipped, 0);
  tune_db_close(db);

  tune_db *b;
  ck_ok(ctx, tune_db_open(ctx, tpath("b.db"), &b));
  ck_ok(ctx, tune_db_import(b, tpath("out.jsonl"), &n));
  ck_assert_int_eq(n, 2);
  ck_ok(ctx, tune_db_import(b, tpath("out.jsonl"), &n));  /* again: all duplicates */
  ck_assert_int_eq(n, 0);
  tune_db_close(b);
  const char *da = dump(tpath("a.db"));
  char first[4096];
  snprintf(first, sizeof first, "%s", da);
  ck_assert_str_eq(dump(tpath("b.db")), first);
  ck_assert(strstr(first, "|-1|0.5.0|") != NULL);  /* UINT64_MAX seed survived */

  /* A malformed line: nothing imported, the message names the file and line. */
  char *good = kiln_test_read_file(tpath("out.jsonl"), NULL);
  FILE *f = fopen(tpath("bad.jsonl"), "w");
  fputs(good, f);
  fputs("{\"kind\":\"record\",\"workload\":\"xyz\"}\n", f);
  fclose(f);
  free(good);
  ck_ok(ctx, tune_db_open(ctx, tpath("c.db"), &b));
  ck_assert_int_eq(tune_db_import(b, tpath("bad.jsonl"), &n), KILN_ERR_CORRUPT);
  ck_errmsg_has(ctx, "bad.jsonl:7: malformed line");
  ck_assert_int_eq(count_all(ctx, b), 0);
  /* Not an export at all; a missing file. */
  f = fopen(tpath("notes.txt"), "w");
  fputs("{\"hello\": 1}\n", f);
  fclose(f);
  ck_assert_int_eq(tune_db_import(b, tpath("notes.txt"), &n), KILN_ERR_CORRUPT);
  ck_errmsg_has(ctx, "not a kiln tuning export");
  ck_assert_int_eq(tune_db_import(b, tpath("missing.jsonl"), &n), KILN_ERR_IO);
  ck_errmsg_has(ctx, "missing.jsonl");
  ck_assert_int_eq(tune_db_export(b, "/nonexistent-dir/x.jsonl", &n, NULL), KILN_ERR_IO);
  tune_db_close(b);
  kiln_test_done_ctx(ctx);
  rm_tmpdir();
}
END_TEST

START_TEST(test_merge) {
  make_tmpdir();
  kiln_context *ctx = kiln_test_new_ctx();
  tune_db *a = open_fresh(ctx, "a.db");
  add(ctx, a, rec(1.0, TUNE_STATUS_OK, "{\"a\":1}"));
  add(ctx, a, rec(2.0, TUNE_STATUS_OK, "{\"shared\":2}"));
  tune_db *b;
  ck_ok(ctx, tune_db_open(ctx, tpath("b.db"), &b));
  /* b registers things in another order, so its row ids differ from a's. */
  ck_ok(ctx, tune_db_add_target(b, "llvm -mcpu=other", "", "", NULL));
  ck_ok(ctx, tune_db_add_workload(b, 77, "w77", "primfunc w() {}", NULL));
  ck_ok(ctx, tune_db_add_target(b, TGT, "skylake", "+avx2,+fma", NULL));
  ck_ok(ctx, tune_db_add_workload(b, BIG_HASH, "dense 64x64x64 f32", "primfunc main() {}",
                                  NULL));
  add(ctx, b, rec(2.0, TUNE_STATUS_OK, "{\"shared\":2}"));  /* identical to a's */
  add(ctx, b, rec(0.5, TUNE_STATUS_OK, "{\"b\":1}"));
  add(ctx, b, rec(0.5, TUNE_STATUS_OK, "{\"b\":1}"));  /* duplicated within b */
  tune_record r = rec(3.0, TUNE_STATUS_OK, "{\"b77\":1}");
  r.workload_hash = 77;
  r.target = "llvm -mcpu=other";
  add(ctx, b, r);
  add(ctx, b, rec(0.1, TUNE_STATUS_OK, "{\"bad\":1}"));  /* corrupted below */
  tune_db_close(b);
  raw_sql(tpath("b.db"), "UPDATE records SET status = 'exploded' WHERE median_s = 0.1");

  int64_t added, skipped;
  ck_ok(ctx, tune_db_merge(a, tpath("b.db"), &added, &skipped));
  ck_assert_int_eq(added, 2);
  ck_assert_int_eq(skipped, 1);
  ck_assert_int_eq(count_all(ctx, a), 4);
  tune_record best;
  bool found;
  ck_ok(ctx, tune_db_best(a, BIG_HASH, TGT, &best, &found, NULL));
  ck_assert_str_eq(best.trace_json, "{\"b\":1}");
  tune_record_clear(ctx, &best);
  ck_ok(ctx, tune_db_best(a, 77, "llvm -mcpu=other", &best, &found, NULL));
  ck_assert(found);
  ck_assert_double_eq(best.median_s, 3.0);
  tune_record_clear(ctx, &best);
  /* Merging again adds nothing. */
  ck_ok(ctx, tune_db_merge(a, tpath("b.db"), &added, &skipped));
  ck_assert_int_eq(added, 0);
  ck_assert_int_eq(count_all(ctx, a), 4);

  /* Refusals: missing file, not a database, an old schema. Nothing changes in a. */
  ck_assert_int_eq(tune_db_merge(a, tpath("missing.db"), &added, &skipped), KILN_ERR_IO);
  ck_errmsg_has(ctx, "missing.db");
  FILE *f = fopen(tpath("junk.db"), "wb");
  for (int i = 0; i < 4096; i++) fputc((i * 7919) & 0xff, f);
  fclose(f);
  ck_assert_int_eq(tune_db_merge(a, tpath("junk.db"), &added, &skipped), KILN_ERR_CORRUPT);
  ck_errmsg_has(ctx, "junk.db");
  raw_sql(tpath("old.db"), v0_sql);
  ck_assert_int_eq(tune_db_merge(a, tpath("old.db"), &added, &skipped), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "old.db: schema version 0");
  ck_assert_int_eq(count_all(ctx, a), 4);
  /* The handle still works after the refusals (src detached). */
  ck_ok(ctx, tune_db_merge(a, tpath("b.db"), &added, &skipped));
  tune_db_close(a);
  kiln_test_done_ctx(ctx);
  rm_tmpdir();
}
END_TEST

START_TEST(test_prune) {
  make_tmpdir();
  kiln_context *ctx = kiln_test_new_ctx();
  tune_db *db = open_fresh(ctx, "a.db");
  ck_ok(ctx, tune_db_add_target(db, "llvm -mcpu=other", "", "", NULL));
  for (int i = 5; i >= 1; i--) add(ctx, db, rec(i, TUNE_STATUS_OK, "{}"));
  tune_record r = rec(0.5, TUNE_STATUS_TIMEOUT, "{}");
  r.time = 100;
  add(ctx, db, r);
  r.time = 300;
  r.status = TUNE_STATUS_RUN_ERROR;
  add(ctx, db, r);
  r = rec(7.0, TUNE_STATUS_OK, "{}");
  r.target = "llvm -mcpu=other";
  add(ctx, db, r);
  r.median_s = 6.0;
  add(ctx, db, r);
  int64_t deleted;
  ck_ok(ctx, tune_db_prune(db, 2, 200, &deleted));
  ck_assert_int_eq(deleted, 4);  /* medians 3, 4, 5 and the failed record of time 100 */
  collected c = {0};
  ck_ok(ctx, tune_db_list_records(db, false, 0, TGT, collect, &c, NULL));
  ck_assert_int_eq(c.n, 3);
  ck_assert_double_eq(c.median_sum, 2.0 + 1.0 + 0.5);
  ck_assert_str_eq(c.status[2], "run_error");
  c = (collected){0};
  ck_ok(ctx, tune_db_list_records(db, false, 0, "llvm -mcpu=other", collect, &c, NULL));
  ck_assert_int_eq(c.n, 2);
  /* keep 1, drop every failed one. */
  ck_ok(ctx, tune_db_prune(db, 1, INT64_MAX, &deleted));
  ck_assert_int_eq(deleted, 3);
  ck_assert_int_eq(count_all(ctx, db), 2);
  /* keep_best < 0 and failed_before 0: nothing to do. */
  ck_ok(ctx, tune_db_prune(db, -1, 0, &deleted));
  ck_assert_int_eq(deleted, 0);
  tune_record best;
  bool found;
  ck_ok(ctx, tune_db_best(db, BIG_HASH, "llvm -mcpu=other", &best, &found, NULL));
  ck_assert_double_eq(best.median_s, 6.0);
  tune_record_clear(ctx, &best);
  tune_db_close(db);
  kiln_test_done_ctx(ctx);
  rm_tmpdir();
}
END_TEST

/* ---- Allocation failures ----------------------------------------------------------------- */

/* Fails the n-th allocation for n = 1, 2, ... through open, add, best, export, import and
 * close: every step either succeeds or returns KILN_ERR_NOMEM, and nothing leaks. */
START_TEST(test_nomem) {
  make_tmpdir();
  kiln_context *ctx = kiln_test_new_ctx();
  tune_db *db = open_fresh(ctx, "a.db");
  add(ctx, db, rec(1.0, TUNE_STATUS_OK, "{\"x\":1}"));
  ck_ok(ctx, tune_db_export(db, tpath("a.jsonl"), NULL, NULL));
  tune_db_close(db);
  bool completed = false;
  for (long n = 1; n < 200 && !completed; n++) {
    kiln_context_fail_alloc(ctx, n);
    kiln_status s = tune_db_open(ctx, tpath("a.db"), &db);
    if (s == KILN_OK) {
      tune_record best;
      bool found = false;
      s = tune_db_best(db, BIG_HASH, TGT, &best, &found, NULL);
      if (s == KILN_OK && found) tune_record_clear(ctx, &best);
      if (s == KILN_OK) s = tune_db_import(db, tpath("a.jsonl"), NULL);
      if (s == KILN_OK) s = tune_db_merge(db, tpath("a.db"), NULL, NULL);
      if (s == KILN_OK) completed = true;
      tune_db_close(db);
    }
    ck_assert_msg(s == KILN_OK || s == KILN_ERR_NOMEM, "n=%ld: %s", n,
                  kiln_context_errmsg(ctx));
    ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  }
  kiln_context_fail_alloc(ctx, 0);
  ck_assert(completed);
  kiln_test_done_ctx(ctx);
  rm_tmpdir();
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("tune_db");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_status_names);
  tcase_add_test(tc, test_create_reopen);
  tcase_add_test(tc, test_add_record_errors);
  tcase_add_test(tc, test_best);
  tcase_add_test(tc, test_list_filters);
  tcase_add_test(tc, test_migrate_v0);
  tcase_add_test(tc, test_newer_version_refused);
  tcase_add_test(tc, test_corrupt_files);
  tcase_add_test(tc, test_corrupt_records_skipped);
  tcase_add_test(tc, test_concurrent_writers);
  tcase_add_test(tc, test_export_import);
  tcase_add_test(tc, test_merge);
  tcase_add_test(tc, test_prune);
  tcase_add_test(tc, test_nomem);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

/* database.c: the tuning database on SQLite (see database.h). The tuner writes measurement
 * records here; the compiler reads the best trace per (workload, target) back. A new file is
 * created as schema version 0 and brought up to date by the same migrations that upgrade old
 * files, so there is one description of the schema: the migration table below. Hashes and
 * seeds are stored as INTEGER holding the uint64 bit pattern (cast to int64). */
#include "autotune/database.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct tune_db {
  kiln_context *ctx;
  sqlite3 *h;
  char *path; /* context memory, for messages */
  int version;
};

static const char *const status_names[] = {
    [TUNE_STATUS_OK] = "ok",
    [TUNE_STATUS_BUILD_ERROR] = "build_error",
    [TUNE_STATUS_RUN_ERROR] = "run_error",
    [TUNE_STATUS_TIMEOUT] = "timeout",
    [TUNE_STATUS_WRONG_RESULT] = "wrong_result",
};
#define NSTATUS ((int)(sizeof status_names / sizeof status_names[0]))

const char *tune_status_name(tune_status s) {
  if ((int)s < 0 || (int)s >= NSTATUS) return "?";
  return status_names[s];
}

bool tune_status_parse(const char *name, tune_status *out) {
  for (int i = 0; name && i < NSTATUS; i++) {
    if (strcmp(name, status_names[i]) == 0) {
      *out = (tune_status)i;
      return true;
    }
  }
  return false;
}

/* ---- Errors ------------------------------------------------------------------------------ */

/* The kiln code for a SQLite result code. Our SQL is fixed, so a plain SQLITE_ERROR (no such
 * table / column) means the file's schema is not what its version says: corruption. */
static kiln_status map_code(int rc) {
  switch (rc & 0xff) {
  case SQLITE_NOMEM: return KILN_ERR_NOMEM;
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
  case SQLITE_ERROR:
  case SQLITE_MISMATCH:
  case SQLITE_FORMAT:
  case SQLITE_SCHEMA: return KILN_ERR_CORRUPT;
  case SQLITE_CANTOPEN:
  case SQLITE_IOERR:
  case SQLITE_READONLY:
  case SQLITE_FULL:
  case SQLITE_PERM:
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
  case SQLITE_AUTH: return KILN_ERR_IO;
  default: return KILN_ERR_INTERNAL;
  }
}

/* Records a SQLite failure of `what` on the context, naming the file. */
static kiln_status sql_fail(tune_db *db, int rc, const char *what) {
  return ir_fail(db->ctx, IR_NO_SPAN, map_code(rc), "tune.db: %s: %s: %s", db->path, what,
                 db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
}

/* Runs SQL without results (one or more statements). */
static kiln_status exec(tune_db *db, const char *sql, const char *what) {
  int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? KILN_OK : sql_fail(db, rc, what);
}

static kiln_status prepare(tune_db *db, const char *sql, sqlite3_stmt **st, const char *what) {
  int rc = sqlite3_prepare_v2(db->h, sql, -1, st, NULL);
  return rc == SQLITE_OK ? KILN_OK : sql_fail(db, rc, what);
}

/* Transactions: writers always start with BEGIN IMMEDIATE so that they wait (busy timeout)
 * for the write lock up front instead of failing when a read upgrades to a write. */
static kiln_status begin(tune_db *db) { return exec(db, "BEGIN IMMEDIATE", "begin"); }
static kiln_status commit(tune_db *db) { return exec(db, "COMMIT", "commit"); }
static void rollback(tune_db *db) {
  if (!sqlite3_get_autocommit(db->h)) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

static int64_t u2i(uint64_t v) { return (int64_t)v; }
static uint64_t i2u(int64_t v) { return (uint64_t)v; }

/* ---- Schema and migrations --------------------------------------------------------------- */

/* Version 0: the first layout (kept so that a new file is "version 0 + every migration"). */
static const char schema_v0[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value);"
    "INSERT INTO meta VALUES('schema_version', 0);"
    "CREATE TABLE workloads(id INTEGER PRIMARY KEY, hash INTEGER NOT NULL UNIQUE,"
    "  summary TEXT NOT NULL, func_text TEXT NOT NULL);"
    "CREATE TABLE targets(id INTEGER PRIMARY KEY, canonical TEXT NOT NULL UNIQUE);"
    "CREATE TABLE records(id INTEGER PRIMARY KEY, workload_id INTEGER NOT NULL,"
    "  target_id INTEGER NOT NULL, trace_json TEXT NOT NULL, median_s REAL,"
    "  status TEXT NOT NULL, error TEXT, time INTEGER);";

/* Migration table: entry k turns version k into version k + 1. */
static const char *const migrations[TUNE_DB_SCHEMA_VERSION] = {
    /* 0 -> 1: target CPU and features; full latency statistics, seed, provenance. */
    "ALTER TABLE targets ADD COLUMN cpu TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE targets ADD COLUMN features TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE records ADD COLUMN min_s REAL;"
    "ALTER TABLE records ADD COLUMN max_s REAL;"
    "ALTER TABLE records ADD COLUMN stddev_s REAL;"
    "ALTER TABLE records ADD COLUMN repeats INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE records ADD COLUMN seed INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE records ADD COLUMN kiln_version TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE records ADD COLUMN host TEXT NOT NULL DEFAULT '';"
    "UPDATE records SET min_s = median_s, max_s = median_s, stddev_s = 0.0;"
    "UPDATE records SET time = 0 WHERE time IS NULL;"
    "UPDATE records SET error = '' WHERE error IS NULL;",
    /* 1 -> 2: an index for "best" and for de-duplicating imports and merges. */
    "CREATE INDEX records_lookup ON records(workload_id, target_id, status, median_s);",
};

static const char *const tables[] = {"meta", "workloads", "targets", "records"};

/* Whether the main database has a table called name. */
static kiln_status has_table(tune_db *db, const char *name, bool *out) {
  sqlite3_stmt *st;
  kiln_status s = prepare(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                          &st, "reading the schema");
  if (s) return s;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sql_fail(db, rc, "reading the schema");
  *out = rc == SQLITE_ROW;
  return KILN_OK;
}

/* The file's schema version, or -1 for an empty file (no tables at all). A file with tables
 * but no usable meta row is corrupt. */
static kiln_status read_version(tune_db *db, int *out) {
  sqlite3_stmt *st;
  kiln_status s = prepare(db, "SELECT count(*) FROM sqlite_master", &st, "reading the schema");
  if (s) return s;
  int rc = sqlite3_step(st);
  int64_t nobjects = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) return sql_fail(db, rc, "reading the schema");
  if (nobjects == 0) {
    *out = -1;
    return KILN_OK;
  }
  bool has;
  if ((s = has_table(db, "meta", &has))) return s;
  if (!has)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT,
                   "tune.db: %s: not a tuning database (table 'meta' is missing)", db->path);
  if ((s = prepare(db, "SELECT value FROM meta WHERE key = 'schema_version'", &st,
                   "reading the schema version")))
    return s;
  rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return sql_fail(db, rc, "reading the schema version");
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT,
                   "tune.db: %s: table 'meta' has no schema_version", db->path);
  }
  bool is_int = sqlite3_column_type(st, 0) == SQLITE_INTEGER;
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (!is_int || v < 0 || v > 1000000)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT,
                   "tune.db: %s: schema_version in table 'meta' is not a valid version",
                   db->path);
  *out = (int)v;
  return KILN_OK;
}

/* read_version, refusing a version newer than ours. */
static kiln_status check_version(tune_db *db, int *v) {
  kiln_status s = read_version(db, v);
  if (s) return s;
  if (*v > TUNE_DB_SCHEMA_VERSION)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "tune.db: %s: schema version %d is newer than this kiln's (%d); use a "
                   "newer kiln", db->path, *v, TUNE_DB_SCHEMA_VERSION);
  return KILN_OK;
}

/* Creates or migrates the schema inside one immediate transaction, then checks that every
 * table exists. The version is read again inside the transaction: another process may have
 * created or migrated the file since open looked. */
static kiln_status setup_schema(tune_db *db) {
  kiln_status s = begin(db);
  if (s) return s;
  int v = -1;
  if ((s = check_version(db, &v))) goto fail;
  if (v < 0) {
    if ((s = exec(db, schema_v0, "creating the schema"))) goto fail;
    v = 0;
  }
  if (v < TUNE_DB_SCHEMA_VERSION) {
    for (; v < TUNE_DB_SCHEMA_VERSION; v++) {
      if ((s = exec(db, migrations[v], "migrating the schema"))) goto fail;
    }
    char sql[96];
    snprintf(sql, sizeof sql, "UPDATE meta SET value = %d WHERE key = 'schema_version'", v);
    if ((s = exec(db, sql, "migrating the schema"))) goto fail;
  }
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
    bool has;
    if ((s = has_table(db, tables[i], &has))) goto fail;
    if (!has) {
      s = ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT, "tune.db: %s: table '%s' is missing",
                  db->path, tables[i]);
      goto fail;
    }
  }
  if ((s = commit(db))) goto fail;
  db->version = v;
  return KILN_OK;
fail:
  rollback(db);
  return s;
}

/* Runs PRAGMA quick_check: a damaged (e.g. truncated) file is refused at open rather than
 * trusted. Also the first read of the file, so "not a database" surfaces here. */
static kiln_status check_integrity(tune_db *db) {
  sqlite3_stmt *st;
  kiln_status s = prepare(db, "PRAGMA quick_check(1)", &st, "checking integrity");
  if (s) return s;
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_finalize(st);
    return sql_fail(db, rc, "checking integrity");
  }
  const char *res = (const char *)sqlite3_column_text(st, 0);
  bool ok = res && strcmp(res, "ok") == 0;
  if (!ok)
    s = ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT, "tune.db: %s: file is damaged: %s",
                db->path, res ? res : "(no result)");
  sqlite3_finalize(st);
  return s;
}

kiln_status tune_db_open(kiln_context *ctx, const char *path, tune_db **out) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!path || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune.db: open needs a path and output");
  tune_db *db = ir_malloc(ctx, sizeof *db);
  if (!db) return KILN_ERR_NOMEM;
  *db = (tune_db){.ctx = ctx};
  if (!(db->path = ir_strdup(ctx, path))) {
    ir_free(ctx, db, sizeof *db);
    return KILN_ERR_NOMEM;
  }
  kiln_status s;
  /* URI filenames are enabled for merge's read-only ATTACH; a plain path is unaffected. */
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI;
  int rc = sqlite3_open_v2(path, &db->h, flags, NULL);
  if (rc != SQLITE_OK) {
    s = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "tune.db: %s: cannot open: %s", path,
                db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
    goto fail;
  }
  sqlite3_busy_timeout(db->h, TUNE_DB_BUSY_TIMEOUT_MS);
  sqlite3_extended_result_codes(db->h, 0);
  if ((s = check_integrity(db))) goto fail;
  /* Refuse foreign, damaged and newer files before writing anything (the WAL switch writes). */
  int v;
  if ((s = check_version(db, &v))) goto fail;
  /* WAL lets readers run beside one writer; NORMAL sync is safe against corruption in WAL. */
  if ((s = exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL",
                "switching to WAL mode")))
    goto fail;
  if ((s = setup_schema(db))) goto fail;
  *out = db;
  return KILN_OK;
fail:
  tune_db_close(db);
  return s;
}

void tune_db_close(tune_db *db) {
  if (!db) return;
  kiln_context *ctx = db->ctx;
  if (db->h) sqlite3_close_v2(db->h);
  ir_free(ctx, db->path, strlen(db->path) + 1);
  ir_free(ctx, db, sizeof *db);
}

int tune_db_schema_version(tune_db *db) { return db ? db->version : -1; }

/* ---- Workloads and targets --------------------------------------------------------------- */

/* Runs an INSERT OR IGNORE and then the lookup `find` (both bound by the caller) to return
 * the row id of the key, new or existing. Used for workloads and targets. */
static kiln_status insert_and_find(tune_db *db, sqlite3_stmt *ins, sqlite3_stmt *find,
                                   const char *what, int64_t *id) {
  int rc = sqlite3_step(ins);
  if (rc != SQLITE_DONE) return sql_fail(db, rc, what);
  rc = sqlite3_step(find);
  if (rc != SQLITE_ROW) {
    if (rc == SQLITE_DONE) rc = SQLITE_INTERNAL;
    return sql_fail(db, rc, what);
  }
  if (id) *id = sqlite3_column_int64(find, 0);
  return KILN_OK;
}

kiln_status tune_db_add_workload(tune_db *db, uint64_t hash, const char *summary,
                                 const char *func_text, int64_t *id) {
  if (!db) return KILN_ERR_MISUSE;
  if (!summary || !func_text)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune.db: workload %016llx needs a summary and a function text",
                   (unsigned long long)hash);
  sqlite3_stmt *ins = NULL, *find = NULL;
  kiln_status s;
  if ((s = begin(db))) return s;
  if ((s = prepare(db, "INSERT OR IGNORE INTO workloads(hash, summary, func_text) "
                       "VALUES(?1, ?2, ?3)", &ins, "adding a workload")) ||
      (s = prepare(db, "SELECT id FROM workloads WHERE hash = ?1", &find, "adding a workload")))
    goto done;
  sqlite3_bind_int64(ins, 1, u2i(hash));
  sqlite3_bind_text(ins, 2, summary, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins, 3, func_text, -1, SQLITE_STATIC);
  sqlite3_bind_int64(find, 1, u2i(hash));
  if ((s = insert_and_find(db, ins, find, "adding a workload", id))) goto done;
  s = commit(db);
done:
  sqlite3_finalize(ins);
  sqlite3_finalize(find);
  if (s) rollback(db);
  return s;
}

kiln_status tune_db_add_target(tune_db *db, const char *canonical, const char *cpu,
                               const char *features, int64_t *id) {
  if (!db) return KILN_ERR_MISUSE;
  if (!canonical || !*canonical)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune.db: a target needs a canonical string");
  sqlite3_stmt *ins = NULL, *find = NULL;
  kiln_status s;
  if ((s = begin(db))) return s;
  if ((s = prepare(db, "INSERT OR IGNORE INTO targets(canonical, cpu, features) "
                       "VALUES(?1, ?2, ?3)", &ins, "adding a target")) ||
      (s = prepare(db, "SELECT id FROM targets WHERE canonical = ?1", &find,
                   "adding a target")))
    goto done;
  sqlite3_bind_text(ins, 1, canonical, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins, 2, cpu ? cpu : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(ins, 3, features ? features : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(find, 1, canonical, -1, SQLITE_STATIC);
  if ((s = insert_and_find(db, ins, find, "adding a target", id))) goto done;
  s = commit(db);
done:
  sqlite3_finalize(ins);
  sqlite3_finalize(find);
  if (s) rollback(db);
  return s;
}

/* ---- Records ----------------------------------------------------------------------------- */

/* Whether text parses as JSON (cJSON allocates with the C allocator: its hooks are
 * process-wide and cannot follow a context; the tree is freed at once). */
static bool json_ok(const char *text) {
  if (!text) return false;
  cJSON *j = cJSON_ParseWithOpts(text, NULL, true);
  if (!j) return false;
  cJSON_Delete(j);
  return true;
}

/* Checks a record given by a caller; the message names the workload. */
static kiln_status check_record(tune_db *db, const tune_record *r) {
  unsigned long long h = (unsigned long long)r->workload_hash;
  if (!r->target || !r->trace_json)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune.db: record for workload %016llx needs a target and a trace", h);
  if ((int)r->status < 0 || (int)r->status >= NSTATUS)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune.db: record for workload %016llx has unknown status %d", h,
                   (int)r->status);
  if (!isfinite(r->median_s) || !isfinite(r->min_s) || !isfinite(r->max_s) ||
      !isfinite(r->stddev_s) || r->repeats < 0)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune.db: record for workload %016llx has non-finite statistics or "
                   "negative repeats", h);
  if (!json_ok(r->trace_json))
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "tune.db: record for workload %016llx: trace is not valid JSON", h);
  return KILN_OK;
}

/* The row id of a workload hash / target string; KILN_ERR_UNDEFINED if it is not stored. */
static kiln_status find_id(tune_db *db, bool workload, uint64_t hash, const char *target,
                           int64_t *id) {
  sqlite3_stmt *st;
  kiln_status s = prepare(db, workload ? "SELECT id FROM workloads WHERE hash = ?1"
                                       : "SELECT id FROM targets WHERE canonical = ?1",
                          &st, "looking up a record's key");
  if (s) return s;
  if (workload)
    sqlite3_bind_int64(st, 1, u2i(hash));
  else
    sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (rc == SQLITE_ROW) return KILN_OK;
  if (rc != SQLITE_DONE) return sql_fail(db, rc, "looking up a record's key");
  if (workload)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_UNDEFINED,
                   "tune.db: %s: record for unknown workload %016llx (add it first)", db->path,
                   (unsigned long long)hash);
  return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_UNDEFINED,
                 "tune.db: %s: record for unknown target '%s' (add it first)", db->path, target);
}

/* Inserts a checked record under the given row ids (inside the caller's transaction). With
 * dedup, a record equal in every column to a stored one is not inserted; *added says
 * whether a row was. */
static kiln_status insert_record(tune_db *db, int64_t wid, int64_t tid, const tune_record *r,
                                 bool dedup, bool *added, int64_t *id) {
  static const char plain[] =
      "INSERT INTO records(workload_id, target_id, trace_json, median_s, min_s, max_s,"
      " stddev_s, repeats, status, error, seed, kiln_version, host, time)"
      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
  static const char dedup_sql[] =
      "INSERT INTO records(workload_id, target_id, trace_json, median_s, min_s, max_s,"
      " stddev_s, repeats, status, error, seed, kiln_version, host, time)"
      " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14"
      " WHERE NOT EXISTS (SELECT 1 FROM records WHERE workload_id = ?1 AND target_id = ?2"
      "  AND status = ?9 AND median_s = ?4 AND trace_json = ?3 AND min_s = ?5 AND max_s = ?6"
      "  AND stddev_s = ?7 AND repeats = ?8 AND error = ?10 AND seed = ?11"
      "  AND kiln_version = ?12 AND host = ?13 AND time = ?14)";
  char hostbuf[256];
  const char *host = r->host;
  if (!host) {
    if (gethostname(hostbuf, sizeof hostbuf) != 0) snprintf(hostbuf, sizeof hostbuf, "?");
    hostbuf[sizeof hostbuf - 1] = 0;
    host = hostbuf;
  }
  sqlite3_stmt *st;
  kiln_status s = prepare(db, dedup ? dedup_sql : plain, &st, "adding a record");
  if (s) return s;
  sqlite3_bind_int64(st, 1, wid);
  sqlite3_bind_int64(st, 2, tid);
  sqlite3_bind_text(st, 3, r->trace_json, -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 4, r->median_s);
  sqlite3_bind_double(st, 5, r->min_s);
  sqlite3_bind_double(st, 6, r->max_s);
  sqlite3_bind_double(st, 7, r->stddev_s);
  sqlite3_bind_int(st, 8, r->repeats);
  sqlite3_bind_text(st, 9, tune_status_name(r->status), -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 10, r->error ? r->error : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 11, u2i(r->seed));
  sqlite3_bind_text(st, 12, r->kiln_version ? r->kiln_version : kiln_version(), -1,
                    SQLITE_STATIC);
  sqlite3_bind_text(st, 13, host, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 14, r->time ? r->time : (int64_t)time(NULL));
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return sql_fail(db, rc, "adding a record");
  bool did = sqlite3_changes(db->h) > 0;
  if (added) *added = did;
  if (id && did) *id = sqlite3_last_insert_rowid(db->h);
  return KILN_OK;
}

kiln_status tune_db_add_record(tune_db *db, const tune_record *r, int64_t *id) {
  if (!db) return KILN_ERR_MISUSE;
  if (!r) return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune.db: no record given");
  kiln_status s = check_record(db, r);
  if (s) return s;
  if ((s = begin(db))) return s;
  int64_t wid, tid;
  if ((s = find_id(db, true, r->workload_hash, NULL, &wid)) ||
      (s = find_id(db, false, 0, r->target, &tid)) ||
      (s = insert_record(db, wid, tid, r, false, NULL, id)) || (s = commit(db))) {
    rollback(db);
    return s;
  }
  return KILN_OK;
}

/* The columns every record query selects, in the order read_row expects. */
#define RECORD_COLUMNS                                                                     \
  "r.id, w.hash, t.canonical, r.trace_json, r.median_s, r.min_s, r.max_s, r.stddev_s,"     \
  " r.repeats, r.status, r.error, r.seed, r.kiln_version, r.host, r.time"
#define RECORD_FROM                                                                        \
  " FROM records r JOIN workloads w ON w.id = r.workload_id"                               \
  " JOIN targets t ON t.id = r.target_id"

static bool is_number(sqlite3_stmt *st, int col) {
  int t = sqlite3_column_type(st, col);
  return t == SQLITE_FLOAT || t == SQLITE_INTEGER;
}

/* Reads the current row into *r (strings borrowed from the statement until the next step).
 * Returns false, with nothing trusted, when a column holds garbage: a non-numeric statistic,
 * an unknown status, a NULL text, or a trace that does not parse as JSON. */
static bool read_row(sqlite3_stmt *st, tune_record *r) {
  for (int c = 4; c <= 8; c++)
    if (!is_number(st, c)) return false;
  if (sqlite3_column_type(st, 0) != SQLITE_INTEGER ||
      sqlite3_column_type(st, 1) != SQLITE_INTEGER ||
      sqlite3_column_type(st, 11) != SQLITE_INTEGER ||
      sqlite3_column_type(st, 14) != SQLITE_INTEGER)
    return false;
  *r = (tune_record){0};
  r->id = sqlite3_column_int64(st, 0);
  r->workload_hash = i2u(sqlite3_column_int64(st, 1));
  r->target = (const char *)sqlite3_column_text(st, 2);
  r->trace_json = (const char *)sqlite3_column_text(st, 3);
  r->median_s = sqlite3_column_double(st, 4);
  r->min_s = sqlite3_column_double(st, 5);
  r->max_s = sqlite3_column_double(st, 6);
  r->stddev_s = sqlite3_column_double(st, 7);
  int64_t rep = sqlite3_column_int64(st, 8);
  r->repeats = (int32_t)rep;
  const char *status = (const char *)sqlite3_column_text(st, 9);
  r->error = (const char *)sqlite3_column_text(st, 10);
  r->seed = i2u(sqlite3_column_int64(st, 11));
  r->kiln_version = (const char *)sqlite3_column_text(st, 12);
  r->host = (const char *)sqlite3_column_text(st, 13);
  r->time = sqlite3_column_int64(st, 14);
  if (rep < 0 || rep > INT32_MAX || !isfinite(r->median_s) || !isfinite(r->min_s) ||
      !isfinite(r->max_s) || !isfinite(r->stddev_s))
    return false;
  if (!r->target || !r->error || !r->kiln_version || !r->host) return false;
  if (!tune_status_parse(status, &r->status)) return false;
  return json_ok(r->trace_json);
}

void tune_record_clear(kiln_context *ctx, tune_record *r) {
  if (!r) return;
  const char **strs[] = {&r->target, &r->trace_json, &r->error, &r->kiln_version, &r->host};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
    if (*strs[i]) ir_free(ctx, (char *)*strs[i], strlen(*strs[i]) + 1);
  *r = (tune_record){0};
}

/* Copies the strings of a borrowed record into context memory (all or none). */
static kiln_status own_record(kiln_context *ctx, const tune_record *src, tune_record *dst) {
  tune_record r = *src;
  r.target = r.trace_json = r.error = r.kiln_version = r.host = NULL;
  if (!(r.target = ir_strdup(ctx, src->target)) ||
      !(r.trace_json = ir_strdup(ctx, src->trace_json)) ||
      !(r.error = ir_strdup(ctx, src->error)) ||
      !(r.kiln_version = ir_strdup(ctx, src->kiln_version)) ||
      !(r.host = ir_strdup(ctx, src->host))) {
    tune_record_clear(ctx, &r);
    return KILN_ERR_NOMEM;
  }
  *dst = r;
  return KILN_OK;
}

kiln_status tune_db_best(tune_db *db, uint64_t workload_hash, const char *target,
                         tune_record *out, bool *found, int64_t *nskipped) {
  if (!db) return KILN_ERR_MISUSE;
  if (!target || !out || !found)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune.db: best needs a target, a record and a found flag");
  *found = false;
  if (nskipped) *nskipped = 0;
  sqlite3_stmt *st;
  kiln_status s = prepare(db,
                          "SELECT " RECORD_COLUMNS RECORD_FROM
                          " WHERE w.hash = ?1 AND t.canonical = ?2 AND r.status = 'ok'"
                          " ORDER BY r.median_s, r.id",
                          &st, "finding the best record");
  if (s) return s;
  sqlite3_bind_int64(st, 1, u2i(workload_hash));
  sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
  /* Non-numeric medians sort after numbers in SQLite, so the first sound row is the best. */
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    tune_record r;
    if (!read_row(st, &r)) {
      if (nskipped) (*nskipped)++;
      continue;
    }
    s = own_record(db->ctx, &r, out);
    if (!s) *found = true;
    break;
  }
  sqlite3_finalize(st);
  if (s) return s;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sql_fail(db, rc, "finding the best record");
  return KILN_OK;
}

kiln_status tune_db_list_records(tune_db *db, bool has_hash, uint64_t workload_hash,
                                 const char *target, tune_record_fn fn, void *ud,
                                 int64_t *nskipped) {
  if (!db) return KILN_ERR_MISUSE;
  if (!fn) return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune.db: no callback");
  if (nskipped) *nskipped = 0;
  sqlite3_stmt *st;
  kiln_status s = prepare(db,
                          "SELECT " RECORD_COLUMNS RECORD_FROM
                          " WHERE (?1 = 0 OR w.hash = ?2) AND (?3 IS NULL OR t.canonical = ?3)"
                          " ORDER BY r.id",
                          &st, "listing records");
  if (s) return s;
  sqlite3_bind_int(st, 1, has_hash);
  sqlite3_bind_int64(st, 2, u2i(workload_hash));
  if (target) sqlite3_bind_text(st, 3, target, -1, SQLITE_STATIC);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    tune_record r;
    if (!read_row(st, &r)) {
      if (nskipped) (*nskipped)++;
      continue;
    }
    if (fn(ud, &r)) break;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sql_fail(db, rc, "listing records");
  return KILN_OK;
}

kiln_status tune_db_list_workloads(tune_db *db, tune_workload_fn fn, void *ud) {
  if (!db) return KILN_ERR_MISUSE;
  if (!fn) return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune.db: no callback");
  sqlite3_stmt *st;
  kiln_status s = prepare(db, "SELECT id, hash, summary, func_text FROM workloads ORDER BY id",
                          &st, "listing workloads");
  if (s) return s;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    tune_workload w = {
        .id = sqlite3_column_int64(st, 0),
        .hash = i2u(sqlite3_column_int64(st, 1)),
        .summary = (const char *)sqlite3_column_text(st, 2),
        .func_text = (const char *)sqlite3_column_text(st, 3),
    };
    if (!w.summary) w.summary = "";
    if (!w.func_text) w.func_text = "";
    if (fn(ud, &w)) break;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sql_fail(db, rc, "listing workloads");
  return KILN_OK;
}

kiln_status tune_db_list_targets(tune_db *db, tune_target_fn fn, void *ud) {
  if (!db) return KILN_ERR_MISUSE;
  if (!fn) return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune.db: no callback");
  sqlite3_stmt *st;
  kiln_status s = prepare(db, "SELECT id, canonical, cpu, features FROM targets ORDER BY id",
                          &st, "listing targets");
  if (s) return s;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    tune_target t = {
        .id = sqlite3_column_int64(st, 0),
        .canonical = (const char *)sqlite3_column_text(st, 1),
        .cpu = (const char *)sqlite3_column_text(st, 2),
        .features = (const char *)sqlite3_column_text(st, 3),
    };
    if (!t.canonical) t.canonical = "";
    if (!t.cpu) t.cpu = "";
    if (!t.features) t.features = "";
    if (fn(ud, &t)) break;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sql_fail(db, rc, "listing targets");
  return KILN_OK;
}

/* ---- Export / import (JSON lines) -------------------------------------------------------- */

static void hex64(char buf[17], uint64_t v) { snprintf(buf, 17, "%016llx", (unsigned long long)v); }

/* Parses exactly 16 hex digits. */
static bool parse_hex64(const char *s, uint64_t *out) {
  if (!s || strlen(s) != 16) return false;
  uint64_t v = 0;
  for (int i = 0; i < 16; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9' ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return false;
    v = v << 4 | (uint64_t)d;
  }
  *out = v;
  return true;
}

/* Export state: the open file and what went wrong (cJSON / stdio failures). */
typedef struct exporter {
  FILE *f;
  bool oom, io;
  int64_t nrecords;
} exporter;

/* Writes one JSON object as a line and frees it. */
static void put_line(exporter *e, cJSON *obj) {
  if (!obj) {
    e->oom = true;
    return;
  }
  char *text = cJSON_PrintUnformatted(obj);
  cJSON_Delete(obj);
  if (!text) {
    e->oom = true;
    return;
  }
  if (fputs(text, e->f) < 0 || fputc('\n', e->f) < 0) e->io = true;
  cJSON_free(text);
}

/* cJSON_Add* return NULL on failure; one check at the end (put_line) would miss a partial
 * object, so each helper marks the exporter. */
static void add_str(exporter *e, cJSON *o, const char *k, const char *v) {
  if (!cJSON_AddStringToObject(o, k, v)) e->oom = true;
}
/* Numbers are written with 17 significant digits as raw JSON: cJSON's own printer may round
 * a double to 15 digits, and an export must give back the exact values. */
static void add_num(exporter *e, cJSON *o, const char *k, double v) {
  char buf[40];
  snprintf(buf, sizeof buf, "%.17g", v);
  if (!cJSON_AddRawToObject(o, k, buf)) e->oom = true;
}
static void add_int(exporter *e, cJSON *o, const char *k, int64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", (long long)v);
  if (!cJSON_AddRawToObject(o, k, buf)) e->oom = true;
}

static int export_workload(void *ud, const tune_workload *w) {
  exporter *e = ud;
  cJSON *o = cJSON_CreateObject();
  if (o) {
    char h[17];
    hex64(h, w->hash);
    add_str(e, o, "kind", "workload");
    add_str(e, o, "hash", h);
    add_str(e, o, "summary", w->summary);
    add_str(e, o, "func_text", w->func_text);
  }
  put_line(e, o);
  return e->oom || e->io;
}

static int export_target(void *ud, const tune_target *t) {
  exporter *e = ud;
  cJSON *o = cJSON_CreateObject();
  if (o) {
    add_str(e, o, "kind", "target");
    add_str(e, o, "canonical", t->canonical);
    add_str(e, o, "cpu", t->cpu);
    add_str(e, o, "features", t->features);
  }
  put_line(e, o);
  return e->oom || e->io;
}

static int export_record(void *ud, const tune_record *r) {
  exporter *e = ud;
  cJSON *o = cJSON_CreateObject();
  if (o) {
    char h[17], seed[17];
    hex64(h, r->workload_hash);
    hex64(seed, r->seed);
    add_str(e, o, "kind", "record");
    add_str(e, o, "workload", h);
    add_str(e, o, "target", r->target);
    add_str(e, o, "trace", r->trace_json);
    add_num(e, o, "median_s", r->median_s);
    add_num(e, o, "min_s", r->min_s);
    add_num(e, o, "max_s", r->max_s);
    add_num(e, o, "stddev_s", r->stddev_s);
    add_int(e, o, "repeats", r->repeats);
    add_str(e, o, "status", tune_status_name(r->status));
    add_str(e, o, "error", r->error);
    add_str(e, o, "seed", seed);
    add_str(e, o, "kiln_version", r->kiln_version);
    add_str(e, o, "host", r->host);
    add_int(e, o, "time", r->time);
  }
  put_line(e, o);
  e->nrecords++;
  return e->oom || e->io;
}

kiln_status tune_db_export(tune_db *db, const char *path, int64_t *nrecords,
                           int64_t *nskipped) {
  if (!db) return KILN_ERR_MISUSE;
  if (!path) return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune.db: no export path");
  exporter e = {.f = fopen(path, "w")};
  if (!e.f)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_IO, "tune.db: cannot write %s: %s", path,
                   strerror(errno));
  /* One read transaction, so the export is a consistent snapshot. */
  kiln_status s = exec(db, "BEGIN", "exporting");
  if (!s) {
    cJSON *head = cJSON_CreateObject();
    if (head) {
      add_str(&e, head, "format", "kiln-tune-db");
      add_int(&e, head, "schema_version", db->version);
    }
    put_line(&e, head);
    if (!e.oom && !e.io) s = tune_db_list_workloads(db, export_workload, &e);
    if (!s && !e.oom && !e.io) s = tune_db_list_targets(db, export_target, &e);
    if (!s && !e.oom && !e.io)
      s = tune_db_list_records(db, false, 0, NULL, export_record, &e, nskipped);
    rollback(db);
  }
  if (fclose(e.f) != 0) e.io = true;
  if (s) return s;
  if (e.oom)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "tune.db: out of memory exporting");
  if (e.io)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_IO, "tune.db: error writing %s", path);
  if (nrecords) *nrecords = e.nrecords;
  return KILN_OK;
}

/* Reads a whole file into context memory (NUL-terminated; free with len + 1). */
static kiln_status read_all(tune_db *db, const char *path, char **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_IO, "tune.db: cannot read %s: %s", path,
                   strerror(errno));
  ir_strbuf sb;
  ir_sb_init(&sb, db->ctx);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) ir_sb_putn(&sb, buf, n);
  bool err = ferror(f);
  fclose(f);
  if (err) {
    ir_sb_free(&sb);
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_IO, "tune.db: error reading %s", path);
  }
  ir_sb_puts(&sb, "");
  char *text = ir_sb_take(&sb, len);
  if (!text) return KILN_ERR_NOMEM;
  *out = text;
  return KILN_OK;
}

/* The string member k of o, or NULL. */
static const char *get_str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}
static bool get_num(const cJSON *o, const char *k, double *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!cJSON_IsNumber(v)) return false;
  *out = v->valuedouble;
  return true;
}

/* Imports one parsed line. Returns KILN_ERR_CORRUPT (unrecorded: the caller names the line)
 * for a malformed object, or the recorded status of a database failure. */
static kiln_status import_object(tune_db *db, const cJSON *o, bool *bad, int64_t *nadded) {
  const char *kind = get_str(o, "kind");
  *bad = true;
  if (!kind) return KILN_ERR_CORRUPT;
  if (strcmp(kind, "workload") == 0) {
    uint64_t h;
    const char *summary = get_str(o, "summary"), *text = get_str(o, "func_text");
    if (!parse_hex64(get_str(o, "hash"), &h) || !summary || !text) return KILN_ERR_CORRUPT;
    *bad = false;
    sqlite3_stmt *st;
    kiln_status s = prepare(db, "INSERT OR IGNORE INTO workloads(hash, summary, func_text)"
                                " VALUES(?1, ?2, ?3)", &st, "importing a workload");
    if (s) return s;
    sqlite3_bind_int64(st, 1, u2i(h));
    sqlite3_bind_text(st, 2, summary, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? KILN_OK : sql_fail(db, rc, "importing a workload");
  }
  if (strcmp(kind, "target") == 0) {
    const char *canon = get_str(o, "canonical"), *cpu = get_str(o, "cpu"),
               *feat = get_str(o, "features");
    if (!canon || !*canon || !cpu || !feat) return KILN_ERR_CORRUPT;
    *bad = false;
    sqlite3_stmt *st;
    kiln_status s = prepare(db, "INSERT OR IGNORE INTO targets(canonical, cpu, features)"
                                " VALUES(?1, ?2, ?3)", &st, "importing a target");
    if (s) return s;
    sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, cpu, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, feat, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? KILN_OK : sql_fail(db, rc, "importing a target");
  }
  if (strcmp(kind, "record") != 0) return KILN_ERR_CORRUPT;
  tune_record r = {0};
  double repeats, t;
  r.target = get_str(o, "target");
  r.trace_json = get_str(o, "trace");
  r.error = get_str(o, "error");
  r.kiln_version = get_str(o, "kiln_version");
  r.host = get_str(o, "host");
  if (!parse_hex64(get_str(o, "workload"), &r.workload_hash) ||
      !parse_hex64(get_str(o, "seed"), &r.seed) || !get_num(o, "median_s", &r.median_s) ||
      !get_num(o, "min_s", &r.min_s) || !get_num(o, "max_s", &r.max_s) ||
      !get_num(o, "stddev_s", &r.stddev_s) || !get_num(o, "repeats", &repeats) ||
      !get_num(o, "time", &t) || !tune_status_parse(get_str(o, "status"), &r.status) ||
      !r.target || !r.trace_json || !r.error || !r.kiln_version || !r.host ||
      repeats < 0 || repeats > INT32_MAX || repeats != (int32_t)repeats || !(fabs(t) < 9e18) ||
      !json_ok(r.trace_json))
    return KILN_ERR_CORRUPT;
  r.repeats = (int32_t)repeats;
  r.time = (int64_t)t;
  *bad = false;
  kiln_status s = check_record(db, &r);
  if (s) return s;
  int64_t wid, tid;
  bool added;
  if ((s = find_id(db, true, r.workload_hash, NULL, &wid)) ||
      (s = find_id(db, false, 0, r.target, &tid)) ||
      (s = insert_record(db, wid, tid, &r, true, &added, NULL)))
    return s;
  if (added) (*nadded)++;
  return KILN_OK;
}

kiln_status tune_db_import(tune_db *db, const char *path, int64_t *nadded) {
  if (!db) return KILN_ERR_MISUSE;
  if (!path) return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune.db: no import path");
  char *text;
  size_t len;
  kiln_status s = read_all(db, path, &text, &len);
  if (s) return s;
  int64_t added = 0;
  if ((s = begin(db))) goto done;
  /* Lines are cut in place: each '\n' becomes a NUL. */
  char *line = text;
  bool seen_header = false;
  for (int lineno = 1; line < text + len; lineno++) {
    char *eol = strchr(line, '\n');
    if (eol) *eol = 0;
    char *next = eol ? eol + 1 : text + len;
    if (*line == 0) {
      line = next;
      continue;
    }
    cJSON *o = cJSON_ParseWithOpts(line, NULL, true);
    bool bad = o == NULL, header = !seen_header;
    if (o && header) {
      const char *fmt = get_str(o, "format");
      double v;
      bad = !fmt || strcmp(fmt, "kiln-tune-db") != 0 || !get_num(o, "schema_version", &v);
      seen_header = true;
    } else if (o) {
      s = import_object(db, o, &bad, &added);
    }
    cJSON_Delete(o);
    if (bad) {
      s = ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT,
                  header ? "tune.db: %s:%d: not a kiln tuning export (bad header line)"
                         : "tune.db: %s:%d: malformed line",
                  path, lineno);
      break;
    }
    if (s) break;
    line = next;
  }
  if (!s && !seen_header)
    s = ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT,
                "tune.db: %s: not a kiln tuning export (empty file)", path);
  if (!s) s = commit(db);
  if (s) rollback(db);
done:
  ir_free(db->ctx, text, len + 1);
  if (!s && nadded) *nadded = added;
  return s;
}

/* ---- Merge and prune --------------------------------------------------------------------- */

/* A record of the attached database `src` that merge trusts: known status, valid JSON trace,
 * numeric statistics, text provenance. */
#define SRC_RECORD_SOUND                                                                   \
  "r.status IN ('ok', 'build_error', 'run_error', 'timeout', 'wrong_result')"              \
  " AND typeof(r.trace_json) = 'text' AND json_valid(r.trace_json)"                        \
  " AND typeof(r.median_s) IN ('real', 'integer') AND typeof(r.min_s) IN ('real', 'integer')" \
  " AND typeof(r.max_s) IN ('real', 'integer') AND typeof(r.stddev_s) IN ('real', 'integer')" \
  " AND typeof(r.repeats) = 'integer' AND typeof(r.seed) = 'integer'"                      \
  " AND typeof(r.time) = 'integer' AND typeof(r.error) = 'text'"                           \
  " AND typeof(r.kiln_version) = 'text' AND typeof(r.host) = 'text'"

/* Counts rows of a query returning one integer. */
static kiln_status count(tune_db *db, const char *sql, int64_t *out, const char *what) {
  sqlite3_stmt *st;
  kiln_status s = prepare(db, sql, &st, what);
  if (s) return s;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? KILN_OK : sql_fail(db, rc, what);
}

/* Checks the attached database `src`: sound (quick_check), a tuning database of our schema
 * version. Messages name the other file. */
static kiln_status check_src(tune_db *db, const char *path) {
  int64_t v = -1, ntables = 0;
  sqlite3_stmt *st;
  kiln_status s = prepare(db, "PRAGMA src.quick_check(1)", &st, "checking the other database");
  if (s) return s;
  int rc = sqlite3_step(st);
  const char *res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
  bool ok = res && strcmp(res, "ok") == 0;
  if (!ok)
    s = ir_fail(db->ctx, IR_NO_SPAN, rc == SQLITE_ROW ? KILN_ERR_CORRUPT : map_code(rc),
                "tune.db: %s: cannot merge, file is damaged or not a database: %s", path,
                res ? res : sqlite3_errmsg(db->h));
  sqlite3_finalize(st);
  if (s) return s;
  if ((s = count(db, "SELECT count(*) FROM src.sqlite_master WHERE type = 'table' AND"
                     " name IN ('meta', 'workloads', 'targets', 'records')",
                 &ntables, "reading the other database")))
    return s;
  if (ntables != 4)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT,
                   "tune.db: %s: not a tuning database (tables missing)", path);
  if ((s = count(db, "SELECT CASE WHEN typeof(value) = 'integer' THEN value ELSE -1 END"
                     " FROM src.meta WHERE key = 'schema_version'",
                 &v, "reading the other database's version")))
    return s;
  if (v != TUNE_DB_SCHEMA_VERSION)
    return ir_fail(db->ctx, IR_NO_SPAN, v < 0 ? KILN_ERR_CORRUPT : KILN_ERR_UNSUPPORTED,
                   "tune.db: %s: schema version %lld, merge needs %d (open it with this kiln "
                   "first to migrate it)", path, (long long)v, TUNE_DB_SCHEMA_VERSION);
  return KILN_OK;
}

kiln_status tune_db_merge(tune_db *db, const char *path, int64_t *nadded, int64_t *nskipped) {
  if (!db) return KILN_ERR_MISUSE;
  if (!path) return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune.db: no merge path");
  /* ATTACH would create a missing file; and it reads through a URI so the source is opened
   * read-only. */
  if (access(path, R_OK) != 0)
    return ir_fail(db->ctx, IR_NO_SPAN, KILN_ERR_IO, "tune.db: cannot read %s: %s", path,
                   strerror(errno));
  ir_strbuf uri;
  ir_sb_init(&uri, db->ctx);
  ir_sb_puts(&uri, "file:");
  for (const char *p = path; *p; p++) {
    if (*p == '%' || *p == '?' || *p == '#')
      ir_sb_printf(&uri, "%%%02X", (unsigned char)*p);
    else
      ir_sb_putn(&uri, p, 1);
  }
  ir_sb_puts(&uri, "?mode=ro");
  size_t ulen;
  char *u = ir_sb_take(&uri, &ulen);
  if (!u) return KILN_ERR_NOMEM;
  sqlite3_stmt *st;
  kiln_status s = prepare(db, "ATTACH DATABASE ?1 AS src", &st, "attaching the other database");
  if (!s) {
    sqlite3_bind_text(st, 1, u, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
      s = ir_fail(db->ctx, IR_NO_SPAN, map_code(rc), "tune.db: %s: cannot merge it: %s", path,
                  sqlite3_errmsg(db->h));
  }
  ir_free(db->ctx, u, ulen + 1);
  if (s) return s;

  int64_t before = 0, after = 0, total = 0, sound = 0;
  if ((s = begin(db))) goto detach;
  if ((s = check_src(db, path))) goto fail;
  if ((s = exec(db,
                "INSERT OR IGNORE INTO main.workloads(hash, summary, func_text)"
                " SELECT hash, summary, func_text FROM src.workloads"
                " WHERE typeof(hash) = 'integer' AND typeof(summary) = 'text'"
                " AND typeof(func_text) = 'text' ORDER BY id;"
                "INSERT OR IGNORE INTO main.targets(canonical, cpu, features)"
                " SELECT canonical, cpu, features FROM src.targets"
                " WHERE typeof(canonical) = 'text' AND typeof(cpu) = 'text'"
                " AND typeof(features) = 'text' ORDER BY id;",
                "merging workloads and targets")))
    goto fail;
  if ((s = count(db, "SELECT count(*) FROM main.records", &before, "merging records")) ||
      (s = count(db, "SELECT count(*) FROM src.records", &total, "merging records")) ||
      (s = count(db, "SELECT count(*) FROM src.records r WHERE " SRC_RECORD_SOUND, &sound,
                 "merging records")))
    goto fail;
  if ((s = exec(db,
                "INSERT INTO main.records(workload_id, target_id, trace_json, median_s, min_s,"
                " max_s, stddev_s, repeats, status, error, seed, kiln_version, host, time)"
                " SELECT DISTINCT mw.id, mt.id, r.trace_json, r.median_s, r.min_s, r.max_s,"
                " r.stddev_s, r.repeats, r.status, r.error, r.seed, r.kiln_version, r.host,"
                " r.time FROM src.records r"
                " JOIN src.workloads sw ON sw.id = r.workload_id"
                " JOIN main.workloads mw ON mw.hash = sw.hash"
                " JOIN src.targets st ON st.id = r.target_id"
                " JOIN main.targets mt ON mt.canonical = st.canonical"
                " WHERE " SRC_RECORD_SOUND
                " AND NOT EXISTS (SELECT 1 FROM main.records x WHERE x.workload_id = mw.id"
                "  AND x.target_id = mt.id AND x.status = r.status AND x.median_s = r.median_s"
                "  AND x.trace_json = r.trace_json AND x.min_s = r.min_s AND x.max_s = r.max_s"
                "  AND x.stddev_s = r.stddev_s AND x.repeats = r.repeats AND x.error = r.error"
                "  AND x.seed = r.seed AND x.kiln_version = r.kiln_version"
                "  AND x.host = r.host AND x.time = r.time)",
                "merging records")) ||
      (s = count(db, "SELECT count(*) FROM main.records", &after, "merging records")) ||
      (s = commit(db)))
    goto fail;
  if (nadded) *nadded = after - before;
  if (nskipped) *nskipped = total - sound;
  goto detach;
fail:
  rollback(db);
detach:
  sqlite3_exec(db->h, "DETACH DATABASE src", NULL, NULL, NULL);
  return s;
}

kiln_status tune_db_prune(tune_db *db, int64_t keep_best, int64_t failed_before,
                          int64_t *ndeleted) {
  if (!db) return KILN_ERR_MISUSE;
  kiln_status s = begin(db);
  if (s) return s;
  int64_t deleted = 0;
  sqlite3_stmt *st = NULL;
  if (keep_best >= 0) {
    if ((s = prepare(db,
                     "DELETE FROM records WHERE status = 'ok' AND id NOT IN ("
                     " SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY workload_id,"
                     "  target_id ORDER BY median_s, id) AS rank FROM records"
                     "  WHERE status = 'ok') WHERE rank <= ?1)",
                     &st, "pruning records")))
      goto fail;
    sqlite3_bind_int64(st, 1, keep_best);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
      s = sql_fail(db, rc, "pruning records");
      goto fail;
    }
    deleted += sqlite3_changes(db->h);
  }
  if ((s = prepare(db, "DELETE FROM records WHERE status <> 'ok' AND time < ?1", &st,
                   "pruning failed records")))
    goto fail;
  sqlite3_bind_int64(st, 1, failed_before);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    s = sql_fail(db, rc, "pruning failed records");
    goto fail;
  }
  deleted += sqlite3_changes(db->h);
  if ((s = commit(db))) goto fail;
  if (ndeleted) *ndeleted = deleted;
  return KILN_OK;
fail:
  rollback(db);
  return s;
}

/* database.h: the tuning database (internal, prefix tune_db_): one SQLite file in WAL mode that
 * several tuner processes share. It stores workloads (PrimFuncs keyed by structural hash),
 * targets, and measurement records (a schedule trace as JSON plus its latency statistics), and
 * answers "best trace for (workload, target)". Tools list, export/import (JSON lines), merge
 * and prune databases. Corrupted files are refused with KILN_ERR_CORRUPT naming the file. */
#ifndef KILN_AUTOTUNE_DATABASE_H
#define KILN_AUTOTUNE_DATABASE_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/base.h"

/* The schema version this kiln writes. Older files are migrated on open (inside a
 * transaction); newer ones are refused with KILN_ERR_UNSUPPORTED. */
#define TUNE_DB_SCHEMA_VERSION 2

/* How long a writer waits for another process's lock before giving up (milliseconds). */
#define TUNE_DB_BUSY_TIMEOUT_MS 10000

typedef struct tune_db tune_db;

/* The outcome of one measurement; stored as its name ("ok", "build_error", ...). */
typedef enum tune_status {
  TUNE_STATUS_OK = 0,
  TUNE_STATUS_BUILD_ERROR,
  TUNE_STATUS_RUN_ERROR,
  TUNE_STATUS_TIMEOUT,
  TUNE_STATUS_WRONG_RESULT,
} tune_status;

/* "ok", "build_error", "run_error", "timeout", "wrong_result"; "?" for other values. */
const char *tune_status_name(tune_status s);
/* The status named `name`; false when the name is unknown. */
bool tune_status_parse(const char *name, tune_status *out);

/* A workload as stored (strings borrowed: valid only during a list callback). */
typedef struct tune_workload {
  int64_t id;
  uint64_t hash;         /* structural hash of the PrimFunc */
  const char *summary;   /* op summary and shapes, e.g. "dense 64x128x256 f32" */
  const char *func_text; /* the PrimFunc as TIR text */
} tune_workload;

/* A target as stored (strings borrowed: valid only during a list callback). */
typedef struct tune_target {
  int64_t id;
  const char *canonical; /* canonical target string, the key */
  const char *cpu;
  const char *features;
} tune_target;

/* One measurement record. For tune_db_add_record the strings are the caller's; `id` is
 * ignored; kiln_version == NULL means kiln_version(), host == NULL this machine's name,
 * time == 0 now. Records read back (list, best) have every field filled. */
typedef struct tune_record {
  int64_t id;
  uint64_t workload_hash;
  const char *target;     /* canonical target string */
  const char *trace_json; /* the schedule trace (sch_trace JSON); must parse as JSON */
  double median_s, min_s, max_s, stddev_s;
  int32_t repeats;
  tune_status status;
  const char *error;      /* error text; NULL or "" when none */
  uint64_t seed;
  const char *kiln_version;
  const char *host;
  int64_t time;           /* unix seconds */
} tune_record;

/* Opens (creating if missing) the database at path, switches it to WAL mode with a busy
 * timeout, checks its integrity (PRAGMA quick_check: time proportional to the file size),
 * and migrates an older schema. Errors: KILN_ERR_IO (cannot open or write), KILN_ERR_CORRUPT
 * (not a database, damaged, a table missing, a bad schema version), KILN_ERR_UNSUPPORTED
 * (schema newer than this kiln). *out is set only on success; close it with tune_db_close.
 * One handle must be used by one thread at a time; fork children open their own. */
kiln_status tune_db_open(kiln_context *ctx, const char *path, tune_db **out);
/* Closes the handle (NULL is fine). */
void tune_db_close(tune_db *db);
/* The schema version of the open file (TUNE_DB_SCHEMA_VERSION after open). */
int tune_db_schema_version(tune_db *db);

/* Registers a workload; an existing hash keeps its stored summary and text. *id (if not
 * NULL) receives the row id. */
kiln_status tune_db_add_workload(tune_db *db, uint64_t hash, const char *summary,
                                 const char *func_text, int64_t *id);
/* Registers a target by its canonical string; an existing one keeps its cpu/features. */
kiln_status tune_db_add_target(tune_db *db, const char *canonical, const char *cpu,
                               const char *features, int64_t *id);

/* Adds a record in its own (immediate) transaction. The workload and the target must have
 * been added (else KILN_ERR_UNDEFINED); the trace must parse as JSON (else KILN_ERR_PARSE);
 * statistics must be finite and repeats >= 0 (else KILN_ERR_MISUSE). *id may be NULL. */
kiln_status tune_db_add_record(tune_db *db, const tune_record *r, int64_t *id);

/* The ok record with the lowest median for (workload_hash, target). *found tells whether
 * there is one. Records whose columns are corrupted (trace that does not parse, non-numeric
 * statistics) are skipped; *nskipped (may be NULL) counts those met before the answer (the
 * ones that ranked ahead of it: a text median ranks after every number) so the caller can
 * warn. On
 * success with *found, the strings of *out belong to the caller: free them with
 * tune_record_clear. */
kiln_status tune_db_best(tune_db *db, uint64_t workload_hash, const char *target,
                         tune_record *out, bool *found, int64_t *nskipped);
/* Frees the strings of a record filled by tune_db_best and zeroes it. */
void tune_record_clear(kiln_context *ctx, tune_record *r);

/* Callbacks for the list functions: the pointed-to data is borrowed for the call only.
 * Returning nonzero stops the listing (the list function still returns KILN_OK). */
typedef int (*tune_workload_fn)(void *ud, const tune_workload *w);
typedef int (*tune_target_fn)(void *ud, const tune_target *t);
typedef int (*tune_record_fn)(void *ud, const tune_record *r);

/* Every workload, by id. */
kiln_status tune_db_list_workloads(tune_db *db, tune_workload_fn fn, void *ud);
/* Every target, by id. */
kiln_status tune_db_list_targets(tune_db *db, tune_target_fn fn, void *ud);
/* Records in id order, filtered by workload (when has_hash) and target (when not NULL).
 * Corrupted rows (unknown status, trace that does not parse, wrong column types) are not
 * passed to fn; *nskipped (may be NULL) counts them. */
kiln_status tune_db_list_records(tune_db *db, bool has_hash, uint64_t workload_hash,
                                 const char *target, tune_record_fn fn, void *ud,
                                 int64_t *nskipped);

/* Writes the database as JSON lines to path: a header line
 * {"format":"kiln-tune-db","schema_version":N}, then one object per workload, target and
 * record ("kind": "workload" / "target" / "record"; hashes and seeds as 16-digit hex).
 * Corrupted records are left out and counted in *nskipped (may be NULL). */
kiln_status tune_db_export(tune_db *db, const char *path, int64_t *nrecords,
                           int64_t *nskipped);
/* Reads a file written by tune_db_export into this database, in one transaction: workloads
 * and targets already present are kept, records identical to a stored one are not added
 * again. A malformed line is KILN_ERR_CORRUPT naming the file and line (nothing imported). */
kiln_status tune_db_import(tune_db *db, const char *path, int64_t *nadded);

/* Merges the database file at path (same schema version, else KILN_ERR_UNSUPPORTED) into this
 * one, in one transaction: missing workloads and targets are copied, records identical to a
 * stored one are not added again, corrupted records (unknown status, invalid JSON, non-numeric
 * statistics) are not copied and counted in *nskipped. The other file is only read. */
kiln_status tune_db_merge(tune_db *db, const char *path, int64_t *nadded, int64_t *nskipped);

/* Prunes in one transaction: for each (workload, target) keeps the keep_best ok records with
 * the lowest medians (keep_best < 0: keep all ok records), and deletes the failed records
 * whose time is before failed_before (unix seconds; INT64_MAX: every failed one, 0: none).
 * *ndeleted (may be NULL) receives the number of records deleted. */
kiln_status tune_db_prune(tune_db *db, int64_t keep_best, int64_t failed_before,
                          int64_t *ndeleted);

#endif

/* cmd_db.c: `kiln db`: looks after tuning databases (autotune/database.c):
 *   kiln db list DB [--records] [--workload HASH] [--target T]
 *   kiln db best DB --workload HASH --target T
 *   kiln db export DB OUT.jsonl      kiln db import DB IN.jsonl
 *   kiln db merge DB OTHER.db        kiln db prune DB [--keep N] [--drop-failed]
 * Exit status 0 on success, 1 on an error (named on stderr), 2 on a usage error. main() in
 * kiln.c calls kiln_cmd_db with the arguments after "db". */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/database.h"
#include "kiln/kiln.h"
#include "tools/tool.h"


static const char db_usage[] =
    "usage: kiln db list DB [--records] [--workload HASH] [--target T]\n"
    "       kiln db best DB --workload HASH --target T\n"
    "       kiln db export DB OUT.jsonl\n"
    "       kiln db import DB IN.jsonl\n"
    "       kiln db merge DB OTHER.db\n"
    "       kiln db prune DB [--keep N] [--drop-failed]\n"
    "  list: workloads and targets (with --records: the records, optionally of one workload\n"
    "  (16-hex-digit hash) and target); best: the fastest ok record's trace and statistics;\n"
    "  export/import: JSON lines; merge: adds another database's records; prune: keeps the N\n"
    "  best ok records per workload and target (default 5), --drop-failed deletes failures\n"
    "exit status: 0 success, 1 failure, 2 usage error (unknown option, missing argument,\n"
    "malformed value)\n";

typedef struct db_options {
  const char *verb, *db, *file, *target;
  bool records, has_hash, drop_failed;
  uint64_t hash;
  int64_t keep;
} db_options;

/* Returns 0, 2 (a usage error, reported) or 3 (--help printed). */
static int parse_db_options(int argc, char **argv, db_options *o) {
  memset(o, 0, sizeof *o);
  o->keep = 5;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    bool has_value = i + 1 < argc;
    if (strcmp(a, "--records") == 0) {
      o->records = true;
    } else if (strcmp(a, "--drop-failed") == 0) {
      o->drop_failed = true;
    } else if (strcmp(a, "--target") == 0 && has_value) {
      o->target = argv[++i];
    } else if (strcmp(a, "--workload") == 0 && has_value) {
      char *end;
      const char *v = argv[++i];
      o->hash = strtoull(v, &end, 16);
      if (*end || end == v) {
        fprintf(stderr, "kiln db: --workload takes a hexadecimal hash, not '%s'\n", v);
        return 2;
      }
      o->has_hash = true;
    } else if (strcmp(a, "--keep") == 0 && has_value) {
      char *end;
      const char *v = argv[++i];
      o->keep = strtoll(v, &end, 10);
      if (*end || end == v || o->keep < 0) {
        fprintf(stderr, "kiln db: --keep takes a count >= 0, not '%s'\n", v);
        return 2;
      }
    } else if (strcmp(a, "--help") == 0) {
      fputs(db_usage, stdout);
      return 3;
    } else if (a[0] == '-') {
      fprintf(stderr, "kiln db: unknown option or missing value: '%s'\n%s", a, db_usage);
      return 2;
    } else if (!o->verb) {
      o->verb = a;
    } else if (!o->db) {
      o->db = a;
    } else if (!o->file) {
      o->file = a;
    } else {
      fprintf(stderr, "kiln db: unexpected argument '%s'\n", a);
      return 2;
    }
  }
  static const char *const verbs[] = {"list", "best", "export", "import", "merge", "prune"};
  bool known = false;
  for (size_t i = 0; o->verb && i < sizeof verbs / sizeof verbs[0]; i++)
    known |= strcmp(o->verb, verbs[i]) == 0;
  if (!known) {
    fprintf(stderr, "kiln db: %s%s%s\n%s", o->verb ? "unknown command '" : "no command given",
            o->verb ? o->verb : "", o->verb ? "'" : "", db_usage);
    return 2;
  }
  if (!o->db) {
    fprintf(stderr, "kiln db %s: no database file given\n%s", o->verb, db_usage);
    return 2;
  }
  bool needs_file = !strcmp(o->verb, "export") || !strcmp(o->verb, "import") ||
                    !strcmp(o->verb, "merge");
  if (needs_file && !o->file) {
    fprintf(stderr, "kiln db %s: no %s file given\n", o->verb,
            strcmp(o->verb, "merge") ? "JSON lines" : "second database");
    return 2;
  }
  if (!needs_file && o->file) {
    fprintf(stderr, "kiln db %s: unexpected argument '%s'\n", o->verb, o->file);
    return 2;
  }
  if (!strcmp(o->verb, "best") && (!o->has_hash || !o->target)) {
    fprintf(stderr, "kiln db best: give --workload HASH and --target T\n");
    return 2;
  }
  return 0;
}

static int print_workload(void *ud, const tune_workload *w) {
  (void)ud;
  printf("workload %016" PRIx64 "  %s\n", w->hash, w->summary ? w->summary : "");
  return 0;
}

static int print_target(void *ud, const tune_target *t) {
  (void)ud;
  printf("target   %s\n", t->canonical);
  return 0;
}

static void print_record(const tune_record *r) {
  printf("record %" PRId64 "  workload %016" PRIx64 "  %-12s  median %.3f us  (min %.3f, max "
         "%.3f, %d repeats)  seed %" PRIu64 "%s%s\n",
         r->id, r->workload_hash, tune_status_name(r->status), r->median_s * 1e6,
         r->min_s * 1e6, r->max_s * 1e6, r->repeats, r->seed,
         r->error && *r->error ? "  error: " : "", r->error && *r->error ? r->error : "");
}

static int print_record_cb(void *ud, const tune_record *r) {
  (void)ud;
  print_record(r);
  return 0;
}

static int fail_db(kiln_context *ctx, const db_options *o) {
  fprintf(stderr, "kiln db %s: %s\n", o->verb, kiln_context_errmsg(ctx));
  return 1;
}

static int run_db(kiln_context *ctx, const db_options *o) {
  tune_db *db = NULL;
  if (tune_db_open(ctx, o->db, &db)) return fail_db(ctx, o);
  int rc = 1;
  int64_t n = 0, skipped = 0;
  if (!strcmp(o->verb, "list")) {
    if (o->records) {
      if (tune_db_list_records(db, o->has_hash, o->hash, o->target, print_record_cb, NULL,
                               &skipped))
        goto fail;
    } else if (tune_db_list_workloads(db, print_workload, NULL) ||
               tune_db_list_targets(db, print_target, NULL)) {
      goto fail;
    }
  } else if (!strcmp(o->verb, "best")) {
    tune_record r;
    bool found = false;
    if (tune_db_best(db, o->hash, o->target, &r, &found, &skipped)) goto fail;
    if (!found) {
      fprintf(stderr, "kiln db best: no ok record for workload %016" PRIx64 " on '%s'\n",
              o->hash, o->target);
      goto done;
    }
    print_record(&r);
    printf("%s\n", r.trace_json);
    tune_record_clear(ctx, &r);
  } else if (!strcmp(o->verb, "export")) {
    if (tune_db_export(db, o->file, &n, &skipped)) goto fail;
    printf("exported %" PRId64 " records to %s\n", n, o->file);
  } else if (!strcmp(o->verb, "import")) {
    if (tune_db_import(db, o->file, &n)) goto fail;
    printf("imported %" PRId64 " new records from %s\n", n, o->file);
  } else if (!strcmp(o->verb, "merge")) {
    if (tune_db_merge(db, o->file, &n, &skipped)) goto fail;
    printf("merged %" PRId64 " new records from %s\n", n, o->file);
  } else {
    if (tune_db_prune(db, o->keep, o->drop_failed ? INT64_MAX : 0, &n)) goto fail;
    printf("deleted %" PRId64 " records\n", n);
  }
  if (skipped)
    fprintf(stderr, "kiln db %s: %" PRId64 " corrupted records skipped\n", o->verb, skipped);
  rc = 0;
  goto done;
fail:
  rc = fail_db(ctx, o);
done:
  tune_db_close(db);
  return rc;
}

int kiln_cmd_db(int argc, char **argv) {
  db_options o;
  int st = parse_db_options(argc, argv, &o);
  if (st) return st == 3 ? 0 : st;
  kiln_context *ctx;
  if (kiln_context_new(&ctx)) {
    fprintf(stderr, "kiln db: cannot create a context\n");
    return 1;
  }
  int rc = run_db(ctx, &o);
  kiln_context_free(ctx);
  return rc;
}

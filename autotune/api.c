/* api.c: the public entry points of the autotuner: kiln_tune (tune_model over a Relay
 * module, its report as JSON through the tuner's own writer, progress translated to
 * kiln_tune_progress) and kiln_db_* (the tuning database of autotune/database.h, listed as
 * JSON: hashes and seeds as 16 hex digits, traces embedded as JSON values). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "autotune/database.h"
#include "autotune/tuner.h"
#include "kiln/kiln.h"
#include "relay/build.h"
#include "runtime/rt_internal.h"
#include "target/target.h"

struct kiln_db {
  kiln_context *ctx;
  tune_db *db;
};

#define CHECK_DB(d) \
  if (!(d) || !(d)->db) return rt_errorf(KILN_ERR_MISUSE, "%s: NULL database", __func__)

/* The target string (NULL or "": the host). */
static kiln_status read_target(kiln_context *ctx, const char *target, tgt_target *t) {
  return target && *target ? tgt_target_parse(ctx, target, t) : tgt_target_host(ctx, t);
}

/* ---- Tuning ------------------------------------------------------------------------------ */

typedef struct progress_bridge {
  kiln_tune_progress_fn fn;
  void *ud;
  volatile sig_atomic_t stop; /* the callback asked to stop (tune_model_opts.stop) */
} progress_bridge;

/* tune_model_progress -> kiln_tune_progress (the public struct names the same facts). */
static void forward_progress(void *ud, const tune_model_progress *p) {
  progress_bridge *b = ud;
  kiln_tune_progress q = {
      .round = p->round,
      .trials = p->trials,
      .budget = p->budget,
      .task = p->task,
      .ntasks = p->ntasks,
      .task_name = p->name,
      .task_trials = p->task_trials,
      .task_best_s = p->task_best_s,
      .task_gflops = p->task_gflops,
      .est_latency_s = p->est_latency_s,
      .default_latency_s = p->default_latency_s,
      .elapsed_s = p->elapsed_s,
  };
  if (b->fn(b->ud, &q) != 0) b->stop = 1;
}

KILN_API kiln_status kiln_tune(kiln_relay_module *m, int nbuckets, const kiln_bucket *buckets,
                               const kiln_tune_options *opts, char **report_json) {
  relay_module *rm = relay_api_module(m);
  if (!rm || !rm->ctx) return rt_errorf(KILN_ERR_MISUSE, "kiln_tune: NULL module");
  kiln_context *ctx = rm->ctx;
  if (report_json) *report_json = NULL;
  ir_clear_error(ctx);
  if (!opts || !opts->db_path || !*opts->db_path)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "kiln_tune: a tuning database path (options.db_path) is required");
  if (nbuckets < 0 || (nbuckets > 0 && !buckets))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_tune: bad bucket list (%d buckets)",
                   nbuckets);
  tgt_target t;
  kiln_status st = read_target(ctx, opts->target, &t);
  if (st) return st;
  tune_model_opts mo = tune_model_opts_default();
  mo.trials = opts->trials > 0 ? opts->trials : 64;
  mo.time_budget_s = opts->time_budget_s > 0 ? opts->time_budget_s : 0;
  mo.seed = opts->seed ? opts->seed : 1;
  progress_bridge bridge = {opts->progress, opts->progress_ud, 0};
  if (opts->progress) {
    mo.progress = forward_progress;
    mo.progress_ud = &bridge;
    mo.stop = &bridge.stop;
  }
  tune_db *db = NULL;
  if ((st = tune_db_open(ctx, opts->db_path, &db))) return st;
  tune_model_report *rep = NULL;
  st = tune_model(ctx, rm, nbuckets, buckets, &t, db, &mo, &rep);
  if (!st && report_json)
    st = tune_model_report_json(ctx, rep, "main", t.canonical, opts->db_path, report_json, NULL);
  tune_model_report_free(rep);
  tune_db_close(db);
  return st;
}

/* ---- The database ------------------------------------------------------------------------ */

KILN_API kiln_status kiln_db_open(kiln_context *ctx, const char *path, kiln_db **out) {
  if (!ctx) return rt_errorf(KILN_ERR_MISUSE, "kiln_db_open: NULL context");
  if (!path || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_db_open: NULL path or out");
  *out = NULL;
  ir_clear_error(ctx);
  kiln_db *d = ir_malloc(ctx, sizeof *d);
  if (!d) return KILN_ERR_NOMEM;
  d->ctx = ctx;
  kiln_status st = tune_db_open(ctx, path, &d->db);
  if (st) {
    ir_free(ctx, d, sizeof *d);
    return st;
  }
  *out = d;
  return KILN_OK;
}

KILN_API void kiln_db_close(kiln_db *d) {
  if (!d || !d->db) return;
  tune_db_close(d->db);
  ir_free(d->ctx, d, sizeof *d);
}

/* A 64-bit hash as 1 to 16 hex digits (what the listings write). */
static kiln_status parse_hash(kiln_context *ctx, const char *s, uint64_t *out) {
  size_t n = strlen(s);
  uint64_t v = 0;
  bool ok = n >= 1 && n <= 16;
  for (size_t i = 0; ok && i < n; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9' ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) ok = false;
    v = v * 16 + (uint64_t)(d < 0 ? 0 : d);
  }
  if (!ok)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "tuning database: '%.40s' is not a workload hash (1 to 16 hex digits)", s);
  *out = v;
  return KILN_OK;
}

/* Hands the finished listing to the caller (or frees it on failure). */
static kiln_status finish(ir_strbuf *sb, kiln_status st, char **out) {
  if (st) {
    ir_sb_free(sb);
    return st;
  }
  *out = ir_sb_take(sb, NULL);
  return *out ? KILN_OK : KILN_ERR_NOMEM;
}

/* One record as the listings write it: {"id", "workload", "target", "trace", "status",
 * "error", "median_s", "min_s", "max_s", "stddev_s", "repeats", "seed", "version", "host",
 * "time"}. The trace is embedded as it is: the database lists only records whose trace
 * parses as JSON. */
static void put_record(ir_strbuf *sb, const tune_record *r) {
  ir_sb_printf(sb, "{\"id\": %" PRId64 ", \"workload\": \"%016" PRIx64 "\", \"target\": ", r->id,
               r->workload_hash);
  tune_json_string(sb, r->target);
  ir_sb_puts(sb, ", \"trace\": ");
  ir_sb_puts(sb, r->trace_json && *r->trace_json ? r->trace_json : "null");
  ir_sb_puts(sb, ", \"status\": ");
  tune_json_string(sb, tune_status_name(r->status));
  ir_sb_puts(sb, ", \"error\": ");
  tune_json_string(sb, r->error ? r->error : "");
  ir_sb_puts(sb, ", \"median_s\": ");
  tune_json_number(sb, r->median_s, 17);
  ir_sb_puts(sb, ", \"min_s\": ");
  tune_json_number(sb, r->min_s, 17);
  ir_sb_puts(sb, ", \"max_s\": ");
  tune_json_number(sb, r->max_s, 17);
  ir_sb_puts(sb, ", \"stddev_s\": ");
  tune_json_number(sb, r->stddev_s, 17);
  ir_sb_printf(sb, ", \"repeats\": %d, \"seed\": \"%016" PRIx64 "\", \"version\": ",
               (int)r->repeats, r->seed);
  tune_json_string(sb, r->kiln_version);
  ir_sb_puts(sb, ", \"host\": ");
  tune_json_string(sb, r->host);
  ir_sb_printf(sb, ", \"time\": %" PRId64 "}", r->time);
}

/* ---- workloads --------------------------------------------------------------------------- */

/* The workloads, copied out of the listing callback (their strings are borrowed there) so
 * that their records can be queried afterwards. */
typedef struct wl_entry {
  int64_t id;
  uint64_t hash;
  char *summary; /* ctx memory */
} wl_entry;

typedef struct wl_list {
  kiln_context *ctx;
  int n, cap;
  wl_entry *items;
  kiln_status st;
} wl_list;

static int collect_workload(void *ud, const tune_workload *w) {
  wl_list *l = ud;
  if (l->n == l->cap) {
    int nc = l->cap ? 2 * l->cap : 16;
    wl_entry *ni = ir_realloc(l->ctx, l->items, sizeof *ni * (size_t)l->cap,
                              sizeof *ni * (size_t)nc);
    if (!ni) {
      l->st = KILN_ERR_NOMEM;
      return 1;
    }
    l->items = ni;
    l->cap = nc;
  }
  char *summary = ir_strdup(l->ctx, w->summary ? w->summary : "");
  if (!summary) {
    l->st = KILN_ERR_NOMEM;
    return 1;
  }
  l->items[l->n++] = (wl_entry){w->id, w->hash, summary};
  return 0;
}

static void wl_list_free(wl_list *l) {
  for (int i = 0; i < l->n; i++)
    ir_free(l->ctx, l->items[i].summary, strlen(l->items[i].summary) + 1);
  ir_free(l->ctx, l->items, sizeof *l->items * (size_t)l->cap);
}

/* Counts a workload's records and finds its best ok median (over every target). */
typedef struct wl_stats {
  int64_t nrecords;
  bool has_best;
  double best_s;
} wl_stats;

static int count_record(void *ud, const tune_record *r) {
  wl_stats *s = ud;
  s->nrecords++;
  if (r->status == TUNE_STATUS_OK && (!s->has_best || r->median_s < s->best_s)) {
    s->has_best = true;
    s->best_s = r->median_s;
  }
  return 0;
}

KILN_API kiln_status kiln_db_workloads_json(kiln_db *d, char **out) {
  CHECK_DB(d);
  if (!out) return ir_fail(d->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_db_workloads_json: NULL out");
  *out = NULL;
  ir_clear_error(d->ctx);
  wl_list l = {.ctx = d->ctx};
  kiln_status st = tune_db_list_workloads(d->db, collect_workload, &l);
  if (!st) st = l.st;
  ir_strbuf sb;
  ir_sb_init(&sb, d->ctx);
  ir_sb_puts(&sb, "[");
  for (int i = 0; i < l.n && !st; i++) {
    const wl_entry *w = &l.items[i];
    wl_stats s = {0};
    int64_t skipped = 0;
    st = tune_db_list_records(d->db, true, w->hash, NULL, count_record, &s, &skipped);
    if (st) break;
    ir_sb_printf(&sb, "%s\n {\"id\": %" PRId64 ", \"hash\": \"%016" PRIx64 "\", \"summary\": ",
                 i ? "," : "", w->id, w->hash);
    tune_json_string(&sb, w->summary);
    ir_sb_printf(&sb, ", \"nrecords\": %" PRId64 ", \"best_s\": ", s.nrecords + skipped);
    if (s.has_best) tune_json_number(&sb, s.best_s, 17);
    else ir_sb_puts(&sb, "null");
    ir_sb_puts(&sb, "}");
  }
  ir_sb_puts(&sb, l.n ? "\n]" : "]");
  wl_list_free(&l);
  return finish(&sb, st, out);
}

/* ---- targets ----------------------------------------------------------------------------- */

typedef struct target_lister {
  ir_strbuf *sb;
  int n;
  const char *host; /* this machine's canonical target ("" when unknown) */
} target_lister;

static int put_target(void *ud, const tune_target *t) {
  target_lister *tl = ud;
  ir_sb_printf(tl->sb, "%s\n {\"id\": %" PRId64 ", \"target\": ", tl->n++ ? "," : "", t->id);
  tune_json_string(tl->sb, t->canonical);
  ir_sb_puts(tl->sb, ", \"cpu\": ");
  tune_json_string(tl->sb, t->cpu);
  ir_sb_puts(tl->sb, ", \"features\": ");
  tune_json_string(tl->sb, t->features);
  ir_sb_printf(tl->sb, ", \"host\": %s}",
               t->canonical && strcmp(t->canonical, tl->host) == 0 ? "true" : "false");
  return 0;
}

/* "host" tells whether the target is this machine's (its canonical string is the one
 * "llvm" gives here). */
KILN_API kiln_status kiln_db_targets_json(kiln_db *d, char **out) {
  CHECK_DB(d);
  if (!out) return ir_fail(d->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_db_targets_json: NULL out");
  *out = NULL;
  ir_clear_error(d->ctx);
  tgt_target host;
  kiln_status st = tgt_target_host(d->ctx, &host);
  if (st) return st;
  ir_strbuf sb;
  ir_sb_init(&sb, d->ctx);
  target_lister tl = {&sb, 0, host.canonical};
  ir_sb_puts(&sb, "[");
  st = tune_db_list_targets(d->db, put_target, &tl);
  ir_sb_puts(&sb, tl.n ? "\n]" : "]");
  return finish(&sb, st, out);
}

/* ---- records ----------------------------------------------------------------------------- */

typedef struct record_lister {
  ir_strbuf *sb;
  int n;
} record_lister;

static int list_record(void *ud, const tune_record *r) {
  record_lister *rl = ud;
  ir_sb_puts(rl->sb, rl->n++ ? ",\n " : "\n ");
  put_record(rl->sb, r);
  return 0;
}

KILN_API kiln_status kiln_db_records_json(kiln_db *d, const char *hash, char **out) {
  CHECK_DB(d);
  if (!out) return ir_fail(d->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_db_records_json: NULL out");
  *out = NULL;
  ir_clear_error(d->ctx);
  uint64_t h = 0;
  kiln_status st = hash ? parse_hash(d->ctx, hash, &h) : KILN_OK;
  if (st) return st;
  ir_strbuf sb;
  ir_sb_init(&sb, d->ctx);
  record_lister rl = {&sb, 0};
  ir_sb_puts(&sb, "[");
  st = tune_db_list_records(d->db, hash != NULL, h, NULL, list_record, &rl, NULL);
  ir_sb_puts(&sb, rl.n ? "\n]" : "]");
  return finish(&sb, st, out);
}

/* The target is canonicalized first ("llvm" and the host's canonical string name the same
 * records). */
KILN_API kiln_status kiln_db_best_json(kiln_db *d, const char *hash, const char *target,
                                       char **out) {
  CHECK_DB(d);
  if (!hash || !out)
    return ir_fail(d->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_db_best_json: NULL hash or out");
  *out = NULL;
  ir_clear_error(d->ctx);
  uint64_t h;
  kiln_status st = parse_hash(d->ctx, hash, &h);
  if (st) return st;
  tgt_target t;
  if ((st = read_target(d->ctx, target, &t))) return st;
  tune_record r;
  bool found = false;
  if ((st = tune_db_best(d->db, h, t.canonical, &r, &found, NULL))) return st;
  ir_strbuf sb;
  ir_sb_init(&sb, d->ctx);
  if (found) {
    put_record(&sb, &r);
    tune_record_clear(d->ctx, &r);
  } else {
    ir_sb_puts(&sb, "null");
  }
  return finish(&sb, KILN_OK, out);
}

/* ---- merge ------------------------------------------------------------------------------- */

static int count_any(void *ud, const tune_record *r) {
  (void)r;
  (*(int64_t *)ud)++;
  return 0;
}

/* *skipped counts every record of the other file that was not added: already present (or
 * a duplicate within it) or corrupted. tune_db_merge counts only the corrupted ones, so the
 * other file's records are counted afterwards (it is a valid database by then, only read). */
KILN_API kiln_status kiln_db_merge(kiln_db *d, const char *other_path, int64_t *added,
                                   int64_t *skipped) {
  CHECK_DB(d);
  if (!other_path)
    return ir_fail(d->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_db_merge: NULL path");
  ir_clear_error(d->ctx);
  int64_t nadded = 0, ncorrupt = 0;
  kiln_status st = tune_db_merge(d->db, other_path, &nadded, &ncorrupt);
  if (st) return st;
  int64_t total = 0, bad = 0;
  tune_db *other = NULL;
  if ((st = tune_db_open(d->ctx, other_path, &other))) return st;
  st = tune_db_list_records(other, false, 0, NULL, count_any, &total, &bad);
  tune_db_close(other);
  if (st) return st;
  if (added) *added = nadded;
  if (skipped) *skipped = total + bad - nadded > ncorrupt ? total + bad - nadded : ncorrupt;
  return KILN_OK;
}

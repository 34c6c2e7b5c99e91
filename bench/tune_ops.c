/* tune_ops.c: kiln-bench-tune, the op-level tuning benchmark. Tunes fp32 matmul 1024^3 and the
 * ResNet-18 conv2d 3x3 64->64 56x56 (NCHW input, HWIO weights when that lowers, else OIHW)
 * with the evolutionary search (autotune/search.h) on the host, one thread, and stores every
 * measurement in a tuning database that `kiln-bench-ops --db FILE` then times against the
 * default schedule and OpenBLAS (bench/README.md, "Tuned kernels"). The ops are built as
 * bench/ops.c builds its "kiln default schedule" rows: a Relay function lowered to TIR.
 *
 *   kiln-bench-tune [--op gemm|conv|all] [--trials N] [--seed K] [--db FILE] [--threads T]
 *                   [--quiet] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/database.h"
#include "autotune/search.h"
#include "ir/node.h"
#include "kiln/kiln.h"
#include "kiln/kiln_runtime.h"
#include "relay/lower.h"
#include "relay/text.h"
#include "target/target.h"

typedef struct options {
  const char *op, *db;
  int trials, threads, verbose;
  unsigned long long seed;
} options;

static int usage(void) {
  fprintf(stderr, "usage: kiln-bench-tune [--op gemm|conv|all] [--trials N] [--seed K] "
                  "[--db FILE] [--threads T] [--quiet]\n"
                  "  tunes fp32 matmul 1024^3 and the ResNet-18 conv2d 3x3 64->64 56x56 on the\n"
                  "  host (defaults: all, 300 trials, seed 1, tune_ops.db, 1 thread)\n");
  return 2;
}

static int parse_args(int argc, char **argv, options *o) {
  *o = (options){"all", "tune_ops.db", 300, 1, 1, 1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--quiet")) {
      o->verbose = 0;
      continue;
    }
    if (!v) return usage();
    char *end;
    if (!strcmp(a, "--op")) o->op = v;
    else if (!strcmp(a, "--db")) o->db = v;
    else if (!strcmp(a, "--trials")) o->trials = (int)strtol(v, &end, 10);
    else if (!strcmp(a, "--threads")) o->threads = (int)strtol(v, &end, 10);
    else if (!strcmp(a, "--seed")) o->seed = strtoull(v, &end, 10);
    else return usage();
    i++;
  }
  if (o->trials < 1 || o->threads < 1 ||
      (strcmp(o->op, "gemm") && strcmp(o->op, "conv") && strcmp(o->op, "all")))
    return usage();
  return 0;
}

/* Lowers function main of a Relay module to one PrimFunc named `name` in arena (the
 * unscheduled function the search tunes). */
static kiln_status lower_relay(kiln_context *ctx, ir_arena *arena, const char *text,
                               const char *name, ir_func **out) {
  relay_module *m = NULL;
  kiln_status st = relay_parse_module(ctx, text, strlen(text), &m);
  if (!st) st = relay_lower_func(ctx, arena, relay_module_get(m, "main"), name, out);
  relay_module_free(m);
  return st;
}

/* Progress: one line per measurement, the best so far in GFLOP/s. */
typedef struct progress {
  const char *op;
  double flop, best_s;
  int verbose;
} progress;

static void on_measured(void *ud, int index, const char *trace_json, const tune_result *r) {
  (void)trace_json;
  progress *p = ud;
  if (r->status == TUNE_STATUS_OK && (p->best_s == 0 || r->median_s < p->best_s))
    p->best_s = r->median_s;
  if (!p->verbose) return;
  if (r->status == TUNE_STATUS_OK)
    fprintf(stderr, "%s trial %4d: %8.1f GFLOP/s  (best %.1f)\n", p->op, index + 1,
            p->flop / r->median_s * 1e-9, p->best_s ? p->flop / p->best_s * 1e-9 : 0);
  else
    fprintf(stderr, "%s trial %4d: failed (status %d): %.120s\n", p->op, index + 1, r->status,
            r->error);
}

/* Tunes one op; prints its summary line. Returns 0 on success. */
static int tune_op(kiln_context *ctx, const options *o, const tgt_target *host, tune_db *db,
                   const char *op, const char *text, const char *name, double flop) {
  ir_arena *arena = ir_arena_new(ctx);
  ir_func *f = NULL;
  if (!arena || lower_relay(ctx, arena, text, name, &f)) {
    fprintf(stderr, "kiln-bench-tune: %s: %s\n", op, kiln_context_errmsg(ctx));
    if (arena) ir_arena_free(arena);
    return 1;
  }
  tune_search_opts so = tune_search_opts_default();
  so.trials = o->trials;
  so.seed = o->seed;
  so.measure.min_seconds = 0.1;
  so.verbose = o->verbose > 1;
  progress p = {op, flop, 0, o->verbose};
  so.on_measured = on_measured;
  so.on_measured_ud = &p;
  tune_search_result r;
  kiln_status st = tune_search(ctx, f, host, db, &so, &r);
  ir_arena_free(arena);
  if (st) {
    fprintf(stderr, "kiln-bench-tune: %s: %s\n", op, kiln_context_errmsg(ctx));
    return 1;
  }
  double best = r.best_median_s > 0 ? flop / r.best_median_s * 1e-9 : 0;
  double def = r.default_median_s > 0 ? flop / r.default_median_s * 1e-9 : 0;
  printf("%-5s %s: %d trials (%d ok, %d replay failures, %d duplicates), default %.1f "
         "GFLOP/s (%.3f ms), best %.1f GFLOP/s (%.3f ms), %.2fx\n",
         op, name, r.trials, r.failures[TUNE_STATUS_OK], r.replay_failed, r.duplicates, def,
         r.default_median_s * 1e3, best, r.best_median_s * 1e3, def > 0 ? best / def : 0);
  fflush(stdout);
  tune_search_result_clear(ctx, &r);
  return 0;
}

int main(int argc, char **argv) {
  options o;
  if (parse_args(argc, argv, &o)) return 2;
  kiln_context *ctx;
  if (kiln_context_new(&ctx)) return 1;
  tgt_target host;
  tune_db *db = NULL;
  int rc = 1;
  if (tgt_target_host(ctx, &host) || tune_db_open(ctx, o.db, &db)) {
    fprintf(stderr, "kiln-bench-tune: %s\n", kiln_context_errmsg(ctx));
    goto out;
  }
  if (kiln_rt_set_num_threads(o.threads)) {
    fprintf(stderr, "kiln-bench-tune: cannot use %d threads\n", o.threads);
    goto out;
  }
  printf("kiln-bench-tune: host %s, %d thread%s, %d trials per op, seed %llu, database %s\n",
         host.canonical, o.threads, o.threads == 1 ? "" : "s", o.trials, o.seed, o.db);
  rc = 0;
  if (!strcmp(o.op, "gemm") || !strcmp(o.op, "all")) {
    const char *text = "def @main(%a: Tensor[(1024, 1024), float32], "
                       "%b: Tensor[(1024, 1024), float32]) {\n  nn.matmul(%a, %b)\n}\n";
    rc |= tune_op(ctx, &o, &host, db, "gemm", text, "gemm_default_1024", 2.0 * 1024 * 1024 * 1024);
  }
  if (!rc && (!strcmp(o.op, "conv") || !strcmp(o.op, "all"))) {
    /* the channel-last form (HWIO weights) vectorizes over output channels; OIHW otherwise */
    const char *hwio = "def @main(%x: Tensor[(1, 64, 56, 56), float32], "
                       "%w: Tensor[(3, 3, 64, 64), float32]) {\n"
                       "  nn.conv2d(%x, %w, padding=[1, 1, 1, 1], kernel_layout=\"HWIO\")\n}\n";
    const char *oihw = "def @main(%x: Tensor[(1, 64, 56, 56), float32], "
                       "%w: Tensor[(64, 64, 3, 3), float32]) {\n"
                       "  nn.conv2d(%x, %w, padding=[1, 1, 1, 1])\n}\n";
    double flop = 2.0 * 64 * 64 * 9 * 56 * 56;
    ir_arena *probe = ir_arena_new(ctx);
    ir_func *f;
    bool hwio_ok = probe && !lower_relay(ctx, probe, hwio, "probe", &f);
    if (probe) ir_arena_free(probe);
    if (!hwio_ok) {
      fprintf(stderr, "kiln-bench-tune: conv2d with HWIO weights does not lower (%s); tuning "
                      "OIHW\n", kiln_context_errmsg(ctx));
      ir_clear_error(ctx);
    }
    rc |= tune_op(ctx, &o, &host, db, "conv", hwio_ok ? hwio : oihw,
                  hwio_ok ? "conv2d_hwio_default" : "conv2d_default", flop);
  }
out:
  if (db) tune_db_close(db);
  kiln_context_free(ctx);
  return rc;
}

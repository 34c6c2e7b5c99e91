/* cmd_tune.c: `kiln tune`: tunes every kernel of a model for a target and stores every
 * measurement in a tuning database, from which `kiln compile --db` then takes the schedules:
 *   kiln tune MODEL.(onnx|relay) --db tune.db [--bucket SPEC ...] [--target T] [--trials N]
 *             [--time-budget S] [--seed K] [--per-round N] [--quiet] [--json]
 * The work is autotune/tuner.c's (tasks from the build driver, the task scheduler, one search
 * per task); this file parses the options, shows a live progress line on stderr and prints a
 * table per task (or JSON) at the end. Exit status: 0 ok, 1 failure, 2 usage error. main() in
 * kiln.c calls kiln_cmd_tune with the arguments after "tune". */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autotune/tuner.h"
#include "kiln/kiln.h"
#include "relay/build.h"
#include "target/target.h"
#include "tools/tool.h"

static const char tune_usage[] =
    "usage: kiln tune MODEL.(onnx|relay) --db DB [--bucket SPEC ...] [--target T]\n"
    "                 [--trials N] [--time-budget S] [--seed K] [--per-round N]\n"
    "                 [--quiet] [--json]\n"
    "  tune the schedules of every kernel of a model for a target; every measurement goes\n"
    "  into the tuning database DB (created if missing), which `kiln compile --db DB` reads.\n"
    "  The trial budget is shared between the kernels: each gets a first round, then the\n"
    "  rounds go to the kernel expected to lower the end-to-end latency the most.\n"
    "  --db DB          the tuning database (required)\n"
    "  --bucket SPEC    a bucket of input shapes, NAME=DxDxD[,NAME=DxD...][@WEIGHT], as for\n"
    "                   kiln compile (repeatable; default: the model's static shapes); a\n"
    "                   bucket's weight (default 1) says how much its latency matters\n"
    "  --target T       target string (default \"llvm\": this machine; tuning measures here,\n"
    "                   so the target must be this machine)\n"
    "  --trials N       trials (measured candidates) in all, over every kernel (default 64)\n"
    "  --time-budget S  start no new round after S seconds (default: no limit)\n"
    "  --seed K         seed of every random choice (default 1): the same seed and the same\n"
    "                   measurements give the same run\n"
    "  --per-round N    trials per scheduling round (default 8)\n"
    "  --quiet          no progress line\n"
    "  --json           print the report as JSON instead of the table\n"
    "  The progress line on stderr shows the round's kernel, the trials done, that kernel's\n"
    "  best GFLOP/s and the estimated end-to-end latency per inference (the sum over kernels\n"
    "  of weight x best median, divided by the sum of the bucket weights). The final table\n"
    "  has, per kernel: calls per inference (weight), trials, default and best median,\n"
    "  speedup and GFLOP/s; then the estimated latency with default and tuned schedules.\n"
    "  Ctrl-C (SIGINT) or SIGTERM stops after the measurement in progress: every measurement\n"
    "  so far is in the database and the table is printed; a second Ctrl-C quits at once\n"
    "  (the database keeps every committed record).\n"
    "  Exit status: 0 done, 1 failure (named on stderr), 2 usage error, 130 interrupted.\n";

enum { MAX_BUCKETS = KILN_TOOL_MAX_BUCKETS };

typedef struct tune_cli {
  const char *model, *db, *target;
  int trials, per_round, quiet, json;
  double time_budget;
  uint64_t seed;
  int nbuckets;
  kiln_tool_bucket *buckets; /* MAX_BUCKETS, malloc'ed */
} tune_cli;

/* Reports a usage error and returns 2. */
static int usage(const char *fmt, const char *arg) {
  fputs("kiln tune: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("\n(kiln tune --help for the usage)\n", stderr);
  return 2;
}

/* A whole-string integer in [lo, hi]. */
static bool parse_int(const char *s, long long lo, long long hi, long long *out) {
  char *end;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

/* Returns 0, 2 (usage error, reported) or 3 (--help printed). */
static int parse_tune_options(int argc, char **argv, tune_cli *o) {
  o->target = "llvm";
  o->trials = 64;
  o->seed = 1;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(tune_usage, stdout);
      return 3;
    }
    bool takes_value = !strcmp(a, "--db") || !strcmp(a, "--bucket") || !strcmp(a, "--target") ||
                       !strcmp(a, "--trials") || !strcmp(a, "--time-budget") ||
                       !strcmp(a, "--seed") || !strcmp(a, "--per-round");
    if (takes_value && i + 1 >= argc) return usage("%s needs a value", a);
    long long v;
    if (strcmp(a, "--db") == 0) {
      o->db = argv[++i];
    } else if (strcmp(a, "--target") == 0) {
      o->target = argv[++i];
    } else if (strcmp(a, "--bucket") == 0) {
      if (o->nbuckets == MAX_BUCKETS) return usage("more than %s buckets", "256");
      int st = kiln_tool_parse_bucket("tune", argv[++i], &o->buckets[o->nbuckets]);
      if (st) return st;
      o->nbuckets++;
    } else if (strcmp(a, "--trials") == 0) {
      if (!parse_int(argv[++i], 1, 100000000, &v))
        return usage("--trials takes a count >= 1, not '%s'", argv[i]);
      o->trials = (int)v;
    } else if (strcmp(a, "--per-round") == 0) {
      if (!parse_int(argv[++i], 1, 100000, &v))
        return usage("--per-round takes a count >= 1, not '%s'", argv[i]);
      o->per_round = (int)v;
    } else if (strcmp(a, "--seed") == 0) {
      char *end;
      const char *s = argv[++i];
      unsigned long long k = strtoull(s, &end, 0);
      if (end == s || *end || *s == '-') return usage("--seed takes an integer >= 0, not '%s'", s);
      o->seed = k;
    } else if (strcmp(a, "--time-budget") == 0) {
      char *end;
      const char *s = argv[++i];
      o->time_budget = strtod(s, &end);
      if (end == s || *end || !(o->time_budget > 0) || !isfinite(o->time_budget))
        return usage("--time-budget takes seconds > 0, not '%s'", s);
    } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
      o->quiet = 1;
    } else if (strcmp(a, "--json") == 0) {
      o->json = 1;
    } else if (a[0] == '-' && a[1]) {
      return usage("unknown option '%s'", a);
    } else if (!o->model) {
      o->model = a;
    } else {
      return usage("more than one model given ('%s')", a);
    }
  }
  if (!o->model) return usage("no model given%s", "");
  if (!o->db) return usage("no tuning database given (--db DB)%s", "");
  return 0;
}

/* ---- Progress and the report ------------------------------------------------------------ */

typedef struct progress_state {
  bool tty;       /* stderr is a terminal: one line rewritten with "\r" */
  int last_len;   /* length of the line shown, to blank what a shorter one leaves */
} progress_state;

/* The live progress line: after each round, the round's kernel, its trials and best GFLOP/s,
 * the trials of all kernels and the estimated end-to-end latency. */
static void show_progress(void *ud, const tune_model_progress *p) {
  progress_state *ps = ud;
  char line[512];
  int n = snprintf(line, sizeof line,
                   "[%5.0fs] task %d/%d %.40s: %d trials, best %.2f GFLOP/s | trials %d/%d | "
                   "est. latency %.1f us (default %.1f us)",
                   p->elapsed_s, p->task + 1, p->ntasks, p->name, p->task_trials,
                   p->task_gflops, p->trials, p->budget, p->est_latency_s * 1e6,
                   p->default_latency_s * 1e6);
  if (n < 0) return;
  if (n >= (int)sizeof line) n = (int)sizeof line - 1;
  if (ps->tty) {
    fprintf(stderr, "\r%s%*s", line, ps->last_len > n ? ps->last_len - n : 0, "");
    ps->last_len = n;
  } else {
    fprintf(stderr, "%s\n", line);
  }
  fflush(stderr);
}

/* Microseconds with 3 decimals, or "-" when unknown (0). */
static const char *us(double s, char *buf, size_t cap) {
  if (s > 0) snprintf(buf, cap, "%.3f", s * 1e6);
  else snprintf(buf, cap, "-");
  return buf;
}

static void print_table(const tune_cli *o, const tgt_target *t, const tune_model_report *r) {
  char b1[32], b2[32], b3[32];
  printf("tuned %d kernels of %s for %s (%s, %d cores): %d trials in %d rounds, %.1f s%s\n",
         r->ntasks, o->model, t->cpu, t->triple, t->num_cores, r->trials, r->rounds,
         r->elapsed_s, r->interrupted    ? " (interrupted)"
                       : r->time_limited ? " (time budget reached)"
                                         : "");
  printf("%-3s %-40s %8s %7s %12s %12s %8s %9s\n", "#", "kernel", "weight", "trials",
         "default us", "best us", "speedup", "GFLOP/s");
  for (int i = 0; i < r->ntasks; i++) {
    const tune_model_task_report *k = &r->tasks[i];
    if (k->speedup > 0) snprintf(b3, sizeof b3, "%.2fx", k->speedup);
    else snprintf(b3, sizeof b3, "-");
    printf("%-3d %-40.40s %8.3g %7d %12s %12s %8s %9.2f\n", i + 1, k->name, k->weight,
           k->trials, us(k->default_s, b1, sizeof b1), us(k->best_s, b2, sizeof b2), b3,
           k->best_gflops);
    int failed = k->trials - k->failures[TUNE_STATUS_OK];
    printf("    %s", k->summary);
    if (failed)
      printf("  [%d failed: %d build, %d run, %d timeout, %d wrong]", failed,
             k->failures[TUNE_STATUS_BUILD_ERROR], k->failures[TUNE_STATUS_RUN_ERROR],
             k->failures[TUNE_STATUS_TIMEOUT], k->failures[TUNE_STATUS_WRONG_RESULT]);
    if (k->warm_started) printf("  [%d from the database]", k->warm_started);
    if (k->exhausted) printf("  [space exhausted]");
    if (k->error) printf("  [left out: %s]", k->error);
    printf("\n");
  }
  printf("estimated latency per inference: default %s us, tuned %s us",
         us(r->default_latency_s, b1, sizeof b1), us(r->est_latency_s, b2, sizeof b2));
  if (r->default_latency_s > 0 && r->est_latency_s > 0)
    printf(" (%.2fx)", r->default_latency_s / r->est_latency_s);
  printf("%s\n", r->complete ? "" : " (kernels without an ok measurement left out)");
  printf("database: %s\n", o->db);
}

/* The report as JSON: the library's writer (tune_model_report_json), shared with kiln_tune. */
static int print_json(kiln_context *ctx, const tune_cli *o, const tgt_target *t,
                      const tune_model_report *r) {
  char *json;
  if (tune_model_report_json(ctx, r, o->model, t->canonical, o->db, &json, NULL)) return 1;
  fputs(json, stdout);
  kiln_string_free(ctx, json);
  return 0;
}

/* ---- The command ---------------------------------------------------------------------- */

/* Ctrl-C: the first SIGINT (or SIGTERM) raises the tuner's stop flag, which it reads before
 * each measurement and each round; the handler then gives way to the default action
 * (SA_RESETHAND), so a second one ends the process. Measurement workers ignore SIGINT
 * (autotune/measure.c), so the candidate being timed finishes and is recorded as what it
 * is, not as a crash. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
  (void)sig;
  stop_requested = 1;
  static const char msg[] = "\nkiln tune: stopping after the current measurement (press Ctrl-C "
                            "again to quit now)\n";
  ssize_t unused = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)unused;
}

static void catch_stop_signals(bool on) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on ? on_stop_signal : SIG_DFL;
  sa.sa_flags = on ? SA_RESETHAND | SA_RESTART : 0;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

static int fail_ctx(kiln_context *ctx, const char *what) {
  fprintf(stderr, "kiln tune: %s: %s\n", what, kiln_context_errmsg(ctx));
  return 1;
}

static int run_tune(kiln_context *ctx, const tune_cli *o) {
  int rc = 1;
  kiln_relay_module *mod = NULL;
  tune_db *db = NULL;
  tune_model_report *rep = NULL;
  tgt_target t;
  if (kiln_tool_read_model(ctx, o->model, &mod)) return fail_ctx(ctx, o->model);
  if (tgt_target_parse(ctx, o->target, &t)) {
    rc = fail_ctx(ctx, "--target");
    goto done;
  }
  if (tune_db_open(ctx, o->db, &db)) {
    rc = fail_ctx(ctx, o->db);
    goto done;
  }
  kiln_bucket buckets[MAX_BUCKETS];
  for (int i = 0; i < o->nbuckets; i++)
    buckets[i] = (kiln_bucket){o->buckets[i].ninputs, o->buckets[i].inputs, o->buckets[i].weight};

  tune_model_opts mo = tune_model_opts_default();
  mo.trials = o->trials;
  mo.time_budget_s = o->time_budget;
  mo.seed = o->seed;
  mo.per_round = o->per_round;
  progress_state ps = {.tty = isatty(STDERR_FILENO) != 0};
  if (!o->quiet) {
    mo.progress = show_progress;
    mo.progress_ud = &ps;
  }
  stop_requested = 0;
  mo.stop = &stop_requested;
  catch_stop_signals(true);
  kiln_status st = tune_model(ctx, relay_api_module(mod), o->nbuckets, buckets, &t, db, &mo,
                              &rep);
  catch_stop_signals(false);
  if (ps.tty && ps.last_len) fputc('\n', stderr);
  if (st) {
    rc = fail_ctx(ctx, o->model);
    goto done;
  }
  if (o->json) {
    if (print_json(ctx, o, &t, rep)) {
      rc = fail_ctx(ctx, "--json");
      goto done;
    }
  } else {
    print_table(o, &t, rep);
  }
  rc = fflush(stdout) == 0 ? rep->interrupted ? 130 : 0 : 1;
done:
  tune_model_report_free(rep);
  tune_db_close(db);
  kiln_relay_module_free(mod);
  return rc;
}

int kiln_cmd_tune(int argc, char **argv) {
  tune_cli o;
  memset(&o, 0, sizeof o);
  o.buckets = calloc(MAX_BUCKETS, sizeof *o.buckets);
  if (!o.buckets) {
    fprintf(stderr, "kiln tune: out of memory\n");
    return 1;
  }
  int st = parse_tune_options(argc, argv, &o);
  int rc = st == 3 ? 0 : st;
  kiln_context *ctx = NULL;
  if (!st) {
    if (kiln_context_new(&ctx)) {
      fprintf(stderr, "kiln tune: cannot create a context\n");
      rc = 1;
    } else {
      rc = run_tune(ctx, &o);
    }
  }
  kiln_context_free(ctx);
  free(o.buckets);
  return rc;
}

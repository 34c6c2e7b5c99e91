/* tuner.h: tuning a whole model (internal, prefix tune_model_). The model's distinct kernels
 * over all its buckets (relay_build_extract_tasks) become tasks, each with its own resumable
 * evolutionary search (search.h); a task scheduler shares one trial budget between them:
 * every task once first, then the task whose next trials are expected to lower the estimated
 * end-to-end latency the most (Ansor's gradient idea). Every measurement goes into the tuning
 * database, from which kiln_compile later takes the schedules. `kiln tune` is its front end. */
#ifndef KILN_AUTOTUNE_TUNER_H
#define KILN_AUTOTUNE_TUNER_H

#include "autotune/search.h"
#include "relay/build.h"

/* Replaces build + measure for one candidate of task `task` (index into the task list), as
 * tune_search_measure_fn does for one search: tests use it for deterministic timings. */
typedef kiln_status (*tune_model_measure_fn)(void *ud, int task, kiln_context *ctx,
                                             const ir_func *scheduled, const char *trace_json,
                                             tune_result *out);

/* Where the tuning stands, after each scheduling round (one step of one task's search). The
 * estimates cover the tasks measured so far (see tune_model_report). */
typedef struct tune_model_progress {
  int round;             /* scheduling rounds done (this one included) */
  int task, ntasks;      /* the task just tuned */
  const char *name;      /* its name */
  bool random_pick;      /* chosen at random (the epsilon rule), not by expected gain */
  int task_trials;       /* its trials so far */
  double task_best_s;    /* its best median so far (0: none ok) */
  double task_gflops;    /* its best GFLOP/s so far (0: none ok, or no float operations) */
  int trials, budget;    /* trials of all tasks so far, and the trial budget */
  double est_latency_s;  /* estimated end-to-end latency per inference with the best
                          * schedules so far (see tune_model_report) */
  double default_latency_s; /* the same with the default schedules */
  double elapsed_s;      /* since tuning started */
} tune_model_progress;

typedef void (*tune_model_progress_fn)(void *ud, const tune_model_progress *p);

typedef struct tune_model_opts {
  int trials;            /* the trial budget, all tasks together (>= 1) */
  double time_budget_s;  /* stop starting new rounds after this long (<= 0: no limit) */
  uint64_t seed;         /* the scheduler's random picks and every task's search seed */
  int per_round;         /* trials one scheduling round gives its task (0: search.measure_batch) */
  double eps_random;     /* probability that a round picks a task at random, in [0, 1] */
  int window;            /* the task's own past rounds the backward slope spans (>= 1) */
  double alpha;          /* weight of the backward slope against the optimistic one, [0, 1] */
  double beta;           /* the optimistic term assumes a task can reach 1/beta of the best
                          * GFLOP/s a task of its kind reached (> 0) */
  tune_search_opts search; /* per-task search options; trials and seed are set per task */
  tune_model_measure_fn measure_fn; /* NULL: real measurements (the target must be the host) */
  void *measure_ud;
  tune_model_progress_fn progress;  /* NULL: none */
  void *progress_ud;
  volatile sig_atomic_t *stop; /* NULL, or a flag (a SIGINT handler, a progress hook may set
                          * it): once non-zero, no further candidate is measured and the run
                          * ends with its report (interrupted), as with the time budget */
  int verbose;           /* 1: a line per round on stderr; 2: the searches' lines too */
} tune_model_opts;

/* trials 64, no time budget, seed 1, per_round 0, eps_random 0.05, window 3, alpha 0.2,
 * beta 2, search = tune_search_opts_default() (measure_batch 8), no hooks, no stop flag,
 * verbose 0. */
tune_model_opts tune_model_opts_default(void);

/* One task's outcome. */
typedef struct tune_model_task_report {
  const char *name;      /* the kernel's name */
  const char *summary;   /* ops and shapes */
  uint64_t hash;         /* workload hash */
  double weight;         /* calls per inference summed over buckets times their weights */
  int ncalls;            /* calls over all buckets */
  double flops;          /* float operations per call (tune_count_flops) */
  int trials;            /* candidates measured */
  int failures[5];       /* measured candidates by tune_status (failures[0]: the ok ones) */
  int warm_started, warm_skipped; /* database records replayed / skipped */
  double default_s;      /* the default schedule's median (0: failed or not measured) */
  double best_s;         /* the best ok median (0: none) */
  double speedup;        /* default_s / best_s (0 when one of them is missing) */
  double best_gflops;    /* flops / best_s / 1e9 (0 when unknown) */
  bool exhausted;        /* its search space ran out */
  const char *error;     /* why the task was left out (NULL: it was not): an error of its
                          * search that concerns this kernel only (the schedule rules, the
                          * interpreter or the measurement cannot handle it) */
} tune_model_task_report;

/* What a tuning run did. Estimated latencies are per inference: sum over tasks of
 * weight * median (best or default), divided by the sum of the bucket weights. Both sums
 * cover the same tasks: those with an ok best and an ok default median; when a task lacks
 * one (not measured, failed, left out) it is left out of both and `complete` is false. */
typedef struct tune_model_report {
  kiln_context *ctx;
  ir_arena *arena;       /* owns the report's strings and arrays */
  int ntasks;
  tune_model_task_report *tasks;
  int trials;            /* measured in all */
  int rounds;            /* scheduling rounds */
  int *round_task;       /* the task each round tuned, in order (rounds entries) */
  double bucket_weight;  /* the sum of the bucket weights */
  double default_latency_s, est_latency_s;
  bool complete;         /* every task has an ok default and best median */
  bool time_limited;     /* stopped by the time budget */
  bool interrupted;      /* stopped by the stop flag */
  double elapsed_s;
} tune_model_report;

/* Tunes "main" of m for target t over the buckets (nbuckets 0: the model's static shapes,
 * one bucket of weight 1): extracts the tasks (relay_build_extract_tasks) and runs
 * tune_model_tasks. m is left as it was. */
kiln_status tune_model(kiln_context *ctx, relay_module *m, int nbuckets, const kiln_bucket *buckets,
                       const tgt_target *t, tune_db *db, const tune_model_opts *opts,
                       tune_model_report **out);

/* Tunes the given tasks (their weights already include the bucket weights, whose sum is
 * bucket_weight > 0) with the task scheduler until the trial budget is spent, the time budget
 * runs out or every task's space is exhausted; every measurement is recorded in db (may be
 * NULL). Determinism: the same seed, tasks, database and measurements give the same rounds
 * and the same candidates (the time budget aside). A task whose search fails for a reason
 * of its own (e.g. KILN_ERR_SCHEDULE, KILN_ERR_UNSUPPORTED) is left out with its error in the
 * report and the others go on. Errors: KILN_ERR_MISUSE (NULL arguments, bad options),
 * KILN_ERR_UNSUPPORTED (real measurements for a target that is not the host), a search's
 * errors that concern the whole run (no memory, the database, fork failing: naming the task),
 * KILN_ERR_NOMEM. *out is set only on success. */
kiln_status tune_model_tasks(kiln_context *ctx, const relay_build_tasks *tasks,
                             double bucket_weight, const tgt_target *t, tune_db *db,
                             const tune_model_opts *opts, tune_model_report **out);

/* Frees the report (NULL is fine). */
void tune_model_report_free(tune_model_report *r);

/* The report as JSON (what `kiln tune --json` prints and kiln_tune returns), a new string in
 * ctx memory (free with kiln_string_free; its length in *len when len is not NULL):
 * {"model", "target", "db", "trials", "rounds", "elapsed_s", "time_limited", "interrupted",
 *  "bucket_weight",
 *  "default_latency_s", "est_latency_s", "complete", "tasks": [{"name", "summary", "hash"
 *  (16 hex digits), "weight", "ncalls", "flops", "trials", "ok", "failed", "build_error",
 *  "run_error", "timeout", "wrong_result", "warm_started", "default_s", "best_s", "speedup",
 *  "best_gflops", "exhausted", "error" (null when none)}], "round_tasks": [task index per
 *  round]}. model, target and db label the run (NULL: null); numbers that are not finite
 *  are written as null. */
kiln_status tune_model_report_json(kiln_context *ctx, const tune_model_report *r,
                                   const char *model, const char *target, const char *db,
                                   char **out, size_t *len);

/* JSON writing helpers shared with autotune/api.c: a string literal (quotes, backslashes and
 * control characters escaped; NULL as null) and a number with `digits` significant digits
 * (null when it is not finite). */
void tune_json_string(ir_strbuf *sb, const char *s);
void tune_json_number(ir_strbuf *sb, double v, int digits);

#endif

/* search.h: the autotuner's core loop for one task (one unscheduled PrimFunc + one target),
 * an evolutionary search in the style of Ansor / MetaSchedule. The design space is the trace
 * of the default schedule rules and of their cache-blocked variant: a candidate is one of them
 * replayed with some of its sampling instructions re-sampled and its knobs (annotation
 * literals like "unroll_max_step") redrawn. Each round generates candidates (random ones
 * and mutations of the best measured ones), ranks them with the XGBoost cost model
 * (features.h), measures the most promising (plus a few at random) with measure.h, stores
 * every measurement in the tuning database (database.h) and retrains the model. Internal
 * header (prefix tune_). */
#ifndef KILN_AUTOTUNE_SEARCH_H
#define KILN_AUTOTUNE_SEARCH_H

#include <signal.h>

#include "autotune/database.h"
#include "autotune/measure.h"
#include "ir/node.h"
#include "target/target.h"

/* Replaces build + measure for one candidate (a remote runner, or a test that needs
 * deterministic timings): fills *out like tune_measure does and returns KILN_OK, or returns an
 * error status to stop the search (nothing could be measured). `scheduled` is the candidate's
 * function, `trace_json` its trace. */
typedef kiln_status (*tune_search_measure_fn)(void *ud, kiln_context *ctx,
                                              const ir_func *scheduled, const char *trace_json,
                                              tune_result *out);

/* Called after each measurement, in order (index 0, 1, ...); ud is on_measured_ud. */
typedef void (*tune_search_measured_fn)(void *ud, int index, const char *trace_json,
                                        const tune_result *r);

typedef struct tune_search_opts {
  int trials;          /* candidates measured in all (>= 1) */
  int population;      /* best measured candidates kept as parents for mutation (>= 1) */
  int candidates;      /* candidates generated per round (0: 4 * measure_batch) */
  int generations;     /* extra model-guided mutation rounds before each pick, once the
                        * model is trained (0: pick from the generated candidates directly) */
  int measure_batch;   /* candidates measured per round (>= 1); the model retrains after each */
  int warm_start;      /* the database's best records measured first (0: none) */
  double eps_random;   /* fraction of each batch picked at random instead of by the model */
  uint64_t seed;       /* drives every random choice of the search */
  tune_measure_opts measure; /* how candidates are timed and checked */
  int verbose;         /* progress lines on stderr */
  tune_search_measure_fn measure_fn; /* NULL: tune_build + tune_measure */
  void *measure_ud;
  tune_search_measured_fn on_measured; /* NULL: none */
  void *on_measured_ud;
  double slow_factor;  /* > 0: once a candidate is ok, a later one whose first call takes
                        * more than slow_factor times the best median so far is timed by that
                        * call alone (tune_measure_opts.slow_cutoff_s), and its time limit
                        * shrinks to at most max(TUNE_SLOW_MIN_TIMEOUT_S, 10 * slow_factor *
                        * best median): hopeless candidates cost one call, not seconds */
  int build_threads;    /* candidates built (replayed, lowered, compiled by their own JIT)
                        * at once on threads of their own before they are measured one by
                        * one (0: the machine's online CPUs; at most 16) */
  volatile sig_atomic_t *stop; /* NULL, or a flag (a signal handler may set it): once it is
                        * non-zero no further candidate is measured; a step then returns
                        * early, the state stays usable */
} tune_search_opts;

/* trials 64, population 8, candidates 0 (4 * batch), generations 2, measure_batch 8,
 * warm_start 4, eps_random 0.2, seed 1, measure = tune_measure_opts_default(), verbose 0,
 * no hooks, slow_factor 10, build_threads 0 (one per CPU), no stop flag. */
tune_search_opts tune_search_opts_default(void);

/* What a search did. Strings are allocated through the context: tune_search_result_clear. */
typedef struct tune_search_result {
  char *best_trace_json;   /* the fastest correct candidate's trace; NULL when none was ok */
  double best_median_s;    /* its median (0 when none) */
  double default_median_s; /* the default schedule's median (0 when it failed or was not
                            * measured) */
  int trials;              /* candidates measured */
  int failures[5];         /* measured candidates by outcome, indexed by tune_status
                            * (failures[TUNE_STATUS_OK] counts the successes) */
  int warm_started;        /* database records replayed into the first batch */
  int warm_skipped;        /* database records skipped: trace that does not parse or replay,
                            * or a corrupted row */
  int replay_failed;       /* generated candidates whose replay failed (not measured) */
  int duplicates;          /* generated candidates equal to one already seen (not measured) */
  int rounds;              /* measurement rounds */
} tune_search_result;

/* Tunes `unscheduled` for target t (which must be the host when candidates are built and
 * measured here). Every measurement goes into db when it is not NULL (workload keyed by
 * relay_workload_key's hash, target by its canonical string) and the database's best records
 * for that pair seed the first batch. Failed candidates (build_error, run_error, timeout,
 * wrong_result) are recorded and counted, and the search goes on. The default schedule is
 * always measured (first, after the warm-start records), then the cache-blocked variant's
 * default when the function has one (schedule/rules.c).
 *
 * Determinism: the same seed, function, target and database give the same candidates in the
 * same order as long as the measurements are the same. Timing noise enters only through the
 * measured medians: they choose the parents of mutations and train the cost model, and so
 * which candidates win the next rounds.
 *
 * Errors (no result then, *out cleared): KILN_ERR_MISUSE for bad arguments, the default rules'
 * or the reference interpreter's errors, database errors, KILN_ERR_NOMEM, and a measurement
 * that could not run at all (tune_measure's error status). */
kiln_status tune_search(kiln_context *ctx, const ir_func *unscheduled, const tgt_target *t,
                        tune_db *db, const tune_search_opts *opts, tune_search_result *out);

/* ---- The same search in steps -------------------------------------------------------------
 * A model-level tuner (tuner.h) shares one trial budget between many tasks: it keeps one
 * search state per task and gives each some trials at a time. tune_search is begin, one step
 * of opts->trials, end.
 *
 * Determinism across steps: with the same seed, function, target, database and
 * measurements, any split of the trials into steps measures the same candidates in the same
 * order as one step (a round cut between two steps continues where it stopped; the model
 * retrains when a round ends, whichever step that is in). */
typedef struct tune_search_state tune_search_state;

/* Sets a search up: checks the options, makes the default schedule and its cache-blocked
 * variant (the design space), registers the workload and the target in db, queues the
 * database's best records (warm start) and the defaults. Measures nothing. opts->trials
 * caps the trials of all steps together. Errors as tune_search's; *out is NULL then. The
 * state keeps pointers to unscheduled, t and db: they must outlive it. */
kiln_status tune_search_begin(kiln_context *ctx, const ir_func *unscheduled, const tgt_target *t,
                              tune_db *db, const tune_search_opts *opts,
                              tune_search_state **out);

/* Measures up to max_trials (>= 1) more candidates, round after round, every measurement
 * recorded in the database (the first real measurement with checking computes the reference
 * outputs with the interpreter first); fewer when opts->trials is reached or the space is
 * exhausted (tune_search_done tells). *measured (may be NULL) receives how many this call measured.
 * KILN_ERR_MISUSE for a NULL state, a max_trials < 1 (the state stays usable) or a state
 * whose earlier step failed. A failure while searching (the kinds tune_search returns)
 * leaves the state good only for tune_search_end. */
kiln_status tune_search_step(tune_search_state *s, int max_trials, int *measured);

/* The result so far (best trace and median, default median, trials, failures by status,
 * rounds, ...), owned by the state and updated by each step; NULL for NULL. */
const tune_search_result *tune_search_current(const tune_search_state *s);

/* Whether a step would measure nothing more: the trial cap is reached, the space is
 * exhausted (a round found no new candidate) or a step failed. True for NULL. */
bool tune_search_done(const tune_search_state *s);

/* The task's workload hash (relay_workload_key; what its database records are keyed by). */
uint64_t tune_search_workload_hash(const tune_search_state *s);

/* Frees the state. On success moves the result into *out (may be NULL; clear it with
 * tune_search_result_clear) and returns KILN_OK; after a failed step returns that step's
 * status (its message is still on the context) with *out zeroed. NULL state:
 * KILN_ERR_MISUSE. */
kiln_status tune_search_end(tune_search_state *s, tune_search_result *out);

/* Frees the result's strings and zeroes it (NULL is fine). */
void tune_search_result_clear(kiln_context *ctx, tune_search_result *r);

#endif

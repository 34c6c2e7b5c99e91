/* tuner.c: tuning a whole model (tuner.h). Data flow:
 *   relay module + buckets -> relay_build_extract_tasks -> tasks (PrimFunc, weight)
 *   -> one resumable search per task (search.h) -> the task scheduler hands out rounds of
 *   trials -> every measurement into the database -> a report per task and in all.
 * The scheduler is deterministic for a seed: its random picks come from one splitmix64
 * stream, and each task's search has its own seed derived from the run's seed and the task's
 * workload hash. */
#include "autotune/tuner.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "autotune/features.h"
#include "ir/transform.h"

/* One task as the scheduler sees it. */
typedef struct task_state {
  struct tuner *tn;
  int index;
  const relay_build_task *in;
  tune_search_state *search;
  double flops;           /* float operations per call (0: none or unknown) */
  char kind[64];          /* the first op of its summary: tasks of a kind share a peak */
  bool done;              /* its search will measure nothing more */
  char *error;            /* why it could not be tuned (context memory; NULL: it could) */
  /* its trials and best median after each of its rounds */
  int nhist, caphist;
  struct hist_entry *hist;
} task_state;

typedef struct hist_entry {
  int trials;
  double best;
} hist_entry;

/* The run. */
typedef struct tuner {
  kiln_context *ctx;
  const relay_build_tasks *tasks;
  const tgt_target *t;
  tune_db *db;
  tune_model_opts o;
  double bucket_weight;
  int n;
  task_state *ts;
  uint64_t rng;
  double t0;              /* start time (monotonic seconds) */
  int trials;
  int rounds, caprounds;
  int *round_task;
} tuner;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double elapsed(const tuner *tn) { return now_s() - tn->t0; }

/* The best ok median of task k so far (0: none). */
static double best_of(const task_state *k) {
  const tune_search_result *r = tune_search_current(k->search);
  return r && r->failures[TUNE_STATUS_OK] > 0 ? r->best_median_s : 0;
}

static int trials_of(const task_state *k) {
  const tune_search_result *r = tune_search_current(k->search);
  return r ? r->trials : 0;
}

static double gflops(double flops, double seconds) {
  return flops > 0 && seconds > 0 ? flops / seconds * 1e-9 : 0;
}

/* The estimated end-to-end latencies per inference (tuner.h): with the best schedules so far
 * and with the default ones, both over the tasks that have both medians (so that the two
 * compare). *complete tells whether that is every task. */
static void estimate(const tuner *tn, double *best, double *def, bool *complete) {
  double b = 0, d = 0;
  bool all = true;
  for (int i = 0; i < tn->n; i++) {
    const task_state *k = &tn->ts[i];
    const tune_search_result *r = tune_search_current(k->search);
    double bs = best_of(k), ds = r ? r->default_median_s : 0;
    if (bs > 0 && ds > 0) {
      b += k->in->weight * bs;
      d += k->in->weight * ds;
    } else {
      all = false;
    }
  }
  *best = b / tn->bucket_weight;
  *def = d / tn->bucket_weight;
  if (complete) *complete = all;
}

/* ---- The scheduler's choice --------------------------------------------------------------- */

/* The highest throughput (flops per second) any task of k's kind reached so far, k itself
 * included; 0 when none of them has one. */
static double kind_peak(const tuner *tn, const task_state *k) {
  double peak = 0;
  for (int i = 0; i < tn->n; i++) {
    const task_state *o = &tn->ts[i];
    if (strcmp(o->kind, k->kind) != 0) continue;
    double b = best_of(o);
    if (o->flops > 0 && b > 0 && o->flops / b > peak) peak = o->flops / b;
  }
  return peak;
}

/* How much the estimated end-to-end latency is expected to fall per trial given to task k
 * (>= 0; larger is better). In our words:
 *
 *   g  = the task's best latency now, after t of its trials; w = its weight.
 *   The slope of g over trials is guessed from two sides and blended:
 *   - looking back: the change of g over the task's last `window` rounds divided by the
 *     trials they took (0 after a single round). It says how fast the task has improved
 *     lately, and fades to 0 once its search stops finding better schedules.
 *   - looking ahead, optimistically: the latency one more trial could bring, the lower of
 *       g - g / t              (one more trial is worth the average gain per trial so far,
 *                               as if the task had started from nothing), and
 *       beta * flops / peak    (the task reaching 1/beta of the best throughput a task of
 *                               the same kind reached: a matmul far slower than its
 *                               siblings probably has room left),
 *     minus g; the second one's distance to g halved for every round since the task's best
 *     last improved (a kernel that cannot reach its siblings' throughput, e.g. a
 *     memory-bound 1x1 convolution among 3x3 ones, stops drawing every round).
 *   slope = alpha * back + (1 - alpha) * ahead (<= 0), and the gain is -w * slope.
 *
 * The weight turns a kernel's latency into its share of the end-to-end latency, so a kernel
 * called often or in heavy buckets gets more trials; the ahead term shrinks as 1/t, so tasks
 * that had few trials keep being visited. A task without an ok measurement has no g: gain 0
 * (the random picks still reach it). */
/* Rounds of task k since its best last improved (0: its last round improved it). */
static int stale_rounds(const task_state *k) {
  int n = 0;
  for (int i = k->nhist - 1; i > 0 && !(k->hist[i].best < k->hist[i - 1].best); i--) n++;
  return n;
}

static double expected_gain(const tuner *tn, const task_state *k) {
  double g = best_of(k);
  int t = trials_of(k);
  if (g <= 0 || t <= 0) return 0;
  double back = 0;
  if (k->nhist >= 2) {
    int last = k->nhist - 1, first = last - tn->o.window;
    if (first < 0) first = 0;
    int dt = k->hist[last].trials - k->hist[first].trials;
    if (dt > 0) back = (k->hist[last].best - k->hist[first].best) / dt;
  }
  double next = g - g / t;
  double peak = kind_peak(tn, k);
  if (k->flops > 0 && peak > 0) {
    double reach = tn->o.beta * k->flops / peak;
    /* the siblings' promise fades with every round that did not improve the task (else a
     * kernel that cannot reach their throughput keeps the rounds forever) */
    if (reach < g) reach = g - (g - reach) * ldexp(1.0, -stale_rounds(k));
    if (reach < next) next = reach;
  }
  double ahead = next - g;
  double slope = tn->o.alpha * back + (1 - tn->o.alpha) * ahead;
  if (slope > 0) slope = 0;
  return -k->in->weight * slope;
}

/* A uniform double in [0, 1) from the scheduler's stream. */
static double next_uniform(tuner *tn) {
  return (double)(ir_splitmix64(&tn->rng) >> 11) / 9007199254740992.0;
}

/* The next task to tune after the first pass: with probability eps one at random, else the
 * largest expected gain (ties: fewest trials, then the lowest index); -1 when every task is
 * done. The random draw happens every round, so the stream does not depend on gains. */
static int pick_task(tuner *tn, bool *random_pick) {
  int live = 0;
  for (int i = 0; i < tn->n; i++) live += !tn->ts[i].done;
  double u = next_uniform(tn);
  uint64_t r = ir_splitmix64(&tn->rng);
  *random_pick = false;
  if (live == 0) return -1;
  if (u < tn->o.eps_random) {
    int j = (int)(r % (uint64_t)live);
    for (int i = 0; i < tn->n; i++) {
      if (tn->ts[i].done) continue;
      if (j-- == 0) {
        *random_pick = true;
        return i;
      }
    }
  }
  int best = -1;
  double best_gain = -1;
  for (int i = 0; i < tn->n; i++) {
    const task_state *k = &tn->ts[i];
    if (k->done) continue;
    double gain = expected_gain(tn, k);
    if (best < 0 || gain > best_gain ||
        (gain == best_gain && trials_of(k) < trials_of(&tn->ts[best]))) {
      best = i;
      best_gain = gain;
    }
  }
  return best;
}

/* ---- Rounds ----------------------------------------------------------------------------- */

/* The measurement hook of task k's search: the model-level hook with the task's index. */
static kiln_status measure_hook(void *ud, kiln_context *ctx, const ir_func *scheduled,
                                const char *trace_json, tune_result *out) {
  task_state *k = ud;
  return k->tn->o.measure_fn(k->tn->o.measure_ud, k->index, ctx, scheduled, trace_json, out);
}

/* Appends to a growable array of `elem`-byte entries (context memory). */
static kiln_status grow(kiln_context *ctx, void **v, int *cap, int n, size_t elem) {
  if (n < *cap) return KILN_OK;
  int ncap = *cap ? 2 * *cap : 16;
  void *nv = ir_realloc(ctx, *v, elem * (size_t)*cap, elem * (size_t)ncap);
  if (!nv) return KILN_ERR_NOMEM;
  *v = nv;
  *cap = ncap;
  return KILN_OK;
}

/* Records task k's state after a round in its history. */
static kiln_status push_history(tuner *tn, task_state *k) {
  void *h = k->hist;
  kiln_status st = grow(tn->ctx, &h, &k->caphist, k->nhist, sizeof(hist_entry));
  k->hist = h;
  if (st) return st;
  k->hist[k->nhist++] = (hist_entry){trials_of(k), best_of(k)};
  return KILN_OK;
}

/* Whether a search error stops the whole run (no memory, misuse, the database, the machine)
 * rather than only its task (a kernel the schedule rules, the interpreter or the measurement
 * cannot handle: the task is left out and the others go on). */
static bool stops_run(kiln_status st) {
  return st == KILN_ERR_NOMEM || st == KILN_ERR_MISUSE || st == KILN_ERR_IO ||
         st == KILN_ERR_CORRUPT || st == KILN_ERR_RUNTIME;
}

/* Handles a search error of task k: a run-stopping one is returned naming the task; any
 * other ends the task (its message kept for the report) and clears the error. */
static kiln_status task_error(tuner *tn, task_state *k, kiln_status st) {
  char msg[sizeof tn->ctx->errmsg];
  snprintf(msg, sizeof msg, "%s", kiln_context_errmsg(tn->ctx));
  if (stops_run(st))
    return ir_fail(tn->ctx, IR_NO_SPAN, st, "tune_model: task %d '%s' (%s): %s", k->index,
                   k->in->name, k->in->summary ? k->in->summary : "", msg);
  k->done = true;
  k->error = ir_strdup(tn->ctx, msg);
  if (!k->error) return KILN_ERR_NOMEM;
  ir_clear_error(tn->ctx);
  if (tn->o.verbose)
    fprintf(stderr, "tune_model: task %d '%s' left out: %s\n", k->index, k->in->name, msg);
  return KILN_OK;
}

/* One round: up to `want` trials of task i, its history, the round log, progress. */
static kiln_status run_round(tuner *tn, int i, int want, bool random_pick) {
  task_state *k = &tn->ts[i];
  if (k->done) return KILN_OK;
  int measured = 0;
  kiln_status st = tune_search_step(k->search, want, &measured);
  tn->trials += measured; /* measured and recorded even when the step then failed */
  if (st && (st = task_error(tn, k, st))) return st;
  if (tune_search_done(k->search)) k->done = true;
  if (measured == 0) return KILN_OK;
  void *rt = tn->round_task;
  st = grow(tn->ctx, &rt, &tn->caprounds, tn->rounds, sizeof(int));
  tn->round_task = rt;
  if (!st) st = push_history(tn, k);
  if (st) return st;
  tn->round_task[tn->rounds++] = i;

  tune_model_progress p = {
      .round = tn->rounds,
      .task = i,
      .ntasks = tn->n,
      .name = k->in->name,
      .random_pick = random_pick,
      .task_trials = trials_of(k),
      .task_best_s = best_of(k),
      .task_gflops = gflops(k->flops, best_of(k)),
      .trials = tn->trials,
      .budget = tn->o.trials,
      .elapsed_s = elapsed(tn),
  };
  estimate(tn, &p.est_latency_s, &p.default_latency_s, NULL);
  if (tn->o.verbose)
    fprintf(stderr, "tune_model: round %d: task %d/%d %s%s: %d trials (%d/%d in all), best "
            "%.3f us, %.2f GFLOP/s; estimated latency %.3f us (default %.3f us)\n", p.round,
            i + 1, tn->n, k->in->name, random_pick ? " (random)" : "", p.task_trials, p.trials,
            p.budget, p.task_best_s * 1e6, p.task_gflops, p.est_latency_s * 1e6,
            p.default_latency_s * 1e6);
  if (tn->o.progress) tn->o.progress(tn->o.progress_ud, &p);
  return KILN_OK;
}

/* Why the scheduler stopped early. */
typedef struct stop_reason {
  bool time_limited, interrupted;
} stop_reason;

/* Whether the time budget is spent or the stop flag raised (and which, into *why). */
static bool must_stop(const tuner *tn, stop_reason *why) {
  if (tn->o.stop && *tn->o.stop) why->interrupted = true;
  else if (tn->o.time_budget_s > 0 && elapsed(tn) >= tn->o.time_budget_s) why->time_limited = true;
  return why->interrupted || why->time_limited;
}

/* The scheduler: every task once, then rounds by expected gain until the budget, the time or
 * the tasks run out. The first round of a task measures its warm-start records (queued first
 * by its search), the default schedule and per_round - 1 candidates of the search, or its
 * share of the budget left when that is less (at least 1 trial). */
static kiln_status schedule(tuner *tn, stop_reason *why) {
  kiln_status st = KILN_OK;
  *why = (stop_reason){false, false};
  for (int i = 0; !st && i < tn->n && tn->trials < tn->o.trials; i++) {
    if (must_stop(tn, why)) return KILN_OK;
    int share = (tn->o.trials - tn->trials) / (tn->n - i);
    const tune_search_result *sr = tune_search_current(tn->ts[i].search);
    int first = tn->o.per_round + (sr ? sr->warm_started : 0);
    int want = share < first ? share : first;
    if (want < 1) want = 1;
    st = run_round(tn, i, want, false);
  }
  while (!st && tn->trials < tn->o.trials) {
    if (must_stop(tn, why)) break;
    bool random_pick;
    int i = pick_task(tn, &random_pick);
    if (i < 0) break;
    int left = tn->o.trials - tn->trials;
    st = run_round(tn, i, left < tn->o.per_round ? left : tn->o.per_round, random_pick);
  }
  return st;
}

/* ---- Setup and the report ------------------------------------------------------------------ */

/* The first op of a summary ("nn.conv2d+add+nn.relu (1,64,...)" -> "nn.conv2d"). */
static void kind_of(const char *summary, char *out, size_t cap) {
  size_t n = 0;
  while (summary && summary[n] && !strchr(" +(", summary[n]) && n + 1 < cap) n++;
  memcpy(out, summary ? summary : "", n);
  out[n] = 0;
}

/* Float operations of one call of the unscheduled PrimFunc (lowered without a schedule);
 * 0 when it does not lower (only hard errors are returned). */
static kiln_status count_flops(kiln_context *ctx, ir_func *prim, double *flops) {
  *flops = 0;
  ir_arena *a = ir_arena_new(ctx);
  if (!a) return KILN_ERR_NOMEM;
  ir_func *low = NULL;
  kiln_status st = ir_lower_func(ctx, a, prim, NULL, &low);
  if (!st) st = tune_count_flops(ctx, low, flops);
  ir_arena_free(a);
  if (st && st != KILN_ERR_NOMEM && st != KILN_ERR_INTERNAL) {
    ir_clear_error(ctx);
    *flops = 0;
    st = KILN_OK;
  }
  return st;
}

/* Sets up task i: its kind, FLOPs and search (its own seed: the run's seed mixed with the
 * task's workload hash, so a task's candidates do not depend on the other tasks). */
static kiln_status setup_task(tuner *tn, int i) {
  task_state *k = &tn->ts[i];
  k->tn = tn;
  k->index = i;
  k->in = &tn->tasks->tasks[i];
  kind_of(k->in->summary, k->kind, sizeof k->kind);
  kiln_status st = count_flops(tn->ctx, k->in->prim, &k->flops);
  if (st) return st;
  tune_search_opts so = tn->o.search;
  so.trials = tn->o.trials;
  uint64_t x = tn->o.seed ^ k->in->hash;
  so.seed = ir_splitmix64(&x);
  so.verbose = tn->o.verbose > 1;
  so.stop = tn->o.stop;
  if (tn->o.measure_fn) {
    so.measure_fn = measure_hook;
    so.measure_ud = k;
  }
  st = tune_search_begin(tn->ctx, k->in->prim, tn->t, tn->db, &so, &k->search);
  return st ? task_error(tn, k, st) : KILN_OK;
}

static void tuner_free(tuner *tn) {
  for (int i = 0; tn->ts && i < tn->n; i++) {
    task_state *k = &tn->ts[i];
    if (k->search) tune_search_end(k->search, NULL);
    ir_free(tn->ctx, k->hist, sizeof(hist_entry) * (size_t)k->caphist);
    if (k->error) ir_free(tn->ctx, k->error, strlen(k->error) + 1);
  }
  if (tn->ts) ir_free(tn->ctx, tn->ts, sizeof(task_state) * (size_t)tn->n);
  ir_free(tn->ctx, tn->round_task, sizeof(int) * (size_t)tn->caprounds);
}

/* Builds the report from the tuner's state. */
static kiln_status make_report(tuner *tn, const stop_reason *why, tune_model_report **out) {
  ir_arena *a = ir_arena_new(tn->ctx);
  if (!a) return KILN_ERR_NOMEM;
  tune_model_report *r = ir_arena_alloc(a, sizeof *r);
  if (!r) goto nomem;
  r->ctx = tn->ctx;
  r->arena = a;
  r->ntasks = tn->n;
  r->tasks = ir_arena_alloc(a, sizeof(tune_model_task_report) * (size_t)(tn->n ? tn->n : 1));
  r->round_task = ir_arena_alloc(a, sizeof(int) * (size_t)(tn->rounds ? tn->rounds : 1));
  if (!r->tasks || !r->round_task) goto nomem;
  for (int i = 0; i < tn->n; i++) {
    const task_state *k = &tn->ts[i];
    static const tune_search_result none;
    const tune_search_result *sr = k->search ? tune_search_current(k->search) : &none;
    tune_model_task_report *tr = &r->tasks[i];
    tr->name = ir_arena_strdup(a, k->in->name ? k->in->name : "");
    tr->summary = ir_arena_strdup(a, k->in->summary ? k->in->summary : "");
    if (!tr->name || !tr->summary) goto nomem;
    if (k->error && !(tr->error = ir_arena_strdup(a, k->error))) goto nomem;
    tr->hash = k->in->hash;
    tr->weight = k->in->weight;
    tr->ncalls = k->in->ncalls;
    tr->flops = k->flops;
    tr->trials = sr->trials;
    memcpy(tr->failures, sr->failures, sizeof tr->failures);
    tr->warm_started = sr->warm_started;
    tr->warm_skipped = sr->warm_skipped;
    tr->default_s = sr->default_median_s;
    tr->best_s = best_of(k);
    tr->speedup = tr->default_s > 0 && tr->best_s > 0 ? tr->default_s / tr->best_s : 0;
    tr->best_gflops = gflops(k->flops, tr->best_s);
    tr->exhausted = !k->error && tune_search_done(k->search) && sr->trials < tn->o.trials;
  }
  memcpy(r->round_task, tn->round_task, sizeof(int) * (size_t)tn->rounds);
  r->trials = tn->trials;
  r->rounds = tn->rounds;
  r->bucket_weight = tn->bucket_weight;
  estimate(tn, &r->est_latency_s, &r->default_latency_s, &r->complete);
  r->time_limited = why->time_limited;
  r->interrupted = why->interrupted;
  r->elapsed_s = elapsed(tn);
  *out = r;
  return KILN_OK;
nomem:
  ir_arena_free(a);
  return KILN_ERR_NOMEM;
}

/* ---- Entry points ------------------------------------------------------------------------- */

tune_model_opts tune_model_opts_default(void) {
  tune_model_opts o = {
      .trials = 64,
      .seed = 1,
      .eps_random = 0.05,
      .window = 3,
      .alpha = 0.2,
      .beta = 2,
      .search = tune_search_opts_default(),
  };
  return o;
}

kiln_status tune_model_tasks(kiln_context *ctx, const relay_build_tasks *tasks,
                             double bucket_weight, const tgt_target *t, tune_db *db,
                             const tune_model_opts *opts, tune_model_report **out) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (out) *out = NULL;
  if (!tasks || !t || !opts || !out || (tasks->ntasks > 0 && !tasks->tasks))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune_model: NULL tasks, target, options or report");
  tune_model_opts o = *opts;
  if (o.per_round == 0) o.per_round = o.search.measure_batch;
  if (o.trials < 1 || o.per_round < 1 || o.window < 1 || !(o.eps_random >= 0 && o.eps_random <= 1) ||
      !(o.alpha >= 0 && o.alpha <= 1) || !(o.beta > 0) || !(bucket_weight > 0) ||
      isnan(o.time_budget_s))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune_model: bad options (trials %d, per_round %d, window %d, eps_random %g, "
                   "alpha %g, beta %g, bucket weight %g): trials, per_round and window must be "
                   ">= 1, eps_random and alpha in [0, 1], beta and the bucket weight > 0",
                   o.trials, o.per_round, o.window, o.eps_random, o.alpha, o.beta, bucket_weight);
  for (int i = 0; i < tasks->ntasks; i++)
    if (!tasks->tasks[i].prim || !(tasks->tasks[i].weight >= 0))
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                     "tune_model: task %d ('%s') has no PrimFunc or a bad weight", i,
                     tasks->tasks[i].name ? tasks->tasks[i].name : "?");
  if (!o.measure_fn && !t->is_host)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "tune_model: target '%s' is not this machine: candidates are measured here, "
                   "so tuning needs the host target (or a measurement hook)", t->canonical);

  tuner tn = {.ctx = ctx, .tasks = tasks, .t = t, .db = db, .o = o,
              .bucket_weight = bucket_weight, .n = tasks->ntasks, .t0 = now_s()};
  tn.rng = o.seed ^ 0x6b696c6e5f746d73ull; /* "kiln_tms" */
  kiln_status st = KILN_OK;
  if (tn.n > 0) {
    tn.ts = ir_malloc(ctx, sizeof(task_state) * (size_t)tn.n);
    if (!tn.ts) return KILN_ERR_NOMEM;
    memset(tn.ts, 0, sizeof(task_state) * (size_t)tn.n);
  }
  for (int i = 0; !st && i < tn.n; i++) st = setup_task(&tn, i);
  stop_reason why = {false, false};
  if (!st) st = schedule(&tn, &why);
  if (!st) st = make_report(&tn, &why, out);
  tuner_free(&tn);
  return st;
}

kiln_status tune_model(kiln_context *ctx, relay_module *m, int nbuckets, const kiln_bucket *buckets,
                       const tgt_target *t, tune_db *db, const tune_model_opts *opts,
                       tune_model_report **out) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (out) *out = NULL;
  if (!m || !t || !opts || !out || nbuckets < 0 || (nbuckets > 0 && !buckets))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune_model: NULL module, target, options or report, or bad buckets");
  double bucket_weight = 0;
  for (int b = 0; b < nbuckets; b++)
    bucket_weight += buckets[b].weight > 0 ? buckets[b].weight : 1;
  if (nbuckets == 0) bucket_weight = 1;
  relay_build_tasks *tasks = NULL;
  kiln_status st = relay_build_extract_tasks(m, nbuckets, buckets, &tasks);
  if (st) return st;
  st = tune_model_tasks(ctx, tasks, bucket_weight, t, db, opts, out);
  relay_build_tasks_free(tasks);
  return st;
}

void tune_model_report_free(tune_model_report *r) {
  if (r) ir_arena_free(r->arena);
}

/* ---- The report as JSON ------------------------------------------------------------------ */

void tune_json_string(ir_strbuf *sb, const char *s) {
  if (!s) {
    ir_sb_puts(sb, "null");
    return;
  }
  ir_sb_puts(sb, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') ir_sb_printf(sb, "\\%c", *p);
    else if (*p == '\n') ir_sb_puts(sb, "\\n");
    else if (*p == '\t') ir_sb_puts(sb, "\\t");
    else if (*p < 0x20) ir_sb_printf(sb, "\\u%04x", *p);
    else ir_sb_putn(sb, (const char *)p, 1);
  }
  ir_sb_puts(sb, "\"");
}

void tune_json_number(ir_strbuf *sb, double v, int digits) {
  if (isfinite(v)) ir_sb_printf(sb, "%.*g", digits, v);
  else ir_sb_puts(sb, "null");
}

/* One key and its number: `, "key": value`. */
static void json_num_field(ir_strbuf *sb, const char *key, double v, int digits) {
  ir_sb_printf(sb, ", \"%s\": ", key);
  tune_json_number(sb, v, digits);
}

kiln_status tune_model_report_json(kiln_context *ctx, const tune_model_report *r,
                                   const char *model, const char *target, const char *db,
                                   char **out, size_t *len) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!r || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune report: no report or no output");
  *out = NULL;
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  ir_sb_puts(&sb, "{\"model\": ");
  tune_json_string(&sb, model);
  ir_sb_puts(&sb, ", \"target\": ");
  tune_json_string(&sb, target);
  ir_sb_puts(&sb, ", \"db\": ");
  tune_json_string(&sb, db);
  ir_sb_printf(&sb, ", \"trials\": %d, \"rounds\": %d", r->trials, r->rounds);
  json_num_field(&sb, "elapsed_s", r->elapsed_s, 6);
  ir_sb_printf(&sb, ", \"time_limited\": %s, \"interrupted\": %s,\n",
               r->time_limited ? "true" : "false", r->interrupted ? "true" : "false");
  ir_sb_puts(&sb, " \"bucket_weight\": ");
  tune_json_number(&sb, r->bucket_weight, 17);
  json_num_field(&sb, "default_latency_s", r->default_latency_s, 9);
  json_num_field(&sb, "est_latency_s", r->est_latency_s, 9);
  ir_sb_printf(&sb, ", \"complete\": %s,\n \"tasks\": [", r->complete ? "true" : "false");
  for (int i = 0; i < r->ntasks; i++) {
    const tune_model_task_report *k = &r->tasks[i];
    ir_sb_puts(&sb, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
    tune_json_string(&sb, k->name);
    ir_sb_puts(&sb, ", \"summary\": ");
    tune_json_string(&sb, k->summary);
    ir_sb_printf(&sb, ", \"hash\": \"%016" PRIx64 "\"", k->hash);
    json_num_field(&sb, "weight", k->weight, 17);
    ir_sb_printf(&sb, ", \"ncalls\": %d", k->ncalls);
    json_num_field(&sb, "flops", k->flops, 17);
    ir_sb_printf(&sb, ", \"trials\": %d,\n   \"ok\": %d, \"failed\": %d, \"build_error\": %d, "
                 "\"run_error\": %d, \"timeout\": %d, \"wrong_result\": %d, "
                 "\"warm_started\": %d",
                 k->trials, k->failures[TUNE_STATUS_OK],
                 k->trials - k->failures[TUNE_STATUS_OK], k->failures[TUNE_STATUS_BUILD_ERROR],
                 k->failures[TUNE_STATUS_RUN_ERROR], k->failures[TUNE_STATUS_TIMEOUT],
                 k->failures[TUNE_STATUS_WRONG_RESULT], k->warm_started);
    json_num_field(&sb, "default_s", k->default_s, 9);
    json_num_field(&sb, "best_s", k->best_s, 9);
    json_num_field(&sb, "speedup", k->speedup, 6);
    json_num_field(&sb, "best_gflops", k->best_gflops, 6);
    ir_sb_printf(&sb, ", \"exhausted\": %s, \"error\": ", k->exhausted ? "true" : "false");
    tune_json_string(&sb, k->error);
    ir_sb_puts(&sb, "}");
  }
  ir_sb_puts(&sb, "\n ],\n \"round_tasks\": [");
  for (int i = 0; i < r->rounds; i++) ir_sb_printf(&sb, "%s%d", i ? ", " : "", r->round_task[i]);
  ir_sb_puts(&sb, "]}\n");
  *out = ir_sb_take(&sb, len);
  return *out ? KILN_OK : KILN_ERR_NOMEM; /* ir_sb_take recorded it */
}

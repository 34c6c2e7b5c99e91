/* search.c: the evolutionary search for one task (search.h). The design space is the default
 * rules' trace and their cache-blocked variant's; a candidate is one of them replayed with
 * sampling instructions re-sampled from the candidate's own seed (with those sampled on loops
 * derived from them) and knobs redrawn. Data flow of one round:
 *   parents (best measured) + default trace -> random candidates and mutants (replay)
 *   -> lowered (ir_lower_func) -> features -> cost model scores (+ model-guided generations)
 *   -> batch: forced ones (warm start, default), best predicted, eps at random
 *   -> replayed and built, a few at once on builder threads (prebuild) -> tune_measure one
 *   by one (or the measure hook) -> database record -> retrain.
 * Every random choice comes from one splitmix64 stream seeded by opts->seed, so the run is
 * reproducible given the same measurements. */
#include "autotune/search.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "autotune/features.h"
#include "ir/text.h"
#include "ir/transform.h"
#include "relay/lower.h"
#include "schedule/schedule.h"

/* How many generation attempts per wanted candidate before giving up on a small space. */
enum { ATTEMPTS_PER_CANDIDATE = 4, MAX_KNOBS = 16, MAX_BUILD_THREADS = 16, MAX_VARIANTS = 2 };

/* The structures of the design space besides the default rules' own: the block annotation
 * that selects each in the tile rule (schedule/rules.c): the cache-blocked structure (K
 * split, KBLOCK_ANNOT) and the panel one (operand packed per parallel chunk, PANEL_ANNOT). */
static const char *const VARIANT_ANNOTS[MAX_VARIANTS] = {"schedule.kblock", "schedule.panel"};

/* Knobs: annotations of the default rules whose value is a decision of the design space
 * although the trace records it as a literal (annotate takes no RV): the search mutates the
 * literal itself. "unroll_max_step" on a tile's loop: nests of at most that many iterations
 * under it are unrolled by the TIR pipeline (ir/transform.c); 0, the default, unrolls none. */
typedef struct knob_kind {
  const char *key;
  int n;
  int64_t values[4];
} knob_kind;
static const knob_kind KNOBS[] = {{"unroll_max_step", 4, {0, 16, 64, 512}}};

/* The knob an instruction sets (NULL when it is not one): an annotate of a known key with an
 * integer literal. */
static const knob_kind *knob_of(const sch_inst *in) {
  if (in->kind != SCH_INST_ANNOTATE || in->ninputs != 3 || in->inputs[1].kind != SCH_ARG_STR ||
      in->inputs[2].kind != SCH_ARG_INT || !in->inputs[1].s)
    return NULL;
  for (size_t i = 0; i < sizeof KNOBS / sizeof KNOBS[0]; i++)
    if (strcmp(in->inputs[1].s, KNOBS[i].key) == 0) return &KNOBS[i];
  return NULL;
}

/* A candidate: a trace (JSON, context memory) and what the search knows about it. */
typedef struct cand {
  char *json;
  size_t json_len;
  uint64_t hash;   /* structural hash of the scheduled function (deduplication) */
  uint64_t seed;   /* the seed its schedule was made with */
  float *feat;     /* tune_feature_count() floats; NULL when the function did not lower */
  double score;    /* cost model prediction (higher: faster) */
  const char *origin; /* "default", "warm", "random", "mutant": for progress lines */
  struct prebuilt *pre; /* built ahead of its measurement (prebuild), else NULL */
  /* after measurement */
  int status;      /* tune_status */
  double median_s;
} cand;

/* A candidate replayed and compiled on a builder thread (prebuild). The thread works in a
 * context of its own (the default allocator), which owns the kernel. */
typedef struct prebuilt {
  kiln_context *ctx;
  tune_built *k;    /* NULL when the replay or the build failed */
  kiln_status st;   /* that failure's status */
  char error[512];  /* and its message */
} prebuilt;

/* A growable array of candidates (context memory). */
typedef struct cand_list {
  cand *v;
  int n, cap;
} cand_list;

/* Everything one run owns (a tune_search_state); released by search_free. A search is a
 * sequence of rounds; a round may span several tune_search_step calls, so the round in
 * progress is part of the state: its size, how much of it was measured, and the candidates
 * it picked and has not measured yet. */
typedef struct tune_search_state search;
struct tune_search_state {
  kiln_context *ctx;
  const ir_func *f;
  const tgt_target *t;
  tune_db *db;
  tune_search_opts o;
  tune_search_result *out; /* points to res */
  tune_search_result res;  /* the running result (its best trace is owned here) */
  uint64_t rng;
  int nfeat;
  tune_feature_options fopts;

  sch_schedule *def;   /* the default schedule: its trace is the design space */
  int nsamp;           /* sampling instructions of the default trace */
  int nknob;           /* annotate instructions whose literal is a decision (knobs) */
  sch_schedule *alts[MAX_VARIANTS]; /* the variants' schedules (more bases), nalts of them */
  uint64_t alt_hash[MAX_VARIANTS];   /* their functions' structural hashes */
  int nalts;
  int npatch;          /* knob values the next replay_trace sets (then puts back) */
  int patch_at[MAX_KNOBS];
  int64_t patch_value[MAX_KNOBS];
  uint64_t default_hash;

  ir_arena *arena;     /* the run's arena (workload summary) */
  ir_arena *scratch;   /* reset per candidate: parsed traces, lowered functions */
  uint64_t workload_hash;
  tune_reference *ref; /* computed at the first real measurement (need_ref) */
  bool need_ref;
  tune_cost_model *model;

  int build_threads;   /* candidates built at once (prebuild) */
  cand_list measured;  /* in measurement order */
  cand_list forced;    /* measured before any pick: warm-start records, the default */
  cand_list pool;      /* this round's generated candidates */

  /* the round in progress */
  bool in_round;       /* a round was started and not finished */
  bool picked;         /* its model-ranked / random picks were made (into picks) */
  int round_batch;     /* candidates it measures at most */
  int round_measured;  /* candidates it measured so far */
  cand_list picks;     /* its picks not measured yet, in measurement order */
  bool exhausted;      /* a round found nothing to measure: the space is used up */
  kiln_status failed;  /* a step's error: the state then only accepts tune_search_end */
};

/* ---- Small helpers ---------------------------------------------------------------------- */

/* The search's random stream. */
static uint64_t next_rand(search *s) { return ir_splitmix64(&s->rng); }

static int rand_below(search *s, int k) { return (int)(next_rand(s) % (uint64_t)k); }


static void prebuilt_free(search *s, prebuilt *p) {
  if (!p) return;
  tune_built_free(p->k);
  kiln_context_free(p->ctx);
  ir_free(s->ctx, p, sizeof *p);
}

static void cand_clear(search *s, cand *c) {
  prebuilt_free(s, c->pre);
  if (c->json) ir_free(s->ctx, c->json, c->json_len + 1);
  if (c->feat) ir_free(s->ctx, c->feat, sizeof(float) * (size_t)s->nfeat);
  memset(c, 0, sizeof *c);
}

static void list_clear(search *s, cand_list *l) {
  for (int i = 0; i < l->n; i++) cand_clear(s, &l->v[i]);
  l->n = 0;
}

static void list_free(search *s, cand_list *l) {
  list_clear(s, l);
  ir_free(s->ctx, l->v, sizeof(cand) * (size_t)l->cap);
  memset(l, 0, sizeof *l);
}

/* Appends c (ownership of its arrays moves to the list). On failure c is left to the caller. */
static kiln_status list_push(search *s, cand_list *l, const cand *c) {
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 16;
    cand *v = ir_realloc(s->ctx, l->v, sizeof(cand) * (size_t)l->cap, sizeof(cand) * (size_t)cap);
    if (!v) return KILN_ERR_NOMEM;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = *c;
  return KILN_OK;
}

/* Moves element i out of l (the order of the others is kept). */
static cand list_take(cand_list *l, int i) {
  cand c = l->v[i];
  memmove(&l->v[i], &l->v[i + 1], sizeof(cand) * (size_t)(l->n - i - 1));
  l->n--;
  return c;
}

static bool list_has_hash(const cand_list *l, uint64_t h) {
  for (int i = 0; i < l->n; i++)
    if (l->v[i].hash == h) return true;
  return false;
}

/* Whether a function with this hash was measured, is queued, or is already in the pool. */
static bool seen(const search *s, uint64_t h) {
  return list_has_hash(&s->measured, h) || list_has_hash(&s->forced, h) ||
         list_has_hash(&s->pool, h);
}

/* Memory failures stop the search; every other error of a candidate only rejects it. */
static bool is_hard(kiln_status st) { return st == KILN_ERR_NOMEM || st == KILN_ERR_INTERNAL; }

/* ---- Making candidates ------------------------------------------------------------------ */

/* The instructions to re-sample when drop[0..ndrop) are: those, plus every later sampling
 * instruction that takes an RV derived from a re-sampled one (through the RV data flow of the
 * trace). A re-sampled tile changes the extents of the loops made from it, so a decision
 * sampled on such a loop (the parallel split of the fused tile loop, a compute location)
 * would no longer fit; it is re-sampled with it. *out (context memory, room for ninsts
 * indices, freed by the caller with that size) gets the indices in ascending order. */
static kiln_status dependent_drops(search *s, const sch_trace *t, int ndrop, const int *drop,
                                   int **out, int *nout) {
  *out = NULL;
  *nout = 0;
  int32_t nrvs = 0;
  for (int i = 0; i < t->ninsts; i++)
    for (int k = 0; k < t->insts[i].noutputs; k++)
      if (t->insts[i].outputs[k] >= nrvs) nrvs = t->insts[i].outputs[k] + 1;
  size_t nt = (size_t)(nrvs > 0 ? nrvs : 1);
  bool *tainted = ir_malloc(s->ctx, nt);
  int *d = ir_malloc(s->ctx, sizeof(int) * (size_t)(t->ninsts > 0 ? t->ninsts : 1));
  if (!tainted || !d) {
    if (tainted) ir_free(s->ctx, tainted, nt);
    if (d) ir_free(s->ctx, d, sizeof(int) * (size_t)(t->ninsts > 0 ? t->ninsts : 1));
    return KILN_ERR_NOMEM;
  }
  memset(tainted, 0, nt);
  int n = 0;
  for (int i = 0; i < t->ninsts; i++) {
    const sch_inst *in = &t->insts[i];
    bool dropped = false, derived = false;
    for (int k = 0; k < ndrop && !dropped; k++) dropped = drop[k] == i;
    for (int k = 0; k < in->ninputs && !derived; k++)
      if (in->inputs[k].kind == SCH_ARG_RV && in->inputs[k].i >= 0 && in->inputs[k].i < nrvs)
        derived = tainted[in->inputs[k].i];
    if (dropped || (derived && in->ndecision >= 0)) d[n++] = i;
    if (dropped || derived)
      for (int k = 0; k < in->noutputs; k++)
        if (in->outputs[k] >= 0 && in->outputs[k] < nrvs) tainted[in->outputs[k]] = true;
  }
  ir_free(s->ctx, tainted, nt);
  *out = d;
  *nout = n;
  return KILN_OK;
}

/* Replays `base` on a fresh schedule of the unscheduled function with seed, re-sampling the
 * instructions in drop[0..ndrop) and those depending on them (dependent_drops); *out is the
 * schedule (caller frees) or NULL when the replay failed for this candidate (counted; the
 * error is cleared). Hard errors are returned. */
static kiln_status replay_trace(search *s, const sch_trace *base, int ndrop, const int *drop,
                                uint64_t seed, sch_schedule **out) {
  *out = NULL;
  int *all = NULL, nall = 0;
  size_t all_size = sizeof(int) * (size_t)(base->ninsts > 0 ? base->ninsts : 1);
  kiln_status st = KILN_OK;
  if (ndrop > 0 && (st = dependent_drops(s, base, ndrop, drop, &all, &nall))) return st;
  sch_schedule *sch = sch_new(s->ctx, s->f, seed);
  if (!sch) {
    if (all) ir_free(s->ctx, all, all_size);
    return s->ctx->code ? s->ctx->code : KILN_ERR_NOMEM;
  }
  /* knob values set for this replay only (the base trace is put back as it was) */
  int64_t saved[MAX_KNOBS];
  int npatch = s->npatch;
  s->npatch = 0;
  for (int i = 0; i < npatch; i++) {
    sch_inst *in = &base->insts[s->patch_at[i]];
    saved[i] = knob_of(in) ? in->inputs[2].i : 0;
    if (knob_of(in)) in->inputs[2].i = s->patch_value[i];
  }
  st = ndrop > 0 ? sch_replay(sch, base, nall, all) : sch_replay(sch, base, 0, NULL);
  for (int i = npatch - 1; i >= 0; i--) {
    sch_inst *in = &base->insts[s->patch_at[i]];
    if (knob_of(in)) in->inputs[2].i = saved[i];
  }
  if (all) ir_free(s->ctx, all, all_size);
  if (st) {
    sch_free(sch);
    if (is_hard(st)) return st;
    ir_clear_error(s->ctx);
    s->out->replay_failed++;
    return KILN_OK;
  }
  *out = sch;
  return KILN_OK;
}

/* Fills c from a replayed schedule: hash, trace JSON, features (NULL when the function does
 * not lower: it can still be measured, and fail as a build error). *dup tells whether the
 * function was seen already (c is then left empty). */
static kiln_status describe(search *s, sch_schedule *sch, uint64_t seed, const char *origin,
                            cand *c, bool *dup) {
  memset(c, 0, sizeof *c);
  *dup = false;
  uint64_t h;
  kiln_status st = ir_structural_hash(s->ctx, &sch->func->h, &h);
  if (st) return st;
  if (seen(s, h)) {
    *dup = true;
    return KILN_OK;
  }
  c->hash = h;
  c->seed = seed;
  c->origin = origin;
  if ((st = sch_trace_to_json(s->ctx, &sch->trace, &c->json, &c->json_len))) return st;

  ir_func *low = NULL;
  st = ir_lower_func(s->ctx, s->scratch, sch->func, NULL, &low);
  if (!st) {
    c->feat = ir_malloc(s->ctx, sizeof(float) * (size_t)s->nfeat);
    if (!c->feat) st = KILN_ERR_NOMEM;
    else st = tune_extract_features_opt(s->ctx, low, &s->fopts, c->feat);
    if (st && c->feat) {
      ir_free(s->ctx, c->feat, sizeof(float) * (size_t)s->nfeat);
      c->feat = NULL;
    }
  }
  ir_arena_reset(s->scratch);
  if (st) {
    if (is_hard(st)) {
      cand_clear(s, c);
      return st;
    }
    ir_clear_error(s->ctx); /* kept without features: it will rank last */
  }
  return KILN_OK;
}

/* Makes one candidate from base with the given drops and appends it to list `to`, unless the
 * replay fails or the function is a duplicate (both counted). */
static kiln_status add_candidate(search *s, const sch_trace *base, int ndrop, const int *drop,
                                 uint64_t seed, const char *origin, cand_list *to) {
  sch_schedule *sch;
  kiln_status st = replay_trace(s, base, ndrop, drop, seed, &sch);
  if (st || !sch) return st;
  cand c;
  bool dup;
  st = describe(s, sch, seed, origin, &c, &dup);
  sch_free(sch);
  if (st) return st;
  if (dup) {
    s->out->duplicates++;
    return KILN_OK;
  }
  if ((st = list_push(s, to, &c))) cand_clear(s, &c);
  return st;
}

/* The same from a trace in JSON (a parent, a database record). *bad tells whether the text
 * did not parse as a trace (the error is cleared). */
static kiln_status add_from_json(search *s, const char *json, int ndrop, const int *drop,
                                 uint64_t seed, const char *origin, cand_list *to, bool *bad) {
  *bad = false;
  sch_trace t;
  kiln_status st = sch_trace_from_json(s->ctx, s->scratch, json, &t);
  if (st) {
    s->npatch = 0; /* knob values meant for this replay */
    if (is_hard(st)) return st;
    ir_clear_error(s->ctx);
    *bad = true;
    return KILN_OK;
  }
  /* the parsed trace lives in scratch, which describe() resets: replay it first */
  sch_schedule *sch;
  st = replay_trace(s, &t, ndrop, drop, seed, &sch);
  if (st || !sch) return st;
  cand c;
  bool dup;
  st = describe(s, sch, seed, origin, &c, &dup);
  sch_free(sch);
  if (st) return st;
  if (dup) {
    s->out->duplicates++;
    return KILN_OK;
  }
  if ((st = list_push(s, to, &c))) cand_clear(s, &c);
  return st;
}

/* Sets the knob of instruction `at` of trace t to a value drawn uniformly for the next
 * replay. */
static void patch_knob(search *s, const sch_trace *t, int at) {
  const knob_kind *kk = knob_of(&t->insts[at]);
  if (!kk || s->npatch >= MAX_KNOBS) return;
  s->patch_at[s->npatch] = at;
  s->patch_value[s->npatch++] = kk->values[rand_below(s, kk->n)];
}

/* The decision points of a trace: its sampling instructions and its knobs, as instruction
 * indices (points has room for t->ninsts); returns their number, sampling ones first
 * (*nsamp of them). */
static int points_of(const sch_trace *t, int *points, int *nsamp) {
  int n = 0;
  for (int i = 0; i < t->ninsts; i++)
    if (t->insts[i].ndecision >= 0) points[n++] = i;
  *nsamp = n;
  for (int i = 0; i < t->ninsts; i++)
    if (knob_of(&t->insts[i])) points[n++] = i;
  return n;
}

/* A random point of the space: a base trace (the default rules' or their cache-blocked
 * variant's) with every sampling instruction re-sampled and every knob drawn. */
static kiln_status add_random(search *s, cand_list *to) {
  sch_schedule *base = s->def;
  if (s->nalts) {
    int b = rand_below(s, 1 + s->nalts);
    if (b) base = s->alts[b - 1];
  }
  const sch_trace *t = &base->trace;
  int *points = ir_malloc(s->ctx, sizeof(int) * (size_t)(t->ninsts + 1));
  if (!points) return KILN_ERR_NOMEM;
  int nsamp, n = points_of(t, points, &nsamp);
  for (int k = nsamp; k < n; k++) patch_knob(s, t, points[k]);
  uint64_t seed = next_rand(s);
  kiln_status st = add_candidate(s, t, nsamp, points, seed, "random", to);
  ir_free(s->ctx, points, sizeof(int) * (size_t)(t->ninsts + 1));
  return st;
}

/* A mutant of parent (a trace in JSON; NULL: the default trace): one or two of its decisions
 * changed, each a sampling instruction re-sampled (with those depending on it) or a knob
 * drawn again. */
static kiln_status add_mutant(search *s, const char *parent, cand_list *to) {
  sch_trace parsed;
  const sch_trace *t = &s->def->trace;
  if (parent) {
    kiln_status st = sch_trace_from_json(s->ctx, s->scratch, parent, &parsed);
    if (st) {
      if (is_hard(st)) return st;
      ir_clear_error(s->ctx);
      s->out->replay_failed++;
      return KILN_OK;
    }
    t = &parsed; /* in scratch, which describe() resets: replayed before that */
  }
  int *points = ir_malloc(s->ctx, sizeof(int) * (size_t)(t->ninsts + 1));
  if (!points) return KILN_ERR_NOMEM;
  int nsamp, n = points_of(t, points, &nsamp);
  int drop[2], ndrop = 0;
  int nmut = n >= 2 && rand_below(s, 2) ? 2 : 1;
  int first = -1;
  for (int m = 0; m < nmut && n > 0; m++) {
    int slot;
    do slot = rand_below(s, n);
    while (slot == first);
    first = slot;
    if (slot < nsamp) drop[ndrop++] = points[slot];
    else patch_knob(s, t, points[slot]);
  }
  ir_free(s->ctx, points, sizeof(int) * (size_t)(t->ninsts + 1));
  uint64_t seed = next_rand(s);
  return add_candidate(s, t, ndrop, drop, seed, "mutant", to);
}

/* ---- Warm start ------------------------------------------------------------------------- */

/* The database's ok records for the task with the lowest medians (at most cap, ascending). */
typedef struct best_list {
  kiln_context *ctx;
  int n, cap;
  double *median;
  char **json;
  uint64_t *seed;
  bool oom;
} best_list;

static int collect_best(void *ud, const tune_record *r) {
  best_list *b = ud;
  if (r->status != TUNE_STATUS_OK) return 0;
  int pos = b->n;
  while (pos > 0 && b->median[pos - 1] > r->median_s) pos--;
  if (pos >= b->cap) return 0;
  char *copy = ir_strdup(b->ctx, r->trace_json);
  if (!copy) {
    b->oom = true;
    return 1;
  }
  if (b->n == b->cap) { /* the last one falls off */
    ir_free(b->ctx, b->json[b->n - 1], strlen(b->json[b->n - 1]) + 1);
    b->n--;
  }
  memmove(&b->median[pos + 1], &b->median[pos], sizeof(double) * (size_t)(b->n - pos));
  memmove(&b->json[pos + 1], &b->json[pos], sizeof(char *) * (size_t)(b->n - pos));
  memmove(&b->seed[pos + 1], &b->seed[pos], sizeof(uint64_t) * (size_t)(b->n - pos));
  b->median[pos] = r->median_s;
  b->json[pos] = copy;
  b->seed[pos] = r->seed;
  b->n++;
  return 0;
}

/* Queues the database's best traces for the task (replayed with their decisions, so they
 * are re-measured here, never trusted): records that do not parse or replay are skipped and
 * counted, the next best taking their place. */
static kiln_status warm_start(search *s) {
  if (!s->db || s->o.warm_start <= 0) return KILN_OK;
  /* room for some broken records among the best */
  int cap = 4 * s->o.warm_start + 16;
  best_list b = {.ctx = s->ctx, .cap = cap};
  b.median = ir_malloc(s->ctx, sizeof(double) * (size_t)cap);
  b.json = ir_malloc(s->ctx, sizeof(char *) * (size_t)cap);
  b.seed = ir_malloc(s->ctx, sizeof(uint64_t) * (size_t)cap);
  kiln_status st = b.median && b.json && b.seed ? KILN_OK : KILN_ERR_NOMEM;
  int64_t corrupted = 0;
  if (!st)
    st = tune_db_list_records(s->db, true, s->workload_hash, s->t->canonical, collect_best, &b,
                              &corrupted);
  if (!st && b.oom) st = KILN_ERR_NOMEM;
  if (!st) s->out->warm_skipped += (int)corrupted;
  for (int i = 0; !st && i < b.n && s->forced.n < s->o.warm_start; i++) {
    bool repeated = false; /* the same trace stored twice: one is enough */
    for (int j = 0; j < i; j++)
      if (strcmp(b.json[j], b.json[i]) == 0) repeated = true;
    if (repeated) continue;
    int before_fail = s->out->replay_failed, before_n = s->forced.n;
    bool bad;
    st = add_from_json(s, b.json[i], 0, NULL, b.seed[i], "warm", &s->forced, &bad);
    if (st) break;
    if (bad || s->out->replay_failed > before_fail) {
      s->out->replay_failed = before_fail; /* counted as a skipped record instead */
      s->out->warm_skipped++;
      if (s->o.verbose)
        fprintf(stderr, "tune_search: skipped database record %d (median %g s): its trace "
                "no longer replays\n", i, b.median[i]);
    } else if (s->forced.n > before_n) {
      s->out->warm_started++;
    }
  }
  for (int i = 0; i < b.n; i++) ir_free(s->ctx, b.json[i], strlen(b.json[i]) + 1);
  ir_free(s->ctx, b.median, sizeof(double) * (size_t)cap);
  ir_free(s->ctx, b.json, sizeof(char *) * (size_t)cap);
  ir_free(s->ctx, b.seed, sizeof(uint64_t) * (size_t)cap);
  return st;
}

/* ---- Ranking ------------------------------------------------------------------------------ */

/* Scores the pool's candidates from `from` on with the model (untrained: 0 for all);
 * candidates without features get -inf so they rank last. */
static kiln_status score_pool(search *s, int from) {
  int n = 0;
  for (int i = from; i < s->pool.n; i++) {
    s->pool.v[i].score = -INFINITY;
    if (s->pool.v[i].feat) n++;
  }
  if (n == 0) return KILN_OK;
  size_t rows = (size_t)n * (size_t)s->nfeat;
  float *x = ir_malloc(s->ctx, sizeof(float) * rows);
  double *y = ir_malloc(s->ctx, sizeof(double) * (size_t)n);
  kiln_status st = x && y ? KILN_OK : KILN_ERR_NOMEM;
  if (!st) {
    int k = 0;
    for (int i = from; i < s->pool.n; i++)
      if (s->pool.v[i].feat)
        memcpy(x + (size_t)k++ * (size_t)s->nfeat, s->pool.v[i].feat,
               sizeof(float) * (size_t)s->nfeat);
    st = tune_cost_model_predict(s->model, n, x, y);
  }
  if (!st) {
    int k = 0;
    for (int i = from; i < s->pool.n; i++)
      if (s->pool.v[i].feat) s->pool.v[i].score = y[k++];
  }
  ir_free(s->ctx, x, sizeof(float) * rows);
  ir_free(s->ctx, y, sizeof(double) * (size_t)n);
  return st;
}

/* Shuffles the pool (so equal scores, e.g. an untrained model's, come in random order), then
 * sorts it by score, best first (insertion sort: stable, and pools are small). */
static void rank_pool(search *s) {
  cand *v = s->pool.v;
  for (int i = s->pool.n - 1; i > 0; i--) {
    int j = rand_below(s, i + 1);
    cand tmp = v[i];
    v[i] = v[j];
    v[j] = tmp;
  }
  for (int i = 1; i < s->pool.n; i++) {
    cand c = v[i];
    int j = i;
    while (j > 0 && v[j - 1].score < c.score) {
      v[j] = v[j - 1];
      j--;
    }
    v[j] = c;
  }
}

/* Indices of the best measured ok candidates (at most population), fastest first, in idx. */
static int best_measured(search *s, int *idx) {
  int n = 0;
  for (int i = 0; i < s->measured.n; i++) {
    const cand *c = &s->measured.v[i];
    if (c->status != TUNE_STATUS_OK) continue;
    int pos = n;
    while (pos > 0 && s->measured.v[idx[pos - 1]].median_s > c->median_s) pos--;
    if (pos >= s->o.population) continue;
    if (n < s->o.population) n++;
    memmove(&idx[pos + 1], &idx[pos], sizeof(int) * (size_t)(n - 1 - pos));
    idx[pos] = i;
  }
  return n;
}

/* Fills the pool for one round: random candidates and mutants of the best measured ones (half
 * each; mutants of the default trace while nothing was measured ok),
 * then, once the model is trained, `generations` rounds of mutants of the best predicted. */
static kiln_status fill_pool(search *s) {
  if (s->nsamp + s->nknob == 0 && !s->nalts) return KILN_OK; /* the default schedule alone */
  int *parents = ir_malloc(s->ctx, sizeof(int) * (size_t)s->o.population);
  if (!parents) return KILN_ERR_NOMEM;
  int nparents = best_measured(s, parents);
  int want = s->o.candidates;
  kiln_status st = KILN_OK;
  for (int tries = 0; !st && s->pool.n < want && tries < ATTEMPTS_PER_CANDIDATE * want; tries++) {
    if (rand_below(s, 2) == 0) st = add_random(s, &s->pool);
    else if (nparents > 0)
      st = add_mutant(s, s->measured.v[parents[rand_below(s, nparents)]].json, &s->pool);
    else
      st = add_mutant(s, NULL, &s->pool);
  }
  ir_free(s->ctx, parents, sizeof(int) * (size_t)s->o.population);
  if (!st) st = score_pool(s, 0);
  if (st || !tune_cost_model_trained(s->model)) return st;

  /* model-guided generations: the best predicted candidates breed more */
  for (int g = 0; !st && g < s->o.generations; g++) {
    rank_pool(s);
    int np = s->pool.n < s->o.population ? s->pool.n : s->o.population;
    int first = s->pool.n, add = want / 2 > 0 ? want / 2 : 1;
    for (int tries = 0; !st && np > 0 && s->pool.n < first + add &&
                        tries < ATTEMPTS_PER_CANDIDATE * add; tries++) {
      /* copy the parent's text: pushing to the pool may move it */
      char *parent = ir_strdup(s->ctx, s->pool.v[rand_below(s, np)].json);
      if (!parent) return KILN_ERR_NOMEM;
      st = add_mutant(s, parent, &s->pool);
      ir_free(s->ctx, parent, strlen(parent) + 1);
    }
    if (!st) st = score_pool(s, first);
  }
  return st;
}

/* ---- Measuring -------------------------------------------------------------------------- */

/* Kernels up to this many float operations get the interpreter's outputs as their reference
 * (it runs a few million operations a second); larger ones the default schedule's. */
#define INTERP_REFERENCE_MAX_FLOPS 1e7

/* The reference outputs candidates are checked against. The interpreter on the unscheduled
 * function is exact but takes minutes on a large convolution (ResNet-18's kernels: half an
 * hour in all), so a large kernel takes the outputs of its default schedule (compiled and run
 * once in a worker, as the compiler would use it without tuning; the rules are checked
 * against the interpreter by the test suites). When the default schedule cannot be built or
 * run, the interpreter it is. */
static kiln_status make_reference(search *s) {
  tune_built *k = NULL;
  kiln_status st = tune_build(s->ctx, s->t, s->def->func, &k);
  double flops = 0;
  if (!st) {
    const kiln_tir_module *low = tune_built_lowered(k);
    st = low && low->nfuncs == 1 ? tune_count_flops(s->ctx, low->funcs[0], &flops)
                                 : KILN_ERR_INTERNAL;
  }
  if (!st && flops > INTERP_REFERENCE_MAX_FLOPS) {
    tune_measure_opts o = s->o.measure;
    o.check = false;
    o.warmup = 0;
    o.min_repeats = 1;
    o.min_seconds = 0;
    tune_result r;
    st = tune_measure_capture(s->ctx, k, s->def->func, &o, NULL, &r, &s->ref);
  }
  tune_built_free(k);
  if (st == KILN_ERR_NOMEM) return st;
  if (st) ir_clear_error(s->ctx); /* the default schedule failed: the interpreter it is */
  if (s->ref) return KILN_OK;
  return tune_reference_outputs(s->ctx, s->f, s->o.measure.seed, &s->ref);
}

/* The slow-candidate rule (tune_search_opts.slow_factor): once a candidate is ok, a first
 * call slower than slow_factor times the best median ends the timing, and the time limit
 * shrinks to 10 times that cutoff (a full measurement below the cutoff takes about 5 calls
 * plus the cache flushes), but not below TUNE_SLOW_MIN_TIMEOUT_S nor above the option's. */
static void slow_limits(const search *s, tune_measure_opts *mo) {
  double best = s->out->best_median_s;
  if (!(s->o.slow_factor > 0) || !(best > 0)) return;
  mo->slow_cutoff_s = s->o.slow_factor * best;
  double limit = 10 * mo->slow_cutoff_s;
  if (limit < TUNE_SLOW_MIN_TIMEOUT_S) limit = TUNE_SLOW_MIN_TIMEOUT_S;
  if (limit < mo->timeout_s) mo->timeout_s = limit;
}

/* The reference outputs are computed when the task is first measured, not when it is set
 * up, so that a model tuner with a time budget pays only for the tasks it gets to. */
static kiln_status ensure_reference(search *s) {
  if (!s->need_ref) return KILN_OK;
  s->need_ref = false;
  return make_reference(s);
}

/* Replays a trace (JSON, parsed into arena a) on f in a new schedule of ctx (*out; NULL on
 * failure, the error on ctx). */
static kiln_status replay_json(kiln_context *ctx, ir_arena *a, const ir_func *f,
                               const char *json, uint64_t seed, sch_schedule **out) {
  *out = NULL;
  sch_trace tr;
  kiln_status st = sch_trace_from_json(ctx, a, json, &tr);
  if (st) return st;
  sch_schedule *sch = sch_new(ctx, f, seed);
  if (!sch) return ctx->code ? ctx->code : KILN_ERR_NOMEM;
  if ((st = sch_replay(sch, &tr, 0, NULL))) {
    sch_free(sch);
    return st;
  }
  *out = sch;
  return KILN_OK;
}

/* Replays a trace (JSON) on f and compiles the result for t, all in ctx: touches nothing else
 * but f and t (read only), so builder threads with contexts of their own run it at once. */
static kiln_status replay_and_build(kiln_context *ctx, const ir_func *f, const tgt_target *t,
                                    const char *json, uint64_t seed, tune_built **out) {
  *out = NULL;
  ir_arena *a = ir_arena_new(ctx);
  if (!a) return KILN_ERR_NOMEM;
  sch_schedule *sch;
  kiln_status st = replay_json(ctx, a, f, json, seed, &sch);
  if (!st) st = tune_build(ctx, t, sch->func, out);
  sch_free(sch);
  ir_arena_free(a);
  return st;
}

typedef struct build_job {
  const search *s;
  cand *c;
} build_job;

static void *build_main(void *arg) {
  build_job *j = arg;
  prebuilt *p = j->c->pre;
  p->st = replay_and_build(p->ctx, j->s->f, j->s->t, j->c->json, j->c->seed, &p->k);
  if (p->st) snprintf(p->error, sizeof p->error, "%s", kiln_context_errmsg(p->ctx));
  return NULL;
}

/* Builds the first n candidates of v that are not built yet, up to build_threads of them at
 * once, each on its own thread, in its own context, with its own JIT (this thread builds
 * one too; a thread that cannot be started leaves its job to this one). Candidates are built
 * before, never while, one is measured: the timings share the machine with nothing. Only
 * a hard error (no memory) is returned; a failed build is kept in the candidate. */
static kiln_status prebuild(search *s, cand *v, int n) {
  build_job jobs[MAX_BUILD_THREADS];
  pthread_t th[MAX_BUILD_THREADS];
  bool started[MAX_BUILD_THREADS] = {false};
  int nj = 0;
  for (int i = 0; i < n && nj < s->build_threads; i++) {
    if (v[i].pre) continue;
    prebuilt *p = ir_malloc(s->ctx, sizeof *p);
    if (!p) return KILN_ERR_NOMEM;
    memset(p, 0, sizeof *p);
    if (kiln_context_new(&p->ctx)) {
      ir_free(s->ctx, p, sizeof *p);
      return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_NOMEM,
                     "tune_search: no memory for a builder's context");
    }
    v[i].pre = p;
    jobs[nj++] = (build_job){s, &v[i]};
  }
  for (int i = 1; i < nj; i++) started[i] = pthread_create(&th[i], NULL, build_main, &jobs[i]) == 0;
  if (nj > 0) build_main(&jobs[0]);
  for (int i = 1; i < nj; i++) {
    if (started[i]) pthread_join(th[i], NULL);
    else build_main(&jobs[i]);
  }
  return KILN_OK;
}

/* Measures candidate c (its trace replayed again from the JSON, so what is measured is
 * exactly what is stored; built by prebuild unless a measure hook replaces building) and
 * fills r. Only hard errors are returned. */
static kiln_status measure(search *s, cand *c, tune_result *r) {
  memset(r, 0, sizeof *r);
  kiln_status st;
  if (!s->o.measure_fn) {
    if ((st = ensure_reference(s)) || (st = prebuild(s, c, 1))) return st;
    const prebuilt *p = c->pre;
    if (is_hard(p->st)) return ir_fail(s->ctx, IR_NO_SPAN, p->st, "%s", p->error);
    if (p->st) {
      tune_result_fail(r, TUNE_BUILD_ERROR, p->error);
      return KILN_OK;
    }
    const void *const *refs = s->ref ? (const void *const *)s->ref->data : NULL;
    tune_measure_opts mo = s->o.measure;
    slow_limits(s, &mo);
    return tune_measure(s->ctx, p->k, s->f, &mo, refs, r);
  }
  sch_schedule *sch;
  st = replay_json(s->ctx, s->scratch, s->f, c->json, c->seed, &sch);
  if (st) {
    if (!is_hard(st)) {
      tune_result_fail(r, TUNE_BUILD_ERROR, kiln_context_errmsg(s->ctx));
      ir_clear_error(s->ctx);
      st = KILN_OK;
    }
  } else {
    st = s->o.measure_fn(s->o.measure_ud, s->ctx, sch->func, c->json, r);
  }
  sch_free(sch);
  ir_arena_reset(s->scratch);
  return st;
}

/* Stores one measurement in the database. */
static kiln_status record(search *s, const cand *c, const tune_result *r) {
  if (!s->db) return KILN_OK;
  tune_record rec = {
      .workload_hash = s->workload_hash,
      .target = s->t->canonical,
      .trace_json = c->json,
      .median_s = r->median_s,
      .min_s = r->min_s,
      .max_s = r->max_s,
      .stddev_s = r->stddev_s,
      .repeats = r->repeats,
      .status = (tune_status)r->status,
      .error = r->error,
      .seed = c->seed,
  };
  return tune_db_add_record(s->db, &rec, NULL);
}

/* Measures c (taken over by the search), records it and updates the result. */
static kiln_status measure_and_keep(search *s, cand *c) {
  tune_result r;
  kiln_status st = measure(s, c, &r);
  prebuilt_free(s, c->pre); /* the kernel is not needed any more */
  c->pre = NULL;
  if (!st && (r.status < TUNE_OK || r.status > TUNE_WRONG_RESULT)) {
    st = ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL,
                 "tune_search: the measurement of candidate %d gave status %d", s->out->trials,
                 r.status);
  }
  if (!st && r.status == TUNE_OK && !(r.median_s > 0 && isfinite(r.median_s)))
    st = ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL,
                 "tune_search: candidate %d measured ok with median %g s", s->out->trials,
                 r.median_s);
  if (!st) st = record(s, c, &r);
  if (st) {
    cand_clear(s, c);
    return st;
  }
  c->status = r.status;
  c->median_s = r.status == TUNE_OK ? r.median_s : 0;
  tune_search_result *out = s->out;
  int index = out->trials++;
  out->failures[r.status]++;
  if (c->hash == s->default_hash && r.status == TUNE_OK) out->default_median_s = r.median_s;
  if (r.status == TUNE_OK && (!out->best_trace_json || r.median_s < out->best_median_s)) {
    char *best = ir_strdup(s->ctx, c->json);
    if (!best) {
      cand_clear(s, c);
      return KILN_ERR_NOMEM;
    }
    if (out->best_trace_json)
      ir_free(s->ctx, out->best_trace_json, strlen(out->best_trace_json) + 1);
    out->best_trace_json = best;
    out->best_median_s = r.median_s;
  }
  if (s->o.verbose) {
    if (r.status == TUNE_OK)
      fprintf(stderr, "tune_search: [%d/%d] %-7s %10.3f us  (best %.3f us)\n", index + 1,
              s->o.trials, c->origin, r.median_s * 1e6, out->best_median_s * 1e6);
    else
      fprintf(stderr, "tune_search: [%d/%d] %-7s %s: %s\n", index + 1, s->o.trials, c->origin,
              tune_status_name((tune_status)r.status), r.error);
  }
  if (s->o.on_measured) s->o.on_measured(s->o.on_measured_ud, index, c->json, &r);
  if ((st = list_push(s, &s->measured, c))) cand_clear(s, c);
  return st;
}

/* Retrains the model on every measurement of this run that has features: throughput
 * 1 / median, failures 0. Needs at least one success. */
static kiln_status retrain(search *s) {
  int n = 0, nok = 0;
  for (int i = 0; i < s->measured.n; i++)
    if (s->measured.v[i].feat) {
      n++;
      if (s->measured.v[i].status == TUNE_STATUS_OK) nok++;
    }
  if (nok == 0) return KILN_OK;
  size_t rows = (size_t)n * (size_t)s->nfeat;
  float *x = ir_malloc(s->ctx, sizeof(float) * rows);
  double *y = ir_malloc(s->ctx, sizeof(double) * (size_t)n);
  kiln_status st = x && y ? KILN_OK : KILN_ERR_NOMEM;
  if (!st) {
    int k = 0;
    for (int i = 0; i < s->measured.n; i++) {
      const cand *c = &s->measured.v[i];
      if (!c->feat) continue;
      memcpy(x + (size_t)k * (size_t)s->nfeat, c->feat, sizeof(float) * (size_t)s->nfeat);
      y[k++] = c->status == TUNE_STATUS_OK ? 1.0 / c->median_s : 0.0;
    }
    st = tune_cost_model_train(s->model, n, x, y);
  }
  ir_free(s->ctx, x, sizeof(float) * rows);
  ir_free(s->ctx, y, sizeof(double) * (size_t)n);
  return st;
}

/* Rounds. A round measures up to measure_batch candidates (fewer when the trial budget ends
 * sooner): the forced ones first (warm-start records, the default), then, from a fresh pool
 * ranked by the model, the best predicted and eps at random. The picks are made all at once
 * when the forced ones run out, before any of them is measured (the random picks consume the
 * random stream exactly as picking them one by one between measurements would: measuring
 * uses no random numbers), so a round cut between two steps continues where it stopped and
 * any split of the trials into steps gives the same candidates. The model retrains when a
 * round ends. A round that finds nothing to measure means the space is exhausted. */

/* Starts a round. */
static void round_start(search *s) {
  int left = s->o.trials - s->out->trials;
  s->in_round = true;
  s->picked = false;
  s->round_batch = s->o.measure_batch < left ? s->o.measure_batch : left;
  s->round_measured = 0;
}

/* Makes the round's picks from a fresh pool: the ntop best predicted, then nrand at random
 * among the rest. */
static kiln_status round_pick(search *s) {
  list_clear(s, &s->pool);
  list_clear(s, &s->picks);
  s->picked = true;
  kiln_status st = fill_pool(s);
  if (st) return st;
  rank_pool(s);
  int want = s->round_batch - s->round_measured;
  int nrand = (int)(s->o.eps_random * want + 0.5);
  int ntop = want - nrand;
  for (int i = 0; !st && i < ntop && s->pool.n > 0; i++) {
    cand c = list_take(&s->pool, 0);
    if ((st = list_push(s, &s->picks, &c))) cand_clear(s, &c);
  }
  for (int i = 0; !st && i < nrand && s->pool.n > 0; i++) {
    cand c = list_take(&s->pool, rand_below(s, s->pool.n));
    if ((st = list_push(s, &s->picks, &c))) cand_clear(s, &c);
  }
  list_clear(s, &s->pool);
  return st;
}

/* Ends the round: counts it and retrains, or marks the space exhausted when it measured
 * nothing. */
static kiln_status round_end(search *s) {
  s->in_round = false;
  list_clear(s, &s->picks);
  if (s->round_measured == 0) {
    s->exhausted = true;
    return KILN_OK;
  }
  s->out->rounds++;
  return retrain(s);
}

/* Measures at most max_trials candidates, going on with the round in progress and starting
 * new ones; stops early when the trial budget (opts.trials) is spent or the space is
 * exhausted. *measured counts what this call measured. */
static kiln_status run_steps(search *s, int max_trials, int *measured) {
  kiln_status st = KILN_OK;
  *measured = 0;
  while (!st && !s->exhausted) {
    if (!s->in_round) {
      if (*measured >= max_trials || s->out->trials >= s->o.trials) break;
      round_start(s);
    }
    if (s->round_measured >= s->round_batch || (s->picked && s->picks.n == 0)) {
      st = round_end(s); /* full, or nothing more to measure in it */
      continue;
    }
    if (*measured >= max_trials) break; /* the round goes on in the next step */
    if (s->o.stop && *s->o.stop) break;   /* asked to stop: the round stays in progress */
    if (!s->picked && s->forced.n == 0) {
      st = round_pick(s);
      continue;
    }
    cand_list *from = s->picked ? &s->picks : &s->forced;
    if (!s->o.measure_fn && !from->v[0].pre) {
      /* the next candidates of this step, built at once */
      int want = s->round_batch - s->round_measured;
      if (max_trials - *measured < want) want = max_trials - *measured;
      if (want > from->n) want = from->n;
      if ((st = prebuild(s, from->v, want))) break;
    }
    cand c = list_take(from, 0);
    if ((st = measure_and_keep(s, &c))) break;
    s->round_measured++;
    ++*measured;
  }
  return st;
}

/* ---- Setup and the driver ----------------------------------------------------------------- */

/* Registers the workload and the target in the database. */
static kiln_status register_task(search *s) {
  relay_workload wk;
  kiln_status st = relay_workload_key(s->ctx, s->arena, s->f, &wk);
  if (st) return st;
  s->workload_hash = wk.hash;
  if (!s->db) return KILN_OK;
  ir_strbuf sb;
  ir_sb_init(&sb, s->ctx);
  st = ir_print_node(s->ctx, &s->f->h, &sb);
  size_t len = 0;
  char *text = st ? NULL : ir_sb_take(&sb, &len);
  if (st) ir_sb_free(&sb);
  else if (!text) st = KILN_ERR_NOMEM;
  if (!st) st = tune_db_add_workload(s->db, wk.hash, wk.summary, text, NULL);
  if (text) ir_free(s->ctx, text, len + 1);
  if (!st) st = tune_db_add_target(s->db, s->t->canonical, s->t->cpu, s->t->features, NULL);
  return st;
}

/* Collects the names of the reduction blocks of a function (for add_variant). */
typedef struct block_names {
  int n;
  const char *names[64];
} block_names;

static bool reduction_names_visit(ir_node *n, void *ud) {
  block_names *b = ud;
  if (n->kind == IR_BLOCK) {
    const ir_block *blk = (const ir_block *)n;
    if (blk->init && b->n < 64) b->names[b->n++] = blk->name;
  }
  return !ir_is_expr(n);
}

/* Whether a function with hash h is the default's or a variant's already. */
static bool is_base(const search *s, uint64_t h) {
  bool found = h == s->default_hash;
  for (int i = 0; i < s->nalts; i++) found |= s->alt_hash[i] == h;
  return found;
}

/* Another base trace of the space: the default rules applied to a copy of the function whose
 * reduction blocks carry the annotation, which makes the tile rule build one of its variants
 * (schedule/rules.c). The trace is replayed on the unmarked function (instructions name
 * blocks and loops, never that annotation), and kept in s->alts when that works and gives a
 * function the space does not have yet; otherwise it is left out (the error cleared). */
static kiln_status add_variant(search *s, const sch_target_info *ti, const char *annot) {
  sch_schedule *mark = sch_new(s->ctx, s->f, s->o.seed), *marked = NULL, *alt = NULL;
  if (!mark) return s->ctx->code ? s->ctx->code : KILN_ERR_NOMEM;
  block_names names = {0};
  ir_visit(&mark->func->h, false, reduction_names_visit, &names);
  kiln_status st = KILN_OK;
  ir_expr *one = ir_int(mark->arena, KILN_INT64, 1);
  if (!one) st = KILN_ERR_NOMEM;
  for (int i = 0; !st && i < names.n; i++) {
    sch_rv b;
    st = sch_get_block(mark, names.names[i], &b);
    if (!st) st = sch_annotate(mark, b, annot, one);
  }
  if (!st && names.n > 0) {
    marked = sch_new(s->ctx, mark->func, s->o.seed);
    if (!marked) st = s->ctx->code ? s->ctx->code : KILN_ERR_NOMEM;
  }
  if (!st && marked) st = sch_apply_default_rules(marked, ti);
  if (!st && marked) {
    alt = sch_new(s->ctx, s->f, s->o.seed);
    if (!alt) st = s->ctx->code ? s->ctx->code : KILN_ERR_NOMEM;
    else st = sch_replay(alt, &marked->trace, 0, NULL);
  }
  uint64_t h = 0;
  if (!st && alt) st = ir_structural_hash(s->ctx, &alt->func->h, &h);
  if (!st && alt && !is_base(s, h) && s->nalts < MAX_VARIANTS) {
    s->alt_hash[s->nalts] = h;
    s->alts[s->nalts++] = alt;
    alt = NULL;
  }
  if (alt) sch_free(alt);
  if (marked) sch_free(marked);
  sch_free(mark);
  if (st && !is_hard(st)) {
    ir_clear_error(s->ctx);
    st = KILN_OK;
  }
  return st;
}

/* The default schedule (its decision points counted), the variants, and the
 * default candidates queued after the warm-start ones. */
static kiln_status setup_space(search *s) {
  s->def = sch_new(s->ctx, s->f, s->o.seed);
  if (!s->def) return s->ctx->code ? s->ctx->code : KILN_ERR_NOMEM;
  sch_target_info ti;
  sch_target_info_from(s->t, &ti);
  kiln_status st = sch_apply_default_rules(s->def, &ti);
  if (st) return st;
  const sch_trace *tr = &s->def->trace;
  for (int i = 0; i < tr->ninsts; i++) {
    if (tr->insts[i].ndecision >= 0) s->nsamp++;
    if (knob_of(&tr->insts[i])) s->nknob++;
  }
  if ((st = ir_structural_hash(s->ctx, &s->def->func->h, &s->default_hash))) return st;
  for (int i = 0; !st && i < MAX_VARIANTS; i++) st = add_variant(s, &ti, VARIANT_ANNOTS[i]);
  return st;
}

static kiln_status queue_default(search *s) {
  if (list_has_hash(&s->forced, s->default_hash)) return KILN_OK; /* a warm start is it */
  int before = s->forced.n;
  kiln_status st = add_candidate(s, &s->def->trace, 0, NULL, s->o.seed, "default", &s->forced);
  if (!st && s->forced.n == before)
    st = ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL,
                 "tune_search: the default schedule's trace does not replay on '%s'",
                 s->f->name);
  /* the variants' defaults next: the first point of each other structure */
  for (int i = 0; !st && i < s->nalts; i++)
    st = add_candidate(s, &s->alts[i]->trace, 0, NULL, s->o.seed, "variant", &s->forced);
  return st;
}

/* Frees everything the state owns, the state included (NULL is fine). */
static void search_free(search *s) {
  if (!s) return;
  kiln_context *ctx = s->ctx;
  list_free(s, &s->measured);
  list_free(s, &s->forced);
  list_free(s, &s->pool);
  list_free(s, &s->picks);
  for (int i = 0; i < s->nalts; i++) sch_free(s->alts[i]);
  sch_free(s->def);
  if (s->ref) tune_reference_free(ctx, s->ref);
  tune_cost_model_free(s->model);
  ir_arena_free(s->scratch);
  ir_arena_free(s->arena);
  tune_search_result_clear(ctx, &s->res);
  ir_free(ctx, s, sizeof *s);
}

tune_search_opts tune_search_opts_default(void) {
  tune_search_opts o = {
      .trials = 64,
      .population = 8,
      .candidates = 0,
      .generations = 2,
      .measure_batch = 8,
      .warm_start = 4,
      .eps_random = 0.2,
      .seed = 1,
      .measure = tune_measure_opts_default(),
      .slow_factor = 10,
  };
  return o;
}

void tune_search_result_clear(kiln_context *ctx, tune_search_result *r) {
  if (!r) return;
  if (r->best_trace_json && ctx) ir_free(ctx, r->best_trace_json, strlen(r->best_trace_json) + 1);
  memset(r, 0, sizeof *r);
}

kiln_status tune_search_begin(kiln_context *ctx, const ir_func *unscheduled, const tgt_target *t,
                              tune_db *db, const tune_search_opts *opts,
                              tune_search_state **out) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (out) *out = NULL;
  if (!unscheduled || !t || !opts || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune_search: NULL function, target, options or result");
  tune_search_opts o = *opts;
  if (o.trials < 1 || o.population < 1 || o.measure_batch < 1 || o.candidates < 0 ||
      o.generations < 0 || o.warm_start < 0 || !(o.eps_random >= 0 && o.eps_random <= 1) ||
      o.build_threads < 0 || !(o.slow_factor >= 0))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune_search: bad options for '%s' (trials %d, population %d, "
                   "measure_batch %d, candidates %d, generations %d, warm_start %d, "
                   "eps_random %g, build_threads %d, slow_factor %g): counts must be >= 1 "
                   "(candidates, generations, warm_start, build_threads >= 0), eps_random in "
                   "[0, 1] and slow_factor >= 0", unscheduled->name, o.trials, o.population,
                   o.measure_batch, o.candidates, o.generations, o.warm_start, o.eps_random,
                   o.build_threads, o.slow_factor);
  if (o.candidates == 0) o.candidates = 4 * o.measure_batch;

  search *s = ir_malloc(ctx, sizeof *s);
  if (!s) return KILN_ERR_NOMEM;
  *s = (search){.ctx = ctx, .f = unscheduled, .t = t, .db = db, .o = o,
                .nfeat = tune_feature_count()};
  s->out = &s->res;
  s->rng = o.seed ^ 0x6b696c6e5f747365ull; /* "kiln_tse": decorrelates from schedule seeds */
  s->fopts.num_threads = t->num_cores;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  s->build_threads = o.build_threads > 0 ? o.build_threads : ncpu > 0 ? (int)ncpu : 1;
  if (s->build_threads > MAX_BUILD_THREADS) s->build_threads = MAX_BUILD_THREADS;
  kiln_status st = KILN_OK;
  s->arena = ir_arena_new(ctx);
  s->scratch = ir_arena_new(ctx);
  if (!s->arena || !s->scratch) st = KILN_ERR_NOMEM;
  if (!st) st = tune_cost_model_new(ctx, &s->model);
  if (!st) st = setup_space(s);
  s->need_ref = !o.measure_fn && o.measure.check;
  if (!st) st = register_task(s);
  if (!st) st = warm_start(s);
  if (!st) st = queue_default(s);
  if (st) {
    search_free(s); /* the error message stays on the context */
    return st;
  }
  if (o.verbose)
    fprintf(stderr, "tune_search: '%s': %d sampling instructions, %d warm-start records "
            "(%d skipped), %d trials\n", unscheduled->name, s->nsamp, s->res.warm_started,
            s->res.warm_skipped, o.trials);
  *out = s;
  return KILN_OK;
}

kiln_status tune_search_step(tune_search_state *s, int max_trials, int *measured) {
  if (measured) *measured = 0;
  if (!s) return KILN_ERR_MISUSE;
  if (s->failed)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune_search_step: the search of '%s' failed in an earlier step; only "
                   "tune_search_end may follow", s->f->name);
  if (max_trials < 1)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune_search_step: max_trials must be >= 1 (got %d) for '%s'", max_trials,
                   s->f->name);
  int n = 0;
  kiln_status st = run_steps(s, max_trials, &n);
  if (measured) *measured = n;
  if (st) s->failed = st;
  return st;
}

const tune_search_result *tune_search_current(const tune_search_state *s) {
  return s ? &s->res : NULL;
}

bool tune_search_done(const tune_search_state *s) {
  return !s || s->failed || s->exhausted || s->res.trials >= s->o.trials;
}

uint64_t tune_search_workload_hash(const tune_search_state *s) {
  return s ? s->workload_hash : 0;
}

kiln_status tune_search_end(tune_search_state *s, tune_search_result *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!s) return KILN_ERR_MISUSE;
  kiln_status st = s->failed; /* the failed step's status (its message is on the context) */
  if (!st && out) {
    *out = s->res; /* the best trace's string moves to the caller */
    memset(&s->res, 0, sizeof s->res);
  }
  search_free(s);
  return st;
}

kiln_status tune_search(kiln_context *ctx, const ir_func *unscheduled, const tgt_target *t,
                        tune_db *db, const tune_search_opts *opts, tune_search_result *out) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!unscheduled || !t || !opts || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune_search: NULL function, target, options or result");
  memset(out, 0, sizeof *out);
  tune_search_state *s;
  kiln_status st = tune_search_begin(ctx, unscheduled, t, db, opts, &s);
  if (st) return st;
  int measured;
  st = run_steps(s, opts->trials, &measured);
  if (!st && opts->verbose)
    fprintf(stderr, "tune_search: '%s': %d trials in %d rounds, best %.3f us, default %.3f us\n",
            unscheduled->name, s->res.trials, s->res.rounds, s->res.best_median_s * 1e6,
            s->res.default_median_s * 1e6);
  if (!st) return tune_search_end(s, out);
  search_free(s); /* keep the error message: freeing touches memory only */
  return st;
}

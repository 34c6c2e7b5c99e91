/* features.c: the autotuner's view of a candidate and its cost model. Part 1 walks a LOWERED
 * PrimFunc (after ir_lower_func) and turns it into a fixed-length feature vector (Ansor
 * style: one set of features per buffer store, aggregated over the function). Part 2 is the
 * cost model: XGBoost gradient-boosted trees trained on those vectors and measured
 * throughputs, used to rank candidates before measuring them. See features.h. */
#include "autotune/features.h"

#include <math.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "ir/arith.h"

/* ======================================================================================
 * Part 1: feature extraction
 * ====================================================================================== */

/* How a per-store value becomes part of the function's vector. */
typedef enum agg_kind {
  AGG_SUM, /* a count (already times the execution count): summed, then log2(1 + x) */
  AGG_LOG, /* a size or extent: log2(1 + x) per store, averaged weighted by execution count */
  AGG_FLAG /* a 0/1 flag or ratio: averaged weighted by execution count */
} agg_kind;

/* Function-level features (all log2(1 + x)). */
#define FN_FEATURES(X)                                    \
  X(FN_STORES, "fn.stores")                               \
  X(FN_LOOPS, "fn.loops")                                 \
  X(FN_PARALLEL_LOOPS, "fn.parallel_loops")               \
  X(FN_MAX_PARALLEL_EXTENT, "fn.max_parallel_extent")     \
  X(FN_ALLOCS, "fn.local_allocs")                         \
  X(FN_ALLOC_BYTES, "fn.local_alloc_bytes")               \
  X(FN_ALLOC_MAX_BYTES, "fn.local_alloc_max_bytes")

/* Per-store features. Op counts are per execution times lanes (a 32-lane add counts 32). */
#define ST_FEATURES(X)                                               \
  X(ST_EXEC, "st.exec_count", AGG_SUM)                               \
  X(ST_FADD, "st.float_addsub", AGG_SUM)                             \
  X(ST_FMUL, "st.float_mul", AGG_SUM)                                \
  X(ST_FDIV, "st.float_div", AGG_SUM)                                \
  X(ST_FMA, "st.float_fma", AGG_SUM)                                 \
  X(ST_FMINMAX, "st.float_minmax", AGG_SUM)                          \
  X(ST_FTRANS, "st.float_transcendental", AGG_SUM)                   \
  X(ST_FOTHER, "st.float_other", AGG_SUM)                            \
  X(ST_INT, "st.int_ops", AGG_SUM)                                   \
  X(ST_CMP, "st.compare_ops", AGG_SUM)                               \
  X(ST_SELECT, "st.selects", AGG_SUM)                                \
  X(ST_CAST, "st.casts", AGG_SUM)                                    \
  X(ST_LOADS, "st.loads", AGG_SUM)                                   \
  X(ST_BYTES, "st.bytes_accessed", AGG_SUM)                          \
  X(ST_STORE_LANES, "st.store_lanes", AGG_LOG)                       \
  X(ST_LOAD_LANES, "st.load_lanes_max", AGG_LOG)                     \
  X(ST_VECTORIZED, "st.vectorized", AGG_FLAG)                        \
  X(ST_UNROLLED, "st.inner_loop_unrolled", AGG_FLAG)                 \
  X(ST_BODY_STORES, "st.inner_body_stores", AGG_LOG)                 \
  X(ST_DEPTH, "st.nest_depth", AGG_LOG)                              \
  X(ST_INNER_EXTENT, "st.inner_extent", AGG_LOG)                     \
  X(ST_INNER2_EXTENT, "st.inner2_extent", AGG_LOG)                   \
  X(ST_PARALLEL, "st.in_parallel", AGG_FLAG)                         \
  X(ST_PAR_EXTENT, "st.parallel_extent", AGG_LOG)                    \
  X(ST_PAR_PER_THREAD, "st.parallel_per_thread", AGG_LOG)            \
  X(ST_GUARDED, "st.under_if", AGG_FLAG)                             \
  X(ST_INTENSITY, "st.arith_intensity", AGG_LOG)

/* Per-buffer-slot features, repeated for slots b0, b1, b2. */
#define SLOT_FEATURES(X)                            \
  X(SL_READ, "read", AGG_FLAG)                      \
  X(SL_WRITE, "write", AGG_FLAG)                    \
  X(SL_LOCAL, "local", AGG_FLAG)                    \
  X(SL_ACCESS_BYTES, "access_bytes", AGG_LOG)       \
  X(SL_FP1, "footprint_l1", AGG_LOG)                \
  X(SL_FP2, "footprint_l2", AGG_LOG)                \
  X(SL_FP3, "footprint_l3", AGG_LOG)                \
  X(SL_FPALL, "footprint_all", AGG_LOG)             \
  X(SL_REUSE1, "reuse_l1", AGG_LOG)                 \
  X(SL_REUSEALL, "reuse_all", AGG_LOG)              \
  X(SL_STRIDE, "stride", AGG_LOG)                   \
  X(SL_CONTIG, "contiguous", AGG_FLAG)              \
  X(SL_INVARIANT, "invariant", AGG_FLAG)

enum {
#define X(e, n) e,
  FN_FEATURES(X)
#undef X
  FN_COUNT
};
enum {
#define X(e, n, k) e,
  ST_FEATURES(X)
#undef X
  ST_COUNT
};
enum {
#define X(e, n, k) e,
  SLOT_FEATURES(X)
#undef X
  SL_COUNT
};

enum {
  NSLOTS = 3,
  /* the per-store vector: store features, then the slots */
  PS_COUNT = ST_COUNT + NSLOTS * SL_COUNT,
  FEATURE_COUNT = FN_COUNT + PS_COUNT
};

/* Names and aggregation kinds in vector order. */
static const char *const feature_names[FEATURE_COUNT] = {
#define X(e, n) n,
    FN_FEATURES(X)
#undef X
#define X(e, n, k) n,
    ST_FEATURES(X)
#undef X
#define X(e, n, k) "b0." n,
    SLOT_FEATURES(X)
#undef X
#define X(e, n, k) "b1." n,
    SLOT_FEATURES(X)
#undef X
#define X(e, n, k) "b2." n,
    SLOT_FEATURES(X)
#undef X
};

static const uint8_t st_agg[ST_COUNT] = {
#define X(e, n, k) k,
    ST_FEATURES(X)
#undef X
};
static const uint8_t sl_agg[SL_COUNT] = {
#define X(e, n, k) k,
    SLOT_FEATURES(X)
#undef X
};

int tune_feature_count(void) { return FEATURE_COUNT; }

const char *tune_feature_name(int i) {
  return i >= 0 && i < FEATURE_COUNT ? feature_names[i] : NULL;
}

int tune_feature_index(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < FEATURE_COUNT; i++)
    if (strcmp(feature_names[i], name) == 0) return i;
  return -1;
}

/* The aggregation kind of per-store entry i (0 .. PS_COUNT). */
static int ps_agg(int i) { return i < ST_COUNT ? st_agg[i] : sl_agg[(i - ST_COUNT) % SL_COUNT]; }

static double log1p2(double x) { return x > 0 ? log2(1.0 + x) : 0.0; }

/* ---- The walk ------------------------------------------------------------------------ */

/* Limits of the walk. Deeper nests / more lets are KILN_ERR_UNSUPPORTED; a store touching
 * more buffers or making more accesses than this has the rest ignored. */
enum {
  MAX_LOOPS = 64,
  MAX_LETS = 256,
  MAX_BUFS = 16,
  MAX_OCCS = 64,
  MAX_DIMS = 8,
  NLEVELS = 4 /* footprints over the 1, 2, 3 innermost loops and over the whole nest */
};

/* What makes a stride "unknown" (not a constant): counted as large and not contiguous. */
#define STRIDE_UNKNOWN 1048576.0

typedef struct loop_rec {
  const ir_for *f;
  int64_t min, extent; /* extent >= 0 */
  int body_stores;     /* stores directly in the body (not inside a nested loop) */
} loop_rec;

typedef struct let_rec {
  const ir_var *var;
  const ir_expr *value;
} let_rec;

/* One buffer as the current store touches it (all its accesses merged). */
typedef struct buf_acc {
  const ir_buffer *buf;
  bool read, write;
  int lanes;  /* widest access */
  int count;  /* accesses per execution */
  int first;  /* index of its first occurrence */
  int64_t lo[NLEVELS][MAX_DIMS], hi[NLEVELS][MAX_DIMS];
  double fp_elems[NLEVELS];
  double stride;
} buf_acc;

/* One access (a load or the store itself). */
typedef struct occ {
  int acc;
  int32_t nidx;
  ir_expr *const *idx;
  int lanes;
} occ;

typedef struct walker {
  kiln_context *ctx;
  const ir_func *func;
  ir_analyzer *an;
  int num_threads;
  loop_rec loops[MAX_LOOPS];
  int nloops;
  let_rec lets[MAX_LETS];
  int nlets;
  int guards;         /* enclosing ifs */
  int top_stores;     /* stores directly in the function body */
  double fn[FN_COUNT];
  double sum[PS_COUNT];  /* AGG_SUM: raw sums; others: sums of value * weight */
  double weight;         /* sum of execution counts */
  double flops;          /* float operations of the function (an fma counts 2) */
  /* the current store */
  buf_acc accs[MAX_BUFS];
  int naccs;
  occ occs[MAX_OCCS];
  int noccs;
  double ops[ST_COUNT];
  kiln_status st;
} walker;

static int64_t elem_bytes(kiln_dtype t) {
  int64_t b = ((int64_t)t.bits + 7) / 8;
  return (b > 0 ? b : 1) * (t.lanes > 0 ? t.lanes : 1);
}

static bool bounded(ir_interval iv) { return iv.min != INT64_MIN && iv.max != INT64_MAX; }

/* A constant, or the largest value ir_bound_of allows (fallback when unbounded or huge). */
static int64_t upper_value(walker *w, const ir_expr *e, int64_t fallback) {
  const ir_int_imm *k = ir_as_int(e);
  if (k) return k->value;
  ir_interval iv = ir_bound_of(w->an, e);
  return bounded(iv) && iv.max < ((int64_t)1 << 40) ? iv.max : fallback;
}

/* Binds every enclosing loop variable (innermost `nrelax` loops over their whole range, the
 * others at their first iteration, loop `bump` (-1: none) at its second) and then every
 * enclosing let of integer type to the bounds of its value. */
static kiln_status bind_loops(walker *w, int nrelax, int bump) {
  for (int i = 0; i < w->nloops; i++) {
    const loop_rec *l = &w->loops[i];
    if (!ir_dt_is_int(l->f->var->h.dtype)) continue;
    int64_t hi = l->min;
    if (i >= w->nloops - nrelax && l->extent > 1) hi = l->min + l->extent - 1;
    int64_t lo = l->min;
    if (i == bump) lo = hi = l->min + 1;
    kiln_status st = ir_analyzer_bind(w->an, l->f->var, (ir_interval){lo, hi});
    if (st) return st;
  }
  for (int i = 0; i < w->nlets; i++) {
    if (!ir_dt_is_int(w->lets[i].var->h.dtype) || w->lets[i].var->h.dtype.lanes != 1) continue;
    ir_interval iv = ir_bound_of(w->an, w->lets[i].value);
    if (!bounded(iv)) iv = IR_INTERVAL_EVERYTHING;
    kiln_status st = ir_analyzer_bind(w->an, w->lets[i].var, iv);
    if (st) return st;
  }
  return KILN_OK;
}

/* The extent of dimension d of b (constant, bounded, or 1 when unknown). */
static int64_t dim_extent(walker *w, const ir_buffer *b, int d) {
  int64_t e = upper_value(w, b->shape[d], 1);
  return e > 0 ? e : 1;
}

/* Row-major (or declared) stride of dimension d of b, in elements. */
static int64_t dim_stride(walker *w, const ir_buffer *b, int d) {
  if (b->nstrides == b->ndim && b->nstrides > 0) return upper_value(w, b->strides[d], 1);
  int64_t s = 1;
  for (int k = d + 1; k < b->ndim; k++) s *= dim_extent(w, b, k);
  return s;
}

/* Records an access of buffer b with these indices; returns the access's buf_acc or -1 when
 * the per-store limits are reached. */
static int add_access(walker *w, const ir_buffer *b, int32_t nidx, ir_expr *const *idx,
                      int lanes, bool write) {
  int a = -1;
  for (int i = 0; i < w->naccs; i++)
    if (w->accs[i].buf == b) a = i;
  if (a < 0) {
    if (w->naccs == MAX_BUFS || w->noccs == MAX_OCCS) return -1;
    a = w->naccs++;
    buf_acc *n = &w->accs[a];
    memset(n, 0, sizeof *n);
    n->buf = b;
    n->first = w->noccs;
    for (int l = 0; l < NLEVELS; l++)
      for (int d = 0; d < MAX_DIMS; d++) n->lo[l][d] = INT64_MAX, n->hi[l][d] = INT64_MIN;
  }
  if (w->noccs == MAX_OCCS) return -1;
  buf_acc *n = &w->accs[a];
  n->read |= !write;
  n->write |= write;
  n->count++;
  if (lanes > n->lanes) n->lanes = lanes;
  w->occs[w->noccs++] = (occ){a, nidx, idx, lanes};
  return a;
}

/* Counts the operations of e (times their lanes) into w->ops and records its loads. */
static void count_expr(walker *w, const ir_expr *e) {
  if (!e) return;
  double lanes = e->dtype.lanes > 0 ? e->dtype.lanes : 1;
  bool fl = ir_dt_is_float(e->dtype);
  switch ((ir_kind)e->kind) {
  case IR_ADD:
  case IR_SUB:
  case IR_MUL:
  case IR_DIV:
  case IR_MOD:
  case IR_FLOORDIV:
  case IR_FLOORMOD:
  case IR_MIN:
  case IR_MAX: {
    int f = ST_INT;
    if (fl) {
      switch (e->kind) {
      case IR_ADD: case IR_SUB: f = ST_FADD; break;
      case IR_MUL: f = ST_FMUL; break;
      case IR_MIN: case IR_MAX: f = ST_FMINMAX; break;
      default: f = ST_FDIV; break;
      }
    }
    w->ops[f] += lanes;
    count_expr(w, ((const ir_binary *)e)->a);
    count_expr(w, ((const ir_binary *)e)->b);
    return;
  }
  case IR_EQ:
  case IR_NE:
  case IR_LT:
  case IR_LE:
  case IR_GT:
  case IR_GE:
  case IR_AND:
  case IR_OR:
    w->ops[ST_CMP] += lanes;
    count_expr(w, ((const ir_binary *)e)->a);
    count_expr(w, ((const ir_binary *)e)->b);
    return;
  case IR_NOT:
    w->ops[ST_CMP] += lanes;
    count_expr(w, ((const ir_not *)e)->a);
    return;
  case IR_SELECT: {
    const ir_select *s = (const ir_select *)e;
    w->ops[ST_SELECT] += lanes;
    count_expr(w, s->cond);
    count_expr(w, s->t);
    count_expr(w, s->f);
    return;
  }
  case IR_CAST:
    w->ops[ST_CAST] += lanes;
    count_expr(w, ((const ir_cast *)e)->value);
    return;
  case IR_RAMP:
    count_expr(w, ((const ir_ramp *)e)->base);
    count_expr(w, ((const ir_ramp *)e)->stride);
    return;
  case IR_BROADCAST:
    count_expr(w, ((const ir_broadcast *)e)->value);
    return;
  case IR_LOAD: {
    const ir_load *l = (const ir_load *)e;
    w->ops[ST_LOADS] += 1;
    w->ops[ST_BYTES] += (double)elem_bytes(e->dtype);
    if (lanes > w->ops[ST_LOAD_LANES]) w->ops[ST_LOAD_LANES] = lanes;
    add_access(w, l->buffer, l->nindices, l->indices, (int)lanes, false);
    for (int i = 0; i < l->nindices; i++) count_expr(w, l->indices[i]);
    return;
  }
  case IR_CALL: {
    const ir_call *c = (const ir_call *)e;
    int f = ST_INT;
    if (fl) {
      switch (c->op) {
      case IR_OP_FMA: f = ST_FMA; break;
      case IR_OP_EXP: case IR_OP_LOG: case IR_OP_SQRT: case IR_OP_RSQRT: case IR_OP_TANH:
      case IR_OP_ERF: case IR_OP_SIGMOID: case IR_OP_POW: f = ST_FTRANS; break;
      default: f = ST_FOTHER; break;
      }
    }
    w->ops[f] += lanes;
    for (int i = 0; i < c->nargs; i++) count_expr(w, c->args[i]);
    return;
  }
  case IR_LET:
    count_expr(w, ((const ir_let *)e)->value);
    count_expr(w, ((const ir_let *)e)->body);
    return;
  default: /* immediates, variables */
    return;
  }
}

/* Stores directly in s (through seqs, ifs, lets, allocates; not inside nested loops). */
static int direct_stores(const ir_stmt *s) {
  if (!s) return 0;
  switch ((ir_kind)s->kind) {
  case IR_STORE: return 1;
  case IR_SEQ: {
    const ir_seq *q = (const ir_seq *)s;
    int n = 0;
    for (int i = 0; i < q->nstmts; i++) n += direct_stores(q->stmts[i]);
    return n;
  }
  case IR_IF: return direct_stores(((const ir_if *)s)->then_case) +
                     direct_stores(((const ir_if *)s)->else_case);
  case IR_LET_STMT: return direct_stores(((const ir_let_stmt *)s)->body);
  case IR_ALLOCATE: return direct_stores(((const ir_allocate *)s)->body);
  default: return 0;
  }
}

/* Bounds every access of the current store at each level and merges them per buffer. */
static kiln_status footprints(walker *w) {
  for (int l = 0; l < NLEVELS; l++) {
    int nrelax = l < NLEVELS - 1 ? l + 1 : w->nloops;
    kiln_status st = bind_loops(w, nrelax, -1);
    if (st) return st;
    for (int o = 0; o < w->noccs; o++) {
      const occ *oc = &w->occs[o];
      buf_acc *a = &w->accs[oc->acc];
      for (int d = 0; d < oc->nidx && d < MAX_DIMS; d++) {
        ir_interval iv = ir_bound_of(w->an, oc->idx[d]);
        if (!bounded(iv)) iv = (ir_interval){0, dim_extent(w, a->buf, d) - 1};
        if (iv.min < a->lo[l][d]) a->lo[l][d] = iv.min;
        if (iv.max > a->hi[l][d]) a->hi[l][d] = iv.max;
      }
    }
    for (int i = 0; i < w->naccs; i++) {
      buf_acc *a = &w->accs[i];
      double elems = 1;
      for (int d = 0; d < a->buf->ndim; d++) {
        int64_t full = dim_extent(w, a->buf, d);
        int64_t e = full;
        if (d < MAX_DIMS && a->hi[l][d] >= a->lo[l][d]) {
          e = a->hi[l][d] - a->lo[l][d] + 1;
          if (e > full || e < 1) e = full;
        }
        elems *= (double)e;
      }
      a->fp_elems[l] = elems;
    }
  }
  return KILN_OK;
}

/* The flat index of an access with every loop at its first iteration (loop `bump` at its
 * second), or false when it is not a single known value. */
static bool flat_at(walker *w, const buf_acc *a, const occ *oc, int bump, double *out) {
  if (bind_loops(w, 0, bump) != KILN_OK) return false;
  double flat = 0;
  for (int d = 0; d < oc->nidx; d++) {
    ir_interval iv = ir_bound_of(w->an, oc->idx[d]);
    if (!bounded(iv) || iv.min != iv.max) return false;
    flat += (double)iv.min * (double)dim_stride(w, a->buf, d);
  }
  *out = flat;
  return true;
}

/* The stride (in elements) of buffer access a in its innermost varying loop: for a vector
 * access the distance between lanes, otherwise the change of the flat index when the
 * innermost loop that changes it advances by one; 0 when no loop changes it. */
static double access_stride(walker *w, const buf_acc *a) {
  const occ *oc = &w->occs[a->first];
  if (oc->lanes > 1) {
    if (bind_loops(w, 0, -1) != KILN_OK) return STRIDE_UNKNOWN;
    double s = 0;
    for (int d = 0; d < oc->nidx; d++) {
      if (oc->idx[d]->dtype.lanes <= 1) continue;
      ir_interval iv = ir_bound_of(w->an, oc->idx[d]);
      if (!bounded(iv)) return STRIDE_UNKNOWN;
      s += (double)(iv.max - iv.min) / (oc->lanes - 1) * (double)dim_stride(w, a->buf, d);
    }
    return s;
  }
  double base;
  if (!flat_at(w, a, oc, -1, &base)) return STRIDE_UNKNOWN;
  for (int i = w->nloops - 1; i >= 0; i--) {
    if (w->loops[i].extent < 2) continue;
    double next;
    if (!flat_at(w, a, oc, i, &next)) return STRIDE_UNKNOWN;
    if (next != base) return fabs(next - base);
  }
  return 0;
}

/* Adds value v of per-store entry i with weight wt. */
static void acc_value(walker *w, int i, double v, double wt) {
  switch (ps_agg(i)) {
  case AGG_SUM: w->sum[i] += v; break;
  case AGG_LOG: w->sum[i] += log1p2(v) * wt; break;
  default: w->sum[i] += v * wt; break;
  }
}

/* The features of one store, added to the walker's sums. */
static kiln_status visit_store(walker *w, const ir_store *s) {
  w->naccs = w->noccs = 0;
  memset(w->ops, 0, sizeof w->ops);
  int lanes = s->value->dtype.lanes > 0 ? s->value->dtype.lanes : 1;
  add_access(w, s->buffer, s->nindices, s->indices, lanes, true);
  count_expr(w, s->value);
  for (int i = 0; i < s->nindices; i++) count_expr(w, s->indices[i]);
  w->ops[ST_BYTES] += (double)elem_bytes(s->value->dtype);

  double exec = 1, par = 1;
  bool in_par = false;
  for (int i = 0; i < w->nloops; i++) {
    exec *= (double)w->loops[i].extent;
    if (w->loops[i].f->for_kind == IR_FOR_PARALLEL) {
      par *= (double)w->loops[i].extent;
      in_par = true;
    }
  }
  const loop_rec *inner = w->nloops ? &w->loops[w->nloops - 1] : NULL;
  const loop_rec *inner2 = w->nloops > 1 ? &w->loops[w->nloops - 2] : NULL;

  kiln_status st = footprints(w);
  if (st) return st;

  /* per-store features */
  double v[PS_COUNT];
  memset(v, 0, sizeof v);
  double flops = 0;
  for (int f = ST_FADD; f <= ST_FOTHER; f++) flops += w->ops[f];
  for (int f = ST_FADD; f <= ST_BYTES; f++) v[f] = w->ops[f] * exec;
  v[ST_EXEC] = exec;
  v[ST_STORE_LANES] = lanes;
  v[ST_LOAD_LANES] = w->ops[ST_LOAD_LANES];
  v[ST_VECTORIZED] = lanes > 1 || w->ops[ST_LOAD_LANES] > 1 ||
                     (inner && inner->f->for_kind == IR_FOR_VECTORIZED);
  v[ST_UNROLLED] = inner && inner->f->for_kind == IR_FOR_UNROLLED;
  v[ST_BODY_STORES] = inner ? inner->body_stores : w->top_stores;
  v[ST_DEPTH] = w->nloops;
  v[ST_INNER_EXTENT] = inner ? (double)inner->extent : 0;
  v[ST_INNER2_EXTENT] = inner2 ? (double)inner2->extent : 0;
  v[ST_PARALLEL] = in_par;
  v[ST_PAR_EXTENT] = in_par ? par : 0;
  v[ST_PAR_PER_THREAD] = in_par && w->num_threads > 0 ? par / w->num_threads : 0;
  v[ST_GUARDED] = w->guards > 0;

  /* buffer slots: b0 the stored buffer, then the others by footprint, largest first */
  int order[MAX_BUFS];
  int norder = 0;
  for (int i = 1; i < w->naccs; i++) {
    int k = norder++;
    while (k > 0 && w->accs[order[k - 1]].fp_elems[NLEVELS - 1] *
                            (double)elem_bytes(w->accs[order[k - 1]].buf->h.dtype) <
                        w->accs[i].fp_elems[NLEVELS - 1] *
                            (double)elem_bytes(w->accs[i].buf->h.dtype)) {
      order[k] = order[k - 1];
      k--;
    }
    order[k] = i;
  }
  double all_bytes = 0;
  for (int i = 0; i < w->naccs; i++)
    all_bytes += w->accs[i].fp_elems[NLEVELS - 1] * (double)elem_bytes(w->accs[i].buf->h.dtype);
  v[ST_INTENSITY] = all_bytes > 0 ? flops * exec / all_bytes : 0;
  w->flops += (flops + w->ops[ST_FMA]) * exec; /* an fma is a multiply and an add */

  for (int slot = 0; slot < NSLOTS; slot++) {
    int ai = slot == 0 ? 0 : slot - 1 < norder ? order[slot - 1] : -1;
    if (ai < 0 || ai >= w->naccs) continue;
    buf_acc *a = &w->accs[ai];
    double *sv = &v[ST_COUNT + slot * SL_COUNT];
    double eb = (double)elem_bytes(a->buf->h.dtype);
    double relaxed1 = inner ? (double)inner->extent : 1;
    sv[SL_READ] = a->read;
    sv[SL_WRITE] = a->write;
    sv[SL_LOCAL] = a->buf->scope && strcmp(a->buf->scope, "global") != 0;
    sv[SL_ACCESS_BYTES] = eb * a->lanes;
    sv[SL_FP1] = a->fp_elems[0] * eb;
    sv[SL_FP2] = a->fp_elems[1] * eb;
    sv[SL_FP3] = a->fp_elems[2] * eb;
    sv[SL_FPALL] = a->fp_elems[3] * eb;
    sv[SL_REUSE1] = relaxed1 * a->count * a->lanes / a->fp_elems[0];
    sv[SL_REUSEALL] = exec * a->count * a->lanes / a->fp_elems[3];
    a->stride = access_stride(w, a);
    sv[SL_STRIDE] = a->stride;
    sv[SL_CONTIG] = a->stride == 1;
    sv[SL_INVARIANT] = a->stride == 0;
  }

  for (int i = 0; i < PS_COUNT; i++) acc_value(w, i, v[i], exec);
  w->weight += exec;
  w->fn[FN_STORES] += 1;
  return KILN_OK;
}

static kiln_status walk(walker *w, const ir_stmt *s);

/* Enters a loop: its first value and extent under the enclosing loops' ranges (a constant,
 * or ir_bound_of's bounds), the stores directly in its body, the function-level loop counts. */
static kiln_status walk_for(walker *w, const ir_for *f) {
  if (w->nloops == MAX_LOOPS)
    return ir_fail(w->ctx, f->h.span, KILN_ERR_UNSUPPORTED,
                   "tune_extract_features: function '%s' nests loops deeper than %d (at loop "
                   "'%s')", w->func->name, MAX_LOOPS, f->var->name);
  kiln_status st = bind_loops(w, w->nloops, -1);
  if (st) return st;
  loop_rec *l = &w->loops[w->nloops];
  const ir_int_imm *mk = ir_as_int(f->min);
  ir_interval mi = mk ? (ir_interval){mk->value, mk->value} : ir_bound_of(w->an, f->min);
  l->f = f;
  l->min = mi.min != INT64_MIN ? mi.min : 0;
  l->extent = upper_value(w, f->extent, 1);
  if (l->extent < 0) l->extent = 0;
  l->body_stores = direct_stores(f->body);
  w->fn[FN_LOOPS] += 1;
  if (f->for_kind == IR_FOR_PARALLEL) {
    w->fn[FN_PARALLEL_LOOPS] += 1;
    if ((double)l->extent > w->fn[FN_MAX_PARALLEL_EXTENT])
      w->fn[FN_MAX_PARALLEL_EXTENT] = (double)l->extent;
  }
  w->nloops++;
  st = walk(w, f->body);
  w->nloops--;
  return st;
}

/* Walks a statement of the lowered function. */
static kiln_status walk(walker *w, const ir_stmt *s) {
  if (!s) return KILN_OK;
  kiln_status st = KILN_OK;
  switch ((ir_kind)s->kind) {
  case IR_STORE: return visit_store(w, (const ir_store *)s);
  case IR_FOR: return walk_for(w, (const ir_for *)s);
  case IR_IF: {
    const ir_if *x = (const ir_if *)s;
    w->guards++;
    st = walk(w, x->then_case);
    if (!st) st = walk(w, x->else_case);
    w->guards--;
    return st;
  }
  case IR_SEQ: {
    const ir_seq *q = (const ir_seq *)s;
    for (int i = 0; i < q->nstmts && !st; i++) st = walk(w, q->stmts[i]);
    return st;
  }
  case IR_LET_STMT: {
    const ir_let_stmt *x = (const ir_let_stmt *)s;
    if (w->nlets == MAX_LETS)
      return ir_fail(w->ctx, s->span, KILN_ERR_UNSUPPORTED,
                     "tune_extract_features: function '%s' nests more than %d lets (at '%s')",
                     w->func->name, MAX_LETS, x->var->name);
    w->lets[w->nlets++] = (let_rec){x->var, x->value};
    st = walk(w, x->body);
    w->nlets--;
    return st;
  }
  case IR_ALLOCATE: {
    const ir_allocate *x = (const ir_allocate *)s;
    st = bind_loops(w, w->nloops, -1);
    if (st) return st;
    double bytes = (double)elem_bytes(x->buffer->h.dtype);
    for (int d = 0; d < x->buffer->ndim; d++) bytes *= (double)dim_extent(w, x->buffer, d);
    w->fn[FN_ALLOCS] += 1;
    w->fn[FN_ALLOC_BYTES] += bytes;
    if (bytes > w->fn[FN_ALLOC_MAX_BYTES]) w->fn[FN_ALLOC_MAX_BYTES] = bytes;
    return walk(w, x->body);
  }
  case IR_BLOCK:
  case IR_BLOCK_REALIZE: {
    const ir_block *b = s->kind == IR_BLOCK ? (const ir_block *)s
                                            : ((const ir_block_realize *)s)->block;
    return ir_fail(w->ctx, s->span, KILN_ERR_UNSUPPORTED,
                   "tune_extract_features: function '%s' still has block '%s'; features are "
                   "computed on lowered functions (run ir_lower_func first)",
                   w->func->name, b ? b->name : "?");
  }
  default: /* evaluate */
    return KILN_OK;
  }
}

/* Walks function f and hands the walker's totals to the caller: the feature vector into
 * out (when not NULL) and the float operation count into *flops (when not NULL). */
static kiln_status extract(kiln_context *ctx, const ir_func *f, const tune_feature_options *o,
                           float *out, double *flops) {
  ir_arena *arena = ir_arena_new(ctx);
  ir_analyzer *an = arena ? ir_analyzer_new(arena) : NULL;
  walker *w = an ? ir_malloc(ctx, sizeof *w) : NULL;
  if (!w) {
    ir_analyzer_free(an);
    ir_arena_free(arena);
    return KILN_ERR_NOMEM;
  }
  memset(w, 0, sizeof *w);
  w->ctx = ctx;
  w->func = f;
  w->an = an;
  w->num_threads = o ? o->num_threads : 0;
  w->top_stores = direct_stores(f->body);
  kiln_status st = walk(w, f->body);
  if (!st && flops) *flops = w->flops;
  if (!st && out) {
    for (int i = 0; i < FN_COUNT; i++) out[i] = (float)log1p2(w->fn[i]);
    for (int i = 0; i < PS_COUNT; i++) {
      double v = ps_agg(i) == AGG_SUM ? log1p2(w->sum[i])
                 : w->weight > 0      ? w->sum[i] / w->weight
                                      : 0;
      out[FN_COUNT + i] = (float)v;
    }
  }
  ir_free(ctx, w, sizeof *w);
  ir_analyzer_free(an);
  ir_arena_free(arena);
  return st;
}

kiln_status tune_extract_features_opt(kiln_context *ctx, const ir_func *f,
                                      const tune_feature_options *o, float *out) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!f || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune_extract_features: %s is NULL", !out ? "the output" : "the function");
  if (f->h.kind != IR_FUNC)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune_extract_features: a %s node is not a function", ir_kind_name(f->h.kind));
  return extract(ctx, f, o, out, NULL);
}

kiln_status tune_count_flops(kiln_context *ctx, const ir_func *f, double *flops) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!f || !flops)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune_count_flops: %s is NULL",
                   !flops ? "the output" : "the function");
  if (f->h.kind != IR_FUNC)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune_count_flops: a %s node is not a function", ir_kind_name(f->h.kind));
  *flops = 0;
  return extract(ctx, f, NULL, NULL, flops);
}

kiln_status tune_extract_features(kiln_context *ctx, const ir_func *f, float *out) {
  return tune_extract_features_opt(ctx, f, NULL, out);
}

/* ======================================================================================
 * Part 2: the cost model (XGBoost)
 * ====================================================================================== */

struct tune_cost_model {
  kiln_context *ctx;
  BoosterHandle booster; /* NULL until trained or loaded */
};

enum { BOOST_ROUNDS = 60 };

/* Training parameters: squared error on normalized throughput, exact (deterministic) tree
 * construction on one thread with a fixed seed. */
static const char *const boost_params[][2] = {
    {"objective", "reg:squarederror"},
    {"max_depth", "6"},
    {"eta", "0.2"},
    {"min_child_weight", "1"},
    {"subsample", "1"},
    {"tree_method", "exact"},
    {"seed", "0"},
    {"nthread", "1"},
    {"verbosity", "0"},
};

/* Records an XGBoost failure with the library's own message. */
static kiln_status xgb_fail(kiln_context *ctx, kiln_status code, const char *what) {
  const char *msg = XGBGetLastError();
  return ir_fail(ctx, IR_NO_SPAN, code, "cost model: XGBoost %s failed: %s", what,
                 msg && *msg ? msg : "(no message)");
}

kiln_status tune_cost_model_new(kiln_context *ctx, tune_cost_model **out) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!out) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune_cost_model_new: out is NULL");
  *out = NULL;
  tune_cost_model *m = ir_malloc(ctx, sizeof *m);
  if (!m) return KILN_ERR_NOMEM;
  m->ctx = ctx;
  m->booster = NULL;
  *out = m;
  return KILN_OK;
}

void tune_cost_model_free(tune_cost_model *m) {
  if (!m) return;
  if (m->booster) XGBoosterFree(m->booster);
  ir_free(m->ctx, m, sizeof *m);
}

bool tune_cost_model_trained(const tune_cost_model *m) { return m && m->booster; }

/* Checks the common arguments of train / predict. */
static kiln_status check_samples(tune_cost_model *m, const char *fn, int n, const float *x,
                                 const void *y) {
  if (!m) return KILN_ERR_MISUSE;
  if (n < 1)
    return ir_fail(m->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "%s: n = %d; need at least one sample",
                   fn, n);
  if (!x || !y)
    return ir_fail(m->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "%s: the %s array is NULL", fn,
                   !x ? "features" : "targets/scores");
  return KILN_OK;
}

/* A DMatrix over n rows of features (copied by XGBoost). */
static kiln_status make_dmatrix(kiln_context *ctx, int n, const float *x, DMatrixHandle *out) {
  if (XGDMatrixCreateFromMat(x, (bst_ulong)n, (bst_ulong)FEATURE_COUNT, NAN, out) != 0)
    return xgb_fail(ctx, KILN_ERR_INTERNAL, "XGDMatrixCreateFromMat");
  return KILN_OK;
}

kiln_status tune_cost_model_train(tune_cost_model *m, int n, const float *x, const double *y) {
  kiln_status st = check_samples(m, "tune_cost_model_train", n, x, y);
  if (st) return st;
  double best = 0;
  for (int i = 0; i < n; i++) {
    if (!isfinite(y[i]) || y[i] < 0)
      return ir_fail(m->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                     "tune_cost_model_train: throughput %d is %g; throughputs must be finite "
                     "and >= 0", i, y[i]);
    if (y[i] > best) best = y[i];
  }
  float *labels = ir_malloc(m->ctx, sizeof *labels * (size_t)n);
  if (!labels) return KILN_ERR_NOMEM;
  for (int i = 0; i < n; i++) labels[i] = best > 0 ? (float)(y[i] / best) : 0.0f;

  DMatrixHandle dm = NULL;
  BoosterHandle b = NULL;
  st = make_dmatrix(m->ctx, n, x, &dm);
  if (!st && XGDMatrixSetFloatInfo(dm, "label", labels, (bst_ulong)n) != 0)
    st = xgb_fail(m->ctx, KILN_ERR_INTERNAL, "XGDMatrixSetFloatInfo");
  if (!st && XGBoosterCreate(&dm, 1, &b) != 0)
    st = xgb_fail(m->ctx, KILN_ERR_INTERNAL, "XGBoosterCreate");
  for (size_t i = 0; !st && i < sizeof boost_params / sizeof boost_params[0]; i++)
    if (XGBoosterSetParam(b, boost_params[i][0], boost_params[i][1]) != 0)
      st = xgb_fail(m->ctx, KILN_ERR_INTERNAL, "XGBoosterSetParam");
  for (int it = 0; !st && it < BOOST_ROUNDS; it++)
    if (XGBoosterUpdateOneIter(b, it, dm) != 0)
      st = xgb_fail(m->ctx, KILN_ERR_INTERNAL, "XGBoosterUpdateOneIter");
  if (dm) XGDMatrixFree(dm);
  ir_free(m->ctx, labels, sizeof *labels * (size_t)n);
  if (st) {
    if (b) XGBoosterFree(b);
    return st;
  }
  if (m->booster) XGBoosterFree(m->booster);
  m->booster = b;
  return KILN_OK;
}

kiln_status tune_cost_model_predict(tune_cost_model *m, int n, const float *x, double *scores) {
  kiln_status st = check_samples(m, "tune_cost_model_predict", n, x, scores);
  if (st) return st;
  if (!m->booster) {
    for (int i = 0; i < n; i++) scores[i] = 0;
    return KILN_OK;
  }
  DMatrixHandle dm = NULL;
  st = make_dmatrix(m->ctx, n, x, &dm);
  if (st) return st;
  bst_ulong len = 0;
  const float *res = NULL;
  if (XGBoosterPredict(m->booster, dm, 0, 0, 0, &len, &res) != 0)
    st = xgb_fail(m->ctx, KILN_ERR_INTERNAL, "XGBoosterPredict");
  else if (len != (bst_ulong)n)
    st = ir_fail(m->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL,
                 "cost model: XGBoost returned %llu predictions for %d samples",
                 (unsigned long long)len, n);
  else
    for (int i = 0; i < n; i++) scores[i] = res[i];
  XGDMatrixFree(dm);
  return st;
}

kiln_status tune_cost_model_save(tune_cost_model *m, void **buf, size_t *len) {
  if (!m) return KILN_ERR_MISUSE;
  if (!buf || !len)
    return ir_fail(m->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune_cost_model_save: out is NULL");
  *buf = NULL;
  *len = 0;
  if (!m->booster)
    return ir_fail(m->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "tune_cost_model_save: the model is not trained");
  bst_ulong n = 0;
  const char *data = NULL;
  if (XGBoosterSaveModelToBuffer(m->booster, "{\"format\": \"ubj\"}", &n, &data) != 0)
    return xgb_fail(m->ctx, KILN_ERR_INTERNAL, "XGBoosterSaveModelToBuffer");
  void *copy = ir_malloc(m->ctx, n ? (size_t)n : 1);
  if (!copy) return KILN_ERR_NOMEM;
  memcpy(copy, data, (size_t)n);
  *buf = copy;
  *len = (size_t)n;
  return KILN_OK;
}

kiln_status tune_cost_model_load(tune_cost_model *m, const void *buf, size_t len) {
  if (!m) return KILN_ERR_MISUSE;
  if (!buf || len == 0)
    return ir_fail(m->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune_cost_model_load: no bytes given");
  BoosterHandle b = NULL;
  if (XGBoosterCreate(NULL, 0, &b) != 0)
    return xgb_fail(m->ctx, KILN_ERR_INTERNAL, "XGBoosterCreate");
  kiln_status st = KILN_OK;
  bst_ulong nf = 0;
  if (XGBoosterLoadModelFromBuffer(b, buf, (bst_ulong)len) != 0)
    st = xgb_fail(m->ctx, KILN_ERR_CORRUPT, "XGBoosterLoadModelFromBuffer");
  else if (XGBoosterGetNumFeature(b, &nf) != 0)
    st = xgb_fail(m->ctx, KILN_ERR_CORRUPT, "XGBoosterGetNumFeature");
  else if (nf != (bst_ulong)FEATURE_COUNT)
    st = ir_fail(m->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT,
                 "tune_cost_model_load: the saved model expects %llu features; this build has "
                 "%d", (unsigned long long)nf, FEATURE_COUNT);
  /* nthread and verbosity are not saved with the model */
  if (!st && (XGBoosterSetParam(b, "nthread", "1") != 0 ||
              XGBoosterSetParam(b, "verbosity", "0") != 0))
    st = xgb_fail(m->ctx, KILN_ERR_INTERNAL, "XGBoosterSetParam");
  if (st) {
    XGBoosterFree(b);
    return st;
  }
  if (m->booster) XGBoosterFree(m->booster);
  m->booster = b;
  return KILN_OK;
}

/* compute_at.c: the compute-location primitives of the schedule: compute_inline and
 * reverse_compute_inline (fold a producer into its consumers, or a consumer into its
 * producer), compute_at and reverse_compute_at (move a block under a loop of its consumer or
 * producer, with a fresh loop nest covering exactly the region needed per iteration), and
 * sample_compute_location, which picks among root, inline and the legal loops. Region sizes
 * come from bound analysis (ir/arith.h); changed blocks get their regions re-detected
 * (ir/region.h). */
#include <stdio.h>
#include <string.h>

#include "ir/region.h"
#include "schedule/schedule.h"

/* ---- Small helpers ----------------------------------------------------------------- */

/* The status to return after a constructor gave NULL (the error it recorded). */
static kiln_status built_err(sch_schedule *s) {
  kiln_status c = kiln_context_errcode(s->ctx);
  return c ? c : KILN_ERR_NOMEM;
}

static ir_expr *cst(sch_schedule *s, kiln_dtype t, int64_t v) { return ir_int(s->arena, t, v); }

/* e converted to t (a cast only when the types differ). */
static ir_expr *to_type(sch_schedule *s, ir_expr *e, kiln_dtype t) {
  if (!e) return NULL;
  return ir_dt_eq(e->dtype, t) ? e : ir_cast_new(s->arena, t, e);
}

static bool const_of(const ir_expr *e, int64_t *v) {
  const ir_int_imm *c = ir_as_int(e);
  if (c) *v = c->value;
  return c != NULL;
}

/* Intervals far from the int64 limits, so sums of a few of them cannot overflow. */
enum { BIG_SHIFT = 60 };
static bool finite(ir_interval r) {
  const int64_t big = (int64_t)1 << BIG_SHIFT;
  return r.min > -big && r.max < big && r.min <= r.max;
}

/* Whether dimension d of b has extent 1 (a broadcast dimension: lowered code indexes it
 * with the constant 0). */
static bool unit_dim(const ir_buffer *b, int d) {
  int64_t e;
  return d < b->ndim && const_of(b->shape[d], &e) && e == 1;
}

static bool is_param_buffer(const ir_func *f, const ir_buffer *b) {
  for (int i = 0; i < f->nparams; i++)
    if (f->params[i] == &b->h) return true;
  return false;
}

static const ir_region *region_of(int n, ir_region *const *rs, const ir_buffer *b) {
  for (int i = 0; i < n; i++)
    if (rs[i]->buffer == b) return rs[i];
  return NULL;
}

/* The position of an iterator variable among the block's iterators, or -1. */
static int iter_index(const ir_block *blk, const ir_expr *e) {
  const ir_var *v = ir_as_var(e);
  if (!v) return -1;
  for (int i = 0; i < blk->niters; i++)
    if (blk->iters[i]->var == v) return i;
  return -1;
}

/* Whether `anc` is on the path from the function body to `node`. */
static kiln_status is_under(sch_schedule *s, const ir_stmt *anc, const ir_stmt *node,
                            bool *out) {
  int n;
  ir_stmt **path;
  kiln_status st = sch_path_to(s, node, &n, &path);
  if (st) return st;
  *out = false;
  for (int i = 0; i < n - 1; i++)
    if (path[i] == anc) *out = true;
  return KILN_OK;
}

/* The position of r in the list, or -1. */
static int position(int n, ir_block_realize *const *list, const ir_block_realize *r) {
  for (int i = 0; i < n; i++)
    if (list[i] == r) return i;
  return -1;
}

typedef struct loop_find {
  const ir_var *var;
  ir_for *found;
} loop_find;

static bool loop_find_fn(ir_node *n, void *ud) {
  loop_find *lf = ud;
  if (lf->found || !ir_is_stmt(n)) return false;
  if (n->kind == IR_FOR && ((ir_for *)n)->var == lf->var) lf->found = (ir_for *)n;
  return !lf->found;
}

/* The loop of variable v in the current function (NULL if gone). */
static ir_for *find_loop(sch_schedule *s, const ir_var *v) {
  loop_find lf = {v, NULL};
  ir_visit(s->func->body, false, loop_find_fn, &lf);
  return lf.found;
}

/* Whether the block (any of its regions) touches buffer b. */
static bool block_reads(const ir_block *blk, const ir_buffer *b) {
  return region_of(blk->nreads, blk->reads, b) != NULL;
}
static bool block_writes(const ir_block *blk, const ir_buffer *b) {
  return region_of(blk->nwrites, blk->writes, b) != NULL;
}

/* ---- Buffer uses and the root allocation -------------------------------------------- */

typedef struct use_probe {
  const ir_buffer *b;
  bool used;
} use_probe;

static bool use_fn(ir_node *n, void *ud) {
  use_probe *p = ud;
  if (p->used) return false;
  if ((n->kind == IR_LOAD && ((ir_load *)n)->buffer == p->b) ||
      (n->kind == IR_STORE && ((ir_store *)n)->buffer == p->b) ||
      (n->kind == IR_REGION && ((ir_region *)n)->buffer == p->b))
    p->used = true;
  return !p->used;
}

typedef struct drop_alloc {
  const ir_buffer *b;
} drop_alloc;

static ir_node *drop_alloc_visit(ir_mutator *m, ir_node *n) {
  drop_alloc *d = m->ud;
  if (n->kind != IR_BLOCK) return ir_is_stmt(n) ? ir_mutate_children(m, n) : n;
  ir_block *blk = (ir_block *)ir_mutate_children(m, n);
  if (!blk) return NULL;
  int at = -1;
  for (int i = 0; i < blk->nallocs; i++)
    if (blk->allocs[i] == d->b) at = i;
  if (at < 0) return &blk->h;
  ir_buffer **rest = blk->nallocs > 1
                         ? ir_arena_alloc(m->arena, sizeof *rest * (size_t)(blk->nallocs - 1))
                         : NULL;
  if (blk->nallocs > 1 && !rest) return NULL;
  int k = 0;
  for (int i = 0; i < blk->nallocs; i++)
    if (i != at) rest[k++] = blk->allocs[i];
  ir_block *nb = ir_block_new(m->arena, blk->name, blk->niters, blk->iters, blk->nreads,
                              blk->reads, blk->nwrites, blk->writes, k, rest, blk->nannots,
                              blk->annots, blk->init, blk->body);
  return nb ? &nb->h : NULL;
}

/* Removes buffer b from the allocations of the block holding it when nothing in the
 * function touches b any more (an inlined intermediate). */
static kiln_status drop_unused_alloc(sch_schedule *s, const ir_buffer *b) {
  use_probe p = {b, false};
  ir_visit(s->func->body, false, use_fn, &p);
  if (p.used) return KILN_OK;
  drop_alloc d = {b};
  ir_mutator m = {.arena = s->arena, .visit = drop_alloc_visit, .ud = &d};
  ir_node *body = ir_mutate(&m, s->func->body);
  if (!body) return built_err(s);
  if (body == s->func->body) return KILN_OK;
  ir_func *f = s->func;
  ir_func *nf = ir_func_new(s->arena, f->name, f->nparams, f->params, f->nattrs, f->attrs, body);
  if (!nf) return built_err(s);
  s->func = nf;
  return KILN_OK;
}

/* ---- Needed regions ------------------------------------------------------------------ */

/* What some blocks access of one buffer dimension during one iteration of a loop L: base
 * (an expression of L and the loops around it) plus a constant interval [lo, hi]. known is
 * false when bound analysis could not bound it (symbolic shapes): then the whole domain is
 * needed. any is false until some access was seen. */
typedef struct dim_need {
  bool any, known;
  ir_expr *base;
  int64_t lo, hi;
} dim_need;

/* Declares the range of every loop in loops[0..n) to the analyzer (outermost first, so that
 * a loop whose bounds depend on outer loops gets a sound range). Loops whose range cannot be
 * bounded are left unknown. */
static kiln_status bind_loops(ir_analyzer *an, int n, ir_for *const *loops) {
  for (int i = 0; i < n; i++) {
    ir_interval lo = ir_bound_of(an, loops[i]->min), ext = ir_bound_of(an, loops[i]->extent);
    if (!finite(lo) || !finite(ext) || ext.max < 1) continue;
    ir_interval range = {lo.min, lo.max + ext.max - 1};
    kiln_status st = ir_analyzer_bind(an, loops[i]->var, range);
    if (st) return st;
  }
  return KILN_OK;
}

/* Adds one region dimension (min, extent over the block's iterators) of realize r to *d.
 * inner[0..ninner) are the loops between L and r (outermost first): they are relaxed over
 * their ranges; the loops from L outwards stay symbolic in the base. */
static kiln_status add_dim(sch_schedule *s, ir_analyzer *an, const ir_block_realize *r,
                           const ir_range *range, int ninner, ir_for *const *inner,
                           dim_need *d) {
  const ir_block *blk = r->block;
  ir_arena *a = s->arena;
  ir_var *vars[SCH_MAX_INST_ARGS];
  int nv = blk->niters < SCH_MAX_INST_ARGS ? blk->niters : SCH_MAX_INST_ARGS;
  for (int i = 0; i < nv; i++) vars[i] = blk->iters[i]->var;
  /* First and last index of the range, in terms of the loops. */
  ir_expr *first = range->min;
  ir_expr *last = ir_sub(a, ir_add(a, range->min, to_type(s, range->extent, range->min->dtype)),
                         cst(s, range->min->dtype, 1));
  if (!last) return built_err(s);
  first = (ir_expr *)ir_substitute(a, first, nv, vars, r->values);
  last = (ir_expr *)ir_substitute(a, last, nv, vars, r->values);
  if (!first || !last) return built_err(s);
  if (!(first = ir_simplify_expr(an, first)) || !(last = ir_simplify_expr(an, last)))
    return built_err(s);
  /* The base: the first index with the inner loops at their start (innermost first, so that
   * an inner loop's min in terms of an outer inner loop is resolved too). */
  ir_expr *base = first;
  for (int i = ninner - 1; i >= 0 && base; i--) {
    ir_expr *start = to_type(s, inner[i]->min, inner[i]->var->h.dtype);
    base = start ? (ir_expr *)ir_substitute(a, base, 1, &inner[i]->var, &start) : NULL;
  }
  if (!base || !(base = ir_simplify_expr(an, base))) return built_err(s);
  ir_expr *dl = ir_simplify_expr(an, ir_sub(a, first, base));
  ir_expr *dh = ir_simplify_expr(an, ir_sub(a, last, base));
  if (!dl || !dh) return built_err(s);
  ir_interval bl = ir_bound_of(an, dl), bh = ir_bound_of(an, dh);
  if (!finite(bl) || !finite(bh)) {
    d->any = true;
    d->known = false;
    return KILN_OK;
  }
  if (!d->any) {
    *d = (dim_need){true, true, base, bl.min, bh.max};
    return KILN_OK;
  }
  if (!d->known) return KILN_OK;
  /* Union with what is there: base' + [lo', hi'] lies in d->base + c + [lo', hi'] where c
   * bounds base' - d->base. */
  ir_expr *diff = ir_simplify_expr(an, ir_sub(a, base, to_type(s, d->base, base->dtype)));
  if (!diff) return built_err(s);
  ir_interval c = ir_bound_of(an, diff);
  if (!finite(c)) {
    d->known = false;
    return KILN_OK;
  }
  int64_t lo = c.min + bl.min, hi = c.max + bh.max;
  if (lo < d->lo) d->lo = lo;
  if (hi > d->hi) d->hi = hi;
  return KILN_OK;
}

/* The region of buffer b that the realizes rs[0..nr) (all under loop L, in L's scope) read
 * (writes = false) or write during one iteration of L, one dim_need per dimension of b.
 * The ranges of all loops involved are declared to an. */
static kiln_status needed_region(sch_schedule *s, ir_analyzer *an, const ir_for *L, int nr,
                                 ir_block_realize *const *rs, const ir_buffer *b, bool writes,
                                 dim_need *dims) {
  for (int d = 0; d < b->ndim; d++) dims[d] = (dim_need){false, false, NULL, 0, 0};
  for (int i = 0; i < nr; i++) {
    const ir_block *blk = rs[i]->block;
    const ir_region *reg =
        writes ? region_of(blk->nwrites, blk->writes, b) : region_of(blk->nreads, blk->reads, b);
    if (!reg) continue;
    int nl;
    ir_for **loops;
    kiln_status st = sch_loops_around(s, &rs[i]->h, &nl, &loops);
    if (st) return st;
    int at = -1;
    for (int k = 0; k < nl; k++)
      if (loops[k] == L) at = k;
    if (at < 0)
      return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL,
                     "schedule: block '%s' is not under loop '%s'", blk->name, L->var->name);
    if ((st = bind_loops(an, nl, loops))) return st;
    if (blk->niters > SCH_MAX_INST_ARGS)
      return sch_fail(s, "compute_at", "block '%s' has %d iterators (at most %d)", blk->name,
                      blk->niters, SCH_MAX_INST_ARGS);
    for (int d = 0; d < reg->nranges && d < b->ndim; d++)
      if ((st = add_dim(s, an, rs[i], reg->ranges[d], nl - at - 1, loops + at + 1, &dims[d])))
        return st;
  }
  return KILN_OK;
}

/* ---- The new loop nest of a moved block ---------------------------------------------- */

/* Builds the loops and realize that run block `old->block` over the part of its domain
 * described by need[k] (one per iterator; need[k].any false: the whole domain): one fresh
 * loop per iterator in iterator order (extent-1 loops dropped unless preserve), bindings
 * start + loop variable, and a predicate where the needed part may leave the domain. When
 * the needed part covers the domain, or is a constant range, it is clipped to the domain. */
static kiln_status build_nest(sch_schedule *s, ir_analyzer *an, const ir_block_realize *old,
                              const dim_need *need, bool preserve, ir_stmt **out) {
  ir_arena *a = s->arena;
  ir_block *blk = old->block;
  int n = blk->niters;
  ir_expr **values = n ? ir_arena_alloc(a, sizeof *values * (size_t)n) : NULL;
  ir_var **vars = n ? ir_arena_alloc(a, sizeof *vars * (size_t)n) : NULL;
  ir_expr **extents = n ? ir_arena_alloc(a, sizeof *extents * (size_t)n) : NULL;
  if (n && (!values || !vars || !extents)) return built_err(s);
  ir_expr *pred = NULL;
  int nloops = 0;
  for (int k = 0; k < n; k++) {
    const ir_iter_var *it = blk->iters[k];
    kiln_dtype t = it->var->h.dtype;
    ir_expr *dmin = ir_simplify_expr(an, it->min), *dext = ir_simplify_expr(an, it->extent);
    if (!dmin || !dext) return built_err(s);
    ir_expr *start = dmin, *ext = dext;
    bool guard_lo = false, guard_hi = false;
    const dim_need *d = &need[k];
    if (d->any && d->known) {
      int64_t e = d->hi - d->lo + 1, dm, de, sc;
      ir_expr *st = ir_simplify_expr(an, ir_add(a, to_type(s, d->base, t), cst(s, t, d->lo)));
      if (!st) return built_err(s);
      bool dconst = const_of(dmin, &dm) && const_of(dext, &de);
      /* A constant needed range intersected with the domain [dm, dm + de). */
      bool cconst = dconst && const_of(st, &sc);
      int64_t clo = cconst && sc < dm ? dm : sc;
      int64_t chi = cconst && sc + e > dm + de ? dm + de : sc + e;
      if (dconst && e >= de) {
        /* the needed part is as wide as the domain: run the domain */
      } else if (cconst && clo < chi) {
        start = cst(s, t, clo);
        ext = cst(s, t, chi - clo);
      } else {
        /* start + [0, e): guard the sides that may leave the domain */
        start = st;
        ext = cst(s, t, e);
        ir_expr *end = ir_add(a, to_type(s, dmin, t), to_type(s, dext, t));
        ir_expr *below = ir_simplify_expr(an, ir_sub(a, st, to_type(s, dmin, t)));
        ir_expr *above = ir_simplify_expr(an, ir_sub(a, ir_add(a, st, cst(s, t, e)), end));
        if (!below || !above) return built_err(s);
        ir_interval bb = ir_bound_of(an, below), ba = ir_bound_of(an, above);
        guard_lo = !(bb.min != INT64_MIN && bb.min >= 0);
        guard_hi = !(ba.max != INT64_MAX && ba.max <= 0);
      }
    }
    int64_t ec;
    ir_expr *value;
    if (!preserve && const_of(ext, &ec) && ec == 1) {
      value = to_type(s, start, t);
    } else {
      char name[32];
      snprintf(name, sizeof name, "ax%d", nloops);
      ir_var *v = ir_var_new(a, name, t);
      if (!v) return built_err(s);
      vars[nloops] = v;
      extents[nloops] = to_type(s, ext, t);
      nloops++;
      int64_t sc;
      value = const_of(start, &sc) && sc == 0 ? &v->h : ir_add(a, to_type(s, start, t), &v->h);
    }
    if (!value) return built_err(s);
    values[k] = value;
    if (guard_lo) {
      ir_expr *c = ir_binop(a, IR_GE, value, to_type(s, dmin, t));
      pred = pred ? ir_binop(a, IR_AND, pred, c) : c;
    }
    if (guard_hi) {
      ir_expr *c = ir_binop(a, IR_LT, value, ir_add(a, to_type(s, dmin, t), to_type(s, dext, t)));
      pred = pred ? ir_binop(a, IR_AND, pred, c) : c;
    }
    if ((guard_lo || guard_hi) && !pred) return built_err(s);
  }
  for (int k = 0; k < n; k++)
    if (!(values[k] = ir_simplify_expr(an, values[k]))) return built_err(s);
  if (pred && !(pred = ir_simplify_expr(an, pred))) return built_err(s);
  ir_stmt *body = ir_block_realize_new(a, n, values, pred, blk);
  for (int i = nloops - 1; i >= 0 && body; i--)
    body = ir_for_new(a, vars[i], cst(s, vars[i]->h.dtype, 0), extents[i], IR_FOR_SERIAL, 0,
                      NULL, body);
  if (!body) return built_err(s);
  *out = body;
  return KILN_OK;
}

/* Removes realize r from where it is and puts nest at the start (or end) of the body of the
 * loop whose variable is lv. Leaves s->func rebuilt. */
static kiln_status move_under(sch_schedule *s, const ir_block_realize *r, const ir_var *lv,
                              ir_stmt *nest, bool at_end) {
  kiln_status st = sch_replace(s, &r->h, NULL);
  if (st) return st;
  ir_for *L = find_loop(s, lv);
  if (!L)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "schedule: loop '%s' vanished",
                   lv->name);
  ir_seq *sq = L->body->kind == IR_SEQ ? (ir_seq *)L->body : NULL;
  int nold = sq ? sq->nstmts : 1;
  ir_stmt **stmts = ir_arena_alloc(s->arena, sizeof *stmts * (size_t)(nold + 1));
  if (!stmts) return built_err(s);
  int k = 0;
  if (!at_end) stmts[k++] = nest;
  for (int i = 0; i < nold; i++) stmts[k++] = sq ? sq->stmts[i] : L->body;
  if (at_end) stmts[k++] = nest;
  ir_stmt *body = ir_seq_new(s->arena, k, stmts);
  ir_stmt *nl = body ? ir_for_new(s->arena, L->var, L->min, L->extent, L->for_kind, L->nannots,
                                  L->annots, body)
                     : NULL;
  if (!nl) return built_err(s);
  return sch_replace(s, &L->h, nl);
}

/* ---- compute_inline ------------------------------------------------------------------ */

/* Checks that blk is a complete spatial block with one store B[v...] = value whose indices
 * are exactly its iterators (each once); gives the store. */
static kiln_status check_spatial_store(sch_schedule *s, const char *prim, const ir_block *blk,
                                       ir_store **out) {
  for (int i = 0; i < blk->niters; i++)
    if (blk->iters[i]->iter_type == IR_ITER_REDUCE)
      return sch_fail(s, prim, "block '%s' is a reduction (iterator '%s' is a reduce "
                      "iterator)", blk->name, blk->iters[i]->var->name);
  if (blk->init) return sch_fail(s, prim, "block '%s' has an init", blk->name);
  if (blk->nwrites != 1)
    return sch_fail(s, prim, "block '%s' writes %d buffers (exactly one is needed)", blk->name,
                    blk->nwrites);
  ir_store *store = ir_as_store(blk->body);
  if (!store || store->buffer != blk->writes[0]->buffer)
    return sch_fail(s, prim, "the body of block '%s' is not a single store to buffer '%s'",
                    blk->name, blk->writes[0]->buffer->name);
  *out = store;
  return KILN_OK;
}

/* Whether the indices are exactly the block's iterators, each once. */
static bool indices_are_iters(const ir_block *blk, int n, ir_expr *const *idx) {
  if (n != blk->niters) return false;
  uint64_t seen[(SCH_MAX_INST_ARGS + 63) / 64] = {0};
  for (int i = 0; i < n; i++) {
    int k = iter_index(blk, idx[i]);
    if (k < 0 || k >= SCH_MAX_INST_ARGS || (seen[k / 64] >> (k % 64) & 1)) return false;
    seen[k / 64] |= (uint64_t)1 << (k % 64);
  }
  return true;
}

typedef struct load_probe {
  const ir_buffer *b; /* count loads of b (NULL: none) */
  int loads;
  bool has_let;
} load_probe;

static bool load_probe_fn(ir_node *n, void *ud) {
  load_probe *p = ud;
  if (n->kind == IR_LOAD && ((ir_load *)n)->buffer == p->b) p->loads++;
  if (n->kind == IR_LET) p->has_let = true;
  return true;
}

/* The rewrite of compute_inline: every load of B becomes the producer's value with its
 * iterators replaced by the load's indices; blocks that held such a load directly get their
 * regions re-detected. */
typedef struct inliner {
  const ir_buffer *b;
  const ir_block *producer;
  ir_expr *value;
  bool direct; /* a load of b was replaced in the innermost block being rebuilt */
} inliner;

static ir_node *inline_visit(ir_mutator *m, ir_node *n) {
  inliner *in = m->ud;
  if (n->kind == IR_BLOCK) {
    bool outer = in->direct;
    in->direct = false;
    ir_node *r = ir_mutate_children(m, n);
    /* Re-detect where a load was replaced, and in enclosing blocks that changed and still
     * declare b (a nested block's regions count for them). */
    const ir_block *rb = (const ir_block *)r;
    if (r && (in->direct || (r != n && (block_reads(rb, in->b) || block_writes(rb, in->b))))) {
      ir_block *nb = ir_block_with_detected_regions(m->arena, (ir_block *)r);
      r = nb ? &nb->h : NULL;
    }
    in->direct = outer;
    return r;
  }
  if (n->kind == IR_LOAD && ((ir_load *)n)->buffer == in->b) {
    ir_load *ld = (ir_load *)ir_mutate_children(m, n);
    if (!ld) return NULL;
    const ir_block *p = in->producer;
    ir_var *vars[SCH_MAX_INST_ARGS];
    ir_expr *vals[SCH_MAX_INST_ARGS];
    /* The store's indices are the iterators (checked): index i feeds the iterator it names. */
    ir_store *store = (ir_store *)p->body;
    for (int i = 0; i < ld->nindices; i++) {
      vars[i] = ir_as_var(store->indices[i]);
      vals[i] = ld->indices[i];
      if (!ir_dt_eq(vals[i]->dtype, vars[i]->h.dtype))
        vals[i] = ir_cast_new(m->arena, vars[i]->h.dtype, vals[i]);
      if (!vals[i]) return NULL;
    }
    in->direct = true;
    return ir_substitute(m->arena, in->value, ld->nindices, vars, vals);
  }
  return ir_mutate_children(m, n);
}

/* Rebuilds the function with the loads of b replaced (see inliner). */
static kiln_status inline_loads(sch_schedule *s, inliner *in) {
  ir_mutator m = {.arena = s->arena, .visit = inline_visit, .ud = in};
  ir_node *body = ir_mutate(&m, s->func->body);
  if (!body) return built_err(s);
  ir_func *f = s->func;
  ir_func *nf = ir_func_new(s->arena, f->name, f->nparams, f->params, f->nattrs, f->attrs, body);
  if (!nf) return built_err(s);
  s->func = nf;
  return KILN_OK;
}

/* compute_inline on realize r; with commit false only the preconditions are checked (and
 * s->func is left as it was either way on failure). */
static kiln_status do_compute_inline(sch_schedule *s, const char *prim, ir_block_realize *r,
                                     bool commit) {
  const ir_block *blk = r->block;
  ir_store *store;
  kiln_status st = check_spatial_store(s, prim, blk, &store);
  if (st) return st;
  ir_buffer *b = store->buffer;
  if (is_param_buffer(s->func, b))
    return sch_fail(s, prim, "block '%s' writes output buffer '%s'", blk->name, b->name);
  if (!indices_are_iters(blk, store->nindices, store->indices))
    return sch_fail(s, prim, "block '%s' stores to buffer '%s' at indices that are not "
                    "exactly its iterators", blk->name, b->name);
  load_probe lp = {b, 0, false};
  ir_visit(store->value, false, load_probe_fn, &lp);
  if (lp.loads)
    return sch_fail(s, prim, "block '%s' reads buffer '%s' that it writes", blk->name, b->name);
  if (lp.has_let)
    return sch_fail(s, prim, "the value of block '%s' binds a let variable (inlining would "
                    "define it more than once)", blk->name);
  ir_block_realize *scope;
  if ((st = sch_scope_of(s, &r->h, &scope))) return st;
  int nw;
  ir_block_realize **ws;
  if ((st = sch_writers_of(s, scope, b, &nw, &ws))) return st;
  for (int i = 0; i < nw; i++)
    if (ws[i] != r)
      return sch_fail(s, prim, "buffer '%s' written by block '%s' is also written by block "
                      "'%s'", b->name, blk->name, ws[i]->block->name);
  ir_func *old = s->func;
  if ((st = sch_replace(s, &r->h, NULL))) return st;
  inliner in = {b, blk, store->value, false};
  if (!(st = inline_loads(s, &in))) st = drop_unused_alloc(s, b);
  if (st || !commit) s->func = old;
  return st;
}

/* ---- reverse_compute_inline ---------------------------------------------------------- */

typedef struct buf_list {
  int n;
  ir_buffer *items[SCH_MAX_INST_ARGS];
  bool full;
} buf_list;

static bool collect_loaded(ir_node *n, void *ud) {
  buf_list *l = ud;
  if (n->kind != IR_LOAD) return true;
  ir_buffer *b = ((ir_load *)n)->buffer;
  for (int i = 0; i < l->n; i++)
    if (l->items[i] == b) return true;
  if (l->n < SCH_MAX_INST_ARGS) l->items[l->n++] = b;
  else l->full = true;
  return true;
}

/* Replaces loads of one buffer by an expression (the producer's value). */
typedef struct load_swap {
  const ir_buffer *b;
  ir_expr *value;
} load_swap;

static ir_node *load_swap_visit(ir_mutator *m, ir_node *n) {
  load_swap *w = m->ud;
  if (n->kind == IR_LOAD && ((ir_load *)n)->buffer == w->b) return w->value;
  return ir_mutate_children(m, n);
}

typedef struct load_find {
  const ir_buffer *b;
  ir_load *found;
} load_find;

static bool load_find_fn(ir_node *n, void *ud) {
  load_find *lf = ud;
  if (!lf->found && n->kind == IR_LOAD && ((ir_load *)n)->buffer == lf->b)
    lf->found = (ir_load *)n;
  return !lf->found;
}

/* Whether two index expressions are the same value (constants compared by value). */
static bool same_extent(kiln_context *ctx, const ir_expr *a, const ir_expr *b) {
  int64_t x, y;
  if (const_of(a, &x) && const_of(b, &y)) return x == y;
  return ir_structural_equal(ctx, a, b);
}

/* reverse_compute_inline on the consumer realize cr (see the public function). */
static kiln_status do_reverse_compute_inline(sch_schedule *s, const char *prim,
                                             ir_block_realize *cr) {
  const ir_block *cb = cr->block;
  ir_store *cstore;
  kiln_status st = check_spatial_store(s, prim, cb, &cstore);
  if (st) return st;
  ir_block_realize *scope;
  if ((st = sch_scope_of(s, &cr->h, &scope))) return st;
  /* The one buffer the block reads that another block of the scope writes. */
  buf_list loaded = {0};
  ir_visit(cstore->value, false, collect_loaded, &loaded);
  if (loaded.full)
    return sch_fail(s, prim, "block '%s' reads more than %d buffers", cb->name,
                    SCH_MAX_INST_ARGS);
  ir_buffer *b = NULL;
  ir_block_realize *pr = NULL;
  for (int i = 0; i < loaded.n; i++) {
    int nw;
    ir_block_realize **ws;
    if ((st = sch_writers_of(s, scope, loaded.items[i], &nw, &ws))) return st;
    if (loaded.items[i] == cstore->buffer)
      return sch_fail(s, prim, "block '%s' reads buffer '%s' that it writes", cb->name,
                      cstore->buffer->name);
    if (nw == 0) continue;
    if (b)
      return sch_fail(s, prim, "block '%s' reads two buffers written by other blocks ('%s' "
                      "and '%s'); it must read exactly one", cb->name, b->name,
                      loaded.items[i]->name);
    if (nw > 1)
      return sch_fail(s, prim, "buffer '%s' that block '%s' reads has %d writers ('%s', "
                      "'%s', ...); it must have one", loaded.items[i]->name, cb->name, nw,
                      ws[0]->block->name, ws[1]->block->name);
    b = loaded.items[i];
    pr = ws[0];
  }
  if (!b)
    return sch_fail(s, prim, "block '%s' reads no buffer written by another block", cb->name);
  const ir_block *pb = pr->block;
  if (is_param_buffer(s->func, b))
    return sch_fail(s, prim, "block '%s' reads buffer '%s', an output of the function that "
                    "must stay written", cb->name, b->name);
  /* The consumer loads b once, at exactly its iterators, over all of b. */
  load_probe lp = {b, 0, false};
  ir_visit(cstore->value, false, load_probe_fn, &lp);
  if (lp.loads != 1)
    return sch_fail(s, prim, "block '%s' loads buffer '%s' %d times (exactly once is needed)",
                    cb->name, b->name, lp.loads);
  load_find lf = {b, NULL};
  ir_visit(cstore->value, false, load_find_fn, &lf);
  ir_load *ld = lf.found;
  /* Which producer store index each consumer iterator takes (-1: none). A dimension of
   * extent 1 may be loaded at a constant (broadcast); the iterators no index names must then
   * have extent 1 too (they take their domain's min). */
  int dim_of_iter[SCH_MAX_INST_ARGS];
  bool ok = ld && cb->niters <= SCH_MAX_INST_ARGS;
  for (int k = 0; ok && k < cb->niters; k++) dim_of_iter[k] = -1;
  for (int d = 0; ok && d < ld->nindices; d++) {
    int64_t c;
    int k = iter_index(cb, ld->indices[d]);
    if (k >= 0 && dim_of_iter[k] < 0) dim_of_iter[k] = d;
    else ok = const_of(ld->indices[d], &c) && unit_dim(b, d);
  }
  for (int k = 0; ok && k < cb->niters; k++) {
    int64_t e;
    ok = dim_of_iter[k] >= 0 || (const_of(cb->iters[k]->extent, &e) && e == 1);
  }
  if (!ok)
    return sch_fail(s, prim, "block '%s' loads buffer '%s' at indices that are not exactly its "
                    "iterators", cb->name, b->name);
  for (int k = 0; k < cb->niters; k++) {
    const ir_iter_var *it = cb->iters[k];
    int64_t m;
    int d = dim_of_iter[k];
    if (d >= 0 &&
        (!const_of(it->min, &m) || m != 0 || !same_extent(s->ctx, it->extent, b->shape[d])))
      return sch_fail(s, prim, "block '%s' does not cover buffer '%s': iterator '%s' does not "
                      "run over all of dimension %d", cb->name, b->name, it->var->name, d);
  }
  /* The producer. */
  for (int i = 0; i < pb->niters; i++)
    if (pb->iters[i]->iter_type == IR_ITER_REDUCE)
      return sch_fail(s, prim, "the producer '%s' of block '%s' is a reduction (iterator '%s' "
                      "is a reduce iterator)", pb->name, cb->name, pb->iters[i]->var->name);
  ir_store *pstore = ir_as_store(pb->body);
  if (pb->init || pb->nwrites != 1 || !pstore || pstore->buffer != b)
    return sch_fail(s, prim, "the producer '%s' of block '%s' is not a single store to buffer "
                    "'%s'", pb->name, cb->name, b->name);
  int nr;
  ir_block_realize **rs;
  if ((st = sch_readers_of(s, scope, b, &nr, &rs))) return st;
  for (int i = 0; i < nr; i++)
    if (rs[i] != cr)
      return sch_fail(s, prim, "buffer '%s' is also read by block '%s'", b->name,
                      rs[i]->block->name);
  int nall;
  ir_block_realize **all;
  if ((st = sch_child_realizes(s, &scope->h, &nall, &all))) return st;
  if (position(nall, all, pr) > position(nall, all, cr))
    return sch_fail(s, prim, "block '%s' comes before its producer '%s'", cb->name, pb->name);
  /* The consumer's store rewritten in the producer's iterators: iterator k of the consumer
   * (the one loading dimension d of b) becomes the producer's store index d. */
  ir_arena *a = s->arena;
  ir_var *vars[SCH_MAX_INST_ARGS];
  ir_expr *vals[SCH_MAX_INST_ARGS];
  int nv = cb->niters;
  for (int k = 0; k < nv; k++) {
    vars[k] = cb->iters[k]->var;
    int d = dim_of_iter[k];
    vals[k] = to_type(s, d >= 0 ? pstore->indices[d] : cb->iters[k]->min, vars[k]->h.dtype);
    if (!vals[k]) return built_err(s);
  }
  ir_expr *value = (ir_expr *)ir_substitute(a, cstore->value, nv, vars, vals);
  ir_expr **idx = cstore->nindices
                      ? ir_arena_alloc(a, sizeof *idx * (size_t)cstore->nindices) : NULL;
  if (!value || (cstore->nindices && !idx)) return built_err(s);
  for (int i = 0; i < cstore->nindices; i++)
    if (!(idx[i] = (ir_expr *)ir_substitute(a, cstore->indices[i], nv, vars, vals)))
      return built_err(s);
  load_swap w = {b, pstore->value};
  ir_mutator m = {.arena = a, .visit = load_swap_visit, .ud = &w};
  if (!(value = ir_mutate(&m, value))) return built_err(s);
  ir_stmt *body = ir_store_new(a, cstore->buffer, value, cstore->nindices, idx);
  ir_block *nb = body ? ir_block_new(a, pb->name, pb->niters, pb->iters, pb->nreads, pb->reads,
                                     pb->nwrites, pb->writes, pb->nallocs, pb->allocs,
                                     pb->nannots, pb->annots, NULL, body)
                      : NULL;
  if (nb) nb = ir_block_with_detected_regions(a, nb);
  ir_stmt *nr2 = nb ? ir_block_realize_new(a, pr->nvalues, pr->values, pr->predicate, nb) : NULL;
  if (!nr2) return built_err(s);
  ir_func *old = s->func;
  if (!(st = sch_replace(s, &pr->h, nr2)) && !(st = sch_replace(s, &cr->h, NULL)))
    st = drop_unused_alloc(s, b);
  if (st) s->func = old;
  return st;
}

/* ---- compute_at and reverse_compute_at ------------------------------------------------ */

/* The checks both directions share: the block and the loop live in the same block scope;
 * gives the scope's blocks in execution order. */
static kiln_status same_scope(sch_schedule *s, const char *prim, ir_block_realize *r,
                              ir_for *L, ir_block_realize **scope, int *n,
                              ir_block_realize ***order) {
  ir_block_realize *sr, *sl;
  kiln_status st = sch_scope_of(s, &r->h, &sr);
  if (!st) st = sch_scope_of(s, &L->h, &sl);
  if (st) return st;
  if (sr != sl)
    return sch_fail(s, prim, "block '%s' and loop '%s' are not in the same block scope",
                    r->block->name, L->var->name);
  *scope = sr;
  return sch_child_realizes(s, &sr->h, n, order);
}

/* For each dimension of region reg of blk: the iterator whose variable is the dimension's
 * index (extent 1), distinct ones, or -1 for a constant index into a dimension of extent 1;
 * false when some dimension is anything else. */
static bool region_iters(const ir_block *blk, const ir_region *reg, int *iter_of_dim) {
  uint64_t seen[(SCH_MAX_INST_ARGS + 63) / 64] = {0};
  for (int d = 0; d < reg->nranges; d++) {
    int64_t e, c;
    if (!const_of(reg->ranges[d]->extent, &e) || e != 1) return false;
    if (const_of(reg->ranges[d]->min, &c) && unit_dim(reg->buffer, d)) {
      iter_of_dim[d] = -1;
      continue;
    }
    int k = iter_index(blk, reg->ranges[d]->min);
    if (k < 0 || k >= SCH_MAX_INST_ARGS || (seen[k / 64] >> (k % 64) & 1)) return false;
    seen[k / 64] |= (uint64_t)1 << (k % 64);
    iter_of_dim[d] = k;
  }
  return true;
}

/* Which blocks of order[0..n) are under L (flags). */
static kiln_status under_flags(sch_schedule *s, const ir_for *L, int n,
                               ir_block_realize *const *order, bool **out) {
  bool *f = n ? ir_arena_alloc(s->arena, sizeof *f * (size_t)n) : NULL;
  if (n && !f) return built_err(s);
  for (int i = 0; i < n; i++) {
    kiln_status st = is_under(s, &L->h, &order[i]->h, &f[i]);
    if (st) return st;
  }
  *out = f;
  return KILN_OK;
}

/* compute_at of producer pr under loop L; commit false: check and plan only. */
static kiln_status do_compute_at(sch_schedule *s, const char *prim, ir_block_realize *pr,
                                 ir_for *L, bool preserve, bool commit) {
  const ir_block *blk = pr->block;
  ir_block_realize *scope, **order;
  int n;
  kiln_status st = same_scope(s, prim, pr, L, &scope, &n, &order);
  if (st) return st;
  if (blk->nwrites != 1)
    return sch_fail(s, prim, "block '%s' writes %d buffers (exactly one is needed)", blk->name,
                    blk->nwrites);
  ir_buffer *b = blk->writes[0]->buffer;
  if (blk->niters > SCH_MAX_INST_ARGS || b->ndim > SCH_MAX_INST_ARGS)
    return sch_fail(s, prim, "block '%s' has too many iterators", blk->name);
  int iter_of_dim[SCH_MAX_INST_ARGS];
  if (!region_iters(blk, blk->writes[0], iter_of_dim))
    return sch_fail(s, prim, "block '%s' writes buffer '%s' at indices that are not distinct "
                    "iterators of the block", blk->name, b->name);
  for (int d = 0; d < b->ndim; d++)
    if (iter_of_dim[d] >= 0 && blk->iters[iter_of_dim[d]]->iter_type != IR_ITER_SPATIAL)
      return sch_fail(s, prim, "block '%s' writes buffer '%s' at reduce iterator '%s'",
                      blk->name, b->name, blk->iters[iter_of_dim[d]]->var->name);
  bool *under;
  if ((st = under_flags(s, L, n, order, &under))) return st;
  int pp = position(n, order, pr), last_under = -1, ncons = 0;
  ir_block_realize **cons = ir_arena_alloc(s->arena, sizeof *cons * (size_t)n);
  if (!cons) return built_err(s);
  for (int i = 0; i < n; i++) {
    if (under[i] && order[i] != pr) last_under = i;
    if (order[i] == pr) continue;
    const ir_block *ob = order[i]->block;
    if (block_writes(ob, b))
      return sch_fail(s, prim, "buffer '%s' written by block '%s' is also written by block "
                      "'%s'", b->name, blk->name, ob->name);
    if (!block_reads(ob, b)) continue;
    if (!under[i])
      return sch_fail(s, prim, "block '%s' has consumer '%s' that is not under loop '%s'",
                      blk->name, ob->name, L->var->name);
    if (i < pp)
      return sch_fail(s, prim, "block '%s' comes after its consumer '%s'", blk->name, ob->name);
    cons[ncons++] = order[i];
  }
  if (!ncons)
    return sch_fail(s, prim, "no block under loop '%s' reads buffer '%s' that block '%s' "
                    "writes", L->var->name, b->name, blk->name);
  /* Moving the producer later must not let it see writes it did not see before. */
  for (int i = pp + 1; i <= last_under; i++)
    for (int j = 0; j < blk->nreads; j++) {
      const ir_buffer *in = blk->reads[j]->buffer;
      if (in != b && order[i] != pr && block_writes(order[i]->block, in))
        return sch_fail(s, prim, "block '%s' writes buffer '%s' that block '%s' reads; under "
                        "loop '%s' the read would come after that write", order[i]->block->name,
                        in->name, blk->name, L->var->name);
    }
  ir_analyzer *an = ir_analyzer_new(s->arena);
  if (!an) return built_err(s);
  dim_need dims[SCH_MAX_INST_ARGS], need[SCH_MAX_INST_ARGS];
  st = needed_region(s, an, L, ncons, cons, b, false, dims);
  if (!st) {
    for (int k = 0; k < blk->niters; k++) need[k] = (dim_need){false, false, NULL, 0, 0};
    for (int d = 0; d < b->ndim; d++)
      if (iter_of_dim[d] >= 0) need[iter_of_dim[d]] = dims[d];
    ir_stmt *nest;
    ir_func *old = s->func;
    if (!(st = build_nest(s, an, pr, need, preserve, &nest)))
      st = move_under(s, pr, L->var, nest, false);
    if (st || !commit) s->func = old;
  }
  ir_analyzer_free(an);
  return st;
}

typedef struct var_probe {
  int n;
  ir_for *const *loops;
  const ir_var *found;
} var_probe;

static bool var_probe_fn(ir_node *n, void *ud) {
  var_probe *p = ud;
  if (p->found) return false;
  if (n->kind == IR_VAR)
    for (int i = 0; i < p->n; i++)
      if (p->loops[i]->var == (ir_var *)n) p->found = (ir_var *)n;
  return !p->found;
}

/* A producer under L must finish its reduction within one iteration of L: its reduce
 * iterators may only depend on loops inside L. */
static kiln_status check_complete_under(sch_schedule *s, const char *prim,
                                        const ir_block_realize *r, const ir_for *L) {
  int nl;
  ir_for **loops;
  kiln_status st = sch_loops_around(s, &r->h, &nl, &loops);
  if (st) return st;
  int outer = 0;
  while (outer < nl && loops[outer] != L) outer++;
  const ir_block *blk = r->block;
  for (int k = 0; k < blk->niters && k < r->nvalues; k++) {
    if (blk->iters[k]->iter_type != IR_ITER_REDUCE) continue;
    var_probe p = {outer + 1 < nl ? outer + 1 : nl, loops, NULL};
    ir_visit(r->values[k], false, var_probe_fn, &p);
    if (p.found)
      return sch_fail(s, prim, "the reduction of block '%s' is not complete inside loop '%s' "
                      "(its reduce iterator '%s' depends on loop '%s')", blk->name,
                      L->var->name, blk->iters[k]->var->name, p.found->name);
  }
  return KILN_OK;
}

/* reverse_compute_at of consumer cr under loop L. */
static kiln_status do_reverse_compute_at(sch_schedule *s, const char *prim,
                                         ir_block_realize *cr, ir_for *L, bool preserve) {
  const ir_block *cb = cr->block;
  ir_block_realize *scope, **order;
  int n;
  kiln_status st = same_scope(s, prim, cr, L, &scope, &n, &order);
  if (st) return st;
  bool *under;
  if ((st = under_flags(s, L, n, order, &under))) return st;
  int cp = position(n, order, cr), first_under = -1;
  for (int i = n - 1; i >= 0; i--)
    if (under[i] && order[i] != cr) first_under = i;
  /* The one buffer read by the block that blocks under L write. */
  ir_buffer *b = NULL;
  for (int j = 0; j < cb->nreads; j++) {
    ir_buffer *in = cb->reads[j]->buffer;
    bool inside = false;
    for (int i = 0; i < n; i++)
      if (under[i] && order[i] != cr && block_writes(order[i]->block, in)) {
        inside = true;
        if (i > cp)
          return sch_fail(s, prim, "block '%s' comes before its producer '%s'", cb->name,
                          order[i]->block->name);
      }
    if (!inside) continue;
    if (b)
      return sch_fail(s, prim, "block '%s' reads two buffers written under loop '%s' ('%s' "
                      "and '%s'); it must read exactly one", cb->name, L->var->name, b->name,
                      in->name);
    b = in;
  }
  if (!b)
    return sch_fail(s, prim, "block '%s' reads no buffer that the blocks under loop '%s' write",
                    cb->name, L->var->name);
  /* Moving the block earlier must not make it miss a write it saw before. */
  for (int j = 0; j < cb->nreads; j++)
    for (int i = first_under + 1; i < cp; i++)
      if (!under[i] && block_writes(order[i]->block, cb->reads[j]->buffer))
        return sch_fail(s, prim, "block '%s' writes buffer '%s' that block '%s' reads, outside "
                        "loop '%s'", order[i]->block->name, cb->reads[j]->buffer->name,
                        cb->name, L->var->name);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < cb->nwrites && under[i] && order[i] != cr; j++)
      if (block_reads(order[i]->block, cb->writes[j]->buffer))
        return sch_fail(s, prim, "block '%s' under loop '%s' reads buffer '%s' that block '%s' "
                        "writes", order[i]->block->name, L->var->name,
                        cb->writes[j]->buffer->name, cb->name);
  if (cb->niters > SCH_MAX_INST_ARGS || b->ndim > SCH_MAX_INST_ARGS)
    return sch_fail(s, prim, "block '%s' has too many iterators", cb->name);
  int iter_of_dim[SCH_MAX_INST_ARGS];
  if (!region_iters(cb, region_of(cb->nreads, cb->reads, b), iter_of_dim))
    return sch_fail(s, prim, "block '%s' reads buffer '%s' at indices that are not distinct "
                    "iterators of the block", cb->name, b->name);
  for (int d = 0; d < b->ndim; d++)
    if (iter_of_dim[d] >= 0 && cb->iters[iter_of_dim[d]]->iter_type != IR_ITER_SPATIAL)
      return sch_fail(s, prim, "block '%s' reads buffer '%s' at reduce iterator '%s'",
                      cb->name, b->name, cb->iters[iter_of_dim[d]]->var->name);
  int np = 0;
  ir_block_realize **prods = ir_arena_alloc(s->arena, sizeof *prods * (size_t)n);
  if (!prods) return built_err(s);
  for (int i = 0; i < n; i++)
    if (under[i] && order[i] != cr && block_writes(order[i]->block, b)) {
      prods[np++] = order[i];
      if ((st = check_complete_under(s, prim, order[i], L))) return st;
    }
  ir_analyzer *an = ir_analyzer_new(s->arena);
  if (!an) return built_err(s);
  dim_need dims[SCH_MAX_INST_ARGS], need[SCH_MAX_INST_ARGS];
  st = needed_region(s, an, L, np, prods, b, true, dims);
  if (!st) {
    for (int k = 0; k < cb->niters; k++) need[k] = (dim_need){false, false, NULL, 0, 0};
    for (int d = 0; d < b->ndim; d++)
      if (iter_of_dim[d] >= 0) need[iter_of_dim[d]] = dims[d];
    ir_stmt *nest;
    ir_func *old = s->func;
    if (!(st = build_nest(s, an, cr, need, preserve, &nest)))
      st = move_under(s, cr, L->var, nest, true);
    if (st) s->func = old;
  }
  ir_analyzer_free(an);
  return st;
}

/* ---- The primitives -------------------------------------------------------------------- */

/* The location an RV names: a loop (*L set), or the ROOT / INLINE special (*special set). */
static kiln_status location_of(sch_schedule *s, const char *prim, sch_rv loop, ir_for **L,
                               int *special) {
  const sch_rv_info *li = sch_rv_get(s, loop);
  *L = NULL;
  *special = SCH_LOC_NONE;
  if (li && li->kind == SCH_RV_LOOP && !li->loop) {
    *special = li->special == SCH_LOC_INLINE ? SCH_LOC_INLINE : SCH_LOC_ROOT;
    return KILN_OK;
  }
  return sch_get_for(s, prim, loop, L);
}

/* compute_at(block, loop, preserve_unit_loops): moves a producer under a loop of its
 * consumers. Preconditions: block and loop in the same block scope; the block writes one
 * buffer B, at distinct spatial iterators, and is its only writer; every reader of B is under
 * the loop and after the block; no block between the block's old and new places writes what
 * it reads. The block gets fresh loops (ax0, ax1, ...) covering the part of B that the
 * readers under the loop need in one iteration (reduce iterators over their domain), at the
 * start of the loop's body, with a predicate where that part may leave the domain (the
 * block's old predicate, a split's domain guard, is replaced by it). A loop RV
 * with special ROOT leaves the function unchanged; INLINE inlines the block (as
 * compute_inline). Either way one compute_at instruction is recorded, so that a replay that
 * samples another location moves the block there. Inputs: [block, loop, preserve (0/1)]. */
kiln_status sch_compute_at(sch_schedule *s, sch_rv block, sch_rv loop, bool preserve_unit_loops) {
  if (!s) return KILN_ERR_MISUSE;
  ir_block_realize *r;
  kiln_status st = sch_get_realize(s, "compute_at", block, &r);
  ir_for *L;
  int special;
  if (!st) st = location_of(s, "compute_at", loop, &L, &special);
  if (st) return st;
  if (special == SCH_LOC_INLINE) st = do_compute_inline(s, "compute_at", r, true);
  else if (L) st = do_compute_at(s, "compute_at", r, L, preserve_unit_loops, true);
  if (st) return st;
  sch_arg in[3] = {sch_arg_rv(s, block), sch_arg_rv(s, loop), sch_arg_int(preserve_unit_loops)};
  return sch_record(s, SCH_INST_COMPUTE_AT, 3, in, 0, NULL, -1, NULL);
}

/* reverse_compute_at(block, loop, preserve_unit_loops): moves a consumer under a loop of its
 * producer. Preconditions: same scope; of the buffers the block reads exactly one, B, is
 * written under the loop, by blocks before the block; B is read at distinct spatial
 * iterators; no block outside the loop between the loop and the block writes what the block
 * reads; nothing under the loop reads what the block writes. The block gets fresh loops
 * covering what the blocks under the loop write of B in one iteration (its other iterators
 * over their domain), at the end of the loop's body. The blocks under the loop must finish
 * their reductions inside it and are taken to write all of that region (exact for affine
 * bindings; their predicates only guard their domains). Specials as for compute_at (INLINE:
 * reverse_compute_inline). Inputs: [block, loop, preserve (0/1)]. */
kiln_status sch_reverse_compute_at(sch_schedule *s, sch_rv block, sch_rv loop,
                                   bool preserve_unit_loops) {
  if (!s) return KILN_ERR_MISUSE;
  ir_block_realize *r;
  kiln_status st = sch_get_realize(s, "reverse_compute_at", block, &r);
  ir_for *L;
  int special;
  if (!st) st = location_of(s, "reverse_compute_at", loop, &L, &special);
  if (st) return st;
  if (special == SCH_LOC_INLINE) st = do_reverse_compute_inline(s, "reverse_compute_at", r);
  else if (L) st = do_reverse_compute_at(s, "reverse_compute_at", r, L, preserve_unit_loops);
  if (st) return st;
  sch_arg in[3] = {sch_arg_rv(s, block), sch_arg_rv(s, loop), sch_arg_int(preserve_unit_loops)};
  return sch_record(s, SCH_INST_REVERSE_COMPUTE_AT, 3, in, 0, NULL, -1, NULL);
}

/* compute_inline(block): folds a producer into its consumers. Preconditions: a complete
 * spatial block (no reduce iterator, no init) with one store B[v...] = value whose indices
 * are exactly its iterators, each once; B is not a parameter of the function, is written by
 * no other block and not read by the block itself; the value binds no let. Every load B[e...]
 * anywhere becomes value[v := e]; the block's stage is removed, blocks that held such loads
 * get their regions re-detected and B's allocation goes when nothing uses B. Inputs:
 * [block]. */
kiln_status sch_compute_inline(sch_schedule *s, sch_rv block) {
  if (!s) return KILN_ERR_MISUSE;
  ir_block_realize *r;
  kiln_status st = sch_get_realize(s, "compute_inline", block, &r);
  if (!st) st = do_compute_inline(s, "compute_inline", r, true);
  if (st) return st;
  sch_arg in = sch_arg_rv(s, block);
  return sch_record(s, SCH_INST_COMPUTE_INLINE, 1, &in, 0, NULL, -1, NULL);
}

/* reverse_compute_inline(block): folds a consumer into its producer. Preconditions: the
 * block is a complete spatial block with one store D[...] = value; of the buffers it loads
 * exactly one, B, is written by other blocks, by one producer before it; it loads B once, at
 * exactly its iterators, over all of B (iterator domains [0, shape)); nothing else reads B
 * and B is not a parameter; the producer is a complete spatial block with one store
 * B[w...] = pvalue. The producer's store becomes D[...] = value with the consumer's
 * iterators replaced by w and the load of B by pvalue; the consumer goes, and B's
 * allocation with it. Inputs: [block]. */
kiln_status sch_reverse_compute_inline(sch_schedule *s, sch_rv block) {
  if (!s) return KILN_ERR_MISUSE;
  ir_block_realize *r;
  kiln_status st = sch_get_realize(s, "reverse_compute_inline", block, &r);
  if (!st) st = do_reverse_compute_inline(s, "reverse_compute_inline", r);
  if (st) return st;
  sch_arg in = sch_arg_rv(s, block);
  return sch_record(s, SCH_INST_REVERSE_COMPUTE_INLINE, 1, &in, 0, NULL, -1, NULL);
}

/* Runs a legality probe: KILN_OK is legal, a schedule error is "not legal" (its message is
 * cleared), anything else (no memory) is passed on in *st. */
static bool probe_ok(sch_schedule *s, kiln_status probe, kiln_status *st) {
  if (probe == KILN_OK) return true;
  if (probe == KILN_ERR_SCHEDULE) ir_clear_error(s->ctx);
  else *st = probe;
  return false;
}

/* The loops the block may be computed at: the loops around its first consumer (in its
 * scope, outermost first) that hold every consumer and under which compute_at is legal. */
static kiln_status location_candidates(sch_schedule *s, ir_block_realize *r, int *n,
                                       ir_var ***out) {
  *n = 0;
  *out = NULL;
  const ir_block *blk = r->block;
  if (blk->nwrites != 1) return KILN_OK;
  ir_block_realize *scope, **cons;
  int nc;
  kiln_status st = sch_scope_of(s, &r->h, &scope);
  if (!st) st = sch_readers_of(s, scope, blk->writes[0]->buffer, &nc, &cons);
  if (st) return st;
  ir_block_realize *first = NULL;
  for (int i = 0; i < nc && !first; i++)
    if (cons[i] != r) first = cons[i];
  if (!first) return KILN_OK;
  int nl;
  ir_for **loops;
  if ((st = sch_loops_around(s, &first->h, &nl, &loops))) return st;
  ir_var **vars = nl ? ir_arena_alloc(s->arena, sizeof *vars * (size_t)nl) : NULL;
  if (nl && !vars) return built_err(s);
  int k = 0;
  for (int i = 0; i < nl; i++) {
    bool all = true;
    for (int j = 0; j < nc && all; j++) {
      if (cons[j] == r) continue;
      if ((st = is_under(s, &loops[i]->h, &cons[j]->h, &all))) return st;
    }
    if (!all) continue;
    if (probe_ok(s, do_compute_at(s, "compute_at", r, loops[i], true, false), &st))
      vars[k++] = loops[i]->var;
    if (st) return st;
  }
  *n = k;
  *out = vars;
  return KILN_OK;
}

/* A LOOP RV for a non-loop location (ROOT or INLINE). */
static sch_rv new_special_rv(sch_schedule *s, int special) {
  sch_rv rv = sch_new_loop_rv(s, NULL);
  if (rv != SCH_RV_NONE) s->rvs[rv].special = special;
  return rv;
}

/* sample_compute_location(block): a LOOP RV naming where the block may be computed: ROOT
 * (decision -1, always legal), INLINE (-2, when compute_inline's preconditions hold) or the
 * k-th candidate loop (see location_candidates). decision NULL samples uniformly among the
 * legal choices; a decision given must be one of them. Inputs: [block]; decision: [k]. */
kiln_status sch_sample_compute_location(sch_schedule *s, sch_rv block, const int64_t *decision,
                                        sch_rv *out) {
  if (!s || !out) return KILN_ERR_MISUSE;
  const char *prim = "sample_compute_location";
  ir_block_realize *r;
  kiln_status st = sch_get_realize(s, prim, block, &r);
  if (st) return st;
  int nc;
  ir_var **cands;
  if ((st = location_candidates(s, r, &nc, &cands))) return st;
  bool inline_ok = probe_ok(s, do_compute_inline(s, "compute_inline", r, false), &st);
  if (st) return st;
  int64_t d;
  if (decision) {
    d = *decision;
    if (d == -2 && !inline_ok)
      return sch_fail(s, prim, "decision -2 (inline) is not legal for block '%s'",
                      r->block->name);
    if (d < -2 || d >= nc)
      return sch_fail(s, prim, "decision %lld is out of range for block '%s' (-2, -1 or a "
                      "loop index below %d)", (long long)d, r->block->name, nc);
  } else {
    uint64_t nchoices = 1 + (inline_ok ? 1 : 0) + (uint64_t)nc;
    uint64_t pick = sch_rand(s) % nchoices;
    if (pick == 0) d = -1;
    else if (inline_ok && pick == 1) d = -2;
    else d = (int64_t)pick - 1 - (inline_ok ? 1 : 0);
  }
  sch_rv rv = d == -1 ? new_special_rv(s, SCH_LOC_ROOT)
              : d == -2 ? new_special_rv(s, SCH_LOC_INLINE)
                        : sch_new_loop_rv(s, cands[d]);
  if (rv == SCH_RV_NONE) return KILN_ERR_NOMEM;
  sch_arg in = sch_arg_rv(s, block);
  if ((st = sch_record(s, SCH_INST_SAMPLE_COMPUTE_LOCATION, 1, &in, 1, &rv, 1, &d))) return st;
  *out = rv;
  return KILN_OK;
}

/* ---- Replay entries ------------------------------------------------------------------ */

static kiln_status apply_at(sch_schedule *s, int kind, int ninputs, const sch_arg *inputs,
                            int *noutputs) {
  const char *name = sch_inst_name(kind);
  if (ninputs != 3 || inputs[2].kind != SCH_ARG_INT)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: %s takes a block, a loop and preserve_unit_loops", name);
  sch_rv b, l;
  kiln_status st = sch_input_rv(s, &inputs[0], SCH_RV_BLOCK, &b);
  if (!st) st = sch_input_rv(s, &inputs[1], SCH_RV_LOOP, &l);
  if (st) return st;
  *noutputs = 0;
  return kind == SCH_INST_COMPUTE_AT ? sch_compute_at(s, b, l, inputs[2].i != 0)
                                     : sch_reverse_compute_at(s, b, l, inputs[2].i != 0);
}

kiln_status sch_apply_compute_at(sch_schedule *s, int ninputs, const sch_arg *inputs,
                                 int ndecision, const int64_t *decision, sch_rv *outputs,
                                 int *noutputs) {
  (void)ndecision, (void)decision, (void)outputs;
  return apply_at(s, SCH_INST_COMPUTE_AT, ninputs, inputs, noutputs);
}

kiln_status sch_apply_reverse_compute_at(sch_schedule *s, int ninputs, const sch_arg *inputs,
                                         int ndecision, const int64_t *decision,
                                         sch_rv *outputs, int *noutputs) {
  (void)ndecision, (void)decision, (void)outputs;
  return apply_at(s, SCH_INST_REVERSE_COMPUTE_AT, ninputs, inputs, noutputs);
}

static kiln_status apply_inline(sch_schedule *s, int kind, int ninputs, const sch_arg *inputs,
                                int *noutputs) {
  if (ninputs != 1)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "trace: %s takes one block",
                   sch_inst_name(kind));
  sch_rv b;
  kiln_status st = sch_input_rv(s, &inputs[0], SCH_RV_BLOCK, &b);
  if (st) return st;
  *noutputs = 0;
  return kind == SCH_INST_COMPUTE_INLINE ? sch_compute_inline(s, b)
                                         : sch_reverse_compute_inline(s, b);
}

kiln_status sch_apply_compute_inline(sch_schedule *s, int ninputs, const sch_arg *inputs,
                                     int ndecision, const int64_t *decision, sch_rv *outputs,
                                     int *noutputs) {
  (void)ndecision, (void)decision, (void)outputs;
  return apply_inline(s, SCH_INST_COMPUTE_INLINE, ninputs, inputs, noutputs);
}

kiln_status sch_apply_reverse_compute_inline(sch_schedule *s, int ninputs,
                                             const sch_arg *inputs, int ndecision,
                                             const int64_t *decision, sch_rv *outputs,
                                             int *noutputs) {
  (void)ndecision, (void)decision, (void)outputs;
  return apply_inline(s, SCH_INST_REVERSE_COMPUTE_INLINE, ninputs, inputs, noutputs);
}

kiln_status sch_apply_sample_compute_location(sch_schedule *s, int ninputs,
                                              const sch_arg *inputs, int ndecision,
                                              const int64_t *decision, sch_rv *outputs,
                                              int *noutputs) {
  if (ninputs != 1)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: sample_compute_location takes one block");
  if (decision && ndecision != 1)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: sample_compute_location takes one decision, got %d", ndecision);
  sch_rv b;
  kiln_status st = sch_input_rv(s, &inputs[0], SCH_RV_BLOCK, &b);
  if (st) return st;
  *noutputs = 1;
  return sch_sample_compute_location(s, b, decision, &outputs[0]);
}

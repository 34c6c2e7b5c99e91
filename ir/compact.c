/* compact.c: compact buffer allocation, a pass of the lowering pipeline (transform.c) that
 * runs after blocks become loops. A schedule leaves intermediate and cache buffers allocated
 * at full size at the root even when each is only touched inside one tile (an accumulator
 * after cache_write + reverse_compute_at, a padded input after compute_at). This pass moves
 * each allocation down to the innermost statement holding all its accesses and shrinks it to
 * the region those accesses cover in one execution of that statement, so a tile accumulator
 * becomes a small array with constant indices that LLVM keeps in registers.
 *
 * The region of an access is found by relaxing the loops between that statement and the
 * access: index e over relaxed loops = e0 + [lo, hi], where e0 is e with those loops at their
 * minimum and [lo, hi] the bounds of e - e0; accesses whose e0 differ by constants unite.
 * Anything else (non-constant extents, data-dependent indices, strided buffers, vector
 * indices) leaves the allocation as it is: the pass is an optimization, never required. */
#include <string.h>

#include "ir/arith.h"
#include "ir/transform.h"

enum { MAX_DIMS = 16 };

/* One access of the buffer being compacted: its indices and the statements from the
 * allocation's body down to the statement holding it. */
typedef struct access {
  int nidx;
  ir_expr **idx;
  int depth;
  ir_stmt **path;
} access;

typedef struct collector {
  kiln_context *ctx;
  ir_arena *arena; /* scratch: paths and access lists */
  const ir_buffer *buf;
  ir_stmt *stack[256];
  int depth;
  access *acc;
  int nacc, cap;
  bool fail; /* too deep, out of memory, or an access we cannot describe */
} collector;

static void add_access(collector *c, int nidx, ir_expr **idx) {
  if (c->nacc == c->cap) {
    int cap = c->cap ? c->cap * 2 : 16;
    access *r = ir_arena_alloc(c->arena, sizeof *r * (size_t)cap);
    if (!r) {
      c->fail = true;
      return;
    }
    if (c->nacc) memcpy(r, c->acc, sizeof *r * (size_t)c->nacc);
    c->acc = r;
    c->cap = cap;
  }
  access *a = &c->acc[c->nacc++];
  a->nidx = nidx;
  a->idx = idx;
  a->depth = c->depth;
  a->path = ir_arena_alloc(c->arena, sizeof *a->path * (size_t)c->depth);
  if (!a->path) {
    c->fail = true;
    return;
  }
  memcpy(a->path, c->stack, sizeof *a->path * (size_t)c->depth);
}

static bool find_loads(ir_node *n, void *ud) {
  collector *c = ud;
  if (c->fail) return false;
  if (n->kind == IR_LOAD && ((ir_load *)n)->buffer == c->buf) {
    ir_load *l = (ir_load *)n;
    add_access(c, l->nindices, l->indices);
  }
  return true;
}

/* Walks statements keeping the path on c->stack; expressions are searched for loads. */
static void collect(collector *c, ir_stmt *s) {
  if (c->fail || !s) return;
  if (c->depth == (int)(sizeof c->stack / sizeof c->stack[0])) {
    c->fail = true;
    return;
  }
  c->stack[c->depth++] = s;
  switch (s->kind) {
  case IR_STORE: {
    ir_store *st = (ir_store *)s;
    ir_visit(st->value, false, find_loads, c);
    for (int i = 0; i < st->nindices; i++) ir_visit(st->indices[i], false, find_loads, c);
    if (st->buffer == c->buf) add_access(c, st->nindices, st->indices);
    break;
  }
  case IR_FOR: {
    ir_for *f = (ir_for *)s;
    ir_visit(f->min, false, find_loads, c);
    ir_visit(f->extent, false, find_loads, c);
    collect(c, f->body);
    break;
  }
  case IR_IF: {
    ir_if *x = (ir_if *)s;
    ir_visit(x->cond, false, find_loads, c);
    collect(c, x->then_case);
    collect(c, x->else_case);
    break;
  }
  case IR_SEQ: {
    ir_seq *x = (ir_seq *)s;
    for (int i = 0; i < x->nstmts; i++) collect(c, x->stmts[i]);
    break;
  }
  case IR_LET_STMT: {
    ir_let_stmt *x = (ir_let_stmt *)s;
    ir_visit(x->value, false, find_loads, c);
    collect(c, x->body);
    break;
  }
  case IR_ALLOCATE: collect(c, ((ir_allocate *)s)->body); break;
  case IR_EVALUATE: ir_visit(((ir_evaluate *)s)->value, false, find_loads, c); break;
  default: c->fail = true; /* blocks are lowered before this pass runs */
  }
  c->depth--;
}

/* The new region of one dimension. */
typedef struct dim_region {
  ir_expr *base;  /* the first access's e0 */
  int64_t lo, hi; /* relative to base, over all accesses */
} dim_region;

/* Computes e0 and [lo, hi] for index e of access a relaxed over its loops from path
 * position `from` on; false when it cannot. */
static bool relax_index(ir_arena *ar, const access *a, int from, ir_expr *e, ir_expr **e0,
                        int64_t *lo, int64_t *hi) {
  if (e->dtype.lanes != 1 || !ir_dt_is_int(e->dtype)) return false;
  ir_var *vars[64];
  ir_expr *mins[64];
  int64_t lo_v[64], hi_v[64];
  int nv = 0;
  for (int i = from; i < a->depth - 1; i++) {
    if (a->path[i]->kind != IR_FOR) continue;
    ir_for *f = (ir_for *)a->path[i];
    const ir_int_imm *mn = ir_as_int(f->min), *ex = ir_as_int(f->extent);
    if (!mn || !ex || ex->value < 1 || nv == 64) return false;
    vars[nv] = f->var;
    mins[nv] = f->min;
    lo_v[nv] = mn->value;
    hi_v[nv] = mn->value + ex->value - 1;
    nv++;
  }
  ir_analyzer *an = ir_analyzer_new(ar);
  if (!an) return false;
  bool ok = false;
  ir_expr *z = nv ? (ir_expr *)ir_substitute(ar, e, nv, vars, mins) : e;
  if (z) z = ir_simplify_expr(an, z);
  for (int i = 0; i < nv; i++)
    if (ir_analyzer_bind(an, vars[i], (ir_interval){lo_v[i], hi_v[i]})) goto done;
  if (z) {
    ir_expr *d = ir_sub(ar, e, z);
    if (d) d = ir_simplify_expr(an, d);
    if (d) {
      ir_interval b = ir_bound_of(an, d);
      if (b.min != INT64_MIN && b.max != INT64_MAX) {
        *e0 = z;
        *lo = b.min;
        *hi = b.max;
        ok = true;
      }
    }
  }
done:
  ir_analyzer_free(an);
  return ok;
}

/* The constant difference a - b, if it is one. */
static bool const_diff(ir_arena *ar, ir_expr *a, ir_expr *b, int64_t *out) {
  if (a == b) {
    *out = 0;
    return true;
  }
  ir_analyzer *an = ir_analyzer_new(ar);
  if (!an) return false;
  ir_expr *d = ir_sub(ar, a, b);
  if (d) d = ir_simplify_expr(an, d);
  ir_analyzer_free(an);
  const ir_int_imm *k = ir_as_int(d);
  if (!k) return false;
  *out = k->value;
  return true;
}

/* Rewrites accesses of `old` into `nb` with indices shifted by -base, and wraps the
 * statement `lca` into an allocation of nb. */
typedef struct rewriter {
  const ir_buffer *old;
  ir_buffer *nb;
  ir_expr **base;
  const ir_stmt *lca;
  ir_analyzer *an;
} rewriter;

static ir_expr **shift_indices(ir_mutator *m, int n, ir_expr *const *idx) {
  rewriter *r = m->ud;
  ir_expr **out = ir_arena_alloc(m->arena, sizeof *out * (size_t)n);
  if (!out) return NULL;
  for (int i = 0; i < n; i++) {
    ir_expr *e = ir_mutate(m, idx[i]);
    if (!e) return NULL;
    e = ir_sub(m->arena, e, r->base[i]);
    if (e) e = ir_simplify_expr(r->an, e);
    if (!e) return NULL;
    out[i] = e;
  }
  return out;
}

static ir_node *rewrite_visit(ir_mutator *m, ir_node *n) {
  rewriter *r = m->ud;
  if (r->lca && n == r->lca) {
    r->lca = NULL; /* visit the statement itself normally, then wrap it */
    ir_node *inner = rewrite_visit(m, n);
    if (!inner) return NULL;
    return ir_allocate_new(m->arena, r->nb, inner);
  }
  if (n->kind == IR_LOAD && ((ir_load *)n)->buffer == r->old) {
    ir_load *l = (ir_load *)n;
    ir_expr **idx = shift_indices(m, l->nindices, l->indices);
    return idx ? ir_load_new(m->arena, r->nb, l->nindices, idx) : NULL;
  }
  if (n->kind == IR_STORE && ((ir_store *)n)->buffer == r->old) {
    ir_store *s = (ir_store *)n;
    ir_expr *v = ir_mutate(m, s->value);
    ir_expr **idx = v ? shift_indices(m, s->nindices, s->indices) : NULL;
    return idx ? ir_store_new(m->arena, r->nb, v, s->nindices, idx) : NULL;
  }
  return ir_mutate_children(m, n);
}

/* Tries to compact one allocation; returns the replacement statement (the allocation
 * itself when nothing is gained) or NULL on a real error. */
static ir_stmt *compact_one(kiln_context *ctx, ir_arena *arena, ir_allocate *al) {
  const ir_buffer *b = al->buffer;
  if (b->nstrides || b->ndim > MAX_DIMS || b->elem_offset) return &al->h;
  ir_arena *scratch = ir_arena_new(ctx);
  if (!scratch) return NULL;
  ir_stmt *result = &al->h;
  collector c = {.ctx = ctx, .arena = scratch, .buf = b};
  collect(&c, al->body);
  if (c.fail || c.nacc == 0) goto out;
  /* the deepest statement on every access's path */
  int lca = c.acc[0].depth;
  for (int k = 1; k < c.nacc; k++) {
    int d = 0;
    while (d < lca && d < c.acc[k].depth && c.acc[k].path[d] == c.acc[0].path[d]) d++;
    lca = d;
  }
  if (lca == 0) goto out; /* accesses in different top-level statements of the body */
  const ir_stmt *lca_stmt = c.acc[0].path[lca - 1];
  dim_region reg[MAX_DIMS];
  for (int d = 0; d < b->ndim; d++) {
    for (int k = 0; k < c.nacc; k++) {
      const access *a = &c.acc[k];
      if (a->nidx != b->ndim) goto out;
      ir_expr *e0;
      int64_t lo, hi;
      if (!relax_index(arena, a, lca - 1, a->idx[d], &e0, &lo, &hi)) goto out;
      if (k == 0) {
        reg[d] = (dim_region){e0, lo, hi};
        continue;
      }
      int64_t shift;
      if (!const_diff(arena, e0, reg[d].base, &shift)) goto out;
      if (lo + shift < reg[d].lo) reg[d].lo = lo + shift;
      if (hi + shift > reg[d].hi) reg[d].hi = hi + shift;
    }
  }
  /* worth it only when some dimension shrinks (or a symbolic shape becomes constant) */
  bool smaller = false;
  ir_expr *shape[MAX_DIMS], *base[MAX_DIMS];
  for (int d = 0; d < b->ndim; d++) {
    int64_t ext = reg[d].hi - reg[d].lo + 1;
    const ir_int_imm *old = ir_as_int(b->shape[d]);
    if (old && ext >= old->value) ext = old->value;
    if (!old || ext < old->value) smaller = true;
    if (!(shape[d] = ir_int(arena, b->shape[d]->dtype, ext))) goto fail;
  }
  if (!smaller) goto out;
  ir_analyzer *an = ir_analyzer_new(arena);
  if (!an) goto fail;
  for (int d = 0; d < b->ndim; d++) {
    const ir_int_imm *old = ir_as_int(b->shape[d]);
    int64_t ext = reg[d].hi - reg[d].lo + 1;
    if (old && ext >= old->value) {
      base[d] = ir_int(arena, b->shape[d]->dtype, 0); /* this dimension keeps its extent */
    } else {
      ir_expr *lo = ir_int(arena, reg[d].base->dtype, reg[d].lo);
      ir_expr *e = reg[d].base;
      base[d] = lo && e ? ir_simplify_expr(an, ir_add(arena, e, lo)) : NULL;
    }
    if (!base[d]) {
      ir_analyzer_free(an);
      goto fail;
    }
    if (!ir_dt_eq(base[d]->dtype, reg[d].base->dtype)) {
      ir_analyzer_free(an);
      goto out;
    }
  }
  ir_buffer *nb = ir_buffer_new(arena, b->name, b->h.dtype, b->ndim, shape, 0, NULL, NULL,
                                b->align, b->scope);
  if (!nb) {
    ir_analyzer_free(an);
    goto fail;
  }
  rewriter r = {.old = b, .nb = nb, .base = base, .lca = lca_stmt, .an = an};
  ir_mutator m = {.arena = arena, .visit = rewrite_visit, .ud = &r};
  ir_node *body = ir_mutate(&m, al->body);
  ir_analyzer_free(an);
  if (!body) goto fail;
  result = body;
  goto out;
fail:
  result = NULL;
out:
  ir_arena_free(scratch);
  return result;
}

static ir_node *compact_visit(ir_mutator *m, ir_node *n) {
  if (!ir_is_stmt(n)) return n;
  ir_node *x = ir_mutate_children(m, n); /* inner allocations first */
  if (!x || x->kind != IR_ALLOCATE) return x;
  return compact_one(m->ud, m->arena, (ir_allocate *)x);
}

ir_func *ir_compact_allocations(kiln_context *ctx, ir_arena *arena, ir_func *f,
                                const ir_lower_options *o) {
  (void)o;
  ir_mutator m = {.arena = arena, .visit = compact_visit, .ud = ctx};
  ir_node *body = ir_mutate(&m, f->body);
  if (!body) return NULL;
  if (body == f->body) return f;
  return ir_func_new(arena, f->name, f->nparams, f->params, f->nattrs, f->attrs, body);
}

/* region.c: detects the read and write regions of a TensorIR block from its body. Every
 * access (a load, a store, or a nested block's own region) becomes one box per buffer
 * dimension in terms of the block's iterators: loop variables of loops inside the block are
 * relaxed over their ranges (where the index is affine in them); the boxes of one buffer are
 * then united per dimension. relay/lower.c calls it for every block it builds, and schedule
 * primitives call it after rewriting a block. */
#include "region.h"

#include <string.h>

#include "arith.h"

/* One access: a box [mins[d], mins[d] + exts[d]) per dimension; full[d] marks a dimension
 * whose index we cannot bound (data-dependent or not affine), which gets the whole extent. */
typedef struct access {
  ir_buffer *buf;
  bool write;
  int n;
  ir_expr **mins, **exts;
  bool *full;
} access;

/* The walk over one block's init and body. Temporaries (the access list) go to `scratch`;
 * expressions that can end up in the result are built in `a`. */
typedef struct detector {
  ir_arena *a, *scratch;
  kiln_context *ctx;
  ir_analyzer *an;
  ir_ptrmap loops;    /* loop variable -> its ir_for */
  ir_ptrmap unknown;  /* let variables: values we do not track */
  ir_ptrmap excluded; /* buffers allocated by the block or inside it */
  int naccess, cap;
  access *acc;
  kiln_status st;
} detector;

static void fail_nomem(detector *D) {
  if (!D->st) D->st = KILN_ERR_NOMEM;
}

/* ---- Collecting accesses ---------------------------------------------------------------- */

static access *new_access(detector *D, ir_buffer *buf, bool write, int n) {
  if (D->naccess == D->cap) {
    int cap = D->cap ? 2 * D->cap : 16;
    access *na = ir_arena_alloc(D->scratch, sizeof *na * (size_t)cap);
    if (!na) {
      fail_nomem(D);
      return NULL;
    }
    if (D->naccess) memcpy(na, D->acc, sizeof *na * (size_t)D->naccess);
    D->acc = na;
    D->cap = cap;
  }
  access *x = &D->acc[D->naccess];
  x->buf = buf;
  x->write = write;
  x->n = n;
  x->mins = ir_arena_alloc(D->scratch, sizeof *x->mins * (size_t)(n ? n : 1));
  x->exts = ir_arena_alloc(D->scratch, sizeof *x->exts * (size_t)(n ? n : 1));
  x->full = ir_arena_alloc(D->scratch, sizeof *x->full * (size_t)(n ? n : 1));
  if (!x->mins || !x->exts || !x->full) {
    fail_nomem(D);
    return NULL;
  }
  D->naccess++;
  return x;
}

/* The box of one index expression: a point, or a ramp's span when its stride is constant. */
static void index_box(detector *D, access *x, int d, ir_expr *idx) {
  x->full[d] = false;
  if (idx->kind == IR_RAMP) {
    ir_ramp *r = (ir_ramp *)idx;
    ir_int_imm *s = ir_as_int(r->stride);
    if (!s) {
      x->full[d] = true;
      return;
    }
    int64_t span = s->value * (r->lanes - 1);
    kiln_dtype t = r->base->dtype;
    x->mins[d] = span >= 0 ? r->base : ir_add(D->a, r->base, ir_int(D->a, t, span));
    x->exts[d] = ir_int(D->a, t, (span >= 0 ? span : -span) + 1);
  } else if (idx->kind == IR_BROADCAST) {
    ir_expr *v = ((ir_broadcast *)idx)->value;
    x->mins[d] = v;
    x->exts[d] = ir_int(D->a, v->dtype, 1);
  } else {
    x->mins[d] = idx;
    x->exts[d] = ir_int(D->a, ir_dt_scalar(idx->dtype), 1);
  }
  if (!x->mins[d] || !x->exts[d]) fail_nomem(D);
}

static void add_point_access(detector *D, ir_buffer *buf, bool write, int n, ir_expr **idx) {
  if (ir_ptrmap_get(&D->excluded, buf)) return;
  access *x = new_access(D, buf, write, n);
  if (!x) return;
  for (int d = 0; d < n; d++) index_box(D, x, d, idx[d]);
}

/* A nested block's region, its iterators replaced by the values the realize binds. */
static void add_nested_region(detector *D, const ir_block_realize *r, const ir_region *reg,
                              bool write) {
  if (ir_ptrmap_get(&D->excluded, reg->buffer)) return;
  access *x = new_access(D, reg->buffer, write, reg->nranges);
  if (!x) return;
  const ir_block *b = r->block;
  ir_var *vars[64];
  int nv = b->niters < 64 ? b->niters : 64;
  for (int i = 0; i < nv; i++) vars[i] = b->iters[i]->var;
  for (int d = 0; d < reg->nranges; d++) {
    x->full[d] = b->niters > 64;
    x->mins[d] = ir_substitute(D->a, reg->ranges[d]->min, nv, vars, r->values);
    x->exts[d] = ir_substitute(D->a, reg->ranges[d]->extent, nv, vars, r->values);
    if (!x->mins[d] || !x->exts[d]) fail_nomem(D);
  }
}

static bool collect_visit(ir_node *n, void *ud) {
  detector *D = ud;
  if (D->st) return false;
  switch (n->kind) {
  case IR_FOR:
    if (ir_ptrmap_put(&D->loops, ((ir_for *)n)->var, n)) fail_nomem(D);
    return true;
  case IR_LET_STMT:
    if (ir_ptrmap_put(&D->unknown, ((ir_let_stmt *)n)->var, n)) fail_nomem(D);
    return true;
  case IR_LET:
    if (ir_ptrmap_put(&D->unknown, ((ir_let *)n)->var, n)) fail_nomem(D);
    return true;
  case IR_ALLOCATE:
    if (ir_ptrmap_put(&D->excluded, ((ir_allocate *)n)->buffer, n)) fail_nomem(D);
    return true;
  case IR_LOAD: {
    ir_load *l = (ir_load *)n;
    add_point_access(D, l->buffer, false, l->nindices, l->indices);
    return true;
  }
  case IR_STORE: {
    ir_store *s = (ir_store *)n;
    add_point_access(D, s->buffer, true, s->nindices, s->indices);
    return true;
  }
  case IR_BLOCK_REALIZE: {
    /* A nested block counts through its own regions; its body is its business. */
    const ir_block_realize *r = (const ir_block_realize *)n;
    for (int i = 0; i < r->block->nreads; i++) add_nested_region(D, r, r->block->reads[i], false);
    for (int i = 0; i < r->block->nwrites; i++) add_nested_region(D, r, r->block->writes[i], true);
    return false;
  }
  case IR_BLOCK:
    return false;
  default:
    return true;
  }
}

/* ---- Relaxing loop variables ------------------------------------------------------------ */

typedef struct find_var {
  detector *D;
  ir_var *found; /* a loop or let variable of the block */
  bool has_load;
} find_var;

static bool find_visit(ir_node *n, void *ud) {
  find_var *F = ud;
  if (n->kind == IR_LOAD || n->kind == IR_CALL) F->has_load = true;
  if (n->kind == IR_VAR && !F->found &&
      (ir_ptrmap_get(&F->D->loops, n) || ir_ptrmap_get(&F->D->unknown, n)))
    F->found = (ir_var *)n;
  return !F->found;
}

static bool contains_var(ir_node *e, const ir_var *v);

typedef struct has_var {
  const ir_var *v;
  bool found;
} has_var;

static bool has_visit(ir_node *n, void *ud) {
  has_var *H = ud;
  if (n == &H->v->h) H->found = true;
  return !H->found;
}

static bool contains_var(ir_node *e, const ir_var *v) {
  has_var H = {v, false};
  ir_visit(e, false, has_visit, &H);
  return H.found;
}

/* The constant coefficient of v in e when e is affine in v (sums, differences and products
 * with constants of subexpressions free of v). */
static bool affine_coef(ir_expr *e, const ir_var *v, int64_t *coef) {
  if (e == &v->h) {
    *coef = 1;
    return true;
  }
  if (!contains_var(e, v)) {
    *coef = 0;
    return true;
  }
  int64_t ca, cb;
  ir_binary *b = ir_as_binary(e);
  if (!b) return false;
  switch (e->kind) {
  case IR_ADD:
  case IR_SUB:
    if (!affine_coef(b->a, v, &ca) || !affine_coef(b->b, v, &cb)) return false;
    *coef = e->kind == IR_ADD ? ca + cb : ca - cb;
    return true;
  case IR_MUL: {
    ir_int_imm *ka = ir_as_int(b->a), *kb = ir_as_int(b->b);
    if (kb && affine_coef(b->a, v, &ca)) {
      *coef = ca * kb->value;
      return true;
    }
    if (ka && affine_coef(b->b, v, &cb)) {
      *coef = cb * ka->value;
      return true;
    }
    return false;
  }
  default:
    return false;
  }
}

/* Replaces the loop variables in dimension d of x by their ranges, or marks the dimension
 * full when it cannot. */
static void relax_dim(detector *D, access *x, int d) {
  for (int step = 0; step < 256 && !x->full[d] && !D->st; step++) {
    find_var F = {D, NULL, false};
    ir_visit(x->mins[d], false, find_visit, &F);
    if (!F.found) ir_visit(x->exts[d], false, find_visit, &F);
    if (F.has_load) {
      x->full[d] = true; /* data-dependent */
      return;
    }
    if (!F.found) return;
    ir_var *v = F.found;
    const ir_for *loop = ir_ptrmap_get(&D->loops, v);
    int64_t coef;
    if (!loop || contains_var(x->exts[d], v) || !affine_coef(x->mins[d], v, &coef) ||
        !ir_dt_eq(loop->extent->dtype, x->mins[d]->dtype)) {
      x->full[d] = true;
      return;
    }
    ir_arena *a = D->a;
    kiln_dtype t = loop->extent->dtype;
    ir_expr *last = ir_sub(a, loop->extent, ir_int(a, t, 1)); /* extent - 1 */
    ir_expr *at = coef >= 0 ? loop->min : ir_add(a, loop->min, last);
    ir_expr *mn = ir_substitute(a, x->mins[d], 1, &v, &at);
    ir_expr *grow = ir_mul(a, ir_int(a, t, coef >= 0 ? coef : -coef), last);
    ir_expr *ext = ir_add(a, x->exts[d], grow);
    if (!mn || !ext) {
      fail_nomem(D);
      return;
    }
    x->mins[d] = mn;
    x->exts[d] = ext;
  }
  if (!x->full[d] && !D->st) {
    /* Loops nested deeper than 256 variables: give up precisely. */
    find_var F = {D, NULL, false};
    ir_visit(x->mins[d], false, find_visit, &F);
    if (F.found) x->full[d] = true;
  }
}

/* ---- Uniting accesses ------------------------------------------------------------------ */

/* The constant value of simplify(x - y), if it is one. */
static bool const_diff(detector *D, ir_expr *x, ir_expr *y, int64_t *out) {
  if (x == y) {
    *out = 0;
    return true;
  }
  if (!ir_dt_eq(x->dtype, y->dtype)) return false;
  ir_expr *d = ir_sub(D->a, x, y);
  ir_expr *s = d ? ir_simplify_expr(D->an, d) : NULL;
  if (!s) {
    fail_nomem(D);
    return false;
  }
  ir_int_imm *k = ir_as_int(s);
  if (!k) return false;
  *out = k->value;
  return true;
}

static ir_expr *simplified(detector *D, ir_expr *e) {
  if (e->kind == IR_INT_IMM || e->kind == IR_VAR) return e;
  ir_expr *s = ir_simplify_expr(D->an, e);
  if (!s) fail_nomem(D);
  return s;
}

/* The region of buf from the accesses of kind `write` at indices first.. (all of buf). */
static ir_region *unite(detector *D, ir_buffer *buf, bool write, int first) {
  int nd = buf->ndim;
  ir_range **ranges = ir_arena_alloc(D->scratch, sizeof *ranges * (size_t)(nd ? nd : 1));
  if (!ranges) {
    fail_nomem(D);
    return NULL;
  }
  for (int d = 0; d < nd && !D->st; d++) {
    const access *x0 = &D->acc[first];
    bool full = x0->n != nd || x0->full[d];
    ir_expr *min0 = full ? NULL : simplified(D, x0->mins[d]);
    ir_expr *ext0 = full ? NULL : simplified(D, x0->exts[d]);
    int64_t lo = 0, hi = 0; /* relative to min0 and ext0 */
    for (int j = first + 1; j < D->naccess && !full && !D->st; j++) {
      const access *x = &D->acc[j];
      if (x->buf != buf || x->write != write) continue;
      int64_t dm, de;
      if (x->n != nd || x->full[d] || !const_diff(D, x->mins[d], min0, &dm) ||
          !const_diff(D, x->exts[d], ext0, &de)) {
        full = true;
        break;
      }
      if (dm < lo) lo = dm;
      if (dm + de > hi) hi = dm + de;
    }
    if (D->st) return NULL;
    ir_expr *mn, *ext;
    if (full) {
      mn = ir_int(D->a, buf->shape[d]->dtype, 0);
      ext = buf->shape[d];
    } else if (lo == 0 && hi == 0) {
      mn = min0;
      ext = ext0;
    } else {
      kiln_dtype t = min0->dtype;
      mn = simplified(D, ir_add(D->a, min0, ir_int(D->a, t, lo)));
      ext = simplified(D, ir_add(D->a, ext0, ir_int(D->a, ext0->dtype, hi - lo)));
    }
    ranges[d] = mn && ext ? ir_range_new(D->a, mn, ext) : NULL;
    if (!ranges[d]) {
      if (!D->st) D->st = D->ctx->code ? D->ctx->code : KILN_ERR_NOMEM;
      return NULL;
    }
  }
  if (D->st) return NULL;
  ir_region *r = ir_region_new(D->a, buf, nd, ranges);
  if (!r && !D->st) D->st = D->ctx->code ? D->ctx->code : KILN_ERR_NOMEM;
  return r;
}

/* The regions of one kind, in first-access order. */
static kiln_status regions_of(detector *D, bool write, int *count, ir_region ***out) {
  int n = 0;
  ir_region **list = NULL;
  for (int i = 0; i < D->naccess; i++) {
    if (D->acc[i].write == write) n++;
  }
  *count = 0;
  *out = NULL;
  if (n == 0) return KILN_OK;
  list = ir_arena_alloc(D->a, sizeof *list * (size_t)n);
  if (!list) return KILN_ERR_NOMEM;
  int k = 0;
  for (int i = 0; i < D->naccess; i++) {
    access *x = &D->acc[i];
    if (x->write != write) continue;
    bool seen = false;
    for (int j = 0; j < i && !seen; j++)
      seen = D->acc[j].write == write && D->acc[j].buf == x->buf;
    if (seen) continue;
    ir_region *r = unite(D, x->buf, write, i);
    if (!r) return D->st ? D->st : KILN_ERR_NOMEM;
    list[k++] = r;
  }
  *count = k;
  *out = list;
  return KILN_OK;
}

kiln_status ir_block_detect_regions(ir_arena *a, const ir_block *blk, int *nreads,
                                    ir_region ***reads, int *nwrites, ir_region ***writes) {
  kiln_context *ctx = a->ctx;
  *nreads = *nwrites = 0;
  *reads = *writes = NULL;
  if (!blk || blk->h.kind != IR_BLOCK)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "detect regions: not a block");
  detector D;
  memset(&D, 0, sizeof D);
  D.a = a;
  D.ctx = ctx;
  ir_ptrmap_init(&D.loops, ctx);
  ir_ptrmap_init(&D.unknown, ctx);
  ir_ptrmap_init(&D.excluded, ctx);
  D.scratch = ir_arena_new(ctx);
  D.an = D.scratch ? ir_analyzer_new(a) : NULL;
  if (!D.an) D.st = KILN_ERR_NOMEM;

  /* What the simplifier may know: the block's iterators stay in their domains. */
  for (int i = 0; i < blk->niters && !D.st; i++) {
    const ir_iter_var *it = blk->iters[i];
    ir_int_imm *mn = ir_as_int(it->min), *ext = ir_as_int(it->extent);
    if (mn && ext && ext->value >= 1 &&
        ir_analyzer_bind(D.an, it->var, (ir_interval){mn->value, mn->value + ext->value - 1}))
      D.st = KILN_ERR_NOMEM;
  }
  for (int i = 0; i < blk->nallocs && !D.st; i++)
    if (ir_ptrmap_put(&D.excluded, blk->allocs[i], (void *)blk)) D.st = KILN_ERR_NOMEM;
  if (!D.st && blk->init) ir_visit(blk->init, false, collect_visit, &D);
  if (!D.st) ir_visit(blk->body, false, collect_visit, &D);
  for (int i = 0; i < D.naccess && !D.st; i++)
    for (int d = 0; d < D.acc[i].n && !D.st; d++)
      if (!D.acc[i].full[d]) relax_dim(&D, &D.acc[i], d);
  kiln_status st = D.st;
  if (!st) st = regions_of(&D, false, nreads, reads);
  if (!st) st = regions_of(&D, true, nwrites, writes);
  if (st) {
    *nreads = *nwrites = 0;
    *reads = *writes = NULL;
    if (st == KILN_ERR_NOMEM && ctx->code != KILN_ERR_NOMEM)
      ir_fail(ctx, blk->h.span, KILN_ERR_NOMEM, "out of memory detecting the regions of block '%s'",
              blk->name);
  }
  ir_analyzer_free(D.an);
  ir_arena_free(D.scratch);
  ir_ptrmap_free(&D.loops);
  ir_ptrmap_free(&D.unknown);
  ir_ptrmap_free(&D.excluded);
  return st;
}

/* ---- Replacing a block's regions ------------------------------------------------------- */

/* Expressions equal node for node (variables by identity): cheap, and enough to see that a
 * detected region is the one a block already has. */
static bool same_expr(const ir_expr *x, const ir_expr *y) {
  if (x == y) return true;
  if (!x || !y || x->kind != y->kind || !ir_dt_eq(x->dtype, y->dtype) || x->hash != y->hash)
    return false;
  if (x->kind == IR_INT_IMM)
    return ((const ir_int_imm *)x)->value == ((const ir_int_imm *)y)->value;
  const ir_binary *bx = ir_as_binary(x), *by = ir_as_binary(y);
  if (bx) return same_expr(bx->a, by->a) && same_expr(bx->b, by->b);
  return false;
}

static bool same_regions(int n, ir_region *const *x, int m, ir_region *const *y) {
  if (n != m) return false;
  for (int i = 0; i < n; i++) {
    if (x[i]->buffer != y[i]->buffer || x[i]->nranges != y[i]->nranges) return false;
    for (int d = 0; d < x[i]->nranges; d++)
      if (!same_expr(x[i]->ranges[d]->min, y[i]->ranges[d]->min) ||
          !same_expr(x[i]->ranges[d]->extent, y[i]->ranges[d]->extent))
        return false;
  }
  return true;
}

ir_block *ir_block_with_detected_regions(ir_arena *a, ir_block *blk) {
  if (!blk) return NULL;
  int nr, nw;
  ir_region **r, **w;
  if (ir_block_detect_regions(a, blk, &nr, &r, &nw, &w)) return NULL;
  if (same_regions(nr, r, blk->nreads, blk->reads) &&
      same_regions(nw, w, blk->nwrites, blk->writes))
    return blk;
  ir_span saved = a->span;
  a->span = blk->h.span;
  ir_block *nb = ir_block_new(a, blk->name, blk->niters, blk->iters, nr, r, nw, w, blk->nallocs,
                              blk->allocs, blk->nannots, blk->annots, blk->init, blk->body);
  a->span = saved;
  return nb;
}

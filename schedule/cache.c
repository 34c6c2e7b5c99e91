/* cache.c: the cache and reduction primitives of a schedule (TensorIR semantics).
 * cache_read / cache_write stage one buffer of a block through a new buffer of a given storage
 * scope, with a copy stage before / after the block's stage; decompose_reduction moves a
 * reduction's init into its own block placed before a loop; storage_align pads the strides of
 * an intermediate buffer. Each checks its preconditions, rebuilds the function (state.c) and
 * records one instruction (schedule.h); the sch_apply_* entries replay them from a trace. */
#include <stdio.h>
#include <string.h>

#include "ir/region.h"
#include "kiln/kiln.h"
#include "schedule/schedule.h"

#define TRY(x)                       \
  do {                               \
    kiln_status st_ = (x);           \
    if (st_) return st_;             \
  } while (0)

/* The status after a constructor returned NULL: the error it recorded (normally NOMEM). */
static kiln_status built_fail(sch_schedule *s) {
  kiln_status c = kiln_context_errcode(s->ctx);
  return c ? c : KILN_ERR_NOMEM;
}

/* The storage scopes a cache buffer may live in. */
static const char *const cache_scopes[] = {"global", "shared", "local"};

static bool valid_scope(const char *scope) {
  for (size_t i = 0; i < sizeof cache_scopes / sizeof cache_scopes[0]; i++)
    if (strcmp(scope, cache_scopes[i]) == 0) return true;
  return false;
}

static bool allocs_have(const ir_block *blk, const ir_buffer *b) {
  for (int i = 0; i < blk->nallocs; i++)
    if (blk->allocs[i] == b) return true;
  return false;
}

static bool regions_have(int n, ir_region *const *rs, const ir_buffer *b) {
  for (int i = 0; i < n; i++)
    if (rs[i]->buffer == b) return true;
  return false;
}

/* Whether a and b are the same expression: one node, one variable or equal integer
 * constants (enough for shapes and the strides made from them; no scratch memory needed). */
static bool same_expr(const ir_expr *a, const ir_expr *b) {
  const ir_int_imm *x = ir_as_int(a), *y = ir_as_int(b);
  return a == b || (x && y && ir_dt_eq(a->dtype, b->dtype) && x->value == y->value);
}

static bool is_true(const ir_expr *e) {
  const ir_int_imm *c = ir_as_int(e);
  return !e || (c && ir_dt_is_bool(e->dtype) && c->value == 1);
}

/* ---- Variables in expressions ------------------------------------------------------------ */

/* Scans an expression for variables: the first one in vars[0..n) (find_any) or the first one
 * not in it (find_other). */
typedef struct var_scan {
  int n;
  ir_var *const *vars;
  bool want_member; /* stop at a member (else at a non-member) */
  const ir_var *hit;
} var_scan;

static bool var_scan_fn(ir_node *n, void *ud) {
  var_scan *v = ud;
  if (v->hit) return false;
  if (n->kind != IR_VAR) return true;
  bool member = false;
  for (int i = 0; i < v->n && !member; i++) member = &v->vars[i]->h == n;
  if (member == v->want_member) v->hit = (const ir_var *)n;
  return false;
}

/* The first variable of vars[0..n) that e uses, or NULL. */
static const ir_var *find_any(const ir_node *e, int n, ir_var *const *vars) {
  var_scan v = {n, vars, true, NULL};
  if (e) ir_visit((ir_node *)e, false, var_scan_fn, &v);
  return v.hit;
}

/* Whether e uses no variable outside vars[0..n). */
static bool only_uses(const ir_node *e, int n, ir_var *const *vars) {
  var_scan v = {n, vars, false, NULL};
  if (e) ir_visit((ir_node *)e, false, var_scan_fn, &v);
  return v.hit == NULL;
}

/* ---- Rewriting ----------------------------------------------------------------------------- */

/* Replaces one statement (found by address) below a statement; the rest is shared. */
typedef struct node_swap {
  const ir_node *old;
  ir_node *repl;
} node_swap;

static ir_node *node_swap_visit(ir_mutator *m, ir_node *n) {
  node_swap *w = m->ud;
  if (n == w->old) return w->repl;
  if (!ir_is_stmt(n)) return n; /* expressions hold no statements */
  return ir_mutate_children(m, n);
}

static ir_stmt *replace_in(ir_arena *a, ir_stmt *root, const ir_stmt *old, ir_stmt *repl) {
  node_swap w = {old, repl};
  ir_mutator m = {.arena = a, .visit = node_swap_visit, .ud = &w};
  return ir_mutate(&m, root);
}

/* Replaces buffer `old` by `repl` in the selected places: loads, stores, read regions,
 * write regions and definitions (block allocs, allocate statements). */
typedef struct buf_swap {
  const ir_buffer *old;
  ir_buffer *repl;
  bool loads, stores, reads, writes, defs;
} buf_swap;

/* regions with old's regions moved to repl (the same array when none is old's); NULL on
 * failure. */
static ir_region **swap_regions(ir_arena *a, const buf_swap *w, int n, ir_region **regions) {
  ir_region **out = regions;
  for (int i = 0; i < n; i++) {
    if (regions[i]->buffer != w->old) continue;
    if (out == regions && !(out = ir_arena_copy_nodes(a, n, (void *const *)regions))) return NULL;
    out[i] = ir_region_new(a, w->repl, regions[i]->nranges, regions[i]->ranges);
    if (!out[i]) return NULL;
  }
  return out;
}

static ir_node *buf_swap_visit(ir_mutator *m, ir_node *n) {
  buf_swap *w = m->ud;
  ir_arena *a = m->arena;
  switch (n->kind) {
  case IR_LOAD: {
    ir_load *x = (ir_load *)ir_mutate_children(m, n);
    if (!x) return NULL;
    if (!w->loads || x->buffer != w->old) return &x->h;
    return ir_load_new(a, w->repl, x->nindices, x->indices);
  }
  case IR_STORE: {
    ir_store *x = (ir_store *)ir_mutate_children(m, n);
    if (!x) return NULL;
    if (!w->stores || x->buffer != w->old) return &x->h;
    return ir_store_new(a, w->repl, x->value, x->nindices, x->indices);
  }
  case IR_ALLOCATE: {
    ir_allocate *x = (ir_allocate *)ir_mutate_children(m, n);
    if (!x) return NULL;
    if (!w->defs || x->buffer != w->old) return &x->h;
    return ir_allocate_new(a, w->repl, x->body);
  }
  case IR_BLOCK: {
    ir_block *b = (ir_block *)n;
    ir_region **reads = w->reads ? swap_regions(a, w, b->nreads, b->reads) : b->reads;
    ir_region **writes = w->writes ? swap_regions(a, w, b->nwrites, b->writes) : b->writes;
    if ((b->nreads && !reads) || (b->nwrites && !writes)) return NULL;
    ir_buffer **allocs = b->allocs;
    if (w->defs && allocs_have(b, w->old)) {
      if (!(allocs = ir_arena_copy_nodes(a, b->nallocs, (void *const *)b->allocs))) return NULL;
      for (int i = 0; i < b->nallocs; i++)
        if (allocs[i] == w->old) allocs[i] = w->repl;
    }
    ir_stmt *init = b->init ? ir_mutate(m, b->init) : NULL;
    ir_stmt *body = ir_mutate(m, b->body);
    if ((b->init && !init) || !body) return NULL;
    if (reads == b->reads && writes == b->writes && allocs == b->allocs && init == b->init &&
        body == b->body)
      return n;
    return &ir_block_new(a, b->name, b->niters, b->iters, b->nreads, reads, b->nwrites, writes,
                         b->nallocs, allocs, b->nannots, b->annots, init, body)->h;
  }
  default: return ir_mutate_children(m, n);
  }
}

static ir_node *swap_buffer(ir_arena *a, ir_node *root, const buf_swap *w) {
  ir_mutator m = {.arena = a, .visit = buf_swap_visit, .ud = (void *)w};
  return ir_mutate(&m, root);
}

/* ---- Where a block sits ---------------------------------------------------------------------- */

/* A block's place in its scope (the nearest enclosing block): the scope's realize, the
 * statements of the scope's body (its stages: the items of a sequence, or the body alone)
 * and the index of the stage holding the block. path[0..scope_at] leads from the function
 * body to the scope's realize. */
typedef struct stage_loc {
  ir_block_realize *scope;
  int nstages;
  ir_stmt **stages;
  int at;
  ir_stmt **path;
  int scope_at;
} stage_loc;

static kiln_status locate(sch_schedule *s, const char *prim, const ir_block_realize *r,
                          stage_loc *L) {
  int n;
  ir_stmt **path;
  TRY(sch_path_to(s, &r->h, &n, &path));
  int k = -1;
  for (int i = n - 2; i >= 0; i--)
    if (path[i]->kind == IR_BLOCK_REALIZE) {
      k = i;
      break;
    }
  if (k < 0 || k + 2 >= n)
    return sch_fail(s, prim, "block '%s' is not inside a root block", r->block->name);
  ir_block *sb = ((ir_block_realize *)path[k])->block;
  if (path[k + 2] != sb->body)
    return sch_fail(s, prim, "block '%s' lies in the init of block '%s'", r->block->name,
                    sb->name);
  L->scope = (ir_block_realize *)path[k];
  L->path = path;
  L->scope_at = k;
  ir_stmt *body = sb->body;
  if (body->kind == IR_SEQ && body != &r->h) {
    ir_seq *sq = (ir_seq *)body;
    L->nstages = sq->nstmts;
    L->stages = sq->stmts;
    L->at = -1;
    for (int i = 0; i < sq->nstmts; i++)
      if (sq->stmts[i] == path[k + 3]) L->at = i;
    if (L->at < 0) return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "%s: lost a stage", prim);
  } else {
    if (!(L->stages = ir_arena_alloc(s->arena, sizeof *L->stages))) return KILN_ERR_NOMEM;
    L->stages[0] = body;
    L->nstages = 1;
    L->at = 0;
  }
  return KILN_OK;
}

/* Whether b is a parameter or allocated above the block's stages (by the scope block, a
 * block enclosing it or an allocate statement around it), so a stage of the scope can use it. */
static bool visible_in_scope(const ir_func *f, const stage_loc *L, const ir_buffer *b) {
  for (int i = 0; i < f->nparams; i++)
    if (f->params[i] == &b->h) return true;
  for (int i = 0; i <= L->scope_at; i++) {
    const ir_stmt *st = L->path[i];
    if (st->kind == IR_BLOCK_REALIZE && allocs_have(((const ir_block_realize *)st)->block, b))
      return true;
    if (st->kind == IR_ALLOCATE && ((const ir_allocate *)st)->buffer == b) return true;
  }
  return false;
}

/* The first block realize in st (st included, nested blocks' own blocks not) other than
 * `skip` that writes (or reads) buf. */
typedef struct access_probe {
  const ir_buffer *buf;
  const ir_block_realize *skip;
  bool writes;
  const ir_block *hit;
} access_probe;

static bool access_probe_fn(ir_node *n, void *ud) {
  access_probe *p = ud;
  if (p->hit || !ir_is_stmt(n)) return false;
  if (n->kind != IR_BLOCK_REALIZE) return true;
  const ir_block_realize *r = (const ir_block_realize *)n;
  const ir_block *b = r->block;
  if (r != p->skip && (p->writes ? regions_have(b->nwrites, b->writes, p->buf)
                                 : regions_have(b->nreads, b->reads, p->buf)))
    p->hit = b;
  return false;
}

static const ir_block *stage_access(ir_stmt *st, const ir_buffer *buf, bool writes,
                                    const ir_block_realize *skip) {
  access_probe p = {buf, skip, writes, NULL};
  ir_visit(st, false, access_probe_fn, &p);
  return p.hit;
}

/* ---- Building stages ----------------------------------------------------------------------- */

/* A stage copying dst[v] = src[v] for v in the box [mins[d], mins[d] + exts[d]): loops
 * ax0.. from 0 over the extents around a spatial block `name` whose iterators v0.. are bound
 * to min + ax. src and dst have the same shape and dtype. */
static ir_stmt *copy_stage(sch_schedule *s, const char *name, ir_buffer *src, ir_buffer *dst,
                           ir_expr *const *mins, ir_expr *const *exts) {
  ir_arena *a = s->arena;
  int nd = src->ndim;
  int cap = nd ? nd : 1;
  ir_var **loops = ir_arena_alloc(a, sizeof *loops * (size_t)cap);
  ir_iter_var **iters = ir_arena_alloc(a, sizeof *iters * (size_t)cap);
  ir_expr **values = ir_arena_alloc(a, sizeof *values * (size_t)cap);
  ir_expr **idx = ir_arena_alloc(a, sizeof *idx * (size_t)cap);
  ir_range **pts = ir_arena_alloc(a, sizeof *pts * (size_t)cap);
  if (!loops || !iters || !values || !idx || !pts) return NULL;
  for (int d = 0; d < nd; d++) {
    char nm[32];
    kiln_dtype t = exts[d]->dtype;
    snprintf(nm, sizeof nm, "ax%d", d);
    loops[d] = ir_var_new(a, nm, t);
    snprintf(nm, sizeof nm, "v%d", d);
    ir_var *v = ir_var_new(a, nm, t);
    iters[d] = ir_iter_var_new(a, v, mins[d], exts[d], IR_ITER_SPATIAL);
    const ir_int_imm *m0 = ir_as_int(mins[d]);
    values[d] = m0 && m0->value == 0 ? &loops[d]->h : ir_add(a, mins[d], &loops[d]->h);
    idx[d] = v ? &v->h : NULL;
    pts[d] = ir_range_new(a, idx[d], ir_int(a, t, 1));
    if (!values[d] || !iters[d] || !pts[d]) return NULL;
  }
  ir_region *rd = ir_region_new(a, src, nd, pts);
  ir_region *wr = ir_region_new(a, dst, nd, pts);
  ir_stmt *body = ir_store_new(a, dst, ir_load_new(a, src, nd, idx), nd, idx);
  if (!rd || !wr || !body) return NULL;
  ir_block *blk = ir_block_new(a, name, nd, iters, 1, &rd, 1, &wr, 0, NULL, 0, NULL, NULL, body);
  ir_stmt *st = ir_block_realize_new(a, nd, values, NULL, blk);
  for (int d = nd - 1; d >= 0 && st; d--)
    st = ir_for_new(a, loops[d], ir_int(a, exts[d]->dtype, 0), exts[d], IR_FOR_SERIAL, 0, NULL,
                    st);
  return st;
}

/* The scope's realize rebuilt with `extra` allocated by its block and its stages replaced by
 * stages[0..n) (n >= 1). */
static ir_stmt *rebuild_scope(sch_schedule *s, const ir_block_realize *scope, ir_buffer *extra,
                              int n, ir_stmt **stages) {
  ir_arena *a = s->arena;
  const ir_block *b = scope->block;
  ir_buffer **allocs = ir_arena_alloc(a, sizeof *allocs * (size_t)(b->nallocs + 1));
  if (!allocs) return NULL;
  for (int i = 0; i < b->nallocs; i++) allocs[i] = b->allocs[i];
  allocs[b->nallocs] = extra;
  ir_stmt *body = n == 1 ? stages[0] : ir_seq_new(a, n, stages);
  ir_block *nb = ir_block_new(a, b->name, b->niters, b->iters, b->nreads, b->reads, b->nwrites,
                              b->writes, b->nallocs + 1, allocs, b->nannots, b->annots, b->init,
                              body);
  return ir_block_realize_new(a, scope->nvalues, scope->values, scope->predicate, nb);
}

/* A new buffer like b (shape, dtype) in `scope`, dense, called name. */
static ir_buffer *cache_buffer(sch_schedule *s, const ir_buffer *b, const char *name,
                               const char *scope) {
  return ir_buffer_new(s->arena, name, b->h.dtype, b->ndim, b->shape, 0, NULL, NULL, 0, scope);
}

/* "<buffer>_<scope>", made unique among the function's blocks and buffers (the cache buffer
 * and its copy block share it). */
static const char *cache_name(sch_schedule *s, const ir_buffer *b, const char *scope) {
  char base[256];
  snprintf(base, sizeof base, "%.200s_%.40s", b->name, scope);
  return sch_fresh_name(s, base);
}

/* Shared checks of cache_read and cache_write: the index is in range, the scope known, the
 * buffer not the block's own and visible at the stages of the block's scope. */
static kiln_status cache_checks(sch_schedule *s, const char *prim, const ir_block_realize *r,
                                int index, bool reads, const char *scope, stage_loc *L,
                                ir_buffer **buf) {
  const ir_block *blk = r->block;
  int n = reads ? blk->nreads : blk->nwrites;
  if (index < 0 || index >= n)
    return sch_fail(s, prim, "%s_index %d is out of range: block '%s' has %d %s regions",
                    reads ? "read" : "write", index, blk->name, n, reads ? "read" : "write");
  if (!valid_scope(scope))
    return sch_fail(s, prim, "unknown storage scope '%s' (expected \"global\", \"shared\" or "
                    "\"local\")", scope);
  ir_buffer *b = (reads ? blk->reads : blk->writes)[index]->buffer;
  if (allocs_have(blk, b))
    return sch_fail(s, prim, "buffer '%s' is allocated by block '%s' itself", b->name, blk->name);
  TRY(locate(s, prim, r, L));
  if (!visible_in_scope(s->func, L, b))
    return sch_fail(s, prim, "buffer '%s' is allocated inside the scope of block '%s' (the "
                    "copy stage could not see it)", b->name, blk->name);
  *buf = b;
  return KILN_OK;
}

/* ---- cache_read ------------------------------------------------------------------------------ */

/* cache_read(block, read_index, scope): block reads the buffer of its read region read_index
 * through a new buffer `<buffer>_<scope>` (same shape and dtype, allocated by the block's
 * scope block) filled by a new copy block of the same name, a stage copying the whole buffer.
 * The copy stage goes right before the first stage of the scope that reads the buffer after
 * its last writer preceding the block's stage (before the block's own stage at the latest).
 * Only this block's accesses are redirected (nested blocks' included); other readers keep
 * reading the original. Scopes: "global", "shared", "local". Preconditions: the block does not
 * allocate or write the buffer, no other block of its stage writes it, the buffer is visible at
 * the scope's stages. Inputs: [block, read_index, scope]; output: the copy block. */
kiln_status sch_cache_read(sch_schedule *s, sch_rv block, int read_index, const char *scope,
                           sch_rv *out) {
  if (!s) return KILN_ERR_MISUSE;
  if (!scope || !out)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "cache_read: no scope or output given");
  const char *prim = "cache_read";
  ir_block_realize *r;
  TRY(sch_get_realize(s, prim, block, &r));
  const ir_block *blk = r->block;
  stage_loc L;
  ir_buffer *buf;
  TRY(cache_checks(s, prim, r, read_index, true, scope, &L, &buf));
  if (regions_have(blk->nwrites, blk->writes, buf))
    return sch_fail(s, prim, "block '%s' also writes buffer '%s' (cache_read needs a buffer the "
                    "block only reads)", blk->name, buf->name);
  const ir_block *w = stage_access(L.stages[L.at], buf, true, r);
  if (w)
    return sch_fail(s, prim, "block '%s' writes buffer '%s' in the same loop nest as block '%s', "
                    "so a copy made before that nest would be stale", w->name, buf->name,
                    blk->name);
  /* The copy goes after the last earlier writer, before the first reader after it. */
  int last_writer = -1;
  for (int i = 0; i < L.at; i++)
    if (stage_access(L.stages[i], buf, true, NULL)) last_writer = i;
  int pos = L.at;
  for (int i = last_writer + 1; i < L.at; i++)
    if (stage_access(L.stages[i], buf, false, NULL)) {
      pos = i;
      break;
    }

  ir_arena *a = s->arena;
  const char *name = cache_name(s, buf, scope);
  if (!name) return KILN_ERR_NOMEM;
  ir_buffer *cache = cache_buffer(s, buf, name, scope);
  if (!cache) return built_fail(s);
  int nd = buf->ndim;
  ir_expr **mins = ir_arena_alloc(a, sizeof *mins * (size_t)(nd ? nd : 1));
  if (!mins) return KILN_ERR_NOMEM;
  for (int d = 0; d < nd; d++)
    if (!(mins[d] = ir_int(a, buf->shape[d]->dtype, 0))) return built_fail(s);
  ir_stmt *copy = copy_stage(s, name, buf, cache, mins, buf->shape);
  if (!copy) return built_fail(s);
  buf_swap sw = {.old = buf, .repl = cache, .loads = true, .reads = true};
  ir_stmt *nr = swap_buffer(a, &r->h, &sw);
  ir_stmt *nstage = nr ? replace_in(a, L.stages[L.at], &r->h, nr) : NULL;
  ir_stmt **stages = ir_arena_alloc(a, sizeof *stages * (size_t)(L.nstages + 1));
  if (!nstage || !stages) return built_fail(s);
  int k = 0;
  for (int i = 0; i < L.nstages; i++) {
    if (i == pos) stages[k++] = copy;
    stages[k++] = i == L.at ? nstage : L.stages[i];
  }
  ir_stmt *nscope = rebuild_scope(s, L.scope, cache, k, stages);
  if (!nscope) return built_fail(s);
  ir_func *saved = s->func;
  TRY(sch_replace(s, &L.scope->h, nscope));
  sch_rv rv = sch_new_block_rv(s, name);
  sch_arg in[3] = {sch_arg_rv(s, block), sch_arg_int(read_index), sch_arg_str(scope)};
  kiln_status st = rv == SCH_RV_NONE ? KILN_ERR_NOMEM
                                     : sch_record(s, SCH_INST_CACHE_READ, 3, in, 1, &rv, -1, NULL);
  if (st) {
    s->func = saved;
    return st;
  }
  *out = rv;
  return KILN_OK;
}

/* Decodes [block, index, scope] of cache_read / cache_write. */
static kiln_status decode_cache(sch_schedule *s, const char *prim, int ninputs,
                                const sch_arg *inputs, sch_rv *block, int *idx) {
  if (ninputs != 3 || inputs[1].kind != SCH_ARG_INT || inputs[2].kind != SCH_ARG_STR ||
      inputs[1].i < INT32_MIN || inputs[1].i > INT32_MAX)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: %s takes a block, a region index and a scope", prim);
  TRY(sch_input_rv(s, &inputs[0], SCH_RV_BLOCK, block));
  *idx = (int)inputs[1].i;
  return KILN_OK;
}

kiln_status sch_apply_cache_read(sch_schedule *s, int ninputs, const sch_arg *inputs,
                                 int ndecision, const int64_t *decision, sch_rv *outputs,
                                 int *noutputs) {
  (void)ndecision, (void)decision;
  sch_rv b;
  int idx = 0;
  TRY(decode_cache(s, "cache_read", ninputs, inputs, &b, &idx));
  *noutputs = 1;
  return sch_cache_read(s, b, idx, inputs[2].s, &outputs[0]);
}

/* ---- cache_write ----------------------------------------------------------------------------- */

/* Known ranges of variables while bounding a written region. */
typedef struct known_vars {
  int n;
  ir_var **vars;
} known_vars;

/* The bounds of e if every variable in it has a known range; false otherwise. */
static bool known_bound(ir_analyzer *an, const known_vars *kv, const ir_expr *e,
                        ir_interval *out) {
  if (!only_uses(e, kv->n, kv->vars)) return false;
  *out = ir_bound_of(an, e);
  return out->min != INT64_MIN && out->max != INT64_MAX;
}

/* Whether dimension d of region wr of realize r covers the whole buffer dimension in an
 * unscheduled stage: the range is [v, 1] for an iterator v with domain [0, shape[d]) bound to
 * a loop over [0, shape[d]), and the block has no predicate. The fallback for symbolic shapes. */
static bool covers_whole_dim(const ir_block_realize *r, int nloops,
                             ir_for *const *loops, const ir_region *wr, int d) {
  const ir_range *rg = wr->ranges[d];
  const ir_expr *shape = wr->buffer->shape[d];
  const ir_int_imm *one = ir_as_int(rg->extent);
  if (!one || one->value != 1 || rg->min->kind != IR_VAR || !is_true(r->predicate)) return false;
  const ir_block *b = r->block;
  for (int i = 0; i < b->niters; i++) {
    const ir_iter_var *it = b->iters[i];
    if (&it->var->h != rg->min) continue;
    const ir_int_imm *m0 = ir_as_int(it->min);
    if (!m0 || m0->value != 0 || !same_expr(it->extent, shape)) return false;
    for (int j = 0; j < nloops; j++) {
      const ir_for *f = loops[j];
      const ir_int_imm *f0 = ir_as_int(f->min);
      if (&f->var->h == r->values[i] && f0 && f0->value == 0 && same_expr(f->extent, shape))
        return true;
    }
    return false;
  }
  return false;
}

/* The box of wr's buffer that realize r writes through region wr over all iterations of the
 * loops around it (up to its scope): per dimension a min and an extent. Iterators range over
 * their domain intersected with the bounds of their binding; dimensions with constant extent
 * are clipped to the buffer. A dimension that cannot be bounded this way is the whole
 * dimension when covers_whole_dim says so, an error otherwise. */
static kiln_status written_box(sch_schedule *s, const ir_block_realize *r, const ir_region *wr,
                               ir_expr **mins, ir_expr **exts) {
  ir_arena *a = s->arena;
  const ir_block *b = r->block;
  int nl;
  ir_for **loops;
  TRY(sch_loops_around(s, &r->h, &nl, &loops));
  known_vars kv = {0, ir_arena_alloc(a, sizeof(ir_var *) * (size_t)(nl + b->niters + 1))};
  if (!kv.vars) return KILN_ERR_NOMEM;
  ir_analyzer *an = ir_analyzer_new(a);
  if (!an) return KILN_ERR_NOMEM;
  kiln_status st = KILN_OK;
  for (int i = 0; i < nl && !st; i++) {
    ir_interval lo, ext;
    if (!known_bound(an, &kv, loops[i]->min, &lo) || !known_bound(an, &kv, loops[i]->extent, &ext))
      continue;
    int64_t hi;
    if (ext.max < 1 || __builtin_add_overflow(lo.max, ext.max - 1, &hi)) continue;
    if (!(st = ir_analyzer_bind(an, loops[i]->var, (ir_interval){lo.min, hi})))
      kv.vars[kv.n++] = loops[i]->var;
  }
  /* Iterators: domain (when constant) intersected with the binding's bounds (when known). */
  int nloopvars = kv.n;
  for (int i = 0; i < b->niters && !st; i++) {
    const ir_iter_var *it = b->iters[i];
    ir_interval dmin, dext, bind, rng = IR_INTERVAL_EVERYTHING;
    known_vars none = {0, NULL};
    bool dom = known_bound(an, &none, it->min, &dmin) && known_bound(an, &none, it->extent, &dext);
    known_vars lv = {nloopvars, kv.vars};
    bool bnd = known_bound(an, &lv, r->values[i], &bind);
    if (!dom && !bnd) continue;
    if (dom) rng = (ir_interval){dmin.min, dmin.max + dext.max - 1};
    if (bnd) {
      if (bind.min > rng.min) rng.min = bind.min;
      if (bind.max < rng.max) rng.max = bind.max;
    }
    if (!(st = ir_analyzer_bind(an, it->var, rng))) kv.vars[kv.n++] = it->var;
  }
  /* Only iterators may appear in regions: drop the loop variables from the known set. */
  known_vars iv = {kv.n - nloopvars, kv.vars + nloopvars};
  for (int d = 0; d < wr->nranges && !st; d++) {
    const ir_range *rg = wr->ranges[d];
    kiln_dtype t = wr->buffer->shape[d]->dtype;
    ir_interval lo, ext;
    if (known_bound(an, &iv, rg->min, &lo) && known_bound(an, &iv, rg->extent, &ext)) {
      int64_t first = lo.min, last = lo.max + ext.max - 1;
      const ir_int_imm *dim = ir_as_int(wr->buffer->shape[d]);
      if (first < 0 && dim) first = 0;
      if (dim && last > dim->value - 1) last = dim->value - 1;
      if (last < first) last = first - 1; /* writes nothing there */
      mins[d] = ir_int(a, t, first);
      exts[d] = ir_int(a, t, last - first + 1);
      if (!mins[d] || !exts[d]) st = built_fail(s);
    } else if (covers_whole_dim(r, nl, loops, wr, d)) {
      if (!(mins[d] = ir_int(a, t, 0))) st = built_fail(s);
      exts[d] = wr->buffer->shape[d];
    } else {
      st = sch_fail(s, "cache_write", "cannot bound the part of buffer '%s' that block '%s' "
                    "writes in dimension %d (its index depends on values unknown here)",
                    wr->buffer->name, b->name, d);
    }
  }
  ir_analyzer_free(an);
  return st;
}

/* cache_write(block, write_index, scope): block writes the buffer of its write region
 * write_index into a new buffer `<buffer>_<scope>` (same shape and dtype, allocated by the
 * scope block; its reads of the buffer, a reduction's accumulator, go to the cache too), and a
 * new block of the same name, a stage right after the block's stage, copies the cache back
 * over the box the block writes (the whole buffer for an op's output). Scopes as cache_read.
 * Preconditions: the block is the only writer of the buffer in its scope, does not allocate
 * it, reads it only after its init wrote it (a reduction) or not at all, no other block of its
 * stage reads it, the written box can be bounded. Inputs: [block, write_index, scope];
 * output: the write-back block. */
kiln_status sch_cache_write(sch_schedule *s, sch_rv block, int write_index, const char *scope,
                            sch_rv *out) {
  if (!s) return KILN_ERR_MISUSE;
  if (!scope || !out)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "cache_write: no scope or output given");
  const char *prim = "cache_write";
  ir_block_realize *r;
  TRY(sch_get_realize(s, prim, block, &r));
  const ir_block *blk = r->block;
  stage_loc L;
  ir_buffer *buf;
  TRY(cache_checks(s, prim, r, write_index, false, scope, &L, &buf));
  int nw;
  ir_block_realize **writers;
  TRY(sch_writers_of(s, L.scope, buf, &nw, &writers));
  for (int i = 0; i < nw; i++)
    if (writers[i] != r)
      return sch_fail(s, prim, "block '%s' also writes buffer '%s' (cache_write needs block "
                      "'%s' to be its only writer)", writers[i]->block->name, buf->name,
                      blk->name);
  if (regions_have(blk->nreads, blk->reads, buf) && !blk->init)
    return sch_fail(s, prim, "block '%s' reads buffer '%s' without an init writing it first, so "
                    "the cache would start without the buffer's contents", blk->name, buf->name);
  const ir_block *rd = stage_access(L.stages[L.at], buf, false, r);
  if (rd)
    return sch_fail(s, prim, "block '%s' reads buffer '%s' in the same loop nest as block '%s', "
                    "before the cache is written back", rd->name, buf->name, blk->name);

  ir_arena *a = s->arena;
  int nd = buf->ndim;
  ir_expr **mins = ir_arena_alloc(a, sizeof *mins * (size_t)(nd ? nd : 1));
  ir_expr **exts = ir_arena_alloc(a, sizeof *exts * (size_t)(nd ? nd : 1));
  if (!mins || !exts) return KILN_ERR_NOMEM;
  TRY(written_box(s, r, blk->writes[write_index], mins, exts));
  const char *name = cache_name(s, buf, scope);
  if (!name) return KILN_ERR_NOMEM;
  ir_buffer *cache = cache_buffer(s, buf, name, scope);
  if (!cache) return built_fail(s);
  ir_stmt *copy = copy_stage(s, name, cache, buf, mins, exts);
  if (!copy) return built_fail(s);
  buf_swap sw = {.old = buf, .repl = cache, .loads = true, .stores = true, .reads = true,
                 .writes = true};
  ir_stmt *nr = swap_buffer(a, &r->h, &sw);
  ir_stmt *nstage = nr ? replace_in(a, L.stages[L.at], &r->h, nr) : NULL;
  ir_stmt **stages = ir_arena_alloc(a, sizeof *stages * (size_t)(L.nstages + 1));
  if (!nstage || !stages) return built_fail(s);
  int k = 0;
  for (int i = 0; i < L.nstages; i++) {
    stages[k++] = i == L.at ? nstage : L.stages[i];
    if (i == L.at) stages[k++] = copy;
  }
  ir_stmt *nscope = rebuild_scope(s, L.scope, cache, k, stages);
  if (!nscope) return built_fail(s);
  ir_func *saved = s->func;
  TRY(sch_replace(s, &L.scope->h, nscope));
  sch_rv rv = sch_new_block_rv(s, name);
  sch_arg in[3] = {sch_arg_rv(s, block), sch_arg_int(write_index), sch_arg_str(scope)};
  kiln_status st = rv == SCH_RV_NONE ? KILN_ERR_NOMEM
                                     : sch_record(s, SCH_INST_CACHE_WRITE, 3, in, 1, &rv, -1, NULL);
  if (st) {
    s->func = saved;
    return st;
  }
  *out = rv;
  return KILN_OK;
}

kiln_status sch_apply_cache_write(sch_schedule *s, int ninputs, const sch_arg *inputs,
                                  int ndecision, const int64_t *decision, sch_rv *outputs,
                                  int *noutputs) {
  (void)ndecision, (void)decision;
  sch_rv b;
  int idx = 0;
  TRY(decode_cache(s, "cache_write", ninputs, inputs, &b, &idx));
  *noutputs = 1;
  return sch_cache_write(s, b, idx, inputs[2].s, &outputs[0]);
}

/* ---- decompose_reduction ------------------------------------------------------------------- */

/* The conjuncts of an && tree, appended to out (room for as many as e has nodes). */
static void conjuncts(ir_expr *e, int *n, ir_expr **out) {
  if (e->kind == IR_AND) {
    conjuncts(((ir_binary *)e)->a, n, out);
    conjuncts(((ir_binary *)e)->b, n, out);
  } else {
    out[(*n)++] = e;
  }
}

static int count_and(const ir_expr *e) {
  return e->kind == IR_AND ? count_and(((const ir_binary *)e)->a) +
                                 count_and(((const ir_binary *)e)->b)
                           : 1;
}

/* Whether a buffer in allocs is loaded or stored in st. */
typedef struct alloc_probe {
  const ir_block *blk;
  const ir_buffer *hit;
} alloc_probe;

static bool alloc_probe_fn(ir_node *n, void *ud) {
  alloc_probe *p = ud;
  if (p->hit) return false;
  const ir_buffer *b = n->kind == IR_LOAD    ? ((ir_load *)n)->buffer
                       : n->kind == IR_STORE ? ((ir_store *)n)->buffer
                                             : NULL;
  if (b && allocs_have(p->blk, b)) p->hit = b;
  return true;
}

/* decompose_reduction(block, loop): block is a reduction (has an init; the verifier makes
 * sure it then has a reduce iterator) and loop one of its loops (get_loops). The init becomes
 * its own block `<block>_init` placed right before `loop`, under the loops outside `loop`:
 * its iterators are the block's spatial ones, bound as in the block, with fresh loops
 * `<loop>_init` (same range and kind) for the loops at or inside `loop` that the spatial
 * bindings use; reduce iterators take their domain start (where the init used to run). The
 * block loses its init. Preconditions: no loop outside `loop` is bound to a reduce iterator
 * (the init would run inside the reduction), only loops (and sequences) lie between `loop`
 * and the block, the init touches no buffer the block allocates, no predicate conjunct ties a
 * kept loop to one the init does not get. Inputs: [block, loop]; output: the init block. */
kiln_status sch_decompose_reduction(sch_schedule *s, sch_rv block, sch_rv loop, sch_rv *out) {
  if (!s) return KILN_ERR_MISUSE;
  if (!out)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "decompose_reduction: no output given");
  const char *prim = "decompose_reduction";
  ir_block_realize *r;
  ir_for *lp;
  TRY(sch_get_realize(s, prim, block, &r));
  TRY(sch_get_for(s, prim, loop, &lp));
  ir_block *blk = r->block;
  if (!blk->init)
    return sch_fail(s, prim, "block '%s' is not a reduction block (it has no init)", blk->name);
  int nl;
  ir_for **loops;
  TRY(sch_loops_around(s, &r->h, &nl, &loops));
  int li = -1;
  for (int i = 0; i < nl; i++)
    if (loops[i] == lp) li = i;
  if (li < 0)
    return sch_fail(s, prim, "loop '%s' is not one of the loops around block '%s' (it must be "
                    "among those get_loops returns)", lp->var->name, blk->name);
  for (int j = 0; j < li; j++)
    for (int i = 0; i < blk->niters; i++)
      if (blk->iters[i]->iter_type == IR_ITER_REDUCE &&
          find_any(r->values[i], 1, &loops[j]->var))
        return sch_fail(s, prim, "loop '%s' lies outside loop '%s' and is bound to reduce "
                        "iterator '%s' of block '%s' (the init would run inside the reduction)",
                        loops[j]->var->name, lp->var->name, blk->iters[i]->var->name, blk->name);
  /* Only loops and sequences between `loop` and the block. */
  int np;
  ir_stmt **path;
  TRY(sch_path_to(s, &r->h, &np, &path));
  int pl = -1;
  for (int i = 0; i < np; i++)
    if (path[i] == &lp->h) pl = i;
  for (int i = pl + 1; i < np - 1; i++)
    if (path[i]->kind != IR_FOR && path[i]->kind != IR_SEQ)
      return sch_fail(s, prim, "a %s statement lies between loop '%s' and block '%s'",
                      ir_kind_name(path[i]->kind), lp->var->name, blk->name);
  alloc_probe ap = {blk, NULL};
  ir_visit(blk->init, false, alloc_probe_fn, &ap);
  if (ap.hit)
    return sch_fail(s, prim, "the init of block '%s' uses buffer '%s', which the block "
                    "allocates", blk->name, ap.hit->name);

  ir_arena *a = s->arena;
  int nit = blk->niters, ninner = nl - li;
  ir_for **inner = loops + li;
  /* Loops at or inside `loop` that a spatial binding uses get a fresh copy; so do unit loops
   * no binding uses (a tile of 1 simplified out of the bindings), so that the init's loop
   * nest has the same shape whatever the tile sizes (a re-sampled trace then replays). */
  ir_var **old_lv = ir_arena_alloc(a, sizeof *old_lv * (size_t)(ninner + 1));
  ir_expr **new_lv = ir_arena_alloc(a, sizeof *new_lv * (size_t)(ninner + 1));
  ir_for **kept = ir_arena_alloc(a, sizeof *kept * (size_t)(ninner + 1));
  ir_var **dropped = ir_arena_alloc(a, sizeof *dropped * (size_t)(ninner + 1));
  if (!old_lv || !new_lv || !kept || !dropped) return KILN_ERR_NOMEM;
  int nkept = 0, ndropped = 0;
  for (int j = 0; j < ninner; j++) {
    bool used = false;
    for (int i = 0; i < nit && !used; i++)
      used = blk->iters[i]->iter_type == IR_ITER_SPATIAL &&
             find_any(r->values[i], 1, &inner[j]->var);
    if (!used) {
      bool any = false;
      for (int i = 0; i < nit && !any; i++) any = find_any(r->values[i], 1, &inner[j]->var);
      const ir_int_imm *ext = ir_as_int(inner[j]->extent);
      used = !any && ext && ext->value == 1 && !find_any(r->predicate, 1, &inner[j]->var);
    }
    if (!used) {
      dropped[ndropped++] = inner[j]->var;
      continue;
    }
    char nm[256];
    snprintf(nm, sizeof nm, "%.240s_init", inner[j]->var->name);
    ir_var *v = ir_var_new(a, nm, inner[j]->var->h.dtype);
    if (!v) return built_fail(s);
    kept[nkept] = inner[j];
    old_lv[nkept] = inner[j]->var;
    new_lv[nkept++] = &v->h;
  }
  for (int j = 0; j < nkept; j++) {
    const ir_var *d = find_any(kept[j]->min, ndropped, dropped);
    if (!d) d = find_any(kept[j]->extent, ndropped, dropped);
    if (d)
      return sch_fail(s, prim, "the range of loop '%s' depends on loop '%s', which the init of "
                      "block '%s' does not iterate over", kept[j]->var->name, d->name, blk->name);
  }
  /* The predicate: conjuncts over kept or outer loops stay; those over dropped loops only
   * (the reduction's) go. */
  int ncj = 0;
  ir_expr **cj = ir_arena_alloc(a, sizeof *cj * (size_t)count_and(r->predicate));
  if (!cj) return KILN_ERR_NOMEM;
  conjuncts(r->predicate, &ncj, cj);
  ir_expr *pred = NULL;
  for (int i = 0; i < ncj; i++) {
    const ir_var *d = find_any(cj[i], ndropped, dropped);
    const ir_var *k = find_any(cj[i], nkept, old_lv);
    if (d && k)
      return sch_fail(s, prim, "the predicate of block '%s' ties loop '%s' of the init to loop "
                      "'%s' of the reduction", blk->name, k->name, d->name);
    if (d || is_true(cj[i])) continue;
    ir_expr *c = (ir_expr *)ir_substitute(a, cj[i], nkept, old_lv, new_lv);
    pred = !c ? NULL : pred ? ir_binop(a, IR_AND, pred, c) : c;
    if (!pred) return built_fail(s);
  }
  /* The init block: spatial iterators renewed, reduce iterators at their domain start. */
  ir_iter_var **iters = ir_arena_alloc(a, sizeof *iters * (size_t)(nit + 1));
  ir_expr **values = ir_arena_alloc(a, sizeof *values * (size_t)(nit + 1));
  ir_var **old_iv = ir_arena_alloc(a, sizeof *old_iv * (size_t)(nit + 1));
  ir_expr **new_iv = ir_arena_alloc(a, sizeof *new_iv * (size_t)(nit + 1));
  if (!iters || !values || !old_iv || !new_iv) return KILN_ERR_NOMEM;
  int nsp = 0;
  for (int i = 0; i < nit; i++) {
    const ir_iter_var *it = blk->iters[i];
    old_iv[i] = it->var;
    if (it->iter_type == IR_ITER_REDUCE) {
      new_iv[i] = it->min;
      continue;
    }
    ir_var *v = ir_var_new(a, it->var->name, it->var->h.dtype);
    if (!v) return built_fail(s);
    new_iv[i] = &v->h;
    iters[nsp] = ir_iter_var_new(a, v, it->min, it->extent, IR_ITER_SPATIAL);
    values[nsp] = (ir_expr *)ir_substitute(a, r->values[i], nkept, old_lv, new_lv);
    if (!iters[nsp] || !values[nsp]) return built_fail(s);
    nsp++;
  }
  ir_stmt *ibody = (ir_stmt *)ir_substitute(a, blk->init, nit, old_iv, new_iv);
  if (!ibody) return built_fail(s);
  char base[256];
  snprintf(base, sizeof base, "%.240s_init", blk->name);
  const char *iname = sch_fresh_name(s, base);
  if (!iname) return KILN_ERR_NOMEM;
  ir_block *ib = ir_block_new(a, iname, nsp, iters, 0, NULL, 0, NULL, 0, NULL, 0, NULL, NULL,
                              ibody);
  ib = ir_block_with_detected_regions(a, ib);
  ir_stmt *init = ir_block_realize_new(a, nsp, values, pred, ib);
  for (int j = nkept - 1; j >= 0 && init; j--) {
    const ir_for *f = kept[j];
    ir_expr *mn = (ir_expr *)ir_substitute(a, f->min, nkept, old_lv, new_lv);
    ir_expr *ex = (ir_expr *)ir_substitute(a, f->extent, nkept, old_lv, new_lv);
    init = ir_for_new(a, (ir_var *)new_lv[j], mn, ex, f->for_kind, f->nannots, f->annots, init);
  }
  if (!init) return built_fail(s);
  /* The block without its init, and the init nest right before `loop`. */
  ir_block *nb = ir_block_new(a, blk->name, nit, blk->iters, blk->nreads, blk->reads,
                              blk->nwrites, blk->writes, blk->nallocs, blk->allocs, blk->nannots,
                              blk->annots, NULL, blk->body);
  ir_stmt *nr = nb ? ir_block_realize_new(a, r->nvalues, r->values, r->predicate, nb) : NULL;
  ir_stmt *nloop = nr ? replace_in(a, &lp->h, &r->h, nr) : NULL;
  if (!nloop) return built_fail(s);
  ir_stmt *old, *repl;
  if (pl > 0 && path[pl - 1]->kind == IR_SEQ) {
    ir_seq *sq = (ir_seq *)path[pl - 1];
    ir_stmt **items = ir_arena_alloc(a, sizeof *items * (size_t)(sq->nstmts + 1));
    if (!items) return KILN_ERR_NOMEM;
    int k = 0;
    for (int i = 0; i < sq->nstmts; i++) {
      if (sq->stmts[i] == &lp->h) {
        items[k++] = init;
        items[k++] = nloop;
      } else {
        items[k++] = sq->stmts[i];
      }
    }
    old = &sq->h;
    repl = ir_seq_new(a, k, items);
  } else {
    ir_stmt *two[2] = {init, nloop};
    old = &lp->h;
    repl = ir_seq_new(a, 2, two);
  }
  if (!repl) return built_fail(s);
  ir_func *saved = s->func;
  TRY(sch_replace(s, old, repl));
  sch_rv rv = sch_new_block_rv(s, iname);
  sch_arg in[2] = {sch_arg_rv(s, block), sch_arg_rv(s, loop)};
  kiln_status st = rv == SCH_RV_NONE
                       ? KILN_ERR_NOMEM
                       : sch_record(s, SCH_INST_DECOMPOSE_REDUCTION, 2, in, 1, &rv, -1, NULL);
  if (st) {
    s->func = saved;
    return st;
  }
  *out = rv;
  return KILN_OK;
}

kiln_status sch_apply_decompose_reduction(sch_schedule *s, int ninputs, const sch_arg *inputs,
                                          int ndecision, const int64_t *decision,
                                          sch_rv *outputs, int *noutputs) {
  (void)ndecision, (void)decision;
  if (ninputs != 2)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: decompose_reduction takes a block and a loop");
  sch_rv b, l;
  TRY(sch_input_rv(s, &inputs[0], SCH_RV_BLOCK, &b));
  TRY(sch_input_rv(s, &inputs[1], SCH_RV_LOOP, &l));
  *noutputs = 1;
  return sch_decompose_reduction(s, b, l, &outputs[0]);
}

/* ---- storage_align --------------------------------------------------------------------------- */

/* The smallest stride >= natural with stride % factor == offset, simplified. */
static ir_expr *padded_stride(ir_arena *a, ir_analyzer *an, ir_expr *natural, int factor,
                              int offset) {
  kiln_dtype t = natural->dtype;
  ir_expr *gap = ir_binop(a, IR_FLOORMOD, ir_sub(a, ir_int(a, t, offset), natural),
                          ir_int(a, t, factor));
  ir_expr *e = ir_add(a, natural, gap);
  return e ? ir_simplify_expr(an, e) : NULL;
}

/* New strides for b with axis padded: inner axes keep theirs, the aligned axis gets the
 * padded stride, outer axes the dense product of what is inside them (or the stride an
 * earlier storage_align gave them, when it is still large enough). */
static kiln_status aligned_strides(sch_schedule *s, ir_analyzer *an, const ir_buffer *b,
                                   int axis, int factor, int offset, ir_expr **strides) {
  ir_arena *a = s->arena;
  int nd = b->ndim;
  kiln_dtype t = b->shape[nd - 1]->dtype;
  for (int d = nd - 1; d >= 0; d--) {
    ir_expr *natural = d == nd - 1 ? ir_int(a, t, 1) : ir_mul(a, strides[d + 1], b->shape[d + 1]);
    if (natural) natural = ir_simplify_expr(an, natural);
    if (!natural) return built_fail(s);
    if (d == axis) {
      if (!(strides[d] = padded_stride(a, an, natural, factor, offset))) return built_fail(s);
    } else if (!b->nstrides) {
      strides[d] = natural;
    } else if (d > axis) {
      strides[d] = b->strides[d];
    } else {
      /* An outer axis of an already strided buffer: padded before (its stride differs from
       * the dense one it had) keeps its stride if that still clears the inner axes. */
      ir_expr *old_nat = d == nd - 1 ? ir_int(a, t, 1)
                                     : ir_mul(a, b->strides[d + 1], b->shape[d + 1]);
      if (old_nat) old_nat = ir_simplify_expr(an, old_nat);
      ir_expr *old = ir_simplify_expr(an, b->strides[d]);
      if (!old_nat || !old) return built_fail(s);
      if (same_expr(old, old_nat)) {
        strides[d] = natural;
      } else {
        ir_expr *ge = ir_binop(a, IR_GE, old, natural);
        if (!ge) return built_fail(s);
        if (!ir_prove(an, ge))
          return sch_fail(s, "storage_align", "axis %d of buffer '%s' was aligned before and its "
                          "stride would no longer clear axis %d; align the inner axes first",
                          d, b->name, axis);
        strides[d] = b->strides[d];
      }
    }
  }
  return KILN_OK;
}

/* storage_align(block, buffer_index, axis, factor, offset): the buffer of the block's write
 * region buffer_index gets strides such that stride[axis] % factor == offset, padding each
 * row of that axis (to spread rows over memory banks or cache sets); the buffer is replaced by
 * its strided version everywhere (allocation, regions, loads, stores), so every user sees the
 * same buffer. The innermost axis cannot be aligned (its stride stays 1: padding it would
 * interleave elements, not pad rows), so axis is in [0, ndim - 1). Aligning several axes of
 * one buffer composes when the inner ones are aligned first. Preconditions: the buffer is an
 * intermediate (not a parameter), factor > 0, 0 <= offset < factor. Inputs: [block,
 * buffer_index, axis, factor, offset]; no output. */
kiln_status sch_storage_align(sch_schedule *s, sch_rv block, int buffer_index, int axis,
                              int factor, int offset) {
  if (!s) return KILN_ERR_MISUSE;
  const char *prim = "storage_align";
  ir_block_realize *r;
  TRY(sch_get_realize(s, prim, block, &r));
  const ir_block *blk = r->block;
  if (buffer_index < 0 || buffer_index >= blk->nwrites)
    return sch_fail(s, prim, "buffer_index %d is out of range: block '%s' has %d write regions",
                    buffer_index, blk->name, blk->nwrites);
  ir_buffer *buf = blk->writes[buffer_index]->buffer;
  for (int i = 0; i < s->func->nparams; i++)
    if (s->func->params[i] == &buf->h)
      return sch_fail(s, prim, "buffer '%s' is a parameter of function '%s' (only intermediate "
                      "buffers can be aligned)", buf->name, s->func->name);
  if (buf->ndim < 2)
    return sch_fail(s, prim, "buffer '%s' has %d dimension%s: only an axis outside the "
                    "innermost can be aligned", buf->name, buf->ndim, buf->ndim == 1 ? "" : "s");
  if (axis < 0 || axis >= buf->ndim - 1)
    return sch_fail(s, prim, "axis %d of buffer '%s' cannot be aligned: valid axes are 0 to %d "
                    "(the innermost axis %d keeps stride 1)", axis, buf->name, buf->ndim - 2,
                    buf->ndim - 1);
  if (factor <= 0)
    return sch_fail(s, prim, "factor %d must be positive", factor);
  if (offset < 0 || offset >= factor)
    return sch_fail(s, prim, "offset %d must lie in [0, %d)", offset, factor);

  ir_arena *a = s->arena;
  ir_expr **strides = ir_arena_alloc(a, sizeof *strides * (size_t)buf->ndim);
  if (!strides) return KILN_ERR_NOMEM;
  ir_analyzer *an = ir_analyzer_new(a);
  if (!an) return KILN_ERR_NOMEM;
  kiln_status st = aligned_strides(s, an, buf, axis, factor, offset, strides);
  ir_analyzer_free(an);
  if (st) return st;
  ir_buffer *nb = ir_buffer_new(a, buf->name, buf->h.dtype, buf->ndim, buf->shape, buf->ndim,
                                strides, buf->elem_offset, buf->align, buf->scope);
  if (!nb) return built_fail(s);
  buf_swap sw = {buf, nb, true, true, true, true, true};
  ir_func *f = s->func;
  ir_stmt *body = swap_buffer(a, f->body, &sw);
  if (!body) return built_fail(s);
  ir_func *nf = ir_func_new(a, f->name, f->nparams, f->params, f->nattrs, f->attrs, body);
  if (!nf) return built_fail(s);
  sch_arg in[5] = {sch_arg_rv(s, block), sch_arg_int(buffer_index), sch_arg_int(axis),
                   sch_arg_int(factor), sch_arg_int(offset)};
  TRY(sch_record(s, SCH_INST_STORAGE_ALIGN, 5, in, 0, NULL, -1, NULL));
  s->func = nf;
  return KILN_OK;
}

kiln_status sch_apply_storage_align(sch_schedule *s, int ninputs, const sch_arg *inputs,
                                    int ndecision, const int64_t *decision, sch_rv *outputs,
                                    int *noutputs) {
  (void)ndecision, (void)decision, (void)outputs;
  bool ok = ninputs == 5;
  for (int i = 1; i < 5 && ok; i++)
    ok = inputs[i].kind == SCH_ARG_INT && inputs[i].i >= INT32_MIN && inputs[i].i <= INT32_MAX;
  if (!ok)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: storage_align takes a block and four integers (buffer_index, axis, "
                   "factor, offset)");
  sch_rv b;
  TRY(sch_input_rv(s, &inputs[0], SCH_RV_BLOCK, &b));
  *noutputs = 0;
  return sch_storage_align(s, b, (int)inputs[1].i, (int)inputs[2].i, (int)inputs[3].i,
                           (int)inputs[4].i);
}

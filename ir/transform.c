/* transform.c: the TIR lowering pipeline. Input: a scheduled PrimFunc (a root block realize
 * holding loop nests of every kind, block realizes with iterator bindings and predicates,
 * reduction inits, block-allocated cache buffers, strided buffers). Output: plain loops,
 * stores, loads, ifs and allocates that target/codegen.c compiles well and ir/interp.c runs.
 * The pipeline is the `passes` table at the end of this file, so its order is the
 * documentation. Every pass maps a function to a function in the given arena and keeps the
 * program's results exactly (the interpreter is the oracle the tests compare against). */
#include <stdio.h>
#include <string.h>

#include "arith.h"
#include "transform.h"
#include "verify.h"

enum { DEFAULT_MAX_UNROLL = 64, MAX_VECTOR_LANES = 64, MAX_CONJUNCTS = 32 };

/* ---- Small helpers ---------------------------------------------------------------------- */

/* The status an earlier failure left on the context (something is always recorded). */
static kiln_status ctx_status(kiln_context *ctx) {
  return ctx->code ? ctx->code : KILN_ERR_INTERNAL;
}

static bool int_value(const ir_expr *e, int64_t *v) {
  const ir_int_imm *c = ir_as_int(e);
  if (c) *v = c->value;
  return c != NULL;
}

/* evaluate(0): the statement that does nothing (the simplifier drops it from sequences). */
static ir_stmt *nop(ir_arena *a) { return ir_evaluate_new(a, ir_i32(a, 0)); }

/* n statements as one: nothing, the statement itself, or a sequence. */
static ir_stmt *seq_of(ir_arena *a, int n, ir_stmt *const *s) {
  if (n == 0) return nop(a);
  if (n == 1) return s[0];
  return ir_seq_new(a, n, s);
}

static bool is_nop(const ir_stmt *s) {
  return s->kind == IR_EVALUATE && ir_as_int(((const ir_evaluate *)s)->value);
}

/* Like seq_of for statements a pass generated: no-ops are dropped and sequences among them
 * spliced in, so the output reads as one flat list. */
static ir_stmt *seq_flat(ir_arena *a, int n, ir_stmt *const *s) {
  int total = 0;
  for (int i = 0; i < n; i++)
    total += s[i]->kind == IR_SEQ ? ((ir_seq *)s[i])->nstmts : !is_nop(s[i]);
  ir_stmt **all = total ? ir_arena_alloc(a, sizeof(ir_stmt *) * (size_t)total) : NULL;
  if (total && !all) return NULL;
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (s[i]->kind == IR_SEQ) {
      ir_seq *q = (ir_seq *)s[i];
      for (int j = 0; j < q->nstmts; j++) all[k++] = q->stmts[j];
    } else if (!is_nop(s[i])) {
      all[k++] = s[i];
    }
  }
  return seq_of(a, total, all);
}

/* A growable array of pointers in context memory. */
typedef struct ptr_list {
  kiln_context *ctx;
  void **v;
  int n, cap;
} ptr_list;

static void pl_init(ptr_list *l, kiln_context *ctx) { *l = (ptr_list){ctx, NULL, 0, 0}; }
static void pl_free(ptr_list *l) {
  ir_free(l->ctx, l->v, sizeof(void *) * (size_t)l->cap);
  l->v = NULL;
  l->n = l->cap = 0;
}
static bool pl_push(ptr_list *l, void *p) {
  if (l->n == l->cap) {
    int cap = l->cap ? l->cap * 2 : 8;
    void **v = ir_realloc(l->ctx, l->v, sizeof(void *) * (size_t)l->cap, sizeof(void *) * (size_t)cap);
    if (!v) return false;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = p;
  return true;
}

/* Whether n uses variable v (definitions are not uses). */
typedef struct find_var {
  const ir_var *v;
  bool found;
} find_var;

static bool find_var_visit(ir_node *n, void *ud) {
  find_var *fv = ud;
  if (n == &fv->v->h) fv->found = true;
  return !fv->found;
}

static bool mentions(const ir_node *n, const ir_var *v) {
  find_var fv = {v, false};
  ir_visit((ir_node *)n, false, find_var_visit, &fv);
  return fv.found;
}

/* Whether a statement still holds a block or a block realize. */
static bool find_block_visit(ir_node *n, void *ud) {
  const ir_node **found = ud;
  if (*found) return false;
  if (n->kind == IR_BLOCK) *found = n;
  if (n->kind == IR_BLOCK_REALIZE) *found = &((ir_block_realize *)n)->block->h;
  return !*found && !ir_is_expr(n);
}

static const ir_block *find_block(const ir_node *n) {
  const ir_node *found = NULL;
  ir_visit((ir_node *)n, false, find_block_visit, &found);
  return (const ir_block *)found;
}

/* Exact equality of two expressions: variables and buffers by identity (unlike structural
 * equality, which matches free variables by position), constants by value. Lets compare
 * unequal unless they are the same node (their variables differ). */
static bool same_expr(const ir_node *x, const ir_node *y) {
  if (x == y) return true;
  if (!x || !y || x->kind != y->kind || x->hash != y->hash || !ir_dt_eq(x->dtype, y->dtype) ||
      x->kind == IR_VAR)
    return false;
  const ir_kind_info *k = ir_kind_info_of(x->kind);
  for (int i = 0; i < k->nfields; i++) {
    const ir_field *f = &k->fields[i];
    const char *px = (const char *)x + f->offset, *py = (const char *)y + f->offset;
    switch ((ir_field_kind)f->kind) {
    case IR_F_NODE:
      if (!same_expr(*(ir_node *const *)px, *(ir_node *const *)py)) return false;
      break;
    case IR_F_NODES: {
      int32_t cx = *(const int32_t *)((const char *)x + f->count_offset);
      int32_t cy = *(const int32_t *)((const char *)y + f->count_offset);
      if (cx != cy) return false;
      ir_node *const *ax = *(ir_node *const *const *)px, *const *ay = *(ir_node *const *const *)py;
      for (int32_t j = 0; j < cx; j++)
        if (!same_expr(ax[j], ay[j])) return false;
      break;
    }
    case IR_F_DEF:
    case IR_F_REF:
      if (*(ir_node *const *)px != *(ir_node *const *)py) return false;
      break;
    case IR_F_DEFS: return false;
    case IR_F_I32:
      if (*(const int32_t *)px != *(const int32_t *)py) return false;
      break;
    case IR_F_I64:
      if (*(const int64_t *)px != *(const int64_t *)py) return false;
      break;
    case IR_F_F64:
      if (memcmp(px, py, sizeof(double)) != 0) return false;
      break;
    case IR_F_STR:
      if (strcmp(*(const char *const *)px, *(const char *const *)py) != 0) return false;
      break;
    case IR_F_NAME: break;
    case IR_F_I64S:
    case IR_F_BYTES:
      if (!ir_fields_extra_equal(x, y, f)) return false;
      break;
    }
  }
  return true;
}

/* A sequence rewritten by m; statements that became sequences (a loop cut into pieces)
 * are spliced in. */
static ir_node *mutate_seq(ir_mutator *m, ir_node *n) {
  ir_seq *q = (ir_seq *)n;
  ir_node *c = ir_mutate_children(m, n);
  if (!c || c == n) return c;
  ir_seq *r = (ir_seq *)c;
  bool nested = false;
  for (int i = 0; i < r->nstmts; i++)
    nested |= r->stmts[i] != q->stmts[i] && r->stmts[i]->kind == IR_SEQ;
  return nested ? seq_flat(m->arena, r->nstmts, r->stmts) : c;
}

/* Runs a mutator over f's body; f itself when nothing changed. */
static ir_func *mutate_func(ir_mutator *m, ir_func *f) {
  ir_stmt *body = ir_mutate(m, f->body);
  if (!body) return NULL;
  if (body == f->body) return f;
  ir_span saved = m->arena->span;
  m->arena->span = f->h.span;
  ir_func *r = ir_func_new(m->arena, f->name, f->nparams, f->params, f->nattrs, f->attrs, body);
  m->arena->span = saved;
  return r;
}

/* A loop like f with another kind (annotations kept). */
static ir_stmt *with_kind(ir_arena *a, const ir_for *f, int kind, ir_stmt *body) {
  return ir_for_new(a, f->var, f->min, f->extent, kind, f->nannots, f->annots, body);
}

/* Records what is known about a loop variable running over [min, min + extent) in the
 * analyzer. Only int32/int64 variables whose range is bounded get a range; false when the
 * analyzer could not record it (allocation failure, recorded on the context). */
static bool bind_loop(ir_analyzer *an, const ir_var *v, const ir_expr *min, const ir_expr *ext) {
  kiln_dtype t = v->h.dtype;
  if (t.code != KILN_TYPE_INT || (t.bits != 32 && t.bits != 64)) return true;
  ir_interval m = ir_bound_of(an, min), e = ir_bound_of(an, ext);
  int64_t hi;
  if (m.min == INT64_MIN || m.max == INT64_MAX || e.max == INT64_MAX || e.max < 1 ||
      __builtin_add_overflow(m.max, e.max - 1, &hi))
    return true;
  if (t.bits == 32 && (m.min < INT32_MIN || hi > INT32_MAX)) return true;
  return ir_analyzer_bind(an, v, (ir_interval){m.min, hi}) == KILN_OK;
}

/* ---- Copies with fresh definitions -------------------------------------------------------
 * A statement duplicated by a pass (unrolled iterations, partitioned loop pieces) must
 * define new variables and buffers: the verifier requires every definition to be made
 * once. copy_fresh copies a block-free statement, giving every loop, let and allocate a new
 * variable or buffer, and substituting given variables by expressions on the way. */

typedef struct fresh {
  ir_ptrmap map; /* old var -> new expression, old buffer -> new buffer */
} fresh;

static ir_node *fresh_visit(ir_mutator *m, ir_node *n);

static ir_buffer *fresh_buffer(ir_mutator *m, ir_buffer *b) {
  ir_arena *a = m->arena;
  ir_expr *small[16], **shape = small;
  int n = b->ndim + b->nstrides;
  size_t size = sizeof(ir_expr *) * (size_t)n;
  if (n > 16 && !(shape = ir_malloc(a->ctx, size))) return NULL;
  ir_buffer *nb = NULL;
  bool ok = true;
  for (int i = 0; i < b->ndim && ok; i++) ok = (shape[i] = ir_mutate(m, b->shape[i])) != NULL;
  for (int i = 0; i < b->nstrides && ok; i++)
    ok = (shape[b->ndim + i] = ir_mutate(m, b->strides[i])) != NULL;
  ir_expr *off = ok && b->elem_offset ? ir_mutate(m, b->elem_offset) : NULL;
  if (ok && (!b->elem_offset || off))
    nb = ir_buffer_new(a, b->name, b->h.dtype, b->ndim, shape, b->nstrides,
                       b->nstrides ? shape + b->ndim : NULL, off, b->align, b->scope);
  if (shape != small) ir_free(a->ctx, shape, size);
  return nb;
}

/* An access to a buffer that may have been replaced (the children already rewritten). */
static ir_node *remap_access(ir_arena *a, ir_node *c, ir_buffer *nb) {
  if (!c || !nb) return c;
  if (c->kind == IR_LOAD) {
    ir_load *x = (ir_load *)c;
    return ir_load_new(a, nb, x->nindices, x->indices);
  }
  ir_store *x = (ir_store *)c;
  return ir_store_new(a, nb, x->value, x->nindices, x->indices);
}

static ir_node *fresh_visit(ir_mutator *m, ir_node *n) {
  fresh *F = m->ud;
  ir_arena *a = m->arena;
  switch (n->kind) {
  case IR_VAR: {
    ir_node *r = ir_ptrmap_get(&F->map, n);
    return r ? r : n;
  }
  case IR_LOAD:
  case IR_STORE: {
    ir_buffer *b = n->kind == IR_LOAD ? ((ir_load *)n)->buffer : ((ir_store *)n)->buffer;
    return remap_access(a, ir_mutate_children(m, n), ir_ptrmap_get(&F->map, b));
  }
  case IR_FOR: {
    ir_for *x = (ir_for *)n;
    ir_expr *min = ir_mutate(m, x->min), *ext = min ? ir_mutate(m, x->extent) : NULL;
    ir_var *v = ext ? ir_var_new(a, x->var->name, x->var->h.dtype) : NULL;
    if (!v || ir_ptrmap_put(&F->map, x->var, v)) return NULL;
    ir_stmt *body = ir_mutate(m, x->body);
    return ir_for_new(a, v, min, ext, x->for_kind, x->nannots, x->annots, body);
  }
  case IR_LET_STMT:
  case IR_LET: {
    ir_var *old = n->kind == IR_LET ? ((ir_let *)n)->var : ((ir_let_stmt *)n)->var;
    ir_node *value = n->kind == IR_LET ? ((ir_let *)n)->value : ((ir_let_stmt *)n)->value;
    ir_node *body = n->kind == IR_LET ? ((ir_let *)n)->body : ((ir_let_stmt *)n)->body;
    ir_expr *val = ir_mutate(m, value);
    ir_var *v = val ? ir_var_new(a, old->name, old->h.dtype) : NULL;
    if (!v || ir_ptrmap_put(&F->map, old, v)) return NULL;
    ir_node *b2 = ir_mutate(m, body);
    return n->kind == IR_LET ? ir_let_new(a, v, val, b2) : ir_let_stmt_new(a, v, val, b2);
  }
  case IR_ALLOCATE: {
    ir_allocate *x = (ir_allocate *)n;
    ir_buffer *nb = fresh_buffer(m, x->buffer);
    if (!nb || ir_ptrmap_put(&F->map, x->buffer, nb)) return NULL;
    return ir_allocate_new(a, nb, ir_mutate(m, x->body));
  }
  case IR_BLOCK:
  case IR_BLOCK_REALIZE:
    ir_fail(a->ctx, n->span, KILN_ERR_INTERNAL,
            "lower: cannot copy a statement that still holds a block (lower_blocks runs first)");
    return NULL;
  default: return ir_mutate_children(m, n);
  }
}

/* A copy of s with fresh definitions and vars[i] replaced by vals[i]. */
static ir_stmt *copy_fresh(ir_arena *a, ir_stmt *s, int nsub, ir_var *const *vars,
                           ir_expr *const *vals) {
  fresh F;
  ir_ptrmap_init(&F.map, a->ctx);
  ir_stmt *r = s;
  for (int i = 0; i < nsub && r; i++)
    if (ir_ptrmap_put(&F.map, vars[i], vals[i])) r = NULL;
  if (r) {
    ir_mutator m = {a, fresh_visit, &F, NULL, false};
    r = ir_mutate(&m, s);
  }
  ir_ptrmap_free(&F.map);
  return r;
}

/* A copy of loop f over [min, min + ext) with a fresh loop variable and fresh definitions
 * inside; *var gets the new loop variable. */
static ir_stmt *copy_loop(ir_arena *a, const ir_for *f, ir_expr *min, ir_expr *ext, ir_var **var) {
  ir_var *v = ir_var_new(a, f->var->name, f->var->h.dtype);
  ir_expr *ve = &v->h;
  ir_stmt *body = v ? copy_fresh(a, f->body, 1, &f->var, &ve) : NULL;
  *var = v;
  return ir_for_new(a, v, min, ext, f->for_kind, f->nannots, f->annots, body);
}

/* ---- Pass 1: lower_blocks ----------------------------------------------------------------
 * A block realize becomes what the interpreter does when it runs one:
 *   if (predicate) { allocate <block buffers> { if (every reduce iterator == its min) init;
 *                                               body } }
 * with every iterator replaced by the value bound to it (an iterator that a block buffer's
 * shape uses is let-bound instead, since buffer definitions are not substituted into). The
 * root block's buffers thus become allocates around the whole body. Block annotations, read
 * and write regions go; loop annotations stay. */

static ir_node *lower_blocks_visit(ir_mutator *m, ir_node *n);

static bool buffer_uses(const ir_buffer *b, const ir_var *v) {
  for (int i = 0; i < b->ndim; i++)
    if (mentions(b->shape[i], v)) return true;
  for (int i = 0; i < b->nstrides; i++)
    if (mentions(b->strides[i], v)) return true;
  return b->elem_offset && mentions(b->elem_offset, v);
}

static ir_node *lower_realize(ir_mutator *m, ir_block_realize *r) {
  ir_arena *a = m->arena;
  ir_block *b = r->block;
  if (!b || b->h.kind != IR_BLOCK)
    return ir_fail(a->ctx, r->h.span, KILN_ERR_TYPE,
                   "lower_blocks: a block_realize realizes %s instead of a block",
                   b ? ir_kind_name(b->h.kind) : "nothing"),
           NULL;
  if (r->nvalues != b->niters || (r->nvalues > 0 && !r->values))
    return ir_fail(a->ctx, r->h.span, KILN_ERR_SHAPE,
                   "lower_blocks: block_realize of block '%s' binds %d values but the block has "
                   "%d iterators",
                   b->name, (int)r->nvalues, (int)b->niters),
           NULL;
  for (int i = 0; i < b->niters; i++) {
    const ir_iter_var *it = b->iters[i];
    if (!it || !r->values[i] || !ir_dt_eq(r->values[i]->dtype, it->var->h.dtype))
      return ir_fail(a->ctx, r->h.span, KILN_ERR_TYPE,
                     "lower_blocks: block '%s': iterator %d is missing or bound to a value of "
                     "another type",
                     b->name, i),
             NULL;
  }
  ir_stmt *body = ir_mutate(m, b->body);
  ir_stmt *init = body && b->init ? ir_mutate(m, b->init) : NULL;
  if (!body || (b->init && !init)) return NULL;

  ir_span saved = a->span;
  a->span = b->h.span;
  if (init) {
    /* the interpreter's rule: the init runs when every reduce iterator is at its min */
    ir_expr *at_start = NULL;
    for (int i = 0; i < b->niters; i++) {
      ir_iter_var *it = b->iters[i];
      if (it->iter_type != IR_ITER_REDUCE) continue;
      ir_expr *eq = ir_binop(a, IR_EQ, &it->var->h, it->min);
      at_start = at_start ? ir_binop(a, IR_AND, at_start, eq) : eq;
      if (!at_start) break;
    }
    ir_stmt *two[2] = {init, body};
    bool reduce = false;
    for (int i = 0; i < b->niters; i++) reduce |= b->iters[i]->iter_type == IR_ITER_REDUCE;
    if (reduce) two[0] = at_start ? ir_if_new(a, at_start, init, NULL) : NULL;
    body = two[0] ? seq_flat(a, 2, two) : NULL;
  }
  for (int i = b->nallocs - 1; i >= 0 && body; i--) body = ir_allocate_new(a, b->allocs[i], body);

  /* iterators: substituted, or let-bound where a block buffer's shape uses them */
  int n = b->niters, nsub = 0;
  size_t vsize = sizeof(ir_var *) * (size_t)(n ? n : 1), esize = sizeof(ir_expr *) * (size_t)(n ? n : 1);
  ir_var **vars = ir_malloc(a->ctx, vsize);
  ir_expr **vals = vars ? ir_malloc(a->ctx, esize) : NULL;
  bool *let = vals ? ir_malloc(a->ctx, sizeof(bool) * (size_t)(n ? n : 1)) : NULL;
  if (!let) body = NULL;
  for (int i = 0; i < n && body; i++) {
    let[i] = false;
    for (int k = 0; k < b->nallocs; k++) let[i] |= buffer_uses(b->allocs[k], b->iters[i]->var);
    if (let[i]) continue;
    vars[nsub] = b->iters[i]->var;
    vals[nsub++] = r->values[i];
  }
  if (body && nsub) body = ir_substitute(a, body, nsub, vars, vals);
  for (int i = n - 1; i >= 0 && body; i--)
    if (let[i]) body = ir_let_stmt_new(a, b->iters[i]->var, r->values[i], body);
  ir_free(a->ctx, vars, vars ? vsize : 0);
  ir_free(a->ctx, vals, vals ? esize : 0);
  ir_free(a->ctx, let, let ? sizeof(bool) * (size_t)(n ? n : 1) : 0);

  int64_t pv;
  if (body && !(int_value(r->predicate, &pv) && pv == 1)) {
    a->span = r->h.span;
    body = int_value(r->predicate, &pv) && pv == 0 ? nop(a) : ir_if_new(a, r->predicate, body, NULL);
  }
  a->span = saved;
  return body;
}

static ir_node *lower_blocks_visit(ir_mutator *m, ir_node *n) {
  if (ir_is_expr(n)) return n;
  if (n->kind == IR_BLOCK_REALIZE) return lower_realize(m, (ir_block_realize *)n);
  if (n->kind == IR_BLOCK) {
    ir_fail(m->arena->ctx, n->span, KILN_ERR_UNSUPPORTED,
            "lower_blocks: block '%s' is not realized (no values are bound to its iterators)",
            ((ir_block *)n)->name);
    return NULL;
  }
  return ir_mutate_children(m, n);
}

static ir_func *pass_lower_blocks(kiln_context *ctx, ir_arena *arena, ir_func *f,
                                  const ir_lower_options *o) {
  (void)ctx;
  (void)o;
  ir_mutator m = {arena, lower_blocks_visit, NULL, NULL, false};
  return mutate_func(&m, f);
}

/* ---- Pass 2: flatten_buffers -------------------------------------------------------------
 * Every allocated buffer becomes one-dimensional: dense buffers hold the product of their
 * shape; buffers with strides (storage_align) or an element offset hold the highest element
 * any in-bounds index reaches plus one (elem_offset + 1 + sum((shape[d] - 1) * stride[d]),
 * as the interpreter sizes them). An access becomes buf[sum(index[d] * stride[d]) +
 * elem_offset] in the shape's integer type. Parameters keep their dimensions: codegen checks
 * them against the tensors it is given. */

typedef struct flat_info {
  ir_buffer *nb;     /* the 1-D buffer */
  kiln_dtype it;     /* the index type */
  ir_expr **strides; /* ndim strides in type it */
  ir_expr *offset;   /* NULL: none */
} flat_info;

typedef struct flatten {
  ir_analyzer *an;
  ir_arena *scratch; /* flat_info records */
  ir_ptrmap infos;   /* old buffer -> flat_info */
} flatten;

/* e in integer type t (lanes kept). */
static ir_expr *as_int_type(ir_arena *a, ir_expr *e, kiln_dtype t) {
  if (!e || (e->dtype.code == t.code && e->dtype.bits == t.bits)) return e;
  return ir_cast_new(a, ir_dt_with_lanes(t, e->dtype.lanes), e);
}

/* x OP y where one side may be a scalar and the other a vector (the scalar is broadcast). */
static ir_expr *vbin(ir_arena *a, int kind, ir_expr *x, ir_expr *y) {
  if (!x || !y) return NULL;
  if (x->dtype.lanes != y->dtype.lanes) {
    if (x->dtype.lanes == 1) x = ir_broadcast_new(a, x, y->dtype.lanes);
    else y = ir_broadcast_new(a, y, x->dtype.lanes);
  }
  return ir_binop(a, kind, x, y);
}

static flat_info *flat_info_of(flatten *F, ir_arena *a, ir_buffer *b) {
  flat_info *fi = ir_arena_alloc(F->scratch, sizeof *fi);
  int nd = b->ndim;
  if (!fi || (nd && !(fi->strides = ir_arena_alloc(F->scratch, sizeof(ir_expr *) * (size_t)nd))))
    return NULL;
  /* the index type: the shape's, unless the buffer mixes integer types (then int64) */
  kiln_dtype it = nd ? ir_dt_scalar(b->shape[0]->dtype) : KILN_INT64;
  for (int d = 0; d < nd; d++)
    if (!ir_dt_eq(b->shape[d]->dtype, it)) it = KILN_INT64;
  for (int d = 0; d < b->nstrides; d++)
    if (!ir_dt_eq(b->strides[d]->dtype, it)) it = KILN_INT64;
  if (b->elem_offset && !ir_dt_eq(b->elem_offset->dtype, it)) it = KILN_INT64;
  fi->it = it;
  if (b->nstrides) {
    for (int d = 0; d < nd; d++) fi->strides[d] = as_int_type(a, b->strides[d], it);
  } else {
    ir_expr *s = ir_int(a, it, 1);
    for (int d = nd - 1; d >= 0; d--) {
      fi->strides[d] = s;
      if (d > 0) s = ir_mul(a, s, as_int_type(a, b->shape[d], it));
    }
  }
  fi->offset = b->elem_offset ? as_int_type(a, b->elem_offset, it) : NULL;
  ir_expr *size;
  if (!b->nstrides && !b->elem_offset) {
    size = ir_int(a, it, 1);
    for (int d = 0; d < nd; d++) size = ir_mul(a, size, as_int_type(a, b->shape[d], it));
  } else {
    size = ir_add(a, fi->offset ? fi->offset : ir_int(a, it, 0), ir_int(a, it, 1));
    for (int d = 0; d < nd; d++)
      size = ir_add(a, size, ir_mul(a, ir_sub(a, as_int_type(a, b->shape[d], it), ir_int(a, it, 1)),
                                    fi->strides[d]));
  }
  for (int d = 0; d < nd; d++)
    if (!fi->strides[d] || !(fi->strides[d] = ir_simplify_expr(F->an, fi->strides[d]))) return NULL;
  if (!size || !(size = ir_simplify_expr(F->an, size))) return NULL;
  fi->nb = ir_buffer_new(a, b->name, b->h.dtype, 1, &size, 0, NULL, NULL, b->align, b->scope);
  return fi->nb ? fi : NULL;
}

/* The 1-D index of an access with n indices (already rewritten). */
static ir_expr *flat_index(flatten *F, ir_arena *a, const flat_info *fi, int n, ir_expr *const *idx) {
  ir_expr *sum = NULL;
  for (int d = 0; d < n; d++) {
    ir_expr *term = vbin(a, IR_MUL, as_int_type(a, idx[d], fi->it), fi->strides[d]);
    sum = sum ? vbin(a, IR_ADD, sum, term) : term;
    if (!sum) return NULL;
  }
  if (!sum) sum = ir_int(a, fi->it, 0);
  if (fi->offset) sum = vbin(a, IR_ADD, sum, fi->offset);
  return sum ? ir_simplify_expr(F->an, sum) : NULL;
}

static ir_node *flatten_visit(ir_mutator *m, ir_node *n) {
  flatten *F = m->ud;
  ir_arena *a = m->arena;
  switch (n->kind) {
  case IR_ALLOCATE: {
    ir_allocate *x = (ir_allocate *)n;
    flat_info *fi = flat_info_of(F, a, x->buffer);
    if (!fi || ir_ptrmap_put(&F->infos, x->buffer, fi)) return NULL;
    ir_stmt *body = ir_mutate(m, x->body);
    return body ? ir_allocate_new(a, fi->nb, body) : NULL;
  }
  case IR_LOAD:
  case IR_STORE: {
    ir_buffer *b = n->kind == IR_LOAD ? ((ir_load *)n)->buffer : ((ir_store *)n)->buffer;
    ir_node *c = ir_mutate_children(m, n);
    flat_info *fi = ir_ptrmap_get(&F->infos, b);
    if (!c || !fi) return c;
    if (c->kind == IR_LOAD) {
      ir_load *x = (ir_load *)c;
      ir_expr *idx = flat_index(F, a, fi, x->nindices, x->indices);
      return idx ? ir_load_new(a, fi->nb, 1, &idx) : NULL;
    }
    ir_store *x = (ir_store *)c;
    ir_expr *idx = flat_index(F, a, fi, x->nindices, x->indices);
    return idx ? ir_store_new(a, fi->nb, x->value, 1, &idx) : NULL;
  }
  case IR_BLOCK:
  case IR_BLOCK_REALIZE: {
    const ir_block *b = n->kind == IR_BLOCK ? (ir_block *)n : ((ir_block_realize *)n)->block;
    ir_fail(a->ctx, n->span, KILN_ERR_INTERNAL,
            "flatten_buffers: block '%s' is still there (lower_blocks runs first)", b->name);
    return NULL;
  }
  default: return ir_mutate_children(m, n);
  }
}

static ir_func *pass_flatten(kiln_context *ctx, ir_arena *arena, ir_func *f,
                             const ir_lower_options *o) {
  (void)o;
  flatten F = {ir_analyzer_new(arena), ir_arena_new(ctx), {0}};
  ir_ptrmap_init(&F.infos, ctx);
  ir_func *r = NULL;
  if (F.an && F.scratch) {
    ir_mutator m = {arena, flatten_visit, &F, NULL, false};
    r = mutate_func(&m, f);
  }
  ir_ptrmap_free(&F.infos);
  ir_arena_free(F.scratch);
  ir_analyzer_free(F.an);
  return r;
}

/* ---- Pass 3 (and 9): simplify ------------------------------------------------------------ */

static ir_func *pass_simplify(kiln_context *ctx, ir_arena *arena, ir_func *f,
                              const ir_lower_options *o) {
  (void)ctx;
  (void)o;
  return ir_simplify_func(arena, f);
}

/* ---- Pass 4: loop_partition --------------------------------------------------------------
 * A loop with constant bounds whose body (through inner loops, lets and allocates) is one
 * `if (cond)` without else, as a non-divisible split's predicate gives, is cut where the
 * analyzer proves conjuncts of cond:
 *   for v in [m, m + e): ... if (c1 && c2) S
 * -> for v in [m, lo): <original>;  for v in [lo, hi): ... if (c2) S;  for v in [hi, m + e):
 *    <original>
 * where c1 is proven for every v in [lo, hi) (and every value of the inner loop variables).
 * The proven range of a conjunct is its longest prefix or suffix of the loop found by binary
 * search (a prefix for `v * f + w < n`, a suffix for `v - p >= 0`); conjuncts whose ranges
 * intersect are removed together. The pieces are simplified (a tail of one iteration loses
 * its loop, and its guard is then on the inner loop, which the recursion partitions in turn)
 * so that splitting 10 by 4 leaves no guard at all. Only proven facts remove a check. */

typedef struct partition {
  ir_analyzer *an;
} partition;

/* The guard under s (through loops, lets and allocates), or NULL when there is none,
 * binding the ranges of the inner loop and let variables on the way. False when the
 * analyzer ran out of memory. */
static bool find_guard(ir_analyzer *an, ir_arena *a, ir_stmt *s, ir_if **out) {
  *out = NULL;
  for (;;) {
    switch (s->kind) {
    case IR_FOR: {
      ir_for *x = (ir_for *)s;
      if (!bind_loop(an, x->var, x->min, x->extent)) return false;
      s = x->body;
      break;
    }
    case IR_LET_STMT: {
      ir_let_stmt *x = (ir_let_stmt *)s;
      if (ir_dt_is_int(x->value->dtype)) {
        ir_expr *one = ir_int(a, x->value->dtype, 1);
        if (!one || !bind_loop(an, x->var, x->value, one)) return false;
      }
      s = x->body;
      break;
    }
    case IR_ALLOCATE: s = ((ir_allocate *)s)->body; break;
    case IR_IF:
      if (!((ir_if *)s)->else_case) *out = (ir_if *)s;
      return true;
    default: return true;
    }
  }
}

/* The conjuncts of c in out[n..cap) (an AND that does not fit stays one conjunct); returns
 * the new count. Needs n < cap. */
static int conjuncts(ir_expr *c, ir_expr **out, int n, int cap) {
  if (c->kind == IR_AND && cap - n >= 2) {
    n = conjuncts(((ir_binary *)c)->a, out, n, cap - 1); /* one place left for b */
    return conjuncts(((ir_binary *)c)->b, out, n, cap);
  }
  out[n] = c;
  return n + 1;
}

/* The largest k in [0, ext] such that c is proven for v in [m, m + k) (from_end: in
 * [m + ext - k, m + ext)). Leaves v bound to the last range tried: the caller rebinds it. */
static int64_t proven_span(ir_analyzer *an, const ir_var *v, ir_expr *c, int64_t m, int64_t ext,
                           bool from_end) {
  int64_t lo = 0, hi = ext; /* c is proven for k = lo */
  while (lo < hi) {
    int64_t mid = lo + (hi - lo + 1) / 2;
    ir_interval r = from_end ? (ir_interval){m + ext - mid, m + ext - 1} : (ir_interval){m, m + mid - 1};
    if (ir_analyzer_bind(an, v, r) == KILN_OK && ir_prove(an, c))
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

/* Replaces node `old` (by identity) with `repl` in a statement. */
typedef struct replace {
  const ir_node *old;
  ir_node *repl;
} replace;

static ir_node *replace_visit(ir_mutator *m, ir_node *n) {
  replace *R = m->ud;
  if (n == R->old) return R->repl;
  if (ir_is_expr(n)) return n;
  return ir_mutate_children(m, n);
}

static ir_node *partition_visit(ir_mutator *m, ir_node *n);

/* The partition pieces, simplified, each partitioned further inside: a piece that is still
 * the loop it was built as (variable pv) only inside its body, so the recursion ends. */
static ir_stmt *finish_piece(ir_mutator *m, ir_stmt *piece, ir_var *pv) {
  partition *P = m->ud;
  piece = piece ? ir_simplify_stmt(P->an, piece) : NULL;
  if (!piece) return NULL;
  ir_for *f = ir_as_for(piece);
  if (!f || f->var != pv) return ir_mutate(m, piece);
  if (!bind_loop(P->an, f->var, f->min, f->extent)) return NULL;
  ir_stmt *body = ir_mutate(m, f->body);
  if (!body) return NULL;
  return body == f->body ? piece : with_kind(m->arena, f, f->for_kind, body);
}

static ir_node *partition_for(ir_mutator *m, ir_for *L) {
  partition *P = m->ud;
  ir_arena *a = m->arena;
  int64_t mn, ext;
  if (!bind_loop(P->an, L->var, L->min, L->extent)) return NULL;
  ir_if *g = NULL;
  if (int_value(L->min, &mn) && int_value(L->extent, &ext) && ext >= 2 &&
      L->var->h.dtype.code == KILN_TYPE_INT && !__builtin_add_overflow(mn, ext, &(int64_t){0}) &&
      !find_guard(P->an, a, L->body, &g))
    return NULL;
  if (!g) return ir_mutate_children(m, &L->h);

  ir_expr *cs[MAX_CONJUNCTS];
  bool removed[MAX_CONJUNCTS] = {false};
  int nc = conjuncts(g->cond, cs, 0, MAX_CONJUNCTS), nremoved = 0;
  int64_t lo = mn, hi = mn + ext;
  for (int i = 0; i < nc; i++) {
    if (!mentions(cs[i], L->var)) continue;
    int64_t p = proven_span(P->an, L->var, cs[i], mn, ext, false);
    int64_t s = proven_span(P->an, L->var, cs[i], mn, ext, true);
    if (p == 0 && s == 0) continue;
    int64_t clo = p >= s ? mn : mn + ext - s, chi = p >= s ? mn + p : mn + ext;
    int64_t nlo = clo > lo ? clo : lo, nhi = chi < hi ? chi : hi;
    if (nlo >= nhi) continue;
    lo = nlo;
    hi = nhi;
    removed[i] = true;
    nremoved++;
  }
  if (!bind_loop(P->an, L->var, L->min, L->extent)) return NULL;
  if (!nremoved) return ir_mutate_children(m, &L->h);

  /* the main piece: the guard without the removed conjuncts */
  ir_expr *rest = NULL;
  for (int i = 0; i < nc; i++)
    if (!removed[i]) rest = rest ? ir_binop(a, IR_AND, rest, cs[i]) : cs[i];
  replace R = {&g->h, rest ? ir_if_new(a, rest, g->then_case, NULL) : g->then_case};
  if (!R.repl) return NULL;
  ir_mutator rm = {a, replace_visit, &R, NULL, false};
  ir_stmt *main_body = ir_mutate(&rm, L->body);
  kiln_dtype t = L->var->h.dtype;
  ir_stmt *pieces[3];
  int np = 0;
  ir_var *pv;
  if (lo > mn) {
    ir_stmt *pre = copy_loop(a, L, L->min, ir_int(a, t, lo - mn), &pv);
    if (!(pieces[np++] = finish_piece(m, pre, pv))) return NULL;
  }
  ir_stmt *main = main_body ? ir_for_new(a, L->var, ir_int(a, t, lo), ir_int(a, t, hi - lo),
                                         L->for_kind, L->nannots, L->annots, main_body)
                            : NULL;
  if (!(pieces[np++] = finish_piece(m, main, L->var))) return NULL;
  if (hi < mn + ext) {
    ir_stmt *post = copy_loop(a, L, ir_int(a, t, hi), ir_int(a, t, mn + ext - hi), &pv);
    if (!(pieces[np++] = finish_piece(m, post, pv))) return NULL;
  }
  return seq_flat(a, np, pieces);
}

static ir_node *partition_visit(ir_mutator *m, ir_node *n) {
  partition *P = m->ud;
  if (ir_is_expr(n)) return n;
  switch (n->kind) {
  case IR_FOR: return partition_for(m, (ir_for *)n);
  case IR_LET_STMT: {
    ir_let_stmt *x = (ir_let_stmt *)n;
    if (ir_dt_is_int(x->value->dtype)) {
      ir_expr *one = ir_int(m->arena, x->value->dtype, 1);
      if (!one || !bind_loop(P->an, x->var, x->value, one)) return NULL;
    }
    return ir_mutate_children(m, n);
  }
  case IR_SEQ: return mutate_seq(m, n);
  case IR_BLOCK:
  case IR_BLOCK_REALIZE: return n; /* nothing to partition before lower_blocks */
  default: return ir_mutate_children(m, n);
  }
}

static ir_func *pass_partition(kiln_context *ctx, ir_arena *arena, ir_func *f,
                               const ir_lower_options *o) {
  (void)ctx;
  (void)o;
  partition P = {ir_analyzer_new(arena)};
  if (!P.an) return NULL;
  ir_mutator m = {arena, partition_visit, &P, NULL, false};
  ir_func *r = mutate_func(&m, f);
  ir_analyzer_free(P.an);
  return r;
}

/* ---- Pass 5: vectorize -------------------------------------------------------------------
 * A vectorized loop `for v in [m, m + e)` with constant e >= 2 whose body is straight-line
 * code (stores, sequences, ifs whose condition does not depend on v, and ifs on v around a
 * single store that become a select) turns into vector statements: v becomes
 * ramp(m, 1, lanes), expressions that use v are computed lane-wise (their loop-invariant
 * operands broadcast), and the simplifier turns affine indices into ramps, so a stride-1
 * ramp is a contiguous access and anything else a gather or scatter.
 *
 * Vector statements run statement by statement over all lanes, the loop iteration by
 * iteration; the two agree when no iteration touches an element another one writes. The
 * pass checks that for every buffer stored in the body: some dimension is indexed, in all its
 * stores and loads, by one ramp(base, s, lanes) with a constant s != 0 (iteration v touches
 * only elements at base + s * v there). A reduction into an element that does not depend on
 * v (acc[i] = acc[i] + x[v]) or a loop-carried dependence (B[v + 1] = B[v]) fails the check
 * and keeps its loop (LLVM's vectorizer gets it through the loop metadata). Lets, nested vectors, inner loops and other statements
 * also keep the loop as it is. The lanes are the largest power of two up to min(e, 64): a
 * longer or odd extent becomes a serial loop over vector chunks plus a scalar tail loop. */

typedef struct vectorize {
  ir_analyzer *an;
  const ir_var *v; /* while one loop is looked at or rewritten */
  ir_expr *base;   /* the value of v in lane 0 */
  int lanes;
  ptr_list stores; /* ir_store * of the body */
  ptr_list loads;  /* ir_load * of the body */
  bool bad;        /* something the rewrite cannot handle */
  bool nomem;      /* the lists could not grow */
} vectorize;

static ir_expr *widen(ir_arena *a, ir_expr *x, int lanes) {
  return x && x->dtype.lanes == 1 ? ir_broadcast_new(a, x, lanes) : x;
}

/* e computed for every lane: a vector when e uses v, else e itself (a scalar). */
static ir_expr *lift(vectorize *V, ir_arena *a, ir_expr *e) {
  if (!mentions(e, V->v)) return e;
  int L = V->lanes;
  switch (e->kind) {
  case IR_VAR: return ir_ramp_new(a, V->base, ir_int(a, e->dtype, 1), L);
  case IR_NOT: return ir_not_new(a, lift(V, a, ((ir_not *)e)->a));
  case IR_CAST: {
    ir_expr *x = widen(a, lift(V, a, ((ir_cast *)e)->value), L);
    return x ? ir_cast_new(a, ir_dt_with_lanes(e->dtype, L), x) : NULL;
  }
  case IR_SELECT: {
    ir_select *x = (ir_select *)e;
    ir_expr *c = lift(V, a, x->cond);
    return ir_select_new(a, c, widen(a, lift(V, a, x->t), L), widen(a, lift(V, a, x->f), L));
  }
  case IR_CALL: {
    ir_call *x = (ir_call *)e;
    ir_expr *args[3];
    for (int i = 0; i < x->nargs && i < 3; i++)
      if (!(args[i] = widen(a, lift(V, a, x->args[i]), L))) return NULL;
    return ir_call_new(a, x->op, x->nargs, args);
  }
  case IR_LOAD: {
    ir_load *x = (ir_load *)e;
    ir_expr *small[8], **idx = small;
    size_t size = sizeof(ir_expr *) * (size_t)x->nindices;
    if (x->nindices > 8 && !(idx = ir_malloc(a->ctx, size))) return NULL;
    ir_expr *r = NULL;
    bool ok = true;
    for (int i = 0; i < x->nindices && ok; i++) ok = (idx[i] = lift(V, a, x->indices[i])) != NULL;
    if (ok) r = ir_load_new(a, x->buffer, x->nindices, idx);
    if (idx != small) ir_free(a->ctx, idx, size);
    return r;
  }
  default:
    if (ir_is_binary(e)) {
      ir_binary *x = (ir_binary *)e;
      return ir_binop(a, e->kind, widen(a, lift(V, a, x->a), L), widen(a, lift(V, a, x->b), L));
    }
    ir_fail(a->ctx, e->span, KILN_ERR_INTERNAL, "vectorize: cannot vectorize a %s",
            ir_kind_name(e->kind));
    return NULL;
  }
}

/* Collects loads and rejects expressions the rewrite does not handle. */
static bool vec_expr_visit(ir_node *n, void *ud) {
  vectorize *V = ud;
  if (V->bad) return false;
  if (n->kind == IR_LET || n->kind == IR_RAMP || n->kind == IR_BROADCAST ||
      n->kind == IR_STR_IMM || (ir_is_expr(n) && n->dtype.lanes != 1)) {
    V->bad = true;
    return false;
  }
  if (n->kind == IR_LOAD && !pl_push(&V->loads, n)) V->bad = V->nomem = true;
  return !V->bad;
}

/* Whether the store's indices lie in its buffer for every v of the loop (for turning
 * `if (c) store` into a store of select(c, value, old value)). */
static bool store_in_bounds(vectorize *V, ir_arena *a, const ir_store *s) {
  for (int d = 0; d < s->nindices; d++) {
    ir_expr *i = s->indices[d], *dim = s->buffer->shape[d];
    if (!ir_dt_eq(i->dtype, dim->dtype)) return false;
    ir_expr *in = ir_binop(a, IR_AND, ir_binop(a, IR_GE, i, ir_int(a, i->dtype, 0)),
                           ir_binop(a, IR_LT, i, dim));
    if (!in || !ir_prove(V->an, in)) return false;
  }
  return true;
}

/* Checks the statement structure and collects stores and loads. */
static void vec_check_stmt(vectorize *V, ir_arena *a, ir_stmt *s) {
  if (V->bad) return;
  switch (s->kind) {
  case IR_STORE: {
    ir_store *x = (ir_store *)s;
    if (!pl_push(&V->stores, x)) V->bad = V->nomem = true;
    ir_visit(s, false, vec_expr_visit, V);
    return;
  }
  case IR_SEQ: {
    ir_seq *x = (ir_seq *)s;
    for (int i = 0; i < x->nstmts; i++) vec_check_stmt(V, a, x->stmts[i]);
    return;
  }
  case IR_IF: {
    ir_if *x = (ir_if *)s;
    ir_visit(x->cond, false, vec_expr_visit, V);
    if (!mentions(x->cond, V->v)) {
      vec_check_stmt(V, a, x->then_case);
      if (x->else_case) vec_check_stmt(V, a, x->else_case);
      return;
    }
    /* a condition on v: a select, when both sides store to one place */
    ir_store *t = ir_as_store(x->then_case), *e = ir_as_store(x->else_case);
    if (!t || (x->else_case && !e)) {
      V->bad = true;
      return;
    }
    if (e) {
      bool same = t->buffer == e->buffer;
      for (int d = 0; same && d < t->nindices; d++) same = same_expr(t->indices[d], e->indices[d]);
      if (!same) V->bad = true;
    } else if (!store_in_bounds(V, a, t)) {
      V->bad = true;
    }
    vec_check_stmt(V, a, x->then_case);
    if (e) vec_check_stmt(V, a, x->else_case);
    return;
  }
  default: V->bad = true; return;
  }
}

static ir_expr *lift_simplified(vectorize *V, ir_arena *a, ir_expr *e) {
  ir_expr *r = lift(V, a, e);
  return r ? ir_simplify_expr(V->an, r) : NULL;
}

/* Whether iterations of the loop never share an element of b: some dimension d has, in every
 * access to b, the vector index ramp(base, s, lanes) with one base and one constant s != 0,
 * so that iteration v touches only elements whose index d is base + s * v. (This allows
 * B[0, j] next to B[i, j] under `if i == 0`, which the simplifier makes of B[i, j].)
 * 1: yes, 0: no, -1: error. */
static int separable(vectorize *V, ir_arena *a, const ir_buffer *b) {
  for (int d = 0; d < b->ndim; d++) {
    const ir_ramp *first = NULL;
    bool ok = true;
    for (int k = 0; k < V->stores.n + V->loads.n && ok; k++) {
      ir_node *acc = k < V->stores.n ? V->stores.v[k] : V->loads.v[k - V->stores.n];
      ir_buffer *ab = acc->kind == IR_STORE ? ((ir_store *)acc)->buffer : ((ir_load *)acc)->buffer;
      if (ab != b) continue;
      ir_expr *idx = acc->kind == IR_STORE ? ((ir_store *)acc)->indices[d] : ((ir_load *)acc)->indices[d];
      ir_expr *li = lift_simplified(V, a, idx);
      if (!li) return -1;
      const ir_ramp *r = li->kind == IR_RAMP ? (const ir_ramp *)li : NULL;
      int64_t st, st0;
      if (!r || !int_value(r->stride, &st) || st == 0)
        ok = false;
      else if (!first)
        first = r;
      else
        ok = int_value(first->stride, &st0) && st == st0 && same_expr(first->base, r->base);
    }
    if (ok && first) return 1;
  }
  return 0;
}

/* The dependence check (see the pass comment) for every buffer the body stores to. Needs
 * V->base and V->lanes set. 1: legal, 0: not, -1: error. */
static int vec_legal(vectorize *V, ir_arena *a) {
  for (int i = 0; i < V->stores.n; i++) {
    const ir_buffer *b = ((ir_store *)V->stores.v[i])->buffer;
    bool seen = false;
    for (int j = 0; j < i && !seen; j++) seen = ((ir_store *)V->stores.v[j])->buffer == b;
    if (seen) continue;
    int r = separable(V, a, b);
    if (r <= 0) return r;
  }
  return 1;
}


/* A vector store of `value` to s's place (value not yet lifted). */
static ir_stmt *vec_store(vectorize *V, ir_arena *a, const ir_store *s, ir_expr *value) {
  ir_expr *small[8], **idx = small;
  size_t size = sizeof(ir_expr *) * (size_t)s->nindices;
  if (s->nindices > 8 && !(idx = ir_malloc(a->ctx, size))) return NULL;
  ir_stmt *r = NULL;
  bool ok = true;
  for (int d = 0; d < s->nindices && ok; d++) ok = (idx[d] = lift_simplified(V, a, s->indices[d])) != NULL;
  ir_expr *val = ok ? widen(a, lift_simplified(V, a, value), V->lanes) : NULL;
  if (val) r = ir_store_new(a, s->buffer, val, s->nindices, idx);
  if (idx != small) ir_free(a->ctx, idx, size);
  return r;
}

static ir_stmt *vec_stmt(vectorize *V, ir_arena *a, ir_stmt *s) {
  switch (s->kind) {
  case IR_STORE: return vec_store(V, a, (ir_store *)s, ((ir_store *)s)->value);
  case IR_SEQ: {
    ir_seq *x = (ir_seq *)s;
    ptr_list l;
    pl_init(&l, a->ctx);
    ir_stmt *r = NULL;
    bool ok = true;
    for (int i = 0; i < x->nstmts && ok; i++) {
      ir_stmt *c = vec_stmt(V, a, x->stmts[i]);
      ok = c && pl_push(&l, c);
    }
    if (ok) r = ir_seq_new(a, l.n, (ir_stmt *const *)l.v);
    pl_free(&l);
    return r;
  }
  case IR_IF: {
    ir_if *x = (ir_if *)s;
    if (!mentions(x->cond, V->v)) {
      ir_stmt *t = vec_stmt(V, a, x->then_case);
      ir_stmt *e = t && x->else_case ? vec_stmt(V, a, x->else_case) : NULL;
      return t && (!x->else_case || e) ? ir_if_new(a, x->cond, t, e) : NULL;
    }
    ir_store *t = (ir_store *)x->then_case, *e = ir_as_store(x->else_case);
    ir_expr *otherwise = e ? e->value : ir_load_new(a, t->buffer, t->nindices, t->indices);
    return vec_store(V, a, t, ir_select_new(a, x->cond, t->value, otherwise));
  }
  default:
    ir_fail(a->ctx, s->span, KILN_ERR_INTERNAL, "vectorize: cannot vectorize a %s",
            ir_kind_name(s->kind));
    return NULL;
  }
}

/* The vector form of loop f, or f itself when it does not qualify. */
static ir_node *vectorize_loop(vectorize *V, ir_arena *a, ir_for *f) {
  int64_t ext;
  if (!int_value(f->extent, &ext) || ext < 2) return &f->h;
  int lanes = 1;
  while (lanes * 2 <= ext && lanes * 2 <= MAX_VECTOR_LANES) lanes *= 2;
  V->v = f->var;
  V->base = f->min;
  V->lanes = lanes;
  V->bad = V->nomem = false;
  V->stores.n = V->loads.n = 0;
  vec_check_stmt(V, a, f->body);
  if (V->nomem) return NULL;
  if (V->bad) return &f->h;
  int legal = vec_legal(V, a);
  if (legal <= 0) return legal < 0 ? NULL : &f->h;

  int64_t nchunks = ext / lanes, rem = ext % lanes;
  kiln_dtype t = f->var->h.dtype;
  ir_stmt *parts[2];
  int np = 0;
  if (nchunks == 1) {
    parts[np++] = vec_stmt(V, a, f->body);
  } else {
    ir_var *c = ir_var_new(a, f->var->name, t);
    V->base = c ? ir_add(a, f->min, ir_mul(a, &c->h, ir_int(a, t, lanes))) : NULL;
    ir_stmt *body = V->base ? vec_stmt(V, a, f->body) : NULL;
    parts[np++] = ir_for_new(a, c, ir_int(a, t, 0), ir_int(a, t, nchunks), IR_FOR_SERIAL, 0, NULL, body);
  }
  if (!parts[0]) return NULL;
  if (rem) {
    ir_var *tv;
    ir_expr *start = ir_simplify_expr(V->an, ir_add(a, f->min, ir_int(a, t, nchunks * lanes)));
    ir_stmt *tail = start ? copy_loop(a, f, start, ir_int(a, t, rem), &tv) : NULL;
    if (!tail) return NULL;
    parts[np++] = with_kind(a, (ir_for *)tail, IR_FOR_SERIAL, ((ir_for *)tail)->body);
  }
  return seq_flat(a, np, parts);
}

static ir_node *vectorize_visit(ir_mutator *m, ir_node *n) {
  vectorize *V = m->ud;
  if (ir_is_expr(n)) return n;
  switch (n->kind) {
  case IR_FOR: {
    ir_for *x = (ir_for *)n;
    if (!bind_loop(V->an, x->var, x->min, x->extent)) return NULL;
    ir_node *c = ir_mutate_children(m, n);
    if (!c || ((ir_for *)c)->for_kind != IR_FOR_VECTORIZED) return c;
    return vectorize_loop(V, m->arena, (ir_for *)c);
  }
  case IR_LET_STMT: {
    ir_let_stmt *x = (ir_let_stmt *)n;
    if (ir_dt_is_int(x->value->dtype)) {
      ir_expr *one = ir_int(m->arena, x->value->dtype, 1);
      if (!one || !bind_loop(V->an, x->var, x->value, one)) return NULL;
    }
    return ir_mutate_children(m, n);
  }
  case IR_SEQ: return mutate_seq(m, n);
  case IR_BLOCK:
  case IR_BLOCK_REALIZE: return n;
  default: return ir_mutate_children(m, n);
  }
}

static ir_func *pass_vectorize(kiln_context *ctx, ir_arena *arena, ir_func *f,
                               const ir_lower_options *o) {
  (void)o;
  vectorize V;
  memset(&V, 0, sizeof V);
  pl_init(&V.stores, ctx);
  pl_init(&V.loads, ctx);
  if (!(V.an = ir_analyzer_new(arena))) return NULL;
  ir_mutator m = {arena, vectorize_visit, &V, NULL, false};
  ir_func *r = mutate_func(&m, f);
  pl_free(&V.stores);
  pl_free(&V.loads);
  ir_analyzer_free(V.an);
  return r;
}

/* ---- Pass 6: unroll ----------------------------------------------------------------------
 * An unrolled loop with a constant extent of at most max_unroll_extent becomes its
 * iterations in sequence (each a copy with fresh definitions and the variable replaced by
 * its value); a longer one, or one with a symbolic extent, becomes serial. Inner loops are
 * unrolled first. Loops that still hold blocks are left as they are.
 * A loop annotated "unroll_max_step" = N > 0 (a decision of the tuner's design space,
 * schedule/rules.c) also unrolls, under it, every serial nest of constant extents whose
 * iterations (the loop's extent times the extents of all loops inside it) number at most N,
 * outermost nests first: the whole nest becomes straight-line code. */

/* The annotation's value on a loop (0 when absent or not a positive integer). */
static int64_t auto_unroll_steps(const ir_for *f) {
  for (int i = 0; i < f->nannots; i++)
    if (strcmp(f->annots[i]->key, "unroll_max_step") == 0) {
      const ir_int_imm *v = ir_as_int(f->annots[i]->value);
      return v && v->value > 0 ? v->value : 0;
    }
  return 0;
}

/* The product of the constant extents of the loops in s (INT64_MAX when one is symbolic or
 * the product overflows): an upper bound of the iterations one execution of s runs. */
typedef struct nest_steps_ctx {
  int64_t steps;
} nest_steps_ctx;

static bool nest_steps_visit(ir_node *n, void *ud) {
  nest_steps_ctx *c = ud;
  const ir_for *f = ir_as_for(n);
  if (f && c->steps != INT64_MAX) {
    int64_t e;
    if (!int_value(f->extent, &e) || e < 0 || __builtin_mul_overflow(c->steps, e, &c->steps))
      c->steps = INT64_MAX;
  }
  return !ir_is_expr(n) && c->steps != INT64_MAX;
}

static int64_t nest_steps(const ir_node *s) {
  nest_steps_ctx c = {1};
  ir_visit((ir_node *)s, false, nest_steps_visit, &c);
  return c.steps;
}

/* The auto-unroll mutator's state: the step budget and the pass options. */
typedef struct auto_unroll {
  int64_t max_steps;
  const ir_lower_options *o;
} auto_unroll;

static ir_node *unroll_visit(ir_mutator *m, ir_node *n);

/* Top-down under an annotated loop: a serial (or unrolled) nest within the budget has all
 * its loops marked unrolled, then expands through unroll_visit; others are entered. */
static ir_node *mark_unrolled_visit(ir_mutator *m, ir_node *n) {
  if (ir_is_expr(n)) return n;
  if (n->kind == IR_SEQ) return mutate_seq(m, n);
  ir_node *c = ir_mutate_children(m, n);
  ir_for *f = c ? ir_as_for(c) : NULL;
  if (!f || f->for_kind != IR_FOR_SERIAL) return c;
  return with_kind(m->arena, f, IR_FOR_UNROLLED, f->body);
}

static ir_node *auto_unroll_visit(ir_mutator *m, ir_node *n) {
  const auto_unroll *au = m->ud;
  if (ir_is_expr(n)) return n;
  if (n->kind == IR_BLOCK || n->kind == IR_BLOCK_REALIZE) return n;
  if (n->kind == IR_SEQ) return mutate_seq(m, n);
  ir_for *f = ir_as_for(n);
  if (f && (f->for_kind == IR_FOR_SERIAL || f->for_kind == IR_FOR_UNROLLED) &&
      !find_block(n) && nest_steps(n) <= au->max_steps) {
    ir_mutator mark = {m->arena, mark_unrolled_visit, NULL, NULL, false};
    ir_node *marked = ir_mutate(&mark, n);
    if (!marked) return NULL;
    ir_lower_options o = au->o ? *au->o : (ir_lower_options){0, false};
    if (o.max_unroll_extent < au->max_steps && au->max_steps <= INT32_MAX)
      o.max_unroll_extent = (int)au->max_steps;
    ir_mutator expand = {m->arena, unroll_visit, &o, NULL, false};
    return ir_mutate(&expand, marked);
  }
  return ir_mutate_children(m, n);
}

static ir_node *unroll_visit(ir_mutator *m, ir_node *n) {
  const ir_lower_options *o = m->ud;
  ir_arena *a = m->arena;
  if (ir_is_expr(n)) return n;
  if (n->kind == IR_BLOCK || n->kind == IR_BLOCK_REALIZE) return n;
  if (n->kind == IR_SEQ) return mutate_seq(m, n);
  ir_node *c = ir_mutate_children(m, n);
  ir_for *f = c ? ir_as_for(c) : NULL;
  int64_t steps = f ? auto_unroll_steps(f) : 0;
  if (f && steps > 0) {
    auto_unroll au = {steps, o};
    ir_mutator am = {a, auto_unroll_visit, &au, NULL, false};
    ir_node *body = ir_mutate(&am, (ir_node *)f->body);
    if (!body) return NULL;
    if (body != (ir_node *)f->body) {
      ir_stmt *nf = with_kind(a, f, f->for_kind, (ir_stmt *)body);
      if (!nf) return NULL;
      c = (ir_node *)nf;
      f = ir_as_for(c);
    }
  }
  if (!f || f->for_kind != IR_FOR_UNROLLED || find_block(&f->h)) return c;
  int64_t ext, max = o && o->max_unroll_extent > 0 ? o->max_unroll_extent : DEFAULT_MAX_UNROLL;
  if (!int_value(f->extent, &ext) || ext > max) return with_kind(a, f, IR_FOR_SERIAL, f->body);
  if (ext <= 0) return nop(a);
  ptr_list l;
  pl_init(&l, a->ctx);
  ir_stmt *r = NULL;
  bool ok = true;
  for (int64_t k = 0; k < ext && ok; k++) {
    int64_t mn;
    ir_expr *val = int_value(f->min, &mn) && !__builtin_add_overflow(mn, k, &(int64_t){0})
                       ? ir_int(a, f->var->h.dtype, mn + k)
                       : ir_add(a, f->min, ir_int(a, f->var->h.dtype, k));
    ir_stmt *copy = val ? copy_fresh(a, f->body, 1, &f->var, &val) : NULL;
    ok = copy && pl_push(&l, copy);
  }
  if (ok) r = seq_flat(a, l.n, (ir_stmt *const *)l.v);
  pl_free(&l);
  return r;
}

static ir_func *pass_unroll(kiln_context *ctx, ir_arena *arena, ir_func *f,
                            const ir_lower_options *o) {
  (void)ctx;
  ir_mutator m = {arena, unroll_visit, (void *)o, NULL, false};
  return mutate_func(&m, f);
}

/* ---- Pass 7: storage_rewrite -------------------------------------------------------------
 * Two rewrites, both exact for programs that write allocated memory before reading it (the
 * only programs whose results do not depend on uninitialized memory; codegen does not clear
 * allocations either).
 * Hoisting: a serial loop whose body starts with allocates of constant size allocates once,
 * outside the loop (inner loops first, so an allocation rises through a whole serial nest;
 * never out of a parallel, vectorized or unrolled loop).
 * Sharing: in a sequence, the candidates are the allocates directly around it (live from
 * the first statement of the sequence that uses the buffer to the last) and the allocates
 * that start a statement of the sequence (live for that statement). Candidates are 1-D
 * buffers of constant size without strides or offset (all of them, after flatten_buffers).
 * Candidates of the same dtype and scope whose live ranges do not overlap share one allocate
 * of the largest size around the sequence (greedy, in order of first use) and every access
 * is redirected to it. */

static bool const_size(const ir_buffer *b, int64_t *elems) {
  int64_t v;
  if (b->ndim != 1 || b->nstrides || b->elem_offset || !int_value(b->shape[0], &v) || v < 0)
    return false;
  *elems = v;
  return true;
}

static bool const_shape(const ir_buffer *b) {
  int64_t v;
  for (int i = 0; i < b->ndim; i++)
    if (!int_value(b->shape[i], &v)) return false;
  for (int i = 0; i < b->nstrides; i++)
    if (!int_value(b->strides[i], &v)) return false;
  return !b->elem_offset || int_value(b->elem_offset, &v);
}

static ir_node *hoist_visit(ir_mutator *m, ir_node *n) {
  ir_arena *a = m->arena;
  if (ir_is_expr(n) || n->kind == IR_BLOCK || n->kind == IR_BLOCK_REALIZE) return n;
  ir_node *c = ir_mutate_children(m, n);
  ir_for *f = c ? ir_as_for(c) : NULL;
  if (!f || f->for_kind != IR_FOR_SERIAL) return c;
  ir_allocate *chain[64];
  int k = 0;
  ir_stmt *body = f->body;
  while (k < 64 && body->kind == IR_ALLOCATE && const_shape(((ir_allocate *)body)->buffer)) {
    chain[k++] = (ir_allocate *)body;
    body = chain[k - 1]->body;
  }
  if (!k) return c;
  ir_stmt *r = with_kind(a, f, f->for_kind, body);
  for (int i = k - 1; i >= 0 && r; i--) r = ir_allocate_new(a, chain[i]->buffer, r);
  return r;
}

typedef struct candidate {
  ir_buffer *buf;
  int first, last; /* statements of the sequence that use it (first > last: unused) */
  int elem;        /* the statement it starts, or -1 for an allocate around the sequence */
  int slot;
  int64_t elems;
} candidate;

typedef struct slot {
  kiln_dtype dtype;
  const char *scope;
  int last, members, align;
  int64_t elems;
  const char *name;
  ir_buffer *nb;
} slot;

typedef struct share {
  ir_ptrmap index; /* candidate buffer -> (void *)(1 + its position) while scanning */
  candidate *cands;
  int elem;        /* the statement being scanned */
} share;

static bool share_scan_visit(ir_node *n, void *ud) {
  share *S = ud;
  if (n->kind == IR_BUFFER) {
    uintptr_t at = (uintptr_t)ir_ptrmap_get(&S->index, n);
    if (at) {
      candidate *c = &S->cands[at - 1];
      if (c->first > c->last) c->first = S->elem;
      c->last = S->elem;
    }
  }
  return true;
}

/* Redirects accesses of buffers in the map to their shared buffer. */
static ir_node *redirect_visit(ir_mutator *m, ir_node *n) {
  ir_ptrmap *map = m->ud;
  if (n->kind == IR_LOAD || n->kind == IR_STORE) {
    ir_buffer *b = n->kind == IR_LOAD ? ((ir_load *)n)->buffer : ((ir_store *)n)->buffer;
    return remap_access(m->arena, ir_mutate_children(m, n), ir_ptrmap_get(map, b));
  }
  if (n->kind == IR_VAR || n->kind == IR_INT_IMM || n->kind == IR_FLOAT_IMM) return n;
  return ir_mutate_children(m, n);
}

static ir_node *share_visit(ir_mutator *m, ir_node *n);

/* Removes the allocates of shared buffers from the chain that starts statement s. */
static ir_stmt *strip_shared(ir_arena *a, ir_stmt *s, const ir_ptrmap *shared) {
  if (s->kind != IR_ALLOCATE) return s;
  ir_allocate *x = (ir_allocate *)s;
  ir_stmt *body = strip_shared(a, x->body, shared);
  if (!body) return NULL;
  if (ir_ptrmap_get(shared, x->buffer)) return body;
  return body == x->body ? s : ir_allocate_new(a, x->buffer, body);
}

/* The sharing rewrite of sequence q with the allocates `chain` (outermost first) directly
 * around it; returns the rewritten chain and sequence. */
static ir_stmt *share_seq(ir_mutator *m, ir_allocate **chain, int nchain, ir_seq *q) {
  ir_arena *a = m->arena;
  kiln_context *ctx = a->ctx;
  int n = q->nstmts;
  ir_stmt **elems = ir_malloc(ctx, sizeof(ir_stmt *) * (size_t)n);
  share S = {{0}, NULL, 0};
  ir_ptrmap_init(&S.index, ctx);
  ir_ptrmap shared;
  ir_ptrmap_init(&shared, ctx);
  slot *slots = NULL;
  int nslots = 0, cap = nchain + 1; /* candidates (at least one, for a non-empty malloc) */
  ir_stmt *res = NULL;
  bool changed = false;
  if (!elems) goto out;
  for (int i = 0; i < n; i++) {
    if (!(elems[i] = ir_mutate(m, q->stmts[i]))) goto out;
    changed |= elems[i] != q->stmts[i];
  }
  /* candidates: the chain around, then the allocates starting each statement */
  int ncand = 0;
  for (int i = 0; i < n; i++)
    for (ir_stmt *s = elems[i]; s->kind == IR_ALLOCATE; s = ((ir_allocate *)s)->body) cap++;
  if (!(S.cands = ir_malloc(ctx, sizeof(candidate) * (size_t)cap))) goto out;
  for (int i = 0; i < nchain; i++) {
    int64_t e;
    if (!const_size(chain[i]->buffer, &e)) continue;
    S.cands[ncand] = (candidate){chain[i]->buffer, 1, 0, -1, -1, e};
    if (ir_ptrmap_put(&S.index, chain[i]->buffer, (void *)(uintptr_t)(ncand + 1))) goto out;
    ncand++;
  }
  for (S.elem = 0; S.elem < n; S.elem++) ir_visit(elems[S.elem], true, share_scan_visit, &S);
  for (int i = 0; i < n; i++)
    for (ir_stmt *s = elems[i]; s->kind == IR_ALLOCATE; s = ((ir_allocate *)s)->body) {
      int64_t e;
      if (const_size(((ir_allocate *)s)->buffer, &e))
        S.cands[ncand++] = (candidate){((ir_allocate *)s)->buffer, i, i, i, -1, e};
    }
  /* greedy assignment in order of first use (stable) */
  if (!(slots = ir_malloc(ctx, sizeof(slot) * (size_t)cap))) goto out;
  for (int pos = 0; pos < n; pos++)
    for (int i = 0; i < ncand; i++) {
      candidate *c = &S.cands[i];
      if (c->first != pos || c->first > c->last) continue;
      int s = 0;
      for (; s < nslots; s++)
        if (slots[s].last < c->first && ir_dt_eq(slots[s].dtype, c->buf->h.dtype) &&
            strcmp(slots[s].scope, c->buf->scope) == 0)
          break;
      if (s == nslots)
        slots[nslots++] = (slot){c->buf->h.dtype, c->buf->scope, -1, 0, 0, 0, c->buf->name, NULL};
      slot *sl = &slots[s];
      sl->last = c->last;
      sl->members++;
      if (c->elems > sl->elems) sl->elems = c->elems;
      if (c->buf->align > sl->align) sl->align = c->buf->align;
      c->slot = s;
    }
  bool any = false;
  for (int s = 0; s < nslots; s++) {
    if (slots[s].members < 2) continue;
    any = true;
    kiln_dtype it = KILN_INT64;
    for (int i = 0; i < ncand; i++)
      if (S.cands[i].slot == s) it = S.cands[i].buf->shape[0]->dtype;
    ir_expr *size = ir_int(a, it, slots[s].elems);
    if (!(slots[s].nb = ir_buffer_new(a, slots[s].name, slots[s].dtype, 1, &size, 0, NULL, NULL,
                                      slots[s].align, slots[s].scope)))
      goto out;
  }
  if (any) {
    for (int i = 0; i < ncand; i++) {
      candidate *c = &S.cands[i];
      if (c->slot >= 0 && slots[c->slot].nb && ir_ptrmap_put(&shared, c->buf, slots[c->slot].nb))
        goto out;
    }
    ir_mutator rm = {a, redirect_visit, &shared, NULL, false};
    for (int i = 0; i < n; i++)
      if (!(elems[i] = strip_shared(a, elems[i], &shared)) || !(elems[i] = ir_mutate(&rm, elems[i])))
        goto out;
    changed = true;
  }
  res = !changed ? &q->h : any ? seq_flat(a, n, elems) : ir_seq_new(a, n, elems);
  for (int i = nchain - 1; i >= 0 && res; i--) {
    if (ir_ptrmap_get(&shared, chain[i]->buffer)) continue;
    if (changed || res != chain[i]->body) res = ir_allocate_new(a, chain[i]->buffer, res);
    else res = &chain[i]->h;
  }
  for (int s = 0; s < nslots && res; s++)
    if (slots[s].nb) res = ir_allocate_new(a, slots[s].nb, res);
out:
  ir_free(ctx, elems, elems ? sizeof(ir_stmt *) * (size_t)n : 0);
  ir_free(ctx, S.cands, S.cands ? sizeof(candidate) * (size_t)cap : 0);
  ir_free(ctx, slots, slots ? sizeof(slot) * (size_t)cap : 0);
  ir_ptrmap_free(&S.index);
  ir_ptrmap_free(&shared);
  return res;
}

static ir_node *share_visit(ir_mutator *m, ir_node *n) {
  if (ir_is_expr(n) || n->kind == IR_BLOCK || n->kind == IR_BLOCK_REALIZE) return n;
  if (n->kind == IR_SEQ) return share_seq(m, NULL, 0, (ir_seq *)n);
  if (n->kind != IR_ALLOCATE) return ir_mutate_children(m, n);
  ir_allocate *chain[64];
  int k = 0;
  ir_stmt *s = n;
  while (k < 64 && s->kind == IR_ALLOCATE) {
    chain[k++] = (ir_allocate *)s;
    s = chain[k - 1]->body;
  }
  if (s->kind == IR_SEQ) return share_seq(m, chain, k, (ir_seq *)s);
  ir_stmt *inner = ir_mutate(m, s);
  if (!inner || inner == s) return inner ? n : NULL;
  for (int i = k - 1; i >= 0 && inner; i--) inner = ir_allocate_new(m->arena, chain[i]->buffer, inner);
  return inner;
}

static ir_func *pass_storage(kiln_context *ctx, ir_arena *arena, ir_func *f,
                             const ir_lower_options *o) {
  (void)ctx;
  (void)o;
  ir_mutator hm = {arena, hoist_visit, NULL, NULL, false};
  ir_func *r = mutate_func(&hm, f);
  ir_mutator sm = {arena, share_visit, NULL, NULL, false};
  return r ? mutate_func(&sm, r) : NULL;
}

/* ---- Pass 8: outline_parallel ------------------------------------------------------------
 * codegen outlines each parallel loop into a task function run by the runtime's thread pool
 * (capturing every variable and buffer the body uses). This pass makes parallel loops fit
 * that and keeps results exact:
 * - a parallel loop inside another one runs serially (the runtime would run it serially
 *   anyway, from inside a task);
 * - a parallel loop of constant extent 0 or 1 is serial;
 * - a parallel loop in which some iteration stores to a buffer that is not allocated inside
 *   the loop at indices that do not depend on the loop variable (directly, or through lets
 *   and inner loops whose bounds depend on it) would race (a reduction over the parallel
 *   loop); it runs serially instead. (Indices that do depend on it are trusted to differ
 *   between iterations, as the schedule makes them.)
 * - no block may be left inside a parallel loop (KILN_ERR_INTERNAL: lower_blocks must run
 *   first; blocks are not outlined). */

typedef struct par_check {
  ir_ptrmap deps;   /* the loop variable and the lets that depend on it */
  ir_ptrmap inner;  /* buffers allocated inside the loop */
  const ir_var *v;
  bool race;
  kiln_status st;
} par_check;

static bool depends_visit(ir_node *n, void *ud) {
  par_check *P = ud;
  if (n->kind == IR_VAR && ir_ptrmap_get(&P->deps, n)) P->race = false; /* reused as "found" */
  return true;
}

static bool uses_dep(par_check *P, ir_expr *e) {
  bool saved = P->race;
  P->race = true;
  ir_visit(e, false, depends_visit, P);
  bool found = !P->race;
  P->race = saved;
  return found;
}

static bool par_check_visit(ir_node *n, void *ud) {
  par_check *P = ud;
  if (P->race || P->st) return false;
  if (n->kind == IR_ALLOCATE) {
    if (ir_ptrmap_put(&P->inner, ((ir_allocate *)n)->buffer, (void *)1)) P->st = KILN_ERR_NOMEM;
  } else if (n->kind == IR_LET_STMT) {
    ir_let_stmt *x = (ir_let_stmt *)n;
    if (uses_dep(P, x->value) && ir_ptrmap_put(&P->deps, x->var, (void *)1)) P->st = KILN_ERR_NOMEM;
  } else if (n->kind == IR_FOR) {
    ir_for *x = (ir_for *)n;
    if ((uses_dep(P, x->min) || uses_dep(P, x->extent)) && ir_ptrmap_put(&P->deps, x->var, (void *)1))
      P->st = KILN_ERR_NOMEM;
  } else if (n->kind == IR_STORE) {
    ir_store *x = (ir_store *)n;
    if (!ir_ptrmap_get(&P->inner, x->buffer)) {
      bool dep = false;
      for (int d = 0; d < x->nindices && !dep; d++) dep = uses_dep(P, x->indices[d]);
      if (!dep) P->race = true;
    }
  }
  return !P->race && !P->st && !ir_is_expr(n);
}

/* Whether iterations of parallel loop f may store to one element (see above). */
static kiln_status par_races(kiln_context *ctx, ir_for *f, bool *race) {
  par_check P;
  memset(&P, 0, sizeof P);
  ir_ptrmap_init(&P.deps, ctx);
  ir_ptrmap_init(&P.inner, ctx);
  P.v = f->var;
  if (ir_ptrmap_put(&P.deps, f->var, (void *)1)) P.st = KILN_ERR_NOMEM;
  else ir_visit(f->body, false, par_check_visit, &P);
  *race = P.race;
  ir_ptrmap_free(&P.deps);
  ir_ptrmap_free(&P.inner);
  return P.st;
}

typedef struct outline {
  int depth; /* parallel loops around */
} outline;

static ir_node *outline_visit(ir_mutator *m, ir_node *n) {
  outline *O = m->ud;
  ir_arena *a = m->arena;
  if (ir_is_expr(n)) return n;
  ir_for *f = ir_as_for(n);
  if (!f || f->for_kind != IR_FOR_PARALLEL) return ir_mutate_children(m, n);
  int64_t ext;
  bool serial = O->depth > 0 || (int_value(f->extent, &ext) && ext <= 1);
  if (!serial) {
    const ir_block *b = find_block(f->body);
    if (b)
      return ir_fail(a->ctx, f->h.span, KILN_ERR_INTERNAL,
                     "outline_parallel: parallel loop '%s' still holds block '%s' (lower_blocks "
                     "runs first)",
                     f->var->name, b->name),
             NULL;
    bool race;
    if (par_races(a->ctx, f, &race)) return NULL;
    serial = race;
  }
  O->depth += !serial;
  ir_stmt *body = ir_mutate(m, f->body);
  O->depth -= !serial;
  if (!body) return NULL;
  if (!serial && body == f->body) return n;
  return with_kind(a, f, serial ? IR_FOR_SERIAL : IR_FOR_PARALLEL, body);
}

static ir_func *pass_parallel(kiln_context *ctx, ir_arena *arena, ir_func *f,
                              const ir_lower_options *o) {
  (void)ctx;
  (void)o;
  outline O = {0};
  ir_mutator m = {arena, outline_visit, &O, NULL, false};
  return mutate_func(&m, f);
}

/* ---- The pipeline ------------------------------------------------------------------------ */

static const ir_tpass passes[] = {
    {"lower_blocks", pass_lower_blocks},    /* blocks -> lets, ifs, allocates */
    {"compact_allocations", ir_compact_allocations}, /* shrink buffers to the tile using them */
    {"flatten_buffers", pass_flatten},      /* allocated buffers -> 1-D */
    {"simplify", pass_simplify},            /* fold the new index arithmetic */
    {"loop_partition", pass_partition},     /* split predicates -> main loop + tail */
    {"vectorize", pass_vectorize},          /* vectorized loops -> ramps and broadcasts */
    {"unroll", pass_unroll},                /* unrolled loops -> copies */
    {"storage_rewrite", pass_storage},      /* hoist and share allocations */
    {"outline_parallel", pass_parallel},    /* parallel loops codegen can outline */
    {"final_simplify", pass_simplify},
};

int ir_lower_pass_count(void) { return (int)(sizeof passes / sizeof passes[0]); }

const ir_tpass *ir_lower_pass_at(int i) {
  return i >= 0 && i < ir_lower_pass_count() ? &passes[i] : NULL;
}

/* Verifies f after `what` (a pass name, or "the input"), naming it in the message. */
static kiln_status verify_after(kiln_context *ctx, const ir_func *f, const char *what) {
  kiln_status st = ir_verify_func(ctx, f);
  if (st == KILN_OK) return KILN_OK;
  char msg[sizeof ctx->errmsg];
  snprintf(msg, sizeof msg, "%s", ctx->errmsg);
  return ir_fail(ctx, ctx->span, st, "lower: %s does not verify: %s", what, msg);
}

kiln_status ir_lower_func(kiln_context *ctx, ir_arena *arena, ir_func *f,
                          const ir_lower_options *o, ir_func **out) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (out) *out = NULL;
  if (!arena || !f || f->h.kind != IR_FUNC || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "lower: ir_lower_func needs an arena, a function and a result pointer");
  ir_lower_options defaults = {DEFAULT_MAX_UNROLL, false};
  if (!o) o = &defaults;
  if (o->verify) {
    kiln_status st = verify_after(ctx, f, "the input");
    if (st) return st;
  }
  /* a copy in arena, so that the result lives there even where no pass changes anything */
  ir_func *cur = (ir_func *)ir_deep_copy(arena, &f->h);
  if (!cur) return ctx_status(ctx);
  for (int i = 0; i < ir_lower_pass_count(); i++) {
    ir_func *next = passes[i].run(ctx, arena, cur, o);
    if (!next) return ctx_status(ctx);
    if (o->verify) {
      char what[64];
      snprintf(what, sizeof what, "the result of pass '%s'", passes[i].name);
      kiln_status st = verify_after(ctx, next, what);
      if (st) return st;
    }
    cur = next;
  }
  *out = cur;
  return KILN_OK;
}

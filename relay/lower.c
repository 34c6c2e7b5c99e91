/* lower.c: Relay -> TIR. relay_lower_func turns one fused function into a PrimFunc: each op
 * call runs its compute definition (the `lower` entry of its registry record), which emits
 * stages (loop nests around one block each) through relay_lower_compute; intermediate
 * results get buffers allocated by the PrimFunc's root block. relay_lower_module does this
 * for every primitive function of a fused module. The PrimFunc then goes to the schedule
 * (schedule/) and the TIR lowering pipeline (ir/transform.c). */
#include "lower.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/region.h"
#include "pass.h"

/* ---- Small helpers ---------------------------------------------------------------------- */

/* The op name without its namespace ("nn.conv2d" -> "conv2d", "image.resize2d" ->
 * "resize2d"): block and buffer names. */
static const char *short_op_name(const char *op) {
  if (strncmp(op, "nn.", 3) == 0) return op + 3;
  if (strncmp(op, "image.", 6) == 0) return op + 6;
  return op;
}

/* The fusion pattern of op as the "pattern" annotation. The pseudo-ops of this file (the
 * "constant" stage of a scalar constant, the "copy" of an output that is an input) are
 * elementwise. */
static const char *pattern_name(const char *op) {
  const relay_op *def = relay_op_lookup(op);
  switch (def ? def->pattern : RELAY_ELEMWISE) {
  case RELAY_ELEMWISE: return "elemwise";
  case RELAY_BROADCAST: return "broadcast";
  case RELAY_INJECTIVE: return "injective";
  case RELAY_COMM_REDUCE: return "reduce";
  case RELAY_OUT_ELEMWISE_FUSABLE: return "out_elemwise_fusable";
  default: return "opaque";
  }
}

/* Grows an array of pointers kept in context memory (the private lists of relay_lower_ctx). */
static kiln_status push_ptr(kiln_context *ctx, void ***arr, int *n, int *cap, void *p) {
  if (*n == *cap) {
    int nc = *cap ? 2 * *cap : 8;
    void **na = ir_realloc(ctx, *arr, sizeof(void *) * (size_t)*cap, sizeof(void *) * (size_t)nc);
    if (!na) return KILN_ERR_NOMEM;
    *arr = na;
    *cap = nc;
  }
  (*arr)[(*n)++] = p;
  return KILN_OK;
}

/* Block names and buffer names are unique separately (a block "relu" writes the buffer
 * "relu"); block names are kept in the same list with this tag in front. */
#define BLOCK_TAG "#"

/* base, base_1, base_2, ...: the first one not yet given out with this tag. */
static const char *unique_name(relay_lower_ctx *c, const char *tag, const char *base) {
  size_t tl = strlen(tag), bl = strlen(base);
  char *buf = ir_arena_alloc(c->arena, tl + bl + 24);
  if (!buf) return NULL;
  for (long k = 0;; k++) {
    if (k == 0) snprintf(buf, tl + bl + 24, "%s%s", tag, base);
    else snprintf(buf, tl + bl + 24, "%s%s_%ld", tag, base, k);
    bool taken = false;
    for (int i = 0; i < c->nnames && !taken; i++) taken = strcmp(c->names[i], buf) == 0;
    if (!taken) break;
  }
  if (push_ptr(c->ctx, (void ***)&c->names, &c->nnames, &c->cap_names, buf)) return NULL;
  return buf + tl;
}

const char *relay_lower_name(relay_lower_ctx *c, const char *base) {
  return unique_name(c, "", base);
}

ir_expr *relay_lower_i64(relay_lower_ctx *c, int64_t v) { return ir_int(c->arena, KILN_INT64, v); }

ir_expr *relay_lower_const(relay_lower_ctx *c, kiln_dtype t, double v) {
  if (ir_dt_is_float(t)) return ir_float(c->arena, t, v);
  if (ir_dt_is_bool(t)) return ir_int(c->arena, t, v != 0);
  return ir_int(c->arena, t, (int64_t)v);
}

/* The smallest (lowest) and largest value of t: the inits of max and min reductions. */
static ir_expr *extreme_const(relay_lower_ctx *c, kiln_dtype t, bool lowest) {
  if (ir_dt_is_float(t)) return ir_float(c->arena, t, lowest ? -INFINITY : INFINITY);
  if (ir_dt_is_bool(t)) return ir_int(c->arena, t, lowest ? 0 : 1);
  if (t.code == KILN_TYPE_UINT) {
    int64_t hi = t.bits >= 64 ? INT64_MAX : (int64_t)((1ull << t.bits) - 1);
    return ir_int(c->arena, t, lowest ? 0 : hi);
  }
  int64_t hi = t.bits >= 64 ? INT64_MAX : (int64_t)((1ull << (t.bits - 1)) - 1);
  return ir_int(c->arena, t, lowest ? -hi - 1 : hi);
}

ir_buffer *relay_lower_buffer(relay_lower_ctx *c, const char *name, kiln_dtype t, int ndim,
                              ir_expr *const *shape) {
  const char *unique = relay_lower_name(c, name);
  if (!unique) return NULL;
  ir_buffer *b = ir_buffer_new(c->arena, unique, t, ndim, shape, 0, NULL, NULL, 0, NULL);
  if (!b) return NULL;
  if (push_ptr(c->ctx, (void ***)&c->allocs, &c->nallocs, &c->cap_allocs, b)) return NULL;
  return b;
}

ir_expr *relay_lower_load_bcast(relay_lower_ctx *c, ir_buffer *buf, int out_ndim,
                                ir_var *const *out_iters) {
  if (buf->ndim > out_ndim) {
    ir_fail(c->ctx, c->span, KILN_ERR_SHAPE,
            "%s: input buffer '%s' has rank %d, more than the output's %d", c->op, buf->name,
            (int)buf->ndim, out_ndim);
    return NULL;
  }
  ir_expr *idx[RELAY_MAX_DIMS];
  if (buf->ndim > RELAY_MAX_DIMS) {
    ir_fail(c->ctx, c->span, KILN_ERR_UNSUPPORTED, "%s: buffer '%s' has more than %d dimensions",
            c->op, buf->name, RELAY_MAX_DIMS);
    return NULL;
  }
  for (int e = 0; e < buf->ndim; e++) {
    int d = out_ndim - buf->ndim + e;
    ir_int_imm *k = ir_as_int(buf->shape[e]);
    idx[e] = k && k->value == 1 ? relay_lower_i64(c, 0) : &out_iters[d]->h;
  }
  return ir_load_new(c->arena, buf, buf->ndim, idx);
}

/* ---- Stages ---------------------------------------------------------------------------- */

/* The status of a failed construction: what the constructor recorded, or out of memory. */
static kiln_status failed(relay_lower_ctx *c) {
  return c->ctx->code ? c->ctx->code : KILN_ERR_NOMEM;
}

/* An index expression as int64 (the loops and iterators of lowered code are int64). */
static ir_expr *as_i64(relay_lower_ctx *c, ir_expr *e) {
  if (!e || ir_dt_eq(e->dtype, KILN_INT64)) return e;
  ir_int_imm *k = ir_as_int(e);
  return k ? relay_lower_i64(c, k->value) : ir_cast_new(c->arena, KILN_INT64, e);
}

/* The annotations of a stage's block: "op", "pattern" and, for a block named
 * "<short op>_<stage>" (softmax_max), "stage". */
static int stage_annots(relay_lower_ctx *c, const char *name, ir_annot **annots) {
  ir_arena *a = c->arena;
  int n = 0;
  annots[n++] = ir_annot_new(a, "op", ir_str(a, c->op));
  annots[n++] = ir_annot_new(a, "pattern", ir_str(a, pattern_name(c->op)));
  const char *s = short_op_name(c->op);
  size_t sl = strlen(s);
  if (strncmp(name, s, sl) == 0 && name[sl] == '_' && name[sl + 1])
    annots[n++] = ir_annot_new(a, "stage", ir_str(a, name + sl + 1));
  return n;
}

/* One stage (lower.h): int64 loops i0.. (spatial, over out's shape) then k0.. (reduce)
 * around a block with iterators v0.. / vk0.. bound one to one, its value from f, its
 * regions detected, annotated for the schedule rules. The stage is appended to c->stages. */
/* The value of a reduction over nothing: its identity (the init it would have started from). */
typedef struct empty_reduce {
  kiln_dtype t;
  int reducer;
} empty_reduce;

static ir_expr *identity_compute(relay_lower_ctx *c, ir_var *const *iters, void *ud) {
  (void)iters;
  const empty_reduce *e = ud;
  switch (e->reducer) {
  case RELAY_REDUCE_SUM: return relay_lower_const(c, e->t, 0);
  case RELAY_REDUCE_PROD: return relay_lower_const(c, e->t, 1);
  case RELAY_REDUCE_MAX: return extreme_const(c, e->t, true);
  default: return extreme_const(c, e->t, false);
  }
}

kiln_status relay_lower_compute(relay_lower_ctx *c, const char *name, ir_buffer *out,
                                int nreduce, ir_expr *const *reduce_extents, int reducer,
                                relay_compute_fn f, void *ud) {
  /* A reduce axis of extent 0: the reduction's init would never run (it runs inside the
   * reduce loops), so the stage writes the identity instead. */
  if (reducer != RELAY_REDUCE_NONE && reducer >= RELAY_REDUCE_SUM && reducer <= RELAY_REDUCE_MIN)
    for (int j = 0; j < nreduce; j++) {
      const ir_int_imm *e = ir_as_int(reduce_extents[j]);
      if (e && e->value == 0) {
        empty_reduce er = {out->h.dtype, reducer};
        return relay_lower_compute(c, name, out, 0, NULL, RELAY_REDUCE_NONE, identity_compute, &er);
      }
    }
  ir_arena *a = c->arena;
  ir_span saved = a->span;
  a->span = c->span;
  int nd = out->ndim, n = nd + nreduce;
  ir_var **loops = ir_arena_alloc(a, sizeof *loops * (size_t)(n ? n : 1));
  ir_var **iters = ir_arena_alloc(a, sizeof *iters * (size_t)(n ? n : 1));
  ir_iter_var **ivs = ir_arena_alloc(a, sizeof *ivs * (size_t)(n ? n : 1));
  ir_expr **extents = ir_arena_alloc(a, sizeof *extents * (size_t)(n ? n : 1));
  if (!loops || !iters || !ivs || !extents) goto fail;
  if (reducer != RELAY_REDUCE_NONE && nreduce == 0) {
    a->span = saved;
    return ir_fail(c->ctx, c->span, KILN_ERR_INTERNAL,
                   "%s: stage '%s' has a reducer but no reduce axis", c->op, name);
  }
  for (int i = 0; i < n; i++) {
    bool spatial = i < nd;
    int j = spatial ? i : i - nd;
    char lname[24], iname[24];
    snprintf(lname, sizeof lname, spatial ? "i%d" : "k%d", j);
    snprintf(iname, sizeof iname, spatial ? "v%d" : "vk%d", j);
    extents[i] = as_i64(c, spatial ? out->shape[i] : reduce_extents[j]);
    loops[i] = ir_var_new(a, lname, KILN_INT64);
    iters[i] = ir_var_new(a, iname, KILN_INT64);
    ivs[i] = ir_iter_var_new(a, iters[i], relay_lower_i64(c, 0), extents[i],
                             spatial ? IR_ITER_SPATIAL : IR_ITER_REDUCE);
    if (!ivs[i]) goto fail;
  }

  ir_expr *value = f(c, iters, ud);
  if (!value) goto fail;
  if (!ir_dt_eq(value->dtype, out->h.dtype)) {
    char b1[32], b2[32];
    a->span = saved;
    return ir_fail(c->ctx, c->span, KILN_ERR_INTERNAL,
                   "%s: stage '%s' computes %s values for the %s buffer '%s'", c->op, name,
                   kiln_dtype_str(value->dtype, b1, sizeof b1),
                   kiln_dtype_str(out->h.dtype, b2, sizeof b2), out->name);
  }
  ir_expr **idx = (ir_expr **)iters;
  ir_stmt *init = NULL, *body;
  if (reducer == RELAY_REDUCE_NONE) {
    body = ir_store_new(a, out, value, nd, idx);
  } else {
    kiln_dtype t = out->h.dtype;
    ir_expr *acc = ir_load_new(a, out, nd, idx), *start, *next;
    switch (reducer) {
    case RELAY_REDUCE_SUM:
      start = relay_lower_const(c, t, 0);
      next = ir_add(a, acc, value);
      break;
    case RELAY_REDUCE_PROD:
      start = relay_lower_const(c, t, 1);
      next = ir_mul(a, acc, value);
      break;
    case RELAY_REDUCE_MAX:
      start = extreme_const(c, t, true);
      next = ir_binop(a, IR_MAX, acc, value);
      break;
    case RELAY_REDUCE_MIN:
      start = extreme_const(c, t, false);
      next = ir_binop(a, IR_MIN, acc, value);
      break;
    default:
      a->span = saved;
      return ir_fail(c->ctx, c->span, KILN_ERR_INTERNAL, "%s: unknown reducer %d", c->op, reducer);
    }
    init = ir_store_new(a, out, start, nd, idx);
    body = ir_store_new(a, out, next, nd, idx);
    if (!init) goto fail;
  }
  if (!body) goto fail;

  ir_annot *annots[3];
  int nannots = stage_annots(c, name, annots);
  for (int i = 0; i < nannots; i++)
    if (!annots[i]) goto fail;
  const char *bname = unique_name(c, BLOCK_TAG, name);
  if (!bname) goto fail;
  ir_block *blk = ir_block_new(a, bname, n, ivs, 0, NULL, 0, NULL, 0, NULL, nannots, annots, init,
                               body);
  blk = ir_block_with_detected_regions(a, blk);
  if (!blk) goto fail;
  ir_stmt *s = ir_block_realize_new(a, n, (ir_expr **)loops, NULL, blk);
  for (int i = n - 1; i >= 0 && s; i--)
    s = ir_for_new(a, loops[i], relay_lower_i64(c, 0), extents[i], IR_FOR_SERIAL, 0, NULL, s);
  if (!s) goto fail;
  a->span = saved;
  if (push_ptr(c->ctx, (void ***)&c->stages, &c->nstages, &c->cap_stages, s)) return KILN_ERR_NOMEM;
  return KILN_OK;
fail:
  a->span = saved;
  return failed(c);
}

/* ---- Fused functions: what each Relay node lowers to ------------------------------------ */

/* The buffers a node's value lives in: one for a tensor, one per leaf of a tuple. */
typedef struct node_bufs {
  int n;
  ir_buffer **bufs;
} node_bufs;

/* The state of one relay_lower_func. */
typedef struct func_lowering {
  relay_lower_ctx c;
  const relay_func *f;
  ir_arena *scratch;       /* node_bufs records and other temporaries */
  ir_ptrmap dims;          /* symbolic dimension of the relay types -> its int64 copy */
  int ndims;
  ir_var **dim_vars;       /* the copies, sorted by name (scalar parameters) */
  ir_ptrmap bufs;          /* relay node -> node_bufs */
  ir_ptrmap preset;        /* call -> ir_buffer *[leaves]: outputs it writes directly */
  ir_strbuf ops;           /* "nn.conv2d+add+nn.relu" */
} func_lowering;

/* The number of tensors in a type (a tensor: 1; a tuple: its leaves), or -1 for anything
 * else (functions). */
static int leaf_count(const relay_type *t) {
  if (relay_as_tensor_type(t)) return 1;
  const relay_tuple_type *tt = relay_as_tuple_type(t);
  if (!tt) return -1;
  int n = 0;
  for (int i = 0; i < tt->nfields; i++) {
    int k = leaf_count(tt->fields[i]);
    if (k < 0) return -1;
    n += k;
  }
  return n;
}

/* The leaf tensor types of t in order into out (which has room for leaf_count(t)). */
static int leaf_types(const relay_type *t, const relay_tensor_type **out) {
  const relay_tensor_type *tt = relay_as_tensor_type(t);
  if (tt) {
    out[0] = tt;
    return 1;
  }
  const relay_tuple_type *tu = relay_as_tuple_type(t);
  int n = 0;
  for (int i = 0; tu && i < tu->nfields; i++) n += leaf_types(tu->fields[i], out + n);
  return n;
}

/* Collects the symbolic dimensions (variables) of a dimension expression. */
typedef struct dim_walk {
  func_lowering *L;
  kiln_status st;
} dim_walk;

static bool dim_visit(ir_node *n, void *ud) {
  dim_walk *W = ud;
  if (n->kind == IR_VAR && !ir_ptrmap_get(&W->L->dims, n)) {
    if (ir_ptrmap_put(&W->L->dims, n, n)) W->st = KILN_ERR_NOMEM;
    else W->L->ndims++;
  }
  return !W->st;
}

static kiln_status collect_dims(func_lowering *L, const relay_type *t) {
  const relay_tensor_type *tt = relay_as_tensor_type(t);
  if (tt) {
    dim_walk W = {L, KILN_OK};
    for (int i = 0; i < tt->ndim && !W.st; i++) ir_visit(tt->shape[i], false, dim_visit, &W);
    return W.st;
  }
  const relay_tuple_type *tu = relay_as_tuple_type(t);
  for (int i = 0; tu && i < tu->nfields; i++) {
    kiln_status st = collect_dims(L, tu->fields[i]);
    if (st) return st;
  }
  return KILN_OK;
}

static int cmp_var_names(const void *x, const void *y) {
  const ir_var *a = *(ir_var *const *)x, *b = *(ir_var *const *)y;
  return strcmp(a->name ? a->name : "", b->name ? b->name : "");
}

/* Gives every symbolic dimension an int64 variable of the PrimFunc (same name), sorted by
 * name, and tells the analyzer that dimensions are >= 1. */
static kiln_status make_dim_vars(func_lowering *L) {
  ir_arena *a = L->c.arena;
  L->dim_vars = ir_arena_alloc(L->scratch, sizeof *L->dim_vars * (size_t)(L->ndims ? L->ndims : 1));
  if (!L->dim_vars) return KILN_ERR_NOMEM;
  int k = 0;
  for (size_t i = 0; i < L->dims.cap; i++)
    if (L->dims.keys[i]) L->dim_vars[k++] = (ir_var *)L->dims.keys[i];
  qsort(L->dim_vars, (size_t)k, sizeof *L->dim_vars, cmp_var_names);
  for (int i = 0; i < k; i++) {
    ir_var *old = L->dim_vars[i];
    if (!ir_dt_is_int(old->h.dtype))
      return ir_fail(L->c.ctx, old->h.span, KILN_ERR_TYPE,
                     "symbolic dimension '%s' is not an integer", old->name);
    ir_var *v = ir_var_new(a, old->name ? old->name : "n", KILN_INT64);
    if (!v || ir_ptrmap_put(&L->dims, old, v)) return KILN_ERR_NOMEM;
    L->dim_vars[i] = v;
    if (ir_analyzer_bind(L->c.an, v, (ir_interval){1, INT64_MAX})) return KILN_ERR_NOMEM;
  }
  return KILN_OK;
}

/* A dimension expression of a relay type rebuilt in the PrimFunc's arena, over its copies
 * of the symbolic dimensions, as int64. */
static ir_expr *copy_dim(func_lowering *L, const ir_expr *e) {
  ir_arena *a = L->c.arena;
  switch (e->kind) {
  case IR_INT_IMM: return ir_int(a, KILN_INT64, ((const ir_int_imm *)e)->value);
  case IR_VAR: {
    ir_var *v = ir_ptrmap_get(&L->dims, e);
    if (v && v != (const ir_var *)e) return &v->h;
    ir_fail(L->c.ctx, e->span, KILN_ERR_INTERNAL,
            "lower: symbolic dimension '%s' was not collected", ((const ir_var *)e)->name);
    return NULL;
  }
  case IR_CAST: return copy_dim(L, ((const ir_cast *)e)->value);
  default: break;
  }
  const ir_binary *b = ir_as_binary(e);
  if (b && e->kind < IR_EQ) {
    ir_expr *x = copy_dim(L, b->a), *y = x ? copy_dim(L, b->b) : NULL;
    return y ? ir_binop(a, e->kind, x, y) : NULL;
  }
  ir_fail(L->c.ctx, e->span, KILN_ERR_UNSUPPORTED,
          "lower: a dimension expression with %s cannot be lowered", ir_kind_name(e->kind));
  return NULL;
}

/* A buffer of tensor type t: a parameter (param set: name used as is, made unique) or an
 * intermediate of the root block. */
static ir_buffer *buffer_of_type(func_lowering *L, const char *name, const relay_tensor_type *t,
                                 bool param) {
  ir_expr *shape[RELAY_MAX_DIMS];
  if (t->ndim > RELAY_MAX_DIMS) {
    ir_fail(L->c.ctx, t->h.span, KILN_ERR_UNSUPPORTED, "a tensor of rank %d cannot be lowered",
            (int)t->ndim);
    return NULL;
  }
  for (int d = 0; d < t->ndim; d++)
    if (!(shape[d] = copy_dim(L, t->shape[d]))) return NULL;
  if (!param) return relay_lower_buffer(&L->c, name, t->h.dtype, t->ndim, shape);
  const char *unique = relay_lower_name(&L->c, name);
  return unique ? ir_buffer_new(L->c.arena, unique, t->h.dtype, t->ndim, shape, 0, NULL, NULL, 0,
                                NULL)
                : NULL;
}

static kiln_status set_bufs(func_lowering *L, const relay_expr *e, int n, ir_buffer **bufs) {
  node_bufs *nb = ir_arena_alloc(L->scratch, sizeof *nb);
  if (!nb) return KILN_ERR_NOMEM;
  nb->n = n;
  nb->bufs = bufs;
  return ir_ptrmap_put(&L->bufs, e, nb);
}

static ir_buffer **new_buf_array(func_lowering *L, int n) {
  return ir_arena_alloc(L->scratch, sizeof(ir_buffer *) * (size_t)(n ? n : 1));
}

/* A readable name for a node in messages: the op of a call, else its kind. */
static const char *node_desc(const relay_expr *e) {
  const relay_call *call = relay_as_call(e);
  if (call && call->op) return call->op;
  return ir_kind_name(e->kind);
}

/* Checks that every node of the body can be lowered and collects the symbolic dimensions
 * of all types. */
static kiln_status check_body(func_lowering *L, relay_expr **order, int n) {
  kiln_context *ctx = L->c.ctx;
  /* Constructs first (a let's variable comes before the let in post order, and would read
   * as a free variable). */
  for (int i = 0; i < n; i++) {
    relay_expr *e = order[i];
    if (e->kind == RELAY_LET || e->kind == RELAY_IF || e->kind == RELAY_GLOBAL)
      return ir_fail(ctx, e->span, KILN_ERR_UNSUPPORTED,
                     "lower: a %s node cannot be lowered (only op calls, tuples and projections)",
                     node_desc(e));
  }
  for (int i = 0; i < n; i++) {
    relay_expr *e = order[i];
    const relay_type *t = relay_type_of(e);
    switch (e->kind) {
    case RELAY_VAR: {
      bool param = false;
      for (int p = 0; p < L->f->nparams && !param; p++) param = &L->f->params[p]->h == e;
      if (!param)
        return ir_fail(ctx, e->span, KILN_ERR_UNSUPPORTED,
                       "lower: variable '%%%s' is not a parameter of the function",
                       ((relay_var *)e)->name);
      break;
    }
    case RELAY_CALL: {
      relay_call *call = (relay_call *)e;
      if (!call->op)
        return ir_fail(ctx, e->span, KILN_ERR_UNSUPPORTED,
                       "lower: a call of a function value cannot be lowered (only op calls)");
      const relay_op *def = call->opdef ? call->opdef : relay_op_lookup(call->op);
      if (!def || !def->lower)
        return ir_fail(ctx, e->span, KILN_ERR_UNSUPPORTED,
                       "lower: op '%s' has no compute definition (it cannot be lowered to TIR "
                       "yet)",
                       call->op);
      break;
    }
    case RELAY_CONST: {
      const relay_tensor_type *tt = relay_as_tensor_type(t);
      if (t && (!tt || tt->ndim != 0)) {
        ir_strbuf sb;
        ir_sb_init(&sb, ctx);
        relay_type_print(&sb, t);
        char *ts = ir_sb_take(&sb, NULL);
        kiln_status st = ir_fail(
            ctx, e->span, KILN_ERR_UNSUPPORTED,
            "lower: a constant of type %s inside the function cannot be lowered (only scalar "
            "constants; FuseOps passes tensor constants as parameters)",
            ts ? ts : "?");
        if (ts) ir_free(ctx, ts, strlen(ts) + 1);
        return st;
      }
      break;
    }
    case RELAY_TUPLE:
    case RELAY_PROJ:
      break;
    case RELAY_FUNC:
      return ir_fail(ctx, e->span, KILN_ERR_UNSUPPORTED,
                     "lower: a nested function cannot be lowered (only op calls, tuples and "
                     "projections; calls of function values are not inlined)");
    default:
      return ir_fail(ctx, e->span, KILN_ERR_UNSUPPORTED,
                     "lower: a %s node cannot be lowered (only op calls, tuples and projections)",
                     node_desc(e));
    }
    if (!t)
      return ir_fail(ctx, e->span, KILN_ERR_TYPE, "lower: a %s node has no type (run InferType)",
                     node_desc(e));
    if (leaf_count(t) < 0)
      return ir_fail(ctx, e->span, KILN_ERR_UNSUPPORTED, "lower: a %s node has a function type",
                     node_desc(e));
    kiln_status st = collect_dims(L, t);
    if (st) return st;
  }
  return KILN_OK;
}

/* The leaves (node, leaf index) that make up expression e: a tuple's fields, a projection's
 * part of its tuple, else the node's own leaves. */
typedef struct leaf {
  const relay_expr *node;
  int index;
} leaf;

static int leaves_of(const relay_expr *e, leaf *out) {
  const relay_tuple *tu = relay_as_tuple(e);
  if (tu) {
    int n = 0;
    for (int i = 0; i < tu->nfields; i++) n += leaves_of(tu->fields[i], out + n);
    return n;
  }
  if (e->kind == RELAY_PROJ) {
    /* the tuple's leaves, of which the projected field's part moves to the front (out has
     * room for the whole tuple: see total_leaves in lower_func) */
    const relay_proj *p = (const relay_proj *)e;
    leaves_of(p->tuple, out);
    const relay_tuple_type *tt = relay_as_tuple_type(relay_type_of(p->tuple));
    int off = 0;
    for (int i = 0; i < p->index; i++) off += leaf_count(tt->fields[i]);
    int k = leaf_count(tt->fields[p->index]);
    memmove(out, out + off, sizeof *out * (size_t)k);
    return k;
  }
  int n = leaf_count(relay_type_of(e));
  for (int i = 0; i < n; i++) out[i] = (leaf){e, i};
  return n;
}

/* The compute of a copy stage and of a constant stage. */
static ir_expr *copy_compute(relay_lower_ctx *c, ir_var *const *iters, void *ud) {
  ir_buffer *src = ud;
  return relay_lower_load_bcast(c, src, src->ndim, iters);
}

typedef struct const_value {
  kiln_dtype t;
  double v;
} const_value;

static ir_expr *const_compute(relay_lower_ctx *c, ir_var *const *iters, void *ud) {
  (void)iters;
  const const_value *k = ud;
  return relay_lower_const(c, k->t, k->v);
}

/* Lowers one node of the body (post order: its operands have their buffers already). */
static kiln_status lower_node(func_lowering *L, relay_expr *e) {
  relay_lower_ctx *c = &L->c;
  switch (e->kind) {
  case RELAY_VAR: /* parameters have their buffers before the walk */
    return ir_fail(c->ctx, e->span, KILN_ERR_INTERNAL, "lower: a variable without a buffer");
  case RELAY_CONST: {
    const relay_const *k = (const relay_const *)e;
    const relay_tensor_type *tt = relay_as_tensor_type(k->type);
    relay_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = tt->h.dtype;
    t.data = k->data;
    t.nbytes = (size_t)k->nbytes;
    const_value v = {tt->h.dtype, relay_tensor_get(&t, 0)};
    ir_buffer **b = new_buf_array(L, 1);
    if (!b) return KILN_ERR_NOMEM;
    c->op = "constant";
    c->span = e->span;
    b[0] = relay_lower_buffer(c, "constant", tt->h.dtype, 0, NULL);
    if (!b[0]) return failed(c);
    kiln_status st = relay_lower_compute(c, "constant", b[0], 0, NULL, RELAY_REDUCE_NONE,
                                         const_compute, &v);
    return st ? st : set_bufs(L, e, 1, b);
  }
  case RELAY_CALL: {
    relay_call *call = (relay_call *)e;
    const relay_op *def = call->opdef ? call->opdef : relay_op_lookup(call->op);
    ir_buffer **args = new_buf_array(L, call->nargs);
    if (!args) return KILN_ERR_NOMEM;
    for (int i = 0; i < call->nargs; i++) {
      node_bufs *nb = ir_ptrmap_get(&L->bufs, call->args[i]);
      if (!nb)
        return ir_fail(c->ctx, e->span, KILN_ERR_INTERNAL, "lower: %s: argument %d has no buffer",
                       call->op, i);
      if (nb->n != 1)
        return ir_fail(c->ctx, e->span, KILN_ERR_UNSUPPORTED,
                       "lower: %s: argument %d is a tuple (ops take tensors)", call->op, i);
      args[i] = nb->bufs[0];
    }
    int nouts = leaf_count(call->type);
    const relay_tensor_type **types =
        ir_arena_alloc(L->scratch, sizeof *types * (size_t)(nouts ? nouts : 1));
    ir_buffer **outs = new_buf_array(L, nouts);
    if (!types || !outs) return KILN_ERR_NOMEM;
    leaf_types(call->type, types);
    ir_buffer **preset = ir_ptrmap_get(&L->preset, e);
    for (int k = 0; k < nouts; k++) {
      outs[k] = preset ? preset[k] : NULL;
      if (!outs[k] && !(outs[k] = buffer_of_type(L, short_op_name(call->op), types[k], false)))
        return failed(c);
    }
    c->op = call->op;
    c->span = e->span;
    kiln_status st = def->lower(c, call->nargs, args, call->attrs, nouts, outs);
    if (st) return st;
    if (L->ops.len) ir_sb_puts(&L->ops, "+");
    ir_sb_puts(&L->ops, call->op);
    return set_bufs(L, e, nouts, outs);
  }
  case RELAY_TUPLE: {
    const relay_tuple *tu = (const relay_tuple *)e;
    int n = leaf_count(tu->type);
    ir_buffer **b = new_buf_array(L, n);
    if (!b) return KILN_ERR_NOMEM;
    int k = 0;
    for (int i = 0; i < tu->nfields; i++) {
      node_bufs *nb = ir_ptrmap_get(&L->bufs, tu->fields[i]);
      if (!nb)
        return ir_fail(c->ctx, e->span, KILN_ERR_INTERNAL, "lower: a tuple field has no buffer");
      for (int j = 0; j < nb->n; j++) b[k++] = nb->bufs[j];
    }
    return set_bufs(L, e, k, b);
  }
  case RELAY_PROJ: {
    const relay_proj *p = (const relay_proj *)e;
    node_bufs *nb = ir_ptrmap_get(&L->bufs, p->tuple);
    const relay_tuple_type *tt = relay_as_tuple_type(relay_type_of(p->tuple));
    if (!nb || !tt)
      return ir_fail(c->ctx, e->span, KILN_ERR_INTERNAL, "lower: a projection of a non-tuple");
    int off = 0;
    for (int i = 0; i < p->index; i++) off += leaf_count(tt->fields[i]);
    return set_bufs(L, e, leaf_count(tt->fields[p->index]), nb->bufs + off);
  }
  default:
    return ir_fail(c->ctx, e->span, KILN_ERR_INTERNAL, "lower: unexpected %s node", node_desc(e));
  }
}

/* ---- Workload summaries ----------------------------------------------------------------- */

/* "(1,64,56,56)f32": a buffer's shape (symbolic dims by name) and dtype in short form. */
static void put_buffer_type(ir_strbuf *sb, const ir_buffer *b) {
  ir_sb_puts(sb, "(");
  for (int d = 0; d < b->ndim; d++) {
    char dim[128];
    if (d) ir_sb_puts(sb, ",");
    ir_sb_puts(sb, relay_dim_str(b->shape[d], dim, sizeof dim));
  }
  ir_sb_puts(sb, ")");
  kiln_dtype t = b->h.dtype;
  switch (t.code) {
  case KILN_TYPE_FLOAT: ir_sb_printf(sb, "f%d", t.bits); break;
  case KILN_TYPE_BFLOAT: ir_sb_printf(sb, "bf%d", t.bits); break;
  case KILN_TYPE_INT: ir_sb_printf(sb, "i%d", t.bits); break;
  case KILN_TYPE_UINT: ir_sb_printf(sb, "u%d", t.bits); break;
  case KILN_TYPE_BOOL: ir_sb_puts(sb, "bool"); break;
  default: {
    char buf[32];
    ir_sb_puts(sb, kiln_dtype_str(t, buf, sizeof buf));
  }
  }
}

/* ops, then the input types, "->", the output types. */
static void put_summary(ir_strbuf *sb, const char *ops, int nin, ir_buffer *const *ins, int nout,
                        ir_buffer *const *outs) {
  ir_sb_puts(sb, ops);
  for (int i = 0; i < nin; i++) {
    ir_sb_puts(sb, " ");
    put_buffer_type(sb, ins[i]);
  }
  ir_sb_puts(sb, " ->");
  for (int i = 0; i < nout; i++) {
    ir_sb_puts(sb, " ");
    put_buffer_type(sb, outs[i]);
  }
}

/* ---- relay_lower_func ------------------------------------------------------------------- */

static void lowering_free(func_lowering *L) {
  kiln_context *ctx = L->c.ctx;
  ir_free(ctx, L->c.stages, sizeof *L->c.stages * (size_t)L->c.cap_stages);
  ir_free(ctx, L->c.allocs, sizeof *L->c.allocs * (size_t)L->c.cap_allocs);
  ir_free(ctx, L->c.names, sizeof *L->c.names * (size_t)L->c.cap_names);
  ir_analyzer_free(L->c.an);
  ir_ptrmap_free(&L->dims);
  ir_ptrmap_free(&L->bufs);
  ir_ptrmap_free(&L->preset);
  ir_sb_free(&L->ops);
  ir_arena_free(L->scratch);
}

/* The outputs: one buffer per leaf of the result. Calls that produce a leaf write into its
 * output buffer directly (preset); a leaf that is a parameter, a constant or a leaf already
 * written to another output needs a copy stage (copy_from[o] names it). */
static kiln_status make_outputs(func_lowering *L, int nout, ir_buffer **outs, leaf *copy_from,
                                leaf *leaves) {
  const relay_type *rt = relay_type_of(L->f->body);
  const relay_tensor_type **types = ir_arena_alloc(L->scratch, sizeof *types * (size_t)nout);
  if (!types) return KILN_ERR_NOMEM;
  leaf_types(rt, types);
  bool single = relay_as_tensor_type(rt) != NULL;
  for (int o = 0; o < nout; o++) {
    char name[32];
    snprintf(name, sizeof name, single ? "out" : "out%d", o);
    if (!(outs[o] = buffer_of_type(L, name, types[o], true))) return failed(&L->c);
  }
  leaves_of(L->f->body, leaves);
  for (int o = 0; o < nout; o++) {
    const relay_expr *n = leaves[o].node;
    int k = leaves[o].index;
    copy_from[o] = leaves[o];
    if (n->kind != RELAY_CALL) continue;
    ir_buffer **preset = ir_ptrmap_get(&L->preset, n);
    if (!preset) {
      int cnt = leaf_count(relay_type_of(n));
      if (!(preset = new_buf_array(L, cnt))) return KILN_ERR_NOMEM;
      memset(preset, 0, sizeof *preset * (size_t)cnt);
      if (ir_ptrmap_put(&L->preset, n, preset)) return KILN_ERR_NOMEM;
    }
    if (!preset[k]) {
      preset[k] = outs[o];
      copy_from[o].node = NULL; /* written directly */
    }
  }
  return KILN_OK;
}

/* The body: the root block allocating the intermediates around the stages, realized. */
static ir_stmt *make_root(func_lowering *L) {
  relay_lower_ctx *c = &L->c;
  ir_arena *a = c->arena;
  ir_stmt *body = c->nstages == 1 ? c->stages[0] : ir_seq_new(a, c->nstages, c->stages);
  if (!body) return NULL;
  ir_block *root = ir_block_new(a, "root", 0, NULL, 0, NULL, 0, NULL, c->nallocs, c->allocs, 0,
                                NULL, NULL, body);
  root = ir_block_with_detected_regions(a, root);
  return root ? ir_block_realize_new(a, 0, NULL, NULL, root) : NULL;
}

static kiln_status lower_func(func_lowering *L, const char *name, ir_func **out) {
  relay_lower_ctx *c = &L->c;
  kiln_context *ctx = c->ctx;
  const relay_func *f = L->f;
  relay_expr **order = NULL;
  int n = 0;
  kiln_status st = relay_post_order(ctx, f->body, false, &order, &n);
  if (st) return st;

  /* What there is: nodes we can lower, their symbolic dimensions. */
  for (int p = 0; p < f->nparams && !st; p++) {
    if (!relay_as_tensor_type(f->params[p]->type))
      st = ir_fail(ctx, f->params[p]->h.span, KILN_ERR_UNSUPPORTED,
                   "lower: parameter '%%%s' is not a tensor (tuple parameters cannot be lowered)",
                   f->params[p]->name);
    else
      st = collect_dims(L, f->params[p]->type);
  }
  if (!st) st = check_body(L, order, n);
  if (!st) st = make_dim_vars(L);
  /* Names that stages must not take. */
  if (!st && !unique_name(c, BLOCK_TAG, "root")) st = KILN_ERR_NOMEM;

  /* Parameters and outputs. */
  int nin = f->nparams, nout = leaf_count(relay_type_of(f->body)), total_leaves = nout;
  for (int i = 0; i < n; i++) total_leaves += leaf_count(relay_type_of(order[i]));
  ir_buffer **ins = st ? NULL : new_buf_array(L, nin);
  ir_buffer **outs = st ? NULL : new_buf_array(L, nout);
  leaf *copy_from = st ? NULL : ir_arena_alloc(L->scratch, sizeof(leaf) * (size_t)(nout + 1));
  leaf *leaves = st ? NULL : ir_arena_alloc(L->scratch, sizeof(leaf) * (size_t)(total_leaves + 1));
  if (!st && (!ins || !outs || !copy_from || !leaves)) st = KILN_ERR_NOMEM;
  for (int p = 0; p < nin && !st; p++) {
    char pname[32];
    snprintf(pname, sizeof pname, "p%d", p);
    ins[p] = buffer_of_type(L, pname, relay_as_tensor_type(f->params[p]->type), true);
    if (!ins[p]) st = failed(c);
    else st = set_bufs(L, &f->params[p]->h, 1, &ins[p]);
  }
  if (!st) st = make_outputs(L, nout, outs, copy_from, leaves);

  /* The stages of every op, in order, then the copies into outputs. */
  for (int i = 0; i < n && !st; i++)
    if (!ir_ptrmap_get(&L->bufs, order[i])) st = lower_node(L, order[i]);
  for (int o = 0; o < nout && !st; o++) {
    if (!copy_from[o].node) continue;
    node_bufs *nb = ir_ptrmap_get(&L->bufs, copy_from[o].node);
    c->op = "copy";
    c->span = f->body->span;
    st = relay_lower_compute(c, "copy", outs[o], 0, NULL, RELAY_REDUCE_NONE, copy_compute,
                             nb->bufs[copy_from[o].index]);
    if (!st && L->ops.len == 0) ir_sb_puts(&L->ops, "copy");
  }
  ir_free(ctx, order, sizeof *order * (size_t)n);
  if (st) return st;
  if (c->nstages == 0)
    return ir_fail(ctx, f->h.span, KILN_ERR_UNSUPPORTED, "lower: '%s' has no outputs", name);

  /* The PrimFunc. */
  ir_arena *a = c->arena;
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  put_summary(&sb, L->ops.oom ? "" : (L->ops.data ? L->ops.data : ""), nin, ins, nout, outs);
  size_t slen = 0;
  char *summary = ir_sb_take(&sb, &slen);
  if (!summary || L->ops.oom) {
    if (summary) ir_free(ctx, summary, slen + 1);
    return KILN_ERR_NOMEM;
  }
  int np = nin + nout + L->ndims;
  ir_node **params = ir_arena_alloc(L->scratch, sizeof *params * (size_t)(np ? np : 1));
  ir_stmt *body = make_root(L);
  ir_annot *attrs[2] = {ir_annot_new(a, "global_symbol", ir_str(a, name)),
                        ir_annot_new(a, "workload", ir_str(a, summary))};
  ir_free(ctx, summary, slen + 1);
  if (!params || !body || !attrs[0] || !attrs[1]) return failed(c);
  /* the dims first: the buffers' shapes use them (so the text format defines them first) */
  for (int i = 0; i < L->ndims; i++) params[i] = &L->dim_vars[i]->h;
  for (int i = 0; i < nin; i++) params[L->ndims + i] = &ins[i]->h;
  for (int i = 0; i < nout; i++) params[L->ndims + nin + i] = &outs[i]->h;
  ir_span saved = a->span;
  a->span = f->h.span;
  *out = ir_func_new(a, name, np, params, 2, attrs, body);
  a->span = saved;
  return *out ? KILN_OK : failed(c);
}

kiln_status relay_lower_func(kiln_context *ctx, ir_arena *arena, const relay_func *f,
                             const char *name, ir_func **out) {
  if (out) *out = NULL;
  if (!ctx) return KILN_ERR_MISUSE;
  if (!out || !arena || !f || !name)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "lower: NULL argument");
  func_lowering L;
  memset(&L, 0, sizeof L);
  L.c.ctx = ctx;
  L.c.arena = arena;
  L.c.op = "";
  L.c.span = f->h.span;
  L.f = f;
  ir_ptrmap_init(&L.dims, ctx);
  ir_ptrmap_init(&L.bufs, ctx);
  ir_ptrmap_init(&L.preset, ctx);
  ir_sb_init(&L.ops, ctx);
  L.scratch = ir_arena_new(ctx);
  L.c.an = L.scratch ? ir_analyzer_new(arena) : NULL;
  kiln_status st = L.c.an ? lower_func(&L, name, out) : KILN_ERR_NOMEM;
  if (st == KILN_ERR_NOMEM && ctx->code != KILN_ERR_NOMEM)
    ir_fail(ctx, f->h.span, KILN_ERR_NOMEM, "lower: out of memory lowering '%s'", name);
  if (st) *out = NULL;
  lowering_free(&L);
  return st;
}

/* ---- Workload keys --------------------------------------------------------------------- */

/* The "op" annotations of the blocks under s in order, a run of blocks of one op (the stages
 * of a multi-stage op) counted once. */
typedef struct op_walk {
  ir_strbuf *sb;
  const char *last;
} op_walk;

static bool op_visit(ir_node *n, void *ud) {
  op_walk *W = ud;
  if (n->kind != IR_BLOCK) return true;
  const ir_block *b = (const ir_block *)n;
  for (int i = 0; i < b->nannots; i++) {
    const ir_str_imm *v = ir_as_str(b->annots[i]->value);
    if (strcmp(b->annots[i]->key, "op") != 0 || !v) continue;
    if (!W->last || strcmp(W->last, v->value) != 0) {
      if (W->sb->len) ir_sb_puts(W->sb, "+");
      ir_sb_puts(W->sb, v->value);
    }
    W->last = v->value;
  }
  return true;
}

/* Buffers some block writes (the outputs among the parameters). */
typedef struct write_walk {
  const ir_buffer *buf;
  bool written;
} write_walk;

static bool write_visit(ir_node *n, void *ud) {
  write_walk *W = ud;
  if (n->kind == IR_STORE && ((ir_store *)n)->buffer == W->buf) W->written = true;
  return !W->written;
}

kiln_status relay_workload_key(kiln_context *ctx, ir_arena *arena, const ir_func *pf,
                               relay_workload *out) {
  if (!ctx || !arena || !pf || !out || pf->h.kind != IR_FUNC)
    return ctx ? ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "workload key: NULL argument")
               : KILN_ERR_MISUSE;
  memset(out, 0, sizeof *out);
  /* The hash sees the computation, not the name: attributes are left out. */
  ir_func *bare = ir_func_new(arena, "workload", pf->nparams, pf->params, 0, NULL, pf->body);
  if (!bare) return ctx->code ? ctx->code : KILN_ERR_NOMEM;
  kiln_status st = ir_structural_hash(ctx, &bare->h, &out->hash);
  if (st) return st;
  for (int i = 0; i < pf->nattrs; i++) {
    const ir_str_imm *v = ir_as_str(pf->attrs[i]->value);
    if (strcmp(pf->attrs[i]->key, "workload") == 0 && v) {
      out->summary = ir_arena_strdup(arena, v->value);
      return out->summary ? KILN_OK : KILN_ERR_NOMEM;
    }
  }
  /* No attribute: ops from the block annotations, inputs and outputs told apart by whether
   * a store writes them. */
  ir_strbuf ops, sb;
  ir_sb_init(&ops, ctx);
  ir_sb_init(&sb, ctx);
  op_walk W = {&ops, NULL};
  ir_visit(pf->body, false, op_visit, &W);
  int nbuf = 0;
  for (int i = 0; i < pf->nparams; i++) nbuf += ir_as_buffer(pf->params[i]) != NULL;
  ir_buffer **ins = ir_arena_alloc(arena, sizeof *ins * (size_t)(nbuf + 1));
  ir_buffer **outs = ir_arena_alloc(arena, sizeof *outs * (size_t)(nbuf + 1));
  int nin = 0, nout = 0;
  for (int i = 0; i < pf->nparams && ins && outs; i++) {
    ir_buffer *b = ir_as_buffer(pf->params[i]);
    if (!b) continue;
    write_walk ww = {b, false};
    ir_visit(pf->body, false, write_visit, &ww);
    if (ww.written) outs[nout++] = b;
    else ins[nin++] = b;
  }
  if (ins && outs) put_summary(&sb, ops.data ? ops.data : "", nin, ins, nout, outs);
  size_t len = 0;
  char *s = ir_sb_take(&sb, &len);
  if (s && !ops.oom && ins && outs) out->summary = ir_arena_strdup(arena, s);
  if (s) ir_free(ctx, s, len + 1);
  ir_sb_free(&ops);
  if (!out->summary) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "workload key: out of memory");
  return KILN_OK;
}

/* ---- Modules --------------------------------------------------------------------------- */

const char *relay_fused_base_name(kiln_context *ctx, ir_arena *arena, const relay_func *f) {
  relay_expr **order = NULL;
  int n = 0;
  if (relay_post_order(ctx, f->body, false, &order, &n)) return NULL;
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  ir_sb_puts(&sb, "fused");
  for (int i = 0; i < n; i++) {
    const relay_call *call = relay_as_call(order[i]);
    if (!call || !call->op) continue;
    ir_sb_puts(&sb, "_");
    for (const char *p = call->op; *p; p++) ir_sb_putn(&sb, *p == '.' ? "_" : p, 1);
  }
  ir_free(ctx, order, sizeof *order * (size_t)n);
  const char *name = sb.oom ? NULL : ir_arena_strdup(arena, sb.data);
  ir_sb_free(&sb);
  return name;
}

/* relay_fused_base_name made unique within mod ("_1", "_2", ...), in mod's arena. */
static const char *fused_name(kiln_tir_module *mod, const relay_func *f) {
  const char *base = relay_fused_base_name(mod->ctx, mod->arena, f);
  if (!base) return NULL;
  size_t len = strlen(base) + 24;
  char *name = ir_arena_alloc(mod->arena, len);
  if (name) {
    snprintf(name, len, "%s", base);
    for (long k = 1; ir_module_find(mod, name); k++) snprintf(name, len, "%s_%ld", base, k);
  }
  return name;
}

static kiln_status lower_primitive(kiln_tir_module *mod, relay_func *f) {
  const char *name = fused_name(mod, f);
  if (!name) return ir_fail(mod->ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "lower: out of memory");
  ir_func *pf = NULL;
  kiln_status st = relay_lower_func(mod->ctx, mod->arena, f, name, &pf);
  return st ? st : ir_module_add(mod, pf);
}

kiln_status relay_lower_module(relay_module *m, kiln_tir_module **out) {
  if (!out) return KILN_ERR_MISUSE;
  *out = NULL;
  if (!m) return KILN_ERR_MISUSE;
  kiln_context *ctx = m->ctx;
  kiln_tir_module *mod = ir_module_new(ctx);
  if (!mod) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "lower: out of memory");
  ir_ptrmap done;
  ir_ptrmap_init(&done, ctx);
  kiln_status st = KILN_OK;
  for (int i = 0; i < m->nfuncs && !st; i++) {
    relay_func *top = m->funcs[i];
    if (relay_func_is_primitive(top)) {
      if (!ir_ptrmap_get(&done, top)) {
        st = ir_ptrmap_put(&done, top, top);
        if (!st) st = lower_primitive(mod, top);
      }
      continue;
    }
    relay_expr **order = NULL;
    int n = 0;
    st = relay_post_order(ctx, top->body, true, &order, &n);
    for (int j = 0; j < n && !st; j++) {
      const relay_call *call = relay_as_call(order[j]);
      relay_func *callee = call ? relay_as_func(call->fn) : NULL;
      if (!callee || !relay_func_is_primitive(callee) || ir_ptrmap_get(&done, callee)) continue;
      st = ir_ptrmap_put(&done, callee, callee);
      if (!st) st = lower_primitive(mod, callee);
    }
    ir_free(ctx, order, sizeof *order * (size_t)n);
  }
  ir_ptrmap_free(&done);
  if (st) {
    kiln_tir_module_free(mod);
    return st;
  }
  *out = mod;
  return KILN_OK;
}

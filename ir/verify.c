/* verify.c: the TIR verifier. Passes run it between each other (always in tests) to catch a
 * broken invariant where it is made instead of where it crashes: variables and buffers used
 * outside their scope or defined twice, accesses with the wrong number or type of indices,
 * mixed dtypes, and malformed blocks. It reports the first problem found, in program order,
 * with the offending node's span. The reference interpreter (interp.c) runs it first too. */
#include <stdio.h>
#include <string.h>

#include "verify.h"

/* What the verifier knows about one definition (a variable or a buffer). Every definition is
 * seen exactly once (a second one is an error), so a record only moves forward: in scope
 * while the defining node's body is checked, closed afterwards. */
enum { DEF_IN_SCOPE = 1, DEF_CLOSED = 2 };
enum { LEVEL_PARAM = -1 }; /* function parameters are visible at every block level */

typedef struct def_info {
  int state; /* DEF_IN_SCOPE or DEF_CLOSED */
  int level; /* block nesting depth of the definition, or LEVEL_PARAM */
} def_info;

/* The innermost block being checked: its loads and stores (outside nested blocks) must be
 * covered by its regions and alloc buffers. */
typedef struct block_frame {
  const ir_block *block;
  bool in_init;
  struct block_frame *outer;
} block_frame;

/* A block name seen in this function (a list; functions have few blocks). */
typedef struct block_name {
  const char *name;
  struct block_name *next;
} block_name;

typedef struct verifier {
  kiln_context *ctx;
  const ir_func *f;
  ir_arena *arena;          /* def_info records and block names, freed at the end */
  ir_ptrmap vars;           /* ir_var * -> def_info * */
  ir_ptrmap bufs;           /* ir_buffer * -> def_info * */
  block_name *names;
  int level;                /* number of blocks entered */
  block_frame *frame;       /* innermost block, NULL outside blocks */
  const ir_buffer *param_shape; /* set while checking a parameter buffer's shape */
  const ir_node *use_site;  /* the node whose child is being checked (for variable uses) */
} verifier;

#define TRY(x)                           \
  do {                                   \
    kiln_status st_ = (x);               \
    if (st_ != KILN_OK) return st_;      \
  } while (0)

/* Records an error "verify: function 'f': <message>" at n's span (or no span). */
static kiln_status vfail(verifier *V, const ir_node *n, kiln_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static kiln_status vfail(verifier *V, const ir_node *n, kiln_status code, const char *fmt, ...) {
  char msg[800];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ir_fail(V->ctx, n ? n->span : IR_NO_SPAN, code, "verify: function '%s': %s",
                 V->f->name ? V->f->name : "?", msg);
}

static const char *dts(kiln_dtype t, char *buf) { return kiln_dtype_str(t, buf, 32); }

/* A type mismatch on node n: "<what> has type X but Y is expected". */
static kiln_status type_mismatch(verifier *V, const ir_node *n, const char *what, kiln_dtype got,
                                 kiln_dtype want) {
  char b1[32], b2[32];
  return vfail(V, n, KILN_ERR_TYPE, "%s: %s has type %s but %s is expected", ir_kind_name(n->kind),
               what, dts(got, b1), dts(want, b2));
}

/* n's recorded dtype must be the one its children give it (a hand-built or mutated node may
 * carry a stale one). */
static kiln_status check_dtype(verifier *V, const ir_node *n, kiln_dtype want) {
  if (ir_dt_eq(n->dtype, want)) return KILN_OK;
  return type_mismatch(V, n, "the node", n->dtype, want);
}

static const char *var_name(const ir_var *v) { return v->name ? v->name : "?"; }
static const char *buf_name(const ir_buffer *b) { return b->name ? b->name : "?"; }

/* ---- Scopes ------------------------------------------------------------------------- */

/* Defines variable v at the current block level; `site` is the defining node. */
static kiln_status def_var(verifier *V, const ir_node *site, const ir_node *v, const char *what) {
  if (!v || v->kind != IR_VAR)
    return vfail(V, site, KILN_ERR_TYPE, "%s: %s must be a variable, not %s",
                 ir_kind_name(site->kind), what, v ? ir_kind_name(v->kind) : "nothing");
  const ir_var *var = (const ir_var *)v;
  if (v->dtype.code == KILN_TYPE_VOID || v->dtype.lanes != 1) {
    char b[32];
    return vfail(V, site, KILN_ERR_TYPE, "variable '%s' has type %s (variables are scalars)",
                 var_name(var), dts(v->dtype, b));
  }
  if (ir_ptrmap_get(&V->vars, v))
    return vfail(V, site, KILN_ERR_TYPE,
                 "variable '%s' is defined twice (as %s here and earlier; passes must create "
                 "fresh variables)",
                 var_name(var), what);
  def_info *d = ir_arena_alloc(V->arena, sizeof *d);
  if (!d) return KILN_ERR_NOMEM;
  d->state = DEF_IN_SCOPE;
  d->level = V->level;
  return ir_ptrmap_put(&V->vars, v, d);
}

static void close_def(ir_ptrmap *m, const void *key) {
  def_info *d = ir_ptrmap_get(m, key);
  if (d) d->state = DEF_CLOSED;
}

/* A use of variable v: it must be in scope and, inside a block, defined inside that block
 * (its iterators, its own loops and lets) or be a function parameter. A variable node is
 * shared by all its uses, so errors point at the using node when it has a span. */
static kiln_status use_var(verifier *V, const ir_var *v) {
  def_info *d = ir_ptrmap_get(&V->vars, v);
  const ir_node *site = V->use_site && V->use_site->span.line ? V->use_site : &v->h;
  if (V->param_shape && !(d && d->level == LEVEL_PARAM))
    return vfail(V, site, KILN_ERR_UNDEFINED,
                 "the shape of parameter buffer '%s' uses variable '%s', which is not a scalar "
                 "parameter of the function",
                 buf_name(V->param_shape), var_name(v));
  if (!d || d->state != DEF_IN_SCOPE)
    return vfail(V, site, KILN_ERR_UNDEFINED,
                 "variable '%s' is used outside its scope (no enclosing loop, let, block "
                 "iterator or parameter defines it)",
                 var_name(v));
  if (d->level != LEVEL_PARAM && d->level != V->level)
    return vfail(V, site, KILN_ERR_UNDEFINED,
                 "block '%s' uses variable '%s' defined outside the block (inside a block only "
                 "its iterators, its own loops and lets, and function parameters are visible)",
                 V->frame ? V->frame->block->name : "?", var_name(v));
  return KILN_OK;
}

static kiln_status verify_expr(verifier *V, const ir_node *e);

/* A child expression of `parent` (NULL or a non-expression is an error). */
static kiln_status expect_expr(verifier *V, const ir_node *parent, const ir_node *e,
                               const char *what) {
  if (!e)
    return vfail(V, parent, KILN_ERR_TYPE, "%s: missing %s", ir_kind_name(parent->kind), what);
  if (!ir_is_expr(e))
    return vfail(V, parent, KILN_ERR_TYPE, "%s: %s must be an expression, not a %s",
                 ir_kind_name(parent->kind), what, ir_kind_name(e->kind));
  V->use_site = parent;
  return verify_expr(V, e);
}

/* An integer child expression (scalar unless vector_ok). */
static kiln_status expect_index(verifier *V, const ir_node *parent, const ir_node *e,
                                const char *what, bool vector_ok) {
  TRY(expect_expr(V, parent, e, what));
  if (!ir_dt_is_int(e->dtype) || (!vector_ok && e->dtype.lanes != 1)) {
    char b[32];
    return vfail(V, parent, KILN_ERR_TYPE, "%s: %s must be %s integer, not %s",
                 ir_kind_name(parent->kind), what, vector_ok ? "an" : "a scalar",
                 dts(e->dtype, b));
  }
  return KILN_OK;
}

/* A scalar bool child expression (conditions, predicates). */
static kiln_status expect_bool(verifier *V, const ir_node *parent, const ir_node *e,
                               const char *what) {
  TRY(expect_expr(V, parent, e, what));
  if (!ir_dt_eq(e->dtype, KILN_BOOL)) return type_mismatch(V, parent, what, e->dtype, KILN_BOOL);
  return KILN_OK;
}

/* Checks a buffer's own fields (dtype, strides, shape expressions in the current scope) and
 * defines it. */
static kiln_status def_buffer(verifier *V, const ir_node *site, const ir_node *n, const char *what) {
  if (!n || n->kind != IR_BUFFER)
    return vfail(V, site, KILN_ERR_TYPE, "%s: %s must be a buffer, not %s",
                 ir_kind_name(site->kind), what, n ? ir_kind_name(n->kind) : "nothing");
  const ir_buffer *b = (const ir_buffer *)n;
  char tb[32];
  if (n->dtype.code == KILN_TYPE_VOID || n->dtype.lanes != 1)
    return vfail(V, n, KILN_ERR_TYPE, "buffer '%s' has element type %s", buf_name(b),
                 dts(n->dtype, tb));
  if (b->ndim < 0 || (b->ndim > 0 && !b->shape))
    return vfail(V, n, KILN_ERR_SHAPE, "buffer '%s' has a malformed shape", buf_name(b));
  if (b->nstrides != 0 && (b->nstrides != b->ndim || !b->strides))
    return vfail(V, n, KILN_ERR_SHAPE,
                 "buffer '%s' has %d strides for %d dimensions (strides must be absent or one "
                 "per dimension)",
                 buf_name(b), (int)b->nstrides, (int)b->ndim);
  if (ir_ptrmap_get(&V->bufs, b))
    return vfail(V, site, KILN_ERR_TYPE, "buffer '%s' is defined twice (as %s here and earlier)",
                 buf_name(b), what);
  for (int i = 0; i < b->ndim; i++) TRY(expect_index(V, n, b->shape[i], "a dimension", false));
  for (int i = 0; i < b->nstrides; i++) TRY(expect_index(V, n, b->strides[i], "a stride", false));
  if (b->elem_offset) TRY(expect_index(V, n, b->elem_offset, "the element offset", false));
  def_info *d = ir_arena_alloc(V->arena, sizeof *d);
  if (!d) return KILN_ERR_NOMEM;
  d->state = DEF_IN_SCOPE;
  d->level = V->level;
  return ir_ptrmap_put(&V->bufs, b, d);
}

/* A reference to buffer b from node `site` (a load, store or region). */
static kiln_status use_buffer(verifier *V, const ir_node *site, const ir_buffer *b) {
  if (!b || b->h.kind != IR_BUFFER)
    return vfail(V, site, KILN_ERR_TYPE, "%s: the accessed buffer is %s", ir_kind_name(site->kind),
                 b ? ir_kind_name(b->h.kind) : "missing");
  def_info *d = ir_ptrmap_get(&V->bufs, b);
  if (!d || d->state != DEF_IN_SCOPE)
    return vfail(V, site, KILN_ERR_UNDEFINED,
                 "buffer '%s' is used outside its scope (it is not a parameter, nor allocated by "
                 "an enclosing allocate or block)",
                 buf_name(b));
  return KILN_OK;
}

/* ---- Accesses and regions ----------------------------------------------------------- */

static bool region_has(int n, ir_region *const *regions, const ir_buffer *b) {
  for (int i = 0; i < n; i++)
    if (regions[i] && regions[i]->buffer == b) return true;
  return false;
}

static bool allocs_have(const ir_block *blk, const ir_buffer *b) {
  for (int i = 0; i < blk->nallocs; i++)
    if (blk->allocs[i] == b) return true;
  return false;
}

/* The innermost block must declare what it touches: stores in its write regions or alloc
 * buffers (stores in the init in its write regions), loads in its read or write regions or
 * alloc buffers (a reduction reads its output). */
static kiln_status check_block_access(verifier *V, const ir_node *site, const ir_buffer *b,
                                      bool is_store) {
  block_frame *fr = V->frame;
  if (!fr) return KILN_OK;
  const ir_block *blk = fr->block;
  if (is_store && fr->in_init) {
    if (!region_has(blk->nwrites, blk->writes, b))
      return vfail(V, site, KILN_ERR_TYPE,
                   "block '%s': its init stores to buffer '%s', which is not among the "
                   "block's write regions",
                   blk->name, buf_name(b));
    return KILN_OK;
  }
  if (is_store) {
    if (!region_has(blk->nwrites, blk->writes, b) && !allocs_have(blk, b))
      return vfail(V, site, KILN_ERR_TYPE,
                   "block '%s' stores to buffer '%s', which is not in its write regions or "
                   "alloc buffers",
                   blk->name, buf_name(b));
    return KILN_OK;
  }
  if (!region_has(blk->nreads, blk->reads, b) && !region_has(blk->nwrites, blk->writes, b) &&
      !allocs_have(blk, b))
    return vfail(V, site, KILN_ERR_TYPE,
                 "block '%s' loads buffer '%s', which is not in its read or write regions or "
                 "alloc buffers",
                 blk->name, buf_name(b));
  return KILN_OK;
}

/* A load or store: the buffer is in scope, one integer index per dimension, vector indices
 * agree on their lane count. Returns that lane count in *lanes. */
static kiln_status check_access(verifier *V, const ir_node *n, const ir_buffer *b, int nidx,
                                ir_expr *const *idx, int *lanes) {
  TRY(use_buffer(V, n, b));
  if (nidx != b->ndim || (nidx > 0 && !idx))
    return vfail(V, n, KILN_ERR_SHAPE, "%s of buffer '%s' has %d indices but the buffer has %d "
                 "dimensions",
                 ir_kind_name(n->kind), buf_name(b), nidx, (int)b->ndim);
  *lanes = 1;
  for (int i = 0; i < nidx; i++) {
    TRY(expect_index(V, n, idx[i], "an index", true));
    int l = idx[i]->dtype.lanes;
    if (l == 1) continue;
    if (*lanes != 1 && *lanes != l)
      return vfail(V, n, KILN_ERR_TYPE, "%s of buffer '%s': vector indices have different lane "
                   "counts (%d and %d)",
                   ir_kind_name(n->kind), buf_name(b), *lanes, l);
    *lanes = l;
  }
  return check_block_access(V, n, b, n->kind == IR_STORE);
}

static kiln_status check_annots(verifier *V, const ir_node *site, int n, ir_annot *const *annots) {
  for (int i = 0; i < n; i++) {
    const ir_annot *an = annots[i];
    if (!an || an->h.kind != IR_ANNOT || !an->key || !an->value)
      return vfail(V, site, KILN_ERR_TYPE, "%s: malformed annotation", ir_kind_name(site->kind));
    int k = an->value->kind;
    if (k != IR_INT_IMM && k != IR_FLOAT_IMM && k != IR_STR_IMM)
      return vfail(V, site, KILN_ERR_TYPE, "annotation '%s' must have a constant value", an->key);
    TRY(verify_expr(V, an->value));
  }
  return KILN_OK;
}

static kiln_status check_region(verifier *V, const ir_block *blk, const ir_region *r,
                                const char *what) {
  if (!r || r->h.kind != IR_REGION)
    return vfail(V, &blk->h, KILN_ERR_TYPE, "block '%s': malformed %s region", blk->name, what);
  TRY(use_buffer(V, &r->h, r->buffer));
  if (r->nranges != r->buffer->ndim)
    return vfail(V, &r->h, KILN_ERR_SHAPE,
                 "block '%s': %s region of buffer '%s' has %d ranges but the buffer has %d "
                 "dimensions",
                 blk->name, what, buf_name(r->buffer), (int)r->nranges, (int)r->buffer->ndim);
  for (int i = 0; i < r->nranges; i++) {
    const ir_range *rg = r->ranges[i];
    if (!rg || rg->h.kind != IR_RANGE)
      return vfail(V, &r->h, KILN_ERR_TYPE, "block '%s': malformed range in %s region of '%s'",
                   blk->name, what, buf_name(r->buffer));
    TRY(expect_index(V, &rg->h, rg->min, "the start", false));
    TRY(expect_index(V, &rg->h, rg->extent, "the extent", false));
  }
  return KILN_OK;
}

/* ---- Expressions -------------------------------------------------------------------- */

static bool int_fits(int64_t v, kiln_dtype t) {
  if (t.code == KILN_TYPE_BOOL) return v == 0 || v == 1;
  if (t.bits >= 64) return t.code == KILN_TYPE_INT || v >= 0;
  if (t.code == KILN_TYPE_UINT) return v >= 0 && v < ((int64_t)1 << t.bits);
  int64_t lim = (int64_t)1 << (t.bits - 1);
  return v >= -lim && v < lim;
}

/* Re-derives e's dtype from its children and checks every typing rule of node.c again, plus
 * the scoping of variables and buffers. Exhaustive over kinds. */
static kiln_status verify_expr(verifier *V, const ir_node *e) {
  char b1[32];
  switch ((ir_kind)e->kind) {
  case IR_INT_IMM: {
    const ir_int_imm *x = (const ir_int_imm *)e;
    if (!(ir_dt_is_int(e->dtype) || ir_dt_is_bool(e->dtype)) || e->dtype.lanes != 1)
      return vfail(V, e, KILN_ERR_TYPE, "an integer constant has type %s", dts(e->dtype, b1));
    if (!int_fits(x->value, e->dtype))
      return vfail(V, e, KILN_ERR_TYPE, "constant %lld does not fit in %s", (long long)x->value,
                   dts(e->dtype, b1));
    return KILN_OK;
  }
  case IR_FLOAT_IMM:
    if (!ir_dt_is_float(e->dtype) || e->dtype.lanes != 1)
      return vfail(V, e, KILN_ERR_TYPE, "a float constant has type %s", dts(e->dtype, b1));
    return KILN_OK;
  case IR_STR_IMM:
    if (!((const ir_str_imm *)e)->value)
      return vfail(V, e, KILN_ERR_TYPE, "a string constant without a value");
    return check_dtype(V, e, KILN_HANDLE);
  case IR_VAR:
    if (e->dtype.code == KILN_TYPE_VOID || e->dtype.lanes != 1)
      return vfail(V, e, KILN_ERR_TYPE, "variable '%s' has type %s", var_name((const ir_var *)e),
                   dts(e->dtype, b1));
    return use_var(V, (const ir_var *)e);
  case IR_ADD:
  case IR_SUB:
  case IR_MUL:
  case IR_DIV:
  case IR_MOD:
  case IR_FLOORDIV:
  case IR_FLOORMOD:
  case IR_MIN:
  case IR_MAX:
  case IR_EQ:
  case IR_NE:
  case IR_LT:
  case IR_LE:
  case IR_GT:
  case IR_GE:
  case IR_AND:
  case IR_OR: {
    const ir_binary *x = (const ir_binary *)e;
    TRY(expect_expr(V, e, x->a, "the left operand"));
    TRY(expect_expr(V, e, x->b, "the right operand"));
    kiln_dtype t = x->a->dtype;
    if (!ir_dt_eq(t, x->b->dtype)) {
      char b2[32];
      return vfail(V, e, KILN_ERR_TYPE, "%s: operand types differ (%s vs %s)",
                   ir_kind_name(e->kind), dts(t, b1), dts(x->b->dtype, b2));
    }
    if (e->kind == IR_AND || e->kind == IR_OR) {
      if (!ir_dt_is_bool(t))
        return vfail(V, e, KILN_ERR_TYPE, "%s: operands must be bool, not %s",
                     ir_kind_name(e->kind), dts(t, b1));
      return check_dtype(V, e, t);
    }
    if (e->kind >= IR_EQ) {
      if (t.code == KILN_TYPE_HANDLE || t.code == KILN_TYPE_VOID)
        return vfail(V, e, KILN_ERR_TYPE, "%s: cannot compare %s values", ir_kind_name(e->kind),
                     dts(t, b1));
      return check_dtype(V, e, ir_dt_with_lanes(KILN_BOOL, t.lanes));
    }
    if (!ir_dt_is_int(t) && !ir_dt_is_float(t))
      return vfail(V, e, KILN_ERR_TYPE, "%s: arithmetic needs numbers, not %s",
                   ir_kind_name(e->kind), dts(t, b1));
    return check_dtype(V, e, t);
  }
  case IR_NOT: {
    const ir_not *x = (const ir_not *)e;
    TRY(expect_expr(V, e, x->a, "the operand"));
    if (!ir_dt_is_bool(x->a->dtype))
      return vfail(V, e, KILN_ERR_TYPE, "not: the operand must be bool, not %s",
                   dts(x->a->dtype, b1));
    return check_dtype(V, e, x->a->dtype);
  }
  case IR_SELECT: {
    const ir_select *x = (const ir_select *)e;
    TRY(expect_expr(V, e, x->cond, "the condition"));
    TRY(expect_expr(V, e, x->t, "the true value"));
    TRY(expect_expr(V, e, x->f, "the false value"));
    if (!ir_dt_is_bool(x->cond->dtype) ||
        (x->cond->dtype.lanes != 1 && x->cond->dtype.lanes != x->t->dtype.lanes))
      return vfail(V, e, KILN_ERR_TYPE,
                   "select: the condition must be bool with 1 or the values' lanes, not %s",
                   dts(x->cond->dtype, b1));
    if (!ir_dt_eq(x->t->dtype, x->f->dtype)) {
      char b2[32];
      return vfail(V, e, KILN_ERR_TYPE, "select: branch types differ (%s vs %s)",
                   dts(x->t->dtype, b1), dts(x->f->dtype, b2));
    }
    return check_dtype(V, e, x->t->dtype);
  }
  case IR_CAST: {
    const ir_cast *x = (const ir_cast *)e;
    TRY(expect_expr(V, e, x->value, "the value"));
    if (e->dtype.code == KILN_TYPE_VOID || e->dtype.code == KILN_TYPE_HANDLE ||
        x->value->dtype.code == KILN_TYPE_HANDLE || e->dtype.lanes != x->value->dtype.lanes) {
      char b2[32];
      return vfail(V, e, KILN_ERR_TYPE, "cast: cannot cast %s to %s", dts(x->value->dtype, b1),
                   dts(e->dtype, b2));
    }
    return KILN_OK;
  }
  case IR_RAMP: {
    const ir_ramp *x = (const ir_ramp *)e;
    TRY(expect_index(V, e, x->base, "the base", false));
    TRY(expect_index(V, e, x->stride, "the stride", false));
    if (!ir_dt_eq(x->base->dtype, x->stride->dtype))
      return type_mismatch(V, e, "the stride", x->stride->dtype, x->base->dtype);
    if (x->lanes < 2 || x->lanes > 65535)
      return vfail(V, e, KILN_ERR_TYPE, "ramp: %d lanes (must be 2..65535)", (int)x->lanes);
    return check_dtype(V, e, ir_dt_with_lanes(x->base->dtype, x->lanes));
  }
  case IR_BROADCAST: {
    const ir_broadcast *x = (const ir_broadcast *)e;
    TRY(expect_expr(V, e, x->value, "the value"));
    if (x->value->dtype.lanes != 1)
      return vfail(V, e, KILN_ERR_TYPE, "broadcast: the value must be a scalar, not %s",
                   dts(x->value->dtype, b1));
    if (x->lanes < 2 || x->lanes > 65535)
      return vfail(V, e, KILN_ERR_TYPE, "broadcast: %d lanes (must be 2..65535)", (int)x->lanes);
    return check_dtype(V, e, ir_dt_with_lanes(x->value->dtype, x->lanes));
  }
  case IR_LOAD: {
    const ir_load *x = (const ir_load *)e;
    int lanes;
    TRY(check_access(V, e, x->buffer, x->nindices, x->indices, &lanes));
    return check_dtype(V, e, ir_dt_with_lanes(x->buffer->h.dtype, lanes));
  }
  case IR_CALL: {
    const ir_call *x = (const ir_call *)e;
    if (x->op < 0 || x->op >= IR_OP_COUNT)
      return vfail(V, e, KILN_ERR_TYPE, "call: unknown intrinsic %d", (int)x->op);
    const char *name = ir_intrinsic_name(x->op);
    if (x->nargs != ir_intrinsic_arity(x->op) || !x->args)
      return vfail(V, e, KILN_ERR_TYPE, "call: %s takes %d arguments, not %d", name,
                   ir_intrinsic_arity(x->op), (int)x->nargs);
    for (int i = 0; i < x->nargs; i++) {
      TRY(expect_expr(V, e, x->args[i], "an argument"));
      if (!ir_dt_eq(x->args[i]->dtype, x->args[0]->dtype))
        return type_mismatch(V, e, "an argument", x->args[i]->dtype, x->args[0]->dtype);
    }
    kiln_dtype t = x->args[0]->dtype;
    if (!ir_dt_is_float(t) && !(x->op == IR_OP_FABS && ir_dt_is_int(t)))
      return vfail(V, e, KILN_ERR_TYPE, "call: %s needs float arguments, not %s", name,
                   dts(t, b1));
    return check_dtype(V, e, t);
  }
  case IR_LET: {
    const ir_let *x = (const ir_let *)e;
    TRY(expect_expr(V, e, x->value, "the value"));
    TRY(def_var(V, e, (const ir_node *)x->var, "a let variable"));
    if (!ir_dt_eq(x->var->h.dtype, x->value->dtype))
      return type_mismatch(V, e, "the bound value", x->value->dtype, x->var->h.dtype);
    TRY(expect_expr(V, e, x->body, "the body"));
    close_def(&V->vars, x->var);
    return check_dtype(V, e, x->body->dtype);
  }
  case IR_STORE:
  case IR_FOR:
  case IR_IF:
  case IR_SEQ:
  case IR_LET_STMT:
  case IR_ALLOCATE:
  case IR_EVALUATE:
  case IR_BLOCK:
  case IR_BLOCK_REALIZE:
  case IR_BUFFER:
  case IR_ITER_VAR:
  case IR_RANGE:
  case IR_REGION:
  case IR_ANNOT:
  case IR_FUNC:
  case IR_KIND_COUNT:
    break;
  }
  return vfail(V, e, KILN_ERR_TYPE, "a %s where an expression is expected", ir_kind_name(e->kind));
}

/* ---- Statements --------------------------------------------------------------------- */

static kiln_status verify_stmt(verifier *V, const ir_node *s);

static kiln_status expect_stmt(verifier *V, const ir_node *parent, const ir_node *s,
                               const char *what) {
  if (!s)
    return vfail(V, parent, KILN_ERR_TYPE, "%s: missing %s", ir_kind_name(parent->kind), what);
  if (!ir_is_stmt(s))
    return vfail(V, parent, KILN_ERR_TYPE, "%s: %s must be a statement, not a %s",
                 ir_kind_name(parent->kind), what, ir_kind_name(s->kind));
  return verify_stmt(V, s);
}

/* A block, entered from its realize (whose values and predicate are already checked in the
 * enclosing scope). The block is an isolation boundary: inside it the level goes up, so only
 * its iterators, what it defines itself and function parameters can be used. */
static kiln_status verify_block(verifier *V, const ir_block_realize *r, const ir_block *blk) {
  if (!blk->name) return vfail(V, &blk->h, KILN_ERR_TYPE, "a block without a name");
  for (block_name *bn = V->names; bn; bn = bn->next)
    if (strcmp(bn->name, blk->name) == 0)
      return vfail(V, &blk->h, KILN_ERR_TYPE, "block name '%s' is used twice in the function",
                   blk->name);
  block_name *bn = ir_arena_alloc(V->arena, sizeof *bn);
  if (!bn) return KILN_ERR_NOMEM;
  bn->name = blk->name;
  bn->next = V->names;
  V->names = bn;

  if (blk->niters < 0 || (blk->niters > 0 && !blk->iters))
    return vfail(V, &blk->h, KILN_ERR_TYPE, "block '%s' has malformed iterators", blk->name);
  block_frame fr = {blk, false, V->frame};
  V->frame = &fr;
  V->level++;
  /* Iterator domains are checked inside the boundary but before any iterator is bound: they
   * may use only function parameters and constants. */
  bool has_reduce = false;
  for (int i = 0; i < blk->niters; i++) {
    const ir_iter_var *it = blk->iters[i];
    if (!it || it->h.kind != IR_ITER_VAR || !it->var)
      return vfail(V, &blk->h, KILN_ERR_TYPE, "block '%s': iterator %d is malformed", blk->name, i);
    if (it->iter_type < 0 || it->iter_type >= IR_ITER_TYPE_COUNT)
      return vfail(V, &it->h, KILN_ERR_TYPE, "block '%s': iterator '%s' has an unknown type",
                   blk->name, var_name(it->var));
    has_reduce |= it->iter_type == IR_ITER_REDUCE;
    TRY(expect_index(V, &it->h, it->min, "the domain start", false));
    TRY(expect_index(V, &it->h, it->extent, "the domain extent", false));
    kiln_dtype t = it->var->h.dtype;
    if (!ir_dt_is_int(t))
      return vfail(V, &it->h, KILN_ERR_TYPE, "block '%s': iterator '%s' must be an integer",
                   blk->name, var_name(it->var));
    if (!ir_dt_eq(it->min->dtype, t) || !ir_dt_eq(it->extent->dtype, t))
      return type_mismatch(V, &it->h, "the domain",
                           ir_dt_eq(it->min->dtype, t) ? it->extent->dtype : it->min->dtype, t);
    if (!ir_dt_eq(r->values[i]->dtype, t)) {
      char b1[32], b2[32];
      return vfail(V, &r->h, KILN_ERR_TYPE,
                   "block_realize of block '%s' binds iterator '%s' of type %s to a %s value",
                   blk->name, var_name(it->var), dts(t, b1), dts(r->values[i]->dtype, b2));
    }
  }
  for (int i = 0; i < blk->niters; i++)
    TRY(def_var(V, &blk->iters[i]->h, &blk->iters[i]->var->h, "a block iterator"));
  for (int i = 0; i < blk->nallocs; i++)
    TRY(def_buffer(V, &blk->h, (const ir_node *)blk->allocs[i], "an alloc buffer of a block"));
  for (int i = 0; i < blk->nreads; i++) TRY(check_region(V, blk, blk->reads[i], "read"));
  for (int i = 0; i < blk->nwrites; i++) TRY(check_region(V, blk, blk->writes[i], "write"));
  TRY(check_annots(V, &blk->h, blk->nannots, blk->annots));

  if (blk->init) {
    if (!has_reduce)
      return vfail(V, &blk->h, KILN_ERR_TYPE,
                   "block '%s' has an init but no reduce iterator", blk->name);
    fr.in_init = true;
    TRY(expect_stmt(V, &blk->h, blk->init, "the init"));
    fr.in_init = false;
  }
  TRY(expect_stmt(V, &blk->h, blk->body, "the body"));
  V->frame = fr.outer;

  for (int i = 0; i < blk->niters; i++) close_def(&V->vars, blk->iters[i]->var);
  for (int i = 0; i < blk->nallocs; i++) close_def(&V->bufs, blk->allocs[i]);
  V->level--;
  return KILN_OK;
}

static kiln_status verify_realize(verifier *V, const ir_block_realize *r) {
  const ir_node *s = &r->h;
  const ir_block *blk = r->block;
  if (!blk || blk->h.kind != IR_BLOCK)
    return vfail(V, s, KILN_ERR_TYPE, "block_realize: the realized node must be a block, not %s",
                 blk ? ir_kind_name(blk->h.kind) : "nothing");
  if (r->nvalues != blk->niters || (r->nvalues > 0 && !r->values))
    return vfail(V, s, KILN_ERR_SHAPE,
                 "block_realize of block '%s' binds %d values but the block has %d iterators",
                 blk->name ? blk->name : "?", (int)r->nvalues, (int)blk->niters);
  for (int i = 0; i < r->nvalues; i++)
    TRY(expect_index(V, s, r->values[i], "an iterator value", false));
  TRY(expect_bool(V, s, r->predicate, "the predicate"));
  return verify_block(V, r, blk);
}

/* Checks statement s; exhaustive over kinds. */
static kiln_status verify_stmt(verifier *V, const ir_node *s) {
  switch ((ir_kind)s->kind) {
  case IR_STORE: {
    const ir_store *x = (const ir_store *)s;
    int lanes;
    TRY(check_access(V, s, x->buffer, x->nindices, x->indices, &lanes));
    TRY(expect_expr(V, s, x->value, "the stored value"));
    kiln_dtype want = ir_dt_with_lanes(x->buffer->h.dtype, lanes);
    if (!ir_dt_eq(x->value->dtype, want)) {
      char b1[32], b2[32];
      return vfail(V, s, KILN_ERR_TYPE, "store to buffer '%s' of a %s value where %s is expected",
                   buf_name(x->buffer), dts(x->value->dtype, b1), dts(want, b2));
    }
    return KILN_OK;
  }
  case IR_FOR: {
    const ir_for *x = (const ir_for *)s;
    TRY(expect_index(V, s, x->min, "the start", false));
    TRY(expect_index(V, s, x->extent, "the extent", false));
    if (x->for_kind < 0 || x->for_kind >= IR_FOR_KIND_COUNT)
      return vfail(V, s, KILN_ERR_TYPE, "for: unknown loop kind %d", (int)x->for_kind);
    TRY(check_annots(V, s, x->nannots, x->annots));
    TRY(def_var(V, s, (const ir_node *)x->var, "a loop variable"));
    kiln_dtype t = x->var->h.dtype;
    if (!ir_dt_is_int(t))
      return vfail(V, s, KILN_ERR_TYPE, "loop variable '%s' must be an integer", var_name(x->var));
    if (!ir_dt_eq(x->min->dtype, t))
      return type_mismatch(V, s, "the start", x->min->dtype, t);
    if (!ir_dt_eq(x->extent->dtype, t))
      return type_mismatch(V, s, "the extent", x->extent->dtype, t);
    TRY(expect_stmt(V, s, x->body, "the body"));
    close_def(&V->vars, x->var);
    return KILN_OK;
  }
  case IR_IF: {
    const ir_if *x = (const ir_if *)s;
    TRY(expect_bool(V, s, x->cond, "the condition"));
    TRY(expect_stmt(V, s, x->then_case, "the then branch"));
    if (x->else_case) TRY(expect_stmt(V, s, x->else_case, "the else branch"));
    return KILN_OK;
  }
  case IR_SEQ: {
    const ir_seq *x = (const ir_seq *)s;
    if (x->nstmts < 1 || !x->stmts)
      return vfail(V, s, KILN_ERR_TYPE, "seq: a sequence needs at least one statement");
    for (int i = 0; i < x->nstmts; i++) TRY(expect_stmt(V, s, x->stmts[i], "each element"));
    return KILN_OK;
  }
  case IR_LET_STMT: {
    const ir_let_stmt *x = (const ir_let_stmt *)s;
    TRY(expect_expr(V, s, x->value, "the value"));
    TRY(def_var(V, s, (const ir_node *)x->var, "a let variable"));
    if (!ir_dt_eq(x->var->h.dtype, x->value->dtype))
      return type_mismatch(V, s, "the bound value", x->value->dtype, x->var->h.dtype);
    TRY(expect_stmt(V, s, x->body, "the body"));
    close_def(&V->vars, x->var);
    return KILN_OK;
  }
  case IR_ALLOCATE: {
    const ir_allocate *x = (const ir_allocate *)s;
    TRY(def_buffer(V, s, (const ir_node *)x->buffer, "an allocated buffer"));
    TRY(expect_stmt(V, s, x->body, "the body"));
    close_def(&V->bufs, x->buffer);
    return KILN_OK;
  }
  case IR_EVALUATE:
    return expect_expr(V, s, ((const ir_evaluate *)s)->value, "the value");
  case IR_BLOCK_REALIZE:
    return verify_realize(V, (const ir_block_realize *)s);
  case IR_BLOCK:
    return vfail(V, s, KILN_ERR_TYPE, "block '%s' is not inside a block_realize",
                 ((const ir_block *)s)->name ? ((const ir_block *)s)->name : "?");
  case IR_INT_IMM:
  case IR_FLOAT_IMM:
  case IR_STR_IMM:
  case IR_VAR:
  case IR_ADD:
  case IR_SUB:
  case IR_MUL:
  case IR_DIV:
  case IR_MOD:
  case IR_FLOORDIV:
  case IR_FLOORMOD:
  case IR_MIN:
  case IR_MAX:
  case IR_EQ:
  case IR_NE:
  case IR_LT:
  case IR_LE:
  case IR_GT:
  case IR_GE:
  case IR_AND:
  case IR_OR:
  case IR_NOT:
  case IR_SELECT:
  case IR_CAST:
  case IR_RAMP:
  case IR_BROADCAST:
  case IR_LOAD:
  case IR_CALL:
  case IR_LET:
  case IR_BUFFER:
  case IR_ITER_VAR:
  case IR_RANGE:
  case IR_REGION:
  case IR_ANNOT:
  case IR_FUNC:
  case IR_KIND_COUNT:
    break;
  }
  return vfail(V, s, KILN_ERR_TYPE, "a %s where a statement is expected", ir_kind_name(s->kind));
}

/* ---- Functions and modules ---------------------------------------------------------- */

/* Parameters first: scalar variables (at LEVEL_PARAM, visible everywhere), then buffers,
 * whose shapes may use only those scalars; then the body. */
static kiln_status verify_func(verifier *V, const ir_func *f) {
  if (f->nparams < 0 || (f->nparams > 0 && !f->params))
    return vfail(V, &f->h, KILN_ERR_TYPE, "malformed parameter list");
  for (int i = 0; i < f->nparams; i++) {
    const ir_node *p = f->params[i];
    if (!p || (p->kind != IR_VAR && p->kind != IR_BUFFER))
      return vfail(V, &f->h, KILN_ERR_TYPE, "parameter %d must be a buffer or a scalar variable",
                   i);
    if (p->kind != IR_VAR) continue;
    V->level = LEVEL_PARAM;
    kiln_status st = def_var(V, &f->h, p, "a parameter");
    V->level = 0;
    TRY(st);
  }
  for (int i = 0; i < f->nparams; i++) {
    const ir_node *p = f->params[i];
    if (p->kind != IR_BUFFER) continue;
    V->param_shape = (const ir_buffer *)p;
    kiln_status st = def_buffer(V, &f->h, p, "a parameter");
    V->param_shape = NULL;
    TRY(st);
  }
  TRY(check_annots(V, &f->h, f->nattrs, f->attrs));
  return expect_stmt(V, &f->h, f->body, "the body");
}

kiln_status ir_verify_func(kiln_context *ctx, const ir_func *f) {
  if (!f || f->h.kind != IR_FUNC)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "verify: not a function");
  verifier V;
  memset(&V, 0, sizeof V);
  V.ctx = ctx;
  V.f = f;
  ir_ptrmap_init(&V.vars, ctx);
  ir_ptrmap_init(&V.bufs, ctx);
  kiln_status st = KILN_ERR_NOMEM;
  if ((V.arena = ir_arena_new(ctx))) st = verify_func(&V, f);
  ir_ptrmap_free(&V.vars);
  ir_ptrmap_free(&V.bufs);
  ir_arena_free(V.arena);
  return st;
}

kiln_status ir_verify_module(const kiln_tir_module *mod) {
  if (!mod || !mod->ctx) return KILN_ERR_MISUSE;
  for (int i = 0; i < mod->nfuncs; i++) TRY(ir_verify_func(mod->ctx, mod->funcs[i]));
  return KILN_OK;
}

/* interp.c: the Relay reference interpreter (see interp.h). It walks the graph with an
 * explicit task stack (no C recursion over the graph, so deep models cannot overflow the
 * stack) and evaluates every node once per function activation (shared subexpressions of the
 * DAG are computed once). Each activation has a frame of slots, one per node of its region
 * (the function body without nested function bodies), holding the node's value and how many
 * of its uses are still to come; the value is released after its last use, so intermediate
 * tensors live no longer than needed. Op calls run the op's reference kernel on outputs
 * allocated from the call's inferred type, with symbolic dimensions replaced by the values
 * bound from the arguments' shapes. */
#include <stdio.h>
#include <string.h>

#include "ir/arith.h"
#include "relay/interp.h"

/* Calls nested deeper than this are reported instead of exhausting memory. */
enum { MAX_FRAMES = 10000 };

/* The variables a function captures when it becomes a closure. */
typedef struct varlist {
  int32_t n;
  relay_var **vars;
} varlist;

/* The region of a function body (or of the root expression): its nodes, without nested
 * function bodies, and how many times each node is used inside the region. A function's
 * free variables count as uses by the function node (the closure captures them). */
typedef struct layout {
  ir_ptrmap index; /* node -> slot number + 1 */
  int32_t n;
  int32_t *uses;
  const ir_node *root;
} layout;

typedef struct slot {
  relay_value *val; /* owned reference; NULL before evaluation and after the last use */
  int32_t uses;     /* uses still to come */
  bool done;
} slot;

/* One activation of a function (or of the root expression). */
typedef struct frame {
  const layout *lay;
  slot *slots;
} frame;

/* A node to evaluate in a frame; `state` says how far it got (children pushed, ...). */
typedef struct task {
  const ir_node *e;
  frame *f;
  int32_t state;
  frame *callee; /* a function call's frame while the callee's body runs */
} task;

typedef struct interp {
  kiln_context *ctx;
  const relay_module *m;
  ir_arena *scratch;   /* layouts, free-variable lists, resolved shapes, dimension values */
  ir_ptrmap layouts;   /* function or root expression -> layout */
  ir_ptrmap freevars;  /* relay_func -> varlist */
  ir_ptrmap shapes;    /* relay_tensor_type -> int64_t[ndim] once fully resolved */
  ir_ptrmap dim_index; /* symbolic dimension (ir_var) -> index + 1 into dim_vars */
  int32_t ndims, cap_dims;
  ir_var **dim_vars;
  ir_expr **dim_vals;
  int64_t *dim_ints;
  task *stack;
  int32_t nstack, cap_stack;
  int32_t nframes;
  relay_tensor *targs; /* scratch: a kernel's arguments and outputs */
  int32_t cap_targs;
  char root_key; /* its address keys the root expression's layout (no node has it) */
} interp;

#define TRY(x)                      \
  do {                              \
    kiln_status st_ = (x);          \
    if (st_ != KILN_OK) return st_; \
  } while (0)

/* The status of a step that returned NULL: the error it recorded (an allocation records
 * KILN_ERR_NOMEM), or out of memory. Entry points clear the context's error first. */
static kiln_status error_of(interp *I) {
  if (I->ctx->code) return I->ctx->code;
  return ir_fail(I->ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "out of memory");
}

/* ---- Values ------------------------------------------------------------------------ */

relay_value *relay_value_retain(relay_value *v) {
  if (v) v->refs++;
  return v;
}

void relay_value_release(kiln_context *ctx, relay_value *v) {
  if (!v || --v->refs > 0) return;
  switch ((relay_value_kind)v->kind) {
  case RELAY_VALUE_TENSOR: relay_tensor_free(ctx, &v->tensor); break;
  case RELAY_VALUE_TUPLE:
    for (int i = 0; i < v->nfields; i++) relay_value_release(ctx, v->fields[i]);
    ir_free(ctx, v->fields, sizeof(relay_value *) * (size_t)v->nfields);
    break;
  case RELAY_VALUE_CLOSURE:
    for (int i = 0; i < v->ncaptured; i++) relay_value_release(ctx, v->captured[i]);
    ir_free(ctx, v->captured, sizeof(relay_value *) * (size_t)v->ncaptured);
    ir_free(ctx, v->captured_vars, sizeof(relay_var *) * (size_t)v->ncaptured);
    break;
  }
  ir_free(ctx, v, sizeof *v);
}

static relay_value *value_new(interp *I, int kind) {
  relay_value *v = ir_malloc(I->ctx, sizeof *v);
  if (!v) return NULL;
  memset(v, 0, sizeof *v);
  v->kind = kind;
  v->refs = 1;
  return v;
}

/* A tensor value that borrows data (a constant's or an argument's). */
static relay_value *value_borrow(interp *I, const relay_tensor *t) {
  relay_value *v = value_new(I, RELAY_VALUE_TENSOR);
  if (!v) return NULL;
  v->tensor = *t;
  v->tensor.owned = false;
  return v;
}

/* Bytes of a dense tensor, or -1 when the count overflows or is absurd. */
static int64_t tensor_bytes(kiln_dtype t, int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return -1;
    if (shape[i] && n > ((int64_t)1 << 40) / shape[i]) return -1;
    n *= shape[i];
  }
  int64_t esize = (int64_t)kiln_dtype_bytes(t);
  if (esize <= 0 || (n && n > ((int64_t)1 << 40) / esize)) return -1;
  return n * esize;
}

/* A tensor value with zeroed data of its own. */
static relay_value *value_tensor_new(interp *I, kiln_dtype t, int ndim, const int64_t *shape) {
  int64_t nbytes = tensor_bytes(t, ndim, shape);
  if (nbytes < 0) {
    ir_fail(I->ctx, IR_NO_SPAN, KILN_ERR_RUNTIME, "a result tensor is too large to allocate");
    return NULL;
  }
  relay_value *v = value_new(I, RELAY_VALUE_TENSOR);
  if (!v) return NULL;
  relay_tensor *x = &v->tensor;
  x->dtype = t;
  x->ndim = ndim;
  memcpy(x->shape, shape, sizeof(int64_t) * (size_t)ndim);
  x->nbytes = (size_t)nbytes;
  x->data = ir_malloc(I->ctx, x->nbytes ? x->nbytes : 1);
  if (!x->data) {
    ir_free(I->ctx, v, sizeof *v);
    return NULL;
  }
  memset(x->data, 0, x->nbytes ? x->nbytes : 1);
  x->owned = true;
  return v;
}

/* Gives every tensor reachable from v data of its own (results must not point into the
 * module's constants or the caller's arguments). */
static kiln_status value_make_owned(kiln_context *ctx, relay_value *v) {
  switch ((relay_value_kind)v->kind) {
  case RELAY_VALUE_TENSOR: {
    relay_tensor *t = &v->tensor;
    if (t->owned) return KILN_OK;
    void *p = ir_malloc(ctx, t->nbytes ? t->nbytes : 1);
    if (!p) return KILN_ERR_NOMEM;
    if (t->nbytes) memcpy(p, t->data, t->nbytes);
    t->data = p;
    t->owned = true;
    return KILN_OK;
  }
  case RELAY_VALUE_TUPLE:
    for (int i = 0; i < v->nfields; i++) TRY(value_make_owned(ctx, v->fields[i]));
    return KILN_OK;
  case RELAY_VALUE_CLOSURE:
    for (int i = 0; i < v->ncaptured; i++) TRY(value_make_owned(ctx, v->captured[i]));
    return KILN_OK;
  }
  return KILN_OK;
}

/* ---- The graph's structure ------------------------------------------------------------ */

/* The child expressions of n (not its type or attributes). A function's child is its body
 * when enter_funcs is set; otherwise (inside a region) its children are the variables it
 * captures, `fv`. */
static int kid_count(const ir_node *n, bool enter_funcs, const varlist *fv) {
  switch (n->kind) {
  case RELAY_CALL: {
    const relay_call *c = (const relay_call *)n;
    return (c->fn ? 1 : 0) + c->nargs;
  }
  case RELAY_TUPLE: return ((const relay_tuple *)n)->nfields;
  case RELAY_PROJ: return 1;
  case RELAY_LET: return 2;
  case RELAY_IF: return 3;
  case RELAY_FUNC: return enter_funcs ? 1 : fv ? fv->n : 0;
  default: return 0;
  }
}

static const ir_node *kid_at(const ir_node *n, bool enter_funcs, const varlist *fv, int i) {
  switch (n->kind) {
  case RELAY_CALL: {
    const relay_call *c = (const relay_call *)n;
    if (c->fn) return i == 0 ? c->fn : c->args[i - 1];
    return c->args[i];
  }
  case RELAY_TUPLE: return ((const relay_tuple *)n)->fields[i];
  case RELAY_PROJ: return ((const relay_proj *)n)->tuple;
  case RELAY_LET: return i == 0 ? ((const relay_let *)n)->value : ((const relay_let *)n)->body;
  case RELAY_IF: {
    const relay_if *x = (const relay_if *)n;
    return i == 0 ? x->cond : i == 1 ? x->then_branch : x->else_branch;
  }
  case RELAY_FUNC:
    return enter_funcs ? ((const relay_func *)n)->body : (const ir_node *)&fv->vars[i]->h;
  default: return NULL;
  }
}

/* A growable array of node pointers in context memory. */
typedef struct nodevec {
  const ir_node **v;
  int32_t n, cap;
} nodevec;

static kiln_status vec_push(interp *I, nodevec *s, const ir_node *x) {
  if (s->n == s->cap) {
    int32_t cap = s->cap ? s->cap * 2 : 32;
    const ir_node **v =
        ir_realloc(I->ctx, s->v, sizeof(*v) * (size_t)s->cap, sizeof(*v) * (size_t)cap);
    if (!v) return error_of(I);
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = x;
  return KILN_OK;
}

static void vec_free(interp *I, nodevec *s) {
  ir_free(I->ctx, s->v, sizeof(*s->v) * (size_t)s->cap);
  memset(s, 0, sizeof *s);
}

/* The free variables of f: variables used in its body (nested functions included) that
 * neither its parameters nor a binding inside it define. Cached per function. */
static const varlist *get_freevars(interp *I, const relay_func *f) {
  varlist *fv = ir_ptrmap_get(&I->freevars, f);
  if (fv) return fv;
  ir_ptrmap seen, defined;
  ir_ptrmap_init(&seen, I->ctx);
  ir_ptrmap_init(&defined, I->ctx);
  nodevec stack = {0}, used = {0};
  kiln_status st = KILN_OK;
  for (int i = 0; i < f->nparams && !st; i++) st = ir_ptrmap_put(&defined, f->params[i], (void *)1);
  if (!st && !(st = vec_push(I, &stack, f->body))) st = ir_ptrmap_put(&seen, f->body, (void *)1);
  while (!st && stack.n) {
    const ir_node *n = stack.v[--stack.n];
    if (n->kind == RELAY_VAR)
      st = vec_push(I, &used, n);
    else if (n->kind == RELAY_LET)
      st = ir_ptrmap_put(&defined, ((const relay_let *)n)->var, (void *)1);
    else if (n->kind == RELAY_FUNC) {
      const relay_func *g = (const relay_func *)n;
      for (int i = 0; i < g->nparams && !st; i++)
        st = ir_ptrmap_put(&defined, g->params[i], (void *)1);
    }
    for (int i = kid_count(n, true, NULL) - 1; i >= 0 && !st; i--) {
      const ir_node *k = kid_at(n, true, NULL, i);
      if (ir_ptrmap_get(&seen, k)) continue;
      if (!(st = ir_ptrmap_put(&seen, k, (void *)1))) st = vec_push(I, &stack, k);
    }
  }
  if (!st && (fv = ir_arena_alloc(I->scratch, sizeof *fv)) != NULL &&
      (!used.n || (fv->vars = ir_arena_alloc(I->scratch, sizeof(relay_var *) * (size_t)used.n)))) {
    for (int i = 0; i < used.n; i++)
      if (!ir_ptrmap_get(&defined, used.v[i])) fv->vars[fv->n++] = (relay_var *)used.v[i];
    if (ir_ptrmap_put(&I->freevars, f, fv)) fv = NULL;
  } else {
    fv = NULL;
  }
  ir_ptrmap_free(&seen);
  ir_ptrmap_free(&defined);
  vec_free(I, &stack);
  vec_free(I, &used);
  return fv;
}

static int32_t slot_index(const layout *lay, const ir_node *n) {
  return (int32_t)(intptr_t)ir_ptrmap_get(&lay->index, n) - 1;
}

/* The layout of the region rooted at `root`, cached under `key` (the function, or
 * &I->root_key for the expression relay_interp_eval evaluates). */
static const layout *get_layout(interp *I, const void *key, const ir_node *root) {
  layout *lay = ir_ptrmap_get(&I->layouts, key);
  if (lay) return lay;
  if (!(lay = ir_arena_alloc(I->scratch, sizeof *lay))) return NULL;
  ir_ptrmap_init(&lay->index, I->ctx);
  lay->root = root;
  if (ir_ptrmap_put(&I->layouts, key, lay)) {
    ir_ptrmap_free(&lay->index);
    return NULL;
  }
  /* Depth-first walk numbering the nodes, then one pass counting the uses. */
  nodevec stack = {0}, order = {0};
  kiln_status st = vec_push(I, &stack, root);
  if (!st && !(st = vec_push(I, &order, root))) st = ir_ptrmap_put(&lay->index, root, (void *)1);
  while (!st && stack.n) {
    const ir_node *n = stack.v[--stack.n];
    const varlist *fv = NULL;
    if (n->kind == RELAY_FUNC && !(fv = get_freevars(I, (const relay_func *)n))) st = error_of(I);
    for (int i = kid_count(n, false, fv) - 1; i >= 0 && !st; i--) {
      const ir_node *k = kid_at(n, false, fv, i);
      if (ir_ptrmap_get(&lay->index, k)) continue;
      if (!(st = vec_push(I, &order, k)) &&
          !(st = ir_ptrmap_put(&lay->index, k, (void *)(intptr_t)order.n)))
        st = vec_push(I, &stack, k);
    }
  }
  if (!st) {
    lay->n = order.n;
    lay->uses = ir_arena_alloc(I->scratch, sizeof(int32_t) * (size_t)order.n);
    if (!lay->uses) st = KILN_ERR_NOMEM;
  }
  for (int32_t j = 0; !st && j < order.n; j++) {
    const ir_node *n = order.v[j];
    const varlist *fv = n->kind == RELAY_FUNC ? ir_ptrmap_get(&I->freevars, n) : NULL;
    for (int i = 0; i < kid_count(n, false, fv); i++)
      lay->uses[slot_index(lay, kid_at(n, false, fv, i))]++;
  }
  vec_free(I, &stack);
  vec_free(I, &order);
  if (st) {
    /* Leave no half-built layout in the cache. */
    ir_ptrmap_put(&I->layouts, key, NULL);
    ir_ptrmap_free(&lay->index);
    return NULL;
  }
  return lay;
}

/* ---- Frames -------------------------------------------------------------------------- */

static void frame_free(interp *I, frame *f) {
  if (!f) return;
  for (int32_t i = 0; i < f->lay->n; i++) relay_value_release(I->ctx, f->slots[i].val);
  ir_free(I->ctx, f->slots, sizeof(slot) * (size_t)f->lay->n);
  ir_free(I->ctx, f, sizeof *f);
  I->nframes--;
}

/* A new activation of the region of `lay`. The root gets one extra use: the caller's. */
static frame *frame_new(interp *I, const layout *lay) {
  if (I->nframes >= MAX_FRAMES) {
    ir_fail(I->ctx, IR_NO_SPAN, KILN_ERR_RUNTIME,
            "interpret: calls nested deeper than %d (unbounded recursion?)", MAX_FRAMES);
    return NULL;
  }
  frame *f = ir_malloc(I->ctx, sizeof *f);
  slot *s = f ? ir_malloc(I->ctx, sizeof(slot) * (size_t)lay->n) : NULL;
  if (!s) {
    ir_free(I->ctx, f, sizeof *f);
    return NULL;
  }
  for (int32_t i = 0; i < lay->n; i++) s[i] = (slot){NULL, lay->uses[i], false};
  s[slot_index(lay, lay->root)].uses++;
  f->lay = lay;
  f->slots = s;
  I->nframes++;
  return f;
}

static slot *slot_of(frame *f, const ir_node *n) { return &f->slots[slot_index(f->lay, n)]; }

/* Gives a variable its value in frame f (a reference is taken). A variable the region never
 * uses has no slot and needs none. */
static void bind_var(frame *f, const relay_var *v, relay_value *val) {
  int32_t i = slot_index(f->lay, &v->h);
  if (i < 0) return;
  f->slots[i].val = relay_value_retain(val);
  f->slots[i].done = true;
}

/* One use of n's value is over; after the last one the value is released. */
static void consume(interp *I, frame *f, const ir_node *n) {
  slot *s = slot_of(f, n);
  if (--s->uses == 0) {
    relay_value_release(I->ctx, s->val);
    s->val = NULL;
  }
}

/* ---- Symbolic dimensions ------------------------------------------------------------ */

static kiln_status dim_bind(interp *I, ir_var *v, int64_t value) {
  if (I->ndims == I->cap_dims) {
    int32_t cap = I->cap_dims ? I->cap_dims * 2 : 8;
    ir_var **vars = ir_arena_alloc(I->scratch, sizeof(ir_var *) * (size_t)cap);
    ir_expr **vals = ir_arena_alloc(I->scratch, sizeof(ir_expr *) * (size_t)cap);
    int64_t *ints = ir_arena_alloc(I->scratch, sizeof(int64_t) * (size_t)cap);
    if (!vars || !vals || !ints) return KILN_ERR_NOMEM;
    if (I->ndims) {
      memcpy(vars, I->dim_vars, sizeof(ir_var *) * (size_t)I->ndims);
      memcpy(vals, I->dim_vals, sizeof(ir_expr *) * (size_t)I->ndims);
      memcpy(ints, I->dim_ints, sizeof(int64_t) * (size_t)I->ndims);
    }
    I->dim_vars = vars;
    I->dim_vals = vals;
    I->dim_ints = ints;
    I->cap_dims = cap;
  }
  ir_expr *e = ir_int(I->scratch, KILN_INT64, value);
  if (!e) return KILN_ERR_NOMEM;
  I->dim_vars[I->ndims] = v;
  I->dim_vals[I->ndims] = e;
  I->dim_ints[I->ndims] = value;
  I->ndims++;
  return ir_ptrmap_put(&I->dim_index, v, (void *)(intptr_t)I->ndims);
}

static bool find_unbound(ir_node *n, void *ud) {
  interp *I = ((void **)ud)[0];
  if (n->kind == IR_VAR && !ir_ptrmap_get(&I->dim_index, n) && !((void **)ud)[1])
    ((void **)ud)[1] = n;
  return true;
}

/* The value of a dimension expression under the bound dimensions. */
static kiln_status dim_eval(interp *I, ir_expr *d, int64_t *out) {
  ir_int_imm *c = ir_as_int(d);
  if (c) {
    *out = c->value;
    return KILN_OK;
  }
  int32_t k = (int32_t)(intptr_t)ir_ptrmap_get(&I->dim_index, d);
  if (k) {
    *out = I->dim_ints[k - 1];
    return KILN_OK;
  }
  void *ud[2] = {I, NULL};
  ir_visit(d, false, find_unbound, ud);
  if (ud[1])
    return ir_fail(I->ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                   "interpret: dimension '%s' has no value (no argument shape binds it)",
                   ((ir_var *)ud[1])->name);
  ir_expr *s = ir_substitute(I->scratch, d, I->ndims, I->dim_vars, I->dim_vals);
  ir_analyzer *an = s ? ir_analyzer_new(I->scratch) : NULL;
  ir_expr *r = an ? ir_simplify_expr(an, s) : NULL;
  ir_analyzer_free(an);
  if (!r) return I->ctx->code ? I->ctx->code : KILN_ERR_NOMEM;
  if (!(c = ir_as_int(r)))
    return ir_fail(I->ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                   "interpret: a dimension does not simplify to a constant");
  *out = c->value;
  return KILN_OK;
}

/* The concrete shape of a tensor type (cached once resolved: bindings never change). */
static kiln_status resolve_shape(interp *I, const relay_tensor_type *t, int64_t *shape) {
  const int64_t *cached = ir_ptrmap_get(&I->shapes, t);
  if (cached) {
    memcpy(shape, cached, sizeof(int64_t) * (size_t)t->ndim);
    return KILN_OK;
  }
  bool constant = true;
  for (int i = 0; i < t->ndim; i++) {
    constant = constant && ir_as_int(t->shape[i]);
    TRY(dim_eval(I, t->shape[i], &shape[i]));
    if (shape[i] < 0)
      return ir_fail(I->ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                     "interpret: dimension %d of a result is negative (%lld)", i,
                     (long long)shape[i]);
  }
  if (constant || t->ndim == 0) return KILN_OK;
  int64_t *keep = ir_arena_alloc(I->scratch, sizeof(int64_t) * (size_t)t->ndim);
  if (!keep) return KILN_ERR_NOMEM;
  memcpy(keep, shape, sizeof(int64_t) * (size_t)t->ndim);
  return ir_ptrmap_put(&I->shapes, t, keep);
}

/* Checks a value against a parameter's type, binding symbolic dimensions on the way (first
 * pass: plain dimension variables) or checking dimension expressions (second pass). */
static kiln_status check_arg(interp *I, const char *fname, const relay_var *p, const relay_type *t,
                             const relay_value *v, bool exprs) {
  char dt1[32], dt2[32];
  if (!t) return KILN_OK;
  if (t->kind == RELAY_TUPLE_TYPE) {
    const relay_tuple_type *tt = (const relay_tuple_type *)t;
    if (v->kind != RELAY_VALUE_TUPLE || v->nfields != tt->nfields)
      return ir_fail(I->ctx, p->h.span, KILN_ERR_TYPE,
                     "interpret @%s: parameter %%%s expects a tuple of %d fields", fname, p->name,
                     (int)tt->nfields);
    for (int i = 0; i < tt->nfields; i++)
      TRY(check_arg(I, fname, p, tt->fields[i], v->fields[i], exprs));
    return KILN_OK;
  }
  if (t->kind != RELAY_TENSOR_TYPE) return KILN_OK; /* functions are checked by their calls */
  const relay_tensor_type *tt = (const relay_tensor_type *)t;
  if (v->kind != RELAY_VALUE_TENSOR)
    return ir_fail(I->ctx, p->h.span, KILN_ERR_TYPE,
                   "interpret @%s: parameter %%%s expects a tensor", fname, p->name);
  const relay_tensor *x = &v->tensor;
  if (!ir_dt_eq(x->dtype, tt->h.dtype))
    return ir_fail(I->ctx, p->h.span, KILN_ERR_TYPE,
                   "interpret @%s: parameter %%%s expects a %s tensor, the argument is %s", fname,
                   p->name, kiln_dtype_str(tt->h.dtype, dt1, sizeof dt1),
                   kiln_dtype_str(x->dtype, dt2, sizeof dt2));
  if (x->ndim != tt->ndim)
    return ir_fail(I->ctx, p->h.span, KILN_ERR_SHAPE,
                   "interpret @%s: parameter %%%s has rank %d, the argument has rank %d", fname,
                   p->name, (int)tt->ndim, (int)x->ndim);
  for (int i = 0; i < tt->ndim; i++) {
    ir_expr *d = tt->shape[i];
    ir_int_imm *c = ir_as_int(d);
    ir_var *dv = ir_as_var(d);
    int64_t want;
    if (c) {
      if (exprs || c->value == x->shape[i]) continue;
      return ir_fail(I->ctx, p->h.span, KILN_ERR_SHAPE,
                     "interpret @%s: parameter %%%s: dimension %d is %lld, the argument has %lld",
                     fname, p->name, i, (long long)c->value, (long long)x->shape[i]);
    }
    if (dv) {
      if (exprs) continue;
      int32_t k = (int32_t)(intptr_t)ir_ptrmap_get(&I->dim_index, dv);
      if (!k) {
        TRY(dim_bind(I, dv, x->shape[i]));
        continue;
      }
      if (I->dim_ints[k - 1] == x->shape[i]) continue;
      return ir_fail(
          I->ctx, p->h.span, KILN_ERR_SHAPE,
          "interpret @%s: parameter %%%s: dimension %d (%s) is %lld, but %s is %lld from an "
          "earlier argument",
          fname, p->name, i, dv->name, (long long)x->shape[i], dv->name,
          (long long)I->dim_ints[k - 1]);
    }
    if (!exprs) continue;
    TRY(dim_eval(I, d, &want));
    if (want != x->shape[i])
      return ir_fail(I->ctx, p->h.span, KILN_ERR_SHAPE,
                     "interpret @%s: parameter %%%s: dimension %d must be %lld (from the other "
                     "dimensions), the argument has %lld",
                     fname, p->name, i, (long long)want, (long long)x->shape[i]);
  }
  return KILN_OK;
}

/* Checks a call's arguments against the parameters of f and binds its dimensions. */
static kiln_status check_args(interp *I, const char *fname, const relay_func *f,
                              relay_value *const *args) {
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < f->nparams; i++)
      TRY(check_arg(I, fname, f->params[i], f->params[i]->type, args[i], pass == 1));
  return KILN_OK;
}

/* ---- Evaluation ---------------------------------------------------------------------- */

static kiln_status push(interp *I, const ir_node *e, frame *f) {
  if (I->nstack == I->cap_stack) {
    int32_t cap = I->cap_stack ? I->cap_stack * 2 : 64;
    task *s = ir_realloc(I->ctx, I->stack, sizeof(task) * (size_t)I->cap_stack,
                         sizeof(task) * (size_t)cap);
    if (!s) return error_of(I);
    I->stack = s;
    I->cap_stack = cap;
  }
  I->stack[I->nstack++] = (task){e, f, 0, NULL};
  return KILN_OK;
}

/* Pushes the children of the task's node that have no value yet (the first child ends on
 * top, so children run in order). */
static kiln_status push_kids(interp *I, int32_t ti) {
  const ir_node *n = I->stack[ti].e;
  frame *f = I->stack[ti].f;
  const varlist *fv = NULL;
  if (n->kind == RELAY_FUNC && !(fv = get_freevars(I, (const relay_func *)n))) return error_of(I);
  for (int i = kid_count(n, false, fv) - 1; i >= 0; i--) {
    const ir_node *k = kid_at(n, false, fv, i);
    if (!slot_of(f, k)->done) TRY(push(I, k, f));
  }
  return KILN_OK;
}

static relay_value *kid_value(frame *f, const ir_node *n) { return slot_of(f, n)->val; }

static const char *var_name(const ir_node *n) { return ((const relay_var *)n)->name; }

/* Allocates the outputs of an op call from its inferred type (a tensor or a tuple of
 * tensors), with the dimensions resolved. */
static kiln_status alloc_result(interp *I, const relay_call *c, relay_value **out) {
  const relay_type *t = c->type;
  int64_t shape[RELAY_MAX_DIMS];
  if (t && t->kind == RELAY_TENSOR_TYPE) {
    const relay_tensor_type *tt = (const relay_tensor_type *)t;
    TRY(resolve_shape(I, tt, shape));
    return (*out = value_tensor_new(I, tt->h.dtype, tt->ndim, shape)) ? KILN_OK : error_of(I);
  }
  const relay_tuple_type *tu = relay_as_tuple_type(t);
  if (!tu)
    return ir_fail(I->ctx, c->h.span, KILN_ERR_TYPE,
                   "interpret: the call of %s has no type (run InferType)", c->op);
  relay_value *v = value_new(I, RELAY_VALUE_TUPLE);
  if (!v) return error_of(I);
  *out = v;
  if (tu->nfields && !(v->fields = ir_malloc(I->ctx, sizeof(relay_value *) * (size_t)tu->nfields)))
    return error_of(I);
  for (int i = 0; i < tu->nfields; i++) v->fields[i] = NULL;
  v->nfields = tu->nfields;
  for (int i = 0; i < tu->nfields; i++) {
    const relay_tensor_type *ft = relay_as_tensor_type(tu->fields[i]);
    if (!ft)
      return ir_fail(I->ctx, c->h.span, KILN_ERR_UNSUPPORTED,
                     "interpret: %s returns a nested tuple", c->op);
    TRY(resolve_shape(I, ft, shape));
    if (!(v->fields[i] = value_tensor_new(I, ft->h.dtype, ft->ndim, shape))) return error_of(I);
  }
  return KILN_OK;
}

static kiln_status grow_targs(interp *I, int n) {
  if (n <= I->cap_targs) return KILN_OK;
  relay_tensor *t = ir_realloc(I->ctx, I->targs, sizeof(relay_tensor) * (size_t)I->cap_targs,
                               sizeof(relay_tensor) * (size_t)n);
  if (!t) return error_of(I);
  I->targs = t;
  I->cap_targs = n;
  return KILN_OK;
}

/* Runs an op call whose arguments are all evaluated. */
static kiln_status eval_op(interp *I, frame *f, const relay_call *c, relay_value **out) {
  const relay_op *op = c->opdef ? c->opdef : relay_op_lookup(c->op);
  if (!op)
    return ir_fail(I->ctx, c->h.span, KILN_ERR_UNDEFINED, "interpret: unknown op '%s'", c->op);
  if (!op->eval)
    return ir_fail(I->ctx, c->h.span, KILN_ERR_UNSUPPORTED, "interpret: %s has no reference kernel",
                   op->name);
  relay_value *res = NULL;
  kiln_status st = alloc_result(I, c, &res);
  int nouts = res && res->kind == RELAY_VALUE_TUPLE ? res->nfields : 1;
  if (!st) st = grow_targs(I, c->nargs + nouts);
  for (int i = 0; !st && i < c->nargs; i++) {
    relay_value *a = kid_value(f, c->args[i]);
    if (!a || a->kind != RELAY_VALUE_TENSOR)
      st = ir_fail(I->ctx, c->h.span, KILN_ERR_TYPE, "interpret: argument %d of %s is not a tensor",
                   i, op->name);
    else
      I->targs[i] = a->tensor;
  }
  if (!st) {
    relay_tensor *outs = I->targs + c->nargs;
    if (res->kind == RELAY_VALUE_TUPLE)
      for (int i = 0; i < nouts; i++) outs[i] = res->fields[i]->tensor;
    else
      outs[0] = res->tensor;
    relay_eval_ctx ec = {I->ctx, op->name};
    st = op->eval(&ec, c->nargs, I->targs, c->attrs, nouts, outs);
    if (st && !I->ctx->code) st = ir_fail(I->ctx, c->h.span, st, "interpret: %s failed", op->name);
  }
  if (st) {
    relay_value_release(I->ctx, res);
    return st;
  }
  *out = res;
  return KILN_OK;
}

static void finish(interp *I, int32_t ti, relay_value *v) {
  task *t = &I->stack[ti];
  slot *s = slot_of(t->f, t->e);
  s->val = v;
  s->done = true;
  I->nstack--;
}

/* Enters a function: a new frame with the parameters (and a closure's captured variables)
 * bound; the body becomes the next task. */
static kiln_status enter_call(interp *I, int32_t ti, const relay_call *c) {
  frame *f = I->stack[ti].f;
  relay_value *fn = kid_value(f, c->fn);
  if (!fn || fn->kind != RELAY_VALUE_CLOSURE)
    return ir_fail(I->ctx, c->h.span, KILN_ERR_TYPE,
                   "interpret: calling a value that is not a function");
  const relay_func *g = fn->func;
  if (g->nparams != c->nargs)
    return ir_fail(I->ctx, c->h.span, KILN_ERR_TYPE,
                   "interpret: the function takes %d arguments, not %d", (int)g->nparams,
                   (int)c->nargs);
  relay_value *argv[256];
  if (c->nargs > 256)
    return ir_fail(I->ctx, c->h.span, KILN_ERR_UNSUPPORTED, "interpret: more than 256 arguments");
  for (int i = 0; i < c->nargs; i++) argv[i] = kid_value(f, c->args[i]);
  const char *fname = c->fn->kind == RELAY_GLOBAL ? ((const relay_global *)c->fn)->name : "fn";
  TRY(check_args(I, fname, g, argv));
  const layout *lay = get_layout(I, g, g->body);
  if (!lay) return error_of(I);
  frame *callee = frame_new(I, lay);
  if (!callee) return I->ctx->code ? I->ctx->code : KILN_ERR_NOMEM;
  for (int i = 0; i < g->nparams; i++) bind_var(callee, g->params[i], argv[i]);
  for (int i = 0; i < fn->ncaptured; i++) bind_var(callee, fn->captured_vars[i], fn->captured[i]);
  I->stack[ti].callee = callee;
  I->stack[ti].state = 2;
  consume(I, f, c->fn);
  for (int i = 0; i < c->nargs; i++) consume(I, f, c->args[i]);
  return push(I, g->body, callee);
}

/* Creates a closure: the function and the current values of its free variables. */
static kiln_status make_closure(interp *I, frame *f, const relay_func *g, relay_value **out) {
  const varlist *fv = get_freevars(I, g);
  if (!fv) return error_of(I);
  relay_value *v = value_new(I, RELAY_VALUE_CLOSURE);
  if (!v) return error_of(I);
  v->func = g;
  if (fv->n) {
    v->captured = ir_malloc(I->ctx, sizeof(relay_value *) * (size_t)fv->n);
    v->captured_vars = ir_malloc(I->ctx, sizeof(relay_var *) * (size_t)fv->n);
    if (!v->captured || !v->captured_vars) {
      ir_free(I->ctx, v->captured, sizeof(relay_value *) * (size_t)fv->n);
      ir_free(I->ctx, v->captured_vars, sizeof(relay_var *) * (size_t)fv->n);
      ir_free(I->ctx, v, sizeof *v);
      return error_of(I);
    }
  }
  for (int i = 0; i < fv->n; i++) {
    v->captured_vars[i] = fv->vars[i];
    v->captured[i] = relay_value_retain(kid_value(f, &fv->vars[i]->h));
    consume(I, f, &fv->vars[i]->h);
  }
  v->ncaptured = fv->n;
  *out = v;
  return KILN_OK;
}

/* Advances the task on top of the stack by one step. */
static kiln_status step(interp *I) {
  int32_t ti = I->nstack - 1;
  task *t = &I->stack[ti];
  const ir_node *n = t->e;
  frame *f = t->f;
  if (t->state == 0 && slot_of(f, n)->done) {
    I->nstack--;
    return KILN_OK;
  }
  relay_value *v = NULL;
  switch ((relay_kind)n->kind) {
  case RELAY_CONST: {
    const relay_const *c = (const relay_const *)n;
    const relay_tensor_type *tt = (const relay_tensor_type *)c->type;
    relay_tensor x = {tt->h.dtype, tt->ndim, {0}, c->data, (size_t)c->nbytes, false};
    for (int i = 0; i < tt->ndim; i++) x.shape[i] = ir_as_int(tt->shape[i])->value;
    if (!(v = value_borrow(I, &x))) return error_of(I);
    finish(I, ti, v);
    return KILN_OK;
  }
  case RELAY_VAR:
    return ir_fail(I->ctx, n->span, KILN_ERR_UNDEFINED,
                   "interpret: variable %%%s has no value here (used outside its scope)",
                   var_name(n));
  case RELAY_GLOBAL: {
    const char *name = ((const relay_global *)n)->name;
    const relay_func *g = I->m ? relay_module_get(I->m, name) : NULL;
    if (!g)
      return ir_fail(I->ctx, n->span, KILN_ERR_UNDEFINED,
                     "interpret: no function @%s in the module", name);
    if (!(v = value_new(I, RELAY_VALUE_CLOSURE))) return error_of(I);
    v->func = g;
    finish(I, ti, v);
    return KILN_OK;
  }
  case RELAY_CALL: {
    const relay_call *c = (const relay_call *)n;
    if (t->state == 0) {
      t->state = 1;
      return push_kids(I, ti);
    }
    if (t->state == 1) {
      if (c->fn) return enter_call(I, ti, c);
      TRY(eval_op(I, f, c, &v));
      for (int i = 0; i < c->nargs; i++) consume(I, f, c->args[i]);
      finish(I, ti, v);
      return KILN_OK;
    }
    /* state 2: the callee's body is done */
    frame *callee = t->callee;
    v = relay_value_retain(slot_of(callee, callee->lay->root)->val);
    t->callee = NULL;
    frame_free(I, callee);
    finish(I, ti, v);
    return KILN_OK;
  }
  case RELAY_TUPLE: {
    const relay_tuple *x = (const relay_tuple *)n;
    if (t->state == 0) {
      t->state = 1;
      return push_kids(I, ti);
    }
    if (!(v = value_new(I, RELAY_VALUE_TUPLE))) return error_of(I);
    if (x->nfields &&
        !(v->fields = ir_malloc(I->ctx, sizeof(relay_value *) * (size_t)x->nfields))) {
      ir_free(I->ctx, v, sizeof *v);
      return error_of(I);
    }
    v->nfields = x->nfields;
    for (int i = 0; i < x->nfields; i++)
      v->fields[i] = relay_value_retain(kid_value(f, x->fields[i]));
    for (int i = 0; i < x->nfields; i++) consume(I, f, x->fields[i]);
    finish(I, ti, v);
    return KILN_OK;
  }
  case RELAY_PROJ: {
    const relay_proj *x = (const relay_proj *)n;
    if (t->state == 0) {
      t->state = 1;
      return push_kids(I, ti);
    }
    relay_value *tv = kid_value(f, x->tuple);
    if (!tv || tv->kind != RELAY_VALUE_TUPLE || x->index < 0 || x->index >= tv->nfields)
      return ir_fail(I->ctx, n->span, KILN_ERR_TYPE,
                     "interpret: projection .%d of a value that has no such field", (int)x->index);
    v = relay_value_retain(tv->fields[x->index]);
    consume(I, f, x->tuple);
    finish(I, ti, v);
    return KILN_OK;
  }
  case RELAY_LET: {
    const relay_let *x = (const relay_let *)n;
    if (t->state == 0) {
      t->state = 1;
      if (!slot_of(f, x->value)->done) return push(I, x->value, f);
      return KILN_OK;
    }
    if (t->state == 1) {
      t->state = 2;
      bind_var(f, x->var, kid_value(f, x->value));
      consume(I, f, x->value);
      if (!slot_of(f, x->body)->done) return push(I, x->body, f);
      return KILN_OK;
    }
    v = relay_value_retain(kid_value(f, x->body));
    consume(I, f, x->body);
    finish(I, ti, v);
    return KILN_OK;
  }
  case RELAY_FUNC:
    if (t->state == 0) {
      t->state = 1;
      return push_kids(I, ti);
    }
    TRY(make_closure(I, f, (const relay_func *)n, &v));
    finish(I, ti, v);
    return KILN_OK;
  case RELAY_IF: {
    const relay_if *x = (const relay_if *)n;
    if (t->state == 0) {
      t->state = 1;
      if (!slot_of(f, x->cond)->done) return push(I, x->cond, f);
      return KILN_OK;
    }
    if (t->state == 1) {
      relay_value *c = kid_value(f, x->cond);
      if (!c || c->kind != RELAY_VALUE_TENSOR || relay_tensor_numel(&c->tensor) != 1)
        return ir_fail(I->ctx, n->span, KILN_ERR_TYPE,
                       "interpret: the condition of if is not a scalar");
      bool yes = relay_tensor_get(&c->tensor, 0) != 0;
      consume(I, f, x->cond);
      /* The branch not taken is never evaluated: give up its uses now. */
      t->state = yes ? 2 : 3;
      const ir_node *b = yes ? x->then_branch : x->else_branch;
      if (!slot_of(f, b)->done) return push(I, b, f);
      return KILN_OK;
    }
    const ir_node *b = t->state == 2 ? x->then_branch : x->else_branch;
    v = relay_value_retain(kid_value(f, b));
    consume(I, f, b);
    finish(I, ti, v);
    return KILN_OK;
  }
  case RELAY_TENSOR_TYPE:
  case RELAY_TUPLE_TYPE:
  case RELAY_FUNC_TYPE:
  case RELAY_ATTR:
  case RELAY_KIND_BEFORE_FIRST:
  case RELAY_KIND_END: break;
  }
  return ir_fail(I->ctx, n->span, KILN_ERR_INTERNAL, "interpret: %s is not an expression",
                 ir_kind_name(n->kind));
}

/* Runs tasks until the stack is empty; on error frees the frames of unfinished calls. */
static kiln_status run_tasks(interp *I) {
  kiln_status st = KILN_OK;
  while (I->nstack && !st) st = step(I);
  if (st) {
    if (!I->ctx->code) st = ir_fail(I->ctx, IR_NO_SPAN, st, "interpret: failed");
    for (int32_t i = 0; i < I->nstack; i++) frame_free(I, I->stack[i].callee);
    I->nstack = 0;
  }
  return st;
}

static kiln_status interp_init(interp *I, kiln_context *ctx, const relay_module *m) {
  memset(I, 0, sizeof *I);
  I->ctx = ctx;
  I->m = m;
  ir_ptrmap_init(&I->layouts, ctx);
  ir_ptrmap_init(&I->freevars, ctx);
  ir_ptrmap_init(&I->shapes, ctx);
  ir_ptrmap_init(&I->dim_index, ctx);
  relay_register_kinds();
  return (I->scratch = ir_arena_new(ctx)) ? KILN_OK : KILN_ERR_NOMEM;
}

static void interp_free(interp *I) {
  for (size_t i = 0; i < I->layouts.cap; i++) {
    layout *lay = I->layouts.keys && I->layouts.keys[i] ? I->layouts.vals[i] : NULL;
    if (lay) ir_ptrmap_free(&lay->index);
  }
  ir_ptrmap_free(&I->layouts);
  ir_ptrmap_free(&I->freevars);
  ir_ptrmap_free(&I->shapes);
  ir_ptrmap_free(&I->dim_index);
  ir_free(I->ctx, I->stack, sizeof(task) * (size_t)I->cap_stack);
  ir_free(I->ctx, I->targs, sizeof(relay_tensor) * (size_t)I->cap_targs);
  ir_arena_free(I->scratch);
}

/* Evaluates the region of `lay` in frame f (already set up) and hands out the root's value. */
static kiln_status eval_frame(interp *I, frame *f, relay_value **out) {
  kiln_status st = push(I, f->lay->root, f);
  if (!st) st = run_tasks(I);
  relay_value *v = st ? NULL : relay_value_retain(slot_of(f, f->lay->root)->val);
  if (v && (st = value_make_owned(I->ctx, v)) != KILN_OK) {
    relay_value_release(I->ctx, v);
    v = NULL;
  }
  *out = v;
  return st;
}

kiln_status relay_interp_eval(kiln_context *ctx, const relay_module *m, const relay_expr *e,
                              relay_value **out) {
  if (!out) return KILN_ERR_MISUSE;
  *out = NULL;
  if (!ctx || !relay_is_expr(e)) return KILN_ERR_MISUSE;
  ir_clear_error(ctx);
  interp I;
  kiln_status st = interp_init(&I, ctx, m);
  const layout *lay = st ? NULL : get_layout(&I, &I.root_key, e);
  frame *f = lay ? frame_new(&I, lay) : NULL;
  if (!f)
    st = ctx->code ? ctx->code : KILN_ERR_NOMEM;
  else
    st = eval_frame(&I, f, out);
  frame_free(&I, f);
  interp_free(&I);
  return st;
}

kiln_status relay_interp_run(const relay_module *m, const char *func, int nargs,
                             const relay_tensor *args, relay_value **out) {
  if (!out) return KILN_ERR_MISUSE;
  *out = NULL;
  if (!m || !func || nargs < 0 || (nargs && !args)) return KILN_ERR_MISUSE;
  kiln_context *ctx = m->ctx;
  ir_clear_error(ctx);
  const relay_func *g = relay_module_get(m, func);
  if (!g)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNDEFINED, "interpret: no function @%s in the module",
                   func);
  if (g->nparams != nargs)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "interpret: @%s takes %d arguments, not %d",
                   func, (int)g->nparams, nargs);
  for (int i = 0; i < nargs; i++) {
    const relay_tensor *a = &args[i];
    int64_t need =
        a->ndim >= 0 && a->ndim <= RELAY_MAX_DIMS ? tensor_bytes(a->dtype, a->ndim, a->shape) : -1;
    if (need < 0 || (need && !a->data) || (a->nbytes && a->nbytes < (size_t)need))
      return ir_fail(
          ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
          "interpret: argument %d (for %%%s) is not a valid tensor (bad shape, or too little data)",
          i, g->params[i]->name);
  }
  interp I;
  kiln_status st = interp_init(&I, ctx, m);
  relay_value *argv[256] = {0};
  int nmade = 0;
  frame *f = NULL;
  if (!st && nargs > 256)
    st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "interpret: more than 256 arguments");
  for (; !st && nmade < nargs; nmade++) {
    relay_tensor a = args[nmade];
    a.nbytes = (size_t)tensor_bytes(a.dtype, a.ndim, a.shape);
    if (!(argv[nmade] = value_borrow(&I, &a))) st = KILN_ERR_NOMEM;
  }
  if (!st) st = check_args(&I, func, g, argv);
  if (!st) {
    const layout *lay = get_layout(&I, g, g->body);
    if (!lay || !(f = frame_new(&I, lay))) st = ctx->code ? ctx->code : KILN_ERR_NOMEM;
  }
  if (!st) {
    for (int i = 0; i < nargs; i++) bind_var(f, g->params[i], argv[i]);
    st = eval_frame(&I, f, out);
  }
  for (int i = 0; i < nmade; i++) relay_value_release(ctx, argv[i]);
  frame_free(&I, f);
  interp_free(&I);
  return st;
}

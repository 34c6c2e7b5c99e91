/* manager.c: the pass manager. It holds the list of passes and the default pipeline (one
 * static array: the order is the documentation), runs passes under a pass context with its
 * instruments (timing, IR dump after a change, the verifier between passes), and provides
 * the helpers every pass shares: child iteration, topological order, bottom-up mutation,
 * per-function rewriting. The verifier (relay well-formedness) lives here too. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "relay/pass.h"
#include "relay/text.h"

/* Every pass, for lookups by name. */
static const relay_pass *const all_passes[] = {
    &relay_pass_infer_type,    &relay_pass_simplify_inference,
    &relay_pass_fold_constant, &relay_pass_fold_scale_axis,
    &relay_pass_cse,           &relay_pass_dce,
    &relay_pass_fuse_ops,      &relay_pass_bind_shapes,
    &relay_pass_alter_conv_layout, &relay_pass_alter_dense_layout,
};

/* The default pipeline, in order. */
static const relay_pass *const default_pipeline[] = {
    &relay_pass_infer_type,         /* every expression gets a type; let vars annotated */
    &relay_pass_simplify_inference, /* batch_norm -> multiply/add; dropout -> its input */
    &relay_pass_fold_constant,      /* subgraphs of constants -> constants */
    &relay_pass_fold_scale_axis,    /* per-channel multiply after conv2d/dense -> weights */
    &relay_pass_cse,                /* equal calls of the same inputs -> one call */
    &relay_pass_dce,                /* unused let bindings and functions go */
    &relay_pass_fuse_ops,           /* op calls grouped into primitive functions */
};

enum {
  NPASSES = sizeof all_passes / sizeof all_passes[0],
  NDEFAULT = sizeof default_pipeline / sizeof default_pipeline[0]
};

int relay_pass_count(void) { return NPASSES; }

const relay_pass *relay_pass_at(int i) { return i >= 0 && i < NPASSES ? all_passes[i] : NULL; }

const relay_pass *relay_pass_lookup(const char *name) {
  for (int i = 0; name && i < NPASSES; i++)
    if (strcmp(all_passes[i]->name, name) == 0) return all_passes[i];
  return NULL;
}

int relay_default_pipeline(const relay_pass *const **passes) {
  *passes = default_pipeline;
  return NDEFAULT;
}

void relay_pass_ctx_init(relay_pass_ctx *pc) {
  memset(pc, 0, sizeof *pc);
  pc->opt_level = 3;
  pc->verify = true;
  pc->fuse_max_depth = RELAY_FUSE_MAX_DEPTH;
}

/* ---- Helpers for passes ------------------------------------------------------------------ */

int relay_expr_child_count(const relay_expr *e) {
  switch (e ? e->kind : -1) {
  case RELAY_CALL: {
    const relay_call *c = (const relay_call *)e;
    return (c->fn ? 1 : 0) + c->nargs;
  }
  case RELAY_TUPLE: return ((const relay_tuple *)e)->nfields;
  case RELAY_PROJ: return 1;
  case RELAY_LET: return 2;
  case RELAY_FUNC: return 1;
  case RELAY_IF: return 3;
  default: return 0;
  }
}

relay_expr *relay_expr_child(const relay_expr *e, int i) {
  switch (e->kind) {
  case RELAY_CALL: {
    const relay_call *c = (const relay_call *)e;
    if (c->fn) return i == 0 ? c->fn : c->args[i - 1];
    return c->args[i];
  }
  case RELAY_TUPLE: return ((const relay_tuple *)e)->fields[i];
  case RELAY_PROJ: return ((const relay_proj *)e)->tuple;
  case RELAY_LET: return i == 0 ? ((const relay_let *)e)->value : ((const relay_let *)e)->body;
  case RELAY_FUNC: return ((const relay_func *)e)->body;
  case RELAY_IF: {
    const relay_if *x = (const relay_if *)e;
    return i == 0 ? x->cond : i == 1 ? x->then_branch : x->else_branch;
  }
  default: return NULL;
  }
}

/* An iterative depth-first walk (graphs may be thousands of nodes deep). */
typedef struct walk_item {
  relay_expr *e;
  int next; /* the next child to look at */
} walk_item;

kiln_status relay_post_order(kiln_context *ctx, relay_expr *root, bool enter_funcs,
                             relay_expr ***order, int *n) {
  *order = NULL;
  *n = 0;
  ir_ptrmap seen;
  ir_ptrmap_init(&seen, ctx);
  walk_item *stack = NULL;
  relay_expr **out = NULL;
  int nstack = 0, cap_stack = 0, nout = 0, cap_out = 0;
  kiln_status st = ir_ptrmap_put(&seen, root, (void *)1);
  if (!st) {
    if (!(stack = ir_malloc(ctx, sizeof *stack * 64))) st = KILN_ERR_NOMEM;
    cap_stack = 64;
    if (stack) stack[nstack++] = (walk_item){root, 0};
  }
  while (!st && nstack) {
    walk_item *top = &stack[nstack - 1];
    int count = top->e->kind == RELAY_FUNC && !enter_funcs ? 0 : relay_expr_child_count(top->e);
    if (top->next < count) {
      relay_expr *k = relay_expr_child(top->e, top->next++);
      if (ir_ptrmap_get(&seen, k)) continue;
      if ((st = ir_ptrmap_put(&seen, k, (void *)1)) != KILN_OK) break;
      if (nstack == cap_stack) {
        walk_item *s = ir_realloc(ctx, stack, sizeof *s * (size_t)cap_stack,
                                  sizeof *s * (size_t)cap_stack * 2);
        if (!s) {
          st = KILN_ERR_NOMEM;
          break;
        }
        stack = s;
        cap_stack *= 2;
      }
      stack[nstack++] = (walk_item){k, 0};
      continue;
    }
    if (nout == cap_out) {
      int cap = cap_out ? cap_out * 2 : 64;
      relay_expr **o = ir_realloc(ctx, out, sizeof *o * (size_t)cap_out, sizeof *o * (size_t)cap);
      if (!o) {
        st = KILN_ERR_NOMEM;
        break;
      }
      out = o;
      cap_out = cap;
    }
    out[nout++] = top->e;
    nstack--;
  }
  ir_ptrmap_free(&seen);
  ir_free(ctx, stack, sizeof *stack * (size_t)cap_stack);
  if (st) {
    ir_free(ctx, out, sizeof *out * (size_t)cap_out);
    return st;
  }
  /* Hand out an array of exactly n entries (the caller frees n entries). */
  if (nout != cap_out) {
    relay_expr **o = ir_realloc(ctx, out, sizeof *o * (size_t)cap_out, sizeof *o * (size_t)nout);
    if (!o && nout) {
      ir_free(ctx, out, sizeof *out * (size_t)cap_out);
      return KILN_ERR_NOMEM;
    }
    out = o;
  }
  *order = out;
  *n = nout;
  return KILN_OK;
}

ir_node *relay_mutate_bottom_up(ir_mutator *mu, relay_expr *root, relay_let_hook at_let_body) {
  kiln_context *ctx = mu->arena->ctx;
  ir_ptrmap seen;
  ir_ptrmap_init(&seen, ctx);
  int nstack = 0, cap = 64;
  walk_item *stack = ir_malloc(ctx, sizeof *stack * (size_t)cap);
  kiln_status st = stack ? ir_ptrmap_put(&seen, root, (void *)1) : KILN_ERR_NOMEM;
  if (!st) stack[nstack++] = (walk_item){root, 0};
  while (!st && nstack) {
    walk_item *top = &stack[nstack - 1];
    relay_expr *e = top->e;
    bool primitive = e->kind == RELAY_FUNC && relay_func_is_primitive((relay_func *)e);
    int count = primitive ? 0 : relay_expr_child_count(e);
    /* a let whose value is done (child 0 finished): prepare its body before entering it */
    if (e->kind == RELAY_LET && top->next == 1 && at_let_body &&
        (st = at_let_body(mu, (relay_let *)e)) != KILN_OK)
      break;
    if (top->next < count) {
      relay_expr *k = relay_expr_child(e, top->next++);
      if (ir_ptrmap_get(&seen, k)) continue; /* in a DAG: already rewritten */
      if ((st = ir_ptrmap_put(&seen, k, (void *)1)) != KILN_OK) break;
      if (nstack == cap) {
        walk_item *s = ir_realloc(ctx, stack, sizeof *s * (size_t)cap, sizeof *s * (size_t)cap * 2);
        if (!s) {
          st = KILN_ERR_NOMEM;
          break;
        }
        stack = s;
        cap *= 2;
      }
      stack[nstack++] = (walk_item){k, 0};
      continue;
    }
    nstack--;
    if (!ir_mutate(mu, e)) st = relay_pass_error(ctx, "a pass");
  }
  ir_ptrmap_free(&seen);
  ir_free(ctx, stack, sizeof *stack * (size_t)cap);
  return st ? NULL : ir_mutate(mu, root);
}

relay_func *relay_mutate_func(relay_module *m, relay_func *f,
                              ir_node *(*visit)(ir_mutator *mu, ir_node *n), void *ud,
                              relay_let_hook at_let_body) {
  ir_ptrmap memo;
  ir_ptrmap_init(&memo, m->ctx);
  ir_mutator mu = {m->arena, visit, ud, &memo, true};
  ir_node *r = relay_mutate_bottom_up(&mu, &f->h, at_let_body);
  ir_ptrmap_free(&memo);
  return (relay_func *)r;
}

kiln_status relay_pass_error(kiln_context *ctx, const char *pass) {
  if (ctx->code) return ctx->code;
  return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "%s failed without an error message", pass);
}

kiln_status relay_rewrite_funcs(relay_pass_ctx *pc, relay_module *m, const char *pass,
                                relay_func_rewrite fn, void *ud) {
  if (!m->nfuncs) return KILN_OK;
  relay_func **out = ir_arena_alloc(m->arena, sizeof(relay_func *) * (size_t)m->nfuncs);
  if (!out) return KILN_ERR_NOMEM;
  for (int i = 0; i < m->nfuncs; i++) {
    ir_span saved = m->arena->span;
    out[i] = fn(pc, m, m->funcs[i], ud);
    m->arena->span = saved;
    if (!out[i] || out[i]->h.kind != RELAY_FUNC) return relay_pass_error(m->ctx, pass);
  }
  m->funcs = out; /* the old table stays valid in the arena */
  return KILN_OK;
}

relay_expr *relay_scalar_const(ir_arena *a, kiln_dtype t, double v) {
  unsigned char buf[16] = {0};
  relay_tensor x = {t, 0, {0}, buf, sizeof buf, false};
  size_t esize = kiln_dtype_bytes(t);
  if (esize == 0 || esize > sizeof buf) {
    ir_fail(a->ctx, a->span, KILN_ERR_TYPE, "a scalar constant needs a scalar element type");
    return NULL;
  }
  relay_tensor_set(&x, 0, v);
  return relay_const_new(a, relay_tensor_type_new(a, t, 0, NULL), buf, (int64_t)esize);
}

/* ---- The verifier ---------------------------------------------------------------------- */

/* A set of variables (the free variables of a node). */
typedef struct varset {
  int32_t n;
  relay_var **v;
} varset;

typedef struct verifier {
  kiln_context *ctx;
  const relay_module *m;
  const char *fname;
  ir_arena *scratch;
  ir_ptrmap sets; /* node -> varset */
  ir_ptrmap defs; /* var -> the node that binds it (let or function) */
  ir_ptrmap mark; /* var -> stamp, for unions without duplicates */
  uintptr_t stamp;
} verifier;

static kiln_status vfail(verifier *V, const ir_node *n, kiln_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static kiln_status vfail(verifier *V, const ir_node *n, kiln_status code, const char *fmt, ...) {
  char msg[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ir_fail(V->ctx, n ? n->span : IR_NO_SPAN, code, "verify @%s: %s", V->fname, msg);
}

static const varset empty_set = {0, NULL};

static const varset *set_of(verifier *V, const ir_node *n) {
  const varset *s = ir_ptrmap_get(&V->sets, n);
  return s ? s : &empty_set;
}

/* The union of the free-variable sets of n's children, less `minus` (nminus variables). */
static kiln_status union_sets(verifier *V, const relay_expr *n, int nminus, relay_var *const *minus,
                              varset **out) {
  int count = relay_expr_child_count(n), total = 0;
  for (int i = 0; i < count; i++) total += set_of(V, relay_expr_child(n, i))->n;
  *out = NULL;
  if (!total) return KILN_OK;
  /* One child and nothing taken away: share the child's set. */
  if (count == 1 && !nminus) {
    *out = (varset *)set_of(V, relay_expr_child(n, 0));
    return KILN_OK;
  }
  varset *s = ir_arena_alloc(V->scratch, sizeof *s);
  if (!s || !(s->v = ir_arena_alloc(V->scratch, sizeof(relay_var *) * (size_t)total)))
    return KILN_ERR_NOMEM;
  void *stamp = (void *)++V->stamp;
  for (int i = 0; i < nminus; i++)
    if (ir_ptrmap_put(&V->mark, minus[i], stamp)) return KILN_ERR_NOMEM;
  for (int i = 0; i < count; i++) {
    const varset *c = set_of(V, relay_expr_child(n, i));
    for (int j = 0; j < c->n; j++) {
      if (ir_ptrmap_get(&V->mark, c->v[j]) == stamp) continue;
      if (ir_ptrmap_put(&V->mark, c->v[j], stamp)) return KILN_ERR_NOMEM;
      s->v[s->n++] = c->v[j];
    }
  }
  *out = s;
  return KILN_OK;
}

/* Records that binder defines v; a variable bound in two places is an error. */
static kiln_status define(verifier *V, const relay_var *v, const ir_node *binder) {
  const ir_node *prev = ir_ptrmap_get(&V->defs, v);
  if (prev && prev != binder)
    return vfail(V, binder, KILN_ERR_TYPE, "variable %%%s is defined twice", v->name);
  if (!v->type)
    return vfail(V, &v->h, KILN_ERR_TYPE, "variable %%%s has no type (run InferType)", v->name);
  return ir_ptrmap_put(&V->defs, v, (void *)binder);
}

static void describe(const ir_node *n, char *buf, size_t size) {
  if (n->kind == RELAY_CALL && ((const relay_call *)n)->op)
    snprintf(buf, size, "the call of %s", ((const relay_call *)n)->op);
  else if (n->kind == RELAY_CALL)
    snprintf(buf, size, "a function call");
  else if (n->kind == RELAY_VAR)
    snprintf(buf, size, "variable %%%s", ((const relay_var *)n)->name);
  else if (n->kind == RELAY_GLOBAL)
    snprintf(buf, size, "@%s", ((const relay_global *)n)->name);
  else
    snprintf(buf, size, "a %s", ir_kind_name(n->kind));
}

static kiln_status verify_node(verifier *V, relay_expr *n) {
  char what[96];
  if (!relay_type_of(n)) {
    describe(n, what, sizeof what);
    return vfail(V, n, KILN_ERR_TYPE, "%s has no type (run InferType)", what);
  }
  varset *s = NULL;
  switch (n->kind) {
  case RELAY_VAR:
    if (!(s = ir_arena_alloc(V->scratch, sizeof *s)) ||
        !(s->v = ir_arena_alloc(V->scratch, sizeof(relay_var *))))
      return KILN_ERR_NOMEM;
    s->n = 1;
    s->v[0] = (relay_var *)n;
    break;
  case RELAY_GLOBAL:
    if (!relay_module_get(V->m, ((const relay_global *)n)->name))
      return vfail(V, n, KILN_ERR_UNDEFINED, "@%s is not a function of the module",
                   ((const relay_global *)n)->name);
    break;
  case RELAY_LET: {
    relay_let *l = (relay_let *)n;
    if (define(V, l->var, n)) return V->ctx->code;
    /* fv(value) + (fv(body) - var): the var is in scope in the body only */
    const varset *vs = set_of(V, l->value);
    for (int i = 0; i < vs->n; i++)
      if (vs->v[i] == l->var)
        return vfail(V, n, KILN_ERR_UNDEFINED, "variable %%%s is used in its own definition",
                     l->var->name);
    if (union_sets(V, n, 1, &l->var, &s)) return KILN_ERR_NOMEM;
    break;
  }
  case RELAY_FUNC: {
    relay_func *f = (relay_func *)n;
    for (int i = 0; i < f->nparams; i++)
      if (define(V, f->params[i], n)) return V->ctx->code;
    if (union_sets(V, n, f->nparams, f->params, &s)) return KILN_ERR_NOMEM;
    if (s && s->n && relay_func_is_primitive(f))
      return vfail(V, n, KILN_ERR_UNDEFINED, "a primitive function uses %%%s from outside",
                   s->v[0]->name);
    break;
  }
  default:
    if (union_sets(V, n, 0, NULL, &s)) return KILN_ERR_NOMEM;
    break;
  }
  return s ? ir_ptrmap_put(&V->sets, n, s) : KILN_OK;
}

static kiln_status verify_func(verifier *V, const char *name, relay_func *f) {
  V->fname = name;
  if (!f || f->h.kind != RELAY_FUNC) return vfail(V, NULL, KILN_ERR_TYPE, "not a function");
  relay_expr **order;
  int n;
  kiln_status st = relay_post_order(V->ctx, &f->h, true, &order, &n);
  for (int i = 0; !st && i < n; i++)
    if ((st = verify_node(V, order[i])) == KILN_ERR_NOMEM && !V->ctx->code)
      st = ir_fail(V->ctx, IR_NO_SPAN, st, "out of memory");
  ir_free(V->ctx, order, sizeof *order * (size_t)n);
  if (st) return st;
  const varset *free_vars = set_of(V, &f->h);
  if (free_vars->n) {
    const relay_var *v = free_vars->v[0];
    if (ir_ptrmap_get(&V->defs, v))
      return vfail(V, &v->h, KILN_ERR_UNDEFINED,
                   "variable %%%s is used outside the scope of its definition", v->name);
    return vfail(V, &v->h, KILN_ERR_UNDEFINED, "variable %%%s is used but never defined", v->name);
  }
  return KILN_OK;
}

kiln_status relay_verify_module(const relay_module *m) {
  if (!m) return KILN_ERR_MISUSE;
  verifier V;
  memset(&V, 0, sizeof V);
  V.ctx = m->ctx;
  V.m = m;
  if (!(V.scratch = ir_arena_new(m->ctx))) return KILN_ERR_NOMEM;
  ir_ptrmap_init(&V.sets, m->ctx);
  ir_ptrmap_init(&V.defs, m->ctx);
  ir_ptrmap_init(&V.mark, m->ctx);
  kiln_status st = KILN_OK;
  for (int i = 0; !st && i < m->nfuncs; i++) st = verify_func(&V, m->names[i], m->funcs[i]);
  ir_ptrmap_free(&V.sets);
  ir_ptrmap_free(&V.defs);
  ir_ptrmap_free(&V.mark);
  ir_arena_free(V.scratch);
  return st;
}

/* ---- Running passes ---------------------------------------------------------------------- */

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void record(relay_pass_ctx *pc, relay_pass_record r) {
  if (pc->nrecords < RELAY_MAX_PASS_RECORDS) pc->records[pc->nrecords++] = r;
}

/* Whether the function table differs from the snapshot (names and function nodes). */
static bool module_changed(const relay_module *m, int n, const char *const *names,
                           relay_func *const *funcs) {
  if (m->nfuncs != n) return true;
  for (int i = 0; i < n; i++)
    if (m->funcs[i] != funcs[i] || strcmp(m->names[i], names[i]) != 0) return true;
  return false;
}

static kiln_status run_one(relay_pass_ctx *pc, relay_module *m, const relay_pass *p) {
  relay_pass_record r = {p->name, 0, false, false};
  if (p->opt_level > pc->opt_level) {
    r.skipped = true;
    record(pc, r);
    return KILN_OK;
  }
  kiln_context *ctx = m->ctx;
  int n = m->nfuncs;
  size_t bytes = sizeof(void *) * (size_t)(n ? n : 1);
  const char **names = ir_malloc(ctx, bytes);
  relay_func **funcs = ir_malloc(ctx, bytes);
  if (!names || !funcs) {
    ir_free(ctx, names, bytes);
    ir_free(ctx, funcs, bytes);
    return KILN_ERR_NOMEM;
  }
  if (n) {
    memcpy(names, m->names, sizeof(char *) * (size_t)n);
    memcpy(funcs, m->funcs, sizeof(relay_func *) * (size_t)n);
  }
  double t0 = now_seconds();
  ir_clear_error(ctx);
  kiln_status st = p->run(pc, m);
  r.seconds = now_seconds() - t0;
  if (!st) r.changed = module_changed(m, n, names, funcs);
  ir_free(ctx, names, bytes);
  ir_free(ctx, funcs, bytes);
  if (st) return st;
  record(pc, r);
  if (pc->verify && (st = relay_verify_module(m)) != KILN_OK) {
    char msg[sizeof ctx->errmsg];
    snprintf(msg, sizeof msg, "%s", ctx->errmsg);
    return ir_fail(ctx, IR_NO_SPAN, st, "after %s: %s", p->name, msg);
  }
  if (r.changed && pc->dump) pc->dump(pc->dump_ud, p->name, m);
  return KILN_OK;
}

kiln_status relay_run_passes(relay_pass_ctx *pc, relay_module *m, int n,
                             const relay_pass *const *passes) {
  if (!pc || !m || n < 0 || (n && !passes)) return KILN_ERR_MISUSE;
  for (int i = 0; i < n; i++) {
    if (!passes[i])
      return ir_fail(m->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "pass %d of the list is NULL", i);
    kiln_status st = run_one(pc, m, passes[i]);
    if (st) return st;
  }
  return KILN_OK;
}

kiln_status relay_run_default_pipeline(relay_pass_ctx *pc, relay_module *m) {
  return relay_run_passes(pc, m, NDEFAULT, default_pipeline);
}

void relay_dump_to_file(void *file, const char *pass, const relay_module *m) {
  ir_strbuf sb;
  ir_sb_init(&sb, m->ctx);
  if (relay_print_module_opts(m, &sb, 16) == KILN_OK && sb.data)
    fprintf((FILE *)file, "# after %s:\n%s\n", pass, sb.data);
  else
    fprintf((FILE *)file, "# after %s: (the module could not be printed)\n", pass);
  ir_sb_free(&sb);
}

void relay_pass_report(const relay_pass_ctx *pc, ir_strbuf *sb) {
  double total = 0;
  ir_sb_printf(sb, "%-24s %10s  %s\n", "pass", "ms", "changed");
  for (int i = 0; i < pc->nrecords; i++) {
    const relay_pass_record *r = &pc->records[i];
    total += r->seconds;
    if (r->skipped)
      ir_sb_printf(sb, "%-24s %10s  (skipped: opt level)\n", r->name, "-");
    else
      ir_sb_printf(sb, "%-24s %10.3f  %s\n", r->name, r->seconds * 1e3, r->changed ? "yes" : "no");
  }
  ir_sb_printf(sb, "%-24s %10.3f\n", "total", total * 1e3);
}

/* ---- Single passes with default options --------------------------------------------------- */

kiln_status relay_infer_type(relay_module *m) {
  if (!m) return KILN_ERR_MISUSE;
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  ir_clear_error(m->ctx);
  return relay_pass_infer_type.run(&pc, m);
}

kiln_status relay_fuse_ops(relay_module *m, int max_depth) {
  if (!m) return KILN_ERR_MISUSE;
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  if (max_depth > 0) pc.fuse_max_depth = max_depth;
  ir_clear_error(m->ctx);
  return relay_pass_fuse_ops.run(&pc, m);
}

kiln_status relay_bind_shapes(relay_module *m, int n, const char *const *names,
                              const int64_t *values) {
  if (!m || n < 0 || (n && (!names || !values))) return KILN_ERR_MISUSE;
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  pc.nbinds = n;
  pc.bind_names = names;
  pc.bind_values = values;
  ir_clear_error(m->ctx);
  return relay_pass_bind_shapes.run(&pc, m);
}

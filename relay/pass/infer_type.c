/* infer_type.c: InferType. Constructors type nodes eagerly, so what is left for this pass is
 * what they cannot know: the type of a let variable written without annotation (it gets its
 * value's type: a new, annotated variable replaces it everywhere), the types of globals (a
 * reference @f gets f's function type; functions are inferred callee first, and a recursive
 * function needs a result annotation) and everything built on those (the mutator rebuilds
 * and so re-infers every node above a change). Function parameters must be annotated. */
#include <stdio.h>
#include <string.h>

#include "relay/pass.h"

typedef struct infer_state {
  relay_module *m;
  relay_func **done; /* per function: its inferred version, once finished */
  bool *busy;        /* per function: being inferred (a call back to it is recursion) */
} infer_state;

typedef struct infer_visit {
  infer_state *S;
  const char *fname;
} infer_visit;

static relay_func *infer_func(infer_state *S, int i);

static int func_index(const relay_module *m, const char *name) {
  for (int i = 0; i < m->nfuncs; i++)
    if (strcmp(m->names[i], name) == 0) return i;
  return -1;
}

/* The type of a global: its function's inferred type, or for a function still being
 * inferred (recursion) the type its annotations give. */
static relay_type *global_type(ir_mutator *mu, const relay_global *g) {
  infer_visit *iv = mu->ud;
  infer_state *S = iv->S;
  kiln_context *ctx = mu->arena->ctx;
  int j = func_index(S->m, g->name);
  if (j < 0) {
    ir_fail(ctx, g->h.span, KILN_ERR_UNDEFINED,
            "InferType @%s: @%s is not a function of the module", iv->fname, g->name);
    return NULL;
  }
  if (!S->busy[j]) {
    relay_func *f = infer_func(S, j);
    return f ? f->type : NULL;
  }
  relay_func *f = S->m->funcs[j];
  relay_type *params[256];
  bool annotated = f->ret_type && f->nparams <= 256;
  for (int i = 0; annotated && i < f->nparams; i++)
    annotated = (params[i] = f->params[i]->type) != NULL;
  if (!annotated) {
    ir_fail(ctx, g->h.span, KILN_ERR_TYPE,
            "InferType: @%s is recursive; give it a result type annotation (and annotate its "
            "parameters)",
            g->name);
    return NULL;
  }
  return relay_func_type_new(mu->arena, f->nparams, params, f->ret_type);
}

/* A let variable written without a type: a new, annotated variable with its value's type
 * replaces it (the memo maps the old one to it, so every use becomes the new one). Runs
 * before the let's body is rewritten. */
static kiln_status let_var(ir_mutator *mu, relay_let *l) {
  infer_visit *iv = mu->ud;
  kiln_context *ctx = mu->arena->ctx;
  ir_node *value = ir_mutate(mu, l->value);
  if (!value) return relay_pass_error(ctx, "InferType");
  if (l->var->type || ir_ptrmap_get(mu->memo, l->var)) return KILN_OK;
  relay_type *t = relay_type_of(value);
  if (!t)
    return ir_fail(ctx, l->h.span, KILN_ERR_TYPE,
                   "InferType @%s: cannot infer the type of let %%%s's value", iv->fname,
                   l->var->name);
  relay_var *v = relay_var_new(mu->arena, l->var->name, t);
  if (!v) return relay_pass_error(ctx, "InferType");
  return ir_ptrmap_put(mu->memo, l->var, v);
}

static ir_node *visit(ir_mutator *mu, ir_node *n) {
  infer_visit *iv = mu->ud;
  kiln_context *ctx = mu->arena->ctx;
  if (!relay_is_expr(n)) return n; /* types, attributes and dimensions need nothing */
  switch (n->kind) {
  case RELAY_LET:
    if (let_var(mu, (relay_let *)n)) return NULL;
    return ir_mutate_children(mu, n);
  case RELAY_FUNC: {
    relay_func *f = (relay_func *)n;
    for (int i = 0; i < f->nparams; i++)
      if (!f->params[i]->type) {
        ir_fail(ctx, f->params[i]->h.span, KILN_ERR_TYPE,
                "InferType @%s: parameter %%%s needs a type annotation", iv->fname,
                f->params[i]->name);
        return NULL;
      }
    return ir_mutate_children(mu, n);
  }
  case RELAY_GLOBAL: {
    relay_global *g = (relay_global *)n;
    relay_type *t = global_type(mu, g);
    if (!t) return NULL;
    if (g->type && relay_type_equal(mu->arena, g->type, t)) return n;
    return relay_global_new(mu->arena, g->name, t);
  }
  default: return ir_mutate_children(mu, n);
  }
}

/* An expression of f that still has no type, for the message (NULL if none). */
static kiln_status check_typed(kiln_context *ctx, const char *fname, relay_func *f) {
  relay_expr **order;
  int n;
  kiln_status st = relay_post_order(ctx, &f->h, true, &order, &n);
  if (st) return st;
  for (int i = 0; i < n && !st; i++) {
    relay_expr *e = order[i];
    if (relay_type_of(e)) continue;
    if (e->kind == RELAY_CALL && ((relay_call *)e)->op)
      st = ir_fail(ctx, e->span, KILN_ERR_TYPE,
                   "InferType @%s: cannot infer the type of the call of %s", fname,
                   ((relay_call *)e)->op);
    else if (e->kind == RELAY_VAR)
      st = ir_fail(ctx, e->span, KILN_ERR_TYPE, "InferType @%s: variable %%%s has no type", fname,
                   ((relay_var *)e)->name);
    else
      st = ir_fail(ctx, e->span, KILN_ERR_TYPE, "InferType @%s: cannot infer the type of a %s",
                   fname, ir_kind_name(e->kind));
  }
  ir_free(ctx, order, sizeof *order * (size_t)n);
  return st;
}

static relay_func *infer_func(infer_state *S, int i) {
  if (S->done[i]) return S->done[i];
  relay_module *m = S->m;
  ir_ptrmap memo;
  ir_ptrmap_init(&memo, m->ctx);
  infer_visit iv = {S, m->names[i]};
  ir_mutator mu = {m->arena, visit, &iv, &memo, true};
  S->busy[i] = true;
  ir_node *r = relay_mutate_bottom_up(&mu, &m->funcs[i]->h, let_var);
  S->busy[i] = false;
  ir_ptrmap_free(&memo);
  if (!r) return NULL;
  if (check_typed(m->ctx, m->names[i], (relay_func *)r)) return NULL;
  return S->done[i] = (relay_func *)r;
}

static relay_func *rewrite(relay_pass_ctx *pc, relay_module *m, relay_func *f, void *ud) {
  (void)pc;
  infer_state *S = ud;
  for (int i = 0; i < m->nfuncs; i++)
    if (m->funcs[i] == f) return infer_func(S, i);
  return NULL;
}

static kiln_status run(relay_pass_ctx *pc, relay_module *m) {
  size_t nb = sizeof(relay_func *) * (size_t)(m->nfuncs ? m->nfuncs : 1);
  size_t bb = sizeof(bool) * (size_t)(m->nfuncs ? m->nfuncs : 1);
  infer_state S = {m, ir_malloc(m->ctx, nb), ir_malloc(m->ctx, bb)};
  kiln_status st = KILN_ERR_NOMEM;
  if (S.done && S.busy) {
    memset(S.done, 0, nb);
    memset(S.busy, 0, bb);
    st = relay_rewrite_funcs(pc, m, "InferType", rewrite, &S);
  }
  ir_free(m->ctx, S.done, nb);
  ir_free(m->ctx, S.busy, bb);
  return st;
}

const relay_pass relay_pass_infer_type = {"InferType", 0, run,
                                          "gives every expression a type (let variables, globals)"};

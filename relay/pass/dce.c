/* dce.c: DeadCodeElimination. A let whose variable is not used is replaced by its body (all
 * ops are pure), repeatedly, since dropping one binding can leave the bindings it used
 * unused; the nodes only a dropped value reached simply become unreachable. When the module
 * has a "main", functions that "main" does not reach through globals are removed; a module
 * without "main" keeps every function. */
#include <string.h>

#include "relay/pass.h"

/* Marks every variable used (not just defined) in the graph reachable from f. */
static kiln_status mark_used(kiln_context *ctx, relay_func *f, ir_ptrmap *used) {
  relay_expr **order;
  int n;
  kiln_status st = relay_post_order(ctx, &f->h, true, &order, &n);
  for (int i = 0; !st && i < n; i++)
    if (order[i]->kind == RELAY_VAR) st = ir_ptrmap_put(used, order[i], (void *)1);
  ir_free(ctx, order, sizeof *order * (size_t)n);
  return st;
}

static ir_node *visit(ir_mutator *mu, ir_node *n) {
  const ir_ptrmap *used = mu->ud;
  if (!relay_is_expr(n)) return n;
  if (n->kind == RELAY_FUNC && relay_func_is_primitive((relay_func *)n)) return n;
  if (n->kind == RELAY_LET && !ir_ptrmap_get(used, ((relay_let *)n)->var))
    return ir_mutate(mu, ((relay_let *)n)->body);
  return ir_mutate_children(mu, n);
}

/* Drops unused lets until none is left. */
static relay_func *rewrite(relay_pass_ctx *pc, relay_module *m, relay_func *f, void *ud) {
  (void)pc;
  (void)ud;
  for (;;) {
    ir_ptrmap used, memo;
    ir_ptrmap_init(&used, m->ctx);
    ir_ptrmap_init(&memo, m->ctx);
    ir_node *r = NULL;
    if (!mark_used(m->ctx, f, &used)) {
      ir_mutator mu = {m->arena, visit, &used, &memo, true};
      r = relay_mutate_bottom_up(&mu, &f->h, NULL);
    }
    ir_ptrmap_free(&used);
    ir_ptrmap_free(&memo);
    if (!r || r == &f->h) return (relay_func *)r;
    f = (relay_func *)r;
  }
}

/* Marks the functions "main" reaches through globals (keep[i] for function i). */
static kiln_status reachable(relay_module *m, int main_index, bool *keep) {
  int *stack = ir_malloc(m->ctx, sizeof(int) * (size_t)m->nfuncs);
  if (!stack) return KILN_ERR_NOMEM;
  int nstack = 0;
  kiln_status st = KILN_OK;
  keep[main_index] = true;
  stack[nstack++] = main_index;
  while (!st && nstack) {
    relay_func *f = m->funcs[stack[--nstack]];
    relay_expr **order;
    int n;
    if ((st = relay_post_order(m->ctx, &f->h, true, &order, &n)) != KILN_OK) break;
    for (int i = 0; i < n; i++) {
      if (order[i]->kind != RELAY_GLOBAL) continue;
      const char *name = ((relay_global *)order[i])->name;
      for (int j = 0; j < m->nfuncs; j++)
        if (!keep[j] && strcmp(m->names[j], name) == 0) {
          keep[j] = true;
          stack[nstack++] = j;
        }
    }
    ir_free(m->ctx, order, sizeof *order * (size_t)n);
  }
  ir_free(m->ctx, stack, sizeof(int) * (size_t)m->nfuncs);
  return st;
}

static kiln_status drop_unreachable(relay_module *m) {
  int main_index = -1;
  for (int i = 0; i < m->nfuncs; i++)
    if (strcmp(m->names[i], "main") == 0) main_index = i;
  if (main_index < 0) return KILN_OK;
  bool *keep = ir_malloc(m->ctx, sizeof(bool) * (size_t)m->nfuncs);
  if (!keep) return KILN_ERR_NOMEM;
  memset(keep, 0, sizeof(bool) * (size_t)m->nfuncs);
  kiln_status st = reachable(m, main_index, keep);
  int nkeep = 0;
  for (int i = 0; i < m->nfuncs; i++) nkeep += keep[i];
  if (!st && nkeep < m->nfuncs) {
    const char **names = ir_arena_alloc(m->arena, sizeof(char *) * (size_t)nkeep);
    relay_func **funcs = ir_arena_alloc(m->arena, sizeof(relay_func *) * (size_t)nkeep);
    if (!names || !funcs) st = KILN_ERR_NOMEM;
    for (int i = 0, j = 0; !st && i < m->nfuncs; i++)
      if (keep[i]) {
        names[j] = m->names[i];
        funcs[j++] = m->funcs[i];
      }
    if (!st) {
      m->names = names;
      m->funcs = funcs;
      m->nfuncs = nkeep;
    }
  }
  ir_free(m->ctx, keep, sizeof(bool) * (size_t)m->nfuncs);
  return st;
}

/* Rewrites the functions and drops the unreachable ones in a view of the module; the module
 * takes the result only when both succeeded. */
static kiln_status run(relay_pass_ctx *pc, relay_module *m) {
  relay_module view = *m;
  kiln_status st = relay_rewrite_funcs(pc, &view, "DeadCodeElimination", rewrite, NULL);
  if (!st) st = drop_unreachable(&view);
  if (!st) {
    m->names = view.names;
    m->funcs = view.funcs;
    m->nfuncs = view.nfuncs;
  }
  return st;
}

const relay_pass relay_pass_dce = {"DeadCodeElimination", 1, run,
                                   "removes unused let bindings and functions main does not call"};

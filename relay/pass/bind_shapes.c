/* bind_shapes.c: BindShapes (bucket binding). Given values for symbolic dimensions (name ->
 * int64, from the pass context), every type of the module has those dimensions replaced by
 * the constants and its dimension expressions simplified; the mutator rebuilds every node
 * whose type changed, so eager typing re-infers the graph with the concrete shapes. The
 * result is a module specialized for one bucket (say batch 4). Naming a dimension the module
 * does not have is an error, and so is a negative value. */
#include <string.h>

#include "ir/arith.h"
#include "relay/pass.h"

typedef struct binder {
  int n;
  ir_var **vars;
  ir_expr **values;
  ir_analyzer *an;
} binder;

static ir_node *visit(ir_mutator *mu, ir_node *n) {
  binder *B = mu->ud;
  if (n->kind == IR_VAR) {
    for (int i = 0; i < B->n; i++)
      if (&B->vars[i]->h == n) return B->values[i];
    return n;
  }
  ir_node *r = ir_mutate_children(mu, n);
  /* a dimension expression that changed is simplified (n * 2 with n = 4 becomes 8) */
  if (r && r != n && ir_is_expr(r)) r = ir_simplify_expr(B->an, r);
  return r;
}

static relay_func *rewrite(relay_pass_ctx *pc, relay_module *m, relay_func *f, void *ud) {
  (void)pc;
  return relay_mutate_func(m, f, visit, ud, NULL);
}

static kiln_status run(relay_pass_ctx *pc, relay_module *m) {
  if (pc->nbinds <= 0) return KILN_OK;
  if (!pc->bind_names || !pc->bind_values) return KILN_ERR_MISUSE;
  size_t vb = sizeof(ir_var *) * (size_t)pc->nbinds, eb = sizeof(ir_expr *) * (size_t)pc->nbinds;
  binder B = {pc->nbinds, ir_malloc(m->ctx, vb), ir_malloc(m->ctx, eb), NULL};
  kiln_status st = B.vars && B.values ? KILN_OK : KILN_ERR_NOMEM;
  for (int i = 0; !st && i < pc->nbinds; i++) {
    const char *name = pc->bind_names[i];
    B.vars[i] = NULL;
    for (int j = 0; name && j < m->ndims; j++)
      if (strcmp(m->dims[j]->name, name) == 0) B.vars[i] = m->dims[j];
    if (!B.vars[i]) {
      ir_strbuf sb;
      ir_sb_init(&sb, m->ctx);
      for (int j = 0; j < m->ndims; j++) ir_sb_printf(&sb, "%s%s", j ? ", " : "", m->dims[j]->name);
      st = ir_fail(m->ctx, IR_NO_SPAN, KILN_ERR_UNDEFINED,
                   "BindShapes: the module has no dimension '%s' (it has: %s)",
                   name ? name : "(null)", m->ndims ? (sb.data ? sb.data : "?") : "none");
      ir_sb_free(&sb);
    } else if (pc->bind_values[i] < 0) {
      st = ir_fail(m->ctx, IR_NO_SPAN, KILN_ERR_SHAPE, "BindShapes: dimension '%s' cannot be %lld",
                   name, (long long)pc->bind_values[i]);
    } else if (!(B.values[i] = ir_int(m->arena, KILN_INT64, pc->bind_values[i]))) {
      st = KILN_ERR_NOMEM;
    }
  }
  if (!st && !(B.an = ir_analyzer_new(m->arena))) st = KILN_ERR_NOMEM;
  if (!st) st = relay_rewrite_funcs(pc, m, "BindShapes", rewrite, &B);
  ir_analyzer_free(B.an);
  ir_free(m->ctx, B.vars, vb);
  ir_free(m->ctx, B.values, eb);
  return st;
}

const relay_pass relay_pass_bind_shapes = {"BindShapes", 0, run,
                                           "replaces symbolic dimensions by given values"};

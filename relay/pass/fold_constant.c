/* fold_constant.c: FoldConstant. Bottom up, an op call whose arguments are all constants is
 * evaluated with the interpreter's reference kernels and replaced by its value (a constant,
 * or a tuple of constants for ops returning tuples). Also: a let whose value became a
 * constant is substituted into its body, a projection of a tuple literal is the field, and
 * an if with a constant condition is the branch taken. Calls of functions are not entered
 * (primitive functions stay as FuseOps made them); a call whose kernel reports a runtime
 * error (say an integer division by zero) is left for run time. */
#include <string.h>

#include "relay/interp.h"
#include "relay/pass.h"

static bool is_const(const ir_node *n) { return n && n->kind == RELAY_CONST; }

/* A type with constant dimensions only (a tensor, or a tuple of tensors). */
static bool constant_shape(const relay_type *t) {
  const relay_tuple_type *tu = relay_as_tuple_type(t);
  if (!tu) return relay_type_numel(t) >= 0;
  for (int i = 0; i < tu->nfields; i++)
    if (relay_type_numel(tu->fields[i]) < 0) return false;
  return true;
}

static relay_expr *value_to_const(ir_arena *a, const relay_type *t, const relay_value *v) {
  if (v->kind == RELAY_VALUE_TENSOR)
    return relay_const_new(a, (relay_type *)t, v->tensor.data, (int64_t)v->tensor.nbytes);
  const relay_tuple_type *tu = relay_as_tuple_type(t);
  if (v->kind != RELAY_VALUE_TUPLE || !tu || tu->nfields != v->nfields || v->nfields > 256) {
    ir_fail(a->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "FoldConstant: a value does not match its type");
    return NULL;
  }
  relay_expr *fields[256];
  for (int i = 0; i < v->nfields; i++)
    if (!(fields[i] = value_to_const(a, tu->fields[i], v->fields[i]))) return NULL;
  return relay_tuple_new(a, v->nfields, fields);
}

relay_expr *relay_fold_call(const relay_module *m, ir_arena *a, relay_expr *e) {
  relay_call *c = e && e->kind == RELAY_CALL ? (relay_call *)e : NULL;
  if (!c || !c->op || c->nargs == 0 || !constant_shape(c->type)) return e;
  for (int i = 0; i < c->nargs; i++)
    if (!is_const(c->args[i])) return e;
  relay_value *v;
  kiln_status st = relay_interp_eval(a->ctx, m, e, &v);
  if (st == KILN_ERR_RUNTIME) {
    ir_clear_error(a->ctx);
    return e;
  }
  if (st) return NULL;
  ir_span saved = a->span;
  a->span = e->span;
  relay_expr *r = value_to_const(a, c->type, v);
  a->span = saved;
  relay_value_release(a->ctx, v);
  return r;
}

/* A let whose value folded to a constant: every use of its variable becomes the constant
 * (the memo says so before the body is rewritten). */
static kiln_status let_const(ir_mutator *mu, relay_let *l) {
  ir_node *value = ir_mutate(mu, l->value);
  if (!value) return relay_pass_error(mu->arena->ctx, "FoldConstant");
  return is_const(value) ? ir_ptrmap_put(mu->memo, l->var, value) : KILN_OK;
}

static ir_node *visit(ir_mutator *mu, ir_node *n) {
  const relay_module *m = mu->ud;
  if (!relay_is_expr(n)) return n;
  switch (n->kind) {
  case RELAY_FUNC:
    if (relay_func_is_primitive((relay_func *)n)) return n;
    return ir_mutate_children(mu, n);
  case RELAY_LET: {
    relay_let *l = (relay_let *)n;
    if (let_const(mu, l)) return NULL;
    /* a constant value: the binding goes, its uses are the constant */
    if (is_const(ir_ptrmap_get(mu->memo, l->value))) return ir_mutate(mu, l->body);
    return ir_mutate_children(mu, n);
  }
  case RELAY_CALL: return relay_fold_call(m, mu->arena, ir_mutate_children(mu, n));
  case RELAY_PROJ: {
    relay_proj *p = (relay_proj *)ir_mutate_children(mu, n);
    if (!p) return NULL;
    if (p->tuple->kind == RELAY_TUPLE) return ((relay_tuple *)p->tuple)->fields[p->index];
    return &p->h;
  }
  case RELAY_IF: {
    relay_if *x = (relay_if *)n;
    ir_node *cond = ir_mutate(mu, x->cond);
    if (!cond) return NULL;
    if (!is_const(cond)) return ir_mutate_children(mu, n);
    const relay_const *c = (const relay_const *)cond;
    relay_tensor t = {c->type->dtype, 0, {0}, c->data, (size_t)c->nbytes, false};
    return ir_mutate(mu, relay_tensor_get(&t, 0) != 0 ? x->then_branch : x->else_branch);
  }
  default: return ir_mutate_children(mu, n);
  }
}

static relay_func *rewrite(relay_pass_ctx *pc, relay_module *m, relay_func *f, void *ud) {
  (void)pc;
  (void)ud;
  return relay_mutate_func(m, f, visit, m, let_const);
}

static kiln_status run(relay_pass_ctx *pc, relay_module *m) {
  return relay_rewrite_funcs(pc, m, "FoldConstant", rewrite, NULL);
}

const relay_pass relay_pass_fold_constant = {"FoldConstant", 2, run,
                                             "evaluates subgraphs of constants to constants"};

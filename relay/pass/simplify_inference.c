/* simplify_inference.c: SimplifyInference. Ops that only matter for training, or that are
 * cheaper as plain arithmetic at inference time, are rewritten:
 *   nn.batch_norm(x, gamma, beta, mean, var) ->
 *       x * expand(gamma / sqrt(var + eps)) + expand(beta - mean * gamma / sqrt(var + eps))
 *     where expand gives the per-channel vectors trailing 1s so they broadcast over the
 *     channel axis; with constant statistics FoldConstant turns both into constants, and
 *     FoldScaleAxis then moves the multiply into a preceding conv2d/dense;
 *   nn.dropout(x) -> x (identity at inference).
 * nn.layer_norm stays one op (its statistics depend on the input). */
#include <string.h>

#include "relay/pass.h"

static int64_t attr_int(const relay_call *c, const char *key, int64_t dflt) {
  const relay_attr *a = relay_attr_find(c->nattrs, c->attrs, key);
  return a && a->attr_kind == RELAY_ATTR_INT ? a->i : dflt;
}

static double attr_float(const relay_call *c, const char *key, double dflt) {
  const relay_attr *a = relay_attr_find(c->nattrs, c->attrs, key);
  if (a && a->attr_kind == RELAY_ATTR_FLOAT) return a->f;
  return a && a->attr_kind == RELAY_ATTR_INT ? (double)a->i : dflt;
}

static relay_expr *call1(ir_arena *a, const char *op, relay_expr *x) {
  return relay_call_op(a, op, 1, &x, 0, NULL);
}

static relay_expr *call2(ir_arena *a, const char *op, relay_expr *x, relay_expr *y) {
  relay_expr *args[2] = {x, y};
  return x && y ? relay_call_op(a, op, 2, args, 0, NULL) : NULL;
}

/* v of shape (C,) as (C, 1, ..., 1) with `trailing` ones, so it broadcasts along an axis
 * that has `trailing` axes after it. */
static relay_expr *expand(ir_arena *a, relay_expr *v, int trailing) {
  if (!v || trailing <= 0) return v;
  relay_attr *attrs[2] = {relay_attr_int(a, "axis", 1), relay_attr_int(a, "num_newaxis", trailing)};
  if (!attrs[0] || !attrs[1]) return NULL;
  return relay_call_op(a, "expand_dims", 1, &v, 2, attrs);
}

static relay_expr *rewrite_batch_norm(ir_mutator *mu, relay_call *c) {
  ir_arena *a = mu->arena;
  const relay_tensor_type *xt = relay_as_tensor_type(relay_type_of(c->args[0]));
  const relay_tensor_type *vt = relay_as_tensor_type(relay_type_of(c->args[4]));
  if (c->nargs != 5 || !xt || !vt) return &c->h; /* the op's type relation would have said why */
  int64_t axis = attr_int(c, "axis", 1);
  if (axis < 0) axis += xt->ndim;
  if (axis < 0 || axis >= xt->ndim) return &c->h;
  relay_expr *x = c->args[0], *gamma = c->args[1], *beta = c->args[2], *mean = c->args[3],
             *var = c->args[4];
  relay_expr *eps = relay_scalar_const(a, vt->h.dtype, attr_float(c, "epsilon", 1e-5));
  relay_expr *inv = call1(a, "sqrt", call2(a, "add", var, eps));
  relay_expr *scale = attr_int(c, "scale", 1)
                          ? call2(a, "divide", gamma, inv)
                          : call2(a, "divide", relay_scalar_const(a, vt->h.dtype, 1), inv);
  relay_expr *shifted = call2(a, "multiply", mean, scale);
  relay_expr *shift = attr_int(c, "center", 1) ? call2(a, "subtract", beta, shifted)
                                               : call1(a, "negative", shifted);
  int trailing = (int)(xt->ndim - 1 - axis);
  return call2(a, "add", call2(a, "multiply", x, expand(a, scale, trailing)),
               expand(a, shift, trailing));
}

static ir_node *visit(ir_mutator *mu, ir_node *n) {
  if (!relay_is_expr(n)) return n;
  if (n->kind == RELAY_FUNC && relay_func_is_primitive((relay_func *)n)) return n;
  ir_node *r = ir_mutate_children(mu, n);
  relay_call *c = r && r->kind == RELAY_CALL ? (relay_call *)r : NULL;
  if (!c || !c->op) return r;
  if (strcmp(c->op, "nn.batch_norm") == 0) return rewrite_batch_norm(mu, c);
  if (strcmp(c->op, "nn.dropout") == 0 && c->nargs >= 1) return c->args[0];
  return r;
}

static relay_func *rewrite(relay_pass_ctx *pc, relay_module *m, relay_func *f, void *ud) {
  (void)pc;
  (void)ud;
  return relay_mutate_func(m, f, visit, NULL, NULL);
}

static kiln_status run(relay_pass_ctx *pc, relay_module *m) {
  return relay_rewrite_funcs(pc, m, "SimplifyInference", rewrite, NULL);
}

const relay_pass relay_pass_simplify_inference = {
    "SimplifyInference", 0, run, "batch_norm -> multiply and add; dropout -> its input"};

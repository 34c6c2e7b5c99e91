/* alter_layout.c: weight layouts that suit the CPU schedules, for constant weights (the
 * transposes are folded by FoldConstant, so the weights are stored in the new layout and
 * nothing runs at inference time). Neither pass is in the default pipeline: the build driver
 * runs them (relay/build.c, optimize()).
 *
 * AlterConvLayout: every nn.conv2d on NCHW data with an OIHW kernel, one group, a constant
 * weight and at least 16 output channels gets kernel_layout "HWIO" and its weight wrapped in
 * transpose(axes=[2, 3, 1, 0]). With the output channels innermost in the kernel, the conv2d
 * lowering (relay/op/nn.c) reduces into a channel-last accumulator that the default schedule
 * vectorizes over output channels (contiguous weight loads, broadcast inputs) instead of
 * along the output row. The result's layout (NCHW) does not change.
 *
 * AlterDenseLayout: every nn.dense with a constant [N, K] weight (weight_layout "NK", the
 * PyTorch Linear layout) and at least 16 output columns gets weight_layout "KN" and its
 * weight wrapped in transpose(axes=[1, 0]): the schedule vectorizes over the output columns,
 * which are then contiguous in the weight (with [N, K] a vector of them is a strided gather,
 * ~8x slower). The result does not change. */
#include <string.h>

#include "relay/pass.h"

enum { MIN_OUT_CHANNELS = 16 };

static bool is_op(const ir_node *n, const char *op) {
  return n && n->kind == RELAY_CALL && ((const relay_call *)n)->op &&
         strcmp(((const relay_call *)n)->op, op) == 0;
}

static const char *attr_str(const relay_call *c, const char *key, const char *dflt) {
  const relay_attr *a = relay_attr_find(c->nattrs, c->attrs, key);
  return a && a->attr_kind == RELAY_ATTR_STR ? a->s : dflt;
}

static int64_t attr_int(const relay_call *c, const char *key, int64_t dflt) {
  const relay_attr *a = relay_attr_find(c->nattrs, c->attrs, key);
  return a && a->attr_kind == RELAY_ATTR_INT ? a->i : dflt;
}

/* Whether the pass applies to conv2d call c (see the top of the file). */
static bool wants_hwio(const relay_call *c) {
  if (c->nargs != 2 || c->args[1]->kind != RELAY_CONST) return false;
  const char *out = attr_str(c, "out_layout", "");
  if (strcmp(attr_str(c, "data_layout", "NCHW"), "NCHW") != 0 ||
      strcmp(attr_str(c, "kernel_layout", "OIHW"), "OIHW") != 0 ||
      (out[0] && strcmp(out, "NCHW") != 0) || attr_int(c, "groups", 1) != 1)
    return false;
  const relay_tensor_type *w = relay_as_tensor_type(relay_type_of(c->args[1]));
  if (!w || w->ndim != 4) return false;
  const ir_int_imm *o = ir_as_int(w->shape[0]);
  return o && o->value >= MIN_OUT_CHANNELS;
}

/* Whether the dense pass applies to dense call c (see the top of the file). */
static bool wants_kn(const relay_call *c) {
  if (c->nargs != 2 || c->args[1]->kind != RELAY_CONST ||
      strcmp(attr_str(c, "weight_layout", "NK"), "NK") != 0)
    return false;
  const relay_tensor_type *w = relay_as_tensor_type(relay_type_of(c->args[1]));
  if (!w || w->ndim != 2) return false;
  const ir_int_imm *n = ir_as_int(w->shape[0]);
  return n && n->value >= MIN_OUT_CHANNELS;
}

/* Replaces (or adds) one string attribute of call c and its weight (argument 1) by
 * transpose(weight, axes). */
static relay_expr *with_layout(ir_arena *a, const relay_call *c, const char *key,
                               const char *value, int naxes, const int64_t *axes) {
  relay_attr *ax = relay_attr_ints(a, "axes", naxes, axes);
  relay_expr *w = ax ? relay_call_op(a, "transpose", 1, &c->args[1], 1, &ax) : NULL;
  relay_attr **attrs = ir_arena_alloc(a, sizeof *attrs * (size_t)(c->nattrs + 1));
  relay_attr *kl = relay_attr_str(a, key, value);
  if (!w || !attrs || !kl) return NULL;
  int n = 0;
  bool replaced = false;
  for (int i = 0; i < c->nattrs; i++) {
    bool is_key = strcmp(c->attrs[i]->key, key) == 0;
    attrs[n++] = is_key ? kl : c->attrs[i];
    replaced = replaced || is_key;
  }
  if (!replaced) attrs[n++] = kl;
  relay_expr *args[2] = {c->args[0], w};
  return relay_call_op(a, c->op, 2, args, n, attrs);
}

static ir_node *visit(ir_mutator *mu, ir_node *n) {
  if (!relay_is_expr(n)) return n;
  if (n->kind == RELAY_FUNC && relay_func_is_primitive((relay_func *)n)) return n;
  ir_node *r = ir_mutate_children(mu, n);
  bool dense = *(const bool *)mu->ud;
  const relay_call *c = (const relay_call *)r;
  if (r && !dense && is_op(r, "nn.conv2d") && wants_hwio(c)) {
    static const int64_t hwio[4] = {2, 3, 1, 0};
    return with_layout(mu->arena, c, "kernel_layout", "HWIO", 4, hwio);
  }
  if (r && dense && is_op(r, "nn.dense") && wants_kn(c)) {
    static const int64_t kn[2] = {1, 0};
    return with_layout(mu->arena, c, "weight_layout", "KN", 2, kn);
  }
  return r;
}

static relay_func *rewrite(relay_pass_ctx *pc, relay_module *m, relay_func *f, void *ud) {
  (void)pc;
  return relay_mutate_func(m, f, visit, ud, NULL);
}

static kiln_status run_conv(relay_pass_ctx *pc, relay_module *m) {
  static const bool dense = false;
  return relay_rewrite_funcs(pc, m, "AlterConvLayout", rewrite, (void *)&dense);
}

static kiln_status run_dense(relay_pass_ctx *pc, relay_module *m) {
  static const bool dense = true;
  return relay_rewrite_funcs(pc, m, "AlterDenseLayout", rewrite, (void *)&dense);
}

const relay_pass relay_pass_alter_conv_layout = {
    "AlterConvLayout", 2, run_conv,
    "conv2d kernels with constant OIHW weights -> HWIO (output channels innermost)"};

const relay_pass relay_pass_alter_dense_layout = {
    "AlterDenseLayout", 2, run_dense,
    "dense with constant [N, K] weights -> weight_layout KN (output columns contiguous)"};

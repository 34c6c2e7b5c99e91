/* fold_scale_axis.c: FoldScaleAxis. A multiply by a per-channel constant right after
 * nn.conv2d / nn.dense is folded into the weights (scaling output channel o of the weight by
 * s[o]); a bias added in between (add or nn.bias_add of a per-channel constant) is scaled
 * too, and two constant adds in a row after a conv2d/dense become one. Run after
 * SimplifyInference and FoldConstant, a batch norm after a convolution,
 *     add(multiply(conv2d(x, w), s), b)  ->  add(conv2d(x, w * s), b),
 * costs nothing at run time. A producer used by anything else is left alone (folding would
 * change what the other users see); so is a scale that varies along another axis or that
 * would broadcast the output to a larger shape. */
#include <string.h>

#include "relay/pass.h"

typedef struct fsa {
  relay_module *m;
  ir_ptrmap uses;   /* node of the original graph -> how many consumers it has */
  ir_ptrmap origin; /* node made by this pass -> the original node it replaces */
} fsa;

static bool is_op(const ir_node *n, const char *op) {
  return n && n->kind == RELAY_CALL && ((const relay_call *)n)->op &&
         strcmp(((const relay_call *)n)->op, op) == 0;
}

static const relay_const *as_const(const ir_node *n) {
  return n && n->kind == RELAY_CONST ? (const relay_const *)n : NULL;
}

/* The number of consumers of n: counted in the original graph, through the node it replaces
 * for a rewritten one; a node made inside one rewrite has just the one consumer made with it. */
static intptr_t uses_of(fsa *F, const ir_node *n) {
  intptr_t u = (intptr_t)ir_ptrmap_get(&F->uses, n);
  if (u) return u;
  const ir_node *o = ir_ptrmap_get(&F->origin, n);
  return o ? (intptr_t)ir_ptrmap_get(&F->uses, o) : 1;
}

static const char *attr_str(const relay_call *c, const char *key, const char *dflt) {
  const relay_attr *a = relay_attr_find(c->nattrs, c->attrs, key);
  return a && a->attr_kind == RELAY_ATTR_STR ? a->s : dflt;
}

/* Where the output channels are: the output's channel axis and size, and the weight's
 * output-channel axis, for a conv2d or dense call whose output dtype is its input's. */
typedef struct channel {
  int axis, rank, waxis;
  int64_t count;
} channel;

static bool producer_channel(const relay_call *p, channel *ch) {
  const relay_tensor_type *out = relay_as_tensor_type(p->type);
  const relay_tensor_type *w =
      p->nargs == 2 ? relay_as_tensor_type(relay_type_of(p->args[1])) : NULL;
  if (!out || !w || !ir_dt_is_float(out->h.dtype) || !ir_dt_eq(out->h.dtype, w->h.dtype))
    return false;
  const char *out_dtype = attr_str(p, "out_dtype", "");
  if (out_dtype[0]) {
    kiln_dtype t;
    if (kiln_dtype_parse(out_dtype, strlen(out_dtype), &t) || !ir_dt_eq(t, out->h.dtype))
      return false;
  }
  ch->rank = out->ndim;
  if (is_op(&p->h, "nn.conv2d")) {
    const char *dl = attr_str(p, "data_layout", "NCHW"), *kl = attr_str(p, "kernel_layout", "OIHW");
    const char *ol = attr_str(p, "out_layout", "");
    const char *c = strchr(dl, 'C'), *o = strchr(kl, 'O');
    if (out->ndim != 4 || w->ndim != 4 || strlen(dl) != 4 || strlen(kl) != 4 || !c || !o ||
        (ol[0] && strcmp(ol, dl) != 0))
      return false;
    ch->axis = (int)(c - dl);
    ch->waxis = (int)(o - kl);
  } else if (is_op(&p->h, "nn.dense")) {
    if (out->ndim < 1 || w->ndim != 2) return false;
    ch->axis = out->ndim - 1;
    ch->waxis = strcmp(attr_str(p, "weight_layout", "NK"), "KN") == 0 ? 1 : 0;
  } else {
    return false;
  }
  ir_int_imm *cnt = ir_as_int(out->shape[ch->axis]), *wcnt = ir_as_int(w->shape[ch->waxis]);
  if (!cnt || !wcnt || cnt->value != wcnt->value || cnt->value <= 0) return false;
  ch->count = cnt->value;
  return true;
}

static relay_tensor const_tensor(const relay_const *k) {
  const relay_tensor_type *t = (const relay_tensor_type *)k->type;
  relay_tensor x = {t->h.dtype, t->ndim, {0}, k->data, (size_t)k->nbytes, false};
  for (int i = 0; i < t->ndim; i++) x.shape[i] = ir_as_int(t->shape[i])->value;
  return x;
}

/* Whether constant k, broadcast against the producer's output, varies only along the
 * channel axis; *along says whether it has the channel axis (else it is one value). */
static bool per_channel(const relay_const *k, const channel *ch, bool *along) {
  relay_tensor t = const_tensor(k);
  if (!ir_dt_is_float(t.dtype) || t.ndim > ch->rank) return false;
  *along = false;
  for (int j = 0; j < t.ndim; j++) {
    int o = j + ch->rank - t.ndim;
    if (o == ch->axis && t.shape[j] == ch->count && ch->count != 1)
      *along = true;
    else if (t.shape[j] != 1)
      return false;
  }
  return true;
}

/* The per-channel values of k (count entries). */
static void channel_values(const relay_const *k, const channel *ch, double *s) {
  relay_tensor t = const_tensor(k);
  bool along;
  per_channel(k, ch, &along);
  for (int64_t c = 0; c < ch->count; c++) s[c] = relay_tensor_get(&t, along ? c : 0);
}

/* A constant of k's type with element i multiplied by s[its index along `axis` of k]; with
 * axis -1 (k holds one value for every channel) by s[0], which needs s uniform. */
static relay_expr *scale_const(ir_arena *a, const relay_const *k, int axis, const double *s) {
  relay_tensor t = const_tensor(k);
  int64_t n = relay_tensor_numel(&t), stride = 1;
  for (int d = t.ndim - 1; d > axis; d--) stride *= t.shape[d];
  void *data = ir_malloc(a->ctx, t.nbytes ? t.nbytes : 1);
  if (!data) return NULL;
  relay_tensor out = t;
  out.data = data;
  for (int64_t i = 0; i < n; i++) {
    int64_t c = axis >= 0 ? (i / stride) % t.shape[axis] : 0;
    relay_tensor_set(&out, i, relay_tensor_get(&t, i) * s[c]);
  }
  relay_expr *r = relay_const_new(a, k->type, data, (int64_t)t.nbytes);
  ir_free(a->ctx, data, t.nbytes ? t.nbytes : 1);
  return r;
}

/* The weight with output channel o scaled by s[o]: folded when the weight is a constant,
 * else a multiply by a constant shaped (C, 1, ...) that broadcasts along its channel axis. */
static relay_expr *scale_weight(ir_arena *a, relay_expr *w, const channel *ch, const double *s) {
  const relay_const *k = as_const(w);
  if (k) return scale_const(a, k, ch->waxis, s);
  const relay_tensor_type *wt = relay_as_tensor_type(relay_type_of(w));
  int64_t shape[RELAY_MAX_DIMS];
  int nd = wt->ndim - ch->waxis;
  shape[0] = ch->count;
  for (int i = 1; i < nd; i++) shape[i] = 1;
  relay_tensor x = {wt->h.dtype, nd, {0}, NULL, (size_t)ch->count * kiln_dtype_bytes(wt->h.dtype),
                    false};
  if (!(x.data = ir_malloc(a->ctx, x.nbytes))) return NULL;
  for (int64_t c = 0; c < ch->count; c++) relay_tensor_set(&x, c, s[c]);
  relay_expr *sc = relay_const_new(a, relay_tensor_type_const(a, wt->h.dtype, nd, shape), x.data,
                                   (int64_t)x.nbytes);
  ir_free(a->ctx, x.data, x.nbytes);
  relay_expr *args[2] = {w, sc};
  return sc ? relay_call_op(a, "multiply", 2, args, 0, NULL) : NULL;
}

/* The producer p (conv2d/dense) with its weight scaled. */
static relay_expr *scaled_producer(ir_arena *a, const relay_call *p, const channel *ch,
                                   const double *s) {
  relay_expr *args[2] = {p->args[0], scale_weight(a, p->args[1], ch, s)};
  return args[1] ? relay_call_op(a, p->op, 2, args, p->nattrs, p->attrs) : NULL;
}

/* The producer at the bottom of `x`: x itself (conv2d/dense) or the data operand of a bias
 * (add / nn.bias_add of a constant) on top of one. Sets *bias_at to the bias operand's index
 * (-1 without a bias). */
static const relay_call *find_producer(fsa *F, const ir_node *x, channel *ch, int *bias_at) {
  *bias_at = -1;
  if (x->kind == RELAY_CALL && producer_channel((const relay_call *)x, ch))
    return (const relay_call *)x;
  if (!is_op(x, "add") && !is_op(x, "nn.bias_add")) return NULL;
  const relay_call *b = (const relay_call *)x;
  for (int i = 0; i < 2; i++) {
    if (is_op(x, "nn.bias_add") && i == 1) break; /* bias_add(data, bias) */
    const ir_node *p = b->args[i];
    if (p->kind != RELAY_CALL || !as_const(b->args[1 - i]) || uses_of(F, p) != 1) continue;
    if (!producer_channel((const relay_call *)p, ch)) continue;
    *bias_at = 1 - i;
    return (const relay_call *)p;
  }
  return NULL;
}

/* multiply(x, k) or multiply(k, x) with k a per-channel constant and x a conv2d/dense
 * (possibly with a bias on top) used only here: the scale moves into the weights. */
static relay_expr *fold_multiply(fsa *F, ir_arena *a, relay_call *c) {
  for (int side = 0; side < 2; side++) {
    ir_node *x = c->args[side];
    const relay_const *k = as_const(c->args[1 - side]);
    if (!k || x->kind != RELAY_CALL || uses_of(F, x) != 1) continue;
    if (!relay_type_equal(a, c->type, relay_type_of(x))) continue; /* k would broadcast x */
    channel ch;
    int bias_at;
    const relay_call *p = find_producer(F, x, &ch, &bias_at);
    bool along, bias_along = false;
    if (!p || !per_channel(k, &ch, &along)) continue;
    const relay_call *b = (const relay_call *)x;
    const relay_const *bias = bias_at >= 0 ? as_const(b->args[bias_at]) : NULL;
    int bias_axis = -1;
    if (bias && is_op(x, "nn.bias_add")) {
      const relay_attr *ax = relay_attr_find(b->nattrs, b->attrs, "axis");
      int64_t axis = ax ? ax->i : 1;
      if (axis < 0) axis += ch.rank;
      if (axis != ch.axis || ((relay_tensor_type *)bias->type)->ndim != 1) continue;
      bias_along = ch.count != 1;
      bias_axis = 0;
    } else if (bias) {
      if (!per_channel(bias, &ch, &bias_along)) continue;
      bias_axis = bias_along ? ((relay_tensor_type *)bias->type)->ndim - (ch.rank - ch.axis) : -1;
    }
    size_t bytes = sizeof(double) * (size_t)ch.count;
    double *s = ir_malloc(a->ctx, bytes);
    if (!s) return NULL;
    channel_values(k, &ch, s);
    bool uniform = true;
    for (int64_t i = 1; i < ch.count; i++) uniform = uniform && s[i] == s[0];
    relay_expr *r = &c->h;
    if (bias && !bias_along && !uniform) {
      /* a single bias value cannot carry per-channel scales: leave it */
    } else {
      relay_expr *np = scaled_producer(a, p, &ch, s);
      if (np && bias) {
        relay_expr *args[2];
        args[1 - bias_at] = np;
        args[bias_at] = scale_const(a, bias, bias_axis, s);
        np = args[bias_at] ? relay_call_op(a, b->op, 2, args, b->nattrs, b->attrs) : NULL;
      }
      r = np;
    }
    ir_free(a->ctx, s, bytes);
    return r;
  }
  return &c->h;
}

/* add(add(p, k1), k2) with p a conv2d/dense/bias_add and k1, k2 constants -> add(p, k1 + k2)
 * when the inner add has no other user and the result keeps its type. */
static relay_expr *merge_adds(fsa *F, relay_module *m, ir_arena *a, relay_call *c) {
  for (int side = 0; side < 2; side++) {
    ir_node *x = c->args[side];
    const relay_const *k2 = as_const(c->args[1 - side]);
    if (!k2 || !is_op(x, "add") || uses_of(F, x) != 1) continue;
    const relay_call *in = (const relay_call *)x;
    for (int j = 0; j < 2; j++) {
      ir_node *p = in->args[j];
      if (!as_const(in->args[1 - j]) ||
          !(is_op(p, "nn.conv2d") || is_op(p, "nn.dense") || is_op(p, "nn.bias_add")))
        continue;
      relay_expr *sum_args[2] = {in->args[1 - j], c->args[1 - side]};
      relay_expr *sum = relay_call_op(a, "add", 2, sum_args, 0, NULL);
      if (!sum) {
        /* constants that do not broadcast together: leave it */
        if (a->ctx->code != KILN_ERR_NOMEM) {
          ir_clear_error(a->ctx);
          continue;
        }
        return NULL;
      }
      if (!(sum = relay_fold_call(m, a, sum))) return NULL;
      relay_expr *args[2] = {p, sum};
      relay_expr *r = relay_call_op(a, "add", 2, args, 0, NULL);
      if (!r) return NULL;
      if (relay_type_equal(a, r->kind == RELAY_CALL ? ((relay_call *)r)->type : NULL, c->type))
        return r;
    }
  }
  return &c->h;
}

static ir_node *visit(ir_mutator *mu, ir_node *n) {
  fsa *F = mu->ud;
  if (!relay_is_expr(n)) return n;
  if (n->kind == RELAY_FUNC && relay_func_is_primitive((relay_func *)n)) return n;
  ir_node *r = ir_mutate_children(mu, n);
  if (r && is_op(r, "multiply"))
    r = fold_multiply(F, mu->arena, (relay_call *)r);
  else if (r && is_op(r, "add"))
    r = merge_adds(F, F->m, mu->arena, (relay_call *)r);
  if (r && r != n && !ir_ptrmap_get(&F->uses, r) && ir_ptrmap_put(&F->origin, r, n)) return NULL;
  return r;
}

/* Counts the consumers of every node of f (the function's result counts as used outside). */
static kiln_status count_uses(fsa *F, relay_func *f) {
  relay_expr **order;
  int n;
  kiln_status st = relay_post_order(F->m->ctx, &f->h, true, &order, &n);
  for (int i = 0; !st && i < n; i++)
    for (int j = 0; !st && j < relay_expr_child_count(order[i]); j++) {
      relay_expr *k = relay_expr_child(order[i], j);
      st = ir_ptrmap_put(&F->uses, k, (void *)((intptr_t)ir_ptrmap_get(&F->uses, k) + 1));
    }
  if (!st)
    st = ir_ptrmap_put(&F->uses, f->body, (void *)((intptr_t)ir_ptrmap_get(&F->uses, f->body) + 1));
  ir_free(F->m->ctx, order, sizeof *order * (size_t)n);
  return st;
}

static relay_func *rewrite(relay_pass_ctx *pc, relay_module *m, relay_func *f, void *ud) {
  (void)pc;
  (void)ud;
  fsa F = {m, {0}, {0}};
  ir_ptrmap_init(&F.uses, m->ctx);
  ir_ptrmap_init(&F.origin, m->ctx);
  ir_ptrmap memo;
  ir_ptrmap_init(&memo, m->ctx);
  ir_node *r = NULL;
  if (!count_uses(&F, f)) {
    ir_mutator mu = {m->arena, visit, &F, &memo, true};
    r = relay_mutate_bottom_up(&mu, &f->h, NULL);
  }
  ir_ptrmap_free(&memo);
  ir_ptrmap_free(&F.uses);
  ir_ptrmap_free(&F.origin);
  return (relay_func *)r;
}

static kiln_status run(relay_pass_ctx *pc, relay_module *m) {
  return relay_rewrite_funcs(pc, m, "FoldScaleAxis", rewrite, NULL);
}

const relay_pass relay_pass_fold_scale_axis = {
    "FoldScaleAxis", 3, run, "folds per-channel scales after conv2d/dense into the weights"};

/* node.c: the relay node kinds (registered with ir/ so the generic machinery serves them),
 * their constructors with eager type inference, type helpers and modules. */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "ir/text.h"
#include "op.h"

/* ---- The kind table ---------------------------------------------------------------- */

#define F(S, kind, field) {#field, IR_F_##kind, offsetof(S, field), 0}
#define FA(S, kind, field, count) {#field, IR_F_##kind, offsetof(S, field), offsetof(S, count)}

#define FIELDS_relay_tensor_type 1, {FA(relay_tensor_type, NODES, shape, ndim)}
#define FIELDS_relay_tuple_type 1, {FA(relay_tuple_type, NODES, fields, nfields)}
#define FIELDS_relay_func_type \
  2, {FA(relay_func_type, NODES, params, nparams), F(relay_func_type, NODE, ret)}
#define FIELDS_relay_attr                                                            \
  6, {F(relay_attr, STR, key), F(relay_attr, I32, attr_kind), F(relay_attr, I64, i), \
      F(relay_attr, F64, f), F(relay_attr, STR, s), FA(relay_attr, I64S, ints, nints)}
#define FIELDS_relay_var 2, {F(relay_var, NODE, type), F(relay_var, NAME, name)}
#define FIELDS_relay_global 2, {F(relay_global, NODE, type), F(relay_global, STR, name)}
#define FIELDS_relay_const \
  2, {F(relay_const, NODE, type), FA(relay_const, BYTES, data, nbytes)}
#define FIELDS_relay_call                                                               \
  5, {F(relay_call, NODE, type), F(relay_call, STR, op), F(relay_call, NODE, fn),         \
      FA(relay_call, NODES, args, nargs), FA(relay_call, NODES, attrs, nattrs)}
#define FIELDS_relay_tuple 2, {F(relay_tuple, NODE, type), FA(relay_tuple, NODES, fields, nfields)}
#define FIELDS_relay_proj \
  3, {F(relay_proj, NODE, type), F(relay_proj, NODE, tuple), F(relay_proj, I32, index)}
#define FIELDS_relay_let                                                            \
  4, {F(relay_let, NODE, type), F(relay_let, NODE, value), F(relay_let, DEF, var), \
      F(relay_let, NODE, body)}
#define FIELDS_relay_func                                                               \
  5, {F(relay_func, NODE, type), FA(relay_func, DEFS, params, nparams),                 \
      F(relay_func, NODE, ret_type), F(relay_func, NODE, body),                         \
      FA(relay_func, NODES, attrs, nattrs)}
#define FIELDS_relay_if                                                            \
  4, {F(relay_if, NODE, type), F(relay_if, NODE, cond), F(relay_if, NODE, then_branch), \
      F(relay_if, NODE, else_branch)}

static int category_of(int kind) {
  if (kind <= RELAY_FUNC_TYPE) return RELAY_CAT_TYPE;
  if (kind == RELAY_ATTR) return RELAY_CAT_ATTR;
  return RELAY_CAT_EXPR;
}

#define KIND_INFO(e, n, s)                                                      \
  [RELAY_##e - IR_EXT_KIND_FIRST] = {n, 0, sizeof(s), FIELDS_##s,               \
                                     RELAY_##e == RELAY_VAR ? IR_KIND_BINDING : 0},
static ir_kind_info relay_kinds[RELAY_KIND_COUNT] = {RELAY_NODE_KINDS(KIND_INFO)};
#undef KIND_INFO

static ir_node *check_relay(ir_arena *a, ir_node *n);

static const ir_kind_table relay_table = {IR_EXT_KIND_FIRST, RELAY_KIND_COUNT, relay_kinds,
                                          check_relay};

static void register_once(void) {
  for (int k = 0; k < RELAY_KIND_COUNT; k++)
    relay_kinds[k].category = (uint8_t)category_of(k + IR_EXT_KIND_FIRST);
  ir_register_kinds(&relay_table);
}

void relay_register_kinds(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, register_once);
}

/* ---- Typing ------------------------------------------------------------------------ */

static ir_node *fail_node(ir_arena *a, const ir_node *n, kiln_status code, const char *fmt,
                          const char *detail) {
  ir_fail(a->ctx, n->span, code, fmt, detail);
  return NULL;
}

static bool is_type_or_null(const ir_node *t) { return !t || relay_is_type(t); }

/* Appends the type (or "?" when unknown) for messages. */
static void put_type(ir_strbuf *sb, const relay_type *t) {
  if (t) relay_type_print(sb, t);
  else ir_sb_puts(sb, "?");
}

static bool type_equal(ir_arena *scratch, const relay_type *a, const relay_type *b, bool *oom);

/* Whether the types differ, as the checks below ask it: false when equal; true, with nothing
 * more to do, when they differ; and true with KILN_ERR_NOMEM recorded (so the caller returns
 * NULL without writing a type error over it) when comparing them ran out of memory. */
static bool types_differ(ir_arena *a, const relay_type *x, const relay_type *y, bool *oom) {
  *oom = false;
  if (type_equal(a, x, y, oom)) return false;
  if (*oom) ir_fail(a->ctx, a->span, KILN_ERR_NOMEM, "out of memory comparing types");
  return true;
}

static relay_type *type_mismatch(ir_arena *a, const ir_node *n, const char *what,
                                 const relay_type *want, const relay_type *got) {
  ir_strbuf sb;
  ir_sb_init(&sb, a->ctx);
  ir_sb_printf(&sb, "%s: expected ", what);
  put_type(&sb, want);
  ir_sb_puts(&sb, ", got ");
  put_type(&sb, got);
  ir_fail(a->ctx, n->span, KILN_ERR_TYPE, "%s", sb.data ? sb.data : what);
  ir_sb_free(&sb);
  return NULL;
}

/* The type of an op call from its arguments' types (NULL type when one is unknown). */
static bool type_op_call(ir_arena *a, relay_call *c) {
  if (!c->opdef) c->opdef = relay_op_lookup(c->op);
  const relay_op *op = c->opdef;
  if (!op) {
    fail_node(a, &c->h, KILN_ERR_UNDEFINED, "unknown op '%s'", c->op);
    return false;
  }
  if (c->nargs < op->min_args || (op->max_args >= 0 && c->nargs > op->max_args)) {
    char want[48];
    if (op->max_args == op->min_args) snprintf(want, sizeof want, "%d", op->min_args);
    else if (op->max_args < 0) snprintf(want, sizeof want, "at least %d", op->min_args);
    else snprintf(want, sizeof want, "%d to %d", op->min_args, op->max_args);
    ir_fail(a->ctx, c->h.span, KILN_ERR_TYPE, "%s takes %s arguments, not %d", op->name, want,
            (int)c->nargs);
    return false;
  }
  if (c->nattrs != op->nattrs) {
    ir_fail(a->ctx, c->h.span, KILN_ERR_INTERNAL, "%s: %d attributes, the schema has %d",
            op->name, (int)c->nattrs, op->nattrs);
    return false;
  }
  relay_type *targs[64];
  if (c->nargs > 64) {
    ir_fail(a->ctx, c->h.span, KILN_ERR_UNSUPPORTED, "%s: more than 64 arguments", op->name);
    return false;
  }
  for (int i = 0; i < c->nargs; i++) {
    if (!relay_is_expr(c->args[i])) {
      fail_node(a, &c->h, KILN_ERR_TYPE, "%s: an argument is not an expression", op->name);
      return false;
    }
    targs[i] = relay_type_of(c->args[i]);
    if (!targs[i]) {
      c->type = NULL; /* incomplete: relay_infer_type will come back */
      return true;
    }
  }
  relay_infer_ctx ic = {a, NULL, op->name, c->h.span, false};
  c->type = op->infer(&ic, c->nargs, targs, c->attrs);
  if (ic.an) ir_analyzer_free(ic.an);
  return c->type != NULL;
}

static bool type_fn_call(ir_arena *a, relay_call *c) {
  if (!relay_is_expr(c->fn)) {
    fail_node(a, &c->h, KILN_ERR_TYPE, "%s", "a call needs an op or a function to call");
    return false;
  }
  relay_type *ft = relay_type_of(c->fn);
  c->type = NULL;
  if (!ft) return true;
  const relay_func_type *f = relay_as_func_type(ft);
  if (!f) {
    type_mismatch(a, &c->h, "calling a value that is not a function", NULL, ft);
    return false;
  }
  if (f->nparams != c->nargs) {
    ir_fail(a->ctx, c->h.span, KILN_ERR_TYPE, "the function takes %d arguments, not %d",
            (int)f->nparams, (int)c->nargs);
    return false;
  }
  for (int i = 0; i < c->nargs; i++) {
    relay_type *t = relay_type_of(c->args[i]);
    if (!t) return true;
    bool oom;
    if (types_differ(a, f->params[i], t, &oom)) {
      if (oom) return false;
      char what[64];
      snprintf(what, sizeof what, "argument %d of the call", i);
      type_mismatch(a, &c->h, what, f->params[i], t);
      return false;
    }
  }
  c->type = f->ret;
  return true;
}

/* Validates a relay node and derives its type (the check hook of the kind table). */
static ir_node *check_relay(ir_arena *a, ir_node *n) {
  switch ((relay_kind)n->kind) {
  case RELAY_TENSOR_TYPE: {
    relay_tensor_type *t = (relay_tensor_type *)n;
    if (n->dtype.code == KILN_TYPE_VOID || n->dtype.lanes != 1)
      return fail_node(a, n, KILN_ERR_TYPE, "%s", "a tensor needs a scalar element type");
    if (t->ndim > RELAY_MAX_DIMS)
      return fail_node(a, n, KILN_ERR_UNSUPPORTED, "%s", "tensors have at most 8 dimensions");
    for (int i = 0; i < t->ndim; i++)
      if (!ir_is_expr(t->shape[i]) || !ir_dt_eq(t->shape[i]->dtype, KILN_INT64))
        return fail_node(a, n, KILN_ERR_TYPE, "%s", "a dimension must be an int64 expression");
    return n;
  }
  case RELAY_TUPLE_TYPE: {
    relay_tuple_type *t = (relay_tuple_type *)n;
    for (int i = 0; i < t->nfields; i++)
      if (!relay_is_type(t->fields[i]))
        return fail_node(a, n, KILN_ERR_TYPE, "%s", "a tuple type holds types");
    return n;
  }
  case RELAY_FUNC_TYPE: {
    relay_func_type *t = (relay_func_type *)n;
    for (int i = 0; i < t->nparams; i++)
      if (!relay_is_type(t->params[i]))
        return fail_node(a, n, KILN_ERR_TYPE, "%s", "a function type's parameters are types");
    if (!relay_is_type(t->ret))
      return fail_node(a, n, KILN_ERR_TYPE, "%s", "a function type needs a result type");
    return n;
  }
  case RELAY_ATTR: {
    relay_attr *t = (relay_attr *)n;
    if (!t->key || !t->s || t->attr_kind < RELAY_ATTR_INT || t->attr_kind > RELAY_ATTR_INTS)
      return fail_node(a, n, KILN_ERR_TYPE, "%s", "malformed attribute");
    return n;
  }
  case RELAY_VAR: {
    relay_var *v = (relay_var *)n;
    if (!is_type_or_null(v->type))
      return fail_node(a, n, KILN_ERR_TYPE, "variable %%%s: annotation is not a type", v->name);
    return n;
  }
  case RELAY_GLOBAL: {
    relay_global *g = (relay_global *)n;
    if (g->type && !relay_as_func_type(g->type))
      return fail_node(a, n, KILN_ERR_TYPE, "@%s: a global's type is a function type", g->name);
    return n;
  }
  case RELAY_CONST: {
    relay_const *c = (relay_const *)n;
    int64_t numel = relay_type_numel(c->type);
    if (!relay_as_tensor_type(c->type) || numel < 0)
      return fail_node(a, n, KILN_ERR_TYPE, "%s", "a constant needs a tensor type of constant shape");
    if ((uint64_t)c->nbytes != (uint64_t)numel * kiln_dtype_bytes(c->type->dtype))
      return fail_node(a, n, KILN_ERR_SHAPE, "%s", "a constant's data does not match its type's size");
    return n;
  }
  case RELAY_CALL: {
    relay_call *c = (relay_call *)n;
    for (int i = 0; i < c->nattrs; i++)
      if (!c->attrs[i] || c->attrs[i]->h.kind != RELAY_ATTR)
        return fail_node(a, n, KILN_ERR_TYPE, "%s", "call attributes must be attributes");
    bool ok = c->op ? type_op_call(a, c) : type_fn_call(a, c);
    return ok ? n : NULL;
  }
  case RELAY_TUPLE: {
    relay_tuple *t = (relay_tuple *)n;
    relay_type *fields[256];
    if (t->nfields > 256) return fail_node(a, n, KILN_ERR_UNSUPPORTED, "%s", "tuples hold at most 256 fields");
    t->type = NULL;
    for (int i = 0; i < t->nfields; i++) {
      if (!relay_is_expr(t->fields[i])) return fail_node(a, n, KILN_ERR_TYPE, "%s", "a tuple holds expressions");
      if (!(fields[i] = relay_type_of(t->fields[i]))) return n;
    }
    t->type = relay_tuple_type_new(a, t->nfields, fields);
    return t->type ? n : NULL;
  }
  case RELAY_PROJ: {
    relay_proj *p = (relay_proj *)n;
    if (!relay_is_expr(p->tuple)) return fail_node(a, n, KILN_ERR_TYPE, "%s", "projection of a non-expression");
    relay_type *tt = relay_type_of(p->tuple);
    p->type = NULL;
    if (!tt) return n;
    relay_tuple_type *t = relay_as_tuple_type(tt);
    if (!t) return type_mismatch(a, n, "projection (.N) needs a tuple", NULL, tt);
    if (p->index < 0 || p->index >= t->nfields) {
      ir_fail(a->ctx, n->span, KILN_ERR_TYPE, "projection .%d of a tuple of %d fields",
              (int)p->index, (int)t->nfields);
      return NULL;
    }
    p->type = t->fields[p->index];
    return n;
  }
  case RELAY_LET: {
    relay_let *l = (relay_let *)n;
    if (!relay_as_var(&l->var->h) || !relay_is_expr(l->value) || !relay_is_expr(l->body))
      return fail_node(a, n, KILN_ERR_TYPE, "%s", "malformed let");
    relay_type *vt = relay_type_of(l->value);
    bool oom;
    if (l->var->type && vt && types_differ(a, l->var->type, vt, &oom)) {
      if (oom) return NULL;
      char what[128];
      snprintf(what, sizeof what, "let %%%s: the value's type does not match the annotation",
               l->var->name);
      return type_mismatch(a, n, what, l->var->type, vt);
    }
    l->type = relay_type_of(l->body);
    return n;
  }
  case RELAY_FUNC: {
    relay_func *f = (relay_func *)n;
    relay_type *params[256];
    if (f->nparams > 256) return fail_node(a, n, KILN_ERR_UNSUPPORTED, "%s", "at most 256 parameters");
    if (!relay_is_expr(f->body)) return fail_node(a, n, KILN_ERR_TYPE, "%s", "a function needs a body");
    if (!is_type_or_null(f->ret_type)) return fail_node(a, n, KILN_ERR_TYPE, "%s", "bad result annotation");
    for (int i = 0; i < f->nattrs; i++)
      if (!f->attrs[i] || f->attrs[i]->h.kind != RELAY_ATTR)
        return fail_node(a, n, KILN_ERR_TYPE, "%s", "function attributes must be attributes");
    relay_type *bt = relay_type_of(f->body);
    bool oom;
    if (f->ret_type && bt && types_differ(a, f->ret_type, bt, &oom))
      return oom ? NULL : type_mismatch(a, n, "the function's body does not match its result annotation",
                           f->ret_type, bt);
    f->type = NULL;
    for (int i = 0; i < f->nparams; i++) {
      if (!relay_as_var(&f->params[i]->h)) return fail_node(a, n, KILN_ERR_TYPE, "%s", "parameters are variables");
      if (!(params[i] = f->params[i]->type)) return n;
    }
    relay_type *ret = f->ret_type ? f->ret_type : bt;
    if (!ret) return n;
    f->type = relay_func_type_new(a, f->nparams, params, ret);
    return f->type ? n : NULL;
  }
  case RELAY_IF: {
    relay_if *x = (relay_if *)n;
    if (!relay_is_expr(x->cond) || !relay_is_expr(x->then_branch) || !relay_is_expr(x->else_branch))
      return fail_node(a, n, KILN_ERR_TYPE, "%s", "malformed if");
    x->type = NULL;
    relay_type *ct = relay_type_of(x->cond);
    const relay_tensor_type *c = relay_as_tensor_type(ct);
    if (ct && (!c || c->ndim != 0 || c->h.dtype.code != KILN_TYPE_BOOL))
      return type_mismatch(a, n, "the condition of if must be a bool scalar",
                           relay_tensor_type_new(a, KILN_BOOL, 0, NULL), ct);
    relay_type *tt = relay_type_of(x->then_branch), *et = relay_type_of(x->else_branch);
    bool oom;
    if (tt && et && types_differ(a, tt, et, &oom))
      return oom ? NULL : type_mismatch(a, n, "the branches of if have different types", tt, et);
    x->type = tt && et ? tt : NULL;
    return n;
  }
  case RELAY_KIND_BEFORE_FIRST:
  case RELAY_KIND_END: break;
  }
  return fail_node(a, n, KILN_ERR_INTERNAL, "%s", "unknown relay node kind");
}

/* ---- Constructors -------------------------------------------------------------------- */

static void *node_alloc(ir_arena *a, int kind) {
  relay_register_kinds();
  ir_node *n = ir_arena_alloc(a, relay_kinds[kind - IR_EXT_KIND_FIRST].size);
  if (!n) return NULL;
  n->kind = (uint8_t)kind;
  n->dtype = KILN_VOID;
  n->span = a->span;
  return n;
}

static bool any_null(int n, void *const *p) {
  if (n > 0 && !p) return true;
  for (int i = 0; i < n; i++)
    if (!p[i]) return true;
  return false;
}

#define COPY_ARRAY(dst, cnt, src)                                        \
  do {                                                                   \
    if ((cnt) < 0 || any_null((cnt), (void *const *)(src))) return NULL; \
    (dst) = ir_arena_copy_nodes(a, (cnt), (void *const *)(src));         \
    if ((cnt) > 0 && !(dst)) return NULL;                                \
  } while (0)

relay_type *relay_tensor_type_new(ir_arena *a, kiln_dtype t, int ndim, ir_expr *const *shape) {
  relay_tensor_type *n = node_alloc(a, RELAY_TENSOR_TYPE);
  if (!n) return NULL;
  n->h.dtype = t;
  n->ndim = ndim;
  COPY_ARRAY(n->shape, ndim, shape);
  return ir_node_finish(a, &n->h);
}

relay_type *relay_tensor_type_const(ir_arena *a, kiln_dtype t, int ndim, const int64_t *shape) {
  ir_expr *dims[RELAY_MAX_DIMS];
  if (ndim < 0 || ndim > RELAY_MAX_DIMS) {
    ir_fail(a->ctx, a->span, KILN_ERR_UNSUPPORTED, "tensors have at most %d dimensions", RELAY_MAX_DIMS);
    return NULL;
  }
  for (int i = 0; i < ndim; i++)
    if (!(dims[i] = ir_int(a, KILN_INT64, shape[i]))) return NULL;
  return relay_tensor_type_new(a, t, ndim, dims);
}

relay_type *relay_tuple_type_new(ir_arena *a, int cnt, relay_type *const *fields) {
  relay_tuple_type *n = node_alloc(a, RELAY_TUPLE_TYPE);
  if (!n) return NULL;
  n->nfields = cnt;
  COPY_ARRAY(n->fields, cnt, fields);
  return ir_node_finish(a, &n->h);
}

relay_type *relay_func_type_new(ir_arena *a, int cnt, relay_type *const *params, relay_type *ret) {
  if (!ret) return NULL;
  relay_func_type *n = node_alloc(a, RELAY_FUNC_TYPE);
  if (!n) return NULL;
  n->nparams = cnt;
  COPY_ARRAY(n->params, cnt, params);
  n->ret = ret;
  return ir_node_finish(a, &n->h);
}

static relay_attr *attr_alloc(ir_arena *a, const char *key, int kind) {
  if (!key) return NULL;
  relay_attr *n = node_alloc(a, RELAY_ATTR);
  if (!n || !(n->key = ir_arena_strdup(a, key)) || !(n->s = ir_arena_strdup(a, ""))) return NULL;
  n->attr_kind = kind;
  return n;
}

relay_attr *relay_attr_int(ir_arena *a, const char *key, int64_t v) {
  relay_attr *n = attr_alloc(a, key, RELAY_ATTR_INT);
  if (!n) return NULL;
  n->i = v;
  return (relay_attr *)ir_node_finish(a, &n->h);
}

relay_attr *relay_attr_float(ir_arena *a, const char *key, double v) {
  relay_attr *n = attr_alloc(a, key, RELAY_ATTR_FLOAT);
  if (!n) return NULL;
  n->f = v;
  return (relay_attr *)ir_node_finish(a, &n->h);
}

relay_attr *relay_attr_str(ir_arena *a, const char *key, const char *v) {
  if (!v) return NULL;
  relay_attr *n = attr_alloc(a, key, RELAY_ATTR_STR);
  if (!n || !(n->s = ir_arena_strdup(a, v))) return NULL;
  return (relay_attr *)ir_node_finish(a, &n->h);
}

relay_attr *relay_attr_ints(ir_arena *a, const char *key, int cnt, const int64_t *v) {
  relay_attr *n = attr_alloc(a, key, RELAY_ATTR_INTS);
  if (!n || cnt < 0 || (cnt && !v)) return NULL;
  n->nints = cnt;
  if (cnt) {
    if (!(n->ints = ir_arena_alloc(a, sizeof(int64_t) * (size_t)cnt))) return NULL;
    memcpy(n->ints, v, sizeof(int64_t) * (size_t)cnt);
  }
  return (relay_attr *)ir_node_finish(a, &n->h);
}

relay_var *relay_var_new(ir_arena *a, const char *name, relay_type *type) {
  relay_var *n = node_alloc(a, RELAY_VAR);
  if (!n || !(n->name = ir_arena_strdup(a, name ? name : "x"))) return NULL;
  n->type = type;
  return (relay_var *)ir_node_finish(a, &n->h);
}

relay_expr *relay_global_new(ir_arena *a, const char *name, relay_type *type) {
  if (!name) return NULL;
  relay_global *n = node_alloc(a, RELAY_GLOBAL);
  if (!n || !(n->name = ir_arena_strdup(a, name))) return NULL;
  n->type = type;
  return ir_node_finish(a, &n->h);
}

relay_expr *relay_const_new(ir_arena *a, relay_type *type, const void *data, int64_t nbytes) {
  if (!type || nbytes < 0 || (nbytes && !data)) return NULL;
  relay_const *n = node_alloc(a, RELAY_CONST);
  if (!n) return NULL;
  n->type = type;
  n->nbytes = nbytes;
  if (nbytes) {
    if (!(n->data = ir_arena_alloc(a, (size_t)nbytes))) return NULL;
    memcpy(n->data, data, (size_t)nbytes);
  }
  return ir_node_finish(a, &n->h);
}

relay_expr *relay_scalar_f32(ir_arena *a, float v) {
  return relay_const_new(a, relay_tensor_type_new(a, KILN_FLOAT32, 0, NULL), &v, sizeof v);
}

/* Puts the given attributes into the op's schema order, filling defaults; unknown keys and
 * kinds that differ from the schema are errors. */
static bool normalize_attrs(ir_arena *a, const relay_op *op, int nattrs,
                            relay_attr *const *attrs, relay_attr **out) {
  for (int i = 0; i < nattrs; i++) {
    if (!attrs[i]) return false;
    int j = 0;
    while (j < op->nattrs && strcmp(op->attrs[j].key, attrs[i]->key) != 0) j++;
    if (j == op->nattrs) {
      ir_fail(a->ctx, a->span, KILN_ERR_TYPE, "%s has no attribute '%s'", op->name, attrs[i]->key);
      return false;
    }
    int want = op->attrs[j].kind, got = attrs[i]->attr_kind;
    /* an int where a float is expected is accepted and converted */
    if (want == RELAY_ATTR_FLOAT && got == RELAY_ATTR_INT) {
      out[j] = relay_attr_float(a, attrs[i]->key, (double)attrs[i]->i);
      if (!out[j]) return false;
      continue;
    }
    if (want != got) {
      static const char *const kinds[] = {"an integer", "a float", "a string", "a list of integers"};
      ir_fail(a->ctx, a->span, KILN_ERR_TYPE, "%s: attribute '%s' must be %s", op->name,
              attrs[i]->key, kinds[want]);
      return false;
    }
    out[j] = attrs[i];
  }
  for (int j = 0; j < op->nattrs; j++) {
    if (out[j]) continue;
    const relay_attr_def *d = &op->attrs[j];
    switch (d->kind) {
    case RELAY_ATTR_INT: out[j] = relay_attr_int(a, d->key, d->i); break;
    case RELAY_ATTR_FLOAT: out[j] = relay_attr_float(a, d->key, d->f); break;
    case RELAY_ATTR_STR: out[j] = relay_attr_str(a, d->key, d->s ? d->s : ""); break;
    case RELAY_ATTR_INTS: out[j] = relay_attr_ints(a, d->key, d->nints, d->ints); break;
    }
    if (!out[j]) return false;
  }
  return true;
}

relay_expr *relay_call_op(ir_arena *a, const char *opname, int nargs, relay_expr *const *args,
                          int nattrs, relay_attr *const *attrs) {
  if (!opname || any_null(nargs, (void *const *)args) || any_null(nattrs, (void *const *)attrs))
    return NULL;
  const relay_op *op = relay_op_lookup(opname);
  if (!op) {
    ir_fail(a->ctx, a->span, KILN_ERR_UNDEFINED, "unknown op '%s'", opname);
    return NULL;
  }
  relay_attr *norm[32] = {0};
  if (op->nattrs > 32) return NULL;
  if (!normalize_attrs(a, op, nattrs, attrs, norm)) return NULL;
  relay_call *n = node_alloc(a, RELAY_CALL);
  if (!n || !(n->op = ir_arena_strdup(a, op->name))) return NULL;
  n->opdef = op;
  n->nargs = nargs;
  COPY_ARRAY(n->args, nargs, args);
  n->nattrs = op->nattrs;
  COPY_ARRAY(n->attrs, op->nattrs, norm);
  return ir_node_finish(a, &n->h);
}

relay_expr *relay_call_fn(ir_arena *a, relay_expr *fn, int nargs, relay_expr *const *args) {
  if (!fn) return NULL;
  relay_call *n = node_alloc(a, RELAY_CALL);
  if (!n) return NULL;
  n->fn = fn;
  n->nargs = nargs;
  COPY_ARRAY(n->args, nargs, args);
  return ir_node_finish(a, &n->h);
}

relay_expr *relay_tuple_new(ir_arena *a, int cnt, relay_expr *const *fields) {
  relay_tuple *n = node_alloc(a, RELAY_TUPLE);
  if (!n) return NULL;
  n->nfields = cnt;
  COPY_ARRAY(n->fields, cnt, fields);
  return ir_node_finish(a, &n->h);
}

relay_expr *relay_proj_new(ir_arena *a, relay_expr *tuple, int index) {
  if (!tuple) return NULL;
  relay_proj *n = node_alloc(a, RELAY_PROJ);
  if (!n) return NULL;
  n->tuple = tuple;
  n->index = index;
  return ir_node_finish(a, &n->h);
}

relay_expr *relay_let_new(ir_arena *a, relay_var *var, relay_expr *value, relay_expr *body) {
  if (!var || !value || !body) return NULL;
  relay_let *n = node_alloc(a, RELAY_LET);
  if (!n) return NULL;
  n->var = var;
  n->value = value;
  n->body = body;
  return ir_node_finish(a, &n->h);
}

relay_expr *relay_func_new(ir_arena *a, int nparams, relay_var *const *params,
                           relay_type *ret_type, relay_expr *body, int nattrs,
                           relay_attr *const *attrs) {
  if (!body) return NULL;
  relay_func *n = node_alloc(a, RELAY_FUNC);
  if (!n) return NULL;
  n->nparams = nparams;
  COPY_ARRAY(n->params, nparams, params);
  n->ret_type = ret_type;
  n->body = body;
  n->nattrs = nattrs;
  COPY_ARRAY(n->attrs, nattrs, attrs);
  return ir_node_finish(a, &n->h);
}

relay_expr *relay_if_new(ir_arena *a, relay_expr *cond, relay_expr *then_branch,
                         relay_expr *else_branch) {
  if (!cond || !then_branch || !else_branch) return NULL;
  relay_if *n = node_alloc(a, RELAY_IF);
  if (!n) return NULL;
  n->cond = cond;
  n->then_branch = then_branch;
  n->else_branch = else_branch;
  return ir_node_finish(a, &n->h);
}

/* ---- Attributes and types ------------------------------------------------------------ */

const relay_attr *relay_attr_find(int n, relay_attr *const *attrs, const char *key) {
  for (int i = 0; i < n; i++)
    if (attrs[i] && strcmp(attrs[i]->key, key) == 0) return attrs[i];
  return NULL;
}

bool relay_func_is_primitive(const relay_func *f) {
  const relay_attr *p = relay_attr_find(f->nattrs, f->attrs, "primitive");
  return p && p->attr_kind == RELAY_ATTR_INT && p->i != 0;
}

/* Whether two dimension expressions are the same tree (variables by identity), without
 * allocating. */
static bool dims_same(const ir_expr *x, const ir_expr *y) {
  if (x == y) return true;
  if (!x || !y || x->kind != y->kind || !ir_dt_eq(x->dtype, y->dtype)) return false;
  const ir_int_imm *cx = ir_as_int(x), *cy = ir_as_int(y);
  if (cx) return cx->value == cy->value;
  const ir_binary *bx = ir_as_binary(x), *by = ir_as_binary(y);
  return bx && dims_same(bx->a, by->a) && dims_same(bx->b, by->b);
}

/* Whether two dimensions are equal: the same tree, or their difference simplifies to 0.
 * *oom is set when the simplification could not allocate (the answer is then false). */
static bool dims_equal(ir_arena *scratch, ir_expr *x, ir_expr *y, bool *oom) {
  if (dims_same(x, y)) return true;
  if (ir_as_int(x) && ir_as_int(y)) return false;
  ir_analyzer *an = ir_analyzer_new(scratch);
  ir_expr *d = an ? ir_simplify_expr(an, ir_sub(scratch, x, y)) : NULL;
  ir_analyzer_free(an);
  if (!d) *oom = true;
  ir_int_imm *c = ir_as_int(d);
  return c && c->value == 0;
}

bool relay_type_equal(ir_arena *scratch, const relay_type *a, const relay_type *b) {
  bool oom = false;
  return type_equal(scratch, a, b, &oom);
}

/* relay_type_equal that tells an allocation failure (*oom) from a real difference. */
static bool type_equal(ir_arena *scratch, const relay_type *a, const relay_type *b, bool *oom) {
  if (a == b) return true;
  if (!a || !b || a->kind != b->kind) return false;
  switch (a->kind) {
  case RELAY_TENSOR_TYPE: {
    const relay_tensor_type *x = (const relay_tensor_type *)a, *y = (const relay_tensor_type *)b;
    if (!ir_dt_eq(a->dtype, b->dtype) || x->ndim != y->ndim) return false;
    for (int i = 0; i < x->ndim; i++)
      if (!dims_equal(scratch, x->shape[i], y->shape[i], oom)) return false;
    return true;
  }
  case RELAY_TUPLE_TYPE: {
    const relay_tuple_type *x = (const relay_tuple_type *)a, *y = (const relay_tuple_type *)b;
    if (x->nfields != y->nfields) return false;
    for (int i = 0; i < x->nfields; i++)
      if (!type_equal(scratch, x->fields[i], y->fields[i], oom)) return false;
    return true;
  }
  case RELAY_FUNC_TYPE: {
    const relay_func_type *x = (const relay_func_type *)a, *y = (const relay_func_type *)b;
    if (x->nparams != y->nparams || !type_equal(scratch, x->ret, y->ret, oom)) return false;
    for (int i = 0; i < x->nparams; i++)
      if (!type_equal(scratch, x->params[i], y->params[i], oom)) return false;
    return true;
  }
  }
  return false;
}

void relay_type_print(ir_strbuf *sb, const relay_type *t) {
  char dt[32];
  switch (t ? t->kind : -1) {
  case RELAY_TENSOR_TYPE: {
    const relay_tensor_type *x = (const relay_tensor_type *)t;
    ir_sb_puts(sb, "Tensor[(");
    for (int i = 0; i < x->ndim; i++) {
      if (i) ir_sb_puts(sb, ", ");
      ir_int_imm *c = ir_as_int(x->shape[i]);
      if (c) ir_sb_printf(sb, "%lld", (long long)c->value);
      else ir_print_node(sb->ctx, x->shape[i], sb);
    }
    ir_sb_printf(sb, "%s), %s]", x->ndim == 1 ? "," : "", kiln_dtype_str(t->dtype, dt, sizeof dt));
    return;
  }
  case RELAY_TUPLE_TYPE: {
    const relay_tuple_type *x = (const relay_tuple_type *)t;
    ir_sb_puts(sb, "(");
    for (int i = 0; i < x->nfields; i++) {
      if (i) ir_sb_puts(sb, ", ");
      relay_type_print(sb, x->fields[i]);
    }
    ir_sb_puts(sb, x->nfields == 1 ? ",)" : ")");
    return;
  }
  case RELAY_FUNC_TYPE: {
    const relay_func_type *x = (const relay_func_type *)t;
    ir_sb_puts(sb, "fn (");
    for (int i = 0; i < x->nparams; i++) {
      if (i) ir_sb_puts(sb, ", ");
      relay_type_print(sb, x->params[i]);
    }
    ir_sb_puts(sb, ") -> ");
    relay_type_print(sb, x->ret);
    return;
  }
  }
  ir_sb_puts(sb, "?");
}

int64_t relay_type_numel(const relay_type *t) {
  const relay_tensor_type *x = relay_as_tensor_type(t);
  if (!x) return -1;
  int64_t n = 1;
  for (int i = 0; i < x->ndim; i++) {
    ir_int_imm *c = ir_as_int(x->shape[i]);
    if (!c || c->value < 0) return -1;
    if (c->value && n > INT64_MAX / c->value) return -1;
    n *= c->value;
  }
  return n;
}

/* ---- Modules ----------------------------------------------------------------------- */

relay_module *relay_module_new(kiln_context *ctx) {
  relay_module *m = ir_malloc(ctx, sizeof *m);
  if (!m) return NULL;
  memset(m, 0, sizeof *m);
  m->ctx = ctx;
  if (!(m->arena = ir_arena_new(ctx))) {
    ir_free(ctx, m, sizeof *m);
    return NULL;
  }
  return m;
}

void relay_module_free(relay_module *m) {
  if (!m) return;
  ir_arena_free(m->arena);
  ir_free(m->ctx, m, sizeof *m);
}

relay_func *relay_module_get(const relay_module *m, const char *name) {
  for (int i = 0; i < m->nfuncs; i++)
    if (strcmp(m->names[i], name) == 0) return m->funcs[i];
  return NULL;
}

kiln_status relay_module_set(relay_module *m, const char *name, relay_func *f) {
  if (!f || !name) return m->ctx->code ? m->ctx->code : KILN_ERR_MISUSE;
  for (int i = 0; i < m->nfuncs; i++)
    if (strcmp(m->names[i], name) == 0) {
      m->funcs[i] = f;
      return KILN_OK;
    }
  const char **names = ir_arena_alloc(m->arena, sizeof(char *) * (size_t)(m->nfuncs + 1));
  relay_func **funcs = ir_arena_alloc(m->arena, sizeof(relay_func *) * (size_t)(m->nfuncs + 1));
  const char *copy = ir_arena_strdup(m->arena, name);
  if (!names || !funcs || !copy) return KILN_ERR_NOMEM;
  if (m->nfuncs) {
    memcpy(names, m->names, sizeof(char *) * (size_t)m->nfuncs);
    memcpy(funcs, m->funcs, sizeof(relay_func *) * (size_t)m->nfuncs);
  }
  names[m->nfuncs] = copy;
  funcs[m->nfuncs] = f;
  m->names = names;
  m->funcs = funcs;
  m->nfuncs++;
  return KILN_OK;
}

ir_var *relay_module_dim(relay_module *m, const char *name) {
  for (int i = 0; i < m->ndims; i++)
    if (strcmp(m->dims[i]->name, name) == 0) return m->dims[i];
  ir_var *v = ir_var_new(m->arena, name, KILN_INT64);
  ir_var **dims = ir_arena_alloc(m->arena, sizeof(ir_var *) * (size_t)(m->ndims + 1));
  if (!v || !dims) return NULL;
  if (m->ndims) memcpy(dims, m->dims, sizeof(ir_var *) * (size_t)m->ndims);
  dims[m->ndims++] = v;
  m->dims = dims;
  return v;
}

/* node.c: the node-kind table with its field descriptors, the constructors with their typing
 * rules, the generic visitor and mutator, substitution, and TIR modules. Printing, equality,
 * hashing, simplification and interpretation live in their own files and use these. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "node.h"

/* ---- The kind table ---------------------------------------------------------------- */

#define F(S, kind, field) {#field, IR_F_##kind, offsetof(S, field), 0}
#define FA(S, kind, field, count) {#field, IR_F_##kind, offsetof(S, field), offsetof(S, count)}

/* Field lists, one per struct. Order matters for equality and hashing: a definition comes
 * after the expressions evaluated outside its scope and before those inside it. */
#define FIELDS_ir_int_imm 1, {F(ir_int_imm, I64, value)}
#define FIELDS_ir_float_imm 1, {F(ir_float_imm, F64, value)}
#define FIELDS_ir_str_imm 1, {F(ir_str_imm, STR, value)}
#define FIELDS_ir_var 1, {F(ir_var, NAME, name)}
#define FIELDS_ir_binary 2, {F(ir_binary, NODE, a), F(ir_binary, NODE, b)}
#define FIELDS_ir_not 1, {F(ir_not, NODE, a)}
#define FIELDS_ir_select 3, {F(ir_select, NODE, cond), F(ir_select, NODE, t), F(ir_select, NODE, f)}
#define FIELDS_ir_cast 1, {F(ir_cast, NODE, value)}
#define FIELDS_ir_ramp 3, {F(ir_ramp, NODE, base), F(ir_ramp, NODE, stride), F(ir_ramp, I32, lanes)}
#define FIELDS_ir_broadcast 2, {F(ir_broadcast, NODE, value), F(ir_broadcast, I32, lanes)}
#define FIELDS_ir_load 2, {F(ir_load, REF, buffer), FA(ir_load, NODES, indices, nindices)}
#define FIELDS_ir_call 2, {F(ir_call, I32, op), FA(ir_call, NODES, args, nargs)}
#define FIELDS_ir_let 3, {F(ir_let, NODE, value), F(ir_let, DEF, var), F(ir_let, NODE, body)}
#define FIELDS_ir_store \
  3, {F(ir_store, REF, buffer), F(ir_store, NODE, value), FA(ir_store, NODES, indices, nindices)}
#define FIELDS_ir_for                                                                   \
  6, {F(ir_for, NODE, min), F(ir_for, NODE, extent), F(ir_for, DEF, var),               \
      F(ir_for, I32, for_kind), FA(ir_for, NODES, annots, nannots), F(ir_for, NODE, body)}
#define FIELDS_ir_if \
  3, {F(ir_if, NODE, cond), F(ir_if, NODE, then_case), F(ir_if, NODE, else_case)}
#define FIELDS_ir_seq 1, {FA(ir_seq, NODES, stmts, nstmts)}
#define FIELDS_ir_let_stmt \
  3, {F(ir_let_stmt, NODE, value), F(ir_let_stmt, DEF, var), F(ir_let_stmt, NODE, body)}
#define FIELDS_ir_allocate 2, {F(ir_allocate, DEF, buffer), F(ir_allocate, NODE, body)}
#define FIELDS_ir_evaluate 1, {F(ir_evaluate, NODE, value)}
#define FIELDS_ir_block                                                                     \
  8, {F(ir_block, STR, name),          FA(ir_block, NODES, iters, niters),                  \
      FA(ir_block, DEFS, allocs, nallocs), FA(ir_block, NODES, reads, nreads),              \
      FA(ir_block, NODES, writes, nwrites), FA(ir_block, NODES, annots, nannots),           \
      F(ir_block, NODE, init),         F(ir_block, NODE, body)}
#define FIELDS_ir_block_realize                                   \
  3, {FA(ir_block_realize, NODES, values, nvalues),               \
      F(ir_block_realize, NODE, predicate), F(ir_block_realize, NODE, block)}
#define FIELDS_ir_buffer                                                                   \
  6, {F(ir_buffer, NAME, name), FA(ir_buffer, NODES, shape, ndim),                         \
      FA(ir_buffer, NODES, strides, nstrides), F(ir_buffer, NODE, elem_offset),            \
      F(ir_buffer, I32, align), F(ir_buffer, STR, scope)}
#define FIELDS_ir_iter_var                                                      \
  4, {F(ir_iter_var, NODE, min), F(ir_iter_var, NODE, extent), F(ir_iter_var, DEF, var), \
      F(ir_iter_var, I32, iter_type)}
#define FIELDS_ir_range 2, {F(ir_range, NODE, min), F(ir_range, NODE, extent)}
#define FIELDS_ir_region 2, {F(ir_region, REF, buffer), FA(ir_region, NODES, ranges, nranges)}
#define FIELDS_ir_annot 2, {F(ir_annot, STR, key), F(ir_annot, NODE, value)}
#define FIELDS_ir_func                                                              \
  4, {F(ir_func, NAME, name), FA(ir_func, DEFS, params, nparams),                   \
      FA(ir_func, NODES, attrs, nattrs), F(ir_func, NODE, body)}

#define KIND_INFO(e, n, s, c) \
  [IR_##e] = {n, c, sizeof(s), FIELDS_##s, IR_##e == IR_VAR ? IR_KIND_BINDING : 0},
const ir_kind_info ir_kinds[IR_KIND_COUNT] = {IR_NODE_KINDS(KIND_INFO)};
#undef KIND_INFO

/* The registered extension table (one layer registers: the graph IR). */
static const ir_kind_table *ext_kinds;

void ir_register_kinds(const ir_kind_table *t) { ext_kinds = t; }

const ir_kind_info *ir_kind_info_of(int kind) {
  if (kind >= 0 && kind < IR_KIND_COUNT) return &ir_kinds[kind];
  const ir_kind_table *t = ext_kinds;
  if (t && kind >= t->first && kind < t->first + t->count) return &t->infos[kind - t->first];
  return NULL;
}

static const struct {
  const char *name;
  int arity;
} intrinsics[IR_OP_COUNT] = {
#define X(e, n, a) [IR_OP_##e] = {n, a},
    IR_INTRINSICS(X)
#undef X
};

const char *ir_intrinsic_name(int op) {
  return op >= 0 && op < IR_OP_COUNT ? intrinsics[op].name : "?";
}

int ir_intrinsic_arity(int op) { return op >= 0 && op < IR_OP_COUNT ? intrinsics[op].arity : -1; }

int ir_intrinsic_lookup(const char *s, size_t len) {
  for (int i = 0; i < IR_OP_COUNT; i++)
    if (strlen(intrinsics[i].name) == len && memcmp(intrinsics[i].name, s, len) == 0) return i;
  return -1;
}

const char *ir_for_kind_name(int k) {
  static const char *const names[IR_FOR_KIND_COUNT] = {"serial", "parallel", "vectorized",
                                                       "unrolled"};
  return k >= 0 && k < IR_FOR_KIND_COUNT ? names[k] : "?";
}

const char *ir_iter_type_name(int t) {
  static const char *const names[IR_ITER_TYPE_COUNT] = {"spatial", "reduce"};
  return t >= 0 && t < IR_ITER_TYPE_COUNT ? names[t] : "?";
}

/* ---- Field access ------------------------------------------------------------------ */

#define FIELD_PTR(n, f) ((char *)(n) + (f)->offset)
static ir_node *field_node(const ir_node *n, const ir_field *f) {
  return *(ir_node **)FIELD_PTR(n, f);
}
static int32_t field_count(const ir_node *n, const ir_field *f) {
  return *(int32_t *)((char *)(n) + f->count_offset);
}
static ir_node **field_nodes(const ir_node *n, const ir_field *f) {
  return *(ir_node ***)FIELD_PTR(n, f);
}

uint64_t ir_hash_extra(uint64_t h, const ir_node *n, const ir_field *f) {
  if (f->kind == IR_F_I64S) {
    int32_t cnt = field_count(n, f);
    const int64_t *v = *(int64_t *const *)FIELD_PTR(n, f);
    h = ir_hash_mix(h, (uint64_t)cnt);
    for (int32_t j = 0; j < cnt; j++) h = ir_hash_mix(h, (uint64_t)v[j]);
    return h;
  }
  int64_t size = *(const int64_t *)((const char *)n + f->count_offset);
  const unsigned char *p = *(const unsigned char *const *)FIELD_PTR(n, f);
  h = ir_hash_mix(h, (uint64_t)size);
  uint64_t w = 0xcbf29ce484222325ull; /* FNV-1a over the bytes, eight at a time */
  int64_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t x;
    memcpy(&x, p + i, 8);
    w = (w ^ x) * 0x100000001b3ull;
  }
  for (; i < size; i++) w = (w ^ p[i]) * 0x100000001b3ull;
  return ir_hash_mix(h, w);
}

bool ir_fields_extra_equal(const ir_node *a, const ir_node *b, const ir_field *f) {
  if (f->kind == IR_F_I64S) {
    int32_t na = field_count(a, f), nb = field_count(b, f);
    return na == nb && (na == 0 || memcmp(*(int64_t *const *)FIELD_PTR(a, f),
                                          *(int64_t *const *)FIELD_PTR(b, f),
                                          sizeof(int64_t) * (size_t)na) == 0);
  }
  int64_t sa = *(const int64_t *)((const char *)a + f->count_offset);
  int64_t sb = *(const int64_t *)((const char *)b + f->count_offset);
  return sa == sb && (sa == 0 || memcmp(*(void *const *)FIELD_PTR(a, f),
                                        *(void *const *)FIELD_PTR(b, f), (size_t)sa) == 0);
}

/* The content hash of the header: kind, dtype, structural scalars and the children's own
 * content hashes. Names are left out; a variable hashes as its kind and dtype. */
static uint64_t content_hash(const ir_node *n) {
  const ir_kind_info *k = ir_kind_info_of(n->kind);
  uint64_t h = ir_hash_mix(0x6b696c6e, n->kind);
  h = ir_hash_mix(h, (uint64_t)n->dtype.code << 32 | (uint64_t)n->dtype.bits << 16 | n->dtype.lanes);
  for (int i = 0; i < k->nfields; i++) {
    const ir_field *f = &k->fields[i];
    switch ((ir_field_kind)f->kind) {
    case IR_F_NODE:
    case IR_F_DEF:
    case IR_F_REF: {
      ir_node *c = field_node(n, f);
      h = ir_hash_mix(h, c ? c->hash : 0);
      break;
    }
    case IR_F_NODES:
    case IR_F_DEFS: {
      int32_t cnt = field_count(n, f);
      ir_node **arr = field_nodes(n, f);
      h = ir_hash_mix(h, (uint64_t)cnt);
      for (int32_t j = 0; j < cnt; j++) h = ir_hash_mix(h, arr[j] ? arr[j]->hash : 0);
      break;
    }
    case IR_F_I32: h = ir_hash_mix(h, (uint64_t)(int64_t) * (int32_t *)FIELD_PTR(n, f)); break;
    case IR_F_I64: h = ir_hash_mix(h, (uint64_t) * (int64_t *)FIELD_PTR(n, f)); break;
    case IR_F_F64: h = ir_hash_f64(h, *(double *)FIELD_PTR(n, f)); break;
    case IR_F_STR: h = ir_hash_str(h, *(const char **)FIELD_PTR(n, f)); break;
    case IR_F_NAME: break;
    case IR_F_I64S:
    case IR_F_BYTES: h = ir_hash_extra(h, n, f); break;
    }
  }
  return h;
}

/* ---- Validation -------------------------------------------------------------------- */

static const char *dts(kiln_dtype t, char *buf) { return kiln_dtype_str(t, buf, 32); }

static ir_node *type_error(ir_arena *a, const ir_node *n, const char *fmt, kiln_dtype x,
                           kiln_dtype y) {
  char bx[32], by[32];
  char msg[256];
  snprintf(msg, sizeof msg, fmt, dts(x, bx), dts(y, by));
  ir_fail(a->ctx, n->span, KILN_ERR_TYPE, "%s: %s", ir_kind_name(n->kind), msg);
  return NULL;
}

static ir_node *bad(ir_arena *a, const ir_node *n, kiln_status code, const char *msg) {
  ir_fail(a->ctx, n->span, code, "%s: %s", ir_kind_name(n->kind), msg);
  return NULL;
}

/* A child that must be an expression (an integer one when `integer`). */
static bool check_expr(ir_arena *a, const ir_node *n, const ir_node *c, const char *what) {
  if (!c) {
    ir_fail(a->ctx, n->span, KILN_ERR_TYPE, "%s: missing %s", ir_kind_name(n->kind), what);
    return false;
  }
  if (!ir_is_expr(c)) {
    ir_fail(a->ctx, n->span, KILN_ERR_TYPE, "%s: %s must be an expression, not a %s",
            ir_kind_name(n->kind), what, ir_kind_name(c->kind));
    return false;
  }
  return true;
}

static bool check_index(ir_arena *a, const ir_node *n, const ir_node *c, const char *what) {
  if (!check_expr(a, n, c, what)) return false;
  if (!ir_dt_is_int(c->dtype)) {
    char b[32];
    ir_fail(a->ctx, n->span, KILN_ERR_TYPE, "%s: %s must be an integer, not %s",
            ir_kind_name(n->kind), what, dts(c->dtype, b));
    return false;
  }
  return true;
}

static bool check_stmt(ir_arena *a, const ir_node *n, const ir_node *c, const char *what) {
  if (!c) {
    ir_fail(a->ctx, n->span, KILN_ERR_TYPE, "%s: missing %s", ir_kind_name(n->kind), what);
    return false;
  }
  if (!ir_is_stmt(c)) {
    ir_fail(a->ctx, n->span, KILN_ERR_TYPE, "%s: %s must be a statement, not a %s",
            ir_kind_name(n->kind), what, ir_kind_name(c->kind));
    return false;
  }
  return true;
}

static bool check_kind(ir_arena *a, const ir_node *n, const ir_node *c, int kind,
                       const char *what) {
  if (c && c->kind == kind) return true;
  ir_fail(a->ctx, n->span, KILN_ERR_TYPE, "%s: %s must be a %s, not %s", ir_kind_name(n->kind),
          what, ir_kind_name(kind), c ? ir_kind_name(c->kind) : "nothing");
  return false;
}

static bool fits(int64_t v, kiln_dtype t) {
  if (t.code == KILN_TYPE_BOOL) return v == 0 || v == 1;
  if (t.bits >= 64) return t.code == KILN_TYPE_INT || v >= 0;
  if (t.code == KILN_TYPE_UINT) return v >= 0 && v < ((int64_t)1 << t.bits);
  int64_t lim = (int64_t)1 << (t.bits - 1);
  return v >= -lim && v < lim;
}

/* The lane count that a list of indices gives an access (all vector indices must agree), or
 * -1 when they disagree. */
static int access_lanes(int n, ir_expr *const *idx) {
  int lanes = 1;
  for (int i = 0; i < n; i++) {
    int l = idx[i]->dtype.lanes;
    if (l == 1) continue;
    if (lanes != 1 && lanes != l) return -1;
    lanes = l;
  }
  return lanes;
}

static bool check_access(ir_arena *a, ir_node *n, ir_buffer *buf, int nidx, ir_expr **idx,
                         int *lanes) {
  if (!check_kind(a, n, &buf->h, IR_BUFFER, "the accessed buffer")) return false;
  if (nidx != buf->ndim) {
    ir_fail(a->ctx, n->span, KILN_ERR_SHAPE, "%s: buffer '%s' has %d dimensions but %d indices are given",
            ir_kind_name(n->kind), buf->name, (int)buf->ndim, nidx);
    return false;
  }
  for (int i = 0; i < nidx; i++)
    if (!check_index(a, n, idx[i], "an index")) return false;
  *lanes = access_lanes(nidx, idx);
  if (*lanes < 0) {
    bad(a, n, KILN_ERR_TYPE, "vector indices have different lane counts");
    return false;
  }
  return true;
}

static bool check_annots(ir_arena *a, ir_node *n, int cnt, ir_annot **annots) {
  for (int i = 0; i < cnt; i++)
    if (!check_kind(a, n, annots[i] ? &annots[i]->h : NULL, IR_ANNOT, "an annotation"))
      return false;
  return true;
}

/* Validates n and derives its dtype. Exhaustive over kinds: a new kind must say its rule. */
static ir_node *check_node(ir_arena *a, ir_node *n) {
  char b1[32];
  switch ((ir_kind)n->kind) {
  case IR_INT_IMM: {
    ir_int_imm *x = (ir_int_imm *)n;
    if (!(ir_dt_is_int(n->dtype) || ir_dt_is_bool(n->dtype)) || n->dtype.lanes != 1)
      return type_error(a, n, "an integer constant cannot have type %s", n->dtype, n->dtype);
    if (!fits(x->value, n->dtype)) {
      ir_fail(a->ctx, n->span, KILN_ERR_TYPE, "int_imm: %lld does not fit in %s",
              (long long)x->value, dts(n->dtype, b1));
      return NULL;
    }
    return n;
  }
  case IR_FLOAT_IMM:
    if (!ir_dt_is_float(n->dtype) || n->dtype.lanes != 1)
      return type_error(a, n, "a float constant cannot have type %s", n->dtype, n->dtype);
    return n;
  case IR_STR_IMM:
    n->dtype = KILN_HANDLE;
    return n;
  case IR_VAR:
    if (n->dtype.code == KILN_TYPE_VOID || n->dtype.lanes != 1)
      return type_error(a, n, "a variable cannot have type %s", n->dtype, n->dtype);
    return n;
  case IR_ADD:
  case IR_SUB:
  case IR_MUL:
  case IR_DIV:
  case IR_MOD:
  case IR_FLOORDIV:
  case IR_FLOORMOD:
  case IR_MIN:
  case IR_MAX:
  case IR_EQ:
  case IR_NE:
  case IR_LT:
  case IR_LE:
  case IR_GT:
  case IR_GE:
  case IR_AND:
  case IR_OR: {
    ir_binary *x = (ir_binary *)n;
    if (!check_expr(a, n, x->a, "the left operand") || !check_expr(a, n, x->b, "the right operand"))
      return NULL;
    kiln_dtype t = x->a->dtype;
    if (!ir_dt_eq(t, x->b->dtype))
      return type_error(a, n, "operand types differ (%s vs %s)", t, x->b->dtype);
    if (n->kind == IR_AND || n->kind == IR_OR) {
      if (!ir_dt_is_bool(t)) return type_error(a, n, "operands must be bool, not %s", t, t);
      n->dtype = t;
    } else if (n->kind >= IR_EQ) {
      if (t.code == KILN_TYPE_HANDLE)
        return type_error(a, n, "cannot compare %s values", t, t);
      n->dtype = ir_dt_with_lanes(KILN_BOOL, t.lanes);
    } else {
      if (!ir_dt_is_int(t) && !ir_dt_is_float(t))
        return type_error(a, n, "arithmetic needs numbers, not %s", t, t);
      n->dtype = t;
    }
    return n;
  }
  case IR_NOT: {
    ir_not *x = (ir_not *)n;
    if (!check_expr(a, n, x->a, "the operand")) return NULL;
    if (!ir_dt_is_bool(x->a->dtype))
      return type_error(a, n, "operand must be bool, not %s", x->a->dtype, x->a->dtype);
    n->dtype = x->a->dtype;
    return n;
  }
  case IR_SELECT: {
    ir_select *x = (ir_select *)n;
    if (!check_expr(a, n, x->cond, "the condition") || !check_expr(a, n, x->t, "the true value") ||
        !check_expr(a, n, x->f, "the false value"))
      return NULL;
    if (!ir_dt_eq(x->t->dtype, x->f->dtype))
      return type_error(a, n, "branch types differ (%s vs %s)", x->t->dtype, x->f->dtype);
    if (!ir_dt_is_bool(x->cond->dtype) ||
        (x->cond->dtype.lanes != 1 && x->cond->dtype.lanes != x->t->dtype.lanes))
      return type_error(a, n, "condition must be bool with 1 or the values' lanes, not %s",
                        x->cond->dtype, KILN_VOID);
    n->dtype = x->t->dtype;
    return n;
  }
  case IR_CAST: {
    ir_cast *x = (ir_cast *)n;
    if (!check_expr(a, n, x->value, "the value")) return NULL;
    if (n->dtype.code == KILN_TYPE_VOID || n->dtype.code == KILN_TYPE_HANDLE)
      return type_error(a, n, "cannot cast to %s", n->dtype, n->dtype);
    if (x->value->dtype.code == KILN_TYPE_HANDLE)
      return type_error(a, n, "cannot cast a %s value%s", x->value->dtype, KILN_VOID);
    if (n->dtype.lanes != x->value->dtype.lanes)
      return type_error(a, n, "lane counts differ (%s from %s)", n->dtype, x->value->dtype);
    return n;
  }
  case IR_RAMP: {
    ir_ramp *x = (ir_ramp *)n;
    if (!check_index(a, n, x->base, "the base") || !check_index(a, n, x->stride, "the stride"))
      return NULL;
    if (!ir_dt_eq(x->base->dtype, x->stride->dtype) || x->base->dtype.lanes != 1)
      return type_error(a, n, "base and stride must be scalars of one type (%s, %s)",
                        x->base->dtype, x->stride->dtype);
    if (x->lanes < 2 || x->lanes > 65535) return bad(a, n, KILN_ERR_TYPE, "lanes must be 2..65535");
    n->dtype = ir_dt_with_lanes(x->base->dtype, x->lanes);
    return n;
  }
  case IR_BROADCAST: {
    ir_broadcast *x = (ir_broadcast *)n;
    if (!check_expr(a, n, x->value, "the value")) return NULL;
    if (x->value->dtype.lanes != 1)
      return type_error(a, n, "the value must be a scalar, not %s", x->value->dtype, x->value->dtype);
    if (x->lanes < 2 || x->lanes > 65535) return bad(a, n, KILN_ERR_TYPE, "lanes must be 2..65535");
    n->dtype = ir_dt_with_lanes(x->value->dtype, x->lanes);
    return n;
  }
  case IR_LOAD: {
    ir_load *x = (ir_load *)n;
    int lanes;
    if (!check_access(a, n, x->buffer, x->nindices, x->indices, &lanes)) return NULL;
    n->dtype = ir_dt_with_lanes(x->buffer->h.dtype, lanes);
    return n;
  }
  case IR_CALL: {
    ir_call *x = (ir_call *)n;
    if (x->op < 0 || x->op >= IR_OP_COUNT) return bad(a, n, KILN_ERR_TYPE, "unknown intrinsic");
    if (x->nargs != intrinsics[x->op].arity) {
      ir_fail(a->ctx, n->span, KILN_ERR_TYPE, "call: %s takes %d arguments, not %d",
              intrinsics[x->op].name, intrinsics[x->op].arity, (int)x->nargs);
      return NULL;
    }
    for (int i = 0; i < x->nargs; i++) {
      if (!check_expr(a, n, x->args[i], "an argument")) return NULL;
      if (!ir_dt_eq(x->args[i]->dtype, x->args[0]->dtype))
        return type_error(a, n, "argument types differ (%s vs %s)", x->args[0]->dtype,
                          x->args[i]->dtype);
    }
    kiln_dtype t = x->args[0]->dtype;
    bool int_ok = x->op == IR_OP_FABS;
    if (!ir_dt_is_float(t) && !(int_ok && ir_dt_is_int(t))) {
      ir_fail(a->ctx, n->span, KILN_ERR_TYPE, "call: %s needs float arguments, not %s",
              intrinsics[x->op].name, dts(t, b1));
      return NULL;
    }
    n->dtype = t;
    return n;
  }
  case IR_LET: {
    ir_let *x = (ir_let *)n;
    if (!check_kind(a, n, &x->var->h, IR_VAR, "the bound name") ||
        !check_expr(a, n, x->value, "the value") || !check_expr(a, n, x->body, "the body"))
      return NULL;
    if (!ir_dt_eq(x->var->h.dtype, x->value->dtype))
      return type_error(a, n, "variable of type %s bound to a %s value", x->var->h.dtype,
                        x->value->dtype);
    n->dtype = x->body->dtype;
    return n;
  }
  case IR_STORE: {
    ir_store *x = (ir_store *)n;
    int lanes;
    if (!check_access(a, n, x->buffer, x->nindices, x->indices, &lanes) ||
        !check_expr(a, n, x->value, "the stored value"))
      return NULL;
    kiln_dtype want = ir_dt_with_lanes(x->buffer->h.dtype, lanes);
    if (!ir_dt_eq(want, x->value->dtype))
      return type_error(a, n, "stores a %s value where %s is expected", x->value->dtype, want);
    n->dtype = KILN_VOID;
    return n;
  }
  case IR_FOR: {
    ir_for *x = (ir_for *)n;
    if (!check_kind(a, n, &x->var->h, IR_VAR, "the loop variable") ||
        !check_index(a, n, x->min, "the start") || !check_index(a, n, x->extent, "the extent") ||
        !check_stmt(a, n, x->body, "the body") || !check_annots(a, n, x->nannots, x->annots))
      return NULL;
    if (!ir_dt_is_int(x->var->h.dtype))
      return type_error(a, n, "the loop variable must be an integer, not %s", x->var->h.dtype, x->var->h.dtype);
    if (!ir_dt_eq(x->min->dtype, x->var->h.dtype) || !ir_dt_eq(x->extent->dtype, x->var->h.dtype))
      return type_error(a, n, "start and extent must have the loop variable's type %s (got %s)",
                        x->var->h.dtype, ir_dt_eq(x->min->dtype, x->var->h.dtype) ? x->extent->dtype : x->min->dtype);
    if (x->for_kind < 0 || x->for_kind >= IR_FOR_KIND_COUNT)
      return bad(a, n, KILN_ERR_TYPE, "unknown loop kind");
    n->dtype = KILN_VOID;
    return n;
  }
  case IR_IF: {
    ir_if *x = (ir_if *)n;
    if (!check_expr(a, n, x->cond, "the condition") || !check_stmt(a, n, x->then_case, "the then branch"))
      return NULL;
    if (x->else_case && !check_stmt(a, n, x->else_case, "the else branch")) return NULL;
    if (!ir_dt_eq(x->cond->dtype, KILN_BOOL))
      return type_error(a, n, "the condition must be bool, not %s", x->cond->dtype, x->cond->dtype);
    n->dtype = KILN_VOID;
    return n;
  }
  case IR_SEQ: {
    ir_seq *x = (ir_seq *)n;
    if (x->nstmts < 1) return bad(a, n, KILN_ERR_TYPE, "a sequence needs at least one statement");
    for (int i = 0; i < x->nstmts; i++)
      if (!check_stmt(a, n, x->stmts[i], "each element")) return NULL;
    n->dtype = KILN_VOID;
    return n;
  }
  case IR_LET_STMT: {
    ir_let_stmt *x = (ir_let_stmt *)n;
    if (!check_kind(a, n, &x->var->h, IR_VAR, "the bound name") ||
        !check_expr(a, n, x->value, "the value") || !check_stmt(a, n, x->body, "the body"))
      return NULL;
    if (!ir_dt_eq(x->var->h.dtype, x->value->dtype))
      return type_error(a, n, "variable of type %s bound to a %s value", x->var->h.dtype,
                        x->value->dtype);
    n->dtype = KILN_VOID;
    return n;
  }
  case IR_ALLOCATE: {
    ir_allocate *x = (ir_allocate *)n;
    if (!check_kind(a, n, &x->buffer->h, IR_BUFFER, "the allocated buffer") ||
        !check_stmt(a, n, x->body, "the body"))
      return NULL;
    n->dtype = KILN_VOID;
    return n;
  }
  case IR_EVALUATE: {
    ir_evaluate *x = (ir_evaluate *)n;
    if (!check_expr(a, n, x->value, "the value")) return NULL;
    n->dtype = KILN_VOID;
    return n;
  }
  case IR_BLOCK: {
    ir_block *x = (ir_block *)n;
    if (!x->name) return bad(a, n, KILN_ERR_TYPE, "a block needs a name");
    for (int i = 0; i < x->niters; i++)
      if (!check_kind(a, n, x->iters[i] ? &x->iters[i]->h : NULL, IR_ITER_VAR, "an iterator"))
        return NULL;
    for (int i = 0; i < x->nreads; i++)
      if (!check_kind(a, n, x->reads[i] ? &x->reads[i]->h : NULL, IR_REGION, "a read region"))
        return NULL;
    for (int i = 0; i < x->nwrites; i++)
      if (!check_kind(a, n, x->writes[i] ? &x->writes[i]->h : NULL, IR_REGION, "a write region"))
        return NULL;
    for (int i = 0; i < x->nallocs; i++)
      if (!check_kind(a, n, x->allocs[i] ? &x->allocs[i]->h : NULL, IR_BUFFER, "an allocated buffer"))
        return NULL;
    if (!check_annots(a, n, x->nannots, x->annots)) return NULL;
    if (x->init && !check_stmt(a, n, x->init, "the init")) return NULL;
    if (!check_stmt(a, n, x->body, "the body")) return NULL;
    n->dtype = KILN_VOID;
    return n;
  }
  case IR_BLOCK_REALIZE: {
    ir_block_realize *x = (ir_block_realize *)n;
    if (!check_kind(a, n, x->block ? &x->block->h : NULL, IR_BLOCK, "the realized block") ||
        !check_expr(a, n, x->predicate, "the predicate"))
      return NULL;
    if (!ir_dt_eq(x->predicate->dtype, KILN_BOOL))
      return type_error(a, n, "the predicate must be bool, not %s", x->predicate->dtype, x->predicate->dtype);
    if (x->nvalues != x->block->niters) {
      ir_fail(a->ctx, n->span, KILN_ERR_SHAPE,
              "block_realize: block '%s' has %d iterators but %d values are bound",
              x->block->name, (int)x->block->niters, (int)x->nvalues);
      return NULL;
    }
    for (int i = 0; i < x->nvalues; i++) {
      if (!check_index(a, n, x->values[i], "an iterator value")) return NULL;
      if (!ir_dt_eq(x->values[i]->dtype, x->block->iters[i]->var->h.dtype))
        return type_error(a, n, "iterator of type %s bound to a %s value",
                          x->block->iters[i]->var->h.dtype, x->values[i]->dtype);
    }
    n->dtype = KILN_VOID;
    return n;
  }
  case IR_BUFFER: {
    ir_buffer *x = (ir_buffer *)n;
    if (n->dtype.code == KILN_TYPE_VOID || n->dtype.lanes != 1)
      return type_error(a, n, "buffer elements cannot have type %s", n->dtype, n->dtype);
    if (x->nstrides != 0 && x->nstrides != x->ndim)
      return bad(a, n, KILN_ERR_SHAPE, "strides must be absent or one per dimension");
    for (int i = 0; i < x->ndim; i++)
      if (!check_index(a, n, x->shape[i], "a dimension")) return NULL;
    for (int i = 0; i < x->nstrides; i++)
      if (!check_index(a, n, x->strides[i], "a stride")) return NULL;
    if (x->elem_offset && !check_index(a, n, x->elem_offset, "the element offset")) return NULL;
    if (x->align <= 0 || (x->align & (x->align - 1)))
      return bad(a, n, KILN_ERR_TYPE, "alignment must be a positive power of two");
    if (!x->name || !x->scope) return bad(a, n, KILN_ERR_TYPE, "a buffer needs a name and a scope");
    return n;
  }
  case IR_ITER_VAR: {
    ir_iter_var *x = (ir_iter_var *)n;
    if (!check_kind(a, n, &x->var->h, IR_VAR, "the iterator") ||
        !check_index(a, n, x->min, "the domain start") || !check_index(a, n, x->extent, "the domain extent"))
      return NULL;
    if (!ir_dt_is_int(x->var->h.dtype) || !ir_dt_eq(x->min->dtype, x->var->h.dtype) ||
        !ir_dt_eq(x->extent->dtype, x->var->h.dtype))
      return type_error(a, n, "iterator of type %s with a domain of type %s", x->var->h.dtype,
                        x->extent->dtype);
    if (x->iter_type < 0 || x->iter_type >= IR_ITER_TYPE_COUNT)
      return bad(a, n, KILN_ERR_TYPE, "unknown iterator type");
    n->dtype = KILN_VOID;
    return n;
  }
  case IR_RANGE: {
    ir_range *x = (ir_range *)n;
    if (!check_index(a, n, x->min, "the start") || !check_index(a, n, x->extent, "the extent"))
      return NULL;
    n->dtype = KILN_VOID;
    return n;
  }
  case IR_REGION: {
    ir_region *x = (ir_region *)n;
    if (!check_kind(a, n, &x->buffer->h, IR_BUFFER, "the buffer")) return NULL;
    if (x->nranges != x->buffer->ndim) {
      ir_fail(a->ctx, n->span, KILN_ERR_SHAPE, "region: buffer '%s' has %d dimensions but %d ranges are given",
              x->buffer->name, (int)x->buffer->ndim, (int)x->nranges);
      return NULL;
    }
    for (int i = 0; i < x->nranges; i++)
      if (!check_kind(a, n, x->ranges[i] ? &x->ranges[i]->h : NULL, IR_RANGE, "a range")) return NULL;
    n->dtype = KILN_VOID;
    return n;
  }
  case IR_ANNOT: {
    ir_annot *x = (ir_annot *)n;
    if (!x->key || !x->value) return bad(a, n, KILN_ERR_TYPE, "an annotation needs a key and a value");
    int k = x->value->kind;
    if (k != IR_INT_IMM && k != IR_FLOAT_IMM && k != IR_STR_IMM)
      return bad(a, n, KILN_ERR_TYPE, "an annotation value must be a constant");
    n->dtype = KILN_VOID;
    return n;
  }
  case IR_FUNC: {
    ir_func *x = (ir_func *)n;
    for (int i = 0; i < x->nparams; i++) {
      ir_node *p = x->params[i];
      if (!p || (p->kind != IR_VAR && p->kind != IR_BUFFER))
        return bad(a, n, KILN_ERR_TYPE, "a parameter must be a buffer or a scalar variable");
    }
    if (!check_annots(a, n, x->nattrs, x->attrs)) return NULL;
    if (!check_stmt(a, n, x->body, "the body")) return NULL;
    if (!x->name) return bad(a, n, KILN_ERR_TYPE, "a function needs a name");
    n->dtype = KILN_VOID;
    return n;
  }
  case IR_KIND_COUNT: break;
  }
  return bad(a, n, KILN_ERR_INTERNAL, "unknown node kind");
}

ir_node *ir_node_finish(ir_arena *a, ir_node *n) {
  if (!n) return NULL;
  if (n->kind >= IR_KIND_COUNT) {
    const ir_kind_table *t = ext_kinds;
    if (!t || n->kind < t->first || n->kind >= t->first + t->count) {
      ir_fail(a->ctx, n->span, KILN_ERR_INTERNAL, "node kind %d is not registered", n->kind);
      return NULL;
    }
    if (!t->check(a, n)) return NULL;
  } else if (!check_node(a, n)) {
    return NULL;
  }
  n->hash = content_hash(n);
  return n;
}

/* ---- Constructors -------------------------------------------------------------------- */

static void *node_alloc(ir_arena *a, int kind, kiln_dtype t) {
  ir_node *n = ir_arena_alloc(a, ir_kind_info_of(kind)->size);
  if (!n) return NULL;
  n->kind = (uint8_t)kind;
  n->dtype = t;
  n->span = a->span;
  return n;
}

void *ir_arena_copy_nodes(ir_arena *a, int n, void *const *nodes) {
  if (n <= 0) return NULL;
  void **p = ir_arena_alloc(a, sizeof(void *) * (size_t)n);
  if (p) memcpy(p, nodes, sizeof(void *) * (size_t)n);
  return p;
}

/* True if any of the n pointers is NULL (an earlier failure). */
static bool any_null(int n, void *const *p) {
  if (n > 0 && !p) return true;
  for (int i = 0; i < n; i++)
    if (!p[i]) return true;
  return false;
}

/* Copies an array into the arena; false on failure (NULL entries included). */
#define COPY_ARRAY(dst, cnt, src)                                        \
  do {                                                                   \
    if ((cnt) < 0 || any_null((cnt), (void *const *)(src))) return NULL; \
    (dst) = ir_arena_copy_nodes(a, (cnt), (void *const *)(src));         \
    if ((cnt) > 0 && !(dst)) return NULL;                                \
  } while (0)

ir_expr *ir_int(ir_arena *a, kiln_dtype t, int64_t v) {
  ir_int_imm *n = node_alloc(a, IR_INT_IMM, t);
  if (!n) return NULL;
  n->value = v;
  return ir_node_finish(a, &n->h);
}

ir_expr *ir_i32(ir_arena *a, int64_t v) { return ir_int(a, KILN_INT32, v); }

ir_expr *ir_float(ir_arena *a, kiln_dtype t, double v) {
  ir_float_imm *n = node_alloc(a, IR_FLOAT_IMM, t);
  if (!n) return NULL;
  n->value = v;
  return ir_node_finish(a, &n->h);
}

ir_expr *ir_str(ir_arena *a, const char *s) {
  if (!s) return NULL;
  ir_str_imm *n = node_alloc(a, IR_STR_IMM, KILN_HANDLE);
  if (!n || !(n->value = ir_arena_strdup(a, s))) return NULL;
  return ir_node_finish(a, &n->h);
}

ir_var *ir_var_new(ir_arena *a, const char *name, kiln_dtype t) {
  ir_var *n = node_alloc(a, IR_VAR, t);
  if (!n || !(n->name = ir_arena_strdup(a, name ? name : "v"))) return NULL;
  return (ir_var *)ir_node_finish(a, &n->h);
}

ir_expr *ir_binop(ir_arena *a, int kind, ir_expr *x, ir_expr *y) {
  if (!x || !y) return NULL;
  if (kind < IR_ADD || kind > IR_OR) {
    ir_fail(a->ctx, a->span, KILN_ERR_INTERNAL, "ir_binop: %s is not a binary operator",
            ir_kind_name(kind));
    return NULL;
  }
  ir_binary *n = node_alloc(a, kind, KILN_VOID);
  if (!n) return NULL;
  n->a = x;
  n->b = y;
  return ir_node_finish(a, &n->h);
}

ir_expr *ir_add(ir_arena *a, ir_expr *x, ir_expr *y) { return ir_binop(a, IR_ADD, x, y); }
ir_expr *ir_sub(ir_arena *a, ir_expr *x, ir_expr *y) { return ir_binop(a, IR_SUB, x, y); }
ir_expr *ir_mul(ir_arena *a, ir_expr *x, ir_expr *y) { return ir_binop(a, IR_MUL, x, y); }

ir_expr *ir_not_new(ir_arena *a, ir_expr *x) {
  if (!x) return NULL;
  ir_not *n = node_alloc(a, IR_NOT, KILN_VOID);
  if (!n) return NULL;
  n->a = x;
  return ir_node_finish(a, &n->h);
}

ir_expr *ir_select_new(ir_arena *a, ir_expr *cond, ir_expr *t, ir_expr *f) {
  if (!cond || !t || !f) return NULL;
  ir_select *n = node_alloc(a, IR_SELECT, KILN_VOID);
  if (!n) return NULL;
  n->cond = cond;
  n->t = t;
  n->f = f;
  return ir_node_finish(a, &n->h);
}

ir_expr *ir_cast_new(ir_arena *a, kiln_dtype t, ir_expr *x) {
  if (!x) return NULL;
  ir_cast *n = node_alloc(a, IR_CAST, t);
  if (!n) return NULL;
  n->value = x;
  return ir_node_finish(a, &n->h);
}

ir_expr *ir_ramp_new(ir_arena *a, ir_expr *base, ir_expr *stride, int lanes) {
  if (!base || !stride) return NULL;
  ir_ramp *n = node_alloc(a, IR_RAMP, KILN_VOID);
  if (!n) return NULL;
  n->base = base;
  n->stride = stride;
  n->lanes = lanes;
  return ir_node_finish(a, &n->h);
}

ir_expr *ir_broadcast_new(ir_arena *a, ir_expr *x, int lanes) {
  if (!x) return NULL;
  ir_broadcast *n = node_alloc(a, IR_BROADCAST, KILN_VOID);
  if (!n) return NULL;
  n->value = x;
  n->lanes = lanes;
  return ir_node_finish(a, &n->h);
}

ir_expr *ir_load_new(ir_arena *a, ir_buffer *buf, int cnt, ir_expr *const *indices) {
  if (!buf) return NULL;
  ir_load *n = node_alloc(a, IR_LOAD, KILN_VOID);
  if (!n) return NULL;
  n->buffer = buf;
  n->nindices = cnt;
  COPY_ARRAY(n->indices, cnt, indices);
  return ir_node_finish(a, &n->h);
}

ir_expr *ir_call_new(ir_arena *a, int op, int cnt, ir_expr *const *args) {
  ir_call *n = node_alloc(a, IR_CALL, KILN_VOID);
  if (!n) return NULL;
  n->op = op;
  n->nargs = cnt;
  COPY_ARRAY(n->args, cnt, args);
  return ir_node_finish(a, &n->h);
}

ir_expr *ir_let_new(ir_arena *a, ir_var *v, ir_expr *value, ir_expr *body) {
  if (!v || !value || !body) return NULL;
  ir_let *n = node_alloc(a, IR_LET, KILN_VOID);
  if (!n) return NULL;
  n->var = v;
  n->value = value;
  n->body = body;
  return ir_node_finish(a, &n->h);
}

ir_stmt *ir_store_new(ir_arena *a, ir_buffer *buf, ir_expr *value, int cnt, ir_expr *const *indices) {
  if (!buf || !value) return NULL;
  ir_store *n = node_alloc(a, IR_STORE, KILN_VOID);
  if (!n) return NULL;
  n->buffer = buf;
  n->value = value;
  n->nindices = cnt;
  COPY_ARRAY(n->indices, cnt, indices);
  return ir_node_finish(a, &n->h);
}

ir_stmt *ir_for_new(ir_arena *a, ir_var *v, ir_expr *min, ir_expr *extent, int for_kind, int nannots,
                ir_annot *const *annots, ir_stmt *body) {
  if (!v || !min || !extent || !body) return NULL;
  ir_for *n = node_alloc(a, IR_FOR, KILN_VOID);
  if (!n) return NULL;
  n->var = v;
  n->min = min;
  n->extent = extent;
  n->for_kind = for_kind;
  n->nannots = nannots;
  COPY_ARRAY(n->annots, nannots, annots);
  n->body = body;
  return ir_node_finish(a, &n->h);
}

ir_stmt *ir_if_new(ir_arena *a, ir_expr *cond, ir_stmt *then_case, ir_stmt *else_case) {
  if (!cond || !then_case) return NULL;
  ir_if *n = node_alloc(a, IR_IF, KILN_VOID);
  if (!n) return NULL;
  n->cond = cond;
  n->then_case = then_case;
  n->else_case = else_case;
  return ir_node_finish(a, &n->h);
}

ir_stmt *ir_seq_new(ir_arena *a, int cnt, ir_stmt *const *stmts) {
  ir_seq *n = node_alloc(a, IR_SEQ, KILN_VOID);
  if (!n) return NULL;
  n->nstmts = cnt;
  COPY_ARRAY(n->stmts, cnt, stmts);
  return ir_node_finish(a, &n->h);
}

ir_stmt *ir_let_stmt_new(ir_arena *a, ir_var *v, ir_expr *value, ir_stmt *body) {
  if (!v || !value || !body) return NULL;
  ir_let_stmt *n = node_alloc(a, IR_LET_STMT, KILN_VOID);
  if (!n) return NULL;
  n->var = v;
  n->value = value;
  n->body = body;
  return ir_node_finish(a, &n->h);
}

ir_stmt *ir_allocate_new(ir_arena *a, ir_buffer *buf, ir_stmt *body) {
  if (!buf || !body) return NULL;
  ir_allocate *n = node_alloc(a, IR_ALLOCATE, KILN_VOID);
  if (!n) return NULL;
  n->buffer = buf;
  n->body = body;
  return ir_node_finish(a, &n->h);
}

ir_stmt *ir_evaluate_new(ir_arena *a, ir_expr *value) {
  if (!value) return NULL;
  ir_evaluate *n = node_alloc(a, IR_EVALUATE, KILN_VOID);
  if (!n) return NULL;
  n->value = value;
  return ir_node_finish(a, &n->h);
}

ir_block *ir_block_new(ir_arena *a, const char *name, int niters, ir_iter_var *const *iters,
                       int nreads, ir_region *const *reads, int nwrites,
                       ir_region *const *writes, int nallocs, ir_buffer *const *allocs,
                       int nannots, ir_annot *const *annots, ir_stmt *init, ir_stmt *body) {
  if (!name || !body) return NULL;
  ir_block *n = node_alloc(a, IR_BLOCK, KILN_VOID);
  if (!n || !(n->name = ir_arena_strdup(a, name))) return NULL;
  n->niters = niters;
  COPY_ARRAY(n->iters, niters, iters);
  n->nreads = nreads;
  COPY_ARRAY(n->reads, nreads, reads);
  n->nwrites = nwrites;
  COPY_ARRAY(n->writes, nwrites, writes);
  n->nallocs = nallocs;
  COPY_ARRAY(n->allocs, nallocs, allocs);
  n->nannots = nannots;
  COPY_ARRAY(n->annots, nannots, annots);
  n->init = init;
  n->body = body;
  return (ir_block *)ir_node_finish(a, &n->h);
}

ir_stmt *ir_block_realize_new(ir_arena *a, int nvalues, ir_expr *const *values, ir_expr *predicate,
                          ir_block *block) {
  if (!block) return NULL;
  if (!predicate && !(predicate = ir_int(a, KILN_BOOL, 1))) return NULL;
  ir_block_realize *n = node_alloc(a, IR_BLOCK_REALIZE, KILN_VOID);
  if (!n) return NULL;
  n->nvalues = nvalues;
  COPY_ARRAY(n->values, nvalues, values);
  n->predicate = predicate;
  n->block = block;
  return ir_node_finish(a, &n->h);
}

ir_buffer *ir_buffer_new(ir_arena *a, const char *name, kiln_dtype t, int ndim,
                         ir_expr *const *shape, int nstrides, ir_expr *const *strides,
                         ir_expr *elem_offset, int align, const char *scope) {
  if (!name) return NULL;
  ir_buffer *n = node_alloc(a, IR_BUFFER, t);
  if (!n || !(n->name = ir_arena_strdup(a, name))) return NULL;
  if (!(n->scope = ir_arena_strdup(a, scope ? scope : "global"))) return NULL;
  n->ndim = ndim;
  COPY_ARRAY(n->shape, ndim, shape);
  n->nstrides = strides ? nstrides : 0;
  COPY_ARRAY(n->strides, n->nstrides, strides);
  n->elem_offset = elem_offset;
  n->align = align ? align : 64;
  return (ir_buffer *)ir_node_finish(a, &n->h);
}

ir_iter_var *ir_iter_var_new(ir_arena *a, ir_var *v, ir_expr *min, ir_expr *extent,
                             int iter_type) {
  if (!v || !min || !extent) return NULL;
  ir_iter_var *n = node_alloc(a, IR_ITER_VAR, KILN_VOID);
  if (!n) return NULL;
  n->var = v;
  n->min = min;
  n->extent = extent;
  n->iter_type = iter_type;
  return (ir_iter_var *)ir_node_finish(a, &n->h);
}

ir_range *ir_range_new(ir_arena *a, ir_expr *min, ir_expr *extent) {
  if (!min || !extent) return NULL;
  ir_range *n = node_alloc(a, IR_RANGE, KILN_VOID);
  if (!n) return NULL;
  n->min = min;
  n->extent = extent;
  return (ir_range *)ir_node_finish(a, &n->h);
}

ir_region *ir_region_new(ir_arena *a, ir_buffer *buf, int cnt, ir_range *const *ranges) {
  if (!buf) return NULL;
  ir_region *n = node_alloc(a, IR_REGION, KILN_VOID);
  if (!n) return NULL;
  n->buffer = buf;
  n->nranges = cnt;
  COPY_ARRAY(n->ranges, cnt, ranges);
  return (ir_region *)ir_node_finish(a, &n->h);
}

ir_annot *ir_annot_new(ir_arena *a, const char *key, ir_expr *value) {
  if (!key || !value) return NULL;
  ir_annot *n = node_alloc(a, IR_ANNOT, KILN_VOID);
  if (!n || !(n->key = ir_arena_strdup(a, key))) return NULL;
  n->value = value;
  return (ir_annot *)ir_node_finish(a, &n->h);
}

ir_func *ir_func_new(ir_arena *a, const char *name, int nparams, ir_node *const *params,
                     int nattrs, ir_annot *const *attrs, ir_stmt *body) {
  if (!name || !body) return NULL;
  ir_func *n = node_alloc(a, IR_FUNC, KILN_VOID);
  if (!n || !(n->name = ir_arena_strdup(a, name))) return NULL;
  n->nparams = nparams;
  COPY_ARRAY(n->params, nparams, params);
  n->nattrs = nattrs;
  COPY_ARRAY(n->attrs, nattrs, attrs);
  n->body = body;
  return (ir_func *)ir_node_finish(a, &n->h);
}

/* ---- Visitor and mutator ----------------------------------------------------------- */

void ir_visit(ir_node *n, bool defs, ir_visit_fn fn, void *ud) {
  if (!n || !fn(n, ud)) return;
  const ir_kind_info *k = ir_kind_info_of(n->kind);
  for (int i = 0; i < k->nfields; i++) {
    const ir_field *f = &k->fields[i];
    switch ((ir_field_kind)f->kind) {
    case IR_F_DEF:
    case IR_F_REF:
      if (!defs) break;
      /* fall through */
    case IR_F_NODE: ir_visit(field_node(n, f), defs, fn, ud); break;
    case IR_F_DEFS:
      if (!defs) break;
      /* fall through */
    case IR_F_NODES: {
      int32_t cnt = field_count(n, f);
      ir_node **arr = field_nodes(n, f);
      for (int32_t j = 0; j < cnt; j++) ir_visit(arr[j], defs, fn, ud);
      break;
    }
    case IR_F_I32:
    case IR_F_I64:
    case IR_F_F64:
    case IR_F_STR:
    case IR_F_NAME:
    case IR_F_I64S:
    case IR_F_BYTES: break;
    }
  }
}

ir_node *ir_mutate(ir_mutator *m, ir_node *n) {
  if (!n) return n;
  if (!m->memo) return m->visit(m, n);
  ir_node *done = ir_ptrmap_get(m->memo, n);
  if (done) return done;
  ir_node *r = m->visit(m, n);
  if (r && ir_ptrmap_put(m->memo, n, r)) return NULL;
  return r;
}

ir_node *ir_mutate_children(ir_mutator *m, ir_node *n) {
  if (!n) return NULL;
  const ir_kind_info *k = ir_kind_info_of(n->kind);
  ir_node *copy = NULL; /* made on the first changed child */
  for (int i = 0; i < k->nfields; i++) {
    const ir_field *f = &k->fields[i];
    bool single = f->kind == IR_F_NODE || (m->visit_defs && f->kind == IR_F_DEF);
    bool array = f->kind == IR_F_NODES || (m->visit_defs && f->kind == IR_F_DEFS);
    if (single) {
      ir_node *c = field_node(n, f);
      if (!c) continue;
      ir_node *c2 = ir_mutate(m, c);
      if (!c2) return NULL;
      if (c2 == c) continue;
      if (!copy) {
        if (!(copy = ir_arena_alloc(m->arena, k->size))) return NULL;
        memcpy(copy, n, k->size);
      }
      *(ir_node **)FIELD_PTR(copy, f) = c2;
    } else if (array) {
      int32_t cnt = field_count(n, f);
      ir_node **arr = field_nodes(n, f);
      ir_node **arr2 = NULL;
      for (int32_t j = 0; j < cnt; j++) {
        ir_node *c2 = ir_mutate(m, arr[j]);
        if (!c2) return NULL;
        if (c2 == arr[j]) continue;
        if (!arr2 && !(arr2 = ir_arena_copy_nodes(m->arena, cnt, (void *const *)arr))) return NULL;
        arr2[j] = c2;
      }
      if (!arr2) continue;
      if (!copy) {
        if (!(copy = ir_arena_alloc(m->arena, k->size))) return NULL;
        memcpy(copy, n, k->size);
      }
      *(ir_node ***)FIELD_PTR(copy, f) = arr2;
    }
  }
  if (!copy) return n;
  /* Re-derive the dtype (a child's lanes may have changed) and the content hash. */
  ir_span saved = m->arena->span;
  m->arena->span = n->span;
  ir_node *r = ir_node_finish(m->arena, copy);
  m->arena->span = saved;
  return r;
}

typedef struct subst {
  int n;
  ir_var *const *vars;
  ir_expr *const *values;
} subst;

static ir_node *subst_visit(ir_mutator *m, ir_node *n) {
  subst *s = m->ud;
  if (n->kind == IR_VAR) {
    for (int i = 0; i < s->n; i++)
      if (&s->vars[i]->h == n) return s->values[i];
    return n;
  }
  return ir_mutate_children(m, n);
}

ir_node *ir_substitute(ir_arena *a, ir_node *n, int nvars, ir_var *const *vars,
                       ir_expr *const *values) {
  subst s = {nvars, vars, values};
  ir_mutator m = {a, subst_visit, &s};
  return ir_mutate(&m, n);
}

/* ---- Deep copy -------------------------------------------------------------------- */

/* Copies n and everything it reaches into arena `dst`. `done` maps every original node to its
 * copy, so shared subtrees stay shared and every use of a variable or buffer points to the one
 * copy of its definition. */
static ir_node *copy_node(ir_arena *dst, ir_ptrmap *done, const ir_node *n) {
  if (!n) return NULL;
  ir_node *c = ir_ptrmap_get(done, n);
  if (c) return c;
  const ir_kind_info *k = ir_kind_info_of(n->kind);
  if (!(c = ir_arena_alloc(dst, k->size))) return NULL;
  memcpy(c, n, k->size); /* header (hash, dtype, span) and scalar fields stay as they are */
  for (int i = 0; i < k->nfields; i++) {
    const ir_field *f = &k->fields[i];
    switch ((ir_field_kind)f->kind) {
    case IR_F_NODE:
    case IR_F_DEF:
    case IR_F_REF: {
      ir_node *child = field_node(n, f);
      ir_node *cc = copy_node(dst, done, child);
      if (child && !cc) return NULL;
      *(ir_node **)FIELD_PTR(c, f) = cc;
      break;
    }
    case IR_F_NODES:
    case IR_F_DEFS: {
      int32_t cnt = field_count(n, f);
      ir_node **arr = field_nodes(n, f);
      ir_node **arr2 = cnt ? ir_arena_alloc(dst, sizeof(ir_node *) * (size_t)cnt) : NULL;
      if (cnt && !arr2) return NULL;
      for (int32_t j = 0; j < cnt; j++)
        if (!(arr2[j] = copy_node(dst, done, arr[j]))) return NULL;
      *(ir_node ***)FIELD_PTR(c, f) = arr2;
      break;
    }
    case IR_F_STR:
    case IR_F_NAME: {
      const char *str = *(const char **)FIELD_PTR(n, f);
      char *s2 = str ? ir_arena_strdup(dst, str) : NULL;
      if (str && !s2) return NULL;
      *(char **)FIELD_PTR(c, f) = s2;
      break;
    }
    case IR_F_I64S: {
      int32_t cnt = field_count(n, f);
      const int64_t *v = *(int64_t *const *)FIELD_PTR(n, f);
      int64_t *v2 = cnt ? ir_arena_alloc(dst, sizeof(int64_t) * (size_t)cnt) : NULL;
      if (cnt && !v2) return NULL;
      if (cnt) memcpy(v2, v, sizeof(int64_t) * (size_t)cnt);
      *(int64_t **)FIELD_PTR(c, f) = v2;
      break;
    }
    case IR_F_BYTES: {
      int64_t size = *(const int64_t *)((const char *)n + f->count_offset);
      void *p = size ? ir_arena_alloc(dst, (size_t)size) : NULL;
      if (size && !p) return NULL;
      if (size) memcpy(p, *(void *const *)FIELD_PTR(n, f), (size_t)size);
      *(void **)FIELD_PTR(c, f) = p;
      break;
    }
    case IR_F_I32:
    case IR_F_I64:
    case IR_F_F64: break;
    }
  }
  if (ir_ptrmap_put(done, n, c)) return NULL;
  return c;
}

ir_node *ir_deep_copy(ir_arena *dst, const ir_node *n) {
  ir_ptrmap done;
  ir_ptrmap_init(&done, dst->ctx);
  ir_node *c = copy_node(dst, &done, n);
  ir_ptrmap_free(&done);
  return c;
}

/* ---- Modules ----------------------------------------------------------------------- */

kiln_tir_module *ir_module_new(kiln_context *ctx) {
  kiln_tir_module *mod = ir_malloc(ctx, sizeof *mod);
  if (!mod) return NULL;
  memset(mod, 0, sizeof *mod);
  mod->ctx = ctx;
  if (!(mod->arena = ir_arena_new(ctx))) {
    ir_free(ctx, mod, sizeof *mod);
    return NULL;
  }
  return mod;
}

kiln_status ir_module_add(kiln_tir_module *mod, ir_func *f) {
  if (!f) return mod->ctx->code ? mod->ctx->code : KILN_ERR_INTERNAL;
  if (ir_module_find(mod, f->name))
    return ir_fail(mod->ctx, f->h.span, KILN_ERR_TYPE, "function '%s' is defined twice", f->name);
  ir_func **arr = ir_arena_alloc(mod->arena, sizeof(ir_func *) * (size_t)(mod->nfuncs + 1));
  if (!arr) return KILN_ERR_NOMEM;
  if (mod->nfuncs) memcpy(arr, mod->funcs, sizeof(ir_func *) * (size_t)mod->nfuncs);
  arr[mod->nfuncs++] = f;
  mod->funcs = arr;
  return KILN_OK;
}

ir_func *ir_module_find(kiln_tir_module *mod, const char *name) {
  for (int i = 0; i < mod->nfuncs; i++)
    if (strcmp(mod->funcs[i]->name, name) == 0) return mod->funcs[i];
  return NULL;
}

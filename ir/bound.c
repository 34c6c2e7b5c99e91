/* bound.c: the analyzer (ranges known about variables, scoped facts) and integer bound
 * analysis. ir_bound_of computes an interval holding every value an integer expression can
 * take, by interval arithmetic whose every step is checked for int64 overflow; simplify.c
 * asks it to decide comparisons, min/max and the division rules.
 *
 * Soundness: bounds hold even for programs that rely on wrap-around (uint8 arithmetic, say).
 * Each operation's exact results are computed as an interval; when it leaves the dtype, the
 * program's values are those results modulo 2^bits, so the interval is moved into the dtype
 * by a multiple of 2^bits when it fits there whole, and is the dtype's whole range otherwise
 * (also when int64 itself overflows). Division by zero has no value (it is a runtime error),
 * so divisors are bounded as if they were never zero. */
#include <string.h>

#include "arith_internal.h"

/* ---- The analyzer ---------------------------------------------------------------------- */

ir_analyzer *ir_analyzer_new(ir_arena *arena) {
  if (!arena) return NULL;
  ir_analyzer *an = ir_malloc(arena->ctx, sizeof *an);
  if (!an) return NULL;
  memset(an, 0, sizeof *an);
  an->arena = arena;
  an->ctx = arena->ctx;
  ir_ptrmap_init(&an->index, arena->ctx);
  return an;
}

void ir_analyzer_free(ir_analyzer *an) {
  if (!an) return;
  ir_ptrmap_free(&an->index);
  ir_free(an->ctx, an->ranges, an->cap * sizeof *an->ranges);
  ir_free(an->ctx, an, sizeof *an);
}

ir_interval ir_arith_dtype_range(kiln_dtype t) {
  if (t.code == KILN_TYPE_BOOL) return (ir_interval){0, 1};
  if (t.bits == 0 || t.bits >= 64) return IR_INTERVAL_EVERYTHING;
  if (t.code == KILN_TYPE_INT) {
    int64_t lim = (int64_t)1 << (t.bits - 1);
    return (ir_interval){-lim, lim - 1};
  }
  if (t.code == KILN_TYPE_UINT) return (ir_interval){0, (int64_t)(((uint64_t)1 << t.bits) - 1)};
  return IR_INTERVAL_EVERYTHING;
}

static bool is_uint64(kiln_dtype t) { return t.code == KILN_TYPE_UINT && t.bits >= 64; }

ir_interval ir_arith_fit(ir_interval r, kiln_dtype t) {
  ir_interval d = ir_arith_dtype_range(t);
  ir_interval ok = is_uint64(t) ? (ir_interval){0, INT64_MAX} : d;
  if (r.min > r.max) return d;
  if (r.min >= ok.min && r.max <= ok.max) return r;
  /* The program's value is r's exact value modulo 2^bits. When r is narrower than 2^bits,
   * moving it by the multiple of 2^bits that brings r.min into the type may land all of it
   * inside: then that is where the wrapped values lie (uint8 [250, 255] + 10 is [4, 9]). */
  if ((t.code == KILN_TYPE_INT || t.code == KILN_TYPE_UINT) && t.bits >= 1 && t.bits < 64) {
    uint64_t m = (uint64_t)1 << t.bits, width = (uint64_t)r.max - (uint64_t)r.min;
    if (width < m) {
      uint64_t low = (uint64_t)r.min & (m - 1);
      int64_t lo = (int64_t)low;
      if (t.code == KILN_TYPE_INT && low >= m / 2) lo -= (int64_t)m; /* sign-extend */
      if (lo + (int64_t)width <= d.max) return (ir_interval){lo, lo + (int64_t)width};
    }
  }
  return d;
}

bool ir_arith_bound_usable(ir_interval r, kiln_dtype t) {
  /* For uint64 the top of the interval cannot stand for values above INT64_MAX. */
  return !is_uint64(t) || (r.min >= 0 && r.max < INT64_MAX);
}

kiln_status ir_analyzer_bind(ir_analyzer *an, const ir_var *v, ir_interval range) {
  if (!an) return KILN_ERR_MISUSE;
  if (!v || v->h.kind != IR_VAR)
    return ir_fail(an->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "ir_analyzer_bind: not a variable");
  char b[32];
  if (!ir_dt_is_int(v->h.dtype))
    return ir_fail(an->ctx, v->h.span, KILN_ERR_TYPE,
                   "ir_analyzer_bind: variable '%s' has type %s; only integer variables have "
                   "ranges", v->name, kiln_dtype_str(v->h.dtype, b, sizeof b));
  if (range.min > range.max)
    return ir_fail(an->ctx, v->h.span, KILN_ERR_MISUSE,
                   "ir_analyzer_bind: empty range [%lld, %lld] for variable '%s'",
                   (long long)range.min, (long long)range.max, v->name);
  ir_interval d = ir_arith_dtype_range(v->h.dtype);
  ir_interval r = {range.min > d.min ? range.min : d.min, range.max < d.max ? range.max : d.max};
  if (r.min > r.max)
    return ir_fail(an->ctx, v->h.span, KILN_ERR_MISUSE,
                   "ir_analyzer_bind: range [%lld, %lld] holds no value of variable '%s' (%s)",
                   (long long)range.min, (long long)range.max, v->name,
                   kiln_dtype_str(v->h.dtype, b, sizeof b));
  uintptr_t at = (uintptr_t)ir_ptrmap_get(&an->index, v);
  if (at) {
    an->ranges[at - 1] = r;
    return KILN_OK;
  }
  if (an->nranges == an->cap) {
    size_t cap = an->cap ? an->cap * 2 : 8;
    ir_interval *p = ir_realloc(an->ctx, an->ranges, an->cap * sizeof *p, cap * sizeof *p);
    if (!p) return KILN_ERR_NOMEM;
    an->ranges = p;
    an->cap = cap;
  }
  if (ir_ptrmap_put(&an->index, v, (void *)(uintptr_t)(an->nranges + 1))) return KILN_ERR_NOMEM;
  an->ranges[an->nranges++] = r;
  return KILN_OK;
}

ir_interval ir_arith_var_range(const ir_analyzer *an, const ir_var *v) {
  for (const ir_scope *s = an->scope; s; s = s->next)
    if (s->var == v) return s->range;
  uintptr_t at = (uintptr_t)ir_ptrmap_get(&an->index, v);
  if (at) return an->ranges[at - 1];
  return ir_arith_dtype_range(v->h.dtype);
}

void ir_arith_push(ir_analyzer *an, ir_scope *s, const ir_var *v, ir_interval r) {
  s->var = v;
  s->range = r;
  s->next = an->scope;
  an->scope = s;
}

/* ---- Exact integer helpers --------------------------------------------------------------- */

int64_t ir_arith_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) q--;
  return q;
}

int64_t ir_arith_floormod(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

bool ir_arith_quotient(int kind, int64_t a, int64_t b, int64_t *q) {
  if (b == 0 || (b == -1 && a == INT64_MIN)) return false;
  *q = kind == IR_DIV ? a / b : ir_arith_floordiv(a, b);
  return true;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
/* |a|, saturated at INT64_MAX. */
static int64_t abs64(int64_t a) { return a >= 0 ? a : a == INT64_MIN ? INT64_MAX : -a; }

int ir_arith_decide(int op, ir_interval a, ir_interval b, kiln_dtype t) {
  if (!ir_arith_bound_usable(a, t) || !ir_arith_bound_usable(b, t)) return -1;
  switch (op) {
  case IR_EQ:
    if (a.min == a.max && b.min == b.max && a.min == b.min) return 1;
    if (a.max < b.min || b.max < a.min) return 0;
    return -1;
  case IR_NE: {
    int d = ir_arith_decide(IR_EQ, a, b, t);
    return d < 0 ? -1 : !d;
  }
  case IR_LT:
    if (a.max < b.min) return 1;
    if (a.min >= b.max) return 0;
    return -1;
  case IR_LE:
    if (a.max <= b.min) return 1;
    if (a.min > b.max) return 0;
    return -1;
  case IR_GT: return ir_arith_decide(IR_LT, b, a, t);
  case IR_GE: return ir_arith_decide(IR_LE, b, a, t);
  }
  return -1;
}

/* ---- Interval arithmetic: each returns false when int64 overflows ---------------------- */

bool ir_arith_iv_add(ir_interval a, ir_interval b, ir_interval *r) {
  return !__builtin_add_overflow(a.min, b.min, &r->min) &&
         !__builtin_add_overflow(a.max, b.max, &r->max);
}

static bool iv_sub(ir_interval a, ir_interval b, ir_interval *r) {
  return !__builtin_sub_overflow(a.min, b.max, &r->min) &&
         !__builtin_sub_overflow(a.max, b.min, &r->max);
}

/* The smallest interval holding four values. */
static ir_interval hull4(const int64_t v[4]) {
  ir_interval r = {v[0], v[0]};
  for (int i = 1; i < 4; i++) {
    r.min = min64(r.min, v[i]);
    r.max = max64(r.max, v[i]);
  }
  return r;
}

bool ir_arith_iv_mul(ir_interval a, ir_interval b, ir_interval *r) {
  int64_t v[4];
  if (__builtin_mul_overflow(a.min, b.min, &v[0]) || __builtin_mul_overflow(a.min, b.max, &v[1]) ||
      __builtin_mul_overflow(a.max, b.min, &v[2]) || __builtin_mul_overflow(a.max, b.max, &v[3]))
    return false;
  *r = hull4(v);
  return true;
}

/* DIV or FLOORDIV. Both round the real quotient monotonically, and for a divisor of one sign
 * the real quotient is extreme at the corners of the box, so the negative and the positive
 * part of the divisor each give their bounds from four corners. */
static bool iv_div(int kind, ir_interval a, ir_interval b, ir_interval *r) {
  ir_interval parts[2];
  int np = 0;
  if (b.min <= -1) parts[np++] = (ir_interval){b.min, min64(b.max, -1)};
  if (b.max >= 1) parts[np++] = (ir_interval){max64(b.min, 1), b.max};
  if (np == 0) return false; /* only division by zero */
  for (int i = 0; i < np; i++) {
    int64_t v[4];
    if (!ir_arith_quotient(kind, a.min, parts[i].min, &v[0]) ||
        !ir_arith_quotient(kind, a.min, parts[i].max, &v[1]) ||
        !ir_arith_quotient(kind, a.max, parts[i].min, &v[2]) ||
        !ir_arith_quotient(kind, a.max, parts[i].max, &v[3]))
      return false;
    ir_interval h = hull4(v);
    if (i == 0) {
      *r = h;
    } else {
      r->min = min64(r->min, h.min);
      r->max = max64(r->max, h.max);
    }
  }
  return true;
}

/* a - q*b for a constant divisor b when every a in the interval has the same quotient q:
 * then the remainder moves with a. False when the quotients differ. */
static bool iv_same_quotient(int kind, ir_interval a, int64_t b, ir_interval *r) {
  int64_t q1, q2, qb;
  if (!ir_arith_quotient(kind, a.min, b, &q1) || !ir_arith_quotient(kind, a.max, b, &q2) ||
      q1 != q2 || __builtin_mul_overflow(q1, b, &qb))
    return false;
  return iv_sub(a, (ir_interval){qb, qb}, r);
}

/* MOD (C remainder): the sign of the dividend, smaller in magnitude than the divisor and
 * than the dividend. */
static bool iv_mod(ir_interval a, ir_interval b, ir_interval *r) {
  if (b.min == b.max && iv_same_quotient(IR_DIV, a, b.min, r)) return true;
  if (b.min == 0 && b.max == 0) return false;
  int64_t m = max64(abs64(b.min), abs64(b.max)) - 1; /* |remainder| <= m */
  r->min = a.min >= 0 ? 0 : max64(a.min, -m);
  r->max = a.max <= 0 ? 0 : min64(a.max, m);
  return true;
}

/* FLOORMOD: the sign of the divisor, smaller in magnitude than the divisor; for a
 * non-negative dividend and positive divisor also at most the dividend (and symmetrically).
 * The positive and the negative part of the divisor each give a range; the result is their
 * union (a divisor of zero has no value). */
static bool iv_floormod(ir_interval a, ir_interval b, ir_interval *r) {
  if (b.min == b.max && iv_same_quotient(IR_FLOORDIV, a, b.min, r)) return true;
  if (b.min == 0 && b.max == 0) return false;
  *r = (ir_interval){0, 0};
  if (b.max >= 1) r->max = a.min >= 0 ? min64(b.max - 1, a.max) : b.max - 1;
  if (b.min <= -1) r->min = a.max <= 0 ? max64(b.min + 1, a.min) : b.min + 1;
  return true;
}

/* ---- Learning from conditions ------------------------------------------------------------ */

static ir_interval bound(ir_analyzer *an, const ir_expr *e);

static int flip_cmp(int op) {
  switch (op) {
  case IR_LT: return IR_GT;
  case IR_LE: return IR_GE;
  case IR_GT: return IR_LT;
  case IR_GE: return IR_LE;
  default: return op; /* EQ, NE */
  }
}

static int negate_cmp(int op) {
  switch (op) {
  case IR_EQ: return IR_NE;
  case IR_NE: return IR_EQ;
  case IR_LT: return IR_GE;
  case IR_LE: return IR_GT;
  case IR_GT: return IR_LE;
  default: return IR_LT; /* GE */
  }
}

/* Pushes "v OP e" where e lies in eb, narrowing what is known about v. */
static int constrain(ir_analyzer *an, const ir_var *v, int op, ir_interval eb, ir_scope *buf,
                     int cap, int n) {
  if (n >= cap || is_uint64(v->h.dtype)) return n;
  ir_interval cur = ir_arith_var_range(an, v), r = cur;
  switch (op) {
  case IR_LT:
    if (eb.max != INT64_MIN) r.max = min64(r.max, eb.max - 1);
    break;
  case IR_LE: r.max = min64(r.max, eb.max); break;
  case IR_GT:
    if (eb.min != INT64_MAX) r.min = max64(r.min, eb.min + 1);
    break;
  case IR_GE: r.min = max64(r.min, eb.min); break;
  case IR_EQ:
    r.min = max64(r.min, eb.min);
    r.max = min64(r.max, eb.max);
    break;
  case IR_NE:
    if (eb.min == eb.max && eb.min == r.min && r.min != INT64_MAX) r.min++;
    else if (eb.min == eb.max && eb.min == r.max && r.max != INT64_MIN) r.max--;
    break;
  }
  /* An empty range means the guarded code never runs: nothing useful to learn. */
  if (r.min > r.max || (r.min == cur.min && r.max == cur.max)) return n;
  ir_arith_push(an, &buf[n], v, r);
  return n + 1;
}

static int learn(ir_analyzer *an, const ir_expr *c, bool negate, ir_scope *buf, int cap, int n) {
  switch (c->kind) {
  case IR_NOT: return learn(an, ((const ir_not *)c)->a, !negate, buf, cap, n);
  case IR_AND:
  case IR_OR: {
    /* a && b gives both facts; so does !(a || b). */
    if ((c->kind == IR_AND) == negate) return n;
    const ir_binary *b = (const ir_binary *)c;
    n = learn(an, b->a, negate, buf, cap, n);
    return learn(an, b->b, negate, buf, cap, n);
  }
  case IR_EQ:
  case IR_NE:
  case IR_LT:
  case IR_LE:
  case IR_GT:
  case IR_GE: {
    const ir_binary *b = (const ir_binary *)c;
    if (!ir_dt_is_int(b->a->dtype) || b->a->dtype.lanes != 1) return n;
    int op = negate ? negate_cmp(c->kind) : c->kind;
    if (b->a->kind == IR_VAR)
      n = constrain(an, (const ir_var *)b->a, op, bound(an, b->b), buf, cap, n);
    if (b->b->kind == IR_VAR)
      n = constrain(an, (const ir_var *)b->b, flip_cmp(op), bound(an, b->a), buf, cap, n);
    return n;
  }
  default: return n;
  }
}

int ir_arith_learn(ir_analyzer *an, const ir_expr *cond, bool negate, ir_scope *buf, int cap) {
  return cond ? learn(an, cond, negate, buf, cap, 0) : 0;
}

/* ---- Bounds of expressions --------------------------------------------------------------- */

static ir_interval bool_of(int decided) {
  return decided < 0 ? (ir_interval){0, 1} : (ir_interval){decided, decided};
}

/* The bound of a binary node of an integer or bool type. */
static ir_interval bound_binary(ir_analyzer *an, const ir_binary *x) {
  kiln_dtype t = x->h.dtype;
  ir_interval a = bound(an, x->a), b = bound(an, x->b), r;
  bool ok = true;
  switch (x->h.kind) {
  case IR_ADD: ok = ir_arith_iv_add(a, b, &r); break;
  case IR_SUB: ok = iv_sub(a, b, &r); break;
  case IR_MUL: ok = ir_arith_iv_mul(a, b, &r); break;
  case IR_DIV:
  case IR_FLOORDIV: ok = iv_div(x->h.kind, a, b, &r); break;
  case IR_MOD: ok = iv_mod(a, b, &r); break;
  case IR_FLOORMOD: ok = iv_floormod(a, b, &r); break;
  case IR_MIN: r = (ir_interval){min64(a.min, b.min), min64(a.max, b.max)}; break;
  case IR_MAX: r = (ir_interval){max64(a.min, b.min), max64(a.max, b.max)}; break;
  case IR_EQ:
  case IR_NE:
  case IR_LT:
  case IR_LE:
  case IR_GT:
  case IR_GE:
    if (!ir_dt_is_int(x->a->dtype) && !ir_dt_is_bool(x->a->dtype)) return (ir_interval){0, 1};
    return bool_of(ir_arith_decide(x->h.kind, a, b, ir_dt_scalar(x->a->dtype)));
  case IR_AND: return (ir_interval){a.min & b.min, a.max & b.max};
  case IR_OR: return (ir_interval){a.min | b.min, a.max | b.max};
  default: ok = false; break;
  }
  if (!ok) return ir_arith_dtype_range(t);
  return ir_arith_fit(r, t);
}

static ir_interval bound_cast(ir_analyzer *an, const ir_cast *x) {
  kiln_dtype to = x->h.dtype, from = x->value->dtype;
  if (!ir_dt_is_int(from) && !ir_dt_is_bool(from)) return ir_arith_dtype_range(to);
  ir_interval v = bound(an, x->value);
  if (ir_dt_is_bool(to)) return v.min > 0 || v.max < 0 ? (ir_interval){1, 1}
                                : v.min == 0 && v.max == 0 ? (ir_interval){0, 0}
                                                           : (ir_interval){0, 1};
  if (is_uint64(from) && !ir_arith_bound_usable(v, from)) return ir_arith_dtype_range(to);
  return ir_arith_fit(v, to);
}

static ir_interval bound_select(ir_analyzer *an, const ir_select *x) {
  ir_interval c = bound(an, x->cond);
  if (c.min == 1) return bound(an, x->t);
  if (c.max == 0) return bound(an, x->f);
  ir_scope facts[8];
  ir_scope *saved = an->scope;
  ir_arith_learn(an, x->cond, false, facts, 8);
  ir_interval t = bound(an, x->t);
  an->scope = saved;
  ir_arith_learn(an, x->cond, true, facts, 8);
  ir_interval f = bound(an, x->f);
  an->scope = saved;
  return (ir_interval){min64(t.min, f.min), max64(t.max, f.max)};
}

static ir_interval bound_inner(ir_analyzer *an, const ir_expr *e) {
  kiln_dtype t = e->dtype;
  if (!ir_dt_is_int(t) && !ir_dt_is_bool(t)) return IR_INTERVAL_EVERYTHING;
  switch ((ir_kind)e->kind) {
  case IR_INT_IMM: {
    int64_t v = ((const ir_int_imm *)e)->value;
    return (ir_interval){v, v};
  }
  case IR_VAR: return ir_arith_var_range(an, (const ir_var *)e);
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
  case IR_OR: return bound_binary(an, (const ir_binary *)e);
  case IR_NOT: {
    ir_interval a = bound(an, ((const ir_not *)e)->a);
    return (ir_interval){1 - a.max, 1 - a.min};
  }
  case IR_SELECT: return bound_select(an, (const ir_select *)e);
  case IR_CAST: return bound_cast(an, (const ir_cast *)e);
  case IR_RAMP: {
    /* base + stride * [0, lanes - 1], over all lanes */
    const ir_ramp *x = (const ir_ramp *)e;
    ir_interval r;
    kiln_dtype st = ir_dt_scalar(t);
    if (!ir_arith_iv_mul(bound(an, x->stride), (ir_interval){0, x->lanes - 1}, &r) ||
        !ir_arith_iv_add(bound(an, x->base), ir_arith_fit(r, st), &r))
      return ir_arith_dtype_range(t);
    return ir_arith_fit(r, st);
  }
  case IR_BROADCAST: return bound(an, ((const ir_broadcast *)e)->value);
  case IR_CALL: {
    const ir_call *x = (const ir_call *)e;
    if (x->op == IR_OP_FABS && x->nargs == 1) {
      ir_interval a = bound(an, x->args[0]);
      if (a.min == INT64_MIN) return ir_arith_dtype_range(t);
      ir_interval r = a.min >= 0 ? a
                      : a.max <= 0 ? (ir_interval){-a.max, -a.min}
                                   : (ir_interval){0, max64(-a.min, a.max)};
      return ir_arith_fit(r, t);
    }
    return ir_arith_dtype_range(t);
  }
  case IR_LET: {
    const ir_let *x = (const ir_let *)e;
    ir_scope s;
    ir_scope *saved = an->scope;
    if (ir_dt_is_int(x->var->h.dtype)) ir_arith_push(an, &s, x->var, bound(an, x->value));
    ir_interval r = bound(an, x->body);
    an->scope = saved;
    return r;
  }
  case IR_FLOAT_IMM:
  case IR_STR_IMM:
  case IR_LOAD:
  case IR_STORE:
  case IR_FOR:
  case IR_IF:
  case IR_SEQ:
  case IR_LET_STMT:
  case IR_ALLOCATE:
  case IR_EVALUATE:
  case IR_BLOCK:
  case IR_BLOCK_REALIZE:
  case IR_BUFFER:
  case IR_ITER_VAR:
  case IR_RANGE:
  case IR_REGION:
  case IR_ANNOT:
  case IR_FUNC:
  case IR_KIND_COUNT: break;
  }
  return ir_arith_dtype_range(t); /* loads and everything without a rule */
}

static ir_interval bound(ir_analyzer *an, const ir_expr *e) {
  if (an->depth >= IR_ARITH_MAX_DEPTH) return ir_arith_dtype_range(e->dtype);
  an->depth++;
  ir_interval r = bound_inner(an, e);
  an->depth--;
  return r;
}

ir_interval ir_bound_of(ir_analyzer *an, const ir_expr *e) {
  if (!an || !e || !ir_is_expr(e)) return IR_INTERVAL_EVERYTHING;
  return bound(an, e);
}

/* simplify.c: the arithmetic simplifier. Folds constants, applies identities, puts linear
 * integer expressions in a canonical form, simplifies division and modulo with the bounds
 * that bound.c computes, decides comparisons, and simplifies statements while learning the
 * ranges of loop variables, block iterators, let values and branch conditions. Later passes
 * (loop partitioning, vectorization, split/fuse) rely on its floordiv/floormod rules.
 *
 * Semantics are kept exactly, with one documented assumption (as in TVM): int32 and int64
 * index arithmetic does not overflow. Only rules that need it rely on it: moving multiples
 * of the divisor out of a division or modulo, and deciding or rearranging an ordering
 * comparison through the difference of its sides. Everything else holds modulo 2^bits (the
 * canonical sums do, and so x + 1 - 1 -> x holds even where x + 1 wraps), and for int8,
 * int16 and unsigned types nothing assumes the absence of wrap-around.
 *
 * Floats are never reordered. Float constants are folded in double and rounded to the dtype
 * (float32 through a (float) cast); float16/bfloat16 are left unfolded, and so are results
 * that are not finite (inf/nan: the program keeps computing them itself), float
 * floordiv/floormod (their rounding depends on how the target computes them), float min/max
 * of +0 and -0, and float-to-integer casts out of the integer's range (undefined in C). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "arith_internal.h"

static ir_expr *simp(ir_analyzer *an, ir_expr *e);
static ir_stmt *simp_stmt(ir_analyzer *an, ir_stmt *s);

/* ---- Integer and float helpers ----------------------------------------------------------- */

/* v as a value of integer type t, wrapped around as the hardware does and stored the way
 * int_imm stores it (int: sign-extended, uint: zero-extended). False for a uint64 value
 * above INT64_MAX, which an int_imm cannot hold. */
static bool int_wrap(kiln_dtype t, uint64_t v, int64_t *out) {
  if (t.code == KILN_TYPE_BOOL) {
    *out = v != 0;
    return true;
  }
  if (t.bits == 0 || t.bits > 64) return false;
  if (t.bits < 64) {
    uint64_t mask = ((uint64_t)1 << t.bits) - 1;
    v &= mask;
    if (t.code == KILN_TYPE_INT && ((v >> (t.bits - 1)) & 1)) v |= ~mask;
  } else if (t.code == KILN_TYPE_UINT && v > (uint64_t)INT64_MAX) {
    return false;
  }
  *out = (int64_t)v;
  return true;
}

/* v modulo 2^bits as a signed number: how coefficients and constants of canonical sums are
 * kept for every integer type (for uint8, 255 is kept as -1 and printed as a subtraction). */
static int64_t sext(kiln_dtype t, uint64_t v) {
  if (t.bits >= 64) return (int64_t)v;
  uint64_t mask = ((uint64_t)1 << t.bits) - 1;
  v &= mask;
  if ((v >> (t.bits - 1)) & 1) v |= ~mask;
  return (int64_t)v;
}

/* True if -c is again a signed value of t's width (c is not the most negative one). */
static bool neg_fits(kiln_dtype t, int64_t c) {
  return t.bits >= 64 ? c != INT64_MIN : c != -((int64_t)1 << (t.bits - 1));
}

/* Types whose expressions get canonical sums: scalar integers except uint64 (whose values
 * above INT64_MAX no constant can name). */
static bool lin_ok(kiln_dtype t) {
  return ir_dt_is_int(t) && t.lanes == 1 && t.bits >= 1 && t.bits <= 64 &&
         !(t.code == KILN_TYPE_UINT && t.bits == 64);
}

/* The documented assumption: int32/int64 index arithmetic does not overflow. */
static bool assume_no_overflow(kiln_dtype t) {
  return t.code == KILN_TYPE_INT && t.bits >= 32 && t.lanes == 1;
}

/* A constant of integer type t with value v (wrapped to t). */
static ir_expr *make_int(ir_analyzer *an, kiln_dtype t, int64_t v) {
  int64_t w;
  if (!int_wrap(t, (uint64_t)v, &w)) {
    ir_fail(an->ctx, an->arena->span, KILN_ERR_INTERNAL,
            "simplify: constant %lld has no uint64 form", (long long)v);
    return NULL;
  }
  return ir_int(an->arena, t, w);
}

static ir_expr *make_bool(ir_analyzer *an, bool v) { return ir_int(an->arena, KILN_BOOL, v); }

/* evaluate(0): what a statement that does nothing becomes. */
static ir_stmt *make_nop(ir_analyzer *an) {
  return ir_evaluate_new(an->arena, ir_i32(an->arena, 0));
}

static bool is_nop(const ir_stmt *s) {
  if (s->kind != IR_EVALUATE) return false;
  int k = ((const ir_evaluate *)s)->value->kind;
  return k == IR_INT_IMM || k == IR_FLOAT_IMM;
}

/* The constant behind e (an immediate or a broadcast of one), or NULL. */
static const ir_node *const_of(const ir_expr *e) {
  while (e->kind == IR_BROADCAST) e = ((const ir_broadcast *)e)->value;
  return e->kind == IR_INT_IMM || e->kind == IR_FLOAT_IMM ? e : NULL;
}

static bool is_const_value(const ir_expr *e, double v, bool positive_zero) {
  const ir_node *c = const_of(e);
  if (!c) return false;
  if (c->kind == IR_INT_IMM) return ((const ir_int_imm *)c)->value == (int64_t)v;
  double d = ((const ir_float_imm *)c)->value;
  return d == v && !(positive_zero && signbit(d));
}

/* A float value rounded to float dtype t; false when it is not finite or t is float16 /
 * bfloat16 (not folded). */
static bool float_round(kiln_dtype t, double v, double *out) {
  if (!isfinite(v) || t.code != KILN_TYPE_FLOAT) return false;
  if (t.bits == 64) {
    *out = v;
    return true;
  }
  if (t.bits == 32 && fabs(v) <= FLT_MAX) {
    *out = (float)v;
    return true;
  }
  return false;
}

/* ---- Structural identity ------------------------------------------------------------------ */

/* Equal as expressions: same structure, the same variables and buffers (by identity, not
 * by binding position as ir_structural_equal), floats equal bit for bit (so 0.0 and -0.0
 * differ). Used to combine like terms and to keep the input pointer when a rewrite rebuilt
 * the same expression. */
static bool expr_equal(const ir_node *a, const ir_node *b) {
  if (a == b) return true;
  if (!a || !b || a->kind != b->kind || a->hash != b->hash || !ir_dt_eq(a->dtype, b->dtype))
    return false;
  const ir_kind_info *k = ir_kind_info_of(a->kind);
  if (!k || a->kind == IR_BUFFER || (k->flags & IR_KIND_BINDING)) return false; /* identity */
  for (int i = 0; i < k->nfields; i++) {
    const ir_field *f = &k->fields[i];
    const char *pa = (const char *)a + f->offset, *pb = (const char *)b + f->offset;
    switch ((ir_field_kind)f->kind) {
    case IR_F_NODE:
      if (!expr_equal(*(ir_node *const *)pa, *(ir_node *const *)pb)) return false;
      break;
    case IR_F_DEF:
    case IR_F_REF:
      if (*(ir_node *const *)pa != *(ir_node *const *)pb) return false;
      break;
    case IR_F_NODES:
    case IR_F_DEFS: {
      int32_t na = *(const int32_t *)((const char *)a + f->count_offset);
      int32_t nb = *(const int32_t *)((const char *)b + f->count_offset);
      if (na != nb) return false;
      ir_node *const *xa = *(ir_node *const *const *)pa;
      ir_node *const *xb = *(ir_node *const *const *)pb;
      for (int32_t j = 0; j < na; j++) {
        bool same = f->kind == IR_F_NODES ? expr_equal(xa[j], xb[j]) : xa[j] == xb[j];
        if (!same) return false;
      }
      break;
    }
    case IR_F_I32:
      if (*(const int32_t *)pa != *(const int32_t *)pb) return false;
      break;
    case IR_F_I64:
      if (*(const int64_t *)pa != *(const int64_t *)pb) return false;
      break;
    case IR_F_F64:
      if (memcmp(pa, pb, sizeof(double)) != 0) return false;
      break;
    case IR_F_STR: {
      const char *sa = *(const char *const *)pa, *sb = *(const char *const *)pb;
      if (sa != sb && (!sa || !sb || strcmp(sa, sb) != 0)) return false;
      break;
    }
    case IR_F_I64S:
    case IR_F_BYTES:
      if (!ir_fields_extra_equal(a, b, f)) return false;
      break;
    case IR_F_NAME: break;
    }
  }
  return true;
}

static int cmp64(int64_t p, int64_t q) { return p < q ? -1 : p > q; }

static int cmp_str(const char *p, const char *q) {
  int r = strcmp(p ? p : "", q ? q : "");
  return r < 0 ? -1 : r > 0;
}

/* A total order on expressions that depends only on their content: kind, dtype, then
 * variable and buffer names, constants and children in field order. It decides the order of
 * the terms of canonical sums (and of the factors of products), so that x + y and y + x
 * become the same expression and the output never depends on addresses. Different variables
 * with the same name compare equal; the sort is stable, so they keep the input's order. */
static int expr_order(const ir_node *a, const ir_node *b) {
  if (a == b) return 0;
  if (!a || !b) return a ? 1 : -1;
  if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
  int r = cmp64(a->dtype.code, b->dtype.code);
  if (!r) r = cmp64(a->dtype.bits, b->dtype.bits);
  if (!r) r = cmp64(a->dtype.lanes, b->dtype.lanes);
  if (r) return r;
  if (a->kind == IR_VAR) return cmp_str(((const ir_var *)a)->name, ((const ir_var *)b)->name);
  if (a->kind == IR_BUFFER)
    return cmp_str(((const ir_buffer *)a)->name, ((const ir_buffer *)b)->name);
  const ir_kind_info *k = ir_kind_info_of(a->kind);
  if (!k) return 0;
  for (int i = 0; i < k->nfields && !r; i++) {
    const ir_field *f = &k->fields[i];
    const char *pa = (const char *)a + f->offset, *pb = (const char *)b + f->offset;
    switch ((ir_field_kind)f->kind) {
    case IR_F_NODE:
    case IR_F_DEF:
    case IR_F_REF: r = expr_order(*(ir_node *const *)pa, *(ir_node *const *)pb); break;
    case IR_F_NODES:
    case IR_F_DEFS: {
      int32_t na = *(const int32_t *)((const char *)a + f->count_offset);
      int32_t nb = *(const int32_t *)((const char *)b + f->count_offset);
      r = cmp64(na, nb);
      ir_node *const *xa = *(ir_node *const *const *)pa;
      ir_node *const *xb = *(ir_node *const *const *)pb;
      for (int32_t j = 0; j < na && !r; j++) r = expr_order(xa[j], xb[j]);
      break;
    }
    case IR_F_I32: r = cmp64(*(const int32_t *)pa, *(const int32_t *)pb); break;
    case IR_F_I64: r = cmp64(*(const int64_t *)pa, *(const int64_t *)pb); break;
    case IR_F_F64: {
      double da = *(const double *)pa, db = *(const double *)pb;
      if (da != db) {
        r = da < db ? -1 : 1;
      } else { /* 0.0 and -0.0 (or NaNs): by their bits */
        int m = memcmp(pa, pb, sizeof(double));
        r = m < 0 ? -1 : m > 0;
      }
      break;
    }
    case IR_F_STR: r = cmp_str(*(const char *const *)pa, *(const char *const *)pb); break;
    case IR_F_I64S: {
      int32_t na = *(const int32_t *)((const char *)a + f->count_offset);
      int32_t nb = *(const int32_t *)((const char *)b + f->count_offset);
      const int64_t *xa = *(const int64_t *const *)pa, *xb = *(const int64_t *const *)pb;
      r = cmp64(na, nb);
      for (int32_t j = 0; j < na && !r; j++) r = cmp64(xa[j], xb[j]);
      break;
    }
    case IR_F_BYTES: {
      int64_t na = *(const int64_t *)((const char *)a + f->count_offset);
      int64_t nb = *(const int64_t *)((const char *)b + f->count_offset);
      r = cmp64(na, nb);
      if (!r && na > 0) {
        int m = memcmp(*(const void *const *)pa, *(const void *const *)pb, (size_t)na);
        r = m < 0 ? -1 : m > 0;
      }
      break;
    }
    case IR_F_NAME: break;
    }
  }
  return r;
}

/* Where variable v occurs below n: anywhere (`used`), and inside a buffer's shape, strides
 * or offset (`in_buffer`). A variable used by a buffer must keep its definition. */
typedef struct var_use {
  const ir_node *var;
  bool used, in_buffer;
} var_use;

static bool find_plain(ir_node *n, void *ud) {
  var_use *u = ud;
  if (n == u->var) u->used = true;
  return !u->used;
}

static bool find_var(ir_node *n, void *ud) {
  var_use *u = ud;
  if (n == u->var) u->used = true;
  if (n->kind == IR_BUFFER && !u->in_buffer) {
    var_use inner = {u->var, false, false};
    ir_visit(n, false, find_plain, &inner);
    if (inner.used) u->used = u->in_buffer = true;
    return false;
  }
  return !u->in_buffer;
}

static var_use find_uses(ir_node *n, const ir_var *v) {
  var_use u = {&v->h, false, false};
  ir_visit(n, true, find_var, &u);
  return u;
}

/* ---- Constant folding --------------------------------------------------------------------- */

/* a OP b for integer or bool constants of type t; the result is a value of t, or 0/1 for
 * comparisons. False where it must stay: division by zero, a uint64 result above
 * INT64_MAX. Division and modulo of uint values are those of their (non-negative) values. */
static bool fold_int(int op, kiln_dtype t, int64_t a, int64_t b, int64_t *out) {
  uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
  switch (op) {
  case IR_ADD: return int_wrap(t, ua + ub, out);
  case IR_SUB: return int_wrap(t, ua - ub, out);
  case IR_MUL: return int_wrap(t, ua * ub, out);
  case IR_DIV:
  case IR_MOD:
  case IR_FLOORDIV:
  case IR_FLOORMOD: {
    if (b == 0) return false;
    if (a == INT64_MIN && b == -1) { /* int64 only: the quotient wraps to itself */
      *out = op == IR_DIV || op == IR_FLOORDIV ? INT64_MIN : 0;
      return true;
    }
    int64_t r = op == IR_DIV        ? a / b
                : op == IR_MOD      ? a % b
                : op == IR_FLOORDIV ? ir_arith_floordiv(a, b)
                                    : ir_arith_floormod(a, b);
    return int_wrap(t, (uint64_t)r, out);
  }
  case IR_MIN: *out = a < b ? a : b; return true;
  case IR_MAX: *out = a > b ? a : b; return true;
  case IR_EQ: *out = a == b; return true;
  case IR_NE: *out = a != b; return true;
  case IR_LT: *out = a < b; return true;
  case IR_LE: *out = a <= b; return true;
  case IR_GT: *out = a > b; return true;
  case IR_GE: *out = a >= b; return true;
  case IR_AND: *out = a && b; return true;
  case IR_OR: *out = a || b; return true;
  }
  return false;
}

/* a OP b for float constants of type t (inputs rounded to t first, as the program holds
 * them). Comparisons give 0/1 in *bool_out and set *is_bool. */
static bool fold_float(int op, kiln_dtype t, double a, double b, double *out, bool *is_bool) {
  *is_bool = false;
  if (!float_round(t, a, &a) || !float_round(t, b, &b)) return false;
  double r;
  switch (op) {
  case IR_ADD: r = a + b; break;
  case IR_SUB: r = a - b; break;
  case IR_MUL: r = a * b; break;
  case IR_DIV:
    if (b == 0) return false;
    r = a / b;
    break;
  case IR_MOD:
    if (b == 0) return false;
    r = fmod(a, b);
    break;
  case IR_MIN:
  case IR_MAX:
    if (a == b && signbit(a) != signbit(b)) return false; /* min(+0, -0): target-defined */
    r = (op == IR_MIN) == (a < b) ? a : b;
    break;
  case IR_EQ: *is_bool = true; *out = a == b; return true;
  case IR_NE: *is_bool = true; *out = a != b; return true;
  case IR_LT: *is_bool = true; *out = a < b; return true;
  case IR_LE: *is_bool = true; *out = a <= b; return true;
  case IR_GT: *is_bool = true; *out = a > b; return true;
  case IR_GE: *is_bool = true; *out = a >= b; return true;
  default: return false; /* FLOORDIV, FLOORMOD */
  }
  return float_round(t, r, out);
}

/* Folds a binary operator over two scalar constants. Returns true when it did: *out is then
 * the result, or NULL after an allocation failure (which the caller passes on). */
static bool fold_binary(ir_analyzer *an, int op, const ir_expr *a, const ir_expr *b,
                        ir_expr **out) {
  kiln_dtype t = a->dtype;
  bool cmp = op >= IR_EQ && op <= IR_GE;
  const ir_int_imm *ia = ir_as_int(a), *ib = ir_as_int(b);
  if (ia && ib) {
    int64_t r;
    if (!fold_int(op, t, ia->value, ib->value, &r)) return false;
    *out = cmp ? make_bool(an, r) : ir_int(an->arena, t, r);
    return true;
  }
  const ir_float_imm *fa = ir_as_float(a), *fb = ir_as_float(b);
  if (fa && fb) {
    double r;
    bool is_bool;
    if (!fold_float(op, t, fa->value, fb->value, &r, &is_bool)) return false;
    *out = is_bool ? make_bool(an, r != 0) : ir_float(an->arena, t, r);
    return true;
  }
  return false;
}

/* cast<to>(constant). Integer narrowing wraps; float to integer truncates toward zero and is
 * folded only when the result is in the integer type's range. */
static bool fold_cast(ir_analyzer *an, kiln_dtype to, const ir_expr *v, ir_expr **out) {
  ir_arena *a = an->arena;
  if (to.lanes != 1) return false;
  const ir_int_imm *ci = ir_as_int(v);
  if (ci) {
    int64_t w;
    if (ir_dt_is_bool(to)) {
      *out = make_bool(an, ci->value != 0);
      return true;
    }
    if (ir_dt_is_int(to)) {
      if (!int_wrap(to, (uint64_t)ci->value, &w)) return false;
      *out = ir_int(a, to, w);
      return true;
    }
    if (to.code == KILN_TYPE_FLOAT && to.bits == 32) {
      *out = ir_float(a, to, (float)ci->value); /* one rounding, straight from the integer */
      return true;
    }
    if (to.code == KILN_TYPE_FLOAT && to.bits == 64) {
      *out = ir_float(a, to, (double)ci->value);
      return true;
    }
    return false;
  }
  const ir_float_imm *cf = ir_as_float(v);
  if (!cf) return false;
  double d;
  if (!float_round(v->dtype, cf->value, &d)) return false;
  if (ir_dt_is_bool(to)) {
    *out = make_bool(an, d != 0);
    return true;
  }
  if (ir_dt_is_float(to)) {
    if (!float_round(to, d, &d)) return false;
    *out = ir_float(a, to, d);
    return true;
  }
  if (!ir_dt_is_int(to)) return false;
  double t = trunc(d);
  double lo, hi; /* t must lie in [lo, hi) */
  if (to.bits >= 64) {
    lo = to.code == KILN_TYPE_INT ? -9223372036854775808.0 : 0.0;
    hi = 9223372036854775808.0;
  } else {
    ir_interval r = ir_arith_dtype_range(to);
    lo = (double)r.min;
    hi = (double)r.max + 1.0;
  }
  if (!(t >= lo && t < hi)) return false;
  *out = ir_int(a, to, (int64_t)t);
  return true;
}

/* An intrinsic over constants: libm in double, rounded to the dtype; fabs also on integers. */
static bool fold_call(ir_analyzer *an, const ir_call *x, ir_expr **out) {
  kiln_dtype t = x->h.dtype;
  if (t.lanes != 1) return false;
  if (ir_dt_is_int(t)) {
    const ir_int_imm *c = ir_as_int(x->args[0]);
    int64_t w;
    if (x->op != IR_OP_FABS || !c) return false;
    uint64_t v = c->value < 0 ? -(uint64_t)c->value : (uint64_t)c->value;
    if (!int_wrap(t, v, &w)) return false;
    *out = ir_int(an->arena, t, w);
    return true;
  }
  double v[3] = {0, 0, 0};
  for (int i = 0; i < x->nargs && i < 3; i++) {
    const ir_float_imm *c = ir_as_float(x->args[i]);
    if (!c || !float_round(t, c->value, &v[i])) return false;
  }
  double r = 0;
  switch ((ir_intrinsic)x->op) {
  case IR_OP_EXP: r = exp(v[0]); break;
  case IR_OP_LOG: r = v[0] > 0 ? log(v[0]) : NAN; break;
  case IR_OP_SQRT: r = v[0] >= 0 ? sqrt(v[0]) : NAN; break;
  case IR_OP_RSQRT: r = v[0] > 0 ? 1.0 / sqrt(v[0]) : NAN; break;
  case IR_OP_TANH: r = tanh(v[0]); break;
  case IR_OP_ERF: r = erf(v[0]); break;
  case IR_OP_SIGMOID: r = 1.0 / (1.0 + exp(-v[0])); break;
  case IR_OP_POW: r = pow(v[0], v[1]); break;
  case IR_OP_FABS: r = fabs(v[0]); break;
  case IR_OP_FLOOR: r = floor(v[0]); break;
  case IR_OP_CEIL: r = ceil(v[0]); break;
  case IR_OP_ROUND: r = nearbyint(v[0]); break; /* half to even, as the interpreter and ONNX */
  case IR_OP_FMA: r = fma(v[0], v[1], v[2]); break;
  case IR_OP_COUNT: return false;
  }
  if (!float_round(t, r, &r)) return false;
  *out = ir_float(an->arena, t, r);
  return true;
}

/* ---- Canonical sums ------------------------------------------------------------------------
 * A linear integer expression is kept as k + c1*t1 + c2*t2 + ... : a constant and terms, each
 * a coefficient and an atom (a variable, a load, a floordiv, a product of two non-constant
 * factors, ...). Like atoms (expr_equal) are combined. Coefficients and k are kept modulo
 * 2^bits, so the form is exact under wrap-around. When printed, terms are sorted by
 * expr_order (content only, never addresses), and the form is
 * `t_head + t2*c2 - t3*c3 ... + k`, where the head is the first term with a positive
 * coefficient (or the constant when there is none and it is positive). */

typedef struct term {
  ir_expr *e;
  int64_t c;
} term;

enum { LIN_INLINE = 8 };

/* Never copied by value (terms may point into inline_terms); lin_move transfers one. */
typedef struct lin {
  kiln_dtype t;
  int64_t k;
  int n, cap;
  term *terms;
  term inline_terms[LIN_INLINE];
} lin;

static void lin_init(lin *L, kiln_dtype t) {
  L->t = t;
  L->k = 0;
  L->n = 0;
  L->cap = LIN_INLINE;
  L->terms = L->inline_terms;
}

static void lin_free(ir_analyzer *an, lin *L) {
  if (L->terms != L->inline_terms) ir_free(an->ctx, L->terms, (size_t)L->cap * sizeof(term));
  lin_init(L, L->t);
}

/* Moves src into dst (which is freed first); src is left empty. */
static void lin_move(ir_analyzer *an, lin *dst, lin *src) {
  lin_free(an, dst);
  dst->t = src->t;
  dst->k = src->k;
  dst->n = src->n;
  if (src->terms == src->inline_terms) {
    memcpy(dst->inline_terms, src->inline_terms, sizeof src->inline_terms);
  } else {
    dst->terms = src->terms;
    dst->cap = src->cap;
  }
  lin_init(src, src->t);
}

static void lin_add_const(lin *L, int64_t c) { L->k = sext(L->t, (uint64_t)L->k + (uint64_t)c); }

/* Adds c*e, combining it with a like term (and dropping the term when they cancel). */
static bool lin_add_term(ir_analyzer *an, lin *L, ir_expr *e, int64_t c) {
  c = sext(L->t, (uint64_t)c);
  if (c == 0) return true;
  for (int i = 0; i < L->n; i++) {
    if (!expr_equal(L->terms[i].e, e)) continue;
    int64_t s = sext(L->t, (uint64_t)L->terms[i].c + (uint64_t)c);
    if (s != 0) {
      L->terms[i].c = s;
    } else {
      memmove(&L->terms[i], &L->terms[i + 1], (size_t)(L->n - i - 1) * sizeof(term));
      L->n--;
    }
    return true;
  }
  if (L->n == L->cap) {
    int cap = L->cap * 2;
    term *p = ir_malloc(an->ctx, (size_t)cap * sizeof(term));
    if (!p) return false;
    memcpy(p, L->terms, (size_t)L->n * sizeof(term));
    if (L->terms != L->inline_terms) ir_free(an->ctx, L->terms, (size_t)L->cap * sizeof(term));
    L->terms = p;
    L->cap = cap;
  }
  L->terms[L->n++] = (term){e, c};
  return true;
}

/* L += scale * M */
static bool lin_add_lin(ir_analyzer *an, lin *L, const lin *M, int64_t scale) {
  for (int i = 0; i < M->n; i++)
    if (!lin_add_term(an, L, M->terms[i].e, (int64_t)((uint64_t)M->terms[i].c * (uint64_t)scale)))
      return false;
  lin_add_const(L, (int64_t)((uint64_t)M->k * (uint64_t)scale));
  return true;
}

/* Stable insertion sort of the terms by expr_order of their atoms. */
static void lin_sort(lin *L) {
  for (int i = 1; i < L->n; i++) {
    term t = L->terms[i];
    int j = i;
    for (; j > 0 && expr_order(L->terms[j - 1].e, t.e) > 0; j--) L->terms[j] = L->terms[j - 1];
    L->terms[j] = t;
  }
}

static ir_expr *lin_emit(ir_analyzer *an, lin *L);
static bool lin_matches(lin *L, const ir_expr *e);

/* L += coef * e. With simplified false the atoms of e are simplified on the way (e is then
 * an input expression); with true, e is already simplified. Fails only on allocation. */
static bool lin_build(ir_analyzer *an, lin *L, ir_expr *e, int64_t coef, bool simplified) {
  if (an->depth >= IR_ARITH_MAX_DEPTH) return lin_add_term(an, L, e, coef);
  an->depth++;
  bool ok = true;
  switch (e->kind) {
  case IR_INT_IMM:
    lin_add_const(L, (int64_t)((uint64_t)coef * (uint64_t)((ir_int_imm *)e)->value));
    break;
  case IR_ADD:
  case IR_SUB: {
    ir_binary *x = (ir_binary *)e;
    int64_t cb = e->kind == IR_ADD ? coef : (int64_t)(0 - (uint64_t)coef);
    ok = lin_build(an, L, x->a, coef, simplified) && lin_build(an, L, x->b, cb, simplified);
    break;
  }
  case IR_MUL: {
    /* A constant factor scales the other side; two non-constant factors make an atom. */
    ir_binary *x = (ir_binary *)e;
    lin A, B;
    lin_init(&A, L->t);
    lin_init(&B, L->t);
    ok = lin_build(an, &A, x->a, 1, simplified) && lin_build(an, &B, x->b, 1, simplified);
    if (ok && B.n == 0) {
      ok = lin_add_lin(an, L, &A, (int64_t)((uint64_t)coef * (uint64_t)B.k));
    } else if (ok && A.n == 0) {
      ok = lin_add_lin(an, L, &B, (int64_t)((uint64_t)coef * (uint64_t)A.k));
    } else if (ok) {
      ir_expr *fa = lin_matches(&A, x->a) ? x->a : lin_emit(an, &A);
      ir_expr *fb = lin_matches(&B, x->b) ? x->b : lin_emit(an, &B);
      if (fa && fb && expr_order(fb, fa) < 0) { /* x*y and y*x: one atom */
        ir_expr *f = fa;
        fa = fb;
        fb = f;
      }
      ir_expr *atom = fa == x->a && fb == x->b ? e : ir_mul(an->arena, fa, fb);
      ok = atom && lin_add_term(an, L, atom, coef);
    }
    lin_free(an, &A);
    lin_free(an, &B);
    break;
  }
  default:
    if (!simplified) {
      ir_expr *s = simp(an, e);
      if (!s) {
        ok = false;
        break;
      }
      int k = s->kind;
      if (k == IR_INT_IMM || k == IR_ADD || k == IR_SUB || k == IR_MUL) {
        ok = lin_build(an, L, s, coef, true);
        break;
      }
      e = s;
    }
    ok = lin_add_term(an, L, e, coef);
    break;
  }
  an->depth--;
  return ok;
}

/* The printed form is a left-leaning chain of steps: step 0 is the head, each later step
 * adds or subtracts one term or the constant. lin_emit builds it; lin_matches checks,
 * without allocating, whether an expression already is exactly that chain. */
typedef struct plan {
  int head;     /* index of the head term, or -1 when the head is the constant */
  int nsteps;
  bool k_last;  /* the constant is the last step */
} plan;

typedef struct step {
  int op;       /* 0 for the head, IR_ADD or IR_SUB */
  ir_expr *e;   /* the atom, or NULL for the constant */
  int64_t c;    /* coefficient or constant, as printed */
} step;

static plan lin_plan(const lin *L) {
  plan p = {-1, 0, false};
  for (int i = 0; i < L->n && p.head < 0; i++)
    if (L->terms[i].c > 0) p.head = i;
  if (p.head < 0 && !(L->k > 0) && L->n > 0) p.head = 0; /* all negative: t*c first */
  p.k_last = p.head >= 0 && L->k != 0;
  p.nsteps = L->n + (p.head < 0 ? 1 : 0) + (p.k_last ? 1 : 0);
  return p;
}

static step lin_step(const lin *L, plan p, int s) {
  if (s == 0) {
    if (p.head < 0) return (step){0, NULL, L->k};
    return (step){0, L->terms[p.head].e, L->terms[p.head].c};
  }
  int idx = s - 1; /* among the terms that are not the head */
  int nrest = L->n - (p.head >= 0 ? 1 : 0);
  if (idx < nrest) {
    int i = p.head >= 0 && idx >= p.head ? idx + 1 : idx;
    int64_t c = L->terms[i].c;
    if (c < 0 && neg_fits(L->t, c)) return (step){IR_SUB, L->terms[i].e, -c};
    return (step){IR_ADD, L->terms[i].e, c};
  }
  if (L->k < 0 && neg_fits(L->t, L->k)) return (step){IR_SUB, NULL, -L->k};
  return (step){IR_ADD, NULL, L->k};
}

static ir_expr *step_expr(ir_analyzer *an, kiln_dtype t, step st) {
  if (!st.e) return make_int(an, t, st.c);
  if (st.c == 1) return st.e;
  return ir_mul(an->arena, st.e, make_int(an, t, st.c));
}

static bool int_is(const ir_expr *e, kiln_dtype t, int64_t c) {
  const ir_int_imm *x = ir_as_int(e);
  int64_t w;
  return x && int_wrap(t, (uint64_t)c, &w) && x->value == w;
}

static bool step_matches(kiln_dtype t, step st, const ir_expr *e) {
  if (!st.e) return int_is(e, t, st.c);
  if (st.c == 1) return expr_equal(e, st.e);
  return e->kind == IR_MUL && expr_equal(((const ir_binary *)e)->a, st.e) &&
         int_is(((const ir_binary *)e)->b, t, st.c);
}

static bool lin_matches(lin *L, const ir_expr *e) {
  lin_sort(L);
  plan p = lin_plan(L);
  for (int s = p.nsteps - 1; s >= 1; s--) {
    step st = lin_step(L, p, s);
    if (e->kind != st.op || !step_matches(L->t, st, ((const ir_binary *)e)->b)) return false;
    e = ((const ir_binary *)e)->a;
  }
  return step_matches(L->t, lin_step(L, p, 0), e);
}

static ir_expr *lin_emit(ir_analyzer *an, lin *L) {
  lin_sort(L);
  plan p = lin_plan(L);
  ir_expr *acc = step_expr(an, L->t, lin_step(L, p, 0));
  for (int s = 1; s < p.nsteps && acc; s++) {
    step st = lin_step(L, p, s);
    acc = ir_binop(an->arena, st.op, acc, step_expr(an, L->t, st));
  }
  return acc;
}

/* The expression of L, or e itself when e already has exactly that form. */
static ir_expr *lin_result(ir_analyzer *an, lin *L, ir_expr *e) {
  if (e && lin_matches(L, e)) return e;
  return lin_emit(an, L);
}

/* The mathematical range of L's value over the integers, from its terms' bounds; false when
 * int64 overflows. Equal to the program's value only where no wrap-around happens, so it
 * serves the rules that rely on the no-overflow assumption. */
static bool lin_bound_math(ir_analyzer *an, const lin *L, ir_interval *out) {
  ir_interval acc = {L->k, L->k};
  for (int i = 0; i < L->n; i++) {
    ir_interval p, tb = ir_bound_of(an, L->terms[i].e);
    if (!ir_arith_bound_usable(tb, L->t) ||
        !ir_arith_iv_mul(tb, (ir_interval){L->terms[i].c, L->terms[i].c}, &p) ||
        !ir_arith_iv_add(acc, p, &acc))
      return false;
  }
  *out = acc;
  return true;
}

/* Bounds of the program's value of L (wrap-around included): the mathematical range when it
 * lies inside the dtype (then nothing wrapped), else the dtype's range. */
static ir_interval lin_bound(ir_analyzer *an, const lin *L) {
  ir_interval r;
  if (!lin_bound_math(an, L, &r)) return ir_arith_dtype_range(L->t);
  return ir_arith_fit(r, L->t);
}

/* The bound to reason with: under the no-overflow assumption the mathematical range, else
 * the wrap-safe one. */
static ir_interval lin_bound_assuming(ir_analyzer *an, const lin *L) {
  ir_interval r;
  if (assume_no_overflow(L->t)) return lin_bound_math(an, L, &r) ? r : IR_INTERVAL_EVERYTHING;
  return lin_bound(an, L);
}

/* a + delta, in canonical form (a is simplified). */
static ir_expr *add_const(ir_analyzer *an, ir_expr *a, int64_t delta) {
  lin L;
  lin_init(&L, a->dtype);
  ir_expr *r = NULL;
  if (lin_build(an, &L, a, 1, true)) {
    lin_add_const(&L, delta);
    r = lin_result(an, &L, NULL);
  }
  lin_free(an, &L);
  return r;
}

static bool lin_fuse(ir_analyzer *an, lin *L);

/* L = a - b for simplified a and b. Terms of both sides may meet in split/fuse identities
 * (z - floordiv(z, 8)*8 against its other side), so those are applied too. */
static bool lin_diff(ir_analyzer *an, lin *L, ir_expr *a, ir_expr *b) {
  return lin_build(an, L, a, 1, true) && lin_build(an, L, b, -1, true) && lin_fuse(an, L);
}

/* ---- Division and modulo ---------------------------------------------------------------- */

static ir_expr *simp_divmod(ir_analyzer *an, ir_expr *e, int kind, ir_expr *a, ir_expr *b);

/* The constant divisor of e when e is a `kind` node dividing by a constant, else 0. */
static int64_t const_divisor(const ir_expr *e, int kind) {
  if (e->kind != kind) return 0;
  const ir_int_imm *c = ir_as_int(((const ir_binary *)e)->b);
  return c ? c->value : 0;
}

static ir_expr *dividend(const ir_expr *e) { return ((const ir_binary *)e)->a; }

static ir_expr *rebuild_bin(ir_analyzer *an, ir_expr *e, int kind, ir_expr *a, ir_expr *b) {
  if (e && e->kind == kind && ((ir_binary *)e)->a == a && ((ir_binary *)e)->b == b) return e;
  return ir_binop(an->arena, kind, a, b);
}

static int64_t gcd64(int64_t a, int64_t b) {
  uint64_t x = a < 0 ? -(uint64_t)a : (uint64_t)a, y = b < 0 ? -(uint64_t)b : (uint64_t)b;
  while (y) {
    uint64_t r = x % y;
    x = y;
    y = r;
  }
  return (int64_t)x;
}

/* Moves the multiples of c out of a floordiv/floormod (or a div/mod of a non-negative
 * dividend, where they agree): with a = c*Q + R, R's terms not multiples of c and its
 * constant in [0, c),
 *   floordiv(a, c) = Q + floordiv(R, c)    floormod(a, c) = floormod(R, c),
 * the remaining quotient decided by R's bounds when they allow (floordiv(R, c) is a
 * constant when R stays within one multiple of c), and a common factor g of R and c
 * cancelled: floordiv(R, c) = floordiv(R/g, c/g), floormod(R, c) = floormod(R/g, c/g)*g.
 * Needs the no-overflow assumption (a = c*Q + R over the integers, and bounds of sums are
 * their mathematical ranges). Returns false on error; *out is the result (e when e is
 * already in that form), or NULL when nothing was moved. */
static bool distribute(ir_analyzer *an, ir_expr *e, int kind, ir_expr *a, int64_t c,
                       ir_expr **out) {
  kiln_dtype t = a->dtype;
  bool is_div = kind == IR_DIV || kind == IR_FLOORDIV;
  lin L, Q, R;
  lin_init(&L, t);
  lin_init(&Q, t);
  lin_init(&R, t);
  bool ok = lin_build(an, &L, a, 1, true);
  *out = NULL;
  if (!ok) goto out;
  /* truncation and floor differ for negative dividends */
  if ((kind == IR_DIV || kind == IR_MOD) && lin_bound_assuming(an, &L).min < 0) goto out;
  for (int i = 0; i < L.n && ok; i++) {
    int64_t ci = L.terms[i].c;
    ok = ci % c == 0 ? lin_add_term(an, &Q, L.terms[i].e, ci / c)
                     : lin_add_term(an, &R, L.terms[i].e, ci);
  }
  if (!ok) goto out;
  Q.k = ir_arith_floordiv(L.k, c);
  R.k = ir_arith_floormod(L.k, c);
  int64_t g = gcd64(c, R.k);
  for (int i = 0; i < R.n; i++) g = gcd64(g, R.terms[i].c);
  if (Q.n == 0 && Q.k == 0 && g == 1) goto out; /* nothing to move out */
  int64_t c2 = c / g;
  for (int i = 0; i < R.n; i++) R.terms[i].c /= g;
  R.k /= g;
  ir_interval rb = lin_bound_assuming(an, &R);
  int64_t q1, q2;
  lin *result = is_div ? &Q : &L;
  if (!is_div) { /* L becomes the result: floormod(R, c) */
    L.n = 0;
    L.k = 0;
  }
  if (ir_arith_quotient(IR_FLOORDIV, rb.min, c2, &q1) &&
      ir_arith_quotient(IR_FLOORDIV, rb.max, c2, &q2) && q1 == q2) {
    /* R stays within [q*c2, (q+1)*c2): floordiv(R, c2) = q, floormod(R, c2) = R - q*c2. */
    if (is_div) {
      lin_add_const(&Q, q1);
    } else {
      lin_add_const(&R, (int64_t)(0 - (uint64_t)q1 * (uint64_t)c2));
      ok = lin_add_lin(an, &L, &R, g);
    }
  } else {
    /* the remainder keeps div/mod where it is non-negative (they agree with floor there) */
    bool trunc = (kind == IR_DIV || kind == IR_MOD) && rb.min >= 0;
    int k2 = is_div ? (trunc ? IR_DIV : IR_FLOORDIV) : (trunc ? IR_MOD : IR_FLOORMOD);
    ir_expr *num = lin_result(an, &R, NULL);
    ir_expr *den = make_int(an, t, c2);
    ir_expr *node = num && den ? simp_divmod(an, NULL, k2, num, den) : NULL;
    ok = node && lin_build(an, result, node, is_div ? 1 : g, true);
  }
  if (ok) ok = lin_fuse(an, result); /* the pieces may meet in split/fuse identities */
  if (ok) ok = (*out = lin_result(an, result, e)) != NULL;
out:
  lin_free(an, &L);
  lin_free(an, &Q);
  lin_free(an, &R);
  return ok;
}

/* DIV, MOD, FLOORDIV, FLOORMOD with simplified operands a and b (e: the original node, or
 * NULL for a node made by another rule). */
static ir_expr *simp_divmod(ir_analyzer *an, ir_expr *e, int kind, ir_expr *a, ir_expr *b) {
  ir_expr *r;
  if (fold_binary(an, kind, a, b, &r)) return r;
  kiln_dtype t = a->dtype;
  if (ir_dt_is_float(t)) {
    if (kind == IR_DIV && is_const_value(b, 1.0, false)) return a; /* x / 1.0 (exact) */
    return rebuild_bin(an, e, kind, a, b);
  }
  const ir_int_imm *cb = ir_as_int(b);
  if (!cb || cb->value == 0 || t.lanes != 1) return rebuild_bin(an, e, kind, a, b);
  int64_t c = cb->value;
  bool is_div = kind == IR_DIV || kind == IR_FLOORDIV;
  int qkind = kind == IR_DIV || kind == IR_MOD ? IR_DIV : IR_FLOORDIV;
  if (c == 1) return is_div ? a : make_int(an, t, 0);

  /* All values of a have the same quotient: a constant quotient, a shifted remainder. */
  ir_interval ab = ir_bound_of(an, a);
  int64_t q1, q2;
  if (ir_arith_bound_usable(ab, t) && ir_arith_quotient(qkind, ab.min, c, &q1) &&
      ir_arith_quotient(qkind, ab.max, c, &q2) && q1 == q2) {
    if (is_div) return make_int(an, t, q1);
    if (q1 == 0) return a;
    if (lin_ok(t)) return add_const(an, a, (int64_t)(0 - (uint64_t)q1 * (uint64_t)c));
  }
  if (c < 0) return rebuild_bin(an, e, kind, a, b);

  /* Nested: floordiv(floordiv(x, c1), c) = floordiv(x, c1*c) (also for div, c1 > 0), and
   * floormod(floormod(x, c1), c) = floormod(x, c) when c divides c1 (also for mod). */
  int64_t c1 = const_divisor(a, kind);
  if (c1 > 0) {
    int64_t p;
    if (is_div && !__builtin_mul_overflow(c1, c, &p) && p <= ir_arith_dtype_range(t).max) {
      ir_expr *pc = make_int(an, t, p);
      return pc ? simp_divmod(an, NULL, kind, dividend(a), pc) : NULL;
    }
    if (!is_div && c1 % c == 0) return simp_divmod(an, NULL, kind, dividend(a), b);
  }

  if (lin_ok(t) && assume_no_overflow(t)) {
    if (!distribute(an, e, kind, a, c, &r)) return NULL;
    if (r) return r;
  }
  return rebuild_bin(an, e, kind, a, b);
}

/* The split/fuse identities, applied to the terms of a canonical sum until none applies:
 *   floordiv(y, a)*(k*a) + floormod(y, a)*k               -> y*k
 *   floormod(floordiv(y, a), b)*(k*a) + floormod(y, a)*k  -> floormod(y, a*b)*k  (a, b > 0)
 *   y*k - floordiv(y, a)*(k*a)                            -> floormod(y, a)*k    (a > 0)
 * and the same with div/mod, for which C guarantees (y/a)*a + y%a == y. All hold exactly
 * (also under wrap-around) for any y; in the last one every term of y must be present in
 * the sum with k times its coefficient in y. */
static bool lin_fuse(ir_analyzer *an, lin *L) {
  kiln_dtype t = L->t;
  for (int round = 0; round < 64; round++) {
    int drop1 = -1, drop2 = -1; /* the terms that go */
    ir_expr *repl = NULL;       /* ... replaced by k*repl */
    ir_expr *sub = NULL;        /* ... and k*sub taken away */
    int64_t k = 0;
    for (int i = 0; i < L->n && drop1 < 0; i++) {
      ir_expr *ti = L->terms[i].e;
      int kind = ti->kind;
      int64_t a = kind >= IR_DIV && kind <= IR_FLOORMOD ? const_divisor(ti, kind) : 0;
      if (a == 0) continue;
      ir_expr *y = dividend(ti);
      if (kind == IR_FLOORMOD || kind == IR_MOD) {
        int divk = kind == IR_FLOORMOD ? IR_FLOORDIV : IR_DIV;
        k = L->terms[i].c;
        int64_t want = sext(t, (uint64_t)k * (uint64_t)a);
        for (int j = 0; j < L->n && drop1 < 0; j++) {
          if (j == i || L->terms[j].c != want) continue;
          ir_expr *tj = L->terms[j].e;
          if (const_divisor(tj, divk) == a && expr_equal(dividend(tj), y)) {
            drop1 = i, drop2 = j, repl = y;
            break;
          }
          int64_t m = const_divisor(tj, kind), am;
          ir_expr *inner = tj->kind == kind ? dividend(tj) : NULL;
          if (a > 0 && m > 0 && inner && const_divisor(inner, divk) == a &&
              expr_equal(dividend(inner), y) && !__builtin_mul_overflow(a, m, &am) &&
              am <= ir_arith_dtype_range(t).max) {
            ir_expr *den = make_int(an, t, am);
            if (!(repl = den ? simp_divmod(an, NULL, kind, y, den) : NULL)) return false;
            drop1 = i, drop2 = j;
          }
        }
      } else if (a > 0 && L->terms[i].c % a == 0) {
        k = sext(t, 0 - (uint64_t)(L->terms[i].c / a));
        lin Y;
        lin_init(&Y, t);
        if (!lin_build(an, &Y, y, 1, true)) {
          lin_free(an, &Y);
          return false;
        }
        bool all = Y.n > 0;
        for (int q = 0; q < Y.n && all; q++) {
          int64_t want = sext(t, (uint64_t)k * (uint64_t)Y.terms[q].c);
          bool found = false;
          for (int p = 0; p < L->n && !found; p++)
            found = p != i && L->terms[p].c == want && expr_equal(L->terms[p].e, Y.terms[q].e);
          all = found;
        }
        lin_free(an, &Y);
        if (all) {
          int modk = kind == IR_FLOORDIV ? IR_FLOORMOD : IR_MOD;
          if (!(repl = simp_divmod(an, NULL, modk, y, ((ir_binary *)ti)->b))) return false;
          drop1 = i, sub = y;
        }
      }
    }
    if (drop1 < 0) return true;
    lin M;
    lin_init(&M, t);
    bool ok = true;
    for (int p = 0; p < L->n && ok; p++)
      if (p != drop1 && p != drop2) ok = lin_add_term(an, &M, L->terms[p].e, L->terms[p].c);
    lin_add_const(&M, L->k);
    if (ok && sub) ok = lin_build(an, &M, sub, (int64_t)(0 - (uint64_t)k), true);
    if (ok) ok = lin_build(an, &M, repl, k, true);
    lin_move(an, L, &M);
    lin_free(an, &M);
    if (!ok) return false;
  }
  return true;
}

/* ADD, SUB, MUL of a canonical-sum type: the whole linear subtree at once. */
static ir_expr *simp_linear(ir_analyzer *an, ir_expr *e) {
  lin L;
  lin_init(&L, e->dtype);
  ir_expr *r = NULL;
  if (lin_build(an, &L, e, 1, false) && lin_fuse(an, &L)) r = lin_result(an, &L, e);
  lin_free(an, &L);
  return r;
}

/* ---- Vectors ------------------------------------------------------------------------------ */

/* ramp(base, stride, lanes), a broadcast when the stride simplifies to 0. */
static ir_expr *make_ramp(ir_analyzer *an, ir_expr *base, ir_expr *stride, int lanes) {
  base = base ? simp(an, base) : NULL;
  stride = stride ? simp(an, stride) : NULL;
  if (!base || !stride) return NULL;
  if (is_const_value(stride, 0, false)) return ir_broadcast_new(an->arena, base, lanes);
  return ir_ramp_new(an->arena, base, stride, lanes);
}

/* Lane-wise rules on simplified vector operands: broadcast(x) op broadcast(y) =
 * broadcast(x op y); ramps plus, minus or times broadcasts stay ramps (exact modulo 2^bits
 * lane by lane). True when a rule applied (*out: the result or NULL on error). */
static bool simp_vector(ir_analyzer *an, int kind, ir_expr *a, ir_expr *b, ir_expr **out) {
  if (a->dtype.lanes == 1) return false;
  ir_arena *ar = an->arena;
  int lanes = a->dtype.lanes;
  ir_broadcast *ba = a->kind == IR_BROADCAST ? (ir_broadcast *)a : NULL;
  ir_broadcast *bb = b->kind == IR_BROADCAST ? (ir_broadcast *)b : NULL;
  ir_ramp *ra = a->kind == IR_RAMP ? (ir_ramp *)a : NULL;
  ir_ramp *rb = b->kind == IR_RAMP ? (ir_ramp *)b : NULL;
  if (ba && bb) {
    ir_expr *s = ir_binop(ar, kind, ba->value, bb->value);
    s = s ? simp(an, s) : NULL;
    *out = s ? ir_broadcast_new(ar, s, lanes) : NULL;
    return true;
  }
  switch (kind) {
  case IR_ADD:
  case IR_SUB:
    if (ra && rb) {
      *out = make_ramp(an, ir_binop(ar, kind, ra->base, rb->base),
                       ir_binop(ar, kind, ra->stride, rb->stride), lanes);
      return true;
    }
    if (ra && bb) {
      *out = make_ramp(an, ir_binop(ar, kind, ra->base, bb->value), ra->stride, lanes);
      return true;
    }
    if (ba && rb) {
      ir_expr *stride = kind == IR_ADD ? rb->stride
                                       : ir_sub(ar, make_int(an, rb->stride->dtype, 0), rb->stride);
      *out = make_ramp(an, ir_binop(ar, kind, ba->value, rb->base), stride, lanes);
      return true;
    }
    return false;
  case IR_MUL:
    if ((ra && bb) || (ba && rb)) {
      ir_ramp *r = ra ? ra : rb;
      ir_expr *f = ra ? bb->value : ba->value;
      *out = make_ramp(an, ir_mul(ar, r->base, f), ir_mul(ar, r->stride, f), lanes);
      return true;
    }
    return false;
  default: return false;
  }
}

/* ---- Other arithmetic --------------------------------------------------------------------- */

/* ADD, SUB, MUL of floats, uint64 and vectors: folding and the identities that are exact
 * for the type. Floats: x*1 and 1*x, x - (+0.0); not x + 0 (-0.0 + 0.0 is +0.0) nor x*0
 * (NaN, -0.0). */
static ir_expr *simp_arith(ir_analyzer *an, ir_expr *e) {
  ir_binary *x = (ir_binary *)e;
  int kind = e->kind;
  ir_expr *a = simp(an, x->a), *b = a ? simp(an, x->b) : NULL, *r;
  if (!a || !b) return NULL;
  if (fold_binary(an, kind, a, b, &r) || simp_vector(an, kind, a, b, &r)) return r;
  bool isint = ir_dt_is_int(e->dtype);
  switch (kind) {
  case IR_ADD:
    if (isint && is_const_value(b, 0, false)) return a;
    if (isint && is_const_value(a, 0, false)) return b;
    break;
  case IR_SUB:
    if (is_const_value(b, 0, true)) return a;
    if (isint && expr_equal(a, b)) {
      ir_expr *z = make_int(an, ir_dt_scalar(e->dtype), 0);
      return e->dtype.lanes == 1 || !z ? z : ir_broadcast_new(an->arena, z, e->dtype.lanes);
    }
    break;
  case IR_MUL:
    if (is_const_value(b, 1, false)) return a;
    if (is_const_value(a, 1, false)) return b;
    if (isint && is_const_value(b, 0, false)) return b;
    if (isint && is_const_value(a, 0, false)) return a;
    break;
  }
  return rebuild_bin(an, e, kind, a, b);
}

/* MIN and MAX: folding, min(x, x), and the operand that bounds (or, for int32/int64, the
 * bounds of the difference) show to be the smaller / larger one. */
static ir_expr *simp_minmax(ir_analyzer *an, ir_expr *e, int kind, ir_expr *a, ir_expr *b) {
  ir_expr *r;
  if (fold_binary(an, kind, a, b, &r) || simp_vector(an, kind, a, b, &r)) return r;
  if (expr_equal(a, b)) return a;
  kiln_dtype t = a->dtype;
  if (!ir_dt_is_int(t)) return rebuild_bin(an, e, kind, a, b);
  int first = kind == IR_MIN ? IR_LE : IR_GE; /* a is the answer when `a first b` */
  ir_interval ab = ir_bound_of(an, a), bb = ir_bound_of(an, b);
  if (ir_arith_decide(first, ab, bb, ir_dt_scalar(t)) == 1) return a;
  if (ir_arith_decide(first, bb, ab, ir_dt_scalar(t)) == 1) return b;
  if (assume_no_overflow(t)) {
    lin D;
    lin_init(&D, t);
    bool ok = lin_diff(an, &D, a, b);
    ir_interval db = ok ? lin_bound_assuming(an, &D) : IR_INTERVAL_EVERYTHING;
    lin_free(an, &D);
    if (!ok) return NULL;
    if (ir_arith_decide(first, db, (ir_interval){0, 0}, t) == 1) return a;
    if (ir_arith_decide(first, (ir_interval){0, 0}, db, t) == 1) return b;
  }
  /* min(min(x, c1), c2) -> min(x, min(c1, c2)) */
  if (a->kind == kind && ir_as_int(b) && ir_as_int(((ir_binary *)a)->b)) {
    ir_expr *c;
    if (fold_binary(an, kind, ((ir_binary *)a)->b, b, &c))
      return c ? simp_minmax(an, NULL, kind, ((ir_binary *)a)->a, c) : NULL;
  }
  return rebuild_bin(an, e, kind, a, b);
}

static int flip_cmp(int op) {
  switch (op) {
  case IR_LT: return IR_GT;
  case IR_LE: return IR_GE;
  case IR_GT: return IR_LT;
  case IR_GE: return IR_LE;
  default: return op;
  }
}

static int negate_cmp(int op) {
  switch (op) {
  case IR_EQ: return IR_NE;
  case IR_NE: return IR_EQ;
  case IR_LT: return IR_GE;
  case IR_LE: return IR_GT;
  case IR_GT: return IR_LE;
  default: return IR_LT;
  }
}

/* 1/0 for a comparison of a constant with 0. */
static bool cmp_zero(int op, int64_t d) {
  switch (op) {
  case IR_EQ: return d == 0;
  case IR_NE: return d != 0;
  case IR_LT: return d < 0;
  case IR_LE: return d <= 0;
  case IR_GT: return d > 0;
  default: return d >= 0;
  }
}

/* Comparisons of integers through D = a - b (canonical): decided when D is a constant or
 * its bounds are on one side of 0; otherwise rearranged as P OP N - k, where P are the terms
 * with positive coefficients, N the others (negated) and k the constant: x + 3 < 10 becomes
 * x < 7, i + 1 < n becomes i < n - 1, and 0 < x becomes x > 0 (the left side is never a bare
 * constant). EQ/NE are exact modulo 2^bits for every integer type; ordering comparisons
 * need the no-overflow assumption. Returns the result, or NULL with *err on error, or NULL
 * when nothing applies. */
static ir_expr *cmp_by_difference(ir_analyzer *an, int kind, ir_expr *a, ir_expr *b, bool *err) {
  kiln_dtype t = a->dtype;
  lin D, P, N;
  lin_init(&D, t);
  lin_init(&P, t);
  lin_init(&N, t);
  ir_expr *res = NULL;
  *err = true;
  if (!lin_diff(an, &D, a, b)) goto out;
  *err = false;
  if (D.n == 0) {
    res = make_bool(an, cmp_zero(kind, D.k));
    *err = !res;
    goto out;
  }
  /* a == b iff a - b wraps to 0: EQ/NE use the wrap-safe bound of D; orderings compare the
   * mathematical a - b (no-overflow assumption) */
  ir_interval db = kind == IR_EQ || kind == IR_NE ? lin_bound(an, &D) : lin_bound_assuming(an, &D);
  int d = ir_arith_decide(kind, db, (ir_interval){0, 0}, t);
  if (d >= 0) {
    res = make_bool(an, d);
    *err = !res;
    goto out;
  }
  bool ok = true;
  for (int i = 0; i < D.n && ok; i++) {
    int64_t c = D.terms[i].c;
    if (c < 0 && !neg_fits(t, c)) goto out; /* cannot be moved to the right */
    ok = c > 0 ? lin_add_term(an, &P, D.terms[i].e, c) : lin_add_term(an, &N, D.terms[i].e, -c);
  }
  *err = !ok;
  if (!ok) goto out;
  /* P + k OP N, i.e. P OP N - k; with P empty: N OP' k (OP' mirrored). */
  int op = kind;
  lin *lhs = &P, *rhs = &N;
  if (P.n == 0) {
    op = flip_cmp(kind);
    lhs = &N;
    rhs = &P;
    lin_add_const(rhs, D.k);
  } else {
    if (!neg_fits(t, D.k)) goto out;
    lin_add_const(rhs, -D.k);
  }
  if (op == kind && lin_matches(lhs, a) && lin_matches(rhs, b)) goto out; /* already so */
  /* the new sides may be decided where the old were not (u8 + 200 != 10: u8 != 66) */
  d = ir_arith_decide(op, lin_bound(an, lhs), lin_bound(an, rhs), t);
  if (d >= 0) {
    res = make_bool(an, d);
    *err = !res;
    goto out;
  }
  ir_expr *l = lin_result(an, lhs, NULL), *r = l ? lin_result(an, rhs, NULL) : NULL;
  res = r ? ir_binop(an->arena, op, l, r) : NULL;
  *err = !res;
out:
  lin_free(an, &D);
  lin_free(an, &P);
  lin_free(an, &N);
  return res;
}

/* EQ .. GE with simplified operands. */
static ir_expr *simp_cmp(ir_analyzer *an, ir_expr *e, int kind, ir_expr *a, ir_expr *b) {
  ir_expr *r;
  if (fold_binary(an, kind, a, b, &r) || simp_vector(an, kind, a, b, &r)) return r;
  kiln_dtype t = a->dtype;
  bool discrete = ir_dt_is_int(t) || ir_dt_is_bool(t); /* floats: NaN != NaN */
  if (!discrete || t.lanes != 1) return rebuild_bin(an, e, kind, a, b);
  if (expr_equal(a, b)) return make_bool(an, kind == IR_EQ || kind == IR_LE || kind == IR_GE);
  int d = ir_arith_decide(kind, ir_bound_of(an, a), ir_bound_of(an, b), t);
  if (d >= 0) return make_bool(an, d);
  if (ir_dt_is_bool(t) && (kind == IR_EQ || kind == IR_NE)) {
    /* c == true -> c, c == false -> !c, and so on */
    const ir_int_imm *cb = ir_as_int(b), *ca = ir_as_int(a);
    ir_expr *other = cb ? a : ca ? b : NULL;
    if (other) {
      bool same = (cb ? cb : ca)->value == (kind == IR_EQ);
      return same ? other : simp(an, ir_not_new(an->arena, other));
    }
  }
  if (lin_ok(t) && (kind == IR_EQ || kind == IR_NE || assume_no_overflow(t))) {
    bool err;
    r = cmp_by_difference(an, kind, a, b, &err);
    if (r || err) return r;
  }
  return rebuild_bin(an, e, kind, a, b);
}

/* AND / OR: the right operand is simplified knowing the left one's outcome (for a && b, b
 * only matters when a holds), then constants, x && x, x && !x. */
static ir_expr *simp_logic(ir_analyzer *an, ir_expr *e) {
  ir_binary *x = (ir_binary *)e;
  int kind = e->kind;
  ir_expr *a = simp(an, x->a), *b = NULL, *r;
  if (!a) return NULL;
  ir_scope facts[8];
  ir_scope *saved = an->scope;
  ir_arith_learn(an, a, kind == IR_OR, facts, 8);
  b = simp(an, x->b);
  an->scope = saved;
  if (!b) return NULL;
  if (fold_binary(an, kind, a, b, &r) || simp_vector(an, kind, a, b, &r)) return r;
  bool is_and = kind == IR_AND;
  const ir_int_imm *ca = ir_as_int(a), *cb = ir_as_int(b);
  if (ca) return ca->value == is_and ? b : a; /* true && b -> b, false && b -> false */
  if (cb) return cb->value == is_and ? a : b;
  if (expr_equal(a, b)) return a;
  if ((a->kind == IR_NOT && expr_equal(((ir_not *)a)->a, b)) ||
      (b->kind == IR_NOT && expr_equal(((ir_not *)b)->a, a))) {
    if (e->dtype.lanes == 1) return make_bool(an, !is_and);
  }
  return rebuild_bin(an, e, kind, a, b);
}

/* True if !e can be written without a NOT: e is a negation, or a comparison of integers or
 * bools (!(x < y) is x >= y; not for floats, where NaN makes both false). */
static bool negatable(const ir_expr *e) {
  if (e->kind == IR_NOT) return true;
  if (e->kind < IR_EQ || e->kind > IR_GE) return false;
  kiln_dtype t = ((const ir_binary *)e)->a->dtype;
  return ir_dt_is_int(t) || ir_dt_is_bool(t);
}

/* !e for a simplified e that is negatable. */
static ir_expr *negate(ir_analyzer *an, ir_expr *e) {
  if (e->kind == IR_NOT) return ((ir_not *)e)->a;
  ir_binary *x = (ir_binary *)e;
  return ir_binop(an->arena, negate_cmp(e->kind), x->a, x->b);
}

/* !: constants, !!x, negated comparisons, and De Morgan when both sides negate
 * (!(x < 8 || x >= 12) -> x >= 8 && x < 12). */
static ir_expr *simp_not(ir_analyzer *an, ir_expr *e) {
  ir_expr *a = simp(an, ((ir_not *)e)->a);
  if (!a) return NULL;
  const ir_int_imm *c = ir_as_int(a);
  if (c) return make_bool(an, !c->value);
  if (negatable(a)) return negate(an, a);
  if (a->kind == IR_AND || a->kind == IR_OR) {
    ir_binary *x = (ir_binary *)a;
    if (negatable(x->a) && negatable(x->b)) {
      ir_expr *p = negate(an, x->a), *q = p ? negate(an, x->b) : NULL;
      return q ? ir_binop(an->arena, a->kind == IR_AND ? IR_OR : IR_AND, p, q) : NULL;
    }
  }
  if (a == ((ir_not *)e)->a) return e;
  return ir_not_new(an->arena, a);
}

/* select: decided conditions; each branch simplified knowing the condition's outcome;
 * select(c, x, x) -> x; select(c, true, false) -> c. */
static ir_expr *simp_select(ir_analyzer *an, ir_expr *e) {
  ir_select *x = (ir_select *)e;
  ir_expr *c = simp(an, x->cond);
  if (!c) return NULL;
  const ir_int_imm *cc = ir_as_int(c);
  if (cc) return simp(an, cc->value ? x->t : x->f);
  ir_scope facts[8];
  ir_scope *saved = an->scope;
  ir_arith_learn(an, c, false, facts, 8);
  ir_expr *t = simp(an, x->t);
  an->scope = saved;
  if (!t) return NULL;
  ir_arith_learn(an, c, true, facts, 8);
  ir_expr *f = simp(an, x->f);
  an->scope = saved;
  if (!f) return NULL;
  if (expr_equal(t, f)) return t;
  if (ir_dt_eq(e->dtype, KILN_BOOL) && ir_as_int(t) && ir_as_int(f))
    return ir_as_int(t)->value ? c : simp(an, ir_not_new(an->arena, c));
  if (c == x->cond && t == x->t && f == x->f) return e;
  return ir_select_new(an->arena, c, t, f);
}

static ir_expr *simp_cast(ir_analyzer *an, ir_expr *e) {
  ir_cast *x = (ir_cast *)e;
  ir_expr *v = simp(an, x->value), *r;
  if (!v) return NULL;
  if (ir_dt_eq(v->dtype, e->dtype)) return v;
  if (fold_cast(an, e->dtype, v, &r)) return r;
  if (v == x->value) return e;
  return ir_cast_new(an->arena, e->dtype, v);
}

/* let x = v in body: a constant or variable value is substituted; otherwise the body is
 * simplified knowing x's bounds, and the let disappears when x is no longer used. */
static ir_expr *simp_let(ir_analyzer *an, ir_expr *e) {
  ir_let *x = (ir_let *)e;
  ir_expr *v = simp(an, x->value);
  if (!v) return NULL;
  if (v->kind == IR_INT_IMM || v->kind == IR_FLOAT_IMM || v->kind == IR_VAR) {
    ir_expr *body = ir_substitute(an->arena, x->body, 1, &x->var, &v);
    return body ? simp(an, body) : NULL;
  }
  ir_scope s;
  ir_scope *saved = an->scope;
  if (ir_dt_is_int(v->dtype)) ir_arith_push(an, &s, x->var, ir_bound_of(an, v));
  ir_expr *body = simp(an, x->body);
  an->scope = saved;
  if (!body) return NULL;
  if (!find_uses(body, x->var).used) return body;
  if (v == x->value && body == x->body) return e;
  return ir_let_new(an->arena, x->var, v, body);
}

static ir_node *visit(ir_mutator *m, ir_node *n);

/* Rebuilds n with its children simplified (the same pointer when none changed). */
static ir_node *simp_children(ir_analyzer *an, ir_node *n) {
  ir_mutator m = {an->arena, visit, an};
  return ir_mutate_children(&m, n);
}

static ir_expr *simp_inner(ir_analyzer *an, ir_expr *e) {
  switch ((ir_kind)e->kind) {
  case IR_INT_IMM:
  case IR_FLOAT_IMM:
  case IR_STR_IMM: return e;
  case IR_VAR: {
    /* a variable known to hold one value (a loop of extent 1 kept for its annotations,
     * the branch of x == 3) is that value */
    ir_interval r = ir_arith_var_range(an, (const ir_var *)e);
    if (r.min == r.max && lin_ok(e->dtype)) return make_int(an, e->dtype, r.min);
    return e;
  }
  case IR_ADD:
  case IR_SUB:
  case IR_MUL: return lin_ok(e->dtype) ? simp_linear(an, e) : simp_arith(an, e);
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
  case IR_GE: {
    ir_binary *x = (ir_binary *)e;
    ir_expr *a = simp(an, x->a), *b = a ? simp(an, x->b) : NULL, *r;
    if (!a || !b) return NULL;
    if (e->kind >= IR_EQ) return simp_cmp(an, e, e->kind, a, b);
    if (e->kind == IR_MIN || e->kind == IR_MAX) return simp_minmax(an, e, e->kind, a, b);
    if (simp_vector(an, e->kind, a, b, &r)) return r;
    return simp_divmod(an, e, e->kind, a, b);
  }
  case IR_AND:
  case IR_OR: return simp_logic(an, e);
  case IR_NOT: return simp_not(an, e);
  case IR_SELECT: return simp_select(an, e);
  case IR_CAST: return simp_cast(an, e);
  case IR_RAMP: {
    ir_ramp *x = (ir_ramp *)e;
    ir_expr *base = simp(an, x->base), *stride = base ? simp(an, x->stride) : NULL;
    if (!stride) return NULL;
    if (is_const_value(stride, 0, false)) return ir_broadcast_new(an->arena, base, x->lanes);
    if (base == x->base && stride == x->stride) return e;
    return ir_ramp_new(an->arena, base, stride, x->lanes);
  }
  case IR_CALL: {
    ir_expr *n = simp_children(an, e), *r;
    if (n && fold_call(an, (ir_call *)n, &r)) return r;
    return n;
  }
  case IR_LET: return simp_let(an, e);
  case IR_BROADCAST:
  case IR_LOAD: return simp_children(an, e);
  case IR_STORE:
  case IR_FOR:
  case IR_IF:
  case IR_SEQ:
  case IR_LET_STMT:
  case IR_ALLOCATE:
  case IR_EVALUATE:
  case IR_BLOCK:
  case IR_BLOCK_REALIZE: return simp_stmt(an, e);
  case IR_BUFFER:
  case IR_ITER_VAR:
  case IR_RANGE:
  case IR_REGION:
  case IR_ANNOT:
  case IR_FUNC:
  case IR_KIND_COUNT: break;
  }
  return e; /* auxiliary nodes (regions, buffers, annotations) are left alone */
}

/* The simplifier's recursion: a depth guard, and new nodes carry the span of the node they
 * replace. */
static ir_expr *simp(ir_analyzer *an, ir_expr *e) {
  if (!e || an->depth >= IR_ARITH_MAX_DEPTH) return e; /* NULL: a failed constructor */
  an->depth++;
  ir_span saved = an->arena->span;
  an->arena->span = e->span;
  ir_expr *r = simp_inner(an, e);
  an->arena->span = saved;
  an->depth--;
  return r;
}

/* ---- Statements --------------------------------------------------------------------------- */

static ir_node *visit(ir_mutator *m, ir_node *n) { return simp((ir_analyzer *)m->ud, n); }

/* The range of a loop variable or block iterator running over [min, min + extent): from
 * the bounds of min and extent, within the variable's dtype. False when nothing useful is
 * known (or the loop never runs). */
static bool iter_range(ir_analyzer *an, ir_expr *min, ir_expr *extent, kiln_dtype t,
                       ir_interval *out) {
  ir_interval m = ir_bound_of(an, min), x = ir_bound_of(an, extent), d = ir_arith_dtype_range(t);
  if (!ir_arith_bound_usable(m, t) || !ir_arith_bound_usable(x, t) || x.max < 1) return false;
  int64_t hi;
  if (__builtin_add_overflow(m.max, x.max - 1, &hi) || hi > d.max) hi = d.max;
  *out = (ir_interval){m.min, hi};
  return m.min <= hi;
}

/* for: extent 0 (or less) -> evaluate(0); extent 1 without annotations -> the body with the
 * variable replaced by min; otherwise the body is simplified knowing the variable's range
 * (and a loop whose body became a no-op goes).
 * Annotated loops of extent 1 stay, so that annotations (e.g. thread bindings) survive. */
static ir_stmt *simp_for(ir_analyzer *an, ir_for *x) {
  ir_expr *min = simp(an, x->min), *ext = min ? simp(an, x->extent) : NULL;
  if (!ext) return NULL;
  const ir_int_imm *ce = ir_as_int(ext);
  if (ce && ce->value <= 0) return make_nop(an);
  if (ce && ce->value == 1 && x->nannots == 0 && !find_uses(x->body, x->var).in_buffer) {
    ir_stmt *body = ir_substitute(an->arena, x->body, 1, &x->var, &min);
    return body ? simp_stmt(an, body) : NULL;
  }
  ir_scope s;
  ir_scope *saved = an->scope;
  ir_interval r;
  if (iter_range(an, min, ext, x->var->h.dtype, &r)) ir_arith_push(an, &s, x->var, r);
  ir_stmt *body = simp_stmt(an, x->body);
  an->scope = saved;
  if (!body) return NULL;
  if (is_nop(body)) return body; /* a loop that does nothing */
  if (min == x->min && ext == x->extent && body == x->body) return &x->h;
  return ir_for_new(an->arena, x->var, min, ext, x->for_kind, x->nannots, x->annots, body);
}

/* if: a decided condition keeps only its branch; otherwise each branch is simplified
 * knowing the condition's outcome. */
static ir_stmt *simp_if(ir_analyzer *an, ir_if *x) {
  ir_expr *c = simp(an, x->cond);
  if (!c) return NULL;
  const ir_int_imm *cc = ir_as_int(c);
  if (cc) {
    if (cc->value) return simp_stmt(an, x->then_case);
    return x->else_case ? simp_stmt(an, x->else_case) : make_nop(an);
  }
  ir_scope facts[8];
  ir_scope *saved = an->scope;
  ir_arith_learn(an, c, false, facts, 8);
  ir_stmt *t = simp_stmt(an, x->then_case);
  an->scope = saved;
  if (!t) return NULL;
  ir_stmt *f = NULL;
  if (x->else_case) {
    ir_arith_learn(an, c, true, facts, 8);
    f = simp_stmt(an, x->else_case);
    an->scope = saved;
    if (!f) return NULL;
  }
  if (is_nop(t) && (!f || is_nop(f))) return t; /* branches that do nothing */
  if (c == x->cond && t == x->then_case && f == x->else_case) return &x->h;
  return ir_if_new(an->arena, c, t, f);
}

/* seq: each statement simplified; evaluate(constant) no-ops dropped while other statements
 * remain (a sequence left with one statement becomes that statement). Nested sequences are
 * kept as they are. */
static ir_stmt *simp_seq(ir_analyzer *an, ir_seq *x) {
  int n = x->nstmts;
  size_t size = (size_t)n * sizeof(ir_stmt *);
  ir_stmt **tmp = ir_malloc(an->ctx, size);
  if (!tmp) return NULL;
  bool changed = false;
  int kept = 0;
  ir_stmt *res = NULL, *first = NULL;
  for (int i = 0; i < n; i++) {
    ir_stmt *s = simp_stmt(an, x->stmts[i]);
    if (!s) goto out;
    if (i == 0) first = s;
    changed |= s != x->stmts[i];
    if (!is_nop(s)) tmp[kept++] = s;
  }
  if (kept == n) /* tmp holds every statement, in order */
    res = changed ? ir_seq_new(an->arena, n, tmp) : &x->h;
  else if (kept == 0) /* only no-ops: one stays */
    res = n == 1 && !changed ? &x->h : first;
  else if (kept == 1)
    res = tmp[0];
  else
    res = ir_seq_new(an->arena, kept, tmp);
out:
  ir_free(an->ctx, tmp, size);
  return res;
}

/* let_stmt: as the let expression; a variable that a buffer's shape uses keeps its let. */
static ir_stmt *simp_let_stmt(ir_analyzer *an, ir_let_stmt *x) {
  ir_expr *v = simp(an, x->value);
  if (!v) return NULL;
  var_use u = find_uses(x->body, x->var);
  if ((v->kind == IR_INT_IMM || v->kind == IR_FLOAT_IMM || v->kind == IR_VAR) && !u.in_buffer) {
    ir_stmt *body = ir_substitute(an->arena, x->body, 1, &x->var, &v);
    return body ? simp_stmt(an, body) : NULL;
  }
  ir_scope s;
  ir_scope *saved = an->scope;
  if (ir_dt_is_int(v->dtype)) ir_arith_push(an, &s, x->var, ir_bound_of(an, v));
  ir_stmt *body = simp_stmt(an, x->body);
  an->scope = saved;
  if (!body) return NULL;
  if (!find_uses(body, x->var).used) return body;
  if (v == x->value && body == x->body) return &x->h;
  return ir_let_stmt_new(an->arena, x->var, v, body);
}

/* A block's init and body, its iterators known to lie in their domains (pushed by the
 * caller when it knows better, see simp_realize). Iterator domains, regions, allocated
 * buffers and annotations are left alone. */
static ir_stmt *simp_block(ir_analyzer *an, ir_block *b, bool bind_iters) {
  ir_scope stack_facts[16], *facts = stack_facts;
  size_t size = 0;
  ir_scope *saved = an->scope;
  if (bind_iters && b->niters > 16) {
    size = (size_t)b->niters * sizeof(ir_scope);
    if (!(facts = ir_malloc(an->ctx, size))) return NULL;
  }
  for (int i = 0; bind_iters && i < b->niters; i++) {
    ir_iter_var *iv = b->iters[i];
    ir_interval r;
    if (iter_range(an, iv->min, iv->extent, iv->var->h.dtype, &r))
      ir_arith_push(an, &facts[i], iv->var, r);
  }
  ir_stmt *init = b->init ? simp_stmt(an, b->init) : NULL;
  ir_stmt *body = !b->init || init ? simp_stmt(an, b->body) : NULL;
  an->scope = saved;
  if (size) ir_free(an->ctx, facts, size);
  if (!body) return NULL;
  if (init == b->init && body == b->body) return &b->h;
  return &ir_block_new(an->arena, b->name, b->niters, b->iters, b->nreads, b->reads, b->nwrites,
                       b->writes, b->nallocs, b->allocs, b->nannots, b->annots, init, body)
              ->h;
}

/* block_realize: the bound values and the predicate simplified; inside the block each
 * iterator lies in its domain and in the bounds of the value bound to it. */
static ir_stmt *simp_realize(ir_analyzer *an, ir_block_realize *x) {
  ir_block *b = x->block;
  int n = x->nvalues;
  size_t vsize = (size_t)n * sizeof(ir_expr *), fsize = (size_t)n * sizeof(ir_scope);
  ir_expr **vals = n ? ir_malloc(an->ctx, vsize) : NULL;
  ir_scope *facts = n ? ir_malloc(an->ctx, fsize) : NULL;
  ir_stmt *res = NULL;
  bool changed = false;
  if (n && (!vals || !facts)) goto out;
  for (int i = 0; i < n; i++) {
    if (!(vals[i] = simp(an, x->values[i]))) goto out;
    changed |= vals[i] != x->values[i];
  }
  ir_expr *pred = simp(an, x->predicate);
  if (!pred) goto out;
  ir_scope *saved = an->scope;
  for (int i = 0; i < n && i < b->niters; i++) {
    ir_iter_var *iv = b->iters[i];
    kiln_dtype t = iv->var->h.dtype;
    ir_interval dom, v = ir_bound_of(an, vals[i]);
    if (!iter_range(an, iv->min, iv->extent, t, &dom)) dom = ir_arith_dtype_range(t);
    if (ir_arith_bound_usable(v, t)) {
      if (v.min > dom.min) dom.min = v.min;
      if (v.max < dom.max) dom.max = v.max;
    }
    if (dom.min <= dom.max && ir_arith_bound_usable(dom, t))
      ir_arith_push(an, &facts[i], iv->var, dom);
  }
  ir_stmt *block = simp_block(an, b, false);
  an->scope = saved;
  if (!block) goto out;
  if (!changed && pred == x->predicate && block == &b->h) res = &x->h;
  else res = ir_block_realize_new(an->arena, n, vals, pred, (ir_block *)block);
out:
  ir_free(an->ctx, vals, vsize);
  ir_free(an->ctx, facts, fsize);
  return res;
}

static ir_stmt *simp_stmt_inner(ir_analyzer *an, ir_stmt *s) {
  switch ((ir_kind)s->kind) {
  case IR_FOR: return simp_for(an, (ir_for *)s);
  case IR_IF: return simp_if(an, (ir_if *)s);
  case IR_SEQ: return simp_seq(an, (ir_seq *)s);
  case IR_LET_STMT: return simp_let_stmt(an, (ir_let_stmt *)s);
  case IR_BLOCK: return simp_block(an, (ir_block *)s, true);
  case IR_BLOCK_REALIZE: return simp_realize(an, (ir_block_realize *)s);
  case IR_STORE:
  case IR_ALLOCATE:
  case IR_EVALUATE: return simp_children(an, s);
  case IR_INT_IMM:
  case IR_FLOAT_IMM:
  case IR_STR_IMM:
  case IR_VAR:
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
  case IR_OR:
  case IR_NOT:
  case IR_SELECT:
  case IR_CAST:
  case IR_RAMP:
  case IR_BROADCAST:
  case IR_LOAD:
  case IR_CALL:
  case IR_LET: return simp(an, s);
  case IR_BUFFER:
  case IR_ITER_VAR:
  case IR_RANGE:
  case IR_REGION:
  case IR_ANNOT:
  case IR_FUNC:
  case IR_KIND_COUNT: break;
  }
  return s;
}

static ir_stmt *simp_stmt(ir_analyzer *an, ir_stmt *s) {
  if (!s || an->depth >= IR_ARITH_MAX_DEPTH) return s;
  an->depth++;
  ir_span saved = an->arena->span;
  an->arena->span = s->span;
  ir_stmt *r = simp_stmt_inner(an, s);
  an->arena->span = saved;
  an->depth--;
  return r;
}

/* ---- Entry points ------------------------------------------------------------------------- */

ir_expr *ir_simplify_expr(ir_analyzer *an, ir_expr *e) {
  if (!an || !e) return NULL;
  return simp(an, e);
}

ir_stmt *ir_simplify_stmt(ir_analyzer *an, ir_stmt *s) {
  if (!an || !s) return NULL;
  return simp_stmt(an, s);
}

ir_func *ir_simplify_func(ir_arena *a, ir_func *f) {
  if (!a || !f) return NULL;
  ir_analyzer *an = ir_analyzer_new(a);
  if (!an) return NULL;
  ir_stmt *body = simp_stmt(an, f->body);
  ir_analyzer_free(an);
  if (!body) return NULL;
  if (body == f->body) return f;
  ir_span saved = a->span;
  a->span = f->h.span;
  ir_func *r = ir_func_new(a, f->name, f->nparams, f->params, f->nattrs, f->attrs, body);
  a->span = saved;
  return r;
}

bool ir_prove(ir_analyzer *an, const ir_expr *e) {
  if (!an || !e || !ir_is_expr(e) || !ir_dt_eq(e->dtype, KILN_BOOL)) return false;
  if (ir_bound_of(an, e).min == 1) return true; /* cheap and allocation-free first */
  const ir_int_imm *c = ir_as_int(simp(an, (ir_expr *)e));
  return c && c->value == 1;
}

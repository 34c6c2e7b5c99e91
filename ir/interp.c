/* interp.c: the reference interpreter for TIR: slow, exact and defensive. It is the oracle
 * that schedules, lowering and code generation are checked against, so every operation
 * follows its dtype exactly (integer wrap-around, float32 rounding after each operation,
 * float16/bfloat16 round-to-nearest-even) and every bad access is a clean KILN_ERR_RUNTIME
 * instead of a crash. The function is verified first (verify.c); the interpreter relies on
 * that for scoping and typing. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "verify.h"

/* Buffers the interpreter allocates (allocate statements, block alloc buffers) may not be
 * larger than this; a larger one is a runtime error rather than an attempt. */
#define INTERP_MAX_ALLOC_BYTES ((uint64_t)1 << 32)

/* One lane of a value. The dtype of the expression that produced it says which member is
 * live: `i` for int, uint (zero-extended bits), bool (0 or 1) and handle (opaque bits), `f`
 * for every float type (already rounded to the type's precision). */
typedef union scalar {
  int64_t i;
  double f;
} scalar;

/* A buffer while the function runs: where its elements are and how they are laid out. */
typedef struct buf_state {
  const ir_buffer *buf;
  unsigned char *data;  /* NULL until bound (and for buffers without elements) */
  size_t owned_bytes;   /* bytes the interpreter allocated for it, 0 for parameters */
  int64_t *shape;       /* ndim entries each, evaluated when the buffer is bound */
  int64_t *strides;     /* in elements; dense row-major unless the buffer says otherwise */
  int64_t elem_offset;
  size_t elem_bytes;
} buf_state;

typedef struct interp {
  kiln_context *ctx;
  const ir_func *f;
  ir_arena *arena;     /* slots and buffer states, freed at the end */
  ir_ptrmap vars;      /* ir_var * -> scalar * (its slot) */
  ir_ptrmap bufs;      /* ir_buffer * -> buf_state * */
  int max_lanes;       /* widest store in the function */
  scalar *lane_vals;   /* scratch for vector stores: values and element offsets per lane */
  int64_t *lane_offs;
  kiln_status st;      /* error of the preparation walk */
} interp;

#define TRY(x)                           \
  do {                                   \
    kiln_status st_ = (x);               \
    if (st_ != KILN_OK) return st_;      \
  } while (0)

static kiln_status ifail(interp *I, const ir_node *n, kiln_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records "interpret: function 'f': <message>" at n's span. */
static kiln_status ifail(interp *I, const ir_node *n, kiln_status code, const char *fmt, ...) {
  char msg[800];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ir_fail(I->ctx, n ? n->span : IR_NO_SPAN, code, "interpret: function '%s': %s",
                 I->f->name, msg);
}

static const char *dts(kiln_dtype t, char *buf) { return kiln_dtype_str(t, buf, 32); }

/* "4, 8, 16" into buf (truncated with "..." if it does not fit). */
static const char *fmt_ints(char *buf, size_t size, const int64_t *v, int n) {
  size_t len = 0;
  buf[0] = 0;
  for (int i = 0; i < n; i++) {
    int w = snprintf(buf + len, size - len, "%s%lld", i ? ", " : "", (long long)v[i]);
    if (w < 0 || (size_t)w >= size - len) {
      snprintf(buf + (size > 4 ? size - 4 : 0), size > 4 ? 4 : size, "...");
      break;
    }
    len += (size_t)w;
  }
  return buf;
}

/* ---- Numbers ------------------------------------------------------------------------ */

/* Brings the bits v to the width of integer type t: sign-extended for int, zero-extended
 * for uint, 0 or 1 for bool. This is where integer arithmetic wraps around. */
static int64_t wrap_int(kiln_dtype t, uint64_t v) {
  if (t.code == KILN_TYPE_BOOL) return v != 0;
  if (t.bits >= 64) return (int64_t)v; /* two's complement: GCC and Clang define this */
  uint64_t mask = ((uint64_t)1 << t.bits) - 1;
  v &= mask;
  if (t.code == KILN_TYPE_INT && ((v >> (t.bits - 1)) & 1)) v |= ~mask;
  return (int64_t)v;
}

/* The bits of x rounded (to nearest, ties to even) to a binary float format with `ebits`
 * exponent and `mbits` fraction bits: float16 is (5, 10), bfloat16 (8, 7). Overflow gives
 * infinity, tiny values subnormals or zero, NaN a quiet NaN. */
static uint32_t small_float_bits(double x, int ebits, int mbits) {
  uint32_t sign = signbit(x) ? (uint32_t)1 << (ebits + mbits) : 0;
  uint32_t exp_all = ((uint32_t)1 << ebits) - 1;
  int bias = (1 << (ebits - 1)) - 1;
  if (isnan(x)) return sign | exp_all << mbits | (uint32_t)1 << (mbits - 1);
  double a = fabs(x);
  if (isinf(a)) return sign | exp_all << mbits;
  if (a == 0) return sign;
  int e;
  frexp(a, &e); /* a = m * 2^e, m in [0.5, 1): the leading bit has weight 2^(e-1) */
  int E = e - 1, emin = 1 - bias;
  if (E < emin) E = emin; /* subnormal: the quantum stays 2^(emin - mbits) */
  /* q counts quanta of 2^(E - mbits); scaling by a power of two is exact. */
  double q = ldexp(a, mbits - E);
  double r = floor(q), diff = q - r;
  if (diff > 0.5 || (diff == 0.5 && fmod(r, 2.0) != 0)) r += 1;
  uint64_t sig = (uint64_t)r;
  if (sig >> (mbits + 1)) { /* rounding carried into the next binade */
    sig >>= 1;
    E++;
  }
  if (sig < ((uint64_t)1 << mbits)) return sign | (uint32_t)sig; /* subnormal or zero */
  int biased = E + bias;
  if (biased >= (int)exp_all) return sign | exp_all << mbits; /* overflow */
  return sign | (uint32_t)biased << mbits | (uint32_t)(sig & (((uint64_t)1 << mbits) - 1));
}

/* The exact value of a small float's bits (see small_float_bits). */
static double small_float_value(uint32_t bits, int ebits, int mbits) {
  uint32_t exp_all = ((uint32_t)1 << ebits) - 1;
  int bias = (1 << (ebits - 1)) - 1;
  bool neg = (bits >> (ebits + mbits)) & 1;
  uint32_t ex = (bits >> mbits) & exp_all;
  uint32_t frac = bits & (((uint32_t)1 << mbits) - 1);
  double v;
  if (ex == exp_all) v = frac ? NAN : INFINITY;
  else if (ex == 0) v = ldexp((double)frac, 1 - bias - mbits);
  else v = ldexp((double)(frac | (uint32_t)1 << mbits), (int)ex - bias - mbits);
  return neg ? -v : v;
}

enum { F16_E = 5, F16_M = 10, BF16_E = 8, BF16_M = 7 };

/* x rounded to float type t (the double-precision result of one operation becomes the
 * correctly rounded result in t). */
static double round_float(kiln_dtype t, double x) {
  if (t.code == KILN_TYPE_BFLOAT) return small_float_value(small_float_bits(x, BF16_E, BF16_M), BF16_E, BF16_M);
  if (t.bits == 16) return small_float_value(small_float_bits(x, F16_E, F16_M), F16_E, F16_M);
  if (t.bits == 32) return (double)(float)x;
  return x;
}

/* Integer v (unsigned bits when `uns`) as a double, rounded to odd when it has more than 53
 * significant bits: a second rounding to any narrower format is then still correct. */
static double int_to_double_odd(bool uns, int64_t v) {
  bool neg = !uns && v < 0;
  uint64_t m = neg ? 0 - (uint64_t)v : (uint64_t)v;
  int shift = 0;
  uint64_t sticky = 0;
  while (m >> 53) {
    sticky |= m & 1;
    m >>= 1;
    shift++;
  }
  double d = ldexp((double)(m | sticky), shift);
  return neg ? -d : d;
}

/* An integer (or bool) of type `from` converted to float type `to`, correctly rounded. */
static double int_to_float(kiln_dtype from, kiln_dtype to, int64_t v) {
  bool uns = from.code != KILN_TYPE_INT;
  if (to.code == KILN_TYPE_FLOAT && to.bits == 64) return uns ? (double)(uint64_t)v : (double)v;
  if (to.code == KILN_TYPE_FLOAT && to.bits == 32)
    return uns ? (double)(float)(uint64_t)v : (double)(float)v;
  return round_float(to, int_to_double_odd(uns, v));
}

/* Which types the interpreter can hold in a scalar and read from memory. Handles are opaque
 * 64-bit values: they can be passed, selected, loaded and stored but not computed with. */
static bool dtype_supported(kiln_dtype t) {
  switch ((kiln_type_code)t.code) {
  case KILN_TYPE_INT:
  case KILN_TYPE_UINT: return t.bits == 8 || t.bits == 16 || t.bits == 32 || t.bits == 64;
  case KILN_TYPE_FLOAT: return t.bits == 16 || t.bits == 32 || t.bits == 64;
  case KILN_TYPE_BFLOAT: return t.bits == 16;
  case KILN_TYPE_BOOL: return true;
  case KILN_TYPE_HANDLE: return t.bits == 64;
  case KILN_TYPE_VOID: return false;
  }
  return false;
}

/* Bytes of one element of scalar type t in memory (bool: one byte). */
static size_t elem_bytes(kiln_dtype t) {
  return t.code == KILN_TYPE_BOOL ? 1 : (size_t)t.bits / 8;
}

/* Reads one element of scalar type t (a supported one) at p. */
static scalar mem_read(kiln_dtype t, const unsigned char *p) {
  scalar v = {0};
  switch ((kiln_type_code)t.code) {
  case KILN_TYPE_INT:
    if (t.bits == 8) { int8_t x; memcpy(&x, p, 1); v.i = x; }
    else if (t.bits == 16) { int16_t x; memcpy(&x, p, 2); v.i = x; }
    else if (t.bits == 32) { int32_t x; memcpy(&x, p, 4); v.i = x; }
    else { int64_t x; memcpy(&x, p, 8); v.i = x; }
    break;
  case KILN_TYPE_UINT:
  case KILN_TYPE_HANDLE:
    if (t.bits == 8) { uint8_t x; memcpy(&x, p, 1); v.i = x; }
    else if (t.bits == 16) { uint16_t x; memcpy(&x, p, 2); v.i = x; }
    else if (t.bits == 32) { uint32_t x; memcpy(&x, p, 4); v.i = x; }
    else { uint64_t x; memcpy(&x, p, 8); v.i = (int64_t)x; }
    break;
  case KILN_TYPE_BOOL: v.i = *p != 0; break;
  case KILN_TYPE_FLOAT:
    if (t.bits == 16) { uint16_t x; memcpy(&x, p, 2); v.f = small_float_value(x, F16_E, F16_M); }
    else if (t.bits == 32) { float x; memcpy(&x, p, 4); v.f = x; }
    else { memcpy(&v.f, p, 8); }
    break;
  case KILN_TYPE_BFLOAT: {
    uint16_t x;
    memcpy(&x, p, 2);
    v.f = small_float_value(x, BF16_E, BF16_M);
    break;
  }
  case KILN_TYPE_VOID: break; /* rejected before the run */
  }
  return v;
}

/* Writes v (a value of scalar type t) as one element at p. */
static void mem_write(kiln_dtype t, unsigned char *p, scalar v) {
  switch ((kiln_type_code)t.code) {
  case KILN_TYPE_INT:
  case KILN_TYPE_UINT:
  case KILN_TYPE_HANDLE: {
    /* The value already has t's width; its low bytes are the element. */
    uint64_t u = (uint64_t)v.i;
    if (t.bits == 8) { uint8_t x = (uint8_t)u; memcpy(p, &x, 1); }
    else if (t.bits == 16) { uint16_t x = (uint16_t)u; memcpy(p, &x, 2); }
    else if (t.bits == 32) { uint32_t x = (uint32_t)u; memcpy(p, &x, 4); }
    else memcpy(p, &u, 8);
    break;
  }
  case KILN_TYPE_BOOL: *p = v.i != 0; break;
  case KILN_TYPE_FLOAT:
    if (t.bits == 16) { uint16_t x = (uint16_t)small_float_bits(v.f, F16_E, F16_M); memcpy(p, &x, 2); }
    else if (t.bits == 32) { float x = (float)v.f; memcpy(p, &x, 4); }
    else memcpy(p, &v.f, 8);
    break;
  case KILN_TYPE_BFLOAT: {
    uint16_t x = (uint16_t)small_float_bits(v.f, BF16_E, BF16_M);
    memcpy(p, &x, 2);
    break;
  }
  case KILN_TYPE_VOID: break;
  }
}

/* An integer value for messages, signed or unsigned as its type says. */
static const char *fmt_int(kiln_dtype t, int64_t v, char *buf) {
  if (t.code == KILN_TYPE_UINT) snprintf(buf, 32, "%llu", (unsigned long long)v);
  else snprintf(buf, 32, "%lld", (long long)v);
  return buf;
}

/* ---- Expressions -------------------------------------------------------------------- */

static kiln_status eval(interp *I, const ir_node *e, int lane, scalar *out);

static scalar *var_slot(interp *I, const ir_var *v) { return ir_ptrmap_get(&I->vars, v); }

static kiln_status missing_slot(interp *I, const ir_var *v) {
  return ifail(I, &v->h, KILN_ERR_INTERNAL, "variable '%s' has no slot", v->name);
}

/* An integer binary operation of type t (the operands' type). */
static kiln_status int_binary(interp *I, const ir_binary *x, kiln_dtype t, int64_t a, int64_t b,
                              scalar *out) {
  bool uns = t.code != KILN_TYPE_INT;
  uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
  switch (x->h.kind) {
  case IR_ADD: out->i = wrap_int(t, ua + ub); return KILN_OK;
  case IR_SUB: out->i = wrap_int(t, ua - ub); return KILN_OK;
  case IR_MUL: out->i = wrap_int(t, ua * ub); return KILN_OK;
  case IR_DIV:
  case IR_MOD:
  case IR_FLOORDIV:
  case IR_FLOORMOD: {
    if (b == 0) {
      char b1[32];
      return ifail(I, &x->h, KILN_ERR_RUNTIME, "integer division by zero in %s(%s, 0)",
                   ir_kind_name(x->h.kind), fmt_int(t, a, b1));
    }
    uint64_t q, r;
    if (uns) {
      q = ua / ub;
      r = ua % ub;
    } else if (a == INT64_MIN && b == -1) {
      q = (uint64_t)INT64_MIN; /* wraps, as the hardware does */
      r = 0;
    } else {
      int64_t sq = a / b, sr = a % b;
      /* Floor division rounds toward negative infinity: step down when the truncated
       * quotient was rounded up, i.e. the remainder's sign differs from the divisor's. */
      if ((x->h.kind == IR_FLOORDIV || x->h.kind == IR_FLOORMOD) && sr != 0 && ((sr < 0) != (b < 0))) {
        sq -= 1;
        sr += b;
      }
      q = (uint64_t)sq;
      r = (uint64_t)sr;
    }
    out->i = wrap_int(t, x->h.kind == IR_DIV || x->h.kind == IR_FLOORDIV ? q : r);
    return KILN_OK;
  }
  case IR_MIN: out->i = (uns ? ua < ub : a < b) ? a : b; return KILN_OK;
  case IR_MAX: out->i = (uns ? ua > ub : a > b) ? a : b; return KILN_OK;
  case IR_EQ: out->i = a == b; return KILN_OK;
  case IR_NE: out->i = a != b; return KILN_OK;
  case IR_LT: out->i = uns ? ua < ub : a < b; return KILN_OK;
  case IR_LE: out->i = uns ? ua <= ub : a <= b; return KILN_OK;
  case IR_GT: out->i = uns ? ua > ub : a > b; return KILN_OK;
  case IR_GE: out->i = uns ? ua >= ub : a >= b; return KILN_OK;
  case IR_AND: out->i = a && b; return KILN_OK;
  case IR_OR: out->i = a || b; return KILN_OK;
  }
  return ifail(I, &x->h, KILN_ERR_INTERNAL, "%s is not an integer operation", ir_kind_name(x->h.kind));
}

/* A float binary operation of type t: computed in double, rounded to t. min and max follow
 * IEEE minNum/maxNum (a NaN operand loses). */
static kiln_status float_binary(interp *I, const ir_binary *x, kiln_dtype t, double a, double b,
                                scalar *out) {
  double r;
  switch (x->h.kind) {
  case IR_ADD: r = a + b; break;
  case IR_SUB: r = a - b; break;
  case IR_MUL: r = a * b; break;
  case IR_DIV: r = a / b; break;
  case IR_MOD: r = fmod(a, b); break;
  case IR_FLOORDIV: r = floor(a / b); break;
  case IR_FLOORMOD:
    r = fmod(a, b);
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    break;
  case IR_MIN: r = fmin(a, b); break;
  case IR_MAX: r = fmax(a, b); break;
  case IR_EQ: out->i = a == b; return KILN_OK;
  case IR_NE: out->i = a != b; return KILN_OK;
  case IR_LT: out->i = a < b; return KILN_OK;
  case IR_LE: out->i = a <= b; return KILN_OK;
  case IR_GT: out->i = a > b; return KILN_OK;
  case IR_GE: out->i = a >= b; return KILN_OK;
  default:
    return ifail(I, &x->h, KILN_ERR_INTERNAL, "%s is not a float operation", ir_kind_name(x->h.kind));
  }
  out->f = round_float(t, r);
  return KILN_OK;
}

static kiln_status eval_binary(interp *I, const ir_binary *x, int lane, scalar *out) {
  scalar a, b;
  TRY(eval(I, x->a, lane, &a));
  TRY(eval(I, x->b, lane, &b));
  kiln_dtype t = ir_dt_scalar(x->a->dtype);
  if (ir_dt_is_float(t)) return float_binary(I, x, t, a.f, b.f, out);
  return int_binary(I, x, t, a.i, b.i, out);
}

/* A float converted to integer type `to`: truncated toward zero; NaN and values outside the
 * type's range are errors (in C they would be undefined). */
static kiln_status float_to_int(interp *I, const ir_node *site, kiln_dtype to, double x,
                                scalar *out) {
  if (to.code == KILN_TYPE_BOOL) {
    out->i = x != 0;
    return KILN_OK;
  }
  double t = trunc(x);
  double lo = to.code == KILN_TYPE_INT ? -ldexp(1, to.bits - 1) : 0;
  double hi = to.code == KILN_TYPE_INT ? ldexp(1, to.bits - 1) : ldexp(1, to.bits);
  if (isnan(x) || t < lo || t >= hi) {
    char b[32];
    return ifail(I, site, KILN_ERR_RUNTIME, "cast of %g to %s is out of range", x, dts(to, b));
  }
  out->i = to.code == KILN_TYPE_INT ? (int64_t)t : wrap_int(to, (uint64_t)t);
  return KILN_OK;
}

/* Converts one lane v of type `from` to type `to` (lanes ignored). */
static kiln_status convert(interp *I, const ir_node *site, kiln_dtype from, kiln_dtype to,
                           scalar v, scalar *out) {
  bool ff = ir_dt_is_float(from), tf = ir_dt_is_float(to);
  if (ff && tf) out->f = round_float(to, v.f);
  else if (ff) return float_to_int(I, site, to, v.f, out);
  else if (tf) out->f = int_to_float(from, to, v.i);
  else out->i = wrap_int(to, (uint64_t)v.i);
  return KILN_OK;
}

/* The element offset of one lane of an access: evaluates every index, checks it against the
 * buffer's shape ("store C[128, 0] is out of bounds of buffer C [128, 32]") and applies the
 * strides and elem_offset. */
static kiln_status access_offset(interp *I, const ir_node *site, const buf_state *bs, int nidx,
                                 ir_expr *const *idx, int lane, int lanes, int64_t *off) {
  int64_t small[8];
  int64_t *v = small;
  if (nidx > 8 && !(v = ir_malloc(I->ctx, sizeof *v * (size_t)nidx))) return KILN_ERR_NOMEM;
  kiln_status st = KILN_OK;
  bool oob = false;
  for (int d = 0; d < nidx; d++) {
    scalar s;
    if ((st = eval(I, idx[d], lane, &s))) break;
    v[d] = s.i;
    if (s.i < 0 || s.i >= bs->shape[d]) oob = true;
  }
  if (!st && oob) {
    char ib[256], sb[256], lb[64] = "";
    const char *name = bs->buf->name;
    if (lanes > 1) snprintf(lb, sizeof lb, " (lane %d of %d)", lane, lanes);
    st = ifail(I, site, KILN_ERR_RUNTIME, "%s %s[%s] is out of bounds of buffer %s [%s]%s",
               site->kind == IR_STORE ? "store" : "load", name, fmt_ints(ib, sizeof ib, v, nidx),
               name, fmt_ints(sb, sizeof sb, bs->shape, nidx), lb);
  }
  if (!st) {
    /* In bounds, so the sum stays inside the span checked when the buffer was bound. */
    int64_t o = bs->elem_offset;
    for (int d = 0; d < nidx; d++) o += v[d] * bs->strides[d];
    *off = o;
  }
  if (v != small) ir_free(I->ctx, v, sizeof *v * (size_t)nidx);
  return st;
}

static kiln_status eval_load(interp *I, const ir_load *x, int lane, scalar *out) {
  buf_state *bs = ir_ptrmap_get(&I->bufs, x->buffer);
  if (!bs) return ifail(I, &x->h, KILN_ERR_INTERNAL, "buffer '%s' has no state", x->buffer->name);
  int64_t off;
  TRY(access_offset(I, &x->h, bs, x->nindices, x->indices, lane, x->h.dtype.lanes, &off));
  *out = mem_read(ir_dt_scalar(x->buffer->h.dtype), bs->data + off * (int64_t)bs->elem_bytes);
  return KILN_OK;
}

/* An intrinsic: computed in double with libm and rounded to the arguments' type. */
static kiln_status eval_call(interp *I, const ir_call *x, int lane, scalar *out) {
  scalar a[3] = {{0}, {0}, {0}};
  if (x->nargs > 3) return ifail(I, &x->h, KILN_ERR_INTERNAL, "too many intrinsic arguments");
  for (int i = 0; i < x->nargs; i++) TRY(eval(I, x->args[i], lane, &a[i]));
  kiln_dtype t = ir_dt_scalar(x->args[0]->dtype);
  if (ir_dt_is_int(t)) { /* fabs is the one intrinsic on integers */
    bool neg = t.code == KILN_TYPE_INT && a[0].i < 0;
    out->i = wrap_int(t, neg ? 0 - (uint64_t)a[0].i : (uint64_t)a[0].i);
    return KILN_OK;
  }
  double v = a[0].f, r = 0;
  switch ((ir_intrinsic)x->op) {
  case IR_OP_EXP: r = exp(v); break;
  case IR_OP_LOG: r = log(v); break;
  case IR_OP_SQRT: r = sqrt(v); break;
  case IR_OP_RSQRT: r = 1.0 / sqrt(v); break;
  case IR_OP_TANH: r = tanh(v); break;
  case IR_OP_ERF: r = erf(v); break;
  case IR_OP_SIGMOID: r = 1.0 / (1.0 + exp(-v)); break;
  case IR_OP_POW: r = pow(v, a[1].f); break;
  case IR_OP_FABS: r = fabs(v); break;
  case IR_OP_FLOOR: r = floor(v); break;
  case IR_OP_CEIL: r = ceil(v); break;
  case IR_OP_ROUND: r = nearbyint(v); break; /* half to even in the default rounding mode */
  case IR_OP_FMA:
    /* One rounding: fmaf for float32; for float64 fma; narrower types are close enough. */
    r = t.bits == 32 && t.code == KILN_TYPE_FLOAT ? (double)fmaf((float)v, (float)a[1].f, (float)a[2].f)
                                                  : fma(v, a[1].f, a[2].f);
    break;
  case IR_OP_COUNT:
    return ifail(I, &x->h, KILN_ERR_INTERNAL, "unknown intrinsic %d", (int)x->op);
  }
  out->f = round_float(t, r);
  return KILN_OK;
}

/* Evaluates lane `lane` of expression e. Scalar subexpressions ignore the lane; ramps use
 * it. Exhaustive over kinds. */
static kiln_status eval(interp *I, const ir_node *e, int lane, scalar *out) {
  switch ((ir_kind)e->kind) {
  case IR_INT_IMM: out->i = ((const ir_int_imm *)e)->value; return KILN_OK;
  case IR_FLOAT_IMM: out->f = round_float(e->dtype, ((const ir_float_imm *)e)->value); return KILN_OK;
  case IR_STR_IMM:
    /* An opaque handle (evaluate("...") is a no-op): the typing rules keep strings out of
     * arithmetic and memory, and handle-typed variables are refused before the run. */
    out->i = 0;
    return KILN_OK;
  case IR_VAR: {
    scalar *slot = var_slot(I, (const ir_var *)e);
    if (!slot) return missing_slot(I, (const ir_var *)e);
    *out = *slot;
    return KILN_OK;
  }
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
  case IR_OR: return eval_binary(I, (const ir_binary *)e, lane, out);
  case IR_NOT: {
    scalar a;
    TRY(eval(I, ((const ir_not *)e)->a, lane, &a));
    out->i = !a.i;
    return KILN_OK;
  }
  case IR_SELECT: {
    /* Only the chosen value is evaluated, so a guarded load (select(i < n, A[i], 0)) is not
     * an out-of-bounds error. */
    const ir_select *x = (const ir_select *)e;
    scalar c;
    TRY(eval(I, x->cond, lane, &c));
    return eval(I, c.i ? x->t : x->f, lane, out);
  }
  case IR_CAST: {
    const ir_cast *x = (const ir_cast *)e;
    scalar v;
    TRY(eval(I, x->value, lane, &v));
    return convert(I, e, ir_dt_scalar(x->value->dtype), ir_dt_scalar(e->dtype), v, out);
  }
  case IR_RAMP: {
    const ir_ramp *x = (const ir_ramp *)e;
    scalar base, stride;
    TRY(eval(I, x->base, 0, &base));
    TRY(eval(I, x->stride, 0, &stride));
    out->i = wrap_int(ir_dt_scalar(e->dtype), (uint64_t)base.i + (uint64_t)lane * (uint64_t)stride.i);
    return KILN_OK;
  }
  case IR_BROADCAST: return eval(I, ((const ir_broadcast *)e)->value, 0, out);
  case IR_LOAD: return eval_load(I, (const ir_load *)e, lane, out);
  case IR_CALL: return eval_call(I, (const ir_call *)e, lane, out);
  case IR_LET: {
    const ir_let *x = (const ir_let *)e;
    scalar *slot = var_slot(I, x->var);
    if (!slot) return missing_slot(I, x->var);
    TRY(eval(I, x->value, lane, slot));
    return eval(I, x->body, lane, out);
  }
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
  return ifail(I, e, KILN_ERR_INTERNAL, "cannot evaluate a %s", ir_kind_name(e->kind));
}

/* A scalar integer expression (shapes, loop bounds, domains). */
static kiln_status eval_int(interp *I, const ir_node *e, int64_t *out) {
  scalar v;
  TRY(eval(I, e, 0, &v));
  *out = v.i;
  return KILN_OK;
}

/* ---- Buffers ------------------------------------------------------------------------ */

/* Evaluates b's shape, strides and elem_offset (with the current variable values) and
 * checks them: no negative dimension, no element before the start of the memory, no
 * overflow. *nelems is the number of elements the memory must hold (0 for an empty
 * buffer). With `allocating`, buffers over INTERP_MAX_ALLOC_BYTES are refused. */
static kiln_status bind_layout(interp *I, const ir_node *site, buf_state *bs, bool allocating,
                               int64_t *nelems) {
  const ir_buffer *b = bs->buf;
  char sb[256];
  bool empty = false;
  for (int d = 0; d < b->ndim; d++) {
    TRY(eval_int(I, b->shape[d], &bs->shape[d]));
    empty |= bs->shape[d] == 0;
  }
  for (int d = 0; d < b->ndim; d++)
    if (bs->shape[d] < 0)
      return ifail(I, site, KILN_ERR_RUNTIME, "buffer '%s' has a negative shape [%s]", b->name,
                   fmt_ints(sb, sizeof sb, bs->shape, b->ndim));
  bool overflow = false;
  if (b->nstrides) {
    for (int d = 0; d < b->ndim; d++) TRY(eval_int(I, b->strides[d], &bs->strides[d]));
  } else {
    int64_t s = 1;
    for (int d = b->ndim - 1; d >= 0; d--) {
      bs->strides[d] = s;
      overflow |= __builtin_mul_overflow(s, bs->shape[d], &s);
    }
  }
  bs->elem_offset = 0;
  if (b->elem_offset) TRY(eval_int(I, b->elem_offset, &bs->elem_offset));
  *nelems = 0;
  /* The lowest and highest element offsets any in-bounds index can reach. */
  int64_t lo = bs->elem_offset, hi = bs->elem_offset, bytes = 0;
  for (int d = 0; d < b->ndim && !empty; d++) {
    int64_t ext; /* offset of the last index in dimension d from the first */
    overflow |= __builtin_mul_overflow(bs->shape[d] - 1, bs->strides[d], &ext);
    if (ext < 0) overflow |= __builtin_add_overflow(lo, ext, &lo);
    else overflow |= __builtin_add_overflow(hi, ext, &hi);
  }
  if (!empty && !overflow) {
    overflow |= __builtin_add_overflow(hi, 1, nelems);
    overflow |= __builtin_mul_overflow(*nelems, (int64_t)bs->elem_bytes, &bytes);
  }
  if (overflow || (allocating && (uint64_t)bytes > INTERP_MAX_ALLOC_BYTES))
    return ifail(I, site, KILN_ERR_RUNTIME, "buffer '%s' with shape [%s] is too large%s", b->name,
                 fmt_ints(sb, sizeof sb, bs->shape, b->ndim),
                 allocating ? " to allocate (the interpreter's limit is 4 GiB)" : "");
  if (!empty && lo < 0)
    return ifail(I, site, KILN_ERR_RUNTIME,
                 "buffer '%s': its strides and elem_offset reach element %lld, before the start "
                 "of its memory",
                 b->name, (long long)lo);
  if (empty) *nelems = 0;
  return KILN_OK;
}

/* Allocates zero-filled memory for bs (an allocate statement's or a block's buffer). */
static kiln_status buf_allocate(interp *I, const ir_node *site, buf_state *bs) {
  int64_t n;
  TRY(bind_layout(I, site, bs, true, &n));
  size_t bytes = (size_t)n * bs->elem_bytes;
  bs->data = NULL;
  bs->owned_bytes = 0;
  if (bytes == 0) return KILN_OK;
  if (!(bs->data = ir_malloc(I->ctx, bytes))) return KILN_ERR_NOMEM;
  memset(bs->data, 0, bytes);
  bs->owned_bytes = bytes;
  return KILN_OK;
}

static void buf_release(interp *I, buf_state *bs) {
  ir_free(I->ctx, bs->data, bs->owned_bytes);
  bs->data = NULL;
  bs->owned_bytes = 0;
}

static buf_state *buf_of(interp *I, const ir_buffer *b) { return ir_ptrmap_get(&I->bufs, b); }

/* ---- Statements --------------------------------------------------------------------- */

static kiln_status exec(interp *I, const ir_node *s);

/* A store: every lane's value and address are computed before any lane is written, so a
 * vector store that reads what it overwrites sees the old values. */
static kiln_status exec_store(interp *I, const ir_store *x) {
  buf_state *bs = buf_of(I, x->buffer);
  if (!bs) return ifail(I, &x->h, KILN_ERR_INTERNAL, "buffer '%s' has no state", x->buffer->name);
  kiln_dtype et = ir_dt_scalar(x->buffer->h.dtype);
  int lanes = x->value->dtype.lanes;
  if (lanes == 1) {
    scalar v;
    int64_t off;
    TRY(eval(I, x->value, 0, &v));
    TRY(access_offset(I, &x->h, bs, x->nindices, x->indices, 0, 1, &off));
    mem_write(et, bs->data + off * (int64_t)bs->elem_bytes, v);
    return KILN_OK;
  }
  if (lanes > I->max_lanes) return ifail(I, &x->h, KILN_ERR_INTERNAL, "store wider than planned");
  for (int l = 0; l < lanes; l++) {
    TRY(eval(I, x->value, l, &I->lane_vals[l]));
    TRY(access_offset(I, &x->h, bs, x->nindices, x->indices, l, lanes, &I->lane_offs[l]));
  }
  for (int l = 0; l < lanes; l++)
    mem_write(et, bs->data + I->lane_offs[l] * (int64_t)bs->elem_bytes, I->lane_vals[l]);
  return KILN_OK;
}

/* A block realize: bind the iterators to their values; skip when the predicate is false;
 * otherwise check that every iterator is in its domain (with a false predicate a value may
 * legally lie outside, as after splitting by a factor that does not divide the extent),
 * allocate the block's buffers, run the init when every reduce iterator is at its domain
 * start, then the body. */
static kiln_status exec_realize(interp *I, const ir_block_realize *r) {
  const ir_block *b = r->block;
  for (int i = 0; i < b->niters; i++) {
    scalar *slot = var_slot(I, b->iters[i]->var);
    if (!slot) return missing_slot(I, b->iters[i]->var);
    TRY(eval(I, r->values[i], 0, slot));
  }
  scalar pred;
  TRY(eval(I, r->predicate, 0, &pred));
  if (!pred.i) return KILN_OK;
  bool at_start = true;
  for (int i = 0; i < b->niters; i++) {
    const ir_iter_var *it = b->iters[i];
    int64_t v = var_slot(I, it->var)->i, mn, ext;
    TRY(eval_int(I, it->min, &mn));
    TRY(eval_int(I, it->extent, &ext));
    /* v in [mn, mn + ext), without overflowing mn + ext */
    if (v < mn || ext <= 0 || (uint64_t)v - (uint64_t)mn >= (uint64_t)ext)
      return ifail(I, &r->h, KILN_ERR_RUNTIME,
                   "block '%s': iterator '%s' = %lld is outside its domain [%lld, %lld)", b->name,
                   it->var->name, (long long)v, (long long)mn, (long long)((uint64_t)mn + (uint64_t)ext));
    if (it->iter_type == IR_ITER_REDUCE && v != mn) at_start = false;
  }
  kiln_status st = KILN_OK;
  int nalloc = 0;
  for (; nalloc < b->nallocs && !st; nalloc++) {
    buf_state *bs = buf_of(I, b->allocs[nalloc]);
    st = bs ? buf_allocate(I, &b->h, bs)
            : ifail(I, &b->h, KILN_ERR_INTERNAL, "buffer '%s' has no state", b->allocs[nalloc]->name);
  }
  if (!st && b->init && at_start) st = exec(I, b->init);
  if (!st) st = exec(I, b->body);
  for (int i = 0; i < nalloc; i++) {
    buf_state *bs = buf_of(I, b->allocs[i]);
    if (bs) buf_release(I, bs);
  }
  return st;
}

/* Runs statement s. Exhaustive over kinds. */
static kiln_status exec(interp *I, const ir_node *s) {
  switch ((ir_kind)s->kind) {
  case IR_STORE: return exec_store(I, (const ir_store *)s);
  case IR_FOR: {
    /* Every loop kind runs serially, in order. */
    const ir_for *x = (const ir_for *)s;
    int64_t mn, ext;
    TRY(eval_int(I, x->min, &mn));
    TRY(eval_int(I, x->extent, &ext));
    scalar *slot = var_slot(I, x->var);
    if (!slot) return missing_slot(I, x->var);
    kiln_dtype t = x->var->h.dtype;
    for (int64_t k = 0; k < ext; k++) {
      slot->i = wrap_int(t, (uint64_t)mn + (uint64_t)k);
      TRY(exec(I, x->body));
    }
    return KILN_OK;
  }
  case IR_IF: {
    const ir_if *x = (const ir_if *)s;
    scalar c;
    TRY(eval(I, x->cond, 0, &c));
    if (c.i) return exec(I, x->then_case);
    return x->else_case ? exec(I, x->else_case) : KILN_OK;
  }
  case IR_SEQ: {
    const ir_seq *x = (const ir_seq *)s;
    for (int i = 0; i < x->nstmts; i++) TRY(exec(I, x->stmts[i]));
    return KILN_OK;
  }
  case IR_LET_STMT: {
    const ir_let_stmt *x = (const ir_let_stmt *)s;
    scalar *slot = var_slot(I, x->var);
    if (!slot) return missing_slot(I, x->var);
    TRY(eval(I, x->value, 0, slot));
    return exec(I, x->body);
  }
  case IR_ALLOCATE: {
    const ir_allocate *x = (const ir_allocate *)s;
    buf_state *bs = buf_of(I, x->buffer);
    if (!bs) return ifail(I, s, KILN_ERR_INTERNAL, "buffer '%s' has no state", x->buffer->name);
    TRY(buf_allocate(I, s, bs));
    kiln_status st = exec(I, x->body);
    buf_release(I, bs);
    return st;
  }
  case IR_EVALUATE: {
    const ir_node *v = ((const ir_evaluate *)s)->value;
    scalar tmp;
    for (int l = 0; l < v->dtype.lanes; l++) TRY(eval(I, v, l, &tmp));
    return KILN_OK;
  }
  case IR_BLOCK_REALIZE: return exec_realize(I, (const ir_block_realize *)s);
  case IR_BLOCK:
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
  case IR_LET:
  case IR_BUFFER:
  case IR_ITER_VAR:
  case IR_RANGE:
  case IR_REGION:
  case IR_ANNOT:
  case IR_FUNC:
  case IR_KIND_COUNT: break;
  }
  return ifail(I, s, KILN_ERR_INTERNAL, "cannot execute a %s", ir_kind_name(s->kind));
}

/* ---- Entry -------------------------------------------------------------------------- */

static bool unsupported(interp *I, const ir_node *n, const char *what) {
  char b[32];
  I->st = ifail(I, n, KILN_ERR_UNSUPPORTED, "the interpreter does not support %s of type %s",
                what, dts(n->dtype, b));
  return false;
}

/* The preparation walk: a value slot for every variable, a state for every buffer, the
 * widest store, and a check that every type is one the interpreter handles. */
static bool prepare_visit(ir_node *n, void *ud) {
  interp *I = ud;
  if (I->st) return false;
  if (n->kind == IR_VAR) {
    if (ir_ptrmap_get(&I->vars, n)) return false;
    if (!dtype_supported(n->dtype)) return unsupported(I, n, "a variable");
    scalar *slot = ir_arena_alloc(I->arena, sizeof *slot);
    if (!slot || ir_ptrmap_put(&I->vars, n, slot)) I->st = KILN_ERR_NOMEM;
    return false;
  }
  if (n->kind == IR_BUFFER) {
    if (ir_ptrmap_get(&I->bufs, n)) return false;
    const ir_buffer *b = (const ir_buffer *)n;
    if (!dtype_supported(n->dtype)) return unsupported(I, n, "a buffer");
    buf_state *bs = ir_arena_alloc(I->arena, sizeof *bs);
    size_t dims = sizeof(int64_t) * (size_t)(b->ndim > 0 ? b->ndim : 1);
    if (!bs || !(bs->shape = ir_arena_alloc(I->arena, dims)) ||
        !(bs->strides = ir_arena_alloc(I->arena, dims)) || ir_ptrmap_put(&I->bufs, n, bs)) {
      I->st = KILN_ERR_NOMEM;
      return false;
    }
    bs->buf = b;
    bs->elem_bytes = elem_bytes(n->dtype);
    return true; /* its shape expressions */
  }
  if (n->kind == IR_STORE) {
    int lanes = ((const ir_store *)n)->value->dtype.lanes;
    if (lanes > I->max_lanes) I->max_lanes = lanes;
  }
  if (ir_is_expr(n) && n->kind != IR_STR_IMM && !dtype_supported(n->dtype))
    return unsupported(I, n, "an expression");
  return true;
}

/* Scalar parameters first (buffer shapes may use them), then the parameter buffers. */
static kiln_status bind_params(interp *I, void **args) {
  const ir_func *f = I->f;
  for (int i = 0; i < f->nparams; i++) {
    const ir_node *p = f->params[i];
    if (p->kind != IR_VAR) continue;
    scalar *slot = var_slot(I, (const ir_var *)p);
    if (!slot) return missing_slot(I, (const ir_var *)p);
    *slot = mem_read(p->dtype, args[i]);
  }
  for (int i = 0; i < f->nparams; i++) {
    const ir_node *p = f->params[i];
    if (p->kind != IR_BUFFER) continue;
    buf_state *bs = buf_of(I, (const ir_buffer *)p);
    if (!bs) return ifail(I, p, KILN_ERR_INTERNAL, "parameter buffer has no state");
    int64_t n;
    TRY(bind_layout(I, &f->h, bs, false, &n));
    bs->data = args[i];
  }
  return KILN_OK;
}

kiln_status ir_interpret(kiln_context *ctx, const ir_func *f, int nargs, void **args) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!f || f->h.kind != IR_FUNC)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "interpret: not a function");
  if (nargs != f->nparams)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "interpret: function '%s' takes %d arguments, not %d", f->name,
                   (int)f->nparams, nargs);
  for (int i = 0; i < nargs; i++)
    if (!args || !args[i])
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "interpret: argument %d of '%s' is NULL",
                     i, f->name);
  TRY(ir_verify_func(ctx, f));

  interp I;
  memset(&I, 0, sizeof I);
  I.ctx = ctx;
  I.f = f;
  I.max_lanes = 1;
  ir_ptrmap_init(&I.vars, ctx);
  ir_ptrmap_init(&I.bufs, ctx);
  kiln_status st = KILN_ERR_NOMEM;
  if ((I.arena = ir_arena_new(ctx))) {
    ir_visit((ir_node *)&f->h, true, prepare_visit, &I);
    st = I.st;
  }
  size_t scratch = (size_t)I.max_lanes;
  if (!st && scratch > 1) {
    I.lane_vals = ir_malloc(ctx, sizeof *I.lane_vals * scratch);
    I.lane_offs = ir_malloc(ctx, sizeof *I.lane_offs * scratch);
    if (!I.lane_vals || !I.lane_offs) st = KILN_ERR_NOMEM;
  }
  if (!st) st = bind_params(&I, args);
  if (!st) st = exec(&I, f->body);
  if (scratch > 1) {
    ir_free(ctx, I.lane_vals, sizeof *I.lane_vals * scratch);
    ir_free(ctx, I.lane_offs, sizeof *I.lane_offs * scratch);
  }
  ir_ptrmap_free(&I.vars);
  ir_ptrmap_free(&I.bufs);
  ir_arena_free(I.arena);
  return st;
}

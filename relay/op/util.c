/* util.c: what every op family shares: reference tensors (element access in any dtype,
 * allocation), type-relation helpers (errors, dimension arithmetic, broadcasting). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "relay/op.h"

/* ---- Tensors ------------------------------------------------------------------------- */

int64_t relay_tensor_numel(const relay_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 31, m = h & 1023, bits;
  if (e == 0) {
    float v = ldexpf((float)m, -24);
    return sign ? -v : v;
  }
  if (e == 31) bits = sign | 0x7f800000u | (m << 13);
  else bits = sign | ((e + 112) << 23) | (m << 13);
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* float -> float16 with round to nearest even (via double arithmetic on the magnitude). */
static uint16_t float_to_half(float f) {
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
  float a = fabsf(f);
  if (a != a) return sign | 0x7e00;
  if (a >= 65520.0f) return sign | 0x7c00; /* rounds to infinity */
  if (a < ldexpf(1, -14)) {                /* subnormal: multiples of 2^-24 */
    float q = nearbyintf(a * 16777216.0f);
    return sign | (uint16_t)q;
  }
  int e;
  float m = frexpf(a, &e); /* a = m * 2^e, m in [0.5, 1) */
  float q = nearbyintf(m * 2048.0f); /* 11 significant bits */
  if (q >= 2048.0f) {
    q /= 2;
    e++;
  }
  return sign | (uint16_t)((e + 14) << 10 | ((uint32_t)q & 1023));
}

static float bf16_to_float(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static uint16_t float_to_bf16(float f) {
  uint32_t bits;
  memcpy(&bits, &f, sizeof bits);
  if (f != f) return (uint16_t)((bits >> 16) | 0x40);
  bits += 0x7fff + ((bits >> 16) & 1); /* round to nearest even */
  return (uint16_t)(bits >> 16);
}

double relay_tensor_get(const relay_tensor *t, int64_t i) {
  const unsigned char *p = (const unsigned char *)t->data + (size_t)i * kiln_dtype_bytes(t->dtype);
  switch (t->dtype.code) {
  case KILN_TYPE_FLOAT:
    if (t->dtype.bits == 32) return *(const float *)p;
    if (t->dtype.bits == 64) return *(const double *)p;
    return half_to_float(*(const uint16_t *)p);
  case KILN_TYPE_BFLOAT: return bf16_to_float(*(const uint16_t *)p);
  case KILN_TYPE_INT:
    switch (t->dtype.bits) {
    case 8: return *(const int8_t *)p;
    case 16: return *(const int16_t *)p;
    case 32: return *(const int32_t *)p;
    default: return (double)*(const int64_t *)p;
    }
  case KILN_TYPE_UINT:
    switch (t->dtype.bits) {
    case 8: return *(const uint8_t *)p;
    case 16: return *(const uint16_t *)p;
    case 32: return *(const uint32_t *)p;
    default: return (double)*(const uint64_t *)p;
    }
  case KILN_TYPE_BOOL: return *p != 0;
  }
  return 0;
}

void relay_tensor_set(relay_tensor *t, int64_t i, double v) {
  unsigned char *p = (unsigned char *)t->data + (size_t)i * kiln_dtype_bytes(t->dtype);
  switch (t->dtype.code) {
  case KILN_TYPE_FLOAT:
    if (t->dtype.bits == 32) *(float *)p = (float)v;
    else if (t->dtype.bits == 64) *(double *)p = v;
    else *(uint16_t *)p = float_to_half((float)v);
    return;
  case KILN_TYPE_BFLOAT: *(uint16_t *)p = float_to_bf16((float)v); return;
  case KILN_TYPE_INT:
  case KILN_TYPE_UINT: {
    /* truncate toward zero, then wrap to the width (out-of-range values are undefined in C
     * casts, so go through int64 with a clamp first) */
    double tv = trunc(v);
    int64_t x = tv != tv ? 0 : tv >= 9.2e18 ? INT64_MAX : tv <= -9.2e18 ? INT64_MIN : (int64_t)tv;
    memcpy(p, &x, t->dtype.bits / 8); /* little-endian: the low bytes */
    return;
  }
  case KILN_TYPE_BOOL: *p = v != 0; return;
  }
}

kiln_status relay_tensor_alloc(kiln_context *ctx, const relay_type *type, relay_tensor *out) {
  memset(out, 0, sizeof *out);
  const relay_tensor_type *t = relay_as_tensor_type(type);
  int64_t numel = relay_type_numel(type);
  if (!t || numel < 0)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_SHAPE, "cannot allocate a tensor of a non-constant shape");
  out->dtype = t->h.dtype;
  out->ndim = t->ndim;
  for (int i = 0; i < t->ndim; i++) out->shape[i] = ir_as_int(t->shape[i])->value;
  size_t esize = kiln_dtype_bytes(t->h.dtype);
  if (numel > (int64_t)(((size_t)1 << 40) / esize))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "tensor too large (%lld elements)", (long long)numel);
  out->nbytes = (size_t)numel * esize;
  out->data = ir_malloc(ctx, out->nbytes ? out->nbytes : 1);
  if (!out->data) return KILN_ERR_NOMEM;
  memset(out->data, 0, out->nbytes ? out->nbytes : 1);
  out->owned = true;
  return KILN_OK;
}

void relay_tensor_free(kiln_context *ctx, relay_tensor *t) {
  if (t->owned && t->data) ir_free(ctx, t->data, t->nbytes ? t->nbytes : 1);
  t->data = NULL;
  t->owned = false;
}

/* ---- Type relations ---------------------------------------------------------------- */

relay_type *relay_type_error(relay_infer_ctx *c, const char *fmt, ...) {
  if (c->failed) return NULL; /* keep the allocation failure that caused this */
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ir_fail(c->arena->ctx, c->span, KILN_ERR_TYPE, "%s: %s", c->op, msg);
  return NULL;
}

const relay_tensor_type *relay_arg_tensor(relay_infer_ctx *c, relay_type *const *args, int i) {
  const relay_tensor_type *t = relay_as_tensor_type(args[i]);
  if (!t) relay_type_error(c, "argument %d must be a tensor", i);
  return t;
}

static ir_analyzer *analyzer(relay_infer_ctx *c) {
  if (!c->an) c->an = ir_analyzer_new(c->arena);
  return c->an;
}

ir_expr *relay_dim(relay_infer_ctx *c, int64_t v) { return ir_int(c->arena, KILN_INT64, v); }

ir_expr *relay_dim_binop(relay_infer_ctx *c, int kind, ir_expr *x, ir_expr *y) {
  ir_expr *e = ir_binop(c->arena, kind, x, y);
  ir_analyzer *an = e ? analyzer(c) : NULL;
  ir_expr *r = an ? ir_simplify_expr(an, e) : NULL;
  if (!r) c->failed = true;
  return r;
}

bool relay_dim_const(const ir_expr *x, int64_t *v) {
  const ir_int_imm *c = ir_as_int(x);
  if (c) *v = c->value;
  return c != NULL;
}

bool relay_dim_is(relay_infer_ctx *c, const ir_expr *x, int64_t v) {
  (void)c;
  int64_t k;
  return relay_dim_const(x, &k) && k == v;
}

bool relay_dim_equal(relay_infer_ctx *c, const ir_expr *x, const ir_expr *y) {
  if (x == y) return true;
  int64_t a, b;
  if (relay_dim_const(x, &a) && relay_dim_const(y, &b)) return a == b;
  ir_expr *d = relay_dim_binop(c, IR_SUB, (ir_expr *)x, (ir_expr *)y);
  return relay_dim_is(c, d, 0);
}

/* Appends dimension e to buf (constants as numbers, symbolic dims by name, + - * // % min
 * max of them with parentheses where needed) for messages like "(n, 3)". */
static void put_dim(char *buf, size_t size, const ir_expr *e, int parent_prec) {
  size_t used = strlen(buf);
  if (used + 1 >= size) return;
  int64_t v;
  if (relay_dim_const(e, &v)) {
    snprintf(buf + used, size - used, "%lld", (long long)v);
    return;
  }
  if (e->kind == IR_VAR) {
    snprintf(buf + used, size - used, "%s", ((const ir_var *)e)->name);
    return;
  }
  const char *op = NULL, *fn = NULL;
  int prec = 2;
  switch (e->kind) {
  case IR_ADD: op = " + "; prec = 1; break;
  case IR_SUB: op = " - "; prec = 1; break;
  case IR_MUL: op = " * "; break;
  case IR_FLOORDIV: op = " // "; break;
  case IR_FLOORMOD: op = " % "; break;
  case IR_MIN: fn = "min"; break;
  case IR_MAX: fn = "max"; break;
  default: snprintf(buf + used, size - used, "<expr>"); return;
  }
  const ir_binary *b = (const ir_binary *)e;
  if (fn) {
    snprintf(buf + used, size - used, "%s(", fn);
    put_dim(buf, size, b->a, 0);
    used = strlen(buf);
    snprintf(buf + used, size - used, ", ");
    put_dim(buf, size, b->b, 0);
    used = strlen(buf);
    snprintf(buf + used, size - used, ")");
    return;
  }
  bool paren = prec < parent_prec;
  if (paren) snprintf(buf + used, size - used, "(");
  put_dim(buf, size, b->a, prec);
  used = strlen(buf);
  snprintf(buf + used, size - used, "%s", op);
  put_dim(buf, size, b->b, prec + 1); /* a - (b - c): the right operand binds tighter */
  used = strlen(buf);
  if (paren) snprintf(buf + used, size - used, ")");
}

const char *relay_dim_str(const ir_expr *e, char *buf, size_t size) {
  buf[0] = 0;
  if (e) put_dim(buf, size, e, 0);
  return buf;
}

/* "(2, n, 3)"; "(n,)" for rank 1, as relay_type_print writes shapes. */
const char *relay_shape_str(const relay_tensor_type *t, char *buf, size_t size) {
  snprintf(buf, size, "(");
  for (int i = 0; i < t->ndim; i++) {
    size_t used = strlen(buf);
    if (i) snprintf(buf + used, size - used, ", ");
    put_dim(buf, size, t->shape[i], 0);
  }
  size_t used = strlen(buf);
  snprintf(buf + used, size - used, t->ndim == 1 ? ",)" : ")");
  return buf;
}

relay_type *relay_broadcast_type(relay_infer_ctx *c, const relay_tensor_type *x,
                                 const relay_tensor_type *y, kiln_dtype out) {
  int nd = x->ndim > y->ndim ? x->ndim : y->ndim;
  ir_expr *dims[RELAY_MAX_DIMS];
  for (int i = 0; i < nd; i++) {
    int ix = x->ndim - nd + i, iy = y->ndim - nd + i;
    ir_expr *dx = ix >= 0 ? x->shape[ix] : NULL, *dy = iy >= 0 ? y->shape[iy] : NULL;
    if (!dx || relay_dim_is(c, dx, 1)) dims[i] = dy ? dy : dx;
    else if (!dy || relay_dim_is(c, dy, 1)) dims[i] = dx;
    else if (relay_dim_equal(c, dx, dy)) dims[i] = dx;
    else {
      char sx[128], sy[128];
      relay_shape_str(x, sx, sizeof sx);
      relay_shape_str(y, sy, sizeof sy);
      return relay_type_error(c, "shapes %s and %s do not broadcast (dimension %d)", sx, sy, i);
    }
  }
  return relay_tensor_type_new(c->arena, out, nd, dims);
}

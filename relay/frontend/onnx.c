/* onnx.c: the ONNX importer's driver. It unpacks the protobuf (through an allocator on the
 * kiln context, so fault injection reaches it), checks versions, turns initializers into
 * constants and graph inputs into typed parameters (dim_param -> symbolic dimensions), checks
 * that every node has a converter (one error lists all that do not), then walks the nodes in
 * order, calling onnx_ops.c's converters, and builds @main from the graph outputs. */
#define KILN_ONNX_INTERNAL
#include "relay/frontend/onnx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/arith.h"
#include "relay/interp.h"

/* ---- Names -> values ------------------------------------------------------------------ */

/* An open-addressing map from ONNX value names (borrowed from the unpacked model) to relay
 * expressions. */
typedef struct name_map {
  const char **keys;
  relay_expr **vals;
  size_t cap, len;
} name_map;

struct onnx_importer {
  kiln_context *ctx;
  relay_module *m;
  ir_arena *a;
  const char *dir; /* external data directory or NULL */
  name_map values;
  /* Symbolic shape values (see onnx.h): each stands in the value map as a placeholder relay
   * variable; `shapes` maps the placeholder (by address) to its onnx_shape_value. The
   * analyzer simplifies their elements and knows that symbolic dimensions are >= 0. */
  ir_ptrmap shapes;
  ir_analyzer *an;
};

static uint64_t name_hash(const char *s) { return ir_hash_str(0x6f6e6e78, s); }

static relay_expr *map_get(const name_map *nm, const char *key) {
  if (!nm->cap) return NULL;
  for (size_t i = name_hash(key) & (nm->cap - 1);; i = (i + 1) & (nm->cap - 1)) {
    if (!nm->keys[i]) return NULL;
    if (strcmp(nm->keys[i], key) == 0) return nm->vals[i];
  }
}

static kiln_status map_put(kiln_context *ctx, name_map *nm, const char *key, relay_expr *val) {
  if ((nm->len + 1) * 2 > nm->cap) {
    size_t cap = nm->cap ? nm->cap * 2 : 64;
    const char **keys = ir_malloc(ctx, cap * sizeof *keys);
    relay_expr **vals = ir_malloc(ctx, cap * sizeof *vals);
    if (!keys || !vals) {
      ir_free(ctx, keys, keys ? cap * sizeof *keys : 0);
      ir_free(ctx, vals, vals ? cap * sizeof *vals : 0);
      return KILN_ERR_NOMEM;
    }
    memset(keys, 0, cap * sizeof *keys);
    for (size_t i = 0; i < nm->cap; i++) {
      if (!nm->keys[i]) continue;
      size_t j = name_hash(nm->keys[i]) & (cap - 1);
      while (keys[j]) j = (j + 1) & (cap - 1);
      keys[j] = nm->keys[i];
      vals[j] = nm->vals[i];
    }
    ir_free(ctx, nm->keys, nm->cap * sizeof *nm->keys);
    ir_free(ctx, nm->vals, nm->cap * sizeof *nm->vals);
    nm->keys = keys;
    nm->vals = vals;
    nm->cap = cap;
  }
  size_t i = name_hash(key) & (nm->cap - 1);
  while (nm->keys[i] && strcmp(nm->keys[i], key) != 0) i = (i + 1) & (nm->cap - 1);
  if (!nm->keys[i]) nm->len++;
  nm->keys[i] = key;
  nm->vals[i] = val;
  return KILN_OK;
}

static void map_free(kiln_context *ctx, name_map *nm) {
  ir_free(ctx, nm->keys, nm->cap * sizeof *nm->keys);
  ir_free(ctx, nm->vals, nm->cap * sizeof *nm->vals);
}

/* ---- protobuf-c allocation through the context ------------------------------------------ */

/* protobuf-c frees without a size; ir_free needs one, so each block carries its size in a
 * 16-byte header (keeping the payload 16-byte aligned). */
enum { PB_HEADER = 16 };

static void *pb_alloc(void *ud, size_t size) {
  kiln_context *ctx = ud;
  if (size > SIZE_MAX - PB_HEADER) return NULL;
  unsigned char *p = ir_malloc(ctx, size + PB_HEADER);
  if (!p) return NULL;
  memcpy(p, &size, sizeof size);
  return p + PB_HEADER;
}

static void pb_free(void *ud, void *ptr) {
  if (!ptr) return;
  unsigned char *p = (unsigned char *)ptr - PB_HEADER;
  size_t size;
  memcpy(&size, p, sizeof size);
  ir_free(ud, p, size + PB_HEADER);
}

/* ---- Services for converters ---------------------------------------------------------- */

kiln_context *onnx_ctx(onnx_importer *imp) { return imp->ctx; }
ir_arena *onnx_arena(onnx_importer *imp) { return imp->a; }

static kiln_status ctx_code(kiln_context *ctx) { return ctx->code ? ctx->code : KILN_ERR_NOMEM; }

/* The value of a closed expression as a constant node (a tuple of constants for a tuple). */
static relay_expr *value_to_const(onnx_importer *imp, const relay_value *v, const relay_type *t) {
  if (v->kind == RELAY_VALUE_TENSOR)
    return relay_const_new(imp->a, (relay_type *)t, v->tensor.data, (int64_t)v->tensor.nbytes);
  if (v->kind != RELAY_VALUE_TUPLE || !t || t->kind != RELAY_TUPLE_TYPE) return NULL;
  const relay_tuple_type *tt = (const relay_tuple_type *)t;
  relay_expr **fields = ir_arena_alloc(imp->a, sizeof(relay_expr *) * (size_t)(v->nfields + 1));
  if (!fields || tt->nfields != v->nfields) return NULL;
  for (int i = 0; i < v->nfields; i++)
    if (!(fields[i] = value_to_const(imp, v->fields[i], tt->fields[i]))) return NULL;
  return relay_tuple_new(imp->a, v->nfields, fields);
}

static bool is_const_tree(const relay_expr *e) {
  if (e->kind == RELAY_CONST) return true;
  if (e->kind == RELAY_TUPLE) {
    const relay_tuple *t = (const relay_tuple *)e;
    for (int i = 0; i < t->nfields; i++)
      if (!is_const_tree(t->fields[i])) return false;
    return true;
  }
  return false;
}

relay_expr *onnx_call(onnx_importer *imp, const char *op, int nargs, relay_expr *const *args,
                      int nattrs, relay_attr *const *attrs) {
  relay_expr *call = relay_call_op(imp->a, op, nargs, args, nattrs, attrs);
  if (!call) return NULL;
  for (int i = 0; i < nargs; i++)
    if (!is_const_tree(args[i])) return call;
  /* Every argument is known: evaluate now (FoldConstant during import). */
  relay_value *v = NULL;
  if (relay_interp_eval(imp->ctx, NULL, call, &v)) return NULL;
  relay_expr *c = value_to_const(imp, v, relay_type_of(call));
  relay_value_release(imp->ctx, v);
  return c;
}

relay_expr *onnx_proj(onnx_importer *imp, relay_expr *tuple, int i) {
  if (tuple && tuple->kind == RELAY_TUPLE && i >= 0 && i < ((relay_tuple *)tuple)->nfields)
    return ((relay_tuple *)tuple)->fields[i];
  return relay_proj_new(imp->a, tuple, i);
}

bool onnx_elem_dtype(int32_t elem_type, kiln_dtype *out) {
  switch (elem_type) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: *out = KILN_FLOAT32; return true;
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: *out = KILN_FLOAT64; return true;
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: *out = KILN_FLOAT16; return true;
  case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: *out = KILN_BFLOAT16; return true;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: *out = KILN_INT8; return true;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: *out = KILN_INT16; return true;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: *out = KILN_INT32; return true;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: *out = KILN_INT64; return true;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: *out = KILN_UINT8; return true;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: *out = KILN_UINT16; return true;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: *out = KILN_UINT32; return true;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: *out = KILN_UINT64; return true;
  case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: *out = KILN_BOOL; return true;
  default: return false;
  }
}

static const char *elem_type_name(int32_t t) {
  switch (t) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__STRING: return "string";
  case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64: return "complex64";
  case ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128: return "complex128";
  case ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED: return "undefined";
  default: return "unknown";
  }
}

/* ---- Tensors -------------------------------------------------------------------------- */

/* Reads an external-data file segment into buf (nbytes). Paths are relative to the model's
 * directory; absolute paths and ".." components are refused (a model must not read arbitrary
 * files). */
static kiln_status read_external(onnx_importer *imp, const Onnx__TensorProto *t, void *buf,
                                 size_t nbytes) {
  const char *loc = NULL;
  int64_t offset = 0, length = -1;
  for (size_t i = 0; i < t->n_external_data; i++) {
    const Onnx__StringStringEntryProto *e = t->external_data[i];
    if (!e->key || !e->value) continue;
    if (strcmp(e->key, "location") == 0) loc = e->value;
    else if (strcmp(e->key, "offset") == 0) offset = strtoll(e->value, NULL, 10);
    else if (strcmp(e->key, "length") == 0) length = strtoll(e->value, NULL, 10);
  }
  const char *name = t->name ? t->name : "";
  if (!loc || !*loc)
    return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT,
                   "tensor '%s': external data without a location", name);
  if (loc[0] == '/' || strstr(loc, "..") != NULL)
    return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_IO,
                   "tensor '%s': external data location '%s' must be a relative path inside "
                   "the model's directory", name, loc);
  if (offset < 0 || (length >= 0 && (uint64_t)length != nbytes))
    return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT,
                   "tensor '%s': external data offset %lld / length %lld do not fit its %zu bytes",
                   name, (long long)offset, (long long)length, nbytes);
  ir_strbuf path;
  ir_sb_init(&path, imp->ctx);
  if (imp->dir && *imp->dir) ir_sb_printf(&path, "%s/", imp->dir);
  ir_sb_puts(&path, loc);
  size_t plen;
  char *p = ir_sb_take(&path, &plen);
  if (!p) return KILN_ERR_NOMEM;
  FILE *f = fopen(p, "rb");
  kiln_status st = KILN_OK;
  if (!f)
    st = ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_IO, "tensor '%s': cannot open external data file '%s'",
                 name, p);
  else if (fseek(f, (long)offset, SEEK_SET) != 0 || fread(buf, 1, nbytes, f) != nbytes)
    st = ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_IO,
                 "tensor '%s': external data file '%s' is shorter than offset %lld + %zu bytes",
                 name, p, (long long)offset, nbytes);
  if (f) fclose(f);
  ir_free(imp->ctx, p, plen + 1);
  return st;
}

relay_expr *onnx_tensor_const(onnx_importer *imp, const Onnx__TensorProto *t) {
  const char *name = t->name ? t->name : "";
  kiln_dtype dt;
  if (!onnx_elem_dtype(t->data_type, &dt)) {
    ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "tensor '%s': element type %s (%d) is not supported",
            name, elem_type_name(t->data_type), (int)t->data_type);
    return NULL;
  }
  if (t->n_dims > RELAY_MAX_DIMS) {
    ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "tensor '%s' has %zu dimensions (at most %d)",
            name, t->n_dims, RELAY_MAX_DIMS);
    return NULL;
  }
  int64_t numel = 1;
  for (size_t i = 0; i < t->n_dims; i++) {
    if (t->dims[i] < 0 || (t->dims[i] && numel > ((int64_t)1 << 40) / t->dims[i])) {
      ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT, "tensor '%s': dimension %zu is %lld", name, i,
              (long long)t->dims[i]);
      return NULL;
    }
    numel *= t->dims[i];
  }
  size_t esize = kiln_dtype_bytes(dt), nbytes = (size_t)numel * esize;
  relay_type *type = relay_tensor_type_const(imp->a, dt, (int)t->n_dims, t->dims);
  if (!type) return NULL;
  if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
    void *buf = ir_malloc(imp->ctx, nbytes ? nbytes : 1);
    if (!buf) return NULL;
    relay_expr *c = read_external(imp, t, buf, nbytes) ? NULL : relay_const_new(imp->a, type, buf, (int64_t)nbytes);
    ir_free(imp->ctx, buf, nbytes ? nbytes : 1);
    return c;
  }
  if (t->has_raw_data) {
    if (t->raw_data.len != nbytes) {
      char dts[32];
    ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT,
            "tensor '%s': raw data has %zu bytes, its %lld %s elements need %zu", name,
            t->raw_data.len, (long long)numel, kiln_dtype_str(dt, dts, sizeof dts), nbytes);
      return NULL;
    }
    return relay_const_new(imp->a, type, t->raw_data.data, (int64_t)nbytes);
  }
  /* Typed fields: floats in float_data, doubles in double_data, int64 in int64_data, uint32 and
   * uint64 in uint64_data, the other integers, bool, float16 and bfloat16 (as bits) in
   * int32_data. */
  size_t have;
  switch (t->data_type) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: have = t->n_float_data; break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: have = t->n_double_data; break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: have = t->n_int64_data; break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: have = t->n_uint64_data; break;
  default: have = t->n_int32_data; break;
  }
  if (have != (size_t)numel) {
    ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT, "tensor '%s': has %zu values for %lld elements",
            name, have, (long long)numel);
    return NULL;
  }
  unsigned char *buf = ir_malloc(imp->ctx, nbytes ? nbytes : 1);
  if (!buf) return NULL;
  for (int64_t i = 0; i < numel; i++) {
    unsigned char *p = buf + (size_t)i * esize;
    switch (t->data_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: memcpy(p, &t->float_data[i], 4); break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: memcpy(p, &t->double_data[i], 8); break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: memcpy(p, &t->int64_data[i], 8); break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: memcpy(p, &t->uint64_data[i], esize); break;
    default: {
      /* little-endian: the low bytes of the int32 are the value (or the 16 bits) */
      int32_t v = t->int32_data[i];
      if (dt.code == KILN_TYPE_BOOL) v = v != 0;
      memcpy(p, &v, esize);
      break;
    }
    }
  }
  relay_expr *c = relay_const_new(imp->a, type, buf, (int64_t)nbytes);
  ir_free(imp->ctx, buf, nbytes ? nbytes : 1);
  return c;
}

relay_expr *onnx_make_const(onnx_importer *imp, kiln_dtype t, int ndim, const int64_t *shape,
                            const double *vals) {
  relay_type *type = relay_tensor_type_const(imp->a, t, ndim, shape);
  relay_tensor tmp;
  if (!type || relay_tensor_alloc(imp->ctx, type, &tmp)) return NULL;
  int64_t n = relay_tensor_numel(&tmp);
  for (int64_t i = 0; i < n; i++) relay_tensor_set(&tmp, i, vals[i]);
  relay_expr *c = relay_const_new(imp->a, type, tmp.data, (int64_t)tmp.nbytes);
  relay_tensor_free(imp->ctx, &tmp);
  return c;
}

/* A constant's elements as a reference tensor view (no copy). */
static bool const_view(const relay_expr *e, relay_tensor *t) {
  if (!e || e->kind != RELAY_CONST) return false;
  const relay_const *c = (const relay_const *)e;
  const relay_tensor_type *tt = relay_as_tensor_type(c->type);
  if (!tt || tt->ndim > RELAY_MAX_DIMS) return false;
  memset(t, 0, sizeof *t);
  t->dtype = tt->h.dtype;
  t->ndim = tt->ndim;
  for (int i = 0; i < tt->ndim; i++)
    if (!relay_dim_const(tt->shape[i], &t->shape[i])) return false;
  t->data = c->data;
  t->nbytes = (size_t)c->nbytes;
  return true;
}

kiln_status onnx_const_floats(onnx_importer *imp, const relay_expr *e, const char *what, int *n,
                              double **v) {
  relay_tensor t;
  if (!const_view(e, &t))
    return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "%s must be a constant", what);
  int64_t numel = relay_tensor_numel(&t);
  if (numel > (1 << 24))
    return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "%s has too many elements", what);
  double *out = ir_arena_alloc(imp->a, sizeof(double) * (size_t)(numel + 1));
  if (!out) return KILN_ERR_NOMEM;
  for (int64_t i = 0; i < numel; i++) out[i] = relay_tensor_get(&t, i);
  *n = (int)numel;
  *v = out;
  return KILN_OK;
}

kiln_status onnx_const_ints(onnx_importer *imp, const relay_expr *e, const char *what, int *n,
                            int64_t **v) {
  relay_tensor t;
  if (!const_view(e, &t))
    return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "%s must be a constant", what);
  int64_t numel = relay_tensor_numel(&t);
  if (numel > (1 << 24))
    return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "%s has too many elements", what);
  int64_t *out = ir_arena_alloc(imp->a, sizeof(int64_t) * (size_t)(numel + 1));
  if (!out) return KILN_ERR_NOMEM;
  for (int64_t i = 0; i < numel; i++) {
    if (t.dtype.code == KILN_TYPE_INT && t.dtype.bits == 64) memcpy(&out[i], (const char *)t.data + i * 8, 8);
    else {
      double d = relay_tensor_get(&t, i);
      out[i] = d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? INT64_MIN : d == d ? (int64_t)d : 0;
    }
  }
  *n = (int)numel;
  *v = out;
  return KILN_OK;
}

const relay_tensor_type *onnx_tensor_type(onnx_importer *imp, const relay_expr *e, const char *what) {
  const relay_type *t = relay_type_of(e);
  if (!t || t->kind != RELAY_TENSOR_TYPE) {
    ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_TYPE, "%s is not a tensor", what);
    return NULL;
  }
  return (const relay_tensor_type *)t;
}

kiln_status onnx_static_shape(onnx_importer *imp, const relay_expr *e, const char *what,
                              int *ndim, int64_t *shape) {
  const relay_tensor_type *t = onnx_tensor_type(imp, e, what);
  if (!t) return KILN_ERR_TYPE;
  for (int i = 0; i < t->ndim; i++)
    if (!relay_dim_const(t->shape[i], &shape[i])) {
      char buf[160];
      return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                     "%s has the symbolic shape %s; a constant shape is needed here", what,
                     relay_shape_str(t, buf, sizeof buf));
    }
  *ndim = t->ndim;
  return KILN_OK;
}

/* ---- Symbolic shape values -------------------------------------------------------------- */

const onnx_shape_value *onnx_shape_value_of(onnx_importer *imp, const relay_expr *e) {
  if (!e || e->kind != RELAY_VAR) return NULL;
  return ir_ptrmap_get(&imp->shapes, e);
}

bool onnx_as_shape_value(onnx_importer *imp, const relay_expr *e, onnx_shape_value *out) {
  const onnx_shape_value *sv = onnx_shape_value_of(imp, e);
  if (sv) {
    *out = *sv;
    return true;
  }
  relay_tensor t;
  if (!const_view(e, &t) || t.ndim > 1 ||
      (t.dtype.code != KILN_TYPE_INT && t.dtype.code != KILN_TYPE_UINT))
    return false;
  int64_t n = relay_tensor_numel(&t);
  if (n > ONNX_MAX_SHAPE_ELEMS) return false;
  int cnt;
  int64_t *v;
  if (onnx_const_ints(imp, e, "a shape value", &cnt, &v)) return false;
  ir_expr **elems = ir_arena_alloc(imp->a, sizeof(ir_expr *) * (size_t)(n + 1));
  if (!elems) return false;
  for (int i = 0; i < cnt; i++)
    if (!(elems[i] = ir_int(imp->a, KILN_INT64, v[i]))) return false;
  out->dtype = t.dtype;
  out->rank = t.ndim;
  out->n = cnt;
  out->elems = elems;
  return true;
}

relay_expr *onnx_shape_value_new(onnx_importer *imp, kiln_dtype dt, int rank, int n,
                                 ir_expr *const *elems) {
  if (rank < 0 || rank > 1 || (rank == 0 && n != 1) || n < 0 || n > ONNX_MAX_SHAPE_ELEMS) {
    ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
            "a shape value of rank %d with %d elements is not supported (rank 0 or 1, at most %d "
            "elements)", rank, n, ONNX_MAX_SHAPE_ELEMS);
    return NULL;
  }
  ir_expr **s = ir_arena_alloc(imp->a, sizeof(ir_expr *) * (size_t)(n + 1));
  double vals[ONNX_MAX_SHAPE_ELEMS];
  if (!s) return NULL;
  bool all_const = true;
  for (int i = 0; i < n; i++) {
    if (!(s[i] = ir_simplify_expr(imp->an, elems[i]))) return NULL;
    int64_t v;
    if (relay_dim_const(s[i], &v)) vals[i] = (double)v;
    else all_const = false;
  }
  int64_t len = n;
  if (all_const) return onnx_make_const(imp, dt, rank, &len, vals);
  onnx_shape_value *sv = ir_arena_alloc(imp->a, sizeof *sv);
  relay_type *t = relay_tensor_type_const(imp->a, dt, rank, &len);
  relay_var *v = sv && t ? relay_var_new(imp->a, "shape_value", t) : NULL;
  if (!v) return NULL;
  *sv = (onnx_shape_value){dt, rank, n, s};
  if (ir_ptrmap_put(&imp->shapes, v, sv)) return NULL;
  return (relay_expr *)v;
}

ir_expr *onnx_dim_binop(onnx_importer *imp, int kind, ir_expr *x, ir_expr *y) {
  ir_expr *e = ir_binop(imp->a, kind, x, y);
  return e ? ir_simplify_expr(imp->an, e) : NULL;
}

bool onnx_dim_equal(onnx_importer *imp, ir_expr *x, ir_expr *y) {
  if (x == y) return true;
  ir_expr *d = onnx_dim_binop(imp, IR_SUB, x, y);
  int64_t v;
  return d && relay_dim_const(d, &v) && v == 0;
}

bool onnx_dim_nonneg(onnx_importer *imp, ir_expr *x) { return ir_bound_of(imp->an, x).min >= 0; }

const char *onnx_shape_value_str(const onnx_shape_value *sv, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = 0;
  for (int i = 0; i < sv->n && used + 1 < size; i++) {
    if (i) snprintf(buf + used, size - used, ", ");
    used = strlen(buf);
    char dim[96];
    snprintf(buf + used, size - used, "%s", relay_dim_str(sv->elems[i], dim, sizeof dim));
    used = strlen(buf);
  }
  char tmp[512];
  snprintf(tmp, sizeof tmp, sv->rank == 0 ? "%s" : "[%s]", buf);
  snprintf(buf, size, "%s", tmp);
  return buf;
}

const char *onnx_shape_value_symbolic(const onnx_shape_value *sv, char *buf, size_t size) {
  int64_t v;
  for (int i = 0; i < sv->n; i++)
    if (!relay_dim_const(sv->elems[i], &v)) return relay_dim_str(sv->elems[i], buf, size);
  snprintf(buf, size, "?");
  return buf;
}

/* The error for a symbolic shape value that reaches a place needing a real tensor. */
static kiln_status shape_value_error(onnx_importer *imp, const onnx_shape_value *sv,
                                     const char *where) {
  char text[256], sym[96];
  return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                 "%s is the shape value %s, whose element %s is symbolic; such values can be used "
                 "as shapes (Reshape, Expand) and in shape arithmetic (Gather, Slice, Concat, "
                 "Squeeze, Unsqueeze, Cast, Add, Sub, Mul, Div), but only a constant one can "
                 "become a tensor", where, onnx_shape_value_str(sv, text, sizeof text),
                 onnx_shape_value_symbolic(sv, sym, sizeof sym));
}

/* ---- Attributes ------------------------------------------------------------------------ */

const Onnx__AttributeProto *onnx_attr(const Onnx__NodeProto *node, const char *name) {
  for (size_t i = 0; i < node->n_attribute; i++)
    if (node->attribute[i]->name && strcmp(node->attribute[i]->name, name) == 0)
      return node->attribute[i];
  return NULL;
}

int64_t onnx_attr_int(const Onnx__NodeProto *node, const char *name, int64_t dflt) {
  const Onnx__AttributeProto *a = onnx_attr(node, name);
  return a && a->has_i ? a->i : dflt;
}

double onnx_attr_float(const Onnx__NodeProto *node, const char *name, double dflt) {
  const Onnx__AttributeProto *a = onnx_attr(node, name);
  return a && a->has_f ? a->f : dflt;
}

/* Strings are bytes in protobuf; converters compare them against short literals, so only
 * NUL-free strings count (others read as the default). The unpacked data is not
 * NUL-terminated: the copy lives in a thread-local buffer, valid until the next call. */
const char *onnx_attr_str(const Onnx__NodeProto *node, const char *name, const char *dflt) {
  static _Thread_local char buf[64];
  const Onnx__AttributeProto *a = onnx_attr(node, name);
  if (!a || !a->has_s || a->s.len >= sizeof buf || memchr(a->s.data, 0, a->s.len)) return dflt;
  memcpy(buf, a->s.data, a->s.len);
  buf[a->s.len] = 0;
  return buf;
}

bool onnx_attr_ints(const Onnx__NodeProto *node, const char *name, int *n, const int64_t **v) {
  const Onnx__AttributeProto *a = onnx_attr(node, name);
  *n = 0;
  *v = NULL;
  if (!a || (a->n_ints == 0 && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)) return false;
  *n = (int)a->n_ints;
  *v = a->ints;
  return true;
}

/* ---- The graph -------------------------------------------------------------------------- */

/* A symbolic dimension's name from a dim_param: letters, digits and '_' kept, anything else
 * becomes '_' (so the text format prints it bare). */
static ir_expr *param_dim(onnx_importer *imp, const char *param) {
  char name[64];
  size_t n = 0;
  for (const char *s = param; *s && n + 1 < sizeof name; s++) {
    char ch = *s;
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
              (ch >= '0' && ch <= '9' && n > 0);
    name[n++] = ok ? ch : '_';
  }
  name[n] = 0;
  if (!n) strcpy(name, "dim");
  ir_var *v = relay_module_dim(imp->m, name);
  /* Dimensions are sizes: the analyzer may use that they are >= 0 and far from overflowing
   * (2^40, the importer's bound on tensor sizes), so that shape arithmetic simplifies. */
  if (!v || ir_analyzer_bind(imp->an, v, (ir_interval){0, (int64_t)1 << 40})) return NULL;
  return (ir_expr *)v;
}

/* The relay type of a graph input. Unknown dimensions (neither value nor param) get a
 * symbolic dimension named after the input and the axis. */
static relay_type *input_type(onnx_importer *imp, const Onnx__ValueInfoProto *vi) {
  const char *name = vi->name;
  const Onnx__TypeProto *tp = vi->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) {
    ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "graph input '%s' is not a tensor", name);
    return NULL;
  }
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  kiln_dtype dt;
  if (!onnx_elem_dtype(tt->elem_type, &dt)) {
    ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
            "graph input '%s': element type %s (%d) is not supported", name,
            elem_type_name(tt->elem_type), (int)tt->elem_type);
    return NULL;
  }
  if (!tt->shape) {
    ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "graph input '%s' has no shape", name);
    return NULL;
  }
  size_t nd = tt->shape->n_dim;
  if (nd > RELAY_MAX_DIMS) {
    ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "graph input '%s' has %zu dimensions (at most %d)",
            name, nd, RELAY_MAX_DIMS);
    return NULL;
  }
  ir_expr *dims[RELAY_MAX_DIMS];
  for (size_t i = 0; i < nd; i++) {
    const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
    if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
      if (d->dim_value < 0) {
        ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT, "graph input '%s': dimension %zu is %lld",
                name, i, (long long)d->dim_value);
        return NULL;
      }
      dims[i] = ir_int(imp->a, KILN_INT64, d->dim_value);
    } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param &&
               *d->dim_param) {
      dims[i] = param_dim(imp, d->dim_param);
    } else {
      char buf[64];
      snprintf(buf, sizeof buf, "%.40s_%zu", name, i);
      dims[i] = param_dim(imp, buf);
    }
    if (!dims[i]) return NULL;
  }
  return relay_tensor_type_new(imp->a, dt, (int)nd, dims);
}

/* The default-domain opset of the model. */
static kiln_status model_opset(onnx_importer *imp, const Onnx__ModelProto *mp, int *opset) {
  int64_t v = -1;
  for (size_t i = 0; i < mp->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
    if (!o->domain || !*o->domain || strcmp(o->domain, "ai.onnx") == 0) v = o->version;
  }
  if (v < 0)
    return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT, "the model imports no default-domain opset");
  if (v < 11 || v > 17)
    return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "ONNX opset %lld is not supported (opsets 11-17 are)", (long long)v);
  *opset = (int)v;
  return KILN_OK;
}

static bool default_domain(const Onnx__NodeProto *n) {
  return !n->domain || !*n->domain || strcmp(n->domain, "ai.onnx") == 0;
}

/* One error listing every node without a converter: "unsupported ONNX ops: Foo (opset 13,
 * node 'a'), Bar (domain com.x, opset 13, node 'b')". */
static kiln_status check_supported(onnx_importer *imp, const Onnx__GraphProto *g, int opset) {
  ir_strbuf sb;
  ir_sb_init(&sb, imp->ctx);
  int bad = 0;
  for (size_t i = 0; i < g->n_node; i++) {
    const Onnx__NodeProto *n = g->node[i];
    const char *op = n->op_type ? n->op_type : "";
    if (default_domain(n) && onnx_find_converter(op, opset)) continue;
    if (bad == 50) ir_sb_puts(&sb, ", ...");
    if (bad++ >= 50) continue;
    ir_sb_printf(&sb, "%s%s (", bad > 1 ? ", " : "", *op ? op : "<no op_type>");
    if (!default_domain(n)) ir_sb_printf(&sb, "domain %s, ", n->domain);
    ir_sb_printf(&sb, "opset %d, node '%s')", opset, n->name ? n->name : "");
  }
  if (!bad) {
    ir_sb_free(&sb);
    return KILN_OK;
  }
  size_t len;
  char *list = ir_sb_take(&sb, &len);
  if (!list) return KILN_ERR_NOMEM;
  kiln_status st = ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "%d unsupported ONNX node%s: %s",
                           bad, bad == 1 ? "" : "s", list);
  ir_free(imp->ctx, list, len + 1);
  return st;
}

/* Re-records the context's error prefixed with the node that caused it. */
static kiln_status node_error(onnx_importer *imp, const Onnx__NodeProto *n, kiln_status st) {
  char msg[sizeof imp->ctx->errmsg];
  if (!st) st = KILN_ERR_INTERNAL;
  if (st == KILN_ERR_NOMEM) return st;
  snprintf(msg, sizeof msg, "%s", imp->ctx->code ? imp->ctx->errmsg : "conversion failed");
  return ir_fail(imp->ctx, IR_NO_SPAN, st, "ONNX node '%s' (%s): %s", n->name ? n->name : "",
                 n->op_type ? n->op_type : "", msg);
}

enum { MAX_NODE_IO = 64 };

static kiln_status convert_node(onnx_importer *imp, const Onnx__NodeProto *n, int opset) {
  if (n->n_input > MAX_NODE_IO || n->n_output > MAX_NODE_IO)
    return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "ONNX node '%s' (%s) has %zu inputs and %zu outputs (at most %d)",
                   n->name ? n->name : "", n->op_type, n->n_input, n->n_output, MAX_NODE_IO);
  relay_expr *in[MAX_NODE_IO] = {0}, *out[MAX_NODE_IO] = {0};
  for (size_t i = 0; i < n->n_input; i++) {
    if (!n->input[i] || !*n->input[i]) continue; /* an omitted optional input */
    if (!(in[i] = map_get(&imp->values, n->input[i])))
      return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT,
                     "ONNX node '%s' (%s): input '%s' is not defined before it (the nodes must be in "
                     "topological order)", n->name ? n->name : "", n->op_type, n->input[i]);
  }
  /* symbolic shape values only go where the converter handles them */
  uint32_t shape_ok = onnx_shape_inputs(n->op_type);
  for (size_t i = 0; i < n->n_input; i++) {
    const onnx_shape_value *sv = onnx_shape_value_of(imp, in[i]);
    if (!sv || (i < 32 && (shape_ok >> i) & 1)) continue;
    char where[160];
    snprintf(where, sizeof where, "input %zu ('%.100s')", i, n->input[i]);
    return node_error(imp, n, shape_value_error(imp, sv, where));
  }
  const onnx_converter *cv = onnx_find_converter(n->op_type, opset);
  ir_clear_error(imp->ctx);
  kiln_status st = cv->convert(imp, n, opset, (int)n->n_input, in, (int)n->n_output, out);
  if (st) return node_error(imp, n, st);
  for (size_t i = 0; i < n->n_output; i++) {
    if (!n->output[i] || !*n->output[i] || !out[i]) continue;
    if ((st = map_put(imp->ctx, &imp->values, n->output[i], out[i]))) return st;
  }
  return KILN_OK;
}

static bool is_initializer(const Onnx__GraphProto *g, const char *name) {
  for (size_t i = 0; i < g->n_initializer; i++)
    if (g->initializer[i]->name && strcmp(g->initializer[i]->name, name) == 0) return true;
  return false;
}

static kiln_status import_graph(onnx_importer *imp, const Onnx__GraphProto *g, int opset) {
  kiln_status st = check_supported(imp, g, opset);
  if (st) return st;
  for (size_t i = 0; i < g->n_initializer; i++) {
    const Onnx__TensorProto *t = g->initializer[i];
    if (!t->name || !*t->name)
      return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT, "initializer %zu has no name", i);
    relay_expr *c = onnx_tensor_const(imp, t);
    if (!c) return ctx_code(imp->ctx);
    if ((st = map_put(imp->ctx, &imp->values, t->name, c))) return st;
  }
  int nparams = 0;
  relay_var **params = ir_arena_alloc(imp->a, sizeof(relay_var *) * (g->n_input + 1));
  if (!params) return KILN_ERR_NOMEM;
  for (size_t i = 0; i < g->n_input; i++) {
    const Onnx__ValueInfoProto *vi = g->input[i];
    if (!vi->name || !*vi->name)
      return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT, "graph input %zu has no name", i);
    if (is_initializer(g, vi->name)) continue; /* IR < 4 style: initializers listed as inputs */
    relay_type *t = input_type(imp, vi);
    relay_var *v = t ? relay_var_new(imp->a, vi->name, t) : NULL;
    if (!v) return ctx_code(imp->ctx);
    params[nparams++] = v;
    if ((st = map_put(imp->ctx, &imp->values, vi->name, (relay_expr *)v))) return st;
  }
  for (size_t i = 0; i < g->n_node; i++)
    if ((st = convert_node(imp, g->node[i], opset))) return st;
  if (g->n_output == 0)
    return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT, "the graph has no outputs");
  relay_expr **outs = ir_arena_alloc(imp->a, sizeof(relay_expr *) * g->n_output);
  if (!outs) return KILN_ERR_NOMEM;
  for (size_t i = 0; i < g->n_output; i++) {
    const char *name = g->output[i]->name ? g->output[i]->name : "";
    if (!(outs[i] = map_get(&imp->values, name)))
      return ir_fail(imp->ctx, IR_NO_SPAN, KILN_ERR_CORRUPT, "graph output '%s' is not computed by any node",
                     name);
    const onnx_shape_value *sv = onnx_shape_value_of(imp, outs[i]);
    if (sv) {
      char where[160];
      snprintf(where, sizeof where, "graph output '%.100s'", name);
      return shape_value_error(imp, sv, where);
    }
  }
  /* The graph's output names, as attributes "output_name_<i>" of main (the build driver names
   * the compiled model's outputs after them). */
  relay_attr **attrs = ir_arena_alloc(imp->a, sizeof(relay_attr *) * g->n_output);
  if (!attrs) return KILN_ERR_NOMEM;
  for (size_t i = 0; i < g->n_output; i++) {
    char key[32];
    snprintf(key, sizeof key, "output_name_%zu", i);
    if (!(attrs[i] = relay_attr_str(imp->a, key, g->output[i]->name ? g->output[i]->name : "")))
      return KILN_ERR_NOMEM;
  }
  relay_expr *body = g->n_output == 1 ? outs[0] : relay_tuple_new(imp->a, (int)g->n_output, outs);
  relay_expr *f = body ? relay_func_new(imp->a, nparams, params, NULL, body, (int)g->n_output,
                                        attrs)
                       : NULL;
  if (!f) return ctx_code(imp->ctx);
  return relay_module_set(imp->m, "main", (relay_func *)f);
}

kiln_status relay_from_onnx(kiln_context *ctx, const void *bytes, size_t len,
                            const char *dir_for_external_data, relay_module **out) {
  if (!out) return KILN_ERR_MISUSE;
  *out = NULL;
  if (!ctx || (!bytes && len)) return KILN_ERR_MISUSE;
  ir_clear_error(ctx);
  ProtobufCAllocator alloc = {pb_alloc, pb_free, ctx};
  Onnx__ModelProto *mp = onnx__model_proto__unpack(&alloc, len, bytes);
  if (!mp) {
    if (ctx->code == KILN_ERR_NOMEM) return KILN_ERR_NOMEM;
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_CORRUPT,
                   "not an ONNX model: the %zu bytes are not a valid ModelProto (truncated or corrupt)", len);
  }
  onnx_importer imp = {ctx, NULL, NULL, dir_for_external_data, {0}, {0}, NULL};
  ir_ptrmap_init(&imp.shapes, ctx);
  kiln_status st = KILN_OK;
  int opset = 0;
  if (!mp->has_ir_version || !mp->graph)
    st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_CORRUPT, "not an ONNX model: %s is missing",
                 mp->graph ? "the IR version" : "the graph");
  else if (mp->ir_version < 7 || mp->ir_version > 8)
    st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                 "ONNX IR version %lld is not supported (versions 7-8 are)", (long long)mp->ir_version);
  else if (!(st = model_opset(&imp, mp, &opset))) {
    if (!(imp.m = relay_module_new(ctx))) st = KILN_ERR_NOMEM;
    else if (!(imp.an = ir_analyzer_new(imp.m->arena))) st = KILN_ERR_NOMEM;
    else {
      imp.a = imp.m->arena;
      st = import_graph(&imp, mp->graph, opset);
    }
  }
  if (imp.an) ir_analyzer_free(imp.an);
  ir_ptrmap_free(&imp.shapes);
  map_free(ctx, &imp.values);
  onnx__model_proto__free_unpacked(mp, &alloc);
  if (st) {
    relay_module_free(imp.m);
    return st;
  }
  *out = imp.m;
  return KILN_OK;
}

kiln_status relay_from_onnx_file(kiln_context *ctx, const char *path, relay_module **out) {
  if (!out) return KILN_ERR_MISUSE;
  *out = NULL;
  if (!ctx || !path) return KILN_ERR_MISUSE;
  FILE *f = fopen(path, "rb");
  if (!f) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "cannot open ONNX model '%s'", path);
  long size = -1;
  if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
  if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "cannot read ONNX model '%s'", path);
  }
  void *buf = ir_malloc(ctx, (size_t)size + 1);
  if (!buf) {
    fclose(f);
    return KILN_ERR_NOMEM;
  }
  size_t got = fread(buf, 1, (size_t)size, f);
  fclose(f);
  kiln_status st;
  if (got != (size_t)size) st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "cannot read ONNX model '%s'", path);
  else {
    /* external data lives next to the model */
    const char *slash = strrchr(path, '/');
    char *dir = NULL;
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    if (slash && !(dir = ir_malloc(ctx, dlen + 2))) st = KILN_ERR_NOMEM;
    else {
      if (dir) {
        memcpy(dir, path, dlen);
        if (dlen == 0) dir[dlen++] = '/'; /* a model in the root directory */
        dir[dlen] = 0;
      }
      st = relay_from_onnx(ctx, buf, (size_t)size, dir, out);
      if (dir) ir_free(ctx, dir, (size_t)(slash - path) + 2);
    }
  }
  ir_free(ctx, buf, (size_t)size + 1);
  return st;
}

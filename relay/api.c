/* api.c: the public kiln_relay_* entry points: building Relay graphs through opaque handles,
 * text in and out, passes, shape binding and the reference interpreter. Each entry point
 * checks its handles and arguments, calls the relay layer and leaves any error on the
 * context (and as the thread's last error). Expression handles are the relay nodes
 * themselves; the module remembers which ones it handed out, so a handle of another module
 * (or a pointer that is no handle) is refused with KILN_ERR_MISUSE instead of being used. */
#include <stdio.h>
#include <string.h>

#include "relay/build.h"
#include "relay/frontend/onnx.h"
#include "relay/interp.h"
#include "relay/lower.h"
#include "relay/pass.h"
#include "relay/text.h"
#include "runtime/rt_internal.h"

/* The public module: the relay module plus the set of expression handles it gave out. */
struct kiln_relay_module {
  kiln_context *ctx;
  relay_module *m;
  ir_ptrmap handles; /* relay_expr * -> (void *)1 */
};

#define CHECK_CTX(ctx) \
  if (!(ctx)) return rt_errorf(KILN_ERR_MISUSE, "%s: NULL context", __func__)
#define CHECK_MOD(w) \
  if (!(w) || !(w)->ctx || !(w)->m) return rt_errorf(KILN_ERR_MISUSE, "%s: NULL module", __func__)
#define MISUSE(w, ...) ir_fail((w)->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, __VA_ARGS__)

relay_module *relay_api_module(kiln_relay_module *m) { return m ? m->m : NULL; }

/* Wraps a relay module (taking it; freed on failure). */
static kiln_status wrap(kiln_context *ctx, relay_module *m, kiln_relay_module **out) {
  kiln_relay_module *w = ir_malloc(ctx, sizeof *w);
  if (!w) {
    relay_module_free(m);
    return KILN_ERR_NOMEM;
  }
  w->ctx = ctx;
  w->m = m;
  ir_ptrmap_init(&w->handles, ctx);
  *out = w;
  return KILN_OK;
}

KILN_API kiln_status kiln_relay_module_new(kiln_context *ctx, kiln_relay_module **out) {
  CHECK_CTX(ctx);
  if (!out) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_relay_module_new: NULL out");
  *out = NULL;
  ir_clear_error(ctx);
  relay_module *m = relay_module_new(ctx);
  if (!m) return KILN_ERR_NOMEM;
  return wrap(ctx, m, out);
}

KILN_API void kiln_relay_module_free(kiln_relay_module *w) {
  if (!w || !w->ctx) return;
  ir_ptrmap_free(&w->handles);
  relay_module_free(w->m);
  ir_free(w->ctx, w, sizeof *w);
}

KILN_API kiln_status kiln_relay_module_parse(kiln_context *ctx, const char *text, size_t len,
                                             kiln_relay_module **out) {
  CHECK_CTX(ctx);
  if (!out || (!text && len))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_relay_module_parse: NULL argument");
  *out = NULL;
  ir_clear_error(ctx);
  relay_module *m = NULL;
  kiln_status st = relay_parse_module(ctx, text ? text : "", len, &m);
  if (st) return st;
  return wrap(ctx, m, out);
}

/* Reads a whole file into context memory (NUL-terminated; free with len + 1). */
static kiln_status read_file(kiln_context *ctx, const char *path, char **data, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "cannot open '%s'", path);
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  char buf[16384];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) ir_sb_putn(&sb, buf, n);
  bool err = ferror(f);
  fclose(f);
  if (err) {
    ir_sb_free(&sb);
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "error reading '%s'", path);
  }
  *data = ir_sb_take(&sb, len);
  return *data ? KILN_OK : KILN_ERR_NOMEM;
}

KILN_API kiln_status kiln_relay_module_parse_file(kiln_context *ctx, const char *path,
                                                  kiln_relay_module **out) {
  CHECK_CTX(ctx);
  if (!path || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_relay_module_parse_file: NULL argument");
  *out = NULL;
  ir_clear_error(ctx);
  char *text;
  size_t len;
  kiln_status st = read_file(ctx, path, &text, &len);
  if (st) return st;
  relay_module *m = NULL;
  st = relay_parse_module(ctx, text, len, &m);
  ir_free(ctx, text, len + 1);
  if (st) return st;
  return wrap(ctx, m, out);
}

KILN_API kiln_status kiln_relay_module_from_onnx(kiln_context *ctx, const void *bytes, size_t len,
                                                 const char *external_data_dir,
                                                 kiln_relay_module **out) {
  CHECK_CTX(ctx);
  if (!out || (!bytes && len))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_relay_module_from_onnx: NULL argument");
  *out = NULL;
  ir_clear_error(ctx);
  relay_module *m = NULL;
  kiln_status st = relay_from_onnx(ctx, bytes ? bytes : "", len, external_data_dir, &m);
  if (st) return st;
  return wrap(ctx, m, out);
}

KILN_API kiln_status kiln_relay_module_from_onnx_file(kiln_context *ctx, const char *path,
                                                      kiln_relay_module **out) {
  CHECK_CTX(ctx);
  if (!path || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "kiln_relay_module_from_onnx_file: NULL argument");
  *out = NULL;
  ir_clear_error(ctx);
  relay_module *m = NULL;
  kiln_status st = relay_from_onnx_file(ctx, path, &m);
  if (st) return st;
  return wrap(ctx, m, out);
}

KILN_API kiln_status kiln_relay_module_print(kiln_relay_module *w, char **out) {
  CHECK_MOD(w);
  if (!out) return MISUSE(w, "kiln_relay_module_print: NULL out");
  *out = NULL;
  ir_clear_error(w->ctx);
  ir_strbuf sb;
  ir_sb_init(&sb, w->ctx);
  kiln_status st = relay_print_module(w->m, &sb);
  if (st) {
    ir_sb_free(&sb);
    return st;
  }
  *out = ir_sb_take(&sb, NULL); /* "" for an empty module */
  return *out ? KILN_OK : KILN_ERR_NOMEM;
}

/* Functions are matched by name, so the order in which they were added does not matter. */
KILN_API kiln_status kiln_relay_module_equal(kiln_relay_module *a, kiln_relay_module *b,
                                             int *out) {
  CHECK_MOD(a);
  CHECK_MOD(b);
  if (!out) return MISUSE(a, "kiln_relay_module_equal: NULL out");
  *out = 0;
  if (a->m->nfuncs != b->m->nfuncs) return KILN_OK;
  for (int i = 0; i < a->m->nfuncs; i++) {
    relay_func *g = relay_module_get(b->m, a->m->names[i]);
    if (!g) return KILN_OK;
    ir_clear_error(a->ctx);
    bool eq = ir_structural_equal(a->ctx, &a->m->funcs[i]->h, &g->h);
    if (a->ctx->code == KILN_ERR_NOMEM) return KILN_ERR_NOMEM;
    if (!eq) return KILN_OK;
  }
  *out = 1;
  return KILN_OK;
}

/* The hashes of the (name, function) pairs are summed, so the order of functions does not
 * matter (as for equality). */
KILN_API kiln_status kiln_relay_module_hash(kiln_relay_module *w, uint64_t *out) {
  CHECK_MOD(w);
  if (!out) return MISUSE(w, "kiln_relay_module_hash: NULL out");
  *out = 0;
  uint64_t sum = 0;
  for (int i = 0; i < w->m->nfuncs; i++) {
    uint64_t fh;
    kiln_status st = ir_structural_hash(w->ctx, &w->m->funcs[i]->h, &fh);
    if (st) return ir_fail(w->ctx, IR_NO_SPAN, st, "out of memory hashing a module");
    sum += ir_hash_mix(ir_hash_str(0, w->m->names[i]), fh);
  }
  *out = ir_hash_mix((uint64_t)w->m->nfuncs, sum);
  return KILN_OK;
}

KILN_API int kiln_relay_module_num_funcs(kiln_relay_module *w) {
  return w && w->m ? w->m->nfuncs : 0;
}

KILN_API const char *kiln_relay_module_func_name(kiln_relay_module *w, int i) {
  if (!w || !w->m || i < 0 || i >= w->m->nfuncs) return NULL;
  return w->m->names[i];
}

/* ---- Passes -------------------------------------------------------------------------- */

/* Splits a comma-separated pass list into list (at most cap entries). */
static kiln_status parse_pass_list(kiln_context *ctx, const char *s, const relay_pass **list,
                                   int cap, int *n) {
  *n = 0;
  const char *p = s;
  for (;;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    while (len && (*p == ' ' || *p == '\t')) p++, len--;
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    char name[64];
    if (len == 0 || len >= sizeof name)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "bad pass list '%s': empty or overlong name", s);
    memcpy(name, p, len);
    name[len] = 0;
    const relay_pass *pass = relay_pass_lookup(name);
    if (!pass) {
      char known[512] = "";
      for (int i = 0; i < relay_pass_count(); i++) {
        size_t k = strlen(known);
        snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "", relay_pass_at(i)->name);
      }
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNDEFINED, "unknown pass '%s' (passes: %s)", name,
                     known);
    }
    if (*n == cap)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "more than %d passes in '%s'", cap, s);
    list[(*n)++] = pass;
    if (!end) return KILN_OK;
    p = end + 1;
  }
}

KILN_API kiln_status kiln_relay_module_run_passes(kiln_relay_module *w, const char *passes,
                                                  int opt_level) {
  CHECK_MOD(w);
  ir_clear_error(w->ctx);
  if (opt_level < 0 || opt_level > 3)
    return MISUSE(w, "kiln_relay_module_run_passes: opt_level %d is not in 0..3", opt_level);
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  pc.opt_level = opt_level;
  if (!passes) return relay_run_default_pipeline(&pc, w->m);
  const relay_pass *list[RELAY_MAX_PASS_RECORDS];
  int n;
  kiln_status st = parse_pass_list(w->ctx, passes, list, RELAY_MAX_PASS_RECORDS, &n);
  if (st) return st;
  return relay_run_passes(&pc, w->m, n, list);
}

KILN_API kiln_status kiln_relay_module_bind(kiln_relay_module *w, int n,
                                            const char *const *names, const int64_t *values) {
  CHECK_MOD(w);
  ir_clear_error(w->ctx);
  if (n < 0 || (n && (!names || !values)))
    return MISUSE(w, "kiln_relay_module_bind: bad binding list (n = %d)", n);
  for (int i = 0; i < n; i++)
    if (!names[i]) return MISUSE(w, "kiln_relay_module_bind: name %d is NULL", i);
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  pc.nbinds = n;
  pc.bind_names = names;
  pc.bind_values = values;
  const relay_pass *list[] = {&relay_pass_bind_shapes};
  return relay_run_passes(&pc, w->m, 1, list);
}

/* ---- Symbolic dimensions ------------------------------------------------------------- */

/* A dimension's public value is -1 - its index in m->dims (indices never change). */
KILN_API kiln_status kiln_relay_module_dim(kiln_relay_module *w, const char *name, int64_t *out) {
  CHECK_MOD(w);
  if (!name || !out) return MISUSE(w, "kiln_relay_module_dim: NULL argument");
  *out = 0;
  ir_clear_error(w->ctx);
  if (!*name) return MISUSE(w, "kiln_relay_module_dim: empty dimension name");
  ir_var *v = relay_module_dim(w->m, name);
  if (!v) return KILN_ERR_NOMEM;
  for (int i = 0; i < w->m->ndims; i++)
    if (w->m->dims[i] == v) *out = -1 - (int64_t)i;
  return *out ? KILN_OK : ir_fail(w->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "dimension '%s' lost", name);
}

KILN_API const char *kiln_relay_module_dim_name(kiln_relay_module *w, int64_t dim) {
  if (!w || !w->m || dim >= 0 || dim < -(int64_t)w->m->ndims) return NULL;
  return w->m->dims[-1 - dim]->name;
}

/* ---- Building expressions ------------------------------------------------------------ */

/* The relay node behind a handle, or NULL (with KILN_ERR_MISUSE recorded) when it is NULL or
 * was not made by this module. */
static relay_expr *expr_of(kiln_relay_module *w, kiln_relay_expr *e, const char *fn,
                           const char *what) {
  if (!e) {
    MISUSE(w, "%s: %s is NULL", fn, what);
    return NULL;
  }
  if (!ir_ptrmap_get(&w->handles, e)) {
    MISUSE(w, "%s: %s is not an expression of this module", fn, what);
    return NULL;
  }
  return (relay_expr *)e;
}

/* Hands out a node built by a constructor (NULL: the constructor's error). *out is written
 * only here, on success, so an out-parameter may alias one of the inputs
 * (kiln_relay_call(m, "nn.relu", 1, &h, 0, NULL, &h)). */
static kiln_status give(kiln_relay_module *w, relay_expr *e, kiln_relay_expr **out) {
  if (!e) {
    if (w->ctx->code) return w->ctx->code;
    return ir_fail(w->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "a relay constructor failed silently");
  }
  kiln_status st = ir_ptrmap_put(&w->handles, e, (void *)1);
  if (st) return st;
  *out = (kiln_relay_expr *)e;
  return KILN_OK;
}

/* Starts a builder call: checks the module and out, clears the error and the arena's span
 * (a parsed module's arena still holds the parser's last position). *out is not touched
 * before the result exists (see give). */
#define BEGIN(w, out)                                                        \
  CHECK_MOD(w);                                                              \
  if (!(out)) return MISUSE(w, "%s: NULL out", __func__);                    \
  ir_clear_error((w)->ctx);                                                  \
  (w)->m->arena->span = IR_NO_SPAN

/* A tensor type from public dtype and shape (negative entries: symbolic dimensions). */
static relay_type *tensor_type(kiln_relay_module *w, const char *fn, kiln_dtype dtype, int ndim,
                               const int64_t *shape, bool allow_symbolic) {
  char dt[32];
  if (ndim < 0 || ndim > RELAY_MAX_DIMS || (ndim && !shape)) {
    MISUSE(w, "%s: rank %d is not in 0..%d or the shape is NULL", fn, ndim, RELAY_MAX_DIMS);
    return NULL;
  }
  if (dtype.code > KILN_TYPE_BOOL || dtype.code == 5 || dtype.code == KILN_TYPE_HANDLE ||
      dtype.lanes != 1 || kiln_dtype_bytes(dtype) == 0) {
    MISUSE(w, "%s: %s is not a tensor element type", fn, kiln_dtype_str(dtype, dt, sizeof dt));
    return NULL;
  }
  ir_expr *dims[RELAY_MAX_DIMS];
  ir_arena *a = w->m->arena;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] >= 0) {
      if (!(dims[i] = ir_int(a, KILN_INT64, shape[i]))) return NULL;
    } else if (!allow_symbolic) {
      ir_fail(w->ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
              "%s: dimension %d is %lld; a constant needs a constant shape", fn, i,
              (long long)shape[i]);
      return NULL;
    } else if (shape[i] < -(int64_t)w->m->ndims) {
      ir_fail(w->ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
              "%s: dimension %d is %lld, which is no symbolic dimension of the module "
              "(see kiln_relay_module_dim)", fn, i, (long long)shape[i]);
      return NULL;
    } else {
      dims[i] = &w->m->dims[-1 - shape[i]]->h;
    }
  }
  return relay_tensor_type_new(a, dtype, ndim, dims);
}

KILN_API kiln_status kiln_relay_var(kiln_relay_module *w, const char *name, kiln_dtype dtype,
                                    int ndim, const int64_t *shape, kiln_relay_expr **out) {
  BEGIN(w, out);
  relay_type *t = tensor_type(w, "kiln_relay_var", dtype, ndim, shape, true);
  if (!t) return w->ctx->code ? w->ctx->code : KILN_ERR_NOMEM;
  relay_var *v = relay_var_new(w->m->arena, name && *name ? name : "x", t);
  return give(w, v ? &v->h : NULL, out);
}

KILN_API kiln_status kiln_relay_const(kiln_relay_module *w, kiln_dtype dtype, int ndim,
                                      const int64_t *shape, const void *data, size_t nbytes,
                                      kiln_relay_expr **out) {
  BEGIN(w, out);
  relay_type *t = tensor_type(w, "kiln_relay_const", dtype, ndim, shape, false);
  if (!t) return w->ctx->code ? w->ctx->code : KILN_ERR_NOMEM;
  int64_t numel = relay_type_numel(t);
  size_t elem = kiln_dtype_bytes(dtype);
  if (numel < 0 || (uint64_t)numel > SIZE_MAX / elem)
    return ir_fail(w->ctx, IR_NO_SPAN, KILN_ERR_SHAPE, "kiln_relay_const: the shape is too large");
  if (nbytes != (size_t)numel * elem) {
    ir_strbuf sb;
    ir_sb_init(&sb, w->ctx);
    relay_type_print(&sb, t);
    kiln_status st = ir_fail(w->ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                             "kiln_relay_const: %s takes %zu bytes of data, not %zu",
                             sb.data ? sb.data : "the tensor", (size_t)numel * elem, nbytes);
    ir_sb_free(&sb);
    return st;
  }
  if (nbytes && !data) return MISUSE(w, "kiln_relay_const: NULL data");
  return give(w, relay_const_new(w->m->arena, t, data, (int64_t)nbytes), out);
}

/* Turns a public attribute into a relay one (NULL with the error recorded). */
static relay_attr *attr_of(kiln_relay_module *w, const char *op, int i, const kiln_relay_attr *x) {
  ir_arena *a = w->m->arena;
  if (!x->key) {
    MISUSE(w, "kiln_relay_call: %s: attribute %d has no key", op, i);
    return NULL;
  }
  switch (x->kind) {
  case KILN_RELAY_ATTR_INT: return relay_attr_int(a, x->key, x->i);
  case KILN_RELAY_ATTR_FLOAT: return relay_attr_float(a, x->key, x->f);
  case KILN_RELAY_ATTR_STR:
    if (!x->s) break;
    return relay_attr_str(a, x->key, x->s);
  case KILN_RELAY_ATTR_INTS:
    if (x->nints < 0 || (x->nints && !x->ints)) break;
    return relay_attr_ints(a, x->key, x->nints, x->ints);
  }
  MISUSE(w, "kiln_relay_call: %s: attribute '%s' has a bad kind (%d) or a NULL value", op, x->key,
         x->kind);
  return NULL;
}

enum { MAX_CALL_ARGS = 64, MAX_CALL_ATTRS = 32 };

KILN_API kiln_status kiln_relay_call(kiln_relay_module *w, const char *op, int nargs,
                                     kiln_relay_expr *const *args, int nattrs,
                                     const kiln_relay_attr *attrs, kiln_relay_expr **out) {
  BEGIN(w, out);
  if (!op) return MISUSE(w, "kiln_relay_call: NULL op name");
  if (nargs < 0 || nargs > MAX_CALL_ARGS || (nargs && !args))
    return MISUSE(w, "kiln_relay_call: %s: bad argument list (nargs = %d)", op, nargs);
  if (nattrs < 0 || nattrs > MAX_CALL_ATTRS || (nattrs && !attrs))
    return MISUSE(w, "kiln_relay_call: %s: bad attribute list (nattrs = %d)", op, nattrs);
  if (!relay_op_lookup(op))
    return ir_fail(w->ctx, IR_NO_SPAN, KILN_ERR_UNDEFINED,
                   "kiln_relay_call: unknown op '%s' (see kiln_relay_op_name)", op);
  relay_expr *rargs[MAX_CALL_ARGS];
  relay_attr *rattrs[MAX_CALL_ATTRS];
  for (int i = 0; i < nargs; i++) {
    char what[64];
    snprintf(what, sizeof what, "argument %d of %s", i, op);
    if (!(rargs[i] = expr_of(w, args[i], "kiln_relay_call", what))) return KILN_ERR_MISUSE;
  }
  for (int i = 0; i < nattrs; i++)
    if (!(rattrs[i] = attr_of(w, op, i, &attrs[i]))) return w->ctx->code ? w->ctx->code : KILN_ERR_NOMEM;
  return give(w, relay_call_op(w->m->arena, op, nargs, rargs, nattrs, rattrs), out);
}

KILN_API kiln_status kiln_relay_tuple(kiln_relay_module *w, int n, kiln_relay_expr *const *fields,
                                      kiln_relay_expr **out) {
  BEGIN(w, out);
  if (n < 0 || (n && !fields)) return MISUSE(w, "kiln_relay_tuple: bad field list (n = %d)", n);
  size_t bytes = sizeof(relay_expr *) * (size_t)(n ? n : 1);
  relay_expr **f = ir_malloc(w->ctx, bytes);
  if (!f) return KILN_ERR_NOMEM;
  kiln_status st = KILN_OK;
  for (int i = 0; !st && i < n; i++) {
    char what[32];
    snprintf(what, sizeof what, "field %d", i);
    if (!(f[i] = expr_of(w, fields[i], "kiln_relay_tuple", what))) st = KILN_ERR_MISUSE;
  }
  if (!st) st = give(w, relay_tuple_new(w->m->arena, n, f), out);
  ir_free(w->ctx, f, bytes);
  return st;
}

KILN_API kiln_status kiln_relay_proj(kiln_relay_module *w, kiln_relay_expr *tuple, int index,
                                     kiln_relay_expr **out) {
  BEGIN(w, out);
  relay_expr *t = expr_of(w, tuple, "kiln_relay_proj", "the tuple");
  if (!t) return KILN_ERR_MISUSE;
  return give(w, relay_proj_new(w->m->arena, t, index), out);
}

KILN_API kiln_status kiln_relay_let(kiln_relay_module *w, kiln_relay_expr *var,
                                    kiln_relay_expr *value, kiln_relay_expr *body,
                                    kiln_relay_expr **out) {
  BEGIN(w, out);
  relay_expr *v = expr_of(w, var, "kiln_relay_let", "the variable");
  relay_expr *x = v ? expr_of(w, value, "kiln_relay_let", "the value") : NULL;
  relay_expr *b = x ? expr_of(w, body, "kiln_relay_let", "the body") : NULL;
  if (!b) return KILN_ERR_MISUSE;
  if (v->kind != RELAY_VAR) return MISUSE(w, "kiln_relay_let: the variable is not a variable");
  return give(w, relay_let_new(w->m->arena, (relay_var *)v, x, b), out);
}

/* The function is added, then the module is verified (every variable defined, in scope and
 * once); a failure puts the function table back as it was. */
KILN_API kiln_status kiln_relay_function(kiln_relay_module *w, const char *name, int nparams,
                                         kiln_relay_expr *const *params, kiln_relay_expr *body) {
  CHECK_MOD(w);
  ir_clear_error(w->ctx);
  w->m->arena->span = IR_NO_SPAN;
  if (!name || !*name) return MISUSE(w, "kiln_relay_function: NULL or empty name");
  if (nparams < 0 || (nparams && !params))
    return MISUSE(w, "kiln_relay_function: @%s: bad parameter list (nparams = %d)", name, nparams);
  relay_expr *b = expr_of(w, body, "kiln_relay_function", "the body");
  if (!b) return KILN_ERR_MISUSE;
  size_t bytes = sizeof(relay_var *) * (size_t)(nparams ? nparams : 1);
  relay_var **ps = ir_malloc(w->ctx, bytes);
  if (!ps) return KILN_ERR_NOMEM;
  kiln_status st = KILN_OK;
  for (int i = 0; !st && i < nparams; i++) {
    char what[32];
    snprintf(what, sizeof what, "parameter %d", i);
    relay_expr *p = expr_of(w, params[i], "kiln_relay_function", what);
    if (!p) st = KILN_ERR_MISUSE;
    else if (p->kind != RELAY_VAR)
      st = MISUSE(w, "kiln_relay_function: @%s: parameter %d is not a variable", name, i);
    else ps[i] = (relay_var *)p;
  }
  relay_expr *f = NULL;
  if (!st && !(f = relay_func_new(w->m->arena, nparams, ps, NULL, b, 0, NULL)))
    st = w->ctx->code ? w->ctx->code : KILN_ERR_NOMEM;
  ir_free(w->ctx, ps, bytes);
  if (st) return st;
  relay_module saved = *w->m;
  st = relay_module_set(w->m, name, (relay_func *)f);
  if (!st) st = relay_verify_module(w->m);
  if (st) {
    /* the tables live in the arena, so the old ones are still intact */
    w->m->nfuncs = saved.nfuncs;
    w->m->names = saved.names;
    w->m->funcs = saved.funcs;
    return st;
  }
  return KILN_OK;
}

/* ---- Queries ------------------------------------------------------------------------- */

/* The public value of a dimension: its constant, -1 - index of a symbolic dimension of the
 * module, or KILN_RELAY_DIM_EXPR. */
static int64_t public_dim(const relay_module *m, const ir_expr *d) {
  int64_t v;
  if (relay_dim_const(d, &v)) return v;
  for (int i = 0; i < m->ndims; i++)
    if (d == &m->dims[i]->h) return -1 - (int64_t)i;
  return KILN_RELAY_DIM_EXPR;
}

KILN_API kiln_status kiln_relay_expr_type(kiln_relay_module *w, kiln_relay_expr *e,
                                          kiln_dtype *dtype, int *ndim, int64_t *shape,
                                          int max_ndim) {
  CHECK_MOD(w);
  ir_clear_error(w->ctx);
  if (!dtype || !ndim) return MISUSE(w, "kiln_relay_expr_type: NULL out");
  relay_expr *x = expr_of(w, e, "kiln_relay_expr_type", "the expression");
  if (!x) return KILN_ERR_MISUSE;
  const relay_tensor_type *t = relay_as_tensor_type(relay_type_of(x));
  if (!t) {
    ir_strbuf sb;
    ir_sb_init(&sb, w->ctx);
    relay_type_print(&sb, relay_type_of(x));
    kiln_status st = ir_fail(w->ctx, IR_NO_SPAN, KILN_ERR_TYPE,
                             "kiln_relay_expr_type: the expression has type %s, not a tensor type",
                             sb.data ? sb.data : "?");
    ir_sb_free(&sb);
    return st;
  }
  *dtype = t->h.dtype;
  *ndim = t->ndim;
  if (!shape) return KILN_OK;
  if (max_ndim < t->ndim)
    return MISUSE(w, "kiln_relay_expr_type: the shape buffer holds %d dimensions, the type has %d",
                  max_ndim, (int)t->ndim);
  for (int i = 0; i < t->ndim; i++) shape[i] = public_dim(w->m, t->shape[i]);
  return KILN_OK;
}

/* ---- The interpreter ----------------------------------------------------------------- */

/* A relay tensor viewing a public one (compact, on the CPU). */
static kiln_status tensor_in(kiln_context *ctx, const char *what, int i, const kiln_tensor *k,
                             relay_tensor *out) {
  char dt[32];
  if (k->device_type != 1)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "interpret: %s %d is on device type %d; only CPU tensors (1) are supported", what,
                   i, (int)k->device_type);
  if (k->ndim < 0 || k->ndim > RELAY_MAX_DIMS || (k->ndim && !k->shape))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "interpret: %s %d has rank %d (must be 0..%d, with a shape)", what, i,
                   (int)k->ndim, RELAY_MAX_DIMS);
  size_t elem = kiln_dtype_bytes(k->dtype);
  if (!elem || k->dtype.lanes != 1 || k->dtype.code == KILN_TYPE_HANDLE)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_TYPE, "interpret: %s %d has element type %s", what, i,
                   kiln_dtype_str(k->dtype, dt, sizeof dt));
  memset(out, 0, sizeof *out);
  out->dtype = k->dtype;
  out->ndim = k->ndim;
  uint64_t numel = 1;
  for (int d = k->ndim - 1; d >= 0; d--) {
    int64_t n = k->shape[d];
    if (n < 0)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_SHAPE, "interpret: %s %d has dimension %d = %lld",
                     what, i, d, (long long)n);
    if (k->strides && n > 1 && k->strides[d] != (int64_t)numel)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                     "interpret: %s %d is not compact row-major (stride %lld of dimension %d)",
                     what, i, (long long)k->strides[d], d);
    if (n && numel > (UINT64_MAX / elem) / (uint64_t)n)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_SHAPE, "interpret: %s %d is too large", what, i);
    numel *= (uint64_t)n;
    out->shape[d] = n;
  }
  out->nbytes = (size_t)(numel * elem);
  if (out->nbytes && !k->data)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "interpret: %s %d has NULL data", what, i);
  out->data = k->data ? (char *)k->data + k->byte_offset : NULL;
  return KILN_OK;
}

/* Collects the tensors of a result value in order (tuples flattened); counts all of them
 * in *n but stores at most cap. */
static kiln_status flatten(kiln_context *ctx, const relay_value *v, const relay_tensor **list,
                           int cap, int *n) {
  switch (v->kind) {
  case RELAY_VALUE_TENSOR:
    if (*n < cap) list[*n] = &v->tensor;
    (*n)++;
    return KILN_OK;
  case RELAY_VALUE_TUPLE:
    for (int i = 0; i < v->nfields; i++) {
      kiln_status st = flatten(ctx, v->fields[i], list, cap, n);
      if (st) return st;
    }
    return KILN_OK;
  case RELAY_VALUE_CLOSURE:
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "interpret: the function returns a function, which has no tensor form");
  }
  return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "interpret: bad value kind %d", (int)v->kind);
}

/* Checks that the caller's output tensor o fits the result r. */
static kiln_status check_out(kiln_context *ctx, int i, const relay_tensor *r, const kiln_tensor *o,
                             relay_tensor *view) {
  kiln_status st = tensor_in(ctx, "output", i, o, view);
  if (st) return st;
  char want[32], got[32];
  if (!kiln_dtype_eq(view->dtype, r->dtype))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_TYPE, "interpret: output %d is %s, the result is %s", i,
                   kiln_dtype_str(view->dtype, got, sizeof got),
                   kiln_dtype_str(r->dtype, want, sizeof want));
  bool same = view->ndim == r->ndim;
  for (int d = 0; same && d < r->ndim; d++) same = view->shape[d] == r->shape[d];
  if (same) return KILN_OK;
  char ws[160] = "(", gs[160] = "(";
  for (int d = 0; d < r->ndim; d++) {
    size_t k = strlen(ws);
    snprintf(ws + k, sizeof ws - k, "%s%lld", d ? ", " : "", (long long)r->shape[d]);
  }
  for (int d = 0; d < view->ndim; d++) {
    size_t k = strlen(gs);
    snprintf(gs + k, sizeof gs - k, "%s%lld", d ? ", " : "", (long long)view->shape[d]);
  }
  return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                 "interpret: output %d has shape %s%s), the result has shape %s%s)", i, gs,
                 view->ndim == 1 ? "," : "", ws, r->ndim == 1 ? "," : "");
}

enum { MAX_INTERP_TENSORS = 256 };

KILN_API kiln_status kiln_relay_module_interpret(kiln_relay_module *w, const char *func,
                                                 int nargs, const kiln_tensor *args, int nouts,
                                                 kiln_tensor *outs) {
  CHECK_MOD(w);
  kiln_context *ctx = w->ctx;
  ir_clear_error(ctx);
  if (!func) return MISUSE(w, "kiln_relay_module_interpret: NULL function name");
  if (nargs < 0 || nargs > MAX_INTERP_TENSORS || (nargs && !args))
    return MISUSE(w, "kiln_relay_module_interpret: bad argument list (nargs = %d)", nargs);
  if (nouts < 0 || nouts > MAX_INTERP_TENSORS || (nouts && !outs))
    return MISUSE(w, "kiln_relay_module_interpret: bad output list (nouts = %d)", nouts);
  size_t abytes = sizeof(relay_tensor) * (size_t)(nargs ? nargs : 1);
  relay_tensor *in = ir_malloc(ctx, abytes);
  if (!in) return KILN_ERR_NOMEM;
  kiln_status st = KILN_OK;
  for (int i = 0; !st && i < nargs; i++) st = tensor_in(ctx, "argument", i, &args[i], &in[i]);
  relay_value *res = NULL;
  if (!st) st = relay_interp_run(w->m, func, nargs, in, &res);
  if (st && !ctx->code) st = MISUSE(w, "kiln_relay_module_interpret: the interpreter refused the call");
  ir_free(ctx, in, abytes);
  if (st) return st;

  const relay_tensor *list[MAX_INTERP_TENSORS];
  relay_tensor views[MAX_INTERP_TENSORS];
  int n = 0;
  st = flatten(ctx, res, list, MAX_INTERP_TENSORS, &n);
  if (!st && n != nouts)
    st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                 "interpret: @%s returns %d tensor%s, but %d output%s given", func, n,
                 n == 1 ? "" : "s", nouts, nouts == 1 ? " was" : "s were");
  for (int i = 0; !st && i < n; i++) st = check_out(ctx, i, list[i], &outs[i], &views[i]);
  for (int i = 0; !st && i < n; i++)
    if (views[i].nbytes) memcpy(views[i].data, list[i]->data, views[i].nbytes);
  relay_value_release(ctx, res);
  return st;
}

/* ---- Lowering to TIR ------------------------------------------------------------------ */

/* Adds f to the list unless it is there (the lists are short: a module's functions). */
static kiln_status add_reachable(kiln_context *ctx, relay_func *f, const char *name,
                                 relay_func ***funcs, const char ***names, int *n, int *cap) {
  for (int i = 0; i < *n; i++)
    if ((*funcs)[i] == f) return KILN_OK;
  if (*n == *cap) {
    int nc = *cap ? 2 * *cap : 8;
    relay_func **nf = ir_realloc(ctx, *funcs, sizeof **funcs * (size_t)*cap,
                                 sizeof **funcs * (size_t)nc);
    if (!nf) return KILN_ERR_NOMEM;
    *funcs = nf;
    const char **nn = ir_realloc(ctx, *names, sizeof **names * (size_t)*cap,
                                 sizeof **names * (size_t)nc);
    if (!nn) return KILN_ERR_NOMEM;
    *names = nn;
    *cap = nc;
  }
  (*funcs)[*n] = f;
  (*names)[*n] = name;
  (*n)++;
  return KILN_OK;
}

/* Lowers the primitive functions of "main" and of the module functions it calls
 * (transitively, through globals): relay_lower_module runs on a view of the module that
 * holds only those functions, so unrelated functions are never lowered. */
KILN_API kiln_status kiln_relay_module_lower(kiln_relay_module *w, kiln_tir_module **out) {
  CHECK_MOD(w);
  if (!out) return MISUSE(w, "kiln_relay_module_lower: NULL out");
  *out = NULL;
  ir_clear_error(w->ctx);
  kiln_context *ctx = w->ctx;
  relay_func *main_fn = relay_module_get(w->m, "main");
  if (!main_fn)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNDEFINED,
                   "kiln_relay_module_lower: the module has no function 'main'");
  relay_func **funcs = NULL;
  const char **names = NULL;
  int n = 0, cap = 0;
  kiln_status st = add_reachable(ctx, main_fn, "main", &funcs, &names, &n, &cap);
  for (int k = 0; k < n && !st; k++) {
    relay_expr **order = NULL;
    int norder = 0;
    st = relay_post_order(ctx, funcs[k]->body, true, &order, &norder);
    for (int j = 0; j < norder && !st; j++) {
      if (order[j]->kind != RELAY_GLOBAL) continue;
      const char *gname = ((relay_global *)order[j])->name;
      relay_func *callee = relay_module_get(w->m, gname);
      if (callee) st = add_reachable(ctx, callee, gname, &funcs, &names, &n, &cap);
    }
    ir_free(ctx, order, sizeof(relay_expr *) * (size_t)norder);
  }
  kiln_tir_module *res = NULL;
  if (!st) {
    relay_module view = *w->m;
    view.nfuncs = n;
    view.funcs = funcs;
    view.names = names;
    st = relay_lower_module(&view, &res);
  }
  ir_free(ctx, funcs, sizeof *funcs * (size_t)cap);
  ir_free(ctx, names, sizeof *names * (size_t)cap);
  if (st) return st;
  if (res->nfuncs == 0) {
    kiln_tir_module_free(res);
    return MISUSE(w, "kiln_relay_module_lower: @main calls no primitive function (run the "
                     "FuseOps pass first)");
  }
  *out = res;
  return KILN_OK;
}

/* ---- The op registry ----------------------------------------------------------------- */

KILN_API int kiln_relay_op_count(void) { return relay_op_count(); }

KILN_API const char *kiln_relay_op_name(int i) {
  const relay_op *op = i >= 0 && i < relay_op_count() ? relay_op_at(i) : NULL;
  return op ? op->name : NULL;
}

KILN_API const char *kiln_relay_op_doc(int i) {
  const relay_op *op = i >= 0 && i < relay_op_count() ? relay_op_at(i) : NULL;
  return op ? (op->doc ? op->doc : "") : NULL;
}

/* api.c: the public kiln_tir_module_* entry points. Each checks its handles, calls the
 * internal layer and leaves any error on the context and as the thread's last error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arith.h"
#include "runtime/rt_internal.h"
#include "text.h"
#include "verify.h"

#define CHECK_CTX(ctx) \
  if (!(ctx)) return rt_errorf(KILN_ERR_MISUSE, "%s: NULL context", __func__)
#define CHECK_MOD(m) \
  if (!(m) || !(m)->ctx) return rt_errorf(KILN_ERR_MISUSE, "%s: NULL module", __func__)

KILN_API kiln_status kiln_tir_module_parse(kiln_context *ctx, const char *text, size_t len,
                                           const char *name, kiln_tir_module **out) {
  CHECK_CTX(ctx);
  if (!out || (!text && len))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_tir_module_parse: NULL argument");
  *out = NULL;
  ir_clear_error(ctx);
  return ir_parse_module(ctx, text ? text : "", len, name ? name : "<input>", out);
}

/* Reads a whole file into context memory (NUL-terminated). */
static kiln_status read_file(kiln_context *ctx, const char *path, char **data, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "cannot open '%s'", path);
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  char buf[65536];
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

KILN_API kiln_status kiln_tir_module_parse_file(kiln_context *ctx, const char *path,
                                                kiln_tir_module **out) {
  CHECK_CTX(ctx);
  if (!path || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_tir_module_parse_file: NULL argument");
  *out = NULL;
  ir_clear_error(ctx);
  char *text;
  size_t len;
  kiln_status st = read_file(ctx, path, &text, &len);
  if (st) return st;
  st = ir_parse_module(ctx, text, len, path, out);
  ir_free(ctx, text, len + 1);
  return st;
}

KILN_API void kiln_tir_module_free(kiln_tir_module *mod) {
  if (!mod || !mod->ctx) return;
  ir_arena_free(mod->arena);
  ir_free(mod->ctx, mod, sizeof *mod);
}

KILN_API kiln_status kiln_tir_module_print(kiln_tir_module *mod, char **out) {
  CHECK_MOD(mod);
  if (!out) return ir_fail(mod->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_tir_module_print: NULL out");
  *out = NULL;
  ir_strbuf sb;
  ir_sb_init(&sb, mod->ctx);
  kiln_status st = ir_print_module(mod, &sb);
  if (st) {
    ir_sb_free(&sb);
    return st;
  }
  *out = ir_sb_take(&sb, NULL);
  return *out ? KILN_OK : KILN_ERR_NOMEM;
}

KILN_API kiln_status kiln_tir_module_equal(kiln_tir_module *a, kiln_tir_module *b, int *out) {
  CHECK_MOD(a);
  CHECK_MOD(b);
  if (!out) return ir_fail(a->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_tir_module_equal: NULL out");
  *out = 0;
  if (a->nfuncs != b->nfuncs) return KILN_OK;
  for (int i = 0; i < a->nfuncs; i++) {
    ir_clear_error(a->ctx);
    bool eq = ir_structural_equal(a->ctx, &a->funcs[i]->h, &b->funcs[i]->h);
    if (a->ctx->code == KILN_ERR_NOMEM) return KILN_ERR_NOMEM;
    if (!eq) return KILN_OK;
  }
  *out = 1;
  return KILN_OK;
}

KILN_API kiln_status kiln_tir_module_hash(kiln_tir_module *mod, uint64_t *out) {
  CHECK_MOD(mod);
  if (!out) return ir_fail(mod->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_tir_module_hash: NULL out");
  uint64_t h = ir_hash_mix(0, (uint64_t)mod->nfuncs);
  for (int i = 0; i < mod->nfuncs; i++) {
    uint64_t fh;
    kiln_status st = ir_structural_hash(mod->ctx, &mod->funcs[i]->h, &fh);
    if (st) return ir_fail(mod->ctx, IR_NO_SPAN, st, "out of memory hashing a module");
    h = ir_hash_mix(h, fh);
  }
  *out = h;
  return KILN_OK;
}

KILN_API kiln_status kiln_tir_module_verify(kiln_tir_module *mod) {
  CHECK_MOD(mod);
  ir_clear_error(mod->ctx);
  return ir_verify_module(mod);
}

KILN_API kiln_status kiln_tir_module_simplify(kiln_tir_module *mod, kiln_tir_module **out) {
  CHECK_MOD(mod);
  if (!out) return ir_fail(mod->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_tir_module_simplify: NULL out");
  *out = NULL;
  ir_clear_error(mod->ctx);
  kiln_tir_module *res = ir_module_new(mod->ctx);
  if (!res) return KILN_ERR_NOMEM;
  /* The simplifier writes rewritten nodes into a scratch arena and shares unchanged subtrees
   * with mod; the result gets a deep copy so that it owns all of its nodes (either module can
   * be freed first). */
  ir_arena *scratch = ir_arena_new(mod->ctx);
  kiln_status st = scratch ? KILN_OK : KILN_ERR_NOMEM;
  for (int i = 0; !st && i < mod->nfuncs; i++) {
    ir_func *f = ir_simplify_func(scratch, mod->funcs[i]);
    ir_func *copy = f ? (ir_func *)ir_deep_copy(res->arena, &f->h) : NULL;
    st = copy ? ir_module_add(res, copy) : (mod->ctx->code ? mod->ctx->code : KILN_ERR_INTERNAL);
  }
  ir_arena_free(scratch);
  if (st) {
    kiln_tir_module_free(res);
    return st;
  }
  *out = res;
  return KILN_OK;
}

KILN_API int kiln_tir_module_num_funcs(kiln_tir_module *mod) { return mod ? mod->nfuncs : 0; }

KILN_API const char *kiln_tir_module_func_name(kiln_tir_module *mod, int i) {
  if (!mod || i < 0 || i >= mod->nfuncs) return NULL;
  return mod->funcs[i]->name;
}

KILN_API kiln_status kiln_tir_module_interpret(kiln_tir_module *mod, const char *func,
                                               int nargs, void **args) {
  CHECK_MOD(mod);
  ir_clear_error(mod->ctx);
  if (!func) return ir_fail(mod->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_tir_module_interpret: NULL function name");
  ir_func *f = ir_module_find(mod, func);
  if (!f) return ir_fail(mod->ctx, IR_NO_SPAN, KILN_ERR_UNDEFINED, "no function '%s' in the module", func);
  if (nargs != f->nparams)
    return ir_fail(mod->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "function '%s' takes %d arguments, not %d",
                   func, (int)f->nparams, nargs);
  for (int i = 0; i < nargs; i++)
    if (!args || !args[i])
      return ir_fail(mod->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "argument %d of '%s' is NULL", i, func);
  return ir_interpret(mod->ctx, f, nargs, args);
}

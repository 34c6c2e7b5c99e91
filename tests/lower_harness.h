/* lower_harness.h: differential checks of Relay -> TIR lowering for the Check suites. A case
 * names a function of a Relay module (text); the harness lowers it with relay_lower_func,
 * verifies the PrimFunc, runs it on seeded random inputs in the TIR interpreter and compares
 * every output with the Relay reference interpreter (relay_interp_run). The same comparison
 * is repeated after each later step of the flow (the TIR lowering pipeline, ir_lower_func),
 * all in lh_run_variants, so a new step (a schedule) is one more entry there.
 *
 * Header-only (static functions); include it after test_util.h. Tolerances: floats compare
 * with |tir - ref| <= atol + rtol * |ref| (NaN matches NaN, infinities must match exactly);
 * ints and bools compare exactly. */
#ifndef KILN_TESTS_LOWER_HARNESS_H
#define KILN_TESTS_LOWER_HARNESS_H

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/arith.h"
#include "ir/text.h"
#include "ir/transform.h"
#include "ir/verify.h"
#include "relay/interp.h"
#include "relay/lower.h"
#include "relay/text.h"
#include "schedule/schedule.h"
#include "target/codegen.h"
#include "target/target.h"
#include "test_util.h"

enum { LH_MAX_DIMS = 8, LH_MAX_ARGS = 16 };

/* Fills input `param` (already allocated, shape and dtype set) with test data; rng is the
 * case's generator (use lh_rand_u64 / lh_rand_uniform on it). For index inputs and other
 * data a uniform range does not fit. */
typedef void (*lh_fill_fn)(int param, relay_tensor *t, uint64_t *rng, void *ud);

/* An extra step of the flow (e.g. a schedule): maps the lowered PrimFunc to another one in
 * arena, or returns NULL with the error on ctx. */
typedef ir_func *(*lh_step_fn)(kiln_context *ctx, ir_arena *arena, ir_func *f, void *ud);

typedef struct lh_case {
  const char *relay_text; /* a Relay module */
  const char *func;       /* the function to lower and run (NULL: "main") */
  double rtol, atol;      /* float tolerances (ints and bools: exact) */
  double lo, hi;          /* input range; lo == hi: floats in [-2, 2], ints in [-5, 5] */
  uint64_t seed;          /* 0 is a fine seed too */
  bool nonzero;           /* no zero inputs (divisors) */
  /* symbolic dimensions: their values for this run (by name) */
  int ndims;
  const char *dim_names[LH_MAX_DIMS];
  int64_t dim_values[LH_MAX_DIMS];
  lh_fill_fn fill;        /* optional: overrides the random data of some inputs */
  void *fill_ud;
  lh_step_fn extra;       /* optional: one more variant, this step then ir_lower_func */
  void *extra_ud;
} lh_case;

/* ---- Random data ------------------------------------------------------------------------- */

/* splitmix64: deterministic for a seed, the same on every machine. */
static inline uint64_t lh_rand_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static inline double lh_rand_uniform(uint64_t *s, double lo, double hi) {
  return lo + (hi - lo) * ((double)(lh_rand_u64(s) >> 11) / 9007199254740992.0);
}

/* Uniform integer in [lo, hi]. */
static inline int64_t lh_rand_int(uint64_t *s, int64_t lo, int64_t hi) {
  return lo + (int64_t)(lh_rand_u64(s) % (uint64_t)(hi - lo + 1));
}

/* Default data: floats uniform in the case's range; ints uniform over the integers of the
 * range (unsigned: its non-negative part); bools 0/1. */
static inline void lh_fill_default(const lh_case *c, relay_tensor *t, uint64_t *rng) {
  double lo = c->lo, hi = c->hi;
  bool given = lo < hi;
  int64_t n = relay_tensor_numel(t);
  for (int64_t i = 0; i < n; i++) {
    double v;
    if (ir_dt_is_bool(t->dtype)) {
      v = (double)(lh_rand_u64(rng) & 1);
      if (c->nonzero) v = 1;
    } else if (ir_dt_is_float(t->dtype)) {
      do v = lh_rand_uniform(rng, given ? lo : -2, given ? hi : 2);
      while (c->nonzero && fabs(v) < 1e-3);
    } else {
      int64_t ilo = given ? (int64_t)ceil(lo) : -5, ihi = given ? (int64_t)floor(hi) : 5;
      if (t->dtype.code == KILN_TYPE_UINT && ilo < 0) ilo = 0;
      if (ihi < ilo) ihi = ilo;
      do v = (double)lh_rand_int(rng, ilo, ihi);
      while (c->nonzero && v == 0 && !(ilo == 0 && ihi == 0));
    }
    relay_tensor_set(t, i, v);
  }
}

/* ---- Shapes ------------------------------------------------------------------------------- */

/* The value of dimension expression e with the case's symbolic dimensions substituted (by
 * name); the test fails when it is not a constant then. */
static inline int64_t lh_eval_dim(kiln_context *ctx, const lh_case *c, ir_expr *e) {
  ir_int_imm *k = ir_as_int(e);
  if (k) return k->value;
  ir_arena *a = ir_arena_new(ctx);
  ck_assert_ptr_nonnull(a);
  /* Collect the variables of e, then bind each by name. */
  ir_var *vars[LH_MAX_DIMS];
  ir_expr *vals[LH_MAX_DIMS];
  int nv = 0;
  ir_node *stack[256];
  int sp = 0;
  stack[sp++] = e;
  while (sp > 0) {
    ir_node *n = stack[--sp];
    ir_var *v = ir_as_var(n);
    if (v) {
      bool seen = false;
      for (int i = 0; i < nv; i++) seen = seen || vars[i] == v;
      if (seen) continue;
      int j = 0;
      while (j < c->ndims && strcmp(c->dim_names[j], v->name) != 0) j++;
      ck_assert_msg(j < c->ndims, "lower harness: no value given for symbolic dim '%s'", v->name);
      ck_assert_int_lt(nv, LH_MAX_DIMS);
      vars[nv] = v;
      vals[nv++] = ir_int(a, KILN_INT64, c->dim_values[j]);
      continue;
    }
    ir_binary *b = ir_as_binary(n);
    if (b) {
      ck_assert_int_lt(sp + 2, 256);
      stack[sp++] = b->a;
      stack[sp++] = b->b;
    }
  }
  ir_expr *sub = ir_substitute(a, e, nv, vars, vals);
  ir_analyzer *an = sub ? ir_analyzer_new(a) : NULL;
  ir_expr *s = an ? ir_simplify_expr(an, sub) : NULL;
  ir_int_imm *r = ir_as_int(s);
  ck_assert_msg(r != NULL, "lower harness: a dimension does not evaluate to a constant");
  int64_t v = r->value;
  ir_analyzer_free(an);
  ir_arena_free(a);
  return v;
}

/* Allocates (malloc) a tensor of tensor type ty under the case's dims. */
static inline void lh_alloc_tensor(kiln_context *ctx, const lh_case *c, const relay_type *ty,
                            relay_tensor *t) {
  const relay_tensor_type *tt = relay_as_tensor_type(ty);
  ck_assert_msg(tt != NULL, "lower harness: a parameter is not a tensor");
  memset(t, 0, sizeof *t);
  t->dtype = tt->h.dtype;
  t->ndim = tt->ndim;
  for (int d = 0; d < tt->ndim; d++) t->shape[d] = lh_eval_dim(ctx, c, tt->shape[d]);
  t->nbytes = (size_t)relay_tensor_numel(t) * kiln_dtype_bytes(t->dtype);
  t->data = calloc(1, t->nbytes ? t->nbytes : 1);
  ck_assert_ptr_nonnull(t->data);
}

/* ---- Comparing ------------------------------------------------------------------------------ */

/* The flat reference outputs of value v (a tensor or a tuple of tensors) into outs. */
static inline int lh_flatten_value(relay_value *v, const relay_tensor **outs, int cap) {
  if (v->kind == RELAY_VALUE_TENSOR) {
    ck_assert_int_ge(cap, 1);
    outs[0] = &v->tensor;
    return 1;
  }
  ck_assert_int_eq(v->kind, RELAY_VALUE_TUPLE);
  int n = 0;
  for (int i = 0; i < v->nfields; i++) n += lh_flatten_value(v->fields[i], outs + n, cap - n);
  return n;
}

/* Whether tir matches ref elementwise; on the first mismatch the test fails with the output,
 * the flat index and both values (and the PrimFunc's text on stderr). */
static inline void lh_compare(kiln_context *ctx, const lh_case *c, const char *variant,
                              const ir_func *f, int out_i, const relay_tensor *ref,
                              const relay_tensor *tir) {
  int64_t n = relay_tensor_numel(ref);
  bool exact = !ir_dt_is_float(ref->dtype);
  for (int64_t i = 0; i < n; i++) {
    double r = relay_tensor_get(ref, i), t = relay_tensor_get(tir, i);
    bool ok;
    if (exact) ok = r == t;
    else if (r != r) ok = t != t;
    else if (isinf(r)) ok = r == t;
    else ok = fabs(t - r) <= c->atol + c->rtol * fabs(r);
    if (!ok) {
      char *text = ir_node_to_string(ctx, &f->h);
      fprintf(stderr, "lower harness: mismatch in %s (%s); the PrimFunc:\n%s\n",
              c->func ? c->func : "main", variant, text ? text : "(no text)");
      kiln_string_free(ctx, text);
      char coords[160] = "";
      int64_t rest = i;
      for (int d = ref->ndim - 1; d >= 0; d--) { /* the element's coordinates, last first */
        char one[40];
        snprintf(one, sizeof one, "%lld%s%s", (long long)(rest % ref->shape[d]),
                 d == ref->ndim - 1 ? "" : ", ", coords);
        snprintf(coords, sizeof coords, "%s", one);
        rest /= ref->shape[d];
      }
      ck_abort_msg("lower harness: %s, variant %s: output %d element %lld [%s]: tir %.9g vs "
                   "ref %.9g",
                   f->name, variant, out_i, (long long)i, coords, t, r);
    }
  }
}

/* Output tensors shaped like the references, filled with a 0xA7 pattern so that an element
 * the function never writes shows up in the comparison; the caller frees each data. */
static inline void lh_alloc_outputs(int nout, const relay_tensor *const *refs,
                                    relay_tensor *outs) {
  for (int o = 0; o < nout; o++) {
    outs[o] = *refs[o];
    outs[o].owned = false;
    outs[o].data = malloc(refs[o]->nbytes ? refs[o]->nbytes : 1);
    ck_assert_ptr_nonnull(outs[o].data);
    memset(outs[o].data, 0xA7, refs[o]->nbytes);
  }
}

/* Interprets f on the inputs (then the outputs, then one int64 scalar per symbolic dim,
 * matched by name) and compares every output with the reference. The outputs are filled
 * with a byte pattern first, so an element nobody writes is caught. */
static inline void lh_interpret_and_compare(kiln_context *ctx, const lh_case *c,
                                            const char *variant, const ir_func *f, int nin,
                                            const relay_tensor *ins, int nout,
                                            const relay_tensor *const *refs) {
  ck_assert_msg(f->nparams <= 2 * LH_MAX_ARGS, "lower harness: too many parameters");
  void *args[2 * LH_MAX_ARGS];
  relay_tensor outs[LH_MAX_ARGS];
  int64_t scalars[2 * LH_MAX_ARGS];
  int nbuf = 0;
  for (int i = 0; i < f->nparams; i++)
    if (ir_as_buffer(f->params[i])) nbuf++;
  ck_assert_msg(nbuf == nin + nout, "lower harness: %s (%s) has %d buffer params, expected %d "
                "inputs + %d outputs", f->name, variant, nbuf, nin, nout);
  lh_alloc_outputs(nout, refs, outs);
  for (int i = 0, nb = 0; i < f->nparams; i++) {
    ir_buffer *b = ir_as_buffer(f->params[i]);
    if (b && nb < nin) {
      args[i] = ins[nb++].data;
    } else if (b) {
      args[i] = outs[nb++ - nin].data;
    } else {
      ir_var *v = ir_as_var(f->params[i]);
      ck_assert_ptr_nonnull(v);
      int j = 0;
      while (j < c->ndims && strcmp(c->dim_names[j], v->name) != 0) j++;
      ck_assert_msg(j < c->ndims, "lower harness: no value for scalar param '%s'", v->name);
      scalars[i] = c->dim_values[j];
      args[i] = &scalars[i];
    }
  }
  kiln_status st = ir_interpret(ctx, f, f->nparams, args);
  if (st != KILN_OK) {
    char *text = ir_node_to_string(ctx, &f->h);
    fprintf(stderr, "lower harness: the PrimFunc (%s):\n%s\n", variant, text ? text : "");
    kiln_string_free(ctx, text);
  }
  ck_assert_msg(st == KILN_OK, "lower harness: interpreting %s (%s) failed: %s", f->name, variant,
                kiln_context_errmsg(ctx));
  for (int o = 0; o < nout; o++) {
    lh_compare(ctx, c, variant, f, o, refs[o], &outs[o]);
    free(outs[o].data);
  }
}

/* Compiles f with the JIT for the host and runs it on the same inputs, comparing like
 * lh_interpret_and_compare: the differential test of codegen against the references. Scalar
 * parameters (symbolic dims) are passed as 0-d int64 tensors, as the kernel ABI takes them. */
static inline void lh_compile_and_compare(kiln_context *ctx, const lh_case *c,
                                          const char *variant, const ir_func *f, int nin,
                                          const relay_tensor *ins, int nout,
                                          const relay_tensor *const *refs) {
  ck_assert_msg(f->nparams <= 2 * LH_MAX_ARGS, "lower harness: too many parameters");
  kiln_tensor args[2 * LH_MAX_ARGS];
  relay_tensor outs[LH_MAX_ARGS];
  int64_t scalars[2 * LH_MAX_ARGS];
  lh_alloc_outputs(nout, refs, outs);
  for (int i = 0, nb = 0; i < f->nparams; i++) {
    ir_buffer *b = ir_as_buffer(f->params[i]);
    memset(&args[i], 0, sizeof args[i]);
    args[i].device_type = 1;
    if (b) {
      const relay_tensor *t = nb < nin ? &ins[nb] : &outs[nb - nin];
      nb++;
      args[i].data = t->data;
      args[i].ndim = t->ndim;
      args[i].dtype = t->dtype;
      args[i].shape = (int64_t *)t->shape;
    } else {
      ir_var *v = ir_as_var(f->params[i]);
      ck_assert_ptr_nonnull(v);
      int j = 0;
      while (j < c->ndims && strcmp(c->dim_names[j], v->name) != 0) j++;
      ck_assert_msg(j < c->ndims, "lower harness: no value for scalar param '%s'", v->name);
      scalars[i] = c->dim_values[j];
      args[i].data = &scalars[i];
      args[i].dtype = v->h.dtype;
    }
  }
  kiln_tir_module *mod = ir_module_new(ctx);
  ck_assert_ptr_nonnull(mod);
  ir_func *copy = (ir_func *)ir_deep_copy(mod->arena, &f->h);
  ck_assert_ptr_nonnull(copy);
  ck_ok(ctx, ir_module_add(mod, copy));
  tgt_target host;
  ck_ok(ctx, tgt_target_host(ctx, &host));
  tgt_jit *jit = NULL;
  ck_ok(ctx, tgt_jit_new(ctx, &host, &jit));
  kiln_status st = tgt_jit_add_tir(jit, mod);
  if (st != KILN_OK) {
    char *text = ir_node_to_string(ctx, &f->h);
    fprintf(stderr, "lower harness: the PrimFunc (%s):\n%s\n", variant, text ? text : "");
    kiln_string_free(ctx, text);
  }
  ck_assert_msg(st == KILN_OK, "lower harness: compiling %s (%s) failed: %s", f->name, variant,
                kiln_context_errmsg(ctx));
  kiln_kernel_fn fn = NULL;
  ck_ok(ctx, tgt_jit_lookup(jit, f->name, &fn));
  int32_t rc = fn(args, f->nparams);
  ck_assert_msg(rc == KILN_OK, "lower harness: the compiled %s (%s) returned %d: %s", f->name,
                variant, rc, kiln_last_error());
  for (int o = 0; o < nout; o++) {
    lh_compare(ctx, c, variant, f, o, refs[o], &outs[o]);
    free(outs[o].data);
  }
  tgt_jit_free(jit);
  kiln_tir_module_free(mod);
}

/* The default schedule for the host (schedule/rules.c) of a lowered PrimFunc, copied into
 * arena; the test fails when the rules fail. */
static inline ir_func *lh_default_schedule(kiln_context *ctx, ir_arena *arena, ir_func *pf) {
  tgt_target host;
  ck_ok(ctx, tgt_target_host(ctx, &host));
  sch_target_info ti;
  sch_target_info_from(&host, &ti);
  sch_schedule *s = sch_new(ctx, pf, 1);
  ck_assert_ptr_nonnull(s);
  kiln_status st = sch_apply_default_rules(s, &ti);
  ck_assert_msg(st == KILN_OK, "lower harness: the default rules failed on %s: %s", pf->name,
                kiln_context_errmsg(ctx));
  ir_func *out = (ir_func *)ir_deep_copy(arena, &s->func->h);
  ck_assert_ptr_nonnull(out);
  sch_free(s);
  return out;
}

/* ---- The flow ------------------------------------------------------------------------------- */

/* Verifies f, failing the test with the message and the function's text. */
static inline void lh_verify(kiln_context *ctx, const ir_func *f, const char *variant) {
  kiln_status st = ir_verify_func(ctx, f);
  if (st != KILN_OK) {
    char *text = ir_node_to_string(ctx, &f->h);
    fprintf(stderr, "lower harness: the PrimFunc (%s):\n%s\n", variant, text ? text : "");
    kiln_string_free(ctx, text);
  }
  ck_assert_msg(st == KILN_OK, "lower harness: %s (%s) does not verify: %s", f->name, variant,
                kiln_context_errmsg(ctx));
}

/* Runs the lowered PrimFunc pf through every variant of the flow, checking each against the
 * reference outputs:
 *   "lowered"   pf as relay_lower_func made it
 *   "pipeline"  ir_lower_func(pf)
 *   "scheduled" the default schedule rules for the host, then ir_lower_func, then the same
 *               function compiled by the JIT ("compiled")
 *   "extra"     c->extra(pf), then ir_lower_func (when the case gives a step)
 * Each variant's function is verified, interpreted (or run compiled) and compared. */
static inline void lh_run_variants(kiln_context *ctx, const lh_case *c, ir_func *pf, int nin,
                            const relay_tensor *ins, int nout, const relay_tensor *const *refs) {
  ir_arena *a = ir_arena_new(ctx);
  ck_assert_ptr_nonnull(a);
  ir_lower_options o = {0, true};

  lh_verify(ctx, pf, "lowered");
  lh_interpret_and_compare(ctx, c, "lowered", pf, nin, ins, nout, refs);

  ir_func *lowered = NULL;
  ck_ok(ctx, ir_lower_func(ctx, a, pf, &o, &lowered));
  lh_verify(ctx, lowered, "pipeline");
  lh_interpret_and_compare(ctx, c, "pipeline", lowered, nin, ins, nout, refs);

  ir_func *sched = lh_default_schedule(ctx, a, pf);
  lh_verify(ctx, sched, "scheduled");
  lh_interpret_and_compare(ctx, c, "scheduled", sched, nin, ins, nout, refs);
  ck_ok(ctx, ir_lower_func(ctx, a, sched, &o, &lowered));
  lh_verify(ctx, lowered, "scheduled+pipeline");
  lh_interpret_and_compare(ctx, c, "scheduled+pipeline", lowered, nin, ins, nout, refs);
  lh_compile_and_compare(ctx, c, "compiled", lowered, nin, ins, nout, refs);

  if (c->extra) {
    ir_func *g = c->extra(ctx, a, pf, c->extra_ud);
    ck_assert_msg(g != NULL, "lower harness: the extra step failed on %s: %s", pf->name,
                  kiln_context_errmsg(ctx));
    lh_verify(ctx, g, "extra");
    lh_interpret_and_compare(ctx, c, "extra", g, nin, ins, nout, refs);
    ck_ok(ctx, ir_lower_func(ctx, a, g, &o, &lowered));
    lh_verify(ctx, lowered, "extra+pipeline");
    lh_interpret_and_compare(ctx, c, "extra+pipeline", lowered, nin, ins, nout, refs);
  }
  ir_arena_free(a);
}

/* Parses the case's module (failing the test on an error). Free with relay_module_free. */
static inline relay_module *lh_parse(kiln_context *ctx, const char *text) {
  relay_module *m = NULL;
  kiln_status st = relay_parse_module(ctx, text, strlen(text), &m);
  if (st != KILN_OK) fprintf(stderr, "lower harness: the module:\n%s\n", text);
  ck_assert_msg(st == KILN_OK, "lower harness: the module does not parse: %s",
                kiln_context_errmsg(ctx));
  return m;
}

/* Lowers function `func` of m into arena a (the test fails on an error). */
static inline ir_func *lh_lower(kiln_context *ctx, relay_module *m, const char *func, ir_arena *a) {
  relay_func *f = relay_module_get(m, func ? func : "main");
  ck_assert_msg(f != NULL, "lower harness: no function '%s'", func ? func : "main");
  ir_func *pf = NULL;
  kiln_status st = relay_lower_func(ctx, a, f, func ? func : "main", &pf);
  ck_assert_msg(st == KILN_OK, "lower harness: lowering '%s' failed: %s", func ? func : "main",
                kiln_context_errmsg(ctx));
  return pf;
}

/* The whole check: parse, make inputs, run the reference, lower, run every variant. */
static inline void lh_check(kiln_context *ctx, const lh_case *c) {
  relay_module *m = lh_parse(ctx, c->relay_text);
  const char *fname = c->func ? c->func : "main";
  relay_func *f = relay_module_get(m, fname);
  ck_assert_msg(f != NULL, "lower harness: no function '%s'", fname);
  ck_assert_int_le(f->nparams, LH_MAX_ARGS);

  uint64_t rng = c->seed ^ 0x6b696c6eull;
  relay_tensor ins[LH_MAX_ARGS];
  for (int i = 0; i < f->nparams; i++) {
    lh_alloc_tensor(ctx, c, f->params[i]->type, &ins[i]);
    lh_fill_default(c, &ins[i], &rng);
    if (c->fill) c->fill(i, &ins[i], &rng, c->fill_ud);
  }

  relay_value *ref = NULL;
  kiln_status st = relay_interp_run(m, fname, f->nparams, ins, &ref);
  ck_assert_msg(st == KILN_OK, "lower harness: the reference failed on '%s': %s", fname,
                kiln_context_errmsg(ctx));
  const relay_tensor *refs[LH_MAX_ARGS];
  int nout = lh_flatten_value(ref, refs, LH_MAX_ARGS);

  ir_arena *a = ir_arena_new(ctx);
  ck_assert_ptr_nonnull(a);
  ir_func *pf = lh_lower(ctx, m, fname, a);
  lh_run_variants(ctx, c, pf, f->nparams, ins, nout, refs);

  ir_arena_free(a);
  relay_value_release(ctx, ref);
  for (int i = 0; i < f->nparams; i++) free(ins[i].data);
  relay_module_free(m);
}

/* ---- One-op cases ------------------------------------------------------------------------ */

/* The text of a module whose main calls one op on its parameters:
 *   lh_op_text("add", "%x: Tensor[(3, 1, 5), float32], %y: Tensor[(4, 5), float32]", NULL)
 *   -> def @main(%x: ..., %y: ...) { add(%x, %y) }
 * attrs ("a_min=0.5, a_max=2.0") are appended after the arguments. malloc'd. */
static inline char *lh_op_text(const char *op, const char *params, const char *attrs) {
  size_t cap = 2 * strlen(params) + strlen(op) + (attrs ? strlen(attrs) : 0) + 64;
  char *s = malloc(cap);
  ck_assert_ptr_nonnull(s);
  int n = snprintf(s, cap, "def @main(%s) { %s(", params, op);
  /* Each top-level "%name" of params (a name right after '(' or a top-level ',') is an
   * argument. */
  int depth = 0;
  bool first = true, at_start = true;
  for (const char *p = params; *p; p++) {
    if (*p == '(' || *p == '[') depth++;
    else if (*p == ')' || *p == ']') depth--;
    else if (*p == ',' && depth == 0) at_start = true;
    else if (*p == '%' && depth == 0 && at_start) {
      size_t len = 1;
      while (p[len] == '_' || isalnum((unsigned char)p[len])) len++;
      n += snprintf(s + n, cap - (size_t)n, "%s%.*s", first ? "" : ", ", (int)len, p);
      first = false;
      at_start = false;
    }
  }
  if (attrs && *attrs) n += snprintf(s + n, cap - (size_t)n, "%s%s", first ? "" : ", ", attrs);
  snprintf(s + n, cap - (size_t)n, ") }\n");
  return s;
}

/* Checks one op with the options of tmpl (its relay_text and func are ignored). */
static inline void lh_check_op_case(kiln_context *ctx, const char *op, const char *params,
                             const char *attrs, const lh_case *tmpl) {
  char *text = lh_op_text(op, params, attrs);
  lh_case c = *tmpl;
  c.relay_text = text;
  c.func = "main";
  lh_check(ctx, &c);
  free(text);
}

/* Checks one op on inputs in the default ranges with the given tolerances. */
static inline void lh_check_op(kiln_context *ctx, const char *op, const char *params,
                               const char *attrs, double rtol, double atol) {
  lh_case c;
  memset(&c, 0, sizeof c);
  c.rtol = rtol;
  c.atol = atol;
  lh_check_op_case(ctx, op, params, attrs, &c);
}

#endif

/* loops.c: the loop primitives of a schedule: split, fuse and reorder rewrite the loop nest
 * of a stage (block bindings follow through substitution), parallel / vectorize / unroll set
 * a loop's kind, annotate attaches a key/value to a block or a loop. Each checks its
 * preconditions before touching anything, rebuilds the function through sch_replace, records
 * one instruction in the trace and has a replay entry (sch_apply_<name>) that decodes the
 * recorded inputs. Blocks never change here except for their bindings and predicates, so their
 * read/write regions (written over the block iterators) stay right. */
#include <stdio.h>
#include <string.h>

#include "kiln/kiln.h"
#include "schedule/schedule.h"

/* ---- Small helpers ------------------------------------------------------------------- */

/* The status after a constructor returned NULL: the constructor recorded why on ctx. */
static kiln_status build_failed(sch_schedule *s) {
  kiln_status c = kiln_context_errcode(s->ctx);
  return c ? c : KILN_ERR_NOMEM;
}

typedef struct var_probe {
  const ir_var *var;
  bool found;
} var_probe;

static bool var_probe_fn(ir_node *n, void *ud) {
  var_probe *p = ud;
  if (p->found) return false;
  if (n == &p->var->h) p->found = true;
  return !p->found;
}

/* Whether expression or statement n mentions variable v. */
static bool uses_var(ir_node *n, const ir_var *v) {
  if (!n) return false;
  var_probe p = {v, false};
  ir_visit(n, false, var_probe_fn, &p);
  return p.found;
}

/* The first loop strictly inside n (blocks included), or NULL. */
static bool find_for_fn(ir_node *n, void *ud) {
  ir_for **out = ud;
  if (*out) return false;
  if (n->kind == IR_FOR) {
    *out = (ir_for *)n;
    return false;
  }
  return ir_is_stmt(n);
}

/* A statement that a block predicate cannot guard: a store or evaluate outside any block
 * under a loop (blocks are where predicates live). */
static bool find_unguarded_fn(ir_node *n, void *ud) {
  const ir_node **out = ud;
  if (*out || !ir_is_stmt(n) || n->kind == IR_BLOCK_REALIZE) return false;
  if (n->kind == IR_STORE || n->kind == IR_EVALUATE) {
    *out = n;
    return false;
  }
  return true;
}

/* Declares the range of f's variable to the analyzer from the bounds of its start and
 * extent (which may be symbolic). Loops that may not run at all declare nothing. */
static kiln_status bind_loop(ir_analyzer *an, const ir_for *f) {
  ir_interval m = ir_bound_of(an, f->min), e = ir_bound_of(an, f->extent);
  if (e.max < 1) return KILN_OK;
  ir_interval r = {m.min, INT64_MAX};
  int64_t hi;
  if (m.max != INT64_MAX && e.max != INT64_MAX && !__builtin_add_overflow(m.max, e.max - 1, &hi))
    r.max = hi;
  return ir_analyzer_bind(an, f->var, r);
}

/* A new analyzer that knows the ranges of the loops enclosing `target` (up to its block). */
static kiln_status analyzer_around(sch_schedule *s, const ir_stmt *target, ir_analyzer **out) {
  int n;
  ir_for **loops;
  kiln_status st = sch_loops_around(s, target, &n, &loops);
  if (st) return st;
  ir_analyzer *an = ir_analyzer_new(s->arena);
  if (!an) return KILN_ERR_NOMEM;
  for (int i = 0; i < n && !st; i++) st = bind_loop(an, loops[i]);
  if (st) {
    ir_analyzer_free(an);
    return st;
  }
  *out = an;
  return KILN_OK;
}

/* An integer constant of index type t. */
static ir_expr *iconst(sch_schedule *s, kiln_dtype t, int64_t v) {
  return ir_int(s->arena, t, v);
}

static bool is_const(const ir_expr *e, int64_t v) {
  const ir_int_imm *c = ir_as_int(e);
  return c && c->value == v;
}

/* ---- Rebinding the blocks under a rewritten loop ------------------------------------- */

/* Walks the statements under a loop that split or fuse replaced: substitutes the old loop
 * variables everywhere (bindings, predicates, extents of inner loops), ands `pred` into the
 * predicate of every block realize (not those nested inside blocks: they are guarded by
 * their parent) and simplifies the bindings that changed, knowing the ranges of the loops
 * around them. Blocks themselves are left alone: only their realizes change. */
typedef struct rebind {
  int nvars;
  ir_var **vars;
  ir_expr **values;
  ir_expr *pred; /* NULL: no extra predicate */
  ir_analyzer *an;
  kiln_status st; /* a failure that is not a constructor's (analyzer memory) */
} rebind;

static ir_expr *subst_expr(ir_mutator *m, ir_expr *e) {
  rebind *rb = m->ud;
  return ir_substitute(m->arena, e, rb->nvars, rb->vars, rb->values);
}

static ir_node *rebind_realize(ir_mutator *m, ir_block_realize *r) {
  rebind *rb = m->ud;
  ir_expr **values = NULL;
  bool changed = false;
  if (r->nvalues) {
    values = ir_arena_alloc(m->arena, sizeof *values * (size_t)r->nvalues);
    if (!values) return NULL;
  }
  for (int i = 0; i < r->nvalues; i++) {
    ir_expr *v = subst_expr(m, r->values[i]);
    if (!v) return NULL;
    if (v != r->values[i]) {
      if (!(v = ir_simplify_expr(rb->an, v))) return NULL;
      changed = true;
    }
    values[i] = v;
  }
  ir_expr *pred = r->predicate ? subst_expr(m, r->predicate) : NULL;
  if (r->predicate && !pred) return NULL;
  if (pred != r->predicate || rb->pred) {
    if (rb->pred) pred = pred && !is_const(pred, 1) ? ir_binop(m->arena, IR_AND, pred, rb->pred)
                                                    : rb->pred;
    if (!pred || !(pred = ir_simplify_expr(rb->an, pred))) return NULL;
    if (is_const(pred, 1)) pred = NULL; /* proven: no predicate */
    changed = true;
  }
  if (!changed) return &r->h;
  return ir_block_realize_new(m->arena, r->nvalues, values, pred, r->block);
}

static ir_node *rebind_visit(ir_mutator *m, ir_node *n) {
  rebind *rb = m->ud;
  if (ir_is_expr(n)) return subst_expr(m, n);
  if (n->kind == IR_BLOCK_REALIZE) return rebind_realize(m, (ir_block_realize *)n);
  if (n->kind == IR_FOR) {
    /* Learn the loop's range (with the new variables in its bounds) before its body. */
    ir_for *f = (ir_for *)n;
    ir_expr *min = subst_expr(m, f->min), *ext = min ? subst_expr(m, f->extent) : NULL;
    if (!ext) return NULL;
    ir_for probe = *f;
    probe.min = min;
    probe.extent = ext;
    if ((rb->st = bind_loop(rb->an, &probe))) return NULL;
  }
  return ir_mutate_children(m, n);
}

/* body with the substitution and predicate applied (see rebind above). */
static kiln_status rebind_body(sch_schedule *s, ir_analyzer *an, ir_stmt *body, int nvars,
                               ir_var **vars, ir_expr **values, ir_expr *pred, ir_stmt **out) {
  rebind rb = {nvars, vars, values, pred, an, KILN_OK};
  ir_mutator m = {.arena = s->arena, .visit = rebind_visit, .ud = &rb};
  ir_stmt *r = ir_mutate(&m, body);
  if (!r) return rb.st ? rb.st : build_failed(s);
  *out = r;
  return KILN_OK;
}

/* Replaces `old` by repl, makes an RV per new loop variable and records the instruction;
 * on any failure the function goes back to what it was (RVs made on the way stay in the
 * table, unreferenced). */
static kiln_status commit(sch_schedule *s, const ir_stmt *old, ir_stmt *repl, int kind,
                          int ninputs, const sch_arg *inputs, int nloops, ir_var **loops,
                          sch_rv *out) {
  ir_func *saved = s->func;
  kiln_status st = sch_replace(s, old, repl);
  if (st) return st;
  for (int i = 0; i < nloops; i++)
    if ((out[i] = sch_new_loop_rv(s, loops[i])) == SCH_RV_NONE) {
      s->func = saved;
      return KILN_ERR_NOMEM;
    }
  if ((st = sch_record(s, kind, ninputs, inputs, nloops, out, -1, NULL))) s->func = saved;
  return st;
}

/* The name of a new loop variable: base + suffix, cut to a sane length. */
static ir_var *new_loop_var(sch_schedule *s, kiln_dtype t, const char *base, const char *suffix) {
  char name[160];
  snprintf(name, sizeof name, "%.100s%.50s", base, suffix);
  return ir_var_new(s->arena, name, t);
}

/* ---- split --------------------------------------------------------------------------- */

/* split(loop, factors[n]): replaces `loop` (var i, start m, extent E) by n nested loops
 * i_0 .. i_{n-1} (outermost first) of extents f_0 .. f_{n-1}, with
 *   i = m + i_0 * (f_1 * ... * f_{n-1}) + ... + i_{n-2} * f_{n-1} + i_{n-1}
 * substituted in every binding, predicate and inner loop bound below. Preconditions: n >= 2
 * INT RVs; each factor >= 1 except at most one -1, which is inferred as ceildiv(E, product of
 * the others) (E may be symbolic: the extent is then an expression); a product smaller than E
 * is rejected, and with a symbolic E and all factors given the product must be provably at
 * least E (otherwise iterations would be lost: give -1 for one factor instead). When the
 * product is not provably E, every block realize below gets `i - m < E` and-ed into its
 * predicate; then nothing under the loop may sit outside a block (a store there could not be
 * guarded). The new loops are serial without annotations. A nonzero start is folded into the
 * binding, so the new loops all start at 0.
 * Inputs: [loop, factor_0, ..., factor_{n-1}]; outputs: the n new loops. */
kiln_status sch_split(sch_schedule *s, sch_rv loop, int n, const sch_rv *factors, sch_rv *out) {
  if (!s) return KILN_ERR_MISUSE;
  if (!factors || !out)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "split: no factors or outputs given");
  ir_for *f;
  kiln_status st = sch_get_for(s, "split", loop, &f);
  if (st) return st;
  const char *name = f->var->name;
  if (n < 2) return sch_fail(s, "split", "loop '%s' needs at least 2 factors, got %d", name, n);
  if (n >= SCH_MAX_INST_ARGS)
    return sch_fail(s, "split", "loop '%s': %d factors (at most %d)", name, n,
                    SCH_MAX_INST_ARGS - 1);
  int64_t val[SCH_MAX_INST_ARGS];
  int inferred = -1;
  int64_t prod = 1; /* of the given factors */
  for (int i = 0; i < n; i++) {
    const sch_rv_info *r = sch_rv_get(s, factors[i]);
    if (!r || r->kind != SCH_RV_INT)
      return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                     "split: factor %d of loop '%s' is not an integer random variable", i, name);
    val[i] = r->value;
    if (val[i] == -1) {
      if (inferred >= 0)
        return sch_fail(s, "split", "loop '%s': factors %d and %d are both -1 (only one "
                        "factor can be inferred)", name, inferred, i);
      inferred = i;
      continue;
    }
    if (val[i] < 1)
      return sch_fail(s, "split", "loop '%s': factor %d is %lld (factors must be >= 1, or -1 "
                      "for the one inferred factor)", name, i, (long long)val[i]);
    if (__builtin_mul_overflow(prod, val[i], &prod) || prod > (INT64_C(1) << 62))
      return sch_fail(s, "split", "loop '%s': the product of the factors overflows", name);
  }

  kiln_dtype t = f->var->h.dtype;
  ir_analyzer *an;
  if ((st = analyzer_around(s, &f->h, &an))) return st;
  ir_expr *ext[SCH_MAX_INST_ARGS];
  bool need_pred;
  const ir_int_imm *ce = ir_as_int(f->extent);
  if (ce) {
    int64_t total = prod;
    if (inferred >= 0) {
      val[inferred] = ce->value <= 0 ? 0 : ce->value / prod + (ce->value % prod != 0);
      if (__builtin_mul_overflow(prod, val[inferred], &total)) {
        ir_analyzer_free(an);
        return sch_fail(s, "split", "loop '%s': the product of the factors overflows", name);
      }
    } else if (prod < ce->value) {
      ir_analyzer_free(an);
      return sch_fail(s, "split", "loop '%s' has extent %lld but its factors multiply to %lld "
                      "(fewer iterations; use -1 for one factor)", name, (long long)ce->value,
                      (long long)prod);
    }
    need_pred = total != ce->value;
    for (int i = 0; i < n; i++) ext[i] = iconst(s, t, val[i]);
  } else {
    ir_expr *p = iconst(s, t, prod);
    if (inferred >= 0) {
      /* ceildiv(E, prod) as an expression. */
      ir_expr *e = prod == 1 ? f->extent
                             : ir_binop(s->arena, IR_FLOORDIV,
                                        ir_add(s->arena, f->extent, iconst(s, t, prod - 1)), p);
      if (e && !(e = ir_simplify_expr(an, e))) {
        ir_analyzer_free(an);
        return build_failed(s);
      }
      need_pred = prod != 1;
      for (int i = 0; i < n; i++) ext[i] = i == inferred ? e : iconst(s, t, val[i]);
    } else {
      ir_expr *covers = ir_binop(s->arena, IR_GE, p, f->extent);
      ir_expr *equal = ir_binop(s->arena, IR_EQ, p, f->extent);
      if (!covers || !equal) {
        ir_analyzer_free(an);
        return build_failed(s);
      }
      if (!ir_prove(an, covers)) {
        ir_analyzer_free(an);
        return sch_fail(s, "split", "loop '%s' has a symbolic extent that its factors "
                        "(product %lld) may not cover; give -1 for one factor", name,
                        (long long)prod);
      }
      need_pred = !ir_prove(an, equal);
      for (int i = 0; i < n; i++) ext[i] = iconst(s, t, val[i]);
    }
  }
  for (int i = 0; i < n; i++)
    if (!ext[i]) {
      ir_analyzer_free(an);
      return build_failed(s);
    }
  if (need_pred) {
    const ir_node *bad = NULL;
    ir_visit(f->body, false, find_unguarded_fn, &bad);
    if (bad) {
      ir_analyzer_free(an);
      return sch_fail(s, "split", "loop '%s' does not divide evenly and holds a %s outside "
                      "any block, which a block predicate cannot guard", name,
                      ir_kind_name(bad->kind));
    }
  }

  /* The new variables, the mixed-radix sum and the predicate. */
  ir_var *vars[SCH_MAX_INST_ARGS];
  ir_expr *sum = NULL, *stride = NULL;
  bool ok = true;
  for (int i = n - 1; i >= 0 && ok; i--) {
    char suffix[16];
    snprintf(suffix, sizeof suffix, "_%d", i);
    vars[i] = new_loop_var(s, t, name, suffix);
    ir_expr *term = !vars[i] ? NULL : stride ? ir_mul(s->arena, &vars[i]->h, stride)
                                             : &vars[i]->h;
    sum = sum ? ir_add(s->arena, term, sum) : term;
    stride = stride ? ir_mul(s->arena, stride, ext[i]) : ext[i];
    ok = sum && stride;
  }
  ir_expr *value = ok && !is_const(f->min, 0) ? ir_add(s->arena, f->min, sum) : sum;
  ir_expr *pred = ok && need_pred ? ir_binop(s->arena, IR_LT, sum, f->extent) : NULL;
  if (!ok || !value || (need_pred && !pred)) {
    ir_analyzer_free(an);
    return build_failed(s);
  }
  for (int i = 0; i < n && !st; i++) {
    ir_for probe = {.var = vars[i], .min = iconst(s, t, 0), .extent = ext[i]};
    st = probe.min ? bind_loop(an, &probe) : build_failed(s);
  }
  ir_stmt *body = NULL;
  if (!st) st = rebind_body(s, an, f->body, 1, &f->var, &value, pred, &body);
  ir_analyzer_free(an);
  if (st) return st;
  for (int i = n - 1; i >= 0 && body; i--)
    body = ir_for_new(s->arena, vars[i], iconst(s, t, 0), ext[i], IR_FOR_SERIAL, 0, NULL, body);
  if (!body) return build_failed(s);

  sch_arg in[SCH_MAX_INST_ARGS];
  in[0] = sch_arg_rv(s, loop);
  for (int i = 0; i < n; i++) in[i + 1] = sch_arg_rv(s, factors[i]);
  return commit(s, &f->h, body, SCH_INST_SPLIT, n + 1, in, n, vars, out);
}

kiln_status sch_apply_split(sch_schedule *s, int ninputs, const sch_arg *inputs, int ndecision,
                            const int64_t *decision, sch_rv *outputs, int *noutputs) {
  (void)ndecision, (void)decision;
  if (ninputs < 3 || ninputs > SCH_MAX_INST_ARGS)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: split takes a loop and 2 to %d factors, got %d inputs",
                   SCH_MAX_INST_ARGS - 1, ninputs);
  sch_rv loop, factors[SCH_MAX_INST_ARGS];
  kiln_status st = sch_input_rv(s, &inputs[0], SCH_RV_LOOP, &loop);
  for (int i = 1; i < ninputs && !st; i++)
    st = sch_input_rv(s, &inputs[i], SCH_RV_INT, &factors[i - 1]);
  if (st) return st;
  if ((st = sch_split(s, loop, ninputs - 1, factors, outputs))) return st;
  *noutputs = ninputs - 1;
  return KILN_OK;
}

/* ---- fuse ---------------------------------------------------------------------------- */

/* fuse(loops[n]): n >= 2 loops, outermost first, each the only statement in the body of the
 * one before, become one serial loop `a_b_fused` of extent e_0 * ... * e_{n-1}. With f the
 * fused variable and s_k = e_{k+1} * ... * e_{n-1}, loop k's variable becomes
 * start_k + floormod(floordiv(f, s_k), e_k) (no floormod for the outermost, no floordiv for
 * the innermost), substituted in every binding, predicate and inner loop bound below. The
 * starts and extents of the fused loops must not depend on each other's variables (a
 * triangular nest has no product form). Kinds and annotations of the fused loops are dropped.
 * Inputs: [loop_0, ..., loop_{n-1}]; outputs: the fused loop. */
kiln_status sch_fuse(sch_schedule *s, int n, const sch_rv *loops, sch_rv *out) {
  if (!s) return KILN_ERR_MISUSE;
  if (!loops || !out)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "fuse: no loops or output given");
  if (n < 2) return sch_fail(s, "fuse", "needs at least 2 loops, got %d", n);
  if (n > SCH_MAX_INST_ARGS)
    return sch_fail(s, "fuse", "%d loops (at most %d)", n, SCH_MAX_INST_ARGS);
  ir_for *fs[SCH_MAX_INST_ARGS];
  kiln_status st;
  for (int i = 0; i < n; i++)
    if ((st = sch_get_for(s, "fuse", loops[i], &fs[i]))) return st;
  for (int i = 0; i + 1 < n; i++) {
    const char *outer = fs[i]->var->name, *inner = fs[i + 1]->var->name;
    if (fs[i]->body == &fs[i + 1]->h) continue;
    const ir_seq *sq = IR_AS(ir_seq, IR_SEQ, fs[i]->body);
    for (int k = 0; sq && k < sq->nstmts; k++)
      if (sq->stmts[k] == &fs[i + 1]->h)
        return sch_fail(s, "fuse", "loop '%s' is not the only statement in the body of loop "
                        "'%s' (it holds %d statements)", inner, outer, (int)sq->nstmts);
    return sch_fail(s, "fuse", "loops '%s' and '%s' are not directly nested (fuse takes "
                    "consecutive loops, outermost first)", outer, inner);
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (uses_var(fs[i]->min, fs[j]->var) || uses_var(fs[i]->extent, fs[j]->var))
        return sch_fail(s, "fuse", "the bounds of loop '%s' depend on loop '%s'",
                        fs[i]->var->name, fs[j]->var->name);

  kiln_dtype t = fs[0]->var->h.dtype;
  for (int i = 1; i < n; i++)
    if (!ir_dt_eq(fs[i]->var->h.dtype, t))
      return sch_fail(s, "fuse", "loops '%s' and '%s' have different index types",
                      fs[0]->var->name, fs[i]->var->name);
  ir_analyzer *an;
  if ((st = analyzer_around(s, &fs[0]->h, &an))) return st;

  /* The fused extent and each variable's value in terms of the fused variable. */
  char name[160] = "";
  for (int i = 0; i < n; i++) {
    /* "a_b_fused" fused with "c" is "a_b_c_fused", not "a_b_fused_c_fused". */
    const char *part = fs[i]->var->name;
    int plen = (int)strlen(part);
    if (plen > 6 && strcmp(part + plen - 6, "_fused") == 0) plen -= 6;
    size_t len = strlen(name);
    snprintf(name + len, sizeof name - len, "%.*s_", plen < 40 ? plen : 40, part);
  }
  size_t len = strlen(name);
  snprintf(name + len, sizeof name - len, "fused");
  ir_var *fv = ir_var_new(s->arena, name, t);
  ir_expr *extent = fs[n - 1]->extent;
  for (int i = n - 2; i >= 0 && extent; i--) extent = ir_mul(s->arena, fs[i]->extent, extent);
  if (extent) extent = ir_simplify_expr(an, extent);
  ir_var *vars[SCH_MAX_INST_ARGS];
  ir_expr *values[SCH_MAX_INST_ARGS];
  ir_expr *stride = NULL; /* NULL: 1 */
  bool ok = fv && extent;
  for (int i = n - 1; i >= 0 && ok; i--) {
    ir_expr *v = stride ? ir_binop(s->arena, IR_FLOORDIV, &fv->h, stride) : &fv->h;
    if (i > 0) v = ir_binop(s->arena, IR_FLOORMOD, v, fs[i]->extent);
    if (v && !is_const(fs[i]->min, 0)) v = ir_add(s->arena, fs[i]->min, v);
    vars[i] = fs[i]->var;
    values[i] = v;
    stride = stride ? ir_mul(s->arena, fs[i]->extent, stride) : fs[i]->extent;
    ok = v && stride;
  }
  if (!ok) {
    ir_analyzer_free(an);
    return build_failed(s);
  }
  ir_for probe = {.var = fv, .min = iconst(s, t, 0), .extent = extent};
  st = probe.min ? bind_loop(an, &probe) : build_failed(s);
  ir_stmt *body = NULL;
  if (!st) st = rebind_body(s, an, fs[n - 1]->body, n, vars, values, NULL, &body);
  ir_analyzer_free(an);
  if (st) return st;
  body = ir_for_new(s->arena, fv, iconst(s, t, 0), extent, IR_FOR_SERIAL, 0, NULL, body);
  if (!body) return build_failed(s);

  sch_arg in[SCH_MAX_INST_ARGS];
  for (int i = 0; i < n; i++) in[i] = sch_arg_rv(s, loops[i]);
  return commit(s, &fs[0]->h, body, SCH_INST_FUSE, n, in, 1, &fv, out);
}

/* Reads n loop RVs from the inputs (fuse and reorder). */
static kiln_status input_loops(sch_schedule *s, const char *prim, int ninputs,
                               const sch_arg *inputs, int min, sch_rv *loops) {
  if (ninputs < min || ninputs > SCH_MAX_INST_ARGS)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: %s takes %d to %d loops, got %d inputs", prim, min,
                   SCH_MAX_INST_ARGS, ninputs);
  for (int i = 0; i < ninputs; i++) {
    kiln_status st = sch_input_rv(s, &inputs[i], SCH_RV_LOOP, &loops[i]);
    if (st) return st;
  }
  return KILN_OK;
}

kiln_status sch_apply_fuse(sch_schedule *s, int ninputs, const sch_arg *inputs, int ndecision,
                           const int64_t *decision, sch_rv *outputs, int *noutputs) {
  (void)ndecision, (void)decision;
  sch_rv loops[SCH_MAX_INST_ARGS];
  kiln_status st = input_loops(s, "fuse", ninputs, inputs, 2, loops);
  if (st) return st;
  if ((st = sch_fuse(s, ninputs, loops, outputs))) return st;
  *noutputs = 1;
  return KILN_OK;
}

/* ---- reorder ------------------------------------------------------------------------- */

/* reorder(loops[n]): the loops lie on one chain of a nest (each encloses the next in some
 * order), and between the outermost and the innermost of them every statement is a loop whose
 * body is the next one (no blocks, sequences, ifs or lets in between). The positions the
 * listed loops occupy in that chain are refilled with them in the given order; loops of the
 * chain that are not listed keep their positions. Each loop keeps its kind and annotations.
 * A loop whose bounds use another loop's variable cannot move outside it. Blocks are not
 * touched: their bindings name loop variables, which do not change.
 * Inputs: [loop_0, ..., loop_{n-1}]; no outputs. */
kiln_status sch_reorder(sch_schedule *s, int n, const sch_rv *loops) {
  if (!s) return KILN_ERR_MISUSE;
  if (!loops) return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "reorder: no loops given");
  if (n < 1) return sch_fail(s, "reorder", "needs at least one loop, got %d", n);
  if (n > SCH_MAX_INST_ARGS)
    return sch_fail(s, "reorder", "%d loops (at most %d)", n, SCH_MAX_INST_ARGS);
  ir_for *fs[SCH_MAX_INST_ARGS];
  int depth[SCH_MAX_INST_ARGS];
  ir_stmt **paths[SCH_MAX_INST_ARGS];
  kiln_status st;
  for (int i = 0; i < n; i++) {
    if ((st = sch_get_for(s, "reorder", loops[i], &fs[i]))) return st;
    for (int j = 0; j < i; j++)
      if (fs[j] == fs[i])
        return sch_fail(s, "reorder", "loop '%s' is listed twice", fs[i]->var->name);
  }
  for (int i = 0; i < n; i++)
    if ((st = sch_path_to(s, &fs[i]->h, &depth[i], &paths[i]))) return st;

  /* Sort by depth (insertion sort: n is small); each must enclose the next. */
  int order[SCH_MAX_INST_ARGS];
  for (int i = 0; i < n; i++) {
    int j = i;
    for (; j > 0 && depth[order[j - 1]] > depth[i]; j--) order[j] = order[j - 1];
    order[j] = i;
  }
  for (int k = 0; k + 1 < n; k++) {
    int a = order[k], b = order[k + 1];
    if (depth[a] == depth[b] || paths[b][depth[a] - 1] != &fs[a]->h)
      return sch_fail(s, "reorder", "loops '%s' and '%s' are not in one nest (neither "
                      "encloses the other)", fs[a]->var->name, fs[b]->var->name);
  }

  /* The chain from the outermost to the innermost listed loop must be loops only. */
  int outer = order[0], inner = order[n - 1];
  ir_stmt **path = paths[inner];
  int first = depth[outer] - 1, m = depth[inner] - first;
  ir_for *chain[256], *moved[256];
  if (m > 256) return sch_fail(s, "reorder", "the loop nest is deeper than 256 loops");
  for (int i = 0; i < m; i++) {
    ir_stmt *st_i = path[first + i];
    if (st_i->kind == IR_FOR) {
      chain[i] = (ir_for *)st_i;
      continue;
    }
    const char *a = fs[outer]->var->name, *b = fs[inner]->var->name;
    if (st_i->kind == IR_SEQ)
      return sch_fail(s, "reorder", "loops '%s' and '%s' are not perfectly nested: loop '%s' "
                      "holds %d statements", a, b, chain[i - 1]->var->name,
                      (int)((ir_seq *)st_i)->nstmts);
    if (st_i->kind == IR_BLOCK_REALIZE || st_i->kind == IR_BLOCK) {
      const ir_block *blk = st_i->kind == IR_BLOCK ? (const ir_block *)st_i
                                                  : ((const ir_block_realize *)st_i)->block;
      return sch_fail(s, "reorder", "loops '%s' and '%s' are not perfectly nested: block '%s' "
                      "lies between them", a, b, blk->name);
    }
    return sch_fail(s, "reorder", "loops '%s' and '%s' are not perfectly nested: a %s "
                    "statement lies between them", a, b, ir_kind_name(st_i->kind));
  }

  /* Refill the listed loops' slots (in chain order) with the listed loops in given order. */
  memcpy(moved, chain, sizeof *chain * (size_t)m);
  int slot = 0;
  for (int i = 0; i < m; i++) {
    bool listed = false;
    for (int j = 0; j < n; j++) listed |= chain[i] == fs[j];
    if (listed) moved[i] = fs[slot++];
  }
  for (int p = 0; p < m; p++)
    for (int q = p + 1; q < m; q++)
      if (uses_var(moved[p]->min, moved[q]->var) || uses_var(moved[p]->extent, moved[q]->var))
        return sch_fail(s, "reorder", "the bounds of loop '%s' depend on loop '%s', which "
                        "would be inside it", moved[p]->var->name, moved[q]->var->name);

  ir_stmt *body = chain[m - 1]->body;
  for (int p = m - 1; p >= 0 && body; p--)
    body = ir_for_new(s->arena, moved[p]->var, moved[p]->min, moved[p]->extent,
                      moved[p]->for_kind, moved[p]->nannots, moved[p]->annots, body);
  if (!body) return build_failed(s);
  sch_arg in[SCH_MAX_INST_ARGS];
  for (int i = 0; i < n; i++) in[i] = sch_arg_rv(s, loops[i]);
  return commit(s, &chain[0]->h, body, SCH_INST_REORDER, n, in, 0, NULL, NULL);
}

kiln_status sch_apply_reorder(sch_schedule *s, int ninputs, const sch_arg *inputs,
                              int ndecision, const int64_t *decision, sch_rv *outputs,
                              int *noutputs) {
  (void)ndecision, (void)decision, (void)outputs;
  sch_rv loops[SCH_MAX_INST_ARGS];
  kiln_status st = input_loops(s, "reorder", ninputs, inputs, 1, loops);
  if (st) return st;
  if ((st = sch_reorder(s, ninputs, loops))) return st;
  *noutputs = 0;
  return KILN_OK;
}

/* ---- parallel / vectorize / unroll --------------------------------------------------- */

/* Sets the kind of a loop. parallel and vectorize run iterations at the same time, so every
 * block directly under the loop (blocks nested in those are covered by their parent's
 * iterator types) must bind the loop variable into spatial iterators only: a loop feeding a
 * reduce iterator carries the accumulation from one iteration to the next. A reduction whose
 * reduce loops lie inside (or outside) the loop is fine: each iteration owns its accumulator.
 * vectorize also needs a constant extent and an innermost loop (no loop anywhere inside it,
 * blocks included). parallel inside another parallel loop is allowed: the runtime runs the
 * inner one serially within each outer task. unroll accepts any loop. The loop keeps its
 * variable, bounds, annotations and body. Inputs: [loop]; no outputs. */
static kiln_status set_kind(sch_schedule *s, const char *prim, const char *verb, int inst,
                            sch_rv loop, int kind) {
  if (!s) return KILN_ERR_MISUSE;
  ir_for *f;
  kiln_status st = sch_get_for(s, prim, loop, &f);
  if (st) return st;
  const char *name = f->var->name;
  if (kind == IR_FOR_PARALLEL || kind == IR_FOR_VECTORIZED) {
    int nr;
    ir_block_realize **rs;
    if ((st = sch_child_realizes(s, &f->h, &nr, &rs))) return st;
    for (int i = 0; i < nr; i++) {
      const ir_block *blk = rs[i]->block;
      for (int k = 0; k < rs[i]->nvalues; k++)
        if (blk->iters[k]->iter_type == IR_ITER_REDUCE && uses_var(rs[i]->values[k], f->var))
          return sch_fail(s, prim, "cannot %s loop '%s': it is bound to reduce iterator '%s' "
                          "of block '%s'", verb, name, blk->iters[k]->var->name, blk->name);
    }
  }
  if (kind == IR_FOR_VECTORIZED) {
    if (!ir_as_int(f->extent))
      return sch_fail(s, prim, "cannot %s loop '%s': its extent is not a constant", verb, name);
    ir_for *in = NULL;
    ir_visit(f->body, false, find_for_fn, &in);
    if (in)
      return sch_fail(s, prim, "cannot %s loop '%s': it contains loop '%s' (only innermost "
                      "loops are vectorized)", verb, name, in->var->name);
  }
  ir_stmt *nf = ir_for_new(s->arena, f->var, f->min, f->extent, kind, f->nannots, f->annots,
                           f->body);
  if (!nf) return build_failed(s);
  sch_arg in = sch_arg_rv(s, loop);
  return commit(s, &f->h, nf, inst, 1, &in, 0, NULL, NULL);
}

kiln_status sch_parallel(sch_schedule *s, sch_rv loop) {
  return set_kind(s, "parallel", "parallelize", SCH_INST_PARALLEL, loop, IR_FOR_PARALLEL);
}

kiln_status sch_vectorize(sch_schedule *s, sch_rv loop) {
  return set_kind(s, "vectorize", "vectorize", SCH_INST_VECTORIZE, loop, IR_FOR_VECTORIZED);
}

kiln_status sch_unroll(sch_schedule *s, sch_rv loop) {
  return set_kind(s, "unroll", "unroll", SCH_INST_UNROLL, loop, IR_FOR_UNROLLED);
}

/* The replay entries of the three: one loop in, nothing out. */
static kiln_status apply_kind(sch_schedule *s, const char *prim, int ninputs,
                              const sch_arg *inputs, int *noutputs,
                              kiln_status (*fn)(sch_schedule *, sch_rv)) {
  sch_rv loop;
  if (ninputs != 1)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "trace: %s takes one loop, got %d "
                   "inputs", prim, ninputs);
  kiln_status st = sch_input_rv(s, &inputs[0], SCH_RV_LOOP, &loop);
  if (st || (st = fn(s, loop))) return st;
  *noutputs = 0;
  return KILN_OK;
}

kiln_status sch_apply_parallel(sch_schedule *s, int ninputs, const sch_arg *inputs,
                               int ndecision, const int64_t *decision, sch_rv *outputs,
                               int *noutputs) {
  (void)ndecision, (void)decision, (void)outputs;
  return apply_kind(s, "parallel", ninputs, inputs, noutputs, sch_parallel);
}

kiln_status sch_apply_vectorize(sch_schedule *s, int ninputs, const sch_arg *inputs,
                                int ndecision, const int64_t *decision, sch_rv *outputs,
                                int *noutputs) {
  (void)ndecision, (void)decision, (void)outputs;
  return apply_kind(s, "vectorize", ninputs, inputs, noutputs, sch_vectorize);
}

kiln_status sch_apply_unroll(sch_schedule *s, int ninputs, const sch_arg *inputs, int ndecision,
                             const int64_t *decision, sch_rv *outputs, int *noutputs) {
  (void)ndecision, (void)decision, (void)outputs;
  return apply_kind(s, "unroll", ninputs, inputs, noutputs, sch_unroll);
}

/* ---- annotate ------------------------------------------------------------------------ */

/* The annotations with key set to value (replaced in place, or appended). */
static ir_annot **with_annot(sch_schedule *s, int n, ir_annot *const *annots, const char *key,
                             ir_expr *value, int *nout) {
  ir_annot **out = ir_arena_alloc(s->arena, sizeof *out * (size_t)(n + 1));
  ir_annot *a = ir_annot_new(s->arena, key, value);
  if (!out || !a) return NULL;
  int k = 0;
  bool replaced = false;
  for (int i = 0; i < n; i++) {
    bool same = strcmp(annots[i]->key, key) == 0;
    out[k++] = same ? a : annots[i];
    replaced |= same;
  }
  if (!replaced) out[k++] = a;
  *nout = k;
  return out;
}

/* annotate(target, key, value): adds key = value to a block's or a loop's annotations, or
 * replaces the value of an existing key. The value is an immediate; it is stored normalized
 * (integers and bools as int64, floats as float64, strings as they are) because that is all a
 * trace can spell, so a replay gives back the same function.
 * Inputs: [target, key (string), value (int, float or string literal)]; no outputs. */
kiln_status sch_annotate(sch_schedule *s, sch_rv target, const char *key, const ir_expr *value) {
  if (!s) return KILN_ERR_MISUSE;
  if (!key || !*key)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "annotate: the key is empty");
  const ir_int_imm *iv = ir_as_int(value);
  const ir_float_imm *fv = ir_as_float(value);
  const ir_str_imm *sv = ir_as_str(value);
  if (!iv && !fv && !sv)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "annotate: the value of '%s' must be "
                   "an integer, float or string immediate, not %s", key,
                   value ? ir_kind_name(value->kind) : "nothing");
  const sch_rv_info *info = sch_rv_get(s, target);
  if (!info || info->kind == SCH_RV_INT)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "annotate: the target must be a block or a loop random variable");
  ir_expr *v = iv ? ir_int(s->arena, KILN_INT64, iv->value)
                  : fv ? ir_float(s->arena, KILN_FLOAT64, fv->value) : ir_str(s->arena, sv->value);
  if (!v) return build_failed(s);
  sch_arg in[3] = {sch_arg_rv(s, target), sch_arg_str(key),
                   iv ? sch_arg_int(iv->value) : fv ? sch_arg_float(fv->value)
                                                    : sch_arg_str(sv->value)};
  kiln_status st;
  int na;
  ir_annot **annots;
  if (info->kind == SCH_RV_BLOCK) {
    ir_block_realize *r;
    if ((st = sch_get_realize(s, "annotate", target, &r))) return st;
    ir_block *b = r->block;
    if (!(annots = with_annot(s, b->nannots, b->annots, key, v, &na))) return build_failed(s);
    ir_block *nb = ir_block_new(s->arena, b->name, b->niters, b->iters, b->nreads, b->reads,
                                b->nwrites, b->writes, b->nallocs, b->allocs, na, annots,
                                b->init, b->body);
    ir_stmt *nr = nb ? ir_block_realize_new(s->arena, r->nvalues, r->values, r->predicate, nb)
                     : NULL;
    if (!nr) return build_failed(s);
    return commit(s, &r->h, nr, SCH_INST_ANNOTATE, 3, in, 0, NULL, NULL);
  }
  ir_for *f;
  if ((st = sch_get_for(s, "annotate", target, &f))) return st;
  if (!(annots = with_annot(s, f->nannots, f->annots, key, v, &na))) return build_failed(s);
  ir_stmt *nf = ir_for_new(s->arena, f->var, f->min, f->extent, f->for_kind, na, annots,
                           f->body);
  if (!nf) return build_failed(s);
  return commit(s, &f->h, nf, SCH_INST_ANNOTATE, 3, in, 0, NULL, NULL);
}

kiln_status sch_apply_annotate(sch_schedule *s, int ninputs, const sch_arg *inputs,
                               int ndecision, const int64_t *decision, sch_rv *outputs,
                               int *noutputs) {
  (void)ndecision, (void)decision, (void)outputs;
  if (ninputs != 3 || inputs[0].kind != SCH_ARG_RV || inputs[1].kind != SCH_ARG_STR)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: annotate takes a block or loop, a key and a value");
  const sch_rv_info *r = sch_rv_get(s, (sch_rv)inputs[0].i);
  if (!r || r->kind == SCH_RV_INT)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: annotate: argument $%lld is not a block or loop of the schedule",
                   (long long)inputs[0].i);
  const sch_arg *a = &inputs[2];
  ir_expr *v = a->kind == SCH_ARG_INT     ? ir_int(s->arena, KILN_INT64, a->i)
               : a->kind == SCH_ARG_FLOAT ? ir_float(s->arena, KILN_FLOAT64, a->f)
               : a->kind == SCH_ARG_STR   ? ir_str(s->arena, a->s ? a->s : "")
                                          : NULL;
  if (a->kind == SCH_ARG_RV)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: annotate: the value must be an int, float or string literal");
  if (!v) return build_failed(s);
  kiln_status st = sch_annotate(s, (sch_rv)inputs[0].i, inputs[1].s, v);
  if (st) return st;
  *noutputs = 0;
  return KILN_OK;
}

/* test_relay_pass.c: the Relay passes and the pass manager. Each pass on small programs
 * built with the C constructors, compared structurally with the expected program; golden
 * files (tests/golden/relay_pass/, text before and after); numeric checks with the reference
 * interpreter showing that every pass and the whole default pipeline keep the results of a
 * ResNet-style block and a transformer-style block; FuseOps groupings; the manager's
 * instruments and verifier; errors; fault injection. */
#include <dirent.h>
#include <math.h>

#include "ir/base.h"
#include "relay/interp.h"
#include "relay/pass.h"
#include "relay/text.h"
#include "test_util.h"

/* ---- Helpers -------------------------------------------------------------------------- */

static kiln_context *ctx;
static relay_module *mod;
static ir_arena *A;

static void setup(void) {
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  mod = relay_module_new(ctx);
  ck_assert_ptr_nonnull(mod);
  A = mod->arena;
}

static void teardown(void) {
  relay_module_free(mod);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}

static relay_type *f32(int ndim, const int64_t *shape) {
  return relay_tensor_type_const(A, KILN_FLOAT32, ndim, shape);
}
/* T(2, 3): a float32 tensor type of that shape */
#define NDIMS(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define SHAPE(...) NDIMS(__VA_ARGS__), (int64_t[]){__VA_ARGS__}
#define T(...) f32(SHAPE(__VA_ARGS__))

static relay_var *var(const char *name, relay_type *t) { return relay_var_new(A, name, t); }

static relay_expr *op1(const char *op, relay_expr *x) {
  return relay_call_op(A, op, 1, &x, 0, NULL);
}
static relay_expr *op2(const char *op, relay_expr *x, relay_expr *y) {
  relay_expr *args[2] = {x, y};
  return relay_call_op(A, op, 2, args, 0, NULL);
}
static relay_expr *op_attrs(const char *op, int nargs, relay_expr *const *args, int nattrs,
                            relay_attr *const *attrs) {
  relay_expr *r = relay_call_op(A, op, nargs, args, nattrs, attrs);
  ck_assert_msg(r != NULL, "%s: %s", op, kiln_context_errmsg(ctx));
  return r;
}

static relay_func *func(int n, relay_var *const *params, relay_expr *body) {
  relay_expr *f = relay_func_new(A, n, params, NULL, body, 0, NULL);
  ck_assert_msg(f != NULL, "%s", kiln_context_errmsg(ctx));
  return (relay_func *)f;
}

static void set_fn(relay_module *m, const char *name, int n, relay_var *const *params,
                   relay_expr *body) {
  ck_ok(ctx, relay_module_set(m, name, func(n, params, body)));
}

/* Deterministic values in [lo, hi). */
static uint64_t seed = 1;
static double rnd(double lo, double hi) {
  seed = seed * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (double)(seed >> 11) / 9007199254740992.0;
}

static relay_expr *cst(relay_type *t, double lo, double hi) {
  int64_t n = relay_type_numel(t);
  float *d = malloc(sizeof(float) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) d[i] = (float)rnd(lo, hi);
  relay_expr *c = relay_const_new(A, t, d, (int64_t)sizeof(float) * n);
  free(d);
  ck_assert_ptr_nonnull(c);
  return c;
}

static relay_expr *cst_vals(relay_type *t, const float *v) {
  return relay_const_new(A, t, v, (int64_t)sizeof(float) * relay_type_numel(t));
}

static relay_expr *conv(relay_expr *x, relay_expr *w, int pad) {
  int64_t p[4] = {pad, pad, pad, pad};
  relay_attr *a = relay_attr_ints(A, "padding", 4, p);
  return op_attrs("nn.conv2d", 2, (relay_expr *[]){x, w}, 1, &a);
}

static relay_expr *batch_norm(relay_expr *x, int64_t c, bool consts, relay_var **params) {
  relay_expr *args[5] = {x};
  if (consts) {
    args[1] = cst(T(c), 0.5, 1.5);
    args[2] = cst(T(c), -0.5, 0.5);
    args[3] = cst(T(c), -0.5, 0.5);
    args[4] = cst(T(c), 0.5, 2.0);
  } else {
    for (int i = 1; i < 5; i++) args[i] = &params[i - 1]->h;
  }
  return op_attrs("nn.batch_norm", 5, args, 0, NULL);
}

/* Runs passes on mod with the verifier on. */
static kiln_status run_passes(relay_module *m, int n, const relay_pass *const *passes) {
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  return relay_run_passes(&pc, m, n, passes);
}
static void run_pass(const relay_pass *p) { ck_ok(ctx, run_passes(mod, 1, &p)); }

static relay_func *main_of(relay_module *m) {
  relay_func *f = relay_module_get(m, "main");
  ck_assert_ptr_nonnull(f);
  return f;
}

static void ck_same_func(relay_func *got, relay_func *want) {
  if (ir_structural_equal(ctx, &got->h, &want->h)) return;
  char *g = relay_expr_to_string(ctx, &got->h), *w = relay_expr_to_string(ctx, &want->h);
  ck_abort_msg("functions differ:\n--- got:\n%s\n--- want:\n%s", g ? g : "?", w ? w : "?");
}

/* How many op calls named op the function has (nested functions included). */
static int count_op(relay_func *f, const char *op) {
  relay_expr **order;
  int n, count = 0;
  ck_ok(ctx, relay_post_order(ctx, &f->h, true, &order, &n));
  for (int i = 0; i < n; i++)
    if (order[i]->kind == RELAY_CALL && ((relay_call *)order[i])->op &&
        strcmp(((relay_call *)order[i])->op, op) == 0)
      count++;
  ir_free(ctx, order, sizeof *order * (size_t)n);
  return count;
}

/* ---- Comparing results ------------------------------------------------------------------ */

typedef struct inputs {
  int n;
  relay_tensor t[16];
  float *data[16];
} inputs;

/* Random inputs for the parameters of m's main, dims given for symbolic ones. */
static void make_inputs(relay_module *m, inputs *in, int64_t symbolic) {
  relay_func *f = main_of(m);
  in->n = f->nparams;
  ck_assert_int_le(in->n, 16);
  for (int i = 0; i < f->nparams; i++) {
    relay_tensor_type *t = relay_as_tensor_type(f->params[i]->type);
    relay_tensor *x = &in->t[i];
    memset(x, 0, sizeof *x);
    x->dtype = t->h.dtype;
    x->ndim = t->ndim;
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) {
      ir_int_imm *c = ir_as_int(t->shape[d]);
      x->shape[d] = c ? c->value : symbolic;
      n *= x->shape[d];
    }
    in->data[i] = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t k = 0; k < n; k++) in->data[i][k] = (float)rnd(-1, 1);
    x->data = in->data[i];
  }
}

static void free_inputs(inputs *in) {
  for (int i = 0; i < in->n; i++) free(in->data[i]);
}

static relay_value *run(relay_module *m, const inputs *in) {
  relay_value *v = NULL;
  ck_ok(ctx, relay_interp_run(m, "main", in->n, in->t, &v));
  return v;
}

/* Values equal up to a relative tolerance of 1e-5 (absolute near 0). */
static void ck_close(const relay_value *a, const relay_value *b, const char *what) {
  ck_assert_int_eq(a->kind, b->kind);
  if (a->kind == RELAY_VALUE_TUPLE) {
    ck_assert_int_eq(a->nfields, b->nfields);
    for (int i = 0; i < a->nfields; i++) ck_close(a->fields[i], b->fields[i], what);
    return;
  }
  ck_assert_int_eq(a->kind, RELAY_VALUE_TENSOR);
  ck_assert_int_eq(a->tensor.ndim, b->tensor.ndim);
  for (int d = 0; d < a->tensor.ndim; d++) ck_assert_int_eq(a->tensor.shape[d], b->tensor.shape[d]);
  int64_t n = relay_tensor_numel(&a->tensor);
  for (int64_t i = 0; i < n; i++) {
    double x = relay_tensor_get(&a->tensor, i), y = relay_tensor_get(&b->tensor, i);
    ck_assert_msg(fabs(x - y) <= 1e-5 * fmax(1.0, fabs(y)), "%s: element %lld: %.9g vs %.9g", what,
                  (long long)i, x, y);
  }
}

/* Runs each pass of the list in turn, checking after every one that main computes what it
 * computed before any (on the same inputs). */
static void ck_passes_keep_results(relay_module *m, int n, const relay_pass *const *passes,
                                   int64_t symbolic) {
  inputs in;
  make_inputs(m, &in, symbolic);
  relay_value *want = run(m, &in);
  for (int i = 0; i < n; i++) {
    ck_ok(ctx, run_passes(m, 1, &passes[i]));
    relay_value *got = run(m, &in);
    ck_close(got, want, passes[i]->name);
    relay_value_release(ctx, got);
  }
  relay_value_release(ctx, want);
  free_inputs(&in);
}

static void ck_pipeline_keeps_results(relay_module *m) {
  const relay_pass *const *pipeline;
  int n = relay_default_pipeline(&pipeline);
  ck_passes_keep_results(m, n, pipeline, 2);
}

/* The primitive functions f calls, in the order the calls run, each as "op+op+..." (its ops
 * in order). */
static int fused_groups(relay_func *f, char groups[][160], int max) {
  relay_expr **order;
  int n, count = 0;
  ck_ok(ctx, relay_post_order(ctx, f->body, false, &order, &n));
  for (int i = 0; i < n; i++) {
    relay_call *c = order[i]->kind == RELAY_CALL ? (relay_call *)order[i] : NULL;
    relay_func *g = c && c->fn && c->fn->kind == RELAY_FUNC ? (relay_func *)c->fn : NULL;
    if (!g || !relay_func_is_primitive(g)) continue;
    ck_assert_int_lt(count, max);
    relay_expr **inner;
    int m;
    ck_ok(ctx, relay_post_order(ctx, g->body, false, &inner, &m));
    groups[count][0] = 0;
    for (int j = 0; j < m; j++)
      if (inner[j]->kind == RELAY_CALL) {
        ck_assert_ptr_nonnull(((relay_call *)inner[j])->op); /* only op calls inside */
        if (groups[count][0]) strcat(groups[count], "+");
        strcat(groups[count], ((relay_call *)inner[j])->op);
      }
    ir_free(ctx, inner, sizeof *inner * (size_t)m);
    count++;
  }
  ir_free(ctx, order, sizeof *order * (size_t)n);
  return count;
}

static void ck_groups(relay_func *f, int n, const char *const *want) {
  char got[32][160];
  int k = fused_groups(f, got, 32);
  char all[2048] = "";
  for (int i = 0; i < k; i++) {
    strcat(all, got[i]);
    strcat(all, " | ");
  }
  ck_assert_msg(k == n, "%d groups, want %d: %s", k, n, all);
  for (int i = 0; i < n; i++)
    ck_assert_msg(strcmp(got[i], want[i]) == 0, "group %d is %s, want %s (all: %s)", i, got[i],
                  want[i], all);
}

/* ---- The manager ------------------------------------------------------------------------ */

START_TEST(pipeline_and_registry) {
  static const char *const want[] = {
      "InferType",     "SimplifyInference",      "FoldConstant",
      "FoldScaleAxis", "EliminateCommonSubexpr", "DeadCodeElimination",
      "FuseOps"};
  const relay_pass *const *p;
  int n = relay_default_pipeline(&p);
  ck_assert_int_eq(n, 7);
  for (int i = 0; i < n; i++) {
    ck_assert_str_eq(p[i]->name, want[i]);
    ck_assert_ptr_eq(relay_pass_lookup(want[i]), p[i]);
  }
  ck_assert_int_eq(relay_pass_count(), 10);
  ck_assert_ptr_eq(relay_pass_lookup("BindShapes"), &relay_pass_bind_shapes);
  ck_assert_ptr_eq(relay_pass_lookup("AlterDenseLayout"), &relay_pass_alter_dense_layout);
  ck_assert_ptr_null(relay_pass_lookup("Nope"));
  ck_assert_ptr_null(relay_pass_at(10));
}
END_TEST

static char dumped[512];
static void record_dump(void *ud, const char *pass, const relay_module *m) {
  (void)m;
  int *count = ud;
  (*count)++;
  strcat(dumped, pass);
  strcat(dumped, ";");
}

/* Timing records every pass, the dump runs only after passes that changed the module, and
 * passes above the opt level are skipped. */
START_TEST(instruments) {
  relay_var *x = var("x", T(3));
  float one[3] = {1, 1, 1};
  relay_expr *k = op2("add", cst_vals(T(3), one), cst_vals(T(3), one));
  set_fn(mod, "main", 1, &x, op2("add", op1("exp", &x->h), op2("multiply", op1("exp", &x->h), k)));
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  int count = 0;
  dumped[0] = 0;
  pc.dump = record_dump;
  pc.dump_ud = &count;
  pc.opt_level = 2; /* FoldConstant runs, EliminateCommonSubexpr (3) does not */
  const relay_pass *list[] = {&relay_pass_infer_type, &relay_pass_cse, &relay_pass_fold_constant};
  ck_ok(ctx, relay_run_passes(&pc, mod, 3, list));
  ck_assert_int_eq(pc.nrecords, 3);
  ck_assert(!pc.records[0].changed && !pc.records[0].skipped);
  ck_assert(pc.records[1].skipped);
  ck_assert(pc.records[2].changed);
  ck_assert_int_eq(count, 1);
  ck_assert_str_eq(dumped, "FoldConstant;");
  ck_assert_int_eq(count_op(main_of(mod), "exp"), 2);
  ck_assert_int_eq(count_op(main_of(mod), "add"), 1);
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  relay_pass_report(&pc, &sb);
  ck_assert_ptr_nonnull(strstr(sb.data, "FoldConstant"));
  ck_assert_ptr_nonnull(strstr(sb.data, "EliminateCommonSubexpr") ? strstr(sb.data, "skipped")
                                                                  : NULL);
  ir_sb_free(&sb);
  /* at opt level 3 the CSE runs */
  pc.opt_level = 3;
  ck_ok(ctx, relay_run_passes(&pc, mod, 1, &list[1]));
  ck_assert_int_eq(count_op(main_of(mod), "exp"), 1);
  ck_assert_str_eq(dumped, "FoldConstant;EliminateCommonSubexpr;");
  /* the printing dump: the module after each change, to a FILE */
  FILE *f = tmpfile();
  pc.dump = relay_dump_to_file;
  pc.dump_ud = f;
  ck_ok(ctx, relay_run_passes(&pc, mod, 1, (const relay_pass *[]){&relay_pass_fuse_ops}));
  rewind(f);
  char text[4096] = "";
  size_t len = fread(text, 1, sizeof text - 1, f);
  text[len] = 0;
  fclose(f);
  ck_assert_ptr_nonnull(strstr(text, "# after FuseOps:\ndef @main("));
  ck_assert_ptr_nonnull(strstr(text, "primitive=1"));
}
END_TEST

/* Modules the verifier rejects, each with the message it must give. */
START_TEST(verifier) {
  relay_var *x = var("x", T(2)), *y = var("y", T(2)), *z = var("z", T(2)), *u = var("u", NULL);
  relay_expr *r = op1("nn.relu", &x->h);
  struct {
    const char *name;
    relay_expr *body;
    kiln_status code;
    const char *msg;
  } cases[] = {
      {"scope", relay_tuple_new(A, 2, (relay_expr *[]){relay_let_new(A, y, r, &y->h), &y->h}),
       KILN_ERR_UNDEFINED,
       "verify @scope: variable %y is used outside the scope of its definition"},
      {"undefined", op2("add", &x->h, &z->h), KILN_ERR_UNDEFINED,
       "verify @undefined: variable %z is used but never defined"},
      {"untyped", relay_let_new(A, u, r, op1("exp", &u->h)), KILN_ERR_TYPE,
       "has no type (run InferType)"},
      {"twice",
       relay_tuple_new(A, 2,
                       (relay_expr *[]){relay_let_new(A, y, r, &y->h),
                                        relay_let_new(A, y, op1("exp", &x->h), &y->h)}),
       KILN_ERR_TYPE, "variable %y is defined twice"},
      {"own", relay_let_new(A, y, op1("exp", &y->h), &y->h), KILN_ERR_UNDEFINED,
       "variable %y is used in its own definition"},
      {"global",
       relay_call_fn(
           A, relay_global_new(A, "nope", relay_func_type_new(A, 1, (relay_type *[]){T(2)}, T(2))),
           1, (relay_expr *[]){&x->h}),
       KILN_ERR_UNDEFINED, "@nope is not a function of the module"},
      {"capture",
       relay_call_fn(A,
                     relay_func_new(A, 1, &z, NULL, op2("add", &z->h, &x->h), 1,
                                    (relay_attr *[]){relay_attr_int(A, "primitive", 1)}),
                     1, (relay_expr *[]){&x->h}),
       KILN_ERR_UNDEFINED, "a primitive function uses %x from outside"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    relay_module *m = relay_module_new(ctx);
    ck_assert_msg(cases[i].body != NULL, "%s: %s", cases[i].name, kiln_context_errmsg(ctx));
    ck_ok(ctx, relay_module_set(m, cases[i].name, func(1, &x, cases[i].body)));
    ck_assert_msg(relay_verify_module(m) == cases[i].code, "%s: %s", cases[i].name,
                  kiln_context_errmsg(ctx));
    ck_errmsg_has(ctx, cases[i].msg);
    relay_module_free(m);
  }
  set_fn(mod, "main", 1, &x, op2("add", r, r));
  ck_ok(ctx, relay_verify_module(mod));
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  ck_assert_int_eq(relay_run_passes(&pc, mod, 1, (const relay_pass *[]){NULL}), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "pass 0 of the list is NULL");
}
END_TEST

/* A pass that breaks its module (a variable out of scope): the manager's verifier stops the
 * pipeline and says after which pass. */
static kiln_status run_breaker(relay_pass_ctx *pc, relay_module *m) {
  (void)pc;
  relay_var *stray = relay_var_new(
      m->arena, "stray", relay_tensor_type_const(m->arena, KILN_FLOAT32, 1, (int64_t[]){2}));
  relay_func *f = relay_module_get(m, "main");
  relay_expr *body =
      relay_call_op(m->arena, "add", 2, (relay_expr *[]){f->body, &stray->h}, 0, NULL);
  return relay_module_set(
      m, "main",
      (relay_func *)relay_func_new(m->arena, f->nparams, f->params, NULL, body, 0, NULL));
}
static const relay_pass breaker = {"Breaker", 0, run_breaker, "breaks the module"};

START_TEST(verifier_between_passes) {
  relay_var *x = var("x", T(2));
  set_fn(mod, "main", 1, &x, op1("nn.relu", &x->h));
  const relay_pass *list[] = {&relay_pass_infer_type, &breaker, &relay_pass_fuse_ops};
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  ck_assert_int_eq(relay_run_passes(&pc, mod, 3, list), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "after Breaker: verify @main: variable %stray is used but never defined");
  ck_assert_int_eq(pc.nrecords, 2); /* FuseOps never ran */
  pc.verify = false;
  pc.nrecords = 0;
  relay_func *before = main_of(mod);
  ck_ok(ctx, relay_run_passes(&pc, mod, 1, &list[1]));
  ck_assert_ptr_ne(main_of(mod), before);
}
END_TEST

/* ---- InferType ------------------------------------------------------------------------ */

/* let %y = add(x, x); multiply(y, y): y gets the value's type, one new variable for both uses. */
START_TEST(infer_let) {
  relay_var *x = var("x", T(2, 3)), *y = var("y", NULL);
  relay_expr *v = op2("add", &x->h, &x->h);
  set_fn(mod, "main", 1, &x, relay_let_new(A, y, v, op2("multiply", &y->h, &y->h)));
  ck_assert_ptr_null(main_of(mod)->type);
  run_pass(&relay_pass_infer_type);
  relay_func *f = main_of(mod);
  ck_assert_ptr_nonnull(f->type);
  relay_let *l = (relay_let *)f->body;
  ck_assert_int_eq(l->h.kind, RELAY_LET);
  relay_call *m = (relay_call *)l->body;
  ck_assert_ptr_eq(m->args[0], &l->var->h);
  ck_assert_ptr_eq(m->args[1], &l->var->h);
  relay_var *y2 = var("y", T(2, 3));
  relay_var *x2 = var("x", T(2, 3));
  ck_same_func(
      f, func(1, &x2,
              relay_let_new(A, y2, op2("add", &x2->h, &x2->h), op2("multiply", &y2->h, &y2->h))));
  /* a second run changes nothing */
  run_pass(&relay_pass_infer_type);
  ck_assert_ptr_eq(main_of(mod), f);
}
END_TEST

/* A call of a function defined later: the global gets the callee's type, then the call. */
START_TEST(infer_globals) {
  relay_var *x = var("x", T(4));
  relay_expr *call = relay_call_fn(A, relay_global_new(A, "sq", NULL), 1, (relay_expr *[]){&x->h});
  ck_assert_ptr_null(relay_type_of(call));
  set_fn(mod, "main", 1, &x, op1("exp", call));
  relay_var *y = var("y", T(4));
  set_fn(mod, "sq", 1, &y, op2("multiply", &y->h, &y->h));
  run_pass(&relay_pass_infer_type);
  relay_func *f = main_of(mod);
  ck_assert(relay_type_equal(A, relay_type_of(f->body), T(4)));
  relay_call *c = (relay_call *)((relay_call *)f->body)->args[0];
  ck_assert(relay_type_equal(A, relay_type_of(c->fn), relay_module_get(mod, "sq")->type));
}
END_TEST

START_TEST(infer_errors) {
  relay_var *x = var("x", NULL), *y = var("y", T(2));
  set_fn(mod, "main", 1, &x, op1("exp", &x->h));
  relay_func *before = main_of(mod);
  ck_assert_int_eq(relay_infer_type(mod), KILN_ERR_TYPE);
  ck_errmsg_has(ctx, "InferType @main: parameter %x needs a type annotation");
  ck_assert_ptr_eq(main_of(mod), before); /* unchanged on error */
  /* recursion without a result annotation */
  relay_module *m = relay_module_new(ctx);
  ck_ok(ctx, relay_module_set(m, "main",
                              func(1, &y,
                                   relay_call_fn(A, relay_global_new(A, "main", NULL), 1,
                                                 (relay_expr *[]){&y->h}))));
  ck_assert_int_eq(relay_infer_type(m), KILN_ERR_TYPE);
  ck_errmsg_has(ctx, "@main is recursive; give it a result type annotation");
  relay_module_free(m);
  /* a call of a function the module does not have */
  m = relay_module_new(ctx);
  ck_ok(ctx, relay_module_set(m, "main",
                              func(1, &y,
                                   relay_call_fn(A, relay_global_new(A, "gone", NULL), 1,
                                                 (relay_expr *[]){&y->h}))));
  ck_assert_int_eq(relay_infer_type(m), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "@gone is not a function of the module");
  relay_module_free(m);
}
END_TEST

/* ---- SimplifyInference ------------------------------------------------------------------ */

START_TEST(simplify_batch_norm) {
  relay_var *x = var("x", T(2, 3, 4, 4)), *p[4];
  for (int i = 0; i < 4; i++) p[i] = var("p", T(3));
  relay_expr *bn = batch_norm(&x->h, 3, false, p);
  relay_expr *drop = op1("nn.dropout", op1("nn.relu", bn));
  set_fn(mod, "main", 5, (relay_var *[]){x, p[0], p[1], p[2], p[3]}, drop);
  relay_module *copy = relay_module_new(ctx);
  ck_ok(ctx, relay_module_set(copy, "main", main_of(mod)));
  ck_ok(ctx, relay_verify_module(copy));
  relay_module_free(copy);
  ck_passes_keep_results(mod, 1, (const relay_pass *[]){&relay_pass_simplify_inference}, 0);
  /* expected: x * expand_dims(gamma / sqrt(var + eps)) + expand_dims(beta - mean * that) */
  relay_attr *ex[2] = {relay_attr_int(A, "axis", 1), relay_attr_int(A, "num_newaxis", 2)};
  relay_expr *scale =
      op2("divide", &p[0]->h, op1("sqrt", op2("add", &p[3]->h, relay_scalar_f32(A, 1e-5f))));
  relay_expr *shift = op2("subtract", &p[1]->h, op2("multiply", &p[2]->h, scale));
  relay_expr *want = op2("add", op2("multiply", &x->h, op_attrs("expand_dims", 1, &scale, 2, ex)),
                         op_attrs("expand_dims", 1, &shift, 2, ex));
  ck_same_func(main_of(mod),
               func(5, (relay_var *[]){x, p[0], p[1], p[2], p[3]}, op1("nn.relu", want)));
}
END_TEST

/* batch norm over the last axis needs no expand_dims; layer_norm is kept. */
START_TEST(simplify_keeps_layer_norm) {
  relay_var *x = var("x", T(2, 8));
  relay_expr *g = cst(T(8), 0.5, 1.5), *b = cst(T(8), -1, 1);
  relay_expr *ln = op_attrs("nn.layer_norm", 3, (relay_expr *[]){&x->h, g, b}, 0, NULL);
  relay_attr *axis = relay_attr_int(A, "axis", -1);
  relay_expr *bn = op_attrs("nn.batch_norm", 5, (relay_expr *[]){ln, g, b, b, g}, 1, &axis);
  set_fn(mod, "main", 1, &x, bn);
  ck_passes_keep_results(mod, 1, (const relay_pass *[]){&relay_pass_simplify_inference}, 0);
  relay_func *f = main_of(mod);
  ck_assert_int_eq(count_op(f, "nn.layer_norm"), 1);
  ck_assert_int_eq(count_op(f, "nn.batch_norm"), 0);
  ck_assert_int_eq(count_op(f, "expand_dims"), 0);
}
END_TEST

/* ---- FoldConstant ----------------------------------------------------------------------- */

START_TEST(fold_constants) {
  relay_var *x = var("x", T(3));
  float a[3] = {1, 2, 3}, b[3] = {10, 20, 30};
  relay_expr *ca = cst_vals(T(3), a), *cb = cst_vals(T(3), b);
  /* let k = a + b; (x * k, (a, b).1 - a, if true { exp(a) } else { x }) */
  relay_expr *cond =
      relay_const_new(A, relay_tensor_type_new(A, KILN_BOOL, 0, NULL), (unsigned char[]){1}, 1);
  relay_expr *pick = relay_if_new(A, cond, op1("negative", ca), &x->h);
  relay_expr *sum = op2("add", ca, cb);
  relay_var *k2 = var("k", relay_type_of(sum));
  relay_expr *body = relay_tuple_new(
      A, 3,
      (relay_expr *[]){op2("multiply", &x->h, &k2->h),
                       op2("subtract",
                           relay_proj_new(A, relay_tuple_new(A, 2, (relay_expr *[]){ca, cb}), 1),
                           ca),
                       pick});
  set_fn(mod, "main", 1, &x, relay_let_new(A, k2, sum, body));
  ck_passes_keep_results(mod, 1, (const relay_pass *[]){&relay_pass_fold_constant}, 0);
  float s[3] = {11, 22, 33}, d[3] = {9, 18, 27}, n[3] = {-1, -2, -3};
  relay_var *x2 = var("x", T(3));
  ck_same_func(main_of(mod),
               func(1, &x2,
                    relay_tuple_new(A, 3,
                                    (relay_expr *[]){op2("multiply", &x2->h, cst_vals(T(3), s)),
                                                     cst_vals(T(3), d), cst_vals(T(3), n)})));
}
END_TEST

/* Ops returning tuples fold to tuples of constants; calls of functions are not entered; a
 * kernel error (integer division by zero) is left for run time. */
START_TEST(fold_limits) {
  relay_var *x = var("x", T(4)), *p = var("p", T(4));
  float a[4] = {1, 2, 3, 4};
  relay_attr *sections = relay_attr_int(A, "sections", 2);
  relay_expr *parts = op_attrs("split", 1, (relay_expr *[]){cst_vals(T(4), a)}, 1, &sections);
  relay_expr *fn = relay_func_new(A, 1, &p, NULL, op1("negative", &p->h), 0, NULL);
  relay_expr *call = relay_call_fn(A, fn, 1, (relay_expr *[]){cst_vals(T(4), a)});
  relay_type *it = relay_tensor_type_const(A, KILN_INT32, 1, (int64_t[]){2});
  int32_t num[2] = {1, 2}, den[2] = {1, 0};
  relay_expr *div = op2("divide", relay_const_new(A, it, num, 8), relay_const_new(A, it, den, 8));
  set_fn(mod, "main", 1, &x,
         relay_tuple_new(
             A, 4,
             (relay_expr *[]){op2("add", &x->h, call), relay_proj_new(A, parts, 1), parts, div}));
  run_pass(&relay_pass_fold_constant);
  relay_func *f = main_of(mod);
  relay_tuple *t = (relay_tuple *)f->body;
  ck_assert_int_eq(t->fields[1]->kind, RELAY_CONST);
  ck_assert_int_eq(t->fields[2]->kind, RELAY_TUPLE);
  ck_assert_ptr_eq(((relay_tuple *)t->fields[2])->fields[1], t->fields[1]);
  float *two = ((relay_const *)t->fields[1])->data;
  ck_assert(two[0] == 3 && two[1] == 4);
  ck_assert_int_eq(count_op(f, "negative"), 1); /* inside the function: untouched */
  ck_assert_int_eq(count_op(f, "divide"), 1);
  ck_assert_str_eq(kiln_context_errmsg(ctx), "");
}
END_TEST

/* ---- FoldScaleAxis ---------------------------------------------------------------------- */

/* add(multiply(conv2d(x, w), s), b) -> add(conv2d(x, w * s), b) with w * s computed here. */
START_TEST(fold_scale_conv) {
  relay_var *x = var("x", T(1, 2, 4, 4));
  float w[2 * 2 * 3 * 3], s[2] = {0.5f, -2}, b[2] = {1, -1}, ws[18 * 2];
  for (int i = 0; i < 36; i++) w[i] = (float)rnd(-1, 1);
  for (int i = 0; i < 36; i++) ws[i] = w[i] * s[i / 18];
  relay_expr *y = op2(
      "add", op2("multiply", conv(&x->h, cst_vals(T(2, 2, 3, 3), w), 1), cst_vals(T(2, 1, 1), s)),
      cst_vals(T(2, 1, 1), b));
  set_fn(mod, "main", 1, &x, y);
  ck_passes_keep_results(mod, 1, (const relay_pass *[]){&relay_pass_fold_scale_axis}, 0);
  relay_var *x2 = var("x", T(1, 2, 4, 4));
  ck_same_func(main_of(mod), func(1, &x2,
                                  op2("add", conv(&x2->h, cst_vals(T(2, 2, 3, 3), ws), 1),
                                      cst_vals(T(2, 1, 1), b))));
}
END_TEST

/* Cases that must not fold: the conv has another user, the scale varies along H, the scale
 * would broadcast the output. */
START_TEST(fold_scale_refusals) {
  relay_var *x = var("x", T(1, 2, 4, 4));
  relay_expr *c1 = conv(&x->h, cst(T(2, 2, 1, 1), -1, 1), 0);
  relay_expr *shared = op2("add", op2("multiply", c1, cst(T(2, 1, 1), 1, 2)), c1);
  relay_expr *along_h =
      op2("multiply", conv(&x->h, cst(T(2, 2, 1, 1), -1, 1), 0), cst(T(1, 1, 4, 1), 1, 2));
  relay_expr *widen =
      op2("multiply", conv(&x->h, cst(T(2, 2, 1, 1), -1, 1), 0), cst(T(3, 1, 1, 1, 1), 1, 2));
  set_fn(mod, "main", 1, &x, relay_tuple_new(A, 3, (relay_expr *[]){shared, along_h, widen}));
  relay_func *before = main_of(mod);
  run_pass(&relay_pass_fold_scale_axis);
  ck_assert_ptr_eq(main_of(mod), before);
}
END_TEST

/* dense, a bias_add in between, two constant adds merged, a weight that is a parameter. */
START_TEST(fold_scale_dense_and_bias) {
  relay_var *x = var("x", T(3, 4)), *w = var("w", T(5, 4)), *x4 = var("x4", T(1, 3, 4, 4));
  relay_expr *d1 = op2("nn.dense", &x->h, cst(T(5, 4), -1, 1));
  relay_expr *b1 = op2("nn.bias_add", d1, cst(T(5), -1, 1));
  relay_expr *y1 =
      op2("add", op2("add", op2("multiply", b1, cst(T(5), 0.5, 2)), cst(T(1, 5), -1, 1)),
          cst(T(5), -1, 1));
  relay_expr *y2 = op2("multiply", cst(T(1, 5), 0.5, 2), op2("nn.dense", &x->h, &w->h));
  relay_attr *axis = relay_attr_int(A, "axis", 1);
  relay_expr *c = op_attrs(
      "nn.bias_add", 2,
      (relay_expr *[]){conv(&x4->h, cst(T(2, 3, 1, 1), -1, 1), 0), cst(T(2), -1, 1)}, 1, &axis);
  relay_expr *y3 = op2("multiply", c, cst(T(2, 1, 1), 0.5, 2));
  set_fn(mod, "main", 3, (relay_var *[]){x, w, x4},
         relay_tuple_new(A, 3, (relay_expr *[]){y1, y2, y3}));
  ck_passes_keep_results(mod, 1, (const relay_pass *[]){&relay_pass_fold_scale_axis}, 0);
  relay_func *f = main_of(mod);
  /* y1: bias_add(dense(x, w'), b') + k: no multiply left, one add; y2: multiply(w, s') */
  relay_expr *r1 = ((relay_tuple *)f->body)->fields[0], *r2 = ((relay_tuple *)f->body)->fields[1];
  ck_assert_str_eq(((relay_call *)r1)->op, "add");
  ck_assert_str_eq(((relay_call *)((relay_call *)r1)->args[0])->op, "nn.bias_add");
  ck_assert_str_eq(((relay_call *)r2)->op, "nn.dense");
  ck_assert_str_eq(((relay_call *)((relay_call *)r2)->args[1])->op, "multiply");
  /* y3: bias_add(conv2d(x4, w'), b') */
  relay_call *r3 = (relay_call *)((relay_tuple *)f->body)->fields[2];
  ck_assert_str_eq(r3->op, "nn.bias_add");
  ck_assert_str_eq(((relay_call *)r3->args[0])->op, "nn.conv2d");
  ck_assert_int_eq(count_op(f, "multiply"), 1);
  ck_assert_int_eq(count_op(f, "add"), 1);
}
END_TEST

/* ---- EliminateCommonSubexpr --------------------------------------------------------------- */

START_TEST(cse) {
  relay_var *x = var("x", T(2, 3));
  relay_attr *ax0 = relay_attr_ints(A, "axis", 1, (int64_t[]){0}),
             *ax1 = relay_attr_ints(A, "axis", 1, (int64_t[]){1});
  relay_expr *e1 = op1("exp", op1("nn.relu", &x->h)), *e2 = op1("exp", op1("nn.relu", &x->h));
  relay_expr *s0 = op_attrs("sum", 1, &e1, 1, &ax0), *s1 = op_attrs("sum", 1, &e2, 1, &ax1);
  relay_expr *s0b =
      op_attrs("sum", 1, &e2, 1, (relay_attr *[]){relay_attr_ints(A, "axis", 1, (int64_t[]){0})});
  set_fn(mod, "main", 1, &x,
         relay_tuple_new(A, 4, (relay_expr *[]){op2("add", e1, e2), s0, s1, s0b}));
  ck_passes_keep_results(mod, 1, (const relay_pass *[]){&relay_pass_cse}, 0);
  relay_func *f = main_of(mod);
  ck_assert_int_eq(count_op(f, "exp"), 1);
  ck_assert_int_eq(count_op(f, "nn.relu"), 1);
  ck_assert_int_eq(count_op(f, "sum"), 2); /* axis 0 twice -> once; axis 1 differs */
  relay_tuple *t = (relay_tuple *)f->body;
  relay_call *add = (relay_call *)t->fields[0];
  ck_assert_ptr_eq(add->args[0], add->args[1]);
  ck_assert_ptr_eq(t->fields[1], t->fields[3]);
  ck_assert_ptr_ne(t->fields[1], t->fields[2]);
}
END_TEST

/* ---- DeadCodeElimination ----------------------------------------------------------------- */

START_TEST(dce) {
  relay_var *x = var("x", T(2)), *a = var("a", T(2)), *b = var("b", T(2)), *c = var("c", T(2));
  relay_var *p = var("p", T(2)), *q = var("q", T(2));
  set_fn(mod, "helper", 1, &p, op1("exp", &p->h));
  set_fn(mod, "unused", 1, &q, op1("negative", &q->h));
  /* let a = relu(x); let b = exp(a); let c = @helper(x); c: a and b go, c stays */
  relay_expr *call =
      relay_call_fn(A, relay_global_new(A, "helper", relay_module_get(mod, "helper")->type), 1,
                    (relay_expr *[]){&x->h});
  set_fn(mod, "main", 1, &x,
         relay_let_new(A, a, op1("nn.relu", &x->h),
                       relay_let_new(A, b, op1("exp", &a->h), relay_let_new(A, c, call, &c->h))));
  ck_passes_keep_results(mod, 1, (const relay_pass *[]){&relay_pass_dce}, 0);
  ck_assert_int_eq(mod->nfuncs, 2);
  ck_assert_ptr_null(relay_module_get(mod, "unused"));
  ck_assert_ptr_nonnull(relay_module_get(mod, "helper"));
  relay_var *x2 = var("x", T(2)), *c2 = var("c", T(2));
  relay_expr *call2 =
      relay_call_fn(A, relay_global_new(A, "helper", relay_module_get(mod, "helper")->type), 1,
                    (relay_expr *[]){&x2->h});
  ck_same_func(main_of(mod), func(1, &x2, relay_let_new(A, c2, call2, &c2->h)));
  /* without a main, every function stays */
  relay_module *m = relay_module_new(ctx);
  ck_ok(ctx, relay_module_set(m, "a", relay_module_get(mod, "helper")));
  ck_ok(ctx, relay_module_set(m, "b", relay_module_get(mod, "helper")));
  ck_ok(ctx, run_passes(m, 1, (const relay_pass *[]){&relay_pass_dce}));
  ck_assert_int_eq(m->nfuncs, 2);
  relay_module_free(m);
}
END_TEST

/* ---- FuseOps ------------------------------------------------------------------------------ */

START_TEST(fuse_conv_epilogue) {
  relay_var *x = var("x", T(1, 3, 6, 6));
  relay_expr *c1 = conv(&x->h, cst(T(4, 3, 3, 3), -1, 1), 1);
  relay_expr *r1 = op1("nn.relu", op2("nn.bias_add", c1, cst(T(4), -1, 1)));
  relay_expr *c2 = conv(r1, cst(T(4, 4, 1, 1), -1, 1), 0);
  relay_expr *y = op1("nn.softmax", op2("add", c2, r1));
  set_fn(mod, "main", 1, &x, op2("multiply", y, relay_scalar_f32(A, 2)));
  ck_passes_keep_results(mod, 1, (const relay_pass *[]){&relay_pass_fuse_ops}, 0);
  static const char *const want[] = {"nn.conv2d+nn.bias_add+nn.relu", "nn.conv2d+add", "nn.softmax",
                                     "multiply"};
  ck_groups(main_of(mod), 4, want);
  /* the second run finds nothing left to do */
  relay_func *f = main_of(mod);
  run_pass(&relay_pass_fuse_ops);
  ck_assert_ptr_eq(main_of(mod), f);
}
END_TEST

/* A diamond of elementwise ops is one group (the shared exp is not duplicated); a reduction
 * takes its elementwise input but fuses into nothing; injective ops join their consumers. */
START_TEST(fuse_patterns) {
  relay_var *x = var("x", T(4, 6));
  relay_expr *e = op1("exp", &x->h);
  relay_expr *diamond = op2("add", e, op1("nn.relu", e));
  relay_attr *ax = relay_attr_ints(A, "axis", 1, (int64_t[]){1});
  relay_expr *red = op_attrs("sum", 1, (relay_expr *[]){op1("negative", diamond)}, 1, &ax);
  relay_expr *after = op1("sigmoid", red);
  relay_attr *perm = relay_attr_ints(A, "axes", 2, (int64_t[]){1, 0});
  relay_expr *tr =
      op1("tanh", op_attrs("transpose", 1, (relay_expr *[]){op1("abs", &x->h)}, 1, &perm));
  set_fn(mod, "main", 1, &x, relay_tuple_new(A, 2, (relay_expr *[]){after, tr}));
  ck_passes_keep_results(mod, 1, (const relay_pass *[]){&relay_pass_fuse_ops}, 0);
  static const char *const want[] = {"exp+nn.relu+add+negative+sum", "sigmoid",
                                     "abs+transpose+tanh"};
  ck_groups(main_of(mod), 3, want);
}
END_TEST

/* A node with consumers in different groups stays its own group; a chain of 10 ops with a
 * depth limit of 4 makes groups of 4, 4 and 2. */
START_TEST(fuse_limits) {
  relay_var *x = var("x", T(8));
  relay_expr *r = op1("nn.relu", &x->h);
  relay_expr *h = r;
  for (int i = 0; i < 10; i++) h = op1(i % 2 ? "exp" : "negative", h);
  set_fn(mod, "main", 1, &x, relay_tuple_new(A, 2, (relay_expr *[]){h, op1("nn.softmax", r)}));
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  pc.fuse_max_depth = 4;
  inputs in;
  make_inputs(mod, &in, 0);
  relay_value *want = run(mod, &in);
  ck_ok(ctx, relay_run_passes(&pc, mod, 1, (const relay_pass *[]){&relay_pass_fuse_ops}));
  relay_value *got = run(mod, &in);
  ck_close(got, want, "FuseOps");
  relay_value_release(ctx, got);
  relay_value_release(ctx, want);
  free_inputs(&in);
  static const char *const groups[] = {"nn.relu", "negative+exp+negative+exp",
                                       "negative+exp+negative+exp", "negative+exp", "nn.softmax"};
  ck_groups(main_of(mod), 5, groups);
}
END_TEST

/* Inside lets, ifs and nested functions: each function body is fused on its own, let values
 * and branches stay where they are. */
START_TEST(fuse_scopes) {
  relay_var *x = var("x", T(3)), *c = var("c", relay_tensor_type_new(A, KILN_BOOL, 0, NULL)),
            *v = var("v", T(3));
  relay_var *p = var("p", T(3));
  relay_expr *fn = relay_func_new(A, 1, &p, NULL, op1("exp", op2("add", &p->h, &v->h)), 0, NULL);
  relay_var *f = var("f", relay_type_of(fn));
  relay_expr *branch =
      relay_if_new(A, &c->h, op1("nn.relu", op1("negative", &v->h)), op1("exp", &v->h));
  relay_expr *body = relay_let_new(
      A, v, op1("tanh", op1("abs", &x->h)),
      relay_let_new(A, f, fn, op2("add", relay_call_fn(A, &f->h, 1, &branch), &v->h)));
  set_fn(mod, "main", 2, (relay_var *[]){x, c}, body);
  inputs in;
  make_inputs(mod, &in, 0);
  for (int b = 0; b < 2; b++) {
    unsigned char flag = (unsigned char)b;
    in.t[1].data = &flag;
    relay_module *m = relay_module_new(ctx);
    ck_ok(ctx, relay_module_set(m, "main", main_of(mod)));
    relay_value *want = run(m, &in);
    ck_ok(ctx, run_passes(m, 1, (const relay_pass *[]){&relay_pass_fuse_ops}));
    relay_value *got = run(m, &in);
    ck_close(got, want, "FuseOps");
    relay_value_release(ctx, got);
    relay_value_release(ctx, want);
    if (b == 1) {
      ck_ok(ctx, relay_verify_module(m));
      /* main: abs+tanh, the branches, the outer add; the nested function: add+exp */
      static const char *const want_main[] = {"abs+tanh", "negative+nn.relu", "exp", "add"};
      ck_groups(main_of(m), 4, want_main);
      relay_let *l2 = (relay_let *)((relay_let *)main_of(m)->body)->body;
      static const char *const want_inner[] = {"add+exp"};
      ck_groups((relay_func *)l2->value, 1, want_inner);
    }
    relay_module_free(m);
  }
  in.t[1].data = in.data[1];
  free_inputs(&in);
}
END_TEST

/* An op returning a tuple (split) ends its group, projections stay outside, concatenate takes
 * its elementwise inputs; every function of the module is fused, and the two equal calls of
 * @f merge first (EliminateCommonSubexpr merges function calls too). */
START_TEST(fuse_tuples_and_functions) {
  relay_var *p = var("p", T(6));
  set_fn(mod, "f", 1, &p, op1("sigmoid", op1("abs", &p->h)));
  relay_var *x = var("x", T(6));
  relay_attr *sections = relay_attr_int(A, "sections", 2);
  relay_expr *parts = op_attrs("split", 1, (relay_expr *[]){op1("exp", &x->h)}, 1, &sections);
  relay_expr *cat = op_attrs("concatenate", 2,
                             (relay_expr *[]){op1("nn.relu", relay_proj_new(A, parts, 0)),
                                              op1("negative", relay_proj_new(A, parts, 1))},
                             0, NULL);
  relay_expr *g = relay_global_new(A, "f", relay_module_get(mod, "f")->type);
  relay_expr *c1 = relay_call_fn(A, g, 1, &cat), *c2 = relay_call_fn(A, g, 1, &cat);
  set_fn(mod, "main", 1, &x, op2("add", c1, c2));
  ck_passes_keep_results(mod, 2, (const relay_pass *[]){&relay_pass_cse, &relay_pass_fuse_ops}, 0);
  static const char *const want_main[] = {"exp+split", "nn.relu+negative+concatenate", "add"};
  ck_groups(main_of(mod), 3, want_main);
  /* one call of @f, so the add's primitive function has one parameter */
  relay_call *add = (relay_call *)main_of(mod)->body;
  ck_assert_int_eq(add->nargs, 1);
  ck_assert_int_eq(add->args[0]->kind, RELAY_CALL);
  ck_assert_int_eq(((relay_call *)add->args[0])->fn->kind, RELAY_GLOBAL);
  static const char *const want_f[] = {"abs+sigmoid"};
  ck_groups(relay_module_get(mod, "f"), 1, want_f);
}
END_TEST

/* ---- BindShapes --------------------------------------------------------------------------- */

START_TEST(bind_shapes) {
  ir_expr *n = &relay_module_dim(mod, "n")->h;
  ir_expr *n2 = ir_mul(A, n, ir_int(A, KILN_INT64, 2));
  relay_var *x = var(
      "x", relay_tensor_type_new(A, KILN_FLOAT32, 2, (ir_expr *[]){n, ir_int(A, KILN_INT64, 3)}));
  relay_var *y = var("y", relay_tensor_type_new(A, KILN_FLOAT32, 1, &n2));
  relay_expr *d = op2("nn.dense", &x->h, cst(T(4, 3), -1, 1));
  set_fn(mod, "main", 2, (relay_var *[]){x, y},
         relay_tuple_new(A, 2, (relay_expr *[]){op1("nn.relu", d), op1("exp", &y->h)}));
  inputs in;
  make_inputs(mod, &in, 0);
  in.t[0].shape[0] = 4;
  in.t[1].shape[0] = 8;
  free(in.data[0]);
  free(in.data[1]);
  in.data[0] = calloc(12, sizeof(float));
  in.data[1] = calloc(8, sizeof(float));
  for (int i = 0; i < 12; i++) in.data[0][i] = (float)rnd(-1, 1);
  in.t[0].data = in.data[0];
  in.t[1].data = in.data[1];
  relay_value *want = run(mod, &in);
  ck_ok(ctx, relay_bind_shapes(mod, 1, (const char *[]){"n"}, (int64_t[]){4}));
  ck_ok(ctx, relay_verify_module(mod));
  relay_func *f = main_of(mod);
  ck_assert(relay_type_equal(A, f->params[0]->type, T(4, 3)));
  ck_assert(relay_type_equal(A, f->params[1]->type, T(8)));
  ck_assert_ptr_nonnull(ir_as_int(((relay_tensor_type *)f->params[1]->type)->shape[0]));
  ck_assert(relay_type_equal(A, relay_type_of(((relay_tuple *)f->body)->fields[0]), T(4, 4)));
  relay_value *got = run(mod, &in);
  ck_close(got, want, "BindShapes");
  relay_value_release(ctx, got);
  relay_value_release(ctx, want);
  free_inputs(&in);
  relay_func *before = main_of(mod);
  ck_assert_int_eq(relay_bind_shapes(mod, 1, (const char *[]){"m"}, (int64_t[]){4}),
                   KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "BindShapes: the module has no dimension 'm' (it has: n)");
  ck_assert_int_eq(relay_bind_shapes(mod, 1, (const char *[]){"n"}, (int64_t[]){-1}),
                   KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "dimension 'n' cannot be -1");
  ck_assert_ptr_eq(main_of(mod), before);
}
END_TEST

/* ---- Whole blocks through every pass -------------------------------------------------------- */

/* conv2d -> batch_norm -> relu -> conv2d -> batch_norm -> add(residual) -> relu, NCHW. With
 * const_weights the weights and statistics are constants, else parameters. */
static void build_resnet_block(relay_module *m, bool const_weights) {
  relay_var *x = var("x", T(2, 4, 6, 6));
  relay_var *params[12] = {x};
  int np = 1;
  relay_expr *w1, *w2;
  relay_var *bn1[4], *bn2[4];
  if (const_weights) {
    w1 = cst(T(4, 4, 3, 3), -0.5, 0.5);
    w2 = cst(T(4, 4, 3, 3), -0.5, 0.5);
  } else {
    relay_var *v1 = var("w1", T(4, 4, 3, 3)), *v2 = var("w2", T(4, 4, 3, 3));
    params[np++] = v1;
    params[np++] = v2;
    w1 = &v1->h;
    w2 = &v2->h;
    for (int i = 0; i < 4; i++) bn1[i] = params[np++] = var("bn1", T(4));
    for (int i = 0; i < 4; i++) bn2[i] = params[np++] = var("bn2", T(4));
  }
  relay_expr *h = op1("nn.relu", batch_norm(conv(&x->h, w1, 1), 4, const_weights, bn1));
  h = batch_norm(conv(h, w2, 1), 4, const_weights, bn2);
  h = op1("nn.relu", op2("add", h, &x->h));
  ck_ok(ctx, relay_module_set(m, "main", func(np, params, h)));
}

START_TEST(resnet_block_passes) {
  build_resnet_block(mod, true);
  ck_pipeline_keeps_results(mod);
  relay_func *f = main_of(mod);
  ck_assert_int_eq(count_op(f, "nn.batch_norm"), 0);
  ck_assert_int_eq(count_op(f, "multiply"), 0); /* the scales went into the weights */
  static const char *const want[] = {"nn.conv2d+add+nn.relu", "nn.conv2d+add+add+nn.relu"};
  ck_groups(f, 2, want);
}
END_TEST

START_TEST(resnet_block_weight_params) {
  build_resnet_block(mod, false);
  ck_pipeline_keeps_results(mod);
  relay_func *f = main_of(mod);
  ck_assert_int_eq(count_op(f, "nn.batch_norm"), 0);
}
END_TEST

/* Self-attention and a feed-forward layer, with dropout, layer_norm and gelu; batch is the
 * symbolic dimension n when symbolic. */
static void build_transformer_block(relay_module *m, bool symbolic) {
  enum { S = 4, D = 8, F = 16 };
  ir_expr *b = symbolic ? &relay_module_dim(m, "n")->h : ir_int(A, KILN_INT64, 2);
  ir_expr *dims[3] = {b, ir_int(A, KILN_INT64, S), ir_int(A, KILN_INT64, D)};
  relay_var *x = var("x", relay_tensor_type_new(A, KILN_FLOAT32, 3, dims));
  relay_attr *ax = relay_attr_int(A, "axis", -1); /* the bias goes along the last axis */
  relay_expr *q = op_attrs(
      "nn.bias_add", 2,
      (relay_expr *[]){op2("nn.dense", &x->h, cst(T(D, D), -0.5, 0.5)), cst(T(D), -0.1, 0.1)}, 1,
      &ax);
  relay_expr *k = op2("nn.dense", &x->h, cst(T(D, D), -0.5, 0.5));
  relay_expr *v = op2("nn.dense", &x->h, cst(T(D, D), -0.5, 0.5));
  relay_expr *scores =
      op2("multiply", op2("nn.batch_matmul", q, k), relay_scalar_f32(A, 0.35355339f));
  relay_expr *probs = op1("nn.dropout", op1("nn.softmax", scores));
  relay_attr *perm = relay_attr_ints(A, "axes", 3, (int64_t[]){0, 2, 1});
  relay_expr *vt = op_attrs("transpose", 1, &v, 1, &perm);
  relay_expr *att = op2("nn.batch_matmul", probs, vt);
  relay_expr *o = op2("add", op2("nn.dense", att, cst(T(D, D), -0.5, 0.5)), cst(T(D), -0.1, 0.1));
  relay_expr *h = op_attrs(
      "nn.layer_norm", 3,
      (relay_expr *[]){op2("add", &x->h, o), cst(T(D), 0.5, 1.5), cst(T(D), -0.5, 0.5)}, 0, NULL);
  relay_expr *ff =
      op1("gelu", op2("add", op2("nn.dense", h, cst(T(F, D), -0.5, 0.5)), cst(T(F), -0.1, 0.1)));
  ff = op2("add", op2("nn.dense", ff, cst(T(D, F), -0.5, 0.5)), cst(T(D), -0.1, 0.1));
  relay_expr *out = op_attrs("nn.layer_norm", 3,
                             (relay_expr *[]){op2("add", h, op1("nn.dropout", ff)),
                                              cst(T(D), 0.5, 1.5), cst(T(D), -0.5, 0.5)},
                             0, NULL);
  ck_ok(ctx, relay_module_set(m, "main", func(1, &x, out)));
}

START_TEST(transformer_block_passes) {
  build_transformer_block(mod, false);
  ck_pipeline_keeps_results(mod);
  relay_func *f = main_of(mod);
  ck_assert_int_eq(count_op(f, "nn.dropout"), 0);
  ck_assert_int_eq(count_op(f, "nn.layer_norm"), 2);
  ck_assert_int_eq(count_op(f, "nn.dense"), 6);
  /* q with its bias; k; the scaled scores; softmax alone (opaque); v; its transpose (an
   * injective op cannot join a dense, nor a batch_matmul take it); attention; the output
   * projection with its bias and the residual; layer_norm (opaque); the feed-forward layers
   * with their epilogues */
  static const char *const want[] = {
      "nn.dense+nn.bias_add", "nn.dense",         "nn.batch_matmul+multiply",
      "nn.softmax",           "nn.dense",         "transpose",
      "nn.batch_matmul",      "nn.dense+add+add", "nn.layer_norm",
      "nn.dense+add+gelu",    "nn.dense+add+add", "nn.layer_norm"};
  ck_groups(f, 12, want);
}
END_TEST

/* The symbolic-batch block bound to n = 2 computes what the unbound one computes for n = 2. */
START_TEST(transformer_bind_then_pipeline) {
  build_transformer_block(mod, true);
  inputs in;
  make_inputs(mod, &in, 2);
  relay_value *want = run(mod, &in);
  const relay_pass *const *pipeline;
  int np = relay_default_pipeline(&pipeline);
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  pc.nbinds = 1;
  pc.bind_names = (const char *[]){"n"};
  pc.bind_values = (int64_t[]){2};
  ck_ok(ctx, relay_run_passes(&pc, mod, 1, (const relay_pass *[]){&relay_pass_bind_shapes}));
  ck_ok(ctx, relay_run_passes(&pc, mod, np, pipeline));
  relay_value *got = run(mod, &in);
  ck_close(got, want, "BindShapes + pipeline");
  relay_value_release(ctx, got);
  relay_value_release(ctx, want);
  free_inputs(&in);
}
END_TEST

/* A chain 20000 ops deep goes through every pass (none recurses as deep as the graph) and
 * fuses into groups of at most 256 ops. */
START_TEST(deep_graph_pipeline) {
  relay_var *x = var("x", T(4));
  relay_expr *h = &x->h;
  for (int i = 0; i < 20000; i++)
    h = op2(i % 3 ? "add" : "multiply", h, relay_scalar_f32(A, i % 3 ? 0.5f : 0.9990f));
  set_fn(mod, "main", 1, &x, h);
  ck_pipeline_keeps_results(mod);
  relay_expr **order;
  int n, calls = 0;
  ck_ok(ctx, relay_post_order(ctx, main_of(mod)->body, false, &order, &n));
  for (int i = 0; i < n; i++) calls += order[i]->kind == RELAY_CALL;
  ir_free(ctx, order, sizeof *order * (size_t)n);
  ck_assert_int_eq(calls, 79); /* 78 groups of 256 and one of 32 */
}
END_TEST

/* The module the fault-injection test compiles: a symbolic batch, an unannotated let, a dead
 * let, a batch norm after a conv2d, dropout, two equal exps and softmax. */
static relay_module *build_small_model(void) {
  relay_module *m = relay_module_new(ctx);
  A = m->arena;
  seed = 7;
  ir_expr *dims[4] = {&relay_module_dim(m, "n")->h, ir_int(A, KILN_INT64, 2),
                      ir_int(A, KILN_INT64, 3), ir_int(A, KILN_INT64, 3)};
  relay_var *x = var("x", relay_tensor_type_new(A, KILN_FLOAT32, 4, dims));
  relay_var *t = var("t", NULL), *dead = var("dead", NULL);
  relay_expr *h =
      op1("nn.relu", batch_norm(conv(&x->h, cst(T(2, 2, 1, 1), -1, 1), 0), 2, true, NULL));
  relay_expr *e = op2("add", op1("exp", &t->h), op1("exp", &t->h));
  h = op2("add", h, op1("nn.dropout", op1("nn.relu", e)));
  relay_expr *body =
      relay_let_new(A, t, op2("add", &x->h, relay_scalar_f32(A, 1)),
                    relay_let_new(A, dead, op1("negative", &x->h), op1("nn.softmax", h)));
  ck_ok(ctx, relay_module_set(m, "main", func(1, &x, body)));
  return m;
}

/* Every allocation of InferType, BindShapes and the rest of the pipeline fails in turn: each
 * a clean KILN_ERR_NOMEM with nothing leaked, and the module left behind is sound: running
 * the passes again succeeds and computes what the original module computes. */
START_TEST(pipeline_fault_injection) {
  const relay_pass *const *pipeline;
  int np = relay_default_pipeline(&pipeline);
  /* InferType first: the verifier between passes wants every expression typed */
  const relay_pass *list[16] = {&relay_pass_infer_type, &relay_pass_bind_shapes};
  for (int i = 1; i < np; i++) list[i + 1] = pipeline[i];
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  pc.nbinds = 1;
  pc.bind_names = (const char *[]){"n"};
  pc.bind_values = (int64_t[]){1};
  long base = kiln_context_live_blocks(ctx);
  relay_module *m = build_small_model();
  ck_ok(ctx, relay_infer_type(m));
  inputs in;
  make_inputs(m, &in, 1);
  relay_value *want = run(m, &in);
  relay_module_free(m);
  long held = kiln_context_live_blocks(ctx); /* want's */
  long n;
  for (n = 1;; n++) {
    m = build_small_model();
    pc.nrecords = 0;
    kiln_context_fail_alloc(ctx, n);
    kiln_status st = relay_run_passes(&pc, m, np + 1, list);
    kiln_context_fail_alloc(ctx, 0);
    if (st) {
      ck_assert_msg(st == KILN_ERR_NOMEM, "allocation %ld: %s", n, kiln_context_errmsg(ctx));
      pc.nrecords = 0;
      ck_ok(ctx, relay_run_passes(&pc, m, np + 1, list));
    }
    relay_value *got = run(m, &in);
    ck_close(got, want, "after a failed allocation");
    relay_value_release(ctx, got);
    relay_module_free(m);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), held);
    if (st == KILN_OK) break;
    ck_assert_int_lt(n, 100000);
  }
  ck_assert_int_gt(n, 50);
  relay_value_release(ctx, want);
  free_inputs(&in);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), base);
  A = mod->arena;
}
END_TEST

/* ---- Golden files --------------------------------------------------------------------------- */

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)len + 1);
  ck_assert_int_eq(fread(s, 1, (size_t)len, f), (size_t)len);
  s[len] = 0;
  fclose(f);
  return s;
}

static char *print_module(relay_module *m) {
  char *s = relay_module_to_string(m);
  ck_assert_msg(s != NULL, "%s", kiln_context_errmsg(ctx));
  return s;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Each file of tests/golden/relay_pass/ holds a module, a "# passes: A,B" line naming the
 * passes to run on it (and "# bind: n=4" for BindShapes), and either the expected result after a "#
 * expected:" line (it must print exactly as the result does, and be structurally equal to it) or an
 * "# expect-error: CODE message part" line. */
static void check_golden(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/golden/relay_pass/%s", KILN_TEST_DIR, name);
  char *text = read_text(path);
  char passes[256];
  const char *pl = strstr(text, "# passes: ");
  ck_assert_msg(pl && sscanf(pl, "# passes: %255s", passes) == 1, "%s: no passes line", name);
  const relay_pass *list[16];
  int n = 0;
  for (char *tok = strtok(passes, ","); tok; tok = strtok(NULL, ",")) {
    ck_assert_msg((list[n] = relay_pass_lookup(tok)) != NULL, "%s: unknown pass %s", name, tok);
    n++;
  }
  char *expected = strstr(text, "\n# expected:\n");
  const char *err = strstr(text, "# expect-error: ");
  ck_assert_msg(expected || err, "%s: no expected result", name);
  if (expected) *expected = 0;
  relay_module *m = NULL;
  ck_ok(ctx, relay_parse_module(ctx, text, strlen(text), &m));
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  /* "# bind: n=4,m=5" gives BindShapes its values */
  const char *bind_names[8];
  int64_t bind_values[8];
  char binds[256], *names_at[8];
  const char *bl = strstr(text, "# bind: ");
  if (bl) {
    ck_assert_int_eq(sscanf(bl, "# bind: %255s", binds), 1);
    for (char *tok = strtok(binds, ","); tok && pc.nbinds < 8; tok = strtok(NULL, ",")) {
      char *eq = strchr(tok, '=');
      ck_assert_ptr_nonnull(eq);
      *eq = 0;
      names_at[pc.nbinds] = tok;
      bind_names[pc.nbinds] = names_at[pc.nbinds];
      bind_values[pc.nbinds++] = strtoll(eq + 1, NULL, 10);
    }
    pc.bind_names = bind_names;
    pc.bind_values = bind_values;
  }
  kiln_status st = relay_run_passes(&pc, m, n, list);
  if (expected) {
    ck_assert_msg(st == KILN_OK, "%s: %s", name, kiln_context_errmsg(ctx));
    relay_module *w = NULL;
    const char *wt = expected + strlen("\n# expected:\n") - 1;
    ck_ok(ctx, relay_parse_module(ctx, wt, strlen(wt), &w));
    char *got = print_module(m), *want = print_module(w);
    ck_assert_msg(strcmp(got, want) == 0, "%s: got\n%s\nwant\n%s", name, got, want);
    ck_assert_int_eq(m->nfuncs, w->nfuncs);
    for (int i = 0; i < m->nfuncs; i++) {
      ck_assert_str_eq(m->names[i], w->names[i]);
      ck_assert_msg(ir_structural_equal(ctx, &m->funcs[i]->h, &w->funcs[i]->h), "%s: @%s differs",
                    name, m->names[i]);
    }
    kiln_string_free(ctx, got);
    kiln_string_free(ctx, want);
    relay_module_free(w);
  } else {
    static const struct {
      const char *name;
      kiln_status code;
    } codes[] = {
        {"TYPE", KILN_ERR_TYPE}, {"SHAPE", KILN_ERR_SHAPE}, {"UNDEFINED", KILN_ERR_UNDEFINED}};
    char code[32], part[256];
    ck_assert_int_eq(sscanf(err, "# expect-error: %31s %255[^\n]", code, part), 2);
    kiln_status want = KILN_OK;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
      if (strcmp(codes[i].name, code) == 0) want = codes[i].code;
    ck_assert_msg(st == want && want != KILN_OK, "%s: got %s: %s", name, kiln_status_str(st),
                  kiln_context_errmsg(ctx));
    ck_errmsg_has(ctx, part);
  }
  relay_module_free(m);
  free(text);
}

START_TEST(golden_files) {
  char path[1024];
  snprintf(path, sizeof path, "%s/golden/relay_pass", KILN_TEST_DIR);
  DIR *d = opendir(path);
  ck_assert_ptr_nonnull(d);
  char *names[64];
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    size_t len = strlen(e->d_name);
    if (len > 6 && strcmp(e->d_name + len - 6, ".relay") == 0 && n < 64)
      names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof names[0], by_name);
  ck_assert_int_ge(n, 9);
  for (int i = 0; i < n; i++) {
    check_golden(names[i]);
    free(names[i]);
  }
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("relay_pass");
  TCase *tc = tcase_create("passes");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, pipeline_and_registry);
  tcase_add_test(tc, instruments);
  tcase_add_test(tc, verifier);
  tcase_add_test(tc, verifier_between_passes);
  tcase_add_test(tc, infer_let);
  tcase_add_test(tc, infer_globals);
  tcase_add_test(tc, infer_errors);
  tcase_add_test(tc, simplify_batch_norm);
  tcase_add_test(tc, simplify_keeps_layer_norm);
  tcase_add_test(tc, fold_constants);
  tcase_add_test(tc, fold_limits);
  tcase_add_test(tc, fold_scale_conv);
  tcase_add_test(tc, fold_scale_refusals);
  tcase_add_test(tc, fold_scale_dense_and_bias);
  tcase_add_test(tc, cse);
  tcase_add_test(tc, dce);
  tcase_add_test(tc, fuse_conv_epilogue);
  tcase_add_test(tc, fuse_patterns);
  tcase_add_test(tc, fuse_limits);
  tcase_add_test(tc, fuse_scopes);
  tcase_add_test(tc, fuse_tuples_and_functions);
  tcase_add_test(tc, bind_shapes);
  tcase_add_test(tc, resnet_block_passes);
  tcase_add_test(tc, resnet_block_weight_params);
  tcase_add_test(tc, transformer_block_passes);
  tcase_add_test(tc, transformer_bind_then_pipeline);
  tcase_add_test(tc, deep_graph_pipeline);
  tcase_add_test(tc, pipeline_fault_injection);
  tcase_add_test(tc, golden_files);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

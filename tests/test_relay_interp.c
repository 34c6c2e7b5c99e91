/* test_relay_interp.c: the Relay reference interpreter on small graphs built with the C
 * constructors: op chains against values computed here, tuples and projections, let,
 * closures and globals, if and recursion, symbolic dimensions bound from argument shapes and
 * their errors, sharing (a node used twice runs once), freeing after the last use, deep
 * graphs, and fault injection. */
#include <math.h>

#include "ir/base.h"
#include "relay/interp.h"
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
#define T(...) f32(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), (int64_t[]){__VA_ARGS__})

static relay_var *var(const char *name, relay_type *t) { return relay_var_new(A, name, t); }

static relay_expr *op1(const char *op, relay_expr *x) {
  return relay_call_op(A, op, 1, &x, 0, NULL);
}
static relay_expr *op2(const char *op, relay_expr *x, relay_expr *y) {
  relay_expr *args[2] = {x, y};
  return relay_call_op(A, op, 2, args, 0, NULL);
}

static relay_func *func(int n, relay_var *const *params, relay_expr *body) {
  relay_expr *f = relay_func_new(A, n, params, NULL, body, 0, NULL);
  ck_assert_msg(f != NULL, "%s", kiln_context_errmsg(ctx));
  return (relay_func *)f;
}

static void set_main(int n, relay_var *const *params, relay_expr *body) {
  ck_ok(ctx, relay_module_set(mod, "main", func(n, params, body)));
}

static relay_tensor tensor(kiln_dtype t, int ndim, const int64_t *shape, void *data) {
  relay_tensor x = {t, ndim, {0}, data, 0, false};
  for (int i = 0; i < ndim; i++) x.shape[i] = shape[i];
  return x;
}

static relay_value *run_main(int n, const relay_tensor *args) {
  relay_value *out = NULL;
  ck_ok(ctx, relay_interp_run(mod, "main", n, args, &out));
  ck_assert_ptr_nonnull(out);
  return out;
}

static void check_tensor(const relay_value *v, int ndim, const int64_t *shape, const float *want,
                         int n) {
  ck_assert_int_eq(v->kind, RELAY_VALUE_TENSOR);
  ck_assert(v->tensor.owned);
  ck_assert_int_eq(v->tensor.ndim, ndim);
  for (int i = 0; i < ndim; i++) ck_assert_int_eq(v->tensor.shape[i], shape[i]);
  ck_assert_int_eq(relay_tensor_numel(&v->tensor), n);
  for (int i = 0; i < n; i++)
    ck_assert_msg(fabs(relay_tensor_get(&v->tensor, i) - want[i]) <= 1e-5 * (1 + fabs(want[i])),
                  "element %d: %g, want %g", i, relay_tensor_get(&v->tensor, i), want[i]);
}

/* ---- Op chains ------------------------------------------------------------------------- */

/* sum(relu(dense(x, w) + b), axis 1) against loops written here. */
START_TEST(dense_chain) {
  relay_var *x = var("x", T(2, 3)), *w = var("w", T(4, 3)), *b = var("b", T(4));
  relay_attr *axis = relay_attr_ints(A, "axis", 1, (int64_t[]){1});
  relay_expr *h = op1(
      "nn.relu",
      op2("add", relay_call_op(A, "nn.dense", 2, (relay_expr *[]){&x->h, &w->h}, 0, NULL), &b->h));
  relay_expr *s = relay_call_op(A, "sum", 1, &h, 1, &axis);
  set_main(3, (relay_var *[]){x, w, b}, relay_tuple_new(A, 2, (relay_expr *[]){h, s}));
  float xd[6] = {1, -2, 3, 0.5f, 4, -1}, wd[12], bd[4] = {0.5f, -10, 1, 0};
  for (int i = 0; i < 12; i++) wd[i] = (float)(i % 5) - 2;
  relay_tensor args[3] = {tensor(KILN_FLOAT32, 2, (int64_t[]){2, 3}, xd),
                          tensor(KILN_FLOAT32, 2, (int64_t[]){4, 3}, wd),
                          tensor(KILN_FLOAT32, 1, (int64_t[]){4}, bd)};
  float want_h[8], want_s[2] = {0, 0};
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++) {
      float acc = bd[j];
      for (int k = 0; k < 3; k++) acc += xd[i * 3 + k] * wd[j * 3 + k];
      want_h[i * 4 + j] = acc > 0 ? acc : 0;
      want_s[i] += want_h[i * 4 + j];
    }
  relay_value *out = run_main(3, args);
  ck_assert_int_eq(out->kind, RELAY_VALUE_TUPLE);
  ck_assert_int_eq(out->nfields, 2);
  check_tensor(out->fields[0], 2, (int64_t[]){2, 4}, want_h, 8);
  check_tensor(out->fields[1], 1, (int64_t[]){2}, want_s, 2);
  /* the result owns its memory: the arguments can change afterwards */
  xd[0] = 100;
  check_tensor(out->fields[0], 2, (int64_t[]){2, 4}, want_h, 8);
  relay_value_release(ctx, out);
}
END_TEST

/* A result that is an argument or a constant is copied, never borrowed. */
START_TEST(result_is_copied) {
  relay_var *x = var("x", T(2));
  float c[2] = {7, 8};
  relay_expr *k = relay_const_new(A, T(2), c, sizeof c);
  set_main(1, &x, relay_tuple_new(A, 2, (relay_expr *[]){&x->h, k}));
  float xd[2] = {1, 2};
  relay_tensor arg = tensor(KILN_FLOAT32, 1, (int64_t[]){2}, xd);
  relay_value *out = run_main(1, &arg);
  ck_assert_ptr_ne(out->fields[0]->tensor.data, xd);
  ck_assert_ptr_ne(out->fields[1]->tensor.data, ((relay_const *)k)->data);
  check_tensor(out->fields[0], 1, (int64_t[]){2}, xd, 2);
  check_tensor(out->fields[1], 1, (int64_t[]){2}, c, 2);
  relay_value_release(ctx, out);
}
END_TEST

/* let t = (x * 2, x + 1); t.0 - t.1, and split (an op returning a tuple) with projections. */
START_TEST(tuples_and_let) {
  relay_var *x = var("x", T(4));
  relay_expr *two = relay_scalar_f32(A, 2), *one = relay_scalar_f32(A, 1);
  relay_expr *tup =
      relay_tuple_new(A, 2, (relay_expr *[]){op2("multiply", &x->h, two), op2("add", &x->h, one)});
  relay_var *tv = var("t", relay_type_of(tup));
  relay_attr *sections = relay_attr_int(A, "sections", 2);
  relay_expr *parts = relay_call_op(A, "split", 1, (relay_expr *[]){&x->h}, 1, &sections);
  ck_assert_msg(parts != NULL, "%s", kiln_context_errmsg(ctx));
  relay_expr *body = relay_tuple_new(
      A, 2,
      (relay_expr *[]){op2("subtract", relay_proj_new(A, &tv->h, 0), relay_proj_new(A, &tv->h, 1)),
                       op2("add", relay_proj_new(A, parts, 0), relay_proj_new(A, parts, 1))});
  set_main(1, &x, relay_let_new(A, tv, tup, body));
  float xd[4] = {1, 2, 3, 4};
  relay_tensor arg = tensor(KILN_FLOAT32, 1, (int64_t[]){4}, xd);
  relay_value *out = run_main(1, &arg);
  float want0[4] = {0, 1, 2, 3}, want1[2] = {4, 6};
  check_tensor(out->fields[0], 1, (int64_t[]){4}, want0, 4);
  check_tensor(out->fields[1], 1, (int64_t[]){2}, want1, 2);
  relay_value_release(ctx, out);
}
END_TEST

/* ---- Functions ------------------------------------------------------------------------- */

/* @double(y) = y + y; main(x) = @double(@double(x)); and a closure over a let variable. */
START_TEST(globals_and_closures) {
  relay_var *y = var("y", T(3));
  relay_func *dbl = func(1, &y, op2("add", &y->h, &y->h));
  ck_ok(ctx, relay_module_set(mod, "double", dbl));
  relay_var *x = var("x", T(3));
  relay_expr *g = relay_global_new(A, "double", dbl->type);
  relay_expr *twice =
      relay_call_fn(A, g, 1, (relay_expr *[]){relay_call_fn(A, g, 1, (relay_expr *[]){&x->h})});
  /* let c = x * 3; let f = fn (%z) { z - c }; f(twice) */
  relay_var *c = var("c", T(3)), *z = var("z", T(3));
  relay_expr *fn = relay_func_new(A, 1, &z, NULL, op2("subtract", &z->h, &c->h), 0, NULL);
  relay_var *f = var("f", relay_type_of(fn));
  relay_expr *body = relay_let_new(A, c, op2("multiply", &x->h, relay_scalar_f32(A, 3)),
                                   relay_let_new(A, f, fn, relay_call_fn(A, &f->h, 1, &twice)));
  set_main(1, &x, body);
  float xd[3] = {1, -2, 0.5f}, want[3];
  for (int i = 0; i < 3; i++) want[i] = 4 * xd[i] - 3 * xd[i];
  relay_tensor arg = tensor(KILN_FLOAT32, 1, (int64_t[]){3}, xd);
  relay_value *out = run_main(1, &arg);
  check_tensor(out, 1, (int64_t[]){3}, want, 3);
  relay_value_release(ctx, out);
}
END_TEST

/* A function value as the result: a closure holding (a copy of) what it captured. */
START_TEST(closure_result) {
  relay_var *x = var("x", T(2)), *y = var("y", T(2));
  set_main(1, &x, relay_func_new(A, 1, &y, NULL, op2("add", &x->h, &y->h), 0, NULL));
  float xd[2] = {1, 2};
  relay_tensor arg = tensor(KILN_FLOAT32, 1, (int64_t[]){2}, xd);
  relay_value *out = run_main(1, &arg);
  ck_assert_int_eq(out->kind, RELAY_VALUE_CLOSURE);
  ck_assert_int_eq(out->ncaptured, 1);
  ck_assert_ptr_eq(out->captured_vars[0], x);
  ck_assert(out->captured[0]->tensor.owned);
  ck_assert_ptr_ne(out->captured[0]->tensor.data, xd);
  check_tensor(out->captured[0], 1, (int64_t[]){2}, xd, 2);
  relay_value_release(ctx, out);
}
END_TEST

static relay_type *scalar(kiln_dtype t) { return relay_tensor_type_new(A, t, 0, NULL); }

/* main(x, flag) = if flag { relu(x) } else { negative(x) } */
START_TEST(if_branches) {
  relay_var *x = var("x", T(3)), *flag = var("flag", scalar(KILN_BOOL));
  set_main(2, (relay_var *[]){x, flag},
           relay_if_new(A, &flag->h, op1("nn.relu", &x->h), op1("negative", &x->h)));
  float xd[3] = {-1, 2, -3};
  for (int b = 0; b < 2; b++) {
    unsigned char fd = (unsigned char)b;
    relay_tensor args[2] = {tensor(KILN_FLOAT32, 1, (int64_t[]){3}, xd),
                            tensor(KILN_BOOL, 0, NULL, &fd)};
    relay_value *out = run_main(2, args);
    float want_t[3] = {0, 2, 0}, want_f[3] = {1, -2, 3};
    check_tensor(out, 1, (int64_t[]){3}, b ? want_t : want_f, 3);
    relay_value_release(ctx, out);
  }
}
END_TEST

/* @pow2(x, n) = if n > 0 { @pow2(x * 2, n - 1) } else { x }: recursion through a global. */
static void build_pow2(bool bounded) {
  relay_type *xt = T(2), *it = scalar(KILN_INT32);
  relay_var *x = var("x", xt), *n = var("n", it);
  relay_type *ft = relay_func_type_new(A, 2, (relay_type *[]){xt, it}, xt);
  relay_expr *self = relay_global_new(A, "pow2", ft);
  int32_t zero = 0, one = 1;
  relay_expr *k0 = relay_const_new(A, it, &zero, 4), *k1 = relay_const_new(A, it, &one, 4);
  relay_expr *rec = relay_call_fn(A, self, 2,
                                  (relay_expr *[]){op2("multiply", &x->h, relay_scalar_f32(A, 2)),
                                                   bounded ? op2("subtract", &n->h, k1) : &n->h});
  relay_expr *body = relay_if_new(A, op2("greater", &n->h, k0), rec, &x->h);
  relay_expr *f = relay_func_new(A, 2, (relay_var *[]){x, n}, xt, body, 0, NULL);
  ck_assert_msg(f != NULL, "%s", kiln_context_errmsg(ctx));
  ck_ok(ctx, relay_module_set(mod, "pow2", (relay_func *)f));
  relay_var *mx = var("x", xt), *mn = var("n", it);
  set_main(2, (relay_var *[]){mx, mn}, relay_call_fn(A, self, 2, (relay_expr *[]){&mx->h, &mn->h}));
}

START_TEST(recursion) {
  build_pow2(true);
  float xd[2] = {1.5f, -1};
  int32_t nd = 5;
  relay_tensor args[2] = {tensor(KILN_FLOAT32, 1, (int64_t[]){2}, xd),
                          tensor(KILN_INT32, 0, NULL, &nd)};
  relay_value *out = run_main(2, args);
  float want[2] = {48, -32};
  check_tensor(out, 1, (int64_t[]){2}, want, 2);
  relay_value_release(ctx, out);
}
END_TEST

START_TEST(unbounded_recursion) {
  build_pow2(false);
  float xd[2] = {1, 1};
  int32_t nd = 1;
  relay_tensor args[2] = {tensor(KILN_FLOAT32, 1, (int64_t[]){2}, xd),
                          tensor(KILN_INT32, 0, NULL, &nd)};
  relay_value *out = (relay_value *)1;
  ck_assert_int_eq(relay_interp_run(mod, "main", 2, args, &out), KILN_ERR_RUNTIME);
  ck_assert_ptr_null(out);
  ck_errmsg_has(ctx, "deeper than");
}
END_TEST

/* ---- Symbolic dimensions --------------------------------------------------------------- */

static ir_expr *dim(const char *name) { return &relay_module_dim(mod, name)->h; }

/* main(x: (n, 3), y: (n, 3), w: (4, 3)) = (dense(x + y, w), x): n comes from the arguments,
 * and the output shape (n, 4) is computed from it. */
static void build_symbolic(void) {
  ir_expr *n = dim("n"), *three = ir_int(A, KILN_INT64, 3);
  relay_type *xt = relay_tensor_type_new(A, KILN_FLOAT32, 2, (ir_expr *[]){n, three});
  relay_var *x = var("x", xt), *y = var("y", xt), *w = var("w", T(4, 3));
  relay_expr *d =
      relay_call_op(A, "nn.dense", 2, (relay_expr *[]){op2("add", &x->h, &y->h), &w->h}, 0, NULL);
  set_main(3, (relay_var *[]){x, y, w}, d);
}

START_TEST(symbolic_dims) {
  build_symbolic();
  for (int64_t n = 1; n <= 3; n++) {
    float xd[9], yd[9], wd[12], want[12];
    for (int i = 0; i < 9; i++) xd[i] = (float)i, yd[i] = (float)(i % 2);
    for (int i = 0; i < 12; i++) wd[i] = (float)(i % 3) - 1;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < 4; j++) {
        want[i * 4 + j] = 0;
        for (int k = 0; k < 3; k++)
          want[i * 4 + j] += (xd[i * 3 + k] + yd[i * 3 + k]) * wd[j * 3 + k];
      }
    relay_tensor args[3] = {tensor(KILN_FLOAT32, 2, (int64_t[]){n, 3}, xd),
                            tensor(KILN_FLOAT32, 2, (int64_t[]){n, 3}, yd),
                            tensor(KILN_FLOAT32, 2, (int64_t[]){4, 3}, wd)};
    relay_value *out = run_main(3, args);
    check_tensor(out, 2, (int64_t[]){n, 4}, want, (int)n * 4);
    relay_value_release(ctx, out);
  }
}
END_TEST

/* Shapes that disagree with the parameters' types: each a clean error naming the parameter. */
START_TEST(argument_errors) {
  build_symbolic();
  float d[64] = {0};
  int32_t id[64] = {0};
  struct {
    relay_tensor x, y, w;
    kiln_status code;
    const char *msg;
  } cases[] = {
      {tensor(KILN_FLOAT32, 2, (int64_t[]){2, 3}, d), tensor(KILN_FLOAT32, 2, (int64_t[]){3, 3}, d),
       tensor(KILN_FLOAT32, 2, (int64_t[]){4, 3}, d), KILN_ERR_SHAPE,
       "%y: dimension 0 (n) is 3, but n is 2"},
      {tensor(KILN_FLOAT32, 2, (int64_t[]){2, 4}, d), tensor(KILN_FLOAT32, 2, (int64_t[]){2, 4}, d),
       tensor(KILN_FLOAT32, 2, (int64_t[]){4, 3}, d), KILN_ERR_SHAPE,
       "%x: dimension 1 is 3, the argument has 4"},
      {tensor(KILN_FLOAT32, 2, (int64_t[]){2, 3}, d), tensor(KILN_FLOAT32, 2, (int64_t[]){2, 3}, d),
       tensor(KILN_FLOAT32, 1, (int64_t[]){12}, d), KILN_ERR_SHAPE,
       "%w has rank 2, the argument has rank 1"},
      {tensor(KILN_FLOAT32, 2, (int64_t[]){2, 3}, d), tensor(KILN_INT32, 2, (int64_t[]){2, 3}, id),
       tensor(KILN_FLOAT32, 2, (int64_t[]){4, 3}, d), KILN_ERR_TYPE,
       "%y expects a float32 tensor, the argument is int32"},
      {tensor(KILN_FLOAT32, 2, (int64_t[]){2, 3}, d),
       tensor(KILN_FLOAT32, 2, (int64_t[]){2, 3}, NULL),
       tensor(KILN_FLOAT32, 2, (int64_t[]){4, 3}, d), KILN_ERR_MISUSE, "not a valid tensor"},
  };
  long base = kiln_context_live_blocks(ctx);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    relay_tensor args[3] = {cases[i].x, cases[i].y, cases[i].w};
    relay_value *out = (relay_value *)1;
    ck_assert_int_eq(relay_interp_run(mod, "main", 3, args, &out), cases[i].code);
    ck_assert_ptr_null(out);
    ck_errmsg_has(ctx, cases[i].msg);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), base);
  }
  relay_value *out;
  relay_tensor args[3] = {cases[0].x, cases[0].x, cases[0].w};
  ck_assert_int_eq(relay_interp_run(mod, "main", 2, args, &out), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "takes 3 arguments, not 2");
  ck_assert_int_eq(relay_interp_run(mod, "nope", 3, args, &out), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "no function @nope");
}
END_TEST

/* A parameter whose dimension is an expression of another's: checked after binding. */
START_TEST(dimension_expressions) {
  ir_expr *n = dim("n");
  relay_type *xt = relay_tensor_type_new(A, KILN_FLOAT32, 1, &n);
  relay_type *yt = relay_tensor_type_new(A, KILN_FLOAT32, 1,
                                         (ir_expr *[]){ir_mul(A, n, ir_int(A, KILN_INT64, 2))});
  relay_var *x = var("x", yt), *y = var("y", xt);
  /* y comes second but binds n for x's n * 2 */
  relay_attr *axis = relay_attr_ints(A, "axis", 0, NULL);
  set_main(2, (relay_var *[]){x, y},
           relay_tuple_new(
               A, 2,
               (relay_expr *[]){relay_call_op(A, "sum", 1, (relay_expr *[]){&x->h}, 1, &axis),
                                op1("negative", &y->h)}));
  float xd[6] = {1, 2, 3, 4, 5, 6}, yd[3] = {1, 2, 3};
  relay_tensor ok[2] = {tensor(KILN_FLOAT32, 1, (int64_t[]){6}, xd),
                        tensor(KILN_FLOAT32, 1, (int64_t[]){3}, yd)};
  relay_value *out = run_main(2, ok);
  float want0[1] = {21}, want1[3] = {-1, -2, -3};
  check_tensor(out->fields[0], 0, NULL, want0, 1);
  check_tensor(out->fields[1], 1, (int64_t[]){3}, want1, 3);
  relay_value_release(ctx, out);
  relay_tensor bad[2] = {tensor(KILN_FLOAT32, 1, (int64_t[]){5}, xd),
                         tensor(KILN_FLOAT32, 1, (int64_t[]){3}, yd)};
  ck_assert_int_eq(relay_interp_run(mod, "main", 2, bad, &out), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "%x: dimension 0 must be 6");
}
END_TEST

/* Errors that come from the module rather than the arguments. */
START_TEST(module_errors) {
  /* a dimension only an expression mentions: nothing binds n */
  ir_expr *n2 = ir_mul(A, dim("n"), ir_int(A, KILN_INT64, 2));
  relay_var *x = var("x", relay_tensor_type_new(A, KILN_FLOAT32, 1, &n2));
  set_main(1, &x, op1("negative", &x->h));
  float d[6] = {0};
  relay_tensor arg = tensor(KILN_FLOAT32, 1, (int64_t[]){6}, d);
  relay_value *out = (relay_value *)1;
  ck_assert_int_eq(relay_interp_run(mod, "main", 1, &arg, &out), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "dimension 'n' has no value (no argument shape binds it)");
  ck_assert_ptr_null(out);
  /* a call left without a type (a let variable nobody annotated) */
  relay_var *y = var("y", T(2)), *u = var("u", NULL);
  set_main(1, &y, relay_let_new(A, u, op1("nn.relu", &y->h), op1("exp", &u->h)));
  relay_tensor arg2 = tensor(KILN_FLOAT32, 1, (int64_t[]){2}, d);
  ck_assert_int_eq(relay_interp_run(mod, "main", 1, &arg2, &out), KILN_ERR_TYPE);
  ck_errmsg_has(ctx, "the call of exp has no type (run InferType)");
  /* a tuple parameter given a tensor */
  relay_var *t = var("t", relay_tuple_type_new(A, 2, (relay_type *[]){T(2), T(2)}));
  set_main(1, &t, relay_proj_new(A, &t->h, 0));
  ck_assert_int_eq(relay_interp_run(mod, "main", 1, &arg2, &out), KILN_ERR_TYPE);
  ck_errmsg_has(ctx, "parameter %t expects a tuple of 2 fields");
  /* a result too large to allocate */
  relay_attr *shape = relay_attr_ints(A, "shape", 2, (int64_t[]){1 << 21, 1 << 21});
  relay_var *z = var("z", T(1));
  set_main(1, &z, relay_call_op(A, "broadcast_to", 1, (relay_expr *[]){&z->h}, 1, &shape));
  relay_tensor arg3 = tensor(KILN_FLOAT32, 1, (int64_t[]){1}, d);
  ck_assert_int_eq(relay_interp_run(mod, "main", 1, &arg3, &out), KILN_ERR_RUNTIME);
  ck_errmsg_has(ctx, "too large to allocate");
}
END_TEST

/* ---- Evaluation order and memory ------------------------------------------------------- */

/* An allocator that tracks live bytes and how many blocks of one size were allocated. */
typedef struct tracker {
  size_t live, peak, watch;
  int watched;
} tracker;

static void *track_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  tracker *t = ud;
  if (p) t->live -= osize;
  if (nsize == 0) {
    free(p);
    return NULL;
  }
  void *q = realloc(p, nsize);
  if (!q) return NULL;
  t->live += nsize;
  if (t->live > t->peak) t->peak = t->live;
  if (!p && nsize == t->watch) t->watched++;
  return q;
}

/* A chain of 40 ops on a 1 MB tensor: intermediates are freed after their last use, so the
 * peak stays a few tensors; and a node used twice (the exp) is computed once. */
START_TEST(frees_after_last_use) {
  tracker tr = {0, 0, 0, 0};
  kiln_context *c2;
  ck_assert_int_eq(kiln_context_new_with_allocator(track_alloc, &tr, &c2), KILN_OK);
  relay_module *m = relay_module_new(c2);
  ir_arena *a = m->arena;
  enum { N = 1 << 18 };
  relay_type *t = relay_tensor_type_const(a, KILN_FLOAT32, 1, (int64_t[]){N});
  relay_var *x = relay_var_new(a, "x", t);
  relay_expr *h = &x->h;
  for (int i = 0; i < 40; i++) h = relay_call_op(a, i % 2 ? "nn.relu" : "negative", 1, &h, 0, NULL);
  relay_expr *e = relay_call_op(a, "exp", 1, &h, 0, NULL);
  relay_expr *sum = relay_call_op(a, "add", 2, (relay_expr *[]){e, e}, 0, NULL);
  ck_ok(c2,
        relay_module_set(m, "main", (relay_func *)relay_func_new(a, 1, &x, NULL, sum, 0, NULL)));
  float *xd = calloc(N, sizeof(float));
  for (int i = 0; i < N; i++) xd[i] = (float)(i % 7) - 3;
  relay_tensor arg = tensor(KILN_FLOAT32, 1, (int64_t[]){N}, xd);
  size_t before = tr.live;
  tr.peak = before;
  tr.watch = N * sizeof(float);
  tr.watched = 0;
  relay_value *out;
  ck_ok(c2, relay_interp_run(m, "main", 1, &arg, &out));
  /* 40 chain ops + exp + add, each one output of N floats */
  ck_assert_int_eq(tr.watched, 42);
  ck_assert_msg(tr.peak - before < 4 * tr.watch, "peak %zu bytes for tensors of %zu",
                tr.peak - before, tr.watch);
  /* relu(-relu(-v)) is 0 for every v, so the chain ends in zeros and exp(0) + exp(0) = 2 */
  for (int i = 0; i < N; i += 4099) ck_assert_float_eq(((float *)out->tensor.data)[i], 2.0f);
  relay_value_release(c2, out);
  relay_module_free(m);
  ck_assert_int_eq(kiln_context_live_blocks(c2), 0);
  kiln_context_free(c2);
  free(xd);
}
END_TEST

/* A chain 20000 ops deep: the interpreter walks it without C recursion. */
START_TEST(deep_graph) {
  relay_var *x = var("x", T(2));
  relay_expr *h = &x->h;
  for (int i = 0; i < 20000; i++) h = op2("add", h, relay_scalar_f32(A, 1));
  set_main(1, &x, h);
  float xd[2] = {0, -5};
  relay_tensor arg = tensor(KILN_FLOAT32, 1, (int64_t[]){2}, xd);
  relay_value *out = run_main(1, &arg);
  float want[2] = {20000, 19995};
  check_tensor(out, 1, (int64_t[]){2}, want, 2);
  relay_value_release(ctx, out);
}
END_TEST

/* relay_interp_eval on a closed expression (FoldConstant's use), and its errors. */
START_TEST(eval_closed) {
  float a[3] = {1, 2, 3}, b[3] = {10, 20, 30};
  relay_expr *e =
      op2("multiply", relay_const_new(A, T(3), a, sizeof a), relay_const_new(A, T(3), b, sizeof b));
  relay_value *v;
  ck_ok(ctx, relay_interp_eval(ctx, NULL, e, &v));
  float want[3] = {10, 40, 90};
  check_tensor(v, 1, (int64_t[]){3}, want, 3);
  relay_value_release(ctx, v);
  relay_var *x = var("x", T(3));
  ck_assert_int_eq(relay_interp_eval(ctx, NULL, op1("negative", &x->h), &v), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "variable %x has no value");
  ck_assert_ptr_null(v);
  ck_assert_int_eq(relay_interp_eval(ctx, NULL, relay_global_new(A, "g", NULL), &v),
                   KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "no function @g");
}
END_TEST

/* A kernel's runtime error (integer division by zero) comes back cleanly. */
START_TEST(kernel_error) {
  relay_type *it = relay_tensor_type_const(A, KILN_INT32, 1, (int64_t[]){2});
  relay_var *x = var("x", it), *y = var("y", it);
  set_main(2, (relay_var *[]){x, y}, op1("negative", op2("divide", op1("negative", &x->h), &y->h)));
  int32_t xd[2] = {4, 5}, yd[2] = {2, 0};
  relay_tensor args[2] = {tensor(KILN_INT32, 1, (int64_t[]){2}, xd),
                          tensor(KILN_INT32, 1, (int64_t[]){2}, yd)};
  long base = kiln_context_live_blocks(ctx);
  relay_value *out;
  ck_assert_int_eq(relay_interp_run(mod, "main", 2, args, &out), KILN_ERR_RUNTIME);
  ck_errmsg_has(ctx, "division by zero");
  ck_assert_int_eq(kiln_context_live_blocks(ctx), base);
}
END_TEST

/* Every allocation of a run fails in turn: a clean KILN_ERR_NOMEM and nothing leaked, until
 * the run succeeds with the right result. */
START_TEST(fault_injection) {
  build_pow2(true);
  relay_var *y = var("y", T(2));
  relay_func *g = (relay_func *)relay_module_get(mod, "main");
  /* main2: a tuple, a closure, a let and split around the recursive call */
  relay_expr *call = relay_call_fn(
      A, relay_global_new(A, "pow2", ((relay_func *)relay_module_get(mod, "pow2"))->type), 2,
      (relay_expr *[]){&g->params[0]->h, &g->params[1]->h});
  relay_expr *fn = relay_func_new(A, 1, &y, NULL, op2("add", &y->h, &g->params[0]->h), 0, NULL);
  relay_var *f = var("f", relay_type_of(fn));
  relay_attr *sections = relay_attr_int(A, "sections", 2);
  relay_expr *parts = relay_call_op(A, "split", 1, &call, 1, &sections);
  relay_expr *body = relay_let_new(
      A, f, fn,
      relay_tuple_new(
          A, 2, (relay_expr *[]){relay_call_fn(A, &f->h, 1, &call), relay_proj_new(A, parts, 1)}));
  ck_ok(ctx, relay_module_set(mod, "main", func(2, g->params, body)));
  float xd[2] = {1, 2};
  int32_t nd = 3;
  relay_tensor args[2] = {tensor(KILN_FLOAT32, 1, (int64_t[]){2}, xd),
                          tensor(KILN_INT32, 0, NULL, &nd)};
  long base = kiln_context_live_blocks(ctx);
  relay_value *out = NULL;
  long n;
  for (n = 1;; n++) {
    kiln_context_fail_alloc(ctx, n);
    kiln_status st = relay_interp_run(mod, "main", 2, args, &out);
    kiln_context_fail_alloc(ctx, 0);
    if (st == KILN_OK) break;
    ck_assert_msg(st == KILN_ERR_NOMEM, "allocation %ld: %s", n, kiln_context_errmsg(ctx));
    ck_assert_ptr_null(out);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), base);
    ck_assert_int_lt(n, 100000);
  }
  ck_assert_int_gt(n, 20);
  float want0[2] = {9, 18}, want1[1] = {16};
  check_tensor(out->fields[0], 1, (int64_t[]){2}, want0, 2);
  check_tensor(out->fields[1], 1, (int64_t[]){1}, want1, 1);
  relay_value_release(ctx, out);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), base);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("relay_interp");
  TCase *tc = tcase_create("interp");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, dense_chain);
  tcase_add_test(tc, result_is_copied);
  tcase_add_test(tc, tuples_and_let);
  tcase_add_test(tc, globals_and_closures);
  tcase_add_test(tc, closure_result);
  tcase_add_test(tc, if_branches);
  tcase_add_test(tc, recursion);
  tcase_add_test(tc, unbounded_recursion);
  tcase_add_test(tc, symbolic_dims);
  tcase_add_test(tc, argument_errors);
  tcase_add_test(tc, dimension_expressions);
  tcase_add_test(tc, module_errors);
  tcase_add_test(tc, frees_after_last_use);
  tcase_add_test(tc, deep_graph);
  tcase_add_test(tc, eval_closed);
  tcase_add_test(tc, kernel_error);
  tcase_add_test(tc, fault_injection);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

/* test_relay.c: the graph IR core: types, constructors with eager type inference and their
 * errors, attribute normalization, structural equality/hash and deep copy of graphs (through
 * the generic ir/ machinery), memoized mutation of shared subexpressions, modules. */
#include "relay/op.h"
#include "test_util.h"

static kiln_context *ctx;
static ir_arena *A;

static void setup(void) {
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  A = ir_arena_new(ctx);
}

static void teardown(void) {
  ir_arena_free(A);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}

static relay_type *tt(kiln_dtype t, int nd, const int64_t *shape) {
  return relay_tensor_type_const(A, t, nd, shape);
}

/* A type's printed form, in a static buffer. */
static const char *type_str(const relay_type *t) {
  static char buf[256];
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  relay_type_print(&sb, t);
  snprintf(buf, sizeof buf, "%s", sb.data ? sb.data : "");
  ir_sb_free(&sb);
  return buf;
}

/* A variable as an expression; NULL stays NULL (constructors then fail cleanly). */
#define VX(v) ((v) ? &(v)->h : NULL)

/* dense(x, w) + b -> relu, with x [batch, 8]. */
static relay_expr *mlp(relay_var **px, relay_var **pw, ir_expr *batch) {
  ir_expr *xs[2] = {batch, ir_int(A, KILN_INT64, 8)};
  relay_var *x = relay_var_new(A, "x", relay_tensor_type_new(A, KILN_FLOAT32, 2, xs));
  relay_var *w = relay_var_new(A, "w", tt(KILN_FLOAT32, 2, (int64_t[]){4, 8}));
  relay_expr *d = relay_call_op(A, "nn.dense", 2, (relay_expr *[]){VX(x), VX(w)}, 0, NULL);
  relay_expr *b = relay_const_new(A, tt(KILN_FLOAT32, 1, (int64_t[]){4}),
                                  (float[]){1, 2, 3, 4}, 16);
  relay_expr *r = relay_call_op(A, "nn.relu", 1,
                                (relay_expr *[]){relay_call_op(A, "add", 2, (relay_expr *[]){d, b}, 0, NULL)},
                                0, NULL);
  *px = x;
  *pw = w;
  return r;
}

START_TEST(test_types_and_printing) {
  relay_type *t = tt(KILN_FLOAT32, 4, (int64_t[]){1, 3, 224, 224});
  ck_assert_ptr_nonnull(t);
  ck_assert_str_eq(type_str(t), "Tensor[(1, 3, 224, 224), float32]");
  ck_assert_str_eq(type_str(tt(KILN_INT64, 1, (int64_t[]){5})), "Tensor[(5,), int64]");
  ck_assert_int_eq(relay_type_numel(t), 150528);
  relay_type *tup = relay_tuple_type_new(A, 2, (relay_type *[]){t, t});
  ck_assert_str_eq(type_str(tup), "(Tensor[(1, 3, 224, 224), float32], Tensor[(1, 3, 224, 224), float32])");
  ck_assert(relay_type_equal(A, t, tt(KILN_FLOAT32, 4, (int64_t[]){1, 3, 224, 224})));
  ck_assert(!relay_type_equal(A, t, tt(KILN_FLOAT32, 4, (int64_t[]){1, 3, 224, 225})));
  ck_assert(!relay_type_equal(A, t, tt(KILN_FLOAT16, 4, (int64_t[]){1, 3, 224, 224})));
  /* a dimension must be an int64 expression */
  ck_assert_ptr_null(relay_tensor_type_new(A, KILN_FLOAT32, 1, (ir_expr *[]){ir_i32(A, 3)}));
  ck_errmsg_has(ctx, "int64");
  ck_assert_ptr_null(relay_tensor_type_const(A, KILN_FLOAT32, 9, (int64_t[9]){0}));
}
END_TEST

START_TEST(test_eager_inference) {
  relay_var *x, *w, *xs, *ws;
  relay_expr *r = mlp(&x, &w, ir_int(A, KILN_INT64, 2));
  ck_assert_ptr_nonnull(r);
  ck_assert_str_eq(type_str(relay_type_of(r)), "Tensor[(2, 4), float32]");
  /* symbolic batch flows through */
  relay_module *m = relay_module_new(ctx);
  ir_var *n = relay_module_dim(m, "n");
  ck_assert_ptr_eq(relay_module_dim(m, "n"), n);
  relay_expr *rs = mlp(&xs, &ws, &n->h);
  ck_assert_str_eq(type_str(relay_type_of(rs)), "Tensor[(n, 4), float32]");
  relay_module_free(m);
  /* a variable without annotation leaves its users untyped */
  relay_var *u = relay_var_new(A, "u", NULL);
  relay_expr *e = relay_call_op(A, "nn.relu", 1, (relay_expr *[]){&u->h}, 0, NULL);
  ck_assert_ptr_nonnull(e);
  ck_assert_ptr_null(relay_type_of(e));
  /* let gives the body's type; a tuple types its fields; projection picks one */
  relay_var *v = relay_var_new(A, "v", relay_type_of(r));
  relay_expr *let = relay_let_new(A, v, r, relay_tuple_new(A, 2, (relay_expr *[]){&v->h, r}));
  ck_assert_str_eq(type_str(relay_type_of(let)), "(Tensor[(2, 4), float32], Tensor[(2, 4), float32])");
  relay_expr *p = relay_proj_new(A, let, 1);
  ck_assert_str_eq(type_str(relay_type_of(p)), "Tensor[(2, 4), float32]");
  /* a function and a call of it */
  relay_expr *f = relay_func_new(A, 2, (relay_var *[]){x, w}, NULL, r, 0, NULL);
  ck_assert_str_eq(type_str(relay_type_of(f)),
                   "fn (Tensor[(2, 8), float32], Tensor[(4, 8), float32]) -> Tensor[(2, 4), float32]");
  relay_var *a1 = relay_var_new(A, "a1", tt(KILN_FLOAT32, 2, (int64_t[]){2, 8}));
  relay_var *a2 = relay_var_new(A, "a2", tt(KILN_FLOAT32, 2, (int64_t[]){4, 8}));
  relay_expr *call = relay_call_fn(A, f, 2, (relay_expr *[]){&a1->h, &a2->h});
  ck_assert_str_eq(type_str(relay_type_of(call)), "Tensor[(2, 4), float32]");
}
END_TEST

START_TEST(test_type_errors) {
  relay_var *a = relay_var_new(A, "a", tt(KILN_FLOAT32, 2, (int64_t[]){2, 3}));
  relay_var *b = relay_var_new(A, "b", tt(KILN_FLOAT32, 2, (int64_t[]){4, 5}));
  relay_var *i = relay_var_new(A, "i", tt(KILN_INT32, 2, (int64_t[]){2, 3}));
  ck_assert_ptr_null(relay_call_op(A, "add", 2, (relay_expr *[]){&a->h, &b->h}, 0, NULL));
  ck_assert_int_eq(kiln_context_errcode(ctx), KILN_ERR_TYPE);
  ck_errmsg_has(ctx, "add: shapes (2, 3) and (4, 5) do not broadcast");
  ck_assert_ptr_null(relay_call_op(A, "add", 2, (relay_expr *[]){&a->h, &i->h}, 0, NULL));
  ck_errmsg_has(ctx, "add: operand dtypes differ (float32 vs int32)");
  ck_assert_ptr_null(relay_call_op(A, "add", 1, (relay_expr *[]){&a->h}, 0, NULL));
  ck_errmsg_has(ctx, "add takes 2 arguments, not 1");
  ck_assert_ptr_null(relay_call_op(A, "no.such.op", 1, (relay_expr *[]){&a->h}, 0, NULL));
  ck_assert_int_eq(kiln_context_errcode(ctx), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "unknown op 'no.such.op'");
  ck_assert_ptr_null(relay_call_op(A, "sum", 1, (relay_expr *[]){&a->h}, 1,
                                   (relay_attr *[]){relay_attr_int(A, "bogus", 1)}));
  ck_errmsg_has(ctx, "sum has no attribute 'bogus'");
  ck_assert_ptr_null(relay_call_op(A, "sum", 1, (relay_expr *[]){&a->h}, 1,
                                   (relay_attr *[]){relay_attr_str(A, "axis", "x")}));
  ck_errmsg_has(ctx, "attribute 'axis' must be a list of integers");
  ck_assert_ptr_null(relay_call_op(A, "sum", 1, (relay_expr *[]){&a->h}, 1,
                                   (relay_attr *[]){relay_attr_ints(A, "axis", 1, (int64_t[]){2})}));
  ck_errmsg_has(ctx, "axis 2 is out of range for a tensor of rank 2");
  ck_assert_ptr_null(relay_proj_new(A, &a->h, 0));
  ck_errmsg_has(ctx, "projection (.N) needs a tuple");
  relay_expr *tup = relay_tuple_new(A, 1, (relay_expr *[]){&a->h});
  ck_assert_ptr_null(relay_proj_new(A, tup, 1));
  ck_errmsg_has(ctx, "projection .1 of a tuple of 1 fields");
  /* a let whose annotation disagrees with its value */
  relay_var *v = relay_var_new(A, "v", tt(KILN_FLOAT32, 1, (int64_t[]){6}));
  ck_assert_ptr_null(relay_let_new(A, v, &a->h, &v->h));
  ck_errmsg_has(ctx, "let %v: the value's type does not match the annotation: expected Tensor[(6,), float32], got Tensor[(2, 3), float32]");
  /* calling a function with a wrong argument type */
  relay_expr *f = relay_func_new(A, 1, (relay_var *[]){a}, NULL, &a->h, 0, NULL);
  ck_assert_ptr_null(relay_call_fn(A, f, 1, (relay_expr *[]){&b->h}));
  ck_errmsg_has(ctx, "argument 0 of the call: expected Tensor[(2, 3), float32], got Tensor[(4, 5), float32]");
  ck_assert_ptr_null(relay_call_fn(A, f, 0, NULL));
  ck_errmsg_has(ctx, "the function takes 1 arguments, not 0");
  /* constants must match their type's size */
  ck_assert_ptr_null(relay_const_new(A, tt(KILN_FLOAT32, 1, (int64_t[]){3}), (float[]){1, 2}, 8));
  ck_assert_int_eq(kiln_context_errcode(ctx), KILN_ERR_SHAPE);
  /* if needs a bool scalar */
  ck_assert_ptr_null(relay_if_new(A, &a->h, &a->h, &a->h));
  ck_errmsg_has(ctx, "the condition of if must be a bool scalar");
}
END_TEST

START_TEST(test_attr_normalization) {
  relay_var *a = relay_var_new(A, "a", tt(KILN_FLOAT32, 2, (int64_t[]){2, 3}));
  relay_call *s1 = relay_as_call(relay_call_op(A, "sum", 1, (relay_expr *[]){&a->h}, 0, NULL));
  relay_call *s2 = relay_as_call(relay_call_op(
      A, "sum", 1, (relay_expr *[]){&a->h}, 2,
      (relay_attr *[]){relay_attr_int(A, "keepdims", 0), relay_attr_ints(A, "axis", 0, NULL)}));
  ck_assert_ptr_nonnull(s1);
  ck_assert_ptr_nonnull(s2);
  ck_assert_int_eq(s1->nattrs, 2);
  ck_assert_str_eq(s1->attrs[0]->key, "axis"); /* schema order whatever the given order */
  ck_assert_str_eq(s2->attrs[0]->key, "axis");
  ck_assert(ir_structural_equal(ctx, &s1->h, &s2->h)); /* defaults spelled out or not: equal */
  relay_call *s3 = relay_as_call(relay_call_op(A, "sum", 1, (relay_expr *[]){&a->h}, 1,
                                               (relay_attr *[]){relay_attr_int(A, "keepdims", 1)}));
  ck_assert(!ir_structural_equal(ctx, &s1->h, &s3->h));
  ck_assert_str_eq(type_str(s3->type), "Tensor[(1, 1), float32]");
  const relay_attr *k = relay_attr_find(s3->nattrs, s3->attrs, "keepdims");
  ck_assert_int_eq(k->i, 1);
  ck_assert_ptr_null(relay_attr_find(s3->nattrs, s3->attrs, "nope"));
}
END_TEST

START_TEST(test_structural_equal_and_hash) {
  relay_var *x1, *w1, *x2, *w2;
  relay_expr *g1 = mlp(&x1, &w1, ir_int(A, KILN_INT64, 2));
  relay_expr *g2 = mlp(&x2, &w2, ir_int(A, KILN_INT64, 2));
  relay_expr *f1 = relay_func_new(A, 2, (relay_var *[]){x1, w1}, NULL, g1, 0, NULL);
  relay_expr *f2 = relay_func_new(A, 2, (relay_var *[]){x2, w2}, NULL, g2, 0, NULL);
  /* parameters swapped: a different function */
  relay_expr *f3 = relay_func_new(A, 2, (relay_var *[]){w2, x2}, NULL, g2, 0, NULL);
  ck_assert(ir_structural_equal(ctx, f1, f2));
  ck_assert(!ir_structural_equal(ctx, f1, f3));
  uint64_t h1, h2, h3;
  ck_ok(ctx, ir_structural_hash(ctx, f1, &h1));
  ck_ok(ctx, ir_structural_hash(ctx, f2, &h2));
  ck_ok(ctx, ir_structural_hash(ctx, f3, &h3));
  ck_assert_uint_eq(h1, h2);
  ck_assert_uint_ne(h1, h3);
  /* constants compare by their bytes */
  relay_type *t = tt(KILN_FLOAT32, 1, (int64_t[]){2});
  ck_assert(ir_structural_equal(ctx, relay_const_new(A, t, (float[]){1, 2}, 8),
                                relay_const_new(A, t, (float[]){1, 2}, 8)));
  ck_assert(!ir_structural_equal(ctx, relay_const_new(A, t, (float[]){1, 2}, 8),
                                 relay_const_new(A, t, (float[]){1, 3}, 8)));
}
END_TEST

/* A chain of 64 diamonds (each node used twice by the next, as residual blocks are): 2^64
 * paths, so equality must visit each shared node once, not once per path. */
static relay_expr *diamonds(relay_var *x, int n) {
  relay_expr *e = &x->h;
  for (int i = 0; i < n; i++)
    e = relay_call_op(A, i % 2 ? "add" : "multiply", 2, (relay_expr *[]){e, e}, 0, NULL);
  return e;
}

START_TEST(test_equality_of_shared_subexpressions) {
  relay_type *t = tt(KILN_FLOAT32, 1, (int64_t[]){4});
  relay_var *x = relay_var_new(A, "x", t), *y = relay_var_new(A, "y", t);
  relay_expr *f = relay_func_new(A, 1, &x, NULL, diamonds(x, 64), 0, NULL);
  relay_expr *g = relay_func_new(A, 1, &y, NULL, diamonds(y, 64), 0, NULL);
  ck_assert(ir_structural_equal(ctx, f, g));
  relay_expr *h = relay_func_new(A, 1, &y, NULL, diamonds(y, 63), 0, NULL);
  ck_assert(!ir_structural_equal(ctx, f, h));
  /* a DAG equals its partial unfolding: add(e, e) against add(e, copy of e) */
  relay_call *last = relay_as_call(relay_as_func(g)->body);
  relay_expr *unshared = relay_call_op(A, "add", 2, (relay_expr *[]){last->args[0], diamonds(y, 63)}, 0, NULL);
  ck_assert(ir_structural_equal(ctx, &last->h, unshared));
}
END_TEST

START_TEST(test_deep_copy) {
  ir_arena *src = ir_arena_new(ctx), *saved = A;
  A = src;
  relay_var *x, *w;
  relay_expr *g = mlp(&x, &w, ir_int(A, KILN_INT64, 2));
  relay_expr *f = relay_func_new(A, 2, (relay_var *[]){x, w}, NULL, g, 0, NULL);
  A = saved;
  relay_func *c = relay_as_func(ir_deep_copy(A, f));
  ck_assert_ptr_nonnull(c);
  ck_assert(ir_structural_equal(ctx, f, &c->h));
  ir_arena_free(src); /* the copy must not point into it (ASan checks) */
  uint64_t h;
  ck_ok(ctx, ir_structural_hash(ctx, &c->h, &h));
  ck_assert_str_eq(type_str(c->type), "fn (Tensor[(2, 8), float32], Tensor[(4, 8), float32]) -> Tensor[(2, 4), float32]");
  ck_assert_str_eq(c->params[0]->name, "x");
}
END_TEST

/* Binds every symbolic dimension to 3 (a tiny BindShapes), rewriting shared nodes once. */
typedef struct {
  ir_var *dim;
  ir_expr *value;
  ir_analyzer *an;
} bind_state;

static ir_node *bind_visit(ir_mutator *m, ir_node *n) {
  bind_state *s = m->ud;
  if (n == &s->dim->h) return s->value;
  ir_node *r = ir_mutate_children(m, n);
  /* dimensions are simplified after substitution: n * 1 + 0 -> 3 */
  if (r && r != n && ir_is_expr(r)) return ir_simplify_expr(s->an, r);
  return r;
}

START_TEST(test_memo_mutator_keeps_sharing) {
  relay_module *mod = relay_module_new(ctx);
  ir_var *n = relay_module_dim(mod, "n");
  relay_var *x, *w;
  relay_expr *r = mlp(&x, &w, &n->h);
  /* share r: tuple(r, r) */
  relay_expr *body = relay_tuple_new(A, 2, (relay_expr *[]){r, r});
  relay_expr *f = relay_func_new(A, 2, (relay_var *[]){x, w}, NULL, body, 0, NULL);
  ck_assert_ptr_nonnull(f);
  ir_ptrmap memo;
  ir_ptrmap_init(&memo, ctx);
  bind_state s = {n, ir_int(A, KILN_INT64, 3), ir_analyzer_new(A)};
  ir_mutator m = {A, bind_visit, &s, &memo, true};
  relay_func *g = relay_as_func(ir_mutate(&m, f));
  ir_ptrmap_free(&memo);
  ir_analyzer_free(s.an);
  ck_assert_ptr_nonnull(g);
  ck_assert_str_eq(type_str(g->type),
                   "fn (Tensor[(3, 8), float32], Tensor[(4, 8), float32]) -> "
                   "(Tensor[(3, 4), float32], Tensor[(3, 4), float32])");
  relay_tuple *t = relay_as_tuple(g->body);
  ck_assert_ptr_eq(t->fields[0], t->fields[1]); /* still one node */
  /* the parameter and its use are one variable object */
  relay_call *relu = relay_as_call(t->fields[0]);
  relay_call *addc = relay_as_call(relu->args[0]);
  relay_call *dense = relay_as_call(addc->args[0]);
  ck_assert_ptr_eq(dense->args[0], &g->params[0]->h);
  ck_assert_ptr_ne(g->params[0], x);
  relay_module_free(mod);
}
END_TEST

START_TEST(test_module) {
  relay_module *m = relay_module_new(ctx);
  ir_arena *saved = A;
  A = m->arena;
  relay_var *x, *w;
  relay_expr *g = mlp(&x, &w, ir_int(A, KILN_INT64, 2));
  relay_func *f = relay_as_func(relay_func_new(A, 2, (relay_var *[]){x, w}, NULL, g, 0, NULL));
  ck_ok(ctx, relay_module_set(m, "main", f));
  ck_ok(ctx, relay_module_set(m, "other", f));
  ck_ok(ctx, relay_module_set(m, "main", f)); /* replaces */
  A = saved;
  ck_assert_int_eq(m->nfuncs, 2);
  ck_assert_ptr_eq(relay_module_get(m, "main"), f);
  ck_assert_ptr_null(relay_module_get(m, "none"));
  ck_assert(!relay_func_is_primitive(f));
  relay_module_free(m);
}
END_TEST

START_TEST(test_op_registry) {
  ck_assert_int_gt(relay_op_count(), 10);
  for (int i = 0; i < relay_op_count(); i++) {
    const relay_op *op = relay_op_at(i);
    ck_assert_ptr_nonnull(op);
    ck_assert_ptr_eq(relay_op_lookup(op->name), op); /* names are unique */
    ck_assert_ptr_nonnull(op->infer);
    ck_assert_ptr_nonnull(op->eval);
    ck_assert_ptr_nonnull(op->doc);
  }
  ck_assert_ptr_null(relay_op_at(relay_op_count()));
  ck_assert_ptr_null(relay_op_at(-1));
  ck_assert_ptr_null(relay_op_lookup("nope"));
}
END_TEST

START_TEST(test_constructor_fault_injection) {
  long live = kiln_context_live_blocks(ctx);
  for (long n = 1;; n++) {
    ir_arena *a = ir_arena_new(ctx);
    kiln_context_fail_alloc(ctx, n);
    ir_arena *saved = A;
    A = a ? a : A;
    relay_var *x, *w;
    relay_expr *g = a ? mlp(&x, &w, ir_int(A, KILN_INT64, 2)) : NULL;
    A = saved;
    kiln_context_fail_alloc(ctx, 0);
    ir_arena_free(a);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), live);
    if (g) break;
    ck_assert_int_eq(kiln_context_errcode(ctx), KILN_ERR_NOMEM);
    ck_assert_int_lt(n, 1000);
  }
}
END_TEST

/* Comparing symbolic dimensions simplifies (and allocates): running out of memory there is
 * KILN_ERR_NOMEM, never a false type mismatch. */
START_TEST(test_type_compare_out_of_memory) {
  relay_module *m = relay_module_new(ctx);
  ir_var *n = relay_module_dim(m, "n");
  long live = kiln_context_live_blocks(ctx);
  for (long k = 1;; k++) {
    ir_arena *a = ir_arena_new(ctx);
    ck_assert_ptr_nonnull(a);
    ir_arena_alloc(a, 16000); /* fill the first chunk so later node allocations reach malloc */
    kiln_context_fail_alloc(ctx, k);
    ir_expr *d1 = ir_mul(a, &n->h, ir_int(a, KILN_INT64, 2)); /* n * 2 */
    ir_expr *d2 = ir_mul(a, ir_int(a, KILN_INT64, 2), &n->h); /* 2 * n: equal after simplifying */
    relay_var *v = relay_var_new(a, "v", relay_tensor_type_new(a, KILN_FLOAT32, 1, &d1));
    relay_var *u = relay_var_new(a, "u", relay_tensor_type_new(a, KILN_FLOAT32, 1, &d2));
    relay_expr *let = relay_let_new(a, v, VX(u), VX(v));
    kiln_status code = kiln_context_errcode(ctx);
    kiln_context_fail_alloc(ctx, 0);
    ir_arena_free(a);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), live);
    if (let) break;
    ck_assert_msg(code == KILN_ERR_NOMEM, "allocation %ld failed as %s: %s", k,
                  kiln_status_str(code), kiln_context_errmsg(ctx));
    ck_assert_int_lt(k, 1000);
  }
  relay_module_free(m);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("relay");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_types_and_printing);
  tcase_add_test(tc, test_eager_inference);
  tcase_add_test(tc, test_type_errors);
  tcase_add_test(tc, test_attr_normalization);
  tcase_add_test(tc, test_structural_equal_and_hash);
  tcase_add_test(tc, test_deep_copy);
  tcase_add_test(tc, test_equality_of_shared_subexpressions);
  tcase_add_test(tc, test_memo_mutator_keeps_sharing);
  tcase_add_test(tc, test_module);
  tcase_add_test(tc, test_op_registry);
  tcase_add_test(tc, test_constructor_fault_injection);
  tcase_add_test(tc, test_type_compare_out_of_memory);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

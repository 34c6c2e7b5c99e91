/* test_verify.c: the TIR verifier. Valid programs of each shape (elementwise, matmul with an
 * init and a reduce iterator, nested blocks, allocate, let) pass; every rule has a negative
 * test that checks the status code and the message. Programs are built with the C
 * constructors; invariants the constructors already enforce are broken the way a faulty
 * mutator would, by editing a copy of a valid node. */
#include "ir/node.h"
#include "ir/verify.h"
#include "test_util.h"

static kiln_context *ctx;
static ir_arena *A; /* where the test's nodes live */

static void setup(void) {
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  A = ir_arena_new(ctx);
  ck_assert_ptr_nonnull(A);
}

static void teardown(void) {
  ir_arena_free(A);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}

/* ---- Building programs ---------------------------------------------------------------- */

static ir_expr *i32(int64_t v) { return ir_i32(A, v); }
static ir_expr *f32(double v) { return ir_float(A, KILN_FLOAT32, v); }
static ir_var *ivar(const char *name) { return ir_var_new(A, name, KILN_INT32); }
static ir_expr *V(ir_var *v) { return &v->h; }

static ir_buffer *buf(const char *name, kiln_dtype t, int ndim, const int64_t *shape) {
  ir_expr *dims[4];
  for (int d = 0; d < ndim; d++) dims[d] = i32(shape[d]);
  return ir_buffer_new(A, name, t, ndim, dims, 0, NULL, NULL, 0, NULL);
}
static ir_buffer *buf1(const char *name, int64_t n) { return buf(name, KILN_FLOAT32, 1, &n); }
static ir_buffer *buf2(const char *name, int64_t m, int64_t n) {
  int64_t s[2] = {m, n};
  return buf(name, KILN_FLOAT32, 2, s);
}

static ir_expr *load1(ir_buffer *b, ir_expr *i) { return ir_load_new(A, b, 1, &i); }
static ir_expr *load2(ir_buffer *b, ir_expr *i, ir_expr *j) {
  ir_expr *idx[2] = {i, j};
  return ir_load_new(A, b, 2, idx);
}
static ir_stmt *store1(ir_buffer *b, ir_expr *v, ir_expr *i) { return ir_store_new(A, b, v, 1, &i); }
static ir_stmt *store2(ir_buffer *b, ir_expr *v, ir_expr *i, ir_expr *j) {
  ir_expr *idx[2] = {i, j};
  return ir_store_new(A, b, v, 2, idx);
}
static ir_stmt *loop(ir_var *v, int64_t n, ir_stmt *body) {
  return ir_for_new(A, v, i32(0), i32(n), IR_FOR_SERIAL, 0, NULL, body);
}
static ir_stmt *seq2(ir_stmt *a, ir_stmt *b) {
  ir_stmt *s[2] = {a, b};
  return ir_seq_new(A, 2, s);
}

/* The region covering all of b. */
static ir_region *whole(ir_buffer *b) {
  ir_range *r[4];
  for (int d = 0; d < b->ndim; d++) r[d] = ir_range_new(A, i32(0), b->shape[d]);
  return ir_region_new(A, b, b->ndim, r);
}
/* The single element b[i, j]. */
static ir_region *point2(ir_buffer *b, ir_expr *i, ir_expr *j) {
  ir_range *r[2] = {ir_range_new(A, i, i32(1)), ir_range_new(A, j, i32(1))};
  return ir_region_new(A, b, 2, r);
}
static ir_iter_var *iter(ir_var *v, int64_t n, int type) {
  return ir_iter_var_new(A, v, i32(0), i32(n), type);
}

static ir_func *func(const char *name, int n, ir_node *const *params, ir_stmt *body) {
  ir_func *f = ir_func_new(A, name, n, params, 0, NULL, body);
  ck_assert_msg(f != NULL, "building '%s' failed: %s", name, kiln_context_errmsg(ctx));
  return f;
}

/* A copy of node n in the arena, to break an invariant the way a faulty pass would. */
static void *clone(const void *n) {
  const ir_node *h = n;
  void *c = ir_arena_alloc(A, ir_kinds[h->kind].size);
  memcpy(c, n, ir_kinds[h->kind].size);
  return c;
}

static void expect_ok(const ir_func *f) {
  ck_assert_msg(ir_verify_func(ctx, f) == KILN_OK, "verify failed: %s", kiln_context_errmsg(ctx));
}

/* f must fail with `code` and a message that names the function and contains `needle`. */
static void expect_fail(const ir_func *f, kiln_status code, const char *needle) {
  kiln_status st = ir_verify_func(ctx, f);
  ck_assert_msg(st == code, "expected %s, got %s (%s)", kiln_status_str(code),
                kiln_status_str(st), kiln_context_errmsg(ctx));
  ck_errmsg_has(ctx, "verify: function '");
  ck_errmsg_has(ctx, needle);
}

/* ---- Program shapes -------------------------------------------------------------------- */

/* C[i, j] = A[i, j] + B[i, j] with plain loops (no blocks). */
static ir_func *elementwise_loops(void) {
  ir_buffer *a = buf2("A", 8, 4), *b = buf2("B", 8, 4), *c = buf2("C", 8, 4);
  ir_var *i = ivar("i"), *j = ivar("j");
  ir_stmt *body = store2(c, ir_add(A, load2(a, V(i), V(j)), load2(b, V(i), V(j))), V(i), V(j));
  ir_node *params[] = {&a->h, &b->h, &c->h};
  return func("add", 3, params, loop(i, 8, loop(j, 4, body)));
}

/* Variants of the matmul program, each breaking one block rule. */
typedef struct mm_variant {
  bool body_uses_loop_var; /* A[i, vk] instead of A[vi, vk]: isolation broken */
  bool no_write_region;    /* C missing from the write regions */
  bool no_read_b;          /* B missing from the read regions */
  bool k_spatial;          /* vk spatial: an init without a reduce iterator */
  bool init_stores_d;      /* the init also stores to D, which the block does not write */
  bool bad_domain;         /* vk's domain depends on the outer loop variable i */
} mm_variant;

/* C[i, j] = sum_k A[i, k] * B[k, j]: loops i, j, k around block "C" with spatial iterators
 * vi, vj, a reduce iterator vk, an init C[vi, vj] = 0, point regions over the iterators. */
static ir_func *matmul_variant(int M, int N, int K, mm_variant o) {
  ir_buffer *a = buf2("A", M, K), *b = buf2("B", K, N), *c = buf2("C", M, N), *d = buf2("D", M, N);
  ir_var *i = ivar("i"), *j = ivar("j"), *k = ivar("k");
  ir_var *vi = ivar("vi"), *vj = ivar("vj"), *vk = ivar("vk");
  ir_iter_var *iters[3] = {iter(vi, M, IR_ITER_SPATIAL), iter(vj, N, IR_ITER_SPATIAL),
                           iter(vk, K, o.k_spatial ? IR_ITER_SPATIAL : IR_ITER_REDUCE)};
  if (o.bad_domain) iters[2] = ir_iter_var_new(A, vk, i32(0), ir_add(A, V(i), i32(1)), IR_ITER_REDUCE);
  ir_region *reads[2] = {point2(a, V(vi), V(vk)), point2(b, V(vk), V(vj))};
  ir_region *writes[1] = {point2(c, V(vi), V(vj))};
  ir_stmt *init = store2(c, f32(0), V(vi), V(vj));
  if (o.init_stores_d) init = seq2(init, store2(d, f32(0), V(vi), V(vj)));
  ir_expr *a_row = o.body_uses_loop_var ? V(i) : V(vi);
  ir_stmt *body = store2(c, ir_add(A, load2(c, V(vi), V(vj)),
                                   ir_mul(A, load2(a, a_row, V(vk)), load2(b, V(vk), V(vj)))),
                         V(vi), V(vj));
  ir_block *blk = ir_block_new(A, "C", 3, iters, o.no_read_b ? 1 : 2, reads,
                               o.no_write_region ? 0 : 1, writes, 0, NULL, 0, NULL, init, body);
  ir_expr *values[3] = {V(i), V(j), V(k)};
  ir_stmt *r = ir_block_realize_new(A, 3, values, NULL, blk);
  ir_node *params[] = {&a->h, &b->h, &c->h, &d->h};
  return func("matmul", 4, params, loop(i, M, loop(j, N, loop(k, K, r))));
}

static ir_func *matmul(void) { return matmul_variant(4, 5, 6, (mm_variant){0}); }

/* A root block allocating T; block "T" fills T[vi] = A[vi] * 2 and block "C" computes
 * C[vi] = T[vi] + 1, each inside its own loop. */
static ir_func *nested_blocks(void) {
  ir_buffer *a = buf1("A", 16), *c = buf1("C", 16), *t = buf1("T", 16);
  ir_var *i = ivar("i"), *i2 = ivar("i2"), *v1 = ivar("v1"), *v2 = ivar("v2");
  ir_iter_var *it1 = iter(v1, 16, IR_ITER_SPATIAL), *it2 = iter(v2, 16, IR_ITER_SPATIAL);
  ir_region *ra = whole(a), *wt = whole(t), *rt = whole(t), *wc = whole(c);
  ir_block *bt = ir_block_new(A, "T", 1, &it1, 1, &ra, 1, &wt, 0, NULL, 0, NULL, NULL,
                              store1(t, ir_mul(A, load1(a, V(v1)), f32(2)), V(v1)));
  ir_block *bc = ir_block_new(A, "C", 1, &it2, 1, &rt, 1, &wc, 0, NULL, 0, NULL, NULL,
                              store1(c, ir_add(A, load1(t, V(v2)), f32(1)), V(v2)));
  ir_expr *e1 = V(i), *e2 = V(i2);
  ir_stmt *body = seq2(loop(i, 16, ir_block_realize_new(A, 1, &e1, NULL, bt)),
                       loop(i2, 16, ir_block_realize_new(A, 1, &e2, NULL, bc)));
  ir_region *rroot = whole(a), *wroot = whole(c);
  ir_block *root = ir_block_new(A, "root", 0, NULL, 1, &rroot, 1, &wroot, 1, &t, 0, NULL, NULL, body);
  ir_node *params[] = {&a->h, &c->h};
  return func("nested", 2, params, ir_block_realize_new(A, 0, NULL, NULL, root));
}

/* allocate T[16] { for i: T[i] = A[i] * 2; for i2: C[i2] = T[i2] + 1 } */
static ir_func *with_allocate(void) {
  ir_buffer *a = buf1("A", 16), *c = buf1("C", 16), *t = buf1("T", 16);
  ir_var *i = ivar("i"), *i2 = ivar("i2");
  ir_stmt *body = seq2(loop(i, 16, store1(t, ir_mul(A, load1(a, V(i)), f32(2)), V(i))),
                       loop(i2, 16, store1(c, ir_add(A, load1(t, V(i2)), f32(1)), V(i2))));
  ir_node *params[] = {&a->h, &c->h};
  return func("alloc", 2, params, ir_allocate_new(A, t, body));
}

/* n is a scalar parameter and the shape of A; let m = n * 2 in for i < m:
 * A2[i] = (let x = i + 1 in x * x) */
static ir_func *with_let(void) {
  ir_var *n = ivar("n"), *m = ivar("m"), *i = ivar("i"), *x = ivar("x");
  ir_expr *dims[1] = {ir_mul(A, V(n), i32(2))};
  ir_buffer *b = ir_buffer_new(A, "A2", KILN_INT32, 1, dims, 0, NULL, NULL, 0, NULL);
  ir_expr *sq = ir_let_new(A, x, ir_add(A, V(i), i32(1)), ir_mul(A, V(x), V(x)));
  ir_stmt *body = ir_let_stmt_new(A, m, ir_mul(A, V(n), i32(2)),
                                  ir_for_new(A, i, i32(0), V(m), IR_FOR_SERIAL, 0, NULL,
                                             store1(b, sq, V(i))));
  ir_node *params[] = {&n->h, &b->h};
  return func("let", 2, params, body);
}

START_TEST(test_valid_programs) {
  expect_ok(elementwise_loops());
  expect_ok(matmul());
  expect_ok(nested_blocks());
  expect_ok(with_allocate());
  expect_ok(with_let());
  ck_assert_int_eq(kiln_context_errcode(ctx), KILN_OK);
}
END_TEST

/* Vector accesses, selects, casts, intrinsics, if/else and evaluate are all well formed. */
START_TEST(test_valid_expressions) {
  ir_buffer *a = buf1("A", 16), *c = buf1("C", 16);
  ir_var *i = ivar("i");
  ir_expr *idx = ir_ramp_new(A, ir_mul(A, V(i), i32(4)), i32(1), 4);
  ir_expr *vec = ir_load_new(A, a, 1, &idx);
  ir_expr *two = ir_broadcast_new(A, f32(2), 4);
  ir_expr *sel = ir_select_new(A, ir_binop(A, IR_LT, vec, two), two, vec);
  ir_stmt *vstore = ir_store_new(A, c, sel, 1, &idx);
  ir_expr *e = ir_call_new(A, IR_OP_EXP, 1, (ir_expr *[]){ir_cast_new(A, KILN_FLOAT32, V(i))});
  ir_stmt *branch = ir_if_new(A, ir_binop(A, IR_EQ, V(i), i32(0)), store1(c, e, V(i)),
                              ir_evaluate_new(A, ir_not_new(A, ir_binop(A, IR_NE, V(i), i32(1)))));
  ir_node *params[] = {&a->h, &c->h};
  expect_ok(func("vec", 2, params, loop(i, 4, seq2(vstore, branch))));
}
END_TEST

START_TEST(test_module_verify) {
  kiln_tir_module *mod = ir_module_new(ctx);
  ck_assert_ptr_nonnull(mod);
  ir_arena *saved = A;
  A = mod->arena; /* functions of a module live in its arena */
  ck_ok(ctx, ir_module_add(mod, matmul()));
  ck_ok(ctx, ir_module_add(mod, nested_blocks()));
  ck_ok(ctx, kiln_tir_module_verify(mod));
  /* A second, broken function makes the module fail, naming that function. */
  ir_var *k = ivar("k");
  ir_buffer *c = buf1("C", 4);
  ir_node *params[] = {&c->h};
  ck_ok(ctx, ir_module_add(mod, func("broken", 1, params, store1(c, f32(1), V(k)))));
  ck_assert_int_eq(kiln_tir_module_verify(mod), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "function 'broken'");
  ck_errmsg_has(ctx, "variable 'k' is used outside its scope");
  ck_assert_int_eq(kiln_tir_module_verify(NULL), KILN_ERR_MISUSE);
  A = saved;
  kiln_tir_module_free(mod);
}
END_TEST

/* ---- Scopes ------------------------------------------------------------------------------ */

START_TEST(test_undefined_variable) {
  ir_buffer *c = buf1("C", 4);
  ir_var *k = ivar("k");
  A->span = (ir_span){7, 3}; /* the store that uses k */
  ir_stmt *s = store1(c, f32(1), V(k));
  A->span = IR_NO_SPAN;
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, s), KILN_ERR_UNDEFINED, "variable 'k' is used outside its scope");
  ck_errmsg_has(ctx, "verify: function 'f'");
  int line, col;
  kiln_context_errpos(ctx, &line, &col);
  ck_assert_int_eq(line, 7);
  ck_assert_int_eq(col, 3);
}
END_TEST

START_TEST(test_loop_var_after_loop) {
  ir_buffer *c = buf1("C", 4);
  ir_var *i = ivar("i");
  ir_stmt *body = seq2(loop(i, 4, store1(c, f32(1), V(i))), store1(c, f32(2), V(i)));
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, body), KILN_ERR_UNDEFINED, "variable 'i' is used outside its scope");
}
END_TEST

START_TEST(test_let_var_out_of_scope) {
  ir_buffer *c = buf1("C", 4);
  ir_var *x = ivar("x"), *y = ivar("y");
  /* C[0] = (let x = 1 in x) + x */
  ir_expr *e = ir_add(A, ir_let_new(A, x, i32(1), V(x)), V(x));
  ir_stmt *s1 = store1(c, ir_cast_new(A, KILN_FLOAT32, e), i32(0));
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, s1), KILN_ERR_UNDEFINED, "variable 'x' is used outside its scope");
  /* let_stmt y = 2 in C[y] = 1; C[y] = 2 */
  ir_stmt *s2 = seq2(ir_let_stmt_new(A, y, i32(2), store1(c, f32(1), V(y))), store1(c, f32(2), V(y)));
  expect_fail(func("g", 1, params, s2), KILN_ERR_UNDEFINED, "variable 'y' is used outside its scope");
}
END_TEST

START_TEST(test_iterator_outside_block) {
  /* The block's own iterator in the value that binds it. */
  ir_buffer *c = buf1("C", 4);
  ir_var *i = ivar("i"), *vi = ivar("vi");
  ir_iter_var *it = iter(vi, 4, IR_ITER_SPATIAL);
  ir_region *w = whole(c);
  ir_block *blk = ir_block_new(A, "B", 1, &it, 0, NULL, 1, &w, 0, NULL, 0, NULL, NULL,
                               store1(c, f32(1), V(vi)));
  ir_expr *val = V(vi);
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, loop(i, 4, ir_block_realize_new(A, 1, &val, NULL, blk))),
              KILN_ERR_UNDEFINED, "variable 'vi' is used outside its scope");
}
END_TEST

START_TEST(test_shape_var_not_param) {
  /* A's shape uses n, which is not a parameter. */
  ir_var *n = ivar("n");
  ir_expr *dims[1] = {V(n)};
  ir_buffer *a = ir_buffer_new(A, "A", KILN_FLOAT32, 1, dims, 0, NULL, NULL, 0, NULL);
  ir_var *i = ivar("i");
  ir_node *params[] = {&a->h};
  expect_fail(func("f", 1, params, loop(i, 4, store1(a, f32(0), V(i)))), KILN_ERR_UNDEFINED,
              "parameter buffer 'A' uses variable 'n', which is not a scalar parameter");
  /* With n as a parameter (after the buffer: order does not matter) it is fine. */
  ir_node *params2[] = {&a->h, &n->h};
  ir_var *i2 = ivar("i2");
  expect_ok(func("g", 2, params2, loop(i2, 4, store1(a, f32(0), V(i2)))));
}
END_TEST

START_TEST(test_undefined_buffer) {
  ir_buffer *c = buf1("C", 4), *t = buf1("T", 4);
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, store1(c, load1(t, i32(0)), i32(0))), KILN_ERR_UNDEFINED,
              "buffer 'T' is used outside its scope");
  /* after the allocate that defines it */
  ir_stmt *s = seq2(ir_allocate_new(A, t, store1(t, f32(1), i32(0))), store1(t, f32(2), i32(1)));
  expect_fail(func("g", 1, params, s), KILN_ERR_UNDEFINED, "buffer 'T' is used outside its scope");
}
END_TEST

START_TEST(test_block_alloc_out_of_scope) {
  /* T is allocated by block "B" but stored to after it. */
  ir_buffer *c = buf1("C", 4), *t = buf1("T", 4);
  ir_region *w = whole(c);
  ir_block *blk = ir_block_new(A, "B", 0, NULL, 0, NULL, 1, &w, 1, &t, 0, NULL, NULL,
                               store1(t, f32(1), i32(0)));
  ir_stmt *s = seq2(ir_block_realize_new(A, 0, NULL, NULL, blk), store1(t, f32(2), i32(0)));
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, s), KILN_ERR_UNDEFINED, "buffer 'T' is used outside its scope");
}
END_TEST

START_TEST(test_var_defined_twice) {
  ir_buffer *c = buf1("C", 4);
  ir_var *i = ivar("i");
  ir_node *params[] = {&c->h};
  /* two sequential loops over the same variable object */
  ir_stmt *s = seq2(loop(i, 4, store1(c, f32(1), V(i))), loop(i, 4, store1(c, f32(2), V(i))));
  expect_fail(func("f", 1, params, s), KILN_ERR_TYPE, "variable 'i' is defined twice");
  /* nested */
  expect_fail(func("g", 1, params, loop(i, 4, loop(i, 4, store1(c, f32(1), V(i))))),
              KILN_ERR_TYPE, "variable 'i' is defined twice");
  /* a parameter rebound by a loop */
  ir_var *n = ivar("n");
  ir_node *params2[] = {&c->h, &n->h};
  expect_fail(func("h", 2, params2, loop(n, 4, store1(c, f32(1), V(n)))), KILN_ERR_TYPE,
              "variable 'n' is defined twice");
}
END_TEST

START_TEST(test_buffer_defined_twice) {
  ir_buffer *c = buf1("C", 4);
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, ir_allocate_new(A, c, store1(c, f32(1), i32(0)))),
              KILN_ERR_TYPE, "buffer 'C' is defined twice");
  ir_node *params2[] = {&c->h, &c->h};
  expect_fail(func("g", 2, params2, store1(c, f32(1), i32(0))), KILN_ERR_TYPE,
              "buffer 'C' is defined twice");
}
END_TEST

/* ---- Accesses and types --------------------------------------------------------------- */

START_TEST(test_index_count) {
  /* A pass swaps the buffer of a 2-D load for a 1-D buffer without fixing the indices. */
  ir_buffer *a = buf2("A", 4, 4), *b = buf1("B", 16), *c = buf1("C", 4);
  ir_load *ld = clone(load2(a, i32(0), i32(1)));
  ld->buffer = b;
  ir_node *params[] = {&a->h, &b->h, &c->h};
  expect_fail(func("f", 3, params, store1(c, &ld->h, i32(0))), KILN_ERR_SHAPE,
              "load of buffer 'B' has 2 indices but the buffer has 1 dimensions");
  ir_store *st = clone(store2(a, f32(1), i32(0), i32(0)));
  st->buffer = b;
  expect_fail(func("g", 3, params, &st->h), KILN_ERR_SHAPE, "store of buffer 'B' has 2 indices");
}
END_TEST

START_TEST(test_float_index) {
  ir_buffer *c = buf1("C", 4);
  ir_store *st = clone(store1(c, f32(1), i32(0)));
  ir_expr *idx = f32(0);
  st->indices = &idx;
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, &st->h), KILN_ERR_TYPE, "an index must be an integer, not float32");
}
END_TEST

START_TEST(test_store_value_dtype) {
  ir_buffer *c = buf1("C", 4);
  ir_store *st = clone(store1(c, f32(1), i32(0)));
  st->value = ir_float(A, KILN_FLOAT64, 1);
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, &st->h), KILN_ERR_TYPE,
              "store to buffer 'C' of a float64 value where float32 is expected");
}
END_TEST

START_TEST(test_loop_bound_dtype) {
  ir_buffer *c = buf1("C", 4);
  ir_var *i = ivar("i");
  ir_for *f = clone(loop(i, 4, store1(c, f32(1), V(i))));
  f->extent = ir_int(A, KILN_INT64, 4);
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, &f->h), KILN_ERR_TYPE, "the extent has type int64 but int32 is expected");
  ir_var *j = ivar("j");
  ir_for *g = clone(loop(j, 4, store1(c, f32(1), V(j))));
  g->min = ir_int(A, KILN_INT64, 0);
  expect_fail(func("g", 1, params, &g->h), KILN_ERR_TYPE, "the start has type int64 but int32 is expected");
}
END_TEST

START_TEST(test_condition_not_bool) {
  ir_buffer *c = buf1("C", 4);
  ir_node *params[] = {&c->h};
  ir_if *s = clone(ir_if_new(A, ir_binop(A, IR_LT, i32(0), i32(1)), store1(c, f32(1), i32(0)), NULL));
  s->cond = i32(1);
  expect_fail(func("f", 1, params, &s->h), KILN_ERR_TYPE, "the condition has type int32 but bool is expected");
  ir_select *sel = clone(ir_select_new(A, ir_binop(A, IR_LT, i32(0), i32(1)), f32(1), f32(2)));
  sel->cond = i32(1);
  expect_fail(func("g", 1, params, store1(c, &sel->h, i32(0))), KILN_ERR_TYPE,
              "select: the condition must be bool");
}
END_TEST

START_TEST(test_binary_operand_dtypes) {
  ir_buffer *c = buf1("C", 4);
  ir_var *i = ivar("i");
  ir_binary *add = clone(ir_add(A, V(i), i32(1)));
  add->b = ir_int(A, KILN_INT64, 1);
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, loop(i, 4, store1(c, f32(1), &add->h))), KILN_ERR_TYPE,
              "add: operand types differ (int32 vs int64)");
  /* deep inside an expression too */
  ir_var *j = ivar("j");
  ir_binary *mul = clone(ir_mul(A, f32(2), f32(3)));
  mul->a = ir_float(A, KILN_FLOAT64, 2);
  ir_expr *e = ir_add(A, load1(c, V(j)), f32(1));
  ((ir_binary *)e)->b = &mul->h; /* e is ours: edit it in place */
  expect_fail(func("g", 1, params, loop(j, 4, store1(c, e, V(j)))), KILN_ERR_TYPE,
              "mul: operand types differ (float64 vs float32)");
}
END_TEST

START_TEST(test_stale_node_dtype) {
  /* A node whose recorded dtype disagrees with its operands. */
  ir_buffer *c = buf1("C", 4);
  ir_binary *cmp = clone(ir_binop(A, IR_LT, i32(0), i32(1)));
  cmp->h.dtype = KILN_INT32;
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, ir_evaluate_new(A, &cmp->h)), KILN_ERR_TYPE,
              "lt: the node has type int32 but bool is expected");
}
END_TEST

START_TEST(test_expression_where_statement_expected) {
  ir_buffer *c = buf1("C", 4);
  ir_seq *s = clone(seq2(store1(c, f32(1), i32(0)), store1(c, f32(1), i32(1))));
  ir_stmt *stmts[2] = {store1(c, f32(1), i32(0)), f32(3)};
  s->stmts = stmts;
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, &s->h), KILN_ERR_TYPE, "each element must be a statement, not a float_imm");
}
END_TEST

/* ---- Blocks ------------------------------------------------------------------------------ */

START_TEST(test_realize_value_count) {
  ir_func *f = matmul();
  /* for i { for j { for k { realize } } }: drop the last bound value */
  ir_for *li = (ir_for *)f->body, *lj = (ir_for *)li->body, *lk = (ir_for *)lj->body;
  ir_block_realize *r = clone(lk->body);
  r->nvalues = 2;
  lk->body = &r->h; /* our own nodes: edit in place */
  expect_fail(f, KILN_ERR_SHAPE, "block_realize of block 'C' binds 2 values but the block has 3 iterators");
}
END_TEST

START_TEST(test_realize_value_dtype) {
  ir_func *f = matmul();
  ir_for *li = (ir_for *)f->body, *lj = (ir_for *)li->body, *lk = (ir_for *)lj->body;
  ir_block_realize *r = clone(lk->body);
  ir_expr **vals = ir_arena_copy_nodes(A, 3, (void *const *)r->values);
  vals[1] = ir_int(A, KILN_INT64, 0);
  r->values = vals;
  lk->body = &r->h;
  expect_fail(f, KILN_ERR_TYPE, "binds iterator 'vj' of type int32 to a int64 value");
}
END_TEST

START_TEST(test_block_isolation) {
  expect_fail(matmul_variant(4, 4, 4, (mm_variant){.body_uses_loop_var = true}), KILN_ERR_UNDEFINED,
              "block 'C' uses variable 'i' defined outside the block");
  /* an iterator domain may not use outer loop variables either */
  expect_fail(matmul_variant(4, 4, 4, (mm_variant){.bad_domain = true}), KILN_ERR_UNDEFINED,
              "block 'C' uses variable 'i' defined outside the block");
}
END_TEST

START_TEST(test_block_nested_isolation) {
  /* An inner block may not use the outer block's iterator directly, only through its own
   * binding. */
  ir_buffer *c = buf1("C", 4);
  ir_var *vo = ivar("vo"), *vi = ivar("vi"), *vi2 = ivar("vi2");
  ir_iter_var *ito = iter(vo, 4, IR_ITER_SPATIAL), *iti = iter(vi, 4, IR_ITER_SPATIAL),
              *iti2 = iter(vi2, 4, IR_ITER_SPATIAL);
  ir_region *w1 = whole(c), *w2 = whole(c), *w3 = whole(c), *w4 = whole(c);
  ir_expr *bind = V(vo);
  /* good: inner binds vi = vo and uses vi */
  ir_block *inner = ir_block_new(A, "inner", 1, &iti, 0, NULL, 1, &w1, 0, NULL, 0, NULL, NULL,
                                 store1(c, f32(1), V(vi)));
  ir_block *outer = ir_block_new(A, "outer", 1, &ito, 0, NULL, 1, &w2, 0, NULL, 0, NULL, NULL,
                                 ir_block_realize_new(A, 1, &bind, NULL, inner));
  ir_expr *zero = i32(0);
  ir_node *params[] = {&c->h};
  expect_ok(func("ok", 1, params, ir_block_realize_new(A, 1, &zero, NULL, outer)));
  /* bad: inner uses vo */
  ir_var *wo = ivar("wo");
  ir_iter_var *itw = iter(wo, 4, IR_ITER_SPATIAL);
  ir_expr *bind2 = V(wo);
  ir_block *inner2 = ir_block_new(A, "inner2", 1, &iti2, 0, NULL, 1, &w3, 0, NULL, 0, NULL, NULL,
                                  store1(c, f32(1), V(wo)));
  ir_block *outer2 = ir_block_new(A, "outer2", 1, &itw, 0, NULL, 1, &w4, 0, NULL, 0, NULL, NULL,
                                  ir_block_realize_new(A, 1, &bind2, NULL, inner2));
  expect_fail(func("bad", 1, params, ir_block_realize_new(A, 1, &zero, NULL, outer2)),
              KILN_ERR_UNDEFINED, "block 'inner2' uses variable 'wo' defined outside the block");
}
END_TEST

START_TEST(test_block_missing_write) {
  expect_fail(matmul_variant(4, 4, 4, (mm_variant){.no_write_region = true}), KILN_ERR_TYPE,
              "its init stores to buffer 'C', which is not among the block's write regions");
  /* without an init the body's store is the one reported */
  ir_buffer *c = buf1("C", 4), *a = buf1("A", 4);
  ir_var *vi = ivar("vi");
  ir_iter_var *it = iter(vi, 4, IR_ITER_SPATIAL);
  ir_region *r = whole(a);
  ir_block *blk = ir_block_new(A, "B", 1, &it, 1, &r, 0, NULL, 0, NULL, 0, NULL, NULL,
                               store1(c, load1(a, V(vi)), V(vi)));
  ir_expr *zero = i32(0);
  ir_node *params[] = {&a->h, &c->h};
  expect_fail(func("f", 2, params, ir_block_realize_new(A, 1, &zero, NULL, blk)), KILN_ERR_TYPE,
              "block 'B' stores to buffer 'C', which is not in its write regions or alloc buffers");
}
END_TEST

START_TEST(test_block_missing_read) {
  expect_fail(matmul_variant(4, 4, 4, (mm_variant){.no_read_b = true}), KILN_ERR_TYPE,
              "block 'C' loads buffer 'B', which is not in its read or write regions");
}
END_TEST

START_TEST(test_block_alloc_counts_as_access) {
  /* A block may store to and load its own alloc buffer without declaring regions. */
  ir_buffer *c = buf1("C", 4), *t = buf1("T", 4);
  ir_region *w = whole(c);
  ir_block *blk = ir_block_new(A, "B", 0, NULL, 0, NULL, 1, &w, 1, &t, 0, NULL, NULL,
                               seq2(store1(t, f32(1), i32(0)), store1(c, load1(t, i32(0)), i32(0))));
  ir_node *params[] = {&c->h};
  expect_ok(func("f", 1, params, ir_block_realize_new(A, 0, NULL, NULL, blk)));
}
END_TEST

START_TEST(test_init_stores_unwritten_buffer) {
  expect_fail(matmul_variant(4, 4, 4, (mm_variant){.init_stores_d = true}), KILN_ERR_TYPE,
              "block 'C': its init stores to buffer 'D', which is not among the block's write regions");
}
END_TEST

START_TEST(test_init_without_reduce) {
  expect_fail(matmul_variant(4, 4, 4, (mm_variant){.k_spatial = true}), KILN_ERR_TYPE,
              "block 'C' has an init but no reduce iterator");
}
END_TEST

START_TEST(test_duplicate_block_name) {
  ir_buffer *c = buf1("C", 4);
  ir_region *w1 = whole(c), *w2 = whole(c);
  ir_block *b1 = ir_block_new(A, "B", 0, NULL, 0, NULL, 1, &w1, 0, NULL, 0, NULL, NULL,
                              store1(c, f32(1), i32(0)));
  ir_block *b2 = ir_block_new(A, "B", 0, NULL, 0, NULL, 1, &w2, 0, NULL, 0, NULL, NULL,
                              store1(c, f32(2), i32(0)));
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, seq2(ir_block_realize_new(A, 0, NULL, NULL, b1),
                                        ir_block_realize_new(A, 0, NULL, NULL, b2))),
              KILN_ERR_TYPE, "block name 'B' is used twice");
}
END_TEST

START_TEST(test_region_range_count) {
  ir_buffer *c = buf2("C", 4, 4);
  ir_region *w = clone(whole(c));
  w->nranges = 1;
  ir_block *blk = ir_block_new(A, "B", 0, NULL, 0, NULL, 1, &w, 0, NULL, 0, NULL, NULL,
                               store2(c, f32(1), i32(0), i32(0)));
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, ir_block_realize_new(A, 0, NULL, NULL, blk)), KILN_ERR_SHAPE,
              "write region of buffer 'C' has 1 ranges but the buffer has 2 dimensions");
}
END_TEST

START_TEST(test_bare_block) {
  ir_buffer *c = buf1("C", 4);
  ir_region *w = whole(c);
  ir_block *blk = ir_block_new(A, "B", 0, NULL, 0, NULL, 1, &w, 0, NULL, 0, NULL, NULL,
                               store1(c, f32(1), i32(0)));
  ir_node *params[] = {&c->h};
  expect_fail(func("f", 1, params, seq2(store1(c, f32(1), i32(0)), &blk->h)), KILN_ERR_TYPE,
              "block 'B' is not inside a block_realize");
}
END_TEST

/* ---- Memory ------------------------------------------------------------------------------ */

START_TEST(test_fault_injection) {
  ir_func *f = nested_blocks();
  long base = kiln_context_live_blocks(ctx);
  for (long n = 1;; n++) {
    kiln_context_fail_alloc(ctx, n);
    kiln_status st = ir_verify_func(ctx, f);
    kiln_context_fail_alloc(ctx, 0);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), base);
    if (st == KILN_OK) break;
    ck_assert_int_eq(st, KILN_ERR_NOMEM);
    ck_assert_int_lt(n, 1000);
  }
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("verify");
  TCase *tc = tcase_create("valid");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_valid_programs);
  tcase_add_test(tc, test_valid_expressions);
  tcase_add_test(tc, test_module_verify);
  tcase_add_test(tc, test_block_alloc_counts_as_access);
  tcase_add_test(tc, test_fault_injection);
  suite_add_tcase(s, tc);

  tc = tcase_create("scopes");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_undefined_variable);
  tcase_add_test(tc, test_loop_var_after_loop);
  tcase_add_test(tc, test_let_var_out_of_scope);
  tcase_add_test(tc, test_iterator_outside_block);
  tcase_add_test(tc, test_shape_var_not_param);
  tcase_add_test(tc, test_undefined_buffer);
  tcase_add_test(tc, test_block_alloc_out_of_scope);
  tcase_add_test(tc, test_var_defined_twice);
  tcase_add_test(tc, test_buffer_defined_twice);
  suite_add_tcase(s, tc);

  tc = tcase_create("types");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_index_count);
  tcase_add_test(tc, test_float_index);
  tcase_add_test(tc, test_store_value_dtype);
  tcase_add_test(tc, test_loop_bound_dtype);
  tcase_add_test(tc, test_condition_not_bool);
  tcase_add_test(tc, test_binary_operand_dtypes);
  tcase_add_test(tc, test_stale_node_dtype);
  tcase_add_test(tc, test_expression_where_statement_expected);
  suite_add_tcase(s, tc);

  tc = tcase_create("blocks");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_realize_value_count);
  tcase_add_test(tc, test_realize_value_dtype);
  tcase_add_test(tc, test_block_isolation);
  tcase_add_test(tc, test_block_nested_isolation);
  tcase_add_test(tc, test_block_missing_write);
  tcase_add_test(tc, test_block_missing_read);
  tcase_add_test(tc, test_init_stores_unwritten_buffer);
  tcase_add_test(tc, test_init_without_reduce);
  tcase_add_test(tc, test_duplicate_block_name);
  tcase_add_test(tc, test_region_range_count);
  tcase_add_test(tc, test_bare_block);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

/* test_interp.c: the reference interpreter. Programs built with the C constructors run on
 * plain arrays and are compared with the same computation written in C: elementwise, matmul
 * with an init and a reduce iterator, predicated reductions, vectors, every intrinsic,
 * float16/bfloat16, integer wrap-around and floor division, let, allocate, nested blocks,
 * strides and symbolic shapes; runtime errors with their messages; fault injection. */
#include <math.h>
#include <time.h>

#include "ir/node.h"
#include "ir/verify.h"
#include "test_util.h"

static kiln_context *ctx;
static ir_arena *A;

static void setup(void) {
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  A = ir_arena_new(ctx);
  ck_assert_ptr_nonnull(A);
}

static void teardown(void) {
  ir_arena_free(A);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0); /* error paths free everything too */
  kiln_context_free(ctx);
}

/* ---- Building programs ---------------------------------------------------------------- */

static ir_expr *i32(int64_t v) { return ir_i32(A, v); }
static ir_expr *f32(double v) { return ir_float(A, KILN_FLOAT32, v); }
static ir_var *ivar(const char *name) { return ir_var_new(A, name, KILN_INT32); }
static ir_expr *V(ir_var *v) { return &v->h; }
static ir_expr *bin(int kind, ir_expr *a, ir_expr *b) { return ir_binop(A, kind, a, b); }

static ir_buffer *buf(const char *name, kiln_dtype t, int ndim, const int64_t *shape) {
  ir_expr *dims[16];
  for (int d = 0; d < ndim; d++) dims[d] = i32(shape[d]);
  return ir_buffer_new(A, name, t, ndim, dims, 0, NULL, NULL, 0, NULL);
}
static ir_buffer *buf1t(const char *name, kiln_dtype t, int64_t n) { return buf(name, t, 1, &n); }
static ir_buffer *buf1(const char *name, int64_t n) { return buf1t(name, KILN_FLOAT32, n); }
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
static ir_stmt *seq(int n, ir_stmt *const *s) { return ir_seq_new(A, n, s); }
static ir_stmt *seq2(ir_stmt *a, ir_stmt *b) {
  ir_stmt *s[2] = {a, b};
  return seq(2, s);
}
static ir_region *whole(ir_buffer *b) {
  ir_range *r[16];
  for (int d = 0; d < b->ndim; d++) r[d] = ir_range_new(A, i32(0), b->shape[d]);
  return ir_region_new(A, b, b->ndim, r);
}
static ir_iter_var *iter(ir_var *v, int64_t min, int64_t n, int type) {
  return ir_iter_var_new(A, v, i32(min), i32(n), type);
}
static ir_func *func(const char *name, int n, ir_node *const *params, ir_stmt *body) {
  ir_func *f = ir_func_new(A, name, n, params, 0, NULL, body);
  ck_assert_msg(f != NULL, "building '%s' failed: %s", name, kiln_context_errmsg(ctx));
  return f;
}

static kiln_status run(const ir_func *f, void **args) {
  return ir_interpret(ctx, f, f->nparams, args);
}
#define RUN_OK(f, args) ck_ok(ctx, run((f), (args)))

/* f must fail with `code` and a message containing `needle`. */
static void expect_error(const ir_func *f, void **args, kiln_status code, const char *needle) {
  kiln_status st = run(f, args);
  ck_assert_msg(st == code, "expected %s, got %s (%s)", kiln_status_str(code), kiln_status_str(st),
                kiln_context_errmsg(ctx));
  ck_errmsg_has(ctx, needle);
}

/* Deterministic pseudo-random floats in [-1, 1) with few significant bits. */
static void fill(float *x, int n, unsigned seed) {
  for (int i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    x[i] = (float)((int)((seed >> 8) % 2048) - 1024) / 1024.0f;
  }
}

/* ---- Programs ----------------------------------------------------------------------------- */

START_TEST(test_elementwise_add) {
  ir_buffer *a = buf2("A", 3, 5), *b = buf2("B", 3, 5), *c = buf2("C", 3, 5);
  ir_var *i = ivar("i"), *j = ivar("j");
  ir_stmt *body = store2(c, ir_add(A, load2(a, V(i), V(j)), load2(b, V(i), V(j))), V(i), V(j));
  ir_node *params[] = {&a->h, &b->h, &c->h};
  ir_func *f = func("add", 3, params, loop(i, 3, loop(j, 5, body)));
  float x[15], y[15], z[15];
  for (int k = 0; k < 15; k++) {
    x[k] = 0.1f * (float)k;
    y[k] = 1.0f / (float)(k + 3);
    z[k] = -1;
  }
  void *args[] = {x, y, z};
  RUN_OK(f, args);
  for (int k = 0; k < 15; k++) ck_assert_msg(z[k] == x[k] + y[k], "element %d: %g", k, z[k]);
}
END_TEST

/* C[i, j] = sum_k A[i, k] * B[k, j] as block "C" with an init and a reduce iterator. */
static ir_func *matmul(int M, int N, int K) {
  ir_buffer *a = buf2("A", M, K), *b = buf2("B", K, N), *c = buf2("C", M, N);
  ir_var *i = ivar("i"), *j = ivar("j"), *k = ivar("k");
  ir_var *vi = ivar("vi"), *vj = ivar("vj"), *vk = ivar("vk");
  ir_iter_var *iters[3] = {iter(vi, 0, M, IR_ITER_SPATIAL), iter(vj, 0, N, IR_ITER_SPATIAL),
                           iter(vk, 0, K, IR_ITER_REDUCE)};
  ir_region *reads[2] = {whole(a), whole(b)}, *writes[1] = {whole(c)};
  ir_stmt *init = store2(c, f32(0), V(vi), V(vj));
  ir_stmt *body = store2(c, ir_add(A, load2(c, V(vi), V(vj)),
                                   ir_mul(A, load2(a, V(vi), V(vk)), load2(b, V(vk), V(vj)))),
                         V(vi), V(vj));
  ir_block *blk = ir_block_new(A, "C", 3, iters, 2, reads, 1, writes, 0, NULL, 0, NULL, init, body);
  ir_expr *values[3] = {V(i), V(j), V(k)};
  ir_stmt *r = ir_block_realize_new(A, 3, values, NULL, blk);
  ir_node *params[] = {&a->h, &b->h, &c->h};
  return func("matmul", 3, params, loop(i, M, loop(j, N, loop(k, K, r))));
}

START_TEST(test_matmul) {
  enum { M = 64, N = 64, K = 64 };
  static float a[M * K], b[K * N], c[M * N], ref[M * N];
  fill(a, M * K, 1);
  fill(b, K * N, 2);
  for (int i = 0; i < M * N; i++) c[i] = 1e6f; /* the init must overwrite this */
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      float acc = 0;
      for (int k = 0; k < K; k++) {
        float p = a[i * K + k] * b[k * N + j]; /* two roundings, as in the IR */
        acc = acc + p;
      }
      ref[i * N + j] = acc;
    }
  ir_func *f = matmul(M, N, K);
  void *args[] = {a, b, c};
  clock_t t0 = clock();
  RUN_OK(f, args);
  double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
  ck_assert_msg(secs < 3.0, "64x64x64 matmul took %.2f s", secs); /* ~0.05 s unsanitized */
  for (int i = 0; i < M * N; i++) ck_assert_msg(c[i] == ref[i], "C[%d] = %g, want %g", i, c[i], ref[i]);
}
END_TEST

/* S[0] = sum of X[vk] for vk in [kmin, kmin + n), with the loop split by 4: the block binds
 * vk = kmin + io * 4 + ii under the predicate io * 4 + ii < n (unless `no_predicate`). */
static ir_func *split_sum(int n, int kmin, bool no_predicate) {
  ir_buffer *x = buf1("X", kmin + n), *s = buf1("S", 1);
  ir_var *io = ivar("io"), *ii = ivar("ii"), *vk = ivar("vk");
  ir_iter_var *it = iter(vk, kmin, n, IR_ITER_REDUCE);
  ir_region *rx = whole(x), *ws = whole(s);
  ir_stmt *init = store1(s, f32(0), i32(0));
  ir_stmt *body = store1(s, ir_add(A, load1(s, i32(0)), load1(x, V(vk))), i32(0));
  ir_block *blk = ir_block_new(A, "S", 1, &it, 1, &rx, 1, &ws, 0, NULL, 0, NULL, init, body);
  ir_expr *flat = ir_add(A, ir_mul(A, V(io), i32(4)), V(ii));
  ir_expr *value = ir_add(A, flat, i32(kmin));
  ir_expr *pred = no_predicate ? NULL : bin(IR_LT, flat, i32(n));
  ir_stmt *r = ir_block_realize_new(A, 1, &value, pred, blk);
  ir_node *params[] = {&x->h, &s->h};
  return func("sum", 2, params, loop(io, (n + 3) / 4, loop(ii, 4, r)));
}

START_TEST(test_reduction_with_predicate) {
  float x[12], s[1] = {1000};
  for (int i = 0; i < 12; i++) x[i] = (float)(i + 1);
  void *args[] = {x, s};
  RUN_OK(split_sum(10, 0, false), args);
  ck_assert_float_eq(s[0], 55); /* 1 + ... + 10; the padded iterations 10 and 11 skipped */
  /* a domain starting at 2: the init runs when vk is at 2, not 0 */
  s[0] = 1000;
  RUN_OK(split_sum(10, 2, false), args);
  ck_assert_float_eq(s[0], 75); /* 3 + ... + 12 */
}
END_TEST

START_TEST(test_vectors) {
  ir_buffer *a = buf1("A", 16), *c = buf1("C", 16);
  ir_var *i = ivar("i");
  ir_expr *idx = ir_ramp_new(A, ir_mul(A, V(i), i32(4)), i32(1), 4);
  ir_expr *lt = bin(IR_LT, idx, ir_broadcast_new(A, i32(6), 4));
  ir_expr *bonus = ir_select_new(A, lt, ir_broadcast_new(A, f32(100), 4), ir_broadcast_new(A, f32(0), 4));
  ir_expr *val = ir_add(A, ir_mul(A, ir_load_new(A, a, 1, &idx), ir_broadcast_new(A, f32(2), 4)), bonus);
  ir_stmt *s1 = ir_store_new(A, c, val, 1, &idx);
  /* a store that reads what it overwrites: every lane reads before any lane writes */
  ir_buffer *b = buf1t("B", KILN_INT32, 8);
  ir_expr *src = ir_ramp_new(A, i32(0), i32(1), 4), *dst = ir_ramp_new(A, i32(1), i32(1), 4);
  ir_stmt *s2 = ir_store_new(A, b, ir_load_new(A, b, 1, &src), 1, &dst);
  /* a strided ramp and a vector cast */
  ir_buffer *d = buf1t("D", KILN_INT32, 8);
  ir_expr *even = ir_ramp_new(A, i32(0), i32(2), 4);
  ir_stmt *s3 = ir_store_new(A, d, ir_cast_new(A, ir_dt_with_lanes(KILN_INT32, 4), ir_load_new(A, a, 1, &even)),
                             1, &even);
  ir_node *params[] = {&a->h, &c->h, &b->h, &d->h};
  ir_stmt *stmts[3] = {loop(i, 4, s1), s2, s3};
  ir_func *f = func("vec", 4, params, seq(3, stmts));
  float x[16], z[16];
  int32_t bb[8], dd[8];
  for (int k = 0; k < 16; k++) x[k] = (float)k + 0.5f;
  for (int k = 0; k < 8; k++) bb[k] = k, dd[k] = -1;
  void *args[] = {x, z, bb, dd};
  RUN_OK(f, args);
  for (int k = 0; k < 16; k++) ck_assert_float_eq(z[k], 2 * x[k] + (k < 6 ? 100 : 0));
  int32_t want_b[8] = {0, 0, 1, 2, 3, 5, 6, 7};
  for (int k = 0; k < 8; k++) ck_assert_int_eq(bb[k], want_b[k]);
  int32_t want_d[8] = {0, -1, 2, -1, 4, -1, 6, -1};
  for (int k = 0; k < 8; k++) ck_assert_int_eq(dd[k], want_d[k]);
}
END_TEST

/* ---- Arithmetic --------------------------------------------------------------------------- */

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double rsqrt(double x) { return 1.0 / sqrt(x); }

static bool same(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

/* Out[i] = op(X[i], Y[i], Z[i]) (as many arguments as op takes) for every intrinsic, in
 * float32 and float64, against libm computed in double and rounded to the type. */
START_TEST(test_intrinsics) {
  enum { N = 10 };
  static const double in[N] = {-2.5, -0.75, 0.0, 0.3, 0.5, 1.5, 2.5, 3.7, 10.0, 0.1};
  static const double in2[N] = {2.0, 3.0, 0.5, 1.5, -1.0, 2.5, 0.5, 2.0, 0.25, 3.0};
  static const double in3[N] = {1.0, -1.0, 0.25, 2.0, 0.5, -3.0, 1.0, 0.1, 7.0, -0.1};
  for (int wide = 0; wide < 2; wide++) {
    kiln_dtype t = wide ? KILN_FLOAT64 : KILN_FLOAT32;
    for (int op = 0; op < IR_OP_COUNT; op++) {
      ir_buffer *x = buf1t("X", t, N), *y = buf1t("Y", t, N), *z = buf1t("Z", t, N), *o = buf1t("Out", t, N);
      ir_var *i = ivar("i");
      ir_expr *args[3] = {load1(x, V(i)), load1(y, V(i)), load1(z, V(i))};
      ir_stmt *s = store1(o, ir_call_new(A, op, ir_intrinsic_arity(op), args), V(i));
      ir_node *params[] = {&x->h, &y->h, &z->h, &o->h};
      ir_func *f = func(ir_intrinsic_name(op), 4, params, loop(i, N, s));
      float xf[N], yf[N], zf[N], of[N];
      double xd[N], yd[N], zd[N], od[N];
      for (int k = 0; k < N; k++) {
        xf[k] = (float)in[k], yf[k] = (float)in2[k], zf[k] = (float)in3[k];
        xd[k] = in[k], yd[k] = in2[k], zd[k] = in3[k];
      }
      void *fa[] = {xf, yf, zf, of}, *da[] = {xd, yd, zd, od};
      RUN_OK(f, wide ? da : fa);
      for (int k = 0; k < N; k++) {
        double a = wide ? xd[k] : xf[k], b = wide ? yd[k] : yf[k], c = wide ? zd[k] : zf[k];
        double want = 0;
        switch ((ir_intrinsic)op) {
        case IR_OP_EXP: want = exp(a); break;
        case IR_OP_LOG: want = log(a); break;
        case IR_OP_SQRT: want = sqrt(a); break;
        case IR_OP_RSQRT: want = rsqrt(a); break;
        case IR_OP_TANH: want = tanh(a); break;
        case IR_OP_ERF: want = erf(a); break;
        case IR_OP_SIGMOID: want = sigmoid(a); break;
        case IR_OP_POW: want = pow(a, b); break;
        case IR_OP_FABS: want = fabs(a); break;
        case IR_OP_FLOOR: want = floor(a); break;
        case IR_OP_CEIL: want = ceil(a); break;
        case IR_OP_ROUND: want = nearbyint(a); break;
        case IR_OP_FMA: want = wide ? fma(a, b, c) : fmaf((float)a, (float)b, (float)c); break;
        case IR_OP_COUNT: break;
        }
        double got = wide ? od[k] : of[k];
        if (!wide) want = (float)want;
        ck_assert_msg(same(got, want), "%s(%g) in %s: got %.17g, want %.17g", ir_intrinsic_name(op),
                      a, wide ? "float64" : "float32", got, want);
      }
    }
  }
  /* round is half to even; fabs works on integers */
  ir_buffer *x = buf1("X", 6), *o = buf1("O", 6), *n = buf1t("N", KILN_INT32, 1);
  ir_var *i = ivar("i");
  ir_expr *arg = load1(x, V(i)), *iarg = load1(n, i32(0));
  ir_stmt *s = seq2(loop(i, 6, store1(o, ir_call_new(A, IR_OP_ROUND, 1, &arg), V(i))),
                    store1(n, ir_call_new(A, IR_OP_FABS, 1, &iarg), i32(0)));
  ir_node *params[] = {&x->h, &o->h, &n->h};
  float xs[6] = {0.5f, 1.5f, 2.5f, -2.5f, -0.5f, 2.5000002f}, os[6];
  int32_t ns[1] = {-42};
  void *args[] = {xs, os, ns};
  RUN_OK(func("round", 3, params, s), args);
  float want[6] = {0, 2, 2, -2, -0.0f, 3};
  for (int k = 0; k < 6; k++) ck_assert_float_eq(os[k], want[k]);
  ck_assert(signbit(os[4]));
  ck_assert_int_eq(ns[0], 42);
}
END_TEST

/* In (float32) -> H (float16/bfloat16) -> Out (float32) through casts. */
static ir_func *round_trip(kiln_dtype half, int n) {
  ir_buffer *in = buf1("In", n), *h = buf1t("H", half, n), *out = buf1("Out", n);
  ir_var *i = ivar("i"), *j = ivar("j");
  ir_stmt *s = seq2(loop(i, n, store1(h, ir_cast_new(A, half, load1(in, V(i))), V(i))),
                    loop(j, n, store1(out, ir_cast_new(A, KILN_FLOAT32, load1(h, V(j))), V(j))));
  ir_node *params[] = {&in->h, &h->h, &out->h};
  return func("trip", 3, params, s);
}

START_TEST(test_float16_round_trip) {
  enum { N = 16 };
  float in[N] = {1.0f, -2.0f, 65504.0f, 65520.0f, 65519.0f, 1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f,
                 0x1p-24f, 0x1p-25f, 3 * 0x1p-25f, 0x1p-14f, 0.1f, -0.0f, INFINITY, 1e6f, -1e30f};
  uint16_t want[N] = {0x3C00, 0xC000, 0x7BFF, 0x7C00, 0x7BFF, 0x3C00, 0x3C02, 0x0001,
                      0x0000, 0x0002, 0x0400, 0x2E66, 0x8000, 0x7C00, 0x7C00, 0xFC00};
  float back[N] = {1.0f, -2.0f, 65504.0f, INFINITY, 65504.0f, 1.0f, 1.0f + 0x1p-9f, 0x1p-24f,
                   0.0f, 0x1p-23f, 0x1p-14f, 0.0999755859375f, -0.0f, INFINITY, INFINITY, -INFINITY};
  uint16_t h[N];
  float out[N];
  void *args[] = {in, h, out};
  RUN_OK(round_trip(KILN_FLOAT16, N), args);
  for (int k = 0; k < N; k++) {
    ck_assert_msg(h[k] == want[k], "float16 of %a: 0x%04x, want 0x%04x", (double)in[k], h[k], want[k]);
    ck_assert_msg(out[k] == back[k], "back from 0x%04x: %a", h[k], (double)out[k]);
  }
  ck_assert(signbit(out[12]));
  /* NaN stays NaN */
  float nan_in[1] = {NAN};
  uint16_t nan_h[1];
  float nan_out[1];
  void *nargs[] = {nan_in, nan_h, nan_out};
  RUN_OK(round_trip(KILN_FLOAT16, 1), nargs);
  ck_assert((nan_h[0] & 0x7C00) == 0x7C00 && (nan_h[0] & 0x3FF) != 0);
  ck_assert(isnan(nan_out[0]));
}
END_TEST

START_TEST(test_bfloat16_round_trip) {
  enum { N = 8 };
  float in[N] = {1.0f, 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 3.0e38f, 3.4028234663852886e38f,
                 0.1f, -0.0f, 0x1p-149f};
  uint16_t want[N] = {0x3F80, 0x3F80, 0x3F82, 0x7F62, 0x7F80, 0x3DCD, 0x8000, 0x0000};
  uint16_t h[N];
  float out[N];
  void *args[] = {in, h, out};
  RUN_OK(round_trip(KILN_BFLOAT16, N), args);
  for (int k = 0; k < N; k++) {
    ck_assert_msg(h[k] == want[k], "bfloat16 of %a: 0x%04x, want 0x%04x", (double)in[k], h[k], want[k]);
    uint32_t bits = (uint32_t)want[k] << 16;
    float back;
    memcpy(&back, &bits, 4);
    ck_assert_msg(out[k] == back, "back from 0x%04x: %a", h[k], (double)out[k]);
  }
}
END_TEST

START_TEST(test_float16_arithmetic) {
  /* float16 operations round to float16 after each step: 1 + 2^-11 is a tie and goes to 1. */
  ir_buffer *h = buf1t("H", KILN_FLOAT16, 3);
  ir_expr *one = ir_float(A, KILN_FLOAT16, 1.0);
  ir_stmt *stmts[3] = {
      store1(h, ir_add(A, one, ir_float(A, KILN_FLOAT16, 0x1p-11)), i32(0)),
      store1(h, ir_add(A, one, ir_float(A, KILN_FLOAT16, 3 * 0x1p-11)), i32(1)),
      /* 0.1 as a float16 literal is rounded: 0x2E66 */
      store1(h, ir_float(A, KILN_FLOAT16, 0.1), i32(2)),
  };
  ir_node *params[] = {&h->h};
  uint16_t out[3];
  void *args[] = {out};
  RUN_OK(func("h", 1, params, seq(3, stmts)), args);
  ck_assert_uint_eq(out[0], 0x3C00);
  ck_assert_uint_eq(out[1], 0x3C02);
  ck_assert_uint_eq(out[2], 0x2E66);
  /* float32 arithmetic rounds to float after each op: (1 + 2^-30) - 1 == 0, not 2^-30 */
  ir_buffer *o = buf1("O", 1);
  ir_expr *e = ir_sub(A, ir_add(A, f32(1), f32(0x1p-30)), f32(1));
  ir_node *params2[] = {&o->h};
  float of[1];
  void *args2[] = {of};
  RUN_OK(func("f", 1, params2, store1(o, e, i32(0))), args2);
  ck_assert_float_eq(of[0], 0);
}
END_TEST

START_TEST(test_integer_wraparound) {
  ir_buffer *r = buf1t("R", KILN_INT8, 6), *u = buf1t("U", KILN_UINT8, 4), *w = buf1t("W", KILN_INT32, 2);
  ir_expr *c127 = ir_int(A, KILN_INT8, 127), *cm128 = ir_int(A, KILN_INT8, -128);
  ir_stmt *stmts[] = {
      store1(r, ir_add(A, c127, ir_int(A, KILN_INT8, 1)), i32(0)),
      store1(r, ir_mul(A, ir_int(A, KILN_INT8, 100), ir_int(A, KILN_INT8, 3)), i32(1)),
      store1(r, ir_sub(A, cm128, ir_int(A, KILN_INT8, 1)), i32(2)),
      store1(r, bin(IR_DIV, cm128, ir_int(A, KILN_INT8, -1)), i32(3)),
      store1(r, ir_cast_new(A, KILN_INT8, i32(300)), i32(4)),
      store1(r, ir_cast_new(A, KILN_INT8, i32(-129)), i32(5)),
      store1(u, ir_add(A, ir_int(A, KILN_UINT8, 200), ir_int(A, KILN_UINT8, 100)), i32(0)),
      store1(u, ir_sub(A, ir_int(A, KILN_UINT8, 0), ir_int(A, KILN_UINT8, 1)), i32(1)),
      store1(u, ir_cast_new(A, KILN_UINT8, i32(-1)), i32(2)),
      /* unsigned comparison: 200 > 100 */
      store1(u, ir_cast_new(A, KILN_UINT8, bin(IR_GT, ir_int(A, KILN_UINT8, 200), ir_int(A, KILN_UINT8, 100))), i32(3)),
      store1(w, ir_add(A, i32(2147483647), i32(1)), i32(0)),
      store1(w, ir_cast_new(A, KILN_INT32, ir_float(A, KILN_FLOAT32, -3.9)), i32(1)),
  };
  ir_node *params[] = {&r->h, &u->h, &w->h};
  int8_t rr[6];
  uint8_t uu[4];
  int32_t ww[2];
  void *args[] = {rr, uu, ww};
  RUN_OK(func("wrap", 3, params, seq(12, stmts)), args);
  int8_t want_r[6] = {-128, 44, 127, -128, 44, 127};
  for (int k = 0; k < 6; k++) ck_assert_int_eq(rr[k], want_r[k]);
  uint8_t want_u[4] = {44, 255, 255, 1};
  for (int k = 0; k < 4; k++) ck_assert_uint_eq(uu[k], want_u[k]);
  ck_assert_int_eq(ww[0], INT32_MIN);
  ck_assert_int_eq(ww[1], -3); /* float -> int truncates toward zero */
}
END_TEST

/* 64-bit integers: unsigned comparison and division see the top bit as a magnitude bit;
 * int64 wraps. */
START_TEST(test_wide_integers) {
  const kiln_dtype u64 = {KILN_TYPE_UINT, 64, 1};
  ir_buffer *x = buf1t("X", u64, 2), *y = buf1t("Y", KILN_INT64, 2);
  ir_buffer *b = buf1t("B", KILN_BOOL, 4), *q = buf1t("Q", u64, 2), *r = buf1t("R", KILN_INT64, 2);
  ir_expr *x0 = load1(x, i32(0)), *x1 = load1(x, i32(1)), *y0 = load1(y, i32(0)), *y1 = load1(y, i32(1));
  ir_stmt *stmts[] = {
      store1(b, bin(IR_GT, x0, x1), i32(0)),
      store1(b, bin(IR_LT, x0, x1), i32(1)),
      store1(b, bin(IR_LT, y0, y1), i32(2)),
      store1(b, bin(IR_GE, y0, y1), i32(3)),
      store1(q, bin(IR_DIV, x0, x1), i32(0)),
      store1(q, bin(IR_MAX, x0, x1), i32(1)),
      store1(r, ir_add(A, y1, ir_int(A, KILN_INT64, INT64_MAX)), i32(0)),
      store1(r, ir_mul(A, y0, y1), i32(1)),
  };
  ir_node *params[] = {&x->h, &y->h, &b->h, &q->h, &r->h};
  uint64_t xs[2] = {0x8000000000000001ull, 3};
  int64_t ys[2] = {-5, 3}, rs[2];
  uint8_t bs[4];
  uint64_t qs[2];
  void *args[] = {xs, ys, bs, qs, rs};
  RUN_OK(func("wide", 5, params, seq(8, stmts)), args);
  ck_assert_uint_eq(bs[0], 1);
  ck_assert_uint_eq(bs[1], 0);
  ck_assert_uint_eq(bs[2], 1);
  ck_assert_uint_eq(bs[3], 0);
  ck_assert(qs[0] == 0x8000000000000001ull / 3);
  ck_assert(qs[1] == 0x8000000000000001ull);
  ck_assert(rs[0] == INT64_MIN + 2);
  ck_assert(rs[1] == -15);
}
END_TEST

START_TEST(test_floordiv_floormod) {
  enum { N = 8 };
  ir_buffer *x = buf1t("X", KILN_INT32, N), *y = buf1t("Y", KILN_INT32, N);
  int64_t shape[2] = {4, N};
  ir_buffer *r = buf("R", KILN_INT32, 2, shape);
  ir_var *i = ivar("i");
  int kinds[4] = {IR_DIV, IR_MOD, IR_FLOORDIV, IR_FLOORMOD};
  ir_stmt *st[4];
  for (int k = 0; k < 4; k++)
    st[k] = store2(r, bin(kinds[k], load1(x, V(i)), load1(y, V(i))), i32(k), V(i));
  ir_node *params[] = {&x->h, &y->h, &r->h};
  int32_t xs[N] = {7, -7, 7, -7, 6, -6, 0, INT32_MIN}, ys[N] = {2, 2, -2, -2, 3, 3, 5, -1};
  int32_t rs[4][N];
  void *args[] = {xs, ys, rs};
  RUN_OK(func("div", 3, params, loop(i, N, seq(4, st))), args);
  int32_t want[4][N] = {{3, -3, -3, 3, 2, -2, 0, INT32_MIN},
                        {1, -1, 1, -1, 0, 0, 0, 0},
                        {3, -4, -4, 3, 2, -2, 0, INT32_MIN},
                        {1, 1, -1, -1, 0, 0, 0, 0}};
  for (int k = 0; k < 4; k++)
    for (int j = 0; j < N; j++)
      ck_assert_msg(rs[k][j] == want[k][j], "%s(%d, %d) = %d, want %d", ir_kind_name(kinds[k]),
                    xs[j], ys[j], rs[k][j], want[k][j]);
  /* floats: floormod takes the divisor's sign */
  ir_buffer *fo = buf1("F", 4);
  ir_stmt *fs[4] = {store1(fo, bin(IR_FLOORMOD, f32(-7.5), f32(2)), i32(0)),
                    store1(fo, bin(IR_FLOORMOD, f32(7.5), f32(-2)), i32(1)),
                    store1(fo, bin(IR_FLOORDIV, f32(-7.5), f32(2)), i32(2)),
                    store1(fo, bin(IR_MOD, f32(-7.5), f32(2)), i32(3))};
  ir_node *fparams[] = {&fo->h};
  float fr[4];
  void *fargs[] = {fr};
  RUN_OK(func("fdiv", 1, fparams, seq(4, fs)), fargs);
  ck_assert_float_eq(fr[0], 0.5f);
  ck_assert_float_eq(fr[1], -0.5f);
  ck_assert_float_eq(fr[2], -4.0f);
  ck_assert_float_eq(fr[3], -1.5f);
}
END_TEST

START_TEST(test_let) {
  /* let_stmt m = n * 2 in for i < m: O[i] = (let x = X[i] * 2 in x * x + x) */
  ir_var *n = ivar("n"), *m = ivar("m"), *i = ivar("i");
  ir_var *x = ir_var_new(A, "x", KILN_FLOAT32);
  ir_buffer *in = buf1("X", 8), *o = buf1("O", 8);
  ir_expr *e = ir_let_new(A, x, ir_mul(A, load1(in, V(i)), f32(2)),
                          ir_add(A, ir_mul(A, V(x), V(x)), V(x)));
  ir_stmt *body = ir_let_stmt_new(A, m, ir_mul(A, V(n), i32(2)),
                                  ir_for_new(A, i, i32(0), V(m), IR_FOR_SERIAL, 0, NULL, store1(o, e, V(i))));
  ir_node *params[] = {&n->h, &in->h, &o->h};
  int32_t nv = 3;
  float xs[8], os[8];
  for (int k = 0; k < 8; k++) xs[k] = (float)k - 2, os[k] = -99;
  void *args[] = {&nv, xs, os};
  RUN_OK(func("let", 3, params, body), args);
  for (int k = 0; k < 8; k++) {
    float t = xs[k] * 2;
    ck_assert_float_eq(os[k], k < 6 ? t * t + t : -99);
  }
}
END_TEST

START_TEST(test_if) {
  /* for i < 4: if (i < 2) O[i] = 1 else if (i == 3) O[i] = 3 -- O[2] is left alone */
  ir_buffer *o = buf1("O", 4);
  ir_var *i = ivar("i");
  ir_stmt *inner = ir_if_new(A, bin(IR_EQ, V(i), i32(3)), store1(o, f32(3), V(i)), NULL);
  ir_stmt *s = ir_if_new(A, bin(IR_LT, V(i), i32(2)), store1(o, f32(1), V(i)), inner);
  /* evaluating a string (an opaque handle) does nothing */
  ir_stmt *note = ir_evaluate_new(A, ir_str(A, "a note"));
  ir_node *params[] = {&o->h};
  float os[4] = {-1, -1, -1, -1};
  void *args[] = {os};
  RUN_OK(func("if", 1, params, seq2(note, loop(i, 4, s))), args);
  float want[4] = {1, 1, -1, 3};
  for (int k = 0; k < 4; k++) ck_assert_float_eq(os[k], want[k]);
}
END_TEST

START_TEST(test_allocate) {
  /* for r < 3: allocate T[4] { T[0] = T[0] + 1; O[r] = T[0] } -- T is zero-filled afresh */
  ir_buffer *t = buf1("T", 4), *o = buf1("O", 3);
  ir_var *r = ivar("r");
  ir_stmt *body = ir_allocate_new(A, t, seq2(store1(t, ir_add(A, load1(t, i32(0)), f32(1)), i32(0)),
                                             store1(o, load1(t, i32(0)), V(r))));
  ir_node *params[] = {&o->h};
  float os[3] = {-1, -1, -1};
  void *args[] = {os};
  RUN_OK(func("alloc", 1, params, loop(r, 3, body)), args);
  for (int k = 0; k < 3; k++) ck_assert_float_eq(os[k], 1);
}
END_TEST

/* A root block allocating T: block "T" computes T[v] = A[v] * 2, block "C" C[v] = T[v] + S[0]
 * where S is the per-execution alloc buffer of "C" (S[0] = S[0] + 1 first: always 1). */
static ir_func *nested_blocks(void) {
  ir_buffer *a = buf1("A", 16), *c = buf1("C", 16), *t = buf1("T", 16), *s = buf1("S", 1);
  ir_var *i = ivar("i"), *i2 = ivar("i2"), *v1 = ivar("v1"), *v2 = ivar("v2");
  ir_iter_var *it1 = iter(v1, 0, 16, IR_ITER_SPATIAL), *it2 = iter(v2, 0, 16, IR_ITER_SPATIAL);
  ir_region *ra = whole(a), *wt = whole(t), *rt = whole(t), *wc = whole(c);
  ir_block *bt = ir_block_new(A, "T", 1, &it1, 1, &ra, 1, &wt, 0, NULL, 0, NULL, NULL,
                              store1(t, ir_mul(A, load1(a, V(v1)), f32(2)), V(v1)));
  ir_stmt *cbody = seq2(store1(s, ir_add(A, load1(s, i32(0)), f32(1)), i32(0)),
                        store1(c, ir_add(A, load1(t, V(v2)), load1(s, i32(0))), V(v2)));
  ir_block *bc = ir_block_new(A, "C", 1, &it2, 1, &rt, 1, &wc, 1, &s, 0, NULL, NULL, cbody);
  ir_expr *e1 = V(i), *e2 = V(i2);
  ir_stmt *body = seq2(loop(i, 16, ir_block_realize_new(A, 1, &e1, NULL, bt)),
                       loop(i2, 16, ir_block_realize_new(A, 1, &e2, NULL, bc)));
  ir_region *rroot = whole(a), *wroot = whole(c);
  ir_block *root = ir_block_new(A, "root", 0, NULL, 1, &rroot, 1, &wroot, 1, &t, 0, NULL, NULL, body);
  ir_node *params[] = {&a->h, &c->h};
  return func("nested", 2, params, ir_block_realize_new(A, 0, NULL, NULL, root));
}

START_TEST(test_nested_blocks) {
  float a[16], c[16];
  for (int k = 0; k < 16; k++) a[k] = (float)k * 0.25f;
  void *args[] = {a, c};
  RUN_OK(nested_blocks(), args);
  for (int k = 0; k < 16; k++) ck_assert_float_eq(c[k], a[k] * 2 + 1);
}
END_TEST

START_TEST(test_strides_and_offset) {
  /* B is 3 x 4 with strides [8, 2] elements at offset 5 inside a 40-element array. */
  ir_expr *dims[2] = {i32(3), i32(4)}, *strides[2] = {i32(8), i32(2)};
  ir_buffer *b = ir_buffer_new(A, "B", KILN_FLOAT32, 2, dims, 2, strides, i32(5), 0, NULL);
  ir_var *i = ivar("i"), *j = ivar("j");
  ir_expr *v = ir_cast_new(A, KILN_FLOAT32, ir_add(A, ir_mul(A, V(i), i32(10)), V(j)));
  ir_node *params[] = {&b->h};
  float mem[40];
  for (int k = 0; k < 40; k++) mem[k] = -1;
  void *args[] = {mem};
  RUN_OK(func("strided", 1, params, loop(i, 3, loop(j, 4, store2(b, v, V(i), V(j))))), args);
  for (int k = 0; k < 40; k++) {
    int rel = k - 5, ii = rel / 8, jj = (rel % 8) / 2;
    bool hit = rel >= 0 && rel % 2 == 0 && ii < 3 && jj < 4;
    ck_assert_msg(mem[k] == (hit ? (float)(ii * 10 + jj) : -1.0f), "mem[%d] = %g", k, mem[k]);
  }
}
END_TEST

/* A[n] with n a scalar parameter: for i < n + extra: A[i] = i. */
static ir_func *symbolic(int extra) {
  ir_var *n = ivar("n"), *i = ivar("i");
  ir_expr *dims[1] = {V(n)};
  ir_buffer *a = ir_buffer_new(A, "A", KILN_FLOAT32, 1, dims, 0, NULL, NULL, 0, NULL);
  ir_stmt *s = ir_for_new(A, i, i32(0), ir_add(A, V(n), i32(extra)), IR_FOR_SERIAL, 0, NULL,
                          store1(a, ir_cast_new(A, KILN_FLOAT32, V(i)), V(i)));
  ir_node *params[] = {&n->h, &a->h};
  return func("sym", 2, params, s);
}

START_TEST(test_symbolic_shape) {
  int32_t n = 5;
  float a[6] = {-1, -1, -1, -1, -1, -1};
  void *args[] = {&n, a};
  RUN_OK(symbolic(0), args);
  for (int k = 0; k < 5; k++) ck_assert_float_eq(a[k], k);
  ck_assert_float_eq(a[5], -1);
  /* the shape follows the parameter: with n = 3, writing 4 elements is out of bounds */
  n = 3;
  expect_error(symbolic(1), args, KILN_ERR_RUNTIME, "store A[3] is out of bounds of buffer A [3]");
  n = -1;
  expect_error(symbolic(0), args, KILN_ERR_RUNTIME, "buffer 'A' has a negative shape [-1]");
}
END_TEST

START_TEST(test_bool_and_compare) {
  ir_buffer *x = buf1("X", 4), *o = buf1t("O", KILN_BOOL, 4);
  ir_var *i = ivar("i");
  ir_expr *c = bin(IR_AND, bin(IR_LT, load1(x, V(i)), f32(2)), ir_not_new(A, bin(IR_EQ, V(i), i32(0))));
  ir_node *params[] = {&x->h, &o->h};
  float xs[4] = {0, 1, 2, NAN};
  uint8_t os[4];
  void *args[] = {xs, os};
  RUN_OK(func("cmp", 2, params, loop(i, 4, store1(o, c, V(i)))), args);
  uint8_t want[4] = {0, 1, 0, 0};
  for (int k = 0; k < 4; k++) ck_assert_uint_eq(os[k], want[k]);
}
END_TEST

START_TEST(test_handles) {
  /* Handles are opaque 64-bit values: passed, selected and stored, never computed with. */
  ir_var *h = ir_var_new(A, "h", KILN_HANDLE), *g = ir_var_new(A, "g", KILN_HANDLE);
  ir_buffer *out = buf1t("Out", KILN_HANDLE, 2);
  ir_stmt *stmts[3] = {ir_evaluate_new(A, V(h)), store1(out, V(h), i32(0)),
                       store1(out, ir_select_new(A, bin(IR_LT, i32(1), i32(0)), V(h), V(g)), i32(1))};
  ir_node *params[] = {&h->h, &g->h, &out->h};
  uint64_t hv = 0xdeadbeefcafef00dull, gv = 42, ov[2] = {0, 0};
  void *args[] = {&hv, &gv, ov};
  RUN_OK(func("handles", 3, params, seq(3, stmts)), args);
  ck_assert(ov[0] == hv);
  ck_assert(ov[1] == gv);
}
END_TEST

START_TEST(test_public_api) {
  kiln_tir_module *mod = ir_module_new(ctx);
  ck_assert_ptr_nonnull(mod);
  ir_arena *saved = A;
  A = mod->arena;
  ck_ok(ctx, ir_module_add(mod, matmul(2, 3, 4)));
  A = saved;
  float a[8], b[12], c[6];
  fill(a, 8, 3);
  fill(b, 12, 4);
  void *args[] = {a, b, c};
  ck_ok(ctx, kiln_tir_module_interpret(mod, "matmul", 3, args));
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) {
      float acc = 0;
      for (int k = 0; k < 4; k++) {
        float p = a[i * 4 + k] * b[k * 3 + j];
        acc = acc + p;
      }
      ck_assert_float_eq(c[i * 3 + j], acc);
    }
  ck_assert_int_eq(kiln_tir_module_interpret(mod, "nope", 3, args), KILN_ERR_UNDEFINED);
  ck_assert_int_eq(kiln_tir_module_interpret(mod, "matmul", 2, args), KILN_ERR_MISUSE);
  kiln_tir_module_free(mod);
}
END_TEST

/* ---- Errors ------------------------------------------------------------------------------- */

START_TEST(test_out_of_bounds_store) {
  static float c[128 * 32];
  ir_buffer *cb = buf2("C", 128, 32);
  ir_var *i = ivar("i");
  ir_node *params[] = {&cb->h};
  ir_func *f = func("f", 1, params, loop(i, 129, store2(cb, f32(1), V(i), i32(0))));
  void *args[] = {c};
  expect_error(f, args, KILN_ERR_RUNTIME, "store C[128, 0] is out of bounds of buffer C [128, 32]");
  ck_errmsg_has(ctx, "interpret: function 'f'");
  ck_assert_float_eq(c[127 * 32], 1); /* the rows before were written */
}
END_TEST

START_TEST(test_out_of_bounds_load) {
  ir_buffer *a = buf1("A", 4), *o = buf1("O", 4);
  ir_var *i = ivar("i"), *j = ivar("j"), *k = ivar("k");
  ir_node *params[] = {&a->h, &o->h};
  float as[4] = {0}, os[4];
  void *args[] = {as, os};
  expect_error(func("f", 2, params, loop(i, 4, store1(o, load1(a, ir_add(A, V(i), i32(1))), V(i)))),
               args, KILN_ERR_RUNTIME, "load A[4] is out of bounds of buffer A [4]");
  expect_error(func("g", 2, params, loop(j, 4, store1(o, load1(a, ir_sub(A, V(j), i32(1))), V(j)))),
               args, KILN_ERR_RUNTIME, "load A[-1] is out of bounds of buffer A [4]");
  /* one lane of a vector load */
  ir_expr *idx = ir_ramp_new(A, ir_add(A, V(k), i32(1)), i32(1), 4);
  ir_expr *oidx = ir_ramp_new(A, i32(0), i32(1), 4);
  expect_error(func("h", 2, params, loop(k, 1, ir_store_new(A, o, ir_load_new(A, a, 1, &idx), 1, &oidx))),
               args, KILN_ERR_RUNTIME, "load A[4] is out of bounds of buffer A [4] (lane 3 of 4)");
}
END_TEST

START_TEST(test_division_by_zero) {
  ir_buffer *x = buf1t("X", KILN_INT32, 2), *o = buf1t("O", KILN_INT32, 2);
  ir_var *i = ivar("i"), *j = ivar("j");
  ir_node *params[] = {&x->h, &o->h};
  int32_t xs[2] = {7, 0}, os[2];
  void *args[] = {xs, os};
  expect_error(func("f", 2, params, loop(i, 2, store1(o, bin(IR_DIV, i32(7), load1(x, V(i))), V(i)))),
               args, KILN_ERR_RUNTIME, "integer division by zero in div(7, 0)");
  expect_error(func("g", 2, params, loop(j, 2, store1(o, bin(IR_FLOORMOD, i32(-3), load1(x, V(j))), V(j)))),
               args, KILN_ERR_RUNTIME, "integer division by zero in floormod(-3, 0)");
  /* an evaluate statement is evaluated too */
  ir_var *k = ivar("k");
  expect_error(func("e", 2, params, loop(k, 2, ir_evaluate_new(A, bin(IR_MOD, i32(5), load1(x, V(k)))))),
               args, KILN_ERR_RUNTIME, "integer division by zero in mod(5, 0)");
  /* float division by zero is IEEE: no error */
  ir_buffer *f = buf1("F", 1);
  ir_node *fparams[] = {&f->h};
  float fs[1];
  void *fargs[] = {fs};
  RUN_OK(func("h", 1, fparams, store1(f, bin(IR_DIV, f32(1), f32(0)), i32(0))), fargs);
  ck_assert(isinf(fs[0]));
}
END_TEST

START_TEST(test_iterator_outside_domain) {
  float x[12], s[1];
  for (int i = 0; i < 12; i++) x[i] = 1;
  void *args[] = {x, s};
  /* without the predicate, io * 4 + ii reaches 10 */
  expect_error(split_sum(10, 0, true), args, KILN_ERR_RUNTIME,
               "block 'S': iterator 'vk' = 10 is outside its domain [0, 10)");
}
END_TEST

START_TEST(test_too_large_allocation) {
  int64_t shape[2] = {65536, 65536};
  ir_buffer *t = buf("T", KILN_FLOAT32, 2, shape), *o = buf1("O", 1);
  ir_node *params[] = {&o->h};
  float os[1];
  void *args[] = {os};
  ir_stmt *s = ir_allocate_new(A, t, store1(o, load2(t, i32(0), i32(0)), i32(0)));
  expect_error(func("f", 1, params, s), args, KILN_ERR_RUNTIME,
               "buffer 'T' with shape [65536, 65536] is too large to allocate");
}
END_TEST

START_TEST(test_cast_out_of_range) {
  ir_buffer *x = buf1("X", 1), *o = buf1t("O", KILN_INT8, 1);
  ir_node *params[] = {&x->h, &o->h};
  float xs[1] = {300};
  int8_t os[1];
  void *args[] = {xs, os};
  ir_func *f = func("f", 2, params, store1(o, ir_cast_new(A, KILN_INT8, load1(x, i32(0))), i32(0)));
  expect_error(f, args, KILN_ERR_RUNTIME, "cast of 300 to int8 is out of range");
  xs[0] = NAN;
  expect_error(f, args, KILN_ERR_RUNTIME, "cast of nan to int8 is out of range");
  xs[0] = -128.9f; /* truncates to -128: fine */
  RUN_OK(f, args);
  ck_assert_int_eq(os[0], -128);
}
END_TEST

START_TEST(test_rejected_programs) {
  /* an ill-formed program is refused by the verifier before running */
  ir_buffer *c = buf1("C", 4);
  ir_var *k = ivar("k");
  ir_node *params[] = {&c->h};
  float cs[4];
  void *args[] = {cs};
  expect_error(func("f", 1, params, store1(c, f32(1), V(k))), args, KILN_ERR_UNDEFINED,
               "variable 'k' is used outside its scope");
  /* argument count and NULL arguments */
  ir_func *g = func("g", 1, params, store1(c, f32(1), i32(0)));
  ck_assert_int_eq(ir_interpret(ctx, g, 0, NULL), KILN_ERR_MISUSE);
  void *nulls[] = {NULL};
  ck_assert_int_eq(ir_interpret(ctx, g, 1, nulls), KILN_ERR_MISUSE);
  /* a type the interpreter cannot hold */
  kiln_dtype int4 = {KILN_TYPE_INT, 4, 1};
  ir_buffer *q = buf1t("Q", int4, 4);
  ir_node *qparams[] = {&q->h};
  expect_error(func("q", 1, qparams, store1(q, ir_int(A, int4, 1), i32(0))), args,
               KILN_ERR_UNSUPPORTED, "does not support a buffer of type int4");
}
END_TEST

/* ---- Memory ------------------------------------------------------------------------------- */

/* Everything that allocates: nested blocks with alloc buffers, an allocate statement, a
 * vector store (lane scratch) and a 9-dimensional access (index scratch). */
START_TEST(test_fault_injection) {
  ir_func *nested = nested_blocks();
  int64_t shape9[9] = {2, 1, 1, 1, 1, 1, 1, 1, 2};
  ir_buffer *n9 = buf("N", KILN_FLOAT32, 9, shape9), *t = buf1("T", 8);
  ir_expr *idx9[9];
  for (int d = 0; d < 9; d++) idx9[d] = i32(d == 0 || d == 8);
  ir_expr *vidx = ir_ramp_new(A, i32(0), i32(2), 4);
  ir_stmt *body = seq2(ir_store_new(A, t, ir_broadcast_new(A, f32(3), 4), 1, &vidx),
                       ir_store_new(A, n9, ir_add(A, load1(t, i32(2)), f32(1)), 9, idx9));
  ir_node *params[] = {&n9->h};
  ir_func *other = func("other", 1, params, ir_allocate_new(A, t, body));

  long base = kiln_context_live_blocks(ctx);
  float a[16], c[16], nn[4];
  for (int k = 0; k < 16; k++) a[k] = (float)k;
  void *nargs[] = {a, c}, *oargs[] = {nn};
  const ir_func *fs[2] = {nested, other};
  void **as[2] = {nargs, oargs};
  for (int which = 0; which < 2; which++) {
    long n = 1;
    for (;; n++) {
      kiln_context_fail_alloc(ctx, n);
      kiln_status st = run(fs[which], as[which]);
      kiln_context_fail_alloc(ctx, 0);
      ck_assert_int_eq(kiln_context_live_blocks(ctx), base);
      if (st == KILN_OK) break;
      ck_assert_msg(st == KILN_ERR_NOMEM, "failing allocation %ld: %s", n, kiln_context_errmsg(ctx));
      ck_assert_int_lt(n, 10000);
    }
    ck_assert_int_gt(n, 3); /* the failures did reach the interpreter's own allocations */
  }
  for (int k = 0; k < 16; k++) ck_assert_float_eq(c[k], a[k] * 2 + 1);
  ck_assert_float_eq(nn[3], 4);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("interp");
  TCase *tc = tcase_create("programs");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_elementwise_add);
  tcase_add_test(tc, test_matmul);
  tcase_add_test(tc, test_reduction_with_predicate);
  tcase_add_test(tc, test_vectors);
  tcase_add_test(tc, test_let);
  tcase_add_test(tc, test_if);
  tcase_add_test(tc, test_allocate);
  tcase_add_test(tc, test_nested_blocks);
  tcase_add_test(tc, test_strides_and_offset);
  tcase_add_test(tc, test_symbolic_shape);
  tcase_add_test(tc, test_bool_and_compare);
  tcase_add_test(tc, test_handles);
  tcase_add_test(tc, test_public_api);
  suite_add_tcase(s, tc);

  tc = tcase_create("arithmetic");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_intrinsics);
  tcase_add_test(tc, test_float16_round_trip);
  tcase_add_test(tc, test_bfloat16_round_trip);
  tcase_add_test(tc, test_float16_arithmetic);
  tcase_add_test(tc, test_integer_wraparound);
  tcase_add_test(tc, test_wide_integers);
  tcase_add_test(tc, test_floordiv_floormod);
  suite_add_tcase(s, tc);

  tc = tcase_create("errors");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_out_of_bounds_store);
  tcase_add_test(tc, test_out_of_bounds_load);
  tcase_add_test(tc, test_division_by_zero);
  tcase_add_test(tc, test_iterator_outside_domain);
  tcase_add_test(tc, test_too_large_allocation);
  tcase_add_test(tc, test_cast_out_of_range);
  tcase_add_test(tc, test_rejected_programs);
  tcase_add_test(tc, test_fault_injection);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

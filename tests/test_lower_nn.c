/* test_lower_nn.c: the compute definitions of the nn family (relay/op/nn.c). Every op is
 * lowered to TIR and run in the TIR interpreter against the Relay reference kernels on seeded
 * random data (tests/lower_harness.h), over layouts, strides, padding, dilation, groups, ceil
 * mode, count_include_pad, pad modes, resize methods and coordinate modes, integer dtypes and
 * symbolic dimensions; then the block structure the default schedule rules rely on (plain
 * multiply-accumulate main blocks, separate pad stages, stage annotations). */
#include "test_util.h"

#include "lower_harness.h"
#include "relay/lower.h"

/* float32 results: the TIR side rounds after every operation, the reference computes in
 * double; sums of a few dozen terms in [-2, 2] stay well inside these. */
#define TOL 1e-5

static void check(kiln_context *ctx, const char *op, const char *params, const char *attrs) {
  lh_check_op(ctx, op, params, attrs, TOL, TOL);
}

/* Runs a one-op case with symbolic dimensions bound to the given values. */
static void check_sym(kiln_context *ctx, const char *op, const char *params, const char *attrs,
                      int ndims, const char *const *names, const int64_t *values) {
  lh_case c;
  memset(&c, 0, sizeof c);
  c.rtol = c.atol = TOL;
  c.seed = 7;
  c.ndims = ndims;
  for (int i = 0; i < ndims; i++) {
    c.dim_names[i] = names[i];
    c.dim_values[i] = values[i];
  }
  lh_check_op_case(ctx, op, params, attrs, &c);
}

/* ==== dense, matmul, batch_matmul ============================================================= */

START_TEST(test_dense) {
  kiln_context *ctx = kiln_test_new_ctx();
  check(ctx, "nn.dense", "%x: Tensor[(5, 13), float32], %w: Tensor[(7, 13), float32]", NULL);
  check(ctx, "nn.dense", "%x: Tensor[(2, 3, 7), float32], %w: Tensor[(5, 7), float32]",
        "units=5");
  check(ctx, "nn.dense", "%x: Tensor[(9,), float32], %w: Tensor[(4, 9), float32]", NULL);
  /* integers are exact; int8 wraps like the reference's store */
  check(ctx, "nn.dense", "%x: Tensor[(3, 11), int32], %w: Tensor[(6, 11), int32]", NULL);
  check(ctx, "nn.dense", "%x: Tensor[(3, 11), int8], %w: Tensor[(6, 11), int8]", NULL);
  /* out_dtype widens before multiplying */
  check(ctx, "nn.dense", "%x: Tensor[(3, 11), int8], %w: Tensor[(6, 11), int8]",
        "out_dtype=\"int32\"");
  check(ctx, "nn.dense", "%x: Tensor[(3, 5), float16], %w: Tensor[(2, 5), float16]",
        "out_dtype=\"float32\"");
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_matmul) {
  kiln_context *ctx = kiln_test_new_ctx();
  check(ctx, "nn.matmul", "%a: Tensor[(5, 7), float32], %b: Tensor[(7, 3), float32]", NULL);
  check(ctx, "nn.matmul", "%a: Tensor[(7, 5), float32], %b: Tensor[(7, 3), float32]",
        "transpose_a=1");
  check(ctx, "nn.matmul", "%a: Tensor[(5, 7), float32], %b: Tensor[(3, 7), float32]",
        "transpose_b=1");
  check(ctx, "nn.matmul", "%a: Tensor[(7, 5), int32], %b: Tensor[(3, 7), int32]",
        "transpose_a=1, transpose_b=1, out_dtype=\"int64\"");
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_batch_matmul) {
  kiln_context *ctx = kiln_test_new_ctx();
  /* TVM's default: y transposed */
  check(ctx, "nn.batch_matmul", "%x: Tensor[(3, 5, 7), float32], %y: Tensor[(3, 4, 7), float32]",
        NULL);
  check(ctx, "nn.batch_matmul", "%x: Tensor[(2, 5, 7), float32], %y: Tensor[(2, 7, 4), float32]",
        "transpose_b=0");
  check(ctx, "nn.batch_matmul", "%x: Tensor[(2, 7, 5), float32], %y: Tensor[(2, 4, 7), float32]",
        "transpose_a=1");
  check(ctx, "nn.batch_matmul", "%x: Tensor[(2, 7, 5), int32], %y: Tensor[(2, 7, 3), int32]",
        "transpose_a=1, transpose_b=0");
  /* a batch of 1 broadcasts, on either side */
  check(ctx, "nn.batch_matmul", "%x: Tensor[(1, 5, 7), float32], %y: Tensor[(3, 4, 7), float32]",
        NULL);
  check(ctx, "nn.batch_matmul", "%x: Tensor[(3, 5, 7), float32], %y: Tensor[(1, 4, 7), float32]",
        NULL);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ==== conv2d, conv2d_transpose ================================================================ */

START_TEST(test_conv2d) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *nchw = "%x: Tensor[(1, 3, 7, 7), float32], %w: Tensor[(4, 3, 3, 3), float32]";
  check(ctx, "nn.conv2d", nchw, NULL);                           /* no padding */
  check(ctx, "nn.conv2d", nchw, "padding=[1, 1, 1, 1]");         /* "same" */
  check(ctx, "nn.conv2d", nchw, "strides=[2, 2], padding=[0, 1, 2, 1]"); /* asymmetric */
  check(ctx, "nn.conv2d", nchw, "strides=[2, 1], padding=[1, 2, 0, 0]");
  check(ctx, "nn.conv2d", nchw, "dilation=[2, 2], padding=[1, 1, 1, 1]");
  check(ctx, "nn.conv2d", nchw, "dilation=[1, 2], strides=[2, 2]");
  /* batch 2, odd sizes, 1x1 and non-square kernels */
  check(ctx, "nn.conv2d", "%x: Tensor[(2, 2, 5, 6), float32], %w: Tensor[(3, 2, 1, 1), float32]",
        NULL);
  check(ctx, "nn.conv2d", "%x: Tensor[(1, 2, 6, 5), float32], %w: Tensor[(3, 2, 3, 2), float32]",
        "padding=[1, 0, 1, 1], kernel_size=[3, 2], channels=3");
  /* groups, depthwise (with a channel multiplier) */
  check(ctx, "nn.conv2d", "%x: Tensor[(1, 4, 6, 5), float32], %w: Tensor[(6, 2, 3, 3), float32]",
        "groups=2, padding=[1, 1, 1, 1], strides=[2, 1]");
  check(ctx, "nn.conv2d", "%x: Tensor[(1, 3, 5, 5), float32], %w: Tensor[(3, 1, 3, 3), float32]",
        "groups=3, padding=[1, 1, 1, 1]");
  check(ctx, "nn.conv2d", "%x: Tensor[(1, 3, 5, 5), float32], %w: Tensor[(6, 1, 3, 3), float32]",
        "groups=3, padding=[1, 1, 1, 1], dilation=[2, 1]");
  /* integers: exact, out_dtype widening */
  check(ctx, "nn.conv2d", "%x: Tensor[(1, 2, 5, 5), int32], %w: Tensor[(2, 2, 3, 3), int32]",
        "padding=[1, 1, 1, 1]");
  check(ctx, "nn.conv2d", "%x: Tensor[(1, 2, 5, 5), int8], %w: Tensor[(2, 2, 3, 3), int8]",
        "padding=[1, 1, 1, 1], out_dtype=\"int32\"");
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_conv2d_layouts) {
  kiln_context *ctx = kiln_test_new_ctx();
  /* NHWC data with HWIO, OHWI and IHWO kernels */
  check(ctx, "nn.conv2d", "%x: Tensor[(2, 6, 5, 4), float32], %w: Tensor[(3, 3, 2, 4), float32]",
        "strides=[2, 2], padding=[1, 0, 1, 1], dilation=[1, 2], groups=2, "
        "data_layout=\"NHWC\", kernel_layout=\"HWIO\"");
  check(ctx, "nn.conv2d", "%x: Tensor[(1, 5, 5, 3), float32], %w: Tensor[(2, 3, 3, 3), float32]",
        "padding=[1, 1, 1, 1], data_layout=\"NHWC\", kernel_layout=\"OHWI\", "
        "out_layout=\"NHWC\"");
  check(ctx, "nn.conv2d", "%x: Tensor[(1, 3, 5, 5), float32], %w: Tensor[(3, 3, 3, 2), float32]",
        "padding=[0, 1, 0, 1], kernel_layout=\"IHWO\"");
  /* NHWC depthwise with HWOI weights */
  check(ctx, "nn.conv2d", "%x: Tensor[(1, 6, 5, 4), float32], %w: Tensor[(3, 3, 4, 1), float32]",
        "groups=4, padding=[1, 1, 1, 1], data_layout=\"NHWC\", kernel_layout=\"HWOI\"");
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_conv2d_transpose) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *p = "%x: Tensor[(1, 3, 4, 5), float32], %w: Tensor[(3, 2, 3, 3), float32]";
  check(ctx, "nn.conv2d_transpose", p, NULL);
  check(ctx, "nn.conv2d_transpose", p, "strides=[2, 2], padding=[1, 1, 1, 1]");
  check(ctx, "nn.conv2d_transpose", p,
        "strides=[2, 3], padding=[1, 0, 0, 2], output_padding=[1, 2]");
  check(ctx, "nn.conv2d_transpose", p, "dilation=[2, 1], padding=[2, 1, 1, 0]");
  /* padding wider than the kernel's reach: the dilated data starts inside */
  check(ctx, "nn.conv2d_transpose",
        "%x: Tensor[(1, 2, 6, 6), float32], %w: Tensor[(2, 2, 2, 2), float32]",
        "strides=[2, 2], padding=[3, 2, 3, 2]");
  /* groups: weight [C, O / groups, KH, KW] */
  check(ctx, "nn.conv2d_transpose",
        "%x: Tensor[(2, 4, 3, 4), float32], %w: Tensor[(4, 3, 2, 3), float32]",
        "groups=2, strides=[2, 1], padding=[0, 1, 1, 0]");
  /* NHWC with HWOI (= logical IOHW order H, W, O, I) weights, and OIHW-named weights */
  check(ctx, "nn.conv2d_transpose",
        "%x: Tensor[(1, 4, 3, 2), float32], %w: Tensor[(3, 3, 3, 2), float32]",
        "strides=[2, 2], padding=[1, 1, 0, 0], data_layout=\"NHWC\", kernel_layout=\"HWOI\"");
  check(ctx, "nn.conv2d_transpose",
        "%x: Tensor[(1, 2, 3, 3), float32], %w: Tensor[(3, 2, 2, 2), float32]",
        "strides=[2, 2], kernel_layout=\"OIHW\"");
  check(ctx, "nn.conv2d_transpose",
        "%x: Tensor[(1, 2, 3, 3), int32], %w: Tensor[(2, 2, 3, 3), int32]",
        "strides=[2, 2], padding=[1, 1, 1, 1], output_padding=[1, 1]");
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ==== random sweeps ========================================================================= */

/* Random attribute combinations (fixed seeds) on odd sizes: shapes, kernels, strides,
 * dilations, asymmetric padding, groups and layouts drawn together, so combinations nobody
 * wrote down get checked too. */

/* A 4-d shape in layout `layout` (a permutation of the letters of `letters`) from logical
 * extents v[] (in the order of `letters`), as "(a, b, c, d)". */
static void shape4(char *buf, size_t cap, const char *layout, const char *letters,
                   const int64_t v[4]) {
  int64_t phys[4];
  for (int k = 0; k < 4; k++) phys[strchr(layout, letters[k]) - layout] = v[k];
  snprintf(buf, cap, "(%lld, %lld, %lld, %lld)", (long long)phys[0], (long long)phys[1],
           (long long)phys[2], (long long)phys[3]);
}

START_TEST(test_conv2d_sweep) {
  kiln_context *ctx = kiln_test_new_ctx();
  uint64_t rng = 2024;
  const char *dls[2] = {"NCHW", "NHWC"}, *kls[4] = {"OIHW", "HWIO", "OHWI", "IHWO"};
  for (int t = 0; t < 24; t++) {
    int64_t groups = lh_rand_int(&rng, 1, 3), cpg = lh_rand_int(&rng, 1, 2);
    int64_t opg = lh_rand_int(&rng, 1, 2), kh = lh_rand_int(&rng, 1, 3);
    int64_t kw = lh_rand_int(&rng, 1, 3), s[2], d[2], p[4], h, w;
    for (int i = 0; i < 2; i++) {
      s[i] = lh_rand_int(&rng, 1, 3);
      d[i] = lh_rand_int(&rng, 1, 2);
    }
    for (int i = 0; i < 4; i++) p[i] = lh_rand_int(&rng, 0, 2);
    h = lh_rand_int(&rng, 3, 9);
    w = lh_rand_int(&rng, 3, 9);
    if (h + p[0] + p[2] < d[0] * (kh - 1) + 1) h = d[0] * (kh - 1) + 1;
    if (w + p[1] + p[3] < d[1] * (kw - 1) + 1) w = d[1] * (kw - 1) + 1;
    const char *dl = dls[lh_rand_int(&rng, 0, 1)], *kl = kls[lh_rand_int(&rng, 0, 3)];
    int64_t xv[4] = {lh_rand_int(&rng, 1, 2), groups * cpg, h, w};
    int64_t wv[4] = {groups * opg, cpg, kh, kw};
    char xs[64], ws[64], params[200], attrs[300];
    shape4(xs, sizeof xs, dl, "NCHW", xv);
    shape4(ws, sizeof ws, kl, "OIHW", wv);
    snprintf(params, sizeof params, "%%x: Tensor[%s, float32], %%w: Tensor[%s, float32]", xs, ws);
    snprintf(attrs, sizeof attrs,
             "strides=[%lld, %lld], padding=[%lld, %lld, %lld, %lld], dilation=[%lld, %lld], "
             "groups=%lld, data_layout=\"%s\", kernel_layout=\"%s\"",
             (long long)s[0], (long long)s[1], (long long)p[0], (long long)p[1], (long long)p[2],
             (long long)p[3], (long long)d[0], (long long)d[1], (long long)groups, dl, kl);
    check(ctx, "nn.conv2d", params, attrs);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_conv2d_transpose_sweep) {
  kiln_context *ctx = kiln_test_new_ctx();
  uint64_t rng = 77;
  const char *dls[2] = {"NCHW", "NHWC"}, *kls[3] = {"IOHW", "HWOI", "OIHW"};
  for (int t = 0; t < 20; t++) {
    int64_t groups = lh_rand_int(&rng, 1, 2), ipg = lh_rand_int(&rng, 1, 2);
    int64_t opg = lh_rand_int(&rng, 1, 2), k[2], s[2], d[2], op[2], p[4], in[2];
    for (int i = 0; i < 2; i++) {
      k[i] = lh_rand_int(&rng, 1, 3);
      s[i] = lh_rand_int(&rng, 1, 3);
      d[i] = lh_rand_int(&rng, 1, 2);
      op[i] = lh_rand_int(&rng, 0, (s[i] > d[i] ? s[i] : d[i]) - 1);
      in[i] = lh_rand_int(&rng, 2, 5);
    }
    for (int i = 0; i < 4; i++) p[i] = lh_rand_int(&rng, 0, 2);
    for (int i = 0; i < 2; i++) /* keep the output positive */
      while ((in[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 + op[i] - p[i] - p[i + 2] <= 0) in[i]++;
    const char *dl = dls[lh_rand_int(&rng, 0, 1)], *kl = kls[lh_rand_int(&rng, 0, 2)];
    int64_t xv[4] = {1, groups * ipg, in[0], in[1]};
    /* the weight is [C, O / groups, KH, KW] in logical IOHW: "O" letter = O / groups */
    int64_t wv[4] = {opg, groups * ipg, k[0], k[1]};
    char xs[64], ws[64], params[200], attrs[300];
    shape4(xs, sizeof xs, dl, "NCHW", xv);
    shape4(ws, sizeof ws, kl, "OIHW", wv);
    snprintf(params, sizeof params, "%%x: Tensor[%s, float32], %%w: Tensor[%s, float32]", xs, ws);
    snprintf(attrs, sizeof attrs,
             "strides=[%lld, %lld], padding=[%lld, %lld, %lld, %lld], dilation=[%lld, %lld], "
             "output_padding=[%lld, %lld], groups=%lld, data_layout=\"%s\", "
             "kernel_layout=\"%s\"",
             (long long)s[0], (long long)s[1], (long long)p[0], (long long)p[1], (long long)p[2],
             (long long)p[3], (long long)d[0], (long long)d[1], (long long)op[0],
             (long long)op[1], (long long)groups, dl, kl);
    check(ctx, "nn.conv2d_transpose", params, attrs);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_pool2d_sweep) {
  kiln_context *ctx = kiln_test_new_ctx();
  uint64_t rng = 99;
  for (int t = 0; t < 40; t++) {
    int64_t k[2], s[2], d[2], p[4], in[2];
    for (int i = 0; i < 2; i++) {
      k[i] = lh_rand_int(&rng, 1, 3);
      s[i] = lh_rand_int(&rng, 1, 3);
      d[i] = lh_rand_int(&rng, 1, 2);
      in[i] = lh_rand_int(&rng, 2, 9);
    }
    for (int i = 0; i < 4; i++) p[i] = lh_rand_int(&rng, 0, 2);
    for (int i = 0; i < 2; i++)
      if (in[i] + p[i] + p[i + 2] < d[i] * (k[i] - 1) + 1) in[i] = d[i] * (k[i] - 1) + 1;
    bool nhwc = lh_rand_int(&rng, 0, 1), is_max = t % 2 == 0;
    int64_t ceil_mode = lh_rand_int(&rng, 0, 1), include = lh_rand_int(&rng, 0, 1);
    char params[100], attrs[300];
    int64_t xv[4] = {1, 2, in[0], in[1]};
    char xs[64];
    shape4(xs, sizeof xs, nhwc ? "NHWC" : "NCHW", "NCHW", xv);
    snprintf(params, sizeof params, "%%x: Tensor[%s, %s]", xs, t % 5 == 4 ? "int32" : "float32");
    int n = snprintf(attrs, sizeof attrs,
                     "pool_size=[%lld, %lld], strides=[%lld, %lld], dilation=[%lld, %lld], "
                     "padding=[%lld, %lld, %lld, %lld], ceil_mode=%lld, layout=\"%s\"",
                     (long long)k[0], (long long)k[1], (long long)s[0], (long long)s[1],
                     (long long)d[0], (long long)d[1], (long long)p[0], (long long)p[1],
                     (long long)p[2], (long long)p[3], (long long)ceil_mode,
                     nhwc ? "NHWC" : "NCHW");
    if (!is_max)
      snprintf(attrs + n, sizeof attrs - (size_t)n, ", count_include_pad=%lld", (long long)include);
    check(ctx, is_max ? "nn.max_pool2d" : "nn.avg_pool2d", params, attrs);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ==== bias_add, batch_norm, layer_norm, dropout =============================================== */

START_TEST(test_bias_add_dropout) {
  kiln_context *ctx = kiln_test_new_ctx();
  check(ctx, "nn.bias_add", "%x: Tensor[(2, 3, 4, 5), float32], %b: Tensor[(3,), float32]", NULL);
  check(ctx, "nn.bias_add", "%x: Tensor[(2, 3, 4, 5), float32], %b: Tensor[(5,), float32]",
        "axis=-1");
  check(ctx, "nn.bias_add", "%x: Tensor[(7,), int32], %b: Tensor[(7,), int32]", "axis=0");
  check(ctx, "nn.dropout", "%x: Tensor[(3, 5), float32]", "rate=0.25");
  check(ctx, "nn.dropout", "%x: Tensor[(2, 3), int8]", NULL);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* batch_norm's variance input (parameter 4) must be positive. */
static void positive_var(int param, relay_tensor *t, uint64_t *rng, void *ud) {
  (void)ud;
  if (param != 4) return;
  for (int64_t i = 0; i < relay_tensor_numel(t); i++)
    relay_tensor_set(t, i, lh_rand_uniform(rng, 0.1, 2));
}

static void check_batch_norm(kiln_context *ctx, const char *x, const char *c, const char *attrs) {
  char params[256];
  snprintf(params, sizeof params,
           "%%x: %s, %%g: Tensor[(%s,), float32], %%b: Tensor[(%s,), float32], "
           "%%m: Tensor[(%s,), float32], %%v: Tensor[(%s,), float32]",
           x, c, c, c, c);
  lh_case cs;
  memset(&cs, 0, sizeof cs);
  cs.rtol = cs.atol = TOL;
  cs.fill = positive_var;
  lh_check_op_case(ctx, "nn.batch_norm", params, attrs, &cs);
}

START_TEST(test_batch_norm) {
  kiln_context *ctx = kiln_test_new_ctx();
  check_batch_norm(ctx, "Tensor[(2, 3, 4, 5), float32]", "3", NULL);
  check_batch_norm(ctx, "Tensor[(2, 4, 5, 3), float32]", "3", "axis=-1, epsilon=0.001");
  check_batch_norm(ctx, "Tensor[(5, 7), float32]", "7", "axis=1, scale=0");
  check_batch_norm(ctx, "Tensor[(5, 7), float32]", "5", "axis=0, center=0, scale=0");
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_layer_norm) {
  kiln_context *ctx = kiln_test_new_ctx();
  check(ctx, "nn.layer_norm",
        "%x: Tensor[(3, 13), float32], %g: Tensor[(13,), float32], %b: Tensor[(13,), float32]",
        NULL);
  check(ctx, "nn.layer_norm",
        "%x: Tensor[(2, 5, 3), float32], %g: Tensor[(5,), float32], %b: Tensor[(5,), float32]",
        "axis=1, epsilon=0.01");
  check(ctx, "nn.layer_norm",
        "%x: Tensor[(4, 2, 3), float32], %g: Tensor[(4,), float32], %b: Tensor[(4,), float32]",
        "axis=0, scale=0");
  check(ctx, "nn.layer_norm",
        "%x: Tensor[(9,), float32], %g: Tensor[(9,), float32], %b: Tensor[(9,), float32]",
        "center=0");
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ==== softmax, log_softmax ==================================================================== */

START_TEST(test_softmax) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *ops[2] = {"nn.softmax", "nn.log_softmax"};
  for (int i = 0; i < 2; i++) {
    check(ctx, ops[i], "%x: Tensor[(3, 13), float32]", NULL);
    check(ctx, ops[i], "%x: Tensor[(2, 5, 3), float32]", "axis=1");
    check(ctx, ops[i], "%x: Tensor[(4, 3, 2), float32]", "axis=0");
    check(ctx, ops[i], "%x: Tensor[(11,), float32]", NULL);
    check(ctx, ops[i], "%x: Tensor[(11,), float64]", "axis=-1");
  }
  /* large inputs: exp would overflow without the max subtraction */
  lh_case c;
  memset(&c, 0, sizeof c);
  c.rtol = c.atol = TOL;
  c.lo = 80;
  c.hi = 120;
  lh_check_op_case(ctx, "nn.softmax", "%x: Tensor[(2, 9), float32]", NULL, &c);
  lh_check_op_case(ctx, "nn.log_softmax", "%x: Tensor[(2, 9), float32]", NULL, &c);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ==== pooling ================================================================================= */

START_TEST(test_max_pool2d) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *x = "%x: Tensor[(1, 2, 7, 7), float32]";
  check(ctx, "nn.max_pool2d", x, "pool_size=[2, 2], strides=[2, 2]");
  check(ctx, "nn.max_pool2d", x, "pool_size=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1]");
  check(ctx, "nn.max_pool2d", x, "pool_size=[3, 2], strides=[1, 2], padding=[0, 1, 2, 0]");
  check(ctx, "nn.max_pool2d", x, "pool_size=[2, 2], strides=[2, 2], ceil_mode=1");
  check(ctx, "nn.max_pool2d", x,
        "pool_size=[3, 3], strides=[2, 3], padding=[1, 0, 1, 1], ceil_mode=1");
  check(ctx, "nn.max_pool2d", x, "pool_size=[2, 3], dilation=[2, 2], strides=[1, 2]");
  /* windows that lie in the padding only give the lowest value (as the reference) */
  check(ctx, "nn.max_pool2d", "%x: Tensor[(1, 1, 3, 3), float32]",
        "pool_size=[2, 2], strides=[3, 3], padding=[2, 2, 2, 2]");
  check(ctx, "nn.max_pool2d", "%x: Tensor[(2, 6, 5, 3), float32]",
        "pool_size=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1], layout=\"NHWC\", "
        "out_layout=\"NHWC\"");
  check(ctx, "nn.max_pool2d", "%x: Tensor[(1, 2, 5, 5), int8]",
        "pool_size=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1], ceil_mode=1");
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_avg_pool2d) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *x = "%x: Tensor[(1, 2, 7, 7), float32]";
  check(ctx, "nn.avg_pool2d", x, "pool_size=[2, 2], strides=[2, 2]");
  for (int inc = 0; inc < 2; inc++) {
    char a[160];
    snprintf(a, sizeof a, "pool_size=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1], "
                          "count_include_pad=%d", inc);
    check(ctx, "nn.avg_pool2d", x, a);
    snprintf(a, sizeof a, "pool_size=[3, 2], strides=[2, 3], padding=[1, 0, 0, 1], "
                          "ceil_mode=1, count_include_pad=%d", inc);
    check(ctx, "nn.avg_pool2d", x, a);
    snprintf(a, sizeof a, "pool_size=[2, 2], strides=[2, 2], ceil_mode=1, count_include_pad=%d",
             inc);
    check(ctx, "nn.avg_pool2d", x, a);
    snprintf(a, sizeof a, "pool_size=[3, 3], dilation=[2, 1], padding=[2, 1, 2, 1], "
                          "strides=[2, 2], ceil_mode=1, count_include_pad=%d", inc);
    check(ctx, "nn.avg_pool2d", x, a);
    /* windows entirely inside the padding: count 0 gives 0 without count_include_pad */
    snprintf(a, sizeof a, "pool_size=[2, 2], strides=[3, 3], padding=[2, 2, 2, 2], "
                          "count_include_pad=%d", inc);
    check(ctx, "nn.avg_pool2d", "%x: Tensor[(1, 1, 3, 3), float32]", a);
    /* integer averages divide the exact sum and round toward zero */
    snprintf(a, sizeof a, "pool_size=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1], "
                          "ceil_mode=1, count_include_pad=%d", inc);
    check(ctx, "nn.avg_pool2d", "%x: Tensor[(1, 2, 6, 5), int32]", a);
  }
  check(ctx, "nn.avg_pool2d", "%x: Tensor[(1, 2, 6, 5), int8]",
        "pool_size=[3, 3], strides=[1, 1], padding=[1, 1, 1, 1]");
  /* bool: true where any element of the window is (avg != 0) */
  check(ctx, "nn.avg_pool2d", "%x: Tensor[(1, 1, 5, 4), bool]",
        "pool_size=[2, 2], padding=[1, 1, 1, 1], strides=[2, 1]");
  check(ctx, "nn.global_avg_pool2d", "%x: Tensor[(1, 2, 3, 3), bool]", NULL);
  check(ctx, "nn.avg_pool2d", "%x: Tensor[(2, 5, 6, 3), float32]",
        "pool_size=[2, 3], strides=[2, 1], padding=[0, 1, 1, 1], layout=\"NHWC\"");
  /* float16: sums in float32; the last rounding may differ by one float16 step */
  lh_check_op(ctx, "nn.avg_pool2d", "%x: Tensor[(1, 2, 5, 5), float16]",
              "pool_size=[3, 3], padding=[1, 1, 1, 1]", 1e-3, 1e-3);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_global_pool) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *ops[2] = {"nn.global_avg_pool2d", "nn.global_max_pool2d"};
  for (int i = 0; i < 2; i++) {
    check(ctx, ops[i], "%x: Tensor[(2, 3, 5, 7), float32]", NULL);
    check(ctx, ops[i], "%x: Tensor[(2, 5, 7, 3), float32]", "layout=\"NHWC\"");
    check(ctx, ops[i], "%x: Tensor[(1, 3, 4, 5), int32]", NULL);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_adaptive_pool) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *ops[2] = {"nn.adaptive_avg_pool2d", "nn.adaptive_max_pool2d"};
  for (int i = 0; i < 2; i++) {
    /* uneven windows (7 -> 3, 5 -> 2), even ones (6 -> 3), more outputs than inputs */
    check(ctx, ops[i], "%x: Tensor[(1, 2, 7, 5), float32]", "output_size=[3, 2]");
    check(ctx, ops[i], "%x: Tensor[(1, 2, 6, 6), float32]", "output_size=[3, 1]");
    check(ctx, ops[i], "%x: Tensor[(1, 2, 3, 4), float32]", "output_size=[5, 7]");
    check(ctx, ops[i], "%x: Tensor[(2, 7, 5, 3), float32]",
          "output_size=[2, 4], layout=\"NHWC\"");
    check(ctx, ops[i], "%x: Tensor[(1, 2, 7, 5), int32]", "output_size=[3, 3]");
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ==== pad ===================================================================================== */

START_TEST(test_pad) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *x = "%x: Tensor[(2, 3, 5), float32]";
  check(ctx, "nn.pad", x, "pad_width=[0, 1, 2, 0, 1, 3]");
  check(ctx, "nn.pad", x, "pad_width=[1, 1, 0, 2, 3, 0], pad_value=-1.5");
  check(ctx, "nn.pad", x, "pad_width=[1, 2, 2, 1, 0, 4], pad_mode=\"edge\"");
  check(ctx, "nn.pad", x, "pad_width=[1, 1, 2, 2, 4, 3], pad_mode=\"reflect\"");
  check(ctx, "nn.pad", x, "pad_width=[0, 0, 0, 0, 0, 0], pad_mode=\"reflect\"");
  /* integers: the pad value is truncated like the reference's store */
  check(ctx, "nn.pad", "%x: Tensor[(3, 4), int32]", "pad_width=[1, 0, 2, 1], pad_value=2.75");
  check(ctx, "nn.pad", "%x: Tensor[(3, 4), int8]", "pad_width=[1, 0, 2, 1], pad_value=300.0");
  check(ctx, "nn.pad", "%x: Tensor[(4, 5), int32]", "pad_width=[3, 2, 0, 4], pad_mode=\"reflect\"");
  check(ctx, "nn.pad", "%x: Tensor[(4,), uint8]", "pad_width=[2, 3], pad_mode=\"edge\"");
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ==== resize2d ================================================================================ */

START_TEST(test_resize2d_modes) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *methods[3] = {"nearest_neighbor", "linear", "cubic"};
  const char *modes[5] = {"half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel",
                          "tf_half_pixel_for_nn"};
  for (int m = 0; m < 3; m++)
    for (int k = 0; k < 5; k++) {
      char a[200];
      /* upsampling H, downsampling W */
      snprintf(a, sizeof a, "size=[7, 4], method=\"%s\", coordinate_transformation_mode=\"%s\"",
               methods[m], modes[k]);
      check(ctx, "image.resize2d", "%x: Tensor[(1, 2, 5, 6), float32]", a);
      /* an output of 1 (pytorch_half_pixel and align_corners special-case it) */
      snprintf(a, sizeof a, "size=[1, 3], method=\"%s\", coordinate_transformation_mode=\"%s\"",
               methods[m], modes[k]);
      check(ctx, "image.resize2d", "%x: Tensor[(1, 1, 4, 5), float32]", a);
    }
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_resize2d_options) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *x = "%x: Tensor[(1, 2, 5, 6), float32]";
  const char *rounding[5] = {"round", "floor", "ceil", "round_prefer_floor", "round_prefer_ceil"};
  for (int r = 0; r < 5; r++) {
    char a[200];
    snprintf(a, sizeof a, "size=[9, 4], method=\"nearest_neighbor\", rounding_method=\"%s\", "
                          "coordinate_transformation_mode=\"asymmetric\"", rounding[r]);
    check(ctx, "image.resize2d", x, a);
    snprintf(a, sizeof a, "size=[8, 3], method=\"nearest_neighbor\", rounding_method=\"%s\"",
             rounding[r]);
    check(ctx, "image.resize2d", x, a);
  }
  check(ctx, "image.resize2d", x, "size=[8, 9], method=\"cubic\", cubic_alpha=-0.75");
  check(ctx, "image.resize2d", x, "size=[8, 3], method=\"cubic\", cubic_exclude=1");
  check(ctx, "image.resize2d", x,
        "size=[4, 9], method=\"cubic\", cubic_exclude=1, cubic_alpha=-0.75, "
        "coordinate_transformation_mode=\"align_corners\"");
  check(ctx, "image.resize2d", "%x: Tensor[(2, 5, 6, 3), float32]",
        "size=[7, 4], layout=\"NHWC\"");
  check(ctx, "image.resize2d", "%x: Tensor[(1, 5, 4, 2), float32]",
        "size=[3, 7], layout=\"NHWC\", method=\"cubic\"");
  /* integers: the weighted sums truncate exactly as the reference's */
  check(ctx, "image.resize2d", "%x: Tensor[(1, 2, 5, 6), int32]", "size=[7, 4]");
  check(ctx, "image.resize2d", "%x: Tensor[(1, 2, 5, 6), int32]", "size=[7, 4], method=\"cubic\"");
  check(ctx, "image.resize2d", "%x: Tensor[(1, 1, 4, 4), uint8]",
        "size=[6, 7], method=\"nearest_neighbor\"");
  check(ctx, "image.resize2d", "%x: Tensor[(1, 1, 4, 4), int8]",
        "size=[6, 7], out_dtype=\"float32\"");
  check(ctx, "image.resize2d", "%x: Tensor[(1, 1, 4, 4), float32]",
        "size=[6, 7], out_dtype=\"float16\", method=\"cubic\"");
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ==== symbolic dimensions ===================================================================== */

START_TEST(test_symbolic_dims) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *n[1] = {"n"};
  const int64_t five[1] = {5}, seven[1] = {7};
  check_sym(ctx, "nn.dense", "%x: Tensor[(n, 13), float32], %w: Tensor[(4, 13), float32]", NULL,
            1, n, five);
  check_sym(ctx, "nn.softmax", "%x: Tensor[(n, 6), float32]", "axis=0", 1, n, five);
  check_sym(ctx, "nn.layer_norm",
            "%x: Tensor[(2, n), float32], %g: Tensor[(n,), float32], %b: Tensor[(n,), float32]",
            NULL, 1, n, seven);
  check_sym(ctx, "nn.conv2d",
            "%x: Tensor[(1, 2, n, n), float32], %w: Tensor[(3, 2, 3, 3), float32]",
            "padding=[1, 1, 1, 1], strides=[2, 2]", 1, n, seven);
  check_sym(ctx, "nn.conv2d_transpose",
            "%x: Tensor[(1, 2, n, 3), float32], %w: Tensor[(2, 2, 3, 3), float32]",
            "strides=[2, 2], padding=[1, 1, 1, 1]", 1, n, five);
  /* ceil mode with a symbolic extent: the overhang cannot be ruled out */
  check_sym(ctx, "nn.max_pool2d", "%x: Tensor[(1, 2, n, 6), float32]",
            "pool_size=[2, 2], strides=[2, 2], ceil_mode=1", 1, n, seven);
  check_sym(ctx, "nn.avg_pool2d", "%x: Tensor[(1, 2, n, 6), float32]",
            "pool_size=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1], ceil_mode=1", 1, n, seven);
  check_sym(ctx, "nn.avg_pool2d", "%x: Tensor[(1, 2, n, 6), float32]",
            "pool_size=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1], ceil_mode=1, "
            "count_include_pad=1", 1, n, seven);
  /* adaptive windows over a symbolic extent are masked to their size */
  check_sym(ctx, "nn.adaptive_avg_pool2d", "%x: Tensor[(1, 2, n, 5), float32]",
            "output_size=[3, 2]", 1, n, seven);
  check_sym(ctx, "nn.adaptive_max_pool2d", "%x: Tensor[(1, 2, n, 5), float32]",
            "output_size=[3, 2]", 1, n, seven);
  check_sym(ctx, "nn.global_avg_pool2d", "%x: Tensor[(1, 2, n, n), float32]", NULL, 1, n, five);
  check_sym(ctx, "nn.pad", "%x: Tensor[(n, 3), float32]", "pad_width=[2, 1, 1, 2], pad_value=3.0",
            1, n, five);
  check_sym(ctx, "nn.pad", "%x: Tensor[(n, 3), float32]",
            "pad_width=[0, 0, 1, 2], pad_mode=\"reflect\"", 1, n, five);
  check_sym(ctx, "image.resize2d", "%x: Tensor[(1, 1, n, 4), float32]",
            "size=[3, 6], method=\"cubic\"", 1, n, five);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ==== block structure ========================================================================= */

typedef struct blocks {
  int n;
  ir_block *b[32];
} blocks;

static bool collect_block(ir_node *n, void *ud) {
  blocks *l = ud;
  if (n->kind == IR_BLOCK && l->n < 32) l->b[l->n++] = (ir_block *)n;
  return true;
}

/* Lowers main(params) { op(params, attrs) } and lists its blocks (root first). */
static void lower_blocks(kiln_context *ctx, ir_arena *a, const char *op, const char *params,
                         const char *attrs, blocks *out) {
  char *text = lh_op_text(op, params, attrs);
  relay_module *m = lh_parse(ctx, text);
  free(text);
  ir_func *pf = lh_lower(ctx, m, "main", a);
  relay_module_free(m);
  memset(out, 0, sizeof *out);
  ir_visit(pf->body, false, collect_block, out);
}

static ir_block *find_block(const blocks *l, const char *name) {
  for (int i = 0; i < l->n; i++)
    if (strcmp(l->b[i]->name, name) == 0) return l->b[i];
  return NULL;
}

/* The string annotation `key` of a block, or NULL. */
static const char *annot(const ir_block *b, const char *key) {
  for (int i = 0; i < b->nannots; i++)
    if (strcmp(b->annots[i]->key, key) == 0) {
      ir_str_imm *s = ir_as_str(b->annots[i]->value);
      return s ? s->value : NULL;
    }
  return NULL;
}

/* The block names of l apart from the root, joined with spaces. */
static void block_names(const blocks *l, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = 0;
  for (int i = 0; i < l->n; i++)
    if (strcmp(l->b[i]->name, "root") != 0)
      used += (size_t)snprintf(buf + used, cap - used, "%s%s", used ? " " : "", l->b[i]->name);
}

/* Whether b is a plain multiply-accumulate: init out[...] = 0, body out[...] = out[...] +
 * x * y with x and y loads (possibly cast). */
static bool is_mac(const ir_block *b) {
  ir_store *init = ir_as_store(b->init), *body = ir_as_store(b->body);
  if (!init || !body || init->buffer != body->buffer) return false;
  ir_binary *add = ir_as_binary(body->value);
  if (!add || add->h.kind != IR_ADD) return false;
  ir_load *acc = ir_as_load(add->a);
  ir_binary *mul = ir_as_binary(add->b);
  if (!acc || acc->buffer != body->buffer || !mul || mul->h.kind != IR_MUL) return false;
  ir_expr *ops[2] = {mul->a, mul->b};
  for (int i = 0; i < 2; i++) {
    ir_expr *e = ops[i];
    if (e->kind == IR_CAST) e = ((ir_cast *)e)->value;
    if (!ir_as_load(e)) return false;
  }
  return true;
}

static void expect_blocks(kiln_context *ctx, const char *op, const char *params,
                          const char *attrs, const char *want) {
  ir_arena *a = ir_arena_new(ctx);
  blocks l;
  char names[512];
  lower_blocks(ctx, a, op, params, attrs, &l);
  block_names(&l, names, sizeof names);
  ck_assert_msg(strcmp(names, want) == 0, "%s(%s): blocks '%s', expected '%s'", op,
                attrs ? attrs : "", names, want);
  ir_arena_free(a);
}

START_TEST(test_mac_blocks) {
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = ir_arena_new(ctx);
  blocks l;
  /* conv2d with padding: a pad stage, then a plain multiply-accumulate */
  lower_blocks(ctx, a, "nn.conv2d",
               "%x: Tensor[(1, 3, 7, 7), float32], %w: Tensor[(4, 3, 3, 3), float32]",
               "padding=[1, 1, 1, 1]", &l);
  ir_block *pad = find_block(&l, "conv2d_pad"), *conv = find_block(&l, "conv2d");
  ck_assert_ptr_nonnull(pad);
  ck_assert_ptr_nonnull(conv);
  ck_assert_str_eq(annot(pad, "stage"), "pad");
  ck_assert_str_eq(annot(pad, "op"), "nn.conv2d");
  ck_assert_ptr_null(annot(conv, "stage"));
  ck_assert_str_eq(annot(conv, "pattern"), "out_elemwise_fusable");
  ck_assert(is_mac(conv));
  ck_assert_int_eq(conv->niters, 7); /* n, oc, oy, ox, then rc, ry, rx */
  ck_assert_int_eq(conv->iters[4]->iter_type, IR_ITER_REDUCE);
  ck_assert(!is_mac(pad));
  ck_assert_int_eq(l.n, 3);
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_block_names) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *conv = "%x: Tensor[(1, 4, 7, 7), float32], %w: Tensor[(4, 2, 3, 3), float32]";
  /* no padding, no pad stage */
  expect_blocks(ctx, "nn.conv2d", conv, "groups=2", "conv2d");
  expect_blocks(ctx, "nn.conv2d", conv, "groups=2, padding=[0, 0, 1, 0]", "conv2d_pad conv2d");
  expect_blocks(ctx, "nn.conv2d_transpose",
                "%x: Tensor[(1, 4, 3, 3), float32], %w: Tensor[(4, 2, 3, 3), float32]",
                "strides=[2, 2]", "conv2d_transpose_pad conv2d_transpose");
  expect_blocks(ctx, "nn.softmax", "%x: Tensor[(3, 5), float32]", NULL,
                "softmax_max softmax_exp softmax_sum softmax_norm");
  expect_blocks(ctx, "nn.log_softmax", "%x: Tensor[(3, 5), float32]", NULL,
                "log_softmax_max log_softmax_sum log_softmax_norm");
  expect_blocks(ctx, "nn.layer_norm",
                "%x: Tensor[(3, 5), float32], %g: Tensor[(5,), float32], %b: Tensor[(5,), float32]",
                NULL, "layer_norm_sum layer_norm_var layer_norm_norm");
  const char *x = "%x: Tensor[(1, 2, 8, 8), float32]";
  expect_blocks(ctx, "nn.max_pool2d", x, "pool_size=[2, 2], strides=[2, 2]", "max_pool2d");
  /* ceil mode whose last window fits needs no padding either */
  expect_blocks(ctx, "nn.max_pool2d", x, "pool_size=[2, 2], strides=[2, 2], ceil_mode=1",
                "max_pool2d");
  expect_blocks(ctx, "nn.max_pool2d", x, "pool_size=[3, 3], strides=[2, 2], ceil_mode=1",
                "max_pool2d_pad max_pool2d");
  expect_blocks(ctx, "nn.avg_pool2d", x, "pool_size=[3, 3], padding=[1, 1, 1, 1]",
                "avg_pool2d_pad avg_pool2d_sum avg_pool2d");
  expect_blocks(ctx, "nn.global_avg_pool2d", x, NULL, "global_avg_pool2d_sum global_avg_pool2d");
  expect_blocks(ctx, "nn.global_max_pool2d", x, NULL, "global_max_pool2d");
  expect_blocks(ctx, "nn.pad", x, "pad_width=[0, 0, 0, 0, 1, 1, 1, 1]", "pad");
  expect_blocks(ctx, "image.resize2d", x, "size=[3, 3]", "resize2d");
  kiln_test_done_ctx(ctx);
}
END_TEST

/* dense, matmul and batch_matmul are one multiply-accumulate block each. */
START_TEST(test_matmul_blocks) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *ops[3] = {"nn.dense", "nn.matmul", "nn.batch_matmul"};
  const char *params[3] = {"%x: Tensor[(5, 13), int8], %w: Tensor[(7, 13), int8]",
                           "%a: Tensor[(5, 7), float32], %b: Tensor[(7, 3), float32]",
                           "%x: Tensor[(3, 5, 7), float32], %y: Tensor[(3, 4, 7), float32]"};
  const char *attrs[3] = {"out_dtype=\"int32\"", NULL, NULL};
  const char *names[3] = {"dense", "matmul", "batch_matmul"};
  for (int i = 0; i < 3; i++) {
    ir_arena *a = ir_arena_new(ctx);
    blocks l;
    lower_blocks(ctx, a, ops[i], params[i], attrs[i], &l);
    ck_assert_int_eq(l.n, 2);
    ir_block *b = find_block(&l, names[i]);
    ck_assert_ptr_nonnull(b);
    ck_assert_msg(is_mac(b), "%s is not a multiply-accumulate", names[i]);
    ck_assert_str_eq(annot(b, "op"), ops[i]);
    ir_arena_free(a);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Lowering main(params) { op(params, attrs) } fails with KILN_ERR_UNSUPPORTED and msg. */
static void expect_unsupported(kiln_context *ctx, const char *op, const char *params,
                               const char *attrs, const char *msg) {
  char *text = lh_op_text(op, params, attrs);
  relay_module *m = lh_parse(ctx, text);
  free(text);
  ir_arena *a = ir_arena_new(ctx);
  ir_func *pf = NULL;
  ck_assert_int_eq(relay_lower_func(ctx, a, relay_module_get(m, "main"), "main", &pf),
                   KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, msg);
  ir_arena_free(a);
  relay_module_free(m);
}

/* bool tensors are accepted by the type relations of the arithmetic ops but not lowered. */
START_TEST(test_bool_unsupported) {
  kiln_context *ctx = kiln_test_new_ctx();
  expect_unsupported(ctx, "nn.dense", "%x: Tensor[(3, 4), bool], %w: Tensor[(2, 4), bool]", NULL,
                     "nn.dense: bool data cannot be lowered");
  expect_unsupported(ctx, "nn.conv2d",
                     "%x: Tensor[(1, 2, 4, 4), int8], %w: Tensor[(2, 2, 3, 3), int8]",
                     "out_dtype=\"bool\"", "nn.conv2d: bool results cannot be lowered");
  expect_unsupported(ctx, "nn.max_pool2d", "%x: Tensor[(1, 1, 4, 4), bool]", "pool_size=[2, 2]",
                     "nn.max_pool2d: bool data cannot be lowered");
  expect_unsupported(ctx, "nn.adaptive_max_pool2d", "%x: Tensor[(1, 1, 4, 4), bool]", NULL,
                     "nn.adaptive_max_pool2d: bool data");
  expect_unsupported(ctx, "nn.bias_add", "%x: Tensor[(2, 3), bool], %b: Tensor[(3,), bool]",
                     "axis=1", "nn.bias_add: bool data");
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Every op of the family has a compute definition, and one called with the wrong number of
 * buffers fails cleanly naming the op. */
START_TEST(test_table_and_arity) {
  for (int i = 0; i < relay_ops_nn_count; i++)
    ck_assert_msg(relay_ops_nn[i].lower != NULL, "%s has no compute definition",
                  relay_ops_nn[i].name);
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = ir_arena_new(ctx);
  ir_analyzer *an = ir_analyzer_new(a);
  relay_lower_ctx lc;
  memset(&lc, 0, sizeof lc);
  lc.ctx = ctx;
  lc.arena = a;
  lc.an = an;
  lc.op = "nn.dense";
  ir_expr *shape[2] = {ir_int(a, KILN_INT64, 2), ir_int(a, KILN_INT64, 3)};
  ir_buffer *b = ir_buffer_new(a, "p0", KILN_FLOAT32, 2, shape, 0, NULL, NULL, 0, NULL);
  ir_buffer *bufs[2] = {b, b};
  const relay_op *dense = relay_op_lookup("nn.dense");
  ck_assert_int_eq(dense->lower(&lc, 1, bufs, NULL, 1, bufs), KILN_ERR_INTERNAL);
  ck_errmsg_has(ctx, "nn.dense: lowered with 1 arguments and 1 outputs");
  ir_analyzer_free(an);
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("lower_nn");
  TCase *tc = tcase_create("ops");
  tcase_add_test(tc, test_dense);
  tcase_add_test(tc, test_matmul);
  tcase_add_test(tc, test_batch_matmul);
  tcase_add_test(tc, test_conv2d);
  tcase_add_test(tc, test_conv2d_layouts);
  tcase_add_test(tc, test_conv2d_transpose);
  tcase_add_test(tc, test_conv2d_sweep);
  tcase_add_test(tc, test_conv2d_transpose_sweep);
  tcase_add_test(tc, test_pool2d_sweep);
  tcase_add_test(tc, test_bias_add_dropout);
  tcase_add_test(tc, test_batch_norm);
  tcase_add_test(tc, test_layer_norm);
  tcase_add_test(tc, test_softmax);
  tcase_add_test(tc, test_max_pool2d);
  tcase_add_test(tc, test_avg_pool2d);
  tcase_add_test(tc, test_global_pool);
  tcase_add_test(tc, test_adaptive_pool);
  tcase_add_test(tc, test_pad);
  tcase_add_test(tc, test_resize2d_modes);
  tcase_add_test(tc, test_resize2d_options);
  tcase_add_test(tc, test_symbolic_dims);
  suite_add_tcase(s, tc);
  TCase *st = tcase_create("structure");
  tcase_add_test(st, test_mac_blocks);
  tcase_add_test(st, test_block_names);
  tcase_add_test(st, test_matmul_blocks);
  tcase_add_test(st, test_table_and_arity);
  tcase_add_test(st, test_bool_unsupported);
  suite_add_tcase(s, st);
  return s;
}

KILN_TEST_MAIN

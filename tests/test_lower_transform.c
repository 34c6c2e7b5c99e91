/* test_lower_transform.c: the compute definitions of the data-movement ops (relay/op/
 * transform.c: cast, reshape, transpose, squeeze, expand_dims, nn.batch_flatten,
 * concatenate, stack, split, strided_slice, take, broadcast_to) and the reductions
 * (relay/op/reduce.c: sum, mean, prod, max, min), checked against the Relay reference
 * kernels through tests/lower_harness.h on small random tensors with odd sizes, plus a few
 * checks of the blocks' shape (names, plain indices) that the schedules rely on. */
#include "lower_harness.h"

/* float32 tolerances of the brief; data movement is exact anyway. */
#define RTOL 1e-5
#define ATOL 1e-5

/* One op on default data (floats in [-2, 2], ints in [-5, 5]). */
static void op(kiln_context *ctx, const char *name, const char *params, const char *attrs) {
  lh_check_op(ctx, name, params, attrs, RTOL, ATOL);
}

/* One op on data in [lo, hi] (integers: the integers of the range). */
static void op_range(kiln_context *ctx, const char *name, const char *params, const char *attrs,
                     double lo, double hi, uint64_t seed) {
  lh_case c;
  memset(&c, 0, sizeof c);
  c.rtol = RTOL;
  c.atol = ATOL;
  c.lo = lo;
  c.hi = hi;
  c.seed = seed;
  lh_check_op_case(ctx, name, params, attrs, &c);
}

/* One op with symbolic dimensions bound to values. */
static void op_dims(kiln_context *ctx, const char *name, const char *params, const char *attrs,
                    int ndims, const char *const *names, const int64_t *values) {
  lh_case c;
  memset(&c, 0, sizeof c);
  c.rtol = RTOL;
  c.atol = ATOL;
  c.ndims = ndims;
  for (int i = 0; i < ndims; i++) {
    c.dim_names[i] = names[i];
    c.dim_values[i] = values[i];
  }
  lh_check_op_case(ctx, name, params, attrs, &c);
}

/* The lowered PrimFunc of a one-op module, as text (malloc'd), for checks of its form. */
static char *lowered_text(kiln_context *ctx, const char *name, const char *params,
                          const char *attrs) {
  char *src = lh_op_text(name, params, attrs);
  relay_module *m = lh_parse(ctx, src);
  ir_arena *a = ir_arena_new(ctx);
  ck_assert_ptr_nonnull(a);
  ir_func *pf = lh_lower(ctx, m, "main", a);
  char *text = ir_node_to_string(ctx, &pf->h);
  ck_assert_ptr_nonnull(text);
  char *copy = strdup(text);
  kiln_string_free(ctx, text);
  ir_arena_free(a);
  relay_module_free(m);
  free(src);
  return copy;
}

static int count_of(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

/* ---- cast ------------------------------------------------------------------------------------ */

START_TEST(test_cast_numeric) {
  kiln_context *ctx = kiln_test_new_ctx();
  op(ctx, "cast", "%x: Tensor[(7, 13), float32]", "dtype=\"float16\"");
  op(ctx, "cast", "%x: Tensor[(7, 13), float32]", "dtype=\"float64\"");
  op(ctx, "cast", "%x: Tensor[(5, 3), float32]", "dtype=\"float32\"");
  op(ctx, "cast", "%x: Tensor[(13,), int32]", "dtype=\"float32\"");
  op(ctx, "cast", "%x: Tensor[(13,), bool]", "dtype=\"float32\"");
  op(ctx, "cast", "%x: Tensor[(13,), int8]", "dtype=\"int64\"");
  op(ctx, "cast", "%x: Tensor[(5, 7), float32]", "dtype=\"bfloat16\"");
  op(ctx, "cast", "%x: Tensor[(5, 7), float16]", "dtype=\"float32\"");
  op(ctx, "cast", "%x: Tensor[(5, 7), float16]", "dtype=\"int16\"");
  op(ctx, "cast", "%x: Tensor[(), float32]", "dtype=\"int32\"");
  /* integers narrow by wrapping, floats truncate toward zero */
  op_range(ctx, "cast", "%x: Tensor[(9, 7), int32]", "dtype=\"int8\"", -300, 300, 1);
  op_range(ctx, "cast", "%x: Tensor[(9, 7), int32]", "dtype=\"uint8\"", -300, 300, 2);
  op_range(ctx, "cast", "%x: Tensor[(9, 7), float32]", "dtype=\"int32\"", -100, 100, 3);
  op_range(ctx, "cast", "%x: Tensor[(9, 7), float32]", "dtype=\"bool\"", -1.5, 1.5, 4);
  op_range(ctx, "cast", "%x: Tensor[(9, 7), float64]", "dtype=\"uint16\"", 0, 60000, 5);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Special values for the float -> integer cast: NaN, infinities, huge and out-of-range
 * values, and values just inside the range. */
static void fill_special(int param, relay_tensor *t, uint64_t *rng, void *ud) {
  (void)param;
  (void)ud;
  static const double special[] = {NAN, INFINITY, -INFINITY, 1e20, -1e20, 9.3e18, -9.3e18,
                                   300.7, -300.7, 127.9, -128.9, 255.5, 65537.25, -0.75,
                                   4294967296.5, 2147483648.0, -2147483649.0};
  int64_t n = relay_tensor_numel(t), ns = sizeof special / sizeof special[0];
  for (int64_t i = 0; i < n; i++)
    relay_tensor_set(t, i, i < ns ? special[i] : lh_rand_uniform(rng, -1e4, 1e4));
}

/* Floats to integers follow the reference exactly: NaN -> 0, saturation to the int64 range,
 * then wrapping to the width (a plain TIR cast would be an error in the interpreter). */
START_TEST(test_cast_float_to_int_special) {
  kiln_context *ctx = kiln_test_new_ctx();
  static const char *const to[] = {"int8", "uint8", "int16", "int32", "uint32", "int64", "uint64"};
  static const char *const from[] = {"float32", "float64"};
  for (int f = 0; f < 2; f++)
    for (size_t i = 0; i < sizeof to / sizeof to[0]; i++) {
      char params[64], attrs[32];
      snprintf(params, sizeof params, "%%x: Tensor[(23,), %s]", from[f]);
      snprintf(attrs, sizeof attrs, "dtype=\"%s\"", to[i]);
      lh_case c;
      memset(&c, 0, sizeof c);
      c.fill = fill_special;
      lh_check_op_case(ctx, "cast", params, attrs, &c);
    }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- reshape, squeeze, expand_dims, nn.batch_flatten ----------------------------------------- */

START_TEST(test_reshape) {
  kiln_context *ctx = kiln_test_new_ctx();
  op(ctx, "reshape", "%x: Tensor[(6, 7), float32]", "newshape=[3, 14]");
  op(ctx, "reshape", "%x: Tensor[(7, 13), float32]", "newshape=[91]");
  op(ctx, "reshape", "%x: Tensor[(91,), float32]", "newshape=[13, -1]");
  op(ctx, "reshape", "%x: Tensor[(2, 3, 4), float32]", "newshape=[4, -1]");
  op(ctx, "reshape", "%x: Tensor[(2, 3, 4), int32]", "newshape=[0, 12]");
  op(ctx, "reshape", "%x: Tensor[(2, 3, 4, 5), float32]", "newshape=[2, 12, 5]");
  op(ctx, "reshape", "%x: Tensor[(2, 12, 5), float32]", "newshape=[2, 3, 4, 5]");
  op(ctx, "reshape", "%x: Tensor[(6, 10), float32]", "newshape=[4, 15]");
  op(ctx, "reshape", "%x: Tensor[(3, 1, 5), float32]", "newshape=[5, 1, 3, 1]");
  op(ctx, "reshape", "%x: Tensor[(1,), float32]", "newshape=[]");
  op(ctx, "reshape", "%x: Tensor[(), float32]", "newshape=[1, 1]");
  op(ctx, "reshape", "%x: Tensor[(0, 3), float32]", "newshape=[3, -1]");
  op(ctx, "reshape", "%x: Tensor[(1, 6), float32]", "newshape=[2, 3]");
  op(ctx, "reshape", "%x: Tensor[(6, 1), float32]", "newshape=[3, 1, 2]");
  op(ctx, "reshape", "%x: Tensor[(5, 1, 6), float16]", "newshape=[5, 2, 1, 3]");
  op(ctx, "reshape", "%x: Tensor[(4, 6), bool]", "newshape=[3, 8]");
  const char *n[] = {"n"};
  int64_t v[] = {5};
  op_dims(ctx, "reshape", "%x: Tensor[(n, 12), float32]", "newshape=[0, 3, 4]", 1, n, v);
  op_dims(ctx, "reshape", "%x: Tensor[(n, 3, 4), float32]", "newshape=[-1]", 1, n, v);
  op_dims(ctx, "reshape", "%x: Tensor[(2, n, 6), float32]", "newshape=[4, -1]", 1, n, v);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_squeeze_expand_flatten) {
  kiln_context *ctx = kiln_test_new_ctx();
  op(ctx, "squeeze", "%x: Tensor[(1, 7, 1, 3), float32]", NULL);
  op(ctx, "squeeze", "%x: Tensor[(1, 7, 1, 3), float32]", "axis=[2]");
  op(ctx, "squeeze", "%x: Tensor[(1, 7, 1, 3), int8]", "axis=[-4]");
  op(ctx, "squeeze", "%x: Tensor[(1, 1), float32]", NULL);
  op(ctx, "expand_dims", "%x: Tensor[(7, 3), float32]", "axis=1, num_newaxis=2");
  op(ctx, "expand_dims", "%x: Tensor[(7, 3), float32]", "axis=-1");
  op(ctx, "expand_dims", "%x: Tensor[(7, 3), float32]", "axis=0, num_newaxis=0");
  op(ctx, "expand_dims", "%x: Tensor[(), float32]", "axis=0, num_newaxis=3");
  op(ctx, "nn.batch_flatten", "%x: Tensor[(3, 5, 7), float32]", NULL);
  op(ctx, "nn.batch_flatten", "%x: Tensor[(4, 2, 3, 5), float32]", NULL);
  op(ctx, "nn.batch_flatten", "%x: Tensor[(5,), float32]", NULL);
  op(ctx, "nn.batch_flatten", "%x: Tensor[(2, 13), int32]", NULL);
  const char *n[] = {"n"};
  int64_t v[] = {3};
  op_dims(ctx, "nn.batch_flatten", "%x: Tensor[(n, 5, 7), float32]", NULL, 1, n, v);
  op_dims(ctx, "squeeze", "%x: Tensor[(n, 1, 7), float32]", NULL, 1, n, v);
  op_dims(ctx, "expand_dims", "%x: Tensor[(n, 7), float32]", "axis=1", 1, n, v);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Dimensions the shapes share index the input directly: squeeze and expand_dims have no
 * division at all, batch_flatten splits only the flattened part. */
START_TEST(test_reshape_plain_indices) {
  kiln_context *ctx = kiln_test_new_ctx();
  char *t = lowered_text(ctx, "squeeze", "%x: Tensor[(1, 7, 1, 3), float32]", NULL);
  ck_assert_msg(!strstr(t, "//") && !strstr(t, "%%"), "%s", t);
  free(t);
  t = lowered_text(ctx, "expand_dims", "%x: Tensor[(7, 3), float32]", "axis=1, num_newaxis=2");
  ck_assert_msg(!strstr(t, "//") && !strstr(t, "%%"), "%s", t);
  free(t);
  /* only the 12 -> (3, 4) part divides: one // and one %% (in the read region and the body) */
  t = lowered_text(ctx, "reshape", "%x: Tensor[(2, 3, 4, 5), float32]", "newshape=[2, 12, 5]");
  ck_assert_msg(count_of(t, "//") == 2 && count_of(t, "%%") == 2, "%s", t);
  free(t);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- transpose ------------------------------------------------------------------------------- */

START_TEST(test_transpose) {
  kiln_context *ctx = kiln_test_new_ctx();
  op(ctx, "transpose", "%x: Tensor[(3, 5, 7), float32]", NULL);
  op(ctx, "transpose", "%x: Tensor[(3, 5, 7), float32]", "axes=[1, 0, 2]");
  op(ctx, "transpose", "%x: Tensor[(3, 5, 7), int32]", "axes=[-1, 0, 1]");
  op(ctx, "transpose", "%x: Tensor[(2, 3, 5, 7), float32]", "axes=[0, 2, 3, 1]");
  op(ctx, "transpose", "%x: Tensor[(13,), float32]", NULL);
  op(ctx, "transpose", "%x: Tensor[(), float32]", NULL);
  op(ctx, "transpose", "%x: Tensor[(3, 7), bool]", NULL);
  op(ctx, "transpose", "%x: Tensor[(3, 7), float16]", "axes=[1, 0]");
  const char *n[] = {"n", "m"};
  int64_t v[] = {3, 4};
  op_dims(ctx, "transpose", "%x: Tensor[(n, m, 5), float32]", "axes=[2, 0, 1]", 2, n, v);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- concatenate, stack ---------------------------------------------------------------------- */

START_TEST(test_concatenate) {
  kiln_context *ctx = kiln_test_new_ctx();
  op(ctx, "concatenate",
     "%a: Tensor[(3, 2), float32], %b: Tensor[(3, 5), float32], %c: Tensor[(3, 3), float32]",
     "axis=1");
  op(ctx, "concatenate", "%a: Tensor[(2, 7), float32], %b: Tensor[(5, 7), float32]", "axis=0");
  op(ctx, "concatenate", "%a: Tensor[(2, 3, 4), int32], %b: Tensor[(2, 3, 1), int32]", "axis=-1");
  op(ctx, "concatenate", "%a: Tensor[(2, 3, 4), int8], %b: Tensor[(2, 5, 4), int8]", "axis=-2");
  op(ctx, "concatenate", "%a: Tensor[(13,), float32]", "axis=0");
  op(ctx, "concatenate", "%a: Tensor[(3, 2), bool], %b: Tensor[(3, 3), bool]", "axis=1");
  op(ctx, "concatenate", "%a: Tensor[(4, 0), float32], %b: Tensor[(4, 3), float32]", "axis=1");
  op(ctx, "concatenate",
     "%a: Tensor[(3,), float32], %b: Tensor[(3,), float32], %c: Tensor[(3,), float32], "
     "%d: Tensor[(3,), float32], %e: Tensor[(2,), float32]",
     "axis=0");
  const char *n[] = {"n", "m"};
  int64_t v[] = {3, 5};
  op_dims(ctx, "concatenate", "%a: Tensor[(n, 2), float32], %b: Tensor[(m, 2), float32]",
          "axis=0", 2, n, v);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_stack) {
  kiln_context *ctx = kiln_test_new_ctx();
  op(ctx, "stack",
     "%a: Tensor[(3, 5), float32], %b: Tensor[(3, 5), float32], %c: Tensor[(3, 5), float32]",
     "axis=0");
  op(ctx, "stack", "%a: Tensor[(3, 5), float32], %b: Tensor[(3, 5), float32]", "axis=1");
  op(ctx, "stack", "%a: Tensor[(3, 5), int32], %b: Tensor[(3, 5), int32]", "axis=-1");
  op(ctx, "stack", "%a: Tensor[(7,), float32]", "axis=0");
  op(ctx, "stack", "%a: Tensor[(), float32], %b: Tensor[(), float32], %c: Tensor[(), float32]",
     "axis=0");
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- split (a tuple result) ------------------------------------------------------------------ */

START_TEST(test_split) {
  kiln_context *ctx = kiln_test_new_ctx();
  op(ctx, "split", "%x: Tensor[(4, 9), float32]", "sections=3, axis=1");
  op(ctx, "split", "%x: Tensor[(8, 3), float32]", "indices=[2, 5]");
  op(ctx, "split", "%x: Tensor[(8, 3), int32]", "indices=[0, 3, 3, 8]");
  op(ctx, "split", "%x: Tensor[(2, 3, 7), float32]", "indices=[1, 6], axis=-1");
  op(ctx, "split", "%x: Tensor[(5, 3), float32]", "sections=1");
  op(ctx, "split", "%x: Tensor[(5, 3), float32]", NULL);
  const char *n[] = {"n"};
  int64_t v[] = {3};
  op_dims(ctx, "split", "%x: Tensor[(n, 4), float32]", "sections=2, axis=1", 1, n, v);
  op_dims(ctx, "split", "%x: Tensor[(n, 3), float32]", "indices=[1]", 1, n, v);
  /* one block per part, named split, split_1, ... */
  char *t = lowered_text(ctx, "split", "%x: Tensor[(4, 9), float32]", "sections=3, axis=1");
  ck_assert_msg(strstr(t, "split_1") && strstr(t, "split_2") && !strstr(t, "split_3"), "%s", t);
  free(t);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- strided_slice --------------------------------------------------------------------------- */

START_TEST(test_strided_slice) {
  kiln_context *ctx = kiln_test_new_ctx();
  const char *x = "%x: Tensor[(10,), float32]";
  op(ctx, "strided_slice", x, "begin=[2], end=[8], strides=[3]");
  op(ctx, "strided_slice", x, "begin=[-3], end=[2147483647]");
  op(ctx, "strided_slice", x, "begin=[0], end=[100]");
  op(ctx, "strided_slice", x, "begin=[7], end=[3]");
  op(ctx, "strided_slice", x, "begin=[-100], end=[-8]");
  op(ctx, "strided_slice", x, "strides=[-1]");
  op(ctx, "strided_slice", x, "begin=[8], end=[2], strides=[-2]");
  op(ctx, "strided_slice", x, "begin=[-1], end=[-11], strides=[-4]");
  op(ctx, "strided_slice", x, "begin=[100], end=[-100], strides=[-3]");
  const char *y = "%x: Tensor[(4, 5, 7), int32]";
  op(ctx, "strided_slice", y, "begin=[1, 0], end=[3, 5], strides=[1, 2]");
  op(ctx, "strided_slice", y, "begin=[1], end=[3, 2]");
  op(ctx, "strided_slice", y, "begin=[1, 2], end=[2147483647, 4], axes=[2, 0]");
  op(ctx, "strided_slice", y, "begin=[-2], axes=[-1]");
  op(ctx, "strided_slice", y, "begin=[3, 4, 6], end=[0, 0, 0], strides=[-1, -2, -3]");
  const char *n[] = {"n"};
  int64_t v[] = {6};
  const char *s = "%x: Tensor[(n, 4), float32]";
  op_dims(ctx, "strided_slice", s, "begin=[0, 1], end=[2147483647, 3]", 1, n, v);
  op_dims(ctx, "strided_slice", s, "begin=[1, 1], end=[3, 3], axes=[1, 0]", 1, n, v);
  op_dims(ctx, "strided_slice", s, "begin=[-3], end=[2147483647]", 1, n, v);
  op_dims(ctx, "strided_slice", s, "begin=[1], end=[2147483647], strides=[2]", 1, n, v);
  op_dims(ctx, "strided_slice", s, "strides=[-1]", 1, n, v);
  op_dims(ctx, "strided_slice", s, "begin=[0], end=[-1]", 1, n, v);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- take ------------------------------------------------------------------------------------ */

/* Indices (parameter 1) uniform in [lo, hi] given by ud. */
static void fill_indices(int param, relay_tensor *t, uint64_t *rng, void *ud) {
  const int64_t *range = ud;
  if (param != 1) return;
  int64_t n = relay_tensor_numel(t);
  for (int64_t i = 0; i < n; i++)
    relay_tensor_set(t, i, (double)lh_rand_int(rng, range[0], range[1]));
}

static void take(kiln_context *ctx, const char *params, const char *attrs, int64_t lo, int64_t hi,
                 uint64_t seed) {
  int64_t range[2] = {lo, hi};
  lh_case c;
  memset(&c, 0, sizeof c);
  c.seed = seed;
  c.fill = fill_indices;
  c.fill_ud = range;
  lh_check_op_case(ctx, "take", params, attrs, &c);
}

START_TEST(test_take) {
  kiln_context *ctx = kiln_test_new_ctx();
  /* clip (the default) with indices far out of range on both sides */
  take(ctx, "%x: Tensor[(7, 3), float32], %i: Tensor[(2, 5), int32]", NULL, -12, 12, 1);
  take(ctx, "%x: Tensor[(7, 3), float32], %i: Tensor[(2, 5), int64]", "axis=1, mode=\"clip\"",
       -5, 5, 2);
  /* wrap: Python modulo */
  take(ctx, "%x: Tensor[(7, 3), float32], %i: Tensor[(11,), int32]", "mode=\"wrap\"", -30, 30, 3);
  take(ctx, "%x: Tensor[(2, 5, 3), int32], %i: Tensor[(4, 3), int8]", "axis=-2, mode=\"wrap\"",
       -20, 20, 4);
  /* raise: indices in [-d, d - 1] */
  take(ctx, "%x: Tensor[(7, 3), float32], %i: Tensor[(13,), int64]", "mode=\"raise\"", -7, 6, 5);
  take(ctx, "%x: Tensor[(3, 4, 5), float32], %i: Tensor[(2, 2), int32]", "axis=2, mode=\"raise\"",
       -5, 4, 6);
  /* a scalar index drops the axis; unsigned indices */
  take(ctx, "%x: Tensor[(7, 3), float32], %i: Tensor[(), int32]", "axis=1", -1, 5, 7);
  take(ctx, "%x: Tensor[(9,), float32], %i: Tensor[(4, 3), uint8]", NULL, 0, 12, 8);
  take(ctx, "%x: Tensor[(5, 4), bool], %i: Tensor[(6,), int16]", "axis=1, mode=\"wrap\"", -9, 9, 9);
  const char *n[] = {"n"};
  int64_t v[] = {6};
  int64_t range[2] = {-8, 8};
  lh_case c;
  memset(&c, 0, sizeof c);
  c.fill = fill_indices;
  c.fill_ud = range;
  c.ndims = 1;
  c.dim_names[0] = n[0];
  c.dim_values[0] = v[0];
  lh_check_op_case(ctx, "take", "%x: Tensor[(n, 3), float32], %i: Tensor[(5,), int32]", NULL, &c);
  lh_check_op_case(ctx, "take", "%x: Tensor[(n, 3), float32], %i: Tensor[(5,), int32]",
                   "mode=\"wrap\"", &c);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- broadcast_to ---------------------------------------------------------------------------- */

START_TEST(test_broadcast_to) {
  kiln_context *ctx = kiln_test_new_ctx();
  op(ctx, "broadcast_to", "%x: Tensor[(3, 1), float32]", "shape=[2, 3, 5]");
  op(ctx, "broadcast_to", "%x: Tensor[(1,), float32]", "shape=[7]");
  op(ctx, "broadcast_to", "%x: Tensor[(), int32]", "shape=[2, 3]");
  op(ctx, "broadcast_to", "%x: Tensor[(1, 5, 1), float32]", "shape=[3, 5, 7]");
  op(ctx, "broadcast_to", "%x: Tensor[(4, 5), float32]", "shape=[4, 5]");
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- reductions ------------------------------------------------------------------------------ */

START_TEST(test_sum) {
  kiln_context *ctx = kiln_test_new_ctx();
  op(ctx, "sum", "%x: Tensor[(7, 13), float32]", "axis=[1]");
  op(ctx, "sum", "%x: Tensor[(7, 13), float32]", "axis=[0], keepdims=1");
  op(ctx, "sum", "%x: Tensor[(7, 13), float32]", NULL);
  op(ctx, "sum", "%x: Tensor[(3, 5, 7), float32]", "axis=[-1, 0]");
  op(ctx, "sum", "%x: Tensor[(3, 5, 7), float32]", "axis=[0, 2], keepdims=1");
  op(ctx, "sum", "%x: Tensor[(3, 5, 7), float32]", "keepdims=1");
  op(ctx, "sum", "%x: Tensor[(2, 3, 5, 7), int32]", "axis=[1, 3]");
  op_range(ctx, "sum", "%x: Tensor[(9, 40), int8]", "axis=[1]", -100, 100, 9);
  op(ctx, "sum", "%x: Tensor[(), float32]", NULL);
  op(ctx, "sum", "%x: Tensor[(4, 0), float32]", "axis=[1]");
  const char *n[] = {"n"};
  int64_t v[] = {5};
  op_dims(ctx, "sum", "%x: Tensor[(n, 6), float32]", "axis=[0]", 1, n, v);
  op_dims(ctx, "sum", "%x: Tensor[(n, 6), float32]", "axis=[1], keepdims=1", 1, n, v);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_mean) {
  kiln_context *ctx = kiln_test_new_ctx();
  op(ctx, "mean", "%x: Tensor[(7, 13), float32]", "axis=[1]");
  op(ctx, "mean", "%x: Tensor[(3, 5, 7), float32]", "axis=[0, 2], keepdims=1");
  op(ctx, "mean", "%x: Tensor[(3, 5, 7), float32]", NULL);
  op(ctx, "mean", "%x: Tensor[(3, 5, 7), float64]", "axis=[-2]");
  op(ctx, "mean", "%x: Tensor[(), float32]", NULL);
  lh_check_op(ctx, "mean", "%x: Tensor[(4, 9), float16]", "axis=[1]", 2e-3, 2e-3);
  const char *n[] = {"n"};
  int64_t v[] = {5};
  op_dims(ctx, "mean", "%x: Tensor[(n, 6), float32]", "axis=[0]", 1, n, v);
  /* two stages: the sums, then the division */
  char *t = lowered_text(ctx, "mean", "%x: Tensor[(7, 13), float32]", "axis=[1]");
  ck_assert_msg(strstr(t, "block \"mean_sum\"") && strstr(t, "block \"mean\"("), "%s", t);
  free(t);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_prod) {
  kiln_context *ctx = kiln_test_new_ctx();
  op_range(ctx, "prod", "%x: Tensor[(7, 13), float32]", "axis=[1]", 0.5, 1.5, 1);
  op_range(ctx, "prod", "%x: Tensor[(3, 5, 7), float32]", "axis=[0, 2], keepdims=1", -1.5, 1.5, 2);
  op_range(ctx, "prod", "%x: Tensor[(3, 5), int32]", NULL, -3, 3, 3);
  op_range(ctx, "prod", "%x: Tensor[(6, 7), int16]", "axis=[0]", -4, 4, 4);
  op(ctx, "prod", "%x: Tensor[(4, 0), float32]", "axis=[1]");
  op(ctx, "prod", "%x: Tensor[(0, 3), int32]", "axis=[0], keepdims=1");
  op(ctx, "mean", "%x: Tensor[(2, 0, 3), float32]", "axis=[1]");
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_max_min) {
  kiln_context *ctx = kiln_test_new_ctx();
  static const char *const ops[] = {"max", "min"};
  for (int i = 0; i < 2; i++) {
    const char *o = ops[i];
    op(ctx, o, "%x: Tensor[(7, 13), float32]", "axis=[1]");
    op(ctx, o, "%x: Tensor[(7, 13), float32]", NULL);
    op(ctx, o, "%x: Tensor[(3, 5, 7), float32]", "axis=[-1, 0], keepdims=1");
    op_range(ctx, o, "%x: Tensor[(3, 5, 7), int8]", "axis=[1]", -128, 127, 5);
    op_range(ctx, o, "%x: Tensor[(9, 5), uint8]", "axis=[0]", 0, 255, 6);
    op_range(ctx, o, "%x: Tensor[(9, 5), int64]", "axis=[0]", -1e6, 1e6, 7);
    op(ctx, o, "%x: Tensor[(9, 5), bool]", "axis=[1]");
    op_range(ctx, o, "%x: Tensor[(9, 5), float32]", "axis=[1]", -1e30, -1e29, 8);
    op(ctx, o, "%x: Tensor[(), float32]", NULL);
  }
  /* over no elements the reference fails; the blocks write the reduction's identity */
  char *t = lowered_text(ctx, "max", "%x: Tensor[(4, 0), float32]", "axis=[1]");
  ck_assert_msg(strstr(t, "= -inf_f32;") != NULL, "%s", t);
  free(t);
  t = lowered_text(ctx, "min", "%x: Tensor[(4, 0), uint64]", "axis=[1]");
  ck_assert_msg(strstr(t, "= 9223372036854775807u64;") != NULL, "%s", t);
  free(t);
  t = lowered_text(ctx, "max", "%x: Tensor[(4, 0), int8]", "axis=[1]");
  ck_assert_msg(strstr(t, "= -128i8;") != NULL, "%s", t);
  free(t);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- several ops in one function ------------------------------------------------------------- */

/* A fused-like chain: intermediates between the ops, a tuple result. */
START_TEST(test_chain) {
  kiln_context *ctx = kiln_test_new_ctx();
  lh_case c;
  memset(&c, 0, sizeof c);
  c.rtol = RTOL;
  c.atol = ATOL;
  c.relay_text =
      "def @main(%x: Tensor[(2, 3, 5), float32], %y: Tensor[(5, 6), float32]) {\n"
      "  %0 = transpose(%x, axes=[2, 0, 1]);\n"
      "  %1 = reshape(%0, newshape=[5, 6]);\n"
      "  %2 = concatenate(%1, %y, axis=1);\n"
      "  %3 = mean(%2, axis=[1], keepdims=1);\n"
      "  %4 = split(%2, sections=2, axis=1);\n"
      "  %5 = %4.1;\n"
      "  %6 = strided_slice(%5, begin=[4, 1], end=[0, 6], strides=[-2, 2]);\n"
      "  %7 = max(%6, axis=[0]);\n"
      "  (%3, %7, %4.0)\n"
      "}\n";
  lh_check(ctx, &c);
  kiln_test_done_ctx(ctx);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("lower_transform");
  TCase *tc = tcase_create("transform");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_cast_numeric);
  tcase_add_test(tc, test_cast_float_to_int_special);
  tcase_add_test(tc, test_reshape);
  tcase_add_test(tc, test_squeeze_expand_flatten);
  tcase_add_test(tc, test_reshape_plain_indices);
  tcase_add_test(tc, test_transpose);
  tcase_add_test(tc, test_concatenate);
  tcase_add_test(tc, test_stack);
  tcase_add_test(tc, test_split);
  tcase_add_test(tc, test_strided_slice);
  tcase_add_test(tc, test_take);
  tcase_add_test(tc, test_broadcast_to);
  suite_add_tcase(s, tc);
  TCase *tr = tcase_create("reduce");
  tcase_set_timeout(tr, 120);
  tcase_add_test(tr, test_sum);
  tcase_add_test(tr, test_mean);
  tcase_add_test(tr, test_prod);
  tcase_add_test(tr, test_max_min);
  tcase_add_test(tr, test_chain);
  suite_add_tcase(s, tr);
  return s;
}

KILN_TEST_MAIN

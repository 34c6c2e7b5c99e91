/* test_model.c: the runtime executor (runtime/model.c, session.c) and its JSON reader
 * (runtime/json.c) over hand-made artifacts: kernels written as TIR text and compiled once to
 * a shared object (tgt_aot_compile), META and PLAN written by hand, packed with
 * rt_artifact_serialize / rt_artifact_write. Covers a 3-kernel chain with arena reuse and
 * scalar arguments, weights used in place, bucket dispatch, padding along the leading axis
 * (sliced in place) and an inner axis (copied), the error paths of runs, profiling, two
 * sessions in two threads, a model freed before its session, and a table of corrupted
 * META/PLAN variants that must be refused with KILN_ERR_CORRUPT naming the field. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ir/text.h"
#include "runtime/artifact.h"
#include "runtime/json.h"
#include "runtime/model.h"
#include "target/aot.h"
#include "test_util.h"

/* ---- The kernels, compiled once for every test ------------------------------------------ */

static const char *kernels_tir =
    "func @scale2(n: int64, A: buffer(float32, [n, 4]), B: buffer(float32, [n, 4])) {\n"
    "  for i: int64 in range(0i64, n) {\n"
    "    for j: int64 in range(0i64, 4i64) {\n"
    "      B[i, j] = A[i, j] * 2f32;\n"
    "    }\n"
    "  }\n"
    "}\n"
    "func @add_bias(n: int64, A: buffer(float32, [n, 4]), P: buffer(float32, [4]), "
    "B: buffer(float32, [n, 4])) {\n"
    "  for i: int64 in range(0i64, n) {\n"
    "    for j: int64 in range(0i64, 4i64) {\n"
    "      B[i, j] = A[i, j] + P[j];\n"
    "    }\n"
    "  }\n"
    "}\n"
    "func @square(n: int64, A: buffer(float32, [n, 4]), B: buffer(float32, [n, 4])) {\n"
    "  for i: int64 in range(0i64, n) {\n"
    "    for j: int64 in range(0i64, 4i64) {\n"
    "      B[i, j] = A[i, j] * A[i, j];\n"
    "    }\n"
    "  }\n"
    "}\n"
    "func @add1_cols(n: int64, A: buffer(float32, [4, n]), B: buffer(float32, [4, n])) {\n"
    "  for i: int64 in range(0i64, 4i64) {\n"
    "    for j: int64 in range(0i64, n) {\n"
    "      B[i, j] = A[i, j] + 1f32;\n"
    "    }\n"
    "  }\n"
    "}\n";

static unsigned char *code; /* the shared object's bytes */
static size_t code_len;

/* Compiles the kernels into a temp dir and keeps the .so bytes (an unchecked fixture: runs
 * once, before the tests fork). */
static void compile_kernels(void) {
  if (code) return;
  kiln_context *ctx = kiln_test_new_ctx();
  tgt_target host;
  ck_ok(ctx, tgt_target_parse(ctx, "llvm", &host));
  kiln_tir_module *mod = NULL;
  ck_ok(ctx, ir_parse_module(ctx, kernels_tir, strlen(kernels_tir), "kernels", &mod));
  const char *base = getenv("TMPDIR");
  char dir[256], so[300];
  snprintf(dir, sizeof dir, "%s/kiln-test-model-XXXXXX", base && *base ? base : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(so, sizeof so, "%s/kernels.so", dir);
  ck_ok(ctx, tgt_aot_compile(ctx, &host, mod, so, NULL));
  code = (unsigned char *)kiln_test_read_file(so, &code_len);
  unlink(so);
  rmdir(dir);
  kiln_tir_module_free(mod);
  kiln_test_done_ctx(ctx);
}

/* ---- Artifacts by hand ------------------------------------------------------------------ */

/* JSON is written with single quotes here (easier to read in C); this turns them into double
 * quotes (malloc'ed). */
static char *J(const char *s) {
  char *out = strdup(s);
  ck_assert_ptr_nonnull(out);
  for (char *p = out; *p; p++)
    if (*p == '\'') *p = '"';
  return out;
}

/* The bytes of an artifact with these META / PLAN texts (single-quoted), PARAMS bytes and
 * the compiled kernels (unless with_code is 0). Free with free. */
static void *pack(const char *meta, const char *plan, const void *params, size_t nparams,
                  int with_code, uint64_t *size) {
  char *m = J(meta), *p = J(plan);
  rt_section_in sec[4] = {
      {RT_SECTION_META, m, strlen(m)},
      {RT_SECTION_PLAN, p, strlen(p)},
      {RT_SECTION_PARAMS, params, nparams},
      {RT_SECTION_CODE, code, code_len},
  };
  void *bytes = NULL;
  kiln_status st = rt_artifact_serialize(sec, with_code ? 4 : 3, &bytes, size);
  ck_assert_msg(st == KILN_OK, "serialize: %s", kiln_last_error());
  free(m);
  free(p);
  return bytes;
}

/* Loads an artifact from memory under the name "model.kiln"; returns the status. */
static kiln_status load(const char *meta, const char *plan, const void *params, size_t nparams,
                        kiln_model **out) {
  uint64_t size;
  void *bytes = pack(meta, plan, params, nparams, 1, &size);
  kiln_status st = kiln_model_load_memory(bytes, (size_t)size, "model.kiln", out);
  free(bytes);
  return st;
}

/* Model A: y = (2x + bias)^2 for x of shape (n, 4), buckets n = 2 and n = 4. Three kernels
 * with n as a scalar argument; the arena holds T1 at 0, T2 at 64 and y at 0 again (T1 is dead
 * by then). Outputs: y, the bias weight itself, and the input x itself. PARAMS: a dummy
 * weight at 0 and the bias at 64. */
static const char *meta_a =
    "{'format': 'kiln-model', 'kiln_version': '0.1.0', 'created': '2026-01-01T00:00:00Z',"
    " 'model': 'chain', 'target': 'llvm', 'options': {'opt_level': 3},"
    " 'inputs': [{'name': 'x', 'dtype': 'float32'}],"
    " 'outputs': [{'name': 'y', 'dtype': 'float32', 'follows': [[0, 0], null]},"
    "  {'name': 'bias', 'dtype': 'float32', 'follows': [null]},"
    "  {'name': 'x_out', 'dtype': 'float32', 'follows': [[0, 0], null]}],"
    " 'buckets': [{'inputs': [[2, 4]], 'outputs': [[2, 4], [4], [2, 4]], 'weight': 1.0},"
    "  {'inputs': [[4, 4]], 'outputs': [[4, 4], [4], [4, 4]], 'weight': 2}],"
    " 'paddable': []}";

static const char *plan_a =
    "{'kernels': [{'symbol': 'scale2', 'name': 'fused_scale2', 'hash': '0123456789abcdef',"
    "   'workload': 'multiply (n,4)f32', 'schedule': 'default'},"
    "  {'symbol': 'add_bias', 'name': 'fused_add_bias', 'hash': 'fedcba9876543210',"
    "   'workload': 'add (n,4)f32 (4)f32', 'schedule': 'database'},"
    "  {'symbol': 'square', 'name': 'fused_square', 'hash': '00000000ffffffff',"
    "   'workload': 'multiply (n,4)f32', 'schedule': 'default'}],"
    " 'params': [{'offset': 0, 'nbytes': 16, 'dtype': 'float32', 'shape': [4]},"
    "  {'offset': 64, 'nbytes': 16, 'dtype': 'float32', 'shape': [4]}],"
    " 'buckets': ["
    "  {'arena_bytes': 128, 'naive_bytes': 192,"
    "   'tensors': [{'kind': 'input', 'index': 0, 'dtype': 'float32', 'shape': [2, 4]},"
    "    {'kind': 'param', 'index': 1, 'dtype': 'float32', 'shape': [4]},"
    "    {'kind': 'arena', 'offset': 0, 'dtype': 'float32', 'shape': [2, 4]},"
    "    {'kind': 'arena', 'offset': 64, 'dtype': 'float32', 'shape': [2, 4]},"
    "    {'kind': 'arena', 'offset': 0, 'dtype': 'float32', 'shape': [2, 4]}],"
    "   'calls': [{'kernel': 0, 'args': [{'i64': 2}, 0, 2]},"
    "    {'kernel': 1, 'args': [{'i64': 2}, 2, 1, 3]},"
    "    {'kernel': 2, 'args': [{'i64': 2}, 3, 4]}],"
    "   'outputs': [4, 1, 0]},"
    "  {'arena_bytes': 128, 'naive_bytes': 192,"
    "   'tensors': [{'kind': 'input', 'index': 0, 'dtype': 'float32', 'shape': [4, 4]},"
    "    {'kind': 'param', 'index': 1, 'dtype': 'float32', 'shape': [4]},"
    "    {'kind': 'arena', 'offset': 0, 'dtype': 'float32', 'shape': [4, 4]},"
    "    {'kind': 'arena', 'offset': 64, 'dtype': 'float32', 'shape': [4, 4]},"
    "    {'kind': 'arena', 'offset': 0, 'dtype': 'float32', 'shape': [4, 4]}],"
    "   'calls': [{'kernel': 0, 'args': [{'i64': 4}, 0, 2]},"
    "    {'kernel': 1, 'args': [{'i64': 4}, 2, 1, 3]},"
    "    {'kernel': 2, 'args': [{'i64': 4}, 3, 4]}],"
    "   'outputs': [4, 1, 0]}]}";

static const float bias_a[4] = {0.5f, 1.0f, 1.5f, 2.0f};

/* Model A's PARAMS section: 80 bytes, the dummy (9s) at 0 and the bias at 64. */
static const unsigned char *params_a(void) {
  static float p[20];
  for (int i = 0; i < 4; i++) p[i] = 9.0f;
  memcpy(p + 16, bias_a, sizeof bias_a);
  return (const unsigned char *)p;
}
#define PARAMS_A_SIZE 80

static kiln_model *load_a(void) {
  kiln_model *m = NULL;
  kiln_status st = load(meta_a, plan_a, params_a(), PARAMS_A_SIZE, &m);
  ck_assert_msg(st == KILN_OK, "loading model A: %s", kiln_last_error());
  return m;
}

/* Model B: y = x + 1 for x of shape (4, n), buckets n = 4 and n = 8, axis 1 paddable from
 * META; the output follows axis 1, so a padded run slices an inner axis (a copy). No
 * weights (an empty PARAMS section), no optional META fields. */
static const char *meta_b =
    "{'format': 'kiln-model', 'inputs': [{'name': 'x', 'dtype': 'float32'}],"
    " 'outputs': [{'name': 'y', 'dtype': 'float32', 'follows': [null, [0, 1]]}],"
    " 'buckets': [{'inputs': [[4, 4]], 'outputs': [[4, 4]]},"
    "  {'inputs': [[4, 8]], 'outputs': [[4, 8]]}],"
    " 'paddable': [[0, 1]]}";

static const char *plan_b =
    "{'kernels': [{'symbol': 'add1_cols', 'name': 'fused_add1', 'hash': '1111111111111111',"
    "   'workload': 'add (4,n)f32', 'schedule': 'default'}],"
    " 'params': [],"
    " 'buckets': ["
    "  {'arena_bytes': 64, 'naive_bytes': 64,"
    "   'tensors': [{'kind': 'input', 'index': 0, 'dtype': 'float32', 'shape': [4, 4]},"
    "    {'kind': 'arena', 'offset': 0, 'dtype': 'float32', 'shape': [4, 4]}],"
    "   'calls': [{'kernel': 0, 'args': [{'i64': 4}, 0, 1]}], 'outputs': [1]},"
    "  {'arena_bytes': 128, 'naive_bytes': 128,"
    "   'tensors': [{'kind': 'input', 'index': 0, 'dtype': 'float32', 'shape': [4, 8]},"
    "    {'kind': 'arena', 'offset': 0, 'dtype': 'float32', 'shape': [4, 8]}],"
    "   'calls': [{'kernel': 0, 'args': [{'i64': 8}, 0, 1]}], 'outputs': [1]}]}";

static kiln_model *load_b(void) {
  kiln_model *m = NULL;
  kiln_status st = load(meta_b, plan_b, NULL, 0, &m);
  ck_assert_msg(st == KILN_OK, "loading model B: %s", kiln_last_error());
  return m;
}

/* ---- Running helpers -------------------------------------------------------------------- */

/* A float32 tensor over data with the given shape (the shape array is borrowed). */
static kiln_tensor f32(float *data, int ndim, int64_t *shape) {
  return (kiln_tensor){.data = data, .device_type = 1, .ndim = ndim, .dtype = KILN_FLOAT32,
                       .shape = shape};
}

/* Binds x (rows x 4, x[i] = seed + i * 0.25) to model A's session and runs it. */
static kiln_status run_a(kiln_session *s, float *x, int rows, float seed) {
  static int64_t shape[2];
  for (int i = 0; i < rows * 4; i++) x[i] = seed + (float)i * 0.25f;
  int64_t sh[2] = {rows, 4};
  memcpy(shape, sh, sizeof sh);
  kiln_tensor t = f32(x, 2, shape);
  ck_ok(NULL, kiln_session_set_input(s, 0, &t));
  return kiln_session_run(s);
}

/* Checks model A's output y against (2x + bias)^2 for the given rows. */
static void check_y(const kiln_tensor *y, const float *x, int rows) {
  ck_assert_int_eq(y->ndim, 2);
  ck_assert_int_eq(y->shape[0], rows);
  ck_assert_int_eq(y->shape[1], 4);
  ck_assert(kiln_dtype_eq(y->dtype, KILN_FLOAT32));
  const float *v = y->data;
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < 4; j++) {
      float want = (2 * x[i * 4 + j] + bias_a[j]) * (2 * x[i * 4 + j] + bias_a[j]);
      ck_assert_msg(v[i * 4 + j] == want, "y[%d,%d] = %g, want %g", i, j, v[i * 4 + j], want);
    }
}

/* The last error contains needle. */
#define ck_last_error_has(needle)                                                        \
  ck_assert_msg(strstr(kiln_last_error(), (needle)) != NULL, "error message '%s' lacks '%s'", \
                kiln_last_error(), (needle))

/* ---- JSON reader ------------------------------------------------------------------------ */

static rt_json_doc *parse_ok(const char *text) {
  char err[256];
  rt_json_doc *d = NULL;
  kiln_status st = rt_json_parse(text, strlen(text), &d, err, sizeof err);
  ck_assert_msg(st == KILN_OK, "parse '%s': %s", text, err);
  return d;
}

static void parse_bad(const char *text, size_t len, const char *needle) {
  char err[256];
  rt_json_doc *d = (rt_json_doc *)1;
  kiln_status st = rt_json_parse(text, len, &d, err, sizeof err);
  ck_assert_msg(st == KILN_ERR_PARSE, "'%.40s' parsed (status %d)", text, st);
  ck_assert_ptr_null(d);
  ck_assert_msg(strstr(err, needle) != NULL, "'%.40s': error '%s' lacks '%s'", text, err, needle);
}

START_TEST(test_json_values) {
  rt_json_doc *d = parse_ok(
      " {\"a\": [1, -2, 3.5, 1e3, true, false, null], \"s\": \"q\\\"\\\\\\/\\b\\f\\n\\r\\t\","
      " \"u\": \"\\u00e9\\u20ac\\ud83d\\ude00\", \"raw\": \"\xc3\xa9\", \"nul\": \"a\\u0000b\","
      " \"big\": 9007199254740993, \"min\": -9223372036854775808,"
      " \"over\": 9223372036854775808, \"neg0\": -0, \"o\": {}} ");
  const rt_json *r = rt_json_root(d);
  ck_assert_int_eq(r->kind, RT_JSON_OBJECT);
  ck_assert_int_eq(r->n, 10);
  const rt_json *a = rt_json_get(r, "a");
  ck_assert_int_eq(a->kind, RT_JSON_ARRAY);
  ck_assert_int_eq(a->n, 7);
  ck_assert(rt_json_at(a, 0)->is_int && rt_json_at(a, 0)->i == 1);
  ck_assert(rt_json_at(a, 1)->is_int && rt_json_at(a, 1)->i == -2);
  ck_assert(!rt_json_at(a, 2)->is_int && rt_json_at(a, 2)->num == 3.5);
  ck_assert(!rt_json_at(a, 3)->is_int && rt_json_at(a, 3)->num == 1000.0);
  ck_assert(rt_json_at(a, 4)->kind == RT_JSON_BOOL && rt_json_at(a, 4)->boolean == 1);
  ck_assert(rt_json_at(a, 5)->kind == RT_JSON_BOOL && rt_json_at(a, 5)->boolean == 0);
  ck_assert_int_eq(rt_json_at(a, 6)->kind, RT_JSON_NULL);
  ck_assert_ptr_null(rt_json_at(a, 7));
  ck_assert_ptr_null(rt_json_at(a, -1));
  ck_assert_ptr_null(rt_json_at(r, 0)); /* not an array */
  ck_assert_ptr_null(rt_json_get(a, "x")); /* not an object */
  ck_assert_ptr_null(rt_json_get(r, "missing"));
  ck_assert_str_eq(rt_json_get(r, "s")->str, "q\"\\/\b\f\n\r\t");
  ck_assert_str_eq(rt_json_get(r, "u")->str, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  ck_assert_str_eq(rt_json_get(r, "raw")->str, "\xc3\xa9");
  const rt_json *nul = rt_json_get(r, "nul");
  ck_assert_int_eq(nul->len, 3);
  ck_assert(memcmp(nul->str, "a\0b", 3) == 0);
  ck_assert(rt_json_get(r, "big")->is_int && rt_json_get(r, "big")->i == 9007199254740993LL);
  ck_assert(rt_json_get(r, "min")->is_int && rt_json_get(r, "min")->i == INT64_MIN);
  ck_assert(!rt_json_get(r, "over")->is_int);
  ck_assert(rt_json_get(r, "over")->num == 9223372036854775808.0);
  ck_assert(rt_json_get(r, "neg0")->is_int && rt_json_get(r, "neg0")->i == 0);
  ck_assert_int_eq(rt_json_get(r, "o")->n, 0);
  ck_assert_int_eq(rt_json_get(r, "a")->offset, 7); /* byte offset of the '[' */
  rt_json_free(d);
  rt_json_free(NULL);

  d = parse_ok("\"top\"");
  ck_assert_str_eq(rt_json_root(d)->str, "top");
  rt_json_free(d);
  ck_assert_str_eq(rt_json_kind_name(RT_JSON_OBJECT), "an object");

  /* A large array (the arena grows over several chunks, big allocations on their own). */
  char *big = malloc(200000);
  size_t n = 0;
  big[n++] = '[';
  for (int i = 0; i < 30000; i++) n += (size_t)sprintf(big + n, "%s%d", i ? "," : "", i);
  big[n++] = ']';
  big[n] = 0;
  d = parse_ok(big);
  ck_assert_int_eq(rt_json_root(d)->n, 30000);
  ck_assert_int_eq(rt_json_at(rt_json_root(d), 29999)->i, 29999);
  rt_json_free(d);
  free(big);
}
END_TEST

START_TEST(test_json_errors) {
  parse_bad("[1,]", 4, "byte 3: expected a value, found ']'");
  parse_bad("{\"a\": 1 \"b\": 2}", 15, "byte 8: expected ',' or '}' in an object");
  parse_bad("{\"a\" 1}", 7, "expected ':'");
  parse_bad("{1: 2}", 6, "expected a string key");
  parse_bad("[1 2]", 5, "expected ',' or ']' in an array");
  parse_bad("1 2", 3, "byte 2: unexpected '2' after the value");
  parse_bad("", 0, "found the end of the text");
  parse_bad("   ", 3, "found the end of the text");
  parse_bad("01", 2, "leading zero");
  parse_bad("1.", 2, "no digit after '.'");
  parse_bad("1e+", 3, "no digit in the exponent");
  parse_bad("-", 1, "invalid number");
  parse_bad("1e999", 5, "out of range");
  parse_bad("nan", 3, "expected a value");
  parse_bad("tru", 3, "expected a value");
  parse_bad("\"abc", 4, "byte 0: unterminated string");
  parse_bad("\"a\\x\"", 5, "invalid escape '\\x'");
  parse_bad("\"\\u12g4\"", 8, "4 hex digits");
  parse_bad("\"\\ud800\"", 8, "without its low half");
  parse_bad("\"\\ud800\\u0041\"", 14, "without its low half");
  parse_bad("\"\\udc00\"", 8, "lone low surrogate");
  parse_bad("\"\xff\"", 3, "invalid UTF-8");
  parse_bad("\"\xc0\xaf\"", 4, "invalid UTF-8");       /* overlong '/' */
  parse_bad("\"\xed\xa0\x80\"", 5, "invalid UTF-8");   /* an encoded surrogate */
  parse_bad("\"\xe2\x82\"", 4, "invalid UTF-8");       /* truncated sequence */
  parse_bad("\"a\nb\"", 5, "control character 0x0a");
  parse_bad("{\"k\": 1, \"k\": 2}", 16, "duplicate key \"k\"");
  parse_bad("[1]\0", 4, "unexpected byte 0x00");
  /* Nesting: 64 levels are fine, 65 are not. */
  char *ok = kiln_test_nested("", "[", 64, "1", "]", "");
  rt_json_doc *d = parse_ok(ok);
  rt_json_free(d);
  free(ok);
  char *deep = kiln_test_nested("", "[", 65, "1", "]", "");
  parse_bad(deep, strlen(deep), "byte 64: nesting deeper than 64 levels");
  free(deep);
  char *deep_obj = kiln_test_nested("", "{\"a\":", 200, "1", "}", "");
  parse_bad(deep_obj, strlen(deep_obj), "nesting deeper");
  free(deep_obj);
  /* Without an error buffer, and bad arguments. */
  rt_json_doc *x;
  ck_assert_int_eq(rt_json_parse("[", 1, &x, NULL, 0), KILN_ERR_PARSE);
  ck_assert_int_eq(rt_json_parse(NULL, 1, &x, NULL, 0), KILN_ERR_MISUSE);
  ck_assert_int_eq(rt_json_parse("1", 1, NULL, NULL, 0), KILN_ERR_MISUSE);
  /* Only len bytes are read: "[1]" inside a longer buffer. */
  d = NULL;
  ck_assert_int_eq(rt_json_parse("[1]xyz", 3, &d, NULL, 0), KILN_OK);
  rt_json_free(d);
}
END_TEST

/* ---- Loading and running ---------------------------------------------------------------- */

/* The chain: results, weights in place, input returned in place, arena reuse, queries. */
START_TEST(test_chain) {
  kiln_model *m = load_a();
  ck_assert_int_eq(kiln_model_num_inputs(m), 1);
  ck_assert_int_eq(kiln_model_num_outputs(m), 3);
  ck_assert_int_eq(kiln_model_num_buckets(m), 2);
  ck_assert_str_eq(kiln_model_input_name(m, 0), "x");
  ck_assert_str_eq(kiln_model_output_name(m, 1), "bias");
  ck_assert_int_eq(kiln_model_input_index(m, "x"), 0);
  ck_assert_int_eq(kiln_model_input_index(m, "y"), -1);
  ck_assert(kiln_dtype_eq(kiln_model_input_dtype(m, 0), KILN_FLOAT32));
  ck_assert(kiln_dtype_eq(kiln_model_output_dtype(m, 2), KILN_FLOAT32));
  ck_assert_int_eq(kiln_model_input_ndim(m, 0), 2);
  ck_assert_int_eq(kiln_model_output_ndim(m, 1), 1);
  int64_t sh[2];
  ck_ok(NULL, kiln_model_input_shape(m, 1, 0, sh));
  ck_assert(sh[0] == 4 && sh[1] == 4);
  ck_ok(NULL, kiln_model_output_shape(m, 0, 0, sh));
  ck_assert(sh[0] == 2 && sh[1] == 4);
  uint64_t planned, naive;
  ck_ok(NULL, kiln_model_bucket_memory(m, 1, &planned, &naive));
  ck_assert(planned == 128 && naive == 192);
  ck_assert_int_eq(kiln_model_bucket_num_calls(m, 0), 3);
  char *meta = J(meta_a);
  ck_assert_str_eq(kiln_model_meta_json(m), meta);
  free(meta);
  ck_assert_ptr_nonnull(strstr(kiln_model_plan_json(m), "\"arena_bytes\""));
  /* Out-of-range queries. */
  ck_assert_ptr_null(kiln_model_input_name(m, 1));
  ck_assert_ptr_null(kiln_model_output_name(m, -1));
  ck_assert(kiln_dtype_eq(kiln_model_output_dtype(m, 3), KILN_VOID));
  ck_assert_int_eq(kiln_model_input_ndim(m, 5), -1);
  ck_assert_int_eq(kiln_model_bucket_num_calls(m, 2), -1);
  ck_assert_int_eq(kiln_model_input_shape(m, 2, 0, sh), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_model_output_shape(m, 0, 3, sh), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_model_bucket_memory(m, -1, &planned, &naive), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_model_num_inputs(NULL), -1);

  kiln_session *s;
  ck_ok(NULL, kiln_session_new(m, &s));
  ck_assert_ptr_eq(kiln_session_model(s), m);
  ck_assert_int_eq(kiln_session_last_bucket(s), -1);
  kiln_tensor y, b, xo;
  ck_assert_int_eq(kiln_session_get_output(s, 0, &y), KILN_ERR_MISUSE); /* before a run */
  float x[16];
  for (int rows = 2; rows <= 4; rows += 2) {
    ck_ok(NULL, run_a(s, x, rows, (float)rows));
    ck_assert_int_eq(kiln_session_last_bucket(s), rows / 2 - 1);
    ck_ok(NULL, kiln_session_get_output(s, 0, &y));
    check_y(&y, x, rows);
    /* y sits at arena offset 0, over the dead T1. */
    ck_assert_ptr_eq(y.data, s->arena);
    /* The weight comes straight from the artifact's bytes. */
    ck_ok(NULL, kiln_session_get_output(s, 1, &b));
    ck_assert_ptr_eq(b.data, m->params + 64);
    ck_assert(b.ndim == 1 && b.shape[0] == 4);
    ck_assert(memcmp(b.data, bias_a, sizeof bias_a) == 0);
    /* The input returned as an output is the caller's buffer. */
    ck_ok(NULL, kiln_session_get_output(s, 2, &xo));
    ck_assert_ptr_eq(xo.data, x);
    ck_assert(xo.shape[0] == rows && xo.shape[1] == 4);
  }
  ck_assert_int_eq(kiln_session_get_output(s, 3, &y), KILN_ERR_MISUSE);
  /* A byte_offset is honoured. */
  float xb[9];
  int64_t shape[2] = {2, 4};
  for (int i = 0; i < 8; i++) xb[i + 1] = (float)i;
  kiln_tensor t = f32(xb, 2, shape);
  t.byte_offset = sizeof(float);
  ck_ok(NULL, kiln_session_set_input(s, 0, &t));
  ck_ok(NULL, kiln_session_run(s));
  ck_ok(NULL, kiln_session_get_output(s, 0, &y));
  check_y(&y, xb + 1, 2);
  kiln_session_free(s);
  kiln_model_free(m);
}
END_TEST

/* Padding along axis 0: the smallest bucket that fits, outputs sliced in place. */
START_TEST(test_pad_leading) {
  kiln_model *m = load_a();
  kiln_session *s;
  ck_ok(NULL, kiln_session_new(m, &s));
  ck_ok(NULL, kiln_session_set_paddable(s, 0, 0, 1));
  float x[16];
  kiln_tensor y, xo;
  ck_ok(NULL, run_a(s, x, 3, -1.0f));
  ck_assert_int_eq(kiln_session_last_bucket(s), 1);
  ck_ok(NULL, kiln_session_get_output(s, 0, &y));
  check_y(&y, x, 3);
  ck_assert_ptr_eq(y.data, s->arena); /* a prefix: no copy */
  ck_ok(NULL, kiln_session_get_output(s, 2, &xo));
  ck_assert_ptr_eq(xo.data, s->input_staging[0]); /* the padded copy, sliced in place */
  ck_assert(xo.shape[0] == 3 && memcmp(xo.data, x, 12 * sizeof(float)) == 0);
  ck_assert(((float *)s->input_staging[0])[12] == 0.0f); /* the padding is zero */
  /* One row fits both buckets: the smaller one wins. */
  ck_ok(NULL, run_a(s, x, 1, 5.0f));
  ck_assert_int_eq(kiln_session_last_bucket(s), 0);
  ck_ok(NULL, kiln_session_get_output(s, 0, &y));
  check_y(&y, x, 1);
  /* Zero rows: an empty output. */
  ck_ok(NULL, run_a(s, x, 0, 0.0f));
  ck_ok(NULL, kiln_session_get_output(s, 0, &y));
  ck_assert(y.shape[0] == 0 && y.shape[1] == 4);
  /* Withdrawn: 3 rows fit nothing again. */
  ck_ok(NULL, kiln_session_set_paddable(s, 0, 0, 0));
  ck_assert_int_eq(run_a(s, x, 3, 0.0f), KILN_ERR_SHAPE);
  ck_assert_int_eq(kiln_session_get_output(s, 0, &y), KILN_ERR_MISUSE); /* failed run */
  kiln_session_free(s);
  kiln_model_free(m);
}
END_TEST

/* Padding along axis 1 (declared in META): the output is copied out of the padded result. */
START_TEST(test_pad_inner) {
  kiln_model *m = load_b();
  kiln_session *s;
  ck_ok(NULL, kiln_session_new(m, &s));
  ck_assert_ptr_nonnull(s->output_staging[0]);
  for (int cols = 1; cols <= 8; cols++) {
    float x[32];
    int64_t shape[2] = {4, cols};
    for (int i = 0; i < 4 * cols; i++) x[i] = (float)(i * 3 % 7) - 2.5f;
    kiln_tensor t = f32(x, 2, shape), y;
    ck_ok(NULL, kiln_session_set_input(s, 0, &t));
    ck_ok(NULL, kiln_session_run(s));
    ck_assert_int_eq(kiln_session_last_bucket(s), cols <= 4 ? 0 : 1);
    ck_ok(NULL, kiln_session_get_output(s, 0, &y));
    ck_assert(y.ndim == 2 && y.shape[0] == 4 && y.shape[1] == cols);
    int exact = cols == 4 || cols == 8;
    ck_assert_ptr_eq(y.data, exact ? (void *)s->arena : (void *)s->output_staging[0]);
    const float *v = y.data;
    for (int i = 0; i < 4 * cols; i++)
      ck_assert_msg(v[i] == x[i] + 1.0f, "cols %d: y[%d] = %g, want %g", cols, i, v[i], x[i] + 1);
    if (!exact) { /* the padded input: rows of the bucket's width, zeros after the data */
      const float *p = (const float *)s->input_staging[0];
      int width = cols <= 4 ? 4 : 8;
      ck_assert(p[width + cols - 1] == x[cols + cols - 1]);
      ck_assert(p[width + cols] == 0.0f);
    }
  }
  kiln_session_free(s);
  kiln_model_free(m);
}
END_TEST

START_TEST(test_no_bucket) {
  kiln_model *m = load_a();
  kiln_session *s;
  ck_ok(NULL, kiln_session_new(m, &s));
  float x[32];
  ck_assert_int_eq(run_a(s, x, 3, 0.0f), KILN_ERR_SHAPE);
  ck_assert_str_eq(kiln_last_error(),
                   "model.kiln: no bucket fits input shapes (3,4); buckets: (2,4), (4,4) (axis 0 "
                   "of 'x' can be padded: kiln_session_set_paddable)");
  ck_assert_int_eq(kiln_session_last_bucket(s), -1);
  /* Larger than every bucket: no hint. */
  ck_assert_int_eq(run_a(s, x, 5, 0.0f), KILN_ERR_SHAPE);
  ck_last_error_has("no bucket fits input shapes (5,4)");
  ck_assert_ptr_null(strstr(kiln_last_error(), "can be padded"));
  /* Another extent on a non-paddable axis. */
  int64_t shape[2] = {2, 5};
  kiln_tensor t = f32(x, 2, shape);
  ck_ok(NULL, kiln_session_set_input(s, 0, &t));
  ck_assert_int_eq(kiln_session_run(s), KILN_ERR_SHAPE);
  ck_last_error_has("(2,5); buckets: (2,4), (4,4)");
  /* A good run after failed ones. */
  ck_ok(NULL, run_a(s, x, 4, 1.0f));
  kiln_session_free(s);
  kiln_model_free(m);
}
END_TEST

START_TEST(test_input_errors) {
  kiln_model *m = load_a();
  kiln_session *s;
  ck_ok(NULL, kiln_session_new(m, &s));
  ck_assert_int_eq(kiln_session_run(s), KILN_ERR_MISUSE);
  ck_last_error_has("input 0 ('x') is not bound");
  float x[16] = {0};
  int64_t shape[2] = {2, 4};
  kiln_tensor t = f32(x, 2, shape);
  t.dtype = KILN_INT32;
  ck_assert_int_eq(kiln_session_set_input(s, 0, &t), KILN_ERR_TYPE);
  ck_last_error_has("input 0 ('x') is float32, got int32");
  t.dtype = KILN_FLOAT32;
  int64_t strides[2] = {1, 2};
  t.strides = strides;
  ck_assert_int_eq(kiln_session_set_input(s, 0, &t), KILN_ERR_UNSUPPORTED);
  ck_last_error_has("strided tensors are not supported");
  ck_assert_int_eq(kiln_session_run(s), KILN_ERR_MISUSE); /* still unbound */
  int64_t compact[2] = {4, 1};
  t.strides = compact; /* compact strides are fine */
  ck_ok(NULL, kiln_session_set_input(s, 0, &t));
  t.strides = NULL;
  t.ndim = 1;
  ck_assert_int_eq(kiln_session_set_input(s, 0, &t), KILN_ERR_SHAPE);
  ck_last_error_has("has rank 2, got rank 1");
  t.ndim = 2;
  t.device_type = 2;
  ck_assert_int_eq(kiln_session_set_input(s, 0, &t), KILN_ERR_UNSUPPORTED);
  t.device_type = 1;
  t.data = NULL;
  ck_assert_int_eq(kiln_session_set_input(s, 0, &t), KILN_ERR_MISUSE);
  t.data = x;
  ck_assert_int_eq(kiln_session_set_input(s, 1, &t), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_session_set_input(s, 0, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_session_set_paddable(s, 0, 2, 1), KILN_ERR_MISUSE);
  ck_last_error_has("axis 2 out of range for input 'x' of rank 2");
  ck_assert_int_eq(kiln_session_set_paddable(s, 1, 0, 1), KILN_ERR_MISUSE);
  /* The shape was copied: changing the caller's array after binding changes nothing. */
  ck_ok(NULL, kiln_session_set_input(s, 0, &t));
  shape[0] = 3;
  ck_ok(NULL, kiln_session_run(s));
  ck_assert_int_eq(kiln_session_last_bucket(s), 0);
  /* NULL handles. */
  kiln_session *s2;
  ck_assert_int_eq(kiln_session_new(NULL, &s2), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_session_new(m, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_session_run(NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_session_get_output(NULL, 0, &t), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_session_set_profiling(NULL, 1), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_session_last_bucket(NULL), -1);
  kiln_session_free(NULL);
  kiln_model_free(NULL);
  kiln_session_free(s);
  kiln_model_free(m);
}
END_TEST

/* A kernel's error comes back with its status and message, prefixed with the kernel and the
 * call; the scalar argument reaches the kernel (3 rows declared for a (2, 4) tensor). */
START_TEST(test_kernel_error) {
  char *plan = strdup(plan_a);
  char *p = strstr(plan, "{'kernel': 1, 'args': [{'i64': 2}");
  ck_assert_ptr_nonnull(p);
  p[strlen("{'kernel': 1, 'args': [{'i64': ")] = '3';
  kiln_model *m;
  ck_ok(NULL, load(meta_a, plan, params_a(), PARAMS_A_SIZE, &m));
  free(plan);
  kiln_session *s;
  ck_ok(NULL, kiln_session_new(m, &s));
  float x[16];
  ck_assert_int_eq(run_a(s, x, 2, 0.0f), KILN_ERR_SHAPE);
  ck_last_error_has("model.kiln: kernel fused_add_bias (call 1 of bucket 0) failed: ");
  ck_last_error_has("add_bias: argument 1");
  kiln_tensor y;
  ck_assert_int_eq(kiln_session_get_output(s, 0, &y), KILN_ERR_MISUSE);
  ck_ok(NULL, run_a(s, x, 4, 0.0f)); /* the other bucket is fine */
  kiln_session_free(s);
  kiln_model_free(m);
}
END_TEST

START_TEST(test_profile) {
  kiln_model *m = load_a();
  kiln_session *s;
  ck_ok(NULL, kiln_session_new(m, &s));
  float x[16];
  ck_ok(NULL, run_a(s, x, 2, 0.0f)); /* not profiled */
  int n;
  const kiln_profile_entry *e;
  ck_ok(NULL, kiln_session_profile(s, &n, &e));
  ck_assert_int_eq(n, 0);
  ck_ok(NULL, kiln_session_set_profiling(s, 1));
  ck_ok(NULL, run_a(s, x, 4, 0.0f));
  ck_ok(NULL, run_a(s, x, 4, 1.0f));
  ck_ok(NULL, run_a(s, x, 2, 0.0f));
  ck_ok(NULL, kiln_session_profile(s, &n, &e));
  ck_assert_int_eq(n, 6);
  static const char *names[3] = {"fused_scale2", "fused_add_bias", "fused_square"};
  for (int i = 0; i < 6; i++) { /* bucket 0 first although bucket 1 ran first */
    ck_assert_int_eq(e[i].bucket, i / 3);
    ck_assert_int_eq(e[i].call, i % 3);
    ck_assert_str_eq(e[i].kernel, names[i % 3]);
    ck_assert_int_eq(e[i].count, i < 3 ? 1 : 2);
    ck_assert(e[i].min_us >= 0 && e[i].min_us <= e[i].max_us);
    ck_assert(e[i].total_us >= e[i].max_us);
  }
  /* JSON, parsed back. */
  char *json;
  ck_ok(NULL, kiln_session_profile_report(s, 1, &json));
  rt_json_doc *d = parse_ok(json);
  const rt_json *r = rt_json_root(d);
  ck_assert_int_eq(rt_json_get(r, "runs")->i, 3);
  ck_assert(rt_json_get(r, "total_us")->num >= 0);
  const rt_json *calls = rt_json_get(r, "calls");
  ck_assert_int_eq(calls->n, 6);
  for (int i = 0; i < 6; i++) {
    const rt_json *c = rt_json_at(calls, i);
    ck_assert_int_eq(rt_json_get(c, "bucket")->i, i / 3);
    ck_assert_int_eq(rt_json_get(c, "call")->i, i % 3);
    ck_assert_str_eq(rt_json_get(c, "kernel")->str, names[i % 3]);
    ck_assert_int_eq(rt_json_get(c, "count")->i, i < 3 ? 1 : 2);
    ck_assert(rt_json_get(c, "mean_us")->num <= rt_json_get(c, "max_us")->num + 1e-3);
    ck_assert(rt_json_get(c, "min_us")->num <= rt_json_get(c, "max_us")->num);
  }
  rt_json_free(d);
  kiln_rt_free(json);
  /* The table: every call, then the totals line. */
  char *table;
  ck_ok(NULL, kiln_session_profile_report(s, 0, &table));
  for (int i = 0; i < 3; i++) ck_assert_ptr_nonnull(strstr(table, names[i]));
  ck_assert_ptr_nonnull(strstr(table, "3 profiled runs"));
  ck_assert_ptr_nonnull(strstr(table, "total"));
  ck_assert_ptr_nonnull(strstr(table, "100.0%"));
  int lines = 0;
  for (const char *q = table; *q; q++) lines += *q == '\n';
  ck_assert_int_eq(lines, 1 + 1 + 6 + 1);
  kiln_rt_free(table);
  /* Off: nothing more is recorded; on again: cleared. */
  ck_ok(NULL, kiln_session_set_profiling(s, 0));
  ck_ok(NULL, run_a(s, x, 2, 0.0f));
  ck_ok(NULL, kiln_session_profile(s, &n, &e));
  ck_assert_int_eq(e[0].count, 1);
  ck_ok(NULL, kiln_session_set_profiling(s, 1));
  ck_ok(NULL, kiln_session_profile(s, &n, &e));
  ck_assert_int_eq(n, 0);
  ck_ok(NULL, kiln_session_profile_report(s, 1, &json));
  ck_assert_str_eq(json, "{\"runs\": 0, \"total_us\": 0.000, \"calls\": []}\n");
  kiln_rt_free(json);
  ck_assert_int_eq(kiln_session_profile_report(s, 1, NULL), KILN_ERR_MISUSE);
  kiln_session_free(s);
  kiln_model_free(m);
}
END_TEST

/* Two sessions over one model in two threads, each with its own bucket and data. */
typedef struct worker {
  kiln_model *m;
  int rows, failures;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  kiln_session *s;
  if (kiln_session_new(w->m, &s) != KILN_OK) {
    w->failures = -1;
    return NULL;
  }
  for (int it = 0; it < 300; it++) {
    float x[16];
    int64_t shape[2] = {w->rows, 4};
    for (int i = 0; i < w->rows * 4; i++) x[i] = (float)(it % 17) + (float)i * 0.5f + (float)w->rows;
    kiln_tensor t = f32(x, 2, shape), y;
    if (kiln_session_set_input(s, 0, &t) != KILN_OK || kiln_session_run(s) != KILN_OK ||
        kiln_session_get_output(s, 0, &y) != KILN_OK) {
      w->failures++;
      continue;
    }
    const float *v = y.data;
    for (int i = 0; i < w->rows * 4; i++) {
      float a = 2 * x[i] + bias_a[i % 4];
      if (v[i] != a * a) w->failures++;
    }
  }
  kiln_session_free(s);
  return NULL;
}

START_TEST(test_concurrent_sessions) {
  kiln_model *m = load_a();
  worker w[2] = {{m, 2, 0}, {m, 4, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  ck_assert_int_eq(w[0].failures, 0);
  ck_assert_int_eq(w[1].failures, 0);
  kiln_model_free(m);
}
END_TEST

/* The user's reference dropped first: the session keeps the model alive. */
START_TEST(test_model_freed_first) {
  kiln_model *m = load_a();
  kiln_session *s1, *s2;
  ck_ok(NULL, kiln_session_new(m, &s1));
  ck_ok(NULL, kiln_session_new(m, &s2));
  ck_assert_int_eq(atomic_load(&m->refs), 3);
  kiln_model_free(m);
  kiln_session_free(s2);
  float x[16];
  ck_ok(NULL, run_a(s1, x, 4, 2.0f));
  kiln_tensor y;
  ck_ok(NULL, kiln_session_get_output(s1, 0, &y));
  check_y(&y, x, 4);
  ck_assert_str_eq(kiln_model_input_name(kiln_session_model(s1), 0), "x");
  kiln_session_free(s1); /* frees the model (ASan would report a leak otherwise) */
}
END_TEST

/* From a file and from memory; damaged containers; a missing section. */
START_TEST(test_load_file_and_memory) {
  uint64_t size;
  void *bytes = pack(meta_a, plan_a, params_a(), PARAMS_A_SIZE, 1, &size);
  const char *base = getenv("TMPDIR");
  char dir[256], path[300];
  snprintf(dir, sizeof dir, "%s/kiln-test-model-XXXXXX", base && *base ? base : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/a.kiln", dir);
  FILE *f = fopen(path, "wb");
  ck_assert_int_eq(fwrite(bytes, 1, (size_t)size, f), size);
  fclose(f);
  /* KILN_TEST_SAVE_MODEL=path keeps a copy (to try rt_run by hand). */
  const char *save = getenv("KILN_TEST_SAVE_MODEL");
  if (save && (f = fopen(save, "wb"))) {
    fwrite(bytes, 1, (size_t)size, f);
    fclose(f);
  }
  kiln_model *mf, *mm;
  ck_ok(NULL, kiln_model_load(path, &mf));
  ck_ok(NULL, kiln_model_load_memory(bytes, (size_t)size, NULL, &mm));
  /* The memory model owns a copy: the caller's buffer may go. */
  memset(bytes, 0, (size_t)size);
  kiln_session *sf, *sm;
  ck_ok(NULL, kiln_session_new(mf, &sf));
  ck_ok(NULL, kiln_session_new(mm, &sm));
  float xf[16], xm[16];
  ck_ok(NULL, run_a(sf, xf, 4, 3.0f));
  ck_ok(NULL, run_a(sm, xm, 4, 3.0f));
  kiln_tensor yf, ym;
  ck_ok(NULL, kiln_session_get_output(sf, 0, &yf));
  ck_ok(NULL, kiln_session_get_output(sm, 0, &ym));
  check_y(&yf, xf, 4);
  ck_assert(memcmp(yf.data, ym.data, 16 * sizeof(float)) == 0);
  kiln_session_free(sf);
  kiln_session_free(sm);
  kiln_model_free(mf);
  kiln_model_free(mm);
  free(bytes);

  /* Damaged bytes: the container's checks, naming the label. */
  bytes = pack(meta_a, plan_a, params_a(), PARAMS_A_SIZE, 1, &size);
  ((unsigned char *)bytes)[size - 1] ^= 0x40;
  ck_assert_int_eq(kiln_model_load_memory(bytes, (size_t)size, NULL, &mm), KILN_ERR_CORRUPT);
  ck_assert_ptr_null(mm);
  ck_last_error_has("<memory>: section CODE: checksum mismatch");
  free(bytes);
  ck_assert_int_eq(kiln_model_load_memory("KILNART", 8, "tiny", &mm), KILN_ERR_CORRUPT);
  ck_last_error_has("tiny: ");
  ck_assert_int_eq(kiln_model_load_memory(NULL, 0, NULL, &mm), KILN_ERR_CORRUPT);
  ck_assert_int_eq(kiln_model_load_memory(NULL, 5, NULL, &mm), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_model_load_memory("x", 1, NULL, NULL), KILN_ERR_MISUSE);
  /* No CODE section. */
  bytes = pack(meta_a, plan_a, params_a(), PARAMS_A_SIZE, 0, &size);
  ck_assert_int_eq(kiln_model_load_memory(bytes, (size_t)size, "nocode.kiln", &mm), KILN_ERR_CORRUPT);
  ck_last_error_has("nocode.kiln: no CODE section");
  free(bytes);
  /* A file that is inconsistent: the message names the path. */
  char *bad_plan = strdup(plan_a);
  memcpy(strstr(bad_plan, "'arena_bytes': 128"), "'arena_bytes':  90", 18);
  bytes = pack(meta_a, bad_plan, params_a(), PARAMS_A_SIZE, 1, &size);
  free(bad_plan);
  f = fopen(path, "wb");
  ck_assert_int_eq(fwrite(bytes, 1, (size_t)size, f), size);
  fclose(f);
  free(bytes);
  ck_assert_int_eq(kiln_model_load(path, &mf), KILN_ERR_CORRUPT);
  ck_assert_ptr_null(mf);
  ck_assert_msg(strncmp(kiln_last_error(), path, strlen(path)) == 0, "%s", kiln_last_error());
  ck_last_error_has(": PLAN buckets[0].tensors[3]: bytes [64, 96) lie outside the arena "
                    "(arena_bytes 90)");
  unlink(path);
  ck_assert_int_eq(kiln_model_load(path, &mf), KILN_ERR_IO);
  ck_assert_int_eq(kiln_model_load(NULL, &mf), KILN_ERR_MISUSE);
  rmdir(dir);
}
END_TEST

/* Unknown keys are ignored (later minor versions may add some). */
START_TEST(test_unknown_keys) {
  char *meta = malloc(strlen(meta_a) + 64), *plan = malloc(strlen(plan_a) + 64);
  sprintf(meta, "{'future': {'x': [1, 2]}, %s", meta_a + 1);
  sprintf(plan, "{'later': null, %s", plan_a + 1);
  kiln_model *m;
  ck_ok(NULL, load(meta, plan, params_a(), PARAMS_A_SIZE, &m));
  kiln_model_free(m);
  free(meta);
  free(plan);
}
END_TEST

/* ---- The corruption table --------------------------------------------------------------- */

/* One malformed variant: in section META (0) or PLAN (1) of model A, the first occurrence of
 * `find` becomes `repl` (find NULL: the whole text becomes repl); loading must fail with
 * KILN_ERR_CORRUPT and a message containing `want`. */
typedef struct corruption {
  int plan;
  const char *find, *repl, *want;
} corruption;

static const corruption corruptions[] = {
    /* META */
    {0, NULL, "[]", "model.kiln: META: must be a JSON object, not an array"},
    {0, "'format': 'kiln-model', ", "", "META: missing key \"format\""},
    {0, "'kiln-model'", "'onnx'", "META format: \"onnx\" is not \"kiln-model\""},
    {0, "'target': 'llvm'", "'target': 3", "META target: must be a string, not a number"},
    {0, "'options': {'opt_level': 3}", "'options': []", "META options: must be an object"},
    {0, "'inputs': [{'name': 'x', 'dtype': 'float32'}]", "'inputs': {}",
     "META inputs: must be an array, not an object"},
    {0, "{'name': 'x', ", "{", "META inputs[0]: missing key \"name\""},
    {0, "{'name': 'x', ", "{'name': '', ", "META inputs[0].name: must not be empty"},
    {0, "'name': 'x', 'dtype': 'float32'", "'name': 'x', 'dtype': 'float33'",
     "META inputs[0].dtype: unknown data type \"float33\""},
    {0, "'name': 'x', 'dtype': 'float32'", "'name': 'x', 'dtype': 'void'",
     "inputs[0].dtype: \"void\" is not a tensor element type"},
    {0, "'dtype': 'float32'}]", "'dtype': 'float32'}, {'name': 'x', 'dtype': 'int8'}]",
     "META inputs[1]: input name \"x\" repeats inputs[0]"},
    {0, "'follows': [[0, 0], null]", "'follows': 1", "META outputs[0].follows: must be an array"},
    {0, "'follows': [[0, 0], null]", "'follows': [[1, 0], null]",
     "META outputs[0].follows[0][0]: 1 out of range [0, 0]"},
    {0, "'follows': [[0, 0], null]", "'follows': [[0, 5], null]",
     "META outputs[0].follows[0]: axis 5 out of range for input 0 of rank 2"},
    {0, "'follows': [[0, 0], null]", "'follows': [[0], null]",
     "META outputs[0].follows[0]: must be null or an [input, axis] pair"},
    {0, "'follows': [[0, 0], null]", "'follows': [[0, 0]]",
     "META buckets[0].outputs[0]: rank 2, but outputs 0 has rank 1 in its \"follows\""},
    {0, "'buckets': [{", "'buckets': [], 'x': [{", "META buckets: there must be at least one bucket"},
    {0, "'inputs': [[4, 4]]", "'inputs': [[4, 4, 1]]",
     "META buckets[1].inputs[0]: rank 3, but inputs 0 has rank 2 in buckets[0]"},
    {0, "'inputs': [[4, 4]]", "'inputs': [[4, 4], [1]]",
     "META buckets[1].inputs: 2 shapes for 1 model inputs"},
    {0, "'inputs': [[4, 4]]", "'inputs': [[2, 4]]",
     "META buckets[1].inputs: the same input shapes as buckets[0]"},
    {0, "'inputs': [[2, 4]]", "'inputs': [[-2, 4]]",
     "META buckets[0].inputs[0][0]: -2 out of range [0, 9223372036854775807]"},
    {0, "'inputs': [[2, 4]]", "'inputs': [[2.5, 4]]",
     "META buckets[0].inputs[0][0]: 2.5 is not an integer"},
    {0, "'inputs': [[2, 4]]", "'inputs': [[2, '4']]",
     "META buckets[0].inputs[0][1]: must be an integer, not a string"},
    {0, "'inputs': [[2, 4]]", "'inputs': [[4611686018427387904, 4]]",
     "META buckets[0].inputs[0]: the tensor's size overflows"},
    {0, "'weight': 2", "'weight': 'x'", "META buckets[1].weight: must be a number, not a string"},
    {0, "'weight': 2", "'weight': -1", "META buckets[1].weight: must not be negative"},
    {0, "'outputs': [[2, 4], [4], [2, 4]]", "'outputs': [[2, 4], [4]]",
     "META buckets[0].outputs: 2 shapes for 3 model outputs"},
    {0, "'outputs': [[4, 4], [4], [4, 4]]", "'outputs': [[3, 4], [4], [4, 4]]",
     "META outputs[0].follows[0]: follows axis 0 of input 0, but buckets[1] has extent 3 for the "
     "output and 4 for the input"},
    {0, "'paddable': []", "'paddable': [[0, 2]]", "META paddable[0][1]: 2 out of range [0, 1]"},
    {0, "'paddable': []", "'paddable': [[1, 0]]", "META paddable[0][0]: 1 out of range [0, 0]"},
    {0, "'paddable': []", "'paddable': [0]", "META paddable[0]: must be an [input, axis] pair"},
    {0, "'model': 'chain',", "'model': 'chain',,", "model.kiln: META: invalid JSON: byte"},
    {0, "'model': 'chain'", "'model': 'ch\\qain'", "META: invalid JSON: byte 97: invalid escape"},
    {0, "'options': {'opt_level': 3}",
     "'options': {'a': [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]"
     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
     "META: invalid JSON: byte 200: nesting deeper than 64 levels"},
    {0, "'format'", "'format': 'kiln-model', 'format'", "META: invalid JSON: byte 0: duplicate key \"format\""},
    /* PLAN */
    {1, NULL, "7", "model.kiln: PLAN: must be a JSON object, not a number"},
    {1, "'kernels': [", "'kernelz': [", "PLAN: missing key \"kernels\""},
    {1, "'params': [", "'params': {'a': 1}, 'p': [", "PLAN params: must be an array, not an object"},
    {1, "'symbol': 'square'", "'symbol': 'nope'",
     "model.kiln: PLAN kernels[2].symbol: the CODE section has no symbol \"nope\""},
    {1, "'symbol': 'square'", "'symbol': 'scale2'",
     "PLAN kernels[2].symbol: \"scale2\" repeats kernels[0]"},
    {1, "'symbol': 'square', 'name': 'fused_square', ", "'symbol': 'square', ",
     "PLAN kernels[2]: missing key \"name\""},
    {1, "'0123456789abcdef'", "'0123456789ABCDEF'",
     "PLAN kernels[0].hash: \"0123456789ABCDEF\" is not 16 lowercase hex digits"},
    {1, "'0123456789abcdef'", "'0123'", "PLAN kernels[0].hash"},
    {1, "'schedule': 'database'", "'schedule': 'fast'",
     "PLAN kernels[1].schedule: \"fast\" is neither \"default\" nor \"database\""},
    {1, "'workload': 'multiply (n,4)f32', ", "", "PLAN kernels[0]: missing key \"workload\""},
    {1, "{'offset': 64, 'nbytes': 16", "{'offset': 32, 'nbytes': 16",
     "PLAN params[1].offset: 32 is not a multiple of 64"},
    {1, "{'offset': 64, 'nbytes': 16", "{'offset': 128, 'nbytes': 16",
     "PLAN params[1]: bytes [128, 144) lie outside the PARAMS section (80 bytes)"},
    {1, "{'offset': 64, 'nbytes': 16, 'dtype': 'float32', 'shape': [4]}",
     "{'offset': 64, 'nbytes': 32, 'dtype': 'float32', 'shape': [8]}",
     "PLAN params[1]: bytes [64, 96) lie outside the PARAMS section (80 bytes)"},
    {1, "{'offset': 64, 'nbytes': 16", "{'offset': 64, 'nbytes': 12",
     "PLAN params[1].nbytes: 12, but float32 [4] takes 16 bytes"},
    {1, "{'offset': 64, 'nbytes': 16", "{'offset': 64, 'nbytes': 99999999999999999999",
     "PLAN params[1].nbytes: 1e+20 is not an integer within"},
    {1, "{'offset': 0, 'nbytes': 16, 'dtype': 'float32', 'shape': [4]}",
     "{'offset': 0, 'nbytes': 0, 'dtype': 'float32', 'shape': [4611686018427387904, 4]}",
     "PLAN params[0]: the tensor's size overflows"},
    {1, "'arena_bytes': 128, 'naive_bytes': 192,", "'arena_bytes': 64, 'naive_bytes': 192,",
     "PLAN buckets[0].tensors[3]: bytes [64, 96) lie outside the arena (arena_bytes 64)"},
    {1, "'arena_bytes': 128, 'naive_bytes': 192,", "'naive_bytes': 192,",
     "PLAN buckets[0]: missing key \"arena_bytes\""},
    {1, "{'kind': 'arena', 'offset': 64,", "{'kind': 'arena', 'offset': 32,",
     "PLAN buckets[0].tensors[3].offset: 32 is not a multiple of 64"},
    {1, "{'kind': 'arena', 'offset': 64,", "{'kind': 'arena', 'offset': 9223372036854775744,",
     "PLAN buckets[0].tensors[3]: bytes [9223372036854775744, "},
    {1, "{'kind': 'arena', 'offset': 64,", "{'kind': 'arena',",
     "PLAN buckets[0].tensors[3]: missing key \"offset\""},
    {1, "{'kind': 'input', 'index': 0,", "{'kind': 'weight', 'index': 0,",
     "PLAN buckets[0].tensors[0].kind: \"weight\" is not input, param or arena"},
    {1, "{'kind': 'input', 'index': 0,", "{'kind': 'input', 'index': 1,",
     "PLAN buckets[0].tensors[0].index: 1 out of range [0, 0]"},
    {1, "{'kind': 'input', 'index': 0, 'dtype': 'float32', 'shape': [2, 4]}",
     "{'kind': 'input', 'index': 0, 'dtype': 'float32', 'shape': [3, 4]}",
     "PLAN buckets[0].tensors[0]: float32 [3, 4] does not match input 0 (float32 [2, 4] in this "
     "bucket)"},
    {1, "{'kind': 'param', 'index': 1, 'dtype': 'float32'", "{'kind': 'param', 'index': 1, 'dtype': 'int32'",
     "PLAN buckets[0].tensors[1]: int32 [4] does not match param 1 (float32 [4] in this bucket)"},
    {1, "{'kind': 'param', 'index': 1,", "{'kind': 'param', 'index': 2,",
     "PLAN buckets[0].tensors[1].index: 2 out of range [0, 1]"},
    {1, "'args': [{'i64': 2}, 0, 2]", "'args': [{'i64': 2}, 0, 57]",
     "model.kiln: PLAN buckets[0].calls[0].args[2]: tensor index 57 out of range (5 tensors)"},
    {1, "'args': [{'i64': 2}, 0, 2]", "'args': [{'i64': 2}, 0, -1]",
     "PLAN buckets[0].calls[0].args[2]: tensor index -1 out of range"},
    {1, "'args': [{'i64': 2}, 0, 2]", "'args': [{'i32': 2}, 0, 2]",
     "PLAN buckets[0].calls[0].args[0]: a scalar argument must be {\"i64\": value}"},
    {1, "'args': [{'i64': 2}, 0, 2]", "'args': [{'i64': 2.5}, 0, 2]",
     "PLAN buckets[0].calls[0].args[0].i64: 2.5 is not an integer"},
    {1, "'args': [{'i64': 2}, 0, 2]", "'args': [{'i64': 2}, '0', 2]",
     "PLAN buckets[0].calls[0].args[1]: must be a tensor index or {\"i64\": value}, not a string"},
    {1, "{'kernel': 2, 'args'", "{'kernel': 3, 'args'",
     "PLAN buckets[0].calls[2].kernel: 3 out of range [0, 2]"},
    {1, "'outputs': [4, 1, 0]", "'outputs': [4, 1]",
     "PLAN buckets[0].outputs: 2 entries for 3 model outputs"},
    {1, "'outputs': [4, 1, 0]", "'outputs': [4, 1, 9]",
     "PLAN buckets[0].outputs[2]: tensor index 9 out of range (5 tensors)"},
    {1, "'outputs': [4, 1, 0]", "'outputs': [1, 1, 0]",
     "PLAN buckets[0].outputs[0]: tensor 1 is float32 [4], but output 0 is float32 [2, 4] in this "
     "bucket"},
    {1, "'outputs': [4, 1, 0]}]}", "'outputs': [4, 1, 0]}]",
     "model.kiln: PLAN: invalid JSON: byte"},
    {1, "'buckets': [", "'buckets': [{'arena_bytes': 0, 'naive_bytes': 0, 'tensors': [], "
     "'calls': [], 'outputs': []}, ", "PLAN buckets: 3 buckets, but META has 2"},
    {1, "'buckets': [", "'params': [], 'buckets': [", "PLAN: invalid JSON: byte 0: duplicate key \"params\""},
};

/* Model A's text with the corruption applied (single quotes still; malloc'ed). */
static char *apply(const char *text, const corruption *c) {
  if (!c->find) return strdup(c->repl);
  const char *at = strstr(text, c->find);
  ck_assert_msg(at != NULL, "'%s' is not in the text", c->find);
  size_t pre = (size_t)(at - text), fl = strlen(c->find), rl = strlen(c->repl);
  char *out = malloc(strlen(text) - fl + rl + 1);
  memcpy(out, text, pre);
  memcpy(out + pre, c->repl, rl);
  strcpy(out + pre + rl, at + fl);
  return out;
}

START_TEST(test_corrupt_table) {
  int n = (int)(sizeof corruptions / sizeof corruptions[0]);
  for (int i = 0; i < n; i++) {
    const corruption *c = &corruptions[i];
    char *meta = c->plan ? strdup(meta_a) : apply(meta_a, c);
    char *plan = c->plan ? apply(plan_a, c) : strdup(plan_a);
    kiln_model *m = (kiln_model *)1;
    kiln_status st = load(meta, plan, params_a(), PARAMS_A_SIZE, &m);
    ck_assert_msg(st == KILN_ERR_CORRUPT, "variant %d (%s -> %s): status %d (%s)", i,
                  c->find ? c->find : "(all)", c->repl, st, kiln_last_error());
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(kiln_last_error(), c->want) != NULL,
                  "variant %d: message '%s' lacks '%s'", i, kiln_last_error(), c->want);
    free(meta);
    free(plan);
  }
}
END_TEST

/* rt_artifact_serialize gives exactly the bytes rt_artifact_write writes; open_memory checks
 * like open does. */
START_TEST(test_serialize_matches_write) {
  static const char meta[] = "{}";
  unsigned char blob[200];
  for (int i = 0; i < 200; i++) blob[i] = (unsigned char)(i * 7);
  rt_section_in sec[3] = {{RT_SECTION_META, meta, 2}, {RT_SECTION_PARAMS, blob, 200}, {9, NULL, 0}};
  void *bytes;
  uint64_t size;
  ck_ok(NULL, rt_artifact_serialize(sec, 3, &bytes, &size));
  const char *base = getenv("TMPDIR");
  char dir[256], path[300];
  snprintf(dir, sizeof dir, "%s/kiln-test-model-XXXXXX", base && *base ? base : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/s.kiln", dir);
  ck_ok(NULL, rt_artifact_write(path, sec, 3));
  size_t flen;
  char *file = kiln_test_read_file(path, &flen);
  ck_assert_int_eq(flen, size);
  ck_assert(memcmp(file, bytes, flen) == 0);
  free(file);
  unlink(path);
  rmdir(dir);
  rt_artifact *a;
  ck_ok(NULL, rt_artifact_open_memory(bytes, size, NULL, &a));
  uint64_t n;
  const unsigned char *p = rt_artifact_section(a, RT_SECTION_PARAMS, &n);
  ck_assert_int_eq(n, 200);
  ck_assert_int_eq((uintptr_t)p % 64, 0);
  /* A private copy, not the caller's bytes. */
  ck_assert(!(p >= (const unsigned char *)bytes && p < (const unsigned char *)bytes + size));
  ck_assert(memcmp(p, blob, 200) == 0);
  rt_artifact_close(a);
  ((unsigned char *)bytes)[20] ^= 1; /* the header */
  ck_assert_int_eq(rt_artifact_open_memory(bytes, size, "mem.kiln", &a), KILN_ERR_CORRUPT);
  ck_assert_ptr_null(a);
  ck_last_error_has("mem.kiln: header checksum mismatch");
  free(bytes);
  ck_assert_int_eq(rt_artifact_serialize(sec, 3, NULL, &size), KILN_ERR_MISUSE);
  rt_section_in dup[2] = {{RT_SECTION_META, meta, 2}, {RT_SECTION_META, meta, 2}};
  ck_assert_int_eq(rt_artifact_serialize(dup, 2, &bytes, &size), KILN_ERR_MISUSE);
  ck_last_error_has("section META given twice");
  ck_assert_int_eq(rt_artifact_open_memory(NULL, 0, NULL, &a), KILN_ERR_CORRUPT);
  ck_last_error_has("<memory>: truncated");
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("model");
  TCase *tj = tcase_create("json");
  tcase_add_test(tj, test_json_values);
  tcase_add_test(tj, test_json_errors);
  suite_add_tcase(s, tj);
  TCase *tc = tcase_create("run");
  tcase_add_unchecked_fixture(tc, compile_kernels, NULL);
  tcase_add_test(tc, test_serialize_matches_write);
  tcase_add_test(tc, test_chain);
  tcase_add_test(tc, test_pad_leading);
  tcase_add_test(tc, test_pad_inner);
  tcase_add_test(tc, test_no_bucket);
  tcase_add_test(tc, test_input_errors);
  tcase_add_test(tc, test_kernel_error);
  tcase_add_test(tc, test_profile);
  tcase_add_test(tc, test_concurrent_sessions);
  tcase_add_test(tc, test_model_freed_first);
  tcase_add_test(tc, test_load_file_and_memory);
  tcase_add_test(tc, test_unknown_keys);
  tcase_add_test(tc, test_corrupt_table);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

/* test_relay_api.c: the public Relay API as a user of libkiln.so sees it (only kiln/kiln.h):
 * building an MLP with a symbolic batch, printing and parsing it back, running the default
 * passes, binding the batch, interpreting it against a plain C computation, tuples and lets,
 * the op listing, every user error with its code and message, and fault injection. */
#include <math.h>

#include "kiln/kiln.h"
#include "test_util.h"

/* ---- The MLP: softmax(dense(relu(bias_add(dense(x, w1), b1)), w2) + b2) ------------------ */

enum { IN = 4, HID = 8, OUT = 3 };

static float W1[HID * IN], B1[HID], W2[OUT * HID], B2[OUT];

/* Deterministic weights in [-1, 1). */
static void init_weights(void) {
  uint32_t s = 12345;
  float *all[] = {W1, B1, W2, B2};
  int sizes[] = {HID * IN, HID, OUT * HID, OUT};
  for (int k = 0; k < 4; k++)
    for (int i = 0; i < sizes[k]; i++) {
      s = s * 1103515245u + 12345u;
      all[k][i] = (float)((s >> 8) % 2000) / 1000.0f - 1.0f;
    }
}

/* The same MLP in plain C (w2 is a parameter, as in the graph). */
static void mlp_ref(int batch, const float *x, const float *w2, float *y) {
  for (int b = 0; b < batch; b++) {
    float h[HID];
    for (int j = 0; j < HID; j++) {
      double acc = 0;
      for (int i = 0; i < IN; i++) acc += (double)x[b * IN + i] * W1[j * IN + i];
      h[j] = (float)acc + B1[j];
      if (h[j] < 0) h[j] = 0;
    }
    double z[OUT], mx = -INFINITY, sum = 0;
    for (int o = 0; o < OUT; o++) {
      double acc = 0;
      for (int j = 0; j < HID; j++) acc += (double)h[j] * w2[o * HID + j];
      z[o] = (float)acc + B2[o];
      if (z[o] > mx) mx = z[o];
    }
    for (int o = 0; o < OUT; o++) sum += exp(z[o] - mx);
    for (int o = 0; o < OUT; o++) y[b * OUT + o] = (float)(exp(z[o] - mx) / sum);
  }
}

/* Builds the MLP as @main(%x: [n, 4], %w2: [3, 8]) in m; returns the first failing status.
 * *y gets the output expression. */
static kiln_status build_mlp(kiln_relay_module *m, kiln_relay_expr **y) {
  kiln_status st;
  int64_t n;
  kiln_relay_expr *x, *w2, *w1, *b1, *b2, *h, *args[2];
  if ((st = kiln_relay_module_dim(m, "n", &n))) return st;
  int64_t xs[] = {n, IN}, w1s[] = {HID, IN}, b1s[] = {HID}, w2s[] = {OUT, HID}, b2s[] = {OUT};
  if ((st = kiln_relay_var(m, "x", KILN_FLOAT32, 2, xs, &x))) return st;
  if ((st = kiln_relay_var(m, "w2", KILN_FLOAT32, 2, w2s, &w2))) return st;
  if ((st = kiln_relay_const(m, KILN_FLOAT32, 2, w1s, W1, sizeof W1, &w1))) return st;
  if ((st = kiln_relay_const(m, KILN_FLOAT32, 1, b1s, B1, sizeof B1, &b1))) return st;
  if ((st = kiln_relay_const(m, KILN_FLOAT32, 1, b2s, B2, sizeof B2, &b2))) return st;
  args[0] = x, args[1] = w1;
  if ((st = kiln_relay_call(m, "nn.dense", 2, args, 0, NULL, &h))) return st;
  args[0] = h, args[1] = b1;
  if ((st = kiln_relay_call(m, "nn.bias_add", 2, args, 0, NULL, &h))) return st;
  if ((st = kiln_relay_call(m, "nn.relu", 1, &h, 0, NULL, &h))) return st;
  args[0] = h, args[1] = w2;
  kiln_relay_attr units = {.key = "units", .kind = KILN_RELAY_ATTR_INT, .i = OUT};
  if ((st = kiln_relay_call(m, "nn.dense", 2, args, 1, &units, &h))) return st;
  args[0] = h, args[1] = b2;
  kiln_relay_attr axis1 = {.key = "axis", .kind = KILN_RELAY_ATTR_INT, .i = 1};
  if ((st = kiln_relay_call(m, "nn.bias_add", 2, args, 1, &axis1, &h))) return st;
  kiln_relay_attr axis = {.key = "axis", .kind = KILN_RELAY_ATTR_INT, .i = -1};
  if ((st = kiln_relay_call(m, "nn.softmax", 1, &h, 1, &axis, &h))) return st;
  kiln_relay_expr *params[] = {x, w2};
  if ((st = kiln_relay_function(m, "main", 2, params, h))) return st;
  *y = h;
  return KILN_OK;
}

static kiln_context *new_ctx(void) {
  kiln_context *ctx;
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  init_weights();
  return ctx;
}

static kiln_relay_module *new_mlp(kiln_context *ctx, kiln_relay_expr **y) {
  kiln_relay_module *m;
  kiln_relay_expr *dummy;
  ck_ok(ctx, kiln_relay_module_new(ctx, &m));
  ck_ok(ctx, build_mlp(m, y ? y : &dummy));
  return m;
}

static kiln_tensor tensor(void *data, kiln_dtype t, int ndim, int64_t *shape) {
  return (kiln_tensor){data, 1, 0, ndim, t, shape, NULL, 0};
}

/* Runs @main on a batch and compares with the C reference. */
static void check_mlp_run(kiln_context *ctx, kiln_relay_module *m, int batch) {
  float x[5 * IN], w2[OUT * HID], y[5 * OUT], want[5 * OUT];
  ck_assert_int_le(batch, 5);
  for (int i = 0; i < batch * IN; i++) x[i] = (float)((i * 7) % 11) / 5.0f - 1.0f;
  for (int i = 0; i < OUT * HID; i++) w2[i] = W2[i];
  int64_t xs[] = {batch, IN}, ws[] = {OUT, HID}, ys[] = {batch, OUT};
  kiln_tensor args[] = {tensor(x, KILN_FLOAT32, 2, xs), tensor(w2, KILN_FLOAT32, 2, ws)};
  kiln_tensor out = tensor(y, KILN_FLOAT32, 2, ys);
  memset(y, 0, sizeof y);
  ck_ok(ctx, kiln_relay_module_interpret(m, "main", 2, args, 1, &out));
  mlp_ref(batch, x, w2, want);
  for (int i = 0; i < batch * OUT; i++)
    ck_assert_msg(fabsf(y[i] - want[i]) <= 1e-5f, "y[%d] = %g, want %g", i, y[i], want[i]);
}

/* ---- Building, types, printing and parsing ---------------------------------------------- */

START_TEST(test_build_and_types) {
  kiln_context *ctx = new_ctx();
  kiln_relay_expr *y;
  kiln_relay_module *m = new_mlp(ctx, &y);
  ck_assert_int_eq(kiln_relay_module_num_funcs(m), 1);
  ck_assert_str_eq(kiln_relay_module_func_name(m, 0), "main");
  ck_assert_ptr_null(kiln_relay_module_func_name(m, 1));
  ck_assert_ptr_null(kiln_relay_module_func_name(m, -1));

  int64_t n, n2, k;
  ck_ok(ctx, kiln_relay_module_dim(m, "n", &n));
  ck_ok(ctx, kiln_relay_module_dim(m, "n", &n2));
  ck_assert_int_lt(n, 0);
  ck_assert_int_eq(n, n2); /* one dimension per name */
  ck_ok(ctx, kiln_relay_module_dim(m, "k", &k));
  ck_assert_int_ne(n, k);
  ck_assert_str_eq(kiln_relay_module_dim_name(m, n), "n");
  ck_assert_str_eq(kiln_relay_module_dim_name(m, k), "k");
  ck_assert_ptr_null(kiln_relay_module_dim_name(m, 0));
  ck_assert_ptr_null(kiln_relay_module_dim_name(m, k - 1));

  kiln_dtype t;
  int ndim;
  int64_t shape[4] = {0};
  ck_ok(ctx, kiln_relay_expr_type(m, y, &t, &ndim, shape, 4));
  ck_assert(kiln_dtype_eq(t, KILN_FLOAT32));
  ck_assert_int_eq(ndim, 2);
  ck_assert_int_eq(shape[0], n);
  ck_assert_int_eq(shape[1], OUT);
  /* the rank alone */
  ck_ok(ctx, kiln_relay_expr_type(m, y, &t, &ndim, NULL, 0));
  ck_assert_int_eq(ndim, 2);

  /* a dimension that is an expression of symbolic ones: concatenating [n, 3] with itself */
  kiln_relay_expr *pair[] = {y, y}, *cat;
  kiln_relay_attr ax0 = {.key = "axis", .kind = KILN_RELAY_ATTR_INT, .i = 0};
  ck_ok(ctx, kiln_relay_call(m, "concatenate", 2, pair, 1, &ax0, &cat));
  ck_ok(ctx, kiln_relay_expr_type(m, cat, &t, &ndim, shape, 4));
  ck_assert_int_eq(shape[0], KILN_RELAY_DIM_EXPR);
  ck_assert_int_eq(shape[1], OUT);

  /* an int where the op wants a float is accepted (leaky_relu's alpha) */
  kiln_relay_attr alpha = {.key = "alpha", .kind = KILN_RELAY_ATTR_INT, .i = 0};
  kiln_relay_expr *lr;
  ck_ok(ctx, kiln_relay_call(m, "nn.leaky_relu", 1, &y, 1, &alpha, &lr));

  kiln_relay_module_free(m);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}
END_TEST

/* Prints the module, parses the text and checks equality, hashes and a stable second print. */
static void check_round_trip(kiln_context *ctx, kiln_relay_module *m) {
  char *text, *again;
  ck_ok(ctx, kiln_relay_module_print(m, &text));
  kiln_relay_module *p;
  ck_ok(ctx, kiln_relay_module_parse(ctx, text, strlen(text), &p));
  int eq = 0;
  ck_ok(ctx, kiln_relay_module_equal(m, p, &eq));
  ck_assert_msg(eq, "parsed module differs:\n%s", text);
  uint64_t h1, h2;
  ck_ok(ctx, kiln_relay_module_hash(m, &h1));
  ck_ok(ctx, kiln_relay_module_hash(p, &h2));
  ck_assert_uint_eq(h1, h2);
  ck_ok(ctx, kiln_relay_module_print(p, &again));
  ck_assert_str_eq(text, again);
  kiln_string_free(ctx, text);
  kiln_string_free(ctx, again);
  kiln_relay_module_free(p);
}

START_TEST(test_print_parse_round_trip) {
  kiln_context *ctx = new_ctx();
  kiln_relay_module *m = new_mlp(ctx, NULL);
  char *text;
  ck_ok(ctx, kiln_relay_module_print(m, &text));
  ck_assert_msg(strstr(text, "def @main(%x: Tensor[(n, 4), float32]"), "%s", text);
  ck_assert_msg(strstr(text, "nn.softmax"), "%s", text);
  ck_assert_msg(strstr(text, "units=3"), "%s", text);
  kiln_string_free(ctx, text);
  check_round_trip(ctx, m);

  /* a different module is not equal and (here) hashes differently */
  kiln_relay_module *other;
  ck_ok(ctx, kiln_relay_module_new(ctx, &other));
  int64_t s[] = {2, 2};
  kiln_relay_expr *a, *r;
  ck_ok(ctx, kiln_relay_var(other, "a", KILN_FLOAT32, 2, s, &a));
  ck_ok(ctx, kiln_relay_call(other, "nn.relu", 1, &a, 0, NULL, &r));
  ck_ok(ctx, kiln_relay_function(other, "main", 1, &a, r));
  int eq = 1;
  ck_ok(ctx, kiln_relay_module_equal(m, other, &eq));
  ck_assert_int_eq(eq, 0);
  uint64_t h1, h2;
  ck_ok(ctx, kiln_relay_module_hash(m, &h1));
  ck_ok(ctx, kiln_relay_module_hash(other, &h2));
  ck_assert_uint_ne(h1, h2);
  /* the same function under another name is a different module */
  kiln_relay_module *renamed;
  ck_ok(ctx, kiln_relay_module_new(ctx, &renamed));
  ck_ok(ctx, kiln_relay_var(renamed, "a", KILN_FLOAT32, 2, s, &a));
  ck_ok(ctx, kiln_relay_call(renamed, "nn.relu", 1, &a, 0, NULL, &r));
  ck_ok(ctx, kiln_relay_function(renamed, "f", 1, &a, r));
  ck_ok(ctx, kiln_relay_module_equal(other, renamed, &eq));
  ck_assert_int_eq(eq, 0);
  /* an empty module prints as an empty string and round trips */
  kiln_relay_module *empty;
  ck_ok(ctx, kiln_relay_module_new(ctx, &empty));
  check_round_trip(ctx, empty);
  kiln_relay_module_free(empty);
  kiln_relay_module_free(renamed);
  kiln_relay_module_free(other);
  kiln_relay_module_free(m);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}
END_TEST

START_TEST(test_parse_file) {
  kiln_context *ctx = new_ctx();
  kiln_relay_module *m = new_mlp(ctx, NULL), *p;
  char *text;
  ck_ok(ctx, kiln_relay_module_print(m, &text));
  char path[] = "/tmp/kiln_relay_api_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  FILE *f = fdopen(fd, "w");
  fputs(text, f);
  fclose(f);
  ck_ok(ctx, kiln_relay_module_parse_file(ctx, path, &p));
  remove(path);
  int eq = 0;
  ck_ok(ctx, kiln_relay_module_equal(m, p, &eq));
  ck_assert(eq);
  kiln_relay_module_free(p);
  ck_assert_int_eq(kiln_relay_module_parse_file(ctx, path, &p), KILN_ERR_IO);
  ck_errmsg_has(ctx, "cannot open");
  ck_assert_ptr_null(p);
  kiln_string_free(ctx, text);
  kiln_relay_module_free(m);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}
END_TEST

/* ---- Passes, binding and the interpreter ----------------------------------------------- */

START_TEST(test_mlp_passes_bind_interpret) {
  kiln_context *ctx = new_ctx();
  kiln_relay_module *m = new_mlp(ctx, NULL), *before;
  char *text;
  ck_ok(ctx, kiln_relay_module_print(m, &text));
  ck_ok(ctx, kiln_relay_module_parse(ctx, text, strlen(text), &before));
  kiln_string_free(ctx, text);

  /* symbolic batch: any size runs */
  check_mlp_run(ctx, m, 3);
  check_mlp_run(ctx, m, 1);

  /* the default pipeline fuses the ops into primitive functions; results stay the same */
  ck_ok(ctx, kiln_relay_module_run_passes(m, NULL, 3));
  int eq = 1;
  ck_ok(ctx, kiln_relay_module_equal(m, before, &eq));
  ck_assert_int_eq(eq, 0);
  ck_ok(ctx, kiln_relay_module_print(m, &text));
  ck_assert_msg(strstr(text, "primitive"), "%s", text);
  kiln_string_free(ctx, text);
  check_round_trip(ctx, m);
  check_mlp_run(ctx, m, 3);

  /* binding the batch specializes the types: batch 2 runs, batch 3 no longer fits */
  const char *names[] = {"n"};
  int64_t values[] = {2};
  ck_ok(ctx, kiln_relay_module_bind(m, 1, names, values));
  ck_ok(ctx, kiln_relay_module_print(m, &text));
  ck_assert_msg(strstr(text, "%x: Tensor[(2, 4), float32]"), "%s", text);
  kiln_string_free(ctx, text);
  check_mlp_run(ctx, m, 2);
  float x[3 * IN] = {0}, y[3 * OUT];
  int64_t xs[] = {3, IN}, ws[] = {OUT, HID}, ys[] = {3, OUT};
  kiln_tensor args[] = {tensor(x, KILN_FLOAT32, 2, xs), tensor(W2, KILN_FLOAT32, 2, ws)};
  kiln_tensor out = tensor(y, KILN_FLOAT32, 2, ys);
  ck_assert_int_eq(kiln_relay_module_interpret(m, "main", 2, args, 1, &out), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "x");

  /* an explicit pass list at a low opt level */
  kiln_relay_module *p;
  ck_ok(ctx, kiln_relay_module_new(ctx, &p));
  kiln_relay_expr *dummy;
  ck_ok(ctx, build_mlp(p, &dummy));
  ck_ok(ctx, kiln_relay_module_run_passes(p, "InferType, FuseOps", 0));
  ck_ok(ctx, kiln_relay_module_print(p, &text));
  ck_assert_msg(strstr(text, "primitive"), "%s", text);
  kiln_string_free(ctx, text);
  check_mlp_run(ctx, p, 4);
  kiln_relay_module_free(p);

  kiln_relay_module_free(before);
  kiln_relay_module_free(m);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}
END_TEST

/* let v = x + x in (v, v * x).1 and the tuple itself: flattened outputs, lets and projections. */
START_TEST(test_tuple_let_proj) {
  kiln_context *ctx = new_ctx();
  kiln_relay_module *m;
  ck_ok(ctx, kiln_relay_module_new(ctx, &m));
  int64_t s[] = {2, 3};
  kiln_relay_expr *x, *v, *sum, *prod, *tup, *second, *let, *args[2];
  ck_ok(ctx, kiln_relay_var(m, "x", KILN_FLOAT32, 2, s, &x));
  ck_ok(ctx, kiln_relay_var(m, "v", KILN_FLOAT32, 2, s, &v));
  args[0] = x, args[1] = x;
  ck_ok(ctx, kiln_relay_call(m, "add", 2, args, 0, NULL, &sum));
  args[0] = v, args[1] = x;
  ck_ok(ctx, kiln_relay_call(m, "multiply", 2, args, 0, NULL, &prod));
  kiln_relay_expr *fields[] = {v, prod};
  ck_ok(ctx, kiln_relay_tuple(m, 2, fields, &tup));
  ck_ok(ctx, kiln_relay_let(m, v, sum, tup, &let));
  ck_ok(ctx, kiln_relay_function(m, "pair", 1, &x, let));
  /* a variable is defined once in the whole module: %x cannot be a parameter twice */
  ck_assert_int_eq(kiln_relay_function(m, "again", 1, &x, let), KILN_ERR_TYPE);
  ck_errmsg_has(ctx, "variable %x is defined twice");
  ck_assert_int_eq(kiln_relay_module_num_funcs(m), 1);
  /* second(x2) = (x2, x2 * x2 * 2).1 */
  kiln_relay_expr *x2, *sq, *sq2, *t2;
  ck_ok(ctx, kiln_relay_var(m, "x2", KILN_FLOAT32, 2, s, &x2));
  args[0] = x2, args[1] = x2;
  ck_ok(ctx, kiln_relay_call(m, "multiply", 2, args, 0, NULL, &sq));
  args[0] = sq, args[1] = sq;
  ck_ok(ctx, kiln_relay_call(m, "add", 2, args, 0, NULL, &sq2));
  kiln_relay_expr *f2[] = {x2, sq2};
  ck_ok(ctx, kiln_relay_tuple(m, 2, f2, &t2));
  ck_ok(ctx, kiln_relay_proj(m, t2, 1, &second));
  ck_ok(ctx, kiln_relay_function(m, "second", 1, &x2, second));
  ck_assert_int_eq(kiln_relay_module_num_funcs(m), 2);
  check_round_trip(ctx, m);

  float xd[6] = {1, -2, 3, 0.5f, 4, -1}, a[6], b[6];
  int64_t sh[] = {2, 3}, sh2[] = {2, 3};
  kiln_tensor in = tensor(xd, KILN_FLOAT32, 2, sh);
  kiln_tensor outs[] = {tensor(a, KILN_FLOAT32, 2, sh), tensor(b, KILN_FLOAT32, 2, sh2)};
  ck_ok(ctx, kiln_relay_module_interpret(m, "pair", 1, &in, 2, outs));
  for (int i = 0; i < 6; i++) {
    ck_assert_float_eq(a[i], 2 * xd[i]);
    ck_assert_float_eq(b[i], 2 * xd[i] * xd[i]);
  }
  memset(b, 0, sizeof b);
  ck_ok(ctx, kiln_relay_module_interpret(m, "second", 1, &in, 1, &outs[1]));
  for (int i = 0; i < 6; i++) ck_assert_float_eq(b[i], 2 * xd[i] * xd[i]);

  /* explicit compact strides and a byte offset are accepted */
  float padded[7] = {99, 1, -2, 3, 0.5f, 4, -1};
  int64_t strides[] = {3, 1};
  kiln_tensor off = tensor(padded, KILN_FLOAT32, 2, sh);
  off.strides = strides;
  off.byte_offset = sizeof(float);
  ck_ok(ctx, kiln_relay_module_interpret(m, "second", 1, &off, 1, &outs[1]));
  for (int i = 0; i < 6; i++) ck_assert_float_eq(b[i], 2 * xd[i] * xd[i]);

  /* the type of a tuple is no tensor type */
  kiln_dtype t;
  int ndim;
  ck_assert_int_eq(kiln_relay_expr_type(m, tup, &t, &ndim, NULL, 0), KILN_ERR_TYPE);
  ck_errmsg_has(ctx, "not a tensor type");

  kiln_relay_module_free(m);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}
END_TEST

/* A parsed module keeps growing through the builder: its dimensions are the parsed ones. */
START_TEST(test_extend_parsed_module) {
  kiln_context *ctx = new_ctx();
  const char *text = "def @f(%a: Tensor[(n, 2), float32]) {\n  nn.relu(%a)\n}\n";
  kiln_relay_module *m;
  ck_ok(ctx, kiln_relay_module_parse(ctx, text, strlen(text), &m));
  int64_t n;
  ck_ok(ctx, kiln_relay_module_dim(m, "n", &n));
  ck_assert_str_eq(kiln_relay_module_dim_name(m, n), "n");
  int64_t s[] = {n, 2};
  kiln_relay_expr *b, *r, *args[2];
  ck_ok(ctx, kiln_relay_var(m, "b", KILN_FLOAT32, 2, s, &b));
  args[0] = b, args[1] = b;
  ck_ok(ctx, kiln_relay_call(m, "add", 2, args, 0, NULL, &r));
  ck_ok(ctx, kiln_relay_function(m, "g", 1, &b, r));
  ck_assert_int_eq(kiln_relay_module_num_funcs(m), 2);
  /* a type error while building carries no stale position of the parser */
  int64_t s3[] = {3};
  kiln_relay_expr *c;
  ck_ok(ctx, kiln_relay_var(m, "c", KILN_FLOAT32, 1, s3, &c));
  args[1] = c;
  ck_assert_int_ne(kiln_relay_call(m, "add", 2, args, 0, NULL, &r), KILN_OK);
  int line, col;
  kiln_context_errpos(ctx, &line, &col);
  ck_assert_int_eq(line, 0);
  /* binding n specializes both functions: the builder's %b and the parsed %a share it */
  const char *names[] = {"n"};
  int64_t values[] = {5};
  ck_ok(ctx, kiln_relay_module_bind(m, 1, names, values));
  char *out;
  ck_ok(ctx, kiln_relay_module_print(m, &out));
  ck_assert_msg(strstr(out, "%a: Tensor[(5, 2), float32]") && strstr(out, "%b: Tensor[(5, 2), float32]"),
                "%s", out);
  kiln_string_free(ctx, out);
  kiln_relay_module_free(m);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}
END_TEST

START_TEST(test_op_listing) {
  int n = kiln_relay_op_count();
  ck_assert_int_gt(n, 50);
  int found = 0;
  for (int i = 0; i < n; i++) {
    ck_assert_ptr_nonnull(kiln_relay_op_name(i));
    ck_assert_ptr_nonnull(kiln_relay_op_doc(i));
    if (strcmp(kiln_relay_op_name(i), "nn.dense") == 0) {
      found = 1;
      ck_assert_int_gt(strlen(kiln_relay_op_doc(i)), 0);
    }
  }
  ck_assert(found);
  ck_assert_ptr_null(kiln_relay_op_name(n));
  ck_assert_ptr_null(kiln_relay_op_name(-1));
  ck_assert_ptr_null(kiln_relay_op_doc(n));
}
END_TEST

/* ---- User errors ---------------------------------------------------------------------- */

START_TEST(test_build_errors) {
  kiln_context *ctx = new_ctx();
  kiln_relay_module *m;
  ck_ok(ctx, kiln_relay_module_new(ctx, &m));
  int64_t n;
  ck_ok(ctx, kiln_relay_module_dim(m, "n", &n));
  int64_t xs[] = {n, 4}, ws[] = {8, 5};
  kiln_relay_expr *x, *w, *r = NULL, *args[2];
  ck_ok(ctx, kiln_relay_var(m, "x", KILN_FLOAT32, 2, xs, &x));
  ck_ok(ctx, kiln_relay_var(m, "w", KILN_FLOAT32, 2, ws, &w));
  args[0] = x, args[1] = w;

  /* unknown op */
  ck_assert_int_eq(kiln_relay_call(m, "nn.frobnicate", 2, args, 0, NULL, &r), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "unknown op 'nn.frobnicate'");
  ck_assert_ptr_null(r);
  ck_assert_str_eq(kiln_last_error(), kiln_context_errmsg(ctx));
  /* unknown attribute, attribute of the wrong kind, malformed attribute */
  kiln_relay_attr bad = {.key = "colour", .kind = KILN_RELAY_ATTR_INT, .i = 1};
  ck_assert_int_eq(kiln_relay_call(m, "nn.relu", 1, &x, 1, &bad, &r), KILN_ERR_TYPE);
  ck_errmsg_has(ctx, "no attribute 'colour'");
  kiln_relay_attr wrong = {.key = "axis", .kind = KILN_RELAY_ATTR_STR, .s = "last"};
  ck_assert_int_eq(kiln_relay_call(m, "nn.softmax", 1, &x, 1, &wrong, &r), KILN_ERR_TYPE);
  ck_errmsg_has(ctx, "'axis' must be an integer");
  kiln_relay_attr nokey = {.key = NULL, .kind = KILN_RELAY_ATTR_INT};
  ck_assert_int_eq(kiln_relay_call(m, "nn.softmax", 1, &x, 1, &nokey, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "has no key");
  kiln_relay_attr badkind = {.key = "axis", .kind = 42};
  ck_assert_int_eq(kiln_relay_call(m, "nn.softmax", 1, &x, 1, &badkind, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "bad kind (42)");
  kiln_relay_attr nullints = {.key = "axis", .kind = KILN_RELAY_ATTR_INTS, .nints = 2};
  ck_assert_int_eq(kiln_relay_call(m, "sum", 1, &x, 1, &nullints, &r), KILN_ERR_MISUSE);
  /* shape mismatch: dense of (n, 4) with (8, 5) */
  kiln_status st = kiln_relay_call(m, "nn.dense", 2, args, 0, NULL, &r);
  ck_assert_msg(st == KILN_ERR_SHAPE || st == KILN_ERR_TYPE, "status %s", kiln_status_str(st));
  ck_errmsg_has(ctx, "nn.dense");
  ck_errmsg_has(ctx, "5");
  /* wrong number of arguments */
  ck_assert_int_eq(kiln_relay_call(m, "nn.relu", 2, args, 0, NULL, &r), KILN_ERR_TYPE);
  ck_errmsg_has(ctx, "nn.relu takes");
  ck_assert_int_eq(kiln_relay_call(m, "nn.relu", -1, args, 0, NULL, &r), KILN_ERR_MISUSE);

  /* types and constants */
  int64_t big = 3;
  ck_assert_int_eq(kiln_relay_var(m, "y", KILN_FLOAT32, 9, xs, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "rank 9");
  ck_assert_int_eq(kiln_relay_var(m, "y", KILN_FLOAT32, 1, NULL, &r), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_var(m, "y", KILN_VOID, 1, &big, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "void is not a tensor element type");
  int64_t nodim[] = {n - 5};
  ck_assert_int_eq(kiln_relay_var(m, "y", KILN_FLOAT32, 1, nodim, &r), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "no symbolic dimension");
  float data[3] = {1, 2, 3};
  ck_assert_int_eq(kiln_relay_const(m, KILN_FLOAT32, 1, &big, data, 8, &r), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "Tensor[(3,), float32] takes 12 bytes of data, not 8");
  ck_assert_int_eq(kiln_relay_const(m, KILN_FLOAT32, 1, &n, data, 12, &r), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "constant shape");
  ck_assert_int_eq(kiln_relay_const(m, KILN_FLOAT32, 1, &big, NULL, 12, &r), KILN_ERR_MISUSE);

  /* lets, projections, tuples */
  kiln_relay_expr *relu;
  ck_ok(ctx, kiln_relay_call(m, "nn.relu", 1, &x, 0, NULL, &relu));
  ck_assert_int_eq(kiln_relay_let(m, relu, x, x, &r), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "not a variable");
  st = kiln_relay_proj(m, x, 0, &r);
  ck_assert_int_ne(st, KILN_OK);
  ck_assert_int_eq(kiln_relay_tuple(m, 1, NULL, &r), KILN_ERR_MISUSE);

  /* functions: free variables are refused and leave the module unchanged */
  ck_assert_int_eq(kiln_relay_function(m, "main", 0, NULL, relu), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "variable %x is used but never defined");
  ck_assert_int_eq(kiln_relay_module_num_funcs(m), 0);
  ck_assert_int_eq(kiln_relay_function(m, "main", 1, &relu, relu), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "parameter 0 is not a variable");
  ck_assert_int_eq(kiln_relay_function(m, "", 1, &x, relu), KILN_ERR_MISUSE);
  ck_ok(ctx, kiln_relay_function(m, "main", 1, &x, relu));
  ck_assert_int_eq(kiln_relay_module_num_funcs(m), 1);

  kiln_relay_module_free(m);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}
END_TEST

START_TEST(test_handle_misuse) {
  kiln_context *ctx = new_ctx();
  kiln_relay_module *m = new_mlp(ctx, NULL), *other;
  kiln_relay_expr *e = NULL, *x;
  int64_t s[] = {2};
  /* a failing builder leaves its out-parameter alone */
  kiln_relay_expr *keep = (kiln_relay_expr *)&e;
  ck_assert_int_eq(kiln_relay_call(m, "nn.frob", 0, NULL, 0, NULL, &keep), KILN_ERR_UNDEFINED);
  ck_assert_ptr_eq(keep, (kiln_relay_expr *)&e);
  ck_ok(ctx, kiln_relay_module_new(ctx, &other));
  ck_ok(ctx, kiln_relay_var(other, "x", KILN_FLOAT32, 1, s, &x));

  /* a handle of another module */
  ck_assert_int_eq(kiln_relay_call(m, "nn.relu", 1, &x, 0, NULL, &e), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "argument 0 of nn.relu is not an expression of this module");
  ck_assert_int_eq(kiln_relay_function(m, "f", 1, &x, x), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "not an expression of this module");
  kiln_dtype t;
  int ndim;
  ck_assert_int_eq(kiln_relay_expr_type(m, x, &t, &ndim, NULL, 0), KILN_ERR_MISUSE);
  /* NULL handles in argument lists */
  kiln_relay_expr *nulls[2] = {NULL, NULL};
  ck_assert_int_eq(kiln_relay_call(m, "add", 2, nulls, 0, NULL, &e), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "argument 0 of add is NULL");
  ck_assert_int_eq(kiln_relay_tuple(m, 2, nulls, &e), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "field 0 is NULL");
  ck_assert_int_eq(kiln_relay_proj(m, NULL, 0, &e), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_let(m, x, NULL, NULL, &e), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_function(m, "f", 0, NULL, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_expr_type(m, NULL, &t, &ndim, NULL, 0), KILN_ERR_MISUSE);
  /* a shape buffer too small */
  kiln_relay_expr *xm;
  int64_t xs[] = {3, IN};
  ck_ok(ctx, kiln_relay_var(m, "x2", KILN_FLOAT32, 2, xs, &xm));
  int64_t one[1];
  ck_assert_int_eq(kiln_relay_expr_type(m, xm, &t, &ndim, one, 1), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "holds 1 dimensions, the type has 2");
  /* NULL out-parameters */
  ck_assert_int_eq(kiln_relay_var(m, "y", KILN_FLOAT32, 1, s, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_call(m, "nn.relu", 1, &xm, 0, NULL, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_print(m, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_equal(m, m, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_hash(m, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_dim(m, NULL, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_new(ctx, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_call(m, NULL, 1, &xm, 0, NULL, &e), KILN_ERR_MISUSE);

  /* NULL module or context: every entry point answers KILN_ERR_MISUSE */
  kiln_relay_module *pm;
  char *str;
  int eq;
  uint64_t h;
  int64_t d;
  ck_assert_int_eq(kiln_relay_module_new(NULL, &pm), KILN_ERR_MISUSE);
  ck_assert(strstr(kiln_last_error(), "NULL context") != NULL);
  ck_assert_int_eq(kiln_relay_module_parse(NULL, "", 0, &pm), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_parse_file(NULL, "x", &pm), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_print(NULL, &str), KILN_ERR_MISUSE);
  ck_assert(strstr(kiln_last_error(), "kiln_relay_module_print: NULL module") != NULL);
  ck_assert_int_eq(kiln_relay_module_equal(NULL, m, &eq), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_equal(m, NULL, &eq), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_hash(NULL, &h), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_num_funcs(NULL), 0);
  ck_assert_ptr_null(kiln_relay_module_func_name(NULL, 0));
  ck_assert_int_eq(kiln_relay_module_run_passes(NULL, NULL, 3), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_bind(NULL, 0, NULL, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_dim(NULL, "n", &d), KILN_ERR_MISUSE);
  ck_assert_ptr_null(kiln_relay_module_dim_name(NULL, -1));
  ck_assert_int_eq(kiln_relay_var(NULL, "x", KILN_FLOAT32, 1, s, &e), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_const(NULL, KILN_FLOAT32, 0, NULL, &h, 4, &e), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_call(NULL, "nn.relu", 1, &x, 0, NULL, &e), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_tuple(NULL, 1, &x, &e), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_proj(NULL, x, 0, &e), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_let(NULL, x, x, x, &e), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_function(NULL, "f", 1, &x, x), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_expr_type(NULL, x, &t, &ndim, NULL, 0), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_interpret(NULL, "main", 0, NULL, 0, NULL), KILN_ERR_MISUSE);
  kiln_relay_module_free(NULL);

  kiln_relay_module_free(other);
  kiln_relay_module_free(m);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}
END_TEST

START_TEST(test_module_errors) {
  kiln_context *ctx = new_ctx();
  kiln_relay_module *m = new_mlp(ctx, NULL), *p = NULL;
  /* parse errors carry a position */
  const char *bad = "def @main(%x: Tensor[(2,), float32]) {\n  nn.relu(%x\n}\n";
  ck_assert_int_eq(kiln_relay_module_parse(ctx, bad, strlen(bad), &p), KILN_ERR_PARSE);
  ck_assert_ptr_null(p);
  int line, col;
  kiln_context_errpos(ctx, &line, &col);
  ck_assert_int_ge(line, 2);
  const char *unknown = "def @main(%x: Tensor[(2,), float32]) {\n  nn.frob(%x)\n}\n";
  ck_assert_int_eq(kiln_relay_module_parse(ctx, unknown, strlen(unknown), &p), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "nn.frob");
  ck_assert_int_eq(kiln_relay_module_parse(ctx, NULL, 3, &p), KILN_ERR_MISUSE);

  /* passes */
  ck_assert_int_eq(kiln_relay_module_run_passes(m, "InferType,FrobnicateOps", 3), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "unknown pass 'FrobnicateOps'");
  ck_errmsg_has(ctx, "FuseOps");
  ck_assert_int_eq(kiln_relay_module_run_passes(m, "InferType,,FuseOps", 3), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "bad pass list");
  ck_assert_int_eq(kiln_relay_module_run_passes(m, NULL, 7), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "opt_level 7");
  /* binding */
  const char *names[] = {"batch"}, *nnames[] = {"n"}, *nullname[] = {NULL};
  int64_t values[] = {2}, negative[] = {-4};
  ck_assert_int_eq(kiln_relay_module_bind(m, 1, names, values), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "no dimension 'batch'");
  ck_assert_int_eq(kiln_relay_module_bind(m, 1, nnames, negative), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "cannot be -4");
  ck_assert_int_eq(kiln_relay_module_bind(m, 1, nullname, values), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_bind(m, -1, nnames, values), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_dim(m, "", &values[0]), KILN_ERR_MISUSE);

  /* interpreting: wrong output buffers, wrong arguments */
  float x[3 * (IN + 1)] = {0}, y[3 * OUT], yd[3 * OUT];
  int64_t xs[] = {3, IN}, ws[] = {OUT, HID}, ys[] = {3, OUT}, wrong[] = {3, 4}, flat[] = {9};
  kiln_tensor args[] = {tensor(x, KILN_FLOAT32, 2, xs), tensor(W2, KILN_FLOAT32, 2, ws)};
  kiln_tensor out = tensor(y, KILN_FLOAT32, 2, wrong);
  for (int i = 0; i < 3 * OUT; i++) y[i] = 7;
  ck_assert_int_eq(kiln_relay_module_interpret(m, "main", 2, args, 1, &out), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "output 0 has shape (3, 4), the result has shape (3, 3)");
  ck_assert_float_eq(y[0], 7); /* nothing written */
  out = tensor(y, KILN_FLOAT32, 1, flat);
  ck_assert_int_eq(kiln_relay_module_interpret(m, "main", 2, args, 1, &out), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "output 0 has shape (9,)");
  out = tensor(yd, KILN_INT32, 2, ys);
  ck_assert_int_eq(kiln_relay_module_interpret(m, "main", 2, args, 1, &out), KILN_ERR_TYPE);
  ck_errmsg_has(ctx, "output 0 is int32, the result is float32");
  out = tensor(y, KILN_FLOAT32, 2, ys);
  kiln_tensor two[] = {out, out};
  ck_assert_int_eq(kiln_relay_module_interpret(m, "main", 2, args, 2, two), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "returns 1 tensor, but 2 outputs were given");
  ck_assert_int_eq(kiln_relay_module_interpret(m, "main", 1, args, 1, &out), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "takes 2 arguments, not 1");
  ck_assert_int_eq(kiln_relay_module_interpret(m, "nope", 2, args, 1, &out), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "no function @nope");
  ck_assert_int_eq(kiln_relay_module_interpret(m, NULL, 2, args, 1, &out), KILN_ERR_MISUSE);
  int64_t xwrong[] = {3, IN + 1};
  kiln_tensor badargs[] = {tensor(x, KILN_FLOAT32, 2, xwrong), args[1]};
  ck_assert_int_eq(kiln_relay_module_interpret(m, "main", 2, badargs, 1, &out), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "x");
  badargs[0] = tensor(x, KILN_INT32, 2, xs);
  ck_assert_int_eq(kiln_relay_module_interpret(m, "main", 2, badargs, 1, &out), KILN_ERR_TYPE);
  badargs[0] = tensor(x, KILN_FLOAT32, 2, xs);
  badargs[0].device_type = 2;
  ck_assert_int_eq(kiln_relay_module_interpret(m, "main", 2, badargs, 1, &out), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "only CPU tensors");
  int64_t strided[] = {1, 3};
  badargs[0] = tensor(x, KILN_FLOAT32, 2, xs);
  badargs[0].strides = strided;
  ck_assert_int_eq(kiln_relay_module_interpret(m, "main", 2, badargs, 1, &out), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "not compact row-major");
  badargs[0] = tensor(NULL, KILN_FLOAT32, 2, xs);
  ck_assert_int_eq(kiln_relay_module_interpret(m, "main", 2, badargs, 1, &out), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "argument 0 has NULL data");
  /* after all that, a correct call still works */
  ck_ok(ctx, kiln_relay_module_interpret(m, "main", 2, args, 1, &out));

  kiln_relay_module_free(m);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}
END_TEST

/* ---- Fault injection -------------------------------------------------------------------- */

/* Builds the MLP and prints it; returns the text (or NULL with the failing status). */
static char *build_and_print(kiln_context *ctx, kiln_status *st) {
  kiln_relay_module *m = NULL;
  kiln_relay_expr *y;
  char *text = NULL;
  *st = kiln_relay_module_new(ctx, &m);
  if (!*st) *st = build_mlp(m, &y);
  if (!*st) *st = kiln_relay_module_print(m, &text);
  kiln_relay_module_free(m);
  return text;
}

START_TEST(test_fault_injection_build_print) {
  kiln_context *ctx = new_ctx();
  kiln_status st;
  char *want = build_and_print(ctx, &st);
  ck_ok(ctx, st);
  long n;
  for (n = 1;; n++) {
    long before = kiln_context_alloc_count(ctx);
    kiln_context_fail_alloc(ctx, n);
    char *text = build_and_print(ctx, &st);
    long made = kiln_context_alloc_count(ctx) - before;
    kiln_context_fail_alloc(ctx, 0);
    if (made < n) { /* the failure was never reached: a clean run */
      ck_ok(ctx, st);
      ck_assert_str_eq(text, want);
      kiln_string_free(ctx, text);
      break;
    }
    /* every failure is reported (none is swallowed into a wrong result) */
    ck_assert_msg(st == KILN_ERR_NOMEM, "allocation %ld: status %s (%s)", n, kiln_status_str(st),
                  kiln_context_errmsg(ctx));
    ck_assert_ptr_null(text);
    ck_assert_msg(kiln_context_live_blocks(ctx) == 1, "allocation %ld leaked %ld blocks", n,
                  kiln_context_live_blocks(ctx) - 1); /* `want` is live */
  }
  ck_assert_int_gt(n, 20); /* the loop went through many allocations */
  kiln_string_free(ctx, want);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}
END_TEST

/* Parses the MLP text, runs the default passes and interprets it; returns the first error. */
static kiln_status parse_passes_run(kiln_context *ctx, const char *text, float *y) {
  kiln_relay_module *m = NULL;
  float x[2 * IN];
  for (int i = 0; i < 2 * IN; i++) x[i] = (float)i / 4.0f - 1.0f;
  int64_t xs[] = {2, IN}, ws[] = {OUT, HID}, ys[] = {2, OUT};
  kiln_tensor args[] = {tensor(x, KILN_FLOAT32, 2, xs), tensor(W2, KILN_FLOAT32, 2, ws)};
  kiln_tensor out = tensor(y, KILN_FLOAT32, 2, ys);
  kiln_status st = kiln_relay_module_parse(ctx, text, strlen(text), &m);
  if (!st) st = kiln_relay_module_run_passes(m, NULL, 3);
  if (!st) st = kiln_relay_module_interpret(m, "main", 2, args, 1, &out);
  kiln_relay_module_free(m);
  return st;
}

START_TEST(test_fault_injection_parse_passes_interpret) {
  kiln_context *ctx = new_ctx();
  kiln_status st;
  char *text = build_and_print(ctx, &st);
  ck_ok(ctx, st);
  float want[2 * OUT], y[2 * OUT];
  ck_ok(ctx, parse_passes_run(ctx, text, want));
  long n;
  for (n = 1;; n++) {
    long before = kiln_context_alloc_count(ctx);
    kiln_context_fail_alloc(ctx, n);
    memset(y, 0, sizeof y);
    st = parse_passes_run(ctx, text, y);
    long made = kiln_context_alloc_count(ctx) - before;
    kiln_context_fail_alloc(ctx, 0);
    if (made < n) {
      ck_ok(ctx, st);
      break;
    }
    ck_assert_msg(st == KILN_ERR_NOMEM, "allocation %ld: status %s (%s)", n, kiln_status_str(st),
                  kiln_context_errmsg(ctx));
    ck_assert_msg(kiln_context_live_blocks(ctx) == 1, "allocation %ld leaked %ld blocks", n,
                  kiln_context_live_blocks(ctx) - 1); /* `text` is live */
  }
  ck_assert_int_gt(n, 100);
  for (int i = 0; i < 2 * OUT; i++) ck_assert_float_eq(y[i], want[i]);
  kiln_string_free(ctx, text);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("relay_api");
  TCase *tc = tcase_create("build");
  tcase_add_test(tc, test_build_and_types);
  tcase_add_test(tc, test_print_parse_round_trip);
  tcase_add_test(tc, test_parse_file);
  tcase_add_test(tc, test_extend_parsed_module);
  tcase_add_test(tc, test_op_listing);
  suite_add_tcase(s, tc);
  tc = tcase_create("run");
  tcase_add_test(tc, test_mlp_passes_bind_interpret);
  tcase_add_test(tc, test_tuple_let_proj);
  suite_add_tcase(s, tc);
  tc = tcase_create("errors");
  tcase_add_test(tc, test_build_errors);
  tcase_add_test(tc, test_handle_misuse);
  tcase_add_test(tc, test_module_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("faults");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_fault_injection_build_print);
  tcase_add_test(tc, test_fault_injection_parse_passes_interpret);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

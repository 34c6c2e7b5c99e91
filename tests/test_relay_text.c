/* test_relay_text.c: the Relay text format (relay/text.c). Round trips (print -> parse ->
 * structurally equal, function by function, and printing again gives the same text) over the
 * golden files in tests/golden/relay and over graphs built with the constructors: constants
 * of every dtype bit for bit, symbolic dimensions, every attribute kind, variables, globals,
 * every expression kind, and sharing (a node used twice parses back to one node). Exact
 * printed forms; every parser error with its status, position and message; robustness against
 * truncated, mutated, random and deeply nested input and huge numbers; fault injection. */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "relay/op.h"
#include "relay/text.h"
#include "test_util.h"

/* ---- Helpers ----------------------------------------------------------------------------- */

static relay_module *parse_ok(kiln_context *ctx, const char *text) {
  relay_module *m = NULL;
  kiln_status st = relay_parse_module(ctx, text, strlen(text), &m);
  ck_assert_msg(st == KILN_OK, "parse failed: %s: %s\n--- input:\n%s", kiln_status_str(st),
                kiln_context_errmsg(ctx), text);
  ck_assert_ptr_nonnull(m);
  return m;
}

static char *print_ok(const relay_module *m) {
  char *s = relay_module_to_string(m);
  ck_assert_msg(s != NULL, "printing failed: %s", kiln_context_errmsg(m->ctx));
  return s;
}

/* Same function names in the same order, each pair structurally equal. */
static void ck_modules_equal(const relay_module *a, const relay_module *b, const char *text) {
  ck_assert_int_eq(a->nfuncs, b->nfuncs);
  for (int i = 0; i < a->nfuncs; i++) {
    ck_assert_str_eq(a->names[i], b->names[i]);
    ck_assert_msg(ir_structural_equal(a->ctx, &a->funcs[i]->h, &b->funcs[i]->h),
                  "function @%s differs after the round trip\n--- text:\n%s", a->names[i], text);
  }
}

/* print -> parse gives an equal module, and printing that gives the same text. Returns the
 * text (free with kiln_string_free) and, when out is given, the parsed module. */
static char *round_trip_keep(const relay_module *m, relay_module **out) {
  char *s1 = print_ok(m);
  relay_module *m2 = NULL;
  kiln_status st = relay_parse_module(m->ctx, s1, strlen(s1), &m2);
  ck_assert_msg(st == KILN_OK, "printed text does not parse: %s\n--- text:\n%s",
                kiln_context_errmsg(m->ctx), s1);
  ck_modules_equal(m, m2, s1);
  char *s2 = print_ok(m2);
  ck_assert_msg(strcmp(s1, s2) == 0, "printing is not stable:\n--- first:\n%s\n--- second:\n%s", s1, s2);
  kiln_string_free(m->ctx, s2);
  if (out) *out = m2;
  else relay_module_free(m2);
  return s1;
}

static char *round_trip(const relay_module *m) { return round_trip_keep(m, NULL); }

/* The text of an expression or type, checked against the expected string. */
static void ck_prints(kiln_context *ctx, const ir_node *n, const char *want) {
  ck_assert_msg(n != NULL, "building the node failed: %s", kiln_context_errmsg(ctx));
  char *s = relay_expr_to_string(ctx, n);
  ck_assert_msg(s != NULL, "printing failed: %s", kiln_context_errmsg(ctx));
  ck_assert_msg(strcmp(s, want) == 0, "printed\n%s\nexpected\n%s", s, want);
  kiln_string_free(ctx, s);
}

/* Asserts that a constructor succeeded. */
#define NN(ctx, x) nn_((ctx), (x), #x)
static void *nn_(kiln_context *ctx, void *x, const char *what) {
  ck_assert_msg(x != NULL, "%s failed: %s", what, kiln_context_errmsg(ctx));
  return x;
}

#define F32 KILN_FLOAT32

/* The module's symbolic dimension `name`, and a free int64 variable, as expressions. */
static ir_expr *dim_of(relay_module *m, const char *name) {
  ir_var *v = NN(m->ctx, relay_module_dim(m, name));
  return &v->h;
}
static ir_expr *tir_var(ir_arena *a, const char *name) {
  ir_var *v = NN(a->ctx, ir_var_new(a, name, KILN_INT64));
  return &v->h;
}

static void ck_prints_attr(kiln_context *ctx, relay_attr *attr, const char *want) {
  ck_assert_msg(attr != NULL, "building the attribute failed: %s", kiln_context_errmsg(ctx));
  ck_prints(ctx, &attr->h, want);
}

/* A tensor type of constant shape. */
static relay_type *tensor(ir_arena *a, kiln_dtype t, int nd, const int64_t *shape) {
  return NN(a->ctx, relay_tensor_type_const(a, t, nd, shape));
}
static relay_type *vec_type(ir_arena *a, kiln_dtype t, int64_t n) { return tensor(a, t, 1, &n); }
static relay_type *scalar_type(ir_arena *a, kiln_dtype t) { return tensor(a, t, 0, NULL); }

static relay_expr *call1(ir_arena *a, const char *op, relay_expr *x) {
  return NN(a->ctx, relay_call_op(a, op, 1, &x, 0, NULL));
}
static relay_expr *call2(ir_arena *a, const char *op, relay_expr *x, relay_expr *y) {
  relay_expr *args[2] = {x, y};
  return NN(a->ctx, relay_call_op(a, op, 2, args, 0, NULL));
}
static relay_expr *tuple(ir_arena *a, int n, relay_expr *const *fields) {
  return NN(a->ctx, relay_tuple_new(a, n, fields));
}
static relay_var *var(ir_arena *a, const char *name, relay_type *t) {
  return NN(a->ctx, relay_var_new(a, name, t));
}
static relay_func *func(ir_arena *a, int n, relay_var *const *params, relay_expr *body) {
  return NN(a->ctx, (relay_func *)relay_func_new(a, n, params, NULL, body, 0, NULL));
}
static void add_def(relay_module *m, const char *name, relay_func *f) {
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(relay_module_set(m, name, f), KILN_OK);
}

/* The body of the module's function `name`. */
static relay_expr *body_of(const relay_module *m, const char *name) {
  relay_func *f = relay_module_get(m, name);
  ck_assert_ptr_nonnull(f);
  return f->body;
}

static relay_expr *field(const relay_expr *t, int i) {
  const relay_tuple *x = relay_as_tuple(t);
  ck_assert_ptr_nonnull(x);
  ck_assert_int_lt(i, x->nfields);
  return x->fields[i];
}

static relay_expr *arg(const relay_expr *c, int i) {
  const relay_call *x = relay_as_call(c);
  ck_assert_ptr_nonnull(x);
  ck_assert_int_lt(i, x->nargs);
  return x->args[i];
}

/* A deterministic generator for random bits. */
static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  uint64_t x = *s;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ull;
  return x ^ (x >> 32);
}

/* ---- Golden files ------------------------------------------------------------------------ */

static const char *const golden_programs[] = {"graph.relay", "constructs.relay", "constants.relay",
                                              "dims.relay"};
static const char *const golden_errors[] = {"error_scope.relay", "error_broadcast.relay",
                                            "error_elided.relay"};

/* Each golden program is in the printer's format: parsing then printing it gives the file
 * back without its comment lines, and the round trip holds. */
START_TEST(test_golden_files_round_trip) {
  kiln_context *ctx = kiln_test_new_ctx();
  for (size_t i = 0; i < sizeof golden_programs / sizeof golden_programs[0]; i++) {
    char *text = kiln_test_read_golden("relay", golden_programs[i], NULL);
    char *want = kiln_test_strip_comment_lines(text);
    relay_module *m = parse_ok(ctx, text);
    char *got = round_trip(m);
    ck_assert_msg(strcmp(got, want) == 0, "%s: printed text differs from the file:\n%s",
                  golden_programs[i], got);
    kiln_string_free(ctx, got);
    relay_module_free(m);
    free(want);
    free(text);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Each golden error file holds a program and the error it must give:
 * "# expect-error: CODE LINE:COL message part". */
START_TEST(test_golden_error_files) {
  static const struct {
    const char *name;
    kiln_status code;
  } codes[] = {{"PARSE", KILN_ERR_PARSE},
               {"TYPE", KILN_ERR_TYPE},
               {"SHAPE", KILN_ERR_SHAPE},
               {"UNDEFINED", KILN_ERR_UNDEFINED}};
  kiln_context *ctx = kiln_test_new_ctx();
  for (size_t g = 0; g < sizeof golden_errors / sizeof golden_errors[0]; g++) {
    char *text = kiln_test_read_golden("relay", golden_errors[g], NULL);
    const char *spec = strstr(text, "# expect-error: ");
    ck_assert_ptr_nonnull(spec);
    char code_name[32], part[256];
    int line, col;
    ck_assert_int_eq(sscanf(spec, "# expect-error: %31s %d:%d %255[^\n]", code_name, &line, &col, part), 4);
    kiln_status code = KILN_OK;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
      if (strcmp(codes[i].name, code_name) == 0) code = codes[i].code;
    ck_assert_int_ne(code, KILN_OK);
    relay_module *m = (relay_module *)1;
    kiln_status st = relay_parse_module(ctx, text, strlen(text), &m);
    ck_assert_msg(st == code, "%s: got %s: %s", golden_errors[g], kiln_status_str(st), kiln_context_errmsg(ctx));
    ck_assert_ptr_null(m);
    int l, c;
    kiln_context_errpos(ctx, &l, &c);
    ck_assert_msg(l == line && c == col, "%s: error at %d:%d, expected %d:%d (%s)", golden_errors[g], l, c,
                  line, col, kiln_context_errmsg(ctx));
    ck_errmsg_has(ctx, part);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
    free(text);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The golden graph keeps its sharing: %1 (add) is used by two later lines and is one node. */
START_TEST(test_golden_graph_sharing) {
  kiln_context *ctx = kiln_test_new_ctx();
  char *text = kiln_test_read_golden("relay", "graph.relay", NULL);
  relay_module *m = parse_ok(ctx, text);
  relay_expr *out = body_of(m, "main");
  relay_expr *silu = field(out, 0), *cast = field(out, 1);
  relay_expr *sum = arg(cast, 0), *square = arg(sum, 0);
  relay_expr *h = arg(square, 0);
  ck_assert_ptr_eq(arg(square, 1), h);
  relay_expr *dense = arg(silu, 0);
  ck_assert_ptr_eq(arg(dense, 0), h);
  ck_assert_ptr_eq(arg(arg(silu, 1), 0), dense);
  /* defaults were filled in: sum has both attributes, keepdims as given */
  const relay_call *s = relay_as_call(sum);
  ck_assert_int_eq(s->nattrs, 2);
  ck_assert_int_eq(s->attrs[1]->i, 1);
  /* and the graph is typed */
  ck_assert_ptr_nonnull(relay_type_of(out));
  relay_module_free(m);
  free(text);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Printed forms ------------------------------------------------------------------------ */

/* The layout: one binding line per call, numbered in order, the result on the last line. */
START_TEST(test_print_layout) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = NN(ctx, relay_module_new(ctx));
  ir_arena *a = m->arena;
  ir_var *n = NN(ctx, relay_module_dim(m, "n"));
  ir_expr *dshape[2] = {&n->h, NN(ctx, ir_int(a, KILN_INT64, 16))};
  relay_var *data = var(a, "data", NN(ctx, relay_tensor_type_new(a, F32, 2, dshape)));
  relay_var *w = var(a, "w", tensor(a, F32, 2, (int64_t[]){64, 16}));
  relay_expr *d = call2(a, "nn.dense", &data->h, &w->h);
  relay_expr *r = call1(a, "nn.relu", d);
  relay_var *params[2] = {data, w};
  add_def(m, "main", func(a, 2, params, r));
  char *s = round_trip(m);
  ck_assert_str_eq(s,
                   "def @main(%data: Tensor[(n, 16), float32], %w: Tensor[(64, 16), float32]) {\n"
                   "  %0 = nn.dense(%data, %w);\n"
                   "  %1 = nn.relu(%0);\n"
                   "  %1\n"
                   "}\n");
  kiln_string_free(ctx, s);
  /* an empty module prints as nothing and parses back empty */
  relay_module *e = NN(ctx, relay_module_new(ctx));
  s = round_trip(e);
  ck_assert_str_eq(s, "");
  kiln_string_free(ctx, s);
  relay_module_free(e);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Types in the form relay_type_print writes; dimension expressions with minimal parentheses. */
START_TEST(test_print_types) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = NN(ctx, relay_module_new(ctx));
  ir_arena *a = m->arena;
  ir_expr *n = dim_of(m, "n"), *k = dim_of(m, "k");
  ir_expr *two = NN(ctx, ir_int(a, KILN_INT64, 2)), *one = NN(ctx, ir_int(a, KILN_INT64, 1));
  ck_prints(ctx, scalar_type(a, F32), "Tensor[(), float32]");
  ck_prints(ctx, vec_type(a, KILN_INT8, 5), "Tensor[(5,), int8]");
  ck_prints(ctx, tensor(a, KILN_BFLOAT16, 3, (int64_t[]){1, 3, -1}), "Tensor[(1, 3, -1), bfloat16]");
  ir_expr *dims[6] = {
      NN(ctx, ir_mul(a, n, two)),
      NN(ctx, ir_binop(a, IR_FLOORDIV, NN(ctx, ir_add(a, n, one)), two)),
      NN(ctx, ir_sub(a, n, NN(ctx, ir_sub(a, k, one)))),
      NN(ctx, ir_mul(a, NN(ctx, ir_add(a, n, k)), NN(ctx, ir_binop(a, IR_FLOORMOD, k, two)))),
      NN(ctx, ir_binop(a, IR_MIN, n, NN(ctx, ir_binop(a, IR_MAX, k, two)))),
      NN(ctx, ir_binop(a, IR_MOD, NN(ctx, ir_binop(a, IR_DIV, n, two)), NN(ctx, ir_int(a, KILN_INT64, -3)))),
  };
  ck_prints(ctx, NN(ctx, relay_tensor_type_new(a, F32, 6, dims)),
            "Tensor[(n * 2, (n + 1) // 2, n - (k - 1), (n + k) * (k %% 2), min(n, max(k, 2)), n / 2 % -3), float32]");
  relay_type *b = scalar_type(a, KILN_BOOL), *v2 = vec_type(a, F32, 2);
  ck_prints(ctx, NN(ctx, relay_tuple_type_new(a, 1, &b)), "(Tensor[(), bool],)");
  ck_prints(ctx, NN(ctx, relay_tuple_type_new(a, 0, NULL)), "()");
  relay_type *ps[2] = {v2, NN(ctx, relay_tuple_type_new(a, 1, &b))};
  ck_prints(ctx, NN(ctx, relay_func_type_new(a, 2, ps, v2)),
            "fn (Tensor[(2,), float32], (Tensor[(), bool],)) -> Tensor[(2,), float32]");
  /* a dimension that is not an int64 expression of the supported operators */
  ir_expr *sel = NN(ctx, ir_select_new(a, NN(ctx, ir_binop(a, IR_LT, n, k)), n, k));
  relay_type *odd = NN(ctx, relay_tensor_type_new(a, F32, 1, &sel));
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  ck_assert_int_eq(relay_print_expr(ctx, odd, &sb), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "cannot print a dimension of kind select");
  ir_sb_free(&sb);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Attributes: the kind shows in the spelling (floats always have '.' or an exponent). */
START_TEST(test_print_attrs) {
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = NN(ctx, ir_arena_new(ctx));
  static const struct {
    double v;
    const char *want;
  } floats[] = {
      {1.0, "f=1.0"},       {0.1, "f=0.1"},           {-0.0, "f=-0.0"},
      {1e100, "f=1e+100"},  {123456789.0, "f=123456789.0"}, {1.5e-7, "f=1.5e-07"},
      {INFINITY, "f=inf"},  {-INFINITY, "f=-inf"},    {5e-324, "f=5e-324"},
      {DBL_MAX, "f=1.7976931348623157e+308"},
  };
  for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++)
    ck_prints_attr(ctx, relay_attr_float(a, "f", floats[i].v), floats[i].want);
  ck_prints_attr(ctx, relay_attr_float(a, "f", NAN), "f=nan");
  ck_prints_attr(ctx, relay_attr_int(a, "k", -3), "k=-3");
  ck_prints_attr(ctx, relay_attr_int(a, "k", INT64_MIN), "k=-9223372036854775808");
  ck_prints_attr(ctx, relay_attr_str(a, "s", "a\"b\\c\n\t\r\x01\xff"),
            "s=\"a\\\"b\\\\c\\n\\t\\r\\x01\\xff\"");
  int64_t ints[3] = {1, -2, INT64_MAX};
  ck_prints_attr(ctx, relay_attr_ints(a, "axes", 3, ints), "axes=[1, -2, 9223372036854775807]");
  ck_prints_attr(ctx, relay_attr_ints(a, "axes", 0, NULL), "axes=[]");
  ck_prints_attr(ctx, relay_attr_int(a, "my key", 1), "\"my key\"=1");
  ck_prints_attr(ctx, relay_attr_int(a, "nn.x", 1), "nn.x=1");
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A 0-d constant of raw bytes `bits` (little-endian) and dtype t. */
static relay_expr *scalar_bits(ir_arena *a, kiln_dtype t, uint64_t bits) {
  return NN(a->ctx, relay_const_new(a, scalar_type(a, t), &bits, (int64_t)kiln_dtype_bytes(t)));
}

/* Scalars print as literals with a dtype suffix (none for int32); the rest as const(...). */
START_TEST(test_print_scalars) {
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = NN(ctx, ir_arena_new(ctx));
  ck_prints(ctx, NN(ctx, relay_scalar_f32(a, 0.1f)), "0.1f32");
  ck_prints(ctx, NN(ctx, relay_scalar_f32(a, 1000.0f)), "1000f32");
  ck_prints(ctx, NN(ctx, relay_scalar_f32(a, 123456.0f)), "123456f32");
  ck_prints(ctx, NN(ctx, relay_scalar_f32(a, 1e20f)), "1e+20f32");
  ck_prints(ctx, NN(ctx, relay_scalar_f32(a, 1.5e-7f)), "1.5e-07f32");
  ck_prints(ctx, NN(ctx, relay_scalar_f32(a, -0.0f)), "-0f32");
  ck_prints(ctx, NN(ctx, relay_scalar_f32(a, FLT_MAX)), "3.4028235e+38f32");
  ck_prints(ctx, NN(ctx, relay_scalar_f32(a, INFINITY)), "const(Tensor[(), float32], [inf])");
  ck_prints(ctx, NN(ctx, relay_scalar_f32(a, NAN)), "const(Tensor[(), float32], [nan])");
  ck_prints(ctx, scalar_bits(a, KILN_INT32, (uint32_t)-5), "-5");
  ck_prints(ctx, scalar_bits(a, KILN_INT64, 5), "5i64");
  ck_prints(ctx, scalar_bits(a, KILN_INT8, 0x80), "-128i8");
  ck_prints(ctx, scalar_bits(a, KILN_INT16, 0x8000), "-32768i16");
  ck_prints(ctx, scalar_bits(a, KILN_UINT8, 255), "255u8");
  ck_prints(ctx, scalar_bits(a, KILN_UINT16, 65535), "65535u16");
  ck_prints(ctx, scalar_bits(a, KILN_UINT32, 4294967295u), "4294967295u32");
  ck_prints(ctx, scalar_bits(a, KILN_UINT64, UINT64_MAX), "18446744073709551615u64");
  ck_prints(ctx, scalar_bits(a, KILN_FLOAT16, 0x3c00), "1f16");
  ck_prints(ctx, scalar_bits(a, KILN_FLOAT16, 0x0001), "6e-08f16");
  ck_prints(ctx, scalar_bits(a, KILN_FLOAT16, 0x7c01), "const(Tensor[(), float16], [nan(0x7c01)])");
  ck_prints(ctx, scalar_bits(a, KILN_BFLOAT16, 0x3fc0), "1.5bf16");
  ck_prints(ctx, scalar_bits(a, KILN_BFLOAT16, 0xff80), "const(Tensor[(), bfloat16], [-inf])");
  double d = 0.1;
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  ck_prints(ctx, scalar_bits(a, KILN_FLOAT64, bits), "0.1f64");
  ck_prints(ctx, scalar_bits(a, KILN_BOOL, 1), "true");
  ck_prints(ctx, scalar_bits(a, KILN_BOOL, 0), "false");
  ck_prints(ctx, scalar_bits(a, KILN_BOOL, 2), "const(Tensor[(), bool], [2])");
  float v[4] = {1, 2.5f, -0.0f, 0.1f};
  ck_prints(ctx, NN(ctx, relay_const_new(a, tensor(a, F32, 2, (int64_t[]){2, 2}), v, sizeof v)),
            "%0 = const(Tensor[(2, 2), float32], [1, 2.5, -0, 0.1]);\n%0");
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Lone expressions: names, globals without a module, bindings at indentation 0, functions. */
START_TEST(test_print_exprs) {
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = NN(ctx, ir_arena_new(ctx));
  relay_type *t = vec_type(a, F32, 2);
  relay_var *x = var(a, "x", t), *y = var(a, "y", NULL);
  ck_prints(ctx, &x->h, "%x");
  relay_expr *xy[2] = {&x->h, &y->h};
  ck_prints(ctx, tuple(a, 2, xy), "(%x, %y)");
  relay_expr *r = call1(a, "nn.relu", &x->h);
  ck_prints(ctx, r, "%0 = nn.relu(%x);\n%0");
  relay_func *f = func(a, 1, &x, r);
  ck_prints(ctx, &f->h, "fn (%x: Tensor[(2,), float32]) {\n  %0 = nn.relu(%x);\n  %0\n}");
  relay_var *v = var(a, "v", NULL);
  relay_expr *l = NN(ctx, relay_let_new(a, v, r, &v->h));
  ck_prints(ctx, l, "let %v = nn.relu(%x);\n%v");
  ck_prints(ctx, NN(ctx, relay_global_new(a, "f", NULL)), "@f");
  ck_prints(ctx, NN(ctx, relay_global_new(a, "my f", relay_type_of(&f->h))),
            "(@\"my f\": fn (Tensor[(2,), float32]) -> Tensor[(2,), float32])");
  /* default attributes are left out, given ones printed in schema order */
  int64_t axis0 = 0;
  relay_attr *defaults[2] = {NN(ctx, relay_attr_int(a, "keepdims", 0)), NN(ctx, relay_attr_ints(a, "axis", 0, NULL))};
  ck_prints(ctx, NN(ctx, relay_call_op(a, "sum", 1, (relay_expr *[]){&x->h}, 2, defaults)), "%0 = sum(%x);\n%0");
  relay_attr *given[2] = {NN(ctx, relay_attr_int(a, "keepdims", 1)), NN(ctx, relay_attr_ints(a, "axis", 1, &axis0))};
  ck_prints(ctx, NN(ctx, relay_call_op(a, "sum", 1, (relay_expr *[]){&x->h}, 2, given)),
            "%0 = sum(%x, axis=[0], keepdims=1);\n%0");
  relay_attr *dt = NN(ctx, relay_attr_str(a, "dtype", "float32"));
  ck_prints(ctx, NN(ctx, relay_call_op(a, "cast", 1, (relay_expr *[]){&x->h}, 1, &dt)), "%0 = cast(%x);\n%0");
  /* misuse */
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  ck_assert_int_eq(relay_print_expr(ctx, NN(ctx, ir_i32(a, 1)), &sb), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "is not a Relay expression");
  ck_assert_int_eq(relay_print_expr(ctx, NULL, &sb), KILN_ERR_MISUSE);
  ck_assert_int_eq(relay_print_expr(NULL, r, &sb), KILN_ERR_MISUSE);
  ck_assert_int_eq(relay_print_expr(ctx, r, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(relay_print_module(NULL, &sb), KILN_ERR_MISUSE);
  ck_assert_ptr_null(relay_module_to_string(NULL));
  ck_assert_ptr_null(relay_expr_to_string(NULL, r));
  ir_sb_free(&sb);
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Programs built with the constructors ---------------------------------------------------- */

/* Constants of every dtype round trip bit for bit: every bit pattern of the 8- and 16-bit
 * types (all float16 and bfloat16 values and NaNs included), extremes and random patterns of
 * the wider ones; and scalars of every dtype in literal form. */
START_TEST(test_constants_every_dtype) {
  static const kiln_dtype types[] = {
      {KILN_TYPE_BOOL, 8, 1},   {KILN_TYPE_INT, 8, 1},    {KILN_TYPE_INT, 16, 1},
      {KILN_TYPE_INT, 32, 1},   {KILN_TYPE_INT, 64, 1},   {KILN_TYPE_UINT, 8, 1},
      {KILN_TYPE_UINT, 16, 1},  {KILN_TYPE_UINT, 32, 1},  {KILN_TYPE_UINT, 64, 1},
      {KILN_TYPE_FLOAT, 16, 1}, {KILN_TYPE_BFLOAT, 16, 1}, {KILN_TYPE_FLOAT, 32, 1},
      {KILN_TYPE_FLOAT, 64, 1},
  };
  enum { NT = sizeof types / sizeof types[0] };
  static const uint64_t specials[] = {
      0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
      0x7fffffffffffffffull, 0x8000000000000000ull, UINT64_MAX,
      0x3f800000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0x00000001, 0x7f7fffff,
      0x3ff0000000000000ull, 0x7ff0000000000000ull, 0x7ff8000000000000ull, 0x7ff0000000000001ull,
      0xfff8000000000000ull, 0x0000000000000001ull, 0x7fefffffffffffffull, 0x3fb999999999999aull,
  };
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = NN(ctx, relay_module_new(ctx));
  ir_arena *a = m->arena;
  relay_expr *fields[NT], *scalars[NT * 16];
  uint64_t seed = 42;
  for (int i = 0; i < NT; i++) {
    kiln_dtype t = types[i];
    size_t size = kiln_dtype_bytes(t);
    int64_t n = size <= 2 ? (int64_t)1 << (8 * size) : 5000;
    unsigned char *data = malloc((size_t)n * size);
    for (int64_t j = 0; j < n; j++) {
      uint64_t bits = size <= 2 ? (uint64_t)j
                      : j < (int64_t)(sizeof specials / sizeof specials[0]) ? specials[j] : lcg(&seed);
      memcpy(data + (size_t)j * size, &bits, size); /* little-endian: the low bytes */
    }
    fields[i] = NN(ctx, relay_const_new(a, vec_type(a, t, n), data, n * (int64_t)size));
    for (int j = 0; j < 16; j++) scalars[i * 16 + j] = scalar_bits(a, t, j < 4 ? specials[j * 7] : lcg(&seed));
    free(data);
  }
  add_def(m, "tensors", func(a, 0, NULL, tuple(a, NT, fields)));
  add_def(m, "scalars", func(a, 0, NULL, tuple(a, NT * 16, scalars)));
  relay_module *m2;
  char *s = round_trip_keep(m, &m2);
  /* structural equality compares the bytes; check them directly as well */
  for (int i = 0; i < NT; i++) {
    const relay_const *x = relay_as_const(fields[i]), *y = relay_as_const(field(body_of(m2, "tensors"), i));
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(x->nbytes, y->nbytes);
    ck_assert_msg(memcmp(x->data, y->data, (size_t)x->nbytes) == 0, "constant %d differs", i);
  }
  ck_assert_ptr_nonnull(strstr(s, "nan(0x7c01)"));
  ck_assert_ptr_nonnull(strstr(s, "nan(0x7ff0000000000001)"));
  relay_module_free(m2);
  kiln_string_free(ctx, s);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Symbolic dimensions: module dims by name, one variable per name after parsing (shared by
 * all functions), expressions of them; two different variables with the same name get two
 * names; names that are not identifiers are made into ones. */
START_TEST(test_symbolic_dims) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = NN(ctx, relay_module_new(ctx));
  ir_arena *a = m->arena;
  ir_expr *n = dim_of(m, "n"), *k = dim_of(m, "k");
  ir_expr *other_n = tir_var(a, "n");
  ir_expr *weird = tir_var(a, "my dim.x");
  ir_expr *digit = tir_var(a, "3d");
  ir_expr *two = NN(ctx, ir_int(a, KILN_INT64, 2));
  ir_expr *s1[4] = {n, other_n, weird, digit};
  ir_expr *s2[3] = {NN(ctx, ir_add(a, NN(ctx, ir_mul(a, n, two)), k)), NN(ctx, ir_binop(a, IR_FLOORDIV, n, two)),
                    NN(ctx, ir_binop(a, IR_MAX, n, k))};
  relay_var *x = var(a, "x", NN(ctx, relay_tensor_type_new(a, F32, 4, s1)));
  relay_var *y = var(a, "y", NN(ctx, relay_tensor_type_new(a, F32, 3, s2)));
  relay_var *xy[2] = {x, y};
  relay_expr *fx[2] = {&x->h, &y->h};
  add_def(m, "f", func(a, 2, xy, tuple(a, 2, fx)));
  relay_var *z = var(a, "z", NN(ctx, relay_tensor_type_new(a, F32, 1, &n)));
  add_def(m, "g", func(a, 1, &z, call1(a, "nn.relu", &z->h)));
  relay_module *m2;
  char *s = round_trip_keep(m, &m2);
  ck_assert_ptr_nonnull(strstr(s, "def @f(%x: Tensor[(n, n_1, my_dim_x, _3d), float32], "
                                  "%y: Tensor[(n * 2 + k, n // 2, max(n, k)), float32])"));
  /* one variable per name, shared by the functions; the module knows every dimension */
  const relay_tensor_type *tf = relay_as_tensor_type(relay_module_get(m2, "f")->params[0]->type);
  const relay_tensor_type *tg = relay_as_tensor_type(relay_module_get(m2, "g")->params[0]->type);
  ck_assert_ptr_eq(tf->shape[0], tg->shape[0]);
  ck_assert_ptr_ne(tf->shape[0], tf->shape[1]);
  ck_assert_ptr_eq(tf->shape[0], &relay_module_dim(m2, "n")->h);
  ck_assert_ptr_eq(tf->shape[1], &relay_module_dim(m2, "n_1")->h);
  ck_assert_int_eq(m2->ndims, 5);
  /* @g is typed with the shared dimension */
  ck_assert_ptr_nonnull(relay_type_of(&relay_module_get(m2, "g")->h));
  relay_module_free(m2);
  kiln_string_free(ctx, s);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Types as relay_type_print writes them (ir_print_node's i64 suffixes included) parse. */
START_TEST(test_relay_type_print_parses) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = NN(ctx, relay_module_new(ctx));
  ir_arena *a = m->arena;
  ir_expr *n = dim_of(m, "n");
  ir_expr *two = NN(ctx, ir_int(a, KILN_INT64, 2)), *three = NN(ctx, ir_int(a, KILN_INT64, 3));
  ir_expr *dims[4] = {NN(ctx, ir_int(a, KILN_INT64, 1)), n, NN(ctx, ir_mul(a, n, two)),
                      NN(ctx, ir_binop(a, IR_FLOORMOD, NN(ctx, ir_binop(a, IR_FLOORDIV, n, three)), two))};
  relay_type *t4 = NN(ctx, relay_tensor_type_new(a, F32, 4, dims));
  relay_type *t1 = vec_type(a, KILN_INT8, 7), *t0 = scalar_type(a, KILN_BOOL);
  relay_type *tup1 = NN(ctx, relay_tuple_type_new(a, 1, &t1));
  relay_type *tup3 = NN(ctx, relay_tuple_type_new(a, 3, (relay_type *[]){t4, tup1, t0}));
  relay_type *fnt = NN(ctx, relay_func_type_new(a, 2, (relay_type *[]){t4, tup3}, t1));
  relay_type *all[] = {t4, t1, t0, tup1, tup3, fnt, NN(ctx, relay_tuple_type_new(a, 0, NULL))};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    ir_strbuf sb;
    ir_sb_init(&sb, ctx);
    ir_sb_puts(&sb, "def @f(%x: ");
    relay_type_print(&sb, all[i]);
    ir_sb_puts(&sb, ") {\n  %x\n}\n");
    char *text = ir_sb_take(&sb, NULL);
    relay_module *p = parse_ok(ctx, text);
    ck_assert_msg(ir_structural_equal(ctx, all[i], relay_module_get(p, "f")->params[0]->type),
                  "type %zu differs after parsing: %s", i, text);
    relay_module_free(p);
    kiln_string_free(ctx, text);
  }
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A node used more than once prints once and parses back to one node, in one scope and
 * across scopes (a nested function's body, if branches), for every kind of node. */
START_TEST(test_sharing) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = NN(ctx, relay_module_new(ctx));
  ir_arena *a = m->arena;
  relay_type *t = tensor(a, F32, 2, (int64_t[]){2, 2});
  relay_var *x = var(a, "x", t), *c = var(a, "c", scalar_type(a, KILN_BOOL));
  float cv[4] = {1, 2, 3, 4};
  relay_expr *r = call1(a, "nn.relu", &x->h);
  relay_expr *k = NN(ctx, relay_const_new(a, t, cv, sizeof cv));
  relay_expr *t2 = tuple(a, 2, (relay_expr *[]){r, k});
  relay_expr *pj = NN(ctx, relay_proj_new(a, t2, 0));
  relay_expr *s1 = call2(a, "add", r, r), *s2 = call2(a, "multiply", r, k), *s3 = call2(a, "add", pj, pj);
  /* e is used in a nested function's body and outside it: its binding goes outside */
  relay_expr *e = call1(a, "exp", &x->h);
  relay_var *p = var(a, "p", t);
  relay_func *fn = func(a, 1, &p, call2(a, "add", &p->h, e));
  relay_expr *k1 = NN(ctx, relay_call_fn(a, &fn->h, 1, (relay_expr *[]){&x->h}));
  relay_expr *k2 = NN(ctx, relay_call_fn(a, &fn->h, 1, (relay_expr *[]){e}));
  /* th is used in both branches (its binding goes before the if), sg in one (inside it) */
  relay_expr *th = call1(a, "tanh", &x->h), *sg = call1(a, "sigmoid", &x->h);
  relay_expr *br = NN(ctx, relay_if_new(a, &c->h, call2(a, "add", call2(a, "add", th, e), sg), call2(a, "multiply", th, th)));
  /* a let and an if used twice each */
  relay_var *v = var(a, "v", NULL);
  relay_expr *l = NN(ctx, relay_let_new(a, v, r, call2(a, "add", &v->h, &v->h)));
  relay_expr *out[11] = {s1, s2, s3, t2, k, k1, k2, br, l, l, br};
  add_def(m, "main", func(a, 2, (relay_var *[]){x, c}, tuple(a, 11, out)));
  relay_module *m2;
  char *s = round_trip_keep(m, &m2);
  relay_expr *o = body_of(m2, "main");
  relay_expr *R = arg(field(o, 0), 0), *C = arg(field(o, 1), 1), *T = field(o, 3);
  ck_assert_str_eq(relay_as_call(R)->op, "nn.relu");
  ck_assert_ptr_eq(arg(field(o, 0), 1), R);
  ck_assert_ptr_eq(arg(field(o, 1), 0), R);
  ck_assert_ptr_eq(field(o, 4), C);
  ck_assert_ptr_eq(field(T, 0), R);
  ck_assert_ptr_eq(field(T, 1), C);
  relay_expr *P = arg(field(o, 2), 0);
  ck_assert_ptr_eq(arg(field(o, 2), 1), P);
  ck_assert_ptr_eq(((const relay_proj *)P)->tuple, T);
  const relay_call *K1 = relay_as_call(field(o, 5)), *K2 = relay_as_call(field(o, 6));
  ck_assert_ptr_eq(K1->fn, K2->fn);
  const relay_func *F = relay_as_func(K1->fn);
  ck_assert_ptr_nonnull(F);
  relay_expr *E = K2->args[0];
  ck_assert_ptr_eq(arg(F->body, 1), E);
  ck_assert_ptr_eq(arg(F->body, 0), &F->params[0]->h);
  const relay_if *B = (const relay_if *)field(o, 7);
  ck_assert_int_eq(B->h.kind, RELAY_IF);
  ck_assert_ptr_eq(field(o, 10), &B->h);
  relay_expr *TH = arg(arg(B->then_branch, 0), 0);
  ck_assert_ptr_eq(arg(B->else_branch, 0), TH);
  ck_assert_ptr_eq(arg(B->else_branch, 1), TH);
  ck_assert_ptr_eq(arg(arg(B->then_branch, 0), 1), E);
  ck_assert_ptr_eq(field(o, 8), field(o, 9));
  /* each shared node printed once, bindings placed where all uses see them */
  const char *relu = strstr(s, "nn.relu(");
  ck_assert_ptr_nonnull(relu);
  ck_assert_ptr_null(strstr(relu + 1, "nn.relu("));
  const char *exp_at = strstr(s, "exp("), *fn_at = strstr(s, "fn ("), *if_at = strstr(s, "if (");
  const char *tanh_at = strstr(s, "tanh("), *sig_at = strstr(s, "sigmoid(");
  ck_assert(exp_at && fn_at && if_at && tanh_at && sig_at);
  ck_assert(exp_at < fn_at);
  ck_assert(tanh_at < if_at);
  ck_assert(sig_at > if_at);
  ck_assert_ptr_null(strstr(exp_at + 1, "exp("));
  ck_assert_ptr_null(strstr(strstr(s, "const(") + 1, "const("));
  relay_module_free(m2);
  kiln_string_free(ctx, s);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Function attributes of every kind round trip exactly (float bits included); a def can
 * carry attributes too. */
START_TEST(test_every_attr_kind) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = NN(ctx, relay_module_new(ctx));
  ir_arena *a = m->arena;
  double nan_bits;
  uint64_t payload = 0x7ff0000000000123ull;
  memcpy(&nan_bits, &payload, sizeof nan_bits);
  const double floats[] = {0.1, -0.0, 4.9e-324, DBL_MAX, INFINITY, -INFINITY, NAN, nan_bits, 3.0, 1e-7};
  enum { NF = sizeof floats / sizeof floats[0] };
  int64_t ints[3] = {INT64_MIN, 0, INT64_MAX};
  relay_attr *attrs[NF + 9];
  int na = 0;
  for (int i = 0; i < NF; i++) {
    char key[16];
    snprintf(key, sizeof key, "f%d", i);
    attrs[na++] = NN(ctx, relay_attr_float(a, key, floats[i]));
  }
  attrs[na++] = NN(ctx, relay_attr_int(a, "primitive", 1));
  attrs[na++] = NN(ctx, relay_attr_int(a, "imin", INT64_MIN));
  attrs[na++] = NN(ctx, relay_attr_int(a, "imax", INT64_MAX));
  attrs[na++] = NN(ctx, relay_attr_str(a, "s", "a\"b\\c\n\t\r\x01\xff end"));
  attrs[na++] = NN(ctx, relay_attr_str(a, "empty", ""));
  attrs[na++] = NN(ctx, relay_attr_ints(a, "none", 0, NULL));
  attrs[na++] = NN(ctx, relay_attr_ints(a, "l", 3, ints));
  attrs[na++] = NN(ctx, relay_attr_int(a, "weird key", 1));
  attrs[na++] = NN(ctx, relay_attr_int(a, "relay.x", 2));
  relay_var *p = var(a, "p", vec_type(a, F32, 2));
  relay_func *inner = NN(ctx, (relay_func *)relay_func_new(a, 1, &p, NULL, call1(a, "nn.relu", &p->h), na, attrs));
  relay_var *x = var(a, "x", vec_type(a, F32, 2));
  relay_expr *call = NN(ctx, relay_call_fn(a, &inner->h, 1, (relay_expr *[]){&x->h}));
  relay_attr *defattr = NN(ctx, relay_attr_str(a, "global_symbol", "main"));
  add_def(m, "main", NN(ctx, (relay_func *)relay_func_new(a, 1, &x, vec_type(a, F32, 2), call, 1, &defattr)));
  relay_module *m2;
  char *s = round_trip_keep(m, &m2);
  ck_assert_ptr_nonnull(strstr(s, "def @main [global_symbol=\"main\"] (%x: Tensor[(2,), float32]) -> Tensor[(2,), float32] {\n"));
  ck_assert_ptr_nonnull(strstr(s, "f7=nan(0x7ff0000000000123)"));
  ck_assert_ptr_nonnull(strstr(s, "\"weird key\"=1, relay.x=2"));
  const relay_func *in2 = relay_as_func(relay_as_call(body_of(m2, "main"))->fn);
  ck_assert_ptr_nonnull(in2);
  ck_assert_int_eq(in2->nattrs, na);
  for (int i = 0; i < na; i++) {
    ck_assert_str_eq(in2->attrs[i]->key, attrs[i]->key);
    ck_assert_int_eq(in2->attrs[i]->attr_kind, attrs[i]->attr_kind);
    ck_assert_msg(memcmp(&in2->attrs[i]->f, &attrs[i]->f, sizeof(double)) == 0, "float attribute %d differs", i);
  }
  ck_assert(relay_func_is_primitive(in2));
  relay_module_free(m2);
  kiln_string_free(ctx, s);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Variables with and without annotations, let with and without; name hints that are not
 * valid or repeat become unique valid names. */
START_TEST(test_variables_and_names) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = NN(ctx, relay_module_new(ctx));
  ir_arena *a = m->arena;
  relay_type *t = vec_type(a, F32, 2);
  relay_var *ps[6] = {var(a, "x", t), var(a, "x", NULL), var(a, "a.b", t), var(a, "0", t), var(a, "", t),
                      var(a, "x_1", t)};
  relay_var *v1 = var(a, "v", t), *v2 = var(a, "v", NULL);
  relay_expr *body = NN(ctx, relay_let_new(a, v2, call2(a, "add", &v1->h, &ps[0]->h),
                                           tuple(a, 3, (relay_expr *[]){&v2->h, &ps[1]->h, &ps[5]->h})));
  body = NN(ctx, relay_let_new(a, v1, call1(a, "nn.relu", &ps[2]->h), body));
  add_def(m, "main", func(a, 6, ps, body));
  char *s = round_trip(m);
  ck_assert_str_eq(s,
                   "def @main(%x: Tensor[(2,), float32], %x_1, %a_b: Tensor[(2,), float32], "
                   "%_0: Tensor[(2,), float32], %x_2: Tensor[(2,), float32], %x_1_1: Tensor[(2,), float32]) {\n"
                   "  let %v: Tensor[(2,), float32] = nn.relu(%a_b);\n"
                   "  let %v_1 = add(%v, %x);\n"
                   "  (%v_1, %x_1, %x_1_1)\n"
                   "}\n");
  kiln_string_free(ctx, s);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Globals: `@f` takes the type of a function defined above; other types print explicitly;
 * forward references and recursion; names that need quotes. */
START_TEST(test_globals) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = NN(ctx, relay_module_new(ctx));
  ir_arena *a = m->arena;
  relay_type *t = vec_type(a, F32, 2);
  relay_var *fa = var(a, "a", t);
  relay_func *f = func(a, 1, &fa, call1(a, "nn.relu", &fa->h));
  add_def(m, "f", f);
  relay_var *ha = var(a, "a", t);
  relay_func *h = func(a, 1, &ha, &ha->h);
  relay_var *x = var(a, "x", t);
  relay_expr *xs[1] = {&x->h};
  relay_expr *calls[5] = {
      NN(ctx, relay_call_fn(a, NN(ctx, relay_global_new(a, "f", relay_type_of(&f->h))), 1, xs)),
      NN(ctx, relay_call_fn(a, NN(ctx, relay_global_new(a, "f", NULL)), 1, xs)),
      NN(ctx, relay_call_fn(a, NN(ctx, relay_global_new(a, "h", NULL)), 1, xs)),
      NN(ctx, relay_call_fn(a, NN(ctx, relay_global_new(a, "h", relay_type_of(&h->h))), 1, xs)),
      NN(ctx, relay_call_fn(a, NN(ctx, relay_global_new(a, "my func", NULL)), 1, xs)),
  };
  add_def(m, "main", func(a, 1, &x, tuple(a, 5, calls)));
  add_def(m, "h", h);
  relay_var *q = var(a, "q", NULL);
  relay_expr *rec = NN(ctx, relay_call_fn(a, NN(ctx, relay_global_new(a, "my func", NULL)), 1, (relay_expr *[]){&q->h}));
  add_def(m, "my func", func(a, 1, &q, rec));
  relay_module *m2;
  char *s = round_trip_keep(m, &m2);
  ck_assert_ptr_nonnull(strstr(s, "  %0 = @f(%x);\n"
                                  "  %1 = (@f: ?)(%x);\n"
                                  "  %2 = @h(%x);\n"
                                  "  %3 = (@h: fn (Tensor[(2,), float32]) -> Tensor[(2,), float32])(%x);\n"
                                  "  %4 = @\"my func\"(%x);\n"));
  ck_assert_ptr_nonnull(strstr(s, "def @\"my func\"(%q) {\n  %0 = @\"my func\"(%q);\n"));
  /* the parsed call of @f is typed like the function */
  ck_assert_ptr_nonnull(relay_type_of(field(body_of(m2, "main"), 0)));
  ck_assert_ptr_null(relay_type_of(field(body_of(m2, "main"), 1)));
  relay_module_free(m2);
  kiln_string_free(ctx, s);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Long chains print and parse without deep recursion; inline nesting is cut by bindings;
 * scopes nested too deeply to print are refused cleanly. */
START_TEST(test_deep_graphs) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = NN(ctx, relay_module_new(ctx));
  ir_arena *a = m->arena;
  relay_type *t = vec_type(a, F32, 2);
  relay_var *x = var(a, "x", t), *c = var(a, "c", scalar_type(a, KILN_BOOL));
  relay_expr *e = &x->h;
  for (int i = 0; i < 1500; i++) e = call1(a, i % 2 ? "nn.relu" : "negative", e);
  add_def(m, "chain", func(a, 1, &x, e));
  relay_var *vs[1500];
  for (int i = 0; i < 1500; i++) vs[i] = var(a, "v", NULL);
  relay_expr *body = &vs[1499]->h;
  for (int i = 1499; i >= 0; i--) {
    relay_expr *value = call1(a, "nn.relu", i ? &vs[i - 1]->h : &x->h);
    body = NN(ctx, relay_let_new(a, vs[i], value, body));
  }
  add_def(m, "lets", func(a, 1, &x, body));
  relay_expr *nest = &x->h;
  for (int i = 0; i < 100; i++) nest = tuple(a, 1, &nest);
  add_def(m, "tuples", func(a, 1, &x, nest));
  relay_expr *ifs = &x->h;
  for (int i = 0; i < 90; i++) ifs = NN(ctx, relay_if_new(a, &c->h, call1(a, "exp", &x->h), ifs));
  add_def(m, "ifs", func(a, 2, (relay_var *[]){x, c}, ifs));
  char *s = round_trip(m);
  ck_assert_ptr_nonnull(strstr(s, "  %1499 = nn.relu(%1498);\n  %1499\n}"));
  ck_assert_ptr_nonnull(strstr(s, "  let %v_1499 = nn.relu(%v_1498);\n  %v_1499\n}"));
  /* 33 levels inline (the printer's limit is 32 below a node), then a binding */
  char want[256] = "  %0 = ";
  for (int i = 0; i < 33; i++) strcat(want, "(");
  strcat(want, "%x,)");
  for (int i = 0; i < 32; i++) strcat(want, ",)");
  strcat(want, ";\n");
  ck_assert_ptr_nonnull(strstr(s, want));
  ck_assert_ptr_nonnull(strstr(s, "  (%2,)\n}"));
  kiln_string_free(ctx, s);
  /* ifs nested 600 deep exceed the printer's depth */
  for (int i = 0; i < 510; i++) ifs = NN(ctx, relay_if_new(a, &c->h, &x->h, ifs));
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  ck_assert_int_eq(relay_print_expr(ctx, ifs, &sb), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "too deeply nested to print");
  ir_sb_free(&sb);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Constants with more elements than the limit print as `...` for human readers; such text
 * does not parse back. */
START_TEST(test_elided_constants) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = NN(ctx, relay_module_new(ctx));
  ir_arena *a = m->arena;
  float big[100], small[4] = {1, 2, 3, 4};
  for (int i = 0; i < 100; i++) big[i] = (float)i;
  relay_var *x = var(a, "x", vec_type(a, F32, 4));
  relay_expr *kb = NN(ctx, relay_const_new(a, vec_type(a, F32, 100), big, sizeof big));
  relay_expr *ks = NN(ctx, relay_const_new(a, vec_type(a, F32, 4), small, sizeof small));
  relay_expr *body = tuple(a, 3, (relay_expr *[]){kb, call2(a, "add", &x->h, ks), NN(ctx, relay_scalar_f32(a, 2.5f))});
  add_def(m, "main", func(a, 1, &x, body));
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  ck_ok(ctx, relay_print_module_opts(m, &sb, 10));
  char *s = ir_sb_take(&sb, NULL);
  ck_assert_str_eq(s,
                   "def @main(%x: Tensor[(4,), float32]) {\n"
                   "  %0 = const(Tensor[(100,), float32], ...);\n"
                   "  %1 = const(Tensor[(4,), float32], [1, 2, 3, 4]);\n"
                   "  %2 = add(%x, %1);\n"
                   "  (%0, %2, 2.5f32)\n"
                   "}\n");
  relay_module *m2 = (relay_module *)1;
  ck_assert_int_eq(relay_parse_module(ctx, s, strlen(s), &m2), KILN_ERR_PARSE);
  ck_assert_ptr_null(m2);
  ck_errmsg_has(ctx, "2:39: this constant's data was elided");
  kiln_string_free(ctx, s);
  /* zero elides every non-scalar constant; negative prints everything */
  ir_sb_init(&sb, ctx);
  ck_ok(ctx, relay_print_expr_opts(ctx, ks, &sb, 0));
  s = ir_sb_take(&sb, NULL);
  ck_assert_str_eq(s, "%0 = const(Tensor[(4,), float32], ...);\n%0");
  kiln_string_free(ctx, s);
  ir_sb_init(&sb, ctx);
  ck_ok(ctx, relay_print_module_opts(m, &sb, -1));
  s = ir_sb_take(&sb, NULL);
  char *full = print_ok(m);
  ck_assert_str_eq(s, full);
  ck_assert_ptr_nonnull(strstr(full, "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,"));
  kiln_string_free(ctx, full);
  kiln_string_free(ctx, s);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Errors ------------------------------------------------------------------------------- */

typedef struct bad_input {
  const char *text;
  kiln_status code;
  int line, col;
  const char *msg;
} bad_input;

#define HEAD "def @main(%x: Tensor[(2, 3), float32], %c: Tensor[(), bool]) {\n"
#define TAIL "\n}\n"
#define BAD(text, code, line, col, msg) {text, code, line, col, msg}

static const bad_input bad_inputs[] = {
    /* syntax */
    BAD(HEAD "  nn.relu(%x" TAIL, KILN_ERR_PARSE, 3, 1, "expected ')' at the end of the arguments, found '}'"),
    BAD(HEAD "  %0 = nn.relu(%x)\n  %0" TAIL, KILN_ERR_PARSE, 3, 3, "expected ';' after a binding, found '%0'"),
    BAD(HEAD "  let %y = %x\n  %y" TAIL, KILN_ERR_PARSE, 3, 3, "expected ';' after a let value, found '%y'"),
    BAD(HEAD "  add(let %y = %x; %y, %x)" TAIL, KILN_ERR_PARSE, 2, 7, "a let starts a line of a block"),
    BAD(HEAD "  %x" "\n", KILN_ERR_PARSE, 3, 1, "expected '}' at the end of a block, found end of input"),
    BAD("fn (%x) { %x }", KILN_ERR_PARSE, 1, 1, "expected 'def' (a function definition) or the end of the input, found 'fn'"),
    BAD("def main() { 1 }", KILN_ERR_PARSE, 1, 5, "expected '@' after 'def', found 'main'"),
    BAD("def @main(x) { 1 }", KILN_ERR_PARSE, 1, 11, "expected a %name (a parameter), found 'x'"),
    BAD("def @main(%x: ) { %x }", KILN_ERR_PARSE, 1, 15, "expected a type (Tensor[...], a tuple type (...) or fn (...) -> ...), found ')'"),
    BAD(HEAD "  if (%c) { %x }" TAIL, KILN_ERR_PARSE, 3, 1, "expected 'else' after the then branch, found '}'"),
    BAD(HEAD "  (%x %x)" TAIL, KILN_ERR_PARSE, 2, 7, "expected ',' or ')' after an expression in parentheses, found '%x'"),
    BAD(HEAD "  %x.y" TAIL, KILN_ERR_PARSE, 2, 6, "expected a field number after '.', found 'y'"),
    BAD(HEAD "  (%x,).99999999999" TAIL, KILN_ERR_PARSE, 2, 9, "field number 99999999999 is too large"),
    BAD(HEAD "  $" TAIL, KILN_ERR_PARSE, 2, 3, "unexpected character '$'"),
    BAD(HEAD "  \x01" TAIL, KILN_ERR_PARSE, 2, 3, "unexpected byte 0x01"),
    BAD(HEAD "  cast(%x, dtype=\"float16)" TAIL, KILN_ERR_PARSE, 2, 18, "unterminated string"),
    BAD(HEAD "  cast(%x, dtype=\"a\\qb\")" TAIL, KILN_ERR_PARSE, 2, 20, "unknown escape '\\q' in a string"),
    BAD(HEAD "  cast(%x, dtype=\"a\\x00\")" TAIL, KILN_ERR_PARSE, 2, 20, "a string cannot contain a NUL byte"),
    BAD(HEAD "  sum(%x, axis=)" TAIL, KILN_ERR_PARSE, 2, 16, "expected an attribute value (a number, a string or a list of integers), found ')'"),
    BAD(HEAD "  sum(%x, axis=[1.5])" TAIL, KILN_ERR_PARSE, 2, 17, "expected an integer for int64, found '1.5'"),
    BAD(HEAD "  sum(%x, keepdims=1i64)" TAIL, KILN_ERR_PARSE, 2, 20, "an attribute value takes no type suffix"),
    BAD(HEAD "  sum(keepdims=1, %x)" TAIL, KILN_ERR_PARSE, 2, 19, "sum: the arguments go before the attributes"),
    BAD(HEAD "  sum(%x, keepdims=1, keepdims=0)" TAIL, KILN_ERR_PARSE, 2, 23, "sum: attribute 'keepdims' is given twice"),
    BAD("def @f() {\n  1\n}\ndef @f() {\n  2\n}\n", KILN_ERR_PARSE, 4, 6, "function @f is defined twice"),
    /* names */
    BAD(HEAD "  nn.relu(%y)" TAIL, KILN_ERR_UNDEFINED, 2, 11, "undefined variable '%y'"),
    BAD(HEAD "  nn.foo(%x)" TAIL, KILN_ERR_UNDEFINED, 2, 3, "unknown op 'nn.foo'"),
    BAD(HEAD "  @nope(%x)" TAIL, KILN_ERR_UNDEFINED, 2, 4, "undefined function @nope"),
    BAD(HEAD "  %0 = fn (%p) { %p };\n  %p" TAIL, KILN_ERR_UNDEFINED, 3, 3, "undefined variable '%p'"),
    BAD(HEAD "  let %y = %y;\n  %y" TAIL, KILN_ERR_UNDEFINED, 2, 12, "undefined variable '%y'"),
    BAD(HEAD "  %0 = { %1 = nn.relu(%x); %1 };\n  %1" TAIL, KILN_ERR_UNDEFINED, 3, 3, "undefined variable '%1'"),
    /* attributes against the op's schema */
    BAD(HEAD "  sum(%x, axes=[1])" TAIL, KILN_ERR_TYPE, 2, 11, "sum has no attribute 'axes' (it has axis, keepdims)"),
    BAD(HEAD "  nn.relu(%x, alpha=0.5)" TAIL, KILN_ERR_TYPE, 2, 15, "nn.relu has no attribute 'alpha' (it has none)"),
    BAD(HEAD "  sum(%x, axis=1)" TAIL, KILN_ERR_TYPE, 2, 16, "sum: attribute 'axis' must be a list of integers, not an integer"),
    BAD(HEAD "  sum(%x, keepdims=\"yes\")" TAIL, KILN_ERR_TYPE, 2, 20, "sum: attribute 'keepdims' must be an integer, not a string"),
    BAD(HEAD "  cast(%x, dtype=1.5)" TAIL, KILN_ERR_TYPE, 2, 18, "cast: attribute 'dtype' must be a string, not a float"),
    /* types, from the constructors, at the construct */
    BAD("def @main(%x: Tensor[(2, 3), float32], %y: Tensor[(4, 5), float32]) {\n  add(%x, %y)\n}\n",
        KILN_ERR_TYPE, 2, 3, "add: shapes (2, 3) and (4, 5) do not broadcast"),
    BAD(HEAD "  add(%x, 1f16)" TAIL, KILN_ERR_TYPE, 2, 3, "add: operand dtypes differ (float32 vs float16)"),
    BAD(HEAD "  nn.relu(%x, %x)" TAIL, KILN_ERR_TYPE, 2, 3, "nn.relu takes 1 arguments, not 2"),
    BAD(HEAD "  cast(%x, dtype=\"float33\")" TAIL, KILN_ERR_TYPE, 2, 3, "cast: 'float33' is not a tensor element type"),
    BAD(HEAD "  let %y: Tensor[(3,), float32] = %x;\n  %y" TAIL, KILN_ERR_TYPE, 2, 3,
        "let %y: the value's type does not match the annotation"),
    BAD("def @main(%x: Tensor[(2,), float32]) -> Tensor[(3,), float32] {\n  %x\n}\n", KILN_ERR_TYPE, 1, 1,
        "the function's body does not match its result annotation"),
    BAD(HEAD "  if (%x) { %x } else { %x }" TAIL, KILN_ERR_TYPE, 2, 3, "the condition of if must be a bool scalar"),
    BAD(HEAD "  if (%c) { %x } else { %c }" TAIL, KILN_ERR_TYPE, 2, 3, "the branches of if have different types"),
    BAD(HEAD "  %x.0" TAIL, KILN_ERR_TYPE, 2, 5, "projection (.N) needs a tuple"),
    BAD(HEAD "  (%x, %x).2" TAIL, KILN_ERR_TYPE, 2, 11, "projection .2 of a tuple of 2 fields"),
    BAD(HEAD "  %x(%x)" TAIL, KILN_ERR_TYPE, 2, 3, "calling a value that is not a function"),
    BAD("def @f(%a: Tensor[(2,), float32]) {\n  %a\n}\ndef @main(%x: Tensor[(3,), float32]) {\n  @f(%x)\n}\n",
        KILN_ERR_TYPE, 5, 3, "argument 0 of the call: expected Tensor[(2,), float32], got Tensor[(3,), float32]"),
    BAD(HEAD "  (@f: Tensor[(2,), float32])" TAIL "def @f() {\n  1\n}\n", KILN_ERR_TYPE, 2, 4,
        "@f: a global's type is a function type"),
    BAD("def @main(%x: Tensor[(2, 3), float33]) {\n  %x\n}\n", KILN_ERR_PARSE, 1, 30, "unknown data type 'float33'"),
    BAD("def @main(%x: Tensor[(2, 3), float32x4]) {\n  %x\n}\n", KILN_ERR_TYPE, 1, 15, "a tensor needs a scalar element type"),
    BAD("def @main(%x: Tensor[(1, 1, 1, 1, 1, 1, 1, 1, 1), float32]) {\n  %x\n}\n", KILN_ERR_UNSUPPORTED, 1, 15,
        "tensors have at most 8 dimensions"),
    /* dimensions */
    BAD("def @main(%x: Tensor[(2.5,), float32]) {\n  %x\n}\n", KILN_ERR_PARSE, 1, 23, "a dimension is an integer, found '2.5'"),
    BAD("def @main(%x: Tensor[(2i32,), float32]) {\n  %x\n}\n", KILN_ERR_PARSE, 1, 23, "a dimension is an int64 number, found '2i32'"),
    BAD("def @main(%x: Tensor[(n %2,), float32]) {\n  %x\n}\n", KILN_ERR_PARSE, 1, 25,
        "expected ')' at the end of a tensor's shape, found '%2'"),
    BAD("def @main(%x: Tensor[(9223372036854775808,), float32]) {\n  %x\n}\n", KILN_ERR_PARSE, 1, 23,
        "9223372036854775808 does not fit in int64"),
    BAD("def @main(%x: Tensor[(min(n),), float32]) {\n  %x\n}\n", KILN_ERR_PARSE, 1, 28,
        "expected ',' between the operands of min/max, found ')'"),
    BAD("def @main(%x: Tensor[(*,), float32]) {\n  %x\n}\n", KILN_ERR_PARSE, 1, 23,
        "expected a dimension (a number, a name or '('), found '*'"),
    /* constants and numbers */
    BAD(HEAD "  const(Tensor[(2,), float32], [1, 2, 3])" TAIL, KILN_ERR_SHAPE, 2, 39, "too many elements: the constant's type holds 2"),
    BAD(HEAD "  const(Tensor[(2,), float32], [1])" TAIL, KILN_ERR_SHAPE, 2, 3, "the constant's type holds 2 elements, its data 1"),
    BAD(HEAD "  const(Tensor[(n,), float32], [])" TAIL, KILN_ERR_TYPE, 2, 9, "a constant needs a tensor type of constant shape"),
    BAD(HEAD "  const(Tensor[(4611686018427387904, 4), float32], [])" TAIL, KILN_ERR_TYPE, 2, 9,
        "a constant needs a tensor type of constant shape"),
    BAD(HEAD "  const(Tensor[(1000000000000,), float32], [1])" TAIL, KILN_ERR_SHAPE, 2, 3,
        "the constant's type holds 1000000000000 elements, its data 1"),
    BAD(HEAD "  const(Tensor[(1,), float32], ...)" TAIL, KILN_ERR_PARSE, 2, 32, "this constant's data was elided"),
    BAD(HEAD "  const(Tensor[(1,), int32], [1.5])" TAIL, KILN_ERR_PARSE, 2, 31, "expected an integer for int32, found '1.5'"),
    BAD(HEAD "  const(Tensor[(1,), int32], [inf])" TAIL, KILN_ERR_PARSE, 2, 31, "expected an element of type int32, found 'inf'"),
    BAD(HEAD "  const(Tensor[(1,), float32], [1f16])" TAIL, KILN_ERR_PARSE, 2, 33, "the suffix 'f16' does not match the constant's dtype float32"),
    BAD(HEAD "  const(Tensor[(1,), float32], [nan(0x3f800000)])" TAIL, KILN_ERR_PARSE, 2, 37, "0x3f800000 are not the bits of a float32 NaN"),
    BAD(HEAD "  const(Tensor[(1,), float16], [nan(0x10000)])" TAIL, KILN_ERR_PARSE, 2, 37, "nan(...) takes the bits of a float16 NaN, found '0x10000'"),
    BAD(HEAD "  const(Tensor[(1,), bool], [256])" TAIL, KILN_ERR_PARSE, 2, 30, "256 does not fit in bool"),
    BAD(HEAD "  const(Tensor[(1,), uint8], [-1])" TAIL, KILN_ERR_PARSE, 2, 31, "-1 does not fit in uint8"),
    BAD(HEAD "  const(Tensor[(1,), float16], [65520])" TAIL, KILN_ERR_PARSE, 2, 33, "65520 is out of range for float16"),
    BAD(HEAD "  const(Tensor[(1,), float32x4], [1])" TAIL, KILN_ERR_TYPE, 2, 9, "a tensor needs a scalar element type"),
    BAD(HEAD "  300u8" TAIL, KILN_ERR_PARSE, 2, 3, "300u8 does not fit in uint8"),
    BAD(HEAD "  -1u8" TAIL, KILN_ERR_PARSE, 2, 3, "-1u8 does not fit in uint8"),
    BAD(HEAD "  2147483648" TAIL, KILN_ERR_PARSE, 2, 3, "2147483648 does not fit in int32"),
    BAD(HEAD "  99999999999999999999i64" TAIL, KILN_ERR_PARSE, 2, 3, "99999999999999999999i64 does not fit in int64"),
    BAD(HEAD "  1e39f32" TAIL, KILN_ERR_PARSE, 2, 3, "1e39f32 is out of range for float32"),
    /* above FLT_MAX by more than half a unit in the last place: rounds to infinity */
    BAD(HEAD "  3.4028236e+38f32" TAIL, KILN_ERR_PARSE, 2, 3, "3.4028236e+38f32 is out of range for float32"),
    BAD(HEAD "  -3.4e+38bf16" TAIL, KILN_ERR_PARSE, 2, 3, "-3.4e+38bf16 is out of range for bfloat16"),
    BAD(HEAD "  1e999" TAIL, KILN_ERR_PARSE, 2, 3, "1e999 is out of range"),
    BAD(HEAD "  1q8" TAIL, KILN_ERR_PARSE, 2, 3, "unknown literal suffix 'q8'"),
    BAD(HEAD "  1bool" TAIL, KILN_ERR_PARSE, 2, 3, "unknown literal suffix 'bool'"),
    BAD(HEAD "  1.5i32" TAIL, KILN_ERR_PARSE, 2, 3, "expected an integer for int32, found '1.5i32'"),
    BAD(HEAD "  0x" TAIL, KILN_ERR_PARSE, 2, 3, "expected hex digits after '0x'"),
    BAD(HEAD "  0x1g" TAIL, KILN_ERR_PARSE, 2, 3, "unexpected 'g' in the hex number '0x1g'"),
    BAD(HEAD "  - %x" TAIL, KILN_ERR_PARSE, 2, 5, "expected a number after '-', found '%x'"),
    BAD(HEAD "  1234567890123456789012345678901234567890123456789012345678901234567890123456789012345" TAIL,
        KILN_ERR_PARSE, 2, 3, "number too long"),
};

START_TEST(test_error_table) {
  kiln_context *ctx = kiln_test_new_ctx();
  char report[16384] = "";
  size_t used = 0;
  int nfail = 0;
  for (size_t i = 0; i < sizeof bad_inputs / sizeof bad_inputs[0]; i++) {
    const bad_input *c = &bad_inputs[i];
    relay_module *m = (relay_module *)1;
    kiln_status st = relay_parse_module(ctx, c->text, strlen(c->text), &m);
    int line, col;
    kiln_context_errpos(ctx, &line, &col);
    char pos[32];
    snprintf(pos, sizeof pos, "%d:%d: ", c->line, c->col);
    if (st != c->code || line != c->line || col != c->col || strstr(kiln_context_errmsg(ctx), c->msg) == NULL ||
        strncmp(kiln_context_errmsg(ctx), pos, strlen(pos)) != 0) {
      nfail++;
      if (used < sizeof report - 512)
        used += (size_t)snprintf(report + used, sizeof report - used,
                                 "case %zu: got %s '%s', expected %s at %d:%d '%s'\n", i,
                                 kiln_status_str(st), kiln_context_errmsg(ctx),
                                 kiln_status_str(c->code), c->line, c->col, c->msg);
    }
    ck_assert_ptr_null(m);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  }
  ck_assert_msg(nfail == 0, "%d error cases differ:\n%s", nfail, report);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Misuse of the entry points; the empty text is an empty module. */
START_TEST(test_parse_api) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = (relay_module *)1;
  ck_assert_int_eq(relay_parse_module(NULL, "", 0, &m), KILN_ERR_MISUSE);
  ck_assert_int_eq(relay_parse_module(ctx, "", 0, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(relay_parse_module(ctx, NULL, 3, &m), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "relay_parse_module: NULL argument");
  ck_ok(ctx, relay_parse_module(ctx, NULL, 0, &m));
  ck_assert_int_eq(m->nfuncs, 0);
  relay_module_free(m);
  m = parse_ok(ctx, "  # only a comment\n\n");
  ck_assert_int_eq(m->nfuncs, 0);
  relay_module_free(m);
  /* the text need not end with NUL: only len bytes are read */
  const char *text = "def @f() {\n  1\n}\ngarbage";
  ck_ok(ctx, relay_parse_module(ctx, text, strlen(text) - 7, &m));
  ck_assert_int_eq(m->nfuncs, 1);
  /* a later construction in the module's arena carries no position from the text */
  ck_assert_int_eq(m->arena->span.line, 0);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Robustness ------------------------------------------------------------------------- */

/* After a failed parse: a clean error with a position, nothing returned, nothing leaked. */
static void check_failure(kiln_context *ctx, kiln_status st, relay_module *m) {
  ck_assert_msg(st == KILN_ERR_PARSE || st == KILN_ERR_UNDEFINED || st == KILN_ERR_TYPE ||
                    st == KILN_ERR_SHAPE || st == KILN_ERR_UNSUPPORTED,
                "unexpected status %s: %s", kiln_status_str(st), kiln_context_errmsg(ctx));
  ck_assert_ptr_null(m);
  int line, col;
  kiln_context_errpos(ctx, &line, &col);
  ck_assert_msg(line > 0 && col > 0, "no position: %s", kiln_context_errmsg(ctx));
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
}

/* Parses text (len bytes, in a copy of exactly that size so ASan sees any overread); if it
 * parses, the result round trips. Returns whether it parsed. */
static bool parse_any(kiln_context *ctx, const char *text, size_t len) {
  char *copy = malloc(len ? len : 1);
  memcpy(copy, text, len);
  relay_module *m = NULL;
  kiln_status st = relay_parse_module(ctx, copy, len, &m);
  free(copy);
  if (st != KILN_OK) {
    check_failure(ctx, st, m);
    return false;
  }
  kiln_string_free(ctx, round_trip(m));
  relay_module_free(m);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  return true;
}

/* Every prefix of the golden programs fails cleanly (or is itself a valid module). */
START_TEST(test_truncated_programs) {
  kiln_context *ctx = kiln_test_new_ctx();
  for (size_t g = 0; g < sizeof golden_programs / sizeof golden_programs[0]; g++) {
    size_t len;
    char *text = kiln_test_read_golden("relay", golden_programs[g], &len);
    int ok = 0;
    for (size_t cut = 0; cut <= len; cut++) ok += parse_any(ctx, text, cut);
    /* the comment-only prefixes, the whole text, and the cuts between functions */
    ck_assert_int_ge(ok, 3);
    free(text);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Each byte of the golden programs replaced by bytes that break things: never a crash or a
 * leak, and whatever still parses round trips. */
START_TEST(test_mutated_programs) {
  static const char junk[] = {'\0', '(', '}', '-', '%', '.', '\n'};
  kiln_context *ctx = kiln_test_new_ctx();
  for (size_t g = 0; g < sizeof golden_programs / sizeof golden_programs[0]; g++) {
    char *file = kiln_test_read_golden("relay", golden_programs[g], NULL);
    char *text = kiln_test_strip_comment_lines(file);
    size_t len = strlen(text);
    char *copy = malloc(len);
    int ok = 0;
    for (size_t i = 0; i < len; i++) {
      for (size_t j = 0; j < sizeof junk; j++) {
        if (text[i] == junk[j]) continue;
        memcpy(copy, text, len);
        copy[i] = junk[j];
        ok += parse_any(ctx, copy, len);
      }
    }
    ck_assert_int_gt(ok, 0); /* e.g. a new line, or '-' in a number */
    free(copy);
    free(text);
    free(file);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Random bytes and random sequences of tokens: clean errors or valid modules. */
START_TEST(test_random_input) {
  static const char *const tokens[] = {
      "def", "@main", "@f", "(", ")", "{", "}", "[", "]", "%x", "%0", "%1", "=", ";", ",", ":",
      "let", "fn", "if", "else", "Tensor[(2,), float32]", "Tensor[(n, 2), float32]", "nn.relu",
      "add", "sum", "axis=[1]", "keepdims=1", "1", "2.5f32", "-", "const", "(Tensor[(1,), int8], [3])",
      ".0", "->", "...", "?", "true", "\"s\"", "\n", "# c\n", "%x: Tensor[(2,), float32]", "(%x,)",
  };
  enum { NTOK = sizeof tokens / sizeof tokens[0] };
  kiln_context *ctx = kiln_test_new_ctx();
  uint64_t seed = 7;
  char buf[1024];
  for (int i = 0; i < 2000; i++) {
    size_t n = 1 + lcg(&seed) % 64;
    for (size_t j = 0; j < n; j++) buf[j] = (char)(lcg(&seed) & 0xff);
    parse_any(ctx, buf, n);
  }
  int ok = 0;
  for (int i = 0; i < 4000; i++) {
    size_t len = 0;
    int n = 1 + (int)(lcg(&seed) % 24);
    for (int j = 0; j < n; j++) {
      const char *t = tokens[lcg(&seed) % NTOK];
      size_t tl = strlen(t);
      if (len + tl + 1 >= sizeof buf) break;
      memcpy(buf + len, t, tl);
      len += tl;
      buf[len++] = ' ';
    }
    ok += parse_any(ctx, buf, len);
  }
  /* a few short valid programs come out ("def @f(%x) { %x }" and the like), but not many */
  ck_assert_int_lt(ok, 4000);
  kiln_test_done_ctx(ctx);
}
END_TEST

static void expect_nesting(kiln_context *ctx, char *text, kiln_status want, const char *msg) {
  relay_module *m = NULL;
  kiln_status st = relay_parse_module(ctx, text, strlen(text), &m);
  ck_assert_msg(st == want, "got %s (%s)", kiln_status_str(st), kiln_context_errmsg(ctx));
  if (st == KILN_OK) {
    kiln_string_free(ctx, round_trip(m));
    relay_module_free(m);
  } else {
    ck_errmsg_has(ctx, msg);
    ck_assert_ptr_null(m);
  }
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  free(text);
}

START_TEST(test_deep_nesting) {
  const char *head = "def @f(%x: Tensor[(2,), float32], %c: Tensor[(), bool]) {\n  ";
  const char *tail = "\n}\n";
  const char *too_deep = "nesting too deep (more than 256 levels)";
  kiln_context *ctx = kiln_test_new_ctx();
  expect_nesting(ctx, kiln_test_nested(head, "(", 200, "%x", ")", tail), KILN_OK, NULL);
  expect_nesting(ctx, kiln_test_nested(head, "(", 300, "%x", ")", tail), KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested(head, "(", 1000000, "%x", ")", tail), KILN_ERR_PARSE, too_deep);
  /* the error points at the bracket one level too deep: the body takes two levels (the
   * block and its expression), so the 255th "(" (column 3 + 254) is the last one allowed */
  int line, col;
  kiln_context_errpos(ctx, &line, &col);
  ck_assert_int_eq(line, 2);
  ck_assert_int_eq(col, 3 + 255);
  expect_nesting(ctx, kiln_test_nested(head, "(", 100, "%x", ",)", tail), KILN_OK, NULL);
  expect_nesting(ctx, kiln_test_nested(head, "nn.relu(", 200, "%x", ")", tail), KILN_OK, NULL);
  expect_nesting(ctx, kiln_test_nested(head, "nn.relu(", 100000, "%x", ")", tail), KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested(head, "{", 100000, "%x", "}", tail), KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested(head, "fn () {", 100000, "%x", "}", tail), KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested(head, "if (%c) { %x } else { ", 100, "%x", "}", tail), KILN_OK, NULL);
  expect_nesting(ctx, kiln_test_nested(head, "if (%c) { %x } else { ", 100000, "%x", "}", tail), KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested("def @f(%x: ", "(", 100000, "Tensor[(2,), float32]", ",)", ") { %x }"),
                 KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested("def @f(%x: ", "fn () -> ", 100000, "Tensor[(2,), float32]", "", ") { %x }"),
                 KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested("def @f(%x: Tensor[(", "(", 100000, "n", ")", ",), float32]) { %x }"),
                 KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested("def @f(%x: Tensor[(", "-", 1000000, "n", "", ",), float32]) { %x }"),
                 KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested("def @f(%x: Tensor[(", "min(n, ", 100000, "n", ")", ",), float32]) { %x }"),
                 KILN_ERR_PARSE, too_deep);
  /* operator chains build deep dimension trees without recursion; their depth is limited */
  expect_nesting(ctx, kiln_test_nested("def @f(%x: Tensor[(", "n + ", 200, "n", "", ",), float32]) { %x }"), KILN_OK, NULL);
  expect_nesting(ctx, kiln_test_nested("def @f(%x: Tensor[(", "n * ", 100000, "n", "", ",), float32]) { %x }"),
                 KILN_ERR_PARSE, "dimension expression nested too deeply (more than 256 levels)");
  /* long chains of bindings, lets, projections and calls are not nesting */
  char *chain = malloc(40 * 20000 + 200), *q = chain;
  q = stpcpy(q, head);
  q += sprintf(q, "%%0 = nn.relu(%%x);\n");
  for (int i = 1; i < 20000; i++) q += sprintf(q, "  %%%d = nn.relu(%%%d);\n", i, i - 1);
  strcpy(q, "  %19999\n}\n");
  relay_module *m = parse_ok(ctx, chain);
  char *s = print_ok(m);
  ck_assert_str_eq(s, chain);
  kiln_string_free(ctx, s);
  relay_module_free(m);
  free(chain);
  expect_nesting(ctx, kiln_test_nested(head, "", 20000, "let %y = %x;\n", "", "%y\n}\n"), KILN_OK, NULL);
  expect_nesting(ctx, kiln_test_nested(head, "", 1, "((%x,),)", "", ".0.0.0\n}\n"), KILN_ERR_TYPE, "projection (.N) needs a tuple");
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Fault injection ------------------------------------------------------------------------ */

/* Fails the n-th allocation of parse + print for n = 1, 2, ... until a run succeeds: every
 * failing run reports KILN_ERR_NOMEM and leaves nothing allocated; the successful run made
 * fewer than n allocations (no failure was swallowed). */
static void fault_loop(const char *text) {
  kiln_context *ctx = kiln_test_new_ctx();
  for (long n = 1;; n++) {
    ck_assert_int_lt(n, 100000);
    long before = kiln_context_alloc_count(ctx);
    kiln_context_fail_alloc(ctx, n);
    relay_module *m = NULL;
    char *s = NULL;
    kiln_status st = relay_parse_module(ctx, text, strlen(text), &m);
    if (st == KILN_OK && !(s = relay_module_to_string(m))) st = kiln_context_errcode(ctx);
    long made = kiln_context_alloc_count(ctx) - before;
    kiln_context_fail_alloc(ctx, 0);
    kiln_string_free(ctx, s);
    relay_module_free(m);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
    if (st == KILN_OK) {
      ck_assert_int_lt(made, n);
      break;
    }
    ck_assert_msg(st == KILN_ERR_NOMEM, "n=%ld: %s: %s", n, kiln_status_str(st), kiln_context_errmsg(ctx));
    ck_assert_int_eq(kiln_context_errcode(ctx), KILN_ERR_NOMEM);
    if (m == NULL) ck_assert_ptr_null(s);
  }
  kiln_test_done_ctx(ctx);
}

START_TEST(test_fault_injection_golden) {
  for (size_t g = 0; g < sizeof golden_programs / sizeof golden_programs[0]; g++) {
    char *text = kiln_test_read_golden("relay", golden_programs[g], NULL);
    fault_loop(text);
    free(text);
  }
}
END_TEST

/* A big program: many functions, names, bindings and a large constant, so the name table,
 * the arenas, the printer's tables and the output buffer all grow several times. */
START_TEST(test_fault_injection_big) {
  size_t cap = 1 << 20, len = 0;
  char *text = malloc(cap);
  for (int f = 0; f < 6; f++) {
    len += (size_t)snprintf(text + len, cap - len, "def @f%d(%%x: Tensor[(n, 4), float32]) {\n", f);
    len += (size_t)snprintf(text + len, cap - len, "  %%k = const(Tensor[(200,), float32], [");
    for (int i = 0; i < 200; i++) len += (size_t)snprintf(text + len, cap - len, "%s%d.5", i ? ", " : "", i);
    len += (size_t)snprintf(text + len, cap - len, "]);\n  %%0 = nn.relu(%%x);\n");
    for (int i = 1; i < 120; i++)
      len += (size_t)snprintf(text + len, cap - len, "  let %%v%d = add(%%%d, %%0);\n  %%%d = multiply(%%v%d, %%v%d);\n",
                              i, i - 1, i, i, i);
    len += (size_t)snprintf(text + len, cap - len, "  (%%119, %%k, @f%d)\n}\n", f ? f - 1 : 0);
  }
  fault_loop(text);
  free(text);
}
END_TEST

/* Printing graphs built with the constructors (names to invent, dimensions, globals compared
 * structurally) under fault injection, module and expression entry points. */
START_TEST(test_fault_injection_print) {
  kiln_context *ctx = kiln_test_new_ctx();
  relay_module *m = NN(ctx, relay_module_new(ctx));
  ir_arena *a = m->arena;
  ir_expr *n = dim_of(m, "n");
  ir_expr *other_n = tir_var(a, "n");
  ir_expr *dims[2] = {n, NN(ctx, ir_mul(a, other_n, NN(ctx, ir_int(a, KILN_INT64, 2))))};
  relay_type *t = NN(ctx, relay_tensor_type_new(a, F32, 2, dims));
  relay_var *fx = var(a, "x", t);
  relay_func *f = func(a, 1, &fx, call1(a, "nn.relu", &fx->h));
  add_def(m, "f", f);
  relay_var *x = var(a, "x", t), *y = var(a, "x", t);
  relay_type *ft = NN(ctx, relay_func_type_new(a, 1, &t, t));
  relay_expr *g = NN(ctx, relay_global_new(a, "f", ft)); /* equal to @f's type, not the same node */
  relay_expr *c = NN(ctx, relay_call_fn(a, g, 1, (relay_expr *[]){&x->h}));
  relay_expr *sh = call2(a, "add", c, &y->h);
  relay_var *v = var(a, "v", NULL);
  relay_expr *body = NN(ctx, relay_let_new(a, v, sh, tuple(a, 3, (relay_expr *[]){&v->h, sh, c})));
  add_def(m, "main", func(a, 2, (relay_var *[]){x, y}, body));
  char *want = print_ok(m);
  ck_assert_ptr_nonnull(strstr(want, "%0 = @f(%x);"));
  char *want_expr = relay_expr_to_string(ctx, body);
  for (int which = 0; which < 2; which++) {
    for (long k = 1;; k++) {
      ck_assert_int_lt(k, 100000);
      long before = kiln_context_alloc_count(ctx);
      kiln_context_fail_alloc(ctx, k);
      char *s = which ? relay_expr_to_string(ctx, body) : relay_module_to_string(m);
      long made = kiln_context_alloc_count(ctx) - before;
      kiln_context_fail_alloc(ctx, 0);
      if (s) {
        ck_assert_int_lt(made, k);
        ck_assert_str_eq(s, which ? want_expr : want);
        kiln_string_free(ctx, s);
        break;
      }
      ck_assert_int_eq(kiln_context_errcode(ctx), KILN_ERR_NOMEM);
    }
  }
  kiln_string_free(ctx, want);
  kiln_string_free(ctx, want_expr);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("relay_text");
  TCase *golden = tcase_create("golden");
  tcase_add_test(golden, test_golden_files_round_trip);
  tcase_add_test(golden, test_golden_error_files);
  tcase_add_test(golden, test_golden_graph_sharing);
  suite_add_tcase(s, golden);
  TCase *forms = tcase_create("printed_forms");
  tcase_add_test(forms, test_print_layout);
  tcase_add_test(forms, test_print_types);
  tcase_add_test(forms, test_print_attrs);
  tcase_add_test(forms, test_print_scalars);
  tcase_add_test(forms, test_print_exprs);
  suite_add_tcase(s, forms);
  TCase *built = tcase_create("built");
  tcase_add_test(built, test_constants_every_dtype);
  tcase_add_test(built, test_symbolic_dims);
  tcase_add_test(built, test_relay_type_print_parses);
  tcase_add_test(built, test_sharing);
  tcase_add_test(built, test_every_attr_kind);
  tcase_add_test(built, test_variables_and_names);
  tcase_add_test(built, test_globals);
  tcase_add_test(built, test_deep_graphs);
  tcase_add_test(built, test_elided_constants);
  suite_add_tcase(s, built);
  TCase *err = tcase_create("errors");
  tcase_add_test(err, test_error_table);
  tcase_add_test(err, test_parse_api);
  suite_add_tcase(s, err);
  TCase *robust = tcase_create("robustness");
  tcase_add_test(robust, test_truncated_programs);
  tcase_add_test(robust, test_mutated_programs);
  tcase_add_test(robust, test_random_input);
  tcase_add_test(robust, test_deep_nesting);
  suite_add_tcase(s, robust);
  TCase *fault = tcase_create("fault_injection");
  tcase_add_test(fault, test_fault_injection_golden);
  tcase_add_test(fault, test_fault_injection_big);
  tcase_add_test(fault, test_fault_injection_print);
  suite_add_tcase(s, fault);
  return s;
}

KILN_TEST_MAIN

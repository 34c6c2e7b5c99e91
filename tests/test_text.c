/* test_text.c: the TIR text format (ir/printer.c, ir/parser.c). Round trips (print -> parse ->
 * structurally equal, and print is stable) over the golden files in tests/golden/tir, over
 * embedded programs and over programs built with the constructors; exact printed forms
 * (precedence, literals, names); every parser error with its status, position and message;
 * robustness against truncated, mutated and deeply nested input; fault injection. */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "ir/text.h"
#include "test_util.h"

/* ---- Helpers ----------------------------------------------------------------------------- */

static kiln_tir_module *parse_ok(kiln_context *ctx, const char *text) {
  kiln_tir_module *m = NULL;
  kiln_status st = kiln_tir_module_parse(ctx, text, strlen(text), "test", &m);
  ck_assert_msg(st == KILN_OK, "parse failed: %s: %s\n--- input:\n%s", kiln_status_str(st),
                kiln_context_errmsg(ctx), text);
  return m;
}

static char *print_ok(kiln_context *ctx, kiln_tir_module *m) {
  char *s = NULL;
  ck_ok(ctx, kiln_tir_module_print(m, &s));
  return s;
}

/* print -> parse gives a structurally equal module with the same hash, and printing that
 * gives the same text. Returns the text (free with kiln_string_free). */
static char *round_trip(kiln_context *ctx, kiln_tir_module *m) {
  char *s1 = print_ok(ctx, m);
  kiln_tir_module *m2 = NULL;
  kiln_status st = kiln_tir_module_parse(ctx, s1, strlen(s1), "printed", &m2);
  ck_assert_msg(st == KILN_OK, "printed text does not parse: %s\n--- text:\n%s",
                kiln_context_errmsg(ctx), s1);
  int eq = 0;
  ck_ok(ctx, kiln_tir_module_equal(m, m2, &eq));
  ck_assert_msg(eq, "parse(print(m)) differs from m\n--- text:\n%s", s1);
  uint64_t h1, h2;
  ck_ok(ctx, kiln_tir_module_hash(m, &h1));
  ck_ok(ctx, kiln_tir_module_hash(m2, &h2));
  ck_assert_uint_eq(h1, h2);
  char *s2 = print_ok(ctx, m2);
  ck_assert_msg(strcmp(s1, s2) == 0, "printing is not stable:\n--- first:\n%s\n--- second:\n%s", s1, s2);
  kiln_string_free(ctx, s2);
  kiln_tir_module_free(m2);
  return s1;
}

/* A module holding one function built with the constructors in mod->arena. */
static void add_func(kiln_tir_module *m, ir_func *f) {
  ck_assert_msg(f != NULL, "building the function failed: %s", kiln_context_errmsg(m->ctx));
  ck_ok(m->ctx, ir_module_add(m, f));
}

/* Text of a node, checked against the expected string. */
static void ck_prints(kiln_context *ctx, const ir_node *n, const char *want) {
  ck_assert_ptr_nonnull(n);
  char *s = ir_node_to_string(ctx, n);
  ck_assert_ptr_nonnull(s);
  ck_assert_msg(strcmp(s, want) == 0, "printed '%s', expected '%s'", s, want);
  kiln_string_free(ctx, s);
}

#define I32 KILN_INT32
#define F32 KILN_FLOAT32
#define BOOL_ KILN_BOOL

/* ---- Golden files ------------------------------------------------------------------------ */

static const char *const golden_programs[] = {"matmul.tir", "statements.tir", "expressions.tir"};

/* Each golden program is written in the printer's format: parsing then printing it gives the
 * file back without its comment lines, and the round trip holds. */
START_TEST(test_golden_files_round_trip) {
  kiln_context *ctx = kiln_test_new_ctx();
  for (size_t i = 0; i < sizeof golden_programs / sizeof golden_programs[0]; i++) {
    char *text = kiln_test_read_golden("tir", golden_programs[i], NULL);
    char *want = kiln_test_strip_comment_lines(text);
    kiln_tir_module *m = parse_ok(ctx, text);
    char *got = round_trip(ctx, m);
    ck_assert_msg(strcmp(got, want) == 0, "%s: printed text differs from the file:\n%s",
                  golden_programs[i], got);
    /* The file parsed through the public file API gives the same module. */
    char path[1024];
    kiln_test_golden_path("tir", golden_programs[i], path, sizeof path);
    kiln_tir_module *mf = NULL;
    ck_ok(ctx, kiln_tir_module_parse_file(ctx, path, &mf));
    int eq = 0;
    ck_ok(ctx, kiln_tir_module_equal(m, mf, &eq));
    ck_assert(eq);
    kiln_tir_module_free(mf);
    kiln_string_free(ctx, got);
    kiln_tir_module_free(m);
    free(want);
    free(text);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* error_scope.tir holds a program and the error it must give:
 * "# expect-error: CODE LINE:COL message part". */
START_TEST(test_golden_error_file) {
  static const struct {
    const char *name;
    kiln_status code;
  } codes[] = {{"PARSE", KILN_ERR_PARSE},
               {"TYPE", KILN_ERR_TYPE},
               {"SHAPE", KILN_ERR_SHAPE},
               {"UNDEFINED", KILN_ERR_UNDEFINED}};
  kiln_context *ctx = kiln_test_new_ctx();
  char *text = kiln_test_read_golden("tir", "error_scope.tir", NULL);
  const char *spec = strstr(text, "# expect-error: ");
  ck_assert_ptr_nonnull(spec);
  char code_name[32], part[256];
  int line, col;
  ck_assert_int_eq(sscanf(spec, "# expect-error: %31s %d:%d %255[^\n]", code_name, &line, &col, part), 4);
  kiln_status code = KILN_OK;
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (strcmp(codes[i].name, code_name) == 0) code = codes[i].code;
  ck_assert_int_ne(code, KILN_OK);
  kiln_tir_module *m = (kiln_tir_module *)1;
  ck_assert_int_eq(kiln_tir_module_parse(ctx, text, strlen(text), "error_scope.tir", &m), code);
  ck_assert_ptr_null(m);
  int l, c;
  kiln_context_errpos(ctx, &l, &c);
  ck_assert_int_eq(l, line);
  ck_assert_int_eq(c, col);
  ck_errmsg_has(ctx, part);
  free(text);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Embedded programs --------------------------------------------------------------------- */

/* Canonical programs: printing what they parse to gives them back exactly. */
static const char *const canonical_programs[] = {
    /* an empty module */
    "",
    /* the smallest function */
    "func @f() {\n"
    "  evaluate(0);\n"
    "}\n",
    /* a quoted function name, nested seqs, a block with allocs read by itself */
    "func @\"my kernel\"(A: buffer(float32, [4])) {\n"
    "  seq {\n"
    "    seq {\n"
    "      A[0] = 1f32;\n"
    "    }\n"
    "  }\n"
    "  block \"b\"() {\n"
    "    alloc S: buffer(float32, [4], align=32)\n"
    "    reads(S[0 +: 4])\n"
    "    writes(A[0 +: 4], S[0 +: 4])\n"
    "    S[0] = A[1];\n"
    "  }\n"
    "  if A[0] < 1f32 {\n"
    "    A[3] = 2f32;\n"
    "  }\n"
    "}\n",
    /* several functions with the same variable names (each function names its own) */
    "func @a(n: int32) {\n"
    "  for i: int32 in range(0, n) {\n"
    "    evaluate(i);\n"
    "  }\n"
    "}\n"
    "\n"
    "func @b(n: int32) {\n"
    "  for i: int32 in range(0, n) {\n"
    "    evaluate(let(t: int32 = i * 2, t + let(t_1: int32 = t, t_1)));\n"
    "  }\n"
    "}\n",
};

START_TEST(test_canonical_programs) {
  kiln_context *ctx = kiln_test_new_ctx();
  for (size_t i = 0; i < sizeof canonical_programs / sizeof canonical_programs[0]; i++) {
    kiln_tir_module *m = parse_ok(ctx, canonical_programs[i]);
    char *s = round_trip(ctx, m);
    ck_assert_msg(strcmp(s, canonical_programs[i]) == 0, "program %zu printed as:\n%s", i, s);
    kiln_string_free(ctx, s);
    kiln_tir_module_free(m);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Text written by hand (comments, CRLF line ends, tabs, `else if`, suffix-less literals,
 * block items in another order, empty reads(), `5i32`, spacing) parses to the same module
 * as the canonical form the printer writes. */
START_TEST(test_free_form_input) {
  static const char *hand =
      "# a comment line\r\n"
      "func   @f ( A : buffer ( float32 , [ 4 ] , scope = \"local\" , align = 64 ) , n:int32 )\r\n"
      "{ # comment after a brace\r\n"
      "\tif n<1{A[0]=1.5;}else if n>=2{A[1]=2.5e0;}else{A[2]=0.0;}\n"
      "\tblock \"b\"(v:int32=spatial(0,4)<-n) {\n"
      "\t  annotate {}\n"
      "\t  alloc T: buffer(int32, [2])\n"
      "\t  writes(A[v])\n"
      "\t  reads()\n"
      "\t  T[0] = 5i32;A[v]=cast(float32,T[0]);\n"
      "\t}\n"
      "\tevaluate(n<-1);\n"
      "}";
  static const char *canonical =
      "func @f(A: buffer(float32, [4], scope=\"local\"), n: int32) {\n"
      "  if n < 1 {\n"
      "    A[0] = 1.5f32;\n"
      "  } else {\n"
      "    if n >= 2 {\n"
      "      A[1] = 2.5f32;\n"
      "    } else {\n"
      "      A[2] = 0f32;\n"
      "    }\n"
      "  }\n"
      "  block \"b\"(v: int32 = spatial(0, 4) <- n) {\n"
      "    writes(A[v])\n"
      "    alloc T: buffer(int32, [2])\n"
      "    T[0] = 5;\n"
      "    A[v] = cast(float32, T[0]);\n"
      "  }\n"
      "  evaluate(n < -1);\n"
      "}\n";
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_ok(ctx, hand);
  char *s = round_trip(ctx, m);
  ck_assert_msg(strcmp(s, canonical) == 0, "printed as:\n%s", s);
  kiln_string_free(ctx, s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Programs built with the constructors ------------------------------------------------- */

/* Every scalar dtype as a parameter, a buffer element type and a literal; vector types in
 * casts. The printed literals are checked exactly, and the module round trips. */
START_TEST(test_every_dtype) {
  static const struct {
    kiln_dtype t;
    int64_t ival;
    double fval;
    const char *lit;
  } cases[] = {
      {{KILN_TYPE_BOOL, 8, 1}, 1, 0, "true"},
      {{KILN_TYPE_BOOL, 8, 1}, 0, 0, "false"},
      {{KILN_TYPE_INT, 8, 1}, -128, 0, "-128i8"},
      {{KILN_TYPE_INT, 8, 1}, 127, 0, "127i8"},
      {{KILN_TYPE_INT, 16, 1}, -32768, 0, "-32768i16"},
      {{KILN_TYPE_INT, 32, 1}, INT32_MIN, 0, "-2147483648"},
      {{KILN_TYPE_INT, 32, 1}, INT32_MAX, 0, "2147483647"},
      {{KILN_TYPE_INT, 64, 1}, INT64_MIN, 0, "-9223372036854775808i64"},
      {{KILN_TYPE_INT, 64, 1}, INT64_MAX, 0, "9223372036854775807i64"},
      {{KILN_TYPE_UINT, 8, 1}, 255, 0, "255u8"},
      {{KILN_TYPE_UINT, 16, 1}, 65535, 0, "65535u16"},
      {{KILN_TYPE_UINT, 32, 1}, 4294967295LL, 0, "4294967295u32"},
      {{KILN_TYPE_UINT, 64, 1}, INT64_MAX, 0, "9223372036854775807u64"},
      {{KILN_TYPE_FLOAT, 16, 1}, 0, 2.0, "2f16"},
      {{KILN_TYPE_BFLOAT, 16, 1}, 0, -1.0, "-1bf16"},
      {{KILN_TYPE_FLOAT, 32, 1}, 0, 1.5, "1.5f32"},
      {{KILN_TYPE_FLOAT, 64, 1}, 0, 0.1, "0.1f64"},
  };
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = ir_module_new(ctx);
  ir_arena *a = m->arena;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    kiln_dtype t = cases[i].t;
    ir_expr *lit = ir_dt_is_float(t) ? ir_float(a, t, cases[i].fval) : ir_int(a, t, cases[i].ival);
    ck_prints(ctx, lit, cases[i].lit);
    /* f(A: buffer(T, [2]), v: T) { A[0] = v; A[1] = lit; evaluate(cast(Tx4, broadcast(v, 4))) } */
    ir_buffer *A = ir_buffer_new(a, "A", t, 1, (ir_expr *[]){ir_i32(a, 2)}, 0, NULL, NULL, 0, NULL);
    ir_var *v = ir_var_new(a, "v", t);
    kiln_dtype vec = t;
    vec.lanes = 4;
    ir_stmt *body[] = {
        ir_store_new(a, A, &v->h, 1, (ir_expr *[]){ir_i32(a, 0)}),
        ir_store_new(a, A, lit, 1, (ir_expr *[]){ir_i32(a, 1)}),
        ir_evaluate_new(a, ir_cast_new(a, vec, ir_broadcast_new(a, &v->h, 4))),
    };
    char name[16];
    snprintf(name, sizeof name, "f%zu", i);
    add_func(m, ir_func_new(a, name, 2, (ir_node *[]){&A->h, &v->h}, 0, NULL, ir_seq_new(a, 3, body)));
  }
  char *s = round_trip(ctx, m);
  ck_assert(strstr(s, "func @f16(A: buffer(float64, [2]), v: float64) {\n  A[0] = v;\n  A[1] = 0.1f64;\n"
                      "  evaluate(cast(float64x4, broadcast(v, 4)));\n}\n") != NULL);
  ck_assert(strstr(s, "v: bfloat16") && strstr(s, "cast(uint16x4, ") && strstr(s, "buffer(bool, [2])"));
  kiln_string_free(ctx, s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* A double prints as the shortest decimal that reads back as exactly the same bits. */
START_TEST(test_float_literals_bit_exact) {
  static const struct {
    double v;
    const char *want; /* as float64 */
  } exact[] = {
      {0.1, "0.1f64"},          {1.0 / 3, "0.3333333333333333f64"},
      {-0.0, "-0f64"},          {0.0, "0f64"},
      {1e21, "1e+21f64"},       {1e-7, "1e-07f64"},
      {DBL_MAX, "1.7976931348623157e+308f64"},
      {DBL_MIN, "2.2250738585072014e-308f64"},
      {4.9406564584124654e-324, "5e-324f64"},
      {(double)0.1f, "0.10000000149011612f64"},
      {123456789.0, "123456789f64"},
      {INFINITY, "inf_f64"},    {-INFINITY, "-inf_f64"},
      {NAN, "nan_f64"},
  };
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = ir_arena_new(ctx);
  for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
    ck_prints(ctx, ir_float(a, KILN_FLOAT64, exact[i].v), exact[i].want);
  ck_prints(ctx, ir_float(a, KILN_FLOAT32, -0.0), "-0f32");
  ck_prints(ctx, ir_float(a, KILN_FLOAT16, NAN), "nan_f16");
  ck_prints(ctx, ir_float(a, KILN_BFLOAT16, -INFINITY), "-inf_bf16");

  /* Many bit patterns, each type: print, parse, same bits (NaN: still NaN). */
  uint64_t state = 12345;
  kiln_dtype types[] = {KILN_FLOAT16, KILN_BFLOAT16, KILN_FLOAT32, KILN_FLOAT64};
  for (int i = 0; i < 4000; i++) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t bits = state ^ (state >> 29);
    double v;
    if (i % 4 == 2) {
      float f;
      uint32_t b32 = (uint32_t)bits;
      memcpy(&f, &b32, sizeof f);
      v = f;
    } else {
      memcpy(&v, &bits, sizeof v);
    }
    if (i % 7 == 0) v = ldexp((double)(bits % 1000000), (int)(bits % 600) - 300);
    ir_expr *e = ir_float(a, types[i % 4], v);
    char *s = ir_node_to_string(ctx, e);
    ck_assert_ptr_nonnull(s);
    ir_expr *back = NULL;
    ck_ok(ctx, ir_parse_expr(a, s, 0, NULL, &back));
    ck_assert_int_eq(back->kind, IR_FLOAT_IMM);
    ck_assert(ir_dt_eq(back->dtype, types[i % 4]));
    double w = ((ir_float_imm *)back)->value;
    ck_assert_msg(isnan(v) ? isnan(w) : memcmp(&v, &w, sizeof v) == 0, "%s read back as %.17g", s, w);
    ck_assert(ir_structural_equal(ctx, e, back));
    kiln_string_free(ctx, s);
  }
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* How literals and unary minus parse. */
START_TEST(test_literal_parsing) {
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = ir_arena_new(ctx);
  ir_var *x = ir_var_new(a, "x", KILN_INT32), *f = ir_var_new(a, "f", KILN_FLOAT32);
  ir_var *vars[] = {x, f};
  static const struct {
    const char *text, *printed;
  } cases[] = {
      {"5", "5"},                /* int32 */
      {"5i32", "5"},             /* the explicit int32 suffix */
      {"-5", "-5"},              /* a negative literal, not 0 - 5 */
      {"- 5", "-5"},
      {"-(5)", "0 - 5"},         /* minus before anything but a literal */
      {"-x", "0 - x"},
      {"-f", "0f32 - f"},        /* the zero takes the operand's type */
      {"-broadcast(x, 4)", "broadcast(0, 4) - broadcast(x, 4)"},
      {"--5", "0 - -5"},
      {"1.5", "1.5f32"},         /* a float without suffix is float32 */
      {"1e3", "1000f32"},
      {"2.50f64", "2.5f64"},
      {"007", "7"},
      {"-128i8", "-128i8"},
      {"-9223372036854775808i64", "-9223372036854775808i64"},
      {"-inf_f32", "-inf_f32"},
      {"-nan_f64", "nan_f64"},
      {"x<-1", "x < -1"},        /* "<-" inside an expression is "<" and a minus */
      {"x - -1", "x - -1"},
      {"x*-1", "x * -1"},
      {"true && !false", "true && !false"},
      {"\"s\\x41\\\\\"", "\"sA\\\\\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ir_expr *e = NULL;
    kiln_status st = ir_parse_expr(a, cases[i].text, 2, vars, &e);
    ck_assert_msg(st == KILN_OK, "'%s': %s", cases[i].text, kiln_context_errmsg(ctx));
    ck_prints(ctx, e, cases[i].printed);
  }
  ir_expr *e;
  ck_ok(ctx, ir_parse_expr(a, "-5", 0, NULL, &e));
  ck_assert_int_eq(e->kind, IR_INT_IMM);
  ck_assert_int_eq(((ir_int_imm *)e)->value, -5);
  ck_ok(ctx, ir_parse_expr(a, "-0f32", 0, NULL, &e));
  ck_assert_int_eq(e->kind, IR_FLOAT_IMM);
  ck_assert(signbit(((ir_float_imm *)e)->value));
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The printer puts parentheses exactly where the parser's precedence needs them. */
START_TEST(test_precedence_printing) {
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = ir_arena_new(ctx);
  ir_expr *x = &ir_var_new(a, "a", I32)->h, *y = &ir_var_new(a, "b", I32)->h,
          *z = &ir_var_new(a, "c", I32)->h;
  ir_expr *p = &ir_var_new(a, "p", BOOL_)->h, *q = &ir_var_new(a, "q", BOOL_)->h;
  ck_prints(ctx, ir_sub(a, x, ir_sub(a, y, z)), "a - (b - c)");
  ck_prints(ctx, ir_sub(a, ir_sub(a, x, y), z), "a - b - c");
  ck_prints(ctx, ir_mul(a, ir_add(a, x, y), z), "(a + b) * c");
  ck_prints(ctx, ir_add(a, x, ir_mul(a, y, z)), "a + b * c");
  ck_prints(ctx, ir_add(a, x, ir_i32(a, -5)), "a + -5");
  ck_prints(ctx, ir_mul(a, ir_i32(a, -5), x), "-5 * a");
  ck_prints(ctx, ir_sub(a, ir_i32(a, 0), x), "0 - a");
  ck_prints(ctx, ir_binop(a, IR_DIV, x, ir_mul(a, y, z)), "a / (b * c)");
  ck_prints(ctx, ir_binop(a, IR_FLOORDIV, x, ir_binop(a, IR_FLOORMOD, y, z)), "a // (b %% c)");
  ck_prints(ctx, ir_binop(a, IR_MOD, ir_binop(a, IR_FLOORDIV, x, y), z), "a // b % c");
  ck_prints(ctx, ir_not_new(a, ir_binop(a, IR_LT, x, y)), "!(a < b)");
  ck_prints(ctx, ir_not_new(a, ir_not_new(a, p)), "!!p");
  ck_prints(ctx, ir_binop(a, IR_EQ, ir_binop(a, IR_LT, x, y), p), "(a < b) == p");
  ck_prints(ctx, ir_binop(a, IR_NE, p, ir_binop(a, IR_GE, x, y)), "p != (a >= b)");
  ck_prints(ctx, ir_binop(a, IR_AND, ir_binop(a, IR_OR, p, q), p), "(p || q) && p");
  ck_prints(ctx, ir_binop(a, IR_OR, ir_binop(a, IR_AND, p, q), p), "p && q || p");
  ck_prints(ctx, ir_binop(a, IR_OR, p, ir_binop(a, IR_OR, q, p)), "p || (q || p)");
  ck_prints(ctx, ir_binop(a, IR_MIN, ir_add(a, x, y), ir_binop(a, IR_MAX, z, x)), "min(a + b, max(c, a))");
  ck_prints(ctx, ir_binop(a, IR_LE, ir_add(a, x, y), ir_mul(a, y, z)), "a + b <= b * c");
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Random expression trees over every operator: print, parse, structurally equal, and the
 * reprint is the same text. */
typedef struct gen {
  uint64_t state;
  ir_arena *a;
  ir_expr *x, *y, *p, *q;
} gen;

static uint32_t rnd(gen *g) {
  g->state = g->state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(g->state >> 33);
}

static ir_expr *gen_bool(gen *g, int depth);

static ir_expr *gen_int(gen *g, int depth) {
  static const int64_t lits[] = {0, 1, -1, 7, -5, INT32_MAX, INT32_MIN, 100};
  static const int ops[] = {IR_ADD, IR_SUB, IR_MUL, IR_DIV, IR_MOD,
                            IR_FLOORDIV, IR_FLOORMOD, IR_MIN, IR_MAX};
  switch (depth <= 0 ? rnd(g) % 2 : rnd(g) % 9) {
  case 0: return rnd(g) % 2 ? g->x : g->y;
  case 1: return ir_i32(g->a, lits[rnd(g) % 8]);
  case 2:
  case 3:
  case 4:
  case 5: return ir_binop(g->a, ops[rnd(g) % 9], gen_int(g, depth - 1), gen_int(g, depth - 1));
  case 6: return ir_select_new(g->a, gen_bool(g, depth - 1), gen_int(g, depth - 1), gen_int(g, depth - 1));
  case 7: return ir_cast_new(g->a, I32, ir_cast_new(g->a, KILN_INT64, gen_int(g, depth - 1)));
  default: {
    ir_var *t = ir_var_new(g->a, "t", I32);
    return ir_let_new(g->a, t, gen_int(g, depth - 1), ir_add(g->a, &t->h, gen_int(g, depth - 1)));
  }
  }
}

static ir_expr *gen_bool(gen *g, int depth) {
  switch (depth <= 0 ? rnd(g) % 2 : rnd(g) % 6) {
  case 0: return rnd(g) % 2 ? g->p : g->q;
  case 1: return ir_int(g->a, BOOL_, rnd(g) % 2);
  case 2: return ir_binop(g->a, IR_EQ + (int)(rnd(g) % 6), gen_int(g, depth - 1), gen_int(g, depth - 1));
  case 3: return ir_binop(g->a, rnd(g) % 2 ? IR_EQ : IR_NE, gen_bool(g, depth - 1), gen_bool(g, depth - 1));
  case 4: return ir_binop(g->a, rnd(g) % 2 ? IR_AND : IR_OR, gen_bool(g, depth - 1), gen_bool(g, depth - 1));
  default: return ir_not_new(g->a, gen_bool(g, depth - 1));
  }
}

START_TEST(test_random_expressions_round_trip) {
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = ir_arena_new(ctx);
  ir_var *vars[] = {ir_var_new(a, "x", I32), ir_var_new(a, "y", I32), ir_var_new(a, "p", BOOL_),
                    ir_var_new(a, "q", BOOL_)};
  gen g = {42, a, &vars[0]->h, &vars[1]->h, &vars[2]->h, &vars[3]->h};
  for (int i = 0; i < 3000; i++) {
    ir_expr *e = i % 3 ? gen_int(&g, 1 + i % 6) : gen_bool(&g, 1 + i % 6);
    ck_assert_ptr_nonnull(e);
    char *s = ir_node_to_string(ctx, e);
    ck_assert_ptr_nonnull(s);
    ir_expr *back = NULL;
    kiln_status st = ir_parse_expr(a, s, 4, vars, &back);
    ck_assert_msg(st == KILN_OK, "'%s' does not parse: %s", s, kiln_context_errmsg(ctx));
    ck_assert_msg(ir_structural_equal(ctx, e, back), "'%s' parses to another tree", s);
    char *s2 = ir_node_to_string(ctx, back);
    ck_assert_str_eq(s, s2);
    kiln_string_free(ctx, s);
    kiln_string_free(ctx, s2);
  }
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Names are made valid identifiers, kept clear of keywords and unique per function. */
START_TEST(test_names_unique_and_sanitized) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = ir_module_new(ctx);
  ir_arena *a = m->arena;
  static const char *const hints[] = {"i", "i", "i_1", "", "v", "0x", "i.outer", "a b",
                                      "\xc3\xa9", "exp", "inf_f32", "reads", "range", "in",
                                      "offset", "func"};
  enum { N = sizeof hints / sizeof hints[0] };
  ir_node *params[N + 2];
  ir_expr *sum = ir_i32(a, 0);
  for (int i = 0; i < N; i++) {
    ir_var *v = ir_var_new(a, hints[i], I32);
    params[i] = &v->h;
    sum = ir_add(a, sum, &v->h);
  }
  ir_buffer *kw = ir_buffer_new(a, "for", I32, 1, (ir_expr *[]){ir_i32(a, 1)}, 0, NULL, NULL, 0, NULL);
  ir_buffer *bb = ir_buffer_new(a, "buffer", I32, 1, (ir_expr *[]){ir_i32(a, 1)}, 0, NULL, NULL, 0, NULL);
  params[N] = &kw->h;
  params[N + 1] = &bb->h;
  ir_stmt *body = ir_seq_new(a, 2, (ir_stmt *[]){
      ir_store_new(a, kw, sum, 1, (ir_expr *[]){ir_i32(a, 0)}),
      ir_store_new(a, bb, ir_load_new(a, kw, 1, (ir_expr *[]){ir_i32(a, 0)}), 1, (ir_expr *[]){ir_i32(a, 0)})});
  add_func(m, ir_func_new(a, "names", N + 2, params, 0, NULL, body));
  /* The same names in a second function are not renamed. */
  ir_var *j = ir_var_new(a, "i", I32);
  add_func(m, ir_func_new(a, "other", 1, (ir_node *[]){&j->h}, 0, NULL, ir_evaluate_new(a, &j->h)));
  char *s = round_trip(ctx, m);
  const char *want =
      "func @names(i: int32, i_1: int32, i_1_1: int32, v: int32, v_1: int32, _0x: int32, "
      "i_outer: int32, a_b: int32, __: int32, exp_: int32, inf_f32_: int32, reads_: int32, "
      "range: int32, in: int32, offset: int32, func: int32, for_: buffer(int32, [1]), "
      "buffer: buffer(int32, [1])) {\n"
      "  for_[0] = 0 + i + i_1 + i_1_1 + v + v_1 + _0x + i_outer + a_b + __ + exp_ + inf_f32_ + "
      "reads_ + range + in + offset + func;\n"
      "  buffer[0] = for_[0];\n"
      "}\n"
      "\n"
      "func @other(i: int32) {\n"
      "  evaluate(i);\n"
      "}\n";
  ck_assert_msg(strcmp(s, want) == 0, "printed:\n%s", s);
  kiln_string_free(ctx, s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Every reserved word: a variable named after it is renamed (and the text parses), and
 * using the word itself as a name is an error. The list here is written independently of
 * the parser's, so the two cannot drift apart unnoticed. */
START_TEST(test_keywords) {
  static const char *const words[] = {
      "for", "if", "else", "let", "allocate", "evaluate", "seq", "block", "unrealized",
      "reads", "writes", "alloc", "annotate", "init", "true", "false", "min", "max",
      "select", "cast", "ramp", "broadcast", "exp", "log", "sqrt", "rsqrt", "tanh", "erf",
      "sigmoid", "pow", "fabs", "floor", "ceil", "round", "fma", "inf_f16", "inf_bf16",
      "inf_f32", "inf_f64", "nan_f16", "nan_bf16", "nan_f32", "nan_f64"};
  kiln_context *ctx = kiln_test_new_ctx();
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    ck_assert_msg(ir_text_is_keyword(words[i], strlen(words[i])), "'%s' is not reserved", words[i]);
    kiln_tir_module *m = ir_module_new(ctx);
    ir_arena *a = m->arena;
    ir_var *v = ir_var_new(a, words[i], I32);
    ir_buffer *b = ir_buffer_new(a, words[i], I32, 1, (ir_expr *[]){ir_i32(a, 1)}, 0, NULL, NULL, 0, NULL);
    ir_stmt *st = ir_store_new(a, b, &v->h, 1, (ir_expr *[]){ir_i32(a, 0)});
    add_func(m, ir_func_new(a, "f", 2, (ir_node *[]){&v->h, &b->h}, 0, NULL, st));
    char *s = round_trip(ctx, m);
    char want[128];
    snprintf(want, sizeof want, "  %s__1[0] = %s_;\n", words[i], words[i]);
    ck_assert_msg(strstr(s, want) != NULL, "printed:\n%s", s);
    kiln_string_free(ctx, s);
    kiln_tir_module_free(m);
    /* the word as a parameter name */
    char text[128];
    snprintf(text, sizeof text, "func @f(%s: int32) {\n  evaluate(0);\n}\n", words[i]);
    kiln_tir_module *bad = NULL;
    ck_assert_int_eq(kiln_tir_module_parse(ctx, text, strlen(text), "kw", &bad), KILN_ERR_PARSE);
    ck_errmsg_has(ctx, "is a keyword");
  }
  ck_assert(!ir_text_is_keyword("range", 5));
  ck_assert(!ir_text_is_keyword("inf_f8", 6));
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Sequences: two or more statements in braces are a seq; a seq inside a list, or of one
 * statement, prints as `seq { ... }` so the same tree comes back. */
START_TEST(test_seq_forms) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = ir_module_new(ctx);
  ir_arena *a = m->arena;
  ir_stmt *e1 = ir_evaluate_new(a, ir_i32(a, 1)), *e2 = ir_evaluate_new(a, ir_i32(a, 2));
  ir_stmt *one = ir_seq_new(a, 1, (ir_stmt *[]){e1});
  ir_stmt *pair = ir_seq_new(a, 2, (ir_stmt *[]){e1, e2});
  ir_stmt *nested = ir_seq_new(a, 3, (ir_stmt *[]){pair, one, e2});
  ir_var *i = ir_var_new(a, "i", I32);
  ir_stmt *loop = ir_for_new(a, i, ir_i32(a, 0), ir_i32(a, 2), IR_FOR_SERIAL, 0, NULL, one);
  add_func(m, ir_func_new(a, "f", 0, NULL, 0, NULL, ir_seq_new(a, 2, (ir_stmt *[]){nested, loop})));
  char *s = round_trip(ctx, m);
  const char *want =
      "func @f() {\n"
      "  seq {\n"
      "    seq {\n"
      "      evaluate(1);\n"
      "      evaluate(2);\n"
      "    }\n"
      "    seq {\n"
      "      evaluate(1);\n"
      "    }\n"
      "    evaluate(2);\n"
      "  }\n"
      "  for i: int32 in range(0, 2) {\n"
      "    seq {\n"
      "      evaluate(1);\n"
      "    }\n"
      "  }\n"
      "}\n";
  ck_assert_msg(strcmp(s, want) == 0, "printed:\n%s", s);
  kiln_string_free(ctx, s);
  /* A brace list of one statement is that statement, not a seq. */
  kiln_tir_module *m2 = parse_ok(ctx, "func @g() {\n  evaluate(1);\n}\n");
  ck_assert_int_eq(m2->funcs[0]->body->kind, IR_EVALUATE);
  kiln_tir_module_free(m2);
  m2 = parse_ok(ctx, "func @g() {\n  seq {\n    evaluate(1);\n  }\n}\n");
  ck_assert_int_eq(m2->funcs[0]->body->kind, IR_SEQ);
  kiln_tir_module_free(m2);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Blocks built with the constructors: predicate omitted only when it is the constant true,
 * realize values, a bare block, a block reading its own alloc buffer, every iterator type. */
START_TEST(test_block_forms) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = ir_module_new(ctx);
  ir_arena *a = m->arena;
  ir_expr *four = ir_i32(a, 4);
  ir_buffer *A = ir_buffer_new(a, "A", F32, 1, &four, 0, NULL, NULL, 0, NULL);
  ir_buffer *S = ir_buffer_new(a, "S", F32, 1, &four, 0, NULL, NULL, 0, "local");
  ir_var *i = ir_var_new(a, "i", I32), *v = ir_var_new(a, "v", I32), *r = ir_var_new(a, "r", I32);
  ir_iter_var *iv = ir_iter_var_new(a, v, ir_i32(a, 0), four, IR_ITER_SPATIAL);
  ir_iter_var *rv = ir_iter_var_new(a, r, ir_i32(a, 0), four, IR_ITER_REDUCE);
  ir_range *whole = ir_range_new(a, ir_i32(a, 0), four);
  ir_region *rS = ir_region_new(a, S, 1, &whole);
  ir_region *rA = ir_region_new(a, A, 1, (ir_range *[]){ir_range_new(a, &v->h, ir_i32(a, 1))});
  ir_stmt *st = ir_store_new(a, A, ir_load_new(a, S, 1, (ir_expr *[]){&r->h}), 1, (ir_expr *[]){&v->h});
  ir_block *blk = ir_block_new(a, "blk", 2, (ir_iter_var *[]){iv, rv}, 1, &rS, 1, &rA, 1, &S, 1,
                               (ir_annot *[]){ir_annot_new(a, "k", ir_float(a, F32, 0.25))},
                               ir_store_new(a, A, ir_float(a, F32, 0), 1, (ir_expr *[]){&v->h}), st);
  /* realized with an explicit true predicate (omitted), then with a real one, then bare */
  ir_stmt *r1 = ir_block_realize_new(a, 2, (ir_expr *[]){&i->h, ir_i32(a, 0)}, ir_int(a, BOOL_, 1), blk);
  ir_stmt *r2 = ir_block_realize_new(a, 2, (ir_expr *[]){&i->h, &i->h},
                                     ir_binop(a, IR_LT, &i->h, ir_i32(a, 3)), blk);
  ir_stmt *loop = ir_for_new(a, i, ir_i32(a, 0), four, IR_FOR_UNROLLED, 0, NULL,
                             ir_seq_new(a, 3, (ir_stmt *[]){r1, r2, &blk->h}));
  add_func(m, ir_func_new(a, "f", 1, (ir_node *[]){&A->h}, 0, NULL, loop));
  /* The block object appears three times: each appearance defines its iterators and its
   * buffer again, so each gets its own names (v, v_1, v_2). S is read by its own block, so
   * its alloc line comes before reads(). */
  const char *want =
      "func @f(A: buffer(float32, [4])) {\n"
      "  for i: int32 in unrolled(0, 4) {\n"
      "    block \"blk\"(v: int32 = spatial(0, 4) <- i, r: int32 = reduce(0, 4) <- 0) {\n"
      "      alloc S: buffer(float32, [4], scope=\"local\")\n"
      "      reads(S[0 +: 4])\n"
      "      writes(A[v])\n"
      "      annotate {\"k\" = 0.25f32}\n"
      "      init {\n"
      "        A[v] = 0f32;\n"
      "      }\n"
      "      A[v] = S[r];\n"
      "    }\n"
      "    block \"blk\"(v_1: int32 = spatial(0, 4) <- i, r_1: int32 = reduce(0, 4) <- i) where i < 3 {\n"
      "      alloc S_1: buffer(float32, [4], scope=\"local\")\n"
      "      reads(S_1[0 +: 4])\n"
      "      writes(A[v_1])\n"
      "      annotate {\"k\" = 0.25f32}\n"
      "      init {\n"
      "        A[v_1] = 0f32;\n"
      "      }\n"
      "      A[v_1] = S_1[r_1];\n"
      "    }\n"
      "    unrealized block \"blk\"(v_2: int32 = spatial(0, 4), r_2: int32 = reduce(0, 4)) {\n"
      "      alloc S_2: buffer(float32, [4], scope=\"local\")\n"
      "      reads(S_2[0 +: 4])\n"
      "      writes(A[v_2])\n"
      "      annotate {\"k\" = 0.25f32}\n"
      "      init {\n"
      "        A[v_2] = 0f32;\n"
      "      }\n"
      "      A[v_2] = S_2[r_2];\n"
      "    }\n"
      "  }\n"
      "}\n";
  char *s = round_trip(ctx, m);
  ck_assert_msg(strcmp(s, want) == 0, "printed:\n%s", s);
  kiln_string_free(ctx, s);
  /* the block alone */
  s = ir_node_to_string(ctx, &blk->h);
  const char *head = "unrealized block \"blk\"(v: int32 = spatial(0, 4), r: int32 = reduce(0, 4)) {\n"
                     "  alloc S: buffer(float32, [4], scope=\"local\")\n";
  ck_assert_msg(strncmp(s, head, strlen(head)) == 0, "printed:\n%s", s);
  kiln_string_free(ctx, s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Buffers with every option, and what is omitted when it has the default value. */
START_TEST(test_buffer_options) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = ir_module_new(ctx);
  ir_arena *a = m->arena;
  ir_var *n = ir_var_new(a, "n", I32);
  ir_expr *shape[] = {&n->h, ir_i32(a, 8)};
  ir_expr *strides[] = {ir_i32(a, 8), ir_i32(a, 1)};
  ir_buffer *full = ir_buffer_new(a, "B", KILN_UINT8, 2, shape, 2, strides, ir_i32(a, 0), 128,
                                  "we\"ird\\scope");
  ir_buffer *plain = ir_buffer_new(a, "C", KILN_UINT8, 2, shape, 0, NULL, NULL, 64, "global");
  ir_stmt *st = ir_store_new(a, plain, ir_load_new(a, full, 2, (ir_expr *[]){ir_i32(a, 0), ir_i32(a, 1)}),
                             2, (ir_expr *[]){ir_i32(a, 0), ir_i32(a, 1)});
  add_func(m, ir_func_new(a, "f", 3, (ir_node *[]){&n->h, &full->h, &plain->h}, 0, NULL, st));
  char *s = round_trip(ctx, m);
  ck_assert_msg(strstr(s, "B: buffer(uint8, [n, 8], strides=[8, 1], offset=0, align=128, "
                          "scope=\"we\\\"ird\\\\scope\"), C: buffer(uint8, [n, 8]))") != NULL,
                "printed:\n%s", s);
  kiln_string_free(ctx, s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The printed forms of nodes that are not statements or expressions. */
START_TEST(test_print_aux_nodes) {
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = ir_arena_new(ctx);
  ir_var *v = ir_var_new(a, "v", KILN_INT64);
  ir_buffer *b = ir_buffer_new(a, "buf", KILN_BFLOAT16, 1, (ir_expr *[]){ir_int(a, KILN_INT64, 4)}, 0,
                               NULL, NULL, 0, NULL);
  ck_prints(ctx, &b->h, "buf: buffer(bfloat16, [4i64])");
  ck_prints(ctx, &ir_iter_var_new(a, v, ir_int(a, KILN_INT64, 0), ir_int(a, KILN_INT64, 4),
                                  IR_ITER_REDUCE)->h, "v: int64 = reduce(0i64, 4i64)");
  ck_prints(ctx, &ir_range_new(a, &v->h, ir_int(a, KILN_INT64, 1))->h, "v");
  ck_prints(ctx, &ir_range_new(a, &v->h, ir_i32(a, 1))->h, "v +: 1"); /* 1 of another type */
  ck_prints(ctx, &ir_region_new(a, b, 1, (ir_range *[]){ir_range_new(a, &v->h, &v->h)})->h,
            "buf[v +: v]");
  ck_prints(ctx, &ir_annot_new(a, "key\n", ir_str(a, "val"))->h, "\"key\\n\" = \"val\"");
  ck_prints(ctx, ir_store_new(a, b, ir_float(a, KILN_BFLOAT16, 1), 1, (ir_expr *[]){&v->h}),
            "buf[v] = 1bf16;\n");
  ck_prints(ctx, ir_if_new(a, ir_int(a, BOOL_, 0), ir_evaluate_new(a, ir_i32(a, 1)), NULL),
            "if false {\n  evaluate(1);\n}\n");
  char *s = ir_node_to_string(ctx, NULL);
  ck_assert_str_eq(s, "<null>");
  kiln_string_free(ctx, s);
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Names resolve to the innermost definition; a definition ends with its scope. */
START_TEST(test_scopes) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_ok(ctx,
                                "func @f(A: buffer(int32, [4])) {\n"
                                "  for i: int32 in range(0, 4) {\n"
                                "    for i: int32 in range(0, 2) {\n"
                                "      A[i] = 1;\n"
                                "    }\n"
                                "    A[i] = 2;\n"
                                "  }\n"
                                "}\n");
  ir_for *outer = ir_as_for(m->funcs[0]->body);
  ck_assert_ptr_nonnull(outer);
  ir_seq *seq = (ir_seq *)outer->body;
  ir_for *inner = ir_as_for(seq->stmts[0]);
  ck_assert_ptr_eq(ir_as_store(inner->body)->indices[0], &inner->var->h);
  ck_assert_ptr_eq(ir_as_store(seq->stmts[1])->indices[0], &outer->var->h);
  ck_assert_ptr_ne(inner->var, outer->var);
  char *s = round_trip(ctx, m); /* the inner i is renamed i_1 */
  ck_assert(strstr(s, "for i_1: int32 in range(0, 2) {\n      A[i_1] = 1;") != NULL);
  kiln_string_free(ctx, s);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Parsed nodes carry the position of their token (for later error messages). */
START_TEST(test_spans) {
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m = parse_ok(ctx, "func @f(A: buffer(float32, [4]), x: float32) {\n  A[0] = x * x;\n}\n");
  ir_func *f = m->funcs[0];
  ck_assert_int_eq(f->h.span.line, 1);
  ck_assert_int_eq(f->h.span.col, 1);
  ir_store *st = ir_as_store(f->body);
  ck_assert_int_eq(st->h.span.line, 2);
  ck_assert_int_eq(st->h.span.col, 3);
  ck_assert_int_eq(st->value->span.line, 2);
  ck_assert_int_eq(st->value->span.col, 12);
  ck_assert_int_eq(f->params[0]->span.col, 9);
  ck_assert_int_eq(f->params[1]->span.col, 34);
  /* nodes made in the module's arena after parsing have no position */
  ck_assert_int_eq(ir_i32(m->arena, 1)->span.line, 0);
  kiln_tir_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Errors -------------------------------------------------------------------------------- */

typedef struct bad_input {
  const char *text;
  size_t len; /* texts may hold NUL bytes */
  kiln_status code;
  int line, col;
  const char *msg;
} bad_input;

#define BAD(text, code, line, col, msg) {text, sizeof(text) - 1, code, line, col, msg}
#define HEAD "func @f(A: buffer(float32, [4]), n: int32, x: float32, b: bool) {\n"
#define TAIL "\n}\n"

static const bad_input bad_inputs[] = {
    /* syntax */
    BAD(HEAD "  A[0] = exp(x;" TAIL, KILN_ERR_PARSE, 2, 15,
        "expected ')' after call arguments, found ';'"),
    BAD(HEAD "  A[0] = (x + x;" TAIL, KILN_ERR_PARSE, 2, 16, "expected ')' to close '(', found ';'"),
    BAD(HEAD "  A[0] = x" TAIL, KILN_ERR_PARSE, 3, 1, "expected ';' after the stored value, found '}'"),
    BAD(HEAD "  A[0 = x;" TAIL, KILN_ERR_PARSE, 2, 7, "expected ']' after the indices, found '='"),
    BAD("func @f() {\n  evaluate(1);\n", KILN_ERR_PARSE, 3, 1,
        "expected '}' to close the '{' at 1:11, found end of input"),
    BAD("func f() {\n}\n", KILN_ERR_PARSE, 1, 6, "expected '@' before the function name, found 'f'"),
    BAD("x\n", KILN_ERR_PARSE, 1, 1, "expected 'func' to start a function, found 'x'"),
    BAD("func @f() {\n}\n", KILN_ERR_PARSE, 2, 1, "expected a statement, found '}'"),
    BAD(HEAD "  seq {\n  }" TAIL, KILN_ERR_PARSE, 3, 3, "expected a statement, found '}'"),
    BAD(HEAD "  else {\n  }" TAIL, KILN_ERR_PARSE, 2, 3, "expected a statement, found 'else'"),
    BAD(HEAD "  n = 1;" TAIL, KILN_ERR_PARSE, 2, 5, "expected '[' after 'n'"),
    BAD(HEAD "  evaluate(n < 1 < 2);" TAIL, KILN_ERR_PARSE, 2, 18, "comparisons do not chain"),
    BAD(HEAD "  evaluate(for);" TAIL, KILN_ERR_PARSE, 2, 12, "found keyword 'for'"),
    BAD(HEAD "  evaluate(1 +);" TAIL, KILN_ERR_PARSE, 2, 15, "expected an expression, found ')'"),
    BAD(HEAD "  for if: int32 in range(0, 4) {\n  }" TAIL, KILN_ERR_PARSE, 2, 7,
        "'if' is a keyword and cannot name a loop variable"),
    BAD(HEAD "  for i: int32 in forever(0, 4) {\n  }" TAIL, KILN_ERR_PARSE, 2, 19,
        "expected a loop kind (range, parallel, vectorized or unrolled), found 'forever'"),
    BAD(HEAD "  for i: int32 of range(0, 4) {\n  }" TAIL, KILN_ERR_PARSE, 2, 16,
        "expected 'in' after the loop variable's type, found 'of'"),
    /* tokens */
    BAD(HEAD "  A[0] = x $ 1;" TAIL, KILN_ERR_PARSE, 2, 12, "unexpected character '$'"),
    BAD(HEAD "  A[0] = x\xff;" TAIL, KILN_ERR_PARSE, 2, 11, "unexpected byte 0xff"),
    BAD(HEAD "  A[0] = \0x;" TAIL, KILN_ERR_PARSE, 2, 10, "unexpected byte 0x00"),
    BAD(HEAD "  evaluate(\"abc);" TAIL, KILN_ERR_PARSE, 2, 12, "unterminated string"),
    BAD(HEAD "  evaluate(\"abc" TAIL, KILN_ERR_PARSE, 2, 12, "unterminated string"),
    BAD(HEAD "  evaluate(\"a\\qb\");" TAIL, KILN_ERR_PARSE, 2, 14, "unknown escape '\\q'"),
    BAD(HEAD "  evaluate(\"a\\x0\");" TAIL, KILN_ERR_PARSE, 2, 14, "expected two hex digits"),
    BAD(HEAD "  evaluate(\"a\\x00\");" TAIL, KILN_ERR_PARSE, 2, 14, "cannot contain a NUL byte"),
    BAD(HEAD "  evaluate(\"a\0\");" TAIL, KILN_ERR_PARSE, 2, 14, "cannot contain a NUL byte"),
    BAD(HEAD "  evaluate(1.);" TAIL, KILN_ERR_PARSE, 2, 13, "expected a digit after '.'"),
    /* literals */
    BAD(HEAD "  evaluate(300i8);" TAIL, KILN_ERR_TYPE, 2, 12, "300 does not fit in int8"),
    BAD(HEAD "  evaluate(-129i8);" TAIL, KILN_ERR_TYPE, 2, 12, "-129 does not fit in int8"),
    BAD(HEAD "  evaluate(256u8);" TAIL, KILN_ERR_TYPE, 2, 12, "256 does not fit in uint8"),
    BAD(HEAD "  evaluate(2147483648);" TAIL, KILN_ERR_TYPE, 2, 12, "does not fit in int32"),
    BAD(HEAD "  evaluate(99999999999999999999);" TAIL, KILN_ERR_PARSE, 2, 12,
        "integer literal '99999999999999999999' is too large"),
    BAD(HEAD "  evaluate(9223372036854775808i64);" TAIL, KILN_ERR_PARSE, 2, 12,
        "integer literal '9223372036854775808' does not fit in 64 bits"),
    BAD(HEAD "  evaluate(-9223372036854775809i64);" TAIL, KILN_ERR_PARSE, 2, 13,
        "'-9223372036854775809' does not fit in 64 bits"),
    BAD(HEAD "  A[0] = 1e999f32;" TAIL, KILN_ERR_PARSE, 2, 10, "float literal '1e999' is out of range"),
    BAD(HEAD "  evaluate(5q7);" TAIL, KILN_ERR_PARSE, 2, 12, "unknown literal suffix 'q7'"),
    BAD(HEAD "  evaluate(1.5i8);" TAIL, KILN_ERR_PARSE, 2, 12, "cannot have the integer suffix 'i8'"),
    BAD(HEAD "  evaluate(ramp(0, 1, -4));" TAIL, KILN_ERR_PARSE, 2, 23,
        "expected the lane count of 'ramp' (an integer), found '-'"),
    BAD(HEAD "  evaluate(ramp(0, 1, 1));" TAIL, KILN_ERR_TYPE, 2, 12, "lanes must be 2..65535"),
    BAD(HEAD "  evaluate(broadcast(x, 99999999999));" TAIL, KILN_ERR_PARSE, 2, 25, "too large"),
    /* types and names */
    BAD("func @f(n: int33) {\n  evaluate(n);\n}\n", KILN_ERR_PARSE, 1, 12, "unknown dtype 'int33'"),
    BAD(HEAD "  evaluate(cast(foo, n));" TAIL, KILN_ERR_PARSE, 2, 17, "unknown dtype 'foo'"),
    BAD(HEAD "  A[0] = expp(x);" TAIL, KILN_ERR_PARSE, 2, 10, "unknown function 'expp'"),
    BAD(HEAD "  A[0] = pow(x);" TAIL, KILN_ERR_PARSE, 2, 10, "'pow' takes 2 arguments, not 1"),
    BAD(HEAD "  A[0] = exp(x, x);" TAIL, KILN_ERR_PARSE, 2, 10, "'exp' takes 1 argument, not 2"),
    BAD(HEAD "  A[0] = min(x);" TAIL, KILN_ERR_PARSE, 2, 15,
        "expected ',' between the arguments of 'min', found ')'"),
    BAD(HEAD "  A[0] = exp(n);" TAIL, KILN_ERR_TYPE, 2, 10, "exp needs float arguments, not int32"),
    BAD(HEAD "  A[0] = y;" TAIL, KILN_ERR_UNDEFINED, 2, 10, "undefined variable 'y'"),
    BAD(HEAD "  B[0] = x;" TAIL, KILN_ERR_UNDEFINED, 2, 3, "undefined buffer 'B'"),
    BAD(HEAD "  A[0] = B[1];" TAIL, KILN_ERR_UNDEFINED, 2, 10, "undefined buffer 'B'"),
    BAD(HEAD "  n[0] = 1;" TAIL, KILN_ERR_TYPE, 2, 3, "'n' is a variable, not a buffer"),
    BAD(HEAD "  evaluate(A);" TAIL, KILN_ERR_TYPE, 2, 12, "'A' is a buffer, not a variable"),
    BAD(HEAD "  A[0] = x + 1;" TAIL, KILN_ERR_TYPE, 2, 12, "add: operand types differ (float32 vs int32)"),
    BAD(HEAD "  A[0] = 1;" TAIL, KILN_ERR_TYPE, 2, 3, "stores a int32 value where float32 is expected"),
    BAD(HEAD "  evaluate(-b);" TAIL, KILN_ERR_TYPE, 2, 12, "unary '-' needs a number, not bool"),
    BAD(HEAD "  evaluate(!n);" TAIL, KILN_ERR_TYPE, 2, 12, "operand must be bool, not int32"),
    BAD(HEAD "  if n {\n    evaluate(1);\n  }" TAIL, KILN_ERR_TYPE, 2, 3, "the condition must be bool"),
    BAD(HEAD "  for i: int64 in range(0, 4) {\n    evaluate(i);\n  }" TAIL, KILN_ERR_TYPE, 2, 3,
        "start and extent must have the loop variable's type int64"),
    BAD(HEAD "  A[0, 1] = x;" TAIL, KILN_ERR_SHAPE, 2, 3, "buffer 'A' has 1 dimensions but 2 indices"),
    BAD(HEAD "  A[0] = A[0, 0];" TAIL, KILN_ERR_SHAPE, 2, 10, "buffer 'A' has 1 dimensions but 2 indices"),
    BAD(HEAD "  for i: int32 in range(0, 4) {\n    evaluate(i);\n  }\n  evaluate(i);" TAIL,
        KILN_ERR_UNDEFINED, 5, 12, "undefined variable 'i'"),
    BAD("func @f(n: int32, n: int32) {\n  evaluate(n);\n}\n", KILN_ERR_PARSE, 1, 19,
        "parameter 'n' is defined twice"),
    BAD("func @f() {\n  evaluate(1);\n}\nfunc @f() {\n  evaluate(2);\n}\n", KILN_ERR_TYPE, 4, 1,
        "function 'f' is defined twice"),
    BAD("func @f(A: buffer(float32, [m])) {\n  evaluate(1);\n}\n", KILN_ERR_UNDEFINED, 1, 29,
        "undefined variable 'm'"),
    /* buffers */
    BAD("func @f(A: buffer(float32, [4], shape=[4])) {\n  evaluate(1);\n}\n", KILN_ERR_PARSE, 1, 33,
        "expected a buffer option (strides, offset, align or scope), found 'shape'"),
    BAD("func @f(A: buffer(float32, [4], align=3)) {\n  evaluate(1);\n}\n", KILN_ERR_PARSE, 1, 39,
        "the alignment must be a positive power of two, not 3"),
    BAD("func @f(A: buffer(float32, [4], align=8, align=8)) {\n  evaluate(1);\n}\n", KILN_ERR_PARSE,
        1, 42, "buffer option 'align' is given twice"),
    BAD("func @f(A: buffer(float32, [4, 4], strides=[1])) {\n  evaluate(1);\n}\n", KILN_ERR_SHAPE,
        1, 9, "buffer 'A' has 2 dimensions but 1 strides"),
    BAD("func @f(A: buffer(float32, [4.5f32])) {\n  evaluate(1);\n}\n", KILN_ERR_TYPE, 1, 9,
        "a dimension must be an integer"),
    BAD("func @f(A: tensor(float32, [4])) {\n  evaluate(1);\n}\n", KILN_ERR_PARSE, 1, 12,
        "unknown dtype 'tensor'"),
    /* blocks */
    BAD(HEAD "  block \"b\"(v: int32 = spatial(0, 4)) {\n    evaluate(v);\n  }" TAIL, KILN_ERR_PARSE, 2, 37,
        "expected '<-' and the iterator's value after its domain, found ')'"),
    BAD(HEAD "  unrealized block \"b\"(v: int32 = spatial(0, 4) <- n) {\n    evaluate(v);\n  }" TAIL,
        KILN_ERR_PARSE, 2, 49, "the iterators of an unrealized block are not bound to values"),
    BAD(HEAD "  unrealized block \"b\"() where b {\n    evaluate(1);\n  }" TAIL, KILN_ERR_PARSE, 2, 26,
        "an unrealized block has no 'where' predicate"),
    BAD(HEAD "  block \"b\"(v: int32 = sideways(0, 4) <- n) {\n    evaluate(v);\n  }" TAIL, KILN_ERR_PARSE,
        2, 24, "expected the iterator type (spatial or reduce), found 'sideways'"),
    BAD(HEAD "  block b() {\n    evaluate(1);\n  }" TAIL, KILN_ERR_PARSE, 2, 9,
        "expected the block name (a string) after 'block', found 'b'"),
    BAD(HEAD "  block \"b\"() {\n    reads(A[0])\n    reads(A[1])\n    evaluate(1);\n  }" TAIL,
        KILN_ERR_PARSE, 4, 5, "'reads' is given twice in block \"b\""),
    BAD(HEAD "  block \"b\"() {\n    writes(A[0, 1])\n    evaluate(1);\n  }" TAIL, KILN_ERR_SHAPE, 3, 12,
        "region: buffer 'A' has 1 dimensions but 2 ranges"),
    BAD(HEAD "  block \"b\"() {\n    reads(A[x])\n    evaluate(1);\n  }" TAIL, KILN_ERR_TYPE, 3, 13,
        "a region index must be an integer, not float32"),
    BAD(HEAD "  block \"b\"() {\n    reads(n)\n    evaluate(1);\n  }" TAIL, KILN_ERR_TYPE, 3, 11,
        "'n' is a variable, not a buffer"),
    BAD(HEAD "  block \"b\"(v: int32 = spatial(0, 4) <- x) {\n    evaluate(v);\n  }" TAIL, KILN_ERR_TYPE, 2,
        3, "an iterator value must be an integer"),
    BAD(HEAD "  block \"b\"() {\n    annotate {\"k\" = n}\n    evaluate(1);\n  }" TAIL, KILN_ERR_TYPE, 3, 15,
        "an annotation value must be a constant"),
    BAD(HEAD "  block \"b\"() {\n    annotate {k = 1}\n    evaluate(1);\n  }" TAIL, KILN_ERR_PARSE, 3, 15,
        "expected a string (an annotation key), found 'k'"),
};

START_TEST(test_error_table) {
  kiln_context *ctx = kiln_test_new_ctx();
  char report[8192] = "";
  size_t used = 0;
  int nfail = 0;
  for (size_t i = 0; i < sizeof bad_inputs / sizeof bad_inputs[0]; i++) {
    const bad_input *c = &bad_inputs[i];
    kiln_tir_module *m = (kiln_tir_module *)1;
    kiln_status st = kiln_tir_module_parse(ctx, c->text, c->len, "bad", &m);
    int line, col;
    kiln_context_errpos(ctx, &line, &col);
    /* the message starts with the position */
    char pos[32];
    snprintf(pos, sizeof pos, "%d:%d: ", c->line, c->col);
    if (st != c->code || line != c->line || col != c->col ||
        strstr(kiln_context_errmsg(ctx), c->msg) == NULL ||
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

/* ir_parse_expr: names come from the given variables; the whole text must be one
 * expression. */
START_TEST(test_parse_expr) {
  kiln_context *ctx = kiln_test_new_ctx();
  ir_arena *a = ir_arena_new(ctx);
  ir_var *x = ir_var_new(a, "x", I32);
  ir_expr *e = (ir_expr *)1;
  ck_ok(ctx, ir_parse_expr(a, "x * 2 + 1", 1, &x, &e));
  ck_assert(ir_structural_equal(ctx, e, ir_add(a, ir_mul(a, &x->h, ir_i32(a, 2)), ir_i32(a, 1))));
  ck_assert_ptr_eq(((ir_binary *)((ir_binary *)e)->a)->a, &x->h);
  ck_assert_int_eq(ir_parse_expr(a, "x + 1 2", 1, &x, &e), KILN_ERR_PARSE);
  ck_assert_ptr_null(e);
  ck_errmsg_has(ctx, "1:7: expected the end of the expression, found '2'");
  ck_assert_int_eq(ir_parse_expr(a, "x + y", 1, &x, &e), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "1:5: undefined variable 'y'");
  ck_assert_int_eq(ir_parse_expr(a, "", 0, NULL, &e), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "expected an expression, found end of input");
  ck_assert_int_eq(ir_parse_expr(a, NULL, 0, NULL, &e), KILN_ERR_MISUSE);
  ck_assert_int_eq(ir_parse_expr(a, "x", 1, NULL, &e), KILN_ERR_MISUSE);
  ck_assert_int_eq(ir_parse_expr(NULL, "x", 0, NULL, &e), KILN_ERR_MISUSE);
  ir_arena_free(a);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Robustness ---------------------------------------------------------------------------- */

/* After a failed parse: a clean error with a position, nothing returned, nothing leaked. */
static void check_failure(kiln_context *ctx, kiln_status st, kiln_tir_module *m) {
  ck_assert_msg(st == KILN_ERR_PARSE || st == KILN_ERR_UNDEFINED || st == KILN_ERR_TYPE ||
                    st == KILN_ERR_SHAPE,
                "unexpected status %s: %s", kiln_status_str(st), kiln_context_errmsg(ctx));
  ck_assert_ptr_null(m);
  int line, col;
  kiln_context_errpos(ctx, &line, &col);
  ck_assert_int_gt(line, 0);
  ck_assert_int_gt(col, 0);
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
}

/* Every prefix of valid programs fails cleanly (or is itself a valid module). */
START_TEST(test_truncated_programs) {
  kiln_context *ctx = kiln_test_new_ctx();
  for (size_t g = 0; g < sizeof golden_programs / sizeof golden_programs[0]; g++) {
    size_t len;
    char *text = kiln_test_read_golden("tir", golden_programs[g], &len);
    int ok = 0;
    for (size_t cut = 0; cut <= len; cut++) {
      /* a copy of exactly `cut` bytes, so reading past the end is caught by ASan */
      char *prefix = malloc(cut ? cut : 1);
      memcpy(prefix, text, cut);
      kiln_tir_module *m = NULL;
      kiln_status st = kiln_tir_module_parse(ctx, prefix, cut, "cut", &m);
      if (st == KILN_OK) {
        ok++;
        kiln_tir_module_free(m);
      } else {
        check_failure(ctx, st, m);
      }
      free(prefix);
    }
    /* the empty and comment-only prefixes, the whole text, and a few cuts at a function's end */
    ck_assert_int_ge(ok, 2);
    free(text);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Each byte of valid programs replaced by bytes that break things: never a crash or a leak,
 * and whatever still parses round trips. */
START_TEST(test_mutated_programs) {
  static const char junk[] = {'\0', '(', '}', '-', '"', '#', '\n'};
  kiln_context *ctx = kiln_test_new_ctx();
  for (size_t g = 0; g < sizeof golden_programs / sizeof golden_programs[0]; g++) {
    char *file = kiln_test_read_golden("tir", golden_programs[g], NULL);
    char *text = kiln_test_strip_comment_lines(file); /* mutants of comments are not interesting */
    size_t len = strlen(text);
    char *copy = malloc(len);
    int ok = 0;
    for (size_t i = 0; i < len; i++) {
      for (size_t j = 0; j < sizeof junk; j++) {
        if (text[i] == junk[j]) continue;
        memcpy(copy, text, len);
        copy[i] = junk[j];
        kiln_tir_module *m = NULL;
        kiln_status st = kiln_tir_module_parse(ctx, copy, len, "mutant", &m);
        if (st == KILN_OK) {
          ok++;
          kiln_string_free(ctx, round_trip(ctx, m));
          kiln_tir_module_free(m);
        } else {
          check_failure(ctx, st, m);
        }
      }
    }
    ck_assert_int_gt(ok, 0); /* e.g. "a + b" -> "a - b", or a new line */
    free(copy);
    free(text);
    free(file);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

static void expect_nesting(kiln_context *ctx, char *text, kiln_status want, const char *msg) {
  kiln_tir_module *m = NULL;
  kiln_status st = kiln_tir_module_parse(ctx, text, strlen(text), "deep", &m);
  ck_assert_msg(st == want, "got %s (%s)", kiln_status_str(st), kiln_context_errmsg(ctx));
  if (st == KILN_OK) {
    kiln_string_free(ctx, round_trip(ctx, m)); /* the printer copes with the depth too */
    kiln_tir_module_free(m);
  } else {
    ck_errmsg_has(ctx, msg);
    ck_assert_ptr_null(m);
  }
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  free(text);
}

START_TEST(test_deep_nesting) {
  const char *head = "func @f(n: int32, b: bool) {\n  evaluate(";
  const char *tail = ");\n}\n";
  const char *too_deep = "nesting too deep (more than 256 levels)";
  kiln_context *ctx = kiln_test_new_ctx();
  expect_nesting(ctx, kiln_test_nested(head, "(", 200, "n", ")", tail), KILN_OK, NULL);
  expect_nesting(ctx, kiln_test_nested(head, "(", 300, "n", ")", tail), KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested(head, "(", 1000000, "n", ")", tail), KILN_ERR_PARSE, too_deep);
  /* The error points at the bracket that goes one level too deep: the statement and the
   * argument of evaluate take two levels, so the 255th "(" (column 11 + 255) is the last
   * one allowed. */
  int line, col;
  kiln_context_errpos(ctx, &line, &col);
  ck_assert_int_eq(line, 2);
  ck_assert_int_eq(col, 11 + 256);
  expect_nesting(ctx, kiln_test_nested(head, "!", 200, "b", "", tail), KILN_OK, NULL);
  expect_nesting(ctx, kiln_test_nested(head, "!", 1000000, "b", "", tail), KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested(head, "- ", 1000000, "n", "", tail), KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested(head, "min(n, ", 100000, "n", ")", tail), KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested("func @f(A: buffer(int32, [4])) {\n  evaluate(", "A[", 100000, "0", "]", tail),
                 KILN_ERR_PARSE, too_deep);
  const char *shead = "func @f(n: int32, b: bool) {\n";
  expect_nesting(ctx, kiln_test_nested(shead, "if b {\n", 200, "evaluate(n);\n", "}\n", "}\n"), KILN_OK, NULL);
  expect_nesting(ctx, kiln_test_nested(shead, "if b {\n", 100000, "evaluate(n);\n", "}\n", "}\n"),
                 KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested(shead, "seq {\n", 100000, "evaluate(n);\n", "}\n", "}\n"),
                 KILN_ERR_PARSE, too_deep);
  expect_nesting(ctx, kiln_test_nested(shead, "if b {\nevaluate(n);\n} else ", 100000, "{\nevaluate(n);\n}\n", "", "}\n"),
                 KILN_ERR_PARSE, too_deep);
  /* Long operator chains build deep trees without recursion; their depth is limited too. */
  expect_nesting(ctx, kiln_test_nested(head, "n + ", 999, "n", "", tail), KILN_OK, NULL);
  expect_nesting(ctx, kiln_test_nested(head, "n + ", 100000, "n", "", tail), KILN_ERR_PARSE,
                 "expression nested too deeply (more than 1024 levels)");
  expect_nesting(ctx, kiln_test_nested(head, "b && ", 100000, "b", "", tail), KILN_ERR_PARSE,
                 "expression nested too deeply");
  /* Many statements side by side are not nesting. */
  expect_nesting(ctx, kiln_test_nested(shead, "evaluate(n);\n", 20000, "", "", "}\n"), KILN_OK, NULL);
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
    kiln_tir_module *m = NULL;
    char *s = NULL;
    kiln_status st = kiln_tir_module_parse(ctx, text, strlen(text), "fault", &m);
    if (st == KILN_OK) st = kiln_tir_module_print(m, &s);
    long made = kiln_context_alloc_count(ctx) - before;
    kiln_context_fail_alloc(ctx, 0);
    kiln_string_free(ctx, s);
    kiln_tir_module_free(m);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
    if (st == KILN_OK) {
      ck_assert_int_lt(made, n);
      break;
    }
    ck_assert_msg(st == KILN_ERR_NOMEM, "n=%ld: %s: %s", n, kiln_status_str(st), kiln_context_errmsg(ctx));
    ck_assert_int_eq(kiln_context_errcode(ctx), KILN_ERR_NOMEM);
  }
  kiln_test_done_ctx(ctx);
}

START_TEST(test_fault_injection_golden) {
  for (size_t g = 0; g < sizeof golden_programs / sizeof golden_programs[0]; g++) {
    char *text = kiln_test_read_golden("tir", golden_programs[g], NULL);
    fault_loop(text);
    free(text);
  }
}
END_TEST

/* A big program: many functions, names and statements, so the arenas, lists, name tables
 * and the output buffer all grow several times. */
START_TEST(test_fault_injection_big) {
  size_t cap = 1 << 20, len = 0;
  char *text = malloc(cap);
  for (int f = 0; f < 8; f++) {
    len += (size_t)snprintf(text + len, cap - len, "func @f%d(A: buffer(float32, [64]), n: int32) {\n", f);
    for (int i = 0; i < 50; i++)
      len += (size_t)snprintf(text + len, cap - len,
                              "  for i%d: int32 in range(0, n) {\n    A[i%d] = A[i%d] + %d.5f32;\n  }\n", i, i,
                              i, i);
    len += (size_t)snprintf(text + len, cap - len, "}\n");
  }
  fault_loop(text);
  free(text);
}
END_TEST

START_TEST(test_fault_injection_expr_and_node_printing) {
  kiln_context *ctx = kiln_test_new_ctx();
  for (long n = 1;; n++) {
    ck_assert_int_lt(n, 10000);
    kiln_context_fail_alloc(ctx, n);
    ir_arena *a = ir_arena_new(ctx);
    ir_var *x = a ? ir_var_new(a, "x", I32) : NULL;
    ir_expr *e = NULL;
    char *s = NULL;
    kiln_status st = x ? ir_parse_expr(a, "let(t: int32 = x * 2, select(t < 3, t, x) + min(x, t))", 1, &x, &e)
                       : KILN_ERR_NOMEM;
    if (!st && !(s = ir_node_to_string(ctx, e))) st = KILN_ERR_NOMEM;
    kiln_context_fail_alloc(ctx, 0);
    if (!st) ck_assert_str_eq(s, "let(t: int32 = x * 2, select(t < 3, t, x) + min(x, t))");
    kiln_string_free(ctx, s);
    ir_arena_free(a);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
    if (!st) break;
    ck_assert_int_eq(st, KILN_ERR_NOMEM);
  }
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Public API ------------------------------------------------------------------------------ */

START_TEST(test_public_api) {
  static const char *prog =
      "func @f(A: buffer(float32, [8])) {\n"
      "  for i: int32 in range(0, 8) {\n"
      "    A[i] = A[i] * 2f32;\n"
      "  }\n"
      "}\n";
  static const char *renamed = /* the same program with other names */
      "func @f(B: buffer(float32, [8])) {\n"
      "  for k: int32 in range(0, 8) {\n"
      "    B[k] = B[k] * 2f32;\n"
      "  }\n"
      "}\n";
  static const char *changed = /* one constant differs */
      "func @f(A: buffer(float32, [8])) {\n"
      "  for i: int32 in range(0, 8) {\n"
      "    A[i] = A[i] * 3f32;\n"
      "  }\n"
      "}\n";
  kiln_context *ctx = kiln_test_new_ctx();
  kiln_tir_module *m1 = parse_ok(ctx, prog), *m2 = parse_ok(ctx, renamed), *m3 = parse_ok(ctx, changed);
  ck_assert_int_eq(kiln_tir_module_num_funcs(m1), 1);
  ck_assert_str_eq(kiln_tir_module_func_name(m1, 0), "f");
  int eq = 0;
  uint64_t h1, h2, h3;
  ck_ok(ctx, kiln_tir_module_equal(m1, m2, &eq));
  ck_assert_int_eq(eq, 1);
  ck_ok(ctx, kiln_tir_module_equal(m1, m3, &eq));
  ck_assert_int_eq(eq, 0);
  ck_ok(ctx, kiln_tir_module_hash(m1, &h1));
  ck_ok(ctx, kiln_tir_module_hash(m2, &h2));
  ck_ok(ctx, kiln_tir_module_hash(m3, &h3));
  ck_assert_uint_eq(h1, h2);
  ck_assert_uint_ne(h1, h3);
  char *s = print_ok(ctx, m1);
  ck_assert_str_eq(s, prog);
  kiln_string_free(ctx, s);
  /* len counts: only the first function of two is read */
  kiln_tir_module *m4 = NULL;
  char two[512];
  snprintf(two, sizeof two, "%s%s", prog, "func @g() {\n  evaluate(1);\n}\n");
  ck_ok(ctx, kiln_tir_module_parse(ctx, two, strlen(prog), NULL, &m4));
  ck_assert_int_eq(kiln_tir_module_num_funcs(m4), 1);
  kiln_tir_module_free(m4);
  /* empty and comment-only modules print as the empty string */
  static const char *const empties[] = {"", "   \n\t\r\n", "# nothing here\n# at all"};
  for (int i = 0; i < 3; i++) {
    kiln_tir_module *e = parse_ok(ctx, empties[i]);
    ck_assert_int_eq(kiln_tir_module_num_funcs(e), 0);
    s = print_ok(ctx, e);
    ck_assert_str_eq(s, "");
    kiln_string_free(ctx, s);
    kiln_tir_module_free(e);
  }
  /* misuse */
  kiln_tir_module *out = NULL;
  ck_assert_int_eq(kiln_tir_module_parse(ctx, NULL, 3, "x", &out), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_tir_module_parse(ctx, "", 0, "x", NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_tir_module_parse(NULL, "", 0, "x", &out), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_tir_module_parse_file(ctx, "/nonexistent/kiln.tir", &out), KILN_ERR_IO);
  kiln_tir_module_free(m1);
  kiln_tir_module_free(m2);
  kiln_tir_module_free(m3);
  kiln_test_done_ctx(ctx);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("text");
  TCase *rt = tcase_create("round_trip");
  tcase_add_test(rt, test_golden_files_round_trip);
  tcase_add_test(rt, test_canonical_programs);
  tcase_add_test(rt, test_free_form_input);
  tcase_add_test(rt, test_every_dtype);
  tcase_add_test(rt, test_float_literals_bit_exact);
  tcase_add_test(rt, test_literal_parsing);
  tcase_add_test(rt, test_precedence_printing);
  tcase_add_test(rt, test_random_expressions_round_trip);
  tcase_add_test(rt, test_names_unique_and_sanitized);
  tcase_add_test(rt, test_keywords);
  tcase_add_test(rt, test_seq_forms);
  tcase_add_test(rt, test_block_forms);
  tcase_add_test(rt, test_buffer_options);
  tcase_add_test(rt, test_print_aux_nodes);
  tcase_add_test(rt, test_scopes);
  tcase_add_test(rt, test_spans);
  tcase_add_test(rt, test_public_api);
  suite_add_tcase(s, rt);
  TCase *err = tcase_create("errors");
  tcase_add_test(err, test_golden_error_file);
  tcase_add_test(err, test_error_table);
  tcase_add_test(err, test_parse_expr);
  suite_add_tcase(s, err);
  TCase *rob = tcase_create("robustness");
  tcase_add_test(rob, test_truncated_programs);
  tcase_add_test(rob, test_mutated_programs);
  tcase_add_test(rob, test_deep_nesting);
  suite_add_tcase(s, rob);
  TCase *fault = tcase_create("fault_injection");
  tcase_add_test(fault, test_fault_injection_golden);
  tcase_add_test(fault, test_fault_injection_big);
  tcase_add_test(fault, test_fault_injection_expr_and_node_printing);
  suite_add_tcase(s, fault);
  return s;
}

KILN_TEST_MAIN

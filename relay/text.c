/* text.c: the Relay text format. The printer writes modules and expressions; the parser reads
 * them back through the relay constructors, so parsed graphs are type-checked exactly like
 * C-built ones. A node used more than once prints once, as a graph binding `%3 = ...;`, and
 * parses back to one node, so a round trip keeps a graph a graph (same sharing, same
 * structure, same text when printed again).
 *
 * Grammar ("x" is a literal token; IDENT, LOCAL, NUMBER and STRING are token classes; # starts
 * a comment that runs to the end of the line):
 *
 *   module     = def*
 *   def        = "def" "@" gname [fn_attrs] "(" [param ("," param)*] ")" ["->" type]
 *                "{" block "}"
 *   gname      = IDENT | STRING
 *   param      = LOCAL [":" type]
 *   fn_attrs   = "[" [attr ("," attr)*] "]"
 *   attr       = (IDENT | STRING) "=" attr_value
 *   attr_value = int | float | STRING | "[" [int ("," int)*] "]"
 *   int        = ["-"] NUMBER                   (no '.', exponent or suffix: an INT attribute)
 *   float      = ["-"] NUMBER | ["-"] "inf" | "nan" ["(" NUMBER ")"]
 *                                               (with '.' or an exponent: a FLOAT attribute)
 *
 *   block      = (binding | let)* expr
 *   binding    = LOCAL "=" expr ";"               (names the node; makes no node itself)
 *   let        = "let" LOCAL [":" type] "=" expr ";"    (a let node: the rest of the block
 *                                                        is its body)
 *   expr       = primary ("(" [expr ("," expr)*] ")" | "." NUMBER)*   (calls, projections)
 *   primary    = LOCAL | global | scalar | "true" | "false" | const
 *              | "(" ")" | "(" expr ")" | "(" expr "," [expr ("," expr)* [","]] ")"
 *              | "{" block "}" | func | if | op_call
 *   global     = "@" gname [":" (type | "?")]
 *   func       = "fn" [fn_attrs] "(" [param ("," param)*] ")" ["->" type] "{" block "}"
 *   if         = "if" expr "{" block "}" "else" "{" block "}"
 *   op_call    = IDENT "(" [op_arg ("," op_arg)*] ")"
 *   op_arg     = expr | attr                    (the attributes come after the arguments)
 *   scalar     = ["-"] NUMBER
 *   const      = "const" "(" type "," ("[" [elem ("," elem)*] "]" | "...") ")"
 *   elem       = ["-"] NUMBER | ["-"] "inf" | "nan" ["(" NUMBER ")"] | "true" | "false"
 *
 *   type       = "Tensor" "[" "(" [dim ("," dim)* [","]] ")" "," IDENT "]"
 *              | "(" [type ("," type)* [","]] ")"
 *              | "fn" "(" [type ("," type)*] ")" "->" type
 *   dim        = dim_mul (("+" | "-") dim_mul)*
 *   dim_mul    = dim_unary (("*" | "/" | "%" | "//" | "%%") dim_unary)*
 *   dim_unary  = "-" dim_unary | NUMBER | "(" dim ")" | ("min" | "max") "(" dim "," dim ")"
 *              | IDENT
 *
 * Tokens: LOCAL is '%' directly followed by letters, digits and '_' (%x, %0; so write a
 * modulo with a space: `n % 2`). IDENT is letters, digits and '_' not starting with a digit,
 * with dots between such parts (nn.conv2d). NUMBER is decimal digits with an optional
 * fraction and exponent and a suffix of letters and digits (1, 2.5f32, 1e-05, 7i64), or a
 * 0x hex integer. STRING takes the escapes \" \\ \n \t \r \xHH.
 *
 * Meaning:
 * - Names. Parameters and let variables define variables; a binding names a node. A name is
 *   visible from its definition to the end of the innermost block ("{" ... "}") holding it;
 *   a parameter in its function's body. An inner definition shadows an outer one.
 * - Globals. `@f` refers to the module's function f; it has f's type when f is defined above,
 *   no type otherwise (a forward or recursive reference). `@f: T` / `@f: ?` give the type
 *   explicitly (the printer writes that form, in parentheses, only where the derived type
 *   would differ). Every referenced function must be defined somewhere in the module.
 * - Scalars are 0-d constants: the suffix names the dtype (i8 i16 i32 i64 u8 u16 u32 u64 f16
 *   bf16 f32 f64, and f for float32); without one, a number is int32, or float32 when it has
 *   a '.' or an exponent. `true` and `false` are bool scalars.
 * - Constants list their elements flat, row-major. Values must fit the dtype (floats round to
 *   nearest); `nan` is the dtype's quiet NaN, `nan(0xBITS)` a NaN with exactly those bits.
 *   For bool, true/false or the byte's value. `...` marks data the printer elided
 *   (relay_print_module_opts); such a constant does not parse.
 * - Op calls: attributes not given take their defaults (relay_call_op fills them in), an
 *   integer is accepted where a float is expected; the printer writes non-default ones only.
 * - Dimensions are int64 expressions: numbers (a suffix i64, as ir_print_node writes it, is
 *   accepted), names (the module's symbolic dimensions, relay_module_dim) and the TIR
 *   operators: "/" is DIV, "%" MOD, "//" FLOORDIV, "%%" FLOORMOD; "-" before a number is a
 *   negative number, before anything else 0 - x.
 *
 * The printer's layout (what it writes, and what the golden files hold): a function body is
 * a block. A binding line `%N = ...;` (numbered in the order the lines start within the def)
 * goes to every node used more than once, every op or function call and nested function,
 * every non-scalar constant, and every if or let that is not in tail position; except that a
 * node used only as the value of a let prints in the let line (`let %y = nn.relu(%x);`).
 * Unshared tuples, projections and scalar constants print in place. A binding sits in the
 * innermost block that encloses all its uses. A let in tail position continues its block
 * (`let %x = value;` then the rest), an if in tail position prints in place (`if (%c) {
 * ... } else { ... }`); a let elsewhere is a block expression `{ let ...; ... }`. Variable
 * names come from the nodes' hints, made unique per def (`x`, `x_1`); symbolic dimension
 * names are unique per module. Functions are separated by a blank line.
 *
 * Limits: brackets, blocks, types and unary minus nest at most MAX_NESTING deep in the
 * parser (it recurses); dimension expressions are at most MAX_DIM_DEPTH deep. The printer
 * walks the graph without recursion; it recurses only into nested scopes (functions, ifs,
 * lets), types and dimensions, at most MAX_PRINT_DEPTH deep.
 *
 * Parse errors leave through longjmp to the setjmp in `guarded` (STYLE allows it inside a
 * parser): nodes live in the module's arena and temporaries in the scratch arena or the name
 * table, all freed by the entry point. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/lex.h"
#include "text.h"
#include "op.h"

enum {
  MAX_NESTING = 256,
  MAX_DIM_DEPTH = 256,
  MAX_PRINT_DEPTH = 1000,
  MAX_INLINE_DEPTH = 32, /* deeper inline tuples/projections get a binding line */
};

/* ---- Numbers, shared by the printer and the parser -------------------------------------- */

/* Room for one element of any dtype, aligned for the typed accesses of relay_tensor_get. */
typedef union elem_buf {
  uint64_t u;
  double d;
  unsigned char b[8];
} elem_buf;

/* The element dtypes constants can hold. */
static bool const_dtype_ok(kiln_dtype t) {
  if (t.lanes != 1) return false;
  switch (t.code) {
  case KILN_TYPE_INT:
  case KILN_TYPE_UINT: return t.bits == 8 || t.bits == 16 || t.bits == 32 || t.bits == 64;
  case KILN_TYPE_FLOAT: return t.bits == 16 || t.bits == 32 || t.bits == 64;
  case KILN_TYPE_BFLOAT: return t.bits == 16;
  case KILN_TYPE_BOOL: return true;
  }
  return false;
}

/* The bits of `nan` for each float dtype: the quiet NaN with no payload. */
static uint64_t canonical_nan(kiln_dtype t) {
  if (t.code == KILN_TYPE_BFLOAT) return 0x7fc0;
  if (t.bits == 16) return 0x7e00;
  if (t.bits == 32) return 0x7fc00000;
  return 0x7ff8000000000000ull;
}

static uint64_t load_bits(const unsigned char *p, size_t size) {
  uint8_t b8;
  uint16_t b16;
  uint32_t b32;
  uint64_t b64;
  switch (size) {
  case 1: memcpy(&b8, p, 1); return b8;
  case 2: memcpy(&b16, p, 2); return b16;
  case 4: memcpy(&b32, p, 4); return b32;
  default: memcpy(&b64, p, 8); return b64;
  }
}

/* A signed integer element, sign-extended. */
static int64_t load_int(const unsigned char *p, int bits) {
  int8_t i8;
  int16_t i16;
  int32_t i32;
  int64_t i64;
  switch (bits) {
  case 8: memcpy(&i8, p, 1); return i8;
  case 16: memcpy(&i16, p, 2); return i16;
  case 32: memcpy(&i32, p, 4); return i32;
  default: memcpy(&i64, p, 8); return i64;
  }
}

static void store_bits(unsigned char *p, size_t size, uint64_t v) {
  uint8_t b8 = (uint8_t)v;
  uint16_t b16 = (uint16_t)v;
  uint32_t b32 = (uint32_t)v;
  switch (size) {
  case 1: memcpy(p, &b8, 1); return;
  case 2: memcpy(p, &b16, 2); return;
  case 4: memcpy(p, &b32, 4); return;
  default: memcpy(p, &v, 8); return;
  }
}

/* A one-element tensor over p, for relay_tensor_get/set (the float16/bfloat16 conversions). */
static relay_tensor elem_view(unsigned char *p, kiln_dtype t) {
  relay_tensor v;
  memset(&v, 0, sizeof v);
  v.dtype = t;
  v.data = p;
  v.nbytes = kiln_dtype_bytes(t);
  return v;
}

/* A float element as a double (exact). p is aligned for the dtype. */
static double load_float(const unsigned char *p, kiln_dtype t) {
  if (t.code == KILN_TYPE_FLOAT && t.bits == 64) {
    double d;
    memcpy(&d, p, sizeof d);
    return d;
  }
  if (t.code == KILN_TYPE_FLOAT && t.bits == 32) {
    float f;
    memcpy(&f, p, sizeof f);
    return f;
  }
  relay_tensor v = elem_view((unsigned char *)p, t);
  return relay_tensor_get(&v, 0);
}

/* Rounds d to the float dtype t and stores it; false when a finite d is too large for t.
 * The printer checks its output with this very function, so what it writes reads back to
 * the same bits whatever the rounding details. */
static bool store_float(double d, kiln_dtype t, unsigned char *p) {
  if (isnan(d)) {
    store_bits(p, kiln_dtype_bytes(t), canonical_nan(t));
    return true;
  }
  if (t.code == KILN_TYPE_FLOAT && t.bits == 64) {
    memcpy(p, &d, sizeof d);
    return true;
  }
  if (!isinf(d) && fabs(d) >= 0x1p128) return false; /* beyond every narrower format */
  if (t.code == KILN_TYPE_FLOAT && t.bits == 32) {
    float f = (float)d;
    memcpy(p, &f, sizeof f);
    return isinf(d) || !isinf(f);
  }
  relay_tensor v = elem_view(p, t);
  relay_tensor_set(&v, 0, d);
  return isinf(d) || !isinf(relay_tensor_get(&v, 0));
}

/* Whether a decimal read back as `back` stores to exactly the element bits in arg. */
typedef struct float_elem {
  kiln_dtype t;
  const unsigned char *bits;
} float_elem;

static bool same_elem(double back, const void *arg) {
  const float_elem *fe = arg;
  elem_buf b = {0};
  return store_float(back, fe->t, b.b) && memcmp(b.b, fe->bits, kiln_dtype_bytes(fe->t)) == 0;
}

/* The shortest decimal that reads back (ir_text_to_double, then store_float) to exactly the bits
 * at p: at most 17 significant digits, plain notation below 1e17 (1000, not 1e+03). NaN is
 * `nan` (the canonical one) or `nan(0xBITS)`, infinities `inf` and `-inf`. */
static void format_float(char *buf, size_t cap, const unsigned char *p, kiln_dtype t) {
  double v = load_float(p, t);
  size_t size = kiln_dtype_bytes(t);
  if (isnan(v)) {
    uint64_t bits = load_bits(p, size);
    if (bits == canonical_nan(t)) snprintf(buf, cap, "nan");
    else snprintf(buf, cap, "nan(0x%0*llx)", (int)size * 2, (unsigned long long)bits);
    return;
  }
  if (isinf(v)) {
    snprintf(buf, cap, v < 0 ? "-inf" : "inf");
    return;
  }
  float_elem fe = {t, p};
  ir_format_float_shortest(buf, cap, v, same_elem, &fe);
}

/* Whether s reads as one IDENT token (so names and keys can print without quotes). */
static bool is_ident_token(const char *s) {
  for (;;) {
    if (!ir_is_ident_start((unsigned char)*s)) return false;
    while (ir_is_ident_char((unsigned char)*s)) s++;
    if (!*s) return true;
    if (*s != '.') return false;
    s++;
  }
}

/* ---- Printer: names ---------------------------------------------------------------------- */

/* What one node of the def being printed looks like to the printer (see analyze). */
typedef struct node_info {
  const ir_node *n;
  int32_t uses;      /* edges from other nodes of the def (the root counts one) */
  int32_t tail_uses; /* of which are tail positions: bodies and branches */
  int32_t value_uses; /* of which are values of lets */
  int32_t scope;     /* the scope it is used in / its binding goes to */
  int32_t sub[2];    /* function, let: body scope; if: then and else scopes */
  int32_t next;      /* next bound node of the same scope, in post order (-1 ends) */
  int32_t number;    /* its binding number once its line is printed, else -1 */
  int32_t depth;     /* nesting of inline tuples/projections below it */
  bool bound;        /* printed as a binding line `%N = ...;` */
} node_info;

/* A scope: a function body, an if branch or a let body. Binding lines go to the innermost
 * scope that encloses every use of their node. */
typedef struct scope_info {
  int32_t parent, depth;
  int32_t first, last; /* its bound nodes, in post order */
} scope_info;

typedef struct dfs_frame {
  int32_t node, child;
} dfs_frame;

typedef struct printer {
  kiln_context *ctx;
  ir_strbuf *sb;
  int64_t max_elems;       /* elide constants with more elements (negative: never) */
  const relay_module *mod; /* NULL when printing a lone expression */
  int def_index;           /* module position of the def being printed */
  kiln_status err;         /* the first error (the message is on ctx) */
  int indent, rec;
  ir_arena *names;         /* the printed names */
  ir_ptrmap dim_names;     /* symbolic dimension (ir_var) -> name, for the whole module */
  ir_nameset dim_taken;
  ir_ptrmap var_names;     /* relay_var -> name, per def */
  ir_nameset var_taken;
  /* the analysis of the def being printed */
  ir_ptrmap index;         /* node -> 1 + its index in info */
  node_info *info;
  size_t ninfo, info_cap;
  int32_t *post;           /* info indices in post order */
  size_t npost, post_cap;
  scope_info *scopes;
  size_t nscopes, scope_cap;
  dfs_frame *stack;
  size_t stack_cap;
  int next_number;
} printer;

/* Records the first error; printing goes on quietly and the entry point returns it. */
static void print_fail(printer *p, kiln_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void print_fail(printer *p, kiln_status code, const char *fmt, ...) {
  if (p->err) return;
  va_list ap;
  va_start(ap, fmt);
  ir_vfail(p->ctx, IR_NO_SPAN, code, fmt, ap);
  va_end(ap);
  p->err = code;
}

/* An allocation failed (its message is already on ctx). */
static void nomem(printer *p) {
  if (!p->err) p->err = KILN_ERR_NOMEM;
  if (p->ctx->code != KILN_ERR_NOMEM)
    ir_fail(p->ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "out of memory printing Relay");
}

/* Grows an array of `elem`-byte items to hold `want`; NULL (arr still valid) on failure. */
static void *grow(printer *p, void *arr, size_t *cap, size_t elem, size_t want) {
  if (want <= *cap) return arr;
  size_t ncap = *cap ? *cap : 16;
  while (ncap < want) ncap *= 2;
  void *q = ir_realloc(p->ctx, arr, *cap * elem, ncap * elem);
  if (!q) {
    nomem(p);
    return NULL;
  }
  *cap = ncap;
  return q;
}

/* A name made of letters, digits and '_' from a hint: other characters become '_'; for
 * dimensions (ident) a leading digit gets a '_' in front; for variables a name of digits
 * only does (it would read as a binding number). An empty hint becomes `empty`. */
static char *sanitize(printer *p, const char *hint, bool ident, const char *empty) {
  size_t n = strlen(hint);
  char *s = ir_arena_alloc(p->names, n + strlen(empty) + 2);
  if (!s) return NULL;
  if (n == 0) {
    strcpy(s, empty);
    return s;
  }
  bool digits = true;
  for (size_t i = 0; i < n; i++) digits = digits && ir_is_digit((unsigned char)hint[i]);
  size_t k = 0;
  if (ident ? ir_is_digit((unsigned char)hint[0]) : digits) s[k++] = '_';
  for (size_t i = 0; i < n; i++) s[k++] = ir_is_ident_char((unsigned char)hint[i]) ? hint[i] : '_';
  s[k] = 0;
  return s;
}

/* A fresh name in set t from a hint: the hint made valid, or hint_1, hint_2, ... */
static const char *fresh_name(printer *p, ir_nameset *t, const char *hint, bool ident,
                              const char *empty) {
  if (!p->names && !(p->names = ir_arena_new(p->ctx))) return NULL;
  char *base = sanitize(p, hint ? hint : "", ident, empty);
  return base ? ir_nameset_fresh(t, p->names, base) : NULL;
}

/* The name of a variable at its definition: always a fresh one, so the text never relies on
 * shadowing. */
static const char *def_var_name(printer *p, const relay_var *v) {
  const char *name = fresh_name(p, &p->var_taken, v->name, false, "x");
  if (!name || ir_ptrmap_put(&p->var_names, v, (void *)name)) {
    nomem(p);
    return "?";
  }
  return name;
}

/* The name of a variable where it is used (a free variable gets a fresh one). */
static const char *use_var_name(printer *p, const relay_var *v) {
  const char *name = ir_ptrmap_get(&p->var_names, v);
  return name ? name : def_var_name(p, v);
}

static const char *dim_name(printer *p, const ir_var *v) {
  const char *name = ir_ptrmap_get(&p->dim_names, v);
  if (name) return name;
  name = fresh_name(p, &p->dim_taken, v->name, true, "d");
  if (!name || ir_ptrmap_put(&p->dim_names, v, (void *)name)) {
    nomem(p);
    return "?";
  }
  return name;
}

/* ---- Printer: output helpers ------------------------------------------------------------- */

static void puts_(printer *p, const char *s) { ir_sb_puts(p->sb, s); }

static void pad(printer *p) {
  for (int i = 0; i < p->indent; i++) ir_sb_putn(p->sb, "  ", 2);
}

/* Guards the printer's recursion (nested scopes, types, dimensions, inline nodes). */
static bool enter_rec(printer *p) {
  if (p->err) return false;
  if (p->rec >= MAX_PRINT_DEPTH) {
    print_fail(p, KILN_ERR_UNSUPPORTED, "too deeply nested to print (more than %d levels)",
               MAX_PRINT_DEPTH);
    return false;
  }
  p->rec++;
  return true;
}

static void leave_rec(printer *p) { p->rec--; }

/* A name that is an IDENT prints bare, anything else as a string. */
static void print_name(printer *p, const char *s) {
  if (is_ident_token(s)) puts_(p, s);
  else ir_sb_put_quoted(p->sb, s);
}

/* ---- Printer: types and dimensions -------------------------------------------------------- */

/* Precedence of dimension operators, loosest first (the parser's dim / dim_mul / dim_unary). */
enum { P_LOWEST, P_ADD, P_MUL, P_UNARY };

static void print_dim(printer *p, const ir_expr *e, int prec) {
  if (!enter_rec(p)) return;
  const char *op = NULL;
  int my = P_ADD;
  switch (e->kind) {
  case IR_INT_IMM:
    if (!ir_dt_eq(e->dtype, KILN_INT64)) break;
    ir_sb_printf(p->sb, "%lld", (long long)((const ir_int_imm *)e)->value);
    leave_rec(p);
    return;
  case IR_VAR:
    if (!ir_dt_eq(e->dtype, KILN_INT64)) break;
    puts_(p, dim_name(p, (const ir_var *)e));
    leave_rec(p);
    return;
  case IR_MIN:
  case IR_MAX: {
    const ir_binary *b = (const ir_binary *)e;
    puts_(p, e->kind == IR_MIN ? "min(" : "max(");
    print_dim(p, b->a, P_LOWEST);
    puts_(p, ", ");
    print_dim(p, b->b, P_LOWEST);
    puts_(p, ")");
    leave_rec(p);
    return;
  }
  case IR_ADD: op = "+"; break;
  case IR_SUB: op = "-"; break;
  case IR_MUL: op = "*", my = P_MUL; break;
  case IR_DIV: op = "/", my = P_MUL; break;
  case IR_MOD: op = "%", my = P_MUL; break;
  case IR_FLOORDIV: op = "//", my = P_MUL; break;
  case IR_FLOORMOD: op = "%%", my = P_MUL; break;
  default: break;
  }
  if (!op) {
    char dt[32];
    print_fail(p, KILN_ERR_UNSUPPORTED,
               "cannot print a dimension of kind %s and dtype %s (dimensions are int64 "
               "numbers, names and + - * / %% // %%%% min max of them)",
               ir_kind_name(e->kind), kiln_dtype_str(e->dtype, dt, sizeof dt));
    leave_rec(p);
    return;
  }
  /* Left operands may sit at the operator's own level (left associativity); right operands
   * must bind tighter. */
  const ir_binary *b = (const ir_binary *)e;
  bool paren = my < prec;
  if (paren) puts_(p, "(");
  print_dim(p, b->a, my);
  ir_sb_printf(p->sb, " %s ", op);
  print_dim(p, b->b, my + 1);
  if (paren) puts_(p, ")");
  leave_rec(p);
}

/* Tensor[(1, n, 224), float32], (A, B), (A,), fn (A, B) -> C: the form relay_type_print
 * writes, with dimension expressions in the dim grammar. */
static void print_type(printer *p, const relay_type *t) {
  if (!enter_rec(p)) return;
  char dt[32];
  switch (t ? (relay_kind)t->kind : RELAY_KIND_END) {
  case RELAY_TENSOR_TYPE: {
    const relay_tensor_type *x = (const relay_tensor_type *)t;
    puts_(p, "Tensor[(");
    for (int i = 0; i < x->ndim; i++) {
      if (i) puts_(p, ", ");
      print_dim(p, x->shape[i], P_LOWEST);
    }
    ir_sb_printf(p->sb, "%s), %s]", x->ndim == 1 ? "," : "",
                 kiln_dtype_str(t->dtype, dt, sizeof dt));
    break;
  }
  case RELAY_TUPLE_TYPE: {
    const relay_tuple_type *x = (const relay_tuple_type *)t;
    puts_(p, "(");
    for (int i = 0; i < x->nfields; i++) {
      if (i) puts_(p, ", ");
      print_type(p, x->fields[i]);
    }
    puts_(p, x->nfields == 1 ? ",)" : ")");
    break;
  }
  case RELAY_FUNC_TYPE: {
    const relay_func_type *x = (const relay_func_type *)t;
    puts_(p, "fn (");
    for (int i = 0; i < x->nparams; i++) {
      if (i) puts_(p, ", ");
      print_type(p, x->params[i]);
    }
    puts_(p, ") -> ");
    print_type(p, x->ret);
    break;
  }
  case RELAY_ATTR:
  case RELAY_VAR:
  case RELAY_GLOBAL:
  case RELAY_CONST:
  case RELAY_CALL:
  case RELAY_TUPLE:
  case RELAY_PROJ:
  case RELAY_LET:
  case RELAY_FUNC:
  case RELAY_IF:
  case RELAY_KIND_BEFORE_FIRST:
  case RELAY_KIND_END:
    print_fail(p, KILN_ERR_MISUSE, "a type annotation holds a %s node, not a type",
               t ? ir_kind_name(t->kind) : "NULL");
    break;
  }
  leave_rec(p);
}

/* ---- Printer: attributes and constants ---------------------------------------------------- */

/* A float attribute: the shortest decimal that reads back exactly, always with a '.' or an
 * exponent so that it reads back as a float. */
static void print_float_attr(printer *p, double v) {
  char b[64];
  elem_buf e;
  e.d = v;
  format_float(b, sizeof b, e.b, KILN_FLOAT64);
  puts_(p, b);
  if (!strpbrk(b, ".ena")) puts_(p, ".0"); /* e: exponent, n/a: nan, inf */
}

static void print_attr_value(printer *p, const relay_attr *a) {
  switch ((relay_attr_kind)a->attr_kind) {
  case RELAY_ATTR_INT: ir_sb_printf(p->sb, "%lld", (long long)a->i); return;
  case RELAY_ATTR_FLOAT: print_float_attr(p, a->f); return;
  case RELAY_ATTR_STR: ir_sb_put_quoted(p->sb, a->s); return;
  case RELAY_ATTR_INTS:
    puts_(p, "[");
    for (int i = 0; i < a->nints; i++) ir_sb_printf(p->sb, "%s%lld", i ? ", " : "", (long long)a->ints[i]);
    puts_(p, "]");
    return;
  }
  print_fail(p, KILN_ERR_MISUSE, "attribute '%s' has an unknown kind %d", a->key, (int)a->attr_kind);
}

static void print_attr(printer *p, const relay_attr *a) {
  print_name(p, a->key);
  puts_(p, "=");
  print_attr_value(p, a);
}

/* [key=value, ...] of a function. */
static void print_fn_attrs(printer *p, int n, relay_attr *const *attrs) {
  puts_(p, "[");
  for (int i = 0; i < n; i++) {
    if (i) puts_(p, ", ");
    print_attr(p, attrs[i]);
  }
  puts_(p, "]");
}

/* Whether an op call's attribute has the schema's default value (then it is not printed). */
static bool attr_is_default(const relay_attr *a, const relay_attr_def *d) {
  if (a->attr_kind != d->kind || strcmp(a->key, d->key) != 0) return false;
  switch ((relay_attr_kind)a->attr_kind) {
  case RELAY_ATTR_INT: return a->i == d->i;
  case RELAY_ATTR_FLOAT: return memcmp(&a->f, &d->f, sizeof a->f) == 0;
  case RELAY_ATTR_STR: return strcmp(a->s, d->s ? d->s : "") == 0;
  case RELAY_ATTR_INTS:
    return a->nints == d->nints &&
           (a->nints == 0 || memcmp(a->ints, d->ints, sizeof(int64_t) * (size_t)a->nints) == 0);
  }
  return false;
}

/* One element of a constant (no suffix): true/false, an integer, or a float. */
static void print_elem(printer *p, const unsigned char *ptr, kiln_dtype t) {
  char b[64];
  switch (t.code) {
  case KILN_TYPE_BOOL:
    if (*ptr <= 1) puts_(p, *ptr ? "true" : "false");
    else ir_sb_printf(p->sb, "%u", (unsigned)*ptr);
    return;
  case KILN_TYPE_INT:
    ir_sb_printf(p->sb, "%lld", (long long)load_int(ptr, t.bits));
    return;
  case KILN_TYPE_UINT:
    ir_sb_printf(p->sb, "%llu", (unsigned long long)load_bits(ptr, t.bits / 8));
    return;
  default:
    format_float(b, sizeof b, ptr, t);
    puts_(p, b);
    return;
  }
}

/* A constant: a scalar literal (1, 2.5f32, -3i64, true) when it is 0-d and finite, otherwise
 * const(Tensor[...], [elements]) or, elided, const(Tensor[...], ...). */
static void print_const(printer *p, const relay_const *c) {
  const relay_tensor_type *tt = relay_as_tensor_type(c->type);
  kiln_dtype t = tt ? tt->h.dtype : KILN_VOID;
  char dt[32], suffix[16];
  if (!tt || !const_dtype_ok(t)) {
    print_fail(p, KILN_ERR_UNSUPPORTED, "cannot print a constant of type %s",
               tt ? kiln_dtype_str(t, dt, sizeof dt) : "other than a tensor");
    return;
  }
  size_t size = kiln_dtype_bytes(t);
  int64_t numel = (int64_t)c->nbytes / (int64_t)size;
  const unsigned char *data = c->data;
  if (tt->ndim == 0 && numel == 1) {
    bool finite = !ir_dt_is_float(t) || isfinite(load_float(data, t));
    if (t.code == KILN_TYPE_BOOL && *data <= 1) {
      puts_(p, *data ? "true" : "false");
      return;
    }
    if (t.code != KILN_TYPE_BOOL && finite) {
      print_elem(p, data, t);
      if (!(t.code == KILN_TYPE_INT && t.bits == 32)) puts_(p, ir_dtype_suffix(t, suffix, sizeof suffix));
      return;
    }
  }
  puts_(p, "const(");
  print_type(p, c->type);
  if (p->max_elems >= 0 && numel > p->max_elems) {
    puts_(p, ", ...)");
    return;
  }
  puts_(p, ", [");
  for (int64_t i = 0; i < numel && !p->sb->oom; i++) {
    if (i) puts_(p, ", ");
    print_elem(p, data + (size_t)i * size, t);
  }
  puts_(p, "])");
}

/* ---- Printer: the shape of the graph ------------------------------------------------------ */

/* How a node uses a child: in place (a let's value is marked: it may print inside the let
 * line), or as the tail of a scope it opens (a function or let body, an if's then branch:
 * the node's sub[0]; an else branch: sub[1]). */
enum { USE_PLAIN, USE_VALUE, USE_BODY, USE_ELSE };

/* Variables and globals print as their names wherever they are used; anything that is not a
 * Relay expression is reported where it is printed. */
static bool is_atomic(const ir_node *n) {
  return !relay_is_expr(n) || n->kind == RELAY_VAR || n->kind == RELAY_GLOBAL;
}

/* The i-th expression child of n (NULL past the last) and how n uses it. Variables at their
 * definitions (parameters, let variables) are not children: they print with the definer. */
static const ir_node *child_at(const ir_node *n, int i, int *use) {
  *use = USE_PLAIN;
  switch ((relay_kind)n->kind) {
  case RELAY_CALL: {
    const relay_call *c = (const relay_call *)n;
    if (c->fn) {
      if (i == 0) return c->fn;
      i--;
    }
    return i < c->nargs ? c->args[i] : NULL;
  }
  case RELAY_TUPLE: {
    const relay_tuple *t = (const relay_tuple *)n;
    return i < t->nfields ? t->fields[i] : NULL;
  }
  case RELAY_PROJ: return i == 0 ? ((const relay_proj *)n)->tuple : NULL;
  case RELAY_LET: {
    const relay_let *l = (const relay_let *)n;
    *use = i == 0 ? USE_VALUE : USE_BODY;
    if (i == 0) return l->value;
    return i == 1 ? l->body : NULL;
  }
  case RELAY_FUNC:
    *use = USE_BODY;
    return i == 0 ? ((const relay_func *)n)->body : NULL;
  case RELAY_IF: {
    const relay_if *x = (const relay_if *)n;
    if (i == 0) return x->cond;
    *use = i == 1 ? USE_BODY : USE_ELSE;
    return i == 1 ? x->then_branch : i == 2 ? x->else_branch : NULL;
  }
  case RELAY_TENSOR_TYPE:
  case RELAY_TUPLE_TYPE:
  case RELAY_FUNC_TYPE:
  case RELAY_ATTR:
  case RELAY_VAR:
  case RELAY_GLOBAL:
  case RELAY_CONST:
  case RELAY_KIND_BEFORE_FIRST:
  case RELAY_KIND_END: return NULL;
  }
  return NULL;
}

static int32_t info_of(const printer *p, const ir_node *n) {
  return (int32_t)(intptr_t)ir_ptrmap_get(&p->index, n) - 1;
}

static int32_t new_scope(printer *p, int32_t parent) {
  scope_info *s = grow(p, p->scopes, &p->scope_cap, sizeof *s, p->nscopes + 1);
  if (!s) return -1;
  p->scopes = s;
  int32_t k = (int32_t)p->nscopes++;
  s[k] = (scope_info){parent, parent < 0 ? 0 : s[parent].depth + 1, -1, -1};
  return k;
}

static int32_t add_node(printer *p, const ir_node *n) {
  node_info *info = grow(p, p->info, &p->info_cap, sizeof *info, p->ninfo + 1);
  if (!info) return -1;
  p->info = info;
  int32_t k = (int32_t)p->ninfo;
  if (ir_ptrmap_put(&p->index, n, (void *)(intptr_t)(k + 1))) {
    nomem(p);
    return -1;
  }
  p->ninfo++;
  info[k] = (node_info){n, 0, 0, 0, -1, {-1, -1}, -1, -1, 0, false};
  return k;
}

/* The innermost scope that encloses both a and b. */
static int32_t common_scope(const printer *p, int32_t a, int32_t b) {
  while (p->scopes[a].depth > p->scopes[b].depth) a = p->scopes[a].parent;
  while (p->scopes[b].depth > p->scopes[a].depth) b = p->scopes[b].parent;
  while (a != b) {
    a = p->scopes[a].parent;
    b = p->scopes[b].parent;
  }
  return a;
}

static bool is_scalar_const(const ir_node *n) {
  const relay_tensor_type *t = relay_as_tensor_type(((const relay_const *)n)->type);
  return t && t->ndim == 0;
}

/* Decides how the graph below `root` (a def's body, or a lone expression) prints:
 * 1. a depth-first walk (with an explicit stack: graphs are deep) numbers the nodes, counts
 *    each node's uses and lists the nodes in post order (children before their users);
 * 2. children first, each node is bound (gets a `%N = ...;` line) or printed inline;
 * 3. users first, each node gets the innermost scope enclosing all its uses, which is where
 *    its binding line goes (so it is visible at every use and at no wider place);
 * 4. each scope lists its binding lines in post order, which is an order of definition
 *    before use.
 * Scope 0 is the root's. False on allocation failure. */
static bool analyze(printer *p, const ir_node *root) {
  ir_ptrmap_free(&p->index);
  p->ninfo = p->npost = p->nscopes = 0;
  if (new_scope(p, -1) < 0) return false;
  if (is_atomic(root)) return true;
  int32_t r = add_node(p, root);
  if (r < 0) return false;
  p->info[r].uses = p->info[r].tail_uses = 1;
  p->info[r].scope = 0;

  dfs_frame *st = grow(p, p->stack, &p->stack_cap, sizeof *st, 1);
  if (!st) return false;
  p->stack = st;
  size_t sp = 0;
  st[sp++] = (dfs_frame){r, 0};
  while (sp) {
    dfs_frame *top = &p->stack[sp - 1];
    int use;
    const ir_node *c = child_at(p->info[top->node].n, top->child, &use);
    if (!c) {
      int32_t *post = grow(p, p->post, &p->post_cap, sizeof *post, p->npost + 1);
      if (!post) return false;
      p->post = post;
      post[p->npost++] = top->node;
      sp--;
      continue;
    }
    top->child++;
    if (is_atomic(c)) continue;
    int32_t k = info_of(p, c);
    if (k < 0) {
      if ((k = add_node(p, c)) < 0) return false;
      st = grow(p, p->stack, &p->stack_cap, sizeof *st, sp + 1);
      if (!st) return false;
      p->stack = st;
      st[sp++] = (dfs_frame){k, 0};
    }
    p->info[k].uses++;
    if (use == USE_VALUE) p->info[k].value_uses++;
    else if (use != USE_PLAIN) p->info[k].tail_uses++;
  }

  for (size_t i = 0; i < p->npost; i++) {
    node_info *x = &p->info[p->post[i]];
    bool bound = false, nests = false, value = x->uses == 1 && x->value_uses == 1;
    switch ((relay_kind)x->n->kind) {
    case RELAY_CONST: bound = x->uses > 1 || !is_scalar_const(x->n); break;
    case RELAY_CALL:
    case RELAY_FUNC: bound = !value; break;
    case RELAY_TUPLE:
    case RELAY_PROJ:
      bound = x->uses > 1;
      nests = true;
      break;
    case RELAY_IF:
    case RELAY_LET: bound = !value && (x->uses != 1 || x->tail_uses != 1); break;
    case RELAY_TENSOR_TYPE:
    case RELAY_TUPLE_TYPE:
    case RELAY_FUNC_TYPE:
    case RELAY_ATTR:
    case RELAY_VAR:
    case RELAY_GLOBAL:
    case RELAY_KIND_BEFORE_FIRST:
    case RELAY_KIND_END: break;
    }
    if (!bound && nests) {
      int32_t depth = 0;
      int use;
      const ir_node *c;
      for (int j = 0; (c = child_at(x->n, j, &use)) != NULL; j++) {
        if (is_atomic(c)) continue;
        const node_info *y = &p->info[info_of(p, c)];
        if (!y->bound && y->depth > depth) depth = y->depth;
      }
      x->depth = depth + 1;
      if (x->depth > MAX_INLINE_DEPTH) {
        bound = true;
        x->depth = 0;
      }
    }
    x->bound = bound;
  }

  for (size_t i = p->npost; i-- > 0;) {
    int32_t k = p->post[i];
    const ir_node *n = p->info[k].n;
    int32_t s = p->info[k].scope;
    if (n->kind == RELAY_FUNC || n->kind == RELAY_LET || n->kind == RELAY_IF) {
      int32_t a = new_scope(p, s);
      int32_t b = n->kind == RELAY_IF ? new_scope(p, s) : -1;
      if (a < 0 || (n->kind == RELAY_IF && b < 0)) return false;
      p->info[k].sub[0] = a;
      p->info[k].sub[1] = b;
    }
    int use;
    const ir_node *c;
    for (int j = 0; (c = child_at(n, j, &use)) != NULL; j++) {
      if (is_atomic(c)) continue;
      node_info *y = &p->info[info_of(p, c)];
      int32_t u = use == USE_PLAIN || use == USE_VALUE ? s
                  : use == USE_BODY ? p->info[k].sub[0] : p->info[k].sub[1];
      y->scope = y->scope < 0 ? u : common_scope(p, y->scope, u);
    }
  }

  for (size_t i = 0; i < p->npost; i++) {
    int32_t k = p->post[i];
    if (!p->info[k].bound) continue;
    scope_info *s = &p->scopes[p->info[k].scope];
    if (s->last >= 0) p->info[s->last].next = k;
    else s->first = k;
    s->last = k;
  }
  return true;
}

/* ---- Printer: expressions ------------------------------------------------------------------ */

static void print_ref(printer *p, const ir_node *n);
static void print_scope(printer *p, int32_t s, const ir_node *tail);

/* The type `@name` gets when parsed without an annotation: the type of the module's function
 * of that name if it is printed above the current def, else none. */
static const relay_type *derived_global_type(const printer *p, const char *name) {
  if (!p->mod) return NULL;
  for (int j = 0; j < p->def_index && j < p->mod->nfuncs; j++)
    if (strcmp(p->mod->names[j], name) == 0)
      return p->mod->funcs[j] ? relay_type_of(&p->mod->funcs[j]->h) : NULL;
  return NULL;
}

/* @name, or (@name: T) / (@name: ?) when the global's type is not the derived one. */
static void print_global(printer *p, const relay_global *g) {
  const relay_type *derived = derived_global_type(p, g->name);
  bool plain = g->type == derived;
  if (!plain && g->type && derived && !p->err) {
    /* equality reports running out of memory only on the context */
    ir_clear_error(p->ctx);
    plain = ir_structural_equal(p->ctx, g->type, derived);
    if (!plain && p->ctx->code == KILN_ERR_NOMEM) nomem(p);
  }
  if (!plain) puts_(p, "(");
  puts_(p, "@");
  print_name(p, g->name);
  if (plain) return;
  puts_(p, ": ");
  if (g->type) print_type(p, g->type);
  else puts_(p, "?");
  puts_(p, ")");
}

/* %name or %name: T at a variable's definition. */
static void print_var_def(printer *p, const relay_var *v) {
  puts_(p, "%");
  puts_(p, def_var_name(p, v));
  if (v->type) {
    puts_(p, ": ");
    print_type(p, v->type);
  }
}

static void print_params(printer *p, const relay_func *f) {
  puts_(p, "(");
  for (int i = 0; i < f->nparams; i++) {
    if (i) puts_(p, ", ");
    print_var_def(p, f->params[i]);
  }
  puts_(p, ")");
  if (f->ret_type) {
    puts_(p, " -> ");
    print_type(p, f->ret_type);
  }
}

/* fn [attrs] (params) -> ret { body }: the body's scope is `body`. */
static void print_func(printer *p, const relay_func *f, int32_t body) {
  puts_(p, "fn ");
  if (f->nattrs) {
    print_fn_attrs(p, f->nattrs, f->attrs);
    puts_(p, " ");
  }
  print_params(p, f);
  puts_(p, " {\n");
  p->indent++;
  print_scope(p, body, f->body);
  p->indent--;
  puts_(p, "\n");
  pad(p);
  puts_(p, "}");
}

/* op(args, key=value) with the non-default attributes, or callee(args). */
static void print_call(printer *p, const relay_call *c) {
  if (c->op) puts_(p, c->op);
  else print_ref(p, c->fn);
  puts_(p, "(");
  for (int i = 0; i < c->nargs; i++) {
    if (i) puts_(p, ", ");
    print_ref(p, c->args[i]);
  }
  const relay_op *op = c->op ? (c->opdef ? c->opdef : relay_op_lookup(c->op)) : NULL;
  bool normalized = op && op->nattrs == c->nattrs, first = c->nargs == 0;
  for (int j = 0; j < c->nattrs; j++) {
    if (normalized && attr_is_default(c->attrs[j], &op->attrs[j])) continue;
    if (!first) puts_(p, ", ");
    first = false;
    print_attr(p, c->attrs[j]);
  }
  puts_(p, ")");
}

static void print_if(printer *p, int32_t k) {
  const relay_if *x = (const relay_if *)p->info[k].n;
  puts_(p, "if (");
  print_ref(p, x->cond);
  puts_(p, ") {\n");
  p->indent++;
  print_scope(p, p->info[k].sub[0], x->then_branch);
  p->indent--;
  puts_(p, "\n");
  pad(p);
  puts_(p, "} else {\n");
  p->indent++;
  print_scope(p, p->info[k].sub[1], x->else_branch);
  p->indent--;
  puts_(p, "\n");
  pad(p);
  puts_(p, "}");
}

/* let %x[: T] = value; on its own line. */
static void print_let_line(printer *p, const relay_let *l) {
  pad(p);
  puts_(p, "let ");
  print_var_def(p, l->var);
  puts_(p, " = ");
  print_ref(p, l->value);
  puts_(p, ";\n");
}

/* The full form of node k: what follows `%N = ` on its binding line, or what prints in
 * place of an unbound node (a let's value, a tail if, an unshared tuple, projection or scalar
 * constant). A let here is a block expression; a let in tail position never gets here (it
 * continues its block, see print_scope). */
static void print_rhs(printer *p, const ir_node *n, int32_t k) {
  if (!enter_rec(p)) return;
  const node_info *x = k >= 0 ? &p->info[k] : NULL;
  switch ((relay_kind)n->kind) {
  case RELAY_CONST: print_const(p, (const relay_const *)n); break;
  case RELAY_TUPLE: {
    const relay_tuple *t = (const relay_tuple *)n;
    puts_(p, "(");
    for (int i = 0; i < t->nfields; i++) {
      if (i) puts_(p, ", ");
      print_ref(p, t->fields[i]);
    }
    puts_(p, t->nfields == 1 ? ",)" : ")");
    break;
  }
  case RELAY_PROJ:
    print_ref(p, ((const relay_proj *)n)->tuple);
    ir_sb_printf(p->sb, ".%d", (int)((const relay_proj *)n)->index);
    break;
  case RELAY_CALL: print_call(p, (const relay_call *)n); break;
  case RELAY_FUNC:
  case RELAY_IF:
  case RELAY_LET:
    if (!x) {
      print_fail(p, KILN_ERR_INTERNAL, "a %s node outside the printer's analysis", ir_kind_name(n->kind));
    } else if (n->kind == RELAY_FUNC) {
      print_func(p, (const relay_func *)n, x->sub[0]);
    } else if (n->kind == RELAY_IF) {
      print_if(p, k);
    } else {
      const relay_let *l = (const relay_let *)n;
      puts_(p, "{\n");
      p->indent++;
      print_let_line(p, l);
      print_scope(p, x->sub[0], l->body);
      p->indent--;
      puts_(p, "\n");
      pad(p);
      puts_(p, "}");
    }
    break;
  case RELAY_VAR:
  case RELAY_GLOBAL:
  case RELAY_TENSOR_TYPE:
  case RELAY_TUPLE_TYPE:
  case RELAY_FUNC_TYPE:
  case RELAY_ATTR:
  case RELAY_KIND_BEFORE_FIRST:
  case RELAY_KIND_END:
    print_fail(p, KILN_ERR_INTERNAL, "a %s node has no full form", ir_kind_name(n->kind));
    break;
  }
  leave_rec(p);
}

/* An expression where it is used: a name (variable, global, binding) or the node itself. */
static void print_ref(printer *p, const ir_node *n) {
  if (!relay_is_expr(n)) {
    print_fail(p, KILN_ERR_MISUSE, "a %s node where a Relay expression belongs",
               n ? ir_kind_name(n->kind) : "NULL");
    return;
  }
  if (n->kind == RELAY_VAR) {
    puts_(p, "%");
    puts_(p, use_var_name(p, (const relay_var *)n));
    return;
  }
  if (n->kind == RELAY_GLOBAL) {
    print_global(p, (const relay_global *)n);
    return;
  }
  int32_t k = info_of(p, n);
  if (k >= 0 && p->info[k].bound) {
    if (p->info[k].number < 0)
      print_fail(p, KILN_ERR_INTERNAL, "a %s node is used before its binding line",
                 ir_kind_name(n->kind));
    ir_sb_printf(p->sb, "%%%d", (int)p->info[k].number);
    return;
  }
  print_rhs(p, n, k);
}

/* %N = value; for bound node k, numbered in the order binding lines start. */
static void print_binding(printer *p, int32_t k) {
  pad(p);
  p->info[k].number = p->next_number++;
  ir_sb_printf(p->sb, "%%%d = ", (int)p->info[k].number);
  print_rhs(p, p->info[k].n, k);
  puts_(p, ";\n");
}

/* The lines of scope s: its binding lines, then its tail. A let in tail position continues
 * the same block: its line, then the lines of its body's scope (a loop: let chains are
 * long). The last line (the result) has no newline. */
static void print_scope(printer *p, int32_t s, const ir_node *tail) {
  if (!enter_rec(p)) return;
  for (;;) {
    for (int32_t k = p->scopes[s].first; k >= 0 && !p->err; k = p->info[k].next)
      print_binding(p, k);
    int32_t t = is_atomic(tail) ? -1 : info_of(p, tail);
    if (t >= 0 && !p->info[t].bound && tail->kind == RELAY_LET && !p->err) {
      const relay_let *l = (const relay_let *)tail;
      print_let_line(p, l);
      s = p->info[t].sub[0];
      tail = l->body;
      continue;
    }
    pad(p);
    print_ref(p, tail);
    break;
  }
  leave_rec(p);
}

/* ---- Printer: entry points --------------------------------------------------------------- */

static void printer_init(printer *p, kiln_context *ctx, ir_strbuf *sb, int64_t max_elems) {
  memset(p, 0, sizeof *p);
  p->ctx = ctx;
  p->sb = sb;
  p->max_elems = max_elems;
  ir_ptrmap_init(&p->dim_names, ctx);
  ir_ptrmap_init(&p->var_names, ctx);
  ir_ptrmap_init(&p->index, ctx);
  ir_nameset_init(&p->dim_taken, ctx);
  ir_nameset_init(&p->var_taken, ctx);
}

static kiln_status printer_finish(printer *p) {
  ir_ptrmap_free(&p->dim_names);
  ir_ptrmap_free(&p->var_names);
  ir_ptrmap_free(&p->index);
  ir_nameset_free(&p->dim_taken);
  ir_nameset_free(&p->var_taken);
  ir_arena_free(p->names);
  ir_free(p->ctx, p->info, p->info_cap * sizeof *p->info);
  ir_free(p->ctx, p->post, p->post_cap * sizeof *p->post);
  ir_free(p->ctx, p->scopes, p->scope_cap * sizeof *p->scopes);
  ir_free(p->ctx, p->stack, p->stack_cap * sizeof *p->stack);
  if (!p->err && p->sb->oom)
    return ir_fail(p->ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "out of memory printing Relay");
  return p->err;
}

/* def @name [attrs] (params) -> ret { body } */
static void print_def(printer *p, const char *name, const relay_func *f, int index) {
  ir_ptrmap_free(&p->var_names);
  ir_nameset_free(&p->var_taken);
  p->next_number = 0;
  p->def_index = index;
  if (!analyze(p, f->body)) return;
  puts_(p, "def @");
  print_name(p, name);
  if (f->nattrs) {
    puts_(p, " ");
    print_fn_attrs(p, f->nattrs, f->attrs);
    puts_(p, " ");
  }
  print_params(p, f);
  puts_(p, " {\n");
  p->indent = 1;
  print_scope(p, 0, f->body);
  p->indent = 0;
  puts_(p, "\n}\n");
}

kiln_status relay_print_module_opts(const relay_module *m, ir_strbuf *sb,
                                    int64_t max_const_elems) {
  if (!m || !sb)
    return ir_fail(m ? m->ctx : sb ? sb->ctx : NULL, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "relay_print_module: NULL argument");
  printer p;
  printer_init(&p, m->ctx, sb, max_const_elems);
  p.mod = m;
  for (int i = 0; i < m->nfuncs && !p.err; i++) {
    if (!m->funcs[i] || m->funcs[i]->h.kind != RELAY_FUNC) {
      print_fail(&p, KILN_ERR_MISUSE, "module function @%s is not a function", m->names[i]);
      break;
    }
    if (i) puts_(&p, "\n");
    print_def(&p, m->names[i], m->funcs[i], i);
  }
  return printer_finish(&p);
}

kiln_status relay_print_module(const relay_module *m, ir_strbuf *sb) {
  return relay_print_module_opts(m, sb, -1);
}

kiln_status relay_print_expr_opts(kiln_context *ctx, const relay_expr *e, ir_strbuf *sb,
                                  int64_t max_const_elems) {
  if (!ctx || !e || !sb) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "relay_print_expr: NULL argument");
  printer p;
  printer_init(&p, ctx, sb, max_const_elems);
  if (relay_is_type(e)) {
    print_type(&p, e);
  } else if (e->kind == RELAY_ATTR) {
    print_attr(&p, (const relay_attr *)e);
  } else if (e->kind == RELAY_FUNC) {
    const relay_func *f = (const relay_func *)e;
    if (analyze(&p, f->body)) print_func(&p, f, 0);
  } else if (relay_is_expr(e)) {
    if (analyze(&p, e)) print_scope(&p, 0, e);
  } else {
    print_fail(&p, KILN_ERR_MISUSE, "relay_print_expr: a %s node is not a Relay expression",
               ir_kind_name(e->kind));
  }
  return printer_finish(&p);
}

kiln_status relay_print_expr(kiln_context *ctx, const relay_expr *e, ir_strbuf *sb) {
  return relay_print_expr_opts(ctx, e, sb, -1);
}

char *relay_module_to_string(const relay_module *m) {
  if (!m) return NULL;
  ir_strbuf sb;
  ir_sb_init(&sb, m->ctx);
  if (relay_print_module(m, &sb)) {
    ir_sb_free(&sb);
    return NULL;
  }
  return ir_sb_take(&sb, NULL);
}

char *relay_expr_to_string(kiln_context *ctx, const relay_expr *e) {
  if (!ctx) return NULL;
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  if (relay_print_expr(ctx, e, &sb)) {
    ir_sb_free(&sb);
    return NULL;
  }
  return ir_sb_take(&sb, NULL);
}

/* ---- Parser: tokens and state ---------------------------------------------------------------- */

typedef enum tok_kind {
  T_EOF, T_IDENT, T_NUM, T_STR, T_LOCAL,
  /* punctuators */
  T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_LBRACE, T_RBRACE, T_COMMA, T_COLON, T_SEMI, T_AT,
  T_ASSIGN, T_ARROW, T_DOT, T_ELLIPSIS, T_QUESTION, T_PLUS, T_MINUS, T_STAR, T_SLASH,
  T_SLASH2 /* // */, T_PERCENT, T_PERCENT2 /* %% */
} tok_kind;

/* Punctuators, longest first so that the longest match wins. */
static const struct {
  const char *s;
  int kind;
} puncts[] = {
    {"...", T_ELLIPSIS}, {"->", T_ARROW}, {"//", T_SLASH2}, {"%%", T_PERCENT2},
    {"(", T_LPAREN},     {")", T_RPAREN}, {"[", T_LBRACK},  {"]", T_RBRACK},
    {"{", T_LBRACE},     {"}", T_RBRACE}, {",", T_COMMA},   {":", T_COLON},
    {";", T_SEMI},       {"@", T_AT},     {"=", T_ASSIGN},  {".", T_DOT},
    {"?", T_QUESTION},   {"+", T_PLUS},   {"-", T_MINUS},   {"*", T_STAR},
    {"/", T_SLASH},      {"%", T_PERCENT},
};

/* How messages name a token kind: 'x' for punctuators, words for the token classes. */
static const char *tok_spelling(int kind) {
  switch (kind) {
  case T_EOF: return "end of input";
  case T_IDENT: return "a name";
  case T_NUM: return "a number";
  case T_STR: return "a string";
  case T_LOCAL: return "a %name";
  }
  for (size_t i = 0; i < sizeof puncts / sizeof puncts[0]; i++)
    if (puncts[i].kind == kind) return puncts[i].s;
  return "?";
}

typedef struct token {
  int kind;        /* tok_kind */
  const char *s;   /* the token's text in the source (T_LOCAL: with its '%') */
  size_t len;
  ir_span span;
  const char *str; /* T_STR: the decoded value, NUL-terminated, in the scratch arena */
} token;

/* The name table: every visible name (parameters, let variables, bindings) as a stack of
 * entries, and a hash table from a name to its innermost entry. A block records the stack
 * height where it starts and pops back to it at its end; each entry remembers the entry of
 * the same name it shadows, so popping restores it. Memory from the context. */
typedef struct name_entry {
  const char *s; /* in the source text */
  size_t len;
  ir_node *node;
  int32_t prev;  /* the shadowed entry of the same name, or -1 */
} name_entry;

typedef struct name_slot {
  const char *s; /* NULL: empty slot */
  size_t len;
  int32_t top;   /* the innermost live entry of this name, or -1 */
} name_slot;

/* A growable list of pointers in the scratch arena. */
typedef struct vec {
  void **items;
  int n, cap;
} vec;

/* A growable byte buffer in the scratch arena (constant data, integer lists). */
typedef struct bytes {
  unsigned char *data;
  size_t n, cap;
} bytes;

/* A global referenced before its function is defined: checked at the end of the module. */
typedef struct global_ref {
  const char *name;
  ir_span span;
} global_ref;

typedef struct parser {
  kiln_context *ctx;
  ir_lexer lx;        /* the source, where lexing continues (just after tok), the error exit */
  token tok;          /* the current token */
  bool after_dot;     /* the previous token was '.': digits now form a tuple index */
  relay_module *mod;
  ir_arena *arena;    /* the module's: where the nodes go */
  ir_arena *scratch;  /* names, lists, decoded strings: freed after parsing */
  name_entry *entries;
  size_t nentries, entry_cap;
  name_slot *slots;
  size_t nslots, slot_cap;
  vec refs;           /* global_ref */
  int nesting;        /* recursion depth */
  int ddepth;         /* tree depth of the dimension the last dimension rule returned */
} parser;

/* Records an error at sp and unwinds to the parser's entry (see ir/lex.h). */
#define fail_at(p, ...) ir_lex_fail(&(p)->lx, __VA_ARGS__)

/* A constructor or an allocation returned NULL after recording its error on the context
 * (constructors with the position the parser put in arena->span). */
static _Noreturn void fail_ctx(parser *p) { ir_lex_fail_ctx(&p->lx, p->tok.span); }

static void *need(parser *p, void *x) {
  if (!x) fail_ctx(p);
  return x;
}

/* Runs fn with the parser's error exit set up. Nothing in this frame changes after setjmp,
 * so returning through longjmp is well defined. */
static kiln_status guarded(parser *p, void (*fn)(parser *)) {
  if (setjmp(p->lx.jmp)) return p->lx.status;
  fn(p);
  return KILN_OK;
}

static void enter(parser *p) {
  if (++p->nesting > MAX_NESTING)
    fail_at(p, p->tok.span, KILN_ERR_PARSE, "nesting too deep (more than %d levels)", MAX_NESTING);
}

static void leave(parser *p) { p->nesting--; }

static void vec_push(parser *p, vec *v, void *x) {
  if (v->n == v->cap) {
    if (v->cap >= (1 << 26))
      fail_at(p, p->tok.span, KILN_ERR_UNSUPPORTED, "too many items in one list");
    int cap = v->cap ? v->cap * 2 : 8;
    void **items = need(p, ir_arena_alloc(p->scratch, sizeof(void *) * (size_t)cap));
    if (v->n) memcpy(items, v->items, sizeof(void *) * (size_t)v->n);
    v->items = items;
    v->cap = cap;
  }
  v->items[v->n++] = x;
}

/* Room for `size` more bytes at the end of b (aligned to size, a power of two <= 8). */
static unsigned char *bytes_add(parser *p, bytes *b, size_t size) {
  if (b->n + size > b->cap) {
    if (b->cap >= ((size_t)1 << 40))
      fail_at(p, p->tok.span, KILN_ERR_UNSUPPORTED, "a constant too large to parse");
    size_t cap = b->cap ? b->cap * 2 : 64;
    unsigned char *data = need(p, ir_arena_alloc(p->scratch, cap));
    if (b->n) memcpy(data, b->data, b->n);
    b->data = data;
    b->cap = cap;
  }
  unsigned char *at = b->data + b->n;
  b->n += size;
  return at;
}

/* ---- Parser: lexer ----------------------------------------------------------------------- */

/* The lexer basics (spaces, comments, strings, numbers, positions) are in ir/lex.c. */

/* Moves to the next token. */
static void next(parser *p) {
  bool after_dot = p->after_dot;
  p->after_dot = false;
  ir_lex_skip_space(&p->lx);
  token *t = &p->tok;
  t->span = ir_lex_span(&p->lx, p->lx.pos);
  t->s = p->lx.src + p->lx.pos;
  t->str = NULL;
  size_t start = p->lx.pos;
  unsigned char c = p->lx.pos < p->lx.len ? (unsigned char)p->lx.src[p->lx.pos] : 0;
  if (p->lx.pos >= p->lx.len) {
    t->kind = T_EOF;
  } else if (ir_is_ident_start(c)) {
    /* parts of letters, digits and '_' joined by single dots: nn.conv2d */
    for (;;) {
      while (p->lx.pos < p->lx.len && ir_is_ident_char((unsigned char)p->lx.src[p->lx.pos])) p->lx.pos++;
      if (p->lx.pos + 1 < p->lx.len && p->lx.src[p->lx.pos] == '.' &&
          ir_is_ident_start((unsigned char)p->lx.src[p->lx.pos + 1])) {
        p->lx.pos++;
        continue;
      }
      break;
    }
    t->kind = T_IDENT;
  } else if (ir_is_digit(c)) {
    /* right after a '.', only digits: `%0.1.0` is two projections, not a projection by 1.0 */
    ir_lex_number(&p->lx, after_dot ? 0 : IR_NUM_HEX | IR_NUM_FRACTION);
    t->kind = T_NUM;
  } else if (c == '"') {
    t->str = ir_lex_string(&p->lx, p->scratch, t->span);
    t->kind = T_STR;
  } else if (c == '%' && p->lx.pos + 1 < p->lx.len && ir_is_ident_char((unsigned char)p->lx.src[p->lx.pos + 1])) {
    p->lx.pos++;
    while (p->lx.pos < p->lx.len && ir_is_ident_char((unsigned char)p->lx.src[p->lx.pos])) p->lx.pos++;
    t->kind = T_LOCAL;
  } else {
    size_t i = 0, rest = p->lx.len - p->lx.pos;
    for (; i < sizeof puncts / sizeof puncts[0]; i++) {
      size_t n = strlen(puncts[i].s);
      if (n <= rest && memcmp(p->lx.src + p->lx.pos, puncts[i].s, n) == 0) break;
    }
    if (i == sizeof puncts / sizeof puncts[0]) {
      if (c > 0x20 && c < 0x7f) fail_at(p, t->span, KILN_ERR_PARSE, "unexpected character '%c'", c);
      fail_at(p, t->span, KILN_ERR_PARSE, "unexpected byte 0x%02x", c);
    }
    t->kind = puncts[i].kind;
    p->lx.pos += strlen(puncts[i].s);
    p->after_dot = t->kind == T_DOT;
  }
  t->len = p->lx.pos - start;
}

/* The kind of the token after the current one. */
static int peek(parser *p) {
  size_t pos = p->lx.pos, line_start = p->lx.line_start;
  uint32_t line = p->lx.line;
  bool after_dot = p->after_dot;
  token saved = p->tok;
  next(p);
  int kind = p->tok.kind;
  p->lx.pos = pos;
  p->lx.line = line;
  p->lx.line_start = line_start;
  p->after_dot = after_dot;
  p->tok = saved;
  return kind;
}

/* The token as messages show it: 'text', a string, or end of input. */
static const char *describe(const token *t, char *buf, size_t cap) {
  if (t->kind == T_EOF) return "end of input";
  if (t->kind == T_STR) return "a string";
  if (t->len > 40) snprintf(buf, cap, "'%.40s...'", t->s);
  else snprintf(buf, cap, "'%.*s'", (int)t->len, t->s);
  return buf;
}

static bool at(parser *p, int kind) { return p->tok.kind == kind; }

static bool at_kw(parser *p, const char *word) {
  const token *t = &p->tok;
  return t->kind == T_IDENT && t->len == strlen(word) && memcmp(t->s, word, t->len) == 0;
}

static bool accept(parser *p, int kind) {
  if (!at(p, kind)) return false;
  next(p);
  return true;
}

/* Fails with "expected WHAT, found 'X'" at the current token. */
static _Noreturn void fail_expected(parser *p, const char *what) {
  char b[64];
  fail_at(p, p->tok.span, KILN_ERR_PARSE, "expected %s, found %s", what, describe(&p->tok, b, sizeof b));
}

/* Consumes a token of the given kind or fails with "expected 'X' WHERE, found 'Y'". */
static token expect(parser *p, int kind, const char *where) {
  if (!at(p, kind)) {
    char b[64];
    const char *q = kind <= T_LOCAL ? "" : "'"; /* quote punctuators, not "a string" */
    fail_at(p, p->tok.span, KILN_ERR_PARSE, "expected %s%s%s %s, found %s", q, tok_spelling(kind),
            q, where, describe(&p->tok, b, sizeof b));
  }
  token t = p->tok;
  next(p);
  return t;
}

static void expect_kw(parser *p, const char *word, const char *where) {
  if (!at_kw(p, word)) {
    char b[64];
    fail_at(p, p->tok.span, KILN_ERR_PARSE, "expected '%s' %s, found %s", word, where,
            describe(&p->tok, b, sizeof b));
  }
  next(p);
}

/* ---- Parser: names --------------------------------------------------------------------------- */

static uint64_t hash_name(const char *s, size_t len) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

/* The slot of a name: the one holding it, or the empty slot where it would go. */
static name_slot *find_slot(const parser *p, const char *s, size_t len) {
  for (size_t i = hash_name(s, len) & (p->slot_cap - 1);; i = (i + 1) & (p->slot_cap - 1)) {
    name_slot *q = &p->slots[i];
    if (!q->s || (q->len == len && memcmp(q->s, s, len) == 0)) return q;
  }
}

/* Makes the name of token t (a LOCAL, without its '%') refer to node until its block ends. */
static void push_name(parser *p, const token *t, ir_node *node) {
  const char *s = t->s + 1;
  size_t len = t->len - 1;
  if ((p->nslots + 1) * 2 > p->slot_cap) {
    size_t cap = p->slot_cap ? p->slot_cap * 2 : 64;
    name_slot *slots = need(p, ir_malloc(p->ctx, cap * sizeof *slots));
    memset(slots, 0, cap * sizeof *slots);
    name_slot *old = p->slots;
    size_t old_cap = p->slot_cap;
    p->slots = slots;
    p->slot_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
      if (old[i].s) *find_slot(p, old[i].s, old[i].len) = old[i];
    ir_free(p->ctx, old, old_cap * sizeof *old);
  }
  if (p->nentries == p->entry_cap) {
    size_t cap = p->entry_cap ? p->entry_cap * 2 : 64;
    if (cap > INT32_MAX) fail_at(p, t->span, KILN_ERR_UNSUPPORTED, "too many names");
    p->entries = need(p, ir_realloc(p->ctx, p->entries, p->entry_cap * sizeof *p->entries,
                                    cap * sizeof *p->entries));
    p->entry_cap = cap;
  }
  name_slot *q = find_slot(p, s, len);
  if (!q->s) {
    q->s = s;
    q->len = len;
    q->top = -1;
    p->nslots++;
  }
  p->entries[p->nentries] = (name_entry){s, len, node, q->top};
  q->top = (int32_t)p->nentries++;
}

/* Ends the scope of every name defined since the stack had `mark` entries. */
static void pop_names(parser *p, size_t mark) {
  while (p->nentries > mark) {
    const name_entry *e = &p->entries[--p->nentries];
    find_slot(p, e->s, e->len)->top = e->prev;
  }
}

static ir_node *lookup(parser *p, const token *t) {
  if (!p->slot_cap) return NULL;
  const name_slot *q = find_slot(p, t->s + 1, t->len - 1);
  return q->s && q->top >= 0 ? p->entries[q->top].node : NULL;
}

/* A NUL-terminated copy of a token's text in the scratch arena. */
static char *tok_str(parser *p, const char *s, size_t len) {
  return need(p, ir_arena_strndup(p->scratch, s, len));
}

/* ---- Parser: numbers ------------------------------------------------------------------------ */

/* A NUMBER token taken apart. */
typedef struct number {
  bool is_float;  /* has a '.' or an exponent */
  bool hex;
  bool overflow;  /* an integer above UINT64_MAX */
  uint64_t mag;   /* the integer's value */
  char text[80];  /* the numeric part (without suffix), for strtod */
  const char *suffix;
  size_t suffix_len;
} number;

static void decode_number(parser *p, const token *t, number *nb) {
  memset(nb, 0, sizeof *nb);
  const char *s = t->s;
  size_t n = t->len, i = 0;
  if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    nb->hex = true;
    if (n == 2) fail_at(p, t->span, KILN_ERR_PARSE, "expected hex digits after '0x'");
    for (i = 2; i < n; i++) {
      int h = ir_hex_value((unsigned char)s[i]);
      if (h < 0)
        fail_at(p, t->span, KILN_ERR_PARSE, "unexpected '%c' in the hex number '%.*s'", s[i],
                (int)(n > 40 ? 40 : n), s);
      if (nb->mag >> 60) nb->overflow = true;
      nb->mag = nb->mag * 16 + (uint64_t)h;
    }
    nb->suffix = s + n;
    return;
  }
  while (i < n && ir_is_digit((unsigned char)s[i])) i++;
  if (i < n && s[i] == '.') {
    nb->is_float = true;
    i++;
    while (i < n && ir_is_digit((unsigned char)s[i])) i++;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < n && (s[j] == '+' || s[j] == '-')) j++;
    if (j < n && ir_is_digit((unsigned char)s[j])) {
      nb->is_float = true;
      for (i = j; i < n && ir_is_digit((unsigned char)s[i]);) i++;
    }
  }
  if (i >= sizeof nb->text) fail_at(p, t->span, KILN_ERR_PARSE, "number too long (%zu characters)", i);
  memcpy(nb->text, s, i);
  nb->text[i] = 0;
  nb->suffix = s + i;
  nb->suffix_len = n - i;
  if (!nb->is_float)
    for (size_t k = 0; k < i; k++) {
      uint64_t d = (uint64_t)(s[k] - '0');
      if (nb->mag > (UINT64_MAX - d) / 10) nb->overflow = true;
      nb->mag = nb->mag * 10 + d;
    }
}

/* The dtype a literal suffix names: i8 .. u64, f16, bf16, f32 (or f), f64 (the spellings
 * kiln_dtype_parse knows); false for anything else. */
static bool suffix_dtype(const char *s, size_t len, kiln_dtype *t) {
  if (len == 1 && s[0] == 'f') {
    *t = KILN_FLOAT32;
    return true;
  }
  return kiln_dtype_parse(s, len, t) == KILN_OK && t->lanes == 1 &&
         (ir_dt_is_int(*t) || ir_dt_is_float(*t));
}

/* Stores an integer (tok, with '-' when neg; the literal starts at sp) as an element of
 * integer or bool dtype t, checking that it fits. */
static void store_int(parser *p, ir_span sp, const token *tok, const number *nb, bool neg,
                      kiln_dtype t, unsigned char *out) {
  char dt[32];
  kiln_dtype_str(t, dt, sizeof dt);
  int len = (int)(tok->len > 40 ? 40 : tok->len);
  if (nb->is_float)
    fail_at(p, sp, KILN_ERR_PARSE, "expected an integer for %s, found '%s%.*s'", dt,
            neg ? "-" : "", len, tok->s);
  bool is_signed = t.code == KILN_TYPE_INT;
  int bits = t.code == KILN_TYPE_BOOL ? 8 : t.bits;
  uint64_t limit = is_signed ? (neg ? 1ull << (bits - 1) : (1ull << (bits - 1)) - 1)
                   : bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
  if (nb->overflow || nb->mag > limit || (!is_signed && neg && nb->mag != 0))
    fail_at(p, sp, KILN_ERR_PARSE, "%s%.*s does not fit in %s", neg ? "-" : "", len, tok->s, dt);
  uint64_t v = neg ? 0 - nb->mag : nb->mag; /* two's complement; store_bits keeps the low bytes */
  store_bits(out, kiln_dtype_bytes(t), v);
}

/* Stores a number (starting at sp) as an element of float dtype t (rounded to nearest). */
static void store_float_num(parser *p, ir_span sp, const token *tok, const number *nb, bool neg,
                            kiln_dtype t, unsigned char *out) {
  char dt[32];
  kiln_dtype_str(t, dt, sizeof dt);
  int len = (int)(tok->len > 40 ? 40 : tok->len);
  double d;
  if (nb->hex ? nb->overflow : !ir_text_to_double(nb->text, &d))
    fail_at(p, sp, KILN_ERR_PARSE, "%s%.*s is out of range", neg ? "-" : "", len, tok->s);
  if (nb->hex) d = (double)nb->mag;
  if (neg) d = -d;
  if (!store_float(d, t, out))
    fail_at(p, sp, KILN_ERR_PARSE, "%s%.*s is out of range for %s", neg ? "-" : "", len,
            tok->s, dt);
}

/* nan_value = "nan" ["(" NUMBER ")"]: the canonical NaN of float dtype t, or the NaN with
 * the given bits (the current token is `nan`). */
static void parse_nan(parser *p, kiln_dtype t, unsigned char *out) {
  size_t size = kiln_dtype_bytes(t);
  next(p);
  if (!accept(p, T_LPAREN)) {
    store_bits(out, size, canonical_nan(t));
    return;
  }
  token tok = p->tok;
  if (!at(p, T_NUM)) fail_expected(p, "the bits of a NaN (a hex number)");
  number nb;
  decode_number(p, &tok, &nb);
  char dt[32];
  kiln_dtype_str(t, dt, sizeof dt);
  bool fits = !nb.overflow && (size == 8 || nb.mag >> (8 * size) == 0);
  if (nb.is_float || nb.suffix_len || !fits)
    fail_at(p, tok.span, KILN_ERR_PARSE, "nan(...) takes the bits of a %s NaN, found '%.*s'", dt,
            (int)(tok.len > 40 ? 40 : tok.len), tok.s);
  elem_buf e = {0};
  store_bits(e.b, size, nb.mag);
  if (!isnan(load_float(e.b, t)))
    fail_at(p, tok.span, KILN_ERR_PARSE, "0x%llx are not the bits of a %s NaN",
            (unsigned long long)nb.mag, dt);
  memcpy(out, e.b, size);
  next(p);
  expect(p, T_RPAREN, "after the bits of a NaN");
}

/* elem = ["-"] NUMBER | ["-"] "inf" | "nan" ["(" NUMBER ")"] | "true" | "false"
 * One element of dtype t, written to out. */
static void parse_elem(parser *p, kiln_dtype t, unsigned char *out) {
  char dt[32];
  kiln_dtype_str(t, dt, sizeof dt);
  if (t.code == KILN_TYPE_BOOL && (at_kw(p, "true") || at_kw(p, "false"))) {
    *out = at_kw(p, "true");
    next(p);
    return;
  }
  ir_span sp = p->tok.span;
  bool neg = accept(p, T_MINUS);
  bool is_float = ir_dt_is_float(t);
  if (is_float && at_kw(p, "inf")) {
    store_float(neg ? -INFINITY : INFINITY, t, out);
    next(p);
    return;
  }
  if (is_float && !neg && at_kw(p, "nan")) {
    parse_nan(p, t, out);
    return;
  }
  token tok = p->tok;
  if (!at(p, T_NUM)) {
    char what[64];
    snprintf(what, sizeof what, "an element of type %s", dt);
    fail_expected(p, what);
  }
  number nb;
  decode_number(p, &tok, &nb);
  kiln_dtype st;
  if (nb.suffix_len && (!suffix_dtype(nb.suffix, nb.suffix_len, &st) || !ir_dt_eq(st, t)))
    fail_at(p, tok.span, KILN_ERR_PARSE, "the suffix '%.*s' does not match the constant's dtype %s",
            (int)(nb.suffix_len > 16 ? 16 : nb.suffix_len), nb.suffix, dt);
  if (is_float) store_float_num(p, sp, &tok, &nb, neg, t, out);
  else store_int(p, sp, &tok, &nb, neg, t, out);
  next(p);
}

/* The int64 value of an integer token (attributes and dimensions) starting at sp. */
static int64_t int64_value(parser *p, ir_span sp, const token *tok, const number *nb, bool neg) {
  elem_buf e = {0};
  store_int(p, sp, tok, nb, neg, KILN_INT64, e.b);
  return (int64_t)e.u;
}

/* ---- Parser: attributes ----------------------------------------------------------------------- */

static const char *const attr_kind_names[] = {"an integer", "a float", "a string", "a list of integers"};

/* attr = (IDENT | STRING) "=" attr_value
 * attr_value = int | float | STRING | "[" [int ("," int)*] "]"
 * The kind follows the spelling: a number with '.' or an exponent (or inf, nan) is a float. */
static relay_attr *parse_attr(parser *p, ir_span *value_span) {
  ir_span key_span = p->tok.span;
  const char *key;
  if (at(p, T_IDENT)) key = tok_str(p, p->tok.s, p->tok.len);
  else if (at(p, T_STR)) key = p->tok.str;
  else fail_expected(p, "an attribute name");
  next(p);
  expect(p, T_ASSIGN, "after an attribute name");
  *value_span = p->tok.span;
  p->arena->span = key_span;
  if (at(p, T_STR)) {
    relay_attr *a = need(p, relay_attr_str(p->arena, key, p->tok.str));
    next(p);
    return a;
  }
  if (accept(p, T_LBRACK)) {
    bytes ints = {0};
    int n = 0;
    if (!accept(p, T_RBRACK)) {
      for (;;) {
        ir_span sp = p->tok.span;
        bool neg = accept(p, T_MINUS);
        token tok = p->tok;
        if (!at(p, T_NUM)) fail_expected(p, "an integer in the list");
        number nb;
        decode_number(p, &tok, &nb);
        if (nb.suffix_len) fail_at(p, tok.span, KILN_ERR_PARSE, "an attribute value takes no type suffix");
        int64_t v = int64_value(p, sp, &tok, &nb, neg);
        memcpy(bytes_add(p, &ints, sizeof v), &v, sizeof v);
        if (++n > (1 << 24)) fail_at(p, tok.span, KILN_ERR_UNSUPPORTED, "too many integers in one list");
        next(p);
        if (accept(p, T_COMMA)) continue;
        expect(p, T_RBRACK, "at the end of an integer list");
        break;
      }
    }
    return need(p, relay_attr_ints(p->arena, key, n, (const int64_t *)(void *)ints.data));
  }
  ir_span sp = p->tok.span;
  bool neg = accept(p, T_MINUS);
  elem_buf e = {0};
  if (at_kw(p, "inf")) {
    next(p);
    return need(p, relay_attr_float(p->arena, key, neg ? -INFINITY : INFINITY));
  }
  if (!neg && at_kw(p, "nan")) {
    parse_nan(p, KILN_FLOAT64, e.b);
    return need(p, relay_attr_float(p->arena, key, e.d));
  }
  token tok = p->tok;
  if (!at(p, T_NUM)) fail_expected(p, "an attribute value (a number, a string or a list of integers)");
  number nb;
  decode_number(p, &tok, &nb);
  if (nb.suffix_len) fail_at(p, tok.span, KILN_ERR_PARSE, "an attribute value takes no type suffix");
  relay_attr *a;
  if (nb.is_float) {
    store_float_num(p, sp, &tok, &nb, neg, KILN_FLOAT64, e.b);
    a = need(p, relay_attr_float(p->arena, key, e.d));
  } else {
    a = need(p, relay_attr_int(p->arena, key, int64_value(p, sp, &tok, &nb, neg)));
  }
  next(p);
  return a;
}

/* fn_attrs = "[" [attr ("," attr)*] "]" */
static void parse_fn_attrs(parser *p, vec *attrs) {
  expect(p, T_LBRACK, "before function attributes");
  if (accept(p, T_RBRACK)) return;
  for (;;) {
    ir_span value_span;
    vec_push(p, attrs, parse_attr(p, &value_span));
    if (accept(p, T_COMMA)) continue;
    expect(p, T_RBRACK, "at the end of the function attributes");
    return;
  }
}

/* Checks an attribute of a call of op against the op's schema, with the position of the key
 * or value (relay_call_op would report the same at the call). seen: the schema entries
 * given so far. */
static void check_op_attr(parser *p, const relay_op *op, const relay_attr *a, ir_span key_span,
                          ir_span value_span, bool *seen) {
  int j = 0;
  while (j < op->nattrs && strcmp(op->attrs[j].key, a->key) != 0) j++;
  if (j == op->nattrs) {
    char known[256] = "";
    size_t used = 0;
    for (int k = 0; k < op->nattrs && used < sizeof known; k++)
      used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", k ? ", " : "", op->attrs[k].key);
    fail_at(p, key_span, KILN_ERR_TYPE, "%s has no attribute '%s' (%s%s)", op->name, a->key,
            op->nattrs ? "it has " : "it has none", known);
  }
  int want = op->attrs[j].kind, got = a->attr_kind;
  if (want != got && !(want == RELAY_ATTR_FLOAT && got == RELAY_ATTR_INT))
    fail_at(p, value_span, KILN_ERR_TYPE, "%s: attribute '%s' must be %s, not %s", op->name,
            a->key, attr_kind_names[want], attr_kind_names[got]);
  if (j < 64) {
    if (seen[j]) fail_at(p, key_span, KILN_ERR_PARSE, "%s: attribute '%s' is given twice", op->name, a->key);
    seen[j] = true;
  }
}

/* ---- Parser: types and dimensions ------------------------------------------------------------ */

static ir_expr *parse_dim(parser *p);

/* A binary dimension node over x (tree depth dx) and y (dy); sets p->ddepth. */
static ir_expr *dim_binop(parser *p, int kind, ir_expr *x, int dx, ir_expr *y, int dy, ir_span sp) {
  int depth = 1 + (dx > dy ? dx : dy);
  if (depth > MAX_DIM_DEPTH)
    fail_at(p, sp, KILN_ERR_PARSE, "dimension expression nested too deeply (more than %d levels)",
            MAX_DIM_DEPTH);
  p->arena->span = sp;
  ir_expr *e = need(p, ir_binop(p->arena, kind, x, y));
  p->ddepth = depth;
  return e;
}

/* An int64 number (the current token), negated when neg. */
static ir_expr *dim_number(parser *p, bool neg, ir_span sp) {
  token tok = p->tok;
  number nb;
  decode_number(p, &tok, &nb);
  int len = (int)(tok.len > 40 ? 40 : tok.len);
  if (nb.is_float)
    fail_at(p, tok.span, KILN_ERR_PARSE, "a dimension is an integer, found '%.*s'", len, tok.s);
  if (nb.suffix_len && !(nb.suffix_len == 3 && memcmp(nb.suffix, "i64", 3) == 0))
    fail_at(p, tok.span, KILN_ERR_PARSE, "a dimension is an int64 number, found '%.*s'", len, tok.s);
  int64_t v = int64_value(p, sp, &tok, &nb, neg);
  next(p);
  p->arena->span = sp;
  p->ddepth = 1;
  return need(p, ir_int(p->arena, KILN_INT64, v));
}

/* dim_unary = "-" dim_unary | NUMBER | "(" dim ")" | ("min" | "max") "(" dim "," dim ")" | IDENT */
static ir_expr *parse_dim_unary(parser *p) {
  ir_span sp = p->tok.span;
  if (accept(p, T_MINUS)) {
    if (at(p, T_NUM)) return dim_number(p, true, sp);
    enter(p);
    ir_expr *x = parse_dim_unary(p);
    leave(p);
    p->arena->span = sp;
    ir_expr *zero = need(p, ir_int(p->arena, KILN_INT64, 0));
    return dim_binop(p, IR_SUB, zero, 1, x, p->ddepth, sp);
  }
  if (at(p, T_NUM)) return dim_number(p, false, sp);
  if (accept(p, T_LPAREN)) {
    enter(p);
    ir_expr *e = parse_dim(p);
    leave(p);
    expect(p, T_RPAREN, "after a parenthesized dimension");
    return e;
  }
  if (at(p, T_IDENT)) {
    if ((at_kw(p, "min") || at_kw(p, "max")) && peek(p) == T_LPAREN) {
      int kind = at_kw(p, "min") ? IR_MIN : IR_MAX;
      next(p);
      next(p);
      enter(p);
      ir_expr *x = parse_dim(p);
      int dx = p->ddepth;
      expect(p, T_COMMA, "between the operands of min/max");
      ir_expr *y = parse_dim(p);
      int dy = p->ddepth;
      leave(p);
      expect(p, T_RPAREN, "after the operands of min/max");
      return dim_binop(p, kind, x, dx, y, dy, sp);
    }
    const char *name = tok_str(p, p->tok.s, p->tok.len);
    next(p);
    p->arena->span = sp;
    ir_var *v = need(p, relay_module_dim(p->mod, name));
    p->ddepth = 1;
    return &v->h;
  }
  fail_expected(p, "a dimension (a number, a name or '(')");
}

/* dim_mul = dim_unary (("*" | "/" | "%" | "//" | "%%") dim_unary)* */
static ir_expr *parse_dim_mul(parser *p) {
  ir_expr *e = parse_dim_unary(p);
  for (;;) {
    int depth = p->ddepth;
    int kind = at(p, T_STAR) ? IR_MUL : at(p, T_SLASH) ? IR_DIV : at(p, T_PERCENT) ? IR_MOD
               : at(p, T_SLASH2) ? IR_FLOORDIV : at(p, T_PERCENT2) ? IR_FLOORMOD : -1;
    if (kind < 0) return e;
    ir_span sp = p->tok.span;
    next(p);
    ir_expr *y = parse_dim_unary(p);
    e = dim_binop(p, kind, e, depth, y, p->ddepth, sp);
  }
}

/* dim = dim_mul (("+" | "-") dim_mul)* */
static ir_expr *parse_dim(parser *p) {
  ir_expr *e = parse_dim_mul(p);
  for (;;) {
    int depth = p->ddepth;
    int kind = at(p, T_PLUS) ? IR_ADD : at(p, T_MINUS) ? IR_SUB : -1;
    if (kind < 0) return e;
    ir_span sp = p->tok.span;
    next(p);
    ir_expr *y = parse_dim_mul(p);
    e = dim_binop(p, kind, e, depth, y, p->ddepth, sp);
  }
}

/* dtype = IDENT (float32, int64, bfloat16, ...: what kiln_dtype_parse reads) */
static kiln_dtype parse_dtype(parser *p) {
  kiln_dtype t;
  if (!at(p, T_IDENT)) fail_expected(p, "a dtype (float32, int64, ...)");
  if (kiln_dtype_parse(p->tok.s, p->tok.len, &t) != KILN_OK) {
    char b[64];
    fail_at(p, p->tok.span, KILN_ERR_PARSE, "unknown data type %s", describe(&p->tok, b, sizeof b));
  }
  next(p);
  return t;
}

/* type = "Tensor" "[" "(" [dim ("," dim)* [","]] ")" "," IDENT "]"
 *      | "(" [type ("," type)* [","]] ")"
 *      | "fn" "(" [type ("," type)*] ")" "->" type */
static relay_type *parse_type(parser *p) {
  enter(p);
  ir_span sp = p->tok.span;
  relay_type *t;
  vec items = {0};
  if (at_kw(p, "Tensor")) {
    next(p);
    expect(p, T_LBRACK, "after 'Tensor'");
    expect(p, T_LPAREN, "before a tensor's shape");
    while (!accept(p, T_RPAREN)) {
      vec_push(p, &items, parse_dim(p));
      if (accept(p, T_COMMA)) continue;
      expect(p, T_RPAREN, "at the end of a tensor's shape");
      break;
    }
    expect(p, T_COMMA, "between a tensor's shape and its dtype");
    kiln_dtype dt = parse_dtype(p);
    expect(p, T_RBRACK, "at the end of a tensor type");
    p->arena->span = sp;
    t = need(p, relay_tensor_type_new(p->arena, dt, items.n, (ir_expr *const *)items.items));
  } else if (accept(p, T_LPAREN)) {
    while (!accept(p, T_RPAREN)) {
      vec_push(p, &items, parse_type(p));
      if (accept(p, T_COMMA)) continue;
      expect(p, T_RPAREN, "at the end of a tuple type");
      break;
    }
    p->arena->span = sp;
    t = need(p, relay_tuple_type_new(p->arena, items.n, (relay_type *const *)items.items));
  } else if (at_kw(p, "fn")) {
    next(p);
    expect(p, T_LPAREN, "before a function type's parameters");
    while (!accept(p, T_RPAREN)) {
      vec_push(p, &items, parse_type(p));
      if (accept(p, T_COMMA)) continue;
      expect(p, T_RPAREN, "after a function type's parameters");
      break;
    }
    expect(p, T_ARROW, "before a function type's result");
    relay_type *ret = parse_type(p);
    p->arena->span = sp;
    t = need(p, relay_func_type_new(p->arena, items.n, (relay_type *const *)items.items, ret));
  } else {
    fail_expected(p, "a type (Tensor[...], a tuple type (...) or fn (...) -> ...)");
  }
  leave(p);
  return t;
}

/* ---- Parser: expressions ------------------------------------------------------------------ */

static relay_expr *parse_expr(parser *p);
static relay_expr *parse_block(parser *p);

/* "{" block "}" */
static relay_expr *parse_braced(parser *p, const char *where) {
  expect(p, T_LBRACE, where);
  enter(p);
  relay_expr *e = parse_block(p);
  leave(p);
  expect(p, T_RBRACE, "at the end of a block");
  return e;
}

/* gname = IDENT | STRING, as a NUL-terminated string. */
static const char *parse_gname(parser *p) {
  const char *name;
  if (at(p, T_IDENT)) name = tok_str(p, p->tok.s, p->tok.len);
  else if (at(p, T_STR)) name = p->tok.str;
  else fail_expected(p, "a function name after '@'");
  next(p);
  return name;
}

/* A variable named by a LOCAL token (the name without its '%'). */
static relay_var *new_var(parser *p, const token *name, relay_type *type) {
  const char *s = tok_str(p, name->s + 1, name->len - 1);
  p->arena->span = name->span;
  return need(p, relay_var_new(p->arena, s, type));
}

/* "(" [param ("," param)*] ")" ["->" type], param = LOCAL [":" type]. Each parameter is
 * visible from its definition on; the caller ends their scope. */
static relay_type *parse_params(parser *p, vec *params) {
  expect(p, T_LPAREN, "before the parameters");
  while (!accept(p, T_RPAREN)) {
    token name = expect(p, T_LOCAL, "(a parameter)");
    relay_type *t = accept(p, T_COLON) ? parse_type(p) : NULL;
    relay_var *v = new_var(p, &name, t);
    push_name(p, &name, &v->h);
    vec_push(p, params, v);
    if (accept(p, T_COMMA)) continue;
    expect(p, T_RPAREN, "after the parameters");
    break;
  }
  return accept(p, T_ARROW) ? parse_type(p) : NULL;
}

/* func = "fn" [fn_attrs] "(" [param ("," param)*] ")" ["->" type] "{" block "}"
 * (after "fn", which is at sp) */
static relay_expr *parse_func(parser *p, ir_span sp) {
  vec attrs = {0}, params = {0};
  if (at(p, T_LBRACK)) parse_fn_attrs(p, &attrs);
  size_t mark = p->nentries;
  relay_type *ret = parse_params(p, &params);
  relay_expr *body = parse_braced(p, "before a function body");
  pop_names(p, mark);
  p->arena->span = sp;
  return need(p, relay_func_new(p->arena, params.n, (relay_var *const *)params.items, ret, body,
                                attrs.n, (relay_attr *const *)attrs.items));
}

/* global = "@" gname [":" (type | "?")] */
static relay_expr *parse_global(parser *p) {
  ir_span sp = p->tok.span;
  next(p);
  ir_span name_span = p->tok.span;
  const char *name = parse_gname(p);
  relay_func *f = relay_module_get(p->mod, name);
  relay_type *type = NULL;
  if (accept(p, T_COLON)) {
    if (!accept(p, T_QUESTION)) type = parse_type(p);
  } else if (f) {
    type = relay_type_of(&f->h);
  }
  if (!f) {
    global_ref *r = need(p, ir_arena_alloc(p->scratch, sizeof *r));
    *r = (global_ref){name, name_span};
    vec_push(p, &p->refs, r);
  }
  p->arena->span = sp;
  return need(p, relay_global_new(p->arena, name, type));
}

/* scalar = ["-"] NUMBER: a 0-d constant of the suffix's dtype (int32 or float32 without). */
static relay_expr *parse_scalar(parser *p) {
  ir_span sp = p->tok.span;
  bool neg = accept(p, T_MINUS);
  token tok = p->tok;
  if (!at(p, T_NUM)) fail_expected(p, "a number after '-'");
  number nb;
  decode_number(p, &tok, &nb);
  kiln_dtype t = nb.is_float ? KILN_FLOAT32 : KILN_INT32;
  if (nb.suffix_len && !suffix_dtype(nb.suffix, nb.suffix_len, &t))
    fail_at(p, tok.span, KILN_ERR_PARSE,
            "unknown literal suffix '%.*s' (i8 i16 i32 i64 u8 u16 u32 u64 f16 bf16 f32 f64)",
            (int)(nb.suffix_len > 16 ? 16 : nb.suffix_len), nb.suffix);
  elem_buf e = {0};
  if (ir_dt_is_float(t)) store_float_num(p, sp, &tok, &nb, neg, t, e.b);
  else store_int(p, sp, &tok, &nb, neg, t, e.b);
  next(p);
  p->arena->span = sp;
  relay_type *type = need(p, relay_tensor_type_new(p->arena, t, 0, NULL));
  return need(p, relay_const_new(p->arena, type, e.b, (int64_t)kiln_dtype_bytes(t)));
}

/* "true" | "false": a 0-d bool constant. */
static relay_expr *bool_scalar(parser *p, bool v) {
  unsigned char b = v;
  p->arena->span = p->tok.span;
  next(p);
  relay_type *type = need(p, relay_tensor_type_new(p->arena, KILN_BOOL, 0, NULL));
  return need(p, relay_const_new(p->arena, type, &b, 1));
}

/* const = "const" "(" type "," ("[" [elem ("," elem)*] "]" | "...") ")" */
static relay_expr *parse_const(parser *p) {
  ir_span sp = p->tok.span;
  next(p);
  expect(p, T_LPAREN, "after 'const'");
  ir_span type_span = p->tok.span;
  relay_type *type = parse_type(p);
  const relay_tensor_type *tt = relay_as_tensor_type(type);
  int64_t numel = relay_type_numel(type);
  if (!tt || numel < 0)
    fail_at(p, type_span, KILN_ERR_TYPE, "a constant needs a tensor type of constant shape");
  kiln_dtype t = tt->h.dtype;
  char dt[32];
  if (!const_dtype_ok(t))
    fail_at(p, type_span, KILN_ERR_UNSUPPORTED, "constants of dtype %s are not supported",
            kiln_dtype_str(t, dt, sizeof dt));
  expect(p, T_COMMA, "after a constant's type");
  if (at(p, T_ELLIPSIS))
    fail_at(p, p->tok.span, KILN_ERR_PARSE,
            "this constant's data was elided when it was printed; it cannot be read back");
  expect(p, T_LBRACK, "before a constant's elements");
  size_t size = kiln_dtype_bytes(t);
  bytes data = {0};
  int64_t count = 0;
  while (!accept(p, T_RBRACK)) {
    if (count == numel)
      fail_at(p, p->tok.span, KILN_ERR_SHAPE, "too many elements: the constant's type holds %lld",
              (long long)numel);
    parse_elem(p, t, bytes_add(p, &data, size));
    count++;
    if (accept(p, T_COMMA)) continue;
    expect(p, T_RBRACK, "after a constant's elements");
    break;
  }
  if (count != numel)
    fail_at(p, sp, KILN_ERR_SHAPE, "the constant's type holds %lld elements, its data %lld",
            (long long)numel, (long long)count);
  expect(p, T_RPAREN, "at the end of a constant");
  p->arena->span = sp;
  return need(p, relay_const_new(p->arena, type, data.data, (int64_t)data.n));
}

/* if = "if" expr "{" block "}" "else" "{" block "}" */
static relay_expr *parse_if(parser *p) {
  ir_span sp = p->tok.span;
  next(p);
  relay_expr *cond = parse_expr(p);
  relay_expr *then_branch = parse_braced(p, "before the then branch");
  expect_kw(p, "else", "after the then branch");
  relay_expr *else_branch = parse_braced(p, "after 'else'");
  p->arena->span = sp;
  return need(p, relay_if_new(p->arena, cond, then_branch, else_branch));
}

/* op_call = IDENT "(" [op_arg ("," op_arg)*] ")", op_arg = expr | attr */
static relay_expr *parse_op_call(parser *p) {
  token name = p->tok;
  const char *opname = tok_str(p, name.s, name.len);
  const relay_op *op = relay_op_lookup(opname);
  if (!op) fail_at(p, name.span, KILN_ERR_UNDEFINED, "unknown op '%s'", opname);
  next(p);
  expect(p, T_LPAREN, "after an op name");
  vec args = {0}, attrs = {0};
  bool seen[64] = {false};
  while (!accept(p, T_RPAREN)) {
    if ((at(p, T_IDENT) || at(p, T_STR)) && peek(p) == T_ASSIGN) {
      ir_span key_span = p->tok.span, value_span;
      relay_attr *a = parse_attr(p, &value_span);
      check_op_attr(p, op, a, key_span, value_span, seen);
      vec_push(p, &attrs, a);
    } else {
      if (attrs.n)
        fail_at(p, p->tok.span, KILN_ERR_PARSE, "%s: the arguments go before the attributes", op->name);
      vec_push(p, &args, parse_expr(p));
    }
    if (accept(p, T_COMMA)) continue;
    expect(p, T_RPAREN, "at the end of the arguments");
    break;
  }
  p->arena->span = name.span;
  return need(p, relay_call_op(p->arena, opname, args.n, (relay_expr *const *)args.items, attrs.n,
                               (relay_attr *const *)attrs.items));
}

/* "(" ")" | "(" expr ")" | "(" expr "," [expr ("," expr)* [","]] ")" */
static relay_expr *parse_parens(parser *p) {
  ir_span sp = p->tok.span;
  next(p);
  vec fields = {0};
  if (!accept(p, T_RPAREN)) {
    relay_expr *first = parse_expr(p);
    if (accept(p, T_RPAREN)) return first;
    if (!at(p, T_COMMA)) fail_expected(p, "',' or ')' after an expression in parentheses");
    next(p);
    vec_push(p, &fields, first);
    while (!accept(p, T_RPAREN)) {
      vec_push(p, &fields, parse_expr(p));
      if (accept(p, T_COMMA)) continue;
      expect(p, T_RPAREN, "at the end of a tuple");
      break;
    }
  }
  p->arena->span = sp;
  return need(p, relay_tuple_new(p->arena, fields.n, (relay_expr *const *)fields.items));
}

/* primary = LOCAL | global | scalar | "true" | "false" | const | parens | "{" block "}"
 *         | func | if | op_call */
static relay_expr *parse_primary(parser *p) {
  token t = p->tok;
  switch (t.kind) {
  case T_LOCAL: {
    ir_node *n = lookup(p, &t);
    if (!n) fail_at(p, t.span, KILN_ERR_UNDEFINED, "undefined variable '%.*s'", (int)(t.len > 64 ? 64 : t.len), t.s);
    next(p);
    return n;
  }
  case T_AT: return parse_global(p);
  case T_NUM:
  case T_MINUS: return parse_scalar(p);
  case T_LPAREN: return parse_parens(p);
  case T_LBRACE: return parse_braced(p, "");
  case T_IDENT:
    if (at_kw(p, "true") || at_kw(p, "false")) return bool_scalar(p, at_kw(p, "true"));
    if (at_kw(p, "const")) return parse_const(p);
    if (at_kw(p, "if")) return parse_if(p);
    if (at_kw(p, "fn")) {
      next(p);
      return parse_func(p, t.span);
    }
    if (at_kw(p, "let"))
      fail_at(p, t.span, KILN_ERR_PARSE,
              "a let starts a line of a block; inside an expression write { let %%x = ...; ... }");
    if (peek(p) == T_LPAREN) return parse_op_call(p);
    break;
  }
  fail_expected(p, "an expression");
}

/* expr = primary ("(" [expr ("," expr)*] ")" | "." NUMBER)* */
static relay_expr *parse_expr(parser *p) {
  enter(p);
  ir_span sp = p->tok.span;
  relay_expr *e = parse_primary(p);
  for (;;) {
    if (accept(p, T_LPAREN)) {
      vec args = {0};
      while (!accept(p, T_RPAREN)) {
        vec_push(p, &args, parse_expr(p));
        if (accept(p, T_COMMA)) continue;
        expect(p, T_RPAREN, "at the end of the arguments");
        break;
      }
      p->arena->span = sp;
      e = need(p, relay_call_fn(p->arena, e, args.n, (relay_expr *const *)args.items));
    } else if (at(p, T_DOT)) {
      ir_span dot = p->tok.span;
      next(p);
      token tok = p->tok;
      if (!at(p, T_NUM)) fail_expected(p, "a field number after '.'");
      number nb;
      decode_number(p, &tok, &nb);
      if (nb.overflow || nb.mag > INT32_MAX)
        fail_at(p, tok.span, KILN_ERR_PARSE, "field number %.*s is too large", (int)(tok.len > 40 ? 40 : tok.len), tok.s);
      next(p);
      p->arena->span = dot;
      e = need(p, relay_proj_new(p->arena, e, (int)nb.mag));
    } else {
      break;
    }
  }
  leave(p);
  return e;
}

/* A let line whose node is built when the block's result is known. */
typedef struct pending_let {
  relay_var *var;
  relay_expr *value;
  ir_span span;
} pending_let;

/* block = (binding | let)* expr, binding = LOCAL "=" expr ";",
 * let = "let" LOCAL [":" type] "=" expr ";". The names defined here end with the block. */
static relay_expr *parse_block(parser *p) {
  size_t mark = p->nentries;
  vec lets = {0};
  for (;;) {
    if (at(p, T_LOCAL) && peek(p) == T_ASSIGN) {
      token name = p->tok;
      next(p);
      next(p);
      relay_expr *e = parse_expr(p);
      expect(p, T_SEMI, "after a binding");
      push_name(p, &name, e);
    } else if (at_kw(p, "let")) {
      ir_span sp = p->tok.span;
      next(p);
      token name = expect(p, T_LOCAL, "after 'let'");
      relay_type *t = accept(p, T_COLON) ? parse_type(p) : NULL;
      expect(p, T_ASSIGN, "after a let variable");
      relay_expr *value = parse_expr(p);
      expect(p, T_SEMI, "after a let value");
      relay_var *v = new_var(p, &name, t);
      push_name(p, &name, &v->h);
      pending_let *l = need(p, ir_arena_alloc(p->scratch, sizeof *l));
      *l = (pending_let){v, value, sp};
      vec_push(p, &lets, l);
    } else {
      break;
    }
  }
  relay_expr *e = parse_expr(p);
  for (int i = lets.n - 1; i >= 0; i--) {
    const pending_let *l = lets.items[i];
    p->arena->span = l->span;
    e = need(p, relay_let_new(p->arena, l->var, l->value, e));
  }
  pop_names(p, mark);
  return e;
}

/* def = "def" "@" gname [fn_attrs] "(" [param ("," param)*] ")" ["->" type] "{" block "}" */
static void parse_def(parser *p) {
  ir_span sp = p->tok.span;
  next(p);
  expect(p, T_AT, "after 'def'");
  ir_span name_span = p->tok.span;
  const char *name = parse_gname(p);
  if (relay_module_get(p->mod, name))
    fail_at(p, name_span, KILN_ERR_PARSE, "function @%s is defined twice", name);
  vec attrs = {0}, params = {0};
  if (at(p, T_LBRACK)) parse_fn_attrs(p, &attrs);
  size_t mark = p->nentries;
  relay_type *ret = parse_params(p, &params);
  relay_expr *body = parse_braced(p, "before the function body");
  pop_names(p, mark);
  p->arena->span = sp;
  relay_expr *f = need(p, relay_func_new(p->arena, params.n, (relay_var *const *)params.items, ret,
                                         body, attrs.n, (relay_attr *const *)attrs.items));
  kiln_status st = relay_module_set(p->mod, name, (relay_func *)f);
  if (st) {
    if (!p->ctx->code) ir_fail(p->ctx, sp, st, "cannot add function @%s to the module", name);
    p->lx.status = st;
    longjmp(p->lx.jmp, 1);
  }
}

/* module = def* */
static void parse_module_rule(parser *p) {
  next(p);
  while (!at(p, T_EOF)) {
    if (!at_kw(p, "def")) fail_expected(p, "'def' (a function definition) or the end of the input");
    parse_def(p);
  }
  for (int i = 0; i < p->refs.n; i++) {
    const global_ref *r = p->refs.items[i];
    if (!relay_module_get(p->mod, r->name))
      fail_at(p, r->span, KILN_ERR_UNDEFINED, "undefined function @%s", r->name);
  }
}

kiln_status relay_parse_module(kiln_context *ctx, const char *text, size_t len,
                               relay_module **out) {
  if (!out || !ctx || (!text && len))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "relay_parse_module: NULL argument");
  *out = NULL;
  ir_clear_error(ctx);
  parser p;
  memset(&p, 0, sizeof p);
  p.ctx = ctx;
  ir_lex_init(&p.lx, ctx, text ? text : "", len);
  if (!(p.mod = relay_module_new(ctx))) return KILN_ERR_NOMEM;
  p.arena = p.mod->arena;
  if (!(p.scratch = ir_arena_new(ctx))) {
    relay_module_free(p.mod);
    return KILN_ERR_NOMEM;
  }
  kiln_status st = guarded(&p, parse_module_rule);
  ir_free(ctx, p.entries, p.entry_cap * sizeof *p.entries);
  ir_free(ctx, p.slots, p.slot_cap * sizeof *p.slots);
  ir_arena_free(p.scratch);
  p.arena->span = IR_NO_SPAN; /* later constructions in the module are not from this text */
  if (st) {
    relay_module_free(p.mod);
    return st;
  }
  *out = p.mod;
  return KILN_OK;
}

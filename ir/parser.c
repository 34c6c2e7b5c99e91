/* parser.c: reads the TIR text format (what printer.c writes) back into nodes. A lexer that
 * produces one token at a time, a recursive-descent parser that builds every node through
 * the node.h constructors (so the text is type-checked exactly like C-built IR), and a name
 * scope that turns names into variables and buffers. Errors carry the line and column of the
 * offending token; nothing is left allocated when parsing fails.
 *
 * Grammar ("x" is a literal token; IDENT, NUMBER and STRING are token classes; # starts a
 * comment that runs to the end of the line):
 *
 *   module      = func*
 *   func        = "func" "@" (IDENT | STRING) "(" [param ("," param)*] ")"
 *                 ["attrs" annots] body
 *   param       = IDENT ":" (buffer_type | dtype)
 *   buffer_type = "buffer" "(" dtype "," "[" [expr ("," expr)*] "]" ("," buffer_opt)* ")"
 *   buffer_opt  = "strides" "=" "[" [expr ("," expr)*] "]" | "offset" "=" expr
 *               | "align" "=" NUMBER | "scope" "=" STRING
 *   annots      = "{" [STRING "=" annot_value ("," STRING "=" annot_value)*] "}"
 *   annot_value = STRING | unary                   (a constant: the constructor checks)
 *   dtype       = IDENT                            (int32, float32x4, bool, bf16, ...)
 *
 *   body        = "{" stmt+ "}"       (one statement stands for itself; several form a seq)
 *   stmt        = for | if | let_stmt | allocate | evaluate | seq | block | store
 *   for         = "for" IDENT ":" dtype "in" for_kind "(" expr "," expr ")"
 *                 ["annotate" annots] body
 *   for_kind    = "range" | "parallel" | "vectorized" | "unrolled"
 *   if          = "if" expr body ["else" (body | if)]
 *   let_stmt    = "let" IDENT ":" dtype "=" expr body
 *   allocate    = "allocate" IDENT ":" buffer_type body
 *   evaluate    = "evaluate" "(" expr ")" ";"
 *   seq         = "seq" "{" stmt+ "}"              (always a seq node, even of one statement)
 *   store       = IDENT "[" [expr ("," expr)*] "]" "=" expr ";"
 *   block       = "block" STRING "(" [iter ("," iter)*] ")" ["where" expr] block_body
 *               | "unrealized" "block" STRING "(" [iter ("," iter)*] ")" block_body
 *   iter        = IDENT ":" dtype "=" ("spatial" | "reduce") "(" expr "," expr ")"
 *                 ["<-" expr]                      (the value: required unless unrealized)
 *   block_body  = "{" (reads | writes | alloc | "annotate" annots)* ["init" body] stmt+ "}"
 *   reads       = "reads" "(" [region ("," region)*] ")"
 *   writes      = "writes" "(" [region ("," region)*] ")"
 *   region      = IDENT "[" [range ("," range)*] "]"
 *   range       = expr ["+:" expr]                 (min and extent; a bare expr: extent 1)
 *   alloc       = "alloc" IDENT ":" buffer_type
 *
 *   expr        = or
 *   or          = and ("||" and)*
 *   and         = cmp ("&&" cmp)*
 *   cmp         = add [("==" | "!=" | "<" | "<=" | ">" | ">=") add]     (does not chain)
 *   add         = mul (("+" | "-") mul)*
 *   mul         = unary (("*" | "/" | "%" | "//" | "%%") unary)*
 *   unary       = "!" unary | "-" literal | "-" unary | primary
 *   primary     = literal | "true" | "false" | STRING | "(" expr ")"
 *               | ("min" | "max") "(" expr "," expr ")"
 *               | "select" "(" expr "," expr "," expr ")"
 *               | "cast" "(" dtype "," expr ")"
 *               | "ramp" "(" expr "," expr "," NUMBER ")"
 *               | "broadcast" "(" expr "," NUMBER ")"
 *               | "let" "(" IDENT ":" dtype "=" expr "," expr ")"
 *               | INTRINSIC "(" [expr ("," expr)*] ")"           (exp, pow, fma, ...)
 *               | IDENT "[" [expr ("," expr)*] "]"               (a load)
 *               | IDENT                                          (a variable)
 *   literal     = NUMBER | "inf_f32" | "nan_f32" | ...           (also _f16, _bf16, _f64)
 *
 * Operators: "/" is DIV, "%" MOD, "//" FLOORDIV, "%%" FLOORMOD. "-" before a literal makes
 * a negative literal; before anything else it is `0 - x` in x's type. Numbers: `5` is int32,
 * suffixes i8 i16 i32 i64 u8 u16 u32 u64 give other integer types, f16 bf16 f32 f64 float
 * types (`2f16`, `1.5f32`); a number with a '.' or an exponent and no suffix is float32.
 * Strings take the escapes \" \\ \n \t \r \xHH. The words listed in `keywords` below cannot
 * name variables or buffers (the printer renames such names).
 *
 * Names: one scope for variables and buffers. Parameters are visible in the whole function;
 * loop, let and iterator variables, allocated buffers and block alloc buffers inside their
 * statement; a name defined again shadows the outer one until its scope ends.
 *
 * Limits: nesting of statements, brackets and unary operators is at most MAX_NESTING deep
 * (the parser recurses); an expression tree is at most MAX_EXPR_DEPTH deep (so that the
 * recursive printer, equality and hashing stay within the stack on any input).
 *
 * Errors leave through longjmp to the setjmp in `guarded` (STYLE allows it inside a parser):
 * every node lives in an arena and every temporary in the scratch arena, so unwinding needs
 * no bookkeeping; the entry points free the arenas. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lex.h"
#include "text.h"

enum { MAX_NESTING = 256, MAX_EXPR_DEPTH = 1024 };

/* ---- Tokens ---------------------------------------------------------------------------- */

typedef enum tok_kind {
  T_EOF, T_IDENT, T_NUM, T_STR,
  /* punctuators */
  T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_LBRACE, T_RBRACE, T_COMMA, T_COLON, T_SEMI, T_AT,
  T_ASSIGN, T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE, T_PLUS, T_MINUS, T_STAR, T_SLASH, T_PERCENT,
  T_SLASH2 /* // */, T_PERCENT2 /* %% */, T_NOT, T_AND, T_OR, T_ARROW /* <- */, T_EXTENT /* +: */
} tok_kind;

/* Punctuators, the two-character ones first so that the longest match wins. */
static const struct {
  const char *s;
  int kind;
} puncts[] = {
    {"<-", T_ARROW}, {"+:", T_EXTENT}, {"==", T_EQ},     {"!=", T_NE},     {"<=", T_LE},
    {">=", T_GE},    {"&&", T_AND},    {"||", T_OR},     {"//", T_SLASH2}, {"%%", T_PERCENT2},
    {"(", T_LPAREN}, {")", T_RPAREN},  {"[", T_LBRACK},  {"]", T_RBRACK},  {"{", T_LBRACE},
    {"}", T_RBRACE}, {",", T_COMMA},   {":", T_COLON},   {";", T_SEMI},    {"@", T_AT},
    {"=", T_ASSIGN}, {"<", T_LT},      {">", T_GT},      {"+", T_PLUS},    {"-", T_MINUS},
    {"*", T_STAR},   {"/", T_SLASH},   {"%", T_PERCENT}, {"!", T_NOT},
};

/* How messages name a token kind: 'x' for punctuators, words for the token classes. */
static const char *tok_spelling(int kind) {
  if (kind == T_EOF) return "end of input";
  if (kind == T_IDENT) return "a name";
  if (kind == T_NUM) return "a number";
  if (kind == T_STR) return "a string";
  for (size_t i = 0; i < sizeof puncts / sizeof puncts[0]; i++)
    if (puncts[i].kind == kind) return puncts[i].s;
  return "?";
}

typedef struct token {
  int kind;        /* tok_kind */
  const char *s;   /* the token's text in the source */
  size_t len;
  ir_span span;
  const char *str; /* T_STR: the decoded value, NUL-terminated, in the scratch arena */
} token;

/* ---- Parser state ---------------------------------------------------------------------- */

typedef struct scope_entry {
  const char *name;
  size_t len;
  ir_node *node; /* ir_var or ir_buffer */
} scope_entry;

typedef struct parser {
  kiln_context *ctx;
  ir_lexer lx;        /* the source, where lexing continues (just after tok), the error exit */
  token tok;          /* the current token */
  ir_arena *arena;    /* where the nodes go */
  ir_arena *scratch;  /* names, lists, decoded strings, the scope: freed after parsing */
  scope_entry *scope;
  int nscope, scope_cap;
  int nesting;        /* recursion depth (statements, brackets, unary operators) */
  int edepth;         /* tree depth of the expression the last expression rule returned */
  kiln_tir_module *mod;
  int nvars;          /* ir_parse_expr: the variables it was given */
  ir_var *const *vars;
  ir_expr *result;
} parser;

/* Records an error at sp and unwinds to the parser's entry (see lex.h). */
#define fail_at(p, ...) ir_lex_fail(&(p)->lx, __VA_ARGS__)

/* A constructor or an allocation returned NULL; it recorded the error (constructors with the
 * position the parser put in arena->span) on the context. */
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
    fail_at(p, p->tok.span, KILN_ERR_PARSE, "nesting too deep (more than %d levels)",
            MAX_NESTING);
}

static void leave(parser *p) { p->nesting--; }

/* ---- Lexer ----------------------------------------------------------------------------- */

/* Moves to the next token. */
static void next(parser *p) {
  ir_lex_skip_space(&p->lx);
  token *t = &p->tok;
  t->span = ir_lex_span(&p->lx, p->lx.pos);
  t->s = p->lx.src + p->lx.pos;
  t->str = NULL;
  size_t start = p->lx.pos;
  if (p->lx.pos >= p->lx.len) {
    t->kind = T_EOF;
  } else if (ir_is_ident_start(p->lx.src[p->lx.pos])) {
    while (p->lx.pos < p->lx.len && ir_is_ident_char(p->lx.src[p->lx.pos])) p->lx.pos++;
    t->kind = T_IDENT;
  } else if (ir_is_digit(p->lx.src[p->lx.pos])) {
    ir_lex_number(&p->lx, IR_NUM_FRACTION | IR_NUM_STRICT_DOT);
    t->kind = T_NUM;
  } else if (p->lx.src[p->lx.pos] == '"') {
    t->str = ir_lex_string(&p->lx, p->scratch, t->span);
    t->kind = T_STR;
  } else {
    char first = p->lx.src[p->lx.pos];
    char second = p->lx.pos + 1 < p->lx.len ? p->lx.src[p->lx.pos + 1] : 0;
    size_t i = 0;
    for (; i < sizeof puncts / sizeof puncts[0]; i++)
      if (puncts[i].s[0] == first && (!puncts[i].s[1] || puncts[i].s[1] == second)) break;
    if (i == sizeof puncts / sizeof puncts[0]) {
      unsigned char c = (unsigned char)first;
      if (c > 0x20 && c < 0x7f)
        fail_at(p, t->span, KILN_ERR_PARSE, "unexpected character '%c'", c);
      fail_at(p, t->span, KILN_ERR_PARSE, "unexpected byte 0x%02x", c);
    }
    t->kind = puncts[i].kind;
    p->lx.pos += puncts[i].s[1] ? 2 : 1;
  }
  t->len = p->lx.pos - start;
}

/* The token as messages show it: 'text', a string, or end of input. */
static const char *describe(const token *t, char *buf, size_t cap) {
  if (t->kind == T_EOF) return "end of input";
  if (t->kind == T_STR) return "a string";
  if (t->len > 40)
    snprintf(buf, cap, "'%.40s...'", t->s);
  else
    snprintf(buf, cap, "'%.*s'", (int)t->len, t->s);
  return buf;
}

static bool at(parser *p, int kind) { return p->tok.kind == kind; }

static bool tok_is(const token *t, const char *word) {
  return t->kind == T_IDENT && t->s[0] == word[0] && t->len == strlen(word) &&
         memcmp(t->s, word, t->len) == 0;
}

static bool at_kw(parser *p, const char *word) { return tok_is(&p->tok, word); }

static bool accept(parser *p, int kind) {
  if (!at(p, kind)) return false;
  next(p);
  return true;
}

static bool accept_kw(parser *p, const char *word) {
  if (!at_kw(p, word)) return false;
  next(p);
  return true;
}

/* Consumes a token of the given kind or fails with "expected 'X' WHERE, found 'Y'". */
static token expect(parser *p, int kind, const char *where) {
  if (!at(p, kind)) {
    char b[64];
    const char *q = kind <= T_STR ? "" : "'"; /* quote punctuators, not "a string" */
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

/* ---- Keywords, names and scopes -------------------------------------------------------- */

/* Words that start statements, block items or expressions. Intrinsic names (exp, pow, ...)
 * and the float specials (inf_f32, ...) are reserved too. */
static const char *const keywords[] = {
    "for",   "if",   "else",  "let",  "allocate", "evaluate", "seq",    "block",
    "unrealized", "reads", "writes", "alloc", "annotate", "init", "true", "false",
    "min",   "max",  "select", "cast", "ramp",    "broadcast",
};

/* The float types that literal suffixes and specials name. */
static bool float_suffix(const char *s, size_t len, kiln_dtype *t) {
  static const struct {
    const char *s;
    kiln_dtype t;
  } types[] = {{"f16", {KILN_TYPE_FLOAT, 16, 1}},
               {"bf16", {KILN_TYPE_BFLOAT, 16, 1}},
               {"f32", {KILN_TYPE_FLOAT, 32, 1}},
               {"f64", {KILN_TYPE_FLOAT, 64, 1}}};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (strlen(types[i].s) == len && memcmp(types[i].s, s, len) == 0) {
      *t = types[i].t;
      return true;
    }
  return false;
}

/* inf_f32, nan_bf16, ...: sets the type and whether it is a NaN. */
static bool float_special(const char *s, size_t len, kiln_dtype *t, bool *is_nan) {
  if (len < 5 || (memcmp(s, "inf_", 4) != 0 && memcmp(s, "nan_", 4) != 0)) return false;
  if (!float_suffix(s + 4, len - 4, t)) return false;
  *is_nan = s[0] == 'n';
  return true;
}

bool ir_text_is_keyword(const char *s, size_t len) {
  if (len == 0) return false;
  for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
    if (keywords[i][0] == s[0] && strlen(keywords[i]) == len && memcmp(keywords[i], s, len) == 0)
      return true;
  kiln_dtype t;
  bool is_nan;
  return ir_intrinsic_lookup(s, len) >= 0 || float_special(s, len, &t, &is_nan);
}

/* A name being defined (a parameter, loop variable, buffer, ...): a NUL-terminated copy. */
static char *def_name(parser *p, const char *what, ir_span *sp) {
  char b[64];
  if (!at(p, T_IDENT))
    fail_at(p, p->tok.span, KILN_ERR_PARSE, "expected the name of the %s, found %s", what,
            describe(&p->tok, b, sizeof b));
  if (ir_text_is_keyword(p->tok.s, p->tok.len))
    fail_at(p, p->tok.span, KILN_ERR_PARSE, "'%.*s' is a keyword and cannot name a %s",
            (int)p->tok.len, p->tok.s, what);
  *sp = p->tok.span;
  char *name = need(p, ir_arena_strndup(p->scratch, p->tok.s, p->tok.len));
  next(p);
  return name;
}

static void define(parser *p, const char *name, ir_node *n) {
  if (p->nscope == p->scope_cap) {
    int cap = p->scope_cap ? p->scope_cap * 2 : 32;
    scope_entry *s = need(p, ir_arena_alloc(p->scratch, sizeof *s * (size_t)cap));
    if (p->nscope) memcpy(s, p->scope, sizeof *s * (size_t)p->nscope);
    p->scope = s;
    p->scope_cap = cap;
  }
  p->scope[p->nscope++] = (scope_entry){name, strlen(name), n};
}

/* The innermost variable or buffer called t's text, or NULL. */
static ir_node *lookup(parser *p, const token *t) {
  for (int i = p->nscope - 1; i >= 0; i--)
    if (p->scope[i].len == t->len && memcmp(p->scope[i].name, t->s, t->len) == 0)
      return p->scope[i].node;
  return NULL;
}

/* The buffer a load, store or region names. */
static ir_buffer *buffer_ref(parser *p, const token *t) {
  ir_node *n = lookup(p, t);
  if (!n) fail_at(p, t->span, KILN_ERR_UNDEFINED, "undefined buffer '%.*s'", (int)t->len, t->s);
  if (n->kind != IR_BUFFER)
    fail_at(p, t->span, KILN_ERR_TYPE, "'%.*s' is a variable, not a buffer", (int)t->len, t->s);
  return (ir_buffer *)n;
}

/* ---- Lists ----------------------------------------------------------------------------- */

/* A growing array of nodes in the scratch arena; constructors copy it into the node arena. */
typedef struct node_list {
  ir_node **items;
  int n, cap;
} node_list;

static void push(parser *p, node_list *l, void *x) {
  if (l->n == l->cap) {
    if (l->cap >= (1 << 26)) fail_at(p, p->tok.span, KILN_ERR_PARSE, "too many items in a list");
    int cap = l->cap ? l->cap * 2 : 8;
    ir_node **items = need(p, ir_arena_alloc(p->scratch, sizeof *items * (size_t)cap));
    if (l->n) memcpy(items, l->items, sizeof *items * (size_t)l->n);
    l->items = items;
    l->cap = cap;
  }
  l->items[l->n++] = x;
}

/* ---- Expressions ----------------------------------------------------------------------- */

static ir_expr *expr(parser *p);
static ir_expr *unary(parser *p);

/* Checks a freshly built expression and records its tree depth. */
static ir_expr *made(parser *p, ir_expr *e, int depth) {
  need(p, e);
  if (depth > MAX_EXPR_DEPTH)
    fail_at(p, p->tok.span, KILN_ERR_PARSE, "expression nested too deeply (more than %d levels)",
            MAX_EXPR_DEPTH);
  p->edepth = depth;
  return e;
}

static int max_int(int a, int b) { return a > b ? a : b; }

// dtype = IDENT
static kiln_dtype dtype(parser *p, const char *where) {
  char b[64];
  kiln_dtype t;
  if (!at(p, T_IDENT))
    fail_at(p, p->tok.span, KILN_ERR_PARSE, "expected a dtype %s, found %s", where,
            describe(&p->tok, b, sizeof b));
  if (kiln_dtype_parse(p->tok.s, p->tok.len, &t) != KILN_OK)
    fail_at(p, p->tok.span, KILN_ERR_PARSE, "unknown dtype '%.*s'", (int)p->tok.len, p->tok.s);
  next(p);
  return t;
}

/* A non-negative integer without suffix (or with i32) that fits in int32: lane counts and
 * alignments. */
static int small_int(parser *p, const char *what) {
  char b[64];
  token t = p->tok;
  size_t n = 0;
  while (n < t.len && ir_is_digit(t.s[n])) n++;
  bool plain = t.kind == T_NUM && n > 0 &&
               (n == t.len || (t.len - n == 3 && memcmp(t.s + n, "i32", 3) == 0));
  if (!plain)
    fail_at(p, t.span, KILN_ERR_PARSE, "expected %s (an integer), found %s", what,
            describe(&t, b, sizeof b));
  int64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    v = v * 10 + (t.s[i] - '0');
    if (v > INT32_MAX) fail_at(p, t.span, KILN_ERR_PARSE, "%s is too large", what);
  }
  next(p);
  return (int)v;
}

/* The type a literal suffix names (i8 ... u64, f16, bf16, f32, f64). */
static bool literal_suffix(const char *s, size_t len, kiln_dtype *t) {
  if (float_suffix(s, len, t)) return true;
  if (len < 2 || (s[0] != 'i' && s[0] != 'u')) return false;
  static const char *const bits[] = {"8", "16", "32", "64"};
  for (int i = 0; i < 4; i++)
    if (strlen(bits[i]) == len - 1 && memcmp(bits[i], s + 1, len - 1) == 0) {
      *t = (kiln_dtype){s[0] == 'i' ? KILN_TYPE_INT : KILN_TYPE_UINT, (uint8_t)(8 << i), 1};
      return true;
    }
  return false;
}

/* strtod on the numeric part of a token, with '.' read the same in every locale. */
static double parse_double(parser *p, const token *t, size_t n, bool *overflow) {
  char small[64];
  char *buf = n < sizeof small ? small : need(p, ir_arena_alloc(p->scratch, n + 1));
  memcpy(buf, t->s, n);
  buf[n] = 0;
  return ir_strtod_c(buf, NULL, overflow);
}

// literal = NUMBER | "inf_f32" | "nan_f32" | ...      (negated when unary saw a "-")
static ir_expr *literal(parser *p, bool neg, ir_span sp) {
  token t = p->tok;
  next(p);
  p->arena->span = sp;
  const char *sign = neg ? "-" : "";
  kiln_dtype ty;
  bool is_nan;
  if (t.kind == T_IDENT && float_special(t.s, t.len, &ty, &is_nan)) {
    double v = is_nan ? (double)NAN : neg ? -(double)INFINITY : (double)INFINITY;
    return made(p, ir_float(p->arena, ty, v), 1);
  }
  /* The numeric part: digits, fraction, exponent. The rest is the suffix. */
  size_t n = 0;
  bool is_float = false;
  while (n < t.len && ir_is_digit(t.s[n])) n++;
  if (n < t.len && t.s[n] == '.') {
    is_float = true;
    for (n++; n < t.len && ir_is_digit(t.s[n]); n++) {}
  }
  if (n < t.len && (t.s[n] == 'e' || t.s[n] == 'E')) {
    size_t j = n + 1;
    if (j < t.len && (t.s[j] == '+' || t.s[j] == '-')) j++;
    if (j < t.len && ir_is_digit(t.s[j])) {
      is_float = true;
      for (n = j; n < t.len && ir_is_digit(t.s[n]); n++) {}
    }
  }
  const char *suffix = t.s + n;
  size_t slen = t.len - n;
  if (slen == 0) {
    ty = is_float ? (kiln_dtype){KILN_TYPE_FLOAT, 32, 1} : (kiln_dtype){KILN_TYPE_INT, 32, 1};
  } else if (!literal_suffix(suffix, slen, &ty)) {
    fail_at(p, t.span, KILN_ERR_PARSE,
            "unknown literal suffix '%.*s' in '%.*s' (expected i8, i16, i32, i64, u8, u16, "
            "u32, u64, f16, bf16, f32 or f64)",
            (int)(slen > 32 ? 32 : slen), suffix, (int)(t.len > 48 ? 48 : t.len), t.s);
  }
  if (ir_dt_is_float(ty)) {
    bool overflow;
    double v = parse_double(p, &t, n, &overflow);
    if (overflow)
      fail_at(p, t.span, KILN_ERR_PARSE, "float literal '%s%.*s' is out of range", sign,
              (int)(n > 48 ? 48 : n), t.s);
    return made(p, ir_float(p->arena, ty, neg ? -v : v), 1);
  }
  if (is_float)
    fail_at(p, t.span, KILN_ERR_PARSE, "float literal '%.*s' cannot have the integer suffix '%.*s'",
            (int)(n > 48 ? 48 : n), t.s, (int)slen, suffix);
  /* The magnitude as uint64, then the sign; the constructor checks the dtype's range. */
  uint64_t mag = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned d = (unsigned)(t.s[i] - '0');
    if (mag > (UINT64_MAX - d) / 10)
      fail_at(p, t.span, KILN_ERR_PARSE, "integer literal '%s%.*s' is too large", sign,
              (int)(n > 48 ? 48 : n), t.s);
    mag = mag * 10 + d;
  }
  int64_t v;
  if (neg && mag == (uint64_t)INT64_MAX + 1) {
    v = INT64_MIN;
  } else if (mag > (uint64_t)INT64_MAX) {
    fail_at(p, t.span, KILN_ERR_PARSE, "integer literal '%s%.*s' does not fit in 64 bits", sign,
            (int)n, t.s);
  } else {
    v = neg ? -(int64_t)mag : (int64_t)mag;
  }
  return made(p, ir_int(p->arena, ty, v), 1);
}

/* Parses "(" a "," b ... ")" for a builtin of n expression arguments; returns the depth of
 * the deepest. */
static int builtin_args(parser *p, const token *name, int n, ir_expr **args) {
  char where[64];
  snprintf(where, sizeof where, "after '%.*s'", (int)name->len, name->s);
  expect(p, T_LPAREN, where);
  int depth = 0;
  for (int i = 0; i < n; i++) {
    if (i) {
      snprintf(where, sizeof where, "between the arguments of '%.*s'", (int)name->len, name->s);
      expect(p, T_COMMA, where);
    }
    args[i] = expr(p);
    depth = max_int(depth, p->edepth);
  }
  snprintf(where, sizeof where, "after the arguments of '%.*s'", (int)name->len, name->s);
  expect(p, T_RPAREN, where);
  return depth;
}

// let_expr = "let" "(" IDENT ":" dtype "=" expr "," expr ")"
static ir_expr *let_expr(parser *p, const token *kw) {
  expect(p, T_LPAREN, "after 'let' in an expression");
  ir_span vsp;
  const char *name = def_name(p, "let variable", &vsp);
  expect(p, T_COLON, "after the let variable's name");
  kiln_dtype t = dtype(p, "after ':'");
  expect(p, T_ASSIGN, "after the let variable's type");
  ir_expr *value = expr(p);
  int dv = p->edepth;
  expect(p, T_COMMA, "between the let value and its body");
  p->arena->span = vsp;
  ir_var *v = need(p, ir_var_new(p->arena, name, t));
  int mark = p->nscope;
  define(p, v->name, &v->h);
  ir_expr *body = expr(p);
  int db = p->edepth;
  p->nscope = mark;
  expect(p, T_RPAREN, "after the let body");
  p->arena->span = kw->span;
  return made(p, ir_let_new(p->arena, v, value, body), 1 + max_int(dv, db));
}

/* The expression forms that look like calls: min, max, select, cast, ramp, broadcast, let
 * and the intrinsics. `name` has been consumed; false if it is none of them. */
static bool builtin(parser *p, const token *name, ir_expr **out) {
  ir_expr *a[3];
  int d;
  ir_arena *ar = p->arena;
  if (tok_is(name, "min") || tok_is(name, "max")) {
    // minmax = ("min" | "max") "(" expr "," expr ")"
    d = builtin_args(p, name, 2, a);
    ar->span = name->span;
    *out = made(p, ir_binop(ar, tok_is(name, "min") ? IR_MIN : IR_MAX, a[0], a[1]), d + 1);
  } else if (tok_is(name, "select")) {
    // select = "select" "(" expr "," expr "," expr ")"
    d = builtin_args(p, name, 3, a);
    ar->span = name->span;
    *out = made(p, ir_select_new(ar, a[0], a[1], a[2]), d + 1);
  } else if (tok_is(name, "cast")) {
    // cast = "cast" "(" dtype "," expr ")"
    expect(p, T_LPAREN, "after 'cast'");
    kiln_dtype t = dtype(p, "as the first argument of 'cast'");
    expect(p, T_COMMA, "after the dtype in 'cast'");
    a[0] = expr(p);
    d = p->edepth;
    expect(p, T_RPAREN, "after the arguments of 'cast'");
    ar->span = name->span;
    *out = made(p, ir_cast_new(ar, t, a[0]), d + 1);
  } else if (tok_is(name, "ramp")) {
    // ramp = "ramp" "(" expr "," expr "," NUMBER ")"
    expect(p, T_LPAREN, "after 'ramp'");
    a[0] = expr(p);
    d = p->edepth;
    expect(p, T_COMMA, "after the base of 'ramp'");
    a[1] = expr(p);
    d = max_int(d, p->edepth);
    expect(p, T_COMMA, "after the stride of 'ramp'");
    int lanes = small_int(p, "the lane count of 'ramp'");
    expect(p, T_RPAREN, "after the arguments of 'ramp'");
    ar->span = name->span;
    *out = made(p, ir_ramp_new(ar, a[0], a[1], lanes), d + 1);
  } else if (tok_is(name, "broadcast")) {
    // broadcast = "broadcast" "(" expr "," NUMBER ")"
    expect(p, T_LPAREN, "after 'broadcast'");
    a[0] = expr(p);
    d = p->edepth;
    expect(p, T_COMMA, "after the value of 'broadcast'");
    int lanes = small_int(p, "the lane count of 'broadcast'");
    expect(p, T_RPAREN, "after the arguments of 'broadcast'");
    ar->span = name->span;
    *out = made(p, ir_broadcast_new(ar, a[0], lanes), d + 1);
  } else if (tok_is(name, "let")) {
    *out = let_expr(p, name);
  } else {
    // call = INTRINSIC "(" [expr ("," expr)*] ")"
    int op = ir_intrinsic_lookup(name->s, name->len);
    if (op < 0) return false;
    char where[64];
    snprintf(where, sizeof where, "after '%.*s'", (int)name->len, name->s);
    expect(p, T_LPAREN, where);
    node_list args = {0};
    d = 0;
    if (!at(p, T_RPAREN)) {
      for (;;) {
        push(p, &args, expr(p));
        d = max_int(d, p->edepth);
        if (!accept(p, T_COMMA)) break;
      }
    }
    expect(p, T_RPAREN, "after call arguments");
    int arity = ir_intrinsic_arity(op);
    if (args.n != arity)
      fail_at(p, name->span, KILN_ERR_PARSE, "'%s' takes %d argument%s, not %d",
              ir_intrinsic_name(op), arity, arity == 1 ? "" : "s", args.n);
    ar->span = name->span;
    *out = made(p, ir_call_new(ar, op, args.n, (ir_expr *const *)args.items), d + 1);
  }
  return true;
}

// indices = "[" [expr ("," expr)*] "]"         (returns the depth of the deepest index)
static int indices(parser *p, node_list *l) {
  expect(p, T_LBRACK, "before the indices");
  int d = 0;
  if (!at(p, T_RBRACK)) {
    for (;;) {
      push(p, l, expr(p));
      d = max_int(d, p->edepth);
      if (!accept(p, T_COMMA)) break;
    }
  }
  expect(p, T_RBRACK, "after the indices");
  return d;
}

// primary = literal | "true" | "false" | STRING | "(" expr ")" | builtin
//         | IDENT "[" [expr ("," expr)*] "]" | IDENT
static ir_expr *primary(parser *p) {
  char b[64];
  token t = p->tok;
  kiln_dtype ty;
  bool is_nan;
  switch (t.kind) {
  case T_NUM: return literal(p, false, t.span);
  case T_STR:
    next(p);
    p->arena->span = t.span;
    return made(p, ir_str(p->arena, t.str), 1);
  case T_LPAREN: {
    next(p);
    ir_expr *e = expr(p);
    expect(p, T_RPAREN, "to close '('");
    return e;
  }
  case T_IDENT: break;
  default:
    fail_at(p, t.span, KILN_ERR_PARSE, "expected an expression, found %s", describe(&t, b, sizeof b));
  }
  if (float_special(t.s, t.len, &ty, &is_nan)) return literal(p, false, t.span);
  next(p);
  if (tok_is(&t, "true") || tok_is(&t, "false")) {
    p->arena->span = t.span;
    return made(p, ir_int(p->arena, KILN_BOOL, tok_is(&t, "true")), 1);
  }
  ir_expr *e;
  if (builtin(p, &t, &e)) return e;
  if (ir_text_is_keyword(t.s, t.len))
    fail_at(p, t.span, KILN_ERR_PARSE, "expected an expression, found keyword '%.*s'",
            (int)t.len, t.s);
  if (at(p, T_LPAREN))
    fail_at(p, t.span, KILN_ERR_PARSE, "unknown function '%.*s'", (int)t.len, t.s);
  if (at(p, T_LBRACK)) {
    ir_buffer *buf = buffer_ref(p, &t);
    node_list idx = {0};
    int d = indices(p, &idx);
    p->arena->span = t.span;
    return made(p, ir_load_new(p->arena, buf, idx.n, (ir_expr *const *)idx.items), d + 1);
  }
  ir_node *n = lookup(p, &t);
  if (!n) fail_at(p, t.span, KILN_ERR_UNDEFINED, "undefined variable '%.*s'", (int)t.len, t.s);
  if (n->kind != IR_VAR)
    fail_at(p, t.span, KILN_ERR_TYPE, "'%.*s' is a buffer, not a variable (load with %.*s[...])",
            (int)t.len, t.s, (int)t.len, t.s);
  return made(p, n, 1);
}

/* The zero of x's type, broadcast for vectors, for unary minus. */
static ir_expr *zero_like(parser *p, ir_expr *x, ir_span sp) {
  kiln_dtype t = ir_dt_scalar(x->dtype);
  char b[32];
  p->arena->span = sp;
  ir_expr *z;
  if (ir_dt_is_int(t))
    z = ir_int(p->arena, t, 0);
  else if (ir_dt_is_float(t))
    z = ir_float(p->arena, t, 0.0);
  else
    fail_at(p, sp, KILN_ERR_TYPE, "unary '-' needs a number, not %s",
            kiln_dtype_str(x->dtype, b, sizeof b));
  need(p, z);
  if (x->dtype.lanes > 1) z = need(p, ir_broadcast_new(p->arena, z, x->dtype.lanes));
  return z;
}

// unary = "!" unary | "-" literal | "-" unary | primary
static ir_expr *unary(parser *p) {
  ir_span sp = p->tok.span;
  if (accept(p, T_NOT)) {
    enter(p);
    ir_expr *x = unary(p);
    leave(p);
    p->arena->span = sp;
    return made(p, ir_not_new(p->arena, x), p->edepth + 1);
  }
  if (accept(p, T_MINUS)) {
    kiln_dtype ty;
    bool is_nan;
    if (at(p, T_NUM) || (at(p, T_IDENT) && float_special(p->tok.s, p->tok.len, &ty, &is_nan)))
      return literal(p, true, sp);
    enter(p);
    ir_expr *x = unary(p);
    leave(p);
    int d = p->edepth;
    ir_expr *zero = zero_like(p, x, sp);
    p->arena->span = sp;
    return made(p, ir_binop(p->arena, IR_SUB, zero, x), d + 2);
  }
  return primary(p);
}

/* Binary operators of one precedence level: token -> node kind. */
typedef struct binop_tok {
  int tok;
  int kind;
} binop_tok;

static int op_kind(parser *p, const binop_tok *ops, int nops) {
  for (int i = 0; i < nops; i++)
    if (at(p, ops[i].tok)) return ops[i].kind;
  return -1;
}

/* operand (op operand)*, folded to the left. */
static ir_expr *left_assoc(parser *p, ir_expr *(*operand)(parser *), const binop_tok *ops,
                           int nops) {
  ir_expr *x = operand(p);
  int d = p->edepth;
  for (;;) {
    int kind = op_kind(p, ops, nops);
    if (kind < 0) break;
    ir_span sp = p->tok.span;
    next(p);
    ir_expr *y = operand(p);
    p->arena->span = sp;
    d = max_int(d, p->edepth) + 1;
    x = made(p, ir_binop(p->arena, kind, x, y), d);
  }
  p->edepth = d;
  return x;
}

// mul = unary (("*" | "/" | "%" | "//" | "%%") unary)*
static ir_expr *mul(parser *p) {
  static const binop_tok ops[] = {{T_STAR, IR_MUL},
                                  {T_SLASH, IR_DIV},
                                  {T_PERCENT, IR_MOD},
                                  {T_SLASH2, IR_FLOORDIV},
                                  {T_PERCENT2, IR_FLOORMOD}};
  return left_assoc(p, unary, ops, 5);
}

// add = mul (("+" | "-") mul)*
static ir_expr *add(parser *p) {
  static const binop_tok ops[] = {{T_PLUS, IR_ADD}, {T_MINUS, IR_SUB}};
  return left_assoc(p, mul, ops, 2);
}

// cmp = add [("==" | "!=" | "<" | "<=" | ">" | ">=") add]
static ir_expr *cmp(parser *p) {
  static const binop_tok ops[] = {{T_EQ, IR_EQ}, {T_NE, IR_NE}, {T_LT, IR_LT},
                                  {T_LE, IR_LE}, {T_GT, IR_GT}, {T_GE, IR_GE}};
  ir_expr *x = add(p);
  int d = p->edepth;
  int kind = op_kind(p, ops, 6);
  ir_span sp = p->tok.span;
  if (at(p, T_ARROW)) {
    /* `a<-1` lexes as a, "<-", 1: read it as a < -1 by turning the token into its "-". */
    kind = IR_LT;
    p->tok.kind = T_MINUS;
    p->tok.s++;
    p->tok.len = 1;
    p->tok.span.col++;
  } else if (kind < 0) {
    return x;
  } else {
    next(p);
  }
  ir_expr *y = add(p);
  p->arena->span = sp;
  x = made(p, ir_binop(p->arena, kind, x, y), max_int(d, p->edepth) + 1);
  if (op_kind(p, ops, 6) >= 0 || at(p, T_ARROW))
    fail_at(p, p->tok.span, KILN_ERR_PARSE,
            "comparisons do not chain: put parentheses around one of them");
  return x;
}

// and = cmp ("&&" cmp)*
static ir_expr *and_(parser *p) {
  static const binop_tok ops[] = {{T_AND, IR_AND}};
  return left_assoc(p, cmp, ops, 1);
}

// or = and ("||" and)*
static ir_expr *or_(parser *p) {
  static const binop_tok ops[] = {{T_OR, IR_OR}};
  return left_assoc(p, and_, ops, 1);
}

// expr = or
static ir_expr *expr(parser *p) {
  enter(p);
  ir_expr *e = or_(p);
  leave(p);
  return e;
}

/* ---- Annotations and buffers ----------------------------------------------------------- */

// annots = "{" [STRING "=" annot_value ("," STRING "=" annot_value)*] "}"
// annot_value = STRING | unary
static void annots(parser *p, node_list *l) {
  expect(p, T_LBRACE, "to open the annotations");
  if (!at(p, T_RBRACE)) {
    for (;;) {
      token key = expect(p, T_STR, "(an annotation key)");
      expect(p, T_ASSIGN, "after the annotation key");
      ir_expr *v;
      if (at(p, T_STR)) {
        p->arena->span = p->tok.span;
        v = need(p, ir_str(p->arena, p->tok.str));
        next(p);
      } else {
        v = unary(p);
      }
      p->arena->span = key.span;
      push(p, l, need(p, ir_annot_new(p->arena, key.str, v)));
      if (!accept(p, T_COMMA)) break;
    }
  }
  expect(p, T_RBRACE, "after the annotations");
}

// exprs = "[" [expr ("," expr)*] "]"
static void expr_list(parser *p, node_list *l, const char *what) {
  char where[64];
  snprintf(where, sizeof where, "to open the %s", what);
  expect(p, T_LBRACK, where);
  if (!at(p, T_RBRACK)) {
    for (;;) {
      push(p, l, expr(p));
      if (!accept(p, T_COMMA)) break;
    }
  }
  snprintf(where, sizeof where, "after the %s", what);
  expect(p, T_RBRACK, where);
}

// buffer_type = "buffer" "(" dtype "," "[" [expr ("," expr)*] "]" ("," buffer_opt)* ")"
// buffer_opt  = "strides" "=" "[" ... "]" | "offset" "=" expr | "align" "=" NUMBER
//             | "scope" "=" STRING
static ir_buffer *buffer_type(parser *p, const char *name, ir_span name_sp) {
  char b[64];
  expect_kw(p, "buffer", "(a buffer type)");
  expect(p, T_LPAREN, "after 'buffer'");
  kiln_dtype t = dtype(p, "as the element type of a buffer");
  expect(p, T_COMMA, "after the buffer's element type");
  node_list shape = {0}, strides = {0};
  expr_list(p, &shape, "buffer shape");
  bool has_strides = false, has_offset = false, has_align = false, has_scope = false;
  ir_expr *offset = NULL;
  int align = 0;
  const char *scope = NULL;
  while (accept(p, T_COMMA)) {
    token opt = p->tok;
    bool *seen;
    if (tok_is(&opt, "strides"))
      seen = &has_strides;
    else if (tok_is(&opt, "offset"))
      seen = &has_offset;
    else if (tok_is(&opt, "align"))
      seen = &has_align;
    else if (tok_is(&opt, "scope"))
      seen = &has_scope;
    else
      fail_at(p, opt.span, KILN_ERR_PARSE,
              "expected a buffer option (strides, offset, align or scope), found %s",
              describe(&opt, b, sizeof b));
    if (*seen)
      fail_at(p, opt.span, KILN_ERR_PARSE, "buffer option '%.*s' is given twice", (int)opt.len,
              opt.s);
    *seen = true;
    next(p);
    expect(p, T_ASSIGN, "after the buffer option's name");
    if (seen == &has_strides) {
      expr_list(p, &strides, "buffer strides");
    } else if (seen == &has_offset) {
      offset = expr(p);
    } else if (seen == &has_align) {
      ir_span sp = p->tok.span;
      align = small_int(p, "the alignment");
      if (align <= 0 || (align & (align - 1)))
        fail_at(p, sp, KILN_ERR_PARSE, "the alignment must be a positive power of two, not %d",
                align);
    } else {
      scope = expect(p, T_STR, "(the storage scope)").str;
    }
  }
  expect(p, T_RPAREN, "after the buffer type");
  if (has_strides && strides.n != shape.n)
    fail_at(p, name_sp, KILN_ERR_SHAPE, "buffer '%s' has %d dimensions but %d strides", name,
            shape.n, strides.n);
  p->arena->span = name_sp;
  return need(p, ir_buffer_new(p->arena, name, t, shape.n, (ir_expr *const *)shape.items,
                               strides.n, (ir_expr *const *)strides.items, offset, align, scope));
}

/* ---- Statements ------------------------------------------------------------------------ */

static ir_stmt *stmt(parser *p);

/* One statement stands for itself, several make a seq. */
static ir_stmt *list_stmt(parser *p, node_list *l, ir_span sp) {
  if (l->n == 1) return l->items[0];
  p->arena->span = sp;
  return need(p, ir_seq_new(p->arena, l->n, (ir_stmt *const *)l->items));
}

/* stmt+ up to a closing "}" (not consumed). `open` is where the list's "{" was. */
static void stmt_list(parser *p, node_list *l, ir_span open) {
  do {
    if (at(p, T_EOF))
      fail_at(p, p->tok.span, KILN_ERR_PARSE, "expected '}' to close the '{' at %u:%u, found end of input",
              (unsigned)open.line, (unsigned)open.col);
    push(p, l, stmt(p));
  } while (!at(p, T_RBRACE));
}

// body = "{" stmt+ "}"
static ir_stmt *body(parser *p, const char *where) {
  ir_span open = expect(p, T_LBRACE, where).span;
  node_list l = {0};
  stmt_list(p, &l, open);
  next(p);
  return list_stmt(p, &l, open);
}

/* Parses a body with `def` (a variable or buffer) visible inside it. */
static ir_stmt *scoped_body(parser *p, ir_node *def, const char *where) {
  int mark = p->nscope;
  define(p, def->kind == IR_VAR ? ((ir_var *)def)->name : ((ir_buffer *)def)->name, def);
  ir_stmt *s = body(p, where);
  p->nscope = mark;
  return s;
}

// for = "for" IDENT ":" dtype "in" for_kind "(" expr "," expr ")" ["annotate" annots] body
static ir_stmt *for_stmt(parser *p) {
  static const char *const kinds[IR_FOR_KIND_COUNT] = {"range", "parallel", "vectorized",
                                                       "unrolled"};
  char b[64];
  ir_span sp = p->tok.span, vsp;
  next(p);
  const char *name = def_name(p, "loop variable", &vsp);
  expect(p, T_COLON, "after the loop variable's name");
  kiln_dtype t = dtype(p, "after ':'");
  expect_kw(p, "in", "after the loop variable's type");
  int kind = -1;
  for (int i = 0; i < IR_FOR_KIND_COUNT; i++)
    if (at_kw(p, kinds[i])) kind = i;
  if (kind < 0)
    fail_at(p, p->tok.span, KILN_ERR_PARSE,
            "expected a loop kind (range, parallel, vectorized or unrolled), found %s",
            describe(&p->tok, b, sizeof b));
  next(p);
  expect(p, T_LPAREN, "after the loop kind");
  ir_expr *min = expr(p);
  expect(p, T_COMMA, "between the loop's start and extent");
  ir_expr *extent = expr(p);
  expect(p, T_RPAREN, "after the loop's extent");
  node_list ann = {0};
  if (accept_kw(p, "annotate")) annots(p, &ann);
  p->arena->span = vsp;
  ir_var *v = need(p, ir_var_new(p->arena, name, t));
  ir_stmt *s = scoped_body(p, &v->h, "to open the loop body");
  p->arena->span = sp;
  return need(p, ir_for_new(p->arena, v, min, extent, kind, ann.n, (ir_annot *const *)ann.items, s));
}

// if = "if" expr body ["else" (body | if)]
static ir_stmt *if_stmt(parser *p) {
  ir_span sp = p->tok.span;
  next(p);
  ir_expr *cond = expr(p);
  ir_stmt *then_case = body(p, "after the if condition");
  ir_stmt *else_case = NULL;
  if (accept_kw(p, "else")) {
    if (at_kw(p, "if")) {
      enter(p);
      else_case = if_stmt(p);
      leave(p);
    } else {
      else_case = body(p, "after 'else'");
    }
  }
  p->arena->span = sp;
  return need(p, ir_if_new(p->arena, cond, then_case, else_case));
}

// let_stmt = "let" IDENT ":" dtype "=" expr body
static ir_stmt *let_stmt(parser *p) {
  ir_span sp = p->tok.span, vsp;
  next(p);
  const char *name = def_name(p, "let variable", &vsp);
  expect(p, T_COLON, "after the let variable's name");
  kiln_dtype t = dtype(p, "after ':'");
  expect(p, T_ASSIGN, "after the let variable's type");
  ir_expr *value = expr(p);
  p->arena->span = vsp;
  ir_var *v = need(p, ir_var_new(p->arena, name, t));
  ir_stmt *s = scoped_body(p, &v->h, "after the let value");
  p->arena->span = sp;
  return need(p, ir_let_stmt_new(p->arena, v, value, s));
}

// allocate = "allocate" IDENT ":" buffer_type body
static ir_stmt *allocate_stmt(parser *p) {
  ir_span sp = p->tok.span, bsp;
  next(p);
  const char *name = def_name(p, "allocated buffer", &bsp);
  expect(p, T_COLON, "after the buffer's name");
  ir_buffer *buf = buffer_type(p, name, bsp);
  ir_stmt *s = scoped_body(p, &buf->h, "after the allocated buffer's type");
  p->arena->span = sp;
  return need(p, ir_allocate_new(p->arena, buf, s));
}

// evaluate = "evaluate" "(" expr ")" ";"
static ir_stmt *evaluate_stmt(parser *p) {
  ir_span sp = p->tok.span;
  next(p);
  expect(p, T_LPAREN, "after 'evaluate'");
  ir_expr *e = expr(p);
  expect(p, T_RPAREN, "after the evaluated expression");
  expect(p, T_SEMI, "after 'evaluate(...)'");
  p->arena->span = sp;
  return need(p, ir_evaluate_new(p->arena, e));
}

// seq = "seq" "{" stmt+ "}"
static ir_stmt *seq_stmt(parser *p) {
  ir_span sp = p->tok.span;
  next(p);
  ir_span open = expect(p, T_LBRACE, "after 'seq'").span;
  node_list l = {0};
  stmt_list(p, &l, open);
  next(p);
  p->arena->span = sp;
  return need(p, ir_seq_new(p->arena, l.n, (ir_stmt *const *)l.items));
}

// store = IDENT "[" [expr ("," expr)*] "]" "=" expr ";"
static ir_stmt *store_stmt(parser *p) {
  char b[64];
  token name = p->tok;
  next(p);
  if (!at(p, T_LBRACK))
    fail_at(p, p->tok.span, KILN_ERR_PARSE,
            "expected '[' after '%.*s' (a store is BUFFER[indices] = value;), found %s",
            (int)name.len, name.s, describe(&p->tok, b, sizeof b));
  ir_buffer *buf = buffer_ref(p, &name);
  node_list idx = {0};
  indices(p, &idx);
  expect(p, T_ASSIGN, "after the stored-to element");
  ir_expr *value = expr(p);
  expect(p, T_SEMI, "after the stored value");
  p->arena->span = name.span;
  return need(p, ir_store_new(p->arena, buf, value, idx.n, (ir_expr *const *)idx.items));
}

// regions = "(" [region ("," region)*] ")"
// region  = IDENT "[" [range ("," range)*] "]"
// range   = expr ["+:" expr]
static void regions(parser *p, node_list *l, const char *what) {
  char where[64], b[64];
  snprintf(where, sizeof where, "after '%s'", what);
  expect(p, T_LPAREN, where);
  if (!at(p, T_RPAREN)) {
    for (;;) {
      token name = p->tok;
      if (!at(p, T_IDENT))
        fail_at(p, name.span, KILN_ERR_PARSE, "expected a buffer region in '%s', found %s", what,
                describe(&name, b, sizeof b));
      ir_buffer *buf = buffer_ref(p, &name);
      next(p);
      expect(p, T_LBRACK, "after the region's buffer");
      node_list ranges = {0};
      if (!at(p, T_RBRACK)) {
        for (;;) {
          ir_span rsp = p->tok.span;
          ir_expr *min = expr(p), *extent;
          if (accept(p, T_EXTENT)) {
            extent = expr(p);
          } else {
            char tb[32];
            if (!ir_dt_is_int(min->dtype))
              fail_at(p, rsp, KILN_ERR_TYPE, "a region index must be an integer, not %s",
                      kiln_dtype_str(min->dtype, tb, sizeof tb));
            p->arena->span = rsp;
            extent = need(p, ir_int(p->arena, ir_dt_scalar(min->dtype), 1));
          }
          p->arena->span = rsp;
          push(p, &ranges, need(p, ir_range_new(p->arena, min, extent)));
          if (!accept(p, T_COMMA)) break;
        }
      }
      expect(p, T_RBRACK, "after the region's ranges");
      p->arena->span = name.span;
      push(p, l, need(p, ir_region_new(p->arena, buf, ranges.n, (ir_range *const *)ranges.items)));
      if (!accept(p, T_COMMA)) break;
    }
  }
  snprintf(where, sizeof where, "after the regions of '%s'", what);
  expect(p, T_RPAREN, where);
}

// block = ["unrealized"] "block" STRING "(" [iter ("," iter)*] ")" ["where" expr] block_body
// iter  = IDENT ":" dtype "=" ("spatial" | "reduce") "(" expr "," expr ")" ["<-" expr]
// block_body = "{" (reads | writes | alloc | "annotate" annots)* ["init" body] stmt+ "}"
static ir_stmt *block_stmt(parser *p, bool realized, ir_span sp) {
  char b[64];
  token name = p->tok;
  if (!at(p, T_STR))
    fail_at(p, name.span, KILN_ERR_PARSE, "expected the block name (a string) after 'block', found %s",
            describe(&name, b, sizeof b));
  next(p);
  expect(p, T_LPAREN, "after the block name");
  node_list iters = {0}, values = {0};
  if (!at(p, T_RPAREN)) {
    for (;;) {
      ir_span vsp;
      const char *vname = def_name(p, "block iterator", &vsp);
      expect(p, T_COLON, "after the iterator's name");
      kiln_dtype t = dtype(p, "after ':'");
      expect(p, T_ASSIGN, "after the iterator's type");
      int type;
      if (accept_kw(p, "spatial"))
        type = IR_ITER_SPATIAL;
      else if (accept_kw(p, "reduce"))
        type = IR_ITER_REDUCE;
      else
        fail_at(p, p->tok.span, KILN_ERR_PARSE,
                "expected the iterator type (spatial or reduce), found %s",
                describe(&p->tok, b, sizeof b));
      expect(p, T_LPAREN, "after the iterator type");
      ir_expr *min = expr(p);
      expect(p, T_COMMA, "between the iterator's domain start and extent");
      ir_expr *extent = expr(p);
      expect(p, T_RPAREN, "after the iterator's domain");
      p->arena->span = vsp;
      ir_var *v = need(p, ir_var_new(p->arena, vname, t));
      push(p, &iters, need(p, ir_iter_var_new(p->arena, v, min, extent, type)));
      if (realized) {
        expect(p, T_ARROW, "and the iterator's value after its domain");
        push(p, &values, expr(p));
      } else if (at(p, T_ARROW)) {
        fail_at(p, p->tok.span, KILN_ERR_PARSE,
                "the iterators of an unrealized block are not bound to values");
      }
      if (!accept(p, T_COMMA)) break;
    }
  }
  expect(p, T_RPAREN, "after the block iterators");
  ir_expr *pred = NULL;
  if (at_kw(p, "where")) {
    if (!realized)
      fail_at(p, p->tok.span, KILN_ERR_PARSE, "an unrealized block has no 'where' predicate");
    next(p);
    pred = expr(p);
  }
  ir_span open = expect(p, T_LBRACE, "to open the block").span;
  int mark = p->nscope;
  for (int i = 0; i < iters.n; i++) {
    ir_var *v = ((ir_iter_var *)iters.items[i])->var;
    define(p, v->name, &v->h);
  }
  node_list reads = {0}, writes = {0}, allocs = {0}, ann = {0};
  bool has_reads = false, has_writes = false, has_annots = false;
  for (;;) {
    token item = p->tok;
    bool *seen = NULL;
    if (at_kw(p, "reads"))
      seen = &has_reads;
    else if (at_kw(p, "writes"))
      seen = &has_writes;
    else if (at_kw(p, "annotate"))
      seen = &has_annots;
    else if (!at_kw(p, "alloc"))
      break;
    if (seen && *seen)
      fail_at(p, item.span, KILN_ERR_PARSE, "'%.*s' is given twice in block \"%s\"",
              (int)item.len, item.s, name.str);
    next(p);
    if (seen == &has_reads) {
      regions(p, &reads, "reads");
    } else if (seen == &has_writes) {
      regions(p, &writes, "writes");
    } else if (seen == &has_annots) {
      annots(p, &ann);
    } else {
      ir_span bsp;
      const char *bname = def_name(p, "block buffer", &bsp);
      expect(p, T_COLON, "after the buffer's name");
      ir_buffer *buf = buffer_type(p, bname, bsp);
      push(p, &allocs, buf);
      define(p, buf->name, &buf->h);
    }
    if (seen) *seen = true;
  }
  ir_stmt *init = NULL;
  if (accept_kw(p, "init")) init = body(p, "after 'init'");
  node_list stmts = {0};
  stmt_list(p, &stmts, open);
  next(p);
  ir_stmt *s = list_stmt(p, &stmts, open);
  p->nscope = mark;
  p->arena->span = sp;
  ir_block *blk = need(p, ir_block_new(p->arena, name.str, iters.n, (ir_iter_var *const *)iters.items,
                                       reads.n, (ir_region *const *)reads.items, writes.n,
                                       (ir_region *const *)writes.items, allocs.n,
                                       (ir_buffer *const *)allocs.items, ann.n,
                                       (ir_annot *const *)ann.items, init, s));
  if (!realized) return &blk->h;
  p->arena->span = sp;
  return need(p, ir_block_realize_new(p->arena, values.n, (ir_expr *const *)values.items, pred, blk));
}

// stmt = for | if | let_stmt | allocate | evaluate | seq | block | store
static ir_stmt *stmt(parser *p) {
  char b[64];
  enter(p);
  ir_stmt *s;
  ir_span sp = p->tok.span;
  if (at_kw(p, "for")) {
    s = for_stmt(p);
  } else if (at_kw(p, "if")) {
    s = if_stmt(p);
  } else if (at_kw(p, "let")) {
    s = let_stmt(p);
  } else if (at_kw(p, "allocate")) {
    s = allocate_stmt(p);
  } else if (at_kw(p, "evaluate")) {
    s = evaluate_stmt(p);
  } else if (at_kw(p, "seq")) {
    s = seq_stmt(p);
  } else if (at_kw(p, "block")) {
    next(p);
    s = block_stmt(p, true, sp);
  } else if (at_kw(p, "unrealized")) {
    next(p);
    expect_kw(p, "block", "after 'unrealized'");
    s = block_stmt(p, false, sp);
  } else if (at(p, T_IDENT) && !ir_text_is_keyword(p->tok.s, p->tok.len)) {
    s = store_stmt(p);
  } else {
    fail_at(p, p->tok.span, KILN_ERR_PARSE, "expected a statement, found %s",
            describe(&p->tok, b, sizeof b));
  }
  leave(p);
  return s;
}

/* ---- Functions and modules ------------------------------------------------------------- */

// func  = "func" "@" (IDENT | STRING) "(" [param ("," param)*] ")" ["attrs" annots] body
// param = IDENT ":" (buffer_type | dtype)
static ir_func *func(parser *p) {
  char b[64];
  ir_span sp = p->tok.span;
  next(p);
  expect(p, T_AT, "before the function name");
  const char *fname;
  if (at(p, T_STR))
    fname = p->tok.str;
  else if (at(p, T_IDENT))
    fname = need(p, ir_arena_strndup(p->scratch, p->tok.s, p->tok.len));
  else
    fail_at(p, p->tok.span, KILN_ERR_PARSE, "expected the function name after '@', found %s",
            describe(&p->tok, b, sizeof b));
  next(p);
  expect(p, T_LPAREN, "after the function name");
  p->nscope = 0;
  node_list params = {0};
  if (!at(p, T_RPAREN)) {
    for (;;) {
      token pt = p->tok;
      ir_span psp;
      const char *pname = def_name(p, "parameter", &psp);
      if (lookup(p, &pt))
        fail_at(p, psp, KILN_ERR_PARSE, "parameter '%s' is defined twice", pname);
      expect(p, T_COLON, "after the parameter's name");
      ir_node *param;
      if (at_kw(p, "buffer")) {
        param = &buffer_type(p, pname, psp)->h;
      } else {
        kiln_dtype t = dtype(p, "or 'buffer(...)' after the parameter's name");
        p->arena->span = psp;
        param = need(p, ir_var_new(p->arena, pname, t));
      }
      define(p, param->kind == IR_VAR ? ((ir_var *)param)->name : ((ir_buffer *)param)->name,
             param);
      push(p, &params, param);
      if (!accept(p, T_COMMA)) break;
    }
  }
  expect(p, T_RPAREN, "after the parameters");
  node_list attrs = {0};
  if (accept_kw(p, "attrs")) annots(p, &attrs);
  ir_stmt *s = body(p, "to open the function body");
  p->nscope = 0;
  p->arena->span = sp;
  return need(p, ir_func_new(p->arena, fname, params.n, (ir_node *const *)params.items, attrs.n,
                             (ir_annot *const *)attrs.items, s));
}

// module = func*
static void module(parser *p) {
  char b[64];
  next(p);
  while (!at(p, T_EOF)) {
    if (!at_kw(p, "func"))
      fail_at(p, p->tok.span, KILN_ERR_PARSE, "expected 'func' to start a function, found %s",
              describe(&p->tok, b, sizeof b));
    kiln_status st = ir_module_add(p->mod, func(p));
    if (st) {
      p->lx.status = st;
      longjmp(p->lx.jmp, 1);
    }
  }
}

static void init_parser(parser *p, kiln_context *ctx, const char *text, size_t len) {
  memset(p, 0, sizeof *p);
  p->ctx = ctx;
  ir_lex_init(&p->lx, ctx, text, len);
}

kiln_status ir_parse_module(kiln_context *ctx, const char *text, size_t len, const char *name,
                            kiln_tir_module **out) {
  (void)name; /* callers put the file name in front of "LINE:COL: message" (see tools/kiln.c) */
  *out = NULL;
  ir_clear_error(ctx);
  parser p;
  init_parser(&p, ctx, text, len);
  p.mod = ir_module_new(ctx);
  if (!p.mod) return KILN_ERR_NOMEM;
  p.scratch = ir_arena_new(ctx);
  kiln_status st = p.scratch ? KILN_OK : KILN_ERR_NOMEM;
  if (!st) {
    p.arena = p.mod->arena;
    st = guarded(&p, module);
  }
  ir_arena_free(p.scratch);
  if (st) {
    kiln_tir_module_free(p.mod);
    return st;
  }
  /* Nodes that passes add to this arena later have no source position. */
  p.mod->arena->span = IR_NO_SPAN;
  *out = p.mod;
  return KILN_OK;
}

static void one_expr(parser *p) {
  for (int i = 0; i < p->nvars; i++)
    if (p->vars[i]) define(p, p->vars[i]->name, &p->vars[i]->h);
  next(p);
  p->result = expr(p);
  if (!at(p, T_EOF)) {
    char b[64];
    fail_at(p, p->tok.span, KILN_ERR_PARSE, "expected the end of the expression, found %s",
            describe(&p->tok, b, sizeof b));
  }
}

kiln_status ir_parse_expr(ir_arena *a, const char *text, int nvars, ir_var *const *vars,
                          ir_expr **out) {
  if (!a || !out) return KILN_ERR_MISUSE;
  *out = NULL;
  kiln_context *ctx = a->ctx;
  if (!text || (nvars > 0 && !vars))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "ir_parse_expr: NULL argument");
  ir_clear_error(ctx);
  parser p;
  init_parser(&p, ctx, text, strlen(text));
  p.arena = a;
  p.nvars = nvars;
  p.vars = vars;
  if (!(p.scratch = ir_arena_new(ctx))) return KILN_ERR_NOMEM;
  ir_span saved = a->span;
  kiln_status st = guarded(&p, one_expr);
  a->span = saved;
  ir_arena_free(p.scratch);
  if (!st) *out = p.result;
  return st;
}

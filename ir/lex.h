/* lex.h: the pieces the two text formats share (TIR: ir/parser.c and ir/printer.c; Relay:
 * relay/text.c). For parsers: a lexer position with its line and column, the error exit
 * (longjmp to the parser's entry), whitespace and comments, strings with escapes, numbers and
 * locale-independent strtod. For printers: quoted strings, type suffixes, the shortest float
 * text that reads back, and a set of names for making printed names unique. Internal to the
 * library; Relay builds on it, TIR never depends on Relay. */
#ifndef KILN_IR_LEX_H
#define KILN_IR_LEX_H

#include <setjmp.h>
#include <stdarg.h>

#include "base.h"

/* ---- Characters -------------------------------------------------------------------------- */

static inline bool ir_is_digit(int c) { return c >= '0' && c <= '9'; }
static inline bool ir_is_ident_start(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static inline bool ir_is_ident_char(int c) { return ir_is_ident_start(c) || ir_is_digit(c); }

/* The value of a hex digit, or -1. */
int ir_hex_value(int c);

/* ---- Lexer ------------------------------------------------------------------------------- */

/* Where a parser stands in its source, and its error exit. A parser sets `jmp` with setjmp at
 * its entry (see guarded in parser.c); every error below records its message on ctx, puts
 * the status in `status` and longjmps there. Copying the struct minus jmp saves a position
 * (for lookahead). */
typedef struct ir_lexer {
  kiln_context *ctx;
  const char *src;
  size_t len, pos;    /* pos: where lexing continues */
  uint32_t line;      /* line of pos, from 1 */
  size_t line_start;  /* offset of the first byte of that line */
  kiln_status status; /* the error being unwound */
  jmp_buf jmp;
} ir_lexer;

/* Starts lexing src (len bytes) at line 1. */
void ir_lex_init(ir_lexer *lx, kiln_context *ctx, const char *src, size_t len);

/* Records an error at sp on the context and unwinds to the parser's entry. */
_Noreturn void ir_lex_fail(ir_lexer *lx, ir_span sp, kiln_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Unwinds with the error already on the context (a constructor or an allocation failed);
 * an internal error at sp if there is none. */
_Noreturn void ir_lex_fail_ctx(ir_lexer *lx, ir_span sp);

/* The line and column of byte offset pos (which is on the current line). */
ir_span ir_lex_span(const ir_lexer *lx, size_t pos);

/* Skips spaces, tabs, carriage returns, newlines (counting lines) and # comments. */
void ir_lex_skip_space(ir_lexer *lx);

/* Lexes a string at lx->pos (on the opening quote; sp is its position) and returns its value
 * with the escapes \" \\ \n \t \r \xHH decoded, NUL-terminated, in arena `out`. Strings end
 * on the line they start and cannot contain a NUL byte. Moves past the closing quote. */
const char *ir_lex_string(ir_lexer *lx, ir_arena *out, ir_span sp);

/* What ir_lex_number accepts besides digits. */
enum {
  IR_NUM_HEX = 1,        /* 0x followed by letters and digits */
  IR_NUM_FRACTION = 2,   /* a '.' and digits, an exponent, then a suffix of letters/digits */
  IR_NUM_STRICT_DOT = 4, /* with FRACTION: a '.' must be followed by a digit (else an error);
                          * without it a '.' not followed by a digit ends the number */
};

/* Moves lx->pos past the number at lx->pos (on a digit), in the syntax `flags` allows; the
 * caller decodes and checks the token's text. */
void ir_lex_number(ir_lexer *lx, unsigned flags);

/* ---- Numbers ----------------------------------------------------------------------------- */

/* strtod on the NUL-terminated C-format number in buf ('.' as the decimal point whatever the
 * locale: buf is changed in place to the locale's point). *end (if not NULL) is where
 * strtod stopped; *overflow is set when the number is too large for a double. */
double ir_strtod_c(char *buf, char **end, bool *overflow);

/* A number in the C format, entirely, into *out. False when s is not one number, is longer
 * than 95 characters, or overflows a double. */
bool ir_text_to_double(const char *s, double *out);

/* ---- Printing ---------------------------------------------------------------------------- */

/* Appends s in double quotes, with \" \\ \n \t \r and \xHH for other control and non-ASCII
 * bytes (what ir_lex_string reads back). */
void ir_sb_put_quoted(ir_strbuf *sb, const char *s);

/* The literal suffix of a scalar dtype: i8, u64, f32, bf16, ... (in buf). */
const char *ir_dtype_suffix(kiln_dtype t, char *buf, size_t cap);

/* Whether `back` (what the text read back as) stands for the same value; arg is the caller's. */
typedef bool (*ir_float_same_fn)(double back, const void *arg);

/* The shortest decimal (at most 17 significant digits, '.' as the decimal point) that reads
 * back (ir_text_to_double) as v, into buf; plain notation below 1e17 (1000, not 1e+03) when
 * that reads back too. `same` decides what reading back means (for narrower types than
 * double); NULL: the same double, bit for bit. v must be finite. */
void ir_format_float_shortest(char *buf, size_t cap, double v, ir_float_same_fn same,
                              const void *arg);

/* ---- Name sets --------------------------------------------------------------------------- */

/* The names already given out, each with the next numeric suffix to try when another name
 * wants it (so n variables called `i` cost O(n), not O(n^2)). Open addressing over context
 * memory; the strings belong to the caller (usually a printer's arena). */
typedef struct ir_nameset_entry {
  const char *s;
  unsigned long next;
} ir_nameset_entry;

typedef struct ir_nameset {
  kiln_context *ctx;
  ir_nameset_entry *slots;
  size_t cap, len;
} ir_nameset;

void ir_nameset_init(ir_nameset *ns, kiln_context *ctx);
/* Frees the table; the set is empty and usable again. */
void ir_nameset_free(ir_nameset *ns);
ir_nameset_entry *ir_nameset_find(const ir_nameset *ns, const char *s);
/* Adds s (not yet present); false when out of memory. */
bool ir_nameset_add(ir_nameset *ns, const char *s);
/* Adds and returns base if it is free, otherwise the first free base_1, base_2, ... (made in
 * arena `names`). NULL when out of memory. */
const char *ir_nameset_fresh(ir_nameset *ns, ir_arena *names, const char *base);

#endif

/* lex.c: the lexing and formatting pieces that the TIR text format (ir/parser.c,
 * ir/printer.c) and the Relay text format (relay/text.c) share: see lex.h. Both formats use
 * the same comments, strings, number syntax (with small differences chosen by flags) and
 * float spelling, so a change here changes both. */
#include "lex.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ir_hex_value(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* ---- Lexer ------------------------------------------------------------------------------- */

void ir_lex_init(ir_lexer *lx, kiln_context *ctx, const char *src, size_t len) {
  lx->ctx = ctx;
  lx->src = src;
  lx->len = len;
  lx->pos = 0;
  lx->line = 1;
  lx->line_start = 0;
  lx->status = KILN_OK;
}

_Noreturn void ir_lex_fail(ir_lexer *lx, ir_span sp, kiln_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ir_vfail(lx->ctx, sp, code, fmt, ap);
  va_end(ap);
  lx->status = code;
  longjmp(lx->jmp, 1);
}

_Noreturn void ir_lex_fail_ctx(ir_lexer *lx, ir_span sp) {
  if (!lx->ctx->code)
    ir_fail(lx->ctx, sp, KILN_ERR_INTERNAL, "a constructor failed without an error");
  lx->status = lx->ctx->code;
  longjmp(lx->jmp, 1);
}

ir_span ir_lex_span(const ir_lexer *lx, size_t pos) {
  size_t col = pos - lx->line_start + 1;
  return (ir_span){lx->line, col > UINT32_MAX ? UINT32_MAX : (uint32_t)col};
}

void ir_lex_skip_space(ir_lexer *lx) {
  while (lx->pos < lx->len) {
    char c = lx->src[lx->pos];
    if (c == '\n') {
      lx->pos++;
      lx->line++;
      lx->line_start = lx->pos;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      lx->pos++;
    } else if (c == '#') {
      while (lx->pos < lx->len && lx->src[lx->pos] != '\n') lx->pos++;
    } else {
      break;
    }
  }
}

/* First finds the closing quote (an escaped quote does not close; a newline ends the search),
 * then decodes into a buffer as long as the raw text, which is enough: escapes only shrink. */
const char *ir_lex_string(ir_lexer *lx, ir_arena *arena, ir_span sp) {
  const char *src = lx->src;
  size_t start = lx->pos, i = start + 1;
  while (i < lx->len && src[i] != '"' && src[i] != '\n') {
    if (src[i] == '\\' && i + 1 < lx->len && src[i + 1] != '\n') i++;
    i++;
  }
  if (i >= lx->len || src[i] != '"')
    ir_lex_fail(lx, sp, KILN_ERR_PARSE, "unterminated string (strings end on the line they start)");
  char *out = ir_arena_alloc(arena, i - start);
  if (!out) ir_lex_fail_ctx(lx, sp);
  size_t n = 0;
  for (size_t k = start + 1; k < i; k++) {
    char c = src[k];
    if (c == 0)
      ir_lex_fail(lx, ir_lex_span(lx, k), KILN_ERR_PARSE, "a string cannot contain a NUL byte");
    if (c != '\\') {
      out[n++] = c;
      continue;
    }
    char e = src[++k];
    ir_span esp = ir_lex_span(lx, k - 1);
    switch (e) {
    case '"': out[n++] = '"'; break;
    case '\\': out[n++] = '\\'; break;
    case 'n': out[n++] = '\n'; break;
    case 't': out[n++] = '\t'; break;
    case 'r': out[n++] = '\r'; break;
    case 'x': {
      int hi = k + 1 < i ? ir_hex_value((unsigned char)src[k + 1]) : -1;
      int lo = k + 2 < i ? ir_hex_value((unsigned char)src[k + 2]) : -1;
      if (hi < 0 || lo < 0)
        ir_lex_fail(lx, esp, KILN_ERR_PARSE, "expected two hex digits after '\\x'");
      if (hi == 0 && lo == 0)
        ir_lex_fail(lx, esp, KILN_ERR_PARSE, "a string cannot contain a NUL byte");
      out[n++] = (char)(hi * 16 + lo);
      k += 2;
      break;
    }
    default:
      if ((unsigned char)e >= 0x20 && (unsigned char)e < 0x7f)
        ir_lex_fail(lx, esp, KILN_ERR_PARSE,
                    "unknown escape '\\%c' in a string (use \\\" \\\\ \\n \\t \\r or \\xHH)", e);
      ir_lex_fail(lx, esp, KILN_ERR_PARSE, "unknown escape in a string");
    }
  }
  out[n] = 0;
  lx->pos = i + 1;
  return out;
}

/* number = "0x" (letter | digit)*                                        (IR_NUM_HEX)
 *        | digit+ ["." digit+] [("e" | "E") ["+" | "-"] digit+] (letter | digit | "_")*
 *                                    (fraction, exponent and suffix with IR_NUM_FRACTION)
 * An 'e' not followed by exponent digits is part of the suffix. */
void ir_lex_number(ir_lexer *lx, unsigned flags) {
  const char *src = lx->src;
  size_t i = lx->pos, len = lx->len;
  if ((flags & IR_NUM_HEX) && src[i] == '0' && i + 1 < len &&
      (src[i + 1] == 'x' || src[i + 1] == 'X')) {
    i += 2;
    while (i < len && ir_is_ident_char((unsigned char)src[i])) i++;
    lx->pos = i;
    return;
  }
  while (i < len && ir_is_digit((unsigned char)src[i])) i++;
  if (flags & IR_NUM_FRACTION) {
    if ((flags & IR_NUM_STRICT_DOT) && i < len && src[i] == '.' &&
        (i + 1 >= len || !ir_is_digit((unsigned char)src[i + 1])))
      ir_lex_fail(lx, ir_lex_span(lx, i), KILN_ERR_PARSE, "expected a digit after '.' in a number");
    if (i + 1 < len && src[i] == '.' && ir_is_digit((unsigned char)src[i + 1])) {
      i++;
      while (i < len && ir_is_digit((unsigned char)src[i])) i++;
    }
    if (i < len && (src[i] == 'e' || src[i] == 'E')) {
      size_t j = i + 1;
      if (j < len && (src[j] == '+' || src[j] == '-')) j++;
      if (j < len && ir_is_digit((unsigned char)src[j])) {
        i = j;
        while (i < len && ir_is_digit((unsigned char)src[i])) i++;
      }
    }
    while (i < len && ir_is_ident_char((unsigned char)src[i])) i++;
  }
  lx->pos = i;
}

/* ---- Numbers ----------------------------------------------------------------------------- */

/* The locale's decimal point when it is one character other than '.', else 0. */
static char locale_point(void) {
  const char *dp = localeconv()->decimal_point;
  return dp && dp[0] && dp[0] != '.' && !dp[1] ? dp[0] : 0;
}

double ir_strtod_c(char *buf, char **end, bool *overflow) {
  char point = locale_point();
  if (point) {
    char *c = strchr(buf, '.');
    if (c) *c = point;
  }
  errno = 0;
  double d = strtod(buf, end);
  *overflow = errno == ERANGE && isinf(d);
  return d;
}

bool ir_text_to_double(const char *s, double *out) {
  char buf[96];
  size_t n = strlen(s);
  if (n >= sizeof buf) return false;
  memcpy(buf, s, n + 1);
  char *end;
  bool overflow;
  double d = ir_strtod_c(buf, &end, &overflow);
  if (end == buf || *end || overflow) return false;
  *out = d;
  return true;
}

/* ---- Printing ---------------------------------------------------------------------------- */

void ir_sb_put_quoted(ir_strbuf *sb, const char *s) {
  ir_sb_putn(sb, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"') ir_sb_puts(sb, "\\\"");
    else if (c == '\\') ir_sb_puts(sb, "\\\\");
    else if (c == '\n') ir_sb_puts(sb, "\\n");
    else if (c == '\t') ir_sb_puts(sb, "\\t");
    else if (c == '\r') ir_sb_puts(sb, "\\r");
    else if (c < 0x20 || c >= 0x7f) ir_sb_printf(sb, "\\x%02x", c);
    else ir_sb_putn(sb, (const char *)&c, 1);
  }
  ir_sb_putn(sb, "\"", 1);
}

const char *ir_dtype_suffix(kiln_dtype t, char *buf, size_t cap) {
  const char *code = t.code == KILN_TYPE_INT ? "i" : t.code == KILN_TYPE_UINT ? "u"
                     : t.code == KILN_TYPE_BFLOAT ? "bf" : "f";
  snprintf(buf, cap, "%s%u", code, (unsigned)t.bits);
  return buf;
}

/* snprintf of "%.*g" with '.' as the decimal point. */
static void format_g(char *buf, size_t cap, int prec, double v) {
  snprintf(buf, cap, "%.*g", prec, v);
  char point = locale_point();
  if (point) {
    char *c = strchr(buf, point);
    if (c) *c = '.';
  }
}

static bool reads_back(const char *text, double v, ir_float_same_fn same, const void *arg) {
  double d;
  if (!ir_text_to_double(text, &d)) return false;
  return same ? same(d, arg) : memcmp(&d, &v, sizeof d) == 0;
}

/* Tries 1, 2, ... significant digits; 17 always read back as the same double. %g switches to
 * an exponent as soon as the digits run out (1000 -> "1e+03"); below 1e17 plain notation is
 * used instead when it reads back (for doubles it always does: more digits stay exact). */
void ir_format_float_shortest(char *buf, size_t cap, double v, ir_float_same_fn same,
                              const void *arg) {
  int prec = 1;
  for (; prec < 17; prec++) {
    format_g(buf, cap, prec, v);
    if (reads_back(buf, v, same, arg)) break;
  }
  if (prec == 17) format_g(buf, cap, 17, v);
  const char *e = strchr(buf, 'e');
  long exp10 = e ? strtol(e + 1, NULL, 10) : -1;
  if (exp10 >= prec && exp10 <= 16) {
    char plain[64];
    format_g(plain, sizeof plain, (int)exp10 + 1, v);
    if (reads_back(plain, v, same, arg)) snprintf(buf, cap, "%s", plain);
  }
}

/* ---- Name sets --------------------------------------------------------------------------- */

void ir_nameset_init(ir_nameset *ns, kiln_context *ctx) {
  ns->ctx = ctx;
  ns->slots = NULL;
  ns->cap = ns->len = 0;
}

void ir_nameset_free(ir_nameset *ns) {
  ir_free(ns->ctx, ns->slots, ns->cap * sizeof *ns->slots);
  ns->slots = NULL;
  ns->cap = ns->len = 0;
}

ir_nameset_entry *ir_nameset_find(const ir_nameset *ns, const char *s) {
  if (!ns->cap) return NULL;
  for (size_t i = ir_hash_str(0, s) & (ns->cap - 1);; i = (i + 1) & (ns->cap - 1)) {
    if (!ns->slots[i].s) return NULL;
    if (strcmp(ns->slots[i].s, s) == 0) return &ns->slots[i];
  }
}

/* Keeps the table at most half full; capacities are powers of two. */
bool ir_nameset_add(ir_nameset *ns, const char *s) {
  if ((ns->len + 1) * 2 > ns->cap) {
    size_t cap = ns->cap ? ns->cap * 2 : 64;
    ir_nameset_entry *slots = ir_malloc(ns->ctx, cap * sizeof *slots);
    if (!slots) return false;
    memset(slots, 0, cap * sizeof *slots);
    for (size_t i = 0; i < ns->cap; i++) {
      if (!ns->slots[i].s) continue;
      size_t j = ir_hash_str(0, ns->slots[i].s) & (cap - 1);
      while (slots[j].s) j = (j + 1) & (cap - 1);
      slots[j] = ns->slots[i];
    }
    ir_free(ns->ctx, ns->slots, ns->cap * sizeof *ns->slots);
    ns->slots = slots;
    ns->cap = cap;
  }
  size_t i = ir_hash_str(0, s) & (ns->cap - 1);
  while (ns->slots[i].s) i = (i + 1) & (ns->cap - 1);
  ns->slots[i] = (ir_nameset_entry){s, 1};
  ns->len++;
  return true;
}

const char *ir_nameset_fresh(ir_nameset *ns, ir_arena *names, const char *base) {
  ir_nameset_entry *e = ir_nameset_find(ns, base);
  const char *name = base;
  if (e) {
    size_t cap = strlen(base) + 24;
    char *cand = ir_arena_alloc(names, cap);
    if (!cand) return NULL;
    do snprintf(cand, cap, "%s_%lu", base, e->next++);
    while (ir_nameset_find(ns, cand));
    name = cand;
  }
  return ir_nameset_add(ns, name) ? name : NULL;
}

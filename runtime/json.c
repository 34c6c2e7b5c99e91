/* json.c: the runtime's JSON reader (see json.h). A recursive descent parser over a byte
 * range, strict RFC 8259: no comments, no trailing commas, no NaN/Infinity, UTF-8 checked,
 * escapes decoded (surrogate pairs joined, lone surrogates refused). Every value lives in one
 * arena of the document, so freeing is one walk over its chunks and an error frees everything
 * at once. Grammar rules are written above the functions that implement them. */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* ---- Arena ------------------------------------------------------------------------------ */

/* A chunk of the arena: allocations are carved from data[used, cap). */
typedef struct chunk {
  struct chunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
} chunk;

#define CHUNK_SIZE 16384

struct rt_json_doc {
  chunk *chunks; /* newest first */
  rt_json *root;
};

/* size bytes, 16-byte aligned, from the document's arena; NULL when out of memory. Requests
 * larger than a quarter chunk get a chunk of their own. */
static void *arena_alloc(rt_json_doc *d, size_t size) {
  size = (size + 15) & ~(size_t)15;
  if (size == 0) size = 16;
  chunk *c = d->chunks;
  if (!c || c->cap - c->used < size) {
    size_t cap = size > CHUNK_SIZE / 4 ? size : CHUNK_SIZE;
    if (cap > SIZE_MAX - sizeof(chunk)) return NULL;
    chunk *n = malloc(sizeof(chunk) + cap);
    if (!n) return NULL;
    n->used = 0;
    n->cap = cap;
    if (c && cap != CHUNK_SIZE) { /* a big one: keep filling the current small chunk */
      n->next = c->next;
      c->next = n;
    } else {
      n->next = c;
      d->chunks = n;
    }
    c = n;
  }
  void *p = c->data + c->used;
  c->used += size;
  return p;
}

void rt_json_free(rt_json_doc *doc) {
  if (!doc) return;
  chunk *c = doc->chunks;
  while (c) {
    chunk *next = c->next;
    free(c);
    c = next;
  }
  free(doc);
}

/* ---- Parser state ----------------------------------------------------------------------- */

typedef struct parser {
  const unsigned char *s;
  size_t len, pos;
  int depth;
  rt_json_doc *doc;
  char *err;
  size_t cap;
} parser;

/* Records "byte N: message" (N = at) and returns status. */
static kiln_status fail(parser *p, kiln_status status, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static kiln_status fail(parser *p, kiln_status status, size_t at, const char *fmt, ...) {
  if (!p->err || p->cap == 0) return status;
  int k = snprintf(p->err, p->cap, "byte %zu: ", at);
  if (k >= 0 && (size_t)k < p->cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + k, p->cap - (size_t)k, fmt, ap);
    va_end(ap);
  }
  return status;
}

static kiln_status nomem(parser *p) {
  return fail(p, KILN_ERR_NOMEM, p->pos, "out of memory");
}

static void skip_ws(parser *p) {
  while (p->pos < p->len) {
    unsigned char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

/* A readable description of the byte at pos for "expected X, found Y" messages. */
static const char *found(parser *p, char *buf, size_t cap) {
  if (p->pos >= p->len) return "the end of the text";
  unsigned char c = p->s[p->pos];
  if (c >= 0x21 && c < 0x7f) snprintf(buf, cap, "'%c'", c);
  else snprintf(buf, cap, "byte 0x%02x", c);
  return buf;
}

static rt_json *new_value(parser *p, rt_json_kind kind, size_t offset) {
  rt_json *v = arena_alloc(p->doc, sizeof *v);
  if (!v) return NULL;
  memset(v, 0, sizeof *v);
  v->kind = kind;
  v->offset = offset;
  return v;
}

static kiln_status parse_value(parser *p, rt_json **out);

/* ---- Strings ---------------------------------------------------------------------------- */

static int hex_digit(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Four hex digits at p->pos (after "\u"); advances past them. */
static kiln_status read_hex4(parser *p, unsigned *out) {
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    int d = p->pos < p->len ? hex_digit(p->s[p->pos]) : -1;
    if (d < 0) return fail(p, KILN_ERR_PARSE, p->pos, "expected 4 hex digits after \\u");
    v = v * 16 + (unsigned)d;
    p->pos++;
  }
  *out = v;
  return KILN_OK;
}

/* Writes code point cp as UTF-8 at q; returns the byte count. */
static size_t put_utf8(unsigned char *q, unsigned cp) {
  if (cp < 0x80) {
    q[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    q[0] = (unsigned char)(0xC0 | cp >> 6);
    q[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    q[0] = (unsigned char)(0xE0 | cp >> 12);
    q[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    q[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  q[0] = (unsigned char)(0xF0 | cp >> 18);
  q[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
  q[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
  q[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* The length of the well-formed UTF-8 sequence starting at s[0] (n bytes available), or 0
 * when it is malformed (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) need = 2;
  else if (c == 0xE0) need = 3, lo = 0xA0;
  else if (c >= 0xE1 && c <= 0xEC) need = 3;
  else if (c == 0xED) need = 3, hi = 0x9F;
  else if (c >= 0xEE && c <= 0xEF) need = 3;
  else if (c == 0xF0) need = 4, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) need = 4;
  else if (c == 0xF4) need = 4, hi = 0x8F;
  else return 0;
  if (n < need || s[1] < lo || s[1] > hi) return 0;
  for (size_t k = 2; k < need; k++)
    if (s[k] < 0x80 || s[k] > 0xBF) return 0;
  return need;
}

/* string = '"' (char | '\' escape)* '"'
 * The decoded text is never longer than the raw text, so the buffer is sized from the raw
 * length (found by a first scan for the closing quote) and filled in a second pass. */
static kiln_status parse_string_raw(parser *p, const char **str, size_t *len) {
  size_t start = p->pos;
  p->pos++; /* the opening quote */
  size_t end = p->pos;
  while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
  if (end >= p->len) return fail(p, KILN_ERR_PARSE, start, "unterminated string");
  unsigned char *buf = arena_alloc(p->doc, end - p->pos + 1);
  if (!buf) return nomem(p);
  size_t n = 0;
  while (p->pos < end) {
    unsigned char c = p->s[p->pos];
    if (c < 0x20)
      return fail(p, KILN_ERR_PARSE, p->pos, "control character 0x%02x in a string (escape it)", c);
    if (c != '\\') {
      size_t k = utf8_seq_len(p->s + p->pos, end - p->pos);
      if (k == 0) return fail(p, KILN_ERR_PARSE, p->pos, "invalid UTF-8 in a string");
      memcpy(buf + n, p->s + p->pos, k);
      n += k;
      p->pos += k;
      continue;
    }
    size_t esc = p->pos++;
    unsigned char e = p->s[p->pos++];
    switch (e) {
    case '"': buf[n++] = '"'; break;
    case '\\': buf[n++] = '\\'; break;
    case '/': buf[n++] = '/'; break;
    case 'b': buf[n++] = '\b'; break;
    case 'f': buf[n++] = '\f'; break;
    case 'n': buf[n++] = '\n'; break;
    case 'r': buf[n++] = '\r'; break;
    case 't': buf[n++] = '\t'; break;
    case 'u': {
      unsigned cp, lo;
      kiln_status st = read_hex4(p, &cp);
      if (st != KILN_OK) return st;
      if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(p, KILN_ERR_PARSE, esc, "lone low surrogate \\u%04X", cp);
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (p->pos + 1 >= end || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
          return fail(p, KILN_ERR_PARSE, esc, "high surrogate \\u%04X without its low half", cp);
        p->pos += 2;
        st = read_hex4(p, &lo);
        if (st != KILN_OK) return st;
        if (lo < 0xDC00 || lo > 0xDFFF)
          return fail(p, KILN_ERR_PARSE, esc, "high surrogate \\u%04X without its low half", cp);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      }
      n += put_utf8(buf + n, cp);
      break;
    }
    default:
      return fail(p, KILN_ERR_PARSE, esc, "invalid escape '\\%c'", e >= 0x21 && e < 0x7f ? e : '?');
    }
  }
  buf[n] = 0;
  p->pos = end + 1;
  *str = (const char *)buf;
  *len = n;
  return KILN_OK;
}

/* ---- Numbers ---------------------------------------------------------------------------- */

/* The "C" locale for strtod_l: the decimal point must be '.' whatever locale the host
 * process (say, a Python program) has set. Created once. */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

/* number = '-'? ('0' | [1-9][0-9]*) ('.' [0-9]+)? ([eE] [+-]? [0-9]+)? */
static kiln_status parse_number(parser *p, rt_json **out) {
  size_t start = p->pos;
  const unsigned char *s = p->s;
  size_t i = p->pos;
  int neg = 0, frac = 0;
  if (i < p->len && s[i] == '-') neg = 1, i++;
  if (i >= p->len || s[i] < '0' || s[i] > '9')
    return fail(p, KILN_ERR_PARSE, start, "invalid number");
  /* The integer part, accumulated as a negative number so that INT64_MIN fits. */
  int fits = 1;
  int64_t acc = 0;
  if (s[i] == '0') {
    i++;
    if (i < p->len && s[i] >= '0' && s[i] <= '9')
      return fail(p, KILN_ERR_PARSE, start, "invalid number (leading zero)");
  } else {
    for (; i < p->len && s[i] >= '0' && s[i] <= '9'; i++) {
      int d = s[i] - '0';
      if (acc < (INT64_MIN + d) / 10) fits = 0;
      else acc = acc * 10 - d;
    }
  }
  if (i < p->len && s[i] == '.') {
    frac = 1;
    i++;
    if (i >= p->len || s[i] < '0' || s[i] > '9')
      return fail(p, KILN_ERR_PARSE, start, "invalid number (no digit after '.')");
    while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
  }
  if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
    frac = 1;
    i++;
    if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
    if (i >= p->len || s[i] < '0' || s[i] > '9')
      return fail(p, KILN_ERR_PARSE, start, "invalid number (no digit in the exponent)");
    while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
  }
  rt_json *v = new_value(p, RT_JSON_NUMBER, start);
  if (!v) return nomem(p);
  if (!neg && acc == INT64_MIN) fits = 0;
  if (!frac && fits) {
    v->is_int = 1;
    v->i = neg ? acc : -acc;
    v->num = (double)v->i;
  } else {
    /* strtod needs a NUL-terminated copy. */
    char *copy = arena_alloc(p->doc, i - start + 1);
    if (!copy) return nomem(p);
    memcpy(copy, s + start, i - start);
    copy[i - start] = 0;
    pthread_once(&c_locale_once, make_c_locale);
    v->num = c_locale ? strtod_l(copy, NULL, c_locale) : strtod(copy, NULL);
    if (!isfinite(v->num)) return fail(p, KILN_ERR_PARSE, start, "number out of range");
  }
  p->pos = i;
  *out = v;
  return KILN_OK;
}

/* ---- Arrays and objects ----------------------------------------------------------------- */

/* A growable list of values (malloc'ed while one array or object is parsed, then copied into
 * the arena). */
typedef struct vec {
  rt_json **items;
  const char **keys;
  size_t *key_lens;
  int n, cap;
} vec;

static void vec_free(vec *v) {
  free(v->items);
  free(v->keys);
  free(v->key_lens);
}

static int vec_push(vec *v, rt_json *item, const char *key, size_t key_len) {
  if (v->n == v->cap) {
    if (v->cap > (1 << 28)) return 0; /* keeps n within an int and sizes far from overflow */
    int cap = v->cap ? v->cap * 2 : 8;
    rt_json **items = realloc(v->items, (size_t)cap * sizeof *items);
    if (!items) return 0;
    v->items = items;
    const char **keys = realloc(v->keys, (size_t)cap * sizeof *keys);
    if (!keys) return 0;
    v->keys = keys;
    size_t *lens = realloc(v->key_lens, (size_t)cap * sizeof *lens);
    if (!lens) return 0;
    v->key_lens = lens;
    v->cap = cap;
  }
  v->items[v->n] = item;
  v->keys[v->n] = key;
  v->key_lens[v->n] = key_len;
  v->n++;
  return 1;
}

/* Moves the collected items (and keys) into the arena, into v. */
static kiln_status vec_finish(parser *p, vec *list, rt_json *v, int with_keys) {
  v->n = list->n;
  if (list->n == 0) return KILN_OK;
  v->items = arena_alloc(p->doc, (size_t)list->n * sizeof *v->items);
  if (!v->items) return nomem(p);
  memcpy(v->items, list->items, (size_t)list->n * sizeof *v->items);
  if (with_keys) {
    v->keys = arena_alloc(p->doc, (size_t)list->n * sizeof *v->keys);
    v->key_lens = arena_alloc(p->doc, (size_t)list->n * sizeof *v->key_lens);
    if (!v->keys || !v->key_lens) return nomem(p);
    memcpy(v->keys, list->keys, (size_t)list->n * sizeof *v->keys);
    memcpy(v->key_lens, list->key_lens, (size_t)list->n * sizeof *v->key_lens);
  }
  return KILN_OK;
}

/* array = '[' (value (',' value)*)? ']' */
static kiln_status parse_array(parser *p, rt_json *v) {
  vec list = {0};
  kiln_status st = KILN_OK;
  char buf[16];
  p->pos++; /* '[' */
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == ']') {
    p->pos++;
    return KILN_OK;
  }
  for (;;) {
    rt_json *item;
    st = parse_value(p, &item);
    if (st != KILN_OK) break;
    if (!vec_push(&list, item, NULL, 0)) {
      st = nomem(p);
      break;
    }
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ',') {
      p->pos++;
      continue;
    }
    if (p->pos < p->len && p->s[p->pos] == ']') {
      p->pos++;
      st = vec_finish(p, &list, v, 0);
      break;
    }
    st = fail(p, KILN_ERR_PARSE, p->pos, "expected ',' or ']' in an array, found %s",
              found(p, buf, sizeof buf));
    break;
  }
  vec_free(&list);
  return st;
}

/* For sorting key indices when checking an object for duplicate keys. */
typedef struct key_ref {
  const char *key;
  size_t len;
} key_ref;

static int cmp_key(const void *a, const void *b) {
  const key_ref *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->key, y->key, n);
  if (c) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* Refuses an object with two equal keys (sorting a copy of the keys: O(n log n)). */
static kiln_status check_duplicates(parser *p, const vec *list, size_t at) {
  if (list->n < 2) return KILN_OK;
  key_ref *refs = malloc((size_t)list->n * sizeof *refs);
  if (!refs) return nomem(p);
  for (int i = 0; i < list->n; i++) refs[i] = (key_ref){list->keys[i], list->key_lens[i]};
  qsort(refs, (size_t)list->n, sizeof *refs, cmp_key);
  kiln_status st = KILN_OK;
  for (int i = 1; i < list->n && st == KILN_OK; i++)
    if (cmp_key(&refs[i - 1], &refs[i]) == 0)
      st = fail(p, KILN_ERR_PARSE, at, "duplicate key \"%.*s\" in an object",
                (int)(refs[i].len > 64 ? 64 : refs[i].len), refs[i].key);
  free(refs);
  return st;
}

/* object = '{' (string ':' value (',' string ':' value)*)? '}' */
static kiln_status parse_object(parser *p, rt_json *v) {
  vec list = {0};
  kiln_status st = KILN_OK;
  char buf[16];
  size_t start = p->pos;
  p->pos++; /* '{' */
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == '}') {
    p->pos++;
    return KILN_OK;
  }
  for (;;) {
    skip_ws(p);
    if (p->pos >= p->len || p->s[p->pos] != '"') {
      st = fail(p, KILN_ERR_PARSE, p->pos, "expected a string key in an object, found %s",
                found(p, buf, sizeof buf));
      break;
    }
    const char *key;
    size_t key_len;
    st = parse_string_raw(p, &key, &key_len);
    if (st != KILN_OK) break;
    skip_ws(p);
    if (p->pos >= p->len || p->s[p->pos] != ':') {
      st = fail(p, KILN_ERR_PARSE, p->pos, "expected ':' after a key, found %s",
                found(p, buf, sizeof buf));
      break;
    }
    p->pos++;
    rt_json *item;
    st = parse_value(p, &item);
    if (st != KILN_OK) break;
    if (!vec_push(&list, item, key, key_len)) {
      st = nomem(p);
      break;
    }
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ',') {
      p->pos++;
      continue;
    }
    if (p->pos < p->len && p->s[p->pos] == '}') {
      p->pos++;
      st = check_duplicates(p, &list, start);
      if (st == KILN_OK) st = vec_finish(p, &list, v, 1);
      break;
    }
    st = fail(p, KILN_ERR_PARSE, p->pos, "expected ',' or '}' in an object, found %s",
              found(p, buf, sizeof buf));
    break;
  }
  vec_free(&list);
  return st;
}

/* Matches a literal word (true, false, null) at pos. */
static int match_word(parser *p, const char *word) {
  size_t n = strlen(word);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) return 0;
  p->pos += n;
  return 1;
}

/* value = object | array | string | number | "true" | "false" | "null" */
static kiln_status parse_value(parser *p, rt_json **out) {
  char buf[16];
  skip_ws(p);
  size_t start = p->pos;
  if (p->pos >= p->len) return fail(p, KILN_ERR_PARSE, p->pos, "expected a value, found the end of the text");
  unsigned char c = p->s[p->pos];
  if (c == '{' || c == '[') {
    if (p->depth >= RT_JSON_MAX_DEPTH)
      return fail(p, KILN_ERR_PARSE, start, "nesting deeper than %d levels", RT_JSON_MAX_DEPTH);
    rt_json *v = new_value(p, c == '{' ? RT_JSON_OBJECT : RT_JSON_ARRAY, start);
    if (!v) return nomem(p);
    p->depth++;
    kiln_status st = c == '{' ? parse_object(p, v) : parse_array(p, v);
    p->depth--;
    if (st != KILN_OK) return st;
    *out = v;
    return KILN_OK;
  }
  if (c == '"') {
    rt_json *v = new_value(p, RT_JSON_STRING, start);
    if (!v) return nomem(p);
    kiln_status st = parse_string_raw(p, &v->str, &v->len);
    if (st != KILN_OK) return st;
    *out = v;
    return KILN_OK;
  }
  if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, out);
  rt_json_kind kind;
  int b = 0;
  if (match_word(p, "true")) kind = RT_JSON_BOOL, b = 1;
  else if (match_word(p, "false")) kind = RT_JSON_BOOL;
  else if (match_word(p, "null")) kind = RT_JSON_NULL;
  else return fail(p, KILN_ERR_PARSE, start, "expected a value, found %s", found(p, buf, sizeof buf));
  rt_json *v = new_value(p, kind, start);
  if (!v) return nomem(p);
  v->boolean = b;
  *out = v;
  return KILN_OK;
}

/* ---- Entry points ----------------------------------------------------------------------- */

kiln_status rt_json_parse(const char *text, size_t len, rt_json_doc **out, char *err, size_t cap) {
  if (err && cap) err[0] = 0;
  if (!out) return KILN_ERR_MISUSE;
  *out = NULL;
  if (!text && len > 0) return KILN_ERR_MISUSE;
  rt_json_doc *doc = calloc(1, sizeof *doc);
  parser p = {.s = (const unsigned char *)(text ? text : ""), .len = len, .doc = doc,
              .err = err, .cap = cap};
  if (!doc) return nomem(&p);
  kiln_status st = parse_value(&p, &doc->root);
  if (st == KILN_OK) {
    skip_ws(&p);
    char buf[16];
    if (p.pos < p.len)
      st = fail(&p, KILN_ERR_PARSE, p.pos, "unexpected %s after the value",
                found(&p, buf, sizeof buf));
  }
  if (st != KILN_OK) {
    rt_json_free(doc);
    return st;
  }
  *out = doc;
  return KILN_OK;
}

const rt_json *rt_json_root(const rt_json_doc *doc) { return doc ? doc->root : NULL; }

const rt_json *rt_json_get(const rt_json *v, const char *key) {
  if (!v || v->kind != RT_JSON_OBJECT || !key) return NULL;
  size_t n = strlen(key);
  for (int i = 0; i < v->n; i++)
    if (v->key_lens[i] == n && memcmp(v->keys[i], key, n) == 0) return v->items[i];
  return NULL;
}

const rt_json *rt_json_at(const rt_json *v, int i) {
  if (!v || v->kind != RT_JSON_ARRAY || i < 0 || i >= v->n) return NULL;
  return v->items[i];
}

const char *rt_json_kind_name(rt_json_kind k) {
  switch (k) {
  case RT_JSON_NULL: return "null";
  case RT_JSON_BOOL: return "a boolean";
  case RT_JSON_NUMBER: return "a number";
  case RT_JSON_STRING: return "a string";
  case RT_JSON_ARRAY: return "an array";
  case RT_JSON_OBJECT: return "an object";
  }
  return "?";
}

/* json.h: a small JSON reader for the runtime (libc only): parses a whole text into a tree
 * that lives in one arena (one free), with byte offsets for messages. model.c reads the META
 * and PLAN sections of an artifact with it; nothing at run time touches JSON.
 * Internal header (not part of the public API). */
#ifndef KILN_RT_JSON_H
#define KILN_RT_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/kiln_runtime.h"

/* Nesting deeper than this (arrays and objects inside each other) is refused. */
#define RT_JSON_MAX_DEPTH 64

typedef enum rt_json_kind {
  RT_JSON_NULL,
  RT_JSON_BOOL,
  RT_JSON_NUMBER,
  RT_JSON_STRING,
  RT_JSON_ARRAY,
  RT_JSON_OBJECT,
} rt_json_kind;

/* One value. Strings are NUL-terminated and UTF-8 (escapes decoded; len excludes the NUL and
 * counts a decoded \u0000 as a byte). Arrays hold n items; objects n items with their keys
 * (keys[i] names items[i]; keys are distinct). */
typedef struct rt_json {
  rt_json_kind kind;
  int boolean;   /* BOOL: 0 or 1 */
  int is_int;    /* NUMBER: written without fraction or exponent and within int64 */
  int64_t i;     /* NUMBER with is_int: the exact value */
  double num;    /* NUMBER: the value as a double (also for integers) */
  const char *str;
  size_t len;    /* STRING */
  int n;         /* ARRAY, OBJECT */
  struct rt_json **items;
  const char **keys;    /* OBJECT */
  size_t *key_lens;     /* OBJECT */
  size_t offset; /* where the value starts in the text (byte offset) */
} rt_json;

/* A parsed document: its root and the arena holding every value. */
typedef struct rt_json_doc rt_json_doc;

/* Parses text[0, len) (it need not be NUL-terminated): exactly one value, surrounded by
 * optional white space. On success *out is the document (free with rt_json_free). On failure
 * *out is NULL, and err (cap bytes, may be NULL) receives a message such as "byte 17: expected
 * ',' or '}' in an object"; KILN_ERR_PARSE for malformed text (including invalid UTF-8, lone
 * surrogates, nesting deeper than RT_JSON_MAX_DEPTH, numbers out of double range, duplicate
 * keys), KILN_ERR_NOMEM when memory runs out (nothing leaks). The thread's last error is not
 * touched: the caller words the message with its own context. */
kiln_status rt_json_parse(const char *text, size_t len, rt_json_doc **out, char *err, size_t cap);

/* The root value of a document. */
const rt_json *rt_json_root(const rt_json_doc *doc);

/* Frees the document and all its values. NULL is allowed. */
void rt_json_free(rt_json_doc *doc);

/* The value of key in object v, or NULL (v not an object, or no such key). */
const rt_json *rt_json_get(const rt_json *v, const char *key);

/* Item i of array v, or NULL (v not an array, or i out of range). */
const rt_json *rt_json_at(const rt_json *v, int i);

/* A name for a kind in messages: "null", "a boolean", "a number", "a string", "an array",
 * "an object". */
const char *rt_json_kind_name(rt_json_kind k);

#endif

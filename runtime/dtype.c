/* dtype.c: names, parsing and sizes of kiln data types. Used by the runtime (tensors) and by
 * every compiler layer. */
#include <stdio.h>
#include <string.h>

#include "rt_internal.h"

static const char *code_name(int code) {
  switch (code) {
  case KILN_TYPE_INT: return "int";
  case KILN_TYPE_UINT: return "uint";
  case KILN_TYPE_FLOAT: return "float";
  case KILN_TYPE_HANDLE: return "handle";
  case KILN_TYPE_BFLOAT: return "bfloat";
  case KILN_TYPE_BOOL: return "bool";
  case KILN_TYPE_VOID: return "void";
  }
  return "?";
}

KILN_API char *kiln_dtype_str(kiln_dtype t, char *buf, size_t size) {
  if (!buf || size == 0) return buf;
  if (t.code == KILN_TYPE_VOID) {
    snprintf(buf, size, "void");
  } else if (t.code == KILN_TYPE_BOOL || t.code == KILN_TYPE_HANDLE) {
    if (t.lanes > 1) snprintf(buf, size, "%sx%u", code_name(t.code), (unsigned)t.lanes);
    else snprintf(buf, size, "%s", code_name(t.code));
  } else if (t.lanes > 1) {
    snprintf(buf, size, "%s%ux%u", code_name(t.code), (unsigned)t.bits, (unsigned)t.lanes);
  } else {
    snprintf(buf, size, "%s%u", code_name(t.code), (unsigned)t.bits);
  }
  return buf;
}

/* One accepted spelling of a scalar type. */
typedef struct {
  const char *name;
  kiln_dtype t;
} dtype_name;

static const dtype_name scalar_names[] = {
    {"bool", {KILN_TYPE_BOOL, 8, 1}},       {"int8", {KILN_TYPE_INT, 8, 1}},
    {"int16", {KILN_TYPE_INT, 16, 1}},      {"int32", {KILN_TYPE_INT, 32, 1}},
    {"int64", {KILN_TYPE_INT, 64, 1}},      {"uint8", {KILN_TYPE_UINT, 8, 1}},
    {"uint16", {KILN_TYPE_UINT, 16, 1}},    {"uint32", {KILN_TYPE_UINT, 32, 1}},
    {"uint64", {KILN_TYPE_UINT, 64, 1}},    {"float16", {KILN_TYPE_FLOAT, 16, 1}},
    {"float32", {KILN_TYPE_FLOAT, 32, 1}},  {"float64", {KILN_TYPE_FLOAT, 64, 1}},
    {"bfloat16", {KILN_TYPE_BFLOAT, 16, 1}}, {"handle", {KILN_TYPE_HANDLE, 64, 1}},
    {"void", {KILN_TYPE_VOID, 0, 0}},
    {"i8", {KILN_TYPE_INT, 8, 1}},          {"i16", {KILN_TYPE_INT, 16, 1}},
    {"i32", {KILN_TYPE_INT, 32, 1}},        {"i64", {KILN_TYPE_INT, 64, 1}},
    {"u8", {KILN_TYPE_UINT, 8, 1}},         {"u16", {KILN_TYPE_UINT, 16, 1}},
    {"u32", {KILN_TYPE_UINT, 32, 1}},       {"u64", {KILN_TYPE_UINT, 64, 1}},
    {"f16", {KILN_TYPE_FLOAT, 16, 1}},      {"f32", {KILN_TYPE_FLOAT, 32, 1}},
    {"f64", {KILN_TYPE_FLOAT, 64, 1}},      {"bf16", {KILN_TYPE_BFLOAT, 16, 1}},
};

KILN_API kiln_status kiln_dtype_parse(const char *s, size_t len, kiln_dtype *out) {
  if (!s || !out) return rt_errorf(KILN_ERR_MISUSE, "kiln_dtype_parse: NULL argument");
  /* Split "float32x8" into the scalar part and the lane count. */
  size_t base_len = len;
  unsigned lanes = 1;
  for (size_t i = len; i > 0; i--) {
    if (s[i - 1] == 'x') {
      size_t k = i;
      if (k == len) break;
      unsigned v = 0;
      for (; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
        v = v * 10 + (unsigned)(s[k] - '0');
        if (v > 65535) break;
      }
      if (k == len && v >= 1 && v <= 65535) {
        base_len = i - 1;
        lanes = v;
      }
      break;
    }
  }
  for (size_t i = 0; i < sizeof scalar_names / sizeof scalar_names[0]; i++) {
    const dtype_name *n = &scalar_names[i];
    if (strlen(n->name) == base_len && memcmp(n->name, s, base_len) == 0) {
      if (n->t.code == KILN_TYPE_VOID && lanes != 1) break;
      *out = n->t;
      if (n->t.code != KILN_TYPE_VOID) out->lanes = (uint16_t)lanes;
      return KILN_OK;
    }
  }
  return rt_errorf(KILN_ERR_PARSE, "unknown data type '%.*s'", (int)(len > 64 ? 64 : len), s);
}

KILN_API int kiln_dtype_eq(kiln_dtype a, kiln_dtype b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}

KILN_API size_t kiln_dtype_bytes(kiln_dtype t) {
  if (t.code == KILN_TYPE_VOID) return 0;
  size_t bits = t.code == KILN_TYPE_BOOL ? 8 : t.bits;
  return (bits + 7) / 8 * t.lanes;
}

/* npy.c: reading and writing NumPy .npy files (the format of numpy/lib/format.py):
 *   magic "\x93NUMPY", major and minor version bytes, the header length (2 bytes little-endian
 *   in version 1.0, 4 bytes in 2.0 and 3.0), the header: a Python dict literal
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces and ended
 *   by '\n' so that the data starts at a multiple of 64, then the raw elements.
 * `kiln run` reads inputs and writes outputs through this file. */
#include "tools/npy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/tool.h"

static const char MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static kiln_status failf(char *err, size_t errlen, kiln_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Formats the message into err and returns code, so a failing path is one line. */
static kiln_status failf(char *err, size_t errlen, kiln_status code, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* ---- dtypes ----------------------------------------------------------------------------- */

/* The numpy kinds kiln maps: kind letter and item size -> kiln dtype. */
typedef struct npy_type {
  char kind;
  int size;
  kiln_dtype dtype;
  const char *descr; /* what np.save writes for it */
} npy_type;

static const npy_type TYPES[] = {
    {'f', 2, KILN_FLOAT16, "<f2"}, {'f', 4, KILN_FLOAT32, "<f4"}, {'f', 8, KILN_FLOAT64, "<f8"},
    {'i', 1, KILN_INT8, "|i1"},    {'i', 2, KILN_INT16, "<i2"},   {'i', 4, KILN_INT32, "<i4"},
    {'i', 8, KILN_INT64, "<i8"},   {'u', 1, KILN_UINT8, "|u1"},   {'u', 2, KILN_UINT16, "<u2"},
    {'u', 4, KILN_UINT32, "<u4"},  {'u', 8, KILN_UINT64, "<u8"},  {'b', 1, KILN_BOOL, "|b1"},
};

const char *npy_descr(kiln_dtype t) {
  for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
    if (kiln_dtype_eq(TYPES[i].dtype, t)) return TYPES[i].descr;
  return NULL;
}

static int host_is_little_endian(void) {
  const uint16_t one = 1;
  unsigned char first;
  memcpy(&first, &one, 1);
  return first == 1;
}

/* Maps a descr string ("<f4", "|b1", "=i8", "?") to a kiln dtype. Byte order: '<' and '='
 * (this machine is little-endian) for multi-byte types, any order for one-byte types ('|' is
 * what numpy writes); '>' for a multi-byte type is refused with a way out. */
static kiln_status parse_descr(const char *name, const char *d, kiln_dtype *out, char *err,
                               size_t errlen) {
  char order = '|';
  const char *p = d;
  if (*p == '<' || *p == '>' || *p == '=' || *p == '|') order = *p++;
  char kind = *p ? *p++ : 0;
  int size = 0;
  if (kind == '?' && !*p) {
    kind = 'b';
    size = 1;
  } else {
    while (*p >= '0' && *p <= '9' && size < 1000) size = size * 10 + (*p++ - '0');
    if (*p || size == 0) size = -1;
  }
  const npy_type *t = NULL;
  for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
    if (TYPES[i].kind == kind && TYPES[i].size == size) t = &TYPES[i];
  if (!t)
    return failf(err, errlen, KILN_ERR_UNSUPPORTED,
                 "%s: dtype '%s' is not supported (kiln reads float16/32/64, int8/16/32/64, "
                 "uint8/16/32/64 and bool arrays)",
                 name, d);
  if (size > 1) {
    int little = order == '<' || (order == '=' && host_is_little_endian());
    if (order == '>' || (order == '=' && !little))
      return failf(err, errlen, KILN_ERR_UNSUPPORTED,
                   "%s: big-endian data ('%s') is not supported; convert it with "
                   "a.astype('%s') before saving",
                   name, d, t->descr);
    if (order == '|')
      return failf(err, errlen, KILN_ERR_CORRUPT,
                   "%s: dtype '%s' has no byte order ('|' is only for one-byte types)", name, d);
    if (!host_is_little_endian())
      return failf(err, errlen, KILN_ERR_UNSUPPORTED,
                   "%s: little-endian data ('%s') on a big-endian machine is not supported",
                   name, d);
  }
  *out = t->dtype;
  return KILN_OK;
}

/* ---- the header dict --------------------------------------------------------------------- */

/* A cursor over the header text; errors stop the parse with a message naming the file. */
typedef struct hparser {
  const char *p, *end;
  const char *name;
  char *err;
  size_t errlen;
} hparser;

static void skip_space(hparser *h) {
  while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
    h->p++;
}

static int peek(hparser *h) {
  skip_space(h);
  return h->p < h->end ? (unsigned char)*h->p : -1;
}

static kiln_status bad_header(hparser *h, const char *what) {
  return failf(h->err, h->errlen, KILN_ERR_CORRUPT, "%s: malformed .npy header: %s", h->name,
               what);
}

static kiln_status expect_char(hparser *h, char c, const char *what) {
  if (peek(h) != (unsigned char)c) return bad_header(h, what);
  h->p++;
  return KILN_OK;
}

/* string = "'" chars "'" | '"' chars '"'   (no escapes: numpy's keys and descrs have none) */
static kiln_status parse_string(hparser *h, char *buf, size_t cap) {
  int q = peek(h);
  if (q != '\'' && q != '"') return bad_header(h, "expected a quoted string");
  h->p++;
  size_t n = 0;
  while (h->p < h->end && *h->p != q && *h->p != '\\') {
    if (n + 1 < cap) buf[n++] = *h->p;
    h->p++;
  }
  if (h->p >= h->end || *h->p != q) return bad_header(h, "unterminated or escaped string");
  h->p++;
  buf[n] = 0;
  return KILN_OK;
}

/* int = digits ["L"]   (Python 2 wrote long integers with a suffix) */
static kiln_status parse_int(hparser *h, int64_t *out) {
  if (peek(h) < '0' || peek(h) > '9') return bad_header(h, "expected a dimension in 'shape'");
  int64_t v = 0;
  while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
    if (v > (INT64_MAX - 9) / 10) return bad_header(h, "a dimension in 'shape' is too large");
    v = v * 10 + (*h->p++ - '0');
  }
  if (h->p < h->end && (*h->p == 'L' || *h->p == 'l')) h->p++;
  *out = v;
  return KILN_OK;
}

/* tuple = "(" [int ("," int)* [","]] ")" */
static kiln_status parse_shape(hparser *h, npy_array *a) {
  kiln_status st;
  if ((st = expect_char(h, '(', "'shape' must be a tuple"))) return st;
  a->ndim = 0;
  while (peek(h) != ')') {
    if (a->ndim == NPY_MAX_DIMS)
      return failf(h->err, h->errlen, KILN_ERR_UNSUPPORTED,
                   "%s: more than %d dimensions", h->name, NPY_MAX_DIMS);
    if ((st = parse_int(h, &a->shape[a->ndim]))) return st;
    a->ndim++;
    if (peek(h) == ',') h->p++;
    else if (peek(h) != ')') return bad_header(h, "expected ',' or ')' in 'shape'");
    else if (a->ndim == 1) return bad_header(h, "'shape' must be a tuple: (N,) not (N)");
  }
  h->p++;
  return KILN_OK;
}

/* bool = "True" | "False" */
static kiln_status parse_bool(hparser *h, int *out) {
  skip_space(h);
  size_t left = (size_t)(h->end - h->p);
  if (left >= 4 && memcmp(h->p, "True", 4) == 0) {
    h->p += 4;
    *out = 1;
  } else if (left >= 5 && memcmp(h->p, "False", 5) == 0) {
    h->p += 5;
    *out = 0;
  } else {
    return bad_header(h, "'fortran_order' must be True or False");
  }
  return KILN_OK;
}

/* Skips the value of a key kiln does not know: a string, a bool/None word, a number or a
 * (nested) tuple or list. */
static kiln_status skip_value(hparser *h) {
  int c = peek(h);
  if (c == '\'' || c == '"') {
    char tmp[8];
    return parse_string(h, tmp, sizeof tmp);
  }
  int depth = 0;
  const char *start = h->p;
  while (h->p < h->end) {
    char ch = *h->p;
    if (ch == '(' || ch == '[') depth++;
    else if (ch == ')' || ch == ']') {
      if (depth == 0) break;
      depth--;
    } else if ((ch == ',' || ch == '}') && depth == 0) {
      break;
    } else if (ch == '\'' || ch == '"') {
      char tmp[8];
      kiln_status st = parse_string(h, tmp, sizeof tmp);
      if (st) return st;
      continue;
    }
    h->p++;
  }
  if (h->p == start || depth) return bad_header(h, "unreadable value");
  return KILN_OK;
}

/* dict = "{" [item ("," item)* [","]] "}"   item = string ":" value
 * The three keys numpy writes must all be there, in any order. */
static kiln_status parse_header(hparser *h, npy_array *a, int *fortran) {
  kiln_status st;
  int seen_descr = 0, seen_order = 0, seen_shape = 0;
  char descr[64] = "";
  if ((st = expect_char(h, '{', "expected '{'"))) return st;
  while (peek(h) != '}') {
    char key[32];
    if ((st = parse_string(h, key, sizeof key))) return st;
    if ((st = expect_char(h, ':', "expected ':' after a key"))) return st;
    if (strcmp(key, "descr") == 0) {
      if (peek(h) == '[')
        return failf(h->err, h->errlen, KILN_ERR_UNSUPPORTED,
                     "%s: structured arrays (a list 'descr') are not supported", h->name);
      if ((st = parse_string(h, descr, sizeof descr))) return st;
      seen_descr = 1;
    } else if (strcmp(key, "fortran_order") == 0) {
      if ((st = parse_bool(h, fortran))) return st;
      seen_order = 1;
    } else if (strcmp(key, "shape") == 0) {
      if ((st = parse_shape(h, a))) return st;
      seen_shape = 1;
    } else if ((st = skip_value(h))) {
      return st;
    }
    if (peek(h) == ',') h->p++;
    else if (peek(h) != '}') return bad_header(h, "expected ',' or '}'");
  }
  h->p++;
  if (peek(h) != -1) return bad_header(h, "text after the closing '}'");
  if (!seen_descr || !seen_order || !seen_shape)
    return bad_header(h, !seen_descr ? "no 'descr' key" : !seen_order ? "no 'fortran_order' key"
                                                                       : "no 'shape' key");
  return parse_descr(h->name, descr, &a->dtype, h->err, h->errlen);
}

/* ---- reading ------------------------------------------------------------------------------ */

void npy_array_free(npy_array *a) {
  if (!a) return;
  free(a->data);
  memset(a, 0, sizeof *a);
}

static uint32_t read_le(const unsigned char *p, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

kiln_status npy_parse(const void *bytes, size_t len, const char *name, npy_array *out,
                      char *err, size_t errlen) {
  const unsigned char *b = bytes;
  memset(out, 0, sizeof *out);
  if (len < 8 || memcmp(b, MAGIC, sizeof MAGIC) != 0)
    return failf(err, errlen, KILN_ERR_CORRUPT,
                 "%s: not a .npy file (it does not start with \"\\x93NUMPY\")", name);
  int major = b[6], minor = b[7];
  if (major < 1 || major > 3 || minor != 0)
    return failf(err, errlen, KILN_ERR_UNSUPPORTED,
                 "%s: .npy format version %d.%d is not supported (1.0, 2.0 and 3.0 are)", name,
                 major, minor);
  size_t lensize = major == 1 ? 2 : 4;
  if (len < 8 + lensize)
    return failf(err, errlen, KILN_ERR_CORRUPT, "%s: truncated .npy header", name);
  size_t hlen = read_le(b + 8, (int)lensize);
  size_t data_at = 8 + lensize + hlen;
  if (hlen > len - 8 - lensize)
    return failf(err, errlen, KILN_ERR_CORRUPT,
                 "%s: truncated .npy header (it says %zu bytes, the file has %zu after the "
                 "version)",
                 name, hlen, len - 8 - lensize);
  npy_array a = {0};
  int fortran = 0;
  hparser h = {(const char *)b + 8 + lensize, (const char *)b + data_at, name, err, errlen};
  kiln_status st = parse_header(&h, &a, &fortran);
  if (st) return st;

  /* the element count, checked for overflow */
  size_t esize = kiln_dtype_bytes(a.dtype), count = 1;
  int nontrivial = 0; /* dimensions > 1: with at most one, C and Fortran order agree */
  for (int i = 0; i < a.ndim; i++) {
    if (a.shape[i] != 0 && count > SIZE_MAX / esize / (size_t)a.shape[i])
      return failf(err, errlen, KILN_ERR_CORRUPT, "%s: the shape is too large", name);
    count *= (size_t)a.shape[i];
    nontrivial += a.shape[i] > 1;
  }
  if (fortran && nontrivial > 1)
    return failf(err, errlen, KILN_ERR_UNSUPPORTED,
                 "%s: the array is in Fortran (column-major) order; save "
                 "np.ascontiguousarray(a) instead",
                 name);
  size_t nbytes = count * esize, have = len - data_at;
  if (have != nbytes) {
    char dt[32];
    char shape[256];
    size_t n = 0;
    shape[0] = 0;
    for (int i = 0; i < a.ndim && n < sizeof shape - 24; i++)
      n += (size_t)snprintf(shape + n, sizeof shape - n, "%s%lld", i ? ", " : "",
                            (long long)a.shape[i]);
    return failf(err, errlen, KILN_ERR_CORRUPT,
                 "%s: %s: the header's shape (%s) of %s needs %zu bytes of data, the file has "
                 "%zu",
                 name, have < nbytes ? "truncated" : "unexpected bytes after the data", shape,
                 kiln_dtype_str(a.dtype, dt, sizeof dt), nbytes, have);
  }
  /* a private, 64-byte aligned copy (kernels like aligned inputs) */
  size_t alloc = (nbytes + 63) / 64 * 64;
  a.data = aligned_alloc(64, alloc ? alloc : 64);
  if (!a.data) return failf(err, errlen, KILN_ERR_NOMEM, "%s: out of memory", name);
  if (nbytes) memcpy(a.data, b + data_at, nbytes);
  a.nbytes = nbytes;
  a.major = major;
  a.minor = minor;
  *out = a;
  return KILN_OK;
}

kiln_status npy_read(const char *path, npy_array *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  size_t len = 0;
  errno = 0;
  char *bytes = kiln_tool_read_file(path, &len);
  if (!bytes)
    return failf(err, errlen, errno == ENOMEM ? KILN_ERR_NOMEM : KILN_ERR_IO,
                 "%s: cannot read: %s", path, errno ? strerror(errno) : "out of memory");
  kiln_status st = npy_parse(bytes, len, path, out, err, errlen);
  free(bytes);
  return st;
}

/* ---- writing ------------------------------------------------------------------------------ */

kiln_status npy_write(const char *path, kiln_dtype dtype, int ndim, const int64_t *shape,
                      const void *data, size_t nbytes, char *err, size_t errlen) {
  const char *descr = npy_descr(dtype);
  char dt[32];
  if (!descr)
    return failf(err, errlen, KILN_ERR_UNSUPPORTED, "%s: numpy has no dtype for %s", path,
                 kiln_dtype_str(dtype, dt, sizeof dt));
  if (ndim < 0 || ndim > NPY_MAX_DIMS)
    return failf(err, errlen, KILN_ERR_MISUSE, "%s: bad rank %d", path, ndim);
  size_t count = 1;
  for (int i = 0; i < ndim; i++) count *= (size_t)shape[i];
  if (count * kiln_dtype_bytes(dtype) != nbytes)
    return failf(err, errlen, KILN_ERR_MISUSE, "%s: %zu bytes do not fit the shape", path,
                 nbytes);

  /* The dict as numpy's repr writes it: "(2, 3)", "(5,)" or "()". */
  char header[1024];
  int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                   descr);
  for (int i = 0; i < ndim; i++)
    n += snprintf(header + n, sizeof header - (size_t)n, "%s%lld", i ? ", " : "",
                  (long long)shape[i]);
  n += snprintf(header + n, sizeof header - (size_t)n, "%s), }", ndim == 1 ? "," : "");
  /* pad with spaces and end with '\n' so that magic + version + length + header is a
   * multiple of 64 (the data then starts aligned). numpy moves to version 2.0 (a 4-byte
   * length) only for headers over 65535 bytes; with at most NPY_MAX_DIMS dimensions the
   * header stays under 1 KiB, so version 1.0 always fits. */
  const int major = 1, lensize = 2;
  size_t hlen = (size_t)(8 + lensize + n + 1 + 63) / 64 * 64 - 8 - (size_t)lensize;
  if (hlen >= sizeof header)
    return failf(err, errlen, KILN_ERR_MISUSE, "%s: header too long", path);
  memset(header + n, ' ', hlen - (size_t)n - 1);
  header[hlen - 1] = '\n';

  unsigned char pre[10];
  memcpy(pre, MAGIC, sizeof MAGIC);
  pre[6] = (unsigned char)major;
  pre[7] = 0;
  for (int i = 0; i < lensize; i++) pre[8 + i] = (unsigned char)(hlen >> (8 * i));

  FILE *f = fopen(path, "wb");
  if (!f) return failf(err, errlen, KILN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  int ok = fwrite(pre, 1, (size_t)(8 + lensize), f) == (size_t)(8 + lensize) &&
           fwrite(header, 1, hlen, f) == hlen &&
           (nbytes == 0 || fwrite(data, 1, nbytes, f) == nbytes);
  int saved = errno;
  if (fclose(f) != 0 && ok) {
    ok = 0;
    saved = errno;
  }
  if (!ok)
    return failf(err, errlen, KILN_ERR_IO, "%s: cannot write: %s", path, strerror(saved));
  return KILN_OK;
}

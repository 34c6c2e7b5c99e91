/* base.c: the context (allocator hook with fault injection, last error), arenas, string
 * buffers and stable hashing helpers that the whole compiler builds on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "runtime/rt_internal.h"

static void *default_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

KILN_API kiln_status kiln_context_new_with_allocator(kiln_alloc_fn alloc, void *ud,
                                                     kiln_context **out) {
  if (!out || !alloc) return rt_errorf(KILN_ERR_MISUSE, "kiln_context_new: NULL argument");
  *out = NULL;
  kiln_context *ctx = alloc(ud, NULL, 0, sizeof *ctx);
  if (!ctx) return rt_errorf(KILN_ERR_NOMEM, "out of memory creating a context");
  memset(ctx, 0, sizeof *ctx);
  ctx->alloc = alloc;
  ctx->alloc_ud = ud;
  *out = ctx;
  return KILN_OK;
}

KILN_API kiln_status kiln_context_new(kiln_context **out) {
  return kiln_context_new_with_allocator(default_alloc, NULL, out);
}

KILN_API void kiln_context_free(kiln_context *ctx) {
  if (!ctx) return;
  ctx->alloc(ctx->alloc_ud, ctx, sizeof *ctx, 0);
}

KILN_API const char *kiln_context_errmsg(const kiln_context *ctx) {
  return ctx ? ctx->errmsg : "NULL context";
}

KILN_API kiln_status kiln_context_errcode(const kiln_context *ctx) {
  return ctx ? ctx->code : KILN_ERR_MISUSE;
}

KILN_API void kiln_context_errpos(const kiln_context *ctx, int *line, int *col) {
  if (line) *line = ctx ? (int)ctx->span.line : 0;
  if (col) *col = ctx ? (int)ctx->span.col : 0;
}

KILN_API void kiln_context_fail_alloc(kiln_context *ctx, long n) {
  if (!ctx) return;
  ctx->fail_at = n > 0 ? ctx->nalloc + n : 0;
}

KILN_API long kiln_context_alloc_count(const kiln_context *ctx) { return ctx ? ctx->nalloc : 0; }

KILN_API long kiln_context_live_blocks(const kiln_context *ctx) { return ctx ? ctx->nlive : 0; }

KILN_API void kiln_string_free(kiln_context *ctx, char *s) {
  if (ctx && s) ir_free(ctx, s, strlen(s) + 1);
}

void *ir_malloc(kiln_context *ctx, size_t size) { return ir_realloc(ctx, NULL, 0, size); }

void *ir_realloc(kiln_context *ctx, void *p, size_t old_size, size_t new_size) {
  if (new_size == 0) {
    ir_free(ctx, p, old_size);
    return NULL;
  }
  ctx->nalloc++;
  if (ctx->fail_at && ctx->nalloc == ctx->fail_at) {
    ir_fail(ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "out of memory (injected failure of allocation %ld)",
            ctx->nalloc);
    return NULL;
  }
  void *q = ctx->alloc(ctx->alloc_ud, p, old_size, new_size);
  if (!q) {
    ir_fail(ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "out of memory allocating %zu bytes", new_size);
    return NULL;
  }
  if (!p) ctx->nlive++;
  return q;
}

void ir_free(kiln_context *ctx, void *p, size_t size) {
  if (!p) return;
  ctx->alloc(ctx->alloc_ud, p, size, 0);
  ctx->nlive--;
}

char *ir_strdup(kiln_context *ctx, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = ir_malloc(ctx, n);
  if (p) memcpy(p, s, n);
  return p;
}

kiln_status ir_vfail(kiln_context *ctx, ir_span span, kiln_status code, const char *fmt,
                     va_list ap) {
  if (!ctx) return code;
  char msg[900];
  vsnprintf(msg, sizeof msg, fmt, ap);
  ctx->code = code;
  ctx->span = span;
  if (span.line)
    snprintf(ctx->errmsg, sizeof ctx->errmsg, "%u:%u: %s", (unsigned)span.line,
             (unsigned)span.col, msg);
  else
    snprintf(ctx->errmsg, sizeof ctx->errmsg, "%s", msg);
  rt_set_last_error(code, ctx->errmsg);
  return code;
}

kiln_status ir_fail(kiln_context *ctx, ir_span span, kiln_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ir_vfail(ctx, span, code, fmt, ap);
  va_end(ap);
  return code;
}

void ir_clear_error(kiln_context *ctx) {
  ctx->code = KILN_OK;
  ctx->span = IR_NO_SPAN;
  ctx->errmsg[0] = 0;
}

/* ---- Arenas -------------------------------------------------------------------------- */

struct ir_chunk {
  ir_chunk *next;
  size_t size; /* usable bytes after the header */
  _Alignas(16) unsigned char data[];
};

enum { CHUNK_MIN = 16 * 1024 };

ir_arena *ir_arena_new(kiln_context *ctx) {
  ir_arena *a = ir_malloc(ctx, sizeof *a);
  if (!a) return NULL;
  memset(a, 0, sizeof *a);
  a->ctx = ctx;
  return a;
}

void ir_arena_free(ir_arena *a) {
  if (!a) return;
  ir_chunk *c = a->chunks;
  while (c) {
    ir_chunk *next = c->next;
    ir_free(a->ctx, c, sizeof *c + c->size);
    c = next;
  }
  ir_free(a->ctx, a, sizeof *a);
}

void ir_arena_reset(ir_arena *a) {
  if (!a->chunks) return;
  /* Keep the oldest chunk (the last in the list): it is usually the size the work needs. */
  ir_chunk *c = a->chunks;
  while (c->next) {
    ir_chunk *next = c->next;
    ir_free(a->ctx, c, sizeof *c + c->size);
    c = next;
  }
  a->chunks = c;
  a->used = 0;
  a->total = 0;
}

void *ir_arena_alloc(ir_arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  if (size == 0) size = 16;
  if (!a->chunks || a->used + size > a->chunks->size) {
    size_t csize = size > CHUNK_MIN ? size : CHUNK_MIN;
    if (a->chunks && a->chunks->size * 2 > csize && a->chunks->size < (1u << 22))
      csize = a->chunks->size * 2 > size ? a->chunks->size * 2 : size;
    ir_chunk *c = ir_malloc(a->ctx, sizeof *c + csize);
    if (!c) return NULL;
    c->size = csize;
    c->next = a->chunks;
    a->chunks = c;
    a->used = 0;
  }
  void *p = a->chunks->data + a->used;
  a->used += size;
  a->total += size;
  memset(p, 0, size);
  return p;
}

char *ir_arena_strndup(ir_arena *a, const char *s, size_t n) {
  char *p = ir_arena_alloc(a, n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *ir_arena_strdup(ir_arena *a, const char *s) { return ir_arena_strndup(a, s, strlen(s)); }

/* ---- String buffers ------------------------------------------------------------------ */

void ir_sb_init(ir_strbuf *sb, kiln_context *ctx) {
  memset(sb, 0, sizeof *sb);
  sb->ctx = ctx;
}

void ir_sb_free(ir_strbuf *sb) {
  if (sb->data) ir_free(sb->ctx, sb->data, sb->cap);
  sb->data = NULL;
  sb->len = sb->cap = 0;
}

static bool sb_reserve(ir_strbuf *sb, size_t extra) {
  if (sb->oom) return false;
  if (sb->len + extra + 1 <= sb->cap) return true;
  size_t cap = sb->cap ? sb->cap : 256;
  while (cap < sb->len + extra + 1) cap *= 2;
  char *p = ir_realloc(sb->ctx, sb->data, sb->cap, cap);
  if (!p) {
    sb->oom = true;
    return false;
  }
  sb->data = p;
  sb->cap = cap;
  return true;
}

void ir_sb_putn(ir_strbuf *sb, const char *s, size_t n) {
  if (!sb_reserve(sb, n)) return;
  memcpy(sb->data + sb->len, s, n);
  sb->len += n;
  sb->data[sb->len] = 0;
}

void ir_sb_puts(ir_strbuf *sb, const char *s) { ir_sb_putn(sb, s, strlen(s)); }

void ir_sb_printf(ir_strbuf *sb, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    ir_sb_putn(sb, small, (size_t)n);
    return;
  }
  if (!sb_reserve(sb, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb->len += (size_t)n;
}

char *ir_sb_take(ir_strbuf *sb, size_t *len) {
  if (sb->oom || !sb_reserve(sb, 0)) { /* reserve: an empty buffer has no memory yet */
    ir_sb_free(sb);
    sb->oom = false;
    ir_fail(sb->ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "out of memory building a string");
    return NULL;
  }
  /* Shrink to the exact size so the caller can free with strlen + 1. */
  char *p = ir_realloc(sb->ctx, sb->data, sb->cap, sb->len + 1);
  if (!p) {
    ir_sb_free(sb);
    return NULL;
  }
  p[sb->len] = 0;
  if (len) *len = sb->len;
  sb->data = NULL;
  sb->len = sb->cap = 0;
  return p;
}

/* ---- Hashing ------------------------------------------------------------------------- */

uint64_t ir_hash_str(uint64_t h, const char *s) {
  uint64_t f = 0xcbf29ce484222325ull; /* FNV-1a over the bytes, then mixed in */
  for (; s && *s; s++) {
    f ^= (unsigned char)*s;
    f *= 0x100000001b3ull;
  }
  return ir_hash_mix(h, f);
}

uint64_t ir_hash_f64(uint64_t h, double v) {
  uint64_t bits;
  if (v != v) v = __builtin_nan(""); /* one NaN */
  memcpy(&bits, &v, sizeof bits);
  return ir_hash_mix(h, bits);
}

/* ---- Pointer maps -------------------------------------------------------------------- */

void ir_ptrmap_init(ir_ptrmap *m, kiln_context *ctx) {
  memset(m, 0, sizeof *m);
  m->ctx = ctx;
}

void ir_ptrmap_free(ir_ptrmap *m) {
  if (m->keys) ir_free(m->ctx, m->keys, m->cap * sizeof *m->keys);
  if (m->vals) ir_free(m->ctx, m->vals, m->cap * sizeof *m->vals);
  m->keys = NULL;
  m->vals = NULL;
  m->cap = m->len = 0;
}

static size_t ptr_slot(const void *key, size_t cap) {
  uint64_t x = (uint64_t)(uintptr_t)key;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return (size_t)x & (cap - 1);
}

void *ir_ptrmap_get(const ir_ptrmap *m, const void *key) {
  if (!m->cap) return NULL;
  for (size_t i = ptr_slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
    if (m->keys[i] == key) return m->vals[i];
    if (!m->keys[i]) return NULL;
  }
}

kiln_status ir_ptrmap_put(ir_ptrmap *m, const void *key, void *val) {
  if ((m->len + 1) * 4 > m->cap * 3) {
    size_t cap = m->cap ? m->cap * 2 : 16;
    const void **keys = ir_malloc(m->ctx, cap * sizeof *keys);
    void **vals = ir_malloc(m->ctx, cap * sizeof *vals);
    if (!keys || !vals) {
      ir_free(m->ctx, keys, cap * sizeof *keys);
      ir_free(m->ctx, vals, cap * sizeof *vals);
      return KILN_ERR_NOMEM;
    }
    memset(keys, 0, cap * sizeof *keys);
    for (size_t i = 0; i < m->cap; i++) {
      if (!m->keys[i]) continue;
      size_t j = ptr_slot(m->keys[i], cap);
      while (keys[j]) j = (j + 1) & (cap - 1);
      keys[j] = m->keys[i];
      vals[j] = m->vals[i];
    }
    ir_ptrmap_free(m);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    /* len is unchanged by rehashing; ir_ptrmap_free reset it. */
    for (size_t i = 0; i < cap; i++) m->len += keys[i] != NULL;
  }
  size_t i = ptr_slot(key, m->cap);
  while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
  if (!m->keys[i]) m->len++;
  m->keys[i] = key;
  m->vals[i] = val;
  return KILN_OK;
}

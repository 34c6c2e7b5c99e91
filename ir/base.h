/* base.h: the compiler's foundation: the context (allocator hook, fault injection, the last
 * error with its source span), arenas that hold IR nodes, and the one-line error helper.
 * Every other layer of libkiln includes this. */
#ifndef KILN_IR_BASE_H
#define KILN_IR_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/kiln.h"

/* A position in source text; line 0 means "no position". */
typedef struct ir_span {
  uint32_t line;
  uint32_t col;
} ir_span;

#define IR_NO_SPAN ((ir_span){0, 0})

/* The context behind the public kiln_context handle. All compiler memory is allocated
 * through it, so tests can fail the N-th allocation and count what is still live. */
struct kiln_context {
  kiln_alloc_fn alloc;  /* realloc-style hook (Lua's lua_Alloc) */
  void *alloc_ud;
  long fail_at;         /* fail the allocation with this sequence number (0: never) */
  long nalloc;          /* allocations attempted so far */
  long nlive;           /* blocks allocated and not yet freed */
  kiln_status code;     /* last error */
  ir_span span;
  char errmsg[1024];
};

/* Allocation through the context. ir_malloc returns NULL and records KILN_ERR_NOMEM on
 * failure (including an injected one). ir_free accepts NULL. */
void *ir_malloc(kiln_context *ctx, size_t size);
void *ir_realloc(kiln_context *ctx, void *p, size_t old_size, size_t new_size);
void ir_free(kiln_context *ctx, void *p, size_t size);
char *ir_strdup(kiln_context *ctx, const char *s);

/* Records an error on the context (and as the thread's last error) and returns code, so a
 * failing path is one line: `return ir_fail(ctx, span, KILN_ERR_SHAPE, "...", ...);`.
 * With a span the message is prefixed with "LINE:COL: ". */
kiln_status ir_fail(kiln_context *ctx, ir_span span, kiln_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
kiln_status ir_vfail(kiln_context *ctx, ir_span span, kiln_status code, const char *fmt,
                     va_list ap);

/* Clears the context's error. */
void ir_clear_error(kiln_context *ctx);

/* An arena: bump allocation from chunks obtained through the context. Nodes are never freed
 * one by one; the arena is freed or reset as a whole. `span` is the source position that node
 * constructors stamp on new nodes (the parser sets it before each construction). */
typedef struct ir_chunk ir_chunk;
typedef struct ir_arena {
  kiln_context *ctx;
  ir_chunk *chunks;
  size_t used;      /* bytes used in the newest chunk */
  size_t total;     /* bytes handed out over all chunks */
  ir_span span;
} ir_arena;

ir_arena *ir_arena_new(kiln_context *ctx);
void ir_arena_free(ir_arena *a);
/* Frees every chunk but the first, so a scratch arena can be reused without new mallocs. */
void ir_arena_reset(ir_arena *a);
/* Zeroed, 16-byte aligned memory, or NULL with KILN_ERR_NOMEM recorded. */
void *ir_arena_alloc(ir_arena *a, size_t size);
char *ir_arena_strdup(ir_arena *a, const char *s);
char *ir_arena_strndup(ir_arena *a, const char *s, size_t n);

/* A growable string in context memory, for printers and messages. On allocation failure the
 * buffer remembers it (oom = true) and further appends do nothing. */
typedef struct ir_strbuf {
  kiln_context *ctx;
  char *data;
  size_t len, cap;
  bool oom;
} ir_strbuf;

void ir_sb_init(ir_strbuf *sb, kiln_context *ctx);
void ir_sb_free(ir_strbuf *sb);
void ir_sb_puts(ir_strbuf *sb, const char *s);
void ir_sb_putn(ir_strbuf *sb, const char *s, size_t n);
void ir_sb_printf(ir_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the NUL-terminated text to the caller (free with ir_free(ctx, p, len + 1) or, for
 * public results, kiln_string_free); NULL with KILN_ERR_NOMEM recorded if anything failed. */
char *ir_sb_take(ir_strbuf *sb, size_t *len);

/* A map from pointers to pointers (open addressing, memory from the context), used for
 * variable bindings by equality, hashing, printers and interpreters. Keys are never NULL. */
typedef struct ir_ptrmap {
  kiln_context *ctx;
  const void **keys;
  void **vals;
  size_t cap, len;
} ir_ptrmap;

void ir_ptrmap_init(ir_ptrmap *m, kiln_context *ctx);
void ir_ptrmap_free(ir_ptrmap *m);
/* The value stored for key, or NULL. */
void *ir_ptrmap_get(const ir_ptrmap *m, const void *key);
/* Inserts or replaces; KILN_ERR_NOMEM (recorded on ctx) on failure. */
kiln_status ir_ptrmap_put(ir_ptrmap *m, const void *key, void *val);

/* Stable 64-bit hashing (same on every run and machine). */
static inline uint64_t ir_hash_mix(uint64_t h, uint64_t v) {
  uint64_t x = h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}
uint64_t ir_hash_str(uint64_t h, const char *s);
/* splitmix64: advances *state and returns the next value of a deterministic 64-bit stream
 * (neighbouring seeds give unrelated streams). Sampling, the tuner and measurement inputs use
 * it so that a seed means the same everywhere. */
static inline uint64_t ir_splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
uint64_t ir_hash_f64(uint64_t h, double v);

#endif

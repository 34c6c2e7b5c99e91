/* kiln.h: the public C API of the kiln compiler (libkiln.so). Includes the runtime API.
 * Handles are opaque; every function returns a kiln_status and reports details through
 * kiln_context_errmsg (or kiln_last_error for functions without a context). */
#ifndef KILN_H
#define KILN_H

#include "kiln_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Context ------------------------------------------------------------------------- */

typedef struct kiln_context kiln_context;

/* A realloc-style allocator (as Lua's lua_Alloc): nsize == 0 frees ptr and returns NULL;
 * otherwise returns a block of nsize bytes holding the first min(osize, nsize) bytes of ptr
 * (ptr may be NULL), or NULL on failure. osize is the block's current size (0 for new). */
typedef void *(*kiln_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

/* A context with the default allocator (malloc/realloc/free). */
KILN_API kiln_status kiln_context_new(kiln_context **out);
/* A context whose memory, the context itself included, all comes from alloc. */
KILN_API kiln_status kiln_context_new_with_allocator(kiln_alloc_fn alloc, void *ud,
                                                     kiln_context **out);
KILN_API void kiln_context_free(kiln_context *ctx);
/* The last error's message on this context ("" when none). */
KILN_API const char *kiln_context_errmsg(const kiln_context *ctx);
KILN_API kiln_status kiln_context_errcode(const kiln_context *ctx);
/* Source line and column of the last error (0 when it has none). */
KILN_API void kiln_context_errpos(const kiln_context *ctx, int *line, int *col);
/* Testing hook: make the n-th allocation from now fail (n >= 1), or none (n == 0). */
KILN_API void kiln_context_fail_alloc(kiln_context *ctx, long n);
/* Number of allocations the context has made so far (for fault-injection loops) and the
 * number of blocks still live (0 after everything made through it has been freed). */
KILN_API long kiln_context_alloc_count(const kiln_context *ctx);
KILN_API long kiln_context_live_blocks(const kiln_context *ctx);

/* Frees a string returned by kiln (printers). */
KILN_API void kiln_string_free(kiln_context *ctx, char *s);

/* ---- Loop-level tensor IR (TIR) modules ---------------------------------------------- */

typedef struct kiln_tir_module kiln_tir_module;

/* Parses TIR text (the format kiln_tir_module_print writes). `name` labels error messages.
 * Parse errors carry line and column (kiln_context_errpos). */
KILN_API kiln_status kiln_tir_module_parse(kiln_context *ctx, const char *text, size_t len,
                                           const char *name, kiln_tir_module **out);
KILN_API kiln_status kiln_tir_module_parse_file(kiln_context *ctx, const char *path,
                                                kiln_tir_module **out);
KILN_API void kiln_tir_module_free(kiln_tir_module *mod);
/* Prints the module as text; free the result with kiln_string_free. */
KILN_API kiln_status kiln_tir_module_print(kiln_tir_module *mod, char **out);
/* Structural equality (variables and buffers compared by binding position, not by name)
 * and a 64-bit structural hash that is the same across runs, processes and machines. */
KILN_API kiln_status kiln_tir_module_equal(kiln_tir_module *a, kiln_tir_module *b, int *out);
KILN_API kiln_status kiln_tir_module_hash(kiln_tir_module *mod, uint64_t *out);
/* Checks well-formedness: defined variables, index counts, dtype consistency, blocks. */
KILN_API kiln_status kiln_tir_module_verify(kiln_tir_module *mod);
/* Rewrites every function with the arithmetic simplifier; the result is a new module. */
KILN_API kiln_status kiln_tir_module_simplify(kiln_tir_module *mod, kiln_tir_module **out);
/* Number of functions and the name of the i-th. */
KILN_API int kiln_tir_module_num_funcs(kiln_tir_module *mod);
KILN_API const char *kiln_tir_module_func_name(kiln_tir_module *mod, int i);

/* Runs function `func` with the reference interpreter. args[i] points to the data of the
 * i-th parameter (a buffer: dense row-major memory of its dtype and shape; a scalar param:
 * a pointer to one value of its dtype). Slow and exact; for testing lowering and schedules. */
KILN_API kiln_status kiln_tir_module_interpret(kiln_tir_module *mod, const char *func,
                                               int nargs, void **args);

#ifdef __cplusplus
}
#endif
#endif

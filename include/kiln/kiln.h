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

/* ---- Graph IR (Relay) modules -------------------------------------------------------- */

/* A module of named graph functions ("main" is the entry) over tensors with static or
 * symbolic shapes. Expressions are built through the module and typed eagerly: a call whose
 * argument shapes do not fit its op is rejected when it is built. */
typedef struct kiln_relay_module kiln_relay_module;
/* An expression of a module (variable, constant, op call, tuple, projection, let). Handles
 * belong to the module that made them and stay valid until it is freed (there is no
 * individual free); passes do not invalidate them. Handles of another module are refused.
 * The builders below write their out-parameter only on success, so it may alias an input:
 * kiln_relay_call(m, "nn.relu", 1, &h, 0, NULL, &h). */
typedef struct kiln_relay_expr kiln_relay_expr;

KILN_API kiln_status kiln_relay_module_new(kiln_context *ctx, kiln_relay_module **out);
KILN_API void kiln_relay_module_free(kiln_relay_module *m);
/* Parses Relay text (the format kiln_relay_module_print writes; need not be NUL-terminated).
 * Errors carry line and column (kiln_context_errpos). */
KILN_API kiln_status kiln_relay_module_parse(kiln_context *ctx, const char *text, size_t len,
                                             kiln_relay_module **out);
KILN_API kiln_status kiln_relay_module_parse_file(kiln_context *ctx, const char *path,
                                                  kiln_relay_module **out);
/* Imports an ONNX model (serialized ModelProto bytes): @main takes the graph inputs that are
 * not initializers and returns the one output or a tuple of the outputs. External-data
 * tensors are read relative to external_data_dir (NULL: the current directory). Errors:
 * KILN_ERR_CORRUPT for malformed or truncated bytes, KILN_ERR_UNSUPPORTED for IR versions,
 * opsets and ops kiln does not handle (one message listing every unsupported op), KILN_ERR_IO
 * for unreadable external data, KILN_ERR_TYPE / KILN_ERR_SHAPE naming the ONNX node. */
KILN_API kiln_status kiln_relay_module_from_onnx(kiln_context *ctx, const void *bytes, size_t len,
                                                 const char *external_data_dir,
                                                 kiln_relay_module **out);
/* The same for a file; external data is looked up next to it. */
KILN_API kiln_status kiln_relay_module_from_onnx_file(kiln_context *ctx, const char *path,
                                                      kiln_relay_module **out);
/* Prints the module as text that parses back to an equal module; free with kiln_string_free. */
KILN_API kiln_status kiln_relay_module_print(kiln_relay_module *m, char **out);
/* Structural equality (functions matched by name; variables by binding position) and a
 * structural hash that is the same across runs and machines (equal modules hash equal). */
KILN_API kiln_status kiln_relay_module_equal(kiln_relay_module *a, kiln_relay_module *b,
                                             int *out);
KILN_API kiln_status kiln_relay_module_hash(kiln_relay_module *m, uint64_t *out);
/* Number of functions and the name of the i-th (NULL when out of range). */
KILN_API int kiln_relay_module_num_funcs(kiln_relay_module *m);
KILN_API const char *kiln_relay_module_func_name(kiln_relay_module *m, int i);

/* Runs graph passes over the module in place. `passes` is a comma-separated list of pass
 * names ("InferType,FuseOps") or NULL for the default pipeline (InferType ... FuseOps);
 * passes above opt_level (0..3) are skipped. The verifier runs after each pass. On error
 * the module is as the last successful pass left it. */
KILN_API kiln_status kiln_relay_module_run_passes(kiln_relay_module *m, const char *passes,
                                                  int opt_level);
/* Specializes the module: the symbolic dimensions names[i] become values[i] (>= 0) in
 * every type, and shapes are re-inferred (the BindShapes pass). */
KILN_API kiln_status kiln_relay_module_bind(kiln_relay_module *m, int n,
                                            const char *const *names, const int64_t *values);

/* Symbolic dimensions. A shape entry >= 0 is a constant; a negative entry is a symbolic
 * dimension of the module, as returned by kiln_relay_module_dim (the same name always gives
 * the same value). kiln_relay_expr_type reports a dimension that is an expression of
 * symbolic ones (say n * 2) as KILN_RELAY_DIM_EXPR. */
#define KILN_RELAY_DIM_EXPR INT64_MIN
KILN_API kiln_status kiln_relay_module_dim(kiln_relay_module *m, const char *name,
                                           int64_t *out);
/* The name of a symbolic dimension value (NULL when it is not one of the module's). */
KILN_API const char *kiln_relay_module_dim_name(kiln_relay_module *m, int64_t dim);

/* One attribute of an op call. Which fields count depends on kind. */
typedef enum kiln_relay_attr_kind {
  KILN_RELAY_ATTR_INT,   /* i */
  KILN_RELAY_ATTR_FLOAT, /* f (an INT is accepted where the op wants a float) */
  KILN_RELAY_ATTR_STR,   /* s */
  KILN_RELAY_ATTR_INTS   /* ints[0..nints) */
} kiln_relay_attr_kind;
typedef struct kiln_relay_attr {
  const char *key;
  int kind; /* kiln_relay_attr_kind */
  int64_t i;
  double f;
  const char *s;
  const int64_t *ints;
  int nints;
} kiln_relay_attr;

/* A variable of tensor type dtype[shape] (ndim <= 8; shape entries as described above).
 * Variables become function parameters or let bindings; names are hints. */
KILN_API kiln_status kiln_relay_var(kiln_relay_module *m, const char *name, kiln_dtype dtype,
                                    int ndim, const int64_t *shape, kiln_relay_expr **out);
/* A constant tensor of constant shape; data holds nbytes (exactly the tensor's size) of dense
 * row-major elements and is copied. */
KILN_API kiln_status kiln_relay_const(kiln_relay_module *m, kiln_dtype dtype, int ndim,
                                      const int64_t *shape, const void *data, size_t nbytes,
                                      kiln_relay_expr **out);
/* A call of the op named `op` (see kiln_relay_op_name). Attributes not given take the op's
 * defaults. KILN_ERR_UNDEFINED for an unknown op, KILN_ERR_TYPE for an unknown attribute or
 * one of the wrong kind, KILN_ERR_TYPE / KILN_ERR_SHAPE when the arguments do not fit. */
KILN_API kiln_status kiln_relay_call(kiln_relay_module *m, const char *op, int nargs,
                                     kiln_relay_expr *const *args, int nattrs,
                                     const kiln_relay_attr *attrs, kiln_relay_expr **out);
KILN_API kiln_status kiln_relay_tuple(kiln_relay_module *m, int n, kiln_relay_expr *const *fields,
                                      kiln_relay_expr **out);
/* Field `index` of a tuple-typed expression. */
KILN_API kiln_status kiln_relay_proj(kiln_relay_module *m, kiln_relay_expr *tuple, int index,
                                     kiln_relay_expr **out);
/* `let var = value; body`: var (made by kiln_relay_var) names value inside body. */
KILN_API kiln_status kiln_relay_let(kiln_relay_module *m, kiln_relay_expr *var,
                                    kiln_relay_expr *value, kiln_relay_expr *body,
                                    kiln_relay_expr **out);
/* Adds (or replaces) the function `name` with the given parameters (variables) and body.
 * Every variable the body uses must be a parameter or bound by a let inside it. */
KILN_API kiln_status kiln_relay_function(kiln_relay_module *m, const char *name, int nparams,
                                         kiln_relay_expr *const *params, kiln_relay_expr *body);

/* The type of a tensor-typed expression: its dtype, rank and, when shape is not NULL, its
 * dimensions (shape must hold max_ndim >= the rank entries; see KILN_RELAY_DIM_EXPR). */
KILN_API kiln_status kiln_relay_expr_type(kiln_relay_module *m, kiln_relay_expr *e,
                                          kiln_dtype *dtype, int *ndim, int64_t *shape,
                                          int max_ndim);

/* Runs function `func` with the reference interpreter (slow, exact; computes in double).
 * args are the function's parameters: CPU tensors (device_type 1) in compact row-major
 * layout (strides NULL or compact); symbolic dimensions are bound from their shapes. The
 * result (a tensor, or a tuple of tensors, nested tuples flattened in order) is written into
 * outs, which the caller allocates: each must have the result's dtype (else KILN_ERR_TYPE)
 * and shape (else KILN_ERR_SHAPE); nothing is written unless all of them fit. */
KILN_API kiln_status kiln_relay_module_interpret(kiln_relay_module *m, const char *func,
                                                 int nargs, const kiln_tensor *args, int nouts,
                                                 kiln_tensor *outs);

/* ---- Compiling a model (relay/build.c) ------------------------------------------------ */

/* One input's shape in a bucket. */
typedef struct kiln_input_shape {
  const char *name; /* a parameter of the module's "main" */
  int ndim;
  const int64_t *shape;
} kiln_input_shape;

/* A bucket: the shapes of some inputs (inputs not named keep the model's shape, which must
 * then be static) and a weight (how much this bucket matters to the tuner; <= 0 means 1). */
typedef struct kiln_bucket {
  int ninputs;
  const kiln_input_shape *inputs;
  double weight;
} kiln_bucket;

/* An axis of an input the runtime may pad (e.g. {"input", 0} for the batch). */
typedef struct kiln_pad_axis {
  const char *input;
  int axis;
} kiln_pad_axis;

typedef struct kiln_compile_options {
  const char *target;   /* target string (NULL or "": the host) */
  const char *db_path;  /* tuning database to take schedules from (NULL: default rules) */
  int opt_level;        /* LLVM optimization level 0..3 (0 is taken as the default, 3) */
  const char *model_name;      /* recorded in the artifact's meta (NULL: "model") */
  int npaddable;
  const kiln_pad_axis *paddable; /* declared paddable axes, recorded in the meta */
} kiln_compile_options;

/* A compiled model held in memory: the artifact's sections (meta, plan, weights, code). It
 * allocates through the module's context, which must outlive it (the module need not). */
typedef struct kiln_compiled kiln_compiled;

/* Compiles "main" of m for every bucket (nbuckets 0: one bucket of the model's own static
 * shapes): the optimization passes, then per bucket shape binding, type inference and
 * fusion, lowering of every fused group to TIR, a schedule per kernel (the best `ok` record of
 * the database for (workload, target) when one is given, else the default rules; a record
 * that no longer replays is reported as a warning and the default rules are used), the TIR
 * pipeline, one shared object for all kernels (kernels identical across buckets are compiled
 * once), weights stored once, and a memory plan per bucket. m itself is left as it was.
 * Never measures anything. Errors name the input, the bucket or the kernel: KILN_ERR_UNDEFINED
 * (an unknown input name), KILN_ERR_SHAPE (wrong rank, a static dim the bucket contradicts,
 * one symbol given two values), KILN_ERR_MISUSE (duplicate buckets, a bad paddable axis or
 * opt_level), KILN_ERR_IO (the database cannot be opened), or the failing stage's error. The
 * outputs are named after main's string attributes "output_name_<i>" (the ONNX importer sets
 * them), else "output" / "output_<i>". */
KILN_API kiln_status kiln_compile(kiln_relay_module *m, int nbuckets, const kiln_bucket *buckets,
                                  const kiln_compile_options *opts, kiln_compiled **out);
KILN_API void kiln_compiled_free(kiln_compiled *c);
/* Writes the artifact (atomically: path is the old file or the whole new one). */
KILN_API kiln_status kiln_compiled_save(kiln_compiled *c, const char *path);
/* The artifact's bytes (owned by c, valid until kiln_compiled_free). */
KILN_API kiln_status kiln_compiled_bytes(kiln_compiled *c, const void **data, size_t *size);
/* Loads the compiled model into this process (kiln_model_load_memory of its bytes). */
KILN_API kiln_status kiln_compiled_load(kiln_compiled *c, kiln_model **out);

typedef struct kiln_compile_stats {
  int nbuckets;
  int ncalls;          /* kernel calls over all buckets */
  int nkernels;        /* distinct kernels compiled */
  int nfrom_db;        /* of which scheduled from the database */
  int nwarnings;
  uint64_t params_bytes; /* the PARAMS section: distinct weights, each 64-byte aligned */
  uint64_t code_bytes;
  double seconds_total, seconds_passes, seconds_lower, seconds_schedule, seconds_codegen;
} kiln_compile_stats;
KILN_API kiln_status kiln_compiled_stats(const kiln_compiled *c, kiln_compile_stats *out);
/* Warning i of the compile (e.g. a database record that did not replay), NULL past the end. */
KILN_API const char *kiln_compiled_warning(const kiln_compiled *c, int i);

/* The registered ops: their number, and the name and one-line description of the i-th
 * (NULL when out of range). */
KILN_API int kiln_relay_op_count(void);
KILN_API const char *kiln_relay_op_name(int i);
KILN_API const char *kiln_relay_op_doc(int i);

#ifdef __cplusplus
}
#endif
#endif

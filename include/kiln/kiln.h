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

/* ---- Lowering, schedules and single kernels (the researchers' flow) ------------------- */

/* Lowers every primitive function of m (after the "FuseOps" pass; shapes must be static or
 * bound) to one TIR PrimFunc each, named after its fused ops ("fused_nn_conv2d_add_nn_relu",
 * made unique), in a new module on m's context. Only "main" and the functions it calls are
 * considered; functions that are not primitive are skipped. KILN_ERR_MISUSE when m holds no
 * primitive function (FuseOps did not run), the lowering's errors otherwise. */
KILN_API kiln_status kiln_relay_module_lower(kiln_relay_module *m, kiln_tir_module **out);

/* A schedule over one PrimFunc of a TIR module (TensorIR style): blocks, loops and integers
 * are random variables (RVs: int32 handles, valid for the schedule's lifetime); every
 * instruction checks its preconditions, rewrites the function and is recorded in the trace.
 * The module may be freed after kiln_schedule_new (the schedule holds a copy). */
typedef struct kiln_schedule kiln_schedule;

/* func NULL: the module's only function (KILN_ERR_MISUSE when it has several). seed drives
 * the sampling instructions. KILN_ERR_UNDEFINED for an unknown function name. */
KILN_API kiln_status kiln_schedule_new(kiln_tir_module *mod, const char *func, uint64_t seed,
                                       kiln_schedule **out);
KILN_API void kiln_schedule_free(kiln_schedule *s);

/* An instruction argument: an RV handle or a literal. */
typedef enum kiln_sch_arg_kind {
  KILN_SCH_ARG_RV = 0,
  KILN_SCH_ARG_INT = 1,
  KILN_SCH_ARG_FLOAT = 2,
  KILN_SCH_ARG_STR = 3
} kiln_sch_arg_kind;
typedef struct kiln_sch_arg {
  int32_t kind; /* kiln_sch_arg_kind */
  int64_t i;    /* RV handle or INT value */
  double f;
  const char *s;
} kiln_sch_arg;

/* The most arguments or results one instruction has. */
#define KILN_SCH_MAX_ARGS 64

/* Applies the instruction named `inst` with the trace's argument conventions (the names and
 * inputs of the trace JSON: "get_block" ["name"], "get_loops" [block], "split" [loop, f0, f1,
 * ...] (an INT literal or INT RV each; -1 for the one inferred factor), "fuse" [loops...],
 * "reorder" [loops...], "parallel"/"vectorize"/"unroll" [loop], "annotate" [rv, "key", value],
 * "compute_at" [block, loop, preserve_unit_loops 0/1], "reverse_compute_at" [block, loop,
 * preserve], "compute_inline" [block], "reverse_compute_inline" [block], "cache_read" [block,
 * read index, "scope"], "cache_write" [block, write index, "scope"], "decompose_reduction"
 * [block, loop], "storage_align" [block, buffer index, axis, factor, offset],
 * "sample_perfect_tile" [loop, n, max_innermost], "sample_categorical" [candidates...,
 * probabilities...] as the trace writes it, "sample_compute_location" [block]; sampling
 * instructions sample afresh). Writes the result RVs to outs[0..*nout) (room for
 * KILN_SCH_MAX_ARGS). On error the schedule is unchanged and the message names the
 * instruction, the block or loop and what is wrong: KILN_ERR_UNDEFINED (unknown
 * instruction), KILN_ERR_PARSE (ill-formed arguments: count, kinds, a handle this schedule never gave
 * out), KILN_ERR_SCHEDULE (a precondition does not hold, or an RV whose loop or block is gone:
 * split away, fused, inlined). */
KILN_API kiln_status kiln_schedule_apply(kiln_schedule *s, const char *inst, int nargs,
                                         const kiln_sch_arg *args, int *nout, int32_t *outs);
/* The kind of RV h: 0 block, 1 loop, 2 integer; -1 when h is not a valid handle. */
KILN_API int kiln_schedule_rv_kind(kiln_schedule *s, int32_t h);
/* The value of an integer RV (KILN_ERR_MISUSE for other kinds or a bad handle). */
KILN_API kiln_status kiln_schedule_rv_int(kiln_schedule *s, int32_t h, int64_t *out);
/* A block RV's name / a loop RV's variable name (NULL for other kinds or a bad handle),
 * owned by the schedule. */
KILN_API const char *kiln_schedule_rv_name(kiln_schedule *s, int32_t h);
/* Applies the default schedule rules for the target (NULL or "": the host) to every block
 * not yet scheduled, recording their instructions. */
KILN_API kiln_status kiln_schedule_apply_default_rules(kiln_schedule *s, const char *target);
/* The trace so far as JSON ({"version": 1, "insts": [...]}); free with kiln_string_free. */
KILN_API kiln_status kiln_schedule_trace(kiln_schedule *s, char **json);
/* Replays a trace (JSON as kiln_schedule_trace gives it) on this schedule, normally a fresh
 * one over the unscheduled function; the replayed instructions join the trace. A trace that
 * does not apply is KILN_ERR_PARSE / KILN_ERR_SCHEDULE naming the instruction. */
KILN_API kiln_status kiln_schedule_replay(kiln_schedule *s, const char *json);
/* The scheduled function as a new one-function module (the schedule keeps its own). */
KILN_API kiln_status kiln_schedule_module(kiln_schedule *s, kiln_tir_module **out);

/* A single kernel built in memory: a PrimFunc through the TIR lowering pipeline and the JIT
 * (the target must be the host's architecture). */
typedef struct kiln_kernel kiln_kernel;
/* func NULL: the module's only function. */
KILN_API kiln_status kiln_kernel_build(kiln_tir_module *mod, const char *func,
                                       const char *target, kiln_kernel **out);
KILN_API void kiln_kernel_free(kiln_kernel *k);
/* The number of parameters and the lowered function as text (free with kiln_string_free). */
KILN_API int kiln_kernel_num_params(kiln_kernel *k);
KILN_API kiln_status kiln_kernel_lowered_text(kiln_kernel *k, char **out);
/* Calls the kernel in this process (it checks the arguments itself: count, dtype, rank,
 * shape); a kernel error becomes KILN_ERR_RUNTIME with its message. */
KILN_API kiln_status kiln_kernel_call(kiln_kernel *k, const kiln_tensor *args, int nargs);
typedef struct kiln_timing {
  double median_s, min_s, max_s, mean_s, stddev_s;
  int repeats; /* timed samples */
} kiln_timing;
/* Times the kernel in this process on the given arguments: `warmup` untimed calls, then
 * samples until at least min_repeats samples and min_seconds in all (at most 10000 samples;
 * calls faster than 0.1 ms are batched, a sample being the batch mean). */
KILN_API kiln_status kiln_kernel_time(kiln_kernel *k, const kiln_tensor *args, int nargs,
                                      int warmup, int min_repeats, double min_seconds,
                                      kiln_timing *out);

/* ---- Tuning (autotune/) ---------------------------------------------------------------- */

typedef struct kiln_tune_progress {
  int round, trials, budget;   /* scheduling rounds and trials so far, the trial budget */
  int task, ntasks;            /* the task just tuned */
  const char *task_name;
  int task_trials;
  double task_best_s, task_gflops; /* 0 when none ok yet */
  double est_latency_s, default_latency_s, elapsed_s;
} kiln_tune_progress;
/* Called after each scheduling round; a non-zero return stops the tuning there (what was
 * measured is in the database, the report says "interrupted": true): a way to stop on a
 * condition of one's own, or on Ctrl-C seen by a caller's signal handler. */
typedef int (*kiln_tune_progress_fn)(void *ud, const kiln_tune_progress *p);

typedef struct kiln_tune_options {
  const char *target;    /* NULL or "": the host (real measurements need the host) */
  const char *db_path;   /* the tuning database (created when absent); required */
  int trials;            /* trial budget for all kernels together (<= 0: 64) */
  double time_budget_s;  /* <= 0: none */
  uint64_t seed;         /* 0: 1 */
  kiln_tune_progress_fn progress; /* NULL: none */
  void *progress_ud;
} kiln_tune_options;

/* Tunes "main" of m for the buckets (as kiln_compile takes them) and records every
 * measurement in the database; *report_json (free with kiln_string_free; may be NULL) gets
 * the report as `kiln tune --json` prints it: {"model", "target", "db", "trials", "rounds",
 * "elapsed_s", "time_limited", "interrupted", "complete", "default_latency_s",
 * "est_latency_s", "tasks": [{"name", "summary", "hash", "weight", "ncalls", "flops", "trials", "ok", "failed",
 * "default_s", "best_s", "speedup", "best_gflops", "exhausted", "error"}]}. m is left as
 * it was. */
KILN_API kiln_status kiln_tune(kiln_relay_module *m, int nbuckets, const kiln_bucket *buckets,
                               const kiln_tune_options *opts, char **report_json);

/* ---- The tuning database ---------------------------------------------------------------- */

typedef struct kiln_db kiln_db;
/* Opens (creating when absent) a tuning database; KILN_ERR_CORRUPT for a file that is not
 * one, KILN_ERR_UNSUPPORTED for a newer schema. */
KILN_API kiln_status kiln_db_open(kiln_context *ctx, const char *path, kiln_db **out);
KILN_API void kiln_db_close(kiln_db *db);
/* Listings as JSON arrays (free with kiln_string_free). Hashes are 16 hex digits.
 * workloads: [{"id", "hash", "summary", "nrecords", "best_s" (null when no ok record)}];
 * targets: [{"id", "target", "cpu", "features", "host" (true for this machine's target)}];
 * records (all, or of one workload when hash is not NULL): [{"id", "workload", "target",
 * "trace" (the trace as a JSON value), "status", "error", "median_s", "min_s", "max_s",
 * "stddev_s", "repeats", "seed", "version", "host", "time"}]. */
KILN_API kiln_status kiln_db_workloads_json(kiln_db *db, char **out);
KILN_API kiln_status kiln_db_targets_json(kiln_db *db, char **out);
KILN_API kiln_status kiln_db_records_json(kiln_db *db, const char *hash, char **out);
/* The best ok record of (workload hash, target) as one JSON object of the records listing,
 * or "null" when there is none. target NULL: the host; it is put in canonical form first. */
KILN_API kiln_status kiln_db_best_json(kiln_db *db, const char *hash, const char *target,
                                       char **out);
/* Merges another database file into this one; *skipped counts the other file's records not
 * added (already present, duplicates, or damaged). */
KILN_API kiln_status kiln_db_merge(kiln_db *db, const char *other_path, int64_t *added,
                                   int64_t *skipped);

/* The registered ops: their number, and the name and one-line description of the i-th
 * (NULL when out of range). */
KILN_API int kiln_relay_op_count(void);
KILN_API const char *kiln_relay_op_name(int i);
KILN_API const char *kiln_relay_op_doc(int i);

#ifdef __cplusplus
}
#endif
#endif

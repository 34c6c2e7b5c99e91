/* kiln_runtime.h: the stand-alone runtime API (no LLVM, libc only).
 * Status codes, data types and the thread-local last error, shared by the runtime library
 * (libkiln_runtime.so) and the compiler (libkiln.so, which links the runtime). */
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(KILN_BUILDING)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

/* Every public function returns a status; 0 is success. User mistakes get specific codes,
 * broken invariants get KILN_ERR_INTERNAL. */
typedef enum kiln_status {
  KILN_OK = 0,
  KILN_ERR_NOMEM,       /* an allocation failed */
  KILN_ERR_MISUSE,      /* a NULL or wrong handle, an out-of-range argument */
  KILN_ERR_PARSE,       /* malformed text */
  KILN_ERR_TYPE,        /* ill-typed expression or mismatched dtypes */
  KILN_ERR_SHAPE,       /* wrong number of indices, wrong shape */
  KILN_ERR_UNDEFINED,   /* a variable or buffer used but not defined */
  KILN_ERR_SCHEDULE,    /* an invalid schedule primitive */
  KILN_ERR_IO,          /* a file could not be read or written */
  KILN_ERR_CORRUPT,     /* a corrupted artifact or database */
  KILN_ERR_UNSUPPORTED, /* a valid request kiln cannot do (yet) */
  KILN_ERR_RUNTIME,     /* an error while executing (e.g. out-of-bounds access) */
  KILN_ERR_INTERNAL,    /* a kiln bug */
  KILN_STATUS_COUNT
} kiln_status;

/* A short name for a status ("ok", "parse error", ...). Never NULL. */
KILN_API const char *kiln_status_str(kiln_status s);

/* The message of the last error raised on this thread by any kiln function ("" if none).
 * Valid until the next failing kiln call on this thread. */
KILN_API const char *kiln_last_error(void);

/* Data types: a type code, a bit width and a vector lane count (1 for scalars). The codes and
 * the layout are DLPack's (DLDataType), so tensors cross to other frameworks unchanged. */
typedef enum kiln_type_code {
  KILN_TYPE_INT = 0,
  KILN_TYPE_UINT = 1,
  KILN_TYPE_FLOAT = 2,
  KILN_TYPE_HANDLE = 3, /* an opaque pointer */
  KILN_TYPE_BFLOAT = 4,
  /* 5 is DLPack's complex, which kiln does not use */
  KILN_TYPE_BOOL = 6,   /* stored as one byte */
  KILN_TYPE_VOID = 7    /* the "type" of statements (not a DLPack code) */
} kiln_type_code;

typedef struct kiln_dtype {
  uint8_t code;   /* kiln_type_code */
  uint8_t bits;
  uint16_t lanes;
} kiln_dtype;

/* Scalar types by name. */
#define KILN_BOOL ((kiln_dtype){KILN_TYPE_BOOL, 8, 1})
#define KILN_INT8 ((kiln_dtype){KILN_TYPE_INT, 8, 1})
#define KILN_INT16 ((kiln_dtype){KILN_TYPE_INT, 16, 1})
#define KILN_INT32 ((kiln_dtype){KILN_TYPE_INT, 32, 1})
#define KILN_INT64 ((kiln_dtype){KILN_TYPE_INT, 64, 1})
#define KILN_UINT8 ((kiln_dtype){KILN_TYPE_UINT, 8, 1})
#define KILN_UINT16 ((kiln_dtype){KILN_TYPE_UINT, 16, 1})
#define KILN_UINT32 ((kiln_dtype){KILN_TYPE_UINT, 32, 1})
#define KILN_UINT64 ((kiln_dtype){KILN_TYPE_UINT, 64, 1})
#define KILN_FLOAT16 ((kiln_dtype){KILN_TYPE_FLOAT, 16, 1})
#define KILN_BFLOAT16 ((kiln_dtype){KILN_TYPE_BFLOAT, 16, 1})
#define KILN_FLOAT32 ((kiln_dtype){KILN_TYPE_FLOAT, 32, 1})
#define KILN_FLOAT64 ((kiln_dtype){KILN_TYPE_FLOAT, 64, 1})
#define KILN_HANDLE ((kiln_dtype){KILN_TYPE_HANDLE, 64, 1})
#define KILN_VOID ((kiln_dtype){KILN_TYPE_VOID, 0, 0})

/* Writes the short name of t ("float32", "int8x16", "bool", "void") into buf (at least
 * 32 bytes) and returns buf. */
KILN_API char *kiln_dtype_str(kiln_dtype t, char *buf, size_t size);

/* Parses a dtype name as written by kiln_dtype_str; also accepts the short forms f32, f16,
 * bf16, f64, i8, i16, i32, i64, u8. Returns KILN_ERR_PARSE for an unknown name. */
KILN_API kiln_status kiln_dtype_parse(const char *s, size_t len, kiln_dtype *out);

/* Non-zero if the two types are the same. */
KILN_API int kiln_dtype_eq(kiln_dtype a, kiln_dtype b);

/* Bytes one element takes in memory (all lanes), 0 for void. bool takes one byte a lane. */
KILN_API size_t kiln_dtype_bytes(kiln_dtype t);

/* ---- Tensors and the kernel ABI ------------------------------------------------------ */

/* A tensor descriptor with DLPack's DLTensor layout. Kernels take their arguments as an array
 * of these: buffers with their shape (and strides in elements, or NULL when compact row-major),
 * scalar parameters as 0-dimensional tensors whose data points to the value. */
typedef struct kiln_tensor {
  void *data;
  int32_t device_type; /* 1 = CPU (DLPack kDLCPU) */
  int32_t device_id;
  int32_t ndim;
  kiln_dtype dtype;
  int64_t *shape;
  int64_t *strides;     /* in elements; NULL for compact row-major */
  uint64_t byte_offset; /* added to data */
} kiln_tensor;

/* Every generated kernel has this signature: it checks the argument count, each tensor's
 * dtype, rank and shape, runs, and returns KILN_OK or an error status (the message goes through
 * kiln_rt_error). */
typedef int32_t (*kiln_kernel_fn)(const kiln_tensor *args, int32_t nargs);

/* One task of a parallel loop: task i of n. Returns 0 or an error status. */
typedef int32_t (*kiln_task_fn)(int32_t i, int32_t n, void *closure);

/* Runs task(i, n, closure) for i in [0, n) on the persistent thread pool (the calling thread
 * takes part) and waits for all of them; n <= 0 means one task per pool thread. Returns the
 * first non-zero status a task returned, else 0. Nested calls from inside a task run serially. */
KILN_API int32_t kiln_rt_parallel_launch(kiln_task_fn task, void *closure, int32_t n);
/* The pool's size (threads including the caller, at most 1024); set it before or between
 * launches. n <= 0 means the default: $KILN_NUM_THREADS if set, else the number of online
 * CPUs. Launches from several user threads are serialized (each gets the whole pool). */
KILN_API kiln_status kiln_rt_set_num_threads(int32_t n);
KILN_API int32_t kiln_rt_num_threads(void);
/* Scratch memory for kernels (aligned to `align`, a power of two >= 16); NULL on failure. */
KILN_API void *kiln_rt_workspace_alloc(uint64_t bytes, uint64_t align);
KILN_API void kiln_rt_workspace_free(void *p);
/* Called by a kernel before it returns an error: records msg as the thread's last error. */
KILN_API void kiln_rt_error(const char *msg);

/* ---- Compiled models and sessions ------------------------------------------------------ */

/* A loaded .kiln artifact (see runtime/FORMAT.md): its meta data, one execution plan per
 * bucket, the weights (used in place from the mapped file: zero copy) and the kernels (loaded
 * through memfd + dlopen). A model is immutable once loaded and may be shared by any number
 * of sessions in any threads. Loading never involves LLVM. */
typedef struct kiln_model kiln_model;

/* What runs a model: activation memory for the largest bucket, staging buffers for padding,
 * the input bindings and the profile. Everything is allocated by kiln_session_new; running
 * allocates nothing. One session is used by one thread at a time; several sessions over one
 * model run concurrently from different threads (parallel loops of kernels still share the
 * one thread pool, whose launches are serialized). */
typedef struct kiln_session kiln_session;

/* Maps the artifact at path and validates it completely (sections, checksums, meta and plan
 * against each other, every kernel symbol present). Errors: KILN_ERR_IO (cannot open/map/load
 * code), KILN_ERR_CORRUPT (damaged, truncated or inconsistent file), KILN_ERR_UNSUPPORTED
 * (another major format version), KILN_ERR_NOMEM; the message names the file and the part. */
KILN_API kiln_status kiln_model_load(const char *path, kiln_model **out);
/* The same from bytes in memory (an artifact as kiln_compiled_bytes gives it); the bytes are
 * copied, the caller keeps its buffer. `name` labels error messages (NULL: "<memory>"). */
KILN_API kiln_status kiln_model_load_memory(const void *data, size_t size, const char *name,
                                            kiln_model **out);
/* Drops the caller's reference: the model is freed when it and every session made from it
 * are freed (so sessions may outlive this call). NULL is allowed. */
KILN_API void kiln_model_free(kiln_model *m);

/* Inputs, outputs and buckets. Indices out of range give NULL / -1 / KILN_VOID. */
KILN_API int kiln_model_num_inputs(const kiln_model *m);
KILN_API int kiln_model_num_outputs(const kiln_model *m);
KILN_API int kiln_model_num_buckets(const kiln_model *m);
KILN_API const char *kiln_model_input_name(const kiln_model *m, int i);
KILN_API const char *kiln_model_output_name(const kiln_model *m, int i);
KILN_API int kiln_model_input_index(const kiln_model *m, const char *name);   /* -1: none */
KILN_API kiln_dtype kiln_model_input_dtype(const kiln_model *m, int i);
KILN_API kiln_dtype kiln_model_output_dtype(const kiln_model *m, int i);
KILN_API int kiln_model_input_ndim(const kiln_model *m, int i);
KILN_API int kiln_model_output_ndim(const kiln_model *m, int i);
/* The shape of input (or output) i in bucket b, written to shape[0..ndim). */
KILN_API kiln_status kiln_model_input_shape(const kiln_model *m, int bucket, int i,
                                            int64_t *shape);
KILN_API kiln_status kiln_model_output_shape(const kiln_model *m, int bucket, int i,
                                             int64_t *shape);
/* Activation bytes of bucket b as planned (intermediates sharing memory by liveness) and
 * naively (one buffer per intermediate), and its number of kernel calls. */
KILN_API kiln_status kiln_model_bucket_memory(const kiln_model *m, int bucket,
                                              uint64_t *planned, uint64_t *naive);
KILN_API int kiln_model_bucket_num_calls(const kiln_model *m, int bucket);
/* The META and PLAN JSON texts as stored (NUL-terminated, owned by the model). */
KILN_API const char *kiln_model_meta_json(const kiln_model *m);
KILN_API const char *kiln_model_plan_json(const kiln_model *m);

/* A new session (activation memory for every bucket allocated now). It starts with the
 * paddable axes the compile declared (meta "paddable"). */
KILN_API kiln_status kiln_session_new(kiln_model *m, kiln_session **out);
KILN_API void kiln_session_free(kiln_session *s);
KILN_API kiln_model *kiln_session_model(kiln_session *s);

/* Declares (on != 0) or withdraws axis `axis` of input i as paddable. A run whose input
 * shapes match no bucket exactly then uses the bucket with the fewest elements that is equal
 * on every other axis and at least as large on the paddable ones: inputs are copied,
 * zero-padded, into session buffers and outputs are sliced back along the axes that follow a
 * padded input axis (meta "follows"). KILN_ERR_MISUSE for a bad index. */
KILN_API kiln_status kiln_session_set_paddable(kiln_session *s, int input, int axis, int on);

/* Binds input i to the caller's tensor without copying: t->data (+ byte_offset) must stay
 * valid and unchanged until kiln_session_run returns. dtype must be the input's (else
 * KILN_ERR_TYPE) and strides NULL or compact (else KILN_ERR_UNSUPPORTED); the shape is
 * checked against the buckets at run time. The descriptor itself is copied. */
KILN_API kiln_status kiln_session_set_input(kiln_session *s, int i, const kiln_tensor *t);

/* Picks the bucket from the bound inputs' shapes and runs its plan. KILN_ERR_MISUSE when an
 * input is not bound; KILN_ERR_SHAPE when the shapes fit no bucket (the message lists the
 * given shapes and every bucket's); a kernel's error status and message otherwise. */
KILN_API kiln_status kiln_session_run(kiln_session *s);

/* Output i of the last run, in place: t->data points into session memory (or to a weight, or
 * to a bound input, when the model returns one directly) and t->shape into the session; both
 * stay valid until the next run or kiln_session_free. t->shape is the actual shape (sliced
 * back after padding). KILN_ERR_MISUSE before the first successful run. */
KILN_API kiln_status kiln_session_get_output(kiln_session *s, int i, kiln_tensor *t);
/* The bucket the last run used (-1 before the first run). */
KILN_API int kiln_session_last_bucket(const kiln_session *s);

/* Profiling: while on, every kernel call of a run is timed (monotonic clock). Turning it on
 * clears what was recorded. */
KILN_API kiln_status kiln_session_set_profiling(kiln_session *s, int on);
typedef struct kiln_profile_entry {
  int32_t bucket;     /* the bucket of the call */
  int32_t call;       /* its index in the bucket's plan */
  const char *kernel; /* the kernel's name (e.g. "fused_nn_conv2d_add_nn_relu") */
  int64_t count;      /* how many times it ran while profiling */
  double total_us, min_us, max_us;
} kiln_profile_entry;
/* The recorded calls (one entry per call of every bucket that ran, in plan order), owned by
 * the session, valid until the next run or kiln_session_set_profiling. */
KILN_API kiln_status kiln_session_profile(const kiln_session *s, int *n,
                                          const kiln_profile_entry **entries);
/* The profile as a text table (json == 0; calls sorted by total time, with share of the
 * total and a totals line) or as JSON (json != 0: {"runs":R, "total_us":T, "calls":[{"bucket",
 * "call", "kernel", "count", "total_us", "mean_us", "min_us", "max_us"}]}). Free *out with
 * kiln_rt_free. */
KILN_API kiln_status kiln_session_profile_report(const kiln_session *s, int json, char **out);

/* Frees memory the runtime returned to the caller (profile reports). NULL is allowed. */
KILN_API void kiln_rt_free(void *p);

/* The library version as "MAJOR.MINOR.PATCH". */
KILN_API const char *kiln_version(void);

#ifdef __cplusplus
}
#endif
#endif

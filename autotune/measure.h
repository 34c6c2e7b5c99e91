/* measure.h: the measurement layer of the autotuner. A scheduled PrimFunc is built into a
 * callable kernel (tune_build: the TIR lowering pipeline + the JIT), then timed in a forked
 * worker process (tune_measure) on seeded random inputs, so that a candidate that crashes or
 * hangs is recorded as failed and never takes the tuner down. Its outputs are checked
 * against reference outputs (tune_reference_outputs: the TIR interpreter on the same inputs).
 * Data flow: search -> schedule -> tune_build -> tune_measure -> tune_result -> database. */
#ifndef KILN_AUTOTUNE_MEASURE_H
#define KILN_AUTOTUNE_MEASURE_H

#include "autotune/database.h"
#include "ir/node.h"
#include "target/target.h"

/* How a measured candidate ended: the database's tune_status (database.h), under the short
 * names measurement uses, so a tune_result's status is stored as it is. tune_status_name
 * (database.c) names them. */
enum {
  TUNE_OK = TUNE_STATUS_OK,
  TUNE_BUILD_ERROR = TUNE_STATUS_BUILD_ERROR, /* lowering or code generation failed */
  TUNE_RUN_ERROR = TUNE_STATUS_RUN_ERROR,     /* the kernel returned an error or its worker
                                                 died from a signal */
  TUNE_TIMEOUT = TUNE_STATUS_TIMEOUT,         /* the worker ran past the limit and was killed */
  TUNE_WRONG_RESULT = TUNE_STATUS_WRONG_RESULT /* the outputs differ from the reference */
};

typedef struct tune_measure_opts {
  int warmup;         /* untimed calls before timing (then calibration batches) */
  int min_repeats;    /* timed samples at least ... */
  double min_seconds; /* ... and at least this much timed time in all (at most
                         TUNE_MAX_REPEATS samples; kernels faster than 0.1 ms are timed in
                         batches of calls, a sample being the batch's mean) */
  double timeout_s;   /* wall-clock limit for the worker (warmup and repeats together) */
  bool check;         /* compare the outputs with the reference outputs (when given) */
  double rtol, atol;  /* float comparison: |got - ref| <= atol + rtol * |ref| ... */
  double atol_of_max; /* ... + atol_of_max * max |ref| over the output: float32 sums taken in
                         another order (a split reduction, the default schedule's outputs as
                         the reference) differ by about that much */
  uint64_t seed;      /* seeds the random inputs (tune_reference_outputs takes the same) */
  size_t flush_bytes; /* > 0: before each sample of a kernel timed call by call (calls of
                         0.1 ms and more), the worker writes this many bytes to evict the
                         caches, so that weights are read from memory as inside a model
                         (0: warm caches) */
  double slow_cutoff_s; /* > 0: when the first call (the first warmup call) takes longer than
                           this, that call is the only sample (repeats 1) and timing stops:
                           a candidate far slower than the best one found is not worth
                           seconds of repeats (the search sets it; 0: off) */
} tune_measure_opts;

/* The default flush: larger than the last-level cache of the CPUs kiln tunes for. */
#define TUNE_FLUSH_BYTES ((size_t)64 << 20)

/* The most timed samples one measurement takes. */
#define TUNE_MAX_REPEATS 10000

/* The shortest time limit the search's slow-candidate rule (tune_search_opts.slow_factor)
 * gives a candidate. */
#define TUNE_SLOW_MIN_TIMEOUT_S 2.0

/* warmup 1, min_repeats 3, min_seconds 0.05, timeout 10 s, check on, rtol 1e-4, atol 1e-5,
 * atol_of_max 1e-5, seed 1, flush_bytes TUNE_FLUSH_BYTES, slow_cutoff_s 0. */
tune_measure_opts tune_measure_opts_default(void);

typedef struct tune_result {
  int status;                             /* TUNE_OK ... TUNE_WRONG_RESULT */
  double median_s, min_s, max_s, stddev_s; /* seconds per call over the samples (0: none) */
  int repeats;                            /* timed samples taken */
  char error[512];                        /* why it failed ("" for TUNE_OK) */
} tune_result;

/* Sets r to a failure with the given status and message (e.g. TUNE_BUILD_ERROR with the
 * context's message after tune_build failed). */
void tune_result_fail(tune_result *r, int status, const char *msg);

/* A built kernel: the lowered function compiled by its own JIT (one JIT per build, so
 * builds on different threads share nothing). Free with tune_built_free. */
typedef struct tune_built tune_built;

/* Runs the TIR lowering pipeline on `scheduled` (not changed) and compiles the result for t
 * (which must be the host). The kernel is compiled here, in the calling process, so that a
 * worker only calls it. Errors (the pipeline's, the code generator's, KILN_ERR_NOMEM) are on
 * ctx with their message; the caller records them as TUNE_BUILD_ERROR. */
kiln_status tune_build(kiln_context *ctx, const tgt_target *t, const ir_func *scheduled,
                       tune_built **out);
void tune_built_free(tune_built *k);
/* The built kernel's entry point, its parameter count and the lowered one-function module
 * the JIT compiled (owned by k), for callers that run the kernel themselves. */
kiln_kernel_fn tune_built_fn(const tune_built *k);
int tune_built_nparams(const tune_built *k);
const kiln_tir_module *tune_built_lowered(const tune_built *k);

/* Times k in the calling thread on args: `warmup` untimed calls, then samples until at least
 * min_repeats samples and min_seconds in all (at most TUNE_MAX_REPEATS; calls faster than
 * 0.1 ms are batched, a sample being the batch mean), written to times (room for
 * TUNE_MAX_REPEATS), their number to *nsamples. Returns the first non-zero kernel status
 * (the message is kiln_last_error()), else 0. Allocates nothing (the forked worker of
 * tune_measure runs it). */
int32_t tune_time_calls(const tune_built *k, const kiln_tensor *args, int warmup,
                        int min_repeats, double min_seconds, double *times, int *nsamples);
/* The same, writing flush[0..flush_bytes) (when flush is not NULL) before each sample taken
 * of a single call (see tune_measure_opts.flush_bytes), and, when slow_cutoff_s > 0, stopping
 * after the first call with that call as the only sample when it took longer than
 * slow_cutoff_s (see tune_measure_opts.slow_cutoff_s; with warmup 0 the first call is an
 * extra one). */
int32_t tune_time_calls_flushed(const tune_built *k, const kiln_tensor *args, int warmup,
                                int min_repeats, double min_seconds, void *flush,
                                size_t flush_bytes, double slow_cutoff_s, double *times,
                                int *nsamples);

/* Statistics of timed samples (seconds): tune_time_summary sorts times[0..n) and fills them
 * (all 0 when n <= 0; stddev is the sample standard deviation, 0 for one sample). */
typedef struct tune_time_stats {
  double median_s, min_s, max_s, mean_s, stddev_s;
} tune_time_stats;
void tune_time_summary(double *times, int n, tune_time_stats *out);

/* Measures kernel k, built from a schedule of f (f gives the parameters: buffers with
 * constant shapes; a scalar parameter or a symbolic dimension is KILN_ERR_UNSUPPORTED).
 * Inputs (the parameter buffers f never writes) get random data from opts->seed; outputs
 * (the parameter buffers f writes) are pre-filled with NaN (ints: 0xA5 bytes). A worker
 * process runs the kernel opts->warmup times, then times calls until opts->min_repeats and
 * opts->min_seconds are both reached. The outcome is in *out:
 *   TUNE_OK with the timings; TUNE_TIMEOUT when the worker was killed at opts->timeout_s;
 *   TUNE_RUN_ERROR when the kernel returned an error (its message) or the worker died (the
 *   signal's name, e.g. SIGSEGV); TUNE_WRONG_RESULT when opts->check is set,
 *   reference_outputs is not NULL (one array per output buffer, in parameter order, as
 *   tune_reference_outputs gives them) and an element differs (its index and both values).
 * Returns KILN_OK whenever *out holds an outcome; an error status (on ctx, and also in
 * out->error with TUNE_RUN_ERROR) only when nothing could be measured: bad arguments,
 * unsupported parameters, no memory, fork failing. opts NULL: the defaults. The worker is
 * always reaped before this returns. */
kiln_status tune_measure(kiln_context *ctx, const tune_built *k, const ir_func *f,
                         const tune_measure_opts *opts, const void *const *reference_outputs,
                         tune_result *out);

/* Reference outputs for tune_measure: f (any schedule of the function, usually the
 * unscheduled one) run by the TIR interpreter on the inputs tune_measure makes from `seed`. */
typedef struct tune_reference {
  int nout;
  void **data;   /* nout arrays, one per output buffer in parameter order */
  size_t *bytes; /* their sizes */
} tune_reference;

kiln_status tune_reference_outputs(kiln_context *ctx, const ir_func *f, uint64_t seed,
                                   tune_reference **out);
void tune_reference_free(kiln_context *ctx, tune_reference *r);

/* tune_measure, and when the outcome is TUNE_OK and captured is not NULL, a copy of the
 * outputs the kernel wrote (*captured, a tune_reference; NULL otherwise): a trusted
 * schedule's outputs as the reference of the others when the interpreter would take too
 * long. */
kiln_status tune_measure_capture(kiln_context *ctx, const tune_built *k, const ir_func *f,
                                 const tune_measure_opts *opts,
                                 const void *const *reference_outputs, tune_result *out,
                                 tune_reference **captured);

#endif

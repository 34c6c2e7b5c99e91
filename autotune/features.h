/* features.h: what the autotuner's cost model sees of a candidate. tune_extract_features turns
 * a LOWERED PrimFunc (ir_lower_func's output: plain loops with kinds, ramps/broadcasts,
 * allocates, parallel loops) into a fixed-length float vector; the cost model (gradient-boosted
 * trees through XGBoost's C API) is trained on such vectors and the measured throughputs and
 * ranks new candidates. Both live in autotune/features.c. Internal header (prefix tune_). */
#ifndef KILN_AUTOTUNE_FEATURES_H
#define KILN_AUTOTUNE_FEATURES_H

#include "ir/node.h"

/* ---- Features -------------------------------------------------------------------------- */

/* The vector has tune_feature_count() floats, in three parts (the names say which):
 * - "fn.*": the function as a whole (stores, loops, parallel loops, local allocations);
 * - "st.*": per-store features (Ansor style: one vector per buffer store, with its execution
 *   count, float/int op counts by kind, lanes, loop nest, parallelism), aggregated over the
 *   function's stores: counts are SUMMED over stores (each already multiplied by the store's
 *   execution count), properties (lanes, depth, flags, strides) are AVERAGED weighted by the
 *   store's execution count, so the hot stores dominate;
 * - "b0.*", "b1.*", "b2.*": per-store buffer-access slots (b0: the stored buffer; b1, b2:
 *   the other buffers the store reads, largest footprint first), averaged like properties:
 *   read/write/local flags, bytes per access, bytes touched over the 1, 2, 3 innermost loops
 *   and over the whole nest (box of ir_bound_of's index bounds, the other loops fixed at
 *   their first iteration), reuse (accesses / distinct elements) at the innermost loop and
 *   over the nest, the stride in the innermost varying loop (the vector lanes for vector
 *   accesses) and whether it is 1 (contiguous) or 0 (invariant).
 * Counts, extents and bytes are log-transformed: log2(1 + x). Flags are 0/1. */
int tune_feature_count(void);
/* The name of feature i ("st.float_mul", "b0.footprint_all", ...), or NULL out of range. */
const char *tune_feature_name(int i);
/* The index of the feature with this name, or -1. */
int tune_feature_index(const char *name);

typedef struct tune_feature_options {
  int num_threads; /* threads the parallel loops run on (0: unknown; "st.parallel_per_thread"
                    * is then 0) */
} tune_feature_options;

/* Fills out[0 .. tune_feature_count()) with the features of `lowered`. Blocks left in the
 * function are KILN_ERR_UNSUPPORTED (run ir_lower_func first); a NULL argument is
 * KILN_ERR_MISUSE. Loop extents that are not constants are bounded by ir_bound_of (an
 * unbounded extent counts as 1). Temporary memory comes from ctx and is freed. */
kiln_status tune_extract_features(kiln_context *ctx, const ir_func *lowered, float *out);
kiln_status tune_extract_features_opt(kiln_context *ctx, const ir_func *lowered,
                                      const tune_feature_options *o, float *out);

/* The floating-point operations one call of a LOWERED function performs (for GFLOP/s
 * figures): every float add/sub, mul, div, min/max, transcendental and other float call,
 * once per lane and per execution of the store it feeds (an fma counts 2: a multiply and an
 * add), executions counted as the features count them (loop extents; guards do not reduce
 * the count). A 64x64x64 matmul counts 2 * 64^3. Errors as tune_extract_features's. */
kiln_status tune_count_flops(kiln_context *ctx, const ir_func *lowered, double *flops);

/* ---- The cost model --------------------------------------------------------------------- */

/* Gradient-boosted regression trees (XGBoost) over feature vectors of tune_feature_count()
 * floats. Training replaces the model by one trained on the samples given (the tuner passes
 * the current run's measurements plus the database's records each time); the targets are
 * the throughputs divided by their maximum, so the scale of a workload does not matter.
 * Deterministic: fixed seed, one thread. An untrained model predicts 0 for every sample.
 * XGBoost allocates its own memory (outside the context's allocator). */
typedef struct tune_cost_model tune_cost_model;

kiln_status tune_cost_model_new(kiln_context *ctx, tune_cost_model **out);
/* n >= 1 samples; features is n x tune_feature_count() (row-major); throughputs are >= 0 and
 * higher is better. KILN_ERR_MISUSE for NULL / n < 1 / negative or non-finite throughputs;
 * KILN_ERR_INTERNAL with XGBoost's message when the library fails. */
kiln_status tune_cost_model_train(tune_cost_model *m, int n, const float *features,
                                  const double *throughputs);
/* scores[i] for each of n >= 1 samples: higher means predicted faster. */
kiln_status tune_cost_model_predict(tune_cost_model *m, int n, const float *features,
                                    double *scores);
/* Whether the model has been trained (or loaded). */
bool tune_cost_model_trained(const tune_cost_model *m);
/* The trained model as bytes (XGBoost's UBJSON format), for the database: *buf is allocated
 * through the context (free with ir_free(ctx, *buf, *len)). KILN_ERR_MISUSE if untrained. */
kiln_status tune_cost_model_save(tune_cost_model *m, void **buf, size_t *len);
/* Replaces the model by one saved with tune_cost_model_save. KILN_ERR_CORRUPT when XGBoost
 * rejects the bytes or the model expects another number of features. */
kiln_status tune_cost_model_load(tune_cost_model *m, const void *buf, size_t len);
void tune_cost_model_free(tune_cost_model *m);

#endif

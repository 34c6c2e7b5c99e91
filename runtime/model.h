/* model.h: the loaded form of a compiled model (model.c builds it from an artifact's META and
 * PLAN, see FORMAT.md) and of a session over it (session.c). Plain arrays of structs: after
 * kiln_model_load nothing reads JSON again. Internal header (tests look inside too). */
#ifndef KILN_RT_MODEL_H
#define KILN_RT_MODEL_H

#include <stdatomic.h>
#include <stdint.h>

#include "artifact.h"
#include "kiln/kiln_runtime.h"

/* A model input or output (META inputs / outputs). */
typedef struct rt_io {
  char *name;
  kiln_dtype dtype;
  int ndim;
  /* Outputs only: per axis the input and input axis it follows (-1, -1: none). */
  int *follow_input, *follow_axis;
} rt_io;

/* A kernel (PLAN kernels) and its resolved entry point. */
typedef struct rt_kernel {
  char *symbol, *name;
  kiln_kernel_fn fn;
} rt_kernel;

/* A weight inside the PARAMS section (PLAN params). */
typedef struct rt_param {
  uint64_t offset, nbytes;
  kiln_dtype dtype;
  int ndim;
  int64_t *shape;
} rt_param;

enum { RT_TENSOR_INPUT, RT_TENSOR_PARAM, RT_TENSOR_ARENA };

/* A tensor of a bucket's plan. */
typedef struct rt_tensor {
  int kind;        /* RT_TENSOR_xxx */
  int index;       /* INPUT: the model input; PARAM: the param */
  uint64_t offset; /* ARENA: byte offset in the activation arena */
  uint64_t nbytes;
  kiln_dtype dtype;
  int ndim;
  int64_t *shape;
} rt_tensor;

/* One argument of a call: a tensor of the bucket, or an int64 scalar. */
typedef struct rt_arg {
  int tensor; /* index into the bucket's tensors, or -1 for a scalar */
  int64_t value;
} rt_arg;

typedef struct rt_call {
  int kernel;
  int nargs;
  rt_arg *args;
} rt_call;

typedef struct rt_bucket {
  int64_t **input_shapes;  /* [ninputs][input ndim] */
  int64_t **output_shapes; /* [noutputs][output ndim] */
  uint64_t *input_bytes;   /* [ninputs] */
  uint64_t *output_bytes;  /* [noutputs] */
  uint64_t input_elems;    /* sum over inputs: picks the smallest bucket when padding */
  double weight;
  uint64_t arena_bytes, naive_bytes;
  int ntensors;
  rt_tensor *tensors;
  int ncalls;
  rt_call *calls;
  int *outputs; /* [noutputs] tensor indices */
} rt_bucket;

struct kiln_model {
  atomic_int refs;  /* the user's reference + one per session */
  char *name;       /* the path or the label given, for messages */
  rt_artifact *art; /* the mapping (weights are used in place) and the loaded code */
  char *meta_json, *plan_json;
  const uint8_t *params; /* the PARAMS section */
  uint64_t params_size;
  int ninputs, noutputs, nkernels, nparams, nbuckets, npaddable;
  rt_io *inputs, *outputs;
  rt_kernel *kernels;
  rt_param *params_list;
  rt_bucket *buckets;
  int (*paddable)[2]; /* [npaddable] (input, axis) */
};

/* Drops one reference (the user's or a session's); frees the model at zero. */
void rt_model_release(kiln_model *m);

/* Per bucket, per call: the argument descriptors handed to the kernel. */
typedef struct rt_call_args {
  kiln_tensor *args;
  int nargs;
} rt_call_args;

/* A place in a bucket's argument arrays that holds a model input (its data pointer is set at
 * each run, to the bound tensor or its padded copy). */
typedef struct rt_input_slot {
  int call, arg, input;
} rt_input_slot;

typedef struct rt_session_bucket {
  rt_call_args *calls; /* [ncalls] */
  int nslots;
  rt_input_slot *slots;
  int64_t *scalars; /* the values of scalar arguments, pointed at by their tensors */
  int64_t *shapes;  /* the shapes of every tensor, pointed at by the descriptors */
  int profile_at;   /* where this bucket's entries start in the profile, -1: none yet */
} rt_session_bucket;

struct kiln_session {
  kiln_model *model;
  uint8_t *arena; /* max(arena_bytes), 64-byte aligned */
  uint64_t arena_bytes;
  rt_session_bucket *buckets;
  /* Inputs: binding, paddable axes, staging copy for padding. */
  int *bound;                /* [ninputs] */
  kiln_tensor *inputs;       /* [ninputs] the bound descriptors (shape -> input_shapes) */
  int64_t **input_shapes;    /* [ninputs][ndim] copies of the bound shapes */
  uint8_t **paddable;        /* [ninputs][ndim] */
  uint8_t **input_staging;   /* [ninputs] largest padded size, 64-byte aligned */
  uint64_t *input_staging_bytes;
  void **input_data;         /* [ninputs] what the kernels read this run */
  /* Outputs of the last run. */
  int have_outputs, last_bucket;
  kiln_tensor *outputs;      /* [noutputs] */
  int64_t **output_shapes;   /* [noutputs][ndim] actual (sliced) shapes */
  uint8_t **output_staging;  /* [noutputs] NULL when slices of this output are always prefixes */
  int64_t *index;            /* scratch: one counter per axis for the N-d copies */
  /* Profiling. */
  int profiling;
  int64_t profile_runs;
  int nprofile;
  kiln_profile_entry *profile; /* [total calls] entries of the buckets that ran, in order */
};

#endif

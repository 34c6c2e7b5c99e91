/* 05_deploy.c: tutorial 5's deployment program. It runs a compiled model (.kiln) with the
 * stand-alone runtime only: it includes kiln/kiln_runtime.h and links libkiln_runtime.so, so
 * the machine that runs it needs neither LLVM nor the compiler nor Python.
 *
 *   tutorial_deploy MODEL.kiln INPUT.f32 OUTPUT.f32 [D0,D1,...]
 *
 * INPUT.f32 holds the model's single float32 input as raw row-major values; its shape is the
 * optional last argument (default: the shape of bucket 0). The first output is written to
 * OUTPUT.f32 the same way. 05_deploy_runtime_only.py drives it; build it by hand with
 *   cc -std=c11 -O2 05_deploy.c -I include -L build -lkiln_runtime -Wl,-rpath,$PWD/build
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln_runtime.h"

#define MAX_RANK 8

/* Every kiln function returns a kiln_status (KILN_OK == 0). On failure the runtime keeps a
 * message for this thread, which kiln_last_error() returns: it names the file, the input,
 * the shapes... so printing it is usually all the error handling a program needs. */
static int report(kiln_status s, const char *what) {
  fprintf(stderr, "tutorial_deploy: %s failed (%s): %s\n", what, kiln_status_str(s),
          kiln_last_error());
  return 1;
}

/* Reads a whole file into a malloc'ed buffer; NULL (and a message) on failure. */
static float *read_floats(const char *path, size_t *count) {
  FILE *f = fopen(path, "rb");
  float *buf = NULL;
  long bytes = -1;
  if (f && fseek(f, 0, SEEK_END) == 0 && (bytes = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (buf = malloc((size_t)bytes + 1)) && fread(buf, 1, (size_t)bytes, f) == (size_t)bytes) {
    *count = (size_t)bytes / sizeof(float);
  } else {
    fprintf(stderr, "tutorial_deploy: cannot read %s\n", path);
    free(buf);
    buf = NULL;
  }
  if (f) fclose(f);
  return buf;
}

/* Parses "1,3,32,32" into shape; returns the rank, or -1 when malformed. */
static int parse_shape(const char *text, int64_t *shape) {
  int rank = 0;
  while (*text && rank < MAX_RANK) {
    char *end;
    long long v = strtoll(text, &end, 10);
    if (end == text || v < 0 || (*end && *end != ',')) return -1;
    shape[rank++] = v;
    text = *end ? end + 1 : end;
  }
  return *text ? -1 : rank;
}

static void print_shape(const int64_t *shape, int rank) {
  printf("(");
  for (int k = 0; k < rank; k++) printf("%s%lld", k ? ", " : "", (long long)shape[k]);
  printf(")");
}

int main(int argc, char **argv) {
  if (argc < 4 || argc > 5) {
    fprintf(stderr, "usage: tutorial_deploy MODEL.kiln INPUT.f32 OUTPUT.f32 [D0,D1,...]\n");
    return 2;
  }
  kiln_model *model = NULL;
  kiln_session *session = NULL;
  float *input = NULL;
  int rc = 1;
  kiln_status s;

  /* 1. Load the artifact. The file is mapped: weights are used in place, the kernels are
   *    loaded as a shared object. Nothing is compiled here. */
  if ((s = kiln_model_load(argv[1], &model)) != KILN_OK) {
    rc = report(s, "kiln_model_load");
    goto done;
  }
  printf("model %s: kiln %s runtime, %d input(s), %d output(s), %d bucket(s)\n", argv[1],
         kiln_version(), kiln_model_num_inputs(model), kiln_model_num_outputs(model),
         kiln_model_num_buckets(model));
  if (kiln_model_num_inputs(model) != 1 ||
      !kiln_dtype_eq(kiln_model_input_dtype(model, 0), KILN_FLOAT32) ||
      !kiln_dtype_eq(kiln_model_output_dtype(model, 0), KILN_FLOAT32)) {
    fprintf(stderr, "tutorial_deploy: this example handles one float32 input and output\n");
    goto done;
  }

  /* The buckets: each is one set of input shapes the model was compiled for. */
  int rank = kiln_model_input_ndim(model, 0);
  int64_t shape[MAX_RANK];
  for (int b = 0; b < kiln_model_num_buckets(model); b++) {
    uint64_t planned = 0, naive = 0;
    kiln_model_input_shape(model, b, 0, shape);
    kiln_model_bucket_memory(model, b, &planned, &naive);
    printf("  bucket %d: %s ", b, kiln_model_input_name(model, 0));
    print_shape(shape, rank);
    printf(", %d kernel calls, %llu bytes of activations\n", kiln_model_bucket_num_calls(model, b),
           (unsigned long long)planned);
  }

  /* 2. The input: raw float32 values, with the shape from the command line (or bucket 0's). */
  kiln_model_input_shape(model, 0, 0, shape);
  if (argc == 5 && (rank = parse_shape(argv[4], shape)) < 0) {
    fprintf(stderr, "tutorial_deploy: bad shape '%s'\n", argv[4]);
    goto done;
  }
  size_t count = 0, want = 1;
  for (int k = 0; k < rank; k++) want *= (size_t)shape[k];
  if (!(input = read_floats(argv[2], &count))) goto done;
  if (count != want) {
    fprintf(stderr, "tutorial_deploy: %s holds %zu floats, the shape needs %zu\n", argv[2], count,
            want);
    goto done;
  }

  /* 3. A session owns the activation memory (allocated now, for the largest bucket) and the
   *    input bindings; running allocates nothing. One session per thread. */
  if ((s = kiln_session_new(model, &session)) != KILN_OK) {
    rc = report(s, "kiln_session_new");
    goto done;
  }

  /* 4. Bind the input without copying: the runtime reads our buffer during the run. The
   *    descriptor is DLPack's DLTensor layout (NULL strides: compact row-major). */
  kiln_tensor in = {.data = input, .device_type = 1, .device_id = 0, .ndim = rank,
                    .dtype = KILN_FLOAT32, .shape = shape, .strides = NULL, .byte_offset = 0};
  if ((s = kiln_session_set_input(session, 0, &in)) != KILN_OK) {
    rc = report(s, "kiln_session_set_input");
    goto done;
  }

  /* 5. Run: the bucket is picked from the bound shape (a shape no bucket takes gives
   *    KILN_ERR_SHAPE with a message listing the buckets). */
  if ((s = kiln_session_run(session)) != KILN_OK) {
    rc = report(s, "kiln_session_run");
    goto done;
  }

  /* 6. Read the output in place (it lives in session memory until the next run) and save it. */
  kiln_tensor out;
  if ((s = kiln_session_get_output(session, 0, &out)) != KILN_OK) {
    rc = report(s, "kiln_session_get_output");
    goto done;
  }
  size_t n = 1;
  for (int k = 0; k < out.ndim; k++) n *= (size_t)out.shape[k];
  const float *values = (const float *)((const char *)out.data + out.byte_offset);
  printf("ran bucket %d; output %s ", kiln_session_last_bucket(session),
         kiln_model_output_name(model, 0));
  print_shape(out.shape, out.ndim);
  printf(":");
  for (size_t i = 0; i < n && i < 5; i++) printf(" %.5f", values[i]);
  printf("%s\n", n > 5 ? " ..." : "");
  FILE *f = fopen(argv[3], "wb");
  int written = f && fwrite(values, sizeof(float), n, f) == n;
  if ((f && fclose(f) != 0) || !written) {
    fprintf(stderr, "tutorial_deploy: cannot write %s\n", argv[3]);
    goto done;
  }
  rc = 0;

done: /* freeing NULL handles is allowed, so one exit path cleans up after any error */
  kiln_session_free(session);
  kiln_model_free(model);
  free(input);
  return rc;
}

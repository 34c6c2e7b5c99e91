/* rt_run.c: runs a compiled model on raw tensor files, linked only against libkiln_runtime.so
 * (no compiler, no LLVM): the deployment example.
 *
 *   rt_run MODEL.kiln IN0.bin [IN1.bin ...] [--shape 1,3,224,224 ...] [--pad INPUT:AXIS ...]
 *          -o OUTPREFIX
 *
 * Each INi.bin holds input i as raw little-endian row-major elements of the model's dtype;
 * the i-th --shape gives its shape (default: the shape of bucket 0). --pad makes an axis of
 * an input (by name or index) paddable. Output i goes to OUTPREFIXi.bin and one line
 * "output I NAME DTYPE D0,D1,..." is printed per output, then one line with the load time
 * and whether any LLVM library is mapped into the process (it must not be: the deployment
 * needs only libkiln_runtime.so). Errors go to stderr, exit status 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln/kiln_runtime.h"

#define MAX_INPUTS 64
#define MAX_RANK 64

static int fail(const char *what, const char *detail) {
  fprintf(stderr, "rt_run: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  return 1;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Whether a library whose path contains "LLVM" is mapped into this process. */
static int llvm_mapped(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[4096];
  int found = 0;
  while (f && !found && fgets(line, sizeof line, f)) found = strstr(line, "LLVM") != NULL;
  if (f) fclose(f);
  return found;
}

/* Parses "1,3,224,224" into shape; returns the rank, or -1. */
static int parse_shape(const char *s, int64_t *shape) {
  int n = 0;
  while (*s && n < MAX_RANK) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 0 || (*end && *end != ',')) return -1;
    shape[n++] = v;
    s = *end ? end + 1 : end;
  }
  return *s ? -1 : n;
}

/* Reads a whole file into memory (malloc'ed); NULL on failure. */
static void *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *data = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)n + 1)) &&
        fread(data, 1, (size_t)n, f) != (size_t)n) {
      free(data);
      data = NULL;
    }
    *len = (size_t)n;
  }
  fclose(f);
  return data;
}

int main(int argc, char **argv) {
  const char *model_path = NULL, *prefix = NULL, *files[MAX_INPUTS], *shapes[MAX_INPUTS],
             *pads[MAX_INPUTS];
  int nfiles = 0, nshapes = 0, npads = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_value = i + 1 < argc;
    if (strcmp(a, "-o") == 0 && has_value) prefix = argv[++i];
    else if (strcmp(a, "--shape") == 0 && has_value && nshapes < MAX_INPUTS) shapes[nshapes++] = argv[++i];
    else if (strcmp(a, "--pad") == 0 && has_value && npads < MAX_INPUTS) pads[npads++] = argv[++i];
    else if (a[0] == '-') return fail("bad argument", a);
    else if (!model_path) model_path = a;
    else if (nfiles < MAX_INPUTS) files[nfiles++] = a;
  }
  if (!model_path || !prefix) {
    fprintf(stderr, "usage: rt_run MODEL.kiln IN0.bin [IN1.bin ...] [--shape D0,D1,... ...] "
                    "[--pad INPUT:AXIS ...] -o OUTPREFIX\n");
    return 1;
  }

  kiln_model *model;
  kiln_session *session;
  double t0 = now_ms();
  if (kiln_model_load(model_path, &model) != KILN_OK) return fail(kiln_last_error(), NULL);
  double load_ms = now_ms() - t0;
  if (kiln_session_new(model, &session) != KILN_OK) return fail(kiln_last_error(), NULL);
  int ninputs = kiln_model_num_inputs(model);
  if (nfiles != ninputs || nshapes > ninputs) {
    fprintf(stderr, "rt_run: the model has %d inputs; got %d files and %d shapes\n", ninputs,
            nfiles, nshapes);
    return 1;
  }

  for (int p = 0; p < npads; p++) { /* INPUT:AXIS, INPUT a name or an index */
    const char *colon = strrchr(pads[p], ':');
    if (!colon) return fail("--pad wants INPUT:AXIS", pads[p]);
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(colon - pads[p]), pads[p]);
    int input = kiln_model_input_index(model, name);
    if (input < 0) { /* not a name: an index */
      char *end;
      input = (int)strtol(name, &end, 10);
      if (!*name || *end) return fail("--pad: no such input", name);
    }
    if (kiln_session_set_paddable(session, input, atoi(colon + 1), 1) != KILN_OK)
      return fail(kiln_last_error(), NULL);
  }

  /* Bind each input to its file's bytes (the buffers must outlive the run). */
  void *data[MAX_INPUTS];
  int64_t shape[MAX_INPUTS][MAX_RANK];
  for (int i = 0; i < ninputs; i++) {
    kiln_dtype dt = kiln_model_input_dtype(model, i);
    int ndim = kiln_model_input_ndim(model, i);
    if (i < nshapes) ndim = parse_shape(shapes[i], shape[i]);
    else kiln_model_input_shape(model, 0, i, shape[i]);
    if (ndim < 0) return fail("bad --shape", shapes[i]);
    size_t len = 0, want = kiln_dtype_bytes(dt);
    for (int k = 0; k < ndim; k++) want *= (size_t)shape[i][k];
    if (!(data[i] = read_file(files[i], &len))) return fail("cannot read", files[i]);
    if (len != want) {
      fprintf(stderr, "rt_run: %s: %zu bytes, the shape needs %zu\n", files[i], len, want);
      return 1;
    }
    kiln_tensor t = {.data = data[i], .device_type = 1, .ndim = ndim, .dtype = dt,
                     .shape = shape[i]};
    if (kiln_session_set_input(session, i, &t) != KILN_OK) return fail(kiln_last_error(), NULL);
  }

  if (kiln_session_run(session) != KILN_OK) return fail(kiln_last_error(), NULL);

  for (int o = 0; o < kiln_model_num_outputs(model); o++) {
    kiln_tensor t;
    if (kiln_session_get_output(session, o, &t) != KILN_OK) return fail(kiln_last_error(), NULL);
    size_t bytes = kiln_dtype_bytes(t.dtype);
    char dtype[32], path[4096];
    printf("output %d %s %s ", o, kiln_model_output_name(model, o),
           kiln_dtype_str(t.dtype, dtype, sizeof dtype));
    for (int k = 0; k < t.ndim; k++) {
      printf("%s%lld", k ? "," : "", (long long)t.shape[k]);
      bytes *= (size_t)t.shape[k];
    }
    printf("\n");
    snprintf(path, sizeof path, "%s%d.bin", prefix, o);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite((char *)t.data + t.byte_offset, 1, bytes, f) != bytes || fclose(f) != 0)
      return fail("cannot write", path);
  }
  printf("loaded in %.2f ms; LLVM mapped: %s\n", load_ms, llvm_mapped() ? "yes" : "no");

  kiln_session_free(session);
  kiln_model_free(model);
  for (int i = 0; i < ninputs; i++) free(data[i]);
  return 0;
}

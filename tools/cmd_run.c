/* cmd_run.c: running a compiled model (.kiln) from the command line through the runtime API
 * (kiln_model_* / kiln_session_*, runtime/session.c):
 *   kiln run OUT.kiln --input NAME=FILE.npy ... [--output-dir D] [--pad INPUT:AXIS ...]
 *   kiln bench OUT.kiln [--input-dims D,D[:D,D...]] [--bucket K] [--warmup W] [--iters I]
 *              [--min-time S] [--seed K] [--threads N] [--json]
 *   kiln profile OUT.kiln [--input-dims ...] [--bucket K] [--iters I] [--threads N] [--json]
 * run reads its inputs from .npy files and writes every output as one; bench and profile run
 * on random inputs (fixed seed) and print timings / the per-kernel profile. Exit status 0 /
 * 1 (a file or the run failed) / 2 (the command line is malformed). main() in kiln.c calls
 * the kiln_cmd_* functions with the arguments after the command's name. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "ir/base.h"
#include "kiln/kiln.h"
#include "tools/npy.h"
#include "tools/tool.h"

#define EXIT_STATUS_TEXT                                                                      \
  "exit status: 0 success, 1 failure (unreadable or bad artifact or input file, run\n"        \
  "error), 2 usage error (unknown option, missing argument, malformed value)\n"

static const char run_usage[] =
    "usage: kiln run MODEL.kiln --input NAME=FILE.npy ... [--output-dir D]\n"
    "                [--pad INPUT:AXIS ...] [--threads N]\n"
    "                [--expect NAME=FILE.npy ... [--rtol R] [--atol-rel A]]\n"
    "  run a compiled model on inputs read from .npy files (a model with one input also\n"
    "  takes --input FILE.npy) and write each output to D/NAME.npy (D default \".\"; characters\n"
    "  of the name outside [A-Za-z0-9_.-] become '_'); print one line per output: its name,\n"
    "  shape, dtype, file and the bucket that ran. The inputs' shapes pick the bucket;\n"
    "  --pad INPUT:AXIS lets a shape between buckets run padded up to the next larger bucket\n"
    "  along that axis (outputs are sliced back; axes declared with kiln compile --paddable\n"
    "  are paddable already). --threads N sets the thread pool's size (default: all CPUs\n"
    "  or $KILN_NUM_THREADS).\n"
    "  --expect NAME=FILE.npy checks output NAME against a reference: floats must satisfy\n"
    "  |out - ref| <= A * max|ref| + R * |ref| (R default 1e-3, A default 1e-4), other\n"
    "  types must be equal; a mismatch (or another shape or dtype) is a failure (exit 1).\n"
    EXIT_STATUS_TEXT;

static const char bench_usage[] =
    "usage: kiln bench MODEL.kiln [--input-dims D,D,D[:D,D...]] [--bucket K] [--threads N]\n"
    "                  [--warmup W] [--iters I] [--min-time S] [--seed K] [--json]\n"
    "  time a compiled model on random inputs (fixed seed K, default 0; floats uniform in\n"
    "  [-1, 1), integers in [0, 4), bools 0/1): W warm-up runs (default 2), then at least\n"
    "  I timed runs (default 20) lasting at least S seconds (default 1). The inputs have\n"
    "  bucket K's shapes (default bucket 0) or the dimensions of --input-dims (one\n"
    "  comma-separated list per input, ':' between inputs; an input shape between buckets\n"
    "  runs padded when its axis was declared paddable at compile time). Prints\n"
    "  \"Microseconds per iter: X\" (X the mean) and min, p10, p50, p90, p99, max and the\n"
    "  standard deviation in microseconds; --json prints one JSON object instead.\n"
    EXIT_STATUS_TEXT;

static const char profile_usage[] =
    "usage: kiln profile MODEL.kiln [--input-dims D,D,D[:D,D...]] [--bucket K] [--threads N]\n"
    "                    [--iters I] [--seed K] [--json]\n"
    "  run a compiled model I times (default 10, after one warm-up run) on random inputs\n"
    "  (as kiln bench chooses them) with every kernel call timed, and print the per-kernel\n"
    "  table (calls sorted by total time, with their share) or, with --json, the profile as\n"
    "  JSON.\n" EXIT_STATUS_TEXT;

enum { MAX_INPUTS = 64, MAX_RANK = 32, MAX_PADS = 64 };

/* ---- shared helpers -------------------------------------------------------------------- */

/* Reports a usage error (exit status 2). */
static int usage_error(const char *cmd, const char *fmt, const char *arg) {
  fprintf(stderr, "kiln %s: ", cmd);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(kiln %s --help for the usage)\n", cmd);
  return 2;
}

/* A whole number in [lo, hi] from s, or -1 (and a usage error) when malformed. */
static int parse_count(const char *cmd, const char *option, const char *s, long lo, long hi,
                       long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) {
    fprintf(stderr, "kiln %s: %s takes a whole number from %ld to %ld, not '%s'\n"
                    "(kiln %s --help for the usage)\n",
            cmd, option, lo, hi, s, cmd);
    return -1;
  }
  *out = v;
  return 0;
}

/* Prints an error of the runtime, prefixed with the artifact's path unless the message
 * already names it. */
static int fail_rt(const char *cmd, const char *path, const char *msg) {
  if (path && !strstr(msg, path)) fprintf(stderr, "kiln %s: %s: %s\n", cmd, path, msg);
  else fprintf(stderr, "kiln %s: %s\n", cmd, msg);
  return 1;
}

/* "[1, 3, 224, 224]" into buf. */
static const char *shape_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
  size_t n = (size_t)snprintf(buf, cap, "[");
  for (int d = 0; d < ndim && n < cap; d++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, d ? ", " : "", shape[d]);
  if (n < cap) snprintf(buf + n, cap - n, "]");
  return buf;
}

/* Loads the artifact and makes one session; sets the thread pool's size when threads > 0. */
static int open_session(const char *cmd, const char *path, int threads, kiln_model **m,
                        kiln_session **s) {
  *m = NULL;
  *s = NULL;
  if (kiln_model_load(path, m)) return fail_rt(cmd, path, kiln_last_error());
  if (kiln_session_new(*m, s)) {
    fail_rt(cmd, path, kiln_last_error());
    kiln_model_free(*m);
    *m = NULL;
    return 1;
  }
  if (threads > 0 && kiln_rt_set_num_threads(threads)) {
    fail_rt(cmd, NULL, kiln_last_error());
    kiln_session_free(*s);
    kiln_model_free(*m);
    *m = NULL;
    *s = NULL;
    return 1;
  }
  return 0;
}

/* The input index of `name`, or -1 with a message (starting with `label` when not NULL)
 * listing the model's inputs. */
static int find_input(const char *cmd, const char *label, const char *path, const kiln_model *m,
                      const char *name) {
  int i = kiln_model_input_index(m, name);
  if (i >= 0) return i;
  fprintf(stderr, "kiln %s: %s%s%s has no input named '%s'; its inputs are:", cmd,
          label ? label : "", label ? ": " : "", path, name);
  for (int k = 0; k < kiln_model_num_inputs(m); k++)
    fprintf(stderr, "%s '%s'", k ? "," : "", kiln_model_input_name(m, k));
  fprintf(stderr, "\n");
  return -1;
}

/* Declares INPUT:AXIS paddable on the session (the strings were checked by the parser). */
static int apply_pads(const char *cmd, const char *path, kiln_session *s, int npads,
                      char *const *pads) {
  kiln_model *m = kiln_session_model(s);
  for (int p = 0; p < npads; p++) {
    char *colon = strrchr(pads[p], ':');
    char label[300];
    snprintf(label, sizeof label, "--pad %s", pads[p]);
    *colon = 0;
    int i = find_input(cmd, label, path, m, pads[p]);
    *colon = ':';
    if (i < 0) return 1;
    int axis = atoi(colon + 1);
    if (axis >= kiln_model_input_ndim(m, i)) {
      fprintf(stderr, "kiln %s: --pad %s: input '%s' has %d axes\n", cmd, pads[p],
              kiln_model_input_name(m, i), kiln_model_input_ndim(m, i));
      return 1;
    }
    if (kiln_session_set_paddable(s, i, axis, 1)) return fail_rt(cmd, path, kiln_last_error());
  }
  return 0;
}

/* Checks an INPUT:AXIS argument's form (a usage error when malformed). */
static int check_pad_arg(const char *cmd, const char *s) {
  const char *colon = strrchr(s, ':');
  char *end = NULL;
  long axis = colon ? strtol(colon + 1, &end, 10) : -1;
  if (!colon || colon == s || end == colon + 1 || *end || axis < 0 || axis > 64)
    return usage_error(cmd, "--pad takes INPUT:AXIS (an input name and an axis >= 0), not '%s'",
                       s);
  return 0;
}

/* ---- kiln run ---------------------------------------------------------------------------- */

typedef struct run_options {
  const char *model, *outdir;
  int threads;
  int ninputs;
  const char *inputs[MAX_INPUTS];
  int nexpects;
  char *expects[MAX_INPUTS]; /* NAME=FILE.npy */
  double rtol, atol_rel;
  int npads;
  char *pads[MAX_PADS];
} run_options;

/* Returns 0, 2 (usage error, reported) or 3 (--help printed). */
static int parse_run_options(int argc, char **argv, run_options *o) {
  memset(o, 0, sizeof *o);
  o->outdir = ".";
  o->rtol = 1e-3;
  o->atol_rel = 1e-4;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(run_usage, stdout);
      return 3;
    }
    int takes_value = !strcmp(a, "--input") || !strcmp(a, "--output-dir") || !strcmp(a, "--pad") ||
                      !strcmp(a, "--threads") || !strcmp(a, "--expect") || !strcmp(a, "--rtol") ||
                      !strcmp(a, "--atol-rel");
    if (takes_value && i + 1 >= argc) return usage_error("run", "%s needs a value", a);
    if (!strcmp(a, "--expect")) {
      if (o->nexpects == MAX_INPUTS) return usage_error("run", "too many %s options", a);
      char *eq = strchr(argv[i + 1], '=');
      if (!eq || eq == argv[i + 1] || !eq[1])
        return usage_error("run", "--expect takes NAME=FILE.npy, not '%s'", argv[i + 1]);
      o->expects[o->nexpects++] = argv[++i];
    } else if (!strcmp(a, "--rtol") || !strcmp(a, "--atol-rel")) {
      char *end;
      double v = strtod(argv[i + 1], &end);
      if (end == argv[i + 1] || *end || !(v >= 0 && v < 1e300))
        return usage_error("run", "--rtol and --atol-rel take a number >= 0, not '%s'",
                           argv[i + 1]);
      if (!strcmp(a, "--rtol")) o->rtol = v;
      else o->atol_rel = v;
      i++;
    } else if (!strcmp(a, "--input")) {
      if (o->ninputs == MAX_INPUTS) return usage_error("run", "too many %s options", a);
      if (!argv[i + 1][0]) return usage_error("run", "%s needs NAME=FILE.npy", a);
      o->inputs[o->ninputs++] = argv[++i];
    } else if (!strcmp(a, "--output-dir")) {
      o->outdir = argv[++i];
    } else if (!strcmp(a, "--pad")) {
      if (o->npads == MAX_PADS) return usage_error("run", "too many %s options", a);
      if (check_pad_arg("run", argv[i + 1])) return 2;
      o->pads[o->npads++] = argv[++i];
    } else if (!strcmp(a, "--threads")) {
      long v;
      if (parse_count("run", a, argv[++i], 1, 1024, &v)) return 2;
      o->threads = (int)v;
    } else if (a[0] == '-' && a[1]) {
      return usage_error("run", "unknown option '%s'", a);
    } else if (!o->model) {
      o->model = a;
    } else {
      return usage_error("run", "more than one model given ('%s')", a);
    }
  }
  if (!o->model) return usage_error("run", "no model given%s", "");
  return 0;
}

/* An output's name as a file name: characters outside [A-Za-z0-9_.-] become '_'; an empty
 * name (or "." / "..") becomes "output<i>". */
static void sanitize_name(const kiln_model *m, int i, char *buf, size_t cap) {
  const char *src = kiln_model_output_name(m, i);
  size_t n = 0;
  for (; src && *src && n + 1 < cap; src++) {
    char c = *src;
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '-';
    buf[n++] = ok ? c : '_';
  }
  buf[n] = 0;
  if (n == 0 || strcmp(buf, ".") == 0 || strcmp(buf, "..") == 0) snprintf(buf, cap, "output%d", i);
}

/* The file of output i: "<sanitized name>.npy", or "<sanitized name>_<i>.npy" when an
 * earlier output already has that sanitized name. */
static void output_file_name(const kiln_model *m, int i, char *buf, size_t cap) {
  char mine[256], other[256];
  sanitize_name(m, i, mine, sizeof mine);
  int taken = 0;
  for (int k = 0; k < i && !taken; k++) {
    sanitize_name(m, k, other, sizeof other);
    taken = strcmp(other, mine) == 0;
  }
  if (taken) snprintf(buf, cap, "%s_%d.npy", mine, i);
  else snprintf(buf, cap, "%s.npy", mine);
}

/* bfloat16 has no numpy dtype: such an output is written as float32 (exact). */
static float bf16_to_float(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* Writes output i of the last run to dir/<name>.npy and prints its line. */
static int write_output(const run_options *o, kiln_session *s, int i, const char *bucket_note) {
  kiln_model *m = kiln_session_model(s);
  kiln_tensor t;
  if (kiln_session_get_output(s, i, &t)) return fail_rt("run", o->model, kiln_last_error());
  size_t count = 1;
  for (int d = 0; d < t.ndim; d++) count *= (size_t)t.shape[d];
  size_t esize = kiln_dtype_bytes(t.dtype);
  const unsigned char *src = (const unsigned char *)t.data + t.byte_offset;
  /* a compact copy when the runtime hands out a strided view */
  unsigned char *compact = NULL;
  if (t.strides) {
    int64_t expect = 1;
    int dense = 1;
    for (int d = t.ndim - 1; d >= 0; d--) {
      if (t.shape[d] != 1 && t.strides[d] != expect) dense = 0;
      expect *= t.shape[d];
    }
    if (!dense) {
      compact = malloc(count * esize + 1);
      if (!compact) return fail_rt("run", NULL, "out of memory");
      for (size_t e = 0; e < count; e++) {
        size_t rest = e;
        int64_t off = 0;
        for (int d = t.ndim - 1; d >= 0; d--) {
          off += (int64_t)(rest % (size_t)t.shape[d]) * t.strides[d];
          rest /= (size_t)t.shape[d];
        }
        memcpy(compact + e * esize, src + off * (int64_t)esize, esize);
      }
      src = compact;
    }
  }
  kiln_dtype dtype = t.dtype;
  float *widened = NULL;
  if (!npy_descr(dtype) && dtype.code == KILN_TYPE_BFLOAT && dtype.bits == 16 &&
      dtype.lanes == 1) {
    widened = malloc(count * sizeof(float) + 1);
    if (!widened) {
      free(compact);
      return fail_rt("run", NULL, "out of memory");
    }
    for (size_t e = 0; e < count; e++) {
      uint16_t h;
      memcpy(&h, src + e * 2, 2);
      widened[e] = bf16_to_float(h);
    }
    src = (const unsigned char *)widened;
    dtype = KILN_FLOAT32;
    esize = 4;
  }
  char name[300], path[4096], err[1024], dt[32], shape[256];
  output_file_name(m, i, name, sizeof name);
  snprintf(path, sizeof path, "%s/%s", o->outdir, name);
  kiln_status st = npy_write(path, dtype, t.ndim, t.shape, src, count * esize, err, sizeof err);
  int was_widened = widened != NULL;
  free(compact);
  free(widened);
  if (st) {
    fprintf(stderr, "kiln run: output '%s': %s\n", kiln_model_output_name(m, i), err);
    return 1;
  }
  printf("%s  %s  %s%s  %s  %s\n", kiln_model_output_name(m, i),
         shape_str(t.ndim, t.shape, shape, sizeof shape),
         kiln_dtype_str(t.dtype, dt, sizeof dt), was_widened ? " (written as float32)" : "", path,
         bucket_note);
  return 0;
}

/* Binds the --input files to the session's inputs; arrays[] receives what was read (the
 * caller frees them). */
static int bind_inputs(const run_options *o, kiln_session *s, npy_array *arrays) {
  kiln_model *m = kiln_session_model(s);
  int n = kiln_model_num_inputs(m);
  const char *files[MAX_INPUTS] = {0};
  if (n > MAX_INPUTS) return fail_rt("run", o->model, "the model has more than 64 inputs");
  for (int k = 0; k < o->ninputs; k++) {
    const char *arg = o->inputs[k], *eq = strchr(arg, '=');
    int i = -1;
    const char *file = arg;
    if (eq) {
      char name[512];
      snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
      i = kiln_model_input_index(m, name);
      if (i >= 0) file = eq + 1;
      else if (n != 1) {
        if (find_input("run", NULL, o->model, m, name) < 0) return 1;
      }
    }
    if (i < 0) {
      if (n != 1) {
        fprintf(stderr, "kiln run: %s has %d inputs: name each one, --input NAME=FILE.npy "
                        "(for '%s')\n",
                o->model, n, arg);
        return 1;
      }
      i = 0;
    }
    if (files[i]) {
      fprintf(stderr, "kiln run: input '%s' is given twice ('%s' and '%s')\n",
              kiln_model_input_name(m, i), files[i], file);
      return 1;
    }
    files[i] = file;
  }
  for (int i = 0; i < n; i++) {
    if (!files[i]) {
      fprintf(stderr, "kiln run: no file for input '%s' of %s (--input %s=FILE.npy)\n",
              kiln_model_input_name(m, i), o->model, kiln_model_input_name(m, i));
      return 1;
    }
    char err[1024];
    if (npy_read(files[i], &arrays[i], err, sizeof err)) {
      fprintf(stderr, "kiln run: input '%s': %s\n", kiln_model_input_name(m, i), err);
      return 1;
    }
    kiln_dtype want = kiln_model_input_dtype(m, i);
    if (!kiln_dtype_eq(arrays[i].dtype, want)) {
      char a[32], b[32];
      fprintf(stderr, "kiln run: %s: input '%s' of the model is %s, the file holds %s "
                      "(convert it, e.g. a.astype('%s'))\n",
              files[i], kiln_model_input_name(m, i), kiln_dtype_str(want, a, sizeof a),
              kiln_dtype_str(arrays[i].dtype, b, sizeof b), a);
      return 1;
    }
    kiln_tensor t = {arrays[i].data, 1, 0, arrays[i].ndim, arrays[i].dtype, arrays[i].shape,
                     NULL, 0};
    if (kiln_session_set_input(s, i, &t))
      return fail_rt("run", files[i], kiln_last_error());
  }
  return 0;
}

/* "bucket 1" or "bucket 2 (padded: input 'x' [3, 8] -> [4, 8])" for the last run. */
static void describe_bucket(kiln_session *s, const npy_array *arrays, char *buf, size_t cap) {
  kiln_model *m = kiln_session_model(s);
  int b = kiln_session_last_bucket(s);
  size_t n = (size_t)snprintf(buf, cap, "bucket %d", b);
  int padded = 0;
  for (int i = 0; i < kiln_model_num_inputs(m) && n < cap; i++) {
    int64_t shape[MAX_RANK];
    int nd = kiln_model_input_ndim(m, i);
    if (nd < 0 || nd > MAX_RANK || kiln_model_input_shape(m, b, i, shape)) continue;
    if (nd == arrays[i].ndim && !memcmp(shape, arrays[i].shape, sizeof shape[0] * (size_t)nd))
      continue;
    char from[256], to[256];
    n += (size_t)snprintf(buf + n, cap - n, "%s input '%s' %s -> %s", padded ? "," : " (padded:",
                          kiln_model_input_name(m, i),
                          shape_str(arrays[i].ndim, arrays[i].shape, from, sizeof from),
                          shape_str(nd, shape, to, sizeof to));
    padded = 1;
  }
  if (padded && n < cap) snprintf(buf + n, cap - n, ")");
}

/* Makes dir unless it exists. */
static int ensure_dir(const char *dir) {
  struct stat st;
  if (stat(dir, &st) == 0) {
    if (S_ISDIR(st.st_mode)) return 0;
    fprintf(stderr, "kiln run: --output-dir %s: not a directory\n", dir);
    return 1;
  }
  if (mkdir(dir, 0777) != 0) {
    fprintf(stderr, "kiln run: --output-dir %s: cannot create: %s\n", dir, strerror(errno));
    return 1;
  }
  return 0;
}

/* The value of element e of a (a float, int, uint or bool array) as a double. */
static double element(const npy_array *a, size_t e) {
  const unsigned char *p = (const unsigned char *)a->data + e * kiln_dtype_bytes(a->dtype);
  switch (a->dtype.code) {
  case KILN_TYPE_FLOAT:
    if (a->dtype.bits == 32) {
      float f;
      memcpy(&f, p, 4);
      return f;
    } else {
      double d;
      memcpy(&d, p, 8);
      return d;
    }
  case KILN_TYPE_INT: {
    int64_t v = 0;
    if (a->dtype.bits == 8) v = *(const int8_t *)p;
    else if (a->dtype.bits == 16) { int16_t x; memcpy(&x, p, 2); v = x; }
    else if (a->dtype.bits == 32) { int32_t x; memcpy(&x, p, 4); v = x; }
    else memcpy(&v, p, 8);
    return (double)v;
  }
  default: { /* uint and bool */
    uint64_t v = 0;
    memcpy(&v, p, kiln_dtype_bytes(a->dtype));
    return (double)v;
  }
  }
}

/* --expect NAME=FILE.npy: compares the output NAME as written (read back from the output
 * directory) with the reference file. Floats (float32/float64) within the tolerance of the
 * usage text, everything else exactly. Prints one line; returns 0 or 1. */
static int check_expect(const run_options *o, const kiln_model *m, const char *spec) {
  const char *eq = strchr(spec, '=');
  char name[512], outname[300], path[4096], err[1024];
  snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
  int i = 0, n = kiln_model_num_outputs(m);
  while (i < n && strcmp(kiln_model_output_name(m, i), name) != 0) i++;
  if (i == n) {
    fprintf(stderr, "kiln run: --expect %s: the model has no output '%s'; its outputs are:", spec,
            name);
    for (int k = 0; k < n; k++) fprintf(stderr, " '%s'", kiln_model_output_name(m, k));
    fputc('\n', stderr);
    return 1;
  }
  output_file_name(m, i, outname, sizeof outname);
  snprintf(path, sizeof path, "%s/%s", o->outdir, outname);
  npy_array got, want;
  memset(&got, 0, sizeof got);
  memset(&want, 0, sizeof want);
  int rc = 1;
  if (npy_read(eq + 1, &want, err, sizeof err) || npy_read(path, &got, err, sizeof err)) {
    fprintf(stderr, "kiln run: --expect %s: %s\n", spec, err);
    goto done;
  }
  char d1[32], d2[32], s1[256], s2[256];
  if (!kiln_dtype_eq(got.dtype, want.dtype) || got.ndim != want.ndim ||
      memcmp(got.shape, want.shape, sizeof(int64_t) * (size_t)got.ndim) != 0) {
    fprintf(stderr, "kiln run: output '%s' is %s %s, the reference %s is %s %s\n", name,
            kiln_dtype_str(got.dtype, d1, sizeof d1), shape_str(got.ndim, got.shape, s1, sizeof s1),
            eq + 1, kiln_dtype_str(want.dtype, d2, sizeof d2),
            shape_str(want.ndim, want.shape, s2, sizeof s2));
    goto done;
  }
  int is_float = want.dtype.code == KILN_TYPE_FLOAT;
  if ((is_float && want.dtype.bits != 32 && want.dtype.bits != 64) ||
      want.dtype.code == KILN_TYPE_BFLOAT) {
    fprintf(stderr, "kiln run: --expect %s: comparing %s outputs is not supported\n", spec,
            kiln_dtype_str(want.dtype, d1, sizeof d1));
    goto done;
  }
  size_t count = want.nbytes / (kiln_dtype_bytes(want.dtype) ? kiln_dtype_bytes(want.dtype) : 1);
  double scale = 0, worst = 0;
  for (size_t e = 0; e < count; e++) scale = fmax(scale, fabs(element(&want, e)));
  size_t bad = count;
  for (size_t e = 0; e < count; e++) {
    double g = element(&got, e), w = element(&want, e), diff = fabs(g - w);
    double tol = is_float ? o->atol_rel * scale + o->rtol * fabs(w) : 0;
    if (!(diff <= tol) && bad == count) bad = e; /* NaN differences fail too */
    if (diff > worst || diff != diff) worst = diff;
  }
  if (bad < count) {
    fprintf(stderr, "kiln run: output '%s' does not match %s: element %zu is %.9g, the reference "
            "%.9g (max |diff| %.3g, max |ref| %.3g, rtol %g, atol-rel %g)\n", name, eq + 1, bad,
            element(&got, bad), element(&want, bad), worst, scale, o->rtol, o->atol_rel);
    goto done;
  }
  printf("%s matches %s (%zu values, max |diff| %.3g, max |ref| %.3g)\n", name, eq + 1, count,
         worst, scale);
  rc = 0;
done:
  npy_array_free(&got);
  npy_array_free(&want);
  return rc;
}

int kiln_cmd_run(int argc, char **argv) {
  run_options o;
  int st = parse_run_options(argc, argv, &o);
  if (st) return st == 3 ? 0 : st;
  kiln_model *m;
  kiln_session *s;
  if (open_session("run", o.model, o.threads, &m, &s)) return 1;
  npy_array arrays[MAX_INPUTS];
  memset(arrays, 0, sizeof arrays);
  int rc = 1;
  if (apply_pads("run", o.model, s, o.npads, o.pads) || bind_inputs(&o, s, arrays)) goto done;
  if (kiln_session_run(s)) {
    fail_rt("run", o.model, kiln_last_error());
    goto done;
  }
  if (ensure_dir(o.outdir)) goto done;
  char note[1024];
  describe_bucket(s, arrays, note, sizeof note);
  for (int i = 0; i < kiln_model_num_outputs(m); i++)
    if (write_output(&o, s, i, note)) goto done;
  for (int k = 0; k < o.nexpects; k++)
    if (check_expect(&o, m, o.expects[k])) goto done;
  rc = 0;
done:
  for (int i = 0; i < MAX_INPUTS; i++) npy_array_free(&arrays[i]);
  kiln_session_free(s);
  kiln_model_free(m);
  return rc;
}

/* ---- random inputs for bench and profile -------------------------------------------------- */

typedef struct timing_options {
  const char *model;
  const char *dims; /* --input-dims, NULL: the bucket's shapes */
  long bucket, threads, warmup, iters, seed;
  double min_time;
  int json;
} timing_options;

/* --input-dims syntax: lists separated by ':', each empty (a 0-d input) or integers >= 0
 * separated by single commas. */
static int dims_well_formed(const char *s) {
  int need_digit = 0; /* after a ',' */
  for (const char *p = s; *p; p++) {
    if (*p >= '0' && *p <= '9') need_digit = 0;
    else if (*p == ',' && p > s && p[-1] >= '0' && p[-1] <= '9') need_digit = 1;
    else if (*p == ':' && !need_digit) continue;
    else return 0;
  }
  return !need_digit;
}

/* Returns 0, 2 (usage error, reported) or 3 (--help printed). `bench` selects the options
 * only bench has (--warmup, --min-time). */
static int parse_timing_options(const char *cmd, const char *usage, int bench, int argc,
                                char **argv, timing_options *o) {
  memset(o, 0, sizeof *o);
  o->warmup = bench ? 2 : 1;
  o->iters = bench ? 20 : 10;
  o->min_time = bench ? 1.0 : 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage, stdout);
      return 3;
    }
    if (!strcmp(a, "--json")) {
      o->json = 1;
      continue;
    }
    int known = !strcmp(a, "--input-dims") || !strcmp(a, "--bucket") ||
                !strcmp(a, "--threads") || !strcmp(a, "--iters") || !strcmp(a, "--seed") ||
                (bench && (!strcmp(a, "--warmup") || !strcmp(a, "--min-time")));
    if (!known) {
      if (a[0] == '-' && a[1]) return usage_error(cmd, "unknown option '%s'", a);
      if (o->model) return usage_error(cmd, "more than one model given ('%s')", a);
      o->model = a;
      continue;
    }
    if (i + 1 >= argc) return usage_error(cmd, "%s needs a value", a);
    const char *v = argv[++i];
    if (!strcmp(a, "--input-dims")) {
      o->dims = v;
    } else if (!strcmp(a, "--bucket")) {
      if (parse_count(cmd, a, v, 0, 1 << 20, &o->bucket)) return 2;
    } else if (!strcmp(a, "--threads")) {
      if (parse_count(cmd, a, v, 1, 1024, &o->threads)) return 2;
    } else if (!strcmp(a, "--iters")) {
      if (parse_count(cmd, a, v, 1, 100000000, &o->iters)) return 2;
    } else if (!strcmp(a, "--warmup")) {
      if (parse_count(cmd, a, v, 0, 100000000, &o->warmup)) return 2;
    } else if (!strcmp(a, "--seed")) {
      if (parse_count(cmd, a, v, 0, 2147483647, &o->seed)) return 2;
    } else {
      char *end;
      o->min_time = strtod(v, &end);
      if (end == v || *end || !(o->min_time >= 0 && o->min_time <= 1e6))
        return usage_error(cmd, "--min-time takes a number of seconds >= 0, not '%s'", v);
    }
  }
  if (!o->model) return usage_error(cmd, "no model given%s", "");
  if (o->dims && !dims_well_formed(o->dims))
    return usage_error(cmd, "--input-dims takes D,D,...[:D,D,...] (one list of integers per "
                            "input), not '%s'",
                       o->dims);
  return 0;
}

/* Random inputs of the chosen shapes, bound to the session. */
typedef struct inputs {
  int n;
  void *data[MAX_INPUTS];
  int ndim[MAX_INPUTS];
  int64_t shape[MAX_INPUTS][MAX_RANK];
} inputs;

static void free_inputs(inputs *in) {
  for (int i = 0; i < in->n; i++) free(in->data[i]);
  in->n = 0;
}

/* float -> IEEE half, rounding to nearest even (inputs are in [-1, 1): no overflow). */
static uint16_t float_to_half(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  uint16_t sign = (uint16_t)((b >> 16) & 0x8000);
  int e = (int)((b >> 23) & 255) - 127 + 15;
  uint32_t mant = (b & 0x7fffff) | 0x800000; /* with the implicit bit */
  if (e < -10) return sign;                   /* below half the smallest subnormal */
  /* the half's significand is mant >> shift: 13 bits dropped for a normal half, more for a
   * subnormal one (e <= 0) */
  uint32_t shift = e > 0 ? 13 : (uint32_t)(14 - e);
  uint32_t h = mant >> shift, rest = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
  if (rest > half || (rest == half && (h & 1))) h++; /* a carry moves into the exponent */
  if (e > 0) h = ((uint32_t)e << 10) + (h - 0x400);  /* drop the implicit bit, add exponent */
  return (uint16_t)(sign | h);
}

/* Fills n elements of type t: floats uniform in [-1, 1), integers in [0, 4) (valid as small
 * indices), bools 0/1. */
static void fill_random(kiln_dtype t, void *data, size_t n, uint64_t *state) {
  unsigned char *p = data;
  size_t esize = kiln_dtype_bytes(t);
  for (size_t e = 0; e < n; e++, p += esize) {
    uint64_t r = ir_splitmix64(state);
    double u = (double)(r >> 11) / 9007199254740992.0 * 2 - 1;
    if (t.code == KILN_TYPE_FLOAT && t.bits == 32) {
      float f = (float)u;
      memcpy(p, &f, 4);
    } else if (t.code == KILN_TYPE_FLOAT && t.bits == 64) {
      memcpy(p, &u, 8);
    } else if (t.code == KILN_TYPE_FLOAT && t.bits == 16) {
      uint16_t h = float_to_half((float)u);
      memcpy(p, &h, 2);
    } else if (t.code == KILN_TYPE_BFLOAT) {
      float f = (float)u;
      uint32_t b;
      memcpy(&b, &f, 4);
      uint16_t h = (uint16_t)(b >> 16);
      memcpy(p, &h, 2);
    } else if (t.code == KILN_TYPE_BOOL) {
      *p = (unsigned char)(r >> 63);
    } else {
      uint64_t v = r >> 62; /* 0..3, little-endian low bytes */
      memset(p, 0, esize);
      *p = (unsigned char)v;
    }
  }
}

/* Picks the shapes (--input-dims or bucket K's), makes the random inputs and binds them. */
static int make_inputs(const char *cmd, const timing_options *o, kiln_session *s, inputs *in) {
  kiln_model *m = kiln_session_model(s);
  int n = kiln_model_num_inputs(m), nb = kiln_model_num_buckets(m);
  memset(in, 0, sizeof *in);
  if (n > MAX_INPUTS) return fail_rt(cmd, o->model, "the model has more than 64 inputs");
  if (o->bucket >= nb) {
    fprintf(stderr, "kiln %s: %s has %d bucket%s (0 to %d); there is no bucket %ld\n", cmd,
            o->model, nb, nb == 1 ? "" : "s", nb - 1, o->bucket);
    return 1;
  }
  const char *p = o->dims;
  for (int i = 0; i < n; i++) {
    if (p) {
      if (i > 0 && *p++ != ':') {
        fprintf(stderr, "kiln %s: --input-dims has %d list%s, %s has %d inputs\n", cmd, i,
                i == 1 ? "" : "s", o->model, n);
        return 1;
      }
      int nd = 0;
      while (*p && *p != ':') {
        if (nd == MAX_RANK) return fail_rt(cmd, NULL, "--input-dims: too many dimensions");
        char *end;
        in->shape[i][nd++] = strtoll(p, &end, 10);
        p = end + (*end == ',');
      }
      in->ndim[i] = nd;
    } else {
      int nd = kiln_model_input_ndim(m, i);
      if (nd < 0 || nd > MAX_RANK || kiln_model_input_shape(m, (int)o->bucket, i, in->shape[i]))
        return fail_rt(cmd, o->model, kiln_last_error());
      in->ndim[i] = nd;
    }
  }
  if (p && *p) {
    int lists = 1;
    for (const char *q = o->dims; *q; q++) lists += *q == ':';
    fprintf(stderr, "kiln %s: --input-dims has %d lists, %s has %d input%s\n", cmd, lists,
            o->model, n, n == 1 ? "" : "s");
    return 1;
  }
  uint64_t state = (uint64_t)o->seed * 0x9e3779b97f4a7c15ull + 1;
  for (int i = 0; i < n; i++) {
    kiln_dtype t = kiln_model_input_dtype(m, i);
    size_t count = 1;
    for (int d = 0; d < in->ndim[i]; d++) {
      size_t dim = (size_t)in->shape[i][d];
      if (dim && count > ((size_t)1 << 40) / dim) {
        fprintf(stderr, "kiln %s: --input-dims: input '%s' is too large\n", cmd,
                kiln_model_input_name(m, i));
        return 1;
      }
      count *= (size_t)in->shape[i][d];
    }
    size_t bytes = (count * kiln_dtype_bytes(t) + 63) / 64 * 64;
    in->data[i] = aligned_alloc(64, bytes ? bytes : 64);
    if (!in->data[i]) return fail_rt(cmd, NULL, "out of memory for the inputs");
    in->n = i + 1;
    fill_random(t, in->data[i], count, &state);
    kiln_tensor tensor = {in->data[i], 1, 0, in->ndim[i], t, in->shape[i], NULL, 0};
    if (kiln_session_set_input(s, i, &tensor)) return fail_rt(cmd, o->model, kiln_last_error());
  }
  return 0;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs once; a failure is reported (exit status 1). */
static int run_once(const char *cmd, const char *path, kiln_session *s) {
  if (kiln_session_run(s)) return fail_rt(cmd, path, kiln_last_error());
  return 0;
}

/* ---- kiln bench -------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of sorted values, interpolating between neighbours. */
static double percentile(const double *sorted, size_t n, double p) {
  double rank = p / 100 * (double)(n - 1);
  size_t lo = (size_t)rank;
  if (lo + 1 >= n) return sorted[n - 1];
  double frac = rank - (double)lo;
  return sorted[lo] + (sorted[lo + 1] - sorted[lo]) * frac;
}

/* Adds the inputs' shapes as a JSON array of arrays. */
static cJSON *shapes_json(const inputs *in) {
  cJSON *all = cJSON_CreateArray();
  for (int i = 0; all && i < in->n; i++) {
    cJSON *one = cJSON_CreateArray();
    for (int d = 0; one && d < in->ndim[i]; d++)
      cJSON_AddItemToArray(one, cJSON_CreateNumber((double)in->shape[i][d]));
    cJSON_AddItemToArray(all, one);
  }
  return all;
}

int kiln_cmd_bench(int argc, char **argv) {
  timing_options o;
  int st = parse_timing_options("bench", bench_usage, 1, argc, argv, &o);
  if (st) return st == 3 ? 0 : st;
  kiln_model *m;
  kiln_session *s;
  if (open_session("bench", o.model, (int)o.threads, &m, &s)) return 1;
  inputs in;
  int rc = 1;
  size_t n = 0, cap = 0;
  double *times = NULL;
  cJSON *j = NULL;
  if (make_inputs("bench", &o, s, &in)) goto done;
  for (long w = 0; w < o.warmup; w++)
    if (run_once("bench", o.model, s)) goto done;
  /* at least `iters` runs and at least `min_time` seconds */
  double start = now_seconds(), total = 0;
  while (n < (size_t)o.iters || now_seconds() - start < o.min_time) {
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 256;
      double *bigger = realloc(times, ncap * sizeof *times);
      if (!bigger) {
        fail_rt("bench", NULL, "out of memory");
        goto done;
      }
      times = bigger;
      cap = ncap;
    }
    double t0 = now_seconds();
    if (run_once("bench", o.model, s)) goto done;
    times[n] = (now_seconds() - t0) * 1e6;
    total += times[n++];
  }
  double mean = total / (double)n, var = 0;
  for (size_t i = 0; i < n; i++) var += (times[i] - mean) * (times[i] - mean);
  double stddev = n > 1 ? sqrt(var / (double)(n - 1)) : 0;
  qsort(times, n, sizeof *times, cmp_double);
  double p10 = percentile(times, n, 10), p50 = percentile(times, n, 50);
  double p90 = percentile(times, n, 90), p99 = percentile(times, n, 99);
  int bucket = kiln_session_last_bucket(s), threads = kiln_rt_num_threads();
  if (o.json) {
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", o.model);
    cJSON_AddNumberToObject(j, "bucket", bucket);
    cJSON_AddItemToObject(j, "input_shapes", shapes_json(&in));
    cJSON_AddNumberToObject(j, "threads", threads);
    cJSON_AddNumberToObject(j, "warmup", (double)o.warmup);
    cJSON_AddNumberToObject(j, "iters", (double)n);
    cJSON_AddNumberToObject(j, "seed", (double)o.seed);
    cJSON_AddNumberToObject(j, "mean_us", mean);
    cJSON_AddNumberToObject(j, "min_us", times[0]);
    cJSON_AddNumberToObject(j, "p10_us", p10);
    cJSON_AddNumberToObject(j, "p50_us", p50);
    cJSON_AddNumberToObject(j, "p90_us", p90);
    cJSON_AddNumberToObject(j, "p99_us", p99);
    cJSON_AddNumberToObject(j, "max_us", times[n - 1]);
    cJSON_AddNumberToObject(j, "stddev_us", stddev);
    char *text = cJSON_Print(j);
    if (!text) {
      fail_rt("bench", NULL, "out of memory");
      goto done;
    }
    printf("%s\n", text);
    cJSON_free(text);
  } else {
    printf("%s: bucket %d, inputs", o.model, bucket);
    for (int i = 0; i < in.n; i++) {
      char buf[256];
      printf(" %s %s", kiln_model_input_name(m, i),
             shape_str(in.ndim[i], in.shape[i], buf, sizeof buf));
    }
    printf(", %zu runs after %ld warm-up\n", n, o.warmup);
    printf("Microseconds per iter: %.3f\n", mean);
    printf("min %.3f  p10 %.3f  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  std %.3f  (us; "
           "threads %d, bucket %d)\n",
           times[0], p10, p50, p90, p99, times[n - 1], stddev, threads, bucket);
  }
  rc = 0;
done:
  cJSON_Delete(j);
  free(times);
  free_inputs(&in);
  kiln_session_free(s);
  kiln_model_free(m);
  return rc;
}

/* ---- kiln profile ------------------------------------------------------------------------ */

int kiln_cmd_profile(int argc, char **argv) {
  timing_options o;
  int st = parse_timing_options("profile", profile_usage, 0, argc, argv, &o);
  if (st) return st == 3 ? 0 : st;
  kiln_model *m;
  kiln_session *s;
  if (open_session("profile", o.model, (int)o.threads, &m, &s)) return 1;
  inputs in;
  int rc = 1;
  char *report = NULL;
  if (make_inputs("profile", &o, s, &in)) goto done;
  for (long w = 0; w < o.warmup; w++)
    if (run_once("profile", o.model, s)) goto done;
  if (kiln_session_set_profiling(s, 1)) {
    fail_rt("profile", o.model, kiln_last_error());
    goto done;
  }
  for (long i = 0; i < o.iters; i++)
    if (run_once("profile", o.model, s)) goto done;
  if (kiln_session_profile_report(s, o.json, &report)) {
    fail_rt("profile", o.model, kiln_last_error());
    goto done;
  }
  if (!o.json)
    printf("%s: threads %d, %ld warm-up run%s before profiling\n", o.model,
           kiln_rt_num_threads(), o.warmup, o.warmup == 1 ? "" : "s");
  fputs(report, stdout);
  if (report[0] && report[strlen(report) - 1] != '\n') putchar('\n');
  rc = 0;
done:
  kiln_rt_free(report);
  free_inputs(&in);
  kiln_session_free(s);
  kiln_model_free(m);
  return rc;
}

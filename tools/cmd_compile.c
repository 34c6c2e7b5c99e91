/* cmd_compile.c: `kiln compile`: a model (ONNX or Relay text) and its buckets become a .kiln
 * artifact through kiln_compile (relay/build.c):
 *   kiln compile MODEL.(onnx|relay) -o OUT.kiln [--target T] [--bucket SPEC ...] [--db DB]
 *                [--paddable INPUT:AXIS ...] [--opt-level N] [--quiet]
 * It prints a summary (buckets, kernel calls, kernels, sizes, time per phase) and the
 * compile's warnings on stderr. Exit status 0 / 1 (the model or the compile failed) / 2 (the
 * command line is malformed). main() in kiln.c calls kiln_cmd_compile with the arguments
 * after "compile". */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln.h"
#include "tools/tool.h"

static const char compile_usage[] =
    "usage: kiln compile MODEL.(onnx|relay) -o OUT.kiln [--target T] [--bucket SPEC ...]\n"
    "                    [--db TUNE.db] [--paddable INPUT:AXIS ...] [--opt-level N] [--quiet]\n"
    "  compile a model (ONNX, or Relay text: by the extension .onnx / .relay) for one or\n"
    "  more buckets of input shapes into a .kiln artifact that kiln run/bench/profile and\n"
    "  the runtime library load.\n"
    "  --bucket SPEC   one bucket: NAME=DxDxD[,NAME=DxD...][@WEIGHT], e.g.\n"
    "                  --bucket input=1x3x224x224 --bucket input=8x3x224x224@2; inputs not\n"
    "                  named keep the model's (static) shape; without --bucket one bucket of\n"
    "                  the model's static shapes; the weight (default 1) is for the tuner\n"
    "  --target T      target string (default: this machine), e.g. \"llvm -mcpu=znver4\"\n"
    "  --db TUNE.db    take each kernel's schedule from the tuning database's best record\n"
    "                  (default: the default schedule rules)\n"
    "  --paddable INPUT:AXIS  declare an axis the runtime may pad up to a larger bucket\n"
    "                  (e.g. input:0, the batch); recorded in the artifact\n"
    "  --opt-level N   LLVM optimization level 1-3 (default 3)\n"
    "  --quiet         print nothing but warnings and errors\n"
    "exit status: 0 success, 1 failure (unreadable or bad model, compile error, cannot\n"
    "write OUT), 2 usage error (unknown option, missing argument, malformed value)\n";

enum { MAX_BUCKETS = KILN_TOOL_MAX_BUCKETS, MAX_PADDABLE = 64 };

typedef struct compile_options {
  const char *model, *out, *target, *db;
  int opt_level, quiet;
  int nbuckets;
  kiln_tool_bucket *buckets; /* MAX_BUCKETS of them, malloc'ed */
  int npaddable;
  kiln_pad_axis paddable[MAX_PADDABLE];
} compile_options;

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "kiln compile: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(kiln compile --help for the usage)\n");
  return 2;
}

/* INPUT:AXIS (the input's name may itself contain ':'; the last one separates the axis). */
static int parse_pad_axis(char *s, kiln_pad_axis *out) {
  char *colon = strrchr(s, ':'), *end = NULL;
  long axis = colon ? strtol(colon + 1, &end, 10) : -1;
  if (!colon || colon == s || end == colon + 1 || *end || axis < 0 || axis > 64)
    return usage_error("--paddable takes INPUT:AXIS (an input name and an axis >= 0), not "
                       "'%s'",
                       s);
  *colon = 0;
  out->input = s;
  out->axis = (int)axis;
  return 0;
}

/* Returns 0, 2 (usage error, reported) or 3 (--help printed). */
static int parse_compile_options(int argc, char **argv, compile_options *o) {
  o->opt_level = 3;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    int has_value = i + 1 < argc;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(compile_usage, stdout);
      return 3;
    }
    int takes_value = !strcmp(a, "-o") || !strcmp(a, "--target") || !strcmp(a, "--db") ||
                      !strcmp(a, "--bucket") || !strcmp(a, "--paddable") ||
                      !strcmp(a, "--opt-level");
    if (takes_value && !has_value) return usage_error("%s needs a value", a);
    if (strcmp(a, "-o") == 0) {
      o->out = argv[++i];
    } else if (strcmp(a, "--target") == 0) {
      o->target = argv[++i];
    } else if (strcmp(a, "--db") == 0) {
      o->db = argv[++i];
    } else if (strcmp(a, "--bucket") == 0) {
      if (o->nbuckets == MAX_BUCKETS) return usage_error("more than %s buckets", "256");
      int st = kiln_tool_parse_bucket("compile", argv[++i], &o->buckets[o->nbuckets]);
      if (st) return st;
      o->nbuckets++;
    } else if (strcmp(a, "--paddable") == 0) {
      if (o->npaddable == MAX_PADDABLE) return usage_error("too many %s axes", a);
      if (parse_pad_axis(argv[++i], &o->paddable[o->npaddable])) return 2;
      o->npaddable++;
    } else if (strcmp(a, "--opt-level") == 0) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || end == argv[i] || v < 1 || v > 3)
        return usage_error("--opt-level takes 1, 2 or 3, not '%s'", argv[i]);
      o->opt_level = (int)v;
    } else if (strcmp(a, "--quiet") == 0) {
      o->quiet = 1;
    } else if (a[0] == '-' && a[1]) {
      return usage_error("unknown option '%s'", a);
    } else if (!o->model) {
      o->model = a;
    } else {
      return usage_error("more than one model given ('%s')", a);
    }
  }
  if (!o->model) return usage_error("no model given%s", "");
  if (!o->out) return usage_error("no output file given (-o OUT.kiln)%s", "");
  return 0;
}

/* Sizes for people: bytes below 1 KiB, else KiB / MiB / GiB with one decimal. */
static const char *human_bytes(uint64_t n, char *buf, size_t cap) {
  if (n < 1024) snprintf(buf, cap, "%" PRIu64 " B", n);
  else if (n < 1024 * 1024) snprintf(buf, cap, "%.1f KiB", n / 1024.0);
  else if (n < 1024ull * 1024 * 1024) snprintf(buf, cap, "%.1f MiB", n / (1024.0 * 1024));
  else snprintf(buf, cap, "%.1f GiB", n / (1024.0 * 1024 * 1024));
  return buf;
}

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* Prints "NAME=1x3x224x224, ..." for bucket b of a loaded model. */
static void print_bucket_shapes(const kiln_model *m, int b) {
  for (int i = 0; i < kiln_model_num_inputs(m); i++) {
    int64_t shape[64];
    int nd = kiln_model_input_ndim(m, i);
    printf("%s%s=", i ? "," : "", kiln_model_input_name(m, i));
    if (nd < 0 || nd > 64 || kiln_model_input_shape(m, b, i, shape)) {
      printf("?");
      continue;
    }
    for (int d = 0; d < nd; d++) printf("%s%" PRId64, d ? "x" : "", shape[d]);
    if (nd == 0) printf("()");
  }
}

/* The summary after a successful compile. */
static void print_summary(const compile_options *o, kiln_compiled *c, const kiln_model *m,
                          const kiln_compile_stats *s) {
  char b1[32], b2[32], b3[32];
  const void *bytes;
  size_t size = 0;
  kiln_compiled_bytes(c, &bytes, &size);
  printf("compiled %s -> %s (%s)\n", o->model, o->out, human_bytes(size, b1, sizeof b1));
  printf("  buckets       %d\n", s->nbuckets);
  for (int b = 0; m && b < kiln_model_num_buckets(m); b++) {
    printf("    %-3d %d kernel calls  ", b, kiln_model_bucket_num_calls(m, b));
    print_bucket_shapes(m, b);
    uint64_t planned = 0, naive = 0;
    if (!kiln_model_bucket_memory(m, b, &planned, &naive))
      printf("  activations %s (naive %s)", human_bytes(planned, b1, sizeof b1),
             human_bytes(naive, b2, sizeof b2));
    printf("\n");
  }
  printf("  kernel calls  %d over all buckets\n", s->ncalls);
  printf("  kernels       %d distinct, %d scheduled from the tuning database%s\n", s->nkernels,
         s->nfrom_db, o->db ? "" : " (none given)");
  printf("  params        %s   code %s   artifact %s\n",
         human_bytes(s->params_bytes, b1, sizeof b1), human_bytes(s->code_bytes, b2, sizeof b2),
         human_bytes(size, b3, sizeof b3));
  printf("  time          %.2f s: passes %.2f s, lowering %.2f s, scheduling %.2f s, code "
         "generation %.2f s\n",
         s->seconds_total, s->seconds_passes, s->seconds_lower, s->seconds_schedule,
         s->seconds_codegen);
  if (s->nwarnings) printf("  warnings      %d (on stderr)\n", s->nwarnings);
}

static int run_compile(kiln_context *ctx, const compile_options *o) {
  int rc = 1;
  kiln_relay_module *mod = NULL;
  kiln_compiled *c = NULL;
  kiln_model *m = NULL;
  kiln_bucket buckets[MAX_BUCKETS];
  for (int i = 0; i < o->nbuckets; i++)
    buckets[i] = (kiln_bucket){o->buckets[i].ninputs, o->buckets[i].inputs, o->buckets[i].weight};

  if (kiln_tool_read_model(ctx, o->model, &mod)) {
    /* "FILE:LINE:COL: message" when the message has a position, else "FILE: message" */
    const char *msg = kiln_context_errmsg(ctx);
    fprintf(stderr, "kiln compile: %s:%s%s\n", o->model,
            msg[0] >= '0' && msg[0] <= '9' ? "" : " ", msg);
    goto done;
  }
  kiln_compile_options co = {0};
  co.target = o->target;
  co.db_path = o->db;
  co.opt_level = o->opt_level;
  co.model_name = base_name(o->model);
  co.npaddable = o->npaddable;
  co.paddable = o->paddable;
  if (kiln_compile(mod, o->nbuckets, buckets, &co, &c)) {
    fprintf(stderr, "kiln compile: %s: %s\n", o->model, kiln_context_errmsg(ctx));
    goto done;
  }
  for (int i = 0; kiln_compiled_warning(c, i); i++)
    fprintf(stderr, "kiln compile: warning: %s\n", kiln_compiled_warning(c, i));
  if (kiln_compiled_save(c, o->out)) {
    const char *msg = kiln_last_error();
    fprintf(stderr, "kiln compile: %s%s%s\n", strstr(msg, o->out) ? "" : o->out,
            strstr(msg, o->out) ? "" : ": cannot write: ", msg);
    goto done;
  }
  if (!o->quiet) {
    kiln_compile_stats s;
    if (kiln_compiled_stats(c, &s)) {
      fprintf(stderr, "kiln compile: %s: %s\n", o->out, kiln_last_error());
      goto done;
    }
    /* load what was written, as the runtime will (a check and the source of the shapes) */
    if (kiln_compiled_load(c, &m)) {
      fprintf(stderr, "kiln compile: %s: the artifact does not load: %s\n", o->out,
              kiln_last_error());
      goto done;
    }
    print_summary(o, c, m, &s);
  }
  rc = 0;
done:
  kiln_model_free(m);
  kiln_compiled_free(c);
  kiln_relay_module_free(mod);
  return rc;
}

int kiln_cmd_compile(int argc, char **argv) {
  compile_options o;
  memset(&o, 0, sizeof o);
  o.buckets = calloc(MAX_BUCKETS, sizeof *o.buckets);
  if (!o.buckets) {
    fprintf(stderr, "kiln compile: out of memory\n");
    return 1;
  }
  int st = parse_compile_options(argc, argv, &o);
  int rc = st == 3 ? 0 : st;
  kiln_context *ctx = NULL;
  if (!st && kiln_context_new(&ctx)) {
    fprintf(stderr, "kiln compile: cannot create a context\n");
    rc = 1;
  } else if (!st) {
    rc = run_compile(ctx, &o);
  }
  kiln_context_free(ctx);
  free(o.buckets);
  return rc;
}

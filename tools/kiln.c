/* kiln.c: the `kiln` command line: main() dispatches to the subcommands (compile, run, bench,
 * profile, inspect for compiled models, in cmd_*.c; asm, import, lower, db; and, here, `kiln
 * tir`: parse a TIR program, verify it, simplify it, and run the original and the simplified
 * program with the reference interpreter on the same deterministic inputs, showing that the
 * simplifier kept the meaning; and `kiln relay`: parse a Relay module, run graph passes (the
 * default pipeline or a list) and print the result). Every subcommand exits with status 0 on
 * success, 1 on a failure (bad input file, compile or run error) and 2 on a usage error; none
 * crashes on bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/arith.h"
#include "ir/text.h"
#include "ir/verify.h"
#include "kiln/kiln.h"
#include "relay/pass.h"
#include "relay/text.h"
#include "target/codegen.h"

/* The subcommands in their own files and the shared helpers. */
#include "tools/tool.h"

static const char usage[] =
    "usage: kiln <command> [options]      (kiln <command> --help for a command's details)\n"
    "\n"
    "compiled models:\n"
    "  compile MODEL.(onnx|relay) -o OUT.kiln [--target T] [--bucket SPEC ...] [--db TUNE.db]\n"
    "          [--paddable INPUT:AXIS ...] [--opt-level N] [--quiet]\n"
    "        compile a model for buckets of input shapes (SPEC: NAME=DxDxD[,NAME=DxD...]\n"
    "        [@WEIGHT], one --bucket per bucket) into one .kiln artifact\n"
    "  run OUT.kiln --input NAME=FILE.npy ... [--output-dir D] [--pad INPUT:AXIS ...]\n"
    "          [--threads N]\n"
    "        run it on .npy inputs and write every output as D/NAME.npy\n"
    "  bench OUT.kiln [--input-dims D,D[:D,D...]] [--bucket K] [--threads N] [--warmup W]\n"
    "          [--iters I] [--min-time S] [--seed K] [--json]\n"
    "        time it on random inputs: \"Microseconds per iter\" and percentiles\n"
    "  profile OUT.kiln [--input-dims ...] [--bucket K] [--threads N] [--iters I] [--json]\n"
    "        time every kernel call and print the per-kernel table\n"
    "  inspect OUT.kiln [--json]\n"
    "        show what an artifact holds: versions, target, buckets, kernels, sizes\n"
    "\n"
    "compiler stages:\n"
    "  tir FILE [--func NAME] [--set NAME=VALUE ...] [--no-run] [--no-jit] [--quiet]\n"
    "        parse, verify and simplify a TIR program, then interpret every function (or\n"
    "        NAME) on deterministic inputs, before and after simplification, and run the\n"
    "        code the LLVM JIT generates for this machine on the same inputs; scalar\n"
    "        parameters take their values from --set\n"
    "  relay FILE [--passes P1,P2,...] [--bind NAME=VALUE ...] [--opt-level N]\n"
    "             [--dump] [--time] [--no-verify] [--elide]\n"
    "        parse a Relay module, run the passes (default: the standard pipeline;\n"
    "        --bind adds BindShapes after InferType) and print the result; --dump\n"
    "        prints the module after every pass that changed it, --time the time of\n"
    "        each pass, --elide shortens large constants; --passes list lists them\n"
    "  asm FILE.tir [--target T] [--func NAME] [--ir] [--no-opt | --opt-level N] [-o OUT]\n"
    "        print the assembly (or with --ir the LLVM IR) generated for a TIR program\n"
    "  import MODEL.onnx [-o OUT.relay]\n"
    "        import an ONNX model and print (or write) it as a Relay module\n"
    "  lower FILE.relay [--bind NAME=VALUE ...] [--target T] [--func NAME]\n"
    "             [--schedule default|none] [--replay TRACE.json] [--trace-out DIR]\n"
    "             [--no-pipeline] [-o OUT]\n"
    "        fuse a Relay module, lower each fused group to TIR, schedule it (default\n"
    "        rules for the target, or a trace) and print it after the TIR pipeline\n"
    "  tune MODEL.(onnx|relay) --db DB [--bucket SPEC ...] [--target T] [--trials N]\n"
    "             [--time-budget S] [--seed K] [--per-round N] [--quiet] [--json]\n"
    "        tune every kernel of a model for this machine; measurements go into DB,\n"
    "        which `kiln compile --db DB` reads\n"
    "  db list|best|export|import|merge|prune DB [...]\n"
    "        look after a tuning database (kiln db --help for the details)\n"
    "  version        print the kiln version\n"
    "  help           print this text\n"
    "\n"
    "exit status: 0 success; 1 failure (an unreadable or bad model, artifact or input file,\n"
    "a compile or run error: the message names the file and the problem); 2 usage error\n"
    "(unknown command or option, missing argument, malformed value)\n";

/* Values given with --set NAME=VALUE for scalar parameters. */
typedef struct setting {
  const char *name;
  long long value;
} setting;

typedef struct options {
  const char *file;
  const char *func;
  setting sets[32];
  int nsets;
  int run;
  int jit;
  int quiet;
} options;

static int fail(const char *what, kiln_context *ctx) {
  fprintf(stderr, "kiln: %s: %s\n", what, ctx ? kiln_context_errmsg(ctx) : kiln_last_error());
  return 1;
}

/* float16 / bfloat16 bits to float, for display. */
static double half_to_double(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? m / 1024.0 / 16384.0 : e == 31 ? (m ? 0.0 / 0.0 : 1.0 / 0.0)
                                                     : (1 + m / 1024.0) * ((double)(1 << e) / 32768.0);
  return (h & 0x8000) ? -v : v;
}

static double element(kiln_dtype t, const unsigned char *p) {
  switch (t.code) {
  case KILN_TYPE_FLOAT:
    if (t.bits == 32) return *(const float *)p;
    if (t.bits == 64) return *(const double *)p;
    return half_to_double(*(const uint16_t *)p);
  case KILN_TYPE_BFLOAT: {
    uint32_t bits = (uint32_t) * (const uint16_t *)p << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
  }
  case KILN_TYPE_INT:
    if (t.bits == 8) return *(const int8_t *)p;
    if (t.bits == 16) return *(const int16_t *)p;
    if (t.bits == 32) return *(const int32_t *)p;
    return (double)*(const int64_t *)p;
  case KILN_TYPE_UINT:
    if (t.bits == 8) return *(const uint8_t *)p;
    if (t.bits == 16) return *(const uint16_t *)p;
    if (t.bits == 32) return *(const uint32_t *)p;
    return (double)*(const uint64_t *)p;
  case KILN_TYPE_BOOL: return *p != 0;
  }
  return 0;
}

/* Writes v into one element of type t (inputs are small integers or eighths: exact in
 * every type; float16/bfloat16 get the bits of the nearest value by truncation). */
static void set_element(kiln_dtype t, unsigned char *p, double v) {
  switch (t.code) {
  case KILN_TYPE_FLOAT:
    if (t.bits == 32) *(float *)p = (float)v;
    else if (t.bits == 64) *(double *)p = v;
    else {
      float f = (float)v;
      uint32_t b;
      memcpy(&b, &f, sizeof b);
      int e = (int)((b >> 23) & 255) - 127 + 15;
      uint16_t h = (uint16_t)((b >> 16) & 0x8000);
      if (f != 0 && e > 0 && e < 31) h |= (uint16_t)(e << 10 | ((b >> 13) & 1023));
      *(uint16_t *)p = h;
    }
    break;
  case KILN_TYPE_BFLOAT: {
    float f = (float)v;
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    *(uint16_t *)p = (uint16_t)(b >> 16);
    break;
  }
  case KILN_TYPE_INT:
  case KILN_TYPE_UINT: {
    long long x = (long long)v;
    memcpy(p, &x, t.bits / 8); /* little-endian: the low bytes */
    break;
  }
  case KILN_TYPE_BOOL: *p = v != 0; break;
  }
}

static long long setting_value(const options *o, const char *name, int *found) {
  for (int i = 0; i < o->nsets; i++)
    if (strcmp(o->sets[i].name, name) == 0) {
      *found = 1;
      return o->sets[i].value;
    }
  *found = 0;
  return 0;
}

/* The memory of one run: one block per parameter. */
typedef struct run_args {
  int n;
  void *data[64];
  size_t bytes[64];
  long long count[64];
  int ndim[64];
  int64_t shape[64][8];
  int64_t strides[64][8];
  bool strided[64];
} run_args;

static void free_args(run_args *r) {
  for (int i = 0; i < r->n; i++) free(r->data[i]);
  r->n = 0;
}

/* Evaluates a buffer dimension: a constant, or an expression of scalar parameters whose
 * values come from --set (substituted, then simplified to a constant). */
static int eval_dim(kiln_context *ctx, ir_arena *a, const ir_func *f, const options *o,
                    ir_expr *e, long long *out) {
  ir_var *vars[64];
  ir_expr *vals[64];
  int nv = 0;
  for (int i = 0; i < f->nparams && nv < 64; i++) {
    ir_var *v = ir_as_var(f->params[i]);
    int found;
    long long x = v ? setting_value(o, v->name, &found) : 0;
    if (v && found) {
      vars[nv] = v;
      vals[nv++] = ir_int(a, v->h.dtype, x);
    }
  }
  ir_expr *s = ir_substitute(a, e, nv, vars, vals);
  ir_analyzer *an = s ? ir_analyzer_new(a) : NULL;
  ir_expr *c = an ? ir_simplify_expr(an, s) : NULL;
  ir_analyzer_free(an);
  ir_int_imm *imm = ir_as_int(c);
  if (!imm) {
    fprintf(stderr, "kiln: function '%s': a buffer dimension depends on a scalar parameter "
                    "without a value; pass --set NAME=VALUE (%s)\n",
            f->name, kiln_context_errmsg(ctx));
    return 1;
  }
  *out = imm->value;
  return 0;
}

/* The number of elements the memory of b spans: the product of its shape when dense, else
 * elem_offset + sum((shape[d] - 1) * stride[d]) + 1 with explicit strides. */
static int buffer_elements(kiln_context *ctx, ir_arena *a, const ir_func *f, const options *o,
                           const ir_buffer *b, long long *out, int64_t *shape, int64_t *strides) {
  const long long limit = 1LL << 31;
  long long count = 1, span = 0, offset = 0;
  for (int d = 0; d < b->ndim; d++) {
    long long dim, stride = 0;
    if (eval_dim(ctx, a, f, o, b->shape[d], &dim)) return 1;
    if (b->nstrides && eval_dim(ctx, a, f, o, b->strides[d], &stride)) return 1;
    if (dim < 0 || dim > limit || stride < 0 || stride > limit ||
        (dim > 0 && count > limit / dim)) {
      fprintf(stderr, "kiln: buffer '%s' has a bad or too large shape\n", b->name);
      return 1;
    }
    count *= dim;
    if (dim > 0) span += (dim - 1) * stride;
    if (d < 8) {
      shape[d] = dim;
      strides[d] = stride;
    }
  }
  if (b->elem_offset && eval_dim(ctx, a, f, o, b->elem_offset, &offset)) return 1;
  if (offset < 0 || offset > limit || span > limit) {
    fprintf(stderr, "kiln: buffer '%s' has a bad or too large offset\n", b->name);
    return 1;
  }
  if (b->nstrides) count = count ? offset + span + 1 : 0;
  else count += offset; /* dense row-major after the offset */
  *out = count;
  return 0;
}

/* Allocates and fills the arguments of f: buffer i holds ((j * 7 + i * 3) % 17 - 8) / 8 at
 * element j (small exact values of both signs); scalars come from --set. */
static int make_args(kiln_context *ctx, ir_arena *a, const ir_func *f, const options *o,
                     run_args *r) {
  r->n = 0;
  if (f->nparams > 64) {
    fprintf(stderr, "kiln: function '%s' has more than 64 parameters\n", f->name);
    return 1;
  }
  for (int i = 0; i < f->nparams; i++) {
    const ir_node *p = f->params[i];
    ir_buffer *b = ir_as_buffer(p);
    long long count = 1;
    kiln_dtype t = p->dtype;
    if (b && b->ndim > 8) {
      fprintf(stderr, "kiln: buffer '%s' has more than 8 dimensions\n", b->name);
      return 1;
    }
    if (b && buffer_elements(ctx, a, f, o, b, &count, r->shape[r->n], r->strides[r->n])) return 1;
    r->ndim[r->n] = b ? b->ndim : 0;
    r->strided[r->n] = b && b->nstrides;
    size_t esize = kiln_dtype_bytes(t);
    size_t bytes = (size_t)(count ? count : 1) * esize;
    unsigned char *mem = calloc(1, bytes);
    if (!mem) {
      fprintf(stderr, "kiln: out of memory\n");
      return 1;
    }
    r->data[r->n] = mem;
    r->bytes[r->n] = bytes;
    r->count[r->n] = b ? count : 1;
    r->n++;
    if (b) {
      for (long long j = 0; j < count; j++)
        set_element(t, mem + j * esize, ((j * 7 + i * 3) % 17 - 8) / 8.0);
    } else {
      int found;
      long long v = setting_value(o, ((ir_var *)p)->name, &found);
      if (!found) {
        fprintf(stderr, "kiln: scalar parameter '%s' of '%s' needs a value: --set %s=VALUE\n",
                ((ir_var *)p)->name, f->name, ((ir_var *)p)->name);
        return 1;
      }
      set_element(t, mem, (double)v);
    }
  }
  return 0;
}

static void print_buffer(const ir_node *p, const run_args *r, int i) {
  ir_buffer *b = ir_as_buffer(p);
  if (!b) return;
  size_t esize = kiln_dtype_bytes(p->dtype);
  double sum = 0;
  for (long long j = 0; j < r->count[i]; j++)
    sum += element(p->dtype, (unsigned char *)r->data[i] + j * esize);
  char dt[32];
  printf("  %-8s %-8s [", b->name, kiln_dtype_str(p->dtype, dt, sizeof dt));
  for (long long j = 0; j < r->count[i] && j < 8; j++)
    printf("%s%g", j ? ", " : "", element(p->dtype, (unsigned char *)r->data[i] + j * esize));
  printf("%s]  sum %g\n", r->count[i] > 8 ? ", ..." : "", sum);
}

/* Runs the JIT-compiled kernel of f on the memory of r (the kernel ABI's tensor descriptors). */
static int run_jit(kiln_context *ctx, tgt_jit *jit, const ir_func *f, run_args *r) {
  kiln_kernel_fn fn;
  if (tgt_jit_lookup(jit, f->name, &fn)) return fail("JIT lookup failed", ctx);
  kiln_tensor t[64];
  for (int i = 0; i < r->n; i++) {
    t[i] = (kiln_tensor){r->data[i], 1, 0, r->ndim[i], f->params[i]->dtype, r->shape[i],
                         r->strided[i] ? r->strides[i] : NULL, 0};
  }
  int32_t st = fn(t, r->n);
  if (st) {
    fprintf(stderr, "kiln: JIT-compiled '%s' failed: %s\n", f->name, kiln_last_error());
    return 1;
  }
  return 0;
}

/* The largest difference between two runs' buffers (relative for large values). */
static double max_difference(const ir_func *f, const run_args *x, const run_args *y) {
  double worst = 0;
  for (int i = 0; i < x->n; i++) {
    kiln_dtype t = f->params[i]->dtype;
    size_t esize = kiln_dtype_bytes(t);
    for (long long j = 0; j < x->count[i]; j++) {
      double a = element(t, (unsigned char *)x->data[i] + j * esize);
      double b = element(t, (unsigned char *)y->data[i] + j * esize);
      if (a == b || (a != a && b != b)) continue;
      double d = fabs(a - b) / (fabs(a) > 1 ? fabs(a) : 1);
      if (!(d <= worst)) worst = d; /* NaN against a number counts as infinitely far */
      if (d != d) worst = 1.0 / 0.0;
    }
  }
  return worst;
}

static int cmd_tir(const options *o) {
  kiln_context *ctx;
  if (kiln_context_new(&ctx)) return fail("cannot create a context", NULL);
  int rc = 1;
  kiln_tir_module *mod = NULL, *simple = NULL;
  char *text = NULL;
  run_args before = {0}, after = {0};
  tgt_jit *jit = NULL;

  if (kiln_tir_module_parse_file(ctx, o->file, &mod)) {
    fprintf(stderr, "kiln: %s:%s\n", o->file, kiln_context_errmsg(ctx));
    goto done;
  }
  if (kiln_tir_module_verify(mod)) {
    fail("verification failed", ctx);
    goto done;
  }
  if (kiln_tir_module_simplify(mod, &simple) || kiln_tir_module_verify(simple)) {
    fail("simplification failed", ctx);
    goto done;
  }
  if (kiln_tir_module_print(simple, &text)) {
    fail("printing failed", ctx);
    goto done;
  }
  if (!o->quiet) printf("# %s after simplification:\n%s\n", o->file, text);

  if (o->run && o->jit) {
    tgt_target host;
    if (tgt_target_host(ctx, &host) || tgt_jit_new(ctx, &host, &jit) ||
        tgt_jit_add_tir(jit, simple)) {
      fail("JIT compilation failed", ctx);
      goto done;
    }
  }
  int ran = 0;
  for (int fi = 0; o->run && fi < mod->nfuncs; fi++) {
    ir_func *f = mod->funcs[fi];
    if (o->func && strcmp(o->func, f->name) != 0) continue;
    ran++;
    if (make_args(ctx, mod->arena, f, o, &before) || make_args(ctx, mod->arena, f, o, &after))
      goto done;
    if (kiln_tir_module_interpret(mod, f->name, before.n, before.data)) {
      fprintf(stderr, "kiln: running '%s': %s\n", f->name, kiln_context_errmsg(ctx));
      goto done;
    }
    if (kiln_tir_module_interpret(simple, f->name, after.n, after.data)) {
      fprintf(stderr, "kiln: running simplified '%s': %s\n", f->name, kiln_context_errmsg(ctx));
      goto done;
    }
    int same = 1;
    for (int i = 0; i < before.n; i++)
      if (memcmp(before.data[i], after.data[i], before.bytes[i]) != 0) same = 0;
    printf("@%s: ran with the reference interpreter; buffers after the run:\n", f->name);
    for (int i = 0; i < f->nparams; i++) print_buffer(f->params[i], &before, i);
    printf("  simplified program gives %s results\n", same ? "bit-identical" : "DIFFERENT");
    if (same && o->jit) {
      /* the JIT's run starts from fresh inputs */
      free_args(&after);
      if (make_args(ctx, mod->arena, f, o, &after) || run_jit(ctx, jit, f, &after)) goto done;
      double err = max_difference(f, &before, &after);
      if (err == 0) printf("  JIT-compiled code gives bit-identical results\n");
      else printf("  JIT-compiled code differs by at most %g\n", err);
      if (!(err <= 1e-5)) same = 0;
    }
    free_args(&before);
    free_args(&after);
    if (!same) goto done;
  }
  if (o->func && !ran) {
    fprintf(stderr, "kiln: no function '%s' in %s\n", o->func, o->file);
    goto done;
  }
  rc = 0;
done:
  free_args(&before);
  free_args(&after);
  tgt_jit_free(jit);
  kiln_string_free(ctx, text);
  kiln_tir_module_free(simple);
  kiln_tir_module_free(mod);
  kiln_context_free(ctx);
  return rc;
}

/* Returns 0, 2 (a usage error, reported) or 3 (--help printed). */
static int parse_tir_options(int argc, char **argv, options *o) {
  memset(o, 0, sizeof *o);
  o->run = 1;
  o->jit = 1;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage, stdout);
      return 3;
    } else if (strcmp(a, "--func") == 0 && i + 1 < argc) {
      o->func = argv[++i];
    } else if (strcmp(a, "--set") == 0 && i + 1 < argc) {
      char *eq = strchr(argv[++i], '=');
      char *end;
      if (!eq || eq == argv[i] || o->nsets == 32) {
        fprintf(stderr, "kiln: --set takes NAME=VALUE, not '%s'\n", argv[i]);
        return 2;
      }
      *eq = 0;
      long long v = strtoll(eq + 1, &end, 10);
      if (*end || end == eq + 1) {
        fprintf(stderr, "kiln: --set %s: '%s' is not an integer\n", argv[i], eq + 1);
        return 2;
      }
      o->sets[o->nsets++] = (setting){argv[i], v};
    } else if (strcmp(a, "--no-jit") == 0) {
      o->jit = 0;
    } else if (strcmp(a, "--no-run") == 0) {
      o->run = 0;
    } else if (strcmp(a, "--quiet") == 0) {
      o->quiet = 1;
    } else if (a[0] == '-') {
      fprintf(stderr, "kiln tir: unknown option '%s'\n%s", a, usage);
      return 2;
    } else if (!o->file) {
      o->file = a;
    } else {
      fprintf(stderr, "kiln tir: more than one file given ('%s')\n", a);
      return 2;
    }
  }
  if (!o->file) {
    fprintf(stderr, "kiln tir: no file given\n%s", usage);
    return 2;
  }
  return 0;
}

/* ---- kiln relay ------------------------------------------------------------------------- */

typedef struct relay_options {
  const char *file;
  const char *passes; /* comma-separated names, NULL for the default pipeline */
  const char *bind_names[32];
  int64_t bind_values[32];
  int nbinds;
  int opt_level;
  int dump, time, verify, elide;
} relay_options;

/* Reports a malformed --bucket value of `kiln cmd` and returns 2 (a usage error). */
static int bucket_usage(const char *cmd, const char *fmt, const char *arg) {
  fprintf(stderr, "kiln %s: ", cmd);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(kiln %s --help for the usage)\n", cmd);
  return 2;
}

/* Parses "D[xD...]" (each D a non-negative integer) into dims; returns the rank or -1. */
static int parse_dims(const char *s, size_t len, int64_t *dims) {
  int n = 0;
  size_t i = 0;
  while (i < len) {
    if (n == KILN_TOOL_MAX_DIMS || s[i] < '0' || s[i] > '9') return -1;
    int64_t v = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
      if (v > (INT64_MAX - 9) / 10) return -1;
      v = v * 10 + (s[i++] - '0');
    }
    dims[n++] = v;
    if (i < len && (s[i] != 'x' || i + 1 == len)) return -1;
    i++;
  }
  return n;
}

/* spec = item ("," item)* ["@" weight]    item = NAME "=" D ("x" D)* */
int kiln_tool_parse_bucket(const char *cmd, char *spec, kiln_tool_bucket *b) {
  memset(b, 0, sizeof *b);
  b->weight = 1;
  char *at = strrchr(spec, '@');
  if (at) {
    char *end;
    b->weight = strtod(at + 1, &end);
    if (end == at + 1 || *end || !(b->weight > 0 && b->weight < 1e300))
      return bucket_usage(cmd, "--bucket: the weight after '@' must be a positive number, not '%s'",
                         at + 1);
    *at = 0;
  }
  char *p = spec;
  while (1) {
    char *comma = strchr(p, ',');
    char *eq = strchr(p, '=');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (!eq || eq >= p + len || eq == p)
      return bucket_usage(cmd, "--bucket takes NAME=DxDxD[,NAME=DxD...][@WEIGHT]; '%s' has no "
                         "NAME=dims",
                         p);
    if (b->ninputs == KILN_TOOL_MAX_BUCKET_INPUTS)
      return bucket_usage(cmd, "--bucket: too many inputs in '%s'", spec);
    int n = parse_dims(eq + 1, len - (size_t)(eq + 1 - p), b->dims[b->ninputs]);
    *eq = 0;
    if (n <= 0) {
      *eq = '=';
      if (comma) *comma = 0;
      return bucket_usage(cmd, "--bucket: '%s' is not NAME=DxDx...D (dimensions are integers >= 0, "
                         "at most 8)",
                         p);
    }
    for (int i = 0; i < b->ninputs; i++)
      if (strcmp(b->inputs[i].name, p) == 0)
        return bucket_usage(cmd, "--bucket: input '%s' is given twice in one bucket", p);
    b->inputs[b->ninputs] = (kiln_input_shape){p, n, b->dims[b->ninputs]};
    b->ninputs++;
    if (!comma) break;
    *comma = 0;
    p = comma + 1;
  }
  return 0;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

kiln_status kiln_tool_read_model(kiln_context *ctx, const char *path, kiln_relay_module **out) {
  int onnx;
  if (ends_with(path, ".onnx")) onnx = 1;
  else if (ends_with(path, ".relay")) onnx = 0;
  else {
    FILE *f = fopen(path, "rb");
    int c = ' ';
    while (f && (c = fgetc(f)) != EOF && (c == ' ' || c == '\n' || c == '\t' || c == '\r')) {
    }
    if (f) fclose(f);
    onnx = !(c == 'd' || c == '#');
  }
  return onnx ? kiln_relay_module_from_onnx_file(ctx, path, out)
              : kiln_relay_module_parse_file(ctx, path, out);
}

char *kiln_tool_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (n + 1 < cap) break;
    char *bigger = realloc(buf, cap * 2);
    if (!bigger) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = bigger;
    cap *= 2;
  }
  fclose(f);
  if (!buf) return NULL;
  buf[n] = 0;
  *len = n;
  return buf;
}

static void list_passes(FILE *out) {
  const relay_pass *const *pipeline;
  int n = relay_default_pipeline(&pipeline);
  fprintf(out, "passes (the default pipeline runs the first %d in this order):\n", n);
  for (int i = 0; i < n; i++) fprintf(out, "  %-24s %s\n", pipeline[i]->name, pipeline[i]->doc);
  for (int i = 0; i < relay_pass_count(); i++) {
    const relay_pass *p = relay_pass_at(i);
    int in_default = 0;
    for (int j = 0; j < n; j++) in_default |= pipeline[j] == p;
    if (!in_default) fprintf(out, "  %-24s %s\n", p->name, p->doc);
  }
}

static int cmd_relay(const relay_options *o) {
  const relay_pass *list[64];
  int npasses = 0;
  if (o->passes && strcmp(o->passes, "list") == 0) {
    list_passes(stdout);
    return 0;
  }
  if (o->passes) {
    const char *p = o->passes;
    while (*p) {
      const char *end = strchr(p, ',');
      size_t len = end ? (size_t)(end - p) : strlen(p);
      char name[64];
      if (len == 0 || len >= sizeof name || npasses == 64) {
        fprintf(stderr, "kiln relay: bad pass list '%s'\n", o->passes);
        return 2;
      }
      memcpy(name, p, len);
      name[len] = 0;
      const relay_pass *pass = relay_pass_lookup(name);
      if (!pass) {
        fprintf(stderr, "kiln relay: unknown pass '%s'; ", name);
        list_passes(stderr);
        return 2;
      }
      list[npasses++] = pass;
      p += len + (end ? 1 : 0);
    }
  } else {
    const relay_pass *const *pipeline;
    int n = relay_default_pipeline(&pipeline);
    for (int i = 0; i < n; i++) list[npasses++] = pipeline[i];
  }
  /* --bind without BindShapes in the list: it runs first, or right after a leading
   * InferType (the verifier between passes wants a typed module) */
  int has_bind = 0;
  for (int i = 0; i < npasses; i++) has_bind |= list[i] == &relay_pass_bind_shapes;
  if (o->nbinds && !has_bind && npasses < 64) {
    int at = npasses && list[0] == &relay_pass_infer_type ? 1 : 0;
    memmove(list + at + 1, list + at, sizeof list[0] * (size_t)(npasses - at));
    list[at] = &relay_pass_bind_shapes;
    npasses++;
  }

  kiln_context *ctx;
  if (kiln_context_new(&ctx)) return fail("cannot create a context", NULL);
  int rc = 1;
  relay_module *m = NULL;
  size_t len = 0;
  char *text = kiln_tool_read_file(o->file, &len);
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  pc.opt_level = o->opt_level;
  pc.verify = o->verify != 0;
  pc.nbinds = o->nbinds;
  pc.bind_names = o->bind_names;
  pc.bind_values = o->bind_values;
  if (o->dump) {
    pc.dump = relay_dump_to_file;
    pc.dump_ud = stdout;
  }
  if (!text) {
    fprintf(stderr, "kiln: cannot open '%s'\n", o->file);
    goto done;
  }
  if (relay_parse_module(ctx, text, len, &m)) {
    fprintf(stderr, "kiln: %s:%s\n", o->file, kiln_context_errmsg(ctx));
    goto done;
  }
  kiln_status st = relay_run_passes(&pc, m, npasses, list);
  if (o->time) {
    ir_strbuf tb;
    ir_sb_init(&tb, ctx);
    relay_pass_report(&pc, &tb);
    if (tb.data) fputs(tb.data, stderr);
    ir_sb_free(&tb);
  }
  if (st) {
    /* "FILE:LINE:COL: message" when the message has a position, else "FILE: message" */
    const char *msg = kiln_context_errmsg(ctx);
    fprintf(stderr, "kiln: %s:%s%s\n", o->file, msg[0] >= '0' && msg[0] <= '9' ? "" : " ", msg);
    goto done;
  }
  if (relay_print_module_opts(m, &sb, o->elide ? 8 : -1) || !sb.data) {
    fail("printing failed", ctx);
    goto done;
  }
  fputs(sb.data, stdout);
  rc = 0;
done:
  ir_sb_free(&sb);
  free(text);
  relay_module_free(m);
  kiln_context_free(ctx);
  return rc;
}

/* Returns 0, 2 (a usage error, reported) or 3 (--help printed). */
static int parse_relay_options(int argc, char **argv, relay_options *o) {
  memset(o, 0, sizeof *o);
  o->opt_level = 3;
  o->verify = 1;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage, stdout);
      return 3;
    } else if (strcmp(a, "--passes") == 0 && i + 1 < argc) {
      o->passes = argv[++i];
    } else if (strcmp(a, "--bind") == 0 && i + 1 < argc) {
      char *eq = strchr(argv[++i], '=');
      char *end;
      if (!eq || eq == argv[i] || o->nbinds == 32) {
        fprintf(stderr, "kiln relay: --bind takes NAME=VALUE, not '%s'\n", argv[i]);
        return 2;
      }
      *eq = 0;
      long long v = strtoll(eq + 1, &end, 10);
      if (*end || end == eq + 1) {
        fprintf(stderr, "kiln relay: --bind %s: '%s' is not an integer\n", argv[i], eq + 1);
        return 2;
      }
      o->bind_names[o->nbinds] = argv[i];
      o->bind_values[o->nbinds++] = v;
    } else if (strcmp(a, "--opt-level") == 0 && i + 1 < argc) {
      char *end;
      o->opt_level = (int)strtol(argv[++i], &end, 10);
      if (*end || end == argv[i]) {
        fprintf(stderr, "kiln relay: --opt-level takes a number, not '%s'\n", argv[i]);
        return 2;
      }
    } else if (strcmp(a, "--dump") == 0) {
      o->dump = 1;
    } else if (strcmp(a, "--time") == 0) {
      o->time = 1;
    } else if (strcmp(a, "--no-verify") == 0) {
      o->verify = 0;
    } else if (strcmp(a, "--elide") == 0) {
      o->elide = 1;
    } else if (a[0] == '-') {
      fprintf(stderr, "kiln relay: unknown option '%s'\n%s", a, usage);
      return 2;
    } else if (!o->file) {
      o->file = a;
    } else {
      fprintf(stderr, "kiln relay: more than one file given ('%s')\n", a);
      return 2;
    }
  }
  if (!o->file && !(o->passes && strcmp(o->passes, "list") == 0)) {
    fprintf(stderr, "kiln relay: no file given\n%s", usage);
    return 2;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
    printf("kiln %s\n", kiln_version());
    return 0;
  }
  if (strcmp(argv[1], "asm") == 0) return kiln_cmd_asm(argc - 2, argv + 2);
  if (strcmp(argv[1], "import") == 0) return kiln_cmd_import(argc - 2, argv + 2);
  if (strcmp(argv[1], "lower") == 0) return kiln_cmd_lower(argc - 2, argv + 2);
  if (strcmp(argv[1], "db") == 0) return kiln_cmd_db(argc - 2, argv + 2);
  if (strcmp(argv[1], "compile") == 0) return kiln_cmd_compile(argc - 2, argv + 2);
  if (strcmp(argv[1], "run") == 0) return kiln_cmd_run(argc - 2, argv + 2);
  if (strcmp(argv[1], "bench") == 0) return kiln_cmd_bench(argc - 2, argv + 2);
  if (strcmp(argv[1], "profile") == 0) return kiln_cmd_profile(argc - 2, argv + 2);
  if (strcmp(argv[1], "inspect") == 0) return kiln_cmd_inspect(argc - 2, argv + 2);
  if (strcmp(argv[1], "tune") == 0) return kiln_cmd_tune(argc - 2, argv + 2);
  if (strcmp(argv[1], "tir") == 0) {
    options o;
    int st = parse_tir_options(argc - 2, argv + 2, &o);
    if (st) return st == 3 ? 0 : st;
    return cmd_tir(&o);
  }
  if (strcmp(argv[1], "relay") == 0) {
    relay_options o;
    int st = parse_relay_options(argc - 2, argv + 2, &o);
    if (st) return st == 3 ? 0 : st;
    return cmd_relay(&o);
  }
  fprintf(stderr, "kiln: unknown command '%s'\n%s", argv[1], usage);
  return 2;
}

/* measure.c: building candidate kernels and timing them in forked worker processes (see
 * measure.h). The parent makes the inputs (seeded random data, private memory the worker
 * inherits copy-on-write) and a shared anonymous mapping holding the worker's report
 * (kernel status, message, timings) and the output buffers, so nothing large crosses a pipe.
 * The pipe only wakes the parent: the worker writes one byte when done, and its end closes
 * when the worker dies. The parent reaps the worker in every case (kill at the deadline). */
#include "autotune/measure.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include "ir/transform.h"
#include "ir/verify.h"
#include "target/codegen.h"

/* Buffers are aligned to a cache line, so that every candidate sees the same alignment. */
#define DATA_ALIGN 64

tune_measure_opts tune_measure_opts_default(void) {
  tune_measure_opts o = {.warmup = 1, .min_repeats = 3, .min_seconds = 0.05, .timeout_s = 10,
                         .check = true, .rtol = 1e-4, .atol = 1e-5, .atol_of_max = 1e-5,
                         .seed = 1, .flush_bytes = TUNE_FLUSH_BYTES};
  return o;
}

void tune_result_fail(tune_result *r, int status, const char *msg) {
  memset(r, 0, sizeof *r);
  r->status = status;
  snprintf(r->error, sizeof r->error, "%s", msg ? msg : "");
}

/* ---- Building ------------------------------------------------------------------------ */

struct tune_built {
  kiln_context *ctx;
  tgt_jit *jit;
  kiln_kernel_fn fn;
  int nparams;
  char name[128];
  kiln_tir_module *lowered; /* the lowered function the JIT compiled (kept for inspection) */
};

void tune_built_free(tune_built *k) {
  if (!k) return;
  tgt_jit_free(k->jit);
  if (k->lowered) kiln_tir_module_free(k->lowered);
  ir_free(k->ctx, k, sizeof *k);
}

kiln_kernel_fn tune_built_fn(const tune_built *k) { return k ? k->fn : NULL; }
int tune_built_nparams(const tune_built *k) { return k ? k->nparams : 0; }
const kiln_tir_module *tune_built_lowered(const tune_built *k) { return k ? k->lowered : NULL; }

/* Lowering goes into a scratch arena; the result is copied into a module of its own (the
 * JIT compiles from it and does not keep it). The kernel is looked up, hence compiled, here:
 * a worker must not run the JIT's compiler after fork. */
kiln_status tune_build(kiln_context *ctx, const tgt_target *t, const ir_func *scheduled,
                       tune_built **out) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!t || !scheduled || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune_build: NULL argument");
  *out = NULL;
  if (strlen(scheduled->name) >= sizeof(((tune_built *)0)->name))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune_build: function name '%s' is too long",
                   scheduled->name);
  ir_arena *scratch = ir_arena_new(ctx);
  if (!scratch) return KILN_ERR_NOMEM;
  kiln_tir_module *mod = NULL;
  tune_built *k = NULL;
  ir_func *low = NULL;
  kiln_status st = ir_lower_func(ctx, scratch, (ir_func *)scheduled, NULL, &low);
  if (st) goto done;
  st = KILN_ERR_NOMEM;
  if (!(mod = ir_module_new(ctx))) goto done;
  ir_func *copy = (ir_func *)ir_deep_copy(mod->arena, &low->h);
  if (!copy) goto done;
  if ((st = ir_module_add(mod, copy))) goto done;
  st = KILN_ERR_NOMEM;
  if (!(k = ir_malloc(ctx, sizeof *k))) goto done;
  memset(k, 0, sizeof *k);
  k->ctx = ctx;
  k->nparams = scheduled->nparams;
  snprintf(k->name, sizeof k->name, "%s", scheduled->name);
  if ((st = tgt_jit_new(ctx, t, &k->jit))) goto done;
  if ((st = tgt_jit_add_tir(k->jit, mod))) goto done;
  if ((st = tgt_jit_lookup(k->jit, k->name, &k->fn))) goto done;
  k->lowered = mod; /* the kernel keeps the lowered module */
  mod = NULL;
done:
  if (st && k) {
    tune_built_free(k);
    k = NULL;
  }
  if (mod) kiln_tir_module_free(mod);
  ir_arena_free(scratch);
  *out = k;
  return st;
}

/* ---- Parameters, inputs and outputs ---------------------------------------------------- */

/* The facts about one parameter buffer that measurement needs. */
typedef struct param_info {
  const ir_buffer *buf;
  bool output;            /* the function writes it */
  int ndim;
  int64_t shape[16];
  size_t nelems;          /* scalar elements (lanes counted) */
  size_t bytes;
} param_info;

typedef struct params {
  int n;
  param_info *p; /* n entries, context memory */
} params;

/* ir_visit callback: marks the parameter buffers a store or a block's write region names. */
static bool mark_writes(ir_node *n, void *ud) {
  params *ps = ud;
  const ir_buffer *written[64];
  int nw = 0;
  if (n->kind == IR_STORE) {
    written[nw++] = ir_as_store(n)->buffer;
  } else if (n->kind == IR_BLOCK) {
    ir_block *b = ir_as_block(n);
    for (int i = 0; i < b->nwrites && nw < 64; i++) written[nw++] = b->writes[i]->buffer;
  }
  for (int w = 0; w < nw; w++)
    for (int i = 0; i < ps->n; i++)
      if (ps->p[i].buf == written[w]) ps->p[i].output = true;
  return true;
}

/* Reads f's parameters: every one must be a dense buffer with a constant shape. The error
 * names the function and the parameter. */
static kiln_status read_params(kiln_context *ctx, const ir_func *f, params *ps) {
  ps->n = f->nparams;
  ps->p = NULL;
  if (f->nparams == 0) return KILN_OK;
  ps->p = ir_malloc(ctx, sizeof(param_info) * (size_t)f->nparams);
  if (!ps->p) return KILN_ERR_NOMEM;
  memset(ps->p, 0, sizeof(param_info) * (size_t)f->nparams);
  for (int i = 0; i < f->nparams; i++) {
    const ir_buffer *b = ir_as_buffer(f->params[i]);
    kiln_status st = KILN_OK;
    if (!b) {
      const ir_var *v = ir_as_var(f->params[i]);
      st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "tune_measure: function '%s': scalar parameter '%s' (a symbolic dimension?): "
                   "only functions with constant shapes can be measured",
                   f->name, v ? v->name : "?");
    } else if (b->ndim > 16) {
      st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "tune_measure: function '%s': buffer '%s' has %d dimensions (at most 16)",
                   f->name, b->name, (int)b->ndim);
    } else if (b->nstrides > 0 ||
               (b->elem_offset && !(ir_as_int(b->elem_offset) &&
                                    ir_as_int(b->elem_offset)->value == 0))) {
      st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "tune_measure: function '%s': buffer '%s' has strides or an element offset "
                   "(only dense buffers can be measured)", f->name, b->name);
    }
    if (st) {
      ir_free(ctx, ps->p, sizeof(param_info) * (size_t)f->nparams);
      ps->p = NULL;
      return st;
    }
    param_info *p = &ps->p[i];
    p->buf = b;
    p->ndim = b->ndim;
    size_t n = b->h.dtype.lanes ? b->h.dtype.lanes : 1;
    for (int d = 0; d < b->ndim; d++) {
      const ir_int_imm *c = ir_as_int(b->shape[d]);
      if (!c || c->value < 0 || (c->value > 0 && n > ((size_t)1 << 40) / (size_t)c->value)) {
        ir_free(ctx, ps->p, sizeof(param_info) * (size_t)f->nparams);
        ps->p = NULL;
        return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                       "tune_measure: function '%s': buffer '%s': dimension %d is %s "
                       "(only constant shapes can be measured)",
                       f->name, b->name, d, c ? "too large" : "symbolic");
      }
      p->shape[d] = c->value;
      n *= (size_t)c->value;
    }
    p->nelems = n;
    size_t lane_bytes = b->h.dtype.bits == 1 ? 1 : (b->h.dtype.bits + 7u) / 8u;
    p->bytes = n * lane_bytes;
  }
  if (f->body) ir_visit(f->body, false, mark_writes, ps);
  return KILN_OK;
}

static void free_params(kiln_context *ctx, params *ps) {
  if (ps->p) ir_free(ctx, ps->p, sizeof(param_info) * (size_t)ps->n);
  ps->p = NULL;
}

/* A uniform double in [-1, 1). */
static double rand_unit(uint64_t *s) {
  return (double)(ir_splitmix64(s) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0;
}

/* Fills input p (parameter index i) with data determined by seed and i alone: floats in
 * [-1, 1), signed ints in [-8, 8), unsigned ints in [0, 16), bools 0 or 1. */
static void fill_input(const param_info *p, int i, uint64_t seed, void *data) {
  uint64_t s = ir_hash_mix(seed, (uint64_t)i);
  kiln_dtype t = p->buf->h.dtype;
  for (size_t e = 0; e < p->nelems; e++) {
    if (t.code == KILN_TYPE_FLOAT && t.bits == 32) {
      ((float *)data)[e] = (float)rand_unit(&s);
    } else if (t.code == KILN_TYPE_FLOAT && t.bits == 64) {
      ((double *)data)[e] = rand_unit(&s);
    } else if (t.code == KILN_TYPE_FLOAT && t.bits == 16) {
      /* a random half in about [-1, 1]: sign, exponent 5..14 (2^-10 .. 2^-1), mantissa */
      uint64_t r = ir_splitmix64(&s);
      uint16_t h = (uint16_t)(((r & 1) << 15) | ((5 + (r >> 1) % 10) << 10) | ((r >> 8) & 0x3ff));
      ((uint16_t *)data)[e] = h;
    } else if (t.code == KILN_TYPE_BFLOAT && t.bits == 16) {
      float v = (float)rand_unit(&s);
      uint32_t u;
      memcpy(&u, &v, 4);
      ((uint16_t *)data)[e] = (uint16_t)(u >> 16);
    } else if (t.code == KILN_TYPE_BOOL) {
      ((uint8_t *)data)[e] = (uint8_t)(ir_splitmix64(&s) & 1);
    } else {
      uint64_t r = ir_splitmix64(&s) & 15;
      int64_t v = t.code == KILN_TYPE_INT ? (int64_t)r - 8 : (int64_t)r;
      switch (t.bits) {
      case 8: ((int8_t *)data)[e] = (int8_t)v; break;
      case 16: ((int16_t *)data)[e] = (int16_t)v; break;
      case 32: ((int32_t *)data)[e] = (int32_t)v; break;
      default: ((int64_t *)data)[e] = v; break;
      }
    }
  }
}

/* Pre-fills output p with a pattern no kernel computes by accident: quiet NaNs for floats,
 * 0xA5 bytes otherwise; an element the kernel never writes then fails the comparison. */
static void fill_output(const param_info *p, void *data) {
  kiln_dtype t = p->buf->h.dtype;
  if (t.code == KILN_TYPE_FLOAT && t.bits == 32) {
    for (size_t e = 0; e < p->nelems; e++) ((float *)data)[e] = NAN;
  } else if (t.code == KILN_TYPE_FLOAT && t.bits == 64) {
    for (size_t e = 0; e < p->nelems; e++) ((double *)data)[e] = NAN;
  } else if ((t.code == KILN_TYPE_FLOAT || t.code == KILN_TYPE_BFLOAT) && t.bits == 16) {
    uint16_t nan = t.code == KILN_TYPE_FLOAT ? 0x7e00 : 0x7fc0;
    for (size_t e = 0; e < p->nelems; e++) ((uint16_t *)data)[e] = nan;
  } else {
    memset(data, 0xA5, p->bytes);
  }
}

/* Element e of a float output as a double (half and bfloat16 converted exactly). */
static double float_at(kiln_dtype t, const void *data, size_t e) {
  if (t.bits == 32) return ((const float *)data)[e];
  if (t.bits == 64) return ((const double *)data)[e];
  uint16_t h = ((const uint16_t *)data)[e];
  if (t.code == KILN_TYPE_BFLOAT) {
    uint32_t u = (uint32_t)h << 16;
    float v;
    memcpy(&v, &u, 4);
    return v;
  }
  int sign = h >> 15, ex = (h >> 10) & 0x1f, man = h & 0x3ff;
  double v;
  if (ex == 0) v = ldexp(man, -24);
  else if (ex == 31) v = man ? NAN : INFINITY;
  else v = ldexp(man + 1024, ex - 25);
  return sign ? -v : v;
}

/* Element e of an integer or bool output, as int64 (uint64 values keep their bits). */
static int64_t int_at(kiln_dtype t, const void *data, size_t e) {
  bool u = t.code != KILN_TYPE_INT;
  switch (t.bits) {
  case 8: return u ? (int64_t)((const uint8_t *)data)[e] : (int64_t)((const int8_t *)data)[e];
  case 16: return u ? (int64_t)((const uint16_t *)data)[e] : (int64_t)((const int16_t *)data)[e];
  case 32: return u ? (int64_t)((const uint32_t *)data)[e] : (int64_t)((const int32_t *)data)[e];
  default: return ((const int64_t *)data)[e];
  }
}

/* Writes "[i, j, k]" for flat element e of p (lanes last) into buf. */
static void format_index(const param_info *p, size_t e, char *buf, size_t cap) {
  size_t lanes = p->buf->h.dtype.lanes > 1 ? p->buf->h.dtype.lanes : 1;
  size_t lane = e % lanes, rest = e / lanes;
  int64_t idx[16];
  for (int d = p->ndim - 1; d >= 0; d--) {
    idx[d] = p->shape[d] ? (int64_t)(rest % (size_t)p->shape[d]) : 0;
    rest = p->shape[d] ? rest / (size_t)p->shape[d] : 0;
  }
  size_t n = (size_t)snprintf(buf, cap, "[");
  for (int d = 0; d < p->ndim && n < cap; d++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)idx[d]);
  if (n < cap && lanes > 1) n += (size_t)snprintf(buf + n, cap - n, " lane %zu", lane);
  if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* Compares output p (got) with its reference; on the first mismatch writes a message naming
 * the buffer, the element and both values into msg and returns false. NaN matches NaN, an
 * infinity must match exactly. */
static bool compare_output(const param_info *p, const void *got, const void *ref, double rtol,
                           double atol, double atol_of_max, char *msg, size_t cap) {
  kiln_dtype t = p->buf->h.dtype;
  bool is_float = t.code == KILN_TYPE_FLOAT || t.code == KILN_TYPE_BFLOAT;
  char where[160];
  if (is_float && atol_of_max > 0) {
    double max = 0;
    for (size_t e = 0; e < p->nelems; e++) {
      double r = fabs(float_at(t, ref, e));
      if (isfinite(r) && r > max) max = r;
    }
    atol += atol_of_max * max;
  }
  for (size_t e = 0; e < p->nelems; e++) {
    if (is_float) {
      double a = float_at(t, got, e), r = float_at(t, ref, e);
      bool ok;
      if (isnan(r)) ok = isnan(a);
      else if (isinf(r)) ok = a == r;
      else ok = fabs(a - r) <= atol + rtol * fabs(r); /* false when a is NaN */
      if (ok) continue;
      format_index(p, e, where, sizeof where);
      snprintf(msg, cap, "output '%s': element %s (flat %zu) is %.9g, expected %.9g "
               "(rtol %g, atol %g)", p->buf->name, where, e, a, r, rtol, atol);
      return false;
    }
    int64_t a = int_at(t, got, e), r = int_at(t, ref, e);
    if (a == r) continue;
    format_index(p, e, where, sizeof where);
    snprintf(msg, cap, "output '%s': element %s (flat %zu) is %lld, expected %lld", p->buf->name,
             where, e, (long long)a, (long long)r);
    return false;
  }
  return true;
}

/* Aligned context memory: *raw is what to free (raw_bytes of it). */
static void *alloc_aligned(kiln_context *ctx, size_t bytes, void **raw, size_t *raw_bytes) {
  *raw_bytes = bytes + DATA_ALIGN;
  *raw = ir_malloc(ctx, *raw_bytes);
  if (!*raw) return NULL;
  uintptr_t a = ((uintptr_t)*raw + DATA_ALIGN - 1) & ~(uintptr_t)(DATA_ALIGN - 1);
  return (void *)a;
}

static size_t round_up(size_t n) { return (n + DATA_ALIGN - 1) & ~(size_t)(DATA_ALIGN - 1); }

/* ---- Reference outputs --------------------------------------------------------------- */

void tune_reference_free(kiln_context *ctx, tune_reference *r) {
  if (!r) return;
  for (int o = 0; r->data && r->bytes && o < r->nout; o++)
    if (r->data[o]) ir_free(ctx, r->data[o], r->bytes[o] ? r->bytes[o] : 1);
  ir_free(ctx, r->data, sizeof(void *) * (size_t)r->nout);
  ir_free(ctx, r->bytes, sizeof(size_t) * (size_t)r->nout);
  ir_free(ctx, r, sizeof *r);
}

/* An empty reference for nout outputs (data and bytes zeroed); NULL when memory runs out. */
static tune_reference *reference_new(kiln_context *ctx, int nout) {
  tune_reference *r = ir_malloc(ctx, sizeof *r);
  if (!r) return NULL;
  memset(r, 0, sizeof *r);
  r->nout = nout;
  if (nout) {
    r->data = ir_malloc(ctx, sizeof(void *) * (size_t)nout);
    r->bytes = ir_malloc(ctx, sizeof(size_t) * (size_t)nout);
    if (!r->data || !r->bytes) {
      tune_reference_free(ctx, r);
      return NULL;
    }
    memset(r->data, 0, sizeof(void *) * (size_t)nout);
    memset(r->bytes, 0, sizeof(size_t) * (size_t)nout);
  }
  return r;
}

/* The interpreter runs on plain context memory; inputs come from fill_input exactly as
 * tune_measure makes them, outputs start from the same pattern. */
kiln_status tune_reference_outputs(kiln_context *ctx, const ir_func *f, uint64_t seed,
                                   tune_reference **out) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!f || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune_reference_outputs: NULL argument");
  *out = NULL;
  params ps;
  kiln_status st = read_params(ctx, f, &ps);
  if (st) return st;
  int nout = 0;
  for (int i = 0; i < ps.n; i++) nout += ps.p[i].output;
  tune_reference *r = reference_new(ctx, nout);
  void **args = ps.n ? ir_malloc(ctx, sizeof(void *) * (size_t)ps.n) : NULL;
  if (args) memset(args, 0, sizeof(void *) * (size_t)ps.n);
  st = KILN_ERR_NOMEM;
  if (!r || (ps.n && !args)) goto fail;
  for (int i = 0, o = 0; i < ps.n; i++) {
    void *d = ir_malloc(ctx, ps.p[i].bytes ? ps.p[i].bytes : 1);
    if (!d) goto fail;
    args[i] = d;
    if (ps.p[i].output) {
      fill_output(&ps.p[i], d);
      r->data[o] = d;
      r->bytes[o++] = ps.p[i].bytes;
    } else {
      fill_input(&ps.p[i], i, seed, d);
    }
  }
  st = ir_interpret(ctx, f, ps.n, args);
  if (st) goto fail;
  for (int i = 0; i < ps.n; i++)
    if (!ps.p[i].output) ir_free(ctx, args[i], ps.p[i].bytes ? ps.p[i].bytes : 1);
  ir_free(ctx, args, sizeof(void *) * (size_t)ps.n);
  free_params(ctx, &ps);
  *out = r;
  return KILN_OK;
fail:
  if (args) {
    for (int i = 0; i < ps.n; i++)
      if (args[i] && !ps.p[i].output) ir_free(ctx, args[i], ps.p[i].bytes ? ps.p[i].bytes : 1);
    ir_free(ctx, args, sizeof(void *) * (size_t)ps.n);
  }
  tune_reference_free(ctx, r); /* frees the outputs it holds */
  free_params(ctx, &ps);
  return st;
}

/* ---- The worker ------------------------------------------------------------------------ */

/* The worker's report, at the start of the shared mapping; the outputs follow it. */
typedef struct report {
  int32_t finished;      /* 1 once the worker wrote everything below */
  int32_t kernel_status; /* the first non-zero status the kernel returned, else 0 */
  int32_t repeats;
  char msg[384];         /* kiln_last_error() after a failing call */
  double times[TUNE_MAX_REPEATS];
} report;

/* The shortest timed sample (seconds); shorter kernels are timed in batches. */
#define MIN_SAMPLE_S 1e-4

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Warmup, then calibration: a timed sample is a batch of `inner` calls lasting at least
 * MIN_SAMPLE_S, so the clock's own cost does not count and TUNE_MAX_REPEATS samples reach
 * min_seconds up to TUNE_MAX_REPEATS * MIN_SAMPLE_S; a sample records the batch's mean.
 * The batch size grows until one batch (untimed, a further warmup) is long enough. Allocates
 * nothing and touches no context, so the forked worker can run it. */
int32_t tune_time_calls(const tune_built *k, const kiln_tensor *args, int warmup,
                        int min_repeats, double min_seconds, double *times, int *nsamples) {
  return tune_time_calls_flushed(k, args, warmup, min_repeats, min_seconds, NULL, 0, 0, times,
                                 nsamples);
}

/* Writes every cache line of the flush buffer (volatile: the stores must happen), evicting
 * what the previous call left in the caches. */
static void flush_caches(unsigned char *flush, size_t bytes) {
  volatile unsigned char *p = flush;
  for (size_t i = 0; i < bytes; i += 64) p[i] = (unsigned char)(p[i] + 1);
}

int32_t tune_time_calls_flushed(const tune_built *k, const kiln_tensor *args, int warmup,
                                int min_repeats, double min_seconds, void *flush,
                                size_t flush_bytes, double slow_cutoff_s, double *times,
                                int *nsamples) {
  int32_t st = 0;
  *nsamples = 0;
  /* with the slow cutoff and no warmup, one extra first call to judge the kernel by */
  int untimed = warmup > 0 ? warmup : slow_cutoff_s > 0 ? 1 : 0;
  for (int w = 0; w < untimed && st == 0; w++) {
    double t0 = now_s();
    st = k->fn(args, k->nparams);
    double dt = now_s() - t0;
    if (w == 0 && st == 0 && slow_cutoff_s > 0 && dt > slow_cutoff_s) {
      times[0] = dt; /* hopeless: this call is its time */
      *nsamples = 1;
      return 0;
    }
  }
  int64_t inner = 1;
  while (st == 0 && inner < ((int64_t)1 << 40)) {
    double t0 = now_s();
    for (int64_t c = 0; c < inner && st == 0; c++) st = k->fn(args, k->nparams);
    double dt = now_s() - t0;
    if (dt >= MIN_SAMPLE_S) break;
    inner *= dt * 100 < MIN_SAMPLE_S ? 10 : 2;
  }
  double total = 0;
  int n = 0;
  while (st == 0 && n < TUNE_MAX_REPEATS && (n < min_repeats || total < min_seconds)) {
    if (flush && inner == 1) flush_caches(flush, flush_bytes);
    double t0 = now_s();
    for (int64_t c = 0; c < inner && st == 0; c++) st = k->fn(args, k->nparams);
    double dt = now_s() - t0;
    if (st) break;
    times[n++] = dt / (double)inner;
    total += dt;
  }
  *nsamples = n;
  return st;
}

/* Runs in the forked child; never returns. Only the kernel, the runtime it calls and a few
 * system calls run here: no compiler code, no context (the parent's JIT and allocator state
 * are copies the child must not rely on). */
static void worker(const tune_built *k, const kiln_tensor *args, const tune_measure_opts *o,
                   report *rep, int wfd) {
#if defined(__linux__)
  prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the tuner */
#endif
  /* Deadly signals take their default action, so the parent sees which one it was (a
   * sanitizer's handler would turn a crash into an ordinary exit). */
  static const int deadly[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
  for (size_t i = 0; i < sizeof deadly / sizeof deadly[0]; i++) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(deadly[i], &sa, NULL);
  }
  /* Ctrl-C in a terminal signals the whole process group: the tuner decides when to stop
   * (after this measurement, recorded as what it is), not a worker dying of SIGINT. */
  signal(SIGINT, SIG_IGN);
  /* Safety nets should the parent fail to kill us at the deadline: a wall-clock alarm and a
   * CPU-time limit (CPU time of all threads adds up, hence the thread count). */
  double limit = o->timeout_s + 2;
  alarm((unsigned)ceil(limit));
  struct rlimit rl;
  if (getrlimit(RLIMIT_CPU, &rl) == 0) {
    rlim_t want = (rlim_t)ceil(limit * (double)kiln_rt_num_threads()) + 1;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > want) {
      rl.rlim_cur = want;
      if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_CPU, &rl);
    }
  }

  int n = 0;
  /* a call slow enough to be timed alone starts from cold caches, as a kernel inside a model
   * whose other kernels ran in between would */
  void *flush = MAP_FAILED;
  if (o->flush_bytes > 0)
    flush = mmap(NULL, o->flush_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                 0);
  int32_t st = tune_time_calls_flushed(k, args, o->warmup, o->min_repeats, o->min_seconds,
                                       flush == MAP_FAILED ? NULL : flush, o->flush_bytes,
                                       o->slow_cutoff_s, rep->times, &n);
  rep->repeats = n;
  rep->kernel_status = st;
  if (st) snprintf(rep->msg, sizeof rep->msg, "%s", kiln_last_error());
  __atomic_store_n(&rep->finished, 1, __ATOMIC_RELEASE);
  char done = 'x';
  ssize_t unused = write(wfd, &done, 1);
  (void)unused;
  _exit(0);
}

/* ---- The parent ------------------------------------------------------------------------ */

static const char *signal_name(int sig) {
  switch (sig) {
  case SIGSEGV: return "SIGSEGV";
  case SIGBUS: return "SIGBUS";
  case SIGFPE: return "SIGFPE";
  case SIGILL: return "SIGILL";
  case SIGABRT: return "SIGABRT";
  case SIGTRAP: return "SIGTRAP";
  case SIGSYS: return "SIGSYS";
  case SIGKILL: return "SIGKILL";
  case SIGTERM: return "SIGTERM";
  case SIGXCPU: return "SIGXCPU";
  case SIGALRM: return "SIGALRM";
  case SIGPIPE: return "SIGPIPE";
  default: return "an unknown signal";
  }
}

/* Waits for the worker until `timeout_s` has passed since `start`, then kills it. Returns
 * the wait status, *killed when we killed it. The pipe wakes us early: a byte when the
 * worker finished, end-of-file when it died (unless another worker forked meanwhile by
 * another thread holds the write end too: then the 5 ms polls and waitpid still see it). */
static int wait_worker(pid_t pid, int rfd, double start, double timeout_s, bool *killed) {
  int wstatus = 0;
  bool eof = false;
  *killed = false;
  for (;;) {
    pid_t w = waitpid(pid, &wstatus, WNOHANG);
    if (w == pid) return wstatus;
    if (w < 0 && errno != EINTR) return 0; /* cannot happen for our own child */
    double left = start + timeout_s - now_s();
    if (left <= 0) {
      kill(pid, SIGKILL);
      *killed = true;
      while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
      }
      return wstatus;
    }
    int ms = (int)(left * 1000) + 1;
    if (ms > 5) ms = 5;
    if (!eof) {
      struct pollfd pfd = {rfd, POLLIN, 0};
      if (poll(&pfd, 1, ms) > 0) {
        char buf[16];
        ssize_t n = read(rfd, buf, sizeof buf);
        if (n == 0) eof = true;
      }
    } else {
      struct timespec nap = {0, 100000}; /* dead or exiting: reaped within microseconds */
      nanosleep(&nap, NULL);
    }
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

void tune_time_summary(double *times, int n, tune_time_stats *out) {
  memset(out, 0, sizeof *out);
  if (n <= 0) return;
  qsort(times, (size_t)n, sizeof(double), cmp_double);
  out->min_s = times[0];
  out->max_s = times[n - 1];
  out->median_s = n % 2 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
  double mean = 0, var = 0;
  for (int i = 0; i < n; i++) mean += times[i];
  mean /= n;
  for (int i = 0; i < n; i++) var += (times[i] - mean) * (times[i] - mean);
  out->mean_s = mean;
  out->stddev_s = n > 1 ? sqrt(var / (n - 1)) : 0;
}

/* Median, min, max and sample standard deviation of the worker's timings. */
static void summarize(report *rep, tune_result *out) {
  int n = rep->repeats;
  out->repeats = n;
  if (n <= 0) return;
  tune_time_stats ts;
  tune_time_summary(rep->times, n, &ts);
  out->min_s = ts.min_s;
  out->max_s = ts.max_s;
  out->median_s = ts.median_s;
  out->stddev_s = ts.stddev_s;
}

/* Records a failure that prevents measuring both on ctx and in out. */
static kiln_status setup_fail(kiln_context *ctx, tune_result *out, kiln_status st) {
  tune_result_fail(out, TUNE_RUN_ERROR, kiln_context_errmsg(ctx));
  return st;
}

kiln_status tune_measure(kiln_context *ctx, const tune_built *k, const ir_func *f,
                         const tune_measure_opts *opts, const void *const *reference_outputs,
                         tune_result *out) {
  return tune_measure_capture(ctx, k, f, opts, reference_outputs, out, NULL);
}

/* A copy of the outputs (one array per output parameter, in order) as a tune_reference;
 * NULL when memory runs out. */
static tune_reference *copy_outputs(kiln_context *ctx, const params *ps, const kiln_tensor *args) {
  int nout = 0;
  for (int i = 0; i < ps->n; i++) nout += ps->p[i].output;
  tune_reference *r = reference_new(ctx, nout);
  if (!r) return NULL;
  for (int i = 0, o = 0; i < ps->n; i++) {
    if (!ps->p[i].output) continue;
    size_t bytes = ps->p[i].bytes;
    void *d = ir_malloc(ctx, bytes ? bytes : 1);
    if (!d) {
      tune_reference_free(ctx, r);
      return NULL;
    }
    memcpy(d, args[i].data, bytes);
    r->data[o] = d;
    r->bytes[o++] = bytes;
  }
  return r;
}

kiln_status tune_measure_capture(kiln_context *ctx, const tune_built *k, const ir_func *f,
                                 const tune_measure_opts *opts,
                                 const void *const *reference_outputs, tune_result *out,
                                 tune_reference **captured) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (captured) *captured = NULL;
  if (!out) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tune_measure: NULL result");
  memset(out, 0, sizeof *out);
  if (!k || !f)
    return setup_fail(ctx, out, ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                                        "tune_measure: NULL kernel or function"));
  tune_measure_opts o = opts ? *opts : tune_measure_opts_default();
  if (o.timeout_s <= 0 || o.min_repeats < 1 || o.warmup < 0 || !(o.min_seconds >= 0))
    return setup_fail(ctx, out, ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                                        "tune_measure: bad options (timeout %g s, min_repeats "
                                        "%d, warmup %d, min_seconds %g)", o.timeout_s,
                                        o.min_repeats, o.warmup, o.min_seconds));
  if (strcmp(k->name, f->name) != 0 || k->nparams != f->nparams)
    return setup_fail(ctx, out, ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                                        "tune_measure: kernel '%s' (%d parameters) was not "
                                        "built from function '%s' (%d parameters)", k->name,
                                        k->nparams, f->name, (int)f->nparams));
  params ps;
  kiln_status st = read_params(ctx, f, &ps);
  if (st) return setup_fail(ctx, out, st);

  /* Memory: inputs in private context memory, the report and the outputs in one shared
   * mapping (mmap rather than the context allocator: it must be shared with the worker). */
  size_t shared_bytes = round_up(sizeof(report));
  for (int i = 0; i < ps.n; i++) {
    if (ps.p[i].output) shared_bytes += round_up(ps.p[i].bytes ? ps.p[i].bytes : 1);
  }
  kiln_tensor *args = NULL;
  void **raw = NULL;
  size_t *raw_bytes = NULL;
  size_t args_bytes = sizeof(kiln_tensor) * (size_t)(ps.n ? ps.n : 1);
  size_t raw_arr = sizeof(void *) * (size_t)(ps.n ? ps.n : 1);
  size_t rawb_arr = sizeof(size_t) * (size_t)(ps.n ? ps.n : 1);
  void *shared = MAP_FAILED;
  int fds[2] = {-1, -1};
  st = KILN_ERR_NOMEM;
  args = ir_malloc(ctx, args_bytes);
  raw = ir_malloc(ctx, raw_arr);
  raw_bytes = ir_malloc(ctx, rawb_arr);
  if (!args || !raw || !raw_bytes) goto done;
  memset(args, 0, args_bytes);
  memset(raw, 0, raw_arr);
  memset(raw_bytes, 0, rawb_arr);
  shared = mmap(NULL, shared_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) {
    st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_NOMEM,
                 "tune_measure: cannot map %zu bytes of shared memory: %s", shared_bytes,
                 strerror(errno));
    goto done;
  }
  report *rep = shared;
  char *next_out = (char *)shared + round_up(sizeof(report));
  for (int i = 0; i < ps.n; i++) {
    param_info *p = &ps.p[i];
    void *data;
    if (p->output) {
      data = next_out;
      next_out += round_up(p->bytes ? p->bytes : 1);
      fill_output(p, data);
    } else {
      data = alloc_aligned(ctx, p->bytes ? p->bytes : 1, &raw[i], &raw_bytes[i]);
      if (!data) goto done;
      fill_input(p, i, o.seed, data);
    }
    args[i].data = data;
    args[i].device_type = 1;
    args[i].ndim = p->ndim;
    args[i].dtype = p->buf->h.dtype;
    args[i].shape = p->shape;
  }
  if (pipe(fds) != 0) {
    st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_RUNTIME, "tune_measure: pipe failed: %s",
                 strerror(errno));
    goto done;
  }
  fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  fcntl(fds[1], F_SETFD, FD_CLOEXEC);

  double start = now_s();
  pid_t pid = fork();
  if (pid < 0) {
    st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_RUNTIME, "tune_measure: fork failed: %s",
                 strerror(errno));
    goto done;
  }
  if (pid == 0) {
    close(fds[0]);
    worker(k, args, &o, rep, fds[1]);
  }
  close(fds[1]);
  fds[1] = -1;
  bool killed;
  int ws = wait_worker(pid, fds[0], start, o.timeout_s, &killed);
  st = KILN_OK;

  if (killed || (WIFSIGNALED(ws) && (WTERMSIG(ws) == SIGXCPU || WTERMSIG(ws) == SIGALRM))) {
    out->status = TUNE_TIMEOUT;
    snprintf(out->error, sizeof out->error, "kernel '%s' ran past the time limit of %g s",
             k->name, o.timeout_s);
  } else if (WIFSIGNALED(ws)) {
    out->status = TUNE_RUN_ERROR;
    snprintf(out->error, sizeof out->error, "kernel '%s' crashed: its worker died from %s (%s)",
             k->name, signal_name(WTERMSIG(ws)), strsignal(WTERMSIG(ws)));
  } else if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 ||
             !__atomic_load_n(&rep->finished, __ATOMIC_ACQUIRE)) {
    out->status = TUNE_RUN_ERROR;
    snprintf(out->error, sizeof out->error,
             "kernel '%s': its worker exited with status %d without a report", k->name,
             WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
  } else if (rep->kernel_status != 0) {
    out->status = TUNE_RUN_ERROR;
    snprintf(out->error, sizeof out->error, "kernel '%.100s' failed (%s): %.340s", k->name,
             kiln_status_str((kiln_status)rep->kernel_status), rep->msg);
  } else {
    out->status = TUNE_OK;
    summarize(rep, out);
    if (o.check && reference_outputs) {
      int oi = 0;
      for (int i = 0; i < ps.n; i++) {
        if (!ps.p[i].output) continue;
        const void *ref = reference_outputs[oi++];
        char msg[360];
        if (ref && !compare_output(&ps.p[i], args[i].data, ref, o.rtol, o.atol, o.atol_of_max,
                                   msg, sizeof msg)) {
          out->status = TUNE_WRONG_RESULT;
          snprintf(out->error, sizeof out->error, "kernel '%.100s': %s", k->name, msg);
          break;
        }
      }
    }
  }
  if (out->status != TUNE_OK && out->status != TUNE_WRONG_RESULT) summarize(rep, out);
  if (captured && out->status == TUNE_OK && !(*captured = copy_outputs(ctx, &ps, args)))
    st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "tune_measure: no memory for the outputs");

done:
  if (st != KILN_OK) tune_result_fail(out, TUNE_RUN_ERROR, kiln_context_errmsg(ctx));
  if (fds[0] >= 0) close(fds[0]);
  if (fds[1] >= 0) close(fds[1]);
  if (shared != MAP_FAILED) munmap(shared, shared_bytes);
  if (raw)
    for (int i = 0; i < ps.n; i++)
      if (raw[i]) ir_free(ctx, raw[i], raw_bytes[i]);
  ir_free(ctx, raw, raw_arr);
  ir_free(ctx, raw_bytes, rawb_arr);
  ir_free(ctx, args, args_bytes);
  free_params(ctx, &ps);
  return st;
}

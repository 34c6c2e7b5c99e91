/* ops.c: the op benchmark (bench/run.sh builds and runs it). Measures the machine's fp32 peak
 * with an AVX-512 FMA loop and its memory bandwidth (STREAM-style triad and read), then GEMM
 * (256, 512, 1024) and a 3x3 conv2d, each as kiln kernels (hand-scheduled TIR text from
 * bench/kernels/, and the compiler's own kernels: the Relay op lowered, default-scheduled or
 * scheduled from a tuning database, and JIT-compiled for the host) against OpenBLAS and
 * oneDNN, on 1 and 2 threads, and prints one markdown table (after a small one of the memory
 * bandwidth). Every kiln and oneDNN kernel is checked against OpenBLAS before it is timed.
 *
 * Usage: kiln-bench-ops [--quick] [--db TUNE.db]
 *   --quick      0.1 s of repeats per measurement, not 0.5 s
 *   --db FILE    add "kiln tuned (db)" rows: each benchmarked workload scheduled from the
 *                database's best record (bench/tune_ops.c fills one); without it the rows are
 *                skipped with a note */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#include <immintrin.h>

#ifdef KILN_BENCH_HAVE_DNNL
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#endif

#include "kiln/kiln.h"
#include "kiln/kiln_runtime.h"
#include "autotune/database.h"
#include "ir/transform.h"
#include "relay/build.h"
#include "relay/lower.h"
#include "relay/text.h"
#include "schedule/schedule.h"
#include "target/codegen.h"

#ifndef KILN_BENCH_DIR
#define KILN_BENCH_DIR "bench"
#endif

enum { MAX_REPS = 20000, MAX_THREADS = 2 };

static double min_total_s = 0.5; /* repeats of one measurement run at least this long */
/* The single-thread peak measured first; n threads are compared with n times it (so the
 * 2-thread peak row shows when the second core was busy with something else). */
static double peak1_gflops;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Times of one measurement: median, fastest, slowest (seconds). */
typedef struct timing {
  double med, min, max;
  int reps;
} timing;

/* Runs fn(arg) once to warm up, then repeatedly until min_total_s has passed (at least 3
 * times, at most MAX_REPS), and summarizes the times of the repeats. */
static timing time_it(void (*fn)(void *), void *arg) {
  static double t[MAX_REPS];
  fn(arg);
  int n = 0;
  double total = 0;
  while (n < MAX_REPS && (n < 3 || total < min_total_s)) {
    double t0 = now_s();
    fn(arg);
    t[n] = now_s() - t0;
    total += t[n++];
  }
  qsort(t, (size_t)n, sizeof t[0], cmp_double);
  return (timing){n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2, t[0], t[n - 1], n};
}

static void *xalloc(size_t n) {
  void *p = NULL;
  if (posix_memalign(&p, 64, n ? n : 1) != 0) {
    fprintf(stderr, "out of memory (%zu bytes)\n", n);
    exit(1);
  }
  return p;
}

/* Deterministic values in [-1, 1). */
static void fill(float *x, size_t n, uint32_t seed) {
  uint32_t s = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    x[i] = (float)(s >> 8) / (float)(1u << 23) - 1.0f;
  }
}

/* max |x - ref| / max |ref|: the error relative to the result's scale. */
static double rel_err(const float *x, const float *ref, size_t n) {
  double emax = 0, rmax = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)x[i] - ref[i]);
    if (!(e <= emax)) emax = e; /* NaN counts as the largest error */
    if (fabs(ref[i]) > rmax) rmax = fabs(ref[i]);
  }
  return emax / (rmax > 0 ? rmax : 1);
}

/* ---- Markdown table ---------------------------------------------------------------------- */

static const char TABLE_HEADER[] =
    "| op | size | threads | implementation | median ms | min-max ms | GFLOP/s | % of peak "
    "| speed vs OpenBLAS | speed vs oneDNN |\n"
    "|---|---|---|---|---|---|---|---|---|---|\n";

/* One measured row. blas_med / dnnl_med: the OpenBLAS and oneDNN medians of the same size and
 * thread count (0: no ratio column). */
static void row(const char *op, const char *size, int threads, const char *impl, timing t,
                double flop, double blas_med, double dnnl_med) {
  double gf = flop / t.med * 1e-9;
  char r1[32] = "", r2[32] = "";
  if (blas_med > 0) snprintf(r1, sizeof r1, "%.2f", blas_med / t.med);
  if (dnnl_med > 0) snprintf(r2, sizeof r2, "%.2f", dnnl_med / t.med);
  printf("| %s | %s | %d | %s | %.3f | %.3f-%.3f | %.1f | %.0f%% | %s | %s |\n", op, size,
         threads, impl, t.med * 1e3, t.min * 1e3, t.max * 1e3, gf,
         100 * gf / (peak1_gflops * threads), r1, r2);
  fflush(stdout);
}

/* A row without a measurement: the implementation could not be built, or was skipped; `why`
 * goes in the median column. */
static void row_na(const char *op, const char *size, int threads, const char *impl,
                   const char *why) {
  printf("| %s | %s | %d | %s | %s | | | | | |\n", op, size, threads, impl, why);
  fflush(stdout);
}

/* ---- Peak: independent FMA chains in zmm registers --------------------------------------- */

enum { PEAK_ITERS = 4000000 };

/* 16 independent accumulators (FMA latency 4 x 2 pipes needs at least 8); each iteration is
 * 16 FMAs of 16 lanes = 512 FLOP. Named variables rather than an array, so that the compiler
 * keeps them in registers at any optimization level. The sum goes to *out so that the loop is
 * not removed. */
__attribute__((target("avx512f,fma"))) static void *peak_thread(void *out) {
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  __m512 a0 = _mm512_set1_ps(0.0f), a1 = _mm512_set1_ps(0.1f), a2 = _mm512_set1_ps(0.2f),
         a3 = _mm512_set1_ps(0.3f), a4 = _mm512_set1_ps(0.4f), a5 = _mm512_set1_ps(0.5f),
         a6 = _mm512_set1_ps(0.6f), a7 = _mm512_set1_ps(0.7f), a8 = _mm512_set1_ps(0.8f),
         a9 = _mm512_set1_ps(0.9f), a10 = _mm512_set1_ps(1.0f), a11 = _mm512_set1_ps(1.1f),
         a12 = _mm512_set1_ps(1.2f), a13 = _mm512_set1_ps(1.3f), a14 = _mm512_set1_ps(1.4f),
         a15 = _mm512_set1_ps(1.5f);
  for (long it = 0; it < PEAK_ITERS; it++) {
    a0 = _mm512_fmadd_ps(a0, x, y);
    a1 = _mm512_fmadd_ps(a1, x, y);
    a2 = _mm512_fmadd_ps(a2, x, y);
    a3 = _mm512_fmadd_ps(a3, x, y);
    a4 = _mm512_fmadd_ps(a4, x, y);
    a5 = _mm512_fmadd_ps(a5, x, y);
    a6 = _mm512_fmadd_ps(a6, x, y);
    a7 = _mm512_fmadd_ps(a7, x, y);
    a8 = _mm512_fmadd_ps(a8, x, y);
    a9 = _mm512_fmadd_ps(a9, x, y);
    a10 = _mm512_fmadd_ps(a10, x, y);
    a11 = _mm512_fmadd_ps(a11, x, y);
    a12 = _mm512_fmadd_ps(a12, x, y);
    a13 = _mm512_fmadd_ps(a13, x, y);
    a14 = _mm512_fmadd_ps(a14, x, y);
    a15 = _mm512_fmadd_ps(a15, x, y);
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)),
                                     _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15))));
  *(float *)out = _mm512_reduce_add_ps(s);
  return NULL;
}

static volatile float peak_sink; /* keeps the results alive */

/* One measurement: the calling thread and n - 1 others run the loop at the same time. */
static void peak_run(void *arg) {
  int n = *(int *)arg;
  pthread_t th[MAX_THREADS];
  float out[MAX_THREADS];
  for (int i = 1; i < n; i++) {
    if (pthread_create(&th[i], NULL, peak_thread, &out[i]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      exit(1);
    }
  }
  peak_thread(&out[0]);
  for (int i = 1; i < n; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < n; i++) peak_sink += out[i];
}

static void bench_peak(void) {
  for (int n = 1; n <= MAX_THREADS; n++) {
    timing t = time_it(peak_run, &n);
    double flop = (double)n * PEAK_ITERS * 512;
    if (n == 1) peak1_gflops = flop / t.med * 1e-9;
    row("peak (FMA loop)", "-", n, "C AVX-512, 16 zmm", t, flop, 0, 0);
  }
}

/* ---- Memory bandwidth: STREAM-style triad and read over arrays far larger than the caches -- */

/* 3 arrays of 32 Mi floats (128 MiB each): well beyond L3, so each pass streams from DRAM. */
enum { BW_N = 32 << 20 };

typedef struct bw_job {
  float *a, *b, *c;
  size_t lo, hi; /* the thread's range, a multiple of 16 */
  bool triad;    /* triad a = b + s * c; else a read of b (a sum) */
  float sum;
} bw_job;

/* One thread's share: 16 floats per step with AVX-512 (the range is 64-byte aligned). */
__attribute__((target("avx512f,fma"))) static void *bw_thread(void *p) {
  bw_job *j = p;
  if (j->triad) {
    const __m512 s = _mm512_set1_ps(3.0f);
    for (size_t i = j->lo; i < j->hi; i += 16)
      _mm512_store_ps(j->a + i, _mm512_fmadd_ps(s, _mm512_load_ps(j->c + i),
                                                _mm512_load_ps(j->b + i)));
  } else {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (size_t i = j->lo; i < j->hi; i += 32) {
      s0 = _mm512_add_ps(s0, _mm512_load_ps(j->b + i));
      s1 = _mm512_add_ps(s1, _mm512_load_ps(j->b + i + 16));
    }
    j->sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
  }
  return NULL;
}

typedef struct bw_case {
  float *a, *b, *c;
  int threads;
  bool triad;
} bw_case;

/* One pass: the range split evenly between `threads` threads (the caller is one). */
static void bw_run(void *p) {
  bw_case *bc = p;
  pthread_t th[MAX_THREADS];
  bw_job jobs[MAX_THREADS];
  size_t per = (size_t)BW_N / (size_t)bc->threads;
  for (int t = 0; t < bc->threads; t++)
    jobs[t] = (bw_job){bc->a, bc->b, bc->c, per * (size_t)t,
                       t == bc->threads - 1 ? (size_t)BW_N : per * (size_t)(t + 1), bc->triad, 0};
  for (int t = 1; t < bc->threads; t++) {
    if (pthread_create(&th[t], NULL, bw_thread, &jobs[t]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      exit(1);
    }
  }
  bw_thread(&jobs[0]);
  for (int t = 1; t < bc->threads; t++) pthread_join(th[t], NULL);
  for (int t = 0; t < bc->threads; t++) peak_sink += jobs[t].sum;
}

/* The machine's memory bandwidth, printed as its own small table before the main one:
 * triad (2 arrays read, 1 written: 3 x 128 MiB counted, as STREAM counts) and read-only. */
static void bench_bandwidth(void) {
  bw_case bc = {xalloc((size_t)BW_N * 4), xalloc((size_t)BW_N * 4), xalloc((size_t)BW_N * 4),
                1, true};
  fill(bc.b, BW_N, 5);
  fill(bc.c, BW_N, 6);
  memset(bc.a, 0, (size_t)BW_N * 4); /* touch every page before timing */
  printf("| memory bandwidth | threads | median ms | min-max ms | GB/s (median) |\n"
         "|---|---|---|---|---|\n");
  for (int triad = 1; triad >= 0; triad--)
    for (int n = 1; n <= MAX_THREADS; n++) {
      bc.threads = n;
      bc.triad = triad;
      timing t = time_it(bw_run, &bc);
      double bytes = (triad ? 3.0 : 1.0) * BW_N * 4;
      printf("| %s | %d | %.3f | %.3f-%.3f | %.1f |\n",
             triad ? "triad a = b + s*c (3 x 128 MiB)" : "read sum(b) (128 MiB)", n,
             t.med * 1e3, t.min * 1e3, t.max * 1e3, bytes / t.med * 1e-9);
      fflush(stdout);
    }
  printf("\n");
  free(bc.a);
  free(bc.b);
  free(bc.c);
}

/* ---- kiln kernels -------------------------------------------------------------------------- */

static kiln_context *ctx;
static tgt_jit *jit;
static tune_db *db; /* --db, else NULL */

static void die_kiln(const char *what) {
  fprintf(stderr, "%s: %s (%s)\n", what, kiln_context_errmsg(ctx),
          kiln_status_str(kiln_context_errcode(ctx)));
  exit(1);
}

/* Parses bench/kernels/<file> and adds it to the JIT. */
static void load_kernels(const char *file) {
  char path[1024];
  snprintf(path, sizeof path, "%s/kernels/%s", KILN_BENCH_DIR, file);
  kiln_tir_module *m = NULL;
  if (kiln_tir_module_parse_file(ctx, path, &m)) die_kiln(path);
  if (tgt_jit_add_tir(jit, m)) die_kiln(path);
  kiln_tir_module_free(m);
}

static kiln_kernel_fn lookup(const char *name) {
  kiln_kernel_fn f = NULL;
  if (tgt_jit_lookup(jit, name, &f)) die_kiln(name);
  return f;
}

static kiln_tensor scalar_i32(int32_t *v) {
  return (kiln_tensor){v, 1, 0, 0, KILN_INT32, NULL, NULL, 0};
}

static kiln_tensor tensor_f32(float *data, int ndim, int64_t *shape) {
  return (kiln_tensor){data, 1, 0, ndim, KILN_FLOAT32, shape, NULL, 0};
}

static void call_kernel(kiln_kernel_fn f, const kiln_tensor *args, int nargs, const char *name) {
  int32_t st = f(args, nargs);
  if (st) {
    fprintf(stderr, "%s failed: %s (%s)\n", name, kiln_last_error(),
            kiln_status_str((kiln_status)st));
    exit(1);
  }
}

/* Why a compiler kernel could not be made (the text of a row_na). */
static char why_buf[8][512];
static int why_next;

static const char *why_fmt(const char *fmt, const char *a, const char *b) {
  char *w = why_buf[why_next++ % 8];
  snprintf(w, sizeof why_buf[0], fmt, a, b);
  /* a '|' or newline would break the markdown row */
  for (char *p = w; *p; p++)
    if (*p == '|' || *p == '\n') *p = ' ';
  return w;
}

/* Compiles function main of a Relay module the way the compiler does and returns the kernel
 * (called `name`), or NULL with *why set. Without `from_db`: lowering to TIR, the default
 * schedule rules for the host, the lowering pipeline, the JIT. With `from_db` (db must be
 * open): the tuning database's best record for the workload replayed
 * (relay_build_schedule, as kiln compile --db does); a workload without a record, or whose
 * record does not replay, gives NULL rather than the default schedule. */
static kiln_kernel_fn compile_relay(const char *relay_text, const char *name,
                                    const tgt_target *host, bool from_db, const char **why) {
  relay_module *m = NULL;
  kiln_tir_module *mod = NULL;
  sch_schedule *s = NULL;
  kiln_kernel_fn fn = NULL;
  *why = NULL;
  if (relay_parse_module(ctx, relay_text, strlen(relay_text), &m)) goto fail;
  if (!(mod = ir_module_new(ctx))) goto fail;
  ir_func *pf = NULL, *low = NULL;
  if (relay_lower_func(ctx, mod->arena, relay_module_get(m, "main"), name, &pf)) goto fail;
  if (!from_db) {
    if (!(s = sch_new(ctx, pf, 1))) goto fail;
    sch_target_info ti;
    sch_target_info_from(host, &ti);
    if (sch_apply_default_rules(s, &ti)) goto fail;
    if (ir_lower_func(ctx, mod->arena, s->func, NULL, &low)) goto fail;
  } else {
    relay_workload wk;
    tune_record rec;
    bool found = false;
    memset(&rec, 0, sizeof rec);
    if (relay_workload_key(ctx, mod->arena, pf, &wk)) goto fail;
    if (tune_db_best(db, wk.hash, host->canonical, &rec, &found, NULL)) goto fail;
    tune_record_clear(ctx, &rec);
    if (!found) {
      char hash[32];
      snprintf(hash, sizeof hash, "%016llx", (unsigned long long)wk.hash);
      *why = why_fmt("n/a: the database has no record for workload %s (%s)", hash,
                     wk.summary ? wk.summary : "?");
      goto done;
    }
    relay_schedule_source src;
    const char *warning = NULL;
    if (relay_build_schedule(ctx, mod->arena, pf, wk.hash, host, db, &low, &src, &warning))
      goto fail;
    if (src != RELAY_SCHEDULE_DATABASE) {
      *why = why_fmt("n/a: %s%s", warning ? warning : "the database record was not used", "");
      goto done;
    }
  }
  if (ir_module_add(mod, low)) goto fail;
  if (tgt_jit_add_tir(jit, mod)) goto fail;
  if (tgt_jit_lookup(jit, name, &fn)) goto fail;
  goto done;
fail:
  *why = why_fmt("n/a: %s (%s)", kiln_context_errmsg(ctx),
                 kiln_status_str(kiln_context_errcode(ctx)));
  fprintf(stderr, "%s: %s\n", name, *why);
  ir_clear_error(ctx);
  fn = NULL;
done:
  sch_free(s);
  kiln_tir_module_free(mod);
  relay_module_free(m);
  return fn;
}

/* ---- oneDNN (libdnnl 2.x C API, OpenMP threading) ------------------------------------------ */

#ifdef KILN_BENCH_HAVE_DNNL
static dnnl_engine_t dn_engine;
static dnnl_stream_t dn_stream;

static void dn_check(dnnl_status_t st, const char *what) {
  if (st != dnnl_success) {
    fprintf(stderr, "oneDNN: %s failed: %s\n", what, dnnl_status2str(st));
    exit(1);
  }
}

/* A primitive with its execution arguments. */
typedef struct dn_exec {
  dnnl_primitive_t prim;
  int nargs;
  dnnl_exec_arg_t args[4];
} dn_exec;

static void run_dnnl(void *p) {
  dn_exec *e = p;
  dn_check(dnnl_primitive_execute(e->prim, dn_stream, e->nargs, e->args), "execute");
  dn_check(dnnl_stream_wait(dn_stream), "stream wait");
}

/* The implementation oneDNN picked ("brg:avx512_core", "jit:avx2", ...). */
static const char *dn_impl(const_dnnl_primitive_desc_t pd) {
  const char *s = NULL;
  if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s)
    return "?";
  return s;
}

/* A memory layout in oneDNN's tag notation: the dimensions from outermost to innermost
 * (a = dim 0, ...; upper case when the dimension is also blocked), then the inner blocks,
 * e.g. "aBcd16b" for NCHW with 16-channel blocks. */
static const char *dn_layout(const dnnl_memory_desc_t *md, char *buf, size_t cap) {
  if (md->format_kind != dnnl_blocked) {
    snprintf(buf, cap, "%s", dnnl_fmt_kind2str(md->format_kind));
    return buf;
  }
  const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
  int order[DNNL_MAX_NDIMS], nd = md->ndims, n = 0;
  for (int i = 0; i < nd; i++) order[i] = i;
  for (int i = 0; i < nd; i++) /* outermost first: larger stride first (stable) */
    for (int j = i + 1; j < nd; j++)
      if (b->strides[order[j]] > b->strides[order[i]]) {
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
  for (int i = 0; i < nd && n + 1 < (int)cap; i++) {
    bool blocked = false;
    for (int k = 0; k < b->inner_nblks; k++) blocked |= b->inner_idxs[k] == order[i];
    buf[n++] = (char)((blocked ? 'A' : 'a') + order[i]);
  }
  buf[n] = 0;
  for (int k = 0; k < b->inner_nblks && n < (int)cap; k++)
    n += snprintf(buf + n, cap - (size_t)n, "%lld%c", (long long)b->inner_blks[k],
                  (char)('a' + b->inner_idxs[k]));
  return buf;
}

/* Copies memory `from` into `to` (layouts may differ) with a reorder primitive. */
static void dn_reorder(dnnl_memory_t from, dnnl_memory_t to) {
  const dnnl_memory_desc_t *fmd = NULL, *tmd = NULL;
  dn_check(dnnl_memory_get_memory_desc(from, &fmd), "memory desc");
  dn_check(dnnl_memory_get_memory_desc(to, &tmd), "memory desc");
  dnnl_primitive_desc_t pd;
  dnnl_primitive_t r;
  dn_check(dnnl_reorder_primitive_desc_create(&pd, fmd, dn_engine, tmd, dn_engine, NULL),
           "reorder desc");
  dn_check(dnnl_primitive_create(&r, pd), "reorder");
  dn_exec e = {r, 2, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}};
  run_dnnl(&e);
  dnnl_primitive_destroy(r);
  dnnl_primitive_desc_destroy(pd);
}

static void dn_set_threads(int n) { omp_set_num_threads(n); }
#else
static void dn_set_threads(int n) { (void)n; }
#endif

/* ---- GEMM ---------------------------------------------------------------------------------- */

typedef struct gemm_case {
  int32_t m, n, k;
  float *a, *b, *bt, *c; /* bt: B transposed ([N, K]), the weight of nn.dense */
  int64_t sa[2], sb[2], sbt[2], sc[2];
  kiln_tensor args[6];
  kiln_tensor dense_args[3]; /* a, bt, c */
  kiln_kernel_fn fn;
  const char *name;
  int first_arg; /* 3 for kernels that take only the tensors (shape-specialized) */
  bool dense;    /* the kernel is nn.dense: it takes dense_args */
} gemm_case;

static void run_openblas_gemm(void *p) {
  gemm_case *g = p;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->m, g->n, g->k, 1.0f, g->a, g->k,
              g->b, g->n, 0.0f, g->c, g->n);
}

static void run_kiln_gemm(void *p) {
  gemm_case *g = p;
  if (g->dense) call_kernel(g->fn, g->dense_args, 3, g->name);
  else call_kernel(g->fn, g->args + g->first_arg, 6 - g->first_arg, g->name);
}

/* A kiln GEMM kernel of the table: its row name, function (NULL: why says why not) and
 * calling convention. */
typedef struct gemm_kernel {
  const char *impl;
  kiln_kernel_fn fn;
  int first_arg;
  bool dense;
  const char *why;
  double err;
} gemm_kernel;

/* The tuned GEMM kernel of `size` from the database: the nn.matmul workload's record, else
 * the nn.dense one's (B given transposed; bench/tune_ops.c tunes dense). */
static gemm_kernel tuned_gemm(int size, const tgt_target *host) {
  gemm_kernel k = {"kiln tuned (db)", NULL, 3, false, NULL, 0};
  char text[256], kname[64];
  snprintf(text, sizeof text,
           "def @main(%%a: Tensor[(%d, %d), float32], %%b: Tensor[(%d, %d), float32]) {\n"
           "  nn.matmul(%%a, %%b)\n}\n", size, size, size, size);
  snprintf(kname, sizeof kname, "gemm_tuned_%d", size);
  const char *why_matmul = NULL;
  if ((k.fn = compile_relay(text, kname, host, true, &why_matmul))) return k;
  snprintf(text, sizeof text,
           "def @main(%%a: Tensor[(%d, %d), float32], %%w: Tensor[(%d, %d), float32]) {\n"
           "  nn.dense(%%a, %%w)\n}\n", size, size, size, size);
  snprintf(kname, sizeof kname, "dense_tuned_%d", size);
  if ((k.fn = compile_relay(text, kname, host, true, &k.why))) {
    k.impl = "kiln tuned (db, nn.dense)";
    k.dense = true;
    k.why = NULL;
  } else {
    /* both reasons, "n/a: " said once */
    const char *dense_why = strncmp(k.why, "n/a: ", 5) ? k.why : k.why + 5;
    k.why = why_fmt("%s; nor nn.dense: %s", why_matmul, dense_why);
    fprintf(stderr, "gemm %d: no tuned kernel: %s\n", size, k.why);
  }
  return k;
}

#ifdef KILN_BENCH_HAVE_DNNL
/* The oneDNN matmul row on `threads` threads: the same row-major (plain) A, B and C as
 * OpenBLAS. The primitive is made for each thread count (oneDNN fixes its work split when it
 * makes a primitive: one made for 2 OpenMP threads and run on 1 is many times slower) and
 * checked before it is timed. Returns the median (s). */
static double bench_dnnl_matmul(gemm_case *g, const float *ref, int threads, double flop,
                                double blas_med) {
  size_t nc = (size_t)g->m * g->n;
  dnnl_memory_desc_t amd, bmd, cmd;
  dnnl_dims_t da = {g->m, g->k}, db_ = {g->k, g->n}, dc = {g->m, g->n};
  dn_check(dnnl_memory_desc_init_by_tag(&amd, 2, da, dnnl_f32, dnnl_ab), "md");
  dn_check(dnnl_memory_desc_init_by_tag(&bmd, 2, db_, dnnl_f32, dnnl_ab), "md");
  dn_check(dnnl_memory_desc_init_by_tag(&cmd, 2, dc, dnnl_f32, dnnl_ab), "md");
  dnnl_matmul_desc_t mmd;
  dnnl_primitive_desc_t mpd;
  dn_set_threads(threads);
  dn_check(dnnl_matmul_desc_init(&mmd, &amd, &bmd, NULL, &cmd), "matmul desc");
  dn_check(dnnl_primitive_desc_create(&mpd, &mmd, NULL, dn_engine, NULL), "matmul pd");
  dn_exec me = {NULL, 3, {{0}}};
  dn_check(dnnl_primitive_create(&me.prim, mpd), "matmul");
  dnnl_memory_t am, bm, cm;
  dn_check(dnnl_memory_create(&am, &amd, dn_engine, g->a), "memory");
  dn_check(dnnl_memory_create(&bm, &bmd, dn_engine, g->b), "memory");
  dn_check(dnnl_memory_create(&cm, &cmd, dn_engine, g->c), "memory");
  me.args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, am};
  me.args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, bm};
  me.args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, cm};
  memset(g->c, 0xff, nc * 4);
  run_dnnl(&me);
  double derr = rel_err(g->c, ref, nc);
  fprintf(stderr, "gemm %d: oneDNN matmul (%s, %d threads): max relative error %.2g\n", g->m,
          dn_impl(mpd), threads, derr);
  if (!(derr < 1e-5)) {
    fprintf(stderr, "gemm %d: oneDNN matmul is wrong: max error %.3g\n", g->m, derr);
    exit(1);
  }
  char sz[32];
  snprintf(sz, sizeof sz, "%d", g->m);
  timing td = time_it(run_dnnl, &me);
  row("gemm", sz, threads, "oneDNN matmul", td, flop, blas_med, 0);
  dnnl_memory_destroy(am);
  dnnl_memory_destroy(bm);
  dnnl_memory_destroy(cm);
  dnnl_primitive_destroy(me.prim);
  dnnl_primitive_desc_destroy(mpd);
  return td.med;
}
#endif

static void bench_gemm(int size, kiln_kernel_fn naive, kiln_kernel_fn tiled,
                       const tgt_target *host) {
  char text[256], kname[64];
  snprintf(text, sizeof text,
           "def @main(%%a: Tensor[(%d, %d), float32], %%b: Tensor[(%d, %d), float32]) {\n"
           "  nn.matmul(%%a, %%b)\n}\n", size, size, size, size);
  snprintf(kname, sizeof kname, "gemm_default_%d", size);
  gemm_kernel kk[4] = {{"kiln naive", naive, 0, false, NULL, 0},
                       {"kiln hand-scheduled", tiled, 0, false, NULL, 0},
                       {"kiln default schedule", NULL, 3, false, NULL, 0}};
  kk[2].fn = compile_relay(text, kname, host, false, &kk[2].why);
  int nk = 3;
  if (db) kk[nk++] = tuned_gemm(size, host);

  gemm_case g = {.m = size, .n = size, .k = size};
  size_t na = (size_t)g.m * g.k, nb = (size_t)g.k * g.n, nc = (size_t)g.m * g.n;
  g.a = xalloc(na * 4);
  g.b = xalloc(nb * 4);
  g.bt = xalloc(nb * 4);
  g.c = xalloc(nc * 4);
  float *ref = xalloc(nc * 4);
  fill(g.a, na, 1);
  fill(g.b, nb, 2);
  for (int i = 0; i < g.k; i++)
    for (int j = 0; j < g.n; j++) g.bt[(size_t)j * g.k + i] = g.b[(size_t)i * g.n + j];
  g.sa[0] = g.m, g.sa[1] = g.k, g.sb[0] = g.k, g.sb[1] = g.n, g.sc[0] = g.m, g.sc[1] = g.n;
  g.sbt[0] = g.n, g.sbt[1] = g.k;
  g.args[0] = scalar_i32(&g.m);
  g.args[1] = scalar_i32(&g.n);
  g.args[2] = scalar_i32(&g.k);
  g.args[3] = tensor_f32(g.a, 2, g.sa);
  g.args[4] = tensor_f32(g.b, 2, g.sb);
  g.args[5] = tensor_f32(g.c, 2, g.sc);
  g.dense_args[0] = g.args[3];
  g.dense_args[1] = tensor_f32(g.bt, 2, g.sbt);
  g.dense_args[2] = g.args[5];
  double flop = 2.0 * g.m * g.n * g.k;
  char sz[32];
  snprintf(sz, sizeof sz, "%d", size);

  /* the reference result, then the correctness of every kiln kernel */
  openblas_set_num_threads(1);
  gemm_case r = g;
  r.c = ref;
  run_openblas_gemm(&r);
  for (int i = 0; i < nk; i++) {
    if (!kk[i].fn) continue;
    memset(g.c, 0xff, nc * 4); /* NaN: every element must be written */
    g.fn = kk[i].fn;
    g.name = kk[i].impl;
    g.first_arg = kk[i].first_arg;
    g.dense = kk[i].dense;
    run_kiln_gemm(&g);
    kk[i].err = rel_err(g.c, ref, nc);
    if (!(kk[i].err < 1e-5)) {
      fprintf(stderr, "gemm %d: %s is wrong: max error %.3g (relative to max |C|)\n", size,
              kk[i].impl, kk[i].err);
      exit(1);
    }
    fprintf(stderr, "gemm %d: %s: max relative error %.2g\n", size, kk[i].impl, kk[i].err);
  }


  for (int threads = 1; threads <= MAX_THREADS; threads++) {
    openblas_set_num_threads(threads);
    kiln_rt_set_num_threads(threads);
    dn_set_threads(threads);
    timing tb = time_it(run_openblas_gemm, &g);
    row("gemm", sz, threads, "OpenBLAS sgemm", tb, flop, 0, 0);
    double dmed = 0;
#ifdef KILN_BENCH_HAVE_DNNL
    dmed = bench_dnnl_matmul(&g, ref, threads, flop, tb.med);
#else
    row_na("gemm", sz, threads, "oneDNN matmul", "n/a: not built with oneDNN (libdnnl-dev)");
#endif
    for (int i = 0; i < nk; i++) {
      if (!kk[i].fn) {
        row_na("gemm", sz, threads, kk[i].impl, kk[i].why);
        continue;
      }
      g.fn = kk[i].fn;
      g.name = kk[i].impl;
      g.first_arg = kk[i].first_arg;
      g.dense = kk[i].dense;
      row("gemm", sz, threads, kk[i].impl, time_it(run_kiln_gemm, &g), flop, tb.med, dmed);
    }
  }
  free(g.a);
  free(g.b);
  free(g.bt);
  free(g.c);
  free(ref);
}

/* ---- conv2d -------------------------------------------------------------------------------- */

/* N = 1, C -> K channels, R x S kernel, H x W image, pad 1, stride 1 (the shape of
 * bench/kernels/conv2d_direct.tir). */
enum { CV_C = 64, CV_K = 64, CV_H = 56, CV_W = 56, CV_R = 3, CV_S = 3, CV_PAD = 1 };

typedef struct conv_case {
  float *x, *w, *o;
  float *w_hwio; /* the weights as [R][S][C][K] (kernel_layout "HWIO") */
  float *col;    /* im2col matrix [C*R*S][H*W] of the reference */
  int64_t sx[4], sw[4], sw_hwio[4], so[4];
  kiln_tensor args[3];      /* x, w (OIHW), o */
  kiln_tensor args_hwio[3]; /* x, w_hwio, o */
  kiln_kernel_fn fn;
  bool hwio; /* fn takes args_hwio */
} conv_case;

/* The reference: col[(c, r, s)][(h, w)] = X[c, h + r - 1, w + s - 1] (0 outside), then
 * O[K][H*W] = W[K][C*R*S] * col with OpenBLAS. Rows are copied with memcpy, borders zeroed. */
static void run_im2col_sgemm(void *p) {
  conv_case *cv = p;
  for (int c = 0; c < CV_C; c++)
    for (int r = 0; r < CV_R; r++)
      for (int s = 0; s < CV_S; s++) {
        float *dst = cv->col + (size_t)((c * CV_R + r) * CV_S + s) * CV_H * CV_W;
        int w0 = CV_PAD - s > 0 ? CV_PAD - s : 0;             /* first valid output column */
        int w1 = CV_W + CV_PAD - s < CV_W ? CV_W + CV_PAD - s : CV_W; /* one past the last */
        for (int h = 0; h < CV_H; h++) {
          float *d = dst + (size_t)h * CV_W;
          int ih = h + r - CV_PAD;
          if (ih < 0 || ih >= CV_H) {
            memset(d, 0, CV_W * sizeof *d);
            continue;
          }
          for (int w = 0; w < w0; w++) d[w] = 0;
          memcpy(d + w0, cv->x + ((size_t)c * CV_H + ih) * CV_W + (w0 + s - CV_PAD),
                 (size_t)(w1 - w0) * sizeof *d);
          for (int w = w1; w < CV_W; w++) d[w] = 0;
        }
      }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, CV_K, CV_H * CV_W, CV_C * CV_R * CV_S,
              1.0f, cv->w, CV_C * CV_R * CV_S, cv->col, CV_H * CV_W, 0.0f, cv->o, CV_H * CV_W);
}

static void run_kiln_conv(void *p) {
  conv_case *cv = p;
  call_kernel(cv->fn, cv->hwio ? cv->args_hwio : cv->args, 3, "conv2d");
}

/* A kiln conv2d kernel of the table (fn NULL: why says why not). */
typedef struct conv_kernel {
  const char *impl;
  kiln_kernel_fn fn;
  bool hwio;
  const char *why;
} conv_kernel;

/* The conv as Relay text; OIHW weights, or HWIO ones (kernel_layout "HWIO"). */
static void conv_text(char *text, size_t cap, bool hwio) {
  if (!hwio)
    snprintf(text, cap,
             "def @main(%%x: Tensor[(1, %d, %d, %d), float32], %%w: Tensor[(%d, %d, %d, %d), float32]) {\n"
             "  nn.conv2d(%%x, %%w, padding=[%d, %d, %d, %d])\n}\n",
             CV_C, CV_H, CV_W, CV_K, CV_C, CV_R, CV_S, CV_PAD, CV_PAD, CV_PAD, CV_PAD);
  else
    snprintf(text, cap,
             "def @main(%%x: Tensor[(1, %d, %d, %d), float32], %%w: Tensor[(%d, %d, %d, %d), float32]) {\n"
             "  nn.conv2d(%%x, %%w, padding=[%d, %d, %d, %d], kernel_layout=\"HWIO\")\n}\n",
             CV_C, CV_H, CV_W, CV_R, CV_S, CV_C, CV_K, CV_PAD, CV_PAD, CV_PAD, CV_PAD);
}

#ifdef KILN_BENCH_HAVE_DNNL
/* The oneDNN convolution row on `threads` threads, with the layouts it prefers (format
 * "any"): X and W are reordered into them before timing; only the convolution's execute is
 * timed; its output is reordered back to NCHW for the check. Made per thread count, as the
 * matmul. Returns the median (s). */
static double bench_dnnl_conv(conv_case *cv, const float *ref, int threads, double flop,
                              double blas_med) {
  size_t no = (size_t)CV_K * CV_H * CV_W;
  dnnl_memory_desc_t xmd, wmd, omd, xany, wany, oany;
  dnnl_dims_t dx = {1, CV_C, CV_H, CV_W}, dw = {CV_K, CV_C, CV_R, CV_S},
              dout = {1, CV_K, CV_H, CV_W}, strides = {1, 1}, pad = {CV_PAD, CV_PAD};
  dn_check(dnnl_memory_desc_init_by_tag(&xmd, 4, dx, dnnl_f32, dnnl_nchw), "md");
  dn_check(dnnl_memory_desc_init_by_tag(&wmd, 4, dw, dnnl_f32, dnnl_oihw), "md");
  dn_check(dnnl_memory_desc_init_by_tag(&omd, 4, dout, dnnl_f32, dnnl_nchw), "md");
  dn_check(dnnl_memory_desc_init_by_tag(&xany, 4, dx, dnnl_f32, dnnl_format_tag_any), "md");
  dn_check(dnnl_memory_desc_init_by_tag(&wany, 4, dw, dnnl_f32, dnnl_format_tag_any), "md");
  dn_check(dnnl_memory_desc_init_by_tag(&oany, 4, dout, dnnl_f32, dnnl_format_tag_any), "md");
  dn_set_threads(threads);
  dnnl_convolution_desc_t cd;
  dnnl_primitive_desc_t cpd;
  dn_check(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_auto,
                                              &xany, &wany, NULL, &oany, strides, pad, pad),
           "convolution desc");
  dn_check(dnnl_primitive_desc_create(&cpd, &cd, NULL, dn_engine, NULL), "convolution pd");
  const dnnl_memory_desc_t *xq = dnnl_primitive_desc_query_md(cpd, dnnl_query_src_md, 0),
                           *wq = dnnl_primitive_desc_query_md(cpd, dnnl_query_weights_md, 0),
                           *oq = dnnl_primitive_desc_query_md(cpd, dnnl_query_dst_md, 0);
  dnnl_memory_t xu, wu, ou, xm, wm, om;
  dn_check(dnnl_memory_create(&xu, &xmd, dn_engine, cv->x), "memory");
  dn_check(dnnl_memory_create(&wu, &wmd, dn_engine, cv->w), "memory");
  dn_check(dnnl_memory_create(&ou, &omd, dn_engine, cv->o), "memory");
  dn_check(dnnl_memory_create(&xm, xq, dn_engine, DNNL_MEMORY_ALLOCATE), "memory");
  dn_check(dnnl_memory_create(&wm, wq, dn_engine, DNNL_MEMORY_ALLOCATE), "memory");
  dn_check(dnnl_memory_create(&om, oq, dn_engine, DNNL_MEMORY_ALLOCATE), "memory");
  dn_reorder(xu, xm);
  dn_reorder(wu, wm);
  dn_exec ce = {NULL, 3, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, om}}};
  dn_check(dnnl_primitive_create(&ce.prim, cpd), "convolution");
  memset(cv->o, 0xff, no * 4);
  run_dnnl(&ce);
  dn_reorder(om, ou);
  double derr = rel_err(cv->o, ref, no);
  char lx[64], lw[64], lo[64];
  fprintf(stderr, "conv2d: oneDNN convolution (%s, %d threads; layouts src %s, weights %s, "
          "dst %s): max relative error %.2g\n", dn_impl(cpd), threads,
          dn_layout(xq, lx, sizeof lx), dn_layout(wq, lw, sizeof lw),
          dn_layout(oq, lo, sizeof lo), derr);
  if (!(derr < 1e-5)) {
    fprintf(stderr, "conv2d: oneDNN convolution is wrong: max error %.3g\n", derr);
    exit(1);
  }
  char name[192];
  snprintf(name, sizeof name, "oneDNN conv (%s, src %s, wei %s; execute only)", dn_impl(cpd),
           lx, lw);
  timing td = time_it(run_dnnl, &ce);
  row("conv2d", "64->64 3x3 56x56", threads, name, td, flop, blas_med, 0);
  dnnl_memory_t mems[6] = {xu, wu, ou, xm, wm, om};
  for (int i = 0; i < 6; i++) dnnl_memory_destroy(mems[i]);
  dnnl_primitive_destroy(ce.prim);
  dnnl_primitive_desc_destroy(cpd);
  return td.med;
}
#endif

static void bench_conv(kiln_kernel_fn direct, const tgt_target *host) {
  char text[512];
  conv_kernel kk[6] = {{"kiln hand-scheduled direct", direct, false, NULL},
                       {"kiln default schedule", NULL, false, NULL},
                       {"kiln default schedule (HWIO weights)", NULL, true, NULL}};
  int nk = 3;
  conv_text(text, sizeof text, false);
  kk[1].fn = compile_relay(text, "conv2d_default", host, false, &kk[1].why);
  conv_text(text, sizeof text, true);
  kk[2].fn = compile_relay(text, "conv2d_hwio_default", host, false, &kk[2].why);
  if (db) {
    /* the tuned OIHW conv and the tuned HWIO conv: a row for each the database has, or one
     * n/a row saying that it has neither */
    conv_kernel t1 = {"kiln tuned (db)", NULL, false, NULL};
    conv_kernel t2 = {"kiln tuned (db, HWIO weights)", NULL, true, NULL};
    conv_text(text, sizeof text, false);
    t1.fn = compile_relay(text, "conv2d_tuned", host, true, &t1.why);
    conv_text(text, sizeof text, true);
    t2.fn = compile_relay(text, "conv2d_hwio_tuned", host, true, &t2.why);
    if (t1.fn || !t2.fn) kk[nk++] = t1;
    if (t2.fn) kk[nk++] = t2;
    if (!t2.fn) fprintf(stderr, "conv2d: HWIO tuned: %s\n", t2.why);
  }

  conv_case cv = {0};
  size_t nx = (size_t)CV_C * CV_H * CV_W, nw = (size_t)CV_K * CV_C * CV_R * CV_S,
         no = (size_t)CV_K * CV_H * CV_W;
  cv.x = xalloc(nx * 4);
  cv.w = xalloc(nw * 4);
  cv.w_hwio = xalloc(nw * 4);
  cv.o = xalloc(no * 4);
  cv.col = xalloc((size_t)CV_C * CV_R * CV_S * CV_H * CV_W * 4);
  float *ref = xalloc(no * 4);
  fill(cv.x, nx, 3);
  fill(cv.w, nw, 4);
  /* HWIO weights: what the compiler makes of constant OIHW weights, done once, untimed */
  for (int k = 0; k < CV_K; k++)
    for (int c = 0; c < CV_C; c++)
      for (int r = 0; r < CV_R; r++)
        for (int s = 0; s < CV_S; s++)
          cv.w_hwio[((size_t)(r * CV_S + s) * CV_C + c) * CV_K + k] =
              cv.w[((size_t)(k * CV_C + c) * CV_R + r) * CV_S + s];
  int64_t sx[4] = {1, CV_C, CV_H, CV_W}, sw[4] = {CV_K, CV_C, CV_R, CV_S},
          swh[4] = {CV_R, CV_S, CV_C, CV_K}, so[4] = {1, CV_K, CV_H, CV_W};
  memcpy(cv.sx, sx, sizeof sx);
  memcpy(cv.sw, sw, sizeof sw);
  memcpy(cv.sw_hwio, swh, sizeof swh);
  memcpy(cv.so, so, sizeof so);
  cv.args[0] = tensor_f32(cv.x, 4, cv.sx);
  cv.args[1] = tensor_f32(cv.w, 4, cv.sw);
  cv.args[2] = tensor_f32(cv.o, 4, cv.so);
  cv.args_hwio[0] = cv.args[0];
  cv.args_hwio[1] = tensor_f32(cv.w_hwio, 4, cv.sw_hwio);
  cv.args_hwio[2] = cv.args[2];
  double flop = 2.0 * CV_K * CV_C * CV_R * CV_S * CV_H * CV_W;
  const char *sz = "64->64 3x3 56x56";

  openblas_set_num_threads(1);
  conv_case r = cv;
  r.o = ref;
  run_im2col_sgemm(&r);
  for (int i = 0; i < nk; i++) {
    if (!kk[i].fn) continue;
    memset(cv.o, 0xff, no * 4);
    cv.fn = kk[i].fn;
    cv.hwio = kk[i].hwio;
    run_kiln_conv(&cv);
    double err = rel_err(cv.o, ref, no);
    if (!(err < 1e-5)) {
      fprintf(stderr, "conv2d: %s is wrong: max error %.3g (relative to max |O|)\n",
              kk[i].impl, err);
      exit(1);
    }
    fprintf(stderr, "conv2d: %s: max relative error %.2g\n", kk[i].impl, err);
  }


  for (int threads = 1; threads <= MAX_THREADS; threads++) {
    openblas_set_num_threads(threads);
    kiln_rt_set_num_threads(threads);
    dn_set_threads(threads);
    timing tb = time_it(run_im2col_sgemm, &cv);
    row("conv2d", sz, threads, "im2col + OpenBLAS", tb, flop, 0, 0);
    double dmed = 0;
#ifdef KILN_BENCH_HAVE_DNNL
    dmed = bench_dnnl_conv(&cv, ref, threads, flop, tb.med);
#else
    row_na("conv2d", sz, threads, "oneDNN conv", "n/a: not built with oneDNN (libdnnl-dev)");
#endif
    for (int i = 0; i < nk; i++) {
      if (!kk[i].fn) {
        row_na("conv2d", sz, threads, kk[i].impl, kk[i].why);
        continue;
      }
      cv.fn = kk[i].fn;
      cv.hwio = kk[i].hwio;
      row("conv2d", sz, threads, kk[i].impl, time_it(run_kiln_conv, &cv), flop, tb.med, dmed);
    }
  }
  free(cv.x);
  free(cv.w);
  free(cv.w_hwio);
  free(cv.o);
  free(cv.col);
  free(ref);
}

int main(int argc, char **argv) {
  const char *db_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) {
      min_total_s = 0.1;
    } else if (!strcmp(argv[i], "--db") && i + 1 < argc) {
      db_path = argv[++i];
    } else {
      fprintf(stderr, "usage: %s [--quick] [--db TUNE.db]\n", argv[0]);
      return 2;
    }
  }
  if (kiln_context_new(&ctx)) return 1;
  if (db_path) {
    FILE *f = fopen(db_path, "rb"); /* tune_db_open would create a missing file */
    if (!f) {
      fprintf(stderr, "kiln-bench-ops: cannot read the database %s\n", db_path);
      return 1;
    }
    fclose(f);
    if (tune_db_open(ctx, db_path, &db)) die_kiln(db_path);
  }
  tgt_target host;
  if (tgt_target_host(ctx, &host)) die_kiln("host target");
  if (tgt_jit_new(ctx, &host, &jit)) die_kiln("jit");
  load_kernels("gemm_naive.tir");
  load_kernels("gemm_tiled.tir");
  load_kernels("conv2d_direct.tir");
  kiln_kernel_fn naive = lookup("gemm_naive"), tiled = lookup("gemm_tiled"),
                 conv = lookup("conv2d_direct");
#ifdef KILN_BENCH_HAVE_DNNL
  dn_check(dnnl_engine_create(&dn_engine, dnnl_cpu, 0), "engine");
  dn_check(dnnl_stream_create(&dn_stream, dn_engine, dnnl_stream_default_flags), "stream");
#endif

  double load[3] = {0};
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
    fclose(f);
  }
  printf("kiln target: `%s`  \nOpenBLAS: %s  \n", host.canonical, openblas_get_config());
#ifdef KILN_BENCH_HAVE_DNNL
  const dnnl_version_t *v = dnnl_version();
  printf("oneDNN: %d.%d.%d, CPU runtime OpenMP, ISA it uses: %s  \n", v->major, v->minor,
         v->patch, dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()));
#else
  printf("oneDNN: not built (libdnnl-dev missing)  \n");
#endif
  printf("tuning database: %s  \n", db_path ? db_path : "none (no kiln tuned rows; --db FILE)");
  printf("load average before the run: %.2f %.2f %.2f (%s mode)\n\n", load[0], load[1],
         load[2], min_total_s < 0.5 ? "quick" : "full");
  bench_bandwidth();
  fputs(TABLE_HEADER, stdout);
  bench_peak();
  for (int s = 256; s <= 1024; s *= 2) bench_gemm(s, naive, tiled, &host);
  bench_conv(conv, &host);

#ifdef KILN_BENCH_HAVE_DNNL
  dnnl_stream_destroy(dn_stream);
  dnnl_engine_destroy(dn_engine);
#endif
  tgt_jit_free(jit);
  tune_db_close(db);
  kiln_context_free(ctx);
  return 0;
}

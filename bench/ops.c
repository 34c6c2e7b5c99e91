/* ops.c: the op benchmark (bench/run.sh builds and runs it). Measures the machine's fp32 peak
 * with an AVX-512 FMA loop, then GEMM (256, 512, 1024) and a 3x3 conv2d, each as kiln
 * kernels (hand-scheduled TIR text from bench/kernels/, and the compiler's own kernels: the
 * Relay op lowered, default-scheduled and JIT-compiled for the host) against OpenBLAS, on 1 and
 * 2 threads, and prints one markdown table. Every kiln kernel is checked against OpenBLAS
 * before it is timed.
 *
 * Usage: kiln-bench-ops [--quick]   (--quick: 0.1 s of repeats per measurement, not 0.5 s) */
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

#include "kiln/kiln.h"
#include "kiln/kiln_runtime.h"
#include "ir/transform.h"
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

static void row(const char *op, const char *size, int threads, const char *impl, timing t,
                double flop, double base_med) {
  double gf = flop / t.med * 1e-9;
  char ratio[32] = "";
  if (base_med > 0) snprintf(ratio, sizeof ratio, "%.2f", base_med / t.med);
  printf("| %s | %s | %d | %s | %.3f | %.3f-%.3f | %.1f | %.0f%% | %s |\n", op, size, threads,
         impl, t.med * 1e3, t.min * 1e3, t.max * 1e3, gf, 100 * gf / (peak1_gflops * threads),
         ratio);
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
    row("peak (FMA loop)", "-", n, "C AVX-512, 16 zmm", t, flop, 0);
  }
}

/* ---- kiln kernels -------------------------------------------------------------------------- */

static kiln_context *ctx;
static tgt_jit *jit;

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

/* Compiles function main of a Relay module the way the compiler does without tuning:
 * lowering to TIR, the default schedule rules for the host, the lowering pipeline, the JIT.
 * The kernel is called `name`. */
static kiln_kernel_fn compile_default(const char *relay_text, const char *name,
                                      const tgt_target *host) {
  relay_module *m = NULL;
  if (relay_parse_module(ctx, relay_text, strlen(relay_text), &m)) die_kiln(name);
  kiln_tir_module *mod = ir_module_new(ctx);
  if (!mod) die_kiln(name);
  ir_func *pf = NULL, *low = NULL;
  if (relay_lower_func(ctx, mod->arena, relay_module_get(m, "main"), name, &pf)) die_kiln(name);
  sch_schedule *s = sch_new(ctx, pf, 1);
  if (!s) die_kiln(name);
  sch_target_info ti;
  sch_target_info_from(host, &ti);
  if (sch_apply_default_rules(s, &ti)) die_kiln(name);
  if (ir_lower_func(ctx, mod->arena, s->func, NULL, &low)) die_kiln(name);
  if (ir_module_add(mod, low)) die_kiln(name);
  if (tgt_jit_add_tir(jit, mod)) die_kiln(name);
  sch_free(s);
  kiln_tir_module_free(mod);
  relay_module_free(m);
  return lookup(name);
}

/* ---- GEMM ---------------------------------------------------------------------------------- */

typedef struct gemm_case {
  int32_t m, n, k;
  float *a, *b, *c;
  int64_t sa[2], sb[2], sc[2];
  kiln_tensor args[6];
  kiln_kernel_fn fn;
  const char *name;
  int first_arg; /* 3 for kernels that take only the tensors (shape-specialized) */
} gemm_case;

static void run_openblas_gemm(void *p) {
  gemm_case *g = p;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->m, g->n, g->k, 1.0f, g->a, g->k,
              g->b, g->n, 0.0f, g->c, g->n);
}

static void run_kiln_gemm(void *p) {
  gemm_case *g = p;
  call_kernel(g->fn, g->args + g->first_arg, 6 - g->first_arg, g->name);
}

static void bench_gemm(int size, kiln_kernel_fn naive, kiln_kernel_fn tiled, const tgt_target *host) {
  char text[256], kname[64];
  snprintf(text, sizeof text,
           "def @main(%%a: Tensor[(%d, %d), float32], %%b: Tensor[(%d, %d), float32]) {\n"
           "  nn.matmul(%%a, %%b)\n}\n", size, size, size, size);
  snprintf(kname, sizeof kname, "gemm_default_%d", size);
  kiln_kernel_fn deflt = compile_default(text, kname, host);
  gemm_case g = {.m = size, .n = size, .k = size};
  size_t na = (size_t)g.m * g.k, nb = (size_t)g.k * g.n, nc = (size_t)g.m * g.n;
  g.a = xalloc(na * 4);
  g.b = xalloc(nb * 4);
  g.c = xalloc(nc * 4);
  float *ref = xalloc(nc * 4);
  fill(g.a, na, 1);
  fill(g.b, nb, 2);
  g.sa[0] = g.m, g.sa[1] = g.k, g.sb[0] = g.k, g.sb[1] = g.n, g.sc[0] = g.m, g.sc[1] = g.n;
  g.args[0] = scalar_i32(&g.m);
  g.args[1] = scalar_i32(&g.n);
  g.args[2] = scalar_i32(&g.k);
  g.args[3] = tensor_f32(g.a, 2, g.sa);
  g.args[4] = tensor_f32(g.b, 2, g.sb);
  g.args[5] = tensor_f32(g.c, 2, g.sc);
  double flop = 2.0 * g.m * g.n * g.k;
  char sz[32];
  snprintf(sz, sizeof sz, "%d", size);

  /* the reference result, then the correctness of both kiln kernels */
  openblas_set_num_threads(1);
  gemm_case r = g;
  r.c = ref;
  run_openblas_gemm(&r);
  struct {
    const char *impl;
    kiln_kernel_fn fn;
    int first_arg;
    double err;
  } kk[3] = {{"kiln naive", naive, 0, 0}, {"kiln hand-scheduled", tiled, 0, 0},
             {"kiln default schedule", deflt, 3, 0}};
  for (int i = 0; i < 3; i++) {
    memset(g.c, 0xff, nc * 4); /* NaN: every element must be written */
    g.fn = kk[i].fn;
    g.name = kk[i].impl;
    g.first_arg = kk[i].first_arg;
    run_kiln_gemm(&g);
    kk[i].err = rel_err(g.c, ref, nc);
    if (!(kk[i].err < 1e-5)) {
      fprintf(stderr, "gemm %d: %s is wrong: max error %.3g (relative to max |C|)\n", size,
              kk[i].impl, kk[i].err);
      exit(1);
    }
  }
  fprintf(stderr, "gemm %d: max relative error naive %.2g, hand-scheduled %.2g, default %.2g\n",
          size, kk[0].err, kk[1].err, kk[2].err);

  for (int threads = 1; threads <= MAX_THREADS; threads++) {
    openblas_set_num_threads(threads);
    kiln_rt_set_num_threads(threads);
    timing tb = time_it(run_openblas_gemm, &g);
    row("gemm", sz, threads, "OpenBLAS sgemm", tb, flop, 0);
    for (int i = 0; i < 3; i++) {
      g.fn = kk[i].fn;
      g.name = kk[i].impl;
      g.first_arg = kk[i].first_arg;
      row("gemm", sz, threads, kk[i].impl, time_it(run_kiln_gemm, &g), flop, tb.med);
    }
  }
  free(g.a);
  free(g.b);
  free(g.c);
  free(ref);
}

/* ---- conv2d -------------------------------------------------------------------------------- */

/* N = 1, C -> K channels, R x S kernel, H x W image, pad 1, stride 1 (the shape of
 * bench/kernels/conv2d_direct.tir). */
enum { CV_C = 64, CV_K = 64, CV_H = 56, CV_W = 56, CV_R = 3, CV_S = 3, CV_PAD = 1 };

typedef struct conv_case {
  float *x, *w, *o;
  float *col; /* im2col matrix [C*R*S][H*W] of the reference */
  int64_t sx[4], sw[4], so[4];
  kiln_tensor args[3];
  kiln_kernel_fn fn;
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
  call_kernel(cv->fn, cv->args, 3, "conv2d_direct");
}

static void bench_conv(kiln_kernel_fn fn, const tgt_target *host) {
  char text[512];
  snprintf(text, sizeof text,
           "def @main(%%x: Tensor[(1, %d, %d, %d), float32], %%w: Tensor[(%d, %d, %d, %d), float32]) {\n"
           "  nn.conv2d(%%x, %%w, padding=[%d, %d, %d, %d])\n}\n",
           CV_C, CV_H, CV_W, CV_K, CV_C, CV_R, CV_S, CV_PAD, CV_PAD, CV_PAD, CV_PAD);
  kiln_kernel_fn deflt = compile_default(text, "conv2d_default", host);
  conv_case cv = {.fn = fn};
  size_t nx = (size_t)CV_C * CV_H * CV_W, nw = (size_t)CV_K * CV_C * CV_R * CV_S,
         no = (size_t)CV_K * CV_H * CV_W;
  cv.x = xalloc(nx * 4);
  cv.w = xalloc(nw * 4);
  cv.o = xalloc(no * 4);
  cv.col = xalloc((size_t)CV_C * CV_R * CV_S * CV_H * CV_W * 4);
  float *ref = xalloc(no * 4);
  fill(cv.x, nx, 3);
  fill(cv.w, nw, 4);
  int64_t sx[4] = {1, CV_C, CV_H, CV_W}, sw[4] = {CV_K, CV_C, CV_R, CV_S},
          so[4] = {1, CV_K, CV_H, CV_W};
  memcpy(cv.sx, sx, sizeof sx);
  memcpy(cv.sw, sw, sizeof sw);
  memcpy(cv.so, so, sizeof so);
  cv.args[0] = tensor_f32(cv.x, 4, cv.sx);
  cv.args[1] = tensor_f32(cv.w, 4, cv.sw);
  cv.args[2] = tensor_f32(cv.o, 4, cv.so);
  double flop = 2.0 * CV_K * CV_C * CV_R * CV_S * CV_H * CV_W;
  const char *sz = "64->64 3x3 56x56";

  openblas_set_num_threads(1);
  conv_case r = cv;
  r.o = ref;
  run_im2col_sgemm(&r);
  kiln_kernel_fn fns[2] = {fn, deflt};
  for (int i = 0; i < 2; i++) {
    memset(cv.o, 0xff, no * 4);
    cv.fn = fns[i];
    run_kiln_conv(&cv);
    double err = rel_err(cv.o, ref, no);
    if (!(err < 1e-5)) {
      fprintf(stderr, "conv2d: kiln %s is wrong: max error %.3g (relative to max |O|)\n",
              i ? "default schedule" : "direct", err);
      exit(1);
    }
    fprintf(stderr, "conv2d: kiln %s: max relative error %.2g\n",
            i ? "default schedule" : "direct", err);
  }

  for (int threads = 1; threads <= MAX_THREADS; threads++) {
    openblas_set_num_threads(threads);
    kiln_rt_set_num_threads(threads);
    timing tb = time_it(run_im2col_sgemm, &cv);
    row("conv2d", sz, threads, "im2col + OpenBLAS", tb, flop, 0);
    cv.fn = fn;
    row("conv2d", sz, threads, "kiln hand-scheduled direct", time_it(run_kiln_conv, &cv), flop,
        tb.med);
    cv.fn = deflt;
    row("conv2d", sz, threads, "kiln default schedule", time_it(run_kiln_conv, &cv), flop,
        tb.med);
  }
  free(cv.x);
  free(cv.w);
  free(cv.o);
  free(cv.col);
  free(ref);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) {
      min_total_s = 0.1;
    } else {
      fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
      return 2;
    }
  }
  if (kiln_context_new(&ctx)) return 1;
  tgt_target host;
  if (tgt_target_host(ctx, &host)) die_kiln("host target");
  if (tgt_jit_new(ctx, &host, &jit)) die_kiln("jit");
  load_kernels("gemm_naive.tir");
  load_kernels("gemm_tiled.tir");
  load_kernels("conv2d_direct.tir");
  kiln_kernel_fn naive = lookup("gemm_naive"), tiled = lookup("gemm_tiled"),
                 conv = lookup("conv2d_direct");

  double load[3] = {0};
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
    fclose(f);
  }
  printf("kiln target: `%s`  \nOpenBLAS: %s  \nload average before the run: %.2f %.2f %.2f "
         "(%s mode)\n\n",
         host.canonical, openblas_get_config(), load[0], load[1], load[2],
         min_total_s < 0.5 ? "quick" : "full");
  printf("| op | size | threads | implementation | median ms | min-max ms | GFLOP/s | %% of peak "
         "| speed vs OpenBLAS |\n");
  printf("|---|---|---|---|---|---|---|---|---|\n");
  bench_peak();
  for (int s = 256; s <= 1024; s *= 2) bench_gemm(s, naive, tiled, &host);
  bench_conv(conv, &host);

  tgt_jit_free(jit);
  kiln_context_free(ctx);
  return 0;
}

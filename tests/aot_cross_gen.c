/* aot_cross_gen.c: the host half of the aarch64 cross test (aot_cross_test.sh). It compiles the
 * default model and two kernels with int8, float16 and parallel loops ahead of time for
 * aarch64 (kernels.so), writes their deterministic inputs (cases.txt) and the reference
 * interpreter's results on the host (expected.txt). aot_driver.c, built for aarch64 and run
 * under qemu, reads cases.txt, runs kernels.so and prints its results in expected.txt's format,
 * so the two files must be identical.
 *
 * cases.txt:    "kernel NAME NARGS", then per argument
 *               "arg CODE BITS LANES NDIM DIM... NBYTES HEX", then "end".
 * expected.txt: "kernel NAME status 0", then per argument "out I HEX" (every argument after
 *               the run, inputs included). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/text.h"
#include "ir/verify.h"
#include "target/aot.h"

/* int8 arithmetic with wrap-around, both integer divisions, float16 arithmetic, min/max and
 * fma (exactly rounded, so results are bit-exact), a parallel loop and a vectorized one. */
static const char *extra_text =
    "func @mixed(A: buffer(int8, [64]), B: buffer(int8, [64]), H: buffer(float16, [64]),\n"
    "            OI: buffer(int8, [2, 64]), OH: buffer(float16, [3, 64]),\n"
    "            OF: buffer(float32, [8, 16])) {\n"
    "  for i: int32 in parallel(0, 64) {\n"
    "    OI[0, i] = A[i] * B[i] + A[63 - i] // 3i8;\n"
    "    OI[1, i] = A[i] %% 5i8 - B[i] % 7i8 + max(A[i], B[63 - i]);\n"
    "    OH[0, i] = H[i] * 1.5f16 + cast(float16, A[i]);\n"
    "    OH[1, i] = fma(H[i], H[63 - i], H[(i + 5) %% 64]);\n"
    "    OH[2, i] = min(H[i], H[63 - i]) / 3f16 - cast(float16, B[i]);\n"
    "  }\n"
    "  for v: int32 in parallel(0, 8) {\n"
    "    for j: int32 in vectorized(0, 16) {\n"
    "      OF[v, j] = cast(float32, H[v * 8 + j %% 8]) * 0.25f32 + cast(float32, B[(v * 16 + j) %% "
    "64]);\n"
    "    }\n"
    "  }\n"
    "}\n"
    "func @par(n: int32, A: buffer(float32, [n, 64]), B: buffer(float32, [n, 64]),\n"
    "          C: buffer(int64, [100])) {\n"
    "  for i: int32 in parallel(0, n) {\n"
    "    for j: int32 in vectorized(0, 64) {\n"
    "      B[i, j] = A[n - 1 - i, j] * 0.5f32 + cast(float32, i * j);\n"
    "    }\n"
    "  }\n"
    "  for o: int32 in parallel(0, 10) {\n"
    "    for q: int32 in range(0, 10) {\n"
    "      C[o * 10 + q] = cast(int64, o) * 1000i64 + cast(int64, q);\n"
    "    }\n"
    "  }\n"
    "}\n";

static const int32_t scalar_n = 7; /* the value of every int32 scalar parameter */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

static int fail(kiln_context *ctx, const char *what) {
  fprintf(stderr, "aot_cross_gen: %s: %s\n", what, kiln_context_errmsg(ctx));
  return 1;
}

/* A shape dimension: a constant or an int32 scalar parameter (scalar_n). */
static int dim_value(const ir_node *e, int64_t *out) {
  if (e->kind == IR_INT_IMM) *out = ((const ir_int_imm *)e)->value;
  else if (e->kind == IR_VAR) *out = scalar_n;
  else return 1;
  return 0;
}

/* Deterministic input bytes for one element of type t. */
static void fill(kiln_dtype t, unsigned char *p, size_t k) {
  if (t.code == KILN_TYPE_FLOAT && t.bits == 32) {
    float f = (float)((int)((k * 7) % 17) - 8) / 8;
    memcpy(p, &f, 4);
  } else if (t.code == KILN_TYPE_FLOAT && t.bits == 16) {
    uint16_t h = (uint16_t)(rnd() & 0xffff);
    if ((h & 0x7c00) == 0x7c00) h &= 0xbbff; /* finite */
    if (k % 3 == 0) h = (uint16_t)((h & 0x83ff) | 0x3c00); /* some near 1 */
    memcpy(p, &h, 2);
  } else {
    for (unsigned b = 0; b < t.bits / 8; b++) p[b] = (unsigned char)rnd();
  }
}

static void put_hex(FILE *f, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++) fprintf(f, "%02x", p[i]);
  if (n == 0) fputc('-', f);
}

/* Writes one function's case and its expected results. */
static int gen_func(kiln_context *ctx, const ir_func *f, FILE *cases, FILE *expected) {
  enum { MAXP = 16 };
  void *data[MAXP] = {0};
  size_t bytes[MAXP] = {0};
  int rc = 1;
  if (f->nparams > MAXP) goto done;
  fprintf(cases, "kernel %s %d\n", f->name, f->nparams);
  for (int i = 0; i < f->nparams; i++) {
    const ir_node *p = f->params[i];
    const ir_buffer *b = p->kind == IR_BUFFER ? (const ir_buffer *)p : NULL;
    int64_t dims[8], count = 1;
    int ndim = b ? b->ndim : 0;
    if (ndim > 8) goto done;
    for (int d = 0; d < ndim; d++) {
      if (dim_value(b->shape[d], &dims[d])) {
        fprintf(stderr, "aot_cross_gen: %s: unsupported shape\n", f->name);
        goto done;
      }
      count *= dims[d];
    }
    size_t esize = kiln_dtype_bytes(p->dtype);
    bytes[i] = (size_t)count * esize;
    data[i] = calloc(1, bytes[i]);
    if (!data[i]) goto done;
    if (b) {
      for (int64_t k = 0; k < count; k++) fill(p->dtype, (unsigned char *)data[i] + k * esize, k);
    } else {
      memcpy(data[i], &scalar_n, 4);
    }
    fprintf(cases, "arg %d %d %d %d", p->dtype.code, p->dtype.bits, p->dtype.lanes, ndim);
    for (int d = 0; d < ndim; d++) fprintf(cases, " %lld", (long long)dims[d]);
    fprintf(cases, " %zu ", bytes[i]);
    put_hex(cases, data[i], bytes[i]);
    fputc('\n', cases);
  }
  fprintf(cases, "end\n");
  if (ir_interpret(ctx, f, f->nparams, data)) {
    fail(ctx, f->name);
    goto done;
  }
  fprintf(expected, "kernel %s status 0\n", f->name);
  for (int i = 0; i < f->nparams; i++) {
    fprintf(expected, "out %d ", i);
    put_hex(expected, data[i], bytes[i]);
    fputc('\n', expected);
  }
  rc = 0;
done:
  for (int i = 0; i < MAXP; i++) free(data[i]);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: aot_cross_gen DEFAULT.tir TARGET OUTDIR\n");
    return 1;
  }
  kiln_context *ctx;
  if (kiln_context_new(&ctx)) return 1;
  int rc = 1;
  kiln_tir_module *mod = NULL;
  char *text = NULL;
  FILE *cases = NULL, *expected = NULL;
  char path[4096];

  FILE *in = fopen(argv[1], "rb");
  if (!in) {
    fprintf(stderr, "aot_cross_gen: cannot open %s\n", argv[1]);
    goto done;
  }
  text = calloc(1, 1 << 20);
  size_t n = text ? fread(text, 1, (1 << 20) - strlen(extra_text) - 2, in) : 0;
  fclose(in);
  if (!text) goto done;
  text[n] = '\n';
  strcpy(text + n + 1, extra_text);
  if (ir_parse_module(ctx, text, strlen(text), argv[1], &mod)) {
    fail(ctx, "parse");
    goto done;
  }
  tgt_target t;
  if (tgt_target_parse(ctx, argv[2], &t)) {
    fail(ctx, "target");
    goto done;
  }
  snprintf(path, sizeof path, "%s/kernels.so", argv[3]);
  if (tgt_aot_compile(ctx, &t, mod, path, NULL)) {
    fail(ctx, "compile");
    goto done;
  }
  snprintf(path, sizeof path, "%s/cases.txt", argv[3]);
  cases = fopen(path, "w");
  snprintf(path, sizeof path, "%s/expected.txt", argv[3]);
  expected = fopen(path, "w");
  if (!cases || !expected) {
    fprintf(stderr, "aot_cross_gen: cannot write into %s\n", argv[3]);
    goto done;
  }
  for (int i = 0; i < mod->nfuncs; i++)
    if (gen_func(ctx, mod->funcs[i], cases, expected)) goto done;
  rc = 0;
done:
  if (cases) fclose(cases);
  if (expected) fclose(expected);
  kiln_tir_module_free(mod);
  free(text);
  kiln_context_free(ctx);
  return rc;
}

/* test_codegen.c: TIR -> LLVM code generation and the JIT, differential against the reference
 * interpreter (ir_interpret). Programs come from TIR text or from the constructors (random
 * expression trees), run on the same inputs through the interpreter and through the JIT-compiled
 * kernel, and must agree: bit for bit for integers, for float operations that are exactly
 * rounded and for the 16-bit float formats; within stated ulp tolerances for the intrinsics that
 * codegen approximates. Also: argument checks of the kernel ABI, parallel loops, allocation,
 * guarded loads, vector code in the assembly, the JIT's symbol table, errors and fault
 * injection. */
#include <math.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <llvm-c/Object.h>
#include <llvm-c/TargetMachine.h>

#include "ir/text.h"
#include "ir/verify.h"
#include "target/codegen.h"
#include "test_util.h"

static kiln_context *ctx;
static tgt_target host;
/* The target jit_of compiles for: the host, or the host without F16C (float16 conversions in
 * integer code instead of hardware). */
static const tgt_target *jit_target;
static tgt_target host_nof16c;

/* The machine the tests run on, built by hand from LLVM's host detection. */
static void make_host(tgt_target *t) {
  memset(t, 0, sizeof *t);
  char *tr = LLVMGetDefaultTargetTriple(), *cpu = LLVMGetHostCPUName(),
       *feat = LLVMGetHostCPUFeatures();
  snprintf(t->triple, sizeof t->triple, "%s", tr);
  snprintf(t->cpu, sizeof t->cpu, "%s", cpu);
  if (strlen(feat) < sizeof t->features) snprintf(t->features, sizeof t->features, "%s", feat);
  LLVMDisposeMessage(tr);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(feat);
  t->num_cores = 4;
  t->vector_bits = 512;
  t->is_host = true;
}

/* An x86-64 target that is not this machine (for assembly only). */
static tgt_target x86_target(const char *cpu, const char *features, int vector_bits) {
  tgt_target t;
  memset(&t, 0, sizeof t);
  snprintf(t.triple, sizeof t.triple, "x86_64-pc-linux-gnu");
  snprintf(t.cpu, sizeof t.cpu, "%s", cpu);
  snprintf(t.features, sizeof t.features, "%s", features);
  t.vector_bits = vector_bits;
  t.num_cores = 1;
  return t;
}

static void setup(void) {
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  make_host(&host);
  host_nof16c = host;
  snprintf(host_nof16c.cpu, sizeof host_nof16c.cpu, "x86-64-v2"); /* SSE4.2: no F16C, no AVX */
  host_nof16c.features[0] = 0;
  host_nof16c.vector_bits = 128;
  jit_target = &host;
}

static void teardown(void) {
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0); /* error paths free everything too */
  kiln_context_free(ctx);
}

/* ---- Helpers --------------------------------------------------------------------------- */

static kiln_tir_module *parse(const char *text) {
  kiln_tir_module *m = NULL;
  kiln_status st = ir_parse_module(ctx, text, strlen(text), "test", &m);
  ck_assert_msg(st == KILN_OK, "parse failed: %s", kiln_context_errmsg(ctx));
  return m;
}

/* A JIT holding mod's code (for the host). */
static tgt_jit *jit_of(kiln_tir_module *mod) {
  tgt_jit *j = NULL;
  ck_ok(ctx, tgt_jit_new(ctx, jit_target, &j));
  ck_ok(ctx, tgt_jit_add_tir(j, mod));
  return j;
}

static kiln_kernel_fn kernel(tgt_jit *j, const char *name) {
  kiln_kernel_fn fn = NULL;
  ck_ok(ctx, tgt_jit_lookup(j, name, &fn));
  ck_assert_ptr_nonnull(fn);
  return fn;
}

/* Text of the optimized LLVM IR / the assembly of mod for target t (free with free()). */
static char *module_text(kiln_tir_module *mod, const tgt_target *t, int opt, bool assembly) {
  tgt_llvm_module *m;
  tgt_codegen_options o = {opt};
  ck_ok(ctx, tgt_codegen(ctx, mod, t, &o, &m));
  char *s;
  size_t len;
  ck_ok(ctx, assembly ? tgt_llvm_module_asm(m, &s, &len) : tgt_llvm_module_ir(m, &s, &len));
  char *copy = strdup(s);
  ir_free(ctx, s, len + 1);
  tgt_llvm_module_free(m);
  return copy;
}

/* Two runs of one function on the same inputs: the interpreter works on `ref`, the kernel on
 * `out` (copies of the initial data), with tensors describing `out`. */
enum { MAXP = 16 };
typedef struct dual {
  int n;
  void *ref[MAXP], *out[MAXP];
  size_t bytes[MAXP];
  kiln_tensor t[MAXP];
  int64_t shape[MAXP][4];
} dual;

/* Value of a shape expression (constants, scalar parameters, + - *) from the initial data. */
static int64_t shape_value(const ir_func *f, void **init, const ir_node *e) {
  if (e->kind == IR_INT_IMM) return ((const ir_int_imm *)e)->value;
  if (e->kind == IR_VAR) {
    for (int i = 0; i < f->nparams; i++)
      if (f->params[i] == e) return e->dtype.bits == 64 ? *(int64_t *)init[i] : *(int32_t *)init[i];
  }
  if (e->kind == IR_ADD || e->kind == IR_SUB || e->kind == IR_MUL) {
    const ir_binary *b = (const ir_binary *)e;
    int64_t x = shape_value(f, init, b->a), y = shape_value(f, init, b->b);
    return e->kind == IR_ADD ? x + y : e->kind == IR_SUB ? x - y : x * y;
  }
  ck_abort_msg("shape expression the test helper cannot evaluate");
  return 0;
}

static void dual_init(dual *d, const ir_func *f, void **init, const size_t *bytes) {
  memset(d, 0, sizeof *d);
  d->n = f->nparams;
  ck_assert_int_le(d->n, MAXP);
  for (int i = 0; i < d->n; i++) {
    const ir_node *p = f->params[i];
    d->bytes[i] = bytes[i];
    d->ref[i] = malloc(bytes[i] ? bytes[i] : 1);
    d->out[i] = malloc(bytes[i] ? bytes[i] : 1);
    memcpy(d->ref[i], init[i], bytes[i]);
    memcpy(d->out[i], init[i], bytes[i]);
    kiln_tensor *t = &d->t[i];
    t->data = d->out[i];
    t->device_type = 1;
    t->dtype = p->dtype;
    if (p->kind == IR_BUFFER) {
      const ir_buffer *b = (const ir_buffer *)p;
      t->ndim = b->ndim;
      t->shape = d->shape[i];
      for (int k = 0; k < b->ndim; k++) d->shape[i][k] = shape_value(f, init, b->shape[k]);
    }
  }
}

static void dual_run(dual *d, const ir_func *f, kiln_kernel_fn fn) {
  ck_ok(ctx, ir_interpret(ctx, f, d->n, d->ref));
  int32_t st = fn(d->t, d->n);
  ck_assert_msg(st == 0, "kernel %s returned %d: %s", f->name, st, kiln_last_error());
}

static void dual_free(dual *d) {
  for (int i = 0; i < d->n; i++) {
    free(d->ref[i]);
    free(d->out[i]);
  }
}

static void expect_same_bytes(const dual *d, int i) {
  const unsigned char *a = d->ref[i], *b = d->out[i];
  for (size_t k = 0; k < d->bytes[i]; k++)
    ck_assert_msg(a[k] == b[k], "argument %d differs at byte %zu: interpreter %02x, kernel %02x", i,
                  k, a[k], b[k]);
}

/* float32 results: equal (+0 and -0 count as equal: min and max of the two zeros may return
 * either), or both NaN. */
static void expect_same_f32(const float *ref, const float *out, size_t n, const char *what) {
  for (size_t k = 0; k < n; k++)
    ck_assert_msg(ref[k] == out[k] || (isnan(ref[k]) && isnan(out[k])),
                  "%s[%zu]: interpreter %.9g, kernel %.9g", what, k, ref[k], out[k]);
}

/* Runs function `name` of the module text on the given initial data through both and checks
 * that every argument ends up byte-identical. */
static void check_program(const char *text, const char *name, void **init, const size_t *bytes) {
  kiln_tir_module *m = parse(text);
  tgt_jit *j = jit_of(m);
  const ir_func *f = ir_module_find(m, name);
  dual d;
  dual_init(&d, f, init, bytes);
  dual_run(&d, f, kernel(j, name));
  for (int i = 0; i < d.n; i++) expect_same_bytes(&d, i);
  dual_free(&d);
  tgt_jit_free(j);
  kiln_tir_module_free(m);
}

/* Deterministic pseudo-random numbers (splitmix64). */
static uint64_t rng_state;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static double rnd_unit(void) { return (double)(rnd() >> 11) * 0x1p-53; }
static double rnd_range(double lo, double hi) { return lo + (hi - lo) * rnd_unit(); }

/* ---- Programs -------------------------------------------------------------------------- */

START_TEST(test_default_model) {
  char path[512];
  snprintf(path, sizeof path, "%s/../tools/models/default.tir", KILN_TEST_DIR);
  kiln_tir_module *m = NULL;
  ck_ok(ctx, kiln_tir_module_parse_file(ctx, path, &m));
  tgt_jit *j = jit_of(m);
  const ir_func *f = m->funcs[0];
  float X[32], W[48], bias[6], out[24] = {0};
  rng_state = 1;
  for (int i = 0; i < 32; i++) X[i] = (float)rnd_range(-2, 2);
  for (int i = 0; i < 48; i++) W[i] = (float)rnd_range(-2, 2);
  for (int i = 0; i < 6; i++) bias[i] = (float)rnd_range(-1, 1);
  void *init[4] = {X, W, bias, out};
  size_t bytes[4] = {sizeof X, sizeof W, sizeof bias, sizeof out};
  dual d;
  dual_init(&d, f, init, bytes);
  kiln_kernel_fn fn = kernel(j, f->name);
  dual_run(&d, f, fn);
  expect_same_f32(d.ref[3], d.out[3], 24, "out");
  int positive = 0;
  for (int i = 0; i < 24; i++) positive += ((float *)d.out[3])[i] > 0;
  ck_assert_int_gt(positive, 0); /* not all clamped by the ReLU */
  /* a second call gives the same result (the init resets the accumulator) */
  ck_assert_int_eq(fn(d.t, 4), 0);
  expect_same_f32(d.ref[3], d.out[3], 24, "out (second run)");
  dual_free(&d);
  tgt_jit_free(j);
  kiln_tir_module_free(m);
}
END_TEST

/* The golden round-trip programs of the text format (every expression kind; TensorIR blocks
 * with predicates, a parallel loop, block buffers, float16 and int64 iterators). */
static char *read_text(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/golden/tir/%s", KILN_TEST_DIR, name);
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return buf;
}

START_TEST(test_golden_programs) {
  const char *text = read_text("expressions.tir");
  static int32_t A[64];
  static float F[64];
  static double D[8];
  int32_t n = 3;
  uint8_t b = 1;
  float x = 0.75f;
  rng_state = 21;
  for (int i = 0; i < 64; i++) {
    A[i] = (int32_t)(rnd() % 1000) - 500;
    F[i] = (float)rnd_range(-10, 10);
  }
  for (int i = 0; i < 8; i++) D[i] = rnd_range(-100, 100);
  void *init[6] = {A, F, D, &n, &b, &x};
  size_t bytes[6] = {sizeof A, sizeof F, sizeof D, 4, 1, 4};
  /* F[0] holds exp, log, tanh, erf, sigmoid of x: within the approximations' tolerance */
  kiln_tir_module *m = parse(text);
  tgt_jit *j = jit_of(m);
  dual d;
  dual_init(&d, m->funcs[0], init, bytes);
  dual_run(&d, m->funcs[0], kernel(j, "expressions"));
  expect_same_bytes(&d, 0);
  expect_same_bytes(&d, 2);
  const float *fr = d.ref[1], *fo = d.out[1];
  for (int i = 0; i < 64; i++) {
    float tol = i == 0 ? 4e-7f * fabsf(fr[i]) : 0;
    ck_assert_msg(fabsf(fr[i] - fo[i]) <= tol || (isnan(fr[i]) && isnan(fo[i])),
                  "F[%d]: %.9g vs %.9g", i, fr[i], fo[i]);
  }
  dual_free(&d);
  tgt_jit_free(j);
  kiln_tir_module_free(m);

  text = read_text("matmul.tir");
  static float MA[128 * 64], MB[64 * 32], MC[128 * 32];
  for (int i = 0; i < 128 * 64; i++) MA[i] = (float)rnd_range(-1, 1);
  for (int i = 0; i < 64 * 32; i++) MB[i] = (float)rnd_range(-1, 1);
  for (int i = 0; i < 128 * 32; i++) MC[i] = 5;
  void *minit[3] = {MA, MB, MC};
  size_t mbytes[3] = {sizeof MA, sizeof MB, sizeof MC};
  check_program(text, "matmul", minit, mbytes);
  /* row_sum reads its block buffer `acc` before writing it in every block instance but the
   * first (each instance has a fresh buffer): the interpreter's are zero-filled, generated
   * code's are not, so only that it runs is checked */
  static uint16_t X[64], Y[8];
  int64_t sx[2] = {8, 8}, sy[1] = {8};
  kiln_tensor args[2] = {{X, 1, 0, 2, KILN_FLOAT16, sx, NULL, 0},
                         {Y, 1, 0, 1, KILN_FLOAT16, sy, NULL, 0}};
  m = parse(text);
  j = jit_of(m);
  ck_assert_int_eq(kernel(j, "row_sum")(args, 2), 0);
  tgt_jit_free(j);
  kiln_tir_module_free(m);
}
END_TEST

/* The argument checks of the entry: count, rank, dtype, shape, strides, NULL pointers; the
 * status returned and the message left by kiln_rt_error. */
static void expect_kernel_error(kiln_kernel_fn fn, const kiln_tensor *args, int n, int32_t code,
                                const char *needle) {
  int32_t st = fn(args, n);
  ck_assert_msg(st == code, "expected %s, got %d (%s)", kiln_status_str(code), st,
                kiln_last_error());
  ck_assert_msg(strstr(kiln_last_error(), needle), "message '%s' lacks '%s'", kiln_last_error(),
                needle);
}

START_TEST(test_argument_checks) {
  kiln_tir_module *m = parse("func @scale(n: int32, A: buffer(float32, [n, 3]), B: buffer(float32, "
                             "[n, 3]), s: float32) {\n"
                             "  for i: int32 in range(0, n) {\n"
                             "    for j: int32 in range(0, 3) { B[i, j] = A[i, j] * s; }\n"
                             "  }\n"
                             "}\n");
  tgt_jit *j = jit_of(m);
  kiln_kernel_fn fn = kernel(j, "scale");
  int32_t n = 2;
  float s = 3, A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {0};
  int64_t shA[2] = {2, 3}, shB[2] = {2, 3};
  kiln_tensor args[4] = {{&n, 1, 0, 0, KILN_INT32, NULL, NULL, 0},
                         {A, 1, 0, 2, KILN_FLOAT32, shA, NULL, 0},
                         {B, 1, 0, 2, KILN_FLOAT32, shB, NULL, 0},
                         {&s, 1, 0, 0, KILN_FLOAT32, NULL, NULL, 0}};
  ck_assert_int_eq(fn(args, 4), 0);
  ck_assert(B[5] == 18 && B[0] == 3);

  expect_kernel_error(fn, args, 3, KILN_ERR_MISUSE, "scale: expected 4 arguments, got 3");
  expect_kernel_error(fn, NULL, 4, KILN_ERR_MISUSE, "the argument array is NULL");
  shB[1] = 4;
  expect_kernel_error(fn, args, 4, KILN_ERR_SHAPE,
                      "scale: argument 2 (B): expected float32 [2, 3], got float32 [2, 4]");
  shB[1] = 3;
  args[1].dtype = KILN_INT32;
  expect_kernel_error(fn, args, 4, KILN_ERR_TYPE,
                      "argument 1 (A): expected float32 [2, 3], got int32 [2, 3]");
  args[1].dtype = (kiln_dtype){KILN_TYPE_FLOAT, 32, 4};
  expect_kernel_error(fn, args, 4, KILN_ERR_TYPE, "got float32x4 [2, 3]");
  args[1].dtype = KILN_BOOL;
  expect_kernel_error(fn, args, 4, KILN_ERR_TYPE, "got bool [2, 3]");
  args[1].dtype = KILN_FLOAT32;
  args[1].ndim = 1;
  expect_kernel_error(
      fn, args, 4, KILN_ERR_SHAPE,
      "argument 1 (A): expected a 2-dimensional float32 tensor, got a 1-dimensional one");
  args[1].ndim = 2;
  n = 3; /* the symbolic dimension follows the scalar parameter */
  expect_kernel_error(fn, args, 4, KILN_ERR_SHAPE, "expected float32 [3, 3], got float32 [2, 3]");
  n = 2;
  args[3].dtype = KILN_FLOAT64;
  expect_kernel_error(fn, args, 4, KILN_ERR_TYPE,
                      "argument 3 (s): expected a scalar float32, got float64");
  args[3].dtype = KILN_FLOAT32;
  args[0].ndim = 1;
  expect_kernel_error(
      fn, args, 4, KILN_ERR_SHAPE,
      "argument 0 (n): expected a scalar int32 (a 0-dimensional tensor), got a 1-dimensional one");
  args[0].ndim = 0;
  args[3].data = NULL;
  expect_kernel_error(fn, args, 4, KILN_ERR_MISUSE, "argument 3 (s): data is NULL");
  args[3].data = &s;
  args[2].data = NULL;
  expect_kernel_error(fn, args, 4, KILN_ERR_MISUSE, "argument 2 (B): data is NULL");
  args[2].data = B;
  args[2].shape = NULL;
  expect_kernel_error(fn, args, 4, KILN_ERR_MISUSE, "argument 2 (B): shape is NULL");
  args[2].shape = shB;
  int64_t strides[2] = {4, 1};
  args[1].strides = strides;
  expect_kernel_error(fn, args, 4, KILN_ERR_SHAPE,
                      "argument 1 (A): expected strides [3, 1], got [4, 1]");
  strides[0] = 3; /* compact strides given explicitly are fine */
  ck_assert_int_eq(fn(args, 4), 0);
  /* an empty tensor may have NULL data */
  n = 0;
  shA[0] = shB[0] = 0;
  args[1].data = args[2].data = NULL;
  ck_assert_int_eq(fn(args, 4), 0);
  /* elements must be naturally aligned */
  args[1].byte_offset = 2;
  expect_kernel_error(fn, args, 4, KILN_ERR_MISUSE,
                      "argument 1 (A): data + byte_offset is not aligned to its 4-byte elements");
  args[1].byte_offset = 0;
  /* byte_offset moves the start */
  n = 1;
  shA[0] = shB[0] = 1;
  args[1].data = A;
  args[2].data = B;
  args[1].byte_offset = 3 * sizeof(float);
  memset(B, 0, sizeof B);
  ck_assert_int_eq(fn(args, 4), 0);
  ck_assert(B[0] == 12 && B[1] == 15 && B[2] == 18 && B[3] == 0);
  tgt_jit_free(j);
  kiln_tir_module_free(m);
}
END_TEST

/* A name with '%' in it is not taken for a format. */
START_TEST(test_argument_message_escapes) {
  kiln_tir_module *m = parse("func @\"a%sb\"(A: buffer(int8, [4])) { A[0] = 1i8; }\n");
  tgt_jit *j = jit_of(m);
  kiln_kernel_fn fn = kernel(j, "a%sb");
  int64_t sh[1] = {5};
  int8_t a[5];
  kiln_tensor t = {a, 1, 0, 1, KILN_INT8, sh, NULL, 0};
  expect_kernel_error(fn, &t, 1, KILN_ERR_SHAPE,
                      "a%sb: argument 0 (A): expected int8 [4], got int8 [5]");
  tgt_jit_free(j);
  kiln_tir_module_free(m);
}
END_TEST

START_TEST(test_symbolic_shape) {
  const char *text = "func @f(n: int32, m: int64, A: buffer(float32, [n, 4]), B: buffer(int64, "
                     "[m]), C: buffer(float32, [n * 2, 4])) {\n"
                     "  for i: int32 in range(0, n) {\n"
                     "    for j: int32 in vectorized(0, 4) { C[i * 2, j] = A[i, j] + 1f32; C[i * 2 "
                     "+ 1, j] = A[n - 1 - i, j]; }\n"
                     "  }\n"
                     "  for k: int64 in range(0i64, m) { B[k] = k * m; }\n"
                     "}\n";
  for (int32_t n = 1; n <= 5; n += 2) {
    int64_t mm = n + 3;
    float A[20], C[40] = {0};
    int64_t B[8] = {0};
    for (int i = 0; i < 20; i++) A[i] = (float)i * 0.25f;
    void *init[5] = {&n, &mm, A, B, C};
    size_t bytes[5] = {4, 8, sizeof(float) * 4 * (size_t)n, sizeof(int64_t) * (size_t)mm,
                       sizeof(float) * 8 * (size_t)n};
    check_program(text, "f", init, bytes);
  }
}
END_TEST

START_TEST(test_strides_and_offset) {
  const char *text =
      "func @f(A: buffer(float32, [3, 4], strides=[8, 1], offset=2), B: buffer(float32, [3, 4]),\n"
      "        C: buffer(int16, [4, 3], strides=[1, 4])) {\n"
      "  for i: int32 in range(0, 3) {\n"
      "    for j: int32 in vectorized(0, 4) { B[i, j] = A[i, j] * 2f32; C[j, i] = cast(int16, A[i, "
      "j]); }\n"
      "  }\n"
      "}\n";
  float A[2 + 8 * 3], B[12] = {0};
  int16_t C[12] = {0};
  for (int i = 0; i < 26; i++) A[i] = (float)(i * 3 % 17);
  void *init[3] = {A, B, C};
  size_t bytes[3] = {sizeof A, sizeof B, sizeof C};
  kiln_tir_module *m = parse(text);
  tgt_jit *j = jit_of(m);
  const ir_func *f = m->funcs[0];
  dual d;
  dual_init(&d, f, init, bytes);
  /* the strided buffers need their strides in the tensors */
  int64_t sa[2] = {8, 1}, sc[2] = {1, 4};
  kiln_kernel_fn fn = kernel(j, "f");
  expect_kernel_error(fn, d.t, 3, KILN_ERR_SHAPE,
                      "argument 0 (A): expected strides [8, 1], got [4, 1]");
  d.t[0].strides = sa;
  expect_kernel_error(fn, d.t, 3, KILN_ERR_SHAPE,
                      "argument 2 (C): expected strides [1, 4], got [3, 1]");
  d.t[2].strides = sc;
  dual_run(&d, f, fn);
  for (int i = 0; i < 3; i++) expect_same_bytes(&d, i);
  ck_assert(((float *)d.out[1])[5] == 2 * A[2 + 8 + 1]);
  dual_free(&d);
  tgt_jit_free(j);
  kiln_tir_module_free(m);
}
END_TEST

/* float16, bfloat16, bool and int8 through memory, arithmetic and casts, scalar and vector. */
START_TEST(test_small_types) {
  const char *text =
      "func @f(H: buffer(float16, [64]), G: buffer(bfloat16, [64]), F: buffer(float32, [64]), D: "
      "buffer(float64, [64]),\n"
      "        Q: buffer(bool, [64]), I: buffer(int8, [64]), L: buffer(int64, [64]),\n"
      "        OH: buffer(float16, [8, 64]), OG: buffer(bfloat16, [8, 64]), OQ: buffer(bool, [4, "
      "64]), OI: buffer(int8, [4, 64])) {\n"
      "  for i: int32 in range(0, 64) {\n"
      "    OH[0, i] = H[i] + H[63 - i] * 1.5f16;\n"
      "    OH[1, i] = cast(float16, F[i]) - H[i] / 3f16;\n"
      "    OH[2, i] = cast(float16, D[i]);\n"
      "    OH[3, i] = cast(float16, L[i]) + cast(float16, I[i]);\n"
      "    OH[4, i] = cast(float16, G[i]) * H[i];\n"
      "    OH[5, i] = select(Q[i], H[i] %% 0.75f16, H[i] // 0.3f16);\n"
      "    OH[6, i] = fma(H[i], H[63 - i], H[(i + 5) %% 64]);\n"
      "    OH[7, i] = min(H[i], cast(float16, i)) + max(H[i], -2f16);\n"
      "    OG[0, i] = G[i] + G[63 - i] * 1.5bf16;\n"
      "    OG[1, i] = cast(bfloat16, F[i]) - G[i] / 3bf16;\n"
      "    OG[2, i] = cast(bfloat16, D[i]);\n"
      "    OG[3, i] = cast(bfloat16, L[i]) + cast(bfloat16, cast(int32, I[i]) * 1000003);\n"
      "    OG[4, i] = cast(bfloat16, H[i]) - G[i];\n"
      "    OG[5, i] = select(G[i] < 0bf16, G[i] %% 0.75bf16, G[i] // 0.3bf16);\n"
      "    OG[6, i] = fma(G[i], G[63 - i], G[(i + 5) %% 64]);\n"
      "    OG[7, i] = cast(bfloat16, cast(uint64, L[i]));\n"
      "    OQ[0, i] = Q[i] && !Q[63 - i] || H[i] < 0f16;\n"
      "    OQ[1, i] = cast(bool, I[i]) == Q[i];\n"
      "    OQ[2, i] = cast(bool, F[i]);\n"
      "    OQ[3, i] = G[i] != G[i] || L[i] >= 0i64;\n"
      "    OI[0, i] = I[i] * 3i8 + I[63 - i];\n"
      "    OI[1, i] = I[i] // 7i8 - I[i] %% -5i8;\n"
      "    OI[2, i] = cast(int8, L[i]) + cast(int8, Q[i]);\n"
      "    OI[3, i] = cast(int8, cast(int32, select(fabs(H[i]) < 1000f16, H[i] * 10f16, 0f16)));\n"
      "  }\n"
      "  for v: int32 in range(0, 8) {\n"
      "    OH[0, ramp(v * 8, 1, 8)] = OH[0, ramp(v * 8, 1, 8)] + cast(float16x8, G[ramp(v * 8, 1, "
      "8)]);\n"
      "    OG[0, ramp(v * 8, 1, 8)] = OG[0, ramp(v * 8, 1, 8)] * cast(bfloat16x8, H[ramp(v * 8, 1, "
      "8)]);\n"
      "    OQ[0, ramp(v * 8, 1, 8)] = OQ[0, ramp(v * 8, 1, 8)] || Q[ramp(v * 8, 1, 8)];\n"
      "    OI[0, ramp(v * 8, 1, 8)] = OI[0, ramp(v, 8, 8)] - I[ramp(v * 8, 1, 8)];\n"
      "  }\n"
      "}\n";
  static uint16_t H[64], G[64], OH[512], OG[512];
  static float F[64];
  static double D[64];
  static uint8_t Q[64], OQ[256];
  static int8_t I[64], OI[256];
  static int64_t L[64];
  rng_state = 7;
  for (int i = 0; i < 64; i++) {
    /* 16-bit patterns: mostly finite values of every magnitude, a few NaN and infinities */
    H[i] = (uint16_t)(rnd() & 0xffff);
    if ((H[i] & 0x7c00) == 0x7c00 && i % 3) H[i] &= 0xbbff;
    G[i] = (uint16_t)(rnd() & 0xffff);
    if ((G[i] & 0x7f80) == 0x7f80 && i % 3) G[i] &= 0xbf7f;
    if (i % 4 == 0)
      G[i] = (uint16_t)(G[i] & 0x8000) | (uint16_t)(0x3c00 + (rnd() % 0x1000)); /* near 1 */
    F[i] = (float)rnd_range(-70000, 70000) * (i % 2 ? 1e-4f : 1);
    D[i] = rnd_range(-1, 1) * pow(2, (double)(int)(rnd() % 300) - 150);
    Q[i] = rnd() % 2;
    I[i] = (int8_t)rnd();
    L[i] = (int64_t)rnd() >> (rnd() % 64);
  }
  D[0] = 65520; /* ties and overflow of the 16-bit formats */
  D[1] = 65519.99;
  D[2] = 0x1.0020000000001p0;
  D[3] = 0x1.0080000000001p0;
  D[4] = 0x1p-25;
  D[5] = -0x1.8p-24;
  L[0] = INT64_MIN;
  L[1] = (int64_t)0x0100800000000001;
  I[0] = -128;
  void *init[11] = {H, G, F, D, Q, I, L, OH, OG, OQ, OI};
  size_t bytes[11] = {sizeof H, sizeof G,  sizeof F,  sizeof D,  sizeof Q, sizeof I,
                      sizeof L, sizeof OH, sizeof OG, sizeof OQ, sizeof OI};
  check_program(text, "f", init, bytes);
  if (strstr(host.triple, "x86_64")) {
    jit_target = &host_nof16c;
    check_program(text, "f", init, bytes);
  }
}
END_TEST

/* Every cast between the supported scalar types, on edge values. */
START_TEST(test_casts) {
  static const char *types[] = {"int8",    "int16",   "int32",  "int64",   "uint8",
                                "uint16",  "uint32",  "uint64", "float16", "bfloat16",
                                "float32", "float64", "bool"};
  enum { NT = 13, N = 32 };
  static char text[65536];
  int len = snprintf(text, sizeof text,
                     "func @casts(S: buffer(int64, [%d]), F: buffer(float64, [%d])", N, N);
  for (int t = 0; t < NT; t++)
    len += snprintf(text + len, sizeof text - (size_t)len, ", O%d: buffer(%s, [%d, %d])", t,
                    types[t], 2 * NT, N);
  len +=
      snprintf(text + len, sizeof text - (size_t)len, ") {\n  for i: int32 in range(0, %d) {\n", N);
  /* integer sources through every type (wrap), float sources only where in range */
  for (int t = 0; t < NT; t++)
    for (int s = 0; s < NT; s++) {
      bool sf = strstr(types[s], "float") != NULL, tf = strstr(types[t], "float") != NULL;
      if (sf && !tf && strcmp(types[t], "bool") != 0)
        len += snprintf(text + len, sizeof text - (size_t)len,
                        "    O%d[%d, i] = cast(%s, cast(%s, F[i] * 100f64 %%%% 100f64));\n", t, s,
                        types[t], types[s]);
      else
        len += snprintf(text + len, sizeof text - (size_t)len,
                        "    O%d[%d, i] = cast(%s, cast(%s, %s));\n", t, s, types[t], types[s],
                        sf ? "F[i]" : "S[i]");
      /* the vector form of the same */
      if (!(sf && !tf && strcmp(types[t], "bool") != 0))
        len += snprintf(text + len, sizeof text - (size_t)len,
                        "    O%d[%d, ramp(i - i %%%% 4, 1, 4)] = cast(%sx4, cast(%sx4, %s[ramp(i - "
                        "i %%%% 4, 1, 4)]));\n",
                        t, NT + s, types[t], types[s], sf ? "F" : "S");
    }
  len += snprintf(text + len, sizeof text - (size_t)len, "  }\n}\n");
  ck_assert_int_lt(len, (int)sizeof text);
  static int64_t S[N];
  static double F[N];
  static unsigned char O[NT][2 * NT * N * 8];
  const int64_t edges[] = {0,
                           1,
                           -1,
                           127,
                           128,
                           -128,
                           -129,
                           255,
                           256,
                           32767,
                           -32768,
                           65535,
                           65536,
                           2049,
                           2051,
                           16777217,
                           -16777217,
                           INT32_MAX,
                           INT32_MIN,
                           (int64_t)UINT32_MAX,
                           INT64_MAX,
                           INT64_MIN,
                           (int64_t)0x0100800000000001,
                           (int64_t)0x8000010000000001ull};
  rng_state = 11;
  for (int i = 0; i < N; i++) {
    S[i] = i < (int)(sizeof edges / sizeof edges[0]) ? edges[i] : (int64_t)rnd();
    F[i] = i < 8 ? (double[]){0.5, -0.5, 1.5, 2.5, -0.0, 65504.0, 1e-8, 3.0000001}[i]
                 : rnd_range(-3e5, 3e5);
  }
  F[N - 1] = -1e300; /* beyond every narrower float: infinities */
  F[N - 2] = 0x1.0000000000001p-149;
  void *init[2 + NT] = {S, F};
  size_t bytes[2 + NT] = {sizeof S, sizeof F};
  for (int t = 0; t < NT; t++) {
    init[2 + t] = O[t];
    kiln_dtype dt;
    ck_ok(ctx, kiln_dtype_parse(types[t], strlen(types[t]), &dt));
    bytes[2 + t] = kiln_dtype_bytes(dt) * 2 * NT * N;
  }
  check_program(text, "casts", init, bytes);
  if (strstr(host.triple, "x86_64")) {
    jit_target = &host_nof16c;
    check_program(text, "casts", init, bytes);
  }
}
END_TEST

/* ramp / broadcast in loads and stores: contiguous vectors, gathers, scatters; vector selects
 * and comparisons; lets inside vectors. */
START_TEST(test_vectors) {
  const char *text =
      "func @v(A: buffer(float32, [16, 16]), B: buffer(int32, [256]), O: buffer(float32, [16, "
      "16]), P: buffer(int32, [8, 32])) {\n"
      "  for i: int32 in range(0, 16) {\n"
      "    O[i, ramp(0, 1, 16)] = A[i, ramp(0, 1, 16)] * broadcast(2f32, 16);\n"
      "    O[ramp(0, 1, 16), i] = O[ramp(0, 1, 16), i] + A[broadcast(i, 16), ramp(15, -1, 16)];\n"
      "  }\n"
      "  for k: int32 in range(0, 4) {\n"
      "    P[k, ramp(0, 1, 8)] = B[ramp(k * 8, 1, 8)] + B[ramp(k, 32, 8)];\n"
      "    P[k, ramp(8, 3, 8)] = select(B[ramp(k, 1, 8)] < broadcast(0, 8), B[ramp(k * 2, 1, 8)], "
      "broadcast(k, 8) - ramp(0, 2, 8));\n"
      "    P[k + 4, ramp(0, 1, 32)] = let(t: int32 = k * 3, cast(int32x32, ramp(t, 1, 32) < "
      "B[ramp(0, 1, 32)]) + ramp(t, t, 32) / broadcast(k + 1, 32));\n"
      "    P[k, ramp(31, -1, 2)] = broadcast(B[k], 2) %% broadcast(7, 2);\n"
      "  }\n"
      "}\n";
  static float A[256], O[256];
  static int32_t B[256], P[256];
  rng_state = 3;
  for (int i = 0; i < 256; i++) {
    A[i] = (float)rnd_range(-10, 10);
    B[i] = (int32_t)(rnd() % 2001) - 1000;
    O[i] = (float)i;
  }
  void *init[4] = {A, B, O, P};
  size_t bytes[4] = {sizeof A, sizeof B, sizeof O, sizeof P};
  check_program(text, "v", init, bytes);
}
END_TEST

/* Loads of lanes a small constant step apart (2, 3, 4: strided convolutions) become one
 * contiguous load of the span plus a shuffle; the span ends at the last element read (here
 * the last element of A and of a row of R), larger steps and masked lanes stay gathers. */
START_TEST(test_strided_loads) {
  const char *text =
      "func @s(A: buffer(float32, [61]), R: buffer(float32, [2, 31]), O: buffer(float32, [8, "
      "16])) {\n"
      "  O[0, ramp(0, 1, 16)] = A[ramp(0, 2, 16)];\n"
      "  O[1, ramp(0, 1, 16)] = A[ramp(30, 2, 16)];\n"
      "  O[2, ramp(0, 1, 16)] = A[ramp(15, 3, 16)];\n"
      "  O[3, ramp(0, 1, 16)] = A[ramp(0, 4, 16)] * broadcast(A[60], 16);\n"
      "  O[4, ramp(0, 1, 16)] = R[1, ramp(0, 2, 16)] - R[0, ramp(0, 2, 16)];\n"
      "  O[5, ramp(0, 1, 12)] = A[ramp(0, 5, 12)];\n"
      "  for i: int32 in range(0, 2) {\n"
      "    O[6 + i, ramp(0, 1, 8)] = A[ramp(i * 44, 2, 8)];\n"
      "    O[6 + i, ramp(8, 1, 8)] = select(ramp(0, 1, 8) < broadcast(4, 8), A[ramp(i, 3, 8)], "
      "broadcast(0f32, 8));\n"
      "  }\n"
      "}\n";
  static float A[61], R[62], O[128];
  for (int i = 0; i < 61; i++) A[i] = (float)(i * i % 97) - 40;
  for (int i = 0; i < 62; i++) R[i] = (float)(i * 7 % 31);
  void *init[3] = {A, R, O};
  size_t bytes[3] = {sizeof A, sizeof R, sizeof O};
  check_program(text, "s", init, bytes);
}
END_TEST

/* Loop kinds and bounds: serial, unrolled, vectorized (constant and variable extents, odd
 * sizes, non-zero starts, empty and negative extents), int64 and uint8 loop variables. */
START_TEST(test_loops) {
  const char *text =
      "func @loops(n: int32, A: buffer(float32, [100]), B: buffer(int32, [100]), C: buffer(int64, "
      "[40]), D: buffer(uint8, [300])) {\n"
      "  for i: int32 in vectorized(0, 100) { A[i] = A[i] * 3f32 + cast(float32, i); }\n"
      "  for i: int32 in vectorized(3, n) { B[i] = B[i - 3] + i; }\n"
      "  for i: int32 in unrolled(0, 7) { B[90 + i] = i * i; }\n"
      "  for i: int32 in range(5, 0 - n) { B[0] = 12345; }\n"
      "  for i: int32 in unrolled(0, n %% 5) { B[80 + i] = -i; }\n"
      "  for k: int64 in range(-3i64, 40i64) { if k >= 0i64 { C[k] = k * k - 7i64; } }\n"
      "  for u: uint8 in range(250u8, 6u8) { D[cast(int32, u)] = u * 2u8; }\n"
      "  for v: int32 in vectorized(0, 6) { B[60 + v] = B[60 + v] * 2; }\n"
      "}\n";
  for (int32_t n = 0; n <= 97; n += 97) {
    static float A[100];
    static int32_t B[100];
    static int64_t C[40];
    static uint8_t D[300];
    for (int i = 0; i < 100; i++) {
      A[i] = (float)i / 7;
      B[i] = i * 11 - 50;
    }
    void *init[5] = {&n, A, B, C, D};
    size_t bytes[5] = {4, sizeof A, sizeof B, sizeof C, sizeof D};
    check_program(text, "loops", init, bytes);
  }
}
END_TEST

START_TEST(test_statements) {
  const char *text =
      "func @s(n: int32, x: float32, b: bool, A: buffer(float32, [32]), B: buffer(int32, [32])) {\n"
      "  for i: int32 in range(0, 32) {\n"
      "    if i < n {\n"
      "      A[i] = x * cast(float32, i);\n"
      "    } else if b && i %% 2 == 0 {\n"
      "      A[i] = -x;\n"
      "    } else {\n"
      "      let t: int32 = i * n { B[i] = t + let(u: int32 = t * 2, u - 1); }\n"
      "    }\n"
      "    evaluate(i + 1);\n"
      "    seq { B[0] = B[0] + 1; }\n"
      "  }\n"
      "  evaluate(\"note\");\n"
      "}\n";
  for (int k = 0; k < 2; k++) {
    int32_t n = k ? 40 : 9;
    float x = 1.25f, A[32] = {0};
    uint8_t b = (uint8_t)k;
    int32_t B[32] = {0};
    void *init[5] = {&n, &x, &b, A, B};
    size_t bytes[5] = {4, 4, 1, sizeof A, sizeof B};
    check_program(text, "s", init, bytes);
  }
}
END_TEST

/* Allocate statements and block buffers: on the stack (small, constant), in the workspace
 * (large or symbolic), inside loops and blocks, strided and offset. */
START_TEST(test_allocate) {
  const char *text =
      "func @a(n: int32, A: buffer(float32, [64]), B: buffer(float32, [64])) {\n"
      "  allocate T: buffer(float32, [64], scope=\"local\") {\n"
      "    for i: int32 in range(0, 64) { T[i] = A[i] * 2f32; }\n"
      "    allocate Big: buffer(float64, [n, 1024]) {\n"
      "      for i: int32 in range(0, n) { Big[i, 1000] = cast(float64, T[i]); }\n"
      "      for i: int32 in range(0, 64) {\n"
      "        allocate S: buffer(int32, [2, 3], strides=[4, 1], offset=1, align=128) {\n"
      "          S[1, 2] = i;\n"
      "          B[i] = T[63 - i] + cast(float32, S[1, 2]) + select(i < n, cast(float32, Big[i %% "
      "n, 1000]), 0f32);\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "  block \"root\"() {\n"
      "    reads(A[0 +: 64], B[0 +: 8])\n"
      "    writes(B[0 +: 8])\n"
      "    alloc W: buffer(float32, [8, 1024])\n"
      "    for i: int32 in range(0, 8) {\n"
      "      for j: int32 in range(0, 1024) {\n"
      "        block \"w\"(vi: int32 = spatial(0, 8) <- i, vj: int32 = reduce(0, 1024) <- j) {\n"
      "          reads(A[0 +: 64], W[vi, 0])\n"
      "          writes(W[vi, 0])\n"
      "          alloc acc: buffer(float32, [1])\n"
      "          init { W[vi, 0] = 0f32; }\n"
      "          acc[0] = A[(vi * 8 + vj) %% 64];\n"
      "          W[vi, 0] = W[vi, 0] + acc[0];\n"
      "        }\n"
      "      }\n"
      "      B[i] = B[i] + W[i, 0];\n"
      "    }\n"
      "  }\n"
      "}\n";
  int32_t n = 40;
  float A[64], B[64] = {0};
  for (int i = 0; i < 64; i++) A[i] = (float)i * 0.5f - 3;
  void *init[3] = {&n, A, B};
  size_t bytes[3] = {4, sizeof A, sizeof B};
  check_program(text, "a", init, bytes);
}
END_TEST

/* Blocks: predicates (where), init only at the reduce iterators' start, iterators bound to
 * expressions, nested blocks, int64 iterators. */
START_TEST(test_blocks) {
  const char *text =
      "func @mm(A: buffer(float32, [30, 20]), B: buffer(float32, [20, 10]), C: buffer(float32, "
      "[30, 10])) {\n"
      "  block \"root\"() {\n"
      "    for io: int32 in range(0, 4) {\n"
      "      for ii: int32 in range(0, 8) {\n"
      "        for j: int32 in range(0, 10) {\n"
      "          for k: int32 in range(0, 20) {\n"
      "            block \"C\"(vi: int32 = spatial(0, 30) <- io * 8 + ii, vj: int32 = spatial(0, "
      "10) <- j, vk: int32 = reduce(0, 20) <- k) where io * 8 + ii < 30 {\n"
      "              reads(A[vi, vk], B[vk, vj], C[vi, vj])\n"
      "              writes(C[vi, vj])\n"
      "              init { C[vi, vj] = 0f32; }\n"
      "              C[vi, vj] = C[vi, vj] + A[vi, vk] * B[vk, vj];\n"
      "            }\n"
      "          }\n"
      "        }\n"
      "      }\n"
      "    }\n"
      "    for r: int64 in range(0i64, 10i64) {\n"
      "      block \"shift\"(vr: int64 = reduce(5i64, 10i64) <- r + 5i64) {\n"
      "        reads(C[0, 0])\n"
      "        writes(C[0, 0])\n"
      "        init { C[0, 0] = -1f32; }\n"
      "        C[0, 0] = C[0, 0] + 1f32;\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "}\n";
  static float A[600], B[200], C[300];
  rng_state = 5;
  for (int i = 0; i < 600; i++) A[i] = (float)rnd_range(-1, 1);
  for (int i = 0; i < 200; i++) B[i] = (float)rnd_range(-1, 1);
  for (int i = 0; i < 300; i++) C[i] = 99;
  void *init[3] = {A, B, C};
  size_t bytes[3] = {sizeof A, sizeof B, sizeof C};
  check_program(text, "mm", init, bytes);
}
END_TEST

/* Parallel loops with 1, 2 and 4 threads: captured scalars, buffers, lets and loop variables,
 * a workspace allocation inside the body, a nested parallel loop (run serially), uneven
 * chunks, empty extents. */
START_TEST(test_parallel) {
  const char *text =
      "func @p(n: int32, s: float32, A: buffer(float32, [n, 64]), B: buffer(float32, [n, 64]), C: "
      "buffer(int64, [100])) {\n"
      "  let off: int32 = n - 1 {\n"
      "    for i: int32 in parallel(0, n) {\n"
      "      allocate T: buffer(float32, [n, 64]) {\n"
      "        for j: int32 in vectorized(0, 64) { T[i, j] = A[off - i, j] * s; }\n"
      "        for j: int32 in range(0, 64) { B[i, j] = T[i, j] + cast(float32, i * off); }\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "  allocate S: buffer(int64, [10]) {\n"
      "    for o: int32 in parallel(0, 10) {\n"
      "      S[o] = cast(int64, o * 7);\n"
      "      for q: int32 in parallel(0, 10) {\n"
      "        C[o * 10 + q] = cast(int64, o) * 1000i64 + cast(int64, q) + S[o];\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "  for e: int32 in parallel(0, n - n) { C[0] = -1i64; }\n"
      "}\n";
  int32_t saved = kiln_rt_num_threads();
  const int threads[3] = {1, 2, 4};
  for (int t = 0; t < 3; t++) {
    ck_ok(NULL, kiln_rt_set_num_threads(threads[t]));
    int32_t n = 13 + t;
    float s = 0.5f;
    static float A[16 * 64], B[16 * 64];
    static int64_t C[100];
    for (int i = 0; i < 16 * 64; i++) {
      A[i] = (float)(i % 97) - 40;
      B[i] = 0;
    }
    void *init[5] = {&n, &s, A, B, C};
    size_t bytes[5] = {4, 4, sizeof(float) * 64 * (size_t)n, sizeof(float) * 64 * (size_t)n,
                       sizeof C};
    check_program(text, "p", init, bytes);
  }
  ck_ok(NULL, kiln_rt_set_num_threads(saved));
}
END_TEST

/* A parallel loop propagates an error of its body (a failed workspace allocation). */
START_TEST(test_parallel_error) {
  kiln_tir_module *m = parse("func @huge(n: int64, A: buffer(float32, [8])) {\n"
                             "  for i: int32 in parallel(0, 8) {\n"
                             "    allocate T: buffer(float32, [n]) { T[0] = 1f32; A[i] = T[0]; }\n"
                             "  }\n"
                             "}\n");
  tgt_jit *j = jit_of(m);
  kiln_kernel_fn fn = kernel(j, "huge");
  int64_t n = 16, sh[1] = {8};
  float A[8] = {0};
  kiln_tensor args[2] = {{&n, 1, 0, 0, KILN_INT64, NULL, NULL, 0},
                         {A, 1, 0, 1, KILN_FLOAT32, sh, NULL, 0}};
  ck_assert_int_eq(fn(args, 2), 0);
  ck_assert(A[7] == 1);
  n = (int64_t)1 << 61; /* 8 EiB: the allocation fails */
  expect_kernel_error(fn, args, 2, KILN_ERR_NOMEM, "huge: out of memory allocating buffer 'T'");
  tgt_jit_free(j);
  kiln_tir_module_free(m);
}
END_TEST

/* select evaluates only the chosen arm when an arm loads: the guarded element past the end of
 * the buffer lies on an inaccessible page, so reading it would crash. */
START_TEST(test_guarded_loads) {
  kiln_tir_module *m =
      parse("func @g(n: int32, A: buffer(float32, [n]), B: buffer(float32, [64]), I: buffer(int32, "
            "[64])) {\n"
            "  for i: int32 in range(0, 64) { B[i] = select(i < n, A[i] * 2f32, -1f32); }\n"
            "  for v: int32 in range(0, 4) {\n"
            "    B[ramp(v * 16, 1, 16)] = B[ramp(v * 16, 1, 16)] + select(ramp(v * 16, 1, 16) < "
            "broadcast(n, 16), A[ramp(v * 16, 1, 16)], broadcast(0f32, 16));\n"
            "    I[ramp(v * 16, 1, 16)] = select(ramp(v * 16, 1, 16) >= broadcast(n, 16), "
            "broadcast(7, 16), cast(int32x16, A[ramp(v * 48, 3, 16) / broadcast(3, 16)]) + "
            "broadcast(cast(int32, A[0]), 16));\n"
            "  }\n"
            "}\n");
  tgt_jit *j = jit_of(m);
  kiln_kernel_fn fn = kernel(j, "g");
  long page = sysconf(_SC_PAGESIZE);
  unsigned char *mem =
      mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ck_assert(mem != MAP_FAILED);
  ck_assert_int_eq(mprotect(mem + page, (size_t)page, PROT_NONE), 0);
  int32_t n = 21;
  float *A = (float *)(mem + page) - n; /* A[n] is the first byte of the protected page */
  for (int i = 0; i < n; i++) A[i] = (float)i;
  float B[64];
  int32_t I[64];
  int64_t sa[1] = {n}, sb[1] = {64};
  kiln_tensor args[4] = {{&n, 1, 0, 0, KILN_INT32, NULL, NULL, 0},
                         {A, 1, 0, 1, KILN_FLOAT32, sa, NULL, 0},
                         {B, 1, 0, 1, KILN_FLOAT32, sb, NULL, 0},
                         {I, 1, 0, 1, KILN_INT32, sb, NULL, 0}};
  ck_assert_int_eq(fn(args, 4), 0);
  for (int i = 0; i < 64; i++) {
    float want = i < n ? 3.0f * (float)i : -1.0f;
    ck_assert_msg(B[i] == want, "B[%d] = %g, want %g", i, B[i], want);
    ck_assert_int_eq(I[i], i < n ? i : 7);
  }
  /* the interpreter agrees (on ordinary memory) */
  float A2[21], B2[64];
  int32_t I2[64];
  memcpy(A2, A, sizeof A2);
  void *iargs[4] = {&n, A2, B2, I2};
  ck_ok(ctx, ir_interpret(ctx, m->funcs[0], 4, iargs));
  ck_assert_int_eq(memcmp(B, B2, sizeof B), 0);
  ck_assert_int_eq(memcmp(I, I2, sizeof I), 0);
  munmap(mem, (size_t)page * 2);
  tgt_jit_free(j);
  kiln_tir_module_free(m);
}
END_TEST

/* Integer division by zero does not trap: x / 0 == 0 and x % 0 == x (documented in codegen.c);
 * INT_MIN / -1 wraps as in the interpreter. */
START_TEST(test_division_by_zero) {
  kiln_tir_module *m = parse("func @d(A: buffer(int32, [4]), D: buffer(int32, [4]), O: "
                             "buffer(int32, [4, 4]), U: buffer(uint8, [2, 4])) {\n"
                             "  for i: int32 in range(0, 4) {\n"
                             "    O[0, i] = A[i] / D[i];\n"
                             "    O[1, i] = A[i] % D[i];\n"
                             "    O[2, i] = A[i] // D[i];\n"
                             "    O[3, i] = A[i] %% D[i];\n"
                             "    U[0, i] = cast(uint8, A[i]) / cast(uint8, D[i]);\n"
                             "    U[1, i] = cast(uint8, A[i]) %% cast(uint8, D[i]);\n"
                             "  }\n"
                             "}\n");
  tgt_jit *j = jit_of(m);
  kiln_kernel_fn fn = kernel(j, "d");
  int32_t A[4] = {7, -7, INT32_MIN, 9}, D[4] = {0, 0, -1, -2}, O[16];
  uint8_t U[8];
  int64_t s4[1] = {4}, s44[2] = {4, 4}, s24[2] = {2, 4};
  kiln_tensor args[4] = {{A, 1, 0, 1, KILN_INT32, s4, NULL, 0},
                         {D, 1, 0, 1, KILN_INT32, s4, NULL, 0},
                         {O, 1, 0, 2, KILN_INT32, s44, NULL, 0},
                         {U, 1, 0, 2, KILN_UINT8, s24, NULL, 0}};
  ck_assert_int_eq(fn(args, 4), 0);
  const int32_t want[16] = {0, 0,  INT32_MIN, -4,  /* /: by zero 0; INT_MIN / -1 wraps; truncates */
                            7, -7, 0,         1,   /* %: by zero the dividend */
                            0, 0,  INT32_MIN, -5,  /* //: floors */
                            7, -7, 0,         -1}; /* %%: the divisor's sign */
  for (int k = 0; k < 16; k++)
    ck_assert_msg(O[k] == want[k], "O[%d, %d] = %d, want %d", k / 4, k % 4, O[k], want[k]);
  const uint8_t uwant[8] = {0, 0, 0, 0, 7, 249, 0, 9};
  for (int k = 0; k < 8; k++)
    ck_assert_msg(U[k] == uwant[k], "U[%d, %d] = %d, want %d", k / 4, k % 4, U[k], uwant[k]);
  tgt_jit_free(j);
  kiln_tir_module_free(m);
}
END_TEST

/* ---- Random expression trees ----------------------------------------------------------- */

enum { RN = 64, RM = 24 }; /* elements per buffer, expressions per function */
static const kiln_dtype rtypes[] = {{KILN_TYPE_INT, 32, 1},
                                    {KILN_TYPE_INT, 64, 1},
                                    {KILN_TYPE_INT, 8, 1},
                                    {KILN_TYPE_UINT, 8, 1},
                                    {KILN_TYPE_FLOAT, 32, 1}};
enum { RT = 5, RF32 = 4 };

typedef struct gen {
  ir_arena *a;
  ir_buffer *in[RT], *div[RT];
  ir_var *i;
} gen;

static int type_index(kiln_dtype t) {
  for (int k = 0; k < RT; k++)
    if (ir_dt_eq(rtypes[k], t)) return k;
  return -1;
}

/* An index into the inputs: i, a permutation of it, or a constant. */
static ir_expr *gen_index(gen *g) {
  ir_arena *a = g->a;
  switch (rnd() % 3) {
  case 0: return &g->i->h;
  case 1:
    return ir_binop(a, IR_FLOORMOD, ir_add(a, ir_mul(a, &g->i->h, ir_i32(a, 7)), ir_i32(a, 3)),
                    ir_i32(a, RN));
  default: return ir_i32(a, (int64_t)(rnd() % RN));
  }
}

static ir_expr *gen_load(gen *g, ir_buffer *b) {
  ir_expr *idx = gen_index(g);
  return ir_load_new(g->a, b, 1, &idx);
}

static ir_expr *gen_const(gen *g, kiln_dtype t) {
  if (t.code == KILN_TYPE_FLOAT) return ir_float(g->a, t, (double)(int)(rnd() % 2001 - 1000) / 64);
  if (t.code == KILN_TYPE_UINT) return ir_int(g->a, t, (int64_t)(rnd() % 256));
  if (t.bits == 8) return ir_int(g->a, t, (int64_t)(rnd() % 256) - 128);
  if (rnd() % 4 == 0) return ir_int(g->a, t, t.bits == 64 ? INT64_MIN : INT32_MIN);
  return ir_int(g->a, t, (int64_t)(rnd() % 2001) - 1000);
}

static ir_expr *gen_expr(gen *g, kiln_dtype t, int depth);

/* A bool: a comparison of two random expressions, maybe combined. */
static ir_expr *gen_cond(gen *g, int depth) {
  static const int cmps[] = {IR_EQ, IR_NE, IR_LT, IR_LE, IR_GT, IR_GE};
  kiln_dtype u = rtypes[rnd() % RT];
  ir_expr *c =
      ir_binop(g->a, cmps[rnd() % 6], gen_expr(g, u, depth - 1), gen_expr(g, u, depth - 1));
  switch (rnd() % 4) {
  case 0: return ir_not_new(g->a, c);
  case 1: return ir_binop(g->a, rnd() % 2 ? IR_AND : IR_OR, c, gen_cond(g, depth - 1));
  default: return c;
  }
}

/* A value of type t converted from another type. Floats become integers only from the bounded
 * float inputs (the interpreter rejects out-of-range conversions). */
static ir_expr *gen_cast(gen *g, kiln_dtype t, int depth) {
  ir_arena *a = g->a;
  int r = (int)(rnd() % 6);
  if (r == 0) return ir_cast_new(a, t, gen_cond(g, depth)); /* bool -> t */
  if (t.code != KILN_TYPE_FLOAT && r == 1)
    return ir_cast_new(a, t, ir_cast_new(a, KILN_INT32, gen_load(g, g->in[RF32])));
  kiln_dtype u;
  do u = rtypes[rnd() % (RT - 1)]; /* an integer type */
  while (ir_dt_eq(u, t));
  return ir_cast_new(a, t, gen_expr(g, u, depth - 1));
}

static ir_expr *gen_expr(gen *g, kiln_dtype t, int depth) {
  ir_arena *a = g->a;
  int ti = type_index(t);
  if (depth <= 0 || rnd() % 5 == 0) {
    int r = (int)(rnd() % 10);
    if (r < 6) return gen_load(g, g->in[ti]);
    if (r < 8) return gen_const(g, t);
    return gen_cast(g, t, 1);
  }
  static const int ops[] = {IR_ADD,      IR_SUB,      IR_MUL, IR_DIV, IR_MOD,
                            IR_FLOORDIV, IR_FLOORMOD, IR_MIN, IR_MAX};
  int r = (int)(rnd() % 12);
  if (r < 9) {
    int op = ops[r];
    ir_expr *x = gen_expr(g, t, depth - 1), *y;
    bool division = op == IR_DIV || op == IR_MOD || op == IR_FLOORDIV || op == IR_FLOORMOD;
    if (division && t.code != KILN_TYPE_FLOAT) {
      /* never zero: a non-zero constant or a load of the non-zero divisors */
      if (rnd() % 2) {
        int64_t v = (int64_t)(rnd() % 9) + 1;
        if (t.code == KILN_TYPE_INT && rnd() % 2) v = -v;
        y = ir_int(a, t, v);
      } else {
        y = gen_load(g, g->div[ti]);
      }
    } else {
      y = gen_expr(g, t, depth - 1);
    }
    return ir_binop(a, op, x, y);
  }
  if (r == 9)
    return ir_select_new(a, gen_cond(g, depth - 1), gen_expr(g, t, depth - 1),
                         gen_expr(g, t, depth - 1));
  if (r == 10) return gen_cast(g, t, depth);
  /* let v = e1 in v op e2 (op min or max: the body uses v twice) */
  ir_var *v = ir_var_new(a, "t", t);
  ir_expr *body = ir_binop(a, rnd() % 2 ? IR_MIN : IR_ADD,
                           ir_binop(a, IR_MAX, &v->h, gen_expr(g, t, depth - 1)), &v->h);
  return ir_let_new(a, v, gen_expr(g, t, depth - 1), body);
}

/* Fills n elements of type t at p: edge values first, then random ones (non-zero if nonzero). */
static void fill_random(void *p, kiln_dtype t, int n, bool nonzero) {
  for (int k = 0; k < n; k++) {
    uint64_t r = rnd();
    if (t.code == KILN_TYPE_FLOAT) {
      float v = (float)rnd_range(-100, 100);
      if (k % 7 == 0) v = (float)(int)v; /* integral values: exact quotients and remainders */
      if (k == 0) v = -0.0f;
      ((float *)p)[k] = v;
      continue;
    }
    int64_t v = (int64_t)r >> (r % 64);
    if (k < 4) v = (int64_t[]){0, -1, INT64_MIN, INT64_MAX}[k];
    if (nonzero && (uint64_t)v << (64 - t.bits) == 0) v = k % 2 ? -1 : 3;
    switch (t.bits) {
    case 8: ((int8_t *)p)[k] = (int8_t)v; break;
    case 32: ((int32_t *)p)[k] = (int32_t)v; break;
    default: ((int64_t *)p)[k] = v; break;
    }
  }
}

/* RM random expressions of type rtypes[ot] over the inputs, stored to Out[j, i] for i in
 * [0, RN) in a loop of the given kind; run through both and compared bit for bit. */
static void random_round(int ot, int for_kind, uint64_t seed) {
  rng_state = seed;
  kiln_tir_module *mod = ir_module_new(ctx);
  ck_assert_ptr_nonnull(mod);
  gen g = {mod->arena, {NULL}, {NULL}, NULL};
  ir_arena *a = mod->arena;
  ir_node *params[2 * RT + 1];
  char name[16];
  for (int k = 0; k < RT; k++) {
    ir_expr *dim = ir_i32(a, RN);
    snprintf(name, sizeof name, "In%d", k);
    params[k] = &(g.in[k] = ir_buffer_new(a, name, rtypes[k], 1, &dim, 0, NULL, NULL, 0, NULL))->h;
    snprintf(name, sizeof name, "Div%d", k);
    params[RT + k] =
        &(g.div[k] = ir_buffer_new(a, name, rtypes[k], 1, &dim, 0, NULL, NULL, 0, NULL))->h;
  }
  ir_expr *odims[2] = {ir_i32(a, RM), ir_i32(a, RN)};
  kiln_dtype t = rtypes[ot];
  ir_buffer *out = ir_buffer_new(a, "Out", t, 2, odims, 0, NULL, NULL, 0, NULL);
  params[2 * RT] = &out->h;
  g.i = ir_var_new(a, "i", KILN_INT32);
  ir_stmt *stores[RM];
  for (int k = 0; k < RM; k++) {
    ir_expr *idx[2] = {ir_i32(a, k), &g.i->h};
    ir_expr *e = gen_expr(&g, t, 4);
    ck_assert_msg(e != NULL, "generating an expression failed: %s", kiln_context_errmsg(ctx));
    stores[k] = ir_store_new(a, out, e, 2, idx);
  }
  ir_stmt *body =
      ir_for_new(a, g.i, ir_i32(a, 0), ir_i32(a, RN), for_kind, 0, NULL, ir_seq_new(a, RM, stores));
  ir_func *f = ir_func_new(a, "rand", 2 * RT + 1, params, 0, NULL, body);
  ck_assert_msg(f != NULL, "building failed: %s", kiln_context_errmsg(ctx));
  ck_ok(ctx, ir_module_add(mod, f));

  static unsigned char data[2 * RT][RN * 8], outd[RM * RN * 8];
  void *init[2 * RT + 1];
  size_t bytes[2 * RT + 1];
  for (int k = 0; k < RT; k++) {
    fill_random(data[k], rtypes[k], RN, false);
    fill_random(data[RT + k], rtypes[k], RN, true);
    init[k] = data[k];
    init[RT + k] = data[RT + k];
    bytes[k] = bytes[RT + k] = kiln_dtype_bytes(rtypes[k]) * RN;
  }
  memset(outd, 0, sizeof outd);
  init[2 * RT] = outd;
  bytes[2 * RT] = kiln_dtype_bytes(t) * RM * RN;

  tgt_jit *j = jit_of(mod);
  dual d;
  dual_init(&d, f, init, bytes);
  dual_run(&d, f, kernel(j, "rand"));
  if (t.code == KILN_TYPE_FLOAT) {
    for (int k = 0; k < RM; k++) {
      char what[64];
      snprintf(what, sizeof what, "seed %llu expression %d", (unsigned long long)seed, k);
      const float *r = (const float *)d.ref[2 * RT] + k * RN,
                  *o = (const float *)d.out[2 * RT] + k * RN;
      for (int e = 0; e < RN; e++) {
        /* equal values (min and max of +0 and -0 may give either zero: IEEE minNum leaves
         * it open, and libm's fmin differs between platforms) or both NaN */
        if (r[e] != o[e] && !(isnan(r[e]) && isnan(o[e]))) {
          char *text = ir_node_to_string(ctx, stores[k]);
          ck_abort_msg("%s element %d: interpreter %.9g, kernel %.9g in %s", what, e, r[e], o[e],
                       text);
        }
      }
    }
  } else {
    size_t eb = kiln_dtype_bytes(t);
    for (int k = 0; k < RM; k++)
      if (memcmp((char *)d.ref[2 * RT] + (size_t)k * RN * eb,
                 (char *)d.out[2 * RT] + (size_t)k * RN * eb, RN * eb)) {
        char *text = ir_node_to_string(ctx, stores[k]);
        ck_abort_msg("seed %llu expression %d differs: %s", (unsigned long long)seed, k, text);
      }
  }
  dual_free(&d);
  tgt_jit_free(j);
  kiln_tir_module_free(mod);
}

START_TEST(test_random_int32) {
  random_round(0, IR_FOR_SERIAL, 101);
  random_round(0, IR_FOR_VECTORIZED, 102);
}
END_TEST
START_TEST(test_random_int64) {
  random_round(1, IR_FOR_SERIAL, 201);
  random_round(1, IR_FOR_VECTORIZED, 202);
}
END_TEST
START_TEST(test_random_int8) {
  random_round(2, IR_FOR_SERIAL, 301);
  random_round(2, IR_FOR_VECTORIZED, 302);
}
END_TEST
START_TEST(test_random_uint8) {
  random_round(3, IR_FOR_SERIAL, 401);
  random_round(3, IR_FOR_VECTORIZED, 402);
}
END_TEST
START_TEST(test_random_float32) {
  random_round(4, IR_FOR_SERIAL, 501);
  random_round(4, IR_FOR_VECTORIZED, 502);
  random_round(4, IR_FOR_SERIAL, 503);
}
END_TEST

/* ---- Intrinsics ------------------------------------------------------------------------ */

/* Distance in units in the last place between two floats of a format with `bits` total bits
 * given as bit patterns (sign-magnitude made monotonic). NaN == NaN. */
static uint64_t ulp_distance(uint64_t a, uint64_t b, int bits, bool a_nan, bool b_nan) {
  if (a_nan || b_nan) return a_nan && b_nan ? 0 : UINT64_MAX;
  uint64_t sign = (uint64_t)1 << (bits - 1);
  int64_t x = a & sign ? -(int64_t)(a & ~sign) : (int64_t)a;
  int64_t y = b & sign ? -(int64_t)(b & ~sign) : (int64_t)b;
  return x > y ? (uint64_t)(x - y) : (uint64_t)(y - x);
}

/* Inputs for intrinsic `op`: its interesting range plus special values. */
static double intrinsic_input(int op, int k) {
  static const double specials[] = {0.0,  -0.0, INFINITY, -INFINITY, NAN,   1.0,
                                    -1.0, 0.5,  2.5,      -2.5,      1e-40, 1e-3};
  if (k < 12) return specials[k];
  switch ((ir_intrinsic)op) {
  case IR_OP_EXP: return rnd_range(-105, 90);
  case IR_OP_LOG: return pow(10, rnd_range(-44, 38));
  case IR_OP_TANH: return k % 2 ? rnd_range(-1, 1) : rnd_range(-12, 12);
  case IR_OP_ERF: return k % 2 ? rnd_range(-1.2, 1.2) : rnd_range(-5, 5);
  case IR_OP_SIGMOID: return k % 2 ? rnd_range(-10, 10) : rnd_range(-110, 110);
  case IR_OP_SQRT:
  case IR_OP_RSQRT: return pow(10, rnd_range(-40, 38));
  case IR_OP_POW: return rnd_range(0, 10);
  case IR_OP_FLOOR:
  case IR_OP_CEIL:
  case IR_OP_ROUND: return (double)(int)rnd_range(-200, 200) / 4;
  default: return rnd_range(-100, 100);
  }
}

/* y = op(x) (pow: x ** e, fma: x * e + x) for every intrinsic over NI inputs of float type
 * `dt`, in vectorized loops; compared with the interpreter: at most max_ulp[op] apart. */
enum { NI = 2048 };
static void check_intrinsics(const char *dt, const int *max_ulp) {
  char text[8192];
  int len =
      snprintf(text, sizeof text,
               "func @intr(X: buffer(%s, [%d]), E: buffer(%s, [%d]), Y: buffer(%s, [%d, %d])) {\n",
               dt, NI, dt, NI, dt, IR_OP_COUNT, NI);
  for (int op = 0; op < IR_OP_COUNT; op++) {
    const char *name = ir_intrinsic_name(op);
    const char *args = op == IR_OP_POW   ? "X[i], E[i]"
                       : op == IR_OP_FMA ? "X[i], E[i], X[(i + 1) %% 2048]"
                                         : "X[i]";
    len += snprintf(text + len, sizeof text - (size_t)len,
                    "  for i: int32 in vectorized(0, %d) { Y[%d, i] = %s(%s); }\n", NI, op, name,
                    args);
  }
  snprintf(text + len, sizeof text - (size_t)len, "}\n");
  kiln_tir_module *m = parse(text);
  const ir_func *f = m->funcs[0];
  kiln_dtype t = ((const ir_buffer *)f->params[0])->h.dtype;
  size_t eb = kiln_dtype_bytes(t);
  /* The inputs of all ops share X; each op's rows are checked over the inputs in its own
   * range, so X is split: op k uses elements where the generator for k produced them. */
  static unsigned char X[NI * 8], E[NI * 8], Y[IR_OP_COUNT * NI * 8];
  tgt_jit *j = jit_of(m);
  kiln_kernel_fn fn = kernel(j, "intr");
  for (int round = 0; round < IR_OP_COUNT; round++) {
    rng_state = 1000 + (uint64_t)round;
    for (int k = 0; k < NI; k++) {
      double x = intrinsic_input(round, k),
             e = round == IR_OP_POW ? rnd_range(-6, 6) : rnd_range(-50, 50);
      /* stored through the interpreter's rounding: cast via a tiny conversion program is
       * overkill; the formats are filled by value here */
      if (eb == 8) {
        memcpy(X + k * 8, &x, 8);
        memcpy(E + k * 8, &e, 8);
      } else if (eb == 4) {
        float xf = (float)x, ef = (float)e;
        memcpy(X + k * 4, &xf, 4);
        memcpy(E + k * 4, &ef, 4);
      } else {
        /* 16-bit: random patterns in range are produced by truncating float bits */
        float xf = (float)x, ef = (float)e;
        uint32_t xb, ebits;
        memcpy(&xb, &xf, 4);
        memcpy(&ebits, &ef, 4);
        uint16_t xh, eh;
        if (t.code == KILN_TYPE_BFLOAT) {
          xh = (uint16_t)(xb >> 16);
          eh = (uint16_t)(ebits >> 16);
        } else { /* float16: keep the value in range by a crude conversion of the exponent */
          float ax = fabsf(xf);
          int ex;
          frexpf(ax, &ex);
          xh = (uint16_t)((xb >> 16) & 0x8000);
          if (isnan(xf))
            xh |= 0x7e00;
          else if (ax >= 65504 || isinf(xf))
            xh |= 0x7c00;
          else if (ax >= 0x1p-14f)
            xh |= (uint16_t)(((ex - 1 + 15) << 10) | ((xb >> 13) & 0x3ff));
          else
            xh |= (uint16_t)(ax * 0x1p24f);
          eh = (uint16_t)(((ebits >> 16) & 0x8000) |
                          (uint16_t)(fabsf(ef) < 1 ? 0x3800
                                                   : 0x4000 + (uint16_t)((ebits >> 13) & 0x3ff)));
        }
        memcpy(X + k * 2, &xh, 2);
        memcpy(E + k * 2, &eh, 2);
      }
    }
    void *init[3] = {X, E, Y};
    size_t bytes[3] = {eb * NI, eb * NI, eb * NI * IR_OP_COUNT};
    dual d;
    dual_init(&d, f, init, bytes);
    dual_run(&d, f, fn);
    const unsigned char *r = (const unsigned char *)d.ref[2] + (size_t)round * NI * eb;
    const unsigned char *o = (const unsigned char *)d.out[2] + (size_t)round * NI * eb;
    for (int k = 0; k < NI; k++) {
      uint64_t a = 0, b = 0;
      memcpy(&a, r + k * eb, eb);
      memcpy(&b, o + k * eb, eb);
      int bits = (int)eb * 8;
      bool an, bn;
      if (eb == 8) {
        double x, y;
        memcpy(&x, &a, 8);
        memcpy(&y, &b, 8);
        an = isnan(x);
        bn = isnan(y);
      } else if (eb == 4) {
        float x, y;
        memcpy(&x, &a, 4);
        memcpy(&y, &b, 4);
        an = isnan(x);
        bn = isnan(y);
      } else {
        uint64_t emask = t.code == KILN_TYPE_BFLOAT ? 0x7f80 : 0x7c00,
                 fmask = t.code == KILN_TYPE_BFLOAT ? 0x7f : 0x3ff;
        an = (a & emask) == emask && (a & fmask);
        bn = (b & emask) == emask && (b & fmask);
      }
      uint64_t dist = ulp_distance(a, b, bits, an, bn);
      ck_assert_msg(dist <= (uint64_t)max_ulp[round],
                    "%s %s: input %d: interpreter %llx, kernel %llx (%llu ulp)", dt,
                    ir_intrinsic_name(round), k, (unsigned long long)a, (unsigned long long)b,
                    (unsigned long long)dist);
    }
    dual_free(&d);
  }
  tgt_jit_free(j);
  kiln_tir_module_free(m);
}

/* float32: exp, log, tanh, erf, sigmoid are codegen's approximations (at most 4 ulp, measured
 * 2.5); everything else is exact (pow and rsqrt are computed in double like the interpreter). */
START_TEST(test_intrinsics_float32) {
  int tol[IR_OP_COUNT] = {0};
  tol[IR_OP_EXP] = tol[IR_OP_LOG] = tol[IR_OP_TANH] = tol[IR_OP_ERF] = tol[IR_OP_SIGMOID] = 4;
  check_intrinsics("float32", tol);
}
END_TEST

/* float64 calls libm like the interpreter: exact. */
START_TEST(test_intrinsics_float64) {
  int tol[IR_OP_COUNT] = {0};
  check_intrinsics("float64", tol);
}
END_TEST

/* float16/bfloat16 compute in float: the approximated functions may round to the neighbour
 * (1 ulp of the 16-bit format); the rest are exact. */
START_TEST(test_intrinsics_float16) {
  int tol[IR_OP_COUNT] = {0};
  tol[IR_OP_EXP] = tol[IR_OP_LOG] = tol[IR_OP_TANH] = tol[IR_OP_ERF] = tol[IR_OP_SIGMOID] = 1;
  check_intrinsics("float16", tol);
  check_intrinsics("bfloat16", tol);
  if (strstr(host.triple, "x86_64")) {
    jit_target = &host_nof16c;
    check_intrinsics("float16", tol);
  }
}
END_TEST

START_TEST(test_fabs_integers) {
  const char *text =
      "func @ab(A: buffer(int8, [4]), B: buffer(int32, [4]), C: buffer(uint16, [4])) {\n"
      "  for i: int32 in range(0, 4) { A[i] = fabs(A[i]); B[i] = fabs(B[i]); C[i] = fabs(C[i]); }\n"
      "}\n";
  int8_t A[4] = {-128, -5, 0, 7};
  int32_t B[4] = {INT32_MIN, -1, 3, -99};
  uint16_t C[4] = {65535, 1, 0, 32768};
  void *init[3] = {A, B, C};
  size_t bytes[3] = {sizeof A, sizeof B, sizeof C};
  check_program(text, "ab", init, bytes);
}
END_TEST

/* ---- Targets: vector code, the IR, symbols --------------------------------------------- */

static const char *vadd_text =
    "func @vadd(A: buffer(float32, [64]), B: buffer(float32, [64]), C: buffer(float32, [64])) {\n"
    "  for i: int32 in vectorized(0, 64) { C[i] = A[i] + B[i] * 2f32; }\n"
    "}\n";

START_TEST(test_asm_vector_registers) {
  kiln_tir_module *m = parse(vadd_text);
  tgt_target avx512 = x86_target("skylake-avx512", "+avx512f", 512);
  char *s = module_text(m, &avx512, 3, true);
  ck_assert_msg(strstr(s, "zmm") != NULL, "no zmm registers in:\n%s", s);
  free(s);
  tgt_target avx2 = x86_target("haswell", "+avx2,+fma", 256);
  s = module_text(m, &avx2, 3, true);
  ck_assert_msg(strstr(s, "ymm") != NULL, "no ymm registers in:\n%s", s);
  ck_assert(strstr(s, "zmm") == NULL);
  free(s);
  kiln_tir_module_free(m);
}
END_TEST

/* Targets from target.c: the detected host runs kernels; a parsed AVX2 target string gives
 * ymm code. */
START_TEST(test_targets_from_strings) {
  tgt_target t;
  ck_ok(ctx, tgt_target_host(ctx, &t));
  ck_assert(t.is_host);
  const tgt_target *saved = jit_target;
  jit_target = &t;
  float A[64], B[64], C[64] = {0};
  for (int i = 0; i < 64; i++) {
    A[i] = (float)i * 0.5f;
    B[i] = 3 - (float)i;
  }
  void *init[3] = {A, B, C};
  size_t bytes[3] = {sizeof A, sizeof B, sizeof C};
  check_program(vadd_text, "vadd", init, bytes);
  jit_target = saved;
  if (strncmp(host.triple, "x86_64", 6) == 0) {
    ck_ok(ctx, tgt_target_parse(ctx, "llvm -mcpu=haswell", &t));
    kiln_tir_module *m = parse(vadd_text);
    char *s = module_text(m, &t, 3, true);
    ck_assert_msg(strstr(s, "ymm") != NULL && strstr(s, "zmm") == NULL, "%s", s);
    free(s);
    kiln_tir_module_free(m);
  }
}
END_TEST

/* exp, tanh, erf and sigmoid vectorize: vector operations and no libm calls. */
START_TEST(test_math_vectorizes) {
  static const char *fns[] = {"exp", "tanh", "erf", "sigmoid", "log"};
  tgt_target avx512 = x86_target("skylake-avx512", "+avx512f", 512);
  tgt_target avx2 = x86_target("haswell", "+avx2,+fma", 256);
  for (int k = 0; k < 5; k++) {
    char text[512];
    snprintf(text, sizeof text,
             "func @m(A: buffer(float32, [16]), B: buffer(float32, [16])) {\n"
             "  for i: int32 in vectorized(0, 16) { B[i] = %s(A[i]); }\n"
             "}\n",
             fns[k]);
    kiln_tir_module *m = parse(text);
    char *ir = module_text(m, &avx512, 3, false);
    ck_assert_msg(strstr(ir, "<16 x float>") != NULL, "%s: no <16 x float> in:\n%s", fns[k], ir);
    ck_assert_msg(!strstr(ir, "@expf") && !strstr(ir, "@tanhf") && !strstr(ir, "@erff") &&
                      !strstr(ir, "@logf"),
                  "%s: a libm call in:\n%s", fns[k], ir);
    free(ir);
    ir = module_text(m, &avx2, 3, false);
    ck_assert_msg(strstr(ir, "<8 x float>") != NULL || strstr(ir, "<16 x float>") != NULL,
                  "%s: not vectorized for AVX2", fns[k]);
    free(ir);
    kiln_tir_module_free(m);
  }
}
END_TEST

/* Loop hints reach LLVM: vectorize.width and unroll.full in the unoptimized IR; parallel loops
 * become task functions launched through the runtime. */
START_TEST(test_ir_structure) {
  kiln_tir_module *m = parse("func @k(A: buffer(float32, [64]), n: int32) {\n"
                             "  for i: int32 in vectorized(0, 24) { A[i] = 1f32; }\n"
                             "  for i: int32 in unrolled(0, 4) { A[i] = 2f32; }\n"
                             "  for i: int32 in parallel(0, n) { A[i] = 3f32; }\n"
                             "}\n");
  char *ir = module_text(m, &host, 0, false);
  ck_assert_msg(strstr(ir, "!\"llvm.loop.vectorize.width\", i32 16}") != NULL, "%s", ir);
  ck_assert(strstr(ir, "llvm.loop.vectorize.enable") != NULL);
  ck_assert(strstr(ir, "llvm.loop.unroll.full") != NULL);
  ck_assert(strstr(ir, "@kiln_rt_parallel_launch(ptr @k.par0") != NULL);
  ck_assert(strstr(ir, "define internal i32 @k.par0.body(ptr noalias") != NULL);
  ck_assert(strstr(ir, "define i32 @k(ptr") != NULL);
  ck_assert(strstr(ir, "\"target-cpu\"") != NULL);
  ck_assert(strstr(ir, "fadd fast") == NULL);
  free(ir);
  kiln_tir_module_free(m);
}
END_TEST

/* fast-math flags appear on the program's float operations only with target->fast_math. */
START_TEST(test_fast_math) {
  kiln_tir_module *m =
      parse("func @fm(A: buffer(float32, [8]), x: float32) { A[0] = A[1] * x + A[2]; }\n");
  tgt_target t = host;
  char *ir = module_text(m, &t, 0, false);
  ck_assert(strstr(ir, "fmul float") != NULL && strstr(ir, "fmul fast") == NULL);
  free(ir);
  t.fast_math = true;
  ir = module_text(m, &t, 0, false);
  ck_assert_msg(strstr(ir, "fmul fast float") != NULL && strstr(ir, "fadd fast float") != NULL,
                "%s", ir);
  free(ir);
  kiln_tir_module_free(m);
}
END_TEST

/* Every symbol that an object file of generated code leaves undefined is one the JIT defines:
 * a program using every intrinsic and operation on every float type, on the host and on a
 * baseline x86-64 without SSE4.1 or FMA (where LLVM calls floorf, fmaf, ...). */
static void check_object_symbols(const tgt_target *t) {
  const char *text = "func @all(A: buffer(float32, [64]), D: buffer(float64, [64]), H: "
                     "buffer(float16, [64]), G: buffer(bfloat16, [64]), n: int32) {\n"
                     "  for i: int32 in range(0, 64) {\n"
                     "    A[i] = exp(A[i]) + log(A[i]) + sqrt(A[i]) + rsqrt(A[i]) + tanh(A[i]) + "
                     "erf(A[i]) + sigmoid(A[i]) + pow(A[i], A[63 - i])\n"
                     "      + fabs(A[i]) + floor(A[i]) + ceil(A[i]) + round(A[i]) + fma(A[i], "
                     "A[i], A[1]) + A[i] % A[2] + A[i] // A[3] + A[i] %% A[4];\n"
                     "    D[i] = exp(D[i]) + log(D[i]) + sqrt(D[i]) + rsqrt(D[i]) + tanh(D[i]) + "
                     "erf(D[i]) + sigmoid(D[i]) + pow(D[i], D[63 - i])\n"
                     "      + fabs(D[i]) + floor(D[i]) + ceil(D[i]) + round(D[i]) + fma(D[i], "
                     "D[i], D[1]) + D[i] % D[2] + D[i] // D[3] + D[i] %% D[4];\n"
                     "    H[i] = exp(H[i]) + pow(H[i], H[1]) + round(H[i]) + fma(H[i], H[2], H[3]) "
                     "+ H[i] % H[5] + cast(float16, D[i]);\n"
                     "    G[i] = tanh(G[i]) + pow(G[i], G[1]) + floor(G[i]) + fma(G[i], G[2], "
                     "G[3]) + G[i] %% G[5] + cast(bfloat16, D[i]);\n"
                     "  }\n"
                     "  for i: int32 in range(0, 64) { A[i] = 0f32; }\n"
                     "  for i: int32 in range(0, 64) { D[i] = cast(float64, A[(i + 1) %% 64]); }\n"
                     "  for i: int32 in parallel(0, n) { allocate T: buffer(float32, [n]) { T[0] = "
                     "A[i]; A[i] = T[0]; } }\n"
                     "}\n";
  kiln_tir_module *m = parse(text);
  tgt_llvm_module *lm;
  ck_ok(ctx, tgt_codegen(ctx, m, t, NULL, &lm));
  void *obj;
  size_t len;
  ck_ok(ctx, tgt_llvm_module_object(lm, &obj, &len));
  LLVMMemoryBufferRef mb = LLVMCreateMemoryBufferWithMemoryRangeCopy(obj, len, "obj");
  char *err = NULL;
  LLVMBinaryRef bin = LLVMCreateBinary(mb, NULL, &err);
  ck_assert_msg(bin != NULL, "cannot read the object: %s", err ? err : "");
  LLVMSymbolIteratorRef sym = LLVMObjectFileCopySymbolIterator(bin);
  LLVMSectionIteratorRef sec = LLVMObjectFileCopySectionIterator(bin);
  int undefined = 0;
  for (; !LLVMObjectFileIsSymbolIteratorAtEnd(bin, sym); LLVMMoveToNextSymbol(sym)) {
    const char *name = LLVMGetSymbolName(sym);
    LLVMMoveToContainingSection(sec, sym);
    if (!LLVMObjectFileIsSectionIteratorAtEnd(bin, sec) || !name || !name[0] ||
        strcmp(name, "kiln") == 0)
      continue;
    undefined++;
    ck_assert_msg(tgt_jit_provides(name),
                  "cpu %s: the object needs '%s', which the JIT does not define", t->cpu, name);
  }
  ck_assert_int_gt(undefined, 5); /* the runtime and libm functions at least */
  LLVMDisposeSectionIterator(sec);
  LLVMDisposeSymbolIterator(sym);
  LLVMDisposeBinary(bin);
  LLVMDisposeMemoryBuffer(mb);
  ir_free(ctx, obj, len);
  tgt_llvm_module_free(lm);
  kiln_tir_module_free(m);
}

START_TEST(test_object_symbols) {
  check_object_symbols(&host);
  tgt_target base = x86_target("x86-64", "", 128);
  check_object_symbols(&base);
}
END_TEST

/* The libm-calling paths run through the JIT on a baseline CPU as well. */
START_TEST(test_baseline_cpu_runs) {
  tgt_target base = host;
  snprintf(base.cpu, sizeof base.cpu, "x86-64");
  base.features[0] = 0;
  base.vector_bits = 128;
  kiln_tir_module *m = parse("func @b(A: buffer(float32, [8]), B: buffer(float32, [8, 8])) {\n"
                             "  for i: int32 in range(0, 8) {\n"
                             "    B[0, i] = floor(A[i]); B[1, i] = ceil(A[i]); B[2, i] = "
                             "round(A[i]); B[3, i] = fma(A[i], A[i], 1f32);\n"
                             "    B[4, i] = A[i] % 0.75f32; B[5, i] = pow(A[i], 3f32); B[6, i] = "
                             "exp(A[i]); B[7, i] = A[i] // 0.5f32;\n"
                             "  }\n"
                             "}\n");
  tgt_jit *j;
  ck_ok(ctx, tgt_jit_new(ctx, &base, &j));
  ck_ok(ctx, tgt_jit_add_tir(j, m));
  float A[8] = {-2.5f, -1.25f, -0.5f, 0.5f, 1.5f, 2.5f, 3.75f, 7}, B[64] = {0};
  void *init[2] = {A, B};
  size_t bytes[2] = {sizeof A, sizeof B};
  dual d;
  dual_init(&d, m->funcs[0], init, bytes);
  dual_run(&d, m->funcs[0], kernel(j, "b"));
  float *r = d.ref[1], *o = d.out[1];
  for (int k = 0; k < 64; k++)
    if (k / 8 != 6) ck_assert_msg(r[k] == o[k], "B[%d]: %g vs %g", k, r[k], o[k]);
  dual_free(&d);
  tgt_jit_free(j);
  kiln_tir_module_free(m);
}
END_TEST

/* ---- Errors ---------------------------------------------------------------------------- */

START_TEST(test_errors) {
  tgt_llvm_module *lm = NULL;
  kiln_status st;
  /* an unrealized block cannot be compiled */
  kiln_tir_module *m =
      parse("func @u(A: buffer(float32, [8])) {\n"
            "  unrealized block \"bare\"(v: int32 = spatial(0, 8)) { A[v] = 0f32; }\n"
            "}\n");
  ck_assert_int_eq(tgt_codegen(ctx, m, &host, NULL, &lm), KILN_ERR_TYPE); /* the verifier's */
  ck_errmsg_has(ctx, "block 'bare' is not inside a block_realize");
  ck_assert_ptr_null(lm);
  kiln_tir_module_free(m);
  /* kernel names may not shadow what generated code calls */
  m = parse("func @powf(A: buffer(float32, [8])) { A[0] = 1f32; }\n");
  ck_assert_int_eq(tgt_codegen(ctx, m, &host, NULL, &lm), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "function name 'powf' is reserved");
  kiln_tir_module_free(m);
  /* the TIR verifier runs first */
  m = ir_module_new(ctx);
  ir_arena *a = m->arena;
  ir_expr *dim = ir_i32(a, 4);
  ir_buffer *b = ir_buffer_new(a, "B", KILN_FLOAT32, 1, &dim, 0, NULL, NULL, 0, NULL);
  ir_var *x = ir_var_new(a, "x", KILN_INT32);
  ir_expr *idx = &x->h;
  ir_node *params[1] = {&b->h};
  ck_ok(ctx,
        ir_module_add(m, ir_func_new(a, "bad", 1, params, 0, NULL,
                                     ir_store_new(a, b, ir_float(a, KILN_FLOAT32, 1), 1, &idx))));
  ck_assert_int_eq(tgt_codegen(ctx, m, &host, NULL, &lm), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "'x'");
  kiln_tir_module_free(m);
  /* unsupported element types */
  m = parse("func @h(A: buffer(handle, [2]), B: buffer(handle, [2])) { B[0] = A[1]; }\n");
  ck_ok(ctx, tgt_codegen(ctx, m, &host, NULL, &lm)); /* handles are 64-bit values: fine */
  tgt_llvm_module_free(lm);
  kiln_tir_module_free(m);
  /* an unknown triple */
  m = parse(vadd_text);
  tgt_target bogus = x86_target("x", "", 128);
  snprintf(bogus.triple, sizeof bogus.triple, "nonsense-unknown-none");
  ck_assert_int_eq(tgt_codegen(ctx, m, &bogus, NULL, &lm), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "nonsense-unknown-none");
  tgt_codegen_options o = {7};
  ck_assert_int_eq(tgt_codegen(ctx, m, &host, &o, &lm), KILN_ERR_MISUSE);
  /* the JIT: only for this machine; unknown kernels */
  tgt_jit *j = NULL;
  tgt_target other = x86_target("haswell", "", 256);
  ck_assert_int_eq(tgt_jit_new(ctx, &other, &j), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "is not this machine");
  j = jit_of(m);
  ck_ok(ctx, tgt_codegen(ctx, m, &other, NULL, &lm));
  ck_assert_int_eq(tgt_jit_add(j, lm), KILN_ERR_MISUSE); /* takes (frees) lm */
  ck_errmsg_has(ctx, "not for this machine");
  kiln_kernel_fn fn;
  ck_assert_int_eq(tgt_jit_lookup(j, "nothere", &fn), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "no kernel 'nothere'");
  ck_assert_ptr_null(fn);
  kernel(j, "vadd");
  /* a second module in the same JIT; a name defined twice is refused at lookup or add */
  kiln_tir_module *m2 = parse("func @other(A: buffer(int32, [2])) { A[0] = 5; }\n");
  ck_ok(ctx, tgt_jit_add_tir(j, m2));
  kiln_kernel_fn fo = kernel(j, "other");
  int32_t v[2] = {0, 0};
  int64_t sh[1] = {2};
  kiln_tensor tv = {v, 1, 0, 1, KILN_INT32, sh, NULL, 0};
  ck_assert_int_eq(fo(&tv, 1), 0);
  ck_assert_int_eq(v[0], 5);
  st = tgt_jit_add_tir(j, m2);
  ck_assert_msg(st == KILN_ERR_MISUSE, "adding 'other' twice: %s", kiln_context_errmsg(ctx));
  ck_errmsg_has(ctx, "other");
  ck_assert_int_eq(fo(&tv, 1), 0); /* the first one still works */
  tgt_jit_free(j);
  kiln_tir_module_free(m2);
  kiln_tir_module_free(m);
}
END_TEST

/* Every allocation failure during code generation is a clean KILN_ERR_NOMEM with nothing
 * left allocated. */
START_TEST(test_fault_injection) {
  char path[512];
  snprintf(path, sizeof path, "%s/../tools/models/default.tir", KILN_TEST_DIR);
  const char *extra = "func @p(n: int32, A: buffer(float32, [n])) {\n"
                      "  for i: int32 in parallel(0, n) { allocate T: buffer(float32, [n]) { T[i] "
                      "= A[i]; A[i] = select(i < 3, T[i], A[0]); } }\n"
                      "}\n";
  kiln_tir_module *m1 = NULL, *m2 = parse(extra);
  ck_ok(ctx, kiln_tir_module_parse_file(ctx, path, &m1));
  kiln_tir_module *mods[2] = {m1, m2};
  for (int k = 0; k < 2; k++) {
    long base = kiln_context_live_blocks(ctx);
    bool done = false;
    for (long n = 1; n < 5000 && !done; n++) {
      tgt_llvm_module *lm = NULL;
      tgt_codegen_options o = {0};
      kiln_context_fail_alloc(ctx, n);
      kiln_status st = tgt_codegen(ctx, mods[k], &host, &o, &lm);
      kiln_context_fail_alloc(ctx, 0);
      if (st == KILN_OK) {
        done = true;
        tgt_llvm_module_free(lm);
      } else {
        ck_assert_msg(st == KILN_ERR_NOMEM, "allocation %ld: %s (%s)", n, kiln_status_str(st),
                      kiln_context_errmsg(ctx));
        ck_assert_ptr_null(lm);
      }
      ck_assert_int_eq(kiln_context_live_blocks(ctx), base);
    }
    ck_assert(done);
  }
  /* the JIT, its modules and the IR text */
  long base = kiln_context_live_blocks(ctx);
  bool done = false;
  for (long n = 1; n < 5000 && !done; n++) {
    tgt_jit *j = NULL;
    tgt_llvm_module *lm = NULL;
    char *text = NULL;
    size_t len = 0;
    tgt_codegen_options o = {0};
    kiln_context_fail_alloc(ctx, n);
    kiln_status st = tgt_jit_new(ctx, &host, &j);
    if (!st) st = tgt_codegen(ctx, m2, &host, &o, &lm);
    if (!st) st = tgt_llvm_module_ir(lm, &text, &len);
    if (!st) {
      ir_free(ctx, text, len + 1);
      st = tgt_jit_add(j, lm); /* takes lm, also on failure */
      lm = NULL;
    }
    kiln_context_fail_alloc(ctx, 0);
    if (st == KILN_OK) {
      done = true;
      kernel(j, "p");
    } else {
      ck_assert_msg(st == KILN_ERR_NOMEM, "allocation %ld: %s (%s)", n, kiln_status_str(st),
                    kiln_context_errmsg(ctx));
    }
    tgt_llvm_module_free(lm);
    tgt_jit_free(j);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), base);
  }
  ck_assert(done);
  kiln_tir_module_free(m1);
  kiln_tir_module_free(m2);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("codegen");
  TCase *tc = tcase_create("programs");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_default_model);
  tcase_add_test(tc, test_golden_programs);
  tcase_add_test(tc, test_argument_checks);
  tcase_add_test(tc, test_argument_message_escapes);
  tcase_add_test(tc, test_symbolic_shape);
  tcase_add_test(tc, test_strides_and_offset);
  tcase_add_test(tc, test_small_types);
  tcase_add_test(tc, test_casts);
  tcase_add_test(tc, test_vectors);
  tcase_add_test(tc, test_strided_loads);
  tcase_add_test(tc, test_loops);
  tcase_add_test(tc, test_statements);
  tcase_add_test(tc, test_allocate);
  tcase_add_test(tc, test_blocks);
  tcase_add_test(tc, test_parallel);
  tcase_add_test(tc, test_parallel_error);
  tcase_add_test(tc, test_guarded_loads);
  tcase_add_test(tc, test_division_by_zero);
  suite_add_tcase(s, tc);

  tc = tcase_create("random");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_random_int32);
  tcase_add_test(tc, test_random_int64);
  tcase_add_test(tc, test_random_int8);
  tcase_add_test(tc, test_random_uint8);
  tcase_add_test(tc, test_random_float32);
  suite_add_tcase(s, tc);

  tc = tcase_create("intrinsics");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_intrinsics_float32);
  tcase_add_test(tc, test_intrinsics_float64);
  tcase_add_test(tc, test_intrinsics_float16);
  tcase_add_test(tc, test_fabs_integers);
  suite_add_tcase(s, tc);

  tc = tcase_create("targets");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_asm_vector_registers);
  tcase_add_test(tc, test_math_vectorizes);
  tcase_add_test(tc, test_targets_from_strings);
  tcase_add_test(tc, test_ir_structure);
  tcase_add_test(tc, test_fast_math);
  tcase_add_test(tc, test_object_symbols);
  tcase_add_test(tc, test_baseline_cpu_runs);
  suite_add_tcase(s, tc);

  tc = tcase_create("errors");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_errors);
  tcase_add_test(tc, test_fault_injection);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

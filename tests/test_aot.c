/* test_aot.c: ahead-of-time compilation to shared objects (target/aot.c). Kernels are compiled
 * to a .so in a temporary directory, loaded with dlopen (this process provides the runtime
 * functions: it links the kiln archives) and run against the reference interpreter, bit for bit.
 * Also: the shared object's undefined symbols (only the kernel ABI and libc/libm), its dynamic
 * section (soname, DT_NEEDED, run path), an aarch64 cross object, and the errors: a missing or
 * failing linker, an unwritable output, allocation failures; never a temporary file left behind.
 * Running aarch64 code is tests/aot_cross_test.sh's job. */
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <llvm-c/Object.h>

#include "ir/text.h"
#include "ir/verify.h"
#include "target/aot.h"
#include "test_util.h"

static kiln_context *ctx;
static tgt_target host;
static char dir[256];    /* this test's scratch directory */
static char tmpdir[300]; /* $TMPDIR during the test: must be empty after every compile */

/* Removes every plain file in d, then d itself (the scratch directories have no subdirectories
 * apart from tmpdir). */
static void remove_dir(const char *d) {
  DIR *dd = opendir(d);
  if (!dd) return;
  struct dirent *e;
  char path[600];
  while ((e = readdir(dd)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", d, e->d_name);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) remove_dir(path);
    else unlink(path);
  }
  closedir(dd);
  rmdir(d);
}

static int count_entries(const char *d) {
  DIR *dd = opendir(d);
  ck_assert_ptr_nonnull(dd);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dd)) != NULL) n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(dd);
  return n;
}

static void expect_no_temp_files(void) {
  ck_assert_msg(count_entries(tmpdir) == 0, "temporary files left behind in %s", tmpdir);
}

static void setup(void) {
  ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK);
  ck_ok(ctx, tgt_target_parse(ctx, "llvm -num-cores=4", &host));
  ck_assert(host.is_host);
  const char *base = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/kiln-test-aot-XXXXXX", base && base[0] ? base : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(tmpdir, sizeof tmpdir, "%s/tmp", dir);
  ck_assert_int_eq(mkdir(tmpdir, 0700), 0);
  setenv("TMPDIR", tmpdir, 1); /* each test runs in its own process (Check forks) */
  unsetenv("KILN_LLD");
}

static void teardown(void) {
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0); /* error paths free everything too */
  kiln_context_free(ctx);
  remove_dir(dir);
}

/* ---- Helpers --------------------------------------------------------------------------- */

static kiln_tir_module *parse(const char *text) {
  kiln_tir_module *m = NULL;
  kiln_status st = ir_parse_module(ctx, text, strlen(text), "test", &m);
  ck_assert_msg(st == KILN_OK, "parse failed: %s", kiln_context_errmsg(ctx));
  return m;
}

static kiln_tir_module *parse_default_model(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/../tools/models/default.tir", KILN_TEST_DIR);
  kiln_tir_module *m = NULL;
  ck_ok(ctx, kiln_tir_module_parse_file(ctx, path, &m));
  return m;
}

/* Compiles mod for the host into dir/name and returns the dlopen handle. */
static void *compile_and_load(kiln_tir_module *mod, const char *name) {
  char so[512];
  snprintf(so, sizeof so, "%s/%s", dir, name);
  ck_ok(ctx, tgt_aot_compile(ctx, &host, mod, so, NULL));
  expect_no_temp_files();
  void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(h != NULL, "dlopen %s: %s", so, dlerror());
  return h;
}

static kiln_kernel_fn lookup(void *h, const char *name) {
  kiln_kernel_fn fn;
  void *p = dlsym(h, name);
  ck_assert_msg(p != NULL, "dlsym %s: %s", name, dlerror());
  memcpy(&fn, &p, sizeof fn);
  return fn;
}

/* The interpreter's and the kernel's runs of one function: `ref` and `out` start as copies of
 * the same data; tensors describe `out`. Shapes are given by the caller (one row per
 * parameter, ndim 0 for scalars). */
enum { MAXP = 8 };
typedef struct dual {
  int n;
  void *ref[MAXP], *out[MAXP];
  size_t bytes[MAXP];
  kiln_tensor t[MAXP];
  int64_t shape[MAXP][4];
} dual;

static void dual_init(dual *d, const ir_func *f, void **init, const size_t *bytes,
                      const int64_t shapes[][4]) {
  memset(d, 0, sizeof *d);
  d->n = f->nparams;
  ck_assert_int_le(d->n, MAXP);
  for (int i = 0; i < d->n; i++) {
    const ir_node *p = f->params[i];
    d->bytes[i] = bytes[i];
    d->ref[i] = malloc(bytes[i]);
    d->out[i] = malloc(bytes[i]);
    memcpy(d->ref[i], init[i], bytes[i]);
    memcpy(d->out[i], init[i], bytes[i]);
    kiln_tensor *t = &d->t[i];
    t->data = d->out[i];
    t->device_type = 1;
    t->dtype = p->dtype;
    if (p->kind == IR_BUFFER) {
      t->ndim = ((const ir_buffer *)p)->ndim;
      t->shape = d->shape[i];
      memcpy(d->shape[i], shapes[i], sizeof d->shape[i]);
    }
  }
}

/* Runs both and checks that every argument ends up byte-identical. */
static void dual_run_check(dual *d, const ir_func *f, kiln_kernel_fn fn) {
  ck_ok(ctx, ir_interpret(ctx, f, d->n, d->ref));
  int32_t st = fn(d->t, d->n);
  ck_assert_msg(st == 0, "kernel %s returned %d: %s", f->name, st, kiln_last_error());
  for (int i = 0; i < d->n; i++) {
    const unsigned char *a = d->ref[i], *b = d->out[i];
    for (size_t k = 0; k < d->bytes[i]; k++)
      ck_assert_msg(a[k] == b[k], "%s: argument %d differs at byte %zu: interpreter %02x, "
                    "kernel %02x", f->name, i, k, a[k], b[k]);
  }
}

static void dual_free(dual *d) {
  for (int i = 0; i < d->n; i++) {
    free(d->ref[i]);
    free(d->out[i]);
  }
}

/* Reads a whole file (the caller frees it). */
static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *p = malloc((size_t)n + 1);
  ck_assert_int_eq(fread(p, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return p;
}

static const char *parallel_text =
    "func @par(n: int32, A: buffer(float32, [n, 64]), B: buffer(float32, [n, 64]), C: "
    "buffer(int64, [100])) {\n"
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

/* ---- Running compiled kernels ----------------------------------------------------------- */

/* The bundled default model (blocks, a reduction with init, a vectorized loop), twice. */
START_TEST(test_default_model) {
  kiln_tir_module *m = parse_default_model();
  void *h = compile_and_load(m, "default.so");
  const ir_func *f = m->funcs[0];
  float X[32], W[48], bias[6], out[24] = {0};
  for (int i = 0; i < 32; i++) X[i] = (float)((i * 7) % 13 - 6) / 4;
  for (int i = 0; i < 48; i++) W[i] = (float)((i * 5) % 11 - 5) / 3;
  for (int i = 0; i < 6; i++) bias[i] = (float)(i - 3) / 7;
  void *init[4] = {X, W, bias, out};
  size_t bytes[4] = {sizeof X, sizeof W, sizeof bias, sizeof out};
  const int64_t shapes[4][4] = {{4, 8}, {8, 6}, {6}, {4, 6}};
  dual d;
  dual_init(&d, f, init, bytes, shapes);
  kiln_kernel_fn fn = lookup(h, "dense_bias_relu");
  dual_run_check(&d, f, fn);
  int positive = 0;
  for (int i = 0; i < 24; i++) positive += ((float *)d.out[3])[i] > 0;
  ck_assert_int_gt(positive, 0); /* not all clamped by the ReLU */
  memset(d.out[3], 0, sizeof out);
  dual_run_check(&d, f, fn);
  dual_free(&d);
  dlclose(h);
  kiln_tir_module_free(m);
}
END_TEST

/* Parallel loops call kiln_rt_parallel_launch, resolved in this process at load time. */
START_TEST(test_parallel_kernel) {
  kiln_tir_module *m = parse(parallel_text);
  void *h = compile_and_load(m, "par.so");
  kiln_kernel_fn fn = lookup(h, "par");
  int32_t saved = kiln_rt_num_threads();
  static const int threads[3] = {1, 3, 4};
  for (int t = 0; t < 3; t++) {
    ck_ok(NULL, kiln_rt_set_num_threads(threads[t]));
    int32_t n = 11 + t;
    static float A[16 * 64], B[16 * 64];
    static int64_t C[100];
    for (int i = 0; i < 16 * 64; i++) A[i] = (float)(i % 97) - 40;
    void *init[4] = {&n, A, B, C};
    size_t bytes[4] = {4, sizeof(float) * 64 * (size_t)n, sizeof(float) * 64 * (size_t)n,
                       sizeof C};
    const int64_t shapes[4][4] = {{0}, {n, 64}, {n, 64}, {100}};
    dual d;
    dual_init(&d, m->funcs[0], init, bytes, shapes);
    dual_run_check(&d, m->funcs[0], fn);
    ck_assert_int_eq(((int64_t *)d.out[3])[99], 9009);
    dual_free(&d);
  }
  ck_ok(NULL, kiln_rt_set_num_threads(saved));
  /* the kernel ABI's argument checks work in the shared object too */
  int64_t bad[1] = {99};
  kiln_tensor args[4] = {{0}};
  int32_t n = 2;
  args[0] = (kiln_tensor){&n, 1, 0, 0, KILN_INT32, NULL, NULL, 0};
  args[1] = (kiln_tensor){bad, 1, 0, 1, KILN_FLOAT32, bad, NULL, 0};
  ck_assert_int_ne(fn(args, 4), 0);
  ck_assert_int_eq(fn(args, 1), KILN_ERR_MISUSE);
  ck_assert_msg(strstr(kiln_last_error(), "par") != NULL, "message '%s'", kiln_last_error());
  dlclose(h);
  kiln_tir_module_free(m);
}
END_TEST

/* ---- The shared object itself ----------------------------------------------------------- */

/* Every undefined symbol of the .so is one the JIT provides (the kernel ABI, libc and libm
 * functions), none belongs to LLVM; the kernel is a defined function symbol. */
START_TEST(test_undefined_symbols) {
  kiln_tir_module *m = parse(parallel_text);
  char so[512];
  snprintf(so, sizeof so, "%s/par.so", dir);
  ck_ok(ctx, tgt_aot_compile(ctx, &host, m, so, NULL));
  size_t len;
  unsigned char *bytes = slurp(so, &len);
  LLVMMemoryBufferRef mb = LLVMCreateMemoryBufferWithMemoryRangeCopy((char *)bytes, len, "so");
  char *err = NULL;
  LLVMBinaryRef bin = LLVMCreateBinary(mb, NULL, &err);
  ck_assert_msg(bin != NULL, "cannot read the shared object: %s", err ? err : "");
  LLVMSymbolIteratorRef sym = LLVMObjectFileCopySymbolIterator(bin);
  LLVMSectionIteratorRef sec = LLVMObjectFileCopySectionIterator(bin);
  int undefined = 0, kernel = 0, launch = 0;
  for (; !LLVMObjectFileIsSymbolIteratorAtEnd(bin, sym); LLVMMoveToNextSymbol(sym)) {
    const char *name = LLVMGetSymbolName(sym);
    if (!name || !name[0] || strcmp(name, "kiln") == 0) continue; /* the file symbol */
    ck_assert_msg(strstr(name, "LLVM") == NULL && strstr(name, "llvm") == NULL,
                  "the shared object references LLVM symbol '%s'", name);
    LLVMMoveToContainingSection(sec, sym);
    if (!LLVMObjectFileIsSectionIteratorAtEnd(bin, sec)) {
      kernel += strcmp(name, "par") == 0;
      continue;
    }
    undefined++;
    launch += strcmp(name, "kiln_rt_parallel_launch") == 0;
    ck_assert_msg(tgt_jit_provides(name), "the shared object needs '%s', which is neither the "
                  "kernel ABI nor a libc/libm function generated code may call", name);
  }
  ck_assert_int_gt(undefined, 0);
  ck_assert_int_eq(launch, 1);
  ck_assert_int_ge(kernel, 1);
  LLVMDisposeSectionIterator(sec);
  LLVMDisposeSymbolIterator(sym);
  LLVMDisposeBinary(bin);
  LLVMDisposeMemoryBuffer(mb);
  free(bytes);
  kiln_tir_module_free(m);
}
END_TEST

/* The dynamic section of an ELF64 little-endian shared object: DT_SONAME, the DT_NEEDED names
 * joined by ',' and DT_RUNPATH/DT_RPATH. */
typedef struct dyninfo {
  char soname[128], needed[512], runpath[256];
  uint16_t machine;
} dyninfo;

static void read_dynamic(const char *path, dyninfo *out) {
  memset(out, 0, sizeof *out);
  size_t len;
  unsigned char *p = slurp(path, &len);
  ck_assert(len > sizeof(Elf64_Ehdr) && memcmp(p, ELFMAG, SELFMAG) == 0);
  ck_assert_int_eq(p[EI_CLASS], ELFCLASS64);
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)p;
  ck_assert_int_eq(eh->e_type, ET_DYN);
  out->machine = eh->e_machine;
  const Elf64_Shdr *sh = (const Elf64_Shdr *)(p + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; i++) {
    if (sh[i].sh_type != SHT_DYNAMIC) continue;
    const char *str = (const char *)p + sh[sh[i].sh_link].sh_offset;
    const Elf64_Dyn *dyn = (const Elf64_Dyn *)(p + sh[i].sh_offset);
    for (size_t k = 0; k < sh[i].sh_size / sizeof *dyn && dyn[k].d_tag != DT_NULL; k++) {
      const char *s = str + dyn[k].d_un.d_val;
      if (dyn[k].d_tag == DT_SONAME) snprintf(out->soname, sizeof out->soname, "%s", s);
      if (dyn[k].d_tag == DT_RUNPATH || dyn[k].d_tag == DT_RPATH)
        snprintf(out->runpath, sizeof out->runpath, "%s", s);
      if (dyn[k].d_tag == DT_NEEDED) {
        size_t n = strlen(out->needed);
        snprintf(out->needed + n, sizeof out->needed - n, "%s,", s);
      }
    }
  }
  free(p);
}

/* Default linking: the soname is the file's name, libm is a dependency on the host, the
 * runtime is not (its symbols resolve in the loading process). With a runtime directory:
 * DT_NEEDED libkiln_runtime.so and the requested run path ("$ORIGIN", literally). The runtime
 * here is a stand-in shared object that defines the kernel ABI's symbols. */
START_TEST(test_dynamic_section) {
  kiln_tir_module *m = parse(parallel_text);
  char so[512];
  snprintf(so, sizeof so, "%s/plain.so", dir);
  ck_ok(ctx, tgt_aot_compile(ctx, &host, m, so, NULL));
  dyninfo di;
  read_dynamic(so, &di);
  ck_assert_str_eq(di.soname, "plain.so");
  ck_assert_msg(strstr(di.needed, "libm.so") != NULL, "DT_NEEDED '%s' lacks libm", di.needed);
  ck_assert_msg(strstr(di.needed, "kiln_runtime") == NULL, "DT_NEEDED '%s'", di.needed);
  ck_assert_str_eq(di.runpath, "");

  /* a stand-in libkiln_runtime.so in its own directory */
  char rtdir[400], stub[512];
  snprintf(rtdir, sizeof rtdir, "%s/lib", dir);
  ck_assert_int_eq(mkdir(rtdir, 0700), 0);
  snprintf(stub, sizeof stub, "%s/libkiln_runtime.so", rtdir);
  kiln_tir_module *sm = parse("func @kiln_rt_stub(A: buffer(int32, [1])) { A[0] = 1; }\n");
  ck_ok(ctx, tgt_aot_compile(ctx, &host, sm, stub, NULL));
  tgt_aot_options o = {0};
  o.runtime_dir = rtdir;
  o.rpath = "$ORIGIN/lib";
  o.soname = "libmodel.so.1";
  tgt_codegen_options cg = {0};
  o.codegen = &cg; /* unoptimized code links as well */
  snprintf(so, sizeof so, "%s/withrt.so", dir);
  ck_ok(ctx, tgt_aot_compile(ctx, &host, m, so, &o));
  read_dynamic(so, &di);
  ck_assert_str_eq(di.soname, "libmodel.so.1");
  ck_assert_msg(strstr(di.needed, "libkiln_runtime.so,") != NULL, "DT_NEEDED '%s'", di.needed);
  ck_assert_str_eq(di.runpath, "$ORIGIN/lib");
  /* without rpath, the runtime directory itself */
  o.rpath = NULL;
  ck_ok(ctx, tgt_aot_compile(ctx, &host, m, so, &o));
  read_dynamic(so, &di);
  ck_assert_str_eq(di.runpath, rtdir);
  expect_no_temp_files();
  kiln_tir_module_free(sm);
  kiln_tir_module_free(m);
}
END_TEST

/* A cross target links too: an aarch64 shared object, without a host libm dependency. */
START_TEST(test_cross_aarch64) {
  tgt_target arm;
  ck_ok(ctx, tgt_target_parse(ctx, "llvm -mtriple=aarch64-linux-gnu -mcpu=neoverse-n1", &arm));
  ck_assert(!arm.is_host);
  kiln_tir_module *m = parse_default_model();
  char so[512];
  snprintf(so, sizeof so, "%s/arm.so", dir);
  ck_ok(ctx, tgt_aot_compile(ctx, &arm, m, so, NULL));
  dyninfo di;
  read_dynamic(so, &di);
  ck_assert_int_eq(di.machine, EM_AARCH64);
  ck_assert_str_eq(di.soname, "arm.so");
  ck_assert_str_eq(di.needed, "");
  expect_no_temp_files();
  kiln_tir_module_free(m);
}
END_TEST

/* ---- Errors ----------------------------------------------------------------------------- */

START_TEST(test_bad_output_path) {
  kiln_tir_module *m = parse_default_model();
  char so[600], file[512];
  /* a path below a regular file (root may write anywhere, so not a read-only directory) */
  snprintf(file, sizeof file, "%s/plainfile", dir);
  FILE *f = fopen(file, "w");
  ck_assert_ptr_nonnull(f);
  fclose(f);
  snprintf(so, sizeof so, "%s/out.so", file);
  ck_assert_int_eq(tgt_aot_compile(ctx, &host, m, so, NULL), KILN_ERR_IO);
  ck_errmsg_has(ctx, "cannot open output file");
  ck_errmsg_has(ctx, so);
  expect_no_temp_files();
  snprintf(so, sizeof so, "%s/no/such/dir/out.so", dir);
  ck_assert_int_eq(tgt_aot_compile(ctx, &host, m, so, NULL), KILN_ERR_IO);
  ck_errmsg_has(ctx, "no/such/dir/out.so");
  expect_no_temp_files();
  kiln_tir_module_free(m);
}
END_TEST

START_TEST(test_bad_linker) {
  kiln_tir_module *m = parse_default_model();
  char so[512];
  snprintf(so, sizeof so, "%s/x.so", dir);
  setenv("KILN_LLD", "/nonexistent/ld.lld", 1);
  ck_assert_int_eq(tgt_aot_compile(ctx, &host, m, so, NULL), KILN_ERR_IO);
  ck_errmsg_has(ctx, "'/nonexistent/ld.lld'");
  ck_errmsg_has(ctx, "$KILN_LLD");
  expect_no_temp_files();
  /* a linker that fails without output */
  setenv("KILN_LLD", "/bin/false", 1);
  ck_assert_int_eq(tgt_aot_compile(ctx, &host, m, so, NULL), KILN_ERR_IO);
  ck_errmsg_has(ctx, "exited with status 1");
  expect_no_temp_files();
  /* the options' linker comes before $KILN_LLD */
  tgt_aot_options o = {0};
  o.linker = "/usr/lib/llvm-19/bin/ld.lld";
  if (access(o.linker, X_OK) == 0) ck_ok(ctx, tgt_aot_compile(ctx, &host, m, so, &o));
  o.linker = "/nonexistent/other-ld";
  ck_assert_int_eq(tgt_aot_compile(ctx, &host, m, so, &o), KILN_ERR_IO);
  ck_errmsg_has(ctx, "'/nonexistent/other-ld' (given in the options)");
  /* a linker that rejects its arguments: its message is the error */
  unsetenv("KILN_LLD");
  char lld[512];
  ck_ok(ctx, tgt_aot_find_linker(ctx, NULL, lld, sizeof lld));
  o.linker = lld;
  o.runtime_dir = dir; /* no libkiln_runtime.so there */
  ck_assert_int_eq(tgt_aot_compile(ctx, &host, m, so, &o), KILN_ERR_IO);
  ck_errmsg_has(ctx, "unable to find library -lkiln_runtime");
  expect_no_temp_files();
  kiln_tir_module_free(m);
}
END_TEST

START_TEST(test_misuse_and_codegen_errors) {
  kiln_tir_module *m = parse_default_model();
  ck_assert_int_eq(tgt_aot_compile(NULL, &host, m, "x.so", NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(tgt_aot_compile(ctx, NULL, m, "x.so", NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(tgt_aot_compile(ctx, &host, NULL, "x.so", NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(tgt_aot_compile(ctx, &host, m, NULL, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(tgt_aot_compile(ctx, &host, m, "", NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(tgt_aot_find_linker(ctx, NULL, NULL, 0), KILN_ERR_MISUSE);
  /* codegen's errors pass through, and nothing reaches the disk */
  kiln_tir_module *bad = parse("func @powf(A: buffer(float32, [4])) { A[0] = 1f32; }\n");
  char so[512];
  snprintf(so, sizeof so, "%s/bad.so", dir);
  ck_assert_int_eq(tgt_aot_compile(ctx, &host, bad, so, NULL), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "powf");
  ck_assert_int_eq(access(so, F_OK), -1);
  expect_no_temp_files();
  kiln_tir_module_free(bad);
  kiln_tir_module_free(m);
}
END_TEST

/* Failing each allocation in turn gives KILN_ERR_NOMEM with nothing leaked and no temporary
 * file left, or success. */
START_TEST(test_fault_injection) {
  kiln_tir_module *m = parse(parallel_text);
  char so[512];
  snprintf(so, sizeof so, "%s/f.so", dir);
  long before = kiln_context_alloc_count(ctx);
  ck_ok(ctx, tgt_aot_compile(ctx, &host, m, so, NULL));
  long needed = kiln_context_alloc_count(ctx) - before;
  ck_assert_int_gt(needed, 0);
  long step = needed > 40 ? needed / 40 : 1; /* keep the test fast: about 40 runs */
  int nomem = 0;
  for (long n = 1; n <= needed; n += step) {
    long live = kiln_context_live_blocks(ctx);
    kiln_context_fail_alloc(ctx, n);
    kiln_status st = tgt_aot_compile(ctx, &host, m, so, NULL);
    kiln_context_fail_alloc(ctx, 0);
    ck_assert_msg(st == KILN_OK || st == KILN_ERR_NOMEM, "allocation %ld: status %s: %s", n,
                  kiln_status_str(st), kiln_context_errmsg(ctx));
    nomem += st == KILN_ERR_NOMEM;
    ck_assert_int_eq(kiln_context_live_blocks(ctx), live);
    expect_no_temp_files();
  }
  ck_assert_int_gt(nomem, 0);
  kiln_tir_module_free(m);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("aot");
  TCase *tc = tcase_create("aot");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_default_model);
  tcase_add_test(tc, test_parallel_kernel);
  tcase_add_test(tc, test_undefined_symbols);
  tcase_add_test(tc, test_dynamic_section);
  tcase_add_test(tc, test_cross_aarch64);
  tcase_add_test(tc, test_bad_output_path);
  tcase_add_test(tc, test_bad_linker);
  tcase_add_test(tc, test_misuse_and_codegen_errors);
  tcase_add_test(tc, test_fault_injection);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

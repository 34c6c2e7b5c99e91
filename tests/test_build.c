/* test_build.c: the build driver (relay/build.c). Small Relay models are compiled for one or
 * more buckets; each bucket then runs through the runtime (kiln_compiled_load, sessions) and
 * is compared with the Relay reference interpreter. The sections are also read back as JSON
 * (cJSON) to check what runtime/FORMAT.md promises: memory plans (no two tensors alive at the
 * same time share bytes; planning beats one buffer per tensor), weights stored once, kernels
 * shared across buckets, "follows". Also: schedules from a tuning database (and a record that
 * does not replay), task extraction, saving, every user error of the bucket binding, the
 * caller's module left unchanged, and allocation failures. The suite exports its symbols:
 * generated kernels resolve kiln_rt_* against it. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autotune/database.h"
#include "ir/text.h"
#include "relay/build.h"
#include "runtime/artifact.h"
#include "schedule/schedule.h"
#include "test_util.h"

static kiln_context *ctx;
static char dir[256];    /* scratch directory of the test */
static char tmpdir[300]; /* $TMPDIR during the test: empty again after it */

static void setup(void) {
  ctx = kiln_test_new_ctx();
  const char *base = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/kiln-test-build-XXXXXX", base && base[0] ? base : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(tmpdir, sizeof tmpdir, "%s/tmp", dir);
  ck_assert_int_eq(mkdir(tmpdir, 0700), 0);
  setenv("TMPDIR", tmpdir, 1); /* each test runs in its own process (Check forks) */
  unsetenv("SOURCE_DATE_EPOCH");
}

static void teardown(void) {
  kiln_test_done_ctx(ctx);
  /* the temporary shared objects of every compile (failed ones too) are gone */
  ck_assert_msg(rmdir(tmpdir) == 0, "temporary files left behind in %s", tmpdir);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

/* ---- Building model text -------------------------------------------------------------- */

typedef struct text {
  char *s;
  size_t len, cap;
} text;

static void tprintf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tprintf(text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (t->len + (size_t)n + 1 > t->cap) {
    t->cap = (t->len + (size_t)n + 1) * 2;
    t->s = realloc(t->s, t->cap);
    ck_assert_ptr_nonnull(t->s);
  }
  va_start(ap, fmt);
  vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  t->len += (size_t)n;
}

static uint64_t rng = 12345;
static double uniform(double lo, double hi) {
  return lo + (hi - lo) * (double)(ir_splitmix64(&rng) >> 11) / 9007199254740992.0;
}

/* A float32 constant of `shape` (text like "(4, 3, 3, 3)") with n values in [lo, hi). */
static void tconst(text *t, const char *shape, int n, double lo, double hi) {
  tprintf(t, "const(Tensor[%s, float32], [", shape);
  for (int i = 0; i < n; i++) tprintf(t, "%s%.6g", i ? ", " : "", uniform(lo, hi));
  tprintf(t, "])");
}

/* conv2d + batch_norm + relu + max_pool2d + dense + bias over a symbolic batch n. */
static char *net_text(void) {
  text t = {0};
  tprintf(&t, "def @main(%%input: Tensor[(n, 3, 8, 8), float32]) {\n  %%0 = nn.conv2d(%%input, ");
  tconst(&t, "(4, 3, 3, 3)", 108, -0.5, 0.5);
  tprintf(&t, ", padding=[1, 1, 1, 1]);\n  %%1 = nn.batch_norm(%%0, ");
  tconst(&t, "(4,)", 4, 0.5, 1.5);
  tprintf(&t, ", ");
  tconst(&t, "(4,)", 4, -0.5, 0.5);
  tprintf(&t, ", ");
  tconst(&t, "(4,)", 4, -0.5, 0.5);
  tprintf(&t, ", ");
  tconst(&t, "(4,)", 4, 0.5, 1.5);
  tprintf(&t, ", epsilon=0.001);\n"
              "  %%2 = nn.relu(%%1);\n"
              "  %%3 = nn.max_pool2d(%%2, pool_size=[2, 2], strides=[2, 2]);\n"
              "  %%4 = nn.batch_flatten(%%3);\n"
              "  %%5 = nn.dense(%%4, ");
  tconst(&t, "(10, 64)", 640, -0.3, 0.3);
  tprintf(&t, ");\n  nn.bias_add(%%5, ");
  tconst(&t, "(10,)", 10, -1, 1);
  tprintf(&t, ")\n}\n");
  return t.s;
}

static kiln_relay_module *parse(const char *s) {
  kiln_relay_module *m = NULL;
  ck_ok(ctx, kiln_relay_module_parse(ctx, s, strlen(s), &m));
  return m;
}

/* ---- Buckets -------------------------------------------------------------------------- */

/* Up to 4 buckets of up to 4 inputs, filled by bucket_set. */
typedef struct buckets {
  int n;
  kiln_bucket b[4];
  kiln_input_shape in[4][4];
  int64_t dims[4][4][8];
} buckets;

/* Input k of bucket i: name and the dims (terminated by -1; other negative values are kept,
 * to test their error). */
static void bucket_set(buckets *bs, int i, int k, const char *name, const int64_t *dims) {
  kiln_input_shape *s = &bs->in[i][k];
  s->name = name;
  s->ndim = 0;
  while (dims[s->ndim] != -1) {
    bs->dims[i][k][s->ndim] = dims[s->ndim];
    s->ndim++;
  }
  s->shape = bs->dims[i][k];
  bs->b[i].inputs = bs->in[i];
  if (bs->b[i].ninputs < k + 1) bs->b[i].ninputs = k + 1;
  if (bs->n < i + 1) bs->n = i + 1;
}

/* One-input buckets: the input's shape with axis 0 taking each of the values. */
static void batch_buckets(buckets *bs, const char *name, int nb, const int64_t *batches,
                          const int64_t *rest) {
  memset(bs, 0, sizeof *bs);
  for (int i = 0; i < nb; i++) {
    int64_t d[8];
    d[0] = batches[i];
    int k = 0;
    while (rest[k] >= 0) d[k + 1] = rest[k], k++;
    d[k + 1] = -1;
    bucket_set(bs, i, 0, name, d);
  }
}

/* ---- Reading the sections ------------------------------------------------------------- */

typedef struct sections {
  cJSON *meta, *plan;
  unsigned char *params;
  uint64_t params_size, code_size;
} sections;

static void read_sections(kiln_compiled *c, sections *s) {
  const void *data;
  size_t size;
  ck_ok(ctx, kiln_compiled_bytes(c, &data, &size));
  rt_artifact *a;
  ck_assert_int_eq(rt_artifact_open_memory(data, size, "test", &a), KILN_OK);
  uint64_t n;
  const char *meta = rt_artifact_section(a, RT_SECTION_META, &n);
  s->meta = cJSON_ParseWithLength(meta, n);
  const char *plan = rt_artifact_section(a, RT_SECTION_PLAN, &n);
  s->plan = cJSON_ParseWithLength(plan, n);
  ck_assert_ptr_nonnull(s->meta);
  ck_assert_ptr_nonnull(s->plan);
  const void *p = rt_artifact_section(a, RT_SECTION_PARAMS, &s->params_size);
  s->params = malloc(s->params_size + 1);
  if (s->params_size) memcpy(s->params, p, s->params_size);
  ck_assert_ptr_nonnull(rt_artifact_section(a, RT_SECTION_CODE, &s->code_size));
  rt_artifact_close(a);
}

static void free_sections(sections *s) {
  cJSON_Delete(s->meta);
  cJSON_Delete(s->plan);
  free(s->params);
}

static cJSON *get(const cJSON *o, const char *key) {
  cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
  ck_assert_msg(x != NULL, "JSON lacks '%s'", key);
  return x;
}
static int64_t geti(const cJSON *o, const char *key) { return (int64_t)get(o, key)->valuedouble; }
static cJSON *at(const cJSON *a, int i) {
  cJSON *x = cJSON_GetArrayItem(a, i);
  ck_assert_msg(x != NULL, "JSON array lacks item %d", i);
  return x;
}
static int count(const cJSON *a) { return cJSON_GetArraySize(a); }

static uint64_t round64(uint64_t n) { return (n + 63) / 64 * 64; }

/* Bytes of a PLAN tensor (float32, int64... from the dtype name). */
static uint64_t tensor_bytes(const cJSON *t) {
  kiln_dtype dt;
  const char *name = get(t, "dtype")->valuestring;
  ck_assert_int_eq(kiln_dtype_parse(name, strlen(name), &dt), KILN_OK);
  uint64_t n = kiln_dtype_bytes(dt);
  cJSON *d;
  cJSON_ArrayForEach(d, get(t, "shape")) n *= (uint64_t)d->valuedouble;
  return n;
}

/* Checks the memory plan of every bucket: arena offsets 64-aligned and inside arena_bytes,
 * naive_bytes the sum of the 64-rounded sizes, and no two arena tensors whose live ranges
 * (first call using it .. last call using it, model outputs to the end) overlap share a
 * byte. Returns the number of arena tensors checked. */
static int check_memory_plans(const sections *s) {
  int total = 0;
  cJSON *bk;
  cJSON_ArrayForEach(bk, get(s->plan, "buckets")) {
    cJSON *ts = get(bk, "tensors"), *calls = get(bk, "calls");
    int nt = count(ts), nc = count(calls);
    int *first = malloc(sizeof(int) * (size_t)nt), *last = malloc(sizeof(int) * (size_t)nt);
    for (int i = 0; i < nt; i++) first[i] = last[i] = -1;
    for (int c = 0; c < nc; c++) {
      cJSON *a;
      cJSON_ArrayForEach(a, get(at(calls, c), "args")) {
        if (!cJSON_IsNumber(a)) continue;
        int i = a->valueint;
        ck_assert_int_lt(i, nt);
        if (first[i] < 0) first[i] = c;
        last[i] = c;
      }
    }
    cJSON *o;
    cJSON_ArrayForEach(o, get(bk, "outputs")) last[o->valueint] = nc;
    uint64_t arena = (uint64_t)geti(bk, "arena_bytes"), naive = 0;
    for (int i = 0; i < nt; i++) {
      cJSON *t = at(ts, i);
      if (strcmp(get(t, "kind")->valuestring, "arena") != 0) continue;
      total++;
      uint64_t off = (uint64_t)geti(t, "offset"), n = tensor_bytes(t);
      ck_assert_int_eq(off % 64, 0);
      ck_assert_uint_le(off + n, arena);
      ck_assert_int_ge(first[i], 0);
      naive += round64(n);
      for (int j = 0; j < i; j++) {
        cJSON *u = at(ts, j);
        if (strcmp(get(u, "kind")->valuestring, "arena") != 0) continue;
        bool alive = first[i] <= last[j] && first[j] <= last[i];
        uint64_t uo = (uint64_t)geti(u, "offset"), un = tensor_bytes(u);
        bool bytes = n && un && off < uo + un && uo < off + n;
        ck_assert_msg(!(alive && bytes), "tensors %d and %d are alive together and overlap", j, i);
      }
    }
    ck_assert_uint_eq(naive, (uint64_t)geti(bk, "naive_bytes"));
    free(first);
    free(last);
  }
  return total;
}

/* ---- Running buckets ------------------------------------------------------------------ */

/* Runs every bucket of the compiled model through a session and through the interpreter of
 * m, on random inputs, and compares the outputs (rtol 1e-4). */
static void run_all_buckets(kiln_relay_module *m, kiln_model *model) {
  kiln_session *s;
  ck_ok(NULL, kiln_session_new(model, &s));
  int nin = kiln_model_num_inputs(model), nout = kiln_model_num_outputs(model);
  for (int b = 0; b < kiln_model_num_buckets(model); b++) {
    kiln_tensor ins[4], refs[4];
    int64_t ishape[4][8], oshape[4][8];
    float *idata[4], *rdata[4];
    memset(ins, 0, sizeof ins);
    memset(refs, 0, sizeof refs);
    for (int i = 0; i < nin; i++) {
      ck_ok(NULL, kiln_model_input_shape(model, b, i, ishape[i]));
      ck_assert(kiln_dtype_eq(kiln_model_input_dtype(model, i), KILN_FLOAT32));
      int nd = kiln_model_input_ndim(model, i);
      int64_t n = 1;
      for (int d = 0; d < nd; d++) n *= ishape[i][d];
      idata[i] = malloc(sizeof(float) * (size_t)(n + 1));
      for (int64_t k = 0; k < n; k++) idata[i][k] = (float)uniform(-1, 1);
      ins[i] = (kiln_tensor){idata[i], 1, 0, nd, KILN_FLOAT32, ishape[i], NULL, 0};
      ck_ok(NULL, kiln_session_set_input(s, i, &ins[i]));
    }
    for (int o = 0; o < nout; o++) {
      ck_ok(NULL, kiln_model_output_shape(model, b, o, oshape[o]));
      int nd = kiln_model_output_ndim(model, o);
      int64_t n = 1;
      for (int d = 0; d < nd; d++) n *= oshape[o][d];
      rdata[o] = malloc(sizeof(float) * (size_t)(n + 1));
      refs[o] = (kiln_tensor){rdata[o], 1, 0, nd, kiln_model_output_dtype(model, o), oshape[o],
                              NULL, 0};
    }
    ck_ok(ctx, kiln_relay_module_interpret(m, "main", nin, ins, nout, refs));
    ck_ok(NULL, kiln_session_run(s));
    ck_assert_int_eq(kiln_session_last_bucket(s), b);
    for (int o = 0; o < nout; o++) {
      kiln_tensor got;
      ck_ok(NULL, kiln_session_get_output(s, o, &got));
      ck_assert_int_eq(got.ndim, refs[o].ndim);
      int64_t n = 1;
      for (int d = 0; d < got.ndim; d++) {
        ck_assert_int_eq(got.shape[d], oshape[o][d]);
        n *= oshape[o][d];
      }
      const float *g = (const float *)((const char *)got.data + got.byte_offset);
      for (int64_t k = 0; k < n; k++)
        ck_assert_msg(fabsf(g[k] - rdata[o][k]) <= 1e-4f * fabsf(rdata[o][k]) + 1e-5f,
                      "bucket %d output %d element %lld: compiled %g, interpreter %g", b, o,
                      (long long)k, (double)g[k], (double)rdata[o][k]);
    }
    for (int i = 0; i < nin; i++) free(idata[i]);
    for (int o = 0; o < nout; o++) free(rdata[o]);
  }
  kiln_session_free(s);
}

static kiln_compiled *compile_ok(kiln_relay_module *m, const buckets *bs,
                                 const kiln_compile_options *o) {
  kiln_compiled *c = NULL;
  ck_ok(ctx, kiln_compile(m, bs ? bs->n : 0, bs ? bs->b : NULL, o, &c));
  return c;
}

/* Loads the compiled model and runs every bucket against the interpreter. */
static void load_and_run(kiln_relay_module *m, kiln_compiled *c) {
  kiln_model *model;
  ck_ok(ctx, kiln_compiled_load(c, &model));
  run_all_buckets(m, model);
  kiln_model_free(model);
}

static char *print_module(kiln_relay_module *m) {
  char *s;
  ck_ok(ctx, kiln_relay_module_print(m, &s));
  return s;
}

/* ---- Tests ------------------------------------------------------------------------------ */

/* The conv net for batches 1, 2 and 4: every bucket right, one set of weights, plans valid,
 * the output follows the batch, the caller's module unchanged. */
START_TEST(net_three_buckets) {
  char *src = net_text();
  kiln_relay_module *m = parse(src);
  free(src);
  char *before = print_module(m);
  buckets bs;
  const int64_t batches[] = {1, 2, 4}, rest[] = {3, 8, 8, -1};
  batch_buckets(&bs, "input", 3, batches, rest);
  bs.b[1].weight = 2.5;
  kiln_compiled *c = compile_ok(m, &bs, NULL);
  char *after = print_module(m);
  ck_assert_str_eq(before, after);
  kiln_string_free(ctx, before);
  kiln_string_free(ctx, after);

  kiln_compile_stats st;
  ck_ok(ctx, kiln_compiled_stats(c, &st));
  ck_assert_int_eq(st.nbuckets, 3);
  ck_assert_int_eq(st.nfrom_db, 0);
  ck_assert_int_eq(st.nwarnings, 0);
  ck_assert_ptr_null(kiln_compiled_warning(c, 0));
  ck_assert_int_gt(st.ncalls, 0);
  ck_assert_int_gt(st.code_bytes, 0);
  ck_assert(st.seconds_total > 0 && st.seconds_codegen > 0);

  sections s;
  read_sections(c, &s);
  ck_assert_str_eq(get(s.meta, "format")->valuestring, "kiln-model");
  ck_assert_str_eq(get(s.meta, "model")->valuestring, "model");
  ck_assert_str_eq(get(s.meta, "kiln_version")->valuestring, kiln_version());
  cJSON *out0 = at(get(s.meta, "outputs"), 0);
  ck_assert_str_eq(get(out0, "name")->valuestring, "output");
  char *f = cJSON_PrintUnformatted(get(out0, "follows"));
  ck_assert_str_eq(f, "[[0,0],null]");
  free(f);
  cJSON *mb = get(s.meta, "buckets");
  ck_assert_int_eq(count(mb), 3);
  for (int b = 0; b < 3; b++) {
    ck_assert_int_eq(at(at(get(at(mb, b), "inputs"), 0), 0)->valueint, (int)batches[b]);
    ck_assert_int_eq(at(at(get(at(mb, b), "outputs"), 0), 0)->valueint, (int)batches[b]);
    ck_assert_int_eq(at(at(get(at(mb, b), "outputs"), 0), 1)->valueint, 10);
  }
  ck_assert(get(at(mb, 1), "weight")->valuedouble == 2.5);
  ck_assert(get(at(mb, 0), "weight")->valuedouble == 1.0);
  ck_assert_int_gt(check_memory_plans(&s), 0);

  /* the weights once: the same params as a one-bucket compile, no two with equal bytes */
  cJSON *params = get(s.plan, "params");
  ck_assert_uint_eq(st.params_bytes, s.params_size);
  int np = count(params);
  for (int i = 0; i < np; i++) {
    cJSON *p = at(params, i);
    uint64_t off = (uint64_t)geti(p, "offset"), n = (uint64_t)geti(p, "nbytes");
    ck_assert_int_eq(off % 64, 0);
    ck_assert_uint_le(off + n, s.params_size);
    ck_assert_uint_eq(n, tensor_bytes(p));
    for (int j = 0; j < i; j++) {
      cJSON *q = at(params, j);
      ck_assert(!(n == (uint64_t)geti(q, "nbytes") &&
                  memcmp(s.params + off, s.params + geti(q, "offset"), n) == 0));
    }
  }
  buckets one;
  batch_buckets(&one, "input", 1, batches, rest);
  kiln_compiled *c1 = compile_ok(m, &one, NULL);
  kiln_compile_stats st1;
  ck_ok(ctx, kiln_compiled_stats(c1, &st1));
  ck_assert_uint_eq(st1.params_bytes, st.params_bytes);
  ck_assert_int_eq(st1.ncalls * 3, st.ncalls);
  kiln_compiled_free(c1);

  load_and_run(m, c);
  free_sections(&s);
  kiln_compiled_free(c);
  kiln_relay_module_free(m);
}
END_TEST

/* A chain of softmaxes (each its own kernel): two buffers take turns, so the plan needs two
 * tensors' bytes while one buffer per tensor needs five. */
START_TEST(chain_plan) {
  kiln_relay_module *m = parse("def @main(%x: Tensor[(3, 100), float32]) {\n"
                               "  %0 = nn.softmax(%x);\n  %1 = nn.softmax(%0);\n"
                               "  %2 = nn.softmax(%1);\n  %3 = nn.softmax(%2);\n"
                               "  nn.softmax(%3)\n}\n");
  kiln_compiled *c = compile_ok(m, NULL, NULL);
  sections s;
  read_sections(c, &s);
  ck_assert_int_eq(check_memory_plans(&s), 5);
  cJSON *bk = at(get(s.plan, "buckets"), 0);
  ck_assert_int_eq(geti(bk, "naive_bytes"), 5 * 1216);
  ck_assert_int_eq(geti(bk, "arena_bytes"), 2 * 1216);
  ck_assert_int_lt(geti(bk, "arena_bytes"), geti(bk, "naive_bytes"));
  /* five calls of one kernel */
  ck_assert_int_eq(count(get(s.plan, "kernels")), 1);
  ck_assert_int_eq(count(get(bk, "calls")), 5);
  load_and_run(m, c);
  free_sections(&s);
  kiln_compiled_free(c);
  kiln_relay_module_free(m);
}
END_TEST

/* Two inputs, two outputs (a tuple), one of them from a kernel with a tuple result. */
START_TEST(tuple_model) {
  kiln_relay_module *m = parse("def @main(%a: Tensor[(n, 4), float32], %b: Tensor[(n, 4), float32]) {\n"
                               "  %0 = add(%a, %b);\n"
                               "  %1 = split(%0, sections=2, axis=1);\n"
                               "  %2 = nn.softmax(%1.0);\n"
                               "  (%2, multiply(%1.1, %1.1), nn.softmax(%b))\n"
                               "}\n");
  buckets bs;
  memset(&bs, 0, sizeof bs);
  const int64_t d2[] = {2, 4, -1}, d3[] = {3, 4, -1};
  bucket_set(&bs, 0, 0, "a", d2);
  bucket_set(&bs, 0, 1, "b", d2);
  bucket_set(&bs, 1, 0, "b", d3); /* any order */
  bucket_set(&bs, 1, 1, "a", d3);
  kiln_compiled *c = compile_ok(m, &bs, NULL);
  sections s;
  read_sections(c, &s);
  cJSON *outs = get(s.meta, "outputs");
  ck_assert_int_eq(count(outs), 3);
  ck_assert_str_eq(get(at(outs, 0), "name")->valuestring, "output_0");
  ck_assert_str_eq(get(at(outs, 2), "name")->valuestring, "output_2");
  char *f = cJSON_PrintUnformatted(get(at(outs, 1), "follows"));
  ck_assert_str_eq(f, "[[0,0],null]");
  free(f);
  ck_assert_str_eq(get(at(get(s.meta, "inputs"), 1), "name")->valuestring, "b");
  check_memory_plans(&s);
  load_and_run(m, c);
  free_sections(&s);
  kiln_compiled_free(c);
  kiln_relay_module_free(m);
}
END_TEST

/* A model returning an input and a constant directly (tensors of kind input and param) next
 * to a computed output; and a model with no kernel at all. */
START_TEST(returns_input_and_constant) {
  kiln_relay_module *m = parse("def @main(%x: Tensor[(2, 3), float32]) {\n"
                               "  (%x, const(Tensor[(2,), float32], [1, 2]), nn.relu(%x))\n}\n");
  kiln_compiled *c = compile_ok(m, NULL, NULL);
  sections s;
  read_sections(c, &s);
  cJSON *bk = at(get(s.plan, "buckets"), 0), *ts = get(bk, "tensors"), *outs = get(bk, "outputs");
  ck_assert_str_eq(get(at(ts, at(outs, 0)->valueint), "kind")->valuestring, "input");
  ck_assert_str_eq(get(at(ts, at(outs, 1)->valueint), "kind")->valuestring, "param");
  ck_assert_str_eq(get(at(ts, at(outs, 2)->valueint), "kind")->valuestring, "arena");
  ck_assert_int_eq(s.params_size, 8);
  load_and_run(m, c);
  free_sections(&s);
  kiln_compiled_free(c);
  kiln_relay_module_free(m);

  /* two constants with the same contents are stored once */
  m = parse("def @main(%x: Tensor[(3,), float32]) {\n"
            "  (add(%x, const(Tensor[(3,), float32], [1, 2, 3])),\n"
            "   multiply(%x, const(Tensor[(3,), float32], [1, 2, 3])))\n}\n");
  c = compile_ok(m, NULL, NULL);
  read_sections(c, &s);
  ck_assert_int_eq(s.params_size, 12);
  ck_assert_int_eq(count(get(s.plan, "params")), 1);
  load_and_run(m, c);
  free_sections(&s);
  kiln_compiled_free(c);
  kiln_relay_module_free(m);

  m = parse("def @main(%x: Tensor[(n, 3), float32]) { %x }\n");
  buckets bs;
  const int64_t batches[] = {1, 5}, rest[] = {3, -1};
  batch_buckets(&bs, "x", 2, batches, rest);
  c = compile_ok(m, &bs, NULL);
  kiln_compile_stats st;
  ck_ok(ctx, kiln_compiled_stats(c, &st));
  ck_assert_int_eq(st.nkernels, 0);
  ck_assert_int_eq(st.ncalls, 0);
  load_and_run(m, c);
  kiln_compiled_free(c);
  kiln_relay_module_free(m);
}
END_TEST

/* softmax(%w) does not depend on the batch: one kernel serves all three buckets (the same
 * kernel index in each plan), while the dense kernel is one per batch. */
START_TEST(shared_kernel) {
  kiln_relay_module *m = parse("def @main(%x: Tensor[(n, 4), float32], %w: Tensor[(5, 4), float32]) {\n"
                               "  %0 = nn.softmax(%w);\n"
                               "  nn.dense(%x, %0)\n}\n");
  buckets bs;
  memset(&bs, 0, sizeof bs);
  const int64_t w[] = {5, 4, -1};
  for (int b = 0; b < 3; b++) {
    const int64_t x[] = {b + 1, 4, -1};
    bucket_set(&bs, b, 0, "x", x);
    bucket_set(&bs, b, 1, "w", w);
  }
  bs.b[2].weight = 3;
  kiln_compiled *c = compile_ok(m, &bs, NULL);
  kiln_compile_stats st;
  ck_ok(ctx, kiln_compiled_stats(c, &st));
  ck_assert_int_eq(st.ncalls, 6);
  ck_assert_int_eq(st.nkernels, 4);
  sections s;
  read_sections(c, &s);
  cJSON *kernels = get(s.plan, "kernels"), *pb = get(s.plan, "buckets");
  ck_assert_int_eq(count(kernels), 4);
  int softmax = -1;
  for (int b = 0; b < 3; b++) {
    cJSON *call0 = at(get(at(pb, b), "calls"), 0);
    int k = (int)geti(call0, "kernel");
    if (b == 0) softmax = k;
    ck_assert_int_eq(k, softmax);
    ck_assert_int_ne((int)geti(at(get(at(pb, b), "calls"), 1), "kernel"), softmax);
  }
  cJSON *ks = at(kernels, softmax);
  ck_assert_str_eq(get(ks, "name")->valuestring, "fused_nn_softmax");
  ck_assert_str_eq(get(ks, "symbol")->valuestring, "kiln_k0");
  ck_assert_str_eq(get(ks, "schedule")->valuestring, "default");
  ck_assert_int_eq(strlen(get(ks, "hash")->valuestring), 16);
  ck_assert_ptr_nonnull(strstr(get(ks, "workload")->valuestring, "nn.softmax"));
  /* dense kernels of distinct shapes have distinct names */
  ck_assert_str_eq(get(at(kernels, 1), "name")->valuestring, "fused_nn_dense");
  ck_assert_str_eq(get(at(kernels, 2), "name")->valuestring, "fused_nn_dense_1");
  load_and_run(m, c);

  /* the tuner's view: the same kernels, weighted by calls times bucket weights */
  relay_build_tasks *t;
  ck_ok(ctx, relay_build_extract_tasks(relay_api_module(m), bs.n, bs.b, &t));
  ck_assert_int_eq(t->ntasks, 4);
  ck_assert_str_eq(t->tasks[0].name, "fused_nn_softmax");
  ck_assert_int_eq(t->tasks[0].ncalls, 3);
  ck_assert(t->tasks[0].weight == 5.0); /* 1 + 1 + 3 */
  ck_assert(t->tasks[3].weight == 3.0 && t->tasks[3].ncalls == 1);
  for (int k = 0; k < 4; k++) {
    char want[20];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)t->tasks[k].hash);
    ck_assert_str_eq(get(at(kernels, k), "hash")->valuestring, want);
    ck_assert_ptr_nonnull(t->tasks[k].prim);
  }
  relay_build_tasks_free(t);
  free_sections(&s);
  kiln_compiled_free(c);
  kiln_relay_module_free(m);
}
END_TEST

/* "follows" when an output dimension is an expression: relu(%x) over (k * 2, 4) has the
 * extent of %x's axis 0 in every bucket (and it varies), %y + 1 follows %y by symbol. */
START_TEST(follows_by_extent) {
  kiln_relay_module *m = parse("def @main(%x: Tensor[(k * 2, 4), float32], %y: Tensor[(k,), float32]) {\n"
                               "  (nn.relu(%x), add(%y, 1f), reshape(%x, newshape=[-1]))\n}\n");
  buckets bs;
  memset(&bs, 0, sizeof bs);
  const int64_t x1[] = {2, 4, -1}, y1[] = {1, -1}, x2[] = {6, 4, -1}, y2[] = {3, -1};
  bucket_set(&bs, 0, 0, "x", x1);
  bucket_set(&bs, 0, 1, "y", y1);
  bucket_set(&bs, 1, 0, "x", x2);
  bucket_set(&bs, 1, 1, "y", y2);
  kiln_compiled *c = compile_ok(m, &bs, NULL);
  sections s;
  read_sections(c, &s);
  cJSON *outs = get(s.meta, "outputs");
  const char *want[] = {"[[0,0],null]", "[[1,0]]", "[null]"};
  for (int o = 0; o < 3; o++) {
    char *f = cJSON_PrintUnformatted(get(at(outs, o), "follows"));
    ck_assert_str_eq(f, want[o]);
    free(f);
  }
  load_and_run(m, c);
  free_sections(&s);
  kiln_compiled_free(c);

  /* an expression dimension the bucket contradicts */
  const int64_t bad[] = {5, 4, -1};
  bucket_set(&bs, 1, 0, "x", bad);
  ck_assert_int_eq(kiln_compile(m, bs.n, bs.b, NULL, &c), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "bucket 1: input 'x' axis 0 is k * 2 = 6 in the model, the bucket gives 5");
  kiln_relay_module_free(m);
}
END_TEST

/* Options recorded in the meta: the model name, paddable axes, the creation time from
 * SOURCE_DATE_EPOCH, the opt level; a target string. */
START_TEST(meta_options) {
  kiln_relay_module *m = parse("def @main(%x: Tensor[(n, 3), float32], %y: Tensor[(3,), float32]) {\n"
                               "  add(%x, %y)\n}\n");
  buckets bs;
  memset(&bs, 0, sizeof bs);
  const int64_t x1[] = {1, 3, -1}, x2[] = {4, 3, -1};
  bucket_set(&bs, 0, 0, "x", x1);
  bucket_set(&bs, 1, 0, "x", x2);
  kiln_pad_axis pads[] = {{"x", 0}};
  kiln_compile_options o = {"llvm -num-cores=1", NULL, 1, "tiny.relay", 1, pads};
  setenv("SOURCE_DATE_EPOCH", "86400", 1);
  kiln_compiled *c = compile_ok(m, &bs, &o);
  unsetenv("SOURCE_DATE_EPOCH");
  sections s;
  read_sections(c, &s);
  ck_assert_str_eq(get(s.meta, "created")->valuestring, "1970-01-02T00:00:00Z");
  ck_assert_str_eq(get(s.meta, "model")->valuestring, "tiny.relay");
  ck_assert_ptr_nonnull(strstr(get(s.meta, "target")->valuestring, "-num-cores=1"));
  ck_assert_int_eq(geti(get(s.meta, "options"), "opt_level"), 1);
  char *p = cJSON_PrintUnformatted(get(s.meta, "paddable"));
  ck_assert_str_eq(p, "[[0,0]]");
  free(p);
  load_and_run(m, c);
  /* batch 3 fits no bucket: the session pads it to 4 (the declared axis) and slices the
   * output back along the axis it follows */
  kiln_model *model;
  kiln_session *sess;
  ck_ok(ctx, kiln_compiled_load(c, &model));
  ck_ok(NULL, kiln_session_new(model, &sess));
  float xv[9], yv[3], ref[9];
  for (int i = 0; i < 9; i++) xv[i] = (float)uniform(-1, 1);
  for (int i = 0; i < 3; i++) yv[i] = (float)uniform(-1, 1);
  int64_t xs[] = {3, 3}, ys[] = {3};
  kiln_tensor in[2] = {{xv, 1, 0, 2, KILN_FLOAT32, xs, NULL, 0}, {yv, 1, 0, 1, KILN_FLOAT32, ys, NULL, 0}};
  kiln_tensor rt = {ref, 1, 0, 2, KILN_FLOAT32, xs, NULL, 0}, got;
  ck_ok(ctx, kiln_relay_module_interpret(m, "main", 2, in, 1, &rt));
  ck_ok(NULL, kiln_session_set_input(sess, 0, &in[0]));
  ck_ok(NULL, kiln_session_set_input(sess, 1, &in[1]));
  ck_ok(NULL, kiln_session_run(sess));
  ck_assert_int_eq(kiln_session_last_bucket(sess), 1);
  ck_ok(NULL, kiln_session_get_output(sess, 0, &got));
  ck_assert_int_eq(got.shape[0], 3);
  for (int i = 0; i < 9; i++)
    ck_assert(fabsf(((const float *)got.data)[i] - ref[i]) <= 1e-5f);
  kiln_session_free(sess);
  kiln_model_free(model);
  free_sections(&s);
  kiln_compiled_free(c);

  /* bad paddable axes */
  kiln_pad_axis bad_name[] = {{"z", 0}}, bad_axis[] = {{"y", 1}};
  o.paddable = bad_name;
  ck_assert_int_eq(kiln_compile(m, bs.n, bs.b, &o, &c), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "paddable axis 0: the model has no input 'z' (its inputs: 'x', 'y')");
  o.paddable = bad_axis;
  ck_assert_int_eq(kiln_compile(m, bs.n, bs.b, &o, &c), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "input 'y' has rank 1, so it has no axis 1");
  o.paddable = pads;
  o.target = "llvm -no-such-option=3";
  ck_assert_int_eq(kiln_compile(m, bs.n, bs.b, &o, &c), KILN_ERR_PARSE);
  ck_errmsg_has(ctx, "target 'llvm -no-such-option=3'");
  o.target = NULL;
  o.opt_level = 7;
  ck_assert_int_eq(kiln_compile(m, bs.n, bs.b, &o, &c), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "opt_level 7");
  ck_assert_ptr_null(c);
  kiln_relay_module_free(m);
}
END_TEST

/* Every mistake in the buckets: status, message on the context and as the last error, the
 * module unchanged. */
START_TEST(bucket_errors) {
  kiln_relay_module *m = parse("def @main(%x: Tensor[(n, 4), float32], %y: Tensor[(n, 4), float32],\n"
                               "          %s: Tensor[(1, 3), float32], %z: Tensor[(m,), float32]) {\n"
                               "  (add(%x, %y), nn.relu(%s), nn.relu(%z))\n}\n");
  char *before = print_module(m);
  typedef struct error_case {
    const char *in[3];
    int64_t dims[3][4];
    kiln_status code;
    const char *msg;
  } error_case;
  const error_case cases[] = {
      {{"x", "y", "s"}, {{2, 4, -1}, {2, 4, -1}, {4, 3, -1}}, KILN_ERR_SHAPE,
       "bucket 1: input 's' axis 0 is 1 in the model, the bucket gives 4 (export the model with "
       "a dynamic axis)"},
      {{"x", "w", NULL}, {{2, 4, -1}, {2, 4, -1}}, KILN_ERR_UNDEFINED,
       "bucket 1: the model has no input 'w' (its inputs: 'x', 'y', 's', 'z')"},
      {{"x", NULL}, {{2, 4, 1, -1}}, KILN_ERR_SHAPE,
       "bucket 1: input 'x' has rank 2 in the model (shape (n, 4)), the bucket gives rank 3"},
      {{"x", "y", NULL}, {{2, 4, -1}, {3, 4, -1}}, KILN_ERR_SHAPE,
       "bucket 1: dimension 'n' is 2 from input 'x' axis 0 but 3 from input 'y' axis 0"},
      {{"x", "y", NULL}, {{1, 4, -1}, {1, 4, -1}}, KILN_ERR_MISUSE,
       "buckets 0 and 1 have the same input shapes (x=(1, 4), y=(1, 4), s=(1, 3), z=(7,))"},
      {{"x", "x", NULL}, {{2, 4, -1}, {2, 4, -1}}, KILN_ERR_MISUSE,
       "bucket 1: input 'x' is given twice"},
      {{"x", "y", NULL}, {{-2, 4, -1}, {2, 4, -1}}, KILN_ERR_SHAPE,
       "bucket 1: input 'x' axis 0 is -2"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    buckets bs;
    memset(&bs, 0, sizeof bs);
    const int64_t ok[] = {1, 4, -1}, z[] = {7, -1};
    bucket_set(&bs, 0, 0, "x", ok);
    bucket_set(&bs, 0, 1, "z", z);
    int ni = 0;
    for (int i = 0; i < 3 && cases[k].in[i]; i++, ni++) {
      /* a terminator of -1 inside dims ends the shape; -2 is a real (bad) value */
      int64_t d[5];
      int nd = 0;
      while (cases[k].dims[i][nd] != -1) d[nd] = cases[k].dims[i][nd], nd++;
      d[nd] = -1;
      bucket_set(&bs, 1, i, cases[k].in[i], d);
    }
    const int64_t z2[] = {7, -1};
    bucket_set(&bs, 1, ni, "z", z2);
    kiln_compiled *c = (kiln_compiled *)1;
    kiln_status st = kiln_compile(m, bs.n, bs.b, NULL, &c);
    ck_assert_msg(st == cases[k].code, "case %zu: status %s (%s)", k, kiln_status_str(st),
                  kiln_context_errmsg(ctx));
    ck_assert_ptr_null(c);
    ck_errmsg_has(ctx, cases[k].msg);
    ck_assert_msg(strstr(kiln_last_error(), cases[k].msg), "last error '%s'", kiln_last_error());
  }
  /* no buckets for a symbolic model; an input neither given nor static */
  kiln_compiled *c;
  ck_assert_int_eq(kiln_compile(m, 0, NULL, NULL, &c), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "the model has symbolic dimensions (input 'x' axis 0 is n, input 'y' axis 0 "
                     "is n, input 'z' axis 0 is m)");
  buckets bs;
  memset(&bs, 0, sizeof bs);
  const int64_t x[] = {2, 4, -1};
  bucket_set(&bs, 0, 0, "x", x);
  ck_assert_int_eq(kiln_compile(m, bs.n, bs.b, NULL, &c), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "bucket 0: input 'z' is not given and its axis 0 is m, not static");
  ck_assert_int_eq(kiln_compile(m, -1, NULL, NULL, &c), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_compile(NULL, 0, NULL, NULL, &c), KILN_ERR_MISUSE);
  ck_assert_ptr_nonnull(strstr(kiln_last_error(), "NULL module"));
  char *after = print_module(m);
  ck_assert_str_eq(before, after);
  kiln_string_free(ctx, before);
  kiln_string_free(ctx, after);
  kiln_relay_module_free(m);

  m = parse("def @other(%x: Tensor[(2,), float32]) { %x }\n");
  ck_assert_int_eq(kiln_compile(m, 0, NULL, NULL, &c), KILN_ERR_UNDEFINED);
  ck_errmsg_has(ctx, "the module has no function @main");
  kiln_relay_module_free(m);
}
END_TEST

/* A shape error that only appears with the bucket's shapes names the bucket. */
START_TEST(bucket_type_error) {
  kiln_relay_module *m = parse("def @main(%x: Tensor[(1, 1, h, 4), float32]) {\n"
                               "  nn.max_pool2d(%x, pool_size=[3, 3])\n}\n");
  buckets bs;
  memset(&bs, 0, sizeof bs);
  const int64_t x1[] = {1, 1, 5, 4, -1}, x2[] = {1, 1, 1, 4, -1};
  bucket_set(&bs, 0, 0, "x", x1);
  bucket_set(&bs, 1, 0, "x", x2);
  kiln_compiled *c;
  kiln_status st = kiln_compile(m, bs.n, bs.b, NULL, &c);
  ck_assert_int_eq(st, KILN_ERR_TYPE);
  ck_errmsg_has(ctx, "bucket 1: ");
  ck_errmsg_has(ctx, "output height is -1");
  kiln_relay_module_free(m);
}
END_TEST

/* Writes an ok record for every kernel of m (the default rules' trace, or `trace` when not
 * NULL) into the database at path. */
static void write_records(kiln_relay_module *m, const buckets *bs, const char *path,
                          const char *trace) {
  tgt_target t;
  ck_ok(ctx, tgt_target_host(ctx, &t));
  sch_target_info ti;
  sch_target_info_from(&t, &ti);
  relay_build_tasks *tasks;
  ck_ok(ctx, relay_build_extract_tasks(relay_api_module(m), bs->n, bs->b, &tasks));
  tune_db *db;
  ck_ok(ctx, tune_db_open(ctx, path, &db));
  ck_ok(ctx, tune_db_add_target(db, t.canonical, t.cpu, t.features, NULL));
  for (int k = 0; k < tasks->ntasks; k++) {
    const relay_build_task *task = &tasks->tasks[k];
    char *json = NULL;
    size_t len = 0;
    sch_schedule *s = sch_new(ctx, task->prim, 1);
    ck_assert_ptr_nonnull(s);
    ck_ok(ctx, sch_apply_default_rules(s, &ti));
    ck_ok(ctx, sch_trace_to_json(ctx, &s->trace, &json, &len));
    char *ftext = ir_node_to_string(ctx, &task->prim->h);
    ck_ok(ctx, tune_db_add_workload(db, task->hash, task->summary, ftext, NULL));
    tune_record r = {0};
    r.workload_hash = task->hash;
    r.target = t.canonical;
    r.trace_json = trace ? trace : json;
    r.median_s = r.min_s = r.max_s = 1e-3;
    r.repeats = 3;
    r.status = TUNE_STATUS_OK;
    r.seed = 1;
    ck_ok(ctx, tune_db_add_record(db, &r, NULL));
    kiln_string_free(ctx, ftext);
    ir_free(ctx, json, len + 1);
    sch_free(s);
  }
  tune_db_close(db);
  relay_build_tasks_free(tasks);
}

/* Schedules from the database: the default rules' traces stored as records are replayed
 * ("schedule": "database") and give the same results. */
START_TEST(schedules_from_db) {
  char *src = net_text();
  kiln_relay_module *m = parse(src);
  free(src);
  buckets bs;
  const int64_t batches[] = {1, 3}, rest[] = {3, 8, 8, -1};
  batch_buckets(&bs, "input", 2, batches, rest);
  char path[400];
  snprintf(path, sizeof path, "%s/tune.db", dir);
  write_records(m, &bs, path, NULL);
  kiln_compile_options o = {0};
  o.db_path = path;
  kiln_compiled *c = compile_ok(m, &bs, &o);
  kiln_compile_stats st;
  ck_ok(ctx, kiln_compiled_stats(c, &st));
  ck_assert_int_gt(st.nfrom_db, 0);
  ck_assert_int_eq(st.nfrom_db, st.nkernels);
  ck_assert_int_eq(st.nwarnings, 0);
  sections s;
  read_sections(c, &s);
  cJSON *k;
  cJSON_ArrayForEach(k, get(s.plan, "kernels")) ck_assert_str_eq(get(k, "schedule")->valuestring, "database");
  ck_assert_str_eq(get(get(s.meta, "options"), "db")->valuestring, path);
  load_and_run(m, c);
  free_sections(&s);
  kiln_compiled_free(c);

  /* a bucket the database has not seen: its batch-dependent kernels take the default rules */
  const int64_t more[] = {1, 3, 5};
  buckets bs3;
  batch_buckets(&bs3, "input", 3, more, rest);
  c = compile_ok(m, &bs3, &o);
  kiln_compile_stats st3;
  ck_ok(ctx, kiln_compiled_stats(c, &st3));
  ck_assert_int_eq(st3.nfrom_db, st.nkernels);
  ck_assert_int_gt(st3.nkernels, st3.nfrom_db);
  ck_assert_int_eq(st3.nwarnings, 0);
  read_sections(c, &s);
  int ndefault = 0;
  cJSON_ArrayForEach(k, get(s.plan, "kernels")) ndefault += strcmp(get(k, "schedule")->valuestring, "default") == 0;
  ck_assert_int_eq(ndefault, st3.nkernels - st3.nfrom_db);
  free_sections(&s);
  kiln_compiled_free(c);

  /* a database that does not exist is an error, not a new file */
  char missing[420];
  snprintf(missing, sizeof missing, "%s/missing.db", dir);
  o.db_path = missing;
  ck_assert_int_eq(kiln_compile(m, bs.n, bs.b, &o, &c), KILN_ERR_IO);
  ck_errmsg_has(ctx, "cannot open the tuning database");
  ck_assert_int_ne(access(missing, F_OK), 0);
  kiln_relay_module_free(m);
}
END_TEST

/* A record whose trace does not replay: a warning naming the kernel and the record, the
 * default schedule, right results. */
START_TEST(db_record_does_not_replay) {
  kiln_relay_module *m = parse("def @main(%x: Tensor[(n, 16), float32], %w: Tensor[(8, 16), float32]) {\n"
                               "  nn.relu(nn.dense(%x, %w))\n}\n");
  buckets bs;
  memset(&bs, 0, sizeof bs);
  const int64_t x[] = {4, 16, -1}, w[] = {8, 16, -1};
  bucket_set(&bs, 0, 0, "x", x);
  bucket_set(&bs, 0, 1, "w", w);
  char path[400];
  snprintf(path, sizeof path, "%s/bad.db", dir);
  write_records(m, &bs, path,
                "{\"version\": 1, \"insts\": [{\"kind\": \"get_block\", \"inputs\": "
                "[{\"s\": \"no_such_block\"}], \"outputs\": [0]}]}");
  kiln_compile_options o = {0};
  o.db_path = path;
  kiln_compiled *c = compile_ok(m, &bs, &o);
  kiln_compile_stats st;
  ck_ok(ctx, kiln_compiled_stats(c, &st));
  ck_assert_int_eq(st.nfrom_db, 0);
  ck_assert_int_eq(st.nwarnings, 1);
  const char *w0 = kiln_compiled_warning(c, 0);
  ck_assert_ptr_nonnull(w0);
  ck_assert_msg(strstr(w0, "kernel fused_nn_dense_nn_relu (hash ") &&
                    strstr(w0, "the database record 1 does not replay (") &&
                    strstr(w0, "no_such_block") && strstr(w0, "using the default schedule"),
                "warning: %s", w0);
  ck_assert_ptr_null(kiln_compiled_warning(c, 1));
  ck_assert_ptr_null(kiln_compiled_warning(c, -1));
  sections s;
  read_sections(c, &s);
  ck_assert_str_eq(get(at(get(s.plan, "kernels"), 0), "schedule")->valuestring, "default");
  load_and_run(m, c);
  free_sections(&s);
  kiln_compiled_free(c);
  kiln_relay_module_free(m);
}
END_TEST

/* A damaged record ranked ahead of a good one is skipped with a warning; the good one is
 * used. */
START_TEST(db_damaged_record) {
  kiln_relay_module *m = parse("def @main(%x: Tensor[(2, 8), float32]) { nn.softmax(%x) }\n");
  buckets bs;
  memset(&bs, 0, sizeof bs);
  char path[400];
  snprintf(path, sizeof path, "%s/damaged.db", dir);
  write_records(m, &bs, path, NULL);
  write_records(m, &bs, path, NULL);
  sqlite3 *db;
  ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
  ck_assert_int_eq(sqlite3_exec(db, "UPDATE records SET trace_json = '{broken', median_s = 1e-6 "
                                    "WHERE id = 1", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  kiln_compile_options o = {0};
  o.db_path = path;
  kiln_compiled *c = compile_ok(m, NULL, &o);
  kiln_compile_stats st;
  ck_ok(ctx, kiln_compiled_stats(c, &st));
  ck_assert_int_eq(st.nfrom_db, 1);
  ck_assert_int_eq(st.nwarnings, 1);
  ck_assert_msg(strstr(kiln_compiled_warning(c, 0), "1 damaged database record skipped"), "%s",
                kiln_compiled_warning(c, 0));
  load_and_run(m, c);
  kiln_compiled_free(c);
  kiln_relay_module_free(m);
}
END_TEST

/* kiln_compiled_save writes the bytes kiln_compiled_bytes gives; kiln_model_load reads the
 * file back and runs it. */
START_TEST(save_and_load) {
  kiln_relay_module *m = parse("def @main(%x: Tensor[(n, 8), float32]) {\n"
                               "  %0 = nn.softmax(%x);\n  multiply(%0, 3f)\n}\n");
  buckets bs;
  const int64_t batches[] = {1, 2}, rest[] = {8, -1};
  batch_buckets(&bs, "x", 2, batches, rest);
  kiln_compiled *c = compile_ok(m, &bs, NULL);
  char path[400];
  snprintf(path, sizeof path, "%s/m.kiln", dir);
  ck_ok(ctx, kiln_compiled_save(c, path));
  const void *data;
  size_t size, len;
  ck_ok(ctx, kiln_compiled_bytes(c, &data, &size));
  char *file = kiln_test_read_file(path, &len);
  ck_assert_uint_eq(len, size);
  ck_assert(memcmp(file, data, size) == 0);
  free(file);
  kiln_model *model;
  ck_ok(NULL, kiln_model_load(path, &model));
  ck_assert_int_eq(kiln_model_num_buckets(model), 2);
  ck_assert_str_eq(kiln_model_input_name(model, 0), "x");
  run_all_buckets(m, model);
  kiln_model_free(model);
  /* an unwritable path */
  char bad[420];
  snprintf(bad, sizeof bad, "%s/no/such/dir/m.kiln", dir);
  ck_assert_int_eq(kiln_compiled_save(c, bad), KILN_ERR_IO);
  ck_errmsg_has(ctx, "no/such/dir");
  kiln_compiled_free(c);
  kiln_relay_module_free(m);
}
END_TEST

/* Misuse of the compiled-model functions. */
START_TEST(compiled_misuse) {
  kiln_compile_stats st;
  ck_assert_int_eq(kiln_compiled_stats(NULL, &st), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_compiled_save(NULL, "x"), KILN_ERR_MISUSE);
  const void *d;
  size_t n;
  ck_assert_int_eq(kiln_compiled_bytes(NULL, &d, &n), KILN_ERR_MISUSE);
  kiln_model *model;
  ck_assert_int_eq(kiln_compiled_load(NULL, &model), KILN_ERR_MISUSE);
  ck_assert_ptr_null(kiln_compiled_warning(NULL, 0));
  kiln_compiled_free(NULL);
  kiln_relay_module *m = parse("def @main(%x: Tensor[(2,), float32]) { nn.relu(%x) }\n");
  ck_assert_int_eq(kiln_compile(m, 0, NULL, NULL, NULL), KILN_ERR_MISUSE);
  kiln_relay_module_free(m);
}
END_TEST

/* Allocation failures: every allocation of the front end (task extraction) and a sample of
 * those of a whole compile fail in turn; each gives KILN_ERR_NOMEM with nothing leaked. */
START_TEST(allocation_failures) {
  kiln_relay_module *m = parse("def @main(%x: Tensor[(n, 4), float32], %w: Tensor[(4, 4), float32]) {\n"
                               "  %0 = nn.softmax(%w);\n"
                               "  (nn.dense(%x, %0), const(Tensor[(2,), float32], [1, 2]))\n}\n");
  buckets bs;
  memset(&bs, 0, sizeof bs);
  const int64_t x1[] = {1, 4, -1}, x2[] = {2, 4, -1};
  bucket_set(&bs, 0, 0, "x", x1);
  bucket_set(&bs, 1, 0, "x", x2);
  long live = kiln_context_live_blocks(ctx);
  int failures = 0;
  for (long n = 1;; n++) {
    kiln_context_fail_alloc(ctx, n);
    relay_build_tasks *t = NULL;
    kiln_status st = relay_build_extract_tasks(relay_api_module(m), bs.n, bs.b, &t);
    kiln_context_fail_alloc(ctx, 0);
    if (st == KILN_OK) {
      relay_build_tasks_free(t);
      break;
    }
    ck_assert_msg(st == KILN_ERR_NOMEM, "allocation %ld: %s: %s", n, kiln_status_str(st),
                  kiln_context_errmsg(ctx));
    ck_assert_int_eq(kiln_context_live_blocks(ctx), live);
    failures++;
  }
  ck_assert_int_gt(failures, 100);
  long before = kiln_context_alloc_count(ctx);
  kiln_compiled *c = compile_ok(m, &bs, NULL);
  long total = kiln_context_alloc_count(ctx) - before;
  kiln_compiled_free(c);
  long step = total / 40 + 1;
  for (long n = 1; n < total; n += step) {
    kiln_context_fail_alloc(ctx, n);
    c = NULL;
    kiln_status st = kiln_compile(m, bs.n, bs.b, NULL, &c);
    kiln_context_fail_alloc(ctx, 0);
    if (st == KILN_OK) {
      kiln_compiled_free(c);
      continue;
    }
    ck_assert_msg(st == KILN_ERR_NOMEM, "allocation %ld of %ld: %s: %s", n, total,
                  kiln_status_str(st), kiln_context_errmsg(ctx));
    ck_assert_ptr_null(c);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), live);
  }
  kiln_relay_module_free(m);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("build");
  TCase *tc = tcase_create("build");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, net_three_buckets);
  tcase_add_test(tc, chain_plan);
  tcase_add_test(tc, tuple_model);
  tcase_add_test(tc, returns_input_and_constant);
  tcase_add_test(tc, shared_kernel);
  tcase_add_test(tc, follows_by_extent);
  tcase_add_test(tc, meta_options);
  tcase_add_test(tc, bucket_errors);
  tcase_add_test(tc, bucket_type_error);
  tcase_add_test(tc, schedules_from_db);
  tcase_add_test(tc, db_record_does_not_replay);
  tcase_add_test(tc, db_damaged_record);
  tcase_add_test(tc, save_and_load);
  tcase_add_test(tc, compiled_misuse);
  tcase_add_test(tc, allocation_failures);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

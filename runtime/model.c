/* model.c: loading a compiled model. An artifact (artifact.c) is opened from a file or from
 * memory, its META and PLAN JSON sections are parsed (json.c) and checked against each other
 * and against every rule of runtime/FORMAT.md, the code is loaded and every kernel symbol
 * resolved. The result is the plain C form of model.h, used by the sessions (session.c); the
 * weights stay in the artifact's mapping (zero copy). Also the kiln_model_* queries.
 *
 * Every refusal is KILN_ERR_CORRUPT with a message "NAME: SECTION field.path: what is wrong",
 * e.g. "model.kiln: PLAN buckets[1].calls[3].args[2]: tensor index 57 out of range (41
 * tensors)". Models are reference counted: the user's reference and one per session. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "model.h"
#include "rt_internal.h"

/* Ranks above this are refused (no real model comes near; it bounds loops and buffers). */
#define MAX_RANK 64

/* ---- Messages --------------------------------------------------------------------------- */

/* What is being read, for messages. */
typedef struct loader {
  const char *file;    /* the path or the label */
  const char *section; /* "META" or "PLAN" */
  kiln_model *m;
} loader;

/* Records "FILE: SECTION where: message" as a KILN_ERR_CORRUPT error. */
static kiln_status bad(const loader *L, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static kiln_status bad(const loader *L, const char *where, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return rt_errorf(KILN_ERR_CORRUPT, "%s: %s%s%s: %s", L->file, L->section, *where ? " " : "",
                   where, msg);
}

static kiln_status nomem(const loader *L) {
  return rt_errorf(KILN_ERR_NOMEM, "%s: out of memory loading the model", L->file);
}

/* where + "." + key (or key alone at the top level) into buf. */
static const char *field(char *buf, size_t cap, const char *where, const char *key) {
  snprintf(buf, cap, "%s%s%s", where, *where ? "." : "", key);
  return buf;
}

/* where + "[i]" into buf. */
static const char *item(char *buf, size_t cap, const char *where, int i) {
  snprintf(buf, cap, "%s[%d]", where, i);
  return buf;
}

/* "[1, 3, 224, 224]" into buf. */
static const char *shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
  size_t n = (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < ndim && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (n < cap) snprintf(buf + n, cap - n, "]");
  return buf;
}

/* ---- Typed access to JSON values -------------------------------------------------------- */

/* Member `key` of object obj (at `where`), required to be of kind `kind`. */
static kiln_status need(const loader *L, const rt_json *obj, const char *where, const char *key,
                        rt_json_kind kind, const rt_json **out) {
  char w[256];
  const rt_json *v = rt_json_get(obj, key);
  if (!v) return bad(L, where, "missing key \"%s\"", key);
  if (v->kind != kind)
    return bad(L, field(w, sizeof w, where, key), "must be %s, not %s", rt_json_kind_name(kind),
               rt_json_kind_name(v->kind));
  *out = v;
  return KILN_OK;
}

/* Like need, but a missing key gives *out = NULL (optional fields). */
static kiln_status maybe(const loader *L, const rt_json *obj, const char *where, const char *key,
                         rt_json_kind kind, const rt_json **out) {
  *out = NULL;
  if (!rt_json_get(obj, key)) return KILN_OK;
  return need(L, obj, where, key, kind, out);
}

/* v (at where) as an integer in [lo, hi]. */
static kiln_status as_int(const loader *L, const rt_json *v, const char *where, int64_t lo,
                          int64_t hi, int64_t *out) {
  if (v->kind != RT_JSON_NUMBER)
    return bad(L, where, "must be an integer, not %s", rt_json_kind_name(v->kind));
  if (!v->is_int)
    return bad(L, where, "%.17g is not an integer within [%lld, %lld]", v->num, (long long)lo,
               (long long)hi);
  if (v->i < lo || v->i > hi)
    return bad(L, where, "%lld out of range [%lld, %lld]", (long long)v->i, (long long)lo,
               (long long)hi);
  *out = v->i;
  return KILN_OK;
}

/* Member key of obj as an integer in [lo, hi]. */
static kiln_status need_int(const loader *L, const rt_json *obj, const char *where,
                            const char *key, int64_t lo, int64_t hi, int64_t *out) {
  const rt_json *v = rt_json_get(obj, key);
  char w[256];
  if (!v) return bad(L, where, "missing key \"%s\"", key);
  return as_int(L, v, field(w, sizeof w, where, key), lo, hi, out);
}

/* Member key of obj as a string without NUL bytes (non-empty when nonempty is set), copied
 * with malloc into *out when out is not NULL; *str gets the borrowed text when str is not NULL. */
static kiln_status need_str(const loader *L, const rt_json *obj, const char *where,
                            const char *key, int nonempty, char **out, const char **str) {
  const rt_json *v;
  char w[256];
  kiln_status st = need(L, obj, where, key, RT_JSON_STRING, &v);
  if (st != KILN_OK) return st;
  if (strlen(v->str) != v->len)
    return bad(L, field(w, sizeof w, where, key), "contains a NUL character");
  if (nonempty && v->len == 0) return bad(L, field(w, sizeof w, where, key), "must not be empty");
  if (str) *str = v->str;
  if (out && !(*out = strdup(v->str))) return nomem(L);
  return KILN_OK;
}

/* Member key of obj as a data type name; void and handle are not tensor types. */
static kiln_status need_dtype(const loader *L, const rt_json *obj, const char *where,
                              kiln_dtype *out) {
  const char *s;
  char w[256];
  kiln_status st = need_str(L, obj, where, "dtype", 1, NULL, &s);
  if (st != KILN_OK) return st;
  field(w, sizeof w, where, "dtype");
  if (kiln_dtype_parse(s, strlen(s), out) != KILN_OK)
    return bad(L, w, "unknown data type \"%.64s\"", s);
  if (out->code == KILN_TYPE_VOID || out->code == KILN_TYPE_HANDLE)
    return bad(L, w, "\"%s\" is not a tensor element type", s);
  return KILN_OK;
}

/* v (at where) as a shape: an array of at most MAX_RANK integers >= 0, into a new array. */
static kiln_status as_shape(const loader *L, const rt_json *v, const char *where, int *ndim,
                            int64_t **dims) {
  char w[256];
  if (v->kind != RT_JSON_ARRAY)
    return bad(L, where, "a shape must be an array, not %s", rt_json_kind_name(v->kind));
  if (v->n > MAX_RANK) return bad(L, where, "rank %d is more than %d", v->n, MAX_RANK);
  int64_t *d = malloc((size_t)(v->n ? v->n : 1) * sizeof *d);
  if (!d) return nomem(L);
  for (int i = 0; i < v->n; i++) {
    kiln_status st = as_int(L, v->items[i], item(w, sizeof w, where, i), 0, INT64_MAX, &d[i]);
    if (st != KILN_OK) {
      free(d);
      return st;
    }
  }
  *ndim = v->n;
  *dims = d;
  return KILN_OK;
}

/* The bytes of a tensor, refusing sizes that overflow (beyond INT64_MAX). */
static kiln_status tensor_bytes(const loader *L, const char *where, kiln_dtype t, int ndim,
                                const int64_t *dims, uint64_t *elems_out, uint64_t *bytes_out) {
  uint64_t elems = 1;
  for (int i = 0; i < ndim; i++)
    if (dims[i] == 0) elems = 0;
  for (int i = 0; i < ndim && elems; i++) {
    if ((uint64_t)dims[i] > (uint64_t)INT64_MAX / elems)
      return bad(L, where, "the tensor's size overflows");
    elems *= (uint64_t)dims[i];
  }
  uint64_t eb = kiln_dtype_bytes(t);
  if (elems > (uint64_t)INT64_MAX / eb) return bad(L, where, "the tensor's size overflows");
  if (elems_out) *elems_out = elems;
  *bytes_out = elems * eb;
  return KILN_OK;
}

static int shape_eq(int na, const int64_t *a, int nb, const int64_t *b) {
  if (na != nb) return 0;
  for (int i = 0; i < na; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

/* ---- META ------------------------------------------------------------------------------- */

/* inputs: [{"name", "dtype"}], names distinct. Ranks come from the buckets. */
static kiln_status read_inputs(loader *L, const rt_json *arr) {
  kiln_model *m = L->m;
  char w[64];
  m->inputs = calloc((size_t)(arr->n ? arr->n : 1), sizeof *m->inputs);
  if (!m->inputs) return nomem(L);
  m->ninputs = arr->n;
  for (int i = 0; i < arr->n; i++) {
    const rt_json *v = arr->items[i];
    item(w, sizeof w, "inputs", i);
    if (v->kind != RT_JSON_OBJECT)
      return bad(L, w, "must be an object, not %s", rt_json_kind_name(v->kind));
    kiln_status st = need_str(L, v, w, "name", 1, &m->inputs[i].name, NULL);
    if (st == KILN_OK) st = need_dtype(L, v, w, &m->inputs[i].dtype);
    if (st != KILN_OK) return st;
    for (int j = 0; j < i; j++)
      if (strcmp(m->inputs[j].name, m->inputs[i].name) == 0)
        return bad(L, w, "input name \"%s\" repeats inputs[%d]", m->inputs[i].name, j);
  }
  return KILN_OK;
}

/* outputs: [{"name", "dtype", "follows": [null | [input, axis], ...]}]. The axis is checked
 * against the input's rank once the buckets are read. */
static kiln_status read_outputs(loader *L, const rt_json *arr) {
  kiln_model *m = L->m;
  char w[64], f[96], a[128];
  m->outputs = calloc((size_t)(arr->n ? arr->n : 1), sizeof *m->outputs);
  if (!m->outputs) return nomem(L);
  m->noutputs = arr->n;
  for (int i = 0; i < arr->n; i++) {
    const rt_json *v = arr->items[i], *fol;
    rt_io *o = &m->outputs[i];
    item(w, sizeof w, "outputs", i);
    if (v->kind != RT_JSON_OBJECT)
      return bad(L, w, "must be an object, not %s", rt_json_kind_name(v->kind));
    kiln_status st = need_str(L, v, w, "name", 0, &o->name, NULL);
    if (st == KILN_OK) st = need_dtype(L, v, w, &o->dtype);
    if (st == KILN_OK) st = need(L, v, w, "follows", RT_JSON_ARRAY, &fol);
    if (st != KILN_OK) return st;
    field(f, sizeof f, w, "follows");
    if (fol->n > MAX_RANK) return bad(L, f, "rank %d is more than %d", fol->n, MAX_RANK);
    o->ndim = fol->n;
    o->follow_input = malloc((size_t)(fol->n ? fol->n : 1) * sizeof(int));
    o->follow_axis = malloc((size_t)(fol->n ? fol->n : 1) * sizeof(int));
    if (!o->follow_input || !o->follow_axis) return nomem(L);
    for (int k = 0; k < fol->n; k++) {
      const rt_json *e = fol->items[k];
      item(a, sizeof a, f, k);
      o->follow_input[k] = o->follow_axis[k] = -1;
      if (e->kind == RT_JSON_NULL) continue;
      if (e->kind != RT_JSON_ARRAY || e->n != 2)
        return bad(L, a, "must be null or an [input, axis] pair");
      int64_t in, ax;
      char b[160];
      st = as_int(L, e->items[0], item(b, sizeof b, a, 0), 0, m->ninputs - 1, &in);
      if (st == KILN_OK) st = as_int(L, e->items[1], item(b, sizeof b, a, 1), 0, MAX_RANK, &ax);
      if (st != KILN_OK) return st;
      o->follow_input[k] = (int)in;
      o->follow_axis[k] = (int)ax;
    }
  }
  return KILN_OK;
}

/* One list of shapes of a bucket ("inputs" or "outputs"): count entries, ranks given (or
 * taken from this, the first bucket, when ranks[i] < 0). */
static kiln_status read_bucket_shapes(loader *L, const rt_json *b, const char *where,
                                      const char *key, int count, int *ranks, int64_t ***out,
                                      uint64_t **bytes, const rt_io *ios) {
  const rt_json *arr;
  char w[128], s[160];
  kiln_status st = need(L, b, where, key, RT_JSON_ARRAY, &arr);
  if (st != KILN_OK) return st;
  field(w, sizeof w, where, key);
  if (arr->n != count)
    return bad(L, w, "%d shapes for %d model %s", arr->n, count, key);
  *out = calloc((size_t)(count ? count : 1), sizeof **out);
  *bytes = calloc((size_t)(count ? count : 1), sizeof **bytes);
  if (!*out || !*bytes) return nomem(L);
  for (int i = 0; i < count; i++) {
    int ndim;
    item(s, sizeof s, w, i);
    st = as_shape(L, arr->items[i], s, &ndim, &(*out)[i]);
    if (st != KILN_OK) return st;
    if (ranks[i] < 0) ranks[i] = ndim;
    if (ndim != ranks[i])
      return bad(L, s, "rank %d, but %s %d has rank %d in %s", ndim, key, i, ranks[i],
                 ios == L->m->outputs ? "its \"follows\"" : "buckets[0]");
    st = tensor_bytes(L, s, ios[i].dtype, ndim, (*out)[i], NULL, &(*bytes)[i]);
    if (st != KILN_OK) return st;
  }
  return KILN_OK;
}

/* buckets: [{"inputs": [shape...], "outputs": [shape...], "weight"?}], at least one, input
 * shapes distinct, output axes that follow an input axis equal to it. */
static kiln_status read_buckets(loader *L, const rt_json *arr) {
  kiln_model *m = L->m;
  char w[64], s[160], t[160];
  if (arr->n == 0) return bad(L, "buckets", "there must be at least one bucket");
  m->buckets = calloc((size_t)arr->n, sizeof *m->buckets);
  int *in_ranks = malloc((size_t)(m->ninputs ? m->ninputs : 1) * sizeof(int));
  int *out_ranks = malloc((size_t)(m->noutputs ? m->noutputs : 1) * sizeof(int));
  kiln_status st = KILN_OK;
  if (!m->buckets || !in_ranks || !out_ranks) {
    st = nomem(L);
    goto done;
  }
  m->nbuckets = arr->n;
  for (int i = 0; i < m->ninputs; i++) in_ranks[i] = -1;
  for (int i = 0; i < m->noutputs; i++) out_ranks[i] = m->outputs[i].ndim;
  for (int b = 0; b < arr->n && st == KILN_OK; b++) {
    const rt_json *v = arr->items[b], *wt;
    rt_bucket *bk = &m->buckets[b];
    item(w, sizeof w, "buckets", b);
    if (v->kind != RT_JSON_OBJECT) {
      st = bad(L, w, "must be an object, not %s", rt_json_kind_name(v->kind));
      break;
    }
    st = read_bucket_shapes(L, v, w, "inputs", m->ninputs, in_ranks, &bk->input_shapes,
                            &bk->input_bytes, m->inputs);
    if (st == KILN_OK)
      st = read_bucket_shapes(L, v, w, "outputs", m->noutputs, out_ranks, &bk->output_shapes,
                              &bk->output_bytes, m->outputs);
    if (st == KILN_OK) st = maybe(L, v, w, "weight", RT_JSON_NUMBER, &wt);
    if (st != KILN_OK) break;
    bk->weight = wt ? wt->num : 1.0;
    if (bk->weight < 0) {
      st = bad(L, field(s, sizeof s, w, "weight"), "must not be negative");
      break;
    }
    /* Total input elements (for choosing the smallest bucket that fits). */
    for (int i = 0; i < m->ninputs && st == KILN_OK; i++) {
      uint64_t e;
      st = tensor_bytes(L, w, KILN_UINT8, in_ranks[i], bk->input_shapes[i], &e, &e);
      if (st == KILN_OK && e > UINT64_MAX - bk->input_elems)
        st = bad(L, w, "the inputs' sizes overflow");
      if (st == KILN_OK) bk->input_elems += e;
    }
    for (int j = 0; j < b && st == KILN_OK; j++) {
      int same = 1;
      for (int i = 0; i < m->ninputs && same; i++)
        same = shape_eq(in_ranks[i], bk->input_shapes[i], in_ranks[i],
                        m->buckets[j].input_shapes[i]);
      if (same) st = bad(L, field(s, sizeof s, w, "inputs"), "the same input shapes as buckets[%d]", j);
    }
  }
  if (st != KILN_OK) goto done;
  for (int i = 0; i < m->ninputs; i++) m->inputs[i].ndim = in_ranks[i];
  /* "follows": the input axis exists, and the output extent equals it in every bucket. */
  for (int o = 0; o < m->noutputs && st == KILN_OK; o++) {
    const rt_io *io = &m->outputs[o];
    for (int k = 0; k < io->ndim && st == KILN_OK; k++) {
      int in = io->follow_input[k], ax = io->follow_axis[k];
      if (in < 0) continue;
      snprintf(s, sizeof s, "outputs[%d].follows[%d]", o, k);
      if (ax >= m->inputs[in].ndim) {
        st = bad(L, s, "axis %d out of range for input %d of rank %d", ax, in, m->inputs[in].ndim);
        break;
      }
      for (int b = 0; b < m->nbuckets; b++) {
        int64_t oe = m->buckets[b].output_shapes[o][k], ie = m->buckets[b].input_shapes[in][ax];
        if (oe != ie) {
          st = bad(L, s, "follows axis %d of input %d, but buckets[%d] has extent %lld for the "
                   "output and %lld for the input (%s vs %s)", ax, in, b, (long long)oe,
                   (long long)ie,
                   shape_str(t, 64, io->ndim, m->buckets[b].output_shapes[o]),
                   shape_str(t + 64, 64, m->inputs[in].ndim, m->buckets[b].input_shapes[in]));
          break;
        }
      }
    }
  }
done:
  free(in_ranks);
  free(out_ranks);
  return st;
}

/* paddable (optional): [[input, axis], ...] with existing inputs and axes. */
static kiln_status read_paddable(loader *L, const rt_json *arr) {
  kiln_model *m = L->m;
  char w[64], s[96];
  m->paddable = malloc((size_t)(arr->n ? arr->n : 1) * sizeof *m->paddable);
  if (!m->paddable) return nomem(L);
  m->npaddable = arr->n;
  for (int i = 0; i < arr->n; i++) {
    const rt_json *e = arr->items[i];
    int64_t in, ax;
    item(w, sizeof w, "paddable", i);
    if (e->kind != RT_JSON_ARRAY || e->n != 2) return bad(L, w, "must be an [input, axis] pair");
    kiln_status st = as_int(L, e->items[0], item(s, sizeof s, w, 0), 0, m->ninputs - 1, &in);
    if (st == KILN_OK)
      st = as_int(L, e->items[1], item(s, sizeof s, w, 1), 0, m->inputs[in].ndim - 1, &ax);
    if (st != KILN_OK) return st;
    m->paddable[i][0] = (int)in;
    m->paddable[i][1] = (int)ax;
  }
  return KILN_OK;
}

static kiln_status read_meta(loader *L, const rt_json *root) {
  const rt_json *v, *inputs, *outputs, *buckets, *paddable;
  const char *format;
  if (root->kind != RT_JSON_OBJECT)
    return bad(L, "", "must be a JSON object, not %s", rt_json_kind_name(root->kind));
  kiln_status st = need_str(L, root, "", "format", 0, NULL, &format);
  if (st != KILN_OK) return st;
  if (strcmp(format, "kiln-model") != 0)
    return bad(L, "format", "\"%.64s\" is not \"kiln-model\"", format);
  /* Descriptive fields: optional, but of the right type when present. */
  static const char *const strings[] = {"kiln_version", "created", "model", "target"};
  for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
    st = maybe(L, root, "", strings[i], RT_JSON_STRING, &v);
    if (st != KILN_OK) return st;
  }
  st = maybe(L, root, "", "options", RT_JSON_OBJECT, &v);
  if (st == KILN_OK) st = need(L, root, "", "inputs", RT_JSON_ARRAY, &inputs);
  if (st == KILN_OK) st = need(L, root, "", "outputs", RT_JSON_ARRAY, &outputs);
  if (st == KILN_OK) st = need(L, root, "", "buckets", RT_JSON_ARRAY, &buckets);
  if (st == KILN_OK) st = maybe(L, root, "", "paddable", RT_JSON_ARRAY, &paddable);
  if (st == KILN_OK) st = read_inputs(L, inputs);
  if (st == KILN_OK) st = read_outputs(L, outputs);
  if (st == KILN_OK) st = read_buckets(L, buckets);
  if (st == KILN_OK && paddable) st = read_paddable(L, paddable);
  return st;
}

/* ---- PLAN ------------------------------------------------------------------------------- */

/* kernels: [{"symbol", "name", "hash", "workload", "schedule"}], symbols distinct. */
static kiln_status read_kernels(loader *L, const rt_json *arr) {
  kiln_model *m = L->m;
  char w[64], s[96];
  m->kernels = calloc((size_t)(arr->n ? arr->n : 1), sizeof *m->kernels);
  if (!m->kernels) return nomem(L);
  m->nkernels = arr->n;
  for (int i = 0; i < arr->n; i++) {
    const rt_json *v = arr->items[i];
    rt_kernel *k = &m->kernels[i];
    const char *hash, *sched;
    item(w, sizeof w, "kernels", i);
    if (v->kind != RT_JSON_OBJECT)
      return bad(L, w, "must be an object, not %s", rt_json_kind_name(v->kind));
    kiln_status st = need_str(L, v, w, "symbol", 1, &k->symbol, NULL);
    if (st == KILN_OK) st = need_str(L, v, w, "name", 1, &k->name, NULL);
    if (st == KILN_OK) st = need_str(L, v, w, "hash", 0, NULL, &hash);
    if (st == KILN_OK) st = need_str(L, v, w, "workload", 0, NULL, NULL);
    if (st == KILN_OK) st = need_str(L, v, w, "schedule", 0, NULL, &sched);
    if (st != KILN_OK) return st;
    int hex = strlen(hash) == 16;
    for (int c = 0; hex && c < 16; c++)
      hex = (hash[c] >= '0' && hash[c] <= '9') || (hash[c] >= 'a' && hash[c] <= 'f');
    if (!hex)
      return bad(L, field(s, sizeof s, w, "hash"), "\"%.64s\" is not 16 lowercase hex digits", hash);
    if (strcmp(sched, "default") != 0 && strcmp(sched, "database") != 0)
      return bad(L, field(s, sizeof s, w, "schedule"),
                 "\"%.64s\" is neither \"default\" nor \"database\"", sched);
    for (int j = 0; j < i; j++)
      if (strcmp(m->kernels[j].symbol, k->symbol) == 0)
        return bad(L, field(s, sizeof s, w, "symbol"), "\"%s\" repeats kernels[%d]", k->symbol, j);
  }
  return KILN_OK;
}

/* params: [{"offset", "nbytes", "dtype", "shape"}] inside the PARAMS section. */
static kiln_status read_params(loader *L, const rt_json *arr) {
  kiln_model *m = L->m;
  char w[64], s[96];
  m->params_list = calloc((size_t)(arr->n ? arr->n : 1), sizeof *m->params_list);
  if (!m->params_list) return nomem(L);
  m->nparams = arr->n;
  for (int i = 0; i < arr->n; i++) {
    const rt_json *v = arr->items[i], *shape;
    rt_param *p = &m->params_list[i];
    int64_t off, nb;
    uint64_t bytes;
    item(w, sizeof w, "params", i);
    if (v->kind != RT_JSON_OBJECT)
      return bad(L, w, "must be an object, not %s", rt_json_kind_name(v->kind));
    kiln_status st = need_int(L, v, w, "offset", 0, INT64_MAX, &off);
    if (st == KILN_OK) st = need_int(L, v, w, "nbytes", 0, INT64_MAX, &nb);
    if (st == KILN_OK) st = need_dtype(L, v, w, &p->dtype);
    if (st == KILN_OK) st = need(L, v, w, "shape", RT_JSON_ARRAY, &shape);
    if (st == KILN_OK) st = as_shape(L, shape, field(s, sizeof s, w, "shape"), &p->ndim, &p->shape);
    if (st == KILN_OK) st = tensor_bytes(L, w, p->dtype, p->ndim, p->shape, NULL, &bytes);
    if (st != KILN_OK) return st;
    p->offset = (uint64_t)off;
    p->nbytes = (uint64_t)nb;
    if (off % 64 != 0)
      return bad(L, field(s, sizeof s, w, "offset"), "%lld is not a multiple of 64", (long long)off);
    if (p->nbytes != bytes) {
      char t[128], d[32];
      return bad(L, field(s, sizeof s, w, "nbytes"), "%lld, but %s %s takes %llu bytes",
                 (long long)nb, kiln_dtype_str(p->dtype, d, sizeof d),
                 shape_str(t, sizeof t, p->ndim, p->shape), (unsigned long long)bytes);
    }
    if (p->offset > m->params_size || p->nbytes > m->params_size - p->offset)
      return bad(L, w, "bytes [%llu, %llu) lie outside the PARAMS section (%llu bytes)",
                 (unsigned long long)p->offset, (unsigned long long)p->offset + p->nbytes,
                 (unsigned long long)m->params_size);
  }
  return KILN_OK;
}

/* One entry of a bucket's "tensors": kind input / param / arena, checked against the model
 * input / the param / the arena. */
static kiln_status read_tensor(loader *L, const rt_json *v, const char *w, int b, rt_tensor *t) {
  kiln_model *m = L->m;
  const rt_bucket *bk = &m->buckets[b];
  const rt_json *shape;
  const char *kind;
  char s[160], x[128], y[128], d1[32], d2[32];
  int64_t idx;
  if (v->kind != RT_JSON_OBJECT)
    return bad(L, w, "must be an object, not %s", rt_json_kind_name(v->kind));
  kiln_status st = need_str(L, v, w, "kind", 0, NULL, &kind);
  if (st == KILN_OK) st = need_dtype(L, v, w, &t->dtype);
  if (st == KILN_OK) st = need(L, v, w, "shape", RT_JSON_ARRAY, &shape);
  if (st == KILN_OK) st = as_shape(L, shape, field(s, sizeof s, w, "shape"), &t->ndim, &t->shape);
  if (st == KILN_OK) st = tensor_bytes(L, w, t->dtype, t->ndim, t->shape, NULL, &t->nbytes);
  if (st != KILN_OK) return st;
  kiln_dtype want_t;
  int want_n;
  const int64_t *want_s;
  const char *what;
  if (strcmp(kind, "input") == 0) {
    t->kind = RT_TENSOR_INPUT;
    st = need_int(L, v, w, "index", 0, m->ninputs - 1, &idx);
    if (st != KILN_OK) return st;
    want_t = m->inputs[idx].dtype;
    want_n = m->inputs[idx].ndim;
    want_s = bk->input_shapes[idx];
    what = "input";
  } else if (strcmp(kind, "param") == 0) {
    t->kind = RT_TENSOR_PARAM;
    st = need_int(L, v, w, "index", 0, m->nparams - 1, &idx);
    if (st != KILN_OK) return st;
    want_t = m->params_list[idx].dtype;
    want_n = m->params_list[idx].ndim;
    want_s = m->params_list[idx].shape;
    what = "param";
  } else if (strcmp(kind, "arena") == 0) {
    int64_t off;
    t->kind = RT_TENSOR_ARENA;
    st = need_int(L, v, w, "offset", 0, INT64_MAX, &off);
    if (st != KILN_OK) return st;
    t->offset = (uint64_t)off;
    if (off % 64 != 0)
      return bad(L, field(s, sizeof s, w, "offset"), "%lld is not a multiple of 64", (long long)off);
    if (t->offset > bk->arena_bytes || t->nbytes > bk->arena_bytes - t->offset)
      return bad(L, w, "bytes [%llu, %llu) lie outside the arena (arena_bytes %llu)",
                 (unsigned long long)t->offset, (unsigned long long)(t->offset + t->nbytes),
                 (unsigned long long)bk->arena_bytes);
    return KILN_OK;
  } else {
    return bad(L, field(s, sizeof s, w, "kind"), "\"%.32s\" is not input, param or arena", kind);
  }
  t->index = (int)idx;
  if (!kiln_dtype_eq(t->dtype, want_t) || !shape_eq(t->ndim, t->shape, want_n, want_s))
    return bad(L, w, "%s %s does not match %s %d (%s %s in this bucket)",
               kiln_dtype_str(t->dtype, d1, sizeof d1), shape_str(x, sizeof x, t->ndim, t->shape),
               what, t->index, kiln_dtype_str(want_t, d2, sizeof d2),
               shape_str(y, sizeof y, want_n, want_s));
  return KILN_OK;
}

/* One call: {"kernel": k, "args": [tensor index | {"i64": V}, ...]}. */
static kiln_status read_call(loader *L, const rt_json *v, const char *w, rt_bucket *bk,
                             rt_call *c) {
  const rt_json *args;
  char s[160], a[200];
  int64_t k;
  if (v->kind != RT_JSON_OBJECT)
    return bad(L, w, "must be an object, not %s", rt_json_kind_name(v->kind));
  kiln_status st = need_int(L, v, w, "kernel", 0, L->m->nkernels - 1, &k);
  if (st == KILN_OK) st = need(L, v, w, "args", RT_JSON_ARRAY, &args);
  if (st != KILN_OK) return st;
  c->kernel = (int)k;
  c->args = calloc((size_t)(args->n ? args->n : 1), sizeof *c->args);
  if (!c->args) return nomem(L);
  c->nargs = args->n;
  field(s, sizeof s, w, "args");
  for (int i = 0; i < args->n; i++) {
    const rt_json *e = args->items[i];
    item(a, sizeof a, s, i);
    if (e->kind == RT_JSON_OBJECT) {
      const rt_json *val = rt_json_get(e, "i64");
      if (!val || e->n != 1) return bad(L, a, "a scalar argument must be {\"i64\": value}");
      char b[220];
      st = as_int(L, val, field(b, sizeof b, a, "i64"), INT64_MIN, INT64_MAX, &c->args[i].value);
      if (st != KILN_OK) return st;
      c->args[i].tensor = -1;
      continue;
    }
    if (e->kind != RT_JSON_NUMBER || !e->is_int)
      return bad(L, a, "must be a tensor index or {\"i64\": value}, not %s",
                 e->kind == RT_JSON_NUMBER ? "a fraction" : rt_json_kind_name(e->kind));
    if (e->i < 0 || e->i >= bk->ntensors)
      return bad(L, a, "tensor index %lld out of range (%d tensors)", (long long)e->i, bk->ntensors);
    c->args[i].tensor = (int)e->i;
  }
  return KILN_OK;
}

/* One PLAN bucket: arena sizes, tensors, calls and outputs, against META's bucket b. */
static kiln_status read_plan_bucket(loader *L, const rt_json *v, int b) {
  kiln_model *m = L->m;
  rt_bucket *bk = &m->buckets[b];
  const rt_json *tensors, *calls, *outs;
  char w[64], s[128], x[128], d1[32], d2[32];
  int64_t ab, nb;
  item(w, sizeof w, "buckets", b);
  if (v->kind != RT_JSON_OBJECT)
    return bad(L, w, "must be an object, not %s", rt_json_kind_name(v->kind));
  kiln_status st = need_int(L, v, w, "arena_bytes", 0, INT64_MAX, &ab);
  if (st == KILN_OK) st = need_int(L, v, w, "naive_bytes", 0, INT64_MAX, &nb);
  if (st == KILN_OK) st = need(L, v, w, "tensors", RT_JSON_ARRAY, &tensors);
  if (st == KILN_OK) st = need(L, v, w, "calls", RT_JSON_ARRAY, &calls);
  if (st == KILN_OK) st = need(L, v, w, "outputs", RT_JSON_ARRAY, &outs);
  if (st != KILN_OK) return st;
  bk->arena_bytes = (uint64_t)ab;
  bk->naive_bytes = (uint64_t)nb;

  bk->tensors = calloc((size_t)(tensors->n ? tensors->n : 1), sizeof *bk->tensors);
  bk->calls = calloc((size_t)(calls->n ? calls->n : 1), sizeof *bk->calls);
  bk->outputs = calloc((size_t)(m->noutputs ? m->noutputs : 1), sizeof *bk->outputs);
  if (!bk->tensors || !bk->calls || !bk->outputs) return nomem(L);
  bk->ntensors = tensors->n;
  bk->ncalls = calls->n;
  for (int i = 0; i < tensors->n && st == KILN_OK; i++) {
    snprintf(s, sizeof s, "%s.tensors[%d]", w, i);
    st = read_tensor(L, tensors->items[i], s, b, &bk->tensors[i]);
  }
  for (int i = 0; i < calls->n && st == KILN_OK; i++) {
    snprintf(s, sizeof s, "%s.calls[%d]", w, i);
    st = read_call(L, calls->items[i], s, bk, &bk->calls[i]);
  }
  if (st != KILN_OK) return st;
  field(s, sizeof s, w, "outputs");
  if (outs->n != m->noutputs) return bad(L, s, "%d entries for %d model outputs", outs->n, m->noutputs);
  for (int o = 0; o < outs->n; o++) {
    char a[160];
    const rt_json *e = outs->items[o];
    item(a, sizeof a, s, o);
    if (e->kind != RT_JSON_NUMBER || !e->is_int)
      return bad(L, a, "must be a tensor index, not %s", rt_json_kind_name(e->kind));
    if (e->i < 0 || e->i >= bk->ntensors)
      return bad(L, a, "tensor index %lld out of range (%d tensors)", (long long)e->i, bk->ntensors);
    const rt_tensor *t = &bk->tensors[e->i];
    const rt_io *io = &m->outputs[o];
    if (!kiln_dtype_eq(t->dtype, io->dtype) ||
        !shape_eq(t->ndim, t->shape, io->ndim, bk->output_shapes[o]))
      return bad(L, a, "tensor %lld is %s %s, but output %d is %s %s in this bucket",
                 (long long)e->i, kiln_dtype_str(t->dtype, d1, sizeof d1),
                 shape_str(x, 64, t->ndim, t->shape), o, kiln_dtype_str(io->dtype, d2, sizeof d2),
                 shape_str(x + 64, 64, io->ndim, bk->output_shapes[o]));
    bk->outputs[o] = (int)e->i;
  }
  return KILN_OK;
}

static kiln_status read_plan(loader *L, const rt_json *root) {
  const rt_json *kernels, *params, *buckets;
  if (root->kind != RT_JSON_OBJECT)
    return bad(L, "", "must be a JSON object, not %s", rt_json_kind_name(root->kind));
  kiln_status st = need(L, root, "", "kernels", RT_JSON_ARRAY, &kernels);
  if (st == KILN_OK) st = need(L, root, "", "params", RT_JSON_ARRAY, &params);
  if (st == KILN_OK) st = need(L, root, "", "buckets", RT_JSON_ARRAY, &buckets);
  if (st == KILN_OK) st = read_kernels(L, kernels);
  if (st == KILN_OK) st = read_params(L, params);
  if (st != KILN_OK) return st;
  if (buckets->n != L->m->nbuckets)
    return bad(L, "buckets", "%d buckets, but META has %d", buckets->n, L->m->nbuckets);
  for (int b = 0; b < buckets->n && st == KILN_OK; b++) st = read_plan_bucket(L, buckets->items[b], b);
  return st;
}

/* ---- Loading ---------------------------------------------------------------------------- */

static void free_model(kiln_model *m) {
  if (!m) return;
  for (int i = 0; i < m->ninputs; i++) free(m->inputs[i].name);
  free(m->inputs);
  for (int i = 0; i < m->noutputs; i++) {
    free(m->outputs[i].name);
    free(m->outputs[i].follow_input);
    free(m->outputs[i].follow_axis);
  }
  free(m->outputs);
  for (int i = 0; i < m->nkernels; i++) {
    free(m->kernels[i].symbol);
    free(m->kernels[i].name);
  }
  free(m->kernels);
  for (int i = 0; i < m->nparams; i++) free(m->params_list[i].shape);
  free(m->params_list);
  for (int b = 0; b < m->nbuckets; b++) {
    rt_bucket *bk = &m->buckets[b];
    for (int i = 0; bk->input_shapes && i < m->ninputs; i++) free(bk->input_shapes[i]);
    for (int i = 0; bk->output_shapes && i < m->noutputs; i++) free(bk->output_shapes[i]);
    free(bk->input_shapes);
    free(bk->output_shapes);
    free(bk->input_bytes);
    free(bk->output_bytes);
    for (int i = 0; i < bk->ntensors; i++) free(bk->tensors[i].shape);
    free(bk->tensors);
    for (int i = 0; i < bk->ncalls; i++) free(bk->calls[i].args);
    free(bk->calls);
    free(bk->outputs);
  }
  free(m->buckets);
  free(m->paddable);
  free(m->meta_json);
  free(m->plan_json);
  rt_artifact_close(m->art);
  free(m->name);
  free(m);
}

void rt_model_release(kiln_model *m) {
  if (m && atomic_fetch_sub(&m->refs, 1) == 1) free_model(m);
}

/* A NUL-terminated copy of a JSON section. */
static kiln_status copy_text(const loader *L, const void *data, uint64_t size, char **out) {
  if (size >= SIZE_MAX) return nomem(L);
  *out = malloc((size_t)size + 1);
  if (!*out) return nomem(L);
  if (size) memcpy(*out, data, (size_t)size);
  (*out)[size] = 0;
  return KILN_OK;
}

/* Parses a JSON section and checks it with `read`. */
static kiln_status read_section(loader *L, const char *text, uint64_t size,
                                kiln_status (*read)(loader *, const rt_json *)) {
  char err[256];
  rt_json_doc *doc;
  kiln_status st = rt_json_parse(text, (size_t)size, &doc, err, sizeof err);
  if (st == KILN_ERR_NOMEM) return nomem(L);
  if (st != KILN_OK) return rt_errorf(KILN_ERR_CORRUPT, "%s: %s: invalid JSON: %s", L->file, L->section, err);
  st = read(L, rt_json_root(doc));
  rt_json_free(doc);
  return st;
}

/* Looks up every kernel's symbol in the loaded code. */
static kiln_status resolve_kernels(loader *L) {
  kiln_model *m = L->m;
  void *dl;
  kiln_status st = rt_artifact_load_code(m->art, &dl);
  if (st != KILN_OK) return st;
  for (int i = 0; i < m->nkernels; i++) {
    void *p = rt_artifact_symbol(m->art, m->kernels[i].symbol);
    if (!p)
      return rt_errorf(KILN_ERR_CORRUPT, "%s: PLAN kernels[%d].symbol: the CODE section has no "
                       "symbol \"%s\"", L->file, i, m->kernels[i].symbol);
    memcpy(&m->kernels[i].fn, &p, sizeof p);
  }
  return KILN_OK;
}

/* Builds the model from an opened artifact (taken over: closed on failure). */
static kiln_status load(rt_artifact *art, const char *name, kiln_model **out) {
  kiln_model *m = calloc(1, sizeof *m);
  char *n = strdup(name);
  if (!m || !n) {
    free(m);
    free(n);
    rt_artifact_close(art);
    return rt_errorf(KILN_ERR_NOMEM, "%s: out of memory loading the model", name);
  }
  atomic_init(&m->refs, 1);
  m->art = art;
  m->name = n;
  loader L = {.file = m->name, .section = "", .m = m};
  static const struct {
    uint32_t kind;
    const char *name;
  } required[] = {{RT_SECTION_META, "META"}, {RT_SECTION_PLAN, "PLAN"},
                  {RT_SECTION_PARAMS, "PARAMS"}, {RT_SECTION_CODE, "CODE"}};
  kiln_status st = KILN_OK;
  for (size_t i = 0; i < 4 && st == KILN_OK; i++)
    if (!rt_artifact_section(art, required[i].kind, NULL))
      st = rt_errorf(KILN_ERR_CORRUPT, "%s: no %s section", m->name, required[i].name);
  uint64_t meta_size = 0, plan_size = 0;
  const void *meta = rt_artifact_section(art, RT_SECTION_META, &meta_size);
  const void *plan = rt_artifact_section(art, RT_SECTION_PLAN, &plan_size);
  m->params = rt_artifact_section(art, RT_SECTION_PARAMS, &m->params_size);
  if (st == KILN_OK) st = copy_text(&L, meta, meta_size, &m->meta_json);
  if (st == KILN_OK) st = copy_text(&L, plan, plan_size, &m->plan_json);
  L.section = "META";
  if (st == KILN_OK) st = read_section(&L, m->meta_json, meta_size, read_meta);
  L.section = "PLAN";
  if (st == KILN_OK) st = read_section(&L, m->plan_json, plan_size, read_plan);
  if (st == KILN_OK) st = resolve_kernels(&L);
  if (st != KILN_OK) {
    free_model(m);
    return st;
  }
  *out = m;
  return KILN_OK;
}

KILN_API kiln_status kiln_model_load(const char *path, kiln_model **out) {
  if (!out) return rt_errorf(KILN_ERR_MISUSE, "kiln_model_load: out is NULL");
  *out = NULL;
  if (!path) return rt_errorf(KILN_ERR_MISUSE, "kiln_model_load: path is NULL");
  rt_artifact *art;
  kiln_status st = rt_artifact_open(path, &art);
  if (st != KILN_OK) return st;
  return load(art, path, out);
}

KILN_API kiln_status kiln_model_load_memory(const void *data, size_t size, const char *name,
                                            kiln_model **out) {
  if (!out) return rt_errorf(KILN_ERR_MISUSE, "kiln_model_load_memory: out is NULL");
  *out = NULL;
  if (!name) name = "<memory>";
  rt_artifact *art;
  kiln_status st = rt_artifact_open_memory(data, size, name, &art);
  if (st != KILN_OK) return st;
  return load(art, name, out);
}

KILN_API void kiln_model_free(kiln_model *m) { rt_model_release(m); }

/* ---- Queries ---------------------------------------------------------------------------- */

KILN_API int kiln_model_num_inputs(const kiln_model *m) { return m ? m->ninputs : -1; }
KILN_API int kiln_model_num_outputs(const kiln_model *m) { return m ? m->noutputs : -1; }
KILN_API int kiln_model_num_buckets(const kiln_model *m) { return m ? m->nbuckets : -1; }

static const rt_io *input_at(const kiln_model *m, int i) {
  return m && i >= 0 && i < m->ninputs ? &m->inputs[i] : NULL;
}
static const rt_io *output_at(const kiln_model *m, int i) {
  return m && i >= 0 && i < m->noutputs ? &m->outputs[i] : NULL;
}

KILN_API const char *kiln_model_input_name(const kiln_model *m, int i) {
  const rt_io *io = input_at(m, i);
  return io ? io->name : NULL;
}
KILN_API const char *kiln_model_output_name(const kiln_model *m, int i) {
  const rt_io *io = output_at(m, i);
  return io ? io->name : NULL;
}
KILN_API int kiln_model_input_index(const kiln_model *m, const char *name) {
  if (!m || !name) return -1;
  for (int i = 0; i < m->ninputs; i++)
    if (strcmp(m->inputs[i].name, name) == 0) return i;
  return -1;
}
KILN_API kiln_dtype kiln_model_input_dtype(const kiln_model *m, int i) {
  const rt_io *io = input_at(m, i);
  return io ? io->dtype : KILN_VOID;
}
KILN_API kiln_dtype kiln_model_output_dtype(const kiln_model *m, int i) {
  const rt_io *io = output_at(m, i);
  return io ? io->dtype : KILN_VOID;
}
KILN_API int kiln_model_input_ndim(const kiln_model *m, int i) {
  const rt_io *io = input_at(m, i);
  return io ? io->ndim : -1;
}
KILN_API int kiln_model_output_ndim(const kiln_model *m, int i) {
  const rt_io *io = output_at(m, i);
  return io ? io->ndim : -1;
}

/* Checks a bucket index and an input/output index for the shape queries. */
static kiln_status check_bucket(const char *fn, const kiln_model *m, int bucket, int i, int n,
                                const void *shape) {
  if (!m || !shape) return rt_errorf(KILN_ERR_MISUSE, "%s: NULL argument", fn);
  if (bucket < 0 || bucket >= m->nbuckets)
    return rt_errorf(KILN_ERR_MISUSE, "%s: %s: bucket %d out of range (%d buckets)", fn, m->name,
                     bucket, m->nbuckets);
  if (i < 0 || i >= n)
    return rt_errorf(KILN_ERR_MISUSE, "%s: %s: index %d out of range (%d)", fn, m->name, i, n);
  return KILN_OK;
}

KILN_API kiln_status kiln_model_input_shape(const kiln_model *m, int bucket, int i,
                                            int64_t *shape) {
  kiln_status st = check_bucket("kiln_model_input_shape", m, bucket, i, m ? m->ninputs : 0, shape);
  if (st != KILN_OK) return st;
  memcpy(shape, m->buckets[bucket].input_shapes[i], (size_t)m->inputs[i].ndim * sizeof *shape);
  return KILN_OK;
}

KILN_API kiln_status kiln_model_output_shape(const kiln_model *m, int bucket, int i,
                                             int64_t *shape) {
  kiln_status st =
      check_bucket("kiln_model_output_shape", m, bucket, i, m ? m->noutputs : 0, shape);
  if (st != KILN_OK) return st;
  memcpy(shape, m->buckets[bucket].output_shapes[i], (size_t)m->outputs[i].ndim * sizeof *shape);
  return KILN_OK;
}

KILN_API kiln_status kiln_model_bucket_memory(const kiln_model *m, int bucket, uint64_t *planned,
                                              uint64_t *naive) {
  if (!m) return rt_errorf(KILN_ERR_MISUSE, "kiln_model_bucket_memory: model is NULL");
  if (bucket < 0 || bucket >= m->nbuckets)
    return rt_errorf(KILN_ERR_MISUSE, "kiln_model_bucket_memory: %s: bucket %d out of range "
                     "(%d buckets)", m->name, bucket, m->nbuckets);
  if (planned) *planned = m->buckets[bucket].arena_bytes;
  if (naive) *naive = m->buckets[bucket].naive_bytes;
  return KILN_OK;
}

KILN_API int kiln_model_bucket_num_calls(const kiln_model *m, int bucket) {
  if (!m || bucket < 0 || bucket >= m->nbuckets) return -1;
  return m->buckets[bucket].ncalls;
}

KILN_API const char *kiln_model_meta_json(const kiln_model *m) { return m ? m->meta_json : NULL; }
KILN_API const char *kiln_model_plan_json(const kiln_model *m) { return m ? m->plan_json : NULL; }

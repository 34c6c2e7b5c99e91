/* session.c: running a loaded model (model.c). kiln_session_new allocates everything a run
 * needs: the activation arena (the largest bucket's arena_bytes), per bucket and call the
 * kernel argument descriptors (pointing at the arena, the weights in the mapping, or, patched
 * at each run, the bound inputs), staging buffers for padded inputs and for sliced outputs
 * that are not a prefix of the padded result, and the profile. kiln_session_run then only
 * picks a bucket, copies inputs when padding, calls the kernels in order and slices the
 * outputs: it never allocates (no malloc, calloc, realloc or posix_memalign below
 * kiln_session_run; keep it that way). Also the profile reports. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "rt_internal.h"

/* ---- Small helpers ---------------------------------------------------------------------- */

/* 64-byte aligned memory of at least one byte, or NULL. */
static void *alloc64(uint64_t bytes) {
  void *p = NULL;
  if (bytes > SIZE_MAX - 64) return NULL;
  if (posix_memalign(&p, 64, bytes ? (size_t)bytes : 1) != 0) return NULL;
  return p;
}

static uint64_t elems_of(int ndim, const int64_t *shape) {
  uint64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (uint64_t)shape[i];
  return n;
}

static int shape_eq(int ndim, const int64_t *a, const int64_t *b) {
  for (int i = 0; i < ndim; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

/* Copies the region [0, v) of a row-major array of extents sshape at src into the row-major
 * array of extents dshape at dst (both at least v on every axis): one memcpy per innermost
 * row. idx is scratch with ndim entries. */
static void copy_nd(uint8_t *dst, const int64_t *dshape, const uint8_t *src,
                    const int64_t *sshape, const int64_t *v, int ndim, size_t eb, int64_t *idx) {
  for (int k = 0; k < ndim; k++)
    if (v[k] == 0) return;
  if (ndim == 0) {
    memcpy(dst, src, eb);
    return;
  }
  int last = ndim - 1;
  size_t row = (size_t)v[last] * eb;
  for (int k = 0; k < last; k++) idx[k] = 0;
  for (;;) {
    uint64_t doff = 0, soff = 0;
    for (int k = 0; k < last; k++) {
      doff = doff * (uint64_t)dshape[k] + (uint64_t)idx[k];
      soff = soff * (uint64_t)sshape[k] + (uint64_t)idx[k];
    }
    doff *= (uint64_t)dshape[last];
    soff *= (uint64_t)sshape[last];
    memcpy(dst + doff * eb, src + soff * eb, row);
    int k = last - 1;
    while (k >= 0 && ++idx[k] == v[k]) idx[k--] = 0;
    if (k < 0) return;
  }
}

/* Whether the region [0, v) of a row-major array of extents e is its first elems(v) elements,
 * so that a slice can stay in place: true when it is empty, or when every axis before the
 * last axis that is cut (v < e) keeps a single index (v == 1). */
static int is_prefix(int ndim, const int64_t *v, const int64_t *e) {
  int cut = -1;
  for (int k = 0; k < ndim; k++) {
    if (v[k] == 0) return 1;
    if (v[k] < e[k]) cut = k;
  }
  for (int k = 0; k < cut; k++)
    if (v[k] != 1) return 0;
  return 1;
}

/* Whether output o may ever need a copy when sliced: some bucket has an axis of extent > 1
 * before an axis that follows an input (see is_prefix). */
static int output_may_need_copy(const kiln_model *m, int o) {
  const rt_io *io = &m->outputs[o];
  for (int b = 0; b < m->nbuckets; b++)
    for (int k = 0; k < io->ndim; k++) {
      if (io->follow_input[k] < 0) continue;
      for (int i = 0; i < k; i++)
        if (m->buckets[b].output_shapes[o][i] > 1) return 1;
    }
  return 0;
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* ---- Creating and freeing --------------------------------------------------------------- */

KILN_API void kiln_session_free(kiln_session *s) {
  if (!s) return;
  kiln_model *m = s->model;
  for (int b = 0; s->buckets && b < m->nbuckets; b++) {
    rt_session_bucket *sb = &s->buckets[b];
    for (int c = 0; sb->calls && c < m->buckets[b].ncalls; c++) free(sb->calls[c].args);
    free(sb->calls);
    free(sb->slots);
    free(sb->scalars);
    free(sb->shapes);
  }
  free(s->buckets);
  for (int i = 0; i < m->ninputs; i++) {
    if (s->input_shapes) free(s->input_shapes[i]);
    if (s->paddable) free(s->paddable[i]);
    if (s->input_staging) free(s->input_staging[i]);
  }
  free(s->input_shapes);
  free(s->paddable);
  free(s->input_staging);
  free(s->input_staging_bytes);
  free(s->bound);
  free(s->inputs);
  free(s->input_data);
  for (int o = 0; o < m->noutputs; o++) {
    if (s->output_shapes) free(s->output_shapes[o]);
    if (s->output_staging) free(s->output_staging[o]);
  }
  free(s->output_shapes);
  free(s->output_staging);
  free(s->outputs);
  free(s->index);
  free(s->profile);
  free(s->arena);
  free(s);
  rt_model_release(m);
}

/* The argument descriptors of every call of bucket b, the input slots to patch at run time,
 * and the shape and scalar storage they point to. */
static int build_bucket(kiln_session *s, int b) {
  const kiln_model *m = s->model;
  const rt_bucket *bk = &m->buckets[b];
  rt_session_bucket *sb = &s->buckets[b];
  sb->profile_at = -1;
  /* Shapes: one copy of every tensor's shape; offsets per tensor. */
  size_t nshape = 1, nscalar = 1;
  for (int t = 0; t < bk->ntensors; t++) nshape += (size_t)bk->tensors[t].ndim;
  for (int c = 0; c < bk->ncalls; c++)
    for (int a = 0; a < bk->calls[c].nargs; a++) {
      if (bk->calls[c].args[a].tensor < 0) nscalar++;
      else if (bk->tensors[bk->calls[c].args[a].tensor].kind == RT_TENSOR_INPUT) sb->nslots++;
    }
  sb->shapes = malloc(nshape * sizeof *sb->shapes);
  sb->scalars = malloc(nscalar * sizeof *sb->scalars);
  sb->slots = malloc((size_t)(sb->nslots ? sb->nslots : 1) * sizeof *sb->slots);
  sb->calls = calloc((size_t)(bk->ncalls ? bk->ncalls : 1), sizeof *sb->calls);
  size_t *shape_at = malloc((size_t)(bk->ntensors ? bk->ntensors : 1) * sizeof *shape_at);
  if (!sb->shapes || !sb->scalars || !sb->slots || !sb->calls || !shape_at) {
    free(shape_at);
    return 0;
  }
  size_t at = 0;
  for (int t = 0; t < bk->ntensors; t++) {
    shape_at[t] = at;
    memcpy(sb->shapes + at, bk->tensors[t].shape, (size_t)bk->tensors[t].ndim * sizeof(int64_t));
    at += (size_t)bk->tensors[t].ndim;
  }
  int nslot = 0, nsc = 0;
  for (int c = 0; c < bk->ncalls; c++) {
    const rt_call *call = &bk->calls[c];
    kiln_tensor *args = calloc((size_t)(call->nargs ? call->nargs : 1), sizeof *args);
    if (!args) {
      free(shape_at);
      return 0;
    }
    sb->calls[c].args = args;
    sb->calls[c].nargs = call->nargs;
    for (int a = 0; a < call->nargs; a++) {
      kiln_tensor *d = &args[a];
      d->device_type = 1;
      if (call->args[a].tensor < 0) { /* a scalar: a 0-d int64 tensor */
        sb->scalars[nsc] = call->args[a].value;
        d->data = &sb->scalars[nsc];
        d->shape = &sb->scalars[nsc];
        d->dtype = KILN_INT64;
        nsc++;
        continue;
      }
      const rt_tensor *t = &bk->tensors[call->args[a].tensor];
      d->ndim = t->ndim;
      d->dtype = t->dtype;
      d->shape = sb->shapes + shape_at[call->args[a].tensor];
      if (t->kind == RT_TENSOR_ARENA) d->data = s->arena + t->offset;
      else if (t->kind == RT_TENSOR_PARAM)
        d->data = (void *)(m->params + m->params_list[t->index].offset);
      else sb->slots[nslot++] = (rt_input_slot){c, a, t->index};
    }
  }
  free(shape_at);
  return 1;
}

KILN_API kiln_status kiln_session_new(kiln_model *m, kiln_session **out) {
  if (!out) return rt_errorf(KILN_ERR_MISUSE, "kiln_session_new: out is NULL");
  *out = NULL;
  if (!m) return rt_errorf(KILN_ERR_MISUSE, "kiln_session_new: model is NULL");
  kiln_session *s = calloc(1, sizeof *s);
  if (!s) return rt_errorf(KILN_ERR_NOMEM, "%s: out of memory creating a session", m->name);
  atomic_fetch_add(&m->refs, 1);
  s->model = m;
  s->last_bucket = -1;
  int ok = 1;
  int maxrank = 1, ncalls = 0;
  for (int b = 0; b < m->nbuckets; b++) {
    if (m->buckets[b].arena_bytes > s->arena_bytes) s->arena_bytes = m->buckets[b].arena_bytes;
    ncalls += m->buckets[b].ncalls;
  }
  s->arena = alloc64(s->arena_bytes);
  s->buckets = calloc((size_t)m->nbuckets, sizeof *s->buckets);
  s->profile = calloc((size_t)(ncalls ? ncalls : 1), sizeof *s->profile);
  ok = s->arena && s->buckets && s->profile;
  for (int b = 0; ok && b < m->nbuckets; b++) ok = build_bucket(s, b);

  /* Inputs: bindings, paddable flags, staging buffers of the largest padded size. */
  size_t ni = (size_t)(m->ninputs ? m->ninputs : 1);
  if (ok) {
    s->bound = calloc(ni, sizeof *s->bound);
    s->inputs = calloc(ni, sizeof *s->inputs);
    s->input_shapes = calloc(ni, sizeof *s->input_shapes);
    s->paddable = calloc(ni, sizeof *s->paddable);
    s->input_staging = calloc(ni, sizeof *s->input_staging);
    s->input_staging_bytes = calloc(ni, sizeof *s->input_staging_bytes);
    s->input_data = calloc(ni, sizeof *s->input_data);
    ok = s->bound && s->inputs && s->input_shapes && s->paddable && s->input_staging &&
         s->input_staging_bytes && s->input_data;
  }
  for (int i = 0; ok && i < m->ninputs; i++) {
    int nd = m->inputs[i].ndim;
    if (nd > maxrank) maxrank = nd;
    uint64_t bytes = 0;
    for (int b = 0; b < m->nbuckets; b++)
      if (m->buckets[b].input_bytes[i] > bytes) bytes = m->buckets[b].input_bytes[i];
    s->input_staging_bytes[i] = bytes;
    s->input_shapes[i] = calloc((size_t)(nd ? nd : 1), sizeof(int64_t));
    s->paddable[i] = calloc((size_t)(nd ? nd : 1), 1);
    s->input_staging[i] = alloc64(bytes);
    ok = s->input_shapes[i] && s->paddable[i] && s->input_staging[i];
  }
  for (int p = 0; ok && p < m->npaddable; p++) s->paddable[m->paddable[p][0]][m->paddable[p][1]] = 1;

  /* Outputs: descriptors, actual shapes, and staging where a slice may need a copy. */
  size_t no = (size_t)(m->noutputs ? m->noutputs : 1);
  if (ok) {
    s->outputs = calloc(no, sizeof *s->outputs);
    s->output_shapes = calloc(no, sizeof *s->output_shapes);
    s->output_staging = calloc(no, sizeof *s->output_staging);
    ok = s->outputs && s->output_shapes && s->output_staging;
  }
  for (int o = 0; ok && o < m->noutputs; o++) {
    int nd = m->outputs[o].ndim;
    if (nd > maxrank) maxrank = nd;
    s->output_shapes[o] = calloc((size_t)(nd ? nd : 1), sizeof(int64_t));
    ok = s->output_shapes[o] != NULL;
    if (ok && output_may_need_copy(m, o)) {
      uint64_t bytes = 0;
      for (int b = 0; b < m->nbuckets; b++)
        if (m->buckets[b].output_bytes[o] > bytes) bytes = m->buckets[b].output_bytes[o];
      s->output_staging[o] = alloc64(bytes);
      ok = s->output_staging[o] != NULL;
    }
  }
  if (ok) ok = (s->index = calloc((size_t)maxrank, sizeof *s->index)) != NULL;
  if (!ok) {
    kiln_session_free(s);
    return rt_errorf(KILN_ERR_NOMEM, "%s: out of memory creating a session", m->name);
  }
  *out = s;
  return KILN_OK;
}

KILN_API kiln_model *kiln_session_model(kiln_session *s) { return s ? s->model : NULL; }

/* ---- Inputs ----------------------------------------------------------------------------- */

KILN_API kiln_status kiln_session_set_paddable(kiln_session *s, int input, int axis, int on) {
  if (!s) return rt_errorf(KILN_ERR_MISUSE, "kiln_session_set_paddable: session is NULL");
  const kiln_model *m = s->model;
  if (input < 0 || input >= m->ninputs)
    return rt_errorf(KILN_ERR_MISUSE, "kiln_session_set_paddable: %s: input %d out of range "
                     "(%d inputs)", m->name, input, m->ninputs);
  if (axis < 0 || axis >= m->inputs[input].ndim)
    return rt_errorf(KILN_ERR_MISUSE, "kiln_session_set_paddable: %s: axis %d out of range for "
                     "input '%s' of rank %d", m->name, axis, m->inputs[input].name,
                     m->inputs[input].ndim);
  s->paddable[input][axis] = on != 0;
  return KILN_OK;
}

KILN_API kiln_status kiln_session_set_input(kiln_session *s, int i, const kiln_tensor *t) {
  if (!s || !t) return rt_errorf(KILN_ERR_MISUSE, "kiln_session_set_input: NULL argument");
  const kiln_model *m = s->model;
  if (i < 0 || i >= m->ninputs)
    return rt_errorf(KILN_ERR_MISUSE, "kiln_session_set_input: %s: input %d out of range (%d "
                     "inputs)", m->name, i, m->ninputs);
  const rt_io *in = &m->inputs[i];
  char d1[32], d2[32];
  if (!kiln_dtype_eq(t->dtype, in->dtype))
    return rt_errorf(KILN_ERR_TYPE, "kiln_session_set_input: input %d ('%s') is %s, got %s", i,
                     in->name, kiln_dtype_str(in->dtype, d1, sizeof d1),
                     kiln_dtype_str(t->dtype, d2, sizeof d2));
  if (t->device_type != 0 && t->device_type != 1)
    return rt_errorf(KILN_ERR_UNSUPPORTED, "kiln_session_set_input: input '%s': device type %d; "
                     "only CPU tensors (1) are supported", in->name, (int)t->device_type);
  if (t->ndim != in->ndim)
    return rt_errorf(KILN_ERR_SHAPE, "kiln_session_set_input: input '%s' has rank %d, got rank %d",
                     in->name, in->ndim, (int)t->ndim);
  if (t->ndim > 0 && !t->shape)
    return rt_errorf(KILN_ERR_MISUSE, "kiln_session_set_input: input '%s': shape is NULL", in->name);
  for (int k = 0; k < t->ndim; k++)
    if (t->shape[k] < 0)
      return rt_errorf(KILN_ERR_SHAPE, "kiln_session_set_input: input '%s': extent %lld on axis "
                       "%d", in->name, (long long)t->shape[k], k);
  if (t->strides) { /* accepted when they describe the compact row-major layout anyway */
    int64_t want = 1;
    for (int k = t->ndim - 1; k >= 0; k--) {
      if (t->shape[k] != 1 && t->strides[k] != want)
        return rt_errorf(KILN_ERR_UNSUPPORTED, "kiln_session_set_input: input '%s': strided "
                         "tensors are not supported (axis %d has stride %lld, compact is %lld); "
                         "pass a compact row-major copy", in->name, k, (long long)t->strides[k],
                         (long long)want);
      want *= t->shape[k];
    }
  }
  if (!t->data && elems_of(t->ndim, t->shape) > 0)
    return rt_errorf(KILN_ERR_MISUSE, "kiln_session_set_input: input '%s': data is NULL", in->name);
  s->inputs[i] = *t;
  memcpy(s->input_shapes[i], t->shape, (size_t)t->ndim * sizeof(int64_t));
  s->inputs[i].shape = s->input_shapes[i];
  s->inputs[i].strides = NULL;
  s->bound[i] = 1;
  return KILN_OK;
}

/* ---- Choosing a bucket ------------------------------------------------------------------ */

/* Appends printf-style text to a fixed buffer (truncating; no allocation). */
typedef struct fixbuf {
  char *p;
  size_t cap, n;
} fixbuf;

static void fb_printf(fixbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fb_printf(fixbuf *b, const char *fmt, ...) {
  if (b->n + 1 >= b->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
  va_end(ap);
  if (k > 0) b->n = b->n + (size_t)k < b->cap ? b->n + (size_t)k : b->cap - 1;
}

static void fb_shape(fixbuf *b, int ndim, const int64_t *shape) {
  fb_printf(b, "(");
  for (int k = 0; k < ndim; k++) fb_printf(b, "%s%lld", k ? "," : "", (long long)shape[k]);
  fb_printf(b, ")");
}

/* The input shapes of a run or a bucket: "(1,3,224,224)", or "[(1,3), (2)]" for several. */
static void fb_shapes(fixbuf *b, const kiln_model *m, int64_t *const *shapes) {
  if (m->ninputs != 1) fb_printf(b, "[");
  for (int i = 0; i < m->ninputs; i++) {
    if (i) fb_printf(b, ", ");
    fb_shape(b, m->inputs[i].ndim, shapes[i]);
  }
  if (m->ninputs != 1) fb_printf(b, "]");
}

/* How bucket b relates to the given shapes: 2 exact, 1 fits with the paddable axes, 0 no.
 * With all_paddable, every axis counts as paddable. */
static int bucket_fits(const kiln_session *s, int b, int all_paddable) {
  const kiln_model *m = s->model;
  int exact = 1;
  for (int i = 0; i < m->ninputs; i++)
    for (int k = 0; k < m->inputs[i].ndim; k++) {
      int64_t g = s->input_shapes[i][k], e = m->buckets[b].input_shapes[i][k];
      if (g == e) continue;
      exact = 0;
      if (g > e || !(all_paddable || s->paddable[i][k])) return 0;
    }
  return exact ? 2 : 1;
}

/* The bucket for the bound shapes: an exact match, else the one with the fewest input
 * elements among those that fit by padding; -1 with the KILN_ERR_SHAPE message when none. */
static int pick_bucket(kiln_session *s) {
  const kiln_model *m = s->model;
  int best = -1;
  for (int b = 0; b < m->nbuckets; b++) {
    int f = bucket_fits(s, b, 0);
    if (f == 2) return b;
    if (f == 1 && (best < 0 || m->buckets[b].input_elems < m->buckets[best].input_elems)) best = b;
  }
  if (best >= 0) return best;

  char msg[1024];
  fixbuf fb = {msg, sizeof msg, 0};
  msg[0] = 0;
  fb_printf(&fb, "%s: no bucket fits input shapes ", m->name);
  fb_shapes(&fb, m, s->input_shapes);
  fb_printf(&fb, "; buckets: ");
  for (int b = 0; b < m->nbuckets; b++) {
    if (b) fb_printf(&fb, ", ");
    fb_shapes(&fb, m, m->buckets[b].input_shapes);
  }
  /* A hint: the axes that would have to be paddable for the smallest bucket that is at least
   * as large everywhere. */
  int hint = -1;
  for (int b = 0; b < m->nbuckets; b++)
    if (bucket_fits(s, b, 1) &&
        (hint < 0 || m->buckets[b].input_elems < m->buckets[hint].input_elems))
      hint = b;
  if (hint >= 0) {
    int first = 1;
    for (int i = 0; i < m->ninputs; i++)
      for (int k = 0; k < m->inputs[i].ndim; k++)
        if (s->input_shapes[i][k] < m->buckets[hint].input_shapes[i][k] && !s->paddable[i][k]) {
          fb_printf(&fb, "%saxis %d of '%s'", first ? " (" : " and ", k, m->inputs[i].name);
          first = 0;
        }
    if (!first) fb_printf(&fb, " can be padded: kiln_session_set_paddable)");
  }
  rt_set_last_error(KILN_ERR_SHAPE, msg);
  return -1;
}

/* ---- Running ---------------------------------------------------------------------------- */

/* Adds bucket b's calls to the profile (first run of b since profiling was turned on),
 * keeping entries in bucket order. The storage was sized for every call of every bucket. */
static void profile_add_bucket(kiln_session *s, int b) {
  const kiln_model *m = s->model;
  int n = m->buckets[b].ncalls, pos = s->nprofile;
  for (int j = b + 1; j < m->nbuckets; j++)
    if (s->buckets[j].profile_at >= 0 && s->buckets[j].profile_at < pos)
      pos = s->buckets[j].profile_at;
  memmove(s->profile + pos + n, s->profile + pos,
          (size_t)(s->nprofile - pos) * sizeof *s->profile);
  for (int j = b + 1; j < m->nbuckets; j++)
    if (s->buckets[j].profile_at >= 0) s->buckets[j].profile_at += n;
  for (int c = 0; c < n; c++)
    s->profile[pos + c] = (kiln_profile_entry){
        .bucket = b, .call = c, .kernel = m->kernels[m->buckets[b].calls[c].kernel].name};
  s->buckets[b].profile_at = pos;
  s->nprofile += n;
}

static void profile_record(kiln_profile_entry *e, double us) {
  if (e->count == 0 || us < e->min_us) e->min_us = us;
  if (e->count == 0 || us > e->max_us) e->max_us = us;
  e->count++;
  e->total_us += us;
}

/* The data pointer of a bucket tensor in this run. */
static uint8_t *tensor_data(const kiln_session *s, const rt_tensor *t) {
  const kiln_model *m = s->model;
  if (t->kind == RT_TENSOR_ARENA) return s->arena + t->offset;
  if (t->kind == RT_TENSOR_PARAM) return (uint8_t *)(m->params + m->params_list[t->index].offset);
  return s->input_data[t->index];
}

/* Makes output o of bucket b: the actual extents follow the given input extents; the slice
 * stays in place when it is a prefix, else it is copied into the output's staging buffer. */
static kiln_status make_output(kiln_session *s, int b, int o) {
  const kiln_model *m = s->model;
  const rt_io *io = &m->outputs[o];
  const rt_tensor *t = &m->buckets[b].tensors[m->buckets[b].outputs[o]];
  int64_t *v = s->output_shapes[o];
  for (int k = 0; k < io->ndim; k++)
    v[k] = io->follow_input[k] >= 0 ? s->input_shapes[io->follow_input[k]][io->follow_axis[k]]
                                    : t->shape[k];
  uint8_t *data = tensor_data(s, t);
  if (!is_prefix(io->ndim, v, t->shape)) {
    if (!s->output_staging[o])
      return rt_errorf(KILN_ERR_INTERNAL, "%s: output %d needs a staging buffer", m->name, o);
    copy_nd(s->output_staging[o], v, data, t->shape, v, io->ndim, kiln_dtype_bytes(io->dtype),
            s->index);
    data = s->output_staging[o];
  }
  s->outputs[o] = (kiln_tensor){.data = data, .device_type = 1, .ndim = io->ndim,
                                .dtype = io->dtype, .shape = v};
  return KILN_OK;
}

/* Runs the plan of the bucket the bound shapes select (see the top of the file: nothing in
 * here or below allocates memory). */
KILN_API kiln_status kiln_session_run(kiln_session *s) {
  if (!s) return rt_errorf(KILN_ERR_MISUSE, "kiln_session_run: session is NULL");
  const kiln_model *m = s->model;
  s->have_outputs = 0;
  for (int i = 0; i < m->ninputs; i++)
    if (!s->bound[i])
      return rt_errorf(KILN_ERR_MISUSE, "kiln_session_run: %s: input %d ('%s') is not bound "
                       "(kiln_session_set_input)", m->name, i, m->inputs[i].name);
  int b = pick_bucket(s);
  if (b < 0) return KILN_ERR_SHAPE;
  const rt_bucket *bk = &m->buckets[b];
  rt_session_bucket *sb = &s->buckets[b];

  /* Inputs: in place when the shape is the bucket's, else zero-padded into staging. */
  for (int i = 0; i < m->ninputs; i++) {
    const kiln_tensor *t = &s->inputs[i];
    uint8_t *data = (uint8_t *)t->data + t->byte_offset;
    int nd = m->inputs[i].ndim;
    if (!shape_eq(nd, s->input_shapes[i], bk->input_shapes[i])) {
      memset(s->input_staging[i], 0, (size_t)bk->input_bytes[i]);
      copy_nd(s->input_staging[i], bk->input_shapes[i], data, s->input_shapes[i],
              s->input_shapes[i], nd, kiln_dtype_bytes(m->inputs[i].dtype), s->index);
      data = s->input_staging[i];
    }
    s->input_data[i] = data;
  }
  for (int k = 0; k < sb->nslots; k++) {
    const rt_input_slot *sl = &sb->slots[k];
    sb->calls[sl->call].args[sl->arg].data = s->input_data[sl->input];
  }

  if (s->profiling && sb->profile_at < 0) profile_add_bucket(s, b);
  for (int c = 0; c < bk->ncalls; c++) {
    const rt_kernel *k = &m->kernels[bk->calls[c].kernel];
    rt_set_last_error(KILN_OK, ""); /* a kernel failing without a message leaves "" */
    double t0 = s->profiling ? now_us() : 0;
    int32_t st = k->fn(sb->calls[c].args, sb->calls[c].nargs);
    if (s->profiling) profile_record(&s->profile[sb->profile_at + c], now_us() - t0);
    if (st != 0) {
      char msg[1024];
      snprintf(msg, sizeof msg, "%s", kiln_last_error());
      kiln_status code = st > 0 && st < KILN_STATUS_COUNT ? (kiln_status)st : KILN_ERR_RUNTIME;
      return rt_errorf(code, "%s: kernel %s (call %d of bucket %d) failed: %s", m->name, k->name,
                       c, b, msg[0] ? msg : kiln_status_str(code));
    }
  }
  for (int o = 0; o < m->noutputs; o++) {
    kiln_status st = make_output(s, b, o);
    if (st != KILN_OK) return st;
  }
  s->have_outputs = 1;
  s->last_bucket = b;
  if (s->profiling) s->profile_runs++;
  return KILN_OK;
}

KILN_API kiln_status kiln_session_get_output(kiln_session *s, int i, kiln_tensor *t) {
  if (!s || !t) return rt_errorf(KILN_ERR_MISUSE, "kiln_session_get_output: NULL argument");
  if (i < 0 || i >= s->model->noutputs)
    return rt_errorf(KILN_ERR_MISUSE, "kiln_session_get_output: %s: output %d out of range (%d "
                     "outputs)", s->model->name, i, s->model->noutputs);
  if (!s->have_outputs)
    return rt_errorf(KILN_ERR_MISUSE, "kiln_session_get_output: %s: no outputs: the last run "
                     "did not succeed (or there was none)", s->model->name);
  *t = s->outputs[i];
  return KILN_OK;
}

KILN_API int kiln_session_last_bucket(const kiln_session *s) { return s ? s->last_bucket : -1; }

/* ---- Profiling -------------------------------------------------------------------------- */

KILN_API kiln_status kiln_session_set_profiling(kiln_session *s, int on) {
  if (!s) return rt_errorf(KILN_ERR_MISUSE, "kiln_session_set_profiling: session is NULL");
  if (on) {
    s->nprofile = 0;
    s->profile_runs = 0;
    for (int b = 0; b < s->model->nbuckets; b++) s->buckets[b].profile_at = -1;
  }
  s->profiling = on != 0;
  return KILN_OK;
}

KILN_API kiln_status kiln_session_profile(const kiln_session *s, int *n,
                                          const kiln_profile_entry **entries) {
  if (!s || !n || !entries) return rt_errorf(KILN_ERR_MISUSE, "kiln_session_profile: NULL argument");
  *n = s->nprofile;
  *entries = s->profile;
  return KILN_OK;
}

/* A growing malloc'ed string for the reports. */
typedef struct strbuf {
  char *p;
  size_t n, cap;
  int failed;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...) {
  if (b->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
      b->failed = 1;
      return;
    }
    if (b->p && b->n + (size_t)k < b->cap) {
      b->n += (size_t)k;
      return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap <= b->n + (size_t)k) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
}

/* A JSON string literal of s. */
static void sb_json_str(strbuf *b, const char *s) {
  sb_printf(b, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') sb_printf(b, "\\%c", c);
    else if (c < 0x20) sb_printf(b, "\\u%04x", c);
    else sb_printf(b, "%c", c);
  }
  sb_printf(b, "\"");
}

/* Sorts entry indices by total time, larger first and plan order among equals: an insertion
 * sort (a model has hundreds of calls at most). */
static void sort_by_total(const kiln_profile_entry *e, int *order, int n) {
  for (int i = 0; i < n; i++) order[i] = i;
  for (int i = 1; i < n; i++) {
    int x = order[i], j = i;
    while (j > 0 && (e[order[j - 1]].total_us < e[x].total_us ||
                     (e[order[j - 1]].total_us == e[x].total_us && order[j - 1] > x))) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = x;
  }
}

KILN_API kiln_status kiln_session_profile_report(const kiln_session *s, int json, char **out) {
  if (!s || !out) return rt_errorf(KILN_ERR_MISUSE, "kiln_session_profile_report: NULL argument");
  *out = NULL;
  const kiln_profile_entry *e = s->profile;
  int n = s->nprofile;
  double total = 0;
  for (int i = 0; i < n; i++) total += e[i].total_us;
  strbuf b = {0};
  if (json) {
    sb_printf(&b, "{\"runs\": %lld, \"total_us\": %.3f, \"calls\": [", (long long)s->profile_runs,
              total);
    for (int i = 0; i < n; i++) {
      sb_printf(&b, "%s\n  {\"bucket\": %d, \"call\": %d, \"kernel\": ", i ? "," : "",
                (int)e[i].bucket, (int)e[i].call);
      sb_json_str(&b, e[i].kernel);
      sb_printf(&b, ", \"count\": %lld, \"total_us\": %.3f, \"mean_us\": %.3f, \"min_us\": %.3f, "
                "\"max_us\": %.3f}", (long long)e[i].count, e[i].total_us,
                e[i].count ? e[i].total_us / (double)e[i].count : 0.0, e[i].min_us, e[i].max_us);
    }
    sb_printf(&b, "%s]}\n", n ? "\n" : "");
  } else {
    int *order = malloc((n > 0 ? (size_t)n : 1) * sizeof *order);
    if (!order) return rt_errorf(KILN_ERR_NOMEM, "kiln_session_profile_report: out of memory");
    sort_by_total(e, order, n);
    sb_printf(&b, "%s: %lld profiled runs, %d calls\n", s->model->name,
              (long long)s->profile_runs, n);
    sb_printf(&b, "%12s %7s %7s %11s %11s %11s %6s %5s  %s\n", "total_us", "share", "count",
              "mean_us", "min_us", "max_us", "bucket", "call", "kernel");
    for (int k = 0; k < n; k++) {
      const kiln_profile_entry *x = &e[order[k]];
      sb_printf(&b, "%12.3f %6.1f%% %7lld %11.3f %11.3f %11.3f %6d %5d  %s\n", x->total_us,
                total > 0 ? 100.0 * x->total_us / total : 0.0, (long long)x->count,
                x->count ? x->total_us / (double)x->count : 0.0, x->min_us, x->max_us,
                (int)x->bucket, (int)x->call, x->kernel);
    }
    /* The totals line; its mean is the time of one run. */
    sb_printf(&b, "%12.3f %6.1f%% %7lld %11.3f %11s %11s %6s %5s  %s\n", total, n ? 100.0 : 0.0,
              (long long)s->profile_runs,
              s->profile_runs ? total / (double)s->profile_runs : 0.0, "", "", "", "",
              "total (per run in mean_us)");
    free(order);
  }
  if (b.failed || !b.p) {
    free(b.p);
    return rt_errorf(KILN_ERR_NOMEM, "kiln_session_profile_report: out of memory");
  }
  *out = b.p;
  return KILN_OK;
}

KILN_API void kiln_rt_free(void *p) { free(p); }

/* build.c: the build driver (relay/build.h, kiln_compile in include/kiln/kiln.h). A Relay
 * module and its buckets become a compiled model held in memory, whose sections are the ones
 * runtime/FORMAT.md describes:
 *   optimization passes once -> per bucket: BindShapes, InferType, FoldConstant, FuseOps ->
 *   a walk of the fused @main (kernel calls, weights, inputs, outputs), kernels shared across
 *   calls and buckets by structural hash -> a schedule per distinct kernel (tuning database or
 *   default rules) -> the TIR pipeline -> one shared object -> a memory plan per bucket ->
 *   META, PLAN (JSON), PARAMS (weights, once) and CODE.
 * The caller's module is never changed: the passes run on a working copy of its function
 * table whose new nodes go to an arena of the build, freed at the end. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "autotune/database.h"
#include "ir/arith.h"
#include "ir/transform.h"
#include "ir/verify.h"
#include "relay/build.h"
#include "relay/lower.h"
#include "relay/pass.h"
#include "runtime/artifact.h"
#include "runtime/rt_internal.h"
#include "schedule/schedule.h"
#include "target/aot.h"

enum { MAXD = RELAY_MAX_DIMS, ALIGN = 64 };

static uint64_t round_up(uint64_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Makes room for one more element in an array that lives in arena a (the old array stays
 * behind in the arena; plan arrays are small). False on allocation failure. */
static bool grow(ir_arena *a, void **arr, int n, int *cap, size_t elem) {
  if (n < *cap) return true;
  int nc = *cap ? *cap * 2 : 8;
  void *p = ir_arena_alloc(a, elem * (size_t)nc);
  if (!p) return false;
  if (n) memcpy(p, *arr, elem * (size_t)n);
  *arr = p;
  *cap = nc;
  return true;
}

/* ---- The builder's state -------------------------------------------------------------- */

/* A model input: a parameter of the optimized @main. */
typedef struct binput {
  const char *name;
  kiln_dtype dtype;
  int ndim;
  ir_expr *const *dims; /* its shape in the optimized (unbound) module */
} binput;

/* One distinct kernel: the unscheduled PrimFunc of the first call that needed it. */
typedef struct bkernel {
  const char *name;    /* "fused_nn_dense_add", unique among the kernels */
  ir_func *prim;       /* unscheduled (in the kernel arena) */
  ir_func *bare;       /* prim without name and attributes: what equality compares */
  uint64_t hash;       /* relay_workload_key */
  const char *summary;
  int ncalls;
  double weight;
  int source;          /* relay_schedule_source */
} bkernel;

/* A primitive function met during the walk, lowered once (several calls and buckets may
 * share the node): its kernel and its own PrimFunc (for the names of its scalar params). */
typedef struct lowered_fn {
  int kernel;
  ir_func *pf;
} lowered_fn;

/* A weight, stored once: constants with equal dtype, shape and bytes share it. */
typedef struct bparam {
  const relay_const *c;
  kiln_dtype dtype;
  int ndim;
  int64_t shape[MAXD];
  uint64_t nbytes, offset, hash;
} bparam;

enum { T_INPUT, T_PARAM, T_ARENA };

/* A tensor of a bucket's plan. Arena tensors live from the call writing them (first) to the
 * last call reading them (last; past the end for model outputs). */
typedef struct btensor {
  int kind;  /* T_xxx */
  int index; /* the input or param */
  kiln_dtype dtype;
  int ndim;
  int64_t shape[MAXD];
  uint64_t nbytes, offset;
  int first, last;
} btensor;

/* A kernel argument: a tensor, or (tensor < 0) the value of a symbolic dimension. */
typedef struct barg {
  int tensor;
  int64_t i64;
} barg;

typedef struct bcall {
  int kernel;
  int nargs;
  barg *args;
} bcall;

/* One bucket: the values of the symbolic dimensions, the input shapes and the plan. */
typedef struct bbucket {
  double weight;
  int nsyms;
  ir_var **syms;       /* symbolic dimensions bound ... */
  int64_t *values;     /* ... to these values ... */
  const char **names;  /* ... by these names */
  int *sym_input, *sym_axis; /* where each value came from (for messages) */
  int64_t (*shapes)[MAXD];   /* per input: its shape in this bucket */
  int ntensors, cap_tensors;
  btensor *tensors;
  int ncalls, cap_calls;
  bcall *calls;
  int noutputs;
  int *outputs;
  int *input_tensor; /* per input: its tensor or -1 */
  uint64_t arena_bytes, naive_bytes;
} bbucket;

typedef struct builder {
  kiln_context *ctx;
  relay_module w;    /* working copy of the caller's module (own table, own arena) */
  ir_arena *plan;    /* buckets, tensors, calls, kernels, params */
  ir_arena *karena;  /* unscheduled PrimFuncs and their names and summaries */
  ir_analyzer *an;
  /* the optimized module */
  int opt_nfuncs;
  const char **opt_names;
  relay_func **opt_funcs;
  relay_func *opt_main;
  const relay_func *user_main; /* the caller's main (its attributes name the outputs) */
  int ninputs;
  binput *inputs;
  int noutputs, cap_outputs;
  const relay_tensor_type **outputs; /* result types in the optimized module */
  int nbuckets;
  bbucket *buckets;
  int nkernels, cap_kernels;
  bkernel *kernels;
  ir_ptrmap lowered; /* primitive relay_func -> lowered_fn */
  int nparams, cap_params;
  bparam *params;
  ir_ptrmap param_of; /* relay_const -> param index + 1 */
  uint64_t params_bytes;
  int ncalls;
  double t_passes, t_lower;
} builder;

static kiln_status builder_init(builder *b, relay_module *m) {
  memset(b, 0, sizeof *b);
  b->ctx = m->ctx;
  ir_ptrmap_init(&b->lowered, m->ctx);
  ir_ptrmap_init(&b->param_of, m->ctx);
  b->w = *m;
  b->user_main = relay_module_get(m, "main");
  b->w.arena = ir_arena_new(m->ctx);
  b->plan = ir_arena_new(m->ctx);
  b->karena = ir_arena_new(m->ctx);
  if (!b->w.arena || !b->plan || !b->karena) return KILN_ERR_NOMEM;
  if (!(b->an = ir_analyzer_new(b->plan))) return KILN_ERR_NOMEM;
  /* the working copy gets its own tables: passes may replace entries in place */
  size_t n = (size_t)(m->nfuncs ? m->nfuncs : 1);
  b->w.names = ir_arena_alloc(b->w.arena, sizeof(char *) * n);
  b->w.funcs = ir_arena_alloc(b->w.arena, sizeof(relay_func *) * n);
  if (!b->w.names || !b->w.funcs) return KILN_ERR_NOMEM;
  if (m->nfuncs) {
    memcpy(b->w.names, m->names, sizeof(char *) * (size_t)m->nfuncs);
    memcpy(b->w.funcs, m->funcs, sizeof(relay_func *) * (size_t)m->nfuncs);
  }
  return KILN_OK;
}

static void builder_free(builder *b) {
  ir_ptrmap_free(&b->lowered);
  ir_ptrmap_free(&b->param_of);
  if (b->an) ir_analyzer_free(b->an);
  ir_arena_free(b->w.arena);
  ir_arena_free(b->plan);
  ir_arena_free(b->karena);
}

/* Re-raises the context's error with a prefix naming where it happened ("bucket 2: ...").
 * Out-of-memory errors pass unchanged. */
static kiln_status wrap_error(builder *b, kiln_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static kiln_status wrap_error(builder *b, kiln_status st, const char *fmt, ...) {
  if (st == KILN_ERR_NOMEM) return st;
  char prefix[512], msg[sizeof b->ctx->errmsg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  snprintf(msg, sizeof msg, "%s", b->ctx->code ? b->ctx->errmsg : "failed");
  return ir_fail(b->ctx, IR_NO_SPAN, st, "%s: %s", prefix, msg);
}

/* A shape as text: "(1, 3, 224, 224)". */
static void shape_text(ir_strbuf *sb, int ndim, const int64_t *shape) {
  ir_sb_puts(sb, "(");
  for (int i = 0; i < ndim; i++) ir_sb_printf(sb, "%s%lld", i ? ", " : "", (long long)shape[i]);
  ir_sb_puts(sb, ndim == 1 ? ",)" : ")");
}

/* The input names as a list for messages: "'x', 'y'". */
static void input_list(builder *b, ir_strbuf *sb) {
  for (int i = 0; i < b->ninputs; i++) ir_sb_printf(sb, "%s'%s'", i ? ", " : "", b->inputs[i].name);
  if (!b->ninputs) ir_sb_puts(sb, "none");
}

/* ---- Step 1: optimization and binding ------------------------------------------------- */

/* Appends the tensor types of t (a tensor type or a tuple of them, flattened in order) to
 * b->outputs. */
static kiln_status collect_outputs(builder *b, const relay_type *t) {
  const relay_tuple_type *tt = relay_as_tuple_type(t);
  if (tt) {
    for (int i = 0; i < tt->nfields; i++) {
      kiln_status st = collect_outputs(b, tt->fields[i]);
      if (st) return st;
    }
    return KILN_OK;
  }
  const relay_tensor_type *x = relay_as_tensor_type(t);
  if (!x)
    return ir_fail(b->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "@main returns a %s; a model returns tensors (or a tuple of them)",
                   t ? ir_kind_name(t->kind) : "value of unknown type");
  if (!grow(b->plan, (void **)&b->outputs, b->noutputs, &b->cap_outputs, sizeof *b->outputs))
    return KILN_ERR_NOMEM;
  b->outputs[b->noutputs++] = x;
  return KILN_OK;
}

/* The optimization passes (the default pipeline without FuseOps) on the symbolic module,
 * then the inputs and outputs of the optimized @main. */
static kiln_status optimize(builder *b) {
  kiln_context *ctx = b->ctx;
  if (!relay_module_get(&b->w, "main"))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNDEFINED, "the module has no function @main");
  const relay_pass *const *def;
  int ndef = relay_default_pipeline(&def);
  const relay_pass *list[RELAY_MAX_PASS_RECORDS];
  int n = 0;
  for (int i = 0; i < ndef && n < RELAY_MAX_PASS_RECORDS - 3; i++)
    if (def[i] != &relay_pass_fuse_ops) list[n++] = def[i];
  /* conv2d kernels with constant weights -> HWIO, dense weights -> [K, N] (output channels
   * innermost, so the default schedule vectorizes over them), the transposes then folded
   * into the stored weights; the manager skips both below their opt_level (2). The layouts
   * suit every CPU target kiln generates code for (x86-64, aarch64: vector registers of 4+
   * lanes), so there is no target test here (optimize() does not see the target). */
  list[n++] = &relay_pass_alter_conv_layout;
  list[n++] = &relay_pass_alter_dense_layout;
  list[n++] = &relay_pass_fold_constant;
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  kiln_status st = relay_run_passes(&pc, &b->w, n, list);
  if (st) return wrap_error(b, st, "optimizing the model");
  b->opt_nfuncs = b->w.nfuncs;
  b->opt_names = b->w.names;
  b->opt_funcs = b->w.funcs;
  relay_func *f = b->opt_main = relay_module_get(&b->w, "main");
  if (!f) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "the optimization passes lost @main");

  b->ninputs = f->nparams;
  b->inputs = ir_arena_alloc(b->plan, sizeof *b->inputs * (size_t)(f->nparams + 1));
  if (!b->inputs) return KILN_ERR_NOMEM;
  for (int i = 0; i < f->nparams; i++) {
    const relay_var *p = f->params[i];
    const relay_tensor_type *t = relay_as_tensor_type(p->type);
    if (!t)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                     "input %d ('%s') of @main is not a tensor; a model takes tensors", i, p->name);
    for (int j = 0; j < i; j++)
      if (strcmp(b->inputs[j].name, p->name) == 0)
        return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                       "inputs %d and %d of @main are both named '%s'; input names must be unique",
                       j, i, p->name);
    b->inputs[i] = (binput){p->name, t->h.dtype, t->ndim, t->shape};
  }
  return collect_outputs(b, relay_type_of(f->body));
}

static int input_index(builder *b, const char *name) {
  for (int i = 0; i < b->ninputs; i++)
    if (strcmp(b->inputs[i].name, name) == 0) return i;
  return -1;
}

/* Binds symbolic dimension v to value in bucket bk (it came from input i, axis a). Binding
 * one dimension to two values is KILN_ERR_SHAPE. */
static kiln_status bind_sym(builder *b, int bi, bbucket *bk, ir_var *v, int64_t value, int i,
                            int a) {
  for (int k = 0; k < bk->nsyms; k++) {
    if (bk->syms[k] != v) continue;
    if (bk->values[k] == value) return KILN_OK;
    return ir_fail(b->ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                   "bucket %d: dimension '%s' is %lld from input '%s' axis %d but %lld from input "
                   "'%s' axis %d", bi, v->name, (long long)bk->values[k],
                   b->inputs[bk->sym_input[k]].name, bk->sym_axis[k], (long long)value,
                   b->inputs[i].name, a);
  }
  int k = bk->nsyms++;
  bk->syms[k] = v;
  bk->values[k] = value;
  bk->names[k] = v->name;
  bk->sym_input[k] = i;
  bk->sym_axis[k] = a;
  return KILN_OK;
}

/* The symbolic dimensions of every input, for the message of a compile without buckets. */
static void symbolic_dims_text(builder *b, ir_strbuf *sb) {
  int n = 0;
  for (int i = 0; i < b->ninputs; i++)
    for (int a = 0; a < b->inputs[i].ndim; a++) {
      int64_t v;
      if (relay_dim_const(b->inputs[i].dims[a], &v)) continue;
      char buf[128];
      ir_sb_printf(sb, "%sinput '%s' axis %d is %s", n++ ? ", " : "", b->inputs[i].name, a,
                   relay_dim_str(b->inputs[i].dims[a], buf, sizeof buf));
    }
}

/* Reads bucket `in` (NULL: the model's static shapes) into bk: the symbolic dimensions it
 * binds and every input's shape. Errors name the bucket, the input and the axis. */
static kiln_status bind_bucket(builder *b, int bi, const kiln_bucket *in, bbucket *bk) {
  kiln_context *ctx = b->ctx;
  int nin = b->ninputs, maxsyms = nin * MAXD + 1;
  bk->weight = in && in->weight > 0 ? in->weight : 1.0;
  bk->syms = ir_arena_alloc(b->plan, sizeof *bk->syms * (size_t)maxsyms);
  bk->values = ir_arena_alloc(b->plan, sizeof *bk->values * (size_t)maxsyms);
  bk->names = ir_arena_alloc(b->plan, sizeof *bk->names * (size_t)maxsyms);
  bk->sym_input = ir_arena_alloc(b->plan, sizeof(int) * (size_t)maxsyms);
  bk->sym_axis = ir_arena_alloc(b->plan, sizeof(int) * (size_t)maxsyms);
  bk->shapes = ir_arena_alloc(b->plan, sizeof *bk->shapes * (size_t)(nin + 1));
  bk->input_tensor = ir_arena_alloc(b->plan, sizeof(int) * (size_t)(nin + 1));
  int *given = ir_arena_alloc(b->plan, sizeof(int) * (size_t)(nin + 1));
  if (!bk->syms || !bk->values || !bk->names || !bk->sym_input || !bk->sym_axis ||
      !bk->shapes || !bk->input_tensor || !given)
    return KILN_ERR_NOMEM;
  for (int i = 0; i < nin; i++) given[i] = -1, bk->input_tensor[i] = -1;

  if (!in) { /* no buckets: the model's shapes must be static */
    ir_strbuf sb;
    ir_sb_init(&sb, ctx);
    symbolic_dims_text(b, &sb);
    kiln_status st = KILN_OK;
    if (sb.len)
      st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                   "the model has symbolic dimensions (%s); give buckets with their values",
                   sb.data ? sb.data : "?");
    ir_sb_free(&sb);
    if (st) return st;
  }
  for (int j = 0; in && j < in->ninputs; j++) {
    const kiln_input_shape *s = &in->inputs[j];
    if (!s->name)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "bucket %d: input %d has no name", bi, j);
    int i = input_index(b, s->name);
    if (i < 0) {
      ir_strbuf sb;
      ir_sb_init(&sb, ctx);
      input_list(b, &sb);
      kiln_status st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNDEFINED,
                               "bucket %d: the model has no input '%s' (its inputs: %s)", bi,
                               s->name, sb.data ? sb.data : "?");
      ir_sb_free(&sb);
      return st;
    }
    if (given[i] >= 0)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "bucket %d: input '%s' is given twice", bi,
                     s->name);
    given[i] = j;
    const binput *x = &b->inputs[i];
    if (s->ndim != x->ndim || (s->ndim && !s->shape)) {
      char buf[256];
      const relay_tensor_type *t = relay_as_tensor_type(b->opt_main->params[i]->type);
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                     "bucket %d: input '%s' has rank %d in the model (shape %s), the bucket gives "
                     "rank %d", bi, s->name, x->ndim, relay_shape_str(t, buf, sizeof buf), s->ndim);
    }
    for (int a = 0; a < x->ndim; a++) {
      int64_t v = s->shape[a], c;
      if (v < 0)
        return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_SHAPE, "bucket %d: input '%s' axis %d is %lld",
                       bi, s->name, a, (long long)v);
      ir_var *sym = ir_as_var(x->dims[a]);
      if (relay_dim_const(x->dims[a], &c) && c != v)
        return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                       "bucket %d: input '%s' axis %d is %lld in the model, the bucket gives %lld "
                       "(export the model with a dynamic axis)", bi, s->name, a, (long long)c,
                       (long long)v);
      if (sym) {
        kiln_status st = bind_sym(b, bi, bk, sym, v, i, a);
        if (st) return st;
      }
    }
  }
  /* every input's shape: dimensions that are expressions of symbols are evaluated */
  ir_expr **values = ir_arena_alloc(b->plan, sizeof(ir_expr *) * (size_t)(bk->nsyms + 1));
  if (!values) return KILN_ERR_NOMEM;
  for (int k = 0; k < bk->nsyms; k++)
    if (!(values[k] = ir_int(b->plan, KILN_INT64, bk->values[k]))) return KILN_ERR_NOMEM;
  for (int i = 0; i < nin; i++) {
    const binput *x = &b->inputs[i];
    for (int a = 0; a < x->ndim; a++) {
      int64_t v;
      bool known = relay_dim_const(x->dims[a], &v);
      if (!known && bk->nsyms) {
        ir_node *e = ir_substitute(b->plan, x->dims[a], bk->nsyms, bk->syms, values);
        if (!e) return ctx->code ? ctx->code : KILN_ERR_NOMEM;
        e = ir_simplify_expr(b->an, e);
        if (!e) return ctx->code ? ctx->code : KILN_ERR_NOMEM;
        known = relay_dim_const(e, &v);
      }
      char buf[128];
      if (!known && given[i] < 0)
        return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                       "bucket %d: input '%s' is not given and its axis %d is %s, not static "
                       "(give the input's shape in the bucket)", bi, x->name, a,
                       relay_dim_str(x->dims[a], buf, sizeof buf));
      if (!known)
        return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                       "bucket %d: input '%s' axis %d is %s in the model, which the bucket's "
                       "shapes do not determine", bi, x->name, a,
                       relay_dim_str(x->dims[a], buf, sizeof buf));
      if (given[i] >= 0 && in->inputs[given[i]].shape[a] != v)
        return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                       "bucket %d: input '%s' axis %d is %s = %lld in the model, the bucket gives "
                       "%lld", bi, x->name, a, relay_dim_str(x->dims[a], buf, sizeof buf),
                       (long long)v, (long long)in->inputs[given[i]].shape[a]);
      bk->shapes[i][a] = v;
    }
  }
  /* no two buckets with the same input shapes */
  for (int o = 0; o < bi; o++) {
    bool same = true;
    for (int i = 0; same && i < nin; i++)
      same = memcmp(b->buckets[o].shapes[i], bk->shapes[i], sizeof(int64_t) * (size_t)b->inputs[i].ndim) == 0;
    if (same) {
      ir_strbuf sb;
      ir_sb_init(&sb, ctx);
      for (int i = 0; i < nin; i++) {
        ir_sb_printf(&sb, "%s%s=", i ? ", " : "", b->inputs[i].name);
        shape_text(&sb, b->inputs[i].ndim, bk->shapes[i]);
      }
      kiln_status st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                               "buckets %d and %d have the same input shapes (%s)", o, bi,
                               sb.data ? sb.data : "?");
      ir_sb_free(&sb);
      return st;
    }
  }
  return KILN_OK;
}

/* The optimized module specialized to bucket bk: BindShapes, InferType, FoldConstant (shapes
 * may now fold), FuseOps. *main is the fused @main. */
static kiln_status specialize(builder *b, int bi, bbucket *bk, relay_func **main) {
  relay_func **funcs = ir_arena_alloc(b->w.arena, sizeof *funcs * (size_t)(b->opt_nfuncs + 1));
  if (!funcs) return KILN_ERR_NOMEM;
  memcpy(funcs, b->opt_funcs, sizeof *funcs * (size_t)b->opt_nfuncs);
  b->w.nfuncs = b->opt_nfuncs;
  b->w.names = b->opt_names;
  b->w.funcs = funcs;
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  pc.nbinds = bk->nsyms;
  pc.bind_names = bk->names;
  pc.bind_values = bk->values;
  const relay_pass *list[] = {&relay_pass_bind_shapes, &relay_pass_infer_type,
                              &relay_pass_fold_constant, &relay_pass_fuse_ops};
  kiln_status st = relay_run_passes(&pc, &b->w, 4, list);
  if (st) return wrap_error(b, st, "bucket %d", bi);
  *main = relay_module_get(&b->w, "main");
  return *main ? KILN_OK : ir_fail(b->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "bucket %d: @main lost", bi);
}

/* ---- Step 2: the walk of the fused @main ---------------------------------------------- */

/* What an expression of the fused @main stands for: a tensor of the plan, a tuple of values
 * or (tensor == V_FUNC) a primitive function. */
enum { V_TUPLE = -1, V_FUNC = -2 };
typedef struct bval {
  int tensor;
  int nfields;
  struct bval **fields;
} bval;

/* A value in the plan arena (a tuple gets room for nfields fields). */
static bval *new_val(builder *b, int tensor, int nfields) {
  bval *v = ir_arena_alloc(b->plan, sizeof *v);
  if (!v) return NULL;
  v->tensor = tensor;
  v->nfields = nfields;
  if (nfields > 0 && !(v->fields = ir_arena_alloc(b->plan, sizeof *v->fields * (size_t)nfields)))
    return NULL;
  return v;
}

/* Adds a tensor to bucket bk's list; arena tensors get their size from dtype and shape. */
static kiln_status add_tensor(builder *b, bbucket *bk, int kind, int index, kiln_dtype dt,
                              int ndim, const int64_t *shape, int *out) {
  if (!grow(b->plan, (void **)&bk->tensors, bk->ntensors, &bk->cap_tensors, sizeof *bk->tensors))
    return KILN_ERR_NOMEM;
  btensor *t = &bk->tensors[bk->ntensors];
  memset(t, 0, sizeof *t);
  t->kind = kind;
  t->index = index;
  t->dtype = dt;
  t->ndim = ndim;
  uint64_t n = kiln_dtype_bytes(dt);
  for (int a = 0; a < ndim; a++) {
    t->shape[a] = shape[a];
    if (shape[a] && n > UINT64_MAX / 2 / (uint64_t)shape[a])
      return ir_fail(b->ctx, IR_NO_SPAN, KILN_ERR_SHAPE, "a tensor of %d dimensions is too large",
                     ndim);
    n *= (uint64_t)shape[a];
  }
  t->nbytes = n;
  t->first = t->last = -1;
  *out = bk->ntensors++;
  return KILN_OK;
}

/* The constant shape of a tensor type in a bucket (an error naming the type when a
 * dimension is not a constant). */
static kiln_status static_shape(builder *b, int bi, const relay_tensor_type *t, int64_t *shape) {
  for (int a = 0; a < t->ndim; a++)
    if (!relay_dim_const(t->shape[a], &shape[a])) {
      char buf[256];
      return ir_fail(b->ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                     "bucket %d: a tensor of shape %s is not static after binding the bucket", bi,
                     relay_shape_str(t, buf, sizeof buf));
    }
  return KILN_OK;
}

/* The param index of constant c, adding it unless a constant with the same dtype, shape and
 * bytes is stored already. */
static kiln_status param_of_const(builder *b, int bi, const relay_const *c, int *out) {
  intptr_t known = (intptr_t)ir_ptrmap_get(&b->param_of, c);
  if (known) {
    *out = (int)known - 1;
    return KILN_OK;
  }
  const relay_tensor_type *t = relay_as_tensor_type(c->type);
  if (!t || t->ndim > MAXD)
    return ir_fail(b->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "bucket %d: a constant of @main is not a tensor", bi);
  int64_t shape[MAXD];
  kiln_status st = static_shape(b, bi, t, shape);
  if (st) return st;
  uint64_t nbytes = (uint64_t)c->nbytes, h = rt_artifact_hash64(c->data, nbytes);
  int idx = -1;
  for (int p = 0; p < b->nparams && idx < 0; p++) {
    const bparam *q = &b->params[p];
    if (q->hash == h && q->nbytes == nbytes && kiln_dtype_eq(q->dtype, t->h.dtype) &&
        q->ndim == t->ndim && memcmp(q->shape, shape, sizeof(int64_t) * (size_t)t->ndim) == 0 &&
        (nbytes == 0 || memcmp(q->c->data, c->data, nbytes) == 0))
      idx = p;
  }
  if (idx < 0) {
    if (!grow(b->plan, (void **)&b->params, b->nparams, &b->cap_params, sizeof *b->params))
      return KILN_ERR_NOMEM;
    bparam *q = &b->params[b->nparams];
    memset(q, 0, sizeof *q);
    q->c = c;
    q->dtype = t->h.dtype;
    q->ndim = t->ndim;
    memcpy(q->shape, shape, sizeof(int64_t) * (size_t)t->ndim);
    q->nbytes = nbytes;
    q->hash = h;
    q->offset = round_up(b->params_bytes);
    b->params_bytes = q->offset + nbytes;
    idx = b->nparams++;
  }
  *out = idx;
  return ir_ptrmap_put(&b->param_of, c, (void *)(intptr_t)(idx + 1));
}

/* base, base_1, base_2, ...: the first name no kernel has yet. */
static const char *unique_kernel_name(builder *b, const char *base) {
  size_t len = strlen(base) + 24;
  char *name = ir_arena_alloc(b->karena, len);
  if (!name) return NULL;
  snprintf(name, len, "%s", base);
  for (long k = 1;; k++) {
    bool taken = false;
    for (int i = 0; i < b->nkernels && !taken; i++) taken = strcmp(b->kernels[i].name, name) == 0;
    if (!taken) return name;
    snprintf(name, len, "%s_%ld", base, k);
  }
}

/* The kernel for primitive function f: lowered (once per node), keyed by its workload hash
 * and shared with an earlier kernel that is structurally equal. */
static kiln_status kernel_for(builder *b, int bi, relay_func *f, lowered_fn **out) {
  lowered_fn *lf = ir_ptrmap_get(&b->lowered, f);
  if (lf) {
    *out = lf;
    return KILN_OK;
  }
  kiln_context *ctx = b->ctx;
  const char *base = relay_fused_base_name(b->ctx, b->karena, f);
  const char *name = base ? unique_kernel_name(b, base) : NULL;
  if (!name) return KILN_ERR_NOMEM;
  ir_func *pf = NULL;
  kiln_status st = relay_lower_func(ctx, b->karena, f, name, &pf);
  if (st) return wrap_error(b, st, "bucket %d: lowering %s", bi, name);
  relay_workload wk;
  if ((st = relay_workload_key(ctx, b->karena, pf, &wk)) != KILN_OK) return st;
  ir_func *bare = ir_func_new(b->karena, "workload", pf->nparams, pf->params, 0, NULL, pf->body);
  if (!bare) return ctx->code ? ctx->code : KILN_ERR_NOMEM;
  int k = -1;
  for (int i = 0; i < b->nkernels && k < 0; i++) {
    if (b->kernels[i].hash != wk.hash) continue;
    ir_clear_error(ctx);
    if (ir_structural_equal(ctx, &bare->h, &b->kernels[i].bare->h)) k = i;
    else if (ctx->code == KILN_ERR_NOMEM) return KILN_ERR_NOMEM;
  }
  if (k < 0) {
    if (!grow(b->plan, (void **)&b->kernels, b->nkernels, &b->cap_kernels, sizeof *b->kernels))
      return KILN_ERR_NOMEM;
    b->kernels[b->nkernels] = (bkernel){name, pf, bare, wk.hash, wk.summary, 0, 0.0,
                                        RELAY_SCHEDULE_DEFAULT};
    k = b->nkernels++;
  }
  if (!(lf = ir_arena_alloc(b->plan, sizeof *lf))) return KILN_ERR_NOMEM;
  lf->kernel = k;
  lf->pf = pf;
  *out = lf;
  return ir_ptrmap_put(&b->lowered, f, lf);
}

/* Appends the tensor types of a call's result (a tensor or a tuple of tensors) to types. */
static int result_types(const relay_type *t, const relay_tensor_type **types, int cap) {
  const relay_tensor_type *x = relay_as_tensor_type(t);
  if (x) {
    types[0] = x;
    return 1;
  }
  const relay_tuple_type *tt = relay_as_tuple_type(t);
  if (!tt || tt->nfields > cap) return -1;
  for (int i = 0; i < tt->nfields; i++)
    if (!(types[i] = relay_as_tensor_type(tt->fields[i]))) return -1;
  return tt->nfields;
}

enum { MAX_KERNEL_OUTPUTS = 64 };

/* A call of a primitive function: its kernel, its arguments (symbolic dimensions, argument
 * tensors, new arena tensors for the results) appended to bk's calls; *out its value. */
static kiln_status call_value(builder *b, int bi, bbucket *bk, ir_ptrmap *vals,
                              const relay_call *call, bval **out) {
  kiln_context *ctx = b->ctx;
  relay_func *f = relay_as_func(call->fn);
  if (!f || !relay_func_is_primitive(f)) {
    if (call->op)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                     "bucket %d: op %s is called outside a fused group", bi, call->op);
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "bucket %d: @main calls a %s; only fused (primitive) functions can be called",
                   bi, call->fn ? ir_kind_name(call->fn->kind) : "?");
  }
  lowered_fn *lf = NULL;
  kiln_status st = kernel_for(b, bi, f, &lf);
  if (st) return st;
  const ir_func *pf = lf->pf;
  const char *kname = b->kernels[lf->kernel].name;
  const relay_tensor_type *rtypes[MAX_KERNEL_OUTPUTS];
  int nouts = result_types(call->type, rtypes, MAX_KERNEL_OUTPUTS);
  if (nouts < 0)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "bucket %d: kernel %s returns something other than tensors or a tuple of at "
                   "most %d tensors", bi, kname, MAX_KERNEL_OUTPUTS);
  int nscalars = 0;
  while (nscalars < pf->nparams && pf->params[nscalars]->kind == IR_VAR) nscalars++;
  if (pf->nparams != nscalars + call->nargs + nouts)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_INTERNAL,
                   "bucket %d: kernel %s has %d parameters for %d scalars, %d arguments and %d "
                   "results", bi, kname, (int)pf->nparams, nscalars, (int)call->nargs, nouts);
  int ci = bk->ncalls;
  barg *args = ir_arena_alloc(b->plan, sizeof *args * (size_t)(pf->nparams + 1));
  if (!args) return KILN_ERR_NOMEM;
  int na = 0;
  for (int s = 0; s < nscalars; s++) {
    const char *dim = ((const ir_var *)pf->params[s])->name;
    int k = 0;
    while (k < bk->nsyms && strcmp(bk->names[k], dim) != 0) k++;
    if (k == bk->nsyms)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_SHAPE,
                     "bucket %d: kernel %s needs the symbolic dimension '%s', which the bucket "
                     "does not bind", bi, kname, dim);
    args[na++] = (barg){-1, bk->values[k]};
  }
  for (int a = 0; a < call->nargs; a++) {
    const bval *v = ir_ptrmap_get(vals, call->args[a]);
    if (!v || v->tensor < 0)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                     "bucket %d: argument %d of kernel %s is not a tensor", bi, a, kname);
    btensor *t = &bk->tensors[v->tensor];
    if (t->kind == T_ARENA && t->last < ci) t->last = ci;
    args[na++] = (barg){v->tensor, 0};
  }
  bval *res = NULL;
  if (!relay_as_tensor_type(call->type) && !(res = new_val(b, V_TUPLE, nouts)))
    return KILN_ERR_NOMEM;
  for (int o = 0; o < nouts; o++) {
    int64_t shape[MAXD];
    int t;
    if ((st = static_shape(b, bi, rtypes[o], shape)) != KILN_OK) return st;
    st = add_tensor(b, bk, T_ARENA, -1, rtypes[o]->h.dtype, rtypes[o]->ndim, shape, &t);
    if (st) return st;
    bk->tensors[t].first = bk->tensors[t].last = ci;
    args[na++] = (barg){t, 0};
    bval *v = new_val(b, t, 0);
    if (!v) return KILN_ERR_NOMEM;
    if (res) res->fields[o] = v;
    else res = v;
  }
  if (!grow(b->plan, (void **)&bk->calls, bk->ncalls, &bk->cap_calls, sizeof *bk->calls))
    return KILN_ERR_NOMEM;
  bk->calls[bk->ncalls++] = (bcall){lf->kernel, na, args};
  b->kernels[lf->kernel].ncalls++;
  b->kernels[lf->kernel].weight += bk->weight;
  b->ncalls++;
  *out = res;
  return KILN_OK;
}

/* Appends the tensors of v (tuples flattened) to bk's outputs (counting only when
 * bk->outputs is NULL). */
static kiln_status flatten_outputs(builder *b, int bi, bbucket *bk, const bval *v) {
  if (v->tensor == V_FUNC)
    return ir_fail(b->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "bucket %d: @main returns a function; a model returns tensors", bi);
  if (v->tensor >= 0) {
    if (bk->outputs) bk->outputs[bk->noutputs] = v->tensor;
    bk->noutputs++;
    return KILN_OK;
  }
  for (int i = 0; i < v->nfields; i++) {
    kiln_status st = flatten_outputs(b, bi, bk, v->fields[i]);
    if (st) return st;
  }
  return KILN_OK;
}

/* Walks the fused @main of bucket bi in topological order and builds its plan: inputs and
 * constants become tensors when first used, every call of a primitive function a kernel
 * call; lets, tuples and projections only route values. */
static kiln_status walk_bucket(builder *b, int bi, bbucket *bk, relay_func *main) {
  kiln_context *ctx = b->ctx;
  relay_expr **order = NULL;
  int n = 0;
  ir_ptrmap vals, lets, params, param_tensor;
  ir_ptrmap_init(&vals, ctx);
  ir_ptrmap_init(&lets, ctx);
  ir_ptrmap_init(&params, ctx);
  ir_ptrmap_init(&param_tensor, ctx);
  static const bval func_marker = {V_FUNC, 0, NULL};
  kiln_status st = relay_post_order(ctx, main->body, false, &order, &n);
  for (int i = 0; !st && i < main->nparams; i++)
    st = ir_ptrmap_put(&params, main->params[i], (void *)(intptr_t)(i + 1));
  for (int j = 0; !st && j < n; j++)
    if (order[j]->kind == RELAY_LET) {
      const relay_let *let = (const relay_let *)order[j];
      st = ir_ptrmap_put(&lets, let->var, let->value);
    }
  for (int j = 0; !st && j < n; j++) {
    relay_expr *e = order[j];
    bval *v = NULL;
    switch (e->kind) {
    case RELAY_VAR: {
      intptr_t pi = (intptr_t)ir_ptrmap_get(&params, e);
      if (pi) {
        int i = (int)pi - 1;
        if (bk->input_tensor[i] < 0)
          st = add_tensor(b, bk, T_INPUT, i, b->inputs[i].dtype, b->inputs[i].ndim,
                          bk->shapes[i], &bk->input_tensor[i]);
        if (!st && !(v = new_val(b, bk->input_tensor[i], 0))) st = KILN_ERR_NOMEM;
        break;
      }
      relay_expr *value = ir_ptrmap_get(&lets, e);
      if (!value || !(v = ir_ptrmap_get(&vals, value)))
        st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "bucket %d: %%%s is not bound in @main",
                     bi, ((relay_var *)e)->name);
      break;
    }
    case RELAY_CONST: {
      int p = -1;
      st = param_of_const(b, bi, (const relay_const *)e, &p);
      if (st) break;
      intptr_t t = (intptr_t)ir_ptrmap_get(&param_tensor, (void *)(intptr_t)(p + 1));
      if (!t) {
        const bparam *q = &b->params[p];
        int ti;
        st = add_tensor(b, bk, T_PARAM, p, q->dtype, q->ndim, q->shape, &ti);
        if (!st) st = ir_ptrmap_put(&param_tensor, (void *)(intptr_t)(p + 1), (void *)(intptr_t)(ti + 1));
        t = ti + 1;
      }
      if (!st && !(v = new_val(b, (int)t - 1, 0))) st = KILN_ERR_NOMEM;
      break;
    }
    case RELAY_TUPLE: {
      const relay_tuple *tu = (const relay_tuple *)e;
      if (!(v = new_val(b, V_TUPLE, tu->nfields))) st = KILN_ERR_NOMEM;
      for (int i = 0; !st && i < tu->nfields; i++) v->fields[i] = ir_ptrmap_get(&vals, tu->fields[i]);
      break;
    }
    case RELAY_PROJ: {
      const relay_proj *p = (const relay_proj *)e;
      const bval *tv = ir_ptrmap_get(&vals, p->tuple);
      if (!tv || tv->tensor != V_TUPLE || p->index < 0 || p->index >= tv->nfields)
        st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_INTERNAL,
                     "bucket %d: a projection .%d of something that is not such a tuple", bi,
                     (int)p->index);
      else v = tv->fields[p->index];
      break;
    }
    case RELAY_LET: v = ir_ptrmap_get(&vals, ((const relay_let *)e)->body); break;
    case RELAY_FUNC:
      if (relay_func_is_primitive((const relay_func *)e)) v = (bval *)&func_marker;
      else
        st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                     "bucket %d: @main holds a function value (closure); only calls of fused "
                     "functions are supported", bi);
      break;
    case RELAY_CALL: st = call_value(b, bi, bk, &vals, (const relay_call *)e, &v); break;
    case RELAY_GLOBAL:
      st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "bucket %d: @main refers to @%s; calls of other functions are not supported",
                   bi, ((const relay_global *)e)->name);
      break;
    case RELAY_IF:
      st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "bucket %d: @main has an if expression; control flow is not supported", bi);
      break;
    default:
      st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED, "bucket %d: @main holds a %s", bi,
                   ir_kind_name(e->kind));
      break;
    }
    if (!st && !v)
      st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "bucket %d: no value for a %s", bi,
                   ir_kind_name(e->kind));
    if (!st) st = ir_ptrmap_put(&vals, e, v);
  }
  const bval *res = st ? NULL : ir_ptrmap_get(&vals, main->body);
  if (!st) st = flatten_outputs(b, bi, bk, res);
  if (!st && !(bk->outputs = ir_arena_alloc(b->plan, sizeof(int) * (size_t)(bk->noutputs + 1))))
    st = KILN_ERR_NOMEM;
  if (!st) {
    bk->noutputs = 0;
    st = flatten_outputs(b, bi, bk, res);
  }
  if (!st && bk->noutputs != b->noutputs)
    st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "bucket %d: %d outputs, the model has %d",
                 bi, bk->noutputs, b->noutputs);
  ir_free(ctx, order, sizeof *order * (size_t)n);
  ir_ptrmap_free(&vals);
  ir_ptrmap_free(&lets);
  ir_ptrmap_free(&params);
  ir_ptrmap_free(&param_tensor);
  return st;
}

/* Steps 1 and 2 for every bucket: optimization, binding, fusion, lowering, the calls. */
static kiln_status front(builder *b, int nbuckets, const kiln_bucket *buckets) {
  kiln_context *ctx = b->ctx;
  if (nbuckets < 0 || (nbuckets && !buckets))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "bad bucket list (nbuckets = %d)", nbuckets);
  for (int i = 0; i < nbuckets; i++)
    if (buckets[i].ninputs < 0 || (buckets[i].ninputs && !buckets[i].inputs))
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "bucket %d: bad input list (ninputs = %d)",
                     i, buckets[i].ninputs);
  double t0 = now_s();
  kiln_status st = optimize(b);
  if (st) return st;
  b->nbuckets = nbuckets ? nbuckets : 1;
  b->buckets = ir_arena_alloc(b->plan, sizeof *b->buckets * (size_t)b->nbuckets);
  if (!b->buckets) return KILN_ERR_NOMEM;
  for (int i = 0; i < b->nbuckets; i++)
    if ((st = bind_bucket(b, i, nbuckets ? &buckets[i] : NULL, &b->buckets[i])) != KILN_OK)
      return st;
  b->t_passes = now_s() - t0;
  for (int i = 0; i < b->nbuckets; i++) {
    relay_func *main = NULL;
    double t1 = now_s();
    if ((st = specialize(b, i, &b->buckets[i], &main)) != KILN_OK) return st;
    double t2 = now_s();
    b->t_passes += t2 - t1;
    if ((st = walk_bucket(b, i, &b->buckets[i], main)) != KILN_OK) return st;
    b->t_lower += now_s() - t2;
  }
  return KILN_OK;
}

/* ---- Task extraction ------------------------------------------------------------------- */

kiln_status relay_build_extract_tasks(relay_module *m, int nbuckets, const kiln_bucket *buckets,
                                      relay_build_tasks **out) {
  if (!out) return m ? ir_fail(m->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "extract tasks: NULL out")
                     : KILN_ERR_MISUSE;
  *out = NULL;
  if (!m) return rt_errorf(KILN_ERR_MISUSE, "extract tasks: NULL module");
  ir_clear_error(m->ctx);
  builder b;
  kiln_status st = builder_init(&b, m);
  if (!st) st = front(&b, nbuckets, buckets);
  relay_build_tasks *t = NULL;
  if (!st && !(t = ir_malloc(m->ctx, sizeof *t))) st = KILN_ERR_NOMEM;
  if (!st) {
    t->ctx = m->ctx;
    t->arena = b.karena;
    t->ntasks = b.nkernels;
    t->tasks = ir_arena_alloc(b.karena, sizeof *t->tasks * (size_t)(b.nkernels + 1));
    if (!t->tasks) st = KILN_ERR_NOMEM;
    for (int k = 0; !st && k < b.nkernels; k++) {
      const bkernel *K = &b.kernels[k];
      t->tasks[k] = (relay_build_task){K->name, K->prim, K->hash, K->summary, K->weight, K->ncalls};
    }
    if (st) ir_free(m->ctx, t, sizeof *t);
    else b.karena = NULL; /* the task list owns it now */
  }
  builder_free(&b);
  if (st) return st;
  *out = t;
  return KILN_OK;
}

void relay_build_tasks_free(relay_build_tasks *t) {
  if (!t) return;
  ir_arena_free(t->arena);
  ir_free(t->ctx, t, sizeof *t);
}

/* ---- Step 4: schedules ------------------------------------------------------------------ */

/* Verifies a scheduled function, runs the TIR pipeline on it in `scratch` and copies the
 * result into arena (so that it outlives the schedule and the scratch arena). */
static kiln_status lower_into(kiln_context *ctx, ir_arena *arena, ir_arena *scratch,
                              const ir_func *f, ir_func **out) {
  kiln_status st = ir_verify_func(ctx, f);
  ir_func *low = NULL;
  if (!st) st = ir_lower_func(ctx, scratch, (ir_func *)f, NULL, &low);
  if (st) return st;
  *out = (ir_func *)ir_deep_copy(arena, &low->h);
  return *out ? KILN_OK : KILN_ERR_NOMEM;
}

/* Appends one sentence to a warning being built ("; " between sentences). */
static void warn_add(ir_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn_add(ir_strbuf *sb, const char *fmt, ...) {
  char buf[1600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  ir_sb_printf(sb, "%s%s", sb->len ? "; " : "", buf);
}

/* The database's schedule for prim when one replays, else the default rules, else (with a
 * warning) the function unscheduled; then the TIR pipeline. Only hard errors (out of memory,
 * a database that cannot be read, a function that does not lower even unscheduled) fail. */
kiln_status relay_build_schedule(kiln_context *ctx, ir_arena *arena, const ir_func *prim,
                                 uint64_t hash, const tgt_target *t, struct tune_db *db,
                                 ir_func **out, relay_schedule_source *source,
                                 const char **warning) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!arena || !prim || !t || !out || !source)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "relay_build_schedule: NULL argument");
  *out = NULL;
  *source = RELAY_SCHEDULE_DEFAULT;
  if (warning) *warning = NULL;
  ir_arena *scratch = ir_arena_new(ctx);
  if (!scratch) return KILN_ERR_NOMEM;
  ir_strbuf warn;
  ir_sb_init(&warn, ctx);
  sch_schedule *s = NULL;
  kiln_status st = KILN_OK;
  const char *name = prim->name;
  char why[sizeof ctx->errmsg];

  if (db) {
    tune_record rec;
    bool found = false;
    int64_t nskipped = 0;
    memset(&rec, 0, sizeof rec);
    st = tune_db_best(db, hash, t->canonical, &rec, &found, &nskipped);
    if (!st && nskipped > 0)
      warn_add(&warn, "kernel %s (hash %016llx): %lld damaged database record%s skipped", name,
               (unsigned long long)hash, (long long)nskipped, nskipped == 1 ? "" : "s");
    if (!st && found) {
      sch_trace tr;
      kiln_status rs = sch_trace_from_json(ctx, scratch, rec.trace_json, &tr);
      if (!rs && !(s = sch_new(ctx, prim, rec.seed))) rs = ctx->code ? ctx->code : KILN_ERR_NOMEM;
      if (!rs) rs = sch_replay(s, &tr, 0, NULL);
      if (!rs) rs = lower_into(ctx, arena, scratch, s->func, out);
      if (rs == KILN_ERR_NOMEM) {
        st = rs;
      } else if (rs) {
        snprintf(why, sizeof why, "%s", ctx->code ? ctx->errmsg : kiln_status_str(rs));
        warn_add(&warn, "kernel %s (hash %016llx): the database record %lld does not replay "
                 "(%s); using the default schedule", name, (unsigned long long)hash,
                 (long long)rec.id, why);
        ir_clear_error(ctx);
        *out = NULL;
      } else {
        *source = RELAY_SCHEDULE_DATABASE;
      }
      sch_free(s);
      s = NULL;
      ir_arena_reset(scratch);
    }
    tune_record_clear(ctx, &rec);
  }
  if (!st && !*out) {
    sch_target_info ti;
    sch_target_info_from(t, &ti);
    kiln_status rs = (s = sch_new(ctx, prim, 1)) ? KILN_OK : (ctx->code ? ctx->code : KILN_ERR_NOMEM);
    if (!rs) rs = sch_apply_default_rules(s, &ti);
    if (!rs) rs = lower_into(ctx, arena, scratch, s->func, out);
    if (rs == KILN_ERR_NOMEM) {
      st = rs;
    } else if (rs) {
      snprintf(why, sizeof why, "%s", ctx->code ? ctx->errmsg : kiln_status_str(rs));
      warn_add(&warn, "kernel %s (hash %016llx): the default schedule rules fail (%s); the "
               "kernel is compiled unscheduled", name, (unsigned long long)hash, why);
      ir_clear_error(ctx);
      *out = NULL;
      ir_arena_reset(scratch);
      st = lower_into(ctx, arena, scratch, prim, out);
    }
    sch_free(s);
  }
  if (!st && warn.oom) st = KILN_ERR_NOMEM;
  if (!st && warn.len && warning && !(*warning = ir_arena_strdup(arena, warn.data)))
    st = KILN_ERR_NOMEM;
  ir_sb_free(&warn);
  ir_arena_free(scratch);
  if (st) *out = NULL;
  return st;
}

/* ---- Step 6: memory plans ----------------------------------------------------------------- */

typedef struct size_idx {
  uint64_t size;
  int idx;
} size_idx;
typedef struct interval {
  uint64_t lo, hi;
} interval;

static int by_size_desc(const void *x, const void *y) {
  const size_idx *a = x, *b = y;
  if (a->size != b->size) return a->size > b->size ? -1 : 1;
  return a->idx - b->idx;
}

static int by_lo(const void *x, const void *y) {
  const interval *a = x, *b = y;
  return a->lo < b->lo ? -1 : a->lo > b->lo;
}

static bool live_overlap(const btensor *a, const btensor *b) {
  return a->first <= b->last && b->first <= a->last;
}

/* Offsets for the arena tensors of bk: biggest first, each at the lowest 64-aligned offset
 * where it overlaps (in bytes) no placed tensor whose live range overlaps its own. Model
 * outputs live to the end of the run. */
static kiln_status plan_memory(builder *b, bbucket *bk) {
  kiln_context *ctx = b->ctx;
  for (int o = 0; o < bk->noutputs; o++) {
    btensor *t = &bk->tensors[bk->outputs[o]];
    if (t->kind == T_ARENA) t->last = bk->ncalls;
  }
  int n = 0;
  for (int i = 0; i < bk->ntensors; i++) n += bk->tensors[i].kind == T_ARENA;
  size_t sb = sizeof(size_idx) * (size_t)(n + 1), ib = sizeof(interval) * (size_t)(n + 1);
  size_idx *order = ir_malloc(ctx, sb);
  interval *busy = ir_malloc(ctx, ib);
  int *placed = ir_malloc(ctx, sizeof(int) * (size_t)(n + 1));
  if (!order || !busy || !placed) {
    ir_free(ctx, order, sb);
    ir_free(ctx, busy, ib);
    ir_free(ctx, placed, sizeof(int) * (size_t)(n + 1));
    return KILN_ERR_NOMEM;
  }
  int k = 0;
  for (int i = 0; i < bk->ntensors; i++)
    if (bk->tensors[i].kind == T_ARENA) order[k++] = (size_idx){bk->tensors[i].nbytes, i};
  qsort(order, (size_t)n, sizeof *order, by_size_desc);
  uint64_t end = 0, naive = 0;
  for (int j = 0; j < n; j++) {
    btensor *t = &bk->tensors[order[j].idx];
    int nb = 0;
    for (int p = 0; p < j; p++) {
      const btensor *q = &bk->tensors[placed[p]];
      if (live_overlap(t, q) && q->nbytes) busy[nb++] = (interval){q->offset, q->offset + q->nbytes};
    }
    qsort(busy, (size_t)nb, sizeof *busy, by_lo);
    uint64_t off = 0;
    for (int p = 0; p < nb && t->nbytes; p++) {
      if (off + t->nbytes <= busy[p].lo) break;
      if (busy[p].hi > off) off = round_up(busy[p].hi);
    }
    t->offset = off;
    placed[j] = order[j].idx;
    if (off + t->nbytes > end) end = off + t->nbytes;
    naive += round_up(t->nbytes);
  }
  bk->arena_bytes = round_up(end);
  bk->naive_bytes = naive;
  ir_free(ctx, order, sb);
  ir_free(ctx, busy, ib);
  ir_free(ctx, placed, sizeof(int) * (size_t)(n + 1));
  return KILN_OK;
}

/* ---- Step 7: META and PLAN ------------------------------------------------------------------ */

/* cJSON building with one out-of-memory flag: every helper does nothing once it is set. */
typedef struct jctx {
  bool oom;
} jctx;

static cJSON *jput(jctx *j, cJSON *parent, const char *key, cJSON *item) {
  if (!item || !parent) {
    cJSON_Delete(item);
    j->oom = true;
    return NULL;
  }
  bool ok = key ? cJSON_AddItemToObject(parent, key, item) : cJSON_AddItemToArray(parent, item);
  if (!ok) {
    cJSON_Delete(item);
    j->oom = true;
    return NULL;
  }
  return item;
}
static cJSON *jnum(jctx *j, cJSON *parent, const char *key, double v) {
  return jput(j, parent, key, cJSON_CreateNumber(v));
}
static cJSON *jstr(jctx *j, cJSON *parent, const char *key, const char *s) {
  return jput(j, parent, key, cJSON_CreateString(s));
}
static cJSON *jarr(jctx *j, cJSON *parent, const char *key) {
  return jput(j, parent, key, cJSON_CreateArray());
}
static cJSON *jobj(jctx *j, cJSON *parent, const char *key) {
  return jput(j, parent, key, cJSON_CreateObject());
}
static cJSON *jshape(jctx *j, cJSON *parent, const char *key, int ndim, const int64_t *shape) {
  cJSON *a = jarr(j, parent, key);
  for (int i = 0; a && i < ndim; i++) jnum(j, a, NULL, (double)shape[i]);
  return a;
}
static cJSON *jdtype(jctx *j, cJSON *parent, kiln_dtype t) {
  char buf[32];
  return jstr(j, parent, "dtype", kiln_dtype_str(t, buf, sizeof buf));
}
static cJSON *jpair(jctx *j, cJSON *parent, int x, int y) {
  cJSON *a = jarr(j, parent, NULL);
  jnum(j, a, NULL, x);
  jnum(j, a, NULL, y);
  return a;
}

/* "YYYY-MM-DDTHH:MM:SSZ" of $SOURCE_DATE_EPOCH (reproducible builds) or of now. */
static void created_time(char *buf, size_t size) {
  time_t t = time(NULL);
  const char *sde = getenv("SOURCE_DATE_EPOCH");
  if (sde && *sde) {
    char *end;
    long long v = strtoll(sde, &end, 10);
    if (!*end && v >= 0) t = (time_t)v;
  }
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* META "follows" for axis a of output o: [input, axis] or (-1, -1) for null. */
static void follows(const builder *b, int o, int a, int *fi, int *fa) {
  *fi = *fa = -1;
  const ir_expr *d = b->outputs[o]->shape[a];
  if (ir_as_var(d))
    for (int i = 0; i < b->ninputs; i++)
      for (int k = 0; k < b->inputs[i].ndim; k++)
        if (b->inputs[i].dims[k] == d) {
          *fi = i, *fa = k;
          return;
        }
  if (b->nbuckets < 2) return;
  for (int i = 0; i < b->ninputs; i++)
    for (int k = 0; k < b->inputs[i].ndim; k++) {
      bool equal = true, varies = false;
      for (int bi = 0; bi < b->nbuckets && equal; bi++) {
        const bbucket *bk = &b->buckets[bi];
        int64_t ext = bk->tensors[bk->outputs[o]].shape[a];
        equal = ext == bk->shapes[i][k];
        varies |= bk->shapes[i][k] != b->buckets[0].shapes[i][k];
      }
      if (equal && varies) {
        *fi = i, *fa = k;
        return;
      }
    }
}

/* The name of output o: the string attribute "output_name_<o>" of the caller's main when it
 * has one (the ONNX importer records the graph's output names so), else "output" for a model
 * with one output and "output_0", "output_1", ... otherwise. */
static void output_name(const builder *b, int o, char *buf, size_t size) {
  char key[32];
  snprintf(key, sizeof key, "output_name_%d", o);
  const relay_attr *a =
      b->user_main ? relay_attr_find(b->user_main->nattrs, b->user_main->attrs, key) : NULL;
  if (a && a->attr_kind == RELAY_ATTR_STR && a->s[0]) snprintf(buf, size, "%s", a->s);
  else if (b->noutputs == 1) snprintf(buf, size, "output");
  else snprintf(buf, size, "output_%d", o);
}

static cJSON *build_meta(builder *b, jctx *j, const kiln_compile_options *opts,
                         const tgt_target *t) {
  cJSON *root = cJSON_CreateObject();
  if (!root) {
    j->oom = true;
    return NULL;
  }
  char created[64];
  created_time(created, sizeof created);
  jstr(j, root, "format", "kiln-model");
  jstr(j, root, "kiln_version", kiln_version());
  jstr(j, root, "created", created);
  jstr(j, root, "model", opts->model_name ? opts->model_name : "model");
  jstr(j, root, "target", t->canonical);
  cJSON *o = jobj(j, root, "options");
  jnum(j, o, "opt_level", opts->opt_level ? opts->opt_level : 3);
  if (opts->db_path) jstr(j, o, "db", opts->db_path);
  cJSON *ins = jarr(j, root, "inputs");
  for (int i = 0; i < b->ninputs; i++) {
    cJSON *x = jobj(j, ins, NULL);
    jstr(j, x, "name", b->inputs[i].name);
    jdtype(j, x, b->inputs[i].dtype);
  }
  cJSON *outs = jarr(j, root, "outputs");
  for (int k = 0; k < b->noutputs; k++) {
    char name[256];
    output_name(b, k, name, sizeof name);
    cJSON *x = jobj(j, outs, NULL);
    jstr(j, x, "name", name);
    jdtype(j, x, b->outputs[k]->h.dtype);
    cJSON *f = jarr(j, x, "follows");
    for (int a = 0; a < b->outputs[k]->ndim; a++) {
      int fi, fa;
      follows(b, k, a, &fi, &fa);
      if (fi < 0) jput(j, f, NULL, cJSON_CreateNull());
      else jpair(j, f, fi, fa);
    }
  }
  cJSON *bks = jarr(j, root, "buckets");
  for (int bi = 0; bi < b->nbuckets; bi++) {
    const bbucket *bk = &b->buckets[bi];
    cJSON *x = jobj(j, bks, NULL);
    cJSON *is = jarr(j, x, "inputs");
    for (int i = 0; i < b->ninputs; i++) jshape(j, is, NULL, b->inputs[i].ndim, bk->shapes[i]);
    cJSON *os = jarr(j, x, "outputs");
    for (int k = 0; k < bk->noutputs; k++) {
      const btensor *t2 = &bk->tensors[bk->outputs[k]];
      jshape(j, os, NULL, t2->ndim, t2->shape);
    }
    jnum(j, x, "weight", bk->weight);
  }
  cJSON *pad = jarr(j, root, "paddable");
  for (int i = 0; i < opts->npaddable; i++)
    jpair(j, pad, input_index(b, opts->paddable[i].input), opts->paddable[i].axis);
  return root;
}

static cJSON *build_plan(builder *b, jctx *j) {
  cJSON *root = cJSON_CreateObject();
  if (!root) {
    j->oom = true;
    return NULL;
  }
  cJSON *ks = jarr(j, root, "kernels");
  for (int k = 0; k < b->nkernels; k++) {
    const bkernel *K = &b->kernels[k];
    char sym[32], hash[32];
    snprintf(sym, sizeof sym, "kiln_k%d", k);
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)K->hash);
    cJSON *x = jobj(j, ks, NULL);
    jstr(j, x, "symbol", sym);
    jstr(j, x, "name", K->name);
    jstr(j, x, "hash", hash);
    jstr(j, x, "workload", K->summary ? K->summary : "");
    jstr(j, x, "schedule", K->source == RELAY_SCHEDULE_DATABASE ? "database" : "default");
  }
  cJSON *ps = jarr(j, root, "params");
  for (int p = 0; p < b->nparams; p++) {
    const bparam *q = &b->params[p];
    cJSON *x = jobj(j, ps, NULL);
    jnum(j, x, "offset", (double)q->offset);
    jnum(j, x, "nbytes", (double)q->nbytes);
    jdtype(j, x, q->dtype);
    jshape(j, x, "shape", q->ndim, q->shape);
  }
  cJSON *bks = jarr(j, root, "buckets");
  for (int bi = 0; bi < b->nbuckets; bi++) {
    const bbucket *bk = &b->buckets[bi];
    cJSON *x = jobj(j, bks, NULL);
    jnum(j, x, "arena_bytes", (double)bk->arena_bytes);
    jnum(j, x, "naive_bytes", (double)bk->naive_bytes);
    cJSON *ts = jarr(j, x, "tensors");
    for (int i = 0; i < bk->ntensors; i++) {
      const btensor *t = &bk->tensors[i];
      cJSON *y = jobj(j, ts, NULL);
      jstr(j, y, "kind", t->kind == T_INPUT ? "input" : t->kind == T_PARAM ? "param" : "arena");
      if (t->kind == T_ARENA) jnum(j, y, "offset", (double)t->offset);
      else jnum(j, y, "index", t->index);
      jdtype(j, y, t->dtype);
      jshape(j, y, "shape", t->ndim, t->shape);
    }
    cJSON *cs = jarr(j, x, "calls");
    for (int c = 0; c < bk->ncalls; c++) {
      const bcall *call = &bk->calls[c];
      cJSON *y = jobj(j, cs, NULL);
      jnum(j, y, "kernel", call->kernel);
      cJSON *as = jarr(j, y, "args");
      for (int a = 0; a < call->nargs; a++) {
        if (call->args[a].tensor >= 0) {
          jnum(j, as, NULL, call->args[a].tensor);
        } else {
          cJSON *s = jobj(j, as, NULL);
          jnum(j, s, "i64", (double)call->args[a].i64);
        }
      }
    }
    cJSON *os = jarr(j, x, "outputs");
    for (int o = 0; o < bk->noutputs; o++) jnum(j, os, NULL, bk->outputs[o]);
  }
  return root;
}

/* The JSON text of root (deleted here) copied into context memory. */
static kiln_status json_text(kiln_context *ctx, cJSON *root, jctx *j, char **out, size_t *len) {
  char *s = j->oom || !root ? NULL : cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!s) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "out of memory writing JSON");
  *len = strlen(s);
  *out = ir_malloc(ctx, *len + 1);
  if (*out) memcpy(*out, s, *len + 1);
  free(s);
  return *out ? KILN_OK : KILN_ERR_NOMEM;
}

/* ---- The compiled model ------------------------------------------------------------------- */

struct kiln_compiled {
  kiln_context *ctx;
  char *meta, *plan;
  size_t meta_len, plan_len;
  void *params, *code;
  size_t params_len, code_len;
  char *model_name;
  int nwarnings, cap_warnings;
  char **warnings;
  kiln_compile_stats stats;
  void *bytes; /* rt_artifact_serialize's (malloc'ed), made on first request */
  uint64_t nbytes;
};

KILN_API void kiln_compiled_free(kiln_compiled *c) {
  if (!c || !c->ctx) return;
  kiln_context *ctx = c->ctx;
  ir_free(ctx, c->meta, c->meta ? c->meta_len + 1 : 0);
  ir_free(ctx, c->plan, c->plan ? c->plan_len + 1 : 0);
  ir_free(ctx, c->params, c->params_len);
  ir_free(ctx, c->code, c->code_len);
  if (c->model_name) ir_free(ctx, c->model_name, strlen(c->model_name) + 1);
  for (int i = 0; i < c->nwarnings; i++) ir_free(ctx, c->warnings[i], strlen(c->warnings[i]) + 1);
  ir_free(ctx, c->warnings, sizeof(char *) * (size_t)c->cap_warnings);
  free(c->bytes);
  ir_free(ctx, c, sizeof *c);
}

/* Appends a copy of warning w to c's list. */
static kiln_status add_warning(kiln_compiled *c, const char *w) {
  if (c->nwarnings == c->cap_warnings) {
    int nc = c->cap_warnings ? c->cap_warnings * 2 : 4;
    char **p = ir_realloc(c->ctx, c->warnings, sizeof(char *) * (size_t)c->cap_warnings,
                          sizeof(char *) * (size_t)nc);
    if (!p) return KILN_ERR_NOMEM;
    c->warnings = p;
    c->cap_warnings = nc;
  }
  char *s = ir_strdup(c->ctx, w);
  if (!s) return KILN_ERR_NOMEM;
  c->warnings[c->nwarnings++] = s;
  return KILN_OK;
}

/* The whole file at path (a shared object, never empty) in context memory. */
static kiln_status read_whole(kiln_context *ctx, const char *path, void **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
  void *p = NULL;
  kiln_status st = KILN_OK;
  if (n <= 0 || fseek(f, 0, SEEK_SET) != 0)
    st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "cannot read '%s' (or it is empty)", path);
  else if (!(p = ir_malloc(ctx, (size_t)n)))
    st = KILN_ERR_NOMEM;
  else if (fread(p, 1, (size_t)n, f) != (size_t)n)
    st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "cannot read '%s'", path);
  fclose(f);
  if (st) {
    if (p) ir_free(ctx, p, (size_t)n);
    return st;
  }
  *out = p;
  *len = (size_t)n;
  return KILN_OK;
}

/* A copy of f named sym, with global_symbol = sym (codegen exports functions by name). */
static ir_func *rename_func(ir_arena *a, const ir_func *f, const char *sym) {
  ir_annot **attrs = ir_arena_alloc(a, sizeof *attrs * (size_t)(f->nattrs + 1));
  if (!attrs) return NULL;
  int n = 0;
  for (int i = 0; i < f->nattrs; i++)
    if (strcmp(f->attrs[i]->key, "global_symbol") != 0) attrs[n++] = f->attrs[i];
  if (!(attrs[n++] = ir_annot_new(a, "global_symbol", ir_str(a, sym)))) return NULL;
  return ir_func_new(a, sym, f->nparams, f->params, n, attrs, f->body);
}

/* Step 5: every kernel scheduled and lowered under its symbol kiln_k<i>, one shared object
 * through a temporary file; its bytes into c->code. */
static kiln_status schedule_and_codegen(builder *b, kiln_compiled *c, const tgt_target *t,
                                        const kiln_compile_options *opts, tune_db *db) {
  kiln_context *ctx = b->ctx;
  kiln_tir_module *tm = ir_module_new(ctx);
  if (!tm) return KILN_ERR_NOMEM;
  kiln_status st = KILN_OK;
  double t0 = now_s();
  for (int k = 0; !st && k < b->nkernels; k++) {
    bkernel *K = &b->kernels[k];
    ir_func *low = NULL;
    relay_schedule_source src;
    const char *warning = NULL;
    st = relay_build_schedule(ctx, tm->arena, K->prim, K->hash, t, db, &low, &src, &warning);
    if (st) {
      st = wrap_error(b, st, "kernel %s (hash %016llx)", K->name, (unsigned long long)K->hash);
      break;
    }
    K->source = (int)src;
    c->stats.nfrom_db += src == RELAY_SCHEDULE_DATABASE;
    if (warning && (st = add_warning(c, warning)) != KILN_OK) break;
    char sym[32];
    snprintf(sym, sizeof sym, "kiln_k%d", k);
    ir_func *f = rename_func(tm->arena, low, sym);
    st = f ? ir_module_add(tm, f) : (ctx->code ? ctx->code : KILN_ERR_NOMEM);
  }
  double t1 = now_s();
  c->stats.seconds_schedule = t1 - t0;
  char path[4096];
  int fd = -1;
  if (!st) {
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/kiln-build-XXXXXX.so", dir && *dir ? dir : "/tmp");
    if ((fd = mkstemps(path, 3)) < 0)
      st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "cannot create a temporary file '%s': %s", path,
                   strerror(errno));
    else close(fd);
  }
  if (!st) {
    tgt_codegen_options cg = {opts->opt_level ? opts->opt_level : 3};
    tgt_aot_options ao = {&cg, NULL, NULL, "kiln_kernels.so", NULL};
    st = tgt_aot_compile(ctx, t, tm, path, &ao);
    if (st) st = wrap_error(b, st, "generating code for %d kernels", b->nkernels);
    else st = read_whole(ctx, path, &c->code, &c->code_len);
  }
  if (fd >= 0) unlink(path);
  c->stats.seconds_codegen = now_s() - t1;
  kiln_tir_module_free(tm);
  return st;
}

/* The PARAMS section: every unique constant at its offset, zeros between. */
static kiln_status params_blob(builder *b, kiln_compiled *c) {
  c->params_len = (size_t)b->params_bytes;
  if (!c->params_len) return KILN_OK;
  unsigned char *p = ir_malloc(b->ctx, c->params_len);
  if (!p) return KILN_ERR_NOMEM;
  memset(p, 0, c->params_len);
  for (int i = 0; i < b->nparams; i++)
    if (b->params[i].nbytes) memcpy(p + b->params[i].offset, b->params[i].c->data, b->params[i].nbytes);
  c->params = p;
  return KILN_OK;
}

/* Checks opts->paddable against the inputs. */
static kiln_status check_paddable(builder *b, const kiln_compile_options *opts) {
  if (opts->npaddable < 0 || (opts->npaddable && !opts->paddable))
    return ir_fail(b->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "bad paddable list (npaddable = %d)",
                   opts->npaddable);
  for (int k = 0; k < opts->npaddable; k++) {
    const kiln_pad_axis *p = &opts->paddable[k];
    int i = p->input ? input_index(b, p->input) : -1;
    if (i < 0) {
      ir_strbuf sb;
      ir_sb_init(&sb, b->ctx);
      input_list(b, &sb);
      kiln_status st = ir_fail(b->ctx, IR_NO_SPAN, KILN_ERR_UNDEFINED,
                               "paddable axis %d: the model has no input '%s' (its inputs: %s)", k,
                               p->input ? p->input : "(null)", sb.data ? sb.data : "?");
      ir_sb_free(&sb);
      return st;
    }
    if (p->axis < 0 || p->axis >= b->inputs[i].ndim)
      return ir_fail(b->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                     "paddable axis %d: input '%s' has rank %d, so it has no axis %d", k, p->input,
                     b->inputs[i].ndim, p->axis);
  }
  return KILN_OK;
}

/* The body of kiln_compile, on an initialized builder; c receives the sections. */
static kiln_status compile(builder *b, int nbuckets, const kiln_bucket *buckets,
                           const kiln_compile_options *opts, kiln_compiled *c) {
  kiln_context *ctx = b->ctx;
  double t0 = now_s();
  if (opts->opt_level < 0 || opts->opt_level > 3)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "opt_level %d is not in 0..3", opts->opt_level);
  tgt_target t;
  kiln_status st = opts->target && *opts->target ? tgt_target_parse(ctx, opts->target, &t)
                                                 : tgt_target_host(ctx, &t);
  if (st) return wrap_error(b, st, "target '%s'", opts->target ? opts->target : "");
  if ((st = front(b, nbuckets, buckets)) != KILN_OK) return st;
  if ((st = check_paddable(b, opts)) != KILN_OK) return st;
  tune_db *db = NULL;
  if (opts->db_path) {
    if (access(opts->db_path, R_OK) != 0)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "cannot open the tuning database '%s': %s",
                     opts->db_path, strerror(errno));
    if ((st = tune_db_open(ctx, opts->db_path, &db)) != KILN_OK) return st;
  }
  st = schedule_and_codegen(b, c, &t, opts, db);
  tune_db_close(db);
  if (st) return st;
  for (int i = 0; i < b->nbuckets; i++)
    if ((st = plan_memory(b, &b->buckets[i])) != KILN_OK) return st;
  jctx j = {false};
  cJSON *meta = build_meta(b, &j, opts, &t);
  if ((st = json_text(ctx, meta, &j, &c->meta, &c->meta_len)) != KILN_OK) return st;
  cJSON *plan = build_plan(b, &j);
  if ((st = json_text(ctx, plan, &j, &c->plan, &c->plan_len)) != KILN_OK) return st;
  if ((st = params_blob(b, c)) != KILN_OK) return st;
  const char *name = opts->model_name ? opts->model_name : "model";
  if (!(c->model_name = ir_strdup(ctx, name))) return KILN_ERR_NOMEM;
  c->stats.nbuckets = b->nbuckets;
  c->stats.ncalls = b->ncalls;
  c->stats.nkernels = b->nkernels;
  c->stats.nwarnings = c->nwarnings;
  c->stats.params_bytes = c->params_len;
  c->stats.code_bytes = c->code_len;
  c->stats.seconds_passes = b->t_passes;
  c->stats.seconds_lower = b->t_lower;
  c->stats.seconds_total = now_s() - t0;
  return KILN_OK;
}

KILN_API kiln_status kiln_compile(kiln_relay_module *handle, int nbuckets,
                                  const kiln_bucket *buckets, const kiln_compile_options *opts,
                                  kiln_compiled **out) {
  relay_module *m = relay_api_module(handle);
  if (!m || !m->ctx) return rt_errorf(KILN_ERR_MISUSE, "kiln_compile: NULL module");
  kiln_context *ctx = m->ctx;
  if (!out) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_compile: NULL out");
  *out = NULL;
  ir_clear_error(ctx);
  kiln_compile_options defaults;
  memset(&defaults, 0, sizeof defaults);
  if (!opts) opts = &defaults;
  kiln_compiled *c = ir_malloc(ctx, sizeof *c);
  if (!c) return KILN_ERR_NOMEM;
  memset(c, 0, sizeof *c);
  c->ctx = ctx;
  builder b;
  kiln_status st = builder_init(&b, m);
  if (!st) st = compile(&b, nbuckets, buckets, opts, c);
  builder_free(&b);
  if (st) {
    kiln_compiled_free(c);
    if (!ctx->code) st = ir_fail(ctx, IR_NO_SPAN, st, "kiln_compile failed (%s)", kiln_status_str(st));
    return st;
  }
  *out = c;
  return KILN_OK;
}

/* The four sections in file order. */
static void sections(const kiln_compiled *c, rt_section_in s[4]) {
  s[0] = (rt_section_in){RT_SECTION_META, c->meta, c->meta_len};
  s[1] = (rt_section_in){RT_SECTION_PLAN, c->plan, c->plan_len};
  s[2] = (rt_section_in){RT_SECTION_PARAMS, c->params, c->params_len};
  s[3] = (rt_section_in){RT_SECTION_CODE, c->code, c->code_len};
}

/* Copies the thread's last error (set by the runtime) onto the context too. */
static kiln_status both_errors(kiln_context *ctx, kiln_status st) {
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", kiln_last_error());
  return ir_fail(ctx, IR_NO_SPAN, st, "%s", msg);
}

KILN_API kiln_status kiln_compiled_save(kiln_compiled *c, const char *path) {
  if (!c || !c->ctx) return rt_errorf(KILN_ERR_MISUSE, "kiln_compiled_save: NULL compiled model");
  if (!path) return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_compiled_save: NULL path");
  ir_clear_error(c->ctx);
  rt_section_in s[4];
  sections(c, s);
  kiln_status st = rt_artifact_write(path, s, 4);
  return st ? both_errors(c->ctx, st) : KILN_OK;
}

KILN_API kiln_status kiln_compiled_bytes(kiln_compiled *c, const void **data, size_t *size) {
  if (!c || !c->ctx) return rt_errorf(KILN_ERR_MISUSE, "kiln_compiled_bytes: NULL compiled model");
  if (!data || !size) return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_compiled_bytes: NULL out");
  if (!c->bytes) {
    rt_section_in s[4];
    sections(c, s);
    kiln_status st = rt_artifact_serialize(s, 4, &c->bytes, &c->nbytes);
    if (st) {
      c->bytes = NULL;
      return both_errors(c->ctx, st);
    }
  }
  *data = c->bytes;
  *size = (size_t)c->nbytes;
  return KILN_OK;
}

KILN_API kiln_status kiln_compiled_load(kiln_compiled *c, kiln_model **out) {
  if (!c || !c->ctx) return rt_errorf(KILN_ERR_MISUSE, "kiln_compiled_load: NULL compiled model");
  if (!out) return ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_compiled_load: NULL out");
  *out = NULL;
  const void *data;
  size_t size;
  kiln_status st = kiln_compiled_bytes(c, &data, &size);
  if (st) return st;
  st = kiln_model_load_memory(data, size, c->model_name, out);
  return st ? both_errors(c->ctx, st) : KILN_OK;
}

KILN_API kiln_status kiln_compiled_stats(const kiln_compiled *c, kiln_compile_stats *out) {
  if (!c || !out) return rt_errorf(KILN_ERR_MISUSE, "kiln_compiled_stats: NULL argument");
  *out = c->stats;
  return KILN_OK;
}

KILN_API const char *kiln_compiled_warning(const kiln_compiled *c, int i) {
  return c && i >= 0 && i < c->nwarnings ? c->warnings[i] : NULL;
}

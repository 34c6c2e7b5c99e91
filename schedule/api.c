/* api.c: the public kiln_schedule_* and kiln_kernel_* entry points (the researchers' flow:
 * TIR module -> schedule by hand or by the default rules -> trace -> kernel built in memory,
 * called and timed in this process). Schedules wrap schedule/schedule.h (instructions go
 * through the same table the trace replay uses, so the API and the JSON trace share one
 * argument convention); kernels wrap the tuner's builder (autotune/measure.h: the TIR
 * lowering pipeline + the JIT) and its in-process timing loop. */
#include <stdio.h>
#include <string.h>

#include "autotune/measure.h"
#include "ir/text.h"
#include "kiln/kiln.h"
#include "runtime/rt_internal.h"
#include "schedule/schedule.h"
#include "target/target.h"

#define CHECK_SCH(w) \
  if (!(w) || !(w)->s) return rt_errorf(KILN_ERR_MISUSE, "%s: NULL schedule", __func__)
#define CHECK_MOD(m) \
  if (!(m) || !(m)->ctx) return rt_errorf(KILN_ERR_MISUSE, "%s: NULL module", __func__)
#define CHECK_KERNEL(k) \
  if (!(k) || !(k)->built) return rt_errorf(KILN_ERR_MISUSE, "%s: NULL kernel", __func__)

struct kiln_schedule {
  kiln_context *ctx;
  sch_schedule *s;
};

struct kiln_kernel {
  kiln_context *ctx;
  tune_built *built;
  char name[128];
};

/* The replay entry of every instruction, indexed by sch_inst_kind (the table of trace.c is
 * private to it; both come from the same X-macro list). */
static const sch_apply_fn apply_entries[SCH_INST_COUNT] = {
#define X(e, n, f) f,
    SCH_INSTRUCTIONS(X)
#undef X
};

/* The function `func` of mod, or its only function when func is NULL. `who` names the
 * caller in messages. */
static kiln_status pick_func(kiln_tir_module *mod, const char *func, const char *who,
                             ir_func **out) {
  if (!func) {
    if (mod->nfuncs != 1)
      return ir_fail(mod->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                     "%s: the module has %d functions; name the one to use", who,
                     (int)mod->nfuncs);
    *out = mod->funcs[0];
    return KILN_OK;
  }
  *out = ir_module_find(mod, func);
  if (!*out)
    return ir_fail(mod->ctx, IR_NO_SPAN, KILN_ERR_UNDEFINED, "%s: no function '%s' in the module",
                   who, func);
  return KILN_OK;
}

/* The target string (NULL or "": the host). */
static kiln_status read_target(kiln_context *ctx, const char *target, tgt_target *t) {
  return target && *target ? tgt_target_parse(ctx, target, t) : tgt_target_host(ctx, t);
}

/* ---- Schedules ------------------------------------------------------------------------- */

KILN_API kiln_status kiln_schedule_new(kiln_tir_module *mod, const char *func, uint64_t seed,
                                       kiln_schedule **out) {
  CHECK_MOD(mod);
  if (!out)
    return ir_fail(mod->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_schedule_new: NULL out");
  *out = NULL;
  ir_clear_error(mod->ctx);
  ir_func *f;
  kiln_status st = pick_func(mod, func, "kiln_schedule_new", &f);
  if (st) return st;
  kiln_schedule *w = ir_malloc(mod->ctx, sizeof *w);
  if (!w) return KILN_ERR_NOMEM;
  w->ctx = mod->ctx;
  w->s = sch_new(mod->ctx, f, seed);
  if (!w->s) {
    ir_free(mod->ctx, w, sizeof *w);
    return mod->ctx->code ? mod->ctx->code : KILN_ERR_NOMEM;
  }
  *out = w;
  return KILN_OK;
}

KILN_API void kiln_schedule_free(kiln_schedule *w) {
  if (!w || !w->s) return;
  kiln_context *ctx = w->ctx;
  sch_free(w->s);
  ir_free(ctx, w, sizeof *w);
}

/* What a failed instruction must put back so that the schedule is as it was: the function,
 * the trace's length, the RV table's length (RVs made by the failed call vanish) and the
 * sampling and naming state. Arena memory the call used stays allocated until the schedule
 * is freed. */
typedef struct snapshot {
  ir_func *func;
  int32_t ninsts, nrvs, counter;
  uint64_t rng;
} snapshot;

static snapshot take_snapshot(const sch_schedule *s) {
  return (snapshot){s->func, s->trace.ninsts, s->nrvs, s->counter, s->rng};
}

static void restore(sch_schedule *s, const snapshot *sn) {
  s->func = sn->func;
  s->trace.ninsts = sn->ninsts;
  s->nrvs = sn->nrvs;
  s->counter = sn->counter;
  s->rng = sn->rng;
}

/* Re-raises the error of a failed instruction `inst` so that its message starts with the
 * instruction's name (the replay entries word their argument errors for traces: "trace:
 * split takes ..."; that prefix is dropped). MISUSE from a primitive means an argument of
 * the wrong kind, which the API reports as PARSE. */
static kiln_status apply_error(kiln_context *ctx, const char *inst, kiln_status st) {
  if (st == KILN_ERR_NOMEM) return st;
  if (st == KILN_ERR_MISUSE) st = KILN_ERR_PARSE;
  char msg[sizeof ctx->errmsg];
  snprintf(msg, sizeof msg, "%s", ctx->code ? ctx->errmsg : kiln_status_str(st));
  const char *m = msg;
  if (strncmp(m, "trace: ", 7) == 0) m += 7;
  size_t n = strlen(inst);
  if (strncmp(m, inst, n) == 0 && m[n] == ':') return ir_fail(ctx, IR_NO_SPAN, st, "%s", m);
  return ir_fail(ctx, IR_NO_SPAN, st, "%s: %s", inst, m);
}

/* Converts the public arguments, checking what the instruction entries cannot: kinds, RV
 * handles that the schedule never gave out, strings that are NULL. */
static kiln_status convert_args(sch_schedule *s, const char *inst, int nargs,
                                const kiln_sch_arg *args, sch_arg *out) {
  for (int i = 0; i < nargs; i++) {
    const kiln_sch_arg *a = &args[i];
    switch (a->kind) {
    case KILN_SCH_ARG_RV:
      if (a->i < 0 || a->i > INT32_MAX || !sch_rv_get(s, (sch_rv)a->i))
        return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                       "%s: argument %d: %lld is not a random variable of this schedule", inst,
                       i, (long long)a->i);
      out[i] = (sch_arg){SCH_ARG_RV, a->i, 0, NULL};
      break;
    case KILN_SCH_ARG_INT: out[i] = sch_arg_int(a->i); break;
    case KILN_SCH_ARG_FLOAT: out[i] = sch_arg_float(a->f); break;
    case KILN_SCH_ARG_STR:
      if (!a->s)
        return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "%s: argument %d: NULL string", inst,
                       i);
      out[i] = sch_arg_str(a->s);
      break;
    default:
      return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "%s: argument %d has an unknown kind %d (RV 0, INT 1, FLOAT 2, STR 3)",
                     inst, i, (int)a->kind);
    }
  }
  return KILN_OK;
}

/* One instruction through the replay table: arguments as the trace JSON writes them,
 * sampling instructions sample afresh. On any error the schedule is restored. */
KILN_API kiln_status kiln_schedule_apply(kiln_schedule *w, const char *inst, int nargs,
                                         const kiln_sch_arg *args, int *nout, int32_t *outs) {
  CHECK_SCH(w);
  sch_schedule *s = w->s;
  ir_clear_error(s->ctx);
  if (!inst || !nout || !outs || nargs < 0 || (nargs > 0 && !args))
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "kiln_schedule_apply: NULL instruction, arguments or outputs");
  *nout = 0;
  int kind = sch_inst_lookup(inst);
  if (kind < 0)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_UNDEFINED,
                   "kiln_schedule_apply: unknown instruction '%.60s'", inst);
  const char *name = sch_inst_name(kind);
  if (nargs > KILN_SCH_MAX_ARGS)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "%s: %d arguments (at most %d)", name,
                   nargs, KILN_SCH_MAX_ARGS);
  sch_arg in[KILN_SCH_MAX_ARGS];
  kiln_status st = convert_args(s, name, nargs, args, in);
  if (st) return st;
  snapshot sn = take_snapshot(s);
  sch_rv res[SCH_MAX_INST_ARGS];
  int n = 0;
  st = apply_entries[kind](s, nargs, in, -1, NULL, res, &n);
  if (st) {
    restore(s, &sn);
    return apply_error(s->ctx, name, st);
  }
  for (int i = 0; i < n; i++) outs[i] = res[i];
  *nout = n;
  return KILN_OK;
}

KILN_API int kiln_schedule_rv_kind(kiln_schedule *w, int32_t h) {
  const sch_rv_info *r = w && w->s ? sch_rv_get(w->s, h) : NULL;
  return r ? (int)r->kind : -1;
}

KILN_API kiln_status kiln_schedule_rv_int(kiln_schedule *w, int32_t h, int64_t *out) {
  CHECK_SCH(w);
  if (!out)
    return ir_fail(w->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_schedule_rv_int: NULL out");
  ir_clear_error(w->ctx);
  return sch_rv_int(w->s, h, out);
}

KILN_API const char *kiln_schedule_rv_name(kiln_schedule *w, int32_t h) {
  const sch_rv_info *r = w && w->s ? sch_rv_get(w->s, h) : NULL;
  if (!r) return NULL;
  if (r->kind == SCH_RV_BLOCK) return r->block;
  if (r->kind != SCH_RV_LOOP) return NULL;
  if (r->loop) return r->loop->name;
  return r->special == SCH_LOC_INLINE ? "<inline>" : "<root>";
}

KILN_API kiln_status kiln_schedule_apply_default_rules(kiln_schedule *w, const char *target) {
  CHECK_SCH(w);
  ir_clear_error(w->ctx);
  tgt_target t;
  kiln_status st = read_target(w->ctx, target, &t);
  if (st) return st;
  sch_target_info ti;
  sch_target_info_from(&t, &ti);
  snapshot sn = take_snapshot(w->s);
  st = sch_apply_default_rules(w->s, &ti);
  if (st) restore(w->s, &sn);
  return st;
}

KILN_API kiln_status kiln_schedule_trace(kiln_schedule *w, char **json) {
  CHECK_SCH(w);
  if (!json)
    return ir_fail(w->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_schedule_trace: NULL out");
  *json = NULL;
  ir_clear_error(w->ctx);
  return sch_trace_to_json(w->ctx, &w->s->trace, json, NULL);
}

/* The parsed trace lives in a scratch arena for the replay only (the schedule records its
 * own copies of the instructions). */
KILN_API kiln_status kiln_schedule_replay(kiln_schedule *w, const char *json) {
  CHECK_SCH(w);
  if (!json)
    return ir_fail(w->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_schedule_replay: NULL trace");
  ir_clear_error(w->ctx);
  ir_arena *scratch = ir_arena_new(w->ctx);
  if (!scratch) return KILN_ERR_NOMEM;
  sch_trace t;
  snapshot sn = take_snapshot(w->s);
  kiln_status st = sch_trace_from_json(w->ctx, scratch, json, &t);
  if (!st) st = sch_replay(w->s, &t, 0, NULL);
  if (st) restore(w->s, &sn);
  ir_arena_free(scratch);
  return st;
}

KILN_API kiln_status kiln_schedule_module(kiln_schedule *w, kiln_tir_module **out) {
  CHECK_SCH(w);
  if (!out)
    return ir_fail(w->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_schedule_module: NULL out");
  *out = NULL;
  ir_clear_error(w->ctx);
  kiln_tir_module *m = ir_module_new(w->ctx);
  if (!m) return KILN_ERR_NOMEM;
  ir_func *copy = (ir_func *)ir_deep_copy(m->arena, &w->s->func->h);
  kiln_status st = copy ? ir_module_add(m, copy) : KILN_ERR_NOMEM;
  if (st) {
    kiln_tir_module_free(m);
    return st;
  }
  *out = m;
  return KILN_OK;
}

/* ---- Kernels --------------------------------------------------------------------------- */

KILN_API kiln_status kiln_kernel_build(kiln_tir_module *mod, const char *func,
                                       const char *target, kiln_kernel **out) {
  CHECK_MOD(mod);
  if (!out) return ir_fail(mod->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_kernel_build: NULL out");
  *out = NULL;
  ir_clear_error(mod->ctx);
  ir_func *f;
  kiln_status st = pick_func(mod, func, "kiln_kernel_build", &f);
  if (st) return st;
  tgt_target t;
  if ((st = read_target(mod->ctx, target, &t))) return st;
  if (!t.is_host)
    return ir_fail(mod->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "kiln_kernel_build: target '%s' is not this machine; kernels run in this "
                   "process (use kiln_compile for other targets)", t.canonical);
  kiln_kernel *k = ir_malloc(mod->ctx, sizeof *k);
  if (!k) return KILN_ERR_NOMEM;
  memset(k, 0, sizeof *k);
  k->ctx = mod->ctx;
  snprintf(k->name, sizeof k->name, "%s", f->name);
  if ((st = tune_build(mod->ctx, &t, f, &k->built))) {
    ir_free(mod->ctx, k, sizeof *k);
    return st;
  }
  *out = k;
  return KILN_OK;
}

KILN_API void kiln_kernel_free(kiln_kernel *k) {
  if (!k || !k->built) return;
  tune_built_free(k->built);
  ir_free(k->ctx, k, sizeof *k);
}

KILN_API int kiln_kernel_num_params(kiln_kernel *k) {
  return k && k->built ? tune_built_nparams(k->built) : 0;
}

KILN_API kiln_status kiln_kernel_lowered_text(kiln_kernel *k, char **out) {
  CHECK_KERNEL(k);
  if (!out)
    return ir_fail(k->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "kiln_kernel_lowered_text: NULL out");
  *out = NULL;
  ir_clear_error(k->ctx);
  ir_strbuf sb;
  ir_sb_init(&sb, k->ctx);
  kiln_status st = ir_print_module(tune_built_lowered(k->built), &sb);
  if (st) {
    ir_sb_free(&sb);
    return st;
  }
  *out = ir_sb_take(&sb, NULL);
  return *out ? KILN_OK : KILN_ERR_NOMEM;
}

static kiln_status check_call_args(kiln_kernel *k, const kiln_tensor *args, int nargs,
                                   const char *who) {
  if (nargs < 0 || (nargs > 0 && !args))
    return ir_fail(k->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "%s: kernel '%s': NULL arguments", who,
                   k->name);
  return KILN_OK;
}

/* The kernel's failing status becomes KILN_ERR_RUNTIME on the context with the kernel's own
 * message (it reports through kiln_rt_error, i.e. the thread's last error). */
static kiln_status kernel_error(kiln_kernel *k, int32_t st) {
  char msg[600];
  snprintf(msg, sizeof msg, "%s", kiln_last_error());
  return ir_fail(k->ctx, IR_NO_SPAN, KILN_ERR_RUNTIME, "kernel '%s' failed (%s): %s", k->name,
                 st > 0 && st < KILN_STATUS_COUNT ? kiln_status_str((kiln_status)st) : "error",
                 msg);
}

KILN_API kiln_status kiln_kernel_call(kiln_kernel *k, const kiln_tensor *args, int nargs) {
  CHECK_KERNEL(k);
  ir_clear_error(k->ctx);
  kiln_status st = check_call_args(k, args, nargs, "kiln_kernel_call");
  if (st) return st;
  int32_t rc = tune_built_fn(k->built)(args, nargs);
  return rc ? kernel_error(k, rc) : KILN_OK;
}

/* Times in the calling thread with the tuner's loop (tune_time_calls); the kernel checks its
 * arguments on every call, so bad arguments end the timing with the kernel's error. */
KILN_API kiln_status kiln_kernel_time(kiln_kernel *k, const kiln_tensor *args, int nargs,
                                      int warmup, int min_repeats, double min_seconds,
                                      kiln_timing *out) {
  CHECK_KERNEL(k);
  ir_clear_error(k->ctx);
  kiln_status st = check_call_args(k, args, nargs, "kiln_kernel_time");
  if (st) return st;
  if (!out || warmup < 0 || min_repeats < 1 || min_repeats > TUNE_MAX_REPEATS ||
      !(min_seconds >= 0) || min_seconds > 3600)
    return ir_fail(k->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "kiln_kernel_time: kernel '%s': need warmup >= 0, 1 <= min_repeats <= %d, "
                   "0 <= min_seconds <= 3600 and an output", k->name, TUNE_MAX_REPEATS);
  memset(out, 0, sizeof *out);
  double *times = ir_malloc(k->ctx, sizeof(double) * TUNE_MAX_REPEATS);
  if (!times) return KILN_ERR_NOMEM;
  int n = 0;
  int32_t rc = tune_time_calls(k->built, args, warmup, min_repeats, min_seconds, times, &n);
  if (rc) {
    ir_free(k->ctx, times, sizeof(double) * TUNE_MAX_REPEATS);
    return kernel_error(k, rc);
  }
  tune_time_stats ts;
  tune_time_summary(times, n, &ts);
  ir_free(k->ctx, times, sizeof(double) * TUNE_MAX_REPEATS);
  *out = (kiln_timing){ts.median_s, ts.min_s, ts.max_s, ts.mean_s, ts.stddev_s, n};
  return KILN_OK;
}

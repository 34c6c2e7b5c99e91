/* trace.c: schedule traces as data. A trace is the list of instructions a schedule ran; it
 * prints to JSON (one instruction per line, RVs renumbered in order of definition so equal
 * schedules print equal text), parses back from JSON (cJSON does the syntax; every field is
 * checked here, and anything malformed is a PARSE error naming the instruction), and replays
 * on a fresh schedule of the unscheduled function through the instruction table, optionally
 * re-sampling chosen decisions: the tuner's way to rebuild and mutate candidates. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ir/lex.h"
#include "kiln/kiln.h"
#include "schedule/schedule.h"

/* Integers a JSON number holds exactly (cJSON reads numbers as doubles). */
#define JSON_INT_LIMIT 9007199254740992.0 /* 2^53 */
#define JSON_INT_MAX ((int64_t)1 << 53)

static bool is_sampling(int kind) {
  return kind == SCH_INST_SAMPLE_PERFECT_TILE || kind == SCH_INST_SAMPLE_CATEGORICAL ||
         kind == SCH_INST_SAMPLE_COMPUTE_LOCATION;
}

/* RV index maps (trace index -> something) over ir_ptrmap: keys and values are stored
 * biased by one because the map reserves NULL. */
static void *rv_key(int64_t rv) { return (void *)(uintptr_t)(rv + 1); }
static bool rv_lookup(const ir_ptrmap *m, int64_t rv, int64_t *out) {
  void *v = ir_ptrmap_get(m, rv_key(rv));
  if (!v) return false;
  *out = (int64_t)(uintptr_t)v - 1;
  return true;
}
static kiln_status rv_define(ir_ptrmap *m, int64_t rv, int64_t val) {
  return ir_ptrmap_put(m, rv_key(rv), (void *)(uintptr_t)(val + 1));
}

/* ---- Writing --------------------------------------------------------------------------- */

/* A JSON string literal: quotes, backslashes and control characters escaped; other bytes
 * (UTF-8 included) are written as they are, which cJSON reads back unchanged. */
static void put_json_string(ir_strbuf *sb, const char *s) {
  ir_sb_puts(sb, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"': ir_sb_puts(sb, "\\\""); break;
    case '\\': ir_sb_puts(sb, "\\\\"); break;
    case '\n': ir_sb_puts(sb, "\\n"); break;
    case '\t': ir_sb_puts(sb, "\\t"); break;
    case '\r': ir_sb_puts(sb, "\\r"); break;
    default:
      if (*p < 0x20) ir_sb_printf(sb, "\\u%04x", *p);
      else ir_sb_putn(sb, (const char *)p, 1);
    }
  }
  ir_sb_puts(sb, "\"");
}

/* An integer, or UNSUPPORTED when JSON (as cJSON reads it) cannot hold it exactly. */
static kiln_status put_json_int(ir_strbuf *sb, int64_t v, int k, const char *what) {
  if (v > JSON_INT_MAX || v < -JSON_INT_MAX)
    return ir_fail(sb->ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "trace: instruction %d: %s %lld is beyond 2^53 and cannot be written "
                   "exactly in JSON", k, what, (long long)v);
  ir_sb_printf(sb, "%lld", (long long)v);
  return KILN_OK;
}

/* {"f": v} with the shortest text that reads back as the same double; the non-finite values,
 * which JSON numbers cannot spell, as the strings "inf", "-inf" and "nan". */
static void put_json_float(ir_strbuf *sb, double v) {
  if (isnan(v)) ir_sb_puts(sb, "{\"f\": \"nan\"}");
  else if (isinf(v)) ir_sb_puts(sb, v > 0 ? "{\"f\": \"inf\"}" : "{\"f\": \"-inf\"}");
  else {
    char buf[64];
    ir_format_float_shortest(buf, sizeof buf, v, NULL, NULL);
    ir_sb_printf(sb, "{\"f\": %s}", buf);
  }
}

/* Writes the instructions into sb; RVs are renumbered 0, 1, 2, ... in order of definition
 * (through `names`), so the text does not depend on how the recording schedule numbered its
 * RVs (constants made with sch_int take indices but never appear in a trace). */
static kiln_status write_trace(ir_strbuf *sb, const sch_trace *t, ir_ptrmap *names) {
  int64_t next = 0;
  kiln_status st;
  ir_sb_puts(sb, "{\"version\": 1, \"insts\": [");
  for (int k = 0; k < t->ninsts; k++) {
    const sch_inst *in = &t->insts[k];
    if (in->kind < 0 || in->kind >= SCH_INST_COUNT)
      return ir_fail(sb->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                     "trace: instruction %d has no valid kind (%d)", k, (int)in->kind);
    const char *name = sch_inst_name(in->kind);
    if ((in->ninputs > 0 && !in->inputs) || (in->noutputs > 0 && !in->outputs) ||
        (in->ndecision > 0 && !in->decision))
      return ir_fail(sb->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                     "trace: instruction %d (%s) lacks the arrays its counts announce", k, name);
    ir_sb_puts(sb, k ? ",\n  {\"kind\": " : "\n  {\"kind\": ");
    put_json_string(sb, name);
    ir_sb_puts(sb, ", \"inputs\": [");
    for (int i = 0; i < in->ninputs; i++) {
      const sch_arg *a = &in->inputs[i];
      if (i) ir_sb_puts(sb, ", ");
      switch (a->kind) {
      case SCH_ARG_RV: {
        int64_t idx;
        if (!rv_lookup(names, a->i, &idx))
          return ir_fail(sb->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                         "trace: instruction %d (%s): input %d is RV %lld, which no earlier "
                         "instruction outputs", k, name, i, (long long)a->i);
        ir_sb_printf(sb, "\"$%lld\"", (long long)idx);
        break;
      }
      case SCH_ARG_INT:
        if ((st = put_json_int(sb, a->i, k, "integer input"))) return st;
        break;
      case SCH_ARG_FLOAT: put_json_float(sb, a->f); break;
      case SCH_ARG_STR:
        ir_sb_puts(sb, "{\"s\": ");
        put_json_string(sb, a->s ? a->s : "");
        ir_sb_puts(sb, "}");
        break;
      default:
        return ir_fail(sb->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                       "trace: instruction %d (%s): input %d has no valid kind", k, name, i);
      }
    }
    ir_sb_puts(sb, "], \"outputs\": [");
    for (int i = 0; i < in->noutputs; i++) {
      if ((st = rv_define(names, in->outputs[i], next))) return st;
      ir_sb_printf(sb, "%s%lld", i ? ", " : "", (long long)next++);
    }
    ir_sb_puts(sb, "]");
    if (in->ndecision >= 0) {
      ir_sb_puts(sb, ", \"decision\": [");
      for (int i = 0; i < in->ndecision; i++) {
        if (i) ir_sb_puts(sb, ", ");
        if ((st = put_json_int(sb, in->decision[i], k, "decision"))) return st;
      }
      ir_sb_puts(sb, "]");
    }
    ir_sb_puts(sb, "}");
  }
  ir_sb_puts(sb, t->ninsts ? "\n]}\n" : "]}\n");
  return KILN_OK;
}

kiln_status sch_trace_to_json(kiln_context *ctx, const sch_trace *t, char **json, size_t *len) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!t || !json || (t->ninsts > 0 && !t->insts))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "trace: no trace or no output given");
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  ir_ptrmap names;
  ir_ptrmap_init(&names, ctx);
  kiln_status st = write_trace(&sb, t, &names);
  ir_ptrmap_free(&names);
  if (st) {
    ir_sb_free(&sb);
    return st;
  }
  size_t n;
  char *text = ir_sb_take(&sb, &n);
  if (!text) return KILN_ERR_NOMEM;
  *json = text;
  if (len) *len = n;
  return KILN_OK;
}

/* ---- Reading --------------------------------------------------------------------------- */

/* What the reader knows while checking one instruction, for messages. */
typedef struct reader {
  kiln_context *ctx;
  ir_arena *arena;
  ir_ptrmap defined; /* trace RV indices output so far (value unused) */
  int k;             /* instruction index */
  const char *kind;  /* its kind, once known */
} reader;

static kiln_status bad(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static kiln_status bad(reader *r, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (r->kind)
    return ir_fail(r->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "trace: instruction %d (%s): %s", r->k,
                   r->kind, msg);
  return ir_fail(r->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "trace: instruction %d: %s", r->k, msg);
}

/* A JSON number that is an integer JSON holds exactly. */
static bool json_int(const cJSON *j, int64_t *out) {
  if (!cJSON_IsNumber(j)) return false;
  double v = j->valuedouble;
  if (!(v >= -JSON_INT_LIMIT && v <= JSON_INT_LIMIT) || v != floor(v)) return false;
  *out = (int64_t)v;
  return true;
}

/* "$<index>": decimal digits only, at most INT32_MAX. */
static bool parse_rv_ref(const char *s, int64_t *out) {
  if (s[0] != '$' || !s[1]) return false;
  int64_t v = 0;
  for (const char *p = s + 1; *p; p++) {
    if (*p < '0' || *p > '9') return false;
    v = v * 10 + (*p - '0');
    if (v > INT32_MAX) return false;
  }
  *out = v;
  return true;
}

/* input = "$<index>" | integer | {"f": number | "inf" | "-inf" | "nan"} | {"s": string} */
static kiln_status read_input(reader *r, int i, const cJSON *j, sch_arg *out) {
  int64_t v;
  if (cJSON_IsString(j)) {
    if (!parse_rv_ref(j->valuestring, &v))
      return bad(r, "input %d: the string \"%.40s\" is not an RV reference ($<index>)", i,
                 j->valuestring);
    if (!rv_lookup(&r->defined, v, &v))
      return bad(r, "input %d: $%s is not an output of an earlier instruction", i,
                 j->valuestring + 1);
    *out = (sch_arg){SCH_ARG_RV, v, 0, NULL};
    return KILN_OK;
  }
  if (cJSON_IsNumber(j)) {
    if (!json_int(j, &v))
      return bad(r, "input %d: %g is not an integer within +-2^53 (floats are written as "
                 "{\"f\": value})", i, j->valuedouble);
    *out = sch_arg_int(v);
    return KILN_OK;
  }
  if (cJSON_IsObject(j)) {
    const cJSON *f = j->child;
    if (!f || f->next || !f->string || (strcmp(f->string, "f") && strcmp(f->string, "s")))
      return bad(r, "input %d: an object input must have exactly one field, \"f\" or \"s\"", i);
    if (f->string[0] == 's') {
      if (!cJSON_IsString(f)) return bad(r, "input %d: \"s\" must be a string", i);
      const char *s = ir_arena_strdup(r->arena, f->valuestring);
      if (!s) return KILN_ERR_NOMEM;
      *out = sch_arg_str(s);
      return KILN_OK;
    }
    if (cJSON_IsNumber(f)) {
      if (!isfinite(f->valuedouble))
        return bad(r, "input %d: the float is out of range", i);
      *out = sch_arg_float(f->valuedouble);
      return KILN_OK;
    }
    if (cJSON_IsString(f)) {
      const char *s = f->valuestring;
      if (!strcmp(s, "inf")) *out = sch_arg_float(INFINITY);
      else if (!strcmp(s, "-inf")) *out = sch_arg_float(-INFINITY);
      else if (!strcmp(s, "nan")) *out = sch_arg_float(NAN);
      else return bad(r, "input %d: \"f\" must be a number, \"inf\", \"-inf\" or \"nan\"", i);
      return KILN_OK;
    }
    return bad(r, "input %d: \"f\" must be a number, \"inf\", \"-inf\" or \"nan\"", i);
  }
  return bad(r, "input %d is neither an RV reference, an integer, {\"f\": ...} nor "
             "{\"s\": ...}", i);
}

/* The array field `what` with at most SCH_MAX_INST_ARGS elements; its size in *n. */
static kiln_status check_array(reader *r, const cJSON *j, const char *what, int *n) {
  if (!cJSON_IsArray(j)) return bad(r, "\"%s\" is not an array", what);
  int cnt = 0;
  for (const cJSON *e = j->child; e; e = e->next)
    if (++cnt > SCH_MAX_INST_ARGS)
      return bad(r, "\"%s\" has more than %d elements", what, SCH_MAX_INST_ARGS);
  *n = cnt;
  return KILN_OK;
}

/* inst = {"kind": string, "inputs": [input...], "outputs": [index...],
 *         "decision": [integer...]?}   (decision only on sampling instructions) */
static kiln_status read_inst(reader *r, const cJSON *j, sch_inst *out) {
  if (!cJSON_IsObject(j)) return bad(r, "not an object");
  const cJSON *kind = NULL, *inputs = NULL, *outputs = NULL, *decision = NULL;
  const char *unknown = NULL; /* reported once the kind is known, for a better message */
  for (const cJSON *f = j->child; f; f = f->next) {
    const cJSON **slot = !strcmp(f->string, "kind")       ? &kind
                         : !strcmp(f->string, "inputs")   ? &inputs
                         : !strcmp(f->string, "outputs")  ? &outputs
                         : !strcmp(f->string, "decision") ? &decision
                                                          : NULL;
    if (!slot) {
      if (!unknown) unknown = f->string;
      continue;
    }
    if (*slot) return bad(r, "field \"%s\" appears twice", f->string);
    *slot = f;
  }
  if (!kind) return bad(r, "no \"kind\"");
  if (!cJSON_IsString(kind)) return bad(r, "\"kind\" is not a string");
  int k = sch_inst_lookup(kind->valuestring);
  if (k < 0) return bad(r, "unknown instruction kind \"%.60s\"", kind->valuestring);
  r->kind = sch_inst_name(k);
  if (unknown) return bad(r, "unknown field \"%.40s\"", unknown);
  if (!inputs) return bad(r, "no \"inputs\"");
  if (!outputs) return bad(r, "no \"outputs\"");
  if (decision && !is_sampling(k)) return bad(r, "only sampling instructions have a decision");

  sch_inst in = {.kind = k, .ndecision = -1};
  kiln_status st;
  int n, i;
  const cJSON *e;
  if ((st = check_array(r, inputs, "inputs", &n))) return st;
  if (n && !(in.inputs = ir_arena_alloc(r->arena, sizeof *in.inputs * (size_t)n)))
    return KILN_ERR_NOMEM;
  for (e = inputs->child, i = 0; e; e = e->next, i++)
    if ((st = read_input(r, i, e, &in.inputs[i]))) return st;
  in.ninputs = n;

  if ((st = check_array(r, outputs, "outputs", &n))) return st;
  if (n && !(in.outputs = ir_arena_alloc(r->arena, sizeof *in.outputs * (size_t)n)))
    return KILN_ERR_NOMEM;
  for (e = outputs->child, i = 0; e; e = e->next, i++) {
    int64_t v;
    if (!json_int(e, &v) || v < 0 || v > INT32_MAX)
      return bad(r, "output %d is not an RV index (an integer from 0 to %d)", i, INT32_MAX);
    in.outputs[i] = (sch_rv)v;
  }
  in.noutputs = n;
  /* Outputs become visible to later instructions only (an instruction cannot use its own). */
  for (i = 0; i < in.noutputs; i++)
    if ((st = rv_define(&r->defined, in.outputs[i], in.outputs[i]))) return st;

  if (decision) {
    if ((st = check_array(r, decision, "decision", &n))) return st;
    if (n && !(in.decision = ir_arena_alloc(r->arena, sizeof *in.decision * (size_t)n)))
      return KILN_ERR_NOMEM;
    for (e = decision->child, i = 0; e; e = e->next, i++)
      if (!json_int(e, &in.decision[i]))
        return bad(r, "decision %d is not an integer within +-2^53", i);
    in.ndecision = n;
  }
  *out = in;
  return KILN_OK;
}

/* trace = {"version": 1, "insts": [inst...]} */
static kiln_status read_trace(reader *r, const cJSON *root, sch_trace *out) {
  r->k = -1;
  if (!cJSON_IsObject(root))
    return ir_fail(r->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "trace: the JSON is not an object");
  const cJSON *version = NULL, *insts = NULL;
  for (const cJSON *f = root->child; f; f = f->next) {
    const cJSON **slot = !strcmp(f->string, "version") ? &version
                         : !strcmp(f->string, "insts") ? &insts
                                                       : NULL;
    if (!slot)
      return ir_fail(r->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "trace: unknown field \"%.40s\"",
                     f->string);
    if (*slot)
      return ir_fail(r->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "trace: field \"%s\" appears twice",
                     f->string);
    *slot = f;
  }
  int64_t v;
  if (!version || !json_int(version, &v))
    return ir_fail(r->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "trace: no integer \"version\"");
  if (v != 1)
    return ir_fail(r->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: unsupported version %lld (this kiln reads version 1)", (long long)v);
  if (!insts || !cJSON_IsArray(insts))
    return ir_fail(r->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "trace: no \"insts\" array");
  int n = 0;
  for (const cJSON *e = insts->child; e; e = e->next) {
    if (n == INT32_MAX / (int)sizeof(sch_inst))
      return ir_fail(r->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "trace: too many instructions");
    n++;
  }
  sch_inst *list = n ? ir_arena_alloc(r->arena, sizeof *list * (size_t)n) : NULL;
  if (n && !list) return KILN_ERR_NOMEM;
  int k = 0;
  for (const cJSON *e = insts->child; e; e = e->next, k++) {
    r->k = k;
    r->kind = NULL;
    kiln_status st = read_inst(r, e, &list[k]);
    if (st) return st;
  }
  *out = (sch_trace){.arena = r->arena, .ninsts = n, .cap = n, .insts = list};
  return KILN_OK;
}

kiln_status sch_trace_from_json(kiln_context *ctx, ir_arena *arena, const char *json,
                                sch_trace *out) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!arena || !json || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "trace: no arena, text or output given");
  /* cJSON allocates its tree with the C allocator (its hooks are process-wide, so they cannot
   * follow this context); the tree is freed before returning. */
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(json, &end, true);
  if (!root)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE, "trace: malformed JSON at byte %zu",
                   end && end >= json ? (size_t)(end - json) : (size_t)0);
  reader r = {.ctx = ctx, .arena = arena};
  ir_ptrmap_init(&r.defined, ctx);
  sch_trace t;
  kiln_status st = read_trace(&r, root, &t);
  ir_ptrmap_free(&r.defined);
  cJSON_Delete(root);
  if (st) return st;
  *out = t;
  return KILN_OK;
}

/* ---- Replay ---------------------------------------------------------------------------- */

static const sch_apply_fn apply_entries[SCH_INST_COUNT] = {
#define X(e, n, f) f,
    SCH_INSTRUCTIONS(X)
#undef X
};

static bool in_list(int k, int n, const int *list) {
  for (int i = 0; i < n; i++)
    if (list[i] == k) return true;
  return false;
}

/* Runs instruction k of t on s with its RV inputs mapped through `map` (trace index ->
 * s's RV) and maps its outputs. */
static kiln_status replay_one(sch_schedule *s, const sch_trace *t, int k, bool resample,
                              ir_ptrmap *map) {
  static const int64_t no_values[1] = {0};
  const sch_inst *in = &t->insts[k];
  if (in->kind < 0 || in->kind >= SCH_INST_COUNT)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "replay: instruction %d has no valid kind (%d)", k, (int)in->kind);
  const char *name = sch_inst_name(in->kind);
  if (in->ninputs < 0 || in->ninputs > SCH_MAX_INST_ARGS || in->noutputs < 0 ||
      in->noutputs > SCH_MAX_INST_ARGS || in->ndecision > SCH_MAX_INST_ARGS)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "replay: instruction %d (%s) has more than %d inputs, outputs or decisions",
                   k, name, SCH_MAX_INST_ARGS);
  if ((in->ninputs && !in->inputs) || (in->noutputs && !in->outputs) ||
      (in->ndecision > 0 && !in->decision))
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "replay: instruction %d (%s) lacks the arrays its counts announce", k, name);
  sch_arg args[SCH_MAX_INST_ARGS];
  for (int i = 0; i < in->ninputs; i++) {
    args[i] = in->inputs[i];
    if (args[i].kind != SCH_ARG_RV) continue;
    int64_t rv;
    if (!rv_lookup(map, args[i].i, &rv))
      return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "replay: instruction %d (%s): input %d is $%lld, which no earlier "
                     "instruction outputs", k, name, i, (long long)args[i].i);
    args[i].i = rv;
  }
  const int64_t *decision = NULL;
  int ndecision = -1;
  if (!resample && in->ndecision >= 0) {
    ndecision = in->ndecision;
    decision = in->decision ? in->decision : no_values;
  }

  sch_rv outs[SCH_MAX_INST_ARGS];
  int nout = 0;
  ir_clear_error(s->ctx);
  kiln_status st = apply_entries[in->kind](s, in->ninputs, args, ndecision, decision, outs,
                                           &nout);
  if (st) {
    char msg[800];
    snprintf(msg, sizeof msg, "%s",
             kiln_context_errcode(s->ctx) ? kiln_context_errmsg(s->ctx) : kiln_status_str(st));
    return ir_fail(s->ctx, IR_NO_SPAN, st, "replay: instruction %d (%s): %s", k, name, msg);
  }
  if (nout != in->noutputs)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_SCHEDULE,
                   "replay diverged at instruction %d (%s): it gave %d outputs, the trace "
                   "recorded %d", k, name, nout, (int)in->noutputs);
  for (int i = 0; i < nout; i++) {
    if (in->outputs[i] < 0)
      return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "replay: instruction %d (%s): output %d is a negative index", k, name, i);
    if ((st = rv_define(map, in->outputs[i], outs[i]))) return st;
  }
  return KILN_OK;
}

kiln_status sch_replay(sch_schedule *s, const sch_trace *t, int ndrop, const int *drop) {
  if (!s) return KILN_ERR_MISUSE;
  if (!t || ndrop < 0 || (ndrop > 0 && !drop) || (t->ninsts > 0 && !t->insts))
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "replay: no trace or a bad drop list");
  if (t == &s->trace)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "replay: a schedule cannot replay its own trace into itself");
  ir_ptrmap map;
  ir_ptrmap_init(&map, s->ctx);
  kiln_status st = KILN_OK;
  for (int k = 0; k < t->ninsts && !st; k++)
    st = replay_one(s, t, k, in_list(k, ndrop, drop), &map);
  ir_ptrmap_free(&map);
  return st;
}

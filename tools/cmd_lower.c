/* cmd_lower.c: `kiln lower`: shows what the compiler makes of a Relay module before code
 * generation. Runs the Relay pipeline (FuseOps included), lowers every fused group to a
 * PrimFunc, schedules it (the default rules for the target, a trace replayed from a file, or
 * nothing) and runs the TIR lowering pipeline, printing each function as TIR text with its
 * workload key; --trace-out writes each schedule's trace as DIR/<function>.json:
 *   kiln lower FILE.relay [--bind NAME=VALUE ...] [--target T] [--func NAME]
 *              [--schedule default|none] [--replay TRACE.json] [--trace-out DIR]
 *              [--no-pipeline] [-o OUT]
 * main() in kiln.c calls kiln_cmd_lower with the arguments after "lower". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/text.h"
#include "ir/transform.h"
#include "ir/verify.h"
#include "kiln/kiln.h"
#include "relay/lower.h"
#include "relay/pass.h"
#include "relay/text.h"
#include "schedule/schedule.h"
#include "target/target.h"
#include "tools/tool.h"


static const char lower_usage[] =
    "usage: kiln lower FILE.relay [--bind NAME=VALUE ...] [--target T] [--func NAME]\n"
    "                  [--schedule default|none] [--replay TRACE.json] [--trace-out DIR]\n"
    "                  [--no-pipeline] [-o OUT]\n"
    "  run the Relay pipeline on a module, lower each fused group to a TIR PrimFunc,\n"
    "  schedule it and run the TIR lowering pipeline; print the functions as TIR text with\n"
    "  their workload keys. --schedule default (the default) applies the default rules for\n"
    "  --target (default \"llvm\", this machine); --replay applies a trace instead (with\n"
    "  --func when the module has several groups); --trace-out writes each trace as\n"
    "  DIR/<function>.json (the files --replay reads);\n"
    "  --no-pipeline prints the scheduled functions before the TIR pipeline\n"
    "exit status: 0 success, 1 failure, 2 usage error (unknown option, missing argument,\n"
    "malformed value)\n";

enum { MAX_BINDS = 32 };

typedef struct lower_options {
  const char *file, *target, *func, *replay, *trace_out, *out;
  bool schedule, pipeline;
  int nbinds;
  const char *bind_names[MAX_BINDS];
  int64_t bind_values[MAX_BINDS];
} lower_options;

/* Returns 0, 2 (a usage error, reported) or 3 (--help printed). */
static int parse_lower_options(int argc, char **argv, lower_options *o) {
  memset(o, 0, sizeof *o);
  o->target = "llvm";
  o->schedule = true;
  o->pipeline = true;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    bool has_value = i + 1 < argc;
    if (strcmp(a, "--target") == 0 && has_value) {
      o->target = argv[++i];
    } else if (strcmp(a, "--func") == 0 && has_value) {
      o->func = argv[++i];
    } else if (strcmp(a, "--replay") == 0 && has_value) {
      o->replay = argv[++i];
    } else if (strcmp(a, "--trace-out") == 0 && has_value) {
      o->trace_out = argv[++i];
    } else if (strcmp(a, "-o") == 0 && has_value) {
      o->out = argv[++i];
    } else if (strcmp(a, "--schedule") == 0 && has_value) {
      const char *v = argv[++i];
      if (strcmp(v, "default") == 0) o->schedule = true;
      else if (strcmp(v, "none") == 0) o->schedule = false;
      else {
        fprintf(stderr, "kiln lower: --schedule takes 'default' or 'none', not '%s'\n", v);
        return 2;
      }
    } else if (strcmp(a, "--bind") == 0 && has_value) {
      char *eq = strchr(argv[++i], '=');
      char *end;
      if (!eq || eq == argv[i] || o->nbinds == MAX_BINDS) {
        fprintf(stderr, "kiln lower: --bind takes NAME=VALUE, not '%s'\n", argv[i]);
        return 2;
      }
      *eq = 0;
      long long v = strtoll(eq + 1, &end, 10);
      if (*end || end == eq + 1) {
        fprintf(stderr, "kiln lower: --bind %s: '%s' is not an integer\n", argv[i], eq + 1);
        return 2;
      }
      o->bind_names[o->nbinds] = argv[i];
      o->bind_values[o->nbinds++] = v;
    } else if (strcmp(a, "--no-pipeline") == 0) {
      o->pipeline = false;
    } else if (strcmp(a, "--help") == 0) {
      fputs(lower_usage, stdout);
      return 3;
    } else if (a[0] == '-') {
      fprintf(stderr, "kiln lower: unknown option or missing value: '%s'\n%s", a, lower_usage);
      return 2;
    } else if (!o->file) {
      o->file = a;
    } else {
      fprintf(stderr, "kiln lower: more than one file given ('%s')\n", a);
      return 2;
    }
  }
  if (!o->file) {
    fprintf(stderr, "kiln lower: no file given\n%s", lower_usage);
    return 2;
  }
  return 0;
}

/* The whole contents of a file (malloc'ed, NUL-terminated) or NULL with a message. */
static char *slurp(const char *path, size_t *len) {
  char *text = kiln_tool_read_file(path, len);
  if (!text) fprintf(stderr, "kiln lower: cannot read '%s'\n", path);
  return text;
}

static int fail_ctx(kiln_context *ctx, const char *what) {
  fprintf(stderr, "kiln lower: %s: %s\n", what, kiln_context_errmsg(ctx));
  return 1;
}

/* Schedules, lowers and prints one PrimFunc; with --trace-out writes its trace. Returns the
 * exit status. */
static int lower_one(kiln_context *ctx, const lower_options *o, const sch_target_info *ti,
                     const sch_trace *replay, ir_func *pf, FILE *out) {
  int rc = 1;
  bool io_failed = false; /* the trace file could not be written (said so already) */
  ir_arena *a = ir_arena_new(ctx);
  sch_schedule *s = a ? sch_new(ctx, pf, 1) : NULL;
  if (!s) goto done;
  if (replay) {
    if (sch_replay(s, replay, 0, NULL)) {
      rc = fail_ctx(ctx, pf->name);
      goto done;
    }
  } else if (o->schedule && sch_apply_default_rules(s, ti)) {
    rc = fail_ctx(ctx, pf->name);
    goto done;
  }
  ir_func *f = s->func;
  if (ir_verify_func(ctx, f)) {
    rc = fail_ctx(ctx, pf->name);
    goto done;
  }
  if (o->pipeline && ir_lower_func(ctx, a, s->func, NULL, &f)) {
    rc = fail_ctx(ctx, pf->name);
    goto done;
  }
  relay_workload w;
  if (relay_workload_key(ctx, a, pf, &w)) {
    rc = fail_ctx(ctx, pf->name);
    goto done;
  }
  char *text = ir_node_to_string(ctx, &f->h);
  if (!text) goto done;
  fprintf(out, "# workload %016llx: %s\n%s\n", (unsigned long long)w.hash, w.summary, text);
  kiln_string_free(ctx, text);
  if (o->trace_out) {
    char *json;
    size_t len;
    if (sch_trace_to_json(ctx, &s->trace, &json, &len)) {
      rc = fail_ctx(ctx, pf->name);
      goto done;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", o->trace_out, pf->name);
    FILE *tf = fopen(path, "w");
    int err = tf ? 0 : errno;
    size_t wrote = tf ? fwrite(json, 1, len, tf) : 0;
    if (tf && wrote != len) err = errno;
    ir_free(ctx, json, len + 1);
    if (tf && fclose(tf) != 0 && !err) err = errno;
    if (!tf || wrote != len || err) {
      fprintf(stderr, "kiln lower: cannot write '%s': %s\n", path,
              strerror(err ? err : EIO));
      rc = 1;
      io_failed = true;
      goto done;
    }
  }
  rc = 0;
done:
  if (rc && !io_failed && !kiln_context_errcode(ctx))
    fprintf(stderr, "kiln lower: out of memory\n");
  sch_free(s);
  ir_arena_free(a);
  return rc;
}

static int run_lower(kiln_context *ctx, const lower_options *o) {
  int rc = 1;
  size_t len = 0;
  char *text = slurp(o->file, &len), *trace_text = NULL;
  relay_module *m = NULL;
  kiln_tir_module *tm = NULL;
  ir_arena *ta = NULL;
  FILE *out = stdout;
  if (!text) return 1;
  if (relay_parse_module(ctx, text, len, &m)) {
    rc = fail_ctx(ctx, o->file);
    goto done;
  }
  relay_pass_ctx pc;
  relay_pass_ctx_init(&pc);
  if (o->nbinds && (relay_infer_type(m) ||
                    relay_bind_shapes(m, o->nbinds, o->bind_names, o->bind_values))) {
    rc = fail_ctx(ctx, o->file);
    goto done;
  }
  if (relay_run_default_pipeline(&pc, m) || relay_lower_module(m, &tm)) {
    rc = fail_ctx(ctx, o->file);
    goto done;
  }
  tgt_target t;
  if (tgt_target_parse(ctx, o->target, &t)) {
    rc = fail_ctx(ctx, "--target");
    goto done;
  }
  sch_target_info ti;
  sch_target_info_from(&t, &ti);
  sch_trace replay = {0}, *rp = NULL;
  if (o->replay) {
    size_t tlen;
    if (!(trace_text = slurp(o->replay, &tlen))) goto done;
    if (!(ta = ir_arena_new(ctx))) goto done;
    if (sch_trace_from_json(ctx, ta, trace_text, &replay)) {
      rc = fail_ctx(ctx, o->replay);
      goto done;
    }
    rp = &replay;
    if (!o->func && tm->nfuncs != 1) {
      fprintf(stderr, "kiln lower: the module has %d fused groups: name the one the trace is "
              "for with --func\n", tm->nfuncs);
      goto done;
    }
  }
  if (o->func && !ir_module_find(tm, o->func)) {
    fprintf(stderr, "kiln lower: no fused group named '%s'; the groups are:", o->func);
    for (int i = 0; i < tm->nfuncs; i++) fprintf(stderr, " %s", tm->funcs[i]->name);
    fprintf(stderr, "\n");
    goto done;
  }
  if (o->out && !(out = fopen(o->out, "w"))) {
    fprintf(stderr, "kiln lower: cannot write '%s'\n", o->out);
    out = stdout;
    goto done;
  }
  for (int i = 0; i < tm->nfuncs; i++) {
    if (o->func && strcmp(o->func, tm->funcs[i]->name) != 0) continue;
    if (lower_one(ctx, o, &ti, rp, tm->funcs[i], out)) goto done;
  }
  rc = 0;
done:
  if (out != stdout) fclose(out);
  ir_arena_free(ta);
  kiln_tir_module_free(tm);
  relay_module_free(m);
  free(text);
  free(trace_text);
  return rc;
}

int kiln_cmd_lower(int argc, char **argv) {
  lower_options o;
  int st = parse_lower_options(argc, argv, &o);
  if (st) return st == 3 ? 0 : st;
  kiln_context *ctx;
  if (kiln_context_new(&ctx)) {
    fprintf(stderr, "kiln lower: cannot create a context\n");
    return 1;
  }
  int rc = run_lower(ctx, &o);
  kiln_context_free(ctx);
  return rc;
}

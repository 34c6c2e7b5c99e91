/* cmd_asm.c: `kiln asm`: shows the code kiln generates. Parses a TIR file, generates code for
 * every function (or one) for a target and prints its assembly or its LLVM IR, optimized
 * unless asked otherwise:
 *   kiln asm FILE.tir [--target T] [--func NAME] [--ir] [--no-opt | --opt-level N] [-o OUT]
 * Errors go to stderr with exit status 1 (2 for a malformed command line). main() in kiln.c
 * calls kiln_cmd_asm with the arguments after "asm". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/node.h"
#include "kiln/kiln.h"
#include "target/codegen.h"
#include "tools/tool.h"


static const char asm_usage[] =
    "usage: kiln asm FILE.tir [--target T] [--func NAME] [--ir] [--no-opt | --opt-level N]\n"
    "                [-o OUT]\n"
    "  print the assembly (or with --ir the LLVM IR) that kiln generates for the functions of\n"
    "  a TIR file; --target takes a target string (default \"llvm\", this machine), e.g.\n"
    "  \"llvm -mcpu=znver4\" or \"llvm -mtriple=aarch64-linux-gnu -mcpu=neoverse-n1\"; --func\n"
    "  limits the output to one function; --no-opt shows the code before LLVM's optimizations\n"
    "  (same as --opt-level 0; the default is 3); -o writes to OUT instead of stdout\n"
    "exit status: 0 success, 1 failure, 2 usage error (unknown option, missing argument,\n"
    "malformed value)\n";

typedef struct asm_options {
  const char *file, *target, *func, *out;
  int ir, opt_level;
} asm_options;

/* Returns 0, 2 (a usage error, reported) or 3 (--help printed). */
static int parse_asm_options(int argc, char **argv, asm_options *o) {
  memset(o, 0, sizeof *o);
  o->target = "llvm";
  o->opt_level = 3;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    bool has_value = i + 1 < argc;
    if (strcmp(a, "--target") == 0 && has_value) {
      o->target = argv[++i];
    } else if (strcmp(a, "--func") == 0 && has_value) {
      o->func = argv[++i];
    } else if (strcmp(a, "-o") == 0 && has_value) {
      o->out = argv[++i];
    } else if (strcmp(a, "--opt-level") == 0 && has_value) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || end == argv[i] || v < 0 || v > 3) {
        fprintf(stderr, "kiln asm: --opt-level takes 0, 1, 2 or 3, not '%s'\n", argv[i]);
        return 2;
      }
      o->opt_level = (int)v;
    } else if (strcmp(a, "--no-opt") == 0) {
      o->opt_level = 0;
    } else if (strcmp(a, "--ir") == 0) {
      o->ir = 1;
    } else if (strcmp(a, "--help") == 0) {
      fputs(asm_usage, stdout);
      return 3;
    } else if (a[0] == '-') {
      fprintf(stderr, "kiln asm: unknown option or missing value: '%s'\n%s", a, asm_usage);
      return 2;
    } else if (!o->file) {
      o->file = a;
    } else {
      fprintf(stderr, "kiln asm: more than one file given ('%s')\n", a);
      return 2;
    }
  }
  if (!o->file) {
    fprintf(stderr, "kiln asm: no file given\n%s", asm_usage);
    return 2;
  }
  return 0;
}

/* Parses, generates and writes the text; returns the exit status. */
static int run_asm(kiln_context *ctx, const asm_options *o) {
  int rc = 1;
  kiln_tir_module *mod = NULL;
  tgt_llvm_module *lm = NULL;
  char *text = NULL;
  size_t len = 0;
  tgt_target t;

  if (kiln_tir_module_parse_file(ctx, o->file, &mod)) {
    /* "FILE:LINE:COL: message" when the message has a position, else "FILE: message" */
    const char *msg = kiln_context_errmsg(ctx);
    fprintf(stderr, "kiln asm: %s:%s%s\n", o->file, msg[0] >= '0' && msg[0] <= '9' ? "" : " ",
            msg);
    goto done;
  }
  if (tgt_target_parse(ctx, o->target, &t)) {
    fprintf(stderr, "kiln asm: bad target '%s': %s\n", o->target, kiln_context_errmsg(ctx));
    goto done;
  }
  /* --func: a view of the module holding just that function (same arena, nothing copied) */
  kiln_tir_module one;
  ir_func *f = NULL;
  const kiln_tir_module *src = mod;
  if (o->func) {
    f = ir_module_find(mod, o->func);
    if (!f) {
      fprintf(stderr, "kiln asm: %s: no function '%s' (the file has:", o->file, o->func);
      for (int i = 0; i < mod->nfuncs; i++) fprintf(stderr, " %s", mod->funcs[i]->name);
      fprintf(stderr, ")\n");
      goto done;
    }
    one = *mod;
    one.nfuncs = 1;
    one.funcs = &f;
    src = &one;
  }
  tgt_codegen_options co = {o->opt_level};
  if (tgt_codegen(ctx, src, &t, &co, &lm)) {
    fprintf(stderr, "kiln asm: %s: %s\n", o->file, kiln_context_errmsg(ctx));
    goto done;
  }
  kiln_status st = o->ir ? tgt_llvm_module_ir(lm, &text, &len) : tgt_llvm_module_asm(lm, &text, &len);
  if (st) {
    fprintf(stderr, "kiln asm: cannot emit %s: %s\n", o->ir ? "LLVM IR" : "assembly",
            kiln_context_errmsg(ctx));
    goto done;
  }
  FILE *out = o->out ? fopen(o->out, "w") : stdout;
  if (!out) {
    fprintf(stderr, "kiln asm: cannot write '%s'\n", o->out);
    goto done;
  }
  size_t written = fwrite(text, 1, len, out);
  int closed = o->out ? fclose(out) : fflush(out);
  if (written != len || closed != 0) {
    fprintf(stderr, "kiln asm: cannot write '%s'\n", o->out ? o->out : "standard output");
    goto done;
  }
  rc = 0;
done:
  if (text) ir_free(ctx, text, len + 1);
  tgt_llvm_module_free(lm);
  kiln_tir_module_free(mod);
  return rc;
}

int kiln_cmd_asm(int argc, char **argv) {
  asm_options o;
  int st = parse_asm_options(argc, argv, &o);
  if (st) return st == 3 ? 0 : st;
  kiln_context *ctx;
  if (kiln_context_new(&ctx)) {
    fprintf(stderr, "kiln asm: cannot create a context\n");
    return 1;
  }
  int rc = run_asm(ctx, &o);
  kiln_context_free(ctx);
  return rc;
}

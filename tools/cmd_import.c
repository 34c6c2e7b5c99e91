/* cmd_import.c: `kiln import`: reads an ONNX model and prints (or writes) its Relay module in
 * the text format, every constant in full so the output parses back:
 *   kiln import MODEL.onnx [-o OUT.relay]
 * Errors go to stderr with exit status 1 (2 for a malformed command line). main() in kiln.c
 * calls kiln_cmd_import with the arguments after "import". */
#include <stdio.h>
#include <string.h>

#include "kiln/kiln.h"
#include "relay/frontend/onnx.h"
#include "relay/text.h"
#include "tools/tool.h"


static const char import_usage[] =
    "usage: kiln import MODEL.onnx [-o OUT.relay]\n"
    "  import an ONNX model (IR versions 7-8, opsets 11-17) and print its Relay module;\n"
    "  -o writes it to OUT.relay instead of stdout\n"
    "exit status: 0 success, 1 failure, 2 usage error (unknown option, missing argument,\n"
    "malformed value)\n";

int kiln_cmd_import(int argc, char **argv) {
  const char *file = NULL, *outpath = NULL;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) outpath = argv[++i];
    else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      fputs(import_usage, stdout);
      return 0;
    } else if (argv[i][0] != '-' && !file) file = argv[i];
    else {
      fprintf(stderr, "kiln import: unexpected argument '%s'\n%s", argv[i], import_usage);
      return 2;
    }
  }
  if (!file) {
    fprintf(stderr, "kiln import: no file given\n%s", import_usage);
    return 2;
  }
  kiln_context *ctx;
  if (kiln_context_new(&ctx)) {
    fprintf(stderr, "kiln import: out of memory\n");
    return 1;
  }
  relay_module *m = NULL;
  char *text = NULL;
  int rc = 1;
  if (relay_from_onnx_file(ctx, file, &m))
    fprintf(stderr, "kiln import: %s: %s\n", file, kiln_context_errmsg(ctx));
  else if (!(text = relay_module_to_string(m)))
    fprintf(stderr, "kiln import: %s: %s\n", file, kiln_context_errmsg(ctx));
  else {
    FILE *f = outpath ? fopen(outpath, "w") : stdout;
    if (!f) fprintf(stderr, "kiln import: cannot write '%s'\n", outpath);
    else {
      rc = fputs(text, f) < 0 ? 1 : 0;
      if (outpath && fclose(f) != 0) rc = 1;
      if (rc) fprintf(stderr, "kiln import: cannot write '%s'\n", outpath ? outpath : "stdout");
    }
  }
  kiln_string_free(ctx, text);
  relay_module_free(m);
  kiln_context_free(ctx);
  return rc;
}

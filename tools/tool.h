/* tool.h: what the `kiln` command line's files share: the subcommands main() in kiln.c
 * dispatches to (each takes the arguments after its name and returns the exit status), and
 * small helpers. */
#ifndef KILN_TOOLS_TOOL_H
#define KILN_TOOLS_TOOL_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/kiln.h"

int kiln_cmd_asm(int argc, char **argv);    /* cmd_asm.c */
int kiln_cmd_import(int argc, char **argv); /* cmd_import.c */
int kiln_cmd_lower(int argc, char **argv);  /* cmd_lower.c */
int kiln_cmd_db(int argc, char **argv);     /* cmd_db.c */
int kiln_cmd_compile(int argc, char **argv); /* cmd_compile.c */
int kiln_cmd_run(int argc, char **argv);     /* cmd_run.c */
int kiln_cmd_bench(int argc, char **argv);   /* cmd_run.c */
int kiln_cmd_profile(int argc, char **argv); /* cmd_run.c */
int kiln_cmd_inspect(int argc, char **argv); /* cmd_inspect.c */
int kiln_cmd_tune(int argc, char **argv);    /* cmd_tune.c */

/* One --bucket value of `kiln compile` / `kiln tune`: names point into the parsed string. */
enum { KILN_TOOL_MAX_BUCKETS = 256, KILN_TOOL_MAX_BUCKET_INPUTS = 64, KILN_TOOL_MAX_DIMS = 8 };
typedef struct kiln_tool_bucket {
  int ninputs;
  kiln_input_shape inputs[KILN_TOOL_MAX_BUCKET_INPUTS];
  int64_t dims[KILN_TOOL_MAX_BUCKET_INPUTS][KILN_TOOL_MAX_DIMS];
  double weight;
} kiln_tool_bucket;
/* Parses spec = NAME=DxDxD[,NAME=DxD...][@WEIGHT] in place (the names end at their '=').
 * Returns 0, or 2 after printing "kiln CMD: ..." for a malformed spec (a usage error). */
int kiln_tool_parse_bucket(const char *cmd, char *spec, kiln_tool_bucket *b);

/* Reads a model for `kiln compile` / `kiln tune`: ONNX for *.onnx, Relay text for *.relay;
 * any other name is taken as Relay text when its first non-blank character starts a Relay
 * module ('d'ef, '#' comment), else as ONNX. Errors on the context. */
kiln_status kiln_tool_read_model(kiln_context *ctx, const char *path, kiln_relay_module **out);

/* Reads a whole file into memory, NUL-terminated (the caller frees it); NULL when it cannot
 * be opened or memory runs out. *len excludes the terminator. */
char *kiln_tool_read_file(const char *path, size_t *len);

#endif

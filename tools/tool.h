/* tool.h: what the `kiln` command line's files share: the subcommands main() in kiln.c
 * dispatches to (each takes the arguments after its name and returns the exit status), and
 * small helpers. */
#ifndef KILN_TOOLS_TOOL_H
#define KILN_TOOLS_TOOL_H

#include <stddef.h>

int kiln_cmd_asm(int argc, char **argv);    /* cmd_asm.c */
int kiln_cmd_import(int argc, char **argv); /* cmd_import.c */
int kiln_cmd_lower(int argc, char **argv);  /* cmd_lower.c */
int kiln_cmd_db(int argc, char **argv);     /* cmd_db.c */

/* Reads a whole file into memory, NUL-terminated (the caller frees it); NULL when it cannot
 * be opened or memory runs out. *len excludes the terminator. */
char *kiln_tool_read_file(const char *path, size_t *len);

#endif

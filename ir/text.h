/* text.h: the TIR text format. The printer writes every construct of node.h; the parser reads
 * it back to a structurally equal module. The grammar is at the top of parser.c. */
#ifndef KILN_IR_TEXT_H
#define KILN_IR_TEXT_H

#include "node.h"

/* Appends the text of a module / of any single node (expression, statement, function) to sb.
 * Names are made unique per function (a second variable called `i` prints as `i_1`). */
kiln_status ir_print_module(const kiln_tir_module *mod, ir_strbuf *sb);
kiln_status ir_print_node(kiln_context *ctx, const ir_node *n, ir_strbuf *sb);
/* Convenience for messages and tests: a new string with the text of n (free with
 * kiln_string_free), or NULL on allocation failure. */
char *ir_node_to_string(kiln_context *ctx, const ir_node *n);

/* Parses a whole module. Errors are KILN_ERR_PARSE (or the constructor's KILN_ERR_TYPE /
 * KILN_ERR_SHAPE / KILN_ERR_UNDEFINED) with line and column on ctx. `name` is the source's
 * name for callers' messages; the message itself starts with "LINE:COL: ". */
kiln_status ir_parse_module(kiln_context *ctx, const char *text, size_t len, const char *name,
                            kiln_tir_module **out);
/* Whether s (len bytes) is a reserved word of the text format (the printer renames variables
 * that would read as one). */
bool ir_text_is_keyword(const char *s, size_t len);

/* Parses one expression into arena a; identifiers resolve to vars[i] by name. For tests and
 * tools that build expressions from text. */
kiln_status ir_parse_expr(ir_arena *a, const char *text, int nvars, ir_var *const *vars,
                          ir_expr **out);

#endif

/* text.h: the Relay text format. The printer writes a module (or one expression) so that the
 * parser reads it back to a structurally equal module that keeps the sharing of the graph;
 * used for dumps, golden tests and tools. The grammar is at the top of relay/text.c:
 *
 *   def @main(%x: Tensor[(n, 3), float32], %w: Tensor[(4, 3), float32]) {
 *     %0 = nn.dense(%x, %w);
 *     %1 = nn.relu(%0);
 *     %1
 *   }
 */
#ifndef KILN_RELAY_TEXT_H
#define KILN_RELAY_TEXT_H

#include "relay.h"

/* Parses a module of `def`s (text need not be NUL-terminated). Nodes are built through the
 * relay constructors, so the result is type-checked (eagerly) like C-built graphs. Errors:
 * KILN_ERR_PARSE with "LINE:COL: " and the position on ctx; KILN_ERR_UNDEFINED for an unknown
 * op, variable or function; the constructors' KILN_ERR_TYPE / KILN_ERR_SHAPE at the position
 * of the offending call. On error *out is NULL and nothing stays allocated. */
kiln_status relay_parse_module(kiln_context *ctx, const char *text, size_t len,
                               relay_module **out);

/* Appends the text of a module / of one expression (or type) to sb. Printing everything
 * round trips exactly: parse(print(m)) is structurally equal to m, function by function, a
 * node used twice is printed once (a `%N = ...;` binding) and parsed back to one node, and
 * print(parse(print(m))) == print(m). */
kiln_status relay_print_module(const relay_module *m, ir_strbuf *sb);
kiln_status relay_print_expr(kiln_context *ctx, const relay_expr *e, ir_strbuf *sb);

/* The same for human readers: constants with more than max_const_elems elements print their
 * type and `...` instead of their data (such text does not parse back: the parser reports the
 * elided constant). A negative max_const_elems prints everything. */
kiln_status relay_print_module_opts(const relay_module *m, ir_strbuf *sb,
                                    int64_t max_const_elems);
kiln_status relay_print_expr_opts(kiln_context *ctx, const relay_expr *e, ir_strbuf *sb,
                                  int64_t max_const_elems);

/* Convenience for messages and tests: a new NUL-terminated string (free with
 * kiln_string_free), or NULL with KILN_ERR_NOMEM recorded on ctx. */
char *relay_module_to_string(const relay_module *m);
char *relay_expr_to_string(kiln_context *ctx, const relay_expr *e);

#endif

/* printer.c: writes TIR as text, in the format parser.c reads back (the grammar is at the top
 * of parser.c). Printing then parsing gives a structurally equal module, and printing is
 * deterministic: names come from the nodes' name hints, made valid identifiers (not
 * keywords) and unique per function in the order the printer meets them (`i`, `i_1`, ...),
 * never from addresses. Used for dumps, error messages, the tuning database (workloads are
 * stored as text), kiln_tir_module_simplify (which copies modules through the text) and
 * tests. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lex.h"
#include "text.h"

/* ---- Printer state ----------------------------------------------------------------------- */

typedef struct printer {
  kiln_context *ctx;
  ir_strbuf *sb;
  int indent;
  ir_arena *names; /* the printed names (made on first use) */
  ir_ptrmap named; /* variable or buffer -> its printed name */
  ir_nameset taken; /* the names given out in the current function */
  bool oom;
} printer;

static void printer_init(printer *p, kiln_context *ctx, ir_strbuf *sb) {
  memset(p, 0, sizeof *p);
  p->ctx = ctx;
  p->sb = sb;
  ir_ptrmap_init(&p->named, ctx);
  ir_nameset_init(&p->taken, ctx);
}

/* Forgets every name: each function has its own names. */
static void printer_reset_names(printer *p) {
  ir_ptrmap_free(&p->named);
  ir_nameset_free(&p->taken);
  if (p->names) ir_arena_reset(p->names);
}

static void printer_free(printer *p) {
  ir_ptrmap_free(&p->named);
  ir_nameset_free(&p->taken);
  ir_arena_free(p->names);
  p->names = NULL;
}

static kiln_status printer_status(printer *p) {
  if (p->oom || p->sb->oom)
    return ir_fail(p->ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "out of memory printing TIR");
  return KILN_OK;
}

static void puts_(printer *p, const char *s) { ir_sb_puts(p->sb, s); }

static void pad(printer *p) {
  for (int i = 0; i < p->indent; i++) ir_sb_putn(p->sb, "  ", 2);
}

/* ---- Names ------------------------------------------------------------------------------- */

static bool is_identifier(const char *s) {
  if (!ir_is_ident_start((unsigned char)*s)) return false;
  for (s++; *s; s++)
    if (!ir_is_ident_char((unsigned char)*s)) return false;
  return true;
}

/* A valid identifier from a name hint: other characters become '_', a leading digit gets a
 * '_' in front, a keyword gets one behind, and an empty hint becomes "v". */
static char *sanitize(printer *p, const char *hint) {
  size_t n = strlen(hint);
  char *s = ir_arena_alloc(p->names, n + 3);
  if (!s) return NULL;
  if (n == 0) {
    strcpy(s, "v");
    return s;
  }
  size_t k = 0;
  if (ir_is_digit((unsigned char)hint[0])) s[k++] = '_';
  for (size_t i = 0; i < n; i++) s[k++] = ir_is_ident_char((unsigned char)hint[i]) ? hint[i] : '_';
  s[k] = 0;
  if (ir_text_is_keyword(s, k)) {
    s[k++] = '_';
    s[k] = 0;
  }
  return s;
}

/* A name for a variable or buffer not seen before in this function: its hint made valid,
 * then, if another variable has that name, the first free hint_1, hint_2, ... */
static const char *fresh_name(printer *p, const char *hint) {
  if (!p->names && !(p->names = ir_arena_new(p->ctx))) return NULL;
  char *base = sanitize(p, hint);
  return base ? ir_nameset_fresh(&p->taken, p->names, base) : NULL;
}

/* Gives a variable or buffer a fresh name (replacing any earlier one). */
static const char *give_name(printer *p, const ir_node *n) {
  const char *hint = n->kind == IR_VAR ? ((const ir_var *)n)->name : ((const ir_buffer *)n)->name;
  const char *name = fresh_name(p, hint ? hint : "");
  if (!name || ir_ptrmap_put(&p->named, n, (void *)name)) {
    p->oom = true;
    return "?";
  }
  return name;
}

/* The name of a variable or buffer where it is used: the name of its definition, or a
 * fresh one for a free variable. */
static const char *use_name(printer *p, const ir_node *n) {
  const char *name = ir_ptrmap_get(&p->named, n);
  return name ? name : give_name(p, n);
}

/* The name at a definition: always a fresh one. A node defined twice (a subtree a pass
 * copied without renaming) thus gets two names, and the text never relies on shadowing:
 * parsing it back and printing again gives the same text. */
static const char *def_name(printer *p, const ir_node *n) { return give_name(p, n); }

/* ---- Literals ---------------------------------------------------------------------------- */

static void print_dtype(printer *p, kiln_dtype t) {
  char b[32];
  puts_(p, kiln_dtype_str(t, b, sizeof b));
}

/* The literal suffix of a type: i8, u64, f32, bf16, ... */
static void print_suffix(printer *p, kiln_dtype t) {
  char b[16];
  puts_(p, ir_dtype_suffix(t, b, sizeof b));
}

static void print_int(printer *p, const ir_int_imm *x) {
  kiln_dtype t = x->h.dtype;
  if (t.code == KILN_TYPE_BOOL) {
    puts_(p, x->value ? "true" : "false");
    return;
  }
  ir_sb_printf(p->sb, "%lld", (long long)x->value);
  if (!(t.code == KILN_TYPE_INT && t.bits == 32)) print_suffix(p, t);
}

/* The shortest decimal that strtod reads back as exactly v (ir_format_float_shortest: at most
 * 17 digits, '.' as the decimal point whatever the locale), then the type suffix: 0.1f32,
 * 1000f64, 1e+20f32. Infinities and NaN print as inf_f32, -inf_f32, nan_f32 (NaN payloads and
 * signs are not kept: all NaNs are equal). */
static void print_float(printer *p, const ir_float_imm *x) {
  double v = x->value;
  char b[64];
  if (isnan(v) || isinf(v)) {
    puts_(p, isnan(v) ? "nan_" : v < 0 ? "-inf_" : "inf_");
    print_suffix(p, x->h.dtype);
    return;
  }
  ir_format_float_shortest(b, sizeof b, v, NULL, NULL);
  puts_(p, b);
  print_suffix(p, x->h.dtype);
}

/* ---- Expressions ------------------------------------------------------------------------- */

/* Precedence levels, loosest first; the parser's rules or/and/cmp/add/mul/unary/primary. */
enum { P_LOWEST, P_OR, P_AND, P_CMP, P_ADD, P_MUL, P_UNARY, P_PRIMARY };

static const struct {
  const char *op;
  int prec;
} binops[IR_KIND_COUNT] = {
    [IR_ADD] = {"+", P_ADD},       [IR_SUB] = {"-", P_ADD},       [IR_MUL] = {"*", P_MUL},
    [IR_DIV] = {"/", P_MUL},       [IR_MOD] = {"%", P_MUL},       [IR_FLOORDIV] = {"//", P_MUL},
    [IR_FLOORMOD] = {"%%", P_MUL}, [IR_EQ] = {"==", P_CMP},       [IR_NE] = {"!=", P_CMP},
    [IR_LT] = {"<", P_CMP},        [IR_LE] = {"<=", P_CMP},       [IR_GT] = {">", P_CMP},
    [IR_GE] = {">=", P_CMP},       [IR_AND] = {"&&", P_AND},      [IR_OR] = {"||", P_OR},
};

static void print_node(printer *p, const ir_node *n, int prec);

static void print_expr(printer *p, const ir_expr *e) { print_node(p, e, P_LOWEST); }

/* a, b, c */
static void print_list(printer *p, int n, ir_node *const *items) {
  for (int i = 0; i < n; i++) {
    if (i) puts_(p, ", ");
    print_expr(p, items[i]);
  }
}

/* An infix operator: operands are parenthesized where the parser would group them
 * differently. The left operand may sit at the operator's own level (left associativity),
 * the right one must bind tighter; comparisons do not chain, so neither side may be one. */
static void print_binary(printer *p, const ir_binary *x, int prec) {
  int my = binops[x->h.kind].prec;
  bool paren = my < prec;
  if (paren) puts_(p, "(");
  print_node(p, x->a, my == P_CMP ? my + 1 : my);
  ir_sb_printf(p->sb, " %s ", binops[x->h.kind].op);
  print_node(p, x->b, my + 1);
  if (paren) puts_(p, ")");
}

/* ---- Statements and the rest -------------------------------------------------------------- */

static void print_stmt(printer *p, const ir_stmt *s) { print_node(p, s, P_LOWEST); }

/* The statements inside a brace list: a seq of two or more prints its elements (the parser
 * turns several statements back into a seq), anything else prints as itself. */
static void print_body(printer *p, const ir_stmt *s) {
  p->indent++;
  const ir_seq *q = s->kind == IR_SEQ ? (const ir_seq *)s : NULL;
  if (q && q->nstmts >= 2)
    for (int i = 0; i < q->nstmts; i++) print_stmt(p, q->stmts[i]);
  else
    print_stmt(p, s);
  p->indent--;
}

/* "{" NEWLINE body "}" without the final newline. */
static void print_braced(printer *p, const ir_stmt *s) {
  puts_(p, "{\n");
  print_body(p, s);
  pad(p);
  puts_(p, "}");
}

/* {"key" = value, ...} */
static void print_annots(printer *p, int n, ir_annot *const *annots) {
  puts_(p, "{");
  for (int i = 0; i < n; i++) {
    if (i) puts_(p, ", ");
    ir_sb_put_quoted(p->sb, annots[i]->key);
    puts_(p, " = ");
    print_expr(p, annots[i]->value);
  }
  puts_(p, "}");
}

/* buffer(float32, [n, 16], strides=[16, 1], offset=0, align=128, scope="local"); the options
 * print only when they differ from the defaults the constructor fills in. */
static void print_buffer_type(printer *p, const ir_buffer *b) {
  puts_(p, "buffer(");
  print_dtype(p, b->h.dtype);
  puts_(p, ", [");
  print_list(p, b->ndim, b->shape);
  puts_(p, "]");
  if (b->nstrides > 0) {
    puts_(p, ", strides=[");
    print_list(p, b->nstrides, b->strides);
    puts_(p, "]");
  }
  if (b->elem_offset) {
    puts_(p, ", offset=");
    print_expr(p, b->elem_offset);
  }
  if (b->align != 64) ir_sb_printf(p->sb, ", align=%d", (int)b->align);
  if (b->scope && strcmp(b->scope, "global") != 0) {
    puts_(p, ", scope=");
    ir_sb_put_quoted(p->sb, b->scope);
  }
  puts_(p, ")");
}

/* NAME: buffer(...) -- a buffer's definition. */
static void print_buffer_def(printer *p, const ir_buffer *b) {
  puts_(p, def_name(p, &b->h));
  puts_(p, ": ");
  print_buffer_type(p, b);
}

/* min +: extent, or just min when the extent is the literal 1 of min's type (the parser's
 * reading of a bare index). */
static void print_range(printer *p, const ir_range *r) {
  print_expr(p, r->min);
  const ir_int_imm *one = ir_as_int(r->extent);
  if (one && one->value == 1 && ir_dt_eq(one->h.dtype, r->min->dtype)) return;
  puts_(p, " +: ");
  print_expr(p, r->extent);
}

static void print_region(printer *p, const ir_region *r) {
  puts_(p, use_name(p, &r->buffer->h));
  puts_(p, "[");
  for (int i = 0; i < r->nranges; i++) {
    if (i) puts_(p, ", ");
    print_range(p, r->ranges[i]);
  }
  puts_(p, "]");
}

/* NAME "(" regions ")" on its own line, when there are any. */
static void print_regions(printer *p, const char *what, int n, ir_region *const *regions) {
  if (n == 0) return;
  pad(p);
  puts_(p, what);
  puts_(p, "(");
  for (int i = 0; i < n; i++) {
    if (i) puts_(p, ", ");
    print_region(p, regions[i]);
  }
  puts_(p, ")\n");
}

/* vi: int32 = spatial(0, 128) */
static void print_iter_var(printer *p, const ir_iter_var *iv) {
  puts_(p, def_name(p, &iv->var->h));
  puts_(p, ": ");
  print_dtype(p, iv->var->h.dtype);
  puts_(p, iv->iter_type == IR_ITER_REDUCE ? " = reduce(" : " = spatial(");
  print_expr(p, iv->min);
  puts_(p, ", ");
  print_expr(p, iv->extent);
  puts_(p, ")");
}

/* alloc NAME: buffer(...), one line each. */
static void print_allocs(printer *p, const ir_block *b) {
  for (int i = 0; i < b->nallocs; i++) {
    pad(p);
    puts_(p, "alloc ");
    print_buffer_def(p, b->allocs[i]);
    puts_(p, "\n");
  }
}

static bool is_const_true(const ir_expr *e) {
  const ir_int_imm *x = ir_as_int(e);
  return x && x->h.dtype.code == KILN_TYPE_BOOL && x->value == 1;
}

/* A block, realized (r != NULL: iterators bound with "<- value", optional "where") or bare
 * ("unrealized block"). Items: reads, writes, alloc lines, annotate, init, then the body.
 * Alloc lines go first when a region names one of the block's own buffers, so that the
 * parser meets the definition before the use. */
static void print_block(printer *p, const ir_block_realize *r, const ir_block *b) {
  pad(p);
  puts_(p, r ? "block " : "unrealized block ");
  ir_sb_put_quoted(p->sb, b->name);
  puts_(p, "(");
  for (int i = 0; i < b->niters; i++) {
    if (i) puts_(p, ", ");
    print_iter_var(p, b->iters[i]);
    if (r && i < r->nvalues) {
      puts_(p, " <- ");
      print_expr(p, r->values[i]);
    }
  }
  puts_(p, ")");
  if (r && !is_const_true(r->predicate)) {
    puts_(p, " where ");
    print_expr(p, r->predicate);
  }
  puts_(p, " {\n");
  p->indent++;
  bool allocs_first = false;
  for (int i = 0; i < b->nallocs; i++)
    for (int j = 0; j < b->nreads + b->nwrites; j++) {
      const ir_region *g = j < b->nreads ? b->reads[j] : b->writes[j - b->nreads];
      if (g->buffer == b->allocs[i]) allocs_first = true;
    }
  if (allocs_first) print_allocs(p, b);
  print_regions(p, "reads", b->nreads, b->reads);
  print_regions(p, "writes", b->nwrites, b->writes);
  if (!allocs_first) print_allocs(p, b);
  if (b->nannots > 0) {
    pad(p);
    puts_(p, "annotate ");
    print_annots(p, b->nannots, b->annots);
    puts_(p, "\n");
  }
  if (b->init) {
    pad(p);
    puts_(p, "init ");
    print_braced(p, b->init);
    puts_(p, "\n");
  }
  p->indent--;
  print_body(p, b->body);
  pad(p);
  puts_(p, "}\n");
}

static void print_for(printer *p, const ir_for *x) {
  static const char *const kinds[IR_FOR_KIND_COUNT] = {"range", "parallel", "vectorized",
                                                       "unrolled"};
  pad(p);
  puts_(p, "for ");
  puts_(p, def_name(p, &x->var->h));
  puts_(p, ": ");
  print_dtype(p, x->var->h.dtype);
  puts_(p, " in ");
  puts_(p, x->for_kind >= 0 && x->for_kind < IR_FOR_KIND_COUNT ? kinds[x->for_kind] : "?");
  puts_(p, "(");
  print_expr(p, x->min);
  puts_(p, ", ");
  print_expr(p, x->extent);
  puts_(p, ") ");
  if (x->nannots > 0) {
    puts_(p, "annotate ");
    print_annots(p, x->nannots, x->annots);
    puts_(p, " ");
  }
  print_braced(p, x->body);
  puts_(p, "\n");
}

static void print_if(printer *p, const ir_if *x) {
  pad(p);
  puts_(p, "if ");
  print_expr(p, x->cond);
  puts_(p, " ");
  print_braced(p, x->then_case);
  if (x->else_case) {
    puts_(p, " else ");
    print_braced(p, x->else_case);
  }
  puts_(p, "\n");
}

/* func @name(params) attrs {...} { body } */
static void print_func(printer *p, const ir_func *f) {
  printer_reset_names(p);
  puts_(p, "func @");
  if (is_identifier(f->name))
    puts_(p, f->name);
  else
    ir_sb_put_quoted(p->sb, f->name);
  puts_(p, "(");
  for (int i = 0; i < f->nparams; i++) {
    const ir_node *q = f->params[i];
    if (i) puts_(p, ", ");
    if (q->kind == IR_BUFFER) {
      print_buffer_def(p, (const ir_buffer *)q);
    } else {
      puts_(p, def_name(p, q));
      puts_(p, ": ");
      print_dtype(p, q->dtype);
    }
  }
  puts_(p, ") ");
  if (f->nattrs > 0) {
    puts_(p, "attrs ");
    print_annots(p, f->nattrs, f->attrs);
    puts_(p, " ");
  }
  print_braced(p, f->body);
  puts_(p, "\n");
}

/* Prints any node: expressions inline (parenthesized when their precedence is below
 * `prec`), statements as indented lines, the auxiliary nodes in the form they take inside
 * statements. Every kind is listed, so a new kind must say how it prints. */
static void print_node(printer *p, const ir_node *n, int prec) {
  if (!n) {
    puts_(p, "<null>");
    return;
  }
  switch ((ir_kind)n->kind) {
  case IR_INT_IMM: print_int(p, (const ir_int_imm *)n); break;
  case IR_FLOAT_IMM: print_float(p, (const ir_float_imm *)n); break;
  case IR_STR_IMM: ir_sb_put_quoted(p->sb, ((const ir_str_imm *)n)->value); break;
  case IR_VAR: puts_(p, use_name(p, n)); break;
  case IR_ADD:
  case IR_SUB:
  case IR_MUL:
  case IR_DIV:
  case IR_MOD:
  case IR_FLOORDIV:
  case IR_FLOORMOD:
  case IR_EQ:
  case IR_NE:
  case IR_LT:
  case IR_LE:
  case IR_GT:
  case IR_GE:
  case IR_AND:
  case IR_OR: print_binary(p, (const ir_binary *)n, prec); break;
  case IR_MIN:
  case IR_MAX: {
    const ir_binary *x = (const ir_binary *)n;
    puts_(p, n->kind == IR_MIN ? "min(" : "max(");
    print_expr(p, x->a);
    puts_(p, ", ");
    print_expr(p, x->b);
    puts_(p, ")");
    break;
  }
  case IR_NOT: {
    bool paren = prec > P_UNARY;
    puts_(p, paren ? "(!" : "!");
    print_node(p, ((const ir_not *)n)->a, P_UNARY);
    if (paren) puts_(p, ")");
    break;
  }
  case IR_SELECT: {
    const ir_select *x = (const ir_select *)n;
    puts_(p, "select(");
    print_expr(p, x->cond);
    puts_(p, ", ");
    print_expr(p, x->t);
    puts_(p, ", ");
    print_expr(p, x->f);
    puts_(p, ")");
    break;
  }
  case IR_CAST:
    puts_(p, "cast(");
    print_dtype(p, n->dtype);
    puts_(p, ", ");
    print_expr(p, ((const ir_cast *)n)->value);
    puts_(p, ")");
    break;
  case IR_RAMP: {
    const ir_ramp *x = (const ir_ramp *)n;
    puts_(p, "ramp(");
    print_expr(p, x->base);
    puts_(p, ", ");
    print_expr(p, x->stride);
    ir_sb_printf(p->sb, ", %d)", (int)x->lanes);
    break;
  }
  case IR_BROADCAST: {
    const ir_broadcast *x = (const ir_broadcast *)n;
    puts_(p, "broadcast(");
    print_expr(p, x->value);
    ir_sb_printf(p->sb, ", %d)", (int)x->lanes);
    break;
  }
  case IR_LOAD: {
    const ir_load *x = (const ir_load *)n;
    puts_(p, use_name(p, &x->buffer->h));
    puts_(p, "[");
    print_list(p, x->nindices, x->indices);
    puts_(p, "]");
    break;
  }
  case IR_CALL: {
    const ir_call *x = (const ir_call *)n;
    puts_(p, ir_intrinsic_name(x->op));
    puts_(p, "(");
    print_list(p, x->nargs, x->args);
    puts_(p, ")");
    break;
  }
  case IR_LET: {
    const ir_let *x = (const ir_let *)n;
    puts_(p, "let(");
    puts_(p, def_name(p, &x->var->h));
    puts_(p, ": ");
    print_dtype(p, x->var->h.dtype);
    puts_(p, " = ");
    print_expr(p, x->value);
    puts_(p, ", ");
    print_expr(p, x->body);
    puts_(p, ")");
    break;
  }
  case IR_STORE: {
    const ir_store *x = (const ir_store *)n;
    pad(p);
    puts_(p, use_name(p, &x->buffer->h));
    puts_(p, "[");
    print_list(p, x->nindices, x->indices);
    puts_(p, "] = ");
    print_expr(p, x->value);
    puts_(p, ";\n");
    break;
  }
  case IR_FOR: print_for(p, (const ir_for *)n); break;
  case IR_IF: print_if(p, (const ir_if *)n); break;
  case IR_SEQ: {
    /* Only reached for a seq inside a list or a seq of one statement: written out so the
     * parser rebuilds the seq node itself. */
    const ir_seq *x = (const ir_seq *)n;
    pad(p);
    puts_(p, "seq {\n");
    p->indent++;
    for (int i = 0; i < x->nstmts; i++) print_stmt(p, x->stmts[i]);
    p->indent--;
    pad(p);
    puts_(p, "}\n");
    break;
  }
  case IR_LET_STMT: {
    const ir_let_stmt *x = (const ir_let_stmt *)n;
    pad(p);
    puts_(p, "let ");
    puts_(p, def_name(p, &x->var->h));
    puts_(p, ": ");
    print_dtype(p, x->var->h.dtype);
    puts_(p, " = ");
    print_expr(p, x->value);
    puts_(p, " ");
    print_braced(p, x->body);
    puts_(p, "\n");
    break;
  }
  case IR_ALLOCATE: {
    const ir_allocate *x = (const ir_allocate *)n;
    pad(p);
    puts_(p, "allocate ");
    print_buffer_def(p, x->buffer);
    puts_(p, " ");
    print_braced(p, x->body);
    puts_(p, "\n");
    break;
  }
  case IR_EVALUATE:
    pad(p);
    puts_(p, "evaluate(");
    print_expr(p, ((const ir_evaluate *)n)->value);
    puts_(p, ");\n");
    break;
  case IR_BLOCK: print_block(p, NULL, (const ir_block *)n); break;
  case IR_BLOCK_REALIZE: {
    const ir_block_realize *x = (const ir_block_realize *)n;
    print_block(p, x, x->block);
    break;
  }
  case IR_BUFFER: print_buffer_def(p, (const ir_buffer *)n); break;
  case IR_ITER_VAR: print_iter_var(p, (const ir_iter_var *)n); break;
  case IR_RANGE: print_range(p, (const ir_range *)n); break;
  case IR_REGION: print_region(p, (const ir_region *)n); break;
  case IR_ANNOT: {
    const ir_annot *x = (const ir_annot *)n;
    ir_sb_put_quoted(p->sb, x->key);
    puts_(p, " = ");
    print_expr(p, x->value);
    break;
  }
  case IR_FUNC: print_func(p, (const ir_func *)n); break;
  case IR_KIND_COUNT: puts_(p, "<bad node>"); break;
  }
}

/* ---- Entry points ------------------------------------------------------------------------ */

kiln_status ir_print_module(const kiln_tir_module *mod, ir_strbuf *sb) {
  printer p;
  printer_init(&p, mod->ctx, sb);
  for (int i = 0; i < mod->nfuncs; i++) {
    if (i) puts_(&p, "\n");
    print_func(&p, mod->funcs[i]);
  }
  printer_free(&p);
  return printer_status(&p);
}

kiln_status ir_print_node(kiln_context *ctx, const ir_node *n, ir_strbuf *sb) {
  printer p;
  printer_init(&p, ctx, sb);
  print_node(&p, n, P_LOWEST);
  printer_free(&p);
  return printer_status(&p);
}

char *ir_node_to_string(kiln_context *ctx, const ir_node *n) {
  ir_strbuf sb;
  ir_sb_init(&sb, ctx);
  if (ir_print_node(ctx, n, &sb)) {
    ir_sb_free(&sb);
    return NULL;
  }
  return ir_sb_take(&sb, NULL);
}

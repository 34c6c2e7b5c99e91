/* pass.h: graph passes over relay modules and the pass manager that runs them. A pass is a
 * table entry {name, opt_level, run}; the manager runs a list of passes under a pass context
 * (opt level, options, instruments: timing, an IR dump after each pass that changed the
 * module, the well-formedness verifier between passes). The default pipeline, in order, is
 * listed once in relay/pass/manager.c. Later stages (lowering to TIR) start from the output
 * of FuseOps: a "main" whose op calls all sit in primitive functions.
 *
 * Ownership: a pass rewrites its module in place. New nodes go into m->arena and the
 * module's function table is updated only when the whole pass succeeded, so on error the
 * module is unchanged. Nodes of the previous functions stay valid (the arena only grows):
 * callers may keep pointers to them, e.g. to compare before and after.
 *
 * Every pass rewrites with the generic mutator and a memo (a shared node is rewritten once),
 * driven bottom up by relay_mutate_bottom_up so that no pass recurses as deep as the graph
 * (a chain of 100000 ops goes through the pipeline). */
#ifndef KILN_RELAY_PASS_H
#define KILN_RELAY_PASS_H

#include "op.h"

typedef struct relay_pass_ctx relay_pass_ctx;

/* Rewrites m in place (see above). */
typedef kiln_status (*relay_pass_fn)(relay_pass_ctx *pc, relay_module *m);

typedef struct relay_pass {
  const char *name;
  int opt_level; /* runs when the context's opt_level is at least this */
  relay_pass_fn run;
  const char *doc; /* one line */
} relay_pass;

/* What the timing instrument records for each pass the manager ran or skipped. */
typedef struct relay_pass_record {
  const char *name;
  double seconds;
  bool changed; /* some function is a different node afterwards */
  bool skipped; /* above the context's opt_level */
} relay_pass_record;

/* Called after a pass that changed the module (the IR dump instrument). */
typedef void (*relay_dump_fn)(void *ud, const char *pass, const relay_module *m);
/* A dump function that prints "# after PASS:" and the module (constants of more than 16
 * elements elided) to the FILE * given as ud. */
void relay_dump_to_file(void *file, const char *pass, const relay_module *m);

enum { RELAY_MAX_PASS_RECORDS = 64, RELAY_FUSE_MAX_DEPTH = 256 };

struct relay_pass_ctx {
  int opt_level;      /* default 3: everything */
  bool verify;        /* run relay_verify_module after every pass (default on) */
  relay_dump_fn dump; /* NULL: no dump */
  void *dump_ud;
  /* options of individual passes */
  int fuse_max_depth; /* FuseOps: at most this many ops per primitive function */
  int nbinds;         /* BindShapes: symbolic dimension names and their values */
  const char *const *bind_names;
  const int64_t *bind_values;
  /* the timing instrument's results, one per pass run or skipped (the first 64) */
  int nrecords;
  relay_pass_record records[RELAY_MAX_PASS_RECORDS];
};

/* Defaults: opt_level 3, verifier on, no dump, fuse depth 256, no bindings. */
void relay_pass_ctx_init(relay_pass_ctx *pc);

/* The passes (one per file in relay/pass/). */
extern const relay_pass relay_pass_infer_type;         /* InferType */
extern const relay_pass relay_pass_simplify_inference; /* SimplifyInference */
extern const relay_pass relay_pass_fold_constant;      /* FoldConstant */
extern const relay_pass relay_pass_fold_scale_axis;    /* FoldScaleAxis */
extern const relay_pass relay_pass_cse;                /* EliminateCommonSubexpr */
extern const relay_pass relay_pass_dce;                /* DeadCodeElimination */
extern const relay_pass relay_pass_fuse_ops;           /* FuseOps */
extern const relay_pass relay_pass_bind_shapes;        /* BindShapes */
extern const relay_pass relay_pass_alter_conv_layout;  /* AlterConvLayout (not default) */
extern const relay_pass relay_pass_alter_dense_layout; /* AlterDenseLayout (not default) */

/* Every pass, for lookups by name and listings. */
int relay_pass_count(void);
const relay_pass *relay_pass_at(int i);
const relay_pass *relay_pass_lookup(const char *name);
/* The default pipeline, in order. */
int relay_default_pipeline(const relay_pass *const **passes);

/* Runs passes in order under pc (instruments included). Stops at the first error, with the
 * module as the last successful pass left it. */
kiln_status relay_run_passes(relay_pass_ctx *pc, relay_module *m, int n,
                             const relay_pass *const *passes);
kiln_status relay_run_default_pipeline(relay_pass_ctx *pc, relay_module *m);
/* Appends the timing instrument's table ("pass  seconds  changed") to sb. */
void relay_pass_report(const relay_pass_ctx *pc, ir_strbuf *sb);

/* The well-formedness check between passes: every variable used is defined in scope and
 * defined once, every expression has a type, every global names a function of the module,
 * every function parameter is annotated and primitive functions capture nothing.
 * KILN_ERR_UNDEFINED / KILN_ERR_TYPE with a message naming the function and the node. */
kiln_status relay_verify_module(const relay_module *m);

/* Single passes with default options (convenience for callers and tests). */
kiln_status relay_infer_type(relay_module *m);
kiln_status relay_fuse_ops(relay_module *m, int max_depth);
kiln_status relay_bind_shapes(relay_module *m, int n, const char *const *names,
                              const int64_t *values);

/* ---- Helpers shared by the pass implementations ---------------------------------------- */

/* The child expressions of e in evaluation order (call: fn then args; let: value then body;
 * if: cond, then, else; function: its body), not its type or attributes. */
int relay_expr_child_count(const relay_expr *e);
relay_expr *relay_expr_child(const relay_expr *e, int i);

/* The expressions reachable from root, each once, children before parents (a topological
 * order of the DAG). Function bodies are entered only when enter_funcs is set. The array is
 * the caller's: ir_free(ctx, *order, sizeof(relay_expr *) * *n). */
kiln_status relay_post_order(kiln_context *ctx, relay_expr *root, bool enter_funcs,
                             relay_expr ***order, int *n);

/* Runs a memoizing mutator over root without recursing as deep as the graph: the nodes are
 * visited bottom up (children first, function bodies entered unless primitive), so each
 * visit finds its children rewritten in the memo already. The same result as
 * ir_mutate(mu, root) for visits that do not depend on where a node sits; a pass whose
 * visit of a let prepares its body (memo entries for the let's variable) gives that step as
 * at_let_body, run after the value and before the body. mu->memo must be set. */
typedef kiln_status (*relay_let_hook)(ir_mutator *mu, relay_let *let);
ir_node *relay_mutate_bottom_up(ir_mutator *mu, relay_expr *root, relay_let_hook at_let_body);

/* The usual body of a pass's function rewrite: a memoizing mutator (visit, ud, definitions
 * visited) run over f in m's arena by relay_mutate_bottom_up. NULL on error. */
relay_func *relay_mutate_func(relay_module *m, relay_func *f,
                              ir_node *(*visit)(ir_mutator *mu, ir_node *n), void *ud,
                              relay_let_hook at_let_body);

/* The status for a mutator that returned NULL: the context's error, or an internal one. */
kiln_status relay_pass_error(kiln_context *ctx, const char *pass);

/* Applies a rewrite to every function of m: fn(pc, m, f, ud) returns the new function (f
 * itself when unchanged) or NULL on error. The table is updated only when all succeeded. */
typedef relay_func *(*relay_func_rewrite)(relay_pass_ctx *pc, relay_module *m, relay_func *f,
                                          void *ud);
kiln_status relay_rewrite_funcs(relay_pass_ctx *pc, relay_module *m, const char *pass,
                                relay_func_rewrite fn, void *ud);

/* FoldConstant's evaluator: a call of an op whose arguments are all constants becomes a
 * constant (or a tuple of constants) in arena a; anything else is returned unchanged. NULL
 * on error. */
relay_expr *relay_fold_call(const relay_module *m, ir_arena *a, relay_expr *e);

/* A 0-d constant of dtype t holding v (rounded to t). */
relay_expr *relay_scalar_const(ir_arena *a, kiln_dtype t, double v);

#endif

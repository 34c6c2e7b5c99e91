/* node.h: the loop-level tensor IR (TIR): expressions, statements, TensorIR blocks, buffers
 * and PrimFuncs. Every node kind is listed once in IR_NODE_KINDS; the enum, the names and the
 * field descriptors that drive structural equality, hashing and the generic visitor/mutator
 * all come from that table. Nodes live in arenas and never change after construction. */
#ifndef KILN_IR_NODE_H
#define KILN_IR_NODE_H

#include "base.h"

/* X(ENUM, "name", struct type, category). Binary operators share one struct. */
#define IR_NODE_KINDS(X)                                  \
  /* expressions */                                       \
  X(INT_IMM, "int_imm", ir_int_imm, IR_CAT_EXPR)          \
  X(FLOAT_IMM, "float_imm", ir_float_imm, IR_CAT_EXPR)    \
  X(STR_IMM, "str_imm", ir_str_imm, IR_CAT_EXPR)          \
  X(VAR, "var", ir_var, IR_CAT_EXPR)                      \
  X(ADD, "add", ir_binary, IR_CAT_EXPR)                   \
  X(SUB, "sub", ir_binary, IR_CAT_EXPR)                   \
  X(MUL, "mul", ir_binary, IR_CAT_EXPR)                   \
  X(DIV, "div", ir_binary, IR_CAT_EXPR)                   \
  X(MOD, "mod", ir_binary, IR_CAT_EXPR)                   \
  X(FLOORDIV, "floordiv", ir_binary, IR_CAT_EXPR)         \
  X(FLOORMOD, "floormod", ir_binary, IR_CAT_EXPR)         \
  X(MIN, "min", ir_binary, IR_CAT_EXPR)                   \
  X(MAX, "max", ir_binary, IR_CAT_EXPR)                   \
  X(EQ, "eq", ir_binary, IR_CAT_EXPR)                     \
  X(NE, "ne", ir_binary, IR_CAT_EXPR)                     \
  X(LT, "lt", ir_binary, IR_CAT_EXPR)                     \
  X(LE, "le", ir_binary, IR_CAT_EXPR)                     \
  X(GT, "gt", ir_binary, IR_CAT_EXPR)                     \
  X(GE, "ge", ir_binary, IR_CAT_EXPR)                     \
  X(AND, "and", ir_binary, IR_CAT_EXPR)                   \
  X(OR, "or", ir_binary, IR_CAT_EXPR)                     \
  X(NOT, "not", ir_not, IR_CAT_EXPR)                      \
  X(SELECT, "select", ir_select, IR_CAT_EXPR)             \
  X(CAST, "cast", ir_cast, IR_CAT_EXPR)                   \
  X(RAMP, "ramp", ir_ramp, IR_CAT_EXPR)                   \
  X(BROADCAST, "broadcast", ir_broadcast, IR_CAT_EXPR)    \
  X(LOAD, "load", ir_load, IR_CAT_EXPR)                   \
  X(CALL, "call", ir_call, IR_CAT_EXPR)                   \
  X(LET, "let", ir_let, IR_CAT_EXPR)                      \
  /* statements */                                        \
  X(STORE, "store", ir_store, IR_CAT_STMT)                \
  X(FOR, "for", ir_for, IR_CAT_STMT)                      \
  X(IF, "if", ir_if, IR_CAT_STMT)                         \
  X(SEQ, "seq", ir_seq, IR_CAT_STMT)                      \
  X(LET_STMT, "let_stmt", ir_let_stmt, IR_CAT_STMT)       \
  X(ALLOCATE, "allocate", ir_allocate, IR_CAT_STMT)       \
  X(EVALUATE, "evaluate", ir_evaluate, IR_CAT_STMT)       \
  X(BLOCK, "block", ir_block, IR_CAT_STMT)                \
  X(BLOCK_REALIZE, "block_realize", ir_block_realize, IR_CAT_STMT) \
  /* auxiliary nodes */                                   \
  X(BUFFER, "buffer", ir_buffer, IR_CAT_AUX)              \
  X(ITER_VAR, "iter_var", ir_iter_var, IR_CAT_AUX)        \
  X(RANGE, "range", ir_range, IR_CAT_AUX)                 \
  X(REGION, "region", ir_region, IR_CAT_AUX)              \
  X(ANNOT, "annot", ir_annot, IR_CAT_AUX)                 \
  X(FUNC, "func", ir_func, IR_CAT_AUX)

typedef enum ir_kind {
#define X(e, n, s, c) IR_##e,
  IR_NODE_KINDS(X)
#undef X
  IR_KIND_COUNT
} ir_kind;

typedef enum ir_category { IR_CAT_EXPR, IR_CAT_STMT, IR_CAT_AUX } ir_category;

/* The header every node starts with. `hash` is a content hash computed at construction that
 * ignores the identity of variables and buffers (a variable contributes only its dtype): two
 * structurally equal nodes always have the same `hash`, so it is a fast pre-check. The stable
 * structural hash that also sees binding positions is ir_structural_hash. */
typedef struct ir_node {
  uint8_t kind;      /* ir_kind */
  kiln_dtype dtype;  /* expressions: their type; buffers: element type; others: void */
  ir_span span;
  uint64_t hash;
} ir_node;

/* Aliases that document what a field holds; all are ir_node. */
typedef ir_node ir_expr;
typedef ir_node ir_stmt;

/* Math intrinsics reachable through CALL. */
#define IR_INTRINSICS(X)                                                              \
  X(EXP, "exp", 1) X(LOG, "log", 1) X(SQRT, "sqrt", 1) X(RSQRT, "rsqrt", 1)            \
  X(TANH, "tanh", 1) X(ERF, "erf", 1) X(SIGMOID, "sigmoid", 1) X(POW, "pow", 2)        \
  X(FABS, "fabs", 1) X(FLOOR, "floor", 1) X(CEIL, "ceil", 1) X(ROUND, "round", 1)      \
  X(FMA, "fma", 3)

typedef enum ir_intrinsic {
#define X(e, n, a) IR_OP_##e,
  IR_INTRINSICS(X)
#undef X
  IR_OP_COUNT
} ir_intrinsic;

/* How a for loop runs. */
typedef enum ir_for_kind {
  IR_FOR_SERIAL,
  IR_FOR_PARALLEL,
  IR_FOR_VECTORIZED,
  IR_FOR_UNROLLED,
  IR_FOR_KIND_COUNT
} ir_for_kind;

/* Block iterator types. */
typedef enum ir_iter_type { IR_ITER_SPATIAL, IR_ITER_REDUCE, IR_ITER_TYPE_COUNT } ir_iter_type;

typedef struct ir_var ir_var;
typedef struct ir_buffer ir_buffer;
typedef struct ir_annot ir_annot;
typedef struct ir_range ir_range;
typedef struct ir_region ir_region;
typedef struct ir_iter_var ir_iter_var;
typedef struct ir_block ir_block;
typedef struct ir_func ir_func;

typedef struct ir_int_imm { ir_node h; int64_t value; } ir_int_imm;
typedef struct ir_float_imm { ir_node h; double value; } ir_float_imm;
/* String immediates appear as annotation values. */
typedef struct ir_str_imm { ir_node h; const char *value; } ir_str_imm;
/* A variable: its identity is its address; the name is only a hint for printing. */
struct ir_var { ir_node h; const char *name; };
typedef struct ir_binary { ir_node h; ir_expr *a, *b; } ir_binary;
typedef struct ir_not { ir_node h; ir_expr *a; } ir_not;
typedef struct ir_select { ir_node h; ir_expr *cond, *t, *f; } ir_select;
typedef struct ir_cast { ir_node h; ir_expr *value; } ir_cast;
/* base, base + stride, ..., base + (lanes-1)*stride */
typedef struct ir_ramp { ir_node h; ir_expr *base, *stride; int32_t lanes; } ir_ramp;
typedef struct ir_broadcast { ir_node h; ir_expr *value; int32_t lanes; } ir_broadcast;
typedef struct ir_load {
  ir_node h;
  ir_buffer *buffer;
  int32_t nindices;
  ir_expr **indices;
} ir_load;
typedef struct ir_call { ir_node h; int32_t op; int32_t nargs; ir_expr **args; } ir_call;
typedef struct ir_let { ir_node h; ir_var *var; ir_expr *value, *body; } ir_let;

typedef struct ir_store {
  ir_node h;
  ir_buffer *buffer;
  ir_expr *value;
  int32_t nindices;
  ir_expr **indices;
} ir_store;
typedef struct ir_for {
  ir_node h;
  ir_var *var;
  ir_expr *min, *extent;
  int32_t for_kind; /* ir_for_kind */
  int32_t nannots;
  ir_annot **annots;
  ir_stmt *body;
} ir_for;
typedef struct ir_if { ir_node h; ir_expr *cond; ir_stmt *then_case, *else_case; } ir_if;
typedef struct ir_seq { ir_node h; int32_t nstmts; ir_stmt **stmts; } ir_seq;
typedef struct ir_let_stmt { ir_node h; ir_var *var; ir_expr *value; ir_stmt *body; } ir_let_stmt;
/* Allocates `buffer` for the duration of body. */
typedef struct ir_allocate { ir_node h; ir_buffer *buffer; ir_stmt *body; } ir_allocate;
typedef struct ir_evaluate { ir_node h; ir_expr *value; } ir_evaluate;
/* A TensorIR block: iterators with domains, the regions it reads and writes, buffers it
 * allocates, an optional init (for reductions) and a body written over its iterators. */
struct ir_block {
  ir_node h;
  const char *name;
  int32_t niters;
  ir_iter_var **iters;
  int32_t nreads;
  ir_region **reads;
  int32_t nwrites;
  ir_region **writes;
  int32_t nallocs;
  ir_buffer **allocs;
  int32_t nannots;
  ir_annot **annots;
  ir_stmt *init; /* may be NULL */
  ir_stmt *body;
};
/* Binds a block's iterators to values (usually expressions of the enclosing loop variables)
 * and runs it where predicate holds. */
typedef struct ir_block_realize {
  ir_node h;
  int32_t nvalues;
  ir_expr **values;
  ir_expr *predicate;
  ir_block *block;
} ir_block_realize;

/* A buffer: element dtype (in h.dtype), shape, optional strides (none: dense row-major),
 * element offset, alignment in bytes and storage scope ("global", "local", ...). */
struct ir_buffer {
  ir_node h;
  const char *name;
  int32_t ndim;
  ir_expr **shape;
  int32_t nstrides; /* 0 or ndim */
  ir_expr **strides;
  ir_expr *elem_offset;
  int32_t align;
  const char *scope;
};
struct ir_iter_var { ir_node h; ir_var *var; ir_expr *min, *extent; int32_t iter_type; };
struct ir_range { ir_node h; ir_expr *min, *extent; };
struct ir_region { ir_node h; ir_buffer *buffer; int32_t nranges; ir_range **ranges; };
/* A key and a value (an immediate: int, float or string). */
struct ir_annot { ir_node h; const char *key; ir_expr *value; };
/* A PrimFunc: parameters are buffers (dense tensors) or scalar variables. */
struct ir_func {
  ir_node h;
  const char *name;
  int32_t nparams;
  ir_node **params; /* ir_buffer or ir_var */
  int32_t nattrs;
  ir_annot **attrs;
  ir_stmt *body;
};

/* ---- Field descriptors ------------------------------------------------------------- */

typedef enum ir_field_kind {
  IR_F_NODE,  /* a child node (may be NULL where optional) */
  IR_F_NODES, /* an array of child nodes with its count */
  IR_F_DEF,   /* a variable or buffer defined (bound) here */
  IR_F_DEFS,  /* an array of definitions */
  IR_F_REF,   /* a reference to a buffer defined elsewhere */
  IR_F_I32,
  IR_F_I64,
  IR_F_F64,
  IR_F_STR,   /* a string that is part of the structure */
  IR_F_NAME,  /* a name hint: printed, but ignored by equality and hashing */
  IR_F_I64S,  /* an array of int64_t with its int32_t count */
  IR_F_BYTES  /* raw bytes (tensor data) with their int64_t size */
} ir_field_kind;

typedef struct ir_field {
  const char *name;
  uint8_t kind;
  uint16_t offset;       /* of the value (for arrays: of the pointer) */
  uint16_t count_offset; /* arrays: of the int32_t count; bytes: of the int64_t size */
} ir_field;

enum { IR_MAX_FIELDS = 9 };

/* Kind flags. A binding kind (a variable) is identified by its address: where it appears as
 * a child it is a use, compared and hashed by binding position; IR_F_DEF fields define it. */
enum { IR_KIND_BINDING = 1 };

typedef struct ir_kind_info {
  const char *name;
  uint8_t category; /* ir_category, or a category of the layer that registered the kind */
  uint16_t size;    /* sizeof the struct */
  uint8_t nfields;
  ir_field fields[IR_MAX_FIELDS];
  uint8_t flags;
} ir_kind_info;

/* The TIR kinds. Generic code reaches every kind, other layers' included, through
 * ir_kind_info_of. */
extern const ir_kind_info ir_kinds[IR_KIND_COUNT];

/* Other layers (the graph IR) add node kinds numbered from IR_EXT_KIND_FIRST, with their own
 * validation hook (the role check_node plays for TIR: validate, derive types), so that the
 * generic machinery (equality, hashing, visitor, mutator, deep copy) serves them unchanged. */
enum { IR_EXT_KIND_FIRST = 64, IR_KIND_LIMIT = 256 };
typedef ir_node *(*ir_check_fn)(ir_arena *a, ir_node *n);
typedef struct ir_kind_table {
  int first, count;
  const ir_kind_info *infos;
  ir_check_fn check;
} ir_kind_table;
/* Registers a layer's kinds; the layer calls it once (pthread_once) before making any node. */
void ir_register_kinds(const ir_kind_table *t);
/* The descriptor of any kind, or NULL for a kind nobody registered. */
const ir_kind_info *ir_kind_info_of(int kind);

static inline const char *ir_kind_name(int kind) {
  const ir_kind_info *k = ir_kind_info_of(kind);
  return k ? k->name : "?";
}
const char *ir_intrinsic_name(int op);
int ir_intrinsic_arity(int op);
/* The intrinsic named s, or -1. */
int ir_intrinsic_lookup(const char *s, size_t len);
const char *ir_for_kind_name(int k);
const char *ir_iter_type_name(int t);

/* Checked downcasts: NULL-safe, and NULL when the node is of another kind. */
#define IR_AS(T, KIND, n) ((n) && ((const ir_node *)(n))->kind == (KIND) ? (T *)(n) : (T *)0)
#define ir_as_int(n) IR_AS(ir_int_imm, IR_INT_IMM, n)
#define ir_as_float(n) IR_AS(ir_float_imm, IR_FLOAT_IMM, n)
#define ir_as_str(n) IR_AS(ir_str_imm, IR_STR_IMM, n)
#define ir_as_var(n) IR_AS(ir_var, IR_VAR, n)
#define ir_as_buffer(n) IR_AS(ir_buffer, IR_BUFFER, n)
#define ir_as_load(n) IR_AS(ir_load, IR_LOAD, n)
#define ir_as_store(n) IR_AS(ir_store, IR_STORE, n)
#define ir_as_for(n) IR_AS(ir_for, IR_FOR, n)
#define ir_as_block(n) IR_AS(ir_block, IR_BLOCK, n)
#define ir_as_realize(n) IR_AS(ir_block_realize, IR_BLOCK_REALIZE, n)
#define ir_as_func(n) IR_AS(ir_func, IR_FUNC, n)
static inline bool ir_is_binary(const ir_node *n) {
  return n && n->kind >= IR_ADD && n->kind <= IR_OR;
}
static inline bool ir_is_expr(const ir_node *n) {
  return n && n->kind < IR_KIND_COUNT && ir_kinds[n->kind].category == IR_CAT_EXPR;
}
static inline bool ir_is_stmt(const ir_node *n) {
  return n && n->kind < IR_KIND_COUNT && ir_kinds[n->kind].category == IR_CAT_STMT;
}
static inline bool ir_is_binding(const ir_node *n) {
  const ir_kind_info *k = n ? ir_kind_info_of(n->kind) : NULL;
  return k && (k->flags & IR_KIND_BINDING);
}
#define ir_as_binary(n) (ir_is_binary((const ir_node *)(n)) ? (ir_binary *)(n) : (ir_binary *)0)

/* dtype helpers */
static inline bool ir_dt_is_int(kiln_dtype t) {
  return t.code == KILN_TYPE_INT || t.code == KILN_TYPE_UINT;
}
static inline bool ir_dt_is_float(kiln_dtype t) {
  return t.code == KILN_TYPE_FLOAT || t.code == KILN_TYPE_BFLOAT;
}
static inline bool ir_dt_is_bool(kiln_dtype t) { return t.code == KILN_TYPE_BOOL; }
static inline kiln_dtype ir_dt_with_lanes(kiln_dtype t, int lanes) {
  t.lanes = (uint16_t)lanes;
  return t;
}
static inline kiln_dtype ir_dt_scalar(kiln_dtype t) { return ir_dt_with_lanes(t, 1); }
static inline bool ir_dt_eq(kiln_dtype a, kiln_dtype b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}

/* ---- Constructors ------------------------------------------------------------------ */
/* Each takes the arena that will own the node, validates its operands (dtypes, counts) and
 * stamps a->span on the node. Any NULL operand (an earlier failure) makes the result NULL,
 * so calls nest; on a validation failure the error is recorded on a->ctx with a->span.
 * Arrays passed in are copied into the arena. Strings are copied too. */

ir_expr *ir_int(ir_arena *a, kiln_dtype t, int64_t v);
ir_expr *ir_i32(ir_arena *a, int64_t v);
ir_expr *ir_float(ir_arena *a, kiln_dtype t, double v);
ir_expr *ir_str(ir_arena *a, const char *s);
ir_var *ir_var_new(ir_arena *a, const char *name, kiln_dtype t);
/* Any binary operator kind (IR_ADD .. IR_OR). Operands must have the same dtype. */
ir_expr *ir_binop(ir_arena *a, int kind, ir_expr *x, ir_expr *y);
ir_expr *ir_add(ir_arena *a, ir_expr *x, ir_expr *y);
ir_expr *ir_sub(ir_arena *a, ir_expr *x, ir_expr *y);
ir_expr *ir_mul(ir_arena *a, ir_expr *x, ir_expr *y);
ir_expr *ir_not_new(ir_arena *a, ir_expr *x);
ir_expr *ir_select_new(ir_arena *a, ir_expr *cond, ir_expr *t, ir_expr *f);
ir_expr *ir_cast_new(ir_arena *a, kiln_dtype t, ir_expr *x);
ir_expr *ir_ramp_new(ir_arena *a, ir_expr *base, ir_expr *stride, int lanes);
ir_expr *ir_broadcast_new(ir_arena *a, ir_expr *x, int lanes);
ir_expr *ir_load_new(ir_arena *a, ir_buffer *buf, int n, ir_expr *const *indices);
ir_expr *ir_call_new(ir_arena *a, int op, int n, ir_expr *const *args);
ir_expr *ir_let_new(ir_arena *a, ir_var *v, ir_expr *value, ir_expr *body);

ir_stmt *ir_store_new(ir_arena *a, ir_buffer *buf, ir_expr *value, int n, ir_expr *const *indices);
ir_stmt *ir_for_new(ir_arena *a, ir_var *v, ir_expr *min, ir_expr *extent, int for_kind,
                int nannots, ir_annot *const *annots, ir_stmt *body);
ir_stmt *ir_if_new(ir_arena *a, ir_expr *cond, ir_stmt *then_case, ir_stmt *else_case);
/* A sequence; nested sequences are not flattened. n >= 1. */
ir_stmt *ir_seq_new(ir_arena *a, int n, ir_stmt *const *stmts);
ir_stmt *ir_let_stmt_new(ir_arena *a, ir_var *v, ir_expr *value, ir_stmt *body);
ir_stmt *ir_allocate_new(ir_arena *a, ir_buffer *buf, ir_stmt *body);
ir_stmt *ir_evaluate_new(ir_arena *a, ir_expr *value);
ir_block *ir_block_new(ir_arena *a, const char *name, int niters, ir_iter_var *const *iters,
                       int nreads, ir_region *const *reads, int nwrites,
                       ir_region *const *writes, int nallocs, ir_buffer *const *allocs,
                       int nannots, ir_annot *const *annots, ir_stmt *init, ir_stmt *body);
/* predicate NULL means true. */
ir_stmt *ir_block_realize_new(ir_arena *a, int nvalues, ir_expr *const *values, ir_expr *predicate,
                          ir_block *block);

/* strides: NULL/0 for dense; elem_offset NULL for 0; scope NULL for "global"; align 0 for
 * the default (64 bytes). */
ir_buffer *ir_buffer_new(ir_arena *a, const char *name, kiln_dtype t, int ndim,
                         ir_expr *const *shape, int nstrides, ir_expr *const *strides,
                         ir_expr *elem_offset, int align, const char *scope);
ir_iter_var *ir_iter_var_new(ir_arena *a, ir_var *v, ir_expr *min, ir_expr *extent,
                             int iter_type);
ir_range *ir_range_new(ir_arena *a, ir_expr *min, ir_expr *extent);
ir_region *ir_region_new(ir_arena *a, ir_buffer *buf, int n, ir_range *const *ranges);
ir_annot *ir_annot_new(ir_arena *a, const char *key, ir_expr *value);
ir_func *ir_func_new(ir_arena *a, const char *name, int nparams, ir_node *const *params,
                     int nattrs, ir_annot *const *attrs, ir_stmt *body);

/* Re-validates a node whose fields were just filled in (by a constructor or by the generic
 * mutator), derives its dtype and computes its content hash. Returns n, or NULL with the
 * error recorded. */
ir_node *ir_node_finish(ir_arena *a, ir_node *n);

/* Hash and equality of IR_F_I64S and IR_F_BYTES fields (for structural.c). */
uint64_t ir_hash_extra(uint64_t h, const ir_node *n, const ir_field *f);
bool ir_fields_extra_equal(const ir_node *a, const ir_node *b, const ir_field *f);

/* Copies an array of node pointers into the arena (NULL for n == 0). */
void *ir_arena_copy_nodes(ir_arena *a, int n, void *const *nodes);

/* ---- Traversal ----------------------------------------------------------------------- */

/* Calls fn(n, ud) on n and, if it returns true, recursively on every child reached through
 * IR_F_NODE/IR_F_NODES fields (and, with `defs`, through IR_F_DEF/IR_F_DEFS/IR_F_REF). */
typedef bool (*ir_visit_fn)(ir_node *n, void *ud);
void ir_visit(ir_node *n, bool defs, ir_visit_fn fn, void *ud);

/* A mutator: `visit` returns the rewritten node (the same pointer when nothing changed) or
 * NULL on error. ir_mutate_children applies ir_mutate to each IR_F_NODE/IR_F_NODES child and
 * rebuilds n in m->arena only if some child changed (so "unchanged" is pointer equality).
 * Definitions and buffer references are left alone unless visit_defs is set.
 * Graphs with shared subexpressions (the graph IR) set `memo`: each node is then rewritten
 * once and every occurrence gets the same result, which keeps variables one object; graph
 * passes also set visit_defs so that a variable's definition changes with its uses. */
typedef struct ir_mutator ir_mutator;
struct ir_mutator {
  ir_arena *arena;
  ir_node *(*visit)(ir_mutator *m, ir_node *n);
  void *ud;
  ir_ptrmap *memo;  /* optional: node -> its rewrite */
  bool visit_defs;  /* also rewrite IR_F_DEF/IR_F_DEFS children */
};
ir_node *ir_mutate_children(ir_mutator *m, ir_node *n);
/* Runs m->visit on n (NULL stays NULL), through the memo when there is one. */
ir_node *ir_mutate(ir_mutator *m, ir_node *n);

/* Replaces variables by expressions (vars[i] -> values[i]) everywhere in n. */
ir_node *ir_substitute(ir_arena *a, ir_node *n, int nvars, ir_var *const *vars,
                       ir_expr *const *values);

/* Copies n and every node it reaches into dst (structurally equal, sharing preserved), so the
 * copy does not depend on the source arena. NULL on allocation failure. */
ir_node *ir_deep_copy(ir_arena *dst, const ir_node *n);

/* ---- Structural equality and hash (structural.c) ---------------------------------- */

/* Equal up to the names of variables and buffers: definitions are matched by position and
 * free variables by first occurrence. Scratch maps come from ctx; on allocation failure the
 * result is false and ctx holds KILN_ERR_NOMEM. */
bool ir_structural_equal(kiln_context *ctx, const ir_node *a, const ir_node *b);
/* A 64-bit hash consistent with ir_structural_equal and stable across runs and machines.
 * Returns KILN_OK or KILN_ERR_NOMEM. */
kiln_status ir_structural_hash(kiln_context *ctx, const ir_node *n, uint64_t *out);

/* ---- Modules ----------------------------------------------------------------------- */

/* A module of PrimFuncs with the arena that owns them. */
struct kiln_tir_module {
  kiln_context *ctx;
  ir_arena *arena;
  int32_t nfuncs;
  ir_func **funcs;
};

/* A new empty module with its own arena (NULL on failure). */
kiln_tir_module *ir_module_new(kiln_context *ctx);
/* Appends a function (which must live in mod->arena). */
kiln_status ir_module_add(kiln_tir_module *mod, ir_func *f);
ir_func *ir_module_find(kiln_tir_module *mod, const char *name);

#endif

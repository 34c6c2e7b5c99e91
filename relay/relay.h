/* relay.h: the graph IR every model becomes (Relay-like): types with symbolic dimensions,
 * expressions (variables, constants, calls of ops and functions, tuples, let, functions, if)
 * and modules of named functions. Relay nodes are ir_nodes of kinds registered by this layer,
 * so structural equality, hashing, the generic mutator and deep copy of ir/ serve them.
 *
 * Typing is eager: every constructor infers its node's type from its children's types (an
 * op call through the op's type relation), so a mutator that rebuilds a node re-infers it.
 * A node whose inputs have an unknown type (a variable without annotation) has type NULL
 * until relay_infer_type resolves it. Shapes are TIR integer expressions (int64): constants,
 * symbolic dimensions (int64 ir_vars, one per name per module) and expressions of them. */
#ifndef KILN_RELAY_RELAY_H
#define KILN_RELAY_RELAY_H

#include "ir/node.h"

/* X(ENUM, "name", struct). Kinds are numbered from IR_EXT_KIND_FIRST. */
#define RELAY_NODE_KINDS(X)                                  \
  /* types */                                                \
  X(TENSOR_TYPE, "tensor_type", relay_tensor_type)           \
  X(TUPLE_TYPE, "tuple_type", relay_tuple_type)              \
  X(FUNC_TYPE, "func_type", relay_func_type)                 \
  /* attributes of calls and functions */                    \
  X(ATTR, "attr", relay_attr)                                \
  /* expressions */                                          \
  X(VAR, "relay_var", relay_var)                             \
  X(GLOBAL, "global", relay_global)                          \
  X(CONST, "const", relay_const)                             \
  X(CALL, "relay_call", relay_call)                          \
  X(TUPLE, "tuple", relay_tuple)                             \
  X(PROJ, "proj", relay_proj)                                \
  X(LET, "relay_let", relay_let)                             \
  X(FUNC, "relay_func", relay_func)                          \
  X(IF, "relay_if", relay_if)

typedef enum relay_kind {
  RELAY_KIND_BEFORE_FIRST = IR_EXT_KIND_FIRST - 1,
#define X(e, n, s) RELAY_##e,
  RELAY_NODE_KINDS(X)
#undef X
  RELAY_KIND_END
} relay_kind;

enum { RELAY_KIND_COUNT = RELAY_KIND_END - IR_EXT_KIND_FIRST };

/* Categories of relay kinds (ir_kind_info.category). */
enum { RELAY_CAT_TYPE = 8, RELAY_CAT_ATTR, RELAY_CAT_EXPR };

typedef ir_node relay_type; /* a TENSOR_TYPE, TUPLE_TYPE or FUNC_TYPE node */
typedef ir_node relay_expr;

/* A tensor type: element type in h.dtype, shape as int64 TIR expressions. */
typedef struct relay_tensor_type {
  ir_node h;
  int32_t ndim;
  ir_expr **shape;
} relay_tensor_type;
typedef struct relay_tuple_type {
  ir_node h;
  int32_t nfields;
  relay_type **fields;
} relay_tuple_type;
typedef struct relay_func_type {
  ir_node h;
  int32_t nparams;
  relay_type **params;
  relay_type *ret;
} relay_func_type;

/* One attribute: an int, a float, a string or a list of ints. */
typedef enum relay_attr_kind {
  RELAY_ATTR_INT,
  RELAY_ATTR_FLOAT,
  RELAY_ATTR_STR,
  RELAY_ATTR_INTS
} relay_attr_kind;
typedef struct relay_attr {
  ir_node h;
  const char *key;
  int32_t attr_kind; /* relay_attr_kind */
  int64_t i;
  double f;
  const char *s;     /* "" unless a string */
  int32_t nints;
  int64_t *ints;
} relay_attr;

/* Every expression struct has `type` (its inferred type, NULL while unknown) right after the
 * header, so relay_type_of works on any expression. */
typedef struct relay_expr_head {
  ir_node h;
  relay_type *type;
} relay_expr_head;

/* A variable (identified by address; the name is a hint). `type` is its annotation. */
typedef struct relay_var {
  ir_node h;
  relay_type *type;
  const char *name;
} relay_var;
/* A reference to a function of the module by name (its type is set once the module knows it). */
typedef struct relay_global {
  ir_node h;
  relay_type *type;
  const char *name;
} relay_global;
/* A constant tensor; data holds nbytes of dense row-major elements of the type's dtype. */
typedef struct relay_const {
  ir_node h;
  relay_type *type;
  int64_t nbytes;
  void *data;
} relay_const;
/* A call of an op (op names it; fn NULL) or of a function value (op NULL; fn a function, a
 * global or a variable). attrs: for op calls, one per attribute of the op's schema, in schema
 * order (constructors fill defaults), so equal calls are equal. `opdef` caches the registry
 * entry; it is not a field (equality and hashing see the name). */
struct relay_op;
typedef struct relay_call {
  ir_node h;
  relay_type *type;
  const char *op;
  relay_expr *fn;
  int32_t nargs;
  relay_expr **args;
  int32_t nattrs;
  relay_attr **attrs;
  const struct relay_op *opdef;
} relay_call;
typedef struct relay_tuple {
  ir_node h;
  relay_type *type;
  int32_t nfields;
  relay_expr **fields;
} relay_tuple;
typedef struct relay_proj {
  ir_node h;
  relay_type *type;
  relay_expr *tuple;
  int32_t index;
} relay_proj;
typedef struct relay_let {
  ir_node h;
  relay_type *type;
  relay_expr *value;
  relay_var *var;
  relay_expr *body;
} relay_let;
/* A function. attrs are free-form (e.g. "primitive" = 1 marks a fused group). */
typedef struct relay_func {
  ir_node h;
  relay_type *type;
  int32_t nparams;
  relay_var **params;
  relay_type *ret_type; /* annotation or NULL */
  relay_expr *body;
  int32_t nattrs;
  relay_attr **attrs;
} relay_func;
typedef struct relay_if {
  ir_node h;
  relay_type *type;
  relay_expr *cond, *then_branch, *else_branch;
} relay_if;

#define RELAY_AS(T, KIND, n) IR_AS(T, KIND, n)
#define relay_as_tensor_type(n) RELAY_AS(relay_tensor_type, RELAY_TENSOR_TYPE, n)
#define relay_as_tuple_type(n) RELAY_AS(relay_tuple_type, RELAY_TUPLE_TYPE, n)
#define relay_as_func_type(n) RELAY_AS(relay_func_type, RELAY_FUNC_TYPE, n)
#define relay_as_var(n) RELAY_AS(relay_var, RELAY_VAR, n)
#define relay_as_const(n) RELAY_AS(relay_const, RELAY_CONST, n)
#define relay_as_call(n) RELAY_AS(relay_call, RELAY_CALL, n)
#define relay_as_tuple(n) RELAY_AS(relay_tuple, RELAY_TUPLE, n)
#define relay_as_func(n) RELAY_AS(relay_func, RELAY_FUNC, n)

static inline bool relay_is_expr(const ir_node *n) {
  return n && n->kind >= RELAY_VAR && n->kind < RELAY_KIND_END;
}
static inline bool relay_is_type(const ir_node *n) {
  return n && n->kind >= RELAY_TENSOR_TYPE && n->kind <= RELAY_FUNC_TYPE;
}
/* The inferred type of an expression (NULL when unknown or n is not an expression). */
static inline relay_type *relay_type_of(const ir_node *n) {
  return relay_is_expr(n) ? ((const relay_expr_head *)n)->type : NULL;
}

/* ---- Constructors -------------------------------------------------------------------- */
/* As in TIR: the arena owns the node, a->span is stamped on it, a NULL operand gives NULL, and
 * a type error is recorded on a->ctx (KILN_ERR_TYPE / KILN_ERR_SHAPE with a message that names
 * the op and the offending shapes). Arrays and strings are copied. */

relay_type *relay_tensor_type_new(ir_arena *a, kiln_dtype t, int ndim, ir_expr *const *shape);
/* A tensor type with constant dimensions. */
relay_type *relay_tensor_type_const(ir_arena *a, kiln_dtype t, int ndim, const int64_t *shape);
relay_type *relay_tuple_type_new(ir_arena *a, int n, relay_type *const *fields);
relay_type *relay_func_type_new(ir_arena *a, int n, relay_type *const *params, relay_type *ret);

relay_attr *relay_attr_int(ir_arena *a, const char *key, int64_t v);
relay_attr *relay_attr_float(ir_arena *a, const char *key, double v);
relay_attr *relay_attr_str(ir_arena *a, const char *key, const char *v);
relay_attr *relay_attr_ints(ir_arena *a, const char *key, int n, const int64_t *v);

/* type may be NULL (to be inferred). */
relay_var *relay_var_new(ir_arena *a, const char *name, relay_type *type);
relay_expr *relay_global_new(ir_arena *a, const char *name, relay_type *type);
/* Copies nbytes of data; the type must be a tensor type whose element count matches. */
relay_expr *relay_const_new(ir_arena *a, relay_type *type, const void *data, int64_t nbytes);
relay_expr *relay_scalar_f32(ir_arena *a, float v);
/* A call of the op named `op` (KILN_ERR_UNDEFINED if there is none). attrs may name any subset
 * of the op's attributes in any order; the rest take their defaults. Unknown attribute names
 * or wrong attribute kinds are KILN_ERR_TYPE. */
relay_expr *relay_call_op(ir_arena *a, const char *op, int nargs, relay_expr *const *args,
                          int nattrs, relay_attr *const *attrs);
relay_expr *relay_call_fn(ir_arena *a, relay_expr *fn, int nargs, relay_expr *const *args);
relay_expr *relay_tuple_new(ir_arena *a, int n, relay_expr *const *fields);
relay_expr *relay_proj_new(ir_arena *a, relay_expr *tuple, int index);
relay_expr *relay_let_new(ir_arena *a, relay_var *var, relay_expr *value, relay_expr *body);
relay_expr *relay_func_new(ir_arena *a, int nparams, relay_var *const *params,
                           relay_type *ret_type, relay_expr *body, int nattrs,
                           relay_attr *const *attrs);
relay_expr *relay_if_new(ir_arena *a, relay_expr *cond, relay_expr *then_branch,
                         relay_expr *else_branch);

/* ---- Attributes of calls ---------------------------------------------------------------- */

/* Looks up an attribute by key (NULL if absent). */
const relay_attr *relay_attr_find(int n, relay_attr *const *attrs, const char *key);
/* The function attribute "primitive" (a fused group) is set. */
bool relay_func_is_primitive(const relay_func *f);

/* ---- Types --------------------------------------------------------------------------- */

/* Equality of types: dtypes, ranks and dimensions, which are equal when their difference
 * simplifies to 0 (symbolic dimensions by identity). Temporaries go to `scratch`. */
bool relay_type_equal(ir_arena *scratch, const relay_type *a, const relay_type *b);
/* Writes a type like "Tensor[(1, 3, n, 224), float32]" (for messages). */
void relay_type_print(ir_strbuf *sb, const relay_type *t);
/* The number of elements of a tensor type with constant shape, or -1 when a dimension is not a
 * constant. */
int64_t relay_type_numel(const relay_type *t);

/* ---- Modules ------------------------------------------------------------------------- */

/* A module of named functions ("main" is the entry) and the symbolic dimensions it uses. */
typedef struct relay_module {
  kiln_context *ctx;
  ir_arena *arena;
  int32_t nfuncs;
  const char **names;
  relay_func **funcs;
  int32_t ndims;
  ir_var **dims; /* symbolic dimensions, one per name */
} relay_module;

relay_module *relay_module_new(kiln_context *ctx);
void relay_module_free(relay_module *m);
/* Adds or replaces the function `name` (which must live in m->arena). */
kiln_status relay_module_set(relay_module *m, const char *name, relay_func *f);
relay_func *relay_module_get(const relay_module *m, const char *name);
/* The module's symbolic dimension called name (an int64 ir_var), created on first use. */
ir_var *relay_module_dim(relay_module *m, const char *name);

/* Registers the relay node kinds with ir/ (done once, automatically, by every constructor). */
void relay_register_kinds(void);

#endif

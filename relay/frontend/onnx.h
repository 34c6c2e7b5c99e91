/* onnx.h: the ONNX importer. An ONNX model (protobuf bytes, parsed with the protobuf-c
 * bindings generated from Debian's onnx.proto) becomes a relay module whose @main takes the
 * graph inputs. onnx.c reads the model (tensors, types, the graph walk, errors); onnx_ops.c is
 * the converter table (ONNX op + opset range -> relay calls). Constant subgraphs (shape
 * arithmetic that PyTorch exports, weight transposes) are folded while importing; shape
 * arithmetic on symbolic dimensions (dim_param) is tracked as symbolic shape values. */
#ifndef KILN_RELAY_FRONTEND_ONNX_H
#define KILN_RELAY_FRONTEND_ONNX_H

#include "relay/relay.h"

/* Imports a model from its serialized bytes. External-data tensors are read from files
 * relative to dir_for_external_data (NULL: the current directory; absolute paths and ".."
 * are refused). IR versions 7-8 and default-domain opsets 11-17 are accepted. On success
 * *out is a new module (free with relay_module_free); @main's parameters are the graph inputs
 * that are not initializers, its result the one output or a tuple of the outputs. Errors:
 * KILN_ERR_CORRUPT for malformed or truncated bytes and inconsistent tensors,
 * KILN_ERR_UNSUPPORTED for versions and ops (one error listing every unsupported op with its
 * opset and node name), KILN_ERR_IO for unreadable external data, the relay constructors'
 * KILN_ERR_TYPE / KILN_ERR_SHAPE prefixed with the ONNX node. *out is NULL on error and
 * nothing stays allocated. */
kiln_status relay_from_onnx(kiln_context *ctx, const void *bytes, size_t len,
                            const char *dir_for_external_data, relay_module **out);
/* The same for a file; external data is looked up next to it. */
kiln_status relay_from_onnx_file(kiln_context *ctx, const char *path, relay_module **out);

/* ---- For the converters (onnx_ops.c) --------------------------------------------------- */
#ifdef KILN_ONNX_INTERNAL
#include "relay/frontend/onnx.pb-c.h"
#include "relay/op.h"

typedef struct onnx_importer onnx_importer;

/* Converts one node: in[0..nin) are the node's inputs (NULL for an omitted optional input),
 * out[0..nout) receive its outputs (an output left NULL is an error only if used). A NULL
 * result from a relay constructor leaves its error on the context; the converter returns
 * that code (or its own ir_fail) and the caller names the node. */
typedef kiln_status (*onnx_convert_fn)(onnx_importer *imp, const Onnx__NodeProto *node,
                                       int opset, int nin, relay_expr *const *in, int nout,
                                       relay_expr **out);
typedef struct onnx_converter {
  const char *op_type;
  int min_opset, max_opset; /* the default-domain opsets this converter implements */
  onnx_convert_fn convert;
} onnx_converter;

/* The table (onnx_ops.c). */
extern const onnx_converter onnx_converters[];
extern const int onnx_converter_count;
const onnx_converter *onnx_find_converter(const char *op_type, int opset);

/* Services of onnx.c for converters. */
kiln_context *onnx_ctx(onnx_importer *imp);
ir_arena *onnx_arena(onnx_importer *imp);
/* A relay op call, folded to a constant when every argument is a constant. NULL with the
 * error on the context. */
relay_expr *onnx_call(onnx_importer *imp, const char *op, int nargs, relay_expr *const *args,
                      int nattrs, relay_attr *const *attrs);
/* Field i of a tuple expression (taken directly from a tuple node, else a projection). */
relay_expr *onnx_proj(onnx_importer *imp, relay_expr *tuple, int i);
/* A constant from a TensorProto (for Constant nodes and attributes). */
relay_expr *onnx_tensor_const(onnx_importer *imp, const Onnx__TensorProto *t);
/* The ONNX element type as a kiln dtype; false for unsupported types (strings, complex). */
bool onnx_elem_dtype(int32_t elem_type, kiln_dtype *out);

/* Attributes of a node by name (NULL when absent). */
const Onnx__AttributeProto *onnx_attr(const Onnx__NodeProto *node, const char *name);
int64_t onnx_attr_int(const Onnx__NodeProto *node, const char *name, int64_t dflt);
double onnx_attr_float(const Onnx__NodeProto *node, const char *name, double dflt);
const char *onnx_attr_str(const Onnx__NodeProto *node, const char *name, const char *dflt);
/* The ints of an attribute; false (and *n = 0) when absent. */
bool onnx_attr_ints(const Onnx__NodeProto *node, const char *name, int *n, const int64_t **v);

/* The values of a constant integer (or float, truncated) tensor: *v points into arena memory
 * of *n entries. Fails with KILN_ERR_UNSUPPORTED naming `what` when e is not a constant. */
kiln_status onnx_const_ints(onnx_importer *imp, const relay_expr *e, const char *what, int *n,
                            int64_t **v);
/* The same as doubles. */
kiln_status onnx_const_floats(onnx_importer *imp, const relay_expr *e, const char *what, int *n,
                              double **v);
/* A constant of the given dtype and constant shape from doubles (rounded to the dtype). */
relay_expr *onnx_make_const(onnx_importer *imp, kiln_dtype t, int ndim, const int64_t *shape,
                            const double *vals);
/* The tensor type of e, or NULL with KILN_ERR_TYPE naming `what`. */
const relay_tensor_type *onnx_tensor_type(onnx_importer *imp, const relay_expr *e,
                                          const char *what);
/* The constant dimensions of e's type; KILN_ERR_UNSUPPORTED naming `what` when a dimension
 * is symbolic. shape must hold RELAY_MAX_DIMS entries. */
kiln_status onnx_static_shape(onnx_importer *imp, const relay_expr *e, const char *what,
                              int *ndim, int64_t *shape);

/* ---- Symbolic shape values ----
 * Shape of a tensor with symbolic dimensions (batch) is not a runtime tensor but a known
 * vector of int64 TIR expressions. Such a value travels through the value map as a
 * placeholder relay variable of type Tensor[(n,), dtype] (or a scalar) that the importer
 * recognizes; the shape-arithmetic converters compute on its elements, and the consumers of
 * shapes (Reshape, Expand) map it onto what their relay op can express. A result whose
 * elements all simplify to constants is an ordinary constant. A placeholder that reaches any
 * other input (onnx_shape_inputs says which are allowed) or a graph output is an error. */
enum { ONNX_MAX_SHAPE_ELEMS = 64 };
typedef struct onnx_shape_value {
  kiln_dtype dtype; /* the ONNX value's integer dtype (int64 from Shape; Cast may change it) */
  int rank;         /* 0 (a scalar, e.g. Gather with a scalar index) or 1 */
  int n;            /* number of elements (1 for rank 0) */
  ir_expr **elems;  /* simplified int64 expressions (arena memory) */
} onnx_shape_value;

/* The symbolic shape value e stands for, or NULL when e is an ordinary expression. */
const onnx_shape_value *onnx_shape_value_of(onnx_importer *imp, const relay_expr *e);
/* e as a shape value: a symbolic one, or an integer constant of rank <= 1 with at most
 * ONNX_MAX_SHAPE_ELEMS elements (elements become constants). false when it is neither. */
bool onnx_as_shape_value(onnx_importer *imp, const relay_expr *e, onnx_shape_value *out);
/* A new shape value from elements (simplified here): a constant when every element is one,
 * else a placeholder. NULL with the error on the context. */
relay_expr *onnx_shape_value_new(onnx_importer *imp, kiln_dtype dt, int rank, int n,
                                 ir_expr *const *elems);
/* Simplified dimension arithmetic (int64; symbolic dimensions are known to be >= 0). */
ir_expr *onnx_dim_binop(onnx_importer *imp, int kind, ir_expr *x, ir_expr *y);
/* True when x == y / x >= 0 is provable. */
bool onnx_dim_equal(onnx_importer *imp, ir_expr *x, ir_expr *y);
bool onnx_dim_nonneg(onnx_importer *imp, ir_expr *x);
/* "[batch, 512]" (or "batch" for a scalar) into buf, for messages. */
const char *onnx_shape_value_str(const onnx_shape_value *sv, char *buf, size_t size);
/* The first symbolic element as text. */
const char *onnx_shape_value_symbolic(const onnx_shape_value *sv, char *buf, size_t size);
/* The inputs of op_type (bit i: input i) that may be symbolic shape values (onnx_ops.c). */
uint32_t onnx_shape_inputs(const char *op_type);
#endif

#endif

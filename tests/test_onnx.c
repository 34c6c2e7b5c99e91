/* test_onnx.c: the ONNX importer. Models are built here with the protobuf-c structs generated
 * from onnx.proto, packed to bytes, imported, and checked by type, printed text and the relay
 * interpreter's numbers; negative tests cover unsupported ops, corrupt bytes (truncation,
 * bit flips, garbage), shape errors naming the node, and allocation failures. */
#include <math.h>

#include "ir/base.h"
#include "relay/frontend/onnx.h"
#include "relay/frontend/onnx.pb-c.h"
#include "relay/interp.h"
#include "relay/pass.h"
#include "relay/text.h"
#include "test_util.h"

/* ---- A tiny model builder (test memory: malloc, freed by mb_free) ---------------------- */

enum { MB_MAX = 64 };
typedef struct mb {
  Onnx__ModelProto model;
  Onnx__GraphProto graph;
  Onnx__OperatorSetIdProto opset;
  Onnx__OperatorSetIdProto *opsets[1];
  Onnx__NodeProto nodes[MB_MAX], *node_ptrs[MB_MAX];
  Onnx__AttributeProto attrs[MB_MAX], *attr_ptrs[MB_MAX];
  int nattrs;
  Onnx__TensorProto inits[MB_MAX], *init_ptrs[MB_MAX];
  Onnx__ValueInfoProto vis[MB_MAX], *in_ptrs[MB_MAX], *out_ptrs[MB_MAX];
  Onnx__TypeProto types[MB_MAX];
  Onnx__TypeProto__Tensor ttypes[MB_MAX];
  Onnx__TensorShapeProto shapes[MB_MAX];
  Onnx__TensorShapeProto__Dimension dims[MB_MAX * 4], *dim_ptrs[MB_MAX * 4];
  int nvis, ndims;
} mb;

static void mb_init(mb *b, int opset) {
  memset(b, 0, sizeof *b);
  b->model = (Onnx__ModelProto)ONNX__MODEL_PROTO__INIT;
  b->graph = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
  b->opset = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
  b->opset.has_version = 1;
  b->opset.version = opset;
  b->opsets[0] = &b->opset;
  b->model.has_ir_version = 1;
  b->model.ir_version = 8;
  b->model.n_opset_import = 1;
  b->model.opset_import = b->opsets;
  b->model.graph = &b->graph;
  b->graph.name = "g";
  b->graph.node = b->node_ptrs;
  b->graph.initializer = b->init_ptrs;
  b->graph.input = b->in_ptrs;
  b->graph.output = b->out_ptrs;
}

/* A value info: elem FLOAT, dims (a negative dim -k takes the name params[k-1]). */
static Onnx__ValueInfoProto *mb_vi(mb *b, const char *name, int nd, const int64_t *d, const char *param) {
  int i = b->nvis++;
  Onnx__ValueInfoProto *v = &b->vis[i];
  *v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
  b->types[i] = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
  b->ttypes[i] = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
  b->shapes[i] = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
  v->name = (char *)name;
  v->type = &b->types[i];
  b->types[i].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  b->types[i].tensor_type = &b->ttypes[i];
  b->ttypes[i].has_elem_type = 1;
  b->ttypes[i].elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  b->ttypes[i].shape = &b->shapes[i];
  b->shapes[i].n_dim = (size_t)nd;
  b->shapes[i].dim = &b->dim_ptrs[b->ndims];
  for (int k = 0; k < nd; k++) {
    Onnx__TensorShapeProto__Dimension *dm = &b->dims[b->ndims];
    *dm = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
    if (d[k] < 0) {
      dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      dm->dim_param = (char *)param;
    } else {
      dm->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      dm->dim_value = d[k];
    }
    b->dim_ptrs[b->ndims++] = dm;
  }
  return v;
}

static void mb_input(mb *b, const char *name, int nd, const int64_t *d, const char *param) {
  b->in_ptrs[b->graph.n_input++] = mb_vi(b, name, nd, d, param);
}
static void mb_output(mb *b, const char *name) {
  int64_t none = 0;
  b->out_ptrs[b->graph.n_output++] = mb_vi(b, name, 0, &none, NULL);
}

/* A float initializer (data must outlive the builder). */
static void mb_init_f(mb *b, const char *name, int nd, int64_t *d, float *data, int n) {
  Onnx__TensorProto *t = &b->inits[b->graph.n_initializer];
  *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
  t->name = (char *)name;
  t->has_data_type = 1;
  t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  t->n_dims = (size_t)nd;
  t->dims = d;
  t->n_float_data = (size_t)n;
  t->float_data = data;
  b->init_ptrs[b->graph.n_initializer++] = t;
}
static void mb_init_i(mb *b, const char *name, int nd, int64_t *d, int64_t *data, int n) {
  Onnx__TensorProto *t = &b->inits[b->graph.n_initializer];
  *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
  t->name = (char *)name;
  t->has_data_type = 1;
  t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
  t->n_dims = (size_t)nd;
  t->dims = d;
  t->n_int64_data = (size_t)n;
  t->int64_data = data;
  b->init_ptrs[b->graph.n_initializer++] = t;
}

/* A node; ins/outs are NULL-terminated name lists (the arrays must outlive the builder). */
static Onnx__NodeProto *mb_node(mb *b, const char *op, const char *name, char **ins, char **outs) {
  Onnx__NodeProto *n = &b->nodes[b->graph.n_node];
  *n = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
  n->op_type = (char *)op;
  n->name = (char *)name;
  n->input = ins;
  while (ins[n->n_input]) n->n_input++;
  n->output = outs;
  while (outs[n->n_output]) n->n_output++;
  n->attribute = &b->attr_ptrs[b->nattrs];
  b->node_ptrs[b->graph.n_node++] = n;
  return n;
}

/* Attributes go right after their node (mb_node sets the node's attribute array there). */
static Onnx__AttributeProto *mb_attr(mb *b, Onnx__NodeProto *n, const char *name) {
  Onnx__AttributeProto *a = &b->attrs[b->nattrs];
  *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
  a->name = (char *)name;
  b->attr_ptrs[b->nattrs++] = a;
  n->n_attribute++;
  return a;
}
static void mb_attr_i(mb *b, Onnx__NodeProto *n, const char *name, int64_t v) {
  Onnx__AttributeProto *a = mb_attr(b, n, name);
  a->has_type = 1;
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  a->has_i = 1;
  a->i = v;
}
static void mb_attr_f(mb *b, Onnx__NodeProto *n, const char *name, float v) {
  Onnx__AttributeProto *a = mb_attr(b, n, name);
  a->has_type = 1;
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
  a->has_f = 1;
  a->f = v;
}
static void mb_attr_ints(mb *b, Onnx__NodeProto *n, const char *name, int k, int64_t *v) {
  Onnx__AttributeProto *a = mb_attr(b, n, name);
  a->has_type = 1;
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
  a->n_ints = (size_t)k;
  a->ints = v;
}

/* The packed bytes (malloc'd). */
static uint8_t *mb_pack(mb *b, size_t *len) {
  *len = onnx__model_proto__get_packed_size(&b->model);
  uint8_t *buf = malloc(*len + 1);
  ck_assert_ptr_nonnull(buf);
  ck_assert_uint_eq(onnx__model_proto__pack(&b->model, buf), *len);
  return buf;
}

static relay_module *import_ok(kiln_context *ctx, mb *b) {
  size_t len;
  uint8_t *buf = mb_pack(b, &len);
  relay_module *m = NULL;
  ck_ok(ctx, relay_from_onnx(ctx, buf, len, NULL, &m));
  free(buf);
  return m;
}

static kiln_status import_err(kiln_context *ctx, mb *b) {
  size_t len;
  uint8_t *buf = mb_pack(b, &len);
  relay_module *m = NULL;
  kiln_status st = relay_from_onnx(ctx, buf, len, NULL, &m);
  ck_assert_ptr_null(m);
  free(buf);
  return st;
}

static char *print_m(relay_module *m) {
  char *s = relay_module_to_string(m);
  ck_assert_ptr_nonnull(s);
  return s;
}

/* Runs @main on one float input; the result's elements go to out (n of them). */
static void run1(kiln_context *ctx, relay_module *m, int nd, const int64_t *shape, float *x,
                 float *out, int64_t n) {
  relay_tensor t = {KILN_FLOAT32, nd, {0}, x, 0, false};
  int64_t numel = 1;
  for (int i = 0; i < nd; i++) numel *= (t.shape[i] = shape[i]);
  t.nbytes = (size_t)numel * 4;
  relay_value *v = NULL;
  ck_ok(ctx, relay_interp_run(m, "main", 1, &t, &v));
  ck_assert_int_eq(v->kind, RELAY_VALUE_TENSOR);
  ck_assert_int_eq(relay_tensor_numel(&v->tensor), n);
  for (int64_t i = 0; i < n; i++) out[i] = (float)relay_tensor_get(&v->tensor, i);
  relay_value_release(ctx, v);
}

/* ---- Conv + BatchNormalization + Relu ---------------------------------------------------- */

static int64_t cx_shape[] = {1, 2, 4, 4}, cw_shape[] = {3, 2, 3, 3}, c3[] = {3};
static float cw[54], cb[3] = {0.5f, -1, 0.25f}, bn_g[3] = {1, 2, 0.5f}, bn_b[3] = {0, 1, -1},
             bn_m[3] = {0.1f, 0.2f, -0.3f}, bn_v[3] = {1, 4, 0.25f};
static char *conv_in[] = {"x", "w", "b", NULL}, *conv_out[] = {"c", NULL};
static char *bn_in[] = {"c", "g", "beta", "mean", "var", NULL}, *bn_out[] = {"n", NULL};
static char *relu_in[] = {"n", NULL}, *relu_out[] = {"y", NULL};

static void build_conv(mb *b) {
  mb_init(b, 13);
  for (int i = 0; i < 54; i++) cw[i] = (float)((i * 7) % 11 - 5) / 8;
  mb_input(b, "x", 4, cx_shape, NULL);
  mb_init_f(b, "w", 4, cw_shape, cw, 54);
  mb_init_f(b, "b", 1, c3, cb, 3);
  mb_init_f(b, "g", 1, c3, bn_g, 3);
  mb_init_f(b, "beta", 1, c3, bn_b, 3);
  mb_init_f(b, "mean", 1, c3, bn_m, 3);
  mb_init_f(b, "var", 1, c3, bn_v, 3);
  static int64_t pads[] = {1, 1, 1, 1}, ks[] = {3, 3};
  Onnx__NodeProto *n = mb_node(b, "Conv", "conv0", conv_in, conv_out);
  mb_attr_ints(b, n, "pads", 4, pads);
  mb_attr_ints(b, n, "kernel_shape", 2, ks);
  n = mb_node(b, "BatchNormalization", "bn0", bn_in, bn_out);
  mb_attr_f(b, n, "epsilon", 1e-5f);
  mb_node(b, "Relu", "relu0", relu_in, relu_out);
  mb_output(b, "y");
}

START_TEST(test_conv_bn_relu) {
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  build_conv(&b);
  relay_module *m = import_ok(ctx, &b);
  char *s = print_m(m);
  ck_assert_msg(strstr(s, "nn.conv2d") && strstr(s, "nn.bias_add") && strstr(s, "nn.batch_norm") &&
                    strstr(s, "nn.relu"),
                "%s", s);
  kiln_string_free(ctx, s);
  int64_t yshape[4] = {1, 3, 4, 4};
  ck_assert(relay_type_equal(m->arena, relay_type_of(relay_module_get(m, "main")->body),
                             relay_tensor_type_const(m->arena, KILN_FLOAT32, 4, yshape)));
  float x[32], y[48], want[48];
  for (int i = 0; i < 32; i++) x[i] = (float)(i % 5) - 2;
  run1(ctx, m, 4, cx_shape, x, y, 48);
  for (int o = 0; o < 3; o++)
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++) {
        double acc = cb[o];
        for (int c = 0; c < 2; c++)
          for (int ki = 0; ki < 3; ki++)
            for (int kj = 0; kj < 3; kj++) {
              int ii = i + ki - 1, jj = j + kj - 1;
              if (ii < 0 || jj < 0 || ii >= 4 || jj >= 4) continue;
              acc += (double)x[c * 16 + ii * 4 + jj] * cw[((o * 2 + c) * 3 + ki) * 3 + kj];
            }
        double v = (acc - bn_m[o]) / sqrt(bn_v[o] + 1e-5) * bn_g[o] + bn_b[o];
        want[(o * 4 + i) * 4 + j] = (float)(v > 0 ? v : 0);
      }
  for (int i = 0; i < 48; i++) ck_assert_double_eq_tol(y[i], want[i], 1e-4);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Gemm --------------------------------------------------------------------------------- */

static int64_t gx_shape[] = {2, 3}, gw_shape[] = {4, 3}, g4[] = {4};
static float gw[12] = {1, 0, 2, -1, 1, 0, 0.5f, 0.5f, 0.5f, 3, -2, 1}, gc[4] = {1, 2, 3, 4};
static char *gemm_in[] = {"x", "w", "c", NULL}, *gemm_out[] = {"y", NULL};

START_TEST(test_gemm) {
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  mb_init(&b, 13);
  mb_input(&b, "x", 2, gx_shape, NULL);
  mb_init_f(&b, "w", 2, gw_shape, gw, 12);
  mb_init_f(&b, "c", 1, g4, gc, 4);
  Onnx__NodeProto *n = mb_node(&b, "Gemm", "fc", gemm_in, gemm_out);
  mb_attr_i(&b, n, "transB", 1);
  mb_attr_f(&b, n, "alpha", 2);
  mb_attr_f(&b, n, "beta", 0.5f);
  mb_output(&b, "y");
  relay_module *m = import_ok(ctx, &b);
  float x[6] = {1, 2, 3, -1, 0, 4}, y[8];
  run1(ctx, m, 2, gx_shape, x, y, 8);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++) {
      double acc = 0;
      for (int k = 0; k < 3; k++) acc += x[i * 3 + k] * gw[j * 3 + k];
      ck_assert_double_eq_tol(y[i * 4 + j], 2 * acc + 0.5 * gc[j], 1e-5);
    }
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Shape -> Gather -> Unsqueeze -> Concat -> Reshape folds to a constant shape ---------- */

static int64_t sx_shape[] = {2, 3, 4}, one[] = {1}, scalar_zero = 0, minus1 = -1, zero_axes = 0;
static char *sh_in[] = {"x", NULL}, *sh_out[] = {"s", NULL};
static char *ga_in[] = {"s", "i0", NULL}, *ga_out[] = {"d0", NULL};
static char *un_in[] = {"d0", "ax", NULL}, *un_out[] = {"d0u", NULL};
static char *cc_in[] = {"d0u", "m1", NULL}, *cc_out[] = {"shp", NULL};
static char *rs_in[] = {"x", "shp", NULL}, *rs_out[] = {"y", NULL};

START_TEST(test_shape_chain_folds) {
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  mb_init(&b, 13);
  mb_input(&b, "x", 3, sx_shape, NULL);
  mb_init_i(&b, "i0", 0, NULL, &scalar_zero, 1);
  mb_init_i(&b, "ax", 1, one, &zero_axes, 1);
  mb_init_i(&b, "m1", 1, one, &minus1, 1);
  mb_node(&b, "Shape", "shape", sh_in, sh_out);
  mb_node(&b, "Gather", "gather", ga_in, ga_out);
  mb_node(&b, "Unsqueeze", "unsq", un_in, un_out);
  Onnx__NodeProto *n = mb_node(&b, "Concat", "cat", cc_in, cc_out);
  mb_attr_i(&b, n, "axis", 0);
  mb_node(&b, "Reshape", "reshape", rs_in, rs_out);
  mb_output(&b, "y");
  relay_module *m = import_ok(ctx, &b);
  relay_func *f = relay_module_get(m, "main");
  ck_assert_ptr_nonnull(f);
  /* the body is one reshape of the parameter with a constant new shape */
  const relay_call *c = relay_as_call(f->body);
  ck_assert_ptr_nonnull(c);
  ck_assert_str_eq(c->op, "reshape");
  ck_assert_ptr_eq(c->args[0], f->params[0]);
  ck_assert_int_eq(c->attrs[0]->nints, 2);
  ck_assert_int_eq(c->attrs[0]->ints[0], 2);
  ck_assert_int_eq(c->attrs[0]->ints[1], -1);
  int64_t want[2] = {2, 12};
  ck_assert(relay_type_equal(m->arena, relay_type_of(f->body),
                             relay_tensor_type_const(m->arena, KILN_FLOAT32, 2, want)));
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- dim_param, Constant, Identity, Dropout ------------------------------------------------ */

static int64_t dp_shape[] = {-1, 3};
static char *k_in[] = {NULL}, *k_out[] = {"k", NULL};
static char *id_in[] = {"x", NULL}, *id_out[] = {"xi", NULL};
static char *do_in[] = {"xi", NULL}, *do_out[] = {"xd", NULL};
static char *mul_in[] = {"xd", "k", NULL}, *mul_out[] = {"y", NULL};

START_TEST(test_dim_param_constant_identity_dropout) {
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  mb_init(&b, 13);
  mb_input(&b, "x", 2, dp_shape, "batch size");
  Onnx__NodeProto *n = mb_node(&b, "Constant", "k", k_in, k_out);
  mb_attr_f(&b, n, "value_float", 3);
  mb_node(&b, "Identity", "id", id_in, id_out);
  mb_node(&b, "Dropout", "drop", do_in, do_out);
  mb_node(&b, "Mul", "mul", mul_in, mul_out);
  mb_output(&b, "y");
  relay_module *m = import_ok(ctx, &b);
  ck_assert_int_eq(m->ndims, 1);
  ck_assert_str_eq(m->dims[0]->name, "batch_size");
  char *s = print_m(m);
  ck_assert_msg(strstr(s, "Tensor[(batch_size, 3), float32]") && strstr(s, "multiply") &&
                    !strstr(s, "dropout"),
                "%s", s);
  kiln_string_free(ctx, s);
  int64_t shape[2] = {2, 3};
  float x[6] = {1, 2, 3, 4, 5, 6}, y[6];
  run1(ctx, m, 2, shape, x, y, 6);
  for (int i = 0; i < 6; i++) ck_assert_double_eq_tol(y[i], 3 * x[i], 1e-6);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Errors ----------------------------------------------------------------------------- */

static char *u1_in[] = {"x", NULL}, *u1_out[] = {"a", NULL}, *u2_in[] = {"a", NULL}, *u2_out[] = {"y", NULL};

START_TEST(test_unsupported_ops_listed_together) {
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  mb_init(&b, 13);
  mb_input(&b, "x", 2, gx_shape, NULL);
  mb_node(&b, "NonMaxSuppression", "nms_1", u1_in, u1_out);
  mb_node(&b, "TopK", "topk_7", u2_in, u2_out);
  mb_output(&b, "y");
  ck_assert_int_eq(import_err(ctx, &b), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "NonMaxSuppression (opset 13, node 'nms_1')");
  ck_errmsg_has(ctx, "TopK (opset 13, node 'topk_7')");
  kiln_test_done_ctx(ctx);
}
END_TEST

static int64_t bad_a[] = {2, 3}, bad_b[] = {2, 4};
static char *add_in[] = {"x", "z", NULL}, *add_out[] = {"y", NULL};

START_TEST(test_shape_error_names_node) {
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  mb_init(&b, 13);
  mb_input(&b, "x", 2, bad_a, NULL);
  mb_input(&b, "z", 2, bad_b, NULL);
  mb_node(&b, "Add", "add_bad", add_in, add_out);
  mb_output(&b, "y");
  kiln_status st = import_err(ctx, &b);
  ck_assert(st == KILN_ERR_SHAPE || st == KILN_ERR_TYPE);
  ck_errmsg_has(ctx, "ONNX node 'add_bad' (Add)");
  ck_errmsg_has(ctx, "add");
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_versions) {
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  build_conv(&b);
  b.opset.version = 9;
  ck_assert_int_eq(import_err(ctx, &b), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "opset 9 is not supported");
  build_conv(&b);
  b.model.ir_version = 3;
  ck_assert_int_eq(import_err(ctx, &b), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "IR version 3");
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Truncated, bit-flipped and garbage bytes: a clean error (or, for a flip that keeps the
 * model valid, a module), never a crash or a leak. */
START_TEST(test_corrupt_bytes) {
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  build_conv(&b);
  size_t len;
  uint8_t *buf = mb_pack(&b, &len);
  relay_module *m = NULL;
  for (size_t cut = 1; cut < len; cut += 7) {
    kiln_status st = relay_from_onnx(ctx, buf, cut, NULL, &m);
    if (st == KILN_OK) relay_module_free(m);
    else ck_assert_ptr_null(m);
  }
  ck_assert_int_eq(relay_from_onnx(ctx, buf, len / 2, NULL, &m), KILN_ERR_CORRUPT);
  ck_errmsg_has(ctx, "not a valid ModelProto");
  uint8_t *copy = malloc(len);
  unsigned seed = 12345;
  for (int iter = 0; iter < 400; iter++) {
    memcpy(copy, buf, len);
    for (int k = 0; k < 1 + iter % 4; k++) {
      seed = seed * 1103515245u + 12345u;
      size_t pos = (seed >> 8) % len;
      copy[pos] ^= (uint8_t)(1u << ((seed >> 4) & 7));
    }
    kiln_status st = relay_from_onnx(ctx, copy, len, NULL, &m);
    if (st == KILN_OK) relay_module_free(m);
    else ck_assert_ptr_null(m);
  }
  const char garbage[] = "PK\x03\x04 this is a zip file, not an ONNX model";
  ck_assert_int_eq(relay_from_onnx(ctx, garbage, sizeof garbage, NULL, &m), KILN_ERR_CORRUPT);
  ck_assert_int_eq(relay_from_onnx(ctx, "", 0, NULL, &m), KILN_ERR_CORRUPT);
  ck_assert_int_eq(relay_from_onnx_file(ctx, "/nonexistent/model.onnx", &m), KILN_ERR_IO);
  free(copy);
  free(buf);
  kiln_test_done_ctx(ctx);
}
END_TEST

START_TEST(test_fault_injection) {
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  build_conv(&b);
  size_t len;
  uint8_t *buf = mb_pack(&b, &len);
  relay_module *m = NULL;
  for (long n = 1;; n++) {
    kiln_context_fail_alloc(ctx, n);
    kiln_status st = relay_from_onnx(ctx, buf, len, NULL, &m);
    kiln_context_fail_alloc(ctx, 0);
    if (st == KILN_OK) {
      relay_module_free(m);
      break;
    }
    ck_assert_ptr_null(m);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
    ck_assert_msg(n < 100000, "no success after %ld failures", n);
  }
  free(buf);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* The public entry points: bytes and files, the same module as relay_from_onnx, NULL
 * arguments refused, and the importer's errors passed through. */
START_TEST(test_public_api) {
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  build_conv(&b);
  size_t len;
  uint8_t *buf = mb_pack(&b, &len);
  kiln_relay_module *pm = NULL;
  ck_ok(ctx, kiln_relay_module_from_onnx(ctx, buf, len, NULL, &pm));
  char *text = NULL;
  ck_ok(ctx, kiln_relay_module_print(pm, &text));
  relay_module *m = NULL;
  ck_ok(ctx, relay_from_onnx(ctx, buf, len, NULL, &m));
  char *direct = print_m(m);
  ck_assert_str_eq(text, direct);
  ck_assert_msg(strstr(text, "nn.conv2d"), "%s", text);
  kiln_string_free(ctx, direct);
  relay_module_free(m);
  kiln_string_free(ctx, text);
  kiln_relay_module_free(pm);

  const char *path = "test_onnx_public_api.onnx"; /* in the test's working directory */
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
  fclose(f);
  ck_ok(ctx, kiln_relay_module_from_onnx_file(ctx, path, &pm));
  ck_assert_int_eq(kiln_relay_module_num_funcs(pm), 1);
  kiln_relay_module_free(pm);
  remove(path);

  pm = (kiln_relay_module *)&pm;
  ck_assert_int_eq(kiln_relay_module_from_onnx(ctx, buf, len / 2, NULL, &pm), KILN_ERR_CORRUPT);
  ck_assert_ptr_null(pm);
  ck_assert_int_eq(kiln_relay_module_from_onnx_file(ctx, "/nonexistent/m.onnx", &pm), KILN_ERR_IO);
  ck_errmsg_has(ctx, "/nonexistent/m.onnx");
  ck_assert_int_eq(kiln_relay_module_from_onnx(ctx, NULL, 5, NULL, &pm), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "kiln_relay_module_from_onnx: NULL argument");
  ck_assert_int_eq(kiln_relay_module_from_onnx(ctx, buf, len, NULL, NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(kiln_relay_module_from_onnx_file(ctx, NULL, &pm), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "kiln_relay_module_from_onnx_file: NULL argument");
  ck_assert_int_eq(kiln_relay_module_from_onnx(NULL, buf, len, NULL, &pm), KILN_ERR_MISUSE);
  free(buf);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Pad ----------------------------------------------------------------------------------- */

static void mb_attr_s(mb *b, Onnx__NodeProto *n, const char *name, const char *v) {
  Onnx__AttributeProto *a = mb_attr(b, n, name);
  a->has_type = 1;
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
  a->has_s = 1;
  a->s.len = strlen(v);
  a->s.data = (uint8_t *)v;
}

static int64_t px_shape[] = {2, 3}, p4[] = {4}, p2[] = {2};
static float pad_val = 1.5f;
static char *pad_in[] = {"x", "pads", "cv", NULL}, *pad_in2[] = {"x", "pads", NULL},
            *pad_out[] = {"y", NULL};

/* Builds x (2x3) -> Pad -> y; pads is an initializer of k values, the constant value an
 * optional scalar initializer; mode NULL leaves the default. */
static Onnx__NodeProto *build_pad(mb *b, int opset, int64_t *pads, int k, const char *mode,
                                  bool with_value) {
  mb_init(b, opset);
  mb_input(b, "x", 2, px_shape, NULL);
  mb_init_i(b, "pads", 1, k == 4 ? p4 : p2, pads, k);
  if (with_value) mb_init_f(b, "cv", 0, NULL, &pad_val, 1);
  Onnx__NodeProto *n = mb_node(b, "Pad", "pad_1", with_value ? pad_in : pad_in2, pad_out);
  if (mode) mb_attr_s(b, n, "mode", mode);
  mb_output(b, "y");
  return n;
}

/* Reference: x is [[0 1 2] [3 4 5]] padded with ONNX pads (begin0, begin1, end0, end1). */
static double pad_ref(const int64_t *pads, const char *mode, double value, int64_t i, int64_t j) {
  int64_t r = i - pads[0], c = j - pads[1];
  if (strcmp(mode, "constant") == 0) {
    if (r < 0 || r >= 2 || c < 0 || c >= 3) return value;
  } else if (strcmp(mode, "edge") == 0) {
    r = r < 0 ? 0 : r > 1 ? 1 : r;
    c = c < 0 ? 0 : c > 2 ? 2 : c;
  } else { /* reflect */
    r = r < 0 ? -r : r > 1 ? 2 - r : r;
    c = c < 0 ? -c : c > 2 ? 4 - c : c;
  }
  return (double)(r * 3 + c);
}

START_TEST(test_pad_modes_and_opsets) {
  static int64_t pads_c[] = {1, 0, 0, 2}, pads_r[] = {1, 2, 1, 1};
  static const struct {
    int opset;
    const char *mode; /* NULL: the default (constant) */
    int64_t *pads;
    bool with_value;
  } cases[] = {
      {13, NULL, pads_c, true},        {17, "constant", pads_c, false}, {11, "edge", pads_r, false},
      {13, "reflect", pads_r, false},  {14, "edge", pads_c, false},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    kiln_context *ctx = kiln_test_new_ctx();
    mb b;
    build_pad(&b, cases[k].opset, cases[k].pads, 4, cases[k].mode, cases[k].with_value);
    relay_module *m = import_ok(ctx, &b);
    char *s = print_m(m);
    ck_assert_msg(strstr(s, "nn.pad"), "case %zu: %s", k, s);
    kiln_string_free(ctx, s);
    const int64_t *pd = cases[k].pads;
    int64_t oh = 2 + pd[0] + pd[2], ow = 3 + pd[1] + pd[3];
    float x[6] = {0, 1, 2, 3, 4, 5}, y[64];
    run1(ctx, m, 2, px_shape, x, y, oh * ow);
    const char *mode = cases[k].mode ? cases[k].mode : "constant";
    for (int64_t i = 0; i < oh; i++)
      for (int64_t j = 0; j < ow; j++)
        ck_assert_msg(fabs(y[i * ow + j] - pad_ref(pd, mode, cases[k].with_value ? pad_val : 0, i, j)) < 1e-6,
                      "case %zu (opset %d, %s): y[%lld][%lld] = %g", k, cases[k].opset, mode,
                      (long long)i, (long long)j, (double)y[i * ow + j]);
    relay_module_free(m);
    kiln_test_done_ctx(ctx);
  }
}
END_TEST

START_TEST(test_pad_errors) {
  static int64_t neg[] = {0, -1, 0, 1}, two[] = {1, 1}, ok[] = {0, 1, 0, 1};
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  build_pad(&b, 13, neg, 4, NULL, false);
  ck_assert_int_eq(import_err(ctx, &b), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "negative pads (cropping) on axis 1");
  ck_errmsg_has(ctx, "pad_1");

  build_pad(&b, 13, two, 2, NULL, false);
  ck_assert_int_eq(import_err(ctx, &b), KILN_ERR_CORRUPT);
  ck_errmsg_has(ctx, "pads has 2 values, a 2-d input needs 4");

  build_pad(&b, 13, ok, 4, "wrap", false);
  ck_assert_int_eq(import_err(ctx, &b), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "mode 'wrap' is not supported");

  /* reflect needs a pad smaller than the axis: relay's type relation says so. */
  static int64_t wide[] = {0, 3, 0, 0};
  build_pad(&b, 13, wide, 4, "reflect", false);
  kiln_status st = import_err(ctx, &b);
  ck_assert(st == KILN_ERR_TYPE || st == KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "reflect padding 3 on axis 1");

  /* pads must be constant. */
  mb_init(&b, 13);
  mb_input(&b, "x", 2, px_shape, NULL);
  mb_input(&b, "pads", 1, p4, NULL);
  mb_node(&b, "Pad", "pad_2", pad_in2, pad_out);
  mb_output(&b, "y");
  ck_assert_int_eq(import_err(ctx, &b), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "Pad's pads input");
  kiln_test_done_ctx(ctx);
}
END_TEST

/* ---- Symbolic shape values (dim_param batch) ----------------------------------------------- */

/* The input x: [batch, 3, 4] with the dim_param "batch"; scalar / vector int64 constants. */
static int64_t sym_x[] = {-1, 3, 4}, sym_i0 = 0, sym_i1 = 1, sym_i2 = 2, sym_m1 = -1, sym_two = 2,
               sym_four = 4, sym_ax0 = 0, sym_vec1[] = {1}, sym_end1 = 1;

/* y = x with the elements 0, 1, 2, ... of a batch-3 input, for the run checks. */
static void sym_input(float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = (float)i * 0.5f - 3;
}

/* Shape's elements pass through Gather / Unsqueeze / Concat to Reshape: x.view(x.size(0), -1)
 * becomes reshape(x, [0, -1]) with the type (batch, 12); binding the batch and running gives
 * the input's elements back. */
START_TEST(test_symbolic_view_chain) {
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  mb_init(&b, 13);
  mb_input(&b, "x", 3, sym_x, "batch");
  mb_init_i(&b, "i0", 0, NULL, &sym_i0, 1);
  mb_init_i(&b, "ax", 1, sym_vec1, &sym_ax0, 1);
  mb_init_i(&b, "m1", 1, sym_vec1, &sym_m1, 1);
  mb_node(&b, "Shape", "shape", sh_in, sh_out);
  mb_node(&b, "Gather", "gather", ga_in, ga_out);
  mb_node(&b, "Unsqueeze", "unsq", un_in, un_out);
  Onnx__NodeProto *n = mb_node(&b, "Concat", "cat", cc_in, cc_out);
  mb_attr_i(&b, n, "axis", 0);
  mb_node(&b, "Reshape", "reshape", rs_in, rs_out);
  mb_output(&b, "y");
  relay_module *m = import_ok(ctx, &b);
  char *s = print_m(m);
  ck_assert_msg(strstr(s, "reshape(%x, newshape=[0, -1])") && strstr(s, "Tensor[(batch, 3, 4), float32]"),
                "%s", s);
  kiln_string_free(ctx, s);
  relay_func *f = relay_module_get(m, "main");
  ir_expr *want_dims[2] = {(ir_expr *)m->dims[0], ir_int(m->arena, KILN_INT64, 12)};
  ck_assert(relay_type_equal(m->arena, relay_type_of(f->body),
                             relay_tensor_type_new(m->arena, KILN_FLOAT32, 2, want_dims)));
  /* run at batch 3 unbound (the interpreter takes batch from the input), then bound to 2 */
  float x[36], y[36];
  sym_input(x, 36);
  int64_t shape3[3] = {3, 3, 4}, shape2[3] = {2, 3, 4};
  run1(ctx, m, 3, shape3, x, y, 36);
  for (int i = 0; i < 36; i++) ck_assert_float_eq(y[i], x[i]);
  const char *names[1] = {"batch"};
  int64_t two = 2;
  ck_ok(ctx, relay_bind_shapes(m, 1, names, &two));
  s = print_m(m);
  ck_assert_msg(strstr(s, "Tensor[(2, 3, 4), float32]"), "%s", s);
  kiln_string_free(ctx, s);
  run1(ctx, m, 3, shape2, x, y, 24);
  for (int i = 0; i < 24; i++) ck_assert_float_eq(y[i], x[i]);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Shape arithmetic: Shape(end = 1) (opset 15) and Slice give [batch]; Gather, Mul and Div
 * compute batch * 4 / 2 and 3 * 4 / 2; the new shape [batch * 2, 6] maps to [-1, 6] (the
 * symbolic element is the inferred size). Flatten at axis 2 of [batch, 3, 4] is [-1, 4]. */
START_TEST(test_symbolic_shape_arithmetic_and_flatten) {
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  mb_init(&b, 15);
  mb_input(&b, "x", 3, sym_x, "batch");
  mb_init_i(&b, "i0", 0, NULL, &sym_i0, 1);
  mb_init_i(&b, "i1", 0, NULL, &sym_i1, 1);
  mb_init_i(&b, "i2", 0, NULL, &sym_i2, 1);
  mb_init_i(&b, "two", 0, NULL, &sym_two, 1);
  mb_init_i(&b, "four", 0, NULL, &sym_four, 1);
  mb_init_i(&b, "st", 1, sym_vec1, &sym_i0, 1);
  mb_init_i(&b, "en", 1, sym_vec1, &sym_end1, 1);
  mb_init_i(&b, "ax", 1, sym_vec1, &sym_ax0, 1);
  Onnx__NodeProto *n = mb_node(&b, "Shape", "shape_b", (char *[]){"x", NULL}, (char *[]){"sb", NULL});
  mb_attr_i(&b, n, "end", 1);
  mb_node(&b, "Shape", "shape", (char *[]){"x", NULL}, (char *[]){"s", NULL});
  mb_node(&b, "Slice", "slice", (char *[]){"s", "st", "en", NULL}, (char *[]){"sl", NULL});
  /* batch from the sliced shape (a 1-vector) squeezed to a scalar */
  mb_node(&b, "Squeeze", "sq", (char *[]){"sl", "ax", NULL}, (char *[]){"bs", NULL});
  mb_node(&b, "Gather", "g1", (char *[]){"s", "i1", NULL}, (char *[]){"d1", NULL});
  mb_node(&b, "Gather", "g2", (char *[]){"s", "i2", NULL}, (char *[]){"d2", NULL});
  mb_node(&b, "Mul", "b4", (char *[]){"bs", "four", NULL}, (char *[]){"b4", NULL});
  mb_node(&b, "Div", "b2", (char *[]){"b4", "two", NULL}, (char *[]){"b2", NULL});
  mb_node(&b, "Mul", "d12", (char *[]){"d1", "d2", NULL}, (char *[]){"d12", NULL});
  mb_node(&b, "Div", "d6", (char *[]){"d12", "two", NULL}, (char *[]){"d6", NULL});
  mb_node(&b, "Unsqueeze", "u1", (char *[]){"b2", "ax", NULL}, (char *[]){"b2u", NULL});
  mb_node(&b, "Unsqueeze", "u2", (char *[]){"d6", "ax", NULL}, (char *[]){"d6u", NULL});
  n = mb_node(&b, "Concat", "cat", (char *[]){"b2u", "d6u", NULL}, (char *[]){"shp", NULL});
  mb_attr_i(&b, n, "axis", 0);
  n = mb_node(&b, "Cast", "cast", (char *[]){"shp", NULL}, (char *[]){"shp64", NULL});
  mb_attr_i(&b, n, "to", ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
  mb_node(&b, "Reshape", "reshape", (char *[]){"x", "shp64", NULL}, (char *[]){"y", NULL});
  /* Shape(end = 1) joined with -1: Reshape to [batch, -1] */
  mb_init_i(&b, "m1", 1, sym_vec1, &sym_m1, 1);
  n = mb_node(&b, "Concat", "cat2", (char *[]){"sb", "m1", NULL}, (char *[]){"shp2", NULL});
  mb_attr_i(&b, n, "axis", 0);
  mb_node(&b, "Reshape", "reshape2", (char *[]){"x", "shp2", NULL}, (char *[]){"y2", NULL});
  n = mb_node(&b, "Flatten", "flat", (char *[]){"x", NULL}, (char *[]){"y3", NULL});
  mb_attr_i(&b, n, "axis", 2);
  /* Expand to x's own shape (and to [1] + it) is the identity (plus a new axis) */
  mb_node(&b, "Expand", "expand", (char *[]){"x", "s", NULL}, (char *[]){"y4", NULL});
  mb_init_i(&b, "one", 1, sym_vec1, &sym_i1, 1);
  n = mb_node(&b, "Concat", "cat3", (char *[]){"one", "s", NULL}, (char *[]){"s1", NULL});
  mb_attr_i(&b, n, "axis", 0);
  mb_node(&b, "Expand", "expand1", (char *[]){"x", "s1", NULL}, (char *[]){"y5", NULL});
  mb_output(&b, "y");
  mb_output(&b, "y2");
  mb_output(&b, "y3");
  mb_output(&b, "y4");
  mb_output(&b, "y5");
  relay_module *m = import_ok(ctx, &b);
  char *s = print_m(m);
  ck_assert_msg(strstr(s, "newshape=[-1, 6]") && strstr(s, "newshape=[0, -1]") &&
                    strstr(s, "newshape=[-1, 4]") && strstr(s, "expand_dims(%x)") &&
                    strstr(s, "(%0, %1, %2, %x, %3)"),
                "%s", s);
  kiln_string_free(ctx, s);
  /* the result types keep batch symbolic */
  const relay_tuple_type *tt = (const relay_tuple_type *)relay_type_of(relay_module_get(m, "main")->body);
  ck_assert_int_eq(tt->h.kind, RELAY_TUPLE_TYPE);
  ir_arena *a = m->arena;
  ir_expr *bt = (ir_expr *)m->dims[0];
  ir_expr *d0[2] = {ir_mul(a, bt, ir_int(a, KILN_INT64, 2)), ir_int(a, KILN_INT64, 6)};
  ir_expr *d2[2] = {ir_mul(a, bt, ir_int(a, KILN_INT64, 3)), ir_int(a, KILN_INT64, 4)};
  ck_assert(relay_type_equal(a, tt->fields[0], relay_tensor_type_new(a, KILN_FLOAT32, 2, d0)));
  ck_assert(relay_type_equal(a, tt->fields[2], relay_tensor_type_new(a, KILN_FLOAT32, 2, d2)));
  /* run at batch 3: every output holds x's elements in order */
  float x[36];
  sym_input(x, 36);
  relay_tensor t = {KILN_FLOAT32, 3, {3, 3, 4}, x, sizeof x, false};
  relay_value *v = NULL;
  ck_ok(ctx, relay_interp_run(m, "main", 1, &t, &v));
  ck_assert_int_eq(v->kind, RELAY_VALUE_TUPLE);
  ck_assert_int_eq(v->nfields, 5);
  int64_t want_shape[5][4] = {{6, 6}, {3, 12}, {9, 4}, {3, 3, 4}, {1, 3, 3, 4}};
  int want_nd[5] = {2, 2, 2, 3, 4};
  for (int k = 0; k < 5; k++) {
    const relay_tensor *o = &v->fields[k]->tensor;
    ck_assert_int_eq(o->ndim, want_nd[k]);
    for (int d = 0; d < o->ndim; d++) ck_assert_int_eq(o->shape[d], want_shape[k][d]);
    for (int i = 0; i < 36; i++) ck_assert_double_eq(relay_tensor_get(o, i), x[i]);
  }
  relay_value_release(ctx, v);
  relay_module_free(m);
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Builds x -> Shape -> Gather(0) -> Unsqueeze -> "bu" ([batch]) and lets `tail` add the
 * nodes under test. */
static void build_sym_head(mb *b) {
  mb_init(b, 13);
  mb_input(b, "x", 3, sym_x, "batch");
  mb_init_i(b, "i0", 0, NULL, &sym_i0, 1);
  mb_init_i(b, "ax", 1, sym_vec1, &sym_ax0, 1);
  mb_init_i(b, "m1", 1, sym_vec1, &sym_m1, 1);
  mb_init_i(b, "two", 0, NULL, &sym_two, 1);
  static char *s_in[] = {"x", NULL}, *s_out[] = {"s", NULL}, *g_in[] = {"s", "i0", NULL},
              *g_out[] = {"bs", NULL}, *u_in[] = {"bs", "ax", NULL}, *u_out[] = {"bu", NULL};
  mb_node(b, "Shape", "shape", s_in, s_out);
  mb_node(b, "Gather", "gather", g_in, g_out);
  mb_node(b, "Unsqueeze", "unsq", u_in, u_out);
}

/* Symbolic elements that relay cannot express, and shape values that would have to become
 * tensors, fail with KILN_ERR_UNSUPPORTED naming the node and the symbolic element. */
START_TEST(test_symbolic_shape_errors) {
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  /* [batch * 2, -1]: two elements to infer */
  build_sym_head(&b);
  mb_node(&b, "Mul", "mul", (char *[]){"bs", "two", NULL}, (char *[]){"b2", NULL});
  mb_node(&b, "Unsqueeze", "u", (char *[]){"b2", "ax", NULL}, (char *[]){"b2u", NULL});
  Onnx__NodeProto *n = mb_node(&b, "Concat", "cat", (char *[]){"b2u", "m1", NULL}, (char *[]){"shp", NULL});
  mb_attr_i(&b, n, "axis", 0);
  mb_node(&b, "Reshape", "bad_reshape", (char *[]){"x", "shp", NULL}, (char *[]){"y", NULL});
  mb_output(&b, "y");
  kiln_status st0 = import_err(ctx, &b);
  ck_assert_msg(st0 == KILN_ERR_UNSUPPORTED, "%s", kiln_context_errmsg(ctx));
  ck_errmsg_has(ctx, "ONNX node 'bad_reshape' (Reshape)");
  ck_errmsg_has(ctx, "[batch * 2, -1] has more than one element to infer");

  /* Expand of a [1, 4] constant to [batch, 4]: broadcast_to takes constant shapes */
  static float c4[4] = {1, 2, 3, 4};
  static int64_t c14[2] = {1, 4}, four[1] = {4};
  build_sym_head(&b);
  mb_init_f(&b, "c", 2, c14, c4, 4);
  mb_init_i(&b, "f4", 1, sym_vec1, four, 1);
  n = mb_node(&b, "Concat", "cat", (char *[]){"bu", "f4", NULL}, (char *[]){"shp", NULL});
  mb_attr_i(&b, n, "axis", 0);
  mb_node(&b, "Expand", "bad_expand", (char *[]){"c", "shp", NULL}, (char *[]){"y", NULL});
  mb_output(&b, "y");
  ck_assert_int_eq(import_err(ctx, &b), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "ONNX node 'bad_expand' (Expand)");
  ck_errmsg_has(ctx, "[batch, 4] (element 0, batch) would stretch the input's dimension 1");

  /* ConstantOfShape([batch, 4]) */
  build_sym_head(&b);
  mb_init_i(&b, "f4", 1, sym_vec1, four, 1);
  n = mb_node(&b, "Concat", "cat", (char *[]){"bu", "f4", NULL}, (char *[]){"shp", NULL});
  mb_attr_i(&b, n, "axis", 0);
  mb_node(&b, "ConstantOfShape", "cos", (char *[]){"shp", NULL}, (char *[]){"y", NULL});
  mb_output(&b, "y");
  ck_assert_int_eq(import_err(ctx, &b), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "ONNX node 'cos' (ConstantOfShape)");
  ck_errmsg_has(ctx, "the shape [batch, 4] has the symbolic element batch");

  /* a shape value as a graph output, as an input of a compute op, cast to float */
  build_sym_head(&b);
  mb_output(&b, "s");
  ck_assert_int_eq(import_err(ctx, &b), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "graph output 's' is the shape value [batch, 3, 4], whose element batch is symbolic");

  build_sym_head(&b);
  mb_node(&b, "Relu", "act", (char *[]){"bu", NULL}, (char *[]){"y", NULL});
  mb_output(&b, "y");
  ck_assert_int_eq(import_err(ctx, &b), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "ONNX node 'act' (Relu): input 0 ('bu') is the shape value [batch]");

  build_sym_head(&b);
  n = mb_node(&b, "Cast", "tofloat", (char *[]){"bu", NULL}, (char *[]){"y", NULL});
  mb_attr_i(&b, n, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
  mb_output(&b, "y");
  ck_assert_int_eq(import_err(ctx, &b), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "ONNX node 'tofloat' (Cast): Cast to float32: the shape value [batch]");

  /* Gather out of range in a shape value */
  static int64_t i7 = 7;
  build_sym_head(&b);
  mb_init_i(&b, "i7", 0, NULL, &i7, 1);
  mb_node(&b, "Gather", "g7", (char *[]){"s", "i7", NULL}, (char *[]){"y", NULL});
  mb_output(&b, "y");
  ck_assert_int_eq(import_err(ctx, &b), KILN_ERR_SHAPE);
  ck_errmsg_has(ctx, "ONNX node 'g7' (Gather): Gather: index 7 is out of range for a shape of 3 elements");
  kiln_test_done_ctx(ctx);
}
END_TEST

/* Allocation failures while importing a symbolic chain leave nothing behind. */
START_TEST(test_symbolic_fault_injection) {
  kiln_context *ctx = kiln_test_new_ctx();
  mb b;
  build_sym_head(&b);
  Onnx__NodeProto *n = mb_node(&b, "Concat", "cat", (char *[]){"bu", "m1", NULL}, (char *[]){"shp", NULL});
  mb_attr_i(&b, n, "axis", 0);
  mb_node(&b, "Reshape", "reshape", (char *[]){"x", "shp", NULL}, (char *[]){"y", NULL});
  mb_output(&b, "y");
  size_t len;
  uint8_t *buf = mb_pack(&b, &len);
  relay_module *m = NULL;
  for (long k = 1;; k++) {
    kiln_context_fail_alloc(ctx, k);
    kiln_status st = relay_from_onnx(ctx, buf, len, NULL, &m);
    kiln_context_fail_alloc(ctx, 0);
    if (st == KILN_OK) {
      relay_module_free(m);
      break;
    }
    ck_assert_ptr_null(m);
    ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
    ck_assert_msg(k < 100000, "no success after %ld failures", k);
  }
  free(buf);
  kiln_test_done_ctx(ctx);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("onnx");
  TCase *tc = tcase_create("onnx");
  tcase_add_test(tc, test_conv_bn_relu);
  tcase_add_test(tc, test_gemm);
  tcase_add_test(tc, test_shape_chain_folds);
  tcase_add_test(tc, test_dim_param_constant_identity_dropout);
  tcase_add_test(tc, test_unsupported_ops_listed_together);
  tcase_add_test(tc, test_shape_error_names_node);
  tcase_add_test(tc, test_versions);
  tcase_add_test(tc, test_corrupt_bytes);
  tcase_add_test(tc, test_fault_injection);
  tcase_add_test(tc, test_public_api);
  tcase_add_test(tc, test_pad_modes_and_opsets);
  tcase_add_test(tc, test_pad_errors);
  tcase_add_test(tc, test_symbolic_view_chain);
  tcase_add_test(tc, test_symbolic_shape_arithmetic_and_flatten);
  tcase_add_test(tc, test_symbolic_shape_errors);
  tcase_add_test(tc, test_symbolic_fault_injection);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

/* fuse_ops.c: FuseOps. Groups the op calls of each function into "primitive" functions
 * (attribute primitive = 1) called through relay_call_fn; lowering turns each primitive
 * function into one kernel. The grouping follows TVM's algorithm:
 *   1. The dataflow graph of a function body (nested function bodies get their own): every
 *      node in topological order, with its consumers. An edge carries the consumer op's
 *      pattern (relay_pattern), except that a broadcasting op whose input already has the
 *      output's shape is elementwise on that edge; an edge into anything but an op call
 *      (tuple, let, if, a function call) is opaque, and the function's result is used outside.
 *   2. The post-dominator tree: a node's immediate post-dominator is the least common
 *      ancestor of its consumers, and the tree remembers the strongest edge pattern on the way.
 *   3. Union-find groups, visited in topological order. A node fuses into the group of its
 *      post-dominator when every node on every path between them allows it:
 *        phase 0: conv2d/dense (OUT_ELEMWISE_FUSABLE) into an elementwise post-dominator
 *                 through elementwise/broadcast nodes only (the epilogue: bias_add, relu);
 *                 elementwise/broadcast nodes into injective or reduction consumers (and into
 *                 groups that already hold a conv2d, as part of its epilogue);
 *        phase 1: injective nodes (reshape, transpose, ...) into injective consumers.
 *      Opaque ops stay alone; a reduction takes its elementwise inputs but fuses into nothing;
 *      a group holds at most pc->fuse_max_depth ops. A node is never duplicated: it joins a
 *      group only when all its consumers are in it (that is what post-domination means).
 * Each group becomes fn [primitive=1] (%p0, ...) { ... } applied to the group's inputs; 0-d
 * constants are kept inside, other constants are passed in. Primitive functions that exist
 * already are left alone, so running the pass twice changes nothing. */
#include <stdio.h>
#include <string.h>

#include "relay/pass.h"

typedef struct fgraph {
  kiln_context *ctx;
  ir_arena *scratch; /* type comparisons */
  int max_depth;
  int n;
  relay_expr **nodes;                  /* topological order: producers first */
  ir_ptrmap index;                     /* node -> position + 1 */
  int *pattern;                        /* of each node (OPAQUE for everything but op calls) */
  int *out_start, *out_node, *out_pat; /* consumers, in CSR form, with the edge's pattern */
  int *pdom, *depth, *pdom_pat;        /* post-dominator tree */
  int *gparent, *gpattern, *gsize;     /* union-find groups; gsize counts op calls */
  int *mark, *rmark, stamp;            /* scratch for walks: visited nodes and groups */
  int nedges;
  int *stack;
} fgraph;

static int idx_of(const fgraph *G, const ir_node *n) {
  return (int)(intptr_t)ir_ptrmap_get(&G->index, n) - 1;
}

static const relay_op *op_of(const ir_node *n) {
  const relay_call *c = n->kind == RELAY_CALL ? (const relay_call *)n : NULL;
  if (!c || !c->op) return NULL;
  return c->opdef ? c->opdef : relay_op_lookup(c->op);
}

static int max_pattern(int a, int b) { return a > b ? a : b; }

/* ---- The dataflow graph and its post-dominator tree ------------------------------------ */

static int *int_array(fgraph *G, int n, int fill) {
  int *p = ir_malloc(G->ctx, sizeof(int) * (size_t)(n ? n : 1));
  if (p)
    for (int i = 0; i < n; i++) p[i] = fill;
  return p;
}

static void graph_free(fgraph *G) {
  int *arrays[] = {G->pattern,  G->pdom,  G->depth, G->pdom_pat, G->gparent,
                   G->gpattern, G->gsize, G->mark,  G->rmark,    G->stack};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
    ir_free(G->ctx, arrays[i], sizeof(int) * (size_t)(G->n ? G->n : 1));
  ir_free(G->ctx, G->out_start, sizeof(int) * (size_t)(G->n + 1));
  ir_free(G->ctx, G->out_node, sizeof(int) * (size_t)(G->nedges ? G->nedges : 1));
  ir_free(G->ctx, G->out_pat, sizeof(int) * (size_t)(G->nedges ? G->nedges : 1));
  ir_free(G->ctx, G->nodes, sizeof(relay_expr *) * (size_t)G->n);
  ir_ptrmap_free(&G->index);
}

/* The children of n inside the graph (a function is a leaf: its body is another graph). */
static int graph_kids(const relay_expr *n) {
  return n->kind == RELAY_FUNC ? 0 : relay_expr_child_count(n);
}

/* The pattern of the edge from n's child i to n. */
static int edge_pattern(fgraph *G, relay_expr *n, int i) {
  const relay_op *op = op_of(n);
  if (!op) return RELAY_OPAQUE;
  if (op->pattern == RELAY_BROADCAST &&
      relay_type_equal(G->scratch, relay_type_of(relay_expr_child(n, i)), relay_type_of(n)))
    return RELAY_ELEMWISE;
  return op->pattern;
}

/* The least common ancestor of a and b in the post-dominator tree, combining the patterns
 * of the tree edges climbed into *pat; -1 when they have none (the result is used outside). */
static int lca(const fgraph *G, int a, int b, int *pat) {
  while (a != b) {
    if (a < 0 || b < 0) return -1;
    if (G->depth[a] < G->depth[b]) {
      *pat = max_pattern(*pat, G->pdom_pat[b]);
      b = G->pdom[b];
    } else if (G->depth[b] < G->depth[a]) {
      *pat = max_pattern(*pat, G->pdom_pat[a]);
      a = G->pdom[a];
    } else {
      *pat = max_pattern(*pat, max_pattern(G->pdom_pat[a], G->pdom_pat[b]));
      a = G->pdom[a];
      b = G->pdom[b];
    }
  }
  return a;
}

static kiln_status graph_build(fgraph *G, relay_expr *body) {
  kiln_status st = relay_post_order(G->ctx, body, false, &G->nodes, &G->n);
  if (st) return st;
  int n = G->n;
  for (int i = 0; i < n && !st; i++)
    st = ir_ptrmap_put(&G->index, G->nodes[i], (void *)(intptr_t)(i + 1));
  if (st) return st;
  G->pattern = int_array(G, n, RELAY_OPAQUE);
  G->pdom = int_array(G, n, -1);
  G->depth = int_array(G, n, 1);
  G->pdom_pat = int_array(G, n, RELAY_OPAQUE);
  G->gparent = int_array(G, n, 0);
  G->gpattern = int_array(G, n, 0);
  G->gsize = int_array(G, n, 0);
  G->mark = int_array(G, n, 0);
  G->rmark = int_array(G, n, 0);
  G->stack = int_array(G, n, 0);
  G->out_start = ir_malloc(G->ctx, sizeof(int) * (size_t)(n + 1));
  if (!G->pattern || !G->pdom || !G->depth || !G->pdom_pat || !G->gparent || !G->gpattern ||
      !G->gsize || !G->mark || !G->rmark || !G->stack || !G->out_start)
    return KILN_ERR_NOMEM;
  /* consumers: count, then fill (CSR) */
  memset(G->out_start, 0, sizeof(int) * (size_t)(n + 1));
  for (int j = 0; j < n; j++)
    for (int i = 0; i < graph_kids(G->nodes[j]); i++)
      G->out_start[idx_of(G, relay_expr_child(G->nodes[j], i)) + 1]++;
  for (int i = 0; i < n; i++) G->out_start[i + 1] += G->out_start[i];
  int edges = G->nedges = G->out_start[n];
  G->out_node = ir_malloc(G->ctx, sizeof(int) * (size_t)(edges ? edges : 1));
  G->out_pat = ir_malloc(G->ctx, sizeof(int) * (size_t)(edges ? edges : 1));
  int *fill = int_array(G, n, 0);
  if (!G->out_node || !G->out_pat || !fill) {
    ir_free(G->ctx, fill, sizeof(int) * (size_t)(n ? n : 1));
    return KILN_ERR_NOMEM;
  }
  for (int j = 0; j < n; j++)
    for (int i = 0; i < graph_kids(G->nodes[j]); i++) {
      int k = idx_of(G, relay_expr_child(G->nodes[j], i));
      int e = G->out_start[k] + fill[k]++;
      G->out_node[e] = j;
      G->out_pat[e] = edge_pattern(G, G->nodes[j], i);
    }
  ir_free(G->ctx, fill, sizeof(int) * (size_t)(n ? n : 1));
  /* patterns and singleton groups */
  for (int i = 0; i < n; i++) {
    const relay_op *op = op_of(G->nodes[i]);
    G->pattern[i] = op ? op->pattern : RELAY_OPAQUE;
    G->gparent[i] = i;
    G->gpattern[i] = G->pattern[i];
    G->gsize[i] = op ? 1 : 0;
  }
  /* post-dominators, consumers first; the last node is the result, used outside */
  for (int i = n - 2; i >= 0; i--) {
    int pat = RELAY_ELEMWISE, p = -1;
    for (int e = G->out_start[i]; e < G->out_start[i + 1]; e++) {
      p = e == G->out_start[i] ? G->out_node[e] : lca(G, p, G->out_node[e], &pat);
      pat = max_pattern(pat, G->out_pat[e]);
    }
    G->pdom[i] = p;
    G->depth[i] = p >= 0 ? G->depth[p] + 1 : 1;
    G->pdom_pat[i] = pat;
  }
  return KILN_OK;
}

/* ---- Groups ------------------------------------------------------------------------------ */

static int find(fgraph *G, int i) {
  int r = i;
  while (G->gparent[r] != r) r = G->gparent[r];
  while (G->gparent[i] != r) {
    int next = G->gparent[i];
    G->gparent[i] = r;
    i = next;
  }
  return r;
}

static void merge(fgraph *G, int child, int parent) {
  int c = find(G, child), p = find(G, parent);
  if (c == p) return;
  G->gsize[p] += G->gsize[c];
  G->gparent[c] = p;
  /* a group holding a conv2d/dense stays one (it can take no second one) */
  if (G->gpattern[c] == RELAY_OUT_ELEMWISE_FUSABLE)
    G->gpattern[p] = max_pattern(G->gpattern[p], G->gpattern[c]);
}

/* What may lie on a path from a node to the post-dominator it fuses into. */
typedef enum path_rule { PATH_OUT_EWISE, PATH_BROADCAST, PATH_INJECTIVE } path_rule;

static bool path_allows(path_rule rule, int kind, bool is_sink) {
  switch (rule) {
  case PATH_OUT_EWISE: return kind <= RELAY_BROADCAST;
  case PATH_BROADCAST:
    if (!is_sink) return kind <= RELAY_INJECTIVE;
    return kind <= RELAY_INJECTIVE || kind == RELAY_COMM_REDUCE ||
           kind == RELAY_OUT_ELEMWISE_FUSABLE;
  case PATH_INJECTIVE: return kind <= RELAY_INJECTIVE;
  }
  return false;
}

/* Visits every node on a path from src to its post-dominator sink once (all of src's
 * descendants up to sink: sink post-dominates them). Without `commit` it checks that the
 * rule allows each node's group (the sink's as the sink); with `commit` it merges src and
 * every node before sink into sink's group. */
static bool walk_paths(fgraph *G, int src, int sink, path_rule rule, bool commit) {
  int top = 0;
  G->stamp++;
  for (int e = G->out_start[src]; e < G->out_start[src + 1]; e++) {
    int v = G->out_node[e];
    if (G->mark[v] != G->stamp) {
      G->mark[v] = G->stamp;
      G->stack[top++] = v;
    }
  }
  if (commit) merge(G, src, sink);
  while (top) {
    int v = G->stack[--top];
    if (!commit && !path_allows(rule, G->gpattern[find(G, v)], v == sink)) return false;
    if (v == sink) continue;
    if (commit) merge(G, v, sink);
    for (int e = G->out_start[v]; e < G->out_start[v + 1]; e++) {
      int w = G->out_node[e];
      if (G->mark[w] == G->stamp) continue;
      G->mark[w] = G->stamp;
      G->stack[top++] = w;
    }
  }
  return true;
}

static void count_group(fgraph *G, int root, int *total) {
  if (G->rmark[root] == G->stamp) return;
  G->rmark[root] = G->stamp;
  *total += G->gsize[root];
}

/* How many ops the sink's group would hold with src and everything between them (each
 * group on the way counted once). */
static int fused_size(fgraph *G, int src, int sink) {
  int total = 0, top = 0;
  G->stamp++;
  count_group(G, find(G, sink), &total);
  count_group(G, find(G, src), &total);
  G->mark[src] = G->stamp;
  G->stack[top++] = src;
  while (top) {
    int v = G->stack[--top];
    for (int e = G->out_start[v]; e < G->out_start[v + 1]; e++) {
      int w = G->out_node[e];
      if (w == sink || G->mark[w] == G->stamp) continue;
      G->mark[w] = G->stamp;
      count_group(G, find(G, w), &total);
      G->stack[top++] = w;
    }
  }
  return total;
}

static void try_fuse(fgraph *G, int i, int phase) {
  int p = G->pdom[i], kind = G->gpattern[i];
  if (kind == RELAY_OPAQUE || p < 0 || find(G, i) == find(G, p)) return;
  path_rule rule;
  if (kind == RELAY_OUT_ELEMWISE_FUSABLE) {
    if (phase != 0 || G->pdom_pat[i] != RELAY_ELEMWISE) return;
    rule = PATH_OUT_EWISE;
  } else if (kind <= RELAY_BROADCAST) {
    if (!(G->pdom_pat[i] <= RELAY_INJECTIVE || G->pdom_pat[i] == RELAY_COMM_REDUCE)) return;
    rule = PATH_BROADCAST;
  } else if (kind == RELAY_INJECTIVE) {
    if (phase != 1) return;
    rule = PATH_INJECTIVE;
  } else {
    return; /* reductions take inputs but do not fuse into their consumers */
  }
  if (fused_size(G, i, p) > G->max_depth) return;
  if (walk_paths(G, i, p, rule, false)) walk_paths(G, i, p, rule, true);
}

/* ---- Building the primitive functions ------------------------------------------------- */

typedef struct fuser {
  fgraph *G;
  relay_pass_ctx *pc;
  ir_arena *arena;
  relay_attr *primitive;
  int *group_out; /* group root -> its output node (the member last in topological order) */
} fuser;

static relay_expr *fuse_body(fuser *parent, relay_expr *body);

static bool is_scalar_const(const ir_node *n) {
  return n->kind == RELAY_CONST && relay_as_tensor_type(((const relay_const *)n)->type)->ndim == 0;
}

typedef struct inner {
  fgraph *G;
  int root;
} inner;

/* Inside a group's function: members are rebuilt on the parameters; everything else is a
 * parameter (through the memo) or a 0-d constant, kept. */
static ir_node *inner_visit(ir_mutator *mu, ir_node *n) {
  inner *in = mu->ud;
  if (!relay_is_expr(n)) return n;
  int i = idx_of(in->G, n);
  if (i >= 0 && op_of(n) && find(in->G, i) == in->root) return ir_mutate_children(mu, n);
  return n;
}

/* The call of the primitive function for the group whose output is node o; the outer
 * mutator rewrites the group's inputs. */
static relay_expr *make_group(fuser *F, ir_mutator *outer, int o) {
  fgraph *G = F->G;
  ir_arena *a = F->arena;
  int root = find(G, o);
  /* members are the op calls of the group; inputs the nodes they use from outside it */
  relay_expr **inputs = NULL;
  relay_var **params = NULL;
  int ninputs = 0, cap = 0;
  kiln_status st = KILN_OK;
  ir_ptrmap memo;
  ir_ptrmap_init(&memo, G->ctx);
  relay_expr *result = NULL;
  for (int i = 0; i <= o && !st; i++) {
    if (!op_of(G->nodes[i]) || find(G, i) != root) continue;
    relay_expr *m = G->nodes[i];
    for (int k = 0; k < relay_expr_child_count(m) && !st; k++) {
      relay_expr *x = relay_expr_child(m, k);
      int xi = idx_of(G, x);
      if ((xi >= 0 && op_of(x) && find(G, xi) == root) || is_scalar_const(x) ||
          ir_ptrmap_get(&memo, x))
        continue;
      if (ninputs == cap) {
        int ncap = cap ? cap * 2 : 8;
        relay_expr **ni =
            ir_realloc(G->ctx, inputs, sizeof *ni * (size_t)cap, sizeof *ni * (size_t)ncap);
        if (!ni) {
          st = KILN_ERR_NOMEM;
          break;
        }
        inputs = ni;
        relay_var **np =
            ir_realloc(G->ctx, params, sizeof *np * (size_t)cap, sizeof *np * (size_t)ncap);
        if (!np) {
          st = KILN_ERR_NOMEM;
          break;
        }
        params = np;
        cap = ncap;
      }
      char name[24];
      snprintf(name, sizeof name, "p%d", ninputs);
      relay_var *p = relay_var_new(a, name, relay_type_of(x));
      if (!p || ir_ptrmap_put(&memo, x, p)) st = KILN_ERR_NOMEM;
      inputs[ninputs] = x;
      params[ninputs++] = p;
    }
  }
  if (!st) {
    inner in = {G, root};
    ir_mutator mu = {a, inner_visit, &in, &memo, false};
    relay_expr *body = ir_mutate(&mu, G->nodes[o]);
    relay_expr *fn = body ? relay_func_new(a, ninputs, params, NULL, body, 1, &F->primitive) : NULL;
    for (int i = 0; fn && i < ninputs; i++)
      if (!(inputs[i] = ir_mutate(outer, inputs[i]))) fn = NULL;
    if (fn) {
      ir_span saved = a->span;
      a->span = G->nodes[o]->span;
      result = relay_call_fn(a, fn, ninputs, inputs);
      a->span = saved;
    }
  }
  ir_ptrmap_free(&memo);
  ir_free(G->ctx, inputs, sizeof *inputs * (size_t)cap);
  ir_free(G->ctx, params, sizeof *params * (size_t)cap);
  return result;
}

static ir_node *outer_visit(ir_mutator *mu, ir_node *n) {
  fuser *F = mu->ud;
  if (!relay_is_expr(n)) return n;
  if (n->kind == RELAY_FUNC) {
    relay_func *f = (relay_func *)n;
    if (relay_func_is_primitive(f)) return n;
    relay_expr *body = fuse_body(F, f->body);
    if (!body) return NULL;
    if (body == f->body) return n;
    ir_span saved = mu->arena->span;
    mu->arena->span = n->span;
    relay_expr *r =
        relay_func_new(mu->arena, f->nparams, f->params, f->ret_type, body, f->nattrs, f->attrs);
    mu->arena->span = saved;
    return r;
  }
  int i = idx_of(F->G, n);
  if (i >= 0 && op_of(n)) {
    int root = find(F->G, i);
    if (F->group_out[root] != i) {
      ir_fail(F->G->ctx, n->span, KILN_ERR_INTERNAL,
              "FuseOps: %s is inside a group but used outside it", ((relay_call *)n)->op);
      return NULL;
    }
    return make_group(F, mu, i);
  }
  return ir_mutate_children(mu, n);
}

/* Fuses the ops of one function body (its own graph). */
static relay_expr *fuse_body(fuser *parent, relay_expr *body) {
  kiln_context *ctx = parent->arena->ctx;
  fgraph G;
  memset(&G, 0, sizeof G);
  G.ctx = ctx;
  G.scratch = parent->G ? parent->G->scratch : NULL;
  G.max_depth = parent->pc->fuse_max_depth > 0 ? parent->pc->fuse_max_depth : RELAY_FUSE_MAX_DEPTH;
  ir_ptrmap_init(&G.index, ctx);
  ir_arena *own_scratch = G.scratch ? NULL : ir_arena_new(ctx);
  if (!G.scratch) G.scratch = own_scratch;
  relay_expr *r = NULL;
  fuser F = {&G, parent->pc, parent->arena, parent->primitive, NULL};
  if (G.scratch && !graph_build(&G, body)) {
    for (int phase = 0; phase < 2; phase++)
      for (int i = 0; i < G.n; i++) try_fuse(&G, i, phase);
    if ((F.group_out = int_array(&G, G.n, -1)) != NULL) {
      for (int i = 0; i < G.n; i++)
        if (op_of(G.nodes[i])) F.group_out[find(&G, i)] = i; /* the last member wins */
      ir_ptrmap memo;
      ir_ptrmap_init(&memo, ctx);
      ir_mutator mu = {parent->arena, outer_visit, &F, &memo, true};
      /* bottom up, so the rewrite never recurses as deep as the graph: group outputs and
       * the nodes between groups, each after its inputs */
      bool ok = true;
      for (int i = 0; i < G.n && ok; i++)
        if (!op_of(G.nodes[i]) || F.group_out[find(&G, i)] == i)
          ok = ir_mutate(&mu, G.nodes[i]) != NULL;
      r = ok ? ir_mutate(&mu, body) : NULL;
      ir_ptrmap_free(&memo);
      ir_free(ctx, F.group_out, sizeof(int) * (size_t)(G.n ? G.n : 1));
    }
  }
  graph_free(&G);
  ir_arena_free(own_scratch);
  return r;
}

static relay_func *rewrite(relay_pass_ctx *pc, relay_module *m, relay_func *f, void *ud) {
  (void)ud;
  fuser top = {NULL, pc, m->arena, relay_attr_int(m->arena, "primitive", 1), NULL};
  if (!top.primitive) return NULL;
  if (relay_func_is_primitive(f)) return f;
  relay_expr *body = fuse_body(&top, f->body);
  if (!body) return NULL;
  if (body == f->body) return f;
  ir_span saved = m->arena->span;
  m->arena->span = f->h.span;
  relay_func *r = (relay_func *)relay_func_new(m->arena, f->nparams, f->params, f->ret_type, body,
                                               f->nattrs, f->attrs);
  m->arena->span = saved;
  return r;
}

static kiln_status run(relay_pass_ctx *pc, relay_module *m) {
  return relay_rewrite_funcs(pc, m, "FuseOps", rewrite, NULL);
}

const relay_pass relay_pass_fuse_ops = {"FuseOps", 0, run,
                                        "groups op calls into primitive functions"};

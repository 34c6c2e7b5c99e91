/* state.c: the schedule state under every primitive: the current PrimFunc, the table of
 * random variables (blocks by name, loops by loop variable, integers), lookups that turn an
 * RV into the node it designates today, tree surgery (replace or remove one statement and
 * rebuild the function around it), instruction recording, and the three query primitives
 * (get_block, get_loops, get_child_blocks). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kiln/kiln.h"
#include "schedule/schedule.h"

static const char *const inst_names[SCH_INST_COUNT] = {
#define X(e, n, f) n,
    SCH_INSTRUCTIONS(X)
#undef X
};

const char *sch_inst_name(int kind) {
  return kind >= 0 && kind < SCH_INST_COUNT ? inst_names[kind] : "?";
}

int sch_inst_lookup(const char *name) {
  for (int i = 0; i < SCH_INST_COUNT; i++)
    if (strcmp(inst_names[i], name) == 0) return i;
  return -1;
}

/* ---- Life cycle ---------------------------------------------------------------------- */

uint64_t sch_rand(sch_schedule *s) { return ir_splitmix64(&s->rng); }

sch_schedule *sch_new(kiln_context *ctx, const ir_func *f, uint64_t seed) {
  if (!ctx) return NULL;
  if (!f) {
    ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "schedule: no function given");
    return NULL;
  }
  sch_schedule *s = ir_malloc(ctx, sizeof *s);
  if (!s) return NULL;
  memset(s, 0, sizeof *s);
  s->ctx = ctx;
  s->arena = ir_arena_new(ctx);
  if (!s->arena) {
    ir_free(ctx, s, sizeof *s);
    return NULL;
  }
  s->orig = (ir_func *)ir_deep_copy(s->arena, &f->h);
  if (!s->orig) {
    sch_free(s);
    return NULL;
  }
  s->func = s->orig;
  s->trace.arena = s->arena;
  s->rng = seed;
  return s;
}

void sch_free(sch_schedule *s) {
  if (!s) return;
  kiln_context *ctx = s->ctx;
  if (s->rvs) ir_free(ctx, s->rvs, sizeof(sch_rv_info) * (size_t)s->cap_rvs);
  ir_arena_free(s->arena);
  ir_free(ctx, s, sizeof *s);
}

kiln_status sch_fail(sch_schedule *s, const char *prim, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_SCHEDULE, "%s: %s", prim, msg);
}

/* ---- Random variables ---------------------------------------------------------------- */

static sch_rv add_rv(sch_schedule *s, sch_rv_info info) {
  if (s->nrvs == s->cap_rvs) {
    int32_t cap = s->cap_rvs ? s->cap_rvs * 2 : 32;
    sch_rv_info *r = ir_realloc(s->ctx, s->rvs, sizeof(sch_rv_info) * (size_t)s->cap_rvs,
                                sizeof(sch_rv_info) * (size_t)cap);
    if (!r) return SCH_RV_NONE;
    s->rvs = r;
    s->cap_rvs = cap;
  }
  s->rvs[s->nrvs] = info;
  return s->nrvs++;
}

sch_rv sch_new_block_rv(sch_schedule *s, const char *name) {
  const char *copy = ir_arena_strdup(s->arena, name);
  if (!copy) return SCH_RV_NONE;
  return add_rv(s, (sch_rv_info){.kind = SCH_RV_BLOCK, .block = copy});
}

sch_rv sch_new_loop_rv(sch_schedule *s, ir_var *loop) {
  return add_rv(s, (sch_rv_info){.kind = SCH_RV_LOOP, .loop = loop});
}

sch_rv sch_new_int_rv(sch_schedule *s, int64_t v) {
  return add_rv(s, (sch_rv_info){.kind = SCH_RV_INT, .value = v});
}

sch_rv sch_int(sch_schedule *s, int64_t v) {
  return add_rv(s, (sch_rv_info){.kind = SCH_RV_INT, .value = v, .is_const = true});
}

const sch_rv_info *sch_rv_get(const sch_schedule *s, sch_rv rv) {
  return s && rv >= 0 && rv < s->nrvs ? &s->rvs[rv] : NULL;
}

static const char *rv_kind_name(int k) {
  return k == SCH_RV_BLOCK ? "block" : k == SCH_RV_LOOP ? "loop" : "integer";
}

/* The RV's record if it exists and has the expected kind. */
static kiln_status check_rv(sch_schedule *s, const char *prim, sch_rv rv, int kind,
                            const sch_rv_info **out) {
  const sch_rv_info *r = sch_rv_get(s, rv);
  if (!r)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "%s: %d is not a random variable of "
                   "this schedule", prim, (int)rv);
  if (r->kind != kind)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "%s: expected a %s, got a %s", prim,
                   rv_kind_name(kind), rv_kind_name(r->kind));
  *out = r;
  return KILN_OK;
}

kiln_status sch_rv_int(sch_schedule *s, sch_rv rv, int64_t *out) {
  const sch_rv_info *r;
  kiln_status st = check_rv(s, "integer", rv, SCH_RV_INT, &r);
  if (st) return st;
  *out = r->value;
  return KILN_OK;
}

/* ---- Finding nodes ------------------------------------------------------------------- */

typedef struct finder {
  const char *block; /* find the realize of this block... */
  const ir_var *loop; /* ...or the for of this variable */
  ir_node *found;
  int count;
} finder;

static bool find_fn(ir_node *n, void *ud) {
  finder *fd = ud;
  if (!ir_is_stmt(n)) return false; /* expressions hold no statements */
  if (fd->block && n->kind == IR_BLOCK_REALIZE &&
      strcmp(((ir_block_realize *)n)->block->name, fd->block) == 0) {
    if (!fd->found) fd->found = n;
    fd->count++;
  }
  if (fd->loop && n->kind == IR_FOR && ((ir_for *)n)->var == fd->loop) {
    if (!fd->found) fd->found = n;
    fd->count++;
  }
  return true;
}

kiln_status sch_get_realize(sch_schedule *s, const char *prim, sch_rv rv,
                            ir_block_realize **out) {
  const sch_rv_info *r;
  kiln_status st = check_rv(s, prim, rv, SCH_RV_BLOCK, &r);
  if (st) return st;
  finder fd = {.block = r->block};
  ir_visit(s->func->body, false, find_fn, &fd);
  if (!fd.found)
    return sch_fail(s, prim, "block '%s' no longer exists (it was inlined or replaced)",
                    r->block);
  *out = (ir_block_realize *)fd.found;
  return KILN_OK;
}

kiln_status sch_get_for(sch_schedule *s, const char *prim, sch_rv rv, ir_for **out) {
  const sch_rv_info *r;
  kiln_status st = check_rv(s, prim, rv, SCH_RV_LOOP, &r);
  if (st) return st;
  if (!r->loop)
    return sch_fail(s, prim, "expected a loop, got the %s location",
                    r->special == SCH_LOC_INLINE ? "inline" : "root");
  finder fd = {.loop = r->loop};
  ir_visit(s->func->body, false, find_fn, &fd);
  if (!fd.found)
    return sch_fail(s, prim, "loop '%s' no longer exists (it was split, fused or removed)",
                    r->loop->name);
  *out = (ir_for *)fd.found;
  return KILN_OK;
}

/* The statements directly under s (for blocks: init then body). */
static int stmt_children(const ir_stmt *st, ir_stmt **kids, int cap) {
  switch (st->kind) {
  case IR_FOR: kids[0] = ((const ir_for *)st)->body; return 1;
  case IR_IF: {
    const ir_if *x = (const ir_if *)st;
    kids[0] = x->then_case;
    if (!x->else_case) return 1;
    kids[1] = x->else_case;
    return 2;
  }
  case IR_SEQ: {
    const ir_seq *x = (const ir_seq *)st;
    int n = x->nstmts < cap ? x->nstmts : cap;
    for (int i = 0; i < n; i++) kids[i] = x->stmts[i];
    return n;
  }
  case IR_LET_STMT: kids[0] = ((const ir_let_stmt *)st)->body; return 1;
  case IR_ALLOCATE: kids[0] = ((const ir_allocate *)st)->body; return 1;
  case IR_BLOCK_REALIZE: kids[0] = &((const ir_block_realize *)st)->block->h; return 1;
  case IR_BLOCK: {
    const ir_block *b = (const ir_block *)st;
    int n = 0;
    if (b->init) kids[n++] = b->init;
    kids[n++] = b->body;
    return n;
  }
  default: return 0;
  }
}

static int stmt_child_count(const ir_stmt *st) {
  return st->kind == IR_SEQ ? ((const ir_seq *)st)->nstmts : 2;
}

/* Depth-first search for target below cur; on success the path is pushed on sb (as
 * pointers) from cur down to target. */
typedef struct path_buf {
  kiln_context *ctx;
  ir_stmt **items;
  int n, cap;
  bool nomem;
} path_buf;

static void path_push(path_buf *p, ir_stmt *st) {
  if (p->n == p->cap) {
    int cap = p->cap ? p->cap * 2 : 16;
    ir_stmt **r = ir_realloc(p->ctx, p->items, sizeof *r * (size_t)p->cap, sizeof *r * (size_t)cap);
    if (!r) {
      p->nomem = true;
      return;
    }
    p->items = r;
    p->cap = cap;
  }
  p->items[p->n++] = st;
}

static bool search(path_buf *p, ir_stmt *cur, const ir_stmt *target) {
  path_push(p, cur);
  if (p->nomem) return false;
  if (cur == target) return true;
  int cap = stmt_child_count(cur);
  ir_stmt *small[2], **kids = small;
  if (cap > 2) {
    kids = ir_malloc(p->ctx, sizeof *kids * (size_t)cap);
    if (!kids) {
      p->nomem = true;
      return false;
    }
  }
  int nk = stmt_children(cur, kids, cap);
  bool found = false;
  for (int i = 0; i < nk && !found && !p->nomem; i++) found = search(p, kids[i], target);
  if (kids != small) ir_free(p->ctx, kids, sizeof *kids * (size_t)cap);
  if (!found) p->n--;
  return found;
}

kiln_status sch_path_to(sch_schedule *s, const ir_stmt *target, int *n, ir_stmt ***path) {
  path_buf p = {.ctx = s->ctx};
  bool found = search(&p, s->func->body, target);
  if (p.nomem) {
    if (p.items) ir_free(s->ctx, p.items, sizeof *p.items * (size_t)p.cap);
    return KILN_ERR_NOMEM;
  }
  if (!found) {
    if (p.items) ir_free(s->ctx, p.items, sizeof *p.items * (size_t)p.cap);
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL,
                   "schedule: a statement is not part of the current function");
  }
  ir_stmt **out = ir_arena_copy_nodes(s->arena, p.n, (void *const *)p.items);
  ir_free(s->ctx, p.items, sizeof *p.items * (size_t)p.cap);
  if (!out) return KILN_ERR_NOMEM;
  *n = p.n;
  *path = out;
  return KILN_OK;
}

kiln_status sch_scope_of(sch_schedule *s, const ir_stmt *target, ir_block_realize **out) {
  int n;
  ir_stmt **path;
  kiln_status st = sch_path_to(s, target, &n, &path);
  if (st) return st;
  for (int i = n - 2; i >= 0; i--)
    if (path[i]->kind == IR_BLOCK_REALIZE) {
      *out = (ir_block_realize *)path[i];
      return KILN_OK;
    }
  return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_SCHEDULE,
                 "schedule: the statement is not inside a block (the function has no root "
                 "block)");
}

kiln_status sch_loops_around(sch_schedule *s, const ir_stmt *target, int *n, ir_for ***loops) {
  int np;
  ir_stmt **path;
  kiln_status st = sch_path_to(s, target, &np, &path);
  if (st) return st;
  int start = 0;
  for (int i = np - 2; i >= 0; i--)
    if (path[i]->kind == IR_BLOCK) {
      start = i + 1;
      break;
    }
  int cnt = 0;
  for (int i = start; i < np - 1; i++) cnt += path[i]->kind == IR_FOR;
  ir_for **out = cnt ? ir_arena_alloc(s->arena, sizeof *out * (size_t)cnt) : NULL;
  if (cnt && !out) return KILN_ERR_NOMEM;
  cnt = 0;
  for (int i = start; i < np - 1; i++)
    if (path[i]->kind == IR_FOR) out[cnt++] = (ir_for *)path[i];
  *n = cnt;
  *loops = out;
  return KILN_OK;
}

/* ---- Tree surgery -------------------------------------------------------------------- */

typedef struct replacer {
  const ir_stmt *old;
  ir_stmt *repl; /* NULL: remove old from its sequence */
  bool done;
} replacer;

static ir_node *replace_visit(ir_mutator *m, ir_node *n) {
  replacer *r = m->ud;
  if (r->done || !ir_is_stmt(n)) return n;
  if (n == r->old) {
    r->done = true;
    return r->repl;
  }
  if (!r->repl && n->kind == IR_SEQ) {
    ir_seq *sq = (ir_seq *)n;
    for (int i = 0; i < sq->nstmts; i++)
      if (sq->stmts[i] == r->old) {
        r->done = true;
        if (sq->nstmts == 1) return NULL; /* not reached: removal climbs above */
        ir_stmt **rest = ir_arena_alloc(m->arena, sizeof *rest * (size_t)(sq->nstmts - 1));
        if (!rest) return NULL;
        int k = 0;
        for (int j = 0; j < sq->nstmts; j++)
          if (j != i) rest[k++] = sq->stmts[j];
        if (k == 1) return rest[0];
        return ir_seq_new(m->arena, k, rest);
      }
  }
  return ir_mutate_children(m, n);
}

kiln_status sch_replace(sch_schedule *s, const ir_stmt *old, ir_stmt *repl) {
  if (!repl) {
    /* Removing: climb to the outermost ancestor that holds nothing but old (loops, lets,
     * allocates around it), which must sit in a sequence. */
    int n;
    ir_stmt **path;
    kiln_status st = sch_path_to(s, old, &n, &path);
    if (st) return st;
    int i = n - 1;
    while (i > 0 && path[i - 1]->kind != IR_SEQ) {
      int k = path[i - 1]->kind;
      if (k != IR_FOR && k != IR_LET_STMT && k != IR_ALLOCATE &&
          !(k == IR_IF && !((ir_if *)path[i - 1])->else_case))
        return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_SCHEDULE,
                       "schedule: cannot remove the only statement of a %s",
                       ir_kind_name(k));
      i--;
    }
    if (i == 0)
      return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_SCHEDULE,
                     "schedule: cannot remove the whole function body");
    old = path[i];
  }
  replacer r = {old, repl, false};
  ir_mutator m = {.arena = s->arena, .visit = replace_visit, .ud = &r};
  ir_node *body = ir_mutate(&m, s->func->body);
  if (!body) return kiln_context_errcode(s->ctx) ? kiln_context_errcode(s->ctx) : KILN_ERR_NOMEM;
  if (!r.done)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL,
                   "schedule: the statement to replace is not in the current function");
  ir_func *f = s->func;
  ir_func *nf = ir_func_new(s->arena, f->name, f->nparams, f->params, f->nattrs, f->attrs, body);
  if (!nf) return KILN_ERR_NOMEM;
  s->func = nf;
  return KILN_OK;
}

/* ---- Blocks under a statement -------------------------------------------------------- */

typedef struct realize_list {
  kiln_context *ctx;
  ir_block_realize **items;
  int n, cap;
  bool nomem;
} realize_list;

static void collect_realizes(realize_list *l, ir_stmt *st) {
  if (l->nomem || !st) return;
  if (st->kind == IR_BLOCK_REALIZE) {
    if (l->n == l->cap) {
      int cap = l->cap ? l->cap * 2 : 8;
      ir_block_realize **r = ir_realloc(l->ctx, l->items, sizeof *r * (size_t)l->cap,
                                        sizeof *r * (size_t)cap);
      if (!r) {
        l->nomem = true;
        return;
      }
      l->items = r;
      l->cap = cap;
    }
    l->items[l->n++] = (ir_block_realize *)st;
    return;
  }
  int cap = stmt_child_count(st);
  ir_stmt *small[2], **kids = small;
  if (cap > 2 && !(kids = ir_malloc(l->ctx, sizeof *kids * (size_t)cap))) {
    l->nomem = true;
    return;
  }
  int nk = stmt_children(st, kids, cap);
  for (int i = 0; i < nk; i++) collect_realizes(l, kids[i]);
  if (kids != small) ir_free(l->ctx, kids, sizeof *kids * (size_t)cap);
}

/* Moves a list into the arena. */
static kiln_status finish_list(sch_schedule *s, realize_list *l, int *n,
                               ir_block_realize ***out) {
  kiln_status st = KILN_OK;
  *n = 0;
  *out = NULL;
  if (l->nomem) st = KILN_ERR_NOMEM;
  else if (l->n) {
    *out = ir_arena_copy_nodes(s->arena, l->n, (void *const *)l->items);
    if (!*out) st = KILN_ERR_NOMEM;
    else *n = l->n;
  }
  if (l->items) ir_free(s->ctx, l->items, sizeof *l->items * (size_t)l->cap);
  return st;
}

kiln_status sch_child_realizes(sch_schedule *s, const ir_stmt *parent, int *n,
                               ir_block_realize ***out) {
  realize_list l = {.ctx = s->ctx};
  ir_stmt *start = (ir_stmt *)parent;
  if (parent->kind == IR_BLOCK_REALIZE) start = ((ir_block_realize *)parent)->block->body;
  else if (parent->kind == IR_BLOCK) start = ((ir_block *)parent)->body;
  else if (parent->kind == IR_FOR) start = ((ir_for *)parent)->body;
  collect_realizes(&l, start);
  return finish_list(s, &l, n, out);
}

static bool regions_have(int n, ir_region *const *rs, const ir_buffer *b) {
  for (int i = 0; i < n; i++)
    if (rs[i]->buffer == b) return true;
  return false;
}

static kiln_status filter_access(sch_schedule *s, const ir_block_realize *scope,
                                 const ir_buffer *b, bool writes, int *n,
                                 ir_block_realize ***out) {
  int nall;
  ir_block_realize **all;
  kiln_status st = sch_child_realizes(s, &scope->h, &nall, &all);
  if (st) return st;
  int k = 0;
  for (int i = 0; i < nall; i++) {
    const ir_block *blk = all[i]->block;
    if (writes ? regions_have(blk->nwrites, blk->writes, b) : regions_have(blk->nreads, blk->reads, b))
      all[k++] = all[i];
  }
  *n = k;
  *out = all;
  return KILN_OK;
}

kiln_status sch_writers_of(sch_schedule *s, const ir_block_realize *scope, const ir_buffer *b,
                           int *n, ir_block_realize ***out) {
  return filter_access(s, scope, b, true, n, out);
}

kiln_status sch_readers_of(sch_schedule *s, const ir_block_realize *scope, const ir_buffer *b,
                           int *n, ir_block_realize ***out) {
  return filter_access(s, scope, b, false, n, out);
}

/* ---- Fresh names --------------------------------------------------------------------- */

typedef struct name_probe {
  const char *name;
  bool taken;
} name_probe;

static bool probe_fn(ir_node *n, void *ud) {
  name_probe *p = ud;
  if (p->taken) return false;
  if (n->kind == IR_BLOCK && strcmp(((ir_block *)n)->name, p->name) == 0) p->taken = true;
  if (n->kind == IR_BUFFER && strcmp(((ir_buffer *)n)->name, p->name) == 0) p->taken = true;
  return !p->taken;
}

static bool name_taken(sch_schedule *s, const char *name) {
  name_probe p = {name, false};
  ir_visit(&s->func->h, true, probe_fn, &p);
  return p.taken;
}

const char *sch_fresh_name(sch_schedule *s, const char *base) {
  if (!name_taken(s, base)) return ir_arena_strdup(s->arena, base);
  char buf[256];
  for (int i = 1;; i++) {
    snprintf(buf, sizeof buf, "%.200s_%d", base, i);
    if (!name_taken(s, buf)) return ir_arena_strdup(s->arena, buf);
  }
}

/* ---- Recording ----------------------------------------------------------------------- */

sch_arg sch_arg_rv(const sch_schedule *s, sch_rv rv) {
  const sch_rv_info *r = sch_rv_get(s, rv);
  if (r && r->kind == SCH_RV_INT && r->is_const) return sch_arg_int(r->value);
  return (sch_arg){SCH_ARG_RV, rv, 0, NULL};
}

kiln_status sch_record(sch_schedule *s, int kind, int ninputs, const sch_arg *inputs,
                       int noutputs, const sch_rv *outputs, int ndecision,
                       const int64_t *decision) {
  sch_trace *t = &s->trace;
  if (t->ninsts == t->cap) {
    int32_t cap = t->cap ? t->cap * 2 : 16;
    sch_inst *r = ir_arena_alloc(s->arena, sizeof *r * (size_t)cap);
    if (!r) return KILN_ERR_NOMEM;
    if (t->ninsts) memcpy(r, t->insts, sizeof *r * (size_t)t->ninsts);
    t->insts = r;
    t->cap = cap;
  }
  sch_inst in = {.kind = kind, .ninputs = ninputs, .noutputs = noutputs, .ndecision = ndecision};
  if (ninputs) {
    if (!(in.inputs = ir_arena_alloc(s->arena, sizeof *in.inputs * (size_t)ninputs)))
      return KILN_ERR_NOMEM;
    for (int i = 0; i < ninputs; i++) {
      in.inputs[i] = inputs[i];
      if (inputs[i].kind == SCH_ARG_STR &&
          !(in.inputs[i].s = ir_arena_strdup(s->arena, inputs[i].s ? inputs[i].s : "")))
        return KILN_ERR_NOMEM;
    }
  }
  if (noutputs) {
    if (!(in.outputs = ir_arena_alloc(s->arena, sizeof *in.outputs * (size_t)noutputs)))
      return KILN_ERR_NOMEM;
    memcpy(in.outputs, outputs, sizeof *outputs * (size_t)noutputs);
  }
  if (ndecision > 0) {
    if (!(in.decision = ir_arena_alloc(s->arena, sizeof *in.decision * (size_t)ndecision)))
      return KILN_ERR_NOMEM;
    memcpy(in.decision, decision, sizeof *decision * (size_t)ndecision);
  }
  t->insts[t->ninsts++] = in;
  return KILN_OK;
}

kiln_status sch_input_rv(sch_schedule *s, const sch_arg *a, int kind, sch_rv *out) {
  if (a->kind == SCH_ARG_RV) {
    const sch_rv_info *r = sch_rv_get(s, (sch_rv)a->i);
    if (!r || r->kind != kind)
      return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "trace: argument $%lld is not a %s of the schedule", (long long)a->i,
                     rv_kind_name(kind));
    *out = (sch_rv)a->i;
    return KILN_OK;
  }
  if (a->kind == SCH_ARG_INT && kind == SCH_RV_INT) {
    *out = sch_int(s, a->i);
    return *out == SCH_RV_NONE ? KILN_ERR_NOMEM : KILN_OK;
  }
  return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "trace: expected a %s argument",
                 rv_kind_name(kind));
}

/* ---- Queries --------------------------------------------------------------------------- */

/* get_block(name): the block called name. Inputs: [name]. */
kiln_status sch_get_block(sch_schedule *s, const char *name, sch_rv *out) {
  if (!s || !name || !out) return KILN_ERR_MISUSE;
  finder fd = {.block = name};
  ir_visit(s->func->body, false, find_fn, &fd);
  if (!fd.found)
    return sch_fail(s, "get_block", "no block named '%s' in function '%s'", name,
                    s->func->name);
  if (fd.count > 1)
    return sch_fail(s, "get_block", "%d blocks are named '%s'", fd.count, name);
  sch_rv rv = sch_new_block_rv(s, name);
  if (rv == SCH_RV_NONE) return KILN_ERR_NOMEM;
  sch_arg in = sch_arg_str(name);
  kiln_status st = sch_record(s, SCH_INST_GET_BLOCK, 1, &in, 1, &rv, -1, NULL);
  if (st) return st;
  *out = rv;
  return KILN_OK;
}

kiln_status sch_apply_get_block(sch_schedule *s, int ninputs, const sch_arg *inputs,
                                int ndecision, const int64_t *decision, sch_rv *outputs,
                                int *noutputs) {
  (void)ndecision, (void)decision;
  if (ninputs != 1 || inputs[0].kind != SCH_ARG_STR)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "trace: get_block takes a block name");
  *noutputs = 1;
  return sch_get_block(s, inputs[0].s, &outputs[0]);
}

/* get_loops(block): the loops around the block up to its scope. Inputs: [block]. */
kiln_status sch_get_loops(sch_schedule *s, sch_rv block, int *n, sch_rv **loops) {
  if (!s || !n || !loops) return KILN_ERR_MISUSE;
  ir_block_realize *r;
  kiln_status st = sch_get_realize(s, "get_loops", block, &r);
  if (st) return st;
  int nl;
  ir_for **fl;
  if ((st = sch_loops_around(s, &r->h, &nl, &fl))) return st;
  if (nl > SCH_MAX_INST_ARGS)
    return sch_fail(s, "get_loops", "block '%s' is nested in %d loops (at most %d)",
                    r->block->name, nl, SCH_MAX_INST_ARGS);
  sch_rv *out = nl ? ir_arena_alloc(s->arena, sizeof *out * (size_t)nl) : NULL;
  if (nl && !out) return KILN_ERR_NOMEM;
  for (int i = 0; i < nl; i++)
    if ((out[i] = sch_new_loop_rv(s, fl[i]->var)) == SCH_RV_NONE) return KILN_ERR_NOMEM;
  sch_arg in = sch_arg_rv(s, block);
  if ((st = sch_record(s, SCH_INST_GET_LOOPS, 1, &in, nl, out, -1, NULL))) return st;
  *n = nl;
  *loops = out;
  return KILN_OK;
}

kiln_status sch_apply_get_loops(sch_schedule *s, int ninputs, const sch_arg *inputs,
                                int ndecision, const int64_t *decision, sch_rv *outputs,
                                int *noutputs) {
  (void)ndecision, (void)decision;
  sch_rv b;
  if (ninputs != 1)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE, "trace: get_loops takes one block");
  kiln_status st = sch_input_rv(s, &inputs[0], SCH_RV_BLOCK, &b);
  if (st) return st;
  int n;
  sch_rv *loops;
  if ((st = sch_get_loops(s, b, &n, &loops))) return st;
  if (n) memcpy(outputs, loops, sizeof *loops * (size_t)n);
  *noutputs = n;
  return KILN_OK;
}

/* get_child_blocks(parent): blocks directly under a block or loop. Inputs: [parent]. */
kiln_status sch_get_child_blocks(sch_schedule *s, sch_rv parent, int *n, sch_rv **blocks) {
  if (!s || !n || !blocks) return KILN_ERR_MISUSE;
  const sch_rv_info *info = sch_rv_get(s, parent);
  if (!info)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                   "get_child_blocks: %d is not a random variable of this schedule", parent);
  kiln_status st;
  const ir_stmt *p;
  if (info->kind == SCH_RV_BLOCK) {
    ir_block_realize *r;
    if ((st = sch_get_realize(s, "get_child_blocks", parent, &r))) return st;
    p = &r->h;
  } else {
    ir_for *f;
    if ((st = sch_get_for(s, "get_child_blocks", parent, &f))) return st;
    p = &f->h;
  }
  int nc;
  ir_block_realize **rs;
  if ((st = sch_child_realizes(s, p, &nc, &rs))) return st;
  if (nc > SCH_MAX_INST_ARGS)
    return sch_fail(s, "get_child_blocks", "%d child blocks (at most %d)", nc,
                    SCH_MAX_INST_ARGS);
  sch_rv *out = nc ? ir_arena_alloc(s->arena, sizeof *out * (size_t)nc) : NULL;
  if (nc && !out) return KILN_ERR_NOMEM;
  for (int i = 0; i < nc; i++)
    if ((out[i] = sch_new_block_rv(s, rs[i]->block->name)) == SCH_RV_NONE) return KILN_ERR_NOMEM;
  sch_arg in = sch_arg_rv(s, parent);
  if ((st = sch_record(s, SCH_INST_GET_CHILD_BLOCKS, 1, &in, nc, out, -1, NULL))) return st;
  *n = nc;
  *blocks = out;
  return KILN_OK;
}

kiln_status sch_apply_get_child_blocks(sch_schedule *s, int ninputs, const sch_arg *inputs,
                                       int ndecision, const int64_t *decision,
                                       sch_rv *outputs, int *noutputs) {
  (void)ndecision, (void)decision;
  if (ninputs != 1 || inputs[0].kind != SCH_ARG_RV)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: get_child_blocks takes one block or loop");
  const sch_rv_info *r = sch_rv_get(s, (sch_rv)inputs[0].i);
  if (!r || r->kind == SCH_RV_INT)
    return ir_fail(s->ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "trace: get_child_blocks takes one block or loop");
  int n;
  sch_rv *blocks;
  kiln_status st = sch_get_child_blocks(s, (sch_rv)inputs[0].i, &n, &blocks);
  if (st) return st;
  if (n) memcpy(outputs, blocks, sizeof *blocks * (size_t)n);
  *noutputs = n;
  return KILN_OK;
}

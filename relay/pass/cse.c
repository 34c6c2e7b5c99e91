/* cse.c: EliminateCommonSubexpr. After its children are rewritten, a call (of the same op
 * with equal attributes, or of the same function), a tuple or a projection whose inputs are
 * the very same nodes as those of one seen before is replaced by that one. Bottom up, so
 * chains of duplicates collapse: relu(add(x, y)) written twice becomes one. Bindings are
 * not merged (a let stays a let) and primitive functions are left as they are. */
#include <string.h>

#include "relay/pass.h"

/* Candidates with the same key hash, chained. */
typedef struct entry {
  ir_node *n;
  struct entry *next;
} entry;

typedef struct cse {
  ir_arena *scratch; /* the entries */
  ir_ptrmap table;   /* key hash (as a pointer, never NULL) -> entry chain */
} cse;

static bool attrs_equal(const relay_attr *a, const relay_attr *b) {
  if (a == b) return true;
  if (strcmp(a->key, b->key) != 0 || a->attr_kind != b->attr_kind) return false;
  switch ((relay_attr_kind)a->attr_kind) {
  case RELAY_ATTR_INT: return a->i == b->i;
  case RELAY_ATTR_FLOAT: return memcmp(&a->f, &b->f, sizeof a->f) == 0;
  case RELAY_ATTR_STR: return strcmp(a->s, b->s) == 0;
  case RELAY_ATTR_INTS:
    return a->nints == b->nints &&
           (!a->nints || memcmp(a->ints, b->ints, sizeof(int64_t) * (size_t)a->nints) == 0);
  }
  return false;
}

/* Same kind, same scalar fields, and the very same children (by pointer). */
static bool same(const ir_node *a, const ir_node *b) {
  if (a->kind != b->kind) return false;
  switch (a->kind) {
  case RELAY_CALL: {
    const relay_call *x = (const relay_call *)a, *y = (const relay_call *)b;
    if ((x->op == NULL) != (y->op == NULL) || (x->op && strcmp(x->op, y->op) != 0)) return false;
    if (x->fn != y->fn || x->nargs != y->nargs || x->nattrs != y->nattrs) return false;
    for (int i = 0; i < x->nargs; i++)
      if (x->args[i] != y->args[i]) return false;
    for (int i = 0; i < x->nattrs; i++)
      if (!attrs_equal(x->attrs[i], y->attrs[i])) return false;
    return true;
  }
  case RELAY_TUPLE: {
    const relay_tuple *x = (const relay_tuple *)a, *y = (const relay_tuple *)b;
    if (x->nfields != y->nfields) return false;
    for (int i = 0; i < x->nfields; i++)
      if (x->fields[i] != y->fields[i]) return false;
    return true;
  }
  case RELAY_PROJ: {
    const relay_proj *x = (const relay_proj *)a, *y = (const relay_proj *)b;
    return x->tuple == y->tuple && x->index == y->index;
  }
  default: return false;
  }
}

/* A hash of what `same` compares (children by address: stable within one run). */
static uint64_t key_of(const ir_node *n) {
  uint64_t h = ir_hash_mix(0, n->kind);
  switch (n->kind) {
  case RELAY_CALL: {
    const relay_call *c = (const relay_call *)n;
    h = ir_hash_str(h, c->op ? c->op : "");
    h = ir_hash_mix(h, (uint64_t)(uintptr_t)c->fn);
    for (int i = 0; i < c->nargs; i++) h = ir_hash_mix(h, (uint64_t)(uintptr_t)c->args[i]);
    for (int i = 0; i < c->nattrs; i++) h = ir_hash_mix(h, c->attrs[i]->h.hash);
    break;
  }
  case RELAY_TUPLE: {
    const relay_tuple *t = (const relay_tuple *)n;
    for (int i = 0; i < t->nfields; i++) h = ir_hash_mix(h, (uint64_t)(uintptr_t)t->fields[i]);
    break;
  }
  case RELAY_PROJ:
    h = ir_hash_mix(h, (uint64_t)(uintptr_t)((const relay_proj *)n)->tuple);
    h = ir_hash_mix(h, (uint64_t)((const relay_proj *)n)->index);
    break;
  default: break;
  }
  return h | 1;
}

static ir_node *visit(ir_mutator *mu, ir_node *n) {
  cse *C = mu->ud;
  if (!relay_is_expr(n)) return n;
  if (n->kind == RELAY_FUNC && relay_func_is_primitive((relay_func *)n)) return n;
  ir_node *r = ir_mutate_children(mu, n);
  if (!r || (r->kind != RELAY_CALL && r->kind != RELAY_TUPLE && r->kind != RELAY_PROJ)) return r;
  const void *key = (const void *)(uintptr_t)key_of(r);
  entry *head = ir_ptrmap_get(&C->table, key);
  for (entry *e = head; e; e = e->next)
    if (same(e->n, r)) return e->n;
  entry *e = ir_arena_alloc(C->scratch, sizeof *e);
  if (!e) return NULL;
  e->n = r;
  e->next = head;
  return ir_ptrmap_put(&C->table, key, e) ? NULL : r;
}

static relay_func *rewrite(relay_pass_ctx *pc, relay_module *m, relay_func *f, void *ud) {
  (void)pc;
  (void)ud;
  cse C;
  if (!(C.scratch = ir_arena_new(m->ctx))) return NULL;
  ir_ptrmap_init(&C.table, m->ctx);
  relay_func *r = relay_mutate_func(m, f, visit, &C, NULL);
  ir_ptrmap_free(&C.table);
  ir_arena_free(C.scratch);
  return r;
}

static kiln_status run(relay_pass_ctx *pc, relay_module *m) {
  return relay_rewrite_funcs(pc, m, "EliminateCommonSubexpr", rewrite, NULL);
}

const relay_pass relay_pass_cse = {"EliminateCommonSubexpr", 3, run,
                                   "merges equal calls of the same inputs"};

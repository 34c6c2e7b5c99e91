/* structural.c: structural equality and the stable structural hash of TIR nodes, written once
 * against the field descriptors of node.c. Variables and buffers are compared by binding
 * position: a definition pairs the two sides' variables, a use must follow that pairing, and
 * a free variable is paired at its first occurrence. Names never matter. */
#include <string.h>

#include "node.h"

/* ---- Equality ------------------------------------------------------------------------ */

typedef struct eq_state {
  ir_ptrmap l2r, r2l; /* paired variables and buffers, both ways */
  ir_ptrmap same;     /* non-binding nodes already found equal: left -> right */
  bool oom;
} eq_state;

static bool eq_node(eq_state *s, const ir_node *a, const ir_node *b);

static bool bind(eq_state *s, const ir_node *a, const ir_node *b) {
  if (ir_ptrmap_put(&s->l2r, a, (void *)b) || ir_ptrmap_put(&s->r2l, b, (void *)a)) {
    s->oom = true;
    return false;
  }
  return true;
}

/* The scalar and child fields of two nodes of the same kind. */
static bool eq_fields(eq_state *s, const ir_node *a, const ir_node *b);

/* A definition (a variable or buffer) compares by content, names aside; then the two sides
 * are paired. */
static bool eq_def(eq_state *s, const ir_node *a, const ir_node *b) {
  if (!a || !b) return a == b;
  if (a->kind != b->kind || !ir_dt_eq(a->dtype, b->dtype) || a->hash != b->hash) return false;
  if (!eq_fields(s, a, b)) return false;
  return bind(s, a, b);
}

/* A use of a variable or buffer: it must be paired with the other side, or, if neither side
 * is paired yet (a free name), they are compared as definitions and paired now. */
static bool eq_use(eq_state *s, const ir_node *a, const ir_node *b) {
  if (!a || !b) return a == b;
  const ir_node *pa = ir_ptrmap_get(&s->l2r, a);
  const ir_node *pb = ir_ptrmap_get(&s->r2l, b);
  if (pa || pb) return pa == b && pb == a;
  return eq_def(s, a, b);
}

static bool eq_fields(eq_state *s, const ir_node *a, const ir_node *b) {
  const ir_kind_info *k = ir_kind_info_of(a->kind);
  for (int i = 0; i < k->nfields; i++) {
    const ir_field *f = &k->fields[i];
    const char *pa = (const char *)a + f->offset, *pb = (const char *)b + f->offset;
    switch ((ir_field_kind)f->kind) {
    case IR_F_NODE:
      if (!eq_node(s, *(ir_node *const *)pa, *(ir_node *const *)pb)) return false;
      break;
    case IR_F_DEF:
      if (!eq_def(s, *(ir_node *const *)pa, *(ir_node *const *)pb)) return false;
      break;
    case IR_F_REF:
      if (!eq_use(s, *(ir_node *const *)pa, *(ir_node *const *)pb)) return false;
      break;
    case IR_F_NODES:
    case IR_F_DEFS: {
      int32_t na = *(const int32_t *)((const char *)a + f->count_offset);
      int32_t nb = *(const int32_t *)((const char *)b + f->count_offset);
      if (na != nb) return false;
      ir_node *const *xa = *(ir_node *const *const *)pa;
      ir_node *const *xb = *(ir_node *const *const *)pb;
      for (int32_t j = 0; j < na; j++) {
        bool ok = f->kind == IR_F_NODES ? eq_node(s, xa[j], xb[j]) : eq_def(s, xa[j], xb[j]);
        if (!ok) return false;
      }
      break;
    }
    case IR_F_I32:
      if (*(const int32_t *)pa != *(const int32_t *)pb) return false;
      break;
    case IR_F_I64:
      if (*(const int64_t *)pa != *(const int64_t *)pb) return false;
      break;
    case IR_F_F64:
      if (memcmp(pa, pb, sizeof(double)) != 0) {
        double x = *(const double *)pa, y = *(const double *)pb;
        if (!(x != x && y != y)) return false; /* all NaNs are one value */
      }
      break;
    case IR_F_STR: {
      const char *x = *(const char *const *)pa, *y = *(const char *const *)pb;
      if (!x || !y ? x != y : strcmp(x, y) != 0) return false;
      break;
    }
    case IR_F_NAME: break;
    case IR_F_I64S:
    case IR_F_BYTES:
      if (!ir_fields_extra_equal(a, b, f)) return false;
      break;
    }
  }
  return true;
}

static bool eq_node(eq_state *s, const ir_node *a, const ir_node *b) {
  if (!a || !b) return a == b;
  /* The content hash ignores names and binding, so differing hashes mean different nodes. */
  if (a->kind != b->kind || a->hash != b->hash || !ir_dt_eq(a->dtype, b->dtype)) return false;
  if (ir_is_binding(a)) return eq_use(s, a, b);
  /* A shared subexpression (graphs are DAGs) met again with the same partner was equal the
   * first time and is again: the pairings it made are still in place. Without this, chains
   * of diamonds (residual blocks) take exponential time. A different partner is compared in
   * full: a DAG and the tree it unfolds to are equal. */
  if (ir_ptrmap_get(&s->same, a) == b) return true;
  if (!eq_fields(s, a, b)) return false;
  if (ir_ptrmap_put(&s->same, a, (void *)b)) s->oom = true;
  return !s->oom;
}

bool ir_structural_equal(kiln_context *ctx, const ir_node *a, const ir_node *b) {
  eq_state s;
  ir_ptrmap_init(&s.l2r, ctx);
  ir_ptrmap_init(&s.r2l, ctx);
  ir_ptrmap_init(&s.same, ctx);
  s.oom = false;
  bool r = eq_node(&s, a, b) && !s.oom;
  ir_ptrmap_free(&s.l2r);
  ir_ptrmap_free(&s.r2l);
  ir_ptrmap_free(&s.same);
  return r;
}

/* ---- Hash ---------------------------------------------------------------------------- */

typedef struct hash_state {
  ir_ptrmap index; /* variable or buffer -> 1 + its binding number */
  uintptr_t next;
  bool oom;
} hash_state;

static uint64_t hash_node(hash_state *s, uint64_t h, const ir_node *n);
static uint64_t hash_fields(hash_state *s, uint64_t h, const ir_node *n);

static uint64_t hash_def(hash_state *s, uint64_t h, const ir_node *n) {
  if (!n) return ir_hash_mix(h, 0);
  h = ir_hash_mix(h, n->hash); /* kind, dtype and content, names excluded */
  h = hash_fields(s, h, n);
  if (ir_ptrmap_put(&s->index, n, (void *)++s->next)) s->oom = true;
  return ir_hash_mix(h, 0xdef);
}

static uint64_t hash_use(hash_state *s, uint64_t h, const ir_node *n) {
  if (!n) return ir_hash_mix(h, 0);
  uintptr_t idx = (uintptr_t)ir_ptrmap_get(&s->index, n);
  if (!idx) return hash_def(s, h, n); /* free: numbered at its first occurrence */
  /* Uses hash by distance to the binding, which stays the same wherever the tree sits. */
  return ir_hash_mix(ir_hash_mix(h, 0x05e), (uint64_t)(s->next - idx));
}

static uint64_t hash_fields(hash_state *s, uint64_t h, const ir_node *n) {
  const ir_kind_info *k = ir_kind_info_of(n->kind);
  for (int i = 0; i < k->nfields; i++) {
    const ir_field *f = &k->fields[i];
    const char *p = (const char *)n + f->offset;
    switch ((ir_field_kind)f->kind) {
    case IR_F_NODE: h = hash_node(s, h, *(ir_node *const *)p); break;
    case IR_F_DEF: h = hash_def(s, h, *(ir_node *const *)p); break;
    case IR_F_REF: h = hash_use(s, h, *(ir_node *const *)p); break;
    case IR_F_NODES:
    case IR_F_DEFS: {
      int32_t cnt = *(const int32_t *)((const char *)n + f->count_offset);
      ir_node *const *arr = *(ir_node *const *const *)p;
      h = ir_hash_mix(h, (uint64_t)cnt);
      for (int32_t j = 0; j < cnt; j++)
        h = f->kind == IR_F_NODES ? hash_node(s, h, arr[j]) : hash_def(s, h, arr[j]);
      break;
    }
    case IR_F_I32: h = ir_hash_mix(h, (uint64_t)(int64_t) * (const int32_t *)p); break;
    case IR_F_I64: h = ir_hash_mix(h, (uint64_t) * (const int64_t *)p); break;
    case IR_F_F64: h = ir_hash_f64(h, *(const double *)p); break;
    case IR_F_STR: h = ir_hash_str(h, *(const char *const *)p); break;
    case IR_F_NAME: break;
    case IR_F_I64S:
    case IR_F_BYTES: h = ir_hash_extra(h, n, f); break;
    }
  }
  return h;
}

static uint64_t hash_node(hash_state *s, uint64_t h, const ir_node *n) {
  if (!n) return ir_hash_mix(h, 0);
  if (ir_is_binding(n)) return hash_use(s, ir_hash_mix(h, n->hash), n);
  h = ir_hash_mix(h, (uint64_t)n->kind << 40 | (uint64_t)n->dtype.code << 32 |
                         (uint64_t)n->dtype.bits << 16 | n->dtype.lanes);
  return hash_fields(s, h, n);
}

kiln_status ir_structural_hash(kiln_context *ctx, const ir_node *n, uint64_t *out) {
  hash_state s;
  ir_ptrmap_init(&s.index, ctx);
  s.next = 0;
  s.oom = false;
  uint64_t h = hash_node(&s, 0x6b696c6e2d746972ull, n);
  ir_ptrmap_free(&s.index);
  if (s.oom) return KILN_ERR_NOMEM;
  *out = h;
  return KILN_OK;
}

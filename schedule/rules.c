/* rules.c: default schedules. Without any measurement, every block of a lowered PrimFunc
 * gets a schedule built from the primitives, so it records into the trace like a hand-written
 * schedule and is one point of the design space the tuner samples (tile sizes go through
 * sample_perfect_tile with the default as the decision). The rules, in order:
 *   1. inline: elementwise, broadcast and injective blocks that write intermediates are
 *      inlined into their consumers (padding stages of tiled ops are kept for step 2);
 *   2. tile: multiply-accumulate reductions (conv2d, dense, matmul, batch_matmul) get a
 *      register tile: the innermost spatial axis split by two vector widths (vectorized), the
 *      next one by up to 8-12 rows (unrolled), reduce loops between the outer and the inner
 *      tile loops, outer loops fused and parallel, the init decomposed, the accumulator
 *      either the op's intermediate output or a "local" cache_write, with the epilogue
 *      (fused elementwise ops, or the write-back) computed at the tile; the pipeline's
 *      compaction then shrinks the accumulator to the tile so that LLVM keeps it in
 *      registers. The padding stage stays at the root (scheduled by rule 4): computed at the
 *      tile it would be recomputed for every output channel, since the tile loops run over
 *      output channels outside the spatial tiles;
 *   3. reduce: other reductions (sums, pooling, softmax and layer_norm stages) run their
 *      spatial loops fused and parallel;
 *   4. elementwise: the remaining blocks (outputs) fuse all loops, split by the vector width,
 *      vectorize the inner part and run the outer part in parallel.
 * A rule whose primitive refuses (a precondition does not hold) skips that step: primitives
 * leave the schedule unchanged when they fail. */
#include <stdio.h>
#include <string.h>

#include "kiln/kiln.h"
#include "schedule/rules_internal.h"
#include "schedule/schedule.h"
#include "target/target.h"

/* Below this many loop iterations a parallel launch costs more than it gains. */
enum { PARALLEL_MIN_WORK = 4096, MAX_LOOPS = 32 };

/* The block annotation that selects the cache-blocked variant of the tile rule (kblock_tile;
 * set by the tuner on a copy of the function, never by the lowering). */
#define KBLOCK_ANNOT "schedule.kblock"

/* The block annotation that selects the panel variant of the tile rule (the tuner's third
 * structure, set like KBLOCK_ANNOT): the vector-axis operand packed per parallel chunk by
 * default, chunks sized so that the packed panels fit half the L2 cache (panel_inner). */
#define PANEL_ANNOT "schedule.panel"

/* A refused primitive (KILN_ERR_SCHEDULE) is a rule not applying: clear and go on. Other
 * errors (memory, internal) stop the rules. */
#define TRY_SOFT(st, call)                                           \
  do {                                                               \
    (st) = (call);                                                   \
    if ((st) == KILN_ERR_SCHEDULE) ir_clear_error(s->ctx);           \
    else if ((st) != KILN_OK) return (st);                           \
  } while (0)

const char *sch_block_annot(const ir_block *b, const char *key) {
  for (int i = 0; i < b->nannots; i++)
    if (strcmp(b->annots[i]->key, key) == 0) {
      const ir_str_imm *v = ir_as_str(b->annots[i]->value);
      return v ? v->value : NULL;
    }
  return NULL;
}

/* Whether a block carries an annotation (any value). */
static bool has_annot(const ir_block *b, const char *key) {
  for (int i = 0; i < b->nannots; i++)
    if (strcmp(b->annots[i]->key, key) == 0) return true;
  return false;
}

static bool is_param(const ir_func *f, const ir_buffer *b) {
  for (int i = 0; i < f->nparams; i++)
    if (f->params[i] == &b->h) return true;
  return false;
}

static bool has_reduce(const ir_block *b) {
  for (int i = 0; i < b->niters; i++)
    if (b->iters[i]->iter_type == IR_ITER_REDUCE) return true;
  return false;
}

static bool is_tileable_op(const char *op) {
  static const char *const ops[] = {"nn.conv2d", "nn.conv2d_transpose", "nn.dense", "nn.matmul",
                                    "nn.batch_matmul"};
  for (size_t i = 0; op && i < sizeof ops / sizeof ops[0]; i++)
    if (strcmp(op, ops[i]) == 0) return true;
  return false;
}

static bool is_pad_stage(const ir_block *b) {
  const char *st = sch_block_annot(b, "stage");
  return st && strcmp(st, "pad") == 0;
}

/* A block the tile rule takes: a reduction of a tileable op that is not its padding. */
static bool is_tile_block(const ir_block *b) {
  return has_reduce(b) && !is_pad_stage(b) && is_tileable_op(sch_block_annot(b, "op"));
}

static bool is_injective(const ir_block *b) {
  if (sch_conv_is_layout_copy(b)) return true; /* rules_conv.c */
  const char *p = sch_block_annot(b, "pattern");
  if (!p) return !has_reduce(b) && !b->init;
  return !has_reduce(b) && (strcmp(p, "elemwise") == 0 || strcmp(p, "broadcast") == 0 ||
                            strcmp(p, "injective") == 0);
}

/* The block's loops with their constant extents (-1 if symbolic) and whether each is bound
 * to a reduce iterator. */
typedef struct loop_info {
  int n;
  sch_rv rv[MAX_LOOPS];
  int64_t extent[MAX_LOOPS];
  bool reduce[MAX_LOOPS];
} loop_info;

static kiln_status loops_of(sch_schedule *s, sch_rv block, loop_info *li) {
  int n;
  sch_rv *loops;
  kiln_status st = sch_get_loops(s, block, &n, &loops);
  if (st) return st;
  ir_block_realize *r;
  if ((st = sch_get_realize(s, "default rules", block, &r))) return st;
  if (n > MAX_LOOPS) n = MAX_LOOPS;
  li->n = n;
  for (int i = 0; i < n; i++) {
    ir_for *f;
    if ((st = sch_get_for(s, "default rules", loops[i], &f))) return st;
    li->rv[i] = loops[i];
    const ir_int_imm *e = ir_as_int(f->extent);
    li->extent[i] = e ? e->value : -1;
    li->reduce[i] = false;
    for (int k = 0; k < r->nvalues && k < r->block->niters; k++)
      if (r->block->iters[k]->iter_type == IR_ITER_REDUCE) {
        /* bound to a reduce iterator if the loop variable appears in its binding */
        const ir_node *v = r->values[k];
        if (v == &f->var->h) li->reduce[i] = true;
      }
  }
  return KILN_OK;
}

static int64_t work_of(const loop_info *li) {
  int64_t w = 1;
  for (int i = 0; i < li->n; i++) {
    if (li->extent[i] < 0) return INT64_MAX / 4;
    w *= li->extent[i];
    if (w > INT64_MAX / 1024) return w;
  }
  return w;
}

/* The largest divisor of n not above cap (and >= 1). */
static int64_t divisor_at_most(int64_t n, int64_t cap) {
  for (int64_t d = cap < n ? cap : n; d > 1; d--)
    if (n % d == 0) return d;
  return 1;
}

static int lanes_for(const sch_target_info *t, kiln_dtype dt) {
  int bits = dt.bits ? dt.bits : 32;
  int l = t->vector_bits / bits;
  return l >= 1 ? l : 1;
}

/* Splits a loop of constant extent in two with the perfect tile (extent / inner, inner),
 * recorded as a sampling instruction with that decision. */
static kiln_status split2(sch_schedule *s, sch_rv loop, int64_t extent, int64_t inner,
                          int64_t max_inner, sch_rv out[2]) {
  int64_t decision[2] = {extent / inner, inner};
  sch_rv f[2];
  kiln_status st = sch_sample_perfect_tile(s, loop, 2, (int)max_inner, decision, f);
  if (st) return st;
  return sch_split(s, loop, 2, f, out);
}

/* The element type a block writes (for the vector width). */
static kiln_dtype written_dtype(const ir_block *b) {
  if (b->nwrites > 0) return b->writes[0]->buffer->h.dtype;
  return (kiln_dtype){KILN_TYPE_FLOAT, 32, 1};
}

/* Vectorizes the innermost loop of block and unrolls the ones between `outer` (excluded)
 * and it when they are short: for epilogues and inits placed inside a tile. */
static kiln_status vectorize_tail(sch_schedule *s, sch_rv block, ir_var *outer) {
  loop_info li;
  kiln_status st = loops_of(s, block, &li);
  if (st) return st;
  int first = 0;
  for (int i = 0; i < li.n; i++) {
    const sch_rv_info *r = sch_rv_get(s, li.rv[i]);
    if (r && r->loop == outer) first = i + 1;
  }
  if (first >= li.n) return KILN_OK;
  TRY_SOFT(st, sch_vectorize(s, li.rv[li.n - 1]));
  for (int i = first; i < li.n - 1; i++)
    if (li.extent[i] > 0 && li.extent[i] <= 16) TRY_SOFT(st, sch_unroll(s, li.rv[i]));
  return KILN_OK;
}

/* The panel variant's serial part of the fused tile loop (split_parallel): whole column
 * panels of `rows` row tiles each (the row tiles are the inner part of the fused loop), as
 * many as fit half the L2 cache once packed (`panel_bytes` each), but at least 2 parallel
 * chunks per thread when there are that many panels; 1 (no serial part) when nothing fits. */
static int64_t panel_inner(const sch_target_info *t, int64_t fused, int64_t rows,
                           int64_t panel_bytes) {
  int64_t budget = t->l2_bytes > 0 ? t->l2_bytes / 2 : 256 << 10;
  if (rows < 1 || panel_bytes < 1 || fused % rows != 0) return 1;
  int64_t panels = fused / rows, per = budget / panel_bytes;
  int64_t threads = t->num_threads > 0 ? t->num_threads : 1;
  while (per > 1 && panels / per < 2 * threads) per--;
  while (per > 1 && panels % per != 0) per--;
  return per >= 1 ? per * rows : 1;
}

/* Splits the fused outer loop of a tile into (parallel part, serial part) with a sampled
 * perfect tile whose default decision is (extent / serial_default, serial_default), serial
 * part 1 unless a variant asks otherwise. The tuner thereby chooses how many
 * tiles one parallel iteration runs, which is also the granularity a packed operand can be
 * computed at (pack_operand). A loop without a constant extent is left alone. */
static kiln_status split_parallel(sch_schedule *s, sch_rv loop, int64_t serial_default,
                                  sch_rv *par, sch_rv *serial) {
  ir_for *f;
  kiln_status st = sch_get_for(s, "default rules", loop, &f);
  if (st) return st;
  const ir_int_imm *e = ir_as_int(f->extent);
  if (!e || e->value < 2) return KILN_OK;
  if (serial_default < 1 || e->value % serial_default != 0) serial_default = 1;
  sch_rv parts[2];
  if ((st = split2(s, loop, e->value, serial_default, 0, parts))) return st;
  *par = parts[0];
  *serial = parts[1];
  return KILN_OK;
}

typedef struct uses_var_ctx {
  const ir_var *v;
  bool found;
} uses_var_ctx;

static bool uses_var_visit(ir_node *n, void *ud) {
  uses_var_ctx *u = ud;
  if (n == &u->v->h) u->found = true;
  return !u->found;
}

static bool expr_uses(const ir_expr *e, const ir_var *v) {
  uses_var_ctx u = {v, false};
  if (e && v) ir_visit((ir_node *)e, false, uses_var_visit, &u);
  return u.found;
}

/* The packing decision: the parameter the tile reads along its vector axis (B of a matmul,
 * the HWIO weights of a channel-last conv2d) gets a cache_read copy whose compute location
 * is sampled. Inline (the default decision) undoes the copy, so the default schedule is
 * unchanged; computed at the parallel part of the tile loop it becomes a panel packed once
 * per group of tiles: contiguous rows instead of rows one matrix row apart, which keeps a
 * large matrix's panel in cache and out of the TLB's way. Applied after all other rules
 * (sch_apply_default_rules): a copy left at the root by a sampled decision then changes no
 * later instruction's view of the stages (get_child_blocks). */
static kiln_status pack_operand(sch_schedule *s, sch_rv block) {
  ir_block_realize *r;
  kiln_status st;
  int nloops;
  ir_for **loops;
  if ((st = sch_get_realize(s, "default rules", block, &r))) return st;
  if ((st = sch_loops_around(s, &r->h, &nloops, &loops))) return st;
  if (nloops == 0 || loops[nloops - 1]->for_kind != IR_FOR_VECTORIZED) return KILN_OK;
  /* the block iterator the vectorized loop feeds */
  const ir_block *blk = r->block;
  const ir_var *vec_iter = NULL;
  for (int k = 0; k < r->nvalues && k < blk->niters && !vec_iter; k++)
    if (expr_uses(r->values[k], loops[nloops - 1]->var)) vec_iter = blk->iters[k]->var;
  if (!vec_iter) return KILN_OK;
  int index = -1;
  for (int i = 0; i < blk->nreads && index < 0; i++) {
    const ir_region *rg = blk->reads[i];
    bool written = false; /* an accumulator read back (the cache-blocked variant's output) */
    for (int w = 0; w < blk->nwrites; w++) written |= blk->writes[w]->buffer == rg->buffer;
    if (written || !is_param(s->func, rg->buffer) || rg->nranges < 2) continue;
    if (expr_uses(rg->ranges[rg->nranges - 1]->min, vec_iter)) index = i;
  }
  if (index < 0) return KILN_OK;
  sch_rv copy, loc;
  TRY_SOFT(st, sch_cache_read(s, block, index, "global", &copy));
  if (st != KILN_OK) return KILN_OK;
  /* the panel variant packs per parallel chunk (the outermost loop, candidate 0) */
  const int64_t default_decision = has_annot(blk, PANEL_ANNOT) ? 0 : -2;
  TRY_SOFT(st, sch_sample_compute_location(s, copy, &default_decision, &loc));
  if (st != KILN_OK) return KILN_OK;
  TRY_SOFT(st, sch_compute_at(s, copy, loc, true));
  return KILN_OK;
}

/* The cache-blocked variant of the tile rule, a second structure of the design space: the
 * tuner (autotune/search.c) marks the tile blocks of a copy of the function with this
 * annotation and applies the rules to get its trace, which replays on the unmarked function.
 * The longest reduce loop is split by a sampled perfect tile (default: inner part of at most
 * 128) and its outer part placed between the column tiles and the row tiles:
 *   other spatial, columns outer | reduce outer | rows outer | other reduce, reduce inner,
 *   rows, columns
 * so that one column panel's block of the vector-axis operand (reduce inner x columns, with
 * packing 16 KiB at 128 x 32) is reused from L1 by every row tile, while the accumulator
 * tile lives in registers across the inner reduce loop. The output is accumulated in place
 * (no local cache: a panel is too large for one), its init and the epilogue placed per column
 * panel; the column loops fuse and run parallel. */
static kiln_status kblock_tile(sch_schedule *s, const sch_target_info *t, sch_rv block,
                               const loop_info *li, const int *spatial, int nsp, const int *red,
                               int nred, const sch_rv jpair[2], const sch_rv ipair[2],
                               sch_rv epilogue, int npads, const sch_rv *pads) {
  (void)t;
  kiln_status st;
  if (nsp < 2) return KILN_OK;
  int kl = red[0];
  for (int k = 1; k < nred; k++)
    if (li->extent[red[k]] > li->extent[kl]) kl = red[k];
  sch_rv kpair[2];
  int64_t kt = divisor_at_most(li->extent[kl], 128);
  if ((st = split2(s, li->rv[kl], li->extent[kl], kt, 0, kpair))) return st;

  sch_rv order[MAX_LOOPS + 3];
  int no = 0;
  for (int k = 0; k < nsp - 2; k++) order[no++] = li->rv[spatial[k]];
  order[no++] = jpair[0];
  int ncols = no;
  order[no++] = kpair[0];
  order[no++] = ipair[0];
  for (int k = 0; k < nred; k++)
    if (red[k] != kl) order[no++] = li->rv[red[k]];
  order[no++] = kpair[1];
  order[no++] = ipair[1];
  order[no++] = jpair[1];
  if ((st = sch_reorder(s, no, order))) return st;

  sch_rv panel = order[ncols - 1];
  bool epilogue_at_panel = false;
  if (epilogue != SCH_RV_NONE) {
    TRY_SOFT(st, sch_reverse_compute_at(s, epilogue, panel, true));
    epilogue_at_panel = st == KILN_OK;
  }
  for (int k = 0; k < npads; k++) {
    TRY_SOFT(st, sch_compute_at(s, pads[k], ipair[0], true));
    if (st != KILN_OK) TRY_SOFT(st, sch_compute_inline(s, pads[k]));
  }
  sch_rv init;
  TRY_SOFT(st, sch_decompose_reduction(s, block, kpair[0], &init));
  bool init_ok = st == KILN_OK;

  sch_rv outer = order[0];
  if (ncols >= 2) {
    TRY_SOFT(st, sch_fuse(s, ncols, order, &outer));
    if (st != KILN_OK) outer = order[0];
  }
  if (work_of(li) >= PARALLEL_MIN_WORK) TRY_SOFT(st, sch_parallel(s, outer));
  TRY_SOFT(st, sch_unroll(s, ipair[1]));
  TRY_SOFT(st, sch_vectorize(s, jpair[1]));
  ir_expr *no_unroll = ir_int(s->arena, KILN_INT64, 0);
  if (!no_unroll) return KILN_ERR_NOMEM;
  TRY_SOFT(st, sch_annotate(s, outer, "unroll_max_step", no_unroll));
  const sch_rv_info *oi = sch_rv_get(s, outer);
  ir_var *outer_var = oi ? oi->loop : NULL;
  if (init_ok && (st = vectorize_tail(s, init, outer_var))) return st;
  if (epilogue_at_panel && (st = vectorize_tail(s, epilogue, outer_var))) return st;
  return KILN_OK;
}

/* Step 2: the register tile. */
static kiln_status tile_rule(sch_schedule *s, const sch_target_info *t, sch_rv block,
                             bool *handled_epilogue, char *epilogue_name,
                             size_t epilogue_cap) {
  kiln_status st;
  *handled_epilogue = false;
  ir_block_realize *r;
  if ((st = sch_get_realize(s, "default rules", block, &r))) return st;
  const ir_block *blk = r->block;
  if (blk->nwrites != 1) return KILN_OK;
  const ir_buffer *out = blk->writes[0]->buffer;
  int lanes = lanes_for(t, out->h.dtype);
  /* the cache-blocked variant of the design space (see kblock_order) */
  bool kblock = has_annot(blk, KBLOCK_ANNOT);

  /* the accumulator: the op's own intermediate output when one spatial consumer (the fused
   * epilogue) reads it, else a local cache written back by a new block */
  sch_rv epilogue = SCH_RV_NONE;
  ir_block_realize *scope;
  if ((st = sch_scope_of(s, &r->h, &scope))) return st;
  if (!is_param(s->func, out)) {
    int nr;
    ir_block_realize **readers;
    if ((st = sch_readers_of(s, scope, out, &nr, &readers))) return st;
    /* the reduction reads its own accumulator: the others are the consumers */
    int k = 0;
    for (int i = 0; i < nr; i++)
      if (readers[i] != r) readers[k++] = readers[i];
    nr = k;
    if (nr == 1 && !has_reduce(readers[0]->block)) {
      snprintf(epilogue_name, epilogue_cap, "%s", readers[0]->block->name);
      if ((st = sch_get_block(s, epilogue_name, &epilogue))) return st;
      *handled_epilogue = true;
    }
  } else if (!kblock) {
    sch_rv wb;
    TRY_SOFT(st, sch_cache_write(s, block, 0, "local", &wb));
    if (st == KILN_OK) epilogue = wb;
  }

  /* injective producers left at the root that are not padding (those rule 1 could not
   * inline): computed per tile below */
  sch_rv pads[8];
  int npads = 0;
  for (int i = 0; i < blk->nreads && npads < 8; i++) {
    int nw;
    ir_block_realize **writers;
    if ((st = sch_writers_of(s, scope, blk->reads[i]->buffer, &nw, &writers))) return st;
    if (nw == 1 && is_injective(writers[0]->block) && !is_pad_stage(writers[0]->block) &&
        writers[0] != r)
      if ((st = sch_get_block(s, writers[0]->block->name, &pads[npads++]))) return st;
  }

  loop_info li;
  if ((st = loops_of(s, block, &li))) return st;
  int spatial[MAX_LOOPS], nsp = 0, red[MAX_LOOPS], nred = 0;
  for (int i = 0; i < li.n; i++) {
    if (li.extent[i] < 0) return KILN_OK; /* symbolic extents: leave the block as lowered */
    if (li.reduce[i]) red[nred++] = i;
    else spatial[nsp++] = i;
  }
  if (nsp == 0 || nred == 0) return KILN_OK;
  /* the rows of the tile: the last spatial loop before the columns long enough for a full
   * tile of rows (8), else the last one longer than 1 (dense on [seq, batch, d] data: the
   * sequence, not a batch of 1 or 4), moved next to the columns */
  int rk = nsp - 2;
  while (rk > 0 && li.extent[spatial[rk]] < 8) rk--;
  if (rk >= 0 && li.extent[spatial[rk]] < 8) {
    rk = nsp - 2;
    while (rk > 0 && li.extent[spatial[rk]] == 1) rk--;
  }
  if (rk >= 0 && rk < nsp - 2 && li.extent[spatial[rk]] > 1) {
    int row = spatial[rk];
    memmove(&spatial[rk], &spatial[rk + 1], sizeof(int) * (size_t)(nsp - 2 - rk));
    spatial[nsp - 2] = row;
  }

  /* inner tile: columns (vector axis) and rows */
  int jl = spatial[nsp - 1];
  int64_t ej = li.extent[jl];
  int64_t jt = ej % (2 * lanes) == 0 ? 2 * lanes : ej % lanes == 0 ? lanes
                                                                     : divisor_at_most(ej, 2 * lanes);
  sch_rv jpair[2];
  if ((st = split2(s, li.rv[jl], ej, jt, 2 * lanes, jpair))) return st;
  int64_t vec_regs = (jt + lanes - 1) / lanes;
  int64_t rows_cap = 24 / vec_regs;
  if (rows_cap > 12) rows_cap = 12;
  if (rows_cap < 1) rows_cap = 1;
  sch_rv ipair[2] = {SCH_RV_NONE, SCH_RV_NONE};
  int64_t rows_tile = 1;
  if (nsp >= 2) {
    int il = spatial[nsp - 2];
    int64_t it = rows_tile = divisor_at_most(li.extent[il], rows_cap);
    if ((st = split2(s, li.rv[il], li.extent[il], it, rows_cap, ipair))) return st;
  }

  if (kblock) return kblock_tile(s, t, block, &li, spatial, nsp, red, nred, jpair, ipair,
                                 epilogue, npads, pads);

  /* order: other spatial loops, columns outer, rows outer | reduce loops | rows, columns */
  sch_rv order[MAX_LOOPS + 2];
  int no = 0, nouter;
  for (int k = 0; k < nsp - (nsp >= 2 ? 2 : 1); k++) order[no++] = li.rv[spatial[k]];
  order[no++] = jpair[0];
  if (nsp >= 2) order[no++] = ipair[0];
  nouter = no;
  if (sch_conv_is_channel_last(blk)) sch_conv_tile_order(order, nouter, jpair[0]); /* rules_conv.c */
  for (int k = 0; k < nred; k++) order[no++] = li.rv[red[k]];
  if (nsp >= 2) order[no++] = ipair[1];
  order[no++] = jpair[1];
  if ((st = sch_reorder(s, no, order))) return st;

  /* the epilogue, the padding and the init go inside the innermost outer loop first (their
   * regions are affine in it there), then the outer loops fuse into one parallel loop */
  sch_rv tile_loop = order[nouter - 1];
  bool epilogue_at_tile = false, init_ok = false;
  if (epilogue != SCH_RV_NONE) {
    TRY_SOFT(st, sch_reverse_compute_at(s, epilogue, tile_loop, true));
    epilogue_at_tile = st == KILN_OK;
  }
  for (int k = 0; k < npads; k++) {
    TRY_SOFT(st, sch_compute_at(s, pads[k], tile_loop, true));
    if (st != KILN_OK) TRY_SOFT(st, sch_compute_inline(s, pads[k]));
  }
  sch_rv init;
  TRY_SOFT(st, sch_decompose_reduction(s, block, order[nouter], &init));
  init_ok = st == KILN_OK;

  sch_rv outer = order[0];
  if (nouter >= 2) {
    TRY_SOFT(st, sch_fuse(s, nouter, order, &outer));
    if (st != KILN_OK) outer = order[0];
  }
  /* the parallel extent (a sampled decision): the fused loop split into a parallel part and
   * a serial part; the default keeps it all parallel (a serial part of 1) */
  sch_rv tiles = outer;
  bool parallel = work_of(&li) >= PARALLEL_MIN_WORK;
  int64_t serial = 1;
  if (has_annot(blk, PANEL_ANNOT) && nsp >= 2 && !sch_conv_is_channel_last(blk)) {
    /* the fused loop is (other spatial) x column tiles x row tiles, row tiles innermost; a
     * packed panel is the reduction times the tile's columns */
    int64_t row_tiles = li.extent[spatial[nsp - 2]] / rows_tile, fused = row_tiles * (ej / jt);
    int64_t panel = jt * kiln_dtype_bytes(out->h.dtype);
    for (int k = 0; k < nsp - 2; k++) fused *= li.extent[spatial[k]];
    for (int k = 0; k < nred; k++) panel *= li.extent[red[k]];
    serial = panel_inner(t, fused, row_tiles, panel);
  }
  if (parallel && (st = split_parallel(s, outer, serial, &outer, &tiles))) return st;
  if (parallel) TRY_SOFT(st, sch_parallel(s, outer));
  if (nsp >= 2) TRY_SOFT(st, sch_unroll(s, ipair[1]));
  TRY_SOFT(st, sch_vectorize(s, jpair[1]));
  /* the unroll decision (a knob the tuner mutates, autotune/search.c): nests of at most this
   * many iterations inside the tile are unrolled by the pipeline; the default 0 unrolls none */
  ir_expr *no_unroll = ir_int(s->arena, KILN_INT64, 0);
  if (!no_unroll) return KILN_ERR_NOMEM;
  TRY_SOFT(st, sch_annotate(s, outer, "unroll_max_step", no_unroll));

  /* the init and the epilogue vectorized like the tile */
  const sch_rv_info *oi = sch_rv_get(s, tiles);
  ir_var *outer_var = oi ? oi->loop : NULL;
  if (init_ok && (st = vectorize_tail(s, init, outer_var))) return st;
  if (epilogue_at_tile && (st = vectorize_tail(s, epilogue, outer_var))) return st;
  return KILN_OK;
}

/* Step 3: reductions keep their loop order; the spatial loops in front fuse and go parallel. */
static kiln_status reduce_rule(sch_schedule *s, sch_rv block) {
  loop_info li;
  kiln_status st = loops_of(s, block, &li);
  if (st) return st;
  int nfront = 0;
  while (nfront < li.n && !li.reduce[nfront]) nfront++;
  if (nfront == 0) return KILN_OK;
  int64_t front_work = 1;
  for (int i = 0; i < nfront; i++) front_work = li.extent[i] < 0 ? INT64_MAX / 4 : front_work * li.extent[i];
  sch_rv outer = li.rv[0];
  if (nfront >= 2) TRY_SOFT(st, sch_fuse(s, nfront, li.rv, &outer));
  if (st == KILN_OK && front_work >= 2 && work_of(&li) >= PARALLEL_MIN_WORK)
    TRY_SOFT(st, sch_parallel(s, outer));
  return KILN_OK;
}

/* Step 4: an elementwise block writing an output: the row split by the vector width when it
 * is a multiple of it, the rest fused; else everything fused, then split by the width. */
static kiln_status elementwise_rule(sch_schedule *s, const sch_target_info *t, sch_rv block) {
  loop_info li;
  kiln_status st = loops_of(s, block, &li);
  if (st) return st;
  if (li.n == 0) return KILN_OK;
  ir_block_realize *r;
  if ((st = sch_get_realize(s, "default rules", block, &r))) return st;
  int lanes = lanes_for(t, written_dtype(r->block));
  /* a row that is a whole number of vectors: split the row by the vector width and fuse the
   * rest, so that a vector is a contiguous piece of a row (indices taken apart once per
   * vector, not per lane by vector division) */
  int64_t row = li.extent[li.n - 1];
  if (li.n >= 2 && row >= lanes && row % lanes == 0) {
    sch_rv parts[2], factors[2] = {sch_int(s, -1), sch_int(s, lanes)}, outer;
    if (factors[0] == SCH_RV_NONE || factors[1] == SCH_RV_NONE) return KILN_ERR_NOMEM;
    TRY_SOFT(st, sch_split(s, li.rv[li.n - 1], 2, factors, parts));
    if (st == KILN_OK) {
      sch_rv loops[MAX_LOOPS + 1];
      for (int i = 0; i < li.n - 1; i++) loops[i] = li.rv[i];
      loops[li.n - 1] = parts[0];
      TRY_SOFT(st, sch_fuse(s, li.n, loops, &outer));
      if (st != KILN_OK) outer = parts[0];
      TRY_SOFT(st, sch_vectorize(s, parts[1]));
      if (work_of(&li) >= PARALLEL_MIN_WORK) TRY_SOFT(st, sch_parallel(s, outer));
      return KILN_OK;
    }
  }
  sch_rv fused = li.rv[0];
  if (li.n >= 2) {
    TRY_SOFT(st, sch_fuse(s, li.n, li.rv, &fused));
    if (st != KILN_OK) fused = li.rv[li.n - 1]; /* not perfectly nested: the innermost */
  }
  ir_for *f;
  if ((st = sch_get_for(s, "default rules", fused, &f))) return st;
  const ir_int_imm *e = ir_as_int(f->extent);
  int64_t extent = e ? e->value : -1;
  if (extent >= 0 && extent < lanes) {
    if (extent > 1) TRY_SOFT(st, sch_vectorize(s, fused));
    return KILN_OK;
  }
  sch_rv parts[2], factors[2] = {sch_int(s, -1), sch_int(s, lanes)};
  if (factors[0] == SCH_RV_NONE || factors[1] == SCH_RV_NONE) return KILN_ERR_NOMEM;
  TRY_SOFT(st, sch_split(s, fused, 2, factors, parts));
  if (st != KILN_OK) return KILN_OK;
  TRY_SOFT(st, sch_vectorize(s, parts[1]));
  if (work_of(&li) >= PARALLEL_MIN_WORK) TRY_SOFT(st, sch_parallel(s, parts[0]));
  return KILN_OK;
}

/* A padding stage left at the root: the loops over all but the last axis fused and
 * parallel, the last axis (the row) split by the vector width and vectorized, so the bounds
 * test is a vector compare on the row and the loads are contiguous (masked at the borders)
 * instead of lanes of a fused index taken apart by division. */
static kiln_status pad_rule(sch_schedule *s, const sch_target_info *t, sch_rv block) {
  loop_info li;
  kiln_status st = loops_of(s, block, &li);
  if (st) return st;
  if (li.n < 2 || li.extent[li.n - 1] < 0) return elementwise_rule(s, t, block);
  ir_block_realize *r;
  if ((st = sch_get_realize(s, "default rules", block, &r))) return st;
  int lanes = lanes_for(t, written_dtype(r->block));
  sch_rv outer = li.rv[0], row = li.rv[li.n - 1];
  if (li.n > 2) {
    TRY_SOFT(st, sch_fuse(s, li.n - 1, li.rv, &outer));
    if (st != KILN_OK) outer = li.rv[li.n - 2];
  }
  if (li.extent[li.n - 1] >= lanes) {
    sch_rv parts[2], factors[2] = {sch_int(s, -1), sch_int(s, lanes)};
    if (factors[0] == SCH_RV_NONE || factors[1] == SCH_RV_NONE) return KILN_ERR_NOMEM;
    TRY_SOFT(st, sch_split(s, row, 2, factors, parts));
    if (st == KILN_OK) TRY_SOFT(st, sch_vectorize(s, parts[1]));
  } else if (li.extent[li.n - 1] > 1) {
    TRY_SOFT(st, sch_vectorize(s, row));
  }
  if (work_of(&li) >= PARALLEL_MIN_WORK) TRY_SOFT(st, sch_parallel(s, outer));
  return KILN_OK;
}

/* The names of the blocks directly under the root, in order (the RVs of get_child_blocks go
 * stale as blocks are inlined, names do not). */
typedef struct name_list {
  int n;
  char names[256][128];
} name_list;

static kiln_status stage_names(sch_schedule *s, sch_rv root, name_list *nl) {
  int n;
  sch_rv *blocks;
  kiln_status st = sch_get_child_blocks(s, root, &n, &blocks);
  if (st) return st;
  nl->n = 0;
  for (int i = 0; i < n && nl->n < 256; i++) {
    const sch_rv_info *r = sch_rv_get(s, blocks[i]);
    snprintf(nl->names[nl->n++], sizeof nl->names[0], "%s", r->block);
  }
  return KILN_OK;
}

/* Whether the block is alone in its loop nest (not placed inside another block's tile by
 * compute_at and the like): only such blocks get their own schedule in steps 3 and 4. */
static kiln_status owns_its_nest(sch_schedule *s, ir_block_realize *r, bool *owns) {
  int n;
  ir_for **loops;
  kiln_status st = sch_loops_around(s, &r->h, &n, &loops);
  if (st) return st;
  *owns = true;
  if (n == 0) return KILN_OK;
  int nc;
  ir_block_realize **kids;
  if ((st = sch_child_realizes(s, &loops[0]->h, &nc, &kids))) return st;
  *owns = nc == 1;
  return KILN_OK;
}

/* Looks a block up by name: *exists is false when it is gone (inlined); out of memory is an
 * error. */
static kiln_status block_exists(sch_schedule *s, const char *name, ir_block_realize **out,
                                bool *exists) {
  sch_rv rv = sch_new_block_rv(s, name); /* a lookup handle, not an instruction */
  if (rv == SCH_RV_NONE) return KILN_ERR_NOMEM;
  kiln_status st = sch_get_realize(s, "default rules", rv, out);
  *exists = st == KILN_OK;
  if (st == KILN_ERR_SCHEDULE) {
    ir_clear_error(s->ctx);
    st = KILN_OK;
  }
  return st;
}

void sch_target_info_from(const tgt_target *t, sch_target_info *out) {
  out->vector_bits = t->vector_bits > 0 ? t->vector_bits : 128;
  out->num_threads = t->num_cores > 0 ? t->num_cores : 1;
  /* x86 cores since Haswell and big Arm cores issue two FMAs per cycle */
  out->num_fma_units = 2;
  out->l1_bytes = t->l1_bytes;
  out->l2_bytes = t->l2_bytes;
}

kiln_status sch_apply_default_rules(sch_schedule *s, const sch_target_info *t) {
  if (!s || !t) return KILN_ERR_MISUSE;
  kiln_status st;
  sch_rv root;
  if ((st = sch_get_block(s, "root", &root))) return st;
  name_list *nl = ir_malloc(s->ctx, sizeof *nl);
  name_list *done = ir_malloc(s->ctx, sizeof *done);
  if (!nl || !done) {
    if (nl) ir_free(s->ctx, nl, sizeof *nl);
    if (done) ir_free(s->ctx, done, sizeof *done);
    return KILN_ERR_NOMEM;
  }
  done->n = 0;
  if ((st = stage_names(s, root, nl))) goto out;

  /* 1. inline injective producers (not the padding of tiled blocks) */
  for (int i = 0; i < nl->n; i++) {
    ir_block_realize *r;
    bool exists;
    if ((st = block_exists(s, nl->names[i], &r, &exists))) goto out;
    if (!exists) continue;
    const ir_block *b = r->block;
    if (!is_injective(b) || b->nwrites != 1 || is_param(s->func, b->writes[0]->buffer)) continue;
    if (is_pad_stage(b) && is_tileable_op(sch_block_annot(b, "op"))) continue;
    sch_rv rv;
    if ((st = sch_get_block(s, nl->names[i], &rv))) goto out;
    st = sch_compute_inline(s, rv);
    if (st == KILN_ERR_SCHEDULE) ir_clear_error(s->ctx);
    else if (st) goto out;
  }
  st = KILN_OK;

  /* 2. tiles, with their epilogues */
  if ((st = stage_names(s, root, nl))) goto out;
  for (int i = 0; i < nl->n; i++) {
    ir_block_realize *r;
    bool exists;
    if ((st = block_exists(s, nl->names[i], &r, &exists))) goto out;
    if (!exists || !is_tile_block(r->block)) continue;
    sch_rv rv;
    if ((st = sch_get_block(s, nl->names[i], &rv))) goto out;
    bool handled;
    char epi[128] = "";
    if ((st = tile_rule(s, t, rv, &handled, epi, sizeof epi))) goto out;
    if (done->n < 255) snprintf(done->names[done->n++], sizeof done->names[0], "%s", nl->names[i]);
    if (handled && done->n < 255) snprintf(done->names[done->n++], sizeof done->names[0], "%s", epi);
  }

  /* 3 and 4: what is left at the root */
  if ((st = stage_names(s, root, nl))) goto out;
  for (int i = 0; i < nl->n; i++) {
    bool skip = false;
    for (int k = 0; k < done->n && !skip; k++) skip = strcmp(done->names[k], nl->names[i]) == 0;
    ir_block_realize *r;
    bool exists, owns = false;
    if (skip) continue;
    if ((st = block_exists(s, nl->names[i], &r, &exists))) goto out;
    if (exists && (st = owns_its_nest(s, r, &owns))) goto out;
    if (!exists || !owns) continue;
    sch_rv rv;
    if ((st = sch_get_block(s, nl->names[i], &rv))) goto out;
    st = has_reduce(r->block)     ? reduce_rule(s, rv)
         : is_pad_stage(r->block) ? pad_rule(s, t, rv)
                                  : elementwise_rule(s, t, rv);
    if (st) goto out;
  }

  /* 5. the sampled packing of the tiles' vector-axis operands (pack_operand) */
  for (int i = 0; i < done->n; i++) {
    ir_block_realize *r;
    bool exists;
    if ((st = block_exists(s, done->names[i], &r, &exists))) goto out;
    if (!exists || !is_tile_block(r->block)) continue;
    sch_rv rv;
    if ((st = sch_get_block(s, done->names[i], &rv))) goto out;
    if ((st = pack_operand(s, rv))) goto out;
  }
out:
  ir_free(s->ctx, nl, sizeof *nl);
  ir_free(s->ctx, done, sizeof *done);
  return st;
}

/* rules_internal.h: what the default rules (schedule/rules.c) call in the conv-specific part
 * of the rules (schedule/rules_conv.c). Internal to schedule/; not part of any API. */
#ifndef KILN_SCHEDULE_RULES_INTERNAL_H
#define KILN_SCHEDULE_RULES_INTERNAL_H

#include "schedule/schedule.h"

/* The string annotation `key` of block b (NULL when absent or not a string): "op", "stage",
 * "pattern" as the lowering sets them (relay/lower.c). Defined in rules.c. */
const char *sch_block_annot(const ir_block *b, const char *key);

/* Whether b is the copy of a channel-last conv2d's accumulator to its NCHW result (the
 * "conv2d_nchw" stage, relay/op/nn.c): injective, so rule 1 inlines it into the fused
 * epilogue like any elementwise producer, although its op (nn.conv2d) is not. */
bool sch_conv_is_layout_copy(const ir_block *b);

/* Whether b is the reduction of a channel-last conv2d ("conv2d_nhwc": iterators N, OH, OW, O
 * then the reduce axes C, KH, KW). */
bool sch_conv_is_channel_last(const ir_block *b);

/* Reorders the outer tile loops of a channel-last conv2d's register tile (outer[0..nouter),
 * in the tile rule's order N, OH, O outer, OW outer): the output-channel tile loop
 * channel_tile moves to the front, so that consecutive tiles (and the tiles one thread runs)
 * share one slice of the weights, kept in L2, instead of streaming all the weights once per
 * output row. */
void sch_conv_tile_order(sch_rv *outer, int nouter, sch_rv channel_tile);

#endif

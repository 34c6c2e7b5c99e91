/* rules_conv.c: the conv2d-specific part of the default schedule rules (schedule/rules.c).
 * A conv2d whose kernel has the output channels innermost is lowered in two stages
 * (relay/op/nn.c): the reduction "conv2d_nhwc" into a channel-last accumulator, then the
 * copy "conv2d_nchw" to the NCHW result. The rules recognize both here: the copy is
 * injective (inlined into the fused epilogue), the reduction gets the register tile of the
 * tile rule (the output channels are its innermost spatial axis, so its vector axis) with the
 * output-channel tile loop outermost. */
#include <string.h>

#include "schedule/rules_internal.h"

static bool is_conv_stage(const ir_block *b, const char *stage) {
  const char *op = sch_block_annot(b, "op"), *st = sch_block_annot(b, "stage");
  return op && st && strcmp(op, "nn.conv2d") == 0 && strcmp(st, stage) == 0;
}

bool sch_conv_is_layout_copy(const ir_block *b) {
  return b && !b->init && is_conv_stage(b, "nchw");
}

bool sch_conv_is_channel_last(const ir_block *b) {
  return b && is_conv_stage(b, "nhwc");
}

/* Moves the output-channel tile loop to the front of the outer loops (see the header). */
void sch_conv_tile_order(sch_rv *outer, int nouter, sch_rv channel_tile) {
  for (int k = 1; k < nouter; k++)
    if (outer[k] == channel_tile) {
      for (; k > 0; k--) outer[k] = outer[k - 1];
      outer[0] = channel_tile;
      return;
    }
}

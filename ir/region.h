/* region.h: read/write regions of TensorIR blocks, detected from their bodies. Used when
 * relay/lower builds blocks and when schedule primitives rewrite them. */
#ifndef KILN_IR_REGION_H
#define KILN_IR_REGION_H

#include "node.h"

/* Detects the regions a block body (and init) reads and writes, in terms of the block's
 * iterators: one region per buffer (reads and writes separately, first-access order), not
 * counting the buffers the block itself allocates or accesses inside nested blocks (a nested
 * block's own regions count instead). For each dimension the accesses' indices are united:
 * identical indices give [idx, 1]; indices that differ by constants give [min, max - min + 1];
 * anything else (data-dependent indices, unrelated expressions) gives the buffer's full
 * extent. A buffer both read and written (a reduction's accumulator) appears in both lists.
 * Arrays are allocated in a. */
kiln_status ir_block_detect_regions(ir_arena *a, const ir_block *blk, int *nreads,
                                    ir_region ***reads, int *nwrites, ir_region ***writes);

/* blk with its reads and writes replaced by the detected ones (blk itself when unchanged). */
ir_block *ir_block_with_detected_regions(ir_arena *a, ir_block *blk);

#endif

/* verify.h: the TIR verifier (well-formedness between passes) and the reference interpreter
 * (slow and exact; the oracle for schedules and lowering). */
#ifndef KILN_IR_VERIFY_H
#define KILN_IR_VERIFY_H

#include "node.h"

/* Checks f: every variable and buffer used is defined in scope and defined once, accesses
 * have one index per dimension, dtypes agree, blocks are well formed. The first problem is
 * reported on ctx (with the offending node's span). */
kiln_status ir_verify_func(kiln_context *ctx, const ir_func *f);
kiln_status ir_verify_module(const kiln_tir_module *mod);

/* Runs f on plain memory: args[i] is the data of parameter i (a buffer: dense row-major
 * elements of its dtype, honouring strides and elem_offset if given; a scalar: a pointer to
 * one value of its dtype). Out-of-bounds accesses, division by zero and the like are
 * KILN_ERR_RUNTIME. */
kiln_status ir_interpret(kiln_context *ctx, const ir_func *f, int nargs, void **args);

#endif

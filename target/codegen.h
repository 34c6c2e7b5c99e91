/* codegen.h: code generation from TIR to LLVM IR (codegen.c) and the in-process JIT that turns
 * the result into callable kernels (jit.c). Data flow: a verified kiln_tir_module ->
 * tgt_codegen -> tgt_llvm_module (one LLVM module, verified and optimized for a tgt_target)
 * -> its IR or assembly text (`kiln asm`), or tgt_jit_add + tgt_jit_lookup -> kiln_kernel_fn.
 *
 * Every PrimFunc `f` becomes an exported `int32_t f(const kiln_tensor *args, int32_t nargs)`
 * (the kiln_kernel_fn ABI of kiln_runtime.h) that checks its arguments and then runs the body.
 * A failed check calls kiln_rt_error ("f: argument 2 (B): expected float32 [128, 32], got
 * float32 [128, 33]") and returns KILN_ERR_MISUSE (argument count, NULL pointers, misaligned
 * data), KILN_ERR_TYPE (dtype) or KILN_ERR_SHAPE (rank, shape, strides). Scalar parameters are
 * 0-d tensors. Semantics follow the reference interpreter (ir/interp.c) bit for bit except
 * where noted at the top of codegen.c (intrinsic accuracy, division by zero, uninitialized
 * allocations, out-of-bounds accesses, noalias parameters). */
#ifndef KILN_TARGET_CODEGEN_H
#define KILN_TARGET_CODEGEN_H

#include <llvm-c/Core.h>
#include <llvm-c/Orc.h>
#include <llvm-c/TargetMachine.h>

#include "ir/node.h"
#include "target/target.h"

/* Initializes LLVM's targets once per process (thread-safe; later calls do nothing). */
void tgt_llvm_init(void);

/* A new LLVM target machine for t (PIC, default code model, -O3 code generation); an empty
 * triple means LLVM's default. KILN_ERR_PARSE when LLVM does not know the triple or CPU. The
 * caller disposes of it (LLVMDisposeTargetMachine). Call tgt_llvm_init first. */
kiln_status tgt_target_machine(kiln_context *ctx, const tgt_target *t, LLVMTargetMachineRef *out);

/* Options of tgt_codegen; NULL means the defaults (opt_level 3). */
typedef struct tgt_codegen_options {
  int opt_level; /* 0: no optimization (the IR as emitted), 1..3: LLVM's default<On> pipeline */
} tgt_codegen_options;

/* An LLVM module generated from a TIR module, with the LLVM context (thread-safe, so the JIT
 * can take it) and the target machine it was optimized for. Owned by the caller until
 * tgt_jit_add takes it; free with tgt_llvm_module_free. */
typedef struct tgt_llvm_module {
  kiln_context *ctx;
  LLVMOrcThreadSafeContextRef tsc;
  LLVMContextRef llc; /* borrowed from tsc */
  LLVMModuleRef mod;
  LLVMTargetMachineRef tm;
  tgt_target target;
} tgt_llvm_module;

/* Generates one LLVM module for every function of mod (each is verified with the TIR verifier
 * first), verifies it with LLVM's verifier and optimizes it. Errors: the verifier's codes,
 * KILN_ERR_UNSUPPORTED (a dtype codegen does not handle, with the node's span; a function
 * named like a symbol generated code calls, e.g. "powf"), KILN_ERR_PARSE (a target LLVM does
 * not know), KILN_ERR_INTERNAL (LLVM rejected the module; the message is LLVM's),
 * KILN_ERR_NOMEM. Nothing is left allocated on failure. LLVM's remarks and warnings are
 * dropped, never printed. */
kiln_status tgt_codegen(kiln_context *ctx, const kiln_tir_module *mod, const tgt_target *target,
                        const tgt_codegen_options *opts, tgt_llvm_module **out);
void tgt_llvm_module_free(tgt_llvm_module *m);

/* The module's LLVM IR / assembly text (AT&T syntax on x86) as a new NUL-terminated string in
 * context memory: free with kiln_string_free(ctx, s) (or ir_free(ctx, s, len + 1)). The module
 * itself is not changed (assembly is emitted from a copy). len may be NULL. */
kiln_status tgt_llvm_module_ir(tgt_llvm_module *m, char **out, size_t *len);
kiln_status tgt_llvm_module_asm(tgt_llvm_module *m, char **out, size_t *len);
/* The module as a relocatable object file (ELF on Linux), bytes in context memory: free with
 * ir_free(ctx, p, *len). */
kiln_status tgt_llvm_module_object(tgt_llvm_module *m, void **out, size_t *len);

/* ---- JIT (jit.c) ----------------------------------------------------------------------- */

/* An ORC LLJIT for one target (which must be the host: is_host, else KILN_ERR_UNSUPPORTED).
 * Generated code calls the runtime (kiln_rt_parallel_launch, kiln_rt_workspace_alloc/free,
 * kiln_rt_error), a few libc functions (snprintf, memcpy, memset, memmove) and libm functions
 * (pow, fmod, ... and what LLVM lowers intrinsics to on targets without the instructions);
 * the JIT defines all of them as absolute symbols whose addresses are taken in C, so nothing
 * is looked up in the process. A tgt_jit may be used by one thread at a time; the kernels it
 * returns may be called from any thread, concurrently, until tgt_jit_free. */
typedef struct tgt_jit tgt_jit;

kiln_status tgt_jit_new(kiln_context *ctx, const tgt_target *target, tgt_jit **out);
/* Frees the JIT and all code added to it (kernels from it must no longer be called). */
void tgt_jit_free(tgt_jit *jit);
/* Adds a module; takes ownership of m (freed also on failure). Its functions are compiled
 * on the first lookup. KILN_ERR_MISUSE when m was generated for another target or defines a
 * kernel an earlier module defines. */
kiln_status tgt_jit_add(tgt_jit *jit, tgt_llvm_module *m);
/* Generates code for every function of mod and adds it (tgt_codegen + tgt_jit_add). */
kiln_status tgt_jit_add_tir(tgt_jit *jit, const kiln_tir_module *mod);
/* The kernel for TIR function `name` (compiles its module on first use). KILN_ERR_UNDEFINED
 * if no added module defines it. */
kiln_status tgt_jit_lookup(tgt_jit *jit, const char *name, kiln_kernel_fn *out);
/* Whether the JIT defines `name` for generated code (runtime, libc and libm functions).
 * Tests use it to check that every symbol an object file needs is provided. */
bool tgt_jit_provides(const char *name);

#endif

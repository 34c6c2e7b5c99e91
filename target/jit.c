/* jit.c: the in-process JIT: an ORC LLJIT (LLVM-C API) that takes the modules codegen.c
 * generates and hands out their kernels as kiln_kernel_fn pointers. Every symbol generated
 * code may call (runtime, libc, libm, compiler helpers) is defined in the JIT as an absolute
 * symbol whose address is taken here in C: process symbol lookup fails inside a library
 * loaded with RTLD_LOCAL (Python's ctypes), and it would hide a symbol we forgot.
 * Each added module gets its own resource tracker; tgt_jit_free releases them all. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>

#include "codegen.h"

/* libgcc's integer-power helpers, which LLVM calls for llvm.powi (pow with an integer
 * exponent under fast-math). */
extern float __powisf2(float, int);
extern double __powidf2(double, int);

typedef void (*any_fn)(void);

typedef struct jit_symbol {
  const char *name;
  any_fn addr;
} jit_symbol;

#define SYM(f) {#f, (any_fn)f}

/* Everything generated code may reference: what codegen.c calls (runtime, snprintf, libm for
 * float64 functions) and what LLVM itself may lower operations to (memset/memcpy for loop
 * idioms, strlen & co. when it simplifies snprintf, fmod for frem, floor & co. on CPUs
 * without SSE4.1, fma without FMA units, exp2 and ldexp for pow(2, x), exp10 for pow(10, x),
 * powi). The suite checks that object files using every intrinsic need nothing else
 * (test_codegen.c). */
static const jit_symbol jit_symbols[] = {
    SYM(kiln_rt_parallel_launch), SYM(kiln_rt_workspace_alloc), SYM(kiln_rt_workspace_free),
    SYM(kiln_rt_error),
    SYM(snprintf), SYM(memcpy), SYM(memmove), SYM(memset), SYM(strlen), SYM(strcpy), SYM(stpcpy),
    SYM(exp), SYM(expf), SYM(exp2), SYM(exp2f), SYM(exp10), SYM(exp10f), SYM(expm1), SYM(expm1f),
    SYM(log), SYM(logf), SYM(log2), SYM(log2f), SYM(log10), SYM(log10f), SYM(log1p), SYM(log1pf),
    SYM(pow), SYM(powf), SYM(__powisf2), SYM(__powidf2), SYM(ldexp), SYM(ldexpf),
    SYM(sqrt), SYM(sqrtf), SYM(cbrt), SYM(cbrtf), SYM(fmod), SYM(fmodf), SYM(fma), SYM(fmaf),
    SYM(fabs), SYM(fabsf), SYM(fmin), SYM(fminf), SYM(fmax), SYM(fmaxf),
    SYM(floor), SYM(floorf), SYM(ceil), SYM(ceilf), SYM(trunc), SYM(truncf),
    SYM(round), SYM(roundf), SYM(rint), SYM(rintf), SYM(nearbyint), SYM(nearbyintf),
    SYM(roundeven), SYM(roundevenf),
    SYM(tanh), SYM(tanhf), SYM(erf), SYM(erff), SYM(sin), SYM(sinf), SYM(cos), SYM(cosf),
};

#define NSYMBOLS ((int)(sizeof jit_symbols / sizeof jit_symbols[0]))

bool tgt_jit_provides(const char *name) {
  if (!name) return false;
  for (int i = 0; i < NSYMBOLS; i++)
    if (strcmp(jit_symbols[i].name, name) == 0) return true;
  return false;
}

struct tgt_jit {
  kiln_context *ctx;
  tgt_target target;
  LLVMOrcLLJITRef lljit;
  LLVMOrcJITDylibRef jd;
  LLVMOrcResourceTrackerRef *trackers; /* one per added module */
  int ntrackers, cap;
  char session_error[512]; /* the last failure LLVM could not return to a caller */
};

/* Consumes an LLVMErrorRef into a context error with `code`. */
static kiln_status jit_error(kiln_context *ctx, LLVMErrorRef e, kiln_status code,
                             const char *what) {
  char *msg = LLVMGetErrorMessage(e);
  kiln_status st = ir_fail(ctx, IR_NO_SPAN, code, "jit: %s: %s", what, msg ? msg : "");
  if (msg) LLVMDisposeErrorMessage(msg);
  return st;
}

/* Failures inside the JIT's linker (an unresolved symbol, say) arrive here rather than at
 * the caller; keep the message for the lookup that triggered them. */
static void report_session_error(void *ud, LLVMErrorRef e) {
  tgt_jit *j = ud;
  char *msg = LLVMGetErrorMessage(e);
  snprintf(j->session_error, sizeof j->session_error, "%s", msg ? msg : "unknown error");
  if (msg) LLVMDisposeErrorMessage(msg);
}

/* Defines jit_symbols in the main JITDylib. */
static kiln_status define_symbols(tgt_jit *j) {
  LLVMOrcCSymbolMapPair pairs[NSYMBOLS];
  for (int i = 0; i < NSYMBOLS; i++) {
    pairs[i].Name = LLVMOrcLLJITMangleAndIntern(j->lljit, jit_symbols[i].name);
    pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)jit_symbols[i].addr;
    pairs[i].Sym.Flags.GenericFlags =
        LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
    pairs[i].Sym.Flags.TargetFlags = 0;
  }
  LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, NSYMBOLS);
  LLVMErrorRef e = LLVMOrcJITDylibDefine(j->jd, mu);
  if (!e) return KILN_OK;
  LLVMOrcDisposeMaterializationUnit(mu);
  return jit_error(j->ctx, e, KILN_ERR_INTERNAL, "cannot define the runtime symbols");
}

kiln_status tgt_jit_new(kiln_context *ctx, const tgt_target *target, tgt_jit **out) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!target || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tgt_jit_new: NULL argument");
  *out = NULL;
  if (!target->is_host)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                   "jit: target '%s' is not this machine; code for it cannot run here",
                   target->canonical[0] ? target->canonical : target->triple);
  tgt_llvm_init();
  tgt_jit *j = ir_malloc(ctx, sizeof *j);
  if (!j) return KILN_ERR_NOMEM;
  memset(j, 0, sizeof *j);
  j->ctx = ctx;
  j->target = *target;
  LLVMTargetMachineRef tm;
  kiln_status st = tgt_target_machine(ctx, target, &tm);
  if (st) {
    ir_free(ctx, j, sizeof *j);
    return st;
  }
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
      builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
  LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->lljit, builder); /* takes the builder */
  if (e) {
    st = jit_error(ctx, e, KILN_ERR_INTERNAL, "cannot create the LLJIT");
    ir_free(ctx, j, sizeof *j);
    return st;
  }
  LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(j->lljit),
                                          report_session_error, j);
  j->jd = LLVMOrcLLJITGetMainJITDylib(j->lljit);
  if ((st = define_symbols(j))) {
    tgt_jit_free(j);
    return st;
  }
  *out = j;
  return KILN_OK;
}

void tgt_jit_free(tgt_jit *j) {
  if (!j) return;
  for (int i = 0; i < j->ntrackers; i++) {
    LLVMErrorRef e = LLVMOrcResourceTrackerRemove(j->trackers[i]);
    if (e) LLVMConsumeError(e); /* nothing to report to: the JIT is going away */
    LLVMOrcReleaseResourceTracker(j->trackers[i]);
  }
  ir_free(j->ctx, j->trackers, sizeof *j->trackers * (size_t)j->cap);
  if (j->lljit) {
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->lljit);
    if (e) LLVMConsumeError(e);
  }
  ir_free(j->ctx, j, sizeof *j);
}

kiln_status tgt_jit_add(tgt_jit *j, tgt_llvm_module *m) {
  if (!j || !m) {
    tgt_llvm_module_free(m);
    return j ? ir_fail(j->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tgt_jit_add: NULL module")
             : KILN_ERR_MISUSE;
  }
  if (!m->target.is_host || strcmp(m->target.triple, j->target.triple) != 0) {
    kiln_status st = ir_fail(j->ctx, IR_NO_SPAN, KILN_ERR_MISUSE,
                             "jit: the module was generated for '%s', not for this machine",
                             m->target.triple);
    tgt_llvm_module_free(m);
    return st;
  }
  if (j->ntrackers == j->cap) {
    int cap = j->cap ? j->cap * 2 : 4;
    LLVMOrcResourceTrackerRef *t =
        ir_realloc(j->ctx, j->trackers, sizeof *t * (size_t)j->cap, sizeof *t * (size_t)cap);
    if (!t) {
      tgt_llvm_module_free(m);
      return KILN_ERR_NOMEM;
    }
    j->trackers = t;
    j->cap = cap;
  }
  LLVMOrcResourceTrackerRef rt = LLVMOrcJITDylibCreateResourceTracker(j->jd);
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m->mod, m->tsc);
  m->mod = NULL;           /* owned by tsm, which the JIT takes */
  tgt_llvm_module_free(m); /* drops our reference to the context; tsm keeps its own */
  LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModuleWithRT(j->lljit, rt, tsm);
  if (e) {
    LLVMOrcReleaseResourceTracker(rt);
    /* a kernel name that an earlier module defines is the caller's mistake */
    char *msg = LLVMGetErrorMessage(e);
    bool dup = msg && strstr(msg, "Duplicate definition");
    kiln_status st = ir_fail(j->ctx, IR_NO_SPAN, dup ? KILN_ERR_MISUSE : KILN_ERR_INTERNAL,
                             "jit: cannot add a module: %s%s", msg ? msg : "",
                             dup ? " (a module added earlier defines it)" : "");
    if (msg) LLVMDisposeErrorMessage(msg);
    return st;
  }
  j->trackers[j->ntrackers++] = rt;
  return KILN_OK;
}

kiln_status tgt_jit_add_tir(tgt_jit *j, const kiln_tir_module *mod) {
  if (!j) return KILN_ERR_MISUSE;
  tgt_llvm_module *m;
  kiln_status st = tgt_codegen(j->ctx, mod, &j->target, NULL, &m);
  return st ? st : tgt_jit_add(j, m);
}

kiln_status tgt_jit_lookup(tgt_jit *j, const char *name, kiln_kernel_fn *out) {
  if (!j) return KILN_ERR_MISUSE;
  if (!name || !out)
    return ir_fail(j->ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tgt_jit_lookup: NULL argument");
  *out = NULL;
  j->session_error[0] = 0;
  LLVMOrcExecutorAddress addr = 0;
  LLVMErrorRef e = LLVMOrcLLJITLookup(j->lljit, &addr, name);
  if (e) {
    /* A failure while compiling or linking the module is a kiln bug (say, a symbol missing
     * from jit_symbols); otherwise the name is simply not defined. */
    if (j->session_error[0]) {
      LLVMConsumeError(e);
      return ir_fail(j->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "jit: compiling '%s' failed: %s", name,
                     j->session_error);
    }
    char *msg = LLVMGetErrorMessage(e);
    kiln_status st = ir_fail(j->ctx, IR_NO_SPAN, KILN_ERR_UNDEFINED, "jit: no kernel '%s' (%s)",
                             name, msg ? msg : "");
    if (msg) LLVMDisposeErrorMessage(msg);
    return st;
  }
  *out = (kiln_kernel_fn)(uintptr_t)addr;
  return KILN_OK;
}

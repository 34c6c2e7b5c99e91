/* codegen.c: TIR -> LLVM IR through the LLVM-C API, then LLVM's verifier and its O3 pipeline
 * for a tgt_target. Input: a kiln_tir_module (verified here first); output: a
 * tgt_llvm_module that jit.c runs or `kiln asm` prints. For each PrimFunc `f` there is an
 * exported entry `int32_t f(const kiln_tensor *args, int32_t nargs)` that checks the arguments
 * and calls the internal `f.compute` (buffer pointers noalias, scalars by value) which holds
 * the body; parallel loops become `f.par<N>` task functions run by kiln_rt_parallel_launch. */

/* Semantics follow the reference interpreter (ir/interp.c) bit for bit, except:
 * - Intrinsics exp, log, tanh, erf, sigmoid of float32 (and float16/bfloat16, which compute in
 *   float) are our own polynomial approximations, so that loops with them vectorize: at most
 *   ~2.5 ulp from the correctly rounded result (tests allow 4). float64 calls libm, as the
 *   interpreter does. pow, rsqrt, floordiv and the fma of 16-bit floats compute in double and
 *   round once, as the interpreter does: bit-exact. sqrt, floor, ceil, round, fabs and fma of
 *   float32/float64 are exact LLVM intrinsics.
 * - Integer division by zero does not trap and is not reported: x / 0 == 0 and x % 0 == x
 *   (also for // and %%); INT_MIN / -1 wraps to INT_MIN with remainder 0 as in the interpreter.
 *   A divisor that is a non-zero constant costs nothing extra (the guards fold away).
 * - float -> integer casts saturate (NaN gives 0) where the interpreter reports out of range.
 * - Allocated buffers (allocate, block alloc buffers) are not zero-filled (the interpreter's
 *   are); programs write before reading. A block's buffers live for one block instance.
 * - Accesses are not bounds-checked (the verifier and interpreter are the safety net). A select
 *   evaluates only the chosen arm when an arm loads: branches for a scalar condition, masked
 *   loads for a vector condition.
 * - Buffer parameters are noalias: one tensor must not be passed for two parameters.
 * - min/max of floats follow IEEE minNum/maxNum (a NaN operand loses); of +0 and -0 either
 *   zero may come back (as from libm's fmin, which the interpreter calls).
 * Types: bool is i1 in registers and i8 in memory; float16/bfloat16 are their 16-bit patterns
 * in memory and float in registers (holding an exactly representable value): every operation
 * computes in float and rounds to nearest even, with the hardware's conversion for float16
 * where the target has one (F16C, AArch64) and integer code otherwise, never an LLVM libcall;
 * handles are i64. Integer arithmetic wraps (no nsw/nuw except on loop counters that cannot
 * overflow). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/Error.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen.h"
#include "ir/verify.h"

/* The generated entry reads kiln_tensor fields by index (the LLVM struct in cg_init_types
 * mirrors the C declaration, so the target's ABI lays both out alike); this is the order it
 * assumes. */
_Static_assert(offsetof(kiln_tensor, data) == 0 &&
                   offsetof(kiln_tensor, device_type) < offsetof(kiln_tensor, device_id) &&
                   offsetof(kiln_tensor, device_id) < offsetof(kiln_tensor, ndim) &&
                   offsetof(kiln_tensor, ndim) < offsetof(kiln_tensor, dtype) &&
                   offsetof(kiln_tensor, dtype) < offsetof(kiln_tensor, shape) &&
                   offsetof(kiln_tensor, shape) < offsetof(kiln_tensor, strides) &&
                   offsetof(kiln_tensor, strides) < offsetof(kiln_tensor, byte_offset),
               "kiln_tensor changed: update cg_init_types and the field indices in the entry");

/* Allocations of at most this many bytes with a constant size live on the stack. */
enum { STACK_ALLOC_MAX = 4096 };

/* ---- LLVM setup ------------------------------------------------------------------------ */

static pthread_once_t llvm_once = PTHREAD_ONCE_INIT;

static void llvm_init_once(void) {
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
  LLVMInitializeAllAsmParsers();
}

void tgt_llvm_init(void) { pthread_once(&llvm_once, llvm_init_once); }

kiln_status tgt_target_machine(kiln_context *ctx, const tgt_target *t, LLVMTargetMachineRef *out) {
  *out = NULL;
  char *def = NULL;
  const char *triple = t->triple;
  if (!triple[0]) triple = def = LLVMGetDefaultTargetTriple();
  LLVMTargetRef target;
  char *err = NULL;
  kiln_status st = KILN_OK;
  if (LLVMGetTargetFromTriple(triple, &target, &err)) {
    st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE, "codegen: LLVM has no target for triple '%s': %s",
                 triple, err ? err : "");
  } else {
    *out = LLVMCreateTargetMachine(target, triple, t->cpu, t->features, LLVMCodeGenLevelAggressive,
                                   LLVMRelocPIC, LLVMCodeModelDefault);
    if (!*out)
      st =
          ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                  "codegen: LLVM cannot make a target machine for '%s' (cpu '%s')", triple, t->cpu);
  }
  if (err) LLVMDisposeMessage(err);
  if (def) LLVMDisposeMessage(def);
  return st;
}

/* ---- Codegen state --------------------------------------------------------------------- */

/* A buffer while code is generated: where element 0 is and the strides (i64, in elements). */
typedef struct cg_buf {
  const ir_buffer *buf;
  LLVMValueRef base;
  LLVMValueRef *strides; /* ndim values */
} cg_buf;

/* The LLVM function being filled: allocas go to its first block, which branches to the body
 * when the function is finished. `heap` lists the workspace allocations live at the current
 * point, freed on every error exit. */
typedef struct cg_fn {
  LLVMValueRef fn;
  LLVMBasicBlockRef allocas;
  LLVMBasicBlockRef body;
  LLVMValueRef *heap;
  int nheap, capheap;
} cg_fn;

typedef struct cg {
  kiln_context *ctx;
  const tgt_target *target;
  LLVMContextRef llc;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMBuilderRef ab; /* for allocas */
  LLVMTargetDataRef td;
  ir_arena *arena; /* cg_buf records and stride arrays */
  const ir_func *func;
  ir_ptrmap vars; /* ir_var * -> LLVMValueRef */
  ir_ptrmap bufs; /* ir_buffer * -> cg_buf * */
  cg_fn *fn;
  LLVMValueRef mask; /* lanes that must be evaluated (vector of i1), NULL for all */
  int npar;          /* parallel loops outlined so far in this function */
  bool native_f16;   /* the target converts float <-> float16 in hardware (F16C, AArch64) */
  LLVMTypeRef i1, i8, i16, i32, i64, f32, f64, ptr, isize, voidt, tensor, dtype_ty;
  unsigned md_loop;
} cg;

/* ---- Types and constants --------------------------------------------------------------- */

static bool dtype_supported(kiln_dtype t) {
  switch ((kiln_type_code)t.code) {
  case KILN_TYPE_INT:
  case KILN_TYPE_UINT: return t.bits == 8 || t.bits == 16 || t.bits == 32 || t.bits == 64;
  case KILN_TYPE_FLOAT: return t.bits == 16 || t.bits == 32 || t.bits == 64;
  case KILN_TYPE_BFLOAT: return t.bits == 16;
  case KILN_TYPE_BOOL: return true;
  case KILN_TYPE_HANDLE: return t.bits == 64;
  case KILN_TYPE_VOID: return false;
  }
  return false;
}

static bool is_f16(kiln_dtype t) { return t.code == KILN_TYPE_FLOAT && t.bits == 16; }
static bool is_bf16(kiln_dtype t) { return t.code == KILN_TYPE_BFLOAT; }
/* float16 and bfloat16: float in registers. */
static bool is_small_float(kiln_dtype t) { return is_f16(t) || is_bf16(t); }
static bool is_f64(kiln_dtype t) { return t.code == KILN_TYPE_FLOAT && t.bits == 64; }

static LLVMTypeRef with_lanes(LLVMTypeRef elem, unsigned lanes) {
  return lanes > 1 ? LLVMVectorType(elem, lanes) : elem;
}

static unsigned ty_lanes(LLVMTypeRef t) {
  return LLVMGetTypeKind(t) == LLVMVectorTypeKind ? LLVMGetVectorSize(t) : 1;
}

static LLVMTypeRef ty_elem(LLVMTypeRef t) {
  return LLVMGetTypeKind(t) == LLVMVectorTypeKind ? LLVMGetElementType(t) : t;
}

/* The register type of one lane of t. */
static LLVMTypeRef scalar_reg_type(cg *c, kiln_dtype t) {
  switch ((kiln_type_code)t.code) {
  case KILN_TYPE_INT:
  case KILN_TYPE_UINT: return LLVMIntTypeInContext(c->llc, t.bits);
  case KILN_TYPE_FLOAT: return t.bits == 64 ? c->f64 : c->f32;
  case KILN_TYPE_BFLOAT: return c->f32;
  case KILN_TYPE_BOOL: return c->i1;
  case KILN_TYPE_HANDLE: return c->i64;
  case KILN_TYPE_VOID: break;
  }
  return c->i64; /* callers check dtype_supported first */
}

static LLVMTypeRef reg_type(cg *c, kiln_dtype t) {
  return with_lanes(scalar_reg_type(c, t), t.lanes);
}

/* The in-memory type of one element of t. */
static LLVMTypeRef mem_type(cg *c, kiln_dtype t) {
  if (t.code == KILN_TYPE_BOOL) return c->i8;
  if (is_small_float(t)) return c->i16;
  return scalar_reg_type(c, t);
}

static unsigned elem_bytes(kiln_dtype t) { return t.code == KILN_TYPE_BOOL ? 1 : t.bits / 8u; }

/* A value of vector type `ty` with every lane v (or v itself for a scalar type). Works for
 * constants (the builder folds it to a constant vector) and instructions alike. */
static LLVMValueRef splat(cg *c, LLVMValueRef v, unsigned lanes) {
  if (lanes <= 1) return v;
  LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(v), lanes);
  LLVMValueRef ins =
      LLVMBuildInsertElement(c->b, LLVMGetPoison(vt), v, LLVMConstInt(c->i32, 0, 0), "");
  return LLVMBuildShuffleVector(c->b, ins, LLVMGetPoison(vt),
                                LLVMConstNull(LLVMVectorType(c->i32, lanes)), "");
}

/* Integer / float constants of type ty (scalar or vector). */
static LLVMValueRef ik(cg *c, LLVMTypeRef ty, long long v) {
  return splat(c, LLVMConstInt(ty_elem(ty), (unsigned long long)v, 1), ty_lanes(ty));
}
static LLVMValueRef fk(cg *c, LLVMTypeRef ty, double v) {
  return splat(c, LLVMConstReal(ty_elem(ty), v), ty_lanes(ty));
}

/* Brings a to the lane count of b (a scalar becomes a splat). */
static LLVMValueRef match_lanes(cg *c, LLVMValueRef a, unsigned lanes) {
  return ty_lanes(LLVMTypeOf(a)) == lanes ? a : splat(c, a, lanes);
}

/* A call of LLVM intrinsic `name` overloaded on tys. */
static LLVMValueRef intrin(cg *c, const char *name, LLVMTypeRef *tys, unsigned ntys,
                           LLVMValueRef *args, unsigned nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  if (!id) {
    ir_fail(c->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "codegen: LLVM has no intrinsic %s", name);
    return NULL;
  }
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, tys, ntys);
  LLVMTypeRef fty = LLVMIntrinsicGetType(c->llc, id, tys, ntys);
  return LLVMBuildCall2(c->b, fty, fn, args, nargs, "");
}

/* Intrinsics overloaded on the type of their first argument. */
static LLVMValueRef intrin1(cg *c, const char *name, LLVMValueRef a) {
  LLVMTypeRef t = LLVMTypeOf(a);
  return intrin(c, name, &t, 1, &a, 1);
}
static LLVMValueRef intrin2(cg *c, const char *name, LLVMValueRef a, LLVMValueRef b) {
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMValueRef args[2] = {a, b};
  return intrin(c, name, &t, 1, args, 2);
}
static LLVMValueRef fmuladd(cg *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef d) {
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMValueRef args[3] = {a, b, d};
  return intrin(c, "llvm.fmuladd", &t, 1, args, 3);
}

/* Fast-math flags on a float operation of the program (never on our own expansions, whose
 * rounding tricks reassociation would break), when the target allows them. */
static LLVMValueRef fm(cg *c, LLVMValueRef v) {
  if (v && c->target->fast_math && LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v))
    LLVMSetFastMathFlags(v, LLVMFastMathAll);
  return v;
}

/* A private constant C string; returns its address. */
static LLVMValueRef const_string(cg *c, const char *s) {
  size_t len = strlen(s);
  LLVMValueRef init = LLVMConstStringInContext2(c->llc, s, len, 0);
  LLVMValueRef g = LLVMAddGlobal(c->mod, LLVMTypeOf(init), ".str");
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
  LLVMSetAlignment(g, 1);
  return g;
}

/* The declaration of external function `name` (runtime, libc, libm). Kernel names that clash
 * with these are refused up front, so a found function is ours. */
static LLVMValueRef extern_fn(cg *c, const char *name, LLVMTypeRef fty) {
  LLVMValueRef f = LLVMGetNamedFunction(c->mod, name);
  if (!f) {
    f = LLVMAddFunction(c->mod, name, fty);
    LLVMSetLinkage(f, LLVMExternalLinkage);
  }
  return f;
}

static LLVMValueRef call_extern(cg *c, const char *name, LLVMTypeRef ret, LLVMTypeRef *params,
                                unsigned nparams, bool vararg, LLVMValueRef *args, unsigned nargs) {
  LLVMTypeRef fty = LLVMFunctionType(ret, params, nparams, vararg);
  return LLVMBuildCall2(c->b, fty, extern_fn(c, name, fty), args, nargs, "");
}

static void add_fn_attr(cg *c, LLVMValueRef fn, unsigned idx, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(c->llc, kind, 0));
}

static void add_str_attr(cg *c, LLVMValueRef fn, const char *key, const char *val) {
  LLVMAddAttributeAtIndex(
      fn, LLVMAttributeFunctionIndex,
      LLVMCreateStringAttribute(c->llc, key, (unsigned)strlen(key), val, (unsigned)strlen(val)));
}

/* Attributes every generated function carries: the target's CPU and features (the pass
 * pipeline reads them per function), the preferred vector width (LLVM otherwise keeps some
 * AVX-512 CPUs to 256-bit vectors), no unwinding. */
static void set_fn_attrs(cg *c, LLVMValueRef fn) {
  if (c->target->cpu[0]) add_str_attr(c, fn, "target-cpu", c->target->cpu);
  if (c->target->features[0]) add_str_attr(c, fn, "target-features", c->target->features);
  if (c->target->vector_bits > 0) {
    char w[32];
    snprintf(w, sizeof w, "%d", c->target->vector_bits);
    add_str_attr(c, fn, "prefer-vector-width", w);
  }
  add_fn_attr(c, fn, LLVMAttributeFunctionIndex, "nounwind");
}

/* ---- Functions under construction ------------------------------------------------------ */

static void fn_begin(cg *c, cg_fn *f, LLVMValueRef fn) {
  memset(f, 0, sizeof *f);
  f->fn = fn;
  f->allocas = LLVMAppendBasicBlockInContext(c->llc, fn, "entry");
  f->body = LLVMAppendBasicBlockInContext(c->llc, fn, "body");
  LLVMPositionBuilderAtEnd(c->b, f->body);
  c->fn = f;
}

/* Closes the alloca block and releases the bookkeeping. */
static void fn_end(cg *c, cg_fn *f) {
  LLVMPositionBuilderAtEnd(c->ab, f->allocas);
  LLVMBuildBr(c->ab, f->body);
  ir_free(c->ctx, f->heap, sizeof *f->heap * (size_t)f->capheap);
  f->heap = NULL;
  f->nheap = f->capheap = 0;
}

static LLVMValueRef fn_alloca(cg *c, LLVMTypeRef ty, unsigned align, const char *name) {
  LLVMPositionBuilderAtEnd(c->ab, c->fn->allocas);
  LLVMValueRef v = LLVMBuildAlloca(c->ab, ty, name);
  LLVMSetAlignment(v, align);
  return v;
}

static LLVMBasicBlockRef new_block(cg *c, const char *name) {
  return LLVMAppendBasicBlockInContext(c->llc, c->fn->fn, name);
}

/* Whether the current block already ends (after a return). */
static bool block_closed(cg *c) {
  return LLVMGetBasicBlockTerminator(LLVMGetInsertBlock(c->b)) != NULL;
}

static void kernel_error(cg *c, LLVMValueRef msg) {
  LLVMTypeRef p = c->ptr;
  call_extern(c, "kiln_rt_error", c->voidt, &p, 1, false, &msg, 1);
}

/* Where `failed` (i1) holds: report msg (if any) through kiln_rt_error, free the live
 * workspace allocations and return `status`; elsewhere continue after this point. */
static void emit_check(cg *c, LLVMValueRef failed, LLVMValueRef status, const char *msg) {
  LLVMBasicBlockRef bad = new_block(c, "fail"), ok = new_block(c, "ok");
  LLVMBuildCondBr(c->b, failed, bad, ok);
  LLVMPositionBuilderAtEnd(c->b, bad);
  if (msg) kernel_error(c, const_string(c, msg));
  LLVMTypeRef p = c->ptr;
  for (int i = c->fn->nheap - 1; i >= 0; i--)
    call_extern(c, "kiln_rt_workspace_free", c->voidt, &p, 1, false, &c->fn->heap[i], 1);
  LLVMBuildRet(c->b, status);
  LLVMPositionBuilderAtEnd(c->b, ok);
}

static kiln_status push_heap(cg *c, LLVMValueRef p) {
  cg_fn *f = c->fn;
  if (f->nheap == f->capheap) {
    int cap = f->capheap ? f->capheap * 2 : 8;
    LLVMValueRef *h =
        ir_realloc(c->ctx, f->heap, sizeof *h * (size_t)f->capheap, sizeof *h * (size_t)cap);
    if (!h) return KILN_ERR_NOMEM;
    f->heap = h;
    f->capheap = cap;
  }
  f->heap[f->nheap++] = p;
  return KILN_OK;
}

/* ---- Loop metadata --------------------------------------------------------------------- */

static LLVMMetadataRef md_prop(cg *c, const char *key, LLVMValueRef val) {
  LLVMMetadataRef ops[2] = {LLVMMDStringInContext2(c->llc, key, strlen(key)), NULL};
  if (!val) return LLVMMDNodeInContext2(c->llc, ops, 1);
  ops[1] = LLVMValueAsMetadata(val);
  return LLVMMDNodeInContext2(c->llc, ops, 2);
}

/* Attaches a loop ID (a node whose first operand is itself) with the given properties to the
 * loop's back edge. */
static void set_loop_md(cg *c, LLVMValueRef br, LLVMMetadataRef *props, int nprops) {
  if (nprops == 0) return;
  LLVMMetadataRef ops[8];
  LLVMMetadataRef tmp = LLVMTemporaryMDNode(c->llc, NULL, 0);
  ops[0] = tmp;
  for (int i = 0; i < nprops && i < 7; i++) ops[i + 1] = props[i];
  LLVMMetadataRef loop = LLVMMDNodeInContext2(c->llc, ops, (size_t)(nprops < 7 ? nprops : 7) + 1);
  LLVMMetadataReplaceAllUsesWith(tmp, loop);
  LLVMSetMetadata(br, c->md_loop, LLVMMetadataAsValue(c->llc, loop));
}

/* ---- 16-bit floats and exact rounding -------------------------------------------------- */

/* float (lanes as v) -> the bits of the nearest float16 (ties to even), as i16; NaN -> the
 * quiet NaN with v's sign. In hardware where the target has it; else branch-free integer code
 * that vectorizes: overflow -> infinity, tiny values -> subnormals via a float addition that
 * rounds at float16's subnormal quantum 2^-24. */
static LLVMValueRef f32_to_half_bits(cg *c, LLVMValueRef v) {
  unsigned n = ty_lanes(LLVMTypeOf(v));
  LLVMTypeRef it = with_lanes(c->i32, n), ft = with_lanes(c->f32, n);
  LLVMBuilderRef b = c->b;
  if (c->native_f16) {
    /* one instruction (round to nearest even); NaN made the interpreter's quiet NaN */
    LLVMTypeRef ht = with_lanes(LLVMHalfTypeInContext(c->llc), n), st = with_lanes(c->i16, n);
    LLVMValueRef h = LLVMBuildBitCast(b, LLVMBuildFPTrunc(b, v, ht, ""), st, "");
    LLVMValueRef nan =
        LLVMBuildOr(b, LLVMBuildAnd(b, h, ik(c, st, 0x8000), ""), ik(c, st, 0x7e00), "");
    /* the NaN test on the bits: one on the value could become a float16 comparison, which
     * x86 does not have (the vectorizer then keeps vectors narrow) */
    LLVMValueRef mag = LLVMBuildAnd(b, h, ik(c, st, 0x7fff), "");
    return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntUGT, mag, ik(c, st, 0x7c00), ""), nan, h,
                           "");
  }
  LLVMValueRef u = LLVMBuildBitCast(b, v, it, "");
  LLVMValueRef sign = LLVMBuildAnd(b, u, ik(c, it, (long long)0x80000000u), "");
  LLVMValueRef a = LLVMBuildXor(b, u, sign, "");
  /* normal: rebias the exponent and round the 13 dropped bits to nearest even */
  LLVMValueRef odd = LLVMBuildAnd(b, LLVMBuildLShr(b, a, ik(c, it, 13), ""), ik(c, it, 1), "");
  LLVMValueRef norm = LLVMBuildAdd(b, a, ik(c, it, (long long)0xC8000FFFu), "");
  norm = LLVMBuildLShr(b, LLVMBuildAdd(b, norm, odd, ""), ik(c, it, 13), "");
  /* below 2^-14: add 0.5, whose ulp is 2^-24, and take the low bits */
  LLVMValueRef sub = LLVMBuildFAdd(b, LLVMBuildBitCast(b, a, ft, ""), fk(c, ft, 0.5), "");
  sub = LLVMBuildSub(b, LLVMBuildBitCast(b, sub, it, ""), ik(c, it, 0x3f000000), "");
  LLVMValueRef infnan =
      LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntUGT, a, ik(c, it, 0x7f800000), ""),
                      ik(c, it, 0x7e00), ik(c, it, 0x7c00), "");
  LLVMValueRef r =
      LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntULT, a, ik(c, it, 0x38800000), ""), sub, norm, "");
  r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntUGE, a, ik(c, it, 0x477ff000), ""), infnan, r, "");
  r = LLVMBuildOr(b, r, LLVMBuildLShr(b, sign, ik(c, it, 16), ""), "");
  return LLVMBuildTrunc(b, r, with_lanes(c->i16, n), "");
}

/* float16 bits (i16) -> the exact float (in hardware where the target has it). */
static LLVMValueRef half_bits_to_f32(cg *c, LLVMValueRef h) {
  unsigned n = ty_lanes(LLVMTypeOf(h));
  LLVMTypeRef it = with_lanes(c->i32, n), ft = with_lanes(c->f32, n);
  LLVMBuilderRef b = c->b;
  if (c->native_f16)
    return LLVMBuildFPExt(
        b, LLVMBuildBitCast(b, h, with_lanes(LLVMHalfTypeInContext(c->llc), n), ""), ft, "");
  LLVMValueRef x = LLVMBuildZExt(b, h, it, "");
  LLVMValueRef sign = LLVMBuildShl(b, LLVMBuildAnd(b, x, ik(c, it, 0x8000), ""), ik(c, it, 16), "");
  LLVMValueRef em = LLVMBuildAnd(b, x, ik(c, it, 0x7fff), "");
  LLVMValueRef sh = LLVMBuildShl(b, em, ik(c, it, 13), "");
  LLVMValueRef norm = LLVMBuildAdd(b, sh, ik(c, it, 0x38000000), "");
  LLVMValueRef infnan = LLVMBuildAdd(b, sh, ik(c, it, 0x70000000), "");
  LLVMValueRef sub = LLVMBuildFMul(b, LLVMBuildUIToFP(b, em, ft, ""), fk(c, ft, 0x1p-24), "");
  sub = LLVMBuildBitCast(b, sub, it, "");
  LLVMValueRef r =
      LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntUGE, em, ik(c, it, 0x400), ""), norm, sub, "");
  r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntUGE, em, ik(c, it, 0x7c00), ""), infnan, r, "");
  return LLVMBuildBitCast(b, LLVMBuildOr(b, r, sign, ""), ft, "");
}

/* float -> bfloat16 bits, to nearest even; NaN -> quiet NaN. */
static LLVMValueRef f32_to_bf16_bits(cg *c, LLVMValueRef v) {
  unsigned n = ty_lanes(LLVMTypeOf(v));
  LLVMTypeRef it = with_lanes(c->i32, n);
  LLVMBuilderRef b = c->b;
  LLVMValueRef u = LLVMBuildBitCast(b, v, it, "");
  LLVMValueRef lsb = LLVMBuildAnd(b, LLVMBuildLShr(b, u, ik(c, it, 16), ""), ik(c, it, 1), "");
  LLVMValueRef r = LLVMBuildAdd(b, u, LLVMBuildAdd(b, lsb, ik(c, it, 0x7fff), ""), "");
  r = LLVMBuildLShr(b, r, ik(c, it, 16), "");
  LLVMValueRef nan =
      LLVMBuildOr(b,
                  LLVMBuildLShr(b, LLVMBuildAnd(b, u, ik(c, it, (long long)0x80000000u), ""),
                                ik(c, it, 16), ""),
                  ik(c, it, 0x7fc0), "");
  r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNO, v, v, ""), nan, r, "");
  return LLVMBuildTrunc(b, r, with_lanes(c->i16, n), "");
}

static LLVMValueRef bf16_bits_to_f32(cg *c, LLVMValueRef h) {
  unsigned n = ty_lanes(LLVMTypeOf(h));
  LLVMValueRef x = LLVMBuildZExt(c->b, h, with_lanes(c->i32, n), "");
  x = LLVMBuildShl(c->b, x, ik(c, with_lanes(c->i32, n), 16), "");
  return LLVMBuildBitCast(c->b, x, with_lanes(c->f32, n), "");
}

/* v (float registers) rounded to t's precision when t is a 16-bit float. */
static LLVMValueRef round_to(cg *c, LLVMValueRef v, kiln_dtype t) {
  if (!v) return NULL;
  if (is_f16(t)) return half_bits_to_f32(c, f32_to_half_bits(c, v));
  if (is_bf16(t)) return bf16_bits_to_f32(c, f32_to_bf16_bits(c, v));
  return v;
}

/* double -> float rounded to odd (truncate, then set the last bit if anything was lost). A
 * second rounding of the result to any format with at most 22 significant bits is then
 * correct, so double -> float16 / bfloat16 goes through here. */
static LLVMValueRef f64_to_f32_odd(cg *c, LLVMValueRef d) {
  unsigned n = ty_lanes(LLVMTypeOf(d));
  LLVMTypeRef ft = with_lanes(c->f32, n), it = with_lanes(c->i32, n), dt = with_lanes(c->f64, n);
  LLVMBuilderRef b = c->b;
  LLVMValueRef f = LLVMBuildFPTrunc(b, d, ft, "");
  LLVMValueRef back = LLVMBuildFPExt(b, f, dt, "");
  LLVMValueRef inexact = LLVMBuildFCmp(b, LLVMRealONE, back, d, "");
  LLVMValueRef up =
      LLVMBuildFCmp(b, LLVMRealOGT, intrin1(c, "llvm.fabs", back), intrin1(c, "llvm.fabs", d), "");
  LLVMValueRef bits = LLVMBuildBitCast(b, f, it, "");
  bits = LLVMBuildSub(b, bits, LLVMBuildZExt(b, LLVMBuildAnd(b, inexact, up, ""), it, ""), "");
  bits = LLVMBuildOr(b, bits, LLVMBuildZExt(b, inexact, it, ""), "");
  return LLVMBuildBitCast(b, bits, ft, "");
}

/* A double result converted to the register form of float type t, rounded once. */
static LLVMValueRef from_double(cg *c, LLVMValueRef d, kiln_dtype t) {
  unsigned n = ty_lanes(LLVMTypeOf(d));
  if (is_f64(t)) return d;
  if (is_small_float(t)) return round_to(c, f64_to_f32_odd(c, d), t);
  return LLVMBuildFPTrunc(c->b, d, with_lanes(c->f32, n), "");
}

static LLVMValueRef to_double(cg *c, LLVMValueRef v) {
  unsigned n = ty_lanes(LLVMTypeOf(v));
  if (ty_elem(LLVMTypeOf(v)) == c->f64) return v;
  return LLVMBuildFPExt(c->b, v, with_lanes(c->f64, n), "");
}

/* A 64-bit integer (unsigned when uns) as a double rounded to odd: the top 53 significant
 * bits, the last one set if any lower bit was. Then rounding on to float (odd) and to a 16-bit
 * format is correct, as the interpreter's int_to_double_odd. */
static LLVMValueRef i64_to_f64_odd(cg *c, LLVMValueRef v, bool uns) {
  unsigned n = ty_lanes(LLVMTypeOf(v));
  LLVMTypeRef it = with_lanes(c->i64, n), dt = with_lanes(c->f64, n);
  LLVMBuilderRef b = c->b;
  LLVMValueRef m = v, neg = NULL;
  if (!uns) {
    neg = LLVMBuildICmp(b, LLVMIntSLT, v, ik(c, it, 0), "");
    m = intrin2(c, "llvm.abs", v, LLVMConstInt(c->i1, 0, 0)); /* INT64_MIN stays 2^63 unsigned */
  }
  LLVMValueRef lz = intrin2(c, "llvm.ctlz", m, LLVMConstInt(c->i1, 0, 0));
  LLVMValueRef big = LLVMBuildICmp(b, LLVMIntULT, lz, ik(c, it, 11), "");
  LLVMValueRef sh =
      LLVMBuildSelect(b, big, LLVMBuildSub(b, ik(c, it, 11), lz, ""), ik(c, it, 0), "");
  LLVMValueRef t = LLVMBuildLShr(b, m, sh, "");
  LLVMValueRef lowmask = LLVMBuildSub(b, LLVMBuildShl(b, ik(c, it, 1), sh, ""), ik(c, it, 1), "");
  LLVMValueRef lost =
      LLVMBuildICmp(b, LLVMIntNE, LLVMBuildAnd(b, m, lowmask, ""), ik(c, it, 0), "");
  t = LLVMBuildOr(b, t, LLVMBuildZExt(b, lost, it, ""), "");
  LLVMValueRef d = LLVMBuildUIToFP(b, t, dt, "");
  LLVMValueRef scale = LLVMBuildShl(b, LLVMBuildAdd(b, sh, ik(c, it, 1023), ""), ik(c, it, 52), "");
  d = LLVMBuildFMul(b, d, LLVMBuildBitCast(b, scale, dt, ""), "");
  if (neg) d = LLVMBuildSelect(b, neg, LLVMBuildFNeg(b, d, ""), d, "");
  return d;
}

/* C-side rounding of a constant to float16 / bfloat16, the same algorithms as the emitted
 * code: round to odd to float, then to nearest even. Returns the exact value. */
static double round_small_const(double x, kiln_dtype t) {
  float f = (float)x;
  if (!isnan(x) && (double)f != x) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if (fabs((double)f) > fabs(x)) u -= 1;
    u |= 1;
    memcpy(&f, &u, 4);
  }
  uint32_t u;
  memcpy(&u, &f, 4);
  if (is_bf16(t)) {
    uint32_t r =
        isnan(f) ? ((u & 0x80000000u) >> 16) | 0x7fc0u : (u + 0x7fffu + ((u >> 16) & 1)) >> 16;
    r <<= 16;
    memcpy(&f, &r, 4);
    return f;
  }
  uint32_t sign = u & 0x80000000u, a = u ^ sign, h;
  if (a >= 0x477ff000u) {
    h = a > 0x7f800000u ? 0x7e00u : 0x7c00u;
  } else if (a < 0x38800000u) {
    float af;
    memcpy(&af, &a, 4);
    af += 0.5f;
    uint32_t ab;
    memcpy(&ab, &af, 4);
    h = ab - 0x3f000000u;
  } else {
    h = (a + 0xC8000FFFu + ((a >> 13) & 1)) >> 13;
  }
  /* back to float */
  uint32_t em = h & 0x7fff, r;
  if (em >= 0x7c00)
    r = (em << 13) + 0x70000000u;
  else if (em >= 0x400)
    r = (em << 13) + 0x38000000u;
  else {
    float s = (float)em * 0x1p-24f;
    memcpy(&r, &s, 4);
  }
  r |= sign;
  memcpy(&f, &r, 4);
  return f;
}

/* Register value <-> memory representation of scalar type t (lanes from the value). */
static LLVMValueRef to_mem(cg *c, LLVMValueRef v, kiln_dtype t) {
  unsigned n = ty_lanes(LLVMTypeOf(v));
  if (t.code == KILN_TYPE_BOOL) return LLVMBuildZExt(c->b, v, with_lanes(c->i8, n), "");
  if (is_f16(t)) return f32_to_half_bits(c, v);
  if (is_bf16(t)) return f32_to_bf16_bits(c, v);
  return v;
}

static LLVMValueRef from_mem(cg *c, LLVMValueRef v, kiln_dtype t) {
  unsigned n = ty_lanes(LLVMTypeOf(v));
  if (t.code == KILN_TYPE_BOOL)
    return LLVMBuildICmp(c->b, LLVMIntNE, v, ik(c, with_lanes(c->i8, n), 0), "");
  if (is_f16(t)) return half_bits_to_f32(c, v);
  if (is_bf16(t)) return bf16_bits_to_f32(c, v);
  return v;
}

/* ---- Math functions (float32, any lanes) ------------------------------------------------ */

/* Polynomials (lowest degree first). exp: Taylor to degree 7 on |r| <= ln2/2. The others are
 * Chebyshev interpolants fitted for kiln (near-minimax): erf(x)/x in s = x^2 on [0, 1];
 * erfc(x) * exp(x^2) in t = 1/x on x in [1, 4]; tanh(x)/x in s = x^2 on |x| < 0.625. log uses
 * the series of 2 atanh(z) = log((1+z)/(1-z)) in s = z^2 (|z| < 0.172). */
static const double EXP_P[] = {1.0,      1.0,       1.0 / 2,   1.0 / 6,
                               1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040};
static const double LOG_P[] = {2.0 / 3, 2.0 / 5, 2.0 / 7, 2.0 / 9, 2.0 / 11};
static const double ERF_S[] = {1.1283791658483504,    -0.37612626666719623, 0.11283594715152365,
                               -0.026854212010276414, 0.005189087422780046, -0.0008016864281817756,
                               7.875875046790628e-05};
static const double ERFC_T[] = {0.00015165568421751625, 0.5612146380182913,  0.024847521034718816,
                                -0.3948595869595088,    0.28258979100224574, 0.1454773525333279,
                                -0.4298337543257368,    0.3608618645822765,  -0.1478984463675468,
                                0.025032543502541714};
static const double TANH_S[] = {0.9999999960227217,   -0.33333259862951214, 0.1333111405577918,
                                -0.05372010766337315, 0.020588191475118,    -0.00565713520625};
#define NCOEF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static LLVMValueRef horner(cg *c, const double *p, int n, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef r = fk(c, t, p[n - 1]);
  for (int i = n - 2; i >= 0; i--) r = fmuladd(c, r, x, fk(c, t, p[i]));
  return r;
}

static LLVMValueRef select_nan(cg *c, LLVMValueRef x, LLVMValueRef r) {
  return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealUNO, x, x, ""), x, r, "");
}

/* exp(x) = 2^n * p(r), x = n ln2 + r. Rounding to an integer uses the 1.5 * 2^23 trick (plain
 * adds, no libcall on any target); 2^n is applied in two halves so that subnormal results
 * round once. */
static LLVMValueRef emit_exp(cg *c, LLVMValueRef x0) {
  LLVMTypeRef t = LLVMTypeOf(x0), it = with_lanes(c->i32, ty_lanes(t));
  LLVMBuilderRef b = c->b;
  LLVMValueRef x = intrin2(c, "llvm.maxnum", x0, fk(c, t, -110.0));
  x = intrin2(c, "llvm.minnum", x, fk(c, t, 89.0));
  LLVMValueRef tt = LLVMBuildFMul(b, x, fk(c, t, 1.4426950408889634), "");
  LLVMValueRef nf =
      LLVMBuildFSub(b, LLVMBuildFAdd(b, tt, fk(c, t, 12582912.0), ""), fk(c, t, 12582912.0), "");
  LLVMValueRef r = fmuladd(c, nf, fk(c, t, -0.693359375), x);
  r = fmuladd(c, nf, fk(c, t, -(0.69314718055994530942 - 0.693359375)), r);
  LLVMValueRef p = horner(c, EXP_P, NCOEF(EXP_P), r);
  LLVMValueRef n = LLVMBuildFPToSI(b, nf, it, "");
  LLVMValueRef n1 = LLVMBuildAShr(b, n, ik(c, it, 1), "");
  LLVMValueRef n2 = LLVMBuildSub(b, n, n1, "");
  LLVMValueRef s1 = LLVMBuildBitCast(
      b, LLVMBuildShl(b, LLVMBuildAdd(b, n1, ik(c, it, 127), ""), ik(c, it, 23), ""), t, "");
  LLVMValueRef s2 = LLVMBuildBitCast(
      b, LLVMBuildShl(b, LLVMBuildAdd(b, n2, ik(c, it, 127), ""), ik(c, it, 23), ""), t, "");
  LLVMValueRef res = LLVMBuildFMul(b, LLVMBuildFMul(b, p, s1, ""), s2, "");
  return select_nan(c, x0, res);
}

/* log(x) = e ln2 + 2 atanh((m-1)/(m+1)) with x = m 2^e, m in [sqrt(1/2), sqrt(2)];
 * subnormals are scaled up first; 0, negatives, infinity and NaN are selected at the end. */
static LLVMValueRef emit_log(cg *c, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x), it = with_lanes(c->i32, ty_lanes(t));
  LLVMBuilderRef b = c->b;
  LLVMValueRef tiny = LLVMBuildFCmp(b, LLVMRealOLT, x, fk(c, t, 0x1p-126), "");
  LLVMValueRef xs = LLVMBuildSelect(b, tiny, LLVMBuildFMul(b, x, fk(c, t, 0x1p23), ""), x, "");
  LLVMValueRef ebias = LLVMBuildSelect(b, tiny, ik(c, it, -150), ik(c, it, -127), "");
  LLVMValueRef bits = LLVMBuildBitCast(b, xs, it, "");
  LLVMValueRef e = LLVMBuildAnd(b, LLVMBuildLShr(b, bits, ik(c, it, 23), ""), ik(c, it, 0xff), "");
  e = LLVMBuildAdd(b, e, ebias, "");
  LLVMValueRef m =
      LLVMBuildOr(b, LLVMBuildAnd(b, bits, ik(c, it, 0x7fffff), ""), ik(c, it, 0x3f800000), "");
  m = LLVMBuildBitCast(b, m, t, "");
  LLVMValueRef big = LLVMBuildFCmp(b, LLVMRealOGT, m, fk(c, t, 1.41421356), "");
  m = LLVMBuildSelect(b, big, LLVMBuildFMul(b, m, fk(c, t, 0.5), ""), m, "");
  e = LLVMBuildAdd(b, e, LLVMBuildZExt(b, big, it, ""), "");
  LLVMValueRef z = LLVMBuildFDiv(b, LLVMBuildFSub(b, m, fk(c, t, 1.0), ""),
                                 LLVMBuildFAdd(b, m, fk(c, t, 1.0), ""), "");
  LLVMValueRef s = LLVMBuildFMul(b, z, z, "");
  LLVMValueRef p = horner(c, LOG_P, NCOEF(LOG_P), s);
  LLVMValueRef lm =
      fmuladd(c, LLVMBuildFMul(b, z, s, ""), p, LLVMBuildFMul(b, z, fk(c, t, 2.0), ""));
  LLVMValueRef ef = LLVMBuildSIToFP(b, e, t, "");
  LLVMValueRef r = fmuladd(c, ef, fk(c, t, 0.693359375),
                           fmuladd(c, ef, fk(c, t, 0.69314718055994530942 - 0.693359375), lm));
  r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOEQ, x, fk(c, t, 0.0), ""), fk(c, t, -INFINITY),
                      r, "");
  r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, fk(c, t, 0.0), ""), fk(c, t, NAN), r, "");
  r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOEQ, x, fk(c, t, INFINITY), ""), x, r, "");
  return select_nan(c, x, r);
}

/* tanh: x p(x^2) below 0.625, 1 - 2 / (exp(2|x|) + 1) with x's sign above. */
static LLVMValueRef emit_tanh(cg *c, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMBuilderRef b = c->b;
  LLVMValueRef a = intrin1(c, "llvm.fabs", x);
  LLVMValueRef small =
      LLVMBuildFMul(b, x, horner(c, TANH_S, NCOEF(TANH_S), LLVMBuildFMul(b, x, x, "")), "");
  LLVMValueRef e = emit_exp(c, LLVMBuildFMul(b, a, fk(c, t, 2.0), ""));
  LLVMValueRef big = LLVMBuildFSub(
      b, fk(c, t, 1.0), LLVMBuildFDiv(b, fk(c, t, 2.0), LLVMBuildFAdd(b, e, fk(c, t, 1.0), ""), ""),
      "");
  big = intrin2(c, "llvm.copysign", big, x);
  return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, a, fk(c, t, 0.625), ""), small, big, "");
}

/* sigmoid = 1 / (1 + exp(-x)), written with e = exp(-|x|) (never overflows) as
 * (x < 0 ? e : 1) / (1 + e). */
static LLVMValueRef emit_sigmoid(cg *c, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMBuilderRef b = c->b;
  LLVMValueRef e = emit_exp(c, LLVMBuildFNeg(b, intrin1(c, "llvm.fabs", x), ""));
  LLVMValueRef num =
      LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, fk(c, t, 0.0), ""), e, fk(c, t, 1.0), "");
  return LLVMBuildFDiv(b, num, LLVMBuildFAdd(b, e, fk(c, t, 1.0), ""), "");
}

/* erf: x p(x^2) below 1; 1 - exp(-x^2) q(1/x) up to 4 (erf is 1.0f beyond), x's sign. */
static LLVMValueRef emit_erf(cg *c, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMBuilderRef b = c->b;
  LLVMValueRef a = intrin1(c, "llvm.fabs", x);
  LLVMValueRef small =
      LLVMBuildFMul(b, x, horner(c, ERF_S, NCOEF(ERF_S), LLVMBuildFMul(b, x, x, "")), "");
  LLVMValueRef ac = intrin2(c, "llvm.minnum", a, fk(c, t, 4.0));
  LLVMValueRef q = horner(c, ERFC_T, NCOEF(ERFC_T), LLVMBuildFDiv(b, fk(c, t, 1.0), ac, ""));
  LLVMValueRef e = emit_exp(c, LLVMBuildFNeg(b, LLVMBuildFMul(b, ac, ac, ""), ""));
  LLVMValueRef big = LLVMBuildFSub(b, fk(c, t, 1.0), LLVMBuildFMul(b, e, q, ""), "");
  big = intrin2(c, "llvm.copysign", big, x);
  LLVMValueRef r =
      LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, a, fk(c, t, 1.0), ""), small, big, "");
  return select_nan(c, x, r);
}

/* A libm function of one or two doubles, lane by lane (float64 exp, log, tanh, erf). */
static LLVMValueRef libm_call(cg *c, const char *name, LLVMValueRef x) {
  LLVMTypeRef d = c->f64;
  unsigned n = ty_lanes(LLVMTypeOf(x));
  if (n == 1) return call_extern(c, name, d, &d, 1, false, &x, 1);
  LLVMValueRef r = LLVMGetPoison(LLVMTypeOf(x));
  for (unsigned i = 0; i < n; i++) {
    LLVMValueRef idx = LLVMConstInt(c->i32, i, 0);
    LLVMValueRef lane = LLVMBuildExtractElement(c->b, x, idx, "");
    r = LLVMBuildInsertElement(c->b, r, call_extern(c, name, d, &d, 1, false, &lane, 1), idx, "");
  }
  return r;
}

/* ---- Expressions ----------------------------------------------------------------------- */

static LLVMValueRef emit_expr(cg *c, const ir_node *e);

static LLVMValueRef cg_fail(cg *c, const ir_node *n, kiln_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records "codegen: function 'f': <message>" at n's span; returns NULL for expressions. */
static LLVMValueRef cg_fail(cg *c, const ir_node *n, kiln_status code, const char *fmt, ...) {
  char msg[800];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ir_fail(c->ctx, n ? n->span : IR_NO_SPAN, code, "codegen: function '%s': %s",
          c->func ? c->func->name : "?", msg);
  return NULL;
}

static kiln_status cg_status(cg *c) { return c->ctx->code ? c->ctx->code : KILN_ERR_INTERNAL; }

/* An integer value (index) widened to i64 lanes as its dtype says. */
static LLVMValueRef to_i64(cg *c, LLVMValueRef v, kiln_dtype t) {
  LLVMTypeRef want = with_lanes(c->i64, ty_lanes(LLVMTypeOf(v)));
  if (LLVMTypeOf(v) == want) return v;
  return t.code == KILN_TYPE_INT ? LLVMBuildSExt(c->b, v, want, "")
                                 : LLVMBuildZExt(c->b, v, want, "");
}

/* Integer division of type t: DIV/MOD truncate, FLOORDIV/FLOORMOD round toward -inf for
 * signed types. A zero divisor gives quotient 0 and remainder a; -1 (signed) gives -a and 0,
 * as the interpreter wraps INT_MIN / -1. With a constant divisor the guards fold away. */
static LLVMValueRef emit_int_div(cg *c, int kind, LLVMValueRef a, LLVMValueRef d, kiln_dtype t) {
  LLVMBuilderRef b = c->b;
  LLVMTypeRef ty = LLVMTypeOf(a);
  bool uns = t.code != KILN_TYPE_INT;
  LLVMValueRef zero = ik(c, ty, 0), one = ik(c, ty, 1);
  LLVMValueRef isz = LLVMBuildICmp(b, LLVMIntEQ, d, zero, "");
  LLVMValueRef ism1 = uns ? NULL : LLVMBuildICmp(b, LLVMIntEQ, d, ik(c, ty, -1), "");
  LLVMValueRef bad = uns ? isz : LLVMBuildOr(b, isz, ism1, "");
  LLVMValueRef ds = LLVMBuildSelect(b, bad, one, d, "");
  LLVMValueRef q = uns ? LLVMBuildUDiv(b, a, ds, "") : LLVMBuildSDiv(b, a, ds, "");
  LLVMValueRef r = uns ? LLVMBuildURem(b, a, ds, "") : LLVMBuildSRem(b, a, ds, "");
  if (!uns) {
    q = LLVMBuildSelect(b, ism1, LLVMBuildSub(b, zero, a, ""), q, "");
    r = LLVMBuildSelect(b, ism1, zero, r, "");
    if (kind == IR_FLOORDIV || kind == IR_FLOORMOD) {
      /* the truncated quotient was rounded up when the remainder's sign differs from the
       * divisor's: step down */
      LLVMValueRef nz = LLVMBuildICmp(b, LLVMIntNE, r, zero, "");
      LLVMValueRef diff = LLVMBuildICmp(b, LLVMIntSLT, LLVMBuildXor(b, r, d, ""), zero, "");
      LLVMValueRef adj = LLVMBuildAnd(b, nz, diff, "");
      q = LLVMBuildSelect(b, adj, LLVMBuildSub(b, q, one, ""), q, "");
      r = LLVMBuildSelect(b, adj, LLVMBuildAdd(b, r, d, ""), r, "");
    }
  }
  q = LLVMBuildSelect(b, isz, zero, q, "");
  r = LLVMBuildSelect(b, isz, a, r, "");
  return kind == IR_DIV || kind == IR_FLOORDIV ? q : r;
}

static LLVMValueRef emit_binary(cg *c, const ir_binary *x) {
  LLVMValueRef a = emit_expr(c, x->a), d = emit_expr(c, x->b);
  if (!a || !d) return NULL;
  LLVMBuilderRef b = c->b;
  kiln_dtype t = ir_dt_scalar(x->a->dtype);
  int kind = x->h.kind;
  if (ir_dt_is_float(t)) {
    switch (kind) {
    case IR_ADD: return round_to(c, fm(c, LLVMBuildFAdd(b, a, d, "")), t);
    case IR_SUB: return round_to(c, fm(c, LLVMBuildFSub(b, a, d, "")), t);
    case IR_MUL: return round_to(c, fm(c, LLVMBuildFMul(b, a, d, "")), t);
    case IR_DIV: return round_to(c, fm(c, LLVMBuildFDiv(b, a, d, "")), t);
    case IR_MOD: return fm(c, LLVMBuildFRem(b, a, d, "")); /* exact: no rounding */
    case IR_FLOORDIV: {
      /* floor of the double quotient, rounded once: as the interpreter */
      LLVMValueRef q = LLVMBuildFDiv(b, to_double(c, a), to_double(c, d), "");
      return from_double(c, intrin1(c, "llvm.floor", q), t);
    }
    case IR_FLOORMOD: {
      LLVMTypeRef ty = LLVMTypeOf(a);
      LLVMValueRef r = fm(c, LLVMBuildFRem(b, a, d, ""));
      LLVMValueRef nz = LLVMBuildFCmp(b, LLVMRealUNE, r, fk(c, ty, 0), "");
      LLVMValueRef rneg = LLVMBuildFCmp(b, LLVMRealOLT, r, fk(c, ty, 0), "");
      LLVMValueRef dneg = LLVMBuildFCmp(b, LLVMRealOLT, d, fk(c, ty, 0), "");
      LLVMValueRef adj = LLVMBuildAnd(b, nz, LLVMBuildXor(b, rneg, dneg, ""), "");
      return LLVMBuildSelect(b, adj, round_to(c, fm(c, LLVMBuildFAdd(b, r, d, "")), t), r, "");
    }
    case IR_MIN: return fm(c, intrin2(c, "llvm.minnum", a, d));
    case IR_MAX: return fm(c, intrin2(c, "llvm.maxnum", a, d));
    case IR_EQ: return fm(c, LLVMBuildFCmp(b, LLVMRealOEQ, a, d, ""));
    case IR_NE: return fm(c, LLVMBuildFCmp(b, LLVMRealUNE, a, d, "")); /* NaN != x holds */
    case IR_LT: return fm(c, LLVMBuildFCmp(b, LLVMRealOLT, a, d, ""));
    case IR_LE: return fm(c, LLVMBuildFCmp(b, LLVMRealOLE, a, d, ""));
    case IR_GT: return fm(c, LLVMBuildFCmp(b, LLVMRealOGT, a, d, ""));
    case IR_GE: return fm(c, LLVMBuildFCmp(b, LLVMRealOGE, a, d, ""));
    }
    return cg_fail(c, &x->h, KILN_ERR_INTERNAL, "%s is not a float operation", ir_kind_name(kind));
  }
  bool uns = t.code != KILN_TYPE_INT; /* bool compares as unsigned */
  switch (kind) {
  case IR_ADD: return LLVMBuildAdd(b, a, d, "");
  case IR_SUB: return LLVMBuildSub(b, a, d, "");
  case IR_MUL: return LLVMBuildMul(b, a, d, "");
  case IR_DIV:
  case IR_MOD:
  case IR_FLOORDIV:
  case IR_FLOORMOD: return emit_int_div(c, kind, a, d, t);
  case IR_MIN: return intrin2(c, uns ? "llvm.umin" : "llvm.smin", a, d);
  case IR_MAX: return intrin2(c, uns ? "llvm.umax" : "llvm.smax", a, d);
  case IR_EQ: return LLVMBuildICmp(b, LLVMIntEQ, a, d, "");
  case IR_NE: return LLVMBuildICmp(b, LLVMIntNE, a, d, "");
  case IR_LT: return LLVMBuildICmp(b, uns ? LLVMIntULT : LLVMIntSLT, a, d, "");
  case IR_LE: return LLVMBuildICmp(b, uns ? LLVMIntULE : LLVMIntSLE, a, d, "");
  case IR_GT: return LLVMBuildICmp(b, uns ? LLVMIntUGT : LLVMIntSGT, a, d, "");
  case IR_GE: return LLVMBuildICmp(b, uns ? LLVMIntUGE : LLVMIntSGE, a, d, "");
  case IR_AND: return LLVMBuildAnd(b, a, d, "");
  case IR_OR: return LLVMBuildOr(b, a, d, "");
  }
  return cg_fail(c, &x->h, KILN_ERR_INTERNAL, "%s is not an integer operation", ir_kind_name(kind));
}

/* Converts v (lanes n) from type `from` to type `to`, as the interpreter's convert(). */
static LLVMValueRef emit_convert(cg *c, LLVMValueRef v, kiln_dtype from, kiln_dtype to) {
  LLVMBuilderRef b = c->b;
  unsigned n = ty_lanes(LLVMTypeOf(v));
  LLVMTypeRef T = with_lanes(scalar_reg_type(c, to), n);
  bool ff = ir_dt_is_float(from), tf = ir_dt_is_float(to);
  if (ff && tf) {
    if (from.code == to.code && from.bits == to.bits) return v;
    if (is_f64(to)) return to_double(c, v);
    if (is_f64(from)) return from_double(c, v, to);
    return round_to(c, v, to); /* float32 / float16 / bfloat16 in float registers */
  }
  if (ff) {
    if (to.code == KILN_TYPE_BOOL)
      return LLVMBuildFCmp(b, LLVMRealUNE, v, fk(c, LLVMTypeOf(v), 0), "");
    LLVMTypeRef tys[2] = {T, LLVMTypeOf(v)};
    return intrin(c, to.code == KILN_TYPE_INT ? "llvm.fptosi.sat" : "llvm.fptoui.sat", tys, 2, &v,
                  1);
  }
  bool uns = from.code != KILN_TYPE_INT;
  if (tf) {
    if (!is_small_float(to))
      return uns ? LLVMBuildUIToFP(b, v, T, "") : LLVMBuildSIToFP(b, v, T, "");
    LLVMValueRef f;
    if (from.code == KILN_TYPE_BOOL || from.bits <= 16) {
      f = uns ? LLVMBuildUIToFP(b, v, T, "") : LLVMBuildSIToFP(b, v, T, ""); /* exact */
    } else {
      LLVMValueRef d = from.bits == 32 ? (uns ? LLVMBuildUIToFP(b, v, with_lanes(c->f64, n), "")
                                              : LLVMBuildSIToFP(b, v, with_lanes(c->f64, n), ""))
                                       : i64_to_f64_odd(c, v, uns);
      f = f64_to_f32_odd(c, d);
    }
    return round_to(c, f, to);
  }
  /* integer or bool to integer or bool: wrap */
  if (to.code == KILN_TYPE_BOOL) return LLVMBuildICmp(b, LLVMIntNE, v, ik(c, LLVMTypeOf(v), 0), "");
  unsigned fb = from.code == KILN_TYPE_BOOL ? 1 : from.bits, tb = to.bits;
  if (tb < fb) return LLVMBuildTrunc(b, v, T, "");
  if (tb > fb) return uns ? LLVMBuildZExt(b, v, T, "") : LLVMBuildSExt(b, v, T, "");
  return v;
}

static LLVMValueRef emit_call(cg *c, const ir_call *x) {
  LLVMValueRef a[3] = {NULL, NULL, NULL};
  for (int i = 0; i < x->nargs && i < 3; i++)
    if (!(a[i] = emit_expr(c, x->args[i]))) return NULL;
  kiln_dtype t = ir_dt_scalar(x->args[0]->dtype);
  LLVMBuilderRef b = c->b;
  if (ir_dt_is_int(t)) { /* fabs is the one intrinsic on integers; INT_MIN stays */
    if (t.code != KILN_TYPE_INT) return a[0];
    return intrin2(c, "llvm.abs", a[0], LLVMConstInt(c->i1, 0, 0));
  }
  bool f64 = is_f64(t);
  LLVMTypeRef ty = LLVMTypeOf(a[0]);
  switch ((ir_intrinsic)x->op) {
  case IR_OP_EXP: return f64 ? libm_call(c, "exp", a[0]) : round_to(c, emit_exp(c, a[0]), t);
  case IR_OP_LOG: return f64 ? libm_call(c, "log", a[0]) : round_to(c, emit_log(c, a[0]), t);
  case IR_OP_TANH: return f64 ? libm_call(c, "tanh", a[0]) : round_to(c, emit_tanh(c, a[0]), t);
  case IR_OP_ERF: return f64 ? libm_call(c, "erf", a[0]) : round_to(c, emit_erf(c, a[0]), t);
  case IR_OP_SIGMOID:
    if (f64) {
      LLVMValueRef e = libm_call(c, "exp", LLVMBuildFNeg(b, a[0], ""));
      return LLVMBuildFDiv(b, fk(c, ty, 1.0), LLVMBuildFAdd(b, fk(c, ty, 1.0), e, ""), "");
    }
    return round_to(c, emit_sigmoid(c, a[0]), t);
  case IR_OP_SQRT: return round_to(c, fm(c, intrin1(c, "llvm.sqrt", a[0])), t);
  case IR_OP_RSQRT:
    if (f64 || !c->target->fast_math) {
      /* 1 / sqrt in double, rounded once (bit-exact with the interpreter) */
      LLVMValueRef dd = to_double(c, a[0]);
      LLVMValueRef s = intrin1(c, "llvm.sqrt", dd);
      return from_double(c, LLVMBuildFDiv(b, fk(c, LLVMTypeOf(dd), 1.0), s, ""), t);
    }
    return round_to(
        c, fm(c, LLVMBuildFDiv(b, fk(c, ty, 1.0), fm(c, intrin1(c, "llvm.sqrt", a[0])), "")), t);
  case IR_OP_POW:
    return from_double(c, fm(c, intrin2(c, "llvm.pow", to_double(c, a[0]), to_double(c, a[1]))), t);
  case IR_OP_FABS: return intrin1(c, "llvm.fabs", a[0]);
  case IR_OP_FLOOR: return intrin1(c, "llvm.floor", a[0]);
  case IR_OP_CEIL: return intrin1(c, "llvm.ceil", a[0]);
  case IR_OP_ROUND: return intrin1(c, "llvm.nearbyint", a[0]); /* half to even */
  case IR_OP_FMA: {
    if (is_small_float(t)) {
      LLVMValueRef d[3] = {to_double(c, a[0]), to_double(c, a[1]), to_double(c, a[2])};
      LLVMTypeRef dt = LLVMTypeOf(d[0]);
      return from_double(c, intrin(c, "llvm.fma", &dt, 1, d, 3), t);
    }
    return intrin(c, "llvm.fma", &ty, 1, a, 3);
  }
  case IR_OP_COUNT: break;
  }
  return cg_fail(c, &x->h, KILN_ERR_INTERNAL, "unknown intrinsic %d", (int)x->op);
}

/* ---- Memory accesses ------------------------------------------------------------------- */

static cg_buf *buf_of(cg *c, const ir_node *site, const ir_buffer *b) {
  cg_buf *cb = ir_ptrmap_get(&c->bufs, b);
  if (!cb) cg_fail(c, site, KILN_ERR_INTERNAL, "buffer '%s' has no storage", b->name);
  return cb;
}

/* The dimension whose index is ramp(base, s, lanes), s a positive constant, over a stride-1
 * dimension while every other index is a scalar: then the access reads elements s apart
 * (contiguous for s = 1) and *step receives s. -1 otherwise. */
static int ramp_dim(const cg_buf *cb, int n, ir_expr *const *idx, int64_t *step) {
  int dim = -1;
  for (int d = 0; d < n; d++) {
    if (idx[d]->dtype.lanes == 1) continue;
    if (dim >= 0 || idx[d]->kind != IR_RAMP) return -1;
    const ir_int_imm *s = ir_as_int(((const ir_ramp *)idx[d])->stride);
    if (!s || s->value < 1) return -1;
    LLVMValueRef st = cb->strides[d];
    if (!LLVMIsAConstantInt(st) || LLVMConstIntGetSExtValue(st) != 1) return -1;
    dim = d;
    *step = s->value;
  }
  return dim;
}

/* The dimension of a contiguous vector access (ramp_dim with step 1), or -1. */
static int contiguous_dim(const cg_buf *cb, int n, ir_expr *const *idx) {
  int64_t step = 0;
  int d = ramp_dim(cb, n, idx, &step);
  return step == 1 ? d : -1;
}

/* The element offset (i64, or a vector of them) of an access; with ramp_dim >= 0 that
 * dimension's ramp contributes only its base (the offset of lane 0). */
static LLVMValueRef access_offset(cg *c, const cg_buf *cb, int n, ir_expr *const *idx,
                                  int ramp_dim) {
  LLVMValueRef off = NULL;
  for (int d = 0; d < n; d++) {
    const ir_node *ie = d == ramp_dim ? ((const ir_ramp *)idx[d])->base : idx[d];
    LLVMValueRef iv = emit_expr(c, ie);
    if (!iv) return NULL;
    iv = to_i64(c, iv, ie->dtype);
    unsigned lanes = ty_lanes(LLVMTypeOf(iv));
    LLVMValueRef term = LLVMBuildMul(c->b, iv, match_lanes(c, cb->strides[d], lanes), "");
    if (!off) {
      off = term;
      continue;
    }
    unsigned l = ty_lanes(LLVMTypeOf(off)) > lanes ? ty_lanes(LLVMTypeOf(off)) : lanes;
    off = LLVMBuildAdd(c->b, match_lanes(c, off, l), match_lanes(c, term, l), "");
  }
  return off ? off : LLVMConstInt(c->i64, 0, 0);
}

static LLVMValueRef all_true(cg *c, unsigned lanes) { return ik(c, with_lanes(c->i1, lanes), 1); }

/* Loads lanes of a buffer. Under a lane mask only the selected lanes are read (masked loads;
 * a scalar load is done when any lane is selected), the others are 0. */
static LLVMValueRef emit_load(cg *c, const ir_load *x) {
  cg_buf *cb = buf_of(c, &x->h, x->buffer);
  if (!cb) return NULL;
  kiln_dtype et = ir_dt_scalar(x->buffer->h.dtype);
  unsigned lanes = x->h.dtype.lanes;
  LLVMTypeRef mty = mem_type(c, et);
  unsigned align = elem_bytes(et);
  LLVMValueRef al = LLVMConstInt(c->i32, align, 0);
  int64_t step = 0;
  int rd = lanes > 1 ? ramp_dim(cb, x->nindices, x->indices, &step) : -1;
  /* elements a small constant step apart (a strided convolution's input row): one
   * contiguous load of the span from the first to the last element read, then a shuffle
   * picking every step-th, instead of a gather; the span ends at the last element the
   * program reads, so nothing outside the access is touched */
  bool shuffled = rd >= 0 && step >= 2 && step <= 4 && lanes <= 64 && !c->mask;
  if (rd >= 0 && step != 1 && !shuffled) rd = -1;
  LLVMValueRef off = access_offset(c, cb, x->nindices, x->indices, rd);
  if (!off) return NULL;
  LLVMValueRef v;
  if (shuffled) {
    unsigned span = (unsigned)((int64_t)(lanes - 1) * step + 1);
    LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, mty, cb->base, &off, 1, "");
    LLVMValueRef wide = LLVMBuildLoad2(c->b, LLVMVectorType(mty, span), p, "");
    LLVMSetAlignment(wide, align);
    LLVMValueRef pick[64];
    for (unsigned l = 0; l < lanes; l++)
      pick[l] = LLVMConstInt(c->i32, (unsigned long long)((int64_t)l * step), 0);
    v = LLVMBuildShuffleVector(c->b, wide, LLVMGetPoison(LLVMTypeOf(wide)),
                               LLVMConstVector(pick, lanes), "");
  } else if (lanes == 1 || rd >= 0) {
    LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, mty, cb->base, &off, 1, "");
    LLVMTypeRef vt = LLVMVectorType(mty, lanes); /* lanes 1: <1 x T> for the masked form */
    if (c->mask) {
      LLVMValueRef m = c->mask;
      if (lanes == 1) { /* a scalar under a lane mask: read it if any lane is selected */
        LLVMValueRef any = intrin1(c, "llvm.vector.reduce.or", c->mask);
        m = LLVMBuildInsertElement(c->b, LLVMGetPoison(LLVMVectorType(c->i1, 1)), any,
                                   LLVMConstInt(c->i32, 0, 0), "");
      }
      LLVMTypeRef tys[2] = {vt, c->ptr};
      LLVMValueRef args[4] = {p, al, m, LLVMConstNull(vt)};
      v = intrin(c, "llvm.masked.load", tys, 2, args, 4);
      if (v && lanes == 1) v = LLVMBuildExtractElement(c->b, v, LLVMConstInt(c->i32, 0, 0), "");
    } else {
      v = LLVMBuildLoad2(c->b, lanes == 1 ? mty : vt, p, "");
      LLVMSetAlignment(v, align);
    }
  } else {
    LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(c->b, mty, cb->base, &off, 1, "");
    LLVMTypeRef vt = LLVMVectorType(mty, lanes);
    LLVMTypeRef tys[2] = {vt, LLVMTypeOf(ptrs)};
    LLVMValueRef args[4] = {ptrs, al, c->mask ? c->mask : all_true(c, lanes), LLVMConstNull(vt)};
    v = intrin(c, "llvm.masked.gather", tys, 2, args, 4);
  }
  return v ? from_mem(c, v, et) : NULL;
}

/* Whether evaluating e may read memory (a load anywhere inside). */
static bool find_load(ir_node *n, void *ud) {
  bool *found = ud;
  if (*found) return false;
  if (n->kind == IR_LOAD) *found = true;
  return !*found;
}

static bool has_load(const ir_node *e) {
  bool found = false;
  ir_visit((ir_node *)e, false, find_load, &found);
  return found;
}

/* select: LLVM's select evaluates both arms; when an arm loads (and so might read out of
 * bounds where the program guards against it) only the chosen arm runs: a branch for a
 * scalar condition, masked loads for a vector condition. */
static LLVMValueRef emit_select(cg *c, const ir_select *x) {
  LLVMValueRef cond = emit_expr(c, x->cond);
  if (!cond) return NULL;
  LLVMBuilderRef b = c->b;
  if (!has_load(x->t) && !has_load(x->f)) {
    LLVMValueRef t = emit_expr(c, x->t), f = emit_expr(c, x->f);
    return t && f ? LLVMBuildSelect(b, cond, t, f, "") : NULL;
  }
  if (x->cond->dtype.lanes == 1) {
    LLVMBasicBlockRef bt = new_block(c, "sel.t"), bf = new_block(c, "sel.f"),
                      end = new_block(c, "sel.end");
    LLVMBuildCondBr(b, cond, bt, bf);
    LLVMPositionBuilderAtEnd(b, bt);
    LLVMValueRef t = emit_expr(c, x->t);
    if (!t) return NULL;
    LLVMBasicBlockRef bt_end = LLVMGetInsertBlock(b);
    LLVMBuildBr(b, end);
    LLVMPositionBuilderAtEnd(b, bf);
    LLVMValueRef f = emit_expr(c, x->f);
    if (!f) return NULL;
    LLVMBasicBlockRef bf_end = LLVMGetInsertBlock(b);
    LLVMBuildBr(b, end);
    LLVMPositionBuilderAtEnd(b, end);
    LLVMValueRef phi = LLVMBuildPhi(b, LLVMTypeOf(t), "");
    LLVMValueRef vals[2] = {t, f};
    LLVMBasicBlockRef blocks[2] = {bt_end, bf_end};
    LLVMAddIncoming(phi, vals, blocks, 2);
    return phi;
  }
  LLVMValueRef outer = c->mask;
  LLVMValueRef mt = outer ? LLVMBuildAnd(b, outer, cond, "") : cond;
  LLVMValueRef ncond = LLVMBuildNot(b, cond, "");
  LLVMValueRef mf = outer ? LLVMBuildAnd(b, outer, ncond, "") : ncond;
  c->mask = mt;
  LLVMValueRef t = emit_expr(c, x->t);
  c->mask = mf;
  LLVMValueRef f = t ? emit_expr(c, x->f) : NULL;
  c->mask = outer;
  return t && f ? LLVMBuildSelect(b, cond, t, f, "") : NULL;
}

/* base, base + stride, ... as a vector (wrapping arithmetic). */
static LLVMValueRef emit_ramp(cg *c, const ir_ramp *x) {
  LLVMValueRef base = emit_expr(c, x->base), stride = emit_expr(c, x->stride);
  if (!base || !stride) return NULL;
  LLVMTypeRef et = LLVMTypeOf(base);
  size_t n = (size_t)x->lanes;
  LLVMValueRef *steps = ir_malloc(c->ctx, sizeof *steps * n);
  if (!steps) return NULL;
  for (size_t i = 0; i < n; i++) steps[i] = LLVMConstInt(et, i, 0);
  LLVMValueRef iota = LLVMConstVector(steps, (unsigned)n);
  ir_free(c->ctx, steps, sizeof *steps * n);
  LLVMValueRef v = LLVMBuildMul(c->b, iota, splat(c, stride, (unsigned)n), "");
  return LLVMBuildAdd(c->b, splat(c, base, (unsigned)n), v, "");
}

/* Emits e (an expression) and returns its value, or NULL with the error recorded.
 * Exhaustive over kinds. */
static LLVMValueRef emit_expr(cg *c, const ir_node *e) {
  if (ir_is_expr(e) && e->kind != IR_STR_IMM && !dtype_supported(e->dtype)) {
    char b[32];
    return cg_fail(c, e, KILN_ERR_UNSUPPORTED, "code generation does not support %s values",
                   kiln_dtype_str(e->dtype, b, sizeof b));
  }
  switch ((ir_kind)e->kind) {
  case IR_INT_IMM:
    return LLVMConstInt(reg_type(c, e->dtype), (unsigned long long)((const ir_int_imm *)e)->value,
                        1);
  case IR_FLOAT_IMM: {
    double v = ((const ir_float_imm *)e)->value;
    if (is_small_float(e->dtype)) v = round_small_const(v, e->dtype);
    return LLVMConstReal(reg_type(c, e->dtype), v);
  }
  case IR_STR_IMM: return LLVMConstInt(c->i64, 0, 0); /* an opaque handle */
  case IR_VAR: {
    LLVMValueRef v = ir_ptrmap_get(&c->vars, e);
    if (!v)
      return cg_fail(c, e, KILN_ERR_INTERNAL, "variable '%s' has no value",
                     ((const ir_var *)e)->name);
    return v;
  }
  case IR_ADD:
  case IR_SUB:
  case IR_MUL:
  case IR_DIV:
  case IR_MOD:
  case IR_FLOORDIV:
  case IR_FLOORMOD:
  case IR_MIN:
  case IR_MAX:
  case IR_EQ:
  case IR_NE:
  case IR_LT:
  case IR_LE:
  case IR_GT:
  case IR_GE:
  case IR_AND:
  case IR_OR: return emit_binary(c, (const ir_binary *)e);
  case IR_NOT: {
    LLVMValueRef a = emit_expr(c, ((const ir_not *)e)->a);
    return a ? LLVMBuildNot(c->b, a, "") : NULL;
  }
  case IR_SELECT: return emit_select(c, (const ir_select *)e);
  case IR_CAST: {
    const ir_cast *x = (const ir_cast *)e;
    LLVMValueRef v = emit_expr(c, x->value);
    return v ? emit_convert(c, v, ir_dt_scalar(x->value->dtype), ir_dt_scalar(e->dtype)) : NULL;
  }
  case IR_RAMP: return emit_ramp(c, (const ir_ramp *)e);
  case IR_BROADCAST: {
    const ir_broadcast *x = (const ir_broadcast *)e;
    LLVMValueRef v = emit_expr(c, x->value);
    return v ? splat(c, v, (unsigned)x->lanes) : NULL;
  }
  case IR_LOAD: return emit_load(c, (const ir_load *)e);
  case IR_CALL: return emit_call(c, (const ir_call *)e);
  case IR_LET: {
    const ir_let *x = (const ir_let *)e;
    LLVMValueRef v = emit_expr(c, x->value);
    if (!v || ir_ptrmap_put(&c->vars, x->var, v)) return NULL;
    return emit_expr(c, x->body);
  }
  case IR_STORE:
  case IR_FOR:
  case IR_IF:
  case IR_SEQ:
  case IR_LET_STMT:
  case IR_ALLOCATE:
  case IR_EVALUATE:
  case IR_BLOCK:
  case IR_BLOCK_REALIZE:
  case IR_BUFFER:
  case IR_ITER_VAR:
  case IR_RANGE:
  case IR_REGION:
  case IR_ANNOT:
  case IR_FUNC:
  case IR_KIND_COUNT: break;
  }
  return cg_fail(c, e, KILN_ERR_INTERNAL, "a %s is not an expression", ir_kind_name(e->kind));
}

/* ---- Buffers --------------------------------------------------------------------------- */

/* The strides of b in elements (i64): explicit, or row-major from the shape; evaluated in
 * the current scope. */
static kiln_status buffer_strides(cg *c, const ir_buffer *b, LLVMValueRef *st) {
  if (b->nstrides) {
    for (int d = 0; d < b->ndim; d++) {
      LLVMValueRef v = emit_expr(c, b->strides[d]);
      if (!v) return cg_status(c);
      st[d] = to_i64(c, v, b->strides[d]->dtype);
    }
    return KILN_OK;
  }
  LLVMValueRef s = LLVMConstInt(c->i64, 1, 0);
  for (int d = b->ndim - 1; d >= 0; d--) {
    st[d] = s;
    if (d == 0) break;
    LLVMValueRef dim = emit_expr(c, b->shape[d]);
    if (!dim) return cg_status(c);
    s = LLVMBuildMul(c->b, s, to_i64(c, dim, b->shape[d]->dtype), "");
  }
  return KILN_OK;
}

/* Records buffer b with its strides `st` (arena memory) and element 0 at `mem` plus the
 * elem_offset `off` (i64 value or NULL). */
static cg_buf *put_buffer(cg *c, const ir_buffer *b, LLVMValueRef mem, LLVMValueRef off,
                          LLVMValueRef *st) {
  cg_buf *cb = ir_arena_alloc(c->arena, sizeof *cb);
  if (!cb) return NULL;
  cb->buf = b;
  cb->strides = st;
  cb->base = off ? LLVMBuildGEP2(c->b, mem_type(c, b->h.dtype), mem, &off, 1, "") : mem;
  if (ir_ptrmap_put(&c->bufs, b, cb)) return NULL;
  return cb;
}

static LLVMValueRef *new_strides(cg *c, const ir_buffer *b) {
  return ir_arena_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(b->ndim > 0 ? b->ndim : 1));
}

/* The elem_offset of b as an i64 value, or NULL when it has none. *ok is false on error. */
static LLVMValueRef buffer_offset(cg *c, const ir_buffer *b, bool *ok) {
  *ok = true;
  if (!b->elem_offset) return NULL;
  LLVMValueRef v = emit_expr(c, b->elem_offset);
  if (!v) {
    *ok = false;
    return NULL;
  }
  return to_i64(c, v, b->elem_offset->dtype);
}

/* Binds parameter buffer b to the memory at `data`. */
static cg_buf *bind_buffer(cg *c, const ir_buffer *b, LLVMValueRef data) {
  LLVMValueRef *st = new_strides(c, b);
  bool ok;
  if (!st || buffer_strides(c, b, st)) return NULL;
  LLVMValueRef off = buffer_offset(c, b, &ok);
  return ok ? put_buffer(c, b, data, off, st) : NULL;
}

/* Allocates buffer b (an allocate statement's or a block's): the stack when its size is a
 * constant of at most STACK_ALLOC_MAX bytes, else kiln_rt_workspace_alloc (then *heap is the
 * pointer to free, pushed on the function's cleanup list; NULL for the stack). A failed
 * allocation returns KILN_ERR_NOMEM from the kernel with a message. */
static kiln_status alloc_buffer(cg *c, const ir_buffer *b, LLVMValueRef *heap) {
  *heap = NULL;
  LLVMBuilderRef bl = c->b;
  LLVMValueRef *st = new_strides(c, b);
  if (!st) return KILN_ERR_NOMEM;
  kiln_status s = buffer_strides(c, b, st);
  if (s) return s;
  bool ok;
  LLVMValueRef off = buffer_offset(c, b, &ok);
  if (!ok) return cg_status(c);
  /* Elements to hold: the highest offset an in-bounds index reaches, plus one (0 when some
   * dimension is empty), as the interpreter computes it. */
  LLVMValueRef zero = LLVMConstInt(c->i64, 0, 0), one = LLVMConstInt(c->i64, 1, 0);
  LLVMValueRef empty = LLVMConstInt(c->i1, 0, 0);
  LLVMValueRef last = off ? off : zero, prod = one;
  for (int d = 0; d < b->ndim; d++) {
    LLVMValueRef v = emit_expr(c, b->shape[d]);
    if (!v) return cg_status(c);
    LLVMValueRef dim = to_i64(c, v, b->shape[d]->dtype);
    empty = LLVMBuildOr(bl, empty, LLVMBuildICmp(bl, LLVMIntEQ, dim, zero, ""), "");
    last = LLVMBuildAdd(bl, last, LLVMBuildMul(bl, LLVMBuildSub(bl, dim, one, ""), st[d], ""), "");
    prod = LLVMBuildMul(bl, prod, dim, "");
  }
  LLVMValueRef nel = b->nstrides || off ? LLVMBuildAdd(bl, last, one, "") : prod;
  nel = LLVMBuildSelect(bl, empty, zero, nel, "");
  kiln_dtype et = b->h.dtype;
  LLVMValueRef bytes = LLVMBuildMul(bl, nel, LLVMConstInt(c->i64, elem_bytes(et), 0), "");
  unsigned align = (unsigned)b->align > elem_bytes(et) ? (unsigned)b->align : elem_bytes(et);
  LLVMValueRef mem;
  if (LLVMIsAConstantInt(bytes) && LLVMConstIntGetSExtValue(bytes) >= 0 &&
      LLVMConstIntGetSExtValue(bytes) <= STACK_ALLOC_MAX) {
    long long n = LLVMConstIntGetSExtValue(bytes);
    mem = fn_alloca(c, LLVMArrayType2(c->i8, (uint64_t)(n > 0 ? n : 1)), align, b->name);
  } else {
    unsigned wa = align < 16 ? 16 : align;
    LLVMTypeRef params[2] = {c->i64, c->i64};
    LLVMValueRef args[2] = {bytes, LLVMConstInt(c->i64, wa, 0)};
    mem = call_extern(c, "kiln_rt_workspace_alloc", c->ptr, params, 2, false, args, 2);
    LLVMAddCallSiteAttribute(
        mem, LLVMAttributeReturnIndex,
        LLVMCreateEnumAttribute(c->llc, LLVMGetEnumAttributeKindForName("align", 5), wa));
    LLVMValueRef failed = LLVMBuildAnd(bl, LLVMBuildIsNull(bl, mem, ""),
                                       LLVMBuildICmp(bl, LLVMIntNE, bytes, zero, ""), "");
    ir_strbuf msg;
    ir_sb_init(&msg, c->ctx);
    ir_sb_printf(&msg, "%s: out of memory allocating buffer '%s'", c->func->name, b->name);
    size_t len;
    char *m = ir_sb_take(&msg, &len);
    if (!m) return KILN_ERR_NOMEM;
    emit_check(c, failed, LLVMConstInt(c->i32, KILN_ERR_NOMEM, 0), m);
    ir_free(c->ctx, m, len + 1);
    if (push_heap(c, mem)) return KILN_ERR_NOMEM;
    *heap = mem;
  }
  return put_buffer(c, b, mem, off, st) ? KILN_OK : KILN_ERR_NOMEM;
}

/* Frees a workspace allocation made by alloc_buffer at the end of its scope. */
static void free_buffer(cg *c, LLVMValueRef heap) {
  if (!heap) return;
  LLVMTypeRef p = c->ptr;
  call_extern(c, "kiln_rt_workspace_free", c->voidt, &p, 1, false, &heap, 1);
  c->fn->nheap--;
}

/* ---- Statements ------------------------------------------------------------------------ */

static kiln_status emit_stmt(cg *c, const ir_node *s);

/* for (k = lo; k < hi; k++) { var = mn + k; body } with k of the variable's type. The loop
 * properties (vectorize, unroll) go on the back edge. */
static kiln_status emit_loop(cg *c, const ir_var *var, LLVMValueRef mn, LLVMValueRef lo,
                             LLVMValueRef hi, bool nsw_var, const ir_node *body,
                             LLVMMetadataRef *props, int nprops) {
  LLVMBuilderRef b = c->b;
  bool uns = var->h.dtype.code != KILN_TYPE_INT;
  LLVMTypeRef ty = LLVMTypeOf(lo);
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(b);
  LLVMBasicBlockRef loop = new_block(c, var->name), exit = new_block(c, "loop.end");
  LLVMBuildCondBr(b, LLVMBuildICmp(b, uns ? LLVMIntULT : LLVMIntSLT, lo, hi, ""), loop, exit);
  LLVMPositionBuilderAtEnd(b, loop);
  LLVMValueRef k = LLVMBuildPhi(b, ty, "k");
  LLVMAddIncoming(k, &lo, &pre, 1);
  LLVMValueRef v = LLVMBuildAdd(b, mn, k, var->name);
  if (nsw_var && LLVMIsAInstruction(v)) LLVMSetNSW(v, 1);
  if (ir_ptrmap_put(&c->vars, var, v)) return KILN_ERR_NOMEM;
  kiln_status st = emit_stmt(c, body);
  if (st) return st;
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(b);
  LLVMValueRef next = LLVMBuildAdd(b, k, LLVMConstInt(ty, 1, 0), "k.next");
  /* k < hi <= the type's maximum, so k + 1 does not overflow */
  if (uns)
    LLVMSetNUW(next, 1);
  else
    LLVMSetNSW(next, 1);
  LLVMValueRef br =
      LLVMBuildCondBr(b, LLVMBuildICmp(b, uns ? LLVMIntULT : LLVMIntSLT, next, hi, ""), loop, exit);
  set_loop_md(c, br, props, nprops);
  LLVMAddIncoming(k, &next, &latch, 1);
  LLVMPositionBuilderAtEnd(b, exit);
  return KILN_OK;
}

/* What a parallel body needs from the enclosing function: every non-constant value behind
 * the variables and buffers it uses (constants are used directly). */
typedef struct capture {
  cg *c;
  LLVMValueRef *vals;
  int n, cap;
  const ir_var *skip; /* the loop variable */
  kiln_status st;
} capture;

static void capture_val(capture *cp, LLVMValueRef v) {
  if (cp->st || !v || LLVMIsConstant(v)) return;
  for (int i = 0; i < cp->n; i++)
    if (cp->vals[i] == v) return;
  if (cp->n == cp->cap) {
    int cap = cp->cap ? cp->cap * 2 : 16;
    LLVMValueRef *a =
        ir_realloc(cp->c->ctx, cp->vals, sizeof *a * (size_t)cp->cap, sizeof *a * (size_t)cap);
    if (!a) {
      cp->st = KILN_ERR_NOMEM;
      return;
    }
    cp->vals = a;
    cp->cap = cap;
  }
  cp->vals[cp->n++] = v;
}

static bool capture_visit(ir_node *n, void *ud) {
  capture *cp = ud;
  if (cp->st) return false;
  if (n->kind == IR_VAR && n != &cp->skip->h) {
    capture_val(cp, ir_ptrmap_get(&cp->c->vars, n));
  } else if (n->kind == IR_BUFFER) {
    cg_buf *cb = ir_ptrmap_get(&cp->c->bufs, n);
    if (cb) {
      capture_val(cp, cb->base);
      for (int d = 0; d < cb->buf->ndim; d++) capture_val(cp, cb->strides[d]);
    }
  }
  return true;
}

/* The value standing for parent value v inside the outlined function: v itself for a
 * constant, the matching parameter for a captured value, NULL for anything else. */
static LLVMValueRef remap(const capture *cp, LLVMValueRef *params, LLVMValueRef v) {
  if (!v || LLVMIsConstant(v)) return v;
  for (int i = 0; i < cp->n; i++)
    if (cp->vals[i] == v) return params[i];
  return NULL;
}

typedef struct saved_scope {
  cg_fn *fn;
  LLVMBasicBlockRef block;
  ir_ptrmap vars, bufs;
} saved_scope;

/* Switches codegen to a new scope that holds the variables and buffers whose values were
 * captured, mapped to `params` (everything the outlined body can reach). */
static kiln_status enter_outlined(cg *c, saved_scope *sv, const capture *cp, LLVMValueRef *params) {
  sv->fn = c->fn;
  sv->block = LLVMGetInsertBlock(c->b);
  sv->vars = c->vars;
  sv->bufs = c->bufs;
  ir_ptrmap_init(&c->vars, c->ctx);
  ir_ptrmap_init(&c->bufs, c->ctx);
  for (size_t i = 0; i < sv->vars.cap; i++) {
    const void *k = sv->vars.keys[i];
    LLVMValueRef v = k ? remap(cp, params, sv->vars.vals[i]) : NULL;
    if (v && ir_ptrmap_put(&c->vars, k, v)) return KILN_ERR_NOMEM;
  }
  for (size_t i = 0; i < sv->bufs.cap; i++) {
    const cg_buf *cb = sv->bufs.keys[i] ? sv->bufs.vals[i] : NULL;
    if (!cb) continue;
    LLVMValueRef base = remap(cp, params, cb->base);
    LLVMValueRef *st = new_strides(c, cb->buf);
    if (!st) return KILN_ERR_NOMEM;
    for (int d = 0; d < cb->buf->ndim; d++)
      if (!(st[d] = remap(cp, params, cb->strides[d]))) base = NULL;
    if (base && !put_buffer(c, cb->buf, base, NULL, st)) return KILN_ERR_NOMEM;
  }
  return KILN_OK;
}

static void leave_outlined(cg *c, saved_scope *sv) {
  ir_ptrmap_free(&c->vars);
  ir_ptrmap_free(&c->bufs);
  c->vars = sv->vars;
  c->bufs = sv->bufs;
  c->fn = sv->fn;
  LLVMPositionBuilderAtEnd(c->b, sv->block);
}

/* A parallel loop. The body goes into `<f>.par<N>.body(captured..., lo, hi)`, which runs
 * iterations [lo, hi) (captured pointers noalias, so the body vectorizes as well as a
 * serial loop). The task `<f>.par<N>(task, ntasks, closure)` computes its share of
 * [0, extent) and calls it; the closure {i64 extent, captured...} lives in the caller's frame
 * and kiln_rt_parallel_launch(task, &closure, 0) runs one task per pool thread. A non-zero
 * status of a task is returned from the kernel. */
static kiln_status emit_parallel(cg *c, const ir_for *f, LLVMValueRef mn, LLVMValueRef ext) {
  LLVMBuilderRef b = c->b;
  const ir_var *var = f->var;
  bool uns = var->h.dtype.code != KILN_TYPE_INT;
  LLVMTypeRef vty = LLVMTypeOf(ext);
  capture cp = {c, NULL, 0, 0, var, KILN_OK};
  ir_visit((ir_node *)f->body, true, capture_visit, &cp);
  capture_val(&cp, mn);
  int n = cp.n;
  size_t tsz = sizeof(LLVMTypeRef) * (size_t)(n + 2), vsz = sizeof(LLVMValueRef) * (size_t)(n + 2);
  LLVMTypeRef *tys = cp.st ? NULL : ir_malloc(c->ctx, tsz); /* the body's parameters */
  LLVMTypeRef *ctys = tys ? ir_malloc(c->ctx, tsz) : NULL;  /* the closure's fields */
  LLVMValueRef *vals = ctys ? ir_malloc(c->ctx, vsz) : NULL;
  kiln_status st = vals ? KILN_OK : cp.st ? cp.st : KILN_ERR_NOMEM;
  if (!st) {
    for (int i = 0; i < n; i++) ctys[i + 1] = tys[i] = LLVMTypeOf(cp.vals[i]);
    tys[n] = tys[n + 1] = vty;
    ctys[0] = c->i64;
    LLVMTypeRef body_ty = LLVMFunctionType(c->i32, tys, (unsigned)n + 2, 0);
    LLVMTypeRef closure_ty = LLVMStructTypeInContext(c->llc, ctys, (unsigned)n + 1, 0);
    char name[300];
    int id = c->npar++;
    snprintf(name, sizeof name, "%s.par%d.body", c->func->name, id);
    LLVMValueRef inner = LLVMAddFunction(c->mod, name, body_ty);
    LLVMSetLinkage(inner, LLVMInternalLinkage);
    set_fn_attrs(c, inner);
    for (int i = 0; i < n; i++)
      if (LLVMGetTypeKind(tys[i]) == LLVMPointerTypeKind)
        add_fn_attr(c, inner, (unsigned)i + 1, "noalias");
    snprintf(name, sizeof name, "%s.par%d", c->func->name, id);
    LLVMTypeRef task_params[3] = {c->i32, c->i32, c->ptr};
    LLVMValueRef task = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->i32, task_params, 3, 0));
    LLVMSetLinkage(task, LLVMInternalLinkage);
    set_fn_attrs(c, task);

    /* the body: iterations [lo, hi) */
    saved_scope sv;
    for (int i = 0; i < n + 2; i++) vals[i] = LLVMGetParam(inner, (unsigned)i);
    st = enter_outlined(c, &sv, &cp, vals);
    if (!st) {
      cg_fn fn_body;
      fn_begin(c, &fn_body, inner);
      st = emit_loop(c, var, remap(&cp, vals, mn), vals[n], vals[n + 1], false, f->body, NULL, 0);
      if (!st && !block_closed(c)) LLVMBuildRet(c->b, LLVMConstInt(c->i32, 0, 0));
      fn_end(c, &fn_body);
    }
    leave_outlined(c, &sv);

    /* the task: chunk = ceil(extent / ntasks); [task * chunk, +chunk) clipped to extent */
    if (!st) {
      cg_fn *outer = c->fn, fn_task;
      LLVMBasicBlockRef outer_block = LLVMGetInsertBlock(b);
      fn_begin(c, &fn_task, task);
      LLVMValueRef cl = LLVMGetParam(task, 2);
      LLVMValueRef e =
          LLVMBuildLoad2(b, c->i64, LLVMBuildStructGEP2(b, closure_ty, cl, 0, ""), "extent");
      LLVMValueRef ti = LLVMBuildSExt(b, LLVMGetParam(task, 0), c->i64, "");
      LLVMValueRef nt = LLVMBuildSExt(b, LLVMGetParam(task, 1), c->i64, "");
      LLVMValueRef one = LLVMConstInt(c->i64, 1, 0);
      nt = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, nt, one, ""), one, nt, "");
      LLVMValueRef chunk =
          LLVMBuildSDiv(b, LLVMBuildSub(b, LLVMBuildAdd(b, e, nt, ""), one, ""), nt, "");
      LLVMValueRef lo = intrin2(c, "llvm.smin", LLVMBuildMul(b, ti, chunk, ""), e);
      LLVMValueRef hi = intrin2(c, "llvm.smin", LLVMBuildAdd(b, lo, chunk, ""), e);
      for (int i = 0; i < n; i++)
        vals[i] = LLVMBuildLoad2(b, tys[i],
                                 LLVMBuildStructGEP2(b, closure_ty, cl, (unsigned)i + 1, ""), "");
      vals[n] = LLVMBuildTrunc(b, lo, vty, "");
      vals[n + 1] = LLVMBuildTrunc(b, hi, vty, "");
      LLVMBuildRet(b, LLVMBuildCall2(b, body_ty, inner, vals, (unsigned)n + 2, ""));
      fn_end(c, &fn_task);
      c->fn = outer;
      LLVMPositionBuilderAtEnd(b, outer_block);

      /* the launch, in the caller, when there is anything to do */
      LLVMValueRef clv = fn_alloca(c, closure_ty, 8, "closure");
      LLVMBasicBlockRef go = new_block(c, "par.launch"), done = new_block(c, "par.done");
      LLVMValueRef any =
          LLVMBuildICmp(b, uns ? LLVMIntNE : LLVMIntSGT, ext, LLVMConstInt(vty, 0, 0), "");
      LLVMBuildCondBr(b, any, go, done);
      LLVMPositionBuilderAtEnd(b, go);
      LLVMBuildStore(b, to_i64(c, ext, var->h.dtype),
                     LLVMBuildStructGEP2(b, closure_ty, clv, 0, ""));
      for (int i = 0; i < n; i++)
        LLVMBuildStore(b, cp.vals[i], LLVMBuildStructGEP2(b, closure_ty, clv, (unsigned)i + 1, ""));
      LLVMTypeRef lp[3] = {c->ptr, c->ptr, c->i32};
      LLVMValueRef la[3] = {task, clv, LLVMConstInt(c->i32, 0, 0)};
      LLVMValueRef rs = call_extern(c, "kiln_rt_parallel_launch", c->i32, lp, 3, false, la, 3);
      emit_check(c, LLVMBuildICmp(b, LLVMIntNE, rs, LLVMConstInt(c->i32, 0, 0), ""), rs, NULL);
      LLVMBuildBr(b, done);
      LLVMPositionBuilderAtEnd(b, done);
    }
  }
  ir_free(c->ctx, tys, tsz);
  ir_free(c->ctx, ctys, tsz);
  ir_free(c->ctx, vals, vsz);
  ir_free(c->ctx, cp.vals, sizeof *cp.vals * (size_t)cp.cap);
  return st;
}

static kiln_status emit_for(cg *c, const ir_for *f) {
  LLVMValueRef mn = emit_expr(c, f->min), ext = emit_expr(c, f->extent);
  if (!mn || !ext) return cg_status(c);
  if (f->for_kind == IR_FOR_PARALLEL) return emit_parallel(c, f, mn, ext);
  LLVMMetadataRef props[3];
  int nprops = 0;
  const ir_int_imm *ce = ir_as_int(f->extent), *cm = ir_as_int(f->min);
  switch ((ir_for_kind)f->for_kind) {
  case IR_FOR_SERIAL:
  case IR_FOR_PARALLEL: break;
  case IR_FOR_VECTORIZED:
    props[nprops++] = md_prop(c, "llvm.loop.vectorize.enable", LLVMConstInt(c->i1, 1, 0));
    if (ce && ce->value >= 2) {
      /* the widest power of two not above the extent (and 64): the vectorizer's widths */
      int64_t w = 1;
      while (w * 2 <= ce->value && w * 2 <= 64) w *= 2;
      props[nprops++] =
          md_prop(c, "llvm.loop.vectorize.width", LLVMConstInt(c->i32, (unsigned long long)w, 0));
    }
    break;
  case IR_FOR_UNROLLED: props[nprops++] = md_prop(c, "llvm.loop.unroll.full", NULL); break;
  case IR_FOR_KIND_COUNT:
    cg_fail(c, &f->h, KILN_ERR_INTERNAL, "unknown loop kind");
    return KILN_ERR_INTERNAL;
  }
  /* var = min + k cannot wrap when both are constants and min + extent - 1 fits */
  bool nsw = false;
  if (ce && cm && f->var->h.dtype.code == KILN_TYPE_INT && f->var->h.dtype.bits <= 64) {
    int64_t last;
    int bits = f->var->h.dtype.bits;
    if (!__builtin_add_overflow(cm->value, ce->value - 1, &last))
      nsw =
          bits == 64 || (last < ((int64_t)1 << (bits - 1)) && last >= -((int64_t)1 << (bits - 1)));
  }
  return emit_loop(c, f->var, mn, LLVMConstInt(LLVMTypeOf(ext), 0, 0), ext, nsw, f->body, props,
                   nprops);
}

static kiln_status emit_if(cg *c, const ir_if *x) {
  LLVMValueRef cond = emit_expr(c, x->cond);
  if (!cond) return cg_status(c);
  LLVMBuilderRef b = c->b;
  LLVMBasicBlockRef bt = new_block(c, "then"), be = x->else_case ? new_block(c, "else") : NULL;
  LLVMBasicBlockRef end = new_block(c, "endif");
  LLVMBuildCondBr(b, cond, bt, be ? be : end);
  LLVMPositionBuilderAtEnd(b, bt);
  kiln_status st = emit_stmt(c, x->then_case);
  if (st) return st;
  LLVMBuildBr(b, end);
  if (be) {
    LLVMPositionBuilderAtEnd(b, be);
    if ((st = emit_stmt(c, x->else_case))) return st;
    LLVMBuildBr(b, end);
  }
  LLVMPositionBuilderAtEnd(b, end);
  return KILN_OK;
}

static kiln_status emit_store(cg *c, const ir_store *x) {
  cg_buf *cb = buf_of(c, &x->h, x->buffer);
  LLVMValueRef v = cb ? emit_expr(c, x->value) : NULL;
  if (!v) return cg_status(c);
  kiln_dtype et = ir_dt_scalar(x->buffer->h.dtype);
  unsigned lanes = x->value->dtype.lanes;
  LLVMTypeRef mty = mem_type(c, et);
  unsigned align = elem_bytes(et);
  int rd = lanes > 1 ? contiguous_dim(cb, x->nindices, x->indices) : -1;
  LLVMValueRef off = access_offset(c, cb, x->nindices, x->indices, rd);
  if (!off) return cg_status(c);
  LLVMValueRef m = to_mem(c, v, et);
  if (lanes == 1 || rd >= 0) {
    LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, mty, cb->base, &off, 1, "");
    LLVMSetAlignment(LLVMBuildStore(c->b, m, p), align);
    return KILN_OK;
  }
  LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(c->b, mty, cb->base, &off, 1, "");
  LLVMTypeRef tys[2] = {LLVMTypeOf(m), LLVMTypeOf(ptrs)};
  LLVMValueRef args[4] = {m, ptrs, LLVMConstInt(c->i32, align, 0), all_true(c, lanes)};
  return intrin(c, "llvm.masked.scatter", tys, 2, args, 4) ? KILN_OK : cg_status(c);
}

static kiln_status emit_allocate(cg *c, const ir_allocate *x) {
  LLVMValueRef heap;
  kiln_status st = alloc_buffer(c, x->buffer, &heap);
  if (!st) st = emit_stmt(c, x->body);
  if (!st) free_buffer(c, heap);
  return st;
}

/* A realized block: bind the iterators; where the predicate holds, allocate the block's
 * buffers, run the init when every reduce iterator is at its domain start, run the body and
 * free the buffers. */
static kiln_status emit_realize(cg *c, const ir_block_realize *r) {
  const ir_block *blk = r->block;
  LLVMBuilderRef b = c->b;
  for (int i = 0; i < blk->niters; i++) {
    LLVMValueRef v = emit_expr(c, r->values[i]);
    if (!v) return cg_status(c);
    if (ir_ptrmap_put(&c->vars, blk->iters[i]->var, v)) return KILN_ERR_NOMEM;
  }
  LLVMValueRef pred = emit_expr(c, r->predicate);
  if (!pred) return cg_status(c);
  LLVMBasicBlockRef end = NULL;
  if (!(LLVMIsAConstantInt(pred) && LLVMConstIntGetZExtValue(pred) == 1)) {
    LLVMBasicBlockRef run = new_block(c, blk->name);
    end = new_block(c, "block.end");
    LLVMBuildCondBr(b, pred, run, end);
    LLVMPositionBuilderAtEnd(b, run);
  }
  kiln_status st = KILN_OK;
  int nalloc = 0;
  LLVMValueRef small[8], *heap = small;
  if (blk->nallocs > 8 && !(heap = ir_malloc(c->ctx, sizeof *heap * (size_t)blk->nallocs)))
    return KILN_ERR_NOMEM;
  for (; nalloc < blk->nallocs && !st; nalloc++)
    st = alloc_buffer(c, blk->allocs[nalloc], &heap[nalloc]);
  if (!st && blk->init) {
    LLVMValueRef at_start = LLVMConstInt(c->i1, 1, 0);
    for (int i = 0; i < blk->niters && !st; i++) {
      const ir_iter_var *it = blk->iters[i];
      if (it->iter_type != IR_ITER_REDUCE) continue;
      LLVMValueRef mn = emit_expr(c, it->min);
      if (!mn) {
        st = cg_status(c);
        break;
      }
      LLVMValueRef v = ir_ptrmap_get(&c->vars, it->var);
      at_start = LLVMBuildAnd(b, at_start, LLVMBuildICmp(b, LLVMIntEQ, v, mn, ""), "");
    }
    if (!st) {
      LLVMBasicBlockRef init = new_block(c, "init"), body = new_block(c, "block.body");
      LLVMBuildCondBr(b, at_start, init, body);
      LLVMPositionBuilderAtEnd(b, init);
      st = emit_stmt(c, blk->init);
      if (!st) {
        LLVMBuildBr(b, body);
        LLVMPositionBuilderAtEnd(b, body);
      }
    }
  }
  if (!st) st = emit_stmt(c, blk->body);
  if (!st)
    for (int i = nalloc - 1; i >= 0; i--) free_buffer(c, heap[i]);
  if (heap != small) ir_free(c->ctx, heap, sizeof *heap * (size_t)blk->nallocs);
  if (st) return st;
  if (end) {
    LLVMBuildBr(b, end);
    LLVMPositionBuilderAtEnd(b, end);
  }
  return KILN_OK;
}

/* Emits statement s at the builder's position. Exhaustive over kinds. */
static kiln_status emit_stmt(cg *c, const ir_node *s) {
  switch ((ir_kind)s->kind) {
  case IR_STORE: return emit_store(c, (const ir_store *)s);
  case IR_FOR: return emit_for(c, (const ir_for *)s);
  case IR_IF: return emit_if(c, (const ir_if *)s);
  case IR_SEQ: {
    const ir_seq *x = (const ir_seq *)s;
    for (int i = 0; i < x->nstmts; i++) {
      kiln_status st = emit_stmt(c, x->stmts[i]);
      if (st) return st;
    }
    return KILN_OK;
  }
  case IR_LET_STMT: {
    const ir_let_stmt *x = (const ir_let_stmt *)s;
    LLVMValueRef v = emit_expr(c, x->value);
    if (!v) return cg_status(c);
    if (ir_ptrmap_put(&c->vars, x->var, v)) return KILN_ERR_NOMEM;
    return emit_stmt(c, x->body);
  }
  case IR_ALLOCATE: return emit_allocate(c, (const ir_allocate *)s);
  case IR_EVALUATE: return emit_expr(c, ((const ir_evaluate *)s)->value) ? KILN_OK : cg_status(c);
  case IR_BLOCK_REALIZE: return emit_realize(c, (const ir_block_realize *)s);
  case IR_BLOCK:
    cg_fail(c, s, KILN_ERR_UNSUPPORTED, "block '%s' is not realized (no iterator values)",
            ((const ir_block *)s)->name);
    return KILN_ERR_UNSUPPORTED;
  case IR_INT_IMM:
  case IR_FLOAT_IMM:
  case IR_STR_IMM:
  case IR_VAR:
  case IR_ADD:
  case IR_SUB:
  case IR_MUL:
  case IR_DIV:
  case IR_MOD:
  case IR_FLOORDIV:
  case IR_FLOORMOD:
  case IR_MIN:
  case IR_MAX:
  case IR_EQ:
  case IR_NE:
  case IR_LT:
  case IR_LE:
  case IR_GT:
  case IR_GE:
  case IR_AND:
  case IR_OR:
  case IR_NOT:
  case IR_SELECT:
  case IR_CAST:
  case IR_RAMP:
  case IR_BROADCAST:
  case IR_LOAD:
  case IR_CALL:
  case IR_LET:
  case IR_BUFFER:
  case IR_ITER_VAR:
  case IR_RANGE:
  case IR_REGION:
  case IR_ANNOT:
  case IR_FUNC:
  case IR_KIND_COUNT: break;
  }
  cg_fail(c, s, KILN_ERR_INTERNAL, "a %s is not a statement", ir_kind_name(s->kind));
  return KILN_ERR_INTERNAL;
}

/* ---- The entry function and argument checks -------------------------------------------- */

/* Appends s to sb with '%' doubled (for a printf format). */
static void put_fmt_escaped(ir_strbuf *sb, const char *s) {
  for (; *s; s++) {
    if (*s == '%') ir_sb_putn(sb, "%", 1);
    ir_sb_putn(sb, s, 1);
  }
}

/* The end of a failed argument check, in the current block: snprintf(msg, 512, fmt, args...)
 * with the printf format built in `fmt` (taken), kiln_rt_error(msg), return `code`. */
static kiln_status fail_here(cg *c, LLVMValueRef code, ir_strbuf *fmt, LLVMValueRef *args,
                             int nargs, LLVMValueRef msgbuf) {
  size_t len;
  char *f = ir_sb_take(fmt, &len);
  size_t n = (size_t)nargs + 3;
  LLVMValueRef *all = f ? ir_malloc(c->ctx, sizeof *all * n) : NULL;
  if (!all) {
    ir_free(c->ctx, f, f ? len + 1 : 0);
    return KILN_ERR_NOMEM;
  }
  all[0] = msgbuf;
  all[1] = LLVMConstInt(c->isize, 512, 0);
  all[2] = const_string(c, f);
  for (int i = 0; i < nargs; i++) all[i + 3] = args[i];
  LLVMTypeRef params[3] = {c->ptr, c->isize, c->ptr};
  call_extern(c, "snprintf", c->i32, params, 3, true, all, (unsigned)n);
  kernel_error(c, msgbuf);
  LLVMBuildRet(c->b, code);
  ir_free(c->ctx, all, sizeof *all * n);
  ir_free(c->ctx, f, len + 1);
  return KILN_OK;
}

/* An argument check: where `failed` holds, fail_here; code continues in a new block. */
static kiln_status arg_fail(cg *c, LLVMValueRef failed, LLVMValueRef code, ir_strbuf *fmt,
                            LLVMValueRef *args, int nargs, LLVMValueRef msgbuf) {
  LLVMBasicBlockRef bad = new_block(c, "arg.bad"), ok = new_block(c, "arg.ok");
  LLVMBuildCondBr(c->b, failed, bad, ok);
  LLVMPositionBuilderAtEnd(c->b, bad);
  kiln_status st = fail_here(c, code, fmt, args, nargs, msgbuf);
  LLVMPositionBuilderAtEnd(c->b, ok);
  return st;
}

/* The name of a tensor's dtype into buf (32 bytes) at run time: "float32", "int8x4", "bool". */
static LLVMValueRef runtime_dtype_name(cg *c, LLVMValueRef code, LLVMValueRef bits,
                                       LLVMValueRef lanes, LLVMValueRef buf) {
  LLVMBuilderRef b = c->b;
  static const char *const names[] = {"int",    "uint",  "float", "handle",
                                      "bfloat", "type5", "bool",  "void"};
  LLVMValueRef name = const_string(c, "type?");
  for (int i = 0; i < 8; i++)
    name = LLVMBuildSelect(
        b, LLVMBuildICmp(b, LLVMIntEQ, code, LLVMConstInt(c->i32, (unsigned)i, 0), ""),
        const_string(c, names[i]), name, "");
  LLVMValueRef nobits = LLVMBuildOr(
      b, LLVMBuildICmp(b, LLVMIntEQ, code, LLVMConstInt(c->i32, KILN_TYPE_BOOL, 0), ""),
      LLVMBuildICmp(b, LLVMIntEQ, code, LLVMConstInt(c->i32, KILN_TYPE_HANDLE, 0), ""), "");
  LLVMValueRef vec = LLVMBuildICmp(b, LLVMIntNE, lanes, LLVMConstInt(c->i32, 1, 0), "");
  LLVMValueRef fmt = LLVMBuildSelect(
      b, nobits, LLVMBuildSelect(b, vec, const_string(c, "%sx%u"), const_string(c, "%s"), ""),
      LLVMBuildSelect(b, vec, const_string(c, "%s%ux%u"), const_string(c, "%s%u"), ""), "");
  LLVMValueRef arg2 = LLVMBuildSelect(b, nobits, lanes, bits, "");
  LLVMValueRef args[6] = {buf, LLVMConstInt(c->isize, 32, 0), fmt, name, arg2, lanes};
  LLVMTypeRef params[3] = {c->ptr, c->isize, c->ptr};
  call_extern(c, "snprintf", c->i32, params, 3, true, args, 6);
  return buf;
}

static LLVMValueRef tensor_field(cg *c, LLVMValueRef t, unsigned idx, LLVMTypeRef ty) {
  return LLVMBuildLoad2(c->b, ty, LLVMBuildStructGEP2(c->b, c->tensor, t, idx, ""), "");
}

/* The message prefix "f: argument 2 (B): " escaped for a format. */
static void arg_prefix(cg *c, ir_strbuf *sb, int i, const char *pname) {
  put_fmt_escaped(sb, c->func->name);
  ir_sb_printf(sb, ": argument %d (", i);
  put_fmt_escaped(sb, pname);
  ir_sb_puts(sb, "): ");
}

/* The tensor's dtype fields as i32 values. */
static void tensor_dtype(cg *c, LLVMValueRef t, LLVMValueRef *code, LLVMValueRef *bits,
                         LLVMValueRef *lanes) {
  LLVMBuilderRef b = c->b;
  LLVMValueRef dp = LLVMBuildStructGEP2(b, c->tensor, t, 4, "");
  *code = LLVMBuildZExt(
      b, LLVMBuildLoad2(b, c->i8, LLVMBuildStructGEP2(b, c->dtype_ty, dp, 0, ""), ""), c->i32, "");
  *bits = LLVMBuildZExt(
      b, LLVMBuildLoad2(b, c->i8, LLVMBuildStructGEP2(b, c->dtype_ty, dp, 1, ""), ""), c->i32, "");
  *lanes = LLVMBuildZExt(
      b, LLVMBuildLoad2(b, c->i16, LLVMBuildStructGEP2(b, c->dtype_ty, dp, 2, ""), ""), c->i32, "");
}

static LLVMValueRef dtype_differs(cg *c, kiln_dtype dt, LLVMValueRef code, LLVMValueRef bits,
                                  LLVMValueRef lanes) {
  LLVMBuilderRef b = c->b;
  LLVMValueRef bad = LLVMBuildICmp(b, LLVMIntNE, code, LLVMConstInt(c->i32, dt.code, 0), "");
  bad = LLVMBuildOr(b, bad, LLVMBuildICmp(b, LLVMIntNE, bits, LLVMConstInt(c->i32, dt.bits, 0), ""),
                    "");
  return LLVMBuildOr(b, bad, LLVMBuildICmp(b, LLVMIntNE, lanes, LLVMConstInt(c->i32, 1, 0), ""),
                     "");
}

/* Checks and reads parameter i (a scalar) from tensor t: 0-d, its dtype, data not NULL. */
static kiln_status entry_scalar(cg *c, int i, const ir_var *v, LLVMValueRef t, LLVMValueRef msgbuf,
                                LLVMValueRef dtbuf) {
  LLVMBuilderRef b = c->b;
  kiln_dtype dt = v->h.dtype;
  char dts[32];
  kiln_dtype_str(dt, dts, sizeof dts);
  ir_strbuf sb;
  kiln_status st;
  LLVMValueRef ndim = tensor_field(c, t, 3, c->i32);
  ir_sb_init(&sb, c->ctx);
  arg_prefix(c, &sb, i, v->name);
  ir_sb_printf(&sb, "expected a scalar %s (a 0-dimensional tensor), got a %%d-dimensional one",
               dts);
  if ((st = arg_fail(c, LLVMBuildICmp(b, LLVMIntNE, ndim, LLVMConstInt(c->i32, 0, 0), ""),
                     LLVMConstInt(c->i32, KILN_ERR_SHAPE, 0), &sb, &ndim, 1, msgbuf)))
    return st;
  LLVMValueRef code, bits, lanes;
  tensor_dtype(c, t, &code, &bits, &lanes);
  LLVMBasicBlockRef bad = new_block(c, "arg.dtype"), ok = new_block(c, "arg.dtype.ok");
  LLVMBuildCondBr(b, dtype_differs(c, dt, code, bits, lanes), bad, ok);
  LLVMPositionBuilderAtEnd(b, bad);
  LLVMValueRef name = runtime_dtype_name(c, code, bits, lanes, dtbuf);
  ir_sb_init(&sb, c->ctx);
  arg_prefix(c, &sb, i, v->name);
  ir_sb_printf(&sb, "expected a scalar %s, got %%s", dts);
  if ((st = fail_here(c, LLVMConstInt(c->i32, KILN_ERR_TYPE, 0), &sb, &name, 1, msgbuf))) return st;
  LLVMPositionBuilderAtEnd(b, ok);
  LLVMValueRef data = tensor_field(c, t, 0, c->ptr);
  ir_sb_init(&sb, c->ctx);
  arg_prefix(c, &sb, i, v->name);
  ir_sb_puts(&sb, "data is NULL");
  if ((st = arg_fail(c, LLVMBuildIsNull(b, data, ""), LLVMConstInt(c->i32, KILN_ERR_MISUSE, 0), &sb,
                     NULL, 0, msgbuf)))
    return st;
  LLVMValueRef off = tensor_field(c, t, 7, c->i64);
  LLVMValueRef p = LLVMBuildGEP2(b, c->i8, data, &off, 1, "");
  LLVMValueRef val = LLVMBuildLoad2(b, mem_type(c, dt), p, v->name);
  LLVMSetAlignment(val, 1);
  return ir_ptrmap_put(&c->vars, v, from_mem(c, val, dt));
}

/* Appends ", %lld" n times to a format (the first without the comma). */
static void put_dims_fmt(ir_strbuf *sb, int n) {
  for (int d = 0; d < n; d++) ir_sb_puts(sb, d ? ", %lld" : "%lld");
}

/* Checks buffer parameter i against tensor t (rank, dtype, shape, strides, data) and returns
 * the address of its memory (data + byte_offset) in *data. Shape and stride expressions are
 * evaluated with the scalar parameters bound. Strides: the tensor's (compact when NULL) must
 * equal the buffer's (explicit, or compact) except in dimensions of extent 1. */
static kiln_status entry_buffer(cg *c, int i, const ir_buffer *buf, LLVMValueRef t,
                                LLVMValueRef msgbuf, LLVMValueRef dtbuf, LLVMValueRef *data) {
  LLVMBuilderRef b = c->b;
  kiln_dtype dt = buf->h.dtype;
  int nd = buf->ndim;
  char dts[32];
  kiln_dtype_str(dt, dts, sizeof dts);
  ir_strbuf sb;
  kiln_status st;

  LLVMValueRef ndim = tensor_field(c, t, 3, c->i32);
  ir_sb_init(&sb, c->ctx);
  arg_prefix(c, &sb, i, buf->name);
  ir_sb_printf(&sb, "expected a %d-dimensional %s tensor, got a %%d-dimensional one", nd, dts);
  if ((st =
           arg_fail(c, LLVMBuildICmp(b, LLVMIntNE, ndim, LLVMConstInt(c->i32, (unsigned)nd, 0), ""),
                    LLVMConstInt(c->i32, KILN_ERR_SHAPE, 0), &sb, &ndim, 1, msgbuf)))
    return st;
  LLVMValueRef shape = tensor_field(c, t, 5, c->ptr);
  if (nd > 0) {
    ir_sb_init(&sb, c->ctx);
    arg_prefix(c, &sb, i, buf->name);
    ir_sb_puts(&sb, "shape is NULL");
    if ((st = arg_fail(c, LLVMBuildIsNull(b, shape, ""), LLVMConstInt(c->i32, KILN_ERR_MISUSE, 0),
                       &sb, NULL, 0, msgbuf)))
      return st;
  }

  /* want/got shapes and strides, and room for the message arguments */
  size_t vsz = sizeof(LLVMValueRef) * (size_t)(6 * nd + 1);
  LLVMValueRef *v = ir_malloc(c->ctx, vsz);
  if (!v) return KILN_ERR_NOMEM;
  LLVMValueRef *want = v, *got = v + nd, *wstr = v + 2 * nd, *gstr = v + 3 * nd, *args = v + 4 * nd;

  /* dtype and shape together: "expected float32 [128, 32], got float32 [128, 33]" */
  LLVMValueRef code, bits, lanes;
  tensor_dtype(c, t, &code, &bits, &lanes);
  LLVMValueRef dbad = dtype_differs(c, dt, code, bits, lanes);
  LLVMValueRef bad = dbad, empty = LLVMConstInt(c->i1, 0, 0);
  for (int d = 0; d < nd && !st; d++) {
    LLVMValueRef w = emit_expr(c, buf->shape[d]);
    if (!w) {
      st = cg_status(c);
      break;
    }
    want[d] = to_i64(c, w, buf->shape[d]->dtype);
    LLVMValueRef idx = LLVMConstInt(c->i64, (unsigned long long)d, 0);
    got[d] = LLVMBuildLoad2(b, c->i64, LLVMBuildGEP2(b, c->i64, shape, &idx, 1, ""), "");
    bad = LLVMBuildOr(b, bad, LLVMBuildICmp(b, LLVMIntNE, want[d], got[d], ""), "");
    empty = LLVMBuildOr(b, empty,
                        LLVMBuildICmp(b, LLVMIntEQ, got[d], LLVMConstInt(c->i64, 0, 0), ""), "");
  }
  if (!st) {
    LLVMBasicBlockRef fail = new_block(c, "arg.shape"), ok = new_block(c, "arg.shape.ok");
    LLVMBuildCondBr(b, bad, fail, ok);
    LLVMPositionBuilderAtEnd(b, fail);
    int na = 0;
    for (int d = 0; d < nd; d++) args[na++] = want[d];
    args[na++] = runtime_dtype_name(c, code, bits, lanes, dtbuf);
    for (int d = 0; d < nd; d++) args[na++] = got[d];
    ir_sb_init(&sb, c->ctx);
    arg_prefix(c, &sb, i, buf->name);
    ir_sb_printf(&sb, "expected %s [", dts);
    put_dims_fmt(&sb, nd);
    ir_sb_puts(&sb, "], got %s [");
    put_dims_fmt(&sb, nd);
    ir_sb_puts(&sb, "]");
    LLVMValueRef codev = LLVMBuildSelect(b, dbad, LLVMConstInt(c->i32, KILN_ERR_TYPE, 0),
                                         LLVMConstInt(c->i32, KILN_ERR_SHAPE, 0), "");
    st = fail_here(c, codev, &sb, args, na, msgbuf);
    LLVMPositionBuilderAtEnd(b, ok);
  }

  if (!st && nd > 0) {
    LLVMValueRef s = LLVMConstInt(c->i64, 1, 0);
    for (int d = nd - 1; d >= 0; d--) { /* compact strides of the (checked) shape */
      gstr[d] = s;
      s = LLVMBuildMul(b, s, got[d], "");
    }
    for (int d = 0; d < nd && !st; d++) {
      wstr[d] = gstr[d];
      if (!buf->nstrides) continue;
      LLVMValueRef w = emit_expr(c, buf->strides[d]);
      if (w)
        wstr[d] = to_i64(c, w, buf->strides[d]->dtype);
      else
        st = cg_status(c);
    }
  }
  if (!st && nd > 0) {
    LLVMValueRef strides = tensor_field(c, t, 6, c->ptr);
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(b);
    LLVMBasicBlockRef load = new_block(c, "arg.strides"), merge = new_block(c, "arg.strides.end");
    LLVMBuildCondBr(b, LLVMBuildIsNull(b, strides, ""), merge, load);
    LLVMPositionBuilderAtEnd(b, load);
    LLVMValueRef *given = args;
    for (int d = 0; d < nd; d++) {
      LLVMValueRef idx = LLVMConstInt(c->i64, (unsigned long long)d, 0);
      given[d] = LLVMBuildLoad2(b, c->i64, LLVMBuildGEP2(b, c->i64, strides, &idx, 1, ""), "");
    }
    LLVMBuildBr(b, merge);
    LLVMPositionBuilderAtEnd(b, merge);
    for (int d = 0; d < nd; d++) { /* the phis first: they head the block */
      LLVMValueRef phi = LLVMBuildPhi(b, c->i64, "");
      LLVMValueRef in[2] = {gstr[d], given[d]};
      LLVMBasicBlockRef from[2] = {pre, load};
      LLVMAddIncoming(phi, in, from, 2);
      gstr[d] = phi;
    }
    LLVMValueRef sbad = LLVMConstInt(c->i1, 0, 0);
    for (int d = 0; d < nd; d++) {
      LLVMValueRef ne = LLVMBuildICmp(b, LLVMIntNE, gstr[d], wstr[d], "");
      LLVMValueRef used = LLVMBuildICmp(b, LLVMIntNE, got[d], LLVMConstInt(c->i64, 1, 0), "");
      sbad = LLVMBuildOr(b, sbad, LLVMBuildAnd(b, ne, used, ""), "");
    }
    for (int d = 0; d < nd; d++) {
      args[d] = wstr[d];
      args[nd + d] = gstr[d];
    }
    ir_sb_init(&sb, c->ctx);
    arg_prefix(c, &sb, i, buf->name);
    ir_sb_puts(&sb, "expected strides [");
    put_dims_fmt(&sb, nd);
    ir_sb_puts(&sb, "], got [");
    put_dims_fmt(&sb, nd);
    ir_sb_puts(&sb, "]");
    st = arg_fail(c, sbad, LLVMConstInt(c->i32, KILN_ERR_SHAPE, 0), &sb, args, 2 * nd, msgbuf);
  }
  ir_free(c->ctx, v, vsz);
  if (st) return st;

  /* data (may be NULL for an empty tensor) */
  LLVMValueRef d0 = tensor_field(c, t, 0, c->ptr);
  ir_sb_init(&sb, c->ctx);
  arg_prefix(c, &sb, i, buf->name);
  ir_sb_puts(&sb, "data is NULL");
  LLVMValueRef nul = LLVMBuildAnd(b, LLVMBuildIsNull(b, d0, ""), LLVMBuildNot(b, empty, ""), "");
  if ((st = arg_fail(c, nul, LLVMConstInt(c->i32, KILN_ERR_MISUSE, 0), &sb, NULL, 0, msgbuf)))
    return st;
  LLVMValueRef off = tensor_field(c, t, 7, c->i64);
  *data = LLVMBuildGEP2(b, c->i8, d0, &off, 1, buf->name);
  /* elements are accessed with their natural alignment: check it */
  unsigned eb = elem_bytes(dt);
  if (eb > 1) {
    LLVMValueRef addr = LLVMBuildPtrToInt(b, *data, c->isize, "");
    LLVMValueRef mis = LLVMBuildAnd(b, addr, LLVMConstInt(c->isize, eb - 1, 0), "");
    ir_sb_init(&sb, c->ctx);
    arg_prefix(c, &sb, i, buf->name);
    ir_sb_printf(&sb, "data + byte_offset is not aligned to its %u-byte elements", eb);
    LLVMValueRef bad = LLVMBuildICmp(b, LLVMIntNE, mis, LLVMConstInt(c->isize, 0, 0), "");
    if ((st = arg_fail(c, bad, LLVMConstInt(c->i32, KILN_ERR_MISUSE, 0), &sb, NULL, 0, msgbuf)))
      return st;
  }
  return KILN_OK;
}

/* Emits `f.compute` (the body, with noalias buffer pointers and scalar values) and the entry
 * `f(args, nargs)` that checks the arguments and calls it. */
static kiln_status emit_func(cg *c, const ir_func *f, LLVMValueRef entry) {
  LLVMBuilderRef b = c->b;
  int np = f->nparams;
  size_t tsz = sizeof(LLVMTypeRef) * (size_t)(np > 0 ? np : 1);
  size_t vsz = sizeof(LLVMValueRef) * (size_t)(np > 0 ? np : 1);
  LLVMTypeRef *tys = ir_malloc(c->ctx, tsz);
  LLVMValueRef *vals = tys ? ir_malloc(c->ctx, vsz) : NULL;
  if (!vals) {
    ir_free(c->ctx, tys, tsz);
    return KILN_ERR_NOMEM;
  }
  kiln_status st = KILN_OK;
  c->func = f;
  c->npar = 0;
  for (int i = 0; i < np; i++) {
    const ir_node *p = f->params[i];
    if (!dtype_supported(p->dtype)) {
      char bt[32];
      cg_fail(c, p, KILN_ERR_UNSUPPORTED,
              "parameter %d has type %s, which code generation does not support", i,
              kiln_dtype_str(p->dtype, bt, sizeof bt));
      st = KILN_ERR_UNSUPPORTED;
      break;
    }
    tys[i] = p->kind == IR_BUFFER ? c->ptr : reg_type(c, p->dtype);
  }
  ir_strbuf name;
  ir_sb_init(&name, c->ctx);
  ir_sb_printf(&name, "%s.compute", f->name);
  char *cname = st ? NULL : ir_sb_take(&name, NULL);
  if (st)
    ir_sb_free(&name);
  else if (!cname)
    st = KILN_ERR_NOMEM;
  LLVMValueRef compute = NULL;
  if (!st) {
    compute = LLVMAddFunction(c->mod, cname, LLVMFunctionType(c->i32, tys, (unsigned)np, 0));
    ir_free(c->ctx, cname, strlen(cname) + 1);
    LLVMSetLinkage(compute, LLVMInternalLinkage);
    set_fn_attrs(c, compute);
    for (int i = 0; i < np; i++)
      if (f->params[i]->kind == IR_BUFFER) {
        add_fn_attr(c, compute, (unsigned)i + 1, "noalias");
        add_fn_attr(c, compute, (unsigned)i + 1, "nocapture");
      }
  }

  /* the entry */
  if (!st) {
    cg_fn fe;
    fn_begin(c, &fe, entry);
    LLVMValueRef args = LLVMGetParam(entry, 0), nargs = LLVMGetParam(entry, 1);
    LLVMValueRef msgbuf = fn_alloca(c, LLVMArrayType2(c->i8, 512), 1, "msg");
    LLVMValueRef dtbuf = fn_alloca(c, LLVMArrayType2(c->i8, 32), 1, "dtype");
    ir_strbuf sb;
    ir_sb_init(&sb, c->ctx);
    put_fmt_escaped(&sb, f->name);
    ir_sb_printf(&sb, ": expected %d argument%s, got %%d", np, np == 1 ? "" : "s");
    st = arg_fail(c, LLVMBuildICmp(b, LLVMIntNE, nargs, LLVMConstInt(c->i32, (unsigned)np, 0), ""),
                  LLVMConstInt(c->i32, KILN_ERR_MISUSE, 0), &sb, &nargs, 1, msgbuf);
    if (!st && np > 0) {
      ir_sb_init(&sb, c->ctx);
      put_fmt_escaped(&sb, f->name);
      ir_sb_puts(&sb, ": the argument array is NULL");
      st = arg_fail(c, LLVMBuildIsNull(b, args, ""), LLVMConstInt(c->i32, KILN_ERR_MISUSE, 0), &sb,
                    NULL, 0, msgbuf);
    }
    /* scalars first: shapes may use them */
    for (int i = 0; i < np && !st; i++) {
      if (f->params[i]->kind != IR_VAR) continue;
      LLVMValueRef idx = LLVMConstInt(c->i64, (unsigned long long)i, 0);
      LLVMValueRef t = LLVMBuildGEP2(b, c->tensor, args, &idx, 1, "");
      st = entry_scalar(c, i, (const ir_var *)f->params[i], t, msgbuf, dtbuf);
      if (!st) vals[i] = ir_ptrmap_get(&c->vars, f->params[i]);
    }
    for (int i = 0; i < np && !st; i++) {
      if (f->params[i]->kind != IR_BUFFER) continue;
      LLVMValueRef idx = LLVMConstInt(c->i64, (unsigned long long)i, 0);
      LLVMValueRef t = LLVMBuildGEP2(b, c->tensor, args, &idx, 1, "");
      st = entry_buffer(c, i, (const ir_buffer *)f->params[i], t, msgbuf, dtbuf, &vals[i]);
    }
    if (!st) {
      LLVMValueRef r = LLVMBuildCall2(b, LLVMFunctionType(c->i32, tys, (unsigned)np, 0), compute,
                                      vals, (unsigned)np, "");
      LLVMBuildRet(b, r);
    }
    fn_end(c, &fe);
  }

  /* the body */
  if (!st) {
    ir_ptrmap_free(&c->vars);
    ir_ptrmap_free(&c->bufs);
    ir_ptrmap_init(&c->vars, c->ctx);
    ir_ptrmap_init(&c->bufs, c->ctx);
    cg_fn fc;
    fn_begin(c, &fc, compute);
    for (int i = 0; i < np && !st; i++)
      if (f->params[i]->kind == IR_VAR &&
          ir_ptrmap_put(&c->vars, f->params[i], LLVMGetParam(compute, (unsigned)i)))
        st = KILN_ERR_NOMEM;
    for (int i = 0; i < np && !st; i++)
      if (f->params[i]->kind == IR_BUFFER &&
          !bind_buffer(c, (const ir_buffer *)f->params[i], LLVMGetParam(compute, (unsigned)i)))
        st = cg_status(c);
    if (!st) st = emit_stmt(c, f->body);
    if (!st && !block_closed(c)) LLVMBuildRet(b, LLVMConstInt(c->i32, 0, 0));
    fn_end(c, &fc);
  }
  ir_free(c->ctx, tys, tsz);
  ir_free(c->ctx, vals, vsz);
  return st;
}

/* ---- Module ---------------------------------------------------------------------------- */

void tgt_llvm_module_free(tgt_llvm_module *m) {
  if (!m) return;
  if (m->mod) LLVMDisposeModule(m->mod);
  if (m->tsc) LLVMOrcDisposeThreadSafeContext(m->tsc);
  if (m->tm) LLVMDisposeTargetMachine(m->tm);
  ir_free(m->ctx, m, sizeof *m);
}

static void cg_init_types(cg *c) {
  LLVMContextRef l = c->llc;
  c->i1 = LLVMInt1TypeInContext(l);
  c->i8 = LLVMInt8TypeInContext(l);
  c->i16 = LLVMInt16TypeInContext(l);
  c->i32 = LLVMInt32TypeInContext(l);
  c->i64 = LLVMInt64TypeInContext(l);
  c->f32 = LLVMFloatTypeInContext(l);
  c->f64 = LLVMDoubleTypeInContext(l);
  c->ptr = LLVMPointerTypeInContext(l, 0);
  c->voidt = LLVMVoidTypeInContext(l);
  c->isize = LLVMIntPtrTypeInContext(l, c->td);
  LLVMTypeRef dt[3] = {c->i8, c->i8, c->i16};
  c->dtype_ty = LLVMStructTypeInContext(l, dt, 3, 0);
  /* kiln_tensor: data, device_type, device_id, ndim, dtype, shape, strides, byte_offset */
  LLVMTypeRef tf[8] = {c->ptr, c->i32, c->i32, c->i32, c->dtype_ty, c->ptr, c->ptr, c->i64};
  c->tensor = LLVMStructTypeInContext(l, tf, 8, 0);
  c->md_loop = LLVMGetMDKindIDInContext(l, "llvm.loop", 9);
}

/* Consumes an LLVMErrorRef into a context error. */
static kiln_status llvm_error(kiln_context *ctx, LLVMErrorRef e, const char *what) {
  char *msg = LLVMGetErrorMessage(e);
  kiln_status st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "%s: %s", what, msg ? msg : "");
  if (msg) LLVMDisposeErrorMessage(msg);
  return st;
}

/* LLVM reports remarks and warnings (a loop it was asked to vectorize but could not, say)
 * through the context; a library must not print them. */
static void ignore_diagnostic(LLVMDiagnosticInfoRef di, void *ud) {
  (void)di;
  (void)ud;
}

static kiln_status optimize(tgt_llvm_module *m, int level) {
  char passes[32];
  snprintf(passes, sizeof passes, "default<O%d>", level);
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
  LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
  LLVMPassBuilderOptionsSetLoopUnrolling(po, 1);
  LLVMPassBuilderOptionsSetLoopInterleaving(po, 1);
  LLVMErrorRef e = LLVMRunPasses(m->mod, passes, m->tm, po);
  LLVMDisposePassBuilderOptions(po);
  return e ? llvm_error(m->ctx, e, "codegen: LLVM optimization failed") : KILN_OK;
}

/* Generates every function into m->mod. */
static kiln_status generate(tgt_llvm_module *m, const kiln_tir_module *tm) {
  cg c;
  memset(&c, 0, sizeof c);
  c.ctx = m->ctx;
  c.target = &m->target;
  c.llc = m->llc;
  c.mod = m->mod;
  c.td = LLVMGetModuleDataLayout(m->mod);
  cg_init_types(&c);
  /* float <-> float16 in hardware: x86 with F16C (the feature must be explicit: without it
   * LLVM would call __extendhfsf2, which the JIT does not provide), and AArch64 */
  c.native_f16 =
      (strncmp(c.target->triple, "x86_64", 6) == 0 && strstr(c.target->features, "+f16c")) ||
      strncmp(c.target->triple, "aarch64", 7) == 0 || strncmp(c.target->triple, "arm64", 5) == 0;
  ir_ptrmap_init(&c.vars, c.ctx);
  ir_ptrmap_init(&c.bufs, c.ctx);
  if (!(c.arena = ir_arena_new(c.ctx))) return KILN_ERR_NOMEM;
  c.b = LLVMCreateBuilderInContext(c.llc);
  c.ab = LLVMCreateBuilderInContext(c.llc);
  kiln_status st = KILN_OK;
  /* every entry first, so that internal functions never take an exported name */
  size_t esz = sizeof(LLVMValueRef) * (size_t)(tm->nfuncs > 0 ? tm->nfuncs : 1);
  LLVMValueRef *entries = ir_malloc(c.ctx, esz);
  if (!entries) st = KILN_ERR_NOMEM;
  LLVMTypeRef ep[2] = {c.ptr, c.i32};
  for (int i = 0; i < tm->nfuncs && !st; i++) {
    const ir_func *f = tm->funcs[i];
    if (tgt_jit_provides(f->name) || strncmp(f->name, "llvm.", 5) == 0) {
      st = ir_fail(
          c.ctx, f->h.span, KILN_ERR_UNSUPPORTED,
          "codegen: function name '%s' is reserved (generated code calls a symbol of that name)",
          f->name);
      break;
    }
    entries[i] = LLVMAddFunction(c.mod, f->name, LLVMFunctionType(c.i32, ep, 2, 0));
    set_fn_attrs(&c, entries[i]);
  }
  for (int i = 0; i < tm->nfuncs && !st; i++) {
    st = emit_func(&c, tm->funcs[i], entries[i]);
    ir_ptrmap_free(&c.vars);
    ir_ptrmap_free(&c.bufs);
    ir_ptrmap_init(&c.vars, c.ctx);
    ir_ptrmap_init(&c.bufs, c.ctx);
    ir_arena_reset(c.arena);
  }
  ir_free(c.ctx, entries, esz);
  LLVMDisposeBuilder(c.b);
  LLVMDisposeBuilder(c.ab);
  ir_ptrmap_free(&c.vars);
  ir_ptrmap_free(&c.bufs);
  ir_arena_free(c.arena);
  return st;
}

kiln_status tgt_codegen(kiln_context *ctx, const kiln_tir_module *mod, const tgt_target *target,
                        const tgt_codegen_options *opts, tgt_llvm_module **out) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!out || !mod || !target)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tgt_codegen: NULL argument");
  *out = NULL;
  int level = opts ? opts->opt_level : 3;
  if (level < 0 || level > 3)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tgt_codegen: opt_level %d is not 0..3",
                   level);
  for (int i = 0; i < mod->nfuncs; i++) {
    kiln_status st = ir_verify_func(ctx, mod->funcs[i]);
    if (st) return st;
  }
  tgt_llvm_init();
  tgt_llvm_module *m = ir_malloc(ctx, sizeof *m);
  if (!m) return KILN_ERR_NOMEM;
  memset(m, 0, sizeof *m);
  m->ctx = ctx;
  m->target = *target;
  kiln_status st = tgt_target_machine(ctx, target, &m->tm);
  if (!st) {
    m->tsc = LLVMOrcCreateNewThreadSafeContext();
    m->llc = LLVMOrcThreadSafeContextGetContext(m->tsc);
    LLVMContextSetDiagnosticHandler(m->llc, ignore_diagnostic, NULL);
    m->mod = LLVMModuleCreateWithNameInContext("kiln", m->llc);
    char *triple = LLVMGetTargetMachineTriple(m->tm);
    LLVMSetTarget(m->mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(m->tm);
    LLVMSetModuleDataLayout(m->mod, td);
    LLVMDisposeTargetData(td);
    st = generate(m, mod);
  }
  if (!st) {
    char *msg = NULL;
    if (LLVMVerifyModule(m->mod, LLVMReturnStatusAction, &msg))
      st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_INTERNAL,
                   "codegen: LLVM rejected the generated module: %s", msg ? msg : "");
    if (msg) LLVMDisposeMessage(msg);
  }
  if (!st && level > 0) st = optimize(m, level);
  if (st) {
    tgt_llvm_module_free(m);
    return st;
  }
  *out = m;
  return KILN_OK;
}

/* Copies n bytes into context memory, NUL-terminated. */
static kiln_status copy_out(kiln_context *ctx, const char *p, size_t n, char **out, size_t *len) {
  char *s = ir_malloc(ctx, n + 1);
  if (!s) return KILN_ERR_NOMEM;
  memcpy(s, p, n);
  s[n] = 0;
  *out = s;
  if (len) *len = n;
  return KILN_OK;
}

kiln_status tgt_llvm_module_ir(tgt_llvm_module *m, char **out, size_t *len) {
  if (!m || !out) return KILN_ERR_MISUSE;
  *out = NULL;
  char *s = LLVMPrintModuleToString(m->mod);
  kiln_status st = copy_out(m->ctx, s, strlen(s), out, len);
  LLVMDisposeMessage(s);
  return st;
}

/* Emits a copy of the module (code generation changes the module it runs on). */
static kiln_status emit_file(tgt_llvm_module *m, LLVMCodeGenFileType kind, char **out,
                             size_t *len) {
  LLVMModuleRef copy = LLVMCloneModule(m->mod);
  LLVMMemoryBufferRef buf = NULL;
  char *err = NULL;
  kiln_status st;
  if (LLVMTargetMachineEmitToMemoryBuffer(m->tm, copy, kind, &err, &buf))
    st = ir_fail(m->ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "codegen: LLVM cannot emit %s: %s",
                 kind == LLVMAssemblyFile ? "assembly" : "an object file", err ? err : "");
  else
    st = copy_out(m->ctx, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf), out, len);
  if (err) LLVMDisposeMessage(err);
  if (buf) LLVMDisposeMemoryBuffer(buf);
  LLVMDisposeModule(copy);
  return st;
}

kiln_status tgt_llvm_module_asm(tgt_llvm_module *m, char **out, size_t *len) {
  if (!m || !out) return KILN_ERR_MISUSE;
  *out = NULL;
  return emit_file(m, LLVMAssemblyFile, out, len);
}

kiln_status tgt_llvm_module_object(tgt_llvm_module *m, void **out, size_t *len) {
  if (!m || !out || !len) return KILN_ERR_MISUSE;
  *out = NULL;
  char *p;
  size_t n;
  kiln_status st = emit_file(m, LLVMObjectFile, &p, &n);
  if (st) return st;
  /* copy_out added a NUL; hand back a block of exactly n bytes */
  void *obj = n ? ir_malloc(m->ctx, n) : NULL;
  if (n && !obj)
    st = KILN_ERR_NOMEM;
  else if (n)
    memcpy(obj, p, n);
  ir_free(m->ctx, p, n + 1);
  *out = obj;
  *len = st ? 0 : n;
  return st;
}

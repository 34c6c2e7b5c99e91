/* llvm_probe.c: a library that uses LLVM on purpose; check_no_llvm.sh must flag it, which
 * proves the check that keeps libkiln_runtime.so free of LLVM can fail. */
#include <llvm-c/Core.h>

__attribute__((visibility("default"))) void *kiln_test_llvm_probe(void) {
  return LLVMContextCreate();
}

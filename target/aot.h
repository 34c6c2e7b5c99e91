/* aot.h: ahead-of-time compilation of a TIR module to a shared object. Data flow: a verified
 * kiln_tir_module -> tgt_codegen (codegen.h) -> an object file for the target (host or a
 * cross target such as aarch64) in a temporary file -> ld.lld-19 -> out.so, whose exported
 * kernels have the kiln_kernel_fn ABI and whose only undefined symbols are the runtime's
 * (kiln_rt_*) and a few libc/libm functions, resolved when the object is loaded. */
#ifndef KILN_TARGET_AOT_H
#define KILN_TARGET_AOT_H

#include "target/codegen.h"

/* Options of tgt_aot_compile; NULL means all defaults. */
typedef struct tgt_aot_options {
  /* Code generation options (NULL: tgt_codegen's defaults, opt_level 3). */
  const tgt_codegen_options *codegen;
  /* Directory holding libkiln_runtime.so for the target. When set, the shared object records
   * a dependency on it (DT_NEEDED, linked with -L<runtime_dir> -lkiln_runtime) and a run path
   * (`rpath`, below), so it loads in a process that has not loaded the runtime. When NULL the
   * kiln_rt_* symbols stay undefined and are resolved against whatever provides them in the
   * loading process (libkiln.so, libkiln_runtime.so or an executable linked with -rdynamic). */
  const char *runtime_dir;
  /* The run path to record with runtime_dir (e.g. "$ORIGIN" or "$ORIGIN/../lib"; the dollar
   * sign is literal). NULL: runtime_dir itself. Ignored without runtime_dir. */
  const char *rpath;
  /* DT_SONAME of the output. NULL: the output file's base name. */
  const char *soname;
  /* The linker. NULL: $KILN_LLD if set, else `ld.lld-19` on $PATH, else /usr/bin/ld.lld-19,
   * else /usr/lib/llvm-19/bin/ld.lld. */
  const char *linker;
} tgt_aot_options;

/* Generates code for every function of mod for target t and links it into the shared object
 * out_so_path (replaced if it exists). The object file goes to a temporary file in $TMPDIR
 * (or /tmp), removed on every path. For the host target, the shared object also records a
 * dependency on the libm the compiler itself uses, so libm functions resolve wherever it is
 * loaded. Errors: codegen's errors (tgt_codegen); KILN_ERR_IO when the temporary file cannot
 * be written, when no linker is found (the message names where it looked) or when linking
 * fails (the message carries the linker's own output, e.g. "cannot open output file");
 * KILN_ERR_MISUSE for NULL arguments; KILN_ERR_NOMEM. Nothing is left allocated on failure. */
kiln_status tgt_aot_compile(kiln_context *ctx, const tgt_target *t, const kiln_tir_module *mod,
                            const char *out_so_path, const tgt_aot_options *opts);

/* Finds the linker as tgt_aot_compile does (explicit path, $KILN_LLD, PATH, fixed paths) and
 * writes its path into buf. KILN_ERR_IO with a message naming the places searched when there
 * is none (or when the explicit path / $KILN_LLD is not an executable file). */
kiln_status tgt_aot_find_linker(kiln_context *ctx, const char *explicit_path, char *buf,
                                size_t size);

#endif

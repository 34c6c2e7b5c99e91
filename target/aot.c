/* aot.c: ahead-of-time compilation to shared objects. tgt_codegen makes the LLVM module, the
 * target machine emits an ELF object into a temporary file, and ld.lld-19 (run directly with
 * posix_spawn, never through a shell) links it with -shared. The kernel ABI symbols stay
 * undefined in the result (or come from libkiln_runtime.so when a runtime directory is given);
 * nothing of LLVM is linked in. The linker's output is captured and becomes the error message
 * when it fails. Temporary files are removed on every path. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "target/aot.h"

extern char **environ;

enum { PATH_BYTES = 4096, LINKER_OUTPUT_BYTES = 2048 };

/* Whether path names an executable regular file. */
static bool is_executable(const char *path) {
  struct stat st;
  return path && path[0] && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
         access(path, X_OK) == 0;
}

/* Copies s into buf; false when it does not fit. */
static bool copy_path(char *buf, size_t size, const char *s) {
  int n = snprintf(buf, size, "%s", s);
  return n >= 0 && (size_t)n < size;
}

/* Searches $PATH for an executable named `name`. */
static bool find_on_path(const char *name, char *buf, size_t size) {
  const char *path = getenv("PATH");
  while (path && *path) {
    const char *end = strchr(path, ':');
    size_t len = end ? (size_t)(end - path) : strlen(path);
    if (len > 0) {
      int n = snprintf(buf, size, "%.*s/%s", (int)len, path, name);
      if (n >= 0 && (size_t)n < size && is_executable(buf)) return true;
    }
    path += len + (end ? 1 : 0);
  }
  return false;
}

/* Order: an explicit path, $KILN_LLD, ld.lld-19 on PATH, two fixed paths. An explicit path or
 * $KILN_LLD that is not executable is an error rather than a reason to look elsewhere: the
 * user asked for that linker. */
kiln_status tgt_aot_find_linker(kiln_context *ctx, const char *explicit_path, char *buf,
                                size_t size) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!buf || size == 0)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tgt_aot_find_linker: NULL buffer");
  buf[0] = 0;
  const char *env = getenv("KILN_LLD");
  const char *chosen = explicit_path ? explicit_path : (env && env[0] ? env : NULL);
  if (chosen) {
    if (!is_executable(chosen))
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO,
                     "aot: the linker '%s' (%s) does not exist or is not an executable file",
                     chosen, explicit_path ? "given in the options" : "from $KILN_LLD");
    if (!copy_path(buf, size, chosen))
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "aot: the linker path '%s' is too long",
                     chosen);
    return KILN_OK;
  }
  if (find_on_path("ld.lld-19", buf, size)) return KILN_OK;
  static const char *const fixed[] = {"/usr/bin/ld.lld-19", "/usr/lib/llvm-19/bin/ld.lld"};
  for (int i = 0; i < 2; i++)
    if (is_executable(fixed[i]) && copy_path(buf, size, fixed[i])) return KILN_OK;
  buf[0] = 0;
  return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO,
                 "aot: no linker found: set $KILN_LLD, or install ld.lld-19 (looked on $PATH, "
                 "in /usr/bin/ld.lld-19 and /usr/lib/llvm-19/bin/ld.lld)");
}

/* Writes the object bytes to a new temporary file "$TMPDIR/kiln-aot-XXXXXX.o" whose path goes
 * to `path`. On failure nothing is left on disk. */
static kiln_status write_temp_object(kiln_context *ctx, const void *obj, size_t len, char *path,
                                     size_t size) {
  const char *dir = getenv("TMPDIR");
  if (!dir || !dir[0]) dir = "/tmp";
  int n = snprintf(path, size, "%s/kiln-aot-XXXXXX.o", dir);
  if (n < 0 || (size_t)n >= size)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "aot: temporary directory '%s' is too long",
                   dir);
  int fd = mkstemps(path, 2);
  if (fd < 0)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO,
                   "aot: cannot create a temporary object file in '%s': %s", dir,
                   strerror(errno));
  const char *p = obj;
  size_t left = len;
  int err = 0;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      err = w < 0 ? errno : EIO;
      break;
    }
    p += w;
    left -= (size_t)w;
  }
  if (close(fd) != 0 && !err) err = errno;
  if (err) {
    unlink(path);
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "aot: cannot write the temporary object '%s': %s",
                   path, strerror(err));
  }
  return KILN_OK;
}

/* Runs argv[0] with argv, stdin from /dev/null, stdout and stderr into a pipe whose first
 * LINKER_OUTPUT_BYTES - 1 bytes land in `output` (the rest is read and dropped so the child
 * never blocks). *exit_status is the exit status, or -1 when the child died from a signal. */
static kiln_status run_program(kiln_context *ctx, char **argv, char *output, int *exit_status) {
  output[0] = 0;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "aot: cannot create a pipe: %s",
                   strerror(errno));
  posix_spawn_file_actions_t fa;
  int err = posix_spawn_file_actions_init(&fa);
  if (!err) err = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (!err) err = posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  if (!err) err = posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  pid_t pid = -1;
  if (!err) err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (err) {
    close(fds[0]);
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "aot: cannot run the linker '%s': %s", argv[0],
                   strerror(err));
  }
  size_t n = 0;
  char scratch[512];
  for (;;) {
    bool keep = n + 1 < LINKER_OUTPUT_BYTES;
    char *dst = keep ? output + n : scratch;
    size_t room = keep ? LINKER_OUTPUT_BYTES - 1 - n : sizeof scratch;
    ssize_t r = read(fds[0], dst, room);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (keep) n += (size_t)r;
  }
  output[n] = 0;
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "aot: waiting for the linker failed: %s",
                     strerror(errno));
  }
  *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return KILN_OK;
}

/* The file of the libm this process uses (for the host's DT_NEEDED), or false. Found from the
 * address of a libm function, so it is the one the compiler runs with. */
static bool host_libm_path(char *buf, size_t size) {
  double (*fn)(double) = exp;
  void *addr;
  memcpy(&addr, &fn, sizeof addr);
  Dl_info info;
  if (!dladdr(addr, &info) || !info.dli_fname || !strstr(info.dli_fname, "libm")) return false;
  return copy_path(buf, size, info.dli_fname) && access(buf, R_OK) == 0;
}

/* Links object file `obj` into the shared object `out` (see tgt_aot_compile). */
static kiln_status link_shared(kiln_context *ctx, const tgt_target *t, const char *linker,
                               const char *obj, const char *out, const tgt_aot_options *o) {
  char soname[PATH_BYTES], libdir[PATH_BYTES + 2], libm[PATH_BYTES];
  const char *base = strrchr(out, '/');
  if (!copy_path(soname, sizeof soname, o->soname ? o->soname : base ? base + 1 : out))
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "aot: soname too long");
  char *argv[32];
  int argc = 0;
  argv[argc++] = (char *)linker;
  argv[argc++] = "-shared";
  argv[argc++] = "--hash-style=both";
  argv[argc++] = "-z";
  argv[argc++] = "noexecstack";
  argv[argc++] = "-z";
  argv[argc++] = "relro";
  argv[argc++] = "-z";
  argv[argc++] = "now";
  argv[argc++] = "--eh-frame-hdr";
  argv[argc++] = "-soname";
  argv[argc++] = soname;
  argv[argc++] = "-o";
  argv[argc++] = (char *)out;
  argv[argc++] = (char *)obj;
  if (o->runtime_dir) {
    if (snprintf(libdir, sizeof libdir, "-L%s", o->runtime_dir) >= (int)sizeof libdir)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "aot: runtime directory path too long");
    argv[argc++] = libdir;
    argv[argc++] = "-lkiln_runtime";
    argv[argc++] = "-rpath";
    argv[argc++] = (char *)(o->rpath ? o->rpath : o->runtime_dir);
  }
  if (t->is_host && host_libm_path(libm, sizeof libm)) argv[argc++] = libm;
  argv[argc] = NULL;

  char output[LINKER_OUTPUT_BYTES];
  int status = 0;
  kiln_status st = run_program(ctx, argv, output, &status);
  if (st) return st;
  if (status == 0) return KILN_OK;
  size_t n = strlen(output);
  while (n > 0 && (output[n - 1] == '\n' || output[n - 1] == ' ')) output[--n] = 0;
  if (status < 0)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO, "aot: linking '%s': the linker '%s' crashed: %s",
                   out, linker, output);
  return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_IO,
                 "aot: linking '%s' failed (%s exited with status %d): %s", out, linker, status,
                 n ? output : "(no output)");
}

kiln_status tgt_aot_compile(kiln_context *ctx, const tgt_target *t, const kiln_tir_module *mod,
                            const char *out_so_path, const tgt_aot_options *opts) {
  if (!ctx) return KILN_ERR_MISUSE;
  if (!t || !mod || !out_so_path || !out_so_path[0])
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tgt_aot_compile: NULL argument");
  tgt_aot_options defaults = {0};
  const tgt_aot_options *o = opts ? opts : &defaults;

  /* find the linker first: no point generating code that cannot be linked */
  char linker[PATH_BYTES];
  kiln_status st = tgt_aot_find_linker(ctx, o->linker, linker, sizeof linker);
  if (st) return st;

  tgt_llvm_module *m = NULL;
  st = tgt_codegen(ctx, mod, t, o->codegen, &m);
  if (st) return st;
  void *obj = NULL;
  size_t len = 0;
  st = tgt_llvm_module_object(m, &obj, &len);
  tgt_llvm_module_free(m);
  if (st) return st;

  char tmp[PATH_BYTES];
  st = write_temp_object(ctx, obj, len, tmp, sizeof tmp);
  ir_free(ctx, obj, len);
  if (st) return st;
  st = link_shared(ctx, t, linker, tmp, out_so_path, o);
  unlink(tmp);
  return st;
}

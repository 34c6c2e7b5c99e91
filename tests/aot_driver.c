/* aot_driver.c: the target half of the aarch64 cross test (aot_cross_test.sh). Built with
 * aarch64-linux-gnu-gcc together with the runtime sources and -rdynamic (so the shared object's
 * undefined kiln_rt_* symbols resolve against this executable), run under qemu-aarch64:
 *   aot_driver KERNELS.so CASES.txt
 * loads the kernels, runs every case of cases.txt (written by aot_cross_gen.c) and prints the
 * results in the format of expected.txt. Plain C and kiln_runtime.h only. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln_runtime.h"

enum { MAXP = 16 };

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Reads NBYTES HEX into a new block. */
static unsigned char *read_bytes(FILE *f, size_t *n) {
  unsigned long long len;
  char c;
  if (fscanf(f, "%llu %c", &len, &c) != 2) return NULL;
  unsigned char *p = calloc(1, len ? len : 1);
  if (!p) return NULL;
  if (len == 0) {
    *n = 0;
    return c == '-' ? p : (free(p), NULL);
  }
  for (size_t i = 0; i < len; i++) {
    int hi = i == 0 ? hexval(c) : hexval(fgetc(f)), lo = hexval(fgetc(f));
    if (hi < 0 || lo < 0) {
      free(p);
      return NULL;
    }
    p[i] = (unsigned char)(hi << 4 | lo);
  }
  *n = len;
  return p;
}

static int run_case(void *so, FILE *f, const char *name, int nargs) {
  kiln_tensor t[MAXP];
  int64_t shapes[MAXP][8];
  size_t bytes[MAXP];
  int rc = 1, have = 0;
  memset(t, 0, sizeof t);
  if (nargs < 0 || nargs > MAXP) return 1;
  for (; have < nargs; have++) {
    int code, bits, lanes, ndim;
    if (fscanf(f, " arg %d %d %d %d", &code, &bits, &lanes, &ndim) != 4 || ndim < 0 || ndim > 8)
      goto done;
    for (int d = 0; d < ndim; d++)
      if (fscanf(f, "%lld", (long long *)&shapes[have][d]) != 1) goto done;
    t[have].dtype = (kiln_dtype){(uint8_t)code, (uint8_t)bits, (uint16_t)lanes};
    t[have].device_type = 1;
    t[have].ndim = ndim;
    t[have].shape = ndim ? shapes[have] : NULL;
    t[have].data = read_bytes(f, &bytes[have]);
    if (!t[have].data) goto done;
  }
  char end[8];
  if (fscanf(f, " %7s", end) != 1 || strcmp(end, "end") != 0) goto done;
  void *sym = dlsym(so, name);
  if (!sym) {
    fprintf(stderr, "aot_driver: no kernel '%s': %s\n", name, dlerror());
    goto done;
  }
  kiln_kernel_fn fn;
  memcpy(&fn, &sym, sizeof fn);
  int32_t st = fn(t, nargs);
  printf("kernel %s status %d\n", name, st);
  if (st) fprintf(stderr, "aot_driver: %s: %s\n", name, kiln_last_error());
  for (int i = 0; i < nargs; i++) {
    printf("out %d ", i);
    const unsigned char *p = t[i].data;
    for (size_t k = 0; k < bytes[i]; k++) printf("%02x", p[k]);
    if (bytes[i] == 0) putchar('-');
    putchar('\n');
  }
  rc = 0;
done:
  if (rc) fprintf(stderr, "aot_driver: malformed case for '%s'\n", name);
  for (int i = 0; i < have; i++) free(t[i].data);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: aot_driver KERNELS.so CASES.txt\n");
    return 2;
  }
  void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!so) {
    fprintf(stderr, "aot_driver: dlopen %s: %s\n", argv[1], dlerror());
    return 1;
  }
  FILE *f = fopen(argv[2], "r");
  if (!f) {
    fprintf(stderr, "aot_driver: cannot open %s\n", argv[2]);
    return 1;
  }
  char name[256];
  int nargs, rc = 0, ncases = 0;
  while (fscanf(f, " kernel %255s %d", name, &nargs) == 2) {
    ncases++;
    if (run_case(so, f, name, nargs)) {
      rc = 1;
      break;
    }
  }
  fclose(f);
  dlclose(so);
  if (ncases == 0) {
    fprintf(stderr, "aot_driver: no cases in %s\n", argv[2]);
    rc = 1;
  }
  return rc;
}

/* npy.h: NumPy's .npy files for the command line: `kiln run` reads its inputs from them and
 * writes its outputs to them. Reads format versions 1.0, 2.0 and 3.0 (the header dict parsed
 * properly, keys in any order) for the dtypes kiln has a numpy spelling for; writes version
 * 1.0 (2.0 when the header needs it) byte for byte as np.save does. Errors go into a message
 * buffer that names the file and the problem. Tool code, not part of libkiln. */
#ifndef KILN_TOOLS_NPY_H
#define KILN_TOOLS_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "kiln/kiln_runtime.h"

/* numpy's own limit on the rank of an array. */
#define NPY_MAX_DIMS 32

/* An array read from a .npy file. data is 64-byte aligned, row-major and holds nbytes
 * (never NULL, even for 0 elements); free it with npy_array_free. */
typedef struct npy_array {
  kiln_dtype dtype;
  int ndim;
  int64_t shape[NPY_MAX_DIMS];
  void *data;
  size_t nbytes;
  int major, minor; /* the file's format version */
} npy_array;

/* Reads the .npy file at path into *out. Errors (the message, "PATH: ...", goes into err):
 * KILN_ERR_IO when it cannot be opened or read, KILN_ERR_CORRUPT for a malformed or truncated
 * file, KILN_ERR_UNSUPPORTED for a dtype kiln has no type for, big-endian data or a Fortran-
 * order array, KILN_ERR_NOMEM. *out is left empty on error. */
kiln_status npy_read(const char *path, npy_array *out, char *err, size_t errlen);

/* The same over the bytes of a file in memory; `name` labels messages. */
kiln_status npy_parse(const void *bytes, size_t len, const char *name, npy_array *out,
                      char *err, size_t errlen);

void npy_array_free(npy_array *a);

/* The numpy descr ("<f4", "|b1", ...) of a kiln dtype, NULL when numpy has none (bfloat16,
 * vectors, handles). */
const char *npy_descr(kiln_dtype t);

/* Writes data (row-major, nbytes = element count * dtype size) as a .npy file at path, with
 * the header np.save writes for the same array. KILN_ERR_UNSUPPORTED for a dtype without a
 * numpy spelling, KILN_ERR_MISUSE for a size that does not match the shape, KILN_ERR_IO when
 * writing fails (the message names the file and the system's reason). */
kiln_status npy_write(const char *path, kiln_dtype dtype, int ndim, const int64_t *shape,
                      const void *data, size_t nbytes, char *err, size_t errlen);

#endif

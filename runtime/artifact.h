/* artifact.h: the .kiln artifact container: one file holding a compiled model's sections
 * (META and PLAN JSON, PARAMS raw tensor bytes, CODE a shared object). The compiler writes it
 * with rt_artifact_write; the runtime maps it with rt_artifact_open, reads sections in place
 * (zero copy) and loads the code through memfd + dlopen. libc and libdl only, no LLVM.
 * Internal header (not part of the public API); the layout is described in artifact.c. */
#ifndef KILN_RT_ARTIFACT_H
#define KILN_RT_ARTIFACT_H

#include <stdint.h>

#include "kiln/kiln_runtime.h"

/* Section kinds. Readers skip kinds they do not know (of the same major version). */
enum {
  RT_SECTION_META = 1,   /* JSON: target, buckets, inputs/outputs, options, version */
  RT_SECTION_PLAN = 2,   /* JSON: per bucket the kernel calls and the storage plan */
  RT_SECTION_PARAMS = 3, /* raw tensor bytes, tensors 64-byte aligned inside the blob */
  RT_SECTION_CODE = 4,   /* the bytes of a shared object */
};

/* The format version this code writes; it reads every minor of this major. */
#define RT_ARTIFACT_MAJOR 1
#define RT_ARTIFACT_MINOR 0

/* Every section starts at a multiple of this many bytes in the file. */
#define RT_ARTIFACT_ALIGN 64

/* One section to write: the bytes are borrowed for the duration of the call. */
typedef struct rt_section_in {
  uint32_t kind;    /* RT_SECTION_xxx or another non-zero kind */
  const void *data; /* may be NULL when size is 0 */
  uint64_t size;
} rt_section_in;

/* An open artifact: the mapped file and, once loaded, its code. Opaque. */
typedef struct rt_artifact rt_artifact;

/* Writes the n sections (kinds non-zero and distinct) to path, in the given order. The bytes
 * go to path + ".tmp", are fsync'ed and renamed over path, so path is either the old file or
 * the complete new one, never half written. KILN_ERR_MISUSE for bad arguments, KILN_ERR_IO
 * (naming the file and the system's reason) when writing fails, KILN_ERR_NOMEM. */
kiln_status rt_artifact_write(const char *path, const rt_section_in *sections, int n);

/* The bytes rt_artifact_write would write, in memory: *out (malloc'ed, free with free) of
 * *size bytes. Same errors as rt_artifact_write without the I/O ones. */
kiln_status rt_artifact_serialize(const rt_section_in *sections, int n, void **out,
                                  uint64_t *size);

/* rt_artifact_open over bytes in memory: the artifact takes a private, 64-byte aligned copy
 * (the caller keeps data); `name` labels messages (NULL: "<memory>"). Same validation and
 * errors (no KILN_ERR_IO except when the code cannot be loaded later). */
kiln_status rt_artifact_open_memory(const void *data, uint64_t size, const char *name,
                                    rt_artifact **out);

/* Maps the file read-only and validates it completely: magic, version, section table bounds,
 * alignment, no overlap, zero padding, and every section's checksum. *out is the artifact
 * (free it with rt_artifact_close) or NULL on error. Errors: KILN_ERR_IO (cannot open or map),
 * KILN_ERR_CORRUPT (damaged or truncated file), KILN_ERR_UNSUPPORTED (another major version),
 * KILN_ERR_MISUSE, KILN_ERR_NOMEM; the message (kiln_last_error) names the file and section. */
kiln_status rt_artifact_open(const char *path, rt_artifact **out);

/* The bytes of the first section of this kind, pointing into the mapping (valid until
 * rt_artifact_close; 64-byte aligned), and its size in *size if size is not NULL. NULL (and
 * *size = 0) when there is no such section. */
const void *rt_artifact_section(const rt_artifact *a, uint32_t kind, uint64_t *size);

/* Loads the CODE section as a shared object (RTLD_NOW | RTLD_LOCAL) and gives its handle in
 * *dl_handle (owned by the artifact: rt_artifact_close dlcloses it). Loading twice gives the
 * same handle. KILN_ERR_CORRUPT when there is no CODE section, KILN_ERR_IO when the object
 * cannot be written to a memfd / temp file or dlopen fails (the message has dlerror's text). */
kiln_status rt_artifact_load_code(rt_artifact *a, void **dl_handle);

/* The address of symbol `name` in the loaded code, or NULL (with kiln_last_error set) when
 * the code is not loaded or has no such symbol. */
void *rt_artifact_symbol(rt_artifact *a, const char *name);

/* Unloads the code, unmaps the file and frees the artifact. NULL is allowed. */
void rt_artifact_close(rt_artifact *a);

/* The checksum used for sections and the header (documented in artifact.c): a 64-bit hash of
 * n bytes. Exposed so tests and tools can build or repair files by hand. */
uint64_t rt_artifact_hash64(const void *data, uint64_t n);

#endif

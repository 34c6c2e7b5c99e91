/* kiln_runtime.h: the stand-alone runtime API (no LLVM, libc only).
 * Status codes, data types and the thread-local last error, shared by the runtime library
 * (libkiln_runtime.so) and the compiler (libkiln.so, which links the runtime). */
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(KILN_BUILDING)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

/* Every public function returns a status; 0 is success. User mistakes get specific codes,
 * broken invariants get KILN_ERR_INTERNAL. */
typedef enum kiln_status {
  KILN_OK = 0,
  KILN_ERR_NOMEM,       /* an allocation failed */
  KILN_ERR_MISUSE,      /* a NULL or wrong handle, an out-of-range argument */
  KILN_ERR_PARSE,       /* malformed text */
  KILN_ERR_TYPE,        /* ill-typed expression or mismatched dtypes */
  KILN_ERR_SHAPE,       /* wrong number of indices, wrong shape */
  KILN_ERR_UNDEFINED,   /* a variable or buffer used but not defined */
  KILN_ERR_SCHEDULE,    /* an invalid schedule primitive */
  KILN_ERR_IO,          /* a file could not be read or written */
  KILN_ERR_CORRUPT,     /* a corrupted artifact or database */
  KILN_ERR_UNSUPPORTED, /* a valid request kiln cannot do (yet) */
  KILN_ERR_RUNTIME,     /* an error while executing (e.g. out-of-bounds access) */
  KILN_ERR_INTERNAL,    /* a kiln bug */
  KILN_STATUS_COUNT
} kiln_status;

/* A short name for a status ("ok", "parse error", ...). Never NULL. */
KILN_API const char *kiln_status_str(kiln_status s);

/* The message of the last error raised on this thread by any kiln function ("" if none).
 * Valid until the next failing kiln call on this thread. */
KILN_API const char *kiln_last_error(void);

/* Data types: a type code, a bit width and a vector lane count (1 for scalars). */
typedef enum kiln_type_code {
  KILN_TYPE_INT = 0,
  KILN_TYPE_UINT = 1,
  KILN_TYPE_FLOAT = 2,
  KILN_TYPE_HANDLE = 3, /* an opaque pointer */
  KILN_TYPE_BFLOAT = 4,
  KILN_TYPE_BOOL = 5,   /* stored as one byte */
  KILN_TYPE_VOID = 6    /* the "type" of statements */
} kiln_type_code;

typedef struct kiln_dtype {
  uint8_t code;   /* kiln_type_code */
  uint8_t bits;
  uint16_t lanes;
} kiln_dtype;

/* Scalar types by name. */
#define KILN_BOOL ((kiln_dtype){KILN_TYPE_BOOL, 8, 1})
#define KILN_INT8 ((kiln_dtype){KILN_TYPE_INT, 8, 1})
#define KILN_INT16 ((kiln_dtype){KILN_TYPE_INT, 16, 1})
#define KILN_INT32 ((kiln_dtype){KILN_TYPE_INT, 32, 1})
#define KILN_INT64 ((kiln_dtype){KILN_TYPE_INT, 64, 1})
#define KILN_UINT8 ((kiln_dtype){KILN_TYPE_UINT, 8, 1})
#define KILN_UINT16 ((kiln_dtype){KILN_TYPE_UINT, 16, 1})
#define KILN_UINT32 ((kiln_dtype){KILN_TYPE_UINT, 32, 1})
#define KILN_UINT64 ((kiln_dtype){KILN_TYPE_UINT, 64, 1})
#define KILN_FLOAT16 ((kiln_dtype){KILN_TYPE_FLOAT, 16, 1})
#define KILN_BFLOAT16 ((kiln_dtype){KILN_TYPE_BFLOAT, 16, 1})
#define KILN_FLOAT32 ((kiln_dtype){KILN_TYPE_FLOAT, 32, 1})
#define KILN_FLOAT64 ((kiln_dtype){KILN_TYPE_FLOAT, 64, 1})
#define KILN_HANDLE ((kiln_dtype){KILN_TYPE_HANDLE, 64, 1})
#define KILN_VOID ((kiln_dtype){KILN_TYPE_VOID, 0, 0})

/* Writes the short name of t ("float32", "int8x16", "bool", "void") into buf (at least
 * 32 bytes) and returns buf. */
KILN_API char *kiln_dtype_str(kiln_dtype t, char *buf, size_t size);

/* Parses a dtype name as written by kiln_dtype_str; also accepts the short forms f32, f16,
 * bf16, f64, i8, i16, i32, i64, u8. Returns KILN_ERR_PARSE for an unknown name. */
KILN_API kiln_status kiln_dtype_parse(const char *s, size_t len, kiln_dtype *out);

/* Non-zero if the two types are the same. */
KILN_API int kiln_dtype_eq(kiln_dtype a, kiln_dtype b);

/* Bytes one element takes in memory (all lanes), 0 for void. bool takes one byte a lane. */
KILN_API size_t kiln_dtype_bytes(kiln_dtype t);

/* The library version as "MAJOR.MINOR.PATCH". */
KILN_API const char *kiln_version(void);

#ifdef __cplusplus
}
#endif
#endif

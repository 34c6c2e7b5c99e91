/* status.c: status names and the thread-local last error that every public entry point
 * leaves behind when it fails (the compiler's context keeps its own copy as well). */
#include <stdio.h>
#include <string.h>

#include "rt_internal.h"

static _Thread_local char last_error[1024];

static const char *const status_names[KILN_STATUS_COUNT] = {
    [KILN_OK] = "ok",
    [KILN_ERR_NOMEM] = "out of memory",
    [KILN_ERR_MISUSE] = "API misuse",
    [KILN_ERR_PARSE] = "parse error",
    [KILN_ERR_TYPE] = "type error",
    [KILN_ERR_SHAPE] = "shape error",
    [KILN_ERR_UNDEFINED] = "undefined name",
    [KILN_ERR_SCHEDULE] = "schedule error",
    [KILN_ERR_IO] = "I/O error",
    [KILN_ERR_CORRUPT] = "corrupted data",
    [KILN_ERR_UNSUPPORTED] = "unsupported",
    [KILN_ERR_RUNTIME] = "runtime error",
    [KILN_ERR_INTERNAL] = "internal error",
};

KILN_API const char *kiln_status_str(kiln_status s) {
  if ((unsigned)s >= KILN_STATUS_COUNT) return "unknown status";
  return status_names[s];
}

KILN_API const char *kiln_last_error(void) { return last_error; }

kiln_status rt_set_last_error(kiln_status code, const char *msg) {
  snprintf(last_error, sizeof last_error, "%s", msg ? msg : "");
  return code;
}

kiln_status rt_errorf(kiln_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return code;
}

KILN_API const char *kiln_version(void) { return KILN_VERSION_STRING; }

/* rt_internal.h: helpers shared inside the runtime library and by the compiler, which
 * compiles the runtime sources in as well. Not part of the public API. */
#ifndef KILN_RT_INTERNAL_H
#define KILN_RT_INTERNAL_H

#include <stdarg.h>

#include "kiln/kiln_runtime.h"

/* Records msg as this thread's last error and returns code (so one line can fail). */
kiln_status rt_set_last_error(kiln_status code, const char *msg);

/* printf-style variant of rt_set_last_error. */
kiln_status rt_errorf(kiln_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

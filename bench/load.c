/* load.c: kiln-bench-load, the artifact load timing of the model benchmark (bench/models.py).
 * Times what an application pays before its first inference: kiln_model_load (read and
 * validate the .kiln file, load its shared object, map the weights) plus kiln_session_new
 * (the session's buffers), the counterpart of ONNX Runtime's session creation. Repeats it
 * (the first load is reported apart: it sees a cold page cache and a cold dynamic loader) and
 * prints one JSON object: {"first_ms": F, "median_ms": M, "min_ms": A, "max_ms": B,
 * "repeats": N}.
 *
 * Usage: kiln-bench-load MODEL.kiln [--repeats N]   (default 10) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln/kiln_runtime.h"

enum { MAX_REPEATS = 1000 };

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* One load + session, then both freed; the time in ms, or -1 with the error printed. */
static double load_once(const char *path) {
  kiln_model *m = NULL;
  kiln_session *s = NULL;
  double t0 = now_ms();
  if (kiln_model_load(path, &m) || kiln_session_new(m, &s)) {
    fprintf(stderr, "kiln-bench-load: %s: %s\n", path, kiln_last_error());
    kiln_model_free(m);
    return -1;
  }
  double t = now_ms() - t0;
  kiln_session_free(s);
  kiln_model_free(m);
  return t;
}

int main(int argc, char **argv) {
  const char *path = NULL;
  int repeats = 10;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--repeats") && i + 1 < argc) {
      repeats = atoi(argv[++i]);
      if (repeats < 1 || repeats > MAX_REPEATS) {
        fprintf(stderr, "kiln-bench-load: --repeats takes 1 to %d\n", MAX_REPEATS);
        return 2;
      }
    } else if (!path && argv[i][0] != '-') {
      path = argv[i];
    } else {
      path = NULL;
      break;
    }
  }
  if (!path) {
    fprintf(stderr, "usage: kiln-bench-load MODEL.kiln [--repeats N]\n");
    return 2;
  }
  static double t[MAX_REPEATS];
  double first = load_once(path);
  if (first < 0) return 1;
  for (int i = 0; i < repeats; i++)
    if ((t[i] = load_once(path)) < 0) return 1;
  qsort(t, (size_t)repeats, sizeof t[0], cmp_double);
  double med = repeats % 2 ? t[repeats / 2] : (t[repeats / 2 - 1] + t[repeats / 2]) / 2;
  printf("{\"first_ms\": %.4f, \"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, "
         "\"repeats\": %d}\n",
         first, med, t[0], t[repeats - 1], repeats);
  return 0;
}

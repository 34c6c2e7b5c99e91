/* cmd_inspect.c: `kiln inspect`: what a compiled model (.kiln) holds, read the way the runtime
 * reads it (kiln_model_load validates the file; META and PLAN come from kiln_model_meta_json /
 * kiln_model_plan_json, parsed with cJSON; the section table from the container's header,
 * runtime/artifact.c):
 *   kiln inspect MODEL.kiln [--json]
 * Prints the file, format and kiln versions, creation time, target, model name, options,
 * sections, inputs/outputs with their shapes per bucket, paddable axes, per bucket the kernel
 * calls and planned vs naive activation memory, the kernels and the weights; as a table with
 * readable sizes, or with --json as one JSON object with exact numbers. Exit status 0 / 1 (the
 * file is missing or damaged) / 2 (the command line is malformed). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kiln/kiln.h"
#include "tools/tool.h"

static const char inspect_usage[] =
    "usage: kiln inspect MODEL.kiln [--json]\n"
    "  show what a compiled model holds: file size, format and kiln versions, creation time,\n"
    "  target, model name, compile options, sections with their sizes, inputs and outputs\n"
    "  (dtype, shape in every bucket, which output axes follow an input axis), paddable axes,\n"
    "  per bucket the shapes, kernel calls and planned vs naive activation memory, the\n"
    "  kernels (name, workload hash, schedule source, calls) and the weights; --json prints\n"
    "  one JSON object with exact sizes instead of the table\n"
    "exit status: 0 success, 1 failure (missing, unreadable or damaged artifact), 2 usage\n"
    "error (unknown option, missing argument)\n";

/* ---- the container's header ------------------------------------------------------------ */

typedef struct section_info {
  uint32_t kind;
  uint64_t offset, size;
} section_info;

typedef struct container_info {
  uint64_t file_size;
  unsigned major, minor;
  uint32_t nsections;
  section_info sections[16];
} container_info;

static uint64_t le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* Reads the version and the section table (layout in runtime/artifact.c). The file has been
 * validated by kiln_model_load already; this only reads it. */
static int read_container(const char *path, container_info *ci) {
  memset(ci, 0, sizeof *ci);
  FILE *f = fopen(path, "rb");
  unsigned char head[48];
  if (!f || fread(head, 1, sizeof head, f) != sizeof head) {
    if (f) fclose(f);
    fprintf(stderr, "kiln inspect: %s: cannot read the header\n", path);
    return 1;
  }
  ci->major = (unsigned)le(head + 8, 2);
  ci->minor = (unsigned)le(head + 10, 2);
  uint32_t count = (uint32_t)le(head + 12, 4);
  uint32_t header_size = (uint32_t)le(head + 24, 4), entry_size = (uint32_t)le(head + 28, 4);
  ci->file_size = le(head + 32, 8);
  for (uint32_t i = 0; i < count && i < 16; i++) {
    unsigned char e[32];
    if (entry_size < 24 || fseek(f, (long)(header_size + (uint64_t)i * entry_size), SEEK_SET) ||
        fread(e, 1, 24, f) != 24)
      break;
    ci->sections[i] = (section_info){(uint32_t)le(e, 4), le(e + 8, 8), le(e + 16, 8)};
    ci->nsections = i + 1;
  }
  fclose(f);
  return 0;
}

static const char *section_name(uint32_t kind, char *buf, size_t cap) {
  static const char *const names[] = {NULL, "META", "PLAN", "PARAMS", "CODE"};
  if (kind >= 1 && kind <= 4) return names[kind];
  snprintf(buf, cap, "kind %u", kind);
  return buf;
}

/* ---- helpers --------------------------------------------------------------------------------- */

static const char *human_bytes(uint64_t n, char *buf, size_t cap) {
  if (n < 1024) snprintf(buf, cap, "%" PRIu64 " B", n);
  else if (n < 1024 * 1024) snprintf(buf, cap, "%.1f KiB", n / 1024.0);
  else if (n < 1024ull * 1024 * 1024) snprintf(buf, cap, "%.1f MiB", n / (1024.0 * 1024));
  else snprintf(buf, cap, "%.1f GiB", n / (1024.0 * 1024 * 1024));
  return buf;
}

static const char *str_of(const cJSON *obj, const char *key) {
  const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
  return s ? s : "?";
}

static double num_of(const cJSON *obj, const char *key, double dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* Element i of a JSON array as a number (-1 when missing). */
static double at_num(const cJSON *arr, int i) {
  const cJSON *v = cJSON_GetArrayItem(arr, i);
  return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* "1x3x224x224" for a JSON list of dims ("()" for a 0-d shape). */
static void print_dims(const cJSON *dims) {
  int n = 0;
  const cJSON *d;
  cJSON_ArrayForEach(d, dims) printf("%s%.0f", n++ ? "x" : "", d->valuedouble);
  if (!n) printf("()");
}

/* Calls of kernel k over every bucket's plan. */
static int kernel_calls(const cJSON *plan, int k) {
  int calls = 0;
  const cJSON *b, *c;
  cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(plan, "buckets")) {
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(b, "calls")) {
      calls += (int)num_of(c, "kernel", -1) == k;
    }
  }
  return calls;
}

/* The i-th input's (outputs == 0) or output's shape in every bucket of the meta. */
static cJSON *shapes_of(const cJSON *meta, const char *which, int i) {
  cJSON *all = cJSON_CreateArray();
  const cJSON *b;
  cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(meta, "buckets")) {
    const cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, which), i);
    cJSON_AddItemToArray(all, s ? cJSON_Duplicate(s, 1) : cJSON_CreateNull());
  }
  return all;
}

/* ---- the JSON object --------------------------------------------------------------------- */

static cJSON *inspect_json(const char *path, const container_info *ci, const kiln_model *m,
                           const cJSON *meta, const cJSON *plan) {
  cJSON *j = cJSON_CreateObject();
  char buf[32];
  cJSON_AddStringToObject(j, "file", path);
  cJSON_AddNumberToObject(j, "file_bytes", (double)ci->file_size);
  snprintf(buf, sizeof buf, "%u.%u", ci->major, ci->minor);
  cJSON_AddStringToObject(j, "format_version", buf);
  static const char *const copied[] = {"created", "kiln_version", "model", "target"};
  for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++)
    cJSON_AddStringToObject(j, copied[i], str_of(meta, copied[i]));
  const cJSON *opts = cJSON_GetObjectItemCaseSensitive(meta, "options");
  cJSON_AddItemToObject(j, "options", opts ? cJSON_Duplicate(opts, 1) : cJSON_CreateObject());

  cJSON *secs = cJSON_AddArrayToObject(j, "sections");
  for (uint32_t i = 0; i < ci->nsections; i++) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "kind", section_name(ci->sections[i].kind, buf, sizeof buf));
    cJSON_AddNumberToObject(s, "offset", (double)ci->sections[i].offset);
    cJSON_AddNumberToObject(s, "bytes", (double)ci->sections[i].size);
    cJSON_AddItemToArray(secs, s);
  }

  const cJSON *pad = cJSON_GetObjectItemCaseSensitive(meta, "paddable"), *e;
  cJSON *ins = cJSON_AddArrayToObject(j, "inputs");
  int i = 0;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(meta, "inputs")) {
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "name", str_of(e, "name"));
    cJSON_AddStringToObject(x, "dtype", str_of(e, "dtype"));
    cJSON_AddItemToObject(x, "shapes", shapes_of(meta, "inputs", i));
    cJSON *axes = cJSON_AddArrayToObject(x, "paddable_axes");
    const cJSON *pa;
    cJSON_ArrayForEach(pa, pad) {
      if ((int)at_num(pa, 0) == i)
        cJSON_AddItemToArray(axes, cJSON_CreateNumber(at_num(pa, 1)));
    }
    cJSON_AddItemToArray(ins, x);
    i++;
  }
  cJSON *outs = cJSON_AddArrayToObject(j, "outputs");
  i = 0;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(meta, "outputs")) {
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "name", str_of(e, "name"));
    cJSON_AddStringToObject(x, "dtype", str_of(e, "dtype"));
    cJSON_AddItemToObject(x, "shapes", shapes_of(meta, "outputs", i));
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "follows");
    cJSON_AddItemToObject(x, "follows", f ? cJSON_Duplicate(f, 1) : cJSON_CreateArray());
    cJSON_AddItemToArray(outs, x);
    i++;
  }

  cJSON *buckets = cJSON_AddArrayToObject(j, "buckets");
  const cJSON *pb = cJSON_GetObjectItemCaseSensitive(plan, "buckets");
  i = 0;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(meta, "buckets")) {
    const cJSON *p = cJSON_GetArrayItem(pb, i);
    cJSON *x = cJSON_CreateObject();
    cJSON_AddNumberToObject(x, "index", i);
    cJSON_AddNumberToObject(x, "weight", num_of(e, "weight", 1));
    cJSON_AddItemToObject(x, "inputs",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e, "inputs"), 1));
    cJSON_AddItemToObject(x, "outputs",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e, "outputs"), 1));
    cJSON_AddNumberToObject(x, "calls", kiln_model_bucket_num_calls(m, i));
    uint64_t planned = 0, naive = 0;
    kiln_model_bucket_memory(m, i, &planned, &naive);
    cJSON_AddNumberToObject(x, "planned_bytes", (double)planned);
    cJSON_AddNumberToObject(x, "naive_bytes", (double)naive);
    cJSON_AddNumberToObject(x, "tensors",
                            cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(p, "tensors")));
    /* the kernels this bucket calls, in plan order */
    cJSON *names = cJSON_AddArrayToObject(x, "kernel_calls");
    const cJSON *c, *kernels = cJSON_GetObjectItemCaseSensitive(plan, "kernels");
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(p, "calls")) {
      const cJSON *k = cJSON_GetArrayItem(kernels, (int)num_of(c, "kernel", -1));
      cJSON_AddItemToArray(names, cJSON_CreateString(str_of(k, "name")));
    }
    cJSON_AddItemToArray(buckets, x);
    i++;
  }

  cJSON *kernels = cJSON_AddArrayToObject(j, "kernels");
  i = 0;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(plan, "kernels")) {
    cJSON *x = cJSON_CreateObject();
    static const char *const keys[] = {"name", "symbol", "hash", "schedule", "workload"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
      cJSON_AddStringToObject(x, keys[k], str_of(e, keys[k]));
    cJSON_AddNumberToObject(x, "calls", kernel_calls(plan, i));
    cJSON_AddItemToArray(kernels, x);
    i++;
  }

  double pbytes = 0;
  const cJSON *params = cJSON_GetObjectItemCaseSensitive(plan, "params");
  cJSON_ArrayForEach(e, params) pbytes += num_of(e, "nbytes", 0);
  cJSON *px = cJSON_AddObjectToObject(j, "params");
  cJSON_AddNumberToObject(px, "count", cJSON_GetArraySize(params));
  cJSON_AddNumberToObject(px, "bytes", pbytes);
  return j;
}

/* ---- the table ----------------------------------------------------------------------------- */

static void print_table(const char *path, const container_info *ci, const kiln_model *m,
                        const cJSON *meta, const cJSON *plan) {
  char b1[32], b2[32];
  const cJSON *e;
  printf("file          %s (%s)\n", path, human_bytes(ci->file_size, b1, sizeof b1));
  printf("format        kiln artifact %u.%u\n", ci->major, ci->minor);
  printf("created       %s\n", str_of(meta, "created"));
  printf("kiln version  %s\n", str_of(meta, "kiln_version"));
  printf("model         %s\n", str_of(meta, "model"));
  printf("target        %s\n", str_of(meta, "target"));
  printf("options      ");
  int n = 0;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(meta, "options")) {
    char *v = cJSON_IsString(e) ? NULL : cJSON_PrintUnformatted(e);
    printf("%s %s=%s", n++ ? "," : "", e->string, v ? v : cJSON_GetStringValue(e));
    cJSON_free(v);
  }
  printf("%s\n", n ? "" : " (none)");
  printf("sections     ");
  for (uint32_t i = 0; i < ci->nsections; i++)
    printf("%s %s %s", i ? "," : "", section_name(ci->sections[i].kind, b1, sizeof b1),
           human_bytes(ci->sections[i].size, b2, sizeof b2));
  printf("\n");

  const cJSON *pad = cJSON_GetObjectItemCaseSensitive(meta, "paddable");
  const cJSON *ins = cJSON_GetObjectItemCaseSensitive(meta, "inputs");
  const cJSON *mb = cJSON_GetObjectItemCaseSensitive(meta, "buckets");
  printf("inputs        %d\n", cJSON_GetArraySize(ins));
  int i = 0;
  cJSON_ArrayForEach(e, ins) {
    printf("  %-12s %-8s", str_of(e, "name"), str_of(e, "dtype"));
    const cJSON *b;
    int k = 0;
    cJSON_ArrayForEach(b, mb) {
      printf("%s", k++ ? " | " : "  ");
      print_dims(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "inputs"), i));
    }
    const cJSON *pa;
    int np = 0;
    cJSON_ArrayForEach(pa, pad) {
      if ((int)at_num(pa, 0) != i) continue;
      printf("%s%.0f", np++ ? ", " : "   paddable axis ", at_num(pa, 1));
    }
    printf("\n");
    i++;
  }
  const cJSON *outs = cJSON_GetObjectItemCaseSensitive(meta, "outputs");
  printf("outputs       %d\n", cJSON_GetArraySize(outs));
  i = 0;
  cJSON_ArrayForEach(e, outs) {
    printf("  %-12s %-8s", str_of(e, "name"), str_of(e, "dtype"));
    const cJSON *b;
    int k = 0;
    cJSON_ArrayForEach(b, mb) {
      printf("%s", k++ ? " | " : "  ");
      print_dims(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "outputs"), i));
    }
    const cJSON *f;
    int axis = 0;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(e, "follows")) {
      if (cJSON_IsArray(f)) {
        int in = (int)at_num(f, 0);
        const char *iname = str_of(cJSON_GetArrayItem(ins, in), "name");
        printf("   axis %d follows %s axis %.0f", axis, iname,
               at_num(f, 1));
      }
      axis++;
    }
    printf("\n");
    i++;
  }
  printf("paddable     ");
  n = 0;
  cJSON_ArrayForEach(e, pad) {
    int in = (int)at_num(e, 0);
    printf("%s %s:%.0f", n++ ? "," : "", str_of(cJSON_GetArrayItem(ins, in), "name"),
           at_num(e, 1));
  }
  printf("%s\n", n ? "" : " (none)");

  printf("buckets       %d\n", cJSON_GetArraySize(mb));
  i = 0;
  cJSON_ArrayForEach(e, mb) {
    printf("  %-3d ", i);
    const cJSON *s;
    int k = 0;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(e, "inputs")) {
      printf("%s%s=", k ? "," : "", str_of(cJSON_GetArrayItem(ins, k), "name"));
      print_dims(s);
      k++;
    }
    uint64_t planned = 0, naive = 0;
    kiln_model_bucket_memory(m, i, &planned, &naive);
    printf("  weight %g  %d kernel calls  activations %s planned, %s naive\n",
           num_of(e, "weight", 1), kiln_model_bucket_num_calls(m, i),
           human_bytes(planned, b1, sizeof b1), human_bytes(naive, b2, sizeof b2));
    i++;
  }

  const cJSON *kernels = cJSON_GetObjectItemCaseSensitive(plan, "kernels");
  int total = 0;
  for (int k = 0; k < cJSON_GetArraySize(kernels); k++) total += kernel_calls(plan, k);
  printf("kernels       %d distinct, %d calls\n", cJSON_GetArraySize(kernels), total);
  i = 0;
  cJSON_ArrayForEach(e, kernels) {
    printf("  %-40s %s  %-8s  %d call%s\n", str_of(e, "name"), str_of(e, "hash"),
           str_of(e, "schedule"), kernel_calls(plan, i), kernel_calls(plan, i) == 1 ? "" : "s");
    i++;
  }
  double pbytes = 0;
  const cJSON *params = cJSON_GetObjectItemCaseSensitive(plan, "params");
  cJSON_ArrayForEach(e, params) pbytes += num_of(e, "nbytes", 0);
  printf("params        %d tensors, %s\n", cJSON_GetArraySize(params),
         human_bytes((uint64_t)pbytes, b1, sizeof b1));
}

int kiln_cmd_inspect(int argc, char **argv) {
  const char *path = NULL;
  int json = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(inspect_usage, stdout);
      return 0;
    } else if (!strcmp(a, "--json")) {
      json = 1;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "kiln inspect: unknown option '%s'\n(kiln inspect --help for the usage)\n",
              a);
      return 2;
    } else if (!path) {
      path = a;
    } else {
      fprintf(stderr, "kiln inspect: more than one file given ('%s')\n", a);
      return 2;
    }
  }
  if (!path) {
    fprintf(stderr, "kiln inspect: no model given\n(kiln inspect --help for the usage)\n");
    return 2;
  }
  kiln_model *m = NULL;
  if (kiln_model_load(path, &m)) {
    const char *msg = kiln_last_error();
    if (strstr(msg, path)) fprintf(stderr, "kiln inspect: %s\n", msg);
    else fprintf(stderr, "kiln inspect: %s: %s\n", path, msg);
    return 1;
  }
  int rc = 1;
  container_info ci;
  cJSON *meta = cJSON_Parse(kiln_model_meta_json(m));
  cJSON *plan = cJSON_Parse(kiln_model_plan_json(m));
  if (!meta || !plan) {
    fprintf(stderr, "kiln inspect: %s: the META or PLAN section is not JSON\n", path);
  } else if (!read_container(path, &ci)) {
    if (json) {
      cJSON *j = inspect_json(path, &ci, m, meta, plan);
      char *text = j ? cJSON_Print(j) : NULL;
      if (text) {
        printf("%s\n", text);
        rc = 0;
      } else {
        fprintf(stderr, "kiln inspect: out of memory\n");
      }
      cJSON_free(text);
      cJSON_Delete(j);
    } else {
      print_table(path, &ci, m, meta, plan);
      rc = 0;
    }
  }
  cJSON_Delete(meta);
  cJSON_Delete(plan);
  kiln_model_free(m);
  return rc;
}

/* target.c: target strings. Parses "llvm -mtriple=... -mcpu=... -mattr=... -num-cores=N
 * -vector-bits=N -fast-math" into a tgt_target, fills what the string leaves out from LLVM's
 * host detection and the OS (cores, caches), and writes the canonical string that keys the
 * tuning database. Schedule rules and code generation read the result. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "runtime/rt_internal.h"
#include "target/target.h"

/* What the parser needs to know about the machine it runs on. tgt_target_parse fills it from
 * LLVM; the tests pass made-up hosts through tgt_target_parse_for_host. */
typedef struct host_desc {
  const char *triple;   /* normalized */
  const char *cpu;
  const char *features; /* LLVM's host feature string: "+a,-b,+c,..." */
  int cores;
} host_desc;

/* A test hook (also usable by tools that describe a remote machine): parses `s` as if the
 * host were the given one. No cache sizes are filled in. */
kiln_status tgt_target_parse_for_host(kiln_context *ctx, const char *s, const char *host_triple,
                                      const char *host_cpu, const char *host_features,
                                      int host_cores, tgt_target *out);

/* ---- Options ----------------------------------------------------------------------------- */

typedef enum {
  OPT_TRIPLE,
  OPT_CPU,
  OPT_ATTR,
  OPT_CORES,
  OPT_VECTOR_BITS,
  OPT_FAST_MATH,
  OPT_COUNT
} opt_id;

/* The options a target string may carry, each at most once. `usage` is shown when a value
 * is missing. */
static const struct {
  const char *name;
  bool takes_value;
  const char *usage;
} options[OPT_COUNT] = {
    [OPT_TRIPLE] = {"-mtriple", true, "-mtriple=x86_64-linux-gnu"},
    [OPT_CPU] = {"-mcpu", true, "-mcpu=znver4"},
    [OPT_ATTR] = {"-mattr", true, "-mattr=+avx2,+fma"},
    [OPT_CORES] = {"-num-cores", true, "-num-cores=8"},
    [OPT_VECTOR_BITS] = {"-vector-bits", true, "-vector-bits=256"},
    [OPT_FAST_MATH] = {"-fast-math", false, "-fast-math"},
};

/* A piece of the input string. */
typedef struct {
  const char *p;
  size_t len;
} slice;

#define MAX_CORES 4096

/* ---- Features ---------------------------------------------------------------------------- */

#define MAX_FEATURES 512

typedef struct {
  char sign; /* '+' or '-' */
  const char *name;
  size_t len;
} feature;

typedef struct {
  feature items[MAX_FEATURES];
  int n;
} feature_list;

/* Characters allowed in CPU names, triples and feature names. */
static bool name_char(char c) {
  return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

static int cmp_feature(const void *a, const void *b) {
  const feature *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->name, y->name, n);
  if (c) return c;
  return (x->len > y->len) - (x->len < y->len);
}

static bool feature_is(const feature *f, const char *name) {
  return f->len == strlen(name) && memcmp(f->name, name, f->len) == 0;
}

static const feature *find_feature(const feature_list *fl, const char *name) {
  for (int i = 0; i < fl->n; i++)
    if (feature_is(&fl->items[i], name)) return &fl->items[i];
  return NULL;
}

/* Sorts the list by name and removes repeated entries. A feature both enabled and disabled
 * is an error: LLVM would apply the two in order, and the canonical form has no order. */
static kiln_status sort_features(kiln_context *ctx, feature_list *fl) {
  qsort(fl->items, (size_t)fl->n, sizeof fl->items[0], cmp_feature);
  int out = 0;
  for (int i = 0; i < fl->n; i++) {
    if (out > 0 && cmp_feature(&fl->items[out - 1], &fl->items[i]) == 0) {
      if (fl->items[out - 1].sign != fl->items[i].sign)
        return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                       "feature '%.*s' is both enabled and disabled in target option -mattr",
                       (int)fl->items[i].len, fl->items[i].name);
      continue;
    }
    fl->items[out++] = fl->items[i];
  }
  fl->n = out;
  return KILN_OK;
}

static kiln_status add_feature(kiln_context *ctx, feature_list *fl, char sign, const char *name,
                               size_t len) {
  if (fl->n == MAX_FEATURES)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "too many features in target option -mattr (at most %d)", MAX_FEATURES);
  fl->items[fl->n++] = (feature){sign, name, len};
  return KILN_OK;
}

/* mattr = feature ("," feature)*     feature = ("+" | "-") NAME
 * Splits the user's -mattr value, checking each entry. */
static kiln_status parse_mattr(kiln_context *ctx, slice v, feature_list *fl) {
  const char *s = v.p, *end = v.p + v.len;
  for (;;) {
    const char *comma = memchr(s, ',', (size_t)(end - s));
    const char *e = comma ? comma : end;
    if (e == s) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                               "empty feature in target option -mattr=%.*s", (int)v.len, v.p);
    if (*s != '+' && *s != '-')
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "feature '%.*s' in target option -mattr must start with '+' or '-'",
                     (int)(e - s), s);
    if (e - s == 1)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "feature '%c' in target option -mattr has no name", *s);
    for (const char *c = s + 1; c < e; c++)
      if (!name_char(*c))
        return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                       "bad character '%c' in feature '%.*s' of target option -mattr", *c,
                       (int)(e - s), s);
    kiln_status st = add_feature(ctx, fl, *s, s + 1, (size_t)(e - s - 1));
    if (st) return st;
    if (!comma) break;
    s = comma + 1;
  }
  return sort_features(ctx, fl);
}

/* Writes the list as "+a,+b,-c" into buf; KILN_ERR_PARSE when it does not fit. */
static kiln_status write_features(kiln_context *ctx, const feature_list *fl, char *buf,
                                  size_t size) {
  size_t len = 0;
  buf[0] = 0;
  for (int i = 0; i < fl->n; i++) {
    const feature *f = &fl->items[i];
    int w = snprintf(buf + len, size - len, "%s%c%.*s", i ? "," : "", f->sign, (int)f->len,
                     f->name);
    if (w < 0 || (size_t)w >= size - len) {
      buf[0] = 0;
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "target option -mattr is too long (at most %zu characters)", size - 1);
    }
    len += (size_t)w;
  }
  return KILN_OK;
}

/* ---- CPU names ------------------------------------------------------------------------ */

/* The CPU names LLVM 19 accepts for 64-bit code (llc-19 -mcpu=help, less the 32-bit-only x86
 * CPUs). LLVM itself only warns about an unknown name and then fails hard on x86_64 ("64-bit
 * code requested on a subtarget that doesn't support it"), so names are checked here. */
static const char *const x86_64_cpus[] = {
    "alderlake", "amdfam10", "arrowlake", "arrowlake-s", "arrowlake_s", "athlon-fx", "athlon64",
    "athlon64-sse3", "atom", "atom_sse4_2", "atom_sse4_2_movbe", "barcelona", "bdver1",
    "bdver2", "bdver3", "bdver4", "bonnell", "broadwell", "btver1", "btver2", "cannonlake",
    "cascadelake", "clearwaterforest", "cooperlake", "core-avx-i", "core-avx2", "core2",
    "core_2_duo_sse4_1", "core_2_duo_ssse3", "core_2nd_gen_avx", "core_3rd_gen_avx",
    "core_4th_gen_avx", "core_4th_gen_avx_tsx", "core_5th_gen_avx", "core_5th_gen_avx_tsx",
    "core_aes_pclmulqdq", "core_i7_sse4_2", "corei7", "corei7-avx", "emeraldrapids", "generic",
    "goldmont", "goldmont-plus", "goldmont_plus", "gracemont", "grandridge", "graniterapids",
    "graniterapids-d", "graniterapids_d", "haswell", "icelake-client", "icelake-server",
    "icelake_client", "icelake_server", "ivybridge", "k8", "k8-sse3", "knl", "knm", "lunarlake",
    "meteorlake", "mic_avx512", "nehalem", "nocona", "opteron", "opteron-sse3", "pantherlake",
    "penryn", "raptorlake", "rocketlake", "sandybridge", "sapphirerapids", "sierraforest",
    "silvermont", "skx", "skylake", "skylake-avx512", "skylake_avx512", "slm", "tigerlake",
    "tremont", "westmere", "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4", "znver1", "znver2",
    "znver3", "znver4", "znver5",
};
static const char *const aarch64_cpus[] = {
    "a64fx", "ampere1", "ampere1a", "ampere1b", "apple-a10", "apple-a11", "apple-a12",
    "apple-a13", "apple-a14", "apple-a15", "apple-a16", "apple-a17", "apple-a7", "apple-m4",
    "carmel", "cortex-a34", "cortex-a35", "cortex-a510", "cortex-a520", "cortex-a520ae",
    "cortex-a53", "cortex-a55", "cortex-a57", "cortex-a65", "cortex-a65ae", "cortex-a710",
    "cortex-a715", "cortex-a72", "cortex-a720", "cortex-a720ae", "cortex-a725", "cortex-a73",
    "cortex-a75", "cortex-a76", "cortex-a76ae", "cortex-a77", "cortex-a78", "cortex-a78ae",
    "cortex-a78c", "cortex-r82", "cortex-r82ae", "cortex-x1", "cortex-x1c", "cortex-x2",
    "cortex-x3", "cortex-x4", "cortex-x925", "exynos-m3", "exynos-m4", "exynos-m5", "falkor",
    "generic", "kryo", "neoverse-512tvb", "neoverse-e1", "neoverse-n1", "neoverse-n2",
    "neoverse-n3", "neoverse-v1", "neoverse-v2", "neoverse-v3", "neoverse-v3ae", "oryon-1",
    "saphira", "thunderx", "thunderx2t99", "thunderx3t110", "thunderxt81", "thunderxt83",
    "thunderxt88", "tsv110",
};

static bool known_cpu(const char *arch, const char *cpu) {
  bool x86 = strcmp(arch, "x86_64") == 0;
  const char *const *list = x86 ? x86_64_cpus : aarch64_cpus;
  size_t n = x86 ? sizeof x86_64_cpus / sizeof *x86_64_cpus : sizeof aarch64_cpus / sizeof *aarch64_cpus;
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i], cpu) == 0) return true;
  return false;
}

/* ---- Vector width ------------------------------------------------------------------------ */

/* x86 CPUs by the widest vector ISA LLVM enables for them: 3 = AVX-512 (512-bit), 2 = AVX2
 * and 1 = AVX (256-bit); CPUs not listed have SSE only (128-bit). LLVM's C API cannot
 * expand a CPU name into its features, hence this table (LLVM 19's names). */
static const struct {
  const char *cpu;
  int level;
} x86_cpu_levels[] = {
    {"cannonlake", 3},      {"cascadelake", 3},     {"cooperlake", 3},
    {"emeraldrapids", 3},   {"graniterapids", 3},   {"graniterapids-d", 3},
    {"graniterapids_d", 3}, {"icelake-client", 3},  {"icelake-server", 3},
    {"icelake_client", 3},  {"icelake_server", 3},  {"knl", 3},
    {"knm", 3},             {"mic_avx512", 3},      {"rocketlake", 3},
    {"sapphirerapids", 3},  {"skx", 3},             {"skylake-avx512", 3},
    {"skylake_avx512", 3},  {"tigerlake", 3},       {"x86-64-v4", 3},
    {"znver4", 3},          {"znver5", 3},
    {"alderlake", 2},       {"arrowlake", 2},       {"arrowlake-s", 2},
    {"arrowlake_s", 2},     {"bdver4", 2},          {"broadwell", 2},
    {"clearwaterforest", 2}, {"core-avx2", 2},      {"core_4th_gen_avx", 2},
    {"core_4th_gen_avx_tsx", 2}, {"core_5th_gen_avx", 2}, {"core_5th_gen_avx_tsx", 2},
    {"gracemont", 2},       {"grandridge", 2},      {"haswell", 2},
    {"lunarlake", 2},       {"meteorlake", 2},      {"pantherlake", 2},
    {"raptorlake", 2},      {"sierraforest", 2},    {"skylake", 2},
    {"x86-64-v3", 2},       {"znver1", 2},          {"znver2", 2},
    {"znver3", 2},
    {"bdver1", 1},          {"bdver2", 1},          {"bdver3", 1},
    {"btver2", 1},          {"core-avx-i", 1},      {"core_2nd_gen_avx", 1},
    {"core_3rd_gen_avx", 1}, {"corei7-avx", 1},     {"ivybridge", 1},
    {"sandybridge", 1},
};

static int x86_cpu_level(const char *cpu) {
  for (size_t i = 0; i < sizeof x86_cpu_levels / sizeof x86_cpu_levels[0]; i++)
    if (strcmp(x86_cpu_levels[i].cpu, cpu) == 0) return x86_cpu_levels[i].level;
  return 0;
}

/* What enabling or disabling a feature does to the vector width: "+name" raises it to at
 * least `on` bits, "-name" lowers it to at most `off` bits (0: no effect). Disabling AVX
 * disables everything built on it in LLVM, hence 128. */
static const struct {
  const char *name;
  int on, off;
} vector_features[] = {
    {"avx", 256, 128},         {"avx2", 256, 0},          {"avx512f", 512, 256},
    {"evex512", 0, 256},       {"avx10.1-256", 256, 0},   {"avx10.1-512", 512, 256},
};

/* The widest useful vector register for the triple's architecture, CPU and features (in
 * sorted order, which is the order code generation hands them to LLVM). aarch64: NEON, 128
 * (SVE is not used). */
static int derive_vector_bits(const char *arch, const char *cpu, const feature_list *fl) {
  if (strcmp(arch, "x86_64") != 0) return 128;
  static const int level_bits[] = {128, 256, 256, 512};
  int bits = level_bits[x86_cpu_level(cpu)];
  for (int i = 0; i < fl->n; i++) {
    const feature *f = &fl->items[i];
    for (size_t k = 0; k < sizeof vector_features / sizeof vector_features[0]; k++) {
      if (!feature_is(f, vector_features[k].name)) continue;
      if (f->sign == '+' && vector_features[k].on > bits) bits = vector_features[k].on;
      if (f->sign == '-' && vector_features[k].off && vector_features[k].off < bits)
        bits = vector_features[k].off;
    }
  }
  return bits;
}

/* The host's features for the canonical string: the enabled ones (LLVM lists every feature
 * it knows as +x or -x). One exception keeps host code safe in virtual machines that hide
 * AVX or AVX-512 from a CPU whose name implies it (LLVM names x86 hosts by family and model):
 * then the missing level is disabled explicitly, so LLVM does not enable it from the CPU's
 * defaults. */
static kiln_status host_features(kiln_context *ctx, const host_desc *host, const char *arch,
                                 feature_list *fl) {
  const char *s = host->features;
  while (*s) {
    const char *e = strchr(s, ',');
    if (!e) e = s + strlen(s);
    if (*s == '+' && e - s > 1) {
      if (fl->n == MAX_FEATURES - 1) /* one slot stays free for the exception below */
        return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_INTERNAL,
                       "the host has more than %d CPU features", MAX_FEATURES - 1);
      fl->items[fl->n++] = (feature){'+', s + 1, (size_t)(e - s - 1)};
    }
    s = *e ? e + 1 : e;
  }
  if (strcmp(arch, "x86_64") == 0) {
    int level = x86_cpu_level(host->cpu);
    static const char *const level_feature[] = {NULL, "avx", "avx2", "avx512f"};
    for (int l = 1; l <= level; l++) {
      if (find_feature(fl, level_feature[l])) continue;
      fl->items[fl->n++] = (feature){'-', level_feature[l], strlen(level_feature[l])};
      break; /* disabling one level disables the ones above it */
    }
  }
  return sort_features(ctx, fl);
}

/* ---- Parsing ----------------------------------------------------------------------------- */

/* Copies a checked name (CPU or triple) into buf. */
static kiln_status copy_name(kiln_context *ctx, opt_id opt, slice v, char *buf, size_t size) {
  for (size_t i = 0; i < v.len; i++)
    if (!name_char(v.p[i]))
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "bad character '%c' in target option %s=%.*s", v.p[i], options[opt].name,
                     (int)v.len, v.p);
  if (v.len >= size)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "value of target option %s is too long (at most %zu characters)",
                   options[opt].name, size - 1);
  memcpy(buf, v.p, v.len);
  buf[v.len] = 0;
  return KILN_OK;
}

/* A decimal number in [lo, hi]: digits only, no leading zero. */
static bool parse_int(slice v, long lo, long hi, long *out) {
  if (v.len == 0 || v.len > 9 || (v.len > 1 && v.p[0] == '0')) return false;
  long x = 0;
  for (size_t i = 0; i < v.len; i++) {
    if (v.p[i] < '0' || v.p[i] > '9') return false;
    x = x * 10 + (v.p[i] - '0');
  }
  if (x < lo || x > hi) return false;
  *out = x;
  return true;
}

/* Normalizes a triple through LLVM ("x86_64-linux-gnu" -> "x86_64-unknown-linux-gnu"), so
 * spellings of the same triple give the same canonical string. */
static kiln_status normalize_triple(kiln_context *ctx, const char *triple, char *buf,
                                    size_t size) {
  char *norm = LLVMNormalizeTargetTriple(triple);
  if (!norm) return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "out of memory in LLVM");
  size_t len = strlen(norm);
  if (len < size) memcpy(buf, norm, len + 1);
  LLVMDisposeMessage(norm);
  if (len >= size)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "value of target option -mtriple is too long (at most %zu characters)",
                   size - 1);
  return KILN_OK;
}

/* The architecture: the triple up to the first '-'. */
static void triple_arch(const char *triple, char *buf, size_t size) {
  size_t n = strcspn(triple, "-");
  if (n >= size) n = size - 1;
  memcpy(buf, triple, n);
  buf[n] = 0;
}

static bool supported_arch(const char *arch) {
  return strcmp(arch, "x86_64") == 0 || strcmp(arch, "aarch64") == 0;
}

/* target = "llvm" option*      (options separated by blanks, each at most once)
 * option = "-mtriple=" TRIPLE | "-mcpu=" NAME | "-mattr=" mattr | "-num-cores=" INT
 *        | "-vector-bits=" ("128" | "256" | "512") | "-fast-math"
 * Fills every field but the cache sizes. */
static kiln_status parse_target(kiln_context *ctx, const char *s, const host_desc *host,
                                tgt_target *out) {
  slice val[OPT_COUNT];
  bool given[OPT_COUNT] = {false};

  /* The target kind. */
  const char *p = s;
  while (isspace((unsigned char)*p)) p++;
  const char *kind = p;
  while (*p && !isspace((unsigned char)*p)) p++;
  if (p == kind)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "empty target string (expected 'llvm' followed by options)");
  if (p - kind != 4 || memcmp(kind, "llvm", 4) != 0)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                   "unknown target kind '%.*s' in target '%s' (kiln supports 'llvm')",
                   (int)(p - kind), kind, s);

  /* The options. */
  for (;;) {
    while (isspace((unsigned char)*p)) p++;
    if (!*p) break;
    const char *tok = p;
    while (*p && !isspace((unsigned char)*p)) p++;
    size_t toklen = (size_t)(p - tok);
    const char *eq = memchr(tok, '=', toklen);
    size_t namelen = eq ? (size_t)(eq - tok) : toklen;
    int opt = -1;
    for (int i = 0; i < OPT_COUNT; i++)
      if (strlen(options[i].name) == namelen && memcmp(options[i].name, tok, namelen) == 0)
        opt = i;
    if (opt < 0)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "unknown target option '%.*s' in target '%s' (options: -mtriple, -mcpu, "
                     "-mattr, -num-cores, -vector-bits, -fast-math)",
                     (int)toklen, tok, s);
    if (given[opt])
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE, "target option %s is given twice",
                     options[opt].name);
    given[opt] = true;
    if (options[opt].takes_value) {
      if (!eq || eq + 1 == p)
        return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                       "target option %s needs a value (as in %s)", options[opt].name,
                       options[opt].usage);
      val[opt] = (slice){eq + 1, (size_t)(p - eq - 1)};
    } else if (eq) {
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE, "target option %s takes no value",
                     options[opt].name);
    }
  }

  tgt_target t;
  memset(&t, 0, sizeof t);
  kiln_status st;

  /* Triple and architecture; the target is the host when the architectures agree. */
  char host_arch[64], arch[64];
  triple_arch(host->triple, host_arch, sizeof host_arch);
  if (given[OPT_TRIPLE]) {
    char raw[sizeof t.triple];
    if ((st = copy_name(ctx, OPT_TRIPLE, val[OPT_TRIPLE], raw, sizeof raw))) return st;
    if ((st = normalize_triple(ctx, raw, t.triple, sizeof t.triple))) return st;
    triple_arch(t.triple, arch, sizeof arch);
    if (!supported_arch(arch))
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "unsupported architecture '%s' in target option -mtriple=%.*s (kiln "
                     "supports x86_64 and aarch64)",
                     arch, (int)val[OPT_TRIPLE].len, val[OPT_TRIPLE].p);
  } else {
    if (strlen(host->triple) >= sizeof t.triple)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "host triple '%s' is too long",
                     host->triple);
    strcpy(t.triple, host->triple);
    memcpy(arch, host_arch, sizeof arch);
    if (!supported_arch(arch))
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_UNSUPPORTED,
                     "the host architecture '%s' (triple %s) is not supported (kiln supports "
                     "x86_64 and aarch64); give -mtriple to cross-compile",
                     arch, host->triple);
  }
  t.is_host = strcmp(arch, host_arch) == 0;

  /* CPU: given, else the host's, else generic. */
  if (given[OPT_CPU]) {
    if ((st = copy_name(ctx, OPT_CPU, val[OPT_CPU], t.cpu, sizeof t.cpu))) return st;
    if (!known_cpu(arch, t.cpu))
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "unknown CPU '%s' for %s in target option -mcpu (e.g. %s)", t.cpu, arch,
                     strcmp(arch, "x86_64") == 0 ? "znver4, skylake-avx512, x86-64-v3, generic"
                                                  : "neoverse-n1, cortex-a76, generic");
  } else {
    const char *cpu = t.is_host && host->cpu[0] ? host->cpu : "generic";
    if (strlen(cpu) >= sizeof t.cpu)
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_INTERNAL, "host CPU name '%s' is too long", cpu);
    strcpy(t.cpu, cpu);
  }

  /* Features: given, else the host's when the CPU is the host's too, else the CPU's
   * defaults (""). */
  feature_list fl;
  fl.n = 0;
  if (given[OPT_ATTR]) {
    if ((st = parse_mattr(ctx, val[OPT_ATTR], &fl))) return st;
  } else if (t.is_host && !given[OPT_CPU]) {
    if ((st = host_features(ctx, host, arch, &fl))) return st;
  }
  if ((st = write_features(ctx, &fl, t.features, sizeof t.features))) return st;

  /* Cores: given, else the host's; a cross target defaults to 1 (nothing is known). */
  long num;
  if (given[OPT_CORES]) {
    if (!parse_int(val[OPT_CORES], 1, MAX_CORES, &num))
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "bad number '%.*s' for target option -num-cores (expected an integer from "
                     "1 to %d)",
                     (int)val[OPT_CORES].len, val[OPT_CORES].p, MAX_CORES);
    t.num_cores = (int)num;
  } else {
    t.num_cores = t.is_host && host->cores > 0 ? host->cores : 1;
  }

  if (given[OPT_VECTOR_BITS]) {
    if (!parse_int(val[OPT_VECTOR_BITS], 128, 512, &num) ||
        (num != 128 && num != 256 && num != 512))
      return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_PARSE,
                     "bad value '%.*s' for target option -vector-bits (expected 128, 256 or "
                     "512)",
                     (int)val[OPT_VECTOR_BITS].len, val[OPT_VECTOR_BITS].p);
    t.vector_bits = (int)num;
  } else {
    t.vector_bits = derive_vector_bits(arch, t.cpu, &fl);
  }

  t.fast_math = given[OPT_FAST_MATH];

  /* The canonical string: every option, in a fixed order, defaults spelled out; -mattr is
   * left out when empty so that the string parses back to itself. */
  snprintf(t.canonical, sizeof t.canonical, "llvm -mtriple=%s -mcpu=%s%s%s -num-cores=%d "
           "-vector-bits=%d%s",
           t.triple, t.cpu, t.features[0] ? " -mattr=" : "", t.features, t.num_cores,
           t.vector_bits, t.fast_math ? " -fast-math" : "");

  *out = t;
  return KILN_OK;
}

/* ---- Host -------------------------------------------------------------------------------- */

/* Reads a small sysfs file into buf without its trailing newline; false if unreadable. */
static bool read_small_file(const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "r");
  if (!f) return false;
  bool ok = fgets(buf, (int)size, f) != NULL;
  fclose(f);
  if (ok) buf[strcspn(buf, "\n")] = 0;
  return ok;
}

/* Data cache sizes from /sys/devices/system/cpu/cpu0/cache/index* ("48K", "1024K", "32M"):
 * L1 data, L2 and L3 as the kernel reports them for the first CPU (L1 and L2 per core, L3
 * shared by the cores of its complex). Unknown levels stay 0. */
static void read_caches(tgt_target *t) {
  for (int i = 0; i < 16; i++) {
    char path[96], level[16], type[32], size[32];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
    if (!read_small_file(path, level, sizeof level)) continue;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
    if (!read_small_file(path, type, sizeof type) || strcmp(type, "Instruction") == 0) continue;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    if (!read_small_file(path, size, sizeof size)) continue;
    char *end;
    long long bytes = strtoll(size, &end, 10);
    if (bytes <= 0) continue;
    if (*end == 'K') bytes <<= 10;
    else if (*end == 'M') bytes <<= 20;
    else if (*end == 'G') bytes <<= 30;
    switch (atoi(level)) {
    case 1: t->l1_bytes = bytes; break;
    case 2: t->l2_bytes = bytes; break;
    case 3: t->l3_bytes = bytes; break;
    default: break; /* L4 and beyond: not used */
    }
  }
}

static int online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) return 1;
  return n > MAX_CORES ? MAX_CORES : (int)n;
}

kiln_status tgt_target_parse(kiln_context *ctx, const char *s, tgt_target *out) {
  if (!ctx) return rt_errorf(KILN_ERR_MISUSE, "tgt_target_parse: NULL context");
  if (!s || !out)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tgt_target_parse: NULL argument");

  /* The host as LLVM sees it; every string LLVM returns is disposed of here. */
  char *raw_triple = LLVMGetDefaultTargetTriple();
  char *cpu = LLVMGetHostCPUName();
  char *features = LLVMGetHostCPUFeatures();
  char triple[64];
  kiln_status st;
  if (!raw_triple || !cpu || !features)
    st = ir_fail(ctx, IR_NO_SPAN, KILN_ERR_NOMEM, "out of memory in LLVM host detection");
  else
    st = normalize_triple(ctx, raw_triple, triple, sizeof triple);
  if (st == KILN_OK) {
    host_desc host = {triple, cpu, features, online_cpus()};
    st = parse_target(ctx, s, &host, out);
  }
  if (raw_triple) LLVMDisposeMessage(raw_triple);
  if (cpu) LLVMDisposeMessage(cpu);
  if (features) LLVMDisposeMessage(features);
  if (st == KILN_OK && out->is_host) read_caches(out);
  return st;
}

kiln_status tgt_target_host(kiln_context *ctx, tgt_target *out) {
  return tgt_target_parse(ctx, "llvm", out);
}

kiln_status tgt_target_parse_for_host(kiln_context *ctx, const char *s, const char *host_triple,
                                      const char *host_cpu, const char *host_features,
                                      int host_cores, tgt_target *out) {
  if (!ctx) return rt_errorf(KILN_ERR_MISUSE, "tgt_target_parse_for_host: NULL context");
  if (!s || !out || !host_triple || !host_cpu || !host_features)
    return ir_fail(ctx, IR_NO_SPAN, KILN_ERR_MISUSE, "tgt_target_parse_for_host: NULL argument");
  char triple[64];
  kiln_status st = normalize_triple(ctx, host_triple, triple, sizeof triple);
  if (st) return st;
  host_desc host = {triple, host_cpu, host_features, host_cores};
  return parse_target(ctx, s, &host, out);
}

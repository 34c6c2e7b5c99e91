/* test_target.c: target strings: each option, defaults, the canonical form (independent of
 * option and feature order, and parsing back to itself), vector widths from CPU names and
 * features, host detection (checked against /proc/cpuinfo and sysfs), made-up hosts, and an
 * error for every malformed input. */
#include <unistd.h>

#include "ir/base.h"
#include "target/target.h"
#include "test_util.h"

static kiln_context *ctx;

static void setup(void) { ck_assert_int_eq(kiln_context_new(&ctx), KILN_OK); }
static void teardown(void) {
  ck_assert_int_eq(kiln_context_live_blocks(ctx), 0);
  kiln_context_free(ctx);
}

/* A made-up x86_64 host (an AVX2 machine with 6 cores) and a made-up aarch64 host, so that
 * these tests give the same results on every machine. */
#define X86_TRIPLE "x86_64-pc-linux-gnu"
#define X86_CPU "haswell"
#define X86_FEATURES "+sse2,-avx512f,+avx2,+fma,-sse4a,+avx,+64bit,-evex512"
#define ARM_TRIPLE "aarch64-unknown-linux-gnu"

static tgt_target parse_x86(const char *s) {
  tgt_target t;
  ck_ok(ctx, tgt_target_parse_for_host(ctx, s, X86_TRIPLE, X86_CPU, X86_FEATURES, 6, &t));
  return t;
}

static tgt_target parse_arm(const char *s) {
  tgt_target t;
  ck_ok(ctx, tgt_target_parse_for_host(ctx, s, ARM_TRIPLE, "neoverse-n1", "+neon,+crc,-sve", 16,
                                       &t));
  return t;
}

/* ---- Options and defaults ------------------------------------------------------------------ */

START_TEST(test_host_defaults) {
  tgt_target t = parse_x86("llvm");
  ck_assert_str_eq(t.triple, X86_TRIPLE);
  ck_assert_str_eq(t.cpu, X86_CPU);
  /* Only the enabled host features, sorted by name. */
  ck_assert_str_eq(t.features, "+64bit,+avx,+avx2,+fma,+sse2");
  ck_assert_int_eq(t.num_cores, 6);
  ck_assert_int_eq(t.vector_bits, 256);
  ck_assert(t.is_host);
  ck_assert(!t.fast_math);
  ck_assert_str_eq(t.canonical, "llvm -mtriple=x86_64-pc-linux-gnu -mcpu=haswell "
                                "-mattr=+64bit,+avx,+avx2,+fma,+sse2 -num-cores=6 -vector-bits=256");
  /* Blanks around the kind do not matter. */
  tgt_target u = parse_x86("  \tllvm \n");
  ck_assert_str_eq(u.canonical, t.canonical);
}
END_TEST

START_TEST(test_option_mtriple) {
  /* Another architecture: not the host, generic CPU, no features, one core, NEON. */
  tgt_target t = parse_x86("llvm -mtriple=aarch64-linux-gnu");
  ck_assert_str_eq(t.triple, "aarch64-unknown-linux-gnu"); /* normalized by LLVM */
  ck_assert_str_eq(t.cpu, "generic");
  ck_assert_str_eq(t.features, "");
  ck_assert_int_eq(t.num_cores, 1);
  ck_assert_int_eq(t.vector_bits, 128);
  ck_assert(!t.is_host);
  ck_assert_int_eq(t.l1_bytes, 0);
  ck_assert_str_eq(t.canonical,
                   "llvm -mtriple=aarch64-unknown-linux-gnu -mcpu=generic -num-cores=1 "
                   "-vector-bits=128");
  /* The host's architecture under another spelling is still the host. */
  tgt_target h = parse_x86("llvm -mtriple=x86_64-linux-gnu");
  ck_assert_str_eq(h.triple, "x86_64-unknown-linux-gnu");
  ck_assert(h.is_host);
  ck_assert_str_eq(h.cpu, X86_CPU);
  ck_assert_str_eq(h.features, "+64bit,+avx,+avx2,+fma,+sse2");
  ck_assert_int_eq(h.num_cores, 6);
  /* And from an aarch64 host, x86_64 is the foreign one. */
  tgt_target x = parse_arm("llvm -mtriple=x86_64-pc-linux-gnu");
  ck_assert(!x.is_host);
  ck_assert_str_eq(x.cpu, "generic");
  ck_assert_int_eq(x.vector_bits, 128);
  tgt_target a = parse_arm("llvm");
  ck_assert(a.is_host);
  ck_assert_str_eq(a.cpu, "neoverse-n1");
  ck_assert_str_eq(a.features, "+crc,+neon");
  ck_assert_int_eq(a.num_cores, 16);
  ck_assert_int_eq(a.vector_bits, 128);
}
END_TEST

START_TEST(test_option_mcpu) {
  /* -mcpu without -mattr: the CPU's default features (""), vector width from the CPU. */
  tgt_target t = parse_x86("llvm -mcpu=skylake-avx512");
  ck_assert_str_eq(t.cpu, "skylake-avx512");
  ck_assert_str_eq(t.features, "");
  ck_assert(t.is_host);
  ck_assert_int_eq(t.num_cores, 6);
  ck_assert_int_eq(t.vector_bits, 512);
  ck_assert_str_eq(t.canonical, "llvm -mtriple=x86_64-pc-linux-gnu -mcpu=skylake-avx512 "
                                "-num-cores=6 -vector-bits=512");
  static const struct {
    const char *cpu;
    int bits;
  } cases[] = {{"znver4", 512}, {"znver5", 512}, {"sapphirerapids", 512}, {"icelake-server", 512},
               {"x86-64-v4", 512}, {"znver3", 256}, {"haswell", 256}, {"sandybridge", 256},
               {"x86-64-v3", 256}, {"nehalem", 128}, {"x86-64", 128}, {"generic", 128}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char s[128];
    snprintf(s, sizeof s, "llvm -mcpu=%s", cases[i].cpu);
    tgt_target c = parse_x86(s);
    ck_assert_msg(c.vector_bits == cases[i].bits, "%s: %d bits, expected %d", cases[i].cpu,
                  c.vector_bits, cases[i].bits);
  }
  /* aarch64 CPUs are NEON: 128 whatever the name. */
  ck_assert_int_eq(parse_x86("llvm -mtriple=aarch64-linux-gnu -mcpu=neoverse-v1").vector_bits,
                   128);
}
END_TEST

START_TEST(test_option_mattr) {
  /* Sorted by name, duplicates removed. */
  tgt_target t = parse_x86("llvm -mcpu=x86-64 -mattr=+fma,+avx2,+fma,-sse4a");
  ck_assert_str_eq(t.features, "+avx2,+fma,-sse4a");
  ck_assert_int_eq(t.vector_bits, 256);
  /* Features raise and lower the CPU's vector width. */
  static const struct {
    const char *s;
    int bits;
  } cases[] = {
      {"llvm -mcpu=x86-64 -mattr=+avx512f", 512},
      {"llvm -mcpu=x86-64 -mattr=+avx", 256},
      {"llvm -mcpu=x86-64 -mattr=+sse4.2", 128},
      {"llvm -mcpu=znver4 -mattr=-avx512f", 256},
      {"llvm -mcpu=znver4 -mattr=-evex512", 256},
      {"llvm -mcpu=znver4 -mattr=-avx", 128},
      {"llvm -mcpu=znver4 -mattr=+fma", 512},
      {"llvm -mcpu=haswell -mattr=-avx2", 256},
      {"llvm -mtriple=aarch64-linux-gnu -mattr=+avx512f", 128},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tgt_target c = parse_x86(cases[i].s);
    ck_assert_msg(c.vector_bits == cases[i].bits, "'%s': %d bits, expected %d", cases[i].s,
                  c.vector_bits, cases[i].bits);
  }
  /* -mattr without -mcpu on the host: the host CPU with exactly these features. */
  tgt_target h = parse_x86("llvm -mattr=+avx512f");
  ck_assert_str_eq(h.cpu, X86_CPU);
  ck_assert_str_eq(h.features, "+avx512f");
  ck_assert_int_eq(h.vector_bits, 512);
  /* Feature names with digits, dots and dashes. */
  tgt_target d = parse_x86("llvm -mattr=+sse4.1,+avx10.1-512,+amx_int8");
  ck_assert_str_eq(d.features, "+amx_int8,+avx10.1-512,+sse4.1");
  ck_assert_int_eq(d.vector_bits, 512);
}
END_TEST

START_TEST(test_option_num_cores_vector_bits_fast_math) {
  tgt_target t = parse_x86("llvm -num-cores=32");
  ck_assert_int_eq(t.num_cores, 32);
  ck_assert_ptr_nonnull(strstr(t.canonical, " -num-cores=32 "));
  ck_assert_int_eq(parse_x86("llvm -num-cores=1").num_cores, 1);
  ck_assert_int_eq(parse_x86("llvm -num-cores=4096").num_cores, 4096);
  ck_assert_int_eq(parse_x86("llvm -mtriple=aarch64-linux-gnu -num-cores=64").num_cores, 64);

  /* -vector-bits overrides the derived width. */
  tgt_target v = parse_x86("llvm -mcpu=znver4 -vector-bits=256");
  ck_assert_int_eq(v.vector_bits, 256);
  ck_assert_ptr_nonnull(strstr(v.canonical, " -vector-bits=256"));
  ck_assert_int_eq(parse_x86("llvm -vector-bits=128").vector_bits, 128);
  ck_assert_int_eq(parse_x86("llvm -vector-bits=512").vector_bits, 512);

  tgt_target f = parse_x86("llvm -fast-math");
  ck_assert(f.fast_math);
  size_t len = strlen(f.canonical);
  ck_assert(len > 11 && strcmp(f.canonical + len - 11, " -fast-math") == 0);
  ck_assert_ptr_null(strstr(parse_x86("llvm").canonical, "fast-math"));
}
END_TEST

/* ---- Canonical form ------------------------------------------------------------------------ */

/* Parses s and checks that its canonical string parses back to the same canonical string
 * and the same fields. */
static void check_round_trip(const char *s) {
  tgt_target a = parse_x86(s), b = parse_x86(a.canonical);
  ck_assert_str_eq(b.canonical, a.canonical);
  ck_assert_str_eq(b.triple, a.triple);
  ck_assert_str_eq(b.cpu, a.cpu);
  ck_assert_str_eq(b.features, a.features);
  ck_assert_int_eq(b.num_cores, a.num_cores);
  ck_assert_int_eq(b.vector_bits, a.vector_bits);
  ck_assert_int_eq(b.fast_math, a.fast_math);
  ck_assert_int_eq(b.is_host, a.is_host);
}

START_TEST(test_canonical_order_independent) {
  const char *same[] = {
      "llvm -mcpu=znver4 -mattr=+fma,+avx2,-sse4a -num-cores=4 -fast-math",
      "llvm -fast-math -num-cores=4 -mattr=-sse4a,+avx2,+fma -mcpu=znver4",
      "llvm\t-mattr=+avx2,+fma,+avx2,-sse4a   -mcpu=znver4 -fast-math  -num-cores=4",
      "llvm -mtriple=x86_64-pc-linux-gnu -mcpu=znver4 -mattr=+avx2,-sse4a,+fma -num-cores=4 "
      "-vector-bits=512 -fast-math",
  };
  tgt_target first = parse_x86(same[0]);
  ck_assert_str_eq(first.canonical, "llvm -mtriple=x86_64-pc-linux-gnu -mcpu=znver4 "
                                    "-mattr=+avx2,+fma,-sse4a -num-cores=4 -vector-bits=512 "
                                    "-fast-math");
  for (size_t i = 1; i < sizeof same / sizeof same[0]; i++)
    ck_assert_str_eq(parse_x86(same[i]).canonical, first.canonical);
  /* Different targets give different strings. */
  ck_assert_str_ne(parse_x86("llvm -mcpu=znver4 -mattr=+fma,+avx2,-sse4a -num-cores=4").canonical,
                   first.canonical);
  ck_assert_str_ne(parse_x86("llvm -mcpu=znver3").canonical, parse_x86("llvm -mcpu=znver4").canonical);

  check_round_trip("llvm");
  check_round_trip("llvm -fast-math -mcpu=znver4");
  check_round_trip("llvm -mtriple=aarch64-linux-gnu -mattr=+neon -num-cores=8");
  check_round_trip("llvm -mtriple=aarch64-linux-gnu");
  check_round_trip("llvm -mattr=+avx2 -vector-bits=128");
}
END_TEST

/* ---- Hosts --------------------------------------------------------------------------------- */

START_TEST(test_masked_host_features) {
  tgt_target t;
  /* A virtual machine that hides AVX-512 from a CPU LLVM names znver4 (by family and model):
   * AVX-512 is disabled explicitly, so code built for the host does not use it. */
  ck_ok(ctx, tgt_target_parse_for_host(ctx, "llvm", X86_TRIPLE, "znver4",
                                       "+avx,+avx2,-avx512f,-evex512,+fma", 4, &t));
  ck_assert_str_eq(t.features, "+avx,+avx2,-avx512f,+fma");
  ck_assert_int_eq(t.vector_bits, 256);
  /* Hiding AVX itself disables AVX. */
  ck_assert_int_eq(tgt_target_parse_for_host(ctx, "llvm", X86_TRIPLE, "haswell", "+sse4.2,-avx",
                                             4, &t), KILN_OK);
  ck_assert_str_eq(t.features, "-avx,+sse4.2");
  ck_assert_int_eq(t.vector_bits, 128);
  /* A host with everything its CPU name implies gets only '+' features. */
  ck_ok(ctx, tgt_target_parse_for_host(ctx, "llvm", X86_TRIPLE, "znver4",
                                       "+avx,+avx2,+avx512f,+evex512,-amx-tile", 4, &t));
  ck_assert_str_eq(t.features, "+avx,+avx2,+avx512f,+evex512");
  ck_assert_int_eq(t.vector_bits, 512);
  /* An unknown host CPU: the features decide. */
  ck_ok(ctx, tgt_target_parse_for_host(ctx, "llvm", X86_TRIPLE, "generic", "+avx512f,+avx2", 1,
                                       &t));
  ck_assert_int_eq(t.vector_bits, 512);
  ck_ok(ctx, tgt_target_parse_for_host(ctx, "llvm", X86_TRIPLE, "generic", "", 0, &t));
  ck_assert_str_eq(t.features, "");
  ck_assert_int_eq(t.num_cores, 1); /* an unknown core count counts as one */
  ck_assert_int_eq(t.vector_bits, 128);
}
END_TEST

START_TEST(test_unsupported_host) {
  tgt_target t;
  ck_assert_int_eq(tgt_target_parse_for_host(ctx, "llvm", "riscv64-unknown-linux-gnu", "generic",
                                             "", 4, &t), KILN_ERR_UNSUPPORTED);
  ck_errmsg_has(ctx, "host architecture 'riscv64'");
  /* Cross-compiling from there works. */
  ck_ok(ctx, tgt_target_parse_for_host(ctx, "llvm -mtriple=x86_64-linux-gnu", "riscv64-linux-gnu",
                                       "generic", "", 4, &t));
  ck_assert(!t.is_host);
}
END_TEST

/* The value of a flag in /proc/cpuinfo's first "flags" line. */
static bool cpuinfo_has(const char *field, const char *word) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return false;
  char line[8192];
  bool found = false;
  size_t flen = strlen(field);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, field, flen) != 0 || !strchr(line, ':')) continue;
    char *v = strchr(line, ':') + 1;
    for (char *tok = strtok(v, " \t\n"); tok; tok = strtok(NULL, " \t\n"))
      if (strcmp(tok, word) == 0) found = true;
    break;
  }
  fclose(f);
  return found;
}

START_TEST(test_real_host) {
  tgt_target t;
  ck_ok(ctx, tgt_target_host(ctx, &t));
  ck_assert(t.triple[0] && t.cpu[0]);
  ck_assert(t.is_host);
  ck_assert_int_eq(t.num_cores, (int)sysconf(_SC_NPROCESSORS_ONLN));
  ck_assert(t.vector_bits == 128 || t.vector_bits == 256 || t.vector_bits == 512);
  ck_assert(!t.fast_math);

  /* "llvm" is the host, and the host's canonical string parses back to itself. */
  tgt_target l, r;
  ck_ok(ctx, tgt_target_parse(ctx, "llvm", &l));
  ck_assert_str_eq(l.canonical, t.canonical);
  ck_ok(ctx, tgt_target_parse(ctx, t.canonical, &r));
  ck_assert_str_eq(r.canonical, t.canonical);
  ck_assert(r.is_host);

  /* Features are sorted, each once, and enabled except an explicit disable of a vector ISA
   * the CPU name implies but the machine lacks. */
  char prev[128] = "";
  for (const char *s = t.features; *s;) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    ck_assert(len > 1 && len < sizeof prev);
    char name[128];
    memcpy(name, s + 1, len - 1);
    name[len - 1] = 0;
    ck_assert_msg(s[0] == '+' || strcmp(name, "avx") == 0 || strcmp(name, "avx2") == 0 ||
                      strcmp(name, "avx512f") == 0,
                  "unexpected host feature %.*s", (int)len, s);
    ck_assert_msg(strcmp(prev, name) < 0, "features not sorted: %s before %s", prev, name);
    strcpy(prev, name);
    s += len + (e ? 1 : 0);
  }

#if defined(__x86_64__)
  ck_assert(strncmp(t.triple, "x86_64-", 7) == 0);
  /* LLVM's detection agrees with the kernel's; on the AMD Zen 4/5 machines kiln is developed
   * on, this is 512 bits and a "znver" CPU. */
  int expect = cpuinfo_has("flags", "avx512f") ? 512 : cpuinfo_has("flags", "avx") ? 256 : 128;
  ck_assert_int_eq(t.vector_bits, expect);
  if (expect == 512) ck_assert_ptr_nonnull(strstr(t.features, "+avx512f"));
  if (cpuinfo_has("vendor_id", "AuthenticAMD") && cpuinfo_has("flags", "avx512f"))
    ck_assert_msg(strncmp(t.cpu, "znver", 5) == 0, "host cpu %s", t.cpu);
  /* Cross-compiling to aarch64 from here. */
  tgt_target a;
  ck_ok(ctx, tgt_target_parse(ctx, "llvm -mtriple=aarch64-linux-gnu", &a));
  ck_assert(!a.is_host);
  ck_assert_int_eq(a.vector_bits, 128);
  ck_assert_str_eq(a.cpu, "generic");
  ck_assert_int_eq(a.l1_bytes, 0);
#endif

  /* Cache sizes from sysfs, where the kernel has them. */
  if (access("/sys/devices/system/cpu/cpu0/cache/index0/size", R_OK) == 0) {
    ck_assert_int_gt(t.l1_bytes, 0);
    ck_assert_int_le(t.l1_bytes, 4 << 20);
    if (access("/sys/devices/system/cpu/cpu0/cache/index2/size", R_OK) == 0)
      ck_assert_int_ge(t.l2_bytes, t.l1_bytes);
    if (t.l3_bytes) ck_assert_int_ge(t.l3_bytes, t.l2_bytes);
  }
}
END_TEST

/* ---- Errors -------------------------------------------------------------------------------- */

static void check_error(const char *s, kiln_status code, const char *needle) {
  tgt_target t;
  memset(&t, 0x5a, sizeof t);
  kiln_status st = tgt_target_parse_for_host(ctx, s, X86_TRIPLE, X86_CPU, X86_FEATURES, 6, &t);
  ck_assert_msg(st == code, "'%s': got %s, expected %s (%s)", s, kiln_status_str(st),
                kiln_status_str(code), kiln_context_errmsg(ctx));
  ck_assert_msg(strstr(kiln_context_errmsg(ctx), needle) != NULL,
                "'%s': message '%s' lacks '%s'", s, kiln_context_errmsg(ctx), needle);
  ck_assert_str_eq(kiln_last_error(), kiln_context_errmsg(ctx));
  /* The output is left alone on failure. */
  ck_assert_int_eq((unsigned char)t.triple[0], 0x5a);
}

START_TEST(test_malformed_targets) {
  check_error("", KILN_ERR_PARSE, "empty target string");
  check_error("  \t ", KILN_ERR_PARSE, "empty target string");
  check_error("cuda", KILN_ERR_PARSE, "unknown target kind 'cuda'");
  check_error("llvm2 -mcpu=znver4", KILN_ERR_PARSE, "unknown target kind 'llvm2'");
  check_error("-mcpu=znver4", KILN_ERR_PARSE, "unknown target kind '-mcpu=znver4'");
  /* CPU names LLVM does not know (or 32-bit-only ones) would make LLVM abort later */
  check_error("llvm -mcpu=bogus", KILN_ERR_PARSE, "unknown CPU 'bogus' for x86_64");
  check_error("llvm -mcpu=pentium4", KILN_ERR_PARSE, "unknown CPU 'pentium4' for x86_64");
  check_error("llvm -mtriple=aarch64-linux-gnu -mcpu=znver4", KILN_ERR_PARSE,
              "unknown CPU 'znver4' for aarch64");
  check_error("llvm -mfoo=1", KILN_ERR_PARSE, "unknown target option '-mfoo=1'");
  check_error("llvm mcpu=znver4", KILN_ERR_PARSE, "unknown target option 'mcpu=znver4'");
  check_error("llvm --mcpu=znver4", KILN_ERR_PARSE, "unknown target option '--mcpu=znver4'");
  check_error("llvm -mcpu=zn ver4", KILN_ERR_PARSE, "unknown target option 'ver4'");
  check_error("llvm -mcpu", KILN_ERR_PARSE, "target option -mcpu needs a value");
  check_error("llvm -mcpu=", KILN_ERR_PARSE, "target option -mcpu needs a value");
  check_error("llvm -mtriple", KILN_ERR_PARSE, "target option -mtriple needs a value");
  check_error("llvm -mattr=", KILN_ERR_PARSE, "target option -mattr needs a value");
  check_error("llvm -num-cores", KILN_ERR_PARSE, "target option -num-cores needs a value");
  check_error("llvm -num-cores= 4", KILN_ERR_PARSE, "target option -num-cores needs a value");
  check_error("llvm -vector-bits=", KILN_ERR_PARSE, "target option -vector-bits needs a value");
  check_error("llvm -fast-math=1", KILN_ERR_PARSE, "target option -fast-math takes no value");
  check_error("llvm -mcpu=znver3 -mcpu=znver4", KILN_ERR_PARSE, "target option -mcpu is given twice");
  check_error("llvm -fast-math -fast-math", KILN_ERR_PARSE, "-fast-math is given twice");
  check_error("llvm -mattr=+avx -mattr=+fma", KILN_ERR_PARSE, "-mattr is given twice");

  /* Numbers. */
  const char *bad_cores[] = {"abc", "0", "-3", "+4", "4x",  "4097",
                             "99999999999999999999", "1.5", "08"};
  for (size_t i = 0; i < sizeof bad_cores / sizeof bad_cores[0]; i++) {
    char s[128], needle[128];
    snprintf(s, sizeof s, "llvm -num-cores=%s", bad_cores[i]);
    snprintf(needle, sizeof needle, "bad number '%s' for target option -num-cores", bad_cores[i]);
    check_error(s, KILN_ERR_PARSE, needle);
  }
  const char *bad_bits[] = {"100", "64", "1024", "two", "0256"};
  for (size_t i = 0; i < sizeof bad_bits / sizeof bad_bits[0]; i++) {
    char s[128], needle[128];
    snprintf(s, sizeof s, "llvm -vector-bits=%s", bad_bits[i]);
    snprintf(needle, sizeof needle, "bad value '%s' for target option -vector-bits",
             bad_bits[i]);
    check_error(s, KILN_ERR_PARSE, needle);
  }

  /* Architectures. */
  check_error("llvm -mtriple=riscv64-linux-gnu", KILN_ERR_PARSE,
              "unsupported architecture 'riscv64' in target option -mtriple=riscv64-linux-gnu");
  check_error("llvm -mtriple=arm64-apple-darwin", KILN_ERR_PARSE, "unsupported architecture 'arm64'");
  check_error("llvm -mtriple=x86-linux", KILN_ERR_PARSE, "unsupported architecture 'x86'");
  check_error("llvm -mtriple=x86_64/linux", KILN_ERR_PARSE,
              "bad character '/' in target option -mtriple");

  /* Names. */
  check_error("llvm -mcpu=znver4;", KILN_ERR_PARSE, "bad character ';' in target option -mcpu");
  char longcpu[200] = "llvm -mcpu=";
  memset(longcpu + strlen(longcpu), 'a', 100);
  check_error(longcpu, KILN_ERR_PARSE, "value of target option -mcpu is too long");

  /* Features. */
  check_error("llvm -mattr=avx2", KILN_ERR_PARSE,
              "feature 'avx2' in target option -mattr must start with '+' or '-'");
  check_error("llvm -mattr=+avx2,,+fma", KILN_ERR_PARSE, "empty feature in target option -mattr");
  check_error("llvm -mattr=+avx2,", KILN_ERR_PARSE, "empty feature in target option -mattr");
  check_error("llvm -mattr=,+avx2", KILN_ERR_PARSE, "empty feature in target option -mattr");
  check_error("llvm -mattr=+", KILN_ERR_PARSE, "feature '+' in target option -mattr has no name");
  check_error("llvm -mattr=+av$x", KILN_ERR_PARSE, "bad character '$' in feature '+av$x'");
  check_error("llvm -mattr=+avx2,+fma,-avx2", KILN_ERR_PARSE,
              "feature 'avx2' is both enabled and disabled");

  /* Too many or too long features. */
  static char many[8192];
  strcpy(many, "llvm -mattr=");
  for (int i = 0; i < 600; i++) sprintf(many + strlen(many), "%s+f%d", i ? "," : "", i);
  check_error(many, KILN_ERR_PARSE, "too many features in target option -mattr");
  strcpy(many, "llvm -mattr=");
  for (int i = 0; i < 200; i++) sprintf(many + strlen(many), "%s+feature%d", i ? "," : "", i);
  check_error(many, KILN_ERR_PARSE, "target option -mattr is too long");
  /* Repeats do not count against the length. */
  strcpy(many, "llvm -mattr=");
  for (int i = 0; i < 300; i++) sprintf(many + strlen(many), "%s+feature%d", i ? "," : "", i % 3);
  tgt_target t = parse_x86(many);
  ck_assert_str_eq(t.features, "+feature0,+feature1,+feature2");
}
END_TEST

START_TEST(test_misuse) {
  tgt_target t;
  ck_assert_int_eq(tgt_target_parse(NULL, "llvm", &t), KILN_ERR_MISUSE);
  ck_assert_int_eq(tgt_target_parse(ctx, NULL, &t), KILN_ERR_MISUSE);
  ck_errmsg_has(ctx, "NULL argument");
  ck_assert_int_eq(tgt_target_parse(ctx, "llvm", NULL), KILN_ERR_MISUSE);
  ck_assert_int_eq(tgt_target_host(ctx, NULL), KILN_ERR_MISUSE);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("target");
  TCase *tc = tcase_create("parse");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_host_defaults);
  tcase_add_test(tc, test_option_mtriple);
  tcase_add_test(tc, test_option_mcpu);
  tcase_add_test(tc, test_option_mattr);
  tcase_add_test(tc, test_option_num_cores_vector_bits_fast_math);
  tcase_add_test(tc, test_canonical_order_independent);
  tcase_add_test(tc, test_masked_host_features);
  tcase_add_test(tc, test_unsupported_host);
  tcase_add_test(tc, test_real_host);
  tcase_add_test(tc, test_malformed_targets);
  tcase_add_test(tc, test_misuse);
  suite_add_tcase(s, tc);
  return s;
}

KILN_TEST_MAIN

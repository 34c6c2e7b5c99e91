/* test_artifact.c: the .kiln artifact container (runtime/artifact.c): round trips of all
 * section kinds, a real shared object loaded from the CODE section (memfd and temp-file
 * paths), and damaged files: truncated, flipped bytes, bad magic, other versions, table
 * entries out of bounds or overlapping, failed writes. Links only the runtime objects (no
 * compiler, no LLVM) and includes only runtime headers. Files go to a fresh temp dir per test. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kiln/kiln_runtime.h"
#include "runtime/artifact.h"

/* ---- Fixture and helpers ---------------------------------------------------------------- */

static char dir[256]; /* this test's temp dir */

static void setup(void) {
  const char *base = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/kiln-artifact-XXXXXX", base && *base ? base : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

/* dir/name, in one of a few rotating static buffers. */
static const char *P(const char *name) {
  static char bufs[4][512];
  static int next;
  char *b = bufs[next++ % 4];
  snprintf(b, 512, "%s/%s", dir, name);
  return b;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

static uint8_t *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *d = malloc((size_t)n + 1);
  ck_assert_ptr_nonnull(d);
  ck_assert_uint_eq(fread(d, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return d;
}

static void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  ck_assert_int_eq(fclose(f), 0);
}

/* Deterministic pseudo-random bytes (xorshift64, fixed seed per call site). */
static uint8_t *random_bytes(size_t n, uint64_t seed) {
  uint8_t *d = malloc(n ? n : 1);
  ck_assert_ptr_nonnull(d);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    d[i] = (uint8_t)(x >> 32);
  }
  return d;
}

static uint64_t rd64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static void wr64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i);
}
static void wr32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i);
}
static uint32_t rd32(const uint8_t *p) { return (uint32_t)(rd64(p) & 0xffffffffu); }

/* Recomputes the header checksum of a file image (after a test patched the header). */
static void fix_header_checksum(uint8_t *img) {
  uint64_t end = rd32(img + 24) + (uint64_t)rd32(img + 12) * rd32(img + 28);
  wr64(img + 16, 0);
  wr64(img + 16, rt_artifact_hash64(img, end));
}

/* Opening path must fail with `code`, leave *out NULL, and give a message that names the file
 * and contains `needle`. */
static void expect_open_error(const char *path, kiln_status code, const char *needle) {
  rt_artifact *a = (rt_artifact *)&a; /* not NULL, so the test sees it reset */
  kiln_status st = rt_artifact_open(path, &a);
  ck_assert_msg(st == code, "open %s: got %s (%s), want %s", path, kiln_status_str(st),
                kiln_last_error(), kiln_status_str(code));
  ck_assert_ptr_null(a);
  ck_assert_msg(strstr(kiln_last_error(), path) != NULL, "message '%s' does not name %s",
                kiln_last_error(), path);
  ck_assert_msg(strstr(kiln_last_error(), needle) != NULL, "message '%s' lacks '%s'",
                kiln_last_error(), needle);
}

static rt_artifact *open_ok(const char *path) {
  rt_artifact *a = NULL;
  kiln_status st = rt_artifact_open(path, &a);
  ck_assert_msg(st == KILN_OK, "open %s: %s: %s", path, kiln_status_str(st), kiln_last_error());
  ck_assert_ptr_nonnull(a);
  return a;
}

/* The section's bytes must equal data. */
static void expect_section(const rt_artifact *a, uint32_t kind, const void *data, uint64_t size) {
  uint64_t got_size = 12345;
  const uint8_t *p = rt_artifact_section(a, kind, &got_size);
  ck_assert_msg(p != NULL, "section %u missing", kind);
  ck_assert_uint_eq(got_size, size);
  ck_assert_uint_eq((uintptr_t)p % 64, 0);
  if (size) ck_assert_int_eq(memcmp(p, data, size), 0);
}

/* A typical artifact with all four kinds (CODE is arbitrary bytes here). Sizes are odd on
 * purpose so that padding appears between sections. The caller frees the blobs via free_std. */
typedef struct {
  rt_section_in s[4];
  uint8_t *params, *code;
} std_artifact;

static const char META_JSON[] = "{\"target\": \"llvm -mcpu=x86-64\", \"kiln\": \"0.1.0\"}";
static const char PLAN_JSON[] = "{\"buckets\": [{\"calls\": [\"fused_add\", \"fused_dense\"]}]}";

static std_artifact make_std(size_t params_size, size_t code_size) {
  std_artifact t;
  t.params = random_bytes(params_size, 1);
  t.code = random_bytes(code_size, 2);
  t.s[0] = (rt_section_in){RT_SECTION_META, META_JSON, sizeof META_JSON - 1};
  t.s[1] = (rt_section_in){RT_SECTION_PLAN, PLAN_JSON, sizeof PLAN_JSON - 1};
  t.s[2] = (rt_section_in){RT_SECTION_PARAMS, t.params, params_size};
  t.s[3] = (rt_section_in){RT_SECTION_CODE, t.code, code_size};
  return t;
}

static void free_std(std_artifact *t) {
  free(t->params);
  free(t->code);
}

static void write_ok(const char *path, const rt_section_in *s, int n) {
  kiln_status st = rt_artifact_write(path, s, n);
  ck_assert_msg(st == KILN_OK, "write %s: %s: %s", path, kiln_status_str(st), kiln_last_error());
}

/* One section of a hand-made file: placed at `offset` (bytes copied when inside the image). */
typedef struct {
  uint32_t kind;
  uint64_t offset, size;
  const void *data;
} raw_section;

/* Builds a file image by hand, independently of the writer: version major.minor, a header of
 * hsize bytes, table entries of esize bytes (extension bytes filled with 0xAB, as a newer
 * minor might), the sections at their given offsets, and file size `fsize` (0: up to the end
 * of the last section). Checksums are correct. Returns the image (malloc'd), its size in *len. */
static uint8_t *build_raw(uint16_t major, uint16_t minor, uint32_t hsize, uint32_t esize,
                          const raw_section *s, int n, uint64_t fsize, size_t *len) {
  uint64_t end = hsize + (uint64_t)n * esize;
  if (fsize == 0)
    for (int i = 0; i < n; i++)
      if (s[i].offset + s[i].size > end) end = s[i].offset + s[i].size;
  if (fsize) end = fsize;
  uint8_t *img = calloc(1, end);
  ck_assert_ptr_nonnull(img);
  /* Section bytes first, so that a section placed over the header does not erase it. */
  for (int i = 0; i < n; i++)
    if (s[i].offset < end && s[i].size <= end - s[i].offset)
      memcpy(img + s[i].offset, s[i].data, s[i].size);
  memcpy(img, "KILNART", 8);
  img[8] = (uint8_t)major, img[9] = (uint8_t)(major >> 8);
  img[10] = (uint8_t)minor, img[11] = (uint8_t)(minor >> 8);
  wr32(img + 12, (uint32_t)n);
  wr32(img + 24, hsize);
  wr32(img + 28, esize);
  wr64(img + 32, end);
  for (uint32_t k = 48; k < hsize; k++) img[k] = 0xAB;
  for (int i = 0; i < n; i++) {
    uint8_t *e = img + hsize + (uint64_t)i * esize;
    wr32(e, s[i].kind);
    wr64(e + 8, s[i].offset);
    wr64(e + 16, s[i].size);
    wr64(e + 24, rt_artifact_hash64(s[i].data, s[i].size));
    for (uint32_t k = 32; k < esize; k++) e[k] = 0xAB;
  }
  fix_header_checksum(img);
  *len = end;
  return img;
}

/* ---- The checksum ----------------------------------------------------------------------- */

START_TEST(hash_values_are_stable) {
  /* The checksum is part of the file format: these values must never change in major 1. */
  uint8_t seq[100];
  for (int i = 0; i < 100; i++) seq[i] = (uint8_t)i;
  ck_assert_uint_eq(rt_artifact_hash64("", 0), 0x9090306c6e91ed59ull);
  ck_assert_uint_eq(rt_artifact_hash64("a", 1), 0x83616eadc11852d1ull);
  ck_assert_uint_eq(rt_artifact_hash64(seq, 100), 0xbf56bcb0f4e321dcull);
  ck_assert_uint_eq(rt_artifact_hash64(NULL, 0), rt_artifact_hash64("x", 0));
}
END_TEST

START_TEST(hash_sees_every_byte_and_the_length) {
  /* Any single changed byte changes the hash (a property of the construction, checked at
   * every position of stripes, whole tail words and tail bytes). */
  size_t n = 300;
  uint8_t *d = random_bytes(n, 3);
  uint64_t h = rt_artifact_hash64(d, n);
  for (size_t i = 0; i < n; i++)
    for (int m = 0; m < 3; m++) {
      uint8_t mask = (uint8_t[]){0x01, 0x80, 0xff}[m];
      d[i] ^= mask;
      ck_assert_msg(rt_artifact_hash64(d, n) != h, "flip of byte %zu (mask %x) unseen", i, mask);
      d[i] ^= mask;
    }
  free(d);
  /* Zero runs of different lengths differ. */
  uint8_t zeros[100] = {0};
  uint64_t hs[101];
  for (int len = 0; len <= 100; len++) {
    hs[len] = rt_artifact_hash64(zeros, (uint64_t)len);
    for (int k = 0; k < len; k++) ck_assert_uint_ne(hs[k], hs[len]);
  }
}
END_TEST

/* ---- Round trips ------------------------------------------------------------------------- */

START_TEST(round_trip_all_sections) {
  std_artifact t = make_std(10007, 777);
  write_ok(P("model.kiln"), t.s, 4);
  ck_assert(!exists(P("model.kiln.tmp")));
  rt_artifact *a = open_ok(P("model.kiln"));
  for (int i = 0; i < 4; i++) expect_section(a, t.s[i].kind, t.s[i].data, t.s[i].size);
  uint64_t size = 99;
  ck_assert_ptr_null(rt_artifact_section(a, 9, &size));
  ck_assert_uint_eq(size, 0);
  ck_assert_ptr_nonnull(rt_artifact_section(a, RT_SECTION_PARAMS, NULL));
  ck_assert_ptr_null(rt_artifact_section(NULL, RT_SECTION_PARAMS, &size));
  rt_artifact_close(a);

  /* The header as documented: magic, version 1.0, four sections, the file's size. */
  size_t len;
  uint8_t *img = read_all(P("model.kiln"), &len);
  ck_assert_int_eq(memcmp(img, "KILNART\0", 8), 0);
  ck_assert_uint_eq(img[8] | img[9] << 8, 1);
  ck_assert_uint_eq(img[10] | img[11] << 8, 0);
  ck_assert_uint_eq(rd32(img + 12), 4);
  ck_assert_uint_eq(rd64(img + 32), len);
  for (int i = 0; i < 4; i++) ck_assert_uint_eq(rd64(img + 48 + 32 * i + 8) % 64, 0);
  free(img);
  free_std(&t);
}
END_TEST

START_TEST(round_trip_any_order_and_rewrite) {
  std_artifact t = make_std(64 * 3, 1);
  rt_section_in rev[4] = {t.s[3], t.s[2], t.s[1], t.s[0]};
  write_ok(P("m.kiln"), rev, 4);
  rt_artifact *a = open_ok(P("m.kiln"));
  for (int i = 0; i < 4; i++) expect_section(a, t.s[i].kind, t.s[i].data, t.s[i].size);
  rt_artifact_close(a);
  /* Writing again replaces the file. */
  write_ok(P("m.kiln"), t.s, 1);
  a = open_ok(P("m.kiln"));
  expect_section(a, RT_SECTION_META, META_JSON, sizeof META_JSON - 1);
  ck_assert_ptr_null(rt_artifact_section(a, RT_SECTION_PARAMS, NULL));
  rt_artifact_close(a);
  free_std(&t);
}
END_TEST

START_TEST(round_trip_empty) {
  /* No sections at all, and empty sections (also as the last one, placed past the data). */
  write_ok(P("none.kiln"), NULL, 0);
  rt_artifact *a = open_ok(P("none.kiln"));
  ck_assert_ptr_null(rt_artifact_section(a, RT_SECTION_META, NULL));
  rt_artifact_close(a);

  rt_section_in s[3] = {{RT_SECTION_PLAN, NULL, 0}, {RT_SECTION_META, "x", 1},
                        {RT_SECTION_PARAMS, NULL, 0}};
  write_ok(P("empty.kiln"), s, 3);
  a = open_ok(P("empty.kiln"));
  expect_section(a, RT_SECTION_PLAN, NULL, 0);
  expect_section(a, RT_SECTION_META, "x", 1);
  expect_section(a, RT_SECTION_PARAMS, NULL, 0);
  rt_artifact_close(a);
}
END_TEST

START_TEST(round_trip_large_params) {
  size_t n = 8u << 20;
  uint8_t *params = random_bytes(n, 4);
  rt_section_in s[2] = {{RT_SECTION_META, "{}", 2}, {RT_SECTION_PARAMS, params, n}};
  write_ok(P("big.kiln"), s, 2);
  rt_artifact *a = open_ok(P("big.kiln"));
  expect_section(a, RT_SECTION_PARAMS, params, n);
  rt_artifact_close(a);
  free(params);
}
END_TEST

START_TEST(unknown_kinds_are_skipped) {
  rt_section_in s[3] = {{RT_SECTION_META, "{}", 2}, {77, "future", 6}, {RT_SECTION_PLAN, "[]", 2}};
  write_ok(P("m.kiln"), s, 3);
  rt_artifact *a = open_ok(P("m.kiln"));
  expect_section(a, RT_SECTION_META, "{}", 2);
  expect_section(a, RT_SECTION_PLAN, "[]", 2);
  expect_section(a, 77, "future", 6);
  rt_artifact_close(a);

  /* Unknown kinds may repeat; known kinds may not. */
  raw_section r[3] = {{77, 192, 3, "abc"}, {77, 256, 3, "def"}, {RT_SECTION_META, 320, 2, "{}"}};
  size_t len;
  uint8_t *img = build_raw(1, 0, 48, 32, r, 3, 0, &len);
  write_file(P("dup77.kiln"), img, len);
  a = open_ok(P("dup77.kiln"));
  expect_section(a, RT_SECTION_META, "{}", 2);
  rt_artifact_close(a);
  free(img);
  r[0].kind = r[1].kind = RT_SECTION_PARAMS;
  img = build_raw(1, 0, 48, 32, r, 3, 0, &len);
  write_file(P("dup.kiln"), img, len);
  expect_open_error(P("dup.kiln"), KILN_ERR_CORRUPT, "section PARAMS appears twice");
  free(img);
}
END_TEST

/* ---- Versions ---------------------------------------------------------------------------- */

START_TEST(unknown_major_is_unsupported) {
  std_artifact t = make_std(100, 10);
  write_ok(P("m.kiln"), t.s, 4);
  size_t len;
  uint8_t *img = read_all(P("m.kiln"), &len);
  img[8] = 3, img[10] = 2;
  fix_header_checksum(img);
  write_file(P("v3.kiln"), img, len);
  expect_open_error(P("v3.kiln"), KILN_ERR_UNSUPPORTED,
                    "artifact format 3.2, this runtime reads 1.x");
  /* Even with a stale checksum (another major may lay out its header differently). */
  img[8] = 0;
  write_file(P("v0.kiln"), img, len);
  expect_open_error(P("v0.kiln"), KILN_ERR_UNSUPPORTED, "artifact format 0.2");
  free(img);
  free_std(&t);
}
END_TEST

START_TEST(newer_minor_loads) {
  std_artifact t = make_std(100, 10);
  write_ok(P("m.kiln"), t.s, 4);
  size_t len;
  uint8_t *img = read_all(P("m.kiln"), &len);
  img[10] = 7;
  fix_header_checksum(img);
  write_file(P("v17.kiln"), img, len);
  rt_artifact *a = open_ok(P("v17.kiln"));
  for (int i = 0; i < 4; i++) expect_section(a, t.s[i].kind, t.s[i].data, t.s[i].size);
  rt_artifact_close(a);
  free(img);

  /* A newer minor with a longer header and longer table entries: the extra fields are
   * skipped. */
  raw_section r[2] = {{RT_SECTION_PARAMS, 192, 100, t.params}, {RT_SECTION_META, 320, 5, "{\"a\"}"}};
  img = build_raw(1, 3, 64, 48, r, 2, 0, &len);
  write_file(P("v13.kiln"), img, len);
  a = open_ok(P("v13.kiln"));
  expect_section(a, RT_SECTION_PARAMS, t.params, 100);
  expect_section(a, RT_SECTION_META, "{\"a\"}", 5);
  rt_artifact_close(a);
  free(img);
  free_std(&t);
}
END_TEST

/* ---- Damaged files ----------------------------------------------------------------------- */

START_TEST(truncation_is_a_clear_error) {
  std_artifact t = make_std(1000, 300);
  write_ok(P("m.kiln"), t.s, 4);
  size_t len;
  uint8_t *img = read_all(P("m.kiln"), &len);
  ck_assert_uint_gt(len, 1000);
  size_t cuts[256];
  int ncuts = 0;
  for (size_t c = 0; c < len; c += 64) cuts[ncuts++] = c;
  size_t extra[] = {1, 7, 8, 11, 12, 47, 49, 239};
  for (size_t i = 0; i < sizeof extra / sizeof *extra; i++) cuts[ncuts++] = extra[i];
  for (size_t k = 1; k <= 16; k++) cuts[ncuts++] = len - k;
  for (int i = 0; i < ncuts; i++) {
    write_file(P("cut.kiln"), img, cuts[i]);
    expect_open_error(P("cut.kiln"), KILN_ERR_CORRUPT, "truncated");
  }
  free(img);
  free_std(&t);
}
END_TEST

START_TEST(flipped_byte_names_the_section) {
  std_artifact t = make_std(1000, 300);
  write_ok(P("m.kiln"), t.s, 4);
  size_t len;
  uint8_t *img = read_all(P("m.kiln"), &len);
  static const char *names[] = {"META", "PLAN", "PARAMS", "CODE"};
  for (int i = 0; i < 4; i++) {
    const uint8_t *e = img + 48 + 32 * i;
    ck_assert_uint_eq(rd32(e), t.s[i].kind);
    uint64_t off = rd64(e + 8), size = rd64(e + 16);
    uint64_t where[3] = {off, off + size / 2, off + size - 1};
    for (int w = 0; w < 3; w++) {
      img[where[w]] ^= 0x10;
      write_file(P("flip.kiln"), img, len);
      img[where[w]] ^= 0x10;
      char want[128];
      snprintf(want, sizeof want, "%s: section %s: checksum mismatch (file corrupted?)",
               P("flip.kiln"), names[i]);
      expect_open_error(P("flip.kiln"), KILN_ERR_CORRUPT, want);
    }
  }
  /* A flipped byte in the table: the header checksum. */
  img[48 + 32 * 2 + 20] ^= 1;
  write_file(P("flip.kiln"), img, len);
  expect_open_error(P("flip.kiln"), KILN_ERR_CORRUPT, "header checksum mismatch");
  free(img);
  free_std(&t);
}
END_TEST

START_TEST(every_flipped_byte_is_caught) {
  /* Every byte of the file is covered by a check: magic, version, header checksum, the
   * sections' checksums, or the zero padding between sections. */
  std_artifact t = make_std(70, 5);
  write_ok(P("m.kiln"), t.s, 4);
  size_t len;
  uint8_t *img = read_all(P("m.kiln"), &len);
  for (size_t p = 0; p < len; p++)
    for (int m = 0; m < 2; m++) {
      uint8_t mask = m ? 0xff : 0x01;
      img[p] ^= mask;
      write_file(P("flip.kiln"), img, len);
      img[p] ^= mask;
      rt_artifact *a = NULL;
      kiln_status st = rt_artifact_open(P("flip.kiln"), &a);
      ck_assert_msg(st == KILN_ERR_CORRUPT || st == KILN_ERR_UNSUPPORTED,
                    "byte %zu ^ %x: got %s", p, mask, kiln_status_str(st));
      ck_assert_ptr_null(a);
    }
  free(img);
  free_std(&t);
}
END_TEST

START_TEST(bad_magic) {
  std_artifact t = make_std(10, 10);
  write_ok(P("m.kiln"), t.s, 4);
  size_t len;
  uint8_t *img = read_all(P("m.kiln"), &len);
  img[3] = 'X';
  write_file(P("bad.kiln"), img, len);
  expect_open_error(P("bad.kiln"), KILN_ERR_CORRUPT, "not a kiln artifact (bad magic)");
  const char text[] = "{\"this\": \"is a JSON file, not an artifact at all\", \"pad\": 1234567890}";
  write_file(P("json.kiln"), text, sizeof text - 1);
  expect_open_error(P("json.kiln"), KILN_ERR_CORRUPT, "not a kiln artifact");
  write_file(P("empty.kiln"), "", 0);
  expect_open_error(P("empty.kiln"), KILN_ERR_CORRUPT, "(0 bytes)");
  free(img);
  free_std(&t);
}
END_TEST

START_TEST(entry_outside_the_file) {
  uint8_t data[256] = {1, 2, 3};
  size_t len;
  /* Starts past the end. */
  raw_section r1[1] = {{RT_SECTION_PARAMS, 1024, 16, data}};
  uint8_t *img = build_raw(1, 0, 48, 32, r1, 1, 128, &len);
  write_file(P("out1.kiln"), img, len);
  expect_open_error(P("out1.kiln"), KILN_ERR_CORRUPT, "section PARAMS: 16 bytes at offset 1024 lie outside the file (128 bytes)");
  free(img);
  /* Starts inside, runs past the end. */
  raw_section r2[1] = {{RT_SECTION_CODE, 64 + 64, 256, data}};
  img = build_raw(1, 0, 48, 32, r2, 1, 256, &len);
  write_file(P("out2.kiln"), img, len);
  expect_open_error(P("out2.kiln"), KILN_ERR_CORRUPT, "section CODE: 256 bytes at offset 128 lie outside");
  free(img);
  /* offset + size overflows 64 bits. */
  raw_section r3[1] = {{RT_SECTION_META, UINT64_MAX - 63, 128, data}};
  img = build_raw(1, 0, 48, 32, r3, 1, 128, &len);
  write_file(P("out3.kiln"), img, len);
  expect_open_error(P("out3.kiln"), KILN_ERR_CORRUPT, "section META");
  free(img);
  /* A section count far beyond the file: the table would run past the end. */
  raw_section r4[1] = {{RT_SECTION_META, 128, 2, "{}"}};
  img = build_raw(1, 0, 48, 32, r4, 1, 0, &len);
  wr32(img + 12, 0xfffffff0u); /* (the checksum is stale: bounds are checked first) */
  write_file(P("count.kiln"), img, len);
  expect_open_error(P("count.kiln"), KILN_ERR_CORRUPT, "section table");
  free(img);
}
END_TEST

START_TEST(overlap_and_alignment) {
  uint8_t data[256];
  memset(data, 7, sizeof data);
  size_t len;
  raw_section r1[2] = {{RT_SECTION_META, 128, 100, data}, {RT_SECTION_PLAN, 192, 10, data}};
  uint8_t *img = build_raw(1, 0, 48, 32, r1, 2, 0, &len);
  write_file(P("ov.kiln"), img, len);
  expect_open_error(P("ov.kiln"), KILN_ERR_CORRUPT, "sections META and PLAN overlap");
  free(img);
  /* Listed in the other order in the table: still found. */
  raw_section r2[2] = {{RT_SECTION_PLAN, 192, 10, data}, {RT_SECTION_META, 128, 100, data}};
  img = build_raw(1, 0, 48, 32, r2, 2, 0, &len);
  write_file(P("ov2.kiln"), img, len);
  expect_open_error(P("ov2.kiln"), KILN_ERR_CORRUPT, "sections META and PLAN overlap");
  free(img);
  /* A section over the header and table. */
  raw_section r3[2] = {{RT_SECTION_PARAMS, 64, 64, data}, {RT_SECTION_META, 192, 2, "{}"}};
  img = build_raw(1, 0, 48, 32, r3, 2, 0, &len);
  write_file(P("hdr.kiln"), img, len);
  expect_open_error(P("hdr.kiln"), KILN_ERR_CORRUPT, "section PARAMS overlaps the header");
  free(img);
  /* Not 64-byte aligned. */
  raw_section r4[1] = {{RT_SECTION_PARAMS, 100, 8, data}};
  img = build_raw(1, 0, 48, 32, r4, 1, 0, &len);
  write_file(P("al.kiln"), img, len);
  expect_open_error(P("al.kiln"), KILN_ERR_CORRUPT, "section PARAMS: offset 100 is not 64-byte aligned");
  free(img);
  /* Garbage in the padding between sections, and bytes appended after the end. */
  raw_section r5[2] = {{RT_SECTION_META, 128, 3, data}, {RT_SECTION_PLAN, 192, 3, data}};
  img = build_raw(1, 0, 48, 32, r5, 2, 0, &len);
  img[150] = 1;
  write_file(P("pad.kiln"), img, len);
  expect_open_error(P("pad.kiln"), KILN_ERR_CORRUPT, "non-zero byte at offset 150");
  img[150] = 0;
  write_file(P("ok.kiln"), img, len);
  rt_artifact_close(open_ok(P("ok.kiln")));
  uint8_t *longer = calloc(1, len + 10);
  memcpy(longer, img, len);
  write_file(P("long.kiln"), longer, len + 10);
  expect_open_error(P("long.kiln"), KILN_ERR_CORRUPT, "10 unexpected bytes after the end");
  free(longer);
  free(img);
}
END_TEST

START_TEST(missing_file_and_directory) {
  expect_open_error(P("nope.kiln"), KILN_ERR_IO, "cannot open: No such file or directory");
  expect_open_error(dir, KILN_ERR_IO, "not a regular file");
  ck_assert_int_eq(mkfifo(P("fifo"), 0600), 0); /* must not block waiting for a writer */
  expect_open_error(P("fifo"), KILN_ERR_IO, "not a regular file");
  rt_artifact *a = NULL;
  ck_assert_int_eq(rt_artifact_open(NULL, &a), KILN_ERR_MISUSE);
  ck_assert_int_eq(rt_artifact_open(P("x"), NULL), KILN_ERR_MISUSE);
  rt_artifact_close(NULL);
}
END_TEST

/* ---- Writing ----------------------------------------------------------------------------- */

START_TEST(write_misuse) {
  rt_section_in good = {RT_SECTION_META, "{}", 2};
  ck_assert_int_eq(rt_artifact_write(NULL, &good, 1), KILN_ERR_MISUSE);
  ck_assert_int_eq(rt_artifact_write("", &good, 1), KILN_ERR_MISUSE);
  ck_assert_int_eq(rt_artifact_write(P("a.kiln"), &good, -1), KILN_ERR_MISUSE);
  ck_assert_int_eq(rt_artifact_write(P("a.kiln"), NULL, 1), KILN_ERR_MISUSE);
  rt_section_in zero = {0, "x", 1};
  ck_assert_int_eq(rt_artifact_write(P("a.kiln"), &zero, 1), KILN_ERR_MISUSE);
  ck_assert(strstr(kiln_last_error(), "kind 0") != NULL);
  rt_section_in nodata = {RT_SECTION_PARAMS, NULL, 3};
  ck_assert_int_eq(rt_artifact_write(P("a.kiln"), &nodata, 1), KILN_ERR_MISUSE);
  ck_assert(strstr(kiln_last_error(), "section PARAMS has 3 bytes but no data") != NULL);
  rt_section_in dup[2] = {good, good};
  ck_assert_int_eq(rt_artifact_write(P("a.kiln"), dup, 2), KILN_ERR_MISUSE);
  ck_assert(strstr(kiln_last_error(), "section META given twice") != NULL);
  ck_assert(!exists(P("a.kiln")) && !exists(P("a.kiln.tmp")));
  ck_assert_int_eq(rt_artifact_write(P("no/such/dir/a.kiln"), &good, 1), KILN_ERR_IO);
  ck_assert(strstr(kiln_last_error(), "no/such/dir/a.kiln") != NULL);
  ck_assert(strstr(kiln_last_error(), "No such file or directory") != NULL);
}
END_TEST

START_TEST(failed_write_leaves_no_file) {
  /* A file size limit makes the writes fail half way (EFBIG): the old file stays as it was
   * and neither a half-written artifact nor the temp file remains. */
  rt_section_in small = {RT_SECTION_META, "{\"old\": 1}", 10};
  write_ok(P("m.kiln"), &small, 1);
  size_t old_len;
  uint8_t *old = read_all(P("m.kiln"), &old_len);
  size_t n = 1u << 20;
  uint8_t *params = random_bytes(n, 5);
  rt_section_in big[2] = {{RT_SECTION_META, "{}", 2}, {RT_SECTION_PARAMS, params, n}};

  struct rlimit saved, lim;
  ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
  lim = saved;
  lim.rlim_cur = 64 * 1024;
  signal(SIGXFSZ, SIG_IGN);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
  kiln_status st1 = rt_artifact_write(P("m.kiln"), big, 2);
  char msg1[1024];
  snprintf(msg1, sizeof msg1, "%s", kiln_last_error());
  kiln_status st2 = rt_artifact_write(P("fresh.kiln"), big, 2);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
  signal(SIGXFSZ, SIG_DFL);

  ck_assert_int_eq(st1, KILN_ERR_IO);
  ck_assert_int_eq(st2, KILN_ERR_IO);
  ck_assert_msg(strstr(msg1, P("m.kiln")) && strstr(msg1, "File too large"), "message: %s", msg1);
  ck_assert(!exists(P("m.kiln.tmp")));
  ck_assert(!exists(P("fresh.kiln")) && !exists(P("fresh.kiln.tmp")));
  size_t len;
  uint8_t *now = read_all(P("m.kiln"), &len);
  ck_assert_uint_eq(len, old_len);
  ck_assert_int_eq(memcmp(now, old, len), 0);
  rt_artifact_close(open_ok(P("m.kiln")));
  /* Without the limit the same write works. */
  write_ok(P("m.kiln"), big, 2);
  rt_artifact *a = open_ok(P("m.kiln"));
  expect_section(a, RT_SECTION_PARAMS, params, n);
  rt_artifact_close(a);
  free(now);
  free(old);
  free(params);
}
END_TEST

/* ---- Code ------------------------------------------------------------------------------- */

/* Compiles a shared object exporting kiln_test_answer(x) = x * k + 1 with the system C
 * compiler; returns its bytes (malloc'd) or NULL when there is no `cc`. */
static uint8_t *build_so(int k, size_t *len) {
  if (system("command -v cc >/dev/null 2>&1") != 0) return NULL;
  char src[64], so[64];
  snprintf(src, sizeof src, "answer%d.c", k);
  snprintf(so, sizeof so, "answer%d.so", k);
  char code[256];
  snprintf(code, sizeof code,
           "int kiln_test_answer(int x) { return x * %d + 1; }\n"
           "const char kiln_test_name[] = \"answer%d\";\n", k, k);
  write_file(P(src), code, strlen(code));
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "cc -shared -fPIC -O1 -o '%s' '%s'", P(so), P(src));
  ck_assert_msg(system(cmd) == 0, "cannot compile the test shared object: %s", cmd);
  return read_all(P(so), len);
}

/* Writes an artifact whose CODE is the shared object built for k. */
static int write_code_artifact(const char *name, int k) {
  size_t len;
  uint8_t *so = build_so(k, &len);
  if (!so) return 0;
  rt_section_in s[2] = {{RT_SECTION_META, "{}", 2}, {RT_SECTION_CODE, so, len}};
  write_ok(P(name), s, 2);
  free(so);
  return 1;
}

#define SKIP_NO_CC()                                                                     \
  do {                                                                                   \
    fprintf(stderr, "SKIP %s: no C compiler (cc) to build a shared object\n", __func__); \
    return;                                                                              \
  } while (0)

typedef int (*answer_fn)(int);

/* Whether this process's memory map (/proc/self/maps, read to the end: its size is not
 * known in advance) has a line containing needle. */
static int maps_mention(const char *needle) {
  FILE *f = fopen("/proc/self/maps", "r");
  ck_assert_ptr_nonnull(f);
  char line[4096];
  int found = 0;
  while (fgets(line, sizeof line, f))
    if (strstr(line, needle)) found = 1;
  fclose(f);
  return found;
}

START_TEST(code_loads_and_runs) {
  if (!write_code_artifact("code.kiln", 6)) SKIP_NO_CC();
  rt_artifact *a = open_ok(P("code.kiln"));
  ck_assert_ptr_null(rt_artifact_symbol(a, "kiln_test_answer"));
  ck_assert(strstr(kiln_last_error(), "not loaded") != NULL);
  void *h = NULL, *h2 = NULL;
  kiln_status st = rt_artifact_load_code(a, &h);
  ck_assert_msg(st == KILN_OK, "load_code: %s", kiln_last_error());
  ck_assert_ptr_nonnull(h);
  ck_assert_int_eq(rt_artifact_load_code(a, &h2), KILN_OK);
  ck_assert_ptr_eq(h, h2);
  answer_fn f = (answer_fn)rt_artifact_symbol(a, "kiln_test_answer");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(f(7), 43);
  ck_assert_str_eq((const char *)rt_artifact_symbol(a, "kiln_test_name"), "answer6");
  ck_assert_ptr_null(rt_artifact_symbol(a, "no_such_symbol"));
  ck_assert(strstr(kiln_last_error(), "no_such_symbol") != NULL);
  /* Loaded from memory: no file named after the code, and no LLVM in this process. */
  ck_assert(maps_mention("kiln-code"));
  ck_assert(!maps_mention("libLLVM"));
  rt_artifact_close(a);
  ck_assert(!maps_mention("kiln-code"));
}
END_TEST

START_TEST(code_of_two_artifacts_stays_apart) {
  /* Two artifacts loaded at once, then one closed and a third loaded: each gets its own
   * code (the loader must not confuse them by the /proc/self/fd/N name). */
  if (!write_code_artifact("a.kiln", 2) || !write_code_artifact("b.kiln", 3)) SKIP_NO_CC();
  ck_assert(write_code_artifact("c.kiln", 5));
  rt_artifact *a = open_ok(P("a.kiln")), *b = open_ok(P("b.kiln"));
  void *h;
  ck_assert_int_eq(rt_artifact_load_code(a, &h), KILN_OK);
  ck_assert_int_eq(rt_artifact_load_code(b, &h), KILN_OK);
  ck_assert_int_eq(((answer_fn)rt_artifact_symbol(a, "kiln_test_answer"))(10), 21);
  ck_assert_int_eq(((answer_fn)rt_artifact_symbol(b, "kiln_test_answer"))(10), 31);
  rt_artifact_close(a);
  rt_artifact *c = open_ok(P("c.kiln"));
  ck_assert_int_eq(rt_artifact_load_code(c, &h), KILN_OK);
  ck_assert_int_eq(((answer_fn)rt_artifact_symbol(c, "kiln_test_answer"))(10), 51);
  ck_assert_int_eq(((answer_fn)rt_artifact_symbol(b, "kiln_test_answer"))(10), 31);
  rt_artifact_close(b);
  rt_artifact_close(c);
}
END_TEST

/* In a child process: forbids memfd_create (a seccomp filter answering ENOSYS, as on old
 * kernels or in sandboxes), loads the code and exits 0 if it ran from a temp file under
 * $TMPDIR that is gone again; 77 if seccomp is not available; another code on failure. */
static int load_without_memfd(const char *path, const char *tmpdir) {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_memfd_create, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof filter / sizeof *filter, filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 77;
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return 77;
  if (memfd_create("probe", 0) >= 0 || errno != ENOSYS) return 2;
  setenv("TMPDIR", tmpdir, 1);
  rt_artifact *a = NULL;
  void *h;
  if (rt_artifact_open(path, &a) != KILN_OK) return 3;
  if (rt_artifact_load_code(a, &h) != KILN_OK) {
    fprintf(stderr, "load_code without memfd: %s\n", kiln_last_error());
    return 4;
  }
  answer_fn f = (answer_fn)rt_artifact_symbol(a, "kiln_test_answer");
  if (!f || f(2) != 9) return 5;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", tmpdir); /* unlinked already */
  if (system(cmd) != 0) return 6;
  rt_artifact_close(a);
  return 0;
}

START_TEST(code_loads_without_memfd) {
  if (!write_code_artifact("code.kiln", 4)) SKIP_NO_CC();
  ck_assert_int_eq(mkdir(P("tmpd"), 0700), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) _exit(load_without_memfd(P("code.kiln"), P("tmpd")));
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) {
    fprintf(stderr, "SKIP code_loads_without_memfd: seccomp filters are not available\n");
    return;
  }
  ck_assert_msg(WEXITSTATUS(status) == 0, "child failed at step %d", WEXITSTATUS(status));
}
END_TEST

START_TEST(code_errors) {
  /* Not a shared object: dlopen's reason is in the message. */
  const char junk[] = "this is not an ELF shared object, just some bytes of text.......";
  rt_section_in s[2] = {{RT_SECTION_META, "{}", 2}, {RT_SECTION_CODE, junk, sizeof junk}};
  write_ok(P("junk.kiln"), s, 2);
  rt_artifact *a = open_ok(P("junk.kiln"));
  void *h = (void *)&h;
  ck_assert_int_eq(rt_artifact_load_code(a, &h), KILN_ERR_IO);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(kiln_last_error(), "section CODE: cannot load the shared object: ") != NULL,
                "message: %s", kiln_last_error());
  ck_assert_msg(strstr(kiln_last_error(), "ELF") != NULL || strstr(kiln_last_error(), "short"),
                "no dlerror text in: %s", kiln_last_error());
  rt_artifact_close(a);
  /* No CODE section. */
  write_ok(P("nocode.kiln"), s, 1);
  a = open_ok(P("nocode.kiln"));
  ck_assert_int_eq(rt_artifact_load_code(a, &h), KILN_ERR_CORRUPT);
  ck_assert(strstr(kiln_last_error(), "no CODE section") != NULL);
  ck_assert_int_eq(rt_artifact_load_code(NULL, &h), KILN_ERR_MISUSE);
  ck_assert_int_eq(rt_artifact_load_code(a, NULL), KILN_ERR_MISUSE);
  ck_assert_ptr_null(rt_artifact_symbol(NULL, "x"));
  rt_artifact_close(a);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("artifact");
  TCase *tc = tcase_create("artifact");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, hash_values_are_stable);
  tcase_add_test(tc, hash_sees_every_byte_and_the_length);
  tcase_add_test(tc, round_trip_all_sections);
  tcase_add_test(tc, round_trip_any_order_and_rewrite);
  tcase_add_test(tc, round_trip_empty);
  tcase_add_test(tc, round_trip_large_params);
  tcase_add_test(tc, unknown_kinds_are_skipped);
  tcase_add_test(tc, unknown_major_is_unsupported);
  tcase_add_test(tc, newer_minor_loads);
  tcase_add_test(tc, truncation_is_a_clear_error);
  tcase_add_test(tc, flipped_byte_names_the_section);
  tcase_add_test(tc, every_flipped_byte_is_caught);
  tcase_add_test(tc, bad_magic);
  tcase_add_test(tc, entry_outside_the_file);
  tcase_add_test(tc, overlap_and_alignment);
  tcase_add_test(tc, missing_file_and_directory);
  tcase_add_test(tc, write_misuse);
  tcase_add_test(tc, failed_write_leaves_no_file);
  tcase_add_test(tc, code_loads_and_runs);
  tcase_add_test(tc, code_of_two_artifacts_stays_apart);
  tcase_add_test(tc, code_loads_without_memfd);
  tcase_add_test(tc, code_errors);
  suite_add_tcase(s, tc);
  return s;
}

/* The runner (as KILN_TEST_MAIN in test_util.h, which this suite does not include: that
 * header pulls in the compiler's API). */
int main(void) {
  SRunner *sr = srunner_create(make_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

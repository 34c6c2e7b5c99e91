/* artifact.c: the .kiln artifact container, writer (used by the compiler) and reader (used by
 * the runtime). The compiler's output (META/PLAN JSON, PARAMS tensor bytes, CODE shared object)
 * goes into one file; the runtime maps it read-only, checks it completely, hands out pointers
 * into the mapping and loads the code from memory. libc and libdl only (part of the LLVM-free
 * libkiln_runtime.so).
 *
 * Layout, version 1.0, all integers little-endian:
 *   offset  size  field
 *        0     8  magic "KILNART\0"
 *        8     2  format major (1)       \ at these offsets in every major, so that any
 *       10     2  format minor (0)       / reader can say which version a file is
 *       12     4  section count
 *       16     8  header checksum: rt_artifact_hash64 of bytes [0, table end) with these
 *                 8 bytes taken as zero
 *       24     4  header size: where the section table starts (48; newer minors may add
 *                 fields, readers skip them)
 *       28     4  table entry size (32; newer minors may append fields, readers skip them)
 *       32     8  file size in bytes (catches truncation and appended garbage)
 *       40     8  reserved, 0
 *   header size  section table, one entry per section:
 *        0     4  kind (META=1, PLAN=2, PARAMS=3, CODE=4; readers skip unknown kinds)
 *        4     4  flags (none defined; written 0, ignored)
 *        8     8  file offset (a multiple of 64)
 *       16     8  size in bytes
 *       24     8  checksum: rt_artifact_hash64 of the section's bytes
 * Sections follow the table in any order, each at a 64-byte aligned offset, never overlapping;
 * every byte not in the header, the table or a section is zero, so that every byte of the file
 * is checked by something. A reader rejects another major (KILN_ERR_UNSUPPORTED) and accepts
 * any minor of its own. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, mkostemp (meson defines it for the whole project) */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact.h"
#include "rt_internal.h"

#define HEADER_SIZE 48 /* the version 1.0 header; newer minors may have a larger one */
#define ENTRY_SIZE 32  /* the version 1.0 table entry */
#define CHECKSUM_AT 16 /* where the header checksum sits */

static const char MAGIC[8] = {'K', 'I', 'L', 'N', 'A', 'R', 'T', '\0'};

/* One section as the reader found it in the table. */
typedef struct {
  uint32_t kind;
  uint64_t offset, size, checksum;
} section_entry;

struct rt_artifact {
  char *path;            /* for error messages */
  const uint8_t *base;   /* the read-only mapping (NULL for an empty file) */
  uint64_t size;         /* bytes mapped = the file's size */
  section_entry *sections;
  uint32_t nsections;
  void *dl;              /* the loaded CODE section, or NULL */
  int code_fd;           /* the memfd / temp file behind dl, kept open while loaded; -1 */
  int owned;             /* base is a malloc'ed copy (rt_artifact_open_memory), not a mapping */
};

/* ---- The checksum -----------------------------------------------------------------------
 * rt_artifact_hash64 ("kiln64"): an xxhash-style hash over little-endian 8-byte words. Four
 * lanes each absorb every fourth word of the 32-byte stripes (acc = rotl(acc + w*P2, 31) * P1,
 * independent chains, so the loop runs at several bytes per cycle); the lanes are rotated and
 * added, the length is added, remaining whole words and then the last 1-7 bytes (zero-padded
 * into one word) are mixed in, and a final avalanche spreads every bit. Every step is a
 * bijection of the running state for fixed input, and each input word enters through a
 * bijection of that word (odd multipliers, rotations), so changing the bytes of any single
 * 8-byte word (in particular any single byte) always changes the hash. The constants are odd
 * 64-bit numbers with mixed bits (those of xxHash64). The value is part of the file format:
 * it must never change within a major version. */

static const uint64_t P1 = 0x9E3779B185EBCA87ull;
static const uint64_t P2 = 0xC2B2AE3D27D4EB4Full;
static const uint64_t P3 = 0x165667B19E3779F9ull;
static const uint64_t P4 = 0x85EBCA77C2B2AE63ull;
static const uint64_t P5 = 0x27D4EB2F165667C5ull;

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* Little-endian loads and stores, independent of the host's byte order (compilers turn the
 * loads into single instructions on little-endian machines). */
static uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static uint64_t hash_round(uint64_t acc, uint64_t word) {
  acc += word * P2;
  acc = rotl64(acc, 31);
  return acc * P1;
}

uint64_t rt_artifact_hash64(const void *data, uint64_t n) {
  const uint8_t *p = data;
  uint64_t v0 = P1 + P2, v1 = P2, v2 = 0, v3 = 0 - P1;
  uint64_t i = 0;
  for (; n >= 32 && i <= n - 32; i += 32) {
    v0 = hash_round(v0, get64(p + i));
    v1 = hash_round(v1, get64(p + i + 8));
    v2 = hash_round(v2, get64(p + i + 16));
    v3 = hash_round(v3, get64(p + i + 24));
  }
  uint64_t h = rotl64(v0, 1) + rotl64(v1, 7) + rotl64(v2, 12) + rotl64(v3, 18);
  h += n;
  for (; i + 8 <= n; i += 8) {
    h ^= hash_round(0, get64(p + i));
    h = rotl64(h, 27) * P1 + P4;
  }
  if (i < n) {
    uint64_t w = 0;
    for (uint64_t k = 0; i + k < n; k++) w |= (uint64_t)p[i + k] << (8 * k);
    h ^= w * P5;
    h = rotl64(h, 11) * P1;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

/* ---- Small helpers ---------------------------------------------------------------------- */

/* The name of a section kind for messages: "PARAMS", or "7" for a kind this code does not
 * know. buf has room for at least 16 bytes. */
static const char *kind_name(uint32_t kind, char *buf) {
  switch (kind) {
  case RT_SECTION_META: return "META";
  case RT_SECTION_PLAN: return "PLAN";
  case RT_SECTION_PARAMS: return "PARAMS";
  case RT_SECTION_CODE: return "CODE";
  }
  snprintf(buf, 16, "%u", kind);
  return buf;
}

static uint64_t align_up(uint64_t x) { return (x + RT_ARTIFACT_ALIGN - 1) & ~(uint64_t)(RT_ARTIFACT_ALIGN - 1); }

/* Writes all n bytes (retrying short writes and interrupts). 0 on success, else -1 with errno
 * set. */
static int write_all(int fd, const void *data, uint64_t n) {
  const uint8_t *p = data;
  while (n > 0) {
    size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
    ssize_t w = write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (w == 0) {
      errno = EIO;
      return -1;
    }
    p += w;
    n -= (uint64_t)w;
  }
  return 0;
}

/* Writes n zero bytes (padding between sections, always fewer than 64). */
static int write_zeros(int fd, uint64_t n) {
  static const uint8_t zeros[RT_ARTIFACT_ALIGN];
  return write_all(fd, zeros, n);
}

/* ---- Writer ----------------------------------------------------------------------------- */

/* Flushes the directory holding path, so that the rename itself survives a crash. Best
 * effort: some file systems refuse to fsync a directory, which is not an error here. */
static void sync_parent_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = NULL;
  if (!slash) {
    dir = strdup(".");
  } else {
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    dir = malloc(len + 1);
    if (dir) {
      memcpy(dir, path, len);
      dir[len] = 0;
    }
  }
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}

/* Checks the writer's arguments: a path, sections with non-zero, distinct kinds and data for
 * every non-empty section. */
static kiln_status check_write_args(const char *fn, const char *path,
                                    const rt_section_in *sections, int n) {
  if (!path || !*path) return rt_errorf(KILN_ERR_MISUSE, "%s: no path given", fn);
  if (n < 0 || (n > 0 && !sections))
    return rt_errorf(KILN_ERR_MISUSE, "%s: %s: bad section list (n = %d)", fn, path, n);
  for (int i = 0; i < n; i++) {
    char buf[16];
    const char *name = kind_name(sections[i].kind, buf);
    if (sections[i].kind == 0)
      return rt_errorf(KILN_ERR_MISUSE, "%s: %s: section %d has kind 0", fn, path, i);
    if (!sections[i].data && sections[i].size > 0)
      return rt_errorf(KILN_ERR_MISUSE, "%s: %s: section %s has %llu bytes but no data", fn,
                       path, name, (unsigned long long)sections[i].size);
    for (int j = 0; j < i; j++)
      if (sections[j].kind == sections[i].kind)
        return rt_errorf(KILN_ERR_MISUSE, "%s: %s: section %s given twice", fn, path, name);
  }
  return KILN_OK;
}

/* Lays out header and table: sections in the given order, each at the next 64-byte boundary.
 * Fills hdr (table_end bytes, zeroed by the caller) including all checksums. */
static kiln_status build_header(const char *fn, const char *path, const rt_section_in *sections, int n,
                                uint8_t *hdr, uint64_t table_end) {
  uint64_t off = table_end;
  for (int i = 0; i < n; i++) {
    uint64_t start = align_up(off);
    if (start < off || sections[i].size > UINT64_MAX - start)
      return rt_errorf(KILN_ERR_MISUSE, "%s: %s: sections too large", fn, path);
    uint8_t *e = hdr + HEADER_SIZE + (uint64_t)i * ENTRY_SIZE;
    put32(e, sections[i].kind);
    put32(e + 4, 0);
    put64(e + 8, start);
    put64(e + 16, sections[i].size);
    put64(e + 24, rt_artifact_hash64(sections[i].data, sections[i].size));
    off = start + sections[i].size;
  }
  memcpy(hdr, MAGIC, 8);
  put16(hdr + 8, RT_ARTIFACT_MAJOR);
  put16(hdr + 10, RT_ARTIFACT_MINOR);
  put32(hdr + 12, (uint32_t)n);
  put32(hdr + 24, HEADER_SIZE);
  put32(hdr + 28, ENTRY_SIZE);
  put64(hdr + 32, off); /* the file ends with the last section */
  put64(hdr + CHECKSUM_AT, rt_artifact_hash64(hdr, table_end)); /* checksum field still 0 */
  return KILN_OK;
}

/* Writes header, table, padding and sections to the open fd. 0 or -1 with errno. */
static int write_body(int fd, const uint8_t *hdr, uint64_t table_end,
                      const rt_section_in *sections, int n) {
  if (write_all(fd, hdr, table_end) != 0) return -1;
  uint64_t pos = table_end;
  for (int i = 0; i < n; i++) {
    uint64_t start = get64(hdr + HEADER_SIZE + (uint64_t)i * ENTRY_SIZE + 8);
    if (write_zeros(fd, start - pos) != 0) return -1;
    if (write_all(fd, sections[i].data, sections[i].size) != 0) return -1;
    pos = start + sections[i].size;
  }
  return 0;
}

/* Writes to path.tmp, fsyncs, renames over path (see artifact.h). On any failure the temp
 * file is removed and path is untouched. */
kiln_status rt_artifact_write(const char *path, const rt_section_in *sections, int n) {
  kiln_status st = check_write_args("rt_artifact_write", path, sections, n);
  if (st != KILN_OK) return st;
  uint64_t table_end = HEADER_SIZE + (uint64_t)n * ENTRY_SIZE;
  uint8_t *hdr = calloc(1, (size_t)table_end);
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 5);
  if (!hdr || !tmp) {
    free(hdr);
    free(tmp);
    return rt_errorf(KILN_ERR_NOMEM, "rt_artifact_write: %s: out of memory", path);
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp", 5);

  st = build_header("rt_artifact_write", path, sections, n, hdr, table_end);
  if (st != KILN_OK) goto done;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    st = rt_errorf(KILN_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
    goto done;
  }
  int failed = write_body(fd, hdr, table_end, sections, n) != 0 || fsync(fd) != 0;
  int err = errno;
  if (close(fd) != 0 && !failed) {
    failed = 1;
    err = errno;
  }
  if (!failed && rename(tmp, path) != 0) {
    failed = 1;
    err = errno;
  }
  if (failed) {
    unlink(tmp);
    st = rt_errorf(KILN_ERR_IO, "%s: cannot write the artifact: %s", path, strerror(err));
    goto done;
  }
  sync_parent_dir(path);
done:
  free(hdr);
  free(tmp);
  return st;
}

/* The same bytes as rt_artifact_write, into one malloc'ed buffer (see artifact.h): header and
 * table, then each section at its offset, the gaps left zero by calloc. */
kiln_status rt_artifact_serialize(const rt_section_in *sections, int n, void **out,
                                  uint64_t *size) {
  if (!out || !size) return rt_errorf(KILN_ERR_MISUSE, "rt_artifact_serialize: out or size is NULL");
  *out = NULL;
  *size = 0;
  kiln_status st = check_write_args("rt_artifact_serialize", "<memory>", sections, n);
  if (st != KILN_OK) return st;
  uint64_t table_end = HEADER_SIZE + (uint64_t)n * ENTRY_SIZE;
  uint8_t *hdr = calloc(1, (size_t)table_end);
  if (!hdr) return rt_errorf(KILN_ERR_NOMEM, "rt_artifact_serialize: out of memory");
  st = build_header("rt_artifact_serialize", "<memory>", sections, n, hdr, table_end);
  if (st != KILN_OK) {
    free(hdr);
    return st;
  }
  uint64_t total = get64(hdr + 32);
  uint8_t *buf = total > SIZE_MAX ? NULL : calloc(1, (size_t)total);
  if (!buf) {
    free(hdr);
    return rt_errorf(KILN_ERR_NOMEM, "rt_artifact_serialize: out of memory (%llu bytes)",
                     (unsigned long long)total);
  }
  memcpy(buf, hdr, (size_t)table_end);
  for (int i = 0; i < n; i++) {
    uint64_t start = get64(hdr + HEADER_SIZE + (uint64_t)i * ENTRY_SIZE + 8);
    if (sections[i].size > 0) memcpy(buf + start, sections[i].data, (size_t)sections[i].size);
  }
  free(hdr);
  *out = buf;
  *size = total;
  return KILN_OK;
}

/* ---- Reader ----------------------------------------------------------------------------- */

/* Checks magic, version and the header's own fields, and that the section table lies inside
 * the file. Sets *table_end. The order of the checks makes the message say what a user needs
 * to know first: not an artifact, another version, truncated, damaged. */
static kiln_status check_header(const rt_artifact *a, uint64_t *table_end) {
  const uint8_t *b = a->base;
  const char *path = a->path;
  uint64_t fsize = a->size;
  if (fsize < 8)
    return rt_errorf(KILN_ERR_CORRUPT, "%s: truncated or not a kiln artifact (%llu bytes)", path,
                     (unsigned long long)fsize);
  if (memcmp(b, MAGIC, 8) != 0)
    return rt_errorf(KILN_ERR_CORRUPT, "%s: not a kiln artifact (bad magic)", path);
  if (fsize < 12)
    return rt_errorf(KILN_ERR_CORRUPT, "%s: truncated: %llu bytes, no version", path,
                     (unsigned long long)fsize);
  unsigned major = get16(b + 8), minor = get16(b + 10);
  if (major != RT_ARTIFACT_MAJOR)
    return rt_errorf(KILN_ERR_UNSUPPORTED, "%s: artifact format %u.%u, this runtime reads %d.x",
                     path, major, minor, RT_ARTIFACT_MAJOR);
  if (fsize < HEADER_SIZE)
    return rt_errorf(KILN_ERR_CORRUPT, "%s: truncated: %llu bytes, the header alone takes %d",
                     path, (unsigned long long)fsize, HEADER_SIZE);
  uint32_t count = get32(b + 12), hsize = get32(b + 24), esize = get32(b + 28);
  if (hsize < HEADER_SIZE || esize < ENTRY_SIZE || hsize % 8 || esize % 8)
    return rt_errorf(KILN_ERR_CORRUPT, "%s: bad header (header size %u, table entry size %u)",
                     path, hsize, esize);
  if (hsize > fsize || count > (fsize - hsize) / esize)
    return rt_errorf(KILN_ERR_CORRUPT,
                     "%s: truncated: the section table (%u entries) runs past the end of the "
                     "file (%llu bytes)", path, count, (unsigned long long)fsize);
  *table_end = hsize + (uint64_t)count * esize;

  /* The header checksum covers everything up to the end of the table, itself as zero. */
  uint8_t *copy = malloc((size_t)*table_end);
  if (!copy) return rt_errorf(KILN_ERR_NOMEM, "%s: out of memory", path);
  memcpy(copy, b, (size_t)*table_end);
  memset(copy + CHECKSUM_AT, 0, 8);
  uint64_t sum = rt_artifact_hash64(copy, *table_end);
  free(copy);
  if (sum != get64(b + CHECKSUM_AT))
    return rt_errorf(KILN_ERR_CORRUPT, "%s: header checksum mismatch (file corrupted?)", path);

  uint64_t recorded = get64(b + 32);
  if (fsize < recorded)
    return rt_errorf(KILN_ERR_CORRUPT, "%s: truncated: %llu of %llu bytes", path,
                     (unsigned long long)fsize, (unsigned long long)recorded);
  if (fsize > recorded)
    return rt_errorf(KILN_ERR_CORRUPT, "%s: %llu unexpected bytes after the end of the artifact",
                     path, (unsigned long long)(fsize - recorded));
  return KILN_OK;
}

/* Reads the table into a->sections and checks each entry on its own: non-zero kind, aligned
 * offset, inside the file, known kinds at most once. */
static kiln_status read_table(rt_artifact *a) {
  const uint8_t *b = a->base;
  uint32_t count = get32(b + 12), hsize = get32(b + 24), esize = get32(b + 28);
  a->sections = calloc(count ? count : 1, sizeof *a->sections);
  if (!a->sections) return rt_errorf(KILN_ERR_NOMEM, "%s: out of memory", a->path);
  a->nsections = count;
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t *e = b + hsize + (uint64_t)i * esize;
    section_entry *s = &a->sections[i];
    s->kind = get32(e);
    s->offset = get64(e + 8);
    s->size = get64(e + 16);
    s->checksum = get64(e + 24);
    char buf[16];
    const char *name = kind_name(s->kind, buf);
    if (s->kind == 0)
      return rt_errorf(KILN_ERR_CORRUPT, "%s: section table entry %u has kind 0", a->path, i);
    if (s->offset % RT_ARTIFACT_ALIGN != 0)
      return rt_errorf(KILN_ERR_CORRUPT, "%s: section %s: offset %llu is not %d-byte aligned",
                       a->path, name, (unsigned long long)s->offset, RT_ARTIFACT_ALIGN);
    if (s->offset > a->size || s->size > a->size - s->offset)
      return rt_errorf(KILN_ERR_CORRUPT,
                       "%s: section %s: %llu bytes at offset %llu lie outside the file "
                       "(%llu bytes)", a->path, name, (unsigned long long)s->size,
                       (unsigned long long)s->offset, (unsigned long long)a->size);
    if (s->kind <= RT_SECTION_CODE)
      for (uint32_t j = 0; j < i; j++)
        if (a->sections[j].kind == s->kind)
          return rt_errorf(KILN_ERR_CORRUPT, "%s: section %s appears twice", a->path, name);
  }
  return KILN_OK;
}

/* Checks that the non-empty sections overlap neither each other nor the header and table,
 * and that every byte between them (and after the last) is zero. Walks the sections in
 * file order (an insertion sort of their indices: tables are short). */
static kiln_status check_placement(rt_artifact *a, uint64_t table_end) {
  uint32_t n = a->nsections;
  uint32_t *order = malloc((n ? n : 1) * sizeof *order);
  if (!order) return rt_errorf(KILN_ERR_NOMEM, "%s: out of memory", a->path);
  uint32_t m = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (a->sections[i].size == 0) continue;
    uint32_t k = m++;
    while (k > 0 && a->sections[order[k - 1]].offset > a->sections[i].offset) {
      order[k] = order[k - 1];
      k--;
    }
    order[k] = i;
  }
  kiln_status st = KILN_OK;
  uint64_t cursor = table_end; /* first byte not yet accounted for */
  const section_entry *prev = NULL;
  for (uint32_t k = 0; k <= m && st == KILN_OK; k++) {
    const section_entry *s = k < m ? &a->sections[order[k]] : NULL;
    uint64_t start = s ? s->offset : a->size;
    char b1[16], b2[16];
    if (s && start < cursor) {
      if (prev)
        st = rt_errorf(KILN_ERR_CORRUPT, "%s: sections %s and %s overlap", a->path,
                       kind_name(prev->kind, b1), kind_name(s->kind, b2));
      else
        st = rt_errorf(KILN_ERR_CORRUPT, "%s: section %s overlaps the header", a->path,
                       kind_name(s->kind, b2));
      break;
    }
    for (uint64_t p = cursor; p < start; p++)
      if (a->base[p] != 0) {
        st = rt_errorf(KILN_ERR_CORRUPT, "%s: non-zero byte at offset %llu between sections "
                       "(file corrupted?)", a->path, (unsigned long long)p);
        break;
      }
    if (s) {
      cursor = s->offset + s->size;
      prev = s;
    }
  }
  free(order);
  return st;
}

/* Verifies every section's checksum, the expensive part (it reads the whole file once). */
static kiln_status check_checksums(const rt_artifact *a) {
  for (uint32_t i = 0; i < a->nsections; i++) {
    const section_entry *s = &a->sections[i];
    if (rt_artifact_hash64(a->base + s->offset, s->size) != s->checksum) {
      char buf[16];
      return rt_errorf(KILN_ERR_CORRUPT, "%s: section %s: checksum mismatch (file corrupted?)",
                       a->path, kind_name(s->kind, buf));
    }
  }
  return KILN_OK;
}

/* Validates the bytes of a (header, table, placement, checksums); on success *out = a, else a
 * is closed and the error returned. */
static kiln_status validate_and_return(rt_artifact *a, rt_artifact **out) {
  uint64_t table_end = 0;
  kiln_status s = check_header(a, &table_end);
  if (s == KILN_OK) s = read_table(a);
  if (s == KILN_OK) s = check_placement(a, table_end);
  if (s == KILN_OK) s = check_checksums(a);
  if (s != KILN_OK) {
    rt_artifact_close(a);
    return s;
  }
  *out = a;
  return KILN_OK;
}

/* Maps the file and validates it (see artifact.h). The file descriptor is closed right after
 * mmap: the mapping keeps the file alive. */
kiln_status rt_artifact_open(const char *path, rt_artifact **out) {
  if (!out) return rt_errorf(KILN_ERR_MISUSE, "rt_artifact_open: out is NULL");
  *out = NULL;
  if (!path) return rt_errorf(KILN_ERR_MISUSE, "rt_artifact_open: path is NULL");
  /* O_NONBLOCK: opening a FIFO by mistake must not hang (it is then refused below). */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return rt_errorf(KILN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return rt_errorf(KILN_ERR_IO, "%s: cannot stat: %s", path, strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return rt_errorf(KILN_ERR_IO, "%s: not a regular file", path);
  }
  if ((uint64_t)st.st_size > SIZE_MAX) {
    close(fd);
    return rt_errorf(KILN_ERR_UNSUPPORTED, "%s: too large to map on this machine", path);
  }
  rt_artifact *a = calloc(1, sizeof *a);
  char *pcopy = strdup(path);
  if (!a || !pcopy) {
    close(fd);
    free(a);
    free(pcopy);
    return rt_errorf(KILN_ERR_NOMEM, "%s: out of memory", path);
  }
  a->path = pcopy;
  a->code_fd = -1;
  a->size = (uint64_t)st.st_size;
  if (a->size > 0) {
    void *m = mmap(NULL, (size_t)a->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int err = errno;
      close(fd);
      rt_artifact_close(a);
      return rt_errorf(KILN_ERR_IO, "%s: cannot map: %s", path, strerror(err));
    }
    a->base = m;
  }
  close(fd);
  return validate_and_return(a, out);
}

/* rt_artifact_open over bytes in memory (see artifact.h): a private copy at a 64-byte aligned
 * address, so that sections (64-byte aligned offsets) are as aligned as in a mapping. */
kiln_status rt_artifact_open_memory(const void *data, uint64_t size, const char *name,
                                    rt_artifact **out) {
  if (!out) return rt_errorf(KILN_ERR_MISUSE, "rt_artifact_open_memory: out is NULL");
  *out = NULL;
  if (!name) name = "<memory>";
  if (!data && size > 0)
    return rt_errorf(KILN_ERR_MISUSE, "rt_artifact_open_memory: %s: %llu bytes but data is NULL",
                     name, (unsigned long long)size);
  if (size > SIZE_MAX - RT_ARTIFACT_ALIGN)
    return rt_errorf(KILN_ERR_UNSUPPORTED, "%s: too large for this machine", name);
  rt_artifact *a = calloc(1, sizeof *a);
  char *ncopy = strdup(name);
  if (!a || !ncopy) {
    free(a);
    free(ncopy);
    return rt_errorf(KILN_ERR_NOMEM, "%s: out of memory", name);
  }
  a->path = ncopy;
  a->code_fd = -1;
  a->owned = 1;
  a->size = size;
  if (size > 0) {
    void *copy = NULL;
    if (posix_memalign(&copy, RT_ARTIFACT_ALIGN, (size_t)size) != 0) {
      rt_artifact_close(a);
      return rt_errorf(KILN_ERR_NOMEM, "%s: out of memory (%llu bytes)", name,
                       (unsigned long long)size);
    }
    memcpy(copy, data, (size_t)size);
    a->base = copy;
  }
  return validate_and_return(a, out);
}

const void *rt_artifact_section(const rt_artifact *a, uint32_t kind, uint64_t *size) {
  if (size) *size = 0;
  if (!a) return NULL;
  for (uint32_t i = 0; i < a->nsections; i++)
    if (a->sections[i].kind == kind) {
      if (size) *size = a->sections[i].size;
      return a->base + a->sections[i].offset;
    }
  return NULL;
}

/* A file holding the code, for dlopen: a memfd, or when the kernel has none (or a sandbox
 * forbids it) a temp file under $TMPDIR (else /tmp), whose name goes into tmp_path. -1 with a
 * message on failure. */
static int make_code_file(const rt_artifact *a, char *tmp_path, size_t cap) {
  tmp_path[0] = 0;
  int fd = memfd_create("kiln-code", MFD_CLOEXEC);
  if (fd >= 0) return fd;
  int memfd_err = errno;
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir) dir = "/tmp";
  if ((size_t)snprintf(tmp_path, cap, "%s/kiln-code-XXXXXX", dir) >= cap) {
    rt_errorf(KILN_ERR_IO, "%s: section CODE: TMPDIR path too long", a->path);
    return -1;
  }
  fd = mkostemp(tmp_path, O_CLOEXEC);
  if (fd < 0) {
    rt_errorf(KILN_ERR_IO, "%s: section CODE: no memfd (%s) and no temp file in %s (%s)",
              a->path, strerror(memfd_err), dir, strerror(errno));
    tmp_path[0] = 0;
  }
  return fd;
}

/* Copies CODE into an anonymous file and dlopens it (see artifact.h). The object is opened
 * as /proc/self/fd/N and the descriptor stays open while it is loaded: the dynamic loader
 * recognizes already loaded objects by name, and a reused descriptor number must not make a
 * second artifact get the first one's code. Without /proc the temp file is opened by its
 * (unique, then unlinked) path. */
kiln_status rt_artifact_load_code(rt_artifact *a, void **dl_handle) {
  if (!a || !dl_handle) return rt_errorf(KILN_ERR_MISUSE, "rt_artifact_load_code: NULL argument");
  *dl_handle = NULL;
  if (a->dl) {
    *dl_handle = a->dl;
    return KILN_OK;
  }
  uint64_t size;
  const void *code = rt_artifact_section(a, RT_SECTION_CODE, &size);
  if (!code) return rt_errorf(KILN_ERR_CORRUPT, "%s: no CODE section to load", a->path);

  char tmp_path[PATH_MAX];
  int fd = make_code_file(a, tmp_path, sizeof tmp_path);
  if (fd < 0) return KILN_ERR_IO;
  if (write_all(fd, code, size) != 0) {
    kiln_status st = rt_errorf(KILN_ERR_IO, "%s: section CODE: cannot write the shared object: %s",
                               a->path, strerror(errno));
    close(fd);
    if (tmp_path[0]) unlink(tmp_path);
    return st;
  }
  char proc_path[64];
  snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", fd);
  const char *load_path = proc_path;
  if (tmp_path[0] && access(proc_path, F_OK) != 0) load_path = tmp_path;
  dlerror(); /* clear an old message */
  void *h = dlopen(load_path, RTLD_NOW | RTLD_LOCAL);
  if (tmp_path[0]) unlink(tmp_path);
  if (!h) {
    const char *why = dlerror();
    kiln_status st = rt_errorf(KILN_ERR_IO, "%s: section CODE: cannot load the shared object: %s",
                               a->path, why ? why : "unknown dlopen error");
    close(fd);
    return st;
  }
  a->dl = h;
  a->code_fd = fd;
  *dl_handle = h;
  return KILN_OK;
}

void *rt_artifact_symbol(rt_artifact *a, const char *name) {
  if (!a || !name) {
    rt_errorf(KILN_ERR_MISUSE, "rt_artifact_symbol: NULL argument");
    return NULL;
  }
  if (!a->dl) {
    rt_errorf(KILN_ERR_MISUSE, "%s: symbol %s: the code is not loaded", a->path, name);
    return NULL;
  }
  dlerror();
  void *p = dlsym(a->dl, name);
  if (!p) {
    const char *why = dlerror();
    rt_errorf(KILN_ERR_UNDEFINED, "%s: section CODE has no symbol %s%s%s", a->path, name,
              why ? ": " : "", why ? why : "");
  }
  return p;
}

void rt_artifact_close(rt_artifact *a) {
  if (!a) return;
  if (a->dl) dlclose(a->dl);
  if (a->code_fd >= 0) close(a->code_fd);
  if (a->base && a->owned) free((void *)a->base);
  else if (a->base) munmap((void *)a->base, (size_t)a->size);
  free(a->sections);
  free(a->path);
  free(a);
}

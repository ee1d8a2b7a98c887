/*
 * readback.c: the test suite's own qcow2 reader and checker.
 *
 * It shares no code with sqcow2, so a mistake in the writer's layout
 * arithmetic cannot hide by being repeated here, and the tests need no
 * qemu-img.  It checks what `qemu-img check` checks for the images sqcow2
 * writes (no snapshots, no compression, no encryption, 16-bit refcounts),
 * then reads the guest disk back.  Memory scales with the number of host
 * clusters in the file, never with the virtual size.  As in QEMU, a table
 * or a cluster may run past the end of the file by less than a cluster
 * (the file may end inside its last cluster), and what lies past the end
 * reads as zeros; a zero cluster (version 3) is the zero flag alone.
 *
 *	readback check IMAGE
 *	readback compare IMAGE RAW
 *	readback info IMAGE
 *	readback dump IMAGE > RAW
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __GNUC__
#define PRINTF_LIKE(f, a)	__attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

#define QCOW_MAGIC		0x514649fbu
#define V2_HEADER_LENGTH	72
#define V3_HEADER_LENGTH	104
#define HEADER_BUFFER		112	/* up to and past compression_type */
#define EXT_END			0x00000000u
#define EXT_BACKING_FORMAT	0xe2792acau
#define MAX_NAME		1023
#define MAX_L1_BYTES		(UINT64_C(32) << 20)
#define MAX_REFCOUNT_TABLE_BYTES (UINT64_C(8) << 20)

#define COPIED			(UINT64_C(1) << 63)
#define COMPRESSED		(UINT64_C(1) << 62)
#define ZERO_FLAG		UINT64_C(1)
#define OFFSET_MASK		UINT64_C(0x00fffffffffffe00)	/* bits 9-55 */
#define L1_RESERVED		UINT64_C(0x7f000000000001ff)	/* 0-8, 56-62 */
#define L2_RESERVED		UINT64_C(0x3f000000000001fe)	/* 1-8, 56-61 */
#define REFTABLE_RESERVED	UINT64_C(0x1ff)			/* 0-8 */

#define CHUNK			((size_t)1 << 20)

/* What a host cluster holds; one byte per host cluster of the file. */
enum use {
	FREE, HEADER, L1_TABLE, REFCOUNT_TABLE, REFCOUNT_BLOCK, L2_TABLE, DATA
};

static const char *const use_names[] = {
	"free", "header", "L1 table", "refcount table", "refcount block",
	"L2 table", "data"
};

struct image {
	int fd;
	uint64_t file_size;
	uint32_t version;
	unsigned cluster_bits;
	uint64_t cluster_size;
	uint64_t virtual_size;
	uint64_t l1_offset;
	uint32_t l1_size;
	uint64_t *l1;			/* host byte order */
	uint64_t reftable_offset;
	uint32_t reftable_clusters;
	uint64_t reftable_entries;
	uint64_t *reftable;		/* host byte order */
	uint64_t host_clusters;		/* clusters the file touches */
	unsigned char *use;		/* enum use per host cluster */
	bool has_backing_file;
	size_t backing_file_len;
	char backing_file[MAX_NAME + 1];
	bool has_backing_format;
	size_t backing_format_len;
	char backing_format[MAX_NAME + 1];

	uint64_t l2_tables;
	uint64_t data_clusters;
	uint64_t zero_clusters;
	uint64_t refcount_blocks;
	uint64_t last_metadata;		/* highest metadata cluster offset */
	uint64_t first_data;		/* lowest data cluster offset */
	uint64_t previous_data;		/* host offset of the last data seen */
	bool guest_order;
};

/* One L2 entry (or a whole unallocated L1 range) as the guest walk sees it. */
struct mapping {
	uint64_t guest;			/* guest offset it starts at */
	uint64_t length;		/* bytes below virtual_size; may be 0 */
	uint64_t entry;			/* L2 entry; 0 for a missing L2 table */
	uint64_t l2_offset;		/* host offset of its L2 table, or 0 */
	uint64_t index;			/* index inside that L2 table */
};

/* A run of guest bytes that either reads as zero or is one host extent. */
struct run {
	uint64_t guest;
	uint64_t length;
	uint64_t host;			/* 0: reads as zeros */
};

/* Where coalesced runs go: compare against RAW, or copy to stdout. */
struct sink {
	struct image *img;
	struct run pending;
	void (*emit)(struct sink *, const struct run *);
	int raw_fd;
	const char *raw_name;
	uint64_t raw_size;
	bool raw_seekable;		/* SEEK_DATA works on RAW */
	unsigned char *buf;
	unsigned char *other;
};

static const char *image_name = "readback";

static _Noreturn void fail(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Print "readback: IMAGE: <message>" and exit 1: the only error path. */
static _Noreturn void
fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "readback: %s: ", image_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static _Noreturn void
usage(void)
{
	fprintf(stderr,
	    "usage: readback check IMAGE\n"
	    "       readback compare IMAGE RAW\n"
	    "       readback info IMAGE\n"
	    "       readback dump IMAGE\n");
	exit(2);
}

static uint16_t
be16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)be16(p) << 16 | be16(p + 2);
}

static uint64_t
be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static uint64_t
min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void *
xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size);

	if (p == NULL)
		fail("out of memory");
	return p;
}

/*
 * Read len bytes at offset, looping over short reads and EINTR.  Bytes past
 * the end of the file read as zeros (a qcow2 file may end inside its last
 * cluster, and RAW may be shorter than the virtual size).  Fails on errors.
 */
static void
read_at(int fd, const char *name, void *buf, size_t len, uint64_t offset)
{
	unsigned char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done,
		    (off_t)(offset + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("%s: read at offset %" PRIu64 ": %s", name,
			    offset + done, strerror(errno));
		if (n == 0)
			break;
		done += (size_t)n;
	}
	memset(p + done, 0, len - done);
}

/* Write all of buf to fd, retrying EINTR; a zero-byte write is ENOSPC. */
static void
write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = ENOSPC;
		if (n <= 0)
			fail("stdout: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

/* True if all n bytes are zero. */
static bool
is_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Index of the first nonzero byte of p[0..n), or n. */
static size_t
first_nonzero(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] == 0)
		i++;
	return i;
}

/* Size of an open file or device, by seeking to its end. */
static uint64_t
size_of(int fd, const char *name)
{
	off_t end = lseek(fd, 0, SEEK_END);

	if (end < 0)
		fail("%s: %s", name, strerror(errno));
	return (uint64_t)end;
}

/* Count host cluster `offset` as used for `what`; each may be used once. */
static void
mark(struct image *img, uint64_t offset, enum use what)
{
	uint64_t k = offset >> img->cluster_bits;

	if (offset >= img->file_size)
		fail("%s cluster at 0x%" PRIx64 " is past the end of the file"
		    " (%" PRIu64 " bytes)", use_names[what], offset,
		    img->file_size);
	if (img->use[k] != FREE)
		fail("host cluster %" PRIu64 " (offset 0x%" PRIx64 ") used twice:"
		    " as %s and as %s", k, offset, use_names[img->use[k]],
		    use_names[what]);
	img->use[k] = (unsigned char)what;
	if (what == DATA && offset < img->first_data)
		img->first_data = offset;
	if (what != DATA && offset > img->last_metadata)
		img->last_metadata = offset;
}

/* Mark every cluster of a table of `bytes` bytes at `offset`. */
static void
mark_table(struct image *img, uint64_t offset, uint64_t bytes, enum use what)
{
	for (uint64_t done = 0; done < bytes; done += img->cluster_size)
		mark(img, offset + done, what);
}

/* True if `offset` is a multiple of the cluster size. */
static bool
aligned(const struct image *img, uint64_t offset)
{
	return (offset & (img->cluster_size - 1)) == 0;
}

/*
 * True if bytes [offset, offset + bytes) lie inside the file but for less
 * than a cluster past its end, as QEMU's check allows: the last cluster
 * of a file may be cut short.
 */
static bool
within_reach(const struct image *img, uint64_t offset, uint64_t bytes)
{
	return offset <= img->file_size &&
	    bytes < img->file_size - offset + img->cluster_size;
}

/* The fields every version has; cluster size is known after this. */
static void
parse_common_fields(struct image *img, const unsigned char *h)
{
	if (be32(h) != QCOW_MAGIC)
		fail("bad magic 0x%08" PRIx32 ", expected 0x%08x (QFI\\xfb)",
		    be32(h), QCOW_MAGIC);
	img->version = be32(h + 4);
	if (img->version != 2 && img->version != 3)
		fail("version %" PRIu32 ", expected 2 or 3", img->version);
	img->cluster_bits = be32(h + 20);
	if (img->cluster_bits < 9 || img->cluster_bits > 21)
		fail("cluster_bits %u, expected 9 to 21", img->cluster_bits);
	img->cluster_size = UINT64_C(1) << img->cluster_bits;
	img->virtual_size = be64(h + 24);
	if (img->virtual_size > INT64_MAX)
		fail("virtual size %" PRIu64 " too large", img->virtual_size);
	if (be32(h + 32) != 0)
		fail("crypt_method %" PRIu32 ", expected 0", be32(h + 32));
	img->l1_size = be32(h + 36);
	img->l1_offset = be64(h + 40);
	img->reftable_offset = be64(h + 48);
	img->reftable_clusters = be32(h + 56);
	if (be32(h + 60) != 0)
		fail("nb_snapshots %" PRIu32 ", expected 0", be32(h + 60));
}

/* The version 3 fields; returns the header length. */
static uint32_t
parse_v3_fields(struct image *img, const unsigned char *h)
{
	uint32_t length = be32(h + 100);

	if (be64(h + 72) != 0)
		fail("incompatible_features 0x%" PRIx64 ", expected 0",
		    be64(h + 72));
	if (be32(h + 96) != 4)
		fail("refcount_order %" PRIu32 ", expected 4", be32(h + 96));
	if (length < V3_HEADER_LENGTH || length % 8 != 0)
		fail("header_length %" PRIu32 ", expected a multiple of 8,"
		    " at least %d", length, V3_HEADER_LENGTH);
	if (length > img->cluster_size)
		fail("header_length %" PRIu32 " exceeds the cluster size",
		    length);
	if (length > V3_HEADER_LENGTH && h[104] != 0)
		fail("compression_type %u without its incompatible bit", h[104]);
	return length;
}

/* Copy a name of `len` bytes, as found in cluster 0, into `dst`. */
static void
keep_name(char *dst, size_t *dst_len, const unsigned char *src, uint64_t len,
    const char *what)
{
	if (len > MAX_NAME)
		fail("%s of %" PRIu64 " bytes, at most %d allowed", what, len,
		    MAX_NAME);
	memcpy(dst, src, (size_t)len);
	dst[len] = '\0';
	*dst_len = (size_t)len;
}

/*
 * Walk the header extensions from `start` up to the end marker, inside
 * `end` (the backing file name, else the end of cluster 0).  Where the
 * backing file name follows directly with no end marker, as old v2 images
 * have it, reaching `end` also ends the area.
 */
static void
parse_extensions(struct image *img, const unsigned char *c0, uint64_t start,
    uint64_t end)
{
	uint64_t at = start;

	while (!(img->has_backing_file && at == end)) {
		uint32_t type, len;
		uint64_t padded;

		if (end - at < 8)
			fail("header extensions at %" PRIu64 " have no end"
			    " marker before offset %" PRIu64, at, end);
		type = be32(c0 + at);
		len = be32(c0 + at + 4);
		if (type == EXT_END)
			return;
		padded = ((uint64_t)len + 7) & ~UINT64_C(7);
		if (padded > end - at - 8)
			fail("header extension 0x%08" PRIx32 " at %" PRIu64
			    " (%" PRIu32 " bytes) runs past offset %" PRIu64,
			    type, at, len, end);
		if (type == EXT_BACKING_FORMAT) {
			if (img->has_backing_format)
				fail("two backing format extensions");
			keep_name(img->backing_format,
			    &img->backing_format_len, c0 + at + 8, len,
			    "backing format name");
			img->has_backing_format = true;
		}
		at += 8 + padded;
	}
}

/* Where the extensions must end: the backing file name, if any, bounds them. */
static uint64_t
parse_backing_file(struct image *img, const unsigned char *c0, uint64_t start)
{
	uint64_t offset = be64(c0 + 8);
	uint32_t len = be32(c0 + 16);

	if (offset == 0)
		return img->cluster_size;
	if (offset < start || offset > img->cluster_size ||
	    len > img->cluster_size - offset)
		fail("backing file name (%" PRIu32 " bytes at %" PRIu64 ")"
		    " outside cluster 0 after the header", len, offset);
	keep_name(img->backing_file, &img->backing_file_len, c0 + offset, len,
	    "backing file name");
	img->has_backing_file = true;
	return offset;
}

/* Read and check the header, its extensions and the backing file name. */
static void
read_header(struct image *img)
{
	unsigned char h[HEADER_BUFFER];
	unsigned char *c0;
	uint64_t start = V2_HEADER_LENGTH;
	uint64_t end;

	if (img->file_size < V2_HEADER_LENGTH)
		fail("file of %" PRIu64 " bytes is too short for a header",
		    img->file_size);
	read_at(img->fd, image_name, h, sizeof h, 0);
	parse_common_fields(img, h);
	if (img->version == 3)
		start = parse_v3_fields(img, h);
	if (img->file_size < start)
		fail("file of %" PRIu64 " bytes is too short for a header",
		    img->file_size);
	c0 = xcalloc(1, (size_t)img->cluster_size);
	read_at(img->fd, image_name, c0, (size_t)img->cluster_size, 0);
	end = parse_backing_file(img, c0, start);
	parse_extensions(img, c0, start, end);
	free(c0);
}

/* Read `count` big-endian u64 entries at `offset` into host order. */
static uint64_t *
load_table(struct image *img, uint64_t offset, uint64_t count)
{
	uint64_t *table = xcalloc((size_t)count, sizeof *table);
	unsigned char *bytes = (unsigned char *)table;

	read_at(img->fd, image_name, table, (size_t)count * 8, offset);
	for (uint64_t i = 0; i < count; i++)
		table[i] = be64(bytes + 8 * i);
	return table;
}

/* Check where the L1 and refcount tables sit, then load both. */
static void
load_tables(struct image *img)
{
	uint64_t l2_span = img->cluster_size * (img->cluster_size / 8);
	uint64_t want = img->virtual_size / l2_span +
	    (img->virtual_size % l2_span != 0);
	uint64_t l1_bytes = (uint64_t)img->l1_size * 8;
	uint64_t reftable_bytes = (uint64_t)img->reftable_clusters *
	    img->cluster_size;

	if (img->l1_size != want)
		fail("l1_size %" PRIu32 ", expected %" PRIu64 " for virtual"
		    " size %" PRIu64, img->l1_size, want, img->virtual_size);
	if (!aligned(img, img->l1_offset) || !within_reach(img, img->l1_offset,
	    l1_bytes) || l1_bytes > MAX_L1_BYTES)
		fail("L1 table (%" PRIu64 " bytes at 0x%" PRIx64 ") unaligned,"
		    " too large or past the end of the file", l1_bytes,
		    img->l1_offset);
	if (img->reftable_clusters == 0 || !aligned(img,
	    img->reftable_offset) || !within_reach(img, img->reftable_offset,
	    reftable_bytes) || reftable_bytes > MAX_REFCOUNT_TABLE_BYTES)
		fail("refcount table (%" PRIu32 " clusters at 0x%" PRIx64 ")"
		    " empty, unaligned, too large or past the end of the file",
		    img->reftable_clusters, img->reftable_offset);
	img->l1 = load_table(img, img->l1_offset, img->l1_size);
	img->reftable_entries = reftable_bytes / 8;
	img->reftable = load_table(img, img->reftable_offset,
	    img->reftable_entries);
}

/* A table of one cluster must be aligned and start in the file. */
static void
check_cluster_pointer(const struct image *img, uint64_t offset, const char *what,
    uint64_t index)
{
	if (!aligned(img, offset) || !within_reach(img, offset, img->cluster_size))
		fail("%s %" PRIu64 " at 0x%" PRIx64 " is unaligned or past the"
		    " end of the file", what, index, offset);
}

/* Check the refcount table entries and mark their refcount blocks. */
static void
mark_refcount_blocks(struct image *img)
{
	for (uint64_t i = 0; i < img->reftable_entries; i++) {
		uint64_t entry = img->reftable[i];

		if (entry & REFTABLE_RESERVED)
			fail("refcount table entry %" PRIu64 " is 0x%016" PRIx64
			    ": reserved bits set", i, entry);
		if (entry == 0)
			continue;
		check_cluster_pointer(img, entry, "refcount block", i);
		mark(img, entry, REFCOUNT_BLOCK);
		img->refcount_blocks++;
	}
}

/* Check the L1 entries and mark their L2 tables. */
static void
mark_l2_tables(struct image *img)
{
	for (uint64_t i = 0; i < img->l1_size; i++) {
		uint64_t entry = img->l1[i];
		uint64_t offset = entry & OFFSET_MASK;

		if (entry & L1_RESERVED)
			fail("L1 entry %" PRIu64 " is 0x%016" PRIx64
			    ": reserved bits set", i, entry);
		if ((offset != 0) != ((entry & COPIED) != 0))
			fail("L1 entry %" PRIu64 " is 0x%016" PRIx64 ": %s", i,
			    entry, offset ? "COPIED bit clear" :
			    "COPIED bit set without an offset");
		if (offset == 0)
			continue;
		check_cluster_pointer(img, offset, "L2 table for L1 entry", i);
		mark(img, offset, L2_TABLE);
		img->l2_tables++;
	}
}

/*
 * Visit every L2 entry of every L2 table in guest order, and each L1 entry
 * without an L2 table as one unallocated mapping.  Entries of the last L2
 * table past the virtual size are visited too, with length 0.
 */
static void
walk_guest(struct image *img, void (*visit)(struct image *,
    const struct mapping *, void *), void *ctx)
{
	uint64_t per_l2 = img->cluster_size / 8;
	uint64_t l2_span = per_l2 * img->cluster_size;
	unsigned char *l2 = xcalloc(1, (size_t)img->cluster_size);

	for (uint64_t i = 0; i < img->l1_size; i++) {
		struct mapping m = { .guest = i * l2_span };

		m.l2_offset = img->l1[i] & OFFSET_MASK;
		if (m.l2_offset == 0) {
			m.length = min64(l2_span, img->virtual_size - m.guest);
			visit(img, &m, ctx);
			continue;
		}
		read_at(img->fd, image_name, l2, (size_t)img->cluster_size,
		    m.l2_offset);
		for (m.index = 0; m.index < per_l2; m.index++) {
			m.guest = i * l2_span + m.index * img->cluster_size;
			m.entry = be64(l2 + 8 * m.index);
			m.length = m.guest >= img->virtual_size ? 0 :
			    min64(img->cluster_size, img->virtual_size - m.guest);
			visit(img, &m, ctx);
		}
	}
	free(l2);
}

/* Fail about one L2 entry, naming where it is and what it maps. */
static _Noreturn void
bad_l2_entry(const struct mapping *m, const char *why)
{
	fail("L2 entry %" PRIu64 " of the L2 table at 0x%" PRIx64 " (guest"
	    " offset %" PRIu64 ") is 0x%016" PRIx64 ": %s", m->index,
	    m->l2_offset, m->guest, m->entry, why);
}

/* A data cluster used twice is named by its L2 entry, not only by mark(). */
static void
already_used(const struct image *img, const struct mapping *m, uint64_t offset)
{
	unsigned char was = img->use[offset >> img->cluster_bits];
	char why[64];

	if (was == FREE)
		return;
	snprintf(why, sizeof why, "host cluster already used as %s",
	    use_names[was]);
	bad_l2_entry(m, why);
}

/* Check one L2 entry, mark its data cluster and count it for info. */
static void
check_l2_entry(struct image *img, const struct mapping *m, void *ctx)
{
	uint64_t offset = m->entry & OFFSET_MASK;

	(void)ctx;
	if (m->entry & COMPRESSED)
		bad_l2_entry(m, "compressed cluster");
	if (m->entry & L2_RESERVED)
		bad_l2_entry(m, "reserved bits set");
	if ((m->entry & ZERO_FLAG) && img->version < 3)
		bad_l2_entry(m, "zero flag in a version 2 image");
	if ((offset != 0) != ((m->entry & COPIED) != 0))
		bad_l2_entry(m, offset ? "COPIED bit clear" :
		    "COPIED bit set without an offset");
	if (offset == 0) {
		img->zero_clusters += (m->entry & ZERO_FLAG) != 0;
		return;
	}
	if (!aligned(img, offset))
		bad_l2_entry(m, "data cluster offset not cluster-aligned");
	if (offset >= img->file_size)
		bad_l2_entry(m, "data cluster past the end of the file");
	already_used(img, m, offset);
	mark(img, offset, DATA);
	img->data_clusters++;
	if (offset <= img->previous_data)
		img->guest_order = false;
	img->previous_data = offset;
}

/* Fail about the refcount of host cluster k. */
static _Noreturn void
bad_refcount(const struct image *img, uint64_t k, unsigned refcount)
{
	uint64_t offset = k << img->cluster_bits;

	if (k >= img->host_clusters)
		fail("refcount %u for host cluster %" PRIu64 " (offset 0x%"
		    PRIx64 ") past the end of the file, expected 0", refcount,
		    k, offset);
	if (img->use[k] == FREE)
		fail("leaked host cluster %" PRIu64 " (offset 0x%" PRIx64 "):"
		    " refcount %u but nothing uses it", k, offset, refcount);
	fail("host cluster %" PRIu64 " (offset 0x%" PRIx64 ", %s) has refcount"
	    " %u, expected 1", k, offset, use_names[img->use[k]], refcount);
}

/*
 * Compare the refcounts of clusters first .. first + count - 1, read from
 * `block` (NULL: no refcount block, all zero), with their use.
 */
static void
check_refcount_range(const struct image *img, uint64_t first, uint64_t count,
    const unsigned char *block)
{
	for (uint64_t j = 0; j < count; j++) {
		uint64_t k = first + j;
		unsigned refcount = block ? be16(block + 2 * j) : 0;
		bool used = k < img->host_clusters && img->use[k] != FREE;

		if (refcount != (used ? 1u : 0u))
			bad_refcount(img, k, refcount);
	}
}

/*
 * Every used cluster has refcount 1, every other one 0, including those
 * past the end of the file that a refcount block covers.  The refcount
 * table is at most 8 MiB, so cluster numbers here cannot overflow.
 */
static void
check_refcounts(const struct image *img)
{
	uint64_t per_block = img->cluster_size / 2;
	unsigned char *block = xcalloc(1, (size_t)img->cluster_size);
	uint64_t i;

	for (i = 0; i < img->reftable_entries; i++) {
		uint64_t first = i * per_block;

		if (img->reftable[i] != 0) {
			read_at(img->fd, image_name, block,
			    (size_t)img->cluster_size, img->reftable[i]);
			check_refcount_range(img, first, per_block, block);
		} else if (first < img->host_clusters) {
			check_refcount_range(img, first, min64(per_block,
			    img->host_clusters - first), NULL);
		}
	}
	if (i * per_block < img->host_clusters)
		check_refcount_range(img, i * per_block,
		    img->host_clusters - i * per_block, NULL);
	free(block);
}

/* Open IMAGE and run every structural check on it. */
static void
check_image(struct image *img, const char *path)
{
	memset(img, 0, sizeof *img);
	image_name = path;
	img->fd = open(path, O_RDONLY);
	if (img->fd < 0)
		fail("%s", strerror(errno));
	img->file_size = size_of(img->fd, path);
	img->first_data = UINT64_MAX;
	img->guest_order = true;
	read_header(img);
	load_tables(img);
	img->host_clusters = img->file_size / img->cluster_size +
	    (img->file_size % img->cluster_size != 0);
	img->use = xcalloc((size_t)img->host_clusters, 1);
	mark(img, 0, HEADER);
	mark_table(img, img->l1_offset, (uint64_t)img->l1_size * 8, L1_TABLE);
	mark_table(img, img->reftable_offset, img->reftable_entries * 8,
	    REFCOUNT_TABLE);
	mark_refcount_blocks(img);
	mark_l2_tables(img);
	walk_guest(img, check_l2_entry, NULL);
	check_refcounts(img);
}

static void
close_image(struct image *img)
{
	close(img->fd);
	free(img->l1);
	free(img->reftable);
	free(img->use);
}

/* Hand the pending run to the sink and forget it. */
static void
flush_run(struct sink *s)
{
	if (s->pending.length > 0)
		s->emit(s, &s->pending);
	s->pending.length = 0;
}

/* Merge guest-contiguous mappings into runs: zeros, or one host extent. */
static void
coalesce(struct image *img, const struct mapping *m, void *ctx)
{
	struct sink *s = ctx;
	struct run *r = &s->pending;
	uint64_t host = m->entry & OFFSET_MASK;

	(void)img;
	if (m->length == 0)
		return;
	if (m->entry & ZERO_FLAG)
		host = 0;
	if (r->length > 0 && r->guest + r->length == m->guest &&
	    (host == 0 ? r->host == 0 :
	    r->host != 0 && r->host + r->length == host)) {
		r->length += m->length;
		return;
	}
	flush_run(s);
	r->guest = m->guest;
	r->host = host;
	r->length = m->length;
}

/* Feed the guest disk, as runs, to the sink. */
static void
read_guest(struct sink *s)
{
	s->pending.length = 0;
	s->buf = xcalloc(1, CHUNK);
	s->other = xcalloc(1, CHUNK);
	walk_guest(s->img, coalesce, s);
	flush_run(s);
	free(s->buf);
	free(s->other);
}

static _Noreturn void
differs(const struct sink *s, uint64_t guest)
{
	fail("differs from %s at offset %" PRIu64, s->raw_name, guest);
}

/* RAW bytes [from, to) must all be zero. */
static void
raw_zero_span(struct sink *s, uint64_t from, uint64_t to)
{
	while (from < to) {
		size_t n = (size_t)min64(CHUNK, to - from);

		read_at(s->raw_fd, s->raw_name, s->buf, n, from);
		if (!is_zero(s->buf, n))
			differs(s, from + first_nonzero(s->buf, n));
		from += n;
	}
}

/*
 * Next offset at or after `from` where RAW may hold data, or `to` if none
 * before `to`.  Without working SEEK_DATA everything may hold data.
 */
static uint64_t
raw_next_data(struct sink *s, uint64_t from, uint64_t to)
{
#ifdef SEEK_DATA
	off_t at;

	if (!s->raw_seekable)
		return from;
	at = lseek(s->raw_fd, (off_t)from, SEEK_DATA);
	if (at < 0 && errno == ENXIO)
		return to;
	if (at >= 0)
		return min64((uint64_t)at, to);
	s->raw_seekable = false;
#else
	(void)s;
	(void)to;
#endif
	return from;
}

/* End of the RAW data that starts at `from`, at most `to`. */
static uint64_t
raw_data_end(struct sink *s, uint64_t from, uint64_t to)
{
#ifdef SEEK_HOLE
	off_t at;

	if (!s->raw_seekable)
		return to;
	at = lseek(s->raw_fd, (off_t)from, SEEK_HOLE);
	if (at > (off_t)from)
		return min64((uint64_t)at, to);
#else
	(void)s;
	(void)from;
#endif
	return to;
}

/* An unmapped run: RAW must read as zeros there, skipping its holes. */
static void
compare_zero_run(struct sink *s, const struct run *r)
{
	uint64_t to = min64(r->guest + r->length, s->raw_size);
	uint64_t at = r->guest;

	while (at < to) {
		uint64_t data = raw_next_data(s, at, to);
		uint64_t end;

		if (data >= to)
			break;
		end = raw_data_end(s, data, to);
		raw_zero_span(s, data, end);
		at = end;
	}
}

/* A mapped run: the image's host extent must equal RAW byte for byte. */
static void
compare_data_run(struct sink *s, const struct run *r)
{
	for (uint64_t done = 0; done < r->length; ) {
		size_t n = (size_t)min64(CHUNK, r->length - done);

		read_at(s->img->fd, image_name, s->buf, n, r->host + done);
		read_at(s->raw_fd, s->raw_name, s->other, n, r->guest + done);
		if (memcmp(s->buf, s->other, n) != 0) {
			size_t i = 0;

			while (s->buf[i] == s->other[i])
				i++;
			differs(s, r->guest + done + i);
		}
		done += n;
	}
}

static void
compare_run(struct sink *s, const struct run *r)
{
	if (r->host == 0)
		compare_zero_run(s, r);
	else
		compare_data_run(s, r);
}

/* Guest content must equal RAW, which may fall short of it by < 512 bytes. */
static void
compare(struct image *img, const char *raw_name)
{
	struct sink s = { .img = img, .emit = compare_run,
	    .raw_name = raw_name, .raw_seekable = true };

	if (img->has_backing_file)
		fail("has a backing file");
	s.raw_fd = open(raw_name, O_RDONLY);
	if (s.raw_fd < 0)
		fail("%s: %s", raw_name, strerror(errno));
	s.raw_size = size_of(s.raw_fd, raw_name);
	if (s.raw_size > img->virtual_size ||
	    img->virtual_size - s.raw_size >= 512)
		fail("size of %s is %" PRIu64 ", virtual size is %" PRIu64,
		    raw_name, s.raw_size, img->virtual_size);
	read_guest(&s);
	close(s.raw_fd);
}

/* Write one run of the guest disk to stdout. */
static void
dump_run(struct sink *s, const struct run *r)
{
	for (uint64_t done = 0; done < r->length; ) {
		size_t n = (size_t)min64(CHUNK, r->length - done);

		if (r->host == 0)
			memset(s->buf, 0, n);
		else
			read_at(s->img->fd, image_name, s->buf, n,
			    r->host + done);
		write_all(STDOUT_FILENO, s->buf, n);
		done += n;
	}
}

/* Write the whole guest disk to stdout, which must not be a terminal. */
static void
dump(struct image *img)
{
	struct sink s = { .img = img, .emit = dump_run };

	if (img->has_backing_file)
		fail("has a backing file");
	if (isatty(STDOUT_FILENO))
		fail("refusing to write a disk image to a terminal");
	read_guest(&s);
	if (close(STDOUT_FILENO) != 0)
		fail("stdout: %s", strerror(errno));
}

/* Print a key=name line; names are not NUL-free by guarantee. */
static void
print_name(const char *key, const char *name, size_t len)
{
	printf("%s=", key);
	fwrite(name, 1, len, stdout);
	putchar('\n');
}

/* Print the key=value summary the tests compare against. */
static void
info(const struct image *img)
{
	bool metadata_first = img->data_clusters == 0 ||
	    img->first_data > img->last_metadata;

	printf("version=%" PRIu32 "\n", img->version);
	printf("cluster_size=%" PRIu64 "\n", img->cluster_size);
	printf("virtual_size=%" PRIu64 "\n", img->virtual_size);
	printf("l1_size=%" PRIu32 "\n", img->l1_size);
	printf("l2_tables=%" PRIu64 "\n", img->l2_tables);
	printf("data_clusters=%" PRIu64 "\n", img->data_clusters);
	printf("zero_clusters=%" PRIu64 "\n", img->zero_clusters);
	printf("refcount_blocks=%" PRIu64 "\n", img->refcount_blocks);
	printf("file_size=%" PRIu64 "\n", img->file_size);
	if (img->has_backing_file)
		print_name("backing_file", img->backing_file,
		    img->backing_file_len);
	if (img->has_backing_format)
		print_name("backing_format", img->backing_format,
		    img->backing_format_len);
	printf("metadata_first=%d\n", metadata_first);
	printf("guest_order=%d\n", img->guest_order);
	if (fflush(stdout) != 0 || ferror(stdout))
		fail("stdout: %s", strerror(errno));
}

int
main(int argc, char **argv)
{
	struct image img;
	const char *cmd;

	if (argc < 3)
		usage();
	cmd = argv[1];
	if (strcmp(cmd, "compare") == 0 ? argc != 4 : argc != 3)
		usage();
	if (strcmp(cmd, "check") != 0 && strcmp(cmd, "compare") != 0 &&
	    strcmp(cmd, "info") != 0 && strcmp(cmd, "dump") != 0)
		usage();
	check_image(&img, argv[2]);
	if (strcmp(cmd, "compare") == 0)
		compare(&img, argv[3]);
	else if (strcmp(cmd, "info") == 0)
		info(&img);
	else if (strcmp(cmd, "dump") == 0)
		dump(&img);
	close_image(&img);
	return 0;
}

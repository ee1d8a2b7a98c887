/*
 * image.c: a qcow2 image read back.  See image.h for the protocol between
 * the decoder and its caller, and for the order a pipe must bring.
 *
 * Every offset an entry holds is checked against everything known at the
 * time both are known: the header, L1 table and refcount table from the
 * header; the L2 tables once the L1 table is read; the refcount blocks
 * once the refcount table is; data as each L2 table is read.  Data runs
 * that share a host cluster are caught by sorting them (from a file) or
 * by their host order (from a pipe).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>	/* vsnprintf, for messages */
#include <stdlib.h>
#include <string.h>

#include "image.h"

#define QCOW_MAGIC		0x514649fbu
#define V2_HEADER_LENGTH	72
#define V3_HEADER_LENGTH	104
#define MIN_CLUSTER_BITS	9
#define MAX_CLUSTER_BITS	21
#define MIN_SUBCLUSTER_BITS	14	/* extended L2 entries need 16 KiB clusters */
#define SUBCLUSTERS		32
#define MAX_L1_BYTES		(UINT64_C(32) << 20)
#define MAX_REFCOUNT_TABLE_BYTES (UINT64_C(8) << 20)
#define MAX_REFCOUNT_ORDER	6
#define MAX_OFFSET		(UINT64_C(1) << 56)	/* offsets have bits 9-55 */
#define MAX_BACKING_NAME	1023
#define SHOWN_NAME		200	/* bytes of a name quoted in a message */

#define INCOMPAT_DIRTY		(UINT64_C(1) << 0)
#define INCOMPAT_CORRUPT	(UINT64_C(1) << 1)
#define INCOMPAT_DATA_FILE	(UINT64_C(1) << 2)
#define INCOMPAT_COMPRESSION	(UINT64_C(1) << 3)	/* matters to compressed clusters only */
#define INCOMPAT_EXTENDED_L2	(UINT64_C(1) << 4)
#define INCOMPAT_KNOWN		UINT64_C(0x1f)

#define EXT_END			0x00000000u
#define EXT_FEATURE_NAMES	0x6803f857u
#define EXT_DATA_FILE		0x44415441u
#define EXT_HEADER		8		/* u32 type, u32 length */
#define FEATURE_ENTRY		48		/* u8 type, u8 bit, 46 bytes of name */
#define FEATURE_NAME		46

#define COMPRESSED		(UINT64_C(1) << 62)
#define ZERO_FLAG		UINT64_C(1)
#define OFFSET_MASK		UINT64_C(0x00fffffffffffe00)	/* bits 9-55 */
#define L1_RESERVED		UINT64_C(0x7f000000000001ff)	/* 0-8, 56-62 */
#define L2_RESERVED		UINT64_C(0x3f000000000001fe)	/* 1-8, 56-61 */
#define REFTABLE_RESERVED	UINT64_C(0x1ff)			/* 0-8 */
#define SUB_ALLOCATED		UINT64_C(0xffffffff)

#define NOT_YET			UINT64_MAX
#define ADVICE	": save the image to a file first (from a pipe, sqcow2 reads " \
		"only images in stream order)"

#define U(x)	((uintmax_t)(x))

/* Bytes and numbers */

static uint64_t
be(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	while (bytes-- > 0)
		v = v << 8 | *p++;
	return v;
}

static uint64_t
round_up(uint64_t n, uint64_t align)
{
	return (n + align - 1) / align * align;
}

static uint64_t
ceil_div(uint64_t n, uint64_t d)
{
	return n / d + (n % d != 0);
}

static uint64_t
min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int
cmp_run_host(const void *a, const void *b)
{
	return cmp_u64(&((const struct data_run *)a)->host,
	    &((const struct data_run *)b)->host);
}

static int
cmp_run_guest(const void *a, const void *b)
{
	return cmp_u64(&((const struct data_run *)a)->guest,
	    &((const struct data_run *)b)->guest);
}

/* The first of the n sorted values that is at least key. */
static size_t
lower_bound(const uint64_t *v, size_t n, uint64_t key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
contains(const uint64_t *v, size_t n, uint64_t key)
{
	size_t i = lower_bound(v, n, key);

	return i < n && v[i] == key;
}

/* Errors */

static int
set_error(struct image_error *err, enum image_fault fault, uint64_t offset,
    const char *fmt, ...)
{
	va_list ap;

	err->fault = fault;
	err->offset = offset;
	va_start(ap, fmt);
	vsnprintf(err->why, sizeof(err->why), fmt, ap);
	va_end(ap);
	return -1;
}

#define fail(d, fault, offset, ...) \
	((d)->failed = 1, set_error(&(d)->error, (fault), (offset), __VA_ARGS__))

/* A name from the image, quoted for a message: printable ASCII, else \xNN. */
static void
quote(char *out, size_t size, const unsigned char *name, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (size_t i = 0; i < len && i < SHOWN_NAME && n + 8 < size; i++) {
		unsigned char c = name[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
			out[n++] = (char)c;
		} else {
			out[n++] = '\\';
			out[n++] = 'x';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	if (len > SHOWN_NAME && n + 4 < size) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

/* The header */

uint64_t
image_header_size(const unsigned char *p, size_t len, struct image_error *err)
{
	static const unsigned char magic[4] = { 'Q', 'F', 'I', 0xfb };
	uint64_t version, bits;

	if (len == 0 || memcmp(p, magic, len < 4 ? len : 4) != 0) {
		set_error(err, IMAGE_NOT_QCOW2, 0, "not a qcow2 image");
		return 0;
	}
	if (len < 24) {
		set_error(err, IMAGE_TRUNCATED, len,
		    "truncated header: the image ends at offset %zu", len);
		return 0;
	}
	version = be(p + 4, 4);
	if (version != 2 && version != 3) {
		set_error(err, IMAGE_VERSION, 4, "unsupported qcow2 version %ju "
		    "(sqcow2 reads versions 2 and 3)", U(version));
		return 0;
	}
	bits = be(p + 20, 4);
	if (bits < MIN_CLUSTER_BITS || bits > MAX_CLUSTER_BITS) {
		set_error(err, IMAGE_CLUSTER_BITS, 20, "bad cluster_bits %ju "
		    "(cluster sizes run from 512 B, 9, to 2 MiB, 21)", U(bits));
		return 0;
	}
	return UINT64_C(1) << bits;
}

/* What the header extensions say that the messages use. */
struct extensions {
	const unsigned char *data_file;		/* the external data file's name */
	size_t data_file_len;
	const unsigned char *feature_names;	/* the feature name table */
	size_t feature_names_len;
};

/*
 * Walk the extensions from the end of the header to end, as QEMU does:
 * each must fit before end; unknown ones are skipped.
 */
static int
walk_extensions(const unsigned char *p, uint64_t start, uint64_t end,
    struct extensions *ext, struct image_error *err)
{
	uint64_t at = start;

	memset(ext, 0, sizeof(*ext));
	while (at < end) {
		uint64_t type, len;

		if (end - at < EXT_HEADER || be(p + at + 4, 4) > end - at - EXT_HEADER)
			return set_error(err, IMAGE_BAD_HEADER, at, "header extension at "
			    "offset %ju runs past the end of the header area at %ju",
			    U(at), U(end));
		type = be(p + at, 4);
		len = be(p + at + 4, 4);
		if (type == EXT_END)
			return 0;
		if (type == EXT_DATA_FILE) {
			ext->data_file = p + at + EXT_HEADER;
			ext->data_file_len = len;
		} else if (type == EXT_FEATURE_NAMES) {
			ext->feature_names = p + at + EXT_HEADER;
			ext->feature_names_len = len;
		}
		at += EXT_HEADER + round_up(len, 8);
	}
	return 0;
}

/* The name the feature name table gives incompatible bit, quoted, or "". */
static void
feature_name(const struct extensions *ext, unsigned bit, char *out, size_t size)
{
	out[0] = '\0';
	for (size_t i = 0; i + FEATURE_ENTRY <= ext->feature_names_len; i += FEATURE_ENTRY) {
		const unsigned char *e = ext->feature_names + i;
		size_t len = 0;

		if (e[0] != 0 || e[1] != bit)
			continue;
		while (len < FEATURE_NAME && e[2 + len] != 0)
			len++;
		out[0] = ' ';
		out[1] = '\'';
		quote(out + 2, size - 4, e + 2, len);
		strcat(out, "'");
		return;
	}
}

static int
check_features(struct image_header *hdr, const struct extensions *ext,
    struct image_error *err)
{
	uint64_t incompat = hdr->incompatible_features;
	char name[SHOWN_NAME * 4 + 16];

	if (incompat & INCOMPAT_CORRUPT)
		return set_error(err, IMAGE_CORRUPT, 72, "image is marked corrupt: "
		    "repair it first with qemu-img check -r all");
	if (incompat & INCOMPAT_DATA_FILE) {
		quote(name, sizeof(name), ext->data_file, ext->data_file_len);
		return set_error(err, IMAGE_DATA_FILE, 72, "image keeps its data in "
		    "an external data file%s%s%s: the image alone is not the disk "
		    "(convert it first with qemu-img convert -O qcow2)",
		    ext->data_file ? " '" : "", ext->data_file ? name : "",
		    ext->data_file ? "'" : "");
	}
	if (incompat & ~INCOMPAT_KNOWN) {
		unsigned bit = 0;

		while (!(incompat >> bit & 1) || (INCOMPAT_KNOWN >> bit & 1))
			bit++;
		feature_name(ext, bit, name, sizeof(name));
		return set_error(err, IMAGE_FEATURE, 72,
		    "unknown incompatible feature bit %u%s", bit, name);
	}
	hdr->dirty = (incompat & INCOMPAT_DIRTY) != 0;
	hdr->extended_l2 = (incompat & INCOMPAT_EXTENDED_L2) != 0;
	if (hdr->extended_l2 && hdr->cluster_bits < MIN_SUBCLUSTER_BITS)
		return set_error(err, IMAGE_CLUSTER_BITS, 20, "extended L2 entries "
		    "need clusters of at least 16 KiB, not %ju bytes",
		    U(hdr->cluster_size));
	return 0;
}

/* Encryption and backing files: images that are not the disk alone. */
static int
check_not_alone(const unsigned char *p, uint64_t cs, struct image_error *err)
{
	static const char *const methods[] = { "", "AES", "LUKS" };
	uint64_t crypt = be(p + 32, 4), offset = be(p + 8, 8), len = be(p + 16, 4);
	char name[SHOWN_NAME * 4 + 8];

	if (crypt != 0)
		return set_error(err, IMAGE_ENCRYPTED, 32, "encrypted image "
		    "(crypt_method %ju%s%s): sqcow2 reads no encrypted images; "
		    "decrypt it first with qemu-img convert", U(crypt),
		    crypt < 3 ? ", " : "", crypt < 3 ? methods[crypt] : "");
	if (offset == 0)
		return 0;
	if (len > MAX_BACKING_NAME || offset > cs || len > cs - offset)
		return set_error(err, IMAGE_BACKING_FILE, 8, "image has a backing "
		    "file (its name of %ju bytes at offset %ju is out of bounds): "
		    "the overlay alone is not the disk", U(len), U(offset));
	quote(name, sizeof(name), p + offset, len);
	return set_error(err, IMAGE_BACKING_FILE, 8, "image has a backing file '%s': "
	    "the overlay alone is not the disk (flatten it first with qemu-img "
	    "convert -O qcow2)", name);
}

/* The L1 and refcount tables: sizes, alignment, place, no overlap. */
static int
check_tables(struct image_header *hdr, struct image_error *err)
{
	uint64_t cs = hdr->cluster_size, span = hdr->l2_span;
	uint64_t qemu_needs = ceil_div(hdr->size, span);
	uint64_t l1_len = round_up((uint64_t)hdr->l1_size * 8, cs);
	uint64_t rt_len = (uint64_t)hdr->refcount_table_clusters * cs;
	uint64_t l1 = hdr->l1_offset, rt = hdr->refcount_table_offset;

	if (hdr->l1_size > MAX_L1_BYTES / 8)
		return set_error(err, IMAGE_L1_SIZE, 36, "L1 table of %ju entries "
		    "over QEMU's 32 MiB cap", U(hdr->l1_size));
	if (hdr->l1_size < qemu_needs)
		return set_error(err, IMAGE_L1_SIZE, 36, "L1 table of %ju entries "
		    "too small for the virtual size %ju (it needs %ju)",
		    U(hdr->l1_size), U(hdr->size), U(qemu_needs));
	if (l1 % cs != 0)
		return set_error(err, IMAGE_UNALIGNED, 40, "L1 table offset %ju not "
		    "aligned to the cluster size %ju", U(l1), U(cs));
	if (l1 > MAX_OFFSET - l1_len)
		return set_error(err, IMAGE_BAD_HEADER, 40, "L1 table at offset %ju "
		    "runs past 64 PiB", U(l1));
	if (l1_len > 0 && l1 < cs)
		return set_error(err, IMAGE_OVERLAP, 40, "L1 table at offset %ju "
		    "overlaps the header", U(l1));
	if (hdr->refcount_table_clusters == 0)
		return set_error(err, IMAGE_BAD_HEADER, 56, "image has no refcount "
		    "table (refcount_table_clusters is 0)");
	if (hdr->refcount_table_clusters > MAX_REFCOUNT_TABLE_BYTES / cs)
		return set_error(err, IMAGE_BAD_HEADER, 56, "refcount table of %ju "
		    "clusters over QEMU's 8 MiB cap", U(hdr->refcount_table_clusters));
	if (rt % cs != 0)
		return set_error(err, IMAGE_UNALIGNED, 48, "refcount table offset %ju "
		    "not aligned to the cluster size %ju", U(rt), U(cs));
	if (rt > MAX_OFFSET - rt_len)
		return set_error(err, IMAGE_BAD_HEADER, 48, "refcount table at offset "
		    "%ju runs past 64 PiB", U(rt));
	if (rt < cs)
		return set_error(err, IMAGE_OVERLAP, 48, "refcount table at offset %ju "
		    "overlaps the header", U(rt));
	if (l1_len > 0 && l1 < rt + rt_len && rt < l1 + l1_len)
		return set_error(err, IMAGE_OVERLAP, 48, "refcount table at offset %ju "
		    "overlaps the L1 table at %ju", U(rt), U(l1));
	return 0;
}

int
image_header_parse(struct image_header *hdr, const unsigned char *p, size_t len,
    struct image_error *err)
{
	uint64_t cs = image_header_size(p, len, err), ext_end;
	struct extensions ext;

	memset(hdr, 0, sizeof(*hdr));
	if (cs == 0)
		return -1;
	if (len < cs)
		return set_error(err, IMAGE_TRUNCATED, len, "truncated header: the "
		    "image ends at offset %zu, inside its first cluster of %ju bytes",
		    len, U(cs));
	hdr->version = (int)be(p + 4, 4);
	hdr->cluster_bits = (unsigned)be(p + 20, 4);
	hdr->cluster_size = cs;
	hdr->size = be(p + 24, 8);
	hdr->virtual_size = hdr->size & ~(uint64_t)511;
	hdr->l1_size = (uint32_t)be(p + 36, 4);
	hdr->l1_offset = be(p + 40, 8);
	hdr->refcount_table_offset = be(p + 48, 8);
	hdr->refcount_table_clusters = (uint32_t)be(p + 56, 4);
	hdr->snapshots = (uint32_t)be(p + 60, 4);
	hdr->header_length = V2_HEADER_LENGTH;
	hdr->refcount_order = 4;
	if (hdr->version == 3) {
		hdr->incompatible_features = be(p + 72, 8);
		hdr->compatible_features = be(p + 80, 8);
		hdr->autoclear_features = be(p + 88, 8);
		hdr->refcount_order = (unsigned)be(p + 96, 4);
		hdr->header_length = (uint32_t)be(p + 100, 4);
		if (hdr->header_length < V3_HEADER_LENGTH ||
		    hdr->header_length % 8 != 0 || hdr->header_length > cs)
			return set_error(err, IMAGE_BAD_HEADER, 100, "bad header length "
			    "%ju (a multiple of 8 from 104 to the cluster size)",
			    U(hdr->header_length));
		if (be(p + 96, 4) > MAX_REFCOUNT_ORDER)
			return set_error(err, IMAGE_BAD_HEADER, 96, "refcount_order %ju "
			    "over 6", U(be(p + 96, 4)));
	}
	/* The extensions end where the backing file name begins, if it does. */
	ext_end = be(p + 8, 8);
	if (ext_end == 0 || ext_end > cs)
		ext_end = cs;
	if (walk_extensions(p, hdr->header_length, ext_end, &ext, err) != 0 ||
	    check_features(hdr, &ext, err) != 0 || check_not_alone(p, cs, err) != 0)
		return -1;

	hdr->l2_entry_size = hdr->extended_l2 ? 16 : 8;
	hdr->l2_entries = cs / hdr->l2_entry_size;
	hdr->l2_span = hdr->l2_entries * cs;
	hdr->subcluster_size = hdr->extended_l2 ? cs / SUBCLUSTERS : cs;
	hdr->l1_used = ceil_div(hdr->virtual_size, hdr->l2_span);
	return check_tables(hdr, err);
}

/* Memory */

/*
 * Room for need elements of size bytes in array, of *cap now: the array,
 * perhaps moved, doubled or more, the total of all arrays kept within
 * memory_max.  Returns NULL with the error set, array still held.
 */
static void *
grow(struct decoder *d, void *array, size_t *cap, size_t size, size_t need,
    const char *what)
{
	size_t others = d->memory - *cap * size, room, new_cap;
	void *p;

	if (need <= *cap)
		return array;
	room = d->memory_max > others ? (d->memory_max - others) / size : 0;
	if (need > room) {
		fail(d, IMAGE_MEMORY, d->asked.host, "image needs more than the %zu "
		    "MiB memory cap to decode: over %zu %s", d->memory_max >> 20,
		    need - 1, what);
		return NULL;
	}
	new_cap = *cap > 0 ? *cap : 64;
	while (new_cap < need)
		new_cap = new_cap > room / 2 ? room : new_cap * 2;
	if (new_cap > room)
		new_cap = room;
	if ((p = realloc(array, new_cap * size)) == NULL) {
		fail(d, IMAGE_MEMORY, d->asked.host, "out of memory for %zu %s", need,
		    what);
		return NULL;
	}
	d->memory = others + new_cap * size;
	*cap = new_cap;
	return p;
}

/* Where things are */

static const char *
input_name(enum input_kind kind)
{
	switch (kind) {
	case INPUT_L1:
		return "L1 table";
	case INPUT_REFCOUNT_TABLE:
		return "refcount table";
	case INPUT_L2:
		return "L2 table";
	case INPUT_DATA:
		return "data";
	case INPUT_NONE:
		break;
	}
	return "end";
}

static int
in_extent(const struct extent *e, uint64_t offset)
{
	return offset >= e->start && offset < e->end;
}

/*
 * Whether the cluster at host is metadata known so far; if so, what it
 * is, in desc.  Offsets here are aligned and not 0, so past the header.
 */
static int
metadata_at(const struct decoder *d, uint64_t host, char *desc, size_t size)
{
	if (in_extent(&d->l1_at, host))
		snprintf(desc, size, "the L1 table at %ju", U(d->l1_at.start));
	else if (in_extent(&d->refcount_table_at, host))
		snprintf(desc, size, "the refcount table at %ju",
		    U(d->refcount_table_at.start));
	else if (d->l2_hosts != NULL && contains(d->l2_hosts, d->ntables, host))
		snprintf(desc, size, "the L2 table at %ju", U(host));
	else if (d->refcount_table_read == d->refcount_table_bytes &&
	    contains(d->refblocks, d->nrefblocks, host))
		snprintf(desc, size, "the refcount block at %ju", U(host));
	else
		return 0;
	return 1;
}

/* The L1 table */

/* Each L2 table in use: reserved bits, alignment, place; then kept. */
static int
parse_l1(struct decoder *d, const unsigned char *buf, size_t len)
{
	uint64_t cs = d->hdr.cluster_size, first = d->l1_read / 8;
	struct l2_ref *tables;
	char desc[64];

	for (size_t k = 0; k < len / 8; k++) {
		uint64_t entry = be(buf + k * 8, 8), index = first + k;
		uint64_t at = d->hdr.l1_offset + index * 8, host = entry & OFFSET_MASK;

		if (entry & L1_RESERVED)
			return fail(d, IMAGE_RESERVED_BITS, at, "L1 entry %ju at offset "
			    "%ju has reserved bits set (0x%016jx)", U(index), U(at),
			    U(entry));
		if (host == 0)
			continue;
		if (host % cs != 0)
			return fail(d, IMAGE_UNALIGNED, at, "L1 entry %ju at offset %ju "
			    "points to unaligned offset %ju", U(index), U(at), U(host));
		if (metadata_at(d, host, desc, sizeof(desc)))
			return fail(d, IMAGE_OVERLAP, at, "L1 entry %ju at offset %ju "
			    "points into %s", U(index), U(at), desc);
		if (d->mode == DECODE_SEEKABLE && (host >= d->file_size ||
		    d->file_size - host < cs))
			return fail(d, IMAGE_PAST_END, at, "L1 entry %ju at offset %ju "
			    "points to an L2 table at %ju, past the end of the file "
			    "(%ju bytes)", U(index), U(at), U(host), U(d->file_size));
		if (d->mode == DECODE_FORWARD && host < d->hdr.l1_offset)
			return fail(d, IMAGE_ORDER, host, "L2 table at offset %ju comes "
			    "before the L1 table at %ju that points to it" ADVICE,
			    U(host), U(d->hdr.l1_offset));
		if ((tables = grow(d, d->tables, &d->tables_cap, sizeof(*tables),
		    d->ntables + 1, "L1 entries in use")) == NULL)
			return -1;
		d->tables = tables;
		d->tables[d->ntables].host = host;
		d->tables[d->ntables].index = index;
		d->ntables++;
	}
	d->l1_read += len;
	return 0;
}

/*
 * All of the L1 table read: sort the L2 tables by host, none twice.  (An
 * L2 table and a refcount block in one cluster are caught by metadata_at
 * as the second of the two tables is read.)
 */
static int
finish_l1(struct decoder *d)
{
	size_t cap = 0;

	if (d->ntables == 0)
		return 0;
	if ((d->l2_hosts = grow(d, NULL, &cap, sizeof(*d->l2_hosts), d->ntables,
	    "L1 entries in use")) == NULL)
		return -1;
	for (size_t i = 0; i < d->ntables; i++)
		d->l2_hosts[i] = d->tables[i].host;
	qsort(d->l2_hosts, d->ntables, sizeof(*d->l2_hosts), cmp_u64);
	for (size_t i = 1; i < d->ntables; i++) {
		if (d->l2_hosts[i] == d->l2_hosts[i - 1]) {
			uint64_t host = d->l2_hosts[i], first = NOT_YET, second = 0;

			for (size_t k = 0; k < d->ntables; k++) {
				if (d->tables[k].host != host)
					continue;
				if (first != NOT_YET) {
					second = d->tables[k].index;
					break;
				}
				first = d->tables[k].index;
			}
			return fail(d, IMAGE_OVERLAP, d->hdr.l1_offset + second * 8,
			    "L1 entries %ju and %ju both point to the L2 table at %ju",
			    U(first), U(second), U(host));
		}
	}
	return 0;
}

/* The refcount table */

static int
parse_refcount_table(struct decoder *d, const unsigned char *buf, size_t len)
{
	uint64_t cs = d->hdr.cluster_size, first = d->refcount_table_read / 8;
	uint64_t *blocks;
	char desc[64];

	for (size_t k = 0; k < len / 8; k++) {
		uint64_t block = be(buf + k * 8, 8), index = first + k;
		uint64_t at = d->hdr.refcount_table_offset + index * 8;

		if (block == 0)
			continue;
		if (block & REFTABLE_RESERVED)
			return fail(d, IMAGE_RESERVED_BITS, at, "refcount table entry "
			    "%ju at offset %ju has reserved bits set (0x%016jx)",
			    U(index), U(at), U(block));
		if (block % cs != 0)
			return fail(d, IMAGE_UNALIGNED, at, "refcount table entry %ju "
			    "at offset %ju points to unaligned offset %ju", U(index),
			    U(at), U(block));
		if (block >= MAX_OFFSET)
			return fail(d, IMAGE_PAST_END, at, "refcount table entry %ju at "
			    "offset %ju points past 64 PiB", U(index), U(at));
		if (metadata_at(d, block, desc, sizeof(desc)))
			return fail(d, IMAGE_OVERLAP, at, "refcount table entry %ju at "
			    "offset %ju points into %s", U(index), U(at), desc);
		if ((blocks = grow(d, d->refblocks, &d->refblocks_cap, sizeof(*blocks),
		    d->nrefblocks + 1, "refcount blocks")) == NULL)
			return -1;
		d->refblocks = blocks;
		d->refblocks[d->nrefblocks++] = block;
	}
	d->refcount_table_read += len;
	return 0;
}

/* The first pending run, in host order, that ends after host (forward). */
static size_t
run_after(const struct decoder *d, uint64_t host)
{
	size_t lo = d->next_run, hi = d->nruns;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct data_run *r = &d->runs[mid];

		if (r->host + r->length <= host)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Forward: a refcount block the stream has passed must lie in a gap it
 * skipped; one ahead must not be in data still to come.
 */
static int
check_refblock_forward(struct decoder *d, uint64_t block)
{
	uint64_t cs = d->hdr.cluster_size;

	if (block < d->position) {
		size_t lo = 0, hi = d->nholes;

		while (lo < hi) {	/* the last hole starting at or before block */
			size_t mid = lo + (hi - lo) / 2;

			if (d->holes[mid].start <= block)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == 0 || d->holes[lo - 1].end < block + cs)
			return fail(d, IMAGE_OVERLAP, block, "refcount block at %ju "
			    "overlaps data or tables already read", U(block));
	} else {
		size_t i = run_after(d, block);

		if (i < d->nruns && d->runs[i].host < block + cs)
			return fail(d, IMAGE_OVERLAP, block, "data for guest offset %ju "
			    "at offset %ju lies in the refcount block at %ju",
			    U(d->runs[i].guest), U(d->runs[i].host), U(block));
	}
	return 0;
}

/* All of the refcount table read: sort the blocks, none twice. */
static int
finish_refcount_table(struct decoder *d)
{
	if (d->nrefblocks > 1)
		qsort(d->refblocks, d->nrefblocks, sizeof(*d->refblocks), cmp_u64);
	for (size_t i = 1; i < d->nrefblocks; i++)
		if (d->refblocks[i] == d->refblocks[i - 1])
			return fail(d, IMAGE_OVERLAP, d->hdr.refcount_table_offset,
			    "two refcount table entries point to the refcount block "
			    "at %ju", U(d->refblocks[i]));
	if (d->mode == DECODE_FORWARD)
		for (size_t i = 0; i < d->nrefblocks; i++)
			if (check_refblock_forward(d, d->refblocks[i]) != 0)
				return -1;
	free(d->holes);
	d->memory -= d->holes_cap * sizeof(*d->holes);
	d->holes = NULL;
	d->nholes = d->holes_cap = 0;
	return 0;
}

/* L2 tables and data */

/*
 * From a pipe: data in guest order, and no host cluster for two guest
 * clusters (subclusters of one entry share theirs).  Only the run before
 * can break either, since all before it did not.
 */
static int
check_stream_order(struct decoder *d, uint64_t guest, uint64_t host,
    uint64_t length, uint64_t at)
{
	const struct data_run *prev = &d->last_added;
	uint64_t cs = d->hdr.cluster_size, prev_end = prev->host + prev->length;

	if (prev->length == 0)
		return 0;
	if (host + length <= prev->host)
		return fail(d, IMAGE_ORDER, host, "data for guest offset %ju at offset "
		    "%ju comes before data for guest offset %ju at %ju: its guest "
		    "order differs from its host order" ADVICE, U(guest), U(host),
		    U(prev->guest), U(prev->host));
	if (host < prev_end || (host / cs == (prev_end - 1) / cs &&
	    guest - host != prev->guest - prev->host))
		return fail(d, IMAGE_OVERLAP, at, "L2 entry at offset %ju (guest "
		    "offset %ju) points to the host cluster at %ju, already used for "
		    "guest offset %ju", U(at), U(guest), U(host / cs * cs),
		    U(prev->guest));
	return 0;
}

/* Keep a run of data, joined to the one before if it continues it. */
static int
add_run(struct decoder *d, uint64_t guest, uint64_t host, uint64_t length,
    uint64_t at)
{
	struct data_run *last = d->nruns > d->next_run ? &d->runs[d->nruns - 1] : NULL;
	struct data_run *runs;

	if (d->mode == DECODE_FORWARD &&
	    check_stream_order(d, guest, host, length, at) != 0)
		return -1;
	d->last_added.guest = guest;
	d->last_added.host = host;
	d->last_added.length = length;
	if (last != NULL && last->guest + last->length == guest &&
	    last->host + last->length == host) {
		last->length += length;
		return 0;
	}
	/* From a pipe, output runs are done with: reuse their room. */
	if (d->nruns == d->runs_cap && d->next_run >= d->nruns / 2 && d->next_run > 0) {
		memmove(d->runs, d->runs + d->next_run,
		    (d->nruns - d->next_run) * sizeof(*d->runs));
		d->nruns -= d->next_run;
		d->next_run = 0;
	}
	if ((runs = grow(d, d->runs, &d->runs_cap, sizeof(*runs), d->nruns + 1,
	    "runs of data")) == NULL)
		return -1;
	d->runs = runs;
	d->runs[d->nruns].guest = guest;
	d->runs[d->nruns].host = host;
	d->runs[d->nruns].length = length;
	d->nruns++;
	return 0;
}

/* The host cluster an L2 entry maps data to: its place, before its bytes. */
static int
check_data_cluster(struct decoder *d, uint64_t host, uint64_t at, uint64_t guest)
{
	uint64_t cs = d->hdr.cluster_size;
	char desc[64];

	if (host % cs != 0)
		return fail(d, IMAGE_UNALIGNED, at, "L2 entry at offset %ju (guest "
		    "offset %ju) points to unaligned offset %ju", U(at), U(guest),
		    U(host));
	if (metadata_at(d, host, desc, sizeof(desc)))
		return fail(d, IMAGE_OVERLAP, at, "L2 entry at offset %ju (guest "
		    "offset %ju) points into %s", U(at), U(guest), desc);
	if (d->mode == DECODE_SEEKABLE && host >= d->file_size)
		return fail(d, IMAGE_PAST_END, at, "L2 entry at offset %ju (guest "
		    "offset %ju) points to %ju, past the end of the file (%ju bytes)",
		    U(at), U(guest), U(host), U(d->file_size));
	if (d->mode == DECODE_FORWARD && host < d->position)
		return fail(d, IMAGE_ORDER, host, "data for guest offset %ju at offset "
		    "%ju comes before the L2 table at %ju that maps it" ADVICE,
		    U(guest), U(host), U(d->asked.host));
	return 0;
}

/* A standard 64-bit entry: unallocated, zero, or a cluster of data. */
static int
parse_entry(struct decoder *d, uint64_t entry, uint64_t at, uint64_t guest)
{
	uint64_t reserved = L2_RESERVED | (d->hdr.version == 2 ? ZERO_FLAG : 0);
	uint64_t host = entry & OFFSET_MASK;

	if (entry & reserved)
		return fail(d, IMAGE_RESERVED_BITS, at, "L2 entry at offset %ju (guest "
		    "offset %ju) has reserved bits set (0x%016jx)", U(at), U(guest),
		    U(entry));
	if ((entry & ZERO_FLAG) && host % d->hdr.cluster_size != 0)
		return fail(d, IMAGE_UNALIGNED, at, "L2 entry at offset %ju (guest "
		    "offset %ju) points to unaligned offset %ju", U(at), U(guest),
		    U(host));
	/* Zero clusters read as zeros, preallocated or not. */
	if ((entry & ZERO_FLAG) || host == 0)
		return 0;
	if (check_data_cluster(d, host, at, guest) != 0)
		return -1;
	return add_run(d, guest, host,
	    min_u64(d->hdr.cluster_size, d->hdr.virtual_size - guest), at);
}

/* An extended entry: a 64-bit entry and 32 subclusters' state. */
static int
parse_extended_entry(struct decoder *d, uint64_t entry, uint64_t bitmap,
    uint64_t at, uint64_t guest)
{
	uint64_t host = entry & OFFSET_MASK, sub = d->hdr.subcluster_size;
	uint64_t allocated = bitmap & SUB_ALLOCATED, zero = bitmap >> 32;

	if (entry & (L2_RESERVED | ZERO_FLAG))
		return fail(d, IMAGE_RESERVED_BITS, at, "L2 entry at offset %ju (guest "
		    "offset %ju) has reserved bits set (0x%016jx)", U(at), U(guest),
		    U(entry));
	if (host == 0 && allocated != 0)
		return fail(d, IMAGE_SUBCLUSTERS, at, "L2 entry at offset %ju (guest "
		    "offset %ju) allocates subclusters but no cluster (bitmap "
		    "0x%016jx)", U(at), U(guest), U(bitmap));
	if (host == 0)
		return 0;
	if (host % d->hdr.cluster_size != 0)
		return fail(d, IMAGE_UNALIGNED, at, "L2 entry at offset %ju (guest "
		    "offset %ju) points to unaligned offset %ju", U(at), U(guest),
		    U(host));
	if (allocated & zero)
		return fail(d, IMAGE_SUBCLUSTERS, at, "L2 entry at offset %ju (guest "
		    "offset %ju) has subclusters both allocated and zero (bitmap "
		    "0x%016jx)", U(at), U(guest), U(bitmap));
	/* Subclusters past the end of the disk are never read. */
	if (d->hdr.virtual_size - guest < SUBCLUSTERS * sub)
		allocated &= (UINT64_C(1) << ceil_div(d->hdr.virtual_size - guest, sub)) - 1;
	if (allocated == 0)
		return 0;
	if (check_data_cluster(d, host, at, guest) != 0)
		return -1;
	for (unsigned a = 0; a < SUBCLUSTERS; ) {
		unsigned b = a;

		if (!(allocated >> a & 1)) {
			a++;
			continue;
		}
		while (b < SUBCLUSTERS && (allocated >> b & 1))
			b++;
		if (add_run(d, guest + a * sub, host + a * sub,
		    min_u64((b - a) * sub, d->hdr.virtual_size - guest - a * sub), at) != 0)
			return -1;
		a = b;
	}
	return 0;
}

static int
parse_l2(struct decoder *d, const unsigned char *buf)
{
	const struct l2_ref *t = &d->tables[d->tables_read];
	uint64_t size = d->hdr.l2_entry_size, base = t->index * d->hdr.l2_span;

	for (uint64_t i = 0; i < d->hdr.l2_entries; i++) {
		uint64_t guest = base + i * d->hdr.cluster_size, at = t->host + i * size;
		uint64_t entry = be(buf + i * size, 8);
		int status;

		if (guest >= d->hdr.virtual_size)
			break;
		if (entry & COMPRESSED)
			return fail(d, IMAGE_COMPRESSED, at, "compressed cluster at guest "
			    "offset %ju (L2 entry at offset %ju): convert it first with "
			    "qemu-img convert -O qcow2 (sqcow2 reads no compressed "
			    "clusters)", U(guest), U(at));
		if (d->hdr.extended_l2)
			status = parse_extended_entry(d, entry, be(buf + i * size + 8, 8),
			    at, guest);
		else
			status = parse_entry(d, entry, at, guest);
		if (status != 0)
			return -1;
	}
	d->tables_read++;
	return 0;
}

/* From a file: no two runs share a host cluster, unless one entry's. */
static int
check_runs_apart(struct decoder *d)
{
	uint64_t cs = d->hdr.cluster_size, end = 0, delta = 0, guest = 0;

	if (d->nruns > 1)
		qsort(d->runs, d->nruns, sizeof(*d->runs), cmp_run_host);
	for (size_t i = 0; i < d->nruns; i++) {
		const struct data_run *r = &d->runs[i];

		/* Same cluster, same guest - host: the same L2 entry. */
		if (i > 0 && r->host / cs <= (end - 1) / cs && r->guest - r->host != delta)
			return fail(d, IMAGE_OVERLAP, r->host / cs * cs, "L2 entries "
			    "for guest offsets %ju and %ju both point to the host "
			    "cluster at %ju", U(guest), U(r->guest), U(r->host / cs * cs));
		if (i == 0 || r->host + r->length > end) {
			end = r->host + r->length;
			delta = r->guest - r->host;
			guest = r->guest;
		}
	}
	if (d->nruns > 1)
		qsort(d->runs, d->nruns, sizeof(*d->runs), cmp_run_guest);
	d->runs_checked = 1;
	return 0;
}

/* The decoder */

void
decoder_init(struct decoder *d, const struct image_header *hdr,
    enum decoder_mode mode, uint64_t file_size)
{
	uint64_t cs = hdr->cluster_size;

	memset(d, 0, sizeof(*d));
	d->hdr = *hdr;
	d->mode = mode;
	d->file_size = mode == DECODE_SEEKABLE ? file_size : NOT_YET;
	d->memory_max = IMAGE_MEMORY_MAX;
	d->position = cs;
	d->input_end = NOT_YET;
	d->l1_bytes = hdr->l1_used * 8;
	d->refcount_table_bytes = (uint64_t)hdr->refcount_table_clusters * cs;
	d->l1_at.start = hdr->l1_offset;
	d->l1_at.end = hdr->l1_offset + round_up((uint64_t)hdr->l1_size * 8, cs);
	d->refcount_table_at.start = hdr->refcount_table_offset;
	d->refcount_table_at.end = hdr->refcount_table_offset + d->refcount_table_bytes;
}

void
decoder_free(struct decoder *d)
{
	free(d->tables);
	free(d->l2_hosts);
	free(d->refblocks);
	free(d->runs);
	free(d->holes);
	d->tables = NULL;
	d->l2_hosts = d->refblocks = NULL;
	d->runs = NULL;
	d->holes = NULL;
	d->memory = 0;
}

static enum step_kind
give(struct step *step, enum step_kind kind, uint64_t host, uint64_t guest,
    uint64_t length)
{
	step->kind = kind;
	step->host = host;
	step->guest = guest;
	step->length = length;
	return kind;
}

static enum step_kind
give_error(struct step *step)
{
	return give(step, STEP_ERROR, 0, 0, 0);
}

/*
 * How far the disk is known: to the first run of data still to output,
 * or the first L2 table still to read, or the end.  Nothing is known
 * before all of the L1 table is read.
 */
static uint64_t
known_until(const struct decoder *d)
{
	uint64_t until = d->hdr.virtual_size;

	if (d->l1_read < d->l1_bytes)
		return d->cursor;
	if (d->next_run < d->nruns)
		until = min_u64(until, d->runs[d->next_run].guest);
	if (d->tables_read < d->ntables)
		until = min_u64(until, d->tables[d->tables_read].index * d->hdr.l2_span);
	return until;
}

/* An input step the decoder could take next. */
struct candidate {
	enum input_kind kind;
	uint64_t host, length, guest;
};

/*
 * The next piece of a table to read, in this order: the L1 table, the
 * refcount table, the L2 tables in L1 order.  From a pipe the caller
 * takes the nearest of these and the next run of data.
 */
static int
next_table(const struct decoder *d, struct candidate *c, int which)
{
	uint64_t cs = d->hdr.cluster_size;

	if (which == INPUT_L1 && d->l1_read < d->l1_bytes) {
		c->host = d->hdr.l1_offset + d->l1_read;
		c->length = min_u64(cs, d->l1_bytes - d->l1_read);
	} else if (which == INPUT_REFCOUNT_TABLE &&
	    d->refcount_table_read < d->refcount_table_bytes) {
		c->host = d->hdr.refcount_table_offset + d->refcount_table_read;
		c->length = cs;
	} else if (which == INPUT_L2 && d->l1_read == d->l1_bytes &&
	    d->tables_read < d->ntables) {
		c->host = d->tables[d->tables_read].host;
		c->length = cs;
		c->guest = d->tables[d->tables_read].index * d->hdr.l2_span;
	} else {
		return 0;
	}
	c->kind = which;
	return 1;
}

static enum step_kind
ask_table(struct decoder *d, struct step *step, const struct candidate *c)
{
	d->awaiting_table = 1;
	d->asked_for = c->kind;
	give(&d->asked, STEP_TABLE, c->host, 0, c->length);
	return give(step, STEP_TABLE, c->host, 0, c->length);
}

/* Zeros up to where the disk is known. */
static enum step_kind
output_zeros(struct decoder *d, struct step *step)
{
	uint64_t from = d->cursor;

	d->cursor = known_until(d);
	return give(step, STEP_ZEROS, 0, from, d->cursor - from);
}

/* The next run of data, as DATA (clipped at the end of the file) or ZEROS. */
static enum step_kind
output_run(struct decoder *d, struct step *step)
{
	const struct data_run *r = &d->runs[d->next_run];
	uint64_t cs = d->hdr.cluster_size, end = d->file_size, data, last_cluster;

	if (r->guest != d->cursor)
		return fail(d, IMAGE_ORDER, r->host, "data for guest offset %ju at "
		    "offset %ju is not next in guest order (at %ju)", U(r->guest),
		    U(r->host), U(d->cursor)), give_error(step);
	if (d->input_end != NOT_YET)
		end = min_u64(end, d->input_end);
	last_cluster = (r->host + r->length - 1) / cs * cs;
	if (last_cluster >= end)
		return fail(d, IMAGE_TRUNCATED, end, "image truncated at offset %ju: "
		    "the data cluster at %ju (guest offset %ju) is missing", U(end),
		    U(last_cluster), U(r->guest + (last_cluster - r->host))),
		    give_error(step);
	data = r->host < end ? min_u64(r->length, end - r->host) : 0;
	d->next_run++;
	d->cursor += r->length;
	if (data == 0)
		return give(step, STEP_ZEROS, 0, r->guest, r->length);
	d->owed_guest = r->guest + data;
	d->owed_length = r->length - data;
	d->asked_for = INPUT_DATA;
	give(&d->asked, STEP_DATA, r->host, r->guest, data);
	return give(step, STEP_DATA, r->host, r->guest, data);
}

/* From a file: every table first, in order, then the disk in guest order. */
static enum step_kind
next_seekable(struct decoder *d, struct step *step)
{
	struct candidate c = { INPUT_NONE, 0, 0, 0 };

	if (next_table(d, &c, INPUT_L1) || next_table(d, &c, INPUT_REFCOUNT_TABLE) ||
	    next_table(d, &c, INPUT_L2)) {
		if (c.host >= d->file_size || d->file_size - c.host < c.length)
			return fail(d, IMAGE_PAST_END, c.host, "%s at offset %ju runs "
			    "past the end of the file (%ju bytes)", input_name(c.kind),
			    U(c.host), U(d->file_size)), give_error(step);
		return ask_table(d, step, &c);
	}
	if (!d->runs_checked && check_runs_apart(d) != 0)
		return give_error(step);
	if (d->cursor < known_until(d))
		return output_zeros(d, step);
	if (d->next_run < d->nruns)
		return output_run(d, step);
	return give(step, STEP_DONE, 0, 0, 0);
}

/* What lies at host, for a message: "the L2 table at 123". */
static void
describe(char *out, size_t size, const struct candidate *c)
{
	if (c->kind == INPUT_DATA)
		snprintf(out, size, "data for guest offset %ju at offset %ju",
		    U(c->guest), U(c->host));
	else if (c->kind == INPUT_L2)
		snprintf(out, size, "the L2 table for guest offset %ju at offset %ju",
		    U(c->guest), U(c->host));
	else
		snprintf(out, size, "the %s at offset %ju", input_name(c->kind),
		    U(c->host));
}

/* The input step nearest in the file: a table, or the next run of data. */
static int
nearest_input(const struct decoder *d, struct candidate *c)
{
	struct candidate t;
	int found = 0;

	for (int which = INPUT_L1; which <= INPUT_L2; which++) {
		if (next_table(d, &t, which) && (!found || t.host < c->host)) {
			*c = t;
			found = 1;
		}
	}
	if (d->next_run < d->nruns && (!found || d->runs[d->next_run].host < c->host)) {
		c->kind = INPUT_DATA;
		c->host = d->runs[d->next_run].host;
		c->length = d->runs[d->next_run].length;
		c->guest = d->runs[d->next_run].guest;
		found = 1;
	}
	return found;
}

/* Remember a gap skipped while refcount blocks may still be in it. */
static int
add_hole(struct decoder *d, uint64_t start, uint64_t end)
{
	struct extent *holes;

	if (d->refcount_table_read == d->refcount_table_bytes)
		return 0;
	if ((holes = grow(d, d->holes, &d->holes_cap, sizeof(*holes), d->nholes + 1,
	    "gaps skipped before the refcount table")) == NULL)
		return -1;
	d->holes = holes;
	d->holes[d->nholes].start = start;
	d->holes[d->nholes].end = end;
	d->nholes++;
	return 0;
}

/* From a pipe: zeros as soon as known, else the nearest input, in order. */
static enum step_kind
next_forward(struct decoder *d, struct step *step)
{
	struct candidate c = { INPUT_NONE, 0, 0, 0 };
	char what[128];

	if (d->cursor < known_until(d))
		return output_zeros(d, step);
	if (!nearest_input(d, &c))
		return give(step, STEP_DONE, 0, 0, 0);
	describe(what, sizeof(what), &c);
	if (c.host < d->position)
		return fail(d, IMAGE_ORDER, c.host, "%s lies behind offset %ju, where "
		    "the stream already is" ADVICE, what, U(d->position)),
		    give_error(step);
	/* Past the end, data of a cluster begun before it reads as zeros. */
	if (d->input_end != NOT_YET && c.kind == INPUT_DATA)
		return output_run(d, step);
	if (d->input_end != NOT_YET)
		return fail(d, IMAGE_TRUNCATED, d->input_end, "image truncated at "
		    "offset %ju, before %s", U(d->input_end), what), give_error(step);
	if (c.host > d->position) {
		uint64_t from = d->position;

		if (add_hole(d, from, c.host) != 0)
			return give_error(step);
		d->position = c.host;
		d->asked_for = c.kind;
		give(&d->asked, STEP_SKIP, from, 0, c.host - from);
		return give(step, STEP_SKIP, from, 0, c.host - from);
	}
	if (c.kind != INPUT_DATA)
		return ask_table(d, step, &c);
	d->position += c.length;
	return output_run(d, step);
}

enum step_kind
decoder_next(struct decoder *d, struct step *step)
{
	if (!d->failed && d->awaiting_table)
		fail(d, IMAGE_MISUSE, d->asked.host, "decoder_next called before "
		    "decoder_table answered the TABLE step at %ju", U(d->asked.host));
	if (d->failed)
		return give_error(step);
	if (d->owed_length > 0) {
		uint64_t guest = d->owed_guest, length = d->owed_length;

		d->owed_length = 0;
		return give(step, STEP_ZEROS, 0, guest, length);
	}
	if (d->mode == DECODE_SEEKABLE)
		return next_seekable(d, step);
	return next_forward(d, step);
}

int
decoder_table(struct decoder *d, const unsigned char *buf, size_t len)
{
	if (d->failed)
		return -1;
	if (!d->awaiting_table || len != d->asked.length)
		return fail(d, IMAGE_MISUSE, d->asked.host, "decoder_table given %zu "
		    "bytes for a TABLE step of %ju", len,
		    U(d->awaiting_table ? d->asked.length : 0));
	d->awaiting_table = 0;
	if (d->mode == DECODE_FORWARD)
		d->position += len;
	switch (d->asked_for) {
	case INPUT_L1:
		if (parse_l1(d, buf, len) != 0)
			return -1;
		return d->l1_read == d->l1_bytes ? finish_l1(d) : 0;
	case INPUT_REFCOUNT_TABLE:
		if (parse_refcount_table(d, buf, len) != 0)
			return -1;
		return d->refcount_table_read == d->refcount_table_bytes ?
		    finish_refcount_table(d) : 0;
	case INPUT_L2:
		return parse_l2(d, buf);
	case INPUT_DATA:
	case INPUT_NONE:
		break;
	}
	return fail(d, IMAGE_MISUSE, d->asked.host, "decoder_table: no table asked for");
}

int
decoder_input_ended(struct decoder *d, uint64_t offset)
{
	const struct step *s = &d->asked;
	uint64_t cs = d->hdr.cluster_size, last_cluster;

	if (d->failed)
		return -1;
	if ((s->kind != STEP_TABLE && s->kind != STEP_SKIP && s->kind != STEP_DATA) ||
	    offset < s->host || offset - s->host >= s->length)
		return fail(d, IMAGE_MISUSE, offset, "decoder_input_ended: offset %ju "
		    "is not inside the last input step", U(offset));
	d->input_end = offset;
	d->awaiting_table = 0;
	if (s->kind == STEP_TABLE)
		return fail(d, IMAGE_TRUNCATED, offset, "image truncated at offset "
		    "%ju, inside the %s at %ju", U(offset), input_name(d->asked_for),
		    U(s->host));
	d->position = offset;
	if (s->kind == STEP_SKIP)
		return 0;	/* decoder_next says whether what follows is missing */
	/* A short last cluster reads as zeros past the end, as in QEMU. */
	last_cluster = (s->host + s->length - 1) / cs * cs;
	if (last_cluster >= offset) {
		uint64_t missing = round_up(offset, cs);

		return fail(d, IMAGE_TRUNCATED, offset, "image truncated at offset "
		    "%ju: the data cluster at %ju (guest offset %ju) is missing",
		    U(offset), U(missing), U(s->guest + (missing - s->host)));
	}
	d->owed_guest = s->guest + (offset - s->host);
	d->owed_length += s->length - (offset - s->host);
	return 0;
}

int
data_map_add(struct data_map *map, const struct step *step, struct data_map *done)
{
	if (step->kind == STEP_DATA && map->length > 0 &&
	    map->offset + map->length == step->guest) {
		map->length += step->length;
		return 0;
	}
	if (step->kind != STEP_DATA && step->kind != STEP_ZEROS &&
	    step->kind != STEP_DONE)
		return 0;
	if (step->kind == STEP_DATA && map->length == 0) {
		map->offset = step->guest;
		map->length = step->length;
		return 0;
	}
	if (map->length == 0)
		return 0;
	*done = *map;
	map->length = 0;
	if (step->kind == STEP_DATA) {
		map->offset = step->guest;
		map->length = step->length;
	}
	return 1;
}

/*
 * decoder_header.c: cluster 0 of a qcow2 image parsed and checked (see
 * decoder_header.h): the header fields, the extensions walked as QEMU walks
 * them, the feature bits, encryption and backing files refused with a
 * message that names what the image has, and the places and sizes of the
 * L1 and refcount tables.  The tables themselves are decoder_tables.c's.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>	/* vsnprintf, for messages */
#include <string.h>

#include "decoder_header.h"
#include "qcow2.h"
#include "util.h"

#define SHOWN_NAME		200	/* bytes of a name quoted in a message */
#define FEATURE_ENTRY		48	/* u8 type, u8 bit, 46 bytes of name */
#define FEATURE_NAME		46

/* Errors */

int
image_fail(struct image_error *err, enum image_fault fault, uint64_t offset,
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
		image_fail(err, IMAGE_NOT_QCOW2, 0, "not a qcow2 image");
		return 0;
	}
	if (len < 24) {
		image_fail(err, IMAGE_TRUNCATED, len,
		    "truncated header: the image ends at offset %zu", len);
		return 0;
	}
	version = get_be(p + HDR_VERSION, 4);
	if (version != 2 && version != 3) {
		image_fail(err, IMAGE_VERSION, HDR_VERSION, "unsupported qcow2 version %ju "
		    "(sqcow2 reads versions 2 and 3)", NUM(version));
		return 0;
	}
	bits = get_be(p + HDR_CLUSTER_BITS, 4);
	if (bits < MIN_CLUSTER_BITS || bits > MAX_CLUSTER_BITS) {
		image_fail(err, IMAGE_CLUSTER_BITS, HDR_CLUSTER_BITS, "bad cluster_bits %ju "
		    "(cluster sizes run from 512 B, 9, to 2 MiB, 21)", NUM(bits));
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

		if (end - at < EXT_HEADER ||
		    get_be(p + at + 4, 4) > end - at - EXT_HEADER)
			return image_fail(err, IMAGE_BAD_HEADER, at, "header extension at "
			    "offset %ju runs past the end of the header area at %ju",
			    NUM(at), NUM(end));
		type = get_be(p + at, 4);
		len = get_be(p + at + 4, 4);
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
		return image_fail(err, IMAGE_CORRUPT, 72, "image is marked corrupt: "
		    "repair it first with qemu-img check -r all");
	if (incompat & INCOMPAT_DATA_FILE) {
		quote(name, sizeof(name), ext->data_file, ext->data_file_len);
		return image_fail(err, IMAGE_DATA_FILE, 72, "image keeps its data in "
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
		return image_fail(err, IMAGE_FEATURE, 72,
		    "unknown incompatible feature bit %u%s", bit, name);
	}
	if (hdr->compression_type > COMPRESSION_ZSTD)
		return image_fail(err, IMAGE_FEATURE, HDR_COMPRESSION_TYPE,
		    "unknown compression type %u", hdr->compression_type);
	/* QEMU refuses the bit and the type that disagree, and so do we. */
	if ((hdr->compression_type != COMPRESSION_DEFLATE) !=
	    ((incompat & INCOMPAT_COMPRESSION) != 0))
		return image_fail(err, IMAGE_BAD_HEADER, HDR_COMPRESSION_TYPE,
		    "compression type %u with the incompatible feature bit 3 %s",
		    hdr->compression_type, incompat & INCOMPAT_COMPRESSION ? "set" :
		    "clear");
	hdr->dirty = (incompat & INCOMPAT_DIRTY) != 0;
	hdr->extended_l2 = (incompat & INCOMPAT_EXTENDED_L2) != 0;
	if (hdr->extended_l2 && hdr->cluster_bits < MIN_SUBCLUSTER_BITS)
		return image_fail(err, IMAGE_CLUSTER_BITS, 20, "extended L2 entries "
		    "need clusters of at least 16 KiB, not %ju bytes",
		    NUM(hdr->cluster_size));
	return 0;
}

/* Encryption and backing files: images that are not the disk alone. */
static int
check_not_alone(const unsigned char *p, uint64_t cs, struct image_error *err)
{
	static const char *const methods[] = { "", "AES", "LUKS" };
	uint64_t crypt = get_be(p + HDR_CRYPT_METHOD, 4);
	uint64_t offset = get_be(p + HDR_BACKING_OFFSET, 8);
	uint64_t len = get_be(p + HDR_BACKING_SIZE, 4);
	char name[SHOWN_NAME * 4 + 8];

	if (crypt != 0)
		return image_fail(err, IMAGE_ENCRYPTED, 32, "encrypted image "
		    "(crypt_method %ju%s%s): sqcow2 reads no encrypted images; "
		    "decrypt it first with qemu-img convert", NUM(crypt),
		    crypt < 3 ? ", " : "", crypt < 3 ? methods[crypt] : "");
	if (offset == 0)
		return 0;
	if (len > MAX_BACKING_NAME || offset > cs || len > cs - offset)
		return image_fail(err, IMAGE_BACKING_FILE, 8, "image has a backing "
		    "file (its name of %ju bytes at offset %ju is out of bounds): "
		    "the overlay alone is not the disk", NUM(len), NUM(offset));
	quote(name, sizeof(name), p + offset, len);
	return image_fail(err, IMAGE_BACKING_FILE, 8, "image has a backing file "
	    "'%s': the overlay alone is not the disk (flatten it first with "
	    "qemu-img convert -O qcow2)", name);
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
		return image_fail(err, IMAGE_L1_SIZE, 36, "L1 table of %ju entries "
		    "over QEMU's 32 MiB cap", NUM(hdr->l1_size));
	if (hdr->l1_size < qemu_needs)
		return image_fail(err, IMAGE_L1_SIZE, 36, "L1 table of %ju entries "
		    "too small for the virtual size %ju (it needs %ju)",
		    NUM(hdr->l1_size), NUM(hdr->size), NUM(qemu_needs));
	if (l1 % cs != 0)
		return image_fail(err, IMAGE_UNALIGNED, 40, "L1 table offset %ju not "
		    "aligned to the cluster size %ju", NUM(l1), NUM(cs));
	if (l1 > MAX_HOST_OFFSET - l1_len)
		return image_fail(err, IMAGE_BAD_HEADER, 40, "L1 table at offset %ju "
		    "runs past 64 PiB", NUM(l1));
	if (l1_len > 0 && l1 < cs)
		return image_fail(err, IMAGE_OVERLAP, 40, "L1 table at offset %ju "
		    "overlaps the header", NUM(l1));
	if (hdr->refcount_table_clusters == 0)
		return image_fail(err, IMAGE_BAD_HEADER, 56, "image has no refcount "
		    "table (refcount_table_clusters is 0)");
	if (hdr->refcount_table_clusters > MAX_REFCOUNT_TABLE_BYTES / cs)
		return image_fail(err, IMAGE_BAD_HEADER, 56, "refcount table of %ju "
		    "clusters over QEMU's 8 MiB cap", NUM(hdr->refcount_table_clusters));
	if (rt % cs != 0)
		return image_fail(err, IMAGE_UNALIGNED, 48, "refcount table offset %ju "
		    "not aligned to the cluster size %ju", NUM(rt), NUM(cs));
	if (rt > MAX_HOST_OFFSET - rt_len)
		return image_fail(err, IMAGE_BAD_HEADER, 48, "refcount table at offset "
		    "%ju runs past 64 PiB", NUM(rt));
	if (rt < cs)
		return image_fail(err, IMAGE_OVERLAP, 48, "refcount table at offset "
		    "%ju overlaps the header", NUM(rt));
	if (l1_len > 0 && l1 < rt + rt_len && rt < l1 + l1_len)
		return image_fail(err, IMAGE_OVERLAP, 48, "refcount table at offset "
		    "%ju overlaps the L1 table at %ju", NUM(rt), NUM(l1));
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
		return image_fail(err, IMAGE_TRUNCATED, len, "truncated header: the "
		    "image ends at offset %zu, inside its first cluster of %ju bytes",
		    len, NUM(cs));
	hdr->version = (int)get_be(p + HDR_VERSION, 4);
	hdr->cluster_bits = (unsigned)get_be(p + HDR_CLUSTER_BITS, 4);
	hdr->cluster_size = cs;
	hdr->size = get_be(p + HDR_SIZE, 8);
	hdr->virtual_size = hdr->size & ~(uint64_t)511;
	hdr->l1_size = (uint32_t)get_be(p + HDR_L1_SIZE, 4);
	hdr->l1_offset = get_be(p + HDR_L1_OFFSET, 8);
	hdr->refcount_table_offset = get_be(p + HDR_REFCOUNT_TABLE, 8);
	hdr->refcount_table_clusters = (uint32_t)get_be(p + HDR_REFCOUNT_CLUSTERS, 4);
	hdr->snapshots = (uint32_t)get_be(p + HDR_SNAPSHOTS, 4);
	hdr->header_length = V2_HEADER_LENGTH;
	hdr->refcount_order = REFCOUNT_ORDER;
	if (hdr->version == 3) {
		hdr->incompatible_features = get_be(p + HDR_INCOMPATIBLE, 8);
		hdr->compatible_features = get_be(p + HDR_COMPATIBLE, 8);
		hdr->autoclear_features = get_be(p + HDR_AUTOCLEAR, 8);
		hdr->refcount_order = (unsigned)get_be(p + HDR_REFCOUNT_ORDER, 4);
		hdr->header_length = (uint32_t)get_be(p + HDR_LENGTH, 4);
		if (hdr->header_length < V3_HEADER_LENGTH ||
		    hdr->header_length % 8 != 0 || hdr->header_length > cs)
			return image_fail(err, IMAGE_BAD_HEADER, 100, "bad header length "
			    "%ju (a multiple of 8 from 104 to the cluster size)",
			    NUM(hdr->header_length));
		if (hdr->header_length > HDR_COMPRESSION_TYPE)
			hdr->compression_type = p[HDR_COMPRESSION_TYPE];
		if (get_be(p + HDR_REFCOUNT_ORDER, 4) > MAX_REFCOUNT_ORDER)
			return image_fail(err, IMAGE_BAD_HEADER, HDR_REFCOUNT_ORDER,
			    "refcount_order %ju over 6", NUM(get_be(p + HDR_REFCOUNT_ORDER, 4)));
	}
	/* The extensions end where the backing file name begins, if it does. */
	ext_end = get_be(p + HDR_BACKING_OFFSET, 8);
	if (ext_end == 0 || ext_end > cs)
		ext_end = cs;
	if (walk_extensions(p, hdr->header_length, ext_end, &ext, err) != 0 ||
	    check_features(hdr, &ext, err) != 0 || check_not_alone(p, cs, err) != 0)
		return -1;

	hdr->l2_entry_size = hdr->extended_l2 ? 16 : 8;
	hdr->l2_entries = cs / hdr->l2_entry_size;
	hdr->l2_span = hdr->l2_entries * cs;
	hdr->subcluster_size = hdr->extended_l2 ? cs / L2_SUBCLUSTERS : cs;
	hdr->l1_used = ceil_div(hdr->virtual_size, hdr->l2_span);
	return check_tables(hdr, err);
}

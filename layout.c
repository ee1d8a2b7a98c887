/*
 * layout.c: where every cluster of the image goes, and the bytes of every
 * metadata cluster.  See layout.h for the order of the file.
 */
#include <string.h>

#include "layout.h"

#define QCOW_MAGIC		0x514649fbu
#define V2_HEADER_LENGTH	72
#define V3_HEADER_LENGTH	104
#define EXT_BACKING_FORMAT	0xe2792acau
#define EXT_HEADER		8		/* u32 type, u32 length */
#define MAX_BACKING_NAME	1023
#define MAX_BACKING_FORMAT	15		/* QEMU reads it into 16 bytes */
#define REFCOUNT_ORDER		4		/* 16-bit refcounts */
#define COPIED			(UINT64_C(1) << 63)
#define MAX_L1_BYTES		(UINT64_C(32) << 20)
#define MAX_REFCOUNT_TABLE_BYTES (UINT64_C(8) << 20)
#define MAX_HOST_OFFSET		(UINT64_C(1) << 56)	/* offset bits 9-55 */
#define EXHAUSTED		UINT64_MAX

static uint64_t
div_round_up(uint64_t n, uint64_t d)
{
	return n / d + (n % d != 0);
}

static void
put_be16(unsigned char *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void
put_be32(unsigned char *p, uint32_t v)
{
	put_be16(p, v >> 16);
	put_be16(p + 2, v);
}

static void
put_be64(unsigned char *p, uint64_t v)
{
	put_be32(p, v >> 32);
	put_be32(p + 4, v);
}

/* Sorted, each non-empty, each past the end of the one before, inside input_size. */
static enum layout_error
check_ranges(const struct range *ranges, size_t nranges, uint64_t input_size)
{
	uint64_t done = 0;

	for (size_t i = 0; i < nranges; i++) {
		const struct range *r = &ranges[i];

		if (r->length == 0 || (i > 0 && r->offset < done))
			return LAYOUT_RANGE_ORDER;
		if (r->offset > input_size || r->length > input_size - r->offset)
			return LAYOUT_RANGE_BEYOND;
		done = r->offset + r->length;
	}
	return LAYOUT_OK;
}

void
run_walk_init(struct run_walk *walk, const struct layout *lo)
{
	walk->ranges = lo->ranges;
	walk->nranges = lo->nranges;
	walk->next = 0;
	walk->cluster_bits = lo->cluster_bits;
	walk->first = walk->end = 0;
}

/* Ranges that share a cluster, or touch at a cluster boundary, make one run. */
int
run_next(struct run_walk *walk)
{
	unsigned bits = walk->cluster_bits;
	const struct range *r;

	if (walk->next == walk->nranges) {
		walk->first = walk->end = EXHAUSTED;
		return 0;
	}
	r = &walk->ranges[walk->next++];
	walk->first = r->offset >> bits;
	walk->end = ((r->offset + r->length - 1) >> bits) + 1;
	while (walk->next < walk->nranges) {
		r = &walk->ranges[walk->next];
		if ((r->offset >> bits) > walk->end)
			break;
		walk->end = ((r->offset + r->length - 1) >> bits) + 1;
		walk->next++;
	}
	return 1;
}

/* Data clusters and the L2 tables that map them. */
static void
count_stored(struct layout *lo)
{
	unsigned l2_bits = lo->cluster_bits - 3;
	uint64_t next_table = 0;	/* first L2 table not yet counted */
	struct run_walk walk;

	lo->data_clusters = lo->l2_tables = 0;
	run_walk_init(&walk, lo);
	while (run_next(&walk)) {
		uint64_t first_table = walk.first >> l2_bits;
		uint64_t last_table = (walk.end - 1) >> l2_bits;

		if (first_table < next_table)
			first_table = next_table;
		if (last_table >= first_table)
			lo->l2_tables += last_table - first_table + 1;
		next_table = last_table + 1;
		lo->data_clusters += walk.end - walk.first;
	}
}

/*
 * The refcount blocks count every cluster, themselves and the refcount
 * table included, so their number is the least fixed point of
 * blocks = ceil((fixed + table + blocks) / per_block).  It only grows, and
 * by less each round, so it settles in a few rounds.
 */
static void
size_refcounts(struct layout *lo, uint64_t fixed_clusters)
{
	uint64_t per_block = lo->cluster_size / 2;
	uint64_t blocks = 0, table = 0;

	for (;;) {
		uint64_t total = fixed_clusters + table + blocks;
		uint64_t need_blocks = div_round_up(total, per_block);
		uint64_t need_table = div_round_up(need_blocks * 8, lo->cluster_size);

		if (need_blocks == blocks && need_table == table)
			break;
		blocks = need_blocks;
		table = need_table;
	}
	lo->refcount_blocks = blocks;
	lo->refcount_table_clusters = table;
}

enum layout_error
layout_init(struct layout *lo, uint64_t input_size, unsigned cluster_bits,
    const struct range *ranges, size_t nranges)
{
	enum layout_error error;
	uint64_t cs, l2_coverage;

	memset(lo, 0, sizeof(*lo));
	lo->version = 3;
	if (cluster_bits < MIN_CLUSTER_BITS || cluster_bits > MAX_CLUSTER_BITS)
		return LAYOUT_BAD_CLUSTER_BITS;
	if ((error = check_ranges(ranges, nranges, input_size)) != LAYOUT_OK)
		return error;

	cs = UINT64_C(1) << cluster_bits;
	l2_coverage = cs * (cs / 8);
	/* Bounding the L1 table first keeps everything after it far from overflow. */
	if (input_size / l2_coverage > MAX_L1_BYTES / 8)
		return LAYOUT_L1_TOO_LARGE;

	lo->input_size = input_size;
	lo->virtual_size = div_round_up(input_size, 512) * 512;
	lo->cluster_bits = cluster_bits;
	lo->cluster_size = cs;
	lo->ranges = ranges;
	lo->nranges = nranges;
	lo->guest_clusters = div_round_up(lo->virtual_size, cs);
	lo->l1_entries = div_round_up(lo->virtual_size, l2_coverage);
	if (lo->l1_entries * 8 > MAX_L1_BYTES)
		return LAYOUT_L1_TOO_LARGE;
	lo->l1_clusters = div_round_up(lo->l1_entries * 8, cs);
	count_stored(lo);
	size_refcounts(lo, 1 + lo->l1_clusters + lo->l2_tables + lo->data_clusters);
	if (lo->refcount_table_clusters * cs > MAX_REFCOUNT_TABLE_BYTES)
		return LAYOUT_REFCOUNT_TOO_LARGE;

	lo->total_clusters = 1 + lo->l1_clusters + lo->refcount_table_clusters +
	    lo->refcount_blocks + lo->l2_tables + lo->data_clusters;
	if (lo->total_clusters > MAX_HOST_OFFSET / cs)
		return LAYOUT_IMAGE_TOO_LARGE;
	lo->l1_offset = cs;
	lo->refcount_table_offset = lo->l1_offset + lo->l1_clusters * cs;
	lo->refcount_blocks_offset = lo->refcount_table_offset +
	    lo->refcount_table_clusters * cs;
	lo->l2_offset = lo->refcount_blocks_offset + lo->refcount_blocks * cs;
	lo->data_offset = lo->l2_offset + lo->l2_tables * cs;
	return LAYOUT_OK;
}

const char *
layout_strerror(enum layout_error error)
{
	switch (error) {
	case LAYOUT_OK:
		return "no error";
	case LAYOUT_BAD_CLUSTER_BITS:
		return "cluster size must be a power of two from 512 to 2M";
	case LAYOUT_RANGE_ORDER:
		return "ranges not sorted, overlapping or empty";
	case LAYOUT_RANGE_BEYOND:
		return "range beyond the virtual size";
	case LAYOUT_L1_TOO_LARGE:
		return "virtual size too large for this cluster size (L1 table over 32 MiB)";
	case LAYOUT_REFCOUNT_TOO_LARGE:
		return "image too large (refcount table over 8 MiB)";
	case LAYOUT_IMAGE_TOO_LARGE:
		return "image too large (offsets past 64 PiB)";
	case LAYOUT_BAD_VERSION:
		return "qcow2 version must be 2 or 3";
	case LAYOUT_BACKING_TOO_LONG:
		return "backing file name over 1023 bytes";
	case LAYOUT_BACKING_DOES_NOT_FIT:
		return "backing file name does not fit in the first cluster";
	case LAYOUT_BACKING_FORMAT_TOO_LONG:
		return "backing format name over 15 bytes";
	}
	return "unknown error";
}

uint64_t
layout_image_size(const struct layout *lo)
{
	return lo->total_clusters * lo->cluster_size;
}

uint64_t
layout_meta_clusters(const struct layout *lo)
{
	return lo->total_clusters - lo->data_clusters;
}

void
layout_data_first(struct layout *lo)
{
	uint64_t cs = lo->cluster_size;

	lo->l1_offset = cs;
	lo->data_offset = lo->l1_offset + lo->l1_clusters * cs;
	lo->l2_offset = lo->data_offset + lo->data_clusters * cs;
	lo->refcount_blocks_offset = lo->l2_offset + lo->l2_tables * cs;
	lo->refcount_table_offset = lo->refcount_blocks_offset +
	    lo->refcount_blocks * cs;
}

void
meta_writer_init(struct meta_writer *mw, const struct layout *lo)
{
	memset(mw, 0, sizeof(*mw));
	mw->lo = lo;
	run_walk_init(&mw->l1_walk, lo);
	run_next(&mw->l1_walk);
	run_walk_init(&mw->l2_walk, lo);
	run_next(&mw->l2_walk);
}

static size_t
round_up8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static size_t
header_length(const struct layout *lo)
{
	return lo->version == 2 ? V2_HEADER_LENGTH : V3_HEADER_LENGTH;
}

/* Where the backing file name goes: after the extensions and their end. */
static size_t
backing_name_offset(const struct layout *lo)
{
	size_t offset = header_length(lo);

	if (lo->backing_format != NULL)
		offset += EXT_HEADER + round_up8(strlen(lo->backing_format));
	return offset + EXT_HEADER;
}

enum layout_error
layout_set_header(struct layout *lo, int version, const char *backing_file,
    const char *backing_format)
{
	lo->version = version;
	lo->backing_file = backing_file;
	lo->backing_format = backing_format;
	if (version != 2 && version != 3)
		return LAYOUT_BAD_VERSION;
	if (backing_format != NULL && strlen(backing_format) > MAX_BACKING_FORMAT)
		return LAYOUT_BACKING_FORMAT_TOO_LONG;
	if (backing_file == NULL)
		return LAYOUT_OK;
	if (strlen(backing_file) > MAX_BACKING_NAME)
		return LAYOUT_BACKING_TOO_LONG;
	if (backing_name_offset(lo) + strlen(backing_file) > lo->cluster_size)
		return LAYOUT_BACKING_DOES_NOT_FIT;
	return LAYOUT_OK;
}

/*
 * The header, then its extensions (the backing file's format, if known),
 * their end marker, and the backing file's name.
 */
static void
fill_header(const struct layout *lo, unsigned char *p)
{
	size_t ext = header_length(lo);

	put_be32(p + 0, QCOW_MAGIC);
	put_be32(p + 4, (uint32_t)lo->version);
	put_be32(p + 20, lo->cluster_bits);
	put_be64(p + 24, lo->virtual_size);
	put_be32(p + 36, (uint32_t)lo->l1_entries);
	put_be64(p + 40, lo->l1_offset);
	put_be64(p + 48, lo->refcount_table_offset);
	put_be32(p + 56, (uint32_t)lo->refcount_table_clusters);
	if (lo->version == 3) {
		put_be32(p + 96, REFCOUNT_ORDER);
		put_be32(p + 100, V3_HEADER_LENGTH);
	}
	if (lo->backing_format != NULL) {
		size_t length = strlen(lo->backing_format);

		put_be32(p + ext, EXT_BACKING_FORMAT);
		put_be32(p + ext + 4, (uint32_t)length);
		memcpy(p + ext + EXT_HEADER, lo->backing_format, length);
	}
	/* The end marker is eight zero bytes, already there. */
	if (lo->backing_file != NULL) {
		size_t offset = backing_name_offset(lo);
		size_t length = strlen(lo->backing_file);

		put_be64(p + 8, offset);
		put_be32(p + 16, (uint32_t)length);
		memcpy(p + offset, lo->backing_file, length);
	}
}

/* L1 entries of cluster `index` of the L1 table; tables are met in L1 order. */
static void
fill_l1(struct meta_writer *mw, uint64_t index, unsigned char *p)
{
	const struct layout *lo = mw->lo;
	unsigned l2_bits = lo->cluster_bits - 3;
	uint64_t per_cluster = lo->cluster_size / 8;
	uint64_t first = index * per_cluster;
	uint64_t end = first + per_cluster;
	struct run_walk *walk = &mw->l1_walk;

	if (end > lo->l1_entries)
		end = lo->l1_entries;
	for (uint64_t entry = first; entry < end; entry++) {
		while (walk->end != EXHAUSTED && (walk->end - 1) >> l2_bits < entry)
			run_next(walk);
		if (walk->first == EXHAUSTED)
			break;
		if (walk->first >> l2_bits > entry)
			continue;
		put_be64(p + (entry - first) * 8, (lo->l2_offset +
		    mw->l1_tables_seen++ * lo->cluster_size) | COPIED);
	}
}

static void
fill_refcount_table(const struct layout *lo, uint64_t index, unsigned char *p)
{
	uint64_t per_cluster = lo->cluster_size / 8;

	for (uint64_t i = 0; i < per_cluster; i++) {
		uint64_t block = index * per_cluster + i;

		if (block >= lo->refcount_blocks)
			break;
		put_be64(p + i * 8, lo->refcount_blocks_offset + block * lo->cluster_size);
	}
}

/* Every cluster of the file is used exactly once, so each counts 1. */
static void
fill_refcount_block(const struct layout *lo, uint64_t index, unsigned char *p)
{
	uint64_t per_block = lo->cluster_size / 2;
	uint64_t first = index * per_block;

	for (uint64_t i = 0; i < per_block && first + i < lo->total_clusters; i++)
		put_be16(p + i * 2, 1);
}

/* The next L2 table that maps anything: data clusters are met in guest order. */
static void
fill_l2(struct meta_writer *mw, unsigned char *p)
{
	const struct layout *lo = mw->lo;
	unsigned l2_bits = lo->cluster_bits - 3;
	struct run_walk *walk = &mw->l2_walk;
	uint64_t guest, base, limit;

	while (walk->end != EXHAUSTED && walk->end <= mw->mapped)
		run_next(walk);
	if (walk->first == EXHAUSTED)
		return;
	guest = walk->first > mw->mapped ? walk->first : mw->mapped;
	base = guest >> l2_bits << l2_bits;
	limit = base + (UINT64_C(1) << l2_bits);
	while (walk->first < limit) {
		uint64_t stop = walk->end < limit ? walk->end : limit;

		guest = walk->first > mw->mapped ? walk->first : mw->mapped;
		for (; guest < stop; guest++)
			put_be64(p + (guest - base) * 8, (lo->data_offset +
			    mw->data_seen++ * lo->cluster_size) | COPIED);
		mw->mapped = stop;
		if (stop < walk->end)
			break;
		run_next(walk);
	}
}

/* Whether host cluster `cluster` lies in the `count` clusters from offset. */
static int
in_section(const struct layout *lo, uint64_t cluster, uint64_t offset, uint64_t count)
{
	uint64_t first = offset >> lo->cluster_bits;

	return cluster >= first && cluster - first < count;
}

int
meta_writer_next(struct meta_writer *mw, unsigned char *cluster)
{
	const struct layout *lo = mw->lo;
	uint64_t c = mw->cluster;

	if (mw->emitted == layout_meta_clusters(lo))
		return 0;
	memset(cluster, 0, lo->cluster_size);
	if (c == 0)
		fill_header(lo, cluster);
	else if (in_section(lo, c, lo->l1_offset, lo->l1_clusters))
		fill_l1(mw, c - (lo->l1_offset >> lo->cluster_bits), cluster);
	else if (in_section(lo, c, lo->refcount_table_offset, lo->refcount_table_clusters))
		fill_refcount_table(lo, c - (lo->refcount_table_offset >> lo->cluster_bits), cluster);
	else if (in_section(lo, c, lo->refcount_blocks_offset, lo->refcount_blocks))
		fill_refcount_block(lo, c - (lo->refcount_blocks_offset >> lo->cluster_bits), cluster);
	else
		fill_l2(mw, cluster);
	mw->emitted++;
	/* The data clusters are not metadata: step over them. */
	if (++mw->cluster == lo->data_offset >> lo->cluster_bits)
		mw->cluster += lo->data_clusters;
	return 1;
}

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
#define ZERO_FLAG		UINT64_C(1)		/* bit 0 of an L2 entry */
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

static uint64_t
min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t
max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* A walk over the runs of ranges[0..n), before its first run. */
static void
walk_init(struct run_walk *walk, const struct range *ranges, size_t n,
    unsigned cluster_bits)
{
	walk->ranges = ranges;
	walk->nranges = n;
	walk->next = 0;
	walk->cluster_bits = cluster_bits;
	walk->first = walk->end = 0;
}

/* The same, on its first run. */
static void
walk_start(struct run_walk *walk, const struct range *ranges, size_t n,
    unsigned cluster_bits)
{
	walk_init(walk, ranges, n, cluster_bits);
	run_next(walk);
}

void
run_walk_init(struct run_walk *walk, const struct layout *lo)
{
	walk_init(walk, lo->ranges, lo->nranges, lo->cluster_bits);
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

int
run_walk_seek(struct run_walk *walk, const struct layout *lo, uint64_t k)
{
	run_walk_init(walk, lo);
	while (run_next(walk)) {
		if (k < walk->end - walk->first) {
			walk->first += k;
			return 1;
		}
		k -= walk->end - walk->first;
	}
	return 0;
}

/*
 * Zero clusters: those the zero runs touch, less those the data runs do.
 * The data walk keeps to the first run that ends past the zero run's
 * start, so each walk goes over its runs once.
 */
static uint64_t
count_zero_clusters(const struct layout *lo)
{
	struct run_walk data, zero;
	uint64_t n = 0;

	walk_start(&data, lo->ranges, lo->nranges, lo->cluster_bits);
	for (walk_start(&zero, lo->zeros, lo->nzeros, lo->cluster_bits);
	    zero.first != EXHAUSTED; run_next(&zero)) {
		n += zero.end - zero.first;
		while (data.end <= zero.first)
			run_next(&data);
		while (data.first < zero.end) {
			n -= min64(data.end, zero.end) - max64(data.first, zero.first);
			if (data.end > zero.end)
				break;
			run_next(&data);
		}
	}
	return n;
}

/*
 * Data clusters, zero clusters and the L2 tables that map either: the
 * runs of both kinds by their first cluster, each adding the tables it
 * reaches that none before it did.
 */
static void
count_clusters(struct layout *lo)
{
	unsigned l2_bits = lo->cluster_bits - 3;
	uint64_t next_table = 0;	/* first L2 table not yet counted */
	struct run_walk data, zero;

	lo->data_clusters = lo->l2_tables = 0;
	walk_start(&data, lo->ranges, lo->nranges, lo->cluster_bits);
	walk_start(&zero, lo->zeros, lo->nzeros, lo->cluster_bits);
	while (data.first != EXHAUSTED || zero.first != EXHAUSTED) {
		struct run_walk *walk = data.first <= zero.first ? &data : &zero;
		uint64_t first_table = max64(walk->first >> l2_bits, next_table);
		uint64_t last_table = (walk->end - 1) >> l2_bits;

		if (last_table >= first_table) {
			lo->l2_tables += last_table - first_table + 1;
			next_table = last_table + 1;
		}
		if (walk == &data)
			lo->data_clusters += walk->end - walk->first;
		run_next(walk);
	}
	lo->zero_clusters = count_zero_clusters(lo);
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

/*
 * Count and place in the stream order everything lo's ranges and zeros
 * make; the limits that the counts can break.
 */
static enum layout_error
size_and_place(struct layout *lo)
{
	uint64_t cs = lo->cluster_size;

	count_clusters(lo);
	size_refcounts(lo, 1 + lo->l1_clusters + lo->l2_tables + lo->data_clusters);
	if (lo->refcount_table_clusters * cs > MAX_REFCOUNT_TABLE_BYTES)
		return LAYOUT_REFCOUNT_TOO_LARGE;

	lo->total_clusters = 1 + lo->l1_clusters + lo->refcount_table_clusters +
	    lo->refcount_blocks + lo->l2_tables + lo->data_clusters;
	if (lo->total_clusters > MAX_HOST_OFFSET / cs)
		return LAYOUT_IMAGE_TOO_LARGE;
	lo->data_first = 0;
	lo->l1_offset = cs;
	lo->refcount_table_offset = lo->l1_offset + lo->l1_clusters * cs;
	lo->refcount_blocks_offset = lo->refcount_table_offset +
	    lo->refcount_table_clusters * cs;
	lo->l2_offset = lo->refcount_blocks_offset + lo->refcount_blocks * cs;
	lo->data_offset = lo->l2_offset + lo->l2_tables * cs;
	return LAYOUT_OK;
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
	return size_and_place(lo);
}

enum layout_error
layout_set_zeros(struct layout *lo, const struct range *zeros, size_t nzeros)
{
	struct layout next = *lo;
	enum layout_error error;

	if ((error = check_ranges(zeros, nzeros, lo->input_size)) != LAYOUT_OK)
		return error;
	next.zeros = zeros;
	next.nzeros = nzeros;
	if ((error = size_and_place(&next)) != LAYOUT_OK)
		return error;
	if (next.version == 2 && next.zero_clusters > 0)
		return LAYOUT_ZEROS_NEED_V3;
	if (lo->data_first)
		layout_data_first(&next);
	*lo = next;
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
	case LAYOUT_ZEROS_NEED_V3:
		return "zero clusters need qcow2 version 3 (compat 1.1)";
	}
	return "unknown error";
}

/*
 * QEMU reads what lies past the end of the file as zeros, and its check
 * lets a table or cluster run past it by less than a cluster.  7-Zip
 * sizes an image by its L1 table and, as whole clusters, its data, L2
 * tables and refcount table, never its refcount blocks: a file that ends
 * inside one of those clusters it calls broken (or, for an L2 table, no
 * image at all).  Only a refcount block may end the file early, after its
 * last refcount, 2 bytes each.
 */
uint64_t
layout_image_size(const struct layout *lo)
{
	uint64_t cs = lo->cluster_size, last = lo->total_clusters - 1;
	uint64_t blocks_at = lo->refcount_blocks_offset >> lo->cluster_bits;

	if (last >= blocks_at && last - blocks_at < lo->refcount_blocks)
		return last * cs + 2 * (lo->total_clusters -
		    (lo->refcount_blocks - 1) * (cs / 2));
	return lo->total_clusters * cs;
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

	lo->data_first = 1;
	lo->l1_offset = cs;
	lo->data_offset = lo->l1_offset + lo->l1_clusters * cs;
	lo->l2_offset = lo->data_offset + lo->data_clusters * cs;
	lo->refcount_blocks_offset = lo->l2_offset + lo->l2_tables * cs;
	lo->refcount_table_offset = lo->refcount_blocks_offset +
	    lo->refcount_blocks * cs;
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
	if (version == 2 && lo->zero_clusters > 0)
		return LAYOUT_ZEROS_NEED_V3;
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

/* Table walks */

/*
 * Count the data clusters below guest cluster g (at least counted), and
 * move both walks to their first runs that end past it.
 */
static void
count_to(struct table_walk *tw, uint64_t g)
{
	struct run_walk *data = &tw->data;

	while (data->first < g) {
		uint64_t from = max64(data->first, tw->counted), to = min64(data->end, g);

		if (to > from)
			tw->data_below += to - from;
		if (data->end > g)
			break;
		run_next(data);
	}
	while (tw->zero.end <= g)
		run_next(&tw->zero);
	tw->counted = g;
}

/* Make the first table at or after L1 index t the current one. */
static void
find_table(struct table_walk *tw, uint64_t t)
{
	unsigned l2_bits = tw->data.cluster_bits - 3;
	uint64_t base = t << l2_bits, next = EXHAUSTED;

	count_to(tw, base);
	if (tw->data.first != EXHAUSTED)
		next = max64(tw->data.first, base) >> l2_bits;
	if (tw->zero.first != EXHAUSTED)
		next = min64(next, max64(tw->zero.first, base) >> l2_bits);
	tw->table = next;
	if (next != EXHAUSTED)
		count_to(tw, next << l2_bits);
}

static void
next_table(struct table_walk *tw)
{
	tw->ordinal++;
	find_table(tw, tw->table + 1);
}

/*
 * Start tw at the first table at or after L1 index entry, or at the
 * table of that ordinal, whichever comes first; past the last table if
 * neither is.  The runs of both kinds by their first cluster give the
 * tables in order, as in count_clusters, a run at a time.
 */
static void
seek_table(struct table_walk *tw, const struct layout *lo, uint64_t entry,
    uint64_t ordinal)
{
	unsigned l2_bits = lo->cluster_bits - 3;
	uint64_t next = 0, seen = 0, target = EXHAUSTED;
	struct run_walk data, zero;

	walk_start(&data, lo->ranges, lo->nranges, lo->cluster_bits);
	walk_start(&zero, lo->zeros, lo->nzeros, lo->cluster_bits);
	while (data.first != EXHAUSTED || zero.first != EXHAUSTED) {
		struct run_walk *walk = data.first <= zero.first ? &data : &zero;
		uint64_t first = max64(walk->first >> l2_bits, next);
		uint64_t last = (walk->end - 1) >> l2_bits;

		if (last >= first) {
			if (last >= entry)
				target = max64(first, entry);
			if (ordinal - seen <= last - first)
				target = min64(target, first + (ordinal - seen));
			if (target != EXHAUSTED) {
				seen += target - first;
				break;
			}
			seen += last - first + 1;
			next = last + 1;
		}
		run_next(walk);
	}
	walk_start(&tw->data, lo->ranges, lo->nranges, lo->cluster_bits);
	walk_start(&tw->zero, lo->zeros, lo->nzeros, lo->cluster_bits);
	tw->counted = tw->data_below = 0;
	tw->ordinal = seen;
	tw->table = target;
	if (target != EXHAUSTED)
		count_to(tw, target << l2_bits);
}

/* The metadata */

/* L1 entries of cluster `index` of the L1 table; tables are met in L1 order. */
static void
fill_l1(struct meta_writer *mw, uint64_t index, unsigned char *p)
{
	const struct layout *lo = mw->lo;
	uint64_t per_cluster = lo->cluster_size / 8;
	uint64_t first = index * per_cluster;
	uint64_t end = min64(first + per_cluster, lo->l1_entries);
	struct table_walk *tw = &mw->l1;

	for (; tw->table < end; next_table(tw))
		put_be64(p + (tw->table - first) * 8, (lo->l2_offset +
		    tw->ordinal * lo->cluster_size) | COPIED);
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

/*
 * The next L2 table: the zero flag for the clusters the zero runs reach,
 * then, over it where a cluster is both, the data clusters in guest
 * order.
 */
static void
fill_l2(struct meta_writer *mw, unsigned char *p)
{
	const struct layout *lo = mw->lo;
	unsigned l2_bits = lo->cluster_bits - 3;
	struct table_walk *tw = &mw->l2;
	struct run_walk *walk;
	uint64_t base, limit;

	if (tw->table == EXHAUSTED)
		return;
	base = tw->table << l2_bits;
	limit = base + (UINT64_C(1) << l2_bits);
	for (walk = &tw->zero; walk->first < limit; run_next(walk)) {
		uint64_t end = min64(walk->end, limit);

		for (uint64_t g = max64(walk->first, base); g < end; g++)
			put_be64(p + (g - base) * 8, ZERO_FLAG);
		if (walk->end > limit)
			break;
	}
	for (walk = &tw->data; walk->first < limit; run_next(walk)) {
		uint64_t end = min64(walk->end, limit);

		for (uint64_t g = max64(walk->first, base); g < end; g++)
			put_be64(p + (g - base) * 8, (lo->data_offset +
			    tw->data_below++ * lo->cluster_size) | COPIED);
		if (walk->end > limit)
			break;
	}
	tw->counted = limit;
	next_table(tw);
}

/* Whether host cluster `cluster` lies in the `count` clusters from offset. */
static int
in_section(const struct layout *lo, uint64_t cluster, uint64_t offset, uint64_t count)
{
	uint64_t first = offset >> lo->cluster_bits;

	return cluster >= first && cluster - first < count;
}

void
meta_writer_init(struct meta_writer *mw, const struct layout *lo)
{
	memset(mw, 0, sizeof(*mw));
	mw->lo = lo;
	meta_writer_seek(mw, 0);
}

/*
 * Where the L1 and the L2 walks are once every metadata cluster before
 * `cluster` has been filled: an L1 cluster starts at its first entry, an
 * L2 cluster at the table of its ordinal.
 */
void
meta_writer_seek(struct meta_writer *mw, uint64_t cluster)
{
	const struct layout *lo = mw->lo;
	unsigned bits = lo->cluster_bits;
	uint64_t data_at = lo->data_offset >> bits;
	uint64_t l1_at = lo->l1_offset >> bits, l2_at = lo->l2_offset >> bits;
	uint64_t l1_done, l2_done;

	if (cluster >= data_at && cluster - data_at < lo->data_clusters)
		cluster = data_at + lo->data_clusters;
	cluster = min64(cluster, lo->total_clusters);
	mw->cluster = cluster;
	mw->emitted = cluster < data_at ? cluster : cluster - lo->data_clusters;
	l1_done = cluster <= l1_at ? 0 : min64(cluster - l1_at, lo->l1_clusters);
	l2_done = cluster <= l2_at ? 0 : min64(cluster - l2_at, lo->l2_tables);
	seek_table(&mw->l1, lo, l1_done * (lo->cluster_size / 8), EXHAUSTED);
	seek_table(&mw->l2, lo, EXHAUSTED, l2_done);
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

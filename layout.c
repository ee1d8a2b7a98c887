/*
 * layout.c: where every cluster of the image goes, and how many there are
 * of each kind; the bytes of the metadata clusters are meta.c's.  See
 * layout.h for the order of the file.
 */
#include <string.h>

#include "layout.h"
#include "util.h"


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

void
run_walk_start(struct run_walk *walk, const struct range *ranges, size_t n,
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
		walk->first = walk->end = WALK_END;
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

	run_walk_start(&data, lo->ranges, lo->nranges, lo->cluster_bits);
	for (run_walk_start(&zero, lo->zeros, lo->nzeros, lo->cluster_bits);
	    zero.first != WALK_END; run_next(&zero)) {
		n += zero.end - zero.first;
		while (data.end <= zero.first)
			run_next(&data);
		while (data.first < zero.end) {
			n -= min_u64(data.end, zero.end) - max_u64(data.first, zero.first);
			if (data.end > zero.end)
				break;
			run_next(&data);
		}
	}
	return n;
}

void
run_merge_start(struct run_merge *m, const struct layout *lo)
{
	run_walk_start(&m->data, lo->ranges, lo->nranges, lo->cluster_bits);
	run_walk_start(&m->zero, lo->zeros, lo->nzeros, lo->cluster_bits);
	m->run = NULL;
	m->next_table = 0;
	m->l2_bits = lo->cluster_bits - 3;
}

int
run_merge_next(struct run_merge *m)
{
	uint64_t last;

	if (m->run != NULL)
		run_next(m->run);
	if (m->data.first == WALK_END && m->zero.first == WALK_END)
		return 0;
	m->run = m->data.first <= m->zero.first ? &m->data : &m->zero;
	m->tables_from = max_u64(m->run->first >> m->l2_bits, m->next_table);
	last = (m->run->end - 1) >> m->l2_bits;
	m->tables_to = last >= m->tables_from ? last + 1 : m->tables_from;
	m->next_table = m->tables_to;
	return 1;
}

/* Data clusters, zero clusters and the L2 tables that map either. */
static void
count_clusters(struct layout *lo)
{
	struct run_merge m;

	lo->data_clusters = lo->l2_tables = 0;
	for (run_merge_start(&m, lo); run_merge_next(&m); ) {
		lo->l2_tables += m.tables_to - m.tables_from;
		if (m.run == &m.data)
			lo->data_clusters += m.run->end - m.run->first;
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
		uint64_t need_blocks = ceil_div(total, per_block);
		uint64_t need_table = ceil_div(need_blocks * 8, lo->cluster_size);

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
	lo->gap_clusters = 0;
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
	lo->virtual_size = ceil_div(input_size, 512) * 512;
	lo->cluster_bits = cluster_bits;
	lo->cluster_size = cs;
	lo->ranges = ranges;
	lo->nranges = nranges;
	lo->guest_clusters = ceil_div(lo->virtual_size, cs);
	lo->l1_entries = ceil_div(lo->virtual_size, l2_coverage);
	if (lo->l1_entries * 8 > MAX_L1_BYTES)
		return LAYOUT_L1_TOO_LARGE;
	lo->l1_clusters = ceil_div(lo->l1_entries * 8, cs);
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
	case LAYOUT_NOT_WITHIN:
		return "more metadata or data than the plan has room for";
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
	return lo->total_clusters - lo->data_clusters - lo->gap_clusters;
}

/*
 * The file ends with the data, where it would with no gap, so the
 * refcount blocks and their table count a known number of clusters: no
 * fixed point, and never more than the plan's, which count more.
 */
enum layout_error
layout_within(struct layout *lo, const struct layout *plan)
{
	uint64_t cs = lo->cluster_size, data_at = plan->data_offset / cs;
	uint64_t end = data_at + lo->data_clusters, blocks, table, meta;

	if (lo->cluster_bits != plan->cluster_bits ||
	    lo->l1_clusters != plan->l1_clusters ||
	    lo->data_clusters > plan->data_clusters)
		return LAYOUT_NOT_WITHIN;
	if (lo->data_clusters == 0)
		return LAYOUT_OK;
	blocks = ceil_div(end, cs / 2);
	table = ceil_div(blocks * 8, cs);
	meta = 1 + lo->l1_clusters + table + blocks + lo->l2_tables;
	if (meta > data_at)
		return LAYOUT_NOT_WITHIN;

	lo->refcount_table_clusters = table;
	lo->refcount_blocks = blocks;
	lo->refcount_blocks_offset = lo->refcount_table_offset + table * cs;
	lo->l2_offset = lo->refcount_blocks_offset + blocks * cs;
	lo->data_offset = plan->data_offset;
	lo->gap_clusters = data_at - meta;
	lo->total_clusters = end;
	return LAYOUT_OK;
}

size_t
layout_header_length(const struct layout *lo)
{
	return lo->version == 2 ? V2_HEADER_LENGTH : V3_HEADER_LENGTH;
}

size_t
layout_backing_name_offset(const struct layout *lo)
{
	size_t offset = layout_header_length(lo);

	if (lo->backing_format != NULL)
		offset += EXT_HEADER + (size_t)round_up(strlen(lo->backing_format), 8);
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
	if (layout_backing_name_offset(lo) + strlen(backing_file) > lo->cluster_size)
		return LAYOUT_BACKING_DOES_NOT_FIT;
	return LAYOUT_OK;
}

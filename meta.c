/*
 * meta.c: the bytes of every metadata cluster of a layout, in the order of
 * the file or from any cluster on: the header and its extensions, the L1
 * and L2 tables, the refcount table and blocks.  Pure, as layout.c is,
 * and built on it; the contracts are in meta.h.
 */
#include <string.h>

#include "meta.h"
#include "util.h"

/*
 * The header, then its extensions (the backing file's format, if known),
 * their end marker, and the backing file's name.
 */
static void
fill_header(const struct layout *lo, unsigned char *p)
{
	size_t ext = layout_header_length(lo);

	put_be(p + HDR_MAGIC, 4, QCOW2_MAGIC);
	put_be(p + HDR_VERSION, 4, (uint64_t)lo->version);
	put_be(p + HDR_CLUSTER_BITS, 4, lo->cluster_bits);
	put_be(p + HDR_SIZE, 8, lo->virtual_size);
	put_be(p + HDR_L1_SIZE, 4, lo->l1_entries);
	put_be(p + HDR_L1_OFFSET, 8, lo->l1_offset);
	put_be(p + HDR_REFCOUNT_TABLE, 8, lo->refcount_table_offset);
	put_be(p + HDR_REFCOUNT_CLUSTERS, 4, lo->refcount_table_clusters);
	if (lo->version == 3) {
		put_be(p + HDR_REFCOUNT_ORDER, 4, REFCOUNT_ORDER);
		put_be(p + HDR_LENGTH, 4, V3_HEADER_LENGTH);
	}
	if (lo->backing_format != NULL) {
		size_t length = strlen(lo->backing_format);

		put_be(p + ext, 4, EXT_BACKING_FORMAT);
		put_be(p + ext + 4, 4, length);
		memcpy(p + ext + EXT_HEADER, lo->backing_format, length);
	}
	/* The end marker is eight zero bytes, already there. */
	if (lo->backing_file != NULL) {
		size_t offset = layout_backing_name_offset(lo);
		size_t length = strlen(lo->backing_file);

		put_be(p + HDR_BACKING_OFFSET, 8, offset);
		put_be(p + HDR_BACKING_SIZE, 4, length);
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
		uint64_t from = max_u64(data->first, tw->counted), to = min_u64(data->end, g);

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
	uint64_t base = t << l2_bits, next = WALK_END;

	count_to(tw, base);
	if (tw->data.first != WALK_END)
		next = max_u64(tw->data.first, base) >> l2_bits;
	if (tw->zero.first != WALK_END)
		next = min_u64(next, max_u64(tw->zero.first, base) >> l2_bits);
	tw->table = next;
	if (next != WALK_END)
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
 * neither is.  The tables come in order a run at a time (run_merge).
 */
static void
seek_table(struct table_walk *tw, const struct layout *lo, uint64_t entry,
    uint64_t ordinal)
{
	unsigned l2_bits = lo->cluster_bits - 3;
	uint64_t seen = 0, target = WALK_END;
	struct run_merge m;

	for (run_merge_start(&m, lo); run_merge_next(&m); ) {
		uint64_t first = m.tables_from, count = m.tables_to - m.tables_from;

		if (count == 0)
			continue;
		if (first + count > entry)
			target = max_u64(first, entry);
		if (ordinal - seen < count)
			target = min_u64(target, first + (ordinal - seen));
		if (target != WALK_END) {
			seen += target - first;
			break;
		}
		seen += count;
	}
	run_walk_start(&tw->data, lo->ranges, lo->nranges, lo->cluster_bits);
	run_walk_start(&tw->zero, lo->zeros, lo->nzeros, lo->cluster_bits);
	tw->counted = tw->data_below = 0;
	tw->ordinal = seen;
	tw->table = target;
	if (target != WALK_END)
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
	uint64_t end = min_u64(first + per_cluster, lo->l1_entries);
	struct table_walk *tw = &mw->l1;

	for (; tw->table < end; next_table(tw))
		put_be(p + (tw->table - first) * 8, 8, (lo->l2_offset +
		    tw->ordinal * lo->cluster_size) | ENTRY_COPIED);
}

static void
fill_refcount_table(const struct layout *lo, uint64_t index, unsigned char *p)
{
	uint64_t per_cluster = lo->cluster_size / 8;

	for (uint64_t i = 0; i < per_cluster; i++) {
		uint64_t block = index * per_cluster + i;

		if (block >= lo->refcount_blocks)
			break;
		put_be(p + i * 8, 8, lo->refcount_blocks_offset + block * lo->cluster_size);
	}
}

/* The metadata clusters come first, the L2 tables last; a gap may follow. */
static uint64_t
meta_end(const struct layout *lo)
{
	return (lo->l2_offset >> lo->cluster_bits) + lo->l2_tables;
}

/* The first metadata cluster at or after host cluster c, or the file's end. */
static uint64_t
meta_from(const struct layout *lo, uint64_t c)
{
	return c < meta_end(lo) ? c : lo->total_clusters;
}

/* Every cluster of the file but the gap is used exactly once: each counts 1. */
static void
fill_refcount_block(const struct layout *lo, uint64_t index, unsigned char *p)
{
	uint64_t per_block = lo->cluster_size / 2;
	uint64_t first = index * per_block, gap_at = meta_end(lo);

	for (uint64_t i = 0; i < per_block && first + i < lo->total_clusters; i++)
		if (first + i < gap_at || first + i >= gap_at + lo->gap_clusters)
			put_be(p + i * 2, 2, 1);
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

	if (tw->table == WALK_END)
		return;
	base = tw->table << l2_bits;
	limit = base + (UINT64_C(1) << l2_bits);
	for (walk = &tw->zero; walk->first < limit; run_next(walk)) {
		uint64_t end = min_u64(walk->end, limit);

		for (uint64_t g = max_u64(walk->first, base); g < end; g++)
			put_be(p + (g - base) * 8, 8, ENTRY_ZERO);
		if (walk->end > limit)
			break;
	}
	for (walk = &tw->data; walk->first < limit; run_next(walk)) {
		uint64_t end = min_u64(walk->end, limit);

		for (uint64_t g = max_u64(walk->first, base); g < end; g++)
			put_be(p + (g - base) * 8, 8, (lo->data_offset +
			    tw->data_below++ * lo->cluster_size) | ENTRY_COPIED);
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
	uint64_t l1_at = lo->l1_offset >> bits, l2_at = lo->l2_offset >> bits;
	uint64_t l1_done, l2_done;

	cluster = meta_from(lo, cluster);
	mw->cluster = cluster;
	mw->emitted = min_u64(cluster, meta_end(lo));
	l1_done = cluster <= l1_at ? 0 : min_u64(cluster - l1_at, lo->l1_clusters);
	l2_done = cluster <= l2_at ? 0 : min_u64(cluster - l2_at, lo->l2_tables);
	seek_table(&mw->l1, lo, l1_done * (lo->cluster_size / 8), WALK_END);
	seek_table(&mw->l2, lo, WALK_END, l2_done);
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
	/* Past the last table, over the gap and the data. */
	mw->cluster = meta_from(lo, mw->cluster + 1);
	return 1;
}

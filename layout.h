/*
 * layout.h: the qcow2 image that sqcow2 writes, computed before a byte of it
 * is written.  Pure arithmetic: nothing here reads, writes, allocates or exits.
 *
 * The file is laid out as
 *
 *	header | L1 table | refcount table | refcount blocks | L2 tables | data
 *
 * with the L2 tables in L1 order and the data clusters in guest order, so
 * that the whole image can be written in one forward pass, and read in
 * one too: every table comes before the clusters it maps.  A writer that
 * learns which clusters to store only while it copies them (-o drops
 * those of zeros) keeps this order: it lays out the plan, every cluster
 * that the ranges touch, writes the data it keeps from the plan's data
 * offset on, and only then the tables, which are fewer than the plan's
 * or as many (layout_within):
 *
 *	header | L1 | refcount table | refcount blocks | L2 tables | gap | data
 *
 * The gap is what the tables did not use of the plan's room for them: no
 * table points into it, the refcounts count it 0, it is a hole in the
 * file, and it comes after the last table, where a reader of a pipe
 * knows that no cluster of it is mapped.  The header and the L1 table,
 * whose size the virtual size alone sets, come first: no guest data lands
 * where a file system probe of the image file would look for a
 * superblock.
 *
 * A guest cluster is data (stored: a host cluster of its own) if a data
 * range touches it, a zero cluster (an L2 entry of the zero flag alone,
 * no host cluster) if only a zero range does, and else unallocated.
 * Every byte of the file is a function of the layout and the input, and
 * the meta writer (meta.h) and the run walk can start anywhere: a slice
 * of the file costs what its bytes cost.
 */
#ifndef LAYOUT_H
#define LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "qcow2.h"
#include "range_list.h"

struct layout {
	uint64_t input_size;	/* bytes of raw input */
	uint64_t virtual_size;	/* input_size rounded up to 512 */
	unsigned cluster_bits;
	uint64_t cluster_size;

	const struct range *ranges;	/* data: sorted, merged; not owned */
	size_t nranges;
	const struct range *zeros;	/* zeros: sorted, merged; not owned */
	size_t nzeros;

	int version;			/* 3 (compat 1.1) or 2 (compat 0.10) */
	const char *backing_file;	/* NULL: none; not owned */
	const char *backing_format;	/* NULL: not said; not owned */

	uint64_t guest_clusters;
	uint64_t l1_entries;
	uint64_t l1_clusters;
	uint64_t refcount_table_clusters;
	uint64_t refcount_blocks;
	uint64_t l2_tables;		/* for every data or zero cluster */
	uint64_t data_clusters;
	uint64_t zero_clusters;		/* touched by zeros, not by data */
	uint64_t total_clusters;	/* of the file, the gap too */
	uint64_t gap_clusters;		/* unused: after the L2 tables, before data */

	/* host offsets, in bytes */
	uint64_t l1_offset;
	uint64_t refcount_table_offset;
	uint64_t refcount_blocks_offset;
	uint64_t l2_offset;
	uint64_t data_offset;
};

enum layout_error {
	LAYOUT_OK,
	LAYOUT_BAD_CLUSTER_BITS,
	LAYOUT_RANGE_ORDER,	/* ranges not sorted, overlapping or empty */
	LAYOUT_RANGE_BEYOND,	/* a range ends past input_size */
	LAYOUT_L1_TOO_LARGE,	/* QEMU opens no L1 table over 32 MiB */
	LAYOUT_REFCOUNT_TOO_LARGE, /* nor a refcount table over 8 MiB */
	LAYOUT_IMAGE_TOO_LARGE,	/* host offsets have 56 bits */
	LAYOUT_BAD_VERSION,
	LAYOUT_BACKING_TOO_LONG,	/* the name has at most 1023 bytes */
	LAYOUT_BACKING_DOES_NOT_FIT,	/* it must fit in cluster 0 */
	LAYOUT_BACKING_FORMAT_TOO_LONG,	/* QEMU reads at most 15 bytes */
	LAYOUT_ZEROS_NEED_V3,		/* version 2 has no zero flag */
	LAYOUT_NOT_WITHIN,		/* more than the plan has room for */
};

/*
 * A walk over the guest clusters that the ranges touch, as runs
 * [first, end) of cluster numbers, ascending, disjoint and non-adjacent;
 * past the last run both are WALK_END.
 */
#define WALK_END	UINT64_MAX
struct run_walk {
	const struct range *ranges;
	size_t nranges;
	size_t next;
	unsigned cluster_bits;
	uint64_t first, end;	/* the current run; end == 0 before the first */
};

/*
 * The runs of data and of zeros together, in the order of their first
 * cluster, each with the L2 tables it reaches that no run before it did,
 * [tables_from, tables_to): the one walk that meets the L2 tables of a
 * layout in L1 order, for counting them and for seeking among them.
 */
struct run_merge {
	struct run_walk data, zero;
	struct run_walk *run;		/* the current one: &data or &zero */
	uint64_t tables_from, tables_to;
	uint64_t next_table;		/* the first table no run has reached */
	unsigned l2_bits;		/* guest clusters an L2 table maps, as bits */
};

/*
 * Compute the layout of an image of input_size bytes with clusters of
 * 1 << cluster_bits bytes whose data lies in ranges[0..nranges), which must
 * be sorted by offset, non-empty and non-overlapping (see ranges_merge).
 * The ranges are referenced, not copied: they must outlive lo.  The image
 * is a version 3 one with no backing file until layout_set_header says
 * otherwise.  Returns LAYOUT_OK, or the first reason the image cannot be
 * made.
 */
enum layout_error layout_init(struct layout *lo, uint64_t input_size,
    unsigned cluster_bits, const struct range *ranges, size_t nranges);

/*
 * Make the header of version 2 or 3, naming a backing file (NULL: none)
 * and its format (NULL: not said), which must outlive lo.  The name goes
 * in cluster 0, after the header extensions, and must fit there.  Changes
 * no offset or size.  Returns LAYOUT_OK or why the header cannot be made.
 */
enum layout_error layout_set_header(struct layout *lo, int version,
    const char *backing_file, const char *backing_format);

/*
 * Make each guest cluster that zeros[0..nzeros) (sorted, merged, kept)
 * touch and no data range does a zero cluster, all zeros; recount and
 * place again in the stream order, gaps gone.  On error lo is unchanged.
 * Version 2 has no zero flag: LAYOUT_ZEROS_NEED_V3, here or from
 * layout_set_header.
 */
enum layout_error layout_set_zeros(struct layout *lo, const struct range *zeros,
    size_t nzeros);

/*
 * The bytes of lo's header before its extensions (72 for version 2, 104
 * for 3), and where in cluster 0 the backing file's name goes: after the
 * extensions and their end marker.
 */
size_t layout_header_length(const struct layout *lo);
size_t layout_backing_name_offset(const struct layout *lo);

/* What went wrong, as a short lowercase phrase. */
const char *layout_strerror(enum layout_error);

/*
 * The exact size in bytes of the image file: whole clusters, but a last
 * cluster that is a refcount block ends after its last refcount (the rest
 * is zeros).  Any other stays whole: 7-Zip refuses a data, L2 or refcount
 * table cluster cut short.  A gap never ends the file.
 */
uint64_t layout_image_size(const struct layout *lo);

/* Clusters of metadata: header, tables and refcounts; not data, not the gap. */
uint64_t layout_meta_clusters(const struct layout *lo);

/*
 * Move lo's data (lo from layout_init, its header and zeros set: call it
 * last) to plan's data offset, plan a layout of the same disk and
 * cluster size with room for lo's metadata before its data (plan's data
 * clusters at least as many as lo's, and its L2 tables, do): the refcounts
 * counted again for the longer file, a gap left between the L2 tables and
 * the data.  Without data lo stays as it is.  Returns LAYOUT_OK, or
 * LAYOUT_NOT_WITHIN with lo unchanged.
 */
enum layout_error layout_within(struct layout *lo, const struct layout *plan);

/*
 * Start a walk over the runs of clusters that lo stores (or that
 * ranges[0..n) touch, at clusters of 1 << cluster_bits bytes).  run_next
 * moves to the next run and returns 1, or returns 0 after the last one.
 */
void run_walk_init(struct run_walk *walk, const struct layout *lo);
int run_next(struct run_walk *walk);

/*
 * A walk over the runs of ranges[0..n), already on its first run, whose
 * first and end are UINT64_MAX when there is none.
 */
void run_walk_start(struct run_walk *walk, const struct range *ranges, size_t n,
    unsigned cluster_bits);

/*
 * Start merging the runs of lo's data and zeros; run_merge_next moves to
 * the next run and returns 1, or returns 0 after the last.
 */
void run_merge_start(struct run_merge *m, const struct layout *lo);
int run_merge_next(struct run_merge *m);

/*
 * Start walk at data cluster k (host cluster data_offset / cluster_size +
 * k): on the run that holds it, first moved to its guest cluster.  Returns
 * 1, or 0 with the walk over past the last.  Walks runs, never clusters.
 */
int run_walk_seek(struct run_walk *walk, const struct layout *lo, uint64_t k);

#endif

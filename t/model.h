/*
 * t/model.h: the one model of the image that layout.c lays out, shared by
 * t/unit.c and t/fuzz/fuzz_layout.c.
 *
 * The model counts and places every part of the image again from the
 * qcow2 format, never from layout.c, and reads what layout.c made as a
 * reader of the image would.  It prints nothing and never exits: a check
 * returns 0 when everything holds, or -1 at the first thing that does not,
 * described in a struct model_failure for the caller to print (unit.c, as
 * TAP comments) or to abort with (the fuzzer).
 */
#ifndef MODEL_H
#define MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "layout.h"

/* What an image of given ranges must be. */
struct model {
	unsigned cluster_bits;
	uint64_t cluster_size;
	uint64_t per_table;	/* 8-byte entries in a cluster of a table */
	uint64_t per_block;	/* 16-bit refcounts in a refcount block */

	uint64_t input_size;
	uint64_t virtual_size;
	uint64_t guest_clusters;
	uint64_t l1_entries;
	uint64_t l1_clusters;
	uint64_t l2_tables;
	uint64_t data_clusters;
	uint64_t zero_clusters;
	uint64_t refcount_table_clusters;
	uint64_t refcount_blocks;
	uint64_t total_clusters;

	/* guest clusters holding data, ascending; NULL if only counted */
	uint64_t *stored;
	size_t nstored;
	/* guest clusters that read as zeros and hold no data, ascending */
	uint64_t *zero;
	size_t nzero;

	int version;			/* 2 or 3 */
	const char *backing_file;	/* NULL: none; not owned */
	const char *backing_format;	/* NULL: not said; not owned */

	/*
	 * Where each part begins, in host clusters; the header is at 0.  The
	 * gap, within a plan, lies between the L2 tables and the data.
	 */
	int within;
	uint64_t gap_clusters;
	uint64_t l1_at, table_at, blocks_at, l2_at, data_at;
};

/*
 * The first check that failed: what it looked at and where, and the value
 * found against the one wanted.  relation says how got must compare with
 * want: "" equal, "< " or "<= "; NULL when what says it all (out of
 * memory) and got and want mean nothing.
 */
struct model_failure {
	char what[256];
	const char *relation;
	uint64_t got, want;
};

/*
 * The model of an image of input_size bytes with clusters of
 * 1 << cluster_bits bytes (9 to 21) whose data lies in ranges[0..nranges):
 * each inside the disk, in any order, overlapping or not, empty ones
 * holding nothing.  Lists every guest cluster they touch, so keep them
 * small.  Version 3, no backing file, the parts in stream order.  Returns
 * 0, or -1 if out of memory.
 */
int model_init(struct model *m, unsigned cluster_bits, uint64_t input_size,
    const struct range *ranges, size_t nranges);

/*
 * The counts alone, for data_clusters stored in l2_tables tables, with
 * no list of stored clusters: enough for model_check_fields, not for
 * model_check_runs or model_check_metadata.  Allocates nothing.
 */
void model_count(struct model *m, unsigned cluster_bits, uint64_t input_size,
    uint64_t data_clusters, uint64_t l2_tables);

/*
 * Make the guest clusters that zeros[0..nzeros) touch (in any order,
 * overlapping or not, inside the disk) and no stored cluster is, zero
 * clusters, and count again; of m from model_init.  Returns 0, or -1 if
 * out of memory.
 */
int model_set_zeros(struct model *m, const struct range *zeros, size_t nzeros);

/* The header to expect; the names must outlive m.  Changes no count. */
void model_set_header(struct model *m, int version, const char *backing_file,
    const char *backing_format);

/*
 * Place the parts, each right after the one before:
 *
 *	header | L1 | refcount table | refcount blocks | L2 tables | data
 */
void model_place(struct model *m);

/*
 * What layout_within makes of m (its last change) within plan, which
 * needs only counts: the data, if any, at plan's data_at, the refcounts
 * the least that count the file to its end, the gap what is left before
 * the data.  Returns 0, or -1 if plan has no room for m (its data more,
 * or its metadata past plan's data_at): then m is unchanged.
 */
int model_within(struct model *m, const struct model *plan);

/* Metadata clusters: all but the data and the gap. */
uint64_t model_meta_clusters(const struct model *m);

/*
 * The file's size: whole clusters, but a last cluster that is a refcount
 * block ends after its last refcount.
 */
uint64_t model_image_size(const struct model *m);

void model_free(struct model *m);

/*
 * The errors layout_init may rightly give for these ranges, and
 * layout_set_header for this header: a bit (1u << error) for each,
 * 0 if it must succeed.
 */
unsigned model_range_errors(const struct range *ranges, size_t nranges,
    uint64_t input_size);
unsigned model_header_errors(int version, const char *backing_file,
    const char *backing_format, uint64_t cluster_size);

/* LAYOUT_ZEROS_NEED_V3's bit if m has zero clusters and version is 2, else 0. */
unsigned model_zero_errors(const struct model *m, int version);

/*
 * lo's sizes, counts and offsets against the model's, and its refcount
 * blocks and table the least that count every cluster (within a plan,
 * the clusters to the file's end).
 */
int model_check_fields(const struct model *m, const struct layout *lo,
    struct model_failure *f);

/* lo's runs: the stored clusters, ascending, disjoint and apart. */
int model_check_runs(const struct model *m, const struct layout *lo,
    struct model_failure *f);

/*
 * Read the image as a reader would, from its header on: meta holds the
 * made metadata clusters in the order of the file, the data stepped over
 * (what meta_writer_next gave, made times).  Checks the header and its
 * extensions, L1 and L2 (COPIED, the tables and the data in guest order,
 * the zero flag alone for a zero cluster), the refcount table and blocks
 * (1 for each cluster, 0 for the gap and past the end), each host
 * cluster but the gap's used exactly once, no refcount block spare, and
 * nothing but zeros in a last cluster past the file's end.
 */
int model_check_metadata(const struct model *m, const unsigned char *meta,
    uint64_t made, struct model_failure *f);

/*
 * meta_writer_seek against meta, the metadata clusters made from the
 * start (as for model_check_metadata, which must pass first): from every
 * host cluster of the file and past it, or from a sample of them that
 * keeps each part's first and last when there are more than `most`, the
 * writer must say the host cluster it fills next and fill it and the ones
 * after as a writer from the start did.
 */
int model_check_seek(const struct model *m, const struct layout *lo,
    const unsigned char *meta, uint64_t most, struct model_failure *f);

/*
 * run_walk_seek to every data cluster, or to a sample as above, and past
 * the last: the run that holds it, from its guest cluster, then the run
 * after it.
 */
int model_check_run_seek(const struct model *m, const struct layout *lo,
    uint64_t most, struct model_failure *f);

/*
 * What layout_set_header must keep: every size and count, and every
 * offset.  by names the call.
 */
int model_check_same_sizes(const struct layout *lo, const struct layout *was,
    const char *by, struct model_failure *f);
int model_check_same_offsets(const struct layout *lo, const struct layout *was,
    const char *by, struct model_failure *f);

#endif

/*
 * meta.h: the bytes of every metadata cluster of a layout (layout.h), in
 * the order of the file or from any cluster on: the header and its
 * extensions, the L1 and L2 tables, the refcount table and blocks.  Pure,
 * as layout.c is: nothing here reads, writes, allocates or exits.
 */
#ifndef META_H
#define META_H

#include <stdint.h>

#include "layout.h"

/*
 * The L2 tables in L1 order, as the meta writer meets them: the runs of
 * data and of zeros not wholly below the current table, and the data
 * clusters below it, which fix where its entries point.
 */
struct table_walk {
	struct run_walk data, zero;	/* the first runs that end past counted */
	uint64_t counted;		/* guest clusters below it are counted */
	uint64_t data_below;		/* data clusters below counted */
	uint64_t table;			/* L1 index of the current table */
	uint64_t ordinal;		/* tables before it */
};

/*
 * The state of writing the metadata clusters in order.  Between calls to
 * meta_writer_next it holds where the L1 table and the L2 tables have got
 * to.
 */
struct meta_writer {
	const struct layout *lo;
	uint64_t cluster;		/* host cluster of the next one to fill */
	uint64_t emitted;		/* metadata clusters before it */
	struct table_walk l1;		/* the tables the L1 table has reached */
	struct table_walk l2;		/* the next L2 table to fill */
};

/*
 * Fill cluster (lo->cluster_size bytes) with the next metadata cluster in
 * the order of the file, header first; the gap and the data follow
 * them all.  Returns 1, or 0 with cluster untouched once all
 * layout_meta_clusters(lo) clusters have been produced.
 */
void meta_writer_init(struct meta_writer *mw, const struct layout *lo);
int meta_writer_next(struct meta_writer *mw, unsigned char *cluster);

/*
 * Move mw to host cluster `cluster`: the next meta_writer_next fills the
 * first metadata cluster at or after it (mw->cluster), and the next ones,
 * as a writer from 0 would; none past the end.  Walks runs, never clusters.
 */
void meta_writer_seek(struct meta_writer *mw, uint64_t cluster);

#endif

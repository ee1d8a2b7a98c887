/*
 * packed.h: the compressed form of an image (-z -o FILE), written as the
 * raw disk is read.  The metadata keeps the places the plan gives it,
 *
 *	header | L1 table | refcount table | refcount blocks | L2 tables | data
 *
 * and the data follows, each kept cluster deflated (deflate.h) on worker
 * threads and packed at byte granularity in guest order, or stored as it
 * is, from a cluster boundary, where its stream would not fit in
 * cluster_size - 1 bytes (as qemu-img does).  Every L2 table is written
 * as the data it maps is done; the header, L1 table and refcounts last.
 * The plan's sizes bound the compressed image's, so the plan's metadata
 * clusters are enough; those the sieve leaves unused stay holes of
 * refcount 0.  Memory: two chunks of max(1 MiB, 8 clusters), 168 KiB
 * of deflater a thread (up to 8), a cluster for the L2 table, 8 bytes an
 * L1 entry, and 2 bytes of refcount a host cluster of the plan.
 */
#ifndef PACKED_H
#define PACKED_H

#include <stddef.h>

#include "copier.h"
#include "layout.h"
#include "sieve.h"

/* The chunk to start the sieve with (sieve_start) for clusters of cs bytes. */
size_t packed_chunk_bytes(size_t cs);

/*
 * The compressed form of the clusters of plan that s keeps, into a new
 * regular file, in one pass over the input.  Fills *lo with the layout
 * of what the sieve kept (its counts, not the places of its clusters).
 * s must be started with packed_chunk_bytes.
 */
void write_packed(struct copier *c, const struct layout *plan, struct sieve *s,
    struct layout *lo);

#endif

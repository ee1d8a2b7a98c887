/*
 * packed.h: the compressed forms of an image (-z), each kept cluster
 * deflated (deflate.h) on worker threads and packed at byte granularity
 * in guest order after the metadata, or stored as it is, from a cluster
 * boundary, where its stream would not fit in cluster_size - 1 bytes (as
 * qemu-img does).  The metadata keeps the places an uncompressed layout
 * gives it,
 *
 *	header | L1 table | refcount table | refcount blocks | L2 tables | data
 *
 * which the packed data, never larger, leaves room enough for.  A host
 * cluster that streams share has a reference from each (QEMU counts the
 * 512-byte sectors a stream touches).
 *
 * -o FILE is written in one pass, from a pipe too: the plan's places,
 * the L2 tables and refcount blocks written as the data passes them, the
 * header, L1 table and first refcount blocks last; the plan's L2 tables
 * that the sieve leaves unused are holes of refcount 0.  The stream form
 * needs every stream's length before its first byte: a first pass over a
 * file or a device deflates each kept cluster and keeps the lengths (2
 * bytes a data cluster, 4 above 64 KiB clusters, at most PACKED_SIZES_MAX
 * in all), the second deflates them again as it writes them, strictly
 * forward.  Memory besides: two chunks of max(1 MiB, 8 clusters), 168 KiB
 * of deflater a thread (up to 8), two clusters for tables and refcounts,
 * and for -o 8 bytes an L1 entry.
 */
#ifndef PACKED_H
#define PACKED_H

#include <stddef.h>
#include <stdint.h>

#include "copier.h"
#include "layout.h"
#include "sieve.h"

#define PACKED_SIZES_MAX	((size_t)256 << 20)

/* What the first pass found: each kept cluster's stream length, in guest order. */
struct packed {
	unsigned char *lengths;		/* width bytes each; 0: stored as it is */
	unsigned width;
	uint64_t n, cap;
	uint64_t data_bytes;		/* the packed data, from the data offset */
};

/* The chunk to start the sieve with (sieve_start) for clusters of cs bytes. */
size_t packed_chunk_bytes(size_t cs);

/*
 * -o FILE: the clusters of plan that s keeps, compressed into a new
 * regular file, in one pass over the input.  Fills *lo with the layout
 * of what the sieve kept (its counts, not the places of its clusters).
 * s must be started with packed_chunk_bytes.
 */
void write_packed(struct copier *c, const struct layout *plan, struct sieve *s,
    struct layout *lo);

/*
 * The stream form's first pass over a file or a device: the clusters of
 * plan sieved, as sieve_pass does, and each kept one deflated for its
 * length; plan is made again of what was kept.  The input is left at 0.
 */
void packed_pass(struct copier *c, struct layout *plan, struct sieve *s,
    struct packed *pk);

/* The exact size of the stream form of lo with pk's streams. */
uint64_t packed_image_size(const struct layout *lo, const struct packed *pk);

/*
 * The stream form, strictly forward; each cluster is deflated again and
 * must come out as long as in the first pass, or the input changed and
 * the run fails.
 */
void write_packed_stream(struct copier *c, const struct layout *lo,
    const struct packed *pk);

/*
 * Bytes [from, to) of the stream form alone (--slice), to at most its
 * size: the metadata made from its start, and only the clusters whose
 * bytes fall in the slice read and deflated again.
 */
void write_packed_slice(struct copier *c, const struct layout *lo,
    const struct packed *pk, uint64_t from, uint64_t to);

void packed_free(struct packed *pk);

#endif

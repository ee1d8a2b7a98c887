/*
 * unpack.h: compressed clusters inflated on every core while the caller
 * reads the input, and handed back in the order they were added.  The
 * caller copies each cluster's stored bytes into the room it is given,
 * adds it, and takes back batches as they are done.  No I/O: failures
 * to inflate come back with the cluster, for the caller to report.
 *
 * Memory: per batch, max(1 MiB, a cluster) of output and max(1 MiB, two
 * clusters) of input, allocated as first used; threads + 2 batches, and
 * per thread a decoder's state (codec.h: 17.5 KiB, or 148 KiB for zstd).  Threads are joined by unpacker_free.
 */
#ifndef UNPACK_H
#define UNPACK_H

#include <stddef.h>
#include <stdint.h>

struct unpacker;

/* A cluster inflated, or refused. */
struct unpacked {
	uint64_t guest, host;		/* where it goes, where it came from */
	size_t length;			/* bytes of the disk: at most a cluster */
	const unsigned char *bytes;	/* the whole cluster, if why is NULL */
	const char *why;		/* NULL, or why its stream is refused */
	size_t at;			/* then: the byte of the stream at fault */
};

/*
 * An unpacker of clusters of cluster_size bytes compressed as
 * compression_type says (codec.h), on threads threads (0: in the caller,
 * as each batch fills).  NULL if memory or a thread cannot be had.
 */
struct unpacker *unpacker_new(size_t cluster_size, unsigned compression_type,
    unsigned threads);
void unpacker_free(struct unpacker *u);

/*
 * Room for the stored bytes of the next compressed cluster (at most two
 * clusters), for unpacker_add to take; NULL when every batch is busy, and
 * the caller must unpacker_take one first.  Invalidates what the last
 * unpacker_take returned.
 */
unsigned char *unpacker_room(struct unpacker *u, size_t stored);
void unpacker_add(struct unpacker *u, uint64_t guest, uint64_t host,
    size_t length, size_t stored);

/*
 * The oldest batch, in the order its clusters were added, once
 * inflated: *count clusters, valid until the next call.  NULL when none
 * is pending, or with wait 0, when the oldest is not done yet.  Waiting
 * sends a batch being filled to be inflated.
 */
const struct unpacked *unpacker_take(struct unpacker *u, int wait, size_t *count);

#endif

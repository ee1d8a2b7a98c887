/*
 * deflate.h: one qcow2 cluster compressed as one raw deflate stream (RFC
 * 1951), with no I/O and no allocation, for QEMU to read back: no match
 * reaches more than 4096 bytes back, since QEMU's zlib decodes with a
 * window of 4 KiB.  Nothing here is global and mutable: threads may
 * compress at once, each with its own struct deflater.  Memory: the
 * caller's struct deflater (172,032 bytes) and under 8 KiB of stack.
 */
#ifndef DEFLATE_H
#define DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#define DEFLATE_WINDOW		4096	/* the farthest a match reaches back */
#define DEFLATE_HASH_BITS	15	/* at most; fewer for a small cluster */
#define DEFLATE_BLOCK_SYMBOLS	32768	/* literals and matches in a block */

/*
 * The matcher's chains and one block's symbols: any storage, no set-up
 * needed, nothing kept between calls.
 */
struct deflater {
	uint16_t head[1 << DEFLATE_HASH_BITS];	/* a hash's last position, mod 2^16 */
	uint16_t prev[DEFLATE_WINDOW];	/* back to the position before of its hash */
	uint16_t dists[DEFLATE_BLOCK_SYMBOLS];	/* 0 for a literal */
	uint8_t values[DEFLATE_BLOCK_SYMBOLS];	/* the literal, or the length - 3 */
};

/*
 * Compress in[0..in_len) into one raw deflate stream, its last block
 * marked final, at out (in and out not NULL, or in_len 0).  Returns the
 * stream's length, or 0 when it would take more than out_cap bytes (a
 * caller that passes cluster_size - 1, as QEMU does, then stores the
 * cluster as it is).  Never writes out[out_cap] or past it; out's bytes
 * are unspecified after a 0.  The same input gives the same stream
 * whatever the struct held before.
 */
size_t deflate_cluster(struct deflater *z, unsigned char *out, size_t out_cap,
    const unsigned char *in, size_t in_len);

#endif

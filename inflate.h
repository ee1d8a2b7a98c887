/*
 * inflate.h: a raw deflate stream (RFC 1951) decoded into one qcow2
 * cluster, with no I/O and no allocation.  It accepts exactly the
 * streams QEMU accepts for a compressed cluster (zlib's inflate, raw,
 * called once with Z_FINISH into the cluster), with the same bytes, and
 * refuses the rest.  Nothing here is global and mutable: threads may
 * decode at once, each with its own struct inflater.  Memory: the
 * caller's struct inflater (17,536 bytes) and under 3 KiB of stack.
 */
#ifndef INFLATE_H
#define INFLATE_H

#include <stddef.h>
#include <stdint.h>

/*
 * A decoding table has 2^root entries for the first bits of a code, root
 * the bits of its longest code but at most 11 (literals/lengths) or 8
 * (distances), and sub-tables for longer codes.  A sub-table of 2^s
 * entries holds at least s + 1 codes of a complete code, and s is at most
 * 15 - root, so 288 literal/length codes need fewer than 288 / 5 * 16 <
 * 1024 entries of sub-tables, and 30 distance codes fewer than
 * 30 / 8 * 128 < 512.
 */
#define INFLATE_LITLEN_ROOT	11
#define INFLATE_DIST_ROOT	8
#define INFLATE_LITLEN_SIZE	((1 << INFLATE_LITLEN_ROOT) + 1024)
#define INFLATE_DIST_SIZE	((1 << INFLATE_DIST_ROOT) + 512)
#define INFLATE_FIXED_LITLEN_ROOT	9	/* the fixed codes' longest */
#define INFLATE_FIXED_DIST_ROOT		5
#define INFLATE_FIXED_LITLEN_SIZE	(1 << INFLATE_FIXED_LITLEN_ROOT)
#define INFLATE_FIXED_DIST_SIZE		(1 << INFLATE_FIXED_DIST_ROOT)

/* The decoding tables: any storage, no set-up needed, nothing kept between calls. */
struct inflater {
	uint32_t litlen[INFLATE_LITLEN_SIZE];	/* a dynamic block's */
	uint32_t dist[INFLATE_DIST_SIZE];
	uint32_t fixed_litlen[INFLATE_FIXED_LITLEN_SIZE];	/* once a call, if used */
	uint32_t fixed_dist[INFLATE_FIXED_DIST_SIZE];
};

struct inflate_error {
	const char *why;	/* a static phrase */
	size_t at;		/* the byte of in where the fault begins */
};

/*
 * Decode the raw deflate stream in in[0..in_len) into exactly out_len
 * bytes at out (in and out not NULL).  Returns 0 when out is full and no
 * fault came before the input ran out or a byte past out had to be
 * written: input after that point is not looked at, so a stream may go
 * on past the cluster or end in junk.  Returns -1 with err set otherwise;
 * out's bytes are then unspecified, and err->at need not be where zlib
 * would say.  Never reads in[in_len] or writes out[out_len]; time is
 * linear in in_len + out_len whatever the bytes.
 */
int inflate_cluster(struct inflater *z, unsigned char *out, size_t out_len,
    const unsigned char *in, size_t in_len, struct inflate_error *err);

#endif

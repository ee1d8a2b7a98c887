/*
 * zstd_decode.h: the zstd frames (RFC 8878) of one compressed qcow2
 * cluster decoded into the cluster, with no I/O and no allocation.  It
 * accepts the clusters QEMU accepts (libzstd's streaming decoder with its
 * default limits, called until the cluster is full), with the same
 * bytes, and refuses the rest, but for the few inputs where libzstd's
 * verdict hangs on its build or the machine (ZSTD_HUFFMAN_END and
 * ZSTD_LEGACY below; zstd_decode.c names all of them).  Matches reach only into their own
 * frame's output, which is never more than the cluster, so the cluster
 * is the window.  Nothing here is global and mutable: threads may decode
 * at once, each with its own struct zstd_decoder.  Memory: the caller's
 * struct zstd_decoder (149,536 bytes, the literals of a block most of
 * it) and under 4 KiB of stack.
 */
#ifndef ZSTD_DECODE_H
#define ZSTD_DECODE_H

#include <stddef.h>
#include <stdint.h>

#define ZSTD_BLOCK_MAX		(128 * 1024)	/* RFC 8878 3.1.1.2.4 */
#define ZSTD_LITERALS_SLACK	32	/* read past the literals by the fast copy */
#define ZSTD_HUFFMAN_LOG_MAX	12	/* the spec says 11; libzstd takes 12 */

/* One state of an FSE table: the symbol's value, and how to go on. */
struct zstd_state {
	uint32_t base;		/* a length or offset base, or a symbol */
	uint16_t next;		/* the next state, before its bits are added */
	uint8_t bits;		/* the bits of the next state */
	uint8_t extra;		/* the extra bits of base */
};

/* The decoding tables and literals: any storage, no set-up, nothing kept between calls. */
struct zstd_decoder {
	struct zstd_state litlen[1 << 9], matchlen[1 << 9], offset[1 << 8];
	uint16_t huffman[1 << ZSTD_HUFFMAN_LOG_MAX];	/* code length << 8 | symbol */
	unsigned char literals[ZSTD_BLOCK_MAX + ZSTD_LITERALS_SLACK];
};

struct zstd_error {
	const char *why;	/* a static phrase */
	size_t at;		/* the byte of in where the fault begins, roughly */
};

/*
 * err->why when a Huffman stream of literals has no end mark, or ends
 * before or after its last literal: libzstd 1.5.4's fast path for four
 * streams (x86-64 with BMI2) looks at neither, so it may take such a
 * block, and QEMU with it, on some machines.
 */
#define ZSTD_HUFFMAN_END	"Huffman stream does not end with its literals"

/*
 * err->why for a frame of zstd 0.2 to 0.7, from before the format was
 * fixed: libzstd built with legacy support (Debian's reads 0.5 to 0.7)
 * takes them, and QEMU with it, though no qcow2 writer made them.
 */
#define ZSTD_LEGACY	"frame of zstd before 0.8"

/*
 * Decode the frames in in[0..in_len) into exactly out_len bytes at out
 * (in and out not NULL, not overlapping, out_len at most 2 MiB, the
 * largest cluster).  Frames are decoded one after another, skippable
 * ones skipped, until out is full; the frame that fills it must end
 * there, and input after that frame's end is not looked at, so it may
 * be padding.  Returns 0 then, or -1 with err set; out's bytes are then
 * unspecified, and err->at need not be where libzstd would say.  A frame
 * that needs a dictionary is refused.  Never reads in[in_len] or writes
 * out[out_len]; time is linear in in_len + out_len whatever the bytes.
 */
int zstd_decode_cluster(struct zstd_decoder *z, unsigned char *out, size_t out_len,
    const unsigned char *in, size_t in_len, struct zstd_error *err);

#endif

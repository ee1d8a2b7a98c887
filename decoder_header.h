/*
 * decoder_header.h: cluster 0 of a qcow2 image, the first thing sqcow2 -d
 * reads: the header, its extensions and its feature bits, parsed and
 * checked before any table is read.  Also what every part of the decoder
 * (decoder.h) uses: its errors, and the reading of big-endian numbers.
 * Pure: nothing here reads, writes, allocates or exits.
 */
#ifndef DECODER_HEADER_H
#define DECODER_HEADER_H

#include <stddef.h>
#include <stdint.h>

#define IMAGE_PROBE_BYTES	512	/* what image_header_size looks at */
#define IMAGE_WHY_MAX		512	/* a message, with its NUL */

/* What is wrong with an image, or with how the decoder was driven. */
enum image_fault {
	IMAGE_OK,
	IMAGE_NOT_QCOW2,
	IMAGE_TRUNCATED,	/* the file or stream ends too soon */
	IMAGE_VERSION,		/* not version 2 or 3 */
	IMAGE_CLUSTER_BITS,	/* not 9..21, or under 14 with subclusters */
	IMAGE_BAD_HEADER,	/* a header field or extension out of bounds */
	IMAGE_CORRUPT,		/* the corrupt bit is set */
	IMAGE_DATA_FILE,	/* the data is in an external file */
	IMAGE_FEATURE,		/* an incompatible feature sqcow2 does not know */
	IMAGE_ENCRYPTED,
	IMAGE_BACKING_FILE,
	IMAGE_L1_SIZE,		/* over 32 MiB, or too small for the disk */
	IMAGE_RESERVED_BITS,	/* in an L1, L2 or refcount table entry */
	IMAGE_UNALIGNED,	/* an offset not on a cluster boundary */
	IMAGE_COMPRESSED,	/* a compressed cluster's descriptor out of bounds */
	IMAGE_SUBCLUSTERS,	/* an extended L2 bitmap QEMU calls invalid */
	IMAGE_OVERLAP,		/* an entry points into metadata, or twice */
	IMAGE_PAST_END,		/* an entry points past the end of the file */
	IMAGE_ORDER,		/* forward mode: not in stream order */
	IMAGE_WINDOW,		/* forward mode: more than the window can hold */
	IMAGE_MEMORY,		/* needs more than the memory cap */
	IMAGE_MISUSE,		/* the caller broke the protocol of decoder.h */
};

struct image_error {
	enum image_fault fault;
	uint64_t offset;		/* the byte of the image file it is about */
	char why[IMAGE_WHY_MAX];	/* short lowercase phrase, no period */
};

/* The header in cluster 0, checked; the fields sqcow2 needs to decode. */
struct image_header {
	int version;			/* 2 or 3 */
	unsigned cluster_bits;		/* 9..21 */
	uint64_t cluster_size;
	uint64_t size;			/* the size field, in bytes */
	uint64_t virtual_size;		/* size rounded down to 512, as QEMU does */
	uint32_t l1_size;		/* entries in the active L1 table */
	uint64_t l1_used;		/* of those, the ones that map the disk */
	uint64_t l1_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	unsigned refcount_order;	/* 0..6; refcounts are never read */
	uint32_t header_length;		/* 72 for version 2 */
	uint64_t incompatible_features;
	uint64_t compatible_features;	/* e.g. lazy refcounts: ignored */
	uint64_t autoclear_features;	/* e.g. bitmaps: ignored */
	int dirty;			/* refcounts may be stale: not used anyway */
	int extended_l2;		/* 128-bit L2 entries, 32 subclusters each */
	unsigned compression_type;	/* COMPRESSION_DEFLATE or _ZSTD */
	uint32_t snapshots;		/* internal snapshots: ignored */
	unsigned l2_entry_size;		/* 8, or 16 with extended L2 entries */
	uint64_t l2_entries;		/* entries in one L2 table */
	uint64_t l2_span;		/* guest bytes one L2 table maps */
	uint64_t subcluster_size;	/* cluster_size / 32, or cluster_size */
};

/*
 * From the first len bytes of a file (IMAGE_PROBE_BYTES, or all of a
 * shorter file): the number of bytes from offset 0 that
 * image_header_parse needs, which is the whole of cluster 0.  Returns 0
 * with err filled in if the bytes are no qcow2 header sqcow2 can read.
 */
uint64_t image_header_size(const unsigned char *probe, size_t len,
    struct image_error *err);

/*
 * Check and parse the header, its extensions and the backing file name
 * from buf, the first len bytes of the file; len below the size
 * image_header_size gives is a truncated image.  Refuses, in err, every
 * image that sqcow2 cannot decode from its header alone.  Returns 0 or -1.
 */
int image_header_parse(struct image_header *hdr, const unsigned char *buf,
    size_t len, struct image_error *err);

/*
 * Fill err with fault, the offset in the image file it is about, and a
 * message made from fmt as printf makes it, cut to IMAGE_WHY_MAX - 1
 * bytes.  Returns -1, so that a check can end in return image_fail(...).
 */
int image_fail(struct image_error *err, enum image_fault fault,
    uint64_t offset, const char *fmt, ...);

/* A number for %ju in the decoder's messages. */
#define NUM(x)	((uintmax_t)(x))

#endif

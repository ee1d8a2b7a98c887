/*
 * decode.h: sqcow2 -d, a qcow2 image back to the raw disk it holds.
 * decoder.c decides what every byte of the image is; these functions read
 * and write as it says, through a copier (io.h).  From a pipe the image
 * is read once, forward; from a file it is read by offset, any layout.
 */
#ifndef DECODE_H
#define DECODE_H

#include "decoder.h"
#include "io.h"

/* What -d was asked to do. */
struct decode_options {
	const char *input_path;		/* NULL or "-": stdin */
	const char *output_path;	/* NULL or "-": stdout */
	int print_size;			/* the disk's size, from the header */
	int map;			/* its data ranges, as a range file */
	int test;			/* -t: all of it decoded, nothing written */
	int progress, verbose, fsync;
};

/*
 * sqcow2 -d: the raw disk of a qcow2 image, or its size or its data
 * ranges, as opt asks.  Returns 0; every failure exits.
 */
int decode(const struct decode_options *opt);

/*
 * What the disk turned out to be: bytes of data and of zeros written;
 * the last byte, when held back (see write_disk).
 */
struct disk_counts {
	uint64_t data, zeros;
	int holding;
	unsigned char last_byte;
};

/*
 * Read the header from the input's start, cluster 0 whole; the input is
 * left just past it.  A refused image exits, naming the input.
 */
void read_image_header(struct copier *c, struct image_header *hdr);

/*
 * The raw disk of the image whose header was just read, to the output:
 * exactly its virtual size, holes where the output can have them.
 * Anything after the image in a pipe is read and dropped, so that the
 * sender is not cut off.  A regular file reaches the disk's size last of
 * all, so that one that failed never looks complete.  test: every byte
 * read and decoded, none written (-t).
 */
void write_disk(struct copier *c, const struct image_header *hdr,
    struct disk_counts *counts, int test);

/* Its data ranges instead, to stdout, as a plain range file. */
void print_disk_ranges(struct copier *c, const struct image_header *hdr);

#endif

/*
 * options.h: what the command line asks for, as sqcow2.c parses and
 * checks it, handed whole to encode() (encode.h) or decode() (decode.h).
 */
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stdint.h>

struct options {
	const char *input_path;		/* NULL: stdin; -i, or the argument */
	uint64_t size;
	int have_size;
	const char *ranges_path;	/* NULL: found, or all of the disk */
	int sparsify;			/* 1 --sparsify, 0 --no-sparsify, -1 not said */
	const char *diff_path;		/* --diff: the previous disk, raw or qcow2 */
	unsigned cluster_bits;
	int version;			/* of the qcow2 image: 2 or 3 */
	const char *backing_file;
	const char *backing_format;
	int unsafe_backing;		/* -u: the backing file is not looked at */
	int raw_format;			/* -f raw: a disk, whatever its first bytes */
	const char *output_path;	/* NULL: stdout */
	int fsync;
	int compress;			/* -z: deflate the data clusters */
	int print_size;
	int have_expect_size;		/* --expect-size: the image must be so long */
	uint64_t expect_size;
	int map;
	int progress;
	int verbose;
	int slice;			/* --slice: bytes [slice_start, slice_end) */
	uint64_t slice_start, slice_end;
	int decode;			/* -d: a qcow2 image back to the raw disk */
	int test;			/* -t: decode it, write nothing */
	uint64_t window;		/* -w: bytes -d may hold from a pipe */
	int have_window;
	const char *encoding_option;	/* the first option given that -d has no use for */
};

#endif

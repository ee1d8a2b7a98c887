/*
 * base.h: --diff's previous disk, read in guest order: a raw disk by
 * offset, or the disk a qcow2 image holds, read through the decoder
 * (decoder.h) from the file, any layout.  Users keep monday.qcow2, not
 * monday.raw: either may be the base.
 */
#ifndef BASE_H
#define BASE_H

#include <stddef.h>
#include <stdint.h>

#include "decoder.h"
#include "io.h"
#include "ranges.h"

struct base {
	struct io io;
	int is_image;			/* a qcow2 image, decoded */
	uint64_t disk_size;		/* of the disk it holds */
	struct image_header hdr;
	struct decoder d;
	struct step step;		/* DATA, COMPRESSED, ZEROS or DONE */
	unsigned char *table;		/* a cluster, for the decoder's tables */
	unsigned char *stored, *cluster;	/* a compressed cluster, inflated */
	uint64_t inflated_guest;	/* the one cluster holds; UINT64_MAX: none */
	void *codec;			/* codec.h's, for compressed clusters */
};

/*
 * Open BASE at path, a file or a block device, and tell a raw disk from
 * a qcow2 image by its first bytes.  Its disk must be no larger than
 * size, the new disk's.  With ranges, the ranges where it holds data are
 * added to them: where the new disk may have dropped what BASE held.
 * Every failure exits, naming path.
 */
void open_base(const char *path, struct base *b, uint64_t size,
    struct range_list *ranges);

/*
 * len bytes of the base's disk at offset, zeros past its end.  Reads
 * go forward: an offset below the last one's starts the decoder over.
 */
void read_base(struct base *b, void *buf, size_t len, uint64_t offset);

void close_base(struct base *b);

#endif

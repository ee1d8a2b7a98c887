/*
 * stream.h: the stream form of an image, written from the raw disk
 * through a copier strictly forward, metadata first: whole, or any byte
 * range of it alone (--slice).  Also the metadata clusters of a layout
 * written in order, which the seekable form (seekable.h) writes too.
 */
#ifndef STREAM_H
#define STREAM_H

#include <stdint.h>

#include "copier.h"
#include "layout.h"
#include "meta.h"

/* The stream form of lo, from the input's offset 0 to its end. */
void write_stream(struct copier *c, const struct layout *lo);

/*
 * Bytes [from, to) of the stream form of lo, to at most its size, alone:
 * only the metadata clusters in the slice are made, and only the input
 * behind its data clusters is read (a pipe from its start, the bytes
 * before passed over and checked as the whole stream would check them).
 */
void write_slice(struct copier *c, const struct layout *lo, uint64_t from,
    uint64_t to);

/*
 * The next count metadata clusters of mw (fewer if it has fewer left),
 * gathered into large writes, the last one written but for its last cut
 * bytes: where the file ends inside it.  cut_at_end is that for the
 * last cluster of lo (see layout_image_size).
 */
void write_meta_clusters(struct copier *c, struct meta_writer *mw,
    uint64_t count, size_t cut);
size_t cut_at_end(const struct layout *lo);

/*
 * Bytes [from, to) of cluster 0, the header, written over the start of a
 * regular output (at start) once the rest is complete: until then it
 * holds zeros and is no image.  A whole header is guarded until the end.
 */
void write_header_last(struct copier *c, const struct layout *lo, uint64_t start,
    uint64_t from, uint64_t to);

#endif

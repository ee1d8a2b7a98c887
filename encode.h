/*
 * encode.h: the image forms, written from the raw disk through a copier.
 * The stream form goes strictly forward, metadata first; the seekable
 * form (-o) drops clusters of zeros as it copies and writes the tables
 * after the data.  --sparsify finds the clusters of zeros in a first pass,
 * so that the stream form can drop them too.
 */
#ifndef ENCODE_H
#define ENCODE_H

#include "io.h"
#include "layout.h"
#include "ranges.h"

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
 * The seekable form of the clusters of plan that hold a non-zero byte,
 * into a new file.  Fills *lo with the layout written, whose ranges are
 * *stored, which the caller frees.
 */
void write_sparse(struct copier *c, const struct layout *plan, struct layout *lo,
    struct range_list *stored);

/*
 * A first pass over the clusters that plan stores, holes skipped, which
 * keeps in *kept the ranges of those that hold a non-zero byte.  Leaves
 * the input at offset 0 for the pass that writes.
 */
void sparsify(struct copier *c, const struct layout *plan, struct range_list *kept);

#endif

/*
 * encode.h: the image forms, written from the raw disk through a copier.
 * The stream form goes strictly forward, metadata first; the seekable
 * form (-o) drops clusters of zeros as it copies and writes the tables
 * after the data.  --sparsify and --diff find the clusters to drop in a
 * first pass, so that the stream form can drop them too.
 */
#ifndef ENCODE_H
#define ENCODE_H

#include "base.h"
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
 * What becomes of the clusters that a first pass or -o reads: those of
 * zeros are dropped, marked as zero clusters (over a backing file, they
 * hide what it holds), or stored as data (version 2 has no zero flag);
 * with --diff, those equal to the previous disk's (base) are dropped.
 * The pass fills kept and zeros, which sorting_free frees.
 */
enum zero_rule { ZEROS_DROPPED, ZEROS_MARKED, ZEROS_STORED };
struct sorting {
	enum zero_rule zeros_are;
	struct base *base;			/* NULL, or --diff's previous disk */
	struct range_list kept, zeros;
	unsigned char *keep, *base_buffer;	/* the pass's own */
};
void sorting_start(struct sorting *s, const struct copier *c);
void sorting_free(struct sorting *s);

/* The layout of what the pass kept and marked, as plan's header says. */
enum layout_error layout_of_sorting(struct layout *lo, const struct layout *plan,
    const struct sorting *s);

/*
 * The seekable form of the clusters of plan that s keeps, into a new
 * file, as they are read.  Fills *lo with the layout written.
 */
void write_sparse(struct copier *c, const struct layout *plan, struct sorting *s,
    struct layout *lo);

/*
 * A first pass over the clusters that plan stores, holes skipped, sorting
 * them into s.  Leaves the input at offset 0 for the pass that writes.
 */
void first_pass(struct copier *c, const struct layout *plan, struct sorting *s);

/*
 * --sparsify and --diff for the stream form: the first pass, and the plan
 * made again of what it kept.  The input must be a file or a device.
 */
void sort_first(struct copier *c, struct layout *plan, struct sorting *s);

#endif

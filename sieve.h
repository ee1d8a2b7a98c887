/*
 * sieve.h: what becomes of each cluster of the plan that is read: kept
 * as data, dropped as zeros, marked as a zero cluster where zeros hide a
 * backing file, or, with --diff, dropped as equal to the previous disk's.
 * The seekable form sieves as it copies; --sparsify and --diff sieve in a
 * first pass, so that the stream form can drop the clusters too.
 */
#ifndef SIEVE_H
#define SIEVE_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "copier.h"
#include "layout.h"

/*
 * What becomes of the clusters of zeros: dropped, marked as zero
 * clusters (over a backing file they hide what it holds), or stored as
 * data (version 2 has no zero flag; and --no-sparsify stores them).
 */
enum zero_rule { ZEROS_DROPPED, ZEROS_MARKED, ZEROS_STORED };

/* The sieve's rules and what it found: ranges kept as data and as zeros. */
struct sieve {
	enum zero_rule zeros_are;
	struct base *base;			/* NULL, or --diff's previous disk */
	struct range_list kept, zeros;
	unsigned char *keep;			/* a chunk's clusters: kept or not */
	unsigned char *base_buffer;		/* the base's bytes of a chunk */
};

/*
 * Ready s for chunks of up to chunk_bytes (a multiple of the cluster
 * size); sieve_free gives back what it holds, the ranges found too.
 */
void sieve_start(struct sieve *s, size_t chunk_bytes);
void sieve_free(struct sieve *s);

/*
 * Up to room bytes' worth of the guest clusters [*first, end): the bytes
 * of a regular input seen where they are (input_map), else read into
 * room, zero-padded past the input's end.  Holes are skipped first, and
 * *first moved past them, where the zeros they read as are dropped.
 * Returns the bytes, *clusters of them (0: none left).
 */
const unsigned char *sieve_read(struct copier *c, const struct layout *lo,
    const struct sieve *s, unsigned char *room, size_t room_size, uint64_t *first,
    uint64_t end, uint64_t *clusters);

/*
 * Whether the sieve keeps every cluster whatever it holds (zeros stored
 * as data, no --diff): then the clusters need not be read at all.
 */
int sieve_keeps_all(const struct sieve *s);

/* Guest clusters [first, end) kept, unread: what sieve_keeps_all allows. */
void sieve_keep(struct sieve *s, const struct layout *lo, uint64_t first,
    uint64_t end);

/*
 * Sieve the clusters in chunk, guest clusters from first on: s->keep[i]
 * says whether the i-th is kept, and s->kept and s->zeros grow.
 */
void sieve_clusters(struct sieve *s, const struct layout *lo,
    const unsigned char *chunk, uint64_t first, uint64_t clusters);

/* The layout of what the sieve kept and marked, with plan's header. */
enum layout_error layout_of_sieve(struct layout *lo, const struct layout *plan,
    const struct sieve *s);

/*
 * --sparsify and --diff for the stream form: a first pass over the
 * clusters plan stores, holes skipped, then plan made again of what was
 * kept.  The input, which must be a file or a device, is left at 0.
 */
void sieve_pass(struct copier *c, struct layout *plan, struct sieve *s);

#endif

/*
 * sieve.c: the clusters read sorted into kept, zeros and dropped; see
 * sieve.h.
 */
#define _GNU_SOURCE

#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "sieve.h"
#include "util.h"

void
sieve_start(struct sieve *s, size_t chunk_bytes)
{
	if ((s->keep = malloc(chunk_bytes >> MIN_CLUSTER_BITS)) == NULL ||
	    (s->base != NULL && (s->base_buffer = malloc(chunk_bytes)) == NULL))
		die(1, "buffer");
}

void
sieve_free(struct sieve *s)
{
	ranges_free(&s->kept);
	ranges_free(&s->zeros);
	free(s->keep);
	free(s->base_buffer);
	s->keep = s->base_buffer = NULL;
}

/*
 * A hole of the input reads as zeros, which are dropped unless they hide
 * a backing file: then the hole must be read like the rest.
 */
static int
drops_holes(const struct sieve *s)
{
	return s->zeros_are == ZEROS_DROPPED && s->base == NULL;
}

/*
 * If the input's next cluster lies in a hole, move it to the first
 * cluster that may hold data, but not past end, and return 1.
 */
static int
jump_hole(struct copier *c, const struct layout *lo, uint64_t *first, uint64_t end)
{
	uint64_t data, hole, next;
	int found;

	if (*first >= end || (found = input_next_data(c, &data, &hole)) == -1)
		return 0;
	next = found == 0 ? end : data >> lo->cluster_bits;
	if (next <= *first)
		return 0;
	*first = min_u64(next, end);
	input_seek(c, min_u64(*first << lo->cluster_bits, lo->input_size));
	return 1;
}

const unsigned char *
sieve_read(struct copier *c, const struct layout *lo, const struct sieve *s,
    unsigned char *room, size_t room_size, uint64_t *first, uint64_t end,
    uint64_t *clusters)
{
	size_t cs = lo->cluster_size, bytes, from_input;
	const unsigned char *mapped;

	while (drops_holes(s) && jump_hole(c, lo, first, end))
		;
	*clusters = min_u64(end - *first, room_size / cs);
	bytes = *clusters * cs;
	from_input = (size_t)min_u64(lo->input_size - input_of(c)->offset, bytes);
	if (from_input == bytes && (mapped = input_map(c, bytes)) != NULL)
		return mapped;
	input_read_exact(c, room, from_input);
	memset(room + from_input, 0, bytes - from_input);
	return room;
}

int
sieve_keeps_all(const struct sieve *s)
{
	return s->zeros_are == ZEROS_STORED && s->base == NULL;
}

/* Add guest clusters [first, end) to the ranges, clipped to the input. */
static void
note_clusters(struct range_list *ranges, const struct layout *lo, uint64_t first,
    uint64_t end)
{
	uint64_t offset = first << lo->cluster_bits;
	uint64_t length = min_u64(end << lo->cluster_bits, lo->input_size) - offset;
	struct range *last = ranges->n > 0 ? &ranges->v[ranges->n - 1] : NULL;

	if (last != NULL && last->offset + last->length == offset)
		last->length += length;
	else if (ranges_add(ranges, offset, length) == -1)
		die(1, "clusters kept");
}

void
sieve_keep(struct sieve *s, const struct layout *lo, uint64_t first, uint64_t end)
{
	note_clusters(&s->kept, lo, first, end);
}

/*
 * With --diff a cluster equal to the previous disk's is not kept: the
 * backing file holds it.
 */
void
sieve_clusters(struct sieve *s, const struct layout *lo, const unsigned char *chunk,
    uint64_t first, uint64_t clusters)
{
	size_t cs = lo->cluster_size;

	if (s->base != NULL)
		read_base(s->base, s->base_buffer, clusters * cs, first << lo->cluster_bits);
	for (uint64_t i = 0; i < clusters; i++) {
		const unsigned char *cluster = chunk + i * cs;

		s->keep[i] = 0;
		if (s->base != NULL && memcmp(cluster, s->base_buffer + i * cs, cs) == 0)
			continue;
		if (first_nonzero(cluster, cs) != cs || s->zeros_are == ZEROS_STORED) {
			s->keep[i] = 1;
			note_clusters(&s->kept, lo, first + i, first + i + 1);
		} else if (s->zeros_are == ZEROS_MARKED) {
			note_clusters(&s->zeros, lo, first + i, first + i + 1);
		}
	}
}

enum layout_error
layout_of_sieve(struct layout *lo, const struct layout *plan, const struct sieve *s)
{
	enum layout_error error;

	if ((error = layout_init(lo, plan->input_size, plan->cluster_bits,
	    s->kept.v, s->kept.n)) != LAYOUT_OK ||
	    (error = layout_set_header(lo, plan->version, plan->backing_file,
	    plan->backing_format)) != LAYOUT_OK)
		return error;
	return s->zeros.n > 0 ? layout_set_zeros(lo, s->zeros.v, s->zeros.n) : LAYOUT_OK;
}

void
sieve_pass(struct copier *c, struct layout *plan, struct sieve *s)
{
	struct layout whole = *plan;
	enum layout_error error;
	struct run_walk walk;
	size_t room;

	if (!io_seekable(input_of(c)))
		diex(2, "--%s reads the input twice, and %s is not a file or a block "
		    "device (-o FILE does it in one pass)", s->base != NULL ?
		    "diff" : "sparsify", input_of(c)->name);
	run_walk_init(&walk, &whole);
	while (run_next(&walk)) {
		uint64_t cluster = walk.first;

		input_seek(c, cluster << whole.cluster_bits);
		while (cluster < walk.end) {
			unsigned char *buf = output_room(c, &room);
			uint64_t clusters;
			const unsigned char *chunk = sieve_read(c, &whole, s, buf,
			    room, &cluster, walk.end, &clusters);

			sieve_clusters(s, &whole, chunk, cluster, clusters);
			cluster += clusters;
		}
	}
	input_unmap(c);
	input_move(c, 0);
	if ((error = layout_of_sieve(plan, &whole, s)) != LAYOUT_OK)
		diex(1, "%s", layout_strerror(error));
}

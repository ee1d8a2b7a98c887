/*
 * stream.c: the stream form of an image, whole or a slice of it; see
 * stream.h and, for where each cluster goes, layout.h.
 */
#define _GNU_SOURCE

#include <string.h>

#include "files.h"
#include "report.h"
#include "stream.h"
#include "util.h"

void
write_meta_clusters(struct copier *c, struct meta_writer *mw, uint64_t count,
    size_t cut)
{
	uint64_t left = layout_meta_clusters(mw->lo) - mw->emitted;
	size_t cs = mw->lo->cluster_size;

	if (count > left)
		count = left;
	for (uint64_t i = 0; i < count; i++)
		meta_writer_next(mw, output_slot(c, cs));
	if (count > 0)
		output_cut(c, cut);
	output_flush(c);
}

size_t
cut_at_end(const struct layout *lo)
{
	return (size_t)(lo->total_clusters * lo->cluster_size - layout_image_size(lo));
}

/* An interrupted or failed run cannot leave an image that passes qemu-img check. */
void
write_header_last(struct copier *c, const struct layout *lo, uint64_t start,
    uint64_t from, uint64_t to)
{
	struct meta_writer mw;
	size_t room;
	unsigned char *header = output_room(c, &room);

	meta_writer_init(&mw, lo);
	meta_writer_next(&mw, header);
	output_rewrite(c, start, header + from, (size_t)(to - from));
	if (from == 0)
		guard_header(output_of(c), start);
}

/* A partial last cluster is padded with zeros. */
void
write_stream(struct copier *c, const struct layout *lo)
{
	uint64_t start = output_of(c)->offset;
	int header_last = output_can_rewrite(c);
	struct meta_writer mw;
	struct run_walk walk;
	size_t room;

	/* The exact size is known: all of it at once. */
	output_reserve(c, start + layout_image_size(lo), 1);
	meta_writer_init(&mw, lo);
	if (header_last) {
		meta_writer_next(&mw, output_room(c, &room));
		output_zeros(c, lo->cluster_size);
	}
	/* Without data, the metadata ends the file, maybe inside its last cluster. */
	write_meta_clusters(c, &mw, UINT64_MAX,
	    lo->data_clusters == 0 ? cut_at_end(lo) : 0);
	run_walk_init(&walk, lo);
	while (run_next(&walk)) {
		uint64_t first = walk.first << lo->cluster_bits;
		uint64_t end = walk.end << lo->cluster_bits;
		uint64_t input_end = min_u64(end, lo->input_size);

		input_pass_unstored(c, first - input_of(c)->offset);
		input_copy_exact(c, input_end - first);
		output_zeros(c, end - input_end);
	}
	input_finish(c);
	output_flush(c);
	if (header_last)
		write_header_last(c, lo, start, 0, lo->cluster_size);
}

/*
 * Metadata bytes [from, to) of the stream form, all before the data: the
 * meta writer starts at the cluster that holds from.
 */
static void
write_meta_slice(struct copier *c, const struct layout *lo, uint64_t from,
    uint64_t to)
{
	size_t cs = lo->cluster_size;
	struct meta_writer mw;

	meta_writer_init(&mw, lo);
	meta_writer_seek(&mw, from >> lo->cluster_bits);
	while (from < to) {
		size_t skip = (size_t)(from & (cs - 1));
		size_t take = (size_t)min_u64(to - from, cs - skip);
		unsigned char *cluster = output_slot(c, cs);

		meta_writer_next(&mw, cluster);
		/* The header of a regular output is written last. */
		if (from < cs && output_can_rewrite(c))
			memset(cluster, 0, cs);
		memmove(cluster, cluster + skip, take);
		output_cut(c, cs - take);
		from += take;
	}
}

/*
 * Bring the input to guest byte pos of a stored cluster, the first the
 * slice copies.  A file seeks there; a pipe, which starts at byte 0 of the
 * disk, is read up to it and checked as the whole stream would be: zeros
 * outside the ranges, anything inside them.
 */
static void
reach_input(struct copier *c, const struct layout *lo, uint64_t pos)
{
	uint64_t until = min_u64(pos, lo->input_size);
	uint64_t cluster_start = (pos >> lo->cluster_bits) << lo->cluster_bits;
	struct run_walk walk;

	if (io_seekable(input_of(c))) {
		input_seek(c, until);
		return;
	}
	run_walk_init(&walk, lo);
	while (run_next(&walk) && (walk.first << lo->cluster_bits) < cluster_start) {
		uint64_t first = walk.first << lo->cluster_bits;
		uint64_t stop = min_u64(min_u64(walk.end << lo->cluster_bits,
		    cluster_start), lo->input_size);

		input_pass_unstored(c, first - input_of(c)->offset);
		input_skip_exact(c, stop - first);
	}
	input_pass_unstored(c, cluster_start - input_of(c)->offset);
	input_skip_exact(c, until - input_of(c)->offset);
}

/*
 * From a file, the input before data cluster k that no cluster stores,
 * from the end of cluster k - 1 to guest byte pos, where k begins: the
 * slice that holds the first byte of k checks it, since no other will.
 * A pipe is read and checked from byte 0 by reach_input.
 */
static void
check_gap_before(struct copier *c, const struct layout *lo, uint64_t k,
    uint64_t pos)
{
	uint64_t gap_start = 0;
	struct run_walk previous;

	if (!io_seekable(input_of(c)))
		return;
	if (k > 0 && run_walk_seek(&previous, lo, k - 1))
		gap_start = (previous.first + 1) << lo->cluster_bits;
	pos = min_u64(pos, lo->input_size);
	if (gap_start >= pos)
		return;
	/* The input has not moved: a slice starts it at 0. */
	input_seek(c, gap_start);
	input_pass_unstored(c, pos - gap_start);
}

/*
 * Data bytes [from, to) of the stream form: from data cluster k on, the
 * runs of the walk, each cluster's bytes from the input and zeros past
 * its end, and between runs the input checked as the stream would.
 */
static void
write_data_slice(struct copier *c, const struct layout *lo, uint64_t from,
    uint64_t to)
{
	uint64_t offset = from - lo->data_offset, left = to - from, pos;
	uint64_t k = offset >> lo->cluster_bits;
	struct run_walk walk;

	run_walk_init(&walk, lo);
	if (!run_walk_seek(&walk, lo, k))
		return;
	pos = (walk.first << lo->cluster_bits) + (offset & (lo->cluster_size - 1));
	if ((offset & (lo->cluster_size - 1)) == 0)
		check_gap_before(c, lo, k, pos);
	reach_input(c, lo, pos);
	for (;;) {
		uint64_t run_end = walk.end << lo->cluster_bits;
		uint64_t input_end = min_u64(run_end, lo->input_size);
		uint64_t n;

		if (pos < input_end) {
			n = min_u64(input_end - pos, left);
			input_copy_exact(c, n);
			pos += n;
			left -= n;
		}
		n = min_u64(run_end - pos, left);
		output_zeros(c, n);
		left -= n;
		if (left == 0 || !run_next(&walk))
			break;
		pos = walk.first << lo->cluster_bits;
		input_pass_unstored(c, pos - input_of(c)->offset);
	}
}

void
write_slice(struct copier *c, const struct layout *lo, uint64_t from, uint64_t to)
{
	uint64_t start = output_of(c)->offset;

	output_reserve(c, start + (to - from), 1);
	if (from < lo->data_offset)
		write_meta_slice(c, lo, from, min_u64(to, lo->data_offset));
	if (to > lo->data_offset && to > from)
		write_data_slice(c, lo, max_u64(from, lo->data_offset), to);
	/*
	 * The slice that ends the image checks what follows its last stored
	 * cluster, to the end of the input, as the whole stream would: an
	 * image of no data clusters, all of it.
	 */
	if (to == layout_image_size(lo) && to > from)
		input_finish(c);
	output_flush(c);
	/* A slice that holds the header: written last, as for the whole. */
	if (from < lo->cluster_size && to > from && output_can_rewrite(c))
		write_header_last(c, lo, start, from, min_u64(to, lo->cluster_size));
}

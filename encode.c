/*
 * encode.c: the image forms; see encode.h and, for where each cluster
 * goes, layout.h.
 */
#define _GNU_SOURCE

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "encode.h"

#define RESERVE_STEP	(UINT64_C(64) << 20)	/* -o: fallocate this far ahead */

/*
 * The next count metadata clusters, gathered into large writes, the last
 * one written but for its last cut bytes: where the file ends inside it.
 */
static void
write_meta_clusters(struct copier *c, struct meta_writer *mw, uint64_t count,
    size_t cluster_size, size_t cut)
{
	uint64_t left = layout_meta_clusters(mw->lo) - mw->emitted;

	if (count > left)
		count = left;
	for (uint64_t i = 0; i < count; i++) {
		if (c->filled + cluster_size > c->buffer_size)
			flush_buffer(c);
		meta_writer_next(mw, c->buffer + c->filled);
		c->filled += cluster_size;
	}
	if (count > 0)
		c->filled -= cut;
	flush_buffer(c);
}

/* The bytes of the last cluster past the file's end (see layout_image_size). */
static size_t
cut_at_end(const struct layout *lo)
{
	return (size_t)(lo->total_clusters * lo->cluster_size - layout_image_size(lo));
}

/*
 * The header, written over the first cluster of a regular output once the
 * rest is complete: until then the file, a cluster of zeros at the start,
 * is no image, so that an interrupted or failed run cannot leave one that
 * passes qemu-img check.
 */
static void
write_header_last(struct copier *c, const struct layout *lo, uint64_t start)
{
	struct meta_writer mw;

	flush_buffer(c);
	meta_writer_init(&mw, lo);
	meta_writer_next(&mw, c->buffer);
	rewrite_output(c, start, c->buffer, lo->cluster_size);
	guard_header(c->out, start);
}

/* A partial last cluster is padded with zeros. */
void
write_stream(struct copier *c, const struct layout *lo)
{
	uint64_t start = c->out->offset;
	struct meta_writer mw;
	struct run_walk walk;

	/* The exact size is known: all of it at once. */
	reserve_output(c, c->out->offset + layout_image_size(lo), 1);
	meta_writer_init(&mw, lo);
	if (c->can_rewrite) {
		meta_writer_next(&mw, c->buffer);
		write_zeros(c, lo->cluster_size);
	}
	/* Without data, the metadata ends the file, maybe inside its last cluster. */
	write_meta_clusters(c, &mw, UINT64_MAX, lo->cluster_size,
	    lo->data_clusters == 0 ? cut_at_end(lo) : 0);
	run_walk_init(&walk, lo);
	while (run_next(&walk)) {
		uint64_t start = walk.first << lo->cluster_bits;
		uint64_t end = walk.end << lo->cluster_bits;
		uint64_t input_end = end < lo->input_size ? end : lo->input_size;

		skip_unstored(c, start - c->in->offset);
		copy_bytes(c, input_end - start);
		write_zeros(c, end - input_end);
	}
	finish_input(c);
	flush_buffer(c);
	if (c->can_rewrite)
		write_header_last(c, lo, start);
}

/* Add guest cluster `cluster` to the ranges stored, clipped to the input. */
static void
note_stored(struct range_list *stored, uint64_t cluster, const struct layout *lo)
{
	uint64_t offset = cluster << lo->cluster_bits;
	uint64_t left = lo->input_size - offset;
	uint64_t length = left < lo->cluster_size ? left : lo->cluster_size;
	struct range *last = stored->n > 0 ? &stored->v[stored->n - 1] : NULL;

	if (last != NULL && last->offset + last->length == offset)
		last->length += length;
	else if (ranges_add(stored, offset, length) == -1)
		die(1, "stored clusters");
}

/*
 * If the input's next cluster lies in a hole, skip to the first cluster
 * that may hold data (holes are zeros, which are dropped) but not past
 * end, and return 1.
 */
static int
skip_hole(struct copier *c, const struct layout *lo, uint64_t *first, uint64_t end)
{
	uint64_t data, hole, next;
	int found;

	if (*first >= end || !c->seek_data || (found = next_data(c, &data, &hole)) == -1)
		return 0;
	next = found == 0 ? end : data >> lo->cluster_bits;
	if (next <= *first)
		return 0;
	*first = next < end ? next : end;
	next = *first << lo->cluster_bits;
	seek_input(c, next < lo->input_size ? next : lo->input_size);
	return 1;
}

/*
 * Read up to the buffer's room of guest clusters [first, end) into the
 * buffer after what it holds, zero-padded past the input's end; returns
 * how many.  Holes are skipped first, if skip_holes says so.
 */
static uint64_t
read_clusters(struct copier *c, const struct layout *lo, uint64_t *first,
    uint64_t end, int skip_holes)
{
	size_t cs = lo->cluster_size;
	uint64_t room = (c->buffer_size - c->filled) / cs;
	uint64_t clusters;
	size_t bytes, from_input;
	uint64_t left;

	while (skip_holes && skip_hole(c, lo, first, end))
		;
	clusters = end - *first < room ? end - *first : room;
	bytes = clusters * cs;
	left = lo->input_size - c->in->offset;
	from_input = left < bytes ? (size_t)left : bytes;
	read_exact(c, c->buffer + c->filled, from_input);
	memset(c->buffer + c->filled + from_input, 0, bytes - from_input);
	return clusters;
}

/*
 * A hole of the input reads as zeros, which are dropped unless they hide
 * a backing file: then the hole must be read like the rest.
 */
static int
holes_dropped(const struct sorting *s)
{
	return s->zeros_are == ZEROS_DROPPED && s->base == NULL;
}

/*
 * What becomes of each of the clusters just read into chunk, guest
 * clusters from first on: kept as data (1), or not (0), in which case a
 * zero cluster is noted where zeros hide a backing file.  With --diff a
 * cluster equal to the previous disk's is not kept: the backing file
 * holds it.
 */
static void
sort_clusters(struct sorting *s, const struct layout *lo, const unsigned char *chunk,
    uint64_t first, uint64_t clusters, unsigned char *keep)
{
	size_t cs = lo->cluster_size;

	if (s->base != NULL)
		read_base(s->base, s->base_buffer, clusters * cs, first << lo->cluster_bits);
	for (uint64_t i = 0; i < clusters; i++) {
		const unsigned char *cluster = chunk + i * cs;

		keep[i] = 0;
		if (s->base != NULL && memcmp(cluster, s->base_buffer + i * cs, cs) == 0)
			continue;
		if (first_nonzero(cluster, cs) != cs || s->zeros_are == ZEROS_STORED) {
			keep[i] = 1;
			note_stored(&s->kept, first + i, lo);
		} else if (s->zeros_are == ZEROS_MARKED) {
			note_stored(&s->zeros, first + i, lo);
		}
	}
}

/*
 * n kept clusters at chunk, guest clusters from first on: shared with the
 * input by copy_file_range where the kernel can, the rest written (the
 * chunk holds them, zeros past the input's end included).
 */
static void
keep_run(struct copier *c, const struct layout *lo, const unsigned char *chunk,
    uint64_t first, uint64_t n)
{
	uint64_t bytes = n * lo->cluster_size;
	uint64_t shared;

	/* Where the kernel copies rather than shares, reserved blocks are faster. */
	reserve_span(c, bytes);
	shared = bytes > 0 ? share_range(c, first << lo->cluster_bits, bytes) : 0;

	if (shared < bytes)
		write_out(c, chunk + shared, bytes - shared);
}

/*
 * Guest clusters [first, end) to the output, those that sort_clusters
 * keeps.  Between two regular files they go by copy_file_range, which
 * shares extents on XFS and btrfs; otherwise they are read straight into
 * the buffer, and a kept cluster moves down only once a dropped one has
 * left a gap before it.
 */
static void
copy_kept(struct copier *c, const struct layout *lo, uint64_t first,
    uint64_t end, struct sorting *s)
{
	size_t cs = lo->cluster_size;

	while (first < end) {
		int sharing = c->use_copy_range;
		unsigned char *chunk = c->buffer + c->filled;
		uint64_t clusters, run = 0;

		if (c->filled + cs > c->buffer_size) {
			/* In steps: the final size is known only to be at most the plan's. */
			uint64_t ahead = c->out->offset + RESERVE_STEP;

			reserve_output(c, ahead < layout_image_size(lo) ? ahead :
			    layout_image_size(lo), 0);
			flush_buffer(c);
			continue;
		}
		if ((clusters = read_clusters(c, lo, &first, end, holes_dropped(s))) == 0)
			break;
		sort_clusters(s, lo, chunk, first, clusters, s->keep);
		for (uint64_t i = 0; i < clusters; i++) {
			unsigned char *cluster = chunk + i * cs;

			if (!s->keep[i]) {
				if (sharing)
					keep_run(c, lo, chunk + run * cs, first + run, i - run);
				run = i + 1;
				continue;
			}
			if (sharing)
				continue;
			if (cluster != c->buffer + c->filled)
				memmove(c->buffer + c->filled, cluster, cs);
			c->filled += cs;
		}
		if (sharing)
			keep_run(c, lo, chunk + run * cs, first + run, clusters - run);
		first += clusters;
	}
}

/*
 * The clusters after the header hold the L1 table, whose size the virtual
 * size alone sets, never guest data, which a file system probe could take
 * for the guest's superblock.  Every write goes forward but the last,
 * of the header and the L1 table.
 */
void
write_sparse(struct copier *c, const struct layout *plan, struct sorting *s,
    struct layout *lo)
{
	uint64_t head = (1 + plan->l1_clusters) * plan->cluster_size;
	enum layout_error error;
	struct meta_writer mw;
	struct run_walk walk;

	if (lseek(c->out->fd, (off_t)head, SEEK_SET) == -1)
		die(1, "%s", c->out->name);
	c->out->offset = c->reserved = head;
	sorting_start(s, c);
	run_walk_init(&walk, plan);
	while (run_next(&walk)) {
		skip_unstored(c, (walk.first << plan->cluster_bits) - c->in->offset);
		copy_kept(c, plan, walk.first, walk.end, s);
	}
	finish_input(c);
	flush_buffer(c);
	/* A subset of the plan's clusters: it fits wherever the plan did. */
	if ((error = layout_of_sorting(lo, plan, s)) != LAYOUT_OK)
		diex(1, "%s", layout_strerror(error));
	layout_data_first(lo);
	if (c->out->offset != lo->l2_offset || lo->data_offset != head)
		diex(1, "internal error: %" PRIu64 " bytes of data, layout says %" PRIu64,
		    c->out->offset, lo->l2_offset);
	/* The tables after the data, then the header and the L1 table. */
	meta_writer_init(&mw, lo);
	meta_writer_seek(&mw, lo->l2_offset >> lo->cluster_bits);
	write_meta_clusters(c, &mw, UINT64_MAX, lo->cluster_size, cut_at_end(lo));
	/* Give back what was reserved past the end. */
	if (c->reserved > c->out->offset && ftruncate(c->out->fd, (off_t)c->out->offset) == -1)
		die(1, "%s", c->out->name);
	if (lseek(c->out->fd, 0, SEEK_SET) == -1)
		die(1, "%s", c->out->name);
	c->out->offset = 0;
	meta_writer_init(&mw, lo);
	write_meta_clusters(c, &mw, 1 + lo->l1_clusters, lo->cluster_size, 0);
}

void
first_pass(struct copier *c, const struct layout *plan, struct sorting *s)
{
	struct run_walk walk;

	sorting_start(s, c);
	run_walk_init(&walk, plan);
	while (run_next(&walk)) {
		uint64_t cluster = walk.first;

		seek_input(c, cluster << plan->cluster_bits);
		while (cluster < walk.end) {
			uint64_t clusters = read_clusters(c, plan, &cluster, walk.end,
			    holes_dropped(s));

			sort_clusters(s, plan, c->buffer, cluster, clusters, s->keep);
			cluster += clusters;
		}
	}
	if (lseek(c->in->fd, 0, SEEK_SET) == -1)
		die(1, "%s", c->in->name);
	c->in->offset = 0;
}

void
sorting_start(struct sorting *s, const struct copier *c)
{
	if ((s->keep = malloc(c->buffer_size)) == NULL ||
	    (s->base != NULL && (s->base_buffer = malloc(c->buffer_size)) == NULL))
		die(1, "buffer");
}

void
sorting_free(struct sorting *s)
{
	ranges_free(&s->kept);
	ranges_free(&s->zeros);
	free(s->keep);
	free(s->base_buffer);
	s->keep = s->base_buffer = NULL;
}

enum layout_error
layout_of_sorting(struct layout *lo, const struct layout *plan,
    const struct sorting *s)
{
	enum layout_error error;

	if ((error = layout_init(lo, plan->input_size, plan->cluster_bits,
	    s->kept.v, s->kept.n)) != LAYOUT_OK ||
	    (error = layout_set_header(lo, plan->version, plan->backing_file,
	    plan->backing_format)) != LAYOUT_OK)
		return error;
	return s->zeros.n > 0 ? layout_set_zeros(lo, s->zeros.v, s->zeros.n) : LAYOUT_OK;
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
		size_t take = to - from < cs - skip ? (size_t)(to - from) : cs - skip;
		unsigned char *cluster;

		if (c->filled + cs > c->buffer_size)
			flush_buffer(c);
		cluster = c->buffer + c->filled;
		meta_writer_next(&mw, cluster);
		/* The header of a regular output is written last. */
		if (from < cs && c->can_rewrite)
			memset(cluster, 0, cs);
		memmove(cluster, cluster + skip, take);
		c->filled += take;
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
	uint64_t until = pos < lo->input_size ? pos : lo->input_size;
	uint64_t cluster_start = (pos >> lo->cluster_bits) << lo->cluster_bits;
	struct run_walk walk;

	if (io_seekable(c->in)) {
		seek_input(c, until);
		return;
	}
	run_walk_init(&walk, lo);
	while (run_next(&walk) && (walk.first << lo->cluster_bits) < cluster_start) {
		uint64_t start = walk.first << lo->cluster_bits;
		uint64_t stop = walk.end << lo->cluster_bits;

		if (stop > cluster_start)
			stop = cluster_start;
		if (stop > lo->input_size)
			stop = lo->input_size;
		skip_unstored(c, start - c->in->offset);
		skip_input(c, stop - start);
	}
	skip_unstored(c, cluster_start - c->in->offset);
	skip_input(c, until - c->in->offset);
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

	if (!io_seekable(c->in))
		return;
	if (k > 0 && run_walk_seek(&previous, lo, k - 1))
		gap_start = (previous.first + 1) << lo->cluster_bits;
	if (pos > lo->input_size)
		pos = lo->input_size;
	if (gap_start >= pos)
		return;
	/* The input has not moved: a slice starts it at 0. */
	seek_input(c, gap_start);
	skip_unstored(c, pos - gap_start);
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
		uint64_t input_end = run_end < lo->input_size ? run_end : lo->input_size;
		uint64_t n;

		if (pos < input_end) {
			n = input_end - pos < left ? input_end - pos : left;
			copy_bytes(c, n);
			pos += n;
			left -= n;
		}
		n = run_end - pos < left ? run_end - pos : left;
		write_zeros(c, n);
		left -= n;
		if (left == 0 || !run_next(&walk))
			break;
		pos = walk.first << lo->cluster_bits;
		skip_unstored(c, pos - c->in->offset);
	}
}

void
write_slice(struct copier *c, const struct layout *lo, uint64_t from, uint64_t to)
{
	uint64_t start = c->out->offset;

	reserve_output(c, c->out->offset + (to - from), 1);
	if (from < lo->data_offset)
		write_meta_slice(c, lo, from, to < lo->data_offset ? to : lo->data_offset);
	if (to > lo->data_offset && to > from)
		write_data_slice(c, lo, from > lo->data_offset ? from : lo->data_offset, to);
	/*
	 * The slice that ends the image checks what follows its last stored
	 * cluster, to the end of the input, as the whole stream would: an
	 * image of no data clusters, all of it.
	 */
	if (to == layout_image_size(lo) && to > from)
		finish_input(c);
	flush_buffer(c);
	/* A slice that holds the header: written last, as for the whole. */
	if (from < lo->cluster_size && to > from && c->can_rewrite) {
		struct meta_writer mw;
		uint64_t end = to < lo->cluster_size ? to : lo->cluster_size;

		meta_writer_init(&mw, lo);
		meta_writer_next(&mw, c->buffer);
		rewrite_output(c, start, c->buffer + from, (size_t)(end - from));
		if (from == 0)
			guard_header(c->out, start);
	}
}

/*
 * --sparsify and --diff: a first pass finds what to store, and the plan is
 * made again of it.
 */
void
sort_first(struct copier *c, struct layout *plan, struct sorting *s)
{
	struct layout whole = *plan;
	enum layout_error error;

	if (!io_seekable(c->in))
		diex(2, "--%s reads the input twice, and %s is not a file or a block "
		    "device (-o FILE does it in one pass)", s->base != NULL ?
		    "diff" : "sparsify", c->in->name);
	first_pass(c, &whole, s);
	if ((error = layout_of_sorting(plan, &whole, s)) != LAYOUT_OK)
		diex(1, "%s", layout_strerror(error));
}

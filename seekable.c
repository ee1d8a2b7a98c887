/*
 * seekable.c: the seekable form of an image, -o's; see seekable.h and,
 * for where each cluster goes, layout.h.
 */
#define _GNU_SOURCE

#include <inttypes.h>

#include "report.h"
#include "seekable.h"
#include "stream.h"
#include "util.h"

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
	output_reserve_span(c, bytes);
	shared = bytes > 0 ? input_share(c, first << lo->cluster_bits, bytes) : 0;
	if (shared < bytes)
		output_write(c, chunk + shared, (size_t)(bytes - shared));
}

/*
 * Guest clusters [first, end), all kept whatever they hold (--no-sparsify,
 * no --diff): shared or copied by the kernel without being read here
 * (on reflink XFS, no byte of the data is read at all), the rest, if the
 * kernel refuses, read and written; zeros past the input's end.
 */
static void
keep_all(struct copier *c, const struct layout *lo, struct sieve *s,
    uint64_t first, uint64_t end)
{
	uint64_t from = first << lo->cluster_bits;
	uint64_t to = min_u64(end << lo->cluster_bits, lo->input_size), shared;

	sieve_keep(s, lo, first, end);
	output_reserve_span(c, to - from);
	shared = input_share(c, from, to - from);
	input_seek(c, from + shared);
	input_copy_exact(c, to - from - shared);
	output_zeros(c, (end << lo->cluster_bits) - to);
}

/*
 * Guest clusters [first, end) to the output, those that the sieve keeps.
 * Between two regular files they go by copy_file_range, which shares
 * extents on XFS and btrfs; otherwise they are read straight into the
 * buffer, and a kept cluster moves down only once a dropped one has left
 * a gap before it.
 */
static void
copy_kept(struct copier *c, const struct layout *lo, uint64_t first,
    uint64_t end, struct sieve *s)
{
	size_t cs = lo->cluster_size, room;

	while (first < end) {
		int sharing = copier_shares(c);
		uint64_t clusters, run = 0;
		unsigned char *buf;
		const unsigned char *chunk;

		/* The final size is known only to be at most the plan's. */
		output_reserve_ahead(c, layout_image_size(lo));
		buf = output_room(c, &room);
		chunk = sieve_read(c, lo, s, buf, room, &first, end, &clusters);
		if (clusters == 0)
			break;
		sieve_clusters(s, lo, chunk, first, clusters);
		for (uint64_t i = 0; i < clusters; i++) {
			if (!s->keep[i]) {
				if (sharing)
					keep_run(c, lo, chunk + run * cs, first + run, i - run);
				run = i + 1;
			} else if (!sharing) {
				output_keep(c, chunk + i * cs, cs);
			}
		}
		if (sharing)
			keep_run(c, lo, chunk + run * cs, first + run, clusters - run);
		first += clusters;
	}
}

/*
 * The image in the stream order (layout.h): the data goes from the
 * plan's data offset as it is read, and the tables, which only then are
 * known, are written back before it, the room they leave a hole.  The
 * header and the L1 table go last, so that a run cut short leaves no
 * image.
 */
void
write_seekable(struct copier *c, const struct layout *plan, struct sieve *s,
    struct layout *lo)
{
	uint64_t head = (1 + plan->l1_clusters) * plan->cluster_size, written;
	enum layout_error error;
	struct meta_writer mw;
	struct run_walk walk;

	output_seek(c, plan->data_offset);
	run_walk_init(&walk, plan);
	while (run_next(&walk)) {
		input_pass_unstored(c, (walk.first << plan->cluster_bits) -
		    input_of(c)->offset);
		if (sieve_keeps_all(s))
			keep_all(c, plan, s, walk.first, walk.end);
		else
			copy_kept(c, plan, walk.first, walk.end, s);
	}
	input_finish(c);
	input_unmap(c);
	output_flush(c);
	/* A subset of the plan's clusters: it fits wherever the plan did. */
	if ((error = layout_of_sieve(lo, plan, s)) != LAYOUT_OK ||
	    (error = layout_within(lo, plan)) != LAYOUT_OK)
		diex(1, "%s", layout_strerror(error));
	written = output_of(c)->offset - plan->data_offset;
	if (written != lo->data_clusters * lo->cluster_size)
		diex(1, "internal error: %" PRIu64 " bytes of data, layout says %" PRIu64,
		    written, lo->data_clusters * lo->cluster_size);
	/* Cut where it ends (blocks were reserved ahead), then the tables back. */
	output_seek(c, layout_image_size(lo));
	output_end(c);
	meta_writer_init(&mw, lo);
	meta_writer_seek(&mw, head >> lo->cluster_bits);
	output_seek(c, head);
	write_meta_clusters(c, &mw, UINT64_MAX, lo->data_clusters == 0 ?
	    cut_at_end(lo) : 0);
	output_seek(c, 0);
	meta_writer_init(&mw, lo);
	write_meta_clusters(c, &mw, 1 + lo->l1_clusters, 0);
}

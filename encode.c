/*
 * encode.c: making an image, from options to the committed output; see
 * encode.h.  decode.c is its mirror.
 */
#define _GNU_SOURCE

#include <sys/stat.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backing.h"
#include "base.h"
#include "copier.h"
#include "encode.h"
#include "files.h"
#include "layout.h"
#include "packed.h"
#include "range_print.h"
#include "ranges.h"
#include "report.h"
#include "seekable.h"
#include "sieve.h"
#include "stream.h"

/* One making of an image: its ends, its ranges, its plan. */
struct encoding {
	const struct options *opt;
	struct io in, out;
	int new_file;			/* -o's temporary file: the seekable form */
	int sparsify;			/* opt's, or the default for the input */
	struct range_list ranges;
	struct base base;
	struct sieve sieve;
	struct layout plan, written;
	struct packed packed;		/* -z to a stream: the first pass's lengths */
	struct copier *c;
};

/*
 * With all it needs given, --print-size does not look at the input: the
 * size and the ranges are known, and nothing is to be sparsified.
 */
static int
needs_input(const struct options *opt)
{
	struct stat st;

	if (!opt->print_size || !opt->have_size || opt->ranges_path == NULL ||
	    opt->sparsify == 1 || opt->diff_path != NULL || opt->input_path != NULL)
		return 1;
	/* Not said: a file on stdin is sparsified by the run this size is for. */
	return opt->sparsify == -1 && fstat(STDIN_FILENO, &st) == 0 &&
	    (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) && isatty(STDIN_FILENO) == 0 &&
	    !stdin_was_closed();
}

/*
 * Both ends, refused before any work is done if they cannot be right: a
 * terminal, stderr as the output of -p or -v, the input as the output.
 */
static void
open_ends(struct encoding *e)
{
	const struct options *opt = e->opt;

	refuse_own_backing(opt->output_path, opt->backing_file);
	if (!opt->print_size)
		e->new_file = open_output(opt->output_path, &e->out);
	if ((opt->progress || opt->verbose) && !opt->print_size && is_stderr(&e->out))
		diex(2, "stderr is the output: -p and -v would write into the image");
	if (needs_input(opt)) {
		open_input(opt->input_path, &e->in);
		if (!opt->print_size && same_file(&e->in, &e->out))
			diex(1, "%s: input file is output file", e->in.name);
	}
	if (!opt->print_size)
		ready_output(&e->out);
}

/* --size, or the size of the input; the two must agree. */
static uint64_t
disk_size(const struct options *opt, const struct io *in)
{
	int seekable = io_seekable(in);

	if (!opt->have_size) {
		if (!seekable)
			diex(2, "--size is needed when %s is not a file or a block device",
			    in->name);
		return in->size;
	}
	if (seekable && in->size < opt->size)
		diex(1, "input ended at offset %" PRIu64 ", before --size %" PRIu64,
		    in->size, opt->size);
	if (seekable && in->size > opt->size)
		diex(1, "input longer than --size %" PRIu64, opt->size);
	return opt->size;
}

/*
 * The ranges of the range file; without one, the data that a file on the
 * input holds, or else the whole disk.
 */
static void
load_ranges(const struct options *opt, struct io *in, const struct io *out,
    struct range_list *list)
{
	struct ranges_error error;
	FILE *f;

	if (opt->ranges_path == NULL) {
		if (io_seekable(in))
			data_ranges(in, in->size, list);
		else if (in->size > 0 && ranges_add(list, 0, in->size) == -1)
			die(1, "ranges");
		return;
	}
	refuse_closed(opt->ranges_path);
	if ((f = fopen(opt->ranges_path, "r")) == NULL)
		die(1, "%s", opt->ranges_path);
	/* A range file the shell has just emptied for the image (> r) lists nothing. */
	if (is_output(fileno(f), out))
		diex(1, "%s: the range file is the output file", opt->ranges_path);
	if (ranges_read(f, in->size, opt->backing_file != NULL, list, &error) == -1) {
		if (ferror(f))
			die(1, "%s", opt->ranges_path);
		if (error.line == 0)
			diex(1, "%s: %s", opt->ranges_path, error.why);
		diex(1, "%s line %lu: %s", opt->ranges_path, error.line, error.why);
	}
	fclose(f);
	ranges_merge(list);
}

/* For a size whose L1 table is too large: the cluster size that fits it. */
static const char *
cluster_size_that_fits(uint64_t size)
{
	static char advice[64];
	struct layout lo;

	for (unsigned bits = MIN_CLUSTER_BITS; bits <= MAX_CLUSTER_BITS; bits++) {
		if (layout_init(&lo, size, bits, NULL, 0) == LAYOUT_L1_TOO_LARGE)
			continue;
		snprintf(advice, sizeof(advice), "-c %u%s or more makes it fit",
		    bits >= 20 ? 1u << (bits - 20) : 1u << (bits - 10), bits >= 20 ? "M" : "k");
		return advice;
	}
	return "no cluster size does: QEMU opens at most 2 EiB, at -c 2M";
}

/* The layout of the ranges, with the header the options ask for. */
static void
plan_image(struct encoding *e)
{
	enum layout_error error;

	if ((error = layout_init(&e->plan, e->in.size, e->opt->cluster_bits,
	    e->ranges.v, e->ranges.n)) == LAYOUT_L1_TOO_LARGE)
		diex(1, "%s: %s", layout_strerror(error), cluster_size_that_fits(e->in.size));
	if (error != LAYOUT_OK)
		diex(1, "%s", layout_strerror(error));
	/* Only the options make the header: what is wrong there is usage. */
	if ((error = layout_set_header(&e->plan, e->opt->version, e->opt->backing_file,
	    e->opt->backing_format)) != LAYOUT_OK)
		diex(2, "%s", layout_strerror(error));
}

/*
 * The backing file, looked at where the image goes, as QEMU will open it
 * (-u: not at all); with --diff, the previous disk must be its disk.
 */
static void
check_overlay(const struct encoding *e)
{
	const struct options *opt = e->opt;
	const char *image_path = opt->output_path == NULL ? stdout_path() :
	    e->out.in_place ? NULL : opt->output_path;
	struct backing found;
	uint64_t base_size;

	if (opt->unsafe_backing || opt->print_size ||
	    !check_backing(opt->backing_file, opt->backing_format, image_path, &found))
		return;
	if (opt->diff_path == NULL || !found.size_known)
		return;
	/* An image holds a disk rounded up to whole sectors, as QEMU reads it. */
	base_size = e->base.disk_size;
	if (strcmp(found.format, "qcow2") == 0 && !e->base.is_image)
		base_size = (base_size + 511) / 512 * 512;
	if (base_size != found.disk_size)
		diex(1, "--diff %s holds %" PRIu64 " bytes, -b %s a disk of %" PRIu64
		    ": they must be the same disk (a partial copy?)", opt->diff_path,
		    e->base.disk_size, opt->backing_file, found.disk_size);
}

/*
 * A file can be read twice, and dropping its clusters of zeros costs less
 * than the bytes it saves, so it is sparsified by default; -o drops them
 * in its one pass.  A slice would scan the whole disk for its part, and
 * has no default: one that cut another image than its job's would join
 * into garbage.  Over a backing file zeros hide its data: zero clusters,
 * or data in version 2; and with -o, --no-sparsify stores them as data,
 * as the stream form does.
 */
static void
choose_sieve(struct encoding *e)
{
	const struct options *opt = e->opt;

	if (opt->sparsify == -1 && opt->slice && io_seekable(&e->in))
		diex(2, "--slice of a file or block device needs --no-sparsify (cut the "
		    "image that option makes) or --sparsify (cut the one made whole "
		    "by default)");
	e->sparsify = opt->sparsify == -1 ? io_seekable(&e->in) && !e->new_file :
	    opt->sparsify;
	if (e->new_file && opt->sparsify == 0)
		e->sieve.zeros_are = ZEROS_STORED;
	else if (opt->backing_file == NULL)
		e->sieve.zeros_are = ZEROS_DROPPED;
	else
		e->sieve.zeros_are = opt->version == 3 ? ZEROS_MARKED : ZEROS_STORED;
}

/* The exact size of the stream form. */
static uint64_t
image_size_of(const struct encoding *e)
{
	if (e->opt->compress)
		return packed_image_size(&e->plan, &e->packed);
	return layout_image_size(&e->plan);
}

/*
 * The image, ready to write: the sieve's first pass done if one is asked
 * for, and what the options demand of the result checked.
 */
static void
plan_final(struct encoding *e, int passes)
{
	const struct options *opt = e->opt;
	uint64_t image_size;

	if (passes == 2 && opt->compress) {
		packed_pass(e->c, &e->plan, &e->sieve, &e->packed);
		progress_next_pass();
	} else if (passes == 2) {
		sieve_pass(e->c, &e->plan, &e->sieve);
		progress_next_pass();
	}
	image_size = image_size_of(e);
	if (opt->have_expect_size && image_size != opt->expect_size)
		diex(1, "the image would be %" PRIu64 " bytes, not the %" PRIu64
		    " of --expect-size: other options, or another disk", image_size,
		    opt->expect_size);
	if (opt->slice && opt->slice_start > image_size)
		diex(1, "--slice starts at %" PRIu64 ", past the end of the image, %"
		    PRIu64 " bytes", opt->slice_start, image_size);
}

/* Write the image planned, or a slice of it, as the output takes it. */
static void
write_image(struct encoding *e)
{
	const struct options *opt = e->opt;
	uint64_t end = image_size_of(e);

	if (e->new_file && opt->compress) {
		write_packed(e->c, &e->plan, &e->sieve, &e->written);
		return;
	}
	if (e->new_file) {
		write_seekable(e->c, &e->plan, &e->sieve, &e->written);
		return;
	}
	if (opt->compress && opt->slice)
		write_packed_slice(e->c, &e->plan, &e->packed, opt->slice_start,
		    opt->slice_end < end ? opt->slice_end : end);
	else if (opt->compress)
		write_packed_stream(e->c, &e->plan, &e->packed);
	else if (opt->slice)
		write_slice(e->c, &e->plan, opt->slice_start,
		    opt->slice_end < end ? opt->slice_end : end);
	else
		write_stream(e->c, &e->plan);
	e->written = e->plan;
	output_end(e->c);
}

static void
print_encode_statistics(const struct encoding *e)
{
	const struct copy_counts *n = copier_counts(e->c);
	char holds[128];

	snprintf(holds, sizeof(holds), "the image: %" PRIu64 " data clusters, %"
	    PRIu64 " metadata clusters", e->written.data_clusters,
	    layout_meta_clusters(&e->written));
	print_statistics(n->read, n->skipped, n->written, holds);
}

/* The size of the image, or of the slice of it, on stdout. */
static void
print_size(const struct encoding *e)
{
	const struct options *opt = e->opt;
	uint64_t end = image_size_of(e);

	if (opt->slice)
		end = opt->slice_end < end ? opt->slice_end : end;
	printf("%" PRIu64 "\n", opt->slice ? end - opt->slice_start : end);
	flush_stdout();
}

int
encode(const struct options *opt)
{
	struct encoding e = { .opt = opt };
	int passes;

	e.in = (struct io){ .fd = -1, .name = "stdin" };
	e.out = (struct io){ .fd = -1, .name = "stdout" };
	open_ends(&e);
	e.in.size = disk_size(opt, &e.in);
	load_ranges(opt, &e.in, &e.out, &e.ranges);
	if (opt->diff_path != NULL) {
		open_base(opt->diff_path, &e.base, e.in.size,
		    opt->ranges_path == NULL ? &e.ranges : NULL);
		e.sieve.base = &e.base;
	}
	if (opt->backing_file != NULL)
		check_overlay(&e);
	plan_image(&e);
	choose_sieve(&e);
	/* A file's first bytes are looked at now; a pipe's before they are copied. */
	if (!opt->raw_format && e.in.fd != -1 && (!opt->print_size || io_seekable(&e.in)))
		refuse_image_input(&e.in, "-d");
	e.c = copier_new(&e.in, &e.out, e.plan.cluster_size,
	    opt->backing_file == NULL ? COPY_CHECK_ZEROS : 0);
	sieve_start(&e.sieve, opt->compress ? packed_chunk_bytes(e.plan.cluster_size) :
	    IO_SIZE > e.plan.cluster_size ? IO_SIZE : e.plan.cluster_size);
	/* -z to a stream learns the length of every stream first. */
	passes = (e.sparsify || opt->diff_path != NULL || opt->compress) &&
	    !e.new_file ? 2 : 1;
	if (opt->progress)
		progress_start(e.in.size, passes, isatty(STDERR_FILENO));
	plan_final(&e, passes);
	if (opt->print_size) {
		print_size(&e);
	} else {
		write_image(&e);
		commit_output(&e.out, opt->fsync);
		count_progress(e.in.offset, copier_counts(e.c)->read, 1);
		if (opt->verbose)
			print_encode_statistics(&e);
	}
	copier_free(e.c);
	sieve_free(&e.sieve);
	if (opt->diff_path != NULL)
		close_base(&e.base);
	ranges_free(&e.ranges);
	packed_free(&e.packed);
	return 0;
}

int
map_disk(const struct options *opt)
{
	struct range_list ranges = { 0 };
	struct io in;

	open_input(opt->input_path, &in);
	if (!io_seekable(&in))
		diex(2, "--map needs a file or a block device, and %s is neither", in.name);
	if (!opt->raw_format)
		refuse_image_input(&in, "-d --map");
	data_ranges(&in, in.size, &ranges);
	print_ranges_header(in.name, in.size);
	for (size_t i = 0; i < ranges.n; i++)
		print_range(ranges.v[i].offset, ranges.v[i].length);
	flush_stdout();
	ranges_free(&ranges);
	return 0;
}

/*
 * decode.c: sqcow2 -d; see decode.h, and image.h for the steps the
 * decoder asks for.
 */
#define _GNU_SOURCE

#include <sys/resource.h>

#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "decode.h"
#include "layout.h"

static _Noreturn void
refuse(const struct copier *c, const struct image_error *error)
{
	diex(1, "%s: %s", c->in->name, error->why);
}

void
read_image_header(struct copier *c, struct image_header *hdr)
{
	struct image_error error;
	size_t got = read_some(c, c->buffer, IMAGE_PROBE_BYTES);
	uint64_t need = image_header_size(c->buffer, got, &error);

	if (need == 0)
		refuse(c, &error);
	if (need > c->buffer_size)
		diex(1, "%s: a first cluster of %" PRIu64 " bytes", c->in->name, need);
	if (need > got)
		got += read_some(c, c->buffer + got, (size_t)need - got);
	if (image_header_parse(hdr, c->buffer, got, &error) == -1)
		refuse(c, &error);
}

/* A table the decoder asked for, read into the buffer and handed back. */
static void
read_table(struct copier *c, struct decoder *d, const struct step *s)
{
	size_t got;

	flush_buffer(c);
	if (d->mode == DECODE_SEEKABLE)
		move_input(c, s->host);
	got = read_some(c, c->buffer, (size_t)s->length);
	if (got < s->length)
		decoder_input_ended(d, s->host + got);
	else
		decoder_table(d, c->buffer, got);
}

/* Bytes of a pipe that nobody needs, or data not wanted for --map. */
static void
skip_step(struct copier *c, struct decoder *d, const struct step *s)
{
	uint64_t got = skip_some(c, s->length);

	if (got < s->length)
		decoder_input_ended(d, s->host + got);
}

static void
copy_data(struct copier *c, struct decoder *d, const struct step *s,
    struct disk_counts *counts)
{
	uint64_t got;

	if (d->mode == DECODE_SEEKABLE)
		move_input(c, s->host);
	reserve_span(c, s->length);
	got = copy_some(c, s->length);
	counts->data += got;
	/* QEMU reads past the end of the file as zeros: the decoder says where. */
	if (got < s->length)
		decoder_input_ended(d, s->host + got);
}

static void
start_decoder(struct copier *c, struct decoder *d, const struct image_header *hdr)
{
	decoder_init(d, hdr, io_seekable(c->in) ? DECODE_SEEKABLE : DECODE_FORWARD,
	    c->in->size);
}

/* What follows the image in a pipe is read, so that its sender ends well. */
static void
drain(struct copier *c)
{
	if (!io_seekable(c->in))
		while (skip_some(c, IO_SIZE) == IO_SIZE)
			;
}

void
write_disk(struct copier *c, const struct image_header *hdr,
    struct disk_counts *counts)
{
	struct decoder d;
	struct step s;

	start_decoder(c, &d, hdr);
	start_output(c);
	while (decoder_next(&d, &s) != STEP_DONE) {
		switch (s.kind) {
		case STEP_TABLE:
			read_table(c, &d, &s);
			break;
		case STEP_SKIP:
			skip_step(c, &d, &s);
			break;
		case STEP_DATA:
			copy_data(c, &d, &s, counts);
			break;
		case STEP_ZEROS:
			zero_output(c, s.length);
			counts->zeros += s.length;
			break;
		case STEP_ERROR:
			refuse(c, &d.error);
		case STEP_DONE:
			break;
		}
	}
	decoder_free(&d);
	end_output(c);
	drain(c);
}

void
print_disk_ranges(struct copier *c, const struct image_header *hdr)
{
	struct data_map map = { 0, 0 }, range;
	struct decoder d;
	struct step s;

	start_decoder(c, &d, hdr);
	do {
		switch (decoder_next(&d, &s)) {
		case STEP_TABLE:
			read_table(c, &d, &s);
			break;
		case STEP_SKIP:
			skip_step(c, &d, &s);
			break;
		case STEP_DATA:
			if (d.mode == DECODE_FORWARD)
				skip_step(c, &d, &s);
			break;
		case STEP_ERROR:
			refuse(c, &d.error);
		case STEP_ZEROS:
		case STEP_DONE:
			break;
		}
		if (data_map_add(&map, &s, &range))
			printf("%" PRIu64 " %" PRIu64 "\n", range.offset, range.length);
	} while (s.kind != STEP_DONE);
	decoder_free(&d);
	drain(c);
}

static void
print_disk_statistics(const struct copier *c, const struct disk_counts *counts)
{
	struct rusage usage;

	if (getrusage(RUSAGE_SELF, &usage) == -1)
		die(1, "getrusage");
	fprintf(stderr, "sqcow2: read %" PRIu64 " bytes, skipped %" PRIu64
	    " by seeking, wrote %" PRIu64 " (%" PRIu64 " of data, %" PRIu64
	    " of zeros, as holes where the output has them), peak memory %ld KiB\n",
	    c->bytes_read, c->bytes_skipped, c->bytes_written, counts->data,
	    counts->zeros, usage.ru_maxrss);
}

int
decode(const struct decode_options *opt)
{
	struct io in = { .fd = -1, .name = "stdin" }, out = { .fd = -1, .name = "stdout" };
	struct disk_counts counts = { 0, 0 };
	struct image_header hdr;
	struct copier c;

	if (!opt->print_size && !opt->map)
		open_output(opt->output_path, &out);
	open_input(opt->input_path, &in);
	if (!opt->print_size && !opt->map && same_file(&in, &out))
		diex(1, "%s: input file is output file", in.name);
	if (!opt->print_size && !opt->map) {
		ready_output(&out);
		if ((opt->progress || opt->verbose) && is_stderr(&out))
			diex(2, "stderr is the output: -p and -v would write into the disk");
	}
	copier_init(&c, &in, &out, UINT64_C(1) << MAX_CLUSTER_BITS);
	/* A raw disk keeps its holes: nothing is reserved ahead. */
	c.use_fallocate = 0;
	c.progress_by_output = 1;
	read_image_header(&c, &hdr);
	if (opt->print_size) {
		printf("%" PRIu64 "\n", hdr.virtual_size);
	} else if (opt->map) {
		print_map_header(in.name, hdr.virtual_size);
		print_disk_ranges(&c, &hdr);
	} else {
		if (opt->progress)
			progress_start(hdr.virtual_size, isatty(STDERR_FILENO));
		write_disk(&c, &hdr, &counts);
		commit_output(&out, opt->fsync);
		count_progress(out.offset, c.bytes_read, 1);
		if (opt->verbose)
			print_disk_statistics(&c, &counts);
	}
	if (opt->print_size || opt->map)
		flush_stdout();
	copier_free(&c);
	return 0;
}

/*
 * decode.c: sqcow2 -d; see decode.h, and decoder.h for the steps the
 * decoder asks for.
 */
#define _GNU_SOURCE


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

/*
 * The data of a step to the output.  The disk's last byte, when data, is
 * held back for finish_disk to write: until then a regular file is shorter
 * than the disk, so that a run that fails or is killed, even by SIGKILL,
 * never leaves a file of the disk's size that a script could take for it.
 */
static void
copy_data(struct copier *c, struct decoder *d, const struct step *s,
    struct disk_counts *counts)
{
	int hold = c->can_rewrite && c->out->kind == IO_FILE &&
	    s->guest + s->length == d->hdr.virtual_size;
	uint64_t got;

	if (d->mode == DECODE_SEEKABLE)
		move_input(c, s->host);
	reserve_span(c, s->length);
	got = copy_some(c, s->length - hold);
	if (hold && got == s->length - 1) {
		got += read_some(c, &counts->last_byte, 1);
		counts->holding = got == s->length;
	}
	counts->data += got;
	/* QEMU reads past the end of the file as zeros: the decoder says where. */
	if (got < s->length)
		decoder_input_ended(d, s->host + got);
}

/* -t: the data of a step read, and no more; the output is the disk checked. */
static void
check_data(struct copier *c, struct decoder *d, const struct step *s,
    struct disk_counts *counts)
{
	uint64_t got = 0;

	if (d->mode == DECODE_SEEKABLE)
		move_input(c, s->host);
	while (got < s->length) {
		uint64_t left = s->length - got;
		size_t chunk = left < IO_SIZE ? (size_t)left : IO_SIZE;
		size_t n = read_some(c, c->scratch, chunk);

		got += n;
		if (n < chunk)
			break;
	}
	counts->data += got;
	c->out->offset += got;
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

/*
 * The disk is complete: a regular file gets its last byte, held back, or
 * its size over the zeros that end it, only now, after all else.
 */
static void
finish_disk(struct copier *c, struct disk_counts *counts)
{
	if (counts->holding)
		write_out(c, &counts->last_byte, 1);
	end_output(c);
}

void
write_disk(struct copier *c, const struct image_header *hdr,
    struct disk_counts *counts, int test)
{
	struct decoder d;
	struct step s;

	start_decoder(c, &d, hdr);
	if (!test)
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
			(test ? check_data : copy_data)(c, &d, &s, counts);
			break;
		case STEP_ZEROS:
			if (test)
				c->out->offset += s.length;
			else
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
	drain(c);
	if (!test)
		finish_disk(c, counts);
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
	fprintf(stderr, "sqcow2: read %" PRIu64 " bytes, skipped %" PRIu64
	    " by seeking, wrote %" PRIu64 " (%" PRIu64 " of data, %" PRIu64
	    " of zeros, as holes where the output has them), peak memory %ld KiB\n",
	    c->bytes_read, c->bytes_skipped, c->bytes_written, counts->data,
	    counts->zeros, peak_memory_kib());
}

int
decode(const struct decode_options *opt)
{
	struct io in = { .fd = -1, .name = "stdin" }, out = { .fd = -1, .name = "nothing" };
	int writes = !opt->print_size && !opt->map && !opt->test;
	struct disk_counts counts = { 0 };
	struct image_header hdr;
	struct copier c;

	if (writes) {
		open_output(opt->output_path, &out);
		if ((opt->progress || opt->verbose) && is_stderr(&out))
			diex(2, "stderr is the output: -p and -v would write into the disk");
	}
	open_input(opt->input_path, &in);
	if (writes && same_file(&in, &out))
		diex(1, "%s: input file is output file", in.name);
	if (writes)
		ready_output(&out);
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
			progress_start(hdr.virtual_size, 1, isatty(STDERR_FILENO));
		write_disk(&c, &hdr, &counts, opt->test);
		if (writes)
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

/*
 * decode.c: a qcow2 image back to its disk, from options to the committed
 * output; see decode.h, and decoder.h for the steps the decoder asks for.
 * encode.c is its mirror.
 */
#define _GNU_SOURCE

#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "copier.h"
#include "decode.h"
#include "decoder.h"
#include "files.h"
#include "qcow2.h"
#include "range_print.h"
#include "report.h"

/* What a decoding does with the disk. */
enum disk_use { DISK_WRITE, DISK_TEST, DISK_MAP, DISK_SIZE };

/* One decoding: its ends, the image's header, what the disk turned out to be. */
struct decoding {
	const struct options *opt;
	enum disk_use use;
	struct io in, out;
	struct copier *c;
	struct image_header hdr;
	uint64_t data, zeros;		/* bytes of the disk written as each */
	int holding;			/* the disk's last byte, held back */
	unsigned char last_byte;
};

static _Noreturn void
refuse(const struct decoding *dc, const struct image_error *error)
{
	diex(1, "%s: %s", dc->in.name, error->why);
}

/* Cluster 0, from the input's start, whole; the input is left past it. */
static void
read_image_header(struct decoding *dc)
{
	struct image_error error;
	size_t room;
	unsigned char *cluster = output_room(dc->c, &room);
	size_t got = input_read(dc->c, cluster, IMAGE_PROBE_BYTES);
	uint64_t need = image_header_size(cluster, got, &error);

	if (need == 0)
		refuse(dc, &error);
	if (need > room)
		diex(1, "%s: a first cluster of %" PRIu64 " bytes", dc->in.name, need);
	if (need > got)
		got += input_read(dc->c, cluster + got, (size_t)need - got);
	if (image_header_parse(&dc->hdr, cluster, got, &error) == -1)
		refuse(dc, &error);
}

/* A table the decoder asked for, read into the copier's room and handed back. */
static void
read_table(struct copier *c, struct decoder *d, const struct step *s)
{
	size_t room, got;
	unsigned char *table = output_room(c, &room);

	if (d->mode == DECODE_SEEKABLE)
		input_move(c, s->host);
	got = input_read(c, table, (size_t)s->length);
	if (got < s->length)
		decoder_input_ended(d, s->host + got);
	else
		decoder_table(d, table, got);
}

/* Bytes of a pipe that nobody needs: skipped, as far as the input goes. */
static void
pass_step(struct copier *c, struct decoder *d, const struct step *s)
{
	uint64_t got = input_skip(c, s->length);

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
copy_data(struct decoding *dc, struct decoder *d, const struct step *s)
{
	int hold = output_can_rewrite(dc->c) && dc->out.kind == IO_FILE &&
	    s->guest + s->length == d->hdr.virtual_size;
	uint64_t got;

	if (d->mode == DECODE_SEEKABLE)
		input_move(dc->c, s->host);
	output_reserve_span(dc->c, s->length);
	got = input_copy(dc->c, s->length - hold);
	if (hold && got == s->length - 1) {
		got += input_read(dc->c, &dc->last_byte, 1);
		dc->holding = got == s->length;
	}
	dc->data += got;
	/* QEMU reads past the end of the file as zeros: the decoder says where. */
	if (got < s->length)
		decoder_input_ended(d, s->host + got);
}

/*
 * What the disk holds, as each step tells it: written, only read (-t;
 * the output's offset then counts the disk checked), or, for --map, the
 * data of a pipe passed over.
 */
static void
use_data(struct decoding *dc, struct decoder *d, const struct step *s)
{
	uint64_t got;

	if (dc->use == DISK_WRITE) {
		copy_data(dc, d, s);
		return;
	}
	if (dc->use == DISK_MAP && d->mode == DECODE_SEEKABLE)
		return;
	if (d->mode == DECODE_SEEKABLE)
		input_move(dc->c, s->host);
	got = dc->use == DISK_TEST ? input_drain(dc->c, s->length) :
	    input_skip(dc->c, s->length);
	dc->data += got;
	dc->out.offset += got;
	if (got < s->length)
		decoder_input_ended(d, s->host + got);
}

static void
use_zeros(struct decoding *dc, const struct step *s)
{
	if (dc->use == DISK_WRITE)
		output_hole(dc->c, s->length);
	else
		dc->out.offset += s->length;
	dc->zeros += s->length;
}

/*
 * Every step of the decoder, in turn, until the disk is whole; for
 * --map, each range of data is printed as it completes.
 */
static void
decode_steps(struct decoding *dc)
{
	struct data_map map = { 0, 0 }, range;
	struct decoder d;
	struct step s;

	decoder_init(&d, &dc->hdr, io_seekable(&dc->in) ? DECODE_SEEKABLE :
	    DECODE_FORWARD, dc->in.size);
	do {
		switch (decoder_next(&d, &s)) {
		case STEP_TABLE:
			read_table(dc->c, &d, &s);
			break;
		case STEP_SKIP:
			pass_step(dc->c, &d, &s);
			break;
		case STEP_DATA:
			use_data(dc, &d, &s);
			break;
		case STEP_ZEROS:
			use_zeros(dc, &s);
			break;
		case STEP_ERROR:
			refuse(dc, &d.error);
		case STEP_DONE:
			break;
		}
		if (dc->use == DISK_MAP && data_map_add(&map, &s, &range))
			print_range(range.offset, range.length);
	} while (s.kind != STEP_DONE);
	decoder_free(&d);
	/* What follows the image in a pipe is read, so that its sender ends well. */
	if (!io_seekable(&dc->in))
		while (input_skip(dc->c, IO_SIZE) == IO_SIZE)
			;
}

/*
 * The disk is complete: a regular file gets its last byte, held back, or
 * its size over the zeros that end it, only now, after all else.
 */
static void
finish_disk(struct decoding *dc)
{
	if (dc->holding)
		output_write(dc->c, &dc->last_byte, 1);
	output_end(dc->c);
}

/*
 * Both ends; the output only when the disk is written, refused before it
 * is touched if it is stderr under -p or -v, or the input itself.
 */
static void
open_ends(struct decoding *dc)
{
	const struct options *opt = dc->opt;

	dc->in = (struct io){ .fd = -1, .name = "stdin" };
	dc->out = (struct io){ .fd = -1, .name = "nothing" };
	if (dc->use == DISK_WRITE) {
		open_output(opt->output_path, &dc->out);
		if ((opt->progress || opt->verbose) && is_stderr(&dc->out))
			diex(2, "stderr is the output: -p and -v would write into the disk");
	}
	open_input(opt->input_path, &dc->in);
	if (dc->use == DISK_WRITE && same_file(&dc->in, &dc->out))
		diex(1, "%s: input file is output file", dc->in.name);
	if (dc->use == DISK_WRITE)
		ready_output(&dc->out);
}

static void
print_decode_statistics(const struct decoding *dc)
{
	const struct copy_counts *n = copier_counts(dc->c);
	char holds[160];

	snprintf(holds, sizeof(holds), "%" PRIu64 " of data, %" PRIu64 " of zeros, "
	    "as holes where the output has them", dc->data, dc->zeros);
	print_statistics(n->read, n->skipped, n->written, holds);
}

int
decode(const struct options *opt)
{
	struct decoding dc = { .opt = opt };

	dc.use = opt->print_size ? DISK_SIZE : opt->map ? DISK_MAP :
	    opt->test ? DISK_TEST : DISK_WRITE;
	open_ends(&dc);
	/* A raw disk keeps its holes: nothing is reserved ahead. */
	dc.c = copier_new(&dc.in, &dc.out, UINT64_C(1) << MAX_CLUSTER_BITS,
	    COPY_NO_RESERVE | COPY_OUTPUT_PROGRESS);
	read_image_header(&dc);
	if (dc.use == DISK_SIZE) {
		printf("%" PRIu64 "\n", dc.hdr.virtual_size);
	} else if (dc.use == DISK_MAP) {
		print_ranges_header(dc.in.name, dc.hdr.virtual_size);
		decode_steps(&dc);
	} else {
		if (opt->progress)
			progress_start(dc.hdr.virtual_size, 1, isatty(STDERR_FILENO));
		if (dc.use == DISK_WRITE)
			output_start(dc.c);
		decode_steps(&dc);
		if (dc.use == DISK_WRITE) {
			finish_disk(&dc);
			commit_output(&dc.out, opt->fsync);
		}
		count_progress(dc.out.offset, copier_counts(dc.c)->read, 1);
		if (opt->verbose)
			print_decode_statistics(&dc);
	}
	if (dc.use == DISK_SIZE || dc.use == DISK_MAP)
		flush_stdout();
	copier_free(dc.c);
	return 0;
}

/*
 * decode.c: a qcow2 image back to its disk, from options to the committed
 * output; see decode.h, and decoder.h for the steps the decoder asks for.
 * encode.c is its mirror.
 */
#define _GNU_SOURCE

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "copier.h"
#include "decode.h"
#include "decoder.h"
#include "files.h"
#include "qcow2.h"
#include "range_print.h"
#include "report.h"
#include "unpack.h"
#include "util.h"

#define MAX_UNPACK_THREADS	8
#define DIRECT_WRITE		((size_t)256 << 10)	/* not worth a copy */

/* What a decoding does with the disk. */
enum disk_use { DISK_WRITE, DISK_TEST, DISK_MAP, DISK_SIZE };

/* One decoding: its ends, the image's header, what the disk turned out to be. */
struct decoding {
	const struct options *opt;
	enum disk_use use;
	struct io in, out;
	struct copier *c;
	struct image_header hdr;
	struct decoder d;
	uint64_t out_start;		/* where the disk begins in the output */
	uint64_t data, zeros;		/* bytes of the disk written as each */
	uint64_t compressed, stored;	/* compressed clusters, their bytes */
	int holding;			/* the disk's last byte, held back */
	unsigned char last_byte;
	unsigned char **window;		/* the decoder's window: a cluster a slot */
	size_t window_slots;
	uint64_t window_clusters;	/* slots made: the window's peak */
	struct unpacker *unpacker;	/* made at the first compressed cluster */
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

/* The window's slot, a cluster, made when first asked for. */
static unsigned char *
window_slot(struct decoding *dc, uint32_t slot)
{
	size_t n = dc->window_slots;

	if (slot >= n) {
		while (n <= slot)
			n = n > 0 ? 2 * n : 64;
		if ((dc->window = realloc(dc->window, n * sizeof(*dc->window))) == NULL)
			die(1, "the reorder window");
		memset(dc->window + dc->window_slots, 0,
		    (n - dc->window_slots) * sizeof(*dc->window));
		dc->window_slots = n;
	}
	if (dc->window[slot] == NULL && ++dc->window_clusters &&
	    (dc->window[slot] = malloc((size_t)dc->hdr.cluster_size)) == NULL)
		die(1, "the reorder window");
	return dc->window[slot];
}

/* A cluster the decoder holds: past the end of the input, zeros. */
static void
hold_step(struct decoding *dc, const struct step *s)
{
	unsigned char *cluster = window_slot(dc, s->slot);
	size_t got = input_read(dc->c, cluster, (size_t)s->length);

	if (got < s->length) {
		memset(cluster + got, 0, (size_t)s->length - got);
		decoder_input_ended(&dc->d, s->host + got);
	}
}

/* The held bytes [host, host + len), all in one cluster. */
static const unsigned char *
held_bytes(struct decoding *dc, uint64_t host)
{
	uint32_t slot = decoder_slot(&dc->d, host);

	if (slot == NO_SLOT || slot >= dc->window_slots || dc->window[slot] == NULL)
		diex(1, "%s: no cluster held at offset %" PRIu64, dc->in.name, host);
	return dc->window[slot] + host % dc->hdr.cluster_size;
}

/*
 * Written in place, the output moves to guest first; -p then counts the
 * disk done before, and what is written from there.
 */
static void
place(struct decoding *dc, uint64_t guest)
{
	if (dc->d.output != OUTPUT_IN_PLACE || dc->use != DISK_WRITE ||
	    output_at(dc->c) == dc->out_start + guest)
		return;
	output_seek(dc->c, dc->out_start + guest);
	output_count_from(dc->c, dc->data + dc->zeros);
}

/*
 * The disk's last byte, when data, is held back for finish_disk to write:
 * until then a regular file is shorter than the disk, so that a run that
 * fails or is killed, even by SIGKILL, never leaves a file of the disk's
 * size that a script could take for it.
 */
static int
holds_last_byte(const struct decoding *dc, uint64_t guest, uint64_t len)
{
	return output_can_rewrite(dc->c) && dc->out.kind == IO_FILE && len > 0 &&
	    guest + len == dc->hdr.virtual_size;
}

/* len bytes of the disk at guest, from memory. */
static void
put_disk(struct decoding *dc, uint64_t guest, const unsigned char *bytes, size_t len)
{
	dc->data += len;
	if (dc->use != DISK_WRITE) {
		dc->out.offset += len;
		return;
	}
	place(dc, guest);
	if (holds_last_byte(dc, guest, len)) {
		dc->last_byte = bytes[--len];
		dc->holding = 1;
	}
	if (len >= DIRECT_WRITE)
		output_write(dc->c, bytes, len);
	else if (len > 0)
		memcpy(output_slot(dc->c, len), bytes, len);
}

/* The data of a step, from the input, to the output. */
static void
copy_data(struct decoding *dc, const struct step *s)
{
	int hold = holds_last_byte(dc, s->guest, s->length);
	uint64_t got;

	if (dc->d.mode == DECODE_SEEKABLE)
		input_move(dc->c, s->host);
	place(dc, s->guest);
	output_reserve_span(dc->c, s->length);
	got = input_copy(dc->c, s->length - hold);
	if (hold && got == s->length - 1) {
		got += input_read(dc->c, &dc->last_byte, 1);
		dc->holding = got == s->length;
	}
	dc->data += got;
	/* QEMU reads past the end of the file as zeros: the decoder says where. */
	if (got < s->length)
		decoder_input_ended(&dc->d, s->host + got);
}

/*
 * What the disk holds, as each step tells it: written, only read (-t;
 * the output's offset then counts the disk checked), or, for --map, the
 * data of a pipe passed over.
 */
static void
use_data(struct decoding *dc, const struct step *s)
{
	struct decoder *d = &dc->d;
	uint64_t got;

	if (s->source == FROM_NOWHERE || (dc->use == DISK_MAP && d->mode == DECODE_SEEKABLE))
		return;
	if (s->source == FROM_WINDOW) {
		put_disk(dc, s->guest, held_bytes(dc, s->host), (size_t)s->length);
		return;
	}
	if (dc->use == DISK_WRITE) {
		copy_data(dc, s);
		return;
	}
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
	if (dc->use == DISK_WRITE) {
		place(dc, s->guest);
		output_hole(dc->c, s->length);
	} else {
		dc->out.offset += s->length;
	}
	dc->zeros += s->length;
}

/*
 * The oldest batch of compressed clusters inflated, to the output; wait:
 * for it to be done.  Returns 0 if there was none to take.
 */
static int
put_unpacked(struct decoding *dc, int wait)
{
	size_t count;
	const struct unpacked *u = unpacker_take(dc->unpacker, wait, &count);

	if (u == NULL)
		return 0;
	for (size_t i = 0; i < count; i++) {
		if (u[i].why != NULL)
			diex(1, "%s: compressed cluster at guest offset %" PRIu64
			    " (offset %" PRIu64 "): %s, at byte %zu of its stream",
			    dc->in.name, u[i].guest, u[i].host, u[i].why, u[i].at);
		put_disk(dc, u[i].guest, u[i].bytes, u[i].length);
	}
	return 1;
}

static void
put_all_unpacked(struct decoding *dc)
{
	if (dc->unpacker != NULL)
		while (put_unpacked(dc, 1))
			;
}

/* The stored bytes of a compressed cluster: past the image's end, zeros. */
static void
gather(struct decoding *dc, const struct step *s, unsigned char *stored)
{
	uint64_t cs = dc->hdr.cluster_size, done = 0;

	if (s->source == FROM_WINDOW) {
		while (done < s->available) {
			uint64_t host = s->host + done;
			size_t n = (size_t)min_u64(cs - host % cs, s->available - done);

			memcpy(stored + done, held_bytes(dc, host), n);
			done += n;
		}
	} else {
		input_move(dc->c, s->host);
		done = input_read(dc->c, stored, (size_t)s->available);
	}
	memset(stored + done, 0, (size_t)(s->stored - done));
}

/* How many threads inflate: one a core, none if there is one core. */
static unsigned
unpack_threads(void)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (cores <= 1)
		return 0;
	return cores > MAX_UNPACK_THREADS ? MAX_UNPACK_THREADS : (unsigned)cores;
}

/* A compressed cluster, sent to be inflated; what is done goes out. */
static void
unpack_step(struct decoding *dc, const struct step *s)
{
	unsigned char *room;

	dc->compressed++;
	dc->stored += s->stored;
	if (dc->use == DISK_MAP)
		return;
	if (dc->unpacker == NULL &&
	    (dc->unpacker = unpacker_new((size_t)dc->hdr.cluster_size,
	    dc->hdr.compression_type, unpack_threads())) == NULL)
		die(1, "compressed clusters");
	while ((room = unpacker_room(dc->unpacker, (size_t)s->stored)) == NULL)
		if (!put_unpacked(dc, 1))
			diex(1, "out of memory for compressed clusters");
	gather(dc, s, room);
	unpacker_add(dc->unpacker, s->guest, s->host, (size_t)s->length,
	    (size_t)s->stored);
	while (put_unpacked(dc, 0))
		;
}

/* One step of the decoder, done. */
static void
take_step(struct decoding *dc, const struct step *s)
{
	/* In order, what is being inflated goes out before the next. */
	if ((s->kind == STEP_DATA || s->kind == STEP_ZEROS) &&
	    dc->d.output == OUTPUT_IN_ORDER)
		put_all_unpacked(dc);
	switch (s->kind) {
	case STEP_TABLE:
		read_table(dc->c, &dc->d, s);
		break;
	case STEP_SKIP:
		pass_step(dc->c, &dc->d, s);
		break;
	case STEP_HOLD:
		hold_step(dc, s);
		break;
	case STEP_DATA:
		use_data(dc, s);
		break;
	case STEP_COMPRESSED:
		unpack_step(dc, s);
		break;
	case STEP_ZEROS:
		use_zeros(dc, s);
		break;
	case STEP_ERROR:
		refuse(dc, &dc->d.error);
	case STEP_DONE:
		put_all_unpacked(dc);
		break;
	}
}

/* Where the disk goes decides the order it comes in. */
static enum decoder_output
output_order(const struct decoding *dc)
{
	if (dc->use == DISK_MAP)
		return OUTPUT_MAP;
	if (dc->use == DISK_TEST || output_can_rewrite(dc->c))
		return OUTPUT_IN_PLACE;
	return OUTPUT_IN_ORDER;
}

/*
 * Every step of the decoder, in turn, until the disk is whole; for
 * --map, each range of data is printed as it completes.
 */
static void
decode_steps(struct decoding *dc)
{
	struct data_map map = { 0, 0 }, range;
	struct decoder *d = &dc->d;
	struct step s;

	decoder_init(d, &dc->hdr, io_seekable(&dc->in) ? DECODE_SEEKABLE :
	    DECODE_FORWARD, dc->in.size);
	d->output = output_order(dc);
	if (dc->opt->have_window)
		d->window_max = dc->opt->window;
	dc->out_start = output_at(dc->c);
	do {
		decoder_next(d, &s);
		take_step(dc, &s);
		if (dc->use == DISK_MAP && data_map_add(&map, &s, &range))
			print_range(range.offset, range.length);
	} while (s.kind != STEP_DONE);
	decoder_free(d);
	unpacker_free(dc->unpacker);
	dc->unpacker = NULL;
	for (size_t i = 0; i < dc->window_slots; i++)
		free(dc->window[i]);
	free(dc->window);
	dc->window = NULL;
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
	uint64_t size = dc->hdr.virtual_size;

	if (dc->holding) {
		place(dc, size - 1);
		output_write(dc->c, &dc->last_byte, 1);
	} else {
		place(dc, size);
	}
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
	char holds[320], packed[96] = "", held[64] = "";

	if (dc->compressed > 0)
		snprintf(packed, sizeof(packed), ", %" PRIu64 " compressed clusters "
		    "inflated from %" PRIu64 " bytes", dc->compressed, dc->stored);
	if (dc->window_clusters > 0)
		snprintf(held, sizeof(held), ", up to %" PRIu64 " bytes held in the "
		    "window", dc->window_clusters * dc->hdr.cluster_size);
	snprintf(holds, sizeof(holds), "%" PRIu64 " of data%s, %" PRIu64 " of zeros, "
	    "as holes where the output has them%s", dc->data, packed, dc->zeros, held);
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

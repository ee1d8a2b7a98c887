/*
 * base.c: --diff's previous disk, raw or in a qcow2 image (see base.h).
 * An image is decoded from its file as sqcow2 -d decodes one: every table
 * read and checked first, then its disk in guest order, as the steps of
 * the decoder say, which here follow the reads of the pass that compares.
 */
#define _GNU_SOURCE

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "backing.h"
#include "base.h"
#include "codec.h"
#include "files.h"
#include "report.h"

static _Noreturn void
refuse(const struct base *b)
{
	diex(1, "%s: %s", b->io.name, b->d.error.why);
}

/* The header of the image in cluster 0, checked as -d checks it. */
static void
read_header(struct base *b, const unsigned char *probe, size_t len)
{
	struct image_error error;
	uint64_t need = image_header_size(probe, len, &error);
	unsigned char *cluster;

	if (need == 0 || need > b->io.size)
		diex(1, "%s: %s", b->io.name, need == 0 ? error.why :
		    "truncated header");
	if ((cluster = malloc((size_t)need)) == NULL)
		die(1, "%s", b->io.name);
	io_pread(&b->io, cluster, (size_t)need, 0);
	if (image_header_parse(&b->hdr, cluster, (size_t)need, &error) == -1)
		diex(1, "%s: %s", b->io.name, error.why);
	free(cluster);
	b->table = malloc((size_t)b->hdr.cluster_size);
	b->stored = malloc(2 * (size_t)b->hdr.cluster_size);
	b->cluster = malloc((size_t)b->hdr.cluster_size);
	b->codec = codec_new(b->hdr.compression_type);
	if (b->table == NULL || b->stored == NULL || b->cluster == NULL ||
	    b->codec == NULL)
		die(1, "%s", b->io.name);
	b->inflated_guest = UINT64_MAX;
}

/* The compressed cluster of the step, inflated once for all its reads. */
static const unsigned char *
inflated(struct base *b)
{
	const struct step *s = &b->step;
	struct codec_error error;

	if (b->inflated_guest == s->guest)
		return b->cluster;
	io_pread(&b->io, b->stored, (size_t)s->available, s->host);
	memset(b->stored + s->available, 0, (size_t)(s->stored - s->available));
	if (codec_decode(b->hdr.compression_type, b->codec, b->cluster,
	    (size_t)b->hdr.cluster_size, b->stored, (size_t)s->stored, &error) != 0)
		diex(1, "%s: compressed cluster at guest offset %" PRIu64 " (offset %"
		    PRIu64 "): %s, at byte %zu of its stream", b->io.name, s->guest,
		    s->host, error.why, error.at);
	b->inflated_guest = s->guest;
	return b->cluster;
}

/* The next step that says what the disk holds, tables read on the way. */
static void
next_step(struct base *b)
{
	for (;;) {
		switch (decoder_next(&b->d, &b->step)) {
		case STEP_TABLE:
			io_pread(&b->io, b->table, (size_t)b->step.length, b->step.host);
			decoder_table(&b->d, b->table, (size_t)b->step.length);
			continue;
		case STEP_ERROR:
			refuse(b);
		case STEP_SKIP:	/* forward mode only */
		case STEP_HOLD:
		case STEP_DATA:
		case STEP_COMPRESSED:
		case STEP_ZEROS:
		case STEP_DONE:
			return;
		}
	}
}

static void
start_decoder(struct base *b)
{
	decoder_free(&b->d);
	decoder_init(&b->d, &b->hdr, DECODE_SEEKABLE, b->io.size);
	next_step(b);
}

/* The image's data ranges, where the new disk may have dropped its data. */
static void
add_image_ranges(struct base *b, struct range_list *ranges)
{
	struct data_map map = { 0, 0 }, range;

	for (start_decoder(b); ; next_step(b)) {
		if (data_map_add(&map, &b->step, &range) &&
		    ranges_add(ranges, range.offset, range.length) == -1)
			die(1, "%s", b->io.name);
		if (b->step.kind == STEP_DONE)
			break;
	}
	start_decoder(b);
}

void
open_base(const char *path, struct base *b, uint64_t size,
    struct range_list *ranges)
{
	unsigned char probe[IMAGE_PROBE_BYTES];
	size_t len;

	memset(b, 0, sizeof(*b));
	open_input(path, &b->io);
	if (!io_seekable(&b->io))
		diex(2, "--diff reads %s by offset: a file or a block device", b->io.name);
	len = b->io.size < sizeof(probe) ? (size_t)b->io.size : sizeof(probe);
	io_pread(&b->io, probe, len, 0);
	b->is_image = strcmp(format_of(probe, len), "qcow2") == 0;
	b->disk_size = b->io.size;
	if (b->is_image) {
		read_header(b, probe, len);
		b->disk_size = b->hdr.virtual_size;
	}
	/* An image holds its disk rounded up to whole sectors. */
	if (b->disk_size > (b->is_image ? (size + 511) / 512 * 512 : size))
		diex(1, "%s: the disk shrank, from %" PRIu64 " bytes to %" PRIu64,
		    b->io.name, b->disk_size, size);
	if (b->is_image) {
		if (ranges != NULL)
			add_image_ranges(b, ranges);
		else
			start_decoder(b);
	} else if (ranges != NULL) {
		data_ranges(&b->io, b->io.size, ranges);
	}
	if (ranges != NULL)
		ranges_merge(ranges);
}

void
read_base(struct base *b, void *buf, size_t len, uint64_t offset)
{
	unsigned char *p = buf;

	if (!b->is_image) {
		io_pread(&b->io, buf, len, offset);
		return;
	}
	/* At the end a step says nothing of where it is: the disk's size does. */
	if (offset < (b->step.kind == STEP_DONE ? b->disk_size : b->step.guest))
		start_decoder(b);
	while (len > 0) {
		uint64_t end = b->step.guest + b->step.length;
		size_t n;

		if (b->step.kind == STEP_DONE) {
			memset(p, 0, len);
			return;
		}
		if (offset >= end) {
			next_step(b);
			continue;
		}
		n = end - offset < len ? (size_t)(end - offset) : len;
		if (b->step.kind == STEP_DATA)
			io_pread(&b->io, p, n, b->step.host + (offset - b->step.guest));
		else if (b->step.kind == STEP_COMPRESSED)
			memcpy(p, inflated(b) + (offset - b->step.guest), n);
		else
			memset(p, 0, n);
		p += n;
		offset += n;
		len -= n;
	}
}

void
close_base(struct base *b)
{
	decoder_free(&b->d);
	free(b->table);
	free(b->stored);
	free(b->cluster);
	codec_free(b->codec);
	b->table = b->stored = b->cluster = NULL;
	b->codec = NULL;
}

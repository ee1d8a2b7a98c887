/*
 * decoder.c: the steps of sqcow2 -d's decoder (see decoder.h for the
 * protocol between the decoder and its caller): from a file, every table
 * and then the disk in guest order, from the runs that decoder_runs.c
 * makes of the tables it is handed; from a pipe, what decoder_stream.c
 * says.
 */
#include <inttypes.h>
#include <stdio.h>	/* snprintf, for messages */
#include <stdlib.h>
#include <string.h>

#include "decoder_runs.h"
#include "decoder_stream.h"
#include "decoder_tables.h"
#include "util.h"

#define NOT_YET			UINT64_MAX

/* Where things are */

static const char *
input_name(enum input_kind kind)
{
	switch (kind) {
	case INPUT_L1:
		return "L1 table";
	case INPUT_REFCOUNT_TABLE:
		return "refcount table";
	case INPUT_L2:
		return "L2 table";
	case INPUT_DATA:
		return "data";
	case INPUT_NONE:
		break;
	}
	return "end";
}

/* The decoder */

void
decoder_init(struct decoder *d, const struct image_header *hdr,
    enum decoder_mode mode, uint64_t file_size)
{
	uint64_t cs = hdr->cluster_size;

	memset(d, 0, sizeof(*d));
	d->hdr = *hdr;
	d->mode = mode;
	d->output = OUTPUT_IN_ORDER;
	d->file_size = mode == DECODE_SEEKABLE ? file_size : NOT_YET;
	d->window_max = DECODER_WINDOW_DEFAULT;
	d->memory_max = IMAGE_MEMORY_MAX;
	d->position = cs;
	d->input_end = NOT_YET;
	d->l1_bytes = hdr->l1_used * 8;
	d->refcount_table_bytes = (uint64_t)hdr->refcount_table_clusters * cs;
	d->l1_at.start = hdr->l1_offset;
	d->l1_at.end = hdr->l1_offset + round_up((uint64_t)hdr->l1_size * 8, cs);
	d->refcount_table_at.start = hdr->refcount_table_offset;
	d->refcount_table_at.end = hdr->refcount_table_offset + d->refcount_table_bytes;
}

void
decoder_free(struct decoder *d)
{
	for (size_t i = 0; i < d->ntables; i++)
		free(d->tables[i].items);
	free(d->tables);
	free(d->l2_places);
	free(d->refblocks);
	free(d->runs);
	stream_free(d);
	d->tables = NULL;
	d->ntables = 0;
	d->l2_places = NULL;
	d->refblocks = NULL;
	d->runs = NULL;
	d->memory = 0;
}

static enum step_kind
give(struct step *step, enum step_kind kind, uint64_t host, uint64_t guest,
    uint64_t length)
{
	return step_give(step, kind, host, guest, length);
}

static enum step_kind
give_error(struct step *step)
{
	return give(step, STEP_ERROR, 0, 0, 0);
}

/*
 * From a file, how far the disk is known: to the first run of data still
 * to output, or the first L2 table still to read, or the end.  Nothing
 * is known before all of the L1 table is read.
 */
static uint64_t
known_until(const struct decoder *d)
{
	uint64_t until = d->hdr.virtual_size;

	if (d->l1_read < d->l1_bytes)
		return d->cursor;
	if (d->next_run < d->nruns)
		until = min_u64(until, d->runs[d->next_run].guest);
	if (d->tables_read < d->ntables)
		until = min_u64(until, d->tables[d->tables_read].index * d->hdr.l2_span);
	return until;
}

/* An input step the decoder could take next. */
struct candidate {
	enum input_kind kind;
	uint64_t host, length, guest;
};

/*
 * The next piece of a table to read from a file, in this order: the L1
 * table, the refcount table, the L2 tables in L1 order.
 */
static int
next_table(const struct decoder *d, struct candidate *c, int which)
{
	uint64_t cs = d->hdr.cluster_size;

	if (which == INPUT_L1 && d->l1_read < d->l1_bytes) {
		c->host = d->hdr.l1_offset + d->l1_read;
		c->length = min_u64(cs, d->l1_bytes - d->l1_read);
	} else if (which == INPUT_REFCOUNT_TABLE &&
	    d->refcount_table_read < d->refcount_table_bytes) {
		c->host = d->hdr.refcount_table_offset + d->refcount_table_read;
		c->length = cs;
	} else if (which == INPUT_L2 && d->l1_read == d->l1_bytes &&
	    d->tables_read < d->ntables) {
		c->host = d->tables[d->tables_read].host;
		c->length = cs;
		c->guest = d->tables[d->tables_read].index * d->hdr.l2_span;
	} else {
		return 0;
	}
	c->kind = which;
	return 1;
}

static enum step_kind
ask_table(struct decoder *d, struct step *step, const struct candidate *c)
{
	d->awaiting_table = 1;
	d->asked_for = c->kind;
	give(&d->asked, STEP_TABLE, c->host, 0, c->length);
	return give(step, STEP_TABLE, c->host, 0, c->length);
}

/* Zeros up to where the disk is known. */
static enum step_kind
output_zeros(struct decoder *d, struct step *step)
{
	uint64_t from = d->cursor;

	d->cursor = known_until(d);
	return give(step, STEP_ZEROS, 0, from, d->cursor - from);
}

/*
 * The next run of data, as DATA (clipped at the end of the file) or
 * ZEROS, or a compressed cluster, whose bytes past the end read as zeros.
 */
static enum step_kind
output_run(struct decoder *d, struct step *step)
{
	const struct data_run *r = &d->runs[d->next_run];
	uint64_t cs = d->hdr.cluster_size, end = d->file_size, data, last_cluster;

	if (d->input_end != NOT_YET)
		end = min_u64(end, d->input_end);
	if (r->stored != 0) {
		d->next_run++;
		d->cursor += r->length;
		give(step, STEP_COMPRESSED, r->host, r->guest, r->length);
		step->stored = r->stored;
		step->available = r->host < end ? min_u64(r->stored, end - r->host) : 0;
		return STEP_COMPRESSED;
	}
	last_cluster = (r->host + r->length - 1) / cs * cs;
	if (last_cluster >= end)
		return decoder_fail(d, IMAGE_TRUNCATED, end, "image truncated at "
		    "offset %ju: the data cluster at %ju (guest offset %ju) is missing",
		    NUM(end), NUM(last_cluster), NUM(r->guest + (last_cluster - r->host))),
		    give_error(step);
	data = r->host < end ? min_u64(r->length, end - r->host) : 0;
	d->next_run++;
	d->cursor += r->length;
	if (data == 0)
		return give(step, STEP_ZEROS, 0, r->guest, r->length);
	d->owed_guest = r->guest + data;
	d->owed_length = r->length - data;
	d->asked_for = INPUT_DATA;
	give(&d->asked, STEP_DATA, r->host, r->guest, data);
	return give(step, STEP_DATA, r->host, r->guest, data);
}

/* From a file: every table first, in order, then the disk in guest order. */
static enum step_kind
next_seekable(struct decoder *d, struct step *step)
{
	struct candidate c = { INPUT_NONE, 0, 0, 0 };

	if (next_table(d, &c, INPUT_L1) || next_table(d, &c, INPUT_REFCOUNT_TABLE) ||
	    next_table(d, &c, INPUT_L2)) {
		if (c.host >= d->file_size || d->file_size - c.host < c.length)
			return decoder_fail(d, IMAGE_PAST_END, c.host, "%s at offset %ju "
			    "runs past the end of the file (%ju bytes)", input_name(c.kind),
			    NUM(c.host), NUM(d->file_size)), give_error(step);
		return ask_table(d, step, &c);
	}
	if (!d->runs_checked && runs_check_apart(d) != 0)
		return give_error(step);
	if (d->cursor < known_until(d))
		return output_zeros(d, step);
	if (d->next_run < d->nruns)
		return output_run(d, step);
	return give(step, STEP_DONE, 0, 0, 0);
}

enum step_kind
decoder_next(struct decoder *d, struct step *step)
{
	if (!d->failed && d->awaiting_table)
		decoder_fail(d, IMAGE_MISUSE, d->asked.host, "decoder_next called "
		    "before decoder_table answered the TABLE step at %ju",
		    NUM(d->asked.host));
	if (d->failed)
		return give_error(step);
	if (d->owed_length > 0) {
		uint64_t guest = d->owed_guest, length = d->owed_length;

		d->owed_length = 0;
		return give(step, STEP_ZEROS, 0, guest, length);
	}
	if (d->mode == DECODE_SEEKABLE)
		return next_seekable(d, step);
	return stream_next(d, step);
}

int
decoder_table(struct decoder *d, const unsigned char *buf, size_t len)
{
	if (d->failed)
		return -1;
	if (!d->awaiting_table || len != d->asked.length)
		return decoder_fail(d, IMAGE_MISUSE, d->asked.host, "decoder_table "
		    "given %zu bytes for a TABLE step of %ju", len,
		    NUM(d->awaiting_table ? d->asked.length : 0));
	d->awaiting_table = 0;
	if (d->mode == DECODE_FORWARD)
		d->position += len;
	switch (d->asked_for) {
	case INPUT_L1:
		return tables_add_l1(d, buf, len);
	case INPUT_REFCOUNT_TABLE:
		return tables_add_refcount_table(d, buf, len);
	case INPUT_L2:
		if (d->mode == DECODE_SEEKABLE)
			return runs_add_l2(d, d->tables_read, buf);
		if (runs_add_l2(d, d->asked_table, buf) != 0)
			return -1;
		return stream_place(d, d->asked_table);
	case INPUT_DATA:
	case INPUT_NONE:
		break;
	}
	return decoder_fail(d, IMAGE_MISUSE, d->asked.host, "decoder_table: no "
	    "table asked for");
}

int
decoder_input_ended(struct decoder *d, uint64_t offset)
{
	const struct step *s = &d->asked;
	uint64_t cs = d->hdr.cluster_size, last_cluster;

	if (d->failed)
		return -1;
	if ((s->kind != STEP_TABLE && s->kind != STEP_SKIP && s->kind != STEP_DATA &&
	    s->kind != STEP_HOLD) || offset < s->host || offset - s->host >= s->length)
		return decoder_fail(d, IMAGE_MISUSE, offset, "decoder_input_ended: "
		    "offset %ju is not inside the last input step", NUM(offset));
	d->input_end = offset;
	d->awaiting_table = 0;
	if (s->kind == STEP_TABLE)
		return decoder_fail(d, IMAGE_TRUNCATED, offset, "image truncated at "
		    "offset %ju, inside the %s at %ju", NUM(offset),
		    input_name(d->asked_for), NUM(s->host));
	d->position = offset;
	if (s->kind == STEP_SKIP || s->kind == STEP_HOLD)
		return 0;	/* decoder_next says whether what follows is missing */
	/* A short last cluster reads as zeros past the end, as in QEMU. */
	last_cluster = (s->host + s->length - 1) / cs * cs;
	if (last_cluster >= offset) {
		uint64_t missing = round_up(offset, cs);

		return decoder_fail(d, IMAGE_TRUNCATED, offset, "image truncated at "
		    "offset %ju: the data cluster at %ju (guest offset %ju) is missing",
		    NUM(offset), NUM(missing), NUM(s->guest + (missing - s->host)));
	}
	d->owed_guest = s->guest + (offset - s->host);
	d->owed_length += s->length - (offset - s->host);
	return 0;
}

int
data_map_add(struct data_map *map, const struct step *step, struct data_map *done)
{
	int data = step->kind == STEP_DATA || step->kind == STEP_COMPRESSED;

	if (data && map->length > 0 && map->offset + map->length == step->guest) {
		map->length += step->length;
		return 0;
	}
	if (!data && step->kind != STEP_ZEROS && step->kind != STEP_DONE)
		return 0;
	if (data && map->length == 0) {
		map->offset = step->guest;
		map->length = step->length;
		return 0;
	}
	if (map->length == 0)
		return 0;
	*done = *map;
	map->length = 0;
	if (data) {
		map->offset = step->guest;
		map->length = step->length;
	}
	return 1;
}

/*
 * t/fuzz/fuzz_image.c: the decoder's core (decoder.h) on any bytes as a
 * qcow2 image, decoded twice with an in-memory driver: as a file (pread,
 * its size known) and as a pipe (read forward only, the end found by
 * reading).
 *
 * Each step must keep decoder.h's promises: output steps tiling [0,
 * virtual_size) exactly and never outside it, in guest order but for a
 * pipe written in place; input steps forward from the end of cluster 0 in
 * forward mode; TABLE and HOLD steps of at most a cluster, bytes from the
 * window only where a HOLD put them; the decoder's memory under its cap;
 * a number of steps bounded by the input's size (no hang).  A refusal
 * must say why.
 *
 * The two modes must agree: an image a pipe decodes decodes from a file
 * to the same disk (compared by a sum over its non-zero bytes), and an
 * image a file decodes is refused from a pipe only for its order or for
 * memory or its window (a pipe holds gaps a file does not; a file holds
 * all its runs).  Compressed clusters count by their stored bytes.
 * data_map_add must turn the DATA steps into ranges apart and in order.
 * Inputs whose size is 3 mod 4 run under a lowered memory cap so that the
 * cap's paths are fuzzed too; the pipe's window and output order vary
 * with the size as well.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decoder.h"
#include "fuzz.h"

#define U(x)		((unsigned long long)(x))

struct outcome {
	enum image_fault fault;
	uint64_t fingerprint;	/* a sum over the disk's non-zero bytes */
	uint64_t steps;
	uint64_t data_bytes;	/* in DATA steps, as long as they say */
};

/* The data map of the steps so far: joined ranges, apart and in order. */
struct map_check {
	struct data_map map;
	uint64_t end, bytes;	/* where the last range ended; bytes in ranges */
};

static void
map_step(struct map_check *m, const struct step *s, uint64_t virtual_size)
{
	struct data_map done;

	if (!data_map_add(&m->map, s, &done))
		return;
	need(done.length > 0 && (m->bytes == 0 || done.offset > m->end),
	    "data map: [%llu, +%llu) after %llu", U(done.offset), U(done.length),
	    U(m->end));
	need(done.length <= virtual_size - done.offset, "data map past the disk");
	m->end = done.offset + done.length;
	m->bytes += done.length;
}

/* The pipe or the file: the input, and where reading has got to. */
struct source {
	const uint8_t *data;
	size_t size;
	uint64_t position;
};

static size_t
source_read(struct source *src, uint64_t offset, const uint8_t **bytes, uint64_t n)
{
	uint64_t got;

	if (offset >= src->size)
		return 0;
	got = src->size - offset < n ? src->size - offset : n;
	*bytes = src->data + offset;
	src->position = offset + got;
	return (size_t)got;
}

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	return x ^ x >> 33;
}

/* One decoding: the decoder, the input, the window's slots, the output. */
struct run {
	struct decoder d;
	struct source src;
	const char *name;
	uint8_t **slots;	/* the window: a cluster a slot */
	size_t nslots;
	uint64_t written;	/* in order: the disk is out up to here */
	uint64_t *extents;	/* in place: guest, length of every output step */
	size_t nextents;
};

static void *
grow(void *p, size_t n, size_t size)
{
	p = realloc(p, n * size);
	need(p != NULL, "out of memory");
	return p;
}

/* The bytes at host that the window holds, n of them in one cluster. */
static const uint8_t *
held(struct run *r, uint64_t host, uint64_t n)
{
	uint64_t cs = r->d.hdr.cluster_size;
	uint32_t slot = decoder_slot(&r->d, host);

	need(slot != NO_SLOT && slot < r->nslots && r->slots[slot] != NULL,
	    "%s: bytes at %llu from the window, which does not hold them", r->name, U(host));
	need(host % cs + n <= cs, "%s: %llu bytes from a held cluster at %llu", r->name,
	    U(n), U(host));
	return r->slots[slot] + host % cs;
}

static void
hold(struct run *r, const struct step *s)
{
	const uint8_t *bytes = NULL;
	uint64_t cs = r->d.hdr.cluster_size;
	size_t got;

	need(r->d.mode == DECODE_FORWARD && s->host % cs == 0 && s->length == cs,
	    "%s: HOLD of %llu at %llu", r->name, U(s->length), U(s->host));
	need(s->slot < r->d.window_max / cs, "%s: slot %u, window of %llu", r->name,
	    (unsigned)s->slot, U(r->d.window_max));
	if (s->slot >= r->nslots) {
		r->slots = grow(r->slots, (size_t)s->slot + 1, sizeof(*r->slots));
		memset(r->slots + r->nslots, 0, (s->slot + 1 - r->nslots) * sizeof(*r->slots));
		r->nslots = (size_t)s->slot + 1;
	}
	if (r->slots[s->slot] == NULL)
		r->slots[s->slot] = grow(NULL, 1, (size_t)cs);
	/* a cluster cut short by the end of the image holds zeros after it */
	memset(r->slots[s->slot], 0, (size_t)cs);
	got = source_read(&r->src, s->host, &bytes, s->length);
	if (got > 0)
		memcpy(r->slots[s->slot], bytes, got);
	if (got < s->length)
		decoder_input_ended(&r->d, s->host + got);
}

/* An output step: inside the disk; in order, in guest order; in place, kept. */
static void
output(struct run *r, const struct step *s)
{
	uint64_t size = r->d.hdr.virtual_size;

	need(s->length > 0 && s->guest < size && s->length <= size - s->guest,
	    "%s: output of %llu bytes at %llu, disk of %llu", r->name, U(s->length),
	    U(s->guest), U(size));
	if (r->d.output == OUTPUT_IN_PLACE && r->d.mode == DECODE_FORWARD) {
		r->extents = grow(r->extents, 2 * r->nextents + 2, sizeof(*r->extents));
		r->extents[2 * r->nextents] = s->guest;
		r->extents[2 * r->nextents++ + 1] = s->length;
		return;
	}
	need(s->guest == r->written, "%s: output at %llu, the disk is out to %llu",
	    r->name, U(s->guest), U(r->written));
	r->written += s->length;
}

static int
cmp_extent(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* How far from 0 the output steps tile the disk. */
static uint64_t
tiled(struct run *r)
{
	uint64_t end = 0;

	if (!(r->d.output == OUTPUT_IN_PLACE && r->d.mode == DECODE_FORWARD))
		return r->written;
	if (r->nextents > 0)	/* a disk of size 0 has none, and no array */
		qsort(r->extents, r->nextents, 2 * sizeof(*r->extents), cmp_extent);
	for (size_t i = 0; i < r->nextents; i++) {
		need(r->extents[2 * i] >= end, "%s: two output steps at %llu", r->name,
		    U(r->extents[2 * i]));
		if (r->extents[2 * i] == end)
			end += r->extents[2 * i + 1];
	}
	return end;
}

/* DATA and COMPRESSED bytes: the fingerprint, over the non-zero ones. */
static void
print_bytes(struct outcome *out, uint64_t salt, uint64_t at, const uint8_t *bytes,
    uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (bytes[i] != 0)
			out->fingerprint += mix(salt ^ ((at + i) << 8 | bytes[i]));
}

/* The bytes of a DATA or COMPRESSED step, n at host; returns those got. */
static uint64_t
take(struct run *r, const struct step *s, uint64_t host, uint64_t n, uint64_t at,
    uint64_t salt, struct outcome *out)
{
	uint64_t cs = r->d.hdr.cluster_size, done = 0;
	const uint8_t *bytes = NULL;

	if (s->source == FROM_NOWHERE) {
		need(r->d.output == OUTPUT_MAP, "%s: bytes from nowhere", r->name);
		return n;
	}
	while (done < n) {
		uint64_t len = n - done;

		if (s->source == FROM_WINDOW) {
			if (len > cs - (host + done) % cs)
				len = cs - (host + done) % cs;
			bytes = held(r, host + done, len);
		} else {
			need(r->d.mode == DECODE_SEEKABLE || s->kind == STEP_DATA,
			    "%s: compressed bytes from a pipe's input", r->name);
			len = source_read(&r->src, host + done, &bytes, len);
			if (len == 0)
				break;
		}
		print_bytes(out, salt, at + done, bytes, len);
		done += len;
	}
	return done;
}

static void
decode(const uint8_t *data, size_t size, const struct image_header *hdr,
    enum decoder_mode mode, size_t memory_max, enum decoder_output order,
    uint64_t window, struct outcome *out)
{
	struct map_check map = { { 0, 0 }, 0, 0 };
	uint64_t cs = hdr->cluster_size;
	/* compressed clusters go out one a step: two steps an L2 entry at most */
	uint64_t max_steps = 64 + 8 * (size / 512) + 2 * (size / 8);
	struct run r = { .src = { data, size, hdr->cluster_size },
	    .name = mode == DECODE_FORWARD ? "forward" : "seekable" };
	struct step s;
	/* the data map takes steps in guest order */
	int mapped = order == OUTPUT_IN_ORDER || mode == DECODE_SEEKABLE;

	memset(out, 0, sizeof(*out));
	decoder_init(&r.d, hdr, mode, size);
	r.d.output = order;
	if (window != 0)
		r.d.window_max = window;
	if (memory_max != 0)
		r.d.memory_max = memory_max;
	while (decoder_next(&r.d, &s) != STEP_DONE && s.kind != STEP_ERROR) {
		const uint8_t *bytes = NULL;
		uint64_t got;

		need(++out->steps <= max_steps, "%s: over %llu steps for %zu bytes",
		    r.name, U(max_steps), size);
		need(r.d.memory <= r.d.memory_max, "%s: %zu bytes held, cap %zu", r.name,
		    r.d.memory, r.d.memory_max);
		if (s.kind == STEP_DATA || s.kind == STEP_ZEROS || s.kind == STEP_COMPRESSED)
			output(&r, &s);
		need(s.kind == STEP_ZEROS || s.length > 0, "%s: an empty step", r.name);
		need(mode == DECODE_FORWARD || (s.kind != STEP_SKIP && s.kind != STEP_HOLD &&
		    s.source != FROM_WINDOW), "%s: a pipe's step from a file", r.name);
		need(mode != DECODE_FORWARD || s.source != FROM_INPUT ||
		    s.kind == STEP_ZEROS || s.kind == STEP_COMPRESSED || s.host == r.src.position,
		    "forward: a step at %llu, the stream at %llu", U(s.host), U(r.src.position));
		if (mapped && s.kind != STEP_DATA)
			map_step(&map, &s, hdr->virtual_size);
		switch (s.kind) {
		case STEP_TABLE:
			need(s.length <= cs, "%s: TABLE step of %llu", r.name, U(s.length));
			got = source_read(&r.src, s.host, &bytes, s.length);
			if (got < s.length)
				decoder_input_ended(&r.d, s.host + got);
			else
				decoder_table(&r.d, bytes, (size_t)got);
			break;
		case STEP_SKIP:
			got = source_read(&r.src, s.host, &bytes, s.length);
			if (got < s.length)
				decoder_input_ended(&r.d, s.host + got);
			break;
		case STEP_HOLD:
			hold(&r, &s);
			break;
		case STEP_DATA:
			got = take(&r, &s, s.host, s.length, s.guest, 0, out);
			/* the disk holds what was there; the decoder owes zeros for the rest */
			out->data_bytes += got;
			if (mapped) {
				struct step cut = s;

				cut.length = got;
				if (got > 0)
					map_step(&map, &cut, hdr->virtual_size);
			}
			if (got < s.length) {
				need(s.source == FROM_INPUT, "%s: held data cut short", r.name);
				if (order != OUTPUT_IN_PLACE || mode == DECODE_SEEKABLE)
					r.written = s.guest + got;
				else
					r.extents[2 * r.nextents - 1] = got;
				decoder_input_ended(&r.d, s.host + got);
			}
			break;
		case STEP_COMPRESSED:
			need(s.guest % cs == 0 && s.length <= cs && s.stored > 0 &&
			    s.stored <= 2 * cs && s.available <= s.stored,
			    "%s: compressed %llu of %llu stored at %llu", r.name, U(s.length),
			    U(s.stored), U(s.host));
			out->data_bytes += s.length;
			need(take(&r, &s, s.host, s.available, s.guest, UINT64_C(1) << 63, out) ==
			    s.available, "%s: compressed bytes not there", r.name);
			out->fingerprint += mix(s.guest ^ s.stored << 32);
			break;
		default:
			break;
		}
	}
	if (s.kind == STEP_ERROR) {
		out->fault = r.d.error.fault;
		need(r.d.error.fault != IMAGE_OK && r.d.error.why[0] != '\0',
		    "%s: an error with no reason", r.name);
		need(memchr(r.d.error.why, '\0', sizeof(r.d.error.why)) != NULL,
		    "%s: a reason with no end", r.name);
		need(decoder_next(&r.d, &s) == STEP_ERROR, "%s: an error that goes away", r.name);
	} else {
		uint64_t end = tiled(&r);

		need(end == hdr->virtual_size, "%s: done with the disk out to %llu of %llu",
		    r.name, U(end), U(hdr->virtual_size));
		if (mapped) {
			map_step(&map, &s, hdr->virtual_size);
			need(map.bytes == out->data_bytes,
			    "%s: data map of %llu bytes, DATA of %llu", r.name, U(map.bytes),
			    U(out->data_bytes));
		}
		need(decoder_next(&r.d, &s) == STEP_DONE, "%s: more after STEP_DONE", r.name);
	}
	decoder_free(&r.d);
	for (size_t i = 0; i < r.nslots; i++)
		free(r.slots[i]);
	free(r.slots);
	free(r.extents);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image_header hdr;
	struct image_error err;
	struct outcome file, pipe;
	size_t memory_max = size % 4 == 3 ? 1024 + size % 16384 : 0;
	/* the pipe writes in place or in order, with a window of a few clusters or the default */
	enum decoder_output order = size % 3 == 1 ? OUTPUT_IN_PLACE : OUTPUT_IN_ORDER;
	uint64_t window;
	uint64_t need_bytes;

	need_bytes = image_header_size(data, size < IMAGE_PROBE_BYTES ? size :
	    IMAGE_PROBE_BYTES, &err);
	if (need_bytes == 0 || image_header_parse(&hdr, data, size, &err) != 0) {
		need(err.fault != IMAGE_OK && err.why[0] != '\0', "header: no reason");
		return 0;
	}
	need(hdr.cluster_size == need_bytes && size >= need_bytes,
	    "header parsed from %zu bytes, %llu needed", size, U(need_bytes));

	window = size % 5 == 2 ? hdr.cluster_size * (1 + size % 7) : 0;
	decode(data, size, &hdr, DECODE_SEEKABLE, memory_max, OUTPUT_IN_ORDER, 0, &file);
	decode(data, size, &hdr, DECODE_FORWARD, memory_max, order, window, &pipe);
	if (pipe.fault == IMAGE_OK) {
		need(file.fault == IMAGE_OK || file.fault == IMAGE_MEMORY,
		    "a pipe decodes what a file refuses (fault %d)", (int)file.fault);
		need(file.fault != IMAGE_OK || file.fingerprint == pipe.fingerprint,
		    "a pipe and a file decode different disks");
	}
	if (file.fault == IMAGE_OK)
		need(pipe.fault == IMAGE_OK || pipe.fault == IMAGE_ORDER ||
		    pipe.fault == IMAGE_MEMORY || pipe.fault == IMAGE_WINDOW,
		    "a pipe refuses what a file decodes (fault %d)", (int)pipe.fault);
	return 0;
}

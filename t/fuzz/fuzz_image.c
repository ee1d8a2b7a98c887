/*
 * t/fuzz/fuzz_image.c: the decoder's core (decoder.h) on any bytes as a
 * qcow2 image, decoded twice with an in-memory driver: as a file (pread,
 * its size known) and as a pipe (read forward only, the end found by
 * reading).
 *
 * Each step must keep decoder.h's promises: output steps in guest order,
 * tiling [0, virtual_size) exactly and never outside it; input steps
 * forward from the end of cluster 0 in forward mode; TABLE steps of at
 * most a cluster; the decoder's memory under its cap; a number of steps
 * bounded by the input's size (no hang).  A refusal must say why.
 *
 * The two modes must agree: an image a pipe decodes decodes from a file
 * to the same disk (compared by a sum over its non-zero bytes), and an
 * image a file decodes is refused from a pipe only for its order or for
 * memory (a pipe holds gaps a file does not; a file holds all its runs).
 * data_map_add must turn the DATA steps into ranges apart and in order.
 * Inputs whose size is 3 mod 4 run under a lowered memory cap so that the
 * cap's paths are fuzzed too.
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

static void
decode(const uint8_t *data, size_t size, const struct image_header *hdr,
    enum decoder_mode mode, size_t memory_max, struct outcome *out)
{
	struct source src = { data, size, hdr->cluster_size };
	struct map_check map = { { 0, 0 }, 0, 0 };
	uint64_t cs = hdr->cluster_size, written = 0;
	uint64_t max_steps = 64 + 8 * (size / 512);
	const char *name = mode == DECODE_FORWARD ? "forward" : "seekable";
	struct decoder d;
	struct step s;

	memset(out, 0, sizeof(*out));
	decoder_init(&d, hdr, mode, size);
	if (memory_max != 0)
		d.memory_max = memory_max;
	while (decoder_next(&d, &s) != STEP_DONE && s.kind != STEP_ERROR) {
		const uint8_t *bytes = NULL;
		size_t got;

		map_step(&map, &s, hdr->virtual_size);
		need(++out->steps <= max_steps, "%s: over %llu steps for %zu bytes",
		    name, U(max_steps), size);
		need(d.memory <= d.memory_max, "%s: %zu bytes held, cap %zu", name,
		    d.memory, d.memory_max);
		if (s.kind == STEP_DATA || s.kind == STEP_ZEROS) {
			need(s.guest == written, "%s: output at %llu, the disk is out to %llu",
			    name, U(s.guest), U(written));
			need(s.length > 0 && s.length <= hdr->virtual_size - s.guest,
			    "%s: output of %llu bytes at %llu, disk of %llu", name,
			    U(s.length), U(s.guest), U(hdr->virtual_size));
			written += s.length;
		}
		if (s.kind == STEP_ZEROS)
			continue;
		need(s.kind != STEP_SKIP || mode == DECODE_FORWARD, "SKIP from a file");
		need(s.length > 0, "%s: an empty input step", name);
		need(mode != DECODE_FORWARD || s.host == src.position,
		    "forward: a step at %llu, the stream at %llu", U(s.host), U(src.position));
		need(s.kind != STEP_TABLE || s.length <= cs, "%s: TABLE step of %llu",
		    name, U(s.length));
		got = source_read(&src, s.host, &bytes, s.length);
		if (s.kind == STEP_DATA) {
			out->data_bytes += s.length;
			for (size_t i = 0; i < got; i++)
				if (bytes[i] != 0)
					out->fingerprint += mix((s.guest + i) << 8 | bytes[i]);
		}
		if (got < s.length) {
			if (s.kind == STEP_DATA)
				written = s.guest + got;
			decoder_input_ended(&d, s.host + got);
		} else if (s.kind == STEP_TABLE) {
			decoder_table(&d, bytes, got);
		} else if (mode == DECODE_FORWARD) {
			src.position = s.host + s.length;
		}
	}
	if (s.kind == STEP_ERROR) {
		out->fault = d.error.fault;
		need(d.error.fault != IMAGE_OK && d.error.why[0] != '\0',
		    "%s: an error with no reason", name);
		need(memchr(d.error.why, '\0', sizeof(d.error.why)) != NULL,
		    "%s: a reason with no end", name);
		need(decoder_next(&d, &s) == STEP_ERROR, "%s: an error that goes away", name);
	} else {
		need(written == hdr->virtual_size, "%s: done with the disk out to %llu of %llu",
		    name, U(written), U(hdr->virtual_size));
		map_step(&map, &s, hdr->virtual_size);
		need(map.bytes == out->data_bytes, "%s: data map of %llu bytes, DATA of %llu",
		    name, U(map.bytes), U(out->data_bytes));
		need(decoder_next(&d, &s) == STEP_DONE, "%s: more after STEP_DONE", name);
	}
	decoder_free(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image_header hdr;
	struct image_error err;
	struct outcome file, pipe;
	size_t memory_max = size % 4 == 3 ? 1024 + size % 16384 : 0;
	uint64_t need_bytes;

	need_bytes = image_header_size(data, size < IMAGE_PROBE_BYTES ? size :
	    IMAGE_PROBE_BYTES, &err);
	if (need_bytes == 0 || image_header_parse(&hdr, data, size, &err) != 0) {
		need(err.fault != IMAGE_OK && err.why[0] != '\0', "header: no reason");
		return 0;
	}
	need(hdr.cluster_size == need_bytes && size >= need_bytes,
	    "header parsed from %zu bytes, %llu needed", size, U(need_bytes));

	decode(data, size, &hdr, DECODE_SEEKABLE, memory_max, &file);
	decode(data, size, &hdr, DECODE_FORWARD, memory_max, &pipe);
	if (pipe.fault == IMAGE_OK) {
		need(file.fault == IMAGE_OK || file.fault == IMAGE_MEMORY,
		    "a pipe decodes what a file refuses (fault %d)", (int)file.fault);
		need(file.fault != IMAGE_OK || file.fingerprint == pipe.fingerprint,
		    "a pipe and a file decode different disks");
	}
	if (file.fault == IMAGE_OK)
		need(pipe.fault == IMAGE_OK || pipe.fault == IMAGE_ORDER ||
		    pipe.fault == IMAGE_MEMORY,
		    "a pipe refuses what a file decodes (fault %d)", (int)pipe.fault);
	return 0;
}

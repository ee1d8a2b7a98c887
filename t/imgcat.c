/*
 * t/imgcat.c: a test driver of the decoder's core (decoder.h), not part of
 * sqcow2.  It reads a qcow2 image and writes the raw disk to stdout,
 * doing what the decoder asks with plain read, pread and write, and
 * checking as it goes that the steps keep the decoder's promises (order,
 * tiling, forward reads).
 *
 *	imgcat [-s] [-m | -n] [-v] [-w BYTES] [FILE]
 *
 * By default the image is read forward only, with read(2), as from a
 * pipe, even if it is a file, and the disk is written in order.  -s
 * reads it with pread(2) as a file of known size.  -m prints the data
 * ranges ("OFFSET LENGTH" lines) instead of the disk; -n prints the
 * virtual size; -v counts the steps on stderr; -w sets the window.
 * Zeros are holes when stdout is a regular file.  Exit 0, 1 on a refused
 * image or an I/O error (the reason on stderr), 2 on usage, 3 when the
 * decoder broke a promise.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "decoder.h"
#include "codec.h"

#define CHUNK	((size_t)1 << 20)

static const char *input_name = "stdin";

static void
die(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("imgcat: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

/* Read up to n bytes; fewer only at the end of the input. */
static size_t
read_some(int fd, unsigned char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die(1, "%s: %s", input_name, strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return got;
}

static size_t
pread_some(int fd, unsigned char *buf, size_t n, uint64_t offset)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, (off_t)(offset + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die(1, "%s: %s", input_name, strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return got;
}

static void
write_all(const unsigned char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die(1, "stdout: %s", w < 0 ? strerror(errno) : "wrote nothing");
		buf += w;
		n -= (size_t)w;
	}
}

/* The input, read forward only or by offset. */
struct input {
	int fd;
	int seekable;
	uint64_t position;	/* forward: bytes read so far */
};

/* Read n bytes at offset into buf; returns how many there were. */
static size_t
input_read(struct input *in, unsigned char *buf, size_t n, uint64_t offset)
{
	size_t got;

	if (in->seekable)
		return pread_some(in->fd, buf, n, offset);
	if (offset != in->position)
		die(3, "decoder asked for offset %ju, the stream is at %ju",
		    (uintmax_t)offset, (uintmax_t)in->position);
	got = read_some(in->fd, buf, n);
	in->position += got;
	return got;
}

struct output {
	int holes;		/* stdout is a regular file: seek over zeros */
	uint64_t written;	/* the disk is out up to here */
	const unsigned char *zeros;
};

static void
output_zeros(struct output *out, uint64_t length)
{
	if (out->holes) {
		if (lseek(1, (off_t)length, SEEK_CUR) < 0)
			die(1, "stdout: %s", strerror(errno));
	} else {
		for (uint64_t done = 0; done < length; ) {
			size_t n = length - done < CHUNK ? (size_t)(length - done) : CHUNK;

			write_all(out->zeros, n);
			done += n;
		}
	}
	out->written += length;
}

struct counts {
	unsigned long tables, skips, holds, data, compressed, zeros;
	size_t memory_peak;
};

/* The decoder's window: a cluster per slot, made when first used. */
struct window {
	unsigned char **slots;
	size_t nslots;
	size_t cluster_size;
};

static unsigned char *
slot_of(struct window *w, uint32_t slot)
{
	if (slot >= w->nslots) {
		size_t n = (size_t)slot + 1;

		if ((w->slots = realloc(w->slots, n * sizeof(*w->slots))) == NULL)
			die(1, "out of memory");
		memset(w->slots + w->nslots, 0, (n - w->nslots) * sizeof(*w->slots));
		w->nslots = n;
	}
	if (w->slots[slot] == NULL && (w->slots[slot] = malloc(w->cluster_size)) == NULL)
		die(1, "out of memory");
	return w->slots[slot];
}

/* The held bytes at host, which the decoder says a slot holds. */
static const unsigned char *
held(const struct decoder *d, struct window *w, uint64_t host)
{
	uint32_t slot = decoder_slot(d, host);

	if (slot == NO_SLOT || slot >= w->nslots || w->slots[slot] == NULL)
		die(3, "no slot holds offset %ju", (uintmax_t)host);
	return w->slots[slot] + host % w->cluster_size;
}

/* A compressed cluster: its bytes gathered, inflated, written. */
static void
inflate_step(struct decoder *d, struct input *in, struct window *w,
    struct output *out, const struct step *s, int map_only)
{
	static void *codec;
	unsigned char *stored = malloc((size_t)s->stored), *cluster;
	struct codec_error err;
	uint64_t got = 0;

	if (stored == NULL || (cluster = malloc(w->cluster_size)) == NULL)
		die(1, "out of memory");
	if (s->available > s->stored || s->length > w->cluster_size)
		die(3, "COMPRESSED step of %ju of %ju bytes for %ju", (uintmax_t)s->available,
		    (uintmax_t)s->stored, (uintmax_t)s->length);
	if (s->source == FROM_WINDOW) {
		while (got < s->available) {
			uint64_t host = s->host + got, n = w->cluster_size - host % w->cluster_size;

			n = n < s->available - got ? n : s->available - got;
			memcpy(stored + got, held(d, w, host), (size_t)n);
			got += n;
		}
	} else if (!in->seekable) {
		die(3, "COMPRESSED step from a pipe's input");
	} else {
		got = input_read(in, stored, (size_t)s->available, s->host);
	}
	memset(stored + got, 0, (size_t)(s->stored - got));
	if (!map_only) {
		if (codec == NULL && (codec = codec_new(d->hdr.compression_type)) == NULL)
			die(1, "out of memory");
		if (codec_decode(d->hdr.compression_type, codec, cluster, w->cluster_size,
		    stored, (size_t)s->stored, &err) != 0)
			die(1, "compressed cluster at guest offset %ju: %s",
			    (uintmax_t)s->guest, err.why);
		write_all(cluster, (size_t)s->length);
	}
	out->written += s->length;
	free(stored);
	free(cluster);
}

/* Copy a DATA step; tells the decoder if the input ends inside it. */
static void
copy_data(struct decoder *d, struct input *in, struct output *out,
    const struct step *s, unsigned char *buf, int map_only, struct window *w)
{
	if (s->source == FROM_NOWHERE) {
		if (!map_only)
			die(3, "DATA step with no bytes, not for a map");
		out->written += s->length;
		return;
	}
	if (s->source == FROM_WINDOW) {
		if (s->host % w->cluster_size + s->length > w->cluster_size)
			die(3, "DATA step from the window across clusters");
		if (!map_only)
			write_all(held(d, w, s->host), (size_t)s->length);
		out->written += s->length;
		return;
	}
	for (uint64_t done = 0; done < s->length; ) {
		size_t n = s->length - done < CHUNK ? (size_t)(s->length - done) : CHUNK;
		size_t got;

		if (map_only && in->seekable) {
			done += n;
			continue;
		}
		got = input_read(in, buf, n, s->host + done);
		if (!map_only)
			write_all(buf, got);
		done += got;
		if (got < n) {
			if (!map_only)
				out->written += done;
			decoder_input_ended(d, s->host + done);
			return;
		}
	}
	if (!map_only)
		out->written += s->length;
}

static void
skip_input(struct decoder *d, struct input *in, const struct step *s,
    unsigned char *buf)
{
	for (uint64_t done = 0; done < s->length; ) {
		size_t n = s->length - done < CHUNK ? (size_t)(s->length - done) : CHUNK;
		size_t got = input_read(in, buf, n, s->host + done);

		done += got;
		if (got < n) {
			decoder_input_ended(d, s->host + done);
			return;
		}
	}
}

/* Drive the decoder to the end, checking each step's promises. */
static void
run(struct decoder *d, struct input *in, int map_only, struct counts *counts)
{
	size_t size = d->hdr.cluster_size > CHUNK ? d->hdr.cluster_size : CHUNK;
	unsigned char *buf = malloc(size), *zeros = calloc(1, CHUNK);
	struct window w = { NULL, 0, (size_t)d->hdr.cluster_size };
	struct output out = { 0, 0, zeros };
	struct data_map map = { 0, 0 }, done;
	struct stat st;
	struct step s;

	if (buf == NULL || zeros == NULL)
		die(1, "out of memory");
	out.holes = !map_only && fstat(1, &st) == 0 && S_ISREG(st.st_mode);
	while (decoder_next(d, &s) != STEP_DONE) {
		if (d->memory > counts->memory_peak)
			counts->memory_peak = d->memory;
		if (d->memory > d->memory_max)
			die(3, "decoder holds %zu bytes, over its cap", d->memory);
		if ((s.kind == STEP_DATA || s.kind == STEP_ZEROS ||
		    s.kind == STEP_COMPRESSED) &&
		    (s.guest != out.written || s.length == 0 ||
		    s.length > d->hdr.virtual_size - s.guest))
			die(3, "output step at %ju of %ju bytes, the disk is out to %ju",
			    (uintmax_t)s.guest, (uintmax_t)s.length, (uintmax_t)out.written);
		if (map_only && data_map_add(&map, &s, &done))
			printf("%ju %ju\n", (uintmax_t)done.offset, (uintmax_t)done.length);
		switch (s.kind) {
		case STEP_TABLE: {
			size_t got;

			counts->tables++;
			if (s.length > d->hdr.cluster_size)
				die(3, "TABLE step of %ju bytes", (uintmax_t)s.length);
			got = input_read(in, buf, (size_t)s.length, s.host);
			if (got < s.length)
				decoder_input_ended(d, s.host + got);
			else
				decoder_table(d, buf, got);
			break;
		}
		case STEP_SKIP:
			counts->skips++;
			if (in->seekable)
				die(3, "SKIP step in seekable mode");
			skip_input(d, in, &s, buf);
			break;
		case STEP_HOLD: {
			unsigned char *cluster;
			size_t got;

			counts->holds++;
			if (in->seekable || s.length > d->hdr.cluster_size)
				die(3, "HOLD step of %ju bytes", (uintmax_t)s.length);
			cluster = slot_of(&w, s.slot);
			got = input_read(in, cluster, (size_t)s.length, s.host);
			if (got < s.length) {
				memset(cluster + got, 0, (size_t)s.length - got);
				decoder_input_ended(d, s.host + got);
			}
			break;
		}
		case STEP_DATA:
			counts->data++;
			copy_data(d, in, &out, &s, buf, map_only, &w);
			if (map_only)
				out.written = s.guest + s.length;
			break;
		case STEP_COMPRESSED:
			counts->compressed++;
			inflate_step(d, in, &w, &out, &s, map_only);
			break;
		case STEP_ZEROS:
			counts->zeros++;
			if (map_only)
				out.written += s.length;
			else
				output_zeros(&out, s.length);
			break;
		case STEP_ERROR:
			die(1, "%s", d->error.why);
			break;
		case STEP_DONE:
			break;
		}
	}
	if (out.written != d->hdr.virtual_size)
		die(3, "done with the disk out to %ju of %ju", (uintmax_t)out.written,
		    (uintmax_t)d->hdr.virtual_size);
	if (map_only && data_map_add(&map, &s, &done))
		printf("%ju %ju\n", (uintmax_t)done.offset, (uintmax_t)done.length);
	if (out.holes && ftruncate(1, (off_t)out.written) < 0)
		die(1, "stdout: %s", strerror(errno));
	free(buf);
	free(zeros);
	for (size_t i = 0; i < w.nslots; i++)
		free(w.slots[i]);
	free(w.slots);
}

int
main(int argc, char **argv)
{
	int seekable = 0, map_only = 0, size_only = 0, verbose = 0, opt;
	uint64_t window = DECODER_WINDOW_DEFAULT;
	struct input in = { 0, 0, 0 };
	struct counts counts = { 0, 0, 0, 0, 0, 0, 0 };
	struct image_header hdr;
	struct image_error err;
	struct decoder d;
	unsigned char *header;
	uint64_t need, file_size = 0;
	size_t got;
	struct stat st;

	while ((opt = getopt(argc, argv, "smnvw:")) != -1) {
		switch (opt) {
		case 's': seekable = 1; break;
		case 'm': map_only = 1; break;
		case 'n': size_only = 1; break;
		case 'v': verbose = 1; break;
		case 'w': window = strtoull(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: imgcat [-s] [-m | -n] [-v] [-w BYTES] [FILE]\n");
			return 2;
		}
	}
	if (optind < argc) {
		input_name = argv[optind];
		if ((in.fd = open(input_name, O_RDONLY)) < 0)
			die(1, "%s: %s", input_name, strerror(errno));
	}
	if (seekable) {
		if (fstat(in.fd, &st) < 0 || !S_ISREG(st.st_mode))
			die(1, "%s: -s needs a regular file", input_name);
		file_size = (uint64_t)st.st_size;
		in.seekable = 1;
	}

	/* The header: a probe, then the rest of cluster 0. */
	if ((header = malloc(IMAGE_PROBE_BYTES)) == NULL)
		die(1, "out of memory");
	got = input_read(&in, header, IMAGE_PROBE_BYTES, 0);
	if ((need = image_header_size(header, got, &err)) == 0)
		die(1, "%s", err.why);
	if ((header = realloc(header, need)) == NULL)
		die(1, "out of memory");
	if (got == IMAGE_PROBE_BYTES)
		got += input_read(&in, header + got, need - got, got);
	if (image_header_parse(&hdr, header, got, &err) != 0)
		die(1, "%s", err.why);
	free(header);
	if (size_only) {
		printf("%ju\n", (uintmax_t)hdr.virtual_size);
		return 0;
	}

	decoder_init(&d, &hdr, seekable ? DECODE_SEEKABLE : DECODE_FORWARD, file_size);
	d.output = map_only ? OUTPUT_MAP : OUTPUT_IN_ORDER;
	d.window_max = window;
	run(&d, &in, map_only, &counts);
	if (verbose)
		fprintf(stderr, "imgcat: %lu table, %lu skip, %lu hold, %lu data, %lu "
		    "compressed, %lu zeros steps; %zu bytes of memory at most\n",
		    counts.tables, counts.skips, counts.holds, counts.data,
		    counts.compressed, counts.zeros, counts.memory_peak);
	decoder_free(&d);
	if (fflush(stdout) != 0 || close(1) != 0)
		die(1, "stdout: %s", strerror(errno));
	return 0;
}

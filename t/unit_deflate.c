/*
 * t/unit_deflate.c: unit tests of deflate_cluster (deflate.h), its
 * streams decoded by zlib called as QEMU calls it (t/zlib_qemu.h), by
 * inflate_cluster (inflate.h), and by zlib again one byte of output at a
 * time, so that its 4 KiB window refuses any distance past 4096; its
 * sizes set against zlib's deflate called as QEMU calls it.
 *
 * Prints TAP, one "ok N - what" line per test.  A failed check prints, as
 * TAP comments before its test's line, the check, where it is, the case
 * and both values.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deflate.h"
#include "inflate.h"
#include "tap.h"
#include "zlib_qemu.h"

#define MAX_CLUSTER	((size_t)2 << 20)
#define GUARD		64	/* bytes past out_cap that must stay as they were */

static uint64_t rng_state = 0x9e3779b97f4a7c15;

static unsigned
rng_below(unsigned n)
{
	return (unsigned)(rng() % n);
}

/* Data */

enum kind { ZEROS, RANDOM, TEXT, RUNS, BINARY, SKEWED, PERIOD_4096, PERIOD_4097, KINDS };

static const char *const kind_names[KINDS] = { "zeros", "random", "text", "runs",
    "binary", "skewed", "period 4096", "period 4097" };

/* n bytes of text-like words from a small vocabulary. */
static void
make_text(unsigned char *p, size_t n)
{
	static const char *const words[] = { "the ", "cluster ", "of ", "a ", "qcow2 ",
	    "image ", "is ", "deflate ", "stream\n", "and ", "bytes, ", "table ",
	    "Huffman ", "code ", "length ", "distance ", "0x1f ", "QEMU ", "raw. " };
	size_t i = 0;

	while (i < n) {
		const char *word = words[rng_below(sizeof(words) / sizeof(words[0]))];

		for (size_t k = 0; word[k] != '\0' && i < n; k++)
			p[i++] = (unsigned char)word[k];
	}
}

/* n bytes like a binary: runs of zeros, small numbers, repeated records. */
static void
make_binary(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned kind = (unsigned)(i / 512 % 4);

		p[i] = kind == 0 ? 0 : kind == 1 ? (unsigned char)(rng() % 16) :
		    kind == 2 ? (unsigned char)(i * 7 % 251) : (unsigned char)rng();
	}
}

/* Random runs of 1 to 300 of a random byte. */
static void
make_runs(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; ) {
		unsigned char b = (unsigned char)rng();

		for (size_t k = 1 + rng_below(300); k > 0 && i < n; k--)
			p[i++] = b;
	}
}

/* Bytes of which value v comes about 2^-(v+1) of the time: codes far past 15 bits. */
static void
make_skewed(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t r = rng();
		unsigned char v = 0;

		while ((r & 1) && v < 63) {
			r >>= 1;
			v++;
		}
		p[i] = v;
	}
}

/* Random bytes repeated every period bytes. */
static void
make_period(unsigned char *p, size_t n, size_t period)
{
	for (size_t i = 0; i < n; i++)
		p[i] = i < period ? (unsigned char)rng() : p[i - period];
}

static void
make(enum kind kind, unsigned char *p, size_t n)
{
	switch (kind) {
	case ZEROS:
		memset(p, 0, n);
		break;
	case RANDOM:
		for (size_t i = 0; i < n; i++)
			p[i] = (unsigned char)rng();
		break;
	case TEXT:
		make_text(p, n);
		break;
	case RUNS:
		make_runs(p, n);
		break;
	case BINARY:
		make_binary(p, n);
		break;
	case SKEWED:
		make_skewed(p, n);
		break;
	case PERIOD_4096:
		make_period(p, n, 4096);
		break;
	default:
		make_period(p, n, 4097);
		break;
	}
}

/* Decoding */

static struct inflater tables;
static struct deflater shared;	/* reused by each compression, as a thread would */

/*
 * Decode in[0..in_len) into out[0..out_len) with zlib as QEMU sets it up,
 * but one byte of output a call, so that every byte goes through its
 * window of 4096 bytes and a distance past that is refused.  0 or -1.
 */
static int
window_inflate(unsigned char *out, size_t out_len, const unsigned char *in, size_t in_len)
{
	z_stream strm;
	int ret = Z_OK;

	memset(&strm, 0, sizeof(strm));
	strm.avail_in = (uInt)in_len;
	strm.next_in = (Bytef *)(uintptr_t)in;
	strm.next_out = out;
	if (inflateInit2(&strm, -12) != Z_OK)
		return -1;
	while (ret == Z_OK && strm.total_out < out_len) {
		strm.avail_out = 1;
		ret = inflate(&strm, Z_NO_FLUSH);
	}
	if (ret == Z_OK) {
		strm.avail_out = 0;
		ret = inflate(&strm, Z_FINISH);
	}
	inflateEnd(&strm);
	return (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && strm.total_out == out_len &&
	    strm.msg == NULL ? 0 : -1;
}

/* A room that any stream of n bytes fits: stored blocks cost 5 bytes each. */
static size_t
room_for(size_t n)
{
	return n + n / 1024 + 64;
}

/*
 * The stream of data[0..n) must decode back to it through zlib as QEMU
 * calls it, through inflate_cluster and, if windowed, through zlib's
 * window.  Returns whether it does.
 */
static int
check_decodes_at(int line, const unsigned char *stream, size_t len,
    const unsigned char *data, size_t n, int windowed)
{
	unsigned char *back = xmalloc(n);
	struct inflate_error err = { "(not set)", 0 };
	int ok = 1;

	memset(back, 0xa5, n);
	if (qemu_inflate(back, n, stream, len) != 0 || memcmp(back, data, n) != 0) {
		if ((ok = 0, check_failed(__FILE__, line, "zlib's bytes", " == ", "data")))
			printf("#   %zu bytes from %zu\n", n, len);
	}
	memset(back, 0xa5, n);
	if (inflate_cluster(&tables, back, n, stream, len, &err) != 0 ||
	    memcmp(back, data, n) != 0) {
		if ((ok = 0, check_failed(__FILE__, line, "inflate_cluster's bytes", " == ",
		    "data")))
			printf("#   %zu bytes from %zu: %s at %zu\n", n, len, err.why, err.at);
	}
	memset(back, 0xa5, n);
	if (windowed && (window_inflate(back, n, stream, len) != 0 ||
	    memcmp(back, data, n) != 0)) {
		if ((ok = 0, check_failed(__FILE__, line, "4 KiB window's bytes", " == ",
		    "data")))
			printf("#   %zu bytes from %zu\n", n, len);
	}
	free(back);
	return ok;
}

/*
 * Compress data[0..n) into a buffer of out_cap bytes: the stream must be
 * whole[0..full), the one with all the room it may need, or none when
 * that is longer than out_cap, with no byte past out_cap written.
 * Returns its length.
 */
static size_t
check_cap_at(int line, const unsigned char *data, size_t n, size_t out_cap,
    const unsigned char *whole, size_t full)
{
	unsigned char *out = xmalloc(out_cap + GUARD);
	size_t got, i;

	memset(out, 0x5a, out_cap + GUARD);
	got = deflate_cluster(&shared, out, out_cap, data, n);
	check_u64_at(__FILE__, line, "got", got, "full <= out_cap ? full : 0",
	    full <= out_cap ? full : 0);
	if (got != 0 && got == full && memcmp(out, whole, got) != 0)
		check_failed(__FILE__, line, "the stream", " == ", "the one with room");
	for (i = out_cap; i < out_cap + GUARD && out[i] == 0x5a; i++)
		continue;
	if (i < out_cap + GUARD && check_failed(__FILE__, line, "out[out_cap..]", " == ",
	    "as it was"))
		printf("#   byte %zu past out_cap %zu written\n", i - out_cap, out_cap);
	free(out);
	return got;
}

/*
 * Compress data[0..n) with all the room it may need: the stream must
 * decode back (through the window too if windowed).  Then into out_cap
 * bytes, as check_cap_at says.  Returns the length with out_cap.
 */
static size_t
check_compress_at(int line, const unsigned char *data, size_t n, size_t out_cap,
    int windowed)
{
	size_t room = room_for(n), full, got = 0;
	unsigned char *whole = xmalloc(room);

	full = deflate_cluster(&shared, whole, room, data, n);
	if (check_at(__FILE__, line, "full != 0", full != 0)) {
		check_decodes_at(line, whole, full, data, n, windowed);
		got = check_cap_at(line, data, n, out_cap, whole, full);
	}
	free(whole);
	return got;
}

#define check_compress(data, n, out_cap) \
	check_compress_at(__LINE__, (data), (n), (out_cap), 1)

/* The tests */

/* Every cluster size, every kind of data, compressed into cluster_size - 1 as QEMU asks. */
static void
t_cluster_sizes(void)
{
	unsigned char *data = xmalloc(MAX_CLUSTER);

	for (int kind = 0; kind < KINDS; kind++) {
		for (size_t cs = 512; cs <= MAX_CLUSTER; cs *= 2) {
			size_t n;

			make((enum kind)kind, data, cs);
			set_case("%s, cluster %zu", kind_names[kind], cs);
			n = check_compress_at(__LINE__, data, cs, cs - 1, cs <= 256 << 10 ||
			    kind == PERIOD_4096 || kind == TEXT);
			if (kind == RANDOM)
				check_u64(n, 0);
			else if (kind == PERIOD_4097)	/* only its bytes' skew to code */
				check(n == 0 || n > cs - cs / 128);
			else if (kind == PERIOD_4096 && cs >= 16384)
				check(n > 4096 && n < 4096 + cs / 128 + 256);
			else if (kind == BINARY)
				check(n > 0 && n < cs / 4 * 3);
			else if (kind != PERIOD_4096 && (kind != SKEWED || cs >= 4096))
				check(n > 0 && n < cs / 2);
		}
	}
	free(data);
}

/* A match exactly 4096 back is found; 4097 back is too far, so none is. */
static void
t_window_edge(void)
{
	size_t n = 65536, room = room_for(n), len;
	unsigned char *data = xmalloc(n), *stream = xmalloc(room);

	make_period(data, n, 4096);
	set_case("period 4096");
	len = deflate_cluster(&shared, stream, room, data, n);
	check(len > 4096 && len < 4096 + 1024);
	check_decodes_at(__LINE__, stream, len, data, n, 1);
	make_period(data, n, 4097);
	set_case("period 4097");
	len = deflate_cluster(&shared, stream, room, data, n);
	check(len > n - n / 64);
	check_decodes_at(__LINE__, stream, len, data, n, 1);
	set_case("4096 random bytes, then a copy of their first 258, twice over");
	make_period(data, 4096 + 2 * 258, 4096);
	len = deflate_cluster(&shared, stream, room, data, 4096 + 2 * 258);
	check(len < 4096 + 258);
	check_decodes_at(__LINE__, stream, len, data, 4096 + 2 * 258, 1);
	free(stream);
	free(data);
}

/* 0 to 600 bytes of each kind, and the stream of nothing. */
static void
t_short_inputs(void)
{
	unsigned char data[600], stream[16];

	set_case("no input");
	check_u64(deflate_cluster(&shared, stream, sizeof(stream), data, 0), 2);
	check_u64(stream[0], 3);	/* final, fixed codes, end of block */
	check_u64(stream[1], 0);
	check_u64(deflate_cluster(&shared, stream, 1, data, 0), 0);
	check_u64(deflate_cluster(&shared, stream, 0, NULL, 0), 0);
	for (int kind = 0; kind < KINDS; kind++) {
		make((enum kind)kind, data, sizeof(data));
		for (size_t n = 1; n <= sizeof(data); n += n < 40 ? 1 : 37) {
			set_case("%s, %zu bytes", kind_names[kind], n);
			check_compress(data, n, room_for(n));
		}
	}
}

/* Every out_cap around the stream's length: 0 below it, nothing written past it. */
static void
t_out_cap_edges(void)
{
	static const size_t sizes[] = { 1, 100, 512, 4096, 65536, 300000 };
	unsigned char *data = xmalloc(300000);

	for (int kind = 0; kind < KINDS; kind++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			size_t n = sizes[s], room = room_for(n), full, span = n > 65536 ? 3 : 24;
			unsigned char *stream = xmalloc(room);

			make((enum kind)kind, data, n);
			set_case("%s, %zu bytes", kind_names[kind], n);
			full = deflate_cluster(&shared, stream, room, data, n);
			check_decodes_at(__LINE__, stream, full, data, n, n <= 65536);
			for (size_t cap = full > span ? full - span : 0; cap <= full + span; cap++) {
				set_case("%s, %zu bytes, %zu long, out_cap %zu", kind_names[kind],
				    n, full, cap);
				check_cap_at(__LINE__, data, n, cap, stream, full);
			}
			free(stream);
		}
	}
	free(data);
}

/* Blocks of every kind in one stream: long inputs of data that changes. */
static void
t_mixed(void)
{
	size_t n = MAX_CLUSTER, piece = 20000;
	unsigned char *data = xmalloc(n);

	for (size_t at = 0; at < n; at += piece)
		make((enum kind)rng_below(KINDS), data + at, n - at < piece ? n - at : piece);
	set_case("pieces of %zu of every kind, 2 MiB", piece);
	check_compress(data, n, room_for(n));
	for (int i = 0; i < 40; i++) {
		size_t len = 1 + rng_below(200000), at = rng_below((unsigned)(n - len));

		set_case("%zu bytes from %zu of the pieces", len, at);
		check_compress(data + at, len, room_for(len));
	}
	free(data);
}

/* Add what ours and zlib store for the cluster data[0..cs) to *mine and *zlib. */
static void
add_sizes(const unsigned char *data, size_t cs, unsigned char *stream, size_t *mine,
    size_t *zlib)
{
	size_t n = deflate_cluster(&shared, stream, cs - 1, data, cs);

	if (n != 0)
		check_decodes_at(__LINE__, stream, n, data, cs, 1);
	*mine += n ? n : cs;
	n = qemu_deflate(stream, cs - 1, data, cs);
	*zlib += n ? n : cs;
}

/*
 * The bytes stored for a corpus of 64 KiB clusters, cluster_size - 1 the
 * room as QEMU gives, against zlib as QEMU calls it: within 2%.  The
 * corpus is the kinds of data here, their mixes, and this program's own
 * file, whose code length codes would be longer than 7 bits unbounded;
 * not a period of 4096, which zlib, matching no farther than 3834 bytes
 * back, does not compress at all.
 */
static void
t_versus_zlib(void)
{
	size_t cs = 65536, mine = 0, zlib = 0;
	unsigned char *data = xmalloc(cs), *stream = xmalloc(cs);
	FILE *self = fopen("/proc/self/exe", "rb");

	for (int i = 0; i < 4 * KINDS; i++) {
		if (i % KINDS == PERIOD_4096)
			continue;
		if (i < 2 * KINDS) {
			make((enum kind)(i % KINDS), data, cs);
		} else {
			for (size_t at = 0; at < cs; at += 4096)
				make((enum kind)rng_below(PERIOD_4096), data + at, 4096);
		}
		set_case("kind %d", i);
		add_sizes(data, cs, stream, &mine, &zlib);
	}
	for (int i = 0; self != NULL && fread(data, 1, cs, self) == cs; i++) {
		set_case("cluster %d of this program", i);
		add_sizes(data, cs, stream, &mine, &zlib);
	}
	if (self != NULL)
		fclose(self);
	printf("# 64 KiB clusters: ours %zu bytes, zlib's %zu, %.4f times\n", mine, zlib,
	    (double)mine / (double)zlib);
	set_case("ours %zu bytes, zlib's %zu", mine, zlib);
	check(mine * 100 <= zlib * 102);
	free(stream);
	free(data);
}

/* A struct of garbage gives the same stream; the size stated. */
static void
t_no_setup(void)
{
	struct deflater *z = xmalloc(sizeof(*z));
	size_t n = 100000, room = room_for(n), len, again;
	unsigned char *data = xmalloc(n), *stream = xmalloc(room), *other = xmalloc(room);

	set_case("the size deflate.h states");
	check_u64(sizeof(struct deflater), 172032);
	make_text(data, n);
	len = deflate_cluster(&shared, stream, room, data, n);
	for (int fill = 0; fill < 3; fill++) {
		memset(z, fill == 0 ? 0 : fill == 1 ? 0xff : 0xa5, sizeof(*z));
		set_case("struct filled with 0x%02x", fill == 0 ? 0 : fill == 1 ? 0xff : 0xa5);
		again = deflate_cluster(z, other, room, data, n);
		check_u64(again, len);
		check(again == len && memcmp(other, stream, len) == 0);
	}
	free(other);
	free(stream);
	free(data);
	free(z);
}

int
main(void)
{
	TEST(t_cluster_sizes(), "every cluster size, 512 B to 2 MiB, every kind of data, into cluster - 1");
	TEST(t_window_edge(), "a match 4096 back is found, 4097 back none; zlib's 4 KiB window takes it");
	TEST(t_short_inputs(), "0 to 600 bytes of each kind");
	TEST(t_out_cap_edges(), "out_cap around the length: 0 below it, nothing written past it");
	TEST(t_mixed(), "data that changes kind: blocks of each kind in a stream");
	TEST(t_versus_zlib(), "64 KiB clusters: bytes within 2% of zlib's as QEMU calls it");
	TEST(t_no_setup(), "a struct of garbage needs no set-up; the size stated");
	return tap_done();
}

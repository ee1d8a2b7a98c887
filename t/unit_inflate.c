/*
 * t/unit_inflate.c: unit tests of inflate_cluster (inflate.h) against
 * zlib called as QEMU calls it (t/zlib_qemu.h).
 *
 * Prints TAP, one "ok N - what" line per test.  A failed check prints, as
 * TAP comments before its test's line, the check, where it is, the case
 * and both values.
 *
 * Streams are written bit by bit as RFC 1951 lays them out: stored
 * blocks, and blocks of the fixed code or of a code given by its lengths
 * holding literals and matches; malformed ones by writing one field
 * wrong.  Each is decoded by both, in a buffer of exactly its size, which
 * must agree on accepting it and on the bytes; and the outcome must be
 * the one the test means: accepted with the bytes meant, or refused for
 * the reason named.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inflate.h"
#include "tap.h"
#include "zlib_qemu.h"

#define ACCEPTED	NULL	/* the outcome of a stream both must decode */
#define EITHER		either	/* any outcome, so long as both agree */
#define LAST		1	/* a final block */
#define NOT_LAST	0

#define check_stream(w, out_len, want) \
	check_stream_at(__LINE__, (w)->buf, (w)->len, (out_len), (want), NULL)
#define check_stream_gives(w, out_len, bytes) \
	check_stream_at(__LINE__, (w)->buf, (w)->len, (out_len), ACCEPTED, (bytes))

static uint64_t rng_state = 0x9e3779b97f4a7c15;

static unsigned
rng_below(unsigned n)
{
	return (unsigned)(rng() % n);
}

/* Both decoders on one stream */

static struct inflater shared_tables;	/* reused by each decoding, as a thread would */
static const char either[] = "(either)";

static const char *
outcome(int ok, const char *why)
{
	return ok ? "accepted" : why;
}

/*
 * Decode in[0..in_len) into a cluster of out_len bytes with ours and with
 * zlib, each from and to a buffer of exactly its size.  They must agree;
 * the outcome must be want (a reason, or ACCEPTED), and when accepted the
 * bytes must be want_bytes if given.
 */
static int
check_stream_at(int line, const unsigned char *in, size_t in_len, size_t out_len,
    const char *want, const unsigned char *want_bytes)
{
	unsigned char *exact = xmalloc(in_len), *ours = xmalloc(out_len);
	unsigned char *theirs = xmalloc(out_len);
	struct inflate_error err = { "(not set)", 0 };
	int ours_ok, zlib_ok, ok = 1;
	size_t i;

	memcpy(exact, in, in_len);
	ours_ok = inflate_cluster(&shared_tables, ours, out_len, exact, in_len, &err) == 0;
	zlib_ok = qemu_inflate(theirs, out_len, exact, in_len) == 0;
	if (ours_ok != zlib_ok) {
		if ((ok = 0, check_failed(__FILE__, line, "ours", " == ", "zlib")))
			printf("#   ours: %s (at byte %zu of %zu)\n#   zlib: %s\n",
			    outcome(ours_ok, err.why), err.at, in_len,
			    zlib_ok ? "accepted" : "refused");
	} else if (ours_ok) {
		for (i = 0; i < out_len && ours[i] == theirs[i]; i++)
			continue;
		if (i < out_len && (ok = 0, check_failed(__FILE__, line, "ours", " == ", "zlib")))
			printf("#   byte %zu of %zu: ours %u, zlib %u\n", i, out_len,
			    ours[i], theirs[i]);
		for (i = 0; ok && want_bytes != NULL && i < out_len &&
		    ours[i] == want_bytes[i]; i++)
			continue;
		if (ok && want_bytes != NULL && i < out_len &&
		    (ok = 0, check_failed(__FILE__, line, "ours", " == ", "meant")))
			printf("#   byte %zu of %zu: both %u, meant %u\n", i, out_len,
			    ours[i], want_bytes[i]);
	}
	if (want == EITHER)
		;
	else if (ok && (want == ACCEPTED) != ours_ok &&
	    (ok = 0, check_failed(__FILE__, line, "outcome", " == ", "want")))
		printf("#    got: %s (both)\n#   want: %s\n", outcome(ours_ok, err.why),
		    outcome(want == ACCEPTED, want));
	else if (ok && !ours_ok && strcmp(err.why, want) != 0 &&
	    (ok = 0, check_failed(__FILE__, line, "err.why", " == ", "want")))
		printf("#    got: %s\n#   want: %s\n", err.why, want);
	if (!ours_ok && err.at > in_len &&
	    (ok = 0, check_failed(__FILE__, line, "err.at", " <= ", "in_len")))
		printf("#   at %zu of %zu\n", err.at, in_len);
	free(theirs);
	free(ours);
	free(exact);
	return ok;
}

/* The byte of the input ours names for a refusal, (size_t)-1 if it accepts. */
static size_t
refused_at(const unsigned char *in, size_t in_len, size_t out_len)
{
	unsigned char *out = xmalloc(out_len);
	struct inflate_error err;
	size_t at = (size_t)-1;

	if (inflate_cluster(&shared_tables, out, out_len, in, in_len, &err) != 0)
		at = err.at;
	free(out);
	return at;
}

/* Writing streams */

struct writer {
	unsigned char *buf;
	size_t len, cap;
	uint32_t pending;	/* bits not yet a whole byte */
	unsigned npending;
};

static void
put_byte(struct writer *w, unsigned char b)
{
	if (w->len == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 4096;
		if ((w->buf = realloc(w->buf, w->cap)) == NULL) {
			printf("Bail out! out of memory\n");
			exit(1);
		}
	}
	w->buf[w->len++] = b;
}

/* Append the n low bits of value, first bit first (RFC 1951 3.1.1). */
static void
put_bits(struct writer *w, uint32_t value, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		w->pending |= (i < 32 ? value >> i & 1 : 0) << w->npending;
		if (++w->npending == 8) {
			put_byte(w, (unsigned char)w->pending);
			w->pending = w->npending = 0;
		}
	}
}

/* A Huffman code, its first bit the code's most significant. */
static void
put_huffman(struct writer *w, unsigned code, unsigned len)
{
	while (len-- > 0)
		put_bits(w, code >> len & 1, 1);
}

/* Pad to a byte with zero bits. */
static void
flush_bits(struct writer *w)
{
	if (w->npending > 0)
		put_bits(w, 0, 8 - w->npending);
}

static void
put_raw(struct writer *w, const unsigned char *p, size_t n)
{
	flush_bits(w);
	for (size_t i = 0; i < n; i++)
		put_byte(w, p[i]);
}

static void
writer_reset(struct writer *w)
{
	w->len = 0;
	w->pending = w->npending = 0;
}

/* The stream so far and its last bits, padded. */
static struct writer *
done(struct writer *w)
{
	flush_bits(w);
	return w;
}

/* A stored block of data[0..n), its lengths as given. */
static void
put_stored_lengths(struct writer *w, int last, const unsigned char *data, size_t n,
    unsigned len, unsigned nlen)
{
	put_bits(w, (uint32_t)last, 1);
	put_bits(w, 0, 2);
	flush_bits(w);
	put_bits(w, len, 16);
	put_bits(w, nlen, 16);
	put_raw(w, data, n);
}

static void
put_stored(struct writer *w, int last, const unsigned char *data, size_t n)
{
	put_stored_lengths(w, last, data, n, (unsigned)n, (unsigned)n ^ 0xffff);
}

/* Codes: the lengths and canonical codes of literals/lengths and distances */

static const uint16_t length_base[29] = {
	3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
	35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
};
static const uint8_t length_extra[29] = {
	0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
	3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
};
static const uint16_t dist_base[30] = {
	1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
	257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289,
	16385, 24577,
};
static const uint8_t dist_extra[30] = {
	0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
	7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
};

struct code {
	uint8_t lit_len[288], dist_len[32];
	uint16_t lit_code[288], dist_code[32];
};

/* The canonical codes of lengths[0..n) (RFC 1951 3.2.2). */
static void
assign_codes(const uint8_t *lengths, uint16_t *codes, unsigned n)
{
	unsigned count[16] = { 0 }, next[16], code = 0;

	for (unsigned i = 0; i < n; i++)
		count[lengths[i]]++;
	count[0] = 0;
	for (unsigned bits = 1; bits < 16; bits++)
		next[bits] = code = (code + count[bits - 1]) << 1;
	for (unsigned i = 0; i < n; i++)
		codes[i] = lengths[i] ? (uint16_t)next[lengths[i]]++ : 0;
}

static void
code_from_lengths(struct code *c)
{
	assign_codes(c->lit_len, c->lit_code, 288);
	assign_codes(c->dist_len, c->dist_code, 32);
}

static void
fixed_code(struct code *c)
{
	memset(c->lit_len, 8, 144);
	memset(c->lit_len + 144, 9, 256 - 144);
	memset(c->lit_len + 256, 7, 280 - 256);
	memset(c->lit_len + 280, 8, 288 - 280);
	memset(c->dist_len, 5, 32);
	code_from_lengths(c);
}

static void
put_symbol(struct writer *w, const struct code *c, unsigned sym)
{
	put_huffman(w, c->lit_code[sym], c->lit_len[sym]);
}

static void
put_dist_symbol(struct writer *w, const struct code *c, unsigned sym)
{
	put_huffman(w, c->dist_code[sym], c->dist_len[sym]);
}

static unsigned
length_symbol(unsigned length)
{
	unsigned i = 28;

	while (length_base[i] > length)
		i--;
	return i;
}

static unsigned
dist_symbol(unsigned distance)
{
	unsigned i = 29;

	while (dist_base[i] > distance)
		i--;
	return i;
}

static void
put_match(struct writer *w, const struct code *c, unsigned length, unsigned distance)
{
	unsigned ls = length == 258 ? 28 : length_symbol(length), ds = dist_symbol(distance);

	put_symbol(w, c, 257 + ls);
	put_bits(w, length - length_base[ls], length_extra[ls]);
	put_dist_symbol(w, c, ds);
	put_bits(w, distance - dist_base[ds], dist_extra[ds]);
}

static void
put_fixed_header(struct writer *w, int last)
{
	put_bits(w, (uint32_t)last, 1);
	put_bits(w, 1, 2);
}

/* A code length symbol and the value of its extra bits. */
struct cl {
	uint8_t sym, extra;
};

static const uint8_t cl_order[19] = {
	16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
};

/*
 * A dynamic block's header as given: HLIT, HDIST and HCLEN as counts,
 * the code length code's lengths cl_len[19] in symbol order (the first
 * hclen in the RFC's order are written), then seq[0..n).
 */
static void
put_dynamic_raw(struct writer *w, int last, unsigned nlen, unsigned ndist, unsigned hclen,
    const uint8_t *cl_len, const struct cl *seq, size_t n)
{
	static const uint8_t repeat_extra[3] = { 2, 3, 7 };
	uint16_t cl_code[19];

	put_bits(w, (uint32_t)last, 1);
	put_bits(w, 2, 2);
	put_bits(w, nlen - 257, 5);
	put_bits(w, ndist - 1, 5);
	put_bits(w, hclen - 4, 4);
	for (unsigned i = 0; i < hclen; i++)
		put_bits(w, cl_len[cl_order[i]], 3);
	assign_codes(cl_len, cl_code, 19);
	for (size_t i = 0; i < n; i++) {
		put_huffman(w, cl_code[seq[i].sym], cl_len[seq[i].sym]);
		if (seq[i].sym >= 16)
			put_bits(w, seq[i].extra, repeat_extra[seq[i].sym - 16]);
	}
}

/* A complete code length code: 0-12 of 4 bits, 13-18 of 5. */
static const uint8_t plain_cl_len[19] = {
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5,
};

/* A dynamic block's header for code c, every length written as itself. */
static void
put_dynamic(struct writer *w, int last, const struct code *c, unsigned nlen, unsigned ndist)
{
	struct cl seq[288 + 32];
	size_t n = 0;

	for (unsigned i = 0; i < nlen; i++)
		seq[n++] = (struct cl){ c->lit_len[i], 0 };
	for (unsigned i = 0; i < ndist; i++)
		seq[n++] = (struct cl){ c->dist_len[i], 0 };
	put_dynamic_raw(w, last, nlen, ndist, 19, plain_cl_len, seq, n);
}

/* A random order of n symbols. */
static void
shuffle(unsigned *syms, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		syms[i] = i;
	for (unsigned i = n; i > 1; i--) {
		unsigned j = (unsigned)(rng() % i), t = syms[i - 1];

		syms[i - 1] = syms[j];
		syms[j] = t;
	}
}

/*
 * A complete code of all 286 literal/length and 30 distance symbols, in
 * a random order, some of each of 14 and 15 bits: literals/lengths of 1
 * to 6 bits, then 232 of 14 and 48 of 15; distances of 1 to 10 bits, then
 * 12 of 14 and 8 of 15.
 */
static void
deep_code(struct code *c)
{
	unsigned order[286];

	memset(c, 0, sizeof(*c));
	shuffle(order, 286);
	for (unsigned i = 0; i < 286; i++)
		c->lit_len[order[i]] = (uint8_t)(i < 6 ? i + 1 : i < 6 + 232 ? 14 : 15);
	shuffle(order, 30);
	for (unsigned i = 0; i < 30; i++)
		c->dist_len[order[i]] = (uint8_t)(i < 10 ? i + 1 : i < 10 + 12 ? 14 : 15);
	code_from_lengths(c);
}

/*
 * Random lengths of a complete code over syms[0..n), n >= 2, none longer
 * than 15: a tree grown by splitting leaves, often the newest, so that
 * some codes are long.
 */
static void
random_lengths(uint8_t *lengths, const unsigned *syms, unsigned n)
{
	uint8_t depth[320];
	unsigned leaves = 2;

	depth[0] = depth[1] = 1;
	while (leaves < n) {
		unsigned i = rng_below(3) == 0 ? leaves - 1 : rng_below(leaves);

		while (depth[i] >= 15)
			i = (i + 1) % leaves;
		depth[i]++;
		depth[leaves++] = depth[i];
	}
	for (unsigned i = n; i > 1; i--) {
		unsigned j = rng_below(i);
		uint8_t t = depth[i - 1];

		depth[i - 1] = depth[j];
		depth[j] = t;
	}
	for (unsigned i = 0; i < n; i++)
		lengths[syms[i]] = depth[i];
}

/* Data */

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

static void
make_random(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)rng();
}

/* The tests */

/* Stored blocks: one, several, empty ones, across a cluster. */
static void
t_stored(void)
{
	struct writer w = { 0 };
	unsigned char data[70000];

	make_random(data, sizeof(data));
	set_case("one stored block, the cluster exactly");
	writer_reset(&w);
	put_stored(&w, LAST, data, 512);
	check_stream_gives(done(&w), 512, data);
	set_case("empty stored blocks around three pieces");
	writer_reset(&w);
	put_stored(&w, NOT_LAST, data, 0);
	put_stored(&w, NOT_LAST, data, 100);
	put_stored(&w, NOT_LAST, data + 100, 0);
	put_stored(&w, NOT_LAST, data + 100, 300);
	put_stored(&w, LAST, data + 400, 112);
	check_stream_gives(done(&w), 512, data);
	set_case("stored blocks of 65535 bytes to a 64 KiB cluster and past it");
	writer_reset(&w);
	put_stored(&w, NOT_LAST, data, 65535);
	put_stored(&w, LAST, data + 65535, 4000);
	check_stream_gives(done(&w), 65536, data);
	set_case("a stored block after a fixed one, off a byte boundary");
	writer_reset(&w);
	put_fixed_header(&w, NOT_LAST);
	{
		struct code fixed;

		fixed_code(&fixed);
		put_symbol(&w, &fixed, data[0]);
		put_symbol(&w, &fixed, 256);
	}
	put_stored(&w, LAST, data + 1, 511);
	check_stream_gives(done(&w), 512, data);
	free(w.buf);
}

/* Every literal in a fixed block, in the fast loop and at the end. */
static void
t_fixed_literals(void)
{
	struct writer w = { 0 };
	struct code fixed;
	unsigned char want[4096];

	fixed_code(&fixed);
	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (unsigned char)(i * 17 % 256 ^ i / 256);
	set_case("4096 literals, each value 16 times");
	put_fixed_header(&w, LAST);
	for (size_t i = 0; i < sizeof(want); i++)
		put_symbol(&w, &fixed, want[i]);
	put_symbol(&w, &fixed, 256);
	check_stream_gives(done(&w), sizeof(want), want);
	for (unsigned b = 0; b < 256; b++) {
		set_case("one literal %u", b);
		writer_reset(&w);
		put_fixed_header(&w, LAST);
		put_symbol(&w, &fixed, b);
		put_symbol(&w, &fixed, 256);
		check_stream_gives(done(&w), 1, (unsigned char[]){ (unsigned char)b });
	}
	free(w.buf);
}

/*
 * A literal x then a match of each length 3 to 258 at distance 1: every
 * length code with every value of its extra bits, in one stream through
 * the fast loop and one by one through the careful loop.
 */
static void
t_lengths(const struct code *c, int dynamic)
{
	struct writer w = { 0 };
	unsigned char want[300 * 256];
	size_t total = 0;

	for (unsigned length = 3; length <= 258; length++) {
		memset(want + total, 'x', 1 + length);
		total += 1 + length;
	}
	set_case("%s code: every length in one stream", dynamic ? "a dynamic" : "the fixed");
	if (dynamic)
		put_dynamic(&w, LAST, c, 286, 30);
	else
		put_fixed_header(&w, LAST);
	for (unsigned length = 3; length <= 258; length++) {
		put_symbol(&w, c, 'x');
		put_match(&w, c, length, 1);
	}
	put_symbol(&w, c, 256);
	check_stream_gives(done(&w), total, want);
	for (unsigned length = 3; length <= 258; length++) {
		set_case("%s code: a literal and a match of %u",
		    dynamic ? "a dynamic" : "the fixed", length);
		writer_reset(&w);
		if (dynamic)
			put_dynamic(&w, LAST, c, 286, 30);
		else
			put_fixed_header(&w, LAST);
		put_symbol(&w, c, 'x');
		put_match(&w, c, length, 1);
		put_symbol(&w, c, 256);
		check_stream_gives(done(&w), 1 + length, want);
	}
	free(w.buf);
}

static void
t_fixed_lengths(void)
{
	struct code fixed;

	fixed_code(&fixed);
	t_lengths(&fixed, 0);
}

/*
 * A stored block of 32768 bytes, then matches at distances: every one
 * from 1 to 32768 in the fast loop, and each distance code's least and
 * greatest in the careful loop.
 */
static void
t_distances(const struct code *c, int dynamic)
{
	struct writer w = { 0 };
	size_t total = 32768 + 3 * 32768;
	unsigned char *want = xmalloc(total);

	make_random(want, 32768);
	for (size_t i = 32768; i < total; i++)
		want[i] = want[i - (32768 - (i - 32768) / 3)];
	set_case("%s code: every distance", dynamic ? "a dynamic" : "the fixed");
	put_stored(&w, NOT_LAST, want, 32768);
	if (dynamic)
		put_dynamic(&w, LAST, c, 286, 30);
	else
		put_fixed_header(&w, LAST);
	for (unsigned distance = 32768; distance >= 1; distance--)
		put_match(&w, c, 3, distance);
	put_symbol(&w, c, 256);
	check_stream_gives(done(&w), total, want);
	for (unsigned sym = 0; sym < 30; sym++) {
		for (unsigned top = 0; top < 2; top++) {
			unsigned distance = dist_base[sym] +
			    (top ? (1u << dist_extra[sym]) - 1 : 0);

			set_case("%s code: distance code %u, distance %u",
			    dynamic ? "a dynamic" : "the fixed", sym, distance);
			writer_reset(&w);
			put_stored(&w, NOT_LAST, want, 32768);
			if (dynamic)
				put_dynamic(&w, LAST, c, 286, 30);
			else
				put_fixed_header(&w, LAST);
			put_match(&w, c, 258, distance);
			put_symbol(&w, c, 256);
			for (unsigned i = 0; i < 258; i++)
				want[32768 + i] = want[32768 + i - distance];
			check_stream_gives(done(&w), 32768 + 258, want);
		}
	}
	free(want);
	free(w.buf);
}

static void
t_fixed_distances(void)
{
	struct code fixed;

	fixed_code(&fixed);
	t_distances(&fixed, 0);
}

/* Distances up to the bytes so far, and past: the 4 KiB window is no limit. */
static void
t_distance_limits(void)
{
	struct writer w = { 0 };
	struct code fixed;
	unsigned char data[40000];
	static const unsigned sizes[] = { 1, 2, 3, 100, 4095, 4096, 4097, 8192, 32767, 32768 };

	fixed_code(&fixed);
	make_random(data, sizeof(data));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t so_far = sizes[i];

		for (int past = 0; past < 2; past++) {
			set_case("%zu bytes, then a match %s", so_far, past ? "one further" :
			    "from the first byte");
			writer_reset(&w);
			put_stored(&w, NOT_LAST, data, so_far);
			put_fixed_header(&w, LAST);
			if (so_far + past <= 32768) {
				put_match(&w, &fixed, 10, (unsigned)(so_far + past));
				put_symbol(&w, &fixed, 256);
				check_stream(done(&w), so_far + 10,
				    past ? "distance too far back" : ACCEPTED);
			}
		}
	}
	set_case("a match at distance 2 from the first byte, out of a fixed block");
	writer_reset(&w);
	put_fixed_header(&w, LAST);
	put_symbol(&w, &fixed, 'a');
	put_match(&w, &fixed, 3, 2);
	put_symbol(&w, &fixed, 256);
	check_stream(done(&w), 4, "distance too far back");
	check_u64(refused_at(w.buf, w.len, 4), 2);
	set_case("a match first of all, in the fast loop");
	writer_reset(&w);
	put_fixed_header(&w, LAST);
	put_match(&w, &fixed, 258, 1);
	for (int i = 0; i < 10; i++)
		put_symbol(&w, &fixed, 'a');
	put_symbol(&w, &fixed, 256);
	check_stream(done(&w), 512, "distance too far back");
	free(w.buf);
}

/* Matches that overlap what they copy: every distance 1 to 40, lengths 3 to 258. */
static void
t_overlaps(void)
{
	struct writer w = { 0 };
	struct code fixed;
	size_t cap = 40 * (40 + 256 * 261), total = 0, start;
	unsigned char *want = xmalloc(cap);

	fixed_code(&fixed);
	set_case("every distance 1 to 40 with every length, in the fast loop");
	put_fixed_header(&w, LAST);
	for (unsigned distance = 1; distance <= 40; distance++) {
		for (unsigned i = 0; i < distance; i++) {
			want[total] = (unsigned char)rng();
			put_symbol(&w, &fixed, want[total++]);
		}
		for (unsigned length = 3; length <= 258; length++) {
			put_match(&w, &fixed, length, distance);
			for (unsigned i = 0; i < length; i++, total++)
				want[total] = want[total - distance];
		}
	}
	put_symbol(&w, &fixed, 256);
	check_stream_gives(done(&w), total, want);
	for (unsigned distance = 1; distance <= 20; distance++) {
		for (unsigned length = 3; length <= 258; length += length < 20 ? 1 : 37) {
			set_case("distance %u, length %u, at the end of the cluster", distance,
			    length);
			writer_reset(&w);
			put_fixed_header(&w, LAST);
			total = 0;
			for (unsigned i = 0; i < distance; i++) {
				want[total] = (unsigned char)rng();
				put_symbol(&w, &fixed, want[total++]);
			}
			put_match(&w, &fixed, length, distance);
			for (start = total; total < start + length; total++)
				want[total] = want[total - distance];
			put_symbol(&w, &fixed, 256);
			check_stream_gives(done(&w), total, want);
		}
	}
	free(want);
	free(w.buf);
}

/* data[0..n) compressed by zlib at level with strategy into stream[0..room). */
static size_t
zlib_compress(unsigned char *stream, size_t room, const unsigned char *data, size_t n,
    int level, int strategy)
{
	z_stream strm;

	memset(&strm, 0, sizeof(strm));
	deflateInit2(&strm, level, Z_DEFLATED, -12, 9, strategy);
	strm.next_in = (unsigned char *)(uintptr_t)data;
	strm.avail_in = (uInt)n;
	strm.next_out = stream;
	strm.avail_out = (uInt)room;
	deflate(&strm, Z_FINISH);
	deflateEnd(&strm);
	return room - strm.avail_out;
}

/* zlib's own streams: its levels and strategies, over kinds of data. */
static void
t_zlib_streams(void)
{
	static const size_t sizes[] = { 512, 4096, 65536 };
	static const int strategies[] = { Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY,
	    Z_RLE, Z_FIXED };
	static const char *const kinds[] = { "text", "binary", "random", "zeros", "a pattern" };
	size_t max = 65536, room = 2 * max + 1024;
	unsigned char *data = xmalloc(max), *stream = xmalloc(room);

	for (int kind = 0; kind < 5; kind++) {
		if (kind == 0)
			make_text(data, max);
		else if (kind == 1)
			make_binary(data, max);
		else if (kind == 2)
			make_random(data, max);
		else if (kind == 3)
			memset(data, 0, max);
		else
			for (size_t i = 0; i < max; i++)
				data[i] = (unsigned char)"abcab"[i % 5];
		for (size_t i = 0; i < 3 * 3 * 5; i++) {
			size_t size = sizes[i / 15], n;
			int level = 1 + 4 * (int)(i / 5 % 3);

			n = zlib_compress(stream, room, data, size, level, strategies[i % 5]);
			set_case("%s, %zu bytes, level %d, strategy %zu", kinds[kind], size,
			    level, i % 5);
			check_stream_at(__LINE__, stream, n, size, ACCEPTED, data);
		}
	}
	free(stream);
	free(data);
}

/* Dynamic codes with codes of 1 to 15 bits: sub-tables of both tables. */
static void
t_deep_codes(void)
{
	struct code c;
	unsigned syms[286];

	for (int round = 0; round < 2; round++) {
		deep_code(&c);
		t_lengths(&c, 1);
		t_distances(&c, 1);
	}
	for (unsigned i = 0; i < 286; i++)
		syms[i] = i;
	for (int round = 0; round < 2; round++) {
		memset(&c, 0, sizeof(c));
		random_lengths(c.lit_len, syms, 286);
		random_lengths(c.dist_len, syms, 30);
		code_from_lengths(&c);
		t_lengths(&c, 1);
		t_distances(&c, 1);
	}
}

/* Blocks of each kind after each other; tables rebuilt, fixed after dynamic. */
static void
t_block_sequences(void)
{
	struct writer w = { 0 };
	struct code fixed, dyn;
	unsigned char want[6000];
	size_t total = 0;
	unsigned syms[286];

	fixed_code(&fixed);
	for (unsigned i = 0; i < 286; i++)
		syms[i] = i;
	memset(&dyn, 0, sizeof(dyn));
	random_lengths(dyn.lit_len, syms, 286);
	random_lengths(dyn.dist_len, syms, 30);
	code_from_lengths(&dyn);
	make_text(want, sizeof(want));
	set_case("fixed, dynamic, stored, fixed, dynamic, empty fixed, stored");
	for (int b = 0; b < 7; b++) {
		const struct code *c = b % 3 == 1 ? &dyn : &fixed;
		size_t n = b == 5 ? 0 : 800;

		if (b == 2 || b == 6) {
			put_stored(&w, b == 6, want + total, n);
			total += n;
			continue;
		}
		if (c == &dyn)
			put_dynamic(&w, NOT_LAST, &dyn, 286, 30);
		else
			put_fixed_header(&w, NOT_LAST);
		for (size_t i = 0; i < n; i++)
			put_symbol(&w, c, want[total++]);
		put_symbol(&w, c, 256);
	}
	check_stream_gives(done(&w), total, want);
	free(w.buf);
}

/* Inputs of 0, 1 and 2 bytes, and every cut of some streams. */
static void
t_byte_edges(void)
{
	unsigned char in[2], data[3000], *stream = xmalloc(8000);
	static const size_t clusters[] = { 1, 512 };
	size_t n;

	set_case("no input at all");
	check_stream_at(__LINE__, in, 0, 512, "input ends before the cluster is full", NULL);
	for (unsigned b = 0; b < 256; b++) {
		in[0] = (unsigned char)b;
		for (size_t k = 0; k < 2; k++) {
			set_case("one byte 0x%02x, cluster %zu", b, clusters[k]);
			check_stream_at(__LINE__, in, 1, clusters[k], EITHER, NULL);
		}
	}
	for (unsigned v = 0; v < 65536; v++) {
		in[0] = (unsigned char)v;
		in[1] = (unsigned char)(v >> 8);
		for (size_t k = 0; k < 2; k++) {
			set_case("two bytes 0x%04x, cluster %zu", v, clusters[k]);
			check_stream_at(__LINE__, in, 2, clusters[k], EITHER, NULL);
		}
	}
	make_text(data, sizeof(data));
	n = qemu_deflate(stream, 8000, data, sizeof(data));
	for (size_t cut = 0; cut <= n; cut++) {
		set_case("zlib's stream of %zu bytes of text cut to %zu", n, cut);
		check_stream_at(__LINE__, stream, cut, sizeof(data),
		    cut + 3 > n ? EITHER : "input ends before the cluster is full", data);
		set_case("zlib's stream cut to %zu, a cluster of its first 1000 bytes", cut);
		check_stream_at(__LINE__, stream, cut, 1000, EITHER, data);
	}
	free(stream);
}

/* Block type 3: first, after a block, and in too few bits to tell. */
static void
t_bad_block_type(void)
{
	struct writer w = { 0 };
	unsigned char data[100];

	make_random(data, sizeof(data));
	set_case("a first block of type 3");
	put_bits(&w, 1, 1);
	put_bits(&w, 3, 2);
	check_stream(done(&w), 512, "invalid block type");
	check_u64(refused_at(w.buf, w.len, 512), 0);
	set_case("a block of type 3 after a stored block");
	writer_reset(&w);
	put_stored(&w, NOT_LAST, data, sizeof(data));
	put_bits(&w, 0, 1);
	put_bits(&w, 3, 2);
	check_stream(done(&w), 512, "invalid block type");
	check_u64(refused_at(w.buf, w.len, 512), 105);
	free(w.buf);
}

/* Stored blocks whose LEN and NLEN disagree, or are cut. */
static void
t_bad_stored(void)
{
	struct writer w = { 0 };
	unsigned char data[600];

	make_random(data, sizeof(data));
	set_case("NLEN equal to LEN");
	put_stored_lengths(&w, LAST, data, 512, 512, 512);
	check_stream(done(&w), 512, "stored block length does not match its complement");
	check_u64(refused_at(w.buf, w.len, 512), 1);
	for (unsigned bit = 0; bit < 16; bit++) {
		set_case("NLEN off by bit %u", bit);
		writer_reset(&w);
		put_stored_lengths(&w, LAST, data, 512, 512, (512 ^ 0xffff) ^ 1u << bit);
		check_stream(done(&w), 512, "stored block length does not match its complement");
	}
	for (size_t cut = 0; cut < 5; cut++) {
		set_case("a stored header cut to %zu bytes", cut);
		writer_reset(&w);
		put_stored(&w, LAST, data, 512);
		check_stream_at(__LINE__, w.buf, cut, 512, "input ends before the cluster is full",
		    NULL);
	}
	free(w.buf);
}

/* HLIT and HDIST past 286 and 30. */
static void
t_too_many_codes(void)
{
	struct writer w = { 0 };
	struct code c;

	deep_code(&c);
	for (unsigned nlen = 286; nlen <= 288; nlen++) {
		for (unsigned ndist = 30; ndist <= 32; ndist++) {
			set_case("HLIT %u, HDIST %u", nlen - 257, ndist - 1);
			writer_reset(&w);
			put_dynamic(&w, LAST, &c, nlen, ndist);
			put_symbol(&w, &c, 'a');
			put_symbol(&w, &c, 256);
			check_stream(done(&w), 1, nlen == 286 && ndist == 30 ? ACCEPTED :
			    "too many length or distance codes");
		}
	}
	free(w.buf);
}

/* A dynamic block of lit/len lengths lit[0..nlen) and distance ones dist[0..ndist). */
static void
put_lengths_block(struct writer *w, int last, const uint8_t *lit, unsigned nlen,
    const uint8_t *dist, unsigned ndist)
{
	struct code c;

	memset(&c, 0, sizeof(c));
	memcpy(c.lit_len, lit, nlen);
	memcpy(c.dist_len, dist, ndist);
	put_dynamic(w, last, &c, nlen, ndist);
}

/* Code length codes over-subscribed, incomplete, or empty (zlib reads 0 each bit). */
static void
t_code_length_codes(void)
{
	static const struct cl seq[2] = { { 0, 0 }, { 0, 0 } };
	struct writer w = { 0 };
	uint8_t cl[19];

	memset(cl, 0, sizeof(cl));
	cl[0] = cl[1] = cl[2] = 1;
	set_case("three code length codes of 1 bit");
	put_dynamic_raw(&w, LAST, 257, 1, 19, cl, seq, 2);
	check_stream(done(&w), 1, "over-subscribed code length code");
	set_case("one code length code of 1 bit");
	memset(cl, 0, sizeof(cl));
	cl[8] = 1;
	writer_reset(&w);
	put_dynamic_raw(&w, LAST, 257, 1, 19, cl, NULL, 0);
	check_stream(done(&w), 1, "incomplete code length code");
	set_case("code length codes of 1, 2 and 3 bits");
	cl[0] = 2;
	cl[18] = 3;
	writer_reset(&w);
	put_dynamic_raw(&w, LAST, 257, 1, 19, cl, NULL, 0);
	check_stream(done(&w), 1, "incomplete code length code");
	set_case("no code length code: 258 lengths of 0, one a bit");
	memset(cl, 0, sizeof(cl));
	writer_reset(&w);
	put_dynamic_raw(&w, LAST, 257, 1, 4, cl, NULL, 0);
	put_bits(&w, 0, 258);
	check_stream(done(&w), 1, "no end-of-block code");
	set_case("no code length code, and too few bits after it");
	writer_reset(&w);
	put_dynamic_raw(&w, LAST, 286, 30, 4, cl, NULL, 0);
	put_bits(&w, 0, 200);
	check_stream(done(&w), 1, "input ends before the cluster is full");
	free(w.buf);
}

/*
 * Literal/length and distance codes over-subscribed and incomplete, and
 * zlib's exceptions: one code of one bit, and no distance code at all.
 */
static void
t_code_sets(void)
{
	struct writer w = { 0 };
	uint8_t lit[286], dist[30];
	unsigned char data[512];
	struct code c;

	make_random(data, sizeof(data));
	memset(lit, 8, sizeof(lit));
	memset(dist, 5, sizeof(dist));
	set_case("286 literal/length codes of 8 bits");
	put_lengths_block(&w, LAST, lit, 286, dist, 30);
	check_stream(done(&w), 1, "over-subscribed literal/length code");
	set_case("literal/length codes of 1 and 2 bits");
	memset(lit, 0, sizeof(lit));
	lit['a'] = 1;
	lit[256] = 2;
	writer_reset(&w);
	put_lengths_block(&w, LAST, lit, 257, dist, 1);
	check_stream(done(&w), 1, "incomplete literal/length code");
	set_case("the end-of-block code alone, of 2 bits");
	lit['a'] = 0;
	writer_reset(&w);
	put_lengths_block(&w, LAST, lit, 257, dist, 1);
	check_stream(done(&w), 1, "incomplete literal/length code");
	set_case("the end-of-block code alone, of 1 bit, and a distance code alone");
	lit[256] = 1;
	dist[0] = 1;
	writer_reset(&w);
	put_lengths_block(&w, NOT_LAST, lit, 257, dist, 1);
	put_bits(&w, 0, 1);
	put_stored(&w, LAST, data, sizeof(data));
	check_stream_gives(done(&w), sizeof(data), data);
	set_case("the end-of-block code alone, of 1 bit: the other bit");
	writer_reset(&w);
	put_lengths_block(&w, NOT_LAST, lit, 257, dist, 1);
	put_bits(&w, 1, 1);
	put_stored(&w, LAST, data, sizeof(data));
	check_stream(done(&w), sizeof(data), "invalid literal/length code");
	memset(&c, 0, sizeof(c));
	memset(c.lit_len, 9, 256);
	c.lit_len[256] = 2;
	c.lit_len[257] = 2;
	c.dist_len[3] = 1;
	code_from_lengths(&c);
	set_case("a distance code alone, of 1 bit: its code");
	writer_reset(&w);
	put_dynamic(&w, LAST, &c, 258, 4);
	put_symbol(&w, &c, 'a');
	put_symbol(&w, &c, 'b');
	put_symbol(&w, &c, 'c');
	put_symbol(&w, &c, 'd');
	put_match(&w, &c, 3, 4);
	put_symbol(&w, &c, 256);
	check_stream_gives(done(&w), 7, (const unsigned char *)"abcdabc");
	set_case("a distance code alone, of 1 bit: the other bit");
	writer_reset(&w);
	put_dynamic(&w, LAST, &c, 258, 4);
	put_symbol(&w, &c, 'a');
	put_symbol(&w, &c, 257);
	put_bits(&w, 1, 1);
	put_symbol(&w, &c, 256);
	check_stream(done(&w), 4, "invalid distance code");
	set_case("a distance code alone, of 2 bits");
	c.dist_len[3] = 2;
	writer_reset(&w);
	put_dynamic(&w, LAST, &c, 258, 4);
	check_stream(done(&w), 4, "incomplete distance code");
	set_case("three distance codes of 1 bit");
	c.dist_len[0] = c.dist_len[1] = c.dist_len[3] = 1;
	writer_reset(&w);
	put_dynamic(&w, LAST, &c, 258, 4);
	check_stream(done(&w), 4, "over-subscribed distance code");
	set_case("no distance code: literals only");
	memset(c.dist_len, 0, sizeof(c.dist_len));
	code_from_lengths(&c);
	writer_reset(&w);
	put_dynamic(&w, LAST, &c, 258, 30);
	put_symbol(&w, &c, 'a');
	put_symbol(&w, &c, 256);
	check_stream_gives(done(&w), 1, (const unsigned char *)"a");
	set_case("no distance code: a length, with a bit or two for its distance");
	for (unsigned bits = 1; bits <= 2; bits++) {
		writer_reset(&w);
		put_dynamic(&w, LAST, &c, 258, 1);
		put_symbol(&w, &c, 'a');
		put_symbol(&w, &c, 257);
		put_bits(&w, 0, bits);
		check_stream(done(&w), 4, "invalid distance code");
	}
	free(w.buf);
}

/* No end-of-block code among the lengths. */
static void
t_no_end_code(void)
{
	struct writer w = { 0 };
	uint8_t lit[286], dist[1] = { 1 };

	memset(lit, 0, sizeof(lit));
	memset(lit, 8, 256);
	set_case("256 literals of 8 bits, no end of block");
	put_lengths_block(&w, LAST, lit, 257, dist, 1);
	check_stream(done(&w), 1, "no end-of-block code");
	free(w.buf);
}

/* Repeats of code lengths: first, past the end, and across into distances. */
static void
t_repeats(void)
{
	static const unsigned sizes[3] = { 6, 10, 138 };
	struct writer w = { 0 };
	struct cl seq[320];
	size_t n;

	set_case("a repeat first of all");
	seq[0] = (struct cl){ 16, 0 };
	put_dynamic_raw(&w, LAST, 257, 1, 19, plain_cl_len, seq, 1);
	check_stream(done(&w), 1, "code length repeat with no length before");
	for (unsigned sym = 16; sym <= 18; sym++) {
		set_case("code length symbol %u repeating past the last length", sym);
		n = 0;
		for (unsigned i = 0; i < 258 - 2; i++)
			seq[n++] = (struct cl){ 8, 0 };
		seq[n++] = (struct cl){ (uint8_t)sym, (uint8_t)(sizes[sym - 16] - 3) };
		writer_reset(&w);
		put_dynamic_raw(&w, LAST, 257, 1, 19, plain_cl_len, seq, n);
		check_stream(done(&w), 1, "code length repeat past the last code");
	}
	/*
	 * Literals of 9 bits, lengths of 6, 284 and 285 of 5; distances 0-27
	 * of 5 and 28-29 of 4: the 5 of 284 repeated into 285 and distances 0-4.
	 */
	set_case("a repeat across from literal/length into distance lengths");
	n = 0;
	seq[n++] = (struct cl){ 9, 0 };
	for (int i = 0; i < 255 / 6; i++)
		seq[n++] = (struct cl){ 16, 3 };
	seq[n++] = (struct cl){ 16, 0 };
	seq[n++] = (struct cl){ 6, 0 };
	for (int i = 0; i < 27 / 3; i++)
		seq[n++] = (struct cl){ 16, 0 };
	seq[n++] = (struct cl){ 5, 0 };
	seq[n++] = (struct cl){ 16, 3 };
	for (int i = 0; i < 3; i++)
		seq[n++] = (struct cl){ 16, 3 };
	seq[n++] = (struct cl){ 16, 2 };
	seq[n++] = (struct cl){ 4, 0 };
	seq[n++] = (struct cl){ 4, 0 };
	writer_reset(&w);
	put_dynamic_raw(&w, LAST, 286, 30, 19, plain_cl_len, seq, n);
	{
		struct code c;

		memset(&c, 0, sizeof(c));
		memset(c.lit_len, 9, 256);
		memset(c.lit_len + 256, 6, 28);
		c.lit_len[284] = c.lit_len[285] = 5;
		memset(c.dist_len, 5, 28);
		c.dist_len[28] = c.dist_len[29] = 4;
		code_from_lengths(&c);
		put_symbol(&w, &c, 'z');
		put_match(&w, &c, 257, 1);
		put_match(&w, &c, 258, 1);
		put_symbol(&w, &c, 256);
	}
	{
		unsigned char want[516];

		memset(want, 'z', sizeof(want));
		check_stream_gives(done(&w), sizeof(want), want);
	}
	free(w.buf);
}

/* Literal/length codes 286 and 287 and distance codes 30 and 31 of the fixed code. */
static void
t_fixed_invalid(void)
{
	struct writer w = { 0 };
	struct code fixed;

	fixed_code(&fixed);
	for (unsigned room = 0; room < 2; room++) {
		size_t out_len = room ? 65536 : 2;

		for (unsigned sym = 286; sym <= 287; sym++) {
			set_case("fixed literal/length code %u, cluster %zu", sym, out_len);
			writer_reset(&w);
			put_fixed_header(&w, LAST);
			put_symbol(&w, &fixed, 'a');
			put_symbol(&w, &fixed, sym);
			for (int i = 0; i < 100; i++)
				put_symbol(&w, &fixed, 'a');
			check_stream(done(&w), out_len, "invalid literal/length code");
		}
		for (unsigned sym = 30; sym <= 31; sym++) {
			set_case("fixed distance code %u, cluster %zu", sym, out_len);
			writer_reset(&w);
			put_fixed_header(&w, LAST);
			put_symbol(&w, &fixed, 'a');
			put_symbol(&w, &fixed, 257);
			put_dist_symbol(&w, &fixed, sym);
			for (int i = 0; i < 100; i++)
				put_symbol(&w, &fixed, 'a');
			check_stream(done(&w), out_len, "invalid distance code");
		}
	}
	free(w.buf);
}

/*
 * A fixed block, not the last, of 16 literals that fill the cluster; then
 * what follows, by which zlib refuses it or not.
 */
static void
full_then(struct writer *w, const struct code *fixed)
{
	writer_reset(w);
	put_fixed_header(w, NOT_LAST);
	for (int i = 0; i < 16; i++)
		put_symbol(w, fixed, "0123456789abcdef"[i]);
}

/* Once the cluster is full, parsing goes on to the first byte to write. */
static void
t_full_then(void)
{
	struct writer w = { 0 };
	struct code fixed;
	const unsigned char *want = (const unsigned char *)"0123456789abcdef";

	fixed_code(&fixed);
	set_case("nothing after");
	full_then(&w, &fixed);
	check_stream_gives(done(&w), 16, want);
	set_case("a literal, then junk");
	full_then(&w, &fixed);
	put_symbol(&w, &fixed, 'x');
	put_symbol(&w, &fixed, 286);
	check_stream_gives(done(&w), 16, want);
	set_case("literal/length code 286");
	full_then(&w, &fixed);
	put_symbol(&w, &fixed, 286);
	check_stream(done(&w), 16, "invalid literal/length code");
	set_case("a length, then distance code 30");
	full_then(&w, &fixed);
	put_symbol(&w, &fixed, 257);
	put_dist_symbol(&w, &fixed, 30);
	check_stream(done(&w), 16, "invalid distance code");
	set_case("a match from too far back: not copied, so no fault");
	full_then(&w, &fixed);
	put_match(&w, &fixed, 10, 1000);
	put_symbol(&w, &fixed, 286);
	check_stream_gives(done(&w), 16, want);
	set_case("a match past the cluster's end, then junk");
	writer_reset(&w);
	put_fixed_header(&w, NOT_LAST);
	for (int i = 0; i < 10; i++)
		put_symbol(&w, &fixed, 'a');
	put_match(&w, &fixed, 10, 1);
	put_symbol(&w, &fixed, 286);
	check_stream_gives(done(&w), 16, (const unsigned char *)"aaaaaaaaaaaaaaaa");
	set_case("a match to the cluster's end, then code 286");
	writer_reset(&w);
	put_fixed_header(&w, NOT_LAST);
	for (int i = 0; i < 10; i++)
		put_symbol(&w, &fixed, 'a');
	put_match(&w, &fixed, 6, 1);
	put_symbol(&w, &fixed, 286);
	check_stream(done(&w), 16, "invalid literal/length code");
	set_case("the last block's end, then type 3");
	writer_reset(&w);
	put_fixed_header(&w, LAST);
	for (int i = 0; i < 16; i++)
		put_symbol(&w, &fixed, want[i]);
	put_symbol(&w, &fixed, 256);
	put_bits(&w, 3 << 1, 3);
	check_stream_gives(done(&w), 16, want);
	free(w.buf);
}

/* Once the cluster is full, the next block's header and tables are read. */
static void
t_full_then_blocks(void)
{
	struct writer w = { 0 };
	struct code fixed, dyn;
	const unsigned char *want = (const unsigned char *)"0123456789abcdef";
	uint8_t cl[19] = { 0 };

	fixed_code(&fixed);
	set_case("end of block, then type 3");
	full_then(&w, &fixed);
	put_symbol(&w, &fixed, 256);
	put_bits(&w, 3 << 1, 3);
	check_stream(done(&w), 16, "invalid block type");
	set_case("end of block, then a stored block with a bad NLEN");
	full_then(&w, &fixed);
	put_symbol(&w, &fixed, 256);
	put_stored_lengths(&w, LAST, want, 5, 5, 5);
	check_stream(done(&w), 16, "stored block length does not match its complement");
	set_case("end of block, then a stored block of 5 bytes: not copied");
	full_then(&w, &fixed);
	put_symbol(&w, &fixed, 256);
	put_stored(&w, NOT_LAST, want, 5);
	put_bits(&w, 3 << 1, 3);
	check_stream_gives(done(&w), 16, want);
	set_case("end of block, an empty stored block, then type 3");
	full_then(&w, &fixed);
	put_symbol(&w, &fixed, 256);
	put_stored(&w, NOT_LAST, want, 0);
	put_bits(&w, 3 << 1, 3);
	check_stream(done(&w), 16, "invalid block type");
	set_case("end of block, then HLIT 31");
	full_then(&w, &fixed);
	put_symbol(&w, &fixed, 256);
	put_dynamic(&w, LAST, &fixed, 288, 30);
	check_stream(done(&w), 16, "too many length or distance codes");
	set_case("end of block, then over-subscribed literal/length codes");
	memset(&dyn, 0, sizeof(dyn));
	memset(dyn.lit_len, 8, 286);
	dyn.dist_len[0] = 1;
	full_then(&w, &fixed);
	put_symbol(&w, &fixed, 256);
	put_dynamic(&w, LAST, &dyn, 286, 1);
	check_stream(done(&w), 16, "over-subscribed literal/length code");
	set_case("end of block, an empty dynamic block, then type 3");
	memset(dyn.lit_len, 0, 286);
	dyn.lit_len[256] = 1;
	code_from_lengths(&dyn);
	full_then(&w, &fixed);
	put_symbol(&w, &fixed, 256);
	put_dynamic(&w, NOT_LAST, &dyn, 257, 1);
	put_symbol(&w, &dyn, 256);
	put_bits(&w, 3 << 1, 3);
	check_stream(done(&w), 16, "invalid block type");
	set_case("end of block, no code length code, 316 bits of lengths");
	full_then(&w, &fixed);
	put_symbol(&w, &fixed, 256);
	put_dynamic_raw(&w, LAST, 286, 30, 4, cl, NULL, 0);
	put_bits(&w, 0, 316);
	check_stream(done(&w), 16, "no end-of-block code");
	set_case("end of block, no code length code, fewer bits than lengths");
	full_then(&w, &fixed);
	put_symbol(&w, &fixed, 256);
	put_dynamic_raw(&w, LAST, 286, 30, 4, cl, NULL, 0);
	put_bits(&w, 0, 300);
	check_stream_gives(done(&w), 16, want);
	set_case("a stored block past the cluster's end, then junk");
	writer_reset(&w);
	put_stored(&w, NOT_LAST, (const unsigned char *)"0123456789abcdefgh", 18);
	put_bits(&w, 3 << 1, 3);
	check_stream_gives(done(&w), 16, want);
	set_case("a stored block to the cluster's end, then type 3");
	writer_reset(&w);
	put_stored(&w, NOT_LAST, want, 16);
	put_bits(&w, 3 << 1, 3);
	check_stream(done(&w), 16, "invalid block type");
	free(w.buf);
}

/* Streams that end before the cluster is full, go on past it, or are padded. */
static void
t_stream_ends(void)
{
	struct writer w = { 0 };
	struct code fixed;
	unsigned char data[1000], junk[1000];

	fixed_code(&fixed);
	make_text(data, sizeof(data));
	set_case("the last block ends at 100 bytes of 512");
	put_fixed_header(&w, LAST);
	for (int i = 0; i < 100; i++)
		put_symbol(&w, &fixed, data[i]);
	put_symbol(&w, &fixed, 256);
	check_stream(done(&w), 512, "stream ends before the cluster is full");
	check_u64(refused_at(w.buf, w.len, 512), w.len);
	set_case("the input ends at 100 bytes of 512, in no last block");
	writer_reset(&w);
	put_fixed_header(&w, NOT_LAST);
	for (int i = 0; i < 100; i++)
		put_symbol(&w, &fixed, data[i]);
	put_symbol(&w, &fixed, 256);
	check_stream(done(&w), 512, "input ends before the cluster is full");
	check_u64(refused_at(w.buf, w.len, 512), w.len);
	set_case("1000 bytes into a cluster of 512");
	writer_reset(&w);
	put_stored(&w, NOT_LAST, data, 300);
	put_fixed_header(&w, LAST);
	for (int i = 300; i < 1000; i++)
		put_symbol(&w, &fixed, data[i]);
	put_symbol(&w, &fixed, 256);
	check_stream_gives(done(&w), 512, data);
	for (int kind = 0; kind < 3; kind++) {
		set_case("a stream padded with %s", kind == 0 ? "zeros" : kind == 1 ? "0xff" :
		    "random bytes");
		memset(junk, kind == 0 ? 0 : 0xff, sizeof(junk));
		if (kind == 2)
			make_random(junk, sizeof(junk));
		writer_reset(&w);
		put_fixed_header(&w, LAST);
		for (int i = 0; i < 512; i++)
			put_symbol(&w, &fixed, data[i]);
		put_symbol(&w, &fixed, 256);
		put_raw(&w, junk, sizeof(junk));
		check_stream_gives(done(&w), 512, data);
	}
	for (size_t over = 0; over < 300; over += 37) {
		size_t out_len = 1 + 254 * 258 + over;
		unsigned char *want = xmalloc(out_len);

		set_case("a literal, then matches of 258 to the end of %zu bytes, input to spare",
		    out_len);
		memset(want, 'a', out_len);
		writer_reset(&w);
		put_fixed_header(&w, LAST);
		put_symbol(&w, &fixed, 'a');
		for (size_t n = 1; n < out_len; n += 258)
			put_match(&w, &fixed, 258, 1);
		for (int i = 0; i < 40; i++)
			put_symbol(&w, &fixed, 'a');
		check_stream_gives(done(&w), out_len, want);
		free(want);
	}
	free(w.buf);
}

/* Every cluster size, 512 B to 2 MiB, of data compressed as QEMU does. */
static void
t_cluster_sizes(void)
{
	size_t max = 2 << 20;
	unsigned char *data = xmalloc(max), *stream = xmalloc(max);

	for (int kind = 0; kind < 2; kind++) {
		if (kind == 0)
			make_text(data, max);
		else
			make_binary(data, max);
		for (size_t cs = 512; cs <= max; cs *= 2) {
			size_t n = qemu_deflate(stream, cs - 1, data, cs);

			set_case("%s, cluster %zu, %zu bytes compressed", kind ? "binary" : "text",
			    cs, n);
			if (check(n > 0))
				check_stream_at(__LINE__, stream, n, cs, ACCEPTED, data);
		}
	}
	free(stream);
	free(data);
}

/* Tables of garbage to start with, and one struct inflater for every kind of block. */
static void
t_no_setup(void)
{
	struct inflater *z = xmalloc(sizeof(*z));
	unsigned char data[8192], stream[9000], out[8192];
	struct inflate_error err;
	size_t n;

	set_case("the size inflate.h states");
	check_u64(sizeof(struct inflater), 17536);
	make_text(data, sizeof(data));
	n = qemu_deflate(stream, sizeof(stream), data, sizeof(data));
	for (int fill = 0; fill < 3; fill++) {
		memset(z, fill == 0 ? 0 : fill == 1 ? 0xff : 0xa5, sizeof(*z));
		set_case("tables filled with 0x%02x", fill == 0 ? 0 : fill == 1 ? 0xff : 0xa5);
		check(inflate_cluster(z, out, sizeof(out), stream, n, &err) == 0);
		check(memcmp(out, data, sizeof(out)) == 0);
	}
	free(z);
}

/* Random streams */

struct random_stream {
	struct writer w;
	unsigned char *want;	/* what it decodes to */
	size_t total, cap;
};

/* Symbols 0..n-1 that have a length, in syms; returns how many. */
static unsigned
coded(const uint8_t *lengths, unsigned from, unsigned to, unsigned *syms)
{
	unsigned n = 0;

	for (unsigned s = from; s < to; s++)
		if (lengths[s] != 0)
			syms[n++] = s;
	return n;
}

/* A code of random symbols: some literals, the end, some lengths and distances. */
static void
random_code(struct code *c, unsigned *nlen, unsigned *ndist)
{
	unsigned syms[320], n = 0, nd = 0;

	memset(c, 0, sizeof(*c));
	for (unsigned s = 0; s < 286; s++)
		if (s == 256 || rng_below(4) == 0)
			syms[n++] = s;
	if (n == 1 && rng_below(2))
		syms[n++] = (unsigned)rng_below(256);
	if (n == 1)
		c->lit_len[256] = 1;
	else
		random_lengths(c->lit_len, syms, n);
	for (unsigned s = 0; s < 30; s++)
		if (rng_below(3) == 0)
			syms[nd++] = s;
	if (nd == 1)
		c->dist_len[syms[0]] = 1;
	else if (nd > 1)
		random_lengths(c->dist_len, syms, nd);
	code_from_lengths(c);
	*nlen = 257;
	for (unsigned s = 257; s < 286; s++)
		if (c->lit_len[s] != 0 || rng_below(40) == 0)
			*nlen = s + 1;
	*ndist = 1;
	for (unsigned s = 0; s < 30; s++)
		if (c->dist_len[s] != 0 || rng_below(40) == 0)
			*ndist = s + 1;
}

/* A dynamic header for c with repeat codes where lengths run, as encoders write them. */
static void
put_dynamic_runs(struct writer *w, int last, const struct code *c, unsigned nlen,
    unsigned ndist)
{
	uint8_t all[320];
	struct cl seq[320];
	size_t n = 0;

	memcpy(all, c->lit_len, nlen);
	memcpy(all + nlen, c->dist_len, ndist);
	for (unsigned i = 0; i < nlen + ndist; ) {
		unsigned run = 1;

		while (i + run < nlen + ndist && all[i + run] == all[i])
			run++;
		if (all[i] == 0 && run >= 11) {
			run = run > 138 ? 138 : run;
			seq[n++] = (struct cl){ 18, (uint8_t)(run - 11) };
		} else if (all[i] == 0 && run >= 3) {
			seq[n++] = (struct cl){ 17, (uint8_t)(run - 3) };
		} else if (i > 0 && all[i] == all[i - 1] && run >= 3) {
			run = run > 6 ? 6 : run;
			seq[n++] = (struct cl){ 16, (uint8_t)(run - 3) };
		} else {
			run = 1;
			seq[n++] = (struct cl){ all[i], 0 };
		}
		i += run;
	}
	put_dynamic_raw(w, last, nlen, ndist, 19, plain_cl_len, seq, n);
}

/* Append one literal or match of code c to r, up to max bytes in all. */
static void
random_symbol(struct random_stream *r, const struct code *c, size_t max)
{
	unsigned lits[256], lens[29], dists[30], nl, nm, nd, s, d;
	size_t length, distance;

	nl = coded(c->lit_len, 0, 256, lits);
	nm = coded(c->lit_len, 257, 286, lens);
	nd = coded(c->dist_len, 0, 30, dists);
	for (d = 0; d < nd && dist_base[dists[d]] <= r->total; d++)
		continue;
	if (nm > 0 && d > 0 && (nl == 0 || rng_below(2))) {
		s = lens[rng_below(nm)] - 257;
		length = length_base[s] + rng_below(1u << length_extra[s]);
		d = dists[rng_below(d)];
		distance = dist_base[d] + rng_below(1u << dist_extra[d]);
		if (distance > r->total)
			distance = dist_base[d];
		if (r->total + length > max)
			return;
		put_symbol(&r->w, c, 257 + s);
		put_bits(&r->w, (uint32_t)(length - length_base[s]), length_extra[s]);
		put_dist_symbol(&r->w, c, d);
		put_bits(&r->w, (uint32_t)(distance - dist_base[d]), dist_extra[d]);
		for (size_t i = 0; i < length; i++, r->total++)
			r->want[r->total] = r->want[r->total - distance];
	} else if (nl > 0 && r->total < max) {
		r->want[r->total] = (unsigned char)lits[rng_below(nl)];
		put_symbol(&r->w, c, r->want[r->total++]);
	}
}

/* A random block appended to r, its output at most max bytes in all. */
static void
random_block(struct random_stream *r, int last, size_t max)
{
	struct code c;
	unsigned nlen = 286, ndist = 30, kind = rng_below(4);
	unsigned symbols = rng_below(2) ? rng_below(40) : rng_below(3000);

	if (kind == 0) {
		size_t n = rng_below(2) ? rng_below(20) : rng_below(65536);

		n = n > max - r->total ? max - r->total : n;
		make_random(r->want + r->total, n);
		put_stored(&r->w, last, r->want + r->total, n);
		r->total += n;
		return;
	}
	if (kind == 1) {
		fixed_code(&c);
		put_fixed_header(&r->w, last);
	} else {
		random_code(&c, &nlen, &ndist);
		if (rng_below(2))
			put_dynamic(&r->w, last, &c, nlen, ndist);
		else
			put_dynamic_runs(&r->w, last, &c, nlen, ndist);
	}
	for (unsigned i = 0; i < symbols; i++)
		random_symbol(r, &c, max);
	put_symbol(&r->w, &c, 256);
}

static void
random_stream(struct random_stream *r)
{
	unsigned blocks = 1 + rng_below(4);
	size_t max = rng_below(2) ? 1 + rng_below(600) : 1 + rng_below(100000);

	writer_reset(&r->w);
	r->total = 0;
	for (unsigned b = 0; b < blocks; b++)
		random_block(r, b + 1 == blocks, max);
	if (rng_below(4) == 0) {
		unsigned char junk[64];

		make_random(junk, sizeof(junk));
		put_raw(&r->w, junk, rng_below(sizeof(junk)));
	}
	done(&r->w);
}

/* Random streams of random codes: both decode the bytes meant, into any cluster. */
static void
t_random(int cases)
{
	struct random_stream r = { { 0 }, NULL, 0, 100000 };

	r.want = xmalloc(r.cap);
	for (int i = 0; i < cases; i++) {
		random_stream(&r);
		set_case("random stream %d, %zu bytes to %zu", i, r.w.len, r.total);
		if (r.total > 0)
			check_stream_gives(&r.w, r.total, r.want);
		if (r.total > 1)
			check_stream_gives(&r.w, 1 + rng_below((unsigned)r.total - 1), r.want);
		check_stream(&r.w, r.total + 1, "stream ends before the cluster is full");
	}
	free(r.want);
	free(r.w.buf);
}

/* Random streams damaged: bits flipped, bytes changed, cut short; as zlib does. */
static void
t_damage(int cases)
{
	struct random_stream r = { { 0 }, NULL, 0, 100000 };
	unsigned char *copy;

	r.want = xmalloc(r.cap);
	for (int i = 0; i < cases; i++) {
		size_t out_len, at;

		random_stream(&r);
		copy = xmalloc(r.w.len);
		for (int k = 0; k < 8; k++) {
			memcpy(copy, r.w.buf, r.w.len);
			at = rng_below((unsigned)r.w.len);
			out_len = r.total > 0 && rng_below(2) ? r.total : 1 + rng_below(1000);
			if (k < 4)
				copy[at] ^= (unsigned char)(1u << rng_below(8));
			else if (k < 6)
				copy[at] = (unsigned char)rng();
			set_case("random stream %d of %zu bytes, damage %d at %zu, cluster %zu", i,
			    r.w.len, k, at, out_len);
			check_stream_at(__LINE__, copy, k < 6 ? r.w.len : at, out_len, EITHER,
			    NULL);
		}
		free(copy);
	}
	free(r.want);
	free(r.w.buf);
}

int
main(int argc, char **argv)
{
	int cases = argc > 1 ? atoi(argv[1]) : 500;

	TEST(t_stored(), "stored blocks: one, several, empty, of 65535 bytes, after a fixed block");
	TEST(t_fixed_literals(), "fixed block: every literal");
	TEST(t_fixed_lengths(), "fixed block: every length, so every length code and extra value");
	TEST(t_fixed_distances(), "fixed block: every distance to 32768; each code's least and greatest");
	TEST(t_distance_limits(), "distances up to the bytes so far, one more is too far; no 4 KiB window");
	TEST(t_overlaps(), "overlapping copies: distances 1 to 40, lengths 3 to 258");
	TEST(t_zlib_streams(), "zlib's streams at levels 1, 5, 9 and each strategy, 512 B to 64 KiB");
	TEST(t_deep_codes(), "dynamic codes of 1 to 15 bits: sub-tables, every length and distance");
	TEST(t_block_sequences(), "fixed, dynamic and stored blocks in turn, tables rebuilt");
	TEST(t_byte_edges(), "0, 1 and 2 bytes of input; every cut of a stream");
	TEST(t_bad_block_type(), "refused: block type 3");
	TEST(t_bad_stored(), "refused: stored LEN and NLEN that disagree");
	TEST(t_too_many_codes(), "refused: HLIT over 286, HDIST over 30");
	TEST(t_code_length_codes(), "refused: code length codes over-subscribed, incomplete; none at all");
	TEST(t_code_sets(), "refused: codes over-subscribed, incomplete; zlib's exceptions accepted");
	TEST(t_no_end_code(), "refused: no end-of-block code");
	TEST(t_repeats(), "refused: a repeat first, past the last length; accepted across");
	TEST(t_fixed_invalid(), "refused: literal/length codes 286, 287, distance codes 30, 31");
	TEST(t_full_then(), "a full cluster: parsing goes on to the first byte to write, as zlib's");
	TEST(t_full_then_blocks(), "a full cluster: the next block's header and tables are read");
	TEST(t_stream_ends(), "streams that end short, go on past the cluster, are padded; matches to the end");
	TEST(t_cluster_sizes(), "every cluster size, 512 B to 2 MiB, compressed as QEMU does");
	TEST(t_no_setup(), "tables of garbage need no set-up; the size stated");
	TEST(t_random(cases), "random streams of random codes: the bytes meant, in any cluster");
	TEST(t_damage(cases), "random streams damaged or cut: as zlib decides");
	return tap_done();
}

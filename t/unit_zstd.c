/*
 * t/unit_zstd.c: unit tests of zstd_decode_cluster (zstd_decode.h)
 * against libzstd called as QEMU calls it (t/zstd_qemu.h).
 *
 * Prints TAP, one "ok N - what" line per test.  A failed check prints, as
 * TAP comments before its test's line, the check, where it is, the case
 * and both values.
 *
 * Clusters are made by libzstd's compressor from data of several kinds
 * at every level and with its frame options, put together with
 * skippable frames and padding; frames with one field wrong, and
 * blocks libzstd does not write, are laid out byte by byte.  Each input
 * is decoded by both, from and into buffers of exactly its size; they
 * must agree on accepting it and on the bytes, and the outcome must be
 * the one the test means: accepted with the bytes meant, or refused,
 * for the reason named if one is.
 */
#define _POSIX_C_SOURCE 200809L
#define ZSTD_STATIC_LINKING_ONLY	/* for the compressor's finer knobs */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zstd_decode.h"
#include "tap.h"
#include "zstd_qemu.h"

#define KIB	1024
#define MIB	(1024 * 1024)

#define ACCEPTED	NULL	/* the outcome of an input both must decode */
#define EITHER		either	/* any outcome, so long as both agree */
#define REFUSED		refused	/* refused, for any reason */

#define check_input(b, out_len, want) \
	check_input_at(__LINE__, (b)->p, (b)->len, (out_len), (want), NULL)
#define check_input_gives(b, out_len, bytes) \
	check_input_at(__LINE__, (b)->p, (b)->len, (out_len), ACCEPTED, (bytes))

static const char either[] = "(either)", refused[] = "(refused)";

static uint64_t rng_state = 0x9e3779b97f4a7c15;

static size_t
rng_below(size_t n)
{
	return (size_t)(rng() % n);
}

/* A growing byte buffer, for the inputs the tests lay out. */
struct buf {
	unsigned char *p;
	size_t len, cap;
};

static void
put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		if ((b->p = realloc(b->p, b->cap)) == NULL) {
			printf("Bail out! out of memory\n");
			exit(1);
		}
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* The n low bytes of v, little-endian. */
static void
put_le(struct buf *b, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned char c = (unsigned char)(v >> (8 * i));

		put(b, &c, 1);
	}
}

static void
put_zeros(struct buf *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put_le(b, 0, 1);
}

static void
buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* Data of the kinds a disk holds */

enum kind { TEXT, ZEROS, RANDOM, FILESYSTEM, KINDS };
static const char *const kind_names[KINDS] = { "text", "zeros", "random", "file system" };

static void
fill_text(unsigned char *p, size_t n)
{
	static const char *const words[] = {
		"the", "cluster", "of", "a", "disk", "image", "is", "read", "once",
		"and", "written", "in", "order", "qcow2", "zstd", "frame", "block",
		"literal", "match", "offset", "table", "\n", "state", "window",
	};
	size_t i = 0;

	while (i < n) {
		const char *w = words[rng_below(sizeof(words) / sizeof(words[0]))];
		size_t len = strlen(w);

		for (size_t j = 0; j < len && i < n; j++)
			p[i++] = (unsigned char)w[j];
		if (i < n)
			p[i++] = ' ';
	}
}

/* Runs of zeros, text, noise, and tables of small records counting up. */
static void
fill_filesystem(unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t run = 64 + rng_below(4096), k;

		if (run > n - i)
			run = n - i;
		switch (rng_below(4)) {
		case 0:
			memset(p + i, 0, run);
			break;
		case 1:
			fill_text(p + i, run);
			break;
		case 2:
			for (k = 0; k < run; k++)
				p[i + k] = (unsigned char)rng();
			break;
		default:
			for (k = 0; k < run; k++)
				p[i + k] = k % 32 < 4 ? (unsigned char)(i / 32 + k / 32) :
				    k % 32 < 12 ? (unsigned char)"inode\0\0\0"[k % 8] : 0;
			break;
		}
		i += run;
	}
}

static unsigned char *
make_data(enum kind kind, size_t n)
{
	unsigned char *p = xmalloc(n);

	switch (kind) {
	case TEXT:
		fill_text(p, n);
		break;
	case ZEROS:
		memset(p, 0, n);
		break;
	case RANDOM:
		for (size_t i = 0; i < n; i++)
			p[i] = (unsigned char)rng();
		break;
	default:
		fill_filesystem(p, n);
		break;
	}
	return p;
}

/* Frames made by libzstd */

struct params {
	int level;
	int checksum;
	int content_size;	/* in the header; else written as a stream */
	int long_matches;
	int window_log;		/* 0: the level's */
	int block_size;		/* a target for compressed blocks, 0: none */
	int literals;		/* ZSTD_ps_auto, _enable (Huffman) or _disable (raw) */
};

static const struct params plain = { 3, 0, 1, 0, 0, 0, ZSTD_ps_auto };

/* Append to b a frame of data[0..n) made with p. */
static void
compress_frame(struct buf *b, const unsigned char *data, size_t n, const struct params *p)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	size_t room = ZSTD_compressBound(n), got = 0, left;
	unsigned char *out = xmalloc(room);

	ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, p->level);
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, p->checksum);
	ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, p->content_size);
	ZSTD_CCtx_setParameter(c, ZSTD_c_enableLongDistanceMatching, p->long_matches);
	ZSTD_CCtx_setParameter(c, ZSTD_c_literalCompressionMode, p->literals);
	if (p->window_log)
		ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, p->window_log);
	if (p->block_size)
		ZSTD_CCtx_setParameter(c, ZSTD_c_targetCBlockSize, p->block_size);
	if (p->content_size) {
		got = ZSTD_compress2(c, out, room, data, n);
	} else {
		/* fed in pieces with no size given: a frame that does not say its size */
		ZSTD_outBuffer ob = { out, room, 0 };
		ZSTD_inBuffer ib = { data, 0, 0 };

		do {
			ib.size = ib.size + 7000 < n ? ib.size + 7000 : n;
			left = ZSTD_compressStream2(c, &ob, &ib,
			    ib.size == n ? ZSTD_e_end : ZSTD_e_continue);
		} while (!ZSTD_isError(left) && (ib.size < n || left != 0));
		got = ZSTD_isError(left) ? left : ob.pos;
	}
	if (ZSTD_isError(got)) {
		printf("Bail out! libzstd: %s\n", ZSTD_getErrorName(got));
		exit(1);
	}
	put(b, out, got);
	free(out);
	ZSTD_freeCCtx(c);
}

/* Both decoders on one input */

static struct zstd_decoder shared;	/* reused by each decoding, as a thread would */

static const char *
outcome(int ok, const char *why)
{
	return ok ? "accepted" : why;
}

/*
 * Decode in[0..in_len) into a cluster of out_len bytes with ours and
 * with libzstd, each from and to a buffer of exactly its size.  They must
 * agree, unless ours refuses a Huffman stream's end, which libzstd may
 * not look at, or a frame of zstd before 0.8, which it may read (see
 * zstd_decode.h): that counts as a refusal of both.
 * The outcome must be want, and when accepted the bytes must be
 * want_bytes if given.
 */
static int
check_input_at(int line, const unsigned char *in, size_t in_len, size_t out_len,
    const char *want, const unsigned char *want_bytes)
{
	unsigned char *exact = xmalloc(in_len), *ours = xmalloc(out_len);
	unsigned char *theirs = xmalloc(out_len);
	struct zstd_error err = { "(not set)", 0 };
	int ours_ok, theirs_ok, ok = 1;
	size_t i;

	if (in_len > 0)
		memcpy(exact, in, in_len);
	ours_ok = zstd_decode_cluster(&shared, ours, out_len, exact, in_len, &err) == 0;
	theirs_ok = qemu_zstd_decompress(theirs, out_len, exact, in_len) == 0;
	if (!ours_ok && (strcmp(err.why, ZSTD_HUFFMAN_END) == 0 ||
	    strcmp(err.why, ZSTD_LEGACY) == 0))
		theirs_ok = 0;
	if (ours_ok != theirs_ok) {
		if ((ok = 0, check_failed(__FILE__, line, "ours", " == ", "libzstd")))
			printf("#   ours: %s (at byte %zu of %zu)\n#   libzstd: %s\n",
			    outcome(ours_ok, err.why), err.at, in_len,
			    theirs_ok ? "accepted" : "refused");
	} else if (ours_ok) {
		for (i = 0; i < out_len && ours[i] == theirs[i]; i++)
			continue;
		if (i < out_len &&
		    (ok = 0, check_failed(__FILE__, line, "ours", " == ", "libzstd")))
			printf("#   byte %zu of %zu: ours %u, libzstd %u\n", i, out_len,
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
	else if (ok && !ours_ok && want != REFUSED && strcmp(err.why, want) != 0 &&
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

/* A cluster of data[0..n) in one frame made with p, padded with pad zeros; both must give it back. */
static void
check_frame(const unsigned char *data, size_t n, const struct params *p, size_t pad)
{
	struct buf b = { 0 };

	compress_frame(&b, data, n, p);
	put_zeros(&b, pad);
	check_input_gives(&b, n, data);
	buf_free(&b);
}

/* Frames laid out by hand */

/*
 * A frame header: fhd, then the window byte if not single-segment, a
 * dictionary ID of the bytes fhd says, and a content size.
 */
static void
put_header(struct buf *b, unsigned fhd, unsigned window, uint64_t dict_id, uint64_t size)
{
	static const unsigned dict_bytes[4] = { 0, 1, 2, 4 };
	unsigned single = fhd >> 5 & 1, size_bytes = fhd >> 6 ? 1u << (fhd >> 6) : single;

	put_le(b, 0xfd2fb528, 4);
	put_le(b, fhd, 1);
	if (!single)
		put_le(b, window, 1);
	put_le(b, dict_id, dict_bytes[fhd & 3]);
	put_le(b, size_bytes == 2 ? size - 256 : size, size_bytes);
}

/* A single-segment header with a 4-byte content size, no checksum. */
static void
put_sized_header(struct buf *b, uint64_t size)
{
	put_header(b, 0xa0, 0, 0, size);
}

enum block_type { RAW, RLE, COMPRESSED, RESERVED };

static void
put_block(struct buf *b, int last, enum block_type type, size_t size)
{
	put_le(b, (uint64_t)size << 3 | (uint64_t)type << 1 | (unsigned)last, 3);
}

static void
put_raw_block(struct buf *b, int last, const unsigned char *data, size_t n)
{
	put_block(b, last, RAW, n);
	put(b, data, n);
}

static void
put_rle_block(struct buf *b, int last, unsigned char c, size_t n)
{
	put_block(b, last, RLE, n);
	put(b, &c, 1);
}

static void
put_skippable(struct buf *b, unsigned nibble, size_t n)
{
	put_le(b, 0x184d2a50 + nibble, 4);
	put_le(b, n, 4);
	for (size_t i = 0; i < n; i++)
		put_le(b, rng(), 1);
}

/* The tests */

static const size_t cluster_sizes[] = { 512, 4 * KIB, 64 * KIB, 2 * MIB };

static void
t_levels(void)
{
	static const int levels[] = { -7, -3, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
	    13, 14, 15, 16, 17, 18, 19, 22 };

	for (size_t c = 0; c < sizeof(cluster_sizes) / sizeof(cluster_sizes[0]); c++) {
		size_t n = cluster_sizes[c];

		for (enum kind k = 0; k < KINDS; k++) {
			unsigned char *data = make_data(k, n);

			for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
				struct params p = plain;

				/* libzstd's slow levels on the largest clusters: one a kind */
				if (n == 2 * MIB && levels[l] > 3 && (l + k) % 8 != 0)
					continue;
				p.level = levels[l];
				set_case("%s, %zu bytes, level %d", kind_names[k], n, p.level);
				check_frame(data, n, &p, 0);
			}
			free(data);
		}
	}
}

static void
t_frame_options(void)
{
	for (size_t c = 0; c < sizeof(cluster_sizes) / sizeof(cluster_sizes[0]); c++) {
		size_t n = cluster_sizes[c];
		unsigned char *data = make_data(FILESYSTEM, n);

		for (int opts = 0; opts < 16; opts++) {
			struct params p = plain;

			p.checksum = opts & 1;
			p.content_size = opts >> 1 & 1;
			p.long_matches = opts >> 2 & 1;
			p.level = opts & 8 ? 19 : 1;
			if (n == 2 * MIB && p.level == 19 && opts != 15)
				continue;
			set_case("%zu bytes, level %d, checksum %d, content size %d, long %d",
			    n, p.level, p.checksum, p.content_size, p.long_matches);
			check_frame(data, n, &p, opts & 2 ? 0 : 100);
		}
		free(data);
	}
}

static void
t_windows_and_blocks(void)
{
	size_t n = 256 * KIB;
	unsigned char *data = make_data(FILESYSTEM, n);

	for (int log = 10; log <= 20; log += 2) {
		for (int sized = 0; sized < 2; sized++) {
			struct params p = plain;

			p.window_log = log;
			p.content_size = sized;
			p.checksum = 1;
			set_case("window 2^%d, content size %d", log, sized);
			check_frame(data, n, &p, 0);
		}
	}
	for (int size = 100; size <= 100000; size *= 10) {
		struct params p = plain;

		p.block_size = size;
		set_case("compressed blocks of about %d bytes", size);
		check_frame(data, n, &p, 0);
		p.content_size = 0;
		check_frame(data, n, &p, 0);
	}
	free(data);
}

static void
t_literals(void)
{
	static const int modes[] = { ZSTD_ps_disable, ZSTD_ps_enable };

	for (enum kind k = 0; k < KINDS; k++) {
		for (size_t c = 0; c < 3; c++) {
			size_t n = cluster_sizes[c];
			unsigned char *data = make_data(k, n);

			for (int m = 0; m < 2; m++) {
				struct params p = plain;

				p.literals = modes[m];
				p.block_size = m ? 1000 : 0;
				set_case("%s, %zu bytes, literals %s", kind_names[k], n,
				    m ? "Huffman-coded" : "raw");
				check_frame(data, n, &p, 0);
			}
			free(data);
		}
	}
}

/* Bytes of seven bits at random: Huffman-coded literals, hardly a match. */
static void
t_many_literals(void)
{
	size_t n = 2 * MIB;
	unsigned char *data = make_data(RANDOM, n);
	struct params p = plain;

	for (size_t i = 0; i < n; i++)
		data[i] &= 0x7f;
	for (p.level = 1; p.level <= 19; p.level += 9) {
		set_case("128 KiB blocks of seven-bit noise at level %d", p.level);
		check_frame(data, n, &p, 0);
	}
	free(data);
}

/* Two symbols at random: short matches close by, tens of thousands a block. */
static void
t_many_sequences(void)
{
	size_t n = 256 * KIB;
	unsigned char *data = make_data(RANDOM, n);
	struct params p = plain;

	for (size_t i = 0; i < n; i++)
		data[i] = "ab"[data[i] & 1];
	for (p.level = 1; p.level <= 19; p.level += 6) {
		set_case("blocks of two symbols at random at level %d", p.level);
		check_frame(data, n, &p, 0);
	}
	free(data);
}

static void
t_qemu_frames(void)
{
	for (size_t c = 0; c < sizeof(cluster_sizes) / sizeof(cluster_sizes[0]); c++) {
		size_t n = cluster_sizes[c], got;
		unsigned char *data = make_data(FILESYSTEM, n), *frame = xmalloc(n);
		struct buf b = { 0 };

		set_case("a %zu-byte cluster as QEMU writes it", n);
		if ((got = qemu_zstd_compress(frame, n - 1, data, n, 3)) != 0) {
			put(&b, frame, got);
			/* QEMU reads to the end of the last sector */
			put_zeros(&b, 511 - (got + 511) % 512 + 512);
			check_input_gives(&b, n, data);
		}
		check(got != 0);
		buf_free(&b);
		free(frame);
		free(data);
	}
}

static void
t_several_frames(void)
{
	size_t n = 64 * KIB;
	unsigned char *data = make_data(FILESYSTEM, n);

	for (int frames = 2; frames <= 6; frames++) {
		for (int skip = 0; skip < 2; skip++) {
			struct buf b = { 0 };
			size_t from = 0;

			set_case("%d frames%s", frames, skip ? ", skippable ones around" : "");
			for (int f = 0; f < frames; f++) {
				size_t to = f == frames - 1 ? n : from + rng_below(n / frames);
				struct params p = plain;

				p.content_size = f & 1;
				p.checksum = f % 3 == 0;
				p.level = f - 2;
				if (skip)
					put_skippable(&b, (unsigned)f, rng_below(3) * 100);
				compress_frame(&b, data + from, to - from, &p);
				from = to;
			}
			put_skippable(&b, 15, 10);
			check_input_gives(&b, n, data);
			buf_free(&b);
		}
	}
	free(data);
}

static void
t_hand_blocks(void)
{
	unsigned char data[600];
	struct buf b = { 0 };

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + i / 50);

	set_case("raw, RLE and empty blocks, no content size");
	put_header(&b, 0x04, 0, 0, 0);
	put_raw_block(&b, 0, data, 0);
	put_raw_block(&b, 0, data, 100);
	put_rle_block(&b, 0, data[100], 1);
	put_rle_block(&b, 0, 0x5a, 0);
	put_block(&b, 0, COMPRESSED, 0);
	put_raw_block(&b, 0, data + 101, 411);
	put_raw_block(&b, 1, data, 0);
	put_le(&b, (uint32_t)0, 4);
	check_input(&b, 512, "frame checksum does not match");
	buf_free(&b);

	set_case("a compressed block of no bytes, content size given");
	put_sized_header(&b, 512);
	put_block(&b, 0, COMPRESSED, 0);
	put_rle_block(&b, 1, 1, 512);
	check_input(&b, 512, "compressed block too short");
	buf_free(&b);

	set_case("the cluster full, then an empty block ends the frame");
	put_header(&b, 0x00, 0, 0, 0);
	put_raw_block(&b, 0, data, 512);
	put_rle_block(&b, 0, 9, 0);
	put_raw_block(&b, 1, data, 0);
	put(&b, "junk", 4);
	check_input_gives(&b, 512, data);
	buf_free(&b);

	set_case("the cluster full, then a byte more");
	put_header(&b, 0x00, 0, 0, 0);
	put_raw_block(&b, 0, data, 512);
	put_rle_block(&b, 1, 9, 1);
	check_input(&b, 512, "frame goes past the cluster");
	buf_free(&b);

	set_case("the cluster full, the frame's end missing");
	put_header(&b, 0x00, 0, 0, 0);
	put_raw_block(&b, 0, data, 512);
	check_input(&b, 512, "input ends inside a block header");
	buf_free(&b);

	set_case("an RLE block of the whole cluster");
	put_sized_header(&b, 600);
	put_rle_block(&b, 1, 0xee, 600);
	memset(data, 0xee, sizeof(data));
	check_input_gives(&b, 600, data);
	buf_free(&b);

	set_case("reserved block type");
	put_sized_header(&b, 600);
	put_block(&b, 1, RESERVED, 600);
	put_zeros(&b, 600);
	check_input(&b, 600, "reserved block type");
	buf_free(&b);

	/* three RLE codes: no literals, a match of 3 at the repeat offsets 4, 1, 4, ... */
	set_case("40000 sequences of RLE codes, no bits in their stream");
	put_sized_header(&b, 8 + 40000 * 3);
	put_raw_block(&b, 0, (const unsigned char *)"abcdefgh", 8);
	put_block(&b, 1, COMPRESSED, 1 + 3 + 1 + 3 + 1);
	put_le(&b, 0x00, 1);			/* no literals */
	put_le(&b, 0xff, 1);
	put_le(&b, 40000 - 0x7f00, 2);
	put_le(&b, 0x54, 1);			/* each code RLE */
	put_le(&b, 0, 3);			/* codes 0, 0, 0 */
	put_le(&b, 0x01, 1);			/* the end mark */
	check_input(&b, 8 + 40000 * 3, ACCEPTED);
	buf_free(&b);

	/* two 1-bit codes (weights 1, given directly), four streams in 9 bytes */
	set_case("four Huffman streams in under 10 bytes");
	put_header(&b, 0x20, 0, 0, 6);
	put_block(&b, 1, COMPRESSED, 3 + 2 + 9 + 1);
	put_le(&b, 2 | 1 << 2 | 6 << 4 | (2 + 9) << 14, 3);
	put_le(&b, 0x80, 1);
	put_le(&b, 0x10, 1);
	put_zeros(&b, 9);
	put_le(&b, 0, 1);			/* no sequences */
	check_input(&b, 6, "Huffman streams too short");
	buf_free(&b);

	set_case("a block over 128 KiB");
	put_header(&b, 0xa0, 0, 0, 200 * KIB);
	put_block(&b, 1, COMPRESSED, 128 * KIB + 1);
	put_zeros(&b, 128 * KIB + 1);
	check_input(&b, 200 * KIB, "block larger than its frame allows");
	buf_free(&b);
}

static void
t_block_maximum(void)
{
	unsigned char *data = make_data(TEXT, 8 * KIB);
	struct buf b = { 0 };

	/* libzstd's streaming decoder holds blocks to the window, its single pass does not */
	set_case("a raw block larger than a 1 KiB window, no content size");
	put_header(&b, 0x00, 0x00, 0, 0);
	put_raw_block(&b, 1, data, 2 * KIB);
	check_input(&b, 2 * KIB, "block larger than its frame allows");
	buf_free(&b);

	set_case("a raw block larger than a 1 KiB window, content size given");
	put_header(&b, 0x40, 0x00, 0, 2 * KIB);
	put_raw_block(&b, 1, data, 2 * KIB);
	check_input_gives(&b, 2 * KIB, data);
	buf_free(&b);

	set_case("an RLE block larger than a 1 KiB window, no content size");
	put_header(&b, 0x00, 0x00, 0, 0);
	put_rle_block(&b, 1, 0, 2 * KIB);
	check_input(&b, 2 * KIB, "block larger than its frame allows");
	buf_free(&b);

	set_case("blocks of 1 KiB in a 1 KiB window");
	put_header(&b, 0x00, 0x00, 0, 0);
	for (int i = 0; i < 8; i++)
		put_raw_block(&b, i == 7, data + i * KIB, KIB);
	check_input_gives(&b, 8 * KIB, data);
	buf_free(&b);
	free(data);
}

static void
t_headers(void)
{
	unsigned char data[512];
	struct buf b = { 0 };

	memset(data, 'z', sizeof(data));
	for (unsigned fhd = 0; fhd < 256; fhd++) {
		int single = fhd >> 5 & 1, sized = single || fhd >> 6;

		/* every descriptor: content size 512, window 1 KiB, no dictionary */
		set_case("frame header descriptor 0x%02x", fhd);
		put_header(&b, fhd & ~3u, 0, 0, sized ? 512 : 0);
		if ((fhd >> 6) == 0 && single) {
			buf_free(&b);
			continue;	/* a 1-byte size cannot say 512 */
		}
		put_rle_block(&b, 1, 'z', 512);
		if (fhd & 4)
			put_le(&b, 0x0d9b5ab0, 4);
		check_input(&b, 512, EITHER);
		buf_free(&b);
	}

	set_case("a dictionary ID of 0 in each width");
	for (unsigned w = 1; w < 4; w++) {
		put_header(&b, w, 0x00, 0, 0);
		put_rle_block(&b, 1, 'z', 512);
		check_input_gives(&b, 512, data);
		buf_free(&b);
	}
	set_case("a dictionary ID");
	for (unsigned w = 1; w < 4; w++) {
		put_header(&b, w, 0x00, 1u << (w * 4), 0);
		put_rle_block(&b, 1, 'z', 512);
		check_input(&b, 512, "frame needs a dictionary");
		buf_free(&b);
	}

	set_case("reserved bit set");
	put_header(&b, 0x28, 0, 0, 512);
	put_rle_block(&b, 1, 'z', 512);
	check_input(&b, 512, "reserved bit of the frame header set");
	buf_free(&b);

	set_case("window log 32");
	put_header(&b, 0x00, 22 << 3, 0, 0);
	put_rle_block(&b, 1, 'z', 512);
	check_input(&b, 512, "window too large");
	buf_free(&b);

	set_case("window 2^27 + 2^24, no content size");
	put_header(&b, 0x00, 17 << 3 | 1, 0, 0);
	put_rle_block(&b, 1, 'z', 512);
	check_input(&b, 512, "window larger than libzstd's default limit");
	buf_free(&b);

	set_case("window 2^31 and a content size");
	put_header(&b, 0x40, 21 << 3, 0, 512);
	put_rle_block(&b, 1, 'z', 512);
	check_input_gives(&b, 512, data);
	buf_free(&b);

	set_case("content size one short, one over, past the cluster");
	for (int d = -1; d <= 1; d += 2) {
		put_sized_header(&b, (uint64_t)(512 + d));
		put_rle_block(&b, 1, 'z', 512);
		check_input(&b, 512, d < 0 ? "frame content size does not match its blocks" :
		    "frame larger than the rest of the cluster");
		buf_free(&b);
	}
	put_sized_header(&b, 256);
	put_rle_block(&b, 1, 'z', 257);
	put_sized_header(&b, 255);
	put_rle_block(&b, 1, 'z', 255);
	check_input(&b, 512, "frame content size does not match its blocks");
	buf_free(&b);

	set_case("checksum wrong, missing");
	put_header(&b, 0xa4, 0, 0, 512);
	put_rle_block(&b, 1, 'z', 512);
	put_le(&b, 0x0d9b5ab1, 4);
	check_input(&b, 512, "frame checksum does not match");
	b.len -= 2;
	check_input(&b, 512, "input ends inside a frame checksum");
	buf_free(&b);

	set_case("not a frame: zeros, a legacy magic, the dictionary magic");
	put_zeros(&b, 600);
	check_input(&b, 512, "not a zstd frame");
	buf_free(&b);
	for (unsigned v = 0; v < 8; v++) {
		put_le(&b, 0xfd2fb520 + v, 4);
		put_zeros(&b, 600);
		check_input(&b, 512, v < 2 ? "not a zstd frame" : ZSTD_LEGACY);
		buf_free(&b);
	}
	put_le(&b, 0xec30a437, 4);
	put_zeros(&b, 600);
	check_input(&b, 512, "not a zstd frame");
	buf_free(&b);
}

static void
t_cluster_fill(void)
{
	unsigned char *data = make_data(TEXT, 4 * KIB);
	struct buf b = { 0 };

	set_case("one frame of half the cluster, then the input ends");
	compress_frame(&b, data, 2 * KIB, &plain);
	check_input(&b, 4 * KIB, "input ends before the cluster is full");

	set_case("then padding");
	put_zeros(&b, 100);
	check_input(&b, 4 * KIB, "not a zstd frame");

	set_case("then a skippable frame past the input's end");
	b.len -= 100;
	put_le(&b, 0x184d2a5f, 4);
	put_le(&b, 1000, 4);
	put_zeros(&b, 999);
	check_input(&b, 4 * KIB, "input ends inside a skippable frame");
	buf_free(&b);

	set_case("a frame of more than the cluster");
	compress_frame(&b, data, 4 * KIB, &plain);
	check_input(&b, 2 * KIB, "frame larger than the rest of the cluster");
	buf_free(&b);
	compress_frame(&b, data, 4 * KIB, &(struct params){ 3, 1, 0, 0, 0, 0, 0 });
	check_input(&b, 2 * KIB, "frame goes past the cluster");
	buf_free(&b);

	set_case("empty frames and skippable ones, then the cluster");
	for (int i = 0; i < 50; i++) {
		compress_frame(&b, data, 0, &plain);
		put_skippable(&b, (unsigned)i & 15, (size_t)i);
	}
	compress_frame(&b, data, 4 * KIB, &plain);
	check_input_gives(&b, 4 * KIB, data);
	buf_free(&b);

	set_case("clusters of 1 to 48 bytes, checksums of them");
	for (size_t n = 1; n <= 48; n++) {
		compress_frame(&b, data, n, &(struct params){ 3, 1, 1, 0, 0, 0, 0 });
		put(&b, data, n);
		check_input_gives(&b, n, data);
		buf_free(&b);
	}

	set_case("no input");
	check_input(&b, 512, "input ends before the cluster is full");
	free(data);
}

/* Every cut of in[0..len) short of end must be refused. */
static void
check_cuts(const unsigned char *in, size_t end, size_t out_len)
{
	struct buf b = { 0 };

	for (size_t cut = 0; cut < end; cut++) {
		b.len = 0;
		put(&b, in, cut);
		note("cut to %zu of %zu bytes", cut, end);
		check_input(&b, out_len, REFUSED);
	}
	buf_free(&b);
}

static void
t_truncations(void)
{
	unsigned char *data = make_data(FILESYSTEM, 64 * KIB);
	struct buf b = { 0 };
	struct params p = plain;

	set_case("a QEMU frame of a 4 KiB cluster");
	compress_frame(&b, data, 4 * KIB, &plain);
	check_cuts(b.p, b.len, 4 * KIB);
	buf_free(&b);

	set_case("a frame of blocks of about 1000 bytes, with a checksum, no size");
	p.content_size = 0;
	p.checksum = 1;
	p.block_size = 1000;
	compress_frame(&b, data, 16 * KIB, &p);
	check_cuts(b.p, b.len, 16 * KIB);
	buf_free(&b);

	set_case("skippable, frame, skippable, frame");
	put_skippable(&b, 3, 20);
	compress_frame(&b, data, 1000, &plain);
	put_skippable(&b, 4, 0);
	compress_frame(&b, data + 1000, 3000, &p);
	check_cuts(b.p, b.len, 4000);
	buf_free(&b);
	free(data);
}

/* Each byte of in[0..len), or count of them at random, changed by each of masks. */
static void
check_flips(const unsigned char *in, size_t len, size_t out_len, size_t count)
{
	static const unsigned char masks[] = { 0x01, 0x10, 0x80, 0xff };
	struct buf b = { 0 };

	put(&b, in, len);
	for (size_t k = 0; k < (count ? count : len); k++) {
		size_t i = count ? rng_below(len) : k;

		for (size_t m = 0; m < sizeof(masks); m++) {
			b.p[i] ^= masks[m];
			note("byte %zu of %zu xor 0x%02x", i, len, masks[m]);
			check_input(&b, out_len, EITHER);
			b.p[i] ^= masks[m];
		}
	}
	buf_free(&b);
}

static void
t_flipped_bytes(void)
{
	static const int levels[] = { -1, 1, 3, 9, 19 };

	for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
		for (int c = 0; c < 3; c++) {
			size_t n = cluster_sizes[c];
			unsigned char *data = make_data(c == 1 ? TEXT : FILESYSTEM, n);
			struct params p = plain;
			struct buf b = { 0 };

			p.level = levels[l];
			p.checksum = c == 2;
			p.content_size = l % 2;
			set_case("%zu bytes at level %d, checksum %d, content size %d", n,
			    p.level, p.checksum, p.content_size);
			compress_frame(&b, data, n, &p);
			check_flips(b.p, b.len, n, n < 60 * KIB ? 0 : 400);
			buf_free(&b);
			free(data);
		}
	}
}

static void
t_garbage_tables(void)
{
	unsigned char *data = make_data(FILESYSTEM, 64 * KIB), *out = xmalloc(64 * KIB);
	struct zstd_decoder *z = xmalloc(sizeof(*z));
	struct zstd_error err = { NULL, 0 };
	struct buf b = { 0 };

	memset(z, 0xa5, sizeof(*z));
	compress_frame(&b, data, 64 * KIB, &plain);
	check(zstd_decode_cluster(z, out, 64 * KIB, b.p, b.len, &err) == 0);
	check(memcmp(out, data, 64 * KIB) == 0);
	buf_free(&b);
	free(z);
	free(out);
	free(data);
}

static void
t_memory(void)
{
	/* what zstd_decode.h promises */
	check_u64(sizeof(struct zstd_decoder), 149536);
}

int
main(void)
{
	TEST(t_levels(), "clusters of 512 B to 2 MiB of four kinds at every level");
	TEST(t_frame_options(), "checksums, content sizes, long matches, padding after");
	TEST(t_windows_and_blocks(), "windows of 1 KiB to 1 MiB, blocks of 100 B to 128 KiB");
	TEST(t_literals(), "raw and Huffman-coded literals, fresh and repeated tables");
	TEST(t_many_literals(), "literals sections of 128 KiB, blocks of literals alone");
	TEST(t_many_sequences(), "blocks of more than 32512 sequences");
	TEST(t_qemu_frames(), "clusters as QEMU writes them, read to the sector's end");
	TEST(t_several_frames(), "several frames to a cluster, skippable ones between");
	TEST(t_hand_blocks(), "raw, RLE, empty and reserved blocks laid out by hand");
	TEST(t_block_maximum(), "blocks over the window: refused only without a content size");
	TEST(t_headers(), "every frame header descriptor; faults of the header");
	TEST(t_cluster_fill(), "the cluster filled exactly by the frame that ends there");
	TEST(t_truncations(), "every truncation of valid input refused");
	TEST(t_flipped_bytes(), "flipped bytes: the same verdict as libzstd");
	TEST(t_garbage_tables(), "a decoder struct of garbage needs no set-up");
	TEST(t_memory(), "the decoder struct is the size zstd_decode.h says");
	return tap_done();
}

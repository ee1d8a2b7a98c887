/*
 * zstd_decode.c: the zstd frames of a cluster decoded as QEMU's libzstd
 * decodes them (see zstd_decode.h).
 *
 * Where libzstd (1.5) takes more or less than RFC 8878 allows, this
 * follows libzstd, since its verdict on a cluster is QEMU's:
 *  - A frame that gives its content size is decoded as libzstd's
 *    single-pass shortcut decodes it (the size must fit the cluster, or
 *    the cluster is refused anyway): its blocks are not held to the
 *    frame's block maximum, nor its window to a limit.  A frame without
 *    one goes through libzstd's streaming decoder, which refuses a
 *    window over 2^27 bytes and blocks over min(window, 128 KiB); there
 *    a compressed block of no bytes is an empty block.
 *  - Huffman codes may be 12 bits long.
 *  - The sequences' bitstream is read as libzstd reads it: a state
 *    update after the last sequence, whose bits may lie before the
 *    stream's first bit, and bits past the stream read from the register
 *    again, not as zeros.
 *  - Repeat offset "Repeat_Offset1 - 1" of 0 is taken as 1.
 *  - The reserved bits of the sequences' compression modes are not read.
 * A match may reach anywhere back in its frame's output, as in
 * libzstd's single pass.
 *
 * Where libzstd's verdict hangs on how it is built or on the machine,
 * or on inputs no encoder writes, this keeps to the RFC and may differ:
 *  - libzstd's fast path for four Huffman streams (x86-64 with BMI2)
 *    checks no stream's end; this does (ZSTD_HUFFMAN_END).
 *  - Legacy frames (zstd 0.5 to 0.7 in Debian's build) are refused
 *    (ZSTD_LEGACY).
 *  - Its streaming decoder refuses a match that reaches past what its
 *    ring buffer holds (the window and more); this takes it.
 *  - It reads a distribution that runs past its section from the
 *    section's last bytes again; this refuses it.
 *
 * The backward bitstreams are read through a 64-bit register whose top
 * bits are the next ones; used counts the bits taken from its top.
 */
#include <string.h>

#include "zstd_decode.h"

#define FRAME_MAGIC	0xfd2fb528u
#define SKIPPABLE_MAGIC	0x184d2a50u	/* the low 4 bits are free */
#define LEGACY_MAGIC	0xfd2fb522u	/* zstd 0.2; 0.3 to 0.7 count up from it */
#define WINDOW_LOG_MAX	31	/* libzstd refuses larger windows outright */
#define WINDOW_LIMIT	((uint64_t)1 << 27)	/* its streaming decoder's default */
#define LITLEN_MAX	35	/* the largest code of each kind */
#define MATCHLEN_MAX	52
#define OFFSET_MAX	31
#define LITLEN_LOG	9	/* the largest accuracy log of each */
#define MATCHLEN_LOG	9
#define OFFSET_LOG	8
#define WEIGHT_LOG	6
#define WEIGHTS_MAX	255	/* decoded; one more is implied */
#define LONG_SEQUENCE_BITS 31	/* extra bits from which libzstd reloads mid-sequence */
#define COPY_SLACK	32	/* the fast copies write up to 15 bytes past */

enum code { CODE_LITLEN, CODE_MATCHLEN, CODE_OFFSET, CODE_WEIGHT };

/* The states of a backward bitstream after a reload, as libzstd names them. */
enum reload { RELOAD_MORE, RELOAD_SHORT, RELOAD_DONE, RELOAD_OVER };

/* RFC 8878 3.1.1.3.2.1.1: literal and match length codes. */
static const uint32_t litlen_base[LITLEN_MAX + 1] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096,
	8192, 16384, 32768, 65536,
};
static const uint8_t litlen_extra[LITLEN_MAX + 1] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12,
	13, 14, 15, 16,
};
static const uint32_t matchlen_base[MATCHLEN_MAX + 1] = {
	3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
	19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
	35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051,
	4099, 8195, 16387, 32771, 65539,
};
static const uint8_t matchlen_extra[MATCHLEN_MAX + 1] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11,
	12, 13, 14, 15, 16,
};

/*
 * The decoding tables of the predefined distributions (RFC 8878
 * 3.1.1.3.2.2), as its appendix A lists them: each state's code's value
 * and extra bits, its next state less the bits to add, and their count.
 */
static const struct zstd_state litlen_predefined[64] = {
	{ 0, 0, 4, 0 }, { 0, 16, 4, 0 }, { 1, 32, 5, 0 }, { 3, 0, 5, 0 },
	{ 4, 0, 5, 0 }, { 6, 0, 5, 0 }, { 7, 0, 5, 0 }, { 9, 0, 5, 0 },
	{ 10, 0, 5, 0 }, { 12, 0, 5, 0 }, { 14, 0, 6, 0 }, { 16, 0, 5, 1 },
	{ 20, 0, 5, 1 }, { 22, 0, 5, 1 }, { 28, 0, 5, 2 }, { 32, 0, 5, 3 },
	{ 48, 0, 5, 4 }, { 64, 32, 5, 6 }, { 128, 0, 5, 7 }, { 256, 0, 6, 8 },
	{ 1024, 0, 6, 10 }, { 4096, 0, 6, 12 }, { 0, 32, 4, 0 }, { 1, 0, 4, 0 },
	{ 2, 0, 5, 0 }, { 4, 32, 5, 0 }, { 5, 0, 5, 0 }, { 7, 32, 5, 0 },
	{ 8, 0, 5, 0 }, { 10, 32, 5, 0 }, { 11, 0, 5, 0 }, { 13, 0, 6, 0 },
	{ 16, 32, 5, 1 }, { 18, 0, 5, 1 }, { 22, 32, 5, 1 }, { 24, 0, 5, 2 },
	{ 32, 32, 5, 3 }, { 40, 0, 5, 3 }, { 64, 0, 4, 6 }, { 64, 16, 4, 6 },
	{ 128, 32, 5, 7 }, { 512, 0, 6, 9 }, { 2048, 0, 6, 11 }, { 0, 48, 4, 0 },
	{ 1, 16, 4, 0 }, { 2, 32, 5, 0 }, { 3, 32, 5, 0 }, { 5, 32, 5, 0 },
	{ 6, 32, 5, 0 }, { 8, 32, 5, 0 }, { 9, 32, 5, 0 }, { 11, 32, 5, 0 },
	{ 12, 32, 5, 0 }, { 15, 0, 6, 0 }, { 18, 32, 5, 1 }, { 20, 32, 5, 1 },
	{ 24, 32, 5, 2 }, { 28, 32, 5, 2 }, { 40, 32, 5, 3 }, { 48, 32, 5, 4 },
	{ 65536, 0, 6, 16 }, { 32768, 0, 6, 15 }, { 16384, 0, 6, 14 }, { 8192, 0, 6, 13 },
};
static const struct zstd_state matchlen_predefined[64] = {
	{ 3, 0, 6, 0 }, { 4, 0, 4, 0 }, { 5, 32, 5, 0 }, { 6, 0, 5, 0 },
	{ 8, 0, 5, 0 }, { 9, 0, 5, 0 }, { 11, 0, 5, 0 }, { 13, 0, 6, 0 },
	{ 16, 0, 6, 0 }, { 19, 0, 6, 0 }, { 22, 0, 6, 0 }, { 25, 0, 6, 0 },
	{ 28, 0, 6, 0 }, { 31, 0, 6, 0 }, { 34, 0, 6, 0 }, { 37, 0, 6, 1 },
	{ 41, 0, 6, 1 }, { 47, 0, 6, 2 }, { 59, 0, 6, 3 }, { 83, 0, 6, 4 },
	{ 131, 0, 6, 7 }, { 515, 0, 6, 9 }, { 4, 16, 4, 0 }, { 5, 0, 4, 0 },
	{ 6, 32, 5, 0 }, { 7, 0, 5, 0 }, { 9, 32, 5, 0 }, { 10, 0, 5, 0 },
	{ 12, 0, 6, 0 }, { 15, 0, 6, 0 }, { 18, 0, 6, 0 }, { 21, 0, 6, 0 },
	{ 24, 0, 6, 0 }, { 27, 0, 6, 0 }, { 30, 0, 6, 0 }, { 33, 0, 6, 0 },
	{ 35, 0, 6, 1 }, { 39, 0, 6, 1 }, { 43, 0, 6, 2 }, { 51, 0, 6, 3 },
	{ 67, 0, 6, 4 }, { 99, 0, 6, 5 }, { 259, 0, 6, 8 }, { 4, 32, 4, 0 },
	{ 4, 48, 4, 0 }, { 5, 16, 4, 0 }, { 7, 32, 5, 0 }, { 8, 32, 5, 0 },
	{ 10, 32, 5, 0 }, { 11, 32, 5, 0 }, { 14, 0, 6, 0 }, { 17, 0, 6, 0 },
	{ 20, 0, 6, 0 }, { 23, 0, 6, 0 }, { 26, 0, 6, 0 }, { 29, 0, 6, 0 },
	{ 32, 0, 6, 0 }, { 65539, 0, 6, 16 }, { 32771, 0, 6, 15 }, { 16387, 0, 6, 14 },
	{ 8195, 0, 6, 13 }, { 4099, 0, 6, 12 }, { 2051, 0, 6, 11 }, { 1027, 0, 6, 10 },
};
static const struct zstd_state offset_predefined[32] = {
	{ 0, 0, 5, 0 }, { 61, 0, 4, 6 }, { 509, 0, 5, 9 }, { 32765, 0, 5, 15 },
	{ 2097149, 0, 5, 21 }, { 5, 0, 5, 3 }, { 125, 0, 4, 7 }, { 4093, 0, 5, 12 },
	{ 262141, 0, 5, 18 }, { 8388605, 0, 5, 23 }, { 29, 0, 5, 5 }, { 253, 0, 4, 8 },
	{ 16381, 0, 5, 14 }, { 1048573, 0, 5, 20 }, { 1, 0, 5, 2 }, { 125, 16, 4, 7 },
	{ 2045, 0, 5, 11 }, { 131069, 0, 5, 17 }, { 4194301, 0, 5, 22 }, { 13, 0, 5, 4 },
	{ 253, 16, 4, 8 }, { 8189, 0, 5, 13 }, { 524285, 0, 5, 19 }, { 1, 0, 5, 1 },
	{ 61, 16, 4, 6 }, { 1021, 0, 5, 10 }, { 65533, 0, 5, 16 }, { 268435453, 0, 5, 28 },
	{ 134217725, 0, 5, 27 }, { 67108861, 0, 5, 26 }, { 33554429, 0, 5, 25 }, { 16777213, 0, 5, 24 },
};

/* A backward bitstream (RFC 8878 4.1). */
struct rbits {
	const unsigned char *start, *ptr;	/* the register holds ptr[0..8) */
	uint64_t bits;
	unsigned used;		/* bits taken from the top of bits */
};

struct dec {
	struct zstd_decoder *z;
	const unsigned char *in;
	size_t in_len, pos;	/* the next byte of in */
	unsigned char *out;
	size_t out_len, done;	/* bytes of out written */
	struct zstd_error *err;

	/* the frame being decoded */
	size_t frame_start;	/* in out */
	size_t block_max;	/* the most a block may hold */
	int strict;		/* read as libzstd's streaming decoder does */
	int huffman_ok;		/* a Huffman table was read in this frame */
	unsigned huffman_log;
	int sequences_seen;	/* tables to repeat */
	const struct zstd_state *litlen, *matchlen, *offset;	/* the last ones used */
	unsigned litlen_log, matchlen_log, offset_log;
	uint32_t rep[3];
	size_t lit_len;		/* the block's literals, in z->literals */
	const char *why;	/* what is wrong with the literals, once found */
};

static int
fail(struct dec *d, const char *why, size_t at)
{
	d->err->why = why;
	d->err->at = at;
	return -1;
}

static inline uint32_t
load_le16(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static inline uint32_t
load_le24(const unsigned char *p)
{
	return load_le16(p) | (uint32_t)p[2] << 16;
}

static inline uint32_t
load_le32(const unsigned char *p)
{
	return load_le24(p) | (uint32_t)p[3] << 24;
}

static inline uint64_t
load_le64(const unsigned char *p)
{
	return (uint64_t)load_le32(p) | (uint64_t)load_le32(p + 4) << 32;
}

/* The index of the highest bit set in x, x > 0. */
static inline unsigned
high_bit(uint32_t x)
{
	return 31 - (unsigned)__builtin_clz(x);
}

/* --- XXH64, the frame checksum (RFC 8878 3.1.1, seed 0) ----------------- */

#define XXH_P1	UINT64_C(0x9e3779b185ebca87)
#define XXH_P2	UINT64_C(0xc2b2ae3d27d4eb4f)
#define XXH_P3	UINT64_C(0x165667b19e3779f9)
#define XXH_P4	UINT64_C(0x85ebca77c2b2ae63)
#define XXH_P5	UINT64_C(0x27d4eb2f165667c5)

static inline uint64_t
rotl64(uint64_t x, unsigned r)
{
	return x << r | x >> (64 - r);
}

static inline uint64_t
xxh_round(uint64_t acc, uint64_t lane)
{
	return rotl64(acc + lane * XXH_P2, 31) * XXH_P1;
}

static inline uint64_t
xxh_merge(uint64_t h, uint64_t acc)
{
	return (h ^ xxh_round(0, acc)) * XXH_P1 + XXH_P4;
}

static uint64_t
xxh64(const unsigned char *p, size_t len)
{
	const unsigned char *end = p + len;
	uint64_t h;

	if (len >= 32) {
		uint64_t v1 = XXH_P1 + XXH_P2, v2 = XXH_P2, v3 = 0, v4 = 0 - XXH_P1;

		do {
			v1 = xxh_round(v1, load_le64(p));
			v2 = xxh_round(v2, load_le64(p + 8));
			v3 = xxh_round(v3, load_le64(p + 16));
			v4 = xxh_round(v4, load_le64(p + 24));
			p += 32;
		} while (end - p >= 32);
		h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
		h = xxh_merge(xxh_merge(xxh_merge(xxh_merge(h, v1), v2), v3), v4);
	} else {
		h = XXH_P5;
	}
	h += len;
	for (; end - p >= 8; p += 8)
		h = rotl64(h ^ xxh_round(0, load_le64(p)), 27) * XXH_P1 + XXH_P4;
	if (end - p >= 4) {
		h = rotl64(h ^ load_le32(p) * XXH_P1, 23) * XXH_P2 + XXH_P3;
		p += 4;
	}
	for (; p < end; p++)
		h = rotl64(h ^ *p * XXH_P5, 11) * XXH_P1;
	h = (h ^ h >> 33) * XXH_P2;
	h = (h ^ h >> 29) * XXH_P3;
	return h ^ h >> 32;
}

/* --- backward bitstreams ------------------------------------------------ */

/* Start at the end mark, the highest bit set of the last byte; -1 if there is none. */
static int
rbits_init(struct rbits *b, const unsigned char *in, size_t len)
{
	if (len == 0 || in[len - 1] == 0)
		return -1;
	b->start = in;
	b->used = 8 - high_bit(in[len - 1]);
	if (len >= 8) {
		b->ptr = in + len - 8;
		b->bits = load_le64(b->ptr);
		return 0;
	}
	/* a short stream sits at the bottom of the register, as if read there */
	b->ptr = in;
	b->bits = 0;
	for (size_t i = 0; i < len; i++)
		b->bits |= (uint64_t)in[i] << (8 * i);
	b->used += (unsigned)(8 - len) * 8;
	return 0;
}

/*
 * Move the register back over the bits used.  RELOAD_MORE: 57 bits or
 * more are there; RELOAD_SHORT: the stream's first byte is in, fewer
 * are; RELOAD_DONE: all used; RELOAD_OVER: more than all were taken.
 */
static inline enum reload
rbits_reload(struct rbits *b)
{
	size_t back;
	enum reload state = RELOAD_MORE;

	if (b->used > 64)
		return RELOAD_OVER;
	if (b->ptr - b->start >= 8) {
		b->ptr -= b->used >> 3;
		b->used &= 7;
		b->bits = load_le64(b->ptr);
		return RELOAD_MORE;
	}
	if (b->ptr == b->start)
		return b->used < 64 ? RELOAD_SHORT : RELOAD_DONE;
	back = b->used >> 3;
	if (back > (size_t)(b->ptr - b->start)) {
		back = (size_t)(b->ptr - b->start);
		state = RELOAD_SHORT;
	}
	b->ptr -= back;
	b->used -= (unsigned)back * 8;
	b->bits = load_le64(b->ptr);
	return state;
}

/* Take n bits, 0 <= n <= 31; past 64 used, from where libzstd's register gives them. */
static inline uint32_t
rbits_read(struct rbits *b, unsigned n)
{
	uint64_t v = b->bits >> ((64 - b->used - n) & 63) & (((uint64_t)1 << n) - 1);

	b->used += n;
	return (uint32_t)v;
}

/* The same for 1 <= n <= 31, as libzstd's other reader gives them past 64. */
static inline uint32_t
rbits_read_fast(struct rbits *b, unsigned n)
{
	uint64_t v = b->bits << (b->used & 63) >> (64 - n);

	b->used += n;
	return (uint32_t)v;
}

/* --- FSE tables (RFC 8878 4.1) ------------------------------------------- */

static void
set_value(struct zstd_state *e, enum code kind, unsigned sym)
{
	switch (kind) {
	case CODE_LITLEN:
		e->base = litlen_base[sym];
		e->extra = litlen_extra[sym];
		break;
	case CODE_MATCHLEN:
		e->base = matchlen_base[sym];
		e->extra = matchlen_extra[sym];
		break;
	case CODE_OFFSET:
		/* libzstd's bases: offset values less 3, codes 0 and 1 the repeats */
		e->base = sym < 2 ? sym : (UINT32_C(1) << sym) - 3;
		e->extra = (uint8_t)sym;
		break;
	case CODE_WEIGHT:
		e->base = sym;
		e->extra = 0;
		break;
	}
}

/* The decoding table of the distribution norm[0..n), which sums to 1 << log. */
static void
build_table(struct zstd_state *table, const int16_t *norm, unsigned n, unsigned log,
    enum code kind)
{
	unsigned size = 1u << log, high = size - 1, pos = 0;
	unsigned step = (size >> 1) + (size >> 3) + 3;
	uint16_t next[256];
	uint8_t symbol[1 << LITLEN_LOG];

	for (unsigned s = 0; s < n; s++) {
		next[s] = norm[s] == -1 ? 1 : (uint16_t)norm[s];
		if (norm[s] == -1)
			symbol[high--] = (uint8_t)s;
	}
	for (unsigned s = 0; s < n; s++) {
		for (int i = 0; i < norm[s]; i++) {
			symbol[pos] = (uint8_t)s;
			do
				pos = (pos + step) & (size - 1);
			while (pos > high);
		}
	}
	for (unsigned u = 0; u < size; u++) {
		unsigned x = next[symbol[u]]++;
		unsigned bits = log - high_bit(x);

		table[u].bits = (uint8_t)bits;
		table[u].next = (uint16_t)((x << bits) - size);
		set_value(&table[u], kind, symbol[u]);
	}
}

/* n bits at bit pos of in[0..len), little-endian, zeros past the end; n <= 24. */
static uint32_t
peek_forward(const unsigned char *in, size_t len, size_t pos, unsigned n)
{
	size_t byte = pos >> 3;
	uint32_t v = 0;

	for (unsigned i = 0; i < 4 && byte + i < len; i++)
		v |= (uint32_t)in[byte + i] << (8 * i);
	return v >> (pos & 7) & ((UINT32_C(1) << n) - 1);
}

/*
 * Read the distribution at in[0..len) (RFC 8878 4.1.1) of symbols up to
 * max_sym, at an accuracy log up to max_log, into norm[0..*n) and *log.
 * Returns the bytes it takes, or 0 for a fault.
 */
static size_t
read_distribution(const unsigned char *in, size_t len, unsigned max_sym,
    unsigned max_log, int16_t *norm, unsigned *n, unsigned *log)
{
	size_t pos = 4;
	unsigned sym = 0, bits;
	int remaining, threshold, after_zero = 0;

	*log = peek_forward(in, len, 0, 4) + 5;
	if (*log > max_log)
		return 0;
	memset(norm, 0, (max_sym + 1) * sizeof(*norm));
	remaining = (1 << *log) + 1;
	threshold = 1 << *log;
	bits = *log + 1;
	for (;;) {
		int max, count;
		uint32_t v;

		if (after_zero) {
			unsigned repeat;

			do {
				repeat = peek_forward(in, len, pos, 2);
				pos += 2;
				sym += repeat;
			} while (repeat == 3 && pos <= 8 * len);
			if (sym > max_sym)
				return 0;
		}
		max = 2 * threshold - 1 - remaining;
		v = peek_forward(in, len, pos, bits);
		if ((int)(v & (uint32_t)(threshold - 1)) < max) {
			count = (int)(v & (uint32_t)(threshold - 1));
			pos += bits - 1;
		} else {
			count = (int)v;
			if (count >= threshold)
				count -= max;
			pos += bits;
		}
		count--;
		remaining -= count < 0 ? -count : count;
		norm[sym++] = (int16_t)count;
		after_zero = count == 0;
		if (remaining < threshold) {
			if (remaining <= 1)
				break;
			bits = high_bit((uint32_t)remaining) + 1;
			threshold = 1 << (bits - 1);
		}
		if (sym > max_sym)
			break;
	}
	if (remaining != 1 || pos > 8 * len)
		return 0;
	*n = sym;
	return (pos + 7) / 8;
}

/* --- Huffman-coded literals (RFC 8878 4.2) ------------------------------ */

/*
 * The Huffman weights compressed with FSE at in[0..len), two states
 * taking turns until the stream is overrun, into w.  Returns how many,
 * or 0 for a fault.
 */
static unsigned
fse_weights(const unsigned char *in, size_t len, uint8_t *w)
{
	struct zstd_state table[1 << WEIGHT_LOG];
	int16_t norm[256];
	unsigned n, log, count = 0, state[2];
	struct rbits b;
	size_t head;

	if ((head = read_distribution(in, len, 255, WEIGHT_LOG, norm, &n, &log)) == 0)
		return 0;
	build_table(table, norm, n, log, CODE_WEIGHT);
	if (rbits_init(&b, in + head, len - head) != 0)
		return 0;
	state[0] = rbits_read(&b, log);
	rbits_reload(&b);
	state[1] = rbits_read(&b, log);
	rbits_reload(&b);
	for (unsigned turn = 0; ; turn ^= 1) {
		const struct zstd_state *e = &table[state[turn]];

		if (count > WEIGHTS_MAX - 2)
			return 0;
		w[count++] = (uint8_t)e->base;
		state[turn] = e->next + rbits_read(&b, e->bits);
		if (rbits_reload(&b) == RELOAD_OVER) {
			w[count++] = (uint8_t)table[state[turn ^ 1]].base;
			return count;
		}
	}
}

/*
 * Read the Huffman tree description at in[0..len) and build its table in
 * z->huffman.  Returns its bytes, or 0 for a fault.
 */
static size_t
read_huffman(struct dec *d, const unsigned char *in, size_t len)
{
	uint8_t w[WEIGHTS_MAX + 1];
	unsigned ranks[ZSTD_HUFFMAN_LOG_MAX + 1] = { 0 }, starts[ZSTD_HUFFMAN_LOG_MAX + 2];
	unsigned n, log;
	uint32_t total = 0, rest;
	size_t used;

	if (len == 0)
		return 0;
	if (in[0] >= 128) {
		n = in[0] - 127u;
		if ((used = 1 + (n + 1) / 2) > len)
			return 0;
		for (unsigned i = 0; i < n; i++)
			w[i] = i & 1 ? in[1 + i / 2] & 15 : in[1 + i / 2] >> 4;
	} else {
		if ((used = 1 + (size_t)in[0]) > len || (n = fse_weights(in + 1, in[0], w)) == 0)
			return 0;
	}
	for (unsigned i = 0; i < n; i++) {
		if (w[i] > ZSTD_HUFFMAN_LOG_MAX)
			return 0;
		ranks[w[i]]++;
		total += (UINT32_C(1) << w[i]) >> 1;
	}
	if (total == 0 || (log = high_bit(total) + 1) > ZSTD_HUFFMAN_LOG_MAX)
		return 0;
	/* the last weight is the one that makes the sum a power of two */
	rest = (UINT32_C(1) << log) - total;
	if ((rest & (rest - 1)) != 0)
		return 0;
	w[n] = (uint8_t)(high_bit(rest) + 1);
	ranks[w[n]]++;
	if (ranks[1] < 2 || ranks[1] & 1)
		return 0;
	/* codes by weight, lightest (longest) first, then by symbol */
	starts[1] = 0;
	for (unsigned k = 1; k <= ZSTD_HUFFMAN_LOG_MAX; k++)
		starts[k + 1] = starts[k] + (ranks[k] << (k - 1));
	for (unsigned s = 0; s <= n; s++) {
		unsigned k = w[s], span;
		uint16_t entry, *to;

		if (k == 0)
			continue;	/* no code */
		span = 1u << (k - 1);
		entry = (uint16_t)((log + 1 - k) << 8 | s);
		to = d->z->huffman + starts[k];
		if (span >= 4) {
			uint64_t four = entry * UINT64_C(0x0001000100010001);

			for (unsigned i = 0; i < span; i += 4)
				memcpy(to + i, &four, 8);
		} else {
			for (unsigned i = 0; i < span; i++)
				to[i] = entry;
		}
		starts[k] += span;
	}
	d->huffman_log = log;
	return used;
}

/* One symbol; the register must hold log bits, used < 64. */
#define HUFFMAN_STEP(b, out) do { \
	uint16_t e_ = table[(b).bits << (b).used >> shift]; \
	*(out)++ = (unsigned char)e_; \
	(b).used += e_ >> 8; \
} while (0)

/* The rest of a stream's literals, to out_end; 0, or -1 if the stream does not end with the last. */
static int
huffman_finish(const uint16_t *table, unsigned log, struct rbits *b, unsigned char *out,
    unsigned char *out_end)
{
	unsigned shift = 64 - log;

	while (out < out_end) {
		if (rbits_reload(b) == RELOAD_MORE && out_end - out >= 4) {
			HUFFMAN_STEP(*b, out);
			HUFFMAN_STEP(*b, out);
			HUFFMAN_STEP(*b, out);
			HUFFMAN_STEP(*b, out);
			continue;
		}
		if (b->used >= 64)
			return -1;
		HUFFMAN_STEP(*b, out);
	}
	return rbits_reload(b) == RELOAD_DONE ? 0 : -1;
}

/* Four streams taking turns while each has bits and literals to go. */
static void
huffman_four_fast(const uint16_t *table, unsigned log, struct rbits *b,
    unsigned char **out, unsigned char *const *out_end)
{
	unsigned shift = 64 - log;
	unsigned char *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3];

	while (o3 + 4 <= out_end[3] && o0 + 4 <= out_end[0] &&
	    rbits_reload(&b[0]) == RELOAD_MORE && rbits_reload(&b[1]) == RELOAD_MORE &&
	    rbits_reload(&b[2]) == RELOAD_MORE && rbits_reload(&b[3]) == RELOAD_MORE) {
		for (int i = 0; i < 4; i++) {
			HUFFMAN_STEP(b[0], o0);
			HUFFMAN_STEP(b[1], o1);
			HUFFMAN_STEP(b[2], o2);
			HUFFMAN_STEP(b[3], o3);
		}
	}
	out[0] = o0;
	out[1] = o1;
	out[2] = o2;
	out[3] = o3;
}

static int
huffman_fault(struct dec *d, const char *why)
{
	d->why = why;
	return -1;
}

/*
 * The n literals of Huffman-coded streams at in[0..len) into
 * z->literals, one stream or four after a jump table.  0, or -1 if the
 * streams do not hold them exactly.
 */
static int
huffman_streams(struct dec *d, const unsigned char *in, size_t len, size_t n, int four)
{
	const uint16_t *table = d->z->huffman;
	unsigned char *lit = d->z->literals;
	struct rbits b[4];
	unsigned char *out[4], *out_end[4];
	size_t sizes[4], segment = (n + 3) / 4;

	if (!four) {
		if (rbits_init(&b[0], in, len) != 0)
			return huffman_fault(d, ZSTD_HUFFMAN_END);
		if (huffman_finish(table, d->huffman_log, &b[0], lit, lit + n) != 0)
			return huffman_fault(d, ZSTD_HUFFMAN_END);
		return 0;
	}
	if (len < 10)
		return huffman_fault(d, "Huffman streams too short");
	sizes[0] = load_le16(in);
	sizes[1] = load_le16(in + 2);
	sizes[2] = load_le16(in + 4);
	if (sizes[0] + sizes[1] + sizes[2] > len - 6 || 3 * segment > n)
		return huffman_fault(d, "Huffman jump table past its streams");
	sizes[3] = len - 6 - sizes[0] - sizes[1] - sizes[2];
	in += 6;
	for (int i = 0; i < 4; i++) {
		if (rbits_init(&b[i], in, sizes[i]) != 0)
			return huffman_fault(d, ZSTD_HUFFMAN_END);
		in += sizes[i];
		out[i] = lit + i * segment;
		out_end[i] = i < 3 ? out[i] + segment : lit + n;
	}
	huffman_four_fast(table, d->huffman_log, b, out, out_end);
	for (int i = 0; i < 4; i++)
		if (huffman_finish(table, d->huffman_log, &b[i], out[i], out_end[i]) != 0)
			return huffman_fault(d, ZSTD_HUFFMAN_END);
	return 0;
}

/* --- literals section (RFC 8878 3.1.1.3.1) ------------------------------- */

/* Raw or RLE literals; their section's bytes, or 0 for a fault. */
static size_t
plain_literals(struct dec *d, const unsigned char *in, size_t len, int rle)
{
	size_t head, n;

	switch (in[0] >> 2 & 3) {
	case 1:
		head = 2;
		n = load_le16(in) >> 4;
		break;
	case 3:
		head = 3;
		if (len < 3 + (size_t)rle)
			return 0;
		n = load_le24(in) >> 4;
		break;
	default:
		head = 1;
		n = in[0] >> 3;
		break;
	}
	if (rle && len < head + 1)
		return 0;
	if (n > ZSTD_BLOCK_MAX || n > d->out_len - d->done)
		return 0;
	d->lit_len = n;
	if (rle) {
		memset(d->z->literals, in[head], n);
		return head + 1;
	}
	if (n > len - head)
		return 0;
	memcpy(d->z->literals, in + head, n);
	return head + n;
}

/* Huffman-coded literals, with a tree or the last one; their section's bytes, or 0. */
static size_t
coded_literals(struct dec *d, const unsigned char *in, size_t len, int treeless)
{
	uint32_t head_bits;
	size_t head, n, coded, tree = 0;
	int four = 1;

	if (len < 5)
		return 0;
	head_bits = load_le32(in);
	switch (in[0] >> 2 & 3) {
	case 2:
		head = 4;
		n = head_bits >> 4 & 0x3fff;
		coded = head_bits >> 18;
		break;
	case 3:
		head = 5;
		n = head_bits >> 4 & 0x3ffff;
		coded = (head_bits >> 22) + ((size_t)in[4] << 10);
		break;
	default:
		head = 3;
		four = (in[0] >> 2 & 3) == 1;
		n = head_bits >> 4 & 0x3ff;
		coded = head_bits >> 14 & 0x3ff;
		break;
	}
	if (n > ZSTD_BLOCK_MAX || (four && n < 6) || coded > len - head ||
	    n > d->out_len - d->done)
		return 0;
	if (!treeless && ((tree = read_huffman(d, in + head, coded)) == 0 || tree >= coded)) {
		d->why = "bad Huffman tree description";
		return 0;
	}
	if (huffman_streams(d, in + head + tree, coded - tree, n, four) != 0)
		return 0;
	d->huffman_ok = 1;
	d->lit_len = n;
	return head + coded;
}

/* The literals section at in[0..len), the block's start; its bytes, or -1 with err set. */
static long
read_literals(struct dec *d, const unsigned char *in, size_t len, size_t at)
{
	size_t used = 0;

	d->why = "bad literals section header";
	switch (in[0] & 3) {
	case 0:
		used = plain_literals(d, in, len, 0);
		break;
	case 1:
		used = plain_literals(d, in, len, 1);
		break;
	case 2:
		used = coded_literals(d, in, len, 0);
		break;
	case 3:
		if (!d->huffman_ok)
			return fail(d, "treeless literals with no Huffman table before", at);
		used = coded_literals(d, in, len, 1);
		break;
	}
	if (used == 0)
		return fail(d, d->why, at);
	return (long)used;
}

/* --- sequences section (RFC 8878 3.1.1.3.2) ------------------------------ */

/*
 * Set the table of one kind of code as mode says, its description at
 * in[0..len).  Returns the bytes it takes, or -1 for a fault.
 */
static long
set_table(struct dec *d, enum code kind, unsigned mode, const unsigned char *in, size_t len)
{
	static const unsigned max_sym[] = { LITLEN_MAX, MATCHLEN_MAX, OFFSET_MAX };
	static const unsigned max_log[] = { LITLEN_LOG, MATCHLEN_LOG, OFFSET_LOG };
	struct zstd_decoder *z = d->z;
	struct zstd_state *own[] = { z->litlen, z->matchlen, z->offset };
	static const struct zstd_state *const predefined[] = {
		litlen_predefined, matchlen_predefined, offset_predefined,
	};
	const struct zstd_state **table[] = { &d->litlen, &d->matchlen, &d->offset };
	unsigned *log[] = { &d->litlen_log, &d->matchlen_log, &d->offset_log };
	int16_t norm[MATCHLEN_MAX + 1];
	unsigned n;
	size_t used;

	switch (mode) {
	case 0:
		*table[kind] = predefined[kind];
		*log[kind] = kind == CODE_OFFSET ? 5 : 6;
		return 0;
	case 1:
		if (len < 1 || in[0] > max_sym[kind])
			return -1;
		own[kind][0].next = 0;
		own[kind][0].bits = 0;
		set_value(&own[kind][0], kind, in[0]);
		*table[kind] = own[kind];
		*log[kind] = 0;
		return 1;
	case 2:
		used = read_distribution(in, len, max_sym[kind], max_log[kind], norm, &n,
		    log[kind]);
		if (used == 0)
			return -1;
		build_table(own[kind], norm, n, *log[kind], kind);
		*table[kind] = own[kind];
		return (long)used;
	default:
		return d->sequences_seen ? 0 : -1;
	}
}

/*
 * Copy length bytes from distance back to out, where 1 <= distance and
 * distance bytes are before out; may write 15 bytes past the copy.
 */
static inline void
copy_match(unsigned char *out, size_t distance, size_t length)
{
	/* the least multiple of a distance under 8 that is 8 or more */
	static const uint8_t stride[8] = { 0, 8, 8, 9, 8, 10, 12, 14 };
	unsigned char *end = out + length;
	const unsigned char *from = out - distance;

	if (distance >= 16) {
		do {
			memcpy(out, from, 16);
			out += 16;
			from += 16;
		} while (out < end);
		return;
	}
	if (distance < 8) {
		for (unsigned i = 0; i < 8; i++)
			out[i] = from[i];
		out += 8;
		from = out - stride[distance];
	}
	while (out < end) {
		memcpy(out, from, 8);
		out += 8;
		from += 8;
	}
}

/* Copy n bytes in 16-byte steps; may read and write 15 bytes past. */
static inline void
copy_wild(unsigned char *out, const unsigned char *from, size_t n)
{
	unsigned char *end = out + n;

	do {
		memcpy(out, from, 16);
		out += 16;
		from += 16;
	} while (out < end);
}

/* The sequence decoder's state, kept in registers by the loop. */
struct seqs {
	struct rbits b;
	unsigned ll, ml, of;	/* the three FSE states */
	uint32_t rep[3];
};

/* The offset of a sequence whose offset code has the entry of; updates the repeats. */
static inline size_t
next_offset(struct seqs *s, const struct zstd_state *of, int no_literals)
{
	uint32_t offset, repeat;

	if (of->extra > 1) {
		offset = of->base + rbits_read_fast(&s->b, of->extra);
		s->rep[2] = s->rep[1];
		s->rep[1] = s->rep[0];
		s->rep[0] = offset;
		return offset;
	}
	if (of->extra == 0) {
		offset = s->rep[no_literals];
		s->rep[1] = s->rep[!no_literals];
		s->rep[0] = offset;
		return offset;
	}
	/* code 1: the second or third repeat, or the first less one */
	repeat = of->base + (uint32_t)no_literals + rbits_read_fast(&s->b, 1);
	offset = repeat == 3 ? s->rep[0] - 1 : s->rep[repeat];
	offset += offset == 0;
	if (repeat != 1)
		s->rep[2] = s->rep[1];
	s->rep[1] = s->rep[0];
	s->rep[0] = offset;
	return offset;
}

/*
 * Decode count sequences from the bitstream at in[0..len), which is at
 * at in d->in, and execute them with the block's literals, then copy the
 * literals left.  Returns 0, or -1 with err set.
 */
static int
run_sequences(struct dec *d, const unsigned char *in, size_t len, size_t at, unsigned count)
{
	const struct zstd_state *ll_table = d->litlen, *ml_table = d->matchlen;
	const struct zstd_state *of_table = d->offset;
	const unsigned char *lit = d->z->literals, *const lit_end = lit + d->lit_len;
	unsigned char *op = d->out + d->done, *const out_end = d->out + d->out_len;
	unsigned char *const frame = d->out + d->frame_start;
	struct seqs s;

	if (rbits_init(&s.b, in, len) != 0)
		return fail(d, "sequences bitstream with no end mark", at + len);
	s.ll = rbits_read(&s.b, d->litlen_log);
	rbits_reload(&s.b);
	s.of = rbits_read(&s.b, d->offset_log);
	rbits_reload(&s.b);
	s.ml = rbits_read(&s.b, d->matchlen_log);
	rbits_reload(&s.b);
	memcpy(s.rep, d->rep, sizeof(s.rep));
	for (;;) {
		const struct zstd_state *ll = &ll_table[s.ll], *ml = &ml_table[s.ml];
		const struct zstd_state *of = &of_table[s.of];
		size_t offset = next_offset(&s, of, ll->base == 0);
		size_t match_len = ml->base, lit_len = ll->base;

		if (ml->extra)
			match_len += rbits_read_fast(&s.b, ml->extra);
		if (ll->extra + ml->extra + of->extra >= LONG_SEQUENCE_BITS)
			rbits_reload(&s.b);
		if (ll->extra)
			lit_len += rbits_read_fast(&s.b, ll->extra);
		s.ll = ll->next + rbits_read(&s.b, ll->bits);
		s.ml = ml->next + rbits_read(&s.b, ml->bits);
		s.of = of->next + rbits_read(&s.b, of->bits);

		if (lit_len > (size_t)(lit_end - lit))
			return fail(d, "sequence takes more literals than the block has", at);
		if (lit_len + match_len > (size_t)(out_end - op))
			return fail(d, "frame goes past the cluster", at);
		if (offset > (size_t)(op - frame) + lit_len)
			return fail(d, "match reaches back before its frame", at);
		if (lit_len + match_len + COPY_SLACK <= (size_t)(out_end - op)) {
			copy_wild(op, lit, lit_len);
			op += lit_len;
			lit += lit_len;
			copy_match(op, offset, match_len);
			op += match_len;
		} else {
			const unsigned char *from;

			memcpy(op, lit, lit_len);
			op += lit_len;
			lit += lit_len;
			from = op - offset;
			for (size_t i = 0; i < match_len; i++)
				op[i] = from[i];
			op += match_len;
		}
		if (--count == 0)
			break;
		rbits_reload(&s.b);
	}
	if (rbits_reload(&s.b) < RELOAD_DONE)
		return fail(d, "sequences bitstream not used up", at);
	memcpy(d->rep, s.rep, sizeof(s.rep));
	if ((size_t)(lit_end - lit) > (size_t)(out_end - op))
		return fail(d, "frame goes past the cluster", at);
	memcpy(op, lit, (size_t)(lit_end - lit));
	d->done = (size_t)(op - d->out) + (size_t)(lit_end - lit);
	return 0;
}

/* The literals alone, a block with no sequences. */
static int
literals_only(struct dec *d, size_t at)
{
	if (d->lit_len > d->out_len - d->done)
		return fail(d, "frame goes past the cluster", at);
	memcpy(d->out + d->done, d->z->literals, d->lit_len);
	d->done += d->lit_len;
	return 0;
}

/* A compressed block (RFC 8878 3.1.1.3) at in[0..len), which is at d->pos. */
static int
compressed_block(struct dec *d, const unsigned char *in, size_t len)
{
	static const enum code kinds[3] = { CODE_LITLEN, CODE_OFFSET, CODE_MATCHLEN };
	const unsigned char *p, *end = in + len;
	size_t at = d->pos;
	unsigned count, modes;
	long used;

	if (len < 2)
		return fail(d, "compressed block too short", at);
	if ((used = read_literals(d, in, len, at)) < 0)
		return -1;
	p = in + used;
	if (p == end)
		return fail(d, "compressed block with no sequences section", at + len);
	if ((count = *p++) == 0)
		return p == end ? literals_only(d, at) :
		    fail(d, "bytes after an empty sequences section", at + (size_t)(p - in));
	if (count == 255 && end - p >= 2) {
		count = load_le16(p) + 0x7f00;
		p += 2;
	} else if (count > 127 && count < 255 && p < end) {
		count = ((count - 128) << 8) + *p++;
	} else if (count > 127) {
		return fail(d, "sequences section cut short", at + len);
	}
	if (p == end)
		return fail(d, "sequences section cut short", at + len);
	modes = *p++;	/* its reserved bits unread, as libzstd 1.5.4 leaves them */
	for (int i = 0; i < 3; i++) {
		long t = set_table(d, kinds[i], modes >> (6 - 2 * i) & 3, p, (size_t)(end - p));

		if (t < 0)
			return fail(d, "bad table of sequence codes", at + (size_t)(p - in));
		p += t;
	}
	d->sequences_seen = 1;
	return run_sequences(d, p, (size_t)(end - p), at + (size_t)(p - in), count);
}

/* The bytes of a raw or RLE block of size bytes out, its content at d->pos. */
static int
plain_block(struct dec *d, size_t size, int rle, size_t at)
{
	size_t stored = rle ? 1 : size;

	if (d->strict && size > d->block_max)
		return fail(d, "block larger than its frame allows", at);
	if (stored > d->in_len - d->pos)
		return fail(d, "input ends inside a block", d->in_len);
	if (size > d->out_len - d->done)
		return fail(d, "frame goes past the cluster", at);
	if (rle)
		memset(d->out + d->done, d->in[d->pos], size);
	else
		memcpy(d->out + d->done, d->in + d->pos, size);
	d->done += size;
	d->pos += stored;
	return 0;
}

/* The blocks of a frame, from d->pos to the end of the last. */
static int
decode_blocks(struct dec *d)
{
	for (;;) {
		size_t at = d->pos, before = d->done, size;
		uint32_t head;
		int status;

		if (d->in_len - d->pos < 3)
			return fail(d, "input ends inside a block header", d->in_len);
		head = load_le24(d->in + d->pos);
		size = head >> 3;
		d->pos += 3;
		switch (head >> 1 & 3) {
		case 0:
		case 1:
			status = plain_block(d, size, head >> 1 & 1, at);
			break;
		case 2:
			if (size > (d->strict ? d->block_max : ZSTD_BLOCK_MAX))
				return fail(d, "block larger than its frame allows", at);
			if (size > d->in_len - d->pos)
				return fail(d, "input ends inside a block", d->in_len);
			/* libzstd's streaming decoder takes no bytes as an empty block */
			status = d->strict && size == 0 ? 0 :
			    compressed_block(d, d->in + d->pos, size);
			d->pos += size;
			break;
		default:
			return fail(d, "reserved block type", at);
		}
		if (status != 0)
			return -1;
		if (d->strict && d->done - before > d->block_max)
			return fail(d, "block larger than its frame allows", at);
		if (head & 1)
			return 0;
	}
}

/* A skippable frame (RFC 8878 3.1.2), passed over. */
static int
skip_frame(struct dec *d)
{
	size_t left = d->in_len - d->pos;

	if (left < 8 || load_le32(d->in + d->pos + 4) > left - 8)
		return fail(d, "input ends inside a skippable frame", d->in_len);
	d->pos += 8 + (size_t)load_le32(d->in + d->pos + 4);
	return 0;
}

/* The value of the n-byte little-endian field at p. */
static uint64_t
load_field(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/*
 * Read a frame header (RFC 8878 3.1.1.1) at d->pos and start the frame:
 * *size is its content size, or UINT64_MAX when it gives none.
 */
static int
frame_header(struct dec *d, uint64_t *size, int *checksum)
{
	static const unsigned dict_bytes[4] = { 0, 1, 2, 4 };
	const unsigned char *p = d->in + d->pos;
	size_t at = d->pos;
	unsigned fhd = p[4], single = fhd >> 5 & 1;
	unsigned size_bytes = fhd >> 6 == 0 ? single : 1u << (fhd >> 6);
	uint64_t window = 0;

	if (d->in_len - d->pos < 5 + !single + dict_bytes[fhd & 3] + size_bytes)
		return fail(d, "input ends inside a frame header", d->in_len);
	if (fhd & 8)
		return fail(d, "reserved bit of the frame header set", at + 4);
	p += 5;
	if (!single) {
		if ((*p >> 3) + 10 > WINDOW_LOG_MAX)
			return fail(d, "window too large", at + 5);
		window = (uint64_t)1 << ((*p >> 3) + 10);
		window += (window >> 3) * (*p & 7);
		p++;
	}
	if (load_field(p, dict_bytes[fhd & 3]) != 0)
		return fail(d, "frame needs a dictionary", (size_t)(p - d->in));
	p += dict_bytes[fhd & 3];
	*size = load_field(p, size_bytes) + (size_bytes == 2 ? 256 : 0);
	if (single)
		window = *size;
	else if (size_bytes == 0)
		*size = UINT64_MAX;
	*checksum = fhd >> 2 & 1;
	d->pos = (size_t)(p + size_bytes - d->in);
	d->strict = *size == UINT64_MAX;
	if (d->strict && window > WINDOW_LIMIT)
		return fail(d, "window larger than libzstd's default limit", at + 5);
	d->block_max = window < ZSTD_BLOCK_MAX ? (size_t)window : ZSTD_BLOCK_MAX;
	return 0;
}

/* One frame at d->pos, skippable or not, to its end. */
static int
decode_frame(struct dec *d)
{
	size_t at = d->pos, left = d->in_len - d->pos, made;
	uint64_t size;
	uint32_t magic;
	int checksum;

	if (left < 4)
		return fail(d, "input ends inside a frame header", d->in_len);
	magic = load_le32(d->in + d->pos);
	if ((magic & 0xfffffff0u) == SKIPPABLE_MAGIC)
		return skip_frame(d);
	if (magic >= LEGACY_MAGIC && magic < FRAME_MAGIC)
		return fail(d, ZSTD_LEGACY, at);
	if (magic != FRAME_MAGIC)
		return fail(d, "not a zstd frame", at);
	if (left < 5)
		return fail(d, "input ends inside a frame header", d->in_len);
	if (frame_header(d, &size, &checksum) != 0)
		return -1;
	if (size != UINT64_MAX && size > d->out_len - d->done)
		return fail(d, "frame larger than the rest of the cluster", at);
	d->frame_start = d->done;
	d->huffman_ok = d->sequences_seen = 0;
	d->rep[0] = 1;
	d->rep[1] = 4;
	d->rep[2] = 8;
	if (decode_blocks(d) != 0)
		return -1;
	made = d->done - d->frame_start;
	if (size != UINT64_MAX && made != size)
		return fail(d, "frame content size does not match its blocks", at);
	if (!checksum)
		return 0;
	if (d->in_len - d->pos < 4)
		return fail(d, "input ends inside a frame checksum", d->in_len);
	if (load_le32(d->in + d->pos) != (uint32_t)xxh64(d->out + d->frame_start, made))
		return fail(d, "frame checksum does not match", d->pos);
	d->pos += 4;
	return 0;
}

int
zstd_decode_cluster(struct zstd_decoder *z, unsigned char *out, size_t out_len,
    const unsigned char *in, size_t in_len, struct zstd_error *err)
{
	struct dec d;

	memset(&d, 0, sizeof(d));
	d.z = z;
	d.in = in;
	d.in_len = in_len;
	d.out = out;
	d.out_len = out_len;
	d.err = err;
	while (d.done < out_len) {
		if (d.pos == in_len)
			return fail(&d, "input ends before the cluster is full", in_len);
		if (decode_frame(&d) != 0)
			return -1;
	}
	return 0;
}

/*
 * deflate.c: a cluster compressed for QEMU's zlib to read (see deflate.h).
 *
 * Matches are found the way zlib's level 6 finds them, within 4 KiB:
 * each position heads a chain of the earlier ones of the same hash of
 * three bytes, of which the first 128 are tried, a quarter of them when
 * the match before is already 8 bytes long; 128 bytes end the search.  A
 * match is taken lazily: only if the next position has none longer, and
 * one of 16 bytes or more at once.
 *
 * Every 32768 symbols, and at the end, the block is written as whichever
 * of stored, fixed or dynamic codes takes fewest bits.  Its exact size is
 * known before its first bit is written, so a stream that would not fit
 * is given up on there, with nothing written past out_cap.
 */
#include <string.h>

#include "deflate.h"

#define MIN_MATCH	3
#define MAX_MATCH	258
#define GOOD_LENGTH	8	/* after a match this long, search a quarter of the chain */
#define LAZY_LENGTH	16	/* a match this long is taken at once */
#define NICE_LENGTH	128	/* a match this long ends the search */
#define MAX_CHAIN	128	/* positions tried at most */

#define LITLEN_CODES	286
#define FIXED_LITLEN_CODES 288	/* 286 and 287 have codes, if no use */
#define DIST_CODES	30
#define CODELEN_CODES	19
#define END_OF_BLOCK	256
#define MAX_BITS	15
#define MAX_CODELEN_BITS 7
#define STORED_MAX	65535	/* bytes in a stored block */
#define MIN_HASH_BITS	9

/* RFC 1951 3.2.5: the code of each length - 3, and each code's base and extra bits. */
static const uint8_t length_code[256] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 9, 9, 10, 10, 11, 11,
	12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15,
	16, 16, 16, 16, 16, 16, 16, 16, 17, 17, 17, 17, 17, 17, 17, 17,
	18, 18, 18, 18, 18, 18, 18, 18, 19, 19, 19, 19, 19, 19, 19, 19,
	20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20,
	21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21,
	22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22,
	23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23,
	24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24,
	24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24,
	25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25,
	25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25,
	26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
	26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,
	27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27,
	27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 28,
};
static const uint16_t length_base[29] = {
	3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
	35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
};
static const uint8_t length_extra[29] = {
	0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
	3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
};

/* The code of each distance - 1 below 256, then of each 128 from there. */
static const uint8_t dist_code_near[256] = {
	0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7,
	8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9,
	10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
	11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11,
	12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
	12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
	13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13,
	13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13,
	14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14,
	14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14,
	14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14,
	14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14,
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
	15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
};
static const uint8_t dist_code_far[DEFLATE_WINDOW >> 7] = {
	0, 14, 16, 17, 18, 18, 19, 19, 20, 20, 20, 20, 21, 21, 21, 21,
	22, 22, 22, 22, 22, 22, 22, 22, 23, 23, 23, 23, 23, 23, 23, 23,
};
static const uint16_t dist_base[DIST_CODES] = {
	1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
	257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289,
	16385, 24577,
};
static const uint8_t dist_extra[DIST_CODES] = {
	0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
	7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
};

/* RFC 1951 3.2.7: the order of the code length code's lengths, and its repeats' extra bits. */
static const uint8_t codelen_order[CODELEN_CODES] = {
	16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
};
static const uint8_t codelen_extra[CODELEN_CODES] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 7,
};

struct writer {
	unsigned char *out;
	size_t cap;
	size_t pos;		/* bytes of out written */
	uint64_t bits;		/* not yet written, the first in bit 0 */
	unsigned held;		/* how many */
};

/* One call's input, and the block being gathered. */
struct run {
	struct deflater *z;
	const unsigned char *in;
	size_t in_len;
	size_t block_start;	/* the first byte of in the block stands for */
	size_t covered;		/* the bytes of in the symbols so far stand for */
	unsigned symbols;	/* in the block */
	int too_big;		/* the stream would not fit in out_cap */
	struct writer w;
};

/* A prefix code: each symbol's length, and its code reversed, to go out bit 0 first. */
struct code {
	uint8_t lengths[FIXED_LITLEN_CODES];
	uint16_t codes[FIXED_LITLEN_CODES];
};

/* A dynamic block's header: the code lengths run-length coded, and their own code. */
struct header {
	unsigned nlit, ndist, nclen;
	unsigned nruns;
	uint8_t runs[LITLEN_CODES + DIST_CODES];	/* code length symbols, 0-18 */
	uint8_t run_extra[LITLEN_CODES + DIST_CODES];	/* the value of a repeat's extra bits */
	struct code clen;
};

/* The code of a distance of 1 to DEFLATE_WINDOW. */
static inline unsigned
dist_code(unsigned dist)
{
	return dist <= 256 ? dist_code_near[dist - 1] : dist_code_far[(dist - 1) >> 7];
}

static inline uint64_t
load_le64(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	    (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	    (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline void
store_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> 8 * i);
}

/* Which byte of a nonzero x, loaded little-endian, is the first not zero. */
static inline unsigned
first_set_byte(uint64_t x)
{
#if defined(__GNUC__)
	return (unsigned)__builtin_ctzll(x) >> 3;
#else
	unsigned n = 0;

	while ((x & 0xff) == 0) {
		x >>= 8;
		n++;
	}
	return n;
#endif
}

/* The matcher */

static inline uint32_t
hash3(const unsigned char *p, unsigned shift)
{
	uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;

	return (v * 0x9e3779b1u) >> shift;
}

/*
 * Put pos at the head of its hash's chain.  Returns how far back the one
 * before it is, or 0 for none within the window.  A head held mod 2^16
 * may stand for a position farther back than it says, or one never put
 * there: that only costs a match tried and not found.
 */
static inline unsigned
insert(struct deflater *z, const unsigned char *in, size_t pos, unsigned shift)
{
	uint32_t h = hash3(in + pos, shift);
	unsigned back = (uint16_t)(pos - z->head[h]);

	if (back > DEFLATE_WINDOW || back > pos)
		back = 0;
	z->prev[pos & (DEFLATE_WINDOW - 1)] = (uint16_t)back;
	z->head[h] = (uint16_t)pos;
	return back;
}

/* How many of the first limit bytes at a and at b are the same; a before b. */
static inline unsigned
match_length(const unsigned char *a, const unsigned char *b, unsigned limit)
{
	unsigned n = 0;

	while (limit - n >= 8) {
		uint64_t diff = load_le64(a + n) ^ load_le64(b + n);

		if (diff != 0)
			return n + first_set_byte(diff);
		n += 8;
	}
	while (n < limit && a[n] == b[n])
		n++;
	return n;
}

/*
 * The longest match at pos longer than best among the first chain
 * positions of its hash's chain, the nearest back bytes back, within the
 * window and in; its distance in *dist, the nearest of that length.
 * Returns its length, or 0 if none is longer than best.
 */
static unsigned
longest_match(const struct deflater *z, const unsigned char *in, size_t pos,
    size_t avail, unsigned back, unsigned best, unsigned chain, unsigned *dist)
{
	const unsigned char *here = in + pos;
	unsigned limit = avail < MAX_MATCH ? (unsigned)avail : MAX_MATCH;
	unsigned nice = limit < NICE_LENGTH ? limit : NICE_LENGTH;
	size_t reach = pos < DEFLATE_WINDOW ? pos : DEFLATE_WINDOW;
	unsigned found = 0;
	size_t far = back;

	if (best >= limit)
		return 0;
	while (back != 0 && far <= reach) {
		const unsigned char *there = here - far;

		if (there[best] == here[best] && there[0] == here[0] && there[1] == here[1]) {
			unsigned len = match_length(there, here, limit);

			if (len > best) {
				best = found = len;
				*dist = (unsigned)far;
				if (len >= nice)
					break;
			}
		}
		if (--chain == 0)
			break;
		back = z->prev[(pos - far) & (DEFLATE_WINDOW - 1)];
		far += back;
	}
	return found;
}

/* The writer */

/* Write out the whole bytes held; the caller has checked they fit. */
static inline void
flush_bytes(struct writer *w)
{
	unsigned n = w->held >> 3;

	if (w->cap - w->pos >= 8) {
		store_le64(w->out + w->pos, w->bits);
	} else {
		for (unsigned i = 0; i < n; i++)
			w->out[w->pos + i] = (unsigned char)(w->bits >> 8 * i);
	}
	w->pos += n;
	w->bits = n < 8 ? w->bits >> 8 * n : 0;
	w->held &= 7;
}

/* Add the n low bits of value to those held, which must then be 64 at most. */
static inline void
add_bits(struct writer *w, uint32_t value, unsigned n)
{
	w->bits |= (uint64_t)value << w->held;
	w->held += n;
}

/* Add the n low bits of value (n <= 32) to the stream. */
static inline void
put_bits(struct writer *w, uint32_t value, unsigned n)
{
	add_bits(w, value, n);
	if (w->held >= 32)
		flush_bytes(w);
}

/* Pad to a whole byte with zero bits, and write out what is held. */
static void
align(struct writer *w)
{
	w->held = (w->held + 7) & ~7u;
	flush_bytes(w);
}

static inline uint64_t
bits_written(const struct writer *w)
{
	return (uint64_t)w->pos * 8 + w->held;
}

/* Codes */

/*
 * Turn the n >= 2 weights a[], in increasing order, into the depths of
 * the leaves of a Huffman tree over them, a[0] the deepest, in place
 * (Moffat and Katajainen, "In-place calculation of minimum-redundancy
 * codes", 1995): first the weights of the inner nodes, each in place of
 * the leaf it takes, with links to its parent; then the depths of the
 * inner nodes; then those of the leaves.
 */
static void
huffman_depths(uint16_t *a, unsigned n)
{
	unsigned root = 0, leaf = 2, next;
	int inner, slot;
	unsigned avail = 1, used = 0, depth = 0;

	a[0] += a[1];
	for (next = 1; next < n - 1; next++) {
		if (leaf >= n || a[root] < a[leaf]) {
			a[next] = a[root];
			a[root++] = (uint16_t)next;
		} else {
			a[next] = a[leaf++];
		}
		if (leaf >= n || (root < next && a[root] < a[leaf])) {
			a[next] += a[root];
			a[root++] = (uint16_t)next;
		} else {
			a[next] += a[leaf++];
		}
	}
	a[n - 2] = 0;
	for (next = n - 2; next-- > 0; )
		a[next] = (uint16_t)(a[a[next]] + 1);
	inner = (int)n - 2;
	slot = (int)n - 1;
	while (avail > 0) {
		while (inner >= 0 && a[inner] == depth) {
			used++;
			inner--;
		}
		while (avail > used) {
			a[slot--] = (uint16_t)depth;
			avail--;
		}
		avail = 2 * used;
		depth++;
		used = 0;
	}
}

/*
 * The weights of a block's symbols add up to fewer than 2^16, so that
 * huffman_depths works in 16 bits.
 */
_Static_assert(DEFLATE_BLOCK_SYMBOLS + 1 < 1 << 16, "symbols of a block");

/*
 * The lengths of a prefix code of the n symbols of freq, none longer than
 * limit, fewest bits in all or near it: Huffman's, then the longest cut
 * to limit and others made longer until the code is complete again.  A
 * code has two symbols at least, of length 1 if need be, as every
 * decoder takes a complete code.
 */
static void
build_lengths(const uint32_t *freq, unsigned n, unsigned limit, uint8_t *lengths)
{
	uint32_t sorted[LITLEN_CODES];
	uint16_t depths[LITLEN_CODES];
	unsigned counts[MAX_BITS + 1] = { 0 }, m = 0, i, len;
	uint32_t kraft = 0;

	for (i = 0; i < n; i++) {
		lengths[i] = 0;
		if (freq[i] != 0)
			sorted[m++] = freq[i] << 9 | i;
	}
	if (m < 2) {
		unsigned used = m == 1 ? sorted[0] & 511 : 0;

		lengths[used] = lengths[used == 0 ? 1 : 0] = 1;
		return;
	}
	for (i = 1; i < m; i++) {
		uint32_t v = sorted[i];
		unsigned j = i;

		for (; j > 0 && sorted[j - 1] > v; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = v;
	}
	for (i = 0; i < m; i++)
		depths[i] = (uint16_t)(sorted[i] >> 9);
	huffman_depths(depths, m);
	for (i = 0; i < m; i++)
		counts[depths[i] < limit ? depths[i] : limit]++;
	for (len = 1; len <= limit; len++)
		kraft += counts[len] << (limit - len);
	while (kraft > 1u << limit) {
		for (len = limit - 1; counts[len] == 0; len--)
			continue;
		counts[limit]--;
		counts[len]--;
		counts[len + 1] += 2;
		kraft--;
	}
	for (i = 0, len = limit; len > 0; len--)
		for (unsigned k = counts[len]; k > 0; k--)
			lengths[sorted[i++] & 511] = (uint8_t)len;
}

/* The n low bits of code in reverse order, 1 <= n <= 16. */
static inline unsigned
reverse_bits(unsigned code, unsigned n)
{
	code = (code & 0x5555) << 1 | (code >> 1 & 0x5555);
	code = (code & 0x3333) << 2 | (code >> 2 & 0x3333);
	code = (code & 0x0f0f) << 4 | (code >> 4 & 0x0f0f);
	code = (code & 0x00ff) << 8 | (code >> 8 & 0x00ff);
	return code >> (16 - n);
}

/* RFC 1951 3.2.2: the canonical codes of the lengths of c's first n symbols. */
static void
assign_codes(struct code *c, unsigned n)
{
	unsigned counts[MAX_BITS + 1] = { 0 }, next[MAX_BITS + 1], code = 0;

	for (unsigned i = 0; i < n; i++)
		counts[c->lengths[i]]++;
	counts[0] = 0;
	for (unsigned len = 1; len <= MAX_BITS; len++) {
		code = (code + counts[len - 1]) << 1;
		next[len] = code;
	}
	for (unsigned i = 0; i < n; i++)
		if (c->lengths[i] != 0)
			c->codes[i] = (uint16_t)reverse_bits(next[c->lengths[i]]++,
			    c->lengths[i]);
}

/* RFC 1951 3.2.6: the fixed code's length for a literal/length symbol. */
static inline unsigned
fixed_length(unsigned sym)
{
	return sym < 144 ? 8 : sym < 256 ? 9 : sym < 280 ? 7 : 8;
}

/* The fixed codes; the two unused codes count, as they shift the codes of 9 bits. */
static void
fixed_codes(struct code *lit, struct code *dist)
{
	for (unsigned i = 0; i < FIXED_LITLEN_CODES; i++)
		lit->lengths[i] = (uint8_t)fixed_length(i);
	for (unsigned i = 0; i < DIST_CODES; i++)
		dist->lengths[i] = 5;
	assign_codes(lit, FIXED_LITLEN_CODES);
	assign_codes(dist, DIST_CODES);
}

static uint64_t
code_bits(const uint32_t *freq, const uint8_t *lengths, unsigned n)
{
	uint64_t bits = 0;

	for (unsigned i = 0; i < n; i++)
		bits += (uint64_t)freq[i] * lengths[i];
	return bits;
}

/* The bits of the symbols counted in the fixed codes, their extra bits left out. */
static uint64_t
fixed_bits(const uint32_t *lit_freq, const uint32_t *dist_freq)
{
	uint64_t bits = 0;

	for (unsigned i = 0; i < LITLEN_CODES; i++)
		bits += (uint64_t)lit_freq[i] * fixed_length(i);
	for (unsigned i = 0; i < DIST_CODES; i++)
		bits += (uint64_t)dist_freq[i] * 5;
	return bits;
}

static void
add_run(struct header *h, unsigned sym, unsigned extra)
{
	h->runs[h->nruns] = (uint8_t)sym;
	h->run_extra[h->nruns++] = (uint8_t)extra;
}

/*
 * Plan the header of a dynamic block of these codes: the lengths of both,
 * as one sequence, in runs (RFC 1951 3.2.7), and the code of those.
 * Returns the header's bits, the block's first three left out.
 */
static uint64_t
plan_header(struct header *h, const struct code *lit, const struct code *dist)
{
	uint8_t all[LITLEN_CODES + DIST_CODES];
	uint32_t freq[CODELEN_CODES] = { 0 };
	unsigned n, i;
	uint64_t bits;

	for (h->nlit = LITLEN_CODES; lit->lengths[h->nlit - 1] == 0; h->nlit--)
		continue;
	for (h->ndist = DIST_CODES; h->ndist > 1 && dist->lengths[h->ndist - 1] == 0; h->ndist--)
		continue;
	memcpy(all, lit->lengths, h->nlit);
	memcpy(all + h->nlit, dist->lengths, h->ndist);
	n = h->nlit + h->ndist;
	h->nruns = 0;
	for (i = 0; i < n; ) {
		unsigned len = all[i], run = 1;

		while (i + run < n && all[i + run] == len)
			run++;
		i += run;
		if (len != 0) {
			add_run(h, len, 0);
			run--;
		}
		while (run >= 3) {
			unsigned k;

			if (len != 0) {
				k = run < 6 ? run : 6;
				add_run(h, 16, k - 3);
			} else if (run >= 11) {
				k = run < 138 ? run : 138;
				add_run(h, 18, k - 11);
			} else {
				k = run;
				add_run(h, 17, k - 3);
			}
			run -= k;
		}
		for (; run > 0; run--)
			add_run(h, len, 0);
	}
	for (i = 0; i < h->nruns; i++)
		freq[h->runs[i]]++;
	build_lengths(freq, CODELEN_CODES, MAX_CODELEN_BITS, h->clen.lengths);
	assign_codes(&h->clen, CODELEN_CODES);
	for (h->nclen = CODELEN_CODES; h->clen.lengths[codelen_order[h->nclen - 1]] == 0;
	    h->nclen--)
		continue;
	if (h->nclen < 4)
		h->nclen = 4;
	bits = 5 + 5 + 4 + 3 * h->nclen;
	for (i = 0; i < CODELEN_CODES; i++)
		bits += (uint64_t)freq[i] * (h->clen.lengths[i] + codelen_extra[i]);
	return bits;
}

static void
write_header(struct writer *w, const struct header *h)
{
	put_bits(w, h->nlit - 257, 5);
	put_bits(w, h->ndist - 1, 5);
	put_bits(w, h->nclen - 4, 4);
	for (unsigned i = 0; i < h->nclen; i++)
		put_bits(w, h->clen.lengths[codelen_order[i]], 3);
	for (unsigned i = 0; i < h->nruns; i++) {
		unsigned sym = h->runs[i];

		put_bits(w, h->clen.codes[sym], h->clen.lengths[sym]);
		put_bits(w, h->run_extra[i], codelen_extra[sym]);
	}
}

/* The block's symbols counted; returns the bits of their lengths' and distances' extra bits. */
static uint64_t
count_symbols(const struct run *r, uint32_t *lit_freq, uint32_t *dist_freq)
{
	const struct deflater *z = r->z;
	uint64_t extra = 0;

	for (unsigned i = 0; i < r->symbols; i++) {
		unsigned dist = z->dists[i], value = z->values[i];

		if (dist == 0) {
			lit_freq[value]++;
		} else {
			unsigned lc = length_code[value], dc = dist_code(dist);

			lit_freq[257 + lc]++;
			dist_freq[dc]++;
			extra += length_extra[lc] + dist_extra[dc];
		}
	}
	lit_freq[END_OF_BLOCK]++;
	return extra;
}

/* The block's symbols, a flush before each: a match takes 48 bits at most. */
static void
write_symbols(struct run *r, const struct code *lit, const struct code *dist)
{
	const struct deflater *z = r->z;
	struct writer *w = &r->w;

	for (unsigned i = 0; i < r->symbols; i++) {
		unsigned d = z->dists[i], value = z->values[i];

		flush_bytes(w);
		if (d == 0) {
			add_bits(w, lit->codes[value], lit->lengths[value]);
		} else {
			unsigned lc = length_code[value], dc = dist_code(d);

			add_bits(w, lit->codes[257 + lc], lit->lengths[257 + lc]);
			add_bits(w, value + MIN_MATCH - length_base[lc], length_extra[lc]);
			add_bits(w, dist->codes[dc], dist->lengths[dc]);
			add_bits(w, d - dist_base[dc], dist_extra[dc]);
		}
	}
	put_bits(w, lit->codes[END_OF_BLOCK], lit->lengths[END_OF_BLOCK]);
}

/* The bits of len bytes as stored blocks, from the writer's bit position on. */
static uint64_t
stored_bits(const struct writer *w, size_t len)
{
	size_t blocks = len == 0 ? 1 : (len + STORED_MAX - 1) / STORED_MAX;
	unsigned pad = (8 - (w->held + 3) % 8) % 8;

	return 3 + pad + 32 + 8 * (uint64_t)len + (uint64_t)(blocks - 1) * (8 + 32);
}

static void
write_stored(struct writer *w, const unsigned char *p, size_t len, int last)
{
	do {
		size_t n = len < STORED_MAX ? len : STORED_MAX;

		put_bits(w, last && n == len, 3);
		align(w);
		put_bits(w, (uint32_t)n | (uint32_t)(n ^ 0xffff) << 16, 32);
		memcpy(w->out + w->pos, p, n);
		w->pos += n;
		p += n;
		len -= n;
	} while (len > 0);
}

/*
 * Write the block gathered, final if last, in the fewest bits; or, if it
 * would not fit, write nothing and mark the run too big.
 */
static void
write_block(struct run *r, int last)
{
	uint32_t lit_freq[LITLEN_CODES] = { 0 }, dist_freq[DIST_CODES] = { 0 };
	struct code lit, dist;
	struct header h;
	uint64_t extra, dynamic, fixed, stored, best;
	size_t raw = r->covered - r->block_start;

	extra = count_symbols(r, lit_freq, dist_freq);
	build_lengths(lit_freq, LITLEN_CODES, MAX_BITS, lit.lengths);
	build_lengths(dist_freq, DIST_CODES, MAX_BITS, dist.lengths);
	dynamic = 3 + plan_header(&h, &lit, &dist) + extra +
	    code_bits(lit_freq, lit.lengths, LITLEN_CODES) +
	    code_bits(dist_freq, dist.lengths, DIST_CODES);
	fixed = 3 + extra + fixed_bits(lit_freq, dist_freq);
	stored = stored_bits(&r->w, raw);
	best = dynamic < fixed ? dynamic : fixed;
	best = stored < best ? stored : best;
	if (bits_written(&r->w) + best > (uint64_t)r->w.cap * 8) {
		r->too_big = 1;
		return;
	}
	if (best == stored) {
		write_stored(&r->w, r->in + r->block_start, raw, last);
	} else if (best == fixed) {
		fixed_codes(&lit, &dist);
		put_bits(&r->w, (unsigned)last | 1u << 1, 3);
		write_symbols(r, &lit, &dist);
	} else {
		assign_codes(&lit, LITLEN_CODES);
		assign_codes(&dist, DIST_CODES);
		put_bits(&r->w, (unsigned)last | 2u << 1, 3);
		write_header(&r->w, &h);
		write_symbols(r, &lit, &dist);
	}
	r->symbols = 0;
	r->block_start = r->covered;
}

/* The parse */

static inline void
put_literal(struct run *r, unsigned char byte)
{
	if (r->symbols == DEFLATE_BLOCK_SYMBOLS)
		write_block(r, 0);
	r->z->dists[r->symbols] = 0;
	r->z->values[r->symbols++] = byte;
	r->covered++;
}

static inline void
put_match(struct run *r, unsigned len, unsigned dist)
{
	if (r->symbols == DEFLATE_BLOCK_SYMBOLS)
		write_block(r, 0);
	r->z->dists[r->symbols] = (uint16_t)dist;
	r->z->values[r->symbols++] = (uint8_t)(len - MIN_MATCH);
	r->covered += len;
}

/*
 * Cut the input into literals and matches, lazily: the match found at a
 * position waits for the next one's, and is taken if that is no longer.
 * Every position with three bytes from it goes on its chain.
 */
static void
parse(struct run *r, unsigned shift)
{
	struct deflater *z = r->z;
	const unsigned char *in = r->in;
	size_t n = r->in_len, pos = 0;
	unsigned prev_len = 0, prev_dist = 0;
	int pending = 0;	/* in[pos - 1] is not yet put */

	while (pos < n && !r->too_big) {
		unsigned len = 0, dist = 0;

		if (n - pos >= MIN_MATCH) {
			unsigned back = insert(z, in, pos, shift);

			if (back != 0 && prev_len < LAZY_LENGTH)
				len = longest_match(z, in, pos, n - pos, back,
				    prev_len < MIN_MATCH ? MIN_MATCH - 1 : prev_len,
				    prev_len >= GOOD_LENGTH ? MAX_CHAIN / 4 : MAX_CHAIN, &dist);
		}
		if (prev_len >= MIN_MATCH && len == 0) {
			size_t end = pos - 1 + prev_len, last_insert = n - MIN_MATCH;

			put_match(r, prev_len, prev_dist);
			while (++pos < end)
				if (pos <= last_insert)
					insert(z, in, pos, shift);
			prev_len = 0;
			pending = 0;
		} else {
			if (pending)
				put_literal(r, in[pos - 1]);
			pending = 1;
			prev_len = len;
			prev_dist = dist;
			pos++;
		}
	}
	if (pending && !r->too_big)
		put_literal(r, in[pos - 1]);
}

/* Enough bits of hash for the positions of in_len bytes, so that a small cluster clears little. */
static unsigned
hash_bits(size_t in_len)
{
	unsigned bits = MIN_HASH_BITS;

	while (bits < DEFLATE_HASH_BITS && ((size_t)1 << bits) < 2 * in_len)
		bits++;
	return bits;
}

size_t
deflate_cluster(struct deflater *z, unsigned char *out, size_t out_cap,
    const unsigned char *in, size_t in_len)
{
	struct run r = { z, in, in_len, 0, 0, 0, 0, { out, out_cap, 0, 0, 0 } };
	unsigned bits = hash_bits(in_len);
	size_t slots = in_len < DEFLATE_WINDOW ? in_len : DEFLATE_WINDOW;

	/* a chain only reaches the slots of positions of in, so the rest may hold anything */
	memset(z->head, 0, sizeof(z->head[0]) << bits);
	memset(z->prev, 0, sizeof(z->prev[0]) * slots);
	parse(&r, 32 - bits);
	if (!r.too_big)
		write_block(&r, 1);
	if (r.too_big)
		return 0;
	align(&r.w);
	return r.w.pos;
}

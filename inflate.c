/*
 * inflate.c: raw deflate decoded into a cluster as QEMU's zlib decodes it
 * (see inflate.h).
 *
 * Bits are read first to last from bit 0 of a 64-bit buffer, refilled a
 * word at a time while 8 bytes of input are left.  While 16 bytes of
 * input and of output are left, the fast loop decodes a whole length and
 * distance at a refill and copies the match in 8 or 16 byte chunks, with
 * no check of the input's end; anything unusual (a bad code, a distance
 * too far back, a match too close to the end) is left to the careful
 * loop, which checks every read and write.
 *
 * zlib stops, with no fault, where the bits of a code, field or extra
 * bits are not all in the input.  Once the cluster is full it goes on
 * parsing until it must write a byte: it decodes a literal, or a length
 * and its distance, or reads the next block header and its tables, or a
 * stored block's lengths, and any fault met on the way counts.  The
 * careful loop does the same.
 */
#include <string.h>

#include "inflate.h"

#define MAX_CODE_BITS	15
#define COPY_SLACK	16	/* copy_fast writes up to 15 bytes past a match */
#define LITLEN_CODES	288
#define DIST_CODES	32
#define CODELEN_CODES	19
#define CODELEN_ROOT	7

/*
 * A table entry: a value in bits 16-31 (a literal, the base of a length
 * or distance, a code length symbol, the index of a sub-table), its kind
 * in bits 12-15, the length of its code in bits 8-11 and of its code and
 * extra bits in bits 0-5.  A link to a sub-table keeps the root's bits in
 * bits 0-5 and the sub-table's index bits in bits 8-11; the sub-table's
 * entries give their whole code's length.  An entry of no kind is a code
 * that stands for no symbol.
 */
#define ENTRY_LITERAL	0x8000
#define ENTRY_MATCH	0x4000	/* a base and extra bits */
#define ENTRY_END	0x2000	/* end of block */
#define ENTRY_LINK	0x1000	/* to a sub-table */
#define CODE_BITS(e)	((e) >> 8 & 15)
#define ALL_BITS(e)	((e) & 63)

enum code_kind { CODE_LENGTHS, CODE_LITLEN, CODE_DIST };

/* How the decoding goes on from here. */
enum flow {
	FLOW_ON,
	FLOW_END,	/* of a block */
	FLOW_STOP,	/* where zlib stops with no fault: input out, or output full */
	FLOW_FAIL,	/* err says why */
};

/* RFC 1951 3.2.5: lengths 257-285, distances 0-29. */
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

struct stream {
	const unsigned char *in;
	size_t in_len;
	size_t pos;		/* the next byte of in to load */
	uint64_t bits;		/* loaded and unused, the next in bit 0 */
	unsigned held;		/* how many bits are loaded */
	unsigned char *out;
	size_t out_len;
	size_t done;		/* bytes of out written */
	const uint32_t *litlen, *dist;	/* the block's tables */
	unsigned litlen_root, dist_root;
	struct inflate_error *err;
};

static inline uint64_t
low_bits(unsigned n)
{
	return ((uint64_t)1 << n) - 1;
}

static inline uint32_t
make_entry(uint32_t value, unsigned kind, unsigned code_bits, unsigned extra_bits)
{
	return value << 16 | kind | code_bits << 8 | (code_bits + extra_bits);
}

/* The entry of symbol sym, of a code_bits long code, in a table of kind. */
static inline uint32_t
symbol_entry(enum code_kind kind, unsigned sym, unsigned code_bits)
{
	static const uint8_t repeat_extra[3] = { 2, 3, 7 };

	switch (kind) {
	case CODE_LENGTHS:
		if (sym < 16)
			return make_entry(sym, ENTRY_LITERAL, code_bits, 0);
		return make_entry(sym, ENTRY_MATCH, code_bits, repeat_extra[sym - 16]);
	case CODE_LITLEN:
		if (sym < 256)
			return make_entry(sym, ENTRY_LITERAL, code_bits, 0);
		if (sym == 256)
			return make_entry(0, ENTRY_END, code_bits, 0);
		if (sym < 286)
			return make_entry(length_base[sym - 257], ENTRY_MATCH, code_bits,
			    length_extra[sym - 257]);
		break;
	case CODE_DIST:
		if (sym < 30)
			return make_entry(dist_base[sym], ENTRY_MATCH, code_bits,
			    dist_extra[sym]);
		break;
	}
	return make_entry(0, 0, code_bits, 0);
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

/* Put entry at every index of table[0..size) whose low n bits are index. */
static inline void
fill(uint32_t *table, unsigned size, unsigned index, unsigned n, uint32_t entry)
{
	for (unsigned i = index; i < size; i += 1u << n)
		table[i] = entry;
}

/*
 * The counts of code lengths checked as zlib checks them: over-subscribed
 * is a fault, and incomplete too unless it is a single code of one bit
 * for literals/lengths or distances (none at all is the caller's case).
 * Returns NULL or the fault; *incomplete says whether a code is unused.
 */
static const char *
check_counts(const unsigned *counts, unsigned max, enum code_kind kind, int *incomplete)
{
	static const char *const over[] = { "over-subscribed code length code",
	    "over-subscribed literal/length code", "over-subscribed distance code" };
	static const char *const under[] = { "incomplete code length code",
	    "incomplete literal/length code", "incomplete distance code" };
	int left = 1;

	for (unsigned len = 1; len <= MAX_CODE_BITS; len++) {
		left = 2 * left - (int)counts[len];
		if (left < 0)
			return over[kind];
	}
	if (left > 0 && (kind == CODE_LENGTHS || max != 1))
		return under[kind];
	*incomplete = left > 0;
	return NULL;
}

/*
 * Fill the sub-tables of the codes sorted[from..n) longer than root, whose
 * canonical codes are codes[], from table[1 << root]; the first free index
 * is returned, or 0 if size is too small (it is not, see inflate.h).
 */
static unsigned
fill_subtables(uint32_t *table, unsigned size, unsigned root, enum code_kind kind,
    const uint16_t *sorted, const uint16_t *codes, const uint8_t *lengths,
    unsigned from, unsigned n)
{
	unsigned next = 1u << root;

	for (unsigned i = from; i < n; ) {
		unsigned len = lengths[sorted[i]];
		unsigned prefix = codes[i] >> (len - root), last = i, sub_bits;

		/* the codes that share these root bits follow each other */
		while (last + 1 < n && prefix ==
		    (unsigned)codes[last + 1] >> (lengths[sorted[last + 1]] - root))
			last++;
		sub_bits = lengths[sorted[last]] - root;
		if (size - next < 1u << sub_bits)
			return 0;
		table[reverse_bits(prefix, root)] = (uint32_t)next << 16 | ENTRY_LINK |
		    sub_bits << 8 | root;
		for (; i <= last; i++) {
			len = lengths[sorted[i]];
			fill(table + next, 1u << sub_bits,
			    reverse_bits(codes[i], len) >> root, len - root,
			    symbol_entry(kind, sorted[i], len));
		}
		next += 1u << sub_bits;
	}
	return next;
}

/*
 * Build the decoding table of the code of lengths[0..n) into table[0..size),
 * its root of as many bits as its longest code but at most max_root, set
 * in *root.  Returns NULL, or the fault in the lengths.  A code of no
 * codes at all decodes any bit as a code of one bit, as zlib's does: a
 * code length of 0 for code lengths, else no symbol.
 */
static const char *
build_table(uint32_t *table, unsigned size, unsigned *root, unsigned max_root,
    enum code_kind kind, const uint8_t *lengths, unsigned n)
{
	unsigned counts[MAX_CODE_BITS + 1] = { 0 }, starts[MAX_CODE_BITS + 2];
	uint16_t sorted[LITLEN_CODES], codes[LITLEN_CODES];
	unsigned max = MAX_CODE_BITS, sorted_n, code = 0, i;
	int incomplete = 0;
	const char *why;

	for (i = 0; i < n; i++)
		counts[lengths[i]]++;
	while (max > 0 && counts[max] == 0)
		max--;
	*root = max == 0 ? 1 : max < max_root ? max : max_root;
	if (max == 0) {
		table[0] = table[1] = kind == CODE_LENGTHS ?
		    make_entry(0, ENTRY_LITERAL, 1, 0) : make_entry(0, 0, 1, 0);
		return NULL;
	}
	if ((why = check_counts(counts, max, kind, &incomplete)) != NULL)
		return why;
	if (incomplete)
		table[1] = make_entry(0, 0, 1, 0);
	/* canonical codes, RFC 1951 3.2.2: by length, then by symbol */
	starts[1] = 0;
	for (unsigned len = 1; len <= MAX_CODE_BITS; len++)
		starts[len + 1] = starts[len] + counts[len];
	sorted_n = starts[MAX_CODE_BITS + 1];
	for (i = 0; i < n; i++)
		if (lengths[i] != 0)
			sorted[starts[lengths[i]]++] = (uint16_t)i;
	for (i = 0; i < sorted_n; i++) {
		unsigned len = lengths[sorted[i]];

		if (i > 0)
			code = (code + 1) << (len - lengths[sorted[i - 1]]);
		codes[i] = (uint16_t)code;
	}
	for (i = 0; i < sorted_n && lengths[sorted[i]] <= *root; i++) {
		unsigned len = lengths[sorted[i]];

		fill(table, 1u << *root, reverse_bits(codes[i], len), len,
		    symbol_entry(kind, sorted[i], len));
	}
	if (i < sorted_n && fill_subtables(table, size, *root, kind, sorted, codes,
	    lengths, i, sorted_n) == 0)
		return "code table too large";
	return NULL;
}

static inline uint64_t
load_le64(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	    (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	    (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

/*
 * Load bytes until 56 bits or more are held, or the input is out.  A
 * word load may put bits of the next byte above the held ones: they are
 * that byte's, loaded again in their place later.
 */
static inline void
refill(struct stream *s)
{
	if (s->in_len - s->pos >= 8) {
		s->bits |= load_le64(s->in + s->pos) << s->held;
		s->pos += (63 - s->held) >> 3;
		s->held |= 56;
		return;
	}
	while (s->held < 56 && s->pos < s->in_len) {
		s->bits |= (uint64_t)s->in[s->pos++] << s->held;
		s->held += 8;
	}
}

/* Whether n bits (n <= 56) are there to take, after a refill. */
static inline int
have_bits(struct stream *s, unsigned n)
{
	refill(s);
	return s->held >= n;
}

static inline uint32_t
take_bits(struct stream *s, unsigned n)
{
	uint32_t value = (uint32_t)(s->bits & low_bits(n));

	s->bits >>= n;
	s->held -= n;
	return value;
}

/* Where the next unused bit is, in bits from the start of in. */
static inline uint64_t
bit_position(const struct stream *s)
{
	return (uint64_t)s->pos * 8 - s->held;
}

static enum flow
fail(struct stream *s, const char *why, uint64_t bit)
{
	s->err->why = why;
	s->err->at = (size_t)(bit / 8);
	return FLOW_FAIL;
}

/*
 * Decode the next code of table into *entry and take its bits (its extra
 * bits are left).  FLOW_STOP if the input ends inside the code.
 */
static inline enum flow
next_code(struct stream *s, const uint32_t *table, unsigned root, uint32_t *entry)
{
	uint32_t e;

	refill(s);
	e = table[s->bits & low_bits(root)];
	if (e & ENTRY_LINK)
		e = table[(e >> 16) + (s->bits >> ALL_BITS(e) & low_bits(CODE_BITS(e)))];
	if (s->held < CODE_BITS(e))
		return FLOW_STOP;
	take_bits(s, CODE_BITS(e));
	*entry = e;
	return FLOW_ON;
}

/* The base of entry plus its extra bits, taken; FLOW_STOP if the input ends first. */
static inline enum flow
take_extra(struct stream *s, uint32_t entry, uint32_t *value)
{
	unsigned extra = ALL_BITS(entry) - CODE_BITS(entry);

	if (!have_bits(s, extra))
		return FLOW_STOP;
	*value = (entry >> 16) + take_bits(s, extra);
	return FLOW_ON;
}

/*
 * Copy length bytes from distance back to out, where 1 <= distance and
 * distance bytes are before out; may write 15 bytes past the copy, which
 * is returned its end.
 */
static unsigned char *
copy_fast(unsigned char *out, size_t distance, unsigned length)
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
		return end;
	}
	if (distance == 1) {
		uint64_t run = from[0] * UINT64_C(0x0101010101010101);

		do {
			memcpy(out, &run, 8);
			out += 8;
		} while (out < end);
		return end;
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
	return end;
}

/* The entry of the code in the low bits of bits, its sub-table followed. */
static inline uint32_t
lookup(const uint32_t *table, uint64_t root_mask, uint64_t bits)
{
	uint32_t e = table[bits & root_mask];

	if (e & ENTRY_LINK)
		e = table[(e >> 16) + (bits >> ALL_BITS(e) & low_bits(CODE_BITS(e)))];
	return e;
}

/* The base of entry e plus its extra bits, which follow its code in bits. */
static inline uint32_t
base_and_extra(uint32_t e, uint64_t bits)
{
	return (e >> 16) + (uint32_t)((bits & low_bits(ALL_BITS(e))) >> CODE_BITS(e));
}

/*
 * Decode symbols while 16 bytes of input and of output are left and a
 * match leaves COPY_SLACK.  Returns FLOW_END after an end of block, else
 * FLOW_ON with the stream before the symbol it stopped at, for the
 * careful loop.
 */
static enum flow
decode_fast(struct stream *s)
{
	const uint64_t litlen_mask = low_bits(s->litlen_root);
	const uint64_t dist_mask = low_bits(s->dist_root);
	const uint32_t *litlen = s->litlen, *dist = s->dist;
	const unsigned char *in = s->in + s->pos;
	const unsigned char *in_stop = s->in + (s->in_len > 15 ? s->in_len - 15 : 0);
	unsigned char *const out_start = s->out, *out = out_start + s->done;
	unsigned char *const out_end = out_start + s->out_len;
	unsigned char *const out_stop = out_start + (s->out_len > COPY_SLACK ?
	    s->out_len - COPY_SLACK : 0);
	uint64_t bits = s->bits;
	unsigned held = s->held;
	enum flow flow = FLOW_ON;
	uint32_t e = 0;		/* the next symbol's entry, looked up ahead */

	if (in < in_stop && out < out_stop) {
		bits |= load_le64(in) << held;
		in += (63 - held) >> 3;
		held |= 56;
		e = lookup(litlen, litlen_mask, bits);
	}
	while (in < in_stop && out < out_stop) {
		uint32_t d, length;
		uint64_t rest;
		size_t distance;

		/* a refill adds bits above those e was found from */
		bits |= load_le64(in) << held;
		in += (63 - held) >> 3;
		held |= 56;
		if (e & ENTRY_LITERAL) {
			/* 56 bits: this one, and two more from the root */
			for (int more = 0; more < 2 && (e & ENTRY_LITERAL); more++) {
				*out++ = (unsigned char)(e >> 16);
				bits >>= ALL_BITS(e);
				held -= ALL_BITS(e);
				e = litlen[bits & litlen_mask];
			}
			if (e & ENTRY_LITERAL) {
				*out++ = (unsigned char)(e >> 16);
				bits >>= ALL_BITS(e);
				held -= ALL_BITS(e);
			}
			e = lookup(litlen, litlen_mask, bits);
			continue;
		}
		if (!(e & ENTRY_MATCH)) {
			if (e & ENTRY_END) {
				bits >>= ALL_BITS(e);
				held -= ALL_BITS(e);
				flow = FLOW_END;
			}
			break;
		}
		length = base_and_extra(e, bits);
		if (length > (size_t)(out_end - out) - COPY_SLACK)
			break;
		rest = bits >> ALL_BITS(e);
		d = lookup(dist, dist_mask, rest);
		distance = base_and_extra(d, rest);
		if (!(d & ENTRY_MATCH) || distance > (size_t)(out - out_start))
			break;
		bits = rest >> ALL_BITS(d);
		held -= ALL_BITS(e) + ALL_BITS(d);
		bits |= load_le64(in) << held;
		in += (63 - held) >> 3;
		held |= 56;
		e = lookup(litlen, litlen_mask, bits);
		out = copy_fast(out, distance, length);
	}
	s->pos = (size_t)(in - s->in);
	s->bits = bits;
	s->held = held;
	s->done = (size_t)(out - s->out);
	return flow;
}

/* A length of entry and its distance, copied; FLOW_STOP where zlib stops. */
static enum flow
match_careful(struct stream *s, uint32_t entry)
{
	uint32_t length, distance, e;
	uint64_t start;
	enum flow flow;
	size_t n;

	if ((flow = take_extra(s, entry, &length)) != FLOW_ON)
		return flow;
	start = bit_position(s);
	if ((flow = next_code(s, s->dist, s->dist_root, &e)) != FLOW_ON)
		return flow;
	if (!(e & ENTRY_MATCH))
		return fail(s, "invalid distance code", start);
	if ((flow = take_extra(s, e, &distance)) != FLOW_ON)
		return flow;
	if (s->done == s->out_len)
		return FLOW_STOP;
	if (distance > s->done)
		return fail(s, "distance too far back", start);
	n = s->out_len - s->done < length ? s->out_len - s->done : length;
	for (size_t i = 0; i < n; i++, s->done++)
		s->out[s->done] = s->out[s->done - distance];
	return n < length ? FLOW_STOP : FLOW_ON;
}

/* Decode symbols to the end of the block, checking both ends at each. */
static enum flow
decode_careful(struct stream *s)
{
	for (;;) {
		uint64_t start = bit_position(s);
		enum flow flow;
		uint32_t e;

		if ((flow = next_code(s, s->litlen, s->litlen_root, &e)) != FLOW_ON)
			return flow;
		if (e & ENTRY_LITERAL) {
			if (s->done == s->out_len)
				return FLOW_STOP;
			s->out[s->done++] = (unsigned char)(e >> 16);
		} else if (e & ENTRY_END) {
			return FLOW_END;
		} else if (!(e & ENTRY_MATCH)) {
			return fail(s, "invalid literal/length code", start);
		} else if ((flow = match_careful(s, e)) != FLOW_ON) {
			return flow;
		}
	}
}

/* A stored block from its length on; FLOW_STOP if it stops short. */
static enum flow
stored_block(struct stream *s)
{
	size_t length, n;

	take_bits(s, s->held % 8);
	s->pos -= s->held / 8;
	s->bits = 0;
	s->held = 0;
	if (s->in_len - s->pos < 4)
		return FLOW_STOP;
	length = s->in[s->pos] | (size_t)s->in[s->pos + 1] << 8;
	if ((length ^ 0xffff) != (s->in[s->pos + 2] | (size_t)s->in[s->pos + 3] << 8))
		return fail(s, "stored block length does not match its complement",
		    (uint64_t)s->pos * 8);
	s->pos += 4;
	n = length;
	if (n > s->out_len - s->done)
		n = s->out_len - s->done;
	if (n > s->in_len - s->pos)
		n = s->in_len - s->pos;
	memcpy(s->out + s->done, s->in + s->pos, n);
	s->done += n;
	s->pos += n;
	return n < length ? FLOW_STOP : FLOW_END;
}

/* Read count code lengths into lengths[], with the code length code in table. */
static enum flow
read_lengths(struct stream *s, const uint32_t *table, unsigned root, uint8_t *lengths,
    unsigned count)
{
	unsigned n = 0;

	while (n < count) {
		uint64_t start = bit_position(s);
		uint32_t e, repeat;
		unsigned sym;
		enum flow flow;
		uint8_t len = 0;

		if ((flow = next_code(s, table, root, &e)) != FLOW_ON)
			return flow;
		if ((sym = e >> 16) < 16) {
			lengths[n++] = (uint8_t)sym;
			continue;
		}
		/* the entry without its symbol: the extra bits alone */
		if ((flow = take_extra(s, e & 0xffff, &repeat)) != FLOW_ON)
			return flow;
		if (sym == 16 && n == 0)
			return fail(s, "code length repeat with no length before", start);
		if (sym == 16)
			len = lengths[n - 1];
		repeat += sym == 18 ? 11 : 3;
		if (repeat > count - n)
			return fail(s, "code length repeat past the last code", start);
		memset(lengths + n, len, repeat);
		n += repeat;
	}
	return FLOW_ON;
}

/* A dynamic block's header after its first 3 bits, which start at start. */
static enum flow
dynamic_tables(struct stream *s, struct inflater *z, uint64_t start)
{
	static const uint8_t order[CODELEN_CODES] = {
		16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
	};
	uint8_t codelen_lengths[CODELEN_CODES] = { 0 }, lengths[286 + 30];
	uint32_t codelen_table[1 << CODELEN_ROOT];
	unsigned nlen, ndist, ncode, codelen_root;
	const char *why;
	enum flow flow;

	if (!have_bits(s, 14))
		return FLOW_STOP;
	nlen = take_bits(s, 5) + 257;
	ndist = take_bits(s, 5) + 1;
	ncode = take_bits(s, 4) + 4;
	if (nlen > 286 || ndist > 30)
		return fail(s, "too many length or distance codes", start);
	for (unsigned i = 0; i < ncode; i++) {
		if (!have_bits(s, 3))
			return FLOW_STOP;
		codelen_lengths[order[i]] = (uint8_t)take_bits(s, 3);
	}
	why = build_table(codelen_table, 1 << CODELEN_ROOT, &codelen_root, CODELEN_ROOT,
	    CODE_LENGTHS, codelen_lengths, CODELEN_CODES);
	if (why != NULL)
		return fail(s, why, start);
	flow = read_lengths(s, codelen_table, codelen_root, lengths, nlen + ndist);
	if (flow != FLOW_ON)
		return flow;
	if (lengths[256] == 0)
		return fail(s, "no end-of-block code", start);
	why = build_table(z->litlen, INFLATE_LITLEN_SIZE, &s->litlen_root,
	    INFLATE_LITLEN_ROOT, CODE_LITLEN, lengths, nlen);
	if (why == NULL)
		why = build_table(z->dist, INFLATE_DIST_SIZE, &s->dist_root,
		    INFLATE_DIST_ROOT, CODE_DIST, lengths + nlen, ndist);
	if (why != NULL)
		return fail(s, why, start);
	s->litlen = z->litlen;
	s->dist = z->dist;
	return FLOW_ON;
}

/* The tables of the fixed codes, RFC 1951 3.2.6, 286 and 287 and 30 and 31 included. */
static void
build_fixed(struct inflater *z)
{
	/* each a run of symbols whose codes count up from first_code */
	static const struct {
		uint16_t first_sym, last_sym, first_code, bits;
	} runs[] = {
		{ 0, 143, 0x30, 8 }, { 144, 255, 0x190, 9 }, { 256, 279, 0, 7 },
		{ 280, 287, 0xc0, 8 },
	};

	for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
		unsigned code = runs[r].first_code, bits = runs[r].bits;

		for (unsigned sym = runs[r].first_sym; sym <= runs[r].last_sym; sym++)
			fill(z->fixed_litlen, INFLATE_FIXED_LITLEN_SIZE,
			    reverse_bits(code++, bits), bits,
			    symbol_entry(CODE_LITLEN, sym, bits));
	}
	for (unsigned sym = 0; sym < DIST_CODES; sym++)
		z->fixed_dist[reverse_bits(sym, 5)] = symbol_entry(CODE_DIST, sym, 5);
}

/* One block, header to end; *last says whether it is the final one. */
static enum flow
decode_block(struct stream *s, struct inflater *z, int *fixed_built, int *last)
{
	uint64_t start = bit_position(s);
	enum flow flow;

	if (!have_bits(s, 3))
		return FLOW_STOP;
	*last = (int)take_bits(s, 1);
	switch (take_bits(s, 2)) {
	case 0:
		return stored_block(s);
	case 1:
		if (!*fixed_built)
			build_fixed(z);
		*fixed_built = 1;
		s->litlen = z->fixed_litlen;
		s->dist = z->fixed_dist;
		s->litlen_root = INFLATE_FIXED_LITLEN_ROOT;
		s->dist_root = INFLATE_FIXED_DIST_ROOT;
		break;
	case 2:
		if ((flow = dynamic_tables(s, z, start)) != FLOW_ON)
			return flow;
		break;
	default:
		return fail(s, "invalid block type", start);
	}
	if ((flow = decode_fast(s)) == FLOW_ON)
		flow = decode_careful(s);
	return flow;
}

int
inflate_cluster(struct inflater *z, unsigned char *out, size_t out_len,
    const unsigned char *in, size_t in_len, struct inflate_error *err)
{
	struct stream s;
	int fixed_built = 0, last = 0;
	enum flow flow;

	memset(&s, 0, sizeof(s));
	s.in = in;
	s.in_len = in_len;
	s.out = out;
	s.out_len = out_len;
	s.err = err;
	do
		flow = decode_block(&s, z, &fixed_built, &last);
	while (flow == FLOW_END && !last);
	if (flow == FLOW_FAIL)
		return -1;
	if (s.done == out_len)
		return 0;
	if (flow == FLOW_STOP) {
		err->why = "input ends before the cluster is full";
		err->at = in_len;
	} else {
		err->why = "stream ends before the cluster is full";
		err->at = (size_t)((bit_position(&s) + 7) / 8);
	}
	return -1;
}

/*
 * t/unit_image.c: unit tests of the qcow2 decoder's core, decoder.h (its
 * header, tables, runs and steps: decoder_header.c to decoder.c).
 *
 * Prints TAP, one "ok N - what" line per test.  A failed check prints, as
 * TAP comments before its test's line, the check, where it is, what it was
 * about and both values.
 *
 * Images are built in memory from a model: a list of guest clusters (data,
 * zero, preallocated zero, subclusters) placed in the file by a layout
 * (sqcow2's stream, qemu-img convert's, qcow2-to-stdout.py's, data first,
 * shuffled).  An in-memory driver runs the decoder over the bytes, forward
 * or by offset, checks every promise of decoder.h at every step, and checks
 * every byte of output against the model.  Refusals are made by building
 * a valid image and then corrupting one field.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decoder.h"

#define KiB		(UINT64_C(1) << 10)
#define MiB		(UINT64_C(1) << 20)
#define GiB		(UINT64_C(1) << 30)
#define TiB		(UINT64_C(1) << 40)
#define COPIED		(UINT64_C(1) << 63)
#define COMPRESSED	(UINT64_C(1) << 62)
#define ZERO_FLAG	UINT64_C(1)
#define ALL_SUBCLUSTERS	UINT32_C(0xffffffff)
#define MAX_STEPS	(UINT64_C(1) << 26)	/* a decoding that takes more hangs */

/* The TAP harness, as in t/unit.c */

#define SHOWN_PER_TEST	8

static int tests_run, tests_failed;
static int checks_failed;
static char case_text[1024];

#define TEST(call, what)	(test_begin(), (call), test_end(what))

#define check(expr)		check_at(__LINE__, #expr, (expr) != 0)
#define check_u64(got, want)	check_u64_at(__LINE__, #got, (uint64_t)(got), \
				    #want, (uint64_t)(want))
#define check_fault(r, want)	check_fault_at(__LINE__, (r), #want, (want))

static void
test_begin(void)
{
	checks_failed = 0;
	case_text[0] = '\0';
}

static void
test_end(const char *what)
{
	tests_run++;
	if (checks_failed > SHOWN_PER_TEST)
		printf("# (and %d more failed checks)\n", checks_failed - SHOWN_PER_TEST);
	if (checks_failed > 0)
		tests_failed++;
	printf("%sok %d - %s\n", checks_failed > 0 ? "not " : "", tests_run, what);
	fflush(stdout);
}

static void
set_case(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(case_text, sizeof(case_text), fmt, ap);
	va_end(ap);
}

static int
check_failed(int line, const char *got, const char *op, const char *want)
{
	if (++checks_failed > SHOWN_PER_TEST)
		return 0;
	printf("# check \"%s%s%s\" failed at %s:%d\n", got, op, want, __FILE__, line);
	if (case_text[0] != '\0')
		printf("#   case: %s\n", case_text);
	return 1;
}

static int
check_at(int line, const char *expr, int ok)
{
	if (!ok)
		check_failed(line, expr, "", "");
	return ok;
}

static int
check_u64_at(int line, const char *got_expr, uint64_t got, const char *want_expr,
    uint64_t want)
{
	if (got == want)
		return 1;
	if (check_failed(line, got_expr, " == ", want_expr)) {
		printf("#    got: %" PRIu64 " (0x%" PRIx64 ")\n", got, got);
		printf("#   want: %" PRIu64 " (0x%" PRIx64 ")\n", want, want);
	}
	return 0;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	return p;
}

static void *
xrealloc(void *p, size_t size)
{
	if ((p = realloc(p, size ? size : 1)) == NULL) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	return p;
}

static uint64_t rng_state = 0x2545f4914f6cdd1d;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint64_t
ceil_div(uint64_t n, uint64_t d)
{
	return n / d + (n % d != 0);
}

static void
put_be(unsigned char *p, int bytes, uint64_t v)
{
	while (bytes-- > 0) {
		p[bytes] = (unsigned char)v;
		v >>= 8;
	}
}

/* The model: guest clusters and where the tables go */

enum gkind {
	G_DATA = 1,	/* a cluster of data */
	G_ZERO,		/* the zero flag, no cluster */
	G_PREALLOC,	/* the zero flag and a cluster, which must not be read */
	G_SUB,		/* subclusters: some allocated, some zero, some neither */
};

struct gc {
	uint64_t guest;		/* guest cluster number */
	int kind;
	uint64_t host;		/* host cluster number, when it has one */
	uint32_t alloc, zero;	/* G_SUB: the two halves of the bitmap */
};

struct tref {
	uint64_t index, host;	/* L1 entry, host cluster of its L2 table */
};

struct build {
	int version, extended;
	unsigned bits, refcount_order;
	uint64_t cs, size, l1_size, per_l2, entry;
	struct gc *map;		/* sorted by guest once placed */
	size_t n, cap;
	struct tref *tables;	/* sorted by index */
	size_t ntables;
	uint64_t l1_clusters, rt_clusters, rb_count, total;
	uint64_t l1_at, rt_at, *rb_at;	/* host cluster numbers */
	int with_data;		/* store the data clusters' bytes */
};

/* The built file; bytes past stored read as zeros, past len not at all. */
struct img {
	const struct build *b;
	unsigned char *bytes;
	uint64_t stored, len;
	/* Generated bytes, for images too large to hold */
	void (*gen)(const struct img *, uint64_t, unsigned char *, size_t);
};

/* A byte of data that depends on its guest offset and is never zero. */
static unsigned char
pattern(uint64_t guest)
{
	uint64_t h = (guest + 1) * UINT64_C(0x9e3779b97f4a7c15);

	return (unsigned char)(h >> 56 | 1);
}

static void
b_init(struct build *b, int version, unsigned bits, uint64_t size)
{
	memset(b, 0, sizeof(*b));
	b->version = version;
	b->bits = bits;
	b->cs = UINT64_C(1) << bits;
	b->size = size;
	b->refcount_order = 4;
	b->with_data = 1;
	b->entry = 8;
	b->per_l2 = b->cs / 8;
}

/* Extended L2 entries: 16 bytes each, half as many per table. */
static void
b_extended(struct build *b)
{
	b->extended = 1;
	b->entry = 16;
	b->per_l2 = b->cs / 16;
}

static void
b_add(struct build *b, uint64_t guest, int kind, uint32_t alloc, uint32_t zero)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 64;
		b->map = xrealloc(b->map, b->cap * sizeof(*b->map));
	}
	b->map[b->n].guest = guest;
	b->map[b->n].kind = kind;
	b->map[b->n].host = 0;
	b->map[b->n].alloc = alloc;
	b->map[b->n].zero = zero;
	b->n++;
}

static void
b_data(struct build *b, uint64_t first, uint64_t count)
{
	for (uint64_t g = first; g < first + count; g++)
		b_add(b, g, G_DATA, 0, 0);
}

static void
b_free(struct build *b)
{
	free(b->map);
	free(b->tables);
	free(b->rb_at);
	memset(b, 0, sizeof(*b));
}

static int
cmp_gc(const void *a, const void *b)
{
	uint64_t x = ((const struct gc *)a)->guest, y = ((const struct gc *)b)->guest;

	return (x > y) - (x < y);
}

static int
has_host(const struct gc *g)
{
	return g->kind == G_DATA || g->kind == G_PREALLOC || g->kind == G_SUB;
}

/* Sort the map, find the L2 tables, size the L1 and the refcounts. */
static void
b_count(struct build *b)
{
	uint64_t hosts = 0, per_block, fixed;

	if (b->n > 1)
		qsort(b->map, b->n, sizeof(*b->map), cmp_gc);
	if (b->l1_size == 0)
		b->l1_size = ceil_div(b->size, b->per_l2 * b->cs);
	if (b->n > 0 && b->l1_size <= b->map[b->n - 1].guest / b->per_l2)
		b->l1_size = b->map[b->n - 1].guest / b->per_l2 + 1;	/* past the disk */
	b->l1_clusters = ceil_div(b->l1_size * 8, b->cs);
	free(b->tables);
	b->tables = xcalloc(b->n, sizeof(*b->tables));
	b->ntables = 0;
	for (size_t i = 0; i < b->n; i++) {
		uint64_t index = b->map[i].guest / b->per_l2;

		if (b->ntables == 0 || b->tables[b->ntables - 1].index != index)
			b->tables[b->ntables++].index = index;
		hosts += has_host(&b->map[i]);
	}
	per_block = b->cs * 8 >> b->refcount_order;
	fixed = 1 + b->l1_clusters + b->ntables + hosts;
	b->rb_count = b->rt_clusters = 0;
	for (;;) {
		uint64_t blocks = ceil_div(fixed + b->rt_clusters + b->rb_count, per_block);
		uint64_t table = ceil_div(blocks * 8, b->cs);

		if (blocks == b->rb_count && table == b->rt_clusters)
			break;
		b->rb_count = blocks;
		b->rt_clusters = table;
	}
	b->total = fixed + b->rt_clusters + b->rb_count;
	free(b->rb_at);
	b->rb_at = xcalloc(b->rb_count, sizeof(*b->rb_at));
}

static uint64_t
place_refcounts(struct build *b, uint64_t c)
{
	b->rt_at = c;
	c += b->rt_clusters;
	for (uint64_t i = 0; i < b->rb_count; i++)
		b->rb_at[i] = c++;
	return c;
}

static uint64_t
place_l1(struct build *b, uint64_t c)
{
	b->l1_at = b->l1_clusters > 0 ? c : 0;
	return c + b->l1_clusters;
}

/* The data clusters of L2 table t (all of them if t is NULL), in guest order. */
static uint64_t
place_data(struct build *b, uint64_t c, const struct tref *t)
{
	for (size_t i = 0; i < b->n; i++)
		if (has_host(&b->map[i]) && (t == NULL || b->map[i].guest / b->per_l2 == t->index))
			b->map[i].host = c++;
	return c;
}

static uint64_t
place_tables(struct build *b, uint64_t c)
{
	for (size_t i = 0; i < b->ntables; i++)
		b->tables[i].host = c++;
	return c;
}

/* sqcow2: header | L1 | refcount table | refcount blocks | L2 tables | data */
static void
place_stream(struct build *b)
{
	b_count(b);
	place_data(b, place_tables(b, place_refcounts(b, place_l1(b, 1))), NULL);
}

/* qemu-img convert: header | refcounts | L1 | L2 table, its data | ... */
static void
place_qemu(struct build *b)
{
	uint64_t c;

	b_count(b);
	c = place_l1(b, place_refcounts(b, 1));
	for (size_t i = 0; i < b->ntables; i++) {
		b->tables[i].host = c++;
		c = place_data(b, c, &b->tables[i]);
	}
}

/* qcow2-to-stdout.py: header | refcounts | L1 | L2 tables | data */
static void
place_stdout(struct build *b)
{
	b_count(b);
	place_data(b, place_tables(b, place_l1(b, place_refcounts(b, 1))), NULL);
}

/* sqcow2 -o: header | data | L2 tables | L1 | refcount table | blocks */
static void
place_data_first(struct build *b)
{
	b_count(b);
	place_refcounts(b, place_l1(b, place_tables(b, place_data(b, 1, NULL))));
}

/* Every part anywhere after the header; the L1 and refcount tables whole. */
static void
place_shuffled(struct build *b)
{
	uint64_t *order, n, c = 1;

	b_count(b);
	n = b->total - 1 - (b->l1_clusters > 0 ? b->l1_clusters - 1 : 0) -
	    (b->rt_clusters - 1);
	order = xcalloc(n, sizeof(*order));
	for (uint64_t i = 0; i < n; i++)
		order[i] = i;
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = rng() % i, t = order[i - 1];

		order[i - 1] = order[j];
		order[j] = t;
	}
	/* Item k: 0 L1, 1 refcount table, then blocks, L2 tables, data. */
	for (uint64_t i = 0; i < n; i++) {
		uint64_t k = order[i];

		if (k == 0 && b->l1_clusters > 0) {
			b->l1_at = c;
			c += b->l1_clusters;
			continue;
		}
		if (b->l1_clusters == 0)
			k++;
		if (k == 1) {
			b->rt_at = c;
			c += b->rt_clusters;
		} else if ((k -= 2) < b->rb_count) {
			b->rb_at[k] = c++;
		} else if ((k -= b->rb_count) < b->ntables) {
			b->tables[k].host = c++;
		} else {
			k -= b->ntables;
			for (size_t i2 = 0; i2 < b->n; i2++)
				if (has_host(&b->map[i2]) && k-- == 0)
					b->map[i2].host = c;
			c++;
		}
	}
	free(order);
}

static const struct tref *
table_of(const struct build *b, uint64_t guest)
{
	for (size_t i = 0; i < b->ntables; i++)
		if (b->tables[i].index == guest / b->per_l2)
			return &b->tables[i];
	return NULL;
}

/* Byte offsets of the parts, for tests that corrupt them. */
static uint64_t
l1_entry_at(const struct build *b, uint64_t index)
{
	return b->l1_at * b->cs + index * 8;
}

static uint64_t
l2_entry_at(const struct build *b, uint64_t guest)
{
	return table_of(b, guest)->host * b->cs + guest % b->per_l2 * b->entry;
}

static const struct gc *
gc_of(const struct build *b, uint64_t guest)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->map[i].guest == guest)
			return &b->map[i];
	return NULL;
}

static uint64_t
host_of(const struct build *b, uint64_t guest)
{
	return gc_of(b, guest)->host * b->cs;
}

/* The highest host cluster of metadata, so that data need not be stored. */
static uint64_t
meta_end(const struct build *b)
{
	uint64_t end = b->l1_at + b->l1_clusters;

	end = end > b->rt_at + b->rt_clusters ? end : b->rt_at + b->rt_clusters;
	for (uint64_t i = 0; i < b->rb_count; i++)
		end = end > b->rb_at[i] + 1 ? end : b->rb_at[i] + 1;
	for (size_t i = 0; i < b->ntables; i++)
		end = end > b->tables[i].host + 1 ? end : b->tables[i].host + 1;
	return end * b->cs;
}

/* Set the refcount of host cluster c to 1, in refcount_order's width. */
static void
count_cluster(const struct build *b, unsigned char *p, uint64_t c)
{
	unsigned width = 1u << b->refcount_order;
	uint64_t per_block = b->cs * 8 / width, k = c % per_block;
	unsigned char *block = p + b->rb_at[c / per_block] * b->cs;

	if (width >= 8)
		block[(k + 1) * (width / 8) - 1] = 1;
	else
		block[k * width / 8] |= (unsigned char)(1u << (k * width % 8));
}

static void
write_header(const struct build *b, unsigned char *p)
{
	put_be(p, 4, 0x514649fb);
	put_be(p + 4, 4, (uint64_t)b->version);
	put_be(p + 20, 4, b->bits);
	put_be(p + 24, 8, b->size);
	put_be(p + 36, 4, b->l1_size);
	put_be(p + 40, 8, b->l1_at * b->cs);
	put_be(p + 48, 8, b->rt_at * b->cs);
	put_be(p + 56, 4, b->rt_clusters);
	if (b->version == 3) {
		put_be(p + 72, 8, b->extended ? 16 : 0);
		put_be(p + 96, 4, b->refcount_order);
		put_be(p + 100, 4, 104);
	}
}

/* The L2 entry (and bitmap) of one guest cluster. */
static void
write_entry(const struct build *b, unsigned char *p, const struct gc *g)
{
	uint64_t host = g->host * b->cs, entry = 0, bitmap = 0;

	switch (g->kind) {
	case G_DATA:
		entry = host | COPIED;
		bitmap = ALL_SUBCLUSTERS;
		break;
	case G_ZERO:
		entry = b->extended ? 0 : ZERO_FLAG;
		bitmap = (uint64_t)ALL_SUBCLUSTERS << 32;
		break;
	case G_PREALLOC:
		entry = host | COPIED | (b->extended ? 0 : ZERO_FLAG);
		bitmap = (uint64_t)ALL_SUBCLUSTERS << 32;
		break;
	case G_SUB:
		entry = host | COPIED;
		bitmap = (uint64_t)g->zero << 32 | g->alloc;
		break;
	}
	put_be(p, 8, entry);
	if (b->extended)
		put_be(p + 8, 8, bitmap);
}

/* The bytes of a host cluster holding guest cluster g: junk where unread. */
static void
write_cluster(const struct build *b, unsigned char *p, const struct gc *g)
{
	uint64_t sub = b->extended ? b->cs / 32 : b->cs;

	for (uint64_t i = 0; i < b->cs; i++) {
		uint32_t bit = UINT32_C(1) << (i / sub % 32);
		int data = g->kind == G_DATA || (g->kind == G_SUB && (g->alloc & bit));

		p[i] = data ? pattern(g->guest * b->cs + i) : 0xee;
	}
}

/* Write the image: all of it, or its metadata only (with_data 0). */
static void
b_write(const struct build *b, struct img *im)
{
	uint64_t cs = b->cs;
	unsigned char *p;

	memset(im, 0, sizeof(*im));
	im->b = b;
	im->len = b->total * cs;
	im->stored = b->with_data ? im->len : meta_end(b);
	p = im->bytes = xcalloc(im->stored, 1);
	write_header(b, p);
	count_cluster(b, p, 0);
	for (uint64_t i = 0; i < b->l1_clusters; i++)
		count_cluster(b, p, b->l1_at + i);
	for (uint64_t i = 0; i < b->rt_clusters; i++)
		count_cluster(b, p, b->rt_at + i);
	for (uint64_t i = 0; i < b->rb_count; i++) {
		put_be(p + b->rt_at * cs + i * 8, 8, b->rb_at[i] * cs);
		count_cluster(b, p, b->rb_at[i]);
	}
	for (size_t i = 0; i < b->ntables; i++) {
		put_be(p + l1_entry_at(b, b->tables[i].index), 8,
		    b->tables[i].host * cs | COPIED);
		count_cluster(b, p, b->tables[i].host);
	}
	for (size_t i = 0; i < b->n; i++) {
		const struct gc *g = &b->map[i];

		write_entry(b, p + l2_entry_at(b, g->guest), g);
		if (!has_host(g))
			continue;
		count_cluster(b, p, g->host);
		if (b->with_data)
			write_cluster(b, p + g->host * cs, g);
	}
}

static void
img_free(struct img *im)
{
	free(im->bytes);
	im->bytes = NULL;
}

/* The image cut to len bytes. */
static void
img_cut(struct img *im, uint64_t len)
{
	im->len = len;
	if (im->stored > len)
		im->stored = len;
}

static void
poke(struct img *im, uint64_t offset, int bytes, uint64_t value)
{
	put_be(im->bytes + offset, bytes, value);
}

/* What the disk holds, from the model */

static const struct gc *
find_gc(const struct build *b, uint64_t guest_cluster)
{
	size_t lo = 0, hi = b->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (b->map[mid].guest < guest_cluster)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < b->n && b->map[lo].guest == guest_cluster ? &b->map[lo] : NULL;
}

/* The byte QEMU reads at guest offset g: past the end of the file, 0. */
static unsigned char
expected(const struct img *im, uint64_t g)
{
	const struct build *b = im->b;
	const struct gc *c = find_gc(b, g / b->cs);
	uint64_t in = g % b->cs, sub = b->extended ? b->cs / 32 : b->cs;

	if (c == NULL || !(c->kind == G_DATA ||
	    (c->kind == G_SUB && (c->alloc >> (in / sub) & 1))))
		return 0;
	return c->host * b->cs + in < im->len ? pattern(g) : 0;
}

/* How many of the n bytes read for guest offset g differ from the model. */
static uint64_t
count_bad_bytes(const struct img *im, uint64_t g, const unsigned char *buf, size_t n)
{
	const struct build *b = im->b;
	uint64_t bad = 0, sub = b->extended ? b->cs / 32 : b->cs;

	for (size_t i = 0; i < n; ) {
		uint64_t at = g + i, in = at % b->cs;
		const struct gc *c = find_gc(b, at / b->cs);
		size_t end = n - i < b->cs - in ? n : i + (size_t)(b->cs - in);

		for (; i < end; i++, at++, in++) {
			int data = c != NULL && (c->kind == G_DATA || (c->kind == G_SUB &&
			    (c->alloc >> (in / sub) & 1)));
			unsigned char want = data && c->host * b->cs + in < im->len ?
			    pattern(at) : 0;

			bad += buf[i] != want;
		}
	}
	return bad;
}

/* Whether the disk reads as zeros in [g, g + length). */
static int
expected_zeros(const struct img *im, uint64_t g, uint64_t length)
{
	const struct build *b = im->b;

	for (size_t i = 0; i < b->n; i++) {
		const struct gc *c = &b->map[i];
		uint64_t start = c->guest * b->cs;

		if (start + b->cs <= g || start >= g + length)
			continue;
		if (c->kind != G_DATA && c->kind != G_SUB)
			continue;
		for (uint64_t x = start > g ? start : g; x < start + b->cs &&
		    x < g + length; x++)
			if (expected(im, x) != 0)
				return 0;
	}
	return 1;
}

/* The driver */

/* A file that shrinks while read: the size the decoder is told, if not 0. */
static uint64_t told_file_size;

struct result {
	enum image_fault fault;		/* IMAGE_OK: decoded to STEP_DONE */
	char why[IMAGE_WHY_MAX];
	uint64_t offset;
	int in_header;			/* refused by image_header_parse */
	uint64_t tables, skips, data, zeros, steps;
	size_t memory_peak;
	uint64_t bad_bytes;		/* output bytes that differ from the model */
};

/* Up to n bytes of the image at offset; fewer at its end. */
static size_t
img_read(const struct img *im, uint64_t offset, unsigned char *buf, size_t n)
{
	size_t got, have;

	if (offset >= im->len)
		return 0;
	got = im->len - offset < n ? (size_t)(im->len - offset) : n;
	have = offset < im->stored ? (size_t)(im->stored - offset) : 0;
	if (have > got)
		have = got;
	memcpy(buf, im->bytes + offset, have);
	if (im->gen != NULL)
		im->gen(im, offset + have, buf + have, got - have);
	else
		memset(buf + have, 0, got - have);
	return got;
}

struct drive {
	const struct img *im;
	struct decoder d;
	struct result *r;
	uint64_t position;	/* forward: bytes read so far */
	uint64_t out;		/* the disk is out up to here */
	int content;		/* read DATA and check it against the model */
	unsigned char *buf;
};

static size_t
drive_read(struct drive *dr, uint64_t offset, unsigned char *buf, size_t n)
{
	size_t got;

	if (dr->d.mode == DECODE_FORWARD) {
		check_u64(offset, dr->position);
		dr->position = offset;
	}
	got = img_read(dr->im, offset, buf, n);
	dr->position += got;
	return got;
}

static void
drive_table(struct drive *dr, const struct step *s)
{
	size_t got;

	dr->r->tables++;
	check(s->length > 0 && s->length <= dr->d.hdr.cluster_size);
	got = drive_read(dr, s->host, dr->buf, (size_t)s->length);
	if (got < s->length)
		decoder_input_ended(&dr->d, s->host + got);
	else
		decoder_table(&dr->d, dr->buf, got);
}

static void
drive_data(struct drive *dr, const struct step *s)
{
	dr->r->data++;
	if (!dr->content) {
		if (dr->d.mode == DECODE_FORWARD) {
			check_u64(s->host, dr->position);
			dr->position = s->host + s->length;
		}
		return;
	}
	for (uint64_t done = 0; done < s->length; ) {
		size_t n = s->length - done < MiB ? (size_t)(s->length - done) : MiB;
		size_t got = drive_read(dr, s->host + done, dr->buf, n);

		dr->r->bad_bytes += count_bad_bytes(dr->im, s->guest + done, dr->buf, got);
		done += got;
		if (got < n) {
			dr->out = s->guest + done;	/* zeros for the rest come next */
			decoder_input_ended(&dr->d, s->host + done);
			return;
		}
	}
}

static void
drive_skip(struct drive *dr, const struct step *s)
{
	dr->r->skips++;
	check(dr->d.mode == DECODE_FORWARD);
	check_u64(s->host, dr->position);
	check(s->length > 0);
	if (dr->im->len < s->host + s->length) {
		dr->position = dr->im->len;
		decoder_input_ended(&dr->d, dr->im->len > s->host ? dr->im->len : s->host);
		return;
	}
	dr->position = s->host + s->length;
}

/* Output steps: in guest order, tiling the disk, never outside it. */
static void
drive_output(struct drive *dr, const struct step *s)
{
	if (!check_u64(s->guest, dr->out) || !check(s->length > 0) ||
	    !check(s->length <= dr->d.hdr.virtual_size - s->guest))
		return;
	if (s->kind == STEP_ZEROS) {
		dr->r->zeros++;
		if (dr->content && !expected_zeros(dr->im, s->guest, s->length))
			dr->r->bad_bytes++;
	}
	dr->out += s->length;
}

/*
 * Decode im as mode says, with the memory cap memory_max (0: the default),
 * checking every promise; content: check every output byte too.
 */
static void
decode(const struct img *im, enum decoder_mode mode, int content,
    size_t memory_max, struct result *r)
{
	struct drive dr;
	struct image_header hdr;
	struct image_error err;
	unsigned char probe[IMAGE_PROBE_BYTES], *header;
	uint64_t need;
	size_t got;
	struct step s;

	memset(r, 0, sizeof(*r));
	memset(&dr, 0, sizeof(dr));
	dr.im = im;
	dr.r = r;
	dr.content = content;
	got = img_read(im, 0, probe, sizeof(probe));
	need = image_header_size(probe, got, &err);
	header = xcalloc(need > got ? need : got, 1);
	memcpy(header, probe, got);
	if (need > got && got == sizeof(probe))
		got += img_read(im, got, header + got, need - got);
	if (need == 0 || image_header_parse(&hdr, header, got, &err) != 0) {
		free(header);
		r->fault = err.fault;
		r->offset = err.offset;
		memcpy(r->why, err.why, sizeof(r->why));
		r->in_header = 1;
		check(err.fault != IMAGE_OK);
		return;
	}
	free(header);
	dr.position = hdr.cluster_size;
	dr.buf = xcalloc(hdr.cluster_size > MiB ? hdr.cluster_size : MiB, 1);
	decoder_init(&dr.d, &hdr, mode, told_file_size ? told_file_size : im->len);
	if (memory_max != 0)
		dr.d.memory_max = memory_max;
	while (decoder_next(&dr.d, &s) != STEP_DONE && s.kind != STEP_ERROR) {
		if (++r->steps > MAX_STEPS) {
			check(!"a decoding of so many steps hangs");
			break;
		}
		if (dr.d.memory > r->memory_peak)
			r->memory_peak = dr.d.memory;
		check(dr.d.memory <= dr.d.memory_max);
		if (s.kind == STEP_DATA || s.kind == STEP_ZEROS)
			drive_output(&dr, &s);
		if (s.kind == STEP_TABLE)
			drive_table(&dr, &s);
		else if (s.kind == STEP_SKIP)
			drive_skip(&dr, &s);
		else if (s.kind == STEP_DATA)
			drive_data(&dr, &s);
	}
	if (s.kind == STEP_ERROR) {
		r->fault = dr.d.error.fault;
		r->offset = dr.d.error.offset;
		memcpy(r->why, dr.d.error.why, sizeof(r->why));
		check(r->fault != IMAGE_OK);
		check(r->why[0] != '\0');
	} else {
		check_u64(dr.out, hdr.virtual_size);
		check(decoder_next(&dr.d, &s) == STEP_DONE);
	}
	decoder_free(&dr.d);
	free(dr.buf);
}

static const char *const mode_names[] = { "forward", "seekable" };

/* im decodes, in mode, to the model's disk. */
static int
want_disk(const struct img *im, enum decoder_mode mode)
{
	struct result r;

	decode(im, mode, 1, 0, &r);
	if (r.fault != IMAGE_OK)
		printf("#   %s refused: %s\n", mode_names[mode], r.why);
	return check_u64(r.fault, IMAGE_OK) && check_u64(r.bad_bytes, 0);
}

/* im is refused, in mode, for fault, with a message holding text. */
static int
want_refusal(const struct img *im, enum decoder_mode mode, enum image_fault fault,
    const char *text)
{
	struct result r;
	int ok;

	decode(im, mode, 1, 0, &r);
	check_u64(r.bad_bytes, 0);	/* never wrong output, even before an error */
	ok = check_u64(r.fault, fault) && check(strstr(r.why, text) != NULL);
	if (!ok)
		printf("#   %s: %s\n", mode_names[mode], r.why[0] ? r.why : "decoded");
	return ok;
}

static void
want_both(const struct img *im)
{
	want_disk(im, DECODE_FORWARD);
	want_disk(im, DECODE_SEEKABLE);
}

static void
refused_both(const struct img *im, enum image_fault fault, const char *text)
{
	want_refusal(im, DECODE_FORWARD, fault, text);
	want_refusal(im, DECODE_SEEKABLE, fault, text);
}

/* A model with something of each kind a disk may hold, across L2 tables. */
static void
b_sample(struct build *b, int version, unsigned bits, int zeros)
{
	uint64_t cs = UINT64_C(1) << bits, per_l2 = cs / 8;
	uint64_t clusters = 4 * per_l2 + 10;

	/* The size: not a multiple of the cluster size, nor of 512 at first. */
	b_init(b, version, bits, clusters * cs - cs / 2 - 300);
	b_data(b, 0, 3);
	b_data(b, 5, 1);
	b_data(b, per_l2 - 1, 2);		/* across an L2 table's edge */
	b_data(b, 3 * per_l2 + 7, 1);		/* L2 tables 2 and 3 are empty */
	b_data(b, clusters - 1, 1);		/* the last one, partly in the disk */
	if (zeros) {
		b_add(b, 8, G_ZERO, 0, 0);
		b_add(b, 9, G_PREALLOC, 0, 0);
		b_add(b, per_l2 + 3, G_PREALLOC, 0, 0);
	}
}

/* Tests: layouts */

typedef void (*placer)(struct build *);

static const struct {
	const char *name;
	placer place;
	int forward;	/* decodes from a pipe */
} layouts[] = {
	{ "sqcow2 stream", place_stream, 1 },
	{ "qemu-img convert", place_qemu, 1 },
	{ "qcow2-to-stdout.py", place_stdout, 1 },
	{ "data first (sqcow2 -o)", place_data_first, 0 },
	{ "shuffled", place_shuffled, -1 },	/* either decodes or says order */
};
#define NLAYOUTS	(sizeof(layouts) / sizeof(layouts[0]))

static void
t_layouts(unsigned bits)
{
	for (int version = 2; version <= 3; version++) {
		for (size_t k = 0; k < NLAYOUTS; k++) {
			struct build b;
			struct img im;
			struct result r;

			set_case("%s, version %d, %u-byte clusters", layouts[k].name,
			    version, 1u << bits);
			b_sample(&b, version, bits, version == 3);
			layouts[k].place(&b);
			b_write(&b, &im);
			want_disk(&im, DECODE_SEEKABLE);
			if (layouts[k].forward == 1) {
				want_disk(&im, DECODE_FORWARD);
			} else if (layouts[k].forward == 0) {
				want_refusal(&im, DECODE_FORWARD, IMAGE_ORDER,
				    "save the image to a file first");
			} else {
				decode(&im, DECODE_FORWARD, 1, 0, &r);
				check(r.fault == IMAGE_OK || r.fault == IMAGE_ORDER);
				check_u64(r.bad_bytes, 0);
			}
			img_free(&im);
			b_free(&b);
		}
	}
}

/* Every cluster size, 512 B to 2 MiB, both versions, from a pipe too. */
static void
t_cluster_sizes(void)
{
	for (unsigned bits = 9; bits <= 21; bits++) {
		for (int version = 2; version <= 3; version++) {
			struct build b;
			struct img im;

			set_case("version %d, %u-byte clusters", version, 1u << bits);
			b_init(&b, version, bits, 7 * (UINT64_C(1) << bits) - 512);
			b_data(&b, 1, 2);
			b_data(&b, 6, 1);
			if (version == 3)
				b_add(&b, 4, G_ZERO, 0, 0);
			place_stream(&b);
			b_write(&b, &im);
			want_both(&im);
			img_free(&im);
			b_free(&b);
		}
	}
}

/* Every refcount width: refcounts are never read, only where the blocks are. */
static void
t_refcount_orders(void)
{
	for (unsigned order = 0; order <= 6; order++) {
		struct build b;
		struct img im;

		set_case("refcount_order %u, 512-byte clusters", order);
		b_sample(&b, 3, 9, 1);
		b.refcount_order = order;
		place_stdout(&b);
		b_write(&b, &im);
		want_both(&im);
		img_free(&im);
		b_free(&b);
	}
}

/* Tests: zero clusters and subclusters */

static void
t_zero_clusters(void)
{
	struct build b;
	struct img im;

	set_case("version 3: plain and preallocated zero clusters among data");
	b_init(&b, 3, 16, 20 * 64 * KiB);
	b_data(&b, 0, 2);
	b_add(&b, 2, G_ZERO, 0, 0);
	b_add(&b, 3, G_PREALLOC, 0, 0);		/* its cluster holds junk */
	b_data(&b, 4, 1);
	b_add(&b, 19, G_PREALLOC, 0, 0);
	place_qemu(&b);
	b_write(&b, &im);
	want_both(&im);
	img_free(&im);

	set_case("version 2: the zero flag is a reserved bit");
	b.version = 2;
	place_qemu(&b);
	b_write(&b, &im);
	refused_both(&im, IMAGE_RESERVED_BITS, "reserved bits set");
	img_free(&im);
	b_free(&b);
}

static void
t_subclusters(unsigned bits)
{
	static const uint32_t allocs[] = {
		0x1, 0x80000000, 0x0f0f0f0f, 0xfffffffe, 0x7fffffff, 0x00010000,
	};
	struct build b;
	struct img im;
	uint64_t per_l2 = (UINT64_C(1) << bits) / 16, g = 0;

	set_case("extended L2 entries, %u-byte clusters", 1u << bits);
	b_init(&b, 3, bits, (per_l2 + 20) * (UINT64_C(1) << bits) - 4096);
	b_extended(&b);
	b_data(&b, g++, 1);
	b_add(&b, g++, G_SUB, ALL_SUBCLUSTERS, 0);	/* merges with the one before */
	for (size_t i = 0; i < sizeof(allocs) / sizeof(allocs[0]); i++)
		b_add(&b, g++, G_SUB, allocs[i], ~allocs[i] & 0x00ff00ff);
	b_add(&b, g++, G_SUB, 0, ALL_SUBCLUSTERS);	/* a cluster, all zero */
	b_add(&b, g++, G_SUB, 0, 0);			/* a cluster, none used */
	b_add(&b, g++, G_ZERO, 0, 0);
	b_add(&b, g++, G_PREALLOC, 0, 0);
	b_add(&b, per_l2 - 1, G_SUB, 0x3, 0);		/* across the L2 edge */
	b_add(&b, per_l2, G_SUB, 0xc0000000, 0);
	b_add(&b, per_l2 + 19, G_SUB, ALL_SUBCLUSTERS, 0);	/* cut by the size */
	place_qemu(&b);
	b_write(&b, &im);
	want_both(&im);
	img_free(&im);

	place_stream(&b);
	b_write(&b, &im);
	want_both(&im);
	img_free(&im);
	b_free(&b);
}

static void
t_subcluster_refusals(void)
{
	struct build b;
	struct img im;
	uint64_t at;

	b_init(&b, 3, 16, 8 * 64 * KiB);
	b_extended(&b);
	b_data(&b, 0, 1);
	b_add(&b, 1, G_SUB, 0x0000ffff, 0x00018000);
	place_stream(&b);
	b_write(&b, &im);
	at = l2_entry_at(&b, 1);

	set_case("a subcluster both allocated and zero");
	refused_both(&im, IMAGE_SUBCLUSTERS, "both allocated and zero");

	set_case("subclusters allocated with no cluster");
	poke(&im, at, 8, 0);
	poke(&im, at + 8, 8, 0x1);
	refused_both(&im, IMAGE_SUBCLUSTERS, "allocates subclusters but no cluster");

	set_case("bit 0 of an extended entry is reserved");
	poke(&im, at, 8, host_of(&b, 1) | COPIED | ZERO_FLAG);
	poke(&im, at + 8, 8, 0x1);
	refused_both(&im, IMAGE_RESERVED_BITS, "reserved bits set");

	set_case("an unaligned cluster of subclusters");
	poke(&im, at, 8, (host_of(&b, 1) + 512) | COPIED);
	poke(&im, at + 8, 8, 0x1);
	refused_both(&im, IMAGE_UNALIGNED, "points to unaligned offset");

	set_case("two entries, other subclusters of one host cluster");
	poke(&im, at, 8, host_of(&b, 0) | COPIED);
	poke(&im, at + 8, 8, 0x0);
	poke(&im, l2_entry_at(&b, 0) + 8, 8, 0x0000ffff);
	poke(&im, at + 8, 8, 0xffff0000);
	want_refusal(&im, DECODE_SEEKABLE, IMAGE_OVERLAP,
	    "guest offsets 0 and 98304 both point to the host cluster");
	want_refusal(&im, DECODE_FORWARD, IMAGE_OVERLAP, "already used for guest offset 0");

	set_case("a compressed cluster in an extended table");
	poke(&im, at, 8, COMPRESSED | 12345);
	poke(&im, at + 8, 8, 0);
	refused_both(&im, IMAGE_COMPRESSED, "compressed cluster");

	set_case("extended L2 entries with 8 KiB clusters");
	img_free(&im);
	b_free(&b);
	b_init(&b, 3, 13, 8 * 8 * KiB);
	b_extended(&b);
	b_data(&b, 0, 1);
	place_stream(&b);
	b_write(&b, &im);
	refused_both(&im, IMAGE_CLUSTER_BITS, "at least 16 KiB");
	img_free(&im);
	b_free(&b);
}

/* Subclusters past the end of the disk are not read: nor is their cluster. */
static void
t_subclusters_past_disk(void)
{
	struct build b;
	struct img im;

	set_case("a last cluster whose allocated subclusters are past the disk");
	b_init(&b, 3, 14, 4 * 16 * KiB - 8 * KiB);	/* half of cluster 3 */
	b_extended(&b);
	b_data(&b, 0, 1);
	b_add(&b, 3, G_SUB, 0xffff0000, 0);
	place_stream(&b);
	b_write(&b, &im);
	want_both(&im);
	poke(&im, l2_entry_at(&b, 3), 8, (UINT64_C(1) << 40) | COPIED);
	want_both(&im);		/* past the end of the file, never read */
	poke(&im, l2_entry_at(&b, 3), 8, b.l1_at * 16 * KiB | COPIED);
	want_both(&im);		/* in the L1 table, never read */
	poke(&im, l2_entry_at(&b, 3) + 8, 8, 0x00018000);
	refused_both(&im, IMAGE_OVERLAP, "points into the L1 table");
	img_free(&im);
	b_free(&b);
}

/* Tests: the header */

/* A small valid image to corrupt: 64 KiB clusters, stream layout. */
static void
small_image(struct build *b, struct img *im, int version)
{
	b_init(b, version, 16, 10 * 64 * KiB);
	b_data(b, 1, 2);
	place_stream(b);
	b_write(b, im);
}

static void
t_header_refusals(void)
{
	static const struct {
		const char *what;
		unsigned offset;
		int bytes;
		uint64_t value;
		enum image_fault fault;
		const char *text;
	} cases[] = {
		{ "bad magic", 0, 4, 0x514649fa, IMAGE_NOT_QCOW2, "not a qcow2 image" },
		{ "version 1", 4, 4, 1, IMAGE_VERSION, "unsupported qcow2 version 1" },
		{ "version 4", 4, 4, 4, IMAGE_VERSION, "version 4" },
		{ "cluster_bits 8", 20, 4, 8, IMAGE_CLUSTER_BITS, "bad cluster_bits 8" },
		{ "cluster_bits 22", 20, 4, 22, IMAGE_CLUSTER_BITS, "bad cluster_bits 22" },
		{ "header length 100", 100, 4, 100, IMAGE_BAD_HEADER, "header length 100" },
		{ "header length 108", 100, 4, 108, IMAGE_BAD_HEADER, "header length 108" },
		{ "header length past the cluster", 100, 4, 65544, IMAGE_BAD_HEADER,
		  "header length" },
		{ "corrupt bit", 79, 1, 2, IMAGE_CORRUPT, "marked corrupt" },
		{ "external data file", 79, 1, 4, IMAGE_DATA_FILE, "external data file" },
		{ "unknown incompatible bit 5", 79, 1, 32, IMAGE_FEATURE,
		  "unknown incompatible feature bit 5" },
		{ "unknown incompatible bit 63", 72, 1, 0x80, IMAGE_FEATURE, "bit 63" },
		{ "AES encryption", 32, 4, 1, IMAGE_ENCRYPTED, "crypt_method 1, AES" },
		{ "LUKS encryption", 32, 4, 2, IMAGE_ENCRYPTED, "crypt_method 2, LUKS" },
		{ "refcount_order 7", 96, 4, 7, IMAGE_BAD_HEADER, "refcount_order 7" },
		{ "an L1 table over 32 MiB", 36, 4, 4 * MiB + 1, IMAGE_L1_SIZE, "32 MiB" },
		{ "an L1 table too small", 24, 8, 513 * GiB, IMAGE_L1_SIZE, "too small" },
		{ "an unaligned L1 table", 40, 8, 65536 + 512, IMAGE_UNALIGNED,
		  "L1 table offset 66048 not aligned" },
		{ "an L1 table on the header", 40, 8, 0, IMAGE_OVERLAP, "overlaps the header" },
		{ "an L1 table past 64 PiB", 40, 8, UINT64_C(1) << 56, IMAGE_BAD_HEADER,
		  "past 64 PiB" },
		{ "an L1 table that wraps", 40, 8, UINT64_MAX & ~(64 * KiB - 1),
		  IMAGE_BAD_HEADER, "past 64 PiB" },
		{ "no refcount table", 56, 4, 0, IMAGE_BAD_HEADER, "no refcount table" },
		{ "a refcount table over 8 MiB", 56, 4, 129, IMAGE_BAD_HEADER, "8 MiB" },
		{ "an unaligned refcount table", 48, 8, 131072 + 8, IMAGE_UNALIGNED,
		  "refcount table offset" },
		{ "a refcount table on the header", 48, 8, 0, IMAGE_OVERLAP,
		  "overlaps the header" },
		{ "a refcount table on the L1 table", 48, 8, 65536, IMAGE_OVERLAP,
		  "overlaps the L1 table" },
		{ "a refcount table past 64 PiB", 48, 8, UINT64_C(1) << 56,
		  IMAGE_BAD_HEADER, "past 64 PiB" },
		{ "an extension past the header area", 104, 8, 0x1234567800010000,
		  IMAGE_BAD_HEADER, "header extension at offset 104" },
		{ "an extension that ends a byte past the cluster", 104, 8,
		  0x123456780000ff91, IMAGE_BAD_HEADER, "runs past the end" },
		{ "an extension of 4 GiB", 104, 8, 0x12345678ffffffff, IMAGE_BAD_HEADER,
		  "runs past the end" },
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct build b;
		struct img im;

		set_case("%s", cases[k].what);
		small_image(&b, &im, 3);
		poke(&im, cases[k].offset, cases[k].bytes, cases[k].value);
		if (cases[k].offset == 24)	/* keep l1_size: the size outgrows it */
			poke(&im, 36, 4, 1);
		refused_both(&im, cases[k].fault, cases[k].text);
		img_free(&im);
		b_free(&b);
	}
}

/* Write a header extension at offset; returns the offset after it. */
static unsigned
put_extension(struct img *im, unsigned offset, uint32_t type, const void *data,
    uint32_t len)
{
	poke(im, offset, 4, type);
	poke(im, offset + 4, 4, len);
	memcpy(im->bytes + offset + 8, data, len);
	return offset + 8 + (len + 7) / 8 * 8;
}

static void
t_header_names(void)
{
	static const char name[] = "base image.qcow2";
	unsigned char table[2 * 48] = { 0 };
	struct build b;
	struct img im;
	unsigned at;
	struct result r;

	set_case("a backing file, named");
	small_image(&b, &im, 3);
	memcpy(im.bytes + 512, name, sizeof(name) - 1);
	poke(&im, 8, 8, 512);
	poke(&im, 16, 4, sizeof(name) - 1);
	refused_both(&im, IMAGE_BACKING_FILE, "image has a backing file "
	    "'base image.qcow2': the overlay alone is not the disk");

	set_case("a backing file name with control bytes and quotes, escaped");
	memcpy(im.bytes + 512, "a\033[2J'\n", 7);
	poke(&im, 16, 4, 7);
	refused_both(&im, IMAGE_BACKING_FILE, "'a\\x1b[2J\\x27\\x0a'");

	set_case("a backing file name of 1023 bytes, shortened in the message");
	memset(im.bytes + 512, 'n', 1023);
	poke(&im, 16, 4, 1023);
	refused_both(&im, IMAGE_BACKING_FILE, "nnnnnnnnnn...': the overlay alone");

	set_case("a backing file name out of bounds");
	poke(&im, 8, 8, 65536 - 4);
	refused_both(&im, IMAGE_BACKING_FILE, "out of bounds");
	poke(&im, 8, 8, 512);
	poke(&im, 16, 4, 1024);
	refused_both(&im, IMAGE_BACKING_FILE, "out of bounds");
	img_free(&im);
	b_free(&b);

	set_case("an external data file, named by its extension");
	small_image(&b, &im, 3);
	put_extension(&im, 104, 0x44415441, "disk.raw", 8);
	poke(&im, 79, 1, 4);
	refused_both(&im, IMAGE_DATA_FILE, "external data file 'disk.raw'");
	img_free(&im);
	b_free(&b);

	set_case("an unknown incompatible feature, named by the feature table");
	small_image(&b, &im, 3);
	table[0] = 0;
	table[1] = 4;
	memcpy(table + 2, "extended L2", 11);
	table[48] = 0;
	table[49] = 9;
	memcpy(table + 50, "teleport", 8);
	at = put_extension(&im, 104, 0x6803f857, table, sizeof(table));
	put_extension(&im, at, 0xdeadbeef, "ignored", 7);
	poke(&im, 78, 1, 2);		/* bit 9 */
	refused_both(&im, IMAGE_FEATURE, "unknown incompatible feature bit 9 'teleport'");

	set_case("known extensions, unknown ones, and the dirty and compression bits");
	poke(&im, 78, 1, 0);
	poke(&im, 79, 1, 1 | 8);		/* dirty, compression type */
	poke(&im, 87, 1, 1);			/* lazy refcounts */
	poke(&im, 95, 1, 3);			/* bitmaps, raw data: autoclear */
	want_both(&im);
	decode(&im, DECODE_FORWARD, 1, 0, &r);
	check_u64(r.fault, IMAGE_OK);

	set_case("an extension that ends at the end of the cluster");
	poke(&im, 79, 1, 0);
	poke(&im, 104, 8, 0x123456780000ff90);
	want_both(&im);
	img_free(&im);
	b_free(&b);

	set_case("a longer header: 112 bytes, with a compression type");
	small_image(&b, &im, 3);
	poke(&im, 100, 4, 112);
	poke(&im, 104, 1, 1);
	put_extension(&im, 112, 0x6803f857, table, 48);
	want_both(&im);
	img_free(&im);
	b_free(&b);

	set_case("internal snapshots are ignored: only the active L1 is read");
	small_image(&b, &im, 3);
	poke(&im, 60, 4, 3);
	poke(&im, 64, 8, 0xfffffffff000);	/* nowhere: never read */
	want_both(&im);
	img_free(&im);
	b_free(&b);
}

static void
t_truncated_header(void)
{
	struct build b;
	struct img im;
	struct image_header hdr;
	struct image_error err;

	small_image(&b, &im, 3);
	set_case("empty input");
	check_u64(image_header_size(im.bytes, 0, &err), 0);
	check_u64(err.fault, IMAGE_NOT_QCOW2);
	set_case("two bytes of the magic");
	check_u64(image_header_size(im.bytes, 2, &err), 0);
	check_u64(err.fault, IMAGE_TRUNCATED);
	set_case("the start of a header");
	check_u64(image_header_size(im.bytes, 23, &err), 0);
	check_u64(err.fault, IMAGE_TRUNCATED);
	check_u64(image_header_size(im.bytes, 24, &err), 65536);
	set_case("image_header_parse without image_header_size first");
	im.bytes[0] = 'q';
	check(image_header_parse(&hdr, im.bytes, im.len, &err) == -1);
	check_u64(err.fault, IMAGE_NOT_QCOW2);
	im.bytes[0] = 'Q';
	set_case("a header cut inside its cluster");
	check(image_header_parse(&hdr, im.bytes, 65535, &err) == -1);
	check_u64(err.fault, IMAGE_TRUNCATED);
	check(strstr(err.why, "first cluster of 65536 bytes") != NULL);
	check(image_header_parse(&hdr, im.bytes, 65536, &err) == 0);
	check_u64(hdr.virtual_size, 10 * 64 * KiB);
	check_u64(hdr.l1_used, 1);
	check_u64(hdr.l2_span, 512 * MiB);
	set_case("every cluster size: the probe says how much to read");
	for (unsigned bits = 9; bits <= 21; bits++) {
		poke(&im, 20, 4, bits);
		check_u64(image_header_size(im.bytes, IMAGE_PROBE_BYTES, &err),
		    UINT64_C(1) << bits);
	}
	img_free(&im);
	b_free(&b);
}

/* QEMU reads the size rounded down to 512, and so does sqcow2. */
static void
t_odd_size(void)
{
	struct build b;
	struct img im;
	struct image_header hdr;
	struct image_error err;

	small_image(&b, &im, 3);
	poke(&im, 24, 8, 1000);
	set_case("a size of 1000 bytes");
	check(image_header_parse(&hdr, im.bytes, im.len, &err) == 0);
	check_u64(hdr.size, 1000);
	check_u64(hdr.virtual_size, 512);
	want_both(&im);
	poke(&im, 24, 8, 0);
	set_case("a size of 0");
	want_both(&im);
	img_free(&im);
	b_free(&b);
}

/* Tests: L1, L2 and refcount table entries */

static void
t_l1_refusals(void)
{
	struct build b;
	struct img im;
	uint64_t at;

	b_init(&b, 3, 9, 100 * 64 * 512);	/* 100 L2 tables' worth */
	b_data(&b, 0, 1);
	b_data(&b, 64, 1);
	b_data(&b, 128, 1);
	place_stream(&b);
	b_write(&b, &im);
	at = l1_entry_at(&b, 1);

	set_case("reserved bits in an L1 entry");
	for (int bit = 0; bit < 64; bit++) {
		if ((bit >= 9 && bit <= 55) || bit == 63)
			continue;
		poke(&im, at, 8, b.tables[1].host * 512 | COPIED | UINT64_C(1) << bit);
		refused_both(&im, IMAGE_RESERVED_BITS, "L1 entry 1 at offset");
	}
	set_case("an L1 entry into the L1 table");
	poke(&im, at, 8, b.l1_at * 512 | COPIED);
	refused_both(&im, IMAGE_OVERLAP, "points into the L1 table");
	set_case("an L1 entry into the refcount table");
	poke(&im, at, 8, b.rt_at * 512);
	refused_both(&im, IMAGE_OVERLAP, "points into the refcount table");
	set_case("two L1 entries, one L2 table");
	poke(&im, at, 8, b.tables[0].host * 512 | COPIED);
	refused_both(&im, IMAGE_OVERLAP, "L1 entries 0 and 1 both point to the L2 table");
	set_case("an L1 entry into a refcount block");
	poke(&im, at, 8, b.rb_at[0] * 512);	/* said by whichever is read second */
	refused_both(&im, IMAGE_OVERLAP, "");
	set_case("an L1 entry into data");
	poke(&im, at, 8, host_of(&b, 0));
	refused_both(&im, IMAGE_OVERLAP, "points into the L2 table");
	set_case("an L1 entry past the end of the file");
	poke(&im, at, 8, im.len | COPIED);
	want_refusal(&im, DECODE_SEEKABLE, IMAGE_PAST_END, "past the end of the file");
	want_refusal(&im, DECODE_FORWARD, IMAGE_TRUNCATED, "image truncated at offset");
	img_free(&im);

	set_case("an L1 entry past the end of what maps the disk is not read");
	b.l1_size = 200;
	place_stream(&b);
	b_write(&b, &im);
	poke(&im, l1_entry_at(&b, 150), 8, 0xffffffffffffffff);
	want_both(&im);
	img_free(&im);
	b_free(&b);
}

static void
t_l2_refusals(void)
{
	struct build b;
	struct img im;
	uint64_t at, host;

	b_init(&b, 3, 12, 64 * 4096);
	b_data(&b, 0, 3);
	b_data(&b, 10, 1);
	place_stream(&b);
	b_write(&b, &im);
	at = l2_entry_at(&b, 1);
	host = host_of(&b, 1);

	set_case("reserved bits in an L2 entry");
	for (int bit = 1; bit < 62; bit++) {
		if (bit >= 9 && bit <= 55)
			continue;
		poke(&im, at, 8, host | COPIED | UINT64_C(1) << bit);
		refused_both(&im, IMAGE_RESERVED_BITS, "reserved bits set");
	}
	set_case("a compressed cluster");
	poke(&im, at, 8, COMPRESSED | (host + 100));
	refused_both(&im, IMAGE_COMPRESSED, "compressed cluster at guest offset 4096 "
	    "(L2 entry at offset");
	refused_both(&im, IMAGE_COMPRESSED, "convert it first with qemu-img convert "
	    "-O qcow2 (sqcow2 reads no compressed clusters)");
	set_case("an unaligned cluster");
	poke(&im, at, 8, (host + 512) | COPIED);
	refused_both(&im, IMAGE_UNALIGNED, "points to unaligned offset");
	set_case("an unaligned preallocated zero cluster");
	poke(&im, at, 8, (host + 512) | COPIED | ZERO_FLAG);
	refused_both(&im, IMAGE_UNALIGNED, "points to unaligned offset");
	set_case("offset 0 with COPIED: unallocated, as in QEMU");
	poke(&im, at, 8, 0 | COPIED);
	b.map[1].kind = G_ZERO;
	want_both(&im);
	b.map[1].kind = G_DATA;
	set_case("data in the L1 table");
	poke(&im, at, 8, b.l1_at * 4096 | COPIED);
	refused_both(&im, IMAGE_OVERLAP, "points into the L1 table");
	set_case("data in the refcount table");
	poke(&im, at, 8, b.rt_at * 4096 | COPIED);
	refused_both(&im, IMAGE_OVERLAP, "points into the refcount table");
	set_case("data in a refcount block");
	poke(&im, at, 8, b.rb_at[0] * 4096 | COPIED);
	refused_both(&im, IMAGE_OVERLAP, "points into the refcount block");
	set_case("data in an L2 table");
	poke(&im, at, 8, b.tables[0].host * 4096 | COPIED);
	refused_both(&im, IMAGE_OVERLAP, "points into the L2 table");
	set_case("data past the end of the file");
	poke(&im, at, 8, im.len | COPIED);
	want_refusal(&im, DECODE_SEEKABLE, IMAGE_PAST_END, "past the end of the file");
	set_case("two guest clusters, one host cluster");
	poke(&im, at, 8, host_of(&b, 10) | COPIED);
	want_refusal(&im, DECODE_SEEKABLE, IMAGE_OVERLAP,
	    "guest offsets 4096 and 40960 both point to the host cluster");
	want_refusal(&im, DECODE_FORWARD, IMAGE_ORDER, "save the image to a file first");
	set_case("the cluster just read, again");
	poke(&im, at, 8, host_of(&b, 0) | COPIED);
	want_refusal(&im, DECODE_SEEKABLE, IMAGE_OVERLAP,
	    "guest offsets 0 and 4096 both point to the host cluster");
	want_refusal(&im, DECODE_FORWARD, IMAGE_OVERLAP,
	    "(guest offset 4096) points to the host cluster at 20480, already used "
	    "for guest offset 0");
	set_case("an unaligned L1 entry");
	poke(&im, at, 8, host | COPIED);
	poke(&im, l1_entry_at(&b, 0), 8, (b.tables[0].host * 4096 + 512) | COPIED);
	refused_both(&im, IMAGE_UNALIGNED, "L1 entry 0 at offset 4096 points to "
	    "unaligned offset");
	poke(&im, l1_entry_at(&b, 0), 8, b.tables[0].host * 4096 | COPIED);
	set_case("a preallocated zero cluster is not read, wherever it points");
	poke(&im, at, 8, host_of(&b, 10) | COPIED | ZERO_FLAG);
	b.map[1].kind = G_PREALLOC;	/* the model: it reads as zeros now */
	want_both(&im);
	img_free(&im);
	b_free(&b);
}

static void
t_refcount_refusals(void)
{
	struct build b;
	struct img im;
	uint64_t at;

	for (int qemu = 0; qemu <= 1; qemu++) {
		b_init(&b, 3, 12, 64 * 4096);
		b_data(&b, 0, 3);
		if (qemu)
			place_qemu(&b);		/* refcount table before the L1 */
		else
			place_stream(&b);	/* after the L1 */
		b_write(&b, &im);
		at = b.rt_at * 4096 + 8;	/* a second block */

		set_case("%s: reserved bits in a refcount table entry", qemu ?
		    "qemu-img layout" : "stream layout");
		poke(&im, at, 8, 1);
		refused_both(&im, IMAGE_RESERVED_BITS, "refcount table entry 1");
		set_case("an unaligned refcount block");
		poke(&im, at, 8, 512);
		refused_both(&im, IMAGE_UNALIGNED, "refcount table entry 1");
		set_case("a refcount block past 64 PiB");
		poke(&im, at, 8, UINT64_C(1) << 56);
		refused_both(&im, IMAGE_PAST_END, "past 64 PiB");
		set_case("a refcount block in the L1 table");
		poke(&im, at, 8, b.l1_at * 4096);
		refused_both(&im, IMAGE_OVERLAP, "points into the L1 table");
		set_case("a refcount block in the refcount table");
		poke(&im, at, 8, b.rt_at * 4096);
		refused_both(&im, IMAGE_OVERLAP, "points into the refcount table");
		set_case("a refcount block twice");
		poke(&im, at, 8, b.rb_at[0] * 4096);
		refused_both(&im, IMAGE_OVERLAP, "two refcount table entries");
		set_case("a refcount block in an L2 table");
		poke(&im, at, 8, b.tables[0].host * 4096);
		refused_both(&im, IMAGE_OVERLAP, "");	/* by the second read */
		set_case("a refcount block in data");
		poke(&im, at, 8, host_of(&b, 1));
		refused_both(&im, IMAGE_OVERLAP, "refcount block");
		set_case("a refcount block past the end of the file is not read");
		poke(&im, at, 8, im.len + 40960);
		want_both(&im);
		img_free(&im);
		b_free(&b);
	}
}

/* qemu-img puts the refcount table after data when it outgrows a cluster. */
static void
t_late_refcount_table(void)
{
	struct build b;
	struct img im;
	uint64_t c;

	set_case("refcount table behind data, refcount blocks among it");
	b_init(&b, 3, 9, 300 * 512);
	b.refcount_order = 6;		/* 64 clusters a block: two blocks */
	b_data(&b, 0, 40);
	b_data(&b, 70, 40);
	b_count(&b);
	check_u64(b.rb_count, 2);
	/* header | block 0 | L1 | L2 | data | block 1 | L2 | data | table */
	b.rb_at[0] = 1;
	c = place_l1(&b, 2);
	b.tables[0].host = c++;
	c = place_data(&b, c, &b.tables[0]);
	for (uint64_t i = 1; i < b.rb_count; i++)
		b.rb_at[i] = c++;
	b.tables[1].host = c++;
	c = place_data(&b, c, &b.tables[1]);
	b.rt_at = c;
	b.total = c + b.rt_clusters;
	b_write(&b, &im);
	want_both(&im);

	set_case("refcount table between L2 tables and data, a block on data to come");
	{
		struct build b2;
		struct img im2;
		uint64_t c2;

		b_init(&b2, 3, 9, 300 * 512);
		b_data(&b2, 0, 10);
		b_count(&b2);
		/* header | L1 | L2 | refcount table | block | data */
		c2 = place_l1(&b2, 1);
		b2.tables[0].host = c2++;
		c2 = place_refcounts(&b2, c2);
		place_data(&b2, c2, NULL);
		b_write(&b2, &im2);
		want_both(&im2);
		poke(&im2, b2.rt_at * 512 + 8, 8, host_of(&b2, 5));
		want_refusal(&im2, DECODE_FORWARD, IMAGE_OVERLAP,
		    "lies in the refcount block at 5120");
		want_refusal(&im2, DECODE_SEEKABLE, IMAGE_OVERLAP,
		    "points into the refcount block at 5120");
		img_free(&im2);
		b_free(&b2);
	}

	set_case("refcount table behind data, a block on data already out");
	poke(&im, b.rt_at * 512 + 8 * b.rb_count, 8, host_of(&b, 72));
	refused_both(&im, IMAGE_OVERLAP, "refcount block");
	img_free(&im);
	b_free(&b);
}

/* Tests: order from a pipe */

static void
t_forward_order(void)
{
	struct build b;
	struct img im;
	uint64_t t;

	set_case("a data cluster before the L2 table that maps it");
	b_init(&b, 3, 12, 1024 * 4096);
	b_data(&b, 0, 4);
	b_data(&b, 600, 2);
	place_stream(&b);
	t = b.tables[1].host;		/* swap L2 table 1 and its first data */
	b.tables[1].host = b.map[4].host;
	b.map[4].host = t;
	b_write(&b, &im);
	want_disk(&im, DECODE_SEEKABLE);
	want_refusal(&im, DECODE_FORWARD, IMAGE_ORDER, "comes before the L2 table");
	img_free(&im);

	set_case("an L2 table behind data already passed");
	place_qemu(&b);
	t = b.tables[0].host;		/* L2 1 and its data before L2 0 and its */
	b.tables[1].host = t;
	b.map[4].host = t + 1;
	b.map[5].host = t + 2;
	b.tables[0].host = t + 3;
	for (int i = 0; i < 4; i++)
		b.map[i].host = t + 4 + (uint64_t)i;
	b_write(&b, &im);
	want_disk(&im, DECODE_SEEKABLE);
	want_refusal(&im, DECODE_FORWARD, IMAGE_ORDER, "lies behind offset");
	img_free(&im);

	set_case("data whose guest order differs from its host order");
	place_stream(&b);
	t = b.map[1].host;
	b.map[1].host = b.map[2].host;
	b.map[2].host = t;
	b_write(&b, &im);
	want_disk(&im, DECODE_SEEKABLE);
	want_refusal(&im, DECODE_FORWARD, IMAGE_ORDER, "guest order differs");
	img_free(&im);

	set_case("an L1 table after the tables it points to");
	place_stdout(&b);
	t = b.l1_at;
	b.l1_at = b.tables[1].host;
	b.tables[1].host = b.tables[0].host;
	b.tables[0].host = t;
	b_write(&b, &im);
	want_disk(&im, DECODE_SEEKABLE);
	want_refusal(&im, DECODE_FORWARD, IMAGE_ORDER, "comes before the L1 table");
	img_free(&im);
	b_free(&b);

	/*
	 * L2 table 0 maps nothing but comes after L2 table 1 and its data:
	 * zeros for table 0's span are right once it is read, but table 1's
	 * data has gone by.
	 */
	set_case("data ahead of an L2 table of lower guest offsets");
	b_init(&b, 3, 12, 1024 * 4096);
	b_add(&b, 3, G_ZERO, 0, 0);
	b_data(&b, 600, 2);
	place_stream(&b);
	t = b.tables[0].host;		/* L1 | L2 1 | data | L2 0 */
	b.tables[0].host = b.map[2].host;
	b.map[1].host = t + 1;
	b.map[2].host = t + 2;
	b.tables[1].host = t;
	b_write(&b, &im);
	want_disk(&im, DECODE_SEEKABLE);
	want_refusal(&im, DECODE_FORWARD, IMAGE_ORDER, "lies behind offset");
	img_free(&im);
	b_free(&b);
}

/* Tests: the end of the file */

static void
t_truncated(void)
{
	struct build b;
	struct img im;
	uint64_t last, cs = 4096;

	for (size_t k = 0; k < 3; k++) {
		b_init(&b, 3, 12, 50 * cs - 1536);	/* the last cluster: 2560 bytes */
		b_data(&b, 10, 3);
		b_data(&b, 49, 1);
		layouts[k].place(&b);
		b_write(&b, &im);
		last = host_of(&b, 49);

		set_case("%s: a last cluster cut after the disk's end", layouts[k].name);
		img_cut(&im, last + 2560);
		want_both(&im);
		set_case("%s: a last cluster cut inside the disk", layouts[k].name);
		img_cut(&im, last + 1000);
		want_both(&im);
		img_cut(&im, last + 1);
		want_both(&im);
		set_case("%s: the file ends where the last cluster starts",
		    layouts[k].name);
		img_cut(&im, last);
		want_refusal(&im, DECODE_SEEKABLE, IMAGE_PAST_END, "past the end of the file");
		want_refusal(&im, DECODE_FORWARD, IMAGE_TRUNCATED, "image truncated at offset");
		set_case("%s: the file ends inside a run of data", layouts[k].name);
		img_cut(&im, host_of(&b, 11) + 100);
		want_refusal(&im, DECODE_SEEKABLE, IMAGE_PAST_END, "past the end of the file");
		want_refusal(&im, DECODE_FORWARD, IMAGE_TRUNCATED, "image truncated at offset");
		set_case("%s: the file ends inside an L2 table", layouts[k].name);
		img_cut(&im, b.tables[0].host * cs + 100);
		want_refusal(&im, DECODE_SEEKABLE, IMAGE_PAST_END, "past the end of the file");
		want_refusal(&im, DECODE_FORWARD, IMAGE_TRUNCATED, "inside the L2 table");
		set_case("%s: the file ends inside the L1 table", layouts[k].name);
		img_cut(&im, b.l1_at * cs + 4);
		want_refusal(&im, DECODE_SEEKABLE, IMAGE_PAST_END, "L1 table at offset");
		want_refusal(&im, DECODE_FORWARD, IMAGE_TRUNCATED, "inside the L1 table");
		set_case("%s: the file ends after the header", layouts[k].name);
		img_cut(&im, cs);
		want_refusal(&im, DECODE_SEEKABLE, IMAGE_PAST_END, "runs past the end");
		want_refusal(&im, DECODE_FORWARD, IMAGE_TRUNCATED, "image truncated at offset");
		img_free(&im);
		b_free(&b);
	}
}

/* The end of the file, met in other places. */
static void
t_truncated_more(void)
{
	struct build b;
	struct img im;
	struct result r;

	set_case("a short last cluster of a run, with more data to come");
	b_init(&b, 3, 12, 50 * 4096);
	b_data(&b, 10, 3);
	b_data(&b, 49, 1);
	place_stream(&b);
	b_write(&b, &im);
	img_cut(&im, host_of(&b, 12) + 100);
	want_refusal(&im, DECODE_FORWARD, IMAGE_TRUNCATED, "image truncated at offset "
	    "28772: the data cluster at 32768 (guest offset 200704) is missing");
	want_refusal(&im, DECODE_SEEKABLE, IMAGE_PAST_END, "past the end of the file");

	set_case("a file that shrinks while read");
	told_file_size = b.total * 4096;
	want_refusal(&im, DECODE_SEEKABLE, IMAGE_TRUNCATED, "image truncated at offset "
	    "28772: the data cluster at 32768 (guest offset 200704) is missing");
	img_free(&im);
	b_write(&b, &im);
	img_cut(&im, host_of(&b, 49) + 100);
	want_disk(&im, DECODE_SEEKABLE);	/* a short last cluster, even so */
	told_file_size = 0;
	img_free(&im);
	b_free(&b);

	set_case("the end of the file in a gap skipped before data");
	b_init(&b, 3, 12, 50 * 4096);
	b_data(&b, 0, 1);
	b_add(&b, 1, G_PREALLOC, 0, 0);
	b_data(&b, 2, 1);
	place_stream(&b);
	b_write(&b, &im);
	img_cut(&im, host_of(&b, 1) + 10);
	want_refusal(&im, DECODE_FORWARD, IMAGE_TRUNCATED, "the data cluster at");
	want_refusal(&im, DECODE_SEEKABLE, IMAGE_PAST_END, "past the end of the file");
	img_free(&im);
	b_free(&b);

	set_case("subclusters past the end of a file cut in their cluster");
	b_init(&b, 3, 14, 4 * 16 * KiB);
	b_extended(&b);
	b_data(&b, 0, 1);
	b_add(&b, 3, G_SUB, 0x80000001, 0);
	place_stream(&b);
	b_write(&b, &im);
	img_cut(&im, host_of(&b, 3) + 1024);
	want_both(&im);
	decode(&im, DECODE_SEEKABLE, 1, 0, &r);
	check_u64(r.data, 2);		/* cluster 0, subcluster 0 of cluster 3 */
	img_free(&im);
	b_free(&b);
}

/* Tests: memory and steps */

static void
t_memory_cap_lowered(void)
{
	struct build b;
	struct img im;
	struct result r;

	set_case("2000 runs of data, with room for fewer");
	b_init(&b, 3, 9, 8000 * 512);
	for (uint64_t g = 0; g < 4000; g += 2)
		b_data(&b, g, 1);
	place_stream(&b);
	b_write(&b, &im);
	for (int mode = 0; mode <= 1; mode++) {
		decode(&im, (enum decoder_mode)mode, 1, 0, &r);
		check_u64(r.fault, IMAGE_OK);
		check(r.memory_peak >= 2000 * sizeof(struct data_run));
		decode(&im, (enum decoder_mode)mode, 1, 16 * KiB, &r);
		check_u64(r.fault, IMAGE_MEMORY);
		check(strstr(r.why, "memory cap") != NULL);
		check(strstr(r.why, "runs of data") != NULL);
		check(r.memory_peak <= 16 * KiB);
	}
	set_case("from a pipe, runs are freed as they go out");
	img_free(&im);
	b_free(&b);
	b_init(&b, 3, 9, 8000 * 512);
	for (uint64_t g = 0; g < 4000; g += 2)
		b_data(&b, g, 1);
	place_qemu(&b);
	b_write(&b, &im);
	decode(&im, DECODE_FORWARD, 1, 8 * KiB, &r);
	check_u64(r.fault, IMAGE_OK);
	decode(&im, DECODE_SEEKABLE, 1, 8 * KiB, &r);
	check_u64(r.fault, IMAGE_MEMORY);
	img_free(&im);
	b_free(&b);

	set_case("many L2 tables, with room for fewer");
	b_init(&b, 3, 9, 2000 * 64 * 512);
	for (uint64_t t = 0; t < 2000; t++)
		b_data(&b, t * 64, 1);
	place_qemu(&b);
	b_write(&b, &im);
	decode(&im, DECODE_FORWARD, 1, 8 * KiB, &r);
	check_u64(r.fault, IMAGE_MEMORY);
	check(strstr(r.why, "L1 entries in use") != NULL);
	img_free(&im);
	b_free(&b);
}

/*
 * The real cap: L2 tables of 2 MiB clusters, made as they are read, each
 * mapping every other cluster, so 131072 runs each; the data is never
 * reached.  Forward, as a pipe would bring it.
 */
static void
gen_sparse_tables(const struct img *im, uint64_t offset, unsigned char *buf,
    size_t n)
{
	const uint64_t cs = 2 * MiB, first_table = 3, data = UINT64_C(1) << 50;

	memset(buf, 0, n);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t at = offset + i, table = at / cs, entry = at % cs / 8;
		uint64_t n_tables = im->b->ntables;

		if (at % 8 != 0 || table < first_table || table >= first_table + n_tables ||
		    entry % 2 != 0)
			continue;
		put_be(buf + i, 8, (data + ((table - first_table) * (cs / 16) +
		    entry / 2) * cs) | COPIED);
	}
}

static void
t_memory_cap_real(void)
{
	const uint64_t cs = 2 * MiB, per_l2 = cs / 8, tables = 100;
	struct build b;
	struct img im;
	struct result r;
	unsigned char *p;

	set_case("%ju L2 tables of 131072 runs each", (uintmax_t)tables);
	b_init(&b, 3, 21, tables * per_l2 * cs);
	b.ntables = tables;
	b.l1_size = tables;
	/* header | L1 | refcount table | L2 tables made by gen_sparse_tables */
	p = xcalloc(3 * cs, 1);
	put_be(p, 4, 0x514649fb);
	put_be(p + 4, 4, 3);
	put_be(p + 20, 4, 21);
	put_be(p + 24, 8, b.size);
	put_be(p + 36, 4, tables);
	put_be(p + 40, 8, cs);
	put_be(p + 48, 8, 2 * cs);
	put_be(p + 56, 4, 1);
	put_be(p + 96, 4, 4);
	put_be(p + 100, 4, 104);
	for (uint64_t t = 0; t < tables; t++)
		put_be(p + cs + t * 8, 8, (3 + t) * cs | COPIED);
	memset(&im, 0, sizeof(im));
	im.b = &b;
	im.bytes = p;
	im.stored = 3 * cs;
	im.len = UINT64_C(1) << 52;
	im.gen = gen_sparse_tables;
	decode(&im, DECODE_FORWARD, 0, 0, &r);
	check_u64(r.fault, IMAGE_MEMORY);
	check(strstr(r.why, "256 MiB memory cap") != NULL);
	check(r.memory_peak <= IMAGE_MEMORY_MAX);
	check(r.memory_peak > IMAGE_MEMORY_MAX / 2);
	printf("# %s\n", r.why);
	free(p);
	b.ntables = 0;
	b_free(&b);
}

/* 64 TiB, 10 MiB of data in three places: few steps, little memory. */
static void
t_huge_sparse(void)
{
	struct build b;
	struct img im;
	struct result r;

	for (int qemu = 0; qemu <= 1; qemu++) {
		set_case("64 TiB, 10 MiB of data, %s layout", qemu ? "qemu-img" : "stream");
		b_init(&b, 3, 16, 64 * TiB);
		b_data(&b, 0, 16);
		b_data(&b, 20 * TiB / (64 * KiB), 80);
		b_data(&b, 64 * TiB / (64 * KiB) - 64, 64);
		if (qemu)
			place_qemu(&b);
		else
			place_stream(&b);
		b_write(&b, &im);
		for (int mode = 0; mode <= 1; mode++) {
			decode(&im, (enum decoder_mode)mode, 1, 0, &r);
			check_u64(r.fault, IMAGE_OK);
			check_u64(r.bad_bytes, 0);
			check(r.data <= 3);
			check(r.zeros <= 4);
			check(r.steps <= 40);	/* 16 L1 clusters, 3 L2 tables, ... */
			check(r.memory_peak <= 8 * KiB);
		}
		img_free(&im);
		b_free(&b);
	}
}

/* 1 GiB, every cluster data: one DATA step, or one per L2 table. */
static void
t_dense(void)
{
	struct build b;
	struct img im;
	struct result r;

	set_case("1 GiB of data, 64 KiB clusters, stream layout");
	b_init(&b, 3, 16, GiB);
	b_data(&b, 0, GiB / (64 * KiB));
	b.with_data = 0;
	place_stream(&b);
	b_write(&b, &im);
	for (int mode = 0; mode <= 1; mode++) {
		decode(&im, (enum decoder_mode)mode, 0, 0, &r);
		check_u64(r.fault, IMAGE_OK);
		check_u64(r.data, 1);
		check_u64(r.zeros, 0);
		check(r.steps <= 8);
		check(r.memory_peak <= 4 * KiB);
	}
	img_free(&im);
	b_free(&b);

	set_case("1 GiB of data, 64 KiB clusters, qemu-img layout, from a pipe");
	b_init(&b, 3, 16, GiB);
	b_data(&b, 0, GiB / (64 * KiB));
	b.with_data = 0;
	place_qemu(&b);		/* stored to the second L2 table, untouched: lazily zero */
	b_write(&b, &im);
	decode(&im, DECODE_FORWARD, 0, 0, &r);
	check_u64(r.fault, IMAGE_OK);
	check_u64(r.data, 2);
	check(r.steps <= 10);
	img_free(&im);
	b_free(&b);
}

/* Tests: the protocol */

static void
t_misuse(void)
{
	struct build b;
	struct img im;
	struct image_header hdr;
	struct image_error err;
	struct decoder d;
	struct step s;

	small_image(&b, &im, 3);
	check(image_header_parse(&hdr, im.bytes, im.len, &err) == 0);

	set_case("decoder_next before decoder_table");
	decoder_init(&d, &hdr, DECODE_FORWARD, 0);
	check_u64(decoder_next(&d, &s), STEP_TABLE);
	check_u64(s.host, 65536);
	check_u64(decoder_next(&d, &s), STEP_ERROR);
	check_u64(d.error.fault, IMAGE_MISUSE);
	check_u64(decoder_next(&d, &s), STEP_ERROR);
	decoder_free(&d);

	set_case("decoder_table with the wrong length");
	decoder_init(&d, &hdr, DECODE_SEEKABLE, im.len);
	check_u64(decoder_next(&d, &s), STEP_TABLE);
	check(decoder_table(&d, im.bytes + s.host, (size_t)s.length + 1) == -1);
	check_u64(d.error.fault, IMAGE_MISUSE);
	decoder_free(&d);

	set_case("decoder_input_ended outside the last step");
	decoder_init(&d, &hdr, DECODE_FORWARD, 0);
	check_u64(decoder_next(&d, &s), STEP_TABLE);
	check(decoder_input_ended(&d, s.host + s.length) == -1);
	check_u64(d.error.fault, IMAGE_MISUSE);
	decoder_free(&d);

	set_case("decoder_table when no table was asked for");
	decoder_init(&d, &hdr, DECODE_FORWARD, 0);
	check(decoder_table(&d, im.bytes, 8) == -1);
	check_u64(d.error.fault, IMAGE_MISUSE);
	decoder_free(&d);

	set_case("a decoder freed twice, and initialised again");
	decoder_init(&d, &hdr, DECODE_SEEKABLE, im.len);
	decoder_free(&d);
	decoder_free(&d);
	img_free(&im);
	b_free(&b);
}

static void
t_data_map(void)
{
	static const struct step steps[] = {
		{ STEP_TABLE, 65536, 0, 512 },
		{ STEP_DATA, 1000, 0, 4096 },
		{ STEP_DATA, 9000, 4096, 4096 },	/* touches: joined */
		{ STEP_ZEROS, 0, 8192, 4096 },
		{ STEP_SKIP, 20000, 0, 100 },
		{ STEP_DATA, 30000, 12288, 512 },
		{ STEP_ZEROS, 0, 12800, 512 },
		{ STEP_ZEROS, 0, 13312, 512 },
		{ STEP_DATA, 40000, 13824, 1024 },
		{ STEP_DONE, 0, 0, 0 },
	};
	static const uint64_t want[][2] = { { 0, 8192 }, { 12288, 512 }, { 13824, 1024 } };
	struct data_map map = { 0, 0 }, done;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (!data_map_add(&map, &steps[i], &done))
			continue;
		if (!check(n < 3))
			break;
		check_u64(done.offset, want[n][0]);
		check_u64(done.length, want[n][1]);
		n++;
	}
	check_u64(n, 3);
}

/* Many random small images in random layouts: forward agrees with seekable. */
static void
t_random(int cases)
{
	for (int c = 0; c < cases; c++) {
		unsigned bits = 9 + (unsigned)(rng() % 4);
		int version = 2 + (int)(rng() % 2), ext = version == 3 && rng() % 4 == 0;
		struct build b;
		struct img im;
		struct result fw, sk;
		uint64_t clusters, cut;

		if (ext)
			bits = 14;
		set_case("random image %d: version %d, %u-byte clusters%s", c, version,
		    1u << bits, ext ? ", extended L2" : "");
		b_init(&b, version, bits, 0);
		if (ext)
			b_extended(&b);
		clusters = 1 + rng() % (3 * b.per_l2 + 5 < 600 ? 3 * b.per_l2 + 5 : 600);
		b.size = clusters * b.cs;
		cut = (rng() % 4) * 512;
		if (cut < b.size)
			b.size -= cut;
		for (uint64_t g = 0; g < clusters; g++) {
			uint64_t roll = rng() % 8;

			if (roll < 3)
				b_data(&b, g, 1);
			else if (roll == 3 && version == 3)
				b_add(&b, g, G_ZERO, 0, 0);
			else if (roll == 4 && version == 3)
				b_add(&b, g, G_PREALLOC, 0, 0);
			else if (roll == 5 && ext) {
				uint32_t alloc = (uint32_t)rng();

				b_add(&b, g, G_SUB, alloc, (uint32_t)rng() & ~alloc);
			}
		}
		layouts[rng() % NLAYOUTS].place(&b);
		b_write(&b, &im);
		if (rng() % 4 == 0 && b.n > 0 && has_host(&b.map[b.n - 1]))
			img_cut(&im, b.map[b.n - 1].host * b.cs + 1 + rng() % b.cs);
		decode(&im, DECODE_SEEKABLE, 1, 0, &sk);
		decode(&im, DECODE_FORWARD, 1, 0, &fw);
		check_u64(sk.bad_bytes, 0);
		check_u64(fw.bad_bytes, 0);
		if (sk.fault != IMAGE_OK && sk.fault != IMAGE_PAST_END)
			printf("#   seekable: %s\n", sk.why);
		if (fw.fault != IMAGE_OK && fw.fault != IMAGE_ORDER &&
		    fw.fault != IMAGE_TRUNCATED)
			printf("#   forward: %s\n", fw.why);
		if (fw.fault == IMAGE_OK)
			check_u64(sk.fault, IMAGE_OK);
		if (im.len == b.total * b.cs || sk.fault != IMAGE_PAST_END)
			check_u64(sk.fault, IMAGE_OK);
		check(fw.fault == IMAGE_OK || fw.fault == IMAGE_ORDER ||
		    (fw.fault == IMAGE_TRUNCATED && sk.fault != IMAGE_OK));
		img_free(&im);
		b_free(&b);
	}
}

int
main(int argc, char **argv)
{
	int cases = argc > 1 ? atoi(argv[1]) : 300;

	TEST(t_layouts(9), "layouts, version 2 and 3, 512 B clusters: from a file, and from a pipe in stream order");
	TEST(t_layouts(12), "layouts, version 2 and 3, 4 KiB clusters");
	TEST(t_layouts(16), "layouts, version 2 and 3, 64 KiB clusters");
	TEST(t_layouts(21), "layouts, version 2 and 3, 2 MiB clusters");
	TEST(t_cluster_sizes(), "every cluster size from 512 B to 2 MiB, both versions, both modes");
	TEST(t_refcount_orders(), "every refcount width from 1 to 64 bits, in qcow2-to-stdout.py's layout");
	TEST(t_zero_clusters(), "zero clusters: plain and preallocated read as zeros; not in version 2");
	TEST(t_subclusters(14), "extended L2 entries, 16 KiB clusters: subclusters allocated, zero, neither");
	TEST(t_subclusters(16), "extended L2 entries, 64 KiB clusters");
	TEST(t_subclusters(21), "extended L2 entries, 2 MiB clusters");
	TEST(t_subclusters_past_disk(), "extended L2 entries: subclusters past the disk's end are not read, wherever they point");
	TEST(t_subcluster_refusals(), "extended L2 entries: bitmaps QEMU calls invalid, reserved bit 0, small clusters");
	TEST(t_header_refusals(), "header fields out of bounds are refused, naming the offset");
	TEST(t_header_names(), "backing file, data file and feature names in messages; dirty bit, extensions, snapshots accepted");
	TEST(t_truncated_header(), "a short or empty input, and the probe of each cluster size");
	TEST(t_odd_size(), "a size not a multiple of 512 reads rounded down, as in QEMU");
	TEST(t_l1_refusals(), "L1 entries: reserved bits, into metadata, twice, past the end");
	TEST(t_l2_refusals(), "L2 entries: reserved bits, compressed, unaligned, into metadata, twice, past the end");
	TEST(t_refcount_refusals(), "refcount table entries: reserved bits, unaligned, into metadata, twice");
	TEST(t_late_refcount_table(), "a refcount table behind data, as qemu-img writes 512 B clusters");
	TEST(t_forward_order(), "from a pipe, each kind of disorder is refused; from a file it decodes");
	TEST(t_truncated(), "a file ending in its last cluster reads zeros; ending sooner is refused");
	TEST(t_truncated_more(), "the end of the file after a short cluster, in a gap, in subclusters, or moved");
	TEST(t_memory_cap_lowered(), "memory: an image over a lowered cap is refused, saying so");
	TEST(t_memory_cap_real(), "memory: an image over IMAGE_MEMORY_MAX is refused, holding at most the cap");
	TEST(t_huge_sparse(), "64 TiB with 10 MiB of data: a few steps, a few KiB of memory");
	TEST(t_dense(), "1 GiB all data: one DATA step, or one per L2 table");
	TEST(t_misuse(), "the protocol: a caller that breaks it gets IMAGE_MISUSE");
	TEST(t_data_map(), "data_map_add joins touching DATA steps, ends at gaps and STEP_DONE");
	TEST(t_random(cases), "random images in random layouts: the model's disk, or a refusal that is right");
	printf("1..%d\n", tests_run);
	return tests_failed > 0;
}

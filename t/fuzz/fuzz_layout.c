/*
 * t/fuzz/fuzz_layout.c: layout.c on layouts the input describes, every
 * metadata cluster decoded as a reader would and checked against a count
 * of the same ranges made here without layout.c.
 *
 * The input, read a byte at a time (zeros once it runs out):
 *
 *	flags		bits 0-1: cluster_bits 9 + (0..3); bit 2: data first;
 *			bit 3: set the header; bit 4: give layout_init the
 *			ranges as made, not merged; bit 5: move the data
 *			first before, not after, setting the header
 *	magnitude, u32	the disk size: the u32 cut to magnitude % (bits + 21)
 *			bits, so that the guest has at most 2^20 clusters
 *	[header]	if flags bit 3: version, which, then if which bit 0 a
 *			u16 name length and a seed, if bit 1 a format length
 *			and a seed
 *	ranges		the rest: up to 64, each a byte saying how and the
 *			bytes it asks for (see make_ranges)
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "ranges.h"
#include "fuzz.h"

#define QCOW_MAGIC	0x514649fbu
#define EXT_BACKING_FORMAT 0xe2792acau
#define COPIED		(UINT64_C(1) << 63)
#define OFFSET_MASK	UINT64_C(0x00fffffffffffe00)	/* bits 9-55 */
#define MAX_GUEST_BITS	20	/* 512 MiB of 512-byte clusters, 4 GiB of 4 KiB */
#define MAX_DATA	(1u << 15)	/* clusters the ranges may touch, summed */
#define MAX_RANGES	64
#define MAX_NAME	1100	/* past the 1023 bytes a name may have */
#define MAX_FORMAT	20	/* past the 15 bytes a format may have */
#define NOT_META	UINT64_MAX

struct input {
	const uint8_t *p;
	size_t n;
};

/* The image these ranges make, counted here without layout.c. */
struct model {
	unsigned bits;
	uint64_t cs, per_table, per_block;
	uint64_t virtual_size, guest_clusters, l1_entries, l1_clusters;
	uint64_t l2_tables, data_clusters, table_clusters, blocks, total;
	int data_first;
	uint64_t l1_at, table_at, blocks_at, l2_at, data_at;	/* host clusters */
	uint64_t *touched;	/* bit per guest cluster, l1_entries tables' worth */
};

/* The header asked for. */
struct header {
	int set, version;
	const char *name, *format;
};

#define U(x)		((unsigned long long)(x))

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	need(p != NULL, "out of memory");
	return p;
}

static unsigned
take(struct input *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static uint64_t
take_u16(struct input *in)
{
	uint64_t lo = take(in);

	return lo | (uint64_t)take(in) << 8;
}

static uint64_t
take_u32(struct input *in)
{
	uint64_t lo = take_u16(in);

	return lo | take_u16(in) << 16;
}

/* 0 to just under 2^31, as likely small as large; large ones are aligned. */
static uint64_t
take_scaled(struct input *in)
{
	unsigned shift = take(in) & 31;

	return take_u16(in) << shift >> 16;
}

static uint64_t
ceil_div(uint64_t n, uint64_t d)
{
	return n / d + (n % d != 0);
}

static uint64_t
back(uint64_t x, uint64_t d)
{
	return x > d ? x - d : 0;
}

static uint64_t
be(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

static int
all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

/* A name of len bytes, none of them NUL, from a seed. */
static void
make_name(char *s, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		s[i] = (char)(1 + (seed + i * 37) % 255);
	s[len] = '\0';
}

/*
 * Up to MAX_RANGES ranges.  The low two bits of each one's first byte say
 * where it starts: a scaled gap after the last one, anywhere, near a
 * cluster boundary or near an L2 table's boundary; the next two say how
 * long it is: scaled, near a number of clusters, near a number of L2
 * tables' worth, or to the end of the disk.  Ranges are kept inside the
 * disk unless raw and bit 7 is set; empty ones only when raw.  They touch
 * at most MAX_DATA clusters between them, so that a run stays quick.
 */
static size_t
make_ranges(struct input *in, uint64_t size, unsigned bits, int raw, struct range *v)
{
	uint64_t cs = UINT64_C(1) << bits, span = cs << (bits - 3);
	uint64_t pos = 0, budget = MAX_DATA;
	size_t n = 0;

	while (in->n > 0 && n < MAX_RANGES) {
		unsigned how = take(in), k, d;
		uint64_t offset, length;

		switch (how & 3) {
		case 0:
			offset = pos + take_scaled(in);
			break;
		case 1:
			offset = take_scaled(in);
			break;
		case 2:
			k = take(in);
			offset = ceil_div(pos, cs) * cs + (k >> 4) * cs;
			d = k & 7;
			offset = k & 8 ? offset + d : back(offset, d);
			break;
		default:
			k = take(in);
			offset = (pos / span + 1 + (k >> 5)) * span;
			d = k & 15;
			offset = k & 16 ? offset + d : back(offset, d);
			break;
		}
		switch (how >> 2 & 3) {
		case 0:
			length = take_scaled(in);
			break;
		case 1:
			k = take(in);
			length = (k >> 3) * cs;
			d = k & 3;
			length = k & 4 ? length + d : back(length, d);
			break;
		case 2:
			k = take(in);
			length = (k >> 5) * span;
			d = k & 15;
			length = k & 16 ? length + d : back(length, d);
			break;
		default:
			length = UINT64_MAX;	/* to the end of the disk */
			break;
		}
		if (!raw || !(how & 0x80)) {
			if (size == 0)
				break;
			offset %= size;
			if (length > size - offset)
				length = size - offset;
		} else if (length == UINT64_MAX) {
			length = offset < size ? size - offset : 1;
		}
		if (length > 0) {
			uint64_t first = offset >> bits;
			uint64_t clusters = ((offset + length - 1) >> bits) - first + 1;

			if (budget == 0)
				break;
			if (clusters > budget) {
				length = ((first + budget) << bits) - offset;
				clusters = budget;
			}
			budget -= clusters;
		} else if (!raw) {
			continue;
		}
		v[n].offset = offset;
		v[n].length = length;
		n++;
		pos = offset + length;
	}
	return n;
}

/*
 * What layout_init must say of ranges given as they are: the first bad
 * one is unsorted, overlapping or empty, or past the disk.  Returns a
 * bit for each error that would be right, 0 if none.
 */
static unsigned
range_errors(const struct range *v, size_t n, uint64_t size)
{
	uint64_t end = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned why = 0;

		if (v[i].length == 0 || (i > 0 && v[i].offset < end))
			why |= 1u << LAYOUT_RANGE_ORDER;
		if (v[i].offset > size || v[i].length > size - v[i].offset)
			why |= 1u << LAYOUT_RANGE_BEYOND;
		if (why)
			return why;
		end = v[i].offset + v[i].length;
	}
	return 0;
}

/* The same for layout_set_header, counting the bytes cluster 0 needs. */
static unsigned
header_errors(const struct header *h, uint64_t cs)
{
	unsigned why = 0;
	size_t need_bytes = h->version == 2 ? 72 : 104;

	if (h->version != 2 && h->version != 3)
		why |= 1u << LAYOUT_BAD_VERSION;
	if (h->format != NULL && strlen(h->format) > 15)
		why |= 1u << LAYOUT_BACKING_FORMAT_TOO_LONG;
	if (h->name == NULL)
		return why;
	if (strlen(h->name) > 1023)
		why |= 1u << LAYOUT_BACKING_TOO_LONG;
	if (why & 1u << LAYOUT_BAD_VERSION)
		return why;	/* no header length to count with */
	if (h->format != NULL)
		need_bytes += 8 + (strlen(h->format) + 7) / 8 * 8;
	need_bytes += 8 + strlen(h->name);
	if (need_bytes > cs)
		why |= 1u << LAYOUT_BACKING_DOES_NOT_FIT;
	return why;
}

static unsigned
popcount(uint64_t w)
{
	unsigned n = 0;

	for (; w != 0; w &= w - 1)
		n++;
	return n;
}

static int
is_touched(const struct model *m, uint64_t c)
{
	return m->touched[c / 64] >> (c % 64) & 1;
}

/* Mark guest clusters [first, end) a word at a time. */
static void
touch(struct model *m, uint64_t first, uint64_t end)
{
	while (first < end && first % 64 != 0) {
		m->touched[first / 64] |= UINT64_C(1) << (first % 64);
		first++;
	}
	for (; first + 64 <= end; first += 64)
		m->touched[first / 64] = UINT64_MAX;
	for (; first < end; first++)
		m->touched[first / 64] |= UINT64_C(1) << (first % 64);
}

static int
table_touched(const struct model *m, uint64_t table)
{
	uint64_t first = table * m->per_table;

	for (uint64_t c = first; c < first + m->per_table; c += 64)
		if (m->touched[c / 64] != 0)
			return 1;
	return 0;
}

/*
 * Count the image: the guest clusters any range touches, the tables that
 * map them, and the least number of refcount blocks that counts every
 * cluster, those blocks and their table included, found by trying each.
 */
static void
model_count(struct model *m, unsigned bits, uint64_t size, const struct range *v,
    size_t n)
{
	uint64_t fixed, b;

	m->bits = bits;
	m->cs = UINT64_C(1) << bits;
	m->per_table = m->cs / 8;
	m->per_block = m->cs / 2;
	m->virtual_size = ceil_div(size, 512) * 512;
	m->guest_clusters = ceil_div(m->virtual_size, m->cs);
	m->l1_entries = ceil_div(m->guest_clusters, m->per_table);
	m->l1_clusters = ceil_div(m->l1_entries, m->per_table);
	/* per_table is a multiple of 64: every table is whole words */
	m->touched = xcalloc(m->l1_entries * m->per_table / 64, sizeof(uint64_t));
	for (size_t i = 0; i < n; i++)
		touch(m, v[i].offset >> bits,
		    ((v[i].offset + v[i].length - 1) >> bits) + 1);
	m->data_clusters = m->l2_tables = 0;
	for (uint64_t w = 0; w < m->l1_entries * m->per_table / 64; w++)
		m->data_clusters += popcount(m->touched[w]);
	for (uint64_t t = 0; t < m->l1_entries; t++)
		m->l2_tables += table_touched(m, t);
	fixed = 1 + m->l1_clusters + m->l2_tables + m->data_clusters;
	for (b = fixed / m->per_block; b * m->per_block < fixed +
	    ceil_div(b, m->per_table) + b; b++)
		;
	m->blocks = b;
	m->table_clusters = ceil_div(b, m->per_table);
	m->total = fixed + m->table_clusters + b;
}

/* Where each part begins, each right after the one before. */
static void
model_place(struct model *m, int data_first)
{
	m->data_first = data_first;
	if (!data_first) {
		m->l1_at = 1;
		m->table_at = m->l1_at + m->l1_clusters;
		m->blocks_at = m->table_at + m->table_clusters;
		m->l2_at = m->blocks_at + m->blocks;
		m->data_at = m->l2_at + m->l2_tables;
	} else {
		m->l1_at = 1;
		m->data_at = m->l1_at + m->l1_clusters;
		m->l2_at = m->data_at + m->data_clusters;
		m->blocks_at = m->l2_at + m->l2_tables;
		m->table_at = m->blocks_at + m->blocks;
	}
}

static void
check_fields(const struct layout *lo, const struct model *m, uint64_t size)
{
	uint64_t cs = m->cs;

	need(lo->input_size == size, "input_size %llu, want %llu",
	    U(lo->input_size), U(size));
	need(lo->cluster_bits == m->bits && lo->cluster_size == cs, "cluster size");
	need(lo->virtual_size == m->virtual_size, "virtual_size %llu, want %llu",
	    U(lo->virtual_size), U(m->virtual_size));
	need(lo->guest_clusters == m->guest_clusters, "guest_clusters %llu, want %llu",
	    U(lo->guest_clusters), U(m->guest_clusters));
	need(lo->l1_entries == m->l1_entries, "l1_entries %llu, want %llu",
	    U(lo->l1_entries), U(m->l1_entries));
	need(lo->l1_clusters == m->l1_clusters, "l1_clusters %llu, want %llu",
	    U(lo->l1_clusters), U(m->l1_clusters));
	need(lo->l2_tables == m->l2_tables, "l2_tables %llu, want %llu",
	    U(lo->l2_tables), U(m->l2_tables));
	need(lo->data_clusters == m->data_clusters, "data_clusters %llu, want %llu",
	    U(lo->data_clusters), U(m->data_clusters));
	need(lo->refcount_blocks == m->blocks, "refcount_blocks %llu, want %llu",
	    U(lo->refcount_blocks), U(m->blocks));
	need(lo->refcount_table_clusters == m->table_clusters,
	    "refcount_table_clusters %llu, want %llu",
	    U(lo->refcount_table_clusters), U(m->table_clusters));
	need(lo->total_clusters == m->total, "total_clusters %llu, want %llu",
	    U(lo->total_clusters), U(m->total));
	need(layout_image_size(lo) == m->total * cs, "image size %llu, want %llu",
	    U(layout_image_size(lo)), U(m->total * cs));
	need(layout_meta_clusters(lo) == m->total - m->data_clusters,
	    "meta clusters %llu, want %llu", U(layout_meta_clusters(lo)),
	    U(m->total - m->data_clusters));
	need(lo->l1_offset == m->l1_at * cs, "l1_offset %llu, want %llu",
	    U(lo->l1_offset), U(m->l1_at * cs));
	need(lo->refcount_table_offset == m->table_at * cs, "refcount_table_offset");
	need(lo->refcount_blocks_offset == m->blocks_at * cs, "refcount_blocks_offset");
	need(lo->l2_offset == m->l2_at * cs, "l2_offset %llu, want %llu",
	    U(lo->l2_offset), U(m->l2_at * cs));
	need(lo->data_offset == m->data_at * cs, "data_offset %llu, want %llu",
	    U(lo->data_offset), U(m->data_at * cs));
}

/* Sizes and counts that layout_set_header and layout_data_first keep. */
static void
check_same_sizes(const struct layout *lo, const struct layout *was, const char *what)
{
	need(lo->input_size == was->input_size &&
	    lo->virtual_size == was->virtual_size &&
	    lo->cluster_size == was->cluster_size &&
	    lo->guest_clusters == was->guest_clusters &&
	    lo->l1_entries == was->l1_entries &&
	    lo->l1_clusters == was->l1_clusters &&
	    lo->refcount_table_clusters == was->refcount_table_clusters &&
	    lo->refcount_blocks == was->refcount_blocks &&
	    lo->l2_tables == was->l2_tables &&
	    lo->data_clusters == was->data_clusters &&
	    lo->total_clusters == was->total_clusters, "%s changed a size", what);
}

static void
check_same_offsets(const struct layout *lo, const struct layout *was, const char *what)
{
	need(lo->l1_offset == was->l1_offset &&
	    lo->refcount_table_offset == was->refcount_table_offset &&
	    lo->refcount_blocks_offset == was->refcount_blocks_offset &&
	    lo->l2_offset == was->l2_offset && lo->data_offset == was->data_offset,
	    "%s changed an offset", what);
}

/* The runs are the touched clusters, ascending, disjoint and non-adjacent. */
static void
check_runs(const struct layout *lo, const struct model *m)
{
	struct run_walk walk;
	uint64_t seen = 0, prev_end = 0;
	int first_run = 1;

	run_walk_init(&walk, lo);
	while (run_next(&walk)) {
		need(walk.first < walk.end, "empty run [%llu, %llu)",
		    U(walk.first), U(walk.end));
		need(first_run || walk.first > prev_end, "run [%llu, %llu) after %llu",
		    U(walk.first), U(walk.end), U(prev_end));
		need(walk.end <= m->guest_clusters, "run [%llu, %llu) past %llu clusters",
		    U(walk.first), U(walk.end), U(m->guest_clusters));
		for (uint64_t c = walk.first; c < walk.end; c++)
			need(is_touched(m, c), "run has untouched cluster %llu", U(c));
		seen += walk.end - walk.first;
		prev_end = walk.end;
		first_run = 0;
	}
	need(seen == m->data_clusters, "runs hold %llu clusters, want %llu",
	    U(seen), U(m->data_clusters));
	need(run_next(&walk) == 0, "a run after the last");
}

/* Which metadata cluster, in the order they are made, host cluster c is. */
static uint64_t
meta_index(const struct model *m, uint64_t c)
{
	if (c >= m->total)
		return NOT_META;
	if (c < m->data_at)
		return c;
	return c >= m->data_at + m->data_clusters ? c - m->data_clusters : NOT_META;
}

/* Claim the host cluster at off for one use, data or metadata. */
static void
claim(unsigned char *used, const struct model *m, uint64_t off, int data,
    const char *what)
{
	uint64_t c = off >> m->bits;

	need(off % m->cs == 0, "%s at unaligned offset %llu", what, U(off));
	need(c < m->total, "%s at cluster %llu of %llu", what, U(c), U(m->total));
	need(!used[c], "%s at cluster %llu, already used", what, U(c));
	need((meta_index(m, c) == NOT_META) == data, "%s at cluster %llu, a %s cluster",
	    what, U(c), data ? "metadata" : "data");
	used[c] = 1;
}

/* The metadata cluster at host offset off, as made. */
static const unsigned char *
meta_at(const unsigned char *img, const struct model *m, uint64_t off)
{
	return img + meta_index(m, off >> m->bits) * m->cs;
}

/* Header fields, then the extensions, their end, and the backing file name. */
static void
check_header(const unsigned char *p, const struct model *m, const struct header *h)
{
	int version = h->set ? h->version : 3;
	size_t at = version == 2 ? 72 : 104, name_len;
	int format_seen = 0;

	need(be(p, 4) == QCOW_MAGIC, "magic");
	need(be(p + 4, 4) == (uint64_t)version, "version %llu, want %d",
	    U(be(p + 4, 4)), version);
	need(be(p + 20, 4) == m->bits, "cluster_bits %llu", U(be(p + 20, 4)));
	need(be(p + 24, 8) == m->virtual_size, "size %llu, want %llu",
	    U(be(p + 24, 8)), U(m->virtual_size));
	need(be(p + 32, 4) == 0, "crypt_method");
	need(be(p + 36, 4) == m->l1_entries, "l1_size %llu, want %llu",
	    U(be(p + 36, 4)), U(m->l1_entries));
	need(be(p + 40, 8) == m->l1_at * m->cs, "l1_table_offset %llu, want %llu",
	    U(be(p + 40, 8)), U(m->l1_at * m->cs));
	need(be(p + 48, 8) == m->table_at * m->cs, "refcount_table_offset");
	need(be(p + 56, 4) == m->table_clusters, "refcount_table_clusters");
	need(be(p + 60, 4) == 0 && be(p + 64, 8) == 0, "snapshots");
	if (version == 3) {
		need(all_zero(p + 72, 24), "feature bits");
		need(be(p + 96, 4) == 4, "refcount_order");
		need(be(p + 100, 4) == 104, "header_length");
	}

	/* The extensions as a reader walks them: known types, then the end. */
	for (;;) {
		uint64_t type, len;

		need(at + 8 <= m->cs, "extensions run off cluster 0");
		type = be(p + at, 4);
		len = be(p + at + 4, 4);
		if (type == 0) {
			need(len == 0, "end of extensions with length %llu", U(len));
			at += 8;
			break;
		}
		need(type == EXT_BACKING_FORMAT, "unknown extension 0x%llx", U(type));
		need(!format_seen, "backing format twice");
		need(h->format != NULL, "backing format extension with no format");
		need(len == strlen(h->format) && at + 8 + (len + 7) / 8 * 8 <= m->cs,
		    "backing format length %llu", U(len));
		need(memcmp(p + at + 8, h->format, len) == 0, "backing format bytes");
		need(all_zero(p + at + 8 + len, (len + 7) / 8 * 8 - len),
		    "backing format padding");
		format_seen = 1;
		at += 8 + (len + 7) / 8 * 8;
	}
	need(format_seen == (h->format != NULL), "no backing format extension");

	if (h->name == NULL) {
		need(be(p + 8, 8) == 0 && be(p + 16, 4) == 0, "backing file with none");
	} else {
		name_len = strlen(h->name);
		need(be(p + 8, 8) == at, "backing file name at %llu, want %zu",
		    U(be(p + 8, 8)), at);
		need(be(p + 16, 4) == name_len, "backing file name of %llu bytes, want %zu",
		    U(be(p + 16, 4)), name_len);
		need(at + name_len <= m->cs, "backing file name runs off cluster 0");
		need(memcmp(p + at, h->name, name_len) == 0, "backing file name bytes");
		at += name_len;
	}
	need(all_zero(p + at, m->cs - at), "junk after the header");
}

/*
 * Make every metadata cluster, then read the image from its header on:
 * L1, L2 and refcounts, claiming each host cluster as it is met.
 */
static void
check_metadata(const struct layout *lo, const struct model *m, const struct header *h)
{
	uint64_t cs = m->cs, meta = m->total - m->data_clusters, n = 0;
	uint64_t l1_off, table_off, l1_clusters, table_clusters;
	uint64_t tables = 0, data = 0, blocks = 0, fixed;
	unsigned char *img = xcalloc(meta, cs), *used = xcalloc(m->total, 1);
	unsigned char *spare = xcalloc(cs, 1);
	struct meta_writer mw;

	meta_writer_init(&mw, lo);
	while (n < meta && meta_writer_next(&mw, img + n * cs))
		n++;
	need(n == meta, "%llu metadata clusters made, %llu promised", U(n), U(meta));
	memset(spare, 0xa5, cs);
	need(meta_writer_next(&mw, spare) == 0, "a metadata cluster after the last");
	for (uint64_t i = 0; i < cs; i++)
		need(spare[i] == 0xa5, "the call after the last wrote byte %llu", U(i));
	need(meta_writer_next(&mw, spare) == 0, "a metadata cluster after the end");

	check_header(img, m, h);
	claim(used, m, 0, 0, "header");
	l1_off = be(img + 40, 8);
	table_off = be(img + 48, 8);
	l1_clusters = ceil_div(be(img + 36, 4) * 8, cs);
	table_clusters = be(img + 56, 4);
	for (uint64_t c = 0; c < l1_clusters; c++)
		claim(used, m, l1_off + c * cs, 0, "L1 table");
	for (uint64_t c = 0; c < table_clusters; c++)
		claim(used, m, table_off + c * cs, 0, "refcount table");

	/* L1 and L2: each touched cluster mapped, in guest order, COPIED */
	for (uint64_t j = 0; j < l1_clusters * m->per_table; j++) {
		const unsigned char *l1 = meta_at(img, m, l1_off + j / m->per_table * cs);
		uint64_t entry = be(l1 + j % m->per_table * 8, 8), l2_off;
		int has = j < m->l1_entries && table_touched(m, j);
		const unsigned char *l2;

		if (!has) {
			need(entry == 0, "L1 entry %llu is 0x%llx, want 0", U(j), U(entry));
			continue;
		}
		l2_off = entry & OFFSET_MASK;
		need(entry == (l2_off | COPIED), "L1 entry %llu is 0x%llx", U(j), U(entry));
		need(l2_off == (m->l2_at + tables) * cs,
		    "L1 entry %llu points at %llu, want the next L2 table at %llu",
		    U(j), U(l2_off), U((m->l2_at + tables) * cs));
		claim(used, m, l2_off, 0, "L2 table");
		tables++;
		l2 = meta_at(img, m, l2_off);
		for (uint64_t i = 0; i < m->per_table; i++) {
			uint64_t guest = j * m->per_table + i, want = 0;

			entry = be(l2 + i * 8, 8);
			if (is_touched(m, guest))
				want = (m->data_at + data) * cs | COPIED;
			need(entry == want, "L2 entry for guest cluster %llu is 0x%llx, want 0x%llx",
			    U(guest), U(entry), U(want));
			if (want == 0)
				continue;
			claim(used, m, want & OFFSET_MASK, 1, "data cluster");
			data++;
		}
	}
	need(tables == m->l2_tables, "%llu L2 tables, want %llu", U(tables), U(m->l2_tables));
	need(data == m->data_clusters, "%llu data clusters, want %llu",
	    U(data), U(m->data_clusters));

	/* Refcounts: 1 for each cluster of the file, 0 past its end */
	for (uint64_t i = 0; i < table_clusters * m->per_table; i++) {
		const unsigned char *t = meta_at(img, m, table_off + i / m->per_table * cs);
		uint64_t entry = be(t + i % m->per_table * 8, 8);
		const unsigned char *block;

		if (i * m->per_block >= m->total) {
			need(entry == 0, "refcount table entry %llu past the end is 0x%llx",
			    U(i), U(entry));
			continue;
		}
		need(entry == (m->blocks_at + i) * cs, "refcount table entry %llu is 0x%llx",
		    U(i), U(entry));
		claim(used, m, entry, 0, "refcount block");
		blocks++;
		block = meta_at(img, m, entry);
		for (uint64_t k = 0; k < m->per_block; k++) {
			uint64_t c = i * m->per_block + k;

			need(be(block + k * 2, 2) == (c < m->total),
			    "refcount of host cluster %llu of %llu is %llu", U(c),
			    U(m->total), U(be(block + k * 2, 2)));
		}
	}
	for (uint64_t c = 0; c < m->total; c++)
		need(used[c], "host cluster %llu of %llu is not used", U(c), U(m->total));

	/* The sizes as read: every part counted once, no refcount block spare */
	need(1 + l1_clusters + table_clusters + blocks + tables + data == m->total,
	    "parts add up to %llu clusters, the file has %llu",
	    U(1 + l1_clusters + table_clusters + blocks + tables + data), U(m->total));
	need(table_clusters == ceil_div(blocks, m->per_table), "refcount table size");
	fixed = 1 + l1_clusters + tables + data;
	need(blocks > 0 && (blocks - 1) * m->per_block < fixed +
	    ceil_div(blocks - 1, m->per_table) + blocks - 1,
	    "%llu refcount blocks where fewer would do", U(blocks));
	free(spare);
	free(used);
	free(img);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct range made[MAX_RANGES];
	struct range_list merged = { NULL, 0, 0 };
	struct header h = { 0, 3, NULL, NULL };
	char name[MAX_NAME + 1], format[MAX_FORMAT + 1];
	struct layout lo, was;
	struct model m;
	unsigned flags, bits, mag, expected, got;
	uint64_t disk;
	const struct range *ranges;
	size_t nmade, nranges;
	int raw;

	flags = take(&in);
	bits = MIN_CLUSTER_BITS + (flags & 3);
	raw = flags >> 4 & 1;
	mag = take(&in) % (MAX_GUEST_BITS + bits + 1);
	disk = take_u32(&in) & ((UINT64_C(1) << mag) - 1);
	if (flags & 8) {
		unsigned v = take(&in), which = take(&in);

		h.set = 1;
		h.version = v < 240 ? 2 + (int)(v & 1) : (int)(v & 7);
		if (which & 1) {
			size_t len = take_u16(&in) % (MAX_NAME + 1);

			make_name(name, len, take(&in));
			h.name = name;
		}
		if (which & 2) {
			size_t len = take(&in) % (MAX_FORMAT + 1);

			make_name(format, len, take(&in));
			h.format = format;
		}
	}
	nmade = make_ranges(&in, disk, bits, raw, made);

	if (raw) {
		ranges = made;
		nranges = nmade;
		expected = range_errors(made, nmade, disk);
	} else {
		for (size_t i = 0; i < nmade; i++)
			need(ranges_add(&merged, made[i].offset, made[i].length) == 0,
			    "ranges_add failed");
		ranges_merge(&merged);
		ranges = merged.v;
		nranges = merged.n;
		expected = 0;
	}
	got = layout_init(&lo, disk, bits, ranges, nranges);
	if (expected != 0 || got != LAYOUT_OK) {
		need(expected >> got & 1, "layout_init: %s (%u), want error set 0x%x",
		    layout_strerror(got), got, expected);
		ranges_free(&merged);
		return 0;
	}

	model_count(&m, bits, disk, made, nmade);
	model_place(&m, 0);
	check_fields(&lo, &m, disk);
	if ((flags & 4) && (flags & 32)) {
		was = lo;
		layout_data_first(&lo);
		check_same_sizes(&lo, &was, "layout_data_first");
	}
	if (h.set) {
		was = lo;
		got = layout_set_header(&lo, h.version, h.name, h.format);
		expected = header_errors(&h, m.cs);
		check_same_sizes(&lo, &was, "layout_set_header");
		check_same_offsets(&lo, &was, "layout_set_header");
		need(expected == 0 ? got == LAYOUT_OK : expected >> got & 1,
		    "layout_set_header: %s (%u), want error set 0x%x",
		    layout_strerror(got), got, expected);
		if (got != LAYOUT_OK)
			goto out;
	}
	if ((flags & 4) && !(flags & 32)) {
		was = lo;
		layout_data_first(&lo);
		check_same_sizes(&lo, &was, "layout_data_first");
	}
	model_place(&m, flags >> 2 & 1);
	check_fields(&lo, &m, disk);
	check_runs(&lo, &m);
	check_metadata(&lo, &m, &h);
out:
	free(m.touched);
	ranges_free(&merged);
	return 0;
}

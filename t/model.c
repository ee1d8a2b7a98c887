/*
 * t/model.c: the one model of the image, shared by t/unit.c and
 * t/fuzz/fuzz_layout.c; model.h has the contracts.
 *
 * Nothing here asks layout.c what to expect: the counts, the places and
 * the reader are made again from the qcow2 format, in other ways where
 * there is a choice (the refcount blocks found by trying each number in
 * turn, not by a fixed point; the stored clusters listed one by one, not
 * walked as runs), so that a mistake in layout.c is not copied into what
 * it is checked against.  layout.c is called only to be checked.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "meta.h"
#include "model.h"

#define QCOW_MAGIC		0x514649fbu
#define EXT_BACKING_FORMAT	0xe2792acau
#define COPIED			(UINT64_C(1) << 63)
#define OFFSET_MASK		UINT64_C(0x00fffffffffffe00)	/* bits 9-55 */
#define NOT_META		UINT64_MAX

/* A value found and the one wanted, for the checks made a table at a time. */
struct field {
	const char *what;
	uint64_t got, want;
};

/* The image as its reader found it, to be summed up at the end. */
struct as_read {
	uint64_t l1_offset, l1_clusters;
	uint64_t table_offset, table_clusters;
	uint64_t l2_tables, data_clusters, refcount_blocks;
};

/* What the reader needs as it goes. */
struct reader {
	const struct model *m;
	const unsigned char *meta;	/* the metadata clusters as made */
	unsigned char *used;		/* a mark per host cluster claimed */
	struct model_failure *f;
};

static uint64_t
ceil_div(uint64_t n, uint64_t d)
{
	return n == 0 ? 0 : (n - 1) / d + 1;
}

static uint64_t
be(const unsigned char *p, int bytes)
{
	uint64_t v = 0;

	while (bytes-- > 0)
		v = v << 8 | *p++;
	return v;
}

/* Describe the check that failed in f; returns -1 for the caller to pass on. */
static int
vfail(struct model_failure *f, uint64_t got, const char *relation, uint64_t want,
    const char *fmt, va_list ap)
{
	f->got = got;
	f->relation = relation;
	f->want = want;
	vsnprintf(f->what, sizeof(f->what), fmt, ap);
	return -1;
}

/* Each returns 0 if got compares with want as its name says, else -1. */
static int
same(struct model_failure *f, uint64_t got, uint64_t want, const char *fmt, ...)
{
	va_list ap;

	if (got == want)
		return 0;
	va_start(ap, fmt);
	vfail(f, got, "", want, fmt, ap);
	va_end(ap);
	return -1;
}

static int
below(struct model_failure *f, uint64_t got, uint64_t limit, const char *fmt, ...)
{
	va_list ap;

	if (got < limit)
		return 0;
	va_start(ap, fmt);
	vfail(f, got, "< ", limit, fmt, ap);
	va_end(ap);
	return -1;
}

static int
at_most(struct model_failure *f, uint64_t got, uint64_t max, const char *fmt, ...)
{
	va_list ap;

	if (got <= max)
		return 0;
	va_start(ap, fmt);
	vfail(f, got, "<= ", max, fmt, ap);
	va_end(ap);
	return -1;
}

static int
out_of_memory(struct model_failure *f, const char *what)
{
	snprintf(f->what, sizeof(f->what), "out of memory for %s", what);
	f->relation = NULL;
	f->got = f->want = 0;
	return -1;
}

/* Every field as wanted; by, if not NULL, names the call that had to keep them. */
static int
same_fields(struct model_failure *f, const struct field *v, size_t n, const char *by)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i].got == v[i].want)
			continue;
		if (by == NULL)
			return same(f, v[i].got, v[i].want, "%s", v[i].what);
		return same(f, v[i].got, v[i].want, "%s, kept by %s", v[i].what, by);
	}
	return 0;
}

/* Bytes [from, to) of p are zero. */
static int
zero_bytes(struct model_failure *f, const unsigned char *p, size_t from, size_t to,
    const char *what)
{
	for (size_t i = from; i < to; i++)
		if (p[i] != 0)
			return same(f, p[i], 0, "%s, byte %zu", what, i);
	return 0;
}

/* Bytes [from, from + n) of p are those of want. */
static int
same_bytes(struct model_failure *f, const unsigned char *p, size_t from,
    const char *want, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (p[from + i] != (unsigned char)want[i])
			return same(f, p[from + i], (unsigned char)want[i],
			    "%s, byte %zu", what, from + i);
	return 0;
}

/* The model */

static int
by_offset(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return (x->offset > y->offset) - (x->offset < y->offset);
}

/*
 * The guest clusters that ranges sorted by offset touch, ascending, each
 * once: every range adds those of its clusters past the last one added.
 * Returns how many; fills v unless it is NULL.
 */
static size_t
list_stored(const struct range *sorted, size_t n, unsigned bits, uint64_t *v)
{
	uint64_t next = 0;	/* the clusters below it are listed */
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t c, last;

		if (sorted[i].length == 0)
			continue;
		c = sorted[i].offset >> bits;
		last = (sorted[i].offset + sorted[i].length - 1) >> bits;
		for (c = c > next ? c : next; c <= last; c++) {
			if (v != NULL)
				v[count] = c;
			count++;
		}
		if (last + 1 > next)
			next = last + 1;
	}
	return count;
}

/* A copy of ranges[0..n), sorted by offset; NULL if out of memory. */
static struct range *
sorted_copy(const struct range *ranges, size_t n)
{
	struct range *sorted = malloc(n ? n * sizeof(*sorted) : 1);

	if (sorted == NULL)
		return NULL;
	if (n > 0)
		memcpy(sorted, ranges, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), by_offset);
	return sorted;
}

/* The guest clusters ranges[0..n) touch, ascending, in *v; -1 if out of memory. */
static int
list_touched(const struct range *ranges, size_t n, unsigned bits, uint64_t **v,
    size_t *count)
{
	struct range *sorted = sorted_copy(ranges, n);

	if (sorted == NULL)
		return -1;
	*count = list_stored(sorted, n, bits, NULL);
	if ((*v = calloc(*count ? *count : 1, sizeof(**v))) == NULL) {
		free(sorted);
		return -1;
	}
	list_stored(sorted, n, bits, *v);
	free(sorted);
	return 0;
}

/* The L2 tables of the clusters in either ascending list: each new one met. */
static uint64_t
count_tables(const uint64_t *a, size_t na, const uint64_t *b, size_t nb,
    unsigned l2_bits)
{
	uint64_t tables = 0, last = 0;
	size_t i = 0, j = 0;

	while (i < na || j < nb) {
		uint64_t c = j == nb || (i < na && a[i] < b[j]) ? a[i++] : b[j++];

		if (tables == 0 || c >> l2_bits != last) {
			tables++;
			last = c >> l2_bits;
		}
	}
	return tables;
}

int
model_init(struct model *m, unsigned cluster_bits, uint64_t input_size,
    const struct range *ranges, size_t nranges)
{
	uint64_t *stored;
	size_t nstored;

	if (list_touched(ranges, nranges, cluster_bits, &stored, &nstored) == -1)
		return -1;
	model_count(m, cluster_bits, input_size, nstored,
	    count_tables(stored, nstored, NULL, 0, cluster_bits - 3));
	m->stored = stored;
	m->nstored = nstored;
	return 0;
}

/*
 * The refcount blocks are the least number that counts every cluster,
 * themselves and the table that points at them included, found by trying
 * each in turn from one that surely counts too few.
 */
void
model_count(struct model *m, unsigned cluster_bits, uint64_t input_size,
    uint64_t data_clusters, uint64_t l2_tables)
{
	uint64_t cs = UINT64_C(1) << cluster_bits, fixed, blocks;

	memset(m, 0, sizeof(*m));
	m->cluster_bits = cluster_bits;
	m->cluster_size = cs;
	m->per_table = cs / 8;
	m->per_block = cs / 2;
	m->input_size = input_size;
	m->virtual_size = ceil_div(input_size, 512) * 512;
	m->guest_clusters = ceil_div(m->virtual_size, cs);
	m->l1_entries = ceil_div(m->guest_clusters, m->per_table);
	m->l1_clusters = ceil_div(m->l1_entries, m->per_table);
	m->l2_tables = l2_tables;
	m->data_clusters = data_clusters;
	fixed = 1 + m->l1_clusters + l2_tables + data_clusters;
	for (blocks = fixed / m->per_block; blocks * m->per_block <
	    fixed + ceil_div(blocks, m->per_table) + blocks; blocks++)
		;
	m->refcount_blocks = blocks;
	m->refcount_table_clusters = ceil_div(blocks, m->per_table);
	m->total_clusters = fixed + m->refcount_table_clusters + blocks;
	m->version = 3;
	model_place(m);
}

int
model_set_zeros(struct model *m, const struct range *zeros, size_t nzeros)
{
	struct model was = *m;
	uint64_t *touched, *zero;
	size_t ntouched, nzero = 0, j = 0;

	if (list_touched(zeros, nzeros, m->cluster_bits, &touched, &ntouched) == -1)
		return -1;
	if ((zero = calloc(ntouched ? ntouched : 1, sizeof(*zero))) == NULL) {
		free(touched);
		return -1;
	}
	for (size_t i = 0; i < ntouched; i++) {
		while (j < m->nstored && m->stored[j] < touched[i])
			j++;
		if (j == m->nstored || m->stored[j] != touched[i])
			zero[nzero++] = touched[i];
	}
	free(touched);
	free(m->zero);
	model_count(m, was.cluster_bits, was.input_size, was.data_clusters,
	    count_tables(was.stored, was.nstored, zero, nzero, was.cluster_bits - 3));
	m->stored = was.stored;
	m->nstored = was.nstored;
	m->zero = zero;
	m->nzero = nzero;
	m->zero_clusters = nzero;
	model_set_header(m, was.version, was.backing_file, was.backing_format);
	model_place(m);
	return 0;
}

void
model_set_header(struct model *m, int version, const char *backing_file,
    const char *backing_format)
{
	m->version = version;
	m->backing_file = backing_file;
	m->backing_format = backing_format;
}

void
model_place(struct model *m)
{
	m->within = 0;
	m->gap_clusters = 0;
	m->l1_at = 1;
	m->table_at = m->l1_at + m->l1_clusters;
	m->blocks_at = m->table_at + m->refcount_table_clusters;
	m->l2_at = m->blocks_at + m->refcount_blocks;
	m->data_at = m->l2_at + m->l2_tables;
}

/*
 * The file's end is fixed by the plan, so the blocks are the least that
 * count it, tried in turn, and the table the least that points at them.
 */
int
model_within(struct model *m, const struct model *plan)
{
	uint64_t end, blocks, table, meta;

	if (plan->cluster_bits != m->cluster_bits || plan->l1_clusters != m->l1_clusters ||
	    plan->data_clusters < m->data_clusters)
		return -1;
	if (m->data_clusters == 0)
		return 0;
	end = plan->data_at + m->data_clusters;
	for (blocks = end / m->per_block; blocks * m->per_block < end; blocks++)
		;
	table = ceil_div(blocks, m->per_table);
	meta = 1 + m->l1_clusters + table + blocks + m->l2_tables;
	if (meta > plan->data_at)
		return -1;
	m->refcount_blocks = blocks;
	m->refcount_table_clusters = table;
	m->total_clusters = end;
	model_place(m);
	m->within = 1;
	m->gap_clusters = plan->data_at - meta;
	m->data_at = plan->data_at;
	return 0;
}

uint64_t
model_meta_clusters(const struct model *m)
{
	return m->total_clusters - m->data_clusters - m->gap_clusters;
}

/* The gap, after the metadata and before the data; empty unless within a plan. */
static int
in_gap(const struct model *m, uint64_t c)
{
	return c < m->data_at && c >= m->data_at - m->gap_clusters;
}

/* The last host cluster is a refcount block when the blocks end the file. */
uint64_t
model_image_size(const struct model *m)
{
	uint64_t last = m->total_clusters - 1;

	if (m->blocks_at + m->refcount_blocks == m->total_clusters)
		return last * m->cluster_size + 2 * (last % m->per_block + 1);
	return m->total_clusters * m->cluster_size;
}

void
model_free(struct model *m)
{
	free(m->stored);
	free(m->zero);
	m->stored = m->zero = NULL;
	m->nstored = m->nzero = 0;
}

/* The errors */

unsigned
model_range_errors(const struct range *ranges, size_t nranges, uint64_t input_size)
{
	uint64_t end = 0;

	for (size_t i = 0; i < nranges; i++) {
		const struct range *r = &ranges[i];
		unsigned why = 0;

		if (r->length == 0 || (i > 0 && r->offset < end))
			why |= 1u << LAYOUT_RANGE_ORDER;
		if (r->offset > input_size || r->length > input_size - r->offset)
			why |= 1u << LAYOUT_RANGE_BEYOND;
		if (why != 0)
			return why;
		end = r->offset + r->length;
	}
	return 0;
}

/*
 * Cluster 0 holds the header (72 bytes in version 2, 104 in 3), the
 * backing format extension padded to 8 bytes, the 8-byte end of the
 * extensions, and the backing file name.
 */
unsigned
model_header_errors(int version, const char *backing_file,
    const char *backing_format, uint64_t cluster_size)
{
	size_t need_bytes = version == 2 ? 72 : 104;
	unsigned why = 0;

	if (version != 2 && version != 3)
		why |= 1u << LAYOUT_BAD_VERSION;
	if (backing_format != NULL && strlen(backing_format) > 15)
		why |= 1u << LAYOUT_BACKING_FORMAT_TOO_LONG;
	if (backing_file == NULL)
		return why;
	if (strlen(backing_file) > 1023)
		why |= 1u << LAYOUT_BACKING_TOO_LONG;
	if (why & 1u << LAYOUT_BAD_VERSION)
		return why;	/* no header length to count with */
	if (backing_format != NULL)
		need_bytes += 8 + (strlen(backing_format) + 7) / 8 * 8;
	need_bytes += 8 + strlen(backing_file);
	if (need_bytes > cluster_size)
		why |= 1u << LAYOUT_BACKING_DOES_NOT_FIT;
	return why;
}

unsigned
model_zero_errors(const struct model *m, int version)
{
	return version == 2 && m->zero_clusters > 0 ? 1u << LAYOUT_ZEROS_NEED_V3 : 0;
}

/* The fields */

static int
check_counts(const struct model *m, const struct layout *lo, struct model_failure *f)
{
	uint64_t cs = m->cluster_size;
	const struct field v[] = {
		{ "input_size", lo->input_size, m->input_size },
		{ "cluster_bits", lo->cluster_bits, m->cluster_bits },
		{ "cluster_size", lo->cluster_size, cs },
		{ "virtual_size", lo->virtual_size, m->virtual_size },
		{ "guest_clusters", lo->guest_clusters, m->guest_clusters },
		{ "l1_entries", lo->l1_entries, m->l1_entries },
		{ "l1_clusters", lo->l1_clusters, m->l1_clusters },
		{ "l2_tables", lo->l2_tables, m->l2_tables },
		{ "data_clusters", lo->data_clusters, m->data_clusters },
		{ "zero_clusters", lo->zero_clusters, m->zero_clusters },
		{ "refcount_blocks", lo->refcount_blocks, m->refcount_blocks },
		{ "refcount_table_clusters", lo->refcount_table_clusters,
		    m->refcount_table_clusters },
		{ "total_clusters", lo->total_clusters, m->total_clusters },
		{ "gap_clusters", lo->gap_clusters, m->gap_clusters },
		{ "layout_image_size", layout_image_size(lo), model_image_size(m) },
		{ "layout_meta_clusters", layout_meta_clusters(lo),
		    model_meta_clusters(m) },
	};

	return same_fields(f, v, sizeof(v) / sizeof(v[0]), NULL);
}

/*
 * The offsets where the model places each part, then again as sums of
 * the parts before each, so that the model's placing is checked too.
 */
static int
check_offsets(const struct model *m, const struct layout *lo, struct model_failure *f)
{
	uint64_t cs = m->cluster_size, meta = model_meta_clusters(m);
	uint64_t l1 = m->l1_clusters, table = m->refcount_table_clusters;
	uint64_t l2 = m->l2_tables, data = m->data_clusters, gap = m->gap_clusters;
	const struct field placed[] = {
		{ "the end of the model's last part", m->data_at + data,
		    m->total_clusters },
		{ "l1_offset", lo->l1_offset, m->l1_at * cs },
		{ "refcount_table_offset", lo->refcount_table_offset, m->table_at * cs },
		{ "refcount_blocks_offset", lo->refcount_blocks_offset, m->blocks_at * cs },
		{ "l2_offset", lo->l2_offset, m->l2_at * cs },
		{ "data_offset", lo->data_offset, m->data_at * cs },
	};
	/* header | L1 | refcount table | refcount blocks | L2 tables | gap | data */
	const struct field stream[] = {
		{ "l1_offset, after the header", lo->l1_offset, cs },
		{ "refcount_table_offset, after the L1 table",
		    lo->refcount_table_offset, (1 + l1) * cs },
		{ "refcount_blocks_offset, after the refcount table",
		    lo->refcount_blocks_offset, (1 + l1 + table) * cs },
		{ "l2_offset, the L2 tables ending the metadata",
		    lo->l2_offset, (meta - l2) * cs },
		{ "data_offset, after all the metadata and the gap", lo->data_offset,
		    (meta + gap) * cs },
	};

	if (same_fields(f, placed, sizeof(placed) / sizeof(placed[0]), NULL) == -1)
		return -1;
	return same_fields(f, stream, sizeof(stream) / sizeof(stream[0]), NULL);
}

/*
 * lo's blocks count every cluster and no block could go: one fewer, with
 * the table it would need, would not count what is left (within a plan,
 * whose data offset fixes the file's end, the clusters to that end).
 * The table points at every block and has no spare cluster.
 */
static int
check_refcount_sizes(const struct model *m, const struct layout *lo,
    struct model_failure *f)
{
	uint64_t per_block = lo->cluster_size / 2, per_table = lo->cluster_size / 8;
	uint64_t blocks = lo->refcount_blocks, table = lo->refcount_table_clusters;
	uint64_t total = lo->total_clusters;

	if (below(f, 0, blocks, "refcount_blocks") ||
	    below(f, 0, table, "refcount_table_clusters"))
		return -1;
	if (at_most(f, total, blocks * per_block,
	    "total_clusters, against what %" PRIu64 " refcount blocks count", blocks) ||
	    below(f, (blocks - 1) * per_block, total,
	    "refcounts in one block fewer, against total_clusters") ||
	    (!m->within && below(f, (blocks - 1) * per_block,
	    total - 1 - (table - ceil_div(blocks - 1, per_table)),
	    "refcounts in one block fewer, against the clusters left to count")) ||
	    at_most(f, blocks, table * per_table,
	    "refcount_blocks, against the entries of the refcount table") ||
	    below(f, (table - 1) * per_table, blocks,
	    "entries of a refcount table one cluster smaller, against refcount_blocks"))
		return -1;
	return 0;
}

int
model_check_fields(const struct model *m, const struct layout *lo,
    struct model_failure *f)
{
	if (check_counts(m, lo, f) == -1 || check_offsets(m, lo, f) == -1)
		return -1;
	return check_refcount_sizes(m, lo, f);
}

int
model_check_same_sizes(const struct layout *lo, const struct layout *was,
    const char *by, struct model_failure *f)
{
	const struct field v[] = {
		{ "input_size", lo->input_size, was->input_size },
		{ "virtual_size", lo->virtual_size, was->virtual_size },
		{ "cluster_bits", lo->cluster_bits, was->cluster_bits },
		{ "cluster_size", lo->cluster_size, was->cluster_size },
		{ "ranges", (uintptr_t)lo->ranges, (uintptr_t)was->ranges },
		{ "nranges", lo->nranges, was->nranges },
		{ "zeros", (uintptr_t)lo->zeros, (uintptr_t)was->zeros },
		{ "nzeros", lo->nzeros, was->nzeros },
		{ "guest_clusters", lo->guest_clusters, was->guest_clusters },
		{ "l1_entries", lo->l1_entries, was->l1_entries },
		{ "l1_clusters", lo->l1_clusters, was->l1_clusters },
		{ "refcount_table_clusters", lo->refcount_table_clusters,
		    was->refcount_table_clusters },
		{ "refcount_blocks", lo->refcount_blocks, was->refcount_blocks },
		{ "l2_tables", lo->l2_tables, was->l2_tables },
		{ "data_clusters", lo->data_clusters, was->data_clusters },
		{ "zero_clusters", lo->zero_clusters, was->zero_clusters },
		{ "total_clusters", lo->total_clusters, was->total_clusters },
		{ "gap_clusters", lo->gap_clusters, was->gap_clusters },
		{ "layout_meta_clusters", layout_meta_clusters(lo),
		    layout_meta_clusters(was) },
	};

	return same_fields(f, v, sizeof(v) / sizeof(v[0]), by);
}

int
model_check_same_offsets(const struct layout *lo, const struct layout *was,
    const char *by, struct model_failure *f)
{
	const struct field v[] = {
		{ "l1_offset", lo->l1_offset, was->l1_offset },
		{ "refcount_table_offset", lo->refcount_table_offset,
		    was->refcount_table_offset },
		{ "refcount_blocks_offset", lo->refcount_blocks_offset,
		    was->refcount_blocks_offset },
		{ "l2_offset", lo->l2_offset, was->l2_offset },
		{ "data_offset", lo->data_offset, was->data_offset },
		{ "layout_image_size", layout_image_size(lo), layout_image_size(was) },
	};

	return same_fields(f, v, sizeof(v) / sizeof(v[0]), by);
}

/* The runs */

int
model_check_runs(const struct model *m, const struct layout *lo,
    struct model_failure *f)
{
	struct run_walk walk;
	uint64_t prev_end = 0;
	size_t runs = 0, next = 0;	/* next: index in m->stored */

	run_walk_init(&walk, lo);
	while (run_next(&walk)) {
		uint64_t first = walk.first, end = walk.end;

		runs++;
		if (below(f, first, end, "run %zu [%" PRIu64 ", %" PRIu64 "): its first "
		    "cluster, against its end", runs, first, end) ||
		    (runs > 1 && below(f, prev_end, first, "run %zu [%" PRIu64 ", %"
		    PRIu64 "): the end of the run before, against its first cluster",
		    runs, first, end)) ||
		    at_most(f, end, m->guest_clusters, "run %zu [%" PRIu64 ", %" PRIu64
		    "): its end, against guest_clusters", runs, first, end))
			return -1;
		for (uint64_t c = first; c < end; c++, next++)
			if (below(f, next, m->nstored, "run %zu [%" PRIu64 ", %" PRIu64
			    "): stored clusters up to cluster %" PRIu64 ", against those "
			    "there are", runs, first, end, c) ||
			    same(f, c, m->stored[next], "run %zu [%" PRIu64 ", %" PRIu64
			    "): stored cluster %zu", runs, first, end, next))
				return -1;
		prev_end = end;
	}
	if (same(f, next, m->nstored, "stored clusters the runs hold"))
		return -1;
	return same(f, run_next(&walk), 0, "run_next after the last run");
}

/* The reader */

/*
 * Which metadata cluster, counting in the order they are made, host
 * cluster c is: the file's own order, all before the gap and the data.
 * NOT_META for a cluster of the gap or the data, or one past the end.
 */
static uint64_t
meta_index(const struct model *m, uint64_t c)
{
	return c < m->data_at - m->gap_clusters ? c : NOT_META;
}

static int
in_data(const struct model *m, uint64_t c)
{
	return c >= m->data_at && c - m->data_at < m->data_clusters;
}

/* The metadata cluster at host offset off, claimed first. */
static const unsigned char *
meta_at(const struct reader *r, uint64_t off)
{
	return r->meta + meta_index(r->m, off >> r->m->cluster_bits) *
	    r->m->cluster_size;
}

/*
 * Claim the host cluster at off for one use: data if is_data, else
 * metadata.  It must be whole, in the file, not claimed before, and on
 * the side of the data its use says.
 */
static int
claim(struct reader *r, uint64_t off, int is_data, const char *what)
{
	const struct model *m = r->m;
	uint64_t c = off >> m->cluster_bits;

	if (same(r->f, off % m->cluster_size, 0, "%s at host offset 0x%" PRIx64
	    ": its offset in a cluster", what, off) ||
	    below(r->f, c, m->total_clusters, "%s at host offset 0x%" PRIx64
	    ": its cluster, against the file's clusters", what, off) ||
	    same(r->f, r->used[c], 0, "%s at host cluster %" PRIu64
	    ": uses before", what, c) ||
	    same(r->f, in_data(m, c), is_data, "%s at host cluster %" PRIu64
	    ": whether among the data at [%" PRIu64 ", %" PRIu64 ")",
	    what, c, m->data_at, m->data_at + m->data_clusters) ||
	    same(r->f, meta_index(m, c) != NOT_META, !is_data, "%s at host cluster %"
	    PRIu64 ": whether among the metadata, before %" PRIu64, what, c,
	    m->data_at - m->gap_clusters))
		return -1;
	r->used[c] = 1;
	return 0;
}

static int
check_header_fields(const struct model *m, const unsigned char *p,
    struct model_failure *f)
{
	uint64_t cs = m->cluster_size;
	const struct field v[] = {
		{ "header: magic", be(p, 4), QCOW_MAGIC },
		{ "header: version", be(p + 4, 4), (uint64_t)m->version },
		{ "header: cluster_bits", be(p + 20, 4), m->cluster_bits },
		{ "header: size", be(p + 24, 8), m->virtual_size },
		{ "header: crypt_method", be(p + 32, 4), 0 },
		{ "header: l1_size", be(p + 36, 4), m->l1_entries },
		{ "header: l1_table_offset", be(p + 40, 8), m->l1_at * cs },
		{ "header: refcount_table_offset", be(p + 48, 8), m->table_at * cs },
		{ "header: refcount_table_clusters", be(p + 56, 4),
		    m->refcount_table_clusters },
		{ "header: nb_snapshots", be(p + 60, 4), 0 },
		{ "header: snapshots_offset", be(p + 64, 8), 0 },
	};
	const struct field v3[] = {
		{ "header: incompatible_features", be(p + 72, 8), 0 },
		{ "header: compatible_features", be(p + 80, 8), 0 },
		{ "header: autoclear_features", be(p + 88, 8), 0 },
		{ "header: refcount_order", be(p + 96, 4), 4 },
		{ "header: header_length", be(p + 100, 4), 104 },
	};

	if (same_fields(f, v, sizeof(v) / sizeof(v[0]), NULL) == -1)
		return -1;
	if (m->version == 3)
		return same_fields(f, v3, sizeof(v3) / sizeof(v3[0]), NULL);
	return 0;
}

/*
 * The extensions as a reader walks them from the end of the header:
 * known types only, then their end.  Sets *end to the byte after it.
 */
static int
check_extensions(const struct model *m, const unsigned char *p, size_t *end,
    struct model_failure *f)
{
	const char *format = m->backing_format;
	size_t at = m->version == 2 ? 72 : 104;
	int format_seen = 0;

	for (;;) {
		uint64_t type, len, padded;

		if (at_most(f, at + 8, m->cluster_size,
		    "the end of the header extension at byte %zu", at))
			return -1;
		type = be(p + at, 4);
		len = be(p + at + 4, 4);
		if (type == 0) {
			if (same(f, len, 0, "the length of the end of the extensions, "
			    "at byte %zu", at))
				return -1;
			at += 8;
			break;
		}
		if (same(f, type, EXT_BACKING_FORMAT, "the type of the header "
		    "extension at byte %zu", at) ||
		    same(f, format_seen, 0, "backing format extensions before the one "
		    "at byte %zu", at) ||
		    same(f, format != NULL, 1, "a backing format to expect, for the "
		    "extension at byte %zu", at) ||
		    same(f, len, strlen(format), "the length of the backing format"))
			return -1;
		padded = (len + 7) / 8 * 8;
		if (at_most(f, at + 8 + padded, m->cluster_size,
		    "the end of the backing format extension") ||
		    same_bytes(f, p, at + 8, format, len, "the backing format") ||
		    zero_bytes(f, p, at + 8 + len, at + 8 + padded,
		    "the padding of the backing format"))
			return -1;
		format_seen = 1;
		at += 8 + padded;
	}
	if (same(f, format_seen, format != NULL, "backing format extensions"))
		return -1;
	*end = at;
	return 0;
}

/* Cluster 0: the header, its extensions, the backing file name, zeros. */
static int
check_header(const struct model *m, const unsigned char *p, struct model_failure *f)
{
	const char *name = m->backing_file;
	size_t at, len;

	if (check_header_fields(m, p, f) == -1 || check_extensions(m, p, &at, f) == -1)
		return -1;
	if (name == NULL) {
		if (same(f, be(p + 8, 8), 0, "header: backing_file_offset, with none") ||
		    same(f, be(p + 16, 4), 0, "header: backing_file_size, with none"))
			return -1;
	} else {
		len = strlen(name);
		if (same(f, be(p + 8, 8), at, "header: backing_file_offset, right "
		    "after the extensions") ||
		    same(f, be(p + 16, 4), len, "header: backing_file_size") ||
		    at_most(f, at + len, m->cluster_size,
		    "the end of the backing file name") ||
		    same_bytes(f, p, at, name, len, "the backing file name"))
			return -1;
		at += len;
	}
	return zero_bytes(f, p, at, m->cluster_size, "cluster 0 past the header");
}

/* The header, the L1 table and the refcount table, where the header says. */
static int
claim_tables(struct reader *r, struct as_read *seen)
{
	const unsigned char *h = r->meta;
	uint64_t cs = r->m->cluster_size;

	seen->l1_offset = be(h + 40, 8);
	seen->l1_clusters = ceil_div(be(h + 36, 4) * 8, cs);
	seen->table_offset = be(h + 48, 8);
	seen->table_clusters = be(h + 56, 4);
	if (claim(r, 0, 0, "the header") == -1)
		return -1;
	for (uint64_t c = 0; c < seen->l1_clusters; c++)
		if (claim(r, seen->l1_offset + c * cs, 0, "the L1 table") == -1)
			return -1;
	for (uint64_t c = 0; c < seen->table_clusters; c++)
		if (claim(r, seen->table_offset + c * cs, 0, "the refcount table") == -1)
			return -1;
	return 0;
}

/* Where the reader has got to in the model's lists of clusters. */
struct mapped {
	size_t stored, zero;	/* the first not yet met of each */
};

/* Whether the next stored or zero cluster is guest cluster c. */
static int
next_stored(const struct model *m, const struct mapped *at, uint64_t c)
{
	return at->stored < m->nstored && m->stored[at->stored] == c;
}

static int
next_zero(const struct model *m, const struct mapped *at, uint64_t c)
{
	return at->zero < m->nzero && m->zero[at->zero] == c;
}

/*
 * The L2 table of L1 entry j at l2: an entry for each stored cluster, to
 * the data clusters in guest order, and the zero flag alone for each zero
 * cluster; *at is where the lists have got to.
 */
static int
read_l2(struct reader *r, const unsigned char *l2, uint64_t j, struct mapped *at,
    struct as_read *seen)
{
	const struct model *m = r->m;
	unsigned l2_bits = m->cluster_bits - 3;

	for (uint64_t i = 0; i < m->per_table; i++) {
		uint64_t guest = j << l2_bits | i, want = 0;
		int stored = next_stored(m, at, guest), zero = next_zero(m, at, guest);

		if (stored)
			want = (m->data_at + seen->data_clusters) * m->cluster_size | COPIED;
		else if (zero)
			want = 1;
		if (same(r->f, be(l2 + i * 8, 8), want, "L2 entry %" PRIu64
		    " of L1 entry %" PRIu64 " (guest cluster %" PRIu64 ")", i, j, guest))
			return -1;
		at->zero += zero;
		if (!stored)
			continue;
		if (claim(r, want & OFFSET_MASK, 1, "a data cluster") == -1)
			return -1;
		seen->data_clusters++;
		at->stored++;
	}
	return 0;
}

/*
 * The L1 table: an entry for each L2 range that holds a data or a zero
 * cluster, the tables in order.
 */
static int
read_l1(struct reader *r, struct as_read *seen)
{
	const struct model *m = r->m;
	uint64_t cs = m->cluster_size, per_table = m->per_table;
	unsigned l2_bits = m->cluster_bits - 3;
	struct mapped at = { 0, 0 };

	for (uint64_t j = 0; j < seen->l1_clusters * per_table; j++) {
		const unsigned char *l1 = meta_at(r, seen->l1_offset + j / per_table * cs);
		int has = (at.stored < m->nstored && m->stored[at.stored] >> l2_bits == j) ||
		    (at.zero < m->nzero && m->zero[at.zero] >> l2_bits == j);
		uint64_t want = 0;

		if (has)
			want = (m->l2_at + seen->l2_tables) * cs | COPIED;
		if (same(r->f, be(l1 + j % per_table * 8, 8), want,
		    "L1 entry %" PRIu64 " of %" PRIu64, j, m->l1_entries))
			return -1;
		if (!has)
			continue;
		if (claim(r, want & OFFSET_MASK, 0, "an L2 table") == -1)
			return -1;
		seen->l2_tables++;
		if (read_l2(r, meta_at(r, want & OFFSET_MASK), j, &at, seen) == -1)
			return -1;
	}
	if (same(r->f, at.stored, m->nstored, "stored clusters the L2 tables map") ||
	    same(r->f, at.zero, m->nzero, "zero clusters the L2 tables map") ||
	    same(r->f, seen->l2_tables, m->l2_tables, "L2 tables the L1 table maps") ||
	    same(r->f, seen->data_clusters, m->data_clusters,
	    "data clusters the L2 tables map"))
		return -1;
	return 0;
}

/* The refcount table and blocks: 1 for each cluster of the file, 0 past its end. */
static int
read_refcounts(struct reader *r, struct as_read *seen)
{
	const struct model *m = r->m;
	uint64_t cs = m->cluster_size, per_table = m->per_table, per_block = m->per_block;

	for (uint64_t i = 0; i < seen->table_clusters * per_table; i++) {
		const unsigned char *t = meta_at(r, seen->table_offset + i / per_table * cs);
		uint64_t want = 0;
		const unsigned char *block;

		if (i * per_block < m->total_clusters)
			want = (m->blocks_at + i) * cs;
		if (same(r->f, be(t + i % per_table * 8, 8), want,
		    "refcount table entry %" PRIu64, i))
			return -1;
		if (want == 0)
			continue;
		if (claim(r, want, 0, "a refcount block") == -1)
			return -1;
		seen->refcount_blocks++;
		block = meta_at(r, want);
		for (uint64_t k = 0; k < per_block; k++) {
			uint64_t c = i * per_block + k;

			if (same(r->f, be(block + k * 2, 2), c < m->total_clusters &&
			    !in_gap(m, c), "the refcount of host cluster %" PRIu64
			    " of %" PRIu64 ", the gap [%" PRIu64 ", %" PRIu64 ")",
			    c, m->total_clusters, m->data_at - m->gap_clusters, m->data_at))
				return -1;
		}
	}
	return 0;
}

/*
 * Every cluster used but the gap's; the parts as read add up, no
 * refcount block spare: one fewer, with its table, would not count the
 * clusters (within a plan, the file to its end, which the plan fixes).
 */
static int
check_as_read(const struct reader *r, const struct as_read *seen)
{
	const struct model *m = r->m;
	uint64_t blocks = seen->refcount_blocks, gap = m->gap_clusters;
	uint64_t fixed = 1 + seen->l1_clusters + seen->l2_tables + seen->data_clusters;

	for (uint64_t c = 0; c < m->total_clusters; c++)
		if (same(r->f, r->used[c], !in_gap(m, c), "uses of host cluster %"
		    PRIu64 " of %" PRIu64, c, m->total_clusters))
			return -1;
	if (m->within && (below(r->f, 0, blocks, "refcount blocks as read") ||
	    below(r->f, (blocks - 1) * m->per_block, m->total_clusters,
	    "refcounts of one block fewer, against the file's clusters")))
		return -1;
	if (same(r->f, fixed + seen->table_clusters + blocks + gap, m->total_clusters,
	    "clusters of the parts as read and the gap, against the file's") ||
	    same(r->f, seen->table_clusters, ceil_div(blocks, m->per_table),
	    "refcount table clusters as read, against what its blocks need") ||
	    below(r->f, 0, blocks, "refcount blocks as read") ||
	    (!m->within && below(r->f, (blocks - 1) * m->per_block,
	    fixed + ceil_div(blocks - 1, m->per_table) + blocks - 1,
	    "refcounts of one block fewer, against the clusters they would count")))
		return -1;
	return 0;
}

/*
 * The file ends at model_image_size: whole clusters, or inside a last
 * metadata cluster whose bytes past it are zeros.
 */
static int
check_end(const struct model *m, const unsigned char *meta, struct model_failure *f)
{
	uint64_t last = m->total_clusters - 1, size = model_image_size(m);
	uint64_t i = meta_index(m, last), cs = m->cluster_size;

	if (at_most(f, size, m->total_clusters * cs, "the file's size, against its "
	    "clusters") || below(f, last * cs, size, "the start of the last cluster, "
	    "against the file's size"))
		return -1;
	if (i == NOT_META)
		return same(f, size, m->total_clusters * cs,
		    "the size of a file that data ends");
	return zero_bytes(f, meta + i * cs, size - last * cs, cs,
	    "the last cluster past the file's end");
}

int
model_check_metadata(const struct model *m, const unsigned char *meta,
    uint64_t made, struct model_failure *f)
{
	struct reader r = { m, meta, NULL, f };
	struct as_read seen;
	int status;

	if (same(f, made, model_meta_clusters(m), "metadata clusters made"))
		return -1;
	if (check_header(m, meta, f) == -1 || check_end(m, meta, f) == -1)
		return -1;
	if ((r.used = calloc(m->total_clusters, 1)) == NULL)
		return out_of_memory(f, "a mark per host cluster");
	memset(&seen, 0, sizeof(seen));
	status = claim_tables(&r, &seen);
	if (status == 0)
		status = read_l1(&r, &seen);
	if (status == 0)
		status = read_refcounts(&r, &seen);
	if (status == 0)
		status = check_as_read(&r, &seen);
	free(r.used);
	return status;
}

/* Seeking */

/* Whether c is within one of where a part of the file starts or ends. */
static int
near_an_edge(const struct model *m, uint64_t c)
{
	const uint64_t edge[] = {
		0, m->l1_at, m->l1_at + m->l1_clusters,
		m->table_at, m->table_at + m->refcount_table_clusters,
		m->blocks_at, m->blocks_at + m->refcount_blocks,
		m->l2_at, m->l2_at + m->l2_tables,
		m->data_at - m->gap_clusters,
		m->data_at, m->data_at + m->data_clusters,
		m->total_clusters,
	};

	for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
		if (c + 1 >= edge[i] && c <= edge[i] + 1)
			return 1;
	return 0;
}

/* Whether a part of the file starts at c. */
static int
part_start(const struct model *m, uint64_t c)
{
	return c == 0 || c == m->l1_at || c == m->table_at || c == m->blocks_at ||
	    c == m->l2_at || c == m->data_at;
}

/* The first metadata cluster at or after host cluster c, or the end. */
static uint64_t
meta_from(const struct model *m, uint64_t c)
{
	return meta_index(m, c) != NOT_META ? c : m->total_clusters;
}

/* From c, the writer must fill what the writer from the start did. */
static int
check_seek_from(const struct model *m, const struct layout *lo,
    const unsigned char *meta, uint64_t c, unsigned char *got,
    struct model_failure *f)
{
	uint64_t cs = m->cluster_size, want = meta_from(m, c);
	uint64_t count = part_start(m, c) ? UINT64_MAX : 3;
	struct meta_writer mw;

	meta_writer_init(&mw, lo);
	meta_writer_seek(&mw, c);
	if (same(f, mw.cluster, want, "meta_writer_seek to host cluster %" PRIu64
	    ": the host cluster it fills next", c))
		return -1;
	for (uint64_t n = 0; n < count; n++) {
		const unsigned char *p;

		if (want >= m->total_clusters)
			return same(f, meta_writer_next(&mw, got), 0, "meta_writer_next "
			    "after the last, from a seek to host cluster %" PRIu64, c);
		if (same(f, meta_writer_next(&mw, got), 1, "meta_writer_next at host "
		    "cluster %" PRIu64 ", from a seek to %" PRIu64, want, c))
			return -1;
		p = meta + meta_index(m, want) * cs;
		if (memcmp(got, p, cs) != 0) {
			size_t i = 0;

			while (got[i] == p[i])
				i++;
			return same(f, got[i], p[i], "host cluster %" PRIu64 " from a "
			    "seek to %" PRIu64 ", byte %zu, against a writer from the "
			    "start", want, c, i);
		}
		want = meta_from(m, want + 1);
	}
	return 0;
}

int
model_check_seek(const struct model *m, const struct layout *lo,
    const unsigned char *meta, uint64_t most, struct model_failure *f)
{
	uint64_t end = m->total_clusters + 2, stride = end / (most ? most : 1) + 1;
	unsigned char *got = malloc(m->cluster_size);
	int status = 0;

	if (got == NULL)
		return out_of_memory(f, "a cluster");
	for (uint64_t c = 0; c < end && status == 0; c++)
		if (end <= most || c % stride == 0 || near_an_edge(m, c))
			status = check_seek_from(m, lo, meta, c, got, f);
	if (status == 0)
		status = check_seek_from(m, lo, meta, UINT64_MAX, got, f);
	free(got);
	return status;
}

/* The run walk from data cluster k: on the run of it, then the next. */
static int
check_run_seek_at(const struct model *m, const struct layout *lo, uint64_t k,
    const uint64_t *end_of, struct model_failure *f)
{
	struct run_walk walk;
	int found = run_walk_seek(&walk, lo, k);
	uint64_t j;

	if (k >= m->nstored)
		return same(f, found, 0, "run_walk_seek to data cluster %" PRIu64
		    " of %zu", k, m->nstored) ||
		    same(f, run_next(&walk), 0, "run_next after a seek past the end");
	if (same(f, found, 1, "run_walk_seek to data cluster %" PRIu64, k) ||
	    same(f, walk.first, m->stored[k], "run_walk_seek to data cluster %"
	    PRIu64 ": first", k) ||
	    same(f, walk.end, end_of[k], "run_walk_seek to data cluster %" PRIu64
	    ": end", k))
		return -1;
	j = k + (end_of[k] - m->stored[k]);
	if (j == m->nstored)
		return same(f, run_next(&walk), 0, "run_next after the last run, "
		    "from a seek to data cluster %" PRIu64, k);
	if (same(f, run_next(&walk), 1, "run_next from a seek to data cluster %"
	    PRIu64, k) ||
	    same(f, walk.first, m->stored[j], "the run after data cluster %" PRIu64
	    ": first", k) ||
	    same(f, walk.end, end_of[j], "the run after data cluster %" PRIu64
	    ": end", k))
		return -1;
	return 0;
}

int
model_check_run_seek(const struct model *m, const struct layout *lo,
    uint64_t most, struct model_failure *f)
{
	size_t n = m->nstored;
	uint64_t *end_of, stride = (n + 2) / (most ? most : 1) + 1;
	int status = 0;

	if ((end_of = calloc(n ? n : 1, sizeof(*end_of))) == NULL)
		return out_of_memory(f, "the ends of the runs");
	/* A run ends where the next stored cluster is not the next cluster. */
	for (size_t k = n; k-- > 0; )
		end_of[k] = k + 1 < n && m->stored[k + 1] == m->stored[k] + 1 ?
		    end_of[k + 1] : m->stored[k] + 1;
	for (uint64_t k = 0; k < n + 2 && status == 0; k++)
		if (n + 2 <= most || k % stride == 0 || k + 2 >= n ||
		    m->stored[k] + 1 == end_of[k] || (k > 0 && m->stored[k - 1] + 1 !=
		    m->stored[k]))
			status = check_run_seek_at(m, lo, k, end_of, f);
	if (status == 0)
		status = check_run_seek_at(m, lo, UINT64_MAX, end_of, f);
	free(end_of);
	return status;
}

/*
 * decoder_tables.c: the L1 and refcount tables of a qcow2 image read into
 * the decoder (see decoder_tables.h): the L2 tables the L1 table names and
 * the refcount blocks the refcount table names, each entry refused for
 * reserved bits, an unaligned offset, a place past the end or in other
 * metadata, a table named twice, or from a pipe, an order that cannot be
 * read forward.  Also what the decoder shares below its steps: which
 * clusters are metadata, and the memory cap its arrays grow under.
 *
 * Every offset an entry holds is checked against everything known at the
 * time both are known: the header, L1 table and refcount table from the
 * header; the L2 tables once the L1 table is read; the refcount blocks
 * once the refcount table is; data as each L2 table is read
 * (decoder_runs.c).
 */
#include <inttypes.h>
#include <stdio.h>	/* snprintf, for messages */
#include <stdlib.h>

#include "decoder_tables.h"
#include "qcow2.h"
#include "util.h"

/* Sorted numbers */

static int
contains(const uint64_t *v, size_t n, uint64_t key)
{
	size_t i = lower_bound_u64(v, n, key);

	return i < n && v[i] == key;
}

static int
place_before(const void *places, size_t i, uint64_t host)
{
	return ((const struct l2_place *)places)[i].host < host;
}

/* The index in l2_places of the L2 table at host, or ntables. */
size_t
l2_place_of(const struct decoder *d, uint64_t host)
{
	size_t i = search_sorted(d->l2_places, 0, d->ntables, host, place_before);

	return i < d->ntables && d->l2_places[i].host == host ? i : d->ntables;
}

/* Memory */

/* Doubling, or up to what is left under the cap. */
void *
decoder_grow(struct decoder *d, void *array, size_t *cap, size_t size,
    size_t need, const char *what)
{
	size_t others = d->memory - *cap * size, room, new_cap;
	void *p;

	if (need <= *cap)
		return array;
	room = d->memory_max > others ? (d->memory_max - others) / size : 0;
	if (need > room) {
		decoder_fail(d, IMAGE_MEMORY, d->asked.host, "image needs more than "
		    "the %zu MiB memory cap to decode: over %zu %s",
		    d->memory_max >> 20, need - 1, what);
		return NULL;
	}
	new_cap = *cap > 0 ? *cap : 4;
	while (new_cap < need)
		new_cap = new_cap > room / 2 ? room : new_cap * 2;
	if (new_cap > room)
		new_cap = room;
	if ((p = realloc(array, new_cap * size)) == NULL) {
		decoder_fail(d, IMAGE_MEMORY, d->asked.host, "out of memory for %zu %s",
		    need, what);
		return NULL;
	}
	d->memory = others + new_cap * size;
	*cap = new_cap;
	return p;
}

static int
in_extent(const struct extent *e, uint64_t offset)
{
	return offset >= e->start && offset < e->end;
}

int
tables_metadata_at(const struct decoder *d, uint64_t host, char *desc,
    size_t size)
{
	if (in_extent(&d->l1_at, host))
		snprintf(desc, size, "the L1 table at %ju", NUM(d->l1_at.start));
	else if (in_extent(&d->refcount_table_at, host))
		snprintf(desc, size, "the refcount table at %ju",
		    NUM(d->refcount_table_at.start));
	else if (d->l2_places != NULL && l2_place_of(d, host) < d->ntables)
		snprintf(desc, size, "the L2 table at %ju", NUM(host));
	else if (d->refcount_table_read == d->refcount_table_bytes &&
	    contains(d->refblocks, d->nrefblocks, host))
		snprintf(desc, size, "the refcount block at %ju", NUM(host));
	else
		return 0;
	return 1;
}

static int
block_before(const void *blocks, size_t i, uint64_t host)
{
	return ((const uint64_t *)blocks)[i] < host;
}

uint64_t
tables_metadata_in(const struct decoder *d, uint64_t start, uint64_t end,
    char *desc, size_t size)
{
	uint64_t cs = d->hdr.cluster_size, first = UINT64_MAX;
	size_t i;

	if (d->l1_at.start < end && start < d->l1_at.end)
		first = max_u64(start, d->l1_at.start);
	if (d->refcount_table_at.start < end && start < d->refcount_table_at.end)
		first = min_u64(first, max_u64(start, d->refcount_table_at.start));
	if (d->l2_places != NULL) {
		i = search_sorted(d->l2_places, 0, d->ntables, start - start % cs,
		    place_before);
		if (i < d->ntables && d->l2_places[i].host < end)
			first = min_u64(first, d->l2_places[i].host);
	}
	if (d->refcount_table_read == d->refcount_table_bytes) {
		i = search_sorted(d->refblocks, 0, d->nrefblocks, start - start % cs,
		    block_before);
		if (i < d->nrefblocks && d->refblocks[i] < end)
			first = min_u64(first, d->refblocks[i]);
	}
	if (first != UINT64_MAX)
		tables_metadata_at(d, first - first % cs, desc, size);
	return first == UINT64_MAX ? first : first - first % cs;
}

/* The L1 table */

/* Each L2 table in use: reserved bits, alignment, place; then kept. */
static int
parse_l1(struct decoder *d, const unsigned char *buf, size_t len)
{
	uint64_t cs = d->hdr.cluster_size, first = d->l1_read / 8;
	struct l2_ref *tables;
	char desc[64];

	for (size_t k = 0; k < len / 8; k++) {
		uint64_t entry = get_be(buf + k * 8, 8), index = first + k;
		uint64_t at = d->hdr.l1_offset + index * 8;
		uint64_t host = entry & ENTRY_OFFSET_MASK;

		if (entry & L1_RESERVED)
			return decoder_fail(d, IMAGE_RESERVED_BITS, at, "L1 entry %ju at "
			    "offset %ju has reserved bits set (0x%016jx)", NUM(index), NUM(at),
			    NUM(entry));
		if (host == 0)
			continue;
		if (host % cs != 0)
			return decoder_fail(d, IMAGE_UNALIGNED, at, "L1 entry %ju at "
			    "offset %ju points to unaligned offset %ju", NUM(index), NUM(at),
			    NUM(host));
		if (tables_metadata_at(d, host, desc, sizeof(desc)))
			return decoder_fail(d, IMAGE_OVERLAP, at, "L1 entry %ju at offset "
			    "%ju points into %s", NUM(index), NUM(at), desc);
		if (d->mode == DECODE_SEEKABLE && (host >= d->file_size ||
		    d->file_size - host < cs))
			return decoder_fail(d, IMAGE_PAST_END, at, "L1 entry %ju at offset "
			    "%ju points to an L2 table at %ju, past the end of the file "
			    "(%ju bytes)", NUM(index), NUM(at), NUM(host), NUM(d->file_size));
		if (d->mode == DECODE_FORWARD && host < d->hdr.l1_offset)
			return decoder_fail(d, IMAGE_ORDER, host, "L2 table at offset %ju "
			    "comes before the L1 table at %ju that points to it"
			    IMAGE_ORDER_ADVICE, NUM(host), NUM(d->hdr.l1_offset));
		if ((tables = decoder_grow(d, d->tables, &d->tables_cap,
		    sizeof(*tables), d->ntables + 1, "L1 entries in use")) == NULL)
			return -1;
		d->tables = tables;
		d->tables[d->ntables++] = (struct l2_ref){ .host = host, .index = index };
	}
	d->l1_read += len;
	return 0;
}

static int
cmp_l2_place(const void *a, const void *b)
{
	return cmp_u64(&((const struct l2_place *)a)->host,
	    &((const struct l2_place *)b)->host);
}

/*
 * All of the L1 table read: sort the L2 tables by host, none twice.  (An
 * L2 table and a refcount block in one cluster are caught by tables_metadata_at
 * as the second of the two tables is read.)
 */
static int
finish_l1(struct decoder *d)
{
	struct l2_place *places;
	size_t cap = 0;

	if (d->ntables == 0)
		return 0;
	if ((places = decoder_grow(d, NULL, &cap, sizeof(*places), d->ntables,
	    "L1 entries in use")) == NULL)
		return -1;
	for (size_t i = 0; i < d->ntables; i++)
		places[i] = (struct l2_place){ d->tables[i].host, i };
	qsort(places, d->ntables, sizeof(*places), cmp_l2_place);
	d->l2_places = places;
	for (size_t i = 1; i < d->ntables; i++)
		if (places[i].host == places[i - 1].host)
			return decoder_fail(d, IMAGE_OVERLAP, d->hdr.l1_offset +
			    d->tables[max_u64(places[i].table, places[i - 1].table)].index * 8,
			    "L1 entries %ju and %ju both point to the L2 table at %ju",
			    NUM(d->tables[min_u64(places[i].table, places[i - 1].table)].index),
			    NUM(d->tables[max_u64(places[i].table, places[i - 1].table)].index),
			    NUM(places[i].host));
	return 0;
}

int
tables_add_l1(struct decoder *d, const unsigned char *buf, size_t len)
{
	if (parse_l1(d, buf, len) != 0)
		return -1;
	return d->l1_read == d->l1_bytes ? finish_l1(d) : 0;
}

/* The refcount table */

static int
parse_refcount_table(struct decoder *d, const unsigned char *buf, size_t len)
{
	uint64_t cs = d->hdr.cluster_size, first = d->refcount_table_read / 8;
	uint64_t *blocks;
	char desc[64];

	for (size_t k = 0; k < len / 8; k++) {
		uint64_t block = get_be(buf + k * 8, 8), index = first + k;
		uint64_t at = d->hdr.refcount_table_offset + index * 8;

		if (block == 0)
			continue;
		if (block & REFTABLE_RESERVED)
			return decoder_fail(d, IMAGE_RESERVED_BITS, at, "refcount table "
			    "entry %ju at offset %ju has reserved bits set (0x%016jx)",
			    NUM(index), NUM(at), NUM(block));
		if (block % cs != 0)
			return decoder_fail(d, IMAGE_UNALIGNED, at, "refcount table entry "
			    "%ju at offset %ju points to unaligned offset %ju", NUM(index),
			    NUM(at), NUM(block));
		if (block >= MAX_HOST_OFFSET)
			return decoder_fail(d, IMAGE_PAST_END, at, "refcount table entry "
			    "%ju at offset %ju points past 64 PiB", NUM(index), NUM(at));
		if (tables_metadata_at(d, block, desc, sizeof(desc)))
			return decoder_fail(d, IMAGE_OVERLAP, at, "refcount table entry "
			    "%ju at offset %ju points into %s", NUM(index), NUM(at), desc);
		if ((blocks = decoder_grow(d, d->refblocks, &d->refblocks_cap,
		    sizeof(*blocks), d->nrefblocks + 1, "refcount blocks")) == NULL)
			return -1;
		d->refblocks = blocks;
		d->refblocks[d->nrefblocks++] = block;
	}
	d->refcount_table_read += len;
	return 0;
}

/* All of the refcount table read: sort the blocks, none twice. */
static int
finish_refcount_table(struct decoder *d)
{
	if (d->nrefblocks > 1)
		qsort(d->refblocks, d->nrefblocks, sizeof(*d->refblocks), cmp_u64);
	for (size_t i = 1; i < d->nrefblocks; i++)
		if (d->refblocks[i] == d->refblocks[i - 1])
			return decoder_fail(d, IMAGE_OVERLAP, d->hdr.refcount_table_offset,
			    "two refcount table entries point to the refcount block "
			    "at %ju", NUM(d->refblocks[i]));
	return 0;
}

int
tables_add_refcount_table(struct decoder *d, const unsigned char *buf,
    size_t len)
{
	if (parse_refcount_table(d, buf, len) != 0)
		return -1;
	return d->refcount_table_read == d->refcount_table_bytes ?
	    finish_refcount_table(d) : 0;
}

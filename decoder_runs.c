/*
 * decoder_runs.c: each L2 table of a qcow2 image turned into runs of data
 * and compressed clusters (see decoder_runs.h), its entries refused for
 * reserved bits, subcluster bitmaps QEMU calls invalid, and data that is
 * unaligned, past the end, or in the metadata.  From a file, runs that
 * share a host cluster are caught by sorting them; from a pipe,
 * decoder_stream.c places each as its bytes come.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "decoder_runs.h"
#include "decoder_tables.h"
#include "qcow2.h"
#include "util.h"

/* Runs sorted */

static int
cmp_run_host(const void *a, const void *b)
{
	return cmp_u64(&((const struct data_run *)a)->host,
	    &((const struct data_run *)b)->host);
}

static int
cmp_run_guest(const void *a, const void *b)
{
	return cmp_u64(&((const struct data_run *)a)->guest,
	    &((const struct data_run *)b)->guest);
}

/* L2 tables and data */

/* From a file: a run of data, joined to the one before if it continues it. */
static int
add_run(struct decoder *d, const struct data_run *run)
{
	struct data_run *last = d->nruns > 0 ? &d->runs[d->nruns - 1] : NULL;
	struct data_run *runs;

	if (last != NULL && run->stored == 0 && last->stored == 0 &&
	    last->guest + last->length == run->guest &&
	    last->host + last->length == run->host) {
		last->length += run->length;
		return 0;
	}
	if ((runs = decoder_grow(d, d->runs, &d->runs_cap, sizeof(*runs),
	    d->nruns + 1, "runs of data")) == NULL)
		return -1;
	d->runs = runs;
	d->runs[d->nruns++] = *run;
	return 0;
}

/* From a pipe: the same, kept with its table until the disk is past it. */
static int
add_item(struct decoder *d, struct l2_ref *t, const struct data_run *run)
{
	struct item *last = t->nitems > 0 ? &t->items[t->nitems - 1] : NULL;
	size_t cap = t->items_cap;
	struct item *items;

	if (last != NULL && run->stored == 0 && last->stored == 0 &&
	    last->guest + last->length == run->guest &&
	    last->host + last->length == run->host) {
		last->length += run->length;
		return 0;
	}
	if ((items = decoder_grow(d, t->items, &cap, sizeof(*items),
	    (size_t)t->nitems + 1, "runs of data")) == NULL)
		return -1;
	t->items = items;
	t->items_cap = (uint32_t)cap;
	t->items[t->nitems++] = (struct item){ run->guest, run->host, run->length,
	    (uint32_t)run->stored, ITEM_AHEAD };
	return 0;
}

static int
keep(struct decoder *d, struct l2_ref *t, uint64_t guest, uint64_t host,
    uint64_t length, uint64_t stored)
{
	struct data_run run = { guest, host, length, stored };

	return d->mode == DECODE_SEEKABLE ? add_run(d, &run) : add_item(d, t, &run);
}

/* The host cluster an L2 entry maps data to: its place, before its bytes. */
static int
check_data_cluster(struct decoder *d, uint64_t host, uint64_t at, uint64_t guest)
{
	uint64_t cs = d->hdr.cluster_size;
	char desc[64];

	if (host % cs != 0)
		return decoder_fail(d, IMAGE_UNALIGNED, at, "L2 entry at offset %ju "
		    "(guest offset %ju) points to unaligned offset %ju", NUM(at),
		    NUM(guest), NUM(host));
	if (tables_metadata_at(d, host, desc, sizeof(desc)))
		return decoder_fail(d, IMAGE_OVERLAP, at, "L2 entry at offset %ju "
		    "(guest offset %ju) points into %s", NUM(at), NUM(guest), desc);
	if (d->mode == DECODE_SEEKABLE && host >= d->file_size)
		return decoder_fail(d, IMAGE_PAST_END, at, "L2 entry at offset %ju "
		    "(guest offset %ju) points to %ju, past the end of the file "
		    "(%ju bytes)", NUM(at), NUM(guest), NUM(host), NUM(d->file_size));
	return 0;
}

/*
 * A compressed cluster: its bytes at a byte offset, as many as the
 * descriptor's sectors reach, which may run into the next host clusters
 * but not into metadata, and must begin inside the file (what runs past
 * its end reads as zeros, as QEMU reads it).
 */
static int
parse_compressed(struct decoder *d, struct l2_ref *t, uint64_t entry,
    uint64_t bitmap, uint64_t at, uint64_t guest)
{
	unsigned shift = 62 - (d->hdr.cluster_bits - 8);
	uint64_t cs = d->hdr.cluster_size, host = entry & ((UINT64_C(1) << shift) - 1);
	uint64_t sectors = (entry >> shift & (cs / 256 - 1)) + 1;
	uint64_t stored = sectors * 512 - host % 512;
	char desc[64];

	if (entry & ENTRY_COPIED)
		return decoder_fail(d, IMAGE_RESERVED_BITS, at, "L2 entry at offset "
		    "%ju (guest offset %ju) is compressed and has the copied bit set "
		    "(0x%016jx)", NUM(at), NUM(guest), NUM(entry));
	if (bitmap != 0)
		return decoder_fail(d, IMAGE_SUBCLUSTERS, at, "L2 entry at offset %ju "
		    "(guest offset %ju) is compressed and has a subcluster bitmap "
		    "(0x%016jx)", NUM(at), NUM(guest), NUM(bitmap));
	for (uint64_t c = host / cs * cs; c < host + stored; c += cs)
		if (c < cs || tables_metadata_at(d, c, desc, sizeof(desc)))
			return decoder_fail(d, IMAGE_OVERLAP, at, "L2 entry at offset %ju "
			    "(guest offset %ju) has compressed data at %ju, in %s", NUM(at),
			    NUM(guest), NUM(host), c < cs ? "the header" : desc);
	if (d->mode == DECODE_SEEKABLE && host >= d->file_size)
		return decoder_fail(d, IMAGE_PAST_END, at, "L2 entry at offset %ju "
		    "(guest offset %ju) has compressed data at %ju, past the end of "
		    "the file (%ju bytes)", NUM(at), NUM(guest), NUM(host),
		    NUM(d->file_size));
	return keep(d, t, guest, host, min_u64(cs, d->hdr.virtual_size - guest), stored);
}

/* A standard 64-bit entry: unallocated, zero, or a cluster of data. */
static int
parse_entry(struct decoder *d, struct l2_ref *t, uint64_t entry, uint64_t at,
    uint64_t guest)
{
	uint64_t reserved = L2_RESERVED | (d->hdr.version == 2 ? ENTRY_ZERO : 0);
	uint64_t host = entry & ENTRY_OFFSET_MASK;

	if (entry & reserved)
		return decoder_fail(d, IMAGE_RESERVED_BITS, at, "L2 entry at offset "
		    "%ju (guest offset %ju) has reserved bits set (0x%016jx)", NUM(at),
		    NUM(guest), NUM(entry));
	if ((entry & ENTRY_ZERO) && host % d->hdr.cluster_size != 0)
		return decoder_fail(d, IMAGE_UNALIGNED, at, "L2 entry at offset %ju "
		    "(guest offset %ju) points to unaligned offset %ju", NUM(at),
		    NUM(guest), NUM(host));
	/* Zero clusters read as zeros, preallocated or not. */
	if ((entry & ENTRY_ZERO) || host == 0)
		return 0;
	if (check_data_cluster(d, host, at, guest) != 0)
		return -1;
	return keep(d, t, guest, host,
	    min_u64(d->hdr.cluster_size, d->hdr.virtual_size - guest), 0);
}

/* An extended entry: a 64-bit entry and 32 subclusters' state. */
static int
parse_extended_entry(struct decoder *d, struct l2_ref *t, uint64_t entry,
    uint64_t bitmap, uint64_t at, uint64_t guest)
{
	uint64_t host = entry & ENTRY_OFFSET_MASK, sub = d->hdr.subcluster_size;
	uint64_t allocated = bitmap & SUB_ALLOCATED, zero = bitmap >> 32;

	if (entry & (L2_RESERVED | ENTRY_ZERO))
		return decoder_fail(d, IMAGE_RESERVED_BITS, at, "L2 entry at offset "
		    "%ju (guest offset %ju) has reserved bits set (0x%016jx)", NUM(at),
		    NUM(guest), NUM(entry));
	if (host == 0 && allocated != 0)
		return decoder_fail(d, IMAGE_SUBCLUSTERS, at, "L2 entry at offset %ju "
		    "(guest offset %ju) allocates subclusters but no cluster (bitmap "
		    "0x%016jx)", NUM(at), NUM(guest), NUM(bitmap));
	if (host == 0)
		return 0;
	if (host % d->hdr.cluster_size != 0)
		return decoder_fail(d, IMAGE_UNALIGNED, at, "L2 entry at offset %ju "
		    "(guest offset %ju) points to unaligned offset %ju", NUM(at),
		    NUM(guest), NUM(host));
	if (allocated & zero)
		return decoder_fail(d, IMAGE_SUBCLUSTERS, at, "L2 entry at offset %ju "
		    "(guest offset %ju) has subclusters both allocated and zero "
		    "(bitmap 0x%016jx)", NUM(at), NUM(guest), NUM(bitmap));
	/* Subclusters past the end of the disk are never read. */
	if (d->hdr.virtual_size - guest < L2_SUBCLUSTERS * sub)
		allocated &= (UINT64_C(1) << ceil_div(d->hdr.virtual_size - guest, sub)) - 1;
	if (allocated == 0)
		return 0;
	if (check_data_cluster(d, host, at, guest) != 0)
		return -1;
	for (unsigned a = 0; a < L2_SUBCLUSTERS; ) {
		unsigned b = a;

		if (!(allocated >> a & 1)) {
			a++;
			continue;
		}
		while (b < L2_SUBCLUSTERS && (allocated >> b & 1))
			b++;
		if (keep(d, t, guest + a * sub, host + a * sub,
		    min_u64((b - a) * sub, d->hdr.virtual_size - guest - a * sub), 0) != 0)
			return -1;
		a = b;
	}
	return 0;
}

int
runs_add_l2(struct decoder *d, size_t table, const unsigned char *buf)
{
	struct l2_ref *t = &d->tables[table];
	uint64_t size = d->hdr.l2_entry_size, base = t->index * d->hdr.l2_span;

	for (uint64_t i = 0; i < d->hdr.l2_entries; i++) {
		uint64_t guest = base + i * d->hdr.cluster_size, at = t->host + i * size;
		uint64_t entry = get_be(buf + i * size, 8);
		uint64_t bitmap = d->hdr.extended_l2 ? get_be(buf + i * size + 8, 8) : 0;
		int status;

		if (guest >= d->hdr.virtual_size)
			break;
		if (entry & ENTRY_COMPRESSED)
			status = parse_compressed(d, t, entry, bitmap, at, guest);
		else if (d->hdr.extended_l2)
			status = parse_extended_entry(d, t, entry, bitmap, at, guest);
		else
			status = parse_entry(d, t, entry, at, guest);
		if (status != 0)
			return -1;
	}
	t->read = 1;
	d->tables_read++;
	return 0;
}

/*
 * From a file: no two runs share a host cluster, unless one entry's.
 * Compressed clusters share theirs by design, with each other only: a
 * pipe could not tell which bytes are whose, and QEMU counts such a
 * cluster as an error.
 */
static int
share_fail(struct decoder *d, uint64_t guest, uint64_t other, uint64_t cluster)
{
	return decoder_fail(d, IMAGE_OVERLAP, cluster, "L2 entries for guest offsets "
	    "%ju and %ju both point to the host cluster at %ju", NUM(guest), NUM(other),
	    NUM(cluster));
}

int
runs_check_apart(struct decoder *d)
{
	uint64_t cs = d->hdr.cluster_size, end = 0, delta = 0, guest = 0;
	uint64_t packed_end = 0, packed_guest = 0;	/* of compressed data */

	if (d->nruns > 1)
		qsort(d->runs, d->nruns, sizeof(*d->runs), cmp_run_host);
	for (size_t i = 0; i < d->nruns; i++) {
		const struct data_run *r = &d->runs[i];
		uint64_t first = r->host / cs;

		if (r->stored != 0) {
			if (end > 0 && first <= (end - 1) / cs)
				return share_fail(d, guest, r->guest, first * cs);
			if (r->host + r->stored > packed_end) {
				packed_end = r->host + r->stored;
				packed_guest = r->guest;
			}
			continue;
		}
		if (packed_end > 0 && first <= (packed_end - 1) / cs)
			return share_fail(d, packed_guest, r->guest, first * cs);
		/* Same cluster, same guest - host: the same L2 entry. */
		if (end > 0 && first <= (end - 1) / cs && r->guest - r->host != delta)
			return share_fail(d, guest, r->guest, first * cs);
		if (end == 0 || r->host + r->length > end) {
			end = r->host + r->length;
			delta = r->guest - r->host;
			guest = r->guest;
		}
	}
	if (d->nruns > 1)
		qsort(d->runs, d->nruns, sizeof(*d->runs), cmp_run_guest);
	d->runs_checked = 1;
	return 0;
}

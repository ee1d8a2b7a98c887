/*
 * decoder_runs.c: each L2 table of a qcow2 image turned into runs of data
 * (see decoder_runs.h), its entries refused for reserved bits, compressed
 * clusters, subcluster bitmaps QEMU calls invalid, and data that is
 * unaligned, past the end, in the metadata or in a host cluster already
 * used.  Runs that share a host cluster are caught by sorting them (from
 * a file) or by their host order (from a pipe), which must also be their
 * guest order.
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

/*
 * From a pipe: data in guest order, and no host cluster for two guest
 * clusters (subclusters of one entry share theirs).  Only the run before
 * can break either, since all before it did not.
 */
static int
check_stream_order(struct decoder *d, uint64_t guest, uint64_t host,
    uint64_t length, uint64_t at)
{
	const struct data_run *prev = &d->last_added;
	uint64_t cs = d->hdr.cluster_size, prev_end = prev->host + prev->length;

	if (prev->length == 0)
		return 0;
	if (host + length <= prev->host)
		return decoder_fail(d, IMAGE_ORDER, host, "data for guest offset %ju "
		    "at offset %ju comes before data for guest offset %ju at %ju: its "
		    "guest order differs from its host order" IMAGE_ORDER_ADVICE,
		    NUM(guest), NUM(host), NUM(prev->guest), NUM(prev->host));
	if (host < prev_end || (host / cs == (prev_end - 1) / cs &&
	    guest - host != prev->guest - prev->host))
		return decoder_fail(d, IMAGE_OVERLAP, at, "L2 entry at offset %ju "
		    "(guest offset %ju) points to the host cluster at %ju, already "
		    "used for guest offset %ju", NUM(at), NUM(guest), NUM(host / cs * cs),
		    NUM(prev->guest));
	return 0;
}

/* Keep a run of data, joined to the one before if it continues it. */
static int
add_run(struct decoder *d, uint64_t guest, uint64_t host, uint64_t length,
    uint64_t at)
{
	struct data_run *last = d->nruns > d->next_run ? &d->runs[d->nruns - 1] : NULL;
	struct data_run *runs;

	if (d->mode == DECODE_FORWARD &&
	    check_stream_order(d, guest, host, length, at) != 0)
		return -1;
	d->last_added.guest = guest;
	d->last_added.host = host;
	d->last_added.length = length;
	if (last != NULL && last->guest + last->length == guest &&
	    last->host + last->length == host) {
		last->length += length;
		return 0;
	}
	/* From a pipe, output runs are done with: reuse their room. */
	if (d->nruns == d->runs_cap && d->next_run >= d->nruns / 2 && d->next_run > 0) {
		memmove(d->runs, d->runs + d->next_run,
		    (d->nruns - d->next_run) * sizeof(*d->runs));
		d->nruns -= d->next_run;
		d->next_run = 0;
	}
	if ((runs = decoder_grow(d, d->runs, &d->runs_cap, sizeof(*runs),
	    d->nruns + 1, "runs of data")) == NULL)
		return -1;
	d->runs = runs;
	d->runs[d->nruns].guest = guest;
	d->runs[d->nruns].host = host;
	d->runs[d->nruns].length = length;
	d->nruns++;
	return 0;
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
	if (d->mode == DECODE_FORWARD && host < d->position)
		return decoder_fail(d, IMAGE_ORDER, host, "data for guest offset %ju "
		    "at offset %ju comes before the L2 table at %ju that maps it"
		    IMAGE_ORDER_ADVICE, NUM(guest), NUM(host), NUM(d->asked.host));
	return 0;
}

/* A standard 64-bit entry: unallocated, zero, or a cluster of data. */
static int
parse_entry(struct decoder *d, uint64_t entry, uint64_t at, uint64_t guest)
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
	return add_run(d, guest, host,
	    min_u64(d->hdr.cluster_size, d->hdr.virtual_size - guest), at);
}

/* An extended entry: a 64-bit entry and 32 subclusters' state. */
static int
parse_extended_entry(struct decoder *d, uint64_t entry, uint64_t bitmap,
    uint64_t at, uint64_t guest)
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
		if (add_run(d, guest + a * sub, host + a * sub,
		    min_u64((b - a) * sub, d->hdr.virtual_size - guest - a * sub), at) != 0)
			return -1;
		a = b;
	}
	return 0;
}

int
runs_add_l2(struct decoder *d, const unsigned char *buf)
{
	const struct l2_ref *t = &d->tables[d->tables_read];
	uint64_t size = d->hdr.l2_entry_size, base = t->index * d->hdr.l2_span;

	for (uint64_t i = 0; i < d->hdr.l2_entries; i++) {
		uint64_t guest = base + i * d->hdr.cluster_size, at = t->host + i * size;
		uint64_t entry = get_be(buf + i * size, 8);
		int status;

		if (guest >= d->hdr.virtual_size)
			break;
		if (entry & ENTRY_COMPRESSED)
			return decoder_fail(d, IMAGE_COMPRESSED, at, "compressed cluster "
			    "at guest offset %ju (L2 entry at offset %ju): convert it "
			    "first with qemu-img convert -O qcow2 (sqcow2 reads no "
			    "compressed clusters)", NUM(guest), NUM(at));
		if (d->hdr.extended_l2)
			status = parse_extended_entry(d, entry,
			    get_be(buf + i * size + 8, 8), at, guest);
		else
			status = parse_entry(d, entry, at, guest);
		if (status != 0)
			return -1;
	}
	d->tables_read++;
	return 0;
}

/* From a file: no two runs share a host cluster, unless one entry's. */
int
runs_check_apart(struct decoder *d)
{
	uint64_t cs = d->hdr.cluster_size, end = 0, delta = 0, guest = 0;

	if (d->nruns > 1)
		qsort(d->runs, d->nruns, sizeof(*d->runs), cmp_run_host);
	for (size_t i = 0; i < d->nruns; i++) {
		const struct data_run *r = &d->runs[i];

		/* Same cluster, same guest - host: the same L2 entry. */
		if (i > 0 && r->host / cs <= (end - 1) / cs && r->guest - r->host != delta)
			return decoder_fail(d, IMAGE_OVERLAP, r->host / cs * cs,
			    "L2 entries for guest offsets %ju and %ju both point to the "
			    "host cluster at %ju", NUM(guest), NUM(r->guest),
			    NUM(r->host / cs * cs));
		if (i == 0 || r->host + r->length > end) {
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

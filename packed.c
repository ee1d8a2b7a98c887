/*
 * packed.c: the compressed forms of an image, -z's; see packed.h.
 */
#define _GNU_SOURCE

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deflate.h"
#include "meta.h"
#include "packed.h"
#include "qcow2.h"
#include "report.h"
#include "stream.h"
#include "util.h"

#define MAX_PACK_THREADS	8

/* Compressors */

/* The clusters of one chunk deflated on every core. */
struct compressor {
	size_t cs;
	unsigned threads;
	struct deflater *z[MAX_PACK_THREADS];
	const unsigned char *chunk, *keep;	/* keep NULL: every cluster */
	uint64_t clusters;
	atomic_uint_fast64_t next;	/* the first cluster no thread has taken */
	unsigned char *streams;		/* cluster i's at i * cs */
	size_t *lengths;		/* 0: stored as it is */
};

/* One thread's share: the compressor, and its deflater. */
struct share {
	struct compressor *k;
	struct deflater *z;
};

size_t
packed_chunk_bytes(size_t cs)
{
	size_t bytes = 8 * cs;

	return bytes > IO_SIZE ? bytes : IO_SIZE;
}

static void
compressor_start(struct compressor *k, size_t cs)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	size_t chunk = packed_chunk_bytes(cs);

	*k = (struct compressor){ .cs = cs, .threads = 1 };
	if (cores > 1)
		k->threads = cores > MAX_PACK_THREADS ? MAX_PACK_THREADS : (unsigned)cores;
	k->streams = malloc(chunk);
	k->lengths = calloc(chunk / cs, sizeof(*k->lengths));
	if (k->streams == NULL || k->lengths == NULL)
		die(1, "compressing");
	for (unsigned t = 0; t < k->threads; t++)
		if ((k->z[t] = malloc(sizeof(struct deflater))) == NULL)
			die(1, "compressing");
}

static void
compressor_free(struct compressor *k)
{
	for (unsigned t = 0; t < k->threads; t++)
		free(k->z[t]);
	free(k->streams);
	free(k->lengths);
}

static void *
compress_share(void *arg)
{
	struct share *sh = arg;
	struct compressor *k = sh->k;

	/* A cluster at a time: a thread the scheduler holds back holds up one. */
	for (;;) {
		uint64_t i = atomic_fetch_add(&k->next, 1);

		if (i >= k->clusters)
			break;
		if (k->keep == NULL || k->keep[i])
			k->lengths[i] = deflate_cluster(sh->z, k->streams + i * k->cs,
			    k->cs - 1, k->chunk + i * k->cs, k->cs);
	}
	return NULL;
}

/*
 * The clusters of chunk that keep says (NULL: all) deflated, on the
 * workers and the caller, each taking the next one left.
 */
static void
compress_chunk(struct compressor *k, const unsigned char *chunk,
    const unsigned char *keep, uint64_t clusters)
{
	struct share shares[MAX_PACK_THREADS];
	pthread_t tid[MAX_PACK_THREADS];
	unsigned started = 0;

	k->chunk = chunk;
	k->keep = keep;
	k->clusters = clusters;
	atomic_store(&k->next, 0);
	for (unsigned t = 0; t < k->threads; t++)
		shares[t] = (struct share){ k, k->z[t] };
	while (started + 1 < k->threads && pthread_create(&tid[started], NULL,
	    compress_share, &shares[started + 1]) == 0)
		started++;
	compress_share(&shares[0]);
	for (unsigned t = 0; t < started; t++)
		pthread_join(tid[t], NULL);
}

/* Packing */

/*
 * Where a cluster whose stream is n bytes long goes (n 0: stored as it
 * is, from a cluster boundary), the data packed up to *at; *at moves past
 * it.  Returns its L2 entry, and in [*from, *to) the bytes whose host
 * clusters it references: for a stream, the 512-byte sectors it touches,
 * as QEMU counts them.
 */
static uint64_t
place(uint64_t *at, size_t n, const struct layout *lo, uint64_t *from, uint64_t *to)
{
	unsigned x = 62 - (lo->cluster_bits - 8);
	uint64_t entry;

	if (n == 0) {
		*at = round_up(*at, lo->cluster_size);
		*from = *at;
		*to = *at += lo->cluster_size;
		return *from | ENTRY_COPIED;
	}
	entry = ENTRY_COMPRESSED | (((*at + n - 1) >> 9) - (*at >> 9)) << x | *at;
	*from = *at & ~UINT64_C(511);
	*to = round_up(*at + n, 512);
	*at += n;
	return entry;
}

static size_t
length_at(const struct packed *pk, uint64_t i)
{
	return (size_t)get_be(pk->lengths + i * pk->width, (int)pk->width);
}

static void
add_length(struct packed *pk, size_t n)
{
	if (pk->n == pk->cap) {
		uint64_t cap = pk->cap ? 2 * pk->cap : 4096;
		unsigned char *grown;

		if (cap * pk->width > PACKED_SIZES_MAX)
			diex(1, "-z to a stream keeps %u bytes for each data cluster, and "
			    "this disk needs more than %zu MiB of them: write it with -o "
			    "FILE, in one pass", pk->width, PACKED_SIZES_MAX >> 20);
		if ((grown = realloc(pk->lengths, cap * pk->width)) == NULL)
			die(1, "compressing");
		pk->lengths = grown;
		pk->cap = cap;
	}
	put_be(pk->lengths + pk->n++ * pk->width, (int)pk->width, n);
}

void
packed_free(struct packed *pk)
{
	free(pk->lengths);
	pk->lengths = NULL;
	pk->n = pk->cap = 0;
}

/* The stream form: first pass */

void
packed_pass(struct copier *c, struct layout *plan, struct sieve *s, struct packed *pk)
{
	struct layout whole = *plan;
	size_t chunk = packed_chunk_bytes(plan->cluster_size);
	unsigned char *room = malloc(chunk);
	uint64_t at = 0, from, to;
	enum layout_error error;
	struct compressor k;
	struct run_walk walk;

	if (!io_seekable(input_of(c)))
		diex(2, "-z to a stream reads the disk twice, and %s is not a file or "
		    "a block device (-o FILE does it in one pass)", input_of(c)->name);
	if (room == NULL)
		die(1, "compressing");
	*pk = (struct packed){ .width = plan->cluster_size > 65536 ? 4 : 2 };
	compressor_start(&k, plan->cluster_size);
	run_walk_init(&walk, &whole);
	while (run_next(&walk)) {
		uint64_t cluster = walk.first, clusters;

		input_seek(c, cluster << whole.cluster_bits);
		while (cluster < walk.end) {
			const unsigned char *bytes = sieve_read(c, &whole, s, room, chunk,
			    &cluster, walk.end, &clusters);

			if (clusters == 0)
				break;
			sieve_clusters(s, &whole, bytes, cluster, clusters);
			compress_chunk(&k, bytes, s->keep, clusters);
			for (uint64_t i = 0; i < clusters; i++)
				if (s->keep[i]) {
					add_length(pk, k.lengths[i]);
					place(&at, k.lengths[i], plan, &from, &to);
				}
			cluster += clusters;
		}
	}
	pk->data_bytes = at;
	input_unmap(c);
	input_move(c, 0);
	compressor_free(&k);
	free(room);
	if ((error = layout_of_sieve(plan, &whole, s)) != LAYOUT_OK)
		diex(1, "%s", layout_strerror(error));
	if (plan->data_clusters != pk->n)
		diex(1, "internal error: %" PRIu64 " clusters deflated, %" PRIu64 " kept",
		    pk->n, plan->data_clusters);
}

uint64_t
packed_image_size(const struct layout *lo, const struct packed *pk)
{
	if (pk->n == 0)
		return layout_image_size(lo);
	return lo->data_offset + round_up(pk->data_bytes, 512);
}

/* The stream form: second pass */

/* Where the streams have got to, for the tables that map them. */
struct stream_walk {
	uint64_t index;		/* the next kept cluster */
	uint64_t at;		/* where it goes in the file */
};

/*
 * A refcount block of the stream form, the blocks in order: 1 for each
 * metadata cluster (all are used), a reference for each stream or
 * cluster that touches a data cluster.  A stream across the block's end
 * is counted again in the next.
 */
static void
fill_refcount_block(unsigned char *block, uint64_t k, const struct layout *lo,
    const struct packed *pk, struct stream_walk *w)
{
	uint64_t per_block = lo->cluster_size / 2, first = k * per_block;
	uint64_t data_first = lo->data_offset >> lo->cluster_bits;
	uint64_t end = first + per_block;

	for (uint64_t h = first; h < min_u64(end, data_first); h++)
		put_be(block + (h - first) * 2, 2, 1);
	while (w->index < pk->n) {
		uint64_t at = w->at, from, to, last;

		place(&at, length_at(pk, w->index), lo, &from, &to);
		last = (to - 1) >> lo->cluster_bits;
		from >>= lo->cluster_bits;
		if (from >= end)
			break;
		for (uint64_t h = max_u64(from, first); h <= min_u64(last, end - 1); h++)
			put_be(block + (h - first) * 2, 2, get_be(block + (h - first) * 2, 2) + 1);
		if (last >= end)
			break;
		w->at = at;
		w->index++;
	}
}

/* An L2 table of lo: its data entries point at the packed streams instead. */
static void
patch_l2_table(unsigned char *table, const struct layout *lo, const struct packed *pk,
    struct stream_walk *w)
{
	for (size_t i = 0; i < lo->cluster_size / 8; i++) {
		uint64_t entry = get_be(table + i * 8, 8), from, to;

		if ((entry & ENTRY_OFFSET_MASK) == 0)
			continue;
		if (w->index >= pk->n)
			diex(1, "internal error: more data clusters than streams");
		put_be(table + i * 8, 8, place(&w->at, length_at(pk, w->index++), lo,
		    &from, &to));
	}
}

/*
 * Bytes [from, to) of the metadata of lo, with the refcounts and L2
 * entries of the streams; made from the first cluster on, since each
 * table follows where the streams before it ended.  The header is zeros
 * if it is to be written last.
 */
static void
write_packed_meta(struct copier *c, const struct layout *lo, const struct packed *pk,
    uint64_t from, uint64_t to, int header_last)
{
	uint64_t blocks = lo->refcount_blocks_offset >> lo->cluster_bits;
	uint64_t tables = lo->l2_offset >> lo->cluster_bits;
	struct stream_walk counted = { 0, lo->data_offset }, mapped = { 0, lo->data_offset };
	size_t cs = lo->cluster_size;
	unsigned char *slot = malloc(cs);
	struct meta_writer mw;

	if (slot == NULL)
		die(1, "compressing");
	meta_writer_init(&mw, lo);
	while ((mw.cluster << lo->cluster_bits) < to) {
		uint64_t cluster = mw.cluster, at = cluster << lo->cluster_bits;
		uint64_t start = max_u64(from, at), end = min_u64(to, at + cs);

		if (!meta_writer_next(&mw, slot))
			break;
		if (cluster == 0 && header_last) {
			memset(slot, 0, cs);
		} else if (cluster >= blocks && cluster < blocks + lo->refcount_blocks) {
			memset(slot, 0, cs);
			fill_refcount_block(slot, cluster - blocks, lo, pk, &counted);
		} else if (cluster >= tables) {
			patch_l2_table(slot, lo, pk, &mapped);
		}
		if (start < end)
			output_write(c, slot + (start - at), (size_t)(end - start));
	}
	output_flush(c);
	free(slot);
}

/*
 * Guest clusters [first, end), all kept: read, deflated again, checked
 * against the first pass, and packed.
 */
static void
write_packed_run(struct copier *c, const struct layout *lo, const struct packed *pk,
    struct compressor *k, unsigned char *room, size_t room_size,
    struct stream_walk *w, uint64_t first, uint64_t end)
{
	/* Nothing is dropped now: a hole is read as the zeros it was. */
	struct sieve every = { .zeros_are = ZEROS_STORED };
	size_t cs = lo->cluster_size;

	while (first < end) {
		uint64_t clusters, from, to;
		const unsigned char *bytes = sieve_read(c, lo, &every, room, room_size,
		    &first, end, &clusters);

		compress_chunk(k, bytes, NULL, clusters);
		for (uint64_t i = 0; i < clusters; i++) {
			size_t n = k->lengths[i];
			uint64_t at;

			if (w->index >= pk->n || n != length_at(pk, w->index))
				diex(1, "%s changed between the two passes of -z: guest offset "
				    "%" PRIu64 " no longer compresses as it did",
				    input_of(c)->name, (first + i) << lo->cluster_bits);
			w->index++;
			at = w->at;
			place(&w->at, n, lo, &from, &to);
			if (n > 0) {
				output_write(c, k->streams + i * cs, n);
				continue;
			}
			output_zeros(c, from - at);
			output_write(c, bytes + i * cs, cs);
		}
		first += clusters;
	}
}

void
write_packed_stream(struct copier *c, const struct layout *lo, const struct packed *pk)
{
	size_t chunk = packed_chunk_bytes(lo->cluster_size);
	unsigned char *room = malloc(chunk);
	struct stream_walk w = { 0, lo->data_offset };
	uint64_t start = output_of(c)->offset;
	int header_last = output_can_rewrite(c);
	struct compressor k;
	struct run_walk walk;

	if (room == NULL)
		die(1, "compressing");
	output_reserve(c, start + packed_image_size(lo, pk), 1);
	write_packed_meta(c, lo, pk, 0, lo->data_offset, header_last);
	compressor_start(&k, lo->cluster_size);
	run_walk_init(&walk, lo);
	while (run_next(&walk)) {
		input_pass_unstored(c, (walk.first << lo->cluster_bits) -
		    input_of(c)->offset);
		write_packed_run(c, lo, pk, &k, room, chunk, &w, walk.first, walk.end);
	}
	input_finish(c);
	input_unmap(c);
	output_zeros(c, round_up(w.at, 512) - w.at);
	output_flush(c);
	if (header_last)
		write_header_last(c, lo, start, 0, lo->cluster_size);
	compressor_free(&k);
	free(room);
}

/*
 * One kept cluster of a slice: its bytes read where the disk has them,
 * the input before it that no cluster stores checked first (from the
 * end of the kept cluster before), deflated and checked against the
 * first pass.  Returns what goes in the file: the stream, or the
 * cluster as it is.
 */
static const unsigned char *
slice_cluster(struct copier *c, const struct layout *lo, const struct packed *pk,
    uint64_t index, uint64_t guest, uint64_t gap_start, int check_gap,
    struct deflater *z, unsigned char *room, unsigned char *stream)
{
	struct sieve every = { .zeros_are = ZEROS_STORED };
	uint64_t first = guest, clusters;
	size_t cs = lo->cluster_size, n;
	const unsigned char *bytes;

	if (check_gap && gap_start < (guest << lo->cluster_bits) &&
	    input_of(c)->offset <= gap_start) {
		input_seek(c, gap_start);
		input_pass_unstored(c, min_u64(guest << lo->cluster_bits, lo->input_size) -
		    min_u64(gap_start, lo->input_size));
	}
	input_seek(c, max_u64(input_of(c)->offset,
	    min_u64(guest << lo->cluster_bits, lo->input_size)));
	bytes = sieve_read(c, lo, &every, room, cs, &first, guest + 1, &clusters);
	n = deflate_cluster(z, stream, cs - 1, bytes, cs);
	if (clusters != 1 || n != length_at(pk, index))
		diex(1, "%s changed between the two passes of -z: guest offset %" PRIu64
		    " no longer compresses as it did", input_of(c)->name,
		    guest << lo->cluster_bits);
	return n > 0 ? stream : bytes;
}

/*
 * Data bytes [from, to) of the stream form: the streams placed from the
 * first on, which costs no I/O, and only the clusters whose bytes fall
 * in the slice read and deflated, on this thread (slices run side by
 * side already).
 */
static void
write_packed_data_slice(struct copier *c, const struct layout *lo,
    const struct packed *pk, uint64_t from, uint64_t to)
{
	size_t cs = lo->cluster_size;
	unsigned char *room = malloc(cs), *stream = malloc(cs);
	struct deflater *z = malloc(sizeof(*z));
	uint64_t at = lo->data_offset, index = 0, gap_start = 0, last_end = 0;
	struct run_walk walk;

	if (room == NULL || stream == NULL || z == NULL)
		die(1, "compressing");
	run_walk_init(&walk, lo);
	while (run_next(&walk) && at < to) {
		for (uint64_t g = walk.first; g < walk.end && at < to; g++, index++) {
			uint64_t before = at, start, lo_end, from_at, to_at;
			size_t n = length_at(pk, index);
			const unsigned char *bytes;

			place(&at, n, lo, &from_at, &to_at);
			start = n > 0 ? before : from_at;
			last_end = (g + 1) << lo->cluster_bits;
			if (at <= from) {
				gap_start = last_end;
				continue;
			}
			/* Padding before a cluster stored as it is: zeros. */
			if (start > max_u64(before, from))
				output_zeros(c, min_u64(start, to) - max_u64(before, from));
			bytes = slice_cluster(c, lo, pk, index, g, gap_start, before >= from,
			    z, room, stream);
			lo_end = min_u64(at, to);
			if (lo_end > max_u64(start, from))
				output_write(c, bytes + (max_u64(start, from) - start),
				    (size_t)(lo_end - max_u64(start, from)));
			gap_start = last_end;
		}
	}
	/* The image ends padded to a sector. */
	if (at < to)
		output_zeros(c, min_u64(round_up(at, 512), to) - at);
	if (to == packed_image_size(lo, pk)) {
		input_seek(c, max_u64(input_of(c)->offset, min_u64(last_end, lo->input_size)));
		input_finish(c);
	}
	free(room);
	free(stream);
	free(z);
}

void
write_packed_slice(struct copier *c, const struct layout *lo, const struct packed *pk,
    uint64_t from, uint64_t to)
{
	uint64_t start = output_of(c)->offset;
	int header_last = from < lo->cluster_size && to > from && output_can_rewrite(c);

	if (pk->n == 0) {
		write_slice(c, lo, from, to);
		return;
	}
	output_reserve(c, start + (to - from), 1);
	if (from < lo->data_offset)
		write_packed_meta(c, lo, pk, from, min_u64(to, lo->data_offset), header_last);
	if (to > lo->data_offset && to > from)
		write_packed_data_slice(c, lo, pk, max_u64(from, lo->data_offset), to);
	output_flush(c);
	if (header_last)
		write_header_last(c, lo, start, from, min_u64(to, lo->cluster_size));
}

/* -o FILE: one pass */

/* The state of one compressed image being written to a new file. */
struct packing {
	struct copier *c;
	const struct layout *plan;
	struct sieve *s;
	struct compressor k;
	size_t cs;
	uint64_t *l1;			/* the plan's L2 offsets; bit 0: written */
	unsigned char *l2;		/* the table being filled, big-endian */
	uint64_t table;			/* its L1 index; WALK_END: none */
	size_t zeros_next;		/* the first zero range not yet marked */
	uint64_t marked;		/* guest clusters below it are marked */
	unsigned char *counts;		/* the refcount block being counted */
	uint64_t block;			/* its index; WALK_END: none */
	unsigned char *first_counts;	/* the block the data begins in */
	uint64_t at;			/* the next data byte's host offset */
	uint64_t kept;			/* data clusters stored */
};

/*
 * The refcount block counted so far, to its place in the plan: now if
 * all its clusters are data, or kept for the end, when the metadata
 * before the data is known, if it holds the first data cluster.
 */
static void
flush_counts(struct packing *p)
{
	const struct layout *plan = p->plan;
	uint64_t per_block = p->cs / 2;

	if (p->block == WALK_END)
		return;
	if (p->block >= plan->refcount_blocks)
		diex(1, "internal error: refcount block %" PRIu64 " past the plan", p->block);
	if (p->block * per_block < plan->data_offset >> plan->cluster_bits)
		memcpy(p->first_counts, p->counts, p->cs);
	else
		output_rewrite(p->c, plan->refcount_blocks_offset + p->block * p->cs,
		    p->counts, p->cs);
	memset(p->counts, 0, p->cs);
	p->block = WALK_END;
}

/* One more reference to each host cluster of [from, to), all data. */
static void
count_refs(struct packing *p, uint64_t from, uint64_t to)
{
	uint64_t per_block = p->cs / 2;

	for (uint64_t h = from >> p->plan->cluster_bits;
	    h <= (to - 1) >> p->plan->cluster_bits; h++) {
		unsigned char *count;

		if (h / per_block != p->block) {
			flush_counts(p);
			p->block = h / per_block;
		}
		count = p->counts + h % per_block * 2;
		put_be(count, 2, get_be(count, 2) + 1);
	}
}

/*
 * The zero flag for the clusters of the current table that the sieve
 * marked as zeros: its ranges come in guest order.
 */
static void
mark_zeros(struct packing *p, uint64_t base, uint64_t limit)
{
	const struct range_list *zeros = &p->s->zeros;
	unsigned bits = p->plan->cluster_bits;

	for (; p->zeros_next < zeros->n; p->zeros_next++) {
		const struct range *r = &zeros->v[p->zeros_next];
		uint64_t first = r->offset >> bits;
		uint64_t end = ceil_div(r->offset + r->length, p->cs);

		if (first >= limit)
			return;
		for (uint64_t g = max_u64(first, base); g < min_u64(end, limit); g++)
			put_be(p->l2 + (g - base) * 8, 8, ENTRY_ZERO);
		if (end > limit)
			return;
	}
}

/* The current L2 table to its place in the plan, if it maps anything. */
static void
flush_table(struct packing *p)
{
	unsigned l2_bits = p->plan->cluster_bits - 3;
	uint64_t base = p->table << l2_bits, slot;

	if (p->table == WALK_END)
		return;
	mark_zeros(p, base, base + (UINT64_C(1) << l2_bits));
	if (first_nonzero(p->l2, p->cs) != p->cs) {
		slot = p->l1[p->table];
		if (slot == 0)
			diex(1, "internal error: L2 table %" PRIu64 " not in the plan",
			    p->table);
		output_rewrite(p->c, slot, p->l2, p->cs);
		p->l1[p->table] |= 1;
	}
	memset(p->l2, 0, p->cs);
	p->marked = base + (UINT64_C(1) << l2_bits);
	p->table = WALK_END;
}

/*
 * Make table the current one: the one before flushed, and any between
 * that only the sieve's zero clusters reach written on the way.
 */
static void
move_to_table(struct packing *p, uint64_t table)
{
	unsigned l2_bits = p->plan->cluster_bits - 3;
	const struct range_list *zeros = &p->s->zeros;

	flush_table(p);
	while (p->zeros_next < zeros->n) {
		uint64_t g = max_u64(zeros->v[p->zeros_next].offset >> p->plan->cluster_bits,
		    p->marked);

		if (g >> l2_bits >= table)
			break;
		p->table = g >> l2_bits;
		flush_table(p);
	}
	p->table = table;
}

/* The L2 entry of guest cluster g, its table flushed first if it is another. */
static void
set_entry(struct packing *p, uint64_t g, uint64_t entry)
{
	unsigned l2_bits = p->plan->cluster_bits - 3;

	if (g >> l2_bits != p->table)
		move_to_table(p, g >> l2_bits);
	put_be(p->l2 + (g & ((UINT64_C(1) << l2_bits) - 1)) * 8, 8, entry);
}

/* The chunk's kept clusters, guest clusters from first on, to the output. */
static void
write_chunk(struct packing *p, const unsigned char *chunk, uint64_t first,
    uint64_t clusters)
{
	for (uint64_t i = 0; i < clusters; i++) {
		size_t n = p->k.lengths[i];
		uint64_t at = p->at, from, to;

		if (!p->s->keep[i])
			continue;
		p->kept++;
		set_entry(p, first + i, place(&p->at, n, p->plan, &from, &to));
		count_refs(p, from, to);
		if (n > 0) {
			output_write(p->c, p->k.streams + i * p->cs, n);
			continue;
		}
		output_zeros(p->c, from - at);
		output_write(p->c, chunk + i * p->cs, p->cs);
	}
}

/* Guest clusters [first, end) read, sieved, compressed and written. */
static void
pack_run(struct packing *p, unsigned char *room, size_t room_size,
    uint64_t first, uint64_t end)
{
	while (first < end) {
		uint64_t clusters;
		const unsigned char *chunk = sieve_read(p->c, p->plan, p->s, room,
		    room_size, &first, end, &clusters);

		if (clusters == 0)
			break;
		sieve_clusters(p->s, p->plan, chunk, first, clusters);
		compress_chunk(&p->k, chunk, p->s->keep, clusters);
		write_chunk(p, chunk, first, clusters);
		first += clusters;
	}
}

/* The plan's L2 offsets, from its own L1 table. */
static void
read_plan_l1(struct packing *p, unsigned char *buf)
{
	const struct layout *plan = p->plan;
	struct meta_writer mw;
	uint64_t per_cluster = p->cs / 8;

	meta_writer_init(&mw, plan);
	meta_writer_next(&mw, buf);
	for (uint64_t k = 0; k < plan->l1_clusters; k++) {
		memset(buf, 0, p->cs);
		meta_writer_next(&mw, buf);
		for (uint64_t i = 0; i < per_cluster; i++) {
			uint64_t e = k * per_cluster + i;

			if (e < plan->l1_entries)
				p->l1[e] = get_be(buf + i * 8, 8) & ENTRY_OFFSET_MASK;
		}
	}
}

/*
 * The refcount blocks of the metadata, once the L2 tables are known: 1
 * for the header, the L1 and refcount tables and blocks, and each L2
 * table written; 0 for the plan's others; the first data clusters' as
 * counted.  The plan's L2 tables lie in L1 order, so the L1 entries give
 * them in the order of the file.
 */
static void
write_meta_counts(struct packing *p, unsigned char *block)
{
	const struct layout *plan = p->plan;
	uint64_t per_block = p->cs / 2, data_first = plan->data_offset >> plan->cluster_bits;
	uint64_t tables_first = plan->l2_offset >> plan->cluster_bits, entry = 0;

	for (uint64_t k = 0; k * per_block < data_first; k++) {
		uint64_t first = k * per_block;

		memcpy(block, p->first_counts, p->cs);
		if ((k + 1) * per_block <= data_first)
			memset(block, 0, p->cs);
		for (uint64_t h = first; h < min_u64(first + per_block, data_first); h++) {
			int used = 1;

			if (h >= tables_first) {
				while (entry < plan->l1_entries &&
				    (p->l1[entry] & ~UINT64_C(1)) >> plan->cluster_bits < h)
					entry++;
				used = entry < plan->l1_entries && (p->l1[entry] & 1) &&
				    (p->l1[entry] & ~UINT64_C(1)) >> plan->cluster_bits == h;
			}
			put_be(block + (h - first) * 2, 2, (uint64_t)used);
		}
		output_rewrite(p->c, plan->refcount_blocks_offset + k * p->cs, block, p->cs);
	}
}

/*
 * The header and refcount table as the plan has them, the L1 table of the
 * L2 tables written, and the refcount blocks of the metadata.
 */
static void
write_head(struct packing *p, unsigned char *buf)
{
	const struct layout *plan = p->plan;
	uint64_t per_cluster = p->cs / 8;
	struct meta_writer mw;

	write_meta_counts(p, buf);
	meta_writer_init(&mw, plan);
	meta_writer_seek(&mw, plan->refcount_table_offset >> plan->cluster_bits);
	for (uint64_t k = 0; k < plan->refcount_table_clusters; k++) {
		memset(buf, 0, p->cs);
		meta_writer_next(&mw, buf);
		output_rewrite(p->c, plan->refcount_table_offset + k * p->cs, buf, p->cs);
	}
	for (uint64_t k = 0; k < plan->l1_clusters; k++) {
		memset(buf, 0, p->cs);
		for (uint64_t i = 0; i < per_cluster; i++) {
			uint64_t e = k * per_cluster + i;

			if (e < plan->l1_entries && (p->l1[e] & 1))
				put_be(buf + i * 8, 8, (p->l1[e] & ~UINT64_C(1)) | ENTRY_COPIED);
		}
		output_rewrite(p->c, plan->l1_offset + k * p->cs, buf, p->cs);
	}
	/* The header last: until it is there, the file is no image. */
	meta_writer_init(&mw, plan);
	memset(buf, 0, p->cs);
	meta_writer_next(&mw, buf);
	output_rewrite(p->c, 0, buf, p->cs);
}

void
write_packed(struct copier *c, const struct layout *plan, struct sieve *s,
    struct layout *lo)
{
	size_t chunk = packed_chunk_bytes(plan->cluster_size);
	unsigned char *room = malloc(chunk);
	enum layout_error error;
	struct packing p = { .c = c, .plan = plan, .s = s, .cs = plan->cluster_size,
	    .table = WALK_END, .block = WALK_END, .at = plan->data_offset };
	struct run_walk walk;

	p.l1 = calloc(plan->l1_entries + 1, sizeof(*p.l1));
	p.l2 = calloc(1, p.cs);
	p.counts = calloc(1, p.cs);
	p.first_counts = calloc(1, p.cs);
	if (room == NULL || p.l1 == NULL || p.l2 == NULL || p.counts == NULL ||
	    p.first_counts == NULL)
		die(1, "compressing");
	compressor_start(&p.k, p.cs);
	read_plan_l1(&p, room);
	output_seek(c, plan->data_offset);
	run_walk_init(&walk, plan);
	while (run_next(&walk)) {
		input_pass_unstored(c, (walk.first << plan->cluster_bits) -
		    input_of(c)->offset);
		pack_run(&p, room, chunk, walk.first, walk.end);
	}
	move_to_table(&p, WALK_END);
	flush_counts(&p);
	input_finish(c);
	input_unmap(c);
	output_zeros(c, round_up(p.at, 512) - p.at);
	output_end(c);
	write_head(&p, room);
	if ((error = layout_of_sieve(lo, plan, s)) != LAYOUT_OK)
		diex(1, "%s", layout_strerror(error));
	if (lo->data_clusters != p.kept)
		diex(1, "internal error: %" PRIu64 " clusters stored, the sieve kept %"
		    PRIu64, p.kept, lo->data_clusters);
	compressor_free(&p.k);
	free(p.l1);
	free(p.l2);
	free(p.counts);
	free(p.first_counts);
	free(room);
}

/*
 * packed.c: the compressed form of an image, -z -o's; see packed.h.
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
#include "util.h"

#define MAX_PACK_THREADS	8

/* One thread's deflater, and the packing it takes clusters from. */
struct share {
	struct packing *p;
	struct deflater *z;
};

/* The state of one compressed image being written. */
struct packing {
	struct copier *c;
	const struct layout *plan;
	struct sieve *s;
	size_t cs;
	unsigned threads;
	struct share *shares;

	/* The chunk being compressed: its kept clusters and their streams. */
	const unsigned char *chunk;
	uint64_t clusters;
	atomic_uint_fast64_t next;	/* the first cluster no thread has taken */
	unsigned char *streams;		/* cluster i's at i * cs */
	size_t *lengths;		/* 0: stored as it is */

	uint64_t *l1;			/* the plan's L2 offsets; bit 0: written */
	unsigned char *l2;		/* the table being filled, big-endian */
	uint64_t table;			/* its L1 index; WALK_END: none */
	size_t zeros_next;		/* the first zero range not yet marked */
	uint64_t marked;		/* guest clusters below it are marked */
	uint16_t *refcounts;		/* of the plan's host clusters */
	uint64_t at;			/* the next data byte's host offset */
	uint64_t kept;			/* data clusters stored */
};

size_t
packed_chunk_bytes(size_t cs)
{
	size_t bytes = 8 * cs;

	return bytes > IO_SIZE ? bytes : IO_SIZE;
}

/* How many threads compress: one a core, up to MAX_PACK_THREADS. */
static unsigned
pack_threads(void)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (cores <= 1)
		return 1;
	return cores > MAX_PACK_THREADS ? MAX_PACK_THREADS : (unsigned)cores;
}

static void *
compress_share(void *arg)
{
	struct share *sh = arg;
	struct packing *p = sh->p;

	/* A cluster at a time: a thread the scheduler holds back holds up one. */
	for (;;) {
		uint64_t i = atomic_fetch_add(&p->next, 1);

		if (i >= p->clusters)
			break;
		if (p->s->keep[i])
			p->lengths[i] = deflate_cluster(sh->z, p->streams + i * p->cs,
			    p->cs - 1, p->chunk + i * p->cs, p->cs);
	}
	return NULL;
}

/*
 * The kept clusters of the chunk deflated, on the workers and the caller,
 * each taking the next one left; with no worker started, the caller
 * does them all.
 */
static void
compress_chunk(struct packing *p)
{
	pthread_t tid[MAX_PACK_THREADS];
	unsigned started = 0;

	atomic_store(&p->next, 0);
	while (started + 1 < p->threads && pthread_create(&tid[started], NULL,
	    compress_share, &p->shares[started + 1]) == 0)
		started++;
	compress_share(&p->shares[0]);
	for (unsigned t = 0; t < started; t++)
		pthread_join(tid[t], NULL);
}

/* One more reference to each host cluster of [from, to). */
static void
count_refs(struct packing *p, uint64_t from, uint64_t to)
{
	for (uint64_t h = from >> p->plan->cluster_bits;
	    h <= (to - 1) >> p->plan->cluster_bits; h++) {
		if (h >= p->plan->total_clusters || p->refcounts[h] == UINT16_MAX)
			diex(1, "internal error: host cluster %" PRIu64 " past the plan "
			    "or referenced too often", h);
		p->refcounts[h]++;
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
		count_refs(p, slot, slot + p->cs);
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

/*
 * A compressed stream's entry: the byte offset, and the sectors after the
 * first that it touches, above bit 62 - (cluster_bits - 8).
 */
static uint64_t
compressed_entry(const struct packing *p, uint64_t offset, size_t length)
{
	unsigned x = 62 - (p->plan->cluster_bits - 8);
	uint64_t sectors = ((offset + length - 1) >> 9) - (offset >> 9);

	return ENTRY_COMPRESSED | sectors << x | offset;
}

/* The chunk's kept clusters, guest clusters from first on, to the output. */
static void
write_chunk(struct packing *p, uint64_t first)
{
	for (uint64_t i = 0; i < p->clusters; i++) {
		size_t n = p->lengths[i];

		if (!p->s->keep[i])
			continue;
		p->kept++;
		if (n > 0) {
			output_write(p->c, p->streams + i * p->cs, n);
			set_entry(p, first + i, compressed_entry(p, p->at, n));
			/* QEMU reads whole sectors: each one a stream touches is referenced. */
			count_refs(p, p->at & ~UINT64_C(511), round_up(p->at + n, 512));
			p->at += n;
			continue;
		}
		output_zeros(p->c, round_up(p->at, p->cs) - p->at);
		p->at = round_up(p->at, p->cs);
		output_write(p->c, p->chunk + i * p->cs, p->cs);
		set_entry(p, first + i, p->at | ENTRY_COPIED);
		count_refs(p, p->at, p->at + p->cs);
		p->at += p->cs;
	}
}

/* Guest clusters [first, end) read, sieved, compressed and written. */
static void
pack_run(struct packing *p, unsigned char *room, size_t room_size,
    uint64_t first, uint64_t end)
{
	while (first < end) {
		uint64_t clusters;

		p->chunk = sieve_read(p->c, p->plan, p->s, room, room_size, &first, end,
		    &clusters);
		if (clusters == 0)
			break;
		sieve_clusters(p->s, p->plan, p->chunk, first, clusters);
		p->clusters = clusters;
		compress_chunk(p);
		write_chunk(p, first);
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
 * The header and the refcount table as the plan has them, the L1 table of
 * the L2 tables written, and the refcount blocks of what was counted.
 */
static void
write_head(struct packing *p, unsigned char *buf)
{
	const struct layout *plan = p->plan;
	uint64_t per_cluster = p->cs / 8, per_block = p->cs / 2;
	struct meta_writer mw;

	count_refs(p, 0, plan->l2_offset);
	output_seek(p->c, 0);
	meta_writer_init(&mw, plan);
	memset(buf, 0, p->cs);
	meta_writer_next(&mw, buf);
	output_write(p->c, buf, p->cs);
	for (uint64_t k = 0; k < plan->l1_clusters; k++) {
		memset(buf, 0, p->cs);
		for (uint64_t i = 0; i < per_cluster; i++) {
			uint64_t e = k * per_cluster + i;

			if (e < plan->l1_entries && (p->l1[e] & 1))
				put_be(buf + i * 8, 8, (p->l1[e] & ~UINT64_C(1)) | ENTRY_COPIED);
		}
		output_write(p->c, buf, p->cs);
	}
	meta_writer_seek(&mw, plan->refcount_table_offset >> plan->cluster_bits);
	for (uint64_t k = 0; k < plan->refcount_table_clusters; k++) {
		memset(buf, 0, p->cs);
		meta_writer_next(&mw, buf);
		output_write(p->c, buf, p->cs);
	}
	for (uint64_t k = 0; k < plan->refcount_blocks; k++) {
		memset(buf, 0, p->cs);
		for (uint64_t i = 0; i < per_block; i++)
			if (k * per_block + i < plan->total_clusters)
				put_be(buf + i * 2, 2, p->refcounts[k * per_block + i]);
		output_write(p->c, buf, p->cs);
	}
	output_flush(p->c);
}

static void
packing_start(struct packing *p, struct copier *c, const struct layout *plan,
    struct sieve *s)
{
	size_t chunk = packed_chunk_bytes(plan->cluster_size);

	*p = (struct packing){ .c = c, .plan = plan, .s = s, .cs = plan->cluster_size,
	    .threads = pack_threads(), .table = WALK_END, .at = plan->data_offset };
	p->shares = calloc(p->threads, sizeof(*p->shares));
	p->streams = malloc(chunk);
	p->lengths = calloc(chunk / p->cs, sizeof(*p->lengths));
	p->l1 = calloc(plan->l1_entries + 1, sizeof(*p->l1));
	p->l2 = calloc(1, p->cs);
	p->refcounts = calloc(plan->total_clusters, sizeof(*p->refcounts));
	if (p->shares == NULL || p->streams == NULL || p->lengths == NULL ||
	    p->l1 == NULL || p->l2 == NULL || p->refcounts == NULL)
		die(1, "compressing");
	for (unsigned t = 0; t < p->threads; t++) {
		p->shares[t] = (struct share){ .p = p };
		if ((p->shares[t].z = malloc(sizeof(struct deflater))) == NULL)
			die(1, "compressing");
	}
}

static void
packing_free(struct packing *p)
{
	for (unsigned t = 0; t < p->threads; t++)
		free(p->shares[t].z);
	free(p->shares);
	free(p->streams);
	free(p->lengths);
	free(p->l1);
	free(p->l2);
	free(p->refcounts);
}

/*
 * Data from the plan's data offset on, the L2 tables written behind it;
 * the file ends at the last sector a stream touches (QEMU reads whole
 * sectors), and the head goes last, so that a failed run leaves no image.
 */
void
write_packed(struct copier *c, const struct layout *plan, struct sieve *s,
    struct layout *lo)
{
	size_t chunk = packed_chunk_bytes(plan->cluster_size);
	unsigned char *room = malloc(chunk);
	enum layout_error error;
	struct packing p;
	struct run_walk walk;

	if (room == NULL)
		die(1, "compressing");
	packing_start(&p, c, plan, s);
	read_plan_l1(&p, room);
	output_seek(c, plan->data_offset);
	run_walk_init(&walk, plan);
	while (run_next(&walk)) {
		input_pass_unstored(c, (walk.first << plan->cluster_bits) -
		    input_of(c)->offset);
		pack_run(&p, room, chunk, walk.first, walk.end);
	}
	move_to_table(&p, WALK_END);
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
	packing_free(&p);
	free(room);
}

/*
 * t/unit.c: unit tests of sqcow2's pure core: layout.c, and the range
 * files read and merged (ranges.h: ranges.c to range_list.c).
 *
 * Prints TAP, one "ok N - what" line per test.  A failed check prints, as
 * TAP comments before its test's line, the check, where it is, what it was
 * about and both values.
 *
 * The heart of it is a model check: thousands of random small layouts,
 * every metadata cluster decoded as a reader would, compared with what an
 * independent count of the same ranges says; each layout twice, as
 * layout_init leaves it and placed by layout_within in a plan of more
 * clusters, as -o does, half of them with zero ranges too, and the
 * writer and the run walk started again from
 * every host and data cluster (a sample of the large).  The count and
 * the reader are the model in t/model.c, which the layout fuzzer shares;
 * what the model finds wrong is printed here like any failed check.  The
 * seed is fixed so that a failure reproduces; to explore, give another
 * one (and a number of cases):
 *
 *	t/bin/unit [SEED [CASES]]
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "meta.h"
#include "model.h"
#include "tap.h"
#include "range_entry.h"
#include "ranges.h"

#define KiB		(UINT64_C(1) << 10)
#define MiB		(UINT64_C(1) << 20)
#define GiB		(UINT64_C(1) << 30)
#define TiB		(UINT64_C(1) << 40)
#define PiB		(UINT64_C(1) << 50)
#define MAX_L1_ENTRIES	(UINT64_C(32) * MiB / 8)	/* QEMU's limit */

#define DEFAULT_SEED	UINT64_C(0x5c0c2b1d)
#define DEFAULT_CASES	4000
#define SEEK_MOST	300	/* seeks checked per layout, past its parts' edges */

#define check_err(got, want)	check_err_at(__FILE__, __LINE__, #got, (got), \
				    #want, (want))

static int
check_err_at(const char *file, int line, const char *got_expr, enum layout_error got,
    const char *want_expr, enum layout_error want)
{
	if (got == want)
		return 1;
	if (check_failed(file, line, got_expr, " == ", want_expr)) {
		printf("#    got: %d (%s)\n", (int)got, layout_strerror(got));
		printf("#   want: %d (%s)\n", (int)want, layout_strerror(want));
	}
	return 0;
}

static struct model_failure failure;	/* what the model last found wrong */

#define check_model(call)	check_model_at(__FILE__, __LINE__, #call, (call))

/* A check of the model's: what it looked at, and both values, on failure. */
static int
check_model_at(const char *file, int line, const char *call, int status)
{
	if (status == 0)
		return 1;
	note("%s", failure.what);
	if (check_failed(file, line, call, "", "") && failure.relation != NULL) {
		printf("#    got: %" PRIu64 " (0x%" PRIx64 ")\n", failure.got,
		    failure.got);
		printf("#   want: %s%" PRIu64 " (0x%" PRIx64 ")\n", failure.relation,
		    failure.want, failure.want);
	}
	return 0;
}

/* Helpers */

/* A stream of its own for each case, so that one case can be replayed. */
static void
rng_seed(uint64_t seed, uint64_t stream)
{
	rng_state = (seed ^ (stream * UINT64_C(0x9e3779b97f4a7c15))) | 1;
	for (int i = 0; i < 8; i++)
		rng();
}

static uint64_t
rng_below(uint64_t n)
{
	return n == 0 ? 0 : rng() % n;
}

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

static int
all_bytes(const unsigned char *p, size_t n, unsigned char value)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != value)
			return 0;
	return 1;
}

/* len bytes of s, escaped as in C so that they stay on one line of TAP. */
static const char *
escaped(const char *s, size_t len)
{
	static char buf[512];
	size_t n = 0;

	for (size_t i = 0; i < len && n + 5 < sizeof(buf); i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n')
			n += (size_t)sprintf(buf + n, "\\n");
		else if (c == '\r')
			n += (size_t)sprintf(buf + n, "\\r");
		else if (c == '\t')
			n += (size_t)sprintf(buf + n, "\\t");
		else if (c == '"' || c == '\\')
			n += (size_t)sprintf(buf + n, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			n += (size_t)sprintf(buf + n, "\\x%02x", c);
		else
			buf[n++] = (char)c;
	}
	buf[n] = '\0';
	return buf;
}

/* The model check */

/* The model of these ranges, in the stream order. */
static void
make_model(struct model *m, unsigned bits, uint64_t size, const struct range *r,
    size_t n)
{
	if (model_init(m, bits, size, r, n) == -1) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
}

/*
 * Everything about lo that the model fixes: its fields, its runs, and
 * every metadata cluster, made into one buffer for the model to read;
 * after the last, the writer must stop and leave its cluster untouched.
 * Then the writer and the run walk started anywhere, against the same.
 */
static int
check_layout(const struct layout *lo, const struct model *m)
{
	uint64_t cs = m->cluster_size, meta = model_meta_clusters(m), n;
	unsigned char *img, *spare;
	struct meta_writer mw;
	int ok;

	if (!check_model(model_check_fields(m, lo, &failure)))
		return 0;
	ok = check_model(model_check_runs(m, lo, &failure));
	if (!check(meta * cs <= 64 * MiB))
		return 0;
	img = xcalloc(meta, cs);
	spare = xcalloc(cs, 1);
	meta_writer_init(&mw, lo);
	for (n = 0; n < meta; n++)
		if (!meta_writer_next(&mw, img + n * cs))
			break;
	ok &= check_model(model_check_metadata(m, img, n, &failure));
	memset(spare, 0xa5, cs);
	ok &= check_u64(meta_writer_next(&mw, spare), 0);
	ok &= check(all_bytes(spare, cs, 0xa5));
	if (ok) {
		ok &= check_model(model_check_seek(m, lo, img, SEEK_MOST, &failure));
		ok &= check_model(model_check_run_seek(m, lo, SEEK_MOST, &failure));
	}
	free(spare);
	free(img);
	return ok;
}

/*
 * lo placed by layout_within in the plan of plan_r[0..np), which must
 * hold lo's clusters, and m by model_within in the model of the plan;
 * *plan gets the plan's layout if plan is not NULL.  Both must succeed.
 */
static int
place_within(struct layout *lo, struct model *m, const struct range *plan_r,
    size_t np, struct layout *plan)
{
	struct layout own;
	struct model pm;
	int ok;

	if (plan == NULL)
		plan = &own;
	if (!check_err(layout_init(plan, lo->input_size, lo->cluster_bits, plan_r, np),
	    LAYOUT_OK))
		return 0;
	make_model(&pm, lo->cluster_bits, lo->input_size, plan_r, np);
	ok = check_u64(model_within(m, &pm), 0);
	model_free(&pm);
	return check_err(layout_within(lo, plan), LAYOUT_OK) && ok;
}

/* The whole disk of lo in *r, the plan of a disk read with no map: 0 or 1 range. */
static size_t
whole_disk(const struct layout *lo, struct range *r)
{
	r->offset = 0;
	r->length = lo->input_size;
	return lo->input_size > 0;
}

/* Layout: exact cases, computed by hand */

struct known_case {
	const char *what;
	unsigned bits;
	uint64_t size;
	struct range r[4];
	size_t nranges;
	uint64_t data, l2, blocks, table, total;
	uint64_t file_size;	/* of the stream form; data first, whole clusters */
};

static const struct known_case known_cases[] = {
	/*
	 * An L2 table of 8192 entries covers 512 MiB, so 10 MiB is one L1
	 * entry in one L1 cluster.  Bytes 5000000..5000004 lie in guest
	 * cluster 76 (76 * 65536 = 4980736, 77 * 65536 = 5046272).
	 * header + L1 + refcount table + 1 block + 1 L2 + 1 data = 6 clusters,
	 * 393216 bytes.
	 */
	{ "64 KiB clusters, 10 MiB, 5 bytes at 5000000: 6 clusters",
	    16, 10 * MiB, { { 5000000, 5 } }, 1, 1, 1, 1, 1, 6, 6 * 65536 },
	/*
	 * No guest clusters, no L1 entry, no L1 cluster: header + table +
	 * block.  The block ends the file, after its 3 refcounts.
	 */
	{ "64 KiB clusters, empty disk: 3 clusters",
	    16, 0, { { 0, 0 } }, 0, 0, 0, 1, 1, 3, 2 * 65536 + 6 },
	/* 160 data + 1 L2 + header + L1 + refcount table + 1 block = 165. */
	{ "64 KiB clusters, 10 MiB all data: 165 clusters",
	    16, 10 * MiB, { { 0, 10 * MiB } }, 1, 160, 1, 1, 1, 165, 165 * 65536 },
	/*
	 * 64 GiB is 128 L1 entries, 1024 bytes, one L1 cluster.
	 * [0, 1 MiB): clusters 0-15, table 0.
	 * [512 MiB - 4096, +8192): clusters 8191 and 8192, the last of table 0
	 * and the first of table 1.
	 * 40 GiB + 3 * 64 KiB + 1: cluster 655360 + 3, table 80 (80 * 8192 = 655360).
	 * The last byte: cluster 1048575, table 127.
	 * Data 16 + 2 + 1 + 1 = 20, L2 tables 0, 1, 80, 127 = 4;
	 * 1 + 1 + 4 + 20 + table + block = 28 clusters.
	 */
	{ "64 KiB clusters, 64 GiB, 4 sparse ranges: 28 clusters",
	    16, 64 * GiB, { { 0, MiB }, { 512 * MiB - 4096, 8192 },
	    { 40 * GiB + 3 * 65536 + 1, 1 }, { 64 * GiB - 1, 1 } }, 4,
	    20, 4, 1, 1, 28, 28 * 65536 },
	/* 1000 bytes is a virtual size of 1024, within one 64 KiB cluster. */
	{ "64 KiB clusters, 1000-byte disk, its last byte: 6 clusters",
	    16, 1000, { { 999, 1 } }, 1, 1, 1, 1, 1, 6, 6 * 65536 },
	/* 65537 bytes is a virtual size of 66048: two guest clusters, both data. */
	{ "64 KiB clusters, 65537-byte disk all data: 7 clusters",
	    16, 65537, { { 0, 65537 } }, 1, 2, 1, 1, 1, 7, 7 * 65536 },
	/* 1000 bytes at 512 B is two guest clusters; byte 999 is in the second. */
	{ "512 B clusters, 1000-byte disk, its last byte: 6 clusters",
	    9, 1000, { { 999, 1 } }, 1, 1, 1, 1, 1, 6, 6 * 512 },
	/*
	 * 512 B: an L2 table covers 32 KiB, a block counts 256 clusters.
	 * 1 MiB: 2048 data, 32 L2, 32 L1 entries in one L1 cluster:
	 * 1 + 1 + 32 + 2048 = 2082.  9 blocks count 2304 >= 2082 + 1 + 9 = 2092;
	 * 8 count only 2048.  2092 clusters.
	 */
	{ "512 B clusters, 1 MiB all data: 2092 clusters",
	    9, MiB, { { 0, MiB } }, 1, 2048, 32, 9, 1, 2092, 2092 * 512 },
	/*
	 * 2 MiB: an L2 table covers 2 MiB * 262144 = 512 GiB, so 1 TiB is two
	 * L1 entries.  Its first and last byte: 2 data in 2 L2 tables;
	 * 1 + 1 + 2 + 2 + table + block = 8 clusters, 16 MiB.
	 */
	{ "2 MiB clusters, 1 TiB, first and last byte: 8 clusters",
	    21, TiB, { { 0, 1 }, { TiB - 1, 1 } }, 2, 2, 2, 1, 1, 8, 8 * 2 * MiB },
	/*
	 * The refcount fixed point at 512 B (256 refcounts a block), all data:
	 * 248 clusters: 248 + 4 L2 + 1 L1 + header = 254, + table + block =
	 * 256, which one block counts.  249: 255 + 1 + 1 = 257 > 256, so a
	 * second block, which itself fits: 258.
	 */
	{ "512 B clusters, 248 data clusters: one block counts 256",
	    9, 248 * 512, { { 0, 248 * 512 } }, 1, 248, 4, 1, 1, 256, 256 * 512 },
	{ "512 B clusters, 249 data clusters: the block needs a second block",
	    9, 249 * 512, { { 0, 249 * 512 } }, 1, 249, 4, 2, 1, 258, 258 * 512 },
	/*
	 * A one-cluster refcount table at 512 B points at 64 blocks, 16384
	 * refcounts.  16063 data + 251 L2 + 4 L1 + header = 16319, + 1 + 64 =
	 * 16384: fits exactly.  16064: 16320 + 1 + 64 = 16385, so 65 blocks,
	 * which need a second table cluster: 16320 + 2 + 65 = 16387.
	 */
	{ "512 B clusters, 16063 data clusters: 64 blocks, 16384 clusters",
	    9, 16063 * 512, { { 0, 16063 * 512 } }, 1, 16063, 251, 64, 1, 16384, 16384 * 512 },
	{ "512 B clusters, 16064 data clusters: the table needs a second cluster",
	    9, 16064 * 512, { { 0, 16064 * 512 } }, 1, 16064, 251, 65, 2, 16387, 16387 * 512 },
};

static void
t_known(const struct known_case *k)
{
	struct layout lo;
	struct model m;

	set_case("%s", k->what);
	if (!check_err(layout_init(&lo, k->size, k->bits, k->r, k->nranges), LAYOUT_OK))
		return;
	check_u64(lo.data_clusters, k->data);
	check_u64(lo.l2_tables, k->l2);
	check_u64(lo.refcount_blocks, k->blocks);
	check_u64(lo.refcount_table_clusters, k->table);
	check_u64(lo.total_clusters, k->total);
	check_u64(lo.gap_clusters, 0);
	check_u64(layout_image_size(&lo), k->file_size);
	check_u64(layout_meta_clusters(&lo), k->total - k->data);
	make_model(&m, k->bits, k->size, k->r, k->nranges);
	check_layout(&lo, &m);
	model_free(&m);
}

/*
 * The same layout within the plan of its whole disk, as -o writes a disk
 * read with no map: its data, if any, at the plan's data offset, the
 * file ending with it, its own tables before a gap.
 */
static void
t_known_within(const struct known_case *k)
{
	struct layout lo, plan;
	struct range whole;
	struct model m;

	set_case("%s, within the whole disk", k->what);
	if (!check_err(layout_init(&lo, k->size, k->bits, k->r, k->nranges), LAYOUT_OK))
		return;
	make_model(&m, k->bits, k->size, k->r, k->nranges);
	if (place_within(&lo, &m, &whole, whole_disk(&lo, &whole), &plan)) {
		check_u64(lo.data_clusters, k->data);
		check_u64(lo.l2_tables, k->l2);
		if (k->data > 0) {
			check_u64(lo.data_offset, plan.data_offset);
			check_u64(lo.total_clusters, (plan.data_offset >> k->bits) + k->data);
			check_u64(layout_image_size(&lo), lo.total_clusters << k->bits);
			check_u64(layout_meta_clusters(&lo) + lo.gap_clusters,
			    plan.data_offset >> k->bits);
		} else {
			check_u64(lo.total_clusters, k->total);
			check_u64(lo.gap_clusters, 0);
		}
		check_layout(&lo, &m);
	}
	model_free(&m);
}

/* The header of the 6-cluster image above, written out by hand. */
static const unsigned char known_header[104] = {
	0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3,		/* magic, version */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,		/* no backing file */
	0, 0, 0, 16,					/* cluster_bits */
	0, 0, 0, 0, 0, 0xa0, 0, 0,			/* size: 10 MiB */
	0, 0, 0, 0, 0, 0, 0, 1,				/* crypt, l1_size */
	0, 0, 0, 0, 0, 1, 0, 0,				/* L1 at 64 KiB */
	0, 0, 0, 0, 0, 2, 0, 0,				/* table at 128 KiB */
	0, 0, 0, 1, 0, 0, 0, 0,		/* table clusters, snapshots */
	0, 0, 0, 0, 0, 0, 0, 0,				/* snapshots_offset */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* features */
	0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 4, 0, 0, 0, 104,	/* refcount_order, header_length */
};

/* The bytes of the 6-cluster image above, written out by hand. */
static void
t_known_bytes(void)
{
	static const struct range r = { 5000000, 5 };
	struct layout lo;
	struct meta_writer mw;
	unsigned char *c = xcalloc(64 * KiB, 1);
	size_t i;

	if (!check_err(layout_init(&lo, 10 * MiB, 16, &r, 1), LAYOUT_OK))
		goto out;
	meta_writer_init(&mw, &lo);

	check(meta_writer_next(&mw, c));
	for (i = 0; i < sizeof(known_header); i++)
		if (!check_u64(c[i], known_header[i]))
			break;
	check(all_bytes(c + 104, 64 * KiB - 104, 0));

	check(meta_writer_next(&mw, c));	/* L1: the L2 table at 256 KiB */
	check_u64(be(c, 8), UINT64_C(0x8000000000040000));
	check(all_bytes(c + 8, 64 * KiB - 8, 0));

	check(meta_writer_next(&mw, c));	/* the block at 192 KiB */
	check_u64(be(c, 8), 0x30000);
	check(all_bytes(c + 8, 64 * KiB - 8, 0));

	check(meta_writer_next(&mw, c));	/* 6 clusters in use */
	for (i = 0; i < 6; i++)
		check_u64(be(c + 2 * i, 2), 1);
	check(all_bytes(c + 12, 64 * KiB - 12, 0));

	check(meta_writer_next(&mw, c));	/* L2 entry 76: data at 320 KiB */
	check_u64(be(c + 76 * 8, 8), UINT64_C(0x8000000000050000));
	check(all_bytes(c, 76 * 8, 0));
	check(all_bytes(c + 77 * 8, 64 * KiB - 77 * 8, 0));

	check(!meta_writer_next(&mw, c));
out:
	free(c);
}

/* Layout: within a plan, as -o writes */

static void
t_known_within_all(void)
{
	for (size_t i = 0; i < sizeof(known_cases) / sizeof(known_cases[0]); i++)
		t_known_within(&known_cases[i]);
}

/*
 * 64 KiB clusters, 1 GiB: two L2 tables of 512 MiB.  The plan stores
 * bytes 0 and 600 MiB (guest clusters 0 and 9600, one in each table):
 * header | L1 | refcount table | block | 2 L2 | 2 data, 8 clusters, its
 * data at cluster 6.  The sieve keeps guest cluster 0 alone, which needs
 * one L2 table, so:
 *
 *	cluster	offset	holds
 *	0	0	header
 *	1	65536	L1 table
 *	2	131072	refcount table
 *	3	196608	refcount block
 *	4	262144	L2 table
 *	5	327680	the gap: no table points at it, refcount 0
 *	6	393216	data: guest cluster 0
 *
 * 458752 bytes.  The metadata comes out in the order of the file, up to
 * the gap; a seek into the gap or the data is past the last of it.
 */
static void
t_within_bytes(void)
{
	static const struct range plan_r[] = { { 0, 1 }, { 600 * MiB, 1 } };
	static const struct range r = { 0, 1 };
	static const uint64_t next[9] = { 0, 1, 2, 3, 4, 7, 7, 7, 7 };
	struct layout lo;
	struct meta_writer mw;
	struct run_walk walk;
	struct model m;
	unsigned char *c = xcalloc(64 * KiB, 1);

	set_case("64 KiB clusters, 1 GiB, plan bytes 0 and 600 MiB, byte 0 kept");
	if (!check_err(layout_init(&lo, GiB, 16, &r, 1), LAYOUT_OK))
		goto out;
	make_model(&m, 16, GiB, &r, 1);
	if (!place_within(&lo, &m, plan_r, 2, NULL))
		goto free_model;
	check_u64(lo.data_clusters, 1);
	check_u64(lo.l2_tables, 1);
	check_u64(lo.refcount_blocks, 1);
	check_u64(lo.refcount_table_clusters, 1);
	check_u64(lo.l2_offset, 0x40000);
	check_u64(lo.gap_clusters, 1);
	check_u64(lo.data_offset, 0x60000);
	check_u64(lo.total_clusters, 7);
	check_u64(layout_image_size(&lo), 7 * 65536);
	check_u64(layout_meta_clusters(&lo), 5);
	meta_writer_init(&mw, &lo);

	check(meta_writer_next(&mw, c));	/* header */
	check_u64(be(c + 24, 8), GiB);
	check_u64(be(c + 36, 4), 2);		/* L1 entries */
	check_u64(be(c + 40, 8), 0x10000);
	check_u64(be(c + 48, 8), 0x20000);
	check_u64(be(c + 56, 4), 1);

	check(meta_writer_next(&mw, c));	/* L1: one table, at 256 KiB */
	check_u64(be(c, 8), UINT64_C(0x8000000000040000));
	check(all_bytes(c + 8, 64 * KiB - 8, 0));

	check(meta_writer_next(&mw, c));	/* the block at 192 KiB */
	check_u64(be(c, 8), 0x30000);
	check(all_bytes(c + 8, 64 * KiB - 8, 0));

	check(meta_writer_next(&mw, c));	/* clusters 0-4 and 6, not the gap */
	for (uint64_t i = 0; i < 7; i++) {
		note("the refcount of host cluster %" PRIu64, i);
		check_u64(be(c + 2 * i, 2), i != 5);
	}
	note_text[0] = '\0';
	check(all_bytes(c + 14, 64 * KiB - 14, 0));

	check(meta_writer_next(&mw, c));	/* L2 entry 0: data at 384 KiB */
	check_u64(be(c, 8), UINT64_C(0x8000000000060000));
	check(all_bytes(c + 8, 64 * KiB - 8, 0));

	memset(c, 0xa5, 64 * KiB);
	check(!meta_writer_next(&mw, c));
	check(all_bytes(c, 64 * KiB, 0xa5));

	for (uint64_t h = 0; h < 9; h++) {
		note("seek to host cluster %" PRIu64, h);
		meta_writer_init(&mw, &lo);
		meta_writer_seek(&mw, h);
		check_u64(mw.cluster, next[h]);
		note("seek to host cluster %" PRIu64, h);
		check_u64(meta_writer_next(&mw, c), h < 5);
	}
	note_text[0] = '\0';
	if (check_u64(run_walk_seek(&walk, &lo, 0), 1)) {
		check_u64(walk.first, 0);
		check_u64(walk.end, 1);
	}
	check_layout(&lo, &m);
free_model:
	model_free(&m);
out:
	free(c);
}

/* What -o's sieve makes of a guest cluster of the plan. */
enum sieved { DROPPED, KEPT, ZEROED };

static enum sieved
keep_all(uint64_t c, unsigned l2_bits)
{
	(void)c, (void)l2_bits;
	return KEPT;
}

static enum sieved
keep_none(uint64_t c, unsigned l2_bits)
{
	(void)c, (void)l2_bits;
	return DROPPED;
}

static enum sieved
keep_even(uint64_t c, unsigned l2_bits)
{
	(void)l2_bits;
	return c % 2 == 0 ? KEPT : DROPPED;
}

static enum sieved
keep_even_tables(uint64_t c, unsigned l2_bits)
{
	return (c >> l2_bits) % 2 == 0 ? KEPT : DROPPED;
}

/* Of the first table, every other cluster kept and the rest zero clusters. */
static enum sieved
keep_even_zero_odd_of_table_0(uint64_t c, unsigned l2_bits)
{
	if (c >> l2_bits != 0)
		return DROPPED;
	return c % 2 == 0 ? KEPT : ZEROED;
}

/* Guest cluster c added to list, clipped to the disk, joined to the last range. */
static void
add_cluster(struct range_list *list, uint64_t c, unsigned bits, uint64_t size)
{
	uint64_t offset = c << bits, end = (c + 1) << bits;
	struct range *last = list->n > 0 ? &list->v[list->n - 1] : NULL;

	if (end > size)
		end = size;
	if (last != NULL && last->offset + last->length == offset)
		last->length += end - offset;
	else if (ranges_add(list, offset, end - offset) == -1) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
}

/*
 * Disks read with no map (the plan: every cluster), sieved by a rule,
 * laid out by hand: the data, the L2 tables, the zero clusters, the gap
 * and the file's clusters, then the model over it all.
 */
static void
t_within_cases(void)
{
	static const struct {
		const char *what;
		unsigned bits;
		uint64_t size;
		enum sieved (*rule)(uint64_t, unsigned);
		int version;
		const char *backing, *format;
		uint64_t data, l2, zero, gap, total;
	} cases[] = {
		/* The plan itself: 160 data, 1 L2, header, L1, table, block. */
		{ "64 KiB, 10 MiB, all kept: the plan itself", 16, 10 * MiB,
		    keep_all, 3, NULL, NULL, 160, 1, 0, 0, 165 },
		/* header | L1 | table | block, as the stream form of nothing */
		{ "64 KiB, 10 MiB, none kept: no data to move", 16, 10 * MiB,
		    keep_none, 3, NULL, NULL, 0, 0, 0, 0, 4 },
		/* the one table still needed: no gap, the data at 5 */
		{ "64 KiB, 10 MiB, every other cluster kept", 16, 10 * MiB,
		    keep_even, 3, NULL, NULL, 80, 1, 0, 0, 85 },
		/*
		 * 512 B, 1 MiB: the plan is 2048 data in 32 tables, 9 blocks, a
		 * table cluster: data at 44.  Half the tables: 1024 data to 1068,
		 * which 5 blocks count; 1 + 1 + 1 + 5 + 16 = 24, a gap of 20.
		 */
		{ "512 B, 1 MiB, the clusters of every other L2 table kept", 9, MiB,
		    keep_even_tables, 3, NULL, NULL, 1024, 16, 0, 20, 1068 },
		/* Every table still needed: 1 + 1 + 1 + 5 + 32 = 40, a gap of 4. */
		{ "512 B, 1 MiB, every other cluster kept", 9, MiB,
		    keep_even, 3, NULL, NULL, 1024, 32, 0, 4, 1068 },
		/*
		 * 2 MiB, 1 TiB: 2 tables of 512 GiB, a block counts 1M clusters;
		 * the plan's data at 6.  The first table's 262144 kept, one table
		 * fewer: a gap of 1.
		 */
		{ "2 MiB, 1 TiB, the clusters of the first of two L2 tables kept", 21,
		    TiB, keep_even_tables, 3, NULL, NULL, 262144, 1, 0, 1, 262150 },
		/* 64 KiB, 1 GiB: 2 tables, the plan's data at 6. */
		{ "64 KiB, 1 GiB, version 2 over a raw backing file, one table of two",
		    16, GiB, keep_even_tables, 2, "base.raw", "raw", 8192, 1, 0, 1, 8198 },
		{ "64 KiB, 1 GiB, over a backing file, half of one table zero clusters",
		    16, GiB, keep_even_zero_odd_of_table_0, 3, "base.qcow2", "qcow2",
		    4096, 1, 4096, 1, 4102 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct range_list kept = { NULL, 0, 0 }, zeros = { NULL, 0, 0 };
		unsigned bits = cases[i].bits;
		struct layout lo, plan;
		struct range whole;
		struct model m;
		uint64_t guest = ceil_div(cases[i].size, UINT64_C(1) << bits);

		set_case("%s", cases[i].what);
		for (uint64_t c = 0; c < guest; c++) {
			enum sieved what = cases[i].rule(c, bits - 3);

			if (what != DROPPED)
				add_cluster(what == KEPT ? &kept : &zeros, c, bits,
				    cases[i].size);
		}
		make_model(&m, bits, cases[i].size, kept.v, kept.n);
		if (model_set_zeros(&m, zeros.v, zeros.n) == -1) {
			printf("Bail out! out of memory\n");
			exit(1);
		}
		model_set_header(&m, cases[i].version, cases[i].backing, cases[i].format);
		if (check_err(layout_init(&lo, cases[i].size, bits, kept.v, kept.n),
		    LAYOUT_OK) &&
		    check_err(layout_set_header(&lo, cases[i].version, cases[i].backing,
		    cases[i].format), LAYOUT_OK) &&
		    check_err(layout_set_zeros(&lo, zeros.v, zeros.n), LAYOUT_OK) &&
		    place_within(&lo, &m, &whole, whole_disk(&lo, &whole), &plan)) {
			check_u64(lo.data_clusters, cases[i].data);
			check_u64(lo.l2_tables, cases[i].l2);
			check_u64(lo.zero_clusters, cases[i].zero);
			check_u64(lo.gap_clusters, cases[i].gap);
			check_u64(lo.total_clusters, cases[i].total);
			if (cases[i].data > 0) {
				check_u64(lo.data_offset, plan.data_offset);
				check_u64(layout_image_size(&lo), cases[i].total << bits);
			}
			check_layout(&lo, &m);
		}
		model_free(&m);
		ranges_free(&kept);
		ranges_free(&zeros);
	}
}

/*
 * A layout that the plan has no room for is refused and left as it was,
 * and so is it by the model: more data, more tables than room before the
 * plan's data, another cluster size, another L1 table.
 */
static void
t_within_errors(void)
{
	static const struct range one = { 0, 1 }, two = { 0, 65537 };
	static const struct range far = { 600 * MiB, 1 };
	static const struct {
		const char *what;
		unsigned bits, plan_bits;
		uint64_t size, plan_size;
		const struct range *r, *z, *plan_r;
	} cases[] = {
		{ "two data clusters in a plan of one", 16, 16, 10 * MiB, 10 * MiB,
		    &two, NULL, &one },
		/* data at 5 in the plan; 1 + 1 + 1 + 1 + 2 L2 tables is 6 */
		{ "a zero cluster in a second table the plan has no room for", 16, 16,
		    GiB, GiB, &one, &far, &one },
		{ "64 KiB clusters in a plan of 4 KiB", 16, 12, 10 * MiB, 10 * MiB,
		    &one, NULL, &two },
		/* 512 B: an L1 cluster maps 2 MiB */
		{ "a 1 MiB disk in the plan of a 4 MiB one", 9, 9, MiB, 4 * MiB,
		    &one, NULL, &two },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct layout lo, was, plan;
		struct model m, pm, m_was;

		set_case("%s", cases[i].what);
		if (!check_err(layout_init(&plan, cases[i].plan_size, cases[i].plan_bits,
		    cases[i].plan_r, 1), LAYOUT_OK) ||
		    !check_err(layout_init(&lo, cases[i].size, cases[i].bits, cases[i].r, 1),
		    LAYOUT_OK) ||
		    !check_err(layout_set_zeros(&lo, cases[i].z, cases[i].z != NULL),
		    LAYOUT_OK))
			continue;
		was = lo;
		check_err(layout_within(&lo, &plan), LAYOUT_NOT_WITHIN);
		check_model(model_check_same_sizes(&lo, &was, "a refused layout_within",
		    &failure));
		check_model(model_check_same_offsets(&lo, &was, "a refused layout_within",
		    &failure));
		make_model(&pm, cases[i].plan_bits, cases[i].plan_size, cases[i].plan_r, 1);
		make_model(&m, cases[i].bits, cases[i].size, cases[i].r, 1);
		if (model_set_zeros(&m, cases[i].z, cases[i].z != NULL) == -1) {
			printf("Bail out! out of memory\n");
			exit(1);
		}
		m_was = m;
		check_u64(model_within(&m, &pm), (uint64_t)-1);
		check_u64(m.total_clusters, m_was.total_clusters);
		check_u64(m.data_at, m_was.data_at);
		model_free(&m);
		model_free(&pm);
	}
}

/* Layout: the refcount fixed point */

/*
 * The model tries each number of refcount blocks in turn, and
 * model_check_fields checks lo's against it and by their bounds: they
 * count every cluster and no block could go, the table has no spare
 * cluster.  Its counts alone are enough here, no list of clusters.
 */

/* Every all-data disk of up to 30000 clusters of 512 B, and one byte less. */
static void
t_refcount_sweep_dense(void)
{
	for (uint64_t n = 0; n <= 30000; n++) {
		for (uint64_t less = 0; less <= (n > 0); less++) {
			uint64_t size = n * 512 - less;
			struct range r = { 0, size };
			struct layout lo;
			struct model m;

			set_case("512 B clusters, %" PRIu64 " bytes all data", size);
			model_count(&m, 9, size, n, ceil_div(n, 64));
			if (!check_err(layout_init(&lo, size, 9, &r, size > 0), LAYOUT_OK) ||
			    !check_model(model_check_fields(&m, &lo, &failure)))
				return;
		}
	}
}

/*
 * Disks up to the 128 GiB that 512 B clusters allow, holding one byte: the
 * L1 table alone grows to 65536 clusters, the refcount table to 5.
 */
static void
t_refcount_sweep_sparse(void)
{
	uint64_t step = 128 * GiB / 20000 + 1;

	for (uint64_t size = 1; size <= 128 * GiB; size += step) {
		struct range r = { size - 1, 1 };
		struct layout lo;
		struct model m;

		set_case("512 B clusters, %" PRIu64 " bytes, the last byte data", size);
		model_count(&m, 9, size, 1, 1);
		if (!check_err(layout_init(&lo, size, 9, &r, 1), LAYOUT_OK) ||
		    !check_model(model_check_fields(&m, &lo, &failure)))
			return;
	}
}

/* Every cluster size, all-data disks around each multiple of a block's count. */
static void
t_refcount_sweep_cluster_sizes(void)
{
	for (unsigned bits = MIN_CLUSTER_BITS; bits <= MAX_CLUSTER_BITS; bits++) {
		uint64_t cs = UINT64_C(1) << bits, per_block = cs / 2;

		for (uint64_t k = 1; k <= 3; k++) {
			for (uint64_t d = 0; d < 2 * (cs / 8) + 8; d++) {
				uint64_t n = k * per_block - d;
				struct range r = { 0, n * cs };
				struct layout lo;
				struct model m;

				set_case("cluster_bits %u, %" PRIu64 " clusters all data",
				    bits, n);
				model_count(&m, bits, n * cs, n, ceil_div(n, cs / 8));
				if (!check_err(layout_init(&lo, n * cs, bits, &r, 1),
				    LAYOUT_OK) || !check_model(model_check_fields(&m, &lo,
				    &failure)))
					return;
				if (d > 64)
					d += d / 8;	/* sparser far from the edge */
			}
		}
	}
}

/* Layout: the model check */

static uint64_t
pick_offset(uint64_t size, uint64_t cs)
{
	uint64_t l2_cover = cs * (cs / 8), base, near, off;

	switch (rng_below(4)) {
	case 0:
		return rng_below(size);
	case 1:
		base = cs * rng_below(size / cs + 1);		/* a cluster edge */
		break;
	case 2:
		base = l2_cover * rng_below(size / l2_cover + 1);	/* an L2 edge */
		break;
	default:
		base = size;					/* the end */
		break;
	}
	near = rng_below(3) ? rng_below(16) : rng_below(cs);
	off = (rng() & 1) || base < near ? base + near : base - near;
	return off < size ? off : size - 1;
}

static uint64_t
pick_length(uint64_t size, uint64_t cs)
{
	switch (rng_below(6)) {
	case 0:
		return 1 + rng_below(8);
	case 1:
		return 1 + rng_below(cs);
	case 2:
		return cs;
	case 3:
		return 1 + rng_below(4 * cs);
	case 4:
		return 1 + rng_below(64 * cs);
	default:
		return 1 + rng_below(size / 2 + 1);
	}
}

static uint64_t
pick_gap(uint64_t pos, uint64_t cs)
{
	uint64_t l2_cover = cs * (cs / 8);

	switch (rng_below(6)) {
	case 0:
		return 0;				/* touching */
	case 1:
		return 1 + rng_below(8);		/* likely the same cluster */
	case 2:
		return cs - pos % cs + rng_below(2);	/* to the next cluster edge */
	case 3:
		return l2_cover - pos % l2_cover;	/* to the next L2 edge */
	case 4:
		return rng_below(4 * cs);
	default:
		return rng_below(l2_cover);
	}
}

static uint64_t
pick_size(unsigned bits)
{
	uint64_t cs = UINT64_C(1) << bits, l2_cover = cs * (cs / 8);

	switch (rng_below(8)) {
	case 0:
		return 0;
	case 1:
		return 1 + rng_below(3 * cs);
	case 2:
		return cs * rng_below(4 * MiB / cs + 1);
	case 3:
		return l2_cover * (1 + rng_below(3)) + rng_below(1024) - 512;
	case 4:
		return 1 + rng_below(16 * MiB);
	default:
		return 1 + rng_below(4 * MiB);
	}
}

/*
 * Ranges of one of three shapes into raw: scattered at random (possibly
 * overlapping and unsorted, to go through ranges_merge), laid end to end
 * with random gaps (sorted, possibly touching), or none.
 */
static int
pick_ranges(uint64_t size, uint64_t cs, struct range_list *raw)
{
	int shape = (int)rng_below(5);

	if (size == 0)
		return 0;
	if (shape <= 1) {
		uint64_t n = rng_below(shape == 0 ? 12 : 60);

		for (uint64_t i = 0; i < n; i++) {
			uint64_t off = pick_offset(size, cs);
			uint64_t len = pick_length(size, cs);

			if (len > size - off)
				len = size - off;
			if (ranges_add(raw, off, len) == -1) {
				printf("Bail out! out of memory\n");
				exit(1);
			}
		}
		return 1;
	}
	if (shape <= 3) {
		uint64_t pos = rng_below(2) ? 0 : pick_offset(size, cs);

		while (pos < size && raw->n < 200) {
			uint64_t len = pick_length(size, cs);

			if (len > size - pos)
				len = size - pos;
			if (ranges_add(raw, pos, len) == -1) {
				printf("Bail out! out of memory\n");
				exit(1);
			}
			pos += len;
			pos += pick_gap(pos, cs);
		}
		return (int)rng_below(2);
	}
	return 0;
}

static void
describe_case(uint64_t seed, int index, int within, unsigned bits,
    uint64_t size, const struct range_list *raw)
{
	set_case("seed 0x%" PRIx64 " case %d%s: cluster_bits %u, input_size %" PRIu64
	    ", %zu ranges", seed, index, within ? " within a plan" : "", bits,
	    size, raw->n);
	for (size_t i = 0; i < raw->n && i < 12; i++)
		add_case(" [%" PRIu64 ",+%" PRIu64 ")", raw->v[i].offset, raw->v[i].length);
	if (raw->n > 12)
		add_case(" ...");
}

/* Ranges as picked into raw, merged into given if pick_ranges says so. */
static void
pick_given(uint64_t size, uint64_t cs, struct range_list *raw, struct range_list *given)
{
	if (pick_ranges(size, cs, raw)) {
		for (size_t i = 0; i < raw->n; i++)
			ranges_add(given, raw->v[i].offset, raw->v[i].length);
		ranges_merge(given);
	} else {
		*given = *raw;
	}
}

static void
free_given(struct range_list *raw, struct range_list *given)
{
	if (given->v != raw->v)
		ranges_free(given);
	ranges_free(raw);
}

/*
 * lo and m placed within the plan of their data, their zeros and more
 * ranges picked, as -o's sieve keeps some of the clusters of its plan
 * and marks others zero clusters.
 */
static int
within_picked(struct layout *lo, struct model *m, uint64_t cs,
    const struct range_list *given, const struct range_list *zgiven)
{
	struct range_list xraw = { NULL, 0, 0 }, xgiven = { NULL, 0, 0 };
	struct range_list plan = { NULL, 0, 0 };
	const struct range_list *parts[] = { given, zgiven, &xgiven };
	int ok;

	pick_given(lo->input_size, cs, &xraw, &xgiven);
	for (size_t k = 0; k < 3; k++)
		for (size_t i = 0; i < parts[k]->n; i++)
			if (ranges_add(&plan, parts[k]->v[i].offset,
			    parts[k]->v[i].length) == -1) {
				printf("Bail out! out of memory\n");
				exit(1);
			}
	ranges_merge(&plan);
	add_case("; within a plan of %zu ranges", plan.n);
	ok = place_within(lo, m, plan.v, plan.n, NULL);
	ranges_free(&plan);
	free_given(&xraw, &xgiven);
	return ok;
}

/*
 * The same cases either way: within a plan, the data goes to the plan's
 * data offset, a gap before it.  Half of them have zero ranges too.
 */
static void
t_model(uint64_t seed, int cases, int within)
{
	for (int index = 0; index < cases && checks_failed == 0; index++) {
		struct range_list raw = { NULL, 0, 0 }, given = { NULL, 0, 0 };
		struct range_list zraw = { NULL, 0, 0 }, zgiven = { NULL, 0, 0 };
		struct model m;
		struct layout lo;
		unsigned bits;
		uint64_t size, cs;

		rng_seed(seed, (uint64_t)index);
		bits = 9 + (unsigned)rng_below(4);
		cs = UINT64_C(1) << bits;
		size = pick_size(bits);
		pick_given(size, cs, &raw, &given);
		if (rng_below(2))
			pick_given(size, cs, &zraw, &zgiven);
		describe_case(seed, index, within, bits, size, &raw);
		if (zraw.n > 0) {
			add_case("; %zu zero ranges", zraw.n);
			for (size_t i = 0; i < zraw.n && i < 6; i++)
				add_case(" [%" PRIu64 ",+%" PRIu64 ")", zraw.v[i].offset,
				    zraw.v[i].length);
		}

		/* The model takes the ranges as picked, not as merged. */
		make_model(&m, bits, size, raw.v, raw.n);
		if (model_set_zeros(&m, zraw.v, zraw.n) == -1) {
			printf("Bail out! out of memory\n");
			exit(1);
		}
		if (check_err(layout_init(&lo, size, bits, given.v, given.n), LAYOUT_OK) &&
		    check_err(layout_set_zeros(&lo, zgiven.v, zgiven.n), LAYOUT_OK) &&
		    (!within || within_picked(&lo, &m, cs, &given, &zgiven)))
			check_layout(&lo, &m);
		model_free(&m);
		free_given(&zraw, &zgiven);
		free_given(&raw, &given);
	}
}

/* Layout: errors */

/* The bits model_range_errors and model_header_errors give for one error. */
static unsigned
error_bit(enum layout_error error)
{
	return error == LAYOUT_OK ? 0 : 1u << error;
}

static void
t_cluster_bits(void)
{
	static const unsigned bad[] = { 0, 1, 8, 22, 31, 32, 63, 64, 1000 };
	struct layout lo;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set_case("cluster_bits %u", bad[i]);
		check_err(layout_init(&lo, MiB, bad[i], NULL, 0), LAYOUT_BAD_CLUSTER_BITS);
	}
	for (unsigned bits = MIN_CLUSTER_BITS; bits <= MAX_CLUSTER_BITS; bits++) {
		set_case("cluster_bits %u", bits);
		check_err(layout_init(&lo, MiB, bits, NULL, 0), LAYOUT_OK);
	}
}

static void
t_range_order(void)
{
	static const struct {
		const char *what;
		struct range r[3];
		size_t n;
		enum layout_error want;
	} cases[] = {
		{ "unsorted", { { 100, 10 }, { 0, 10 } }, 2, LAYOUT_RANGE_ORDER },
		{ "overlapping", { { 0, 10 }, { 9, 10 } }, 2, LAYOUT_RANGE_ORDER },
		{ "same offset", { { 0, 10 }, { 0, 20 } }, 2, LAYOUT_RANGE_ORDER },
		{ "contained", { { 0, 100 }, { 10, 5 } }, 2, LAYOUT_RANGE_ORDER },
		{ "zero length first", { { 0, 0 } }, 1, LAYOUT_RANGE_ORDER },
		{ "zero length later", { { 0, 10 }, { 20, 0 } }, 2, LAYOUT_RANGE_ORDER },
		{ "unsorted third", { { 0, 1 }, { 20, 1 }, { 10, 1 } }, 3,
		    LAYOUT_RANGE_ORDER },
		{ "touching is fine", { { 0, 10 }, { 10, 10 }, { 20, 1 } }, 3, LAYOUT_OK },
		{ "same cluster is fine", { { 0, 1 }, { 2, 1 } }, 2, LAYOUT_OK },
	};
	struct layout lo;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set_case("%s", cases[i].what);
		check_err(layout_init(&lo, MiB, 16, cases[i].r, cases[i].n), cases[i].want);
		check_u64(model_range_errors(cases[i].r, cases[i].n, MiB),
		    error_bit(cases[i].want));
	}
}

static void
t_range_beyond(void)
{
	static const struct {
		const char *what;
		uint64_t size;
		struct range r;
		enum layout_error want;
	} cases[] = {
		{ "one byte past the end", 1000, { 999, 2 }, LAYOUT_RANGE_BEYOND },
		{ "starting at the end", 1000, { 1000, 1 }, LAYOUT_RANGE_BEYOND },
		{ "far past the end", 1000, { 5000, 1 }, LAYOUT_RANGE_BEYOND },
		{ "within the rounded-up sector", 1000, { 1000, 24 }, LAYOUT_RANGE_BEYOND },
		{ "offset + length wraps", 1000, { 10, UINT64_MAX - 5 },
		    LAYOUT_RANGE_BEYOND },
		{ "huge offset", 1000, { UINT64_MAX, 1 }, LAYOUT_RANGE_BEYOND },
		{ "empty disk", 0, { 0, 1 }, LAYOUT_RANGE_BEYOND },
		{ "ending exactly at the end", 1000, { 990, 10 }, LAYOUT_OK },
		{ "the whole disk", 1000, { 0, 1000 }, LAYOUT_OK },
	};
	struct layout lo;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set_case("%s", cases[i].what);
		check_err(layout_init(&lo, cases[i].size, 16, &cases[i].r, 1), cases[i].want);
		check_u64(model_range_errors(&cases[i].r, 1, cases[i].size),
		    error_bit(cases[i].want));
	}
}

/* The L1 table may have 4M entries of cs * cs / 8 bytes each, no more. */
static void
t_l1_limit(void)
{
	for (unsigned bits = MIN_CLUSTER_BITS; bits <= MAX_CLUSTER_BITS; bits++) {
		uint64_t cs = UINT64_C(1) << bits;
		uint64_t max = MAX_L1_ENTRIES * cs * (cs / 8);
		struct layout lo;

		set_case("cluster_bits %u, largest size %" PRIu64, bits, max);
		if (check_err(layout_init(&lo, max, bits, NULL, 0), LAYOUT_OK)) {
			check_u64(lo.l1_entries, MAX_L1_ENTRIES);
			check_u64(lo.l1_clusters, 32 * MiB / cs);
		}
		check_err(layout_init(&lo, max - 1, bits, NULL, 0), LAYOUT_OK);
		check_err(layout_init(&lo, max + 1, bits, NULL, 0), LAYOUT_L1_TOO_LARGE);
		check_err(layout_init(&lo, max + 512, bits, NULL, 0), LAYOUT_L1_TOO_LARGE);
		check_err(layout_init(&lo, UINT64_MAX, bits, NULL, 0), LAYOUT_L1_TOO_LARGE);
	}
}

/* The largest n for which ok(bits, n) holds, given ok(bits, lo) and !ok(bits, hi). */
static uint64_t
largest(int (*ok)(unsigned, uint64_t), unsigned bits, uint64_t lo, uint64_t hi)
{
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (ok(bits, mid))
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* The model of a disk of n clusters, all data. */
static void
count_dense(struct model *m, unsigned bits, uint64_t n)
{
	uint64_t cs = UINT64_C(1) << bits;

	model_count(m, bits, n * cs, n, ceil_div(n, cs / 8));
}

static int
reftable_fits(unsigned bits, uint64_t n)
{
	struct model m;

	count_dense(&m, bits, n);
	return m.refcount_table_clusters * m.cluster_size <= 8 * MiB;
}

static int
offsets_fit(unsigned bits, uint64_t n)
{
	struct model m;

	count_dense(&m, bits, n);
	return m.total_clusters << bits <= UINT64_C(1) << 56;
}

/*
 * At 512 B a refcount table of 8 MiB counts 2^28 clusters, fewer than an
 * all-data disk of the largest L1 table needs: the boundary, found on the
 * model, must be layout.c's.
 */
static void
t_refcount_limit(void)
{
	uint64_t n = largest(reftable_fits, 9, 1, UINT64_C(1) << 28);
	struct range r = { 0, n * 512 };
	struct layout lo;

	check(!reftable_fits(9, UINT64_C(1) << 28));
	set_case("512 B clusters, %" PRIu64 " clusters all data", n);
	if (check_err(layout_init(&lo, r.length, 9, &r, 1), LAYOUT_OK))
		check_u64(lo.refcount_table_clusters * 512, 8 * MiB);
	r.length += 512;
	set_case("512 B clusters, %" PRIu64 " clusters all data", n + 1);
	check_err(layout_init(&lo, r.length, 9, &r, 1), LAYOUT_REFCOUNT_TOO_LARGE);
	r.length -= 511;
	set_case("512 B clusters, %" PRIu64 " bytes all data", r.length);
	check_err(layout_init(&lo, r.length, 9, &r, 1), LAYOUT_REFCOUNT_TOO_LARGE);
}

/* At 2 MiB, host offsets (56 bits) run out before the refcount table does. */
static void
t_image_limit(void)
{
	uint64_t n = largest(offsets_fit, 21, 1, UINT64_C(1) << 40);
	struct range r = { 0, n << 21 };
	struct layout lo;

	check(!offsets_fit(21, UINT64_C(1) << 40));
	set_case("2 MiB clusters, %" PRIu64 " clusters all data", n);
	if (check_err(layout_init(&lo, r.length, 21, &r, 1), LAYOUT_OK)) {
		check_u64(lo.total_clusters, UINT64_C(1) << 35);
		check_u64(layout_image_size(&lo), UINT64_C(1) << 56);
	}
	r.length += 2 * MiB;
	set_case("2 MiB clusters, %" PRIu64 " clusters all data", n + 1);
	check_err(layout_init(&lo, r.length, 21, &r, 1), LAYOUT_IMAGE_TOO_LARGE);
}

static void
t_strerror(void)
{
	for (int e = LAYOUT_OK; e <= LAYOUT_NOT_WITHIN; e++) {
		const char *s = layout_strerror((enum layout_error)e);
		size_t len;

		set_case("layout_strerror(%d)", e);
		if (!check(s != NULL) || !check(s[0] != '\0'))
			continue;
		len = strlen(s);
		check(!(s[0] >= 'A' && s[0] <= 'Z'));
		check(s[len - 1] != '.' && s[len - 1] != '\n');
		for (int f = LAYOUT_OK; f < e; f++)
			check(strcmp(s, layout_strerror((enum layout_error)f)) != 0);
	}
	set_case("layout_strerror(99)");
	check(layout_strerror((enum layout_error)99) != NULL);
}

/* Layout: nothing grows with the guest disk but the L1 table */

static void
t_huge_sparse(unsigned bits, uint64_t size, uint64_t meta_clusters,
    int within)
{
	const struct range r[3] = {
		{ 0, 4096 }, { size / 2 + 100, 1 }, { size - 1, 1 },
	};
	const struct range plan_r[4] = {
		{ 0, 4096 }, { size / 4, 1 }, { size / 2 + 100, 1 }, { size - 1, 1 },
	};
	struct model m;
	struct layout lo;
	struct meta_writer mw;
	unsigned char *c = xcalloc(UINT64_C(1) << bits, 1);
	uint64_t n = 0;

	set_case("cluster_bits %u, %" PRIu64 " bytes, 3 ranges%s", bits, size,
	    within ? ", within a plan of one more" : "");
	make_model(&m, bits, size, r, 3);
	if (!check_err(layout_init(&lo, size, bits, r, 3), LAYOUT_OK) ||
	    (within && !place_within(&lo, &m, plan_r, 4, NULL)))
		goto out;
	check_u64(layout_meta_clusters(&lo), meta_clusters);
	check_u64(lo.gap_clusters, within);
	meta_writer_init(&mw, &lo);
	while (n <= meta_clusters && meta_writer_next(&mw, c))
		n++;
	check_u64(n, meta_clusters);
	check_layout(&lo, &m);
out:
	model_free(&m);
	free(c);
}

/* Within a plan of one more L2 table: the gap of it, no more metadata. */
static void
t_huge_sparse_within(void)
{
	t_huge_sparse(16, 64 * TiB, 22, 1);
	t_huge_sparse(16, 2 * PiB, 518, 1);
	t_huge_sparse(21, UINT64_C(1) << 61, 22, 1);
}

/* Layout: versions and backing files */

/* A name of len bytes (at most 1100), none of them NUL, in buf. */
static const char *
make_name(char *buf, size_t len, char first)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(first + i % 26);
	buf[len] = '\0';
	return buf;
}

/*
 * Cluster 0 holds the header (72 bytes in version 2, 104 in 3), the
 * backing format extension (8 bytes and the name padded to 8), the
 * 8-byte end of the extensions, then the backing file name: each case at
 * its limit, computed by hand, then checked against the model and, if it
 * holds, decoded, alone and within the plan of the whole disk.
 */
static void
t_headers(void)
{
	static const struct {
		const char *what;
		unsigned bits;
		int version;
		int name_len;	/* -1: no backing file */
		int format_len;	/* -1: no format */
		enum layout_error want;
	} cases[] = {
		{ "version 2, no backing file", 9, 2, -1, -1, LAYOUT_OK },
		{ "version 3, a format and no name", 9, 3, -1, 3, LAYOUT_OK },
		{ "version 3, an empty format", 9, 3, 10, 0, LAYOUT_OK },
		/* 104 + 8 + 400 = 512 */
		{ "version 3, 512 B, a 400-byte name", 9, 3, 400, -1, LAYOUT_OK },
		{ "version 3, 512 B, a 401-byte name", 9, 3, 401, -1,
		    LAYOUT_BACKING_DOES_NOT_FIT },
		/* 72 + 8 + 432 = 512 */
		{ "version 2, 512 B, a 432-byte name", 9, 2, 432, -1, LAYOUT_OK },
		{ "version 2, 512 B, a 433-byte name", 9, 2, 433, -1,
		    LAYOUT_BACKING_DOES_NOT_FIT },
		/* 104 + 8 + 8 + 8 + 384 = 512 */
		{ "version 3, 512 B, a 5-byte format, a 384-byte name", 9, 3, 384, 5,
		    LAYOUT_OK },
		{ "version 3, 512 B, a 5-byte format, a 385-byte name", 9, 3, 385, 5,
		    LAYOUT_BACKING_DOES_NOT_FIT },
		/* 72 + 8 + 16 + 8 + 408 = 512 */
		{ "version 2, 512 B, a 15-byte format, a 408-byte name", 9, 2, 408, 15,
		    LAYOUT_OK },
		{ "version 2, 512 B, a 9-byte format, a 409-byte name", 9, 2, 409, 9,
		    LAYOUT_BACKING_DOES_NOT_FIT },
		{ "a 16-byte format", 16, 3, 10, 16, LAYOUT_BACKING_FORMAT_TOO_LONG },
		{ "a 1023-byte name", 16, 3, 1023, 8, LAYOUT_OK },
		{ "a 1024-byte name", 16, 3, 1024, -1, LAYOUT_BACKING_TOO_LONG },
		{ "version 1", 16, 1, -1, -1, LAYOUT_BAD_VERSION },
		{ "version 4 with a name", 16, 4, 5, -1, LAYOUT_BAD_VERSION },
	};
	static char name[1101], format[1101];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t cs = UINT64_C(1) << cases[i].bits;
		const struct range r = { 3 * cs + 7, 2 * cs };
		const char *n = NULL, *f = NULL;

		if (cases[i].name_len >= 0)
			n = make_name(name, (size_t)cases[i].name_len, 'a');
		if (cases[i].format_len >= 0)
			f = make_name(format, (size_t)cases[i].format_len, 'A');
		for (int within = 0; within <= 1; within++) {
			struct layout lo, was;
			struct range whole;
			struct model m;
			enum layout_error got;

			set_case("%s%s", cases[i].what, within ? ", within the whole disk" :
			    "");
			if (!check_err(layout_init(&lo, 10 * MiB, cases[i].bits, &r, 1),
			    LAYOUT_OK))
				continue;
			was = lo;
			got = layout_set_header(&lo, cases[i].version, n, f);
			check_err(got, cases[i].want);
			check_u64(model_header_errors(cases[i].version, n, f, cs),
			    error_bit(cases[i].want));
			check_model(model_check_same_sizes(&lo, &was, "layout_set_header",
			    &failure));
			check_model(model_check_same_offsets(&lo, &was, "layout_set_header",
			    &failure));
			if (got != LAYOUT_OK)
				continue;
			make_model(&m, cases[i].bits, 10 * MiB, &r, 1);
			model_set_header(&m, cases[i].version, n, f);
			if (!within || place_within(&lo, &m, &whole,
			    whole_disk(&lo, &whole), NULL))
				check_layout(&lo, &m);
			model_free(&m);
		}
	}
}

/*
 * The header of a version 2 overlay of 10 MiB with 64 KiB clusters, its
 * first byte data, written out by hand: the format extension at 72, "raw"
 * padded to 8, the end of the extensions at 88, the name at 96.
 */
static void
t_header_bytes(void)
{
	static const unsigned char want[] = {
		0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 2,		/* magic, version */
		0, 0, 0, 0, 0, 0, 0, 96, 0, 0, 0, 10,		/* the name */
		0, 0, 0, 16,					/* cluster_bits */
		0, 0, 0, 0, 0, 0xa0, 0, 0,			/* size: 10 MiB */
		0, 0, 0, 0, 0, 0, 0, 1,				/* crypt, l1_size */
		0, 0, 0, 0, 0, 1, 0, 0,				/* L1 at 64 KiB */
		0, 0, 0, 0, 0, 2, 0, 0,				/* table at 128 KiB */
		0, 0, 0, 1, 0, 0, 0, 0,		/* table clusters, snapshots */
		0, 0, 0, 0, 0, 0, 0, 0,				/* snapshots_offset */
		0xe2, 0x79, 0x2a, 0xca, 0, 0, 0, 3,		/* backing format */
		'r', 'a', 'w', 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0,				/* the end */
		'b', 'a', 's', 'e', '.', 'q', 'c', 'o', 'w', '2',
	};
	static const struct range r = { 0, 1 };
	struct layout lo;
	struct meta_writer mw;
	unsigned char *c = xcalloc(64 * KiB, 1);

	if (!check_err(layout_init(&lo, 10 * MiB, 16, &r, 1), LAYOUT_OK) ||
	    !check_err(layout_set_header(&lo, 2, "base.qcow2", "raw"), LAYOUT_OK))
		goto out;
	meta_writer_init(&mw, &lo);
	check(meta_writer_next(&mw, c));
	for (size_t i = 0; i < sizeof(want); i++) {
		note("header byte %zu", i);
		if (!check_u64(c[i], want[i]))
			break;
	}
	note_text[0] = '\0';
	check(all_bytes(c + sizeof(want), 64 * KiB - sizeof(want), 0));
out:
	free(c);
}

/* Layout: zero clusters */

/* The model of ranges and zeros; bails out without memory. */
static void
make_zero_model(struct model *m, unsigned bits, uint64_t size, const struct range *r,
    size_t n, const struct range *z, size_t nz)
{
	make_model(m, bits, size, r, n);
	if (model_set_zeros(m, z, nz) == -1) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
}

/*
 * The 6-cluster image of t_known_bytes with zeros over its first MiB
 * (guest clusters 0-15) and over 5000000..5069999 (clusters 76 and 77,
 * of which 76 holds the data): 17 zero clusters in the one L2 table, no
 * cluster more in the file.  The L2 table, cluster 4: the zero flag in
 * entries 0-15 and 77, the data cluster at 320 KiB in entry 76.
 */
static void
t_zero_bytes(void)
{
	static const struct range r = { 5000000, 5 };
	static const struct range z[] = { { 0, MiB }, { 5000000, 70000 } };
	struct layout lo;
	struct meta_writer mw;
	struct model m;
	unsigned char *c = xcalloc(64 * KiB, 1);

	/* The plan of the whole disk has one table too: its data at 5, no gap. */
	for (int within = 0; within <= 1; within++) {
		struct range whole;

		set_case("64 KiB clusters, 10 MiB, 5 bytes at 5000000, zeros%s",
		    within ? ", within the whole disk" : "");
		make_zero_model(&m, 16, 10 * MiB, &r, 1, z, 2);
		if (!check_err(layout_init(&lo, 10 * MiB, 16, &r, 1), LAYOUT_OK) ||
		    !check_err(layout_set_zeros(&lo, z, 2), LAYOUT_OK) ||
		    (within && !place_within(&lo, &m, &whole, whole_disk(&lo, &whole),
		    NULL))) {
			model_free(&m);
			continue;
		}
		check_u64(lo.data_clusters, 1);
		check_u64(lo.zero_clusters, 17);
		check_u64(lo.l2_tables, 1);
		check_u64(lo.total_clusters, 6);
		check_u64(lo.gap_clusters, 0);
		check_u64(lo.l2_offset, 0x40000);
		check_u64(lo.data_offset, 0x50000);
		meta_writer_init(&mw, &lo);
		meta_writer_seek(&mw, lo.l2_offset >> 16);
		check(meta_writer_next(&mw, c));
		for (uint64_t i = 0; i < 16; i++)
			check_u64(be(c + i * 8, 8), 1);
		check(all_bytes(c + 16 * 8, 60 * 8, 0));
		check_u64(be(c + 76 * 8, 8), UINT64_C(0x8000000000000000) | lo.data_offset);
		check_u64(be(c + 77 * 8, 8), 1);
		check(all_bytes(c + 78 * 8, 64 * KiB - 78 * 8, 0));
		check_layout(&lo, &m);
		model_free(&m);
	}
	free(c);
}

/*
 * 1 GiB at 64 KiB is two L2 tables of 512 MiB.  Its first byte data and
 * byte 600 MiB zeros: guest cluster 9600, entry 1408 of the second
 * table, which a zero cluster alone makes.  header | L1 | refcount table
 * | block | 2 L2 | data = 7 clusters.  With no data, 5 clusters: the L2
 * table ends the file.
 */
static void
t_zero_tables(void)
{
	static const struct range r = { 0, 1 }, z = { 600 * MiB, 1 };
	struct layout lo;
	struct meta_writer mw;
	struct model m;
	unsigned char *c = xcalloc(64 * KiB, 1);

	set_case("64 KiB clusters, 1 GiB, byte 0 data, byte 600 MiB zeros");
	if (check_err(layout_init(&lo, GiB, 16, &r, 1), LAYOUT_OK) &&
	    check_err(layout_set_zeros(&lo, &z, 1), LAYOUT_OK)) {
		check_u64(lo.l2_tables, 2);
		check_u64(lo.zero_clusters, 1);
		check_u64(lo.total_clusters, 7);
		meta_writer_init(&mw, &lo);
		check(meta_writer_next(&mw, c));	/* header */
		check(meta_writer_next(&mw, c));	/* L1 */
		check_u64(be(c, 8), UINT64_C(0x8000000000040000));
		check_u64(be(c + 8, 8), UINT64_C(0x8000000000050000));
		check(all_bytes(c + 16, 64 * KiB - 16, 0));
		meta_writer_seek(&mw, 5);		/* the second L2 table */
		check(meta_writer_next(&mw, c));
		check_u64(be(c + 1408 * 8, 8), 1);
		check(all_bytes(c, 1408 * 8, 0));
		check(all_bytes(c + 1409 * 8, 64 * KiB - 1409 * 8, 0));
		check(!meta_writer_next(&mw, c));
		make_zero_model(&m, 16, GiB, &r, 1, &z, 1);
		check_layout(&lo, &m);
		model_free(&m);
	}
	set_case("64 KiB clusters, 1 GiB, byte 600 MiB zeros, no data");
	if (check_err(layout_init(&lo, GiB, 16, NULL, 0), LAYOUT_OK) &&
	    check_err(layout_set_zeros(&lo, &z, 1), LAYOUT_OK)) {
		check_u64(lo.l2_tables, 1);
		check_u64(lo.data_clusters, 0);
		check_u64(lo.total_clusters, 5);
		check_u64(lo.l2_offset, 4 * 65536);
		make_zero_model(&m, 16, GiB, NULL, 0, &z, 1);
		check_layout(&lo, &m);
		model_free(&m);
	}
	free(c);
}

/* Zero ranges must be sorted, apart, non-empty and inside; else lo stays as it was. */
static void
t_zero_errors(void)
{
	static const struct {
		const char *what;
		struct range z[2];
		size_t n;
		enum layout_error want;
		uint64_t zero;		/* zero clusters made */
	} cases[] = {
		{ "unsorted", { { 100, 10 }, { 0, 10 } }, 2, LAYOUT_RANGE_ORDER, 0 },
		{ "overlapping", { { 0, 10 }, { 9, 10 } }, 2, LAYOUT_RANGE_ORDER, 0 },
		{ "empty", { { 5, 0 } }, 1, LAYOUT_RANGE_ORDER, 0 },
		{ "past the end", { { MiB - 1, 2 } }, 1, LAYOUT_RANGE_BEYOND, 0 },
		{ "touching is fine", { { 0, 10 }, { 10, 10 } }, 2, LAYOUT_OK, 1 },
		/* 16 clusters, of which cluster 1 is data */
		{ "over the data is fine", { { 0, MiB } }, 1, LAYOUT_OK, 15 },
	};
	static const struct range r = { 70000, 1 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct layout lo, was;

		set_case("zeros %s", cases[i].what);
		if (!check_err(layout_init(&lo, MiB, 16, &r, 1), LAYOUT_OK))
			continue;
		was = lo;
		check_err(layout_set_zeros(&lo, cases[i].z, cases[i].n), cases[i].want);
		check_u64(model_range_errors(cases[i].z, cases[i].n, MiB),
		    error_bit(cases[i].want));
		if (cases[i].want == LAYOUT_OK) {
			check_u64(lo.zero_clusters, cases[i].zero);
			continue;
		}
		check_model(model_check_same_sizes(&lo, &was, "a refused layout_set_zeros",
		    &failure));
		check_model(model_check_same_offsets(&lo, &was, "a refused layout_set_zeros",
		    &failure));
	}
}

/*
 * Version 2 has no zero flag.  Zero clusters and version 2 are refused in
 * either order, lo kept as it was by layout_set_zeros; zeros that touch
 * only data clusters make no zero cluster and are fine; no zeros again
 * makes version 2 fine again.
 */
static void
t_zero_version_2(void)
{
	static const struct range r = { 0, 100000 };	/* clusters 0 and 1 */
	static const struct range z = { 200000, 1 }, over = { 65536, 10 };
	struct layout lo, was;

	set_case("zeros, then version 2");
	if (check_err(layout_init(&lo, MiB, 16, &r, 1), LAYOUT_OK) &&
	    check_err(layout_set_zeros(&lo, &z, 1), LAYOUT_OK)) {
		check_err(layout_set_header(&lo, 2, NULL, NULL), LAYOUT_ZEROS_NEED_V3);
		check_err(layout_set_header(&lo, 3, NULL, NULL), LAYOUT_OK);
		check_err(layout_set_zeros(&lo, NULL, 0), LAYOUT_OK);
		check_u64(lo.zero_clusters, 0);
		check_u64(lo.l2_tables, 1);
		check_err(layout_set_header(&lo, 2, NULL, NULL), LAYOUT_OK);
	}
	set_case("version 2, then zeros");
	if (check_err(layout_init(&lo, MiB, 16, &r, 1), LAYOUT_OK) &&
	    check_err(layout_set_header(&lo, 2, "base", NULL), LAYOUT_OK)) {
		was = lo;
		check_err(layout_set_zeros(&lo, &z, 1), LAYOUT_ZEROS_NEED_V3);
		check_u64(lo.zero_clusters, 0);
		check_model(model_check_same_sizes(&lo, &was, "a refused layout_set_zeros",
		    &failure));
		check_err(layout_set_zeros(&lo, &over, 1), LAYOUT_OK);
		check_u64(lo.zero_clusters, 0);
		check_u64(lo.version, 2);
	}
	set_case("model_zero_errors");
	{
		struct model m;

		make_zero_model(&m, 16, MiB, &r, 1, &z, 1);
		check_u64(model_zero_errors(&m, 2), 1u << LAYOUT_ZEROS_NEED_V3);
		check_u64(model_zero_errors(&m, 3), 0);
		model_free(&m);
		make_zero_model(&m, 16, MiB, &r, 1, &over, 1);
		check_u64(model_zero_errors(&m, 2), 0);
		model_free(&m);
	}
}

/* Layout: starting anywhere */

/*
 * The 6-cluster image of t_known_bytes from each host cluster: the one
 * filled next is the first metadata cluster at or after it, data stepped
 * over, none past the end; its one data cluster, guest cluster 76, is a
 * run of its own, at host cluster 5.
 */
static void
t_seek_by_hand(void)
{
	static const struct range r = { 5000000, 5 };
	static const uint64_t next[8] = { 0, 1, 2, 3, 4, 6, 6, 6 };
	unsigned char *c = xcalloc(64 * KiB, 1);

	{
		struct layout lo;
		struct meta_writer mw;
		struct run_walk walk;

		set_case("64 KiB clusters, 10 MiB, 5 bytes at 5000000");
		if (!check_err(layout_init(&lo, 10 * MiB, 16, &r, 1), LAYOUT_OK))
			goto out;
		for (uint64_t h = 0; h < 8; h++) {
			note("seek to host cluster %" PRIu64, h);
			meta_writer_init(&mw, &lo);
			meta_writer_seek(&mw, h);
			check_u64(mw.cluster, next[h]);
			note("seek to host cluster %" PRIu64, h);
			check_u64(meta_writer_next(&mw, c), next[h] < 6);
		}
		meta_writer_init(&mw, &lo);
		meta_writer_seek(&mw, lo.l2_offset >> 16);
		check(meta_writer_next(&mw, c));
		check_u64(be(c + 76 * 8, 8), UINT64_C(0x8000000000000000) | lo.data_offset);
		if (check_u64(run_walk_seek(&walk, &lo, 0), 1)) {
			check_u64(walk.first, 76);
			check_u64(walk.end, 77);
			check_u64(run_next(&walk), 0);
		}
		check_u64(run_walk_seek(&walk, &lo, 1), 0);
		check_u64(run_next(&walk), 0);
	}
out:
	free(c);
}

/*
 * 512 B clusters, 128 GiB, all data: 4M L2 tables in 65536 L1 clusters
 * and 2^28 data clusters, one run.  Seeking to the last L2 table, or to
 * the last data cluster, walks one run, not the tables or clusters
 * before.  Too large for the model's lists: the last L2 table by hand,
 * its last entry the last data cluster.
 */
static void
t_seek_dense(void)
{
	struct range r = { 0, 128 * GiB };
	struct layout lo;
	struct meta_writer mw;
	struct run_walk walk;
	unsigned char c[512];
	uint64_t last_data;

	set_case("512 B clusters, 128 GiB all data");
	if (!check_err(layout_init(&lo, r.length, 9, &r, 1), LAYOUT_REFCOUNT_TOO_LARGE))
		return;
	/* A refcount table of 8 MiB cannot count that many: the first GiB will do. */
	r.length = GiB;
	if (!check_err(layout_init(&lo, 128 * GiB, 9, &r, 1), LAYOUT_OK))
		return;
	check_u64(lo.l2_tables, 32768);
	check_u64(lo.data_clusters, 2 * MiB);
	last_data = lo.data_offset + (lo.data_clusters - 1) * 512;
	meta_writer_init(&mw, &lo);
	meta_writer_seek(&mw, (lo.l2_offset >> 9) + lo.l2_tables - 1);
	check_u64(mw.cluster, (lo.data_offset >> 9) - 1);
	check(meta_writer_next(&mw, c));
	check_u64(be(c + 63 * 8, 8), UINT64_C(0x8000000000000000) | last_data);
	check_u64(be(c, 8), UINT64_C(0x8000000000000000) | (last_data - 63 * 512));
	check(!meta_writer_next(&mw, c));
	/* The last L1 cluster: L1 entry 32767 at 8 entries... 64 a cluster. */
	meta_writer_init(&mw, &lo);
	meta_writer_seek(&mw, 1 + 32768 / 64 - 1);
	check(meta_writer_next(&mw, c));
	check_u64(be(c + 63 * 8, 8), UINT64_C(0x8000000000000000) |
	    (lo.l2_offset + 32767 * 512));
	if (check_u64(run_walk_seek(&walk, &lo, lo.data_clusters - 1), 1)) {
		check_u64(walk.first, lo.data_clusters - 1);
		check_u64(walk.end, lo.data_clusters);
	}
}

/* Layout: where the file ends */

/*
 * The file ends after the last refcount when a refcount block is its last
 * cluster, the stream form with nothing mapped.  Anything else ends it on
 * a cluster edge: data or an L2 table.
 */
static void
t_image_size(void)
{
	static const struct range zero = { 600 * MiB, 1 };
	static const struct {
		const char *what;
		unsigned bits;
		uint64_t size;
		int zeros;
		uint64_t total, file_size;
	} cases[] = {
		/* header | L1 | table | block counting 4: qemu-img convert makes 196624 */
		{ "64 KiB, 1 GiB, no data", 16, GiB, 0, 4, 3 * 65536 + 8 },
		{ "64 KiB, empty disk", 16, 0, 0, 3, 2 * 65536 + 6 },
		/* the one L2 table of a zero cluster ends the file */
		{ "64 KiB, 1 GiB, a zero cluster", 16, GiB, 1, 5, 5 * 65536 },
		/*
		 * 512 B: 128 GiB is 4M L1 entries in 65536 clusters; 65537 + table
		 * + blocks, 256 refcounts a block: 258 blocks in 5 table clusters
		 * count 65800 (257 blocks count 65792 < 65799).  The last block
		 * counts clusters 65792-65799: 16 bytes.
		 */
		{ "512 B, 128 GiB, no data", 9, 128 * GiB, 0, 65800,
		    65799 * 512 + 16 },
		/* 253 L1 clusters: 1 + 253 + 1 + 1 = 256, the block full */
		{ "512 B, 253 L1 clusters, no data: the block full", 9,
		    253 * 64 * 32 * KiB, 0, 256, 256 * 512 },
		/* 254 L1 clusters: 255 + 1 + 2 blocks = 258; the second counts 2 */
		{ "512 B, 254 L1 clusters, no data: 2 refcounts in the last block", 9,
		    253 * 64 * 32 * KiB + 1, 0, 258, 257 * 512 + 4 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct layout lo;
		struct model m;

		set_case("%s", cases[i].what);
		if (!check_err(layout_init(&lo, cases[i].size, cases[i].bits, NULL, 0),
		    LAYOUT_OK) || (cases[i].zeros &&
		    !check_err(layout_set_zeros(&lo, &zero, 1), LAYOUT_OK)))
			continue;
		check_u64(lo.total_clusters, cases[i].total);
		check_u64(layout_image_size(&lo), cases[i].file_size);
		if (lo.total_clusters > 1000)
			continue;
		make_zero_model(&m, cases[i].bits, cases[i].size, NULL, 0, &zero,
		    cases[i].zeros);
		check_layout(&lo, &m);
		model_free(&m);
	}
}

/* Ranges: parse_number */

static void
t_parse_number_good(void)
{
	static const struct {
		const char *s;
		uint64_t value;
		size_t used;
	} cases[] = {
		{ "0", 0, 1 },
		{ "123", 123, 3 },
		{ "0x1F", 31, 4 },
		{ "0X10", 16, 4 },
		{ "0xfFfF", 65535, 6 },
		{ "18446744073709551615", UINT64_MAX, 20 },
		{ "0xffffffffffffffff", UINT64_MAX, 18 },
		{ "12k", 12, 2 },
		{ "7 8", 7, 1 },
		{ "0x1fg", 31, 4 },
		{ "5#", 5, 1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *end = NULL;
		uint64_t value = 0;

		set_case("parse_number(\"%s\")", cases[i].s);
		if (!check_u64(parse_number(cases[i].s, &end, &value), 0))
			continue;
		check_u64(value, cases[i].value);
		check_u64(end - cases[i].s, cases[i].used);
	}
}

static void
t_parse_number_bad(void)
{
	static const char *const cases[] = {
		"", " 1", "\t1", "-1", "+1", "0x", "0X", "0x ", "x1", "k",
		"18446744073709551616", "99999999999999999999999",
		"0x10000000000000000",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *end = NULL;
		uint64_t value = 0;

		set_case("parse_number(\"%s\")", escaped(cases[i], strlen(cases[i])));
		check_u64(parse_number(cases[i], &end, &value), (uint64_t)-1);
	}
}

/*
 * "Decimal or 0x-hex": a leading zero does not make a number octal, as
 * it does for strtoull with base 0.  A range file with zero-padded
 * offsets would otherwise be misread without a word.
 */
static void
t_parse_number_leading_zero(void)
{
	static const struct {
		const char *s;
		uint64_t value;
	} cases[] = {
		{ "010", 10 }, { "08", 8 }, { "0755", 755 }, { "000000512", 512 },
	};
	struct range_list list = { NULL, 0, 0 };
	struct ranges_error error;
	FILE *f;
	char text[] = "0100 010\n";

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *end = NULL;
		uint64_t value = 0;
		int ret;

		set_case("parse_number(\"%s\")", cases[i].s);
		ret = parse_number(cases[i].s, &end, &value);
		/* Refusing the number would keep to the contract too. */
		if (ret == 0) {
			check_u64(value, cases[i].value);
			check_u64(end - cases[i].s, strlen(cases[i].s));
		}
	}
	set_case("ranges_read of \"0100 010\\n\"");
	if ((f = fmemopen(text, strlen(text), "r")) == NULL) {
		printf("Bail out! fmemopen failed\n");
		exit(1);
	}
	if (check_u64(ranges_read(f, MiB, 0, &list, &error), 0) && check_u64(list.n, 1)) {
		check_u64(list.v[0].offset, 100);
		check_u64(list.v[0].length, 10);
	}
	fclose(f);
	ranges_free(&list);
}

/* Ranges: ranges_read */

/* Feed len bytes of text to ranges_read, for an overlay or not. */
static int
read_text_for(const char *text, size_t len, uint64_t size, int overlay,
    struct range_list *list, struct ranges_error *error)
{
	char *copy = xcalloc(len + 1, 1);
	FILE *f;
	int ret;

	memcpy(copy, text, len);
	f = len > 0 ? fmemopen(copy, len, "r") : fopen("/dev/null", "r");
	if (f == NULL) {
		printf("Bail out! cannot open the text as a stream\n");
		exit(1);
	}
	ret = ranges_read(f, size, overlay, list, error);
	fclose(f);
	free(copy);
	return ret;
}

/* Feed len bytes of text to ranges_read, for an image that is no overlay. */
static int
read_text(const char *text, size_t len, uint64_t size, struct range_list *list,
    struct ranges_error *error)
{
	return read_text_for(text, len, size, 0, list, error);
}

static void
t_read_good(void)
{
	static const char text[] =
	    "# ranges of a disk of 11024 bytes\n"
	    "\n"
	    "0 512\n"
	    "  \t\n"
	    "0x1000\t0x200   # hex, a tab and a comment\n"
	    "8192 100\r\n"
	    "\r\n"
	    "   # an indented comment\n"
	    "\t10000  24\t\r\n"
	    "5 5#no space before the comment\n"
	    "10024 1000";		/* ends at the size, no newline */
	static const struct range want[] = {
		{ 1, 2 },	/* there before */
		{ 0, 512 }, { 4096, 512 }, { 8192, 100 }, { 10000, 24 },
		{ 5, 5 }, { 10024, 1000 },
	};
	struct range_list list = { NULL, 0, 0 };
	struct ranges_error error;

	ranges_add(&list, 1, 2);
	check_u64(read_text(text, sizeof(text) - 1, 11024, &list, &error), 0);
	if (check_u64(list.n, sizeof(want) / sizeof(want[0]))) {
		for (size_t i = 0; i < list.n; i++) {
			note("range %zu", i);
			check_u64(list.v[i].offset, want[i].offset);
			note("range %zu", i);
			check_u64(list.v[i].length, want[i].length);
		}
	}
	ranges_free(&list);
}

static void
t_read_empty(void)
{
	static const char *const texts[] = {
		"", "\n", "# nothing\n", "\r\n\r\n", "  \t # x 1\n\n", "#",
	};
	struct range_list list = { NULL, 0, 0 };
	struct ranges_error error;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		set_case("text \"%s\"", escaped(texts[i], strlen(texts[i])));
		check_u64(read_text(texts[i], strlen(texts[i]), 100, &list, &error), 0);
		check_u64(list.n, 0);
	}
	ranges_free(&list);
}

static void
t_read_bad(void)
{
	static const struct {
		const char *text;
		size_t len;		/* 0: strlen(text) */
		uint64_t size;
		unsigned long line;
		const char *why;
	} cases[] = {
		{ "x 5\n", 0, 100, 1, "bad offset" },
		{ "-1 5\n", 0, 100, 1, "bad offset" },
		{ "0x 5\n", 0, 100, 1, "bad offset" },
		{ "18446744073709551616 1\n", 0, 100, 1, "bad offset" },
		{ "5\n", 0, 100, 1, "expected OFFSET LENGTH" },
		{ "5", 0, 100, 1, "expected OFFSET LENGTH" },
		{ "5,6\n", 0, 100, 1, "bad offset" },
		{ "5 -1\n", 0, 100, 1, "bad length" },
		{ "5 x\n", 0, 100, 1, "bad length" },
		{ "5 18446744073709551616\n", 0, 100, 1, "bad length" },
		{ "5 6 7\n", 0, 100, 1, "junk after length" },
		{ "5 6k\n", 0, 100, 1, "junk after length" },
		{ "5 6 ;\n", 0, 100, 1, "junk after length" },
		{ "5 0\n", 0, 100, 1, "zero length" },
		{ "100 0x0\n", 0, 100, 1, "zero length" },
		{ "100 1\n", 0, 100, 1, "offset beyond --size" },
		{ "0 1\n", 0, 0, 1, "offset beyond --size" },
		{ "18446744073709551615 1\n", 0, 100, 1, "offset beyond --size" },
		{ "99 2\n", 0, 100, 1, "range ends beyond --size" },
		{ "1 18446744073709551615\n", 0, 100, 1, "range ends beyond --size" },
		{ "1\0 2\n", 5, 100, 1, "NUL byte in line" },
		{ "0 1\n\0\n", 6, 100, 2, "NUL byte in line" },
		{ "0 1\n1 2\0", 8, 100, 2, "NUL byte in line" },
		{ "0 1\r\n1 x\r\n", 0, 100, 2, "bad length" },
		{ "0 1\n\n# comment\n2 1\n   \n4 1 # four\nbad\n8 1\n", 0, 100,
		    7, "bad offset" },
		{ "\n\n  \n\nbad\n", 0, 100, 5, "bad offset" },
		{ "0 1\n1 1\n2 1\n3 1\n4 1\n5 1\n6 1\n7 100\n", 0, 100,
		    8, "range ends beyond --size" },
		/* Two pairs on a line are not an nbdinfo line. */
		{ "65536 65536 262144 65536\n", 0, MiB, 1, "junk after length" },
		{ "0 65536 3\n", 0, MiB, 1, "junk after length" },
		{ "0 65536 0 data\n65536 65536 3\n", 0, MiB, 2,
		    "expected nbdinfo description" },
		{ "0 65536 0 data\n65536 65536 x hole\n", 0, MiB, 2, "bad nbdinfo type" },
		{ "0 1\n0 65536 0 data\n", 0, MiB, 2, "nbdinfo line in a plain range file" },
		{ "# plain\n\n0 1 # one\n2 1 3 hole\n", 0, MiB, 4,
		    "nbdinfo line in a plain range file" },
		{ "0 65536 0 data\n65536 65536\n", 0, MiB, 2, "plain line in an nbdinfo map" },
		{ "0 65536 0 data\n65536 65536 # no type\n", 0, MiB, 2,
		    "plain line in an nbdinfo map" },
		/* A lone CR ends a line, CRLF one line, LF CR two. */
		{ "0 1\r1 1\rx\r", 0, 100, 3, "bad offset" },
		{ "0 1\r\n\r\n\rx", 0, 100, 4, "bad offset" },
		{ "\r\r\n\nx 1", 0, 100, 4, "bad offset" },
		{ "0 1\n\r1 1\r\n2 0\n", 0, 100, 4, "zero length" },
		{ "[\r{\"offset\": 0, \"length\": 0}]", 0, 100, 2, "zero length" },
		{ "\r\n[\r\n{\"offset\": 0,\r\"length\": 0}\r]", 0, 100, 4, "zero length" },
		{ "[{\"offset\": 0, \"length\": 1},\r\n\n{\"offset\": 0, \"length\": x}]",
		    0, 100, 3, "expected a non-negative integer" },
	};
	struct range_list list = { NULL, 0, 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ranges_error error = { 0, NULL };
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);

		set_case("text \"%s\", size %" PRIu64,
		    escaped(cases[i].text, len), cases[i].size);
		if (!check_u64(read_text(cases[i].text, len, cases[i].size, &list,
		    &error), (uint64_t)-1))
			continue;
		check_u64(error.line, cases[i].line);
		check_str(error.why, cases[i].why);
	}
	ranges_free(&list);
}

/*
 * Line ends LF, CRLF and a lone CR, and a format told only by what cannot
 * be mistaken: a plain line is two numbers, an nbdinfo line three and a
 * description.  Each text, then the ranges it gives at 1 MiB.
 */
static void
t_read_line_ends(void)
{
	static const struct {
		const char *text;
		size_t n;
		struct range want[4];
	} cases[] = {
		{ "65536 65536\r262144 65536\r", 2, { { 65536, 65536 }, { 262144, 65536 } } },
		{ "65536 65536\r\n262144 65536\r\n", 2,
		    { { 65536, 65536 }, { 262144, 65536 } } },
		{ "0 1\r\r2 1\r\n3 1\n\r4 1", 4, { { 0, 1 }, { 2, 1 }, { 3, 1 }, { 4, 1 } } },
		{ "# a comment\r0 1 # and another\r\r", 1, { { 0, 1 } } },
		{ "0 65536 0 data\r65536 65536 3 hole,zero\r131072 917504 0 data", 2,
		    { { 0, 65536 }, { 131072, 917504 } } },
	};
	struct range_list list = { NULL, 0, 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ranges_error error = { 0, NULL };

		set_case("text \"%s\"", escaped(cases[i].text, strlen(cases[i].text)));
		note_text[0] = '\0';
		list.n = 0;
		if (!check_u64(read_text(cases[i].text, strlen(cases[i].text), MiB,
		    &list, &error), 0)) {
			print_str("why", error.why);
			continue;
		}
		if (!check_u64(list.n, cases[i].n))
			continue;
		for (size_t j = 0; j < list.n; j++) {
			note("range %zu", j);
			check_u64(list.v[j].offset, cases[i].want[j].offset);
			note("range %zu", j);
			check_u64(list.v[j].length, cases[i].want[j].length);
		}
	}
	ranges_free(&list);
}

/*
 * QEMU maps a disk rounded up to whole 512-byte sectors: its maps (from
 * qemu-img map and nbdinfo) may run to that and are cut at the size.  A
 * plain file and an offset/length layout must end within the size.  A
 * map covers the disk from 0, so an entry near the end comes after one
 * that reaches it.
 */
static void
t_read_sectors(void)
{
	static const struct {
		const char *what, *text;
		uint64_t size;
		size_t n;
		struct range want[2];
	} cases[] = {
		{ "qemu-img map of 1000000 bytes",
		    "[{ \"start\": 0, \"length\": 69632, \"depth\": 0, \"present\": true,"
		    " \"zero\": true, \"data\": false, \"offset\": 0},\n"
		    "{ \"start\": 69632, \"length\": 4096, \"depth\": 0, \"present\": true,"
		    " \"zero\": false, \"data\": true, \"offset\": 69632},\n"
		    "{ \"start\": 73728, \"length\": 925696, \"depth\": 0, \"present\": true,"
		    " \"zero\": true, \"data\": false, \"offset\": 73728},\n"
		    "{ \"start\": 999424, \"length\": 576, \"depth\": 0, \"present\": true,"
		    " \"zero\": false, \"data\": true, \"offset\": 999424},\n"
		    "{ \"start\": 1000000, \"length\": 448, \"depth\": 0, \"present\": true,"
		    " \"zero\": true, \"data\": false, \"offset\": 1000000}]\n",
		    1000000, 2, { { 69632, 4096 }, { 999424, 576 } } },
		{ "nbdinfo --map of qemu-nbd's export of 1000000 bytes",
		    "         0       69632    3  hole,zero\n"
		    "     69632        4096    0  data\n"
		    "     73728      925696    3  hole,zero\n"
		    "    999424         576    0  data\n"
		    "   1000000         448    3  hole,zero\n",
		    1000000, 2, { { 69632, 4096 }, { 999424, 576 } } },
		{ "data past the size, cut",
		    "[{\"start\": 0, \"length\": 1000448, \"data\": true}]",
		    1000000, 1, { { 0, 1000000 } } },
		{ "data past the size, cut, nbdinfo",
		    "0 999424 3 hole,zero\n999424 1024 0 data\n", 1000000, 1,
		    { { 999424, 576 } } },
		{ "data wholly past the size, dropped",
		    "0 999999 3 hole,zero\n999999 1 0 data\n1000000 448 0 data\n",
		    999999, 0, { { 0, 0 } } },
		{ "1 byte: one sector",
		    "[{\"start\": 0, \"length\": 512, \"data\": true}]", 1, 1, { { 0, 1 } } },
		{ "the largest size, its rounding past 64 bits",
		    "[{\"start\": 0, \"length\": 18446744073709551104, \"data\": false},\n"
		    "{\"start\": 18446744073709551104, \"length\": 511, \"data\": true}]",
		    UINT64_MAX, 1, { { UINT64_MAX - 511, 511 } } },
	};
	static const struct {
		const char *text;
		uint64_t size;
		unsigned long line;
		const char *why;
	} bad[] = {
		{ "[{\"start\": 0, \"length\": 999424, \"data\": false},\n"
		    "{\"start\": 999424, \"length\": 1025, \"data\": true}]", 1000000, 2,
		    "range ends beyond --size" },
		{ "[{\"start\": 0, \"length\": 1000448, \"data\": false},\n"
		    "{\"start\": 1000448, \"length\": 512, \"data\": false}]", 1000000, 2,
		    "offset beyond --size" },
		{ "0 1000448 3 hole,zero\n1000448 512 3 hole,zero\n", 1000000, 2,
		    "offset beyond --size" },
		{ "0 999424 3 hole,zero\n999424 1025 0 data\n", 1000000, 2,
		    "range ends beyond --size" },
		{ "0 1048576 0 data\n1048576 512 3 hole,zero\n", MiB, 2,
		    "offset beyond --size" },
		{ "[{\"start\": 0, \"length\": 512, \"data\": false}]", 0, 1,
		    "offset beyond --size" },
		{ "[{\"start\": 0, \"length\": 18446744073709551104, \"data\": false},\n"
		    "{\"start\": 18446744073709551104, \"length\": 512, \"data\": true}]",
		    UINT64_MAX, 2, "range ends beyond --size" },
		/* What a person writes, or sqcow2 --map, is exact. */
		{ "999424 1024\n", 1000000, 1, "range ends beyond --size" },
		{ "1000000 448\n", 1000000, 1, "offset beyond --size" },
		{ "[{\"offset\": 999424, \"length\": 1024}]", 1000000, 1,
		    "range ends beyond --size" },
	};
	struct range_list list = { NULL, 0, 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ranges_error error = { 0, NULL };

		set_case("%s", cases[i].what);
		note_text[0] = '\0';
		list.n = 0;
		if (!check_u64(read_text(cases[i].text, strlen(cases[i].text),
		    cases[i].size, &list, &error), 0)) {
			print_str("why", error.why);
			continue;
		}
		if (!check_u64(list.n, cases[i].n))
			continue;
		for (size_t j = 0; j < list.n; j++) {
			note("range %zu", j);
			check_u64(list.v[j].offset, cases[i].want[j].offset);
			note("range %zu", j);
			check_u64(list.v[j].length, cases[i].want[j].length);
		}
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ranges_error error = { 0, NULL };

		set_case("text \"%s\", size %" PRIu64,
		    escaped(bad[i].text, strlen(bad[i].text)), bad[i].size);
		if (!check_u64(read_text(bad[i].text, strlen(bad[i].text), bad[i].size,
		    &list, &error), (uint64_t)-1))
			continue;
		check_u64(error.line, bad[i].line);
		check_str(error.why, bad[i].why);
	}
	ranges_free(&list);
}

/*
 * The three maps nbdinfo --map reads from qemu-nbd, as it printed them
 * (libnbd 1.14): data is "data" in an allocation map, "dirty" in a dirty
 * bitmap, and in an allocation depth map "local", and for an image that
 * is no overlay "backing depth N" too.  An allocation map says nothing of
 * what changed, so an overlay refuses it at its first line.
 */
static void
t_read_nbdinfo_maps(void)
{
	static const char dirty[] =
	    "         0      524288    0  clean\n"
	    "    524288       65536    1  dirty\n"
	    "    589824      458752    0  clean\n"
	    "   1048576       65536    1  dirty\n"
	    "   1114112     3080192    0  clean\n";
	static const char depth[] =
	    "         0       65536    3  backing depth 3\n"
	    "     65536      458752    0  absent\n"
	    "    524288       65536    1  local\n"
	    "    589824      458752    0  absent\n"
	    "   1048576      131072    3  backing depth 3\n"
	    "   1179648      917504    0  absent\n"
	    "   2097152       65536    2  backing depth 2\n"
	    "   2162688      983040    0  absent\n"
	    "   3145728       65536    2  backing depth 2\n"
	    "   3211264      458752    0  absent\n"
	    "   3670016       65536    1  local\n"
	    "   3735552      458752    0  absent\n";
	static const char allocation[] =
	    "0 4096 0 data\n4096 4096 1 hole\n8192 4096 2 zero\n"
	    "12288 4096 3 hole,zero\n16384 4096 0\tdata \t\n20480 4173824 1 hole\n";
	static const struct {
		const char *what, *text;
		int overlay;
		size_t n;
		struct range want[6];
		const char *why;	/* NULL, or why it is refused at line 1 */
	} cases[] = {
		{ "dirty bitmap", dirty, 0, 2,
		    { { 524288, 65536 }, { 1048576, 65536 } }, NULL },
		{ "dirty bitmap, overlay", dirty, 1, 2,
		    { { 524288, 65536 }, { 1048576, 65536 } }, NULL },
		{ "allocation depth", depth, 0, 6, { { 0, 65536 }, { 524288, 65536 },
		    { 1048576, 131072 }, { 2097152, 65536 }, { 3145728, 65536 },
		    { 3670016, 65536 } }, NULL },
		{ "allocation depth, overlay", depth, 1, 2,
		    { { 524288, 65536 }, { 3670016, 65536 } }, NULL },
		{ "allocation", allocation, 0, 2, { { 0, 4096 }, { 16384, 4096 } }, NULL },
		{ "allocation, overlay", allocation, 1, 0, { { 0, 0 } },
		    ALLOCATION_OVER_BACKING },
	};
	struct range_list list = { NULL, 0, 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ranges_error error = { 0, NULL };
		int ret;

		set_case("%s", cases[i].what);
		note_text[0] = '\0';
		list.n = 0;
		ret = read_text_for(cases[i].text, strlen(cases[i].text), 4 * MiB,
		    cases[i].overlay, &list, &error);
		if (cases[i].why != NULL) {
			if (check_u64(ret, (uint64_t)-1)) {
				check_u64(error.line, 1);
				check_str(error.why, cases[i].why);
			}
			continue;
		}
		if (!check_u64(ret, 0)) {
			print_str("why", error.why);
			continue;
		}
		if (!check_u64(list.n, cases[i].n))
			continue;
		for (size_t j = 0; j < list.n; j++) {
			note("range %zu", j);
			check_u64(list.v[j].offset, cases[i].want[j].offset);
			note("range %zu", j);
			check_u64(list.v[j].length, cases[i].want[j].length);
		}
	}
	ranges_free(&list);
}

/*
 * A description nbdinfo does not print, or not for that type, or not in
 * that map; for an overlay, an allocation map that comes first is refused
 * as one before its other lines are read.
 */
static void
t_read_nbdinfo_bad(void)
{
	static const struct {
		const char *text;
		unsigned long line;
		const char *why;
	} cases[] = {
		{ "0 65536 1 dirty\n65536 65536 2 dirtier\n", 2, "unknown nbdinfo description" },
		{ "0 65536 0 Data\n", 1, "unknown nbdinfo description" },
		{ "0 65536 0 data # data\n", 1, "unknown nbdinfo description" },
		{ "0 65536 3 hole, zero\n", 1, "unknown nbdinfo description" },
		{ "0 65536 3 unallocated\n", 1, "unknown nbdinfo description" },
		{ "0 65536 1 backing depth 1\n", 1, "unknown nbdinfo description" },
		{ "0 65536 0 backing depth 0\n", 1, "unknown nbdinfo description" },
		{ "0 65536 2 backing depth 02\n", 1, "unknown nbdinfo description" },
		{ "0 65536 2 backing depth 0x2\n", 1, "unknown nbdinfo description" },
		{ "0 65536 2 backing depth 2x\n", 1, "unknown nbdinfo description" },
		{ "0 65536 2 backing  depth 2\n", 1, "unknown nbdinfo description" },
		{ "0 65536 2 backing depth\n", 1, "unknown nbdinfo description" },
		{ "0 65536 2 backing depth \n", 1, "unknown nbdinfo description" },
		{ "0 65536 0 dirty\n", 1, "type does not match description" },
		{ "0 65536 3 data\n", 1, "type does not match description" },
		{ "0 65536 1 absent\n", 1, "type does not match description" },
		{ "0 65536 2 backing depth 3\n", 1, "type does not match description" },
		{ "0 65536 0 clean\n65536 65536 1 dirty\n131072 65536 0 data\n", 3,
		    "description from another map" },
		{ "0 65536 1 local\n65536 65536 3 hole,zero\n", 2,
		    "description from another map" },
	};
	/* An allocation map first: for an overlay, refused as one at once. */
	static const char allocation_first[] = "0 65536 0 data\n65536 65536 1 local\n";
	struct range_list list = { NULL, 0, 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int overlay = 0; overlay < 2; overlay++) {
			struct ranges_error error = { 0, NULL };

			set_case("text \"%s\"%s", escaped(cases[i].text,
			    strlen(cases[i].text)), overlay ? ", overlay" : "");
			if (!check_u64(read_text_for(cases[i].text, strlen(cases[i].text),
			    MiB, overlay, &list, &error), (uint64_t)-1))
				continue;
			check_u64(error.line, cases[i].line);
			check_str(error.why, cases[i].why);
		}
	}
	for (int overlay = 0; overlay < 2; overlay++) {
		struct ranges_error error = { 0, NULL };

		set_case("text \"%s\"%s", escaped(allocation_first,
		    strlen(allocation_first)), overlay ? ", overlay" : "");
		if (!check_u64(read_text_for(allocation_first, strlen(allocation_first),
		    MiB, overlay, &list, &error), (uint64_t)-1))
			continue;
		check_u64(error.line, overlay ? 1 : 2);
		check_str(error.why, overlay ? ALLOCATION_OVER_BACKING :
		    "description from another map");
	}
	ranges_free(&list);
}

/*
 * nbdinfo --map --json, as nbdinfo 1.14 printed it: the same extents as
 * its text, read by type and description, never as a list of data.
 */
static void
t_read_nbdinfo_json(void)
{
	static const char holes[] =
	    "[\n"
	    "{ \"offset\": 0, \"length\": 39997440, \"type\": 3, \"description\": \"hole,zero\"},\n"
	    "{ \"offset\": 39997440, \"length\": 8192, \"type\": 0, \"description\": \"data\"},\n"
	    "{ \"offset\": 40005632, \"length\": 27103232, \"type\": 3, \"description\": \"hole,zero\"}\n"
	    "]\n";
	static const char dirty[] =
	    "[\n"
	    "{ \"offset\": 0, \"length\": 524288, \"type\": 0, \"description\": \"clean\"},\n"
	    "{ \"offset\": 524288, \"length\": 65536, \"type\": 1, \"description\": \"dirty\"},\n"
	    "{ \"offset\": 589824, \"length\": 3604480, \"type\": 0, \"description\": \"clean\"}\n"
	    "]\n";
	static const char depth[] =
	    "[\n"
	    "{ \"offset\": 0, \"length\": 65536, \"type\": 3, \"description\": \"backing depth 3\"},\n"
	    "{ \"offset\": 65536, \"length\": 458752, \"type\": 0, \"description\": \"absent\"},\n"
	    "{ \"offset\": 524288, \"length\": 65536, \"type\": 1, \"description\": \"local\"},\n"
	    "{ \"offset\": 589824, \"length\": 3604480, \"type\": 0, \"description\": \"absent\"}\n"
	    "]\n";
	static const char odd[] =
	    "[\n"
	    "{ \"offset\": 0, \"length\": 999424, \"type\": 3, \"description\": \"hole,zero\"},\n"
	    "{ \"offset\": 999424, \"length\": 576, \"type\": 0, \"description\": \"data\"},\n"
	    "{ \"offset\": 1000000, \"length\": 448, \"type\": 3, \"description\": \"hole,zero\"}\n"
	    "]\n";
	static const struct {
		const char *what, *text;
		uint64_t size;
		int overlay;
		size_t n;
		struct range want[2];
	} cases[] = {
		{ "64 MiB, 8 KiB of data", holes, 64 * MiB, 0, 1, { { 39997440, 8192 } } },
		{ "dirty bitmap", dirty, 4 * MiB, 0, 1, { { 524288, 65536 } } },
		{ "dirty bitmap, overlay", dirty, 4 * MiB, 1, 1, { { 524288, 65536 } } },
		{ "allocation depth", depth, 4 * MiB, 0, 2, { { 0, 65536 }, { 524288, 65536 } } },
		{ "allocation depth, overlay", depth, 4 * MiB, 1, 1, { { 524288, 65536 } } },
		{ "1000000 bytes, to whole sectors", odd, 1000000, 0, 1, { { 999424, 576 } } },
	};
	struct range_list list = { NULL, 0, 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ranges_error error = { 0, NULL };

		set_case("%s", cases[i].what);
		note_text[0] = '\0';
		list.n = 0;
		if (!check_u64(read_text_for(cases[i].text, strlen(cases[i].text),
		    cases[i].size, cases[i].overlay, &list, &error), 0)) {
			print_str("why", error.why);
			continue;
		}
		if (!check_u64(list.n, cases[i].n))
			continue;
		for (size_t j = 0; j < list.n; j++) {
			note("range %zu", j);
			check_u64(list.v[j].offset, cases[i].want[j].offset);
			note("range %zu", j);
			check_u64(list.v[j].length, cases[i].want[j].length);
		}
	}
	ranges_free(&list);
}

/* JSON entries that lack a key, mix formats, or say what nbdinfo does not. */
static void
t_read_json_bad(void)
{
	static const struct {
		const char *text;
		unsigned long line;
		const char *why;
	} cases[] = {
		{ "[{\"offset\": 0, \"length\": 65536, \"type\": 0}]", 1,
		    "entry without \"description\"" },
		{ "[{\"offset\": 0, \"length\": 65536, \"description\": \"data\"}]", 1,
		    "entry without \"type\"" },
		{ "[{\"length\": 65536, \"type\": 0, \"description\": \"data\"}]", 1,
		    "entry without \"offset\"" },
		{ "[{\"offset\": 0, \"type\": 0, \"description\": \"data\"}]", 1,
		    "entry without \"length\"" },
		{ "[{\"offset\": 0, \"length\": 65536, \"type\": 1, \"description\": \"data\"}]",
		    1, "type does not match description" },
		{ "[{\"offset\": 0, \"length\": 65536, \"type\": 0, \"description\": \"clean\"},\n"
		    "{\"offset\": 65536, \"length\": 65536, \"type\": 0, \"description\": \"data\"}]",
		    2, "description from another map" },
		{ "[{\"offset\": 0, \"length\": 65536, \"type\": 0, \"description\": \"unallocated\"}]",
		    1, "unknown nbdinfo description" },
		{ "[{\"offset\": 0, \"length\": 65536, \"type\": 0, \"description\": "
		    "\"data0123456789012345678901234567890123456789012345678901234567890\"}]",
		    1, "unknown nbdinfo description" },
		{ "[{\"offset\": 0, \"length\": 65536, \"type\": 0, \"description\": 0}]",
		    1, "expected a string" },
		{ "[{\"offset\": 0, \"length\": 65536, \"type\": \"0\", \"description\": \"data\"}]",
		    1, "bad JSON value" },
		{ "[{\"start\": 0, \"length\": 1, \"data\": true, \"type\": 0}]", 1,
		    "entry with keys of two formats" },
		{ "[{\"offset\": 0, \"length\": 1, \"data\": true, \"type\": 0, "
		    "\"description\": \"data\"}]", 1, "entry with keys of two formats" },
		{ "[{\"offset\": 0, \"length\": 1},\n{\"offset\": 1, \"length\": 1, "
		    "\"type\": 0, \"description\": \"data\"}]", 2,
		    "entry of another format than the first" },
		{ "[{\"start\": 0, \"length\": 1, \"data\": true},\n{\"offset\": 1, \"length\": 1}]",
		    2, "entry of another format than the first" },
		{ "[{\"offset\": 0, \"length\": 1, \"type\": 0, \"description\": \"data\"},\n"
		    "\n{\"start\": 1, \"length\": 1, \"data\": true}]", 3,
		    "entry of another format than the first" },
	};
	struct range_list list = { NULL, 0, 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ranges_error error = { 0, NULL };

		set_case("text \"%s\"", escaped(cases[i].text, strlen(cases[i].text)));
		if (!check_u64(read_text(cases[i].text, strlen(cases[i].text), MiB,
		    &list, &error), (uint64_t)-1))
			continue;
		check_u64(error.line, cases[i].line);
		check_str(error.why, cases[i].why);
	}
	ranges_free(&list);
}

/*
 * A map of QEMU's covers the disk: each entry starts where the one before
 * ended, the first at 0, and the last reaches the size (or its rounding
 * to whole sectors, but no further).  A gap, an entry that goes back, or
 * a map that stops short (nbdinfo killed, head -n) is an error naming
 * the line; a plain file and an offset/length array need cover nothing.
 * Each text is read at 1 MiB unless a size is given; why NULL: it reads.
 */
static void
t_read_map_covers(void)
{
	static const struct {
		const char *what, *text;
		uint64_t size;		/* 0: 1 MiB */
		unsigned long line;
		const char *why;
	} cases[] = {
		/* nbdinfo --map */
		{ "nbdinfo: a gap", "0 65536 0 data\n131072 917504 3 hole,zero\n", 0, 2,
		    "gap in the map before this entry" },
		{ "nbdinfo: the first entry past 0", "# map\n65536 983040 0 data\n", 0, 2,
		    "gap in the map before this entry" },
		{ "nbdinfo: a gap of a byte",
		    "0 65536 1 dirty\n65537 983039 0 clean\n", 0, 2,
		    "gap in the map before this entry" },
		{ "nbdinfo: back to 0",
		    "0 65536 0 data\n65536 983040 3 hole,zero\n0 1048576 0 data\n", 0, 3,
		    "entry out of order in the map" },
		{ "nbdinfo: overlapping the one before",
		    "0 65536 0 data\n65535 983041 1 hole\n", 0, 2,
		    "entry out of order in the map" },
		{ "nbdinfo: the same entry twice",
		    "0 524288 1 local\n0 524288 1 local\n524288 524288 0 absent\n", 0, 2,
		    "entry out of order in the map" },
		{ "nbdinfo: head -n 2 of a dirty bitmap",
		    "         0      524288    0  clean\n"
		    "    524288       65536    1  dirty\n", 4 * MiB, 2,
		    "the map stops before the end of the disk" },
		{ "nbdinfo: a byte short", "0 1048575 0 data\n", 0, 1,
		    "the map stops before the end of the disk" },
		{ "nbdinfo: whole, in two", "0 65536 0 data\n65536 983040 3 hole,zero\n", 0, 0,
		    NULL },
		/* nbdinfo --map --json */
		{ "nbdinfo JSON: a gap",
		    "[\n{\"offset\": 0, \"length\": 65536, \"type\": 1, \"description\": \"dirty\"},\n"
		    "{\"offset\": 131072, \"length\": 917504, \"type\": 0, \"description\": \"clean\"}\n"
		    "]\n", 0, 3, "gap in the map before this entry" },
		{ "nbdinfo JSON: out of order",
		    "[\n{\"offset\": 0, \"length\": 65536, \"type\": 1, \"description\": \"dirty\"},\n"
		    "{\"offset\": 65536, \"length\": 983040, \"type\": 0, \"description\": \"clean\"},\n"
		    "{\"offset\": 65536, \"length\": 65536, \"type\": 1, \"description\": \"dirty\"}\n"
		    "]\n", 0, 4, "entry out of order in the map" },
		{ "nbdinfo JSON: stops short",
		    "[\n{\"offset\": 0, \"length\": 65536, \"type\": 1, \"description\": \"dirty\"},\n"
		    "{\"offset\": 65536, \"length\": 65536, \"type\": 0, \"description\": \"clean\"}\n"
		    "]\n", 0, 4, "the map stops before the end of the disk" },
		{ "nbdinfo JSON: whole",
		    "[\n{\"offset\": 0, \"length\": 65536, \"type\": 1, \"description\": \"dirty\"},\n"
		    "{\"offset\": 65536, \"length\": 983040, \"type\": 0, \"description\": \"clean\"}\n"
		    "]\n", 0, 0, NULL },
		/* qemu-img map --output=json */
		{ "qemu-img: a gap",
		    "[{\"start\": 0, \"length\": 65536, \"data\": true},\n"
		    "{\"start\": 65537, \"length\": 983039, \"data\": false}]\n", 0, 2,
		    "gap in the map before this entry" },
		{ "qemu-img: the first entry past 0",
		    "[{\"start\": 512, \"length\": 1048064, \"data\": true}]\n", 0, 1,
		    "gap in the map before this entry" },
		{ "qemu-img: out of order",
		    "[{\"start\": 0, \"length\": 1048576, \"data\": false},\n"
		    "{\"start\": 65536, \"length\": 65536, \"data\": true}]\n", 0, 2,
		    "entry out of order in the map" },
		{ "qemu-img: stops short",
		    "[{\"start\": 0, \"length\": 65536, \"data\": true},\n"
		    "{\"start\": 65536, \"length\": 65536, \"data\": false}]\n", 0, 2,
		    "the map stops before the end of the disk" },
		{ "qemu-img: an empty map is no map", "[]\n", 0, 0, NULL },
		/* The end: the size, its rounding to whole sectors, not past it. */
		{ "ends at the size, 1000000 bytes", "0 1000000 0 data\n", 1000000, 0, NULL },
		{ "ends at the rounded size", "0 1000448 0 data\n", 1000000, 0, NULL },
		{ "ends at the rounded size, qemu-img",
		    "[{\"start\": 0, \"length\": 999424, \"data\": false},\n"
		    "{\"start\": 999424, \"length\": 1024, \"data\": true}]\n", 1000000, 0, NULL },
		{ "ends in the last sector, short of the size",
		    "0 999999 0 data\n", 1000000, 1,
		    "the map stops before the end of the disk" },
		{ "ends at the size rounded down", "[{\"start\": 0, \"length\": 999424, "
		    "\"data\": true}]", 1000000, 1, "the map stops before the end of the disk" },
		{ "ends past the rounded size", "0 1000449 0 data\n", 1000000, 1,
		    "range ends beyond --size" },
		{ "an entry after the rounded end",
		    "0 1000448 0 data\n1000448 512 1 hole\n", 1000000, 2,
		    "offset beyond --size" },
		/* What a person writes need cover nothing. */
		{ "plain: ranges apart, back and over", "65536 1\n0 1\n0 65536\n", 0, 0, NULL },
		{ "offset/length: ranges apart, back and over",
		    "[{\"offset\": 65536, \"length\": 1}, {\"offset\": 0, \"length\": 1},\n"
		    "{\"offset\": 0, \"length\": 65536}]\n", 0, 0, NULL },
	};
	struct range_list list = { NULL, 0, 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ranges_error error = { 0, NULL };
		uint64_t size = cases[i].size ? cases[i].size : MiB;
		int ret;

		set_case("%s: text \"%s\"", cases[i].what,
		    escaped(cases[i].text, strlen(cases[i].text)));
		ret = read_text(cases[i].text, strlen(cases[i].text), size, &list, &error);
		if (cases[i].why == NULL) {
			if (!check_u64(ret, 0))
				print_str("why", error.why);
			continue;
		}
		if (!check_u64(ret, (uint64_t)-1))
			continue;
		check_u64(error.line, cases[i].line);
		check_str(error.why, cases[i].why);
	}
	ranges_free(&list);
}

/*
 * Over a backing file (-b) the ranges are what changed.  An allocation
 * map (nbdinfo base:allocation, text or JSON, or qemu-img map) says where
 * data is, and lists no block that became zeros: refused at its first
 * entry, even one of no data, while the same file reads for an image.  A
 * dirty bitmap and an allocation depth map, a plain file and an
 * offset/length array are taken; n is the ranges each gives at 1 MiB.
 */
static void
t_read_overlay_maps(void)
{
	static const struct {
		const char *what, *text;
		unsigned long line;	/* 0: read, over a backing file too */
		size_t n;
	} cases[] = {
		{ "nbdinfo allocation", "0 65536 0 data\n65536 983040 3 hole,zero\n", 1, 1 },
		{ "nbdinfo allocation, holes first",
		    "# nbdinfo --map\n\n0 65536 1 hole\n65536 983040 0 data\n", 3, 1 },
		{ "nbdinfo allocation, zeros only", "0 1048576 2 zero\n", 1, 0 },
		{ "nbdinfo --json allocation",
		    "[\n{ \"offset\": 0, \"length\": 65536, \"type\": 0, \"description\": \"data\"},\n"
		    "{ \"offset\": 65536, \"length\": 983040, \"type\": 3, \"description\": "
		    "\"hole,zero\"}\n]\n", 2, 1 },
		{ "qemu-img map",
		    "[{ \"start\": 0, \"length\": 65536, \"depth\": 0, \"present\": true, "
		    "\"zero\": false, \"data\": true, \"offset\": 327680},\n"
		    "{ \"start\": 65536, \"length\": 983040, \"depth\": 0, \"present\": false, "
		    "\"zero\": true, \"data\": false}]\n", 1, 1 },
		{ "qemu-img map, no data at first",
		    "[{\"start\": 0, \"length\": 1048576, \"data\": false}]\n", 1, 0 },
		{ "nbdinfo dirty bitmap", "0 65536 0 clean\n65536 983040 1 dirty\n", 0, 1 },
		{ "nbdinfo --json dirty bitmap",
		    "[{\"offset\": 0, \"length\": 1048576, \"type\": 1, \"description\": \"dirty\"}]",
		    0, 1 },
		{ "nbdinfo allocation depth",
		    "0 65536 1 local\n65536 983040 0 absent\n", 0, 1 },
		{ "nbdinfo --json allocation depth",
		    "[{\"offset\": 0, \"length\": 1048576, \"type\": 0, \"description\": \"absent\"}]",
		    0, 0 },
		{ "plain", "# changed\n65536 65536\n0 4096\n", 0, 2 },
		{ "offset/length", "[{\"offset\": 65536, \"length\": 65536}]", 0, 1 },
		{ "offset/length, data true and false",
		    "[{\"offset\": 0, \"length\": 1, \"data\": true},\n"
		    "{\"offset\": 2, \"length\": 1, \"data\": false}]", 0, 1 },
	};
	struct range_list list = { NULL, 0, 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int overlay = 0; overlay < 2; overlay++) {
			struct ranges_error error = { 0, NULL };
			int ret;

			set_case("%s%s", cases[i].what, overlay ? ", overlay" : "");
			list.n = 0;
			ret = read_text_for(cases[i].text, strlen(cases[i].text), MiB,
			    overlay, &list, &error);
			if (overlay && cases[i].line != 0) {
				if (check_u64(ret, (uint64_t)-1)) {
					check_u64(error.line, cases[i].line);
					check_str(error.why, ALLOCATION_OVER_BACKING);
				}
				continue;
			}
			if (!check_u64(ret, 0)) {
				print_str("why", error.why);
				continue;
			}
			check_u64(list.n, cases[i].n);
		}
	}
	ranges_free(&list);
}

/* A line of n bytes: OFFSET LENGTH, then blanks to fill it. */
static char *
padded_line(const char *range, size_t n, const char *end)
{
	char *text = xcalloc(n + strlen(end) + 1, 1);
	size_t len = strlen(range);

	memcpy(text, range, len);
	memset(text + len, ' ', n - len);
	strcpy(text + n, end);
	return text;
}

/*
 * A line of a range file may hold 4096 bytes, without its line end, and
 * not one more: a longer one is refused where it is, never held.  Only
 * the files of lines have lines to hold; JSON is read a character at a
 * time, and a one-line array of any length is taken.
 */
static void
t_read_long_lines(void)
{
	static const struct {
		const char *what, *before, *range;
		size_t n;		/* the length of the long line */
		const char *end, *after;
		unsigned long line;	/* 0: read */
	} cases[] = {
		{ "plain, 4096", "", "0 1", 4096, "\n", "", 0 },
		{ "plain, 4097", "", "0 1", 4097, "\n", "", 1 },
		{ "plain, 4096 and CRLF", "", "0 1", 4096, "\r\n", "2 1\r\n", 0 },
		{ "plain, 4096 and a lone CR", "", "0 1", 4096, "\r", "2 1", 0 },
		{ "plain, 4097 at the end of the file", "", "0 1", 4097, "", "", 1 },
		{ "plain, 4097 on line 3", "0 1\n# c\n", "2 1", 4097, "\n", "4 1\n", 3 },
		{ "a comment, 4096", "0 1\n", "#", 4096, "\n", "2 1\n", 0 },
		{ "a comment, 4097", "0 1\n", "#", 4097, "\n", "2 1\n", 2 },
		{ "blanks, 4097", "0 1\n", "", 4097, "\n", "2 1\n", 2 },
		{ "nbdinfo, 4096", "", "0 1048576 0 data", 4096, "\n", "", 0 },
		{ "nbdinfo, 4097", "", "0 1048576 0 data", 4097, "\n", "", 1 },
		{ "nbdinfo, a million", "0 65536 1 dirty\n", "65536 983040 0 clean",
		    1000000, "\n", "", 2 },
	};
	struct range_list list = { NULL, 0, 0 };
	char *json;
	size_t used = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ranges_error error = { 0, NULL };
		char *line = padded_line(cases[i].range, cases[i].n, cases[i].end);
		size_t len = strlen(cases[i].before) + strlen(line) + strlen(cases[i].after);
		char *text = xcalloc(len + 1, 1);
		int ret;

		strcat(strcat(strcpy(text, cases[i].before), line), cases[i].after);
		set_case("%s", cases[i].what);
		ret = read_text(text, len, MiB, &list, &error);
		if (cases[i].line == 0) {
			if (!check_u64(ret, 0))
				print_str("why", error.why);
		} else if (check_u64(ret, (uint64_t)-1)) {
			check_u64(error.line, cases[i].line);
			check_str(error.why, "line longer than 4096 bytes");
		}
		free(text);
		free(line);
	}

	/* 1000 entries on one line of JSON, 27 KiB. */
	json = xcalloc(1000 * 32 + 3, 1);
	json[used++] = '[';
	for (int i = 0; i < 1000; i++)
		used += (size_t)sprintf(json + used, "%s{\"offset\": %d, \"length\": 1}",
		    i ? ", " : "", 2 * i);
	json[used++] = ']';
	set_case("JSON, 1000 entries on a line of %zu bytes", used);
	{
		struct ranges_error error = { 0, NULL };

		list.n = 0;
		if (check_u64(read_text(json, used, MiB, &list, &error), 0))
			check_u64(list.n, 1000);
		else
			print_str("why", error.why);
	}
	free(json);
	ranges_free(&list);
}

/*
 * A map cut short is named at its last line, whatever ends the file: a
 * line end, none, CRLF, a lone CR, blank lines or a comment.  In JSON as
 * in lines, the line end of the last line starts no line of its own.
 */
static void
t_read_map_stops_line(void)
{
#define NBD_JSON_CUT \
	"[\n{\"offset\": 0, \"length\": 65536, \"type\": 0, \"description\": \"data\"},\n" \
	"{\"offset\": 65536, \"length\": 65536, \"type\": 1, \"description\": \"hole\"}\n]"
#define QEMU_IMG_CUT \
	"[{\"start\": 0, \"length\": 65536, \"data\": true},\n" \
	"{\"start\": 65536, \"length\": 65536, \"data\": false}]"
	static const struct {
		const char *text;
		unsigned long line;
	} cases[] = {
		{ "0 65536 0 data\n65536 65536 1 hole\n", 2 },
		{ "0 65536 0 data\n65536 65536 1 hole", 2 },
		{ "0 65536 0 data\r\n65536 65536 1 hole\r\n", 2 },
		{ "0 65536 0 data\r65536 65536 1 hole\r", 2 },
		{ "0 65536 0 data\n65536 65536 1 hole\n\n# cut here\n", 4 },
		{ NBD_JSON_CUT "\n", 4 },
		{ NBD_JSON_CUT, 4 },
		{ NBD_JSON_CUT "\r\n", 4 },
		{ NBD_JSON_CUT "\r", 4 },
		{ NBD_JSON_CUT "  \t", 4 },
		{ NBD_JSON_CUT "\n\n", 5 },
		{ QEMU_IMG_CUT "\n", 2 },
		{ "\n\r\n" QEMU_IMG_CUT "\n", 4 },
	};
#undef NBD_JSON_CUT
#undef QEMU_IMG_CUT
	struct range_list list = { NULL, 0, 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ranges_error error = { 0, NULL };

		set_case("text \"%s\"", escaped(cases[i].text, strlen(cases[i].text)));
		if (!check_u64(read_text(cases[i].text, strlen(cases[i].text), MiB,
		    &list, &error), (uint64_t)-1))
			continue;
		check_u64(error.line, cases[i].line);
		check_str(error.why, "the map stops before the end of the disk");
	}
	ranges_free(&list);
}

/* A stream that cannot be read is a read error, not the end of the file. */
static void
t_read_error(void)
{
	char buffer[16] = "0 1\n";
	struct range_list list = { NULL, 0, 0 };
	struct ranges_error error = { 0, NULL };
	FILE *f = fmemopen(buffer, sizeof(buffer), "w");

	if (f == NULL) {
		printf("Bail out! fmemopen failed\n");
		exit(1);
	}
	if (check_u64(ranges_read(f, 100, 0, &list, &error), (uint64_t)-1)) {
		check_str(error.why, "read error");
		check_u64(error.line, 0);
	}
	fclose(f);
	ranges_free(&list);
}

/* Ranges: ranges_merge and ranges_add */

static void
t_merge_cases(void)
{
	static const struct {
		const char *what;
		struct range in[5];
		size_t nin;
		struct range out[5];
		size_t nout;
	} cases[] = {
		{ "empty", { { 0, 0 } }, 0, { { 0, 0 } }, 0 },
		{ "one", { { 7, 3 } }, 1, { { 7, 3 } }, 1 },
		{ "unsorted", { { 50, 5 }, { 10, 5 }, { 30, 5 } }, 3,
		    { { 10, 5 }, { 30, 5 }, { 50, 5 } }, 3 },
		{ "overlapping", { { 0, 10 }, { 5, 10 } }, 2, { { 0, 15 } }, 1 },
		{ "touching", { { 0, 10 }, { 10, 5 }, { 15, 1 } }, 3, { { 0, 16 } }, 1 },
		{ "contained", { { 0, 100 }, { 10, 5 } }, 2, { { 0, 100 } }, 1 },
		{ "same offset", { { 0, 5 }, { 0, 10 }, { 0, 3 } }, 3, { { 0, 10 } }, 1 },
		{ "disjoint by a byte", { { 0, 10 }, { 11, 1 } }, 2,
		    { { 0, 10 }, { 11, 1 } }, 2 },
		{ "unsorted chain", { { 40, 20 }, { 0, 10 }, { 5, 40 }, { 100, 1 } }, 4,
		    { { 0, 60 }, { 100, 1 } }, 2 },
		{ "a long one swallows the rest", { { 3, 1 }, { 0, 50 }, { 60, 1 },
		    { 20, 10 }, { 49, 2 } }, 5, { { 0, 51 }, { 60, 1 } }, 2 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct range_list list = { NULL, 0, 0 };

		set_case("%s", cases[i].what);
		for (size_t j = 0; j < cases[i].nin; j++)
			ranges_add(&list, cases[i].in[j].offset, cases[i].in[j].length);
		ranges_merge(&list);
		if (check_u64(list.n, cases[i].nout)) {
			for (size_t j = 0; j < list.n; j++) {
				note("range %zu", j);
				check_u64(list.v[j].offset, cases[i].out[j].offset);
				note("range %zu", j);
				check_u64(list.v[j].length, cases[i].out[j].length);
			}
		}
		ranges_free(&list);
	}
}

/* Random lists against a byte map: the same bytes, sorted, gaps between. */
static void
t_merge_random(uint64_t seed)
{
	unsigned char in[2048], out[2048];

	for (int index = 0; index < 3000 && checks_failed == 0; index++) {
		struct range_list list = { NULL, 0, 0 };
		uint64_t size, n;

		rng_seed(seed ^ 0x6d65726765, (uint64_t)index);
		size = 1 + rng_below(sizeof(in));
		n = rng_below(24);
		memset(in, 0, sizeof(in));
		memset(out, 0, sizeof(out));
		for (uint64_t i = 0; i < n; i++) {
			uint64_t off = rng_below(size);
			uint64_t len = 1 + rng_below(rng_below(2) ? 8 : size - off);

			if (len > size - off)
				len = size - off;
			ranges_add(&list, off, len);
			memset(in + off, 1, len);
		}
		set_case("seed 0x%" PRIx64 " merge case %d: %" PRIu64 " ranges in %"
		    PRIu64 " bytes", seed, index, n, size);
		ranges_merge(&list);
		for (size_t i = 0; i < list.n; i++) {
			const struct range *r = &list.v[i];

			note("range %zu [%" PRIu64 ",+%" PRIu64 ")", i, r->offset, r->length);
			if (!check(r->length > 0 && r->offset + r->length <= size))
				break;
			note_text[0] = '\0';
			if (i > 0 && !check(r->offset > list.v[i - 1].offset +
			    list.v[i - 1].length))
				break;
			memset(out + r->offset, 1, r->length);
		}
		check(memcmp(in, out, sizeof(in)) == 0);
		ranges_free(&list);
	}
}

/*
 * Lists longer than the random ones, in the orders a sort finds hardest:
 * already sorted, reversed, rising then falling, all at one offset, and
 * shuffled.  Range i is at 10 i, apart from the others.
 */
static void
t_merge_long(uint64_t seed)
{
	static const char *const orders[] = {
		"sorted", "reversed", "organ pipe", "one offset", "shuffled",
	};
	static const size_t sizes[] = { 2, 3, 4, 5, 100, 4097, 100000 };

	for (size_t o = 0; o < sizeof(orders) / sizeof(orders[0]); o++) {
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			struct range_list list = { NULL, 0, 0 };
			size_t n = sizes[k], want = o == 3 ? 1 : n;

			rng_seed(seed ^ 0x6c6f6e67, o * 16 + k);
			for (size_t i = 0; i < n; i++) {
				size_t at = o == 1 ? n - 1 - i : o == 2 ?
				    (i % 2 ? n - 1 - i / 2 : i / 2) : i;

				ranges_add(&list, o == 3 ? 0 : 10 * at, o == 3 ? 1 + i : 5);
			}
			for (size_t i = n; o == 4 && i > 1; i--) {
				size_t j = rng_below(i);
				struct range t = list.v[i - 1];

				list.v[i - 1] = list.v[j];
				list.v[j] = t;
			}
			set_case("%s, %zu ranges", orders[o], n);
			ranges_merge(&list);
			if (check_u64(list.n, want) && o == 3)
				check_u64(list.v[0].length, n);
			for (size_t i = 0; o != 3 && i < list.n; i++) {
				note("range %zu", i);
				if (!check_u64(list.v[i].offset, 10 * i))
					break;
			}
			ranges_free(&list);
		}
	}
}

static void
t_add_grows(void)
{
	struct range_list list = { NULL, 0, 0 };
	size_t i;

	for (i = 0; i < 1000; i++)
		if (!check_u64(ranges_add(&list, 1000 - i, i + 1), 0))
			break;
	if (check_u64(list.n, 1000))
		for (i = 0; i < 1000; i++)
			if (!check_u64(list.v[i].offset, 1000 - i) ||
			    !check_u64(list.v[i].length, i + 1))
				break;
	ranges_free(&list);
	check(list.v == NULL);
	check_u64(list.n, 0);
	check_u64(list.cap, 0);
}

int
main(int argc, char **argv)
{
	uint64_t seed = DEFAULT_SEED;
	int cases = DEFAULT_CASES;
	char model_what[128];

	if (argc > 1)
		seed = strtoull(argv[1], NULL, 0);
	if (argc > 2)
		cases = atoi(argv[2]);

	for (size_t i = 0; i < sizeof(known_cases) / sizeof(known_cases[0]); i++)
		TEST(t_known(&known_cases[i]), known_cases[i].what);
	TEST(t_known_bytes(), "the bytes of the 6-cluster image, as written by hand");
	TEST(t_known_within_all(),
	    "within the whole disk: the hand-computed layouts, their data moved");
	TEST(t_within_bytes(),
	    "within a plan: the bytes of a 7-cluster image with a gap, by hand");
	TEST(t_within_cases(),
	    "within a plan: all, none, every other cluster or table kept, 512 B to 2 MiB, "
	    "version 2, zero clusters, backing files");
	TEST(t_within_errors(),
	    "within a plan: more data, more tables, another cluster size or L1 refused");

	TEST(t_refcount_sweep_dense(),
	    "refcounts count everything, minimally: 512 B, all-data disks of 0-30000 clusters");
	TEST(t_refcount_sweep_sparse(),
	    "refcounts count everything, minimally: 512 B, sparse disks to 128 GiB");
	TEST(t_refcount_sweep_cluster_sizes(),
	    "refcounts count everything, minimally: every cluster size, near block edges");

	snprintf(model_what, sizeof(model_what),
	    "model check: %d random layouts decoded cluster by cluster", cases);
	TEST(t_model(seed, cases, 0), model_what);
	snprintf(model_what, sizeof(model_what),
	    "model check, within a plan: the same %d layouts in plans of more", cases);
	TEST(t_model(seed, cases, 1), model_what);

	TEST(t_cluster_bits(), "cluster_bits outside 9..21 is refused");
	TEST(t_range_order(), "unsorted, overlapping or empty ranges are refused");
	TEST(t_range_beyond(), "ranges past the input size are refused");
	TEST(t_l1_limit(), "the L1 table may reach 32 MiB, not a byte more");
	TEST(t_refcount_limit(), "the refcount table may reach 8 MiB, not a cluster more");
	TEST(t_image_limit(), "host offsets may reach 2^56, not a cluster more");
	TEST(t_strerror(), "layout_strerror: a distinct lowercase phrase each");

	/* 2^46 / 512 MiB = 131072 L1 entries, 16 clusters: 1 + 16 + 1 + 1 + 3 L2 */
	TEST(t_huge_sparse(16, 64 * TiB, 22, 0),
	    "64 TiB, 3 small ranges: 22 metadata clusters, walked and decoded");
	/* 4M L1 entries, 512 clusters: 1 + 512 + 1 + 1 + 3 L2 */
	TEST(t_huge_sparse(16, 2 * PiB, 518, 0),
	    "2 PiB (the 64 KiB maximum), 3 small ranges: 518 metadata clusters");
	/* 2^61 / 512 GiB = 4M L1 entries, 16 clusters of 2 MiB: 1 + 16 + 1 + 1 + 3 */
	TEST(t_huge_sparse(21, UINT64_C(1) << 61, 22, 0),
	    "2 EiB (the 2 MiB maximum), 3 small ranges: 22 metadata clusters");
	TEST(t_huge_sparse_within(),
	    "within a plan: 64 TiB, 2 PiB and 2 EiB, 3 small ranges each, a gap of a table");
	TEST(t_headers(),
	    "layout_set_header: versions, backing names and formats to the byte, decoded");
	TEST(t_header_bytes(), "the header of a version 2 overlay, as written by hand");
	TEST(t_zero_bytes(),
	    "zero clusters: the zero flag alone, the data over it, no cluster more");
	TEST(t_zero_tables(), "zero clusters: an L2 table for a zero cluster alone");
	TEST(t_zero_errors(), "zero ranges unsorted, overlapping, empty or past the end");
	TEST(t_zero_version_2(), "zero clusters and version 2 refused, in either order");
	TEST(t_image_size(),
	    "the file ends after its last refcount, if a refcount block ends it");
	TEST(t_seek_by_hand(),
	    "meta_writer_seek and run_walk_seek on the 6-cluster image, by hand");
	TEST(t_seek_dense(),
	    "seeks to the last L2 table, L1 cluster and data cluster of 2M clusters");

	TEST(t_parse_number_good(), "parse_number: decimal and hex, end at the first non-digit");
	TEST(t_parse_number_bad(), "parse_number: empty, space, sign, bare 0x, overflow refused");
	TEST(t_parse_number_leading_zero(), "parse_number: a leading zero is not octal");
	TEST(t_read_good(), "ranges_read: comments, blanks, tabs, CRLF, hex, appended in order");
	TEST(t_read_empty(), "ranges_read: empty and comment-only files give no ranges");
	TEST(t_read_bad(), "ranges_read: each bad line, its number and reason");
	TEST(t_read_line_ends(),
	    "ranges_read: LF, CRLF and lone CR line ends; formats by what cannot be mistaken");
	TEST(t_read_sectors(),
	    "ranges_read: QEMU's maps may run to whole sectors, cut at the size; plain is exact");
	TEST(t_read_nbdinfo_maps(),
	    "ranges_read: nbdinfo allocation, dirty bitmap and allocation depth maps, overlay or not");
	TEST(t_read_nbdinfo_bad(),
	    "ranges_read: nbdinfo descriptions unknown, of another type or of another map");
	TEST(t_read_nbdinfo_json(),
	    "ranges_read: nbdinfo --map --json by type and description, overlay or not");
	TEST(t_read_json_bad(),
	    "ranges_read: JSON entries missing a key, mixing formats, unknown");
	TEST(t_read_map_covers(),
	    "ranges_read: QEMU's maps cover the disk: gaps, going back, stopping short refused");
	TEST(t_read_overlay_maps(),
	    "ranges_read: over -b, allocation maps refused; changed blocks and plain lists read");
	TEST(t_read_long_lines(),
	    "ranges_read: lines of 4096 bytes read, of 4097 refused; JSON has no line limit");
	TEST(t_read_map_stops_line(),
	    "ranges_read: a map cut short is named at its last line, in JSON as in lines");
	TEST(t_read_error(), "ranges_read: an unreadable stream is a read error");
	TEST(t_merge_cases(), "ranges_merge: sort, overlap, touch, containment, empty");
	TEST(t_merge_random(seed), "ranges_merge: 3000 random lists against a byte map");
	TEST(t_merge_long(seed),
	    "ranges_merge: long lists sorted, reversed, organ pipe, shuffled");
	TEST(t_add_grows(), "ranges_add grows past its first allocation; ranges_free resets");

	return tap_done();
}
